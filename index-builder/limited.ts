/**
 * Work side by side, bounded and settled: when one of these returns or throws, nothing it started is still
 * running (a crash-consistent step ends where the caller's await ends). Pure: no store, no clock.
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
