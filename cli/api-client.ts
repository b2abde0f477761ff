import { writeFile } from 'node:fs/promises';
import { Option, type Command } from 'commander';
import { EXIT, exitCodeForStatus, type ExitCode } from './exit-codes.js';
import { colours, OUTPUT_FORMATS, outputFormat, render, type OutputFormat } from './output.js';

/** Talks to a running Tenure API as the operator at the terminal: TENURE_URL and TENURE_TOKEN. */
export interface ApiClient {
  request<T = unknown>(method: string, path: string, body?: unknown, extraHeaders?: Record<string, string>): Promise<T>;
  raw(method: string, path: string): Promise<Response>;
  /** Sends a body that is not JSON (a CSV or NDJSON import) and parses the JSON answer. */
  sendText<T = unknown>(method: string, path: string, text: string, contentType: string): Promise<T>;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: { error?: { code?: string; message?: string; issues?: { path: string; message: string }[] } },
  ) {
    super(body.error?.message ?? `HTTP ${status}`);
  }
}

/** The API did not answer at all (refused connection, DNS, TLS): exit 5. */
export class UnreachableError extends Error {}

/** A mistake on the command line that commander cannot see (a bad value's shape): exit 2. */
export class UsageError extends Error {}

/** Parses an error answer's body; a proxy's HTML page or an empty body is still an ApiError with the status. */
function errorBody(text: string): ApiError['body'] {
  try {
    return (text ? JSON.parse(text) : {}) as ApiError['body'];
  } catch {
    return { error: { message: text.slice(0, 200) } };
  }
}

export function apiClient(options: { url?: string; token?: string }): ApiClient {
  const base = (options.url ?? process.env.TENURE_URL ?? 'http://127.0.0.1:3000').replace(/\/$/, '');
  const token = options.token ?? process.env.TENURE_TOKEN;
  const headers = (json: boolean): Record<string, string> => ({
    ...(token ? { authorization: `Bearer ${token}` } : {}),
    ...(json ? { 'content-type': 'application/json' } : {}),
  });
  const send = async (method: string, path: string, init: { body?: string; headers?: Record<string, string> }) => {
    try {
      return await fetch(`${base}${path}`, {
        method,
        headers: { ...headers(false), ...init.headers },
        ...(init.body !== undefined ? { body: init.body } : {}),
      });
    } catch (error) {
      throw new UnreachableError(`cannot reach the Tenure API at ${base} (set TENURE_URL or --url): ${(error as Error).message}`, {
        cause: error,
      });
    }
  };
  const raw = (method: string, path: string, body?: unknown, extraHeaders: Record<string, string> = {}) =>
    send(method, path, {
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      headers: { ...headers(body !== undefined), ...extraHeaders },
    });
  const answer = async <T>(response: Response): Promise<T> => {
    const text = await response.text();
    if (!response.ok) throw new ApiError(response.status, errorBody(text));
    return (text ? JSON.parse(text) : undefined) as T;
  };
  return {
    raw: (method, path) => raw(method, path),
    async request<T>(method: string, path: string, body?: unknown, extraHeaders?: Record<string, string>): Promise<T> {
      return answer<T>(await raw(method, path, body, extraHeaders));
    },
    async sendText<T>(method: string, path: string, text: string, contentType: string): Promise<T> {
      return answer<T>(await send(method, path, { body: text, headers: { 'content-type': contentType } }));
    },
  };
}

/** Adds --url/--token and the output options to a command that talks to the API. */
export function withConnection(command: Command): Command {
  return command
    .option('--url <url>', 'Tenure API base URL (default: $TENURE_URL or http://127.0.0.1:3000)')
    .option('--token <token>', 'bearer token (default: $TENURE_TOKEN)')
    .option('--json', "print the API's answer as JSON (for scripts; the same as -o json)")
    .addOption(new Option('-o, --output <format>', 'table (default), wide (more columns) or json').choices(OUTPUT_FORMATS));
}

/** The format the running command prints in; set from its options before its action runs (see main.ts). */
let format: OutputFormat = 'table';
export function setOutputFormat(options: { json?: boolean; output?: string }): void {
  format = outputFormat(options);
}
export function currentOutputFormat(): OutputFormat {
  return format;
}

/**
 * Prints an error the way the reader wants it and answers its exit code: JSON on stderr with
 * --json; otherwise a sentence, with the API's field paths one per line, coloured on a terminal.
 */
export function printError(error: unknown): ExitCode {
  const code =
    error instanceof ApiError
      ? exitCodeForStatus(error.status)
      : error instanceof UnreachableError
        ? EXIT.unreachable
        : error instanceof UsageError
          ? EXIT.usage
          : EXIT.failed;
  const message = error instanceof Error ? error.message : String(error);
  const issues = error instanceof ApiError ? (error.body.error?.issues ?? []) : [];
  if (format === 'json') {
    const body = error instanceof ApiError ? { status: error.status, ...error.body.error, message } : { message };
    process.stderr.write(`${JSON.stringify({ error: body, exitCode: code })}\n`);
    return code;
  }
  if (!process.stderr.isTTY) {
    process.stderr.write(`tenure: ${error instanceof ApiError ? `${error.status} ` : ''}${message}\n`);
    for (const issue of issues) process.stderr.write(`  ${issue.path}: ${issue.message}\n`);
    return code;
  }
  const c = colours(process.stderr);
  const status =
    error instanceof ApiError ? c.dim(` (HTTP ${error.status}${error.body.error?.code ? ` ${error.body.error.code}` : ''})`) : '';
  process.stderr.write(`${c.red(c.bold('Error:'))} ${message}${status}\n`);
  for (const issue of issues) process.stderr.write(`  ${c.yellow(issue.path || '(body)')}  ${issue.message}\n`);
  return code;
}

/**
 * Runs a CLI action and prints the API's answer in the chosen format (`view` names the kind of
 * record when the answer does not: a bare list or one resource), or its error (exit code by kind).
 */
export async function runAction(fn: () => Promise<unknown>, view?: string): Promise<void> {
  try {
    const result = await fn();
    if (result !== undefined) process.stdout.write(render(result, format, colours(process.stdout), view));
  } catch (error) {
    process.exitCode = printError(error);
  }
}

/**
 * Fetches a document (a CSV or HTML report) and prints it, or writes it to `out` and says so
 * (naming `header`'s value, e.g. the report's hash); an error answer is an ApiError.
 */
export async function fetchDocument(client: ApiClient, path: string, out?: string, header?: string): Promise<void> {
  const response = await client.raw('GET', path);
  const text = await response.text();
  if (!response.ok) throw new ApiError(response.status, errorBody(text));
  if (!out) return void process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  await writeFile(out, text);
  const named = header ? response.headers.get(header) : null;
  process.stderr.write(`wrote ${out}${named ? ` (${header}: ${named})` : ''}\n`);
}
