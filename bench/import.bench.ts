/**
 * `node --import tsx bench/import.bench.ts DIR`: one `process` batch of every upload in DIR/incoming (a
 * registry made by `plugindex init` and seeded, e.g. by ../shared/bench/side-by-side/seed.mts), with each
 * store wrapped to count its operations. Prints the time, the operations per submission by kind and store,
 * and with PLUGINDEX_BENCH_PROFILE=FILE writes a V8 CPU profile of the batch.
 */
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { performance } from 'node:perf_hooks';
import { openRegistry } from '../cli/local/registry.ts';
import { processSubmissions } from '../index-builder/pipeline/index.ts';
import type { DeleteOptions, GetOptions, ListedObject, PutOptions, Store } from '../index-builder/store.ts';

type Op = 'get' | 'head' | 'put' | 'getStream' | 'putStream' | 'delete' | 'move' | 'list' | 'listFolders';

/**
 * A Store that counts what is asked of it, by operation and top-level folder, and passes it on. The optional
 * operations are passed on only where the store has them: without them the pipeline takes its slower paths
 * (a move as a put and a delete), and the bench would measure what the command never runs.
 */
class CountingStore implements Store {
  readonly counts = new Map<string, number>();
  readonly move?: Store['move'];
  readonly listFolders?: Store['listFolders'];
  constructor(
    private readonly inner: Store,
    private readonly name: string,
  ) {
    const { move, listFolders } = inner;
    if (move)
      this.move = (from, to, options) => {
        this.#count('move', from);
        return move.call(inner, from, to, options);
      };
    if (listFolders)
      this.listFolders = (prefix) => {
        this.#count('listFolders', prefix);
        return listFolders.call(inner, prefix);
      };
  }
  #count(op: Op, key: string): void {
    const folder = key.includes('/') ? `${key.slice(0, key.indexOf('/'))}/` : key;
    const label = `${this.name} ${op} ${folder}`;
    this.counts.set(label, (this.counts.get(label) ?? 0) + 1);
  }
  get(key: string, options?: GetOptions) {
    this.#count('get', key);
    return this.inner.get(key, options);
  }
  head(key: string) {
    this.#count('head', key);
    return this.inner.head(key);
  }
  put(key: string, body: Uint8Array, options: PutOptions) {
    this.#count('put', key);
    return this.inner.put(key, body, options);
  }
  getStream(key: string) {
    this.#count('getStream', key);
    return this.inner.getStream(key);
  }
  putStream(key: string, body: AsyncIterable<Uint8Array>, options: PutOptions) {
    this.#count('putStream', key);
    return this.inner.putStream(key, body, options);
  }
  delete(key: string, options?: DeleteOptions) {
    this.#count('delete', key);
    return this.inner.delete(key, options);
  }
  list(prefix: string): AsyncIterable<ListedObject> {
    this.#count('list', prefix);
    return this.inner.list(prefix);
  }
}

const dir = process.argv[2];
if (!dir) throw new Error('usage: import.bench.ts REGISTRY_DIR');
const registry = await openRegistry(dir);
const intake = new CountingStore(registry.context.intake, 'intake');
const site = new CountingStore(registry.context.site, 'site');
const profileFile = process.env.PLUGINDEX_BENCH_PROFILE;
const session = profileFile ? new Session() : undefined;
if (session) {
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 500 });
  await session.post('Profiler.start');
}
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const result = await processSubmissions({ ...registry.context, intake, site });
const elapsed = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
if (session) {
  const { profile } = await session.post('Profiler.stop');
  await writeFile(profileFile as string, JSON.stringify(profile));
  session.disconnect();
}
const n = result.outcomes.length;
console.log(
  `${n} submissions in ${elapsed.toFixed(0)} ms (${(elapsed / n).toFixed(2)} ms each; CPU on the main thread user ${(cpu.user / 1000 / n).toFixed(2)} + system ${(cpu.system / 1000 / n).toFixed(2)} ms each)`,
);
let total = 0;
for (const store of [intake, site])
  for (const [label, count] of [...store.counts].sort()) {
    total += count;
    console.log(`${label.padEnd(40)} ${String(count).padStart(7)}  ${(count / n).toFixed(2)}/submission`);
  }
console.log(`all store operations: ${total} (${(total / n).toFixed(2)}/submission)`);
