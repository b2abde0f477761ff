import { describe, expect, it } from 'vitest';
import { directorySettingsRegistry } from '../../core/directory/settings.js';
import { diffTemplateDocuments, renderTemplate, resolveParameters } from '../../core/templates/plan.js';
import { TemplateDocument } from '../../core/templates/schemas.js';
import { diffSettings } from '../../core/tenancy/policy-diff.js';

/** The pure rules under plans and diffs: how settings are classified, parameters resolved, text rendered. */
const settingsDiff = (before: Record<string, unknown>, after: Record<string, unknown>) =>
  diffSettings(directorySettingsRegistry(), before, after).map((i) => [i.path, i.effect]);

describe('security settings classification', () => {
  it.each([
    [{ lockoutThreshold: 5 }, { lockoutThreshold: 0 }, 'loosens'], // never locks
    [{ lockoutThreshold: 0 }, { lockoutThreshold: 10 }, 'tightens'],
    [{ lockoutThreshold: 5 }, { lockoutThreshold: 10 }, 'loosens'],
    [{ lockoutThreshold: 10 }, { lockoutThreshold: 5 }, 'tightens'],
    [{ passwordMaxAgeDays: 90 }, { passwordMaxAgeDays: 0 }, 'loosens'], // never expires
    [{ passwordMaxAgeDays: 0 }, { passwordMaxAgeDays: 365 }, 'tightens'],
    [{ mfaRequired: true }, { mfaRequired: false }, 'loosens'],
    [{ passwordMinLength: 12 }, { passwordMinLength: 8 }, 'loosens'],
    [{ passwordHistory: 5 }, { passwordHistory: 10 }, 'tightens'],
    [{ lockoutDurationMinutes: 30 }, { lockoutDurationMinutes: 5 }, 'loosens'],
    [{ sessionIdleTimeoutMinutes: 60 }, { sessionIdleTimeoutMinutes: 30 }, 'tightens'],
    [{ passwordComplexity: false }, { passwordComplexity: true }, 'tightens'],
  ])('%o → %o %s control', (before, after, effect) => {
    expect(settingsDiff(before, after)).toEqual([[Object.keys(before)[0], effect]]);
  });
});

describe('the version diff', () => {
  it('a setting or policy section the template starts or stops setting is neutral: each tenant’s plan says what it does', () => {
    const before = TemplateDocument.parse({ directory: { settings: { mfaRequired: true } } });
    const after = TemplateDocument.parse({
      directory: { settings: { passwordMinLength: 12 } },
      policy: { grants: { roles: { Admin: { maxDurationMinutes: 60 } } } },
    });
    expect(diffTemplateDocuments(before, after).map((i) => [i.path, i.effect])).toEqual([
      ['directory.settings.mfaRequired', 'neutral'],
      ['directory.settings.passwordMinLength', 'neutral'],
      ['policy.grants', 'neutral'],
    ]);
  });

  it('inside a policy section both versions set, the tenant-policy rules apply', () => {
    const grants = (approvalsRequired: number) =>
      TemplateDocument.parse({ policy: { grants: { roles: { Admin: { maxDurationMinutes: 60, approvalsRequired } } } } });
    expect(diffTemplateDocuments(grants(2), grants(1))).toEqual([
      expect.objectContaining({ path: 'policy.grants.roles.Admin.approvalsRequired', before: 2, after: 1, effect: 'loosens' }),
    ]);
  });
});

describe('parameters', () => {
  const doc = TemplateDocument.parse({
    parameters: { desk: { description: 'Helpdesk' }, region: { description: 'Region', default: 'EU' } },
    directory: { roles: [{ name: 'Desk', description: '{{desk}} in {{region}} for {{tenant.name}}' }] },
  });

  it('a value given wins over the default; a parameter without either, or one the template lacks, is named', () => {
    expect(resolveParameters(doc, { desk: 'IT' }, 'p')).toEqual({ values: { desk: 'IT', region: 'EU' }, issues: [] });
    expect(resolveParameters(doc, { other: 'x' }, 'p').issues).toEqual([
      { path: 'p.other', message: 'the template declares no such parameter' },
      { path: 'p.desk', message: 'required: the parameter has no default' },
    ]);
    expect(resolveParameters(doc, { desk: '{{region}}' }, 'p').issues).toEqual([
      { path: 'p.desk', message: 'a value may not hold a {{placeholder}}' },
    ]);
  });

  it('rendering fills every placeholder, and a text the values make too long is refused by its rendered path', () => {
    const tenant = { name: 'Contoso', slug: 'contoso' };
    expect(renderTemplate(doc, { desk: 'IT', region: 'EU' }, tenant, 'document').document?.directory.roles[0]?.description).toBe(
      'IT in EU for Contoso',
    );
    const long = renderTemplate(doc, { desk: 'x'.repeat(1000), region: 'EU' }, tenant, 'document');
    expect(long.document).toBeUndefined();
    expect(long.issues.map((i) => i.path)).toEqual(['document.directory.roles.0.description']);
  });
});
