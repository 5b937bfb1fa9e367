/**
 * A registry of any size for the scale benchmark and the memory-bound test, seeded without running the
 * pipeline per plugin (a rebuild of 100,000 plugin documents takes many minutes): the catalog's lines are
 * made from synthetic documents and committed once. Only the plugins the run publishes into have a plugin
 * document (a publish reads it); the snapshot bins list the catalog's digests for the rest.
 *
 * `seedRegistry` makes one in a folder; `runScale` (in a process of its own: `node --import tsx
 * bench/scale.ts DIR RUNS`) then times deferred publishes into it and one flush, and reports its peak RSS.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { FsStore } from '../adapters/fs-store.ts';
import {
  catalogLineOf,
  emptyCatalog,
  openCatalog,
  outlineCatalog,
  saveCatalog,
} from '../index-builder/catalog.ts';
import { systemClock } from '../index-builder/clock.ts';
import { parseRegistryConfig } from '../index-builder/config.ts';
import { sha256Hex } from '../index-builder/digest.ts';
import { pluginDocumentKey } from '../index-builder/layout.ts';
import { commitGeneration } from '../index-builder/pipeline/commit.ts';
import { flushIndexes, type PipelineContext, processSubmissions } from '../index-builder/pipeline/index.ts';
import { encodeJson } from '../index-builder/render/documents.ts';
import { createSigner, generateKeyPair } from '../index-builder/signing.ts';
import { CACHE_MUTABLE, CACHE_PRIVATE, type Store } from '../index-builder/store.ts';
import { packSubmission } from '../index-builder/submission.ts';
import { median } from './stats.ts';
import { manifestFor, pluginName, syntheticDocument, URL_BASE } from './synthetic.ts';

/** Plugins the runs publish into (each has its plugin document): one per run, spread over the registry. */
const TARGETS = 16;
const targetOf = (run: number, size: number): number => (run * 7919) % size;

export interface Keys {
  readonly registry: string;
  readonly publisher: string;
  readonly publisherFingerprint: string;
}

function contextFor(dir: string, signer: PipelineContext['signer']): PipelineContext {
  return {
    intake: new FsStore(dir),
    site: new FsStore(path.join(dir, 'public')),
    signer,
    clock: systemClock,
    config: parseRegistryConfig({ name: 'Scale', url: URL_BASE }),
  };
}

/** Seeds a registry of `size` plugins of 10 versions in `dir` (empty), committed once, nothing pending. */
export async function seedRegistry(dir: string, size: number): Promise<void> {
  const keys = await makeKeys();
  await writeFile(path.join(dir, 'keys.json'), JSON.stringify(keys));
  await seedStores(contextFor(dir, await createSigner(keys.registry)), keys, size);
}

/** The registry's and a publisher's keys, as a scale run reads them back (keys.json). */
export async function makeKeys(): Promise<Keys> {
  const registryKey = await generateKeyPair({ name: 'scale registry' });
  const publisher = await generateKeyPair({ name: 'scale publisher' });
  return {
    registry: registryKey.secretKey,
    publisher: publisher.secretKey,
    publisherFingerprint: publisher.fingerprint,
  };
}

/** Seeds the stores of `ctx` with `size` plugins of 10 versions, committed once, nothing pending. */
export async function seedStores(ctx: PipelineContext, keys: Keys, size: number): Promise<void> {
  const catalog = emptyCatalog();
  const targets = new Set(Array.from({ length: TARGETS }, (_, r) => targetOf(r, size)));
  for (let i = 0; i < size; i++) {
    const doc = syntheticDocument(i, keys.publisherFingerprint);
    const body = encodeJson(doc);
    if (targets.has(i))
      await ctx.site.put(pluginDocumentKey(doc.name), body, {
        contentType: 'application/json',
        cacheControl: CACHE_MUTABLE,
      });
    // Only the targets' documents are ever read, and held to the digest the catalog records
    // (pipeline/published.ts); a stand-in for the rest, which are never hashed.
    const sha256 = targets.has(i) ? sha256Hex(body) : 'e'.repeat(64);
    catalog.plugins.set(doc.name, catalogLineOf(doc, { sha256, size: body.byteLength }, URL_BASE));
  }
  await saveCatalog(ctx.intake, catalog);
  await commitGeneration(ctx, catalog);
}

/** A bundle of a new version of one of the plugins that have a document (`run` picks which). */
export async function scaleBundle(
  keys: Keys,
  size: number,
  run: number,
  series: number,
): Promise<Uint8Array> {
  const artifact = { os: 'linux', arch: 'amd64', fileName: 'tool', body: new Uint8Array(64 * 1024).fill(7) };
  const packed = await packSubmission({
    manifestName: 'manifest.json',
    manifest: manifestFor(pluginName(targetOf(run % TARGETS, size)), `3.${series}.${run}`),
    artifacts: [artifact],
    secretKey: keys.publisher,
  });
  return packed.bundle;
}

export interface ScaleResult {
  readonly plugins: number;
  /** Each deferred publish, in order (the first in a cold process). */
  readonly publishes: readonly number[];
  /** Each flush, in order (the first renders every line afresh; later ones reuse what it kept). */
  readonly flushes: readonly number[];
  /** Bytes of the index documents the flush wrote (the documents, not their variants). */
  readonly flushBytes: number;
  /** Peak resident set of the whole process, in bytes. */
  readonly maxRss: number;
  /** The peak before the flush (the catalog loaded, the publishes done): what the flush adds is above it. */
  readonly maxRssBeforeFlush: number;
}

/**
 * `runs` deferred publishes of one new version each into the registry in `dir`, then `flushes` flushes
 * (default 1), each after one more publish (untimed) so that it has something to render.
 */
export async function runScale(
  dir: string,
  runs: number,
  context: Partial<PipelineContext> = {},
  options: { readonly flushes?: number } = {},
): Promise<ScaleResult> {
  const keys = JSON.parse(await readFile(path.join(dir, 'keys.json'), 'utf8')) as Keys;
  const ctx = { ...contextFor(dir, await createSigner(keys.registry)), ...context };
  // The plugins' count from the bins, one at a time: a warm process never holds every line.
  const opened = await openCatalog(ctx.intake);
  const size = (await outlineCatalog(ctx.intake, opened)).names.length;
  // Versions never published before in this registry, however many runs it has seen.
  const series = Date.now();
  let published = 0;
  const publish = async (): Promise<number> => {
    const r = published++;
    const bundle = await scaleBundle(keys, size, r, series);
    const key = `incoming/scale-${r}.tgz`;
    await ctx.intake.put(key, bundle, {
      contentType: 'application/gzip',
      cacheControl: CACHE_PRIVATE,
    });
    const t = performance.now();
    const result = await processSubmissions({ ...ctx, deferIndexes: true }, [key]);
    const time = performance.now() - t;
    if (result.outcomes[0]?.status !== 'accepted' || !result.indexesPending)
      throw new Error(`scale publish not accepted, or not deferred: ${JSON.stringify(result.outcomes[0])}`);
    return time;
  };
  const publishes: number[] = [];
  for (let r = 0; r < runs; r++) publishes.push(await publish());
  const maxRssBeforeFlush = process.resourceUsage().maxRSS * 1024;
  const flushes: number[] = [];
  for (let f = 0; f < (options.flushes ?? 1); f++) {
    if (f > 0 || runs === 0) await publish();
    const t = performance.now();
    const flushed = await flushIndexes(ctx);
    flushes.push(performance.now() - t);
    if (flushed.generation === null) throw new Error('scale flush found nothing pending');
  }
  const flushBytes = await indexBytes(ctx.site);
  const maxRss = process.resourceUsage().maxRSS * 1024;
  return { plugins: size, publishes, flushes, flushBytes, maxRss, maxRssBeforeFlush };
}

async function indexBytes(site: Store): Promise<number> {
  let bytes = 0;
  for (const key of ['index.json', 'index.yaml', 'search.json', 'falcoctl/index.yaml'])
    bytes += (await site.head(key))?.size ?? 0;
  return bytes;
}

export const warmMedian = (result: ScaleResult, warmup = 2): number => median(result.publishes.slice(warmup));

// As a process of its own: `node --import tsx bench/scale.ts DIR RUNS FLUSHES [STREAM_OVER_BYTES]`, one
// JSON line.
if (process.argv[1] && import.meta.url.endsWith(path.basename(process.argv[1]))) {
  const [dir, runs, flushes, streamOver] = process.argv.slice(2);
  if (!dir) throw new Error('usage: scale.ts DIR RUNS FLUSHES [STREAM_OVER_BYTES]');
  const context = streamOver ? { streamIndexesOverBytes: Number(streamOver) } : {};
  const result = await runScale(dir, Number(runs ?? 9), context, { flushes: Number(flushes ?? 1) });
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
