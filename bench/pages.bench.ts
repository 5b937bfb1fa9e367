/**
 * The pages at scale, in headless Chromium (Debian's, as the page tests drive it): a registry of N synthetic
 * plugins (default 10,000) and a plugin of 500 versions, rendered as the pipeline renders them, written to
 * an FsStore and served by the local server (the pages' CSP and headers). Medians of RUNS loads, each in a
 * fresh browser context:
 *
 * - the floor, in the same run: the page of a plugin of one version (the machine may be loaded: ratios
 *   against it say what the page itself costs);
 * - home page: DOMContentLoaded, first results (the first contentful paint: the first page of plugins is in
 *   the page), ready (the pager shows), search-ready (its rows fetched, parsed and its first page rendered
 *   by the script: the list marked `data-ready`), and its DOM nodes;
 * - the same home page as published before home-search.json (the baseline, loaded alternately in the same
 *   run): its rows from search.json. Both sites hold the compressed variants the pipeline publishes beside
 *   the index documents (`.br`/`.gz`), negotiated by the local server as it does for every client;
 * - a keystroke of search: from the input event to the results laid out (handler, ranking over every row,
 *   DOM, style, layout), and to the next frame, over queries typed one character at a time;
 * - a plugin page of 500 versions: DOMContentLoaded, ready (its pager shown), DOM nodes, a page switch.
 *
 * `node --import tsx bench/pages.bench.ts [N=10000] [RUNS=7]`
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { FsStore } from '../adapters/fs-store.ts';
import { createRegistryServer, listenRegistryServer } from '../cli/local/server.ts';
import { COMPRESSION_THRESHOLD_BYTES, compressDocument } from '../index-builder/compression.ts';
import {
  CONTENT_ENCODINGS,
  ENCODED_DOCUMENTS,
  encodedVariantKey,
  HOME_SEARCH_KEY,
} from '../index-builder/layout.ts';
import { CACHE_MUTABLE } from '../index-builder/store.ts';
import { CHROMIUM, CHROMIUM_FLAGS } from '../test/support/chromium.ts';
import { goalVerdict, median } from './stats.ts';
import { type PageFile, syntheticPages } from './synthetic-pages.ts';

const N = Number(process.argv[2] ?? 10_000);
const RUNS = Number(process.argv[3] ?? 7);
const VERSIONS = 500;
const GOALS = { readyMs: 300, nodes: 2000, keystrokeMs: 50 };
/** Typed one character at a time: prefixes of names, a keyword, a description word, and a typo. */
const TYPED = ['plugin-0999', 'group-12', 'kubernetes', 'synthetc'];

/**
 * Installed before the page's own script (by the browser's debugging protocol, so the page's CSP does not
 * apply): records, and says on the console, when the pager first shows (the page can be paged: the home page shows it from the count
 * in the page, before search.json), and when the home page's list is marked `data-ready` (search.json
 * fetched, parsed and rendered: the page can be searched).
 */
const OBSERVE_READY = `
window.__ready = undefined; window.__search = undefined;
new MutationObserver(function (changes, observer) {
  for (var i = 0; i < changes.length; i++) {
    var t = changes[i].target;
    if (window.__ready === undefined && (t.id === 'pager' || t.id === 'versions-pager') && !t.hidden) {
      window.__ready = performance.now();
      console.debug('bench:ready');
    }
    if (window.__search === undefined && t.id === 'results' && t.hasAttribute('data-ready')) {
      window.__search = performance.now();
      console.debug('bench:search');
    }
  }
}).observe(document, { attributes: true, attributeFilter: ['hidden', 'data-ready'], subtree: true });
`;

const NODE_COUNT =
  '(() => { const w = document.createTreeWalker(document, NodeFilter.SHOW_ALL); let n = 1; while (w.nextNode()) n += 1; return n; })()';

interface Load {
  dcl: number;
  fcp: number;
  ready: number;
  /** When the home page could be searched (NaN on other pages). */
  search: number;
  /** When the page's fetch of its rows ended (NaN on a page that fetches none). */
  fetched: number;
  nodes: number;
}

async function load(
  browser: Browser,
  url: string,
  scripted = true,
  searchable = false,
): Promise<{ page: Page; close(): Promise<void>; load: Load }> {
  const context = await browser.newContext();
  await context.addInitScript(OBSERVE_READY);
  const page = await context.newPage();
  // Told by the page's console, not polled: a script the harness evaluates in the page while it loads runs
  // on its main thread, and would be timed as the page's own work.
  const said = (text: string) => page.waitForEvent('console', { predicate: (m) => m.text() === text });
  const ready = scripted ? said('bench:ready') : undefined;
  const search = searchable ? said('bench:search') : undefined;
  await page.goto(url, { waitUntil: 'load' });
  await ready;
  await search;
  // A function, not text: the page's CSP forbids the eval that a predicate given as text would need.
  await page.waitForFunction(() => performance.getEntriesByName('first-contentful-paint').length > 0);
  const timing = await page.evaluate<{
    dcl: number;
    fcp: number;
    ready: number;
    search: number;
    fetched: number;
  }>(`(() => {
    const nav = performance.getEntriesByType('navigation')[0];
    const fcp = performance.getEntriesByName('first-contentful-paint')[0];
    const search = performance.getEntriesByType('resource').find((r) => r.name.endsWith('/search.json') || r.name.endsWith('/home-search.json'));
    return { dcl: nav.domContentLoadedEventEnd, fcp: fcp ? fcp.startTime : NaN, ready: window.__ready,
      search: window.__search === undefined ? NaN : window.__search,
      fetched: search ? search.responseEnd : NaN };
  })()`);
  const nodes = await page.evaluate<number>(NODE_COUNT);
  return { page, close: () => context.close(), load: { ...timing, nodes } };
}

/** Types each query one character at a time in the page; per keystroke: to laid out, and to the next frame. */
const TYPE_QUERIES = `(async (queries) => {
  const q = document.getElementById('q');
  const frame = () => new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
  const laidOut = [], painted = [];
  for (const text of queries) {
    q.value = '';
    q.dispatchEvent(new Event('input'));
    await frame();
    for (let i = 1; i <= text.length; i++) {
      q.value = text.slice(0, i);
      const t0 = performance.now();
      q.dispatchEvent(new Event('input', { bubbles: true }));
      document.body.getBoundingClientRect();
      laidOut.push(performance.now() - t0);
      await frame();
      painted.push(performance.now() - t0);
    }
  }
  return { laidOut, painted };
})`;

/** Switches the version table one page on, several times: click to laid out. */
const SWITCH_VERSIONS = `(async () => {
  const next = document.getElementById('versions-next');
  const times = [];
  for (let i = 0; i < 10; i++) {
    const t0 = performance.now();
    next.click();
    document.body.getBoundingClientRect();
    times.push(performance.now() - t0);
    await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
  }
  return times;
})()`;

const ms = (v: number) => `${v.toFixed(1).padStart(7)} ms`;
const verdict = (value: number, goal: number, unit = 'ms') =>
  goalVerdict(value <= goal, `<= ${goal} ${unit}`);

/** The files in a store, with the compressed variants the pipeline writes for the index documents. */
async function serve(files: readonly PageFile[]): Promise<{ url: string; close(): Promise<void> }> {
  const work = await mkdtemp(path.join(tmpdir(), 'plugindex-bench-pages-'));
  const site = new FsStore(work);
  for (const file of files) {
    const body = new TextEncoder().encode(file.body);
    const options = { contentType: file.contentType, cacheControl: CACHE_MUTABLE };
    await site.put(file.key, body, options);
    if (!ENCODED_DOCUMENTS.has(file.key)) continue;
    for (const encoding of CONTENT_ENCODINGS) {
      const compress = body.byteLength > COMPRESSION_THRESHOLD_BYTES;
      await site.put(
        encodedVariantKey(file.key, encoding),
        compress ? await compressDocument(body, encoding) : body,
        {
          ...options,
          ...(compress ? { contentEncoding: encoding } : {}),
        },
      );
    }
  }
  const listening = await listenRegistryServer(createRegistryServer({ site }), 0);
  return {
    url: listening.url,
    async close() {
      await listening.close();
      await rm(work, { recursive: true, force: true });
    },
  };
}

// The registry's URL goes into the pages only as text (install recipes): one name serves both sites.
const registry = { name: 'Bench Registry', url: 'http://127.0.0.1' };
const built = syntheticPages(registry, N, { versions: VERSIONS });
const before = syntheticPages(registry, N, { versions: 0, homeSearch: false });
const current = await serve(built.files);
const baseline = await serve(before.files.filter((f) => f.key === 'index.html' || f.key === 'search.json'));
const listening = current;
const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
try {
  const size = (key: string) => built.files.find((f) => f.key === key)?.body.length ?? 0;
  console.log(
    `pages in headless Chromium at ${N} plugins (search.json ${(size('search.json') / 1e6).toFixed(2)} MB, home-search.json ${(size(HOME_SEARCH_KEY) / 1e6).toFixed(2)} MB, index.html ${(size('index.html') / 1e3).toFixed(0)} kB), median of ${RUNS} loads, a fresh context each:`,
  );

  // The floor in this run: a page of one version, opened as the others (a loaded machine slows all alike).
  const floor: Load[] = [];
  for (let run = 0; run < RUNS; run++) {
    const opened = await load(browser, `${listening.url}/plugins/one-version/index.html`, false);
    floor.push(opened.load);
    await opened.close();
  }
  const home: Load[] = [];
  const old: Load[] = [];
  let laidOut: number[] = [];
  let painted: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    // The baseline first, then the page as it is now: back to back, so load falls on both alike.
    const previous = await load(browser, `${baseline.url}/`, true, true);
    old.push(previous.load);
    await previous.close();
    const opened = await load(browser, `${listening.url}/`, true, true);
    home.push(opened.load);
    if (run === RUNS - 1) {
      const typed = await opened.page.evaluate<{ laidOut: number[]; painted: number[] }>(
        `(${TYPE_QUERIES})(${JSON.stringify(TYPED)})`,
      );
      laidOut = typed.laidOut;
      painted = typed.painted;
    }
    await opened.close();
  }
  const pick = (loads: Load[], key: keyof Load) => median(loads.map((l) => l[key]));
  const times = (loads: Load[], key: keyof Load) =>
    `${(pick(loads, key) / pick(floor, key)).toFixed(2)}x the floor`;
  console.log(
    `  floor       a page of one version: DOMContentLoaded ${ms(pick(floor, 'dcl'))}, first paint ${ms(pick(floor, 'fcp'))}`,
  );
  console.log(`  home page   DOMContentLoaded ${ms(pick(home, 'dcl'))}   ${times(home, 'dcl')}`);
  console.log(
    `  home page   first results    ${ms(pick(home, 'fcp'))}   ${times(home, 'fcp')}, ${verdict(pick(home, 'fcp'), GOALS.readyMs)} (first paint: its first 50 plugins are in the page)`,
  );
  console.log(
    `  home page   ready            ${ms(pick(home, 'ready'))}   ${verdict(pick(home, 'ready'), GOALS.readyMs)} (its first plugins and the pager)`,
  );
  console.log(`  home page   rows in          ${ms(pick(home, 'fetched'))}   (home-search.json fetched)`);
  console.log(
    `  home page   search ready     ${ms(pick(home, 'search'))}   ${verdict(pick(home, 'search'), GOALS.readyMs)}, ${(pick(home, 'search') / pick(floor, 'fcp')).toFixed(2)}x the floor's first paint (its rows parsed, its first page shown)`,
  );
  console.log(
    `  baseline    rows in          ${ms(pick(old, 'fetched'))}   (the page before home-search.json: search.json fetched)`,
  );
  console.log(
    `  baseline    search ready     ${ms(pick(old, 'search'))}   now ${(pick(home, 'search') / pick(old, 'search')).toFixed(2)}x the baseline`,
  );
  console.log(
    `  home page   DOM nodes        ${String(pick(home, 'nodes')).padStart(7)}      ${verdict(pick(home, 'nodes'), GOALS.nodes, 'nodes')}`,
  );
  console.log(
    `  keystroke   to laid out      ${ms(median(laidOut))}   ${verdict(median(laidOut), GOALS.keystrokeMs)} (median of ${laidOut.length}, max ${Math.max(...laidOut).toFixed(1)} ms)`,
  );
  console.log(
    `  keystroke   to next frame    ${ms(median(painted))}   (median of ${painted.length}, max ${Math.max(...painted).toFixed(1)} ms)`,
  );

  const plugin: Load[] = [];
  let switches: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const opened = await load(browser, `${listening.url}/plugins/${built.paged.name}/index.html`);
    plugin.push(opened.load);
    if (run === RUNS - 1) switches = await opened.page.evaluate<number[]>(SWITCH_VERSIONS);
    await opened.close();
  }
  console.log(`  ${VERSIONS} versions DOMContentLoaded ${ms(pick(plugin, 'dcl'))}   ${times(plugin, 'dcl')}`);
  console.log(`  ${VERSIONS} versions first paint      ${ms(pick(plugin, 'fcp'))}   ${times(plugin, 'fcp')}`);
  console.log(
    `  ${VERSIONS} versions ready            ${ms(pick(plugin, 'ready'))}   ${verdict(pick(plugin, 'ready'), GOALS.readyMs)}`,
  );
  console.log(
    `  ${VERSIONS} versions DOM nodes        ${String(pick(plugin, 'nodes')).padStart(7)}      ${verdict(pick(plugin, 'nodes'), GOALS.nodes, 'nodes')}`,
  );
  console.log(
    `  ${VERSIONS} versions page switch      ${ms(median(switches))}   ${verdict(median(switches), GOALS.keystrokeMs)}`,
  );
} finally {
  await browser.close();
  await current.close();
  await baseline.close();
}
