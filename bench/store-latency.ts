/**
 * A publish over stores that answer each call after LATENCY ms (by hand: `node --import tsx
 * bench/store-latency.ts [LATENCY]`, 20 by default): S3's latency, simulated over the tests' memory stores,
 * so that the time is the number of calls one after the other on the publish's path, times the latency.
 * Times one new version published as the watcher and the publish function publish it (index documents
 * deferred), and one published with its index documents (the CLI's `process`), into a registry of one
 * plugin: medians of 7, after one of each untimed. What writing side by side saves on AWS, where a call is
 * tens of milliseconds, and nothing on the filesystem measures.
 */
import { flushIndexes, processSubmissions } from '../index-builder/pipeline/index.ts';
import type { Store } from '../index-builder/store.ts';
import { encode, makeBundle, makeRegistry, validManifest } from '../test/support/fixtures.ts';
import { median } from './stats.ts';

const LATENCY_MS = Number(process.argv[2] ?? 20);
const RUNS = 7;

const later = () => new Promise((resolve) => setTimeout(resolve, LATENCY_MS));

/** `store`, each of its calls answered LATENCY_MS later (a listing: its first entry). */
function slowed(store: Store): void {
  for (const name of ['get', 'head', 'put', 'getStream', 'putStream', 'delete'] as const) {
    const call = store[name].bind(store) as (...args: unknown[]) => Promise<unknown>;
    (store as unknown as Record<string, unknown>)[name] = async (...args: unknown[]) => {
      await later();
      return call(...args);
    };
  }
  const list = store.list.bind(store);
  store.list = async function* (prefix: string) {
    await later();
    yield* list(prefix);
  };
}

const registry = await makeRegistry();
const bundle = (version: string) =>
  makeBundle({
    manifest: validManifest({ version }),
    artifacts: [{ os: 'linux', arch: 'amd64', name: 'tool', body: encode(`tool ${version}`) }],
  });
await processSubmissions(registry.context, await registry.submit(await bundle('0.0.1')));
slowed(registry.site);
slowed(registry.intake);

const deferred: number[] = [];
const whole: number[] = [];
for (let i = 0; i <= RUNS; i++) {
  const keys = await registry.submit(await bundle(`1.${i}.0`));
  let started = performance.now();
  await processSubmissions({ ...registry.context, deferIndexes: true }, keys);
  const deferredMs = performance.now() - started;
  await flushIndexes(registry.context);
  const more = await registry.submit(await bundle(`2.${i}.0`));
  started = performance.now();
  await processSubmissions(registry.context, more);
  const wholeMs = performance.now() - started;
  if (i === 0) continue; // untimed: the code paths' first run
  deferred.push(deferredMs);
  whole.push(wholeMs);
}
const show = (times: number[]) => {
  const ms = median(times);
  return `${Math.round(ms)} ms (${(ms / LATENCY_MS).toFixed(1)} calls' latency)`;
};
console.log(`a publish with every store call answered after ${LATENCY_MS} ms, medians of ${RUNS}:`);
console.log(`  index documents deferred (the watcher, the publish function): ${show(deferred)}`);
console.log(`  with its index documents (plugindex process): ${show(whole)}`);
