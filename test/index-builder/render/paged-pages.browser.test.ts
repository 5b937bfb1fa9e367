/**
 * The pages of a large registry in headless Chromium: 3,000 synthetic plugins (and a few with hostile text),
 * rendered as the pipeline renders them and served by the local server with the pages' headers (CSP by
 * hash). The home page stays small (its first page of plugins in the page), searches search.json as the
 * client ranks, pages the hits, and keeps the search in the URL; a plugin of 500 versions shows them a
 * page at a time (later pages parsed only when shown), and every one is reachable, with script and without.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syntheticDocument } from '../../../bench/synthetic.ts';
import { syntheticPages } from '../../../bench/synthetic-pages.ts';
import { createRegistryServer, listenRegistryServer } from '../../../cli/local/server.ts';
import type { PluginDocument, SearchEntry } from '../../../index-builder/model.ts';
import { HOME_PAGE_SIZE, VERSIONS_PAGE_SIZE } from '../../../index-builder/render/page-script.ts';
import {
  MAX_SEARCH_TERMS,
  readSearchParameters,
  SEARCH_FIELDS,
  type SearchField,
  searchPlugins,
} from '../../../index-builder/search.ts';
import { parseSearchQuery } from '../../../index-builder/search-endpoint.ts';
import { CACHE_MUTABLE } from '../../../index-builder/store.ts';
import { launchChromium, type PageBrowser } from '../../support/chromium.ts';
import { encode } from '../../support/fixtures.ts';
import { MemoryStore } from '../../support/memory-store.ts';

const PLUGINS = 3000;
const VERSIONS = 500;
const MAX_NODES = 2000;
const HOSTILE_DISPLAY = '<img src=x onerror="window.__pwned = 1">Hostile';
const HOSTILE_DESCRIPTION = '</li></ul><script>window.__pwned = 2</script> & "quotes"';

let base = '';
let close: () => Promise<void>;
let chromium: PageBrowser;
let rows: SearchEntry[];
let paged: PluginDocument;

function hostile(): PluginDocument {
  const doc = syntheticDocument(99_999, 'C'.repeat(40));
  return {
    ...doc,
    name: 'zz-hostile',
    display_name: HOSTILE_DISPLAY,
    description: HOSTILE_DESCRIPTION,
    tags: ['<b>bold</b>', 'javascript:alert(1)'],
  };
}

beforeAll(async () => {
  const site = new MemoryStore();
  const listening = await listenRegistryServer(createRegistryServer({ site }), 0);
  base = listening.url;
  close = listening.close;
  const built = syntheticPages({ name: 'Large Registry', url: base }, PLUGINS, {
    extra: [hostile()],
    versions: VERSIONS,
  });
  rows = built.rows;
  paged = built.paged;
  for (const file of built.files)
    await site.put(file.key, encode(file.body), {
      contentType: file.contentType,
      cacheControl: CACHE_MUTABLE,
    });
  chromium = await launchChromium(() => base);
});

afterAll(async () => {
  await chromium?.close();
  await close?.();
});

/** Every node of the document (elements, text, comments), as the browser holds them. */
// (As text: these run in the page, and the tests' TypeScript has no DOM types.)
const NODE_COUNT =
  '(() => { const w = document.createTreeWalker(document, NodeFilter.SHOW_ALL); let n = 1; while (w.nextNode()) n += 1; return n; })()';
const nodeCount = (page: Page) => page.evaluate<number>(NODE_COUNT);
const shownNames = (page: Page) =>
  page.locator('#results li.plugin').evaluateAll((items) => items.map((li) => li.getAttribute('data-name')));
const countText = (page: Page) => page.locator('#count').textContent();
/** The page's query, as the page itself has it. */
const query = async (page: Page) =>
  Object.fromEntries(new URLSearchParams(await page.evaluate<string>('location.search')));
/** Clicks a pager link and waits for the page's query to be `want`. */
async function clickTo(page: Page, link: string, want: Record<string, string>): Promise<void> {
  await page.locator(link).click();
  await expect.poll(() => query(page)).toEqual(want);
}
/**
 * Where an element is once scrolled into view, after one frame and after ten more: a click lands where
 * the element was when the mouse went down, so what is in view must not move once it is shown.
 */
const placesOnceInView = (page: Page, selector: string) =>
  page.evaluate<[number, number]>(`(async () => {
    const frame = () => new Promise((resolve) => requestAnimationFrame(resolve));
    const element = document.querySelector(${JSON.stringify(selector)});
    element.scrollIntoView();
    await frame();
    const first = element.getBoundingClientRect().top;
    for (let i = 0; i < 10; i++) await frame();
    return [first, element.getBoundingClientRect().top];
  })()`);
/** The client's answer, as names. */
const expected = (terms: string, filters: { type?: string; provider?: string } = {}) =>
  searchPlugins([{ registry: 'r', priority: 1, entries: rows }], { terms: [terms], ...filters }).map(
    (hit) => hit.entry.name,
  );
/** Waits for the script's render of search.json (it marks the list once it has read it). */
const searchReady = (page: Page) => page.locator('#results[data-ready]').waitFor({ state: 'attached' });
/**
 * What the one rule (readSearchParameters) says of a URL's search parameters, as the page shows a refusal,
 * and GET /search's code for the same query (parseSearchQuery), which must be the rule's.
 */
function refusalOf(search: string): { readonly text: string; readonly endpointCode: string } {
  const pairs = [...new URLSearchParams(search)].filter(([name]) =>
    (SEARCH_FIELDS as readonly string[]).includes(name),
  ) as [SearchField, string][];
  const read = readSearchParameters(pairs);
  if (read.ok) throw new Error(`the rule takes ${search}`);
  // The page's own parameters (its page) are no question to GET /search.
  const parsed = parseSearchQuery(new URLSearchParams(pairs).toString());
  if (parsed.ok || parsed.refusal.code !== read.problem.code)
    throw new Error(`GET /search does not refuse ${search} with ${read.problem.code}`);
  return {
    text: `${read.problem.message}: expected ${read.problem.expected}`,
    endpointCode: parsed.refusal.code,
  };
}
const pwned = (page: Page) => page.evaluate(() => (globalThis as { __pwned?: number }).__pwned);

describe('the home page of a registry of 3,000 plugins', () => {
  it('shows its first page of plugins, in at most 2,000 nodes', async () => {
    const page = await chromium.open('/');
    await searchReady(page);
    expect(await countText(page)).toBe(`${rows.length} of ${rows.length} plugins`);
    expect(await shownNames(page)).toEqual(rows.slice(0, HOME_PAGE_SIZE).map((r) => r.name));
    expect(await page.locator('#page-at').textContent()).toBe(
      `page 1 of ${Math.ceil(rows.length / HOME_PAGE_SIZE)}`,
    );
    expect(await nodeCount(page)).toBeLessThanOrEqual(MAX_NODES);
    expect(await page.locator('#results li.plugin a.name').first().getAttribute('href')).toBe(
      `plugins/${rows[0]?.name}/index.html`,
    );
    await page.close();
    expect(chromium.problems).toEqual([]);
  });

  it('keeps the pager where it is once scrolled into view (a click lands where the mouse went down)', async () => {
    const page = await chromium.open('/');
    await searchReady(page);
    const [first, later] = await placesOnceInView(page, '#next');
    expect(later).toBe(first);
    await page.close();
  });

  it('pages by the count in the page until search.json arrives, and a later page waits for it', async () => {
    const page = await chromium.browser.newPage();
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    // The rows held back (home-search.json, and search.json were it to fall back): the page must be
    // browsable without them, and never show page 1 as page 2.
    await page.route('**/*search.json', async (route) => {
      await held;
      await route.continue();
    });
    await page.goto(`${base}/`);
    const pages = Math.ceil(rows.length / HOME_PAGE_SIZE);
    await page.locator('#pager').waitFor({ state: 'visible' });
    expect(await page.locator('#results[data-ready]').count()).toBe(0);
    expect(await page.locator('#page-at').textContent()).toBe(`page 1 of ${pages}`);
    expect(await countText(page)).toBe(`${rows.length} of ${rows.length} plugins`);
    expect(await shownNames(page)).toEqual(rows.slice(0, HOME_PAGE_SIZE).map((r) => r.name));

    await clickTo(page, '#next', { page: '2' });
    expect(await page.locator('#page-at').textContent()).toBe(`page 2 of ${pages}`);
    expect(await page.locator('#results').isVisible()).toBe(false);
    expect(await countText(page)).toBe('loading…');
    // A search typed before the rows are in hides the list and the pager: no stale answer shows.
    await page.locator('#q').fill('group-3');
    expect(await page.locator('#pager').isVisible()).toBe(false);
    expect(await countText(page)).toBe('searching…');

    release();
    await searchReady(page);
    await expect.poll(() => shownNames(page)).toEqual(expected('group-3').slice(0, HOME_PAGE_SIZE));
    await page.locator('#q').fill('');
    await expect.poll(() => countText(page)).toBe(`${rows.length} of ${rows.length} plugins`);
    await page.goBack();
    await expect.poll(() => query(page)).toEqual({ page: '2' });
    await expect
      .poll(() => shownNames(page))
      .toEqual(rows.slice(HOME_PAGE_SIZE, 2 * HOME_PAGE_SIZE).map((r) => r.name));
    await page.close();
  });

  it('fetches its compact rows once (the preload and the script share the request) and never search.json', async () => {
    const page = await chromium.browser.newPage();
    const fetched: string[] = [];
    page.on('request', (request) => fetched.push(new URL(request.url()).pathname));
    await page.goto(`${base}/`);
    await searchReady(page);
    await page.locator('#q').fill('group-3');
    await expect.poll(() => shownNames(page)).toEqual(expected('group-3').slice(0, HOME_PAGE_SIZE));
    expect(fetched.filter((p) => p.endsWith('search.json'))).toEqual(['/home-search.json']);
    await page.close();
  });

  it('keeps the list as served when its rows are of the same generation, and renders it anew when not', async () => {
    // As text: these run in the page, and the tests' TypeScript has no DOM types.
    const mark = (page: Page) =>
      page.evaluate("(window.__first = document.querySelector('#results li')) !== null");
    const same = (page: Page) =>
      page.evaluate<boolean>("window.__first === document.querySelector('#results li')");
    for (const generation of ['as served', 'another']) {
      const page = await chromium.browser.newPage();
      let release: () => void = () => {};
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      await page.route('**/home-search.json', async (route) => {
        await held;
        const response = await route.fetch();
        const doc = await response.json();
        if (generation === 'another') doc.generated = '2027-01-01T00:00:00.000Z';
        await route.fulfill({ response, json: doc });
      });
      await page.goto(`${base}/`);
      await page.locator('#pager').waitFor({ state: 'visible' });
      await mark(page);
      release();
      await searchReady(page);
      expect(await same(page)).toBe(generation === 'as served');
      expect(await shownNames(page)).toEqual(rows.slice(0, HOME_PAGE_SIZE).map((r) => r.name));
      expect(await countText(page)).toBe(`${rows.length} of ${rows.length} plugins`);
      await page.close();
    }
  });

  it('searches search.json when its compact rows cannot be had', async () => {
    const page = await chromium.browser.newPage();
    const fetched: string[] = [];
    page.on('request', (request) => fetched.push(new URL(request.url()).pathname));
    await page.route('**/home-search.json', (route) => route.fulfill({ status: 404, body: 'gone' }));
    await page.goto(`${base}/?q=plugin-0012`);
    await searchReady(page);
    await expect.poll(() => shownNames(page)).toEqual(expected('plugin-0012').slice(0, HOME_PAGE_SIZE));
    expect(fetched.filter((p) => p.endsWith('search.json'))).toEqual(['/home-search.json', '/search.json']);
    await page.close();
  });

  it('shows the matching plugins as you type, paged and counted, and puts the search in the URL', async () => {
    const page = await chromium.open('/');
    await searchReady(page);
    await page.locator('#q').pressSequentially('group-3');
    const hits = expected('group-3');
    expect(hits.length).toBeGreaterThan(HOME_PAGE_SIZE * 2);
    await expect.poll(() => countText(page)).toBe(`${hits.length} of ${rows.length} plugins`);
    expect(await shownNames(page)).toEqual(hits.slice(0, HOME_PAGE_SIZE));
    expect(await query(page)).toEqual({ q: 'group-3' });
    expect(await nodeCount(page)).toBeLessThanOrEqual(MAX_NODES);

    // A name's prefix and a typo rank as the client ranks them.
    await page.locator('#q').fill('plugin-0012');
    await expect.poll(() => shownNames(page)).toEqual(expected('plugin-0012').slice(0, HOME_PAGE_SIZE));
    await page.locator('#q').fill('synthetc 1234');
    await expect.poll(() => shownNames(page)).toEqual(expected('synthetc 1234').slice(0, HOME_PAGE_SIZE));
    expect(await countText(page)).toBe(`${expected('synthetc 1234').length} of ${rows.length} plugins`);
    await page.close();
    expect(chromium.problems).toEqual([]);
  });

  it('pages through the hits with the next and previous controls, the page in the URL', async () => {
    const page = await chromium.open('/?q=group-3');
    await searchReady(page);
    const hits = expected('group-3');
    await clickTo(page, '#next', { q: 'group-3', page: '2' });
    expect(await shownNames(page)).toEqual(hits.slice(HOME_PAGE_SIZE, 2 * HOME_PAGE_SIZE));
    expect(await page.locator('#page-at').textContent()).toBe(
      `page 2 of ${Math.ceil(hits.length / HOME_PAGE_SIZE)}`,
    );
    const last = Math.ceil(hits.length / HOME_PAGE_SIZE);
    for (let n = 3; n <= last; n++) {
      await clickTo(page, '#next', { q: 'group-3', page: String(n) });
    }
    expect(await shownNames(page)).toEqual(hits.slice((last - 1) * HOME_PAGE_SIZE));
    expect(await page.locator('#next').isVisible()).toBe(false);
    await clickTo(page, '#prev', { q: 'group-3', page: String(last - 1) });
    expect(await shownNames(page)).toEqual(
      hits.slice((last - 2) * HOME_PAGE_SIZE, (last - 1) * HOME_PAGE_SIZE),
    );
    await page.close();
  });

  it('shows the search a URL names, filters and page included', async () => {
    const page = await chromium.open('/?q=plugin&type=observability&page=3');
    await searchReady(page);
    const hits = expected('plugin', { type: 'observability' });
    expect(await shownNames(page)).toEqual(hits.slice(2 * HOME_PAGE_SIZE, 3 * HOME_PAGE_SIZE));
    expect(await countText(page)).toBe(`${hits.length} of ${rows.length} plugins`);
    expect(await page.locator('#q').inputValue()).toBe('plugin');
    expect(await page.locator('#type').inputValue()).toBe('observability');
    await page.close();
  });

  it('goes back to the previous search, and forward again', async () => {
    const page = await chromium.open('/');
    await searchReady(page);
    await page.locator('#q').pressSequentially('plugin-00');
    await expect.poll(() => query(page)).toEqual({ q: 'plugin-00' });
    await page.locator('#type').selectOption('registry');
    await expect.poll(() => query(page)).toEqual({ q: 'plugin-00', type: 'registry' });
    await clickTo(page, '#next', { q: 'plugin-00', type: 'registry', page: '2' });

    await page.goBack();
    await expect.poll(() => query(page)).toEqual({ q: 'plugin-00', type: 'registry' });
    expect(await shownNames(page)).toEqual(
      expected('plugin-00', { type: 'registry' }).slice(0, HOME_PAGE_SIZE),
    );
    await page.goBack();
    await expect.poll(() => query(page)).toEqual({ q: 'plugin-00' });
    expect(await page.locator('#type').inputValue()).toBe('');
    expect(await shownNames(page)).toEqual(expected('plugin-00').slice(0, HOME_PAGE_SIZE));
    // Typing a search is one step of history, not one per key.
    await page.goBack();
    await expect.poll(() => query(page)).toEqual({});
    expect(await page.locator('#q').inputValue()).toBe('');
    expect(await shownNames(page)).toEqual(rows.slice(0, HOME_PAGE_SIZE).map((r) => r.name));
    await page.goForward();
    await expect.poll(() => shownNames(page)).toEqual(expected('plugin-00').slice(0, HOME_PAGE_SIZE));
    await page.close();
  });

  it('puts the page it shows in the URL when the URL names one past the last, in place of it', async () => {
    const hits = expected('group-3');
    const last = Math.ceil(hits.length / HOME_PAGE_SIZE);
    const page = await chromium.open('/');
    await searchReady(page);
    await page.goto(`${base}/?q=group-3&page=999`);
    await searchReady(page);
    const entries = await page.evaluate<number>('history.length');

    await expect.poll(() => query(page)).toEqual({ q: 'group-3', page: String(last) });
    expect(await shownNames(page)).toEqual(hits.slice((last - 1) * HOME_PAGE_SIZE));
    expect(await page.locator('#page-at').textContent()).toBe(`page ${last} of ${last}`);
    expect(await page.evaluate<number>('history.length')).toBe(entries);

    // Back and forward step through what was shown: the previous page, this one (as its URL now says), home.
    await clickTo(page, '#prev', { q: 'group-3', page: String(last - 1) });
    await page.goBack();
    await expect.poll(() => query(page)).toEqual({ q: 'group-3', page: String(last) });
    expect(await shownNames(page)).toEqual(hits.slice((last - 1) * HOME_PAGE_SIZE));
    await page.goBack();
    await expect.poll(() => query(page)).toEqual({});
    await page.goForward();
    await expect.poll(() => query(page)).toEqual({ q: 'group-3', page: String(last) });
    await page.close();
  });

  it('puts the last page in the URL before its rows arrive, by the count the page was served with', async () => {
    const last = Math.ceil(rows.length / HOME_PAGE_SIZE);
    const page = await chromium.open('/?page=999');

    await expect.poll(() => query(page)).toEqual({ page: String(last) });
    await searchReady(page);
    expect(await shownNames(page)).toEqual(rows.slice((last - 1) * HOME_PAGE_SIZE).map((r) => r.name));
    expect(await query(page)).toEqual({ page: String(last) });
    await page.close();
  });

  it('reads a provider with spaces around it as the provider, and puts it in the URL as GET /search takes it', async () => {
    const page = await chromium.open('/?provider=%20aws%20&type=Observability');
    await searchReady(page);

    await expect.poll(() => query(page)).toEqual({ provider: 'aws', type: 'Observability' });
    expect(await page.locator('#provider').inputValue()).toBe('aws');
    expect(await shownNames(page)).toEqual(
      expected('', { provider: 'aws', type: 'observability' }).slice(0, HOME_PAGE_SIZE),
    );
    expect(
      parseSearchQuery(new URLSearchParams(await page.evaluate<string>('location.search')).toString()),
    ).toMatchObject({ ok: true });
    await page.close();
  });

  it('reads a type with spaces around it as the type, as GET /search and plugindex search read it', async () => {
    const page = await chromium.open('/?type=%20Observability%20');
    await searchReady(page);
    expect(await page.locator('#type').inputValue()).toBe('observability');
    expect(await shownNames(page)).toEqual(expected('', { type: 'observability' }).slice(0, HOME_PAGE_SIZE));
    expect(parseSearchQuery('type=%20Observability%20')).toMatchObject({
      ok: true,
      request: { type: 'observability' },
    });
    await page.close();
  });

  it.each([
    // No plugin can have it: it matched nothing, where the endpoint and the CLI refuse it.
    'provider=awz',
    'type=plugin&q=plugin',
    // Given twice: the page took the first.
    'provider=aws&provider=gcp',
    'q=plugin&q=other',
    // Longer than q may be, and a line feed the field drops (it searched "pluginaws").
    `q=${'x'.repeat(257)}`,
    'q=plugin%0Aaws',
  ])(
    'tells what GET /search refuses in a link (%s), as it words it, and searches nothing',
    async (search) => {
      const page = await chromium.open(`/?${search}`);
      await searchReady(page);
      expect(await countText(page)).toBe(refusalOf(search).text);
      expect(await shownNames(page)).toEqual([]);
      expect(await page.locator('#pager').isVisible()).toBe(false);
      await page.close();
      expect(chromium.problems).toEqual([]);
    },
  );

  it("searches again once a field changes, no longer telling the link's fault", async () => {
    // A field changed is the search again: the link's fault is no longer told.
    const page = await chromium.open('/?provider=aws&provider=gcp');
    await searchReady(page);
    await page.locator('#q').fill('plugin-00');
    await expect
      .poll(() => countText(page))
      .toBe(`${expected('plugin-00', { provider: 'aws' }).length} of ${rows.length} plugins`);
    expect(await query(page)).toEqual({ q: 'plugin-00', provider: 'aws' });
    // And a provider typed that no plugin can have is told as the link's was.
    await page.locator('#provider').fill('awz');
    await expect.poll(() => countText(page)).toBe(refusalOf('provider=awz').text);
    await page.close();
    expect(chromium.problems).toEqual([]);
  });

  it('stays on its page when a field says it changed but holds what it held', async () => {
    const page = await chromium.open('/?q=plugin-00&type=registry&page=2');
    await searchReady(page);
    const hits = expected('plugin-00', { type: 'registry' });

    // What Chromium does to a select that loses focus after a scripted change (a click on next did).
    await page.locator('#type').dispatchEvent('change');
    await page.locator('#q').dispatchEvent('input');

    expect(await query(page)).toEqual({ q: 'plugin-00', type: 'registry', page: '2' });
    expect(await shownNames(page)).toEqual(hits.slice(HOME_PAGE_SIZE, 2 * HOME_PAGE_SIZE));
    await page.close();
  });

  it('answers a link of more distinct words than a search takes with that, at once, and searches again below it', async () => {
    // Every word within one typo of "plugin", so each matches every row: one pass over all of them a word.
    const words = new Set<string>();
    for (let i = 0; i < 6; i++)
      for (const c of 'abcdefghijklmnopqrstuvwxyz') {
        words.add(`plugin`.slice(0, i) + c + 'plugin'.slice(i + 1));
        words.add(`plugin`.slice(0, i) + c + 'plugin'.slice(i));
      }
    words.delete('plugin');
    // As many as fit in q's 256 characters (a longer link is refused for its length, as GET /search does).
    const q = [...words].slice(0, 30).join(' ');
    expect(q.length).toBeLessThanOrEqual(256);
    expect(expected(q).length).toBeGreaterThanOrEqual(PLUGINS);
    const page = await chromium.open(`/?q=${encodeURIComponent(q)}`);
    await searchReady(page);
    expect(await countText(page)).toBe(
      `q holds 30 distinct words: expected at most ${MAX_SEARCH_TERMS} distinct words`,
    );
    expect(await shownNames(page)).toEqual([]);
    expect(await page.locator('#pager').isVisible()).toBe(false);
    // The same word many times over is one word, and eight are searched as ever.
    const eight = [...words].slice(0, MAX_SEARCH_TERMS).join(' ');
    await page.locator('#q').fill(`${eight} ${eight}`);
    await expect.poll(() => countText(page)).toBe(`${expected(eight).length} of ${rows.length} plugins`);
    expect(await shownNames(page)).toEqual(expected(eight).slice(0, HOME_PAGE_SIZE));
    await page.close();
    expect(chromium.problems).toEqual([]);
  });

  it("keeps a hostile visitor's URL as text: the search, the filters and the type it names", async () => {
    const q = '<img src=x onerror="window.__pwned = 5">';
    const type = '"><svg onload="window.__pwned = 6">';
    const provider = "'><script>window.__pwned = 7</script>";
    const search = new URLSearchParams({ q, type, provider, capability: '</noscript><b>x</b>', page: '1e9' });
    const page = await chromium.open(`/?${search}`);
    await searchReady(page);
    expect(await page.locator('#q').inputValue()).toBe(q);
    expect(await page.locator('#type').inputValue()).toBe(type.toLowerCase());
    expect(await page.locator('#type option:checked').textContent()).toBe(type.toLowerCase());
    expect(await page.locator('#provider').inputValue()).toBe(provider);
    // No plugin can have that type: told as GET /search tells it, as text.
    expect(await countText(page)).toBe(refusalOf(search.toString()).text);
    expect(await page.locator('main img, main svg, main b, main script:not(:last-of-type)').count()).toBe(0);
    expect(await pwned(page)).toBeUndefined();
    await page.close();
    expect(chromium.problems).toEqual([]);
  });

  it('shows hostile plugin text as text, and runs none of it', async () => {
    const page = await chromium.open('/?q=zz-hostile');
    await searchReady(page);
    await expect.poll(() => shownNames(page)).toEqual(['zz-hostile']);
    const item = page.locator('#results li.plugin');
    expect(await item.locator('.display-name').textContent()).toBe(HOSTILE_DISPLAY);
    expect(await item.locator('.description').textContent()).toBe(HOSTILE_DESCRIPTION);
    expect(await item.locator('.chips li').allTextContents()).toContain('<b>bold</b>');
    expect(await page.locator('main img, main script:not(:last-of-type), main b').count()).toBe(0);
    expect(await pwned(page)).toBeUndefined();
    await page.close();
    expect(chromium.problems).toEqual([]);
  });

  it('without script, shows its first page of plugins with their links, and no search form that would do nothing', async () => {
    const context = await chromium.browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    await page.goto(`${base}/`);
    expect(await shownNames(page)).toEqual(rows.slice(0, HOME_PAGE_SIZE).map((r) => r.name));
    expect(await countText(page)).toBe(`${rows.length} of ${rows.length} plugins`);
    expect(await page.locator('#search').isVisible()).toBe(false);
    expect(await page.locator('noscript').first().textContent()).toContain('search.json');
    expect(await page.locator('main a[href="search.json"]').first().isVisible()).toBe(true);
    await context.close();
  });
});

describe('the page of a plugin with 500 versions', () => {
  const versionsShown = (page: Page) =>
    page
      .locator('#version-rows tr.version')
      .evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-version')));
  const all = () => paged.versions.map((v) => v.version);
  const pages = Math.ceil(VERSIONS / VERSIONS_PAGE_SIZE);

  it('shows one page of versions, in at most 2,000 nodes', async () => {
    const page = await chromium.open(`/plugins/${paged.name}/index.html`);
    await page.locator('#versions-pager').waitFor({ state: 'visible' });
    expect(await versionsShown(page)).toEqual(all().slice(0, VERSIONS_PAGE_SIZE));
    expect(await page.locator('#versions-at').textContent()).toBe(`page 1 of ${pages}`);
    expect(await nodeCount(page)).toBeLessThanOrEqual(MAX_NODES);
    await page.close();
    expect(chromium.problems).toEqual([]);
  });

  it('reaches every version through its pages, the page in the URL, back and forward working', async () => {
    const page = await chromium.open(`/plugins/${paged.name}/index.html`);
    await page.locator('#versions-pager').waitFor({ state: 'visible' });
    const seen = await versionsShown(page);
    for (let n = 2; n <= pages; n++) {
      await page.locator('#versions-next').click();
      expect(new URL(page.url()).searchParams.get('versions')).toBe(String(n));
      seen.push(...(await versionsShown(page)));
      expect(await nodeCount(page)).toBeLessThanOrEqual(MAX_NODES);
    }
    expect(seen).toEqual(all());
    expect(await page.locator('#versions-next').isVisible()).toBe(false);
    // A yanked version keeps its marks and reason on a later page.
    const yanked = paged.versions.slice(-VERSIONS_PAGE_SIZE).find((v) => v.yanked);
    const row = page.locator(`#version-rows tr.version[data-version="${yanked?.version}"]`);
    expect(await row.locator('.badge.yanked').count()).toBe(1);
    expect(await row.locator('[data-testid="yanked"]').textContent()).toBe('Yanked: a bad build');
    await page.goBack();
    await expect
      .poll(() => versionsShown(page))
      .toEqual(all().slice((pages - 2) * VERSIONS_PAGE_SIZE, (pages - 1) * VERSIONS_PAGE_SIZE));
    await page.goForward();
    await expect.poll(() => versionsShown(page)).toEqual(all().slice((pages - 1) * VERSIONS_PAGE_SIZE));
    await page.close();
    expect(chromium.problems).toEqual([]);
  });

  it('opens the page of versions its URL names', async () => {
    const page = await chromium.open(`/plugins/${paged.name}/index.html?versions=3#versions`);
    await page.locator('#versions-pager').waitFor({ state: 'visible' });
    expect(await versionsShown(page)).toEqual(all().slice(2 * VERSIONS_PAGE_SIZE, 3 * VERSIONS_PAGE_SIZE));
    await page.locator('#versions-prev').click();
    expect(await versionsShown(page)).toEqual(all().slice(VERSIONS_PAGE_SIZE, 2 * VERSIONS_PAGE_SIZE));
    expect(new URL(page.url()).searchParams.get('versions')).toBe('2');
    await page.close();
  });

  it('without script, shows every version, each page its own table', async () => {
    const context = await chromium.browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    await page.goto(`${base}/plugins/${paged.name}/index.html`);
    const versions = await page
      .locator('table.versions > tbody > tr.version')
      .evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-version')));
    expect(versions).toEqual(all());
    const second = paged.versions[VERSIONS_PAGE_SIZE];
    const row = page.locator(`tr.version[data-version="${second?.version}"]`);
    expect(await row.isVisible()).toBe(true);
    expect(await row.locator('a', { hasText: 'manifest' }).getAttribute('href')).toBe(second?.manifest_url);
    expect(await page.locator('#versions-pager').isVisible()).toBe(false);
    await context.close();
  });
});
