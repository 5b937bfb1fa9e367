/**
 * `npm run bench`: publish cost against registry size, on the local filesystem store.
 *
 * For 100, 1,000 and 10,000 plugins of 10 versions each: seed the plugin documents, time a full rebuild,
 * then time publishing one new version (median of 7 runs, after 2 untimed ones, each from a flushed disk) as
 * the watcher and the publish function do it (index documents deferred), and apart from it the flush that
 * renders the index documents. Then a batch of 100 submissions into the 1,000-plugin registry. Then
 * 100,000, seeded (below). Prints medians, the ratios of the largest size to the smallest (goal: a publish
 * within 3x) and the growth in between, and issue 14's goals at scale: the full rebuild of 10,000 plugins
 * under 10 s, and at 100,000 a warm publish under 50 ms and the flush's peak resident set under 512 MiB.
 * Sizes can be overridden: `node --import tsx bench/publish.bench.ts 100 1000`; PLUGINDEX_BENCH_PROFILE=DIR
 * profiles the publishes.
 *
 * Sizes of 30,000 and more are seeded straight into the catalog (bench/scale.ts: a rebuild of 100,000
 * plugin documents would take many minutes; seeding 100,000 takes about 25 s) and measured in a process of
 * their own, which also reports its peak resident set before and after the flush: the flush streams the
 * index documents once they pass 128 MB together. Every size prints the flush's time per MB of index
 * documents written, which should not grow with the registry.
 */

import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { FsStore } from '../adapters/fs-store.ts';
import { systemClock } from '../index-builder/clock.ts';
import { parseRegistryConfig } from '../index-builder/config.ts';
import { pluginDocumentKey } from '../index-builder/layout.ts';
import {
  flushIndexes,
  type PipelineContext,
  processSubmissions,
  rebuildRegistry,
} from '../index-builder/pipeline/index.ts';
import { encodeJson } from '../index-builder/render/documents.ts';
import { createSigner, generateKeyPair } from '../index-builder/signing.ts';
import { CACHE_MUTABLE, CACHE_PRIVATE } from '../index-builder/store.ts';
import { packSubmission } from '../index-builder/submission.ts';
import { describeFileSystem, type FileSystemState, settledFileSystem } from './fs-state.ts';
import { type ScaleResult, seedRegistry } from './scale.ts';
import { goalVerdict, median } from './stats.ts';
import { manifestFor, pluginName, syntheticDocument, URL_BASE, VERSIONS_PER_PLUGIN } from './synthetic.ts';

const RUNS = 7;
/** Untimed publishes first at every size, so no size pays for the JIT and caches warming up. */
const WARMUP = 2;

const ms = (n: number): string => `${n.toFixed(1)} ms`;
const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(0)} MB`;
/** Memory as Lambda sizes it (MiB). */
const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
/** From this size on, a registry is seeded into the catalog and measured in a child process. */
const SCALE_FROM = 30_000;
/** Issue 14's goals at scale, each checked at the size it names when the run includes it. */
const REBUILD_GOAL = { size: 10_000, ms: 10_000 };
const WARM_PUBLISH_GOAL = { size: 100_000, ms: 50 };
const PEAK_RSS_GOAL = { size: 100_000, bytes: 512 * 1024 * 1024 };
const INDEX_KEYS = ['index.json', 'index.yaml', 'search.json', 'falcoctl/index.yaml'];

/**
 * With PLUGINDEX_BENCH_PROFILE=DIR, a V8 CPU profile of the timed publishes only (not the setup or the
 * rebuild), written as DIR/publish-<size>.cpuprofile for Chrome DevTools or speedscope.
 */
async function startProfile(): Promise<{ stop(name: string): Promise<void> } | undefined> {
  const dir = process.env.PLUGINDEX_BENCH_PROFILE;
  if (!dir) return undefined;
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
  return {
    async stop(name) {
      const { profile } = await session.post('Profiler.stop');
      await mkdir(dir, { recursive: true });
      await writeFile(path.join(dir, `${name}.cpuprofile`), JSON.stringify(profile));
      session.disconnect();
    },
  };
}

interface Result {
  size: number;
  rebuild: number;
  /** The rebuild's CPU (every thread of this process: the writer's is mostly the kernel's), in µs. */
  rebuildCpu?: NodeJS.CpuUsage;
  /** What making a file cost just before the rebuild. */
  fileSystem?: FileSystemState;
  /** Median publish with the index documents deferred. */
  publish: number;
  /** Median flush of the index documents after it. */
  flush: number;
  /** Median of the two together. */
  whole: number;
  batch?: number;
  /** Bytes of the index documents a flush writes. */
  flushBytes: number;
  /** Peak resident set before the flush and after it (seeded sizes only). */
  rss?: { before: number; after: number };
}

/** A seeded registry of `size` plugins, measured by bench/scale.ts in a process of its own. */
async function measureSeeded(size: number): Promise<Result> {
  const dir = await mkdtemp(path.join(tmpdir(), `plugindex-bench-${size}-`));
  try {
    let t = performance.now();
    await seedRegistry(dir, size);
    console.log(`${String(size).padStart(6)} plugins seeded in ${ms(performance.now() - t)}`);
    t = performance.now();
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(import.meta.dirname, 'scale.ts'), dir, String(WARMUP + RUNS), '3'],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    for await (const chunk of child.stdout) out += chunk;
    const result = JSON.parse(out) as ScaleResult;
    const publish = median(result.publishes.slice(WARMUP));
    // The first flush encodes every line afresh; the later ones are what a warm process pays.
    const flush = median(result.flushes.slice(1));
    return {
      size,
      rebuild: Number.NaN,
      publish,
      flush,
      whole: publish + flush,
      flushBytes: result.flushBytes,
      rss: { before: result.maxRssBeforeFlush, after: result.maxRss },
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * `sync` (flush the disk's dirty pages) without forking this process between publishes: a fork marks every
 * page of ours copy-on-write, and the next write to each page of the kept render buffers faults (about 15
 * ms per flush at 10,000 plugins), a cost no publishing process pays. One shell, started once, syncs on
 * request.
 */
function startSyncer(): { sync(): Promise<void>; close(): void } {
  const child = spawn('sh', ['-c', 'while read -r _; do sync; echo synced; done'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  return {
    async sync() {
      child.stdin.write('\n');
      if ((await lines.next()).done) throw new Error('the sync helper exited');
    },
    close() {
      child.stdin.end();
    },
  };
}

async function main(): Promise<void> {
  const sizes = process.argv
    .slice(2)
    .map(Number)
    .filter((n) => n > 0);
  const plan = sizes.length > 0 ? sizes : [100, 1000, 10000, 100000];
  const registryKey = await generateKeyPair({ name: 'bench registry' });
  const publisher = await generateKeyPair({ name: 'bench publisher' });
  const signer = await createSigner(registryKey.secretKey);
  const config = parseRegistryConfig({ name: 'Bench', url: URL_BASE });
  const artifact = { os: 'linux', arch: 'amd64', fileName: 'tool', body: new Uint8Array(64 * 1024).fill(7) };
  const results: Result[] = [];
  const syncer = startSyncer();

  console.log(
    `node ${process.version}, ${VERSIONS_PER_PLUGIN} versions per plugin, median of ${RUNS} publishes\n`,
  );
  for (const size of plan) {
    if (size >= SCALE_FROM) {
      const entry = await measureSeeded(size);
      results.push(entry);
      console.log(
        `${String(size).padStart(6)} plugins (seeded): publish one version ${ms(entry.publish)}, index flush ${ms(entry.flush)} for ${mb(entry.flushBytes)} (${ms(entry.flush / (entry.flushBytes / 1e6))} per MB), peak RSS ${mb(entry.rss?.before ?? 0)} before the flush, ${mb(entry.rss?.after ?? 0)} after`,
      );
      continue;
    }
    const dir = await mkdtemp(path.join(tmpdir(), `plugindex-bench-${size}-`));
    const ctx: PipelineContext = {
      intake: new FsStore(dir),
      site: new FsStore(path.join(dir, 'public')),
      signer,
      clock: systemClock,
      config,
    };
    for (let i = 0; i < size; i++) {
      const doc = syntheticDocument(i, publisher.fingerprint);
      await ctx.site.put(pluginDocumentKey(doc.name), encodeJson(doc), {
        contentType: 'application/json',
        cacheControl: CACHE_MUTABLE,
      });
    }
    // The rebuild makes some 30,000 files: timed once the seeding's writes are on the disk (their writeback
    // took a core from the rebuild) and the file system's cost of one is back down.
    await syncer.sync();
    const probes = `${dir}-probes`;
    const fileSystem = await settledFileSystem(probes);
    const cpu = process.cpuUsage();
    let t = performance.now();
    await rebuildRegistry(ctx);
    const rebuild = performance.now() - t;
    const rebuildCpu = process.cpuUsage(cpu);

    // Bundles are packed before timing: packing is the publisher's cost, not the registry's.
    const bundles = [];
    for (let r = 0; r < WARMUP + RUNS; r++) {
      const name = pluginName((r * 37) % size);
      const packed = await packSubmission({
        manifestName: 'manifest.json',
        manifest: manifestFor(name, `2.${r}.0`),
        artifacts: [artifact],
        secretKey: publisher.secretKey,
      });
      bundles.push(packed.bundle);
    }
    // Publishes as the watcher and the publish function run them: the index documents deferred, then
    // flushed (here after every publish, the most a flush can cost: a burst shares one); each timed apart.
    const deferred: PipelineContext = { ...ctx, deferIndexes: true };
    const times: number[] = [];
    const flushes: number[] = [];
    const wholes: number[] = [];
    const profiler = await startProfile();
    for (const [r, bundle] of bundles.entries()) {
      const key = `incoming/bench-${r}.tgz`;
      await ctx.intake.put(key, bundle, { contentType: 'application/gzip', cacheControl: CACHE_PRIVATE });
      // Every timed step starts from a flushed disk, so none pays for writing back what came before
      // (the 10,000-plugin rebuild leaves gigabytes of dirty pages; a publish leaves tens of megabytes).
      await syncer.sync();
      t = performance.now();
      const result = await processSubmissions(deferred, [key]);
      const publish = performance.now() - t;
      if (result.outcomes[0]?.status !== 'accepted' || !result.indexesPending)
        throw new Error(`bench publish not accepted, or not deferred: ${JSON.stringify(result.outcomes[0])}`);
      await syncer.sync();
      t = performance.now();
      const flushed = await flushIndexes(ctx);
      const flush = performance.now() - t;
      if (flushed.generation === null) throw new Error('bench flush found nothing pending');
      if (r >= WARMUP) {
        times.push(publish);
        flushes.push(flush);
        wholes.push(publish + flush);
      }
    }
    await profiler?.stop(`publish-${size}`);
    let flushBytes = 0;
    for (const key of INDEX_KEYS) flushBytes += (await ctx.site.head(key))?.size ?? 0;
    const entry: Result = {
      size,
      rebuild,
      rebuildCpu,
      fileSystem,
      publish: median(times),
      flush: median(flushes),
      whole: median(wholes),
      flushBytes,
    };

    if (size === 1000 || (plan.length === 1 && size === plan[0])) {
      const keys = [];
      for (let b = 0; b < 100; b++) {
        const packed = await packSubmission({
          manifestName: 'manifest.json',
          manifest: manifestFor(`batch-${b}`, '1.0.0'),
          artifacts: [artifact],
          secretKey: publisher.secretKey,
        });
        const key = `incoming/batch-${String(b).padStart(3, '0')}.tgz`;
        await ctx.intake.put(key, packed.bundle, {
          contentType: 'application/gzip',
          cacheControl: CACHE_PRIVATE,
        });
        keys.push(key);
      }
      t = performance.now();
      const result = await processSubmissions(ctx, keys);
      entry.batch = performance.now() - t;
      if (result.outcomes.some((o) => o.status !== 'accepted')) throw new Error('bench batch had rejections');
    }
    results.push(entry);
    console.log(
      `${String(size).padStart(6)} plugins: publish one version ${ms(entry.publish)} (runs: ${times.map((x) => x.toFixed(0)).join(', ')}), index flush ${ms(entry.flush)} for ${mb(flushBytes)} (${ms(entry.flush / (flushBytes / 1e6))} per MB), both ${ms(entry.whole)}, full rebuild ${ms(rebuild)}${entry.batch ? `, batch of 100 ${ms(entry.batch)} (${ms(entry.batch / 100)} each)` : ''}`,
    );
    console.log(
      `         the rebuild's CPU: user ${ms((entry.rebuildCpu?.user ?? 0) / 1000)}, system ${ms((entry.rebuildCpu?.system ?? 0) / 1000)}; ${describeFileSystem(fileSystem)}`,
    );
    await rm(dir, { recursive: true, force: true });
    await rm(probes, { recursive: true, force: true });
  }
  syncer.close();
  const smallest = results[0];
  const largest = results[results.length - 1];
  if (smallest && largest && largest !== smallest) {
    const ratio = (pick: (r: Result) => number, of = largest, to = smallest): string =>
      (pick(of) / pick(to)).toFixed(2);
    const per1000 = (growth: number): string => ms((growth * 1000) / (largest.size - smallest.size));
    const at = `at ${largest.size} / at ${smallest.size} plugins`;
    console.log(`\npublish ${at}: ${ratio((r) => r.publish)}x (goal: within 3x)`);
    console.log(
      `index flush ${at}: ${ratio((r) => r.flush)}x; publish and flush together: ${ratio((r) => r.whole)}x`,
    );
    console.log(
      `index flush time per MB written ${at}: ${ratio((r) => r.flush / r.flushBytes)}x (goal: no more than 1x)`,
    );
    // Against the smallest size, whose flush is mostly a fixed cost, the ratio is low whatever the growth;
    // between the two largest it tells whether the time still follows the bytes.
    const previous = results[results.length - 2];
    if (previous && previous !== smallest)
      console.log(
        `index flush time per MB written at ${largest.size} / at ${previous.size} plugins: ${ratio((r) => r.flush / r.flushBytes, largest, previous)}x (goal: no more than 1x)`,
      );
    // The ratio moves with the fixed cost (small-file latency of the disk); the growth is what scales.
    for (const [label, pick] of [
      ['publish', (r: Result) => r.publish],
      ['index flush', (r: Result) => r.flush],
    ] as const) {
      const growth = pick(largest) - pick(smallest);
      console.log(
        `growth of the ${label} from ${smallest.size} to ${largest.size} plugins: +${ms(growth)} (${per1000(growth)} per 1,000 plugins)`,
      );
    }
  }
  printGoals(results);
}

/** Issue 14's goals at scale, for the sizes this run measured. */
function printGoals(results: readonly Result[]): void {
  const at = (size: number): Result | undefined => results.find((r) => r.size === size);
  const lines: string[] = [];
  const rebuilt = at(REBUILD_GOAL.size);
  if (rebuilt && Number.isFinite(rebuilt.rebuild))
    lines.push(
      `full rebuild of ${REBUILD_GOAL.size} plugins of ${VERSIONS_PER_PLUGIN} versions: ${ms(rebuilt.rebuild)} (${goalVerdict(rebuilt.rebuild < REBUILD_GOAL.ms, `under ${REBUILD_GOAL.ms / 1000} s`)})`,
    );
  const warm = at(WARM_PUBLISH_GOAL.size);
  if (warm)
    lines.push(
      `warm publish at ${WARM_PUBLISH_GOAL.size} plugins: ${ms(warm.publish)} (${goalVerdict(warm.publish < WARM_PUBLISH_GOAL.ms, `under ${WARM_PUBLISH_GOAL.ms} ms`)})`,
    );
  const peak = at(PEAK_RSS_GOAL.size)?.rss;
  if (peak) {
    const most = Math.max(peak.before, peak.after);
    lines.push(
      `peak RSS at ${PEAK_RSS_GOAL.size} plugins, the flush included: ${mib(most)} (${goalVerdict(most < PEAK_RSS_GOAL.bytes, `under ${mib(PEAK_RSS_GOAL.bytes)}`)})`,
    );
  }
  if (lines.length > 0) console.log(`\n${lines.join('\n')}`);
}

await main();
