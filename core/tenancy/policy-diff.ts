import type { PolicyChangeEffect, PolicyDiffItem } from './contract.js';
import type { TenantPolicyDocument } from './schemas.js';

/**
 * Classifies a proposed tenant policy against the current one: which settings change and
 * whether each loosens the tenant's control (waits for the tenant's approvers) or not (applies
 * at once). Pure and deterministic, so a workflow can re-diff with it too.
 *
 * Every setting the classifier knows is in POLICY_SETTINGS with its reason. Anything else that
 * changes — a setting a later feature adds without declaring it here — counts as loosening, so a
 * feature must opt out deliberately (e.g. with `tighteningOnly`).
 */

export interface PolicyChangeClassification {
  /** One item per changed setting, sorted by path. */
  items: PolicyDiffItem[];
  /** Some item loosens the tenant's control: the change needs the tenant's approval. */
  loosens: boolean;
  /** There are changes and none of them loosens (tightening or neutral ones): applies at once. */
  tightensOnly: boolean;
  /** The change waits for the tenant's approvers: it loosens, or the current policy asks to decide every change. */
  needsApproval: boolean;
}

export interface Verdict {
  effect: PolicyChangeEffect;
  reason: string;
}

/** Before and after of the object holding the setting (e.g. the rule a rule's `when` belongs to). */
export interface Context {
  before: unknown;
  after: unknown;
}

export type PolicySetting =
  /** A value compared as a whole; `classify` sees two different values (undefined: absent). */
  | { kind: 'value'; classify: (before: unknown, after: unknown, parent: Context) => Verdict }
  /**
   * An object whose keys are settings of their own (at `<path>.<key>`). `whole` classifies the
   * section appearing or disappearing as a whole (an optional section); without it, that is
   * read as an unparsed document.
   */
  | { kind: 'section'; whole?: (before: unknown, after: unknown) => Verdict }
  /**
   * Entries keyed by name (a record) or by id (an array), each a section at `<path>.*`; adding or
   * removing a whole entry is classified by `added` / `removed`.
   */
  | {
      kind: 'entries';
      idOf?: (entry: unknown) => string;
      added: (entry: unknown) => Verdict;
      removed: (entry: unknown) => Verdict;
    };

export const loosens = (reason: string): Verdict => ({ effect: 'loosens', reason });
export const tightens = (reason: string): Verdict => ({ effect: 'tightens', reason });
export const neutral = (reason: string): Verdict => ({ effect: 'neutral', reason });

/**
 * A registry of settings by path (`*` for an entry's name or id), as POLICY_SETTINGS below. Other
 * documents whose changes loosen or tighten control (a template, a directory's security settings)
 * declare theirs with the same builders and diff with `diffSettings`.
 */
export type SettingsRegistry = Readonly<Record<string, PolicySetting>>;

export const value = (classify: (before: unknown, after: unknown, parent: Context) => Verdict): PolicySetting => ({
  kind: 'value',
  classify,
});

/** For a later feature's setting that can never loosen control: any change to it applies at once. */
export const tighteningOnly = (reason: string): PolicySetting => value(() => tightens(reason));

/** A change in either direction is the tenant's call. */
export const anyChangeLoosens = (reason: string): PolicySetting => value(() => loosens(reason));

export const neutralSetting = (reason: string): PolicySetting => value(() => neutral(reason));

/** Only a document that was not parsed lacks a setting with a default; never read as the stricter side. */
const absent = loosens('the setting appears or disappears; compare parsed documents');

/** A number where a higher value gives more room (a cap, a window). */
export function higherLoosens(raised: string, lowered: string): PolicySetting {
  return value((before, after) => {
    if (typeof before !== 'number' || typeof after !== 'number') return absent;
    return after > before ? loosens(raised) : tightens(lowered);
  });
}
/** A number where a lower value gives more room (a quorum). */
export function lowerLoosens(lowered: string, raised: string): PolicySetting {
  return value((before, after) => {
    if (typeof before !== 'number' || typeof after !== 'number') return absent;
    return after < before ? loosens(lowered) : tightens(raised);
  });
}
/** A switch whose `true` is the stricter setting. */
export function offLoosens(off: string, on: string): PolicySetting {
  return value((before, after) => {
    if (typeof before !== 'boolean' || typeof after !== 'boolean') return absent;
    return after ? tightens(on) : loosens(off);
  });
}
/** A switch whose `false` is the stricter setting. */
export function onLoosens(on: string, off: string): PolicySetting {
  return value((before, after) => {
    if (typeof before !== 'boolean' || typeof after !== 'boolean') return absent;
    return after ? loosens(on) : tightens(off);
  });
}
/** A list read as a set (absent: empty): anything added loosens, only removals tighten. */
export function addingLoosens(what: string): PolicySetting {
  return value((before, after) => {
    const { added, removed } = setChange(before, after);
    if (added.length) return loosens(`adds ${added.join(', ')} to ${what}`);
    if (removed.length) return tightens(`removes ${removed.join(', ')} from ${what}`);
    return neutral(`${what}: same entries, only their order or repetition changes`);
  });
}

/** A ticket pattern: requiring one tightens; dropping or changing it (which tickets pass cannot be compared) loosens. */
function ticketPattern(requests: string): PolicySetting {
  return value((before, after) =>
    before === null || before === undefined
      ? tightens(`${requests} need a ticket reference matching the pattern`)
      : loosens(
          after === null || after === undefined ? `${requests} need no ticket reference` : 'changes which ticket references are accepted',
        ),
  );
}

const gives = (rule: unknown): boolean => list(own(rule, 'roles')).length > 0 || list(own(rule, 'eligibleGrantRoles')).length > 0;

/**
 * Every setting of TenantPolicyDocument (core/grants/policy.ts, core/lifecycle/policy.ts,
 * core/actions/policy.ts, schemas.ts) by path, `*` standing for a role name, an action or a rule
 * id. The one registry: a setting not listed here loosens whenever it changes.
 */
export const POLICY_SETTINGS: SettingsRegistry = {
  '': { kind: 'section' },
  // No decision reads it (it only presents times); a feature that schedules by it must reclassify it.
  timezone: neutralSetting('the time zone only presents times; no access decision reads it'),
  contactEmail: anyChangeLoosens('changes where the tenant is contacted about its access'),
  notificationWebhookUrl: anyChangeLoosens('changes where the tenant is notified of requests and changes'),

  grants: { kind: 'section' },
  'grants.roles': {
    kind: 'entries',
    added: () => loosens('makes the role grantable'),
    removed: () => tightens('the role is no longer grantable'),
  },
  'grants.roles.*': { kind: 'section' },
  // Privileged grants are what access reviews and the evidence single out.
  'grants.roles.*.privileged': offLoosens('marks the grantable role non-privileged', 'marks the grantable role privileged'),
  'grants.roles.*.maxDurationMinutes': higherLoosens('raises the longest single grant', 'lowers the longest single grant'),
  'grants.roles.*.approvalsRequired': lowerLoosens(
    'fewer tenant approvers must approve a grant',
    'more tenant approvers must approve a grant',
  ),
  'grants.roles.*.requestableBy': addingLoosens('the Tenure roles that may request it'),
  // A longer window lets a request be approved long after its need was judged, and lets a
  // pending request wait for an approver to give in; the tenant decides that.
  'grants.approvalTimeoutMinutes': higherLoosens('a grant request stays open to approval longer', 'a grant request times out sooner'),
  'grants.extensionRequiresApproval': offLoosens('grants can be extended without approval', 'extending a grant needs approval'),
  'grants.maxTotalDurationMinutes': higherLoosens(
    'raises the cap on a grant with its extensions',
    'lowers the cap on a grant with its extensions',
  ),
  'grants.justificationRequired': offLoosens('grant requests need no justification', 'grant requests need a justification'),
  'grants.revocationAlertMinutes': higherLoosens(
    'a failing revocation alerts the tenant less often',
    'a failing revocation alerts the tenant more often',
  ),
  'grants.ticketPattern': ticketPattern('grant requests'),

  lifecycle: { kind: 'section' },
  // Declares what HR events may carry; by itself gives nobody anything (rules using it are classified).
  'lifecycle.attributes': neutralSetting('changes which person attributes HR events may carry; gives no access by itself'),
  'lifecycle.rules': {
    kind: 'entries',
    idOf: (rule) => String(own(rule, 'id')),
    added: (rule) => (gives(rule) ? loosens('a new rule gives roles or grant eligibility') : neutral('a new rule that gives nothing')),
    removed: (rule) =>
      gives(rule) ? tightens('the rule no longer gives its roles or grant eligibility') : neutral('removes a rule that gave nothing'),
  },
  'lifecycle.rules.*': { kind: 'section' },
  'lifecycle.rules.*.id': neutralSetting('the rule id'), // rules are matched by id, so it never differs
  'lifecycle.rules.*.description': neutralSetting('the rule description is only text'),
  'lifecycle.rules.*.when': value((before, after, rule) => {
    const change = whenChange(before, after);
    if (change === 'wider') {
      return gives(rule.after)
        ? loosens('the rule matches people it did not match before')
        : neutral('the rule matches more people but gives nothing');
    }
    if (change === 'narrower') return tightens('the rule matches fewer people');
    return neutral('the rule matches the same people');
  }),
  'lifecycle.rules.*.roles': addingLoosens('the birthright roles the rule gives'),
  'lifecycle.rules.*.eligibleGrantRoles': addingLoosens('the grant roles the rule makes people eligible for'),
  'lifecycle.moverGraceMinutes': higherLoosens(
    'a mover keeps the old position’s roles longer',
    'a mover loses the old position’s roles sooner',
  ),
  // The disabled account holds its birthright roles that much earlier.
  'lifecycle.preProvisionDays': higherLoosens(
    'a joiner’s account and roles exist earlier',
    'a joiner’s account and roles are created later',
  ),
  'lifecycle.leaver': { kind: 'section' },
  // Longer keeps a leaver's account around; shorter deletes the tenant's records sooner, irreversibly.
  'lifecycle.leaver.retentionDays': anyChangeLoosens('changes how long a leaver’s account is kept'),
  'lifecycle.leaver.afterRetention': anyChangeLoosens('changes what happens to a leaver’s account (delete or anonymise)'),
  'lifecycle.moverReviewsPrivilegedAccess': offLoosens(
    'a mover’s remaining privileged access is no longer reviewed',
    'a mover’s remaining privileged access is reviewed',
  ),
  'lifecycle.endGrantsNotEligible': offLoosens(
    'a mover keeps grants the new position is not eligible for',
    'a mover’s grants the new position is not eligible for end',
  ),
  'lifecycle.adoptExistingAccounts': onLoosens(
    'a joiner may take over a directory account the lifecycle did not create',
    'a joiner for an account the lifecycle did not create is refused',
  ),

  actions: { kind: 'section' },
  'actions.allowed': {
    kind: 'entries',
    added: () => loosens('allows the remote action in the tenant'),
    removed: () => tightens('the remote action is no longer allowed'),
  },
  'actions.allowed.*': { kind: 'section' },
  'actions.allowed.*.approvalsRequired': lowerLoosens(
    'fewer tenant approvers must approve the remote action',
    'more tenant approvers must approve the remote action',
  ),
  'actions.allowed.*.requestableBy': addingLoosens('the Tenure roles that may request the remote action'),
  'actions.approvalTimeoutMinutes': higherLoosens(
    'a remote-action request stays open to approval longer',
    'a remote-action request expires sooner',
  ),
  'actions.justificationRequired': offLoosens('remote actions need no justification', 'remote actions need a justification'),
  'actions.ticketPattern': ticketPattern('remote-action requests'),

  // Another target system, other settings or another secret: every change is the tenant's call,
  // since the target decides where access is given and whether it ends by itself.
  directory: anyChangeLoosens('changes the target system where Tenure gives and removes the tenant’s access'),

  governance: { kind: 'section' },
  'governance.policyChangeApprovals': lowerLoosens(
    'fewer tenant approvers must approve a loosening policy change',
    'more tenant approvers must approve a loosening policy change',
  ),
  'governance.policyChangeTimeoutDays': higherLoosens(
    'a pending policy change stays open to approval longer',
    'a pending policy change times out sooner',
  ),
  'governance.approveEveryChange': offLoosens(
    'tightening policy changes no longer wait for the tenant’s approvers',
    'every policy change waits for the tenant’s approvers',
  ),
};

const UNKNOWN: Verdict = loosens('a setting the classifier does not know; unknown settings count as loosening');

export function classifyPolicyChange(before: TenantPolicyDocument, after: TenantPolicyDocument): PolicyChangeClassification {
  const items = diffSettings(POLICY_SETTINGS, before, after);
  const loosening = items.some((i) => i.effect === 'loosens');
  const decideEveryChange = own(own(before, 'governance'), 'approveEveryChange') === true;
  return {
    items,
    loosens: loosening,
    tightensOnly: items.length > 0 && !loosening,
    needsApproval: loosening || (decideEveryChange && items.length > 0),
  };
}

/**
 * Every changed setting between two documents as `registry` classifies them, sorted by path; a
 * setting the registry does not know loosens.
 */
export function diffSettings(registry: SettingsRegistry, before: unknown, after: unknown): PolicyDiffItem[] {
  const found: Found[] = [];
  diffAt(registry, [], [], before, after, { before: undefined, after: undefined }, found);
  // By path segments (code-unit order), so an entry's settings follow it whatever its name holds.
  return found.sort((x, y) => compareSegments(x.segments, y.segments)).map((f) => f.item);
}

function diffAt(
  registry: SettingsRegistry,
  path: string[],
  pattern: string[],
  before: unknown,
  after: unknown,
  parent: Context,
  out: Found[],
): void {
  if (same(before, after)) return;
  const setting = own(registry, pattern.join('.')) as PolicySetting | undefined;
  const push = (verdict: Verdict): void => {
    out.push(item(path, before, after, verdict));
  };
  if (!setting) return push(UNKNOWN);
  if (setting.kind === 'value') return push(setting.classify(before, after, parent));
  if (setting.kind === 'section') {
    if (!isObject(before) || !isObject(after)) return push(setting.whole ? setting.whole(before, after) : absent);
    for (const key of unionKeys(before, after)) {
      diffAt(registry, [...path, key], [...pattern, key], own(before, key), own(after, key), { before, after }, out);
    }
    return;
  }
  const { idOf } = setting;
  const entriesBefore = entries(before, idOf);
  const entriesAfter = entries(after, idOf);
  if (!entriesBefore || !entriesAfter) return push(absent);
  for (const key of unionKeys(entriesBefore, entriesAfter)) {
    const b = own(entriesBefore, key);
    const a = own(entriesAfter, key);
    if (b === undefined) out.push(item([...path, key], undefined, a, setting.added(a)));
    else if (a === undefined) out.push(item([...path, key], b, undefined, setting.removed(b)));
    else diffAt(registry, [...path, key], [...pattern, '*'], b, a, { before: b, after: a }, out);
  }
  if (idOf && Array.isArray(before) && Array.isArray(after)) {
    // Every matching rule contributes, so the order decides nothing; still a change to record.
    const orderBefore = before.map(idOf).filter((id) => Object.hasOwn(entriesAfter, id));
    const orderAfter = after.map(idOf).filter((id) => Object.hasOwn(entriesBefore, id));
    if (!same(orderBefore, orderAfter)) {
      out.push(item(path, orderBefore, orderAfter, neutral('only the order of the rules changes; every matching rule contributes')));
    }
  }
}

interface Found {
  segments: string[];
  item: PolicyDiffItem;
}

function item(path: string[], before: unknown, after: unknown, verdict: Verdict): Found {
  return {
    segments: path,
    item: {
      path: renderPath(path),
      ...(before === undefined ? {} : { before }),
      ...(after === undefined ? {} : { after }),
      effect: verdict.effect,
      reason: verdict.reason,
    },
  };
}

function compareSegments(a: string[], b: string[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
  }
  return a.length - b.length;
}

/** Dotted path; a key that is not a plain word (role names and rule ids may hold dots) is quoted. */
export function renderPath(path: string[]): string {
  return path.map((key, i) => (/^[A-Za-z0-9_-]+$/.test(key) ? `${i ? '.' : ''}${key}` : `[${JSON.stringify(key)}]`)).join('');
}

/** An object's entries by key, or an array's by id; undefined when the value has another shape. */
function entries(v: unknown, idOf: ((entry: unknown) => string) | undefined): Record<string, unknown> | undefined {
  if (idOf) return Array.isArray(v) ? Object.fromEntries(v.map((entry) => [idOf(entry), entry])) : undefined;
  return isObject(v) ? v : undefined;
}

/** How a rule's `when` (all conditions; each a value or any of a list) changes whom it matches. */
function whenChange(before: unknown, after: unknown): 'wider' | 'narrower' | 'same' {
  const b = conditions(before);
  const a = conditions(after);
  let wider = false;
  let narrower = false;
  for (const [name, values] of b) {
    const next = a.get(name);
    if (!next)
      wider = true; // a condition dropped
    else {
      if ([...next].some((v) => !values.has(v))) wider = true;
      if ([...values].some((v) => !next.has(v))) narrower = true;
    }
  }
  for (const name of a.keys()) if (!b.has(name)) narrower = true;
  return wider ? 'wider' : narrower ? 'narrower' : 'same';
}

function conditions(when: unknown): Map<string, Set<string>> {
  const map = new Map<string, Set<string>>();
  if (!isObject(when)) return map; // absent: matches everyone
  for (const [name, expected] of Object.entries(when)) map.set(name, new Set(list(expected).map(String)));
  return map;
}

function setChange(before: unknown, after: unknown): { added: string[]; removed: string[] } {
  const b = new Set(list(before).map(String));
  const a = new Set(list(after).map(String));
  return { added: [...a].filter((x) => !b.has(x)).sort(), removed: [...b].filter((x) => !a.has(x)).sort() };
}

const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : v === undefined || v === null ? [] : [v]);

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** An own property only: role names and rule ids such as `constructor` must not read the prototype. */
const own = (v: unknown, key: string): unknown => (isObject(v) && Object.hasOwn(v, key) ? v[key] : undefined);

function unionKeys(a: Record<string, unknown>, b: Record<string, unknown>): string[] {
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
}

/** Structural equality of JSON values (key order ignored). */
function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((v, i) => same(v, b[i]));
  }
  if (!isObject(a) || !isObject(b)) return false;
  const keys = unionKeys(a, b);
  return keys.every((key) => same(own(a, key), own(b, key)));
}
