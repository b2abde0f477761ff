import type { ConsoleRoute } from '../../routes';
import { BaselineReport } from './BaselineReport';
import { TenantDrift } from './TenantDrift';

/** Who reads the cross-tenant report (the API's `template.read`). */
export const REPORT_READERS = ['msp_admin', 'operator', 'template_owner', 'auditor'] as const;

export const baselineRoutes: ConsoleRoute[] = [
  {
    path: 'baselines',
    element: <BaselineReport />,
    nav: { label: 'Baselines', roles: REPORT_READERS, order: 35 },
  },
  { path: 'baselines/:tenantId', element: <TenantDrift /> },
];
