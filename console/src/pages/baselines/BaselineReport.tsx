import { useState } from 'react';
import { useQuery } from '@tanstack/react-query';
import { Link, useSearchParams } from 'react-router';
import { api, unwrap } from '../../api/client';
import { downloadFile } from '../../api/download';
import type { components } from '../../api/schema';
import { EmptyState, ErrorNotice, Loading } from '../../components/Feedback';
import { Time } from '../../components/Time';

type Report = components['schemas']['RbacReport'];
type Cell = components['schemas']['RbacReportCell'];

const BASIS: Record<Cell['basis'], string> = {
  template: 'the applied template version',
  latest: 'the template’s newest approved version',
  pin: 'the version assigned',
  majority: 'what most tenants have',
  none: 'nothing (shown for information)',
};

/** A column's heading: its key without the area (shown as the group above it). */
function heading(key: string): string {
  const role = /^roles\.(.+)\.(privileged|members)$/.exec(key);
  if (role) return `${role[1]}: ${role[2]}`;
  return key.replace(/^(pin|settings)\./, '');
}

const AREA_LABEL: Record<Report['columns'][number]['area'], string> = {
  pin: 'Template pin',
  settings: 'Security settings',
  roles: 'Privileged roles',
};

const show = (value: Cell['value']) => (value === null ? '—' : String(value));

/** One matrix cell: the value, and when it deviates what was expected and on which basis. */
function ReportCell({ label, cell }: { label: string; cell: Cell | undefined }) {
  if (!cell)
    return (
      <td data-label={label} className="muted">
        —
      </td>
    );
  const why = cell.deviates ? `Expected ${show(cell.expected)}, by ${BASIS[cell.basis]}` : undefined;
  return (
    <td data-label={label} data-deviates={cell.deviates ? 'true' : undefined} className={cell.deviates ? 'deviates' : undefined}>
      {show(cell.value)}
      {cell.deviates ? (
        <>
          {' '}
          <span className="status bad">deviates</span>
          <span className="cell-note">{why}</span>
        </>
      ) : null}
      {cell.note ? <span className="cell-note muted">{cell.note}</span> : null}
    </td>
  );
}

/**
 * The cross-tenant RBAC drift report (GET /v1/templates/rbac-report): tenants × settings, with
 * privileged roles and their member counts, each deviation highlighted and explained, and the
 * same report as CSV or JSON.
 */
export function BaselineReport() {
  const [search, setSearch] = useSearchParams();
  const templateId = search.get('template') ?? '';
  const onlyDeviating = search.get('deviating') === '1';
  const [downloadError, setDownloadError] = useState<unknown>(null);
  const templates = useQuery({
    queryKey: ['templates'],
    queryFn: async () => unwrap(await api.GET('/v1/templates', {})),
  });
  const report = useQuery({
    queryKey: ['rbac-report', templateId],
    // JSON unless asked for CSV: the answer's type is the report.
    queryFn: async () =>
      unwrap(
        await api.GET('/v1/templates/rbac-report', { params: { query: { format: 'json', ...(templateId ? { templateId } : {}) } } }),
      ) as Report,
  });
  const set = (key: string, value: string) => {
    const next = new URLSearchParams(search);
    if (value) next.set(key, value);
    else next.delete(key);
    setSearch(next);
  };
  const download = (format: 'json' | 'csv') => {
    setDownloadError(null);
    downloadFile('/v1/templates/rbac-report', { format, templateId: templateId || undefined }, `rbac-report.${format}`).catch(
      setDownloadError,
    );
  };
  const data = report.data;
  // Consecutive columns of one area, for the group headings.
  const groups: { area: Report['columns'][number]['area']; span: number }[] = [];
  for (const c of data?.columns ?? []) {
    const last = groups.at(-1);
    if (last?.area === c.area) last.span++;
    else groups.push({ area: c.area, span: 1 });
  }
  const rows = (data?.tenants ?? []).filter((t) => !onlyDeviating || t.deviations > 0 || !t.readable);
  return (
    <section aria-labelledby="baselines-title">
      <h1 id="baselines-title">Baselines across tenants</h1>
      <p className="muted">
        What each tenant&apos;s directory holds now (privileged roles and their members, MFA, password, lockout and session settings) beside
        its template pin. A highlighted cell deviates from what its basis expects.
      </p>
      <div className="filters">
        <div>
          <label htmlFor="baseline-template">Template</label>
          <select id="baseline-template" value={templateId} onChange={(e) => set('template', e.target.value)}>
            <option value="">Every tenant</option>
            {(templates.data?.templates ?? []).map((t) => (
              <option key={t.id} value={t.id}>
                {t.name}
              </option>
            ))}
          </select>
        </div>
        <div>
          <label>
            <input type="checkbox" checked={onlyDeviating} onChange={(e) => set('deviating', e.target.checked ? '1' : '')} /> Only tenants
            that deviate
          </label>
        </div>
        <div className="actions">
          <button type="button" className="secondary" onClick={() => download('csv')}>
            Download CSV
          </button>
          <button type="button" className="secondary" onClick={() => download('json')}>
            Download JSON
          </button>
        </div>
      </div>
      <ErrorNotice error={downloadError} />
      {report.isPending ? <Loading what="the report (each tenant's directory is read now)" /> : null}
      <ErrorNotice error={report.error} />
      {data ? (
        <p role="status" data-summary="">
          {data.summary.tenants} tenants, {data.summary.deviating} deviating, {data.summary.unreadable} unreadable; read{' '}
          <Time value={data.generatedAt} />.
        </p>
      ) : null}
      {data && rows.length === 0 ? (
        <EmptyState title={data.tenants.length === 0 ? 'No tenants in this report' : 'No tenant deviates'}>
          <p>
            {data.tenants.length === 0
              ? 'Pin tenants to a template (tenure template assign) to compare them.'
              : 'Every readable tenant matches what its basis expects.'}
          </p>
        </EmptyState>
      ) : null}
      {data && rows.length > 0 ? (
        <div className="table-wrap" tabIndex={0} role="region" aria-label="Tenants by setting">
          <table className="matrix">
            <caption className="visually-hidden">Tenants by setting; deviations highlighted</caption>
            <thead>
              <tr>
                <td colSpan={2} />
                {groups.map((g) => (
                  <th scope="colgroup" colSpan={g.span} key={g.area}>
                    {AREA_LABEL[g.area]}
                  </th>
                ))}
              </tr>
              <tr>
                <th scope="col">Tenant</th>
                <th scope="col">Deviations</th>
                {data.columns.map((c) => (
                  <th scope="col" key={c.key} title={c.description}>
                    {heading(c.key)}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {rows.map((t) => (
                <tr key={t.tenantId} data-tenant={t.slug}>
                  <th scope="row">
                    <Link to={`/baselines/${t.tenantId}`}>{t.name}</Link> <span className="muted">{t.slug}</span>
                    {t.readable ? null : <span className="cell-note status bad">unreadable: {t.error}</span>}
                  </th>
                  <td data-label="Deviations" data-count="deviations">
                    {t.deviations}
                  </td>
                  {data.columns.map((c) => (
                    <ReportCell key={c.key} label={c.key} cell={t.cells[c.key]} />
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </section>
  );
}
