import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';

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
      throw new Error(`cannot reach the Tenure API at ${base} (set TENURE_URL or --url): ${(error as Error).message}`, { cause: error });
    }
  };
  const raw = (method: string, path: string, body?: unknown, extraHeaders: Record<string, string> = {}) =>
    send(method, path, {
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      headers: { ...headers(body !== undefined), ...extraHeaders },
    });
  const answer = async <T>(response: Response): Promise<T> => {
    const text = await response.text();
    if (!response.ok) throw new ApiError(response.status, (text ? JSON.parse(text) : {}) as ApiError['body']);
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

/** Adds --url/--token to a command group. */
export function withConnection(command: Command): Command {
  return command
    .option('--url <url>', 'Tenure API base URL (default: $TENURE_URL or http://127.0.0.1:3000)')
    .option('--token <token>', 'bearer token (default: $TENURE_TOKEN)');
}

/** Runs a CLI action, printing the API's answer as JSON, or its error with field paths (exit 1). */
export async function runAction(fn: () => Promise<unknown>): Promise<void> {
  try {
    const result = await fn();
    if (result !== undefined) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  } catch (error) {
    if (error instanceof ApiError) {
      process.stderr.write(`tenure: ${error.status} ${error.message}\n`);
      for (const issue of error.body.error?.issues ?? []) process.stderr.write(`  ${issue.path}: ${issue.message}\n`);
    } else {
      process.stderr.write(`tenure: ${(error as Error).message}\n`);
    }
    process.exitCode = 1;
  }
}

/**
 * Fetches a document (a CSV or HTML report) and prints it, or writes it to `out` and says so
 * (naming `header`'s value, e.g. the report's hash); an error answer is an ApiError.
 */
export async function fetchDocument(client: ApiClient, path: string, out?: string, header?: string): Promise<void> {
  const response = await client.raw('GET', path);
  const text = await response.text();
  if (!response.ok) throw new ApiError(response.status, (text ? JSON.parse(text) : {}) as ApiError['body']);
  if (!out) return void process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  await writeFile(out, text);
  const named = header ? response.headers.get(header) : null;
  process.stderr.write(`wrote ${out}${named ? ` (${header}: ${named})` : ''}\n`);
}
