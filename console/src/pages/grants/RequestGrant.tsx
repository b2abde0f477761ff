import { useMemo, useState, type FormEvent } from 'react';
import { Link, useNavigate } from 'react-router';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { api, ApiError, unwrap } from '../../api/client';
import { useSession, type Me } from '../../auth/session';
import { EmptyState, ErrorNotice, Loading } from '../../components/Feedback';
import { grantKeys, useTenantPolicy, useTenants, type TenantPolicy } from './data';

type GrantRule = NonNullable<TenantPolicy['document']['grants']>['roles'][string];

/** The roles of the tenant's grant policy this caller may request (a binding MSP-wide or in the tenant). */
function requestableRoles(policy: TenantPolicy | undefined, me: Me | undefined, tenantId: string): [string, GrantRule][] {
  if (!policy) return [];
  const mine = (me?.bindings ?? []).filter((b) => b.tenantId === null || b.tenantId === tenantId).map((b) => b.role);
  return Object.entries(policy.document.grants?.roles ?? {})
    .filter(([, rule]) => rule.requestableBy.some((role) => mine.includes(role)))
    .sort(([a], [b]) => a.localeCompare(b));
}

/** A field's own message from the API (by its path), shown under it and linked to it for screen readers. */
function FieldError({ id, error, path }: { id: string; error: unknown; path: string }) {
  const message = error instanceof ApiError ? error.issueFor(path) : undefined;
  return message ? (
    <p className="field-error" id={id}>
      {message}
    </p>
  ) : null;
}

/**
 * Requesting a grant: the form knows the tenant's policy (which roles this caller may request, each
 * role's maximum duration, whether a justification is needed, the ticket format), and the API's
 * refusals appear next to the fields they name.
 */
function RequestGrant() {
  const { me } = useSession();
  const tenants = useTenants();
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const [tenantId, setTenantId] = useState('');
  const policy = useTenantPolicy(tenantId || undefined);
  const roles = useMemo(() => requestableRoles(policy.data, me, tenantId), [policy.data, me, tenantId]);
  const [role, setRole] = useState('');
  const [subjectId, setSubjectId] = useState('');
  const [durationMinutes, setDurationMinutes] = useState('60');
  const [justification, setJustification] = useState('');
  const [ticket, setTicket] = useState('');
  // One key per request the user means: a retry after a network error is not a second grant.
  const [idempotencyKey, setIdempotencyKey] = useState(() => crypto.randomUUID());
  const rule = roles.find(([name]) => name === role)?.[1];
  const grants = policy.data?.document.grants;

  const request = useMutation({
    mutationFn: async () =>
      unwrap(
        await api.POST('/v1/tenants/{tenantId}/grants', {
          params: { path: { tenantId }, header: { 'idempotency-key': idempotencyKey } },
          body: {
            subjectId: subjectId.trim(),
            role,
            durationMinutes: Number(durationMinutes),
            ...(justification.trim() ? { justification: justification.trim() } : {}),
            ...(ticket.trim() ? { ticket: ticket.trim() } : {}),
          },
        }),
      ),
    onSuccess: (grant) => {
      void queryClient.invalidateQueries({ queryKey: grantKeys.all });
      void navigate(`/grants/${grant.tenantId}/${grant.grantId}`);
    },
    onError: () => setIdempotencyKey(crypto.randomUUID()),
  });

  const submit = (event: FormEvent) => {
    event.preventDefault();
    request.mutate();
  };
  const err = request.error;
  const describedBy = (hint: string, path: string) =>
    [hint, err instanceof ApiError && err.issueFor(path) ? `${hint}-error` : ''].filter(Boolean).join(' ') || undefined;

  if (tenants.isPending) return <Loading what="tenants" />;
  if (tenants.error) return <ErrorNotice error={tenants.error} />;
  if (!tenants.data?.length)
    return (
      <EmptyState title="No tenants">
        <p>You can see no tenant to request access in. Ask your MSP admin for a role binding.</p>
      </EmptyState>
    );

  return (
    <section aria-labelledby="request-title">
      <h1 id="request-title">Request access</h1>
      <p className="muted">
        A time-bound role in a client tenant. The tenant&rsquo;s own approvers decide; it ends by itself. See{' '}
        <Link to="/grants">My grants</Link> for what you hold.
      </p>
      <form onSubmit={submit} noValidate className="form">
        <label htmlFor="tenant">Tenant</label>
        <select
          id="tenant"
          value={tenantId}
          onChange={(e) => {
            setTenantId(e.target.value);
            setRole('');
          }}
          required
        >
          <option value="">Choose a tenant…</option>
          {tenants.data.map((t) => (
            <option key={t.id} value={t.id}>
              {t.name}
            </option>
          ))}
        </select>

        {tenantId && policy.isPending ? <Loading what="the tenant's grant policy" /> : null}
        <ErrorNotice error={policy.error} />
        {policy.data && roles.length === 0 ? (
          <p className="notice" role="status">
            This tenant&rsquo;s grant policy lets your roles request no role. Ask the tenant or your MSP admin to change its policy.
          </p>
        ) : null}

        <label htmlFor="role">Role</label>
        <select
          id="role"
          value={role}
          onChange={(e) => setRole(e.target.value)}
          disabled={roles.length === 0}
          aria-describedby={describedBy('role-hint', 'body.role')}
        >
          <option value="">Choose a role…</option>
          {roles.map(([name, r]) => (
            <option key={name} value={name}>
              {name} (up to {r.maxDurationMinutes} min
              {r.approvalsRequired > 0 ? `, ${r.approvalsRequired} approval${r.approvalsRequired > 1 ? 's' : ''}` : ', no approval'})
            </option>
          ))}
        </select>
        <p className="muted hint" id="role-hint">
          {rule
            ? `At most ${rule.maxDurationMinutes} minutes; ${rule.approvalsRequired === 0 ? 'starts without approval' : `needs ${rule.approvalsRequired} of the tenant's approvers`}.`
            : 'The roles this tenant lets you request.'}
        </p>
        <FieldError id="role-hint-error" error={err} path="body.role" />

        <label htmlFor="subject">Account (directory user id)</label>
        <input
          id="subject"
          value={subjectId}
          onChange={(e) => setSubjectId(e.target.value)}
          autoComplete="off"
          aria-describedby={describedBy('subject-hint', 'body.subjectId')}
        />
        <p className="muted hint" id="subject-hint">
          The tenant directory user who receives the role, e.g. <code>ana.lima</code>.
        </p>
        <FieldError id="subject-hint-error" error={err} path="body.subjectId" />

        <label htmlFor="duration">Duration (minutes)</label>
        <input
          id="duration"
          type="number"
          inputMode="numeric"
          min={1}
          max={rule?.maxDurationMinutes}
          value={durationMinutes}
          onChange={(e) => setDurationMinutes(e.target.value)}
          aria-describedby={describedBy('duration-hint', 'body.durationMinutes')}
        />
        <p className="muted hint" id="duration-hint">
          {rule ? `1 to ${rule.maxDurationMinutes} minutes.` : 'Choose a role to see its maximum.'}
        </p>
        <FieldError id="duration-hint-error" error={err} path="body.durationMinutes" />

        <label htmlFor="justification">Justification{grants?.justificationRequired ? '' : ' (optional)'}</label>
        <textarea
          id="justification"
          rows={3}
          value={justification}
          onChange={(e) => setJustification(e.target.value)}
          aria-describedby={describedBy('justification-hint', 'body.justification')}
        />
        <p className="muted hint" id="justification-hint">
          Why you need it; the approvers read this.
        </p>
        <FieldError id="justification-hint-error" error={err} path="body.justification" />

        <label htmlFor="ticket">Ticket{grants?.ticketPattern ? '' : ' (optional)'}</label>
        <input
          id="ticket"
          value={ticket}
          onChange={(e) => setTicket(e.target.value)}
          autoComplete="off"
          aria-describedby={describedBy('ticket-hint', 'body.ticket')}
        />
        <p className="muted hint" id="ticket-hint">
          {grants?.ticketPattern ? (
            <>
              Must match <code>{grants.ticketPattern}</code>, e.g. a change or incident number.
            </>
          ) : (
            'Your change or incident reference, if any.'
          )}
        </p>
        <FieldError id="ticket-hint-error" error={err} path="body.ticket" />

        <p>
          <button type="submit" disabled={!tenantId || request.isPending}>
            {request.isPending ? 'Requesting…' : 'Request access'}
          </button>
        </p>
        <ErrorNotice error={err} />
      </form>
    </section>
  );
}

export { RequestGrant };
