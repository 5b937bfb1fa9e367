/**
 * Index documents rendered as streams (pipeline/streamed.ts), as a registry too large to hold them renders
 * them: the same bytes as the buffered rendering, to the byte, signed so that GnuPG verifies them, bound by
 * the snapshot, with variants that decode to them. The streaming threshold is lowered to 0 here, so a
 * registry of a few plugins streams.
 */
import { createHash } from 'node:crypto';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { forgetBins } from '../../../index-builder/catalog.ts';
import { compressChunks } from '../../../index-builder/compression.ts';
import { StoreError } from '../../../index-builder/errors.ts';
import {
  CATALOG_ORDER_KEY,
  CONTENT_ENCODINGS,
  encodedVariantKey,
  INDEX_DOCUMENTS,
  signatureKey,
} from '../../../index-builder/layout.ts';
import type { SnapshotDocument } from '../../../index-builder/model.ts';
import {
  flushIndexes,
  type PipelineContext,
  processSubmissions,
} from '../../../index-builder/pipeline/index.ts';
import { putStreamedSigned } from '../../../index-builder/pipeline/streamed.ts';
import {
  type DocumentLayout,
  FALCOCTL_LAYOUT,
  indexJsonLayout,
  indexYamlLayout,
  LayoutCutter,
  layoutChunks,
  renderLayout,
  searchJsonLayout,
} from '../../../index-builder/render/index-documents.ts';
import { readPublicKey, verifyDetachedSignature } from '../../../index-builder/signing.ts';
import { verifyListedDocument } from '../../../index-builder/verify.ts';
import { makeBundle, makeRegistry, type TestRegistry, validManifest } from '../../support/fixtures.ts';
import { gpgKeyring } from '../../support/gpg.ts';

const utf8 = new TextEncoder();
const concat = (chunks: Iterable<Uint8Array>): Uint8Array => Buffer.concat([...chunks]);

describe('when a document is rendered in chunks', () => {
  // Multi-byte characters of every length, so chunk boundaries fall inside and beside them.
  const items = ['{"a":"plain"}', '{"é":"ü"}', '{"名":"プラグイン"}', '{"e":"🦀🚀"}', '{"z":""}'];
  const layouts: [string, DocumentLayout][] = [
    ['index.json', indexJsonLayout({ name: 'Registry ✓', api_versions: ['v1'] })],
    ['index.yaml', indexYamlLayout('registry_version: 1.0.0\n')],
    ['search.json', searchJsonLayout('2026-11-01T00:00:00.000Z')],
    ['falcoctl/index.yaml', FALCOCTL_LAYOUT],
  ];

  it.each(layouts)('gives the bytes of the buffered %s at any chunk size, empty or not', (_, layout) => {
    for (const list of [items, items.slice(0, 1), []]) {
      const whole = renderLayout(
        layout,
        list.map((item) => utf8.encode(item)),
        (n) => new Uint8Array(n),
      );
      for (const size of [1, 2, 3, 4, 5, 7, 64, 1 << 20]) {
        const chunks = [...layoutChunks(layout, list, size)];
        expect(Buffer.compare(concat(chunks), whole), `${list.length} items, chunks of ${size}`).toBe(0);
        expect(chunks.every((c) => c.byteLength > 0 && c.byteLength <= size)).toBe(true);
        // Items given as bytes (the falcoctl items are kept encoded) render the same.
        const fromBytes = layoutChunks(
          layout,
          list.map((item) => utf8.encode(item)),
          size,
        );
        expect(Buffer.compare(concat(fromBytes), whole)).toBe(0);
      }
    }
  });

  it('hands out a fresh buffer per chunk, so a consumer may keep one', () => {
    const chunks = [...layoutChunks(FALCOCTL_LAYOUT, items, 8)];
    expect(new Set(chunks.map((c) => c.buffer)).size).toBe(chunks.length);
  });
});

describe('when a document is rendered from its items spilled in order', () => {
  // An empty item too: it still gets its separator.
  const items = ['{"a":"plain"}', '{"é":"ü"}', '', '{"名":"プラグイン"}', '{"e":"🦀🚀"}'];
  const layouts: [string, DocumentLayout][] = [
    ['index.json', indexJsonLayout({ name: 'Registry ✓' })],
    ['index.yaml', indexYamlLayout('registry_version: 1.0.0\n')],
    ['falcoctl/index.yaml', FALCOCTL_LAYOUT],
  ];
  /** The items' bytes one after another, cut into pieces of `size` (as a store's stream gives them). */
  const spilled = (list: readonly string[], size: number): Uint8Array[] => {
    const whole = utf8.encode(list.join(''));
    const pieces: Uint8Array[] = [];
    for (let at = 0; at < whole.byteLength; at += size) pieces.push(whole.subarray(at, at + size));
    return pieces;
  };
  const cut = (layout: DocumentLayout, list: readonly string[], piece: number, chunk: number) => {
    // Lengths as the outline keeps them: three a name, this item's at `offset`.
    const lengths = list.flatMap((item) => [7, utf8.encode(item).byteLength, 9]);
    const cutter = new LayoutCutter(layout, lengths, list.length, 3, 1, chunk);
    return [...spilled(list, piece).flatMap((bytes) => [...cutter.feed(bytes)]), ...cutter.finish()];
  };

  it.each(layouts)(
    'gives the bytes of the buffered %s however the spill and the chunks are cut',
    (_, layout) => {
      for (const list of [items, items.slice(0, 1), items.slice(2, 3), []]) {
        const whole = renderLayout(
          layout,
          list.map((item) => utf8.encode(item)),
          (n) => new Uint8Array(n),
        );
        for (const [piece, chunk] of [
          [1, 1],
          [3, 5],
          [5, 3],
          [64, 7],
          [4096, 1 << 20],
        ] as const) {
          const chunks = cut(layout, list, piece, chunk);
          expect(Buffer.compare(concat(chunks), whole), `${list.length} items, ${piece}/${chunk}`).toBe(0);
          expect(chunks.every((c) => c.byteLength > 0 && c.byteLength <= chunk)).toBe(true);
        }
      }
    },
  );

  it('refuses a spill that holds more or fewer bytes than its items', () => {
    const layout = indexJsonLayout({});
    const cutter = (count: number) => new LayoutCutter(layout, [3, 3], count);
    const more = cutter(2);
    expect(() => [...more.feed(utf8.encode('abcdefg'))]).toThrow('more bytes than the items hold');
    const fewer = cutter(2);
    [...fewer.feed(utf8.encode('abcde'))];
    expect(() => [...fewer.finish()]).toThrow('fewer bytes than the items hold');
  });
});

describe('when chunks are compressed as they are read', () => {
  const pieces = Array.from({ length: 40 }, (_, i) =>
    utf8.encode(`{"n":${i},"text":"${'abc'.repeat(i * 50)}"}`),
  );
  const whole = concat(pieces);

  it.each(['br', 'gzip'] as const)('gives %s that decodes to the chunks joined', async (encoding) => {
    const out: Uint8Array[] = [];
    for await (const chunk of compressChunks(pieces, encoding, whole.byteLength)) out.push(chunk);
    const decoded = (encoding === 'br' ? brotliDecompressSync : gunzipSync)(concat(out));
    expect(Buffer.compare(decoded, whole)).toBe(0);
  });

  it('fails the compressed stream when the rendering fails midway', async () => {
    function* failing(): Generator<Uint8Array> {
      yield* pieces.slice(0, 10);
      throw new Error('rendering failed');
    }
    const read = async () => {
      for await (const _ of compressChunks(failing(), 'gzip', whole.byteLength));
    };
    await expect(read()).rejects.toThrow('rendering failed');
  });

  it('stops reading the chunks when its reader stops', async () => {
    let taken = 0;
    function* counted(): Generator<Uint8Array> {
      for (let i = 0; i < 10_000; i++) {
        taken++;
        yield utf8.encode(`${i}:${'x'.repeat(4096)}`);
      }
    }
    for await (const _ of compressChunks(counted(), 'gzip', 0)) break;
    expect(taken).toBeLessThan(10_000);
  });
});

async function publishAll(
  context: PipelineContext,
  registry: TestRegistry,
  beforeFlush: () => void = () => {},
): Promise<void> {
  const manifests = [
    validManifest({ name: 'demo-plugin', version: '1.0.0' }),
    validManifest({ name: 'other-plugin', version: '0.1.0' }),
    // The latest version's description is the plugin's: non-ASCII text of every UTF-8 length.
    validManifest({ name: 'demo-plugin', version: '1.1.0', description: 'Coûts et prévisions — 成本 🚀' }),
  ];
  const deferred = { ...context, deferIndexes: true };
  for (const [i, manifest] of manifests.entries()) {
    const keys = await registry.submit(await makeBundle({ manifest }));
    // The first publish renders the documents at once; the later ones defer them to the flush.
    const result = await processSubmissions(i === 0 ? context : deferred, keys);
    expect(result.outcomes.map((o) => o.status)).toEqual(['accepted']);
  }
  beforeFlush();
  expect((await flushIndexes(context)).generation).not.toBeNull();
}

function body(registry: TestRegistry, key: string): Uint8Array {
  const object = registry.site.objects.get(key);
  if (!object) throw new Error(`missing ${key}`);
  return object.body;
}

describe('when the index documents are streamed', () => {
  it.each([
    // The flush merges the deferred plugins into the published documents, each streamed back and checked.
    ['merged into the published documents', false],
    // Without the order they were rendered in, from the items spilled in name order (the flush opened the
    // catalog without its bins), and the spill is gone once the documents are written.
    ['spilled in name order', true],
  ])(
    'publishes the bytes the buffered rendering publishes, signed, bound by the snapshot (%s)',
    async (_, spilled) => {
      const buffered = await makeRegistry();
      const streamed = await makeRegistry();
      const options = { compressionThresholdBytes: 100 };
      await publishAll({ ...buffered.context, ...options }, buffered);
      await publishAll({ ...streamed.context, ...options, streamIndexesOverBytes: 0 }, streamed, () => {
        // As a process that starts cold flushes: without the bins a warm one keeps (and renders from).
        forgetBins(streamed.intake);
        if (spilled) streamed.intake.objects.delete(CATALOG_ORDER_KEY);
      });
      const spills = streamed.intake.writes.filter((k) => k.startsWith('state/catalog/spill/'));
      expect(spills.length > 0).toBe(spilled);
      expect([...streamed.intake.objects.keys()].filter((k) => k.startsWith('state/catalog/spill/'))).toEqual(
        [],
      );

      const snapshot = JSON.parse(
        new TextDecoder().decode(body(streamed, 'snapshot.json')),
      ) as SnapshotDocument;
      const bufferedSnapshot = JSON.parse(
        new TextDecoder().decode(body(buffered, 'snapshot.json')),
      ) as SnapshotDocument;
      const key = await readPublicKey(streamed.registryKey.publicKey);
      const gpg = gpgKeyring(streamed.registryKey.publicKey);
      try {
        for (const document of INDEX_DOCUMENTS) {
          const bytes = body(streamed, document);
          expect(Buffer.compare(bytes, body(buffered, document)), document).toBe(0);
          expect(snapshot.documents[document], document).toEqual(bufferedSnapshot.documents[document]);
          expect(() => verifyListedDocument(snapshot, document, bytes)).not.toThrow();
          const signature = new TextDecoder().decode(body(streamed, signatureKey(document)));
          await expect(verifyDetachedSignature(bytes, signature, [key.key])).resolves.toMatchObject({
            ok: true,
          });
          expect(gpg.verify(bytes, signature)).toMatch(
            new RegExp(`VALIDSIG .* ${streamed.registryKey.fingerprint}`),
          );
          for (const encoding of CONTENT_ENCODINGS) {
            const variant = streamed.site.objects.get(encodedVariantKey(document, encoding));
            expect(variant?.contentEncoding, `${document} ${encoding}`).toBe(encoding);
            const decoded = (encoding === 'br' ? brotliDecompressSync : gunzipSync)(
              variant?.body as Uint8Array,
            );
            expect(Buffer.compare(decoded, bytes), `${document} ${encoding}`).toBe(0);
          }
        }
      } finally {
        gpg.close();
      }
      // The non-ASCII description made it through, in both.
      expect(new TextDecoder().decode(body(streamed, 'index.json'))).toContain('成本 🚀');
    },
  );

  it('writes each document after its variants and before its signature, and all before the snapshot', async () => {
    const registry = await makeRegistry();
    const context = { ...registry.context, compressionThresholdBytes: 100, streamIndexesOverBytes: 0 };
    await publishAll(context, registry);
    registry.site.writes.length = 0;
    const keys = await registry.submit(await makeBundle({ manifest: validManifest({ version: '2.0.0' }) }));
    await processSubmissions(context, keys);

    const at = (key: string) => registry.site.writes.lastIndexOf(key);
    for (const document of INDEX_DOCUMENTS) {
      for (const encoding of CONTENT_ENCODINGS)
        expect(at(encodedVariantKey(document, encoding)), document).toBeLessThan(at(document));
      expect(at(encodedVariantKey(document, 'br')), document).toBeGreaterThanOrEqual(0);
      expect(at(document)).toBeLessThan(at(signatureKey(document)));
      expect(at(signatureKey(document))).toBeLessThan(at('snapshot.json'));
    }
  });
});

describe('when a streamed document is signed and its variants written', () => {
  // Enough bytes that compressors emit output before the end, some of them not compressible.
  const items = Array.from(
    { length: 2000 },
    (_, i) =>
      `{"name":"plugin-${i}","note":"é ✓ 🚀","id":"${createHash('sha256').update(`${i}`).digest('base64')}"}`,
  );
  const layout = indexJsonLayout({ name: 'Registry' });
  const whole = renderLayout(
    layout,
    items.map((item) => utf8.encode(item)),
    (n) => new Uint8Array(n),
  );

  /** index.json as a streamed document of small chunks, counting its renderings; `fail` breaks one. */
  function documentOf(fail?: { rendering: number; afterChunks: number }) {
    const counted = { renderings: 0 };
    const document = {
      key: 'index.json',
      size: whole.byteLength,
      *chunks(): Generator<Uint8Array> {
        const rendering = ++counted.renderings;
        let n = 0;
        for (const chunk of layoutChunks(layout, items, 4096)) {
          if (fail?.rendering === rendering && n++ === fail.afterChunks) throw new Error('rendering failed');
          yield chunk;
        }
      },
    };
    return { document, counted };
  }

  const variants = CONTENT_ENCODINGS.map((encoding) => encodedVariantKey('index.json', encoding));

  it('renders it twice: once for its signature and both variants, once for itself', async () => {
    const registry = await makeRegistry();
    const ctx = { ...registry.context, compressionThresholdBytes: 0 };
    const { document, counted } = documentOf();
    const digest = await putStreamedSigned(ctx, document, false);
    expect(counted.renderings).toBe(2);
    expect(Buffer.compare(body(registry, 'index.json'), whole)).toBe(0);
    expect(Buffer.compare(brotliDecompressSync(body(registry, 'index.json.br')), whole)).toBe(0);
    expect(Buffer.compare(gunzipSync(body(registry, 'index.json.gz')), whole)).toBe(0);
    expect(digest).toEqual({
      sha256: createHash('sha256').update(whole).digest('hex'),
      size: whole.byteLength,
    });
    const signature = new TextDecoder().decode(body(registry, 'index.json.asc'));
    const key = (await readPublicKey(registry.signer.publicKey)).key;
    expect((await verifyDetachedSignature(whole, signature, [key])).ok).toBe(true);
  });

  it('commits no variant when the rendering fails midway', async () => {
    const registry = await makeRegistry();
    const ctx = { ...registry.context, compressionThresholdBytes: 0 };
    const { document } = documentOf({ rendering: 1, afterChunks: 5 });
    await expect(putStreamedSigned(ctx, document, false)).rejects.toThrow('rendering failed');
    for (const key of [...variants, 'index.json', 'index.json.asc'])
      expect(registry.site.objects.has(key)).toBe(false);
  });

  it('commits no variant cut short when the write of another fails, and throws that failure', async () => {
    const registry = await makeRegistry();
    const refusal = new StoreError('STORE_IO', 'index.json.gz', 'disk full');
    const site = registry.site;
    const putStream = site.putStream.bind(site);
    site.putStream = async (key, chunks, options) => {
      if (!key.endsWith('.gz')) return putStream(key, chunks, options);
      for await (const _ of chunks) throw refusal;
    };
    const ctx = { ...registry.context, compressionThresholdBytes: 0 };
    const { document } = documentOf();
    await expect(putStreamedSigned(ctx, document, false)).rejects.toBe(refusal);
    expect(site.objects.has('index.json')).toBe(false);
    expect(site.objects.has('index.json.gz')).toBe(false);
    const br = site.objects.get('index.json.br');
    if (br) expect(Buffer.compare(brotliDecompressSync(br.body), whole)).toBe(0);
  });
});
