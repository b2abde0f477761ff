import { Readable } from 'node:stream';
import { stringify } from 'csv-stringify';
import { DirectoryError, resolverOf, type DirectoryConnector, type DirectoryDeps } from '../../core/directory/connector.js';
import { notFound } from '../../core/errors.js';
import { neutraliseCsvCell } from '../../core/text.js';
import {
  buildRbacReport,
  privilegedRoleNames,
  rbacReportCsvColumns,
  rbacReportCsvRecord,
  type RbacReportView,
  type TenantReading,
} from '../../core/templates/report.js';
import { storedTemplateDocument } from '../../core/templates/schemas.js';
import type { Pool } from '../../db/pool.js';
import { inScope, mspScope } from '../../db/scope.js';
import { getTemplateRow } from '../../db/templates.js';
import { reportTenantRows, type ReportTenantRow } from '../../db/templates/report.js';

export interface RbacReportDeps extends DirectoryDeps {
  pool: Pool;
}

/** Tenants read at once: enough to hide each target's latency, few enough to leave the pools to everyone else. */
export const REPORT_CONCURRENCY = 8;
/** A tenant whose target has not answered by then shows as unreadable instead of holding the whole report. */
export const TENANT_READ_TIMEOUT_MS = 15_000;

/** `fn` over `items`, at most `limit` at a time, results in the items' order. */
async function mapBounded<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  });
  await Promise.all(lanes);
  return results;
}

class ReadTimeout extends Error {}

/** `work`, or ReadTimeout after `ms`; the timer never keeps the process up. */
async function within<T>(ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ReadTimeout(`the target did not answer within ${ms / 1000} s`)), ms);
    timer.unref();
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function pinOf(row: ReportTenantRow): TenantReading['pin'] {
  if (!row.template_id || row.version === null) return null;
  return {
    templateId: row.template_id,
    templateName: row.template_name ?? row.template_id,
    version: row.version,
    appliedVersion: row.applied_version,
    latestApproved: row.latest_approved,
    applied: row.applied_document ? storedTemplateDocument(row.applied_document) : null,
  };
}

type Read = { directory: DirectoryConnector; reading: TenantReading };

/**
 * The tenant's directory through its own connector: every role, the security settings, and the
 * members of `roles` that exist there. A target that is down or slow answers `{ error }`.
 */
async function readTenant(
  deps: RbacReportDeps,
  row: ReportTenantRow,
  roles: ReadonlySet<string>,
  timeoutMs: number,
): Promise<Read | TenantReading> {
  const base = { tenantId: row.id, slug: row.slug, name: row.name, pin: pinOf(row) };
  try {
    return await within(
      timeoutMs,
      (async () => {
        const directory = await resolverOf(deps).directoryFor(row.id);
        const allRoles = directory.capabilities.roleLookup ? await directory.listAllRoles(row.id) : null;
        const settings = await directory.getSecuritySettings(row.id);
        const counted = (allRoles ?? []).filter((r) => r.privileged || roles.has(r.name));
        const members: Record<string, number> = {};
        for (const role of counted) members[role.name] = (await directory.listMembers(row.id, role.name)).length;
        return {
          directory,
          reading: {
            ...base,
            directory: { target: directory.kind, capabilities: { ...directory.capabilities }, roles: allRoles, settings, members },
          },
        };
      })(),
    );
  } catch (error) {
    if (!(error instanceof DirectoryError) && !(error instanceof ReadTimeout)) throw error;
    return { ...base, directory: { error: error.message } };
  }
}

/**
 * The cross-tenant RBAC drift report over every active tenant (or those pinned to `templateId`).
 * Roles, members and settings are read through each tenant's own connector, never from the
 * entitlement ledger: the ledger knows what Tenure granted, the target knows who holds the role,
 * and access granted outside Tenure is exactly the drift this report is for.
 */
export async function rbacReport(
  deps: RbacReportDeps,
  options: { templateId?: string | undefined; concurrency?: number; timeoutMs?: number } = {},
): Promise<RbacReportView> {
  const templateId = options.templateId ?? null;
  const rows = await inScope(deps.pool, mspScope, async (client) => {
    if (templateId && !(await getTemplateRow(client, templateId))) throw notFound('template');
    return reportTenantRows(client, templateId);
  });
  const concurrency = options.concurrency ?? REPORT_CONCURRENCY;
  const timeoutMs = options.timeoutMs ?? TENANT_READ_TIMEOUT_MS;
  // Roles the applied versions mark privileged are counted in every tenant that has them.
  const templateRoles = new Set(privilegedRoleNames(rows.map((row) => ({ ...blank(row), pin: pinOf(row) }))));
  const first = await mapBounded(rows, concurrency, (row) => readTenant(deps, row, templateRoles, timeoutMs));
  // A role privileged in one tenant is counted in the others that have it, even unprivileged there.
  const everywhere = new Set(privilegedRoleNames(first.map((r) => ('reading' in r ? r.reading : r))));
  const readings = await mapBounded(first, concurrency, async (read): Promise<TenantReading> => {
    if (!('reading' in read)) return read;
    const { directory, reading } = read;
    if ('error' in reading.directory) return reading;
    const found = reading.directory;
    const missing = (found.roles ?? []).filter((r) => everywhere.has(r.name) && found.members[r.name] === undefined);
    try {
      await within(
        timeoutMs,
        (async () => {
          for (const role of missing) found.members[role.name] = (await directory.listMembers(reading.tenantId, role.name)).length;
        })(),
      );
      return reading;
    } catch (error) {
      if (!(error instanceof DirectoryError) && !(error instanceof ReadTimeout)) throw error;
      return { ...reading, directory: { error: error.message } };
    }
  });
  return buildRbacReport(readings, { generatedAt: new Date().toISOString(), templateId });
}

const blank = (row: ReportTenantRow): TenantReading => ({
  tenantId: row.id,
  slug: row.slug,
  name: row.name,
  pin: null,
  directory: { error: 'not read' },
});

/** The report as CSV: one row per tenant, a header row, formula-like cells neutralised. */
export function rbacReportCsv(report: RbacReportView): Readable {
  // Arrays, not objects: csv-stringify reads a dotted column key as a nested path.
  const columns = rbacReportCsvColumns(report);
  const rows = report.tenants.map((row) => {
    const record = rbacReportCsvRecord(report, row);
    return columns.map((column) => record[column] ?? '');
  });
  // A header names roles read from the target, so it is neutralised like any cell.
  return Readable.from([columns.map((c) => String(neutraliseCsvCell(c))), ...rows]).pipe(stringify());
}
