/**
 * Bounded concurrency without a dependency: a counting semaphore (a cap shared by callers that do
 * not know each other, e.g. every remediation of one worker) and an order-keeping bounded map.
 */
export interface Semaphore {
  /** Runs `fn` once a slot is free; the slot is given back however `fn` ends. */
  run<T>(fn: () => Promise<T>): Promise<T>;
  /** Slots in use now. */
  readonly active: number;
  /** Callers waiting for a slot now. */
  readonly waiting: number;
}

export function createSemaphore(slots: number): Semaphore {
  if (!Number.isInteger(slots) || slots < 1) throw new RangeError(`a semaphore needs at least one slot, not ${slots}`);
  let active = 0;
  const queue: (() => void)[] = [];
  const release = () => {
    const next = queue.shift();
    // The slot passes straight to the next waiter, so a newcomer cannot overtake it.
    if (next) next();
    else active--;
  };
  return {
    async run<T>(fn: () => Promise<T>): Promise<T> {
      if (active < slots) active++;
      else await new Promise<void>((resolve) => queue.push(resolve));
      try {
        return await fn();
      } finally {
        release();
      }
    },
    get active() {
      return active;
    },
    get waiting() {
      return queue.length;
    },
  };
}

/**
 * `fn` over `items`, at most `limit` at once, the answers in the items' order. Every call started
 * settles before it answers; the first failure (in item order) is then thrown, and items not yet
 * started are not started.
 */
export async function mapBounded<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`a bounded map needs a limit of at least one, not ${limit}`);
  const results = new Array<R>(items.length);
  const failures: { index: number; error: unknown }[] = [];
  let next = 0;
  const lane = async () => {
    while (next < items.length && failures.length === 0) {
      const index = next++;
      try {
        results[index] = await fn(items[index]!, index);
      } catch (error) {
        failures.push({ index, error });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  if (failures.length > 0) throw failures.sort((a, b) => a.index - b.index)[0]!.error;
  return results;
}
