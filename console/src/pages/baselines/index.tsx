import type { ConsoleRoute } from '../../routes';
import { BaselineReport } from './BaselineReport';
import { REPORT_READERS } from './roles';
import { TenantDrift } from './TenantDrift';

export const baselineRoutes: ConsoleRoute[] = [
  {
    path: 'baselines',
    element: <BaselineReport />,
    nav: { label: 'Baselines', roles: REPORT_READERS, order: 35 },
  },
  { path: 'baselines/:tenantId', element: <TenantDrift /> },
];
