import { useEffect, useRef, useState, type FormEvent } from 'react';
import { useLocation, useNavigate } from 'react-router';
import { useMutation, useQuery } from '@tanstack/react-query';
import { api, unwrap } from '../../api/client';
import { useSession } from '../../auth/session';
import { completeOidcSignIn, isOidcCallback, startOidcSignIn } from '../../auth/oidc';
import { ErrorNotice, Loading } from '../../components/Feedback';
import '../grants/grants.css';

/**
 * Sign-in: the organisation's OIDC provider (PKCE) when configured, the demo MSP's actors when the
 * embedded demo runs (never in production), and an API token always.
 */
export function SignIn() {
  const { signIn, endedBecause } = useSession();
  const location = useLocation();
  const navigate = useNavigate();
  const config = useQuery({
    queryKey: ['console-config'],
    queryFn: async () => unwrap(await api.GET('/console/config.json')),
    staleTime: Infinity,
  });
  const returnTo = `${location.pathname}${location.search}`;

  const demo = useMutation({
    mutationFn: async (actor: string) => unwrap(await api.POST('/console/demo-sign-in', { body: { actor } })),
    onSuccess: (session) => signIn({ token: session.token, method: 'demo' }),
  });
  const oidcStart = useMutation({ mutationFn: () => startOidcSignIn(config.data!.oidc!, returnTo) });

  // Back from the provider: trade the code once (StrictMode runs effects twice in development).
  const completing = useRef(false);
  const oidc = config.data?.oidc;
  const callback = isOidcCallback(oidc);
  const [callbackError, setCallbackError] = useState<unknown>();
  useEffect(() => {
    if (!oidc || !callback || completing.current) return;
    completing.current = true;
    completeOidcSignIn(oidc).then(
      ({ session, returnTo: back }) => {
        signIn(session);
        void navigate(back.startsWith('/oidc/') ? '/' : back, { replace: true });
      },
      (error: unknown) => setCallbackError(error),
    );
  }, [oidc, callback, signIn, navigate]);

  const [token, setToken] = useState('');
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (token.trim()) signIn({ token: token.trim(), method: 'token' });
  };

  return (
    <main className="sign-in" id="main">
      <h1>Sign in to Tenure</h1>
      {endedBecause ? (
        <p className="notice" role="status">
          {endedBecause}
        </p>
      ) : null}
      {config.isPending ? <Loading what="sign-in options" /> : null}
      <ErrorNotice error={config.error} />
      {callback && !callbackError ? <Loading what="your sign-in" /> : null}
      {callbackError ? (
        <div className="error" role="alert">
          <p>
            <strong>Signing in with your organisation did not complete.</strong> {(callbackError as Error).message} Try again below.
          </p>
        </div>
      ) : null}

      {oidc ? (
        <section aria-labelledby="oidc-title">
          <h2 id="oidc-title">Your organisation</h2>
          <button type="button" onClick={() => oidcStart.mutate()} disabled={oidcStart.isPending || callback}>
            Sign in with your organisation
          </button>
          <ErrorNotice error={oidcStart.error} />
        </section>
      ) : null}

      {config.data?.demo ? (
        <section aria-labelledby="demo-title">
          <h2 id="demo-title">Demo: sign in as …</h2>
          <p className="muted">The embedded demo MSP. This choice exists only while the demo runs, never in production.</p>
          <ul className="pick-list">
            {config.data.demo.actors.map((actor) => (
              <li key={actor.key}>
                <button
                  type="button"
                  className="secondary"
                  onClick={() => demo.mutate(actor.key)}
                  disabled={demo.isPending}
                  aria-describedby={`demo-${actor.key}-roles`}
                >
                  {actor.displayName}
                </button>
                <span id={`demo-${actor.key}-roles`} className="muted">
                  {actor.roles}
                </span>
              </li>
            ))}
          </ul>
          <ErrorNotice error={demo.error} />
        </section>
      ) : null}

      <section aria-labelledby="token-title">
        <h2 id="token-title">API token</h2>
        <form onSubmit={submit}>
          <label htmlFor="token">API token (tnr_…)</label>
          <input id="token" type="password" autoComplete="off" value={token} onChange={(e) => setToken(e.target.value)} />{' '}
          <button type="submit">Sign in</button>
        </form>
      </section>
    </main>
  );
}
