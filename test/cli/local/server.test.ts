import { spawn } from 'node:child_process';
import {
  appendFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rm,
  symlink,
  truncate,
  writeFile,
} from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { brotliCompressSync, gunzipSync, gzipSync } from 'node:zlib';
import { readPrivateKey } from 'openpgp';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FsStore } from '../../../adapters/fs-store.ts';
import { CliError } from '../../../cli/errors.ts';
import { initRegistry } from '../../../cli/local/registry.ts';
import {
  createRegistryServer,
  defaultShare,
  listenRegistryServer,
  MAX_CONNECTIONS,
  prefersHtml,
  type RegistryServerOptions,
  routeFor,
  SERVER_TIMEOUTS,
  type ServerTimeouts,
} from '../../../cli/local/server.ts';
import { startService } from '../../../cli/local/service.ts';
import { openSite } from '../../../cli/local/site.ts';
import { SECRET_KEY_ARMOR } from '../../../index-builder/armor.ts';
import {
  ARTIFACT_CSP,
  CORS_EXPOSED_HEADER_NAMES,
  CORS_EXPOSED_HEADERS,
  DATA_CSP,
  optionsHeaders,
  PAGE_CSP,
} from '../../../index-builder/serving.ts';
import type { Store } from '../../../index-builder/store.ts';
import { CACHE_IMMUTABLE, CACHE_MUTABLE, contentTypeFor } from '../../../index-builder/store.ts';
import { encode, sha256, testKey } from '../../support/fixtures.ts';
import { MemoryStore } from '../../support/memory-store.ts';
import { rawRequest } from '../../support/raw-http.ts';
import { patternBytes } from '../../support/streams.ts';

const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';
/** Written next to the site, never inside it: no response may ever contain it. */
const SECRET = 'outside the site';

/** The published tree the server is started over: key -> body. */
const SITE: Record<string, string> = {
  'index.html': '<!doctype html><title>home</title>',
  'index.json': '{"plugins":[]}',
  'search.json': '{"plugins":["demo"]}',
  'plugins/demo/index.json': '{"name":"demo"}',
  'plugins/demo/index.html': '<!doctype html><title>demo</title>',
  'plugins/demo/1.0.0/manifest.json': '{"name":"demo","version":"1.0.0"}',
  'plugins/demo/1.0.0/manifest.json.asc': '-----BEGIN PGP SIGNATURE-----',
  // A hosted artifact stored as a page, as one published before artifacts were stored as opaque bytes.
  'plugins/demo/1.0.0/bin/page.html': '<script>fetch("/beacon")</script>',
};

let root: string;
let base: string;
let close: () => Promise<void>;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'plugindex-serve-'));
  const site = new FsStore(path.join(root, 'public'));
  for (const [key, body] of Object.entries(SITE)) {
    const cacheControl = key.includes('/1.0.0/') ? CACHE_IMMUTABLE : CACHE_MUTABLE;
    await site.put(key, encode(body), { contentType: contentTypeFor(key), cacheControl });
  }
  await writeFile(path.join(root, 'secret.txt'), SECRET);
  await mkdir(path.join(root, 'etc'));
  await writeFile(path.join(root, 'etc', 'passwd'), SECRET);
  await symlink(path.join(root, 'secret.txt'), path.join(root, 'public', 'link.txt'));
  // Links to folders, as an operator might make them: out of the tree (never followed), and within it.
  await symlink(path.join(root, 'etc'), path.join(root, 'public', 'plugins', 'evil'));
  await symlink(root, path.join(root, 'public', 'up'));
  await symlink(path.join(root, 'public', 'plugins', 'demo'), path.join(root, 'public', 'alias'));
  const listening = await listenRegistryServer(createRegistryServer({ site }), 0);
  base = listening.url;
  close = listening.close;
});

afterAll(async () => {
  await close();
  await rm(root, { recursive: true, force: true });
});

interface RawResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

/** A raw request, so the path reaches the server exactly as written (fetch would normalize it). */
function raw(pathname: string, method = 'GET', server = base): Promise<RawResponse> {
  const url = new URL(server);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, path: pathname, method }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * Everything the server sends back to `request`, written exactly as given on a connection of its own, until
 * the server closes it. `halfClose` ends the client's side once written, as `nc -N` and some HTTP/1.0
 * clients do; the socket stays readable (`allowHalfOpen`) so the answer can still arrive.
 */
function exchange(request: string, options: { halfClose?: boolean } = {}): Promise<string> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port: Number(url.port), host: url.hostname, allowHalfOpen: true });
    let received = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      received += chunk;
    });
    socket.on('error', reject);
    // Ends our side in turn where the server ended its own first, so the socket closes.
    socket.on('end', () => socket.end());
    socket.on('close', () => resolve(received));
    if (options.halfClose) socket.end(request);
    else socket.write(request);
  });
}

/** The status line and the body of a raw HTTP/1.x response (one, not chunked). */
function parseResponse(text: string): { status: string; headers: string; body: string } {
  const split = text.indexOf('\r\n\r\n');
  const head = split < 0 ? text : text.slice(0, split);
  return {
    status: head.split('\r\n', 1)[0] ?? '',
    headers: head,
    body: split < 0 ? '' : text.slice(split + 4),
  };
}

describe('when serving the published tree', () => {
  it('sends the stored content type and cache control, the length, and nosniff', async () => {
    const response = await fetch(`${base}/plugins/demo/1.0.0/manifest.json.asc`);

    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/pgp-signature');
    expect(response.headers.get('cache-control')).toBe(CACHE_IMMUTABLE);
    expect(response.headers.get('content-length')).toBe(
      String(SITE['plugins/demo/1.0.0/manifest.json.asc']?.length),
    );
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(await response.text()).toBe(SITE['plugins/demo/1.0.0/manifest.json.asc']);
  });

  it("lets any origin read data, under default-src 'none', and gives pages their hashed policy", async () => {
    const data = await fetch(`${base}/index.json`);
    const page = await fetch(`${base}/index.html`);
    const missing = await fetch(`${base}/nothing.json`);

    expect(data.headers.get('access-control-allow-origin')).toBe('*');
    expect(data.headers.get('content-security-policy')).toBe(DATA_CSP);
    expect(missing.headers.get('content-security-policy')).toBe(DATA_CSP);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toBe(PAGE_CSP);
    expect(PAGE_CSP).not.toContain('unsafe-inline');
    expect(page.headers.get('access-control-allow-origin')).toBeNull();
    for (const response of [data, page, missing]) {
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      expect(response.headers.get('x-frame-options')).toBe('DENY');
    }
  });

  it('lets any origin read every answer but a page, revalidations and refusals included, as CloudFront does', async () => {
    // The same rule as the viewer-response function's (test/infra/edge-routing.test.ts): documents, signatures,
    // artifacts (a download, whatever they were stored as), search answers and the server's own JSON answers
    // are data a browser client on another origin may read; a page is none.
    const allowed = async (pathname: string, headers: Record<string, string> = {}) => {
      const response = await fetch(`${base}${pathname}`, { headers, redirect: 'manual' });
      await response.arrayBuffer();
      return { status: response.status, origin: response.headers.get('access-control-allow-origin') };
    };
    for (const pathname of [
      '/index.json',
      '/plugins/demo/1.0.0/manifest.json.asc',
      '/plugins/demo/1.0.0/bin/page.html',
      '/nothing.json',
      '/plugins/',
      '/search?q=demo',
    ])
      expect((await allowed(pathname)).origin, pathname).toBe('*');
    for (const pathname of ['/', '/plugins/demo/', '/index.html'])
      expect(await allowed(pathname), pathname).toEqual({ status: 200, origin: null });
    expect(await allowed('/plugins', { accept: BROWSER_ACCEPT })).toEqual({ status: 200, origin: null });
    expect((await allowed('/plugins')).origin).toBe('*');
    // A 304 says what the 200 said: a page's none (a browser updates the stored response with its headers).
    for (const [pathname, origin] of [
      ['/index.html', null],
      ['/index.json', '*'],
    ] as const) {
      const etag = (await fetch(`${base}${pathname}`)).headers.get('etag') as string;
      expect(await allowed(pathname, { 'if-none-match': etag }), pathname).toEqual({ status: 304, origin });
    }
  });

  it("lets another origin read the 304 of /plugins/{name}'s document, and its ETag, never its page's", async () => {
    // The one URL that is a page or a JSON document by Accept, as on CloudFront (the viewer-response function,
    // test/infra/edge-routing.test.ts): a page elsewhere that read the document's ETag sends it back and gets
    // this 304, which its browser refuses without them.
    const revalidated = async (accept: string) => {
      const etag = (await fetch(`${base}/plugins/demo`, { headers: { accept } })).headers.get(
        'etag',
      ) as string;
      const response = await fetch(`${base}/plugins/demo`, { headers: { accept, 'if-none-match': etag } });
      await response.arrayBuffer();
      return {
        status: response.status,
        origin: response.headers.get('access-control-allow-origin'),
        exposed: response.headers.get('access-control-expose-headers'),
      };
    };
    for (const accept of ['*/*', 'application/json'])
      expect(await revalidated(accept), accept).toEqual({
        status: 304,
        origin: '*',
        exposed: CORS_EXPOSED_HEADERS,
      });
    expect(await revalidated(BROWSER_ACCEPT)).toEqual({ status: 304, origin: null, exposed: null });
  });

  it('exposes the ETag and range headers to another origin wherever it lets one read the answer', async () => {
    // Access-Control-Allow-Origin lets a page elsewhere read the body and the safelisted headers only (Fetch
    // standard: Content-Length, Content-Type, Cache-Control, Last-Modified...): without Expose-Headers its
    // fetch saw no ETag, so it could not revalidate with If-None-Match, nor resume an artifact by range.
    const exposed = async (pathname: string, headers: Record<string, string> = {}) => {
      const response = await fetch(`${base}${pathname}`, { headers, redirect: 'manual' });
      await response.arrayBuffer();
      return response.headers.get('access-control-expose-headers');
    };
    for (const pathname of [
      '/index.json',
      '/plugins/demo/1.0.0/manifest.json.asc',
      '/plugins/demo/1.0.0/bin/page.html',
      '/nothing.json',
      '/search?q=demo',
    ])
      expect(await exposed(pathname), pathname).toBe(CORS_EXPOSED_HEADERS);
    expect(CORS_EXPOSED_HEADER_NAMES).toEqual(expect.arrayContaining(['ETag', 'Content-Range']));
    const etag = (await fetch(`${base}/index.json`)).headers.get('etag') as string;
    expect(await exposed('/index.json', { 'if-none-match': etag })).toBe(CORS_EXPOSED_HEADERS);
    expect(await exposed('/plugins/demo/1.0.0/bin/page.html', { range: 'bytes=0-3' })).toBe(
      CORS_EXPOSED_HEADERS,
    );
    // A page is read by no other origin, so it exposes nothing either.
    for (const pathname of ['/', '/plugins/demo/', '/index.html']) expect(await exposed(pathname)).toBeNull();
  });

  it('serves a hosted artifact as a download whatever type it was stored with', async () => {
    const response = await fetch(`${base}/plugins/demo/1.0.0/bin/page.html`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/octet-stream');
    expect(response.headers.get('content-disposition')).toBe('attachment; filename="page.html"');
    expect(response.headers.get('content-security-policy')).toBe(ARTIFACT_CSP);
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
  });

  it('answers HEAD with the headers of GET and no body', async () => {
    const get = await fetch(`${base}/index.json`);
    const head = await raw('/index.json', 'HEAD');

    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe('14');
    expect(head.headers.etag).toBe(get.headers.get('etag'));
    expect(head.headers['content-type']).toBe('application/json');
    expect(head.body).toBe('');
  });

  it.each(['POST', 'PUT', 'DELETE'])('refuses %s with 405 and Allow', async (method) => {
    const response = await raw('/index.json', method);

    expect(response.status).toBe(405);
    expect(response.headers.allow).toBe('GET, HEAD, OPTIONS');
  });

  it('answers OPTIONS 204 with Allow and no body, for a path and for `*` (RFC 9110 §9.3.7), where it was 405', async () => {
    for (const target of ['/index.json', '/', '/search?q=demo', '/nothing.json', '/plugins/x/%ZZ', '*']) {
      const answer = parseResponse(
        await exchange(`OPTIONS ${target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`),
      );
      expect(answer.status, target).toBe('HTTP/1.1 204 No Content');
      expect(answer.headers, target).toMatch(/^allow: GET, HEAD, OPTIONS$/m);
      expect(answer.headers, target).toMatch(/^x-content-type-options: nosniff$/m);
      // No CORS headers where no preflight was asked, and no Content-Length on a 204 (RFC 9110 §8.6).
      expect(answer.headers, target).not.toMatch(/^access-control-/im);
      expect(answer.headers, target).not.toMatch(/^content-length:/im);
      expect(answer.body, target).toBe('');
    }
  });

  it('answers a CORS preflight 204 with leave for any origin to GET and HEAD with any header, as CloudFront does', async () => {
    // A page on another origin that sets a header no simple request may (If-None-Match by hand) asks first:
    // the data it then GETs says Access-Control-Allow-Origin: *, so the preflight must let it through.
    const preflight = (pathname: string) =>
      fetch(`${base}${pathname}`, {
        method: 'OPTIONS',
        headers: {
          origin: 'https://docs.example.org',
          'access-control-request-method': 'GET',
          'access-control-request-headers': 'if-none-match, x-requested-with',
        },
      });
    for (const pathname of [
      '/index.json',
      '/plugins/demo/1.0.0/manifest.json',
      '/search?q=demo',
      '/nothing',
    ]) {
      const response = await preflight(pathname);
      expect(response.status, pathname).toBe(204);
      expect(await response.text()).toBe('');
      const headers = Object.fromEntries(
        [...response.headers].filter(([name]) => !['date', 'connection', 'keep-alive'].includes(name)),
      );
      // The one policy, which the CloudFront functions embed (test/infra/edge-routing.test.ts).
      expect(headers, pathname).toEqual(optionsHeaders(true));
      expect(headers, pathname).toMatchObject({
        'access-control-allow-origin': '*',
        'access-control-allow-methods': 'GET, HEAD',
        'access-control-allow-headers': '*',
        'access-control-max-age': '86400',
        allow: 'GET, HEAD, OPTIONS',
      });
    }
  });

  it.each([
    [
      'a host and port, as a proxy client sends it',
      'CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\n\r\n',
    ],
    ['a path', 'CONNECT /index.json HTTP/1.1\r\nHost: localhost\r\n\r\n'],
  ])(
    'refuses CONNECT (%s) with 405 and Allow, where the connection was closed unanswered',
    async (_, request) => {
      // Node hands CONNECT to a listener of its own, never to the request listener.
      const answer = parseResponse(await exchange(request));

      expect(answer.status).toBe('HTTP/1.1 405 Method Not Allowed');
      expect(answer.headers).toMatch(/^allow: GET, HEAD, OPTIONS$/m);
      expect(answer.headers).toMatch(/^x-content-type-options: nosniff$/m);
      expect(answer.headers).toMatch(/^connection: close$/m);
      expect(JSON.parse(answer.body)).toEqual({ error: 'method_not_allowed' });
    },
  );

  it.each([
    ['one Node does not know', 'FOO'],
    ['a known one in lower case (methods are case-sensitive)', 'get'],
  ])(
    'answers a method that is %s 501, as RFC 9110 §9.1 asks, where Node sent a bare 400',
    async (_, method) => {
      const answer = parseResponse(
        await exchange(`${method} /index.json HTTP/1.1\r\nHost: localhost\r\n\r\n`),
      );

      expect(answer.status).toBe('HTTP/1.1 501 Not Implemented');
      expect(answer.headers).toMatch(/^x-content-type-options: nosniff$/m);
      expect(answer.headers).toMatch(/^content-security-policy: default-src 'none'/m);
      expect(answer.headers).toMatch(/^connection: close$/m);
      expect(JSON.parse(answer.body)).toEqual({ error: 'not_implemented' });
    },
  );

  it.each([
    [
      'no method at all (a TLS handshake on the plain port)',
      '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03',
      400,
    ],
    ['a head past the size Node reads', `GET / HTTP/1.1\r\nHost: x\r\nX: ${'a'.repeat(20_000)}\r\n\r\n`, 431],
  ])('leaves what Node refuses otherwise as Node answers it: %s', async (_, request, status) => {
    const answer = parseResponse(await exchange(request));

    expect(answer.status).toBe(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}`);
    expect(answer.body).toBe('');
  });

  it.each([
    ['an unknown method', 'FOO /index.json HTTP/1.1\r\nHost: localhost\r\n\r\n', 501],
    ['no method at all', '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03', 400],
  ])(
    'answers %s on a kept-alive connection whose earlier response was sent whole, where it was closed unanswered',
    async (_, refused, status) => {
      // Act: one request answered in full on the connection, then one the parser refuses.
      const url = new URL(base);
      const socket = net.connect({ port: Number(url.port), host: url.hostname, allowHalfOpen: true });
      let received = '';
      socket.setEncoding('latin1');
      const closed = new Promise<void>((resolve, reject) => {
        socket.on('error', reject);
        socket.on('end', () => socket.end());
        socket.on('close', () => resolve());
      });
      const first = 'HTTP/1.1 200 OK';
      const answered = new Promise<void>((resolve) =>
        socket.on('data', (chunk: string) => {
          received += chunk;
          const split = received.indexOf('\r\n\r\n');
          const length = /^content-length: (\d+)$/im.exec(received)?.[1];
          if (split >= 0 && length !== undefined && received.length >= split + 4 + Number(length)) resolve();
        }),
      );
      socket.write('GET /index.json HTTP/1.1\r\nHost: localhost\r\n\r\n');
      await answered;
      const firstLength = received.length;
      socket.write(refused);
      await closed;

      // Assess: Node answers a refusal on a connection with no response in flight, as it did the first.
      expect(received.startsWith(first)).toBe(true);
      const second = parseResponse(received.slice(firstLength));
      expect(second.status).toBe(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}`);
      expect(second.headers).toMatch(/^connection: close$/im);
    },
  );

  it('closes a refused CONNECT whole, though its client keeps its side open', async () => {
    // Prepare: a server of its own, whose connections this test alone makes.
    const server = createRegistryServer({ site: new MemoryStore() });
    const listening = await listenRegistryServer(server, 0);
    const open = (): Promise<number> =>
      new Promise((resolve, reject) =>
        server.getConnections((error, count) => (error ? reject(error) : resolve(count))),
      );
    const socket = net.connect({ port: Number(new URL(listening.url).port), allowHalfOpen: true });
    try {
      // Act: the client reads the answer to its end and never ends its own side.
      let received = '';
      socket.setEncoding('latin1');
      socket.on('data', (chunk: string) => {
        received += chunk;
      });
      await new Promise((resolve) =>
        socket.once('end', resolve).write('CONNECT a:1 HTTP/1.1\r\nHost: a:1\r\n\r\n'),
      );
      // Until it is let go of, bounded below the test's timeout (2 s once, which a loaded machine can outlast).
      const deadline = Date.now() + 30_000;
      while ((await open()) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));

      // Assess: Node no longer times out a socket it handed to the 'connect' listener; left half open, it
      // held its descriptor and connection slot for good.
      expect(parseResponse(received).status).toBe('HTTP/1.1 405 Method Not Allowed');
      expect(await open()).toBe(0);
    } finally {
      socket.destroy();
      await listening.close();
    }
  });

  it.each([
    ['/plugins/demo//index.json', '/plugins/demo/index.json'],
    ['//index.json', '/index.json'],
    ['/plugins//demo', '/plugins/demo'],
    ['/plugins/demo/1.0.0//manifest.json', '/plugins/demo/1.0.0/manifest.json'],
    ['/plugins/demo/1.0.0//bin/page.html', '/plugins/demo/1.0.0/bin/page.html'],
  ])(
    'answers %s, a path with an empty segment, 404 as the routing CloudFront Function does, where %s is served',
    async (doubled, single) => {
      // The filesystem would open plugins/demo//index.json as plugins/demo/index.json; S3 holds no such
      // key. Both refuse it alike (test/infra/edge-routing.test.ts runs the function over the same paths).
      const refused = await raw(doubled);
      expect(refused.status).toBe(404);
      expect(JSON.parse(refused.body)).toEqual({ error: 'not_found', path: doubled });
      expect((await raw(single)).status).toBe(200);
    },
  );

  it('answers 404 with a small JSON body', async () => {
    const response = await fetch(`${base}/plugins/missing`);

    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(await response.json()).toEqual({ error: 'not_found', path: '/plugins/missing' });
  });
});

describe('when the filesystem finds a name in any letter case', () => {
  /**
   * The published tree as FsStore reads it on macOS's and Windows' default filesystems, which open
   * `Plugins/demo/...` as `plugins/demo/...`: a stand-in (this filesystem tells cases apart) that reads
   * every key in lower case, as the site's keys all are.
   */
  function caseInsensitive(store: FsStore): Store {
    const fold = (key: string): string => key.toLowerCase();
    return {
      get: (key) => store.get(fold(key)),
      head: (key) => store.head(fold(key)),
      put: (key, body, options) => store.put(fold(key), body, options),
      getStream: (key) => store.getStream(fold(key)),
      putStream: (key, body, options) => store.putStream(fold(key), body, options),
      delete: (key, options) => store.delete(fold(key), options),
      list: (prefix) => store.list(fold(prefix)),
    };
  }

  it.each([
    '/Plugins/demo/1.0.0/bin/page.html',
    '/PLUGINS/demo/1.0.0/bin/page.html',
    '/pLuGiNs/demo/1.0.0/bin/page.html',
  ])('serves the hosted artifact at %s as a download still, never as a page', async (pathname) => {
    const site = caseInsensitive(new FsStore(path.join(root, 'public')));
    const listening = await listenRegistryServer(createRegistryServer({ site }), 0);
    try {
      const response = await fetch(`${listening.url}${pathname}`);
      expect(response.status).toBe(200);
      expect(await response.text()).toBe(SITE['plugins/demo/1.0.0/bin/page.html']);
      expect(response.headers.get('content-type')).toBe('application/octet-stream');
      expect(response.headers.get('content-disposition')).toBe('attachment; filename="page.html"');
      expect(response.headers.get('content-security-policy')).toBe(ARTIFACT_CSP);
    } finally {
      await listening.close();
    }
  });
});

describe('when a client revalidates', () => {
  async function etagOf(pathname: string): Promise<string> {
    return (await fetch(`${base}${pathname}`)).headers.get('etag') as string;
  }

  it('sends a strong ETag', async () => {
    expect(await etagOf('/index.json')).toMatch(/^"[0-9a-f]{32}"$/);
  });

  it.each([
    ['the tag itself', (etag: string) => etag],
    ['a list holding it', (etag: string) => `"other", ${etag} , "more"`],
    ['its weak form', (etag: string) => `W/${etag}`],
    ['*', () => '*'],
  ])('answers If-None-Match with %s with 304 and no body', async (_, header) => {
    const etag = await etagOf('/plugins/demo/1.0.0/manifest.json');

    const response = await fetch(`${base}/plugins/demo/1.0.0/manifest.json`, {
      headers: { 'if-none-match': header(etag) },
    });

    expect(response.status).toBe(304);
    expect(response.headers.get('etag')).toBe(etag);
    expect(response.headers.get('cache-control')).toBe(CACHE_IMMUTABLE);
    expect(await response.text()).toBe('');
  });

  it('sends the body when no tag matches', async () => {
    const response = await fetch(`${base}/index.json`, {
      headers: { 'if-none-match': '"stale", W/"older"' },
    });

    expect(response.status).toBe(200);
    expect(await response.text()).toBe(SITE['index.json']);
  });
});

describe('when serving large files', () => {
  it('streams an artifact of megabytes whole, with its length', async () => {
    const site = new FsStore(path.join(root, 'public'));
    const big = patternBytes(6 * 1024 * 1024 + 3);
    await site.put('plugins/demo/1.0.0/artifacts/linux-amd64/demo', big, {
      contentType: 'application/octet-stream',
      cacheControl: CACHE_IMMUTABLE,
    });

    const response = await fetch(`${base}/plugins/demo/1.0.0/artifacts/linux-amd64/demo`);
    const body = new Uint8Array(await response.arrayBuffer());

    expect(response.headers.get('content-length')).toBe(String(big.byteLength));
    expect(sha256(body)).toBe(sha256(big));
  });

  it('closes the file of every response, a 304 included', async () => {
    const openFiles = async (): Promise<number> => (await readdir('/proc/self/fd')).length;
    const etag = (await fetch(`${base}/index.json`)).headers.get('etag') as string;
    const before = await openFiles();

    for (let i = 0; i < 50; i++) {
      const fresh = await fetch(`${base}/index.json`, { headers: { 'if-none-match': etag } });
      expect(fresh.status).toBe(304);
      await fresh.text();
    }

    // Sockets may linger in keep-alive; 50 leaked file handles would not hide among them.
    expect(await openFiles()).toBeLessThan(before + 10);
  });
});

describe('when a client revalidates by date (RFC 9110 §13.1.3)', () => {
  it('sends Last-Modified, and answers If-Modified-Since at or after it with 304', async () => {
    const first = await fetch(`${base}/index.json`);
    await first.text();
    const modified = first.headers.get('last-modified') as string;
    const later = new Date(Date.parse(modified) + 60_000).toUTCString();

    for (const since of [modified, later]) {
      const response = await fetch(`${base}/index.json`, { headers: { 'if-modified-since': since } });
      expect(response.status, since).toBe(304);
      expect(response.headers.get('etag')).toBe(first.headers.get('etag'));
      expect(await response.text()).toBe('');
    }
    const head = await fetch(`${base}/index.json`, {
      method: 'HEAD',
      headers: { 'if-modified-since': modified },
    });
    expect(head.status).toBe(304);
  });

  it('sends the body for a date before it, and for a field that is no date', async () => {
    const modified = (await fetch(`${base}/index.json`)).headers.get('last-modified') as string;
    const earlier = new Date(Date.parse(modified) - 1000).toUTCString();

    for (const since of [earlier, 'yesterday', `${modified}, ${modified}`]) {
      const response = await fetch(`${base}/index.json`, { headers: { 'if-modified-since': since } });
      expect(response.status, since).toBe(200);
      expect(await response.text()).toBe(SITE['index.json']);
    }
  });

  it('reads the obsolete forms RFC 9110 §5.6.7 names in GMT, on a server in any time zone', async () => {
    /** A time's fields as the IMF-fixdate says them: `Sun`, `06`, `Nov`, `1994`, `08:49:37`. */
    const fields = (d: Date) =>
      d.toUTCString().replace(',', '').split(' ') as [string, string, string, string, string];
    const asctime = (d: Date) => {
      const [weekday, day, month, year, time] = fields(d);
      return `${weekday} ${month} ${String(Number(day)).padStart(2, ' ')} ${time} ${year}`;
    };
    const rfc850 = (d: Date) => {
      const [, day, month, year, time] = fields(d);
      const weekday = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'][
        d.getUTCDay()
      ];
      return `${weekday}, ${day}-${month}-${year.slice(2)} ${time} GMT`;
    };
    const modified = (await fetch(`${base}/index.json`)).headers.get('last-modified') as string;
    const at = new Date(Date.parse(modified));
    const hourBefore = new Date(at.getTime() - 3_600_000);
    const zone = process.env.TZ;
    // A server west of GMT: an asctime date read in its own zone was hours later than meant.
    process.env.TZ = 'America/New_York';
    try {
      for (const [since, status] of [
        [asctime(at), 304],
        [rfc850(at), 304],
        [asctime(hourBefore), 200],
        [rfc850(hourBefore), 200],
        // No HTTP-date, though Date.parse reads a year in it: ignored, so the body is sent.
        ['2999', 200],
      ] as const) {
        const response = await fetch(`${base}/index.json`, { headers: { 'if-modified-since': since } });
        await response.arrayBuffer();
        expect(response.status, since).toBe(status);
      }
    } finally {
      if (zone === undefined) delete process.env.TZ;
      else process.env.TZ = zone;
    }
  });

  it('lets If-None-Match decide when both are sent, as RFC 9110 §13.2.2 orders them', async () => {
    const modified = (await fetch(`${base}/index.json`)).headers.get('last-modified') as string;

    const response = await fetch(`${base}/index.json`, {
      headers: { 'if-none-match': '"stale"', 'if-modified-since': modified },
    });

    expect(response.status).toBe(200);
    expect(await response.text()).toBe(SITE['index.json']);
  });
});

describe('when a client sends preconditions (RFC 9110 §13.2.2)', () => {
  const PATH = '/plugins/demo/1.0.0/manifest.json';
  const BODY = SITE['plugins/demo/1.0.0/manifest.json'];
  let etag: string;
  let modified: string;

  beforeAll(async () => {
    const whole = await fetch(`${base}${PATH}`, { method: 'HEAD' });
    etag = whole.headers.get('etag') as string;
    modified = whole.headers.get('last-modified') as string;
  });

  /** The Last-Modified date `seconds` from the object's own. */
  const shifted = (seconds: number) => new Date(Date.parse(modified) + seconds * 1000).toUTCString();

  /** Asserts a 412 sent as the server's other errors are: no-store, the data policy, CORS, a JSON body. */
  async function expectPreconditionFailed(response: Response): Promise<void> {
    expect(response.status).toBe(412);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(response.headers.get('content-security-policy')).toBe(DATA_CSP);
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(response.headers.get('access-control-allow-origin')).toBe('*');
    expect(await response.json()).toEqual({ error: 'precondition_failed' });
  }

  it.each([
    ['the tag itself', (tag: string) => tag],
    ['a list holding it', (tag: string) => `"other", ${tag} , "more"`],
    ['*', () => '*'],
  ])('sends the body for If-Match with %s', async (_, header) => {
    const response = await fetch(`${base}${PATH}`, { headers: { 'if-match': header(etag) } });

    expect(response.status).toBe(200);
    expect(response.headers.get('etag')).toBe(etag);
    expect(await response.text()).toBe(BODY);
  });

  it.each([
    ['another tag', () => '"0123456789abcdef0123456789abcdef"'],
    ['its weak form, which a strong comparison never matches', (tag: string) => `W/${tag}`],
    ['a list of weak forms and others', (tag: string) => `"other", W/${tag}`],
    ['no entity tag at all', () => 'garbled'],
  ])('answers If-Match with %s 412', async (_, header) => {
    const response = await fetch(`${base}${PATH}`, { headers: { 'if-match': header(etag) } });

    await expectPreconditionFailed(response);
  });

  it('answers a HEAD whose If-Match fails 412 with the same headers and no body', async () => {
    const get = await fetch(`${base}${PATH}`, { headers: { 'if-match': '"other"' } });
    const head = await raw(PATH, 'HEAD', base);
    const failed = await rawRequest(base, PATH, { 'if-match': '"other"' }, 'HEAD');

    expect(head.status).toBe(200);
    expect(failed.status).toBe(412);
    expect(failed.headers['content-length']).toBe(get.headers.get('content-length'));
    expect(failed.headers['content-type']).toBe('application/json');
    expect(failed.body.byteLength).toBe(0);
  });

  it('answers If-Unmodified-Since before Last-Modified 412, and at or after it with the body', async () => {
    await expectPreconditionFailed(
      await fetch(`${base}${PATH}`, { headers: { 'if-unmodified-since': shifted(-1) } }),
    );
    for (const since of [modified, shifted(60)]) {
      const response = await fetch(`${base}${PATH}`, { headers: { 'if-unmodified-since': since } });
      expect(response.status, since).toBe(200);
      expect(await response.text()).toBe(BODY);
    }
    const head = await rawRequest(base, PATH, { 'if-unmodified-since': shifted(-1) }, 'HEAD');
    expect(head.status).toBe(412);
    expect(head.body.byteLength).toBe(0);
  });

  it('ignores an If-Unmodified-Since that is no date, or a list of dates', async () => {
    for (const since of ['yesterday', '0', `${shifted(-1)}, ${shifted(-1)}`]) {
      const response = await fetch(`${base}${PATH}`, { headers: { 'if-unmodified-since': since } });
      expect(response.status, since).toBe(200);
      expect(await response.text()).toBe(BODY);
    }
  });

  it('ignores If-Unmodified-Since where If-Match is sent, whether or not its date would fail', async () => {
    const matched = await fetch(`${base}${PATH}`, {
      headers: { 'if-match': etag, 'if-unmodified-since': shifted(-1) },
    });
    expect(matched.status).toBe(200);
    expect(await matched.text()).toBe(BODY);

    const unmatched = await fetch(`${base}${PATH}`, {
      headers: { 'if-match': '"other"', 'if-unmodified-since': shifted(60) },
    });
    await expectPreconditionFailed(unmatched);
  });

  it('answers a failed If-Match 412 before If-None-Match or If-Modified-Since could answer 304', async () => {
    const cases: Record<string, string>[] = [
      { 'if-match': '"other"', 'if-none-match': '*' },
      { 'if-unmodified-since': shifted(-1), 'if-modified-since': shifted(60) },
    ];
    for (const headers of cases) {
      await expectPreconditionFailed(await fetch(`${base}${PATH}`, { headers }));
    }
  });

  it('goes on to If-None-Match when If-Match passes: 304 for a current copy', async () => {
    const cases: Record<string, string>[] = [
      { 'if-match': etag, 'if-none-match': etag },
      { 'if-unmodified-since': modified, 'if-modified-since': modified },
    ];
    for (const headers of cases) {
      const response = await fetch(`${base}${PATH}`, { headers });
      expect(response.status).toBe(304);
      expect(response.headers.get('etag')).toBe(etag);
      expect(await response.text()).toBe('');
    }
  });

  it('answers 404 for a path that names nothing, whatever the preconditions', async () => {
    const response = await fetch(`${base}/plugins/missing/index.json`, {
      headers: { 'if-match': '*', 'if-unmodified-since': 'Thu, 01 Jan 1970 00:00:00 GMT' },
    });

    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ error: 'not_found', path: '/plugins/missing/index.json' });
  });
});

describe('when a client asks for part of a file (RFC 9110 §14)', () => {
  const KEY = 'plugins/demo/1.0.0/artifacts/linux-arm64/demo';
  const BIG = patternBytes(3 * 1024 * 1024 + 7);
  let url: string;
  let etag: string;
  let modified: string;

  beforeAll(async () => {
    const site = new FsStore(path.join(root, 'public'));
    await site.put(KEY, BIG, { contentType: 'application/octet-stream', cacheControl: CACHE_IMMUTABLE });
    url = `${base}/${KEY}`;
    const whole = await fetch(url, { method: 'HEAD' });
    etag = whole.headers.get('etag') as string;
    modified = whole.headers.get('last-modified') as string;
  });

  const ranged = (range: string, extra: Record<string, string> = {}) =>
    fetch(url, { headers: { range, ...extra } });

  it('says it takes byte ranges', async () => {
    const response = await fetch(url, { method: 'HEAD' });
    expect(response.headers.get('accept-ranges')).toBe('bytes');
  });

  it.each([
    ['bytes=0-99', 0, 99],
    ['bytes=1048570-2097160', 1048570, 2097160],
    ['bytes=3145000-', 3145000, BIG.byteLength - 1],
    ['bytes=-10', BIG.byteLength - 10, BIG.byteLength - 1],
    ['bytes=100-999999999', 100, BIG.byteLength - 1],
    ['BYTES = 5 - 5', 5, 5],
  ])('answers %s with 206, its Content-Range and exactly those bytes', async (range, start, end) => {
    const response = await ranged(range);
    const body = new Uint8Array(await response.arrayBuffer());

    expect(response.status).toBe(206);
    expect(response.headers.get('content-range')).toBe(`bytes ${start}-${end}/${BIG.byteLength}`);
    expect(response.headers.get('content-length')).toBe(String(end - start + 1));
    expect(response.headers.get('etag')).toBe(etag);
    expect(response.headers.get('content-disposition')).toBe('attachment; filename="demo"');
    expect(sha256(body)).toBe(sha256(BIG.subarray(start, end + 1)));
  });

  it('answers a HEAD with a range as its GET, headers and status, with no body', async () => {
    const response = await raw(`/${KEY}`, 'HEAD');
    const get = await ranged('bytes=10-19');
    await get.arrayBuffer();
    const head = await fetch(url, { method: 'HEAD', headers: { range: 'bytes=10-19' } });

    expect(response.status).toBe(200);
    expect(head.status).toBe(206);
    expect(head.headers.get('content-range')).toBe(get.headers.get('content-range'));
    expect(head.headers.get('content-length')).toBe('10');
    expect(await head.text()).toBe('');
  });

  it.each(['bytes=3145735-', 'bytes=9999999-10000000', 'bytes=-0'])(
    'answers %s, which no byte satisfies, 416 naming the size',
    async (range) => {
      const response = await ranged(range);

      expect(response.status).toBe(416);
      expect(response.headers.get('content-range')).toBe(`bytes */${BIG.byteLength}`);
      expect(await response.json()).toEqual({ error: 'range_not_satisfiable', size: BIG.byteLength });
    },
  );

  it.each([
    ['several ranges, which would need a multipart body', 'bytes=0-9,20-29'],
    ['another unit', 'items=0-9'],
    ['a malformed header', 'bytes=abc'],
    ['a last byte before the first', 'bytes=20-10'],
  ])('sends the whole file with 200 for %s, as RFC 9110 §14.2 allows', async (_, range) => {
    const response = await ranged(range);
    const body = new Uint8Array(await response.arrayBuffer());

    expect(response.status).toBe(200);
    expect(response.headers.get('content-range')).toBeNull();
    expect(sha256(body)).toBe(sha256(BIG));
  });

  it('sends the range when If-Range names the file, by its ETag or its date', async () => {
    for (const validator of [() => etag, () => modified]) {
      const response = await ranged('bytes=0-9', { 'if-range': validator() });
      expect(response.status).toBe(206);
      expect((await response.arrayBuffer()).byteLength).toBe(10);
    }
  });

  it('sends the whole file when If-Range names another, or a weak tag (never a strong match)', async () => {
    const earlier = new Date(Date.parse(modified) - 1000).toUTCString();
    for (const validator of ['"another"', `W/${etag}`, earlier]) {
      // bytes=1000- too: the file, read from there for the range, is read again from its start.
      for (const range of ['bytes=0-9', 'bytes=1000-']) {
        const response = await ranged(range, { 'if-range': validator });
        const body = new Uint8Array(await response.arrayBuffer());
        expect(response.status, validator).toBe(200);
        expect(sha256(body), `${validator} ${range}`).toBe(sha256(BIG));
      }
    }
  });

  it('sends a range from a store that cannot seek, its body read from the start', async () => {
    // MemoryStore (test/support) streams every body from its first byte, and names no bodyStart.
    const site = new MemoryStore();
    await site.put(KEY, BIG, { contentType: 'application/octet-stream', cacheControl: CACHE_IMMUTABLE });
    const listening = await listenRegistryServer(createRegistryServer({ site }), 0);
    try {
      const response = await fetch(`${listening.url}/${KEY}`, { headers: { range: 'bytes=5000-70000' } });
      const body = new Uint8Array(await response.arrayBuffer());

      expect(response.status).toBe(206);
      expect(sha256(body)).toBe(sha256(BIG.subarray(5000, 70001)));
    } finally {
      await listening.close();
    }
  });

  it('answers preconditions before the range: a failed If-Match or If-Unmodified-Since is 412', async () => {
    const earlier = new Date(Date.parse(modified) - 1000).toUTCString();
    // bytes=1000- too, read from there (the store seeks), and the file closed unsent.
    for (const range of ['bytes=0-9', 'bytes=1000-', 'bytes=9999999-']) {
      const preconditions: Record<string, string>[] = [
        { 'if-match': '"another"' },
        { 'if-unmodified-since': earlier },
      ];
      for (const precondition of preconditions) {
        const response = await ranged(range, precondition);
        expect(response.status, range).toBe(412);
        expect(await response.json()).toEqual({ error: 'precondition_failed' });
      }
    }
  });

  it('sends the range when If-Match names the file (a resumed download that must not splice)', async () => {
    const response = await ranged('bytes=1000-1009', { 'if-match': etag, 'if-unmodified-since': modified });
    const body = new Uint8Array(await response.arrayBuffer());

    expect(response.status).toBe(206);
    expect(sha256(body)).toBe(sha256(BIG.subarray(1000, 1010)));
  });

  it('answers a revalidation before the range: a matching If-None-Match is 304', async () => {
    const response = await ranged('bytes=0-9', { 'if-none-match': etag });

    expect(response.status).toBe(304);
  });

  it('resumes a download curl left half done (curl -C -), the file whole once more', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'plugindex-range-'));
    const file = path.join(dir, 'demo');
    try {
      await writeFile(file, BIG.subarray(0, 1_000_003));
      const { status } = await runCurl(['-sS', '-f', '-C', '-', '-o', file, url]);
      expect(status).toBe(0);
      expect(sha256(new Uint8Array(await readFile(file)))).toBe(sha256(BIG));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('closes the file of every ranged response', async () => {
    const openFiles = async (): Promise<number> => (await readdir('/proc/self/fd')).length;
    const before = await openFiles();

    for (let i = 0; i < 30; i++) {
      const response = await ranged('bytes=0-0');
      expect(response.status).toBe(206);
      await response.arrayBuffer();
    }

    expect(await openFiles()).toBeLessThan(before + 10);
  });
});

describe('when a file served is written in place as it is sent (a copy made over it by hand)', () => {
  /** A sparse file of `size` bytes dropped by hand under the site (no sidecar), and its path. */
  const drop = async (name: string, size: number): Promise<string> => {
    const file = path.join(root, 'public', 'plugins', 'demo', '1.0.0', 'artifacts', 'linux-amd64', name);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, '');
    await truncate(file, size);
    return file;
  };

  /**
   * Sends `request` on a connection of its own with a GET of /index.json pipelined behind it and, once the
   * first answer's head has come (the server has sized the file and begun to send it), reads no more while
   * `meanwhile` runs; then reads on. Resolves with the first answer's Content-Length, its body bytes
   * received, whether any of them was not the file's (the files here are sparse: all zeros), whether the
   * server closed the connection, and what came after the body's last byte (the next answer's head, where
   * the server went on). Each outcome is an event (the close, or the next answer's head), never a wait: a
   * second's quiet once stood for "closed", and a loaded machine's pause mid-body was taken for it. Should
   * neither come, it gives up at 30 s, half the test's timeout, so only a test already failed ends there.
   */
  const heldExchange = (request: string, meanwhile: () => Promise<void>) =>
    new Promise<{ length: number; received: number; foreign: boolean; closed: boolean; next: string }>(
      (resolve, reject) => {
        const url = new URL(base);
        const socket = net.connect({ port: Number(url.port), host: url.hostname });
        let head = Buffer.alloc(0);
        let length = -1;
        let received = 0;
        let foreign = false;
        let after = Buffer.alloc(0);
        const guard = setTimeout(() => done(false), 30_000);
        const done = (closed: boolean) => {
          clearTimeout(guard);
          socket.destroy();
          resolve({ length, received, foreign, closed, next: after.toString('latin1') });
        };
        const body = (bytes: Buffer) => {
          const within = bytes.subarray(0, Math.max(0, length - received));
          received += within.byteLength;
          if (within.some((byte) => byte !== 0)) foreign = true;
          after = Buffer.concat([after, bytes.subarray(within.byteLength)]);
          if (after.includes('\r\n\r\n')) done(false);
        };
        socket.on('error', reject);
        socket.on('close', () => done(true));
        socket.on('data', (chunk: Buffer) => {
          if (length >= 0) return body(chunk);
          head = Buffer.concat([head, chunk]);
          const end = head.indexOf('\r\n\r\n');
          if (end < 0) return;
          length = Number(/\r\ncontent-length: (\d+)/i.exec(head.subarray(0, end).toString())?.[1]);
          socket.pause();
          meanwhile().then(() => socket.resume(), reject);
          body(head.subarray(end + 4));
        });
        socket.write(`${request}GET /index.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
      },
    );

  it('sends no byte past its Content-Length, though the file grows: the next answer would begin there', async () => {
    const size = 64 * 1024 * 1024;
    const file = await drop('grows', size);

    const answer = await heldExchange(
      `GET ${file.slice(path.join(root, 'public').length)} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`,
      () => appendFile(file, new Uint8Array(1024 * 1024).fill(0x48)),
    );

    // The file's first bytes, as many as its stat counted: the bytes appended are not sent, and the next
    // answer begins right after them.
    expect(answer.length).toBe(size);
    expect(answer.received).toBe(size);
    expect(answer.foreign).toBe(false);
    expect(answer.next.slice(0, 13)).toBe('HTTP/1.1 200 ');
  });

  it('closes the connection at once when the file shrinks below the range sent, rather than leave its client waiting', async () => {
    const size = 64 * 1024 * 1024;
    const file = await drop('shrinks', size);

    const answer = await heldExchange(
      `GET ${file.slice(path.join(root, 'public').length)} HTTP/1.1\r\nHost: 127.0.0.1\r\nRange: bytes=1000-\r\n\r\n`,
      () => truncate(file, 2 * 1024 * 1024),
    );

    // Cut short and closed, the answer behind it never begun: a connection kept would have the next answer
    // sent on it, read by the client as the rest of this one.
    expect(answer.length).toBe(size - 1000);
    expect(answer.received).toBeLessThan(answer.length);
    expect(answer.foreign).toBe(false);
    expect(answer.closed).toBe(true);
    expect(answer.next).toBe('');
  });
});

/** Runs curl, a real client of ranges, and resolves with its exit status. */
function runCurl(args: readonly string[]): Promise<{ status: number | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn('curl', [...args], { stdio: 'ignore' });
    child.on('error', reject);
    child.on('close', (status) => resolve({ status }));
  });
}

describe('when a compressed variant is asked for by its own name', () => {
  const DOCUMENT = JSON.stringify({ plugins: ['x'.repeat(2000)] });
  let dir: string;
  let url: string;
  let stop: () => Promise<void>;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'plugindex-serve-variant-'));
    const site = new FsStore(dir);
    const options = { contentType: 'application/json', cacheControl: CACHE_MUTABLE };
    // As the publisher stores them, on S3 too: the document's type, and the variant's Content-Encoding.
    await site.put('index.json.gz', gzipSync(DOCUMENT), { ...options, contentEncoding: 'gzip' });
    await site.put('index.json.br', brotliCompressSync(DOCUMENT), { ...options, contentEncoding: 'br' });
    await site.put('index.json', encode(DOCUMENT), options);
    const listening = await listenRegistryServer(createRegistryServer({ site }), 0);
    url = listening.url;
    stop = listening.close;
  });

  afterAll(async () => {
    await stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** A GET with that Accept-Encoding alone, or none (node:http adds none of its own and decodes nothing). */
  const get = (pathname: string, acceptEncoding?: string) =>
    rawRequest(url, pathname, acceptEncoding === undefined ? {} : { 'accept-encoding': acceptEncoding });

  it.each([
    ['no Accept-Encoding (curl -O, wget)', undefined],
    ['one that accepts gzip', 'gzip, deflate, br'],
  ])('sends it as stored, with its Content-Encoding, to a client with %s', async (_, acceptEncoding) => {
    const { status, headers, body } = await get('/index.json.gz', acceptEncoding);

    expect(status).toBe(200);
    expect(headers['content-encoding']).toBe('gzip');
    expect(headers.vary).toContain('Accept-Encoding');
    expect(gunzipSync(body).toString()).toBe(DOCUMENT);
  });

  it.each([
    ['/index.json.gz', 'identity'],
    ['/index.json.gz', 'br'],
    ['/index.json.gz', 'gzip;q=0, *'],
    ['/index.json.br', 'gzip, deflate'],
  ])(
    'sends %s to a client whose header (%s) refuses its coding as the document, in no coding',
    async (pathname, acceptEncoding) => {
      const { status, headers, body } = await get(pathname, acceptEncoding);

      expect(status).toBe(200);
      expect(headers['content-encoding']).toBeUndefined();
      expect(headers['content-type']).toBe('application/json');
      expect(headers.vary).toContain('Accept-Encoding');
      expect(body.toString()).toBe(DOCUMENT);
    },
  );

  it('answers a range of the variant it sends: its own bytes, under its own ETag', async () => {
    const whole = await get('/index.json.gz', 'gzip');
    const part = await rawRequest(url, '/index.json', { 'accept-encoding': 'gzip', range: 'bytes=0-9' });

    expect(part.status).toBe(206);
    expect(part.headers['content-encoding']).toBe('gzip');
    expect(part.headers.etag).toBe(whole.headers.etag);
    expect(part.headers['content-range']).toBe(`bytes 0-9/${whole.body.byteLength}`);
    expect(part.body.equals(whole.body.subarray(0, 10))).toBe(true);
  });
});

describe('when mapping the spec endpoints', () => {
  it('serves the home page at / and a folder index for a path ending in /', async () => {
    expect(await (await fetch(`${base}/`)).text()).toBe(SITE['index.html']);
    expect(await (await fetch(`${base}/plugins/demo/`)).text()).toBe(SITE['plugins/demo/index.html']);
  });

  it('serves /plugins as JSON, or as the home page to a browser', async () => {
    const json = await fetch(`${base}/plugins`);
    const html = await fetch(`${base}/plugins`, { headers: { accept: BROWSER_ACCEPT } });

    expect(await json.text()).toBe(SITE['index.json']);
    // index.json is one of the documents published encoded too (its variants are tested below).
    expect(json.headers.get('vary')).toBe('Accept, Accept-Encoding');
    expect(await html.text()).toBe(SITE['index.html']);
    expect(html.headers.get('vary')).toBe('Accept');
    expect(await (await fetch(`${base}/plugins/`)).text()).toBe(SITE['index.json']);
  });

  it('ignores the query, so a client may add ?v=<digest> as it does through the CDN', async () => {
    const response = await fetch(`${base}/index.json?v=0123abcd`);

    expect(response.status).toBe(200);
    expect(await response.text()).toBe(SITE['index.json']);
  });

  it.each([
    [undefined, 'application/json', 'plugins/demo/index.json'],
    ['*/*', 'application/json', 'plugins/demo/index.json'],
    ['application/json', 'application/json', 'plugins/demo/index.json'],
    ['text/html', 'text/html; charset=utf-8', 'plugins/demo/index.html'],
    [BROWSER_ACCEPT, 'text/html; charset=utf-8', 'plugins/demo/index.html'],
  ])('serves /plugins/{name} for Accept %j as %s', async (accept, contentType, key) => {
    const response = await fetch(`${base}/plugins/demo`, { headers: accept ? { accept } : {} });

    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe(contentType);
    // A plugin document has encoded variants while it is over the compression threshold: its answer
    // depends on Accept-Encoding too, as an index document's does.
    expect(response.headers.get('vary')).toBe(
      contentType === 'application/json' ? 'Accept, Accept-Encoding' : 'Accept',
    );
    expect(await response.text()).toBe(SITE[key]);
  });

  it('serves a version manifest at /plugins/{name}/{version}/manifest', async () => {
    const response = await fetch(`${base}/plugins/demo/1.0.0/manifest`);

    expect(response.headers.get('content-type')).toBe('application/json');
    expect(response.headers.get('vary')).toBeNull();
    expect(await response.json()).toEqual({ name: 'demo', version: '1.0.0' });
  });

  it('answers /search as the search endpoint, never with the file: 503 while no snapshot binds one', async () => {
    // This tree has a search.json but no snapshot.json: nothing says which generation it is (test/cli/local/
    // search.test.ts searches a registry the pipeline published).
    for (const query of ['', '?q=demo', '?type=cost_source']) {
      const response = await raw(`/search${query}`);
      expect(response.status, query).toBe(503);
      expect(response.headers['cache-control'], query).toBe('no-store');
      expect(JSON.parse(response.body), query).toMatchObject({ code: 'SEARCH_NOT_PUBLISHED' });
    }
    // A bad parameter is refused before anything is read.
    const refused = await raw('/search?q=%ZZ&type=cost_source');
    expect(refused.status).toBe(400);
    expect(JSON.parse(refused.body)).toMatchObject({ code: 'SEARCH_PARAMETER_MALFORMED', parameter: 'q' });
    // The file itself stays where it is.
    expect((await raw('/search.json')).body).toBe(SITE['search.json']);
  });

  it('serves every other path as the key of the same name', async () => {
    expect(await (await fetch(`${base}/plugins/demo/index.json`)).text()).toBe(
      SITE['plugins/demo/index.json'],
    );
    expect((await fetch(`${base}/plugins/demo/1.0.0/manifest.json`)).status).toBe(200);
  });
});

describe('when judging Accept headers', () => {
  it.each([
    [undefined, false],
    ['', false],
    ['*/*', false],
    ['application/json', false],
    ['text/html', true],
    ['text/*', true],
    [BROWSER_ACCEPT, true],
    ['application/json;q=0.5, text/html', true],
    ['text/html;q=0.1, application/json', false],
    ['text/html, application/json', false],
    // The most specific range decides: JSON is explicitly ranked below anything else.
    ['application/json;q=0.5, */*', true],
    ['text/html;q=0, */*', false],
    ['TEXT/HTML;Q=0.9, application/json;q=0.8', true],
    ['text/html;q=abc, application/json;q=0.1', false],
  ])('prefers HTML for %j: %s', (accept, expected) => {
    expect(prefersHtml(accept)).toBe(expected);
  });
});

describe('when a path tries to leave the site', () => {
  it.each([
    '/../secret.txt',
    '/../etc/passwd',
    '/%2e%2e/%2e%2e/etc/passwd',
    '/%2E%2E/secret.txt',
    '/plugins/..%2f..%2f..%2fsecret.txt',
    '/plugins/demo/..%2f..%2f..%2fsecret.txt/manifest',
    '/plugins/demo/%2e%2e/manifest',
    '/plugins/demo/./manifest',
    '/.meta/index.json.json',
    '/.meta/',
    '/%2emeta/index.json.json',
    '/index.json%00',
    '/index.json%00.html',
    '/plugins\\..\\..\\secret.txt',
    '/plugins%5c..%5c..%5csecret.txt',
    '/%zz',
    '/%',
    '//etc/passwd',
    '/link.txt',
    '/plugins/evil/passwd',
    '/up/secret.txt',
    '/up/etc/passwd',
    '/%252e%252e/secret.txt',
    'http://example.com/../secret.txt',
  ])('refuses %s without a 500 and without its contents', async (pathname) => {
    const response = await raw(pathname);

    expect([400, 404]).toContain(response.status);
    expect(response.body).not.toContain(SECRET);
    expect(response.body).not.toContain('contentType'); // no sidecar either
  });

  it('follows a link to a folder only while it stays inside the tree', async () => {
    const inside = await raw('/alias/index.json');
    expect(inside.status).toBe(200);
    expect(inside.body).toBe(SITE['plugins/demo/index.json']);
    expect((await raw('/plugins/evil/passwd')).status).toBe(404);
  });

  it('maps only to keys the store accepts', () => {
    for (const pathname of [
      '/plugins/demo/./manifest',
      '/plugins/demo/.meta/manifest',
      '/a//b',
      '/.meta/x',
    ]) {
      expect(routeFor(pathname, undefined), pathname).toBeUndefined();
    }
  });
});

describe("when a path names the registry's own files beside the published tree", () => {
  /** `plugindex init`'s folder, an upload and its outcome in the intake, served as `plugindex serve` serves it. */
  let dir: string;
  let registryBase: string;
  let closeRegistry: () => Promise<void>;
  beforeAll(async () => {
    dir = path.join(root, 'registry');
    await initRegistry(dir, { name: 'own-files', url: 'http://127.0.0.1:9' });
    await writeFile(path.join(dir, 'incoming', 'upload.tgz'), SECRET);
    await writeFile(path.join(dir, 'status', 'upload.json'), SECRET);
    const listening = await listenRegistryServer(createRegistryServer({ site: openSite(dir) }), 0);
    registryBase = listening.url;
    closeRegistry = listening.close;
  });
  afterAll(async () => {
    await closeRegistry();
  });

  it.each([
    '/keys/registry-secret.asc',
    '/keys/REGISTRY-SECRET.asc',
    '/%6beys/registry-secret.asc',
    '/../keys/registry-secret.asc',
    '/%2e%2e/keys/registry-secret.asc',
    '/%2e%2e%2fkeys%2fregistry-secret.asc',
    '/%252e%252e/keys/registry-secret.asc',
    '/..%5ckeys%5cregistry-secret.asc',
    '/%c0%ae%c0%ae/keys/registry-secret.asc',
    '/plugindex.json',
    '/../plugindex.json',
    '/../incoming/upload.tgz',
    '/incoming/upload.tgz',
    '/../status/upload.json',
    '/status/upload.json',
    '/../state/log.json',
    '/../.serve.sock',
    '/../.lock',
    'http://evil.example/../keys/registry-secret.asc',
  ])('refuses %s, and sends none of the key, the intake or the config', async (pathname) => {
    const response = await raw(pathname, 'GET', registryBase);

    expect([400, 404]).toContain(response.status);
    expect(response.body).not.toContain('PRIVATE KEY');
    expect(response.body).not.toContain(SECRET);
    expect(response.body).not.toContain('own-files');
  });
});

describe('when a request names its host', () => {
  /** The status line of a request written exactly as given, on its own connection. */
  async function statusOf(head: string): Promise<string> {
    return (await exchange(`${head}Connection: close\r\n\r\n`)).split('\r\n', 1)[0] ?? '';
  }

  it.each([
    ['two Host lines', 'GET /index.json HTTP/1.1\r\nHost: localhost\r\nHost: elsewhere.example\r\n'],
    ['a Host with a space', 'GET /index.json HTTP/1.1\r\nHost: local host\r\n'],
    ['a Host with a path', 'GET /index.json HTTP/1.1\r\nHost: localhost/admin\r\n'],
    ['a Host with user information', 'GET /index.json HTTP/1.1\r\nHost: user@localhost\r\n'],
    ['two Host lines on a HEAD', 'HEAD /index.json HTTP/1.1\r\nHost: a\r\nHost: b\r\n'],
  ])('refuses %s with 400 (RFC 9112 §3.2)', async (_, head) => {
    expect(await statusOf(head)).toBe('HTTP/1.1 400 Bad Request');
  });

  it.each([
    ['a name and port', 'GET /index.json HTTP/1.1\r\nHost: localhost:8080\r\n'],
    ['an IPv6 literal', 'GET /index.json HTTP/1.1\r\nHost: [::1]:8080\r\n'],
    ['an empty Host', 'GET /index.json HTTP/1.1\r\nHost:\r\n'],
    ['no Host in HTTP/1.0', 'GET /index.json HTTP/1.0\r\n'],
  ])('serves a request with %s', async (_, head) => {
    expect(await statusOf(head)).toMatch(/^HTTP\/1\.1 200 /);
  });
});

describe('when a request target is in absolute form (RFC 9112 §3.2.2)', () => {
  /** The response to one request, written as given with `Connection: close`. */
  async function absolute(target: string, host = 'localhost', version = 'HTTP/1.1') {
    const hostLine = host === '' ? '' : `Host: ${host}\r\n`;
    return parseResponse(await exchange(`GET ${target} ${version}\r\n${hostLine}Connection: close\r\n\r\n`));
  }

  it('serves the path of an http target, the Host line agreeing', async () => {
    const url = new URL(base);
    const response = await absolute(`http://${url.host}/index.json`, url.host);

    expect(response.status).toBe('HTTP/1.1 200 OK');
    expect(response.body).toBe(SITE['index.json']);
  });

  it('takes the authority for the host, so a Host line naming another is ignored', async () => {
    const response = await absolute('https://registry.example/plugins/demo', 'elsewhere.example:8443');

    expect(response.status).toBe('HTTP/1.1 200 OK');
    expect(response.body).toBe(SITE['plugins/demo/index.json']);
  });

  it.each([
    ['a scheme and host in capitals', 'HTTP://LOCALHOST:8080/index.json', '/index.json'],
    ['a query', 'http://localhost/index.json?v=abc', '/index.json'],
    ['an IPv6 literal', 'http://[::1]:8080/index.json', '/index.json'],
    ['an empty path, which is /', 'http://localhost:8080', '/'],
    ['an empty path before a query', 'http://localhost?v=1', '/'],
    ['an escaped path', 'http://localhost/plugins/%64emo/1.0.0/manifest', '/plugins/demo/1.0.0/manifest'],
  ])('serves a target with %s as its path', async (_, target, pathname) => {
    const response = await absolute(target);
    const expected = await raw(pathname);

    expect(response.status).toBe('HTTP/1.1 200 OK');
    expect(response.body).toBe(expected.body);
  });

  it('serves an HTTP/1.0 request, which needs no Host line', async () => {
    const response = await absolute('http://localhost/index.json', '', 'HTTP/1.0');

    expect(response.status).toMatch(/^HTTP\/1\.1 200 /);
    expect(response.body).toBe(SITE['index.json']);
  });

  it('keeps the query of a redirect, and answers the search endpoint', async () => {
    const moved = await absolute('http://localhost/plugins/?v=1');
    expect(moved.status).toMatch(/^HTTP\/1\.1 301 /);
    expect(moved.headers).toMatch(/\r\nlocation: \/plugins\?v=1\r\n/i);

    const search = await absolute('http://localhost/search?q=demo');
    const origin = await raw('/search?q=demo');
    expect(search.status).toMatch(new RegExp(`^HTTP/1\\.1 ${origin.status} `));
    expect(search.body).toBe(origin.body);
  });

  it.each([
    ['another scheme', 'ftp://localhost/index.json'],
    ['a file URI', 'file:///index.json'],
    ['no authority', 'http:/index.json'],
    ['an empty authority', 'http:///index.json'],
    ['an empty host before a port', 'http://:8080/index.json'],
    ['user information', 'http://user@localhost/index.json'],
    ['user information and a password', 'http://user:secret@localhost/index.json'],
    ['a port that is no number', 'http://localhost:http/index.json'],
    ['an unclosed IPv6 literal', 'http://[::1/index.json'],
    ['a scheme alone', 'http:'],
    ['a URN', 'urn:isbn:0451450523'],
  ])('refuses a target with %s with 400', async (_, target) => {
    expect((await absolute(target)).status).toBe('HTTP/1.1 400 Bad Request');
  });

  it.each([
    'http://localhost/../secret.txt',
    'http://localhost/%2e%2e/secret.txt',
    'http://localhost/plugins%5c..%5c..%5csecret.txt',
    'http://localhost/index.json%00',
    'http://localhost//etc/passwd',
    'http://localhost/up/secret.txt',
  ])('refuses %s as it refuses its path', async (target) => {
    const response = await absolute(target);

    expect(response.status).toMatch(/^HTTP\/1\.1 40[04] /);
    expect(response.body).not.toContain(SECRET);
  });

  it('still refuses two Host lines (RFC 9112 §3.2), though it reads neither', async () => {
    const text = await exchange(
      'GET http://localhost/index.json HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n',
    );
    expect(parseResponse(text).status).toBe('HTTP/1.1 400 Bad Request');
  });
});

describe('when a client half-closes its side after the request', () => {
  it('sends the whole response, then closes', async () => {
    const response = parseResponse(
      await exchange('GET /index.json HTTP/1.1\r\nHost: localhost\r\n\r\n', { halfClose: true }),
    );

    expect(response.status).toBe('HTTP/1.1 200 OK');
    expect(response.body).toBe(SITE['index.json']);
  });

  it('answers an HTTP/1.0 request the same', async () => {
    const response = parseResponse(await exchange('GET /plugins/demo HTTP/1.0\r\n\r\n', { halfClose: true }));

    expect(response.status).toMatch(/^HTTP\/1\.1 200 /);
    expect(response.body).toBe(SITE['plugins/demo/index.json']);
  });

  it('answers every request sent before the close, in order', async () => {
    const text = await exchange(
      'GET /index.json HTTP/1.1\r\nHost: localhost\r\n\r\nGET /plugins/demo HTTP/1.1\r\nHost: localhost\r\n\r\n',
      { halfClose: true },
    );

    // The second status line follows the first body directly, with no line break between them.
    expect(text.match(/HTTP\/1\.1 200 OK\r\n/g)).toHaveLength(2);
    expect(text.indexOf(SITE['index.json'] as string)).toBeGreaterThan(0);
    expect(text.indexOf(SITE['plugins/demo/index.json'] as string)).toBeGreaterThan(
      text.indexOf(SITE['index.json'] as string),
    );
  });

  it('sends a streamed artifact whole', async () => {
    const response = parseResponse(
      await exchange('GET /plugins/demo/1.0.0/bin/page.html HTTP/1.1\r\nHost: localhost\r\n\r\n', {
        halfClose: true,
      }),
    );

    expect(response.status).toBe('HTTP/1.1 200 OK');
    expect(response.body).toBe(SITE['plugins/demo/1.0.0/bin/page.html']);
  });
});

describe('when a client holds a connection without using it', () => {
  // Short, so the tests take seconds; SERVER_TIMEOUTS has the real ones. Seconds apart from what the tests
  // do within them (a line sent every 200 ms, a read paused 300 ms): a second's idle once, and a loaded
  // machine's stall of most of it would have closed what the test keeps going.
  const TIMEOUTS: ServerTimeouts = { idleMs: 3_000, headersMs: 4_000 };
  const STALLED_KEY = 'plugins/demo/1.0.0/artifacts/stalled/demo';
  let server: http.Server;
  let port: number;
  let closeQuick: () => Promise<void>;

  beforeAll(async () => {
    const site = new FsStore(path.join(root, 'public'));
    // Larger than the socket buffers of both ends, so a client that reads nothing stalls the server's writes.
    await site.put(STALLED_KEY, patternBytes(48 * 1024 * 1024), {
      contentType: 'application/octet-stream',
      cacheControl: CACHE_IMMUTABLE,
    });
    server = createRegistryServer({ site, timeouts: TIMEOUTS });
    const listening = await listenRegistryServer(server, 0);
    port = Number(new URL(listening.url).port);
    closeQuick = listening.close;
  });

  afterAll(async () => {
    await closeQuick();
  });

  /** The server's open connections. */
  function connections(): Promise<number> {
    return new Promise((resolve, reject) =>
      server.getConnections((error, count) => (error ? reject(error) : resolve(count))),
    );
  }

  /** This process's descriptors open on the stalled artifact (the server runs in it). */
  async function openOnArtifact(): Promise<number> {
    const links = await Promise.all(
      (await readdir('/proc/self/fd')).map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')),
    );
    return links.filter((link) => link.endsWith(path.join(...STALLED_KEY.split('/')))).length;
  }

  /** Everything the server sent until it closed the socket, or undefined when it had not within `ms`. */
  function untilClosed(socket: net.Socket, ms: number): Promise<string | undefined> {
    return new Promise((resolve) => {
      let received = '';
      const timer = setTimeout(() => resolve(undefined), ms);
      socket.setEncoding('latin1');
      socket.on('data', (chunk: string) => {
        received += chunk;
      });
      socket.on('error', () => undefined); // a reset is a close too
      socket.on('close', () => {
        clearTimeout(timer);
        resolve(received);
      });
    });
  }

  it('closes a connection that sends nothing', async () => {
    const socket = net.connect(port, '127.0.0.1');
    try {
      expect(await untilClosed(socket, 30_000)).toBe('');
    } finally {
      socket.destroy();
    }
  });

  it('answers 408 to a request head sent a line at a time, each line within the idle timeout', async () => {
    const socket = net.connect(port, '127.0.0.1');
    socket.write('GET /index.json HTTP/1.1\r\nHost: localhost\r\n');
    const trickle = setInterval(() => socket.writable && socket.write('X-Slow: 1\r\n'), 200);
    try {
      const received = await untilClosed(socket, 30_000);
      expect(received).toMatch(/^HTTP\/1\.1 408 /);
    } finally {
      clearInterval(trickle);
      socket.destroy();
    }
  });

  it('closes a download the client stopped reading, and the file it was sending', async () => {
    const socket = net.connect(port, '127.0.0.1');
    socket.write(`GET /${STALLED_KEY} HTTP/1.1\r\nHost: localhost\r\n\r\n`);
    socket.pause(); // reads nothing: the kernel buffers fill, then the server's writes wait
    try {
      await expect.poll(openOnArtifact).toBe(1);
      // The client still holds its end (paused, it never reads the close); the server has let go of its own.
      await expect.poll(connections).toBe(0);
      await expect.poll(openOnArtifact).toBe(0);
    } finally {
      socket.destroy();
    }
  });

  it('keeps a download that is read slowly but never stops for the idle timeout', async () => {
    const PAUSE_MS = 300;
    let pauses = 0;
    const received = await new Promise<number>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path: `/${STALLED_KEY}`, agent: false }, (res) => {
        let bytes = 0;
        let sincePause = 0;
        res.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          sincePause += chunk.length;
          // A pause of a tenth of the idle timeout after every 4 MiB: seconds in all, none of them idle.
          if (sincePause >= 4 * 1024 * 1024) {
            sincePause = 0;
            pauses += 1;
            res.pause();
            setTimeout(() => res.resume(), PAUSE_MS);
          }
        });
        res.on('end', () => resolve(bytes));
        res.on('error', reject);
      });
      req.on('error', reject);
    });

    expect(received).toBe(48 * 1024 * 1024);
    // The premise, counted rather than clocked: the pauses alone outlast the idle timeout, so a deadline
    // on the whole response (rather than on each wait) would have cut it.
    expect(pauses * PAUSE_MS).toBeGreaterThan(TIMEOUTS.idleMs);
  });
});

describe('when clients hold many connections', () => {
  /** Few, so the tests open a handful; MAX_CONNECTIONS and defaultShare have the real ones. */
  const CAP = 4;
  const HOUR_MS = 3_600_000;
  /** Larger than the socket buffers of both ends: a client that reads none of it keeps its answer going. */
  const FLOOD_KEY = 'plugins/demo/1.0.0/artifacts/flood/demo';
  let site: FsStore;
  const opened: net.Socket[] = [];

  beforeAll(async () => {
    site = new FsStore(path.join(root, 'public'));
    await site.put(FLOOD_KEY, patternBytes(48 * 1024 * 1024), {
      contentType: 'application/octet-stream',
      cacheControl: CACHE_IMMUTABLE,
    });
  });

  afterEach(() => {
    for (const socket of opened.splice(0)) socket.destroy();
  });

  /**
   * A server with these options (and the real idle and head timeouts: every close seen here within seconds is
   * the slots', never a timeout's), and what it accepted: the client ports it has judged, in order. No answer
   * stalls within a test unless `options.timeouts` says when: at the real 10 s, a loaded machine slow to run
   * a test's steps would see the downloads it holds unread give their places.
   */
  async function serveWith(options: Omit<RegistryServerOptions, 'site'>): Promise<{
    port: number;
    judged: number[];
    /** The server's end of a client's connection, by the client's port. */
    ends: Map<number, net.Socket>;
    close: () => Promise<void>;
  }> {
    const server = createRegistryServer({
      site,
      timeouts: { ...SERVER_TIMEOUTS, stalledMs: HOUR_MS },
      ...options,
    });
    const judged: number[] = [];
    const ends = new Map<number, net.Socket>();
    // Ahead of the slots' listener: a socket they close no longer knows its peer's port.
    server.prependListener('connection', (socket: net.Socket) => {
      judged.push(socket.remotePort ?? 0);
      ends.set(socket.remotePort ?? 0, socket);
    });
    const listening = await listenRegistryServer(server, 0);
    return { port: Number(new URL(listening.url).port), judged, ends, close: listening.close };
  }

  /** A connection from `from` (any 127.x address is this machine's), once the server has judged it. */
  async function connect(port: number, judged: readonly number[], from = '127.0.0.1'): Promise<net.Socket> {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress: from });
    opened.push(socket);
    socket.on('error', () => undefined); // a reset is a close too
    socket.on('end', () => socket.destroy()); // the server's close, seen
    await new Promise((resolve) => socket.once('connect', resolve));
    const local = socket.localPort; // read now: a closed socket no longer knows it
    await expect.poll(() => judged.includes(local ?? -1)).toBe(true);
    return socket;
  }

  /** A connection that asked for the large artifact and reads no more than its first bytes: busy. */
  async function busy(port: number, judged: readonly number[], from = '127.0.0.1'): Promise<net.Socket> {
    const socket = await connect(port, judged, from);
    socket.write(`GET /${FLOOD_KEY} HTTP/1.1\r\nHost: localhost\r\n\r\n`);
    const first = await new Promise<Buffer>((resolve) => socket.once('data', resolve));
    socket.pause();
    expect(first.toString('latin1')).toMatch(/^HTTP\/1\.1 200 /);
    return socket;
  }

  /**
   * Whether the server has closed its end of each of `sockets` (undefined for one it never accepted): seen
   * from the server, as a client that reads nothing would not read a close either.
   */
  function closedByServer(
    server: { ends: Map<number, net.Socket> },
    sockets: readonly net.Socket[],
  ): (boolean | undefined)[] {
    return sockets.map((socket) => server.ends.get(socket.localPort ?? -1)?.destroyed);
  }

  /** True once the server closed `socket`, false when it had not within `ms`. */
  function closedWithin(socket: net.Socket, ms: number): Promise<boolean> {
    if (socket.destroyed) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      socket.once('close', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** The answer to a GET of /index.json on `socket`: its status line. */
  async function statusOn(socket: net.Socket): Promise<string> {
    socket.write('GET /index.json HTTP/1.1\r\nHost: localhost\r\n\r\n');
    const chunk = await new Promise<Buffer>((resolve) => socket.once('data', resolve));
    return chunk.toString('latin1').split('\r\n', 1)[0] ?? '';
  }

  /** A GET of /index.json on a connection of its own from `from`: its status. */
  function fetchFrom(port: number, from: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = http.get(
        { host: '127.0.0.1', port, path: '/index.json', localAddress: from, agent: false },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
    });
  }

  it('gives the place of the connection idle longest to a new one, and serves it', async () => {
    const server = await serveWith({ maxConnections: CAP, maxConnectionsPerAddress: 0 });
    try {
      const idle = [];
      for (let i = 0; i < CAP; i++) idle.push(await connect(server.port, server.judged));

      const next = await connect(server.port, server.judged);

      expect(await closedWithin(idle[0] as net.Socket, 3_000)).toBe(true);
      expect(await Promise.all(idle.slice(1).map((socket) => closedWithin(socket, 300)))).toEqual([
        false,
        false,
        false,
      ]);
      expect(await statusOn(next)).toBe('HTTP/1.1 200 OK');
    } finally {
      await server.close();
    }
  });

  it('closes an idle connection, never one it is answering, to make room', async () => {
    const server = await serveWith({ maxConnections: CAP, maxConnectionsPerAddress: 0 });
    try {
      // The idle one is the newest: it is closed for being the only idle one, not for its age.
      const answering = [];
      for (let i = 0; i < CAP - 1; i++) answering.push(await busy(server.port, server.judged));
      const idle = await connect(server.port, server.judged);

      const next = await connect(server.port, server.judged);

      expect(await closedWithin(idle, 3_000)).toBe(true);
      expect(closedByServer(server, answering)).toEqual(answering.map(() => false));
      expect(await statusOn(next)).toBe('HTTP/1.1 200 OK');
    } finally {
      await server.close();
    }
  });

  it('closes a new connection while every slot is answering, and serves the next client once they end', async () => {
    // No share: behind a reverse proxy, one address (the proxy's) may hold every slot.
    const server = await serveWith({ maxConnections: CAP, maxConnectionsPerAddress: 0 });
    try {
      const answering = [];
      for (let i = 0; i < CAP; i++) answering.push(await busy(server.port, server.judged));

      const extras = await Promise.all([1, 2, 3].map(() => connect(server.port, server.judged)));

      expect(await Promise.all(extras.map((socket) => closedWithin(socket, 3_000)))).toEqual([
        true,
        true,
        true,
      ]);
      expect(closedByServer(server, answering)).toEqual(answering.map(() => false));
      for (const socket of answering) socket.destroy();
      await expect.poll(() => fetchFrom(server.port, '127.0.0.1').catch(() => 0)).toBe(200);
    } finally {
      await server.close();
    }
  });

  it('gives the place of an answer its client stopped reading when none is idle, never of one being read', async () => {
    // No wall-clock bound is left to fail on a loaded machine: the slots' samples are the test's to take
    // (the first sample sees the paused answers' queues moved since their requests began and marks them
    // fresh: run late by a loaded machine's timers, it left them unstalled), each "after" is an event, and
    // the one wait is a least time, which a late timer only lengthens. The reader comes first, so were its
    // reading not seen it would be the one stalled longest, and go.
    let sample = () => {};
    const stalledMs = 500;
    const server = await serveWith({
      maxConnections: CAP,
      maxConnectionsPerAddress: 0,
      timeouts: { ...SERVER_TIMEOUTS, stalledMs },
      sampleTimer: (run) => {
        sample = run;
        return () => {
          sample = () => {};
        };
      },
    });
    let reading: http.ClientRequest | undefined;
    try {
      // Reads a MiB, waits 100 ms, and again: slow (the 48 MiB take it 5 s at least), never stalled.
      let received = 0;
      const readerPort = await new Promise<number>((resolve, reject) => {
        reading = http.get(
          { host: '127.0.0.1', port: server.port, path: `/${FLOOD_KEY}`, agent: false },
          (res) => {
            let sincePause = 0;
            res.on('data', (chunk: Buffer) => {
              received += chunk.length;
              sincePause += chunk.length;
              if (sincePause >= 1024 * 1024) {
                sincePause = 0;
                res.pause();
                setTimeout(() => res.resume(), 100);
              }
            });
            res.on('error', () => undefined);
            resolve(res.socket.localPort ?? -1);
          },
        );
        reading.on('error', reject);
      });
      /** The kernel took a whole write of the reader's answer: progress, as the slots see it. */
      const readerDrained = () =>
        new Promise((resolve) => server.ends.get(readerPort)?.once('drain', resolve));
      const stalled = [];
      for (let i = 0; i < CAP - 1; i++) stalled.push(await busy(server.port, server.judged));
      // The others' kernel buffers, filled while the reader took two writes: their queues move no more.
      await readerDrained();
      await readerDrained();
      sample();
      // From this sample on, the others took nothing for the whole stall, and the reader took a write since.
      await new Promise((resolve) => setTimeout(resolve, stalledMs));
      await readerDrained();

      const next = await connect(server.port, server.judged);

      const closed = closedByServer(server, stalled);
      expect(closed.filter(Boolean)).toHaveLength(1);
      expect(reading?.destroyed).toBe(false);
      expect(server.ends.get(readerPort)?.destroyed).toBe(false);
      expect(await statusOn(next)).toBe('HTTP/1.1 200 OK');
      const before = received;
      await expect.poll(() => received).toBeGreaterThan(before);
    } finally {
      reading?.destroy();
      await server.close();
    }
  });

  it('serves another address while one opens every connection it can and reads nothing', async () => {
    const server = await serveWith({ maxConnections: CAP }); // a share of 1 by default
    try {
      const served: boolean[] = [];
      for (let i = 0; i < CAP; i++) {
        const socket = await connect(server.port, server.judged, '127.0.0.2');
        socket.write(`GET /${FLOOD_KEY} HTTP/1.1\r\nHost: localhost\r\n\r\n`);
        served.push(
          await new Promise<boolean>((resolve) => {
            socket.once('data', () => resolve(true));
            socket.once('close', () => resolve(false));
          }),
        );
        socket.pause();
      }

      // Before, the four took every slot and the other address's connection was closed unread.
      expect(served).toEqual([true, false, false, false]);
      expect(await fetchFrom(server.port, '127.0.0.3')).toBe(200);
    } finally {
      await server.close();
    }
  });

  it("closes a connection past its address's share while the others answer, and serves another address", async () => {
    // 16 slots: a share of 2 by default.
    const server = await serveWith({ maxConnections: 16 });
    try {
      const answering = [await busy(server.port, server.judged, '127.0.0.2')];
      answering.push(await busy(server.port, server.judged, '127.0.0.2'));

      const third = await connect(server.port, server.judged, '127.0.0.2');

      expect(await closedWithin(third, 3_000)).toBe(true);
      expect(closedByServer(server, answering)).toEqual(answering.map(() => false));
      expect(await fetchFrom(server.port, '127.0.0.3')).toBe(200);
    } finally {
      await server.close();
    }
  });

  it("gives the place of an address's own idle connection, never another address's", async () => {
    const server = await serveWith({ maxConnections: 16, maxConnectionsPerAddress: 2 });
    try {
      const other = await connect(server.port, server.judged, '127.0.0.3');
      const first = await connect(server.port, server.judged, '127.0.0.2');
      const second = await connect(server.port, server.judged, '127.0.0.2');

      const third = await connect(server.port, server.judged, '127.0.0.2');

      expect(await closedWithin(first, 3_000)).toBe(true);
      expect(await Promise.all([other, second, third].map((socket) => closedWithin(socket, 300)))).toEqual([
        false,
        false,
        false,
      ]);
      expect(await statusOn(third)).toBe('HTTP/1.1 200 OK');
    } finally {
      await server.close();
    }
  });

  /**
   * A connection that asked for the large artifact and takes 256 KiB of it every 20 ms, pausing between: a
   * reader (12.5 MB a second, so the 48 MiB last the test, about 4 s), never stalled. `stop` ends its
   * reading. Loopback's kernel buffers take megabytes of an answer at once and let the server write more only
   * once a good part of them is read: at 3 MB a second that showed in the server's write queue only after
   * seconds (the test waited 4 s), at this pace within a tenth of one.
   */
  async function reader(
    port: number,
    judged: readonly number[],
    from: string,
  ): Promise<{ socket: net.Socket; stop: () => void }> {
    const socket = await busy(port, judged, from);
    const taking = setInterval(() => socket.read(256 * 1024), 20);
    socket.once('close', () => clearInterval(taking));
    return { socket, stop: () => clearInterval(taking) };
  }

  it('gives a new address the place of the slowest reader of the address holding the most, while every slot answers a client that reads', async () => {
    // Nothing stalls within the hour serveWith sets, so every connection here is a reader to the slots: none
    // idle, none stalled. Each address may hold 2 of the 4.
    const lines: string[] = [];
    // The slots sample what each client takes once a second; here the test takes the samples itself.
    let sample = () => {};
    const server = await serveWith({
      maxConnections: CAP,
      maxConnectionsPerAddress: 2,
      logTurnedAway: (line) => lines.push(line),
      sampleTimer: (run) => {
        sample = run;
        return () => {
          sample = () => {};
        };
      },
    });
    const readers: { socket: net.Socket; stop: () => void }[] = [];
    try {
      // The slower of 127.0.0.2's two is the newer, and took bytes last (below), so neither the order they
      // came in nor when each last took any chooses it: only what each took between the samples.
      readers.push(await reader(server.port, server.judged, '127.0.0.2'));
      const slowest = await busy(server.port, server.judged, '127.0.0.2'); // takes nothing after its first bytes
      readers.push(await reader(server.port, server.judged, '127.0.0.3'));
      readers.push(await reader(server.port, server.judged, '127.0.0.4'));
      // Three samples, the first only a baseline (what the kernel's buffers took at once, given a moment to),
      // and between two, each reader's answer drained once at least: the kernel took bytes of it, however
      // late this machine's timers ran the reading. (A tenth of a second apart, a reader read on a loaded
      // machine was sometimes seen taking nothing, as still as the slowest.)
      const drainOf = (socket: net.Socket) =>
        new Promise((resolve) => server.ends.get(socket.localPort ?? -1)?.once('drain', resolve));
      await new Promise((resolve) => setTimeout(resolve, 200));
      sample();
      for (let i = 0; i < 2; i++) {
        await Promise.all(readers.map(({ socket }) => drainOf(socket)));
        sample();
      }
      // Then the readers stop a moment and the slowest takes a few MiB, so its answer drains last of all: by
      // when each last took bytes (the tie-break), 127.0.0.2's reader would go. Before, the slowest took
      // nothing after its first bytes, and the tie-break alone chose it: the test passed with no rates.
      for (const { stop } of readers) stop();
      const drains = new Map<net.Socket, number>();
      for (const socket of [slowest, ...readers.map(({ socket }) => socket)])
        server.ends.get(socket.localPort ?? -1)?.on('drain', () => drains.set(socket, performance.now()));
      await new Promise((resolve) => setTimeout(resolve, 200)); // what the readers' kernel buffers take
      const drained = new Promise((resolve) =>
        server.ends.get(slowest.localPort ?? -1)?.once('drain', resolve),
      );
      slowest.resume();
      await drained;
      slowest.pause();
      const slowestDrained = drains.get(slowest) ?? 0;
      expect(readers.map(({ socket }) => (drains.get(socket) ?? 0) < slowestDrained)).toEqual([
        true,
        true,
        true,
      ]);

      const next = await connect(server.port, server.judged, '127.0.0.5');

      // Before, eight addresses of slow readers (here three) held every slot and every other client was closed.
      expect(await closedWithin(next, 300)).toBe(false);
      expect(await statusOn(next)).toBe('HTTP/1.1 200 OK');
      expect(closedByServer(server, [slowest, ...readers.map(({ socket }) => socket)])).toEqual([
        true,
        false,
        false,
        false,
      ]);
      // A reader still: the 48 MiB not yet sent, so it kept its place for reading, not for being idle.
      expect(readers.map(({ socket }) => socket.destroyed)).toEqual([false, false, false]);
      expect(lines).toEqual([
        "[connections] closed the slowest reader of 127.0.0.2 (the address holding the most, 2) for another address's connection",
      ]);
    } finally {
      for (const { stop } of readers) stop();
      await server.close();
    }
  });

  it('closes a new connection from an address holding one fewer than the most, while every slot answers a client that reads', async () => {
    // A guard: before the slowest reader gave its place, every such connection was closed, this one too. It
    // holds the swap to an address holding at least two fewer, so no swap undoes another.
    const server = await serveWith({ maxConnections: CAP, maxConnectionsPerAddress: 2 });
    try {
      const answering = [
        await busy(server.port, server.judged, '127.0.0.2'),
        await busy(server.port, server.judged, '127.0.0.2'),
        await busy(server.port, server.judged, '127.0.0.3'),
        await busy(server.port, server.judged, '127.0.0.4'),
      ];

      // 127.0.0.3 holds 1, the most 2: a swap would only move the difference from one address to the other.
      const next = await connect(server.port, server.judged, '127.0.0.3');

      expect(await closedWithin(next, 3_000)).toBe(true);
      expect(closedByServer(server, answering)).toEqual(answering.map(() => false));
    } finally {
      await server.close();
    }
  });

  it('tells the operator of the connections it refuses, a line for each address however many', async () => {
    const lines: string[] = [];
    const server = await serveWith({
      maxConnections: CAP,
      maxConnectionsPerAddress: 0,
      logTurnedAway: (line) => lines.push(line),
    });
    try {
      for (let i = 0; i < CAP; i++) await busy(server.port, server.judged);

      const refused = [];
      for (let i = 0; i < 5; i++) refused.push(await connect(server.port, server.judged, '127.0.0.2'));
      for (let i = 0; i < 3; i++) refused.push(await connect(server.port, server.judged, '127.0.0.3'));

      expect(await Promise.all(refused.map((socket) => closedWithin(socket, 3_000)))).toEqual(
        refused.map(() => true),
      );
      // Before, a server refusing every client said nothing of it. The rest is counted for a line a minute on.
      expect(lines).toEqual([
        '[connections] refused a connection from 127.0.0.2: every slot is answering a client that reads (it holds 0)',
        '[connections] refused a connection from 127.0.0.3: every slot is answering a client that reads (it holds 0)',
      ]);
    } finally {
      await server.close();
    }
  });

  it("takes the cap and the share from plugindex serve's service too", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'plugindex-serve-cap-'));
    await initRegistry(dir, { name: 'Capped', url: 'http://127.0.0.1:9' });
    const service = await startService({
      dir,
      port: 0,
      watch: false,
      log: () => {},
      maxConnections: 2,
      maxConnectionsPerAddress: 0,
    });
    const port = Number(new URL(service.url).port);
    const open = (): Promise<net.Socket> =>
      new Promise((resolve) => {
        const socket = net.connect(port, '127.0.0.1', () => resolve(socket));
        opened.push(socket);
        socket.on('error', () => undefined);
        socket.on('end', () => socket.destroy());
      });
    try {
      // Answered, so judged before the next comes; kept alive, each holds a slot, idle.
      const held = [await open(), await open()];
      for (const socket of held) expect(await statusOn(socket)).toMatch(/^HTTP\/1\.1 (200|404) /);

      // Both held though they share an address (no share); the cap of 2 makes a third take the first's place.
      expect(await Promise.all(held.map((socket) => closedWithin(socket, 300)))).toEqual([false, false]);
      await open();
      expect(await closedWithin(held[0] as net.Socket, 3_000)).toBe(true);
      expect(await closedWithin(held[1] as net.Socket, 300)).toBe(false);
    } finally {
      await service.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('caps connections at MAX_CONNECTIONS, an eighth of them to an address, unless told otherwise', () => {
    expect(MAX_CONNECTIONS).toBe(256);
    expect(defaultShare(MAX_CONNECTIONS)).toBe(32);
    expect(defaultShare(4)).toBe(1);
    // Node's own bound: the slots and the one connection being judged.
    expect(createRegistryServer({ site }).maxConnections).toBe(MAX_CONNECTIONS + 1);
  });

  it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])('refuses a cap of %s with USAGE', (cap) => {
    expect(() => createRegistryServer({ site, maxConnections: cap })).toThrow(
      expect.objectContaining({ code: 'USAGE' }),
    );
    expect(() => createRegistryServer({ site, maxConnections: cap })).toThrow(CliError);
  });

  it.each([-1, 1.5, Number.NaN, 5])('refuses a share of %s (of 4 slots) with USAGE', (share) => {
    const create = () => createRegistryServer({ site, maxConnections: 4, maxConnectionsPerAddress: share });

    expect(create).toThrow(CliError);
    expect(create).toThrow(expect.objectContaining({ code: 'USAGE' }));
  });
});

describe('when the store fails', () => {
  it('answers 500 without the details', async () => {
    const failing: Store = {
      get: () => Promise.reject(new Error('EACCES: /srv/registry/private/key.asc')),
      head: () => Promise.reject(new Error('EACCES: /srv/registry/private/key.asc')),
      put: () => Promise.resolve(),
      getStream: () => Promise.reject(new Error('EACCES: /srv/registry/private/key.asc')),
      putStream: () => Promise.resolve(),
      delete: () => Promise.resolve(),
      list: () => ({
        [Symbol.asyncIterator]: () => ({ next: () => Promise.resolve({ done: true, value: undefined }) }),
      }),
    };
    const logged: string[] = [];
    const listening = await listenRegistryServer(
      createRegistryServer({ site: failing, log: (line) => logged.push(line) }),
      0,
    );
    try {
      const response = await fetch(`${listening.url}/index.json`);

      expect(response.status).toBe(500);
      const body = await response.text();
      expect(JSON.parse(body)).toEqual({ error: 'internal' });
      expect(body).not.toContain('/srv/registry');
      expect(logged.join('\n')).toContain('EACCES');
    } finally {
      await listening.close();
    }
  });

  it('logs the cause where only internal errors are logged, as plugindex serve has them', async () => {
    const failing: Store = {
      get: () => Promise.reject(new Error('EIO: read failed')),
      head: () => Promise.reject(new Error('EIO: read failed')),
      put: () => Promise.resolve(),
      getStream: () => Promise.reject(new Error('EIO: read failed')),
      putStream: () => Promise.resolve(),
      delete: () => Promise.resolve(),
      list: () => ({
        [Symbol.asyncIterator]: () => ({ next: () => Promise.resolve({ done: true, value: undefined }) }),
      }),
    };
    const errors: string[] = [];
    const listening = await listenRegistryServer(
      createRegistryServer({ site: failing, logError: (line) => errors.push(line) }),
      0,
    );
    try {
      const response = await fetch(`${listening.url}/index.json`);
      expect(response.status).toBe(500);
      await response.text();
      expect(errors).toEqual(['error serving GET /index.json: EIO: read failed']);
    } finally {
      await listening.close();
    }
  });

  it("writes the cause to plugindex serve's warn (stderr), not to its log (stdout)", async () => {
    // Prepare: a registry whose sidecar for one compressed document is a link to itself (a read fails, ELOOP).
    const dir = await mkdtemp(path.join(tmpdir(), 'plugindex-serve-error-'));
    await initRegistry(dir, { name: 'Failing', url: 'http://127.0.0.1:9' });
    const sidecar = path.join(dir, 'public', '.meta', 'index.json.gz.json');
    await rm(sidecar);
    await symlink(sidecar, sidecar);
    const log: string[] = [];
    const warn: string[] = [];
    const service = await startService({
      dir,
      port: 0,
      watch: false,
      log: (line) => log.push(line),
      warn: (line) => warn.push(line),
    });
    try {
      // Act
      const response = await fetch(`${service.url}/index.json.gz`);
      await response.text();

      // Assess
      expect(response.status).toBe(500);
      expect(warn).toEqual([expect.stringMatching(/^error serving GET \/index\.json\.gz: .*ELOOP/)]);
      expect(log).toEqual([]);
    } finally {
      await service.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('when a download ends early', () => {
  const BIG_KEY = 'plugins/demo/1.0.0/bin/big.bin';
  /** A store with one large artifact, its body from `chunks`. */
  function storeOf(chunks: () => AsyncIterable<Uint8Array>, size: number): Store {
    const info = {
      key: BIG_KEY,
      size,
      etag: '"big"',
      lastModified: new Date(0),
      contentType: 'application/octet-stream',
      cacheControl: CACHE_IMMUTABLE,
    };
    return {
      get: () => Promise.resolve(undefined),
      head: (key) => Promise.resolve(key === BIG_KEY ? info : undefined),
      put: () => Promise.resolve(),
      getStream: (key) =>
        Promise.resolve(key === BIG_KEY ? { ...info, body: chunks(), cancel: () => {} } : undefined),
      putStream: () => Promise.resolve(),
      delete: () => Promise.resolve(),
      list: () => ({
        [Symbol.asyncIterator]: () => ({ next: () => Promise.resolve({ done: true, value: undefined }) }),
      }),
    };
  }

  it('logs no internal error when the client leaves in the middle of one', async () => {
    const MIB = 1024 * 1024;
    const site = storeOf(async function* () {
      for (let i = 0; i < 64; i++) yield patternBytes(MIB);
    }, 64 * MIB);
    const errors: string[] = [];
    const server = createRegistryServer({ site, logError: (line) => errors.push(line) });
    const listening = await listenRegistryServer(server, 0);
    try {
      const url = new URL(listening.url);
      // Three clients that take the first bytes and hang up, as a cancelled download or a scanner does.
      for (let i = 0; i < 3; i++) {
        const socket = net.connect(Number(url.port), url.hostname);
        socket.write(`GET /${BIG_KEY} HTTP/1.1\r\nHost: ${url.host}\r\n\r\n`);
        await new Promise((resolve) => socket.once('data', resolve));
        socket.destroy();
      }
      // The server has seen each leave (its connections are gone, each response given up) before the log is read.
      await expect
        .poll(
          () =>
            new Promise<number>((resolve, reject) =>
              server.getConnections((error, count) => (error ? reject(error) : resolve(count))),
            ),
        )
        .toBe(0);
      await new Promise((resolve) => setTimeout(resolve, 100));

      expect(errors).toEqual([]);
    } finally {
      await listening.close();
    }
  });

  it('still logs the cause when the store fails in the middle of one', async () => {
    const site = storeOf(async function* () {
      yield patternBytes(64 * 1024);
      throw new Error('EIO: read failed');
    }, 1024 * 1024);
    const errors: string[] = [];
    const listening = await listenRegistryServer(
      createRegistryServer({ site, logError: (line) => errors.push(line) }),
      0,
    );
    try {
      // The headers were sent: the connection is cut short, so the client knows the body is not whole.
      await expect(
        fetch(`${listening.url}/${BIG_KEY}`).then((response) => response.arrayBuffer()),
      ).rejects.toThrow();
      await expect.poll(() => errors).toEqual([`error serving GET /${BIG_KEY}: EIO: read failed`]);
    } finally {
      await listening.close();
    }
  });
});

describe('when the published tree holds secret key material (a registry made inside it, a key put there)', () => {
  // A registry made inside another's public/ (before init refused it) had its signing key served to anyone:
  // GET /sub/keys/registry-secret.asc was 200. The server now never sends a registry's folder, a file named
  // as a secret key, or one whose bytes begin as secret key material, whatever its name.
  let siteRoot: string;
  let url: string;
  let stop: () => Promise<void>;
  const warnings: string[] = [];
  let secretArmored: string;
  const REFUSED = [
    '/sub/keys/registry-secret.asc',
    '/sub/plugindex.json',
    '/sub/keys/retired/0123.asc',
    '/sub/public/index.json',
    '/keys/old-secret.asc',
    '/plugins/demo/1.0.0/bin/tool.key',
    '/plugins/demo/1.0.0/bin/tool.gpg',
  ];

  beforeAll(async () => {
    siteRoot = await mkdtemp(path.join(tmpdir(), 'plugindex-serve-secret-'));
    const pair = await testKey('nested-registry');
    secretArmored = pair.secretKey;
    const binary = (await readPrivateKey({ armoredKey: secretArmored })).write();
    const files: Record<string, string | Uint8Array> = {
      'index.json': '{"plugins":[]}',
      'keys/registry-public.asc': pair.publicKey,
      // A registry's folder: its config beside its signing key.
      'sub/plugindex.json': '{"name":"inner"}',
      'sub/keys/registry-secret.asc': secretArmored,
      'sub/keys/retired/0123.asc': 'retired key, named as no secret',
      'sub/public/index.json': '{"plugins":[]}',
      // Named as a secret key, whatever it holds.
      'keys/old-secret.asc': 'not armored at all',
      // Secret key material by its bytes alone: armored (after a blank line), and binary packets.
      'plugins/demo/1.0.0/bin/tool.key': `\n${secretArmored}`,
      'plugins/demo/1.0.0/bin/tool.gpg': binary,
      // Text that only mentions the armor is no key.
      'plugins/demo/1.0.0/README.txt': `how to make a key: it begins ${SECRET_KEY_ARMOR} ...`,
    };
    for (const [key, body] of Object.entries(files)) {
      const file = path.join(siteRoot, 'public', key);
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, body);
    }
    const listening = await listenRegistryServer(
      createRegistryServer({
        site: new FsStore(path.join(siteRoot, 'public')),
        logError: (l) => warnings.push(l),
      }),
      0,
    );
    url = listening.url;
    stop = listening.close;
  });

  afterAll(async () => {
    await stop();
    await rm(siteRoot, { recursive: true, force: true });
  });

  it.each(REFUSED)('answers GET, HEAD and a range of %s 404, sending none of it', async (pathname) => {
    const get = await raw(pathname, 'GET', url);
    const head = await raw(pathname, 'HEAD', url);
    const ranged = await fetch(`${url}${pathname}`, { headers: { range: 'bytes=40-' } });

    expect(get.status).toBe(404);
    expect(JSON.parse(get.body)).toEqual({ error: 'not_found', path: pathname });
    expect(head.status).toBe(404);
    expect(ranged.status).toBe(404);
    expect(await ranged.text()).not.toContain('PGP');
  });

  it('warned once per path refused (each was asked three times above), naming it', async () => {
    for (const key of REFUSED.map((pathname) => pathname.slice(1))) {
      const lines = warnings.filter((line) => line.includes(`/${key} `) || line.endsWith(`/${key}`));
      expect(lines, key).toHaveLength(1);
      expect(lines[0]).toMatch(/^warning: /);
    }
  });

  it('still serves the public key, the rest of the tree, and text that only mentions the armor', async () => {
    for (const pathname of ['/index.json', '/keys/registry-public.asc', '/plugins/demo/1.0.0/README.txt']) {
      const response = await raw(pathname, 'GET', url);
      expect(response.status, pathname).toBe(200);
    }
  });
});
