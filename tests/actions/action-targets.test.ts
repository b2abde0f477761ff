import { randomBytes } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActionActivities } from '../../activities/actions/activities.js';
import { systemClock } from '../../activities/index.js';
import { ACTION_CAPABILITY, ACTION_REFUSED, ACTION_TYPES, type ActionType } from '../../core/actions/contract.js';
import { DIRECTORY_TARGET_REJECTED, singleDirectory } from '../../core/directory/connector.js';
import { createPool, type Pool } from '../../db/pool.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { startDirectoryTarget, type DirectoryTarget } from '../support/directory-targets.js';

/**
 * The action activities (prepare → execute → read back) against the real LDAP and SCIM targets:
 * each action a target supports is carried out and confirmed; each one it lacks is refused
 * before anything changes, naming the capability. The built-in directory runs the whole
 * workflow in actions.e2e.test.ts.
 */
let db: TestDatabase;
let pool: Pool;

beforeAll(async () => {
  db = await createTestDatabase();
  pool = createPool({ connectionString: db.appUrl, max: 2 });
});
afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

describe.each([
  ['LDAP (OpenLDAP slapd)', 'ldap', ['unlock', 'force_password_reset', 'disable_account']],
  ['SCIM 2.0 (scim2-server)', 'scim', ['disable_account']],
] as const)('remote actions on %s', (_label, kind, supported: readonly ActionType[]) => {
  let target: DirectoryTarget;
  let activities: ReturnType<typeof createActionActivities>;

  beforeAll(async () => {
    target = await startDirectoryTarget(kind);
    const slug = `act-${randomBytes(4).toString('hex')}`;
    await db.pool.query('INSERT INTO tenants (id, slug, name, created_by) VALUES ($1, $2, $3, $4)', [
      target.tenantId,
      slug,
      slug,
      'action targets test',
    ]);
    activities = createActionActivities({ pool, directories: singleDirectory(target.connector), clock: systemClock });
  });
  afterAll(async () => {
    await target?.stop();
  });

  const newUser = async () => {
    const user = `u-${randomBytes(4).toString('hex')}`;
    await target.connector.upsertUser(target.tenantId, { id: user, username: `${user}.login`, displayName: user });
    return user;
  };

  it.each(supported)('%s is carried out and confirmed by reading the target back', async (action) => {
    const subjectId = await newUser();
    if (action === 'unlock') await target.lockUser!(target.tenantId, subjectId);
    const step = { tenantId: target.tenantId, subjectId, action };
    const { before, target: used } = await activities.prepareAction(step);
    expect(used).toBe(kind);
    expect(before.status).toBe('active');
    if (action === 'unlock') expect(before.locked).toBe(true);
    await activities.executeAction(step);
    const { after } = await activities.verifyAction(step);
    expect(after).toMatchObject(
      { unlock: { locked: false }, force_password_reset: { passwordResetRequired: true }, disable_account: { status: 'disabled' } }[
        action as 'unlock' | 'force_password_reset' | 'disable_account'
      ],
    );
  });

  it.each(ACTION_TYPES.filter((action) => !supported.includes(action)))(
    '%s is refused before anything changes, naming the missing capability',
    async (action) => {
      const subjectId = await newUser();
      const error = await activities.prepareAction({ tenantId: target.tenantId, subjectId, action }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(ApplicationFailure);
      expect(error).toMatchObject({ type: DIRECTORY_TARGET_REJECTED, nonRetryable: true });
      expect((error as Error).message).toContain(`lacks the ${ACTION_CAPABILITY[action]} capability`);
      expect(await target.connector.getAccountState(target.tenantId, subjectId)).toMatchObject({ status: 'active' });
    },
  );

  it('an action on a user the target does not have is refused for good', async () => {
    const error = await activities
      .prepareAction({ tenantId: target.tenantId, subjectId: 'nobody-here', action: 'disable_account' })
      .catch((caught: unknown) => caught);
    expect(error).toMatchObject({ type: ACTION_REFUSED, nonRetryable: true });
  });
});
