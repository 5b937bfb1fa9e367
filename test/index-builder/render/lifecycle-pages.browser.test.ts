/**
 * A plugin's lifecycle on its page, in headless Chromium: a plugin document holding every state an action
 * can leave (a plugin-level deprecation, advisories live and withdrawn, versions yanked, deprecated,
 * removed, published by a key since revoked, and security scans), rendered by renderPluginPage and served
 * by the local server with the pages' headers (CSP by hash), then read as a person sees it. Reasons and
 * summaries are text people typed into an action: markup in them must show as text and run nothing.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRegistryServer, listenRegistryServer } from '../../../cli/local/server.ts';
import type { PluginDocument, VersionRecord } from '../../../index-builder/model.ts';
import {
  FAVICON_SVG,
  PAGE_STYLE,
  renderIndexPage,
  renderPluginPage,
} from '../../../index-builder/render/html.ts';
import { CACHE_MUTABLE } from '../../../index-builder/store.ts';
import { launchChromium, type PageBrowser } from '../../support/chromium.ts';
import { encode } from '../../support/fixtures.ts';
import { MemoryStore } from '../../support/memory-store.ts';

const HOSTILE_REASON = '<img src=x onerror="window.__pwned = 1">broken build';
const HOSTILE_SUMMARY = '<script>window.__pwned = 2</script> & "quotes"';
const HOSTILE_MESSAGE = 'Moved\'><svg onload="window.__pwned = 3">';
const HOSTILE_REMOVAL = '</td></tr><tr><td><script>window.__pwned = 4</script>';
const PUBLISHER = 'A'.repeat(40);
const NAME = 'lifecycle-demo';

let base = '';
let close: () => Promise<void>;
let chromium: PageBrowser;

function version(v: string, overrides: Partial<VersionRecord> = {}): VersionRecord {
  const at = `${base}/plugins/${NAME}/${v}`;
  return {
    version: v,
    published: '2026-10-01T00:00:00.000Z',
    prerelease: false,
    yanked: false,
    deprecated: false,
    api_version: 'v1',
    manifest_url: `${at}/manifest.json`,
    manifest_signature_url: `${at}/manifest.json.asc`,
    manifest_sha256: 'e'.repeat(64),
    manifest_size: 100,
    source_sha256: 'f'.repeat(64),
    publisher: PUBLISHER,
    artifacts: [
      {
        os: 'linux',
        arch: 'amd64',
        url: `${at}/artifacts/linux-amd64/tool`,
        sha256: '1'.repeat(64),
        size_bytes: 2048,
        hosted: true,
      },
    ],
    ...overrides,
  };
}

function plugin(name: string, overrides: Partial<PluginDocument>): PluginDocument {
  return {
    schema: 'plugindex/plugin/v1',
    name,
    display_name: name,
    plugin_type: 'cost_source',
    latest_version: '1.3.0',
    channels: {},
    capabilities: ['actual_cost'],
    supported_providers: ['aws'],
    tags: [],
    owners: [PUBLISHER],
    versions: [],
    ...overrides,
  };
}

/** Every state at once. */
function lifecycleDocument(): PluginDocument {
  return plugin(NAME, {
    deprecation: { message: HOSTILE_MESSAGE, replacement: 'new-demo', at: '2026-11-03T10:00:00.000Z' },
    advisories: [
      {
        id: 'PDX-2026-0001',
        severity: 'critical',
        affected: '>=1.0.0 <1.2.0',
        fixed: '1.2.0',
        summary: 'Credentials written to the log',
        url: 'https://advisories.example/PDX-2026-0001',
        published: '2026-11-02T00:00:00.000Z',
      },
      {
        id: 'PDX-2026-0002',
        severity: 'low',
        affected: '<1.3.0',
        summary: 'A false alarm',
        published: '2026-11-02T00:00:00.000Z',
        withdrawn: { at: '2026-11-04T00:00:00.000Z', reason: 'not a vulnerability' },
      },
      {
        id: 'PDX-2026-0003',
        severity: 'moderate',
        affected: '1.2.0',
        summary: HOSTILE_SUMMARY,
        url: 'javascript:window.__pwned=5',
        published: '2026-11-05T00:00:00.000Z',
      },
      {
        id: 'PDX-2026-0004',
        severity: 'high',
        affected: '0.9.0',
        summary: 'Over plain http',
        url: 'http://advisories.example/PDX-2026-0004',
        published: '2026-11-05T00:00:00.000Z',
      },
    ],
    versions: [
      version('1.3.0', {
        publisher_revoked: { at: '2026-11-06T00:00:00.000Z', reason: HOSTILE_REASON },
      }),
      version('1.2.0', {
        deprecated: true,
        deprecation_message: 'Superseded by new-demo',
        deprecation_replacement: 'new-demo',
        security_scan: {
          status: 'vulnerable',
          vulnerabilities: [
            {
              id: 'CVE-2026-1234',
              severity: 'high',
              summary: HOSTILE_SUMMARY,
              url: 'https://cve.example/CVE-2026-1234',
            },
            { id: 'GHSA-aaaa-bbbb-cccc', url: 'javascript:window.__pwned=6' },
          ],
          last_scan: '2026-10-30T12:00:00Z',
          scan_version: 'trivy 0.60.0',
        },
      }),
      version('1.1.0', { yanked: true, yanked_reason: HOSTILE_REASON }),
      version('1.0.0', {
        yanked: true,
        removed: { reason: HOSTILE_REMOVAL, at: '2026-11-07T00:00:00.000Z' },
      }),
      version('0.9.0', { security_scan: { status: 'secure', vulnerabilities: [] } }),
    ],
  });
}

beforeAll(async () => {
  const site = new MemoryStore();
  const listening = await listenRegistryServer(createRegistryServer({ site }), 0);
  base = listening.url;
  close = listening.close;
  const registry = { name: 'Lifecycle Registry', url: base };
  const put = (key: string, text: string, contentType: string) =>
    site.put(key, encode(text), { contentType, cacheControl: CACHE_MUTABLE });
  await put('favicon.svg', FAVICON_SVG, 'image/svg+xml');
  await put('style.css', PAGE_STYLE, 'text/css; charset=utf-8');
  await put(
    `plugins/${NAME}/index.html`,
    renderPluginPage(lifecycleDocument(), registry),
    'text/html; charset=utf-8',
  );
  // Published before URLs with user information were refused: each reads as the host before its `@`.
  const spoofing = plugin('spoof-demo', {
    homepage: 'https://github.com@evil.example/acme',
    repository: 'https://github.com/acme/spoof?by=a@b',
    advisories: [
      {
        id: 'PDX-SPOOF',
        severity: 'high',
        affected: '*',
        summary: 'see the details',
        published: '2026-11-01T00:00:00.000Z',
        url: 'https://nvd.nist.gov@evil.example/1',
      },
    ],
  });
  await put(
    'plugins/spoof-demo/index.html',
    renderPluginPage(spoofing, registry),
    'text/html; charset=utf-8',
  );
  const replacement = plugin('new-demo', { versions: [], latest_version: null });
  await put(
    'plugins/new-demo/index.html',
    renderPluginPage(replacement, registry),
    'text/html; charset=utf-8',
  );
  const row = (name: string, extra: object = {}) => ({
    name,
    latest_version: '1.3.0',
    plugin_type: 'cost_source',
    providers: ['aws'],
    capabilities: ['actual_cost'],
    keywords: [],
    ...extra,
  });
  // new-demo has no stable release (its document says latest_version null), as when every stable version
  // is yanked; the home page lists it both as served and as its script renders it.
  const rows = [row(NAME, { deprecated: true }), row('new-demo', { latest_version: null })];
  await put(
    'index.html',
    renderIndexPage(registry, { rows, total: rows.length }),
    'text/html; charset=utf-8',
  );
  await put('search.json', JSON.stringify({ plugins: rows }), 'application/json');
  chromium = await launchChromium(() => base);
});

afterAll(async () => {
  await chromium?.close();
  await close?.();
});

const pwned = (page: Page) => page.evaluate(() => (globalThis as { __pwned?: number }).__pwned);
const row = (page: Page, v: string) => page.locator(`table.versions tr.version[data-version="${v}"]`);
const platforms = (page: Page, v: string) => page.locator(`tr.platforms[data-version="${v}"]`);

describe('when a person opens the page of a plugin with a history', () => {
  let page: Page;
  beforeAll(async () => {
    page = await chromium.open(`/plugins/${NAME}/index.html`);
  });
  afterAll(async () => {
    await page.close();
  });

  it('shows the plugin-level deprecation as a banner, its message as text, linking to the replacement', async () => {
    const banner = page.locator('[data-testid="plugin-deprecation"]');
    expect(await banner.isVisible()).toBe(true);
    expect(await banner.textContent()).toBe(
      `This plugin is deprecated (2026-11-03): ${HOSTILE_MESSAGE} — use new-demo instead.`,
    );
    expect(await banner.locator('a.replacement').getAttribute('href')).toBe('/plugins/new-demo/index.html');
  });

  it('lists each advisory with its id, severity, range, fix, summary and an https link only', async () => {
    const advisory = (id: string) => page.locator(`.advisory[data-advisory="${id}"]`);
    const first = advisory('PDX-2026-0001');
    expect(await first.isVisible()).toBe(true);
    expect(await first.locator('.severity').textContent()).toBe('critical');
    expect(await first.locator('code.affected').textContent()).toBe('>=1.0.0 <1.2.0');
    expect(await first.locator('code.fixed').textContent()).toBe('1.2.0');
    expect(await first.locator('.summary').textContent()).toBe('Credentials written to the log');
    expect(await first.locator('a').getAttribute('href')).toBe('https://advisories.example/PDX-2026-0001');
    expect(await first.getAttribute('class')).not.toContain('withdrawn');

    const withdrawn = advisory('PDX-2026-0002');
    expect(await withdrawn.getAttribute('class')).toContain('withdrawn');
    expect(await withdrawn.locator('[data-testid="withdrawn"]').textContent()).toBe(
      'withdrawn 2026-11-04: not a vulnerability',
    );
    expect(await withdrawn.textContent()).toContain('no fix yet');

    const hostile = advisory('PDX-2026-0003');
    expect(await hostile.locator('.summary').textContent()).toBe(HOSTILE_SUMMARY);
    expect(await hostile.locator('a').count()).toBe(0);
    expect(await hostile.textContent()).toContain('javascript:window.__pwned=5');
    // Not over plain http either: people follow these links deciding what to trust.
    expect(await advisory('PDX-2026-0004').locator('a').count()).toBe(0);
    // Newest first.
    const order = await page
      .locator('.advisory[data-advisory]')
      .evaluateAll((items) => items.map((i) => i.getAttribute('data-advisory')));
    expect(order).toEqual(['PDX-2026-0004', 'PDX-2026-0003', 'PDX-2026-0002', 'PDX-2026-0001']);
  });

  it('marks the versions a live advisory affects, and none for a withdrawn one', async () => {
    const marks = async (v: string) =>
      row(page, v)
        .locator('.advisory-mark')
        .evaluateAll((items) => items.map((i) => i.textContent));
    expect(await marks('1.3.0')).toEqual([]);
    expect(await marks('1.2.0')).toEqual(['PDX-2026-0003 (moderate)']);
    expect(await marks('1.1.0')).toEqual(['PDX-2026-0001 (critical)']);
    expect(await marks('1.0.0')).toEqual(['PDX-2026-0001 (critical)']);
    expect(await marks('0.9.0')).toEqual(['PDX-2026-0004 (high)']);
    // A mark leads to its advisory on the same page.
    await row(page, '1.1.0').locator('.advisory-mark').click();
    expect(new URL(page.url()).hash).toBe('#advisory-PDX-2026-0001');
  });

  it('shows a yanked version with its reason as text', async () => {
    expect(await row(page, '1.1.0').getAttribute('class')).toContain('yanked');
    expect(await row(page, '1.1.0').locator('.badge.yanked').textContent()).toBe('yanked');
    expect(await row(page, '1.1.0').locator('[data-testid="yanked"]').textContent()).toBe(
      `Yanked: ${HOSTILE_REASON}`,
    );
  });

  it('shows a deprecated version with its message and a link to the replacement', async () => {
    const note = row(page, '1.2.0').locator('[data-testid="deprecated"]');
    expect(await note.textContent()).toBe('Deprecated: Superseded by new-demo — use new-demo instead.');
    expect(await note.locator('a').getAttribute('href')).toBe('/plugins/new-demo/index.html');
  });

  it('shows a removed version with its reason and no link to any of its files', async () => {
    const removed = row(page, '1.0.0');
    expect(await removed.getAttribute('class')).toContain('removed');
    expect(await removed.locator('.badge.removed').textContent()).toBe('removed');
    expect(await removed.locator('.badge.yanked').count()).toBe(0);
    expect(await removed.locator('[data-testid="removed"]').textContent()).toBe(
      `Removed 2026-11-07: ${HOSTILE_REMOVAL}. Its files are no longer published.`,
    );
    const links = [
      ...(await removed.locator('a[href]').evaluateAll((a) => a.map((x) => x.getAttribute('href')))),
      ...(await platforms(page, '1.0.0')
        .locator('a[href]')
        .evaluateAll((a) => a.map((x) => x.getAttribute('href')))),
    ];
    // Only the advisory mark, an anchor on this page.
    expect(links).toEqual(['#advisory-PDX-2026-0001']);
    expect(await platforms(page, '1.0.0').locator('tr.artifact').textContent()).toContain('removed');
    // Its rows stay two, whatever its reason tried to open or close.
    expect(await page.locator('tr[data-version="1.0.0"]').count()).toBe(2);
  });

  it('marks a version whose publisher key was revoked, with when and why', async () => {
    const revoked = row(page, '1.3.0');
    expect(await revoked.locator('.badge.revoked').textContent()).toBe('publisher key revoked');
    expect(await revoked.locator('[data-testid="revoked"]').textContent()).toBe(
      `The key that published it was revoked 2026-11-06: ${HOSTILE_REASON}`,
    );
  });

  it("shows a version's security scan: status, scanner, and each finding with an https link only", async () => {
    const scan = platforms(page, '1.2.0').locator('[data-testid="security-scan"]');
    expect(await scan.isVisible()).toBe(true);
    expect(await scan.locator('.scan-status').textContent()).toBe('vulnerable');
    expect(await scan.textContent()).toContain('(trivy 0.60.0, scanned 2026-10-30)');
    const cve = scan.locator('li[data-vulnerability="CVE-2026-1234"]');
    expect(await cve.locator('.badge').textContent()).toBe('high');
    expect(await cve.locator('.vulnerability-summary').textContent()).toBe(HOSTILE_SUMMARY);
    expect(await cve.locator('a').getAttribute('href')).toBe('https://cve.example/CVE-2026-1234');
    expect(await scan.locator('li[data-vulnerability="GHSA-aaaa-bbbb-cccc"] a').count()).toBe(0);
    const secure = platforms(page, '0.9.0').locator('[data-testid="security-scan"]');
    expect(await secure.locator('.scan-status').textContent()).toBe('secure');
    expect(await secure.locator('li').count()).toBe(0);
    expect(await platforms(page, '1.3.0').locator('[data-testid="security-scan"]').count()).toBe(0);
  });

  it('offers the install recipe for latest, never for a removed or yanked version', async () => {
    expect(await page.locator('code.client-install').textContent()).toBe(`plugindex install ${NAME}@1.3.0`);
  });

  it('ran none of the hostile text: no element it names exists, nothing set, nothing logged', async () => {
    expect(await pwned(page)).toBeUndefined();
    expect(await page.locator('main img, main svg, main script').count()).toBe(0);
    // Every href on the page is the registry's own or https: no javascript: link anywhere.
    const hrefs = await page.locator('a[href]').evaluateAll((a) => a.map((x) => x.getAttribute('href')));
    expect(hrefs.filter((h) => /^\s*javascript:/i.test(h ?? ''))).toEqual([]);
    expect(chromium.problems).toEqual([]);
  });

  it('reaches the replacement plugin by its link', async () => {
    const next = await chromium.open(`/plugins/${NAME}/index.html`);
    await next.click('[data-testid="plugin-deprecation"] a.replacement');
    await next.waitForURL(`${base}/plugins/new-demo/index.html`);
    expect(await next.locator('h1.display-name').textContent()).toBe('new-demo');
    await next.close();
  });
});

describe('when a person opens the home page', () => {
  it('marks a deprecated plugin in the list, and only that one', async () => {
    const page = await chromium.open('/');
    await expect.poll(() => page.locator('#count').textContent()).toBe('2 of 2 plugins');
    const deprecated = await page
      .locator('#results li.plugin')
      .evaluateAll((items) =>
        items.map((li) => [li.getAttribute('data-name'), li.querySelector('.badge.deprecated')?.textContent]),
      );
    expect(deprecated).toEqual([
      [NAME, 'deprecated'],
      ['new-demo', undefined],
    ]);
    await page.close();
    expect(chromium.problems).toEqual([]);
  });

  it('says "no stable release" for a plugin without one, as its own page does, served and searched', async () => {
    const version = (page: Page) =>
      page.locator('#results li.plugin .version').evaluateAll((items) => items.map((e) => e.textContent));
    // Without script: the list as the publish rendered it.
    const context = await chromium.browser.newContext({ javaScriptEnabled: false });
    const served = await context.newPage();
    await served.goto(`${base}/`);
    expect(await version(served)).toEqual(['1.3.0', 'no stable release']);
    await context.close();
    // With script: the list the script builds from search.json, for a search and for the listing.
    for (const path of ['/?q=demo', '/']) {
      const page = await chromium.open(path);
      await page.locator('#results[data-ready]').waitFor({ state: 'attached' });
      expect(await version(page), path).toEqual(['1.3.0', 'no stable release']);
      await page.close();
    }
    const plugin = await chromium.open('/plugins/new-demo/index.html');
    expect(await plugin.locator('body').textContent()).toContain('no stable release');
    await plugin.close();
    expect(chromium.problems).toEqual([]);
  });
});

describe('when a plugin page names a URL with user information', () => {
  it('links none of them: github.com@evil.example reads as github.com and goes to evil.example', async () => {
    const page = await chromium.open('/plugins/spoof-demo/index.html');
    const hosts = await page
      .locator('a[href]')
      .evaluateAll((links) => links.map((a) => (a as unknown as { hostname: string }).hostname));
    expect(hosts).not.toContain('evil.example');
    expect(hosts).toContain('github.com');
    expect(await page.locator('dl.facts').first().textContent()).toContain(
      'https://github.com@evil.example/acme',
    );
    await page.close();
    expect(chromium.problems).toEqual([]);
  });
});
