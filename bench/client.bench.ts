/**
 * `npm run bench` (the consumer): what a user's machine pays to install one plugin from a registry of
 * 10,000 plugins of 10 versions each, through the real `plugindex` command against the local server over
 * HTTP on 127.0.0.1. Each scenario is the median of RUNS fresh processes; requests are counted by the server
 * and bytes are what its sockets wrote (headers included).
 *
 *   cold      `registry update` + `install NAME`, the cache, install folder and lock file all empty
 *   warm      the same again, nothing changed on the server (goal: one conditional request, no download)
 *   refill    `install` (from the lock) into an empty folder with the cache kept
 *   frozen    `install --frozen` of a tree that already matches the lock (goal: under 150 ms)
 *   frozen, empty folder   `install --frozen` into an empty folder, from the cache alone
 *
 * Goals (issue 11): cold at most 1% of the bytes of index.json and at most five requests. Side by side, in
 * the same run: `apt-get update` + `apt-get download` of one package from a reprepro repository of the same
 * size (bench/apt-side.ts; skipped with a note when reprepro cannot be installed).
 * Size: `node --import tsx bench/client.bench.ts 1000` (default 10000).
 */
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { FsStore } from '../adapters/fs-store.ts';
import { createRegistryServer, listenRegistryServer } from '../cli/local/server.ts';
import { systemClock } from '../index-builder/clock.ts';
import { parseRegistryConfig } from '../index-builder/config.ts';
import { INDEX_JSON_KEY, pluginDocumentKey } from '../index-builder/layout.ts';
import {
  type PipelineContext,
  processSubmissions,
  rebuildRegistry,
} from '../index-builder/pipeline/index.ts';
import { encodeJson } from '../index-builder/render/documents.ts';
import { createSigner, generateKeyPair } from '../index-builder/signing.ts';
import { CACHE_MUTABLE, CACHE_PRIVATE } from '../index-builder/store.ts';
import { packSubmission } from '../index-builder/submission.ts';
import { median } from './stats.ts';
import { manifestFor, syntheticDocument, URL_BASE, VERSIONS_PER_PLUGIN } from './synthetic.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const run = promisify(execFile);
const BIN = path.join(ROOT, 'cli', 'bin.mjs');
const RUNS = 5;
const TARGET = 'bench-target';
/** The same payload as each apt package of the side-by-side run carries. */
const ARTIFACT_BYTES = 1024;

interface Measure {
  readonly ms: number;
  readonly requests: number;
  readonly bytes: number;
}

/** A registry of `size` plugins: size - 1 synthetic documents, and TARGET published for real (10 versions). */
async function buildRegistry(
  dir: string,
  size: number,
): Promise<{ site: FsStore; keyFile: string; indexBytes: number }> {
  const registryKey = await generateKeyPair({ name: 'bench registry' });
  const publisher = await generateKeyPair({ name: 'bench publisher' });
  const ctx: PipelineContext = {
    intake: new FsStore(dir),
    site: new FsStore(path.join(dir, 'public')),
    signer: await createSigner(registryKey.secretKey),
    clock: systemClock,
    config: parseRegistryConfig({ name: 'Bench', url: URL_BASE }),
  };
  for (let i = 0; i < size - 1; i++) {
    const doc = syntheticDocument(i, publisher.fingerprint);
    await ctx.site.put(pluginDocumentKey(doc.name), encodeJson(doc), {
      contentType: 'application/json',
      cacheControl: CACHE_MUTABLE,
    });
  }
  await rebuildRegistry(ctx);
  const keys: string[] = [];
  for (let v = 0; v < VERSIONS_PER_PLUGIN; v++) {
    const packed = await packSubmission({
      manifestName: 'manifest.json',
      manifest: manifestFor(TARGET, `1.${v}.0`),
      artifacts: [{ os: 'linux', arch: 'amd64', fileName: TARGET, body: randomBytes(ARTIFACT_BYTES) }],
      secretKey: publisher.secretKey,
    });
    const key = `incoming/target-${v}.tgz`;
    await ctx.intake.put(key, packed.bundle, {
      contentType: 'application/gzip',
      cacheControl: CACHE_PRIVATE,
    });
    keys.push(key);
  }
  const result = await processSubmissions(ctx, keys);
  if (result.outcomes.some((o) => o.status !== 'accepted')) throw new Error('bench target was not accepted');
  const keyFile = path.join(dir, 'registry.asc');
  await writeFile(keyFile, registryKey.publicKey);
  const indexBytes = (await ctx.site.head(INDEX_JSON_KEY))?.size ?? 0;
  return { site: ctx.site as FsStore, keyFile, indexBytes };
}

/** The local server with what the benchmark counts: requests, and every byte its sockets wrote. */
async function serve(site: FsStore) {
  let requests = 0;
  const sockets = new Set<Socket>();
  const server = createRegistryServer({ site, log: () => requests++ });
  server.on('connection', (socket: Socket) => sockets.add(socket));
  const listening = await listenRegistryServer(server, 0);
  return {
    url: listening.url,
    close: listening.close,
    /** Counts from now on; `read()` gives what arrived since. */
    start(): () => { requests: number; bytes: number } {
      const before = requests;
      const written = new Map([...sockets].map((s) => [s, s.bytesWritten]));
      return () => ({
        requests: requests - before,
        bytes: [...sockets].reduce((sum, s) => sum + s.bytesWritten - (written.get(s) ?? 0), 0),
      });
    },
  };
}

async function main(): Promise<void> {
  const size = Number(process.argv[2] ?? 10000);
  const work = await mkdtemp(path.join(tmpdir(), 'plugindex-client-bench-'));
  const home = path.join(work, 'home');
  const env = {
    ...process.env,
    PLUGINDEX_CONFIG_HOME: path.join(home, 'config'),
    PLUGINDEX_DATA_HOME: path.join(home, 'data'),
    PLUGINDEX_CACHE_HOME: path.join(home, 'cache'),
    CI: '1',
  };
  await mkdir(home, { recursive: true });
  const t = performance.now();
  const registry = await buildRegistry(path.join(work, 'registry'), size);
  console.log(
    `node ${process.version}; a registry of ${size} plugins x ${VERSIONS_PER_PLUGIN} versions built in ${((performance.now() - t) / 1000).toFixed(1)} s; index.json ${registry.indexBytes} bytes; median of ${RUNS} runs each\n`,
  );
  const server = await serve(registry.site);

  /**
   * One command as a process, timed; a failure stops the benchmark (it would measure nothing). Never a
   * synchronous spawn: the server answering it runs in this process.
   */
  const plugindex = async (...args: string[]): Promise<number> => {
    const started = performance.now();
    await run(process.execPath, [BIN, ...args], { cwd: home, env }).catch((error: { stderr?: string }) => {
      throw new Error(`plugindex ${args.join(' ')} failed: ${error.stderr ?? String(error)}`);
    });
    return performance.now() - started;
  };
  const clear = async (...what: ('cache' | 'plugins' | 'lock')[]): Promise<void> => {
    for (const w of what)
      await rm(
        w === 'lock'
          ? path.join(home, 'plugindex.lock')
          : w === 'cache'
            ? env.PLUGINDEX_CACHE_HOME
            : path.join(home, 'plugins'),
        {
          recursive: true,
          force: true,
        },
      );
  };
  const measure = async (prepare: () => Promise<void>, ...commands: string[][]): Promise<Measure> => {
    const runs: Measure[] = [];
    for (let r = 0; r < RUNS; r++) {
      await prepare();
      const read = server.start();
      let ms = 0;
      for (const command of commands) ms += await plugindex(...command);
      runs.push({ ms, ...read() });
    }
    return {
      ms: median(runs.map((m) => m.ms)),
      requests: median(runs.map((m) => m.requests)),
      bytes: median(runs.map((m) => m.bytes)),
    };
  };

  await plugindex('registry', 'add', 'bench', server.url, '--key', registry.keyFile);
  const update = ['registry', 'update'];
  const install = ['install', TARGET, '--dir', 'plugins', '--platform', 'linux/amd64'];
  const results: [string, Measure][] = [];
  results.push([
    'cold: registry update + install',
    await measure(() => clear('cache', 'plugins', 'lock'), update, install),
  ]);
  results.push(['warm: registry update + install', await measure(async () => {}, update, install)]);
  results.push(['refill: install into an empty folder', await measure(() => clear('plugins'), install)]);
  const frozen = ['install', '--frozen', '--dir', 'plugins', '--platform', 'linux/amd64'];
  results.push(['frozen: install --frozen, installed', await measure(async () => {}, frozen)]);
  results.push(['frozen, empty folder', await measure(() => clear('plugins'), frozen)]);
  const floor = median(
    Array.from({ length: RUNS }, () => {
      const started = performance.now();
      spawnSync(process.execPath, ['-e', '0']);
      return performance.now() - started;
    }),
  );
  await stat(path.join(home, 'plugins', TARGET, `1.${VERSIONS_PER_PLUGIN - 1}.0`));

  for (const [name, m] of results)
    console.log(
      `  ${name.padEnd(40)} ${m.ms.toFixed(0).padStart(6)} ms  ${String(m.requests).padStart(3)} requests  ${String(m.bytes).padStart(9)} bytes`,
    );
  console.log(`  ${'node -e 0 (the floor)'.padEnd(40)} ${floor.toFixed(0).padStart(6)} ms`);
  const cold = results[0]?.[1] as Measure;
  console.log(
    `\n  cold bytes are ${((cold.bytes / registry.indexBytes) * 100).toFixed(2)}% of index.json (goal <= 1%, of which the artifact itself is ${ARTIFACT_BYTES} bytes); cold requests ${cold.requests} (goal <= 5)`,
  );

  try {
    const { measureApt } = await import('./apt-side.ts');
    const apt = await measureApt({
      packages: size,
      workDir: path.join(tmpdir(), 'plugindex-apt-bench'),
      runs: RUNS,
    });
    console.log(
      `\n  side by side: ${apt.aptVersion}, ${apt.repreproVersion}, ${apt.packages} packages (Packages index ${apt.packagesIndexBytes} bytes)`,
    );
    for (const [name, m] of [
      ['apt cold: update + download', apt.cold],
      ['apt warm: update + download', apt.warm],
    ] as const)
      console.log(
        `  ${name.padEnd(40)} ${m.ms.toFixed(0).padStart(6)} ms  ${String(m.requests).padStart(3)} requests  ${String(m.bytes).padStart(9)} bytes`,
      );
    const warm = results[1]?.[1] as Measure;
    console.log(
      `  ratios plugindex/apt: cold time ${(cold.ms / apt.cold.ms).toFixed(2)}x, cold bytes ${(cold.bytes / apt.cold.bytes).toFixed(3)}x; warm time ${(warm.ms / apt.warm.ms).toFixed(2)}x, warm bytes ${(warm.bytes / apt.warm.bytes).toFixed(3)}x`,
    );
  } catch (error) {
    console.log(`\n  side by side with apt skipped: ${(error as Error).message}`);
  }
  await server.close();
  await rm(work, { recursive: true, force: true });
}

await main();
