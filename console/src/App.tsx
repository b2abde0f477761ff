import { NavLink, Route, Routes } from 'react-router';
import { hasRole, useSession } from './auth/session';
import { routes } from './routes';
import { SignIn } from './pages/sign-in/SignIn';
import { EmptyState } from './components/Feedback';

function NotFound() {
  return (
    <EmptyState title="Not found">
      <p>This page does not exist, or it is not in a tenant you can see.</p>
    </EmptyState>
  );
}

export function App() {
  const { session, me, signOut } = useSession();
  if (!session) return <SignIn />;
  const nav = routes.filter((route) => route.nav && hasRole(me, route.nav.roles)).sort((a, b) => (a.nav?.order ?? 0) - (b.nav?.order ?? 0));
  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <NavLink to="/" className="brand">
          Tenure
        </NavLink>
        <nav aria-label="Main">
          <ul>
            {nav.map((route) => (
              <li key={route.path}>
                <NavLink to={`/${route.path}`}>{route.nav?.label}</NavLink>
              </li>
            ))}
          </ul>
        </nav>
        <div className="who">
          <span>{me?.displayName ?? '…'}</span>
          <button type="button" onClick={signOut}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        <Routes>
          {routes.map((route) => (
            <Route key={route.path} path={route.path} element={route.element} />
          ))}
          <Route path="*" element={<NotFound />} />
        </Routes>
      </main>
    </>
  );
}
