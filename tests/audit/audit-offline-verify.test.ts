import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashEvent, type AuditEvent } from '../../core/audit/chain.js';
import { appendAuditEvent, chainHead, streamAuditEvents } from '../../db/audit.js';
import { APP_ROLE, createPool, type Pool } from '../../db/pool.js';
import { inScope, tenantScope } from '../../db/scope.js';
import { runCli } from '../support/cli.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

let db: TestDatabase;
let app: Pool;
let dir: string;
const tenantId = randomUUID();
let events: AuditEvent[];
let head: { seq: number; hash: string };

beforeAll(async () => {
  db = await createTestDatabase();
  app = createPool({ connectionString: db.url, role: APP_ROLE, max: 2 });
  dir = await mkdtemp(path.join(os.tmpdir(), 'tenure-audit-'));
  for (let i = 1; i <= 20; i++) {
    await inScope(app, tenantScope(tenantId), (client) =>
      appendAuditEvent(client, {
        tenantId,
        eventId: randomUUID(),
        occurredAt: new Date(Date.UTC(2025, 0, 1, 12, 0, i, 123)).toISOString(),
        actor: { id: `actor-${i % 3}`, type: i % 5 === 0 ? 'system' : 'user' },
        action: i % 2 ? 'grant.requested' : 'grant.approved',
        target: i % 4 === 0 ? null : { type: 'grant', id: `g-${i}` },
        authority: { roles: ['tenant_approver'], ticket: `CHG-${1000 + i}` },
        workflowId: i % 4 === 0 ? null : `grant/${tenantId}/g-${i}`,
        runId: null,
        // Values whose JSON form could drift between JavaScript and jsonb if hashing were not canonical.
        payload: { i, nested: { z: [1, 'two', null, true], a: { deep: 'é ✓ 😀' } }, ratio: 0.1 + 0.2, big: 1e21, neg: -1.5 },
      }),
    );
  }
  // The export exactly as the API writes it: one event's JSON per line, read back through the cursor.
  ({ events, head } = await inScope(app, tenantScope(tenantId), async (client) => {
    const all: AuditEvent[] = [];
    for await (const event of streamAuditEvents(client, tenantId)) all.push(event);
    return { events: all, head: await chainHead(client, tenantId) };
  }));
});
afterAll(async () => {
  await app?.end();
  await db?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function writeExport(lines: unknown[], name = `${randomUUID()}.ndjson`): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, lines.map((line) => (typeof line === 'string' ? line : JSON.stringify(line))).join('\n') + '\n');
  return file;
}

/** No database or network settings: the offline verifier must not need them. */
const verifyCli = (...args: string[]) => runCli(['audit', 'verify', ...args]);

const at = (seq: number) => events[seq - 1]!;

describe('tenure audit verify --file', () => {
  it('exits 0 for an untouched export of 20 events', async () => {
    expect(events).toHaveLength(20);
    const result = await verifyCli('--file', await writeExport(events));
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toMatch(/^intact: 20 events checked/);
  });

  it('exits 0 with the matching chain head, which the export ends at', async () => {
    const result = await verifyCli('--file', await writeExport(events), '--head-seq', String(head.seq), '--head-hash', head.hash);
    expect(head.seq).toBe(20);
    expect(result.code).toBe(0);
  });

  it('exits 1 naming seq 7 when a field of event 7 was altered', async () => {
    const altered = events.map((e) => (e.seq === 7 ? { ...e, payload: { ...e.payload, i: 700 } } : e));
    const result = await verifyCli('--file', await writeExport(altered));
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/first bad seq 7 \(line 7\): hash does not match/);
  });

  it('exits 1 naming seq 7 when a field was added to event 7', async () => {
    const extended = events.map((e) => (e.seq === 7 ? { ...e, note: 'added later' } : e));
    const result = await verifyCli('--file', await writeExport(extended));
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/first bad seq 7 /);
  });

  it('exits 1 naming seq 7 when event 7 was removed', async () => {
    const result = await verifyCli('--file', await writeExport(events.filter((e) => e.seq !== 7)));
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/first bad seq 7 \(line 7\): event 7 is missing/);
  });

  it('exits 1 naming seq 7 when events 7 and 8 were swapped', async () => {
    const swapped = [...events.slice(0, 6), at(8), at(7), ...events.slice(8)];
    const result = await verifyCli('--file', await writeExport(swapped));
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/first bad seq 7 \(line 7\)/);
  });

  it('exits 1 when a forged event with a recomputed hash was slipped in between 7 and 8 and the rest renumbered', async () => {
    const forgedBody = {
      ...at(8),
      eventId: randomUUID(),
      action: 'grant.approved',
      payload: { forged: true },
      seq: 8,
      prevHash: at(7).hash,
    };
    const forged = { ...forgedBody, hash: hashEvent(forgedBody) };
    const renumbered = events.slice(7).map((e) => ({ ...e, seq: e.seq + 1 }));
    const result = await verifyCli('--file', await writeExport([...events.slice(0, 7), forged, ...renumbered]));
    expect(result.code).toBe(1);
    // The forgery itself is self-consistent; the chain breaks at the event after it.
    expect(result.stdout).toMatch(/first bad seq 9 \(line 9\): prevHash does not match/);
  });

  it('exits 1 naming the repeated seq 8 when a forged event 8 was inserted before the real one', async () => {
    const forgedBody = { ...at(8), eventId: randomUUID(), payload: { forged: true }, prevHash: at(7).hash };
    const forged = { ...forgedBody, hash: hashEvent(forgedBody) };
    const result = await verifyCli('--file', await writeExport([...events.slice(0, 7), forged, ...events.slice(7)]));
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/event 8 is out of order or repeated/);
  });

  it('exits 1 naming seq 18 for an export cut short at the end, when given the chain head', async () => {
    const file = await writeExport(events.slice(0, 17));
    // Without the head a truncated export is indistinguishable from an older, complete one.
    expect((await verifyCli('--file', file)).code).toBe(0);
    const result = await verifyCli('--file', file, '--head-seq', String(head.seq), '--head-hash', head.hash);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/first bad seq 18 .*chain head is 20/);
  });

  it('exits 2 naming the line for a line that is not JSON', async () => {
    const lines: unknown[] = [...events];
    lines[4] = '{"tenantId": "truncated';
    const result = await verifyCli('--file', await writeExport(lines));
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/line 5 is not valid JSON/);
  });

  it('exits 2 for a file that cannot be read', async () => {
    const result = await verifyCli('--file', path.join(dir, 'no-such-export.ndjson'));
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/cannot read .*no-such-export\.ndjson: ENOENT/);
  });

  it('exits 2 when --file is missing', async () => {
    const result = await verifyCli();
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--file/);
  });
});
