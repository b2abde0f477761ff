import { useQuery } from '@tanstack/react-query';
import { Link } from 'react-router';
import { api, unwrap } from '../../api/client';
import type { components } from '../../api/schema';
import { EmptyState, ErrorNotice, Loading } from '../../components/Feedback';
import { Pager, useCursorPages } from '../../components/Pager';
import { Time } from '../../components/Time';
import type { ConsoleRoute } from '../../routes';

type TenantOverview = components['schemas']['TenantOverview'];
type StandingReport = components['schemas']['StandingPrivilegeReport'];

/** A count that links to the page listing what it counts, or a plain 0. */
function CountLink({ n, to, label }: { n: number; to: string; label: string }) {
  if (n === 0) return <span aria-label={`${label}: none`}>0</span>;
  return (
    <Link to={to} aria-label={`${label}: ${n}`}>
      {n}
    </Link>
  );
}

/** Standing privilege per tenant, read from each target now (slower, so it loads on its own). */
function useStanding() {
  return useQuery({
    queryKey: ['standing-privilege'],
    // JSON unless asked for CSV: the answer's type is the report.
    queryFn: async () => unwrap(await api.GET('/v1/standing-privilege', { params: { query: {} } })) as StandingReport,
    staleTime: 60_000,
  });
}

function StandingCell({ tenantId, standing }: { tenantId: string; standing: ReturnType<typeof useStanding> }) {
  if (standing.isPending) return <span className="muted">…</span>;
  if (standing.error) return <span className="muted">unavailable</span>;
  const unavailable = standing.data.unavailable.find((u) => u.tenantId === tenantId);
  if (unavailable) return <span title={unavailable.reason}>target unreadable</span>;
  const n = standing.data.entries.filter((e) => e.tenantId === tenantId).length;
  return <span>{n}</span>;
}

function DriftCell({ tenant }: { tenant: TenantOverview }) {
  const { drift } = tenant;
  if (drift.error) return <span className="status bad">check failed: {drift.error}</span>;
  if (!drift.checkedAt) return <span className="muted">never checked</span>;
  return (
    <span>
      <CountLink n={drift.open} to={`/baselines/${tenant.tenantId}`} label={`Open drift items in ${tenant.name}`} />{' '}
      <span className="muted">
        (checked <Time value={drift.checkedAt} />)
      </span>
    </span>
  );
}

function Overview() {
  const pages = useCursorPages();
  const after = pages.current;
  const overview = useQuery({
    queryKey: ['overview', after],
    queryFn: async () => unwrap(await api.GET('/v1/overview', { params: { query: { limit: 50, ...(after ? { after } : {}) } } })),
  });
  const standing = useStanding();
  return (
    <section aria-labelledby="overview-title">
      <h1 id="overview-title">MSP overview</h1>
      <p className="muted">
        What needs attention in each tenant. Approvals are decided by each tenant&apos;s own approvers; the counts link to the tenant&apos;s
        pages.
      </p>
      {overview.isPending ? <Loading what="the overview" /> : null}
      <ErrorNotice error={overview.error} />
      {standing.error ? (
        <p className="muted" role="status">
          Standing privilege could not be read now; the other counts are complete.
        </p>
      ) : null}
      {overview.data && overview.data.tenants.length === 0 ? (
        <EmptyState title="No tenants yet">
          <p>An MSP admin creates tenants (tenure tenant create, or POST /v1/tenants).</p>
        </EmptyState>
      ) : null}
      {overview.data && overview.data.tenants.length > 0 ? (
        <div className="table-wrap" tabIndex={0} role="region" aria-label="Tenants overview">
          <table>
            <caption className="visually-hidden">Counts per tenant</caption>
            <thead>
              <tr>
                <th scope="col">Tenant</th>
                <th scope="col">Pending approvals</th>
                <th scope="col">Active privileged grants</th>
                <th scope="col">Undecided review items</th>
                <th scope="col">Standing privilege</th>
                <th scope="col">Template drift</th>
              </tr>
            </thead>
            <tbody>
              {overview.data.tenants.map((t) => {
                const pending = t.pendingApprovals.grants + t.pendingApprovals.policyChanges + t.pendingApprovals.actions;
                return (
                  <tr key={t.tenantId} data-tenant={t.slug}>
                    <th scope="row">
                      {t.name} <span className="muted">{t.slug}</span>
                      {t.status === 'suspended' ? <span className="status warn">suspended</span> : null}
                    </th>
                    <td data-count="pending">
                      <CountLink
                        n={pending}
                        to={`/people/${t.tenantId}?grants=pending_approval`}
                        label={`Pending approvals in ${t.name}`}
                      />
                      {pending > 0 ? (
                        <span className="muted">
                          {' '}
                          (grants {t.pendingApprovals.grants}, policy changes {t.pendingApprovals.policyChanges}, actions{' '}
                          {t.pendingApprovals.actions})
                        </span>
                      ) : null}
                    </td>
                    <td data-count="active">
                      <CountLink n={t.activeGrants} to={`/people/${t.tenantId}?grants=active`} label={`Active grants in ${t.name}`} />
                    </td>
                    <td data-count="reviews">
                      <CountLink n={t.openReviewItems} to={`/reviews/${t.tenantId}`} label={`Undecided review items in ${t.name}`} />
                    </td>
                    <td data-count="standing">
                      <StandingCell tenantId={t.tenantId} standing={standing} />
                    </td>
                    <td data-count="drift">
                      <DriftCell tenant={t} />
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      ) : null}
      <Pager pages={pages} nextCursor={overview.data?.nextCursor} previousLabel="Previous tenants" nextLabel="More tenants" />
    </section>
  );
}

export const overviewRoutes: ConsoleRoute[] = [
  { path: 'overview', element: <Overview />, nav: { label: 'Overview', roles: ['msp_admin', 'operator'], order: 10 } },
];
