/**
 * The index documents' encoded variants (`<key>.br`, `<key>.gz`): compressed past the threshold, the
 * document's own bytes below it, rewritten with their document by every path that renders it (a batch, a
 * flush, a rebuild), written before it, and never holding another generation's bytes. The threshold is
 * lowered here, so a registry of two plugins has documents "over" it.
 */
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { COMPRESSION_THRESHOLD_BYTES } from '../../../index-builder/compression.ts';
import { sha256Hex } from '../../../index-builder/digest.ts';
import { StoreError } from '../../../index-builder/errors.ts';
import {
  CONTENT_ENCODINGS,
  type ContentEncoding,
  ENCODED_DOCUMENTS,
  encodedVariantKey,
  INDEX_DOCUMENTS,
  INDEX_JSON_KEY,
  pluginDocumentKey,
} from '../../../index-builder/layout.ts';
import type { SnapshotDocument } from '../../../index-builder/model.ts';
import {
  completeEncodedVariants,
  flushIndexes,
  type PipelineContext,
  processSubmissions,
  rebuildRegistry,
} from '../../../index-builder/pipeline/index.ts';
import { CACHE_MUTABLE, contentTypeFor } from '../../../index-builder/store.ts';
import { verifyListedDocument } from '../../../index-builder/verify.ts';
import { makeBundle, makeRegistry, type TestRegistry, validManifest } from '../../support/fixtures.ts';
import { withMethod } from '../../support/stores.ts';

const decode: Record<ContentEncoding, (bytes: Uint8Array) => Uint8Array> = {
  br: (bytes) => brotliDecompressSync(bytes),
  gzip: (bytes) => gunzipSync(bytes),
};

function object(registry: TestRegistry, key: string) {
  const stored = registry.site.objects.get(key);
  if (!stored) throw new Error(`missing ${key}`);
  return stored;
}

function snapshotOf(registry: TestRegistry): SnapshotDocument {
  return JSON.parse(new TextDecoder().decode(object(registry, 'snapshot.json').body)) as SnapshotDocument;
}

/** Every variant of every index document decodes to its document, which the snapshot binds. */
function expectVariantsBound(registry: TestRegistry, compressed: boolean): void {
  const snapshot = snapshotOf(registry);
  for (const key of INDEX_DOCUMENTS) {
    const document = object(registry, key).body;
    for (const encoding of CONTENT_ENCODINGS) {
      const variant = object(registry, encodedVariantKey(key, encoding));
      expect(variant.contentType, key).toBe(contentTypeFor(key));
      expect(variant.cacheControl).toBe(CACHE_MUTABLE);
      if (compressed) {
        expect(variant.contentEncoding, `${key} ${encoding}`).toBe(encoding);
        expect(variant.size).toBeLessThan(document.byteLength);
        const decoded = decode[encoding](variant.body);
        expect(Buffer.compare(decoded, document), `${key} ${encoding}`).toBe(0);
        // What a client does with a variant: decode, then check the snapshot's digest of the document.
        expect(() => verifyListedDocument(snapshot, key, decoded)).not.toThrow();
        // And what the local server holds it to, without decoding it: the digest it records.
        expect(variant.decodedSha256, `${key} ${encoding}`).toBe(sha256Hex(document));
      } else {
        expect(variant.contentEncoding, `${key} ${encoding}`).toBeUndefined();
        expect(Buffer.compare(variant.body, document), `${key} ${encoding}`).toBe(0);
      }
    }
  }
}

async function publish(context: PipelineContext, registry: TestRegistry, name: string, version: string) {
  const keys = await registry.submit(await makeBundle({ manifest: validManifest({ name, version }) }));
  const result = await processSubmissions(context, keys);
  expect(result.outcomes.map((o) => o.status)).toEqual(['accepted']);
  return result;
}

/** Both renderings: into buffers (the default under 128 MB), and as streams (a registry too large to hold). */
const modes: [string, Partial<PipelineContext>][] = [
  ['rendered into buffers', {}],
  ['streamed', { streamIndexesOverBytes: 0 }],
];

async function registryFor(mode: Partial<PipelineContext>): Promise<TestRegistry> {
  const registry = await makeRegistry();
  return { ...registry, context: { ...registry.context, ...mode } };
}

describe.each(modes)('with the index documents %s', (_, mode) => {
  describe('when the index documents are over the compression threshold', () => {
    it('publishes each also in brotli and gzip, byte-identical once decoded and bound by the snapshot', async () => {
      const registry = await registryFor(mode);
      const context = { ...registry.context, compressionThresholdBytes: 100 };
      await publish(context, registry, 'demo-plugin', '1.0.0');
      await publish(context, registry, 'other-plugin', '0.1.0');

      expectVariantsBound(registry, true);
      expect(ENCODED_DOCUMENTS).toEqual(new Set(INDEX_DOCUMENTS));
      // A plugin document has them only while it is over the threshold (lowered here, so it is).
      expect(registry.site.objects.has('plugins/demo-plugin/index.json.br')).toBe(true);
    });

    it('writes the variants before their document, and both before the snapshot', async () => {
      const registry = await registryFor(mode);
      const context = { ...registry.context, compressionThresholdBytes: 100 };
      await publish(context, registry, 'demo-plugin', '1.0.0');
      registry.site.writes.length = 0;
      await publish(context, registry, 'demo-plugin', '1.1.0');

      const at = (key: string) => registry.site.writes.lastIndexOf(key);
      for (const key of INDEX_DOCUMENTS) {
        for (const encoding of CONTENT_ENCODINGS) {
          expect(at(encodedVariantKey(key, encoding)), key).toBeGreaterThanOrEqual(0);
          expect(at(encodedVariantKey(key, encoding)), key).toBeLessThan(at(key));
        }
        expect(at(key)).toBeLessThan(at('snapshot.json'));
      }
      const plugin = 'plugins/demo-plugin/index.json';
      for (const encoding of CONTENT_ENCODINGS)
        expect(at(encodedVariantKey(plugin, encoding))).toBeLessThan(at(plugin));
    });

    it('rewrites them at the flush of deferred publishes, and at a rebuild, with the documents', async () => {
      const registry = await registryFor(mode);
      const context = { ...registry.context, compressionThresholdBytes: 100 };
      await publish(context, registry, 'demo-plugin', '1.0.0');
      const before = object(registry, encodedVariantKey(INDEX_JSON_KEY, 'br')).body;

      await publish({ ...context, deferIndexes: true }, registry, 'other-plugin', '0.1.0');
      // Deferred: neither the document nor its variants moved, so they still agree.
      expect(object(registry, encodedVariantKey(INDEX_JSON_KEY, 'br')).body).toEqual(before);
      expectVariantsBound(registry, true);

      await flushIndexes(context);
      expect(object(registry, encodedVariantKey(INDEX_JSON_KEY, 'br')).body).not.toEqual(before);
      expectVariantsBound(registry, true);
      const index = JSON.parse(
        new TextDecoder().decode(decode.br(object(registry, encodedVariantKey(INDEX_JSON_KEY, 'br')).body)),
      ) as { plugins: { name: string }[] };
      expect(index.plugins.map((p) => p.name)).toEqual(['demo-plugin', 'other-plugin']);

      registry.site.writes.length = 0;
      await rebuildRegistry(context);
      expect(registry.site.writes).toContain(encodedVariantKey(INDEX_JSON_KEY, 'gzip'));
      expectVariantsBound(registry, true);
    });
  });

  describe('when the compressed variants are left for later (compressLater)', () => {
    /** Deletes are recorded among the writes, as `-key`: where they fall against the document's write. */
    function recordingDeletes(registry: TestRegistry): void {
      const remove = registry.site.delete.bind(registry.site);
      registry.site.delete = async (key: string) => {
        registry.site.writes.push(`-${key}`);
        await remove(key);
      };
    }
    const variantKeys = INDEX_DOCUMENTS.flatMap((key) =>
      CONTENT_ENCODINGS.map((e) => encodedVariantKey(key, e)),
    );

    it('deletes them before their document is written, then completeEncodedVariants makes them from it', async () => {
      const registry = await registryFor(mode);
      const context = { ...registry.context, compressionThresholdBytes: 100 };
      await publish(context, registry, 'demo-plugin', '1.0.0');
      expectVariantsBound(registry, true);
      recordingDeletes(registry);
      registry.site.writes.length = 0;

      await publish({ ...context, compressLater: true }, registry, 'other-plugin', '0.1.0');
      // No variant of the old documents is left beside the new ones: each went before its document came.
      const at = (key: string) => registry.site.writes.indexOf(key);
      for (const key of INDEX_DOCUMENTS) {
        for (const encoding of CONTENT_ENCODINGS) {
          const variant = encodedVariantKey(key, encoding);
          expect(registry.site.objects.has(variant), variant).toBe(false);
          expect(at(`-${variant}`), variant).toBeGreaterThanOrEqual(0);
          expect(at(`-${variant}`), variant).toBeLessThan(at(key));
          expect(registry.site.writes, variant).not.toContain(variant);
        }
      }
      const index = JSON.parse(new TextDecoder().decode(object(registry, INDEX_JSON_KEY).body)) as {
        plugins: { name: string }[];
      };
      expect(index.plugins.map((p) => p.name)).toEqual(['demo-plugin', 'other-plugin']);

      expect((await completeEncodedVariants(context)).sort()).toEqual([...variantKeys].sort());
      expectVariantsBound(registry, true);
      // Nothing is missing any more: nothing is written again.
      registry.site.writes.length = 0;
      expect(await completeEncodedVariants(context)).toEqual([]);
      expect(registry.site.writes).toEqual([]);
    });

    it('still writes the variants of a document under the threshold with it: its own bytes', async () => {
      const registry = await registryFor(mode);
      await publish({ ...registry.context, compressLater: true }, registry, 'demo-plugin', '1.0.0');

      expectVariantsBound(registry, false);
      expect(await completeEncodedVariants(registry.context)).toEqual([]);
    });

    it('stops before the next document once asked to, leaving the rest missing', async () => {
      const registry = await registryFor(mode);
      const context = { ...registry.context, compressionThresholdBytes: 100 };
      await publish({ ...context, compressLater: true }, registry, 'demo-plugin', '1.0.0');

      let asked = 0;
      const written = await completeEncodedVariants(context, { shouldStop: () => asked++ > 0 });
      const [first, ...rest] = INDEX_DOCUMENTS as readonly string[];
      expect(written.sort()).toEqual(
        CONTENT_ENCODINGS.map((e) => encodedVariantKey(first as string, e)).sort(),
      );
      for (const key of rest)
        for (const encoding of CONTENT_ENCODINGS)
          expect(registry.site.objects.has(encodedVariantKey(key, encoding)), key).toBe(false);

      await completeEncodedVariants(context);
      expectVariantsBound(registry, true);
    });

    it('has written or given up every variant once it fails: none lands after the next publish', async () => {
      const registry = await registryFor(mode);
      const context = { ...registry.context, compressionThresholdBytes: 100 };
      await publish({ ...context, compressLater: true }, registry, 'demo-plugin', '1.0.0');
      // One coding fails while the other is slow to be written.
      const put = registry.site.put.bind(registry.site);
      let failing = true;
      registry.site.put = async (key, body, options) => {
        if (failing && key === encodedVariantKey(INDEX_JSON_KEY, 'gzip'))
          throw new StoreError('STORE_IO', key, 'the disk is full');
        if (failing && key === encodedVariantKey(INDEX_JSON_KEY, 'br'))
          await new Promise((resolve) => setTimeout(resolve, 200));
        return put(key, body, options);
      };
      const failed = completeEncodedVariants(context);
      await expect(failed).rejects.toBeInstanceOf(StoreError);
      await expect(failed).rejects.toMatchObject({ code: 'STORE_IO', message: 'the disk is full' });
      failing = false;
      // A server's next request runs as soon as the failed one ends: its publish deletes the variants before
      // it writes the new document, and a variant of the old one written later would be another generation's.
      await publish({ ...context, compressLater: true }, registry, 'other-plugin', '0.1.0');
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(registry.site.objects.has(encodedVariantKey(INDEX_JSON_KEY, 'br'))).toBe(false);
      await completeEncodedVariants(context);
      expectVariantsBound(registry, true);
    });

    it('makes only the variant that is missing, and those of a registry published before variants', async () => {
      const registry = await registryFor(mode);
      const context = { ...registry.context, compressionThresholdBytes: 100 };
      await publish(context, registry, 'demo-plugin', '1.0.0');
      await registry.site.delete(encodedVariantKey(INDEX_JSON_KEY, 'gzip'));
      registry.site.writes.length = 0;

      expect(await completeEncodedVariants(context)).toEqual([encodedVariantKey(INDEX_JSON_KEY, 'gzip')]);
      expectVariantsBound(registry, true);

      // Under the threshold, as a registry's small documents are: the document's own bytes.
      for (const key of variantKeys) await registry.site.delete(key);
      expect((await completeEncodedVariants(registry.context)).sort()).toEqual([...variantKeys].sort());
      expectVariantsBound(registry, false);
    });
  });

  describe('when an index document is under the threshold', () => {
    it('never compresses it: the variants hold the document itself, without a Content-Encoding', async () => {
      const registry = await registryFor(mode);
      await publish(registry.context, registry, 'demo-plugin', '1.0.0');

      expect(object(registry, INDEX_JSON_KEY).body.byteLength).toBeLessThan(COMPRESSION_THRESHOLD_BYTES);
      expectVariantsBound(registry, false);
    });

    it('leaves no compressed variant behind once a document shrinks below it, nor a stale one', async () => {
      const registry = await registryFor(mode);
      await publish(
        { ...registry.context, compressionThresholdBytes: 100 },
        registry,
        'demo-plugin',
        '1.0.0',
      );
      expectVariantsBound(registry, true);
      const compressed = object(registry, encodedVariantKey(INDEX_JSON_KEY, 'gzip')).body;

      // The same registry under a threshold its documents no longer pass: as a document shrinking below it.
      await publish(registry.context, registry, 'demo-plugin', '1.1.0');

      expectVariantsBound(registry, false);
      expect(object(registry, encodedVariantKey(INDEX_JSON_KEY, 'gzip')).body).not.toEqual(compressed);
    });
  });
});

describe("when a run died after writing a grown plugin document's variants, before the document", () => {
  const key = pluginDocumentKey('demo-plugin');

  /**
   * A registry whose plugin document is under the threshold, beside the variants a run wrote of the next
   * one, which grew past it (the threshold lowered for that run alone, so one version more passes it), then
   * died at the document; its upload then abandoned (taken out of `incoming/`).
   */
  async function afterDeadRun(): Promise<{ registry: TestRegistry; published: Uint8Array }> {
    const registry = await makeRegistry();
    await publish(registry.context, registry, 'demo-plugin', '1.0.0');
    const published = object(registry, key).body;
    const dies = withMethod(registry.site, 'put', (put) => async (at, body, options) => {
      if (at === key) throw new StoreError('STORE_IO', at, 'the run died here');
      return put(at, body, options);
    });
    const upload = await registry.submit(
      await makeBundle({ manifest: validManifest({ name: 'demo-plugin', version: '1.0.1' }) }),
    );
    const dying = { ...registry.context, site: dies, compressionThresholdBytes: published.byteLength + 1 };
    await expect(processSubmissions(dying, upload)).rejects.toMatchObject({ code: 'STORE_IO' });
    for (const at of upload) await registry.context.intake.delete(at);
    expect(object(registry, key).body).toEqual(published);
    expect(object(registry, encodedVariantKey(key, 'br')).contentEncoding).toBe('br');
    return { registry, published };
  }

  /** The next publish of that plugin: it also finishes the dead run's publish, from the log it wrote. */
  async function publishNext(context: PipelineContext, registry: TestRegistry): Promise<void> {
    const keys = await registry.submit(
      await makeBundle({ manifest: validManifest({ name: 'demo-plugin', version: '1.1.0' }) }),
    );
    const result = await processSubmissions(context, keys);
    expect(result.outcomes.map((o) => o.status)).toContain('accepted');
    expect(result.outcomes.every((o) => o.status === 'accepted')).toBe(true);
  }

  it('has them deleted by the next publish of that plugin, its document still under the threshold', async () => {
    const { registry } = await afterDeadRun();

    await publishNext(registry.context, registry);

    expect(object(registry, key).body.byteLength).toBeLessThan(COMPRESSION_THRESHOLD_BYTES);
    for (const encoding of CONTENT_ENCODINGS)
      expect(registry.site.objects.has(encodedVariantKey(key, encoding)), encoding).toBe(false);
  });

  it('is refused by a rebuild while the logged publish is unfinished, nothing changed; the batch then finishes it', async () => {
    // The dead run's entry is past what the snapshot counts and no document shows it: a rebuild signed the
    // snapshot over it (stuck-entries.ts). It refuses, leaving the variants; the next batch, finishing the
    // publish from the log, deletes them, and the rebuild then goes on.
    const { registry, published } = await afterDeadRun();
    const before = registry.site.fingerprint();

    await expect(rebuildRegistry(registry.context)).rejects.toMatchObject({
      code: 'LOGGED_PUBLISH_STUCK',
      message: expect.stringContaining('log entry 1, the publish of demo-plugin@1.0.1'),
    });
    expect(registry.site.fingerprint()).toEqual(before);
    expect(object(registry, key).body).toEqual(published);

    const finished = await processSubmissions(registry.context);
    expect(finished.outcomes.map((o) => [o.version, o.status, o.seq])).toEqual([['1.0.1', 'accepted', 1]]);
    await rebuildRegistry(registry.context);
    for (const encoding of CONTENT_ENCODINGS)
      expect(registry.site.objects.has(encodedVariantKey(key, encoding)), encoding).toBe(false);
  });

  it('has them deleted by a flush, the document left as it is', async () => {
    const { registry, published } = await afterDeadRun();

    const flushed = await flushIndexes(registry.context);

    expect(object(registry, key).body).toEqual(published);
    for (const encoding of CONTENT_ENCODINGS) {
      expect(registry.site.objects.has(encodedVariantKey(key, encoding)), encoding).toBe(false);
      expect(flushed.invalidate, encoding).toContain(encodedVariantKey(key, encoding));
    }
  });

  it('has them rewritten from the document by a flush, where it is over the threshold', async () => {
    const { registry, published } = await afterDeadRun();
    const over = { ...registry.context, compressionThresholdBytes: published.byteLength - 1 };

    await flushIndexes(over);

    for (const encoding of CONTENT_ENCODINGS) {
      const variant = object(registry, encodedVariantKey(key, encoding));
      expect(Buffer.compare(decode[encoding](variant.body), published), encoding).toBe(0);
      expect(variant.decodedSha256, encoding).toBe(sha256Hex(published));
    }
    // Once they decode to the document, the next flush leaves them as they are: it reads the heads alone.
    const writes = registry.site.writes.length;
    await flushIndexes(over);
    expect(registry.site.writes.slice(writes)).toEqual([]);
  });

  it('has a flush look at no variant of a plugin no run was interrupted writing', async () => {
    const registry = await makeRegistry();
    await publish(registry.context, registry, 'demo-plugin', '1.0.0');
    const heads: string[] = [];
    const site = withMethod(registry.site, 'head', (head) => async (at) => {
      heads.push(at);
      return head(at);
    });

    await flushIndexes({ ...registry.context, site });

    expect(heads.filter((at) => at.startsWith('plugins/'))).toEqual([]);
  });

  it('has them rewritten from the document by the next publish that leaves it over the threshold', async () => {
    const { registry, published } = await afterDeadRun();

    await publishNext({ ...registry.context, compressionThresholdBytes: published.byteLength + 1 }, registry);

    const document = object(registry, key).body;
    for (const encoding of CONTENT_ENCODINGS) {
      const variant = object(registry, encodedVariantKey(key, encoding));
      expect(Buffer.compare(decode[encoding](variant.body), document), encoding).toBe(0);
      expect(variant.decodedSha256, encoding).toBe(object(registry, key).sha256);
    }
  });
});
