import { describe, expect, it } from 'vitest';
import { cpuTotal } from '../../bench/cpu.js';
import { measureBatch, type BatchResult } from '../../bench/grants/measure.js';
import type { GrantView } from '../../core/grants/contract.js';
import { parseGrantsBenchOptions } from '../../bench/grants/options.js';
import { grantsSummary, type SideResult } from '../../bench/grants/report.js';
import { parseLifecycleBenchOptions } from '../../bench/lifecycle/options.js';
import { lifecycleSummary } from '../../bench/lifecycle/report.js';
import { peakRssMbOf } from '../../bench/workers.js';

/** The grants and lifecycle benches' summary lines: the keys issue #16 asks for, computed from what each side measured. */

const batch = (over: Partial<BatchResult>): BatchResult => ({
  seconds: 10,
  views: [],
  completed: 10,
  windowPassed: 0,
  lagsMs: [],
  activationDelaysMs: [],
  activationSpanMs: 0,
  ...over,
});
const side = (cpu: BatchResult['cpuMsPerGrant'], lagsMs: number[]): SideResult => ({
  warm: batch({}),
  throughput: batch({ cpuMsPerGrant: cpu }),
  burst: batch({ lagsMs }),
  expireAfter: 12,
  windowPassed: 0,
});

describe('bench summaries', () => {
  it('grants: CPU counts the worker process, and the lag and RSS ratios are real ÷ floor', () => {
    const real = side({ benchProcess: 50, worker: 100, temporalServer: 200, postgres: 50 }, [100, 200, 300, 400]);
    const floor = side({ benchProcess: 40, worker: 60, temporalServer: 180, postgres: 0 }, [100, 150, 200, 250]);
    const summary = grantsSummary(parseGrantsBenchOptions([]), real, floor, { workerRssMb: 330, floorWorkerRssMb: 300 });
    expect(summary).toMatchObject({
      cpuRatio: 0.7, // 280 / 400
      expiryLagP99Ms: 400,
      floorExpiryLagP99Ms: 250,
      expiryLagP99Ratio: 1.6,
      workerRssMb: 330,
      floorWorkerRssMb: 300,
      workerRssRatio: 1.1,
    });
  });

  it('grants: with both workers in the bench process (a real target), no floor RSS and no RSS ratio', () => {
    const s = side({ benchProcess: 100, temporalServer: 100, postgres: 10 }, [1]);
    const summary = grantsSummary(parseGrantsBenchOptions([]), s, s, { workerRssMb: 500, floorWorkerRssMb: undefined });
    expect(summary.workerRssMb).toBe(500);
    expect(summary).not.toHaveProperty('workerRssRatio');
    expect(summary).not.toHaveProperty('floorWorkerRssMb');
  });

  it('lifecycle: per-event CPU includes the worker process, and workerRssRatio is real ÷ floor', () => {
    const phase = (worker: number, postgres: number) => ({
      seconds: 5,
      latenciesMs: [1, 2],
      cpu: { benchProcess: 100, worker, temporalServer: 300, postgres },
    });
    const summary = lifecycleSummary(parseLifecycleBenchOptions(['--people', '10', '--tenants', '2']), {
      roleCount: 20,
      real: { join: phase(200, 100), leave: phase(200, 100) },
      floor: { join: phase(100, 0), leave: phase(100, 0) },
      residualEntitlements: 0,
      workerRssMb: 400,
      floorWorkerRssMb: 320,
    });
    expect(summary.cpuMsPerEvent).toEqual({ benchProcess: 10, worker: 20, temporalServer: 30, postgres: 10 });
    expect(summary).toMatchObject({ cpuRatio: 0.714, workerRssRatio: 1.25 });
  });

  it('grants: a batch counts an activation refused after the window as a window passed, and stops at any other end', () => {
    const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();
    const view = (over: Partial<GrantView>) =>
      ({
        workflowId: 'grant/x',
        status: 'ended',
        endReason: 'expired',
        startAt: at(0),
        endAt: at(10),
        activatedAt: null,
        revocationVerifiedAt: null,
        ...over,
      }) as GrantView;
    const expired = view({ activatedAt: at(1), revocationVerifiedAt: at(11) });
    const refused = view({ endReason: 'failed' });
    const passed = view({});
    const measured = measureBatch([expired, ...Array<GrantView>(9).fill(expired), refused], 11, Date.now());
    expect(measured).toMatchObject({ completed: 10, windowPassed: 1, lagsMs: Array<number>(10).fill(1000) });
    expect(measureBatch([...Array<GrantView>(10).fill(expired), passed], 11, Date.now())).toMatchObject({ windowPassed: 1 });
    // Revoked or cancelled: not what a bench grant may do.
    expect(() =>
      measureBatch([expired, view({ endReason: 'revoked', activatedAt: at(1), revocationVerifiedAt: at(5) })], 2, Date.now()),
    ).toThrow(/ended\/revoked/);
    expect(() => measureBatch([expired, view({ status: 'cancelled', endReason: null })], 2, Date.now())).toThrow(/cancelled/);
  });

  it('cpuTotal adds the worker process when there is one', () => {
    expect(cpuTotal({ benchProcess: 1, worker: 2, temporalServer: 3, postgres: 4 })).toBe(10);
    expect(cpuTotal({ benchProcess: 1, temporalServer: 3, postgres: 4 })).toBe(8);
    expect(cpuTotal({ benchProcess: 1, worker: 2 })).toBeUndefined();
  });

  it('reads a live process peak RSS from /proc, and nothing for one that is gone', () => {
    const peak = peakRssMbOf(process.pid);
    expect(peak).toBeGreaterThanOrEqual(Math.floor(process.memoryUsage().rss / 2 ** 20) - 1);
    expect(peakRssMbOf(2 ** 22 + 12_345)).toBeUndefined();
  });
});
