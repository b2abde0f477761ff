import { Command, Option } from 'commander';
import picocolors from 'picocolors';
import { describe, expect, it } from 'vitest';
import { bashCompletion, commandTree, zshCompletion } from '../cli/completion.js';
import { EXIT, exitCodeForStatus } from '../cli/exit-codes.js';
import { colourEnabled, outputFormat, render } from '../cli/output.js';
import { loadConfig } from '../core/config.js';
import { resolveLogFormat } from '../runtime/logger.js';

/** How the CLI prints answers and errors, without a server: formats, colour rules, exit codes, completion. */
const plain = picocolors.createColors(false);
const grant = (n: number, status: string) => ({
  grantId: `g-${n}`,
  tenantId: 't-1',
  subjectId: `user-${n}`,
  role: 'HelpdeskAdmin',
  status,
  endReason: null,
  ticket: 'INC-1',
  requesterId: 'op',
  approvalsRequired: 0,
  approvals: [],
  startAt: '2026-01-05T08:00:00.000Z',
  endAt: '2026-01-05T09:00:00.000Z',
  activatedAt: null,
  endedAt: null,
});

describe('CLI output', () => {
  it('--json and -o json print the answer exactly as JSON.stringify(…, null, 2) did before tables', () => {
    const answer = { grants: [grant(1, 'active')], nextCursor: null };
    expect(render(answer, outputFormat({ json: true }), plain)).toBe(`${JSON.stringify(answer, null, 2)}\n`);
    expect(outputFormat({ output: 'json' })).toBe('json');
    expect(outputFormat({ json: true, output: 'wide' })).toBe('json');
    expect(outputFormat({})).toBe('table');
  });

  it('a page of grants is a table of the columns people scan by; -o wide adds more; times lose their milliseconds', () => {
    const answer = { grants: [grant(1, 'active'), grant(2, 'pending_approval')], nextCursor: 'abc' };
    const lines = render(answer, 'table', plain).trimEnd().split('\n');
    expect(lines[0]).toMatch(/^GRANT ID\s+SUBJECT ID\s+ROLE\s+STATUS\s+START AT\s+END AT$/);
    expect(lines[1]).toMatch(/^g-1\s+user-1\s+HelpdeskAdmin\s+active\s+2026-01-05 08:00:00Z\s+2026-01-05 09:00:00Z$/);
    expect(lines[2]).toMatch(/^g-2\s+user-2\s+HelpdeskAdmin\s+pending_approval/);
    expect(lines[3]).toBe('nextCursor: abc');
    expect(lines.join('\n')).not.toContain('t-1');
    const wide = render(answer, 'wide', plain).split('\n')[0];
    expect(wide).toMatch(/END REASON\s+REQUESTER ID\s+TICKET/);
  });

  it('an empty page says so; an unknown list shows its first plain fields; one resource is key/value lines with its lists as tables', () => {
    expect(render({ grants: [], nextCursor: null }, 'table', plain)).toBe('No grants.\n');
    const unknown = render({ things: [{ a: 1, b: 'x', nested: { deep: true } }] }, 'table', plain);
    expect(unknown.split('\n')[0]).toMatch(/^A\s+B$/);
    const shown = render(
      { ...grant(1, 'active'), approvals: [{ approverId: 'ann', at: '2026-01-05T08:00:00Z', comment: null }] },
      'table',
      plain,
    );
    expect(shown).toMatch(/^grantId\s+g-1$/m);
    expect(shown).toMatch(/^endReason\s+-$/m);
    expect(shown).toMatch(/^approvals \(1\)\nAPPROVER ID\s+AT\s+COMMENT\nann\s+2026-01-05 08:00:00Z\s+-$/m);
    const job = render(
      {
        importId: 'i-1',
        failedRows: [{ row: 4, status: 'invalid', issues: [{ path: 'effectiveAt', message: 'Invalid date' }] }],
        counts: { invalid: 1 },
      },
      'table',
      plain,
    );
    expect(job).toMatch(/^4\s+invalid\s+effectiveAt: Invalid date$/m);
  });

  it('one resource lists its fields in the order of the view it matches, not in the jsonb order (shortest key first) the API returns', () => {
    const g = grant(1, 'active');
    const jsonbOrder = Object.fromEntries(Object.entries(g).sort(([a], [b]) => a.length - b.length || a.localeCompare(b)));
    const keys = render(jsonbOrder, 'table', plain)
      .split('\n')
      .map((line) => line.split(/\s+/)[0])
      .filter(Boolean);
    expect(keys.slice(0, 6)).toEqual(['grantId', 'subjectId', 'role', 'status', 'startAt', 'endAt']);
    expect(keys).toContain('tenantId');
  });

  it('colours statuses only when asked: a terminal, or FORCE_COLOR; never with NO_COLOR or TERM=dumb', () => {
    expect(colourEnabled({ isTTY: true }, {})).toBe(true);
    expect(colourEnabled({ isTTY: false }, {})).toBe(false);
    expect(colourEnabled({ isTTY: true }, { NO_COLOR: '1' })).toBe(false);
    expect(colourEnabled({ isTTY: true }, { TERM: 'dumb' })).toBe(false);
    expect(colourEnabled({ isTTY: false }, { FORCE_COLOR: '1' })).toBe(true);
    expect(colourEnabled({ isTTY: true }, { FORCE_COLOR: '0' })).toBe(true);
    expect(colourEnabled({ isTTY: false }, { FORCE_COLOR: '0' })).toBe(false);
    const coloured = render({ grants: [grant(1, 'active')] }, 'table', picocolors.createColors(true));
    expect(coloured).toContain('\u001b[32mactive\u001b[39m');
  });

  it('exit codes by the API’s answer: 2 bad input, 3 not found, 4 refused, 5 unavailable, 1 anything else', () => {
    expect([400, 422].map(exitCodeForStatus)).toEqual([EXIT.usage, EXIT.usage]);
    expect(exitCodeForStatus(404)).toBe(3);
    expect([401, 403, 409, 412, 428].map(exitCodeForStatus)).toEqual([4, 4, 4, 4, 4]);
    expect([502, 503, 504].map(exitCodeForStatus)).toEqual([5, 5, 5]);
    expect([500, 429].map(exitCodeForStatus)).toEqual([1, 1]);
  });
});

describe('shell completion', () => {
  const program = () => {
    const p = new Command().name('tenure');
    const grant = p.command('grant').description('Time-bound admin grants');
    grant
      .command('list')
      .description('List grants')
      .option('--tenant <id>')
      .addOption(new Option('-o, --output <format>').choices(['table', 'wide', 'json']));
    grant.command('watch').description('Follow: a grant').argument('<grantId>');
    p.command('secret', { hidden: true });
    return p;
  };

  it('is generated from the command definitions: every visible command path, its options and their choices', () => {
    const paths = commandTree(program()).map((n) => n.path);
    expect(paths).toEqual(['', 'grant', 'grant list', 'grant watch']);
    const bash = bashCompletion(program());
    expect(bash).toContain(`'grant list') words='' flags='--tenant --output -o --help -h' ;;`);
    expect(bash).toContain(`'grant list|--output'|'grant list|-o') words='table wide json' ;;`);
    expect(bash).not.toContain('secret');
    expect(bash.trimEnd().endsWith('complete -o default -F _tenure tenure')).toBe(true);
    // zsh: descriptions with their colons escaped, so `_describe` splits name from text.
    expect(zshCompletion(program())).toContain('watch:Follow\\: a grant');
  });
});

describe('server log format', () => {
  it('LOG_FORMAT=auto is pretty on a terminal outside production and JSON through a pipe or in production; json/pretty are obeyed', () => {
    expect(loadConfig({}).LOG_FORMAT).toBe('auto');
    expect(() => loadConfig({ LOG_FORMAT: 'yaml' })).toThrow(/LOG_FORMAT/);
    expect(resolveLogFormat('auto', 'development', { isTTY: true })).toBe('pretty');
    expect(resolveLogFormat('auto', 'development', { isTTY: false })).toBe('json');
    expect(resolveLogFormat('auto', 'production', { isTTY: true })).toBe('json');
    expect(resolveLogFormat('json', 'development', { isTTY: true })).toBe('json');
    expect(resolveLogFormat('pretty', 'production', { isTTY: false })).toBe('pretty');
  });
});
