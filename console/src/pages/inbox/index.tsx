import type { ConsoleRoute } from '../../routes';
import { Inbox } from './Inbox';

/** A tenant approver's inbox: everything waiting for their tenant's decision. */
export const inboxRoutes: ConsoleRoute[] = [
  { path: 'inbox', element: <Inbox />, nav: { label: 'Inbox', roles: ['tenant_approver'], order: 10 } },
];
