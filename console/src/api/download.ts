import { currentToken, expireSession } from '../auth/token-store';
import { ApiError } from './client';

/** The file name a Content-Disposition header gives, or `fallback`. */
function fileNameOf(response: Response, fallback: string): string {
  const match = /filename="([^"]+)"/.exec(response.headers.get('Content-Disposition') ?? '');
  return match?.[1] ?? fallback;
}

/**
 * Downloads an API answer as a file: fetched with the bearer token in the Authorization header
 * (never in the URL, where it would land in history and logs), saved from a Blob.
 */
export async function downloadFile(path: string, query: Record<string, string | undefined>, fallbackName: string): Promise<string> {
  const url = new URL(path, window.location.origin);
  for (const [key, value] of Object.entries(query)) if (value !== undefined && value !== '') url.searchParams.set(key, value);
  const token = currentToken();
  const response = await fetch(url, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
  if (!response.ok) {
    if (response.status === 401 && token) expireSession('Your session has ended. Sign in again.');
    const body = (await response.json().catch(() => ({}))) as { error?: { code?: string; message?: string; requestId?: string } };
    throw new ApiError(
      response.status,
      body.error?.code ?? `http_${response.status}`,
      body.error?.message ?? `The API answered ${response.status}.`,
      [],
      body.error?.requestId ?? response.headers.get('X-Request-Id') ?? undefined,
    );
  }
  const blob = await response.blob();
  const name = fileNameOf(response, fallbackName);
  const href = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = href;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  // The browser has the file once the click is handled; give it a moment before letting go.
  setTimeout(() => URL.revokeObjectURL(href), 10_000);
  return name;
}
