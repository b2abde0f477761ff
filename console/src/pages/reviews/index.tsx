import type { ConsoleRoute } from '../../routes';
import { ChooseTenant } from '../../components/TenantPicker';
import { ReviewInbox } from './ReviewInbox';

export const reviewRoutes: ConsoleRoute[] = [
  {
    path: 'reviews',
    element: <ChooseTenant area="reviews" title="Access reviews" />,
    nav: { label: 'Reviews', roles: ['tenant_reviewer', 'tenant_approver', 'msp_admin', 'operator'], order: 30 },
  },
  { path: 'reviews/:tenantId', element: <ReviewInbox /> },
];
