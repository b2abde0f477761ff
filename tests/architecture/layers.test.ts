import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

/**
 * The layer rules live in eslint.boundaries.js; these cases prove lint fails on each kind of
 * violation (and passes the allowed forms), so the rule cannot be switched off unnoticed.
 */
const eslint = new ESLint();

async function boundaryErrors(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return result!.messages.filter((m) => m.ruleId === 'boundaries/dependencies').map((m) => m.message);
}

describe('layer boundaries', () => {
  it.each([
    [
      'a use case reaching up into api/',
      'usecases/grants.ts',
      "import { authenticate } from '../api/auth.js';\nexport const a = authenticate;\n",
    ],
    [
      'a use case importing its sibling activities/',
      'usecases/grants.ts',
      "import { createActivities } from '../activities/index.js';\nexport const a = createActivities;\n",
    ],
    [
      'an activity importing a use case',
      'activities/grants/activities.ts',
      "import { getGrant } from '../../usecases/grants.js';\nexport const a = getGrant;\n",
    ],
    ['data access reaching up into api/', 'db/grants.ts', "import { createApp } from '../api/app.js';\nexport const a = createApp;\n"],
    ['core importing db/', 'core/grants/contract.ts', "import { ping } from '../../db/pool.js';\nexport const a = ping;\n"],
    [
      'a workflow importing activities by value',
      'workflows/grants/workflow.ts',
      "import { createActivities } from '../../activities/index.js';\nexport const a = createActivities;\n",
    ],
    [
      'a workflow importing db/, even as a type',
      'workflows/grants/workflow.ts',
      "import type { Pool } from '../../db/pool.js';\nexport type A = Pool;\n",
    ],
    [
      'one domain reaching into another domain outside its contract',
      'activities/lifecycle/activities.ts',
      "import { createGrantActivities } from '../grants/activities.js';\nexport const a = createGrantActivities;\n",
    ],
  ])('refused: %s', async (_situation, filePath, code) => {
    expect(await boundaryErrors(filePath, code)).not.toEqual([]);
  });

  it.each([
    [
      'a typed start over a type-only workflow import',
      'usecases/grants.ts',
      "import type { grantWorkflow } from '../workflows/grants/workflow.js';\nexport type A = typeof grantWorkflow;\n",
    ],
    [
      'a workflow proxying activities by their type',
      'workflows/grants/workflow.ts',
      "import type { Activities } from '../../activities/index.js';\nexport type A = Activities;\n",
    ],
    [
      'a domain using another domain’s contract',
      'activities/lifecycle/activities.ts',
      "import { grantWorkflowId } from '../../core/grants/contract.js';\nexport const a = grantWorkflowId;\n",
    ],
    [
      'a use case reading the tenant policy below it',
      'usecases/lifecycle.ts',
      "import { currentPolicy } from '../db/tenancy.js';\nexport const a = currentPolicy;\n",
    ],
  ])('allowed: %s', async (_situation, filePath, code) => {
    expect(await boundaryErrors(filePath, code)).toEqual([]);
  });
});
