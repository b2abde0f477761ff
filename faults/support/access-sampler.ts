import { setTimeout as delay } from 'node:timers/promises';
import type { DirectoryConnector } from '../../core/directory/connector.js';
import type { Pool } from '../../db/pool.js';

/** One membership the target gave. */
export interface Membership {
  tenant_id: string;
  user_id: string;
  role: string;
}

/** One look at the target during a run: the memberships that gave access at that moment. */
export interface AccessSample {
  at: number;
  live: Membership[];
}

/** What a run samples: the built-in directory's tables, or each tenant's own target through its connector. */
export type AccessSource =
  | { kind: 'builtin'; owner: Pool; tenantIds: string[] }
  | { kind: 'target'; tenants: { tenantId: string; connector: DirectoryConnector }[]; roles: string[] };

/**
 * The memberships giving access now. The built-in directory decides at the database's clock, so
 * it is read at that clock; a remote target is read through the connector, every managed role of
 * every tenant, and the sample is dated when the last answer arrived: a membership seen was live
 * at some moment up to then, and dating it late never hides one that outlived its end.
 */
async function readAccess(source: AccessSource): Promise<AccessSample> {
  if (source.kind === 'builtin') {
    const { rows } = await source.owner.query<{ at: Date } & Membership>(
      `SELECT now() AS at, m.tenant_id, m.user_id, m.role FROM (SELECT now()) AS t
         LEFT JOIN directory_memberships m ON m.tenant_id = ANY($1) AND (m.expires_at IS NULL OR m.expires_at > now())`,
      [source.tenantIds],
    );
    return { at: rows[0]!.at.getTime(), live: rows.filter((r) => r.tenant_id !== null) };
  }
  const live = (
    await Promise.all(
      source.tenants.flatMap(({ tenantId, connector }) =>
        source.roles.map(async (role) =>
          (await connector.listMembers(tenantId, role)).map((user_id): Membership => ({ tenant_id: tenantId, user_id, role })),
        ),
      ),
    )
  ).flat();
  return { at: Date.now(), live };
}

/** Samples effective access every `everyMs` until stopped; a sample that fails (the target or PostgreSQL down) is a gap. */
export function sampleAccess(source: AccessSource, everyMs: number) {
  const samples: AccessSample[] = [];
  let failed = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      try {
        samples.push(await readAccess(source));
      } catch {
        failed++;
      }
      await delay(everyMs);
    }
  })();
  return {
    samples,
    get failed() {
      return failed;
    },
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}

/** Memberships of these tenants that no open entitlement explains: access nobody is accountable for. */
export async function orphanMemberships(owner: Pool, source: AccessSource): Promise<Membership[]> {
  if (source.kind === 'builtin') {
    const { rows } = await owner.query<Membership>(
      `SELECT m.tenant_id, m.user_id, m.role FROM directory_memberships m
        WHERE m.tenant_id = ANY($1) AND NOT EXISTS (
          SELECT 1 FROM entitlements e WHERE e.tenant_id = m.tenant_id AND e.subject_id = m.user_id AND e.role = m.role AND e.ended_at IS NULL)`,
      [source.tenantIds],
    );
    return rows;
  }
  const { live } = await readAccess(source);
  const { rows } = await owner.query<Membership>(
    `SELECT tenant_id, subject_id AS user_id, role FROM entitlements WHERE tenant_id = ANY($1) AND ended_at IS NULL`,
    [source.tenants.map((t) => t.tenantId)],
  );
  const open = new Set(rows.map((r) => `${r.tenant_id}/${r.user_id}/${r.role}`));
  return live.filter((m) => !open.has(`${m.tenant_id}/${m.user_id}/${m.role}`));
}
