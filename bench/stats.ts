/**
 * The q-quantile of ascending values by nearest rank, q on the 0–1 scale (0.5 for the median,
 * 0.99 for p99); null when there are none. Benchmarks and fault runs both report with it.
 */
export function quantile(ascending: readonly number[], q: number): number | null {
  // A percent (50, 99) passed by mistake would silently read the maximum.
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile takes q between 0 and 1, got ${q}`);
  if (ascending.length === 0) return null;
  return ascending[Math.min(ascending.length - 1, Math.max(0, Math.ceil(q * ascending.length) - 1))]!;
}
