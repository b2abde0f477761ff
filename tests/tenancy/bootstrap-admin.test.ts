import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashApiToken } from '../../core/tenancy/tokens.js';
import { runCli, runCliOk } from '../support/cli.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase({ migrated: false });
});
afterAll(async () => {
  await db?.drop();
});

const bootstrapArgs = (name: string) => ['bootstrap-admin', '--name', name];
const env = () => ({ DATABASE_URL: db.url, DATABASE_APP_URL: db.appUrl });

describe('tenure bootstrap-admin', () => {
  it('migrates a fresh database, creates an audited MSP admin and prints a working token once', async () => {
    const { stdout } = await runCliOk(bootstrapArgs('Alice Example'), env());
    const token = /API token \(shown once\): (tnr_\S+)/.exec(stdout)?.[1];
    expect(token).toBeDefined();
    const { rows } = await db.pool.query(
      `SELECT a.display_name, b.role, b.tenant_id FROM api_tokens t JOIN actors a ON a.id = t.actor_id
         JOIN role_bindings b ON b.actor_id = a.id WHERE t.token_hash = $1`,
      [hashApiToken(token!)],
    );
    expect(rows).toEqual([{ display_name: 'Alice Example', role: 'msp_admin', tenant_id: null }]);
    const audit = await db.pool.query("SELECT action, actor_id FROM audit_events WHERE tenant_id = 'msp' ORDER BY seq");
    expect(audit.rows.map((r) => r.action)).toEqual(['actor.created', 'role_binding.created', 'api_token.created']);
    expect(new Set(audit.rows.map((r) => r.actor_id))).toEqual(new Set(['system']));
  });

  it('refuses to create a second admin once one exists', async () => {
    expect(await runCli(bootstrapArgs('Mallory'), env())).toMatchObject({ code: 1, stderr: expect.stringContaining('already exists') });
    const { rows } = await db.pool.query("SELECT count(*)::int AS n FROM actors WHERE display_name = 'Mallory'");
    expect(rows[0].n).toBe(0);
  });
});
