/**
 * A page an earlier release published, served by this release's local server, in headless Chromium
 * (Debian's, driven by playwright-core). The page keeps the inline script it was rendered with; the policy
 * is the server's, so it must still allow that script, or the home page's search (and a plugin page's
 * version pager) does nothing until the page is rendered again.
 *
 * The earlier script is real: the home page script of commit ad7128f (2026-12-06, the release before the
 * two of 2026-12-07), written out from that commit's index-builder/render/page-script.ts `HOME_SCRIPT`
 * (bundled at that commit, its SHA-256 checked against the hash that commit's serving.ts allowed).
 */
import { readFileSync } from 'node:fs';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRegistryServer, listenRegistryServer } from '../../../cli/local/server.ts';
import { parseRegistryConfig } from '../../../index-builder/config.ts';
import { HOME_PAGE_KEY } from '../../../index-builder/layout.ts';
import { processSubmissions } from '../../../index-builder/pipeline/index.ts';
import { HOME_SCRIPT } from '../../../index-builder/render/page-script.ts';
import { CHROMIUM, CHROMIUM_FLAGS } from '../../support/chromium.ts';
import { makeBundle, makeRegistry, sha256, validManifest } from '../../support/fixtures.ts';
import { MemoryStore } from '../../support/memory-store.ts';

const EARLIER_HOME_SCRIPT = readFileSync(
  new URL('../../support/released-page-scripts/home-ad7128f.txt', import.meta.url),
  'utf8',
);
const site = new MemoryStore();
let browser: Browser;
let base: string;
let close: () => Promise<void>;
/** The home page as this release published it. */
let published: string;

beforeAll(async () => {
  const listening = await listenRegistryServer(createRegistryServer({ site }), 0);
  base = listening.url;
  close = listening.close;
  const registry = await makeRegistry();
  const context = {
    ...registry.context,
    site,
    config: parseRegistryConfig({ name: 'Released Pages', url: base }),
  };
  const bundles = await Promise.all([
    makeBundle({ manifest: validManifest({ name: 'aws-costs' }) }),
    makeBundle({
      manifest: validManifest({
        name: 'gcp-metrics',
        plugin_type: 'observability',
        supported_providers: ['gcp'],
        capabilities: ['custom_metrics'],
      }),
    }),
  ]);
  const result = await processSubmissions(context, await registry.submit(...bundles));
  if (result.outcomes.some((o) => o.status !== 'accepted'))
    throw new Error(`setup: ${JSON.stringify(result.outcomes.map((o) => o.problems))}`);
  const home = await site.get(HOME_PAGE_KEY);
  if (!home) throw new Error('setup: no home page');
  published = new TextDecoder().decode(home.body);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
});

afterAll(async () => {
  await browser?.close();
  await close?.();
});

/** Stores the home page as if a release whose home script was `script` had rendered it. */
async function publishHomeWith(script: string): Promise<void> {
  const current = `<script>${HOME_SCRIPT}</script>`;
  expect(published).toContain(current);
  const home = await site.get(HOME_PAGE_KEY);
  if (!home) throw new Error('no home page');
  const body = new TextEncoder().encode(published.replace(current, () => `<script>${script}</script>`));
  await site.put(HOME_PAGE_KEY, body, {
    contentType: home.contentType,
    cacheControl: home.cacheControl,
    sha256: sha256(body),
  });
}

/** Opens the home page, recording its script errors and console errors (a CSP violation among them). */
async function openHome(problems: string[]): Promise<Page> {
  const page = await browser.newPage();
  page.on('pageerror', (error) => problems.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(message.text());
  });
  await page.goto(`${base}/`);
  return page;
}

const names = (page: Page) =>
  page.locator('#results li.plugin').evaluateAll((items) => items.map((li) => li.getAttribute('data-name')));

describe('when the home page an earlier release published is served after an upgrade', () => {
  it('runs its script: the search filters as the person types, with no CSP violation', async () => {
    expect(EARLIER_HOME_SCRIPT).not.toBe(HOME_SCRIPT);
    await publishHomeWith(EARLIER_HOME_SCRIPT);
    const problems: string[] = [];
    const page = await openHome(problems);
    expect(await names(page)).toEqual(['aws-costs', 'gcp-metrics']);
    // The form is hidden until the script shows it: waited for as a poll is (20 s only bounds a failure).
    await page.fill('#q', 'gcp', { timeout: 20_000 });
    await expect.poll(() => names(page)).toEqual(['gcp-metrics']);
    expect(new URL(page.url()).searchParams.get('q')).toBe('gcp');
    expect(problems).toEqual([]);
    await page.close();
  });
});

describe('when the home page carries a script no release shipped', () => {
  it('blocks it (a CSP violation): no search form, the list as rendered; the policy is no wider than the releases', async () => {
    // One character more than this release's script: a stand-in for markup that slipped past escaping.
    await publishHomeWith(`${HOME_SCRIPT} `);
    const problems: string[] = [];
    const page = await openHome(problems);
    await expect.poll(() => problems.join('\n')).toMatch(/Content Security Policy/);
    // What an earlier release's page looked like before this fix: the form stays hidden (the script shows
    // it), and the list is the first page as rendered, no other.
    expect(await page.locator('#search').isHidden()).toBe(true);
    expect(await names(page)).toEqual(['aws-costs', 'gcp-metrics']);
    await page.close();
  });
});
