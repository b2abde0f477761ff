import { useQuery } from '@tanstack/react-query';
import { Link, useParams } from 'react-router';
import { api, unwrap } from '../../api/client';
import { hasRole, useSession } from '../../auth/session';
import type { components } from '../../api/schema';
import { EmptyState, ErrorNotice, Loading } from '../../components/Feedback';
import { TableRegion } from '../../components/TableRegion';
import { Time } from '../../components/Time';
import { TenantPicker, useTenantName, useTenantZone } from '../../components/TenantPicker';
import { REPORT_READERS } from './roles';

type DriftItem = components['schemas']['DriftItem'];

const shown = (value: unknown) => (value === undefined ? '—' : JSON.stringify(value));

const ITEM_STATUS_CLASS: Record<string, string> = { open: 'bad', accepted: 'warn', resolved: 'ok' };

/** Open items first, then accepted ones, then what was resolved; newest first within each. */
function ordered(items: DriftItem[]): DriftItem[] {
  const rank = (s: string) => (s === 'open' ? 0 : s === 'accepted' ? 1 : 2);
  return [...items].sort((a, b) => rank(a.status) - rank(b.status) || b.firstSeenAt.localeCompare(a.firstSeenAt));
}

/**
 * One tenant's drift from the exact template version applied to it (GET …/template/drift): each
 * item's path, expected and actual value, first seen, mode and what became of it; and the
 * tenant's exceptions with owner, justification and expiry. Exceptions are decided by the tenant's
 * approvers in their inbox.
 */
export function TenantDrift() {
  const { tenantId = '' } = useParams();
  const { me } = useSession();
  const name = useTenantName(tenantId);
  const zone = useTenantZone(tenantId);
  const drift = useQuery({
    queryKey: ['drift', tenantId],
    queryFn: async () => unwrap(await api.GET('/v1/tenants/{tenantId}/template/drift', { params: { path: { tenantId } } })),
  });
  const data = drift.data;
  const items = data ? ordered(data.items) : [];
  return (
    <section aria-labelledby="drift-title">
      <h1 id="drift-title">Template drift{name ? ` of ${name}` : ''}</h1>
      <TenantPicker area="baselines" current={tenantId} />
      {hasRole(me, REPORT_READERS) ? (
        <p>
          <Link to="/baselines">All tenants’ baselines</Link>
        </p>
      ) : null}
      {drift.isPending ? <Loading what="drift" /> : null}
      <ErrorNotice error={drift.error} />
      {data ? (
        <dl className="facts" data-drift-status={data.status}>
          <dt>Status</dt>
          <dd>
            <span className={`status ${data.status === 'in_sync' ? 'ok' : data.status === 'drifted' ? 'bad' : ''}`}>
              {data.status.replaceAll('_', ' ')}
            </span>
          </dd>
          <dt>Compared with</dt>
          <dd>{data.appliedVersion === null ? 'no version applied yet' : `version ${data.appliedVersion} as applied`}</dd>
          <dt>Last checked</dt>
          <dd>
            <Time value={data.checkedAt} tenantZone={zone} />
            {data.checkError ? <span className="status bad">check failed: {data.checkError}</span> : null}
          </dd>
        </dl>
      ) : null}
      <h2>Items</h2>
      {data && items.length === 0 ? (
        <EmptyState title="No drift recorded">
          <p>Every checked setting matches the version applied to this tenant.</p>
        </EmptyState>
      ) : null}
      {items.length > 0 ? (
        <TableRegion label="Drift items" headings={['Path', 'Expected', 'Actual', 'Mode', 'Status', 'First seen']}>
          {items.map((item) => (
            <tr key={item.id} data-path={item.path} data-status={item.status}>
              <td data-label="Path">
                <code>{item.path}</code>
              </td>
              <td data-label="Expected">
                <code>{shown(item.expected)}</code>
              </td>
              <td data-label="Actual">
                <code>{shown(item.actual)}</code>
              </td>
              <td data-label="Mode">{item.mode}</td>
              <td data-label="Status">
                <span className={`status ${ITEM_STATUS_CLASS[item.status] ?? ''}`}>{item.status}</span>
                {item.resolution ? <span className="muted"> ({item.resolution})</span> : null}
                {item.remediationError ? <span className="cell-note">remediation failed: {item.remediationError}</span> : null}
              </td>
              <td data-label="First seen">
                <Time value={item.firstSeenAt} tenantZone={zone} />
              </td>
            </tr>
          ))}
        </TableRegion>
      ) : null}
      <h2>Exceptions</h2>
      {data && data.exceptions.length === 0 ? <EmptyState title="No exceptions" /> : null}
      {data && data.exceptions.length > 0 ? (
        <TableRegion label="Drift exceptions" headings={['Path', 'Owner', 'Justification', 'Status', 'Expires']}>
          {data.exceptions.map((e) => (
            <tr key={e.id} data-status={e.status}>
              <td data-label="Path">
                <code>{e.path}</code>
              </td>
              <td data-label="Owner">{e.owner}</td>
              <td data-label="Justification">{e.justification}</td>
              <td data-label="Status">{e.status}</td>
              <td data-label="Expires">
                <Time value={e.expiresAt} tenantZone={zone} />
              </td>
            </tr>
          ))}
        </TableRegion>
      ) : null}
    </section>
  );
}
