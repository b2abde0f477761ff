/** A parsed JSON body, loosely typed: tests assert on its shape. */
export type Json = Record<string, any>;

export interface ApiResponse {
  status: number;
  /** The parsed JSON body, or `{}` when the response has none. */
  body: Json;
  headers: Headers;
}

export interface CallOptions {
  /** Extra request headers, e.g. `idempotency-key`. */
  headers?: Record<string, string>;
  /** The body's content type; a string body is sent as it is, anything else as JSON. */
  contentType?: string;
}

export type Call = (token: string | undefined, method: string, path: string, body?: unknown, options?: CallOptions) => Promise<ApiResponse>;

/**
 * The e2e tier's HTTP client: `call(token, method, path, body?)` against the API at `baseUrl()`
 * (read at each call, so it can be made before the stack starts), as the bearer of `token`.
 */
export function apiClient(baseUrl: () => string): Call {
  return async (token, method, path, body, { headers = {}, contentType = 'application/json' } = {}) => {
    const response = await fetch(`${baseUrl()}${path}`, {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body !== undefined ? { 'content-type': contentType } : {}),
        ...headers,
      },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
    const text = await response.text();
    return { status: response.status, body: text ? (JSON.parse(text) as Json) : {}, headers: response.headers };
  };
}

/** The body of a response that must have `status` (200 by default); otherwise the test fails showing the body. */
export function bodyOf(response: { status: number; body: Json }, status = 200): Json {
  if (response.status !== status) throw new Error(`expected HTTP ${status}, got ${response.status}: ${JSON.stringify(response.body)}`);
  return response.body;
}
