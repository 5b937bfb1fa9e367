/**
 * The local server never sends an index document's compressed variant that decodes to other bytes than the
 * document (cli/local/variant-check.ts), over real sockets on a tree the pipeline published into the
 * filesystem store: neither one a run that died between the variants and their document left (it records
 * the digest of the document that never landed), nor one written before variants recorded a digest (it is
 * decoded once, and its answer kept by its ETag). The threshold is lowered so two plugins' documents pass it.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { brotliCompressSync, brotliDecompressSync, gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsStore } from '../../../adapters/fs-store.ts';
import { createRegistryServer, listenRegistryServer } from '../../../cli/local/server.ts';
import { StoreError } from '../../../index-builder/errors.ts';
import { encodedVariantKey, INDEX_JSON_KEY } from '../../../index-builder/layout.ts';
import { type PipelineContext, processSubmissions } from '../../../index-builder/pipeline/index.ts';
import { CACHE_MUTABLE } from '../../../index-builder/store.ts';
import { makeBundle, makeRegistry, type TestRegistry, validManifest } from '../../support/fixtures.ts';
import { rawRequest } from '../../support/raw-http.ts';
import { withMethod } from '../../support/stores.ts';

let folder: string;
let site: FsStore;
let registry: TestRegistry;
let context: PipelineContext;
let base: string;
let close: () => Promise<void>;

beforeAll(async () => {
  folder = await mkdtemp(path.join(tmpdir(), 'plugindex-variant-check-'));
  registry = await makeRegistry();
  site = new FsStore(folder);
  context = { ...registry.context, site, compressionThresholdBytes: 100 };
  for (const name of ['demo-plugin', 'other-plugin']) {
    const keys = await registry.submit(await makeBundle({ manifest: validManifest({ name }) }));
    await processSubmissions(context, keys);
  }
  const listening = await listenRegistryServer(createRegistryServer({ site }), 0);
  base = listening.url;
  close = listening.close;
});

afterAll(async () => {
  await close();
  await rm(folder, { recursive: true, force: true });
});

async function stored(key: string): Promise<Buffer> {
  return Buffer.from((await site.get(key))?.body as Uint8Array);
}

/** `/index.json` as a client accepting either coding is sent it, and each variant asked for by name. */
async function served() {
  return {
    negotiated: await rawRequest(base, `/${INDEX_JSON_KEY}`, { 'accept-encoding': 'br, gzip' }),
    gzipOnly: await rawRequest(base, `/${INDEX_JSON_KEY}`, { 'accept-encoding': 'gzip' }),
    br: await rawRequest(base, `/${encodedVariantKey(INDEX_JSON_KEY, 'br')}`, { 'accept-encoding': 'br' }),
    gz: await rawRequest(base, `/${encodedVariantKey(INDEX_JSON_KEY, 'gzip')}`, {
      'accept-encoding': 'gzip',
    }),
  };
}

/** The document itself to every client, its variants not there by their names. */
function expectDocumentOnly(answers: Awaited<ReturnType<typeof served>>, document: Buffer): void {
  for (const answer of [answers.negotiated, answers.gzipOnly]) {
    expect(answer.status).toBe(200);
    expect(answer.headers['content-encoding']).toBeUndefined();
    expect(answer.body).toEqual(document);
  }
  expect(answers.br.status).toBe(404);
  expect(answers.gz.status).toBe(404);
}

/** Writes the index document's two variants as a version before decodedSha256 wrote them: no digest. */
async function putUndigested(bytes: Uint8Array): Promise<void> {
  const options = { contentType: 'application/json', cacheControl: CACHE_MUTABLE };
  await site.put(encodedVariantKey(INDEX_JSON_KEY, 'br'), brotliCompressSync(bytes), {
    ...options,
    contentEncoding: 'br',
  });
  await site.put(encodedVariantKey(INDEX_JSON_KEY, 'gzip'), gzipSync(bytes), {
    ...options,
    contentEncoding: 'gzip',
  });
}

describe('when a run died between an index document and its variants', () => {
  it('sends the document itself, never the next generation variants, which are not there by name', async () => {
    // Prepare: a publish whose store fails at index.json, after its variants were written.
    const document = await stored(INDEX_JSON_KEY);
    const dies = withMethod(site, 'put', (put) => async (at, body, options) => {
      if (at === INDEX_JSON_KEY) throw new StoreError('STORE_IO', at, 'the run died here');
      return put(at, body, options);
    });
    const keys = await registry.submit(
      await makeBundle({ manifest: validManifest({ name: 'third-plugin' }) }),
    );
    await expect(processSubmissions({ ...context, site: dies }, keys)).rejects.toMatchObject({
      code: 'STORE_IO',
    });
    expect(await stored(INDEX_JSON_KEY)).toEqual(document);
    const next = brotliDecompressSync(await stored(encodedVariantKey(INDEX_JSON_KEY, 'br')));
    expect(next.toString()).toContain('third-plugin');

    // Act and assess.
    expectDocumentOnly(await served(), document);

    // The retry writes all three again: the variants are sent once more.
    await processSubmissions(context, keys);
    const retried = await served();
    expect(retried.negotiated.headers['content-encoding']).toBe('br');
    expect(brotliDecompressSync(retried.negotiated.body)).toEqual(await stored(INDEX_JSON_KEY));
    expect(gunzipSync(retried.gz.body)).toEqual(await stored(INDEX_JSON_KEY));
  });
});

describe('when a variant was written before variants recorded the digest they decode to', () => {
  it('sends one that decodes to the document, as before', async () => {
    const document = await stored(INDEX_JSON_KEY);
    await putUndigested(document);
    expect((await site.head(encodedVariantKey(INDEX_JSON_KEY, 'br')))?.decodedSha256).toBeUndefined();

    const answers = await served();

    expect(answers.negotiated.headers['content-encoding']).toBe('br');
    expect(brotliDecompressSync(answers.negotiated.body)).toEqual(document);
    expect(answers.gzipOnly.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(answers.gz.body)).toEqual(document);
  });

  it('sends the document itself for one that decodes to other bytes, even after it sent the good one', async () => {
    const document = await stored(INDEX_JSON_KEY);
    await putUndigested(document);
    expect((await served()).negotiated.headers['content-encoding']).toBe('br');
    const other = Buffer.from(document.toString().replace('demo-plugin', 'demo-plugim'));
    expect(other.byteLength).toBe(document.byteLength);

    await putUndigested(other);

    expectDocumentOnly(await served(), document);
  });

  it('sends the document itself for one that decodes past its size, cut off there', async () => {
    const document = await stored(INDEX_JSON_KEY);
    // A grown document's variant, and a bomb: 8 MiB of zeros in a few hundred bytes.
    await putUndigested(Buffer.concat([document, Buffer.from(' ')]));
    expectDocumentOnly(await served(), document);
    await putUndigested(new Uint8Array(8 * 1024 * 1024));
    expectDocumentOnly(await served(), document);
  });
});

describe('when an undigested variant decodes to far more than its document', () => {
  it('stops reading it once its decoding passes the document size', async () => {
    // Prepare: a gzip variant of 4 MiB of random bytes (as large compressed as decoded), counting what the
    // decoding reads of it.
    const document = await stored(INDEX_JSON_KEY);
    const variant = encodedVariantKey(INDEX_JSON_KEY, 'gzip');
    const compressed = gzipSync(randomBytes(4 * 1024 * 1024), { level: 1 });
    await site.put(variant, compressed, {
      contentType: 'application/json',
      cacheControl: CACHE_MUTABLE,
      contentEncoding: 'gzip',
    });
    let read = 0;
    const counting = new Proxy(site, {
      get(target, property) {
        if (property === 'getStream')
          return async (key: string, options?: { start?: number }) => {
            const stream = await target.getStream(key, options);
            if (!stream || key !== variant) return stream;
            const body = stream.body;
            return Object.assign(stream, {
              body: (async function* () {
                for await (const chunk of body) {
                  read += chunk.byteLength;
                  yield chunk;
                }
              })(),
            });
          };
        const value = Reflect.get(target, property, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const listening = await listenRegistryServer(createRegistryServer({ site: counting }), 0);
    try {
      // Act: a HEAD, so only the check reads the variant's bytes.
      const answer = await rawRequest(listening.url, `/${variant}`, { 'accept-encoding': 'gzip' }, 'HEAD');

      // Assess: refused, and read little past the document's size, not the 4 MiB.
      expect(answer.status).toBe(404);
      expect(read).toBeGreaterThan(0);
      expect(read).toBeLessThan(document.byteLength + 1024 * 1024);
    } finally {
      await listening.close();
    }
  });
});

describe('when decoding a variant fails for a moment', () => {
  it('decodes it again at the next request rather than keep that as its answer', async () => {
    // Prepare: undigested variants of the document, and a store whose second read of the brotli variant
    // (the decoding's, the first being the one sent) fails once, as a file read under EMFILE does.
    const document = await stored(INDEX_JSON_KEY);
    await putUndigested(document);
    const variant = encodedVariantKey(INDEX_JSON_KEY, 'br');
    let reads = 0;
    const flaky = new Proxy(site, {
      get(target, property) {
        if (property === 'getStream')
          return (key: string, options?: { start?: number }) => {
            if (key === variant && ++reads === 2)
              throw new StoreError('STORE_IO', key, `cannot read ${key}: too many open files`);
            return target.getStream(key, options);
          };
        const value = Reflect.get(target, property, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const listening = await listenRegistryServer(createRegistryServer({ site: flaky }), 0);
    try {
      const ask = () => rawRequest(listening.url, `/${INDEX_JSON_KEY}`, { 'accept-encoding': 'br' });
      // Act: the first request meets the failure (the document itself is sent), the second does not.
      const first = await ask();
      const second = await ask();

      // Assess: the failure was no answer about the variant, which is sent once read.
      expect(first.status).toBe(200);
      expect(first.body).toEqual(document);
      expect(second.headers['content-encoding']).toBe('br');
      expect(brotliDecompressSync(second.body)).toEqual(document);
    } finally {
      await listening.close();
    }
  });
});
