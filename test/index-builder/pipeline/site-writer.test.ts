/**
 * The pipeline's bounded work (pipeline/site-writer.ts): `BoundedWork` starts work as it is handed over,
 * never more than its limit at once, and `settled` returns only when nothing it started still runs.
 */
import { describe, expect, it } from 'vitest';
import { BoundedWork } from '../../../index-builder/pipeline/site-writer.ts';

/** A promise and its resolver, to finish work when the test says. */
function gate(): { readonly promise: Promise<void>; open(): void } {
  let open = (): void => undefined;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}
const turn = () => new Promise((resolve) => setImmediate(resolve));

describe('when work is handed to BoundedWork', () => {
  it('runs at most its limit at once, in the order handed, each slot passed on as work ends', async () => {
    const work = new BoundedWork(2);
    const gates = Array.from({ length: 5 }, gate);
    const started: number[] = [];
    let running = 0;
    let most = 0;
    for (const [i, g] of gates.entries()) {
      work.run(async () => {
        started.push(i);
        running += 1;
        most = Math.max(most, running);
        await g.promise;
        running -= 1;
      });
    }
    await turn();
    expect(started).toEqual([0, 1]);

    gates[1]?.open();
    await turn();
    // Handed over while a slot is free again: it starts behind the waiting ones, never beside them.
    work.run(async () => {
      started.push(5);
    });
    await turn();
    expect(started).toEqual([0, 1, 2]);
    for (const g of gates) g.open();
    await work.settled();

    expect(started).toEqual([0, 1, 2, 3, 4, 5]);
    expect(most).toBe(2);
  });

  it('keeps a failure for settled however long before it is asked, never leaving it unhandled', async () => {
    const unhandled: unknown[] = [];
    const listener = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', listener);
    try {
      const work = new BoundedWork(2);
      work.run(async () => {
        throw new Error('early');
      });
      await turn();
      await turn();

      await expect(work.settled()).rejects.toThrow('early');
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', listener);
    }
  });

  it('settles once everything started has, then throws the first failure', async () => {
    const work = new BoundedWork(4);
    const slow = gate();
    let finished = false;
    work.run(async () => {
      throw new Error('first');
    });
    work.run(async () => {
      await slow.promise;
      finished = true;
    });
    work.run(async () => {
      throw new Error('second');
    });

    const settled = work.settled();
    await turn();
    slow.open();

    await expect(settled).rejects.toThrow('first');
    expect(finished).toBe(true);
  });
});
