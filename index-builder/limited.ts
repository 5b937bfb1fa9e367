/**
 * Work side by side, bounded and settled: when one of these returns or throws, nothing it started is still
 * running (a crash-consistent step ends where the caller's await ends). Pure: no store, and no clock but the
 * timers a rate limit waits on (`limitRate`).
 */

/**
 * The values of `promises` once every one has settled; else the first failure, in their order, thrown once
 * none is still running.
 */
export async function allSettledValues<T extends readonly unknown[]>(
  promises: {
    readonly [K in keyof T]: Promise<T[K]>;
  },
): Promise<T> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((result) => result.status === 'rejected');
  if (failed) throw failed.reason;
  return results.map((result) => (result as PromiseFulfilledResult<unknown>).value) as unknown as T;
}

/**
 * Runs `work` over `items`, at most `limit` at a time, and returns the results in the items' order. After
 * the first failure no more items are started, and the failure is thrown once the work in flight has
 * settled: when it returns or throws, nothing it started is still writing (a crash-consistent step ends
 * where the caller's await ends).
 */
export async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failure: { readonly error: unknown } | undefined;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (failure === undefined && next < items.length) {
      const index = next++;
      try {
        results[index] = await work(items[index] as T, index);
      } catch (error) {
        failure ??= { error };
      }
    }
  });
  await Promise.all(runners);
  if (failure) throw failure.error;
  return results;
}

/** `mapLimited` for work whose results are not wanted. */
export async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  await mapLimited(items, limit, work);
}

/**
 * A limit of `perSecond` starts a second: each call of the function returned resolves at its turn, in the
 * order of the calls, as a token bucket grants them (refilled at `perSecond`, holding a hundredth of a
 * second's worth: within any span of time, at most that span's share and that hundredth begin). For requests a
 * service refuses past a rate (S3: about 3,500 writes a second per prefix, 503 SlowDown past it), which
 * bounded flight alone does not bound: the rate it gives is the flight over the latency, and a service that
 * answers faster takes more a second. The bucket holds no more after a pause (a timer fired late, a busy
 * event loop), so turns left waiting do not all begin at once when it ends.
 *
 * @example
 * const turn = limitRate(2_500);
 * await forEachLimited(keys, 64, async (key) => { await turn(); await store.put(key, body, options); });
 */
export function limitRate(perSecond: number): () => Promise<void> {
  const capacity = Math.max(1, perSecond / 100);
  let tokens = capacity;
  let filledAt = performance.now();
  // Turns are granted one after another: a waiter that wakes takes its token before the next is asked.
  let granted: Promise<void> = Promise.resolve();
  const grant = async (): Promise<void> => {
    for (;;) {
      const now = performance.now();
      tokens = Math.min(capacity, tokens + ((now - filledAt) * perSecond) / 1000);
      filledAt = now;
      if (tokens >= 1) {
        tokens -= 1;
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, ((1 - tokens) * 1000) / perSecond));
    }
  };
  return () => {
    granted = granted.then(grant);
    return granted;
  };
}

/**
 * The read of `key` kept in `kept`, made by `read` on the first ask: every ask in the meantime shares it. A
 * failed read is not kept (the next ask reads again), where a kept rejection would fail every later ask.
 */
export function readOnce<K, V>(kept: Map<K, Promise<V>>, key: K, read: () => Promise<V>): Promise<V> {
  let reading = kept.get(key);
  if (!reading) {
    reading = read();
    const made = reading;
    made.catch(() => {
      if (kept.get(key) === made) kept.delete(key);
    });
    kept.set(key, made);
  }
  return reading;
}
