/**
 * Plugin sets from the command line, as a user runs them: the built `plugindex` as a process, each
 * checkout with its own client folders (PLUGINDEX_*_HOME) and a set file whose install_location is
 * relative to it, against a registry `plugindex serve` serves over real HTTP and a folder of signed
 * manifests behind a plain static web server. `init-config`, `install -c` (and `--frozen`, `--locked`),
 * `diff -c` with diff(1)'s exit codes, `clean -c`, `list -c` (and `--watch`), and `install URL --key`.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { initRegistry } from '../../cli/local/registry.ts';
import { main } from '../../cli/main.ts';
import { createSigner } from '../../index-builder/signing.ts';
import { encode, makeBundle, sha256, testKey, validManifest } from '../support/fixtures.ts';
import { type ServingRegistry, startServe } from '../support/serve.ts';
import { type StaticServer, startStaticServer } from '../support/static-server.ts';
import { UNTRUSTED_KEYS } from '../support/untrusted-keys.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(ROOT, 'cli/bin.mjs');
const run = promisify(execFile);
const ALPHA = 'cli-alpha';
const BETA = 'cli-beta';
const LOOSE = 'loose-tool';
/** The executable of a version. */
const tool = (name: string, version: string): Uint8Array => encode(`#!/bin/sh\necho ${name} ${version}\n`);
/** Every platform the starter's plugin is published for, so its default (this machine's) finds one. */
const EVERY_PLATFORM = [
  ['linux', 'amd64'],
  ['linux', 'arm64'],
  ['darwin', 'amd64'],
  ['darwin', 'arm64'],
] as const;
/**
 * How long a wait on a running command may take before the test fails: each wait ends as soon as what it
 * waits for holds, so this only bounds a failure, below the test's timeout (10 s once, which a loaded
 * machine's command could outlast).
 */
const WAIT_MS = 40_000;

let work: string;
let served: ServingRegistry;
let base: string;
let registryKey: string;
let publisherKey: string;
/** A folder of signed manifests (`<name>/<version>/manifest.json(.asc)` and the file), as a team keeps one. */
let folder: string;
let web: StaticServer;

interface Result {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

interface Checkout {
  /** The folder holding the set file, the keys it pins, and where the command runs. */
  readonly dir: string;
  /** `<dir>/plugins.yaml`. */
  readonly file: string;
  readonly env: NodeJS.ProcessEnv;
  plugindex(...args: string[]): Promise<Result>;
}

let checkouts = 0;
/**
 * A fresh checkout on a fresh machine: a folder holding the registry's public key (registry.asc), the
 * publisher's (publisher.asc) and, when given, the set file; its own client folders.
 */
async function checkout(setText?: string): Promise<Checkout> {
  checkouts += 1;
  const dir = path.join(work, `checkout${checkouts}`);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'registry.asc'), registryKey);
  await writeFile(path.join(dir, 'publisher.asc'), publisherKey);
  const file = path.join(dir, 'plugins.yaml');
  if (setText !== undefined) await writeFile(file, setText);
  const machine = path.join(work, `machine${checkouts}`);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PLUGINDEX_CONFIG_HOME: path.join(machine, 'config'),
    PLUGINDEX_DATA_HOME: path.join(machine, 'data'),
    PLUGINDEX_CACHE_HOME: path.join(machine, 'cache'),
    CI: '1',
  };
  return {
    dir,
    file,
    env,
    plugindex: async (...args) => {
      try {
        const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { cwd: dir, env });
        return { code: 0, stdout, stderr };
      } catch (error) {
        const e = error as { code: number; stdout: string; stderr: string };
        return { code: e.code, stdout: e.stdout, stderr: e.stderr };
      }
    },
  };
}

/** A set of the served registry's plugins, each for linux/amd64 whatever machine runs the test. */
function setOf(plugins: readonly { name: string; version?: string }[]): string {
  return [
    'plugins:',
    '  install_location: ./plugins',
    '  providers:',
    `    - { type: registry, name: local, url: ${base}, key: ./registry.asc }`,
    '  plugins:',
    ...plugins.map(
      (p) =>
        `    - { provider: local, name: ${p.name}${p.version ? `, version: "${p.version}"` : ''}, platforms: [linux/amd64] }`,
    ),
    '',
  ].join('\n');
}

/** Where an install of the set puts a version's linux/amd64 file. */
function installed(c: Checkout, name: string, version: string): string {
  return path.join(c.dir, 'plugins', name, version, 'linux-amd64', name);
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

/** Publishes one version into the registry folder, as `plugindex publish` does. */
async function publish(
  registryDir: string,
  name: string,
  version: string,
  platforms: readonly (readonly [string, string])[] = [['linux', 'amd64']],
): Promise<void> {
  const file = path.join(work, `${name}-${version}.tgz`);
  const requirements = {
    min_api_version: 'v1',
    max_api_version: 'v1',
    os: [...new Set(platforms.map(([os]) => os))],
    arch: [...new Set(platforms.map(([, arch]) => arch))],
  };
  await writeFile(
    file,
    await makeBundle({
      manifest: validManifest({ name, version, requirements }),
      artifacts: platforms.map(([os, arch]) => ({ os, arch, name, body: tool(name, version) })),
    }),
  );
  // The outcome document publish prints is not what this file tests: kept out of the test's output.
  const quiet = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  try {
    expect(await main(['publish', file, '--registry', registryDir, '--json']).catch(() => -1)).toBe(0);
  } finally {
    quiet.mockRestore();
  }
}

/** A version folder as a publisher keeps one: the manifest signed by the publisher key, the file beside it. */
async function writeFolderVersion(dir: string, name: string, version: string): Promise<void> {
  const at = path.join(dir, name, version);
  const body = tool(name, version);
  await mkdir(path.join(at, 'bin'), { recursive: true });
  const manifest = validManifest({
    name,
    version,
    installation: {
      artifacts: [
        {
          os: 'linux',
          arch: 'amd64',
          file: `bin/${name}`,
          sha256: sha256(body),
          size_bytes: body.byteLength,
        },
      ],
    },
  });
  const bytes = encode(`${JSON.stringify(manifest, null, 2)}\n`);
  const signer = await createSigner((await testKey('publisher')).secretKey);
  await writeFile(path.join(at, 'manifest.json.asc'), await signer.sign(bytes));
  await writeFile(path.join(at, 'manifest.json'), bytes);
  await writeFile(path.join(at, 'bin', name), body);
}

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'plugindex-cli-set-'));
  const registryDir = path.join(work, 'registry');
  await initRegistry(registryDir, { name: 'Set Registry', url: 'http://127.0.0.1:1' });
  registryKey = await readFile(path.join(registryDir, 'public/keys/registry.asc'), 'utf8');
  publisherKey = (await testKey('publisher')).publicKey;
  await publish(registryDir, ALPHA, '1.0.0');
  await publish(registryDir, ALPHA, '1.1.0');
  await publish(registryDir, BETA, '2.0.0');
  await publish(registryDir, 'kubecost-lens', '1.2.0', EVERY_PLATFORM);
  served = await startServe(registryDir);
  base = served.url;
  folder = path.join(work, 'team-folder');
  await writeFolderVersion(folder, LOOSE, '1.0.0');
  await writeFolderVersion(folder, 'other-tool', '3.0.0');
  web = await startStaticServer(folder);
}, 60_000);

afterAll(async () => {
  await served?.stop();
  await web?.close();
  await rm(work, { recursive: true, force: true });
});

describe('when init-config writes a starter set', () => {
  it('writes plugins.yaml, leaves it as it is without --force (exit 1), and replaces it with --force', async () => {
    const c = await checkout();
    const written = await c.plugindex('init-config');
    expect(written.code, written.stderr).toBe(0);
    expect(written.stdout).toContain(`wrote ${c.file}`);
    const starter = await readFile(c.file, 'utf8');
    expect(starter).toMatch(/^# A plugin set/);

    await writeFile(c.file, 'plugins: {}\n# my edits\n');
    const again = await c.plugindex('init-config');
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`FILE_EXISTS: ${c.file} exists; pass --force to replace it`);
    expect(await readFile(c.file, 'utf8')).toBe('plugins: {}\n# my edits\n');

    const forced = await c.plugindex('init-config', '--force');
    expect(forced.code, forced.stderr).toBe(0);
    expect(await readFile(c.file, 'utf8')).toBe(starter);

    const named = await c.plugindex('init-config', 'team.yaml');
    expect(named.code, named.stderr).toBe(0);
    expect(await readFile(path.join(c.dir, 'team.yaml'), 'utf8')).toBe(starter);
  });

  it('writes a set that parses: diff names only the key file it asks for, then what an install would add', async () => {
    const c = await checkout();
    await rm(path.join(c.dir, 'registry.asc'));
    expect((await c.plugindex('init-config')).code).toBe(0);
    // As written: the one registry provider pins ./registry.asc, which a user puts beside it.
    const unkeyed = await c.plugindex('diff', '-c', 'plugins.yaml', '--json');
    expect(unkeyed.code).toBe(2);
    const { error } = JSON.parse(unkeyed.stdout);
    expect(error).toMatchObject({ code: 'PLUGIN_SET_INVALID' });
    expect(error.message).toBe(
      `${c.file}#/plugins/providers/0/key: the key file ${path.join(c.dir, 'registry.asc')} does not exist`,
    );

    // With the key beside it and the URL of a running registry, the starter's plugin resolves.
    await writeFile(path.join(c.dir, 'registry.asc'), registryKey);
    const starter = await readFile(c.file, 'utf8');
    expect(starter).toContain('url: http://127.0.0.1:8080');
    await writeFile(c.file, starter.replace('http://127.0.0.1:8080', base));
    const diff = await c.plugindex('diff', '-c', 'plugins.yaml');
    expect(diff.code, diff.stderr).toBe(1);
    expect(diff.stdout).toContain('+ add kubecost-lens 1.2.0');
  });
});

describe('when init-config runs where a registry named local is configured', () => {
  it('writes the URL local is configured at, where it wrote 127.0.0.1:8080 and install -c failed ECONNREFUSED', async () => {
    const c = await checkout();
    const added = await c.plugindex('registry', 'add', 'local', base, '--key', 'registry.asc');
    expect(added.code, added.stderr).toBe(0);
    const written = await c.plugindex('init-config');
    expect(written.code, written.stderr).toBe(0);
    const starter = await readFile(c.file, 'utf8');
    expect(starter).toContain(`url: "${base}"`);
    expect(starter).not.toContain('127.0.0.1:8080');
    const diff = await c.plugindex('diff', '-c', 'plugins.yaml');
    expect(diff.code, diff.stderr).toBe(1);
    expect(diff.stdout).toContain('+ add kubecost-lens 1.2.0');
  });
});

describe('when a set is installed (install -c)', () => {
  it('installs each plugin, says so line by line and locks the set beside the file', async () => {
    const c = await checkout(setOf([{ name: ALPHA, version: '1.0.0' }, { name: BETA }]));
    const result = await c.plugindex('install', '-c', 'plugins.yaml');
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.split('\n').filter((line) => line.startsWith('installed '))).toEqual([
      `installed ${ALPHA}@1.0.0 (linux-amd64) from local: ${installed(c, ALPHA, '1.0.0')}`,
      `installed ${BETA}@2.0.0 (linux-amd64) from local: ${installed(c, BETA, '2.0.0')}`,
    ]);
    expect(result.stdout).toContain(`lock: ${path.join(c.dir, 'plugins.lock')}`);
    expect(await readFile(installed(c, ALPHA, '1.0.0'))).toEqual(Buffer.from(tool(ALPHA, '1.0.0')));
    const lock = JSON.parse(await readFile(path.join(c.dir, 'plugins.lock'), 'utf8'));
    expect(lock.config_sha256).toBe(sha256(await readFile(c.file)));
    expect(Object.keys(lock.plugins)).toEqual([ALPHA, BETA]);
    expect(lock.plugins[ALPHA]).toMatchObject({ version: '1.0.0', registry: 'local' });

    const again = await c.plugindex('install', '-c', 'plugins.yaml');
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain(`up to date ${ALPHA}@1.0.0 (linux-amd64) from local`);
    expect(again.stdout).not.toContain('lock:');
  });

  it('answers --json with the items, the lock file and what changed in it', async () => {
    const c = await checkout(setOf([{ name: ALPHA, version: '1.0.0' }, { name: BETA }]));
    expect((await c.plugindex('install', '-c', 'plugins.yaml')).code).toBe(0);
    await writeFile(c.file, setOf([{ name: ALPHA, version: '1.1.0' }, { name: BETA }]));
    const result = await c.plugindex('install', '-c', 'plugins.yaml', '--json');
    expect(result.code, result.stderr).toBe(0);
    const answer = JSON.parse(result.stdout);
    expect(answer).toMatchObject({
      lockfile: path.join(c.dir, 'plugins.lock'),
      lockfileChanged: true,
      items: [
        { name: ALPHA, version: '1.1.0', registry: 'local', unchanged: false },
        // Nothing of it was fetched or changed: it is left as it is.
        { name: BETA, version: '2.0.0', registry: 'local', unchanged: true },
      ],
    });
    expect(answer.items[0].paths).toEqual({ 'linux-amd64': installed(c, ALPHA, '1.1.0') });
    expect(answer.lockChanges).toEqual([
      { entry: `plugins/${ALPHA}`, change: 'changed', detail: expect.stringContaining('1.0.0 -> 1.1.0') },
    ]);
  });
});

describe('when two set files in one folder differ only in the extension', () => {
  it('refuses to install or diff either (PLUGIN_SET_INVALID): both would be locked in one plugins.lock', async () => {
    const c = await checkout(setOf([{ name: ALPHA, version: '1.0.0' }]));
    expect((await c.plugindex('install', '-c', 'plugins.yaml')).code).toBe(0);
    const lockfile = path.join(c.dir, 'plugins.lock');
    const lockText = await readFile(lockfile, 'utf8');
    const other = path.join(c.dir, 'plugins.yml');
    await writeFile(other, setOf([{ name: BETA }]));

    // Installing the other set would have replaced the first one's pins with its own, silently.
    const install = await c.plugindex('install', '-c', 'plugins.yml');
    expect(install.code).toBe(1);
    expect(install.stderr).toContain(
      `plugindex install: PLUGIN_SET_INVALID: ${other}: ${c.file} beside it is a plugin set file too, and a set is locked in the file named for it without its extension: both would be locked in ${lockfile}`,
    );
    expect(install.stderr).toContain(
      'rename one of them (plugins-other.yml is locked in plugins-other.lock)',
    );
    expect(await readFile(lockfile, 'utf8')).toBe(lockText);
    expect(await exists(path.join(c.dir, 'plugins', BETA))).toBe(false);
    const diff = await c.plugindex('diff', '-c', 'plugins.yaml', '--json');
    expect(diff.code).toBe(2);
    expect(JSON.parse(diff.stdout)).toMatchObject({ ok: false, error: { code: 'PLUGIN_SET_INVALID' } });

    // Renamed as the message says, each set has a lock of its own, and the first one's is as it was.
    await rename(other, path.join(c.dir, 'plugins-other.yml'));
    expect((await c.plugindex('install', '-c', 'plugins-other.yml')).code).toBe(0);
    expect(await exists(path.join(c.dir, 'plugins-other.lock'))).toBe(true);
    expect(await readFile(lockfile, 'utf8')).toBe(lockText);
  });
});

describe('when a set is compared with what is installed (diff -c)', () => {
  it('says nothing would change after an install (exit 0), and exits 1 naming a changed file, an add and an upgrade', async () => {
    const c = await checkout(setOf([{ name: ALPHA, version: '1.0.0' }]));
    expect((await c.plugindex('install', '-c', 'plugins.yaml')).code).toBe(0);
    const same = await c.plugindex('diff', '-c', 'plugins.yaml');
    expect(same.code, same.stderr).toBe(0);
    expect(same.stdout.trim()).toBe(
      `nothing would change: ${c.file} is installed as ${path.join(c.dir, 'plugins.lock')} locks it`,
    );

    await writeFile(installed(c, ALPHA, '1.0.0'), 'tampered');
    const tampered = await c.plugindex('diff', '-c', 'plugins.yaml');
    expect(tampered.code, tampered.stderr).toBe(1);
    expect(tampered.stdout).toMatch(
      new RegExp(`^! changed ${ALPHA} 1\\.0\\.0 -> 1\\.0\\.0: .*no longer matches its digest`, 'm'),
    );
    const json = await c.plugindex('diff', '-c', 'plugins.yaml', '--json');
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({
      ok: true,
      changed: true,
      changes: [{ name: ALPHA, change: 'changed', from: '1.0.0', to: '1.0.0' }],
      lockChanges: [],
      fileChanged: false,
      lockfile: path.join(c.dir, 'plugins.lock'),
    });

    await writeFile(c.file, setOf([{ name: ALPHA, version: '^1' }, { name: BETA }]));
    const edited = await c.plugindex('diff', '-c', 'plugins.yaml');
    expect(edited.code, edited.stderr).toBe(1);
    const lines = edited.stdout.split('\n');
    expect(lines).toContain(`^ upgrade ${ALPHA} 1.0.0 -> 1.1.0`);
    expect(lines).toContain(`+ add ${BETA} 2.0.0`);
    expect(lines).toContain(
      `~ ${c.file} changed since ${path.join(c.dir, 'plugins.lock')} was written (install -c records it in the lock)`,
    );
    expect(edited.stdout).toMatch(new RegExp(`^~ lock plugins/${BETA} added `, 'm'));
    // diff only looks: the tree and the lock are as they were.
    expect(await readFile(installed(c, ALPHA, '1.0.0'), 'utf8')).toBe('tampered');
    expect(await exists(path.join(c.dir, 'plugins', BETA))).toBe(false);
  });

  it('exits 2 with PLUGIN_SET_INVALID and the JSON pointer for an unknown key, and for a missing file', async () => {
    const c = await checkout(
      setOf([{ name: ALPHA, version: '1.0.0' }]).replace('platforms: [linux/amd64] }', 'colour: red }'),
    );
    const unknown = await c.plugindex('diff', '-c', 'plugins.yaml');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain(
      `plugindex diff: PLUGIN_SET_INVALID: ${c.file}#/plugins/plugins/0/colour (line 6): expected only the fields`,
    );
    expect(unknown.stdout).toBe('');
    const json = await c.plugindex('diff', '-c', 'plugins.yaml', '--json');
    expect(json.code).toBe(2);
    expect(JSON.parse(json.stdout)).toMatchObject({
      ok: false,
      error: { code: 'PLUGIN_SET_INVALID', message: expect.stringContaining('#/plugins/plugins/0/colour') },
    });

    const missing = await c.plugindex('diff', '-c', 'nowhere.yaml', '--json');
    expect(missing.code).toBe(2);
    expect(JSON.parse(missing.stdout)).toMatchObject({
      ok: false,
      error: {
        code: 'PLUGIN_SET_INVALID',
        message: `${path.join(c.dir, 'nowhere.yaml')} does not exist (\`plugindex init-config\` writes a starter)`,
      },
    });
  });

  it('exits 2, never 1 ("differs"), when the set cannot be read at all', async () => {
    const c = await checkout();
    // A folder where the file should be: named as such, and trouble to diff.
    const folderAsFile = await c.plugindex('diff', '-c', '.');
    expect(folderAsFile.code).toBe(2);
    expect(folderAsFile.stdout).toBe('');
    expect(folderAsFile.stderr).toContain('PLUGIN_SET_INVALID');
    expect(folderAsFile.stderr).toContain('is a folder, not a plugin set file');
  });
});

describe('when a set no longer names an install (clean -c)', () => {
  it('removes it and keeps what the set names', async () => {
    const c = await checkout(setOf([{ name: ALPHA, version: '1.0.0' }, { name: BETA }]));
    expect((await c.plugindex('install', '-c', 'plugins.yaml')).code).toBe(0);
    await writeFile(c.file, setOf([{ name: ALPHA, version: '1.0.0' }]));
    const cleaned = await c.plugindex('clean', '-c', 'plugins.yaml');
    expect(cleaned.code, cleaned.stderr).toBe(0);
    expect(cleaned.stdout).toContain(`removed ${BETA}@2.0.0 from ${path.join(c.dir, 'plugins')}`);
    expect(await exists(path.join(c.dir, 'plugins', BETA))).toBe(false);
    expect(await readFile(installed(c, ALPHA, '1.0.0'))).toEqual(Buffer.from(tool(ALPHA, '1.0.0')));

    const json = await c.plugindex('clean', '-c', 'plugins.yaml', '--json');
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ removed: [] });
  });
});

describe('when a set\u2019s file is gone and its claims stay (verify, clean --orphans)', () => {
  it('names each claim in verify (exit 0), and clean --orphans drops it, removing what no one else claims', async () => {
    // Prepare: the set's registry configured under the set's provider name too, so plain verify checks its
    // versions by that key; the set installs, then its file is moved away.
    const c = await checkout(setOf([{ name: ALPHA, version: '1.0.0' }]));
    expect((await c.plugindex('registry', 'add', 'local', base, '--key', 'registry.asc')).code).toBe(0);
    expect((await c.plugindex('install', '-c', 'plugins.yaml')).code).toBe(0);
    await rename(c.file, path.join(c.dir, 'moved.yaml'));
    const plugins = path.join(c.dir, 'plugins');

    // Act
    const verified = await c.plugindex('verify', '--dir', 'plugins');
    const misused = await c.plugindex('clean', '--orphans', '-c', 'moved.yaml');
    const cleaned = await c.plugindex('clean', '--orphans', '--dir', 'plugins');

    // Assess
    expect(verified.code, verified.stderr).toBe(0);
    expect(verified.stdout).toContain(`verified ${ALPHA}@1.0.0`);
    expect(verified.stdout).toContain(
      `orphaned claim on ${ALPHA}@1.0.0: SET_FILE_GONE: installed.json in ${plugins} records ../plugins.yaml`,
    );
    expect(verified.stdout).toContain(`\`plugindex clean --orphans --dir ${plugins}\``);
    expect(misused.code).toBe(2);
    expect(misused.stderr).toContain('--orphans');
    expect(cleaned.code, cleaned.stderr).toBe(0);
    expect(cleaned.stdout.trim()).toBe(
      `removed ${ALPHA}@1.0.0 from ${plugins}: claimed only by ../plugins.yaml, whose file is gone`,
    );
    expect(await exists(installed(c, ALPHA, '1.0.0'))).toBe(false);
    const again = await c.plugindex('clean', '--orphans', '--dir', 'plugins', '--json');
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toEqual({ removed: [], left: [] });
  });
});

describe('when a set drops a platform or leaves an older version behind (diff -c, clean -c)', () => {
  it('names the files of a platform the set no longer lists (exit 1), and nothing once clean removed them (exit 0)', async () => {
    const both = setOf([{ name: 'kubecost-lens' }]).replace('[linux/amd64]', '[linux/amd64, darwin/arm64]');
    const c = await checkout(both);
    expect((await c.plugindex('install', '-c', 'plugins.yaml')).code).toBe(0);
    const plugins = path.join(c.dir, 'plugins');
    const mac = path.join(plugins, 'kubecost-lens', '1.2.0', 'darwin-arm64');
    await writeFile(c.file, setOf([{ name: 'kubecost-lens' }]));
    expect((await c.plugindex('install', '-c', 'plugins.yaml')).code).toBe(0);

    // The install leaves the darwin-arm64 files; diff says clean removes them, and exits "changes pending".
    expect(await exists(mac)).toBe(true);
    const diff = await c.plugindex('diff', '-c', 'plugins.yaml');
    expect(diff.code, diff.stderr).toBe(1);
    expect(diff.stdout.trim()).toBe(
      '- remove kubecost-lens 1.2.0: the files of darwin-arm64, a platform the set no longer lists (`plugindex clean -c` removes them)',
    );
    const json = await c.plugindex('diff', '-c', 'plugins.yaml', '--json');
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({
      changed: true,
      changes: [{ name: 'kubecost-lens', change: 'remove', from: '1.2.0', platforms: ['darwin-arm64'] }],
    });

    const cleaned = await c.plugindex('clean', '-c', 'plugins.yaml');
    expect(cleaned.code, cleaned.stderr).toBe(0);
    expect(cleaned.stdout).toContain(
      `removed kubecost-lens@1.2.0 darwin-arm64 (platforms the set no longer lists) from ${plugins}`,
    );
    expect(await exists(mac)).toBe(false);
    expect(await exists(path.join(plugins, 'kubecost-lens', '1.2.0', 'linux-amd64', 'kubecost-lens'))).toBe(
      true,
    );
    expect((await c.plugindex('diff', '-c', 'plugins.yaml')).code).toBe(0);
  });

  it('leaves an older version installed by hand beside the one the set installs, saying how to remove it', async () => {
    const c = await checkout(setOf([{ name: ALPHA, version: '1.1.0' }]));
    const plugins = path.join(c.dir, 'plugins');
    expect((await c.plugindex('install', '-c', 'plugins.yaml')).code).toBe(0);
    expect((await c.plugindex('registry', 'add', 'local', base, '--key', 'registry.asc')).code).toBe(0);
    for (const version of ['1.0.0', '1.1.0'])
      expect(
        (
          await c.plugindex(
            'install',
            `${ALPHA}@${version}`,
            '--dir',
            'plugins',
            '--lockfile',
            'by-hand.lock',
          )
        ).code,
      ).toBe(0);
    // Not the set's to remove: it did not place it (the folder could be the client's own, or another set's).
    const diff = await c.plugindex('diff', '-c', 'plugins.yaml');
    expect(diff.code, diff.stdout).toBe(0);
    const clean = await c.plugindex('clean', '-c', 'plugins.yaml');
    expect(clean.code, clean.stderr).toBe(0);
    expect(clean.stdout).toContain(
      `left ${ALPHA}@1.0.0 in ${plugins}: not placed by this set (installed.json records no install -c of ${c.file} placing it`,
    );
    expect(clean.stdout).toContain(`\`plugindex remove ${ALPHA}@1.0.0 --dir ${plugins}\` removes it`);
    expect(await exists(installed(c, ALPHA, '1.0.0'))).toBe(true);
    expect(
      (await c.plugindex('remove', `${ALPHA}@1.0.0`, '--dir', plugins, '--lockfile', 'by-hand.lock')).code,
    ).toBe(0);
    expect(await exists(installed(c, ALPHA, '1.0.0'))).toBe(false);
  });
});

describe('when a set is installed from its lock (install -c --frozen)', () => {
  it('installs exactly the lock on a machine with nothing cached, and refuses a set the lock does not match', async () => {
    const setText = setOf([{ name: ALPHA, version: '1.0.0' }, { name: BETA }]);
    const first = await checkout(setText);
    expect((await first.plugindex('install', '-c', 'plugins.yaml')).code).toBe(0);
    const lockText = await readFile(path.join(first.dir, 'plugins.lock'), 'utf8');

    // Another checkout of the same set and lock, on a machine whose cache is empty.
    const c = await checkout(setText);
    await writeFile(path.join(c.dir, 'plugins.lock'), lockText);
    const frozen = await c.plugindex('install', '-c', 'plugins.yaml', '--frozen');
    expect(frozen.code, frozen.stderr).toBe(0);
    expect(frozen.stdout).toContain(`installed ${ALPHA}@1.0.0 (linux-amd64) from local`);
    expect(await readFile(installed(c, ALPHA, '1.0.0'))).toEqual(Buffer.from(tool(ALPHA, '1.0.0')));
    expect(await readFile(installed(c, BETA, '2.0.0'))).toEqual(Buffer.from(tool(BETA, '2.0.0')));
    expect(await readFile(path.join(c.dir, 'plugins.lock'), 'utf8')).toBe(lockText);
    expect((await c.plugindex('diff', '-c', 'plugins.yaml')).code).toBe(0);

    await writeFile(c.file, setOf([{ name: ALPHA, version: '1.1.0' }, { name: BETA }]));
    const outOfSync = await c.plugindex('install', '-c', 'plugins.yaml', '--frozen', '--json');
    expect(outOfSync.code).toBe(1);
    expect(outOfSync.stderr).toContain(`LOCK_OUT_OF_SYNC: ${path.join(c.dir, 'plugins.lock')}`);
    expect(outOfSync.stderr).toContain(`${ALPHA}@1.1.0`);
    expect(JSON.parse(outOfSync.stdout)).toMatchObject({ ok: false, error: { code: 'LOCK_OUT_OF_SYNC' } });
    const locked = await c.plugindex('install', '-c', 'plugins.yaml', '--locked');
    expect(locked.code).toBe(1);
    expect(locked.stderr).toContain('LOCK_OUT_OF_SYNC');
    expect(await readFile(path.join(c.dir, 'plugins.lock'), 'utf8')).toBe(lockText);
    expect(await exists(path.join(c.dir, 'plugins', ALPHA, '1.1.0'))).toBe(false);
  });
});

describe('when a frozen lock is forged against a folder source (install -c --frozen)', () => {
  it('exits 3 with DOCUMENT_MISMATCH naming the lock and the plugin, and installs nothing', async () => {
    // Prepare: a set of one plugin from the web folder, installed and locked; then the lock edited to the
    // forger's own manifest of that version (signed by the forger's key) and its file, hosted by the forger.
    const setText = [
      'plugins:',
      '  install_location: ./plugins',
      '  providers:',
      `    - { type: url, name: web, url: ${web.url}, key: ./publisher.asc }`,
      '  plugins:',
      `    - { provider: web, name: ${LOOSE}, version: "1.0.0" }`,
      '',
    ].join('\n');
    const first = await checkout(setText);
    expect((await first.plugindex('install', '-c', 'plugins.yaml')).code).toBe(0);
    const lock = JSON.parse(await readFile(path.join(first.dir, 'plugins.lock'), 'utf8'));
    const forgedDir = path.join(work, 'forged');
    await mkdir(forgedDir, { recursive: true });
    const host = await startStaticServer(forgedDir);
    try {
      const body = encode('#!/bin/sh\necho forged\n');
      const artifact = { sha256: sha256(body), size: body.byteLength, url: `${host.url}/${LOOSE}` };
      const manifest = encode(
        `${JSON.stringify(
          validManifest({
            name: LOOSE,
            version: '1.0.0',
            installation: {
              artifacts: [
                {
                  os: 'linux',
                  arch: 'amd64',
                  url: artifact.url,
                  sha256: artifact.sha256,
                  size_bytes: artifact.size,
                },
              ],
            },
          }),
        )}\n`,
      );
      await writeFile(path.join(forgedDir, LOOSE), body);
      await writeFile(path.join(forgedDir, 'manifest.json'), manifest);
      await writeFile(
        path.join(forgedDir, 'manifest.json.asc'),
        await (await createSigner((await testKey('forger')).secretKey)).sign(manifest),
      );
      lock.plugins[LOOSE] = {
        ...lock.plugins[LOOSE],
        manifest_sha256: sha256(manifest),
        manifest_url: `${host.url}/manifest.json`,
        publisher: (await testKey('forger')).fingerprint,
        artifacts: { 'linux-amd64': artifact },
      };
      const c = await checkout(setText);
      await writeFile(path.join(c.dir, 'plugins.lock'), `${JSON.stringify(lock, null, 2)}\n`);

      // Act
      const frozen = await c.plugindex('install', '-c', 'plugins.yaml', '--frozen');

      // Assess
      expect(frozen.code, frozen.stdout).toBe(3);
      expect(frozen.stderr).toContain(
        `DOCUMENT_MISMATCH: ${path.join(c.dir, 'plugins.lock')}: plugins/${LOOSE}@1.0.0`,
      );
      expect(await exists(path.join(c.dir, 'plugins'))).toBe(false);
    } finally {
      await host.close();
    }
  });
});

/** Lines of `list -c` for a version folder: name, version, status, folder. */
function listed(c: Checkout, name: string, version: string, status: string): string {
  return `${name}  ${version}  ${status}  ${path.join(c.dir, 'plugins', name, version)}  (`;
}

describe('when the plugin folders of a set are discovered (list -c)', () => {
  it('shows installs as verified, and a folder copied in by hand without a signature as unsigned (exit 1)', async () => {
    const c = await checkout(setOf([{ name: ALPHA, version: '1.0.0' }, { name: BETA }]));
    expect((await c.plugindex('install', '-c', 'plugins.yaml')).code).toBe(0);
    const clean = await c.plugindex('list', '-c', 'plugins.yaml');
    expect(clean.code, clean.stderr).toBe(0);
    expect(clean.stdout.split('\n').filter(Boolean)).toEqual([
      expect.stringContaining(listed(c, ALPHA, '1.0.0', 'verified')),
      expect.stringContaining(listed(c, BETA, '2.0.0', 'verified')),
    ]);

    await cp(path.join(folder, LOOSE), path.join(c.dir, 'plugins', LOOSE), { recursive: true });
    await rm(path.join(c.dir, 'plugins', LOOSE, '1.0.0', 'manifest.json.asc'));
    const copied = await c.plugindex('list', '-c', 'plugins.yaml');
    expect(copied.code).toBe(1);
    expect(copied.stdout).toContain(
      `${listed(c, LOOSE, '1.0.0', 'unsigned')}no manifest.json.asc beside the manifest)`,
    );
    const json = await c.plugindex('list', '-c', 'plugins.yaml', '--json');
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({
      paths: [path.join(c.dir, 'plugins')],
      plugins: [
        { name: ALPHA, version: '1.0.0', status: 'verified' },
        { name: BETA, version: '2.0.0', status: 'verified' },
        { name: LOOSE, version: '1.0.0', status: 'unsigned' },
      ],
    });
  });

  // An install keeps the file at `<os>-<arch>/<file>`, not where the signed manifest names it: discovery
  // looks there too, so a changed executable is seen.
  it('shows an installed version whose executable was changed as modified (exit 1)', async () => {
    const c = await checkout(setOf([{ name: ALPHA, version: '1.0.0' }]));
    expect((await c.plugindex('install', '-c', 'plugins.yaml')).code).toBe(0);
    await writeFile(installed(c, ALPHA, '1.0.0'), 'tampered');
    const listing = await c.plugindex('list', '-c', 'plugins.yaml');
    expect(listing.stdout).toContain(listed(c, ALPHA, '1.0.0', 'modified'));
    expect(listing.code).toBe(1);
  });

  it('lists again with --watch when a folder is copied in, and exits 0 on SIGINT', async () => {
    const c = await checkout(setOf([{ name: ALPHA, version: '1.0.0' }]));
    expect((await c.plugindex('install', '-c', 'plugins.yaml')).code).toBe(0);
    const { child, out, err, exited } = watching(c);
    try {
      await waitFor(() => out().includes(listed(c, ALPHA, '1.0.0', 'verified')), child, err);
      expect(out()).not.toContain(LOOSE);
      const before = out().length;
      await cp(path.join(folder, LOOSE), path.join(c.dir, 'plugins', LOOSE), { recursive: true });
      // Signed, but by the publisher's key, which neither the set nor a configured registry pins.
      await waitFor(
        () =>
          out()
            .slice(before)
            .includes(listed(c, LOOSE, '1.0.0', 'untrusted')),
        child,
        err,
      );
      expect(out().slice(before)).toContain(listed(c, ALPHA, '1.0.0', 'verified'));
      child.kill('SIGINT');
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('sees with --watch a folder that did not exist when it started, once an install makes it', async () => {
    const c = await checkout(setOf([{ name: ALPHA, version: '1.0.0' }]));
    const { child, out, err, exited } = watching(c);
    try {
      await waitFor(() => out().includes('no plugin folders under'), child, err);
      expect((await c.plugindex('install', '-c', 'plugins.yaml')).code).toBe(0);
      await waitFor(() => out().includes(listed(c, ALPHA, '1.0.0', 'verified')), child, err);
      child.kill('SIGINT');
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});

/** `list -c plugins.yaml --watch` running in the checkout, what it has printed so far, and its exit. */
function watching(c: { readonly dir: string; readonly env: NodeJS.ProcessEnv }) {
  const child = spawn(process.execPath, [BIN, 'list', '-c', 'plugins.yaml', '--watch'], {
    cwd: c.dir,
    env: c.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, out: () => stdout, err: () => stderr, exited };
}

/** Polls until `done()` holds, failing after WAIT_MS or as soon as the process exits. */
async function waitFor(done: () => boolean, child: ChildProcess, stderr: () => string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!done()) {
    if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}: ${stderr()}`);
    if (Date.now() > deadline) throw new Error(`timed out after ${WAIT_MS} ms: ${stderr()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('when the set\u2019s policy is tightened after an install (verify -c, list -c)', () => {
  it('verify -c exits 1 with POLICY_DENIED naming each plugin and the rule, list -c marks it, until the policy allows it again', async () => {
    // Prepare: the set installed as it was; then a policy that allows one publisher, not the one that signed.
    const setText = setOf([{ name: ALPHA, version: '1.0.0' }, { name: BETA }]);
    const c = await checkout(setText);
    expect((await c.plugindex('install', '-c', 'plugins.yaml')).code).toBe(0);
    const other = 'A'.repeat(40);
    await writeFile(c.file, `${setText}policy:\n  publishers: ["${other}"]\n`);

    // Act: verify and list the set.
    const verify = await c.plugindex('verify', '-c', 'plugins.yaml');
    const verifyJson = await c.plugindex('verify', '-c', 'plugins.yaml', '--json');
    const list = await c.plugindex('list', '-c', 'plugins.yaml');
    const listJson = await c.plugindex('list', '-c', 'plugins.yaml', '--json');

    // Assess: each version refused by the rule it breaks; the listing's rows as before, a line under each.
    expect(verify.code, verify.stderr).toBe(1);
    for (const [name, version] of [
      [ALPHA, '1.0.0'],
      [BETA, '2.0.0'],
    ])
      expect(verify.stdout).toContain(
        `NOT allowed ${name}@${version}: POLICY_DENIED: ${c.file}#/policy/publishers: ${name}@${version} is signed by publisher`,
      );
    expect(verify.stdout).toContain(`which is not among policy.publishers (${other})`);
    expect(verifyJson.code).toBe(1);
    expect(JSON.parse(verifyJson.stdout)).toMatchObject({
      ok: false,
      plugins: [
        { name: ALPHA, version: '1.0.0', ok: false, code: 'POLICY_DENIED' },
        { name: BETA, version: '2.0.0', ok: false, code: 'POLICY_DENIED' },
      ],
    });
    expect(list.code, list.stderr).toBe(1);
    const lines = list.stdout.split('\n').filter(Boolean);
    expect(lines).toEqual([
      expect.stringContaining(listed(c, ALPHA, '1.0.0', 'verified')),
      expect.stringContaining(
        `  POLICY_DENIED: ${c.file}#/policy/publishers: ${ALPHA}@1.0.0 is signed by publisher`,
      ),
      expect.stringContaining(listed(c, BETA, '2.0.0', 'verified')),
      expect.stringContaining(
        `  POLICY_DENIED: ${c.file}#/policy/publishers: ${BETA}@2.0.0 is signed by publisher`,
      ),
    ]);
    expect(listJson.code).toBe(1);
    expect(JSON.parse(listJson.stdout)).toMatchObject({
      plugins: [
        {
          name: ALPHA,
          status: 'verified',
          policy: [expect.stringContaining(`${c.file}#/policy/publishers: `)],
        },
        {
          name: BETA,
          status: 'verified',
          policy: [expect.stringContaining(`${c.file}#/policy/publishers: `)],
        },
      ],
    });

    // The publisher that signed them allowed: nothing to say again.
    const publisher = (await testKey('publisher')).fingerprint;
    await writeFile(c.file, `${setText}policy:\n  publishers: ["${publisher}"]\n`);
    const allowed = await c.plugindex('verify', '-c', 'plugins.yaml');
    expect(allowed.code, allowed.stdout).toBe(0);
    const relisted = await c.plugindex('list', '-c', 'plugins.yaml');
    expect(relisted.code, relisted.stdout).toBe(0);
    expect(relisted.stdout).not.toContain('POLICY_DENIED');
  });
});

describe('when a set\u2019s folder holds a plugin the set no longer names (verify -c)', () => {
  it('exits 1 naming it NOT_IN_SET, not verified as the set\u2019s, until clean -c removes it', async () => {
    // Prepare: two plugins installed, then one taken out of the set (still in its folder).
    const c = await checkout(setOf([{ name: ALPHA, version: '1.0.0' }, { name: BETA }]));
    expect((await c.plugindex('install', '-c', 'plugins.yaml')).code).toBe(0);
    await writeFile(c.file, setOf([{ name: ALPHA, version: '1.0.0' }]));

    // Act
    const verify = await c.plugindex('verify', '-c', 'plugins.yaml');

    // Assess: a rejection (exit 1), as diff -c's removal is, not a trust check that failed (3).
    expect(verify.code, verify.stderr).toBe(1);
    expect(verify.stdout).toContain(`verified ${ALPHA}@1.0.0`);
    expect(verify.stdout).toContain(
      `NOT in the set ${BETA}@2.0.0: NOT_IN_SET: ${c.file} installs no plugin ${BETA}`,
    );
    expect((await c.plugindex('clean', '-c', 'plugins.yaml')).code).toBe(0);
    expect((await c.plugindex('verify', '-c', 'plugins.yaml')).code).toBe(0);
  });

  it('list -c names it NOT_IN_SET under its row (exit 1), not judged by the set\u2019s policy, as verify -c does', async () => {
    // Prepare: two plugins installed, then one taken out of the set, and a policy neither publisher meets.
    const c = await checkout(setOf([{ name: ALPHA, version: '1.0.0' }, { name: BETA }]));
    expect((await c.plugindex('install', '-c', 'plugins.yaml')).code).toBe(0);
    await writeFile(
      c.file,
      `${setOf([{ name: ALPHA, version: '1.0.0' }])}policy:\n  publishers: ["${'A'.repeat(40)}"]\n`,
    );

    // Act
    const list = await c.plugindex('list', '-c', 'plugins.yaml');
    const verify = await c.plugindex('verify', '-c', 'plugins.yaml');

    // Assess: the set's plugin judged by its policy; the other named as not the set's, and judged not.
    expect(list.code, list.stderr).toBe(1);
    expect(list.stdout.split('\n').filter(Boolean)).toEqual([
      expect.stringContaining(listed(c, ALPHA, '1.0.0', 'verified')),
      expect.stringContaining(
        `  POLICY_DENIED: ${c.file}#/policy/publishers: ${ALPHA}@1.0.0 is signed by publisher`,
      ),
      expect.stringContaining(listed(c, BETA, '2.0.0', 'verified')),
      `  NOT_IN_SET: ${c.file} installs no plugin ${BETA} into ${path.join(c.dir, 'plugins')}: not verified as the set's (\`plugindex clean -c\` removes it; \`plugindex verify --dir ${path.join(c.dir, 'plugins')}\` checks it by the configured registries)`,
    ]);
    expect(verify.stdout).toContain(`NOT in the set ${BETA}@2.0.0: NOT_IN_SET: `);
    expect(verify.stdout).not.toContain(`NOT allowed ${BETA}`);
  });
});

describe('when a set\u2019s folder holds plain installs the set neither names nor placed (verify -c, list -c)', () => {
  it('says each is another\u2019s (NOT_PLACED_BY_SET) and exits 0, as clean -c leaves them and diff -c names no removal', async () => {
    // Prepare: the set installs cli-alpha 1.1.0; by hand, into its folder, cli-alpha 1.0.0 and cli-beta.
    const c = await checkout(setOf([{ name: ALPHA, version: '1.1.0' }]));
    const plugins = path.join(c.dir, 'plugins');
    expect((await c.plugindex('install', '-c', 'plugins.yaml')).code).toBe(0);
    expect((await c.plugindex('registry', 'add', 'local', base, '--key', 'registry.asc')).code).toBe(0);
    for (const request of [`${ALPHA}@1.0.0`, `${BETA}@2.0.0`])
      expect(
        (await c.plugindex('install', request, '--dir', 'plugins', '--lockfile', 'by-hand.lock')).code,
      ).toBe(0);

    // Act
    const verify = await c.plugindex('verify', '-c', 'plugins.yaml');
    const verifyJson = await c.plugindex('verify', '-c', 'plugins.yaml', '--json');
    const list = await c.plugindex('list', '-c', 'plugins.yaml');
    const diff = await c.plugindex('diff', '-c', 'plugins.yaml');

    // Assess
    expect(verify.code, verify.stdout).toBe(0);
    expect(verify.stdout).toContain(`verified ${ALPHA}@1.1.0`);
    expect(verify.stdout).toContain(
      `another's ${ALPHA}@1.0.0: NOT_PLACED_BY_SET: ${c.file} installs ${ALPHA}@1.1.0 here (its lock), not 1.0.0, nor did it place it`,
    );
    expect(verify.stdout).toContain(
      `another's ${BETA}@2.0.0: NOT_PLACED_BY_SET: ${c.file} installs no plugin ${BETA} into ${plugins}, nor did it place it`,
    );
    expect(verifyJson.code).toBe(0);
    expect(JSON.parse(verifyJson.stdout)).toMatchObject({
      ok: true,
      plugins: expect.arrayContaining([
        expect.objectContaining({ name: BETA, version: '2.0.0', ok: false, code: 'NOT_PLACED_BY_SET' }),
      ]),
    });
    expect(list.code, list.stdout).toBe(0);
    expect(list.stdout).toContain(
      `  NOT_PLACED_BY_SET: ${c.file} installs no plugin ${BETA} into ${plugins}`,
    );
    expect(list.stdout).not.toContain('NOT_IN_SET');
    // (diff -c names the hand install's moving of current, not a removal.)
    expect(diff.stdout).not.toContain('remove');

    // One the set placed and no longer names is still a rejection, until clean -c removes it.
    await writeFile(c.file, setOf([{ name: BETA, version: '2.0.0' }]));
    const dropped = await c.plugindex('verify', '-c', 'plugins.yaml');
    expect(dropped.code, dropped.stdout).toBe(1);
    expect(dropped.stdout).toContain(`NOT in the set ${ALPHA}@1.1.0: NOT_IN_SET: `);
    expect((await c.plugindex('clean', '-c', 'plugins.yaml')).code).toBe(0);
    const cleaned = await c.plugindex('verify', '-c', 'plugins.yaml');
    expect(cleaned.code, cleaned.stdout).toBe(0);
    expect(cleaned.stdout).toContain(`another's ${ALPHA}@1.0.0: NOT_PLACED_BY_SET: `);
  });
});

describe('when two sets share one install folder and pin the same version (clean -c, diff -c, verify -c)', () => {
  it('keeps it while either pins it: clean -c of one drops only its own claim, the last one removes it', async () => {
    // Prepare: plugins.yaml and team-b.yaml, both installing cli-alpha 1.0.0 into ./plugins.
    const c = await checkout(setOf([{ name: ALPHA, version: '1.0.0' }, { name: BETA }]));
    await writeFile(path.join(c.dir, 'team-b.yaml'), setOf([{ name: ALPHA, version: '1.0.0' }]));
    const plugins = path.join(c.dir, 'plugins');
    expect((await c.plugindex('install', '-c', 'plugins.yaml')).code).toBe(0);
    const second = await c.plugindex('install', '-c', 'team-b.yaml');
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toContain(`up to date ${ALPHA}@1.0.0`);
    const record = async () =>
      JSON.parse(await readFile(path.join(plugins, 'installed.json'), 'utf8')).plugins[ALPHA]?.versions[
        '1.0.0'
      ];
    expect((await record()).sets).toEqual(['../plugins.yaml', '../team-b.yaml']);

    // Act: the first set drops it.
    await writeFile(c.file, setOf([{ name: BETA }]));
    const diff = await c.plugindex('diff', '-c', 'plugins.yaml');
    const clean = await c.plugindex('clean', '-c', 'plugins.yaml');
    const verify = await c.plugindex('verify', '-c', 'plugins.yaml');
    const verifyOther = await c.plugindex('verify', '-c', 'team-b.yaml');

    // Assess: its claim dropped (diff named that, exit 1), the files the other set's, which verifies them.
    expect(diff.code, diff.stderr).toBe(1);
    expect(diff.stdout).toContain(
      `- remove ${ALPHA} 1.0.0: not in the set, but also placed by ../team-b.yaml, which pins it still: \`plugindex clean -c\` drops only this set's claim, and the files stay`,
    );
    expect(clean.code, clean.stderr).toBe(0);
    expect(clean.stdout).toContain(`left ${ALPHA}@1.0.0 in ${plugins}: also placed by ../team-b.yaml`);
    expect(await exists(installed(c, ALPHA, '1.0.0'))).toBe(true);
    expect((await record()).sets).toEqual(['../team-b.yaml']);
    expect(verify.code, verify.stdout).toBe(0);
    expect(verify.stdout).toContain(`another's ${ALPHA}@1.0.0: NOT_PLACED_BY_SET: `);
    expect(verifyOther.code, verifyOther.stdout).toBe(0);
    expect(verifyOther.stdout).toContain(`verified ${ALPHA}@1.0.0`);
    // (The set file changed since its lock: diff -c says that alone now.)
    expect(JSON.parse((await c.plugindex('diff', '-c', 'plugins.yaml', '--json')).stdout).changes).toEqual(
      [],
    );

    // Act and assess: the other drops it too, and its clean -c removes it.
    await writeFile(path.join(c.dir, 'team-b.yaml'), setOf([{ name: BETA }]));
    const last = await c.plugindex('clean', '-c', 'team-b.yaml');
    expect(last.code, last.stderr).toBe(0);
    expect(last.stdout).toContain(`removed ${ALPHA}@1.0.0 from ${plugins}`);
    expect(await exists(installed(c, ALPHA, '1.0.0'))).toBe(false);
  });

  it('takes the set file named through a link to its folder as the one set', async () => {
    // Prepare: a set installing into a folder outside its checkout, installed through a link to the
    // checkout; then the set drops cli-beta.
    const shared = await mkdtemp(path.join(work, 'shared-'));
    const plugins = path.join(shared, 'plugins');
    const outside = (list: { name: string; version?: string }[]) =>
      setOf(list).replace('install_location: ./plugins', `install_location: ${plugins}`);
    const c = await checkout(outside([{ name: ALPHA, version: '1.0.0' }, { name: BETA }]));
    const link = path.join(shared, 'checkout');
    await symlink(c.dir, link, 'dir');
    const first = await c.plugindex('install', '-c', path.join(link, 'plugins.yaml'));
    expect(first.code, first.stderr).toBe(0);
    await writeFile(c.file, outside([{ name: ALPHA, version: '1.0.0' }]));

    // Act
    const verify = await c.plugindex('verify', '-c', 'plugins.yaml');
    const clean = await c.plugindex('clean', '-c', 'plugins.yaml');

    // Assess: the set's own, by its file's real path: named NOT_IN_SET, and removed by clean -c.
    expect(verify.code, verify.stdout).toBe(1);
    expect(verify.stdout).toContain(`NOT in the set ${BETA}@2.0.0: NOT_IN_SET: `);
    expect(clean.code, clean.stderr).toBe(0);
    expect(clean.stdout).toContain(`removed ${BETA}@2.0.0 from ${plugins}`);
    expect(await exists(path.join(plugins, BETA))).toBe(false);
  });
});

describe('when a manifest is installed by its URL (install URL)', () => {
  it('installs one from a static server with --key, and refuses it without a key or with another key', async () => {
    const c = await checkout();
    const url = `${web.url}/${LOOSE}/1.0.0/manifest.json`;
    const keyless = await c.plugindex('install', url, '--dir', 'plugins', '--json');
    // A URL typed on the command line that is refused is a usage error, exit 2 (a file's is exit 1).
    expect(keyless.code).toBe(2);
    expect(keyless.stderr).toContain(`REQUEST_INVALID: ${url} is not under a configured registry`);
    expect(JSON.parse(keyless.stdout)).toMatchObject({ ok: false, error: { code: 'REQUEST_INVALID' } });

    const otherKey = await c.plugindex('install', url, '--key', 'registry.asc', '--dir', 'plugins');
    expect(otherKey.code).toBe(3);
    expect(otherKey.stderr).toContain('DOCUMENT_MISMATCH');
    expect(await exists(path.join(c.dir, 'plugins'))).toBe(false);

    const result = await c.plugindex(
      'install',
      url,
      '--key',
      'publisher.asc',
      '--dir',
      'plugins',
      '--platform',
      'linux/amd64',
    );
    expect(result.code, result.stderr).toBe(0);
    // The source is named for the host and the key that verified it.
    const host = new URL(web.url).host.replace(':', '-');
    expect(result.stdout).toMatch(
      new RegExp(
        `installed ${LOOSE}@1\\.0\\.0 \\(linux-amd64\\) from url-${host.replace(/\./g, '\\.')}-[0-9a-f]{16}: `,
      ),
    );
    expect(await readFile(installed(c, LOOSE, '1.0.0'))).toEqual(Buffer.from(tool(LOOSE, '1.0.0')));
    const lock = JSON.parse(await readFile(path.join(c.dir, 'plugindex.lock'), 'utf8'));
    expect(lock.plugins[LOOSE].artifacts['linux-amd64'].url).toBe(`${web.url}/${LOOSE}/1.0.0/bin/${LOOSE}`);
  });

  it('needs no key for a manifest under a configured registry, and refuses a URL there that is no manifest', async () => {
    const c = await checkout();
    expect((await c.plugindex('registry', 'add', 'main', base, '--key', 'registry.asc')).code).toBe(0);
    const url = `${base}/plugins/${BETA}/2.0.0/manifest.json`;
    const result = await c.plugindex('install', url, '--dir', 'plugins', '--platform', 'linux/amd64');
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(
      `installed ${BETA}@2.0.0 (linux-amd64) from main: ${installed(c, BETA, '2.0.0')}`,
    );
    const document = await c.plugindex('install', `${base}/plugins/${BETA}/index.json`, '--dir', 'plugins');
    expect(document.code).toBe(2);
    expect(document.stderr).toContain(
      `REQUEST_INVALID: ${base}/plugins/${BETA}/index.json is under registry main`,
    );
  });
});

describe('when a set command is given the wrong arguments', () => {
  it('exits 2 with the usage for names beside -c, and for diff, clean or list --watch without -c', async () => {
    const c = await checkout(setOf([{ name: ALPHA }]));
    const named = await c.plugindex('install', '-c', 'plugins.yaml', ALPHA);
    expect(named.code).toBe(2);
    expect(named.stderr).toContain('-c FILE installs exactly the set');
    expect(named.stderr).toContain('usage: plugindex install');
    const withDir = await c.plugindex('install', '-c', 'plugins.yaml', '--dir', 'elsewhere');
    expect(withDir.code).toBe(2);
    // The set says which platforms and keys: an option saying otherwise is refused, not ignored.
    const withPlatform = await c.plugindex('install', '-c', 'plugins.yaml', '--platform', 'darwin/arm64');
    expect(withPlatform.code).toBe(2);
    expect(withPlatform.stderr).toContain('(not --platform)');
    // So for update -c, and for verify -c and list -c beside another form's options (the exit would speak
    // for a check not made: with --url, the registry was checked, and the set not at all; with --outdated,
    // no registry was asked).
    for (const [args, named] of [
      [['update', '-c', 'plugins.yaml', '--platform', 'darwin/arm64'], '(not --platform)'],
      [['update', '-c', 'plugins.yaml', '--lockfile', 'other.lock'], '(not --lockfile)'],
      [['verify', '-c', 'plugins.yaml', '--url', 'http://127.0.0.1:9/'], '(not --url)'],
      [['verify', '-c', 'plugins.yaml', '--dir', 'elsewhere'], '(not --dir)'],
      [['list', '-c', 'plugins.yaml', '--outdated'], '(not --outdated;'],
    ] as const) {
      const refused = await c.plugindex(...args);
      expect(refused.code, args.join(' ')).toBe(2);
      expect(refused.stderr).toContain(named);
      expect(refused.stderr).toContain(`usage: plugindex ${args[0]}`);
    }
    for (const args of [['diff'], ['clean'], ['diff', '--json']]) {
      const bare = await c.plugindex(...args);
      expect(bare.code, args.join(' ')).toBe(2);
      expect(bare.stderr).toContain(`usage: plugindex ${args[0]} -c FILE`);
      expect(bare.stderr).toContain('-c FILE is required');
    }
    const watch = await c.plugindex('list', '--watch');
    expect(watch.code).toBe(2);
    expect(watch.stderr).toContain('--watch needs -c FILE');
    const twoFiles = await c.plugindex('init-config', 'a.yaml', 'b.yaml');
    expect(twoFiles.code).toBe(2);
    expect(await exists(path.join(c.dir, 'plugins'))).toBe(false);
    expect(await exists(path.join(c.dir, 'a.yaml'))).toBe(false);
  });
});

describe('when a set pins a key no signature by which could be taken', () => {
  it.each(UNTRUSTED_KEYS)(
    'refuses a provider that pins $label (PLUGIN_SET_INVALID, exit 1), naming the field and why, installing nothing',
    async (key) => {
      // Every snapshot signed by such a key is refused: the set's pin is its mistake, said at its field.
      const c = await checkout(setOf([{ name: ALPHA, version: '1.0.0' }]));
      await writeFile(path.join(c.dir, 'registry.asc'), key.publicKey);
      const refused = await c.plugindex('install', '-c', 'plugins.yaml');
      expect(refused.code, refused.stderr).toBe(1);
      expect(refused.stderr).toContain('PLUGIN_SET_INVALID: ');
      expect(refused.stderr).toContain(
        `${c.file}#/plugins/providers/0/key: ${path.join(c.dir, 'registry.asc')} is key ${key.fingerprint}, which cannot be trusted`,
      );
      expect(refused.stderr).toContain(key.reason);
      expect(await exists(path.join(c.dir, 'plugins'))).toBe(false);
      expect(await exists(path.join(c.dir, 'plugins.lock'))).toBe(false);
    },
  );
});
