import { reportStatus, type ReportItem, type ReviewReport } from './report.js';

/**
 * The printable form of a review report: the stored report, every field of it, as one
 * self-contained HTML page an auditor can print or save. It renders the very report the JSON and
 * CSV forms serve, with the same hash; the JSON stays the form that is hashed. Every value is
 * escaped, and the page loads and runs nothing (the route sends a CSP that forbids it).
 */
export interface ReportPageContext {
  tenantName: string;
  hash: string;
  /** The `review.report_recorded` event in the tenant's chain that carries the hash. */
  recorded: { seq: number; at: string; eventHash: string } | null;
  /** Display names of the reviewers, where the directory of actors knows them. */
  reviewerNames: Record<string, string>;
}

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };

/** Text made inert in element content and quoted attributes alike. */
export function escapeHtml(value: unknown): string {
  const text = value === null || value === undefined ? '' : typeof value === 'string' ? value : JSON.stringify(value);
  return text.replace(/[&<>"'`]/g, (c) => ENTITIES[c]!);
}

const cell = (value: unknown, empty = '—') =>
  `<td>${value === null || value === undefined || value === '' ? empty : escapeHtml(value)}</td>`;
const row = (cells: string[]) => `<tr>${cells.join('')}</tr>`;
const head = (labels: string[]) => `<thead><tr>${labels.map((l) => `<th scope="col">${escapeHtml(l)}</th>`).join('')}</tr></thead>`;

function countsTable(title: string, counts: Record<string, number>): string {
  const entries = Object.entries(counts).sort(([a], [b]) => a.localeCompare(b));
  const body = entries.length ? entries.map(([k, n]) => row([cell(k), cell(n)])).join('') : row(['<td colspan="2">none</td>']);
  return `<table class="counts"><caption>${escapeHtml(title)}</caption>${head(['', 'items'])}<tbody>${body}</tbody></table>`;
}

function decisionsOf(item: ReportItem, names: Record<string, string>): string {
  if (item.decisions.length === 0) return '<td>no decision</td>';
  const lines = item.decisions.map((d) => {
    const who = names[d.reviewerId] ? `${names[d.reviewerId]} (${d.reviewerId})` : d.reviewerId;
    const changed = d.changes > 0 ? `, changed ${d.changes}×` : '';
    const why = d.justification ? ` — “${escapeHtml(d.justification)}”` : '';
    return `<li>stage ${escapeHtml(d.stage)}: <strong>${escapeHtml(d.decision)}</strong> by ${escapeHtml(who)} at ${escapeHtml(d.decidedAt)}${escapeHtml(changed)}${why}</li>`;
  });
  return `<td><ul>${lines.join('')}</ul></td>`;
}

const STYLE = `
body{font:10pt/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2em;color:#111}
h1{font-size:16pt;margin:0 0 .3em}h2{font-size:12pt;margin:1.5em 0 .4em;border-bottom:1px solid #999}
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dt{font-weight:600}dd{margin:0}
table{border-collapse:collapse;width:100%;margin:.4em 0}th,td{border:1px solid #bbb;padding:.25em .4em;text-align:left;vertical-align:top}
th{background:#eee}caption{text-align:left;font-weight:600}table.counts{width:auto;display:inline-table;margin-right:2em}
ul{margin:0;padding-left:1.1em}code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:9pt;overflow-wrap:anywhere;white-space:pre-wrap}
.hash{font-family:ui-monospace,Menlo,Consolas,monospace;overflow-wrap:anywhere}
.cancelled{border:2px solid #a00;padding:0 1em;margin:1em 0}.cancelled h2{color:#a00;border:0}
@media print{body{margin:0}h2{break-after:avoid}tr{break-inside:avoid}thead{display:table-header-group}}
`;

/** A cancelled review's section: who stopped it, when and why, and what was decided until then and what was not. */
function cancellationSection(report: ReviewReport, name: (id: string) => string): string {
  const c = report.cancellation;
  if (reportStatus(report) !== 'cancelled' || !c) return '';
  const settled = c.settled
    ? `${escapeHtml(c.settled.revoke)} revoke, ${escapeHtml(c.settled.keep)} keep, ${escapeHtml(c.settled.held)} held by a guardrail`
    : 'nothing (no stage was open)';
  return `<section class="cancelled">
<h2>This review was cancelled</h2>
<p>It did not run to its end. Decisions the tenant's reviewers recorded until then stand and their revocations were applied and
read back; items nobody decided keep their access unchanged, and the non-response policy was not applied to them.</p>
<dl>
<dt>Cancelled</dt><dd>${escapeHtml(c.cancelledAt)}, at stage ${escapeHtml(c.stage)}</dd>
<dt>By</dt><dd>${escapeHtml(name(c.cancelledBy))}</dd>
<dt>Reason</dt><dd>${c.comment ? escapeHtml(c.comment) : 'none given'}</dd>
<dt>Authority</dt><dd><code>${escapeHtml(c.authority)}</code></dd>
<dt>Settled at the cancellation</dt><dd>${settled}</dd>
<dt>Decided</dt><dd>${escapeHtml(c.decided)} item(s)</dd>
<dt>Not decided</dt><dd>${escapeHtml(c.undecided)} item(s)</dd>
</dl>
</section>`;
}

export function reportHtml(report: ReviewReport, ctx: ReportPageContext): string {
  const names = ctx.reviewerNames;
  const reviewerName = (id: string) => (names[id] ? `${names[id]} (${id})` : id);
  const status = reportStatus(report);
  const reviewers = report.reviewers
    .map((r) => row([cell(r.stage), cell(reviewerName(r.reviewerId)), cell(r.via), cell(r.items)]))
    .join('');
  const items = report.items
    .map((i) =>
      row([
        cell(i.subjectId),
        cell(i.role),
        cell(i.sources.map((s) => `${s.type}:${s.id}`).join(', '), 'nothing recorded'),
        `<td><strong>${escapeHtml(i.recommendation)}</strong><br>${escapeHtml(i.recommendationReason)}</td>`,
        decisionsOf(i, names),
        `<td><strong>${escapeHtml(i.outcome ?? (status === 'cancelled' ? 'not decided' : 'pending'))}</strong>${i.outcomeBy ? ` (${escapeHtml(i.outcomeBy)})` : ''}${
          i.outcomeReason ? `<br>${escapeHtml(i.outcomeReason)}` : ''
        }</td>`,
        cell(i.guardrail),
        `<td>${escapeHtml(i.result ?? '—')}${i.resultAt ? `<br>${escapeHtml(i.resultAt)}` : ''}${
          i.resultDetail ? `<br><code>${escapeHtml(i.resultDetail)}</code>` : ''
        }</td>`,
        cell(i.itemId),
      ]),
    )
    .join('');
  const recorded = ctx.recorded
    ? `event seq ${escapeHtml(ctx.recorded.seq)} (<code>review.report_recorded</code>, ${escapeHtml(ctx.recorded.at)}, event hash <span class="hash">${escapeHtml(ctx.recorded.eventHash)}</span>)`
    : 'not found in the chain';
  const title = `Access review report — ${ctx.tenantName} — run ${report.runId}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="report-hash" content="${escapeHtml(ctx.hash)}">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<header>
<h1>Access review report</h1>
<dl>
<dt>Tenant</dt><dd>${escapeHtml(ctx.tenantName)} (${escapeHtml(report.tenantId)})</dd>
<dt>Campaign definition</dt><dd>${escapeHtml(report.definitionId)}</dd>
<dt>Run</dt><dd>${escapeHtml(report.runId)}</dd>
<dt>Review</dt><dd><strong>${escapeHtml(status)}</strong></dd>
<dt>Report generated</dt><dd>${escapeHtml(report.generatedAt)}</dd>
<dt>Items reviewed</dt><dd>${escapeHtml(report.items.length)}</dd>
<dt>Report hash</dt><dd class="hash">${escapeHtml(ctx.hash)}</dd>
<dt>In the tenant's audit chain</dt><dd>${recorded}</dd>
</dl>
<p>The hash is SHA-256 over the RFC 8785 canonical JSON of the report as served at
<code>GET /v1/tenants/${escapeHtml(report.tenantId)}/reviews/${escapeHtml(report.runId)}/report</code>; this page shows that same
report. To check it offline: canonicalise the JSON report, hash it, and find the hash in the
<code>review.report_recorded</code> event of the tenant's verified chain export
(<code>tenure audit export</code>, <code>tenure audit verify</code>).</p>
</header>
<main>
${cancellationSection(report, reviewerName)}
<h2>Summary</h2>
${countsTable('Outcomes', report.counts.outcomes)}${countsTable('Applied results', report.counts.results)}
<h2>Reviewers</h2>
<table>${head(['stage', 'reviewer', 'chosen via', 'items'])}<tbody>${reviewers || row(['<td colspan="4">none</td>'])}</tbody></table>
<h2>Items, decisions and results</h2>
<table>${head(['subject', 'role', 'sources', 'recommendation', 'decisions', 'outcome', 'guardrail', 'applied result', 'item'])}<tbody>${
    items || row(['<td colspan="9">no items</td>'])
  }</tbody></table>
<h2>Settings the review ran with</h2>
<pre>${escapeHtml(JSON.stringify(report.settings, null, 2))}</pre>
</main>
</body>
</html>
`;
}
