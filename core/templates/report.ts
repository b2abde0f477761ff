import { z } from 'zod';
import { DIRECTORY_SETTING_NAMES, SETTING_CAPABILITY, type DirectorySecuritySettingsState } from '../directory/settings.js';
import { notSupportedByTarget, type DirectoryCapabilities, type DirectoryRole } from '../directory/connector.js';
import { neutraliseCsvCell } from '../text.js';
import { Uuid } from '../tenancy/schemas.js';
import type { TemplateDocumentShape } from './contract.js';

/**
 * The cross-tenant RBAC drift report: a tenants × settings matrix of what each tenant's directory
 * holds now (privileged roles and their members, MFA, password, lockout and session settings) and
 * its template pin. Each cell carries the value, what was expected and on which basis, and whether
 * it deviates. Pure: the use case reads the tenants; this builds the matrix.
 */

/**
 * What a cell is compared against. `template`: the tenant's applied template version states it;
 * `latest`: the template's newest approved version (the pinned version should be it); `pin`: the
 * version assigned (the applied one should be it); `majority`: the most common value among the
 * tenants in the report that hold the setting (a tie expects nothing); `none`: nothing to compare.
 */
export const REPORT_BASES = ['template', 'latest', 'pin', 'majority', 'none'] as const;
export type ReportBasis = (typeof REPORT_BASES)[number];

export type CellValue = string | number | boolean | null;

export interface ReportCell {
  value: CellValue;
  expected: CellValue;
  basis: ReportBasis;
  deviates: boolean;
  /** Why the value is missing or not compared, e.g. `lockoutPolicy: not supported by target`. */
  note?: string;
}

export interface ReportColumn {
  key: string;
  area: 'pin' | 'settings' | 'roles';
  description: string;
}

export interface RbacReportRow {
  tenantId: string;
  slug: string;
  name: string;
  /** The connector kind that answered, null when the target could not be reached. */
  target: string | null;
  readable: boolean;
  /** Why the target could not be read (the row's directory cells are then empty). */
  error: string | null;
  pin: { templateId: string; templateName: string; version: number; appliedVersion: number | null } | null;
  cells: Record<string, ReportCell>;
  deviations: number;
}

export interface RbacReportView {
  generatedAt: string;
  templateId: string | null;
  columns: ReportColumn[];
  tenants: RbacReportRow[];
  summary: { tenants: number; readable: number; unreadable: number; deviating: number };
}

/** One tenant as the use case found it: its pin, and what its directory answered (or why it did not). */
export interface TenantReading {
  tenantId: string;
  slug: string;
  name: string;
  pin: {
    templateId: string;
    templateName: string;
    version: number;
    appliedVersion: number | null;
    /** The template's newest approved version. */
    latestApproved: number | null;
    /** The document of the applied version, when one is applied. */
    applied: Pick<TemplateDocumentShape, 'directory'> | null;
  } | null;
  directory:
    | {
        target: string;
        capabilities: DirectoryCapabilities;
        /** Null without the roleLookup capability. */
        roles: DirectoryRole[] | null;
        settings: DirectorySecuritySettingsState;
        /** Members of each role counted (privileged roles here or anywhere in the report). */
        members: Record<string, number>;
      }
    | { error: string };
}

/** The privileged role names anywhere in the report: in a tenant's directory, or in a tenant's applied version. */
export function privilegedRoleNames(readings: readonly TenantReading[]): string[] {
  const names = new Set<string>();
  for (const r of readings) {
    if ('roles' in r.directory) for (const role of r.directory.roles ?? []) if (role.privileged) names.add(role.name);
    for (const role of r.pin?.applied?.directory.roles ?? []) if (role.privileged) names.add(role.name);
  }
  return [...names].sort();
}

/** The strictly most common value, or undefined (no values, or a tie). */
function mode(values: readonly CellValue[]): { value: CellValue } | undefined {
  const counts = new Map<CellValue, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  const ranked = [...counts].sort((a, b) => b[1] - a[1]);
  if (!ranked.length || (ranked.length > 1 && ranked[0]![1] === ranked[1]![1])) return undefined;
  return { value: ranked[0]![0] };
}

const compare = (value: CellValue, expected: CellValue, basis: ReportBasis, note?: string): ReportCell => ({
  value,
  expected,
  basis,
  deviates: basis !== 'none' && value !== expected,
  ...(note ? { note } : {}),
});
const informational = (value: CellValue, note?: string): ReportCell => ({
  value,
  expected: null,
  basis: 'none',
  deviates: false,
  ...(note ? { note } : {}),
});

export function reportColumns(roles: readonly string[]): ReportColumn[] {
  return [
    { key: 'pin.template', area: 'pin', description: 'The template the tenant is pinned to; expected: the most common one.' },
    { key: 'pin.version', area: 'pin', description: 'The version assigned; expected: the template’s newest approved version.' },
    { key: 'pin.appliedVersion', area: 'pin', description: 'The version last applied and verified; expected: the version assigned.' },
    ...DIRECTORY_SETTING_NAMES.map((name): ReportColumn => ({
      key: `settings.${name}`,
      area: 'settings',
      description: `The directory's ${name}; expected: the applied version's value, else the most common value.`,
    })),
    ...roles.flatMap((role): ReportColumn[] => [
      {
        key: `roles.${role}.privileged`,
        area: 'roles',
        description: `Whether ${role} exists (null: absent) and is privileged; expected: the applied version's flag, else the most common.`,
      },
      { key: `roles.${role}.members`, area: 'roles', description: `Members of ${role} now, read through the tenant's connector.` },
    ]),
  ];
}

/**
 * The matrix. Directory cells of an unreadable tenant are null and never deviate; it does not
 * count towards any majority, nor does a tenant whose target lacks the setting's capability.
 */
export function buildRbacReport(
  readings: readonly TenantReading[],
  options: { generatedAt: string; templateId: string | null },
): RbacReportView {
  const roles = privilegedRoleNames(readings);
  const columns = reportColumns(roles);
  const readable = readings.flatMap((r) => ('error' in r.directory ? [] : [{ reading: r, directory: r.directory }]));

  const templateMode = mode(readings.map((r) => r.pin?.templateName ?? null));
  const settingMode = Object.fromEntries(
    DIRECTORY_SETTING_NAMES.map((name) => [
      name,
      mode(readable.filter(({ directory }) => directory.settings[name] !== null).map(({ directory }) => directory.settings[name])),
    ]),
  );
  const privilegedOf = (list: DirectoryRole[], role: string): boolean | null => list.find((r) => r.name === role)?.privileged ?? null;
  const roleMode = Object.fromEntries(
    roles.map((role) => [role, mode(readable.flatMap(({ directory }) => (directory.roles ? [privilegedOf(directory.roles, role)] : [])))]),
  );
  const byMajority = (value: CellValue, found: { value: CellValue } | undefined, note?: string) =>
    found ? compare(value, found.value, 'majority', note) : informational(value, note ?? 'no majority among the tenants');

  const rows = readings.map((r): RbacReportRow => {
    const cells: Record<string, ReportCell> = {};
    const pin = r.pin;
    cells['pin.template'] = byMajority(pin?.templateName ?? null, templateMode);
    cells['pin.version'] = pin
      ? pin.latestApproved === null
        ? informational(pin.version, 'the template has no approved version')
        : compare(pin.version, pin.latestApproved, 'latest')
      : informational(null, 'no template pinned');
    cells['pin.appliedVersion'] = pin ? compare(pin.appliedVersion, pin.version, 'pin') : informational(null, 'no template pinned');

    const applied = pin?.applied?.directory;
    const d = 'error' in r.directory ? null : r.directory;
    for (const name of DIRECTORY_SETTING_NAMES) {
      const key = `settings.${name}`;
      if (!d) {
        cells[key] = informational(null, 'the target could not be read');
        continue;
      }
      const value = d.settings[name];
      const fromTemplate = applied?.settings[name];
      if (value === null) {
        cells[key] = {
          ...(fromTemplate !== undefined
            ? { value, expected: fromTemplate, basis: 'template' as const }
            : { value, expected: null, basis: 'none' as const }),
          deviates: false,
          note: notSupportedByTarget(SETTING_CAPABILITY[name]),
        };
      } else if (fromTemplate !== undefined) cells[key] = compare(value, fromTemplate, 'template');
      else cells[key] = byMajority(value, settingMode[name]);
    }

    for (const role of roles) {
      const flagKey = `roles.${role}.privileged`;
      const membersKey = `roles.${role}.members`;
      if (!d || !d.roles) {
        const note = d ? notSupportedByTarget('roleLookup') : 'the target could not be read';
        cells[flagKey] = informational(null, note);
        cells[membersKey] = informational(null, note);
        continue;
      }
      const flag = privilegedOf(d.roles, role);
      const listed = applied?.roles.find((t) => t.name === role);
      cells[flagKey] = listed ? compare(flag, listed.privileged, 'template') : byMajority(flag, roleMode[role]);
      cells[membersKey] = informational(flag === null ? null : (d.members[role] ?? null), flag === null ? 'no such role' : undefined);
    }
    return {
      tenantId: r.tenantId,
      slug: r.slug,
      name: r.name,
      target: d?.target ?? null,
      readable: d !== null,
      error: 'error' in r.directory ? r.directory.error : null,
      pin: pin
        ? { templateId: pin.templateId, templateName: pin.templateName, version: pin.version, appliedVersion: pin.appliedVersion }
        : null,
      cells,
      deviations: Object.values(cells).filter((c) => c.deviates).length,
    };
  });
  return {
    generatedAt: options.generatedAt,
    templateId: options.templateId,
    columns,
    tenants: rows,
    summary: {
      tenants: rows.length,
      readable: rows.filter((r) => r.readable).length,
      unreadable: rows.filter((r) => !r.readable).length,
      deviating: rows.filter((r) => r.deviations > 0).length,
    },
  };
}

const CSV_FIXED = ['tenantId', 'slug', 'name', 'target', 'readable', 'error', 'deviations'] as const;

/** The CSV's header: the tenant's own columns, then per matrix column its value, expected value, basis and flag. */
export function rbacReportCsvColumns(report: RbacReportView): string[] {
  return [...CSV_FIXED, ...report.columns.flatMap((c) => [c.key, `${c.key}.expected`, `${c.key}.basis`, `${c.key}.deviates`])];
}

const csvValue = (v: CellValue | undefined): string => (v === null || v === undefined ? '' : String(v));

/** One tenant's CSV row, every cell text, formula-like cells neutralised (a leading `'`). */
export function rbacReportCsvRecord(report: RbacReportView, row: RbacReportRow): Record<string, string> {
  const record: Record<string, string> = {
    tenantId: row.tenantId,
    slug: row.slug,
    name: row.name,
    target: row.target ?? '',
    readable: String(row.readable),
    error: row.error ?? '',
    deviations: String(row.deviations),
  };
  for (const { key } of report.columns) {
    const cell = row.cells[key];
    record[key] = csvValue(cell?.value);
    record[`${key}.expected`] = csvValue(cell?.expected);
    record[`${key}.basis`] = cell?.basis ?? '';
    record[`${key}.deviates`] = cell ? String(cell.deviates) : '';
  }
  return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, String(neutraliseCsvCell(v))]));
}

// ---------------------------------------------------------------- API schemas

export const RbacReportQuery = z.strictObject({
  templateId: Uuid.optional().describe('Only the tenants pinned to this template.'),
  format: z.enum(['json', 'csv']).optional().describe('Default: by the Accept header (text/csv), else JSON.'),
});

const CellValueSchema = z.union([z.string(), z.number(), z.boolean(), z.null()]);

export const ReportCellView = z
  .object({
    value: CellValueSchema,
    expected: CellValueSchema,
    basis: z.enum(REPORT_BASES),
    deviates: z.boolean(),
    note: z.string().optional(),
  })
  .meta({ id: 'RbacReportCell' });

export const RbacReportViewSchema = z
  .object({
    generatedAt: z.string(),
    templateId: Uuid.nullable(),
    columns: z.array(z.object({ key: z.string(), area: z.enum(['pin', 'settings', 'roles']), description: z.string() })),
    tenants: z.array(
      z.object({
        tenantId: Uuid,
        slug: z.string(),
        name: z.string(),
        target: z.string().nullable(),
        readable: z.boolean(),
        error: z.string().nullable(),
        pin: z
          .object({ templateId: Uuid, templateName: z.string(), version: z.number().int(), appliedVersion: z.number().int().nullable() })
          .nullable(),
        cells: z.record(z.string(), ReportCellView),
        deviations: z.number().int(),
      }),
    ),
    summary: z.object({
      tenants: z.number().int(),
      readable: z.number().int(),
      unreadable: z.number().int(),
      deviating: z.number().int(),
    }),
  })
  .meta({ id: 'RbacReport' });
