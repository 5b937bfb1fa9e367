/**
 * `GET /search` at 10,000 plugins on the local server, over a real socket: the first answer after a publish
 * (search.json read and parsed, then ranked) and warm answers (the snapshot read, then ranked), per kind of
 * query, median of 15. The ranking is the client's (index-builder/search.ts), so the warm figures are also
 * what `plugindex search` spends ranking one registry of this size.
 */
import { createRegistryServer, listenRegistryServer } from '../cli/local/server.ts';
import { sha256Hex } from '../index-builder/digest.ts';
import type { Store, StoredObject } from '../index-builder/store.ts';
import { median } from './stats.ts';
import { pluginName, syntheticSearchRows } from './synthetic.ts';

const N = 10_000;
const RUNS = 15;
const rows = syntheticSearchRows(N);

/** The two objects the endpoint reads, in memory; `publish()` gives search.json new bytes. */
const objects = new Map<string, Uint8Array>();
let generation = 0;
function publish(): number {
  generation++;
  const search = new TextEncoder().encode(
    JSON.stringify({ schema: 'plugindex/search/v1', generated: String(generation), plugins: rows }),
  );
  objects.set('search.json', search);
  const snapshot = {
    generation,
    documents: { 'search.json': { sha256: sha256Hex(search), size: search.length } },
  };
  objects.set('snapshot.json', new TextEncoder().encode(JSON.stringify(snapshot)));
  return search.length;
}
const site = {
  async get(key: string): Promise<StoredObject | undefined> {
    const body = objects.get(key);
    return body && ({ body } as StoredObject);
  },
} as unknown as Store;

const bytes = publish();
const { url, close } = await listenRegistryServer(createRegistryServer({ site }), 0);
async function time(query: string): Promise<number> {
  const start = performance.now();
  const response = await fetch(`${url}/search?${query}`);
  await response.arrayBuffer();
  if (response.status !== 200) throw new Error(`${query}: ${response.status}`);
  return performance.now() - start;
}

const QUERIES: [string, string][] = [
  ['exact name', `q=${pluginName(4242)}`],
  ['prefix, 10,000 hits, page of 100', 'q=plugin'],
  ['typo against every name', 'q=plugn'],
  ['no match (every tier tried)', 'q=zzzzzzzz'],
  ['description word + provider filter', 'q=cost&provider=aws'],
  ['listing (empty q), by name', ''],
  // A word repeated is read once (index-builder/search.ts searchTerms): about the cost of the word alone.
  ['one description word 42 times', `q=${encodeURIComponent('cost '.repeat(42).trim())}`],
];

console.log(
  `GET /search over ${N} plugins (search.json ${(bytes / 1e6).toFixed(1)} MB), local server, median of ${RUNS}:`,
);
const cold: number[] = [];
for (let i = 0; i < RUNS; i++) {
  publish();
  cold.push(await time('q=plugin'));
}
console.log(`  first answer after a publish (read + parse + rank): ${median(cold).toFixed(1)} ms`);
for (const [label, query] of QUERIES) {
  await time(query);
  const warm: number[] = [];
  for (let i = 0; i < RUNS; i++) warm.push(await time(query));
  console.log(`  warm, ${label}: ${median(warm).toFixed(1)} ms`);
}
await close();
