/**
 * The ranking alone (index-builder/search.ts) at 100,000 rows, as `GET /search` runs it (rows folded once per
 * version, as `SearchIndex` keeps them), per kind of query, median of 15 after 3 unmeasured rounds. The
 * worst case is the most distinct words the endpoint takes (`MAX_SEARCH_TERMS`), each a typo of a name part
 * every row shares, so every word is tried against every row through every tier; then as `GET /search`
 * ranks on the local server, in slices (`searchPluginsInSlices`), with the longest the event loop waited for
 * a turn meanwhile (a timer's lateness, another client's wait). By hand:
 * `node --import tsx bench/search-ranking.bench.ts [N]`; with `--cpu-prof` before `--import` for a profile.
 */
import {
  foldEntries,
  MAX_SEARCH_TERMS,
  SEARCH_SLICE_ROWS,
  searchPlugins,
  searchPluginsInSlices,
} from '../index-builder/search.ts';
import { median } from './stats.ts';
import { pluginName, syntheticSearchRows } from './synthetic.ts';

const N = Number(process.argv[2] ?? 100_000);
const RUNS = 15;
const entries = syntheticSearchRows(N);
let start = performance.now();
const folded = foldEntries(entries);
const foldMs = performance.now() - start;
const sources = [{ registry: '', priority: 1, entries, folded }];

const typos = Array.from(
  { length: MAX_SEARCH_TERMS },
  (_, i) => `plugin${String.fromCharCode(97 + i).repeat(2)}`,
);
const QUERIES: [string, string][] = [
  [`worst case: ${MAX_SEARCH_TERMS} words, each a typo of a shared part`, typos.join(' ')],
  [`${MAX_SEARCH_TERMS} description words`, 'synthetic number reporting data ynthetic umber eporting ata'],
  ['one typo of a shared part', 'pluginxx'],
  ['typo against every name', 'plugn'],
  ['no match (every tier tried)', 'zzzzzzzz'],
  ['prefix, every row', 'plugin'],
  ['exact name', pluginName(4242)],
];

console.log(`ranking over ${N} rows (folded once: ${foldMs.toFixed(0)} ms), median of ${RUNS}:`);
for (const [label, q] of QUERIES) {
  const times: number[] = [];
  let hits = 0;
  for (let i = 0; i < RUNS + 3; i++) {
    start = performance.now();
    hits = searchPlugins(sources, { terms: [q] }).length;
    if (i >= 3) times.push(performance.now() - start);
  }
  console.log(`  ${label.padEnd(56)} ${median(times).toFixed(1).padStart(7)} ms  (${hits} hits)`);
}

console.log(
  `the same in slices of ${SEARCH_SLICE_ROWS} rows, median of ${RUNS}: all of it, and the longest turn held`,
);
for (const [label, q] of QUERIES) {
  const times: number[] = [];
  const held: number[] = [];
  for (let i = 0; i < RUNS + 3; i++) {
    let longest = 0;
    let last = performance.now();
    let ticking = true;
    const tick = (): void => {
      const now = performance.now();
      longest = Math.max(longest, now - last);
      last = now;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    start = performance.now();
    await searchPluginsInSlices(sources, { terms: [q] });
    const took = performance.now() - start;
    ticking = false;
    if (i >= 3) {
      times.push(took);
      held.push(longest);
    }
  }
  console.log(
    `  ${label.padEnd(56)} ${median(times).toFixed(1).padStart(7)} ms, held ${median(held).toFixed(1).padStart(5)} ms`,
  );
}
