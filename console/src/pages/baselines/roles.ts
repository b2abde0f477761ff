/** Who reads the cross-tenant baselines report (the API's `template.read`). */
export const REPORT_READERS = ['msp_admin', 'operator', 'template_owner', 'auditor'] as const;
