import type { ActorType, Authority } from '../core/audit/chain.js';

/** Who is acting and on whose authority; every audited write takes one. */
export interface ActionContext {
  actor: { id: string; type: ActorType };
  authority: Authority;
}

/** The system itself (e.g. seeding the demo on first start). */
export const systemContext = (reason: string): ActionContext => ({
  actor: { id: 'system', type: 'system' },
  authority: { reason },
});
