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
 * Then a plugin set (issue 12): `install -c plugins.yaml` of SET_SIZE plugins published for real among the
 * registry's plugins (each in three versions, named by an exact version, a ^range or `latest` in turn), the
 * registry pinned by a key file beside the set:
 *
 *   set cold      `install -c`, the cache, install folder and lock all empty
 *   set warm      the same again, nothing changed (goal: no request, the tree already is the lock)
 *   set refill    `install -c` with the cache kept, the install folder and lock removed
 *   set frozen    `install -c --frozen` on a clean cache and an empty folder: only the artifacts, from the
 *                 URLs the lock records (goal: no snapshot, bin, document or manifest request)
 *   set diff      `diff -c` when nothing changed: exit 0 (goal: at most one conditional request per registry)
 *
 * Goals (issue 11): cold at most 1% of the bytes of index.json and at most five requests. Side by side, in
 * the same run: `apt-get update` + `apt-get download` of one package from a reprepro repository of the same
 * size (bench/apt-side.ts; skipped with a note when reprepro cannot be installed).
 * Size: `node --import tsx bench/client.bench.ts 1000` (default 10000).
 */
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
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
/** The plugins of the set, published for real (issue 12: a set of 50). */
const SET_SIZE = 50;
/** Each set plugin's versions: enough for an exact version, a ^range and `latest` to pick different ones. */
const SET_VERSIONS = ['1.0.0', '1.1.0', '2.0.0'] as const;
/** The set names its plugins by these specs in turn; each with the version it must resolve to. */
const SET_SPECS = [
  { spec: '1.0.0', resolves: '1.0.0' },
  { spec: '^1.0', resolves: '1.1.0' },
  { spec: 'latest', resolves: '2.0.0' },
] as const;
/** Up to this many synthetic documents are written at once (the build is bound by file system calls). */
const WRITE_CONCURRENCY = 32;

interface Measure {
  readonly ms: number;
  readonly requests: number;
  readonly bytes: number;
  /** The requests of the median-time run, by kind (see requestKind). */
  readonly kinds: Readonly<Record<string, number>>;
}

function setPluginName(i: number): string {
  return `set-plugin-${String(i).padStart(2, '0')}`;
}

function setSpec(i: number): (typeof SET_SPECS)[number] {
  return SET_SPECS[i % SET_SPECS.length] as (typeof SET_SPECS)[number];
}

/** What a request to the registry asked for, from the server's log line `METHOD URL STATUS`. */
function requestKind(line: string): string {
  const [, url = '', status = ''] = line.split(' ');
  const path = url.split('?')[0] ?? '';
  const kind = path.startsWith('/snapshot/bins/')
    ? 'bin'
    : path.startsWith('/snapshot')
      ? 'snapshot'
      : path.includes('/artifacts/')
        ? 'artifact'
        : /^\/plugins\/[^/]+\/index\.json$/.test(path)
          ? 'document'
          : path.endsWith('/manifest.json')
            ? 'manifest'
            : path.endsWith('.asc')
              ? 'signature'
              : 'other';
  return status === '304' ? `${kind} 304` : kind;
}

/**
 * A registry of `size` plugins: TARGET published for real (10 versions), the SET_SIZE plugins of the set
 * published for real (SET_VERSIONS each), and synthetic documents for the rest.
 */
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
  const synthetic = Math.max(0, size - 1 - SET_SIZE);
  for (let start = 0; start < synthetic; start += WRITE_CONCURRENCY)
    await Promise.all(
      Array.from({ length: Math.min(WRITE_CONCURRENCY, synthetic - start) }, (_, k) => {
        const doc = syntheticDocument(start + k, publisher.fingerprint);
        return ctx.site.put(pluginDocumentKey(doc.name), encodeJson(doc), {
          contentType: 'application/json',
          cacheControl: CACHE_MUTABLE,
        });
      }),
    );
  await rebuildRegistry(ctx);
  // One batch for every real version: the registry-wide documents are rendered once.
  const uploads = [
    ...Array.from({ length: VERSIONS_PER_PLUGIN }, (_, v) => ({ name: TARGET, version: `1.${v}.0` })),
    ...Array.from({ length: SET_SIZE }, (_, i) =>
      SET_VERSIONS.map((version) => ({ name: setPluginName(i), version })),
    ).flat(),
  ];
  const keys = await Promise.all(
    uploads.map(async ({ name, version }) => {
      const packed = await packSubmission({
        manifestName: 'manifest.json',
        manifest: manifestFor(name, version),
        artifacts: [{ os: 'linux', arch: 'amd64', fileName: name, body: randomBytes(ARTIFACT_BYTES) }],
        secretKey: publisher.secretKey,
      });
      const key = `incoming/${name}-${version}.tgz`;
      await ctx.intake.put(key, packed.bundle, {
        contentType: 'application/gzip',
        cacheControl: CACHE_PRIVATE,
      });
      return key;
    }),
  );
  const result = await processSubmissions(ctx, keys);
  const refused = result.outcomes.filter((o) => o.status !== 'accepted');
  if (refused.length > 0)
    throw new Error(`bench plugins were not accepted: ${JSON.stringify(refused.slice(0, 3))}`);
  const keyFile = path.join(dir, 'registry.asc');
  await writeFile(keyFile, registryKey.publicKey);
  const indexBytes = (await ctx.site.head(INDEX_JSON_KEY))?.size ?? 0;
  return { site: ctx.site as FsStore, keyFile, indexBytes };
}

/** The local server with what the benchmark counts: requests (its log lines), and every byte its sockets wrote. */
async function serve(site: FsStore) {
  const log: string[] = [];
  const sockets = new Set<Socket>();
  const server = createRegistryServer({ site, log: (line) => log.push(line) });
  server.on('connection', (socket: Socket) => sockets.add(socket));
  const listening = await listenRegistryServer(server, 0);
  return {
    url: listening.url,
    close: listening.close,
    /** Counts from now on; `read()` gives what arrived since. */
    start(): () => { requests: number; bytes: number; kinds: Record<string, number> } {
      const before = log.length;
      const written = new Map([...sockets].map((s) => [s, s.bytesWritten]));
      return () => {
        const kinds: Record<string, number> = {};
        for (const line of log.slice(before)) {
          const kind = requestKind(line);
          kinds[kind] = (kinds[kind] ?? 0) + 1;
        }
        return {
          requests: log.length - before,
          bytes: [...sockets].reduce((sum, s) => sum + s.bytesWritten - (written.get(s) ?? 0), 0),
          kinds,
        };
      };
    },
  };
}

/** The set file: SET_SIZE plugins by exact version, ^range and `latest` in turn, the registry key pinned by file. */
function setFileText(url: string): string {
  const plugins = Array.from(
    { length: SET_SIZE },
    (_, i) =>
      `    - { provider: bench, name: ${setPluginName(i)}, version: "${setSpec(i).spec}", platforms: [linux/amd64] }`,
  );
  return `plugins:
  install_location: ./plugins
  providers:
    - type: registry
      name: bench
      url: ${url}
      key: ./registry.asc
  plugins:
${plugins.join('\n')}
`;
}

/**
 * Checks a set install left what the set asks for: every plugin at the version its spec resolves to, in the
 * lock and on disk (a benchmark of an install that went wrong would measure nothing).
 */
async function checkSetInstalled(project: string): Promise<void> {
  const lock = JSON.parse(await readFile(path.join(project, 'plugins.lock'), 'utf8')) as {
    plugins: Record<string, { version: string }>;
  };
  for (let i = 0; i < SET_SIZE; i++) {
    const name = setPluginName(i);
    const version = setSpec(i).resolves;
    if (lock.plugins[name]?.version !== version)
      throw new Error(`${name}: locked ${lock.plugins[name]?.version}, expected ${version}`);
    await stat(path.join(project, 'plugins', name, version, 'linux-amd64', name));
  }
}

/** A row of the table. */
function row(name: string, m: Measure): string {
  return `  ${name.padEnd(40)} ${m.ms.toFixed(0).padStart(6)} ms  ${String(m.requests).padStart(4)} requests  ${String(m.bytes).padStart(9)} bytes`;
}

/** The requests of a run by kind, for the lines under a row: `12 bin, 13 document, ...`. */
function kindsOf(m: Measure): string {
  const parts = Object.entries(m.kinds)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([kind, n]) => `${n} ${kind}`);
  return parts.length > 0 ? parts.join(', ') : 'none';
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
    `node ${process.version}; a registry of ${size} plugins (${SET_SIZE} of the set in ${SET_VERSIONS.length} versions, the others ${VERSIONS_PER_PLUGIN}) built in ${((performance.now() - t) / 1000).toFixed(1)} s; index.json ${registry.indexBytes} bytes; median of ${RUNS} runs each\n`,
  );
  const server = await serve(registry.site);

  /**
   * One command as a process, timed; a failure stops the benchmark (it would measure nothing). Never a
   * synchronous spawn: the server answering it runs in this process.
   */
  const plugindex = async (...args: string[]): Promise<number> => {
    const started = performance.now();
    await run(process.execPath, [BIN, ...args], { cwd: home, env, maxBuffer: 64 * 1024 * 1024 }).catch(
      (error: { code?: number; stdout?: string; stderr?: string }) => {
        // `diff` exits 1 with what would change on stdout, and no stderr.
        throw new Error(
          `plugindex ${args.join(' ')} failed (exit ${error.code}): ${error.stderr || error.stdout || String(error)}`,
        );
      },
    );
    return performance.now() - started;
  };
  /** Empties the cache, and a checkout's install folder and lock (named `lock`), as a scenario asks. */
  const clearIn =
    (dir: string, lock: string) =>
    async (...what: ('cache' | 'plugins' | 'lock')[]): Promise<void> => {
      for (const w of what) {
        const target =
          w === 'cache' ? env.PLUGINDEX_CACHE_HOME : path.join(dir, w === 'lock' ? lock : 'plugins');
        await rm(target, { recursive: true, force: true });
      }
    };
  const clear = clearIn(home, 'plugindex.lock');
  const measure = async (prepare: () => Promise<void>, ...commands: string[][]): Promise<Measure> => {
    const runs: Measure[] = [];
    for (let r = 0; r < RUNS; r++) {
      await prepare();
      const read = server.start();
      let ms = 0;
      for (const command of commands) ms += await plugindex(...command);
      runs.push({ ms, ...read() });
    }
    const ms = median(runs.map((m) => m.ms));
    return {
      ms,
      requests: median(runs.map((m) => m.requests)),
      bytes: median(runs.map((m) => m.bytes)),
      kinds: runs.reduce((a, b) => (Math.abs(b.ms - ms) < Math.abs(a.ms - ms) ? b : a)).kinds,
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

  // The set: a checkout holding plugins.yaml and the registry key it pins; its lock is written beside it.
  const project = path.join(work, 'project');
  await mkdir(project, { recursive: true });
  await copyFile(registry.keyFile, path.join(project, 'registry.asc'));
  const setFile = path.join(project, 'plugins.yaml');
  await writeFile(setFile, setFileText(server.url));
  const clearSet = clearIn(project, 'plugins.lock');
  const installSet = ['install', '-c', setFile];
  const sets: [string, Measure][] = [];
  sets.push(['set cold: install -c', await measure(() => clearSet('cache', 'plugins', 'lock'), installSet)]);
  await checkSetInstalled(project);
  sets.push(['set warm: install -c, nothing changed', await measure(async () => {}, installSet)]);
  sets.push([
    'set refill: cache kept, no folder or lock',
    await measure(() => clearSet('plugins', 'lock'), installSet),
  ]);
  const lockText = await readFile(path.join(project, 'plugins.lock'), 'utf8');
  sets.push([
    'set frozen: --frozen, clean cache',
    await measure(() => clearSet('cache', 'plugins'), [...installSet, '--frozen']),
  ]);
  await checkSetInstalled(project);
  if ((await readFile(path.join(project, 'plugins.lock'), 'utf8')) !== lockText)
    throw new Error('install -c --frozen changed the lock');
  // diff exits 0 only when nothing would change; any other exit stops the benchmark (plugindex()).
  sets.push(['set diff: diff -c, nothing changed', await measure(async () => {}, ['diff', '-c', setFile])]);

  const floor = median(
    Array.from({ length: RUNS }, () => {
      const started = performance.now();
      spawnSync(process.execPath, ['-e', '0']);
      return performance.now() - started;
    }),
  );
  await stat(path.join(home, 'plugins', TARGET, `1.${VERSIONS_PER_PLUGIN - 1}.0`));

  for (const [name, m] of results) console.log(row(name, m));
  console.log(`  ${'node -e 0 (the floor)'.padEnd(40)} ${floor.toFixed(0).padStart(6)} ms`);
  const cold = results[0]?.[1] as Measure;
  console.log(
    `\n  cold bytes are ${((cold.bytes / registry.indexBytes) * 100).toFixed(2)}% of index.json (goal <= 1%, of which the artifact itself is ${ARTIFACT_BYTES} bytes); cold requests ${cold.requests} (goal <= 5)`,
  );
  console.log(
    `\n  a set of ${SET_SIZE} plugins (${SET_SPECS.map((s) => s.spec).join(', ')} in turn), one registry; per plugin = the row / ${SET_SIZE}; x single = the row / the single cold install above`,
  );
  for (const [name, m] of sets) {
    const perPlugin =
      m.requests > 0
        ? `  per plugin ${(m.ms / SET_SIZE).toFixed(1)} ms, ${(m.requests / SET_SIZE).toFixed(2)} requests, ${(m.bytes / SET_SIZE).toFixed(0)} bytes; x single: ${(m.ms / cold.ms).toFixed(2)} time, ${(m.bytes / cold.bytes).toFixed(2)} bytes`
        : '';
    console.log(`${row(name, m)}${perPlugin}`);
    console.log(`      requests of the median run: ${kindsOf(m)}`);
  }
  const setCold = sets[0]?.[1] as Measure;
  const setDiff = sets[sets.length - 1]?.[1] as Measure;
  console.log(
    `\n  set cold: ${setCold.requests} requests for ${SET_SIZE} plugins (expected about 4 per plugin + 1 snapshot = ${4 * SET_SIZE + 1}, fewer where plugins share a bin); set diff: ${setDiff.requests} requests (goal <= 1 conditional request per registry)`,
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
      console.log(row(name, { ...m, kinds: {} }));
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
