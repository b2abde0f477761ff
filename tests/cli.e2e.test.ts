import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresDirectory } from '../connectors/directory/postgres.js';
import { runBash, runCli, runCliInTerminal, runCliOk, startCli } from './support/cli.js';
import { apiClient, type Json } from './support/http.js';
import { eventually, startTestStack, type TestStack } from './support/stack.js';
import { seedTenancy, setPolicy, type TestTenancy } from './support/tenancy.js';

/**
 * The `tenure` CLI as a person and a script meet it, against the real stack: tables by default,
 * the API's JSON with --json, exit codes by kind of failure, `grant watch` following a grant to
 * its end, and shell completion that loads in bash.
 */
let stack: TestStack;
let id: TestTenancy;
const call = apiClient(() => stack.baseUrl);
const as = (token: string) => ({ TENURE_URL: stack.baseUrl, TENURE_TOKEN: token });
const grants = () => `/v1/tenants/${id.tenantA}/grants`;
const ESC = String.fromCharCode(27);

beforeAll(async () => {
  stack = await startTestStack();
  id = await seedTenancy(stack.pool);
  const directory = createPostgresDirectory(stack.pool);
  await directory.upsertRole(id.tenantA, { name: 'HelpdeskAdmin', privileged: true });
  await directory.upsertRole(id.tenantA, { name: 'GlobalAdmin', privileged: true });
  for (const user of ['alex', 'casey']) await directory.upsertUser(id.tenantA, { id: user, username: user, displayName: user });
  const policy = {
    expectedVersion: 1,
    document: {
      grants: {
        roles: {
          HelpdeskAdmin: { maxDurationMinutes: 30, approvalsRequired: 0, requestableBy: ['operator'] },
          GlobalAdmin: { maxDurationMinutes: 30, approvalsRequired: 1, requestableBy: ['operator'] },
        },
        ticketPattern: 'INC-\\d+',
        maxTotalDurationMinutes: 120,
      },
    },
  };
  const { approval } = await setPolicy(call, { proposer: id.tokens.mspAdmin!, approver: id.tokens.approverA! }, id.tenantA, policy);
  expect(approval?.body.status).toBe('applied');
}, 120_000);

afterAll(async () => {
  await stack?.stop();
});

async function requestGrant(role: string, subject: string): Promise<string> {
  const response = await call(id.tokens.operator, 'POST', grants(), {
    subjectId: subject,
    role,
    durationMinutes: 10,
    justification: 'cli e2e',
    ticket: 'INC-1',
  });
  expect(response.status).toBe(201);
  return response.body.grantId as string;
}

const grantStatus = async (grantId: string) => (await call(id.tokens.operator, 'GET', `${grants()}/${grantId}`)).body.status;

describe('tenure CLI output', () => {
  it('prints a table by default, more columns with -o wide, and exactly the API’s JSON with --json or -o json', async () => {
    const grantId = await requestGrant('HelpdeskAdmin', 'alex');
    const args = ['grant', 'list', '--tenant', id.tenantA];
    const table = await runCliOk(args, as(id.tokens.operator!));
    const [header, ...rows] = table.stdout.trimEnd().split('\n');
    expect(header).toMatch(/^GRANT ID\s+SUBJECT ID\s+ROLE\s+STATUS\s+START AT\s+END AT$/);
    expect(rows.find((row) => row.startsWith(grantId))).toMatch(/alex\s+HelpdeskAdmin\s+(pending_approval|scheduled|active)/);
    expect(table.stdout).not.toContain('{');
    expect(table.stdout).not.toContain(ESC); // no colour through a pipe

    const wide = await runCliOk([...args, '-o', 'wide'], as(id.tokens.operator!));
    expect(wide.stdout.split('\n')[0]).toMatch(/END REASON\s+REQUESTER ID\s+TICKET/);

    const api = (await call(id.tokens.operator, 'GET', grants())).body;
    const json = await runCliOk([...args, '--json'], as(id.tokens.operator!));
    const parsed = JSON.parse(json.stdout) as { grants: Json[] };
    expect(parsed.grants.map((g) => g.grantId)).toEqual(api.grants.map((g: Json) => g.grantId));
    expect(json.stdout).toBe(`${JSON.stringify(parsed, null, 2)}\n`);
    expect(JSON.parse((await runCliOk([...args, '-o', 'json'], as(id.tokens.operator!))).stdout)).toEqual(parsed);

    const shown = await runCliOk(['grant', 'show', grantId, '--tenant', id.tenantA], as(id.tokens.operator!));
    expect(shown.stdout).toMatch(new RegExp(`^grantId\\s+${grantId}$`, 'm'));
    expect(shown.stdout).toMatch(/^role\s+HelpdeskAdmin$/m);
  }, 240_000); // six CLI processes, each compiling the CLI with tsx: slow on a loaded machine

  it('colours on a terminal, not with NO_COLOR; errors there are a sentence with the API’s field paths', async () => {
    const args = ['grant', 'list', '--tenant', id.tenantA];
    expect((await runCliInTerminal(args, as(id.tokens.operator!))).output).toContain(`${ESC}[1mGRANT ID`);
    expect((await runCliInTerminal(args, { ...as(id.tokens.operator!), NO_COLOR: '1' })).output).not.toContain(ESC);

    const refused = await runCliInTerminal(
      ['grant', 'request', '--tenant', id.tenantA, '--subject', 'alex', '--role', 'HelpdeskAdmin', '--minutes', '0'],
      as(id.tokens.operator!),
    );
    expect(refused.code).toBe(2);
    expect(refused.output).toMatch(/Error:.*\(HTTP 400/);
    expect(refused.output).toMatch(/body\.durationMinutes/);
  }, 180_000);

  it('exit codes: 3 not found, 2 usage, 4 refused, 5 unreachable; with --json the error is JSON on stderr', async () => {
    const missing = ['grant', 'show', randomUUID(), '--tenant', id.tenantA];
    const notFound = await runCli(missing, as(id.tokens.operator!));
    expect(notFound.code).toBe(3);
    expect(notFound.stderr).toMatch(/^tenure: 404 /);
    const notFoundJson = await runCli([...missing, '--json'], as(id.tokens.operator!));
    expect(notFoundJson.code).toBe(3);
    expect(notFoundJson.stdout).toBe('');
    expect(JSON.parse(notFoundJson.stderr)).toMatchObject({ error: { status: 404, code: expect.any(String) }, exitCode: 3 });

    const usage = await runCli(['grant', 'list'], as(id.tokens.operator!)); // --tenant is required
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("required option '--tenant <tenantId>'");
    expect((await runCli(['grant', 'list', '--tenant', id.tenantA, '-o', 'yaml'], as(id.tokens.operator!))).code).toBe(2);
    expect((await runCli(['no-such-command'])).code).toBe(2);

    expect((await runCli(['tenant', 'create', '--slug', 'nope', '--name', 'Nope'], as(id.tokens.approverA!))).code).toBe(4);
    const unreachable = await runCli(['grant', 'list', '--tenant', id.tenantA], { TENURE_URL: 'http://127.0.0.1:9', TENURE_TOKEN: 'x' });
    expect(unreachable.code).toBe(5);
    expect(unreachable.stderr).toContain('cannot reach the Tenure API');
  }, 300_000); // eight CLI processes
});

describe('tenure grant watch', () => {
  it('follows a grant live, a line per change, and exits 0 when it is revoked', async () => {
    const grantId = await requestGrant('HelpdeskAdmin', 'casey');
    const watch = startCli(['grant', 'watch', grantId, '--tenant', id.tenantA, '--interval', '0.2'], as(id.tokens.operator!));
    await eventually(
      async () => watch.stdout(),
      (out) => /\sactive\s/.test(out),
      60_000,
    );
    expect((await call(id.tokens.operator, 'POST', `${grants()}/${grantId}/revoke`, {})).status).toBeLessThan(300);
    const result = await watch.result;
    expect(result.code).toBe(0);
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/HelpdeskAdmin for casey/);
    expect(lines.at(-1)).toMatch(/ended \(revoked\)/);
    expect(lines.findIndex((l) => /\sactive\s/.test(l))).toBeLessThan(lines.length - 1);
    expect(await grantStatus(grantId)).toBe('ended');
  }, 120_000);

  it('with --json prints the grant as a JSON line per change, and exits 1 when the grant is denied', async () => {
    const grantId = await requestGrant('GlobalAdmin', 'alex');
    const watch = startCli(['grant', 'watch', grantId, '--tenant', id.tenantA, '--interval', '0.2', '--json'], as(id.tokens.operator!));
    await eventually(
      async () => watch.stdout(),
      (out) => out.includes('pending_approval'),
      60_000,
    );
    expect((await call(id.tokens.approverA, 'POST', `${grants()}/${grantId}/deny`, { comment: 'no' })).status).toBeLessThan(300);
    const result = await watch.result;
    expect(result.code).toBe(1);
    const states = result.stdout
      .trimEnd()
      .split('\n')
      .map((line) => (JSON.parse(line) as Json).status);
    expect(states[0]).toBe('pending_approval');
    expect(states.at(-1)).toBe('denied');
  }, 120_000);

  it('exits 3 for a grant that does not exist', async () => {
    const result = await runCli(['grant', 'watch', randomUUID(), '--tenant', id.tenantA], as(id.tokens.operator!));
    expect(result.code).toBe(3);
  }, 60_000);
});

describe('tenure completion', () => {
  it('bash: the script loads, registers tenure, and completes subcommands, options and their choices', async () => {
    const loaded = await runBash('source <(tenure completion bash) && complete -p tenure');
    expect(loaded.stderr).toBe('');
    expect(loaded).toMatchObject({ code: 0, stdout: 'complete -o default -F _tenure tenure\n' });

    const complete = (words: string[]) =>
      runBash(
        `source <(tenure completion bash)\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _tenure; echo "\${COMPREPLY[*]}"`,
      );
    expect((await complete(['tenure', 'grant', 'wa'])).stdout.trim()).toBe('watch');
    expect((await complete(['tenure', 'grant', 'list', '--tenant', 't', '-o', ''])).stdout.trim()).toBe('table wide json');
    expect((await complete(['tenure', 'completion', ''])).stdout.trim()).toBe('bash zsh');
    expect((await complete(['tenure', 'grant', 'watch', '--in'])).stdout.trim()).toBe('--interval');
  }, 180_000);

  it('zsh: the script defines the completion function for tenure', async () => {
    const { code, stdout } = await runCliOk(['completion', 'zsh']);
    expect(code).toBe(0);
    expect(stdout.startsWith('#compdef tenure\n')).toBe(true);
    expect(stdout).toContain("_tenure_words['grant']=");
    expect(stdout).toContain('watch:Follow a grant live');
  }, 60_000);
});
