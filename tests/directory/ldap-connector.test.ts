import { randomBytes } from 'node:crypto';
import { Attribute, Change, Client, InsufficientAccessError, InvalidCredentialsError } from 'ldapts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLdapDirectory, escapeDnValue, PPOLICY_ADMIN_LOCK, type LdapDirectory } from '../../connectors/directory/ldap.js';
import { DirectoryUnavailableError } from '../../core/directory/connector.js';
import { LdapTargetSettings, type LdapTargetSettingsInput } from '../../core/directory/targets.js';
import { startSlapd, type Slapd } from '../support/directory-targets.js';

/**
 * What only LDAP has: the ppolicy lock really refusing a bind, a disable attribute, groups the
 * directory's own administrators made, and a restart of the server under a pooled connection.
 * The behaviours every target shares are in connector-contract.test.ts.
 */
let slapd: Slapd;
const opened: LdapDirectory[] = [];
const tenant = 'ldap-tenant';
const fresh = (prefix: string) => `${prefix}-${randomBytes(5).toString('hex')}`;

function connector(overrides: Partial<LdapTargetSettingsInput> = {}): LdapDirectory {
  const directory = createLdapDirectory(LdapTargetSettings.parse(slapd.settings(overrides)), { bindPassword: slapd.bindPassword });
  opened.push(directory);
  return directory;
}

async function asAdmin<T>(fn: (client: Client) => Promise<T>): Promise<T> {
  const client = await slapd.admin();
  try {
    return await fn(client);
  } finally {
    await client.unbind();
  }
}

const userDn = (id: string) => `uid=${escapeDnValue(id)},${slapd.usersDn}`;

/** Binds as the user with its password: what a sign-in to this directory does. */
async function canBind(id: string, password: string): Promise<boolean> {
  const client = new Client({ url: slapd.url, timeout: 5_000, connectTimeout: 5_000 });
  try {
    await client.bind(userDn(id), password);
    return true;
  } catch (error) {
    if (error instanceof InvalidCredentialsError) return false;
    throw error;
  } finally {
    await client.unbind();
  }
}

beforeAll(async () => {
  slapd = await startSlapd();
});
afterAll(async () => {
  await Promise.all(opened.map((directory) => directory.close()));
  await slapd?.stop();
});

describe('LDAP connector', () => {
  it('disabling sets the ppolicy administrative lock, which refuses the user’s bind until re-enabled', async () => {
    const directory = connector();
    const id = fresh('u');
    const password = randomBytes(8).toString('hex');
    await directory.upsertUser(tenant, { id, username: `${id}.login`, displayName: 'Bind Test' });
    await asAdmin((client) =>
      client.modify(
        userDn(id),
        new Change({ operation: 'replace', modification: new Attribute({ type: 'userPassword', values: [password] }) }),
      ),
    );
    expect(await canBind(id, password)).toBe(true);

    await directory.setUserStatus(tenant, id, 'disabled');
    const locked = await asAdmin((client) => client.search(userDn(id), { scope: 'base', attributes: ['pwdAccountLockedTime'] }));
    expect(locked.searchEntries[0]?.pwdAccountLockedTime).toBe(PPOLICY_ADMIN_LOCK);
    expect(await canBind(id, password)).toBe(false);

    await directory.setUserStatus(tenant, id, 'active');
    expect(await canBind(id, password)).toBe(true);
  });

  it('a lockout after failed binds (a dated pwdAccountLockedTime) is not a disabled account', async () => {
    const directory = connector();
    const id = fresh('u');
    await directory.upsertUser(tenant, { id, username: `${id}.login`, displayName: 'Locked Out' });
    await asAdmin((client) =>
      client.modify(
        userDn(id),
        new Change({ operation: 'replace', modification: new Attribute({ type: 'pwdAccountLockedTime', values: ['20300101000000Z'] }) }),
      ),
    );
    expect((await directory.getUser(tenant, id))?.status).toBe('active');
  });

  describe('remote actions against ppolicy', () => {
    /** A user under a strict policy of its own: locked out after 2 failed binds, must change a reset password. */
    async function strictUser(): Promise<{ directory: LdapDirectory; id: string; password: string }> {
      const directory = connector();
      const id = fresh('u');
      const password = randomBytes(8).toString('hex');
      await directory.upsertUser(tenant, { id, username: `${id}.login`, displayName: 'Strict Policy' });
      const policy = `cn=${fresh('strict')},ou=policies,${slapd.baseDn}`;
      await asAdmin(async (client) => {
        await client.add(policy, {
          objectClass: ['organizationalRole', 'pwdPolicy'],
          cn: policy.split(',')[0]!.slice(3),
          pwdAttribute: 'userPassword',
          pwdLockout: 'TRUE',
          pwdMaxFailure: '2',
          pwdMustChange: 'TRUE',
        });
        await client.modify(userDn(id), [
          new Change({ operation: 'replace', modification: new Attribute({ type: 'userPassword', values: [password] }) }),
          new Change({ operation: 'replace', modification: new Attribute({ type: 'pwdPolicySubentry', values: [policy] }) }),
        ]);
      });
      return { directory, id, password };
    }

    it('failed binds lock the user out; unlock lets the right password bind again, without re-enabling a disabled user', async () => {
      const { directory, id, password } = await strictUser();
      expect(await canBind(id, 'wrong')).toBe(false);
      expect(await canBind(id, 'wrong')).toBe(false);
      expect(await canBind(id, password)).toBe(false);
      expect(await directory.getAccountState(tenant, id)).toMatchObject({ status: 'active', locked: true });

      await directory.unlockUser(tenant, id);
      expect(await directory.getAccountState(tenant, id)).toMatchObject({ status: 'active', locked: false });
      expect(await canBind(id, password)).toBe(true);

      await directory.setUserStatus(tenant, id, 'disabled');
      await directory.unlockUser(tenant, id);
      expect(await directory.getAccountState(tenant, id)).toMatchObject({ status: 'disabled', locked: false });
      expect(await canBind(id, password)).toBe(false);
    });

    it('a required password reset sets pwdReset: the user still binds but may do nothing until the password changes', async () => {
      const { directory, id, password } = await strictUser();
      const client = new Client({ url: slapd.url, timeout: 5_000, connectTimeout: 5_000 });
      try {
        await client.bind(userDn(id), password);
        expect((await client.search(userDn(id), { scope: 'base', attributes: ['uid'] })).searchEntries).toHaveLength(1);
      } finally {
        await client.unbind();
      }

      await directory.requirePasswordReset(tenant, id);
      const entry = await asAdmin((admin) => admin.search(userDn(id), { scope: 'base', attributes: ['pwdReset'] }));
      expect(entry.searchEntries[0]?.pwdReset).toBe('TRUE');
      expect(await directory.getAccountState(tenant, id)).toMatchObject({ passwordResetRequired: true });
      const restricted = new Client({ url: slapd.url, timeout: 5_000, connectTimeout: 5_000 });
      try {
        await restricted.bind(userDn(id), password);
        await expect(restricted.search(userDn(id), { scope: 'base', attributes: ['uid'] })).rejects.toBeInstanceOf(InsufficientAccessError);
      } finally {
        await restricted.unbind();
      }
    });
  });

  it('with disable mode "attribute", the configured attribute carries the disabled and enabled values', async () => {
    const directory = connector({
      disable: { mode: 'attribute', attribute: 'description', disabledValue: 'DISABLED', enabledValue: 'ENABLED' },
    });
    const id = fresh('u');
    const description = async () =>
      (await asAdmin((client) => client.search(userDn(id), { scope: 'base', attributes: ['description', 'pwdAccountLockedTime'] })))
        .searchEntries[0];
    await directory.upsertUser(tenant, { id, username: `${id}.login`, displayName: 'Attr', initialStatus: 'disabled' });
    expect(await description()).toMatchObject({ description: 'DISABLED' });
    // ldapts answers a requested attribute the entry lacks with [].
    expect((await description())?.pwdAccountLockedTime).toEqual([]);
    expect((await directory.getUser(tenant, id))?.status).toBe('disabled');
    await directory.setUserStatus(tenant, id, 'active');
    expect(await description()).toMatchObject({ description: 'ENABLED' });
    expect((await directory.getUser(tenant, id))?.status).toBe('active');
  });

  it('emptying a group the directory’s administrators made without a placeholder keeps it a valid groupOfNames', async () => {
    const directory = connector();
    const id = fresh('u');
    const role = fresh('Legacy');
    await directory.upsertUser(tenant, { id, username: `${id}.login`, displayName: 'Only Member' });
    await asAdmin((client) =>
      client.add(`cn=${role},${slapd.groupsDn}`, { objectClass: ['groupOfNames'], cn: role, member: [userDn(id)] }),
    );
    expect(await directory.listMembers(tenant, role)).toEqual([id]);
    await directory.removeRole(tenant, id, role);
    expect(await directory.listMembers(tenant, role)).toEqual([]);
    expect(await directory.hasRole(tenant, id, role)).toBe(false);
  });

  it('a member that is no Tenure user (a nested group, a dangling DN) is not reported as a member', async () => {
    const directory = connector();
    const id = fresh('u');
    const role = await (async () => {
      const name = fresh('Mixed');
      await directory.upsertRole(tenant, { name });
      return name;
    })();
    await directory.upsertUser(tenant, { id, username: `${id}.login`, displayName: 'Real' });
    await directory.assignRole(tenant, id, role);
    await asAdmin((client) =>
      client.modify(
        `cn=${role},${slapd.groupsDn}`,
        new Change({
          operation: 'add',
          modification: new Attribute({ type: 'member', values: [`cn=other,${slapd.groupsDn}`, userDn(fresh('gone'))] }),
        }),
      ),
    );
    expect(await directory.listMembers(tenant, role)).toEqual([id]);
  });

  it('while the server is down calls fail as retryable; the same connector (its pooled connection gone) recovers after', async () => {
    const directory = connector();
    const id = fresh('u');
    await directory.upsertUser(tenant, { id, username: `${id}.login`, displayName: 'Before' });
    await slapd.down();
    try {
      await expect(directory.getUser(tenant, id)).rejects.toBeInstanceOf(DirectoryUnavailableError);
      await expect(directory.removeRole(tenant, id, 'Any')).rejects.toMatchObject({ retryable: true });
    } finally {
      await slapd.up();
    }
    expect(await directory.getUser(tenant, id)).toMatchObject({ id, displayName: 'Before' });
    await directory.upsertUser(tenant, { id, username: `${id}.login`, displayName: 'After' });
    expect(await directory.getUser(tenant, id)).toMatchObject({ displayName: 'After' });
  });

  it('settings refuse a user attribute mapped onto an attribute the connector manages', () => {
    const result = LdapTargetSettings.safeParse(slapd.settings({ attributeMap: { nickname: 'cn', department: 'departmentNumber' } }));
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((issue) => issue.path.join('.'))).toEqual(['attributeMap.nickname']);
  });
});
