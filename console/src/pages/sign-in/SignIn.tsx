import { useState, type FormEvent } from 'react';
import { useSession } from '../../auth/session';

/** Sign-in with an API token (`tnr_…`); the demo picker and OIDC build on this page. */
export function SignIn() {
  const { signIn, endedBecause } = useSession();
  const [token, setToken] = useState('');
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (token.trim()) signIn({ token: token.trim(), method: 'demo' });
  };
  return (
    <main className="sign-in" id="main">
      <h1>Sign in to Tenure</h1>
      {endedBecause ? (
        <p className="notice" role="status">
          {endedBecause}
        </p>
      ) : null}
      <form onSubmit={submit}>
        <label htmlFor="token">API token</label>
        <input id="token" type="password" autoComplete="off" value={token} onChange={(e) => setToken(e.target.value)} />
        <button type="submit">Sign in</button>
      </form>
    </main>
  );
}
