import type { ReactNode } from 'react';
import type { Role } from './auth/session';
import { homeRoutes } from './pages/home';
import { grantRoutes } from './pages/grants';
import { inboxRoutes } from './pages/inbox';
import { overviewRoutes } from './pages/overview';
import { peopleRoutes } from './pages/people';
import { reviewRoutes } from './pages/reviews';
import { auditRoutes } from './pages/audit';
import { baselineRoutes } from './pages/baselines';

/**
 * One console page: where it lives and, when it belongs in the navigation, for whom. Each area of
 * the console (src/pages/<area>/index.tsx) exports its own list; this file only joins them.
 */
export interface ConsoleRoute {
  /** Relative to /console, e.g. `inbox` or `grants/:tenantId/:grantId`. */
  path: string;
  element: ReactNode;
  nav?: { label: string; roles: readonly Role[]; order: number };
}

export const routes: ConsoleRoute[] = [
  ...homeRoutes,
  ...inboxRoutes,
  ...grantRoutes,
  ...overviewRoutes,
  ...peopleRoutes,
  ...reviewRoutes,
  ...auditRoutes,
  ...baselineRoutes,
];
