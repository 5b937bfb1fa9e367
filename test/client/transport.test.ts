/**
 * The whole client over the transports a real user has, no mocks: a registry the pipeline published, served
 * on 127.0.0.1 over HTTPS with a CA the test makes, through an HTTP proxy the test runs, from a mirror when
 * the registry's origin is down (and from a mirror that lies), behind a front that wants a bearer token, and
 * behind a front that sends more than was signed. Each time a client with its own folders adds the
 * registry and installs, and the installed file (or its absence after a refusal) is checked.
 */
import { Buffer } from 'node:buffer';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import http, { type IncomingHttpHeaders, type RequestListener, type ServerResponse } from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRegistryServer, listenRegistryServer } from '../../cli/local/server.ts';
import {
  type AddRegistryOptions,
  type AddRegistryResult,
  createClient,
  type InstallResult,
  type PlugindexClient,
} from '../../client/client.ts';
import { createHttpFetcher } from '../../client/fetcher.ts';
import type { ClientDirectories } from '../../client/paths.ts';
import { fixedClock } from '../../index-builder/clock.ts';
import {
  artifactKey,
  binKey,
  binOf,
  manifestKey,
  pluginDocumentKey,
  SIGNED_SNAPSHOT_KEY,
} from '../../index-builder/layout.ts';
import { processSubmissions } from '../../index-builder/pipeline/index.ts';
import type { Store, StoredObject } from '../../index-builder/store.ts';
import { encode, makeBundle, makeRegistry, type TestRegistry, validManifest } from '../support/fixtures.ts';
import { MemoryStore } from '../support/memory-store.ts';
import { makeTestCa, startProxy, type TestCa, type TestProxy } from '../support/tls.ts';

type Env = Readonly<Record<string, string | undefined>>;

const NAME = 'demo-plugin';
const NOW = new Date('2026-11-02T00:00:00Z');
const TOOL = encode('#!/bin/sh\necho demo 1.0.0\n');
const LINUX = { os: 'linux', arch: 'amd64' } as const;
const TOKEN = 'token-that-must-stay-with-the-registry';
const ARTIFACT = artifactKey(NAME, '1.0.0', `artifacts/linux-amd64/${NAME}`);
/**
 * Every object one install of NAME@1.0.0 reads, in the order it reads them: the snapshot with its signature
 * in one object, and the manifest's signature inside the plugin document.
 */
const INSTALL_READS = [
  SIGNED_SNAPSHOT_KEY,
  binKey(binOf(NAME)),
  pluginDocumentKey(NAME),
  manifestKey(NAME, '1.0.0'),
  ARTIFACT,
];

let registry: TestRegistry;
/** The registry over plain HTTP, where the fronts below forward to. */
let base: string;
let closeBase: () => Promise<void>;
let ca: TestCa;
let root: string;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  registry = await makeRegistry();
  await processSubmissions(
    registry.context,
    await registry.submit(
      await makeBundle({
        manifest: validManifest({ name: NAME, version: '1.0.0', description: 'A demo cost source' }),
        artifacts: [{ ...LINUX, name: NAME, body: TOOL }],
      }),
    ),
  );
  ({ url: base, close: closeBase } = await listenRegistryServer(
    createRegistryServer({ site: registry.site }),
    0,
  ));
  ca = makeTestCa('transport');
  root = await mkdtemp(join(tmpdir(), 'plugindex-transport-'));
});
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
});
afterAll(async () => {
  await closeBase();
  ca.remove();
  await rm(root, { recursive: true, force: true });
});

// --- servers -------------------------------------------------------------------------------------------

/** A request as a test server saw it. */
interface Seen {
  readonly path: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
}

interface TestServer {
  readonly origin: string;
  readonly seen: Seen[];
  /** TCP connections accepted. */
  readonly connections: () => number;
}

/** An HTTP (or, with `tls`, HTTPS) server on 127.0.0.1 recording every request before `handler` answers it. */
async function serve(handler: RequestListener, tls?: { key: string; cert: string }): Promise<TestServer> {
  const seen: Seen[] = [];
  let connections = 0;
  const listener: RequestListener = (request, response) => {
    const url = request.url ?? '';
    seen.push({ path: url.split('?')[0] ?? '', url, headers: request.headers });
    handler(request, response);
  };
  const server = tls ? https.createServer(tls, listener) : http.createServer(listener);
  server.on('connection', () => {
    connections += 1;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const { port } = server.address() as AddressInfo;
  return { origin: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`, seen, connections: () => connections };
}

/** The local registry server's own request listener over `site`, to put behind another server. */
function registryListener(site: Store): RequestListener {
  return createRegistryServer({ site }).listeners('request')[0] as RequestListener;
}

/** An origin nothing listens on (a port just released). */
async function refusedOrigin(): Promise<string> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

function send(response: ServerResponse, status: number, headers: http.OutgoingHttpHeaders = {}): void {
  response.writeHead(status, { 'content-length': 0, ...headers });
  response.end();
}

/**
 * Forwards the request to the registry (as a reverse proxy or CDN in front of it would), without the
 * credentials meant for the front. With `append`, that many bytes are added to the body, under a
 * content-length that counts them (`declared`) or none at all (the body then simply runs on).
 */
function forward(
  request: http.IncomingMessage,
  response: ServerResponse,
  append?: { readonly bytes: number; readonly declared: boolean },
): void {
  const { host: _host, authorization: _authorization, ...headers } = request.headers;
  const upstream = http.request(`${base}${request.url}`, { method: request.method, headers }, (answer) => {
    if (!append || answer.statusCode !== 200) {
      response.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(response);
      return;
    }
    const parts: Buffer[] = [];
    answer.on('data', (part: Buffer) => parts.push(part));
    answer.on('end', () => {
      const body = Buffer.concat([...parts, Buffer.alloc(append.bytes, 0x20)]);
      const { 'content-length': _length, ...rest } = answer.headers;
      response.writeHead(200, append.declared ? { ...rest, 'content-length': body.byteLength } : rest);
      response.end(body);
    });
  });
  upstream.on('error', () => response.destroy());
  upstream.end();
}

/** A copy of the published site in which the artifact has the same size but other bytes. */
function tamperedSite(): MemoryStore {
  const copy = new MemoryStore();
  for (const [key, object] of registry.site.objects) copy.objects.set(key, object);
  const original = registry.site.objects.get(ARTIFACT) as StoredObject;
  const body = new Uint8Array(original.body);
  body[body.length - 2] = (body[body.length - 2] as number) ^ 1;
  copy.objects.set(ARTIFACT, { ...original, body, etag: '"tampered"' });
  return copy;
}

// --- client machines -----------------------------------------------------------------------------------

interface Transport {
  /** The fetcher's environment (proxy, NODE_EXTRA_CA_CERTS); never this process's own. */
  readonly fetcherEnv?: Env;
  /** The client's environment, for `${ENV}` secrets. */
  readonly env?: Env;
  /** Never touch the network. */
  readonly offline?: boolean;
}

interface Machine {
  readonly dir: string;
  readonly lockfile: string;
  run<T>(body: (client: PlugindexClient) => Promise<T>, transport?: Transport): Promise<T>;
}

let machines = 0;
/** A fresh client machine (its own config, data and cache folders, install folder and lock) on `transport`. */
function machine(transport: Transport = {}): Machine {
  machines += 1;
  const home = join(root, `m${machines}`);
  const dirs: ClientDirectories = {
    config: join(home, 'config'),
    data: join(home, 'data'),
    cache: join(home, 'cache'),
  };
  return {
    dir: join(home, 'plugins'),
    lockfile: join(home, 'plugindex.lock'),
    async run(body, override = transport) {
      const client = createClient({
        dirs,
        // One retry, quickly: enough to show a refused or failing origin is retried, not enough to slow the suite.
        fetcher: createHttpFetcher({ env: override.fetcherEnv ?? {}, retries: 1, retryDelayMs: 1 }),
        env: override.env ?? {},
        clock: fixedClock(NOW),
        platform: LINUX,
        offline: override.offline ?? false,
      });
      try {
        return await body(client);
      } finally {
        await client.close();
      }
    },
  };
}

function add(
  m: Machine,
  options: Omit<AddRegistryOptions, 'name' | 'pin'>,
  transport?: Transport,
): Promise<AddRegistryResult> {
  return m.run(
    (c) => c.addRegistry({ name: 'test', pin: { armored: registry.registryKey.publicKey }, ...options }),
    transport,
  );
}

function install(m: Machine, transport?: Transport): Promise<InstallResult> {
  return m.run(
    (c) => c.install({ requests: [`${NAME}@1.0.0`], dir: m.dir, lockfile: m.lockfile }),
    transport,
  );
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function expectInstalled(m: Machine, result: InstallResult): Promise<void> {
  expect(result.items.map((i) => [i.name, i.version, i.platform, i.unchanged])).toEqual([
    [NAME, '1.0.0', 'linux-amd64', false],
  ]);
  expect(await readFile(join(m.dir, NAME, '1.0.0', 'linux-amd64', NAME))).toEqual(Buffer.from(TOOL));
  expect(await exists(m.lockfile)).toBe(true);
}

async function expectNothingInstalled(m: Machine): Promise<void> {
  expect(await exists(m.dir)).toBe(false);
  expect(await exists(m.lockfile)).toBe(false);
}

// --- the transports ------------------------------------------------------------------------------------

describe('when the registry is served over https with a private CA', () => {
  it('adds and installs with the CA given as caFile (--ca)', async () => {
    const server = await serve(registryListener(registry.site), ca.tls);
    const m = machine();
    await add(m, { url: server.origin, caFile: ca.caFile });
    await expectInstalled(m, await install(m));
    expect(server.seen.map((s) => s.path)).toContain(`/${ARTIFACT}`);
  });

  it('refuses to add it without the CA, naming --ca, and saves nothing (FETCH_FAILED)', async () => {
    const server = await serve(registryListener(registry.site), ca.tls);
    const m = machine();
    await expect(add(m, { url: server.origin })).rejects.toMatchObject({
      name: 'ClientError',
      code: 'FETCH_FAILED',
      message: expect.stringContaining('--ca'),
    });
    // The handshake failed: no request was ever made over it.
    expect(server.seen).toEqual([]);
    expect(await m.run((c) => c.listRegistries())).toEqual([]);
  });

  it('adds and installs with the CA named by NODE_EXTRA_CA_CERTS in the fetcher environment', async () => {
    const server = await serve(registryListener(registry.site), ca.tls);
    const m = machine({ fetcherEnv: { NODE_EXTRA_CA_CERTS: ca.caFile } });
    await add(m, { url: server.origin });
    await expectInstalled(m, await install(m));
  });
});

describe('when requests go through an HTTP proxy', () => {
  let proxy: TestProxy;
  beforeAll(async () => {
    proxy = await startProxy();
  });
  afterAll(() => proxy.close());
  afterEach(() => {
    proxy.tunnels.length = 0;
    proxy.forwarded.length = 0;
  });

  // NO_PROXY names another host: loopback is not exempt unless named, so the https registry on 127.0.0.1 is
  // proxied; a loopback http: one never is (its requests would leave the machine in clear).
  const noProxy = 'intranet.invalid';

  it('tunnels every https connection through it (CONNECT) and installs', async () => {
    const server = await serve(registryListener(registry.site), ca.tls);
    const m = machine({ fetcherEnv: { HTTPS_PROXY: proxy.url, NO_PROXY: noProxy } });
    await add(m, { url: server.origin, caFile: ca.caFile });
    await expectInstalled(m, await install(m));
    const target = new URL(server.origin).host;
    expect(proxy.tunnels.length).toBeGreaterThan(0);
    expect(new Set(proxy.tunnels)).toEqual(new Set([target]));
    // Each connection the registry accepted was one of the proxy's tunnels: none went around it.
    expect(server.connections()).toBe(proxy.tunnels.length);
    expect(server.seen.map((s) => s.path)).toEqual(expect.arrayContaining(INSTALL_READS.map((k) => `/${k}`)));
  });

  it('sends no request to a loopback http registry through it, and installs', async () => {
    const server = await serve(registryListener(registry.site));
    const m = machine({ fetcherEnv: { HTTP_PROXY: proxy.url, NO_PROXY: noProxy } });
    await add(m, { url: server.origin });
    await expectInstalled(m, await install(m));
    expect(proxy.tunnels).toEqual([]);
    expect(proxy.forwarded).toEqual([]);
    expect(server.seen.map((s) => s.path)).toEqual(expect.arrayContaining(INSTALL_READS.map((k) => `/${k}`)));
  });
});

describe('when the registry is read from a mirror', () => {
  it('adds and installs with every request answered by the mirror when the registry refuses connections', async () => {
    const mirror = await serve(registryListener(registry.site));
    const m = machine();
    await add(m, { url: await refusedOrigin(), mirrors: [mirror.origin] });
    await expectInstalled(m, await install(m));
    expect([...new Set(mirror.seen.map((s) => s.path))].sort()).toEqual(
      INSTALL_READS.map((k) => `/${k}`).sort(),
    );
  });

  it('refuses an artifact a mirror altered (the registry key is trusted, not the mirror), installing nothing', async () => {
    let down = true;
    const origin = await serve((request, response) =>
      down ? send(response, 503) : forward(request, response),
    );
    const liar = await serve(registryListener(tamperedSite()));
    const m = machine();
    await add(m, { url: origin.origin, mirrors: [liar.origin] });
    await expect(install(m)).rejects.toMatchObject({ name: 'TrustError', code: 'ARTIFACT_MISMATCH' });
    expect(liar.seen.map((s) => s.path)).toContain(`/${ARTIFACT}`);
    await expectNothingInstalled(m);

    down = false;
    await expectInstalled(m, await install(m));
    expect(origin.seen.filter((s) => s.path === `/${ARTIFACT}`)).not.toEqual([]);
  });
});

describe('when the registry wants a bearer token', () => {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: "${TEST_TOKEN}" is the secret reference a user writes
  const auth = { type: 'bearer_token', bearer_token: '${TEST_TOKEN}' } as const;
  const withToken: Transport = { env: { TEST_TOKEN: TOKEN } };

  /** A front that answers 401 without the token; `route` may answer a request itself first. */
  function guarded(
    route: (request: http.IncomingMessage, response: ServerResponse) => boolean = () => false,
  ) {
    return serve((request, response) => {
      if (request.headers.authorization !== `Bearer ${TOKEN}`) return send(response, 401);
      if (!route(request, response)) forward(request, response);
    });
  }

  it('sends it from the environment named by the config, and installs', async () => {
    const front = await guarded();
    const m = machine(withToken);
    await add(m, { url: front.origin, auth });
    await expectInstalled(m, await install(m));
    expect(front.seen.map((s) => s.path)).toEqual(expect.arrayContaining(INSTALL_READS.map((k) => `/${k}`)));
    expect(front.seen.filter((s) => s.headers.authorization !== `Bearer ${TOKEN}`)).toEqual([]);
    // And the front does hold the door: without the token, the registry cannot even be added.
    await expect(add(machine(), { url: front.origin })).rejects.toMatchObject({
      name: 'ClientError',
      code: 'FETCH_FAILED',
      message: expect.stringContaining('HTTP 401'),
    });
  });

  it('needs no secret for an offline install from the cache, which sends nothing', async () => {
    const front = await guarded();
    const m = machine(withToken);
    await add(m, { url: front.origin, auth });
    await install(m);
    await rm(m.dir, { recursive: true });
    const seen = front.seen.length;
    await expectInstalled(m, await install(m, { offline: true }));
    expect(front.seen.length).toBe(seen);
  });

  it('never sends it to a mirror', async () => {
    let down = false;
    const front = await guarded((_request, response) => {
      if (down) send(response, 503);
      return down;
    });
    const mirror = await serve(registryListener(registry.site));
    const m = machine(withToken);
    await add(m, { url: front.origin, mirrors: [mirror.origin], auth });
    down = true;
    await expectInstalled(m, await install(m));
    expect(mirror.seen.map((s) => s.path)).toContain(`/${ARTIFACT}`);
    expect(mirror.seen.filter((s) => s.headers.authorization !== undefined)).toEqual([]);
    expect(front.seen.filter((s) => s.headers.authorization !== `Bearer ${TOKEN}`)).toEqual([]);
  });

  it('refuses a redirect of one document to another origin, which sees no request (FETCH_CROSS_ORIGIN_REDIRECT)', async () => {
    const other = await serve(registryListener(registry.site));
    const front = await guarded((request, response) => {
      if (request.url?.split('?')[0] !== `/${pluginDocumentKey(NAME)}`) return false;
      send(response, 302, { location: `${other.origin}${request.url}` });
      return true;
    });
    const m = machine(withToken);
    await add(m, { url: front.origin, auth });
    const refused = install(m);
    await expect(refused).rejects.toMatchObject({
      name: 'ClientError',
      code: 'FETCH_CROSS_ORIGIN_REDIRECT',
      refusal: true,
    });
    expect(String(await refused.catch((error: Error) => error.message))).not.toContain(TOKEN);
    expect(other.seen).toEqual([]);
    await expectNothingInstalled(m);
  });

  it('fails with CREDENTIALS_MISSING before any request when the variable is not set', async () => {
    const front = await guarded();
    const m = machine({ env: {} });
    await expect(add(m, { url: front.origin, auth })).rejects.toMatchObject({
      name: 'ClientError',
      code: 'CREDENTIALS_MISSING',
      message: expect.stringContaining('TEST_TOKEN'),
    });
    expect(front.seen).toEqual([]);

    // Added while it was set, installed once it no longer is.
    await add(m, { url: front.origin, auth }, withToken);
    const before = front.seen.length;
    await expect(install(m)).rejects.toMatchObject({ name: 'ClientError', code: 'CREDENTIALS_MISSING' });
    expect(front.seen.length).toBe(before);
    await expectNothingInstalled(m);
  });
});

describe('when a response is larger than what was signed', () => {
  const declared = 'with a content-length counting the extra bytes';
  const streamed = 'with no content-length, the extra bytes simply running on';
  it.each([
    ['the plugin document', declared, pluginDocumentKey(NAME)],
    ['the plugin document', streamed, pluginDocumentKey(NAME)],
    ['the bin', declared, binKey(binOf(NAME))],
    ['the bin', streamed, binKey(binOf(NAME))],
    ['the artifact', declared, ARTIFACT],
    ['the artifact', streamed, ARTIFACT],
  ])('refuses %s served %s, installs nothing, then installs honestly', async (_what, how, key) => {
    let padded = true;
    const front = await serve((request, response) =>
      forward(
        request,
        response,
        padded && request.url?.split('?')[0] === `/${key}`
          ? { bytes: 64 * 1024, declared: how === declared }
          : undefined,
      ),
    );
    const m = machine();
    await add(m, { url: front.origin });
    await expect(install(m)).rejects.toMatchObject({
      name: 'ClientError',
      code: 'RESPONSE_TOO_LARGE',
      refusal: true,
    });
    expect(front.seen.map((s) => s.path)).toContain(`/${key}`);
    await expectNothingInstalled(m);

    padded = false;
    await expectInstalled(m, await install(m));
  });
});
