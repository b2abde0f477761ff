import type { DirectoryCapabilities, DirectoryConnector, DirectoryRole } from '../directory/connector.js';
import { notSupportedByTarget } from '../directory/connector.js';
import {
  DIRECTORY_SETTING_NAMES,
  SETTING_CAPABILITY,
  directorySettingsRegistry,
  type DirectorySecuritySettingsState,
} from '../directory/settings.js';
import type { FieldIssue } from '../errors.js';
import type { PolicyDiffItem } from '../tenancy/contract.js';
import {
  POLICY_SETTINGS,
  classifyPolicyChange,
  diffSettings,
  neutral,
  neutralSetting,
  offLoosens,
  renderPath,
  value,
  type PolicySetting,
  type SettingsRegistry,
} from '../tenancy/policy-diff.js';
import { TenantPolicyDocument } from '../tenancy/schemas.js';
import type { TemplateDiffItem, TemplatePlan, TemplatePlanItem } from './contract.js';
import { PLACEHOLDER, TemplateDocument, textsOf } from './schemas.js';

/**
 * The pure part of templates: the diff between two versions, parameters, and the plan of what a
 * version would change in one tenant. Changes are classified by the classifier of tenant-owned
 * policy changes (core/tenancy/policy-diff.ts): the same rules say what loosens control.
 */

const rolePrivileged = offLoosens('marks the role non-privileged', 'marks the role privileged');

/** A template setting that appears or disappears is the template starting or stopping to set it; each tenant's plan says what that does. */
function templateSetting(rule: PolicySetting): PolicySetting {
  return value((before, after, parent) => {
    if (before === undefined) return neutral('the template starts setting it; each tenant’s plan shows its effect there');
    if (after === undefined) return neutral('the template stops setting it; tenants keep the value they have');
    return rule.kind === 'value' ? rule.classify(before, after, parent) : neutral('changes');
  });
}

/** A tenant policy section inside a template, by the tenant-policy rules; the template may leave it out. */
function policySection(section: 'grants' | 'lifecycle'): [string, PolicySetting][] {
  const whole: PolicySetting = {
    kind: 'section',
    whole: (before) =>
      neutral(
        before === undefined
          ? `the template starts setting the tenants’ ${section} policy; each tenant’s plan shows its effect`
          : `the template stops setting the ${section} policy; tenants keep theirs`,
      ),
  };
  const rules = Object.entries(POLICY_SETTINGS).filter(([path]) => path.startsWith(`${section}.`));
  return [[`policy.${section}`, whole], ...rules.map(([path, rule]): [string, PolicySetting] => [`policy.${path}`, rule])];
}

/** The version diff's registry: the template document's own parts, and the policy sections by the tenant-policy rules. */
const TEMPLATE_SETTINGS: SettingsRegistry = {
  '': { kind: 'section' },
  parameters: {
    kind: 'entries',
    added: () => neutral('a new parameter; assignments without a value use its default'),
    removed: () => neutral('the parameter is no longer used'),
  },
  'parameters.*': { kind: 'section' },
  'parameters.*.description': neutralSetting('the parameter description is only text'),
  'parameters.*.default': neutralSetting('the value used where an assignment gives none; each tenant’s plan shows its effect'),
  directory: { kind: 'section' },
  'directory.roles': {
    kind: 'entries',
    idOf: (role) => String((role as { name: unknown }).name),
    added: () => neutral('a new role; nobody holds it until assigned'),
    removed: () => neutral('the template stops keeping the role; tenants keep it'),
  },
  'directory.roles.*': { kind: 'section' },
  'directory.roles.*.name': neutralSetting('the role name'),
  'directory.roles.*.description': neutralSetting('the role description is only text'),
  'directory.roles.*.privileged': rolePrivileged,
  ...Object.fromEntries(
    Object.entries(directorySettingsRegistry('directory.settings')).map(([path, rule]) => [
      path,
      path === 'directory.settings' ? rule : templateSetting(rule),
    ]),
  ),
  policy: { kind: 'section' },
  ...Object.fromEntries((['grants', 'lifecycle'] as const).flatMap(policySection)),
  drift: neutralSetting('how drift checks treat a difference from the applied version; it changes nothing in the tenants'),
};

/** What changes from one version's document to another's, path by path. */
export function diffTemplateDocuments(before: TemplateDocument, after: TemplateDocument): TemplateDiffItem[] {
  return diffSettings(TEMPLATE_SETTINGS, before, after);
}

export interface TenantFacts {
  name: string;
  slug: string;
}

/**
 * The values a tenant's plan is rendered with: `supplied` first, then each parameter's default.
 * Issues name `at.<parameter>` for a missing value or one the template does not declare.
 */
export function resolveParameters(
  document: TemplateDocument,
  supplied: Record<string, string>,
  at: string,
): { values: Record<string, string>; issues: FieldIssue[] } {
  const issues: FieldIssue[] = [];
  const values: Record<string, string> = {};
  for (const name of Object.keys(supplied)) {
    if (!Object.hasOwn(document.parameters, name))
      issues.push({ path: `${at}.${name}`, message: 'the template declares no such parameter' });
  }
  for (const [name, parameter] of Object.entries(document.parameters)) {
    const given = Object.hasOwn(supplied, name) ? supplied[name] : undefined;
    const chosen = given ?? parameter.default;
    if (chosen === null || chosen === undefined) issues.push({ path: `${at}.${name}`, message: 'required: the parameter has no default' });
    else if (given !== undefined && new RegExp(PLACEHOLDER.source).test(given)) {
      issues.push({ path: `${at}.${name}`, message: 'a value may not hold a {{placeholder}}' });
    } else values[name] = chosen;
  }
  return { values, issues };
}

/**
 * The document with every `{{placeholder}}` in its text replaced, parsed again (a value may make
 * a text too long). Issues name the rendered field under `at`.
 */
export function renderTemplate(
  document: TemplateDocument,
  values: Record<string, string>,
  tenant: TenantFacts,
  at: string,
): { document?: TemplateDocument; issues: FieldIssue[] } {
  const all: Record<string, string> = { ...values, 'tenant.name': tenant.name, 'tenant.slug': tenant.slug };
  const render = (v: unknown): unknown => {
    if (typeof v === 'string') return v.replace(PLACEHOLDER, (_m, name: string) => all[name] ?? '');
    if (Array.isArray(v)) return v.map(render);
    if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, render(x)]));
    return v;
  };
  const rendered = { ...document, directory: render(document.directory), policy: render(document.policy) };
  const parsed = TemplateDocument.safeParse(rendered);
  if (parsed.success) return { document: parsed.data, issues: [] };
  return {
    issues: parsed.error.issues.map((issue) => ({
      path: [at, ...issue.path.map(String)].join('.'),
      message: `once rendered for this tenant: ${issue.message}`,
    })),
  };
}

/** What the plan reads from the tenant before comparing: its policy and its directory, through the connector. */
export interface TenantState {
  tenantId: string;
  policyVersion: number;
  policy: TenantPolicyDocument;
  target: { kind: string; capabilities: DirectoryCapabilities };
  /** The directory's roles named by the template or the policies; null when the target cannot list roles. */
  roles: DirectoryRole[] | null;
  settings: DirectorySecuritySettingsState;
}

/**
 * What applying a rendered version would change in the tenant. Pure: the caller reads the
 * tenant's state and writes nothing.
 */
export function planTemplate(
  rendered: TemplateDocument,
  state: TenantState,
  meta: { templateId: string; version: number; parameters: Record<string, string>; computedAt: string },
): TemplatePlan {
  const { capabilities } = state.target;
  const privilegedRoles = new Set<string>([
    ...rendered.directory.roles.filter((r) => r.privileged).map((r) => r.name),
    ...(state.roles ?? []).filter((r) => r.privileged).map((r) => r.name),
  ]);
  const items: Omit<TemplatePlanItem, 'privileged'>[] = [];

  // Directory roles: created or updated, never deleted.
  const existing = new Map((state.roles ?? []).map((r) => [r.name, r]));
  for (const role of rendered.directory.roles) {
    const path = ['directory', 'roles', role.name];
    const current = existing.get(role.name);
    if (state.roles === null || !current) {
      items.push({
        area: 'directory.roles',
        path: renderPath(path),
        operation: 'create',
        after: { description: role.description, privileged: role.privileged },
        ...neutral(
          state.roles === null
            ? 'written as the template says; the target cannot say whether it exists'
            : 'a new role; nobody holds it until assigned',
        ),
        unsupported: state.roles === null ? notSupportedByTarget('roleLookup') : null,
      });
      continue;
    }
    if (current.description !== role.description) {
      items.push({
        area: 'directory.roles',
        path: renderPath([...path, 'description']),
        operation: 'change',
        before: current.description,
        after: role.description,
        ...neutral('the role description is only text'),
        unsupported: null,
      });
    }
    if (current.privileged !== role.privileged && rolePrivileged.kind === 'value') {
      items.push({
        area: 'directory.roles',
        path: renderPath([...path, 'privileged']),
        operation: 'change',
        before: current.privileged,
        after: role.privileged,
        ...rolePrivileged.classify(current.privileged, role.privileged, { before: current, after: role }),
        unsupported: null,
      });
    }
  }

  // Security settings: those the template sets, compared with what the target holds.
  const wanted = rendered.directory.settings;
  const held: Record<string, unknown> = {};
  const target: Record<string, unknown> = {};
  for (const name of DIRECTORY_SETTING_NAMES) {
    if (wanted[name] === undefined) continue;
    const capability = SETTING_CAPABILITY[name];
    if (!capabilities[capability]) {
      items.push({
        area: 'directory.settings',
        path: `directory.settings.${name}`,
        operation: 'change',
        after: wanted[name],
        ...neutral(`cannot be set on this target (${notSupportedByTarget(capability)}): an apply leaves it as it is`),
        unsupported: notSupportedByTarget(capability),
      });
      continue;
    }
    held[name] = state.settings[name];
    target[name] = wanted[name];
  }
  for (const item of diffSettings(directorySettingsRegistry(), held, target)) {
    items.push({ area: 'directory.settings', ...fromDiff(item, 'directory.settings.'), unsupported: null });
  }

  // Policy sections the template sets, classified as the tenant's own policy change would be.
  const proposed = TenantPolicyDocument.parse({
    ...state.policy,
    ...(rendered.policy.grants ? { grants: rendered.policy.grants } : {}),
    ...(rendered.policy.lifecycle ? { lifecycle: rendered.policy.lifecycle } : {}),
  });
  for (const doc of [state.policy, proposed]) {
    for (const [name, role] of Object.entries(doc.grants.roles)) if (role.privileged) privilegedRoles.add(name);
  }
  const classification = classifyPolicyChange(state.policy, proposed);
  for (const item of classification.items) items.push({ area: 'policy', ...fromDiff(item, 'policy.'), unsupported: null });

  const planned = items.map((item) => ({ ...item, privileged: touchesPrivileged(item, privilegedRoles) }));
  return {
    tenantId: state.tenantId,
    templateId: meta.templateId,
    version: meta.version,
    parameters: meta.parameters,
    policyVersion: state.policyVersion,
    target: state.target.kind,
    items: planned,
    summary: {
      changes: planned.length,
      loosens: planned.filter((i) => i.effect === 'loosens').length,
      privileged: planned.filter((i) => i.privileged).length,
      unsupported: planned.filter((i) => i.unsupported !== null).length,
    },
    // A tenant whose approvers decide every change decides a rollout's too, a directory-only one included
    // (the policy classification sees only policy items); what the target cannot do changes nothing.
    needsTenantApproval:
      classification.needsApproval ||
      planned.some((i) => i.effect === 'loosens') ||
      (state.policy.governance.approveEveryChange && planned.some((i) => i.unsupported === null)),
    computedAt: meta.computedAt,
  };
}

function fromDiff(item: PolicyDiffItem, prefix: string): Omit<TemplatePlanItem, 'area' | 'privileged' | 'unsupported'> {
  return {
    ...item,
    path: `${prefix}${item.path}`,
    operation: item.before === undefined ? 'create' : item.after === undefined ? 'remove' : 'change',
  };
}

/** The change is about a privileged role: its definition, its grant rules, or a value naming it (a birthright rule). */
function touchesPrivileged(item: Omit<TemplatePlanItem, 'privileged'>, roles: Set<string>): boolean {
  for (const role of roles) {
    for (const base of [renderPath(['directory', 'roles', role]), `policy.${renderPath(['grants', 'roles', role])}`]) {
      if (item.path === base || item.path.startsWith(`${base}.`) || item.path.startsWith(`${base}[`)) return true;
    }
  }
  return [item.before, item.after].some((v) => textsOf(v).some(({ text }) => roles.has(text)));
}

/** What a plan reads from the tenant's directory, through its connector (never its storage). */
export async function readDirectoryState(
  directory: DirectoryConnector,
  tenantId: string,
): Promise<Pick<TenantState, 'target' | 'roles' | 'settings'>> {
  const roles = directory.capabilities.roleLookup ? await directory.listAllRoles(tenantId) : null;
  const settings = await directory.getSecuritySettings(tenantId);
  return { target: { kind: directory.kind, capabilities: { ...directory.capabilities } }, roles, settings };
}

/** A version rendered for one tenant with its values, or the issues (under `at`) that stop it. */
export function renderForTenant(
  document: TemplateDocument,
  supplied: Record<string, string>,
  tenant: TenantFacts,
  at: string,
): { document: TemplateDocument; values: Record<string, string> } | { issues: FieldIssue[] } {
  const { values, issues } = resolveParameters(document, supplied, at);
  if (issues.length) return { issues };
  const result = renderTemplate(document, values, tenant, 'document');
  return result.document ? { document: result.document, values } : { issues: result.issues };
}
