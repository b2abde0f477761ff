export type FaultKind =
  'worker_killed' | 'worker_ready' | 'worker_exited' | 'postgres_down' | 'postgres_up' | 'temporal_down' | 'temporal_up';

/** What the run did to the system and when, to explain a late outcome by the fault before it. */
export class Timeline {
  readonly events: { at: number; kind: FaultKind; detail?: string }[] = [];
  add(kind: FaultKind, detail?: string) {
    this.events.push({ at: Date.now(), kind, ...(detail ? { detail } : {}) });
  }
  /** The faults in [from - lookbackMs, to], as `kind@+offset-from-from`. */
  around(from: number, to: number, lookbackMs = 12_000): string[] {
    return this.events
      .filter((e) => e.at >= from - lookbackMs && e.at <= to)
      .map((e) => `${e.kind}${e.detail ? `(${e.detail})` : ''}@${((e.at - from) / 1000).toFixed(1)}s`);
  }
  /** The periods [down, up] between each `down` event and the next `up` one (epoch ms). */
  outages(down: FaultKind, up: FaultKind): { from: number; to: number }[] {
    const periods: { from: number; to: number }[] = [];
    let from: number | undefined;
    for (const e of this.events) {
      if (e.kind === down) from ??= e.at;
      if (e.kind === up && from !== undefined) {
        periods.push({ from, to: e.at });
        from = undefined;
      }
    }
    return periods;
  }
}
