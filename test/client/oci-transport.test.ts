/**
 * The fetcher's OCI pulls against a real registry (the distribution project's, started by the test on
 * 127.0.0.1: open, behind a token service, and private), and, for what that registry never does (serve
 * bytes that do not match their digest, redirect a blob to another origin, ask for Basic), small node:http
 * servers named as such.
 */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import http, { type IncomingHttpHeaders, type RequestListener } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpFetcher, type Fetcher } from '../../client/fetcher.ts';
import { MANIFEST_MEDIA_TYPES, OCI_INDEX, OCI_MANIFEST, readManifest } from '../../client/oci.ts';
import {
  type OciRegistry,
  type Pushed,
  pushBlob,
  putManifest,
  REGISTRY_USER,
  startOciRegistry,
} from '../support/oci-registry.ts';
import { resolving } from '../support/resolving.ts';
import { collect, patternBytes, writePaddedGzip } from '../support/streams.ts';
import { makeTestCa, startProxy, type TestCa, type TestProxy } from '../support/tls.ts';

const ARTIFACT = patternBytes(300 * 1024 + 7);
const MISSING = `sha256:${'0'.repeat(64)}`;

const registries: OciRegistry[] = [];
const servers: http.Server[] = [];
let fetcher: Fetcher;

beforeAll(() => {
  fetcher = createHttpFetcher({ env: {}, retryDelayMs: 1 });
});

afterAll(async () => {
  await fetcher.close();
  await Promise.all(registries.map((registry) => registry.stop()));
  for (const server of servers) server.closeAllConnections();
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
});

async function registry(mode: 'open' | 'token' | 'private'): Promise<OciRegistry> {
  const started = await startOciRegistry(mode);
  registries.push(started);
  return started;
}

/** A node:http server on 127.0.0.1, for what the real registry never does. */
async function server(handler: RequestListener): Promise<string> {
  const started = http.createServer(handler);
  servers.push(started);
  await new Promise<void>((resolve) => started.listen(0, '127.0.0.1', resolve));
  return `127.0.0.1:${(started.address() as AddressInfo).port}`;
}

function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

describe('when a blob is pulled from an open registry', () => {
  let open: OciRegistry;
  let pushed: Pushed;
  beforeAll(async () => {
    open = await registry('open');
    pushed = await pushBlob(open, 'acme/kubecost-lens', ARTIFACT, { tag: '1.2.0' });
  });

  it('streams the bytes pushed, with their size', async () => {
    const download = await fetcher.ociBlob({
      reference: `${open.host}/acme/kubecost-lens:1.2.0`,
      digest: pushed.digest,
      maxBytes: ARTIFACT.byteLength,
    });
    expect(download.size).toBe(ARTIFACT.byteLength);
    expect(download.url).toBe(`${open.url}/v2/acme/kubecost-lens/blobs/${pushed.digest}`);
    expect(Buffer.from(await collect(download.body)).equals(Buffer.from(ARTIFACT))).toBe(true);
  });

  it('refuses a blob over maxBytes before reading it', async () => {
    await expect(
      fetcher.ociBlob({
        reference: `${open.host}/acme/kubecost-lens:1.2.0`,
        digest: pushed.digest,
        maxBytes: ARTIFACT.byteLength - 1,
      }),
    ).rejects.toMatchObject({
      name: 'ClientError',
      code: 'RESPONSE_TOO_LARGE',
      message: expect.stringContaining(`declares ${ARTIFACT.byteLength} bytes`),
    });
  });

  it('answers FETCH_NOT_FOUND naming the reference and the digest for a blob it does not have', async () => {
    const reference = `${open.host}/acme/kubecost-lens:1.2.0`;
    const error = await fetcher
      .ociBlob({ reference, digest: MISSING, maxBytes: 10 })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'ClientError', code: 'FETCH_NOT_FOUND' });
    expect((error as Error).message).toContain(`blob ${MISSING} of ${reference}`);
  });

  it('refuses a digest that is not sha256 before any request', async () => {
    await expect(
      fetcher.ociBlob({ reference: `${open.host}/acme/kubecost-lens`, digest: 'sha256:abc', maxBytes: 10 }),
    ).rejects.toMatchObject({ name: 'ClientError', code: 'REQUEST_INVALID' });
  });

  it('gets the manifest by tag with every manifest type accepted, and finds the pushed layer in it', async () => {
    const manifest = await fetcher.ociManifest({ reference: `${open.host}/acme/kubecost-lens:1.2.0` });
    expect(manifest.digest).toBe(pushed.manifestDigest);
    expect(manifest.mediaType).toBe(OCI_MANIFEST);
    expect(Buffer.from(manifest.bytes).equals(Buffer.from(pushed.manifest))).toBe(true);
    const read = readManifest(JSON.parse(Buffer.from(manifest.bytes).toString('utf8')), {
      mediaType: manifest.mediaType,
    });
    expect(read).toEqual({
      kind: 'image',
      layers: [expect.objectContaining({ digest: pushed.digest, size: ARTIFACT.byteLength })],
    });
  });

  it('gets the manifest by its digest', async () => {
    const manifest = await fetcher.ociManifest({
      reference: `${open.host}/acme/kubecost-lens@${pushed.manifestDigest}`,
    });
    expect(manifest.digest).toBe(pushed.manifestDigest);
  });

  it("reads an index, then by digest a manifest it lists, then that manifest's layer", async () => {
    const arm = await pushBlob(open, 'acme/multi', patternBytes(1000), { tag: 'arm64-only' });
    const amd = await pushBlob(open, 'acme/multi', patternBytes(2000), { tag: 'amd64-only' });
    const entry = (pushedManifest: Pushed, architecture: string) => ({
      mediaType: OCI_MANIFEST,
      digest: pushedManifest.manifestDigest,
      size: pushedManifest.manifest.byteLength,
      platform: { os: 'linux', architecture },
    });
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: [entry(amd, 'amd64'), entry(arm, 'arm64')],
      }),
    );
    await putManifest(open, 'acme/multi', '2.0.0', index, OCI_INDEX);

    const fetched = await fetcher.ociManifest({ reference: `${open.host}/acme/multi:2.0.0` });
    expect(fetched.mediaType).toBe(OCI_INDEX);
    const listed = readManifest(JSON.parse(Buffer.from(fetched.bytes).toString('utf8')));
    expect(listed.kind === 'index' && listed.manifests.map((d) => d.digest)).toEqual([
      amd.manifestDigest,
      arm.manifestDigest,
    ]);
    const manifest = await fetcher.ociManifest({
      reference: `${open.host}/acme/multi@${arm.manifestDigest}`,
    });
    const read = readManifest(JSON.parse(Buffer.from(manifest.bytes).toString('utf8')));
    const layer = read.kind === 'image' ? read.layers[0] : undefined;
    expect(layer?.digest).toBe(arm.digest);
    const download = await fetcher.ociBlob({
      reference: `${open.host}/acme/multi:2.0.0`,
      digest: arm.digest,
      maxBytes: layer?.size ?? 0,
    });
    expect(Buffer.from(await collect(download.body)).equals(Buffer.from(patternBytes(1000)))).toBe(true);
  });
});

describe('when the registry hands out tokens', () => {
  let token: OciRegistry;
  let pushed: Pushed;
  beforeAll(async () => {
    token = await registry('token');
    pushed = await pushBlob(token, 'acme/kubecost-lens', ARTIFACT, { tag: '1.2.0' });
  });

  it('pulls with an anonymous token asked for pull only', async () => {
    token.tokenRequests.length = 0;
    const download = await fetcher.ociBlob({
      reference: `${token.host}/acme/kubecost-lens:1.2.0`,
      digest: pushed.digest,
      maxBytes: ARTIFACT.byteLength,
    });
    expect(Buffer.from(await collect(download.body)).equals(Buffer.from(ARTIFACT))).toBe(true);
    expect(token.tokenRequests).toEqual([
      { url: '/token?service=plugindex-test-registry&scope=repository%3Aacme%2Fkubecost-lens%3Apull' },
    ]);
  });

  it('gets the manifest through the same dance', async () => {
    const manifest = await fetcher.ociManifest({ reference: `${token.host}/acme/kubecost-lens:1.2.0` });
    expect(manifest.digest).toBe(pushed.manifestDigest);
  });

  it('asks for a token once per repository in a run, not once per pull', async () => {
    const own = createHttpFetcher({ env: {}, retryDelayMs: 1 });
    try {
      token.tokenRequests.length = 0;
      for (let i = 0; i < 3; i++) {
        const download = await own.ociBlob({
          reference: `${token.host}/acme/kubecost-lens:1.2.0`,
          digest: pushed.digest,
          maxBytes: ARTIFACT.byteLength,
        });
        await collect(download.body);
      }
      expect(token.tokenRequests).toHaveLength(1);
    } finally {
      await own.close();
    }
  });
});

describe('when a registry stops taking the token it issued (a node:http stand-in)', () => {
  const bytes = patternBytes(64);
  const digest = sha256(bytes);
  let issued = 0;
  let accepted = '';
  let host: string;
  beforeAll(async () => {
    host = await server((request, response) => {
      if (request.url?.startsWith('/token')) {
        issued += 1;
        accepted = `t${issued}`;
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ token: accepted }));
      } else if (request.headers.authorization === `Bearer ${accepted}`) {
        response.writeHead(200);
        response.end(bytes);
      } else {
        response.writeHead(401, {
          'www-authenticate': `Bearer realm="http://${host}/token",service="stand-in"`,
        });
        response.end();
      }
    });
  });

  it('asks for a new one once, and pulls with it', async () => {
    const own = createHttpFetcher({ env: {}, retryDelayMs: 1 });
    try {
      const pull = async () =>
        Buffer.from(
          await collect((await own.ociBlob({ reference: `${host}/acme/lens`, digest, maxBytes: 64 })).body),
        );
      expect((await pull()).equals(Buffer.from(bytes))).toBe(true);
      accepted = 'revoked';
      expect((await pull()).equals(Buffer.from(bytes))).toBe(true);
      expect(issued).toBe(2);
    } finally {
      await own.close();
    }
  });
});

describe('when the registry is private', () => {
  let privateRegistry: OciRegistry;
  let pushed: Pushed;
  let reference: string;
  beforeAll(async () => {
    privateRegistry = await registry('private');
    pushed = await pushBlob(privateRegistry, 'acme/kubecost-lens', ARTIFACT, { tag: '1.2.0' });
    reference = `${privateRegistry.host}/acme/kubecost-lens:1.2.0`;
  });

  it('pulls with the credentials given, sent to the token service as Basic', async () => {
    privateRegistry.tokenRequests.length = 0;
    const download = await fetcher.ociBlob({
      reference,
      digest: pushed.digest,
      maxBytes: ARTIFACT.byteLength,
      credentials: REGISTRY_USER,
    });
    expect(Buffer.from(await collect(download.body)).equals(Buffer.from(ARTIFACT))).toBe(true);
    expect(privateRegistry.tokenRequests).toEqual([
      {
        url: expect.stringContaining('scope=repository%3Aacme%2Fkubecost-lens%3Apull'),
        authorization: `Basic ${Buffer.from(`${REGISTRY_USER.username}:${REGISTRY_USER.password}`).toString('base64')}`,
      },
    ]);
  });

  it('answers CREDENTIALS_MISSING without credentials (the anonymous token grants nothing)', async () => {
    await expect(
      fetcher.ociBlob({ reference, digest: pushed.digest, maxBytes: ARTIFACT.byteLength }),
    ).rejects.toMatchObject({
      name: 'ClientError',
      code: 'CREDENTIALS_MISSING',
      message: expect.stringContaining(`requires credentials to pull acme/kubecost-lens`),
    });
  });

  it('answers FETCH_FAILED, not CREDENTIALS_MISSING, when the credentials given are refused', async () => {
    await expect(
      fetcher.ociManifest({
        reference,
        credentials: { username: REGISTRY_USER.username, password: 'wrong' },
      }),
    ).rejects.toMatchObject({
      name: 'ClientError',
      code: 'FETCH_FAILED',
      message: expect.stringContaining('refused the credentials given'),
    });
  });
});

describe('when a server answers a manifest with bytes of another digest (a node:http stand-in)', () => {
  const served = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, layers: [] }));
  let host: string;
  let accepted: string | undefined;
  beforeAll(async () => {
    host = await server((request, response) => {
      accepted = request.headers.accept;
      const byTag = request.url === '/v2/acme/lens/manifests/1.0';
      response.writeHead(200, {
        'content-type': OCI_MANIFEST,
        // By tag: a Docker-Content-Digest that is not the bytes'.
        ...(byTag ? { 'docker-content-digest': MISSING } : {}),
      });
      response.end(served);
    });
  });

  it('refuses them when the reference pins the digest', async () => {
    await expect(fetcher.ociManifest({ reference: `${host}/acme/lens@${MISSING}` })).rejects.toMatchObject({
      name: 'TrustError',
      code: 'DOCUMENT_MISMATCH',
      message: expect.stringContaining(`expected ${MISSING}, received ${sha256(served)}`),
    });
    expect(accepted).toBe(MANIFEST_MEDIA_TYPES.join(', '));
  });

  it('refuses them when its Docker-Content-Digest says otherwise', async () => {
    await expect(fetcher.ociManifest({ reference: `${host}/acme/lens:1.0` })).rejects.toMatchObject({
      name: 'TrustError',
      code: 'DOCUMENT_MISMATCH',
      message: expect.stringContaining('Docker-Content-Digest'),
    });
  });
});

describe('when a registry elsewhere names a blob on this machine (a node:http stand-in)', () => {
  it('refuses it before any request reaches the loopback port (REGISTRY_URL_INVALID)', async () => {
    const seen: string[] = [];
    const host = await server((request, response) => {
      seen.push(request.url ?? '');
      response.writeHead(200, { 'content-length': '8' }).end('artifact');
    });
    const pull = (bases: string[]) =>
      fetcher.ociBlob({
        reference: `${host}/acme/kubecost-lens`,
        digest: sha256(Buffer.from('artifact')),
        maxBytes: 100,
        namedBy: { name: 'community', bases, timeoutMs: 10_000 },
      });

    await expect(pull(['https://plugins.example'])).rejects.toMatchObject({
      name: 'ClientError',
      code: 'REGISTRY_URL_INVALID',
    });
    expect(seen).toEqual([]);
    // A registry on this machine may name one there (a local registry beside a local OCI registry).
    await collect((await pull(['http://127.0.0.1:9'])).body);
    expect(seen).toHaveLength(1);
  });
});

describe('when a registry elsewhere names a token realm on this machine (node:https stand-ins)', () => {
  it('refuses it before any request, or the credentials for it, reaches the loopback port (REGISTRY_URL_INVALID)', async () => {
    // Prepare: a service of the user's on a loopback port; and "oci.example", a registry elsewhere (over
    // https:, through a proxy that stands it in on 127.0.0.1), whose challenge names that port as its realm.
    const seen: IncomingHttpHeaders[] = [];
    const local = await server((request, response) => {
      seen.push(request.headers);
      response.writeHead(200, { 'content-type': 'application/json' }).end('{"token":"t"}');
    });
    const ca = makeTestCa('oci-realm', { names: ['oci.example'] });
    const elsewhere = https.createServer(ca.tls, (_request, response) => {
      response
        .writeHead(401, {
          'www-authenticate': `Bearer realm="http://${local}/admin/token",service="stand-in"`,
        })
        .end();
    });
    servers.push(elsewhere);
    await new Promise<void>((resolve) => elsewhere.listen(0, '127.0.0.1', resolve));
    const port = (elsewhere.address() as AddressInfo).port;
    const proxy = await startProxy({ route: () => `127.0.0.1:${port}` });
    const through = createHttpFetcher({ env: { HTTPS_PROXY: proxy.url }, retryDelayMs: 1 });
    try {
      // Act
      const pull = through.ociBlob({
        reference: 'oci.example/acme/kubecost-lens',
        digest: sha256(Buffer.from('artifact')),
        maxBytes: 100,
        ca: ca.caPem,
        credentials: REGISTRY_USER,
      });

      // Assess: the registry was asked, the loopback port never.
      await expect(pull).rejects.toMatchObject({
        name: 'ClientError',
        code: 'REGISTRY_URL_INVALID',
        message: expect.stringContaining("names a token realm on this machine's loopback"),
      });
      expect(proxy.tunnels).toContain('oci.example:443');
      expect(seen).toEqual([]);
    } finally {
      await through.close();
      await proxy.close();
      ca.remove();
    }
  });
});

describe('when a registry elsewhere names a link-local OCI registry or token realm (node:https stand-ins)', () => {
  it('refuses it before any request reaches it (REGISTRY_URL_INVALID): a cloud VM’s metadata service answers there', async () => {
    // Prepare: one stand-in, through a proxy that takes every tunnel to it: what the rule by name lets by
    // reaches it. "oci.example" answers with a challenge whose realm is the metadata service's address.
    const seen: string[] = [];
    const ca = makeTestCa('oci-link-local', { names: ['oci.example', '169.254.169.254'] });
    const standIn = https.createServer(ca.tls, (request, response) => {
      seen.push(`${request.headers.host}${request.url}`);
      response
        .writeHead(401, {
          'www-authenticate': 'Bearer realm="https://169.254.169.254/latest/meta-data/",service="stand-in"',
        })
        .end();
    });
    servers.push(standIn);
    await new Promise<void>((resolve) => standIn.listen(0, '127.0.0.1', resolve));
    const port = (standIn.address() as AddressInfo).port;
    const proxy = await startProxy({ route: () => `127.0.0.1:${port}` });
    const through = createHttpFetcher({ env: { HTTPS_PROXY: proxy.url }, retryDelayMs: 1, retries: 0 });
    const pull = (reference: string, namedBy?: readonly string[]) =>
      through.ociBlob({
        reference,
        digest: sha256(Buffer.from('artifact')),
        maxBytes: 100,
        ca: ca.caPem,
        ...(namedBy === undefined
          ? {}
          : { namedBy: { name: 'community', bases: namedBy, timeoutMs: 10_000 } }),
      });
    try {
      // Act, Assess: a registry on the metadata service's address, named by a registry elsewhere.
      await expect(
        pull('169.254.169.254/acme/kubecost-lens', ['https://plugins.example']),
      ).rejects.toMatchObject({
        name: 'ClientError',
        code: 'REGISTRY_URL_INVALID',
        message: expect.stringContaining(
          "a registry on the link-local range 169.254.0.0/16 (a cloud VM's metadata service answers at 169.254.169.254) (169.254.169.254 is in the link-local range 169.254.0.0/16)",
        ),
      });
      expect(proxy.tunnels).toEqual([]);
      // A realm there, named by a registry the user typed: the registry is asked, the realm never.
      await expect(pull('oci.example/acme/kubecost-lens')).rejects.toMatchObject({
        name: 'ClientError',
        code: 'REGISTRY_URL_INVALID',
        message: expect.stringContaining('names a token realm on the link-local range 169.254.0.0/16'),
      });
      expect(proxy.tunnels).toEqual(['oci.example:443']);
      expect(seen).toEqual([`oci.example/v2/acme/kubecost-lens/blobs/${sha256(Buffer.from('artifact'))}`]);
    } finally {
      await through.close();
      await proxy.close();
      ca.remove();
    }
  });
});

/** A node:https stand-in on every address of this machine ([::], dual stack), counting the connections it took. */
async function serveEverywhere(
  tls: { key: string; cert: string },
  handler: RequestListener,
): Promise<{ readonly port: number; connections(): number }> {
  let connections = 0;
  const started = https.createServer(tls, handler);
  started.on('connection', () => {
    connections++;
  });
  servers.push(started as unknown as http.Server);
  await new Promise<void>((resolve) => started.listen(0, '::', resolve));
  return { port: (started.address() as AddressInfo).port, connections: () => connections };
}

describe('when a name chosen elsewhere for an OCI pull resolves to this machine (the lookup seam standing in for DNS)', () => {
  // Loopback (all of 127/8, ::1), an IPv4-mapped loopback address, and the unspecified address.
  const THIS_MACHINE = ['127.0.0.1', '127.5.6.7', '::1', '::ffff:127.0.0.1', '0.0.0.0'];
  const blob = Buffer.from('artifact');
  let ca: TestCa;
  const made: Fetcher[] = [];
  beforeAll(() => {
    ca = makeTestCa('oci-rebind', { names: ['oci.example', 'rebind.example'] });
  });
  afterAll(async () => {
    await Promise.all(made.map((each) => each.close()));
    ca.remove();
  });
  const withLookup = (names: Record<string, string>): Fetcher => {
    const through = createHttpFetcher({ env: {}, retryDelayMs: 1, lookup: resolving(names) });
    made.push(through);
    return through;
  };

  it('refuses a registry a registry elsewhere names, before connecting (REGISTRY_URL_INVALID)', async () => {
    const local = await serveEverywhere(ca.tls, (_request, response) => {
      response.writeHead(200, { 'content-length': String(blob.byteLength) }).end(blob);
    });
    const pull = (through: Fetcher, bases: string[]) =>
      through.ociBlob({
        reference: `rebind.example:${local.port}/acme/kubecost-lens`,
        digest: sha256(blob),
        maxBytes: 100,
        ca: ca.caPem,
        namedBy: { name: 'community', bases, timeoutMs: 10_000 },
      });
    for (const address of THIS_MACHINE) {
      await expect(
        pull(withLookup({ 'rebind.example': address }), ['https://plugins.example']),
        address,
      ).rejects.toMatchObject({
        name: 'ClientError',
        code: 'REGISTRY_URL_INVALID',
        message: expect.stringContaining(
          `a registry on this machine's loopback (rebind.example resolved to ${address}), named by a registry that is not on this machine`,
        ),
      });
    }
    // By name too, whatever form the name takes.
    for (const host of ['localhost', '[::1]', '[::ffff:127.0.0.1]', '0.0.0.0', '[::]']) {
      await expect(
        withLookup({}).ociBlob({
          reference: `${host}:${local.port}/acme/kubecost-lens`,
          digest: sha256(blob),
          maxBytes: 100,
          ca: ca.caPem,
          namedBy: { name: 'community', bases: ['https://plugins.example'], timeoutMs: 10_000 },
        }),
        host,
      ).rejects.toMatchObject({ name: 'ClientError', code: 'REGISTRY_URL_INVALID' });
    }
    expect(local.connections()).toBe(0);
    // Named by a registry on this machine, it is pulled from there (the seam does route the name to it).
    const pulled = await pull(withLookup({ 'rebind.example': '127.0.0.1' }), ['http://127.0.0.1:9']);
    expect(Buffer.from(await collect(pulled.body)).equals(blob)).toBe(true);
    expect(local.connections()).toBe(1);
  });

  it('refuses a token realm that resolves there, from a registry not on this machine by name: no credentials reach it (REGISTRY_URL_INVALID)', async () => {
    // Prepare: "oci.example", a registry the user typed (its name put on this machine, as /etc/hosts or a
    // tunnel would), whose challenge names a realm on rebind.example; or its own origin.
    let realm = '';
    const realmServer = await serveEverywhere(ca.tls, (_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' }).end('{"token":"t"}');
    });
    const registry = await serveEverywhere(ca.tls, (request, response) => {
      if (request.url?.startsWith('/token'))
        response.writeHead(200, { 'content-type': 'application/json' }).end('{"token":"t"}');
      else if (request.headers.authorization === 'Bearer t')
        response.writeHead(200, { 'content-length': String(blob.byteLength) }).end(blob);
      else
        response.writeHead(401, { 'www-authenticate': `Bearer realm="${realm}",service="stand-in"` }).end();
    });
    const pull = (through: Fetcher) =>
      through.ociBlob({
        reference: `oci.example:${registry.port}/acme/kubecost-lens`,
        digest: sha256(blob),
        maxBytes: 100,
        ca: ca.caPem,
        credentials: REGISTRY_USER,
      });

    // Act, Assess: the registry is asked, the realm never connected to.
    realm = `https://rebind.example:${realmServer.port}/token`;
    for (const address of THIS_MACHINE) {
      await expect(
        pull(withLookup({ 'oci.example': '127.0.0.1', 'rebind.example': address })),
        address,
      ).rejects.toMatchObject({
        name: 'ClientError',
        code: 'REGISTRY_URL_INVALID',
        message: expect.stringContaining(
          `names a token realm on this machine's loopback (${realm}?service=…&scope=…: rebind.example resolved to ${address})`,
        ),
      });
    }
    // By name too, whatever form the name takes (the check before any request).
    for (const host of ['localhost', '[::1]', '[::ffff:127.0.0.1]', '0.0.0.0', '[::]']) {
      realm = `https://${host}:${realmServer.port}/token`;
      await expect(pull(withLookup({ 'oci.example': '127.0.0.1' })), host).rejects.toMatchObject({
        name: 'ClientError',
        code: 'REGISTRY_URL_INVALID',
        message: expect.stringContaining("names a token realm on this machine's loopback"),
      });
    }
    expect(realmServer.connections()).toBe(0);
    // Its realm on its own origin is followed, as before: the registry the user named works there.
    realm = `https://oci.example:${registry.port}/token`;
    const pulled = await pull(withLookup({ 'oci.example': '127.0.0.1' }));
    expect(Buffer.from(await collect(pulled.body)).equals(blob)).toBe(true);
  });
});

describe('when a registry redirects a blob to its storage on another origin (node:http stand-ins)', () => {
  const TOKEN = 'registry-token-that-must-not-leave';
  const bytes = patternBytes(5000);
  const digest = sha256(bytes);
  const seen: { where: string; headers: IncomingHttpHeaders }[] = [];
  let registryHost: string;

  beforeAll(async () => {
    let storageHost = '';
    // The registry: a Bearer challenge, its token service, and a redirect of the blob to the storage.
    registryHost = await server((request, response) => {
      seen.push({ where: `registry ${request.url}`, headers: request.headers });
      if (request.url?.startsWith('/token')) {
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ access_token: TOKEN }));
      } else if (request.url === '/back-again') {
        response.writeHead(200, { 'content-length': String(bytes.byteLength) });
        response.end(bytes);
      } else if (request.headers.authorization !== `Bearer ${TOKEN}`) {
        response.writeHead(401, {
          'www-authenticate': `Bearer realm="http://${registryHost}/token",service="stand-in"`,
        });
        response.end();
      } else {
        response.writeHead(307, { location: `http://${storageHost}/bucket/blob?signature=presigned` });
        response.end();
      }
    });
    // The storage: takes no token (a presigned URL), and sends the client back to the registry's origin.
    storageHost = await server((request, response) => {
      seen.push({ where: `storage ${request.url}`, headers: request.headers });
      response.writeHead(302, { location: `http://${registryHost}/back-again` });
      response.end();
    });
  });

  it('follows the redirect without the token, and does not send it again when a hop comes back', async () => {
    const download = await fetcher.ociBlob({
      reference: `${registryHost}/acme/lens:1.0`,
      digest,
      maxBytes: bytes.byteLength,
    });
    expect(Buffer.from(await collect(download.body)).equals(Buffer.from(bytes))).toBe(true);
    expect(download.url).toBe(`http://${registryHost}/back-again`);
    expect(seen.map(({ where, headers }) => [where, headers.authorization])).toEqual([
      [`registry /v2/acme/lens/blobs/${digest}`, undefined],
      ['registry /token?service=stand-in&scope=repository%3Aacme%2Flens%3Apull', undefined],
      [`registry /v2/acme/lens/blobs/${digest}`, `Bearer ${TOKEN}`],
      ['storage /bucket/blob?signature=presigned', undefined],
      ['registry /back-again', undefined],
    ]);
  });
});

describe('when the storage a registry redirects to asks for credentials of its own (node:http stand-ins)', () => {
  it("answers no challenge but the registry's: the user's credentials never reach a realm another origin names", async () => {
    const asked: (string | undefined)[] = [];
    let storageHost = '';
    storageHost = await server((request, response) => {
      if (request.url?.startsWith('/token')) {
        asked.push(request.headers.authorization);
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ token: 'theirs' }));
        return;
      }
      response.writeHead(401, {
        'www-authenticate': `Bearer realm="http://${storageHost}/token",service="s"`,
      });
      response.end();
    });
    const registryHost = await server((_request, response) => {
      response.writeHead(307, { location: `http://${storageHost}/bucket/blob` });
      response.end();
    });

    const pulled = fetcher.ociBlob({
      reference: `${registryHost}/acme/lens:1.0`,
      digest: MISSING,
      maxBytes: 100,
      credentials: { username: 'reader', password: 'secret' },
    });

    await expect(pulled).rejects.toMatchObject({
      name: 'ClientError',
      code: 'FETCH_FAILED',
      message: expect.stringContaining('401'),
    });
    expect(asked).toEqual([]);
  });
});

describe('when a registry asks for Basic credentials (a node:http stand-in)', () => {
  const bytes = patternBytes(100);
  const digest = sha256(bytes);
  const expected = `Basic ${Buffer.from('reader:secret').toString('base64')}`;
  let host: string;
  beforeAll(async () => {
    host = await server((request, response) => {
      if (request.headers.authorization === expected) {
        response.writeHead(200);
        response.end(bytes);
      } else {
        response.writeHead(401, { 'www-authenticate': 'Basic realm="stand-in"' });
        response.end();
      }
    });
  });

  it('sends them when given', async () => {
    const download = await fetcher.ociBlob({
      reference: `${host}/acme/lens`,
      digest,
      maxBytes: 100,
      credentials: { username: 'reader', password: 'secret' },
    });
    expect(Buffer.from(await collect(download.body)).equals(Buffer.from(bytes))).toBe(true);
  });

  it('answers CREDENTIALS_MISSING when none are given', async () => {
    await expect(
      fetcher.ociBlob({ reference: `${host}/acme/lens`, digest, maxBytes: 100 }),
    ).rejects.toMatchObject({
      name: 'ClientError',
      code: 'CREDENTIALS_MISSING',
    });
  });
});

describe('when a registry stand-in (node:http) misbehaves', () => {
  const bytes = patternBytes(4096);
  const digest = sha256(bytes);
  let host: string;
  let failuresLeft = 0;
  beforeAll(async () => {
    host = await server((request, response) => {
      if (request.url?.startsWith('/v2/chunked/')) {
        // No content-length: only the count of what arrives can cut it off.
        response.writeHead(200);
        response.write(bytes.subarray(0, 2048));
        response.end(bytes.subarray(2048));
      } else if (request.url?.startsWith('/v2/flaky/')) {
        if (failuresLeft-- > 0) {
          response.writeHead(503);
          response.end();
        } else {
          response.writeHead(200);
          response.end(bytes);
        }
      } else if (request.url?.startsWith('/v2/cleartext-realm/')) {
        response.writeHead(401, {
          'www-authenticate': 'Bearer realm="http://auth.example/token",service="s"',
        });
        response.end();
      } else {
        response.writeHead(401, { 'www-authenticate': 'Negotiate' });
        response.end();
      }
    });
  });

  it('cuts off a body without content-length as soon as it passes maxBytes', async () => {
    const download = await fetcher.ociBlob({ reference: `${host}/chunked`, digest, maxBytes: 3000 });
    expect(download.size).toBeUndefined();
    await expect(collect(download.body)).rejects.toMatchObject({
      name: 'ClientError',
      code: 'RESPONSE_TOO_LARGE',
    });
  });

  it('retries a 5xx', async () => {
    failuresLeft = 2;
    const download = await fetcher.ociBlob({
      reference: `${host}/flaky`,
      digest,
      maxBytes: bytes.byteLength,
    });
    expect(Buffer.from(await collect(download.body)).equals(Buffer.from(bytes))).toBe(true);
    expect(failuresLeft).toBe(-1);
  });

  it('fails with FETCH_FAILED, naming the attempts, when the 5xx persists', async () => {
    failuresLeft = 10;
    await expect(
      fetcher.ociBlob({ reference: `${host}/flaky`, digest, maxBytes: bytes.byteLength }),
    ).rejects.toMatchObject({
      name: 'ClientError',
      code: 'FETCH_FAILED',
      message: expect.stringContaining('HTTP 503 (3 attempts)'),
    });
  });

  it('will not ask a token of a realm over cleartext http: off this machine', async () => {
    await expect(
      fetcher.ociBlob({
        reference: `${host}/cleartext-realm`,
        digest,
        maxBytes: 10,
        credentials: REGISTRY_USER,
      }),
    ).rejects.toMatchObject({
      name: 'ClientError',
      code: 'FETCH_FAILED',
      message: expect.stringContaining('http: is allowed only for loopback hosts'),
    });
  });

  it('fails with FETCH_FAILED, quoting the header, on a 401 without a Bearer or Basic challenge', async () => {
    await expect(fetcher.ociBlob({ reference: `${host}/other`, digest, maxBytes: 10 })).rejects.toMatchObject(
      {
        name: 'ClientError',
        code: 'FETCH_FAILED',
        message: expect.stringContaining('(WWW-Authenticate: "Negotiate")'),
      },
    );
  });

  it('refuses credentials that Basic or a header cannot carry, before any request', async () => {
    for (const credentials of [
      { username: 'a:b', password: 'x' },
      { username: 'a', password: 'x\r\nx-injected: 1' },
    ]) {
      await expect(
        fetcher.ociBlob({ reference: `${host}/other`, digest, maxBytes: 10, credentials }),
      ).rejects.toMatchObject({ name: 'ClientError', code: 'CLIENT_CONFIG_INVALID' });
    }
  });
});

describe('when a registry stand-in (node:http) pads a body with compressed blocks that decode to nothing', () => {
  // 16 decoded bytes in 64 MiB (support/streams.ts) for a blob, manifest or token capped far below.
  let sent = 0;
  let host: string;
  /** The padding, gzip-encoded whatever the request's Accept-Encoding said. */
  const pad = (response: http.ServerResponse, type: string) =>
    writePaddedGzip(response, type, (bytes) => {
      sent += bytes;
    });
  beforeAll(async () => {
    host = await server((request, response) => {
      if (request.url?.startsWith('/token')) void pad(response, 'application/json');
      else if (request.url?.startsWith('/v2/tokened/')) {
        response.writeHead(401, {
          'www-authenticate': `Bearer realm="http://${host}/token",service="padded"`,
        });
        response.end();
      } else if (request.url?.includes('/manifests/')) void pad(response, OCI_MANIFEST);
      else void pad(response, 'application/octet-stream');
    });
  });

  const wireRefusal = {
    name: 'ClientError',
    code: 'RESPONSE_TOO_LARGE',
    message: expect.stringMatching(/bytes had come on the wire \(gzip\), more than such a body takes/),
  };

  it('drops a blob once more came on the wire than its size can take', async () => {
    sent = 0;
    const download = await fetcher.ociBlob({
      reference: `${host}/padded`,
      digest: MISSING,
      maxBytes: 1024,
    });
    await expect(collect(download.body)).rejects.toMatchObject(wireRefusal);
    expect(sent).toBeLessThan(16 * 1024 * 1024);
  });

  it('drops a manifest, and a token service answer, the same way', async () => {
    sent = 0;
    await expect(fetcher.ociManifest({ reference: `${host}/padded:1.0.0` })).rejects.toMatchObject({
      name: 'ClientError',
      code: 'RESPONSE_TOO_LARGE',
    });
    expect(sent).toBeLessThan(16 * 1024 * 1024);
    sent = 0;
    await expect(
      fetcher.ociBlob({ reference: `${host}/tokened`, digest: MISSING, maxBytes: 1024 }),
    ).rejects.toMatchObject({ name: 'ClientError', code: 'RESPONSE_TOO_LARGE' });
    expect(sent).toBeLessThan(16 * 1024 * 1024);
  });
});

describe('when an artifact is on Docker Hub (node:https stand-ins for its hosts, through a proxy)', () => {
  // Hub's own shape: its API at registry-1.docker.io (docker.io answers no /v2/), a Bearer challenge naming
  // auth.docker.io's realm and service registry.docker.io even for a public pull, blobs redirected to a CDN.
  const bytes = patternBytes(2048);
  const digest = sha256(bytes);
  const TOKEN = 'hub-anonymous-or-not';
  const seen: { host: string; url: string; authorization?: string }[] = [];
  let ca: TestCa;
  let proxy: TestProxy;

  beforeAll(async () => {
    ca = makeTestCa('docker-hub', {
      names: ['registry-1.docker.io', 'auth.docker.io', 'docker.io', 'index.docker.io', 'cdn.docker.example'],
    });
    const hub = https.createServer(ca.tls, (request, response) => {
      const host = request.headers.host ?? '';
      const url = request.url ?? '';
      const { authorization } = request.headers;
      seen.push({ host, url, ...(authorization === undefined ? {} : { authorization }) });
      if (host === 'auth.docker.io' && url.startsWith('/token?')) {
        response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: TOKEN }));
      } else if (host === 'cdn.docker.example') {
        response.writeHead(200, { 'content-length': String(bytes.byteLength) }).end(bytes);
      } else if (host !== 'registry-1.docker.io' || !url.startsWith('/v2/library/lens/')) {
        response.writeHead(404).end();
      } else if (authorization !== `Bearer ${TOKEN}`) {
        response
          .writeHead(401, {
            'www-authenticate':
              'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/lens:pull"',
          })
          .end();
      } else if (url === `/v2/library/lens/blobs/${digest}`) {
        response.writeHead(307, { location: `https://cdn.docker.example/registry-v2/${digest}` }).end();
      } else {
        response.writeHead(404).end();
      }
    });
    servers.push(hub);
    await new Promise<void>((resolve) => hub.listen(0, '127.0.0.1', resolve));
    const port = (hub.address() as AddressInfo).port;
    proxy = await startProxy({ route: () => `127.0.0.1:${port}` });
  });

  afterAll(async () => {
    await proxy.close();
    ca.remove();
  });

  /** A blob pulled by `reference` with a fetcher of its own (no token held over), and what Hub saw. */
  async function pull(reference: string, credentials?: typeof REGISTRY_USER) {
    const own = createHttpFetcher({ env: { HTTPS_PROXY: proxy.url }, retryDelayMs: 1 });
    seen.length = 0;
    proxy.tunnels.length = 0;
    try {
      const download = await own.ociBlob({
        reference,
        digest,
        maxBytes: bytes.byteLength,
        ca: ca.caPem,
        ...(credentials === undefined ? {} : { credentials }),
      });
      return {
        body: Buffer.from(await collect(download.body)),
        seen: [...seen],
        tunnels: [...proxy.tunnels],
      };
    } finally {
      await own.close();
    }
  }

  it("pulls an official name from registry-1.docker.io's library/ under each of Hub's spellings, with an anonymous token", async () => {
    for (const reference of [
      'docker.io/lens:1.0.0',
      'index.docker.io/lens',
      'registry-1.docker.io/lens',
      'Docker.IO/library/lens:1.0.0',
    ]) {
      const pulled = await pull(reference);
      expect(pulled.body.equals(Buffer.from(bytes)), reference).toBe(true);
      expect(new Set(pulled.tunnels), reference).toEqual(
        new Set(['registry-1.docker.io:443', 'auth.docker.io:443', 'cdn.docker.example:443']),
      );
      expect(
        pulled.seen.map(({ host, url, authorization }) => [host, url, authorization]),
        reference,
      ).toEqual([
        ['registry-1.docker.io', `/v2/library/lens/blobs/${digest}`, undefined],
        [
          'auth.docker.io',
          '/token?service=registry.docker.io&scope=repository%3Alibrary%2Flens%3Apull',
          undefined,
        ],
        ['registry-1.docker.io', `/v2/library/lens/blobs/${digest}`, `Bearer ${TOKEN}`],
        ['cdn.docker.example', `/registry-v2/${digest}`, undefined],
      ]);
    }
  });

  it('sends the credentials docker login keeps to the token service alone, as Basic', async () => {
    const pulled = await pull('docker.io/lens:1.0.0', REGISTRY_USER);
    expect(pulled.body.equals(Buffer.from(bytes))).toBe(true);
    const basic = `Basic ${Buffer.from(`${REGISTRY_USER.username}:${REGISTRY_USER.password}`).toString('base64')}`;
    expect(pulled.seen.map(({ host, authorization }) => [host, authorization])).toEqual([
      ['registry-1.docker.io', undefined],
      ['auth.docker.io', basic],
      ['registry-1.docker.io', `Bearer ${TOKEN}`],
      ['cdn.docker.example', undefined],
    ]);
  });
});
