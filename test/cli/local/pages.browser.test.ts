/**
 * The human pages in headless Chromium (Debian's, driven by playwright-core), served by the local server
 * over a registry the real pipeline published: the home page's client-side search, a plugin page, the
 * spec's endpoints as a browser asks for them, manifest text that tries to run script, and a page on another
 * origin reading the data and its ETag.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRegistryServer, listenRegistryServer } from '../../../cli/local/server.ts';
import { parseRegistryConfig } from '../../../index-builder/config.ts';
import { processSubmissions } from '../../../index-builder/pipeline/index.ts';
import { CHROMIUM, CHROMIUM_FLAGS } from '../../support/chromium.ts';
import { encode, makeBundle, makeRegistry, sha256, validManifest } from '../../support/fixtures.ts';
import { MemoryStore } from '../../support/memory-store.ts';

const HOSTILE_NAME = '<img src=x onerror="window.__pwned = 1">';
const HOSTILE_DESCRIPTION = '<script>window.__pwned = 2</script> & "quotes"';
const TOOL = encode('#!/bin/sh\necho costs\n');
/** Artifacts that would run script if a browser rendered them on the registry's origin. */
const ACTIVE_HTML = encode('<!doctype html><script>fetch("/beacon-html")</script><h1>pwned</h1>');
const ACTIVE_SVG = encode(
  '<svg xmlns="http://www.w3.org/2000/svg"><script>fetch("/beacon-svg")</script><rect width="9" height="9"/></svg>',
);
/** An artifact kept in an OCI registry: the page shows where, and the recipe fetches it by digest. */
const OCI_HEX = 'c0'.repeat(32);
const OCI = { reference: 'registry.example:5000/acme/gcp-metrics:1.0.0', digest: `sha256:${OCI_HEX}` };
/** "Café" composed (NFC: é is U+00E9) and decomposed (NFD: e, then U+0301 COMBINING ACUTE ACCENT). */
const CAFE_NFC = 'Caf\u00e9';
const CAFE_NFD = 'cafe\u0301';
/** Every request the server answered. */
const requests: string[] = [];

let browser: Browser;
let base: string;
let close: () => Promise<void>;
/** Script errors and console errors (a CSP violation among them) of every page opened. */
const problems: string[] = [];

beforeAll(async () => {
  const site = new MemoryStore();
  const listening = await listenRegistryServer(
    createRegistryServer({ site, log: (line) => requests.push(line) }),
    0,
  );
  base = listening.url;
  close = listening.close;
  const registry = await makeRegistry();
  const context = {
    ...registry.context,
    site,
    config: parseRegistryConfig({ name: 'Browser Registry', url: base }),
  };
  // Plugin-level text comes from the latest version's manifest, so every version carries the same. Its tag
  // "Café" is composed (NFC), gcp-metrics's "crème" decomposed (NFD): each is searched in the other form.
  const aws = { name: 'aws-costs', display_name: 'AWS Costs', metadata: { tags: ['billing', CAFE_NFC] } };
  const bundles = await Promise.all([
    makeBundle({
      manifest: validManifest(aws),
      artifacts: [{ os: 'linux', arch: 'amd64', name: 'aws-costs', body: TOOL }],
    }),
    makeBundle({
      manifest: validManifest({
        ...aws,
        version: '1.1.0',
        permissions: ['network_client', 'config_read'],
        resources: { max_memory_mb: 256, timeout_seconds: 60 },
      }),
    }),
    makeBundle({ manifest: validManifest({ ...aws, version: '2.0.0-beta.1' }) }),
    makeBundle({
      manifest: validManifest({
        name: 'gcp-metrics',
        display_name: 'GCP Metrics',
        plugin_type: 'observability',
        supported_providers: ['gcp'],
        capabilities: ['custom_metrics'],
        metadata: { tags: ['cre\u0300me'] },
        installation: {
          artifacts: [{ os: 'linux', arch: 'amd64', oci: OCI, sha256: OCI_HEX, size_bytes: 4096 }],
        },
      }),
    }),
    makeBundle({
      manifest: validManifest({
        name: 'hostile-text',
        display_name: HOSTILE_NAME,
        description: HOSTILE_DESCRIPTION,
      }),
      artifacts: [
        { os: 'linux', arch: 'amd64', name: 'page.html', body: ACTIVE_HTML },
        { os: 'darwin', arch: 'arm64', name: 'image.svg', body: ACTIVE_SVG },
      ],
    }),
  ]);
  const result = await processSubmissions(context, await registry.submit(...bundles));
  if (result.outcomes.some((o) => o.status !== 'accepted')) {
    throw new Error(`setup: ${JSON.stringify(result.outcomes.map((o) => o.problems))}`);
  }
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
});

afterAll(async () => {
  await browser?.close();
  await close?.();
});

async function open(path: string): Promise<Page> {
  const page = await browser.newPage();
  page.on('pageerror', (error) => problems.push(`${path}: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`${path}: ${message.text()}`);
  });
  await page.goto(`${base}${path}`);
  return page;
}

const names = (page: Page) =>
  page.locator('#results li.plugin').evaluateAll((items) => items.map((li) => li.getAttribute('data-name')));

describe('when a person opens the home page', () => {
  it('lists every plugin from search.json and filters as they type, keeping the query in the URL', async () => {
    const page = await open('/');
    await expect.poll(() => page.locator('#count').textContent()).toBe('3 of 3 plugins');
    expect(await names(page)).toEqual(['aws-costs', 'gcp-metrics', 'hostile-text']);

    await page.fill('#q', 'gcp');
    expect(await names(page)).toEqual(['gcp-metrics']);
    expect(new URL(page.url()).searchParams.get('q')).toBe('gcp');

    await page.fill('#q', '');
    await page.selectOption('#type', 'cost_source');
    expect(await names(page)).toEqual(['aws-costs', 'hostile-text']);
    // A filter names a whole capability, in any case, as the client's --capability does.
    await page.fill('#capability', 'actual');
    expect(await names(page)).toEqual([]);
    await page.fill('#capability', 'Actual_Cost');
    await page.fill('#q', 'billing');
    expect(await names(page)).toEqual(['aws-costs']);
    await page.close();
  });

  it('lists the plugins in the page the publish rendered, for a browser without script', async () => {
    const context = await browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    await page.goto(`${base}/`);
    expect(await names(page)).toEqual(['aws-costs', 'gcp-metrics', 'hostile-text']);
    expect(await page.locator('#count').textContent()).toBe('3 of 3 plugins');
    expect(await page.locator('#results .display-name').allTextContents()).toContain(HOSTILE_NAME);
    await page.click('#results li.plugin a.name');
    await page.waitForURL(`${base}/plugins/aws-costs/index.html`);
    await context.close();
  });

  it('finds a word typed in either Unicode form (NFC, NFD), as GET /search does', async () => {
    const api = async (q: string) => {
      const body = (await (await fetch(`${base}/search?q=${encodeURIComponent(q)}`)).json()) as {
        results: { match: string; plugin: { name: string } }[];
      };
      return body.results.map((r) => [r.plugin.name, r.match]);
    };
    expect(await api(CAFE_NFD)).toEqual([['aws-costs', 'keyword']]);
    expect(await api('CR\u00c8ME')).toEqual([['gcp-metrics', 'keyword']]);
    const page = await open('/');
    await page.locator('#results[data-ready]').waitFor({ state: 'attached' });
    // Typed into the box as macOS input gives it (decomposed), against a tag published composed.
    await page.fill('#q', CAFE_NFD);
    expect(await names(page)).toEqual(['aws-costs']);
    await page.fill('#q', 'CR\u00c8ME');
    expect(await names(page)).toEqual(['gcp-metrics']);
    // The tags are shown as published.
    expect(await page.locator('#results .chips li').allTextContents()).toContain('cre\u0300me');
    await page.close();
  });

  it('opens a search from a shared link, and reaches a plugin page by its link', async () => {
    const page = await open('/?q=metrics');
    await expect.poll(() => names(page)).toEqual(['gcp-metrics']);
    await page.click('#results li.plugin a.name');
    await page.waitForURL(`${base}/plugins/gcp-metrics/index.html`);
    expect(await page.locator('h1.display-name').textContent()).toBe('GCP Metrics');
    await page.close();
  });
});

describe('when a person opens a search link that names a type', () => {
  it('filters by it in any case, as GET /search does', async () => {
    const api = (await (await fetch(`${base}/search?type=Observability`)).json()) as {
      results: { plugin: { name: string } }[];
    };
    expect(api.results.map((r) => r.plugin.name)).toEqual(['gcp-metrics']);
    const page = await open('/?type=Observability');
    await page.locator('#results[data-ready]').waitFor({ state: 'attached' });
    expect(await names(page)).toEqual(['gcp-metrics']);
    expect(await page.locator('#type').inputValue()).toBe('observability');
    expect(await page.locator('#count').textContent()).toBe('1 of 3 plugins');
    await page.close();
  });

  it('refuses a type no plugin can have as GET /search does, and keeps the link as it was', async () => {
    const api = await fetch(`${base}/search?type=Teleportation&q=cost`);
    expect(api.status).toBe(400);
    const page = await open('/?type=Teleportation&q=cost');
    await page.locator('#results[data-ready]').waitFor({ state: 'attached' });
    expect(await names(page)).toEqual([]);
    expect(await page.locator('#count').textContent()).toBe(
      '"teleportation" is not a type a plugin can have: expected one of cost_source, observability, registry, aggregator',
    );
    expect(await page.locator('#type').inputValue()).toBe('teleportation');
    expect(new URL(page.url()).searchParams.get('type')).toBe('Teleportation');
    // A search typed next is still refused for it.
    await page.fill('#q', 'gcp');
    expect(await names(page)).toEqual([]);
    expect(await page.locator('#count').textContent()).toContain('is not a type a plugin can have');
    // Choosing a listed type leaves the unlisted one behind.
    await page.selectOption('#type', 'observability');
    expect(await names(page)).toEqual(['gcp-metrics']);
    await page.close();
  });
});

describe('when a person opens a search link with malformed percent-encoding', () => {
  it('refuses it as GET /search does (SEARCH_PARAMETER_MALFORMED), not as a search for U+FFFD', async () => {
    for (const [link, message] of [
      ['?q=%E0%A4%A', 'the value of q is not percent-encoded UTF-8 text'],
      ['?provider=%ff', 'the value of provider is not percent-encoded UTF-8 text'],
    ] as const) {
      const api = await fetch(`${base}/search${link}`);
      expect(api.status).toBe(400);
      const body = (await api.json()) as { code: string; message: string; expected: string };
      expect(body.code).toBe('SEARCH_PARAMETER_MALFORMED');
      expect(body.message).toBe(message);
      const page = await open(`/${link}`);
      await page.locator('#results[data-ready]').waitFor({ state: 'attached' });
      expect(await names(page)).toEqual([]);
      expect(await page.locator('#count').textContent()).toBe(`${message}: expected ${body.expected}`);
      // The link is kept as it was, not rewritten to the U+FFFD the page's fields hold.
      expect(new URL(page.url()).search).toBe(link);
      await page.close();
    }
  });
});

describe('when a person opens a plugin page', () => {
  it('shows every version with its marks, platforms with digests, and an install recipe for the latest', async () => {
    const page = await open('/plugins/aws-costs');
    expect(await page.locator('h1.display-name').textContent()).toBe('AWS Costs');
    const versions = await page
      .locator('table.versions tr[data-version]:not(.platforms)')
      .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-version')));
    expect(versions).toEqual(['2.0.0-beta.1', '1.1.0', '1.0.0']);
    expect(await page.locator('tr[data-version="2.0.0-beta.1"]:not(.platforms)').textContent()).toContain(
      'prerelease',
    );
    const platforms = await page.locator('tr.platforms[data-version="1.0.0"]').textContent();
    expect(platforms).toContain('linux/amd64');
    expect(platforms).toContain(sha256(TOOL));
    expect(await page.locator('code.client-install').textContent()).toBe('plugindex install aws-costs@1.1.0');
    const recipe = await page.locator('code.install').textContent();
    expect(recipe).toContain(`${base}/plugins/aws-costs/1.1.0/manifest.json`);
    expect(recipe).toContain('gpg --verify manifest.json.asc manifest.json');
    await page.close();
  });

  it("shows each version's permissions and resource limits, and none for a version that declares none", async () => {
    const page = await open('/plugins/aws-costs');
    const declared = page.locator('tr.platforms[data-version="1.1.0"]');
    expect(await declared.locator('[data-testid="permissions"] li').allTextContents()).toEqual([
      'config_read',
      'network_client',
    ]);
    const limits = declared.locator('[data-testid="resources"]');
    expect(await limits.locator('dt').allTextContents()).toEqual(['max_memory_mb', 'timeout_seconds']);
    expect(await limits.locator('dd').allTextContents()).toEqual(['256', '60']);
    expect(await limits.isVisible()).toBe(true);
    const bare = page.locator('tr.platforms[data-version="1.0.0"]');
    expect(await bare.locator('[data-testid="permissions"], [data-testid="resources"]').count()).toBe(0);
    await page.close();
  });

  it('shows an OCI artifact by reference and digest, the plugindex install line first', async () => {
    const page = await open('/plugins/gcp-metrics');
    const artifact = page.locator('tr.artifact[data-platform="linux/amd64"]');
    expect(await artifact.locator('[data-testid="oci"] .oci-reference').textContent()).toBe(OCI.reference);
    expect(await artifact.locator('[data-testid="oci"] .oci-digest').textContent()).toBe(OCI.digest);
    expect(await artifact.locator('a').count()).toBe(0);
    expect(await page.locator('code.client-install').textContent()).toBe(
      'plugindex install gcp-metrics@1.0.0',
    );
    const recipe = await page.locator('code.install').textContent();
    expect(recipe).toContain(
      `oras blob fetch --output gcp-metrics registry.example:5000/acme/gcp-metrics@${OCI.digest}`,
    );
    expect(recipe).toContain(`echo "${OCI_HEX}  gcp-metrics" | sha256sum -c -`);
    const [client, install] = await page
      .locator('code.client-install, code.install')
      .evaluateAll((codes) => codes.map((c) => c.className));
    expect([client, install]).toEqual(['client-install', 'install']);
    await page.close();
  });

  it('shows manifest text that looks like markup as text, and runs none of it', async () => {
    const home = await open('/?q=hostile');
    await expect.poll(() => names(home)).toEqual(['hostile-text']);
    expect(await home.locator('#results .display-name').textContent()).toBe(HOSTILE_NAME);
    expect(await home.evaluate(() => (globalThis as { __pwned?: number }).__pwned)).toBeUndefined();
    await home.close();

    const page = await open('/plugins/hostile-text');
    expect(await page.locator('h1.display-name').textContent()).toBe(HOSTILE_NAME);
    expect(await page.locator('p.description').textContent()).toBe(HOSTILE_DESCRIPTION);
    expect(await page.locator('img').count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as { __pwned?: number }).__pwned)).toBeUndefined();
    await page.close();
  });
});

describe('when a browser opens a hosted artifact that holds script', () => {
  it.each([
    ['an HTML page', 'linux-amd64/page.html', ACTIVE_HTML],
    ['an SVG image', 'darwin-arm64/image.svg', ACTIVE_SVG],
  ])('downloads %s instead of running it on the registry origin', async (_, file, body) => {
    const page = await browser.newPage();
    const url = `${base}/plugins/hostile-text/1.0.0/artifacts/${file}`;
    const download = page.waitForEvent('download');
    // Navigating to a download aborts the navigation: the browser saves the file instead.
    await page.goto(url).catch(() => undefined);
    const saved = await download;
    expect(saved.suggestedFilename()).toBe(file.split('/')[1]);
    const stream = await saved.createReadStream();
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    expect(new Uint8Array(Buffer.concat(chunks))).toEqual(body);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(requests.filter((line) => line.includes('/beacon'))).toEqual([]);
    await page.close();
  });
});

describe('when a browser asks for the spec endpoints', () => {
  it('gets pages where a client gets JSON, and no page logs an error', async () => {
    const list = await open('/plugins');
    await expect.poll(() => list.locator('#count').textContent()).toBe('3 of 3 plugins');
    await list.close();
    // With a slash, the home page's relative links would resolve under plugins/: it is /plugins, moved.
    const slashed = await open('/plugins/?q=metrics');
    expect(slashed.url()).toBe(`${base}/plugins?q=metrics`);
    await expect.poll(() => names(slashed)).toEqual(['gcp-metrics']);
    await slashed.click('#results li.plugin a.name');
    await slashed.waitForURL(`${base}/plugins/gcp-metrics/index.html`);
    await slashed.close();
    const manifest = await open('/plugins/aws-costs/1.1.0/manifest');
    expect(JSON.parse((await manifest.locator('body').textContent()) ?? '')).toMatchObject({
      name: 'aws-costs',
      version: '1.1.0',
    });
    await manifest.close();
    expect(problems).toEqual([]);
  });
});

describe('when a page on another origin reads the registry', () => {
  it('reads the ETag of a document and of a search answer, and revalidates with it (304)', async () => {
    // Another port is another origin: a page there may read the data (Access-Control-Allow-Origin: *), but
    // of its headers only the safelisted ones unless Access-Control-Expose-Headers names more. It read no
    // ETag, so it could send none back.
    const elsewhere = createServer((_, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<!doctype html><title>elsewhere</title>');
    });
    await new Promise<void>((resolve) => elsewhere.listen(0, '127.0.0.1', resolve));
    const page = await browser.newPage();
    try {
      await page.goto(`http://127.0.0.1:${(elsewhere.address() as AddressInfo).port}/`);
      const read = await page.evaluate(async (registry) => {
        const tagOf = async (path: string) => {
          const first = await fetch(`${registry}${path}`);
          const etag = first.headers.get('etag');
          // If-None-Match set by hand: a preflight first, then the GET past the HTTP cache (the Fetch standard
          // makes a conditional request's cache mode no-store), whose 304 reaches the page as it is.
          const again = await fetch(`${registry}${path}`, {
            headers: { 'if-none-match': etag ?? '"none"' },
          });
          return { etag, status: again.status };
        };
        return { document: await tagOf('/index.json'), search: await tagOf('/search?q=aws') };
      }, base);
      for (const answer of [read.document, read.search])
        expect(answer).toEqual({ etag: expect.stringMatching(/^"/), status: 304 });
    } finally {
      await page.close();
      await new Promise((resolve) => elsewhere.close(resolve));
    }
  });
});
