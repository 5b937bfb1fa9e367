/**
 * The consumer commands as a user runs them: the built `plugindex` as a process, its own config, data and
 * cache folders (PLUGINDEX_*_HOME), against a registry `plugindex serve` serves over real HTTP. Exit codes
 * (0 done, 1 not found or failed, 2 usage, 3 refused by a trust check), `--json` on every command, and
 * `install --frozen` with the server stopped.
 */
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import * as openpgp from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initRegistry } from '../../cli/local/registry.ts';
import { main } from '../../cli/main.ts';
import { encode, makeBundle, validManifest } from '../support/fixtures.ts';
import { gpgSecretSubkeysOnce } from '../support/gpg.ts';
import { chunksHolding, recordingLoads } from '../support/loaded-chunks.ts';
import { publicPrimaryWithSecretSubkeys } from '../support/openpgp-packets.ts';
import { type ServingRegistry, startServe } from '../support/serve.ts';
import { UNTRUSTED_KEYS } from '../support/untrusted-keys.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(ROOT, 'cli/bin.mjs');
const run = promisify(execFile);
const NAME = 'cli-demo';
const TOOL = encode('#!/bin/sh\necho cli-demo\n');
const FORGER = 'line-forger';
const FORGED_DESCRIPTION = 'Looks harmless\nmain/official-tool  9.9.9  cost_source  The official one';

let work: string;
let registryDir: string;
let base: string;
let served: ServingRegistry | undefined;
let keyFile: string;
let homes = 0;

interface Result {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** A fresh client machine: its own folders, and a working directory for its lock file. */
async function home(
  options: { terminal?: boolean; env?: NodeJS.ProcessEnv } = {},
): Promise<(...args: string[]) => Promise<Result>> {
  homes += 1;
  const dir = path.join(work, `home${homes}`);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PLUGINDEX_CONFIG_HOME: path.join(dir, 'config'),
    PLUGINDEX_DATA_HOME: path.join(dir, 'data'),
    PLUGINDEX_CACHE_HOME: path.join(dir, 'cache'),
    CI: '1',
    ...options.env,
  };
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  return async (...args) => {
    try {
      // With `terminal`, the command runs on a pseudo-terminal (util-linux `script`), as a person runs it:
      // stdout and stderr both arrive as stdout, and CI is whatever the arguments set.
      const { stdout, stderr } = options.terminal
        ? await run('script', ['-qec', args.map((a) => `'${a}'`).join(' '), '/dev/null'], { cwd: dir, env })
        : await run(process.execPath, [BIN, ...args], { cwd: dir, env });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const e = error as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };
}

async function startServer(): Promise<void> {
  served = await startServe(registryDir);
  base = served.url;
}

async function stopServer(): Promise<void> {
  await served?.stop();
  served = undefined;
}

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'plugindex-cli-client-'));
  registryDir = path.join(work, 'registry');
  await initRegistry(registryDir, { name: 'CLI Registry', url: 'http://127.0.0.1:1' });
  keyFile = path.join(registryDir, 'public/keys/registry.asc');
  for (const version of ['1.0.0', '1.1.0']) {
    const file = path.join(work, `${version}.tgz`);
    await writeFile(
      file,
      await makeBundle({
        manifest: validManifest({
          name: NAME,
          version,
          description: 'A plugin for the command line test',
          ...(version === '1.1.0'
            ? { permissions: ['network_client', 'config_read'], resources: { max_memory_mb: 64 } }
            : {}),
        }),
        artifacts: [{ os: 'linux', arch: 'amd64', name: NAME, body: TOOL }],
      }),
    );
    expect(await main(['publish', file, '--registry', registryDir, '--json']).catch(() => -1)).toBe(0);
  }
  // A publisher's text that would start lines of its choosing: a row of another plugin, a version of another.
  const forger = path.join(work, 'forger.tgz');
  await writeFile(
    forger,
    await makeBundle({
      manifest: validManifest({
        name: FORGER,
        version: '1.0.0',
        display_name: 'Forger\r',
        description: FORGED_DESCRIPTION,
        metadata: { license: 'MIT\n    9.9.9  2026-01-01  linux/amd64  publisher FORGED' },
      }),
    }),
  );
  expect(await main(['publish', forger, '--registry', registryDir, '--json']).catch(() => -1)).toBe(0);
  await startServer();
}, 60_000);
afterAll(async () => {
  await stopServer();
  await rm(work, { recursive: true, force: true });
});

describe('when a registry is managed from the command line', () => {
  it('adds (exit 0, --json), lists, refuses a wrong fingerprint (exit 3) and a missing pin (exit 2)', async () => {
    const plugindex = await home();
    const added = await plugindex('registry', 'add', 'main', base, '--key', keyFile, '--json');
    expect(added.code, added.stderr).toBe(0);
    expect(JSON.parse(added.stdout)).toMatchObject({ name: 'main', change: 'added' });
    const listed = await plugindex('registry', 'list', '--json');
    expect(JSON.parse(listed.stdout).registries).toMatchObject([{ name: 'main', url: base }]);

    const wrong = await plugindex('registry', 'add', 'other', base, '--fingerprint', 'AB'.repeat(20));
    expect(wrong.code).toBe(3);
    expect(wrong.stderr).toContain('SNAPSHOT_WRONG_KEY');
    const unpinned = await plugindex('registry', 'add', 'other', base);
    expect(unpinned.code).toBe(2);
    expect(unpinned.stderr).toContain('--trust-on-first-use');
    const unknown = await plugindex('registry', 'remove', 'nope');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('REGISTRY_NOT_FOUND');

    const tofu = await plugindex('registry', 'add', 'tofu', base, '--trust-on-first-use');
    expect(tofu.code, tofu.stderr).toBe(0);
    expect(tofu.stderr).toMatch(/trusted key [0-9A-F]{40} on first use/);
    const updated = await plugindex('registry', 'update', '--json');
    expect(JSON.parse(updated.stdout).registries.map((r: { ok: boolean }) => r.ok)).toEqual([true, true]);
    expect((await plugindex('registry', 'remove', 'tofu')).code).toBe(0);
  });
});

describe('when registry add or list is given its words in another order, or one too many', () => {
  it('names NAME URL for add given URL NAME, and refuses a word list does not take (exit 2), configuring nothing', async () => {
    // `registry add URL NAME` said only that the URL "local" is not an absolute URL; `registry list main`
    // listed every registry, the word ignored.
    const plugindex = await home();
    const swapped = await plugindex('registry', 'add', base, 'main', '--key', keyFile, '--json');
    expect(swapped.code, swapped.stderr).toBe(2);
    expect(swapped.stderr).toContain('REGISTRY_URL_INVALID');
    expect(swapped.stderr).toContain('NAME comes first, then the URL: plugindex registry add main URL');
    expect(JSON.parse(swapped.stdout)).toMatchObject({ ok: false, error: { code: 'REGISTRY_URL_INVALID' } });
    const listed = await plugindex('registry', 'list', 'main');
    expect(listed.code).toBe(2);
    expect(listed.stderr).toContain('registry list takes no NAME');
    expect(JSON.parse((await plugindex('registry', 'list', '--json')).stdout).registries).toEqual([]);
  });
});

describe('when a registry URL given on the command line is one registry add refuses', () => {
  it('is a usage error as verify --url makes it (REGISTRY_URL_INVALID, exit 2) for registry add, its --mirror, reset-trust and owners list --url, credentials never shown', async () => {
    const plugindex = await home();
    const withCredentials = base.replace('http://', 'http://user:s3cret@');
    for (const args of [
      ['registry', 'add', 'main', 'not-a-url', '--key', keyFile],
      ['registry', 'add', 'main', withCredentials, '--key', keyFile],
      ['registry', 'add', 'main', base, '--mirror', withCredentials, '--key', keyFile],
      ['registry', 'add', 'main', 'ftp://plugins.registry.example', '--key', keyFile],
      ['registry', 'add', 'main', 'http://plugins.registry.example', '--key', keyFile],
      ['registry', 'reset-trust', 'ftp://plugins.registry.example', '--key', keyFile],
      ['registry', 'reset-trust', base, '--mirror', withCredentials, '--key', keyFile],
      // It was looked for among the configured URLs as given: REGISTRY_NOT_CONFIGURED, exit 1, the URL whole.
      ['owners', 'list', NAME, '--url', withCredentials],
      ['owners', 'list', NAME, '--url', 'not-a-url'],
    ]) {
      for (const json of [[], ['--json']]) {
        const refused = await plugindex(...args, ...json);
        expect(refused.code, `${args.join(' ')}: ${refused.stderr}`).toBe(2);
        expect(refused.stderr).toContain('REGISTRY_URL_INVALID');
        expect(`${refused.stdout}${refused.stderr}`).not.toContain('s3cret');
        if (json.length > 0)
          expect(JSON.parse(refused.stdout)).toMatchObject({
            ok: false,
            error: { code: 'REGISTRY_URL_INVALID' },
          });
      }
    }
    expect((await plugindex('registry', 'list', '--json')).stdout).toContain('"registries": []');
  });

  it('never shows the credentials of one no URL parser takes (a port out of range, a space in the host, an unclosed bracket), where the rest is shown', async () => {
    const plugindex = await home();
    for (const [url, shown] of [
      [
        'https://user:s3cret@plugins.registry.example:99999/reg',
        'https://***@plugins.registry.example:99999/reg',
      ],
      [
        'https://s3cret@plugins.registry .example/reg?token=s3cret',
        'https://***@plugins.registry .example/reg?token=…',
      ],
      ['https://user:s3cret@[::1/reg', 'https://***@[::1/reg'],
      // A scheme mistyped, one slash: it parses, its "credentials" in the path.
      ['hps:/user:s3cret@plugins.registry.example', 'hps:/***@plugins.registry.example'],
    ] as const) {
      for (const args of [
        ['registry', 'add', 'main', url, '--key', keyFile],
        ['verify', '--url', url, '--key', keyFile],
        ['owners', 'list', NAME, '--url', url],
      ]) {
        const refused = await plugindex(...args, '--json');
        expect(refused.code, `${args.join(' ')}: ${refused.stderr}`).toBe(2);
        expect(refused.stderr).toContain(shown);
        expect(`${refused.stdout}${refused.stderr}`).not.toContain('s3cret');
      }
    }
  });

  it('refuses an install URL with credentials, a query or a fragment, or none a parser takes, as REQUEST_INVALID (exit 2, as every URL typed on the command line), never showing them, with or without --key', async () => {
    // Printed whole in "is not under a configured registry", and with --key in the folder source's refusal;
    // one no parser takes was a TypeError with --key.
    const plugindex = await home();
    for (const [url, shown] of [
      [
        'https://user:s3cret@plugins.registry.example/p/1.0.0/manifest.json',
        'https://***@plugins.registry.example/p/1.0.0/manifest.json',
      ],
      [
        'https://plugins.registry.example/p/1.0.0/manifest.json?token=s3cret',
        'https://plugins.registry.example/p/1.0.0/manifest.json?token=…',
      ],
      [
        'https://plugins.registry.example/p/1.0.0/manifest.json#s3cret',
        'https://plugins.registry.example/p/1.0.0/manifest.json#…',
      ],
      [
        'https://user:s3cret@plugins.registry.example:99999/p/manifest.json',
        'https://***@plugins.registry.example:99999/p/manifest.json',
      ],
    ] as const) {
      for (const key of [[], ['--key', keyFile]]) {
        const refused = await plugindex('install', url, ...key, '--json');
        expect(refused.code, `${url} ${key.join(' ')}: ${refused.stderr}`).toBe(2);
        expect(JSON.parse(refused.stdout)).toMatchObject({ ok: false, error: { code: 'REQUEST_INVALID' } });
        expect(refused.stderr).toContain(shown);
        expect(`${refused.stdout}${refused.stderr}`).not.toContain('s3cret');
      }
    }
  });

  it('lists, beside the current version, the others installed, which remove NAME takes too', async () => {
    const plugindex = await home();
    expect((await plugindex('registry', 'add', 'main', base, '--key', keyFile)).code).toBe(0);
    expect((await plugindex('install', `${NAME}@1.0.0`)).code).toBe(0);
    expect((await plugindex('install', `${NAME}@1.1.0`, '--accept-permissions')).code).toBe(0);
    const listed = await plugindex('list');
    expect(listed.code, listed.stderr).toBe(0);
    // The row named 1.1.0 alone, and `remove cli-demo` then said it removed two versions.
    expect(listed.stdout).toBe(`${NAME}  1.1.0  linux-amd64  from main  [also installed: 1.0.0]\n`);
    const removed = await plugindex('remove', NAME);
    expect(removed.stdout).toContain(`removed ${NAME} 1.0.0, 1.1.0`);
  });

  it('refuses an install URL for its scheme, its form or a missing --key as a usage error (exit 2), before reading anything', async () => {
    // Each was exit 1 (REQUEST_INVALID, or REGISTRY_URL_INVALID from the fetcher with --key), where every
    // other URL typed on the command line that is refused exits 2.
    const plugindex = await home();
    expect((await plugindex('registry', 'add', 'main', base, '--key', keyFile)).code).toBe(0);
    for (const [args, code] of [
      [['ftp://plugins.registry.example/p/1.0.0/manifest.json', '--key', keyFile], 'REQUEST_INVALID'],
      [['http://plugins.registry.example/p/1.0.0/manifest.json', '--key', keyFile], 'REQUEST_INVALID'],
      [['https://plugins.registry.example/p/1.0.0/', '--key', keyFile], 'REQUEST_INVALID'],
      [[`${base}/plugins/${NAME}/manifest.json`], 'REQUEST_INVALID'],
      [['https://plugins.registry.example/p/1.0.0/manifest.json'], 'REQUEST_INVALID'],
    ] as const) {
      const refused = await plugindex('install', ...args, '--json');
      expect(refused.code, `${args.join(' ')}: ${refused.stderr}`).toBe(2);
      expect(JSON.parse(refused.stdout)).toMatchObject({ ok: false, error: { code } });
    }
    expect((await plugindex('list', '--json')).stdout).not.toContain(NAME);
  });

  it("never shows a query's values (a token may be one), on stdout, stderr or in --json, naming its parameters", async () => {
    const plugindex = await home();
    for (const args of [
      ['registry', 'add', 'main', `${base}?token=s3cret`, '--key', keyFile],
      ['registry', 'add', 'main', base, '--mirror', `${base}/?token=s3cret`, '--key', keyFile],
      ['verify', '--url', `${base}?token=s3cret`, '--key', keyFile],
      ['owners', 'list', NAME, '--url', `${base}?token=s3cret`],
      ['registry', 'add', 'main', 'not-a-url?token=s3cret', '--key', keyFile],
    ]) {
      for (const json of [[], ['--json']]) {
        const refused = await plugindex(...args, ...json);
        expect(refused.code, `${args.join(' ')}: ${refused.stderr}`).toBe(2);
        expect(refused.stderr).toContain('?token=…');
        expect(`${refused.stdout}${refused.stderr}`).not.toContain('s3cret');
      }
    }
    const configFile = path.join(work, `home${homes}`, 'config', 'config.json');
    await mkdir(path.dirname(configFile), { recursive: true });
    await writeFile(
      configFile,
      JSON.stringify({
        schema: 'plugindex/client-config/v1',
        registries: [
          { name: 'main', url: `${base}?token=s3cret`, priority: 1, key_fingerprint: 'AB'.repeat(20) },
        ],
      }),
    );
    for (const json of [[], ['--json']]) {
      const listed = await plugindex('registry', 'list', ...json);
      expect(listed.code, listed.stderr).toBe(1);
      expect(listed.stderr).toContain('?token=…');
      expect(`${listed.stdout}${listed.stderr}`).not.toContain('s3cret');
    }
  });

  it('leaves one read from config.json a fault of the file (exit 1, its JSON pointer): nothing on the command line was wrong', async () => {
    const plugindex = await home();
    expect((await plugindex('registry', 'add', 'main', base, '--key', keyFile)).code).toBe(0);
    const configFile = path.join(work, `home${homes}`, 'config', 'config.json');
    const config = JSON.parse(await readFile(configFile, 'utf8'));
    config.registries[0].url = 'ftp://plugins.registry.example';
    await writeFile(configFile, JSON.stringify(config));
    const listed = await plugindex('registry', 'list');
    expect(listed.code, listed.stderr).toBe(1);
    expect(listed.stderr).toContain('/registries/0/url');
  });
});

describe('when a plugin name, version spec, reference or platform typed on the command line is refused', () => {
  it('is a usage error (exit 2) with its code and words, as a refused URL is, for install, info, update and audit', async () => {
    // Each was exit 1 with REQUEST_INVALID, where a refused manifest URL was exit 2 with the same code.
    const plugindex = await home();
    expect((await plugindex('registry', 'add', 'main', base, '--key', keyFile)).code).toBe(0);
    const digest = `sha256:${'a'.repeat(64)}`;
    for (const [args, says] of [
      [['install', 'Bad Name', '--dir', 'plugins'], 'plugin name "Bad Name"'],
      [['install', `${NAME}@not a version!`], 'version "not a version!" is not a version'],
      [['install', 'registry.example/Acme/lens:1.0.0'], 'repository component "Acme"'],
      [['install', 'acme/lens:1.0.0'], 'its first component "acme" is not a registry'],
      [['install', `${NAME}@${digest}`], 'pins a digest without a registry'],
      [['install', `${NAME}:bad*tag`], 'its tag "bad*tag"'],
      [['install', NAME, '--platform', 'plan9/amd64'], 'names an unknown OS "plan9"'],
      [['info', 'Bad Name'], 'plugin name "Bad Name"'],
      [['info', `${NAME}@not a version!`], 'version "not a version!" is not a version'],
      [['info', NAME, '--platform', 'linux'], 'platform "linux" is not OS/ARCH'],
      [['update', 'Bad Name', '--dir', 'plugins'], 'plugin name "Bad Name"'],
      [['update', NAME, '--platform', 'linux/amd64/glibc2'], 'unknown C library "glibc2"'],
      [['audit', 'Bad Name'], 'plugin name "Bad Name"'],
    ] as const) {
      const refused = await plugindex(...args, '--json');
      expect(refused.code, `${args.join(' ')}: ${refused.stderr}`).toBe(2);
      expect(refused.stderr).toContain(`plugindex ${args[0]}: REQUEST_INVALID: `);
      expect(refused.stderr).toContain(says);
      expect(JSON.parse(refused.stdout)).toMatchObject({ ok: false, error: { code: 'REQUEST_INVALID' } });
    }
    // Nothing was installed or locked by any of them.
    expect((await plugindex('list', '--dir', 'plugins', '--json')).stdout).not.toContain(NAME);
    expect(await readdir(path.join(work, `home${homes}`))).not.toContain('plugindex.lock');
  });

  it('reads --platform repeated for install and update: each value read (exit 2 for any typed wrong), each platform placed', async () => {
    // The last value alone was read: `--platform plan9/amd64 --platform linux/amd64` installed linux/amd64.
    const plugindex = await home();
    expect((await plugindex('registry', 'add', 'main', base, '--key', keyFile)).code).toBe(0);
    for (const command of ['install', 'update']) {
      const refused = await plugindex(
        command,
        NAME,
        '--platform',
        'plan9/amd64',
        '--platform',
        'linux/amd64',
      );
      expect(refused.code, refused.stderr).toBe(2);
      expect(refused.stderr).toContain(`plugindex ${command}: REQUEST_INVALID: `);
      expect(refused.stderr).toContain('names an unknown OS "plan9"');
    }
    // Each named must have a build of the version: darwin/arm64 has none, so nothing is placed.
    const lacking = await plugindex(
      'install',
      NAME,
      '--dir',
      'plugins',
      '--platform',
      'darwin/arm64',
      '--platform',
      'linux/amd64',
    );
    expect(lacking.code, lacking.stderr).toBe(1);
    expect(lacking.stderr).toContain('NO_ARTIFACT_FOR_PLATFORM');
    expect(lacking.stderr).toContain('darwin/arm64');
    // One named twice is placed once (installed.json and paths merge a second placing either way: the
    // client test 'downloads and places a platform named twice once' holds it by the downloads).
    const twice = await plugindex(
      'install',
      NAME,
      '--dir',
      'plugins',
      '--platform',
      'linux/amd64',
      '--platform',
      'linux/amd64',
      '--json',
    );
    expect(twice.code, twice.stderr).toBe(0);
    expect(Object.keys(JSON.parse(twice.stdout).items[0].paths)).toEqual(['linux-amd64']);
    const help = await plugindex('install', '--help');
    expect(help.stdout + help.stderr).toContain('[--platform OS/ARCH[/musl] ...]');
  });

  it('refuses --platform repeated for info, which shows one platform (exit 2), where the last was read alone', async () => {
    // install and update take it repeated; info kept the last value silently, showing another platform's view.
    const plugindex = await home();
    expect((await plugindex('registry', 'add', 'main', base, '--key', keyFile)).code).toBe(0);
    const refused = await plugindex('info', NAME, '--platform', 'darwin/arm64', '--platform', 'linux/amd64');
    expect(refused.code, refused.stderr).toBe(2);
    expect(refused.stderr).toContain('--platform given 2 times');
    const one = await plugindex('info', NAME, '--platform', 'linux/amd64');
    expect(one.code, one.stderr).toBe(0);
  });

  it('names a version typed as a word of its own after the name (install NAME 1.1.0) in NAME@VERSION form, for install, update and info', async () => {
    // install said `plugin name "1.1.0" in "1.1.0" is not a plugin name`, info that it takes one NAME[@SPEC]:
    // neither said where a version goes, which cargo, npm and apt users type apart or after `==`.
    const plugindex = await home();
    expect((await plugindex('registry', 'add', 'main', base, '--key', keyFile)).code).toBe(0);
    for (const args of [
      ['install', NAME, '1.1.0', '--dir', 'plugins'],
      ['install', NAME, '^1.1', '--dir', 'plugins'],
      ['update', NAME, '1.1.0', '--dir', 'plugins'],
      ['info', NAME, '1.1.0'],
    ]) {
      const refused = await plugindex(...args, '--json');
      expect(refused.code, `${args.join(' ')}: ${refused.stderr}`).toBe(2);
      expect(refused.stderr).toContain(`plugindex ${args[0]}: REQUEST_INVALID: `);
      expect(refused.stderr).toContain(`did you mean ${NAME}@${args[2]}?`);
      expect(JSON.parse(refused.stdout)).toMatchObject({ ok: false, error: { code: 'REQUEST_INVALID' } });
    }
    const pip = await plugindex('install', `${NAME}==1.1.0`, '--dir', 'plugins');
    expect(pip.code, pip.stderr).toBe(2);
    expect(pip.stderr).toContain(`did you mean ${NAME}@1.1.0?`);
    // Two names are two plugins, as before.
    const two = await plugindex('info', NAME, FORGER);
    expect(two.code).toBe(2);
    expect(two.stderr).toContain('info takes one NAME[@SPEC]');
    expect(await readdir(path.join(work, `home${homes}`))).not.toContain('plugindex.lock');
  });

  it('names a URL given to info, update or audit as a URL, never showing its credentials or query values', async () => {
    // Read as a plugin name, each echoed it whole: `plugin name "https://u:s3cret" in "https://u:s3cret@…"`.
    const plugindex = await home();
    for (const command of ['info', 'update', 'audit']) {
      const refused = await plugindex(
        command,
        'https://u:s3cret@r.example/plugins/x/1.0.0/manifest.json?token=t0ken',
        '--json',
      );
      expect(refused.code, `${command}: ${refused.stderr}`).toBe(2);
      expect(refused.stderr).toContain(
        `plugindex ${command}: REQUEST_INVALID: https://***@r.example/plugins/x/1.0.0/manifest.json?token=… is a URL, not a plugin name`,
      );
      expect(`${refused.stdout}${refused.stderr}`).not.toMatch(/s3cret|t0ken/);
    }
  });

  it('refuses a bad argument of install before any registry is read for the arguments before it', async () => {
    // Each text was read as its turn came, a reference before it read from the registries first: an OCI
    // reference no registry lists (PLUGIN_NOT_FOUND, exit 1) hid the name or URL typed wrong after it.
    const plugindex = await home();
    expect((await plugindex('registry', 'add', 'main', base, '--key', keyFile)).code).toBe(0);
    for (const [bad, says] of [
      ['Bad Name', 'plugin name "Bad Name"'],
      [`${NAME}@not a version!`, 'version "not a version!" is not a version'],
      ['https://u:secret@r.example/plugins/x/1.0.0/manifest.json', 'a manifest URL has no credentials'],
      ['https://r.example/plugins/x/1.0.0/', 'is a folder, not the URL of a manifest file'],
    ] as const) {
      const refused = await plugindex(
        'install',
        'oci.example/acme/lens:1.0.0',
        bad,
        '--dir',
        'plugins',
        '--json',
      );
      expect(refused.code, `${bad}: ${refused.stderr}`).toBe(2);
      expect(refused.stderr).toContain('plugindex install: REQUEST_INVALID: ');
      expect(refused.stderr).toContain(says);
      expect(refused.stderr).not.toContain('secret');
    }
    // Each alone is what it was: the reference is looked for, and not found.
    const alone = await plugindex('install', 'oci.example/acme/lens:1.0.0', '--dir', 'plugins');
    expect(alone.code, alone.stderr).toBe(1);
    expect(alone.stderr).toContain('PLUGIN_NOT_FOUND');
  });

  it('leaves a name read from a file the fault of the file (exit 1, its JSON pointer): nothing on the command line was wrong', async () => {
    const plugindex = await home();
    expect((await plugindex('registry', 'add', 'main', base, '--key', keyFile)).code).toBe(0);
    const cwd = path.join(work, `home${homes}`);
    await writeFile(
      path.join(cwd, 'plugindex.lock'),
      JSON.stringify({ lockfile_version: 1, registries: {}, plugins: { 'Bad Name': {} } }),
    );
    const locked = await plugindex('install', '--dir', 'plugins', '--json');
    expect(locked.code, locked.stderr).toBe(1);
    expect(JSON.parse(locked.stdout)).toMatchObject({ ok: false, error: { code: 'LOCKFILE_INVALID' } });
    expect(locked.stderr).toContain('/plugins/Bad Name');
  });

  it('names a lock path that is a folder as no lock file (LOCKFILE_INVALID, exit 1), where Node printed EISDIR and a stack trace', async () => {
    const plugindex = await home();
    expect((await plugindex('registry', 'add', 'main', base, '--key', keyFile)).code).toBe(0);
    const cwd = path.join(work, `home${homes}`);
    await mkdir(path.join(cwd, 'plugindex.lock'));
    await mkdir(path.join(cwd, 'other.lock'));
    for (const args of [
      ['install', NAME, '--dir', 'plugins'],
      ['install', '--dir', 'plugins', '--frozen'],
      ['update', '--dir', 'plugins'],
      ['install', NAME, '--dir', 'plugins', '--lockfile', 'other.lock'],
    ]) {
      const refused = await plugindex(...args, '--json');
      const lock = path.join(cwd, args.includes('--lockfile') ? 'other.lock' : 'plugindex.lock');
      expect(refused.code, `${args.join(' ')}: ${refused.stderr}`).toBe(1);
      expect(refused.stderr).toContain(
        `plugindex ${args[0]}: LOCKFILE_INVALID: ${lock} is a folder, not a lock file`,
      );
      expect(refused.stderr).not.toContain('EISDIR');
      expect(refused.stderr).not.toMatch(/^\s+at /m);
      expect(JSON.parse(refused.stdout)).toMatchObject({ ok: false, error: { code: 'LOCKFILE_INVALID' } });
    }
    expect(await readdir(path.join(cwd, 'plugindex.lock'))).toEqual([]);
  });
});

describe('when a remedy names a command and --lockfile names another lock than the default', () => {
  it('repeats --lockfile PATH in it (install, verify, install --frozen), and adds nothing for the default lock', async () => {
    // The command named alone acted on plugindex.lock, another lock than the one refused.
    const plugindex = await home();
    const cwd = path.join(work, `home${homes}`);
    const team = path.join(cwd, 'team.lock');
    expect((await plugindex('registry', 'add', 'main', base, '--key', keyFile)).code).toBe(0);
    const unlocked = await plugindex(
      'install',
      NAME,
      '--dir',
      'plugins',
      '--lockfile',
      'team.lock',
      '--locked',
    );
    expect(unlocked.code, unlocked.stderr).toBe(1);
    expect(unlocked.stderr).toContain(`(run \`plugindex install --lockfile ${team}\` without them once)`);
    const byDefault = await plugindex(
      'install',
      NAME,
      '--dir',
      'plugins',
      '--lockfile',
      'plugindex.lock',
      '--locked',
    );
    expect(byDefault.stderr).toContain('(run `plugindex install` without them once)');

    // A lock made under another key than the one pinned here: --frozen refuses it naming update, on that lock.
    expect((await plugindex('install', NAME, '--dir', 'plugins', '--lockfile', 'team.lock')).code).toBe(0);
    // verify's remedy for a file changed since: the install it names places it again under that lock.
    const plugins = path.join(cwd, 'plugins');
    const [version] = await readdir(path.join(plugins, NAME));
    await writeFile(path.join(plugins, NAME, version as string, 'linux-amd64', NAME), 'changed');
    const verified = await plugindex('verify', '--dir', 'plugins', '--lockfile', 'team.lock');
    expect(verified.code, verified.stderr).toBe(3);
    expect(verified.stdout + verified.stderr).toContain(
      `\`plugindex install ${NAME}@${version} --dir ${plugins} --lockfile ${team}\` places it again as signed`,
    );
    expect((await plugindex('install', '--dir', 'plugins', '--lockfile', 'team.lock')).code).toBe(0);
    const lock = JSON.parse(await readFile(team, 'utf8'));
    lock.registries.main.key_fingerprint = 'A'.repeat(40);
    await writeFile(team, JSON.stringify(lock));
    const frozen = await plugindex('install', '--dir', 'ci-plugins', '--lockfile', 'team.lock', '--frozen');
    expect(frozen.code, frozen.stderr).not.toBe(0);
    expect(frozen.stderr).toContain('LOCK_MISMATCH');
    expect(frozen.stderr).toContain(`\`plugindex update --lockfile ${team}\` (without --frozen)`);
  });
});

describe('when verify --url is given a URL registry add refuses', () => {
  it('refuses it and its mirror as registry add does (REGISTRY_URL_INVALID, exit 2), never printing credentials, and verifies the URL itself', async () => {
    const plugindex = await home();
    const withCredentials = base.replace('http://', 'http://user:s3cret@');
    for (const [args, shown] of [
      [['--url', withCredentials], 'credentials in a URL are refused'],
      [['--url', base, '--mirror', withCredentials], 'credentials in a URL are refused'],
      // Read at the mirror, it was held to the URL and refused as another registry's snapshot.
      [['--url', 'not-a-url', '--mirror', base], 'it is not an absolute URL'],
      [['--url', `${base}?v=1`], 'no query or fragment'],
      [['--url', 'ftp://plugins.registry.example'], 'the scheme ftp: is not allowed'],
      [['--url', 'http://plugins.registry.example'], 'http: is allowed only for a loopback host'],
    ] as const) {
      for (const json of [[], ['--json']]) {
        const refused = await plugindex('verify', ...args, '--key', keyFile, ...json);
        expect(refused.code, args.join(' ')).toBe(2);
        expect(refused.stderr).toContain('REGISTRY_URL_INVALID');
        expect(refused.stderr).toContain(shown);
        expect(`${refused.stdout}${refused.stderr}`).not.toContain('s3cret');
        if (json.length > 0)
          expect(JSON.parse(refused.stdout)).toMatchObject({
            ok: false,
            error: { code: 'REGISTRY_URL_INVALID' },
          });
      }
    }
    // The registry is named http://127.0.0.1:1 and served at base: verified as a mirror of it.
    const verified = await plugindex(
      'verify',
      '--url',
      'http://127.0.0.1:1',
      '--mirror',
      base,
      '--key',
      keyFile,
    );
    expect(verified.code, `${verified.stdout}${verified.stderr}`).toBe(0);
    expect(verified.stdout).toContain(`verified http://127.0.0.1:1 at its mirror ${base}`);
  });
});

describe('when a registry whose trust record does not read is removed', () => {
  it('refuses (TRUST_STATE_INVALID, exit 1) naming the file and --force, and removes it with --force', async () => {
    const plugindex = await home();
    expect((await plugindex('registry', 'add', 'main', base, '--key', keyFile)).code).toBe(0);
    const file = path.join(work, `home${homes}`, 'data', 'trust', 'main', 'state.json');
    await writeFile(file, '{"fingerprint": ');
    const refused = await plugindex('registry', 'remove', 'main');
    expect(refused.code, refused.stderr).toBe(1);
    expect(refused.stderr).toContain('TRUST_STATE_INVALID');
    expect(refused.stderr).toContain(`${file} is not JSON`);
    expect(refused.stderr).toContain('plugindex registry remove main --force');
    // Nothing was removed: the entry, and the record as it was.
    const config = path.join(work, `home${homes}`, 'config', 'config.json');
    expect(JSON.parse(await readFile(config, 'utf8')).registries).toMatchObject([{ name: 'main' }]);
    expect(await readFile(file, 'utf8')).toBe('{"fingerprint": ');
    const forced = await plugindex('registry', 'remove', 'main', '--force');
    expect(forced.code, forced.stderr).toBe(0);
    expect(JSON.parse((await plugindex('registry', 'list', '--json')).stdout).registries).toEqual([]);
    await expect(stat(path.dirname(file))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe.skipIf(process.platform === 'win32')(
  'when the data or config folder is one another user may write',
  () => {
    it('refuses every read and write of the trust records or config.json as a trust refusal (exit 3), naming the folder', async () => {
      const plugindex = await home();
      const dir = path.join(work, `home${homes}`);
      expect((await plugindex('registry', 'add', 'main', base, '--key', keyFile)).code).toBe(0);
      await chmod(path.join(dir, 'data'), 0o777);

      const updated = await plugindex('registry', 'update');
      expect(updated.code, updated.stderr).toBe(3);
      expect(updated.stderr).toContain('DATA_PATH_UNSAFE');
      expect(updated.stderr).toContain(`PLUGINDEX_SAFE_FOLDERS=${path.join(dir, 'data')}`);

      await chmod(path.join(dir, 'data'), 0o755);
      await chmod(path.join(dir, 'config'), 0o777);
      const listed = await plugindex('registry', 'list');
      expect(listed.code, listed.stderr).toBe(3);
      expect(listed.stderr).toContain('CONFIG_PATH_UNSAFE');
    });
  },
);

describe('when a registry is added or reset with --offline', () => {
  it('refuses (OFFLINE_MISSING, exit 1) rather than read the registry, and configures nothing', async () => {
    // The registry is up: with the flag ignored, as it was, both read it and succeeded.
    const plugindex = await home();
    const added = await plugindex('registry', 'add', 'main', base, '--key', keyFile, '--offline', '--json');
    expect(added.code, added.stderr).toBe(1);
    expect(JSON.parse(added.stdout).error).toMatchObject({ code: 'OFFLINE_MISSING' });
    expect(added.stderr).toContain('--offline forbids fetching it: run it online');
    expect(JSON.parse((await plugindex('registry', 'list', '--json')).stdout).registries).toEqual([]);

    expect((await plugindex('registry', 'add', 'main', base, '--key', keyFile)).code).toBe(0);
    const reset = await plugindex('registry', 'reset-trust', 'main', '--offline');
    expect(reset.code).toBe(1);
    expect(reset.stderr).toContain('OFFLINE_MISSING');
  });
});

describe('when a user pins a key no signature by which could be taken', () => {
  it.each(UNTRUSTED_KEYS)(
    'refuses $label with KEY_INVALID naming it, wherever it is given, and pins nothing',
    async (key) => {
      // Every snapshot or manifest signed by such a key is refused: pinning one only defers the refusal.
      const plugindex = await home();
      const dir = path.join(work, `home${homes}`);
      const file = path.join(dir, 'untrusted.asc');
      await writeFile(file, key.publicKey);
      const said = `KEY_INVALID: the registry key ${key.fingerprint} cannot be trusted`;
      const manifest = `${base}/plugins/${NAME}/1.0.0/manifest.json`;
      const state = path.join(dir, 'verify-state.json');
      for (const [args, words] of [
        [['registry', 'add', 'main', base, '--key', file], said],
        [['registry', 'reset-trust', base, '--key', file], said],
        [['verify', '--url', base, '--key', file, '--state', state], said],
        [
          ['install', manifest, '--key', file, '--dir', 'plugins'],
          `KEY_INVALID: the key given ${key.fingerprint}`,
        ],
      ] as const) {
        const refused = await plugindex(...args);
        expect(refused.code, args.join(' ')).toBe(1);
        expect(refused.stderr).toContain(words);
        expect(refused.stderr).toContain(key.reason);
      }
      expect(JSON.parse((await plugindex('registry', 'list', '--json')).stdout).registries).toEqual([]);
      for (const written of ['data/trust', 'config/config.json', 'verify-state.json', 'plugins'])
        await expect(stat(path.join(dir, written)), written).rejects.toMatchObject({ code: 'ENOENT' });
    },
  );
});

describe('when a user gives a secret key where a public key is pinned or verified by', () => {
  const binary = async (armored: string) => (await openpgp.unarmor(armored)).data as Uint8Array;
  it.each([
    ['the secret key', async (secret: string) => secret],
    [
      'a secret key under a public key’s armor header',
      async (secret: string) => secret.replaceAll('PGP PRIVATE KEY BLOCK', 'PGP PUBLIC KEY BLOCK'),
    ],
    ['the binary secret key (gpg --export-secret-keys)', binary],
    [
      'the binary public key and then the secret key (cat public.gpg secret.gpg)',
      async (secret: string) =>
        new Uint8Array([...(await binary(await readFile(keyFile, 'utf8'))), ...(await binary(secret))]),
    ],
    // A public primary key holding a secret subkey (tag 7), which openpgp.js reads as no key at all.
    [
      'the public primary key holding its secret subkey',
      async (secret: string) => (await publicPrimaryWithSecretSubkeys(secret)).armored,
    ],
    [
      'the binary public primary key holding its secret subkey',
      async (secret: string) => (await publicPrimaryWithSecretSubkeys(secret)).binary,
    ],
    ['a key gpg --export-secret-subkeys --armor wrote', async () => gpgSecretSubkeysOnce().exported.armored],
    ['a key gpg --export-secret-subkeys wrote', async () => gpgSecretSubkeysOnce().exported.binary],
    ['gpg’s public key spliced with its secret subkey', async () => gpgSecretSubkeysOnce().spliced.armored],
    [
      'gpg’s binary public key spliced with its secret subkey',
      async () => gpgSecretSubkeysOnce().spliced.binary,
    ],
  ])(
    'refuses %s with SECRET_KEY_GIVEN (exit 2) naming the file, wherever it is given, and pins nothing',
    async (_, text) => {
      // Its public part was pinned in silence: the secret key stayed in a file the user took for public (a
      // set shared in git, a script), and nobody said it had left its owner.
      const plugindex = await home();
      const dir = path.join(work, `home${homes}`);
      const file = path.join(dir, 'registry.asc');
      await writeFile(
        file,
        await text(await readFile(path.join(registryDir, 'keys/registry-secret.asc'), 'utf8')),
      );
      await writeFile(
        path.join(dir, 'plugins.yaml'),
        `plugins:\n  install_location: ./set-plugins\n  providers:\n    - { type: registry, name: main, url: ${base}, key: ./registry.asc }\n  plugins:\n    - { provider: main, name: ${NAME} }\n`,
      );
      const manifest = `${base}/plugins/${NAME}/1.0.0/manifest.json`;
      const state = path.join(dir, 'verify-state.json');
      for (const [args, words] of [
        [['registry', 'add', 'main', base, '--key', file], `SECRET_KEY_GIVEN: ${file} is a secret key`],
        [['registry', 'reset-trust', base, '--key', file], `SECRET_KEY_GIVEN: ${file} is a secret key`],
        [
          ['verify', '--url', base, '--key', file, '--state', state],
          `SECRET_KEY_GIVEN: ${file} is a secret key`,
        ],
        [
          ['install', manifest, '--key', file, '--dir', 'plugins'],
          `SECRET_KEY_GIVEN: ${file} is a secret key`,
        ],
        [
          ['install', '-c', path.join(dir, 'plugins.yaml')],
          `${path.join(dir, 'plugins.yaml')}#/plugins/providers/0/key: ${file} is a secret key`,
        ],
        [
          ['verify', '-c', path.join(dir, 'plugins.yaml')],
          `${path.join(dir, 'plugins.yaml')}#/plugins/providers/0/key: ${file} is a secret key`,
        ],
      ] as const) {
        const refused = await plugindex(...args);
        expect(refused.code, args.join(' ')).toBe(2);
        expect(refused.stderr, args.join(' ')).toContain(words);
        expect(refused.stderr, args.join(' ')).toContain('SECRET_KEY_GIVEN: ');
        expect(refused.stderr, args.join(' ')).toContain('gpg --export --armor');
      }
      expect(JSON.parse((await plugindex('registry', 'list', '--json')).stdout).registries).toEqual([]);
      for (const written of [
        'data/trust',
        'config/config.json',
        'verify-state.json',
        'plugins',
        'set-plugins',
        'plugins.lock',
      ])
        await expect(stat(path.join(dir, written)), written).rejects.toMatchObject({ code: 'ENOENT' });
    },
  );
});

describe('when a registry key was pinned before such keys were refused', () => {
  it('refuses it as a trust refusal (exit 3) naming how to pin again, and `registry add --force` mends it', async () => {
    // Prepare: the registry added, then its pin rewritten as a client that took any key left it.
    const plugindex = await home();
    const dir = path.join(work, `home${homes}`);
    expect((await plugindex('registry', 'add', 'main', base, '--key', keyFile)).code).toBe(0);
    const weak = UNTRUSTED_KEYS[0] as (typeof UNTRUSTED_KEYS)[number];
    const trust = path.join(dir, 'data', 'trust', 'main');
    const state = JSON.parse(await readFile(path.join(trust, 'state.json'), 'utf8'));
    await writeFile(
      path.join(trust, 'state.json'),
      JSON.stringify({ ...state, fingerprint: weak.fingerprint }),
    );
    await writeFile(path.join(trust, 'registry.asc'), weak.publicKey);
    const configFile = path.join(dir, 'config', 'config.json');
    const config = JSON.parse(await readFile(configFile, 'utf8'));
    config.registries[0].key_fingerprint = weak.fingerprint;
    await writeFile(configFile, JSON.stringify(config));

    // Act, Assess
    const refused = await plugindex('registry', 'update', 'main');
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain(`PINNED_KEY_UNTRUSTED: The key pinned for registry "main"`);
    expect(refused.stderr).toContain('`plugindex registry add --force main URL --key FILE`');
    expect((await plugindex('registry', 'add', '--force', 'main', base, '--key', keyFile)).code).toBe(0);
    const updated = await plugindex('registry', 'update', 'main');
    expect(updated.code, updated.stderr).toBe(0);
  });
});

describe('when a registry was rebuilt at a lower generation under the same key', () => {
  it('is refused naming `registry reset-trust`, which forgets every name’s floor (exit 0), and is taken again', async () => {
    const plugindex = await home();
    const data = path.join(work, `home${homes}`, 'data');
    expect((await plugindex('registry', 'add', 'main', base, '--key', keyFile)).code).toBe(0);
    expect((await plugindex('registry', 'add', 'again', base, '--key', keyFile)).code).toBe(0);
    // As if both names had accepted generation 1000 of the registry before its operator rebuilt it.
    for (const name of ['main', 'again']) {
      const file = path.join(data, 'trust', name, 'state.json');
      await writeFile(
        file,
        JSON.stringify({ ...JSON.parse(await readFile(file, 'utf8')), highest_generation: 1000 }),
      );
    }
    const refused = await plugindex('registry', 'update', 'main');
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain('SNAPSHOT_ROLLBACK');
    expect(refused.stderr).toContain('plugindex registry reset-trust main');

    const misused = await plugindex('registry', 'reset-trust', 'main', '--key', keyFile);
    expect(misused.code).toBe(2);
    const reset = await plugindex('registry', 'reset-trust', 'main');
    expect(reset.code, reset.stderr).toBe(0);
    expect(reset.stdout).toMatch(
      /^forgot trust\/again: generation 1000, log of \d+ entries \(head [0-9a-f]{64}\)$/m,
    );
    expect(reset.stdout).toMatch(/^forgot trust\/main: generation 1000, /m);
    expect(reset.stdout).toMatch(/^main: taken at generation \d+, .*the floor of every name of /m);
    const updated = await plugindex('registry', 'update', '--json');
    expect(JSON.parse(updated.stdout).registries.map((r: { ok: boolean }) => r.ok)).toEqual([true, true]);

    // By URL and key (a plugin set's registry), with nothing left to forget but what it takes.
    const byUrl = await plugindex('registry', 'reset-trust', base, '--key', keyFile, '--json');
    expect(byUrl.code, byUrl.stderr).toBe(0);
    expect(JSON.parse(byUrl.stdout).forgotten.map((f: { name: string }) => f.name)).toEqual([
      'again',
      'main',
    ]);
    const unkeyed = await plugindex('registry', 'reset-trust', base);
    expect(unkeyed.code).toBe(2);
    expect(unkeyed.stderr).toContain('--key FILE');
  });
});

describe('when a user searches, installs and manages plugins', () => {
  it('searches (no match: exit 1), describes, installs and locks', async () => {
    const plugindex = await home();
    expect((await plugindex('registry', 'add', 'main', base, '--key', keyFile)).code).toBe(0);
    const found = await plugindex('search', 'cli', '--json');
    expect(JSON.parse(found.stdout).results.map((r: { name: string }) => r.name)).toEqual([NAME]);
    expect((await plugindex('search', 'zzzz-nothing')).code).toBe(1);

    const info = await plugindex('info', `${NAME}@^1`, '--json');
    expect(JSON.parse(info.stdout)).toMatchObject({ registry: 'main', resolved: { version: '1.1.0' } });
    const described = await plugindex('info', `${NAME}@^1`);
    expect(described.stdout).toContain('1.1.0 permissions: config_read, network_client');
    expect(described.stdout).toContain('1.1.0 resource limits: max_memory_mb 64');
    expect((await plugindex('info', `${NAME}@1.0.0`)).stdout).not.toContain('permissions:');

    const installed = await plugindex(
      'install',
      `${NAME}@1.0.0`,
      '--dir',
      'plugins',
      '--platform',
      'linux/amd64',
      '--json',
    );
    expect(installed.code, installed.stderr).toBe(0);
    expect(JSON.parse(installed.stdout).items).toMatchObject([{ name: NAME, version: '1.0.0' }]);
    const cwd = path.join(work, `home${homes}`);
    const file = path.join(cwd, 'plugins', NAME, '1.0.0', 'linux-amd64', NAME);
    expect(await readFile(file)).toEqual(Buffer.from(TOOL));
    expect(JSON.parse(await readFile(path.join(cwd, 'plugindex.lock'), 'utf8')).plugins[NAME].version).toBe(
      '1.0.0',
    );

    const missing = await plugindex('install', 'no-such-plugin', '--dir', 'plugins', '--json');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('PLUGIN_NOT_FOUND');
    expect(JSON.parse(missing.stdout)).toMatchObject({ ok: false, error: { code: 'PLUGIN_NOT_FOUND' } });
    const badSpec = await plugindex('install', `${NAME}@not a version!`, '--dir', 'plugins');
    expect(badSpec.code).toBe(2);
    expect(badSpec.stderr).toContain('REQUEST_INVALID');
    const locked = await plugindex('install', `${NAME}@1.1.0`, '--dir', 'plugins', '--locked');
    expect(locked.code).toBe(1);
    expect(locked.stderr).toContain('LOCK_OUT_OF_SYNC');

    const outdated = await plugindex('list', '--outdated', '--dir', 'plugins', '--json');
    expect(outdated.code).toBe(1);
    expect(JSON.parse(outdated.stdout).plugins).toMatchObject([{ name: NAME, latest: '1.1.0' }]);
    expect((await plugindex('disable', NAME, '--dir', 'plugins')).code).toBe(0);
    const listed = await plugindex('list', '--dir', 'plugins', '--json');
    expect(JSON.parse(listed.stdout).plugins).toMatchObject([{ name: NAME, enabled: false }]);

    const verified = await plugindex('verify', '--dir', 'plugins', '--json');
    expect(verified.code, verified.stdout).toBe(0);
    await writeFile(file, 'changed');
    const refused = await plugindex('verify', '--dir', 'plugins', '--json');
    expect(refused.code).toBe(3);
    expect(JSON.parse(refused.stdout)).toMatchObject({
      ok: false,
      plugins: [{ code: 'INSTALLED_MODIFIED' }],
    });

    // Within its spec (the exact 1.0.0 it was installed as) there is nothing newer: it is put back as signed,
    // and said so (it said `updated to NAME@1.0.0`, a version that did not change).
    const within = await plugindex('update', NAME, '--dir', 'plugins', '--platform', 'linux/amd64');
    expect(within.code, within.stderr).toBe(0);
    expect(within.stdout).toContain(`placed again ${NAME}@1.0.0 (linux-amd64)`);
    expect(within.stdout).not.toContain('updated to');
    const again = await plugindex('update', NAME, '--dir', 'plugins', '--platform', 'linux/amd64', '--json');
    expect(JSON.parse(again.stdout).items).toMatchObject([{ version: '1.0.0', unchanged: true }]);
    expect(JSON.parse(again.stdout).items[0].placedAgain).toBeUndefined();
    expect(await readFile(file)).toEqual(Buffer.from(TOOL));
    // 1.1.0 asks for permissions 1.0.0 did not: named, and taken only with --accept-permissions; with the
    // lock deleted too, as the version installed accepted none of them.
    const update = ['update', `${NAME}@latest`, '--dir', 'plugins', '--platform', 'linux/amd64'];
    const asks = await plugindex(...update);
    expect(asks.code).toBe(1);
    expect(asks.stderr).toContain('PERMISSIONS_NOT_ACCEPTED');
    expect(asks.stderr).toContain('asks for config_read, network_client');
    const lock = await readFile(path.join(cwd, 'plugindex.lock'));
    await rm(path.join(cwd, 'plugindex.lock'));
    const unlocked = await plugindex(...update);
    expect(unlocked.code).toBe(1);
    expect(unlocked.stderr).toContain('PERMISSIONS_NOT_ACCEPTED');
    expect(unlocked.stderr).toContain(`asks for config_read, network_client, which ${NAME}@1.0.0 did not`);
    await writeFile(path.join(cwd, 'plugindex.lock'), lock);
    const updated = await plugindex(...update, '--accept-permissions');
    expect(updated.code, updated.stderr).toBe(0);
    expect(updated.stdout).toContain('permissions: config_read, network_client');
    expect(updated.stdout).toContain(`updated to ${NAME}@1.1.0`);
    await expect(stat(path.join(cwd, 'plugins', NAME, '1.0.0'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await plugindex('remove', NAME, '--dir', 'plugins', '--clean')).code).toBe(0);
    await expect(stat(path.join(cwd, 'plugins', NAME))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it("prints a publisher's line feeds and carriage returns as escapes: every line search and info print is theirs", async () => {
    const plugindex = await home();
    expect((await plugindex('registry', 'add', 'main', base, '--key', keyFile)).code).toBe(0);
    const found = await plugindex('search', 'harmless');
    expect(found.code, found.stderr).toBe(0);
    expect(found.stdout).toBe(
      `main/${FORGER}  1.0.0  cost_source  Looks harmless\\u000amain/official-tool  9.9.9  cost_source  The official one\n`,
    );
    const info = await plugindex('info', FORGER);
    expect(info.code, info.stderr).toBe(0);
    const lines = info.stdout.split('\n');
    expect(lines[0]).toBe(`${FORGER} (Forger\\u000d)  from main`);
    expect(lines[1]).toBe('  Looks harmless\\u000amain/official-tool  9.9.9  cost_source  The official one');
    expect(lines.filter((l) => l.includes('9.9.9'))).toHaveLength(2);
    expect(lines.some((l) => /^\s+9\.9\.9/.test(l))).toBe(false);
    // --json keeps the text as published.
    expect(JSON.parse((await plugindex('info', FORGER, '--json')).stdout).plugin.description).toBe(
      FORGED_DESCRIPTION,
    );
  });

  it('lists an install no configured registry speaks for as not checked, with why, and exits 0 (audit, which checked nothing, 1)', async () => {
    const plugindex = await home();
    expect((await plugindex('registry', 'add', 'main', base, '--key', keyFile)).code).toBe(0);
    const install = ['install', `${NAME}@1.0.0`, '--dir', 'plugins', '--platform', 'linux/amd64'];
    expect((await plugindex(...install)).code).toBe(0);
    expect((await plugindex('registry', 'remove', 'main')).code).toBe(0);

    const listed = await plugindex('list', '--outdated', '--dir', 'plugins');
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toContain(
      `${NAME}  1.0.0  wanted -  latest -  linux-amd64  from main  [not checked]`,
    );
    expect(listed.stdout).toContain('not checked: installed through key');
    expect(listed.stdout).toContain('from a registry named main, which is not configured here');
    const json = await plugindex('list', '--outdated', '--dir', 'plugins', '--json');
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout).plugins).toEqual([
      expect.objectContaining({ name: NAME, unchecked: expect.stringContaining('not configured') }),
    ]);
    // audit checked nothing, and says so (exit 1): a green audit of what no registry here speaks for is none.
    const audit = await plugindex('audit', '--dir', 'plugins');
    expect(audit.code).toBe(1);
    expect(audit.stdout).toContain(`not checked  ${NAME}@1.0.0 from main`);
    expect(audit.stdout).toContain('nothing was audited: none of the 1 installed version could be checked');
  });

  it('reads the registry\u2019s falcoctl index for a falcoctl-style reference, as the built command', async () => {
    // The index is YAML, and the yaml package is CommonJS: imported lazily, the built command gets only its
    // default export, where Node alone would give named ones too (the source tests cannot see the difference).
    const plugindex = await home();
    expect((await plugindex('registry', 'add', 'main', base, '--key', keyFile)).code).toBe(0);
    const unknown = await plugindex(
      'install',
      'registry.example/acme/none:1.0.0',
      '--dir',
      'plugins',
      '--json',
    );
    expect(unknown.code, unknown.stderr).toBe(1);
    expect(unknown.stderr).toContain('PLUGIN_NOT_FOUND');
    expect(unknown.stderr).toContain('registry.example/acme/none:1.0.0');
    expect(JSON.parse(unknown.stdout)).toMatchObject({ ok: false, error: { code: 'PLUGIN_NOT_FOUND' } });
  });

  it('refuses a tampered artifact with exit 3 and installs nothing', async () => {
    const plugindex = await home();
    expect((await plugindex('registry', 'add', 'main', base, '--key', keyFile)).code).toBe(0);
    const artifact = path.join(registryDir, 'public/plugins', NAME, '1.1.0/artifacts/linux-amd64', NAME);
    const original = await readFile(artifact);
    await writeFile(artifact, 'not what was signed');
    try {
      const refused = await plugindex(
        'install',
        `${NAME}@1.1.0`,
        '--dir',
        'plugins',
        '--platform',
        'linux/amd64',
      );
      expect(refused.code).toBe(3);
      expect(refused.stderr).toContain('ARTIFACT_MISMATCH');
      await expect(stat(path.join(work, `home${homes}`, 'plugins'))).rejects.toMatchObject({
        code: 'ENOENT',
      });
    } finally {
      await writeFile(artifact, original);
    }
  });

  it('draws a progress bar on a terminal from the signed size, and never with --json or under CI', async () => {
    const onTerminal = await home({ terminal: true });
    const cli = (...args: string[]) => ['env', '-u', 'CI', process.execPath, BIN, ...args];
    expect((await onTerminal(...cli('registry', 'add', 'main', base, '--key', keyFile))).code).toBe(0);
    const install = ['install', `${NAME}@1.1.0`, '--dir', 'plugins', '--platform', 'linux/amd64'];
    const drawn = await onTerminal(...cli(...install));
    expect(drawn.code, drawn.stdout).toBe(0);
    expect(drawn.stdout).toContain(`${NAME}@1.1.0 [${'#'.repeat(30)}] 0.0/0.0 MiB`);
    await rm(path.join(work, `home${homes}`, 'plugins'), { recursive: true });
    await rm(path.join(work, `home${homes}`, 'cache'), { recursive: true });
    const json = await onTerminal(...cli(...install, '--json'));
    expect(json.code, json.stdout).toBe(0);
    expect(json.stdout).not.toContain('[#');
    await rm(path.join(work, `home${homes}`, 'plugins'), { recursive: true });
    await rm(path.join(work, `home${homes}`, 'cache'), { recursive: true });
    // stderr a pipe, not the terminal: no bar either.
    const piped = await onTerminal(
      'sh',
      '-c',
      `env -u CI ${[process.execPath, BIN, ...install].join(' ')} 2>&1 | cat`,
    );
    expect(piped.code, piped.stdout).toBe(0);
    expect(piped.stdout).not.toContain('[#');
    await rm(path.join(work, `home${homes}`, 'plugins'), { recursive: true });
    await rm(path.join(work, `home${homes}`, 'cache'), { recursive: true });
    const ci = await onTerminal('env', 'CI=1', process.execPath, BIN, ...install);
    expect(ci.code, ci.stdout).toBe(0);
    expect(ci.stdout).toContain(`installed ${NAME}@1.1.0`);
    expect(ci.stdout).not.toContain('[#');
  });

  it('installs --frozen from the lock and the cache with the server stopped', async () => {
    const plugindex = await home();
    expect((await plugindex('registry', 'add', 'main', base, '--key', keyFile)).code).toBe(0);
    expect(
      (await plugindex('install', `${NAME}@1.1.0`, '--dir', 'plugins', '--platform', 'linux/amd64')).code,
    ).toBe(0);
    const cwd = path.join(work, `home${homes}`);
    await rm(path.join(cwd, 'plugins'), { recursive: true });
    await stopServer();
    try {
      const frozen = await plugindex('install', '--frozen', '--dir', 'plugins', '--platform', 'linux/amd64');
      expect(frozen.code, frozen.stderr).toBe(0);
      expect(await readFile(path.join(cwd, 'plugins', NAME, '1.1.0', 'linux-amd64', NAME))).toEqual(
        Buffer.from(TOOL),
      );
      // Not in the cache, and --frozen forbids the network: refused by name.
      const other = await plugindex('install', '--frozen', '--dir', 'plugins', '--platform', 'darwin/arm64');
      expect(other.code).toBe(1);
      expect(other.stderr).toMatch(/NO_ARTIFACT_FOR_PLATFORM|OFFLINE_MISSING/);
    } finally {
      await startServer();
    }
  });

  it('refuses --frozen a lock of a registry not configured here (SOURCE_NOT_CONFIGURED, exit 1) unless --trust-lock, which says so', async () => {
    const author = await home();
    expect((await author('registry', 'add', 'main', base, '--key', keyFile)).code).toBe(0);
    expect(
      (await author('install', `${NAME}@1.0.0`, '--dir', 'plugins', '--platform', 'linux/amd64')).code,
    ).toBe(0);
    const lock = await readFile(path.join(work, `home${homes}`, 'plugindex.lock'));
    const ci = await home();
    const cwd = path.join(work, `home${homes}`);
    await writeFile(path.join(cwd, 'plugindex.lock'), lock);
    const frozen = ['install', '--frozen', '--dir', 'plugins', '--platform', 'linux/amd64'];
    const refused = await ci(...frozen);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('SOURCE_NOT_CONFIGURED');
    expect(refused.stderr).toContain(`plugindex registry add main ${base} --key FILE`);
    await expect(stat(path.join(cwd, 'plugins'))).rejects.toMatchObject({ code: 'ENOENT' });
    // Lock-only trust is a frozen install's alone.
    expect((await ci('install', '--trust-lock', '--dir', 'plugins')).code).toBe(2);
    const taken = await ci(...frozen, '--trust-lock');
    expect(taken.code, taken.stderr).toBe(0);
    expect(taken.stderr).toContain('(--trust-lock): source main is not configured here');
    expect(await readFile(path.join(cwd, 'plugins', NAME, '1.0.0', 'linux-amd64', NAME))).toEqual(
      Buffer.from(TOOL),
    );
  });

  it('refuses -c --frozen a set whose provider is not configured here (SOURCE_NOT_CONFIGURED) naming a remedy that works there, not --trust-lock', async () => {
    const author = await home();
    const authorDir = path.join(work, `home${homes}`);
    expect((await author('registry', 'add', 'main', base, '--key', keyFile)).code).toBe(0);
    const setText = `plugins:\n  install_location: ./set-plugins\n  providers:\n    - { type: registry, name: main }\n  plugins:\n    - { provider: main, name: ${NAME}, version: 1.0.0 }\n`;
    await writeFile(path.join(authorDir, 'plugins.yaml'), setText);
    const locked = await author('install', '-c', 'plugins.yaml');
    expect(locked.code, locked.stderr).toBe(0);
    // A CI machine checks out the set and its lock, and configures no registry.
    const ci = await home();
    const cwd = path.join(work, `home${homes}`);
    for (const file of await readdir(authorDir))
      if (file.startsWith('plugins.'))
        await writeFile(path.join(cwd, file), await readFile(path.join(authorDir, file)));
    const frozen = ['install', '-c', 'plugins.yaml', '--frozen'];
    const refused = await ci(...frozen);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('SOURCE_NOT_CONFIGURED');
    expect(refused.stderr).not.toContain('--trust-lock');
    expect(refused.stderr).toContain('give provider main in');
    // The flag the message does not offer is refused by this command, a usage error.
    expect((await ci(...frozen, '--trust-lock')).code).toBe(2);
    // The remedy it names works: the provider given its url: and key: in the set.
    await writeFile(
      path.join(cwd, 'plugins.yaml'),
      setText.replace(
        '{ type: registry, name: main }',
        `{ type: registry, name: main, url: ${base}, key: ${keyFile} }`,
      ),
    );
    const taken = await ci(...frozen);
    expect(taken.code, taken.stderr).toBe(0);
    expect(await readFile(path.join(cwd, 'set-plugins', NAME, '1.0.0', 'linux-amd64', NAME))).toEqual(
      Buffer.from(TOOL),
    );
  });

  it("finds a plugin set's tree up to date without loading openpgp.js, its provider's key file read unparsed", async () => {
    // README (What it costs): a set installed again with nothing changed loads no signature code; the key
    // file a provider names is read for a secret key in binary packets only where it can hold any.
    const loaded = path.join(work, `loaded-${homes + 1}.txt`);
    const plugindex = await home({ env: recordingLoads(loaded) });
    const dir = path.join(work, `home${homes}`);
    const set = path.join(dir, 'plugins.yaml');
    await writeFile(
      set,
      `plugins:\n  install_location: ./set-plugins\n  providers:\n    - { type: registry, name: main, url: ${base}, key: ${keyFile} }\n  plugins:\n    - { provider: main, name: ${NAME} }\n`,
    );
    const installed = await plugindex('install', '-c', set);
    expect(installed.code, installed.stderr).toBe(0);
    expect(await chunksHolding(loaded, 'openpgp')).not.toEqual([]);
    await writeFile(loaded, '');
    await stopServer();
    try {
      const again = await plugindex('install', '-c', set, '--frozen');
      expect(again.code, again.stderr).toBe(0);
      expect(await chunksHolding(loaded, 'openpgp')).toEqual([]);
    } finally {
      await startServer();
    }
  });

  it('finds a tree installed from a manifest URL up to date without loading openpgp.js, and with no request', async () => {
    // README (What it costs): a frozen install of an installed tree loads no signature code. The lock's
    // source, a manifest URL installed from with --key, is configured here by the pin kept for it: whether
    // it is kept is read, not the key (openpgp.js, 70-80 ms a process), by which nothing is checked here.
    const loaded = path.join(work, `loaded-${homes + 1}.txt`);
    const plugindex = await home({ env: recordingLoads(loaded) });
    const manifest = `${base}/plugins/${NAME}/1.0.0/manifest.json`;
    const installed = await plugindex('install', manifest, '--key', keyFile, '--dir', 'plugins');
    expect(installed.code, installed.stderr).toBe(0);
    // The recorder sees openpgp.js where it is loaded: the install checked the manifest's signature.
    expect(await chunksHolding(loaded, 'openpgp')).not.toEqual([]);
    await writeFile(loaded, '');
    await stopServer();
    try {
      const frozen = await plugindex('install', '--frozen', '--dir', 'plugins', '--json');
      expect(frozen.code, frozen.stderr).toBe(0);
      expect(JSON.parse(frozen.stdout)).toMatchObject({ items: [{ name: NAME, unchanged: true }] });
      expect(await chunksHolding(loaded, 'openpgp')).toEqual([]);
    } finally {
      await startServer();
    }
  });
});
