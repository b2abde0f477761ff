import type { ActorType, Authority } from './chain.js';

/** Who is acting and on whose authority; every audited write takes one. */
export interface ActionContext {
  actor: { id: string; type: ActorType };
  authority: Authority;
}

/** The system itself (e.g. seeding the demo on first start, a webhook delivery creating its secret). */
export const systemContext = (reason: string): ActionContext => ({
  actor: { id: 'system', type: 'system' },
  authority: { reason },
});
