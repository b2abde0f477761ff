import { z } from 'zod';
import { DirectoryUnsupportedError, type DirectoryCapabilities, type DirectoryCapability, type DirectoryConnector } from './connector.js';
import {
  higherLoosens,
  loosens,
  lowerLoosens,
  offLoosens,
  tightens,
  value,
  type PolicySetting,
  type SettingsRegistry,
} from '../tenancy/policy-diff.js';

/**
 * A directory's security settings: the baseline an MSP keeps its tenants on (what Entra's
 * authentication methods, password and lockout policies, AD's default domain policy and
 * ppolicy's pwdPolicy express). Templates set them; connectors read and apply them, each setting
 * under the capability that says whether the target has it.
 */
export const DirectorySecuritySettings = z
  .strictObject({
    /** Every user must sign in with a second factor. */
    mfaRequired: z.boolean(),
    passwordMinLength: z.number().int().min(6).max(128),
    /** A password must mix character classes (three of: lower case, upper case, digits, symbols). */
    passwordComplexity: z.boolean(),
    /** Previous passwords a user may not reuse; 0 remembers none. */
    passwordHistory: z.number().int().min(0).max(24),
    /** Days before a password must be changed; 0 never expires it (NIST 800-63B's advice, with MFA). */
    passwordMaxAgeDays: z.number().int().min(0).max(3650),
    /** Failed sign-ins before the account locks; 0 never locks it. */
    lockoutThreshold: z.number().int().min(0).max(100),
    /** How long a lockout lasts before it lifts by itself. */
    lockoutDurationMinutes: z
      .number()
      .int()
      .min(1)
      .max(60 * 24 * 7),
    /** Longest a sign-in session lasts, active or not. */
    sessionLifetimeMinutes: z
      .number()
      .int()
      .min(5)
      .max(60 * 24 * 30),
    /** A session ends after this long without activity. */
    sessionIdleTimeoutMinutes: z
      .number()
      .int()
      .min(5)
      .max(60 * 24 * 30),
  })
  .meta({ id: 'DirectorySecuritySettings' });
export type DirectorySecuritySettings = z.infer<typeof DirectorySecuritySettings>;
export type DirectorySettingName = keyof DirectorySecuritySettings;

/** Some settings, as a template states them or an apply changes them. */
export const PartialDirectorySecuritySettings = DirectorySecuritySettings.partial().meta({ id: 'PartialDirectorySecuritySettings' });
export type PartialDirectorySecuritySettings = z.infer<typeof PartialDirectorySecuritySettings>;

/** What a target answers: a value per setting, null for a setting it lacks (its capability). */
export type DirectorySecuritySettingsState = { [K in DirectorySettingName]: DirectorySecuritySettings[K] | null };

/** The capability under which a connector reads and applies each setting. */
export const SETTING_CAPABILITY: Readonly<Record<DirectorySettingName, DirectoryCapability>> = {
  mfaRequired: 'mfaPolicy',
  passwordMinLength: 'passwordPolicy',
  passwordComplexity: 'passwordPolicy',
  passwordHistory: 'passwordPolicy',
  passwordMaxAgeDays: 'passwordPolicy',
  lockoutThreshold: 'lockoutPolicy',
  lockoutDurationMinutes: 'lockoutPolicy',
  sessionLifetimeMinutes: 'sessionPolicy',
  sessionIdleTimeoutMinutes: 'sessionPolicy',
};

export const DIRECTORY_SETTING_NAMES = Object.keys(SETTING_CAPABILITY) as DirectorySettingName[];

/** The built-in directory's settings until something sets them. */
export const DEFAULT_DIRECTORY_SETTINGS: DirectorySecuritySettings = {
  mfaRequired: false,
  passwordMinLength: 8,
  passwordComplexity: false,
  passwordHistory: 0,
  passwordMaxAgeDays: 0,
  lockoutThreshold: 10,
  lockoutDurationMinutes: 15,
  sessionLifetimeMinutes: 60 * 24,
  sessionIdleTimeoutMinutes: 60,
};

/** A number where 0 switches the control off (never locks, never expires) and otherwise a higher value gives more room. */
function zeroIsOff(off: string, raised: string, lowered: string, on: string): PolicySetting {
  return value((before, after) => {
    if (typeof before !== 'number' || typeof after !== 'number') return loosens('the setting appears or disappears');
    if (after === 0) return loosens(off);
    if (before === 0) return tightens(on);
    return after > before ? loosens(raised) : tightens(lowered);
  });
}

/** How each setting's change affects the tenant's control, by the classifier of tenant policy changes (policy-diff.ts). */
export const DIRECTORY_SETTING_RULES: Readonly<Record<DirectorySettingName, PolicySetting>> = {
  mfaRequired: offLoosens('users may sign in without a second factor', 'every user must sign in with a second factor'),
  passwordMinLength: lowerLoosens('shorter passwords are accepted', 'passwords must be longer'),
  passwordComplexity: offLoosens('passwords need not mix character classes', 'passwords must mix character classes'),
  passwordHistory: lowerLoosens('fewer previous passwords are refused', 'more previous passwords are refused'),
  passwordMaxAgeDays: zeroIsOff('passwords never expire', 'passwords are kept longer', 'passwords expire sooner', 'passwords expire'),
  lockoutThreshold: zeroIsOff(
    'accounts never lock after failed sign-ins',
    'more failed sign-ins are allowed before a lockout',
    'fewer failed sign-ins are allowed before a lockout',
    'accounts lock after failed sign-ins',
  ),
  lockoutDurationMinutes: lowerLoosens('a lockout lifts sooner', 'a lockout lasts longer'),
  sessionLifetimeMinutes: higherLoosens('sessions last longer', 'sessions end sooner'),
  sessionIdleTimeoutMinutes: higherLoosens('idle sessions last longer', 'idle sessions end sooner'),
};

/** The settings object as one section of a registry rooted at `prefix` (e.g. `directory.settings`). */
export function directorySettingsRegistry(prefix = ''): SettingsRegistry {
  const at = (name: string) => (prefix ? `${prefix}.${name}` : name);
  return {
    [prefix]: { kind: 'section' },
    ...Object.fromEntries(DIRECTORY_SETTING_NAMES.map((name) => [at(name), DIRECTORY_SETTING_RULES[name]])),
  };
}

/** The capabilities `settings` need that the connector lacks, in setting order (none: it can apply them all). */
export function missingSettingCapabilities(
  capabilities: DirectoryCapabilities,
  settings: PartialDirectorySecuritySettings,
): DirectoryCapability[] {
  const names = DIRECTORY_SETTING_NAMES.filter((name) => settings[name] !== undefined);
  return [...new Set(names.map((name) => SETTING_CAPABILITY[name]).filter((capability) => !capabilities[capability]))];
}

/** For a connector: refuses, before any change, settings it cannot hold (DirectoryUnsupportedError). */
export function refuseUnsupportedSettings(
  directory: Pick<DirectoryConnector, 'kind' | 'capabilities'>,
  tenantId: string,
  settings: PartialDirectorySecuritySettings,
): void {
  const [missing] = missingSettingCapabilities(directory.capabilities, settings);
  if (missing) throw new DirectoryUnsupportedError(missing, directory.kind, tenantId);
}

/** What a target with `capabilities` answers when it holds `settings`: the settings it lacks are null. */
export function settingsState(capabilities: DirectoryCapabilities, settings: DirectorySecuritySettings): DirectorySecuritySettingsState {
  return Object.fromEntries(
    DIRECTORY_SETTING_NAMES.map((name) => [name, capabilities[SETTING_CAPABILITY[name]] ? settings[name] : null]),
  ) as DirectorySecuritySettingsState;
}

/** The answer of a target that holds none of the settings. */
export const NO_SECURITY_SETTINGS: DirectorySecuritySettingsState = Object.fromEntries(
  DIRECTORY_SETTING_NAMES.map((name) => [name, null]),
) as DirectorySecuritySettingsState;

/**
 * The settings methods of a connector whose target holds none of the settings: every read is
 * null, and applying any setting is refused as unsupported (applying none is a no-op).
 */
export function noSecuritySettings(
  directory: Pick<DirectoryConnector, 'kind' | 'capabilities'>,
): Pick<DirectoryConnector, 'getSecuritySettings' | 'applySecuritySettings'> {
  return {
    getSecuritySettings: () => Promise.resolve(NO_SECURITY_SETTINGS),
    applySecuritySettings: (tenantId, settings) =>
      new Promise((resolve) => {
        refuseUnsupportedSettings(directory, tenantId, settings);
        resolve();
      }),
  };
}
