import { Link } from 'react-router';
import { useQueries } from '@tanstack/react-query';
import { api, unwrap } from '../../api/client';
import { useSession } from '../../auth/session';
import { EmptyState, ErrorNotice, Loading } from '../../components/Feedback';
import { Countdown, Time } from '../../components/Time';
import { useGrantDecision } from './actions';
import { grantKeys, LIVE_STATUSES, statusClass, statusLabel, useTenants, type Grant, type Tenant } from './data';

/** How often the list is read again while something in it can still change. */
const LIST_REFRESH_MS = 5000;

function RowActions({ grant }: { grant: Grant }) {
  const decide = useGrantDecision(grant);
  const open = grant.status === 'active' || grant.status === 'scheduled';
  const what = `${grant.role} for ${grant.subjectId}`;
  return (
    <>
      <Link to={`/grants/${grant.tenantId}/${grant.grantId}`} aria-label={`Open ${what}`}>
        Open
      </Link>
      {grant.status === 'active' ? (
        <>
          {' · '}
          <Link to={`/grants/${grant.tenantId}/${grant.grantId}#extend`} aria-label={`Extend ${what}`}>
            Extend
          </Link>
        </>
      ) : null}
      {open ? (
        <span className="button-row">
          <button
            type="button"
            className="secondary"
            disabled={decide.isPending}
            onClick={() => decide.mutate({ decision: 'relinquish' })}
            aria-label={`Relinquish ${what}`}
          >
            Relinquish
          </button>
          <button
            type="button"
            className="danger"
            disabled={decide.isPending}
            onClick={() => decide.mutate({ decision: 'revoke' })}
            aria-label={`Revoke ${what}`}
          >
            Revoke
          </button>
        </span>
      ) : null}
      <ErrorNotice error={decide.error} />
    </>
  );
}

/**
 * The grants this caller requested, in every tenant they can see, newest first: what is live counts
 * down; each can be opened, extended, given up or revoked.
 */
function MyGrants() {
  const { me } = useSession();
  const tenants = useTenants();
  const actorId = me?.actorId;
  const lists = useQueries({
    queries: (tenants.data ?? []).map((tenant: Tenant) => ({
      queryKey: grantKeys.mine(tenant.id, actorId ?? ''),
      queryFn: async () =>
        unwrap(
          await api.GET('/v1/tenants/{tenantId}/grants', {
            params: { path: { tenantId: tenant.id }, query: { requesterId: actorId!, limit: 100 } },
          }),
        ).grants,
      enabled: Boolean(actorId),
      refetchInterval: (query: { state: { data?: Grant[] } }) =>
        query.state.data?.some((g) => LIVE_STATUSES.includes(g.status)) ? LIST_REFRESH_MS : false,
    })),
  });

  if (tenants.isPending || !actorId) return <Loading what="your grants" />;
  if (tenants.error) return <ErrorNotice error={tenants.error} />;
  const names = new Map((tenants.data ?? []).map((t) => [t.id, t.name]));
  const grants = lists.flatMap((list) => list.data ?? []).sort((a, b) => (a.startAt < b.startAt ? 1 : -1));
  const failed = lists.find((list) => list.error)?.error;
  const loading = lists.some((list) => list.isPending);

  return (
    <section aria-labelledby="mine-title">
      <h1 id="mine-title">My grants</h1>
      <p>
        <Link to="/request-access" className="button">
          Request access
        </Link>
      </p>
      <ErrorNotice error={failed} />
      {loading ? <Loading what="your grants" /> : null}
      {!loading && grants.length === 0 ? (
        <EmptyState title="You have requested no grants">
          <p>
            When you need a privileged role in a client tenant, <Link to="/request-access">request access</Link>; it ends by itself.
          </p>
        </EmptyState>
      ) : null}
      {grants.length > 0 ? (
        <div className="table-wrap">
          <table>
            <caption className="visually-hidden">Grants you requested, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Tenant</th>
                <th scope="col">Role</th>
                <th scope="col">Account</th>
                <th scope="col">Status</th>
                <th scope="col">Ends</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {grants.map((g) => (
                <tr key={g.grantId}>
                  <td data-label="Tenant">{names.get(g.tenantId) ?? g.tenantId}</td>
                  <td data-label="Role">{g.role}</td>
                  <td data-label="Account">{g.subjectId}</td>
                  <td data-label="Status">
                    <span className={statusClass(g.status)}>{statusLabel(g.status)}</span>
                  </td>
                  <td data-label="Ends">
                    {g.status === 'active' ? (
                      <>
                        in <Countdown until={g.endAt} />
                      </>
                    ) : (
                      <Time value={g.endedAt ?? g.endAt} />
                    )}
                  </td>
                  <td data-label="Actions">
                    <RowActions grant={g} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </section>
  );
}

export { MyGrants };
