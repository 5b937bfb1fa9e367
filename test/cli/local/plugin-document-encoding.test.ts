/**
 * A plugin document over the compression threshold has `.br`/`.gz` variants as the index documents do
 * (issue 14), served by the local server with Content-Encoding over real sockets; one that shrinks under the
 * threshold has them deleted before it is written, so no variant of older bytes is served for it. The
 * threshold is lowered (`compressionThresholdBytes`) so a document of one version passes it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsStore } from '../../../adapters/fs-store.ts';
import { createRegistryServer, listenRegistryServer } from '../../../cli/local/server.ts';
import { sha256Hex } from '../../../index-builder/digest.ts';
import { pluginDocumentKey } from '../../../index-builder/layout.ts';
import type { PluginDocument } from '../../../index-builder/model.ts';
import { putSizedVariants } from '../../../index-builder/pipeline/encoded.ts';
import { processSubmissions } from '../../../index-builder/pipeline/index.ts';
import { writePluginDocument } from '../../../index-builder/pipeline/site-writer.ts';
import { makeBundle, makeRegistry, validManifest } from '../../support/fixtures.ts';
import { rawRequest } from '../../support/raw-http.ts';

const key = pluginDocumentKey('demo-plugin');
let folder: string;
let site: FsStore;
let base: string;
let close: () => Promise<void>;
let context: Awaited<ReturnType<typeof makeRegistry>>['context'];

beforeAll(async () => {
  folder = await mkdtemp(path.join(tmpdir(), 'plugindex-plugin-encoding-'));
  const registry = await makeRegistry();
  site = new FsStore(folder);
  context = { ...registry.context, site, compressionThresholdBytes: 100 };
  const keys = await registry.submit(await makeBundle({ manifest: validManifest({ name: 'demo-plugin' }) }));
  await processSubmissions(context, keys);
  const listening = await listenRegistryServer(createRegistryServer({ site }), 0);
  base = listening.url;
  close = listening.close;
});

afterAll(async () => {
  await close();
  await rm(folder, { recursive: true, force: true });
});

async function stored(name: string): Promise<Buffer | undefined> {
  const object = await site.get(name);
  return object ? Buffer.from(object.body) : undefined;
}

describe('a plugin document over the compression threshold', () => {
  it('is published with brotli and gzip variants that decode to its bytes', async () => {
    const document = (await stored(key)) as Buffer;
    expect(brotliDecompressSync((await stored(`${key}.br`)) as Buffer)).toEqual(document);
    expect(gunzipSync((await stored(`${key}.gz`)) as Buffer)).toEqual(document);
  });

  it('is served with Content-Encoding to a client that accepts it, and as it is to one that does not', async () => {
    const document = (await stored(key)) as Buffer;
    const br = await rawRequest(base, '/plugins/demo-plugin', { 'accept-encoding': 'gzip, br' });
    expect(br.status).toBe(200);
    expect(br.headers['content-encoding']).toBe('br');
    expect(br.headers['content-type']).toBe('application/json');
    expect(br.headers.vary).toContain('Accept-Encoding');
    expect(brotliDecompressSync(br.body)).toEqual(document);
    const gzip = await rawRequest(base, `/${key}`, { 'accept-encoding': 'gzip' });
    expect(gzip.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(gzip.body)).toEqual(document);
    const identity = await rawRequest(base, `/${key}`);
    expect(identity.headers['content-encoding']).toBeUndefined();
    expect(identity.body).toEqual(document);
  });
});

describe('a plugin document that shrinks under the threshold', () => {
  it('has its variants deleted, and is served as it is to every client', async () => {
    const before = (await stored(key)) as Buffer;
    expect(await stored(`${key}.br`)).toBeDefined();
    const doc = JSON.parse(before.toString()) as PluginDocument;
    const smaller: PluginDocument = { ...doc, description: '' } as PluginDocument;
    // The threshold between the two sizes: the document was over it, and is now under it.
    const shrinking = { ...context, compressionThresholdBytes: before.byteLength - 1 };
    await writePluginDocument(shrinking, smaller, before.byteLength);
    const after = (await stored(key)) as Buffer;
    expect(after.byteLength).toBeLessThan(before.byteLength);

    expect(await stored(`${key}.br`)).toBeUndefined();
    expect(await stored(`${key}.gz`)).toBeUndefined();
    const answer = await rawRequest(base, `/${key}`, { 'accept-encoding': 'br, gzip' });
    expect(answer.headers['content-encoding']).toBeUndefined();
    expect(answer.body).toEqual(after);
  });
});

describe('a plugin document beside the variants of a grown one (a run that died between them)', () => {
  it('is served as it is, never the variants, which are not there by their own names either', async () => {
    // Prepare: the document over the threshold with its variants, then a grown one's variants written as
    // a publish writes them, before the document, which that run never wrote.
    const doc = JSON.parse(((await stored(key)) as Buffer).toString()) as PluginDocument;
    await writePluginDocument(context, { ...doc, description: 'published' } as PluginDocument);
    const document = (await stored(key)) as Buffer;
    const grown = Buffer.from(
      JSON.stringify({ ...doc, description: 'grown since, by a version that never landed' }),
    );
    await putSizedVariants(context, key, grown, document.byteLength, sha256Hex(grown));
    expect(brotliDecompressSync((await stored(`${key}.br`)) as Buffer)).toEqual(grown);

    // Act and assess: every client is sent the document itself.
    for (const accepted of ['br, gzip', 'gzip']) {
      const answer = await rawRequest(base, '/plugins/demo-plugin', { 'accept-encoding': accepted });
      expect(answer.status).toBe(200);
      expect(answer.headers['content-encoding']).toBeUndefined();
      expect(answer.body).toEqual(document);
    }
    for (const variant of [`/${key}.br`, `/${key}.gz`]) {
      const answer = await rawRequest(base, variant, { 'accept-encoding': 'br, gzip' });
      expect(answer.status, variant).toBe(404);
    }
  });
});
