/**
 * The APT half of the side-by-side client benchmark: what Debian's own tools cost for the same job as
 * plugindex's client (refresh the index, fetch one package) against a repository of N packages.
 *
 * A reprepro repository of N tiny .debs (built here in Node, signed with a throwaway GnuPG key, cached under
 * the work folder by N) is served by a static HTTP server on 127.0.0.1 that counts requests and the bytes it
 * writes. apt-get runs against it with a state of its own in a temporary folder: the system's apt.conf.d,
 * sources, lists and dpkg status are neither read nor touched.
 *
 * `node --import tsx bench/apt-side.ts [PACKAGES=1000] [RUNS=5] [WORK_DIR]` prints the result.
 * The first run at a size builds the repository (about 30 s for 10,000 packages); later runs reuse it.
 * PLUGINDEX_BENCH_APT_LOG=1 prints what apt asked the server for.
 */

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import { median } from './stats.ts';
import { pluginName } from './synthetic.ts';

export interface AptMeasure {
  readonly ms: number;
  readonly requests: number;
  readonly bytes: number;
}

export interface AptResult {
  readonly packages: number;
  /** `apt-get update` + `apt-get download <one package>` with empty lists and cache. */
  readonly cold: AptMeasure;
  /** The same again with nothing changed on the server (lists kept; the .deb downloaded to a fresh folder). */
  readonly warm: AptMeasure;
  /** Size of the repository's Packages index as served (the uncompressed one), for comparison. */
  readonly packagesIndexBytes: number;
  readonly aptVersion: string;
  readonly repreproVersion: string;
}

/** Bumped whenever the .debs or the repository's layout change, so an older cached repository is not reused. */
const FORMAT = 1;
/** .debs per `reprepro includedeb` call: far below the command-line length limit, few enough processes. */
const BATCH = 500;
const CODENAME = 'bench';
const VERSION = '1.0.0';
const PAYLOAD_BYTES = 1024;
/** A fixed date in every archive, so a rebuilt repository has the same bytes. */
const MTIME = new Date('2026-01-01T00:00:00Z');

interface Output {
  readonly stdout: Buffer;
  readonly stderr: string;
  readonly ms: number;
}

interface RunOptions {
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
}

/** Runs a command to its end, timed from spawn to exit; a failure is an error that says what ran and what it said. */
async function run(command: string, args: readonly string[], options: RunOptions = {}): Promise<Output> {
  const started = performance.now();
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        error.code === 'ENOENT'
          ? Object.assign(new Error(`${command}: command not found`), { code: 'ENOENT' })
          : error,
      ),
    );
    child.once('close', (c, s) => resolve([c, s]));
  });
  const ms = performance.now() - started;
  const errText = Buffer.concat(stderr).toString('utf8');
  if (code !== 0) {
    const out = Buffer.concat(stdout).toString('utf8');
    throw new Error(
      `${command} ${args.join(' ')} ${signal ? `was killed by ${signal}` : `exited ${code}`}:\n${errText}${out}`.trim(),
    );
  }
  return { stdout: Buffer.concat(stdout), stderr: errText, ms };
}

// The packages carry the plugins' names, so both sides hold the same registry.
const packageName = pluginName;
const debFileName = (name: string): string => `${name}_${VERSION}_all.deb`;

// --- Tools ---------------------------------------------------------------------------------------------------

/** The version `command --version` prints (`2.6.1` from `apt 2.6.1 (amd64)`), or undefined when it is not installed. */
async function installedVersion(command: string): Promise<string | undefined> {
  let out: Output;
  try {
    out = await run(command, ['--version']);
  } catch (error) {
    if ((error as { code?: string }).code === 'ENOENT') return undefined;
    throw error;
  }
  // reprepro prints its version on stderr, the others on stdout.
  const text = `${out.stdout.toString('utf8')}\n${out.stderr}`;
  return /\d+(\.\d+)+/.exec(text)?.[0] ?? text.trim().split('\n')[0] ?? '';
}

/** The version of a tool the benchmark needs, or an error naming the Debian package to install. */
export async function requireTool(command: string, debianPackage: string): Promise<string> {
  const version = await installedVersion(command);
  if (version === undefined)
    throw new Error(`${command} is needed by this benchmark: install the Debian package ${debianPackage}`);
  return version;
}

/** reprepro's version, installing it first when it is missing and this process may (as root). */
export async function ensureReprepro(): Promise<string> {
  const version = await installedVersion('reprepro');
  if (version !== undefined) return version;
  if (process.getuid?.() !== 0)
    throw new Error(
      'reprepro is not installed and this process is not root: run `apt-get install -y reprepro`',
    );
  process.stderr.write('reprepro is missing: apt-get install -y reprepro\n');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  try {
    await run('apt-get', ['install', '-y', '-q', 'reprepro'], { env });
  } catch {
    // A fresh machine may have no package lists yet.
    await run('apt-get', ['update', '-q'], { env });
    await run('apt-get', ['install', '-y', '-q', 'reprepro'], { env });
  }
  return requireTool('reprepro', 'reprepro');
}

// --- .deb files ----------------------------------------------------------------------------------------------

interface TarEntry {
  readonly name: string;
  /** Absent for a directory. */
  readonly data?: Buffer;
}

async function tarGz(entries: readonly TarEntry[]): Promise<Buffer> {
  const archive = pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const chunk of archive) chunks.push(chunk as Buffer);
  })();
  for (const entry of entries) {
    const common = { name: entry.name, mtime: MTIME, uid: 0, gid: 0, uname: 'root', gname: 'root' };
    if (entry.data) archive.entry({ ...common, type: 'file', mode: 0o644 }, entry.data);
    else archive.entry({ ...common, type: 'directory', mode: 0o755 });
  }
  archive.finalize();
  await collected;
  return gzipSync(Buffer.concat(chunks), { level: 9 });
}

/** One member of an `ar` archive: the 60-byte header, the data, and a newline to an even offset. */
function arMember(name: string, data: Buffer): Buffer[] {
  const header =
    name.padEnd(16) +
    String(Math.floor(MTIME.getTime() / 1000)).padEnd(12) +
    '0'.padEnd(6) +
    '0'.padEnd(6) +
    '100644'.padEnd(8) +
    String(data.length).padEnd(10) +
    '`\n';
  const parts = [Buffer.from(header, 'latin1'), data];
  if (data.length % 2) parts.push(Buffer.from('\n'));
  return parts;
}

/** 1,024 bytes that look random but are the same for a name every time (SHA-256 in counter mode). */
function payloadOf(name: string): Buffer {
  const blocks: Buffer[] = [];
  for (let i = 0; i * 32 < PAYLOAD_BYTES; i++)
    blocks.push(createHash('sha256').update(`${name}:${i}`).digest());
  return Buffer.concat(blocks).subarray(0, PAYLOAD_BYTES);
}

/** The .deb of package `name`, made in memory: dpkg's format is `ar` over two gzipped tarballs. */
export async function buildDeb(name: string): Promise<Buffer> {
  const control = [
    `Package: ${name}`,
    `Version: ${VERSION}`,
    'Architecture: all',
    'Maintainer: plugindex benchmark <bench@plugindex.invalid>',
    `Installed-Size: ${Math.ceil(PAYLOAD_BYTES / 1024)}`,
    'Section: misc',
    'Priority: optional',
    `Description: ${name}, a synthetic package for the client benchmark`,
    '',
  ].join('\n');
  const controlTar = await tarGz([{ name: './' }, { name: './control', data: Buffer.from(control) }]);
  const dataTar = await tarGz([
    { name: './' },
    { name: './usr/' },
    { name: './usr/share/' },
    { name: `./usr/share/${name}/` },
    { name: `./usr/share/${name}/payload.bin`, data: payloadOf(name) },
  ]);
  return Buffer.concat([
    Buffer.from('!<arch>\n'),
    ...arMember('debian-binary', Buffer.from('2.0\n')),
    ...arMember('control.tar.gz', controlTar),
    ...arMember('data.tar.gz', dataTar),
  ]);
}

// --- The repository ------------------------------------------------------------------------------------------

interface Repository {
  /** The folder served over HTTP: dists/ and pool/. */
  readonly publicDir: string;
  /** The signing key's public half, as `signed-by` takes it. */
  readonly keyring: string;
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

/**
 * A new signing key without a passphrase in the GnuPG home `gnupg` (a folder of mode 0700), as reprepro's
 * `SignWith` takes it; returns its fingerprint.
 */
export async function generateGpgKey(gnupg: string, uid: string): Promise<string> {
  const gpg = (...args: string[]) => run('gpg', ['--batch', '--homedir', gnupg, ...args]);
  await gpg(
    '--pinentry-mode',
    'loopback',
    '--passphrase',
    '',
    '--quick-gen-key',
    uid,
    'default',
    'default',
    'never',
  );
  const listing = (await gpg('--with-colons', '--list-secret-keys')).stdout.toString('utf8');
  const fingerprint = /^fpr:(?:[^:]*:){8}([0-9A-F]{40,64}):/m.exec(listing)?.[1];
  if (!fingerprint) throw new Error(`gpg listed no fingerprint for the key it made:\n${listing}`);
  return fingerprint;
}

/**
 * The repository of `packages` packages under `workDir`, built on first use into a side folder and renamed
 * into place when complete, so an interrupted build is never taken for a cached one.
 */
async function ensureRepository(packages: number, workDir: string): Promise<Repository> {
  const dir = path.join(path.resolve(workDir), `apt-repo-v${FORMAT}-${packages}`);
  const repository = { publicDir: path.join(dir, 'public'), keyring: path.join(dir, 'keyring.gpg') };
  if (await exists(repository.keyring)) return repository;

  const started = performance.now();
  process.stderr.write(`Building a reprepro repository of ${packages} packages in ${dir}\n`);
  const staging = `${dir}.partial-${process.pid}`;
  await rm(staging, { recursive: true, force: true });
  const gnupg = path.join(staging, 'gnupg');
  await mkdir(gnupg, { recursive: true, mode: 0o700 });
  await mkdir(path.join(staging, 'conf'));
  const incoming = path.join(staging, 'incoming');
  await mkdir(incoming);
  try {
    const fingerprint = await generateGpgKey(gnupg, 'plugindex APT benchmark <apt-bench@plugindex.invalid>');
    await writeFile(
      path.join(staging, 'keyring.gpg'),
      (await run('gpg', ['--batch', '--homedir', gnupg, '--export', fingerprint])).stdout,
    );

    await writeFile(
      path.join(staging, 'conf', 'distributions'),
      [
        `Codename: ${CODENAME}`,
        'Components: main',
        'Architectures: amd64',
        // .xz as well, as Debian's mirrors serve them: apt takes the smallest the Release file offers.
        'DebIndices: Packages Release . .gz .xz',
        `SignWith: ${fingerprint}`,
        '',
      ].join('\n'),
    );
    // Only dists/ and pool/ go to public/, the folder served: not the secret key or reprepro's database.
    await writeFile(path.join(staging, 'conf', 'options'), 'outdir +b/public\n');
    const reprepro = (...args: string[]) =>
      run('reprepro', ['--basedir', staging, ...args], { env: { ...process.env, GNUPGHOME: gnupg } });

    let buildMs = 0;
    let includeMs = 0;
    for (let first = 0; first < packages; first += BATCH) {
      const t0 = performance.now();
      const names = Array.from({ length: Math.min(BATCH, packages - first) }, (_, k) =>
        packageName(first + k),
      );
      const files = await Promise.all(
        names.map(async (name) => {
          const file = path.join(incoming, debFileName(name));
          await writeFile(file, await buildDeb(name));
          return file;
        }),
      );
      const t1 = performance.now();
      if (first === 0) await checkDeb(files[0] as string, packageName(0));
      // Exported once at the end: exporting after each batch would rewrite and sign every index each time.
      await reprepro('--export=silent-never', 'includedeb', CODENAME, ...files);
      await Promise.all(files.map((file) => rm(file)));
      buildMs += t1 - t0;
      includeMs += performance.now() - t1;
      process.stderr.write(`  ${Math.min(first + BATCH, packages)}/${packages} included\r`);
    }
    process.stderr.write('\n');
    const t2 = performance.now();
    await reprepro('export', CODENAME);
    const exportMs = performance.now() - t2;
    // The agent gpg and gpgme started for this home: nothing needs it once the indexes are signed.
    await run('gpgconf', ['--homedir', gnupg, '--kill', 'gpg-agent']).catch(() => undefined);
    await rm(incoming, { recursive: true, force: true });
    await rename(staging, dir).catch(async (error: unknown) => {
      // Another process built the same repository meanwhile: theirs is as good.
      if (!(await exists(repository.keyring))) throw error;
      await rm(staging, { recursive: true, force: true });
    });
    const s = (n: number) => `${(n / 1000).toFixed(1)} s`;
    process.stderr.write(
      `Built in ${s(performance.now() - started)}: .debs ${s(buildMs)}, includedeb ${s(includeMs)}, export ${s(exportMs)}\n`,
    );
    return repository;
  } catch (error) {
    await run('gpgconf', ['--homedir', gnupg, '--kill', 'gpg-agent']).catch(() => undefined);
    await rm(staging, { recursive: true, force: true });
    throw error;
  }
}

/** dpkg-deb's own reading of one built .deb: a format mistake stops the build before reprepro sees 10,000 of them. */
async function checkDeb(file: string, name: string): Promise<void> {
  const info = (await run('dpkg-deb', ['--info', file])).stdout.toString('utf8');
  const contents = (await run('dpkg-deb', ['--contents', file])).stdout.toString('utf8');
  if (!info.includes(`Package: ${name}`) || !contents.includes(`./usr/share/${name}/payload.bin`))
    throw new Error(`dpkg-deb does not read ${file} as built:\n${info}\n${contents}`);
}

/** The SHA256 field of `name`'s stanza in a Packages index. */
function sha256InIndex(index: string, name: string): string {
  const stanza = index.split('\n\n').find((s) => s.startsWith(`Package: ${name}\n`));
  const sha = stanza && /^SHA256: ([0-9a-f]{64})$/m.exec(stanza)?.[1];
  if (!sha) throw new Error(`the Packages index has no SHA256 for ${name}`);
  return sha;
}

// --- The server ----------------------------------------------------------------------------------------------

interface Traffic {
  readonly requests: number;
  readonly bytes: number;
  /** `STATUS PATH` per request, to tell what apt asked for. */
  readonly log: readonly string[];
}

interface StaticServer {
  readonly port: number;
  /** Starts counting afresh. */
  reset(): void;
  /** What was served since the last reset. */
  traffic(): Traffic;
  close(): Promise<void>;
}

/**
 * A static file server as a plain web server or CDN would be: Content-Length, Last-Modified and
 * If-Modified-Since (which apt sends for the lists it has), nothing else.
 */
async function serveStatic(root: string): Promise<StaticServer> {
  let requests = 0;
  let sockets: Socket[] = [];
  let log: string[] = [];
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    requests++;
    const pathname = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
    const file = path.join(root, path.normalize(pathname));
    const info = file.startsWith(`${root}${path.sep}`) ? await stat(file).catch(() => undefined) : undefined;
    if (!info?.isFile() || (req.method !== 'GET' && req.method !== 'HEAD')) {
      log.push(`404 ${req.method} ${pathname}`);
      res.writeHead(404, { 'content-length': 0 }).end();
      return;
    }
    const modified = Math.floor(info.mtimeMs / 1000) * 1000;
    const lastModified = new Date(modified).toUTCString();
    const since = Date.parse(req.headers['if-modified-since'] ?? '');
    if (!Number.isNaN(since) && since >= modified) {
      log.push(`304 ${req.method} ${pathname}`);
      res.writeHead(304, { 'last-modified': lastModified }).end();
      return;
    }
    log.push(`200 ${req.method} ${pathname}`);
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': info.size,
      'last-modified': lastModified,
    });
    res.end(req.method === 'HEAD' ? undefined : await readFile(file));
  };
  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      log.push(`500 ${req.method} ${req.url}: ${String(error)}`);
      res.destroy();
    });
  });
  server.on('connection', (socket: Socket) => sockets.push(socket));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    reset() {
      requests = 0;
      sockets = [];
      log = [];
    },
    // Headers included: every byte each connection wrote, read once the client has exited.
    traffic: () => ({ requests, bytes: sockets.reduce((sum, s) => sum + s.bytesWritten, 0), log: [...log] }),
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

// --- apt-get -------------------------------------------------------------------------------------------------

/**
 * A private apt root: its own sources.list, lists, cache and an empty dpkg status. APT_CONFIG points Dir::Etc's
 * config parts at an empty folder, because apt reads apt.conf.d before any `-o`: the system's hooks, DEP-11 and
 * Contents targets, proxy and compression settings stay out of the measure.
 */
interface AptRoot {
  readonly dir: string;
  /** Runs `apt-get ARGS` in `dir`/`cwd`; resolves to its wall time in milliseconds. */
  run(args: readonly string[], cwd?: string): Promise<number>;
}

async function aptRoot(port: number, keyring: string): Promise<AptRoot> {
  const dir = await mkdtemp(path.join(tmpdir(), 'plugindex-apt-bench-'));
  const etc = path.join(dir, 'etc');
  const empty = path.join(etc, 'empty.d');
  for (const sub of [empty, 'state/lists/partial', 'cache/archives/partial'])
    await mkdir(path.resolve(dir, sub), { recursive: true });
  await writeFile(path.join(dir, 'status'), '');
  await writeFile(
    path.join(etc, 'sources.list'),
    `deb [signed-by=${keyring}] http://127.0.0.1:${port}/ ${CODENAME} main\n`,
  );
  await writeFile(
    path.join(etc, 'apt.conf'),
    ['Main "/dev/null"', `Parts "${empty}"`, 'Preferences "/dev/null"', `PreferencesParts "${empty}"`]
      .map((line) => `Dir::Etc::${line};\n`)
      .join(''),
  );
  const options = {
    'Dir::Etc::SourceList': path.join(etc, 'sources.list'),
    'Dir::Etc::SourceParts': empty,
    'Dir::State': path.join(dir, 'state'),
    'Dir::State::Lists': path.join(dir, 'state', 'lists'),
    'Dir::State::status': path.join(dir, 'status'),
    'Dir::Cache': path.join(dir, 'cache'),
    'Debug::NoLocking': '1',
    'APT::Architecture': 'amd64',
    'APT::Architectures': 'amd64',
    'Acquire::Languages': 'none',
    'Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled': 'false',
    // As root apt downloads as _apt, who may not enter a private temporary folder; the cost is the same.
    'APT::Sandbox::User': 'root',
  };
  const args = Object.entries(options).flatMap(([key, value]) => ['-o', `${key}=${value}`]);
  const env: NodeJS.ProcessEnv = { ...process.env, APT_CONFIG: path.join(etc, 'apt.conf'), LC_ALL: 'C' };
  for (const key of Object.keys(env)) if (/_proxy$/i.test(key)) delete env[key];
  return {
    dir,
    async run(command: readonly string[], cwd = ''): Promise<number> {
      const folder = path.join(dir, cwd);
      await mkdir(folder, { recursive: true });
      const out = await run('apt-get', ['-q', ...args, ...command], { cwd: folder, env });
      // A warning means apt did something other than the plain job measured (or would, on a real system).
      const warnings = out.stderr.split('\n').filter((line) => /^[WE]:/.test(line));
      if (warnings.length) throw new Error(`apt-get ${command.join(' ')} warned:\n${warnings.join('\n')}`);
      return out.ms;
    },
  };
}

/** Builds (or reuses, cached under `workDir`) a reprepro repository of `packages` tiny .debs, serves it on 127.0.0.1, measures. Median of `runs` for cold and warm. */
export async function measureApt(options: {
  readonly packages: number;
  readonly workDir: string;
  readonly runs: number;
}): Promise<AptResult> {
  const { packages, workDir, runs } = options;
  if (!Number.isInteger(packages) || packages < 1 || packages > 100_000)
    throw new Error(`packages must be an integer from 1 to 100000, got ${packages}`);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`runs must be a positive integer, got ${runs}`);
  const [aptVersion, repreproVersion] = await Promise.all([
    requireTool('apt-get', 'apt'),
    ensureReprepro(),
    requireTool('gpg', 'gnupg'),
    requireTool('gpgv', 'gpgv'),
    requireTool('dpkg-deb', 'dpkg'),
  ]);

  const repository = await ensureRepository(packages, workDir);
  const indexFile = path.join(repository.publicDir, 'dists', CODENAME, 'main', 'binary-amd64', 'Packages');
  const index = await readFile(indexFile, 'utf8');
  // The last package: its stanza is at the end of the index, if that matters to anyone.
  const target = packageName(packages - 1);
  const expectedSha = sha256InIndex(index, target);

  const server = await serveStatic(repository.publicDir);
  const cold: AptMeasure[] = [];
  const warm: AptMeasure[] = [];
  try {
    const measure = async (apt: AptRoot, folder: string): Promise<AptMeasure> => {
      server.reset();
      const ms = (await apt.run(['update'])) + (await apt.run(['download', target], folder));
      const { requests, bytes, log } = server.traffic();
      const failed = log.filter((line) => !/^(200|304) GET /.test(line));
      if (failed.length)
        throw new Error(`apt asked for what the repository does not serve:\n${failed.join('\n')}`);
      if (process.env.PLUGINDEX_BENCH_APT_LOG) process.stderr.write(`${folder}:\n  ${log.join('\n  ')}\n`);
      return { ms, requests, bytes };
    };
    for (let i = 0; i < runs; i++) {
      const apt = await aptRoot(server.port, repository.keyring);
      try {
        cold.push(await measure(apt, 'cold'));
        warm.push(await measure(apt, 'warm'));
        for (const folder of ['cold', 'warm']) {
          const deb = await readFile(path.join(apt.dir, folder, debFileName(target)));
          const sha = createHash('sha256').update(deb).digest('hex');
          if (sha !== expectedSha)
            throw new Error(
              `the ${folder} download of ${target} has SHA-256 ${sha}, the index says ${expectedSha}`,
            );
        }
      } finally {
        await rm(apt.dir, { recursive: true, force: true });
      }
    }
  } finally {
    await server.close();
  }
  const summarize = (all: readonly AptMeasure[]): AptMeasure => ({
    ms: median(all.map((m) => m.ms)),
    requests: median(all.map((m) => m.requests)),
    bytes: median(all.map((m) => m.bytes)),
  });
  return {
    packages,
    cold: summarize(cold),
    warm: summarize(warm),
    packagesIndexBytes: Buffer.byteLength(index),
    aptVersion,
    repreproVersion,
  };
}

async function main(argv: readonly string[]): Promise<void> {
  const packages = Number(argv[0] ?? 1000);
  const runs = Number(argv[1] ?? 5);
  const workDir = argv[2] ?? path.join(tmpdir(), 'plugindex-apt-bench');
  const result = await measureApt({ packages, workDir, runs });
  const line = (label: string, m: AptMeasure) =>
    `  ${label} ${m.ms.toFixed(0).padStart(6)} ms  ${String(m.requests).padStart(3)} requests  ${m.bytes.toLocaleString('en-US').padStart(12)} bytes`;
  console.log(
    `APT ${result.aptVersion}, reprepro ${result.repreproVersion}: ${packages.toLocaleString('en-US')} packages, median of ${runs}`,
  );
  console.log(line('cold (update + download)', result.cold));
  console.log(line('warm (update + download)', result.warm));
  console.log(`  Packages index: ${result.packagesIndexBytes.toLocaleString('en-US')} bytes uncompressed`);
  console.log(JSON.stringify(result));
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  await main(process.argv.slice(2));
}
