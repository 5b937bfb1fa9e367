/**
 * A frozen install of a lock entry whose source this machine does not configure (a registry under a name
 * not added here, a manifest URL never installed from with its key): no key the user trusts can check what
 * the lock pins, and a lock is untrusted input (a pull request can edit it). Refused before any request
 * (SOURCE_NOT_CONFIGURED, saying how to configure it) unless `trustLock` takes the lock's digests alone,
 * said in a warning. Real HTTP, real signatures.
 */

import { mkdirSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, type PlugindexClient } from '../../client/client.ts';
import { ClientError } from '../../client/errors.ts';
import { createHttpFetcher } from '../../client/fetcher.ts';
import { fixedClock } from '../../index-builder/clock.ts';
import { sha256Hex } from '../../index-builder/digest.ts';
import { encode, type TestRegistry, testKey } from '../support/fixtures.ts';
import { servedOnePlugin } from '../support/served-registry.ts';

const NAME = 'demo-plugin';
const TOOL = encode('#!/bin/sh\necho demo 1.0.0\n');
const LINUX = { os: 'linux', arch: 'amd64' } as const;

let registry: TestRegistry;
let base: string;
let close: () => Promise<void>;
let requests: string[];
let root: string;

beforeAll(async () => {
  ({ registry, base, close, requests } = await servedOnePlugin(NAME, TOOL));
  root = await mkdtemp(join(tmpdir(), 'plugindex-frozen-unknown-'));
});
afterAll(async () => {
  await close();
  await rm(root, { recursive: true, force: true });
});

let machines = 0;
function machine() {
  machines += 1;
  const home = join(root, `m${machines}`);
  mkdirSync(home, { recursive: true });
  const m = {
    dir: join(home, 'plugins'),
    lockfile: join(home, 'plugindex.lock'),
    async run<T>(body: (client: PlugindexClient) => Promise<T>): Promise<T> {
      const client = createClient({
        dirs: { config: join(home, 'config'), data: join(home, 'data'), cache: join(home, 'cache') },
        fetcher: createHttpFetcher({ env: {}, retries: 0 }),
        env: {},
        clock: fixedClock(new Date('2026-11-02T00:00:00Z')),
        platform: LINUX,
        offline: false,
        freshForMs: 0,
      });
      try {
        return await body(client);
      } finally {
        await client.close();
      }
    },
    frozen(trustLock?: boolean) {
      return m.run((c) =>
        c.install({
          requests: [],
          dir: m.dir,
          lockfile: m.lockfile,
          frozen: true,
          ...(trustLock ? { trustLock } : {}),
        }),
      );
    },
  };
  return m;
}

const placed = (m: { dir: string }) => join(m.dir, NAME, '1.0.0', 'linux-amd64', NAME);
const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

/** A lock made by a machine that configures the registry as `test` and installs from it. */
async function registryLock(): Promise<Buffer> {
  const author = machine();
  await author.run((c) =>
    c.addRegistry({ name: 'test', url: base, pin: { armored: registry.registryKey.publicKey } }),
  );
  await author.run((c) =>
    c.install({ requests: [`${NAME}@1.0.0`], dir: author.dir, lockfile: author.lockfile }),
  );
  return readFile(author.lockfile);
}

describe('when a frozen lock names a registry this machine does not configure', () => {
  it('refuses it SOURCE_NOT_CONFIGURED before any request, saying how to add it', async () => {
    const ci = machine();
    await writeFile(ci.lockfile, await registryLock());
    const before = requests.length;
    const refused = await ci.frozen().catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ClientError);
    expect(refused).toMatchObject({ code: 'SOURCE_NOT_CONFIGURED' });
    expect((refused as Error).message).toContain(`plugindex registry add test ${base} --key FILE`);
    expect((refused as Error).message).toContain('--trust-lock');
    expect(requests.slice(before)).toEqual([]);
    expect(await exists(placed(ci))).toBe(false);
  });

  it('refuses a lock forged whole (its own files, its manifest nowhere), which placed them on its own digests', async () => {
    const ci = machine();
    const lock = JSON.parse((await registryLock()).toString('utf8'));
    // The attacker's file, served where the lock says; the manifest it names is served nowhere, which a
    // source nobody configured made a warning, not a refusal.
    const evil = encode('#!/bin/sh\necho owned\n');
    const { createServer } = await import('node:http');
    const server = createServer((req, res) => {
      if (req.url === `/evil/${NAME}`) res.end(evil);
      else res.writeHead(404).end();
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    const at = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    try {
      lock.registries = { evil: lock.registries.test };
      lock.plugins[NAME] = {
        ...lock.plugins[NAME],
        registry: 'evil',
        manifest_sha256: sha256Hex(encode('nothing')),
        manifest_url: `${at}/plugins/${NAME}/1.0.0/manifest.json`,
        artifacts: {
          'linux-amd64': { sha256: sha256Hex(evil), size: evil.length, url: `${at}/evil/${NAME}` },
        },
      };
      await writeFile(ci.lockfile, `${JSON.stringify(lock, null, 2)}\n`);
      await expect(ci.frozen()).rejects.toMatchObject({ name: 'ClientError', code: 'SOURCE_NOT_CONFIGURED' });
      expect(await exists(placed(ci))).toBe(false);
    } finally {
      await new Promise((done) => server.close(done));
    }
  });

  it('refuses it before the entries of a registry configured here fetch anything', async () => {
    const ci = machine();
    const lock = JSON.parse((await registryLock()).toString('utf8'));
    lock.registries.elsewhere = lock.registries.test;
    lock.plugins['other-plugin'] = { ...lock.plugins[NAME], registry: 'elsewhere' };
    await writeFile(ci.lockfile, `${JSON.stringify(lock, null, 2)}\n`);
    await ci.run((c) =>
      c.addRegistry({ name: 'test', url: base, pin: { armored: registry.registryKey.publicKey } }),
    );
    const before = requests.length;
    await expect(ci.frozen()).rejects.toMatchObject({
      name: 'ClientError',
      code: 'SOURCE_NOT_CONFIGURED',
      message: expect.stringContaining('plugins/other-plugin@1.0.0 is locked from source elsewhere'),
    });
    expect(requests.slice(before)).toEqual([]);
    expect(await exists(placed(ci))).toBe(false);
  });

  it('installs on the lock’s digests alone with --trust-lock, saying so', async () => {
    const ci = machine();
    await writeFile(ci.lockfile, await registryLock());
    const result = await ci.frozen(true);
    expect(await readFile(placed(ci))).toEqual(Buffer.from(TOOL));
    expect(result.items[0]?.warnings).toEqual([
      expect.stringContaining(
        `source test is not configured here, so no key this machine trusts checked its signature`,
      ),
    ]);
  });

  it('installs as before once the registry is added under the lock’s name, with no warning', async () => {
    const ci = machine();
    await writeFile(ci.lockfile, await registryLock());
    await ci.run((c) =>
      c.addRegistry({ name: 'test', url: base, pin: { armored: registry.registryKey.publicKey } }),
    );
    const result = await ci.frozen();
    expect(await readFile(placed(ci))).toEqual(Buffer.from(TOOL));
    expect(result.items[0]?.warnings).toEqual([]);
  });
});

describe('when a frozen lock names a manifest URL this machine never installed from with its key', () => {
  it('refuses it SOURCE_NOT_CONFIGURED, saying to install the URL once with its key', async () => {
    const author = machine();
    const url = `${base}/plugins/${NAME}/1.0.0/manifest.json`;
    await author.run(async (c) => {
      const target = await c.reference(url, { key: registry.registryKey.publicKey });
      if (!target?.source) throw new Error('a manifest URL with a key is a source');
      return c.install({
        requests: [{ request: target.request, registry: target.registry }],
        sources: new Map([[target.registry, target.source]]),
        dir: author.dir,
        lockfile: author.lockfile,
      });
    });
    const ci = machine();
    await writeFile(ci.lockfile, await readFile(author.lockfile));
    await expect(ci.frozen()).rejects.toMatchObject({
      name: 'ClientError',
      code: 'SOURCE_NOT_CONFIGURED',
      message: expect.stringContaining(`plugindex install ${url} --key FILE`),
    });
    expect(await exists(placed(ci))).toBe(false);
    // The author's machine keeps the key as the URL's pin: its frozen install checks by it, unwarned.
    await rm(author.dir, { recursive: true, force: true });
    const again = await author.frozen();
    expect(again.items[0]?.warnings).toEqual([]);
  });
});

describe('when a frozen install finds the tree installed from a manifest URL whose pin is not kept here', () => {
  it('refuses it SOURCE_NOT_CONFIGURED as on a clean machine, with no request, and takes it once pinned', async () => {
    // The pin is judged by whether it is kept (its trust state), not by parsing its key: the refusal is
    // the one a clean machine gets, and a machine that installed the URL with its key finds it up to date.
    const author = machine();
    const url = `${base}/plugins/${NAME}/1.0.0/manifest.json`;
    const fromUrl = (m: ReturnType<typeof machine>) =>
      m.run(async (c) => {
        const target = await c.reference(url, { key: registry.registryKey.publicKey });
        if (!target?.source) throw new Error('a manifest URL with a key is a source');
        return c.install({
          requests: [{ request: target.request, registry: target.registry }],
          sources: new Map([[target.registry, target.source]]),
          dir: m.dir,
          lockfile: m.lockfile,
        });
      });
    await fromUrl(author);
    const ci = machine();
    await writeFile(ci.lockfile, await readFile(author.lockfile));
    await ci.frozen(true);
    const before = requests.length;
    await expect(ci.frozen()).rejects.toMatchObject({
      name: 'ClientError',
      code: 'SOURCE_NOT_CONFIGURED',
      message: expect.stringContaining(`plugindex install ${url} --key FILE`),
    });
    expect(requests.slice(before)).toEqual([]);
    expect(await readFile(placed(ci))).toEqual(Buffer.from(TOOL));
    // Installed once with its key, as the refusal says: up to date, with no request.
    await fromUrl(ci);
    const after = requests.length;
    const again = await ci.frozen();
    expect(again.items[0]).toMatchObject({ unchanged: true, warnings: [] });
    expect(requests.slice(after)).toEqual([]);
  });
});

describe('when a frozen lock names a manifest URL whose pin kept here is damaged', () => {
  it('refuses it before any entry fetches anything, as it refused when planned', async () => {
    // A second site, the URL's: one plugin (other-plugin) installed by its manifest URL with its key.
    const other = await servedOnePlugin('other-plugin', encode('#!/bin/sh\necho other 1.0.0\n'));
    try {
      const ci = machine();
      await ci.run((c) =>
        c.addRegistry({ name: 'test', url: base, pin: { armored: registry.registryKey.publicKey } }),
      );
      const url = `${other.base}/plugins/other-plugin/1.0.0/manifest.json`;
      const urlLock = join(root, `url-${machines}.lock`);
      await ci.run(async (c) => {
        const target = await c.reference(url, { key: other.registry.registryKey.publicKey });
        if (!target?.source) throw new Error('a manifest URL with a key is a source');
        return c.install({
          requests: [{ request: target.request, registry: target.registry }],
          sources: new Map([[target.registry, target.source]]),
          dir: join(root, `url-${machines}`),
          lockfile: urlLock,
        });
      });
      // One lock of both: the configured registry's entry, and the URL's, whose pin is then damaged.
      const lock = JSON.parse((await registryLock()).toString('utf8'));
      const fromUrl = JSON.parse(await readFile(urlLock, 'utf8'));
      Object.assign(lock.registries, fromUrl.registries);
      Object.assign(lock.plugins, fromUrl.plugins);
      await writeFile(ci.lockfile, `${JSON.stringify(lock, null, 2)}\n`);
      const pin = fromUrl.plugins['other-plugin'].registry as string;
      await writeFile(join(dirname(ci.dir), 'data', 'trust', pin, 'registry.asc'), 'not a key\n');
      const before = { own: requests.length, url: other.requests.length };

      await expect(ci.frozen()).rejects.toMatchObject({ name: 'KeyError', code: 'KEY_INVALID' });
      expect(requests.slice(before.own)).toEqual([]);
      expect(other.requests.slice(before.url)).toEqual([]);
      expect(await exists(placed(ci))).toBe(false);
    } finally {
      await other.close();
    }
  });
});

describe('when the key pinned here for a configured registry is damaged on disk', () => {
  /**
   * A machine that configured `test` and installed from it (lock and tree), its cache then cleared, its
   * tree removed for `frozen` (a fetch to make), and its pinned key file then replaced by `damaged`.
   */
  async function damagedPin(damaged: string, keepTree: boolean) {
    const m = machine();
    await m.run((c) =>
      c.addRegistry({ name: 'test', url: base, pin: { armored: registry.registryKey.publicKey } }),
    );
    await m.run((c) => c.install({ requests: [`${NAME}@1.0.0`], dir: m.dir, lockfile: m.lockfile }));
    const home = dirname(m.dir);
    await rm(join(home, 'cache'), { recursive: true, force: true });
    if (!keepTree) await rm(m.dir, { recursive: true, force: true });
    await writeFile(join(home, 'data', 'trust', 'test', 'registry.asc'), damaged);
    return m;
  }

  const commands: readonly [
    string,
    (c: PlugindexClient, m: ReturnType<typeof machine>) => Promise<unknown>,
  ][] = [
    [
      'install --frozen',
      (c, m) => c.install({ requests: [], dir: m.dir, lockfile: m.lockfile, frozen: true }),
    ],
    ['install', (c, m) => c.install({ requests: [`${NAME}@1.0.0`], dir: m.dir, lockfile: m.lockfile })],
    ['update', (c) => c.updateRegistries(['test']).then((reports) => Promise.reject(reports[0]?.error))],
    ['verify', (c, m) => c.verifyInstalled({ dir: m.dir }).then((found) => Promise.reject(found[0]))],
    ['info', (c) => c.info(NAME, {})],
    ['search', (c) => c.search({ terms: ['demo'] })],
  ];
  const damages = [
    ['a key file that does not read', 'not a key\n', { name: 'KeyError', code: 'KEY_INVALID' }],
    ['another key than its trust state records', 'other', { name: 'TrustError', code: 'SNAPSHOT_WRONG_KEY' }],
  ] as const;

  for (const [damage, text, refusal] of damages)
    for (const [command, run] of commands)
      it(`refuses ${damage} at ${command} before any request, ${refusal.code}`, async () => {
        const other = text === 'other' ? (await testKey('another')).publicKey : text;
        const m = await damagedPin(other, command === 'verify');
        const before = requests.length;

        const refused = await m
          .run((c) => run(c, m))
          .then(
            () => undefined,
            (error: unknown) => error,
          );

        // verify reports a key that is not the one recorded as a finding of the version it checks by it.
        expect(refused).toMatchObject(command === 'verify' ? { code: refusal.code } : refusal);
        expect(requests.slice(before)).toEqual([]);
      });
});

describe('when a plugin set names a registry by name alone, which this machine does not configure', () => {
  /** A repository whose set installs NAME from the configured registry `test`, installed by its author. */
  async function authoredSet(): Promise<string> {
    const author = machine();
    const repo = join(root, `set-repo-${machines}`);
    mkdirSync(repo, { recursive: true });
    await writeFile(
      join(repo, 'plugins.yaml'),
      `plugins:\n  install_location: ./plugins\n  providers:\n    - { type: registry, name: test }\n  plugins:\n    - { provider: test, name: ${NAME} }\n`,
    );
    await author.run((c) =>
      c.addRegistry({ name: 'test', url: base, pin: { armored: registry.registryKey.publicKey } }),
    );
    await author.run((c) => c.installSet(join(repo, 'plugins.yaml'), { home: '/nonexistent' }));
    return repo;
  }

  it('refuses its frozen install SOURCE_NOT_CONFIGURED offering only what works with -c: no --trust-lock', async () => {
    const authored = await authoredSet();
    const repo = join(root, `set-clone-${machines}`);
    mkdirSync(repo, { recursive: true });
    for (const file of ['plugins.yaml', 'plugins.lock'])
      await writeFile(join(repo, file), await readFile(join(authored, file)));
    const ci = machine();
    const before = requests.length;
    const refused = await ci
      .run((c) => c.installSet(join(repo, 'plugins.yaml'), { home: '/nonexistent', frozen: true }))
      .catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ClientError);
    expect(refused).toMatchObject({ code: 'SOURCE_NOT_CONFIGURED' });
    const message = (refused as Error).message;
    expect(message).toContain(`plugindex registry add test ${base} --key FILE`);
    expect(message).toContain(`give provider test in ${join(repo, 'plugins.yaml')} its url: and key: FILE`);
    // `install -c` refuses --trust-lock (a usage error), and is already the install through the set.
    expect(message).not.toContain('--trust-lock');
    expect(message).not.toContain('install -c');
    expect(requests.slice(before)).toEqual([]);
    expect(await exists(join(repo, 'plugins'))).toBe(false);
  });

  it('refuses it as well where the tree is already installed from the lock, with no request', async () => {
    // Another machine on the same checkout (a CI cache restored, a shared folder): the files match the
    // lock's digests, but no key this machine trusts vouched for the lock, as on a clean checkout.
    const repo = await authoredSet();
    const ci = machine();
    const before = requests.length;
    await expect(
      ci.run((c) => c.installSet(join(repo, 'plugins.yaml'), { home: '/nonexistent', frozen: true })),
    ).rejects.toMatchObject({ name: 'ClientError', code: 'SOURCE_NOT_CONFIGURED' });
    expect(requests.slice(before)).toEqual([]);
    expect(await readFile(join(repo, 'plugins', NAME, '1.0.0', 'linux-amd64', NAME))).toEqual(
      Buffer.from(TOOL),
    );
  });
});

describe('when a frozen install finds the tree already installed from a lock of a source not configured here', () => {
  it('refuses it SOURCE_NOT_CONFIGURED as on a clean machine, unless --trust-lock, with no request', async () => {
    const ci = machine();
    await writeFile(ci.lockfile, await registryLock());
    await ci.frozen(true);
    const before = requests.length;
    await expect(ci.frozen()).rejects.toMatchObject({
      name: 'ClientError',
      code: 'SOURCE_NOT_CONFIGURED',
      message: expect.stringContaining('--trust-lock'),
    });
    // Taken on the lock's word, as asked: the tree is left as it is.
    await ci.frozen(true);
    expect(requests.slice(before)).toEqual([]);
    expect(await readFile(placed(ci))).toEqual(Buffer.from(TOOL));
  });
});
