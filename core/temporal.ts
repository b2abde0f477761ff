import { defineSearchAttributeKey, SearchAttributeType, TypedSearchAttributes } from '@temporalio/common';

/** Task queue every Tenure workflow and activity runs on unless TEMPORAL_TASK_QUEUE says otherwise. */
export const DEFAULT_TASK_QUEUE = 'tenure';

/** Custom search attribute set on every workflow so the Temporal UI and CLI can filter by tenant. */
export const TENANT_ID_SEARCH_ATTRIBUTE = 'TenantId';

/** Tenant id used for workflows that belong to the MSP itself rather than to one client tenant. */
export const MSP_TENANT = 'msp';

export const TenantIdKey = defineSearchAttributeKey(TENANT_ID_SEARCH_ATTRIBUTE, SearchAttributeType.KEYWORD);

/** Search attributes every Tenure workflow is started with. */
export function tenantSearchAttributes(tenantId: string): TypedSearchAttributes {
  return new TypedSearchAttributes([{ key: TenantIdKey, value: tenantId }]);
}
