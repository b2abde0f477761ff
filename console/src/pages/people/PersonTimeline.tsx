import { useState } from 'react';
import { useQuery } from '@tanstack/react-query';
import { Link, useParams } from 'react-router';
import { api, unwrap } from '../../api/client';
import { EmptyState, ErrorNotice, Loading } from '../../components/Feedback';
import { Time } from '../../components/Time';
import { useTenantZone } from '../../components/TenantPicker';

type Kind = 'lifecycle' | 'grant' | 'audit';
interface Entry {
  key: string;
  at: string;
  kind: Kind;
  what: string;
  detail: string;
}
const KIND_LABELS: Record<Kind, string> = { lifecycle: 'Lifecycle', grant: 'Grant', audit: 'Audit' };

/** One person: state, access and why, and every lifecycle event, grant and audit event in time order. */
export function PersonTimeline() {
  const { tenantId = '', personId = '' } = useParams();
  const zone = useTenantZone(tenantId);
  const [kind, setKind] = useState<Kind | ''>('');
  const [text, setText] = useState('');
  const path = { tenantId, personId };
  const person = useQuery({
    queryKey: ['person', tenantId, personId],
    queryFn: async () => unwrap(await api.GET('/v1/tenants/{tenantId}/people/{personId}', { params: { path } })),
  });
  const timeline = useQuery({
    queryKey: ['person-timeline', tenantId, personId],
    queryFn: async () =>
      unwrap(await api.GET('/v1/tenants/{tenantId}/people/{personId}/timeline', { params: { path, query: { limit: 1000 } } })),
  });
  const grants = useQuery({
    queryKey: ['grants', tenantId, 'subject', personId],
    queryFn: async () =>
      unwrap(
        await api.GET('/v1/tenants/{tenantId}/grants', { params: { path: { tenantId }, query: { subjectId: personId, limit: 200 } } }),
      ),
  });
  const error = person.error ?? timeline.error;
  if (error) {
    return (
      <section aria-labelledby="person-title">
        <h1 id="person-title">Person {personId}</h1>
        <ErrorNotice error={error} />
        <p>
          <Link to={`/people/${tenantId}`}>Back to people</Link>
        </p>
      </section>
    );
  }
  if (!person.data || !timeline.data) return <Loading what="the person" />;

  const entries: Entry[] = [
    ...timeline.data.hrEvents.map((e) => ({
      key: `hr-${e.eventId}`,
      at: e.effectiveAt,
      kind: 'lifecycle' as const,
      what: `HR ${e.type}`,
      detail: `${e.status}${e.statusReason ? `: ${e.statusReason}` : ''}`,
    })),
    ...(grants.data?.grants ?? []).map((g) => ({
      key: `grant-${g.grantId}`,
      at: g.activatedAt ?? g.startAt,
      kind: 'grant' as const,
      what: `Grant of ${g.role}`,
      detail: `${g.status}${g.endReason ? ` (${g.endReason})` : ''}${g.ticket ? `, ticket ${g.ticket}` : ''}`,
    })),
    ...timeline.data.events.map((e) => ({
      key: `audit-${e.seq}`,
      at: e.occurredAt,
      kind: 'audit' as const,
      what: e.action,
      detail: `by ${e.actor.type} ${e.actor.id}${e.target ? ` on ${e.target.type} ${e.target.id}` : ''} (seq ${e.seq})`,
    })),
  ].sort((a, b) => b.at.localeCompare(a.at));
  const needle = text.trim().toLowerCase();
  const shown = entries.filter((e) => (!kind || e.kind === kind) && (!needle || `${e.what} ${e.detail}`.toLowerCase().includes(needle)));
  const p = person.data.person;
  return (
    <section aria-labelledby="person-title">
      <p>
        <Link to={`/people/${tenantId}`}>Back to people</Link>
      </p>
      <h1 id="person-title">{p.profile?.displayName ?? p.personId}</h1>
      <dl className="facts">
        <dt>Id</dt>
        <dd>{p.personId}</dd>
        <dt>Status</dt>
        <dd>{p.status}</dd>
        <dt>Joined</dt>
        <dd>
          <Time value={p.joinedAt} tenantZone={zone} />
        </dd>
        <dt>Access now</dt>
        <dd>
          {person.data.entitlements.length === 0
            ? 'none'
            : person.data.entitlements.map((e) => `${e.role} (${e.sourceType} ${e.sourceId})`).join(', ')}
        </dd>
      </dl>
      <h2>Timeline</h2>
      {grants.error ? (
        <p className="muted" role="status">
          Grants are not shown: your roles do not include reading grants in this tenant.
        </p>
      ) : null}
      <div className="filters" role="search">
        <div>
          <label htmlFor="timeline-kind">Kind</label>
          <select id="timeline-kind" value={kind} onChange={(e) => setKind(e.target.value as Kind | '')}>
            <option value="">All</option>
            {(Object.keys(KIND_LABELS) as Kind[]).map((k) => (
              <option key={k} value={k}>
                {KIND_LABELS[k]}
              </option>
            ))}
          </select>
        </div>
        <div>
          <label htmlFor="timeline-text">Filter by text</label>
          <input id="timeline-text" type="search" value={text} onChange={(e) => setText(e.target.value)} />
        </div>
      </div>
      {shown.length === 0 ? (
        <EmptyState title={entries.length ? 'Nothing matches these filters' : 'Nothing has happened to this person yet'}>
          {entries.length ? <p>Choose another kind or clear the text.</p> : null}
        </EmptyState>
      ) : (
        <div className="table-wrap" tabIndex={0} role="region" aria-label="Timeline">
          <table>
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Kind</th>
                <th scope="col">What</th>
                <th scope="col">Detail</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((e) => (
                <tr key={e.key} data-kind={e.kind}>
                  <td>
                    <Time value={e.at} tenantZone={zone} />
                  </td>
                  <td>{KIND_LABELS[e.kind]}</td>
                  <td>{e.what}</td>
                  <td>{e.detail}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
