import { describe, expect, it } from 'vitest';
import { createSemaphore, mapBounded } from '../core/concurrency.js';

const tick = (ms = 2) => new Promise((r) => setTimeout(r, ms));

describe('bounded concurrency', () => {
  it('a semaphore never runs more than its slots at once, hands a freed slot to the longest waiter, and frees it on failure', async () => {
    const slots = createSemaphore(2);
    let now = 0;
    let max = 0;
    const order: number[] = [];
    const work = (n: number) =>
      slots.run(async () => {
        now++;
        max = Math.max(max, now);
        await tick();
        now--;
        order.push(n);
        if (n === 1) throw new Error('one fails');
        return n;
      });
    const settled = await Promise.allSettled([1, 2, 3, 4, 5].map(work));
    expect(max).toBe(2);
    expect(settled.map((s) => s.status)).toEqual(['rejected', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled']);
    expect(order.slice(0, 2).sort()).toEqual([1, 2]);
    expect({ active: slots.active, waiting: slots.waiting }).toEqual({ active: 0, waiting: 0 });
    expect(() => createSemaphore(0)).toThrow(RangeError);
  });

  it('a bounded map keeps the items’ order at most `limit` at once, and on a failure starts nothing more and throws the first', async () => {
    let now = 0;
    let max = 0;
    const answers = await mapBounded([5, 1, 4, 2, 3], 2, async (n) => {
      now++;
      max = Math.max(max, now);
      await tick(n);
      now--;
      return n * 10;
    });
    expect(answers).toEqual([50, 10, 40, 20, 30]);
    expect(max).toBe(2);

    const started: number[] = [];
    const failing = mapBounded([1, 2, 3, 4, 5, 6], 2, async (n) => {
      started.push(n);
      await tick();
      if (n === 2) throw new Error(`item ${n}`);
      return n;
    });
    await expect(failing).rejects.toThrow('item 2');
    expect(started.length).toBeLessThan(6);
    expect(await mapBounded([], 3, async () => 1)).toEqual([]);
  });
});
