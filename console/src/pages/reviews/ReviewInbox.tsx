import { useState } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useParams, useSearchParams } from 'react-router';
import { api, unwrap } from '../../api/client';
import type { components } from '../../api/schema';
import { hasRole, useSession } from '../../auth/session';
import { EmptyState, ErrorNotice, Loading } from '../../components/Feedback';
import { Time } from '../../components/Time';
import { TenantPicker, useTenantName, useTenantZone } from '../../components/TenantPicker';

type Item = components['schemas']['ReviewItem'];
type Decision = 'keep' | 'revoke' | 'recommended';

function Outcome({ item }: { item: Item }) {
  if (item.outcome) return <span className="status">{`decided: ${item.outcome}`}</span>;
  if (item.myDecision)
    return <span className={`status ${item.myDecision === 'keep' ? 'ok' : 'bad'}`}>{`you chose ${item.myDecision}`}</span>;
  return <span className="status warn">waiting for you</span>;
}

/**
 * A reviewer's inbox in one tenant: each item with its recommendation and why, a decision per
 * item, and "accept recommendations" for every undecided item shown. MSP staff see the items but
 * never decide: the tenant's own reviewers do.
 */
export function ReviewInbox() {
  const { tenantId = '' } = useParams();
  const { me } = useSession();
  const queryClient = useQueryClient();
  const zone = useTenantZone(tenantId);
  const name = useTenantName(tenantId);
  const [search, setSearch] = useSearchParams();
  const [justification, setJustification] = useState('');
  const [notice, setNotice] = useState<string>();
  // Decisions belong to the tenant's own staff bound in it; an MSP-wide binding never decides.
  const decider = (me?.bindings ?? []).some((b) => b.tenantId === tenantId && ['tenant_reviewer', 'tenant_approver'].includes(b.role));
  const recommendation = (search.get('recommendation') ?? '') as 'keep' | 'revoke' | '';
  const decided = (search.get('decided') ?? '') as 'true' | 'false' | '';
  const subjectId = search.get('subject') ?? '';
  const items = useQuery({
    queryKey: ['review-items', tenantId, decider, recommendation, decided, subjectId],
    queryFn: async () =>
      unwrap(
        await api.GET('/v1/tenants/{tenantId}/reviews/items', {
          params: {
            path: { tenantId },
            query: {
              limit: 1000,
              ...(decider ? { assignedTo: 'me' as const } : {}),
              ...(recommendation ? { recommendation } : {}),
              ...(decider && decided ? { decided } : {}),
              ...(subjectId ? { subjectId } : {}),
            },
          },
        }),
      ),
    enabled: me !== undefined,
  });
  const decide = useMutation({
    mutationFn: async (decisions: { itemId: string; decision: Decision }[]) =>
      unwrap(
        await api.POST('/v1/tenants/{tenantId}/reviews/decisions', {
          params: { path: { tenantId } },
          body: { decisions, ...(justification.trim() ? { justification: justification.trim() } : {}) },
        }),
      ),
    onSuccess: (result) => {
      setNotice(
        `Recorded ${result.recorded} decision${result.recorded === 1 ? '' : 's'}${result.unchanged ? ` (${result.unchanged} unchanged)` : ''}.`,
      );
      void queryClient.invalidateQueries({ queryKey: ['review-items', tenantId] });
    },
  });
  const setFilter = (key: string, value: string) => {
    const next = new URLSearchParams(search);
    if (value) next.set(key, value);
    else next.delete(key);
    setSearch(next);
  };
  const open = (items.data?.items ?? []).filter((i) => i.outcome === null);
  const undecided = open.filter((i) => i.myDecision === null);
  return (
    <section aria-labelledby="reviews-title">
      <h1 id="reviews-title">Access reviews{name ? ` in ${name}` : ''}</h1>
      <TenantPicker area="reviews" current={tenantId} />
      {!decider && hasRole(me, ['msp_admin', 'operator', 'auditor']) ? (
        <p className="notice">You can follow this tenant&apos;s reviews here; its own reviewers and approvers decide them.</p>
      ) : null}
      {items.data?.notices?.length ? (
        <ul className="notices" aria-label="Notices">
          {items.data.notices.map((n) => (
            <li key={n.noticeId}>
              {n.kind.replace('_', ' ')}: {n.items} item{n.items === 1 ? '' : 's'} waiting
              {n.closesAt ? (
                <>
                  , stage closes <Time value={n.closesAt} tenantZone={zone} />
                </>
              ) : null}
            </li>
          ))}
        </ul>
      ) : null}
      <div className="filters" role="search">
        <div>
          <label htmlFor="review-recommendation">Recommendation</label>
          <select id="review-recommendation" value={recommendation} onChange={(e) => setFilter('recommendation', e.target.value)}>
            <option value="">Any</option>
            <option value="keep">Keep</option>
            <option value="revoke">Revoke</option>
          </select>
        </div>
        {decider ? (
          <div>
            <label htmlFor="review-decided">Your decision</label>
            <select id="review-decided" value={decided} onChange={(e) => setFilter('decided', e.target.value)}>
              <option value="">Any</option>
              <option value="false">Not decided yet</option>
              <option value="true">Decided</option>
            </select>
          </div>
        ) : null}
        <div>
          <label htmlFor="review-subject">Person (exact id)</label>
          <input
            id="review-subject"
            type="search"
            defaultValue={subjectId}
            onKeyDown={(e) => {
              if (e.key === 'Enter') setFilter('subject', e.currentTarget.value.trim());
            }}
            onBlur={(e) => setFilter('subject', e.currentTarget.value.trim())}
          />
        </div>
      </div>
      {decider ? (
        <div className="toolbar">
          <div>
            <label htmlFor="review-justification">Justification (optional, recorded with each decision)</label>
            <input id="review-justification" value={justification} maxLength={2000} onChange={(e) => setJustification(e.target.value)} />
          </div>
          <button
            type="button"
            disabled={undecided.length === 0 || decide.isPending}
            onClick={() => decide.mutate(undecided.map((i) => ({ itemId: i.itemId, decision: 'recommended' })))}
          >
            Accept recommendations ({undecided.length})
          </button>
        </div>
      ) : null}
      {notice ? (
        <p className="notice" role="status">
          {notice}
        </p>
      ) : null}
      <ErrorNotice error={decide.error} />
      {items.isPending ? <Loading what="review items" /> : null}
      <ErrorNotice error={items.error} />
      {items.data && items.data.items.length === 0 ? (
        <EmptyState title={decider ? 'Nothing waits for your review' : 'No review items'}>
          <p>
            {recommendation || decided || subjectId
              ? 'Nothing matches these filters; clear them to see every item.'
              : 'Items appear here when MSP staff start a campaign that covers this tenant.'}
          </p>
        </EmptyState>
      ) : null}
      {items.data && items.data.items.length > 0 ? (
        <div className="table-wrap" tabIndex={0} role="region" aria-label="Review items">
          <table>
            <thead>
              <tr>
                <th scope="col">Person</th>
                <th scope="col">Role</th>
                <th scope="col">Recommendation</th>
                <th scope="col">Last activity</th>
                <th scope="col">State</th>
                {decider ? <th scope="col">Decide</th> : null}
              </tr>
            </thead>
            <tbody>
              {items.data.items.map((item) => (
                <tr key={item.itemId} data-subject={item.subjectId}>
                  <td>
                    {item.subjectId}
                    {item.serviceAccount ? <span className="muted"> (service account)</span> : null}
                    <div className="muted">{item.subjectStatus}</div>
                  </td>
                  <td>
                    {item.role}
                    {item.privileged ? <span className="muted"> (privileged)</span> : null}
                    <div className="muted">{item.sources.map((s) => `${s.type} ${s.id}`).join(', ') || 'no recorded source'}</div>
                  </td>
                  <td>
                    <strong>{item.recommendation}</strong>
                    <div className="muted">{item.recommendationReason}</div>
                  </td>
                  <td>
                    <Time value={item.lastActivityAt} tenantZone={zone} />
                  </td>
                  <td>
                    <Outcome item={item} />
                  </td>
                  {decider ? (
                    <td>
                      {item.outcome === null ? (
                        <div className="actions" role="group" aria-label={`Decide ${item.role} for ${item.subjectId}`}>
                          <button
                            type="button"
                            className="secondary"
                            aria-pressed={item.myDecision === 'keep'}
                            disabled={decide.isPending}
                            onClick={() => decide.mutate([{ itemId: item.itemId, decision: 'keep' }])}
                          >
                            Keep
                          </button>
                          <button
                            type="button"
                            className="danger"
                            aria-pressed={item.myDecision === 'revoke'}
                            disabled={decide.isPending}
                            onClick={() => decide.mutate([{ itemId: item.itemId, decision: 'revoke' }])}
                          >
                            Revoke
                          </button>
                        </div>
                      ) : (
                        '—'
                      )}
                    </td>
                  ) : null}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </section>
  );
}
