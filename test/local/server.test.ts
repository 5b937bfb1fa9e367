import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsStore } from '../../cli/local/fs-store.ts';
import { createRegistryServer, listenRegistryServer, prefersHtml } from '../../cli/local/server.ts';
import { CACHE_MUTABLE, contentTypeFor } from '../../index-builder/store.ts';
import { encode } from '../support/fixtures.ts';

let root: string;
let base: string;
let close: () => Promise<void>;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'plugindex-serve-'));
  const site = new FsStore(path.join(root, 'public'));
  const files: Record<string, string> = {
    'index.html': '<!doctype html><title>home</title>',
    'index.json': '{"plugins":[]}',
    'search.json': '{"plugins":[]}',
    'plugins/demo/index.json': '{"name":"demo"}',
    'plugins/demo/index.html': '<!doctype html><title>demo</title>',
    'plugins/demo/1.0.0/manifest.json': '{"name":"demo","version":"1.0.0"}',
    'plugins/demo/1.0.0/manifest.json.asc': '-----BEGIN PGP SIGNATURE-----',
  };
  for (const [key, body] of Object.entries(files))
    await site.put(key, encode(body), { contentType: contentTypeFor(key), cacheControl: CACHE_MUTABLE });
  await writeFile(path.join(root, 'secret.txt'), 'outside the site');
  const listening = await listenRegistryServer(createRegistryServer({ site }), 0);
  base = listening.url;
  close = listening.close;
});

afterAll(async () => {
  await close();
  await rm(root, { recursive: true, force: true });
});

/** A raw request, so paths reach the server exactly as written (fetch would normalize them). */
function raw(pathname: string, method = 'GET'): Promise<{ status: number; body: string }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, path: pathname, method }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => {
        body += c.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('when serving the published tree', () => {
  it('sends content types, cache control, and an ETag answered with 304', async () => {
    const first = await fetch(`${base}/plugins/demo/1.0.0/manifest.json.asc`);
    expect(first.status).toBe(200);
    expect(first.headers.get('content-type')).toBe('application/pgp-signature');
    expect(first.headers.get('cache-control')).toBe(CACHE_MUTABLE);
    const etag = first.headers.get('etag') as string;
    expect(etag).toMatch(/^".+"$/);
    const again = await fetch(`${base}/plugins/demo/1.0.0/manifest.json.asc`, {
      headers: { 'if-none-match': `"other", ${etag}` },
    });
    expect(again.status).toBe(304);
    expect(await again.text()).toBe('');
  });

  it('answers HEAD without a body and refuses other methods', async () => {
    const head = await fetch(`${base}/index.json`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe('14');
    expect(await head.text()).toBe('');
    const post = await fetch(`${base}/index.json`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });

  it('maps the spec endpoints, choosing JSON or HTML by Accept', async () => {
    expect(await (await fetch(`${base}/plugins`)).text()).toBe('{"plugins":[]}');
    const json = await fetch(`${base}/plugins/demo`);
    expect(json.headers.get('content-type')).toBe('application/json');
    expect(json.headers.get('vary')).toBe('Accept');
    const browser = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';
    const page = await fetch(`${base}/plugins/demo`, { headers: { accept: browser } });
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(await (await fetch(`${base}/plugins/demo/1.0.0/manifest`)).json()).toEqual({
      name: 'demo',
      version: '1.0.0',
    });
    expect((await fetch(`${base}/search?q=demo`)).status).toBe(200);
    expect(await (await fetch(`${base}/`)).text()).toContain('<title>home</title>');
  });

  it('judges Accept headers by quality', () => {
    expect(prefersHtml(undefined)).toBe(false);
    expect(prefersHtml('*/*')).toBe(false);
    expect(prefersHtml('application/json')).toBe(false);
    expect(prefersHtml('text/html')).toBe(true);
    expect(prefersHtml('application/json;q=0.5, text/html')).toBe(true);
    expect(prefersHtml('text/html;q=0.1, application/json')).toBe(false);
  });

  it.each([
    '/../secret.txt',
    '/%2e%2e/secret.txt',
    '/plugins/..%2f..%2fsecret.txt',
    '/.meta/index.json.json',
    '/index.json%00',
    '/plugins\\..\\..\\secret.txt',
    '/%zz',
    '//etc/passwd',
  ])('never serves %s from outside the site, and never fails', async (pathname) => {
    const response = await raw(pathname);
    expect([400, 404]).toContain(response.status);
    expect(response.body).not.toContain('outside the site');
  });
});
