import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { InvalidArgumentError, type Command } from 'commander';
import { z } from 'zod';
import { ChainVerifier, type AuditEvent, type VerifyResult } from '../core/audit/chain.js';
import { AuditEventView, ChainId, ExportFormat } from '../core/audit/schemas.js';

/** Exit codes, so scripts can tell "tampered" (1) from "could not check or fetch" (2). */
export const EXIT = { ok: 0, broken: 1, failed: 2 } as const;

/** Usage and I/O problems; raised to the command, which prints it and exits 2. */
class CliError extends Error {}

function integer(value: string): number {
  if (!/^\d{1,15}$/.test(value)) throw new InvalidArgumentError('must be a non-negative integer');
  return Number(value);
}

function sha256(value: string): string {
  if (!/^[0-9a-f]{64}$/.test(value)) throw new InvalidArgumentError('must be 64 lowercase hex digits');
  return value;
}

export interface FileVerification extends VerifyResult {
  /** Line of the file where the chain broke. */
  badLine: number | null;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;
const GUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const MILLIS_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const ACTOR_TYPES = new Set(['user', 'service', 'system']);

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const isPair = (value: unknown): boolean => isRecord(value) && typeof value.id === 'string' && typeof value.type === 'string';

/**
 * The shape of an event as every export writes it, checked by hand: a narrower test than
 * AuditEventView (which decides, and names the field, whenever this says no), at a fraction of
 * the cost per line.
 */
function looksLikeEvent(value: unknown): value is AuditEvent {
  if (!isRecord(value)) return false;
  const { tenantId, seq, eventId, occurredAt, actor, action, target, authority, workflowId, runId, payload, prevHash, hash } = value;
  return (
    typeof tenantId === 'string' &&
    tenantId.length > 0 &&
    Number.isSafeInteger(seq) &&
    (seq as number) > 0 &&
    typeof eventId === 'string' &&
    GUID.test(eventId) &&
    typeof occurredAt === 'string' &&
    MILLIS_UTC.test(occurredAt) &&
    isPair(actor) &&
    ACTOR_TYPES.has((actor as { type: string }).type) &&
    typeof action === 'string' &&
    (target === null || isPair(target)) &&
    isRecord(authority) &&
    (workflowId === null || typeof workflowId === 'string') &&
    (runId === null || typeof runId === 'string') &&
    isRecord(payload) &&
    typeof prevHash === 'string' &&
    SHA256_HEX.test(prevHash) &&
    typeof hash === 'string' &&
    SHA256_HEX.test(hash)
  );
}

/** Lines of a file, read in large chunks: far cheaper per line than readline. */
async function* fileLines(file: string): AsyncGenerator<string> {
  const input = createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 20 });
  // Fail on a missing or unreadable file before reading, with the OS's reason.
  await new Promise<void>((resolve, reject) => {
    input.once('open', () => resolve());
    input.once('error', (error) => reject(new CliError(`cannot read ${file}: ${error.message}`, { cause: error })));
  });
  let rest = '';
  try {
    for await (const chunk of input as AsyncIterable<string>) {
      const text = rest + chunk;
      let start = 0;
      for (let end = text.indexOf('\n'); end !== -1; end = text.indexOf('\n', start)) {
        yield text.charCodeAt(end - 1) === 13 ? text.slice(start, end - 1) : text.slice(start, end);
        start = end + 1;
      }
      rest = text.slice(start);
    }
    if (rest !== '') yield rest.endsWith('\r') ? rest.slice(0, -1) : rest;
  } finally {
    input.destroy();
  }
}

/**
 * Verifies an NDJSON export as it streams in, so memory stays flat whatever the file's size. The
 * parsed objects go to the verifier unchanged: a field added to an event must break its hash,
 * not be silently dropped by validation.
 */
export async function verifyExportFile(file: string, head?: { seq: number; hash: string }): Promise<FileVerification> {
  const verifier = new ChainVerifier();
  let lineNo = 0;
  let badLine: number | null = null;
  try {
    for await (const line of fileLines(file)) {
      lineNo++;
      if (line.trim() === '') continue;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch (error) {
        throw new CliError(`line ${lineNo} is not valid JSON: ${(error as Error).message}`, { cause: error });
      }
      if (!looksLikeEvent(value)) {
        const shape = AuditEventView.safeParse(value);
        if (!shape.success) {
          const issue = shape.error.issues[0]!;
          const sofar = verifier.finish();
          const reason = `line ${lineNo} is not an audit event: ${issue.path.join('.') || '(event)'} ${issue.message}`;
          return { ...sofar, intact: false, firstBadSeq: sofar.checked + 1, reason, badLine: lineNo };
        }
      }
      if (!verifier.push(value as AuditEvent)) {
        badLine = lineNo;
        break;
      }
    }
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new CliError(`cannot read ${file}: ${(error as Error).message}`, { cause: error });
  }
  const result = verifier.finish(head);
  return { ...result, badLine: result.intact ? null : (badLine ?? lineNo + 1) };
}

function report(result: FileVerification): string {
  if (result.intact)
    return `intact: ${result.checked} events checked${result.lastSeq !== null ? ` (last seq ${result.lastSeq}, hash ${result.lastHash})` : ''}\n`;
  return [
    `BROKEN: first bad seq ${result.firstBadSeq} (line ${result.badLine}): ${result.reason}`,
    `${result.checked} events verified before it.`,
    '',
  ].join('\n');
}

const ClientEnv = z.object({
  TENURE_URL: z.url({ protocol: /^https?$/ }).default('http://127.0.0.1:3000'),
  TENURE_TOKEN: z.string().min(1, 'is required: an API token with audit.read'),
});

async function exportChain(options: {
  chain: string;
  format: string;
  out: string;
  from?: string;
  to?: string;
  action?: string;
}): Promise<string> {
  const env = ClientEnv.safeParse(process.env);
  if (!env.success) throw new CliError(env.error.issues.map((i) => `${i.path.join('.')} ${i.message}`).join('; '));
  const chain = ChainId.safeParse(options.chain);
  if (!chain.success) throw new CliError(`--chain must be a tenant id or "msp"`);
  const format = ExportFormat.safeParse(options.format);
  if (!format.success) throw new CliError('--format must be ndjson or csv');

  const url = new URL(`/v1/audit/${encodeURIComponent(chain.data)}/export`, env.data.TENURE_URL);
  url.searchParams.set('format', format.data);
  for (const key of ['from', 'to', 'action'] as const) {
    if (options[key]) url.searchParams.set(key, options[key]);
  }
  const response = await fetch(url, { headers: { authorization: `Bearer ${env.data.TENURE_TOKEN}` } }).catch((error: unknown) => {
    throw new CliError(`cannot reach ${env.data.TENURE_URL}: ${(error as Error).message}`, { cause: error });
  });
  if (!response.ok || !response.body) {
    const body = await response.text();
    throw new CliError(`export failed: HTTP ${response.status} ${body}`);
  }
  // Written aside and renamed at the end, so an interrupted download never looks like an export.
  const partial = `${options.out}.partial`;
  try {
    await pipeline(Readable.fromWeb(response.body as WebReadableStream<Uint8Array>), createWriteStream(partial));
  } catch (error) {
    await rm(partial, { force: true });
    throw new CliError(`export to ${options.out} failed: ${(error as Error).message}`, { cause: error });
  }
  await rename(partial, options.out);
  const seq = response.headers.get('x-audit-head-seq');
  const hash = response.headers.get('x-audit-head-hash');
  const lines = [`exported chain ${chain.data} to ${options.out}`, `chain head: seq ${seq}, hash ${hash}`];
  if (format.data === 'ndjson' && !options.from && !options.to && !options.action) {
    lines.push(`verify with: tenure audit verify --file ${options.out} --head-seq ${seq} --head-hash ${hash}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Runs an action; a CliError is printed and exits 2, anything else is a bug and propagates. */
async function guarded(action: () => Promise<number>): Promise<void> {
  try {
    process.exitCode = await action();
  } catch (error) {
    if (!(error instanceof CliError)) throw error;
    process.stderr.write(`tenure: ${error.message}\n`);
    process.exitCode = EXIT.failed;
  }
}

export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description('Export and verify tenant-scoped audit evidence.');
  // Commander's own usage errors exit 1, which `verify` uses for "tampered"; make them 2.
  const usageExit = (error: { exitCode: number }) => process.exit(error.exitCode === 0 ? 0 : EXIT.failed);

  audit
    .command('verify')
    .description(
      'Verify an NDJSON export offline: no database or network. Exit 0 intact, 1 broken (altered, removed, reordered or inserted events), 2 unreadable.',
    )
    .requiredOption('--file <path>', 'the NDJSON export')
    .option('--head-seq <n>', 'the chain head seq at export time (X-Audit-Head-Seq), to catch events cut off the end', integer)
    .option('--head-hash <hex>', 'the chain head hash at export time (X-Audit-Head-Hash)', sha256)
    .exitOverride(usageExit)
    .action((options: { file: string; headSeq?: number; headHash?: string }) =>
      guarded(async () => {
        if ((options.headSeq === undefined) !== (options.headHash === undefined)) {
          throw new CliError('--head-seq and --head-hash go together');
        }
        const head = options.headSeq !== undefined ? { seq: options.headSeq, hash: options.headHash! } : undefined;
        const result = await verifyExportFile(options.file, head);
        process.stdout.write(report(result));
        return result.intact ? EXIT.ok : EXIT.broken;
      }),
    );

  audit
    .command('export')
    .description('Download a chain through the API (TENURE_URL, default http://127.0.0.1:3000; bearer token in TENURE_TOKEN).')
    .requiredOption('--chain <id>', 'a tenant id, or "msp" for the MSP chain')
    .option('--format <format>', 'ndjson or csv', 'ndjson')
    .requiredOption('--out <file>', 'where to write the export')
    .option('--from <time>', 'only events at or after this ISO time')
    .option('--to <time>', 'only events before this ISO time')
    .option('--action <action>', 'only events with this action')
    .exitOverride(usageExit)
    .action((options: { chain: string; format: string; out: string; from?: string; to?: string; action?: string }) =>
      guarded(async () => {
        process.stdout.write(await exportChain(options));
        return EXIT.ok;
      }),
    );
}
