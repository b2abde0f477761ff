import { readFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GENESIS_HASH, type AuditEvent, type AuditEventInput } from '../../core/audit/chain.js';
import { verifyExportFile } from '../../cli/audit.js';
import { appendAuditEvent, appendAuditEvents, insertSealed, lockHead } from '../../db/audit.js';
import { AuditGroupCommit } from '../../db/audit-group.js';
import { APP_ROLE, createPool, type Pool } from '../../db/pool.js';
import { inScope, tenantScope } from '../../db/scope.js';
import { verifyChain } from '../../usecases/audit.js';
import { runCli } from '../support/cli.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

/*
 * A chain written and exported by main at 019f736, before group commit, the fast canonical form
 * and streaming verification. Every chain ever written must stay verifiable: this one is checked
 * offline, then loaded into a database, verified there and extended by today's append paths.
 */
const FIXTURE = 'tests/fixtures/audit/chain-written-before-group-commit.ndjson';
const HEAD = 'tests/fixtures/audit/chain-written-before-group-commit.head.json';

let head: { chain: string; seq: number; hash: string };
let events: AuditEvent[];
let db: TestDatabase;
let app: Pool;

beforeAll(async () => {
  head = JSON.parse(await readFile(HEAD, 'utf8')) as typeof head;
  events = (await readFile(FIXTURE, 'utf8'))
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as AuditEvent);
  db = await createTestDatabase();
  app = createPool({ connectionString: db.url, role: APP_ROLE, max: 4 });
});
afterAll(async () => {
  await app?.end();
  await db?.drop();
});

function next(i: number): AuditEventInput {
  return {
    tenantId: head.chain,
    eventId: randomUUID(),
    occurredAt: new Date().toISOString(),
    actor: { id: 'tester', type: 'user' },
    action: 'grant.requested',
    target: { type: 'grant', id: `after-${i}` },
    authority: { roles: ['operator'], ticket: `CHG-${i}` },
    workflowId: null,
    runId: null,
    payload: { i, note: 'written after the fixture' },
  };
}

describe('a chain written before group commit', () => {
  it('verifies offline with its recorded head, in process', async () => {
    expect(events).toHaveLength(40);
    expect(await verifyExportFile(FIXTURE, head)).toMatchObject({ intact: true, checked: 40, lastSeq: 40, lastHash: head.hash });
  });

  it('verifies with `tenure audit verify --file` and its recorded head', async () => {
    const result = await runCli(['audit', 'verify', '--file', FIXTURE, '--head-seq', String(head.seq), '--head-hash', head.hash]);
    expect(result.stderr).toBe('');
    expect(result.stdout).toContain('intact: 40 events checked');
    expect(result.code).toBe(0);
  });

  it('verifies in the database as stored, and stays intact when today’s append paths extend it', async () => {
    // Stored as main stored them: the fixture's rows, exactly, and the head at the last of them.
    await db.pool.query("INSERT INTO tenants (id, slug, name, created_by) VALUES ($1, 'fixture-tenant', 'Fixture tenant', 'test')", [
      head.chain,
    ]);
    const owner = await db.pool.connect();
    try {
      await owner.query('BEGIN');
      expect(await lockHead(owner, head.chain)).toEqual({ seq: 0, hash: GENESIS_HASH });
      await insertSealed(owner, head.chain, events);
      await owner.query('COMMIT');
    } finally {
      owner.release();
    }
    expect(await verifyChain({ pool: app }, head.chain)).toEqual({
      intact: true,
      checked: 40,
      firstBadSeq: null,
      reason: null,
      headSeq: 40,
    });

    const one = await inScope(app, tenantScope(head.chain), (client) => appendAuditEvent(client, next(1)));
    expect(one).toMatchObject({ seq: 41, prevHash: head.hash });
    await inScope(app, tenantScope(head.chain), (client) => appendAuditEvents(client, [next(2), next(3)]));
    const group = new AuditGroupCommit(app);
    await Promise.all([4, 5, 6].map((i) => group.inTenantScope(head.chain, (client) => appendAuditEvent(client, next(i)))));
    expect(await verifyChain({ pool: app }, head.chain)).toEqual({
      intact: true,
      checked: 46,
      firstBadSeq: null,
      reason: null,
      headSeq: 46,
    });
  });
});
