/**
 * The home page's look-alike flags in headless Chromium: a result whose name reads as another owner's
 * plugin (index-builder/search.ts `lookAlikesOf`, the flag `plugindex search` prints and `GET /search`
 * answers) says so in its row, in text ("looks like: awscost (other owner)"), not by colour alone; from the
 * page's compact rows (home-search.json, which carries the flags) and from search.json (whose rows carry
 * their owners, flagged once when they arrive), in the list as served and in a search's answer. Two names in
 * the same hands are not flagged.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syntheticDocument } from '../../../bench/synthetic.ts';
import { syntheticPages } from '../../../bench/synthetic-pages.ts';
import { createRegistryServer, listenRegistryServer } from '../../../cli/local/server.ts';
import type { PluginDocument } from '../../../index-builder/model.ts';
import { CACHE_MUTABLE } from '../../../index-builder/store.ts';
import { launchChromium, type PageBrowser } from '../../support/chromium.ts';
import { encode } from '../../support/fixtures.ts';
import { MemoryStore } from '../../support/memory-store.ts';

const ALICE = 'A'.repeat(40);
const MALLORY = 'D'.repeat(40);

function plugin(name: string, owners: readonly string[]): PluginDocument {
  return { ...syntheticDocument(50_000, ALICE), name, owners };
}

const SQUATS = [
  'squatname',
  's-quatname',
  'sq-uatname',
  'squ-atname',
  'squa-tname',
  'squat-name',
  'squatn-ame',
  'squatna-me',
  'squatnam-e',
  's-q-uatname',
  'sq-ua-tname',
  'squ-at-name',
];

/** A squat pair (other owners), a name in the same hands twice, and a plugin hostile text names. */
const EXTRA = [
  plugin('aws-cost', [ALICE]),
  plugin('awsc0st', [MALLORY]),
  plugin('foo-cli', [ALICE]),
  plugin('foocli', [ALICE]),
  plugin('kube-lens', [ALICE]),
  plugin('kubelens', [MALLORY, '<b>x</b>']),
  // Twelve owners of one name, spelt twelve ways: each row reads as eleven others'.
  ...SQUATS.map((name, i) => plugin(name, [i.toString(16).toUpperCase().repeat(40)])),
];

interface Site {
  readonly base: string;
  readonly close: () => Promise<void>;
}
const sites: Record<'compact' | 'search', Site> = {} as Record<'compact' | 'search', Site>;
let chromium: PageBrowser;
let at = '';

async function serve(homeSearch: boolean): Promise<Site> {
  const site = new MemoryStore();
  const listening = await listenRegistryServer(createRegistryServer({ site }), 0);
  const built = syntheticPages({ name: 'Look-alikes', url: listening.url }, 60, {
    extra: EXTRA,
    versions: 1,
    homeSearch,
  });
  for (const file of built.files)
    await site.put(file.key, encode(file.body), {
      contentType: file.contentType,
      cacheControl: CACHE_MUTABLE,
    });
  return { base: listening.url, close: listening.close };
}

beforeAll(async () => {
  sites.compact = await serve(true);
  sites.search = await serve(false);
  chromium = await launchChromium(() => at);
});

afterAll(async () => {
  await chromium?.close();
  await Promise.all(Object.values(sites).map((s) => s.close()));
});

const searchReady = (page: Page) => page.locator('#results[data-ready]').waitFor({ state: 'attached' });
/** Each shown result's name and the flag its row shows (null for none). */
const flags = (page: Page) =>
  page
    .locator('#results li.plugin')
    .evaluateAll((items) =>
      items.map((li) => [li.getAttribute('data-name'), li.querySelector('.look-alike')?.textContent ?? null]),
    );

describe.each([
  ['compact', 'home-search.json'],
  ['search', 'search.json'],
] as const)('when the home page searches %s rows (%s)', (kind, _file) => {
  it('flags a name that reads as another owner’s, in the list as served and once the rows are read', async () => {
    at = sites[kind].base;
    const page = await chromium.open('/');
    const before = Object.fromEntries(await flags(page));
    await searchReady(page);
    const shown = Object.fromEntries(await flags(page));
    for (const got of [before, shown]) {
      expect(got['aws-cost']).toBe('looks like: awsc0st (other owner)');
      expect(got.awsc0st).toBe('looks like: aws-cost (other owner)');
      // The same hands: no one is misled about who publishes either.
      expect(got['foo-cli']).toBeNull();
      expect(got.foocli).toBeNull();
      expect(got['kube-lens']).toBe('looks like: kubelens (other owner)');
    }
    // Told as text a screen reader reads with the row, not only as a colour.
    await expect
      .poll(() => page.getByRole('note').filter({ hasText: 'looks like: awsc0st (other owner)' }).count())
      .toBe(1);
    await page.close();
  });

  it('flags a search’s hits as plugindex search does', async () => {
    at = sites[kind].base;
    const page = await chromium.open('/?q=awscost');
    await searchReady(page);
    await expect
      .poll(() => flags(page))
      .toEqual([
        ['aws-cost', 'looks like: awsc0st (other owner)'],
        ['awsc0st', 'looks like: aws-cost (other owner)'],
      ]);
    await page.locator('#q').fill('foocli');
    await expect
      .poll(() => flags(page))
      .toEqual([
        ['foocli', null],
        ['foo-cli', null],
      ]);
    await page.close();
  });
});

describe.each([
  ['compact', 'home-search.json'],
  ['search', 'search.json'],
] as const)(
  'when a search on the home page (%s rows) hits a name with more than ten look-alikes',
  (kind, _file) => {
    it('names ten and counts the rest, as plugindex info does', async () => {
      at = sites[kind].base;
      const page = await chromium.open('/?q=squatname');
      await searchReady(page);
      const others = (name: string) => SQUATS.filter((n) => n !== name).sort();
      await expect
        .poll(async () => Object.fromEntries(await flags(page)))
        .toMatchObject(
          Object.fromEntries(
            SQUATS.map((name) => [
              name,
              `looks like: ${others(name).slice(0, 10).join(', ')} and 1 more (other owners)`,
            ]),
          ),
        );
      await page.close();
    });
  },
);

describe('the look-alike flags', () => {
  it('run under the pages’ CSP and log no error', () => {
    expect(chromium.problems).toEqual([]);
  });
});
