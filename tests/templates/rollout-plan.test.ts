import { describe, expect, it } from 'vitest';
import { budgetExceeded, planWaves } from '../../core/templates/rollouts.js';

const tenants = Array.from({ length: 10 }, (_, i) => `t${i}`);
const sizes = (result: ReturnType<typeof planWaves>) => ('waves' in result ? result.waves.map((w) => [w.name, w.tenants.length]) : result);

describe('rollout waves', () => {
  it('a named canary comes first, in the rollout’s order; the rest go by count, then percentage of those after the canary, then whatever is left', () => {
    const planned = planWaves(tenants, { canary: { tenants: ['t5', 't2'] }, waves: [{ count: 3 }, { percent: 25 }] });
    expect(planned).toEqual({
      waves: [
        { name: 'canary', tenants: ['t2', 't5'] },
        { name: 'wave 1', tenants: ['t0', 't1', 't3'] },
        { name: 'wave 2', tenants: ['t4', 't6'] },
        { name: 'wave 3', tenants: ['t7', 't8', 't9'] },
      ],
    });
  });

  it('a canary by count takes the first tenants; a percentage rounds up to at least one; waves past the last tenant are dropped', () => {
    expect(sizes(planWaves(tenants, { canary: { count: 1 }, waves: [{ percent: 1 }, { count: 20 }, { count: 1 }] }))).toEqual([
      ['canary', 1],
      ['wave 1', 1],
      ['wave 2', 8],
    ]);
    expect(sizes(planWaves(tenants, {}))).toEqual([['wave 1', 10]]);
  });

  it('a canary naming a tenant outside the rollout, or more tenants than it has, is refused by field path', () => {
    expect(planWaves(tenants, { canary: { tenants: ['t1', 'x'] } })).toEqual({
      issues: [{ path: 'body.canary.tenants.1', message: 'not among the rollout’s tenants' }],
    });
    expect(planWaves(tenants, { canary: { count: 11 } })).toEqual({
      issues: [{ path: 'body.canary.count', message: 'more than the rollout’s 10 tenants' }],
    });
  });
});

describe('error budget', () => {
  it('halts past the count or past the share of the wave, whichever comes first', () => {
    expect(budgetExceeded({ maxFailures: 1, maxFailurePercent: null }, 1, 10)).toBeNull();
    expect(budgetExceeded({ maxFailures: 1, maxFailurePercent: null }, 2, 10)).toBe('more than 1 failure');
    expect(budgetExceeded({ maxFailures: 0, maxFailurePercent: null }, 1, 10)).toBe('more than 0 failures');
    expect(budgetExceeded({ maxFailures: null, maxFailurePercent: 20 }, 2, 10)).toBeNull();
    expect(budgetExceeded({ maxFailures: null, maxFailurePercent: 20 }, 3, 10)).toBe('more than 20% of 10 tenants');
    expect(budgetExceeded({ maxFailures: 5, maxFailurePercent: 20 }, 3, 10)).toBe('more than 20% of 10 tenants');
    expect(budgetExceeded({ maxFailures: null, maxFailurePercent: null }, 10, 10)).toBeNull();
  });
});
