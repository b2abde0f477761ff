/**
 * The signed-in credential lives in this tab's sessionStorage only: it never goes in a URL, a
 * cookie, localStorage or a log, and closing the tab forgets it.
 */
const KEY = 'tenure.console.session';

export interface StoredSession {
  token: string;
  /** How the user signed in: the demo picker, the organisation's OIDC provider, or a pasted API token. */
  method: 'demo' | 'oidc' | 'token';
  /** When an OIDC access token stops being valid (ms since epoch). */
  expiresAt?: number;
}

type Listener = (session: StoredSession | undefined, reason?: string) => void;
const listeners = new Set<Listener>();

export function readSession(): StoredSession | undefined {
  try {
    const raw = sessionStorage.getItem(KEY);
    if (!raw) return undefined;
    const session = JSON.parse(raw) as StoredSession;
    if (session.expiresAt && session.expiresAt <= Date.now()) {
      sessionStorage.removeItem(KEY);
      return undefined;
    }
    return session;
  } catch {
    return undefined;
  }
}

export function currentToken(): string | undefined {
  return readSession()?.token;
}

export function storeSession(session: StoredSession): void {
  sessionStorage.setItem(KEY, JSON.stringify(session));
  for (const listener of listeners) listener(session);
}

export function clearSession(reason?: string): void {
  sessionStorage.removeItem(KEY);
  for (const listener of listeners) listener(undefined, reason);
}

export function expireSession(reason: string): void {
  clearSession(reason);
}

export function onSessionChange(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}
