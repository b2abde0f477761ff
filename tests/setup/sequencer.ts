import path from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The files that take longest, longest first (from CI runs on a two-core machine). The run
 * schedules whole files on a few forks, so a long file started last decides when the run ends;
 * started first, it runs beside the many short ones. Without this, a fresh checkout (no timings
 * cached by an earlier run) starts the largest files first, which are not the longest.
 * Order only changes how long the run takes, never what it tests.
 */
const LONGEST_FIRST = [
  'tests/templates/rollouts-bench-faults.e2e.test.ts',
  'tests/campaigns/campaigns-bench-faults.e2e.test.ts',
  'tests/grants/grant-revocation.workflow.test.ts',
  'tests/lifecycle/hr-import.e2e.test.ts',
  'tests/start.e2e.test.ts',
  'tests/grants/grants.e2e.test.ts',
  'tests/templates/rollouts.e2e.test.ts',
  'tests/authz-matrix.e2e.test.ts',
  'tests/campaigns/campaign.workflow.test.ts',
  'tests/templates/rollout.workflow.test.ts',
  'tests/cli.e2e.test.ts',
  'tests/console/pages.e2e.test.ts',
  'tests/grants/grant.workflow.test.ts',
  'tests/templates/rollback.e2e.test.ts',
  'tests/templates/drift.e2e.test.ts',
  'tests/audit/audit-api.e2e.test.ts',
  'tests/lifecycle/lifecycle.e2e.test.ts',
  'tests/lifecycle/person.workflow.test.ts',
  'tests/templates/templates.e2e.test.ts',
  'tests/console/grants.e2e.test.ts',
  'tests/templates/attack.e2e.test.ts',
];

/** Vitest's own order (failed first, then longest by cached timings, else largest), the files above first. */
export class LongestFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (spec: TestSpecification) => {
      const index = LONGEST_FIRST.indexOf(path.relative(spec.project.config.root, spec.moduleId).split(path.sep).join('/'));
      return index === -1 ? LONGEST_FIRST.length : index;
    };
    // Array.prototype.sort is stable: the rest keep vitest's order.
    return sorted.sort((a, b) => rank(a) - rank(b));
  }
}
