import type { ConsoleRoute } from '../../routes';
import { GrantPage } from './GrantPage';
import { MyGrants } from './MyGrants';
import { RequestGrant } from './RequestGrant';
import './grants.css';

/** The operator's side of grants: request, follow, extend, give up or revoke. */
export const grantRoutes: ConsoleRoute[] = [
  { path: 'request-access', element: <RequestGrant />, nav: { label: 'Request access', roles: ['operator', 'msp_admin'], order: 20 } },
  { path: 'grants', element: <MyGrants />, nav: { label: 'My grants', roles: ['operator', 'msp_admin'], order: 21 } },
  { path: 'grants/:tenantId/:grantId', element: <GrantPage /> },
];
