/**
 * The index documents a long-running process keeps as it wrote them (pipeline/held-documents.ts): its next
 * merge takes the old documents from memory rather than reading them back, and publishes the very bytes a
 * full rendering publishes; a document another writer changed meanwhile is read from the store again; the
 * compressed variants made after the answer come from memory too; and a kept document is never written
 * over while a merge may read it.
 */
import { Buffer } from 'node:buffer';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { forgetBins } from '../../../index-builder/catalog.ts';
import { sha256Hex } from '../../../index-builder/digest.ts';
import {
  CATALOG_ORDER_KEY,
  encodedVariantKey,
  INDEX_DOCUMENTS,
  INDEX_JSON_KEY,
} from '../../../index-builder/layout.ts';
import type { SnapshotDocument } from '../../../index-builder/model.ts';
import type { PipelineContext } from '../../../index-builder/pipeline/context.ts';
import { HeldDocuments } from '../../../index-builder/pipeline/held-documents.ts';
import { completeEncodedVariants, processSubmissions } from '../../../index-builder/pipeline/index.ts';
import { verifyListedDocument } from '../../../index-builder/verify.ts';
import { makeBundle, recordingRegistry, type TestRegistry, validManifest } from '../../support/fixtures.ts';
import { MemoryStore } from '../../support/memory-store.ts';

const decoder = new TextDecoder();
const text = (registry: TestRegistry, key: string) => decoder.decode(registry.site.objects.get(key)?.body);

async function publish(registry: TestRegistry, context: PipelineContext, name: string, version = '1.0.0') {
  // As a process that did not keep the bins: it merges rather than rendering from them.
  forgetBins(registry.intake);
  const bundle = await makeBundle({ manifest: validManifest({ name, version }) });
  const result = await processSubmissions(context, await registry.submit(bundle));
  expect(result.outcomes.map((o) => o.status)).toEqual(['accepted']);
}

function expectSameDocuments(a: TestRegistry, b: TestRegistry, what: string): void {
  const snapshot = JSON.parse(text(a, 'snapshot.json')) as SnapshotDocument;
  for (const key of INDEX_DOCUMENTS) {
    const bytes = a.site.objects.get(key)?.body as Uint8Array;
    expect(Buffer.from(bytes).toString(), `${what}: ${key}`).toBe(text(b, key));
    expect(() => verifyListedDocument(snapshot, key, bytes)).not.toThrow();
  }
}

describe('a process that holds the index documents it wrote', () => {
  it('merges into them without reading them back, publishing the bytes a full rendering publishes', async () => {
    const holding = await recordingRegistry({ held: new HeldDocuments() });
    const full = await recordingRegistry();
    const names = ['m-plugin', 'c-plugin', 'x-plugin', 'a-plugin', 'zz-plugin', 'd-plugin'];
    for (const [i, name] of names.entries()) {
      holding.reads.length = 0;
      full.registry.intake.objects.delete(CATALOG_ORDER_KEY);
      await publish(holding.registry, holding.context, name);
      await publish(full.registry, full.context, name);
      expectSameDocuments(holding.registry, full.registry, name);
      // The first is rendered in full (no order yet); the second merges into what the store has (the full
      // rendering was not held); every later one into what the process holds.
      if (i >= 2) expect(holding.reads, name).not.toContain(INDEX_JSON_KEY);
      if (i === 1) expect(holding.reads, name).toContain(INDEX_JSON_KEY);
    }
    const index = JSON.parse(text(holding.registry, INDEX_JSON_KEY)) as { plugins: { name: string }[] };
    expect(index.plugins.map((p) => p.name)).toEqual([...names].sort());
  });

  it("holds nothing of a document rendered in full meanwhile, and merges into the store's", async () => {
    const holding = await recordingRegistry({ held: new HeldDocuments() });
    const full = await recordingRegistry();
    for (const name of ['b-plugin', 'c-plugin', 'd-plugin', 'e-plugin', 'f-plugin']) {
      holding.reads.length = 0;
      full.registry.intake.objects.delete(CATALOG_ORDER_KEY);
      // Without its order file, e-plugin's publish renders the documents in full: what the process held
      // of d-plugin's is no longer what the store has, and f-plugin's merge must not start from it.
      if (name === 'e-plugin') holding.registry.intake.objects.delete(CATALOG_ORDER_KEY);
      await publish(holding.registry, holding.context, name);
      await publish(full.registry, full.context, name);
      expectSameDocuments(holding.registry, full.registry, name);
      if (name === 'f-plugin') expect(holding.reads).toContain(INDEX_JSON_KEY);
    }
  });

  it('reads a document from the store again once another process has published', async () => {
    const held = new HeldDocuments();
    const holding = await recordingRegistry({ held });
    const full = await recordingRegistry();
    // The holding process, another process on the same registry (no held documents), then the holding
    // one again: its merge must start from what the other one published.
    const other = { ...holding.context, held: undefined };
    for (const [name, context] of [
      ['b-plugin', holding.context],
      ['c-plugin', holding.context],
      ['d-plugin', holding.context],
      ['e-plugin', other],
      ['f-plugin', holding.context],
    ] as const) {
      holding.reads.length = 0;
      full.registry.intake.objects.delete(CATALOG_ORDER_KEY);
      await publish(holding.registry, context, name);
      await publish(full.registry, full.context, name);
      expectSameDocuments(holding.registry, full.registry, name);
      if (name === 'f-plugin') expect(holding.reads).toContain(INDEX_JSON_KEY);
    }
    const index = JSON.parse(text(holding.registry, INDEX_JSON_KEY)) as { plugins: { name: string }[] };
    expect(index.plugins.map((p) => p.name)).toEqual([
      'b-plugin',
      'c-plugin',
      'd-plugin',
      'e-plugin',
      'f-plugin',
    ]);
  });

  it('makes the compressed variants left for later from the documents it holds', async () => {
    const held = new HeldDocuments();
    const { registry, reads, context } = await recordingRegistry({ held, compressLater: true });
    for (const name of ['b-plugin', 'c-plugin', 'd-plugin']) await publish(registry, context, name);
    reads.length = 0;
    const written = await completeEncodedVariants(context);
    expect(written.length).toBeGreaterThan(0);
    expect(reads.filter((key) => INDEX_DOCUMENTS.includes(key))).toEqual([]);
    for (const key of INDEX_DOCUMENTS) {
      const document = text(registry, key);
      const br = registry.site.objects.get(encodedVariantKey(key, 'br'))?.body as Uint8Array;
      const gz = registry.site.objects.get(encodedVariantKey(key, 'gzip'))?.body as Uint8Array;
      expect(brotliDecompressSync(br).toString(), key).toBe(document);
      expect(gunzipSync(gz).toString(), key).toBe(document);
      // Each records the digest of the document it decodes to: the one kept with it, not hashed again.
      for (const encoding of ['br', 'gzip'] as const)
        expect((await registry.site.head(encodedVariantKey(key, encoding)))?.decodedSha256, key).toBe(
          sha256Hex(registry.site.objects.get(key)?.body as Uint8Array),
        );
    }
  });
});

describe('HeldDocuments', () => {
  const bytes = (s: string) => new TextEncoder().encode(s);

  async function held(store: MemoryStore, documents: HeldDocuments, key: string, body: string) {
    const copy = documents.copy(key, body.length);
    // In pieces, as a merge writes it.
    for (let at = 0; at < body.length; at += 3) copy.add(bytes(body.slice(at, at + 3)));
    await store.put(key, bytes(body), { contentType: 'application/json', cacheControl: 'no-cache' });
    const info = await store.head(key);
    const sha256 = (info?.etag ?? '').replace(/"/g, '');
    copy.keep(sha256);
    documents.noteEtag(key, sha256, info?.etag);
  }

  it('gives a document back only while the store still has the file written, with its ETag noted', async () => {
    const store = new MemoryStore();
    const documents = new HeldDocuments();
    const copy = documents.copy('index.json', 5);
    copy.add(bytes('hello'));
    await store.put('index.json', bytes('hello'), {
      contentType: 'application/json',
      cacheControl: 'no-cache',
    });
    copy.keep('not-noted-yet');
    expect(await documents.read(store, 'index.json')).toBeUndefined(); // no ETag noted: not trusted
    await held(store, documents, 'index.json', '{"a":1}');
    const read = await documents.read(store, 'index.json');
    expect(decoder.decode(read?.body)).toBe('{"a":1}');
    // With the digest it was kept with: what the variants made from it record, without hashing it again.
    expect(read?.sha256).toBe(((await store.head('index.json'))?.etag ?? '').replace(/"/g, ''));
    // Another writer: same size, other bytes.
    await store.put('index.json', bytes('{"a":2}'), {
      contentType: 'application/json',
      cacheControl: 'no-cache',
    });
    expect(await documents.read(store, 'index.json')).toBeUndefined();
    await store.delete('index.json');
    expect(await documents.read(store, 'index.json')).toBeUndefined();
  });

  it('never copies a new document into the buffer the kept one is in', async () => {
    const store = new MemoryStore();
    const documents = new HeldDocuments();
    await held(store, documents, 'index.json', 'first document');
    const first = (await documents.read(store, 'index.json'))?.body as Uint8Array;
    // The next one is copied while a merge may still read the first: it must stay as it is.
    const copy = documents.copy('index.json', 'second document'.length);
    copy.add(bytes('second document'));
    expect(decoder.decode(first)).toBe('first document');
    copy.keep('x');
    await held(store, documents, 'index.json', 'third document!');
    const third = (await documents.read(store, 'index.json'))?.body as Uint8Array;
    expect(decoder.decode(third)).toBe('third document!');
    // And the one after that reuses a free buffer, not the one the third is in.
    const fourth = documents.copy('index.json', 'fourth document'.length);
    fourth.add(bytes('fourth document'));
    expect(decoder.decode(third)).toBe('third document!');
  });

  it('keeps nothing of a copy that is not as long as announced, whatever ETag is noted for it', async () => {
    const store = new MemoryStore();
    const documents = new HeldDocuments();
    await held(store, documents, 'index.json', '{"a":1}');
    const etag = (await store.head('index.json'))?.etag;
    const short = documents.copy('index.json', 7);
    short.add(bytes('{"a"'));
    short.keep('short');
    documents.noteEtag('index.json', 'short', etag);
    expect(await documents.read(store, 'index.json')).toBeUndefined();
    const long = documents.copy('index.json', 2);
    long.add(bytes('{"a":1}'));
    long.keep('long');
    documents.noteEtag('index.json', 'long', etag);
    expect(await documents.read(store, 'index.json')).toBeUndefined();
  });

  it('notes an ETag only for the document it holds: not for one written without a copy', async () => {
    const store = new MemoryStore();
    const documents = new HeldDocuments();
    await held(store, documents, 'index.json', '{"a":1}');
    // Rendered in full and written without a copy: same size, other bytes, its own digest and ETag.
    await store.put('index.json', bytes('{"a":2}'), {
      contentType: 'application/json',
      cacheControl: 'no-cache',
    });
    documents.noteEtag('index.json', 'digest of the other document', (await store.head('index.json'))?.etag);
    expect(await documents.read(store, 'index.json')).toBeUndefined();
  });
});

describe('when the index documents together are over the streaming threshold, each under it', () => {
  it('holds none of them: a merge then streams them from the store, and reads no copy', async () => {
    const held = new HeldDocuments();
    const { registry, reads, context } = await recordingRegistry({ held });
    const first = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        makeBundle({ manifest: validManifest({ name: `p${String(i).padStart(2, '0')}-plugin` }) }),
      ),
    );
    await processSubmissions(context, await registry.submit(...first));
    const sizes = INDEX_DOCUMENTS.map((key) => registry.site.objects.get(key)?.body.byteLength ?? 0);
    const largest = Math.max(...sizes);
    const sum = sizes.reduce((a, b) => a + b, 0);
    // Between the largest document and the four together, with room for two plugins more.
    const threshold = Math.floor((largest * 2 + sum) / 3) + 1000;
    expect(threshold).toBeLessThan(sum);
    expect(threshold).toBeGreaterThan(largest);
    const streaming = { ...context, streamIndexesOverBytes: threshold };
    for (const name of ['b-plugin', 'c-plugin']) {
      forgetBins(registry.intake);
      const bundle = await makeBundle({ manifest: validManifest({ name }) });
      const result = await processSubmissions(streaming, await registry.submit(bundle));
      expect(result.outcomes.map((o) => o.status)).toEqual(['accepted']);
    }
    for (const key of INDEX_DOCUMENTS) expect(await held.read(registry.site, key)).toBeUndefined();
    reads.length = 0;
    forgetBins(registry.intake);
    await processSubmissions(
      streaming,
      await registry.submit(await makeBundle({ manifest: validManifest({ name: 'd-plugin' }) })),
    );
    expect(reads).toContain(INDEX_JSON_KEY);
  });
});
