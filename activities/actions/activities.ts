import { ApplicationFailure } from '@temporalio/activity';
import {
  ACTION_CAPABILITY,
  ACTION_NOT_CONFIRMED,
  ACTION_REFUSED,
  actionConfirmed,
  type ActionType,
  type ActionView,
} from '../../core/actions/contract.js';
import {
  DirectoryNotFoundError,
  DirectoryUnsupportedError,
  type DirectoryAccountState,
  type DirectoryConnector,
  type DirectoryResolver,
} from '../../core/directory/connector.js';
import { upsertActionRow } from '../../db/actions.js';
import type { Pool } from '../../db/pool.js';
import { inScope, mspScope, tenantScope } from '../../db/scope.js';
import { countingApprovers, getTenantRow } from '../../db/tenancy.js';
import type { Clock } from '../index.js';
import { appendWorkflowEvent, type WorkflowEvent } from '../audit/record.js';
import { directoryCall, directoryFailure } from '../directory/ledger.js';

export interface RecordActionEventInput extends WorkflowEvent {
  view: ActionView;
}

export interface ActionStepInput {
  tenantId: string;
  subjectId: string;
  action: ActionType;
}

const refused = (message: string) => ApplicationFailure.create({ type: ACTION_REFUSED, message, nonRetryable: true });

/**
 * Remote-action activities: read the subject's account, carry the action out through the tenant's
 * connector, read it back. Each is safe to retry: every connector operation they call is
 * idempotent, and the audit event is written once by the id the workflow made. A permanent
 * refusal (no such user, a capability the target lacks) fails without retries.
 */
export function createActionActivities({ pool, directories, clock }: { pool: Pool; directories: DirectoryResolver; clock: Clock }) {
  /** The connector of the tenant's own target, for this call: the one place this domain chooses it. */
  const targetOf = (tenantId: string): Promise<DirectoryConnector> => directoryCall(() => directories.directoryFor(tenantId));

  async function readAccount(input: ActionStepInput, target?: DirectoryConnector): Promise<DirectoryAccountState> {
    const directory = target ?? (await targetOf(input.tenantId));
    const state = await directoryCall(() => directory.getAccountState(input.tenantId, input.subjectId));
    if (!state || state.status === 'deleted') throw refused(`no user ${input.subjectId} in the tenant's directory`);
    return state;
  }

  return {
    async recordActionEvent(input: RecordActionEventInput): Promise<{ seq: number }> {
      return inScope(pool, tenantScope(input.view.tenantId), async (client) => {
        await upsertActionRow(client, input.view);
        const event = await appendWorkflowEvent(
          client,
          clock,
          input.view.tenantId,
          { type: 'action', id: input.view.actionId },
          {
            ...input,
            payload: { ...input.payload, status: input.view.status, action: input.view.action, subjectId: input.view.subjectId },
          },
        );
        return { seq: event.seq };
      });
    },

    /**
     * Which of the action's approvers still count now, just before it runs: active and still bound
     * as tenant_approver in the tenant. An approval given by someone unbound since does not.
     */
    async checkActionApprovers(input: { tenantId: string; approverIds: string[] }): Promise<{ counting: string[] }> {
      // Actors and bindings are identity data that RLS may hide from a tenant scope.
      return { counting: await inScope(pool, mspScope, (client) => countingApprovers(client, input.approverIds, input.tenantId)) };
    },

    /**
     * The account before anything changes, once the action may run at all: the tenant is active,
     * its target has the capability the action needs, and the subject exists there.
     */
    async prepareAction(input: ActionStepInput): Promise<{ before: DirectoryAccountState; target: string }> {
      const tenant = await inScope(pool, tenantScope(input.tenantId), (client) => getTenantRow(client, input.tenantId));
      if (tenant?.status !== 'active') throw refused('the tenant is not active');
      const target = await targetOf(input.tenantId);
      const capability = ACTION_CAPABILITY[input.action];
      if (capability && !target.capabilities[capability])
        throw directoryFailure(new DirectoryUnsupportedError(capability, target.kind, input.tenantId));
      return { before: await readAccount(input, target), target: target.kind };
    },

    /** Carries the action out; says what the target reported, for the evidence. */
    async executeAction(input: ActionStepInput): Promise<{ outcome: string }> {
      const { tenantId, subjectId } = input;
      const target = await targetOf(tenantId);
      return directoryCall(async () => {
        switch (input.action) {
          case 'unlock':
            await target.unlockUser(tenantId, subjectId);
            return { outcome: 'lockout lifted' };
          case 'reset_mfa':
            return { outcome: `${await target.resetMfa(tenantId, subjectId)} second factor(s) removed` };
          case 'revoke_sessions': {
            // revokeSessions answers 0 for an unknown user; an action on nobody is a refusal, not a success.
            if (!(await target.getUser(tenantId, subjectId))) throw new DirectoryNotFoundError('user', subjectId, tenantId);
            return { outcome: `${await target.revokeSessions(tenantId, subjectId)} session(s) ended` };
          }
          case 'force_password_reset':
            await target.requirePasswordReset(tenantId, subjectId);
            return { outcome: 'a new password is required at the next sign-in' };
          case 'disable_account':
            await target.setUserStatus(tenantId, subjectId, 'disabled');
            return { outcome: 'account disabled' };
        }
      });
    },

    /** Reads the target back; fails (retryably) while it does not show the action done. */
    async verifyAction(input: ActionStepInput): Promise<{ after: DirectoryAccountState }> {
      const target = await targetOf(input.tenantId);
      const after = await readAccount(input, target);
      if (!actionConfirmed(input.action, after)) {
        throw ApplicationFailure.create({
          type: ACTION_NOT_CONFIRMED,
          message: `the ${target.kind} directory does not show ${input.action} done: ${JSON.stringify(after)}`,
        });
      }
      return { after };
    },
  };
}
