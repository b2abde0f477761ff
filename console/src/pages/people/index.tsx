import type { ConsoleRoute } from '../../routes';
import { ChooseTenant } from '../../components/TenantPicker';
import { People } from './People';
import { PersonTimeline } from './PersonTimeline';

export const peopleRoutes: ConsoleRoute[] = [
  {
    path: 'people',
    element: <ChooseTenant area="people" title="People" />,
    nav: { label: 'People', roles: ['msp_admin', 'operator', 'hr_integration', 'tenant_reviewer', 'auditor'], order: 20 },
  },
  { path: 'people/:tenantId', element: <People /> },
  { path: 'people/:tenantId/:personId', element: <PersonTimeline /> },
];
