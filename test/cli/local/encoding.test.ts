/**
 * Accept-Encoding negotiation in the local server, over real sockets, on a tree the pipeline published into
 * the filesystem store (whose sidecars keep each variant's Content-Encoding): the index documents come
 * pre-compressed to a client that accepts it, brotli first, and as they are to one that does not or
 * refuses; a document that is small or has no variants is never compressed.
 */
import { cp, mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { brotliCompressSync, brotliDecompressSync, gunzipSync, constants as zlibConstants } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsStore } from '../../../adapters/fs-store.ts';
import { createRegistryServer, listenRegistryServer } from '../../../cli/local/server.ts';
import { sha256Hex } from '../../../index-builder/digest.ts';
import { processSubmissions } from '../../../index-builder/pipeline/index.ts';
import { encodedRoute, negotiateEncoding } from '../../../index-builder/serving.ts';
import { CACHE_MUTABLE } from '../../../index-builder/store.ts';
import { makeBundle, makeRegistry, validManifest } from '../../support/fixtures.ts';
import { rawRequest } from '../../support/raw-http.ts';

let folder: string;
const servers: { base: string; close: () => Promise<void>; site: FsStore }[] = [];
let large: (typeof servers)[number];
let small: (typeof servers)[number];

async function publishedServer(threshold?: number) {
  const registry = await makeRegistry();
  const site = new FsStore(await mkdtemp(path.join(folder, 'site-')));
  const context = {
    ...registry.context,
    site,
    ...(threshold === undefined ? {} : { compressionThresholdBytes: threshold }),
  };
  for (const name of ['demo-plugin', 'other-plugin']) {
    const keys = await registry.submit(await makeBundle({ manifest: validManifest({ name }) }));
    await processSubmissions(context, keys);
  }
  const listening = await listenRegistryServer(createRegistryServer({ site }), 0);
  const server = { base: listening.url, close: listening.close, site };
  servers.push(server);
  return server;
}

beforeAll(async () => {
  folder = await mkdtemp(path.join(tmpdir(), 'plugindex-encoding-'));
  large = await publishedServer(100);
  small = await publishedServer();
});

afterAll(async () => {
  for (const server of servers) await server.close();
  await rm(folder, { recursive: true, force: true });
});

async function document(server: (typeof servers)[number], key: string): Promise<Buffer> {
  return Buffer.from((await server.site.get(key))?.body as Uint8Array);
}

describe('when a client asks for an index document over the threshold', () => {
  it('sends brotli when both are accepted, decoding to the document', async () => {
    const answer = await rawRequest(large.base, '/index.json', { 'accept-encoding': 'gzip, deflate, br' });

    expect(answer.status).toBe(200);
    expect(answer.headers['content-encoding']).toBe('br');
    expect(answer.headers.vary).toBe('Accept-Encoding');
    expect(answer.headers['content-type']).toBe('application/json');
    expect(Number(answer.headers['content-length'])).toBe(answer.body.byteLength);
    expect(brotliDecompressSync(answer.body)).toEqual(await document(large, 'index.json'));
  });

  it('sends gzip to a client that accepts only gzip, or refuses brotli with q=0', async () => {
    for (const header of ['gzip', 'br;q=0, gzip', 'gzip;q=0.5, br;q=0.4', 'br;q=0, *']) {
      const answer = await rawRequest(large.base, '/search.json', { 'accept-encoding': header });
      expect(answer.headers['content-encoding'], header).toBe('gzip');
      expect(gunzipSync(answer.body), header).toEqual(await document(large, 'search.json'));
    }
  });

  it('sends the document as it is without the header, for identity, or when both codings are refused', async () => {
    const expected = await document(large, 'index.yaml');
    for (const header of [undefined, '', 'identity', 'gzip;q=0, br;q=0', 'deflate', 'gzip;q=0.5, identity']) {
      const answer = await rawRequest(
        large.base,
        '/index.yaml',
        header === undefined ? {} : { 'accept-encoding': header },
      );
      expect(answer.headers['content-encoding'], String(header)).toBeUndefined();
      expect(answer.headers.vary, String(header)).toBe('Accept-Encoding');
      expect(answer.body, String(header)).toEqual(expected);
    }
  });

  it('negotiates the spec endpoint /plugins on Accept and Accept-Encoding both, and HEAD alike', async () => {
    const answer = await rawRequest(large.base, '/plugins', { 'accept-encoding': 'br' }, 'HEAD');

    expect(answer.status).toBe(200);
    expect(answer.headers['content-encoding']).toBe('br');
    expect(answer.headers.vary).toBe('Accept, Accept-Encoding');
    const variant = await large.site.head('index.json.br');
    expect(Number(answer.headers['content-length'])).toBe(variant?.size);
    expect(answer.headers.etag).toBe(variant?.etag);
  });

  it('serves falcoctl/index.yaml encoded too', async () => {
    const answer = await rawRequest(large.base, '/falcoctl/index.yaml', { 'accept-encoding': 'gzip' });
    expect(answer.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(answer.body)).toEqual(await document(large, 'falcoctl/index.yaml'));
  });
});

describe('when the document is small or has no variants', () => {
  it('never compresses an index document under the threshold', async () => {
    const answer = await rawRequest(small.base, '/index.json', { 'accept-encoding': 'br, gzip' });

    expect(answer.headers['content-encoding']).toBeUndefined();
    expect(answer.headers.vary).toBe('Accept-Encoding');
    expect(answer.body).toEqual(await document(small, 'index.json'));
  });

  it('never compresses a signature or the snapshot', async () => {
    for (const pathname of ['/index.json.asc', '/snapshot.json']) {
      const answer = await rawRequest(large.base, pathname, { 'accept-encoding': 'br, gzip' });
      expect(answer.status, pathname).toBe(200);
      expect(answer.headers['content-encoding'], pathname).toBeUndefined();
      expect(answer.headers.vary ?? '', pathname).not.toContain('Accept-Encoding');
    }
  });

  it('compresses a plugin document only over the threshold (plugin-document-encoding.test.ts)', async () => {
    const answer = await rawRequest(small.base, '/plugins/demo-plugin', { 'accept-encoding': 'br, gzip' });
    expect(answer.status).toBe(200);
    expect(answer.headers['content-encoding']).toBeUndefined();
    expect(answer.body).toEqual(await document(small, 'plugins/demo-plugin/index.json'));
  });

  it('serves the document itself while a registry published before variants has none', async () => {
    await large.site.delete('search.json.br');
    const answer = await rawRequest(large.base, '/search.json', { 'accept-encoding': 'br' });

    expect(answer.status).toBe(200);
    expect(answer.headers['content-encoding']).toBeUndefined();
    expect(answer.body).toEqual(await document(large, 'search.json'));
  });
});

describe('when reading Accept-Encoding', () => {
  it.each([
    [undefined, undefined],
    ['', undefined],
    ['br, gzip', 'br'],
    ['gzip, br', 'br'],
    ['GZIP', 'gzip'],
    ['x-gzip', 'gzip'],
    ['br;q=0.5, gzip;q=0.8', 'gzip'],
    ['br;q=0', undefined],
    ['*', 'br'],
    ['*;q=0', undefined],
    ['*;q=0.1, identity', undefined],
    ['gzip;q=0.5', 'gzip'],
    ['identity;q=0.5, gzip', 'gzip'],
    ['identity, br;q=0.9', undefined],
    ['br;q=2, gzip', 'gzip'],
    ['br;q=abc', undefined],
    ['deflate, zstd', undefined],
  ] as const)('reads %j as %j', (header, expected) => {
    expect(negotiateEncoding(header)).toBe(expected);
  });

  it('routes only the index documents to variants', () => {
    expect(encodedRoute('index.json', 'br')).toEqual({ key: 'index.json.br', negotiated: true });
    expect(encodedRoute('index.json', 'identity')).toEqual({ key: 'index.json', negotiated: true });
    expect(encodedRoute('plugins/a/index.json', 'br')).toEqual({
      key: 'plugins/a/index.json',
      negotiated: false,
    });
  });
});

describe('when a publish rewrites a compressed variant while the server serves it', () => {
  it('never sends the variant without its Content-Encoding', async () => {
    // The store renames a put's sidecar in before its body: a read between the two, or one holding the
    // former file once both are in, finds a sidecar that does not describe its file.
    const document = (n: number) =>
      Buffer.from(
        JSON.stringify({ generation: n, plugins: Array.from({ length: 2000 }, (_, i) => `p-${n}-${i}`) }),
      );
    const site = new FsStore(await mkdtemp(path.join(folder, 'race-')));
    // Each put other bytes (another quality and window) of the one document, recording its digest as the
    // pipeline does: a variant of other bytes than its document is never sent (variant-check.ts).
    const put = (n: number) =>
      site.put(
        'index.json.br',
        brotliCompressSync(document(0), {
          params: {
            [zlibConstants.BROTLI_PARAM_QUALITY]: 1 + (n % 11),
            [zlibConstants.BROTLI_PARAM_LGWIN]: 16 + (Math.floor(n / 11) % 9),
          },
        }),
        {
          contentType: 'application/json',
          cacheControl: CACHE_MUTABLE,
          contentEncoding: 'br',
          decodedSha256: sha256Hex(document(0)),
        },
      );
    await put(0);
    await site.put('index.json', document(0), {
      contentType: 'application/json',
      cacheControl: CACHE_MUTABLE,
    });
    const listening = await listenRegistryServer(createRegistryServer({ site }), 0);
    let writing = true;
    const writer = (async () => {
      for (let n = 1; n <= 200; n++) await put(n);
      writing = false;
    })();
    const seen = new Map<string, number>();
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    const readers = Array.from({ length: 4 }, async () => {
      while (writing) {
        const read = await new Promise<{ res: http.IncomingMessage; body: Buffer }>((resolve, reject) => {
          const req = http.request(
            `${listening.url}/index.json`,
            { agent, headers: { 'accept-encoding': 'br' } },
            (res) => {
              const chunks: Buffer[] = [];
              res.on('data', (chunk: Buffer) => chunks.push(chunk));
              res.on('end', () => resolve({ res, body: Buffer.concat(chunks) }));
            },
          );
          req.on('error', reject);
          req.end();
        });
        // A read that meets the sidecar not yet describing its file is answered with the document itself
        // (no coding, the JSON bytes), as a variant whose coding the store does not know is: never with the
        // variant's bytes under no coding, which is what the label below would then show as unreadable.
        const { res: answer, body } = read;
        const coding =
          answer.headers['content-encoding'] ?? (readsAsJson(body) ? '(none, the document)' : '(none)');
        const label = `${answer.statusCode} ${coding} ${answer.headers['content-type']}`;
        seen.set(label, (seen.get(label) ?? 0) + 1);
      }
    });
    await writer;
    await Promise.all(readers);
    agent.destroy();
    await listening.close();
    expect([...seen.keys()].filter((label) => label !== '200 (none, the document) application/json')).toEqual(
      ['200 br application/json'],
    );
    expect(seen.get('200 br application/json')).toBeGreaterThan(20);
  }, 60_000);
});

/** Whether `body` is JSON as it is (a document's own bytes, not a compressed variant's). */
function readsAsJson(body: Buffer): boolean {
  try {
    JSON.parse(body.toString('utf8'));
    return true;
  } catch {
    return false;
  }
}

describe("when the store no longer knows a variant's coding", () => {
  it('sends the document itself, never a compressed variant as the document, after the registry folder is copied', async () => {
    // Prepare: a registry folder copied as a backup is restored, or moved to another disk: every file is
    // another inode, so no sidecar describes its file, and a variant is then what its key implies
    // (`search.json.gz`: application/gzip, no coding).
    const copy = await mkdtemp(path.join(folder, 'copied-'));
    await cp(large.site.root, copy, { recursive: true });
    const site = new FsStore(copy);
    const listening = await listenRegistryServer(createRegistryServer({ site }), 0);
    try {
      for (const [pathname, key] of [
        ['/search.json', 'search.json'],
        ['/plugins', 'index.json'],
        ['/falcoctl/index.yaml', 'falcoctl/index.yaml'],
      ] as const) {
        for (const accepted of ['gzip', 'br', 'br, gzip']) {
          // Act
          const answer = await rawRequest(listening.url, pathname, { 'accept-encoding': accepted });

          // Assess: the document, as it is or in the coding the answer names.
          const coding = answer.headers['content-encoding'];
          const body =
            coding === 'br'
              ? brotliDecompressSync(answer.body)
              : coding === 'gzip'
                ? gunzipSync(answer.body)
                : answer.body;
          expect(body, `${pathname} ${accepted}`).toEqual(await document(large, key));
          expect(answer.headers['content-type'], `${pathname} ${accepted}`).toBe(
            (await large.site.head(key))?.contentType,
          );
        }
      }
    } finally {
      await listening.close();
    }
  });
});

describe('when a client sends preconditions for a document with compressed variants (RFC 9110 §13.2.2)', () => {
  /** The stored ETag of `key`, as the filesystem store gives it. */
  const etagOf = async (server: (typeof servers)[number], key: string): Promise<string> =>
    (await server.site.head(key))?.etag as string;

  it('gives each coding of a document its own strong ETag, the stored object sent', async () => {
    const sent: Record<string, string | undefined> = {};
    for (const coding of ['identity', 'br', 'gzip']) {
      const answer = await rawRequest(large.base, '/index.json', { 'accept-encoding': coding }, 'HEAD');
      sent[coding] = answer.headers.etag;
    }

    expect(sent).toEqual({
      identity: await etagOf(large, 'index.json'),
      br: await etagOf(large, 'index.json.br'),
      gzip: await etagOf(large, 'index.json.gz'),
    });
    expect(new Set(Object.values(sent)).size).toBe(3);
    for (const etag of Object.values(sent)) expect(etag).toMatch(/^"[0-9a-f]{32}"$/);
  });

  it('judges If-Match by the representation sent: a variant by its own tag alone', async () => {
    const identity = await etagOf(large, 'index.json');
    const gzip = await etagOf(large, 'index.json.gz');

    const matched = await rawRequest(large.base, '/index.json', {
      'accept-encoding': 'gzip',
      'if-match': gzip,
    });
    expect(matched.status).toBe(200);
    expect(matched.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(matched.body)).toEqual(await document(large, 'index.json'));

    for (const [accepted, tag] of [
      ['gzip', identity],
      ['br', gzip],
      ['identity', gzip],
    ] as const) {
      const failed = await rawRequest(large.base, '/index.json', {
        'accept-encoding': accepted,
        'if-match': tag,
      });
      expect(failed.status, accepted).toBe(412);
      // As a 404 of a negotiated route: what failed depended on the coding asked for.
      expect(failed.headers.vary, accepted).toBe('Accept-Encoding');
      expect(failed.headers['content-encoding'], accepted).toBeUndefined();
      expect(JSON.parse(failed.body.toString()), accepted).toEqual({ error: 'precondition_failed' });
    }
  });

  it('answers a HEAD of a variant whose If-Unmodified-Since fails 412, with no body', async () => {
    const variant = await large.site.head('index.json.br');
    const before = new Date(Math.floor((variant?.lastModified.getTime() ?? 0) / 1000) * 1000 - 1000);

    const answer = await rawRequest(
      large.base,
      '/index.json',
      { 'accept-encoding': 'br', 'if-unmodified-since': before.toUTCString() },
      'HEAD',
    );

    expect(answer.status).toBe(412);
    expect(answer.body.byteLength).toBe(0);
  });

  it('sends the document under its own tag where its variant holds its bytes uncompressed (under the threshold)', async () => {
    const identity = await etagOf(small, 'index.json');

    const answer = await rawRequest(small.base, '/index.json', {
      'accept-encoding': 'br, gzip',
      'if-match': identity,
    });

    expect(answer.status).toBe(200);
    expect(answer.headers['content-encoding']).toBeUndefined();
    expect(answer.headers.etag).toBe(identity);
  });
});
