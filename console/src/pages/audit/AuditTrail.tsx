import { useState, type FormEvent } from 'react';
import { useQuery } from '@tanstack/react-query';
import { useParams } from 'react-router';
import { api, unwrap } from '../../api/client';
import { downloadFile } from '../../api/download';
import { EmptyState, ErrorNotice, Loading } from '../../components/Feedback';
import { Pager, useCursorPages } from '../../components/Pager';
import { Time } from '../../components/Time';
import { TenantPicker, useTenantName, useTenantZone } from '../../components/TenantPicker';

interface Filters {
  action?: string;
  actorId?: string;
  from?: string;
  to?: string;
}

/** A `datetime-local` value (the viewer's zone) as an ISO instant, or undefined when empty. */
function instant(local: string): string | undefined {
  if (!local) return undefined;
  const date = new Date(local);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

function ChainStatus({ tenantId }: { tenantId: string }) {
  const verify = useQuery({
    queryKey: ['audit-verify', tenantId],
    queryFn: async () => unwrap(await api.GET('/v1/audit/{chainId}/verify', { params: { path: { chainId: tenantId } } })),
  });
  return (
    <section aria-labelledby="chain-title" className="panel">
      <h2 id="chain-title">Chain verification</h2>
      {verify.isPending ? <Loading what="the verification" /> : null}
      <ErrorNotice error={verify.error} />
      {verify.data ? (
        <p role="status" data-chain={verify.data.intact ? 'intact' : 'broken'}>
          {verify.data.intact ? (
            <>
              <span className="status ok">Intact</span> all {verify.data.checked} events verify, up to seq {verify.data.headSeq}.
            </>
          ) : (
            <>
              <span className="status bad">Broken</span> first bad event: seq {verify.data.firstBadSeq}
              {verify.data.reason ? ` (${verify.data.reason})` : ''}; {verify.data.checked} events verified before it. Tell your MSP and
              keep an export as evidence.
            </>
          )}
        </p>
      ) : null}
      <button type="button" className="secondary" onClick={() => void verify.refetch()} disabled={verify.isFetching}>
        Verify again
      </button>
    </section>
  );
}

function CampaignReports({ tenantId, zone }: { tenantId: string; zone: string }) {
  const [error, setError] = useState<unknown>();
  const reviews = useQuery({
    queryKey: ['reviews', tenantId],
    queryFn: async () => unwrap(await api.GET('/v1/tenants/{tenantId}/reviews', { params: { path: { tenantId } } })).reviews,
  });
  const finished = (reviews.data ?? []).filter((r) => r.status === 'completed' || r.status === 'cancelled');
  const download = (runId: string, format: 'json' | 'csv') => {
    setError(undefined);
    downloadFile(`/v1/tenants/${tenantId}/reviews/${runId}/report`, { format }, `review-${runId}.${format}`).catch(setError);
  };
  return (
    <section aria-labelledby="reports-title">
      <h2 id="reports-title">Campaign reports</h2>
      {reviews.isPending ? <Loading what="reviews" /> : null}
      <ErrorNotice error={reviews.error ?? error} />
      {reviews.data && finished.length === 0 ? (
        <EmptyState title="No finished reviews yet">
          <p>A report appears here when a campaign&apos;s review of this tenant completes.</p>
        </EmptyState>
      ) : null}
      {finished.length > 0 ? (
        <div className="table-wrap" tabIndex={0} role="region" aria-label="Finished reviews">
          <table>
            <thead>
              <tr>
                <th scope="col">Run</th>
                <th scope="col">Completed</th>
                <th scope="col">Items</th>
                <th scope="col">Report</th>
              </tr>
            </thead>
            <tbody>
              {finished.map((r) => (
                <tr key={r.runId}>
                  <td>
                    <code>{r.runId.slice(0, 8)}</code>
                  </td>
                  <td>
                    <Time value={r.completedAt} tenantZone={zone} />
                  </td>
                  <td>{r.itemCount}</td>
                  <td className="actions">
                    <button type="button" className="secondary" onClick={() => download(r.runId, 'json')}>
                      JSON<span className="visually-hidden"> report of run {r.runId.slice(0, 8)}</span>
                    </button>
                    <button type="button" className="secondary" onClick={() => download(r.runId, 'csv')}>
                      CSV<span className="visually-hidden"> report of run {r.runId.slice(0, 8)}</span>
                    </button>
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

/** A tenant's audit trail for auditors: filtered events, the chain's verification, exports and campaign reports. */
export function AuditTrail() {
  const { tenantId = '' } = useParams();
  const zone = useTenantZone(tenantId);
  const name = useTenantName(tenantId);
  const [filters, setFilters] = useState<Filters>({});
  const [draft, setDraft] = useState({ action: '', actorId: '', from: '', to: '' });
  const pages = useCursorPages();
  const [exportError, setExportError] = useState<unknown>();
  const [exported, setExported] = useState<string>();
  const cursor = pages.current;
  const events = useQuery({
    queryKey: ['audit-events', tenantId, filters, cursor],
    queryFn: async () =>
      unwrap(
        await api.GET('/v1/audit/{chainId}/events', {
          params: { path: { chainId: tenantId }, query: { limit: 100, ...filters, ...(cursor ? { cursor } : {}) } },
        }),
      ),
  });
  const apply = (event: FormEvent) => {
    event.preventDefault();
    const next: Filters = {};
    if (draft.action.trim()) next.action = draft.action.trim();
    if (draft.actorId.trim()) next.actorId = draft.actorId.trim();
    const from = instant(draft.from);
    const to = instant(draft.to);
    if (from) next.from = from;
    if (to) next.to = to;
    setFilters(next);
    pages.reset();
  };
  const exportAs = (format: 'ndjson' | 'csv') => {
    setExportError(undefined);
    setExported(undefined);
    downloadFile(`/v1/audit/${tenantId}/export`, { ...filters, format }, `audit-${tenantId}.${format}`)
      .then((file) => setExported(file))
      .catch(setExportError);
  };
  const filtered = Object.keys(filters).length > 0;
  return (
    <section aria-labelledby="audit-title">
      <h1 id="audit-title">Audit trail{name ? ` of ${name}` : ''}</h1>
      <TenantPicker area="audit" current={tenantId} />
      <ChainStatus tenantId={tenantId} />
      <h2>Events</h2>
      <form className="filters" role="search" aria-label="Filter events" onSubmit={apply}>
        <div>
          <label htmlFor="audit-action">Event type (exact, e.g. grant.requested)</label>
          <input id="audit-action" value={draft.action} onChange={(e) => setDraft({ ...draft, action: e.target.value })} />
        </div>
        <div>
          <label htmlFor="audit-actor">Actor id</label>
          <input id="audit-actor" value={draft.actorId} onChange={(e) => setDraft({ ...draft, actorId: e.target.value })} />
        </div>
        <div>
          <label htmlFor="audit-from">From (your time)</label>
          <input id="audit-from" type="datetime-local" value={draft.from} onChange={(e) => setDraft({ ...draft, from: e.target.value })} />
        </div>
        <div>
          <label htmlFor="audit-to">To (your time)</label>
          <input id="audit-to" type="datetime-local" value={draft.to} onChange={(e) => setDraft({ ...draft, to: e.target.value })} />
        </div>
        <div className="filter-actions">
          <button type="submit">Apply filters</button>
        </div>
      </form>
      <div className="toolbar">
        <button type="button" className="secondary" onClick={() => exportAs('ndjson')}>
          Export NDJSON{filtered ? ' (filtered)' : ''}
        </button>
        <button type="button" className="secondary" onClick={() => exportAs('csv')}>
          Export CSV{filtered ? ' (filtered)' : ''}
        </button>
        {exported ? (
          <span role="status" className="muted">
            Saved {exported}.{filtered ? '' : ' An unfiltered NDJSON export verifies offline: tenure audit verify --file.'}
          </span>
        ) : null}
      </div>
      <ErrorNotice error={exportError} />
      {events.isPending ? <Loading what="events" /> : null}
      <ErrorNotice error={events.error} />
      {events.data && events.data.events.length === 0 ? (
        <EmptyState title={filtered ? 'No events match these filters' : 'No events yet'}>
          {filtered ? <p>Widen the time range or clear a filter.</p> : null}
        </EmptyState>
      ) : null}
      {events.data && events.data.events.length > 0 ? (
        <div className="table-wrap" tabIndex={0} role="region" aria-label="Audit events">
          <table>
            <thead>
              <tr>
                <th scope="col">Seq</th>
                <th scope="col">When</th>
                <th scope="col">Event</th>
                <th scope="col">Actor</th>
                <th scope="col">Target</th>
              </tr>
            </thead>
            <tbody>
              {events.data.events.map((e) => (
                <tr key={e.seq} data-action={e.action}>
                  <td>{e.seq}</td>
                  <td>
                    <Time value={e.occurredAt} tenantZone={zone} />
                  </td>
                  <td>{e.action}</td>
                  <td>
                    <span className="muted">{e.actor.type}</span> {e.actor.id}
                  </td>
                  <td>{e.target ? `${e.target.type} ${e.target.id}` : '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      <Pager pages={pages} nextCursor={events.data?.nextCursor} previousLabel="Previous events" nextLabel="Later events" />
      <CampaignReports tenantId={tenantId} zone={zone} />
    </section>
  );
}
