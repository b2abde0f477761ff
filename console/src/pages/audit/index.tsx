import type { ConsoleRoute } from '../../routes';
import { ChooseTenant } from '../../components/TenantPicker';
import { AuditTrail } from './AuditTrail';

export const auditRoutes: ConsoleRoute[] = [
  {
    path: 'audit',
    element: <ChooseTenant area="audit" title="Audit trail" />,
    nav: { label: 'Audit', roles: ['auditor', 'msp_admin'], order: 40 },
  },
  { path: 'audit/:tenantId', element: <AuditTrail /> },
];
