/**
 * The client and pre-compressed documents: it asks for brotli and gzip, decodes before it checks a
 * document's digest (the snapshot's digest is the uncompressed bytes'), refuses a variant that decodes to
 * other bytes, and cuts off a compression bomb at the document's cap with a stable code.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRegistryServer, listenRegistryServer } from '../../cli/local/server.ts';
import { createHttpFetcher } from '../../client/fetcher.ts';
import { encodedVariantKey, SEARCH_KEY } from '../../index-builder/layout.ts';
import { processSubmissions } from '../../index-builder/pipeline/index.ts';
import type { Store, StoredObject } from '../../index-builder/store.ts';
import { httpClient } from '../support/client.ts';
import { makeBundle, makeRegistry, type TestRegistry, validManifest } from '../support/fixtures.ts';
import { writePaddedGzip } from '../support/streams.ts';

let registry: TestRegistry;
let base: string;
let close: () => Promise<void>;
let root: string;
/** Keys whose bodies the server read, in order: which variant it chose to send. */
const read: string[] = [];

/**
 * The site as the server reads it, recording each key whose body it reads. Not its heads: it heads a
 * document to hold a variant to its digest, which sends nothing.
 */
function recording(site: Store): Store {
  return {
    get: (key) => site.get(key),
    head: (key) => site.head(key),
    getStream: (key) => {
      read.push(key);
      return site.getStream(key);
    },
    put: (key, body, options) => site.put(key, body, options),
    putStream: (key, body, options) => site.putStream(key, body, options),
    delete: (key, options) => site.delete(key, options),
    list: (prefix) => site.list(prefix),
  };
}

beforeAll(async () => {
  registry = await makeRegistry();
  const context = { ...registry.context, compressionThresholdBytes: 100 };
  for (const name of ['demo-plugin', 'other-tool']) {
    const keys = await registry.submit(await makeBundle({ manifest: validManifest({ name }) }));
    await processSubmissions(context, keys);
  }
  const listening = await listenRegistryServer(createRegistryServer({ site: recording(registry.site) }), 0);
  base = listening.url;
  close = listening.close;
  root = await mkdtemp(join(tmpdir(), 'plugindex-client-encoding-'));
});

afterAll(async () => {
  await close();
  await rm(root, { recursive: true, force: true });
});

let machines = 0;
async function search(terms: string[]) {
  machines += 1;
  const home = join(root, `m${machines}`);
  const client = httpClient(home);
  try {
    await client.addRegistry({ name: 'test', url: base, pin: { armored: registry.registryKey.publicKey } });
    return await client.search({ terms });
  } finally {
    await client.close();
  }
}

/**
 * Runs `run` with the search document's brotli variant holding `edit` of the document's text (and, with
 * `documentToo`, the document itself holding it as well), as a publish that died between its writes or a
 * tampering copy leaves them; both are put back after.
 */
async function withSearchEdited(
  edit: (text: string) => string,
  run: () => Promise<void>,
  documentToo = false,
): Promise<void> {
  const key = encodedVariantKey(SEARCH_KEY, 'br');
  const original = registry.site.objects.get(key) as StoredObject;
  const originalDocument = registry.site.objects.get(SEARCH_KEY) as StoredObject;
  const edited = new TextEncoder().encode(edit(new TextDecoder().decode(originalDocument.body)));
  const body = brotliCompressSync(edited);
  registry.site.objects.set(key, { ...original, body, size: body.byteLength, etag: '"edited"' });
  if (documentToo)
    registry.site.objects.set(SEARCH_KEY, {
      ...originalDocument,
      body: edited,
      size: edited.byteLength,
      etag: '"edited-document"',
    });
  try {
    await run();
  } finally {
    registry.site.objects.set(key, original);
    registry.site.objects.set(SEARCH_KEY, originalDocument);
  }
}

describe('when a registry serves its documents compressed', () => {
  it('reads the brotli variant, decodes it and checks it against the snapshot', async () => {
    read.length = 0;
    const hits = await search(['demo-plugin']);

    expect(hits.map((h) => h.entry.name)).toEqual(['demo-plugin']);
    expect(read).toContain(encodedVariantKey(SEARCH_KEY, 'br'));
  });

  // A publish writes the variants before their document: one that died between them left a variant of the
  // next generation beside the document the snapshot still binds. Of a document that grew (a version more,
  // an advisory), the variant is larger than the size the snapshot lists, and is cut off at that size
  // before its digest is checked.
  it.each([
    ['to other bytes than the snapshot binds', 'demo-plugim'],
    ['to more bytes than the snapshot lists', 'demo-plugin-grown-since'],
  ])('reads the document itself when a variant decodes %s', async (_, edited) => {
    read.length = 0;
    await withSearchEdited(
      (text) => text.replace('demo-plugin', edited),
      async () => {
        const hits = await search(['demo-plugin']);

        expect(hits.map((h) => h.entry.name)).toEqual(['demo-plugin']);
        expect(read.filter((k) => k.startsWith(SEARCH_KEY))).toEqual([
          encodedVariantKey(SEARCH_KEY, 'br'),
          SEARCH_KEY,
        ]);
      },
    );
  });

  it('refuses a variant and a document that both hold other bytes than the snapshot binds', async () => {
    // A guard: refused so before a variant was asked for again as identity, and the second answer is checked
    // as the first was.
    await withSearchEdited(
      (text) => text.replace('demo-plugin', 'demo-plugim'),
      async () => {
        await expect(search(['demo'])).rejects.toMatchObject({
          name: 'TrustError',
          code: 'DOCUMENT_MISMATCH',
        });
      },
      true,
    );
    expect((await search(['demo-plugin'])).length).toBe(1);
  });
});

describe('when a response is a compression bomb', () => {
  it('asks for br and gzip, and cuts the decoded body off at the cap (RESPONSE_TOO_LARGE)', async () => {
    // 64 MiB of zeros in about 64 KiB of gzip, for a document capped at 1 MiB.
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024));
    const seen: http.IncomingHttpHeaders[] = [];
    const server = http.createServer((request, response) => {
      seen.push(request.headers);
      response.writeHead(200, { 'content-encoding': 'gzip', 'content-length': bomb.byteLength });
      response.end(bomb);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const fetcher = createHttpFetcher({ env: {}, retries: 0 });
    try {
      const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const endpoint = { name: 'bomb', bases: [origin], timeoutMs: 10_000 };

      const refused = fetcher.document(endpoint, { path: 'index.json', maxBytes: 1024 * 1024 });

      await expect(refused).rejects.toMatchObject({
        name: 'ClientError',
        code: 'RESPONSE_TOO_LARGE',
        message: expect.stringContaining('decompressed from gzip'),
      });
      expect(seen[0]?.['accept-encoding']).toBe('br, gzip');

      // With the digest known, the document itself is asked for once; a bomb sent for that too is refused.
      const known = fetcher.document(endpoint, {
        path: 'index.json',
        maxBytes: 1024 * 1024,
        sha256: 'a'.repeat(64),
      });
      await expect(known).rejects.toMatchObject({ name: 'ClientError', code: 'RESPONSE_TOO_LARGE' });
      expect(seen.slice(1).map((headers) => headers['accept-encoding'])).toEqual(['br, gzip', 'identity']);
    } finally {
      await fetcher.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('drops a body that decodes to next to nothing however long it runs, counting what came on the wire', async () => {
    // 16 decoded bytes in 64 MiB (support/streams.ts) for a document capped at 1 KiB.
    let sent = 0;
    const server = http.createServer((_request, response) => {
      void writePaddedGzip(response, 'application/json', (bytes) => {
        sent += bytes;
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const fetcher = createHttpFetcher({ env: {}, retries: 0 });
    try {
      const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const endpoint = { name: 'padded', bases: [origin], timeoutMs: 10_000 };
      const refused = fetcher.document(endpoint, { path: 'index.json', maxBytes: 1024 });
      await expect(refused).rejects.toMatchObject({
        name: 'ClientError',
        code: 'RESPONSE_TOO_LARGE',
        message: expect.stringMatching(/bytes had come on the wire \(gzip\), more than such a body takes/),
      });
      expect(sent).toBeLessThan(16 * 1024 * 1024);
    } finally {
      await fetcher.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

/** A server that answers every request with `body` in `encoding`; its origin and how to stop it. */
async function encodedServer(
  encoding: string,
  body: Uint8Array,
): Promise<{ readonly origin: string; readonly stop: () => Promise<void> }> {
  const server = http.createServer((_request, response) => {
    response.writeHead(200, { 'content-encoding': encoding, 'content-length': body.byteLength });
    response.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('when a response comes in content codings the client did not ask for', () => {
  it('refuses stacked codings before decoding them, however little came on the wire', async () => {
    // 16 MiB of empty stored deflate blocks in a gzip member (they decode to nothing), in about a hundred
    // bytes of brotli: the wire count sees the brotli, the cap sees nothing, and each layer could go on
    // for gigabytes until the timeout.
    const empty = Buffer.from([0x00, 0x00, 0x00, 0xff, 0xff]);
    const gzipHeader = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff]);
    const inner = Buffer.concat([gzipHeader, Buffer.alloc(16 * 1024 * 1024 - 1, empty)]);
    const server = await encodedServer('gzip, br', brotliCompressSync(inner));
    const fetcher = createHttpFetcher({ env: {}, retries: 0 });
    try {
      const endpoint = { name: 'stacked', bases: [server.origin], timeoutMs: 10_000 };

      const refused = fetcher.document(endpoint, { path: 'index.json', maxBytes: 1024 });
      const download = fetcher.download(endpoint, { url: `${server.origin}/a.tar.gz`, maxBytes: 1024 });

      await expect(refused).rejects.toMatchObject({
        name: 'ClientError',
        code: 'FETCH_FAILED',
        message: expect.stringContaining('2 stacked content codings'),
      });
      await expect(download).rejects.toMatchObject({
        name: 'ClientError',
        code: 'FETCH_FAILED',
        message: expect.stringContaining('2 stacked content codings'),
      });
    } finally {
      await fetcher.close();
      await server.stop();
    }
  });

  it('takes the next mirror for a download whose first mirror answers in stacked codings', async () => {
    const artifact = Buffer.from('artifact bytes');
    const stacked = await encodedServer('gzip, gzip', gzipSync(gzipSync(artifact)));
    const plain = await encodedServer('identity', artifact);
    const fetcher = createHttpFetcher({ env: {}, retries: 0 });
    try {
      const endpoint = { name: 'mirrored', bases: [stacked.origin, plain.origin], timeoutMs: 10_000 };

      const download = await fetcher.download(endpoint, {
        url: `${stacked.origin}/a.tar.gz`,
        maxBytes: 1024,
      });
      const chunks: Uint8Array[] = [];
      for await (const chunk of download.body) chunks.push(chunk);

      expect(download.url).toBe(`${plain.origin}/a.tar.gz`);
      expect(Buffer.concat(chunks).toString()).toBe('artifact bytes');
    } finally {
      await fetcher.close();
      await stacked.stop();
      await plain.stop();
    }
  });

  it('refuses a document in a coding other than the brotli and gzip it asked for', async () => {
    const server = await encodedServer('deflate', deflateSync(Buffer.from('{"plugins":[]}')));
    const fetcher = createHttpFetcher({ env: {}, retries: 0 });
    try {
      const endpoint = { name: 'deflate', bases: [server.origin], timeoutMs: 10_000 };

      const refused = fetcher.document(endpoint, { path: 'search.json', maxBytes: 1024 });

      await expect(refused).rejects.toMatchObject({
        name: 'ClientError',
        code: 'FETCH_FAILED',
        message: expect.stringContaining('a content coding not asked for'),
      });
    } finally {
      await fetcher.close();
      await server.stop();
    }
  });
});
