import { useEffect, useState } from 'react';
import { useQuery } from '@tanstack/react-query';
import { Link, useParams, useSearchParams } from 'react-router';
import { api, unwrap } from '../../api/client';
import type { components } from '../../api/schema';
import { EmptyState, ErrorNotice, Loading } from '../../components/Feedback';
import { Pager, useCursorPages } from '../../components/Pager';
import { Time } from '../../components/Time';
import { TenantPicker, useTenantName, useTenantZone } from '../../components/TenantPicker';

type PersonStatus = components['schemas']['Person']['status'];
type GrantStatus = components['schemas']['Grant']['status'];
const PERSON_STATUSES: PersonStatus[] = ['pending', 'pre_provisioned', 'active', 'leaving', 'left', 'deleted', 'anonymised'];
const GRANT_FILTERS: { status: GrantStatus; label: string }[] = [
  { status: 'pending_approval', label: 'Waiting for approval' },
  { status: 'active', label: 'Active' },
  { status: 'scheduled', label: 'Scheduled' },
];

/** The tenant's grants in one status (the overview's counts link here). */
function GrantList({ tenantId, status, zone }: { tenantId: string; status: GrantStatus; zone: string }) {
  const grants = useQuery({
    queryKey: ['grants', tenantId, status],
    queryFn: async () =>
      unwrap(await api.GET('/v1/tenants/{tenantId}/grants', { params: { path: { tenantId }, query: { status, limit: 100 } } })),
  });
  const label = GRANT_FILTERS.find((f) => f.status === status)?.label ?? status;
  return (
    <section aria-labelledby="grants-title">
      <h2 id="grants-title">Grants: {label.toLowerCase()}</h2>
      {grants.isPending ? <Loading what="grants" /> : null}
      <ErrorNotice error={grants.error} />
      {grants.data && grants.data.grants.length === 0 ? <EmptyState title={`No grants ${label.toLowerCase()}`} /> : null}
      {grants.data && grants.data.grants.length > 0 ? (
        <div className="table-wrap" tabIndex={0} role="region" aria-label={`Grants ${label}`}>
          <table>
            <thead>
              <tr>
                <th scope="col">Person</th>
                <th scope="col">Role</th>
                <th scope="col">Ticket</th>
                <th scope="col">From</th>
                <th scope="col">Until</th>
              </tr>
            </thead>
            <tbody>
              {grants.data.grants.map((g) => (
                <tr key={g.grantId}>
                  <td>
                    <Link to={`/people/${tenantId}/${encodeURIComponent(g.subjectId)}`}>{g.subjectId}</Link>
                  </td>
                  <td>{g.role}</td>
                  <td>{g.ticket ?? '—'}</td>
                  <td>
                    <Time value={g.startAt} tenantZone={zone} />
                  </td>
                  <td>
                    <Time value={g.endAt} tenantZone={zone} />
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

/** A tenant's people: search by name or id, filter by lifecycle status, open a person's timeline. */
export function People() {
  const { tenantId = '' } = useParams();
  const [search, setSearch] = useSearchParams();
  const status = (search.get('status') ?? '') as PersonStatus | '';
  const grantStatus = search.get('grants') as GrantStatus | null;
  const q = search.get('q') ?? '';
  const [text, setText] = useState(q);
  // The address can change under the box (back, forward, a link): the box follows it, unless it
  // already shows that search (so a space typed at the end survives the debounced write).
  const [addressQ, setAddressQ] = useState(q);
  if (q !== addressQ) {
    setAddressQ(q);
    if (text.trim().slice(0, 200) !== q) setText(q);
  }
  const pages = useCursorPages();
  const after = pages.current;
  const zone = useTenantZone(tenantId);
  const name = useTenantName(tenantId);
  const people = useQuery({
    queryKey: ['people', tenantId, status, q, after],
    queryFn: async () =>
      unwrap(
        await api.GET('/v1/tenants/{tenantId}/people', {
          params: {
            path: { tenantId },
            query: { limit: 200, ...(status ? { status } : {}), ...(q ? { q } : {}), ...(after ? { after } : {}) },
          },
        }),
      ),
  });
  const shown = people.data?.people ?? [];
  const setFilter = (key: string, value: string) => {
    const next = new URLSearchParams(search);
    if (value) next.set(key, value);
    else next.delete(key);
    setSearch(next);
    pages.reset();
  };
  // The API searches the whole tenant, not just the loaded page; a pause in typing sends it.
  useEffect(() => {
    const wanted = text.trim().slice(0, 200);
    if (wanted === q) return;
    const timer = setTimeout(() => setFilter('q', wanted), 300);
    return () => clearTimeout(timer);
  });
  return (
    <section aria-labelledby="people-title">
      <h1 id="people-title">People{name ? ` of ${name}` : ''}</h1>
      <TenantPicker area="people" current={tenantId} />
      <div className="filters" role="search">
        <div>
          <label htmlFor="people-search">Search by name, id or email</label>
          <input id="people-search" type="search" value={text} onChange={(e) => setText(e.target.value)} />
        </div>
        <div>
          <label htmlFor="people-status">Lifecycle status</label>
          <select id="people-status" value={status} onChange={(e) => setFilter('status', e.target.value)}>
            <option value="">Any</option>
            {PERSON_STATUSES.map((s) => (
              <option key={s} value={s}>
                {s.replace('_', ' ')}
              </option>
            ))}
          </select>
        </div>
        <div>
          <label htmlFor="people-grants">Show grants</label>
          <select id="people-grants" value={grantStatus ?? ''} onChange={(e) => setFilter('grants', e.target.value)}>
            <option value="">None</option>
            {GRANT_FILTERS.map((f) => (
              <option key={f.status} value={f.status}>
                {f.label}
              </option>
            ))}
          </select>
        </div>
      </div>
      {grantStatus ? <GrantList tenantId={tenantId} status={grantStatus} zone={zone} /> : null}
      <h2>People</h2>
      {people.isPending ? <Loading what="people" /> : null}
      <ErrorNotice error={people.error} />
      {people.data && shown.length === 0 ? (
        <EmptyState title={q || status ? 'Nobody matches these filters' : 'No people in this tenant yet'}>
          <p>
            {q || status
              ? 'Clear the search or choose another status.'
              : 'People appear when the HR feed sends joiner events (POST /v1/tenants/{tenantId}/hr-events, or an import).'}
          </p>
        </EmptyState>
      ) : null}
      {shown.length > 0 ? (
        <div className="table-wrap" tabIndex={0} role="region" aria-label="People">
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Id</th>
                <th scope="col">Status</th>
                <th scope="col">Birthright roles</th>
                <th scope="col">Joined</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((p) => (
                <tr key={p.personId}>
                  <td>
                    <Link to={`/people/${tenantId}/${encodeURIComponent(p.personId)}`}>{p.profile?.displayName ?? p.personId}</Link>
                  </td>
                  <td>{p.personId}</td>
                  <td>
                    <span className={`status ${p.status === 'active' ? 'ok' : p.status === 'leaving' ? 'warn' : ''}`}>{p.status}</span>
                  </td>
                  <td>{p.birthright.map((b) => b.role).join(', ') || '—'}</td>
                  <td>
                    <Time value={p.joinedAt} tenantZone={zone} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      <Pager pages={pages} nextCursor={people.data?.nextCursor} previousLabel="Previous page" nextLabel="Next page" />
    </section>
  );
}
