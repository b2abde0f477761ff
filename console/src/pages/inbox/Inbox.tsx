import { createContext, useContext, useState, type ReactNode } from 'react';
import { Link } from 'react-router';
import { useMutation, useQueries, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '../../api/client';
import { useSession } from '../../auth/session';
import { EmptyState, ErrorNotice, Loading } from '../../components/Feedback';
import { Time } from '../../components/Time';
import { ActorName } from '../grants/ActorName';
import { grantKeys, minutes, useTenantPolicy, useTenants, type Tenant } from '../grants/data';

type Decision = 'approve' | 'deny';

/** One thing waiting for the tenant's decision, whatever kind it is. */
interface Entry {
  key: string;
  tenantId: string;
  kind: string;
  title: string;
  requestedBy: string;
  requestedAt: string | null;
  /** How long it would last, or until when the decision is open. */
  duration: ReactNode;
  why: string | null;
  ticket: string | null;
  details?: ReactNode;
  link?: string;
  decisions: Decision[];
  decide: (decision: Decision, comment: string) => Promise<{ status: string }>;
}

const REFRESH_MS = 10_000;

/** The tenant's time zone for the times in its entries (shown on hover). */
const TenantZone = createContext('UTC');
function TenantTime({ value }: { value: string | null }) {
  return <Time value={value} tenantZone={useContext(TenantZone)} />;
}
const withComment = (comment: string) => (comment.trim() ? { comment: comment.trim() } : {});

/** Everything in one tenant waiting for its approvers, read in one go. */
async function tenantInbox(tenantId: string): Promise<Entry[]> {
  const path = { tenantId };
  const [pendingGrants, liveGrants, changes, actions, applies, exceptions] = await Promise.all([
    api.GET('/v1/tenants/{tenantId}/grants', { params: { path, query: { status: 'pending_approval', limit: 500 } } }).then(unwrap),
    api.GET('/v1/tenants/{tenantId}/grants', { params: { path, query: { status: 'active', limit: 500 } } }).then(unwrap),
    api.GET('/v1/tenants/{tenantId}/policy/changes', { params: { path, query: { status: 'pending' } } }).then(unwrap),
    api.GET('/v1/tenants/{tenantId}/actions', { params: { path, query: { status: 'pending_approval', limit: 500 } } }).then(unwrap),
    api
      .GET('/v1/tenants/{tenantId}/template/applies', { params: { path, query: { status: 'awaiting_approval', limit: 500 } } })
      .then(unwrap),
    api.GET('/v1/tenants/{tenantId}/template/drift/exceptions', { params: { path } }).then(unwrap),
  ]);
  const entries: Omit<Entry, 'tenantId'>[] = [];
  for (const g of pendingGrants.grants) {
    const grant = { tenantId, grantId: g.grantId };
    entries.push({
      key: `grant:${g.grantId}`,
      kind: 'Grant request',
      title: `${g.role} for ${g.subjectId}`,
      requestedBy: g.requesterId,
      requestedAt: null,
      duration: (
        <>
          {minutes((Date.parse(g.endAt) - Date.parse(g.startAt)) / 1000)}, from <TenantTime value={g.startAt} />
        </>
      ),
      why: g.justification,
      ticket: g.ticket,
      link: `/grants/${tenantId}/${g.grantId}`,
      decisions: ['approve', 'deny'],
      decide: async (decision, comment) =>
        unwrap(
          await api.POST(`/v1/tenants/{tenantId}/grants/{grantId}/${decision}`, { params: { path: grant }, body: withComment(comment) }),
        ),
    });
  }
  for (const g of liveGrants.grants) {
    const ext = g.pendingExtension;
    if (!ext) continue;
    entries.push({
      key: `extension:${ext.extensionId}`,
      kind: 'Extension',
      title: `${g.role} for ${g.subjectId}: ${minutes(ext.additionalSeconds)} more`,
      requestedBy: ext.requestedBy,
      requestedAt: null,
      duration: (
        <>
          {minutes(ext.additionalSeconds)} beyond <TenantTime value={g.endAt} />
        </>
      ),
      why: ext.justification ?? g.justification,
      ticket: g.ticket,
      link: `/grants/${tenantId}/${g.grantId}`,
      decisions: ['approve', 'deny'],
      decide: async (decision, comment) =>
        unwrap(
          await api.POST(`/v1/tenants/{tenantId}/grants/{grantId}/${decision}`, {
            params: { path: { tenantId, grantId: g.grantId } },
            body: withComment(comment),
          }),
        ),
    });
  }
  for (const c of changes.changes) {
    entries.push({
      key: `policy:${c.changeId}`,
      kind: 'Policy change',
      title: `Policy change from version ${c.baseVersion}: ${c.diff.length} setting${c.diff.length === 1 ? '' : 's'}`,
      requestedBy: c.proposerId,
      requestedAt: c.proposedAt,
      duration: (
        <>
          Permanent once applied; the decision is open until <TenantTime value={c.expiresAt} />
        </>
      ),
      why: c.comment,
      ticket: null,
      details: (
        <ul>
          {c.diff.map((d) => (
            <li key={d.path}>
              <code>{d.path}</code>: {d.reason} <span className="muted">({d.effect})</span>
            </li>
          ))}
        </ul>
      ),
      decisions: ['approve', 'deny'],
      decide: async (decision, comment) =>
        unwrap(
          await api.POST(`/v1/tenants/{tenantId}/policy/changes/{changeId}/${decision}`, {
            params: { path: { tenantId, changeId: c.changeId } },
            body: withComment(comment),
          }),
        ),
    });
  }
  for (const a of actions.actions) {
    entries.push({
      key: `action:${a.actionId}`,
      kind: 'Remote action',
      title: `${a.action.replace(/_/g, ' ')} on ${a.subjectId}`,
      requestedBy: a.requesterId,
      requestedAt: a.requestedAt,
      duration: a.approvalExpiresAt ? (
        <>
          Runs once; the decision is open until <TenantTime value={a.approvalExpiresAt} />
        </>
      ) : (
        'Runs once'
      ),
      why: a.justification,
      ticket: a.ticket,
      decisions: ['approve', 'deny'],
      decide: async (decision, comment) =>
        unwrap(
          await api.POST(`/v1/tenants/{tenantId}/actions/{actionId}/${decision}`, {
            params: { path: { tenantId, actionId: a.actionId } },
            body: withComment(comment),
          }),
        ),
    });
  }
  for (const t of applies.applies) {
    entries.push({
      key: `apply:${t.rolloutId}`,
      kind: 'Template rollout',
      title: `Apply template version ${t.version}${t.summary ? `: ${t.summary.changes} change${t.summary.changes === 1 ? '' : 's'}, ${t.summary.loosens} loosening control` : ''}`,
      requestedBy: t.requesterId,
      requestedAt: t.startedAt,
      duration: t.approvalExpiresAt ? (
        <>
          Stays until the next version; the decision is open until <TenantTime value={t.approvalExpiresAt} />
        </>
      ) : (
        'Stays until the next version'
      ),
      why: null,
      ticket: null,
      decisions: ['approve', 'deny'],
      decide: async (decision, comment) =>
        unwrap(
          await api.POST(`/v1/tenants/{tenantId}/template/applies/{rolloutId}/${decision}`, {
            params: { path: { tenantId, rolloutId: t.rolloutId } },
            body: withComment(comment),
          }),
        ),
    });
  }
  for (const x of exceptions.exceptions.filter((e) => e.status === 'pending')) {
    entries.push({
      key: `exception:${x.id}`,
      kind: 'Drift exception',
      title: `Keep ${x.path} as it is (owner ${x.owner})`,
      requestedBy: x.createdBy,
      requestedAt: x.createdAt,
      duration: (
        <>
          Until <TenantTime value={x.expiresAt} />
        </>
      ),
      why: x.justification,
      ticket: null,
      decisions: ['approve'],
      decide: async (_decision, comment) =>
        unwrap(
          await api.POST('/v1/tenants/{tenantId}/template/drift/exceptions/{exceptionId}/approve', {
            params: { path: { tenantId, exceptionId: x.id } },
            body: withComment(comment),
          }),
        ),
    });
  }
  return entries.map((entry) => ({ ...entry, tenantId }));
}

interface Outcome {
  key: string;
  text: string;
}

function InboxEntry({ entry, onDecided }: { entry: Entry; onDecided: (outcome: Outcome) => void }) {
  const { me } = useSession();
  const queryClient = useQueryClient();
  const [comment, setComment] = useState('');
  const decide = useMutation({
    mutationFn: (decision: Decision) => entry.decide(decision, comment),
    onSuccess: (result, decision) => {
      const still = ['pending_approval', 'awaiting_approval', 'pending'].includes(result.status);
      const verb = decision === 'approve' ? 'Approved' : 'Denied';
      onDecided({
        key: entry.key,
        text: `${verb}: ${entry.kind.toLowerCase()} “${entry.title}”${still ? ' — your answer is recorded; it moves on once the quorum is met.' : ` — now ${result.status.replace(/_/g, ' ')}.`}`,
      });
      void queryClient.invalidateQueries({ queryKey: ['inbox'] });
      void queryClient.invalidateQueries({ queryKey: grantKeys.all });
    },
  });
  const mine = entry.requestedBy === me?.actorId;
  const id = entry.key.replace(/[^a-z0-9-]/gi, '-');
  return (
    <li className="panel inbox-entry" aria-labelledby={`${id}-title`}>
      <p className="muted">{entry.kind}</p>
      <h3 id={`${id}-title`}>{entry.link ? <Link to={entry.link}>{entry.title}</Link> : entry.title}</h3>
      <dl className="facts">
        <dt>Asked by</dt>
        <dd>
          <ActorName tenantId={entry.tenantId} actorId={entry.requestedBy} />
          {entry.requestedAt ? (
            <>
              {' '}
              at <TenantTime value={entry.requestedAt} />
            </>
          ) : null}
        </dd>
        <dt>How long</dt>
        <dd>{entry.duration}</dd>
        <dt>Why</dt>
        <dd>{entry.why ?? '—'}</dd>
        <dt>Ticket</dt>
        <dd>{entry.ticket ?? '—'}</dd>
      </dl>
      {entry.details}
      {mine ? (
        <p className="muted">You asked for this, so another approver decides.</p>
      ) : (
        <>
          <label htmlFor={`${id}-comment`}>Comment (optional, kept in the audit trail)</label>
          <textarea id={`${id}-comment`} rows={2} value={comment} onChange={(e) => setComment(e.target.value)} />
          <p className="button-row">
            {entry.decisions.map((decision) => (
              <button
                key={decision}
                type="button"
                className={decision === 'deny' ? 'danger' : undefined}
                disabled={decide.isPending}
                onClick={() => decide.mutate(decision)}
                aria-describedby={`${id}-title`}
              >
                {decision === 'approve' ? 'Approve' : 'Deny'}
              </button>
            ))}
          </p>
          <ErrorNotice error={decide.error} />
        </>
      )}
    </li>
  );
}

function TenantInbox({
  tenant,
  entries,
  error,
  pending,
  onDecided,
}: {
  tenant: Tenant;
  entries: Entry[] | undefined;
  error: unknown;
  pending: boolean;
  onDecided: (o: Outcome) => void;
}) {
  const policy = useTenantPolicy(tenant.id);
  const zone = policy.data?.document.timezone ?? 'UTC';
  return (
    <TenantZone.Provider value={zone}>
      <section aria-labelledby={`tenant-${tenant.id}`}>
        <h2 id={`tenant-${tenant.id}`}>{tenant.name}</h2>
        {pending ? <Loading what={`${tenant.name}'s requests`} /> : null}
        <ErrorNotice error={error} />
        {entries && entries.length === 0 ? (
          <EmptyState title="Nothing waits for you">
            <p>No request in {tenant.name} waits for its approvers. New ones appear here by themselves.</p>
          </EmptyState>
        ) : null}
        {entries && entries.length > 0 ? (
          <ul className="entries">
            {entries.map((entry) => (
              <InboxEntry key={entry.key} entry={entry} onDecided={onDecided} />
            ))}
          </ul>
        ) : null}
      </section>
    </TenantZone.Provider>
  );
}

/**
 * The tenant approver's inbox: every request waiting for their tenant's decision (grants,
 * extensions, policy changes, remote actions, template applies, drift exceptions), each with who
 * asked, what, for how long, why and the ticket; approve or deny with a comment.
 */
function Inbox() {
  const { me } = useSession();
  const tenants = useTenants();
  const approverTenants = new Set((me?.bindings ?? []).filter((b) => b.role === 'tenant_approver' && b.tenantId).map((b) => b.tenantId!));
  const mine = (tenants.data ?? []).filter((t) => approverTenants.has(t.id));
  const policies = useQueries({
    queries: mine.map((tenant) => ({
      queryKey: ['inbox', tenant.id],
      queryFn: () => tenantInbox(tenant.id),
      refetchInterval: REFRESH_MS,
    })),
  });
  const [outcomes, setOutcomes] = useState<Outcome[]>([]);
  const onDecided = (outcome: Outcome) => setOutcomes((list) => [outcome, ...list.filter((o) => o.key !== outcome.key)].slice(0, 5));

  if (tenants.isPending || !me) return <Loading what="your inbox" />;
  if (tenants.error) return <ErrorNotice error={tenants.error} />;
  return (
    <section aria-labelledby="inbox-title">
      <h1 id="inbox-title">Approvals inbox</h1>
      <div role="status" aria-live="polite">
        {outcomes.map((o) => (
          <p key={o.key} className="notice">
            {o.text}
          </p>
        ))}
      </div>
      {mine.length === 0 ? (
        <EmptyState title="You approve for no tenant">
          <p>Only a tenant&rsquo;s own approvers decide its requests. Ask your organisation&rsquo;s admin if you should be one.</p>
        </EmptyState>
      ) : (
        mine.map((tenant, i) => (
          <TenantInbox
            key={tenant.id}
            tenant={tenant}
            entries={policies[i]?.data}
            error={policies[i]?.error}
            pending={policies[i]?.isPending ?? true}
            onDecided={onDecided}
          />
        ))
      )}
    </section>
  );
}

export { Inbox };
