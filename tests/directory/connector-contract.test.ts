import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DirectoryConflictError,
  DirectoryNotFoundError,
  DirectoryRejectedError,
  DirectoryUnavailableError,
  DirectoryUnsupportedError,
  type DirectoryConnector,
  type DirectoryUserInput,
} from '../../core/directory/connector.js';
import {
  DEFAULT_DIRECTORY_SETTINGS,
  DIRECTORY_SETTING_NAMES,
  SETTING_CAPABILITY,
  type DirectorySettingName,
  type PartialDirectorySecuritySettings,
} from '../../core/directory/settings.js';
import { startDirectoryTarget, type DirectoryTarget, type DirectoryTargetKind } from '../support/directory-targets.js';

/**
 * The connector contract (core/directory/connector.ts), held against every real target:
 * the built-in PostgreSQL directory, OpenLDAP, and a SCIM 2.0 service with and without the
 * Tenure Group extension. Each test makes its own users and roles, so tests share a target.
 */
const KINDS: [string, DirectoryTargetKind][] = [
  ['built-in PostgreSQL', 'postgres'],
  ['LDAP (OpenLDAP slapd)', 'ldap'],
  ['SCIM 2.0 (scim2-server)', 'scim'],
  ['SCIM 2.0 with the Tenure Group extension', 'scim-extension'],
];

const fresh = (prefix: string) => `${prefix}-${randomBytes(5).toString('hex')}`;
const yesterday = () => new Date(Date.now() - 86_400_000).toISOString();

describe.each(KINDS)('%s directory', (_label, kind) => {
  let target: DirectoryTarget;
  let directory: DirectoryConnector;
  let tenant: string;

  beforeAll(async () => {
    target = await startDirectoryTarget(kind);
    directory = target.connector;
    tenant = target.tenantId;
  });
  afterAll(async () => {
    await target?.stop();
  });

  const profile = (id: string, overrides: Partial<DirectoryUserInput> = {}): DirectoryUserInput => ({
    id,
    username: `${id}.login`,
    displayName: `User ${id}`,
    ...overrides,
  });
  const newUser = async (overrides: Partial<DirectoryUserInput> = {}) => {
    const id = fresh('u');
    await directory.upsertUser(tenant, profile(id, overrides));
    return id;
  };
  const newRole = async (prefix = 'Role') => {
    const name = fresh(prefix);
    await directory.upsertRole(tenant, { name });
    return name;
  };

  describe('users', () => {
    it('creates an active user and reads back its profile, email, attributes and times', async () => {
      const id = fresh('u');
      const created = await directory.upsertUser(
        tenant,
        profile(id, { displayName: 'Ana Lima', email: 'ana.lima@example.test', attributes: { department: 'Finance' } }),
      );
      expect(created).toMatchObject({
        tenantId: tenant,
        id,
        username: `${id}.login`,
        displayName: 'Ana Lima',
        email: 'ana.lima@example.test',
        attributes: { department: 'Finance' },
        status: 'active',
      });
      expect(Date.parse(created.createdAt)).toBeGreaterThan(Date.parse('2020-01-01'));
      expect(Date.parse(created.updatedAt)).toBeGreaterThanOrEqual(Date.parse(created.createdAt));
      expect(await directory.getUser(tenant, id)).toEqual(created);
    });

    it('an upsert repeated with the same profile changes nothing; a new one replaces it, an omitted email stays and null clears it', async () => {
      const id = fresh('u');
      const input = profile(id, { email: 'first@example.test', attributes: { department: 'Finance', title: 'Analyst' } });
      const first = await directory.upsertUser(tenant, input);
      // Into the next second, so a needless write shows as a new updatedAt (LDAP's modifyTimestamp has whole seconds).
      await new Promise((resolve) => setTimeout(resolve, 1010 - (Date.now() % 1000)));
      expect(await directory.upsertUser(tenant, input)).toEqual(first);

      const { email: _omitted, ...withoutEmail } = input;
      const moved = await directory.upsertUser(tenant, {
        ...withoutEmail,
        username: `${id}.renamed`,
        displayName: 'Renamed',
        attributes: { department: 'Sales' },
      });
      expect(moved).toMatchObject({ username: `${id}.renamed`, displayName: 'Renamed', email: 'first@example.test' });
      expect(moved.attributes).toEqual({ department: 'Sales' });

      const cleared = await directory.upsertUser(tenant, { ...withoutEmail, email: null, attributes: {} });
      expect(cleared).toMatchObject({ email: null, attributes: {} });
      expect(await directory.getUser(tenant, id)).toEqual(cleared);
    });

    it('a username held by another user is refused as a conflict, for a new user and a rename, and nothing changes', async () => {
      const holder = await newUser();
      const other = await newUser();
      const taken = `${holder}.login`;

      const newcomer = fresh('u');
      const refused = await directory.upsertUser(tenant, profile(newcomer, { username: taken })).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(DirectoryConflictError);
      expect(refused).toMatchObject({ retryable: false, tenantId: tenant });
      expect(await directory.getUser(tenant, newcomer)).toBeUndefined();

      await expect(directory.upsertUser(tenant, profile(other, { username: taken }))).rejects.toBeInstanceOf(DirectoryConflictError);
      expect(await directory.getUser(tenant, other)).toMatchObject({ username: `${other}.login` });
      expect(await directory.getUser(tenant, holder)).toMatchObject({ username: taken });
    });

    it('a user attribute is stored and read back, or refused by name with no user created: never dropped', async () => {
      const id = fresh('u');
      const outcome = await directory
        .upsertUser(tenant, profile(id, { attributes: { department: 'Finance', shoeSize: '44' } }))
        .catch((error: unknown) => error);
      if (outcome instanceof Error) {
        expect(outcome).toBeInstanceOf(DirectoryRejectedError);
        expect(outcome).toMatchObject({ reason: 'unmapped-attribute', retryable: false });
        expect(outcome.message).toContain('shoeSize');
        expect(await directory.getUser(tenant, id)).toBeUndefined();
      } else {
        expect((await directory.getUser(tenant, id))?.attributes).toEqual({ department: 'Finance', shoeSize: '44' });
      }
    });

    it('an unknown user reads as undefined', async () => {
      expect(await directory.getUser(tenant, fresh('nobody'))).toBeUndefined();
    });

    it('the same creation sent several times at once (a retry racing its first attempt) leaves one user', async () => {
      const id = fresh('u');
      const results = await Promise.all(Array.from({ length: 4 }, () => directory.upsertUser(tenant, profile(id))));
      expect(new Set(results.map((user) => user.id))).toEqual(new Set([id]));
      expect(await directory.getUser(tenant, id)).toMatchObject({ id, username: `${id}.login`, status: 'active' });
    });
  });

  describe('status', () => {
    it('disabling and re-enabling read back each time, and repeating either is harmless', async () => {
      const id = await newUser();
      for (const status of ['disabled', 'disabled', 'active', 'active', 'disabled'] as const) {
        await directory.setUserStatus(tenant, id, status);
        expect((await directory.getUser(tenant, id))?.status).toBe(status);
      }
    });

    it('a user created disabled stays disabled when its profile is upserted again', async () => {
      const id = fresh('u');
      expect((await directory.upsertUser(tenant, profile(id, { initialStatus: 'disabled' }))).status).toBe('disabled');
      expect((await directory.upsertUser(tenant, profile(id, { displayName: 'Later', initialStatus: 'active' }))).status).toBe('disabled');
    });

    it.each(['disabled', 'active'] as const)('setting an unknown user %s fails for good, naming the user', async (status) => {
      const nobody = fresh('nobody');
      const error = await directory.setUserStatus(tenant, nobody, status).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(DirectoryNotFoundError);
      expect(error).toMatchObject({ kind: 'user', id: nobody, retryable: false });
    });

    it('a deleted user is removed or marked deleted, cannot be given a role, and deleting it again succeeds', async () => {
      const id = await newUser();
      const role = await newRole();
      await directory.assignRole(tenant, id, role);
      await directory.setUserStatus(tenant, id, 'deleted');
      expect((await directory.getUser(tenant, id))?.status ?? 'removed').toMatch(/^(deleted|removed)$/);
      await expect(directory.assignRole(tenant, id, role)).rejects.toMatchObject({ name: 'DirectoryNotFoundError', kind: 'user', id });
      await directory.setUserStatus(tenant, id, 'deleted');
    });
  });

  describe('roles', () => {
    it('upserting a role is idempotent; its description and privileged flag read back, or are refused without roleLookup', async () => {
      const name = fresh('Admins');
      const missing = fresh('Missing');
      if (directory.capabilities.roleLookup) {
        await directory.upsertRole(tenant, { name, description: 'Full control', privileged: true });
        await directory.upsertRole(tenant, { name, description: 'Full control', privileged: true });
        expect(await directory.getRoles(tenant, [name, missing])).toEqual([{ name, description: 'Full control', privileged: true }]);
        await directory.upsertRole(tenant, { name, privileged: false });
        expect(await directory.getRoles(tenant, [name])).toEqual([{ name, description: 'Full control', privileged: false }]);
        expect(await directory.getRoles(tenant, [])).toEqual([]);
      } else {
        await directory.upsertRole(tenant, { name });
        await directory.upsertRole(tenant, { name });
        await expect(directory.upsertRole(tenant, { name, privileged: true })).rejects.toMatchObject({
          name: 'DirectoryUnsupportedError',
          capability: 'roleLookup',
          connector: directory.kind,
          retryable: false,
        });
        await expect(directory.getRoles(tenant, [name])).rejects.toBeInstanceOf(DirectoryUnsupportedError);
      }
      // Either way the role exists once: a member shows up in it.
      const user = await newUser();
      await directory.assignRole(tenant, user, name);
      expect(await directory.listMembers(tenant, name)).toEqual([user]);
    });

    it('getRoles answers only the named roles that exist, sorted by name (where roleLookup is declared)', async () => {
      const [later, earlier] = [fresh('Zeta'), fresh('Alpha')];
      await directory.upsertRole(tenant, { name: later });
      await directory.upsertRole(tenant, { name: earlier });
      if (directory.capabilities.roleLookup) {
        expect((await directory.getRoles(tenant, [later, fresh('Missing'), earlier])).map((role) => role.name)).toEqual([earlier, later]);
      } else {
        await expect(directory.getRoles(tenant, [later])).rejects.toMatchObject({ capability: 'roleLookup', retryable: false });
      }
    });
    it('deleteRole deletes a role nobody holds, and again harmlessly; a held role is refused as a conflict; without roleDelete it is refused', async () => {
      const [free, held] = [await newRole('Free'), await newRole('Held')];
      const user = await newUser();
      await directory.assignRole(tenant, user, held);
      if (directory.capabilities.roleDelete) {
        await directory.deleteRole(tenant, free);
        await directory.deleteRole(tenant, free);
        expect(await directory.getRoles(tenant, [free, held])).toEqual([expect.objectContaining({ name: held })]);
        await expect(directory.deleteRole(tenant, held)).rejects.toBeInstanceOf(DirectoryConflictError);
        expect(await directory.listMembers(tenant, held)).toEqual([user]);
        // Once nobody holds it, it goes.
        await directory.removeRole(tenant, user, held);
        await directory.deleteRole(tenant, held);
        expect(await directory.getRoles(tenant, [held])).toEqual([]);
      } else {
        await expect(directory.deleteRole(tenant, free)).rejects.toMatchObject({
          name: 'DirectoryUnsupportedError',
          capability: 'roleDelete',
          connector: directory.kind,
          retryable: false,
        });
        expect(await directory.listMembers(tenant, held)).toEqual([user]);
      }
    });
  });

  describe('batch reads for reviews', () => {
    it('listAllRoles holds every role, sorted by name, with its privileged flag (where roleLookup is declared)', async () => {
      const [later, earlier] = [fresh('Zulu'), fresh('Able')];
      if (directory.capabilities.roleLookup) {
        await directory.upsertRole(tenant, { name: later, privileged: true });
        await directory.upsertRole(tenant, { name: earlier });
        const all = await directory.listAllRoles(tenant);
        const names = all.map((role) => role.name);
        expect(names).toEqual([...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
        expect(all.filter((role) => role.name === later || role.name === earlier).map((r) => [r.name, r.privileged])).toEqual([
          [earlier, false],
          [later, true],
        ]);
      } else {
        await directory.upsertRole(tenant, { name: later });
        await expect(directory.listAllRoles(tenant)).rejects.toMatchObject({ capability: 'roleLookup', retryable: false });
      }
    });

    it('getUsers answers the known users among those asked, once each; lastSignIns where sessions are kept', async () => {
      const [a, b] = [await newUser(), await newUser()];
      const users = await directory.getUsers(tenant, [a, fresh('nobody'), b, a]);
      expect(users.map((user) => user.id).sort()).toEqual([a, b].sort());
      expect(await directory.getUsers(tenant, [])).toEqual([]);
      if (directory.capabilities.sessions) {
        expect(await directory.lastSignIns(tenant, [a])).toEqual({ [a]: null });
      } else {
        await expect(directory.lastSignIns(tenant, [a])).rejects.toMatchObject({ capability: 'sessions', retryable: false });
      }
    });
  });

  describe('memberships', () => {
    it('assigning twice leaves one membership; removing twice leaves none; each read back', async () => {
      const user = await newUser();
      const role = await newRole();
      await directory.assignRole(tenant, user, role);
      await directory.assignRole(tenant, user, role);
      expect(await directory.hasRole(tenant, user, role)).toBe(true);
      expect(await directory.listRoles(tenant, user)).toEqual([role]);
      expect(await directory.listMembers(tenant, role)).toEqual([user]);

      await directory.removeRole(tenant, user, role);
      await directory.removeRole(tenant, user, role);
      expect(await directory.hasRole(tenant, user, role)).toBe(false);
      expect(await directory.listRoles(tenant, user)).toEqual([]);
      expect(await directory.listMembers(tenant, role)).toEqual([]);
    });

    it("lists a user's roles and a role's members, sorted", async () => {
      const [roleZ, roleA] = [await newRole('Zeta'), await newRole('Alpha')];
      const [first, second] = [await newUser(), await newUser()];
      for (const [user, role] of [
        [first, roleZ],
        [first, roleA],
        [second, roleZ],
      ] as const) {
        await directory.assignRole(tenant, user, role);
      }
      expect(await directory.listRoles(tenant, first)).toEqual([roleA, roleZ]);
      expect(await directory.listRoles(tenant, second)).toEqual([roleZ]);
      expect(await directory.listMembers(tenant, roleZ)).toEqual([first, second].sort());
      expect(await directory.listMembers(tenant, roleA)).toEqual([first]);
    });

    it('removing a role never held, from an unknown user, or of an unknown role succeeds and changes nothing', async () => {
      const user = await newUser();
      const [held, other] = [await newRole(), await newRole()];
      await directory.assignRole(tenant, user, held);
      await directory.removeRole(tenant, user, other);
      await directory.removeRole(tenant, fresh('nobody'), held);
      await directory.removeRole(tenant, user, fresh('NoSuchRole'));
      expect(await directory.listRoles(tenant, user)).toEqual([held]);
      expect(await directory.listMembers(tenant, held)).toEqual([user]);
    });

    it('assigning to an unknown user or an unknown role fails for good, naming which is missing', async () => {
      const user = await newUser();
      const role = await newRole();
      const nobody = fresh('nobody');
      const noRole = fresh('NoSuchRole');
      const unknownUser = await directory.assignRole(tenant, nobody, role).catch((error: unknown) => error);
      expect(unknownUser).toBeInstanceOf(DirectoryNotFoundError);
      expect(unknownUser).toMatchObject({ kind: 'user', id: nobody, retryable: false, tenantId: tenant });
      const unknownRole = await directory.assignRole(tenant, user, noRole).catch((error: unknown) => error);
      expect(unknownRole).toBeInstanceOf(DirectoryNotFoundError);
      expect(unknownRole).toMatchObject({ kind: 'role', id: noRole, retryable: false });
      expect(await directory.listRoles(tenant, user)).toEqual([]);
      expect(await directory.listMembers(tenant, role)).toEqual([]);
    });

    it('an unknown user holds nothing and an unknown role has no members', async () => {
      const role = await newRole();
      const nobody = fresh('nobody');
      expect(await directory.hasRole(tenant, nobody, role)).toBe(false);
      expect(await directory.listRoles(tenant, nobody)).toEqual([]);
      expect(await directory.listMembers(tenant, fresh('NoSuchRole'))).toEqual([]);
    });

    it('a disabled user keeps its roles and can be given more', async () => {
      const user = await newUser();
      const [kept, added] = [await newRole('Kept'), await newRole('Added')];
      await directory.assignRole(tenant, user, kept);
      await directory.setUserStatus(tenant, user, 'disabled');
      await directory.assignRole(tenant, user, added);
      expect(await directory.listRoles(tenant, user)).toEqual([added, kept]);
    });

    it('concurrent retries of one assignment, then of one removal, settle on one membership, then none', async () => {
      const [user, bystander] = [await newUser(), await newUser()];
      const role = await newRole();
      await directory.assignRole(tenant, bystander, role);
      await Promise.all(Array.from({ length: 5 }, () => directory.assignRole(tenant, user, role)));
      expect(await directory.listMembers(tenant, role)).toEqual([user, bystander].sort());
      await Promise.all(Array.from({ length: 5 }, () => directory.removeRole(tenant, user, role)));
      expect(await directory.listMembers(tenant, role)).toEqual([bystander]);
    });

    it('ids, usernames and role names with characters special to DNs, filters or URLs round-trip', async () => {
      const id = `${fresh('o')}, Jr.+"x"\\<y>;#=*()/?&%`;
      const role = `${fresh('R')} (a,b)*\\"q"/?&%`;
      await directory.upsertUser(tenant, profile(id, { username: `${id} login*` }));
      await directory.upsertRole(tenant, { name: role });
      await directory.assignRole(tenant, id, role);
      expect(await directory.getUser(tenant, id)).toMatchObject({ id, username: `${id} login*` });
      expect(await directory.hasRole(tenant, id, role)).toBe(true);
      expect(await directory.listRoles(tenant, id)).toEqual([role]);
      expect(await directory.listMembers(tenant, role)).toEqual([id]);
      await directory.removeRole(tenant, id, role);
      expect(await directory.hasRole(tenant, id, role)).toBe(false);
      await directory.setUserStatus(tenant, id, 'deleted');
      expect((await directory.getUser(tenant, id))?.status ?? 'removed').toMatch(/^(deleted|removed)$/);
    });

    it('a membership end is enforced by targets that declare membershipEnd and ignored by the others', async () => {
      const user = await newUser();
      const role = await newRole();
      if (directory.capabilities.membershipEnd) {
        // An end that has passed gives no access: refused where no live membership exists (a late activation)…
        await expect(directory.assignRole(tenant, user, role, yesterday())).rejects.toMatchObject({
          name: 'DirectoryConflictError',
          retryable: false,
        });
        expect(await directory.hasRole(tenant, user, role)).toBe(false);
        // …and a live membership told it stops counting at once (moving the end to now is never refused).
        await directory.assignRole(tenant, user, role, new Date(Date.now() + 3_600_000).toISOString());
        expect(await directory.hasRole(tenant, user, role)).toBe(true);
        await directory.assignRole(tenant, user, role, yesterday());
        expect(await directory.hasRole(tenant, user, role)).toBe(false);
        expect(await directory.listRoles(tenant, user)).toEqual([]);
        expect(await directory.listMembers(tenant, role)).toEqual([]);
      } else {
        await directory.assignRole(tenant, user, role, yesterday());
        // The caller removes the role at the end itself; this target keeps it until then.
        expect(await directory.hasRole(tenant, user, role)).toBe(true);
        expect(await directory.listMembers(tenant, role)).toEqual([user]);
      }
      await directory.assignRole(tenant, user, role, null);
      expect(await directory.hasRole(tenant, user, role)).toBe(true);
    });
  });

  describe('sessions', () => {
    it('revoking sessions ends them where the target keeps sessions, and is refused as unsupported where not', async () => {
      const user = await newUser();
      if (directory.capabilities.sessions) {
        expect(target.openSession).toBeDefined();
        await target.openSession!(tenant, user);
        await target.openSession!(tenant, user);
        expect(await directory.getAccountState(tenant, user)).toMatchObject({ liveSessions: 2 });
        expect(await directory.revokeSessions(tenant, user)).toBe(2);
        expect(await directory.revokeSessions(tenant, user)).toBe(0);
        expect(await directory.getAccountState(tenant, user)).toMatchObject({ liveSessions: 0 });
        expect(await directory.revokeSessions(tenant, fresh('nobody'))).toBe(0);
      } else {
        const error = await directory.revokeSessions(tenant, user).catch((caught: unknown) => caught);
        expect(error).toBeInstanceOf(DirectoryUnsupportedError);
        expect(error).toMatchObject({ capability: 'sessions', connector: directory.kind, retryable: false, tenantId: tenant });
      }
    });
  });

  describe('account actions', () => {
    const unsupported = async (call: Promise<unknown>, capability: string) => {
      const error = await call.catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(DirectoryUnsupportedError);
      expect(error).toMatchObject({ capability, connector: directory.kind, retryable: false, tenantId: tenant });
    };
    const notFound = async (call: Promise<unknown>) => {
      const error = await call.catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(DirectoryNotFoundError);
      expect(error).toMatchObject({ kind: 'user', retryable: false });
    };

    it('the account state has a value for exactly the capabilities the target declares, and none for an unknown user', async () => {
      const user = await newUser();
      const { capabilities } = directory;
      expect(await directory.getAccountState(tenant, user)).toEqual({
        status: 'active',
        locked: capabilities.unlock ? false : null,
        mfaFactors: capabilities.mfaReset ? 0 : null,
        passwordResetRequired: capabilities.passwordReset ? false : null,
        liveSessions: capabilities.sessions ? 0 : null,
      });
      await directory.setUserStatus(tenant, user, 'disabled');
      expect(await directory.getAccountState(tenant, user)).toMatchObject({ status: 'disabled' });
      expect(await directory.getAccountState(tenant, fresh('nobody'))).toBeUndefined();
    });

    it('unlocking lifts a lockout, keeps a disabled account disabled, and repeating it is harmless (or is refused as unsupported)', async () => {
      const user = await newUser();
      if (!directory.capabilities.unlock) return unsupported(directory.unlockUser(tenant, user), 'unlock');
      expect(target.lockUser).toBeDefined();
      await target.lockUser!(tenant, user);
      expect(await directory.getAccountState(tenant, user)).toMatchObject({ status: 'active', locked: true });
      await directory.unlockUser(tenant, user);
      expect(await directory.getAccountState(tenant, user)).toMatchObject({ status: 'active', locked: false });
      await directory.unlockUser(tenant, user);
      expect(await directory.getAccountState(tenant, user)).toMatchObject({ status: 'active', locked: false });

      const disabled = await newUser();
      await target.lockUser!(tenant, disabled);
      await directory.setUserStatus(tenant, disabled, 'disabled');
      await directory.unlockUser(tenant, disabled);
      expect(await directory.getAccountState(tenant, disabled)).toMatchObject({ status: 'disabled', locked: false });
      await notFound(directory.unlockUser(tenant, fresh('nobody')));
    });

    it('resetting MFA removes every enrolled factor once (or is refused as unsupported)', async () => {
      const user = await newUser();
      if (!directory.capabilities.mfaReset) return unsupported(directory.resetMfa(tenant, user), 'mfaReset');
      expect(target.enrollMfa).toBeDefined();
      await target.enrollMfa!(tenant, user);
      await target.enrollMfa!(tenant, user);
      expect(await directory.getAccountState(tenant, user)).toMatchObject({ mfaFactors: 2 });
      expect(await directory.resetMfa(tenant, user)).toBe(2);
      expect(await directory.resetMfa(tenant, user)).toBe(0);
      expect(await directory.getAccountState(tenant, user)).toMatchObject({ mfaFactors: 0 });
      await notFound(directory.resetMfa(tenant, fresh('nobody')));
    });

    it('a required password reset reads back, and requiring it again is harmless (or is refused as unsupported)', async () => {
      const user = await newUser();
      if (!directory.capabilities.passwordReset) return unsupported(directory.requirePasswordReset(tenant, user), 'passwordReset');
      await directory.requirePasswordReset(tenant, user);
      await directory.requirePasswordReset(tenant, user);
      expect(await directory.getAccountState(tenant, user)).toMatchObject({ status: 'active', passwordResetRequired: true });
      await notFound(directory.requirePasswordReset(tenant, fresh('nobody')));
    });
  });

  describe('security settings', () => {
    const capable = () => DIRECTORY_SETTING_NAMES.filter((name) => directory.capabilities[SETTING_CAPABILITY[name]]);

    it('read back a value for exactly the settings whose capability the target declares, null for the others', async () => {
      const settings = await directory.getSecuritySettings(tenant);
      for (const name of DIRECTORY_SETTING_NAMES) {
        if (directory.capabilities[SETTING_CAPABILITY[name]]) expect(settings[name], name).not.toBeNull();
        else expect(settings[name], name).toBeNull();
      }
    });

    it('applying some settings reads them back, leaves the others alone, and repeating it is harmless', async () => {
      const change: PartialDirectorySecuritySettings = {
        mfaRequired: true,
        passwordMinLength: 14,
        lockoutThreshold: 5,
        sessionLifetimeMinutes: 480,
      };
      const held = Object.fromEntries(Object.entries(change).filter(([name]) => capable().includes(name as DirectorySettingName)));
      if (Object.keys(held).length === 0) return; // nothing to apply: the refusal is the next test's
      const before = await directory.getSecuritySettings(tenant);
      await directory.applySecuritySettings(tenant, held);
      await directory.applySecuritySettings(tenant, held);
      const after = await directory.getSecuritySettings(tenant);
      expect(after).toEqual({ ...before, ...held });
    });

    it('a setting the target cannot hold is refused as unsupported, naming its capability, and nothing is applied', async () => {
      const missing = DIRECTORY_SETTING_NAMES.find((name) => !directory.capabilities[SETTING_CAPABILITY[name]]);
      if (!missing) return expect(capable()).toEqual(DIRECTORY_SETTING_NAMES);
      const before = await directory.getSecuritySettings(tenant);
      const alongside = capable()[0];
      const change = {
        [missing]: DEFAULT_DIRECTORY_SETTINGS[missing],
        ...(alongside ? { [alongside]: DEFAULT_DIRECTORY_SETTINGS[alongside] } : {}),
      };
      const error = await directory.applySecuritySettings(tenant, change).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(DirectoryUnsupportedError);
      expect(error).toMatchObject({
        capability: SETTING_CAPABILITY[missing],
        connector: directory.kind,
        retryable: false,
        tenantId: tenant,
      });
      expect(await directory.getSecuritySettings(tenant)).toEqual(before);
    });
  });

  describe('failures', () => {
    const calls: [string, (connector: DirectoryConnector, tenantId: string) => Promise<unknown>][] = [
      ['getUser', (c, t) => c.getUser(t, 'ana')],
      ['upsertUser', (c, t) => c.upsertUser(t, { id: 'ana', username: 'ana', displayName: 'Ana' })],
      ['setUserStatus', (c, t) => c.setUserStatus(t, 'ana', 'disabled')],
      ['upsertRole', (c, t) => c.upsertRole(t, { name: 'Admins' })],
      ['assignRole', (c, t) => c.assignRole(t, 'ana', 'Admins')],
      ['removeRole', (c, t) => c.removeRole(t, 'ana', 'Admins')],
      ['hasRole', (c, t) => c.hasRole(t, 'ana', 'Admins')],
      ['listRoles', (c, t) => c.listRoles(t, 'ana')],
      ['listMembers', (c, t) => c.listMembers(t, 'Admins')],
      ['getAccountState', (c, t) => c.getAccountState(t, 'ana')],
    ];

    it.each(calls)('an unreachable target fails %s as retryable, naming the tenant and no secret', async (_name, call) => {
      const error = await call(target.unreachable, tenant).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(DirectoryUnavailableError);
      expect(error).toMatchObject({ retryable: true, tenantId: tenant });
      for (const secret of target.secrets) expect((error as Error).message).not.toContain(secret);
    });

    it.each(calls)('a target refusing the credentials fails %s for good, naming the tenant and no secret', async (_name, call) => {
      const error = await call(target.refused, tenant).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(DirectoryRejectedError);
      expect(error).toMatchObject({ retryable: false, tenantId: tenant });
      for (const secret of target.secrets) expect((error as Error).message).not.toContain(secret);
    });
  });
});
