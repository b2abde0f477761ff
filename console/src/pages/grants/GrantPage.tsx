import { useState } from 'react';
import { Link, useParams } from 'react-router';
import { useQuery } from '@tanstack/react-query';
import { api, ApiError, unwrap } from '../../api/client';
import { hasRole, useSession } from '../../auth/session';
import { EmptyState, ErrorNotice, Loading } from '../../components/Feedback';
import { Countdown, Time } from '../../components/Time';
import { ActorName } from './ActorName';
import { ExtendForm, useGrantDecision, type GrantDecision } from './actions';
import { grantKeys, LIVE_REFRESH_MS, LIVE_STATUSES, statusClass, statusLabel, useTenantPolicy, type Grant } from './data';

const END_REASON: Record<string, string> = {
  expired: 'it reached its end time',
  revoked: 'it was revoked',
  relinquished: 'its requester gave it up',
  ineligible: 'the account was no longer eligible',
  failed: 'the target refused it; any access it gave was removed',
};

/** What the grant is doing now, in one sentence. */
function summary(grant: Grant): string {
  switch (grant.status) {
    case 'pending_approval':
      return `Waiting for the tenant’s approvers (${grant.approvals.length} of ${grant.approvalsRequired}).`;
    case 'scheduled':
      return 'Approved; it starts at its start time.';
    case 'active':
      return grant.pendingExtension ? 'Active; an extension waits for the tenant’s approvers.' : 'Active.';
    case 'revoking':
      return 'Ending: the role is being removed and read back from the target.';
    case 'ended':
      return `Ended: ${END_REASON[grant.endReason ?? ''] ?? 'it is over'}${grant.revocationVerifiedAt ? '; removal verified' : ''}.`;
    case 'denied':
      return 'Denied by the tenant’s approvers.';
    case 'approval_timed_out':
      return 'No decision in time: nothing was granted.';
    case 'cancelled':
      return 'Cancelled before it started.';
  }
}

/** The decisions this caller may take now (the API decides in the end; this only hides what would be refused). */
function decisionsFor(grant: Grant, me: ReturnType<typeof useSession>['me']): GrantDecision[] {
  if (!me) return [];
  const open = grant.status === 'scheduled' || grant.status === 'active';
  // The tenant decides: only its own approvers, bound in this tenant.
  const approver = me.kind !== 'msp_staff' && me.bindings.some((b) => b.role === 'tenant_approver' && b.tenantId === grant.tenantId);
  const decisions: GrantDecision[] = [];
  const mine = grant.requesterId === me.actorId;
  const awaiting = grant.status === 'pending_approval' || Boolean(grant.pendingExtension);
  if (approver && !mine && awaiting) decisions.push('approve', 'deny');
  if (open && (hasRole(me, ['operator', 'msp_admin'], grant.tenantId) || approver)) decisions.push('revoke');
  if (open && mine) decisions.push('relinquish');
  return decisions;
}

const BUTTON: Record<GrantDecision, { label: string; className?: string; done: string }> = {
  approve: { label: 'Approve', done: 'Approved.' },
  deny: { label: 'Deny', className: 'danger', done: 'Denied.' },
  revoke: { label: 'Revoke now', className: 'danger', done: 'Revoked: the role is being removed.' },
  relinquish: { label: 'Give it up (relinquish)', className: 'secondary', done: 'Relinquished: the role is being removed.' },
};

function Decisions({ grant, decisions }: { grant: Grant; decisions: GrantDecision[] }) {
  const decide = useGrantDecision(grant);
  const [comment, setComment] = useState('');
  if (decisions.length === 0) return null;
  const id = `decide-${grant.grantId}`;
  return (
    <section aria-labelledby={`${id}-title`} className="panel">
      <h2 id={`${id}-title`}>Act on this grant</h2>
      <label htmlFor={`${id}-comment`}>Comment (optional, kept in the audit trail)</label>
      <textarea id={`${id}-comment`} rows={2} value={comment} onChange={(e) => setComment(e.target.value)} />
      <p className="button-row">
        {decisions.map((decision) => (
          <button
            key={decision}
            type="button"
            className={BUTTON[decision].className}
            disabled={decide.isPending}
            onClick={() => decide.mutate({ decision, comment })}
          >
            {BUTTON[decision].label}
          </button>
        ))}
      </p>
      {decide.isSuccess ? (
        <p className="notice" role="status">
          {BUTTON[decide.variables.decision].done}
        </p>
      ) : null}
      <ErrorNotice error={decide.error} />
    </section>
  );
}

/**
 * One grant, kept up to date while it can still change (it is read again every 2 s): it turns
 * active, counts down, and ends on screen without a reload.
 */
function GrantPage() {
  const { tenantId = '', grantId = '' } = useParams();
  const { me } = useSession();
  const grant = useQuery({
    queryKey: grantKeys.one(tenantId, grantId),
    queryFn: async () => unwrap(await api.GET('/v1/tenants/{tenantId}/grants/{grantId}', { params: { path: { tenantId, grantId } } })),
    refetchInterval: (query) => (query.state.data && !LIVE_STATUSES.includes(query.state.data.status) ? false : LIVE_REFRESH_MS),
  });
  const policy = useTenantPolicy(grant.data ? tenantId : undefined);
  const zone = policy.data?.document.timezone ?? 'UTC';

  if (grant.isPending) return <Loading what="the grant" />;
  if (grant.error instanceof ApiError && (grant.error.status === 404 || grant.error.status === 400)) {
    return (
      <EmptyState title="Grant not found">
        <p>
          It does not exist, or it is in a tenant you cannot see. Check the link, or go to <Link to="/grants">My grants</Link>.
        </p>
      </EmptyState>
    );
  }
  if (grant.error) return <ErrorNotice error={grant.error} />;
  const g = grant.data;
  const decisions = decisionsFor(g, me);
  return (
    <section aria-labelledby="grant-title">
      <h1 id="grant-title">
        {g.role} for {g.subjectId}
      </h1>
      <p>
        <span className={statusClass(g.status)} data-testid="grant-status">
          {statusLabel(g.status)}
        </span>{' '}
        <span role="status" aria-live="polite">
          {summary(g)}
        </span>
      </p>
      {g.status === 'active' ? (
        <p>
          Ends in <Countdown until={g.endAt} /> (at <Time value={g.endAt} tenantZone={zone} />)
        </p>
      ) : null}
      <dl className="facts">
        <dt>Requested by</dt>
        <dd>
          <ActorName tenantId={g.tenantId} actorId={g.requesterId} />
        </dd>
        <dt>Why</dt>
        <dd>{g.justification ?? '—'}</dd>
        <dt>Ticket</dt>
        <dd>{g.ticket ?? '—'}</dd>
        <dt>Window</dt>
        <dd>
          <Time value={g.startAt} tenantZone={zone} /> to <Time value={g.endAt} tenantZone={zone} />
        </dd>
        <dt>Approvals</dt>
        <dd>
          {g.approvals.length} of {g.approvalsRequired}
          {g.approvals.map((a) => (
            <span key={a.approvalId} className="muted">
              {' '}
              · <ActorName tenantId={g.tenantId} actorId={a.approverId} /> at <Time value={a.at} tenantZone={zone} />
              {a.comment ? ` (“${a.comment}”)` : ''}
            </span>
          ))}
        </dd>
        {g.activatedAt ? (
          <>
            <dt>Active since</dt>
            <dd>
              <Time value={g.activatedAt} tenantZone={zone} />
            </dd>
          </>
        ) : null}
        {g.endedAt ? (
          <>
            <dt>Ended</dt>
            <dd>
              <Time value={g.endedAt} tenantZone={zone} />
              {g.revocationVerifiedAt ? (
                <>
                  {' '}
                  (removal verified <Time value={g.revocationVerifiedAt} tenantZone={zone} />)
                </>
              ) : null}
            </dd>
          </>
        ) : null}
        <dt>Policy version</dt>
        <dd>{g.policyVersion}</dd>
      </dl>
      <Decisions grant={g} decisions={decisions} />
      {g.status === 'active' && (g.requesterId === me?.actorId || hasRole(me, ['operator', 'msp_admin'], g.tenantId)) ? (
        <div id="extend">
          <ExtendForm grant={g} />
        </div>
      ) : null}
      <p>
        <Link to="/grants">Back to My grants</Link>
      </p>
    </section>
  );
}

export { GrantPage };
