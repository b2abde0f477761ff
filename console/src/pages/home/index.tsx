import { Link } from 'react-router';
import type { ConsoleRoute } from '../../routes';
import { hasRole, useSession } from '../../auth/session';
import { routes } from '../../routes';

/** The start page: what this user can do here, as links to the pages their roles open. */
function Home() {
  const { me } = useSession();
  const pages = routes
    .filter((route) => route.nav && hasRole(me, route.nav.roles))
    .sort((a, b) => (a.nav?.order ?? 0) - (b.nav?.order ?? 0));
  return (
    <section aria-labelledby="home-title">
      <h1 id="home-title">Welcome{me ? `, ${me.displayName}` : ''}</h1>
      {pages.length === 0 ? (
        <p>Your roles open no pages here yet. Ask your MSP admin for a role binding.</p>
      ) : (
        <ul className="cards">
          {pages.map((page) => (
            <li key={page.path}>
              <Link to={`/${page.path}`}>{page.nav?.label}</Link>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

export const homeRoutes: ConsoleRoute[] = [{ path: '', element: <Home /> }];
