import type { ReactNode } from 'react';
import { ApiError } from '../api/client';

/** What to show when a list is empty: what it would hold, and what to do next. */
export function EmptyState({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="empty" role="status">
      <p className="empty-title">{title}</p>
      {children ? <div className="empty-body">{children}</div> : null}
    </div>
  );
}

function advice(error: ApiError): string {
  if (error.status === 401) return 'Sign in again.';
  if (error.status === 403) return 'Your roles do not allow this. Ask your MSP admin or your organisation’s approver.';
  if (error.status === 404) return 'It does not exist, or it is not in a tenant you can see.';
  if (error.status === 409) return 'It changed meanwhile. Reload and try again.';
  if (error.status === 429) return 'Too many requests. Wait a moment and try again.';
  if (error.status >= 500) return 'Tenure could not answer. Try again; if it keeps failing, give your MSP the request id.';
  return 'Correct the marked fields and try again.';
}

/** An error that says what happened and what to do, with the request id for support. */
export function ErrorNotice({ error }: { error: unknown }) {
  if (!error) return null;
  if (error instanceof ApiError) {
    return (
      <div className="error" role="alert">
        <p>
          <strong>{error.message}</strong> {advice(error)}
        </p>
        {error.issues.length > 0 ? (
          <ul>
            {error.issues.map((issue) => (
              <li key={issue.path}>
                <code>{issue.path}</code>: {issue.message}
              </li>
            ))}
          </ul>
        ) : null}
        {error.requestId ? <p className="muted">Request id: {error.requestId}</p> : null}
      </div>
    );
  }
  const message = error instanceof Error ? error.message : 'unknown error';
  return (
    <div className="error" role="alert">
      <p>
        <strong>Tenure could not be reached.</strong> Check your connection and try again. ({message})
      </p>
    </div>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p className="muted" role="status" aria-live="polite">
      Loading {what}…
    </p>
  );
}
