/**
 * The columns a table shows for each kind of record, keyed by the name the API gives the list
 * (`{ grants: [...] }`): the few a person scans by (`table`), and what `-o wide` adds (`wide`).
 * A list not named here shows its first six plain fields (all of them with `-o wide`).
 */
const VIEWS: Record<string, { table: string[]; wide: string[] }> = {
  grants: {
    table: ['grantId', 'subjectId', 'role', 'status', 'startAt', 'endAt'],
    wide: ['endReason', 'requesterId', 'ticket', 'approvalsRequired', 'activatedAt', 'endedAt'],
  },
  actions: {
    table: ['actionId', 'action', 'subjectId', 'status', 'requestedAt'],
    wide: ['requesterId', 'ticket', 'approvalsRequired', 'decidedBy', 'executedAt', 'verifiedAt', 'outcome'],
  },
  approvals: { table: ['approverId', 'at', 'comment'], wide: ['approvalId'] },
  tenants: { table: ['id', 'slug', 'name', 'status', 'tags'], wide: ['policyVersion', 'createdAt', 'updatedAt'] },
  actors: { table: ['id', 'kind', 'displayName', 'status'], wide: ['email', 'homeTenantId', 'oidcSubject', 'createdAt'] },
  bindings: { table: ['id', 'actorId', 'role', 'tenantId'], wide: ['createdAt', 'createdBy'] },
  tokens: { table: ['id', 'actorId', 'name', 'prefix', 'expiresAt', 'revokedAt'], wide: ['lastUsedAt', 'createdAt'] },
  changes: {
    table: ['changeId', 'status', 'proposerId', 'baseVersion', 'approvalsRequired', 'proposedAt'],
    wide: ['appliedVersion', 'deniedBy', 'withdrawnBy', 'expiresAt', 'decidedAt'],
  },
  pendingChanges: { table: ['changeId', 'status', 'proposerId', 'proposedAt'], wide: ['expiresAt'] },
  diff: { table: ['path', 'before', 'after', 'effect'], wide: ['reason'] },
  imports: {
    table: ['importId', 'status', 'format', 'total', 'done', 'failed', 'createdAt'],
    wide: ['submittedBy', 'startedAt', 'completedAt'],
  },
  rows: { table: ['row', 'eventId', 'personId', 'status', 'issues', 'error'], wide: [] },
  failedRows: { table: ['row', 'eventId', 'personId', 'status', 'issues', 'error'], wide: [] },
  people: { table: ['personId', 'status', 'joinedAt', 'leftAt'], wide: ['birthright', 'eligibleGrantRoles', 'policyVersion'] },
  entitlements: { table: ['role', 'sourceType', 'grantedAt', 'expiresAt', 'endedAt'], wide: ['id', 'sourceId', 'endReason'] },
  hrEvents: { table: ['eventId', 'type', 'effectiveAt', 'status'], wide: ['statusReason', 'submittedBy', 'receivedAt'] },
  events: { table: ['seq', 'occurredAt', 'action', 'actor'], wide: ['eventId', 'workflowId', 'hash'] },
  campaigns: { table: ['id', 'name', 'version', 'lastRunNo', 'updatedAt'], wide: ['createdBy', 'createdAt'] },
  versions: { table: ['version', 'status', 'createdAt', 'createdBy'], wide: ['proposedBy', 'approvedBy', 'approvedAt', 'comment'] },
  runs: {
    table: ['runId', 'runNo', 'status', 'trigger', 'tenantCount', 'materialisedCount', 'completedCount', 'createdAt'],
    wide: ['definitionVersion', 'startedBy', 'updatedAt'],
  },
  reviews: { table: ['tenantId', 'runId', 'status', 'stage', 'itemCount', 'stageClosesAt'], wide: ['round', 'stageCount', 'completedAt'] },
  items: {
    table: ['itemId', 'subjectId', 'role', 'recommendation', 'myDecision', 'outcome'],
    wide: ['privileged', 'subjectStatus', 'lastActivityAt', 'stage', 'result'],
  },
  entries: { table: ['tenantId', 'subjectId', 'role', 'reasons', 'endsAt'], wide: ['subjectStatus', 'owner', 'lastReviewedAt'] },
  templates: { table: ['id', 'name', 'latestVersion', 'latestApprovedVersion', 'updatedAt'], wide: ['description', 'createdBy'] },
  assignments: {
    table: ['tenantId', 'templateName', 'version', 'appliedVersion', 'appliedAt'],
    wide: ['templateId', 'assignedBy', 'assignedAt'],
  },
  rollouts: {
    table: ['rolloutId', 'templateId', 'version', 'status', 'tenants', 'currentWave', 'startedAt'],
    wide: ['requesterId', 'inFlight', 'completedAt'],
  },
  waves: {
    table: ['index', 'name', 'size', 'status', 'applied', 'failed', 'skipped'],
    wide: ['denied', 'passedOver', 'cancelled', 'startedAt', 'completedAt'],
  },
  tenantStates: { table: ['tenantId', 'tenantName', 'wave', 'state', 'applyStatus'], wide: ['position', 'outcome'] },
  exceptions: { table: ['id', 'path', 'owner', 'status', 'expiresAt'], wide: ['justification', 'approvedBy', 'createdBy'] },
};

export function columnsFor(collection: string): { table: string[]; wide: string[] } | undefined {
  return VIEWS[collection];
}

/**
 * The order a single record's fields are shown in: the columns of the view it best matches (at
 * least three of them present), then the rest as the API sent them. The API's JSON key order is
 * PostgreSQL's jsonb order (shortest key first), which reads as noise.
 */
export function fieldOrder(record: Record<string, unknown>): string[] {
  const keys = Object.keys(record);
  let best: { table: string[]; wide: string[] } | undefined;
  let bestCount = 2;
  for (const view of Object.values(VIEWS)) {
    const count = view.table.filter((key) => key in record).length;
    if (count > bestCount) [best, bestCount] = [view, count];
  }
  if (!best) return keys;
  const first = [...best.table, ...best.wide].filter((key) => key in record);
  return [...first, ...keys.filter((key) => !first.includes(key))];
}
