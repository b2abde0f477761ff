import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { APP_ROLE, createPool, type Pool } from '../../db/pool.js';
import { inScope, mspScope, readInScope, tenantScope, withLiterals, type Reader } from '../../db/scope.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { seedTenancy, type TestTenancy } from '../support/tenancy.js';

let db: TestDatabase;
let app: Pool;
let identity: TestTenancy;

beforeAll(async () => {
  db = await createTestDatabase();
  app = createPool({ connectionString: db.appUrl, max: 3 });
  identity = await seedTenancy(app);
});
afterAll(async () => {
  await app?.end();
  await db?.drop();
});

describe('row-level security', () => {
  it('the service logs in as a role that owns no table, cannot bypass RLS and is a member of tenure_app', async () => {
    const { rows } = await app.query<{ bypass: boolean; super: boolean; member: boolean }>(
      `SELECT rolbypassrls AS bypass, rolsuper AS super, pg_has_role(current_user, $1, 'MEMBER') AS member
         FROM pg_roles WHERE rolname = current_user`,
      [APP_ROLE],
    );
    expect(rows[0]).toEqual({ bypass: false, super: false, member: true });
    const owned = await app.query(`SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tableowner IN (current_user, $1)`, [
      APP_ROLE,
    ]);
    expect(owned.rows).toEqual([]);
    const unprotected = await db.pool.query<{ relname: string }>(
      `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind = 'r' AND NOT c.relrowsecurity
          AND c.relname NOT IN ('tenure_migrations', 'diagnostic_pings')`,
    );
    expect(unprotected.rows.map((r) => r.relname)).toEqual([]);
  });

  it.each(['tenants', 'tenant_policies', 'role_bindings', 'audit_events', 'audit_chain_heads'])(
    'a query on %s that forgets its tenant filter still sees only the current tenant',
    async (table) => {
      const column = table === 'tenants' ? 'id' : 'tenant_id';
      const seen = await inScope(app, tenantScope(identity.tenantA), async (client) => {
        const { rows } = await client.query<{ t: string }>(`SELECT DISTINCT ${column}::text AS t FROM ${table}`);
        return rows.map((r) => r.t);
      });
      expect(seen).toEqual([identity.tenantA]);
      // The MSP scope sees both tenants, so the filter above was RLS and not an empty table.
      const all = await inScope(app, mspScope, async (client) => {
        const { rows } = await client.query<{ t: string }>(`SELECT DISTINCT ${column}::text AS t FROM ${table}`);
        return rows.map((r) => r.t);
      });
      expect(all).toEqual(expect.arrayContaining([identity.tenantA, identity.tenantB]));
    },
  );

  it('outside any scope the service sees no tenant rows at all', async () => {
    const { rows } = await app.query('SELECT * FROM tenant_policies');
    expect(rows).toEqual([]);
  });

  it("refuses to write a row into another tenant's data", async () => {
    await expect(
      inScope(app, tenantScope(identity.tenantA), (client) =>
        client.query("INSERT INTO tenant_policies (tenant_id, version, document, created_by) VALUES ($1, 99, '{}', 'x')", [
          identity.tenantB,
        ]),
      ),
    ).rejects.toThrow(/row-level security/);
  });

  it('cannot switch row security off or become the owner', async () => {
    await expect(
      inScope(app, tenantScope(identity.tenantA), (c) =>
        c.query('SET LOCAL row_security = off').then(() => c.query('SELECT * FROM tenant_policies')),
      ),
    ).rejects.toThrow(/row-level security/);
    // The owner is whoever the harness connects as: `postgres` here, `root` or else for an embedded server.
    const owner = (await db.pool.query<{ name: string }>('SELECT current_user AS name')).rows[0]!.name;
    await expect(app.query(`SET ROLE ${pg.escapeIdentifier(owner)}`)).rejects.toThrow(/permission denied/);
  });
});

describe('reads in one round trip (readInScope)', () => {
  const tenantsSeen = (reader: Reader) =>
    reader.query<{ t: string }>('SELECT DISTINCT tenant_id::text AS t FROM tenant_policies WHERE $1::text IS NULL OR version >= $2', [
      null,
      0,
    ]);

  it('sees only the scoped tenant, in every query started together, and leaves nothing set on the pooled connection', async () => {
    const single = createPool({ connectionString: db.appUrl, max: 1 });
    try {
      const [a, b, msp] = await Promise.all([
        readInScope(single, tenantScope(identity.tenantA), async (reader) => {
          const [first, second] = await Promise.all([tenantsSeen(reader), tenantsSeen(reader)]);
          // A query started after the first message went is scoped again.
          const later = await tenantsSeen(reader);
          return [first, second, later].map((r) => r.rows.map((row) => row.t));
        }),
        readInScope(single, tenantScope(identity.tenantB), async (reader) => (await tenantsSeen(reader)).rows.map((r) => r.t)),
        readInScope(single, mspScope, async (reader) => (await tenantsSeen(reader)).rows.map((r) => r.t)),
      ]);
      expect(a).toEqual([[identity.tenantA], [identity.tenantA], [identity.tenantA]]);
      expect(b).toEqual([identity.tenantB]);
      expect(msp).toEqual(expect.arrayContaining([identity.tenantA, identity.tenantB]));
      // The same (only) connection, outside any scope again.
      const left = await single.query<{ tenant: string | null; msp: string | null }>(
        "SELECT current_setting('tenure.tenant_id', true) AS tenant, current_setting('tenure.msp_scope', true) AS msp",
      );
      expect([left.rows[0]!.tenant ?? '', left.rows[0]!.msp ?? '']).toEqual(['', '']);
      expect((await single.query('SELECT * FROM tenant_policies')).rows).toEqual([]);
    } finally {
      await single.end();
    }
  });

  it('passes values as literals, quotes and backslashes included, and refuses values it cannot inline', async () => {
    const text = "it's a \\ back'slash; SELECT 1 --";
    const echoed = await readInScope(app, tenantScope(identity.tenantA), (reader) =>
      reader.query<{ v: string; n: number; q: string }>("SELECT $1::text AS v, $2::int AS n, '$1' AS q", [text, 7]),
    );
    expect(echoed.rows).toEqual([{ v: text, n: 7, q: '$1' }]);
    expect(withLiterals('SELECT $1, $2', ["a'b", null])).toBe("SELECT 'a''b', NULL");
    await expect(readInScope(app, mspScope, (reader) => reader.query('SELECT $1::jsonb', [{ a: 1 }]))).rejects.toThrow(TypeError);
    await expect(readInScope(app, mspScope, (reader) => reader.query('SELECT $2::text', ['x']))).rejects.toThrow(RangeError);
    await expect(readInScope(app, mspScope, (reader) => reader.query('SELECT $1::text', ['a\u0000b']))).rejects.toThrow(/NUL/);
    // A scope's tenant id is inlined too: refused alike, in either kind of transaction.
    await expect(readInScope(app, tenantScope('a\u0000b'), (reader) => reader.query('SELECT 1'))).rejects.toThrow(/NUL/);
    await expect(inScope(app, tenantScope('a\u0000b'), (client) => client.query('SELECT 1'))).rejects.toThrow(/NUL/);
    // Refused before anything was sent: the pool's connection still answers.
    expect((await readInScope(app, mspScope, (reader) => reader.query<{ v: string }>('SELECT $1::text AS v', ['ok']))).rows).toEqual([
      { v: 'ok' },
    ]);
  });

  it('an error rejects the queries sent with it and leaves the connection usable', async () => {
    const single = createPool({ connectionString: db.appUrl, max: 1 });
    try {
      const failed = readInScope(single, tenantScope(identity.tenantA), (reader) =>
        Promise.all([tenantsSeen(reader), reader.query('SELECT 1 / 0')]),
      );
      await expect(failed).rejects.toThrow(/division by zero/);
      const after = await readInScope(single, tenantScope(identity.tenantA), async (reader) => (await tenantsSeen(reader)).rows);
      expect(after).toEqual([{ t: identity.tenantA }]);
    } finally {
      await single.end();
    }
  });
});
