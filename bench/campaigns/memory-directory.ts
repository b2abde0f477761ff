import {
  requireCapability,
  type DirectoryAccountState,
  type DirectoryConnector,
  type DirectoryRole,
  type DirectoryRoleInput,
  type DirectoryUser,
  type DirectoryUserInput,
  type DirectoryUserStatus,
} from '../../core/directory/connector.js';
import {
  DEFAULT_DIRECTORY_SETTINGS,
  DIRECTORY_SETTING_NAMES,
  SETTING_CAPABILITY,
  type DirectorySecuritySettingsState,
  type PartialDirectorySecuritySettings,
} from '../../core/directory/settings.js';

/**
 * The floor's target: answers every call from memory at once, so the floor's campaign runs the
 * same activities, ledger steps and workflow with target calls that cost nothing. It holds what
 * the seed put there (users, roles, memberships) so reviews find the same items and remediation
 * reads back the same answers as on the built-in directory.
 *
 * With `settings`, it also holds each tenant's security settings (starting, as the built-in
 * directory does, from DEFAULT_DIRECTORY_SETTINGS) under every settings capability, so a template
 * rollout's floor plans, applies and reads back the same settings as the real side.
 */
export function memoryDirectory(options: { settings?: boolean } = {}): DirectoryConnector {
  const holdsSettings = options.settings ?? false;
  const settingsOf = new Map<string, DirectorySecuritySettingsState>();
  const users = new Map<string, DirectoryUser>();
  const roles = new Map<string, DirectoryRole>();
  const members = new Map<string, Set<string>>();
  const key = (tenantId: string, id: string) => `${tenantId}/${id}`;
  const membersOf = (tenantId: string, role: string) => {
    const k = key(tenantId, role);
    let set = members.get(k);
    if (!set) members.set(k, (set = new Set()));
    return set;
  };
  const sorted = (list: Iterable<string>) => [...list].sort();

  const connector: DirectoryConnector = {
    kind: 'memory',
    // Security settings are not what a review touches: unless asked to, this target has none, and says so.
    capabilities: {
      sessions: true,
      membershipEnd: true,
      roleLookup: true,
      roleDelete: true,
      unlock: true,
      mfaReset: true,
      passwordReset: true,
      mfaPolicy: holdsSettings,
      passwordPolicy: holdsSettings,
      lockoutPolicy: holdsSettings,
      sessionPolicy: holdsSettings,
    },
    async upsertUser(tenantId: string, user: DirectoryUserInput) {
      const now = new Date().toISOString();
      const existing = users.get(key(tenantId, user.id));
      const stored: DirectoryUser = {
        tenantId,
        id: user.id,
        username: user.username,
        displayName: user.displayName,
        email: user.email ?? existing?.email ?? null,
        attributes: user.attributes ?? existing?.attributes ?? {},
        status: existing?.status ?? user.initialStatus ?? 'active',
        createdAt: existing?.createdAt ?? now,
        updatedAt: now,
      };
      users.set(key(tenantId, user.id), stored);
      return stored;
    },
    async getUser(tenantId: string, userId: string) {
      return users.get(key(tenantId, userId));
    },
    async setUserStatus(tenantId: string, userId: string, status: DirectoryUserStatus) {
      const user = users.get(key(tenantId, userId));
      if (user) user.status = status;
    },
    async upsertRole(tenantId: string, role: DirectoryRoleInput) {
      roles.set(key(tenantId, role.name), { name: role.name, description: role.description ?? '', privileged: role.privileged ?? false });
    },
    async getRoles(tenantId: string, names: readonly string[]) {
      return names.flatMap((n) => roles.get(key(tenantId, n)) ?? []).sort((a, b) => a.name.localeCompare(b.name));
    },
    async listAllRoles(tenantId: string) {
      return [...roles.entries()]
        .filter(([k]) => k.startsWith(`${tenantId}/`))
        .map(([, r]) => r)
        .sort((a, b) => a.name.localeCompare(b.name));
    },
    async deleteRole(tenantId: string, name: string) {
      roles.delete(key(tenantId, name));
    },
    async lastSignIns(tenantId: string, userIds: readonly string[]) {
      return Object.fromEntries(userIds.filter((id) => users.has(key(tenantId, id))).map((id) => [id, null]));
    },
    async getUsers(tenantId: string, userIds: readonly string[]) {
      return userIds.flatMap((id) => users.get(key(tenantId, id)) ?? []);
    },
    async assignRole(tenantId: string, userId: string, role: string) {
      membersOf(tenantId, role).add(userId);
    },
    async removeRole(tenantId: string, userId: string, role: string) {
      membersOf(tenantId, role).delete(userId);
    },
    async hasRole(tenantId: string, userId: string, role: string) {
      return membersOf(tenantId, role).has(userId);
    },
    async listRoles(tenantId: string, userId: string) {
      return sorted(
        [...members.entries()]
          .filter(([k, set]) => k.startsWith(`${tenantId}/`) && set.has(userId))
          .map(([k]) => k.slice(tenantId.length + 1)),
      );
    },
    async listMembers(tenantId: string, role: string) {
      return sorted(membersOf(tenantId, role));
    },
    async revokeSessions() {
      return 0;
    },
    async getAccountState(tenantId: string, userId: string): Promise<DirectoryAccountState | undefined> {
      const user = users.get(key(tenantId, userId));
      return user && { status: user.status, locked: false, mfaFactors: 0, passwordResetRequired: false, liveSessions: 0 };
    },
    async unlockUser() {},
    async resetMfa() {
      return 0;
    },
    async requirePasswordReset() {},
    async getSecuritySettings(tenantId: string) {
      if (!holdsSettings) return Object.fromEntries(DIRECTORY_SETTING_NAMES.map((name) => [name, null])) as DirectorySecuritySettingsState;
      return { ...(settingsOf.get(tenantId) ?? DEFAULT_DIRECTORY_SETTINGS) };
    },
    async applySecuritySettings(tenantId: string, settings: PartialDirectorySecuritySettings) {
      for (const name of Object.keys(settings) as (keyof PartialDirectorySecuritySettings)[])
        requireCapability(connector, SETTING_CAPABILITY[name], tenantId);
      const given = Object.fromEntries(Object.entries(settings).filter(([, v]) => v !== undefined));
      settingsOf.set(tenantId, { ...(settingsOf.get(tenantId) ?? DEFAULT_DIRECTORY_SETTINGS), ...given });
    },
  };
  return connector;
}
