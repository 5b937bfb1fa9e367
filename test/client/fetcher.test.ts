/**
 * The fetcher against real servers on 127.0.0.1 (no mocks): plain HTTP, HTTPS with a CA the test makes
 * with the openssl CLI, and an HTTP proxy the test runs, which counts what passed through it.
 */
import { Buffer } from 'node:buffer';
import dns from 'node:dns';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http, { type IncomingHttpHeaders, type RequestListener, type ServerResponse } from 'node:http';
import https from 'node:https';
import net, { type AddressInfo, type LookupFunction } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ContentCache } from '../../client/disk/cache.ts';
import {
  createHttpFetcher,
  type Endpoint,
  type Fetcher,
  type HttpFetcherOptions,
  UNLISTED_LIMITS,
} from '../../client/fetcher.ts';
import { resolving } from '../support/resolving.ts';
import { collect, patternBytes } from '../support/streams.ts';
import { makeTestCa, startProxy as startTestProxy, type TestCa, type TestProxy } from '../support/tls.ts';

const MiB = 1024 * 1024;
const SNAPSHOT = '{"generation":1}';
const TOKEN = 'token-that-must-stay-secret';

/** A request as a test server saw it. */
interface Seen {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
}

interface TestServer {
  readonly origin: string;
  readonly seen: Seen[];
}

const cleanups: (() => Promise<void>)[] = [];
const fetchers: Fetcher[] = [];

afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
});

afterAll(async () => {
  await Promise.all(fetchers.map((fetcher) => fetcher.close()));
});

/** A fetcher isolated from this machine's proxy and CA settings, with quick retries. */
function makeFetcher(options: HttpFetcherOptions = {}): Fetcher {
  const fetcher = createHttpFetcher({ env: {}, retryDelayMs: 1, ...options });
  fetchers.push(fetcher);
  return fetcher;
}

/**
 * An endpoint waiting 10 s for each read unless `extra` says otherwise: a test of a timeout gives its own. 2 s
 * (and 1 s) once, which a loaded machine's TLS handshake through a proxy outlasted.
 */
function endpointOf(bases: readonly string[], extra: Partial<Endpoint> = {}): Endpoint {
  return { name: 'acme', bases, timeoutMs: 10_000, ...extra };
}

async function listen(server: net.Server, close: () => void): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return (server.address() as AddressInfo).port;
}

/** An HTTP (or, with `tls`, HTTPS) server recording every request before `handler` answers it. */
async function serve(handler: RequestListener, tls?: { key: string; cert: string }): Promise<TestServer> {
  const seen: Seen[] = [];
  const listener: RequestListener = (request, response) => {
    seen.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers });
    handler(request, response);
  };
  const server = tls ? https.createServer(tls, listener) : http.createServer(listener);
  const port = await listen(server, () => server.closeAllConnections());
  return { origin: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`, seen };
}

/** An origin nothing listens on (a port just released). */
async function refusedOrigin(): Promise<string> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

function send(
  response: ServerResponse,
  status: number,
  body = '',
  headers: http.OutgoingHttpHeaders = {},
): void {
  response.writeHead(status, { 'content-length': Buffer.byteLength(body), ...headers });
  response.end(body);
}

/** A body with no length that never ends, written as fast as the client takes it; `closed` when the client hangs up. */
function endlessBody(): { handler: RequestListener; closed: Promise<void>; written: () => number } {
  let written = 0;
  let hungUp: () => void = () => {};
  const closed = new Promise<void>((resolve) => {
    hungUp = resolve;
  });
  const chunk = Buffer.alloc(16 * 1024, 0x61);
  const handler: RequestListener = (_request, response) => {
    response.writeHead(200, { 'content-type': 'application/octet-stream' });
    response.on('close', hungUp);
    const pump = (): void => {
      while (!response.destroyed && written < 512 * MiB) {
        written += chunk.byteLength;
        if (!response.write(chunk)) {
          response.once('drain', pump);
          return;
        }
      }
    };
    pump();
  };
  return { handler, closed, written: () => written };
}

/** The test proxy, closed after the test. */
async function startProxy(): Promise<TestProxy> {
  const proxy = await startTestProxy();
  cleanups.push(proxy.close);
  return proxy;
}

describe('when a registry serves documents over http', () => {
  it('returns the bytes, the ETag and the URL, with ?v= in the URL and its user agent', async () => {
    const server = await serve((_request, response) => send(response, 200, SNAPSHOT, { etag: '"g1"' }));
    const response = await makeFetcher().document(endpointOf([server.origin]), {
      path: 'snapshot.json',
      maxBytes: UNLISTED_LIMITS.snapshot,
      version: '7',
    });
    expect(response).toMatchObject({ status: 200, etag: '"g1"', url: `${server.origin}/snapshot.json?v=7` });
    expect(response.status === 200 && new TextDecoder().decode(response.bytes)).toBe(SNAPSHOT);
    expect(server.seen.map((seen) => seen.url)).toEqual(['/snapshot.json?v=7']);
    expect(server.seen[0]?.headers['user-agent']).toBe('plugindex-client');
  });

  it('asks past every cache with a random ?v= nonce after the version, and no-cache', async () => {
    const server = await serve((_request, response) => send(response, 200, SNAPSHOT));
    const fetcher = makeFetcher();
    for (const version of ['7', '7', undefined])
      await fetcher.document(endpointOf([server.origin]), {
        path: 'snapshot.json',
        maxBytes: UNLISTED_LIMITS.snapshot,
        pastCaches: true,
        ...(version ? { version } : {}),
      });

    const asked = server.seen.map((seen) => seen.url);
    expect(asked).toEqual([
      expect.stringMatching(/^\/snapshot\.json\?v=7-[0-9a-f]{24}$/),
      expect.stringMatching(/^\/snapshot\.json\?v=7-[0-9a-f]{24}$/),
      expect.stringMatching(/^\/snapshot\.json\?v=[0-9a-f]{24}$/),
    ]);
    expect(asked[0]).not.toBe(asked[1]);
    expect(server.seen.map((seen) => seen.headers['cache-control'])).toEqual([
      'no-cache',
      'no-cache',
      'no-cache',
    ]);
  });

  it('sends If-None-Match and reports 304 when the document has not changed', async () => {
    const server = await serve((request, response) =>
      request.headers['if-none-match'] === '"g1"'
        ? send(response, 304)
        : send(response, 200, SNAPSHOT, { etag: '"g1"' }),
    );
    const response = await makeFetcher().document(endpointOf([server.origin]), {
      path: 'plugins/demo/index.json',
      maxBytes: 1024,
      etag: '"g1"',
    });
    expect(response).toEqual({ status: 304, url: `${server.origin}/plugins/demo/index.json` });
    expect(server.seen[0]?.headers['if-none-match']).toBe('"g1"');
  });

  it('accepts a body of exactly maxBytes, with or without a content-length', async () => {
    const body = 'x'.repeat(100);
    const server = await serve((request, response) => {
      if (request.url === '/declared') return send(response, 200, body);
      response.writeHead(200);
      response.write(body.slice(0, 50));
      response.end(body.slice(50));
    });
    const fetcher = makeFetcher();
    for (const path of ['declared', 'chunked']) {
      const response = await fetcher.document(endpointOf([server.origin]), { path, maxBytes: 100 });
      expect(response.status === 200 && response.bytes.byteLength).toBe(100);
    }
  });

  it('refuses a content-length over the cap before reading the body (RESPONSE_TOO_LARGE)', async () => {
    const server = await serve((_request, response) => send(response, 200, 'x'.repeat(1000)));
    await expect(
      makeFetcher().document(endpointOf([server.origin]), { path: 'index.json', maxBytes: 999 }),
    ).rejects.toMatchObject({
      name: 'ClientError',
      code: 'RESPONSE_TOO_LARGE',
      message: expect.stringMatching(/index\.json.*999 bytes.*declares 1000 bytes/),
    });
  });

  it('cuts off a body without a length that keeps coming, and hangs up (RESPONSE_TOO_LARGE)', async () => {
    const endless = endlessBody();
    const server = await serve(endless.handler);
    await expect(
      makeFetcher().document(endpointOf([server.origin]), { path: 'snapshot.json', maxBytes: 64 * 1024 }),
    ).rejects.toMatchObject({ name: 'ClientError', code: 'RESPONSE_TOO_LARGE' });
    await endless.closed;
    expect(endless.written()).toBeLessThan(32 * MiB);
  });
});

describe('when a registry fails', () => {
  it('retries a 503 and returns the answer of the third attempt', async () => {
    let count = 0;
    const server = await serve((_request, response) =>
      ++count <= 2 ? send(response, 503, 'busy') : send(response, 200, SNAPSHOT),
    );
    const response = await makeFetcher().document(endpointOf([server.origin]), {
      path: 'snapshot.json',
      maxBytes: 1024,
    });
    expect(response.status).toBe(200);
    expect(server.seen).toHaveLength(3);
  });

  it('does not retry a 400, nor try the mirror (FETCH_FAILED)', async () => {
    const registry = await serve((_request, response) => send(response, 400, 'no'));
    const mirror = await serve((_request, response) => send(response, 200, SNAPSHOT));
    await expect(
      makeFetcher().document(endpointOf([registry.origin, mirror.origin]), {
        path: 'snapshot.json',
        maxBytes: 1024,
      }),
    ).rejects.toMatchObject({
      name: 'ClientError',
      code: 'FETCH_FAILED',
      message: expect.stringContaining('HTTP 400'),
    });
    expect(registry.seen).toHaveLength(1);
    expect(mirror.seen).toHaveLength(0);
  });

  it('moves to the mirror when the registry does not answer in time', async () => {
    const silent = await serve(() => {});
    const mirror = await serve((_request, response) => send(response, 200, SNAPSHOT));
    // 2 s, which the mirror's answer has too: 200 ms once, and a loaded machine's answer outlasted it.
    const response = await makeFetcher({ retries: 1 }).document(
      endpointOf([silent.origin, mirror.origin], { timeoutMs: 2_000 }),
      { path: 'snapshot.json', maxBytes: 1024 },
    );
    expect(response.url).toBe(`${mirror.origin}/snapshot.json`);
    expect(silent.seen).toHaveLength(2);
  });

  it('times out a body that stops arriving, and says so (FETCH_FAILED)', async () => {
    const server = await serve((_request, response) => {
      response.writeHead(200, { 'content-length': 100 });
      response.write('x'.repeat(10));
    });
    // 2 s: the head and the first bytes come well within it, however loaded the machine (200 ms once, which a
    // loaded machine's head outlasted, timed out before the bytes).
    const error = makeFetcher({ retries: 0 }).document(endpointOf([server.origin], { timeoutMs: 2_000 }), {
      path: 'snapshot.json',
      maxBytes: 1024,
    });
    await expect(error).rejects.toMatchObject({
      name: 'ClientError',
      code: 'FETCH_FAILED',
      message: expect.stringContaining('timed out after 2 s with 10 bytes received'),
    });
  });

  it('gives up on a body dripped inside each wait (FETCH_FAILED, too slow), and takes the mirror', async () => {
    // A byte every 10 ms: never a wait of 1 s, but 100 bytes a second, under the least of 1 KiB. (A wait of
    // 200 ms once, and a loaded machine's stall of that long timed the read out before it was judged slow.)
    let sent = 0;
    const timers = new Set<ReturnType<typeof setInterval>>();
    const dripping = await serve((_request, response) => {
      response.writeHead(200, { 'content-length': 1_000 });
      const timer = setInterval(() => {
        if (response.destroyed || sent >= 1_000) {
          clearInterval(timer);
          response.end();
          return;
        }
        sent++;
        response.write('x');
      }, 10);
      timers.add(timer);
    });
    try {
      const alone = makeFetcher({ retries: 0 }).document(
        endpointOf([dripping.origin], { timeoutMs: 1_000 }),
        {
          path: 'snapshot.json',
          maxBytes: 1024,
        },
      );
      await expect(alone).rejects.toMatchObject({
        name: 'ClientError',
        code: 'FETCH_FAILED',
        message: expect.stringMatching(
          /too slow: \d+ bytes in \d+(\.\d+)? s of waiting, under the least of 1024 bytes a second/,
        ),
      });
      expect(sent).toBeLessThan(1_000);
      const mirror = await serve((_request, response) => send(response, 200, SNAPSHOT));
      const response = await makeFetcher({ retries: 0 }).document(
        endpointOf([dripping.origin, mirror.origin], { timeoutMs: 1_000 }),
        { path: 'snapshot.json', maxBytes: 1024 },
      );
      expect(response.url).toBe(`${mirror.origin}/snapshot.json`);
    } finally {
      for (const timer of timers) clearInterval(timer);
    }
  });

  it('uses the mirror when the registry refuses the connection', async () => {
    const mirror = await serve((_request, response) => send(response, 200, SNAPSHOT));
    const response = await makeFetcher().document(endpointOf([await refusedOrigin(), mirror.origin]), {
      path: 'snapshot.json',
      maxBytes: 1024,
    });
    expect(response.url).toBe(`${mirror.origin}/snapshot.json`);
  });

  it('uses the mirror on a 404, without retrying the registry', async () => {
    const registry = await serve((_request, response) => send(response, 404));
    const mirror = await serve((_request, response) => send(response, 200, SNAPSHOT));
    const response = await makeFetcher().document(endpointOf([registry.origin, mirror.origin]), {
      path: 'snapshot.json',
      maxBytes: 1024,
    });
    expect(response.url).toBe(`${mirror.origin}/snapshot.json`);
    expect(registry.seen).toHaveLength(1);
  });

  it('reports FETCH_NOT_FOUND when every base answers 404', async () => {
    const registry = await serve((_request, response) => send(response, 404));
    const mirror = await serve((_request, response) => send(response, 404));
    await expect(
      makeFetcher().document(endpointOf([registry.origin, mirror.origin]), {
        path: 'plugins/x/index.json',
        maxBytes: 9,
      }),
    ).rejects.toMatchObject({
      name: 'ClientError',
      code: 'FETCH_NOT_FOUND',
      message: expect.stringContaining(`${mirror.origin}/plugins/x/index.json (HTTP 404)`),
    });
  });

  it('reports FETCH_FAILED naming each URL tried and what happened, without the credentials', async () => {
    const registry = await serve((_request, response) => send(response, 503));
    const refused = await refusedOrigin();
    const request = makeFetcher().document(
      endpointOf([registry.origin, refused], { credentials: { type: 'bearer_token', token: TOKEN } }),
      { path: 'snapshot.json', maxBytes: 1024 },
    );
    await expect(request).rejects.toMatchObject({ name: 'ClientError', code: 'FETCH_FAILED' });
    const message = String(await request.catch((error: Error) => error.message));
    expect(message).toContain(`${registry.origin}/snapshot.json: HTTP 503 (3 attempts)`);
    expect(message).toMatch(new RegExp(`${refused}/snapshot.json: .*ECONNREFUSED`));
    expect(message).not.toContain(TOKEN);
    expect(registry.seen).toHaveLength(3);
  });

  it('refuses a base that is not https:, loopback http: or file: before any request (REGISTRY_URL_INVALID)', async () => {
    const server = await serve((_request, response) => send(response, 200, SNAPSHOT));
    const fetcher = makeFetcher();
    for (const bad of [
      'http://registry.example',
      'ftp://127.0.0.1/x',
      'https://user:pw@registry.example',
      'nope',
    ]) {
      await expect(
        fetcher.document(endpointOf([server.origin, bad]), { path: 'snapshot.json', maxBytes: 1024 }),
      ).rejects.toMatchObject({ name: 'ClientError', code: 'REGISTRY_URL_INVALID' });
    }
    expect(server.seen).toHaveLength(0);
  });
});

describe('when a registry has credentials', () => {
  it('sends them to the origin of the registry and not to its mirror', async () => {
    const registry = await serve((_request, response) => send(response, 404));
    const mirror = await serve((_request, response) => send(response, 200, SNAPSHOT));
    await makeFetcher().document(
      endpointOf([registry.origin, mirror.origin], { credentials: { type: 'bearer_token', token: TOKEN } }),
      { path: 'snapshot.json', maxBytes: 1024 },
    );
    expect(registry.seen[0]?.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(mirror.seen[0]?.headers.authorization).toBeUndefined();
  });

  it('sends an API key in its header and basic credentials encoded', async () => {
    const server = await serve((_request, response) => send(response, 200, SNAPSHOT));
    const fetcher = makeFetcher();
    const request = { path: 'snapshot.json', maxBytes: 1024 };
    await fetcher.document(
      endpointOf([server.origin], { credentials: { type: 'api_key', header: 'X-Api-Key', key: TOKEN } }),
      request,
    );
    await fetcher.document(
      endpointOf([server.origin], { credentials: { type: 'basic_auth', username: 'ann', password: 'pw:1' } }),
      request,
    );
    expect(server.seen[0]?.headers['x-api-key']).toBe(TOKEN);
    expect(server.seen[1]?.headers.authorization).toBe(`Basic ${Buffer.from('ann:pw:1').toString('base64')}`);
  });

  it('refuses credentials no header can carry without quoting them (CLIENT_CONFIG_INVALID)', async () => {
    const server = await serve((_request, response) => send(response, 200, SNAPSHOT));
    const request = makeFetcher().document(
      endpointOf([server.origin], { credentials: { type: 'bearer_token', token: `${TOKEN}\r\nx: y` } }),
      { path: 'snapshot.json', maxBytes: 1024 },
    );
    await expect(request).rejects.toMatchObject({
      name: 'ClientError',
      code: 'CLIENT_CONFIG_INVALID',
      message: expect.not.stringContaining(TOKEN),
    });
    expect(server.seen).toHaveLength(0);
  });

  it('keeps them across a redirect within the origin', async () => {
    const server = await serve((request, response) =>
      request.url === '/snapshot.json'
        ? send(response, 302, '', { location: '/current/snapshot.json' })
        : send(response, 200, SNAPSHOT),
    );
    const response = await makeFetcher().document(
      endpointOf([server.origin], { credentials: { type: 'bearer_token', token: TOKEN } }),
      { path: 'snapshot.json', maxBytes: 1024 },
    );
    expect(response.url).toBe(`${server.origin}/current/snapshot.json`);
    expect(server.seen.map((seen) => seen.headers.authorization)).toEqual([
      `Bearer ${TOKEN}`,
      `Bearer ${TOKEN}`,
    ]);
  });

  it('sends none after a mirror redirects to the registry, to a path the mirror chose', async () => {
    // The registry fails, so the mirror is asked; the mirror aims the client back at the registry.
    let failing = true;
    const registry = await serve((request, response) => {
      if (request.url === '/snapshot.json' && failing) {
        failing = false;
        return send(response, 503);
      }
      return send(response, 200, SNAPSHOT);
    });
    const mirror = await serve((_request, response) =>
      send(response, 302, '', { location: `${registry.origin}/private/report.json` }),
    );

    await makeFetcher({ retries: 0 }).document(
      endpointOf([registry.origin, mirror.origin], { credentials: { type: 'bearer_token', token: TOKEN } }),
      { path: 'snapshot.json', maxBytes: 1024 },
    );

    expect(registry.seen.map((seen) => [seen.url, seen.headers.authorization])).toEqual([
      ['/snapshot.json', `Bearer ${TOKEN}`],
      ['/private/report.json', undefined],
    ]);
    expect(mirror.seen[0]?.headers.authorization).toBeUndefined();
  });

  it('refuses a redirect to another origin, which sees no request (FETCH_CROSS_ORIGIN_REDIRECT)', async () => {
    const other = await serve((_request, response) => send(response, 200, SNAPSHOT));
    const registry = await serve((_request, response) =>
      send(response, 302, '', { location: `${other.origin}/snapshot.json` }),
    );
    const request = makeFetcher().document(
      endpointOf([registry.origin], { credentials: { type: 'bearer_token', token: TOKEN } }),
      { path: 'snapshot.json', maxBytes: 1024 },
    );
    await expect(request).rejects.toMatchObject({ name: 'ClientError', code: 'FETCH_CROSS_ORIGIN_REDIRECT' });
    expect(other.seen).toHaveLength(0);
  });
});

describe('when a registry without credentials redirects', () => {
  it('follows a redirect to another origin', async () => {
    const other = await serve((_request, response) => send(response, 200, SNAPSHOT));
    const registry = await serve((request, response) =>
      send(response, 301, '', { location: `${other.origin}${request.url}` }),
    );
    const response = await makeFetcher().document(endpointOf([registry.origin]), {
      path: 'snapshot.json',
      maxBytes: 1024,
      version: '3',
    });
    expect(response.url).toBe(`${other.origin}/snapshot.json?v=3`);
  });

  it('names every URL it was redirected from, in order, for a 304 too', async () => {
    // Prepare: the registry redirects to B, B to C, which answers (a URL with credentials in it is refused).
    const c = await serve((request, response) =>
      request.headers['if-none-match'] === '"e1"'
        ? send(response, 304)
        : send(response, 200, SNAPSHOT, { etag: '"e1"' }),
    );
    const b = await serve((request, response) =>
      send(response, 302, '', { location: `${c.origin}/c${request.url}` }),
    );
    const registry = await serve((request, response) =>
      send(response, 302, '', { location: `${b.origin}/b${request.url}` }),
    );
    const fetcher = makeFetcher();

    // Act
    const answered = await fetcher.document(endpointOf([registry.origin]), {
      path: 'snapshot.json',
      maxBytes: 1024,
    });
    const unchanged = await fetcher.document(endpointOf([registry.origin]), {
      path: 'snapshot.json',
      maxBytes: 1024,
      etag: '"e1"',
    });

    // Assess
    const hops = [`${registry.origin}/snapshot.json`, `${b.origin}/b/snapshot.json`];
    expect(answered).toMatchObject({
      status: 200,
      url: `${c.origin}/c/b/snapshot.json`,
      redirectedFrom: hops,
    });
    expect(unchanged).toMatchObject({
      status: 304,
      url: `${c.origin}/c/b/snapshot.json`,
      redirectedFrom: hops,
    });
    expect(c.seen).toHaveLength(2);
  });

  it('names none when it answers itself', async () => {
    const registry = await serve((_request, response) => send(response, 200, SNAPSHOT));
    const response = await makeFetcher().document(endpointOf([registry.origin]), {
      path: 'snapshot.json',
      maxBytes: 1024,
    });
    expect(response.url).toBe(`${registry.origin}/snapshot.json`);
    expect(response.redirectedFrom).toBeUndefined();
  });

  it('names the URLs it was redirected to with their query values redacted: a signed storage URL holds a secret there', async () => {
    // Prepare: the registry redirects to a presigned URL on another origin, which redirects to a scheme refused.
    const storage = await serve((_request, response) =>
      send(response, 302, '', { location: 'ftp://storage.example/x?token=TOKSECRET&flag' }),
    );
    const registry = await serve((request, response) =>
      send(response, 302, '', {
        location: `${storage.origin}/bucket${request.url}?X-Amz-Credential=AKIDSECRET&X-Amz-Signature=SIGSECRET#FRAGSECRET`,
      }),
    );
    // Act
    const request = makeFetcher().document(endpointOf([registry.origin]), {
      path: 'snapshot.json',
      maxBytes: 1024,
    });
    // Assess
    await expect(request).rejects.toMatchObject({ name: 'ClientError', code: 'FETCH_FAILED' });
    const message = String(await request.catch((error: Error) => error.message));
    expect(message).toContain(
      `redirected to ${storage.origin}/bucket/snapshot.json?X-Amz-Credential=…&X-Amz-Signature=…#…: HTTP 302 to ftp://storage.example/x?token=…&…, refused`,
    );
    expect(message).not.toMatch(/SECRET/);
  });

  it('gives up after five redirects (FETCH_FAILED)', async () => {
    const server = await serve((request, response) =>
      send(response, 302, '', { location: `${request.url}x` }),
    );
    await expect(
      makeFetcher().document(endpointOf([server.origin]), { path: 'r', maxBytes: 1024 }),
    ).rejects.toMatchObject({
      name: 'ClientError',
      code: 'FETCH_FAILED',
      message: expect.stringContaining('more than 5 redirects'),
    });
    expect(server.seen).toHaveLength(6);
  });
});

describe('when what answered was a presigned URL a redirect led to', () => {
  const PRESIGNED = '?X-Amz-Credential=AKIDSECRET&X-Amz-Signature=SIGSECRET#FRAGSECRET';
  const WRONG = '0'.repeat(64);

  it('names it in an artifact mismatch with its query values hidden: a download, then its bytes refused by the cache', async () => {
    // Prepare: the registry redirects the artifact to a signed storage URL, which serves other bytes.
    const server = await serve((request, response) =>
      request.url?.startsWith('/store/')
        ? send(response, 200, 'not the artifact')
        : send(response, 302, '', { location: `/store${request.url}${PRESIGNED}` }),
    );
    const dir = mkdtempSync(join(tmpdir(), 'plugindex-presigned-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    // Act
    const download = await makeFetcher().download(endpointOf([server.origin]), {
      url: `${server.origin}/plugins/demo/1.0.0/demo.tgz`,
      maxBytes: 1024,
    });
    const written = new ContentCache(dir).writeBlob({
      sha256: WRONG,
      size: 16,
      url: download.url,
      body: download.body,
    });
    // Assess
    await expect(written).rejects.toMatchObject({ name: 'TrustError', code: 'ARTIFACT_MISMATCH' });
    const message = String(await written.catch((error: Error) => error.message));
    expect(message).toContain(
      `${server.origin}/store/plugins/demo/1.0.0/demo.tgz?X-Amz-Credential=…&X-Amz-Signature=…#…: sha256`,
    );
    expect(message).not.toMatch(/SECRET/);
  });

  it('names it in an OCI manifest that does not match its digest with its query values hidden', async () => {
    // Prepare: the OCI registry redirects the manifest to a signed storage URL, which serves other bytes.
    const server = await serve((request, response) =>
      request.url?.startsWith('/store/')
        ? send(response, 200, '{"schemaVersion":2}', {
            'content-type': 'application/vnd.oci.image.manifest.v1+json',
          })
        : send(response, 307, '', { location: `/store${request.url}${PRESIGNED}` }),
    );
    const host = new URL(server.origin).host;
    // Act
    const fetched = makeFetcher().ociManifest({ reference: `${host}/acme/demo@sha256:${WRONG}` });
    // Assess
    await expect(fetched).rejects.toMatchObject({ name: 'TrustError', code: 'DOCUMENT_MISMATCH' });
    const message = String(await fetched.catch((error: Error) => error.message));
    expect(message).toContain('?X-Amz-Credential=…&X-Amz-Signature=…#…');
    expect(message).not.toMatch(/SECRET/);
  });
});

describe('when artifacts are downloaded', () => {
  it('streams a 5 MiB body in several chunks, with its size', async () => {
    const bytes = patternBytes(5 * MiB);
    const server = await serve((_request, response) => {
      response.writeHead(200, { 'content-length': bytes.byteLength });
      response.end(bytes);
    });
    const download = await makeFetcher().download(endpointOf([server.origin]), {
      url: `${server.origin}/plugins/demo/1.0.0/demo.tgz`,
      maxBytes: 5 * MiB,
    });
    expect(download.size).toBe(5 * MiB);
    const chunks: Uint8Array[] = [];
    for await (const chunk of download.body) chunks.push(chunk);
    expect(chunks.length).toBeGreaterThan(1);
    expect(Buffer.concat(chunks).equals(bytes)).toBe(true);
    expect(server.seen[0]?.headers['accept-encoding']).toBe('identity');
  });

  it('stops an oversized stream early: RESPONSE_TOO_LARGE, and the server sees the client hang up', async () => {
    const endless = endlessBody();
    const server = await serve(endless.handler);
    const download = await makeFetcher().download(endpointOf([server.origin]), {
      url: `${server.origin}/big.tgz`,
      maxBytes: MiB,
    });
    await expect(collect(download.body)).rejects.toMatchObject({
      name: 'ClientError',
      code: 'RESPONSE_TOO_LARGE',
    });
    await endless.closed;
    expect(endless.written()).toBeLessThan(64 * MiB);
  });

  it('refuses a content-length over the cap before reading (RESPONSE_TOO_LARGE)', async () => {
    const server = await serve((_request, response) => send(response, 200, 'x'.repeat(2000)));
    await expect(
      makeFetcher().download(endpointOf([server.origin]), { url: `${server.origin}/a.tgz`, maxBytes: 1000 }),
    ).rejects.toMatchObject({ name: 'ClientError', code: 'RESPONSE_TOO_LARGE' });
  });

  it('tries the same path under the mirror when the URL lies under the registry', async () => {
    const registry = await serve((_request, response) => send(response, 503));
    const mirror = await serve((_request, response) => send(response, 200, 'artifact'));
    const download = await makeFetcher({ retries: 0 }).download(
      endpointOf([registry.origin, mirror.origin]),
      {
        url: `${registry.origin}/plugins/demo/1.0.0/demo.tgz`,
        maxBytes: 100,
      },
    );
    expect(download.url).toBe(`${mirror.origin}/plugins/demo/1.0.0/demo.tgz`);
    expect(new TextDecoder().decode(await collect(download.body))).toBe('artifact');
  });

  it('refuses an artifact URL over plain http: to another host (REGISTRY_URL_INVALID)', async () => {
    const server = await serve((_request, response) => send(response, 200, 'artifact'));
    await expect(
      makeFetcher().download(endpointOf([server.origin]), { url: 'http://cdn.example/a.tgz', maxBytes: 100 }),
    ).rejects.toMatchObject({ name: 'ClientError', code: 'REGISTRY_URL_INVALID' });
  });
});

describe('when a registry elsewhere names an artifact on this machine', () => {
  it('refuses the URL before any request reaches this machine’s service (REGISTRY_URL_INVALID)', async () => {
    // A publisher-hosted artifact of a registry on another host (its documents signed, its bytes still to
    // be checked) pointing at a loopback port: a service of the user's would be sent a GET of its choosing.
    const local = await serve((_request, response) => send(response, 200, 'artifact'));
    for (const url of [
      `${local.origin}/admin/shutdown`,
      `${local.origin.replace('127.0.0.1', 'localhost')}/x`,
    ]) {
      await expect(
        makeFetcher().download(endpointOf(['https://plugins.example']), { url, maxBytes: 100 }),
      ).rejects.toMatchObject({ name: 'ClientError', code: 'REGISTRY_URL_INVALID' });
    }
    expect(local.seen).toEqual([]);
  });

  it('refuses the other names that reach this machine (the unspecified address, mapped loopback, localhost.)', async () => {
    const local = await serve((_request, response) => send(response, 200, 'artifact'));
    const port = new URL(local.origin).port;
    // Over https: (http: to a host not named loopback is refused as cleartext anyway).
    for (const host of [
      '[::1]',
      '0.0.0.0',
      '[::]',
      '[::ffff:127.0.0.1]',
      '[::ffff:0.0.0.0]',
      'localhost.',
      'a.localhost',
      // As the URL parser writes them: 0.0.0.0, 127.0.0.1 (hex, one decimal number), localhost, ::ffff:7f00:1.
      '0',
      '0x7f.1',
      '2130706433',
      '127.0.0.1.',
      'LOCALHOST.',
      '[0:0:0:0:0:ffff:7f00:1]',
    ])
      await expect(
        makeFetcher().download(endpointOf(['https://plugins.example']), {
          url: `https://${host}:${port}/admin/shutdown`,
          maxBytes: 100,
        }),
        host,
      ).rejects.toMatchObject({
        name: 'ClientError',
        code: 'REGISTRY_URL_INVALID',
        message: expect.stringContaining(
          "a URL on this machine's loopback from a registry that is not on this machine",
        ),
      });
    expect(local.seen).toEqual([]);
  });

  it('still downloads one named by a registry on this machine', async () => {
    const local = await serve((_request, response) => send(response, 200, 'artifact'));
    const other = await serve((_request, response) => send(response, 200, 'artifact'));
    const download = await makeFetcher().download(endpointOf([other.origin]), {
      url: `${local.origin}/a.tgz`,
      maxBytes: 100,
    });
    expect(new TextDecoder().decode(await collect(download.body))).toBe('artifact');
  });
});

/** An https server listening on every address of this machine ([::], dual stack), counting the connections it took. */
async function serveEverywhere(
  handler: RequestListener,
  tls: { key: string; cert: string },
): Promise<{ readonly port: number; readonly seen: Seen[]; connections(): number }> {
  const seen: Seen[] = [];
  let connections = 0;
  const server = https.createServer(tls, (request, response) => {
    seen.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers });
    handler(request, response);
  });
  server.on('connection', () => {
    connections++;
  });
  await new Promise<void>((resolve) => server.listen(0, '::', resolve));
  cleanups.push(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { port: (server.address() as AddressInfo).port, seen, connections: () => connections };
}

describe('when a name a registry elsewhere chose resolves to this machine (the lookup seam standing in for DNS)', () => {
  let ca: TestCa;
  beforeAll(() => {
    ca = makeTestCa('rebind', { names: ['plugins.example', 'rebind.example'] });
  });
  afterAll(() => ca.remove());

  // Every form of an address that reaches this machine's services: loopback (all of 127/8, ::1), an
  // IPv4-mapped loopback address, and the unspecified address, which Linux and macOS connect to this machine.
  const THIS_MACHINE = ['127.0.0.1', '127.5.6.7', '::1', '::ffff:127.0.0.1', '0.0.0.0'];
  const ARTIFACT_REFUSED = "a URL on this machine's loopback from a registry that is not on this machine";

  it('refuses an artifact URL whose host resolves there, before connecting (REGISTRY_URL_INVALID)', async () => {
    const local = await serveEverywhere((_request, response) => send(response, 200, 'artifact'), ca.tls);
    for (const address of THIS_MACHINE) {
      const fetcher = makeFetcher({ lookup: resolving({ 'rebind.example': address }) });
      await expect(
        fetcher.download(endpointOf(['https://plugins.example'], { ca: ca.caPem }), {
          url: `https://rebind.example:${local.port}/admin/shutdown`,
          maxBytes: 100,
        }),
        address,
      ).rejects.toMatchObject({
        name: 'ClientError',
        code: 'REGISTRY_URL_INVALID',
        message: expect.stringContaining(`${ARTIFACT_REFUSED} (rebind.example resolved to ${address})`),
      });
    }
    expect(local.connections()).toBe(0);
  });

  it('refuses an address literal on this machine that the rule by name does not know (REGISTRY_URL_INVALID)', async () => {
    // An IPv4-mapped 0.1.2.3 (in 0.0.0.0/8): never looked up, so the check is on the literal itself.
    await expect(
      makeFetcher({ retries: 0 }).download(endpointOf(['https://plugins.example']), {
        url: 'https://[::ffff:0.1.2.3]:1/a.tgz',
        maxBytes: 100,
      }),
    ).rejects.toMatchObject({
      name: 'ClientError',
      code: 'REGISTRY_URL_INVALID',
      message: expect.stringContaining(`${ARTIFACT_REFUSED} (::ffff:1:203 is an address of this machine)`),
    });
  });

  it('refuses a name whose answer holds an address there after another one (all: true, as Node asks to try each)', async () => {
    const local = await serveEverywhere((_request, response) => send(response, 200, 'artifact'), ca.tls);
    // 2001:db8::/32 is for documentation: never this machine, and not where a connection could go.
    const answers = [
      { address: '2001:db8::1', family: 6 },
      { address: '127.0.0.1', family: 4 },
    ];
    const lookup: LookupFunction = (hostname, options, callback) => {
      if (hostname !== 'rebind.example') dns.lookup(hostname, options, callback);
      else if (options.all) callback(null, answers);
      else callback(null, '2001:db8::1', 6);
    };
    await expect(
      makeFetcher({ retries: 0, lookup }).download(
        endpointOf(['https://plugins.example'], { ca: ca.caPem }),
        {
          url: `https://rebind.example:${local.port}/admin/shutdown`,
          maxBytes: 100,
        },
      ),
    ).rejects.toMatchObject({
      name: 'ClientError',
      code: 'REGISTRY_URL_INVALID',
      message: expect.stringContaining(`${ARTIFACT_REFUSED} (rebind.example resolved to 127.0.0.1)`),
    });
    expect(local.connections()).toBe(0);
  });

  it('still connects there for a registry on this machine, and for the registry the user configured there', async () => {
    const local = await serveEverywhere((_request, response) => send(response, 200, 'artifact'), ca.tls);
    const fetcher = makeFetcher({ lookup: resolving({ 'rebind.example': '127.0.0.1' }) });
    const url = `https://rebind.example:${local.port}/a.tgz`;
    // Named by a registry on this machine (a local `plugindex serve` beside a local artifact server).
    const named = await fetcher.download(endpointOf(['http://127.0.0.1:9'], { ca: ca.caPem }), {
      url,
      maxBytes: 100,
    });
    expect(new TextDecoder().decode(await collect(named.body))).toBe('artifact');
    // The registry itself, as the user configured it (a name their /etc/hosts puts on this machine).
    const own = endpointOf([`https://rebind.example:${local.port}`], { ca: ca.caPem });
    expect((await fetcher.document(own, { path: 'snapshot.json', maxBytes: 100 })).status).toBe(200);
    expect(
      new TextDecoder().decode(await collect((await fetcher.download(own, { url, maxBytes: 100 })).body)),
    ).toBe('artifact');
    expect(local.seen.map((seen) => seen.url)).toEqual(['/a.tgz', '/snapshot.json', '/a.tgz']);
  });

  it('refuses a redirect from the registry to another host that resolves there, which sees no connection (FETCH_FAILED)', async () => {
    const target = await serveEverywhere((_request, response) => send(response, 200, 'artifact'), ca.tls);
    const registry = await serveEverywhere(
      (request, response) =>
        request.url === '/moved'
          ? send(response, 302, '', { location: `https://rebind.example:${target.port}/admin/shutdown` })
          : send(response, 200, 'artifact'),
      ca.tls,
    );
    for (const address of THIS_MACHINE) {
      const fetcher = makeFetcher({
        retries: 0,
        lookup: resolving({ 'plugins.example': '127.0.0.1', 'rebind.example': address }),
      });
      const endpoint = endpointOf([`https://plugins.example:${registry.port}`], { ca: ca.caPem });
      await expect(
        fetcher.document(endpoint, { path: 'moved', maxBytes: 100 }),
        address,
      ).rejects.toMatchObject({
        name: 'ClientError',
        code: 'FETCH_FAILED',
        message: expect.stringContaining(
          `a redirect from another host to this machine's loopback (rebind.example resolved to ${address})`,
        ),
      });
    }
    expect(target.connections()).toBe(0);
    expect(registry.seen).toHaveLength(THIS_MACHINE.length);
  });

  it('refuses a redirect from it to a name of this machine, by name (FETCH_FAILED)', async () => {
    const target = await serveEverywhere((_request, response) => send(response, 200, 'artifact'), ca.tls);
    const hosts = ['localhost', '[::1]', '[::ffff:127.0.0.1]', '0.0.0.0', '[::]'];
    let to = '';
    const registry = await serveEverywhere(
      (_request, response) =>
        send(response, 302, '', { location: `https://${to}:${target.port}/admin/shutdown` }),
      ca.tls,
    );
    const fetcher = makeFetcher({ retries: 0, lookup: resolving({ 'plugins.example': '127.0.0.1' }) });
    const endpoint = endpointOf([`https://plugins.example:${registry.port}`], { ca: ca.caPem });
    for (const host of hosts) {
      to = host;
      await expect(fetcher.document(endpoint, { path: 'moved', maxBytes: 100 }), host).rejects.toMatchObject({
        name: 'ClientError',
        code: 'FETCH_FAILED',
        message: expect.stringContaining(`refused: a redirect from another host to this machine's loopback`),
      });
    }
    expect(target.connections()).toBe(0);
    expect(registry.seen).toHaveLength(hosts.length);
  });
});

describe('when a URL a registry elsewhere chose is link-local (a cloud VM’s metadata service)', () => {
  let ca: TestCa;
  beforeAll(() => {
    ca = makeTestCa('link-local', {
      // The private addresses too: what the rule lets by is read, through a proxy that takes it here.
      names: [
        ...['plugins.example', 'meta.example', '169.254.169.254', '169.254.10.10', 'fe80::1'],
        ...['10.1.2.3', '172.16.0.1', '172.31.255.254', '192.168.1.1', '::ffff:10.1.2.3'],
        ...['64:ff9b::7f00:1', '64:ff9b::a9fe:a9fe', '64:ff9b::'],
      ],
    });
  });
  afterAll(() => ca.remove());

  const V4 = '169.254.0.0/16';
  /** How the refusal names an address literal in a link-local range. */
  const literalIn = (address: string, range: string) =>
    `from a registry that is not on this machine (${address} is in the link-local range ${range})`;

  /** A proxy taking every tunnel to `port` here: through it only the rule by name holds, so what that lets by reaches the server. */
  async function proxyTo(port: number): Promise<TestProxy> {
    const proxy = await startTestProxy({ route: () => `127.0.0.1:${port}` });
    cleanups.push(proxy.close);
    return proxy;
  }

  it('refuses an artifact URL naming one, in every form the URL parser writes as one (REGISTRY_URL_INVALID)', async () => {
    const server = await serve((_request, response) => send(response, 200, 'role credentials'), ca.tls);
    const proxy = await proxyTo(Number(new URL(server.origin).port));
    const fetcher = makeFetcher({ retries: 0, env: { HTTPS_PROXY: proxy.url } });
    const endpoint = endpointOf(['https://plugins.example'], { ca: ca.caPem });
    for (const [url, address, range] of [
      ['http://169.254.169.254/latest/meta-data/iam/security-credentials/', '169.254.169.254', V4],
      ['https://169.254.169.254/latest/meta-data/', '169.254.169.254', V4],
      ['https://2852039166/latest/meta-data/', '169.254.169.254', V4],
      ['https://0xa9.254.169.254/latest/meta-data/', '169.254.169.254', V4],
      ['https://0251.0376.0251.0376/latest/meta-data/', '169.254.169.254', V4],
      ['https://169.254.43518/latest/meta-data/', '169.254.169.254', V4],
      ['https://169.254.0.1./', '169.254.0.1', V4],
      ['https://[::ffff:169.254.169.254]/latest/meta-data/', '::ffff:a9fe:a9fe', V4],
      ['https://[fe80::1]/', 'fe80::1', 'fe80::/10'],
      ['https://[FEBF:0::1]:8443/', 'febf::1', 'fe80::/10'],
    ] as const)
      await expect(fetcher.download(endpoint, { url, maxBytes: 100 }), url).rejects.toMatchObject({
        name: 'ClientError',
        code: 'REGISTRY_URL_INVALID',
        message: expect.stringContaining(literalIn(address, range)),
      });
    expect(proxy.tunnels).toEqual([]);
    expect(server.seen).toEqual([]);
  });

  it('still downloads from a private address (10/8, 172.16/12, 192.168/16), where a corporate mirror hosts artifacts', async () => {
    const server = await serve((_request, response) => send(response, 200, 'artifact'), ca.tls);
    const proxy = await proxyTo(Number(new URL(server.origin).port));
    const fetcher = makeFetcher({ retries: 0, env: { HTTPS_PROXY: proxy.url } });
    const endpoint = endpointOf(['https://plugins.example'], { ca: ca.caPem });
    const hosts = ['10.1.2.3', '172.16.0.1', '172.31.255.254', '192.168.1.1', '[::ffff:10.1.2.3]'];
    for (const host of hosts) {
      const download = await fetcher.download(endpoint, { url: `https://${host}/a.tgz`, maxBytes: 100 });
      expect(new TextDecoder().decode(await collect(download.body)), host).toBe('artifact');
    }
    expect(proxy.tunnels).toEqual([
      '10.1.2.3:443',
      '172.16.0.1:443',
      '172.31.255.254:443',
      '192.168.1.1:443',
      '[::ffff:a01:203]:443',
    ]);
  });

  it('refuses one whose name resolves there, before connecting (REGISTRY_URL_INVALID)', async () => {
    for (const [address, range] of [
      ['169.254.169.254', V4],
      ['::ffff:169.254.169.254', V4],
      ['fe80::1', 'fe80::/10'],
    ] as const) {
      const fetcher = makeFetcher({ retries: 0, lookup: resolving({ 'meta.example': address }) });
      await expect(
        fetcher.download(endpointOf(['https://plugins.example'], { ca: ca.caPem }), {
          url: 'https://meta.example/latest/meta-data/',
          maxBytes: 100,
        }),
        address,
      ).rejects.toMatchObject({
        name: 'ClientError',
        code: 'REGISTRY_URL_INVALID',
        message: expect.stringMatching(
          new RegExp(
            `a URL on the link-local range ${range.replace(/\./g, '\\.')} .* \\(meta\\.example resolved to ${address.replace(/\./g, '\\.')}\\)`,
          ),
        ),
      });
    }
  });

  it('refuses a redirect from the registry to one, by name and by address (FETCH_FAILED)', async () => {
    let to = '';
    const registry = await serve((_request, response) => send(response, 302, '', { location: to }), ca.tls);
    const fetcher = makeFetcher({
      retries: 0,
      lookup: resolving({ 'plugins.example': '127.0.0.1', 'meta.example': '169.254.169.254' }),
    });
    const endpoint = endpointOf([`https://plugins.example:${new URL(registry.origin).port}`], {
      ca: ca.caPem,
    });
    for (const [location, detail] of [
      [
        'https://169.254.169.254/latest/meta-data/',
        '169.254.169.254 is in the link-local range 169.254.0.0/16',
      ],
      ['https://meta.example/latest/meta-data/', 'meta.example resolved to 169.254.169.254'],
    ] as const) {
      to = location;
      await expect(
        fetcher.document(endpoint, { path: 'moved', maxBytes: 100 }),
        location,
      ).rejects.toMatchObject({
        name: 'ClientError',
        code: 'FETCH_FAILED',
        message: expect.stringMatching(
          new RegExp(
            `refused: a redirect from another host to the link-local range 169\\.254\\.0\\.0/16 .*\\(${detail.replace(/\./g, '\\.')}\\)`,
          ),
        ),
      });
    }
  });

  it('refuses the NAT64 forms (64:ff9b::/96) of loopback, unspecified and link-local addresses, named or resolved (REGISTRY_URL_INVALID)', async () => {
    // A NAT64 gateway connects to the IPv4 address the prefix embeds: from a network with one, a registry
    // elsewhere would reach 127.0.0.1 or 169.254.169.254 of the gateway's side by these names.
    const server = await serve((_request, response) => send(response, 200, 'role credentials'), ca.tls);
    const proxy = await proxyTo(Number(new URL(server.origin).port));
    const endpoint = endpointOf(['https://plugins.example'], { ca: ca.caPem });
    const forms = [
      ['64:ff9b::7f00:1', 'a NAT64 form (64:ff9b::/96) of a loopback or unspecified address'],
      ['64:ff9b::', 'a NAT64 form (64:ff9b::/96) of a loopback or unspecified address'],
      [
        '64:ff9b::a9fe:a9fe',
        'a NAT64 form (64:ff9b::/96) of an address in the link-local range 169.254.0.0/16',
      ],
    ] as const;
    for (const [address, member] of forms) {
      await expect(
        makeFetcher({ retries: 0, env: { HTTPS_PROXY: proxy.url } }).download(endpoint, {
          url: `https://[${address}]/latest/meta-data/`,
          maxBytes: 100,
        }),
        address,
      ).rejects.toMatchObject({
        name: 'ClientError',
        code: 'REGISTRY_URL_INVALID',
        message: expect.stringContaining(`(${address} is ${member})`),
      });
      await expect(
        makeFetcher({ retries: 0, lookup: resolving({ 'nat64.example': address }) }).download(endpoint, {
          url: 'https://nat64.example/latest/meta-data/',
          maxBytes: 100,
        }),
        address,
      ).rejects.toMatchObject({
        name: 'ClientError',
        code: 'REGISTRY_URL_INVALID',
        message: expect.stringContaining(`(nat64.example resolved to ${address})`),
      });
    }
    expect(proxy.tunnels).toEqual([]);
    expect(server.seen).toEqual([]);
  });

  it('still reads a registry the user configured on one, and what it names and redirects to on its own origin', async () => {
    const server = await serve(
      (request, response) =>
        request.url === '/moved'
          ? send(response, 302, '', { location: 'https://169.254.10.10/snapshot.json' })
          : send(response, 200, 'artifact'),
      ca.tls,
    );
    const proxy = await proxyTo(Number(new URL(server.origin).port));
    const fetcher = makeFetcher({ retries: 0, env: { HTTPS_PROXY: proxy.url } });
    const own = endpointOf(['https://169.254.10.10'], { ca: ca.caPem });
    expect((await fetcher.document(own, { path: 'moved', maxBytes: 100 })).status).toBe(200);
    const download = await fetcher.download(own, { url: 'https://169.254.10.10/a.tgz', maxBytes: 100 });
    expect(new TextDecoder().decode(await collect(download.body))).toBe('artifact');
    expect(server.seen.map((seen) => seen.url)).toEqual(['/moved', '/snapshot.json', '/a.tgz']);
  });
});

describe('when a registry is a folder (file: base)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'plugindex-fetcher-site-'));
    writeFileSync(join(dir, 'snapshot.json'), SNAPSHOT);
    writeFileSync(join(dir, 'demo.tgz'), patternBytes(200 * 1024));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads a document from the file, without ?v=', async () => {
    const base = pathToFileURL(dir).href;
    const response = await makeFetcher().document(endpointOf([base]), {
      path: 'snapshot.json',
      maxBytes: 1024,
      version: '9',
    });
    expect(response).toMatchObject({ status: 200, url: `${base}/snapshot.json` });
    expect(response.status === 200 && new TextDecoder().decode(response.bytes)).toBe(SNAPSHOT);
  });

  it('treats a missing file as a 404: the mirror is tried, and FETCH_NOT_FOUND when none has it', async () => {
    const base = pathToFileURL(dir).href;
    const mirror = await serve((_request, response) => send(response, 200, SNAPSHOT));
    const fetcher = makeFetcher();
    const response = await fetcher.document(endpointOf([base, mirror.origin]), {
      path: 'index.json',
      maxBytes: 1024,
    });
    expect(response.url).toBe(`${mirror.origin}/index.json`);
    await expect(
      fetcher.document(endpointOf([base]), { path: 'index.json', maxBytes: 1024 }),
    ).rejects.toMatchObject({
      name: 'ClientError',
      code: 'FETCH_NOT_FOUND',
    });
  });

  it('caps a file like a response (RESPONSE_TOO_LARGE)', async () => {
    await expect(
      makeFetcher().document(endpointOf([pathToFileURL(dir).href]), { path: 'snapshot.json', maxBytes: 5 }),
    ).rejects.toMatchObject({ name: 'ClientError', code: 'RESPONSE_TOO_LARGE' });
  });

  it('downloads a file: artifact in chunks, with its size', async () => {
    const base = pathToFileURL(dir).href;
    const download = await makeFetcher().download(endpointOf([base]), {
      url: `${base}/demo.tgz`,
      maxBytes: MiB,
    });
    expect(download.size).toBe(200 * 1024);
    expect(Buffer.from(await collect(download.body)).equals(patternBytes(200 * 1024))).toBe(true);
  });
});

describe('when a registry is served over https with a private CA', () => {
  let ca: TestCa;
  let caPem: string;
  let tls: { key: string; cert: string };

  beforeAll(() => {
    ca = makeTestCa('fetcher');
    ({ caPem, tls } = ca);
  });
  afterAll(() => ca.remove());

  const request = { path: 'snapshot.json', maxBytes: 1024 };
  const answer: RequestListener = (_request, response) => send(response, 200, SNAPSHOT);

  it('fails without the CA, with a hint naming --ca FILE and NODE_EXTRA_CA_CERTS (FETCH_FAILED)', async () => {
    const server = await serve(answer, tls);
    const failure = makeFetcher().document(endpointOf([server.origin]), request);
    await expect(failure).rejects.toMatchObject({
      name: 'ClientError',
      code: 'FETCH_FAILED',
      message: expect.stringMatching(/--ca FILE.*NODE_EXTRA_CA_CERTS/),
      cause: expect.anything(),
    });
    expect(String(await failure.catch((error: Error) => error.message))).not.toContain('proxy');
  });

  it('works with the CA given to the endpoint', async () => {
    const server = await serve(answer, tls);
    const response = await makeFetcher().document(endpointOf([server.origin], { ca: caPem }), request);
    expect(response).toMatchObject({ status: 200, url: `${server.origin}/snapshot.json` });
  });

  it('works with the CA named by NODE_EXTRA_CA_CERTS in the environment given', async () => {
    const server = await serve(answer, tls);
    const fetcher = makeFetcher({ env: { NODE_EXTRA_CA_CERTS: ca.caFile } });
    expect((await fetcher.document(endpointOf([server.origin]), request)).status).toBe(200);
  });

  it('names NODE_EXTRA_CA_CERTS when the file it names cannot be read (FETCH_FAILED)', async () => {
    const server = await serve(answer, tls);
    const fetcher = makeFetcher({ env: { NODE_EXTRA_CA_CERTS: join(dirname(ca.caFile), 'absent.pem') } });
    await expect(fetcher.document(endpointOf([server.origin]), request)).rejects.toMatchObject({
      name: 'ClientError',
      code: 'FETCH_FAILED',
      message: expect.stringContaining('NODE_EXTRA_CA_CERTS names'),
    });
  });

  describe('through a proxy', () => {
    it('downloads over https through the proxy (CONNECT), trusting the CA', async () => {
      const proxy = await startProxy();
      const server = await serve((_request, response) => send(response, 200, 'artifact'), tls);
      const fetcher = makeFetcher({ env: { HTTPS_PROXY: proxy.url } });
      const download = await fetcher.download(endpointOf([server.origin], { ca: caPem }), {
        url: `${server.origin}/a.tgz`,
        maxBytes: 100,
      });
      expect(new TextDecoder().decode(await collect(download.body))).toBe('artifact');
      expect(proxy.tunnels).toEqual([server.origin.replace('https://', '')]);
    });

    it('names the proxy in the hint when the certificate is not trusted', async () => {
      const proxy = await startProxy();
      const server = await serve(answer, tls);
      const fetcher = makeFetcher({ env: { HTTPS_PROXY: proxy.url } });
      await expect(fetcher.document(endpointOf([server.origin]), request)).rejects.toMatchObject({
        name: 'ClientError',
        code: 'FETCH_FAILED',
        message: expect.stringContaining(`through the proxy ${proxy.url}`),
      });
      expect(proxy.tunnels).toHaveLength(1);
    });

    it('bypasses the proxy for a host NO_PROXY names', async () => {
      const proxy = await startProxy();
      const server = await serve(answer, tls);
      const fetcher = makeFetcher({ env: { HTTPS_PROXY: proxy.url, NO_PROXY: '127.0.0.1' } });
      expect((await fetcher.document(endpointOf([server.origin], { ca: caPem }), request)).status).toBe(200);
      expect(proxy.tunnels).toHaveLength(0);
      expect(server.seen).toHaveLength(1);
    });

    it('never sends a loopback http: request, in clear with its credentials, to the proxy (http_proxy, HTTP_PROXY)', async () => {
      // http: is allowed only because nothing leaves the machine: through a proxy elsewhere, the request and
      // the registry's credentials would cross the network unencrypted (and the proxy's own loopback is not ours).
      const proxy = await startProxy();
      const server = await serve(answer);
      const credentials = { type: 'bearer_token', token: TOKEN } as const;
      for (const env of [{ http_proxy: proxy.url }, { HTTP_PROXY: proxy.url, HTTPS_PROXY: proxy.url }]) {
        const response = await makeFetcher({ env }).document(endpointOf([server.origin], { credentials }), {
          ...request,
          version: '2',
        });
        expect(response.status).toBe(200);
      }
      expect(proxy.forwarded).toEqual([]);
      expect(server.seen.map((seen) => [seen.url, seen.headers.authorization])).toEqual([
        ['/snapshot.json?v=2', `Bearer ${TOKEN}`],
        ['/snapshot.json?v=2', `Bearer ${TOKEN}`],
      ]);
    });
  });
});

describe('when a manifest is read by where a lock found it', () => {
  it('is capped at the manifest reader\u2019s own limit', async () => {
    const { MAX_MANIFEST_BYTES } = await import('../../index-builder/manifest/parse.ts');
    expect(UNLISTED_LIMITS.manifest).toBe(MAX_MANIFEST_BYTES);
  });
});
