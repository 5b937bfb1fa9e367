/**
 * A publish over stores that answer each call after LATENCY ms (by hand: `node --import tsx
 * bench/store-latency.ts [LATENCY]`, 20 by default): S3's latency, simulated over the tests' memory stores,
 * so that the time is the number of calls one after the other on the publish's path, times the latency.
 * Times one new version published as the watcher and the publish function publish it (index documents
 * deferred), and one published with its index documents (the CLI's `process`), into a registry of one
 * plugin: medians of 7, after one of each untimed. Then a batch of 200 new plugins published at once into
 * an empty registry (medians of 3), whose catalog lines fall into most of the catalog's 256 bins. What
 * writing side by side saves on AWS, where a call is tens of milliseconds, and nothing on the filesystem
 * measures.
 */
import { flushIndexes, processSubmissions } from '../index-builder/pipeline/index.ts';
import type { Store } from '../index-builder/store.ts';
import { makeBundle, makeRegistry, validManifest, versionBundle } from '../test/support/fixtures.ts';
import { median } from './stats.ts';

const LATENCY_MS = Number(process.argv[2] ?? 20);
const RUNS = 7;

const later = () => new Promise((resolve) => setTimeout(resolve, LATENCY_MS));

const CALLS = new Set(['get', 'head', 'put', 'getStream', 'putStream', 'delete']);

/**
 * `store` seen through a store whose every call is answered LATENCY_MS later (a listing: its first entry).
 * The store's own calls to itself are not delayed again (a memory store's listing heads each entry; S3's
 * listing gives each entry's size and time with the page).
 */
function slowed(store: Store): Store {
  return new Proxy(store, {
    get(target, name, receiver) {
      const value: unknown = Reflect.get(target, name, receiver);
      if (typeof value !== 'function') return value;
      if (name === 'list')
        return async function* (prefix: string) {
          await later();
          yield* target.list(prefix);
        };
      if (typeof name === 'string' && CALLS.has(name))
        return async (...args: unknown[]) => {
          await later();
          return value.apply(target, args);
        };
      return value.bind(target);
    },
  });
}

const registry = await makeRegistry();
await processSubmissions(registry.context, await registry.submit(await versionBundle('0.0.1')));
const context = { ...registry.context, site: slowed(registry.site), intake: slowed(registry.intake) };

const deferred: number[] = [];
const whole: number[] = [];
for (let i = 0; i <= RUNS; i++) {
  const keys = await registry.submit(await versionBundle(`1.${i}.0`));
  let started = performance.now();
  await processSubmissions({ ...context, deferIndexes: true }, keys);
  const deferredMs = performance.now() - started;
  await flushIndexes(context);
  const more = await registry.submit(await versionBundle(`2.${i}.0`));
  started = performance.now();
  await processSubmissions(context, more);
  const wholeMs = performance.now() - started;
  if (i === 0) continue; // untimed: the code paths' first run
  deferred.push(deferredMs);
  whole.push(wholeMs);
}
const show = (times: number[]) => {
  const ms = median(times);
  return `${Math.round(ms)} ms (${(ms / LATENCY_MS).toFixed(1)} calls' latency)`;
};

const BATCH = 200;
const BATCH_RUNS = 3;
const batchBundles = [];
for (let i = 0; i < BATCH; i++)
  batchBundles.push(
    await makeBundle({ manifest: validManifest({ name: `batch-${String(i).padStart(4, '0')}` }) }),
  );
const batches: number[] = [];
for (let i = 0; i < BATCH_RUNS; i++) {
  const fresh = await makeRegistry();
  await fresh.submit(...batchBundles);
  const started = performance.now();
  // Taking what incoming/ lists, as the publish function does (no upload named, so none asked its size).
  await processSubmissions({ ...fresh.context, site: slowed(fresh.site), intake: slowed(fresh.intake) });
  batches.push(performance.now() - started);
}

console.log(`a publish with every store call answered after ${LATENCY_MS} ms, medians of ${RUNS}:`);
console.log(`  index documents deferred (the watcher, the publish function): ${show(deferred)}`);
console.log(`  with its index documents (plugindex process): ${show(whole)}`);
console.log(`  a batch of ${BATCH} new plugins (medians of ${BATCH_RUNS}): ${show(batches)}`);
