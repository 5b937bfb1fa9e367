/**
 * The scale goals against their anchor, in one run (issue 14): plugindex beside reprepro (APT's signed static
 * publisher, Debian's package) at N plugins and packages of one version each (10,000 by default), each
 * figure a median and a ratio to reprepro's in the same rounds:
 * - **The import:** reprepro's `includedeb` of N .debs (500 a call, the index exported once at the end)
 *   against `plugindex process` of N signed bundles, and the yardstick `import-floor.ts` (the core's work for
 *   each upload without the pipeline), ROUNDS rounds, each into fresh copies, taking turns to go first.
 * - **One publish as a process (+1):** reprepro's `includedeb` of one package into the N it holds (it
 *   re-exports and re-signs) against a cold `plugindex publish` of one bundle, and `publish-floor.ts` (Node.js,
 *   openpgp.js and the index documents rewritten), whole and without each of its two dearest parts
 *   (openpgp.js, the compressed variants), WARMUP untimed rounds, then PUBLISHES.
 * - **The same +1 beside a running server:** `plugindex serve` on the registry (as `npm start` runs one),
 *   which the command hands its upload to, against reprepro's `includedeb` again; each round waits, untimed,
 *   for the compressed variants the server makes after it answers.
 * Both floors are built as the command is (build/cli.mjs), and the command is built from this checkout.
 * What both tools published is checked before the figures print: gpgv on reprepro's InRelease, GnuPG on
 * plugindex's snapshot, the plugins index.json lists. The CPU of each import is its process tree's (user and
 * system, from /proc/self/stat's children fields). Each import is followed by a `sync`, timed apart: reprepro
 * syncs its database as it goes (two fdatasync calls a package), plugindex leaves its files to the kernel's
 * writeback, so on a disk slow to sync the import's time alone favours plugindex; the import and its sync
 * together are printed too.
 *
 * Needs reprepro (installed with apt-get when missing, as root) and GnuPG. The same as
 * ../shared/bench/side-by-side/run.sh, which times each import once: this machine drifts by a fifth and
 * more over minutes, so here every round meets the drift on every contender.
 * `node --import tsx bench/side-by-side.bench.ts [N...]`; PLUGINDEX_BENCH_WORK=DIR keeps its files in DIR
 * (a fresh folder under the system's temporary one by default, deleted at the end).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildCli } from '../build/cli.mjs';
import { generateKeyPair } from '../index-builder/signing.ts';
import { packSubmission } from '../index-builder/submission.ts';
import { buildDeb, ensureReprepro, generateGpgKey, requireTool } from './apt-side.ts';
import { describeFileSystem, settledFileSystem } from './fs-state.ts';
import { checkAccepted, startServer, stopServer, variantsMade } from './served.ts';
import { median } from './stats.ts';
import { pluginName } from './synthetic.ts';

const ROUNDS = 3;
const WARMUP = 2;
const PUBLISHES = 9;
const ROOT = path.resolve(import.meta.dirname, '..');
const BIN = path.join(ROOT, 'cli', 'bin.mjs');
/** .debs per `reprepro includedeb` call, as run.sh does. */
const DEB_BATCH = 500;
/** The +1 rounds' plugins and packages: past every imported one. */
const FRESH = 90_001;
/** The +1 rounds beside a running server: after the cold ones. */
const FRESH_SERVED = FRESH + WARMUP + PUBLISHES;
/** The packages and plugins the +1 rounds publish, cold and served. */
const FRESH_LAST = FRESH_SERVED + WARMUP + PUBLISHES - 1;

/** CPU time (user + system, ms) of this process's children that have been waited for (/proc/self/stat). */
function childrenCpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  // Fields after the command's name (which may hold spaces), which ends at the last ')': cutime and cstime
  // are the 16th and 17th fields of the whole line, in clock ticks (100 a second on Linux).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[13]) + Number(fields[14])) * 10;
}

interface Timed {
  readonly ms: number;
  readonly cpuMs: number;
}

/** Runs commands one after the other, each to its end; a failure stops the bench (it measures nothing). */
function timed(commands: readonly (readonly [string, readonly string[]])[], env?: NodeJS.ProcessEnv): Timed {
  const cpu = childrenCpuMs();
  const started = process.hrtime.bigint();
  for (const [command, args] of commands) {
    const result = spawnSync(command, args, { stdio: ['ignore', 'ignore', 'pipe'], env: env ?? process.env });
    if (result.status !== 0)
      throw new Error(`${command} ${args.slice(0, 6).join(' ')} exited ${result.status}: ${result.stderr}`);
  }
  return { ms: Number(process.hrtime.bigint() - started) / 1e6, cpuMs: childrenCpuMs() - cpu };
}

/** Written back to the disk between contenders, so one's dirty pages are not the next one's to write. */
function sync(): void {
  execFileSync('sync');
}

function debFile(dir: string, i: number): string {
  return path.join(dir, `${pluginName(i)}_1.0.0_all.deb`);
}

/** The .debs of packages `from`..`to` (inclusive) in `dir`, built in memory 100 at a time. */
async function writeDebs(dir: string, from: number, to: number): Promise<void> {
  for (let first = from; first <= to; first += 100) {
    const last = Math.min(first + 99, to);
    await Promise.all(
      Array.from({ length: last - first + 1 }, async (_, k) =>
        writeFile(debFile(dir, first + k), await buildDeb(pluginName(first + k))),
      ),
    );
  }
}

/** Bundles of plugins `from`..`to` into `dir`, each signed by the publisher, as the side-by-side seeds them. */
async function writeBundles(dir: string, from: number, to: number, secretKey: string): Promise<void> {
  const body = new Uint8Array(1024).map((_, i) => (i * 131 + 7) & 255);
  for (let i = from; i <= to; i++) {
    const name = pluginName(i);
    const manifest = {
      name,
      display_name: `Plugin ${i}`,
      description: `Synthetic plugin ${i} for the side-by-side benchmark.`,
      version: '1.0.0',
      api_version: 'v1',
      plugin_type: 'cost_source',
      capabilities: ['actual_cost'],
      supported_providers: ['aws'],
      requirements: { min_api_version: 'v1', max_api_version: 'v1' },
      metadata: { license: 'Apache-2.0', homepage: `https://example.org/${name}`, tags: ['bench'] },
    };
    const { bundle } = await packSubmission({
      manifestName: 'manifest.json',
      manifest: new TextEncoder().encode(JSON.stringify(manifest)),
      artifacts: [{ os: 'linux', arch: 'amd64', fileName: name, body }],
      secretKey,
    });
    await writeFile(path.join(dir, `${name}-0.tgz`), bundle);
  }
}

/** A reprepro repository's configuration, as run.sh writes it: one distribution, signed by `key`. */
async function newRepository(dir: string, key: string): Promise<void> {
  await mkdir(path.join(dir, 'conf'), { recursive: true });
  await writeFile(
    path.join(dir, 'conf', 'distributions'),
    `Codename: stable\nArchitectures: amd64\nComponents: main\nSignWith: ${key}\n`,
  );
}

/** A copy of the seeded registry, its bundles moved into incoming/ (outside the time). */
async function copyRegistry(template: string, dir: string): Promise<void> {
  execFileSync('cp', ['-a', template, dir]);
  const staging = path.join(dir, 'staging');
  for (const name of await readdir(staging))
    await rename(path.join(staging, name), path.join(dir, 'incoming', name));
}

async function pluginsListed(registry: string): Promise<number> {
  return (
    JSON.parse(await readFile(path.join(registry, 'public', 'index.json'), 'utf8')) as { plugins: unknown[] }
  ).plugins.length;
}

const ms = (t: number): string => `${Math.round(t).toLocaleString('en')} ms`;
const ratio = (a: number, b: number): string => `${(a / b).toFixed(2)}x`;

async function measure(
  size: number,
  work: string,
  floors: string,
  gnupg: string,
  key: string,
): Promise<void> {
  const env = { ...process.env, GNUPGHOME: gnupg };
  const debs = path.join(work, 'debs');
  await mkdir(debs, { recursive: true });
  const started = performance.now();
  await writeDebs(debs, 1, size);
  await writeDebs(debs, FRESH, FRESH_LAST);
  const publisher = await generateKeyPair({ name: 'Bench Publisher' });
  const template = path.join(work, `template-${size}`);
  execFileSync(process.execPath, [BIN, 'init', '--registry', template]);
  const staging = path.join(template, 'staging');
  await mkdir(staging, { recursive: true });
  await writeBundles(staging, 1, size, publisher.secretKey);
  const fresh = path.join(work, 'fresh');
  await mkdir(fresh, { recursive: true });
  await writeBundles(fresh, FRESH, FRESH_LAST, publisher.secretKey);
  process.stderr.write(`  seeded ${size} .debs and bundles in ${ms(performance.now() - started)}\n`);

  // The import, round by round, the contenders taking turns to go first.
  const imports: { reprepro: Timed[]; plugindex: Timed[]; floor: Timed[] } = {
    reprepro: [],
    plugindex: [],
    floor: [],
  };
  /** The `sync` after each import, in ms: what it had left for the disk to write. */
  const flushes: Record<keyof typeof imports, number[]> = { reprepro: [], plugindex: [], floor: [] };
  for (let round = 1; round <= ROUNDS; round++) {
    const repository = path.join(work, `reprepro-${round}`);
    const registry = path.join(work, `plugindex-${round}`);
    const floor = path.join(work, `floor-${round}`);
    await newRepository(repository, key);
    await copyRegistry(template, registry);
    await copyRegistry(template, floor);
    sync();
    // Each round makes tens of thousands of files: timed once the cost of one has stopped falling.
    const fileSystem = await settledFileSystem(path.join(work, 'probes'));
    const includes: [string, string[]][] = [];
    for (let first = 1; first <= size; first += DEB_BATCH) {
      const files = Array.from({ length: Math.min(DEB_BATCH, size - first + 1) }, (_, k) =>
        debFile(debs, first + k),
      );
      includes.push([
        'reprepro',
        ['-b', repository, '--export=silent-never', 'includedeb', 'stable', ...files],
      ]);
    }
    includes.push(['reprepro', ['-b', repository, 'export']]);
    const contenders: [keyof typeof imports, () => Timed][] = [
      ['reprepro', () => timed(includes, env)],
      ['plugindex', () => timed([[process.execPath, [BIN, 'process', '--registry', registry]]])],
      [
        'floor',
        () =>
          timed([
            [process.execPath, [path.join(floors, 'import-floor.mjs'), floor, path.join(floor, 'out')]],
          ]),
      ],
    ];
    for (const [name, run] of round % 2 ? contenders : [...contenders].reverse()) {
      imports[name].push(run());
      // Until what it wrote is on the disk: reprepro syncs as it goes (its database: two fdatasync calls
      // a package), plugindex leaves its files to the kernel's writeback, so the sync after it is its own.
      flushes[name].push(timed([['sync', []]]).ms);
    }
    if ((await pluginsListed(registry)) !== size)
      throw new Error(`${registry}: index.json does not list ${size}`);
    if ((await pluginsListed(path.join(floor, 'out'))) !== size)
      throw new Error(`${floor}: index.json does not list ${size}`);
    process.stderr.write(
      `  import round ${round}: reprepro ${ms(imports.reprepro.at(-1)?.ms ?? 0)}, plugindex ${ms(imports.plugindex.at(-1)?.ms ?? 0)}, floor ${ms(imports.floor.at(-1)?.ms ?? 0)}; ${describeFileSystem(fileSystem)}\n`,
    );
  }

  // One publish at a time into the first round's repository and registry (N each).
  const repository = path.join(work, 'reprepro-1');
  const registry = path.join(work, 'plugindex-1');
  /** reprepro's `includedeb` of package `i`, then plugindex's `publish` of plugin `i`, each timed. */
  const includeAndPublish = (i: number): Timed[] => [
    timed([['reprepro', ['-b', repository, 'includedeb', 'stable', debFile(debs, i)]]], env),
    timed([
      [
        process.execPath,
        [BIN, 'publish', path.join(fresh, `${pluginName(i)}-0.tgz`), '--registry', registry],
      ],
    ]),
  ];
  // The floor whole, then without each of its parts: what each costs, in the same rounds.
  const floorRuns = [[], ['--without', 'openpgp'], ['--without', 'compression']].map(
    (without) => () =>
      // It reads the index documents the publish just wrote, as the next publish would.
      timed([
        [
          process.execPath,
          [
            path.join(floors, 'publish-floor.mjs'),
            path.join(registry, 'public'),
            path.join(work, 'publish-floor-out'),
            ...without,
          ],
        ],
      ]),
  );
  const plusOne: number[][] = [[], [], [], [], []];
  for (let r = 0; r < WARMUP + PUBLISHES; r++) {
    const times = [...includeAndPublish(FRESH + r), ...floorRuns.map((run) => run())];
    if (r >= WARMUP) for (const [k, t] of times.entries()) plusOne[k]?.push(t.ms);
  }

  // The same beside a running server, which the command hands its upload to (cli/submit.ts).
  const server = await startServer(registry);
  const served: number[][] = [[], []];
  try {
    for (let r = 0; r < WARMUP + PUBLISHES; r++) {
      const times = includeAndPublish(FRESH_SERVED + r);
      // Made after the answer: untimed, done before the next round.
      await variantsMade(registry);
      if (r >= WARMUP) for (const [k, t] of times.entries()) served[k]?.push(t.ms);
    }
  } finally {
    await stopServer(server);
  }
  checkAccepted(server, WARMUP + PUBLISHES);

  // What both published, checked as their clients would.
  const keyring = path.join(work, 'reprepro-key.gpg');
  await writeFile(keyring, execFileSync('gpg', ['--batch', '--export', key], { env }));
  execFileSync('gpgv', ['--keyring', keyring, path.join(repository, 'dists', 'stable', 'InRelease')], {
    stdio: 'ignore',
  });
  const verifier = await mkdtemp(path.join(work, 'gnupg-verify-'));
  execFileSync('gpg', ['--batch', '--import', path.join(registry, 'public', 'keys', 'registry.asc')], {
    env: { ...process.env, GNUPGHOME: verifier },
    stdio: 'ignore',
  });
  execFileSync(
    'gpg',
    [
      '--batch',
      '--verify',
      path.join(registry, 'public', 'snapshot.json.asc'),
      path.join(registry, 'public', 'snapshot.json'),
    ],
    { env: { ...process.env, GNUPGHOME: verifier }, stdio: 'ignore' },
  );
  const listed = await pluginsListed(registry);
  if (listed !== size + 2 * (WARMUP + PUBLISHES))
    throw new Error(`${registry}: index.json lists ${listed} plugins`);
  const snapshot = JSON.parse(await readFile(path.join(registry, 'public', 'snapshot.json'), 'utf8')) as {
    documents: Record<string, { sha256: string }>;
  };
  const index = await readFile(path.join(registry, 'public', 'index.json'));
  if (snapshot.documents['index.json']?.sha256 !== createHash('sha256').update(index).digest('hex'))
    throw new Error('the snapshot does not bind index.json');

  const wall = (t: Timed[]) => median(t.map((x) => x.ms));
  const cpu = (t: Timed[]) => median(t.map((x) => x.cpuMs));
  const [rImport, pImport, fImport] = [imports.reprepro, imports.plugindex, imports.floor].map(wall) as [
    number,
    number,
    number,
  ];
  console.log(`  ${size} plugins and packages, one version each:`);
  console.log(
    `    import (medians of ${ROUNDS}): reprepro ${ms(rImport)}, plugindex process ${ms(pImport)}: ${ratio(pImport, rImport)} (goal: 1.00x or less); ` +
      `the floor ${ms(fImport)} (${ratio(fImport, rImport)} reprepro; plugindex ${ratio(pImport, fImport)} the floor)`,
  );
  console.log(
    `      CPU, user and system: reprepro ${ms(cpu(imports.reprepro))}, plugindex ${ms(cpu(imports.plugindex))}, the floor ${ms(cpu(imports.floor))}; ` +
      `runs: reprepro ${imports.reprepro.map((t) => Math.round(t.ms)).join(', ')}; plugindex ${imports.plugindex.map((t) => Math.round(t.ms)).join(', ')}`,
  );
  // Each import and the sync after it, round by round: until its files are on the disk.
  const durable = (name: keyof typeof imports) =>
    median(imports[name].map((t, i) => t.ms + (flushes[name][i] ?? 0)));
  const [rDurable, pDurable] = [durable('reprepro'), durable('plugindex')];
  console.log(
    `      then sync (what each left for the disk): reprepro ${ms(median(flushes.reprepro))}, plugindex ${ms(median(flushes.plugindex))}, the floor ${ms(median(flushes.floor))}; ` +
      `import and sync: reprepro ${ms(rDurable)}, plugindex ${ms(pDurable)}: ${ratio(pDurable, rDurable)}`,
  );
  const [rOne, pOne, fOne, fNoPgp, fNoCompression] = plusOne.map((t) => median(t)) as [
    number,
    number,
    number,
    number,
    number,
  ];
  console.log(
    `    +1 (medians of ${PUBLISHES}): reprepro includedeb ${ms(rOne)}, plugindex publish ${ms(pOne)}: ${ratio(pOne, rOne)} (goal: 1.00x or less); ` +
      `the floor ${ms(fOne)} (${ratio(fOne, rOne)} reprepro; plugindex ${ratio(pOne, fOne)} the floor)`,
  );
  console.log(
    `      the floor without openpgp.js ${ms(fNoPgp)} (${ratio(fNoPgp, rOne)} reprepro: it costs ${ms(fOne - fNoPgp)}), ` +
      `without the compressed variants ${ms(fNoCompression)} (${ratio(fNoCompression, rOne)}: they cost ${ms(fOne - fNoCompression)})`,
  );
  const [rServed, pServed] = served.map((t) => median(t)) as [number, number];
  // Both tools' runs, and each round's ratio: runs that rise together over the rounds are the machine's
  // drift, which the ratio of the same round cancels; plugindex's alone rising is plugindex's.
  const runs = (t: readonly number[] | undefined) => (t ?? []).map((x) => Math.round(x)).join(', ');
  const roundRatios = (served[1] ?? []).map((t, i) => t / (served[0]?.[i] ?? t));
  console.log(
    `    +1 beside a running plugindex serve (medians of ${PUBLISHES}): reprepro includedeb ${ms(rServed)}, plugindex publish ${ms(pServed)}: ${ratio(pServed, rServed)} ` +
      `(runs: reprepro ${runs(served[0])}; plugindex ${runs(served[1])}; each round's ratio, median ${median(roundRatios).toFixed(2)}x: ${roundRatios.map((r) => r.toFixed(2)).join(', ')})`,
  );
}

async function main(): Promise<void> {
  const sizes = process.argv
    .slice(2)
    .map(Number)
    .filter((n) => n > 0);
  const reprepro = await ensureReprepro();
  await requireTool('gpg', 'gnupg');
  const kept = process.env.PLUGINDEX_BENCH_WORK;
  const work = kept ? path.resolve(kept) : await mkdtemp(path.join(tmpdir(), 'plugindex-bench-side-'));
  await mkdir(work, { recursive: true });
  const gnupg = path.join(work, 'gnupg');
  try {
    await buildCli();
    const floors = path.join(work, 'floors');
    await buildCli(floors, {
      'import-floor': path.join(ROOT, 'bench', 'import-floor.ts'),
      'publish-floor': path.join(ROOT, 'bench', 'publish-floor.ts'),
    });
    await mkdir(gnupg, { recursive: true, mode: 0o700 });
    const key = await generateGpgKey(
      gnupg,
      'plugindex side-by-side benchmark <side-by-side@plugindex.invalid>',
    );
    console.log(
      `plugindex beside reprepro ${reprepro} (Node.js ${process.versions.node}; medians, ratios to reprepro's in the same rounds):`,
    );
    for (const size of sizes.length > 0 ? sizes : [10_000]) {
      const dir = path.join(work, `n-${size}`);
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir);
      await measure(size, dir, floors, gnupg, key);
    }
  } finally {
    // The agent gpg and reprepro started for this home, whether or not the bench got to the end.
    spawnSync('gpgconf', ['--homedir', gnupg, '--kill', 'gpg-agent'], { stdio: 'ignore' });
    // Tens of thousands of files a round: deleted after the last figure, so no round pays for it.
    if (!kept) await rm(work, { recursive: true, force: true });
  }
}

await main();
