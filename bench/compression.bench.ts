/**
 * `npm run bench`: what publishing the index documents pre-compressed costs (index-builder/compression.ts).
 *
 * 1. The index flush at 10,000 plugins of 10 versions on the filesystem store, with the variants compressed
 *    (the default threshold) and without (a threshold no document passes), alternating, median of 5 each
 *    after one untimed of each: the ratio is what compression adds to a flush.
 * 2. Brotli qualities and gzip levels over an `index.json` of 10,000 plugins whose names, text, dates and
 *    versions are random (the synthetic registry repeats itself and compresses ~100x, which flatters every
 *    level): time (median of 5) and ratio for each, the measurement BROTLI_QUALITY and GZIP_LEVEL stand on.
 * `npm run bench -- 1000` changes the registry size.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { FsStore } from '../adapters/fs-store.ts';
import { systemClock } from '../index-builder/clock.ts';
import { BROTLI_QUALITY, GZIP_LEVEL } from '../index-builder/compression.ts';
import { parseRegistryConfig } from '../index-builder/config.ts';
import { INDEX_DOCUMENTS, pluginDocumentKey } from '../index-builder/layout.ts';
import type { PluginDocument } from '../index-builder/model.ts';
import {
  flushIndexes,
  type PipelineContext,
  processSubmissions,
  rebuildRegistry,
} from '../index-builder/pipeline/index.ts';
import { buildIndexEntry, encodeJson } from '../index-builder/render/documents.ts';
import { createSigner, generateKeyPair } from '../index-builder/signing.ts';
import { CACHE_MUTABLE, CACHE_PRIVATE } from '../index-builder/store.ts';
import { packSubmission } from '../index-builder/submission.ts';
import { median } from './stats.ts';
import { manifestFor, pluginName, syntheticDocument, URL_BASE } from './synthetic.ts';

const RUNS = 5;
const ms = (n: number): string => `${n.toFixed(0)} ms`;
const MB = (n: number): string => `${(n / 1e6).toFixed(1)} MB`;

async function flushes(size: number): Promise<void> {
  const registryKey = await generateKeyPair({ name: 'bench registry' });
  const publisher = await generateKeyPair({ name: 'bench publisher' });
  const dir = await mkdtemp(path.join(tmpdir(), `plugindex-bench-compression-${size}-`));
  try {
    const ctx: PipelineContext = {
      intake: new FsStore(dir),
      site: new FsStore(path.join(dir, 'public')),
      signer: await createSigner(registryKey.secretKey),
      clock: systemClock,
      config: parseRegistryConfig({ name: 'Bench', url: URL_BASE }),
    };
    for (let i = 0; i < size; i++) {
      const doc = syntheticDocument(i, publisher.fingerprint);
      await ctx.site.put(pluginDocumentKey(doc.name), encodeJson(doc), {
        contentType: 'application/json',
        cacheControl: CACHE_MUTABLE,
      });
    }
    await rebuildRegistry(ctx);
    let bytes = 0;
    for (const key of INDEX_DOCUMENTS) bytes += (await ctx.site.head(key))?.size ?? 0;
    const timed = { compressed: [] as number[], plain: [] as number[] };
    const artifact = { os: 'linux', arch: 'amd64', fileName: 'tool', body: new Uint8Array(1024).fill(7) };
    for (let r = 0; r < 2 * (RUNS + 1); r++) {
      const packed = await packSubmission({
        manifestName: 'manifest.json',
        manifest: manifestFor(pluginName((r * 37) % size), `3.${r}.0`),
        artifacts: [artifact],
        secretKey: publisher.secretKey,
      });
      const key = `incoming/bench-${r}.tgz`;
      await ctx.intake.put(key, packed.bundle, {
        contentType: 'application/gzip',
        cacheControl: CACHE_PRIVATE,
      });
      await processSubmissions({ ...ctx, deferIndexes: true }, [key]);
      // Plain first, so the last flush leaves compressed variants to measure.
      const compressed = r % 2 === 1;
      const flushing = compressed ? ctx : { ...ctx, compressionThresholdBytes: Number.POSITIVE_INFINITY };
      const t = performance.now();
      await flushIndexes(flushing);
      const took = performance.now() - t;
      if (r >= 2) timed[compressed ? 'compressed' : 'plain'].push(took);
    }
    let variants = 0;
    for (const key of INDEX_DOCUMENTS) variants += (await ctx.site.head(`${key}.br`))?.size ?? 0;
    const withCompression = median(timed.compressed);
    const without = median(timed.plain);
    console.log(
      `${size} plugins, index documents ${MB(bytes)} (as brotli ${MB(variants)}: the synthetic registry repeats itself): ` +
        `flush with variants ${ms(withCompression)}, without ${ms(without)}, ` +
        `${(withCompression / without).toFixed(2)}x (+${ms(withCompression - without)})`,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** An index.json of `size` plugins whose every field varies, as a real registry's do. */
function realisticIndex(size: number): Uint8Array {
  const words = Array.from(
    { length: 3000 },
    () =>
      randomBytes(3 + Math.floor(Math.random() * 4))
        .toString('base64')
        .replace(/[^a-z]/gi, '')
        .toLowerCase() || 'x',
  );
  const word = () => words[Math.floor(Math.random() * words.length)] as string;
  const text = (n: number) => Array.from({ length: n }, word).join(' ');
  const entries = [];
  for (let i = 0; i < size; i++) {
    const doc = syntheticDocument(i, randomBytes(20).toString('hex').toUpperCase());
    const name = `${word()}-${word()}-${i}`;
    const versions = doc.versions.map((v) => {
      const version = `${Math.floor(Math.random() * 5)}.${Math.floor(Math.random() * 40)}.${Math.floor(Math.random() * 20)}`;
      return {
        ...v,
        version,
        published: new Date(Date.UTC(2024, 0, 1) + Math.floor(Math.random() * 6e10)).toISOString(),
        manifest_url: `${URL_BASE}/plugins/${name}/${version}/manifest.json`,
      };
    });
    const varied: PluginDocument = {
      ...doc,
      name,
      display_name: text(3),
      description: text(18),
      tags: [word(), word()],
      versions,
    };
    entries.push(buildIndexEntry(varied));
  }
  return encodeJson({ registry_version: '1.0.0', plugins: entries });
}

function levels(size: number): void {
  const body = realisticIndex(size);
  console.log(
    `\nindex.json of ${size} plugins with varied fields: ${MB(body.byteLength)}, median of ${RUNS}`,
  );
  const time = (label: string, compress: () => Buffer) => {
    const times: number[] = [];
    let out = 0;
    for (let r = 0; r < RUNS; r++) {
      const t = performance.now();
      out = compress().byteLength;
      times.push(performance.now() - t);
    }
    console.log(
      `  ${label.padEnd(22)} ${ms(median(times)).padStart(8)}  ${MB(out).padStart(8)}  ${(body.byteLength / out).toFixed(1)}x`,
    );
  };
  for (const quality of [1, 3, 4, 5, 6, 9]) {
    const chosen = quality === BROTLI_QUALITY ? ' (chosen)' : '';
    time(`brotli ${quality}${chosen}`, () =>
      zlib.brotliCompressSync(body, {
        params: {
          [zlib.constants.BROTLI_PARAM_QUALITY]: quality,
          [zlib.constants.BROTLI_PARAM_MODE]: zlib.constants.BROTLI_MODE_TEXT,
          [zlib.constants.BROTLI_PARAM_SIZE_HINT]: body.byteLength,
        },
      }),
    );
  }
  for (const level of [1, 4, 6, 9]) {
    time(`gzip ${level}${level === GZIP_LEVEL ? ' (chosen)' : ''}`, () => zlib.gzipSync(body, { level }));
  }
}

const size = Number(process.argv.slice(2).find((a) => Number(a) > 0) ?? 10000);
console.log('\ncompressed delivery');
await flushes(size);
levels(size);
