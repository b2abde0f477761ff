import createClient, { type Middleware } from 'openapi-fetch';
import type { paths } from './schema';
import { currentToken, expireSession } from '../auth/token-store';

/**
 * The API client, typed by `schema.d.ts`, which `npm run build:console` generates from the API's
 * own OpenAPI document: a route or field the API no longer has fails the console's typecheck.
 */
export const api = createClient<paths>({ baseUrl: window.location.origin });

const bearer: Middleware = {
  onRequest({ request }) {
    const token = currentToken();
    // The token travels only in this header: never in a URL, a cookie or a log line.
    if (token) request.headers.set('Authorization', `Bearer ${token}`);
    return request;
  },
  onResponse({ response }) {
    // An expired, revoked or disabled credential: back to sign-in, with the reason.
    if (response.status === 401 && currentToken()) expireSession('Your session has ended. Sign in again.');
    return response;
  },
};
api.use(bearer);

export interface FieldIssue {
  path: string;
  message: string;
}

interface ErrorBody {
  error?: { code?: string; message?: string; requestId?: string; issues?: FieldIssue[] };
}

/** An API answer that was not a success, with what the API said about it. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly issues: FieldIssue[] = [],
    readonly requestId?: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /** The message for one field (by its API path, e.g. `body.ticket`), if the API named it. */
  issueFor(path: string): string | undefined {
    return this.issues.find((issue) => issue.path === path || issue.path.startsWith(`${path}.`))?.message;
  }
}

/** The data of a successful answer, or an ApiError carrying the API's code, message and field paths. */
export function unwrap<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (result.response.ok && result.error === undefined) return result.data as T;
  const body = (result.error ?? {}) as ErrorBody;
  const status = result.response.status;
  throw new ApiError(
    status,
    body.error?.code ?? `http_${status}`,
    body.error?.message ?? `The API answered ${status}.`,
    body.error?.issues ?? [],
    body.error?.requestId ?? result.response.headers.get('X-Request-Id') ?? undefined,
  );
}
