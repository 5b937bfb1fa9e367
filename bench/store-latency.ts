/**
 * A publish over stores that answer each call after LATENCY ms (by hand: `node --import tsx
 * bench/store-latency.ts [LATENCY]`, 20 by default): S3's latency, simulated over the tests' memory stores,
 * so that the time is the number of calls one after the other on the publish's path, times the latency.
 * Times one new version published as the watcher and the publish function publish it (index documents
 * deferred), and one published with its index documents (the CLI's `process`), into a registry of one
 * plugin: medians of 7, after one of each untimed. Then a batch of 200 new plugins published at once into
 * an empty registry (medians of 3), whose catalog lines fall into most of the catalog's 256 bins. Then what
 * a rebuild restores from the log (`restoreActionRecords`) with RESTORE_ACTIONS (10,000) actions within an
 * action's age, over 1,000 plugins, after older entries: once after `state/` was lost (every marker and
 * order written again) and once on a registry that lost nothing (nothing written; medians of 3 each, and
 * the requests each made). What writing side by side saves on AWS, where a call is tens of milliseconds,
 * and nothing on the filesystem measures.
 */
import { ACTION_MAX_AGE_MS } from '../index-builder/actions.ts';
import { sha256Hex } from '../index-builder/digest.ts';
import { LOG_SEGMENT_ENTRIES } from '../index-builder/log.ts';
import type { LogHead } from '../index-builder/model.ts';
import { restoreActionRecords } from '../index-builder/pipeline/actions.ts';
import { flushIndexes, processSubmissions } from '../index-builder/pipeline/index.ts';
import type { Store } from '../index-builder/store.ts';
import { publishLogEntries } from '../test/support/actions.ts';
import { makeBundle, makeRegistry, validManifest, versionBundle } from '../test/support/fixtures.ts';
import { MemoryStore } from '../test/support/memory-store.ts';
import { median } from './stats.ts';

const LATENCY_MS = Number(process.argv[2] ?? 20);
const RUNS = 7;

/** Every request answered so far (a listing's pages each one). */
let requests = 0;
const later = () => {
  requests++;
  return new Promise((resolve) => setTimeout(resolve, LATENCY_MS));
};

const CALLS = new Set(['get', 'head', 'put', 'getStream', 'putStream', 'delete']);

/** Keys in one page of a listing (S3's ListObjectsV2): each page is a request of its own. */
const PAGE_KEYS = 1000;

/**
 * `store` seen through a store whose every call is answered LATENCY_MS later (a listing: its first entry,
 * and each 1,000th after it, a page's). The store's own calls to itself are not delayed again (a memory
 * store's listing heads each entry; S3's listing gives each entry's size and time with the page).
 */
function slowed(store: Store): Store {
  return new Proxy(store, {
    get(target, name, receiver) {
      const value: unknown = Reflect.get(target, name, receiver);
      if (typeof value !== 'function') return value;
      if (name === 'list')
        return async function* (prefix: string) {
          let listed = 0;
          for await (const item of target.list(prefix)) {
            if (listed % PAGE_KEYS === 0) await later();
            listed++;
            yield item;
          }
          if (listed === 0) await later();
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

const RESTORE_ACTIONS = 10_000;
const RESTORE_PLUGINS = 1_000;
const RESTORE_RUNS = 3;

/**
 * A published log of two segments of publishes older than an action may be, then RESTORE_ACTIONS yanks and
 * unyanks (each its own digest) over RESTORE_PLUGINS plugins, made within the last day before `now`.
 */
async function recentActionsLog(site: Store, now: Date): Promise<LogHead> {
  const old = new Date(now.getTime() - 4 * ACTION_MAX_AGE_MS).toISOString();
  const signer = 'A'.repeat(40);
  const publishes = Array.from({ length: 2 * LOG_SEGMENT_ENTRIES }, (_, i) => ({
    time: old,
    type: 'publish' as const,
    plugin: `plugin-${i % RESTORE_PLUGINS}`,
    version: `0.0.${i}`,
    signer,
    digest: sha256Hex(`publish ${i}`),
  }));
  const actions = Array.from({ length: RESTORE_ACTIONS }, (_, i) => {
    const made = new Date(now.getTime() - 24 * 3600 * 1000 + i * 1000).toISOString();
    return {
      time: made,
      type: i % 2 === 0 ? ('yank' as const) : ('unyank' as const),
      plugin: `plugin-${i % RESTORE_PLUGINS}`,
      version: '1.0.0',
      signer,
      digest: sha256Hex(`action ${i}`),
      created: made,
    };
  });
  return publishLogEntries(site, [...publishes, ...actions]);
}

const restoring = await makeRegistry();
const restoreNow = new Date(Date.parse('2026-11-01T00:00:00Z') + ACTION_MAX_AGE_MS);
const restoreHead = await recentActionsLog(restoring.site, restoreNow);
const lost: number[] = [];
const kept: number[] = [];
let lostRequests = 0;
let keptRequests = 0;
for (let i = 0; i < RESTORE_RUNS; i++) {
  const intake = new MemoryStore();
  const ctx = { ...restoring.context, site: slowed(restoring.site), intake: slowed(intake) };
  let started = performance.now();
  let before = requests;
  const restored = await restoreActionRecords(ctx, restoreHead, restoreNow);
  lost.push(performance.now() - started);
  lostRequests = requests - before;
  if (restored.markers !== RESTORE_ACTIONS) throw new Error(`restored ${restored.markers} markers`);
  started = performance.now();
  before = requests;
  const again = await restoreActionRecords(ctx, restoreHead, restoreNow);
  kept.push(performance.now() - started);
  keptRequests = requests - before;
  if (again.markers !== 0 || again.orders !== 0) throw new Error('restored again what was there');
}

console.log(`a publish with every store call answered after ${LATENCY_MS} ms, medians of ${RUNS}:`);
console.log(`  index documents deferred (the watcher, the publish function): ${show(deferred)}`);
console.log(`  with its index documents (plugindex process): ${show(whole)}`);
console.log(`  a batch of ${BATCH} new plugins (medians of ${BATCH_RUNS}): ${show(batches)}`);
console.log(`a rebuild's restore of ${RESTORE_ACTIONS} recent actions (medians of ${RESTORE_RUNS}):`);
console.log(`  after state/ was lost: ${show(lost)}, ${lostRequests} requests`);
console.log(`  on a registry that lost nothing: ${show(kept)}, ${keptRequests} requests`);
