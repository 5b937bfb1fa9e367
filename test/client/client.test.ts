/**
 * The consumer end to end, as a library: a registry the pipeline published, served over real HTTP by the
 * local server, and a client with its own config, data and cache folders installing from it. Registries,
 * install and lock, the warm path (one conditional request), frozen installs with the server gone, the
 * installed tree (list, enable, remove, verify), and a tamper suite: each attack refused with its code,
 * nothing installed, and the cache not poisoned (the next honest install works).
 */
import { chmod, chown, mkdir, mkdtemp, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createRegistryServer, listenRegistryServer } from '../../cli/local/server.ts';
import { createClient, type PlugindexClient } from '../../client/client.ts';
import type { ClientContext } from '../../client/context.ts';
import { ContentCache } from '../../client/disk/cache.ts';
import { InstallTree } from '../../client/disk/state.ts';
import { ClientError } from '../../client/errors.ts';
import { createHttpFetcher, type Fetcher } from '../../client/fetcher.ts';
import { type LockedRegistry, parseLockfile, serializeLockfile } from '../../client/lockfile.ts';
import { removeInstalled } from '../../client/maintain.ts';
import type { ClientDirectories } from '../../client/paths.ts';
import { fixedClock } from '../../index-builder/clock.ts';
import { sha256Hex } from '../../index-builder/digest.ts';
import { TrustError } from '../../index-builder/errors.ts';
import {
  binKey,
  binOf,
  encodedVariantKey,
  manifestKey,
  pluginDocumentKey,
  SEARCH_KEY,
  SIGNED_SNAPSHOT_KEY,
  SNAPSHOT_KEY,
  signatureKey,
} from '../../index-builder/layout.ts';
import { processSubmissions } from '../../index-builder/pipeline/index.ts';
import { createSigner } from '../../index-builder/signing.ts';
import type { StoredObject } from '../../index-builder/store.ts';
import {
  encode,
  makeBundle,
  makeRegistry,
  type TestRegistry,
  testKey,
  validManifest,
} from '../support/fixtures.ts';
import { editPlugin, versionOf } from '../support/lifecycle.ts';
import { publicPrimaryWithSecretSubkeys } from '../support/openpgp-packets.ts';
import { serveSite } from '../support/served-registry.ts';
import { UNTRUSTED_KEYS } from '../support/untrusted-keys.ts';

const NAME = 'demo-plugin';
const NOW = new Date('2026-11-02T00:00:00Z');
const TOOL_1 = encode('#!/bin/sh\necho demo 1.0.0\n');
const TOOL_1_MAC = encode('#!/bin/sh\necho demo 1.0.0 mac\n');
const TOOL_2 = encode('#!/bin/sh\necho demo 1.1.0\n');
const LINUX = { os: 'linux', arch: 'amd64' } as const;

let registry: TestRegistry;
let base: string;
let close: () => Promise<void>;
let requests: string[];
let root: string;

function bundle(version: string, artifacts: { os: string; arch: string; body: Uint8Array }[]) {
  return makeBundle({
    manifest: validManifest({ name: NAME, version, description: 'A demo cost source' }),
    artifacts: artifacts.map((a) => ({ ...a, name: NAME })),
  });
}

beforeAll(async () => {
  registry = await makeRegistry();
  await processSubmissions(
    registry.context,
    await registry.submit(
      await bundle('1.0.0', [
        { ...LINUX, body: TOOL_1 },
        { os: 'darwin', arch: 'arm64', body: TOOL_1_MAC },
      ]),
      await bundle('1.1.0', [{ ...LINUX, body: TOOL_2 }]),
      await makeBundle({ manifest: validManifest({ name: 'other-tool', version: '0.1.0' }) }),
      await makeBundle({
        manifest: validManifest({ name: 'second-tool', version: '0.1.0' }),
        artifacts: [{ ...LINUX, name: 'second-tool', body: encode('#!/bin/sh\necho second\n') }],
      }),
    ),
  );
  ({ base, close, requests } = await serveSite(registry));
  root = await mkdtemp(join(tmpdir(), 'plugindex-client-'));
});
afterAll(async () => {
  await close();
  await rm(root, { recursive: true, force: true });
});

/** plugindex.lock as the tests edit it. */
interface LockShape {
  plugins: Record<
    string,
    { manifest_sha256: string; publisher: string; artifacts: Record<string, { sha256: string }> }
  >;
  registries: Record<string, { key_fingerprint: string; min_generation: number }>;
}

interface Machine {
  readonly dirs: ClientDirectories;
  readonly dir: string;
  readonly lockfile: string;
  client(options?: { offline?: boolean; clock?: Date; freshForMs?: number }): PlugindexClient;
}

let machines = 0;
/** A fresh client machine: its own config, data and cache folders, install folder and lock file. */
async function machine(): Promise<Machine> {
  machines += 1;
  const home = join(root, `m${machines}`);
  const dirs = { config: join(home, 'config'), data: join(home, 'data'), cache: join(home, 'cache') };
  return {
    dirs,
    dir: join(home, 'plugins'),
    lockfile: join(home, 'plugindex.lock'),
    client: (options = {}) =>
      createClient({
        dirs,
        fetcher: createHttpFetcher({ env: {}, retries: 0 }),
        env: {},
        clock: fixedClock(options.clock ?? NOW),
        platform: LINUX,
        offline: options.offline ?? false,
        // Every run asks the registry, unless a test is about not asking.
        freshForMs: options.freshForMs ?? 0,
      }),
  };
}

async function withClient<T>(
  m: Machine,
  body: (client: PlugindexClient) => Promise<T>,
  options?: { offline?: boolean; clock?: Date; freshForMs?: number },
): Promise<T> {
  const client = m.client(options);
  try {
    return await body(client);
  } finally {
    await client.close();
  }
}

/** A second install of `NAME@1.0.0` into m's folder, by its own client with its own lock file (`lock`). */
const installAgain = (m: Machine, lock: string) =>
  withClient(m, (c) => c.install({ requests: [`${NAME}@1.0.0`], dir: m.dir, lockfile: join(root, lock) }));

/** What verifying m's folder against its installed.json reports. */
const verifyFolder = (m: Machine) => withClient(m, (c) => c.verifyInstalled({ dir: m.dir }));

async function addRegistry(m: Machine): Promise<void> {
  await withClient(m, (c) =>
    c.addRegistry({ name: 'test', url: base, pin: { armored: registry.registryKey.publicKey } }),
  );
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

describe('when a registry is added', () => {
  it('pins the key it was given, and adding it again changes nothing', async () => {
    const m = await machine();
    const first = await withClient(m, (c) =>
      c.addRegistry({ name: 'test', url: `${base}/`, pin: { armored: registry.registryKey.publicKey } }),
    );
    expect(first).toMatchObject({ change: 'added', trustedOnFirstUse: false });
    const again = await withClient(m, (c) =>
      c.addRegistry({ name: 'test', url: base, pin: { fingerprint: first.fingerprint } }),
    );
    expect(again.change).toBe('unchanged');
    const listed = await withClient(m, (c) => c.listRegistries());
    expect(listed.map((r) => [r.entry.name, r.entry.url, r.entry.key_fingerprint])).toEqual([
      ['test', base, first.fingerprint],
    ]);
  });

  it('refuses another key under the same name without --force, and a fingerprint the registry does not serve', async () => {
    const m = await machine();
    await addRegistry(m);
    const other = await testKey('another');
    await expect(
      withClient(m, (c) => c.addRegistry({ name: 'test', url: base, pin: { armored: other.publicKey } })),
    ).rejects.toMatchObject({ name: 'TrustError', code: 'SNAPSHOT_BAD_SIGNATURE' });
    await expect(
      withClient(m, (c) => c.addRegistry({ name: 'fp', url: base, pin: { fingerprint: '0'.repeat(40) } })),
    ).rejects.toMatchObject({ name: 'TrustError', code: 'SNAPSHOT_WRONG_KEY' });
    expect((await withClient(m, (c) => c.listRegistries())).map((r) => r.entry.name)).toEqual(['test']);
  });

  it('refuses the same name with another URL unless forced, then takes the new one', async () => {
    const m = await machine();
    await addRegistry(m);
    const elsewhere = base.replace('127.0.0.1', 'localhost');
    const pin = { armored: registry.registryKey.publicKey };
    await expect(
      withClient(m, (c) => c.addRegistry({ name: 'test', url: elsewhere, pin })),
    ).rejects.toMatchObject({
      name: 'ClientError',
      code: 'REGISTRY_EXISTS',
      message: expect.stringContaining('--force'),
    });
    const forced = await withClient(m, (c) =>
      c.addRegistry({ name: 'test', url: elsewhere, pin, force: true }),
    );
    expect(forced.change).toBe('replaced');
    expect((await withClient(m, (c) => c.listRegistries())).map((r) => r.entry.url)).toEqual([elsewhere]);
  });

  it('refuses a URL it never takes before an offline refusal, which named it whole, query and credentials', async () => {
    const m = await machine();
    const url = `${base.replace('http://', 'http://user:pw-s3cret@')}/?token=s3cret`;
    const pin = { armored: registry.registryKey.publicKey };
    for (const act of [
      (c: PlugindexClient): Promise<unknown> => c.addRegistry({ name: 'test', url, pin }),
      (c: PlugindexClient): Promise<unknown> =>
        c.resetRegistryTrust({ url, armoredKey: registry.registryKey.publicKey }),
    ]) {
      const refused = withClient(m, act, { offline: true });
      await expect(refused).rejects.toMatchObject({ name: 'ClientError', code: 'REGISTRY_URL_INVALID' });
      await expect(refused).rejects.toSatisfy((error: Error) => !error.message.includes('s3cret'));
    }
  });

  it('trusts on first use only when asked, with the fingerprint reported', async () => {
    const m = await machine();
    const added = await withClient(m, (c) =>
      c.addRegistry({ name: 'tofu', url: base, pin: { trustOnFirstUse: true } }),
    );
    expect(added.trustedOnFirstUse).toBe(true);
    expect(added.fingerprint).toMatch(/^[0-9A-F]{40}$/);
  });
});

describe('when a plugin is installed', () => {
  it('installs the resolved version verified end to end, with its signed manifest, and locks every platform', async () => {
    const m = await machine();
    await addRegistry(m);
    const result = await withClient(m, (c) =>
      c.install({ requests: [`${NAME}@^1.0.0`], dir: m.dir, lockfile: m.lockfile }),
    );
    expect(result.items.map((i) => [i.name, i.version, i.platform, i.unchanged])).toEqual([
      [NAME, '1.1.0', 'linux-amd64', false],
    ]);
    const file = join(m.dir, NAME, '1.1.0', 'linux-amd64', NAME);
    expect(await readFile(file)).toEqual(Buffer.from(TOOL_2));
    expect((await stat(file)).mode & 0o111).toBe(0o111);
    expect(await readFile(join(m.dir, NAME, '1.1.0', 'manifest.json'))).toEqual(
      Buffer.from(registry.site.objects.get(manifestKey(NAME, '1.1.0'))?.body as Uint8Array),
    );
    expect(await exists(join(m.dir, NAME, '1.1.0', 'manifest.json.asc'))).toBe(true);
    const lock = parseLockfile(await readFile(m.lockfile, 'utf8'), m.lockfile);
    expect(lock.plugins[NAME]).toMatchObject({ registry: 'test', requested: '^1.0.0', version: '1.1.0' });
    expect(lock.plugins[NAME]?.artifacts['linux-amd64']).toEqual({
      sha256: sha256Hex(TOOL_2),
      size: TOOL_2.byteLength,
      // Where a frozen install fetches it: under the URL this client reads the registry at.
      url: `${base}/plugins/${NAME}/1.1.0/artifacts/linux-amd64/${NAME}`,
    });
    const installed = await withClient(m, (c) => c.installed({ dir: m.dir }));
    expect(installed.plugins[NAME]).toMatchObject({ enabled: true, current: '1.1.0' });
  });

  it('names the plugin a mistyped name most likely meant, install and info alike (PLUGIN_NOT_FOUND)', async () => {
    // `no plugin named demo-plugni in test (URL)` said nothing of demo-plugin, as apt and cargo do.
    const m = await machine();
    await addRegistry(m);
    for (const typed of ['demo-plugni', 'demoplugin', 'demo-plugins']) {
      await expect(
        withClient(m, (c) => c.install({ requests: [typed], dir: m.dir, lockfile: m.lockfile })),
      ).rejects.toMatchObject({
        name: 'ClientError',
        code: 'PLUGIN_NOT_FOUND',
        message: expect.stringContaining(`no plugin named ${typed} in test (${base}): did you mean ${NAME}?`),
      });
      await expect(withClient(m, (c) => c.info(typed))).rejects.toMatchObject({
        code: 'PLUGIN_NOT_FOUND',
        message: expect.stringContaining(`did you mean ${NAME}?`),
      });
    }
    // A name no plugin is near is named alone.
    await expect(withClient(m, (c) => c.info('zzzz-nothing'))).rejects.toMatchObject({
      code: 'PLUGIN_NOT_FOUND',
      message: expect.not.stringContaining('did you mean'),
    });
  });

  it('says what to do when there is neither a name nor a lock to install (REQUEST_INVALID), frozen or not', async () => {
    // It said `nothing to install: no names given and no LOCK` alone: in a CI job run from the wrong folder,
    // nothing said the lock is looked for there, nor how to name another.
    const m = await machine();
    await addRegistry(m);
    for (const frozen of [false, true])
      await expect(
        withClient(m, (c) => c.install({ requests: [], dir: m.dir, lockfile: m.lockfile, frozen })),
      ).rejects.toMatchObject({
        name: 'ClientError',
        code: 'REQUEST_INVALID',
        message: expect.stringContaining(
          `no names given and no ${m.lockfile}: name what to install (plugindex install NAME[@SPEC]), or give the lock with --lockfile FILE`,
        ),
      });
  });

  it('refuses an unknown plugin, a version that does not exist and a platform it lacks, installing nothing', async () => {
    const m = await machine();
    await addRegistry(m);
    await expect(
      withClient(m, (c) => c.install({ requests: ['no-such-plugin'], dir: m.dir, lockfile: m.lockfile })),
    ).rejects.toMatchObject({ name: 'ClientError', code: 'PLUGIN_NOT_FOUND' });
    await expect(
      withClient(m, (c) => c.install({ requests: [`${NAME}@9.0.0`], dir: m.dir, lockfile: m.lockfile })),
    ).rejects.toMatchObject({ name: 'ClientError', code: 'NO_MATCHING_VERSION' });
    await expect(
      withClient(m, (c) =>
        c.install({
          requests: [`${NAME}@1.1.0`],
          dir: m.dir,
          lockfile: m.lockfile,
          platform: { os: 'darwin', arch: 'arm64' },
        }),
      ),
    ).rejects.toMatchObject({ name: 'ClientError', code: 'NO_ARTIFACT_FOR_PLATFORM' });
    expect(await exists(m.dir)).toBe(false);
    expect(await exists(m.lockfile)).toBe(false);
  });

  it('installs from a warm cache with one conditional request and no download', async () => {
    const m = await machine();
    await addRegistry(m);
    await withClient(m, (c) => c.install({ requests: [`${NAME}@1.0.0`], dir: m.dir, lockfile: m.lockfile }));
    await rm(m.dir, { recursive: true });
    requests.length = 0;
    const again = await withClient(m, (c) => c.install({ requests: [], dir: m.dir, lockfile: m.lockfile }));
    expect(again.lockfileChanged).toBe(false);
    expect(again.items[0]).toMatchObject({ version: '1.0.0', unchanged: false });
    expect(requests).toEqual([`GET /${SIGNED_SNAPSHOT_KEY} 304`]);
  });

  it('reads a registry that publishes no snapshot.signed.json through the snapshot.json pair', async () => {
    const m = await machine();
    const envelope = registry.site.objects.get(SIGNED_SNAPSHOT_KEY) as StoredObject;
    registry.site.objects.delete(SIGNED_SNAPSHOT_KEY);
    try {
      await addRegistry(m);
      requests.length = 0;
      const result = await withClient(m, (c) =>
        c.install({ requests: [`${NAME}@1.0.0`], dir: m.dir, lockfile: m.lockfile }),
      );
      expect(result.items[0]).toMatchObject({ version: '1.0.0' });
      expect(requests.filter((r) => r.includes('snapshot.'))).toEqual([
        `GET /${SIGNED_SNAPSHOT_KEY} 404`,
        `GET /${SNAPSHOT_KEY} 304`,
      ]);
    } finally {
      registry.site.objects.set(SIGNED_SNAPSHOT_KEY, envelope);
    }
  });

  it('does not ask again for a snapshot checked moments ago (registry update, then install)', async () => {
    const m = await machine();
    await addRegistry(m);
    requests.length = 0;
    await withClient(m, (c) => c.install({ requests: [`${NAME}@1.0.0`], dir: m.dir, lockfile: m.lockfile }), {
      freshForMs: 60_000,
    });
    expect(requests.filter((r) => r.includes('snapshot.'))).toEqual([]);
    // A minute later it asks: with the clock past the window, the one request is the conditional one.
    await rm(m.dir, { recursive: true });
    requests.length = 0;
    await withClient(m, (c) => c.install({ requests: [], dir: m.dir, lockfile: m.lockfile }), {
      freshForMs: 60_000,
      clock: new Date(NOW.getTime() + 61_000),
    });
    expect(requests).toEqual([`GET /${SIGNED_SNAPSHOT_KEY} 304`]);
  });

  it('asks again after a check dated ahead of its clock (a run whose clock ran fast is no recent check)', async () => {
    const m = await machine();
    // One run with the clock a day fast (a VM's clock, a time server answering wrong) keeps its check dated
    // a day ahead; the clock set right, that check is not "moments ago", or no run would ask for a day.
    await withClient(
      m,
      (c) => c.addRegistry({ name: 'test', url: base, pin: { armored: registry.registryKey.publicKey } }),
      { clock: new Date(NOW.getTime() + 24 * 3600_000) },
    );
    requests.length = 0;
    await withClient(m, (c) => c.install({ requests: [`${NAME}@1.0.0`], dir: m.dir, lockfile: m.lockfile }), {
      freshForMs: 60_000,
    });
    expect(requests.filter((r) => r.includes('snapshot.'))).toEqual([`GET /${SIGNED_SNAPSHOT_KEY} 304`]);
  });

  it('keeps the lock: a second install is up to date, --locked refuses a change naming the entry', async () => {
    const m = await machine();
    await addRegistry(m);
    await withClient(m, (c) => c.install({ requests: [`${NAME}@1.0.0`], dir: m.dir, lockfile: m.lockfile }));
    const lockBytes = await readFile(m.lockfile);
    const again = await withClient(m, (c) =>
      c.install({ requests: [NAME], dir: m.dir, lockfile: m.lockfile }),
    );
    expect(again.items[0]).toMatchObject({ version: '1.0.0', unchanged: true });
    expect(await readFile(m.lockfile)).toEqual(lockBytes);
    await expect(
      withClient(m, (c) =>
        c.install({ requests: [`${NAME}@1.1.0`], dir: m.dir, lockfile: m.lockfile, locked: true }),
      ),
    ).rejects.toMatchObject({
      code: 'LOCK_OUT_OF_SYNC',
      message: expect.stringContaining(`plugins/${NAME}`),
    });
    expect(await readFile(m.lockfile)).toEqual(lockBytes);
  });

  it.each([
    [
      'a manifest digest',
      (lock: LockShape) => {
        (lock.plugins[NAME] as LockShape['plugins'][string]).manifest_sha256 = 'f'.repeat(64);
      },
      'LOCK_MISMATCH',
      'manifest sha256',
    ],
    [
      'a publisher key',
      (lock: LockShape) => {
        (lock.plugins[NAME] as LockShape['plugins'][string]).publisher = 'A'.repeat(40);
      },
      'LOCK_MISMATCH',
      'publisher key',
    ],
    [
      'an artifact digest',
      (lock: LockShape) => {
        (lock.plugins[NAME]?.artifacts['linux-amd64'] as { sha256: string }).sha256 = 'e'.repeat(64);
      },
      'LOCK_MISMATCH',
      'linux-amd64 artifact',
    ],
    [
      'the registry key',
      (lock: LockShape) => {
        (lock.registries.test as LockShape['registries'][string]).key_fingerprint = 'B'.repeat(40);
      },
      'LOCK_MISMATCH',
      'registries/test',
    ],
    [
      'a generation the registry has not reached',
      (lock: LockShape) => {
        (lock.registries.test as LockShape['registries'][string]).min_generation = 1_000_000;
      },
      'SNAPSHOT_ROLLBACK',
      'the lowest',
    ],
  ])(
    'refuses a lock whose %s differs from what the registry signs, naming the entry',
    async (_what, edit, code, names) => {
      const m = await machine();
      await addRegistry(m);
      await withClient(m, (c) =>
        c.install({ requests: [`${NAME}@1.0.0`], dir: m.dir, lockfile: m.lockfile }),
      );
      await rm(m.dir, { recursive: true });
      const lock = JSON.parse(await readFile(m.lockfile, 'utf8')) as LockShape;
      edit(lock);
      await writeFile(m.lockfile, JSON.stringify(lock));
      const error = await withClient(m, (c) =>
        c.install({ requests: [], dir: m.dir, lockfile: m.lockfile }),
      ).catch((e: unknown) => e);
      expect(error).toMatchObject({ code, message: expect.stringContaining(names) });
      expect(
        (error as { refusal?: boolean; name: string }).name === 'TrustError' ||
          (error as { refusal?: boolean }).refusal,
      ).toBe(true);
      expect(await exists(m.dir)).toBe(false);
    },
  );

  it.each([
    ['an update', { requests: [] as string[], upgrade: true }],
    [
      'the locked version asked for exactly (another spec than the one locked)',
      { requests: [`${NAME}@1.0.0`] },
    ],
  ])(
    'refuses, for %s that resolves to the locked version again, a registry that now signs other digests for it',
    async (_what, install) => {
      const m = await machine();
      await addRegistry(m);
      await withClient(m, (c) =>
        c.install({ requests: [`${NAME}@~1.0.0`], dir: m.dir, lockfile: m.lockfile }),
      );
      const lock = JSON.parse(await readFile(m.lockfile, 'utf8')) as LockShape;
      // The registry and the lock disagree about 1.0.0 (the edit stands for a registry that re-signed it).
      (lock.plugins[NAME]?.artifacts['linux-amd64'] as { sha256: string }).sha256 = 'e'.repeat(64);
      await writeFile(m.lockfile, JSON.stringify(lock));
      const lockBytes = await readFile(m.lockfile);

      const error = await withClient(m, (c) =>
        c.install({ ...install, dir: m.dir, lockfile: m.lockfile }),
      ).catch((e: unknown) => e);

      expect(error).toBeInstanceOf(ClientError);
      expect(error).toMatchObject({
        code: 'LOCK_MISMATCH',
        message: expect.stringContaining(`plugins/${NAME}@1.0.0 locks linux-amd64 artifact`),
      });
      expect(await readFile(m.lockfile)).toEqual(lockBytes);
      // Another version than the locked one is no such disagreement: it is locked as any update is.
      const moved = await withClient(m, (c) =>
        c.install({ requests: [`${NAME}@1.1.0`], dir: m.dir, lockfile: m.lockfile }),
      );
      expect(moved.items[0]).toMatchObject({ version: '1.1.0' });
      expect(parseLockfile(await readFile(m.lockfile, 'utf8'), m.lockfile).plugins[NAME]).toMatchObject({
        version: '1.1.0',
        requested: '1.1.0',
      });
    },
  );

  it.each([
    ['an update', { requests: [] as string[], upgrade: true }],
    ['another spec than the one locked', { requests: [`${NAME}@^1.0.0`] }],
  ])(
    "refuses a snapshot older than the lock's floor for %s too, on a machine with no trust state of its own",
    async (_what, install) => {
      const m = await machine();
      await addRegistry(m);
      await withClient(m, (c) =>
        c.install({ requests: [`${NAME}@1.0.0`], dir: m.dir, lockfile: m.lockfile }),
      );
      const lock = JSON.parse(await readFile(m.lockfile, 'utf8')) as LockShape;
      // Made where a newer generation was seen: this registry, served as it is, is older (a mirror's replay).
      (lock.registries.test as LockShape['registries'][string]).min_generation = 1_000_000;
      await writeFile(m.lockfile, JSON.stringify(lock));
      const fresh = await machine();
      await addRegistry(fresh);

      const error = await withClient(fresh, (c) =>
        c.install({ ...install, dir: fresh.dir, lockfile: m.lockfile }),
      ).catch((e: unknown) => e);

      expect(error).toMatchObject({
        name: 'TrustError',
        code: 'SNAPSHOT_ROLLBACK',
        message: expect.stringContaining('the lowest'),
      });
      expect(JSON.parse(await readFile(m.lockfile, 'utf8'))).toEqual(lock);
      expect(await exists(fresh.dir)).toBe(false);
    },
  );

  it('installs what a lock made for another platform holds (every platform is in the lock)', async () => {
    const m = await machine();
    await addRegistry(m);
    await withClient(m, (c) => c.install({ requests: [`${NAME}@1.0.0`], dir: m.dir, lockfile: m.lockfile }));
    const mac = await withClient(m, (c) =>
      c.install({
        requests: [],
        dir: m.dir,
        lockfile: m.lockfile,
        locked: true,
        platform: { os: 'darwin', arch: 'arm64' },
      }),
    );
    expect(mac.items[0]).toMatchObject({ version: '1.0.0', platform: 'darwin-arm64' });
    expect(await readFile(join(m.dir, NAME, '1.0.0', 'darwin-arm64', NAME))).toEqual(Buffer.from(TOOL_1_MAC));
  });

  it('installs frozen (offline, from the lock and the cache) with no request at all', async () => {
    const m = await machine();
    await addRegistry(m);
    await withClient(m, (c) => c.install({ requests: [`${NAME}@1.0.0`], dir: m.dir, lockfile: m.lockfile }));
    await rm(m.dir, { recursive: true });
    requests.length = 0;
    const frozen = await withClient(
      m,
      (c) => c.install({ requests: [], dir: m.dir, lockfile: m.lockfile, locked: true }),
      { offline: true },
    );
    expect(frozen.items[0]).toMatchObject({ version: '1.0.0', unchanged: false });
    expect(requests).toEqual([]);
  });

  it('downloads again a cached artifact damaged on disk, and installs what was signed', async () => {
    const m = await machine();
    await addRegistry(m);
    await withClient(m, (c) => c.install({ requests: [`${NAME}@1.0.0`], dir: m.dir, lockfile: m.lockfile }));
    const blob = join(
      m.dirs.cache,
      'blobs',
      'sha256',
      sha256Hex(TOOL_1).slice(0, 2),
      sha256Hex(TOOL_1).slice(2),
    );
    await writeFile(blob, Buffer.alloc(TOOL_1.byteLength, 0x21)); // same size, other bytes
    await rm(m.dir, { recursive: true });
    const again = await withClient(m, (c) => c.install({ requests: [], dir: m.dir, lockfile: m.lockfile }));
    expect(again.items[0]).toMatchObject({ version: '1.0.0', unchanged: false });
    expect(await readFile(join(m.dir, NAME, '1.0.0', 'linux-amd64', NAME))).toEqual(Buffer.from(TOOL_1));
    expect(await readFile(blob)).toEqual(Buffer.from(TOOL_1));
  });

  it('keeps a new ETag for the same snapshot, so the next run is a 304 again', async () => {
    const m = await machine();
    await addRegistry(m);
    const envelope = registry.site.objects.get(SIGNED_SNAPSHOT_KEY) as StoredObject;
    registry.site.objects.set(SIGNED_SNAPSHOT_KEY, { ...envelope, etag: '"another-edge"' });
    try {
      requests.length = 0;
      await withClient(m, (c) => c.updateRegistries([]));
      await withClient(m, (c) => c.updateRegistries([]));
      expect(requests).toEqual([`GET /${SIGNED_SNAPSHOT_KEY} 200`, `GET /${SIGNED_SNAPSHOT_KEY} 304`]);
    } finally {
      registry.site.objects.set(SIGNED_SNAPSHOT_KEY, envelope);
    }
  });

  it.each([
    [
      'its trust state is damaged',
      'TRUST_STATE_INVALID',
      (m: Machine) => writeFile(join(m.dirs.data, 'trust', 'test', 'state.json'), '{'),
    ],
    [
      'its pinned key is gone',
      'REGISTRY_NOT_PINNED',
      (m: Machine) => rm(join(m.dirs.data, 'trust'), { recursive: true }),
    ],
  ])('refuses a registry whose %s (%s), naming it, and installs nothing', async (_what, code, damage) => {
    const m = await machine();
    await addRegistry(m);
    await damage(m);
    await expect(
      withClient(m, (c) => c.install({ requests: [`${NAME}@1.0.0`], dir: m.dir, lockfile: m.lockfile })),
    ).rejects.toMatchObject({ name: 'ClientError', code });
    expect(await exists(m.dir)).toBe(false);
  });

  it('refuses an install with no names and no lock file (REQUEST_INVALID)', async () => {
    const m = await machine();
    await addRegistry(m);
    await expect(
      withClient(m, (c) => c.install({ requests: [], dir: m.dir, lockfile: m.lockfile })),
    ).rejects.toMatchObject({
      name: 'ClientError',
      code: 'REQUEST_INVALID',
      message: expect.stringContaining(m.lockfile),
    });
  });

  it('refuses a lock file or installed.json that is a folder, naming it (LOCKFILE_INVALID, INSTALLED_INVALID)', async () => {
    const m = await machine();
    await addRegistry(m);
    // `--lockfile .`, say: a folder where the lock goes failed with node's EISDIR and a stack trace.
    await mkdir(m.lockfile, { recursive: true });
    for (const run of [
      (c: PlugindexClient): Promise<unknown> =>
        c.install({ requests: [`${NAME}@1.0.0`], dir: m.dir, lockfile: m.lockfile }),
      (c: PlugindexClient): Promise<unknown> => c.verifyInstalled({ dir: m.dir, lockfile: m.lockfile }),
    ])
      await expect(withClient(m, run)).rejects.toMatchObject({
        name: 'ClientError',
        code: 'LOCKFILE_INVALID',
        message: `${m.lockfile} is a folder, not a lock file: move it away`,
      });
    await rm(m.lockfile, { recursive: true });
    await mkdir(join(m.dir, 'installed.json'), { recursive: true });
    await expect(
      withClient(m, (c) => c.install({ requests: [`${NAME}@1.0.0`], dir: m.dir, lockfile: m.lockfile })),
    ).rejects.toMatchObject({
      name: 'ClientError',
      code: 'INSTALLED_INVALID',
      message: `${join(m.dir, 'installed.json')} is a folder, not the install folder's record: move it away`,
    });
    await expect(withClient(m, (c) => c.installed({ dir: m.dir }))).rejects.toMatchObject({
      code: 'INSTALLED_INVALID',
    });
  });

  it('refuses a pinned key file that is not the key its trust state records', async () => {
    const m = await machine();
    await addRegistry(m);
    await writeFile(join(m.dirs.data, 'trust', 'test', 'registry.asc'), (await testKey('another')).publicKey);
    await expect(
      withClient(m, (c) => c.install({ requests: [`${NAME}@1.0.0`], dir: m.dir, lockfile: m.lockfile })),
    ).rejects.toMatchObject({ name: 'TrustError', code: 'SNAPSHOT_WRONG_KEY' });
    expect(await exists(m.dir)).toBe(false);
  });

  it.each([
    ['its secret key', async (secret: string) => secret],
    [
      'its public key holding its secret subkey',
      async (secret: string) => (await publicPrimaryWithSecretSubkeys(secret)).armored,
    ],
  ])(
    'refuses a pinned key file holding the key its trust state records as %s (SNAPSHOT_WRONG_KEY)',
    async (_, form) => {
      // The client pins a key's public part alone: secret material there was written by another hand, and
      // whoever can read it may sign as the registry.
      const m = await machine();
      await addRegistry(m);
      await writeFile(
        join(m.dirs.data, 'trust', 'test', 'registry.asc'),
        await form(registry.registryKey.secretKey),
      );
      await expect(
        withClient(m, (c) => c.install({ requests: [`${NAME}@1.0.0`], dir: m.dir, lockfile: m.lockfile })),
      ).rejects.toMatchObject({
        name: 'TrustError',
        code: 'SNAPSHOT_WRONG_KEY',
        message: expect.stringContaining(
          `holds key ${registry.registryKey.fingerprint} with its secret key material`,
        ),
      });
      expect(await exists(m.dir)).toBe(false);
    },
  );

  // A v6 key's fingerprint (64 hex digits) is no registry key's config.json can name: the registry's key is v4.
  it.each(UNTRUSTED_KEYS.filter((key) => key.fingerprint.length === 40))(
    'refuses $label pinned before such keys were refused (PINNED_KEY_UNTRUSTED), naming the registry and how to pin again, until it is',
    async (key) => {
      // Prepare: the registry pinned, installed from, then its pin written as a client that took any key
      // left it (`registry add` refuses such a key now): the key file, and the fingerprint naming it.
      const m = await machine();
      await addRegistry(m);
      await withClient(m, (c) =>
        c.install({ requests: [`${NAME}@1.0.0`], dir: m.dir, lockfile: m.lockfile }),
      );
      const trustDir = join(m.dirs.data, 'trust', 'test');
      const state = JSON.parse(await readFile(join(trustDir, 'state.json'), 'utf8'));
      await writeFile(
        join(trustDir, 'state.json'),
        JSON.stringify({ ...state, fingerprint: key.fingerprint }),
      );
      await writeFile(join(trustDir, 'registry.asc'), key.publicKey);
      const configFile = join(m.dirs.config, 'config.json');
      const config = JSON.parse(await readFile(configFile, 'utf8'));
      config.registries[0].key_fingerprint = key.fingerprint;
      await writeFile(configFile, JSON.stringify(config));
      const refusal = {
        name: 'ClientError',
        code: 'PINNED_KEY_UNTRUSTED',
        message: expect.stringMatching(
          new RegExp(
            `registry "test" .*${key.fingerprint}, cannot be trusted: .*${key.reason}.*\\\`plugindex registry add --force test URL --key FILE\\\``,
          ),
        ),
      };

      // Act, Assess: an install and an update each refuse it, before its snapshot is read by it.
      await expect(
        withClient(m, (c) => c.install({ requests: [`${NAME}@1.1.0`], dir: m.dir, lockfile: m.lockfile })),
      ).rejects.toMatchObject(refusal);
      const [update] = await withClient(m, (c) => c.updateRegistries([]));
      expect(update?.error).toMatchObject(refusal);
      expect(
        Object.keys((await withClient(m, (c) => c.installed({ dir: m.dir }))).plugins[NAME]?.versions ?? {}),
      ).toEqual(['1.0.0']);

      // The registry's key pinned again, as the refusal says: installs go on.
      await withClient(m, (c) =>
        c.addRegistry({
          name: 'test',
          url: base,
          pin: { armored: registry.registryKey.publicKey },
          force: true,
        }),
      );
      const again = await withClient(m, (c) =>
        c.install({ requests: [`${NAME}@1.1.0`], dir: m.dir, lockfile: m.lockfile }),
      );
      expect(again.items[0]?.version).toBe('1.1.0');
    },
  );

  it('lets two installs of the same plugin into one folder both finish, each recorded', async () => {
    const m = await machine();
    await addRegistry(m);
    const lockA = join(root, 'concurrent-a.lock');
    const lockB = join(root, 'concurrent-b.lock');
    const [a, b] = await Promise.all([
      withClient(m, (c) => c.install({ requests: [`${NAME}@1.0.0`], dir: m.dir, lockfile: lockA })),
      withClient(m, (c) => c.install({ requests: [`${NAME}@1.1.0`], dir: m.dir, lockfile: lockB })),
    ]);
    expect([a.items[0]?.version, b.items[0]?.version]).toEqual(['1.0.0', '1.1.0']);
    const installed = await withClient(m, (c) => c.installed({ dir: m.dir }));
    expect(Object.keys(installed.plugins[NAME]?.versions ?? {}).sort()).toEqual(['1.0.0', '1.1.0']);
  });
});

/** The cache's file for an artifact of these bytes (`ContentCache.blobPath`). */
function blobOf(m: Machine, bytes: Uint8Array): string {
  const digest = sha256Hex(bytes);
  return join(m.dirs.cache, 'blobs', 'sha256', digest.slice(0, 2), digest.slice(2));
}

/**
 * A client of m whose artifact downloads go through `download` (given the real fetcher's, bound to it); every
 * other call reaches the real fetcher. A test hook, over real HTTP.
 */
function clientHooking(
  m: Machine,
  download: (
    real: Fetcher['download'],
    ...request: Parameters<Fetcher['download']>
  ) => ReturnType<Fetcher['download']>,
): PlugindexClient {
  const real = createHttpFetcher({ env: {}, retries: 0 });
  const hooked: Fetcher['download'] = (endpoint, request) =>
    download(real.download.bind(real), endpoint, request);
  // Every other call to the real fetcher, bound to it (it keeps private fields).
  const fetcher = new Proxy(real, {
    get: (target, key) => {
      if (key === 'download') return hooked;
      const value = Reflect.get(target, key) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return createClient({
    dirs: m.dirs,
    fetcher,
    env: {},
    clock: fixedClock(NOW),
    platform: LINUX,
    offline: false,
    freshForMs: 0,
  });
}

/** second-tool@0.1.0 in m's cache (installed into a folder of its own), then damaged in place at its size. */
async function damagedSecondTool(m: Machine, scratch: string): Promise<string> {
  await withClient(m, (c) =>
    c.install({
      requests: ['second-tool@0.1.0'],
      dir: join(root, scratch),
      lockfile: join(root, `${scratch}.lock`),
    }),
  );
  const placedTool = await readFile(
    join(root, scratch, 'second-tool', '0.1.0', 'linux-amd64', 'second-tool'),
  );
  const blob = blobOf(m, placedTool);
  await writeFile(blob, Buffer.alloc(placedTool.byteLength, 0x78));
  return blob;
}

describe('when an update moves a plugin installed for several platforms', () => {
  /** `name` at `version`, hosted for every platform given, published in a batch of its own. */
  async function publishFor(
    name: string,
    version: string,
    platforms: readonly (readonly [string, string])[],
  ) {
    await processSubmissions(
      registry.context,
      await registry.submit(
        await makeBundle({
          manifest: validManifest({ name, version }),
          artifacts: platforms.map(([os, arch]) => ({
            os,
            arch,
            name,
            body: encode(`#!/bin/sh\necho ${name} ${version} ${os}/${arch}\n`),
          })),
        }),
      ),
    );
  }
  const ARM = { os: 'linux', arch: 'arm64' } as const;
  const BOTH = [
    ['linux', 'amd64'],
    ['linux', 'arm64'],
  ] as const;

  it('places the new version for every platform the old one was installed for, named or not', async () => {
    await publishFor('fleet-tool', '1.0.0', BOTH);
    const m = await machine();
    await addRegistry(m);
    const install = (platform?: typeof ARM) =>
      withClient(m, (c) =>
        c.install({
          requests: ['fleet-tool@^1'],
          dir: m.dir,
          lockfile: m.lockfile,
          ...(platform ? { platform } : {}),
        }),
      );
    await install();
    await install(ARM);
    await publishFor('fleet-tool', '1.1.0', BOTH);
    for (const requests of [['fleet-tool'], []]) {
      const updated = await withClient(m, (c) =>
        c.install({ requests, upgrade: true, dir: m.dir, lockfile: m.lockfile }),
      );
      expect(updated.items.map((i) => [i.name, i.version, Object.keys(i.paths)])).toEqual([
        ['fleet-tool', '1.1.0', ['linux-amd64', 'linux-arm64']],
      ]);
    }
    const installed = await withClient(m, (c) => c.installed({ dir: m.dir }));
    expect(Object.keys(installed.plugins['fleet-tool']?.versions ?? {})).toEqual(['1.1.0']);
    expect(Object.keys(installed.plugins['fleet-tool']?.versions['1.1.0']?.artifacts ?? {})).toEqual([
      'linux-amd64',
      'linux-arm64',
    ]);
    expect(await readFile(join(m.dir, 'fleet-tool', '1.1.0', 'linux-arm64', 'fleet-tool'), 'utf8')).toContain(
      'fleet-tool 1.1.0 linux/arm64',
    );
  });

  it('refuses a new version without a build the old one is installed for, saying why that platform, removing nothing', async () => {
    await publishFor('shrinking-tool', '1.0.0', BOTH);
    const m = await machine();
    await addRegistry(m);
    for (const platform of [LINUX, ARM])
      await withClient(m, (c) =>
        c.install({ requests: ['shrinking-tool@^1'], dir: m.dir, lockfile: m.lockfile, platform }),
      );
    await publishFor('shrinking-tool', '1.1.0', [['linux', 'amd64']]);
    const error = await withClient(m, (c) =>
      c.install({ requests: ['shrinking-tool'], upgrade: true, dir: m.dir, lockfile: m.lockfile }),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ClientError);
    expect(error).toMatchObject({
      code: 'NO_ARTIFACT_FOR_PLATFORM',
      message: expect.stringContaining(
        `shrinking-tool@1.1.0 has no artifact for linux/arm64; it has linux/amd64 (shrinking-tool@1.0.0 is installed for linux/arm64 in ${m.dir}, and an update naming no platform places the new version for each platform the old one is installed for:`,
      ),
    });
    expect(await exists(join(m.dir, 'shrinking-tool', '1.0.0', 'linux-arm64', 'shrinking-tool'))).toBe(true);
    expect(await exists(join(m.dir, 'shrinking-tool', '1.1.0'))).toBe(false);
    // What it names: one platform named updates it for that one alone, the old version's others going with it.
    expect((error as Error).message).toContain(
      '`plugindex update shrinking-tool --platform OS/ARCH` (one of those it has, repeated for each to keep) updates it for those platforms alone, removing shrinking-tool@1.0.0 with its other builds; or leave it at 1.0.0, naming the plugins to update',
    );
    const named = await withClient(m, (c) =>
      c.install({
        requests: ['shrinking-tool'],
        upgrade: true,
        dir: m.dir,
        lockfile: m.lockfile,
        platform: LINUX,
      }),
    );
    expect(named.items.map((i) => [i.version, Object.keys(i.paths)])).toEqual([['1.1.0', ['linux-amd64']]]);
    const installed = await withClient(m, (c) => c.installed({ dir: m.dir }));
    expect(Object.keys(installed.plugins['shrinking-tool']?.versions ?? {})).toEqual(['1.1.0']);
  });

  it('downloads and places a platform named twice once', async () => {
    // installed.json and the item's paths are keyed by platform, so they merge a second placing: the
    // downloads are what tell one placing from two (without namedPlatforms taking each once, two GETs).
    await publishFor('twice-tool', '1.0.0', BOTH);
    const m = await machine();
    await addRegistry(m);
    requests.length = 0;
    const installed = await withClient(m, (c) =>
      c.install({ requests: ['twice-tool@^1'], dir: m.dir, lockfile: m.lockfile, platforms: [LINUX, LINUX] }),
    );
    expect(installed.items.map((i) => [i.version, Object.keys(i.paths)])).toEqual([
      ['1.0.0', ['linux-amd64']],
    ]);
    expect(requests.filter((r) => r.includes('/artifacts/'))).toEqual([
      'GET /plugins/twice-tool/1.0.0/artifacts/linux-amd64/twice-tool 200',
    ]);
  });

  it('places each platform named (platforms), the version resolved for all, an update refused for one it lacks', async () => {
    await publishFor('several-tool', '1.0.0', BOTH);
    const m = await machine();
    await addRegistry(m);
    const installed = await withClient(m, (c) =>
      c.install({
        requests: ['several-tool@^1'],
        dir: m.dir,
        lockfile: m.lockfile,
        platforms: [LINUX, ARM],
      }),
    );
    expect(installed.items.map((i) => [i.version, Object.keys(i.paths)])).toEqual([
      ['1.0.0', ['linux-amd64', 'linux-arm64']],
    ]);
    expect(
      Object.keys(JSON.parse(await readFile(m.lockfile, 'utf8')).plugins['several-tool'].artifacts),
    ).toEqual(['linux-amd64', 'linux-arm64']);
    // A new version without one of them: refused naming it, nothing removed.
    await publishFor('several-tool', '1.1.0', [['linux', 'amd64']]);
    const update = (platforms: readonly (typeof LINUX | typeof ARM)[]) =>
      withClient(m, (c) =>
        c.install({ requests: ['several-tool'], upgrade: true, dir: m.dir, lockfile: m.lockfile, platforms }),
      );
    const error = await update([LINUX, ARM]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ClientError);
    expect(error).toMatchObject({
      code: 'NO_ARTIFACT_FOR_PLATFORM',
      message: expect.stringContaining('several-tool@1.1.0 has no artifact for linux/arm64'),
    });
    expect(await exists(join(m.dir, 'several-tool', '1.0.0', 'linux-arm64', 'several-tool'))).toBe(true);
    // Both named, both placed at the new version.
    await publishFor('several-tool', '1.2.0', BOTH);
    const updated = await update([ARM, LINUX]);
    expect(updated.items.map((i) => [i.version, Object.keys(i.paths).sort()])).toEqual([
      ['1.2.0', ['linux-amd64', 'linux-arm64']],
    ]);
    const after = await withClient(m, (c) => c.installed({ dir: m.dir }));
    expect(Object.keys(after.plugins['several-tool']?.versions ?? {})).toEqual(['1.2.0']);
    expect(Object.keys(after.plugins['several-tool']?.versions['1.2.0']?.artifacts ?? {}).sort()).toEqual([
      'linux-amd64',
      'linux-arm64',
    ]);
  });

  it('keeps a folder installed for another platform only for that platform, placing none of the host', async () => {
    await publishFor('cross-tool', '1.0.0', BOTH);
    const m = await machine();
    await addRegistry(m);
    await withClient(m, (c) =>
      c.install({ requests: ['cross-tool@^1'], dir: m.dir, lockfile: m.lockfile, platform: ARM }),
    );
    await publishFor('cross-tool', '1.1.0', BOTH);
    const updated = await withClient(m, (c) =>
      c.install({ requests: ['cross-tool'], upgrade: true, dir: m.dir, lockfile: m.lockfile }),
    );
    expect(updated.items.map((i) => [i.version, Object.keys(i.paths)])).toEqual([['1.1.0', ['linux-arm64']]]);
    expect(await exists(join(m.dir, 'cross-tool', '1.1.0', 'linux-amd64'))).toBe(false);
    // A platform named is what the update places, as before.
    const named = await withClient(m, (c) =>
      c.install({
        requests: ['cross-tool'],
        upgrade: true,
        dir: m.dir,
        lockfile: m.lockfile,
        platform: LINUX,
      }),
    );
    expect(named.items.map((i) => Object.keys(i.paths))).toEqual([['linux-amd64']]);
  });
});

describe('when two installs place into one folder at once', () => {
  it('downloads a damaged cached artifact again holding nothing, and one failing part way never removes what the other recorded', async () => {
    const m = await machine();
    await addRegistry(m);
    // Prepare: second-tool's artifact cached, then damaged: the next install that places it finds it so
    // after demo-plugin's files are in place, and downloads it again.
    await damagedSecondTool(m, 'concurrent-scratch');
    // That download waits for the test, then breaks off: install A fails part way.
    let reached!: () => void;
    const atGate = new Promise<void>((resolve) => {
      reached = resolve;
    });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const clientA = clientHooking(m, async (real, endpoint, request) => {
      if (request.url.includes('/second-tool/')) {
        reached();
        await gate;
        throw new ClientError('FETCH_FAILED', 'the test broke this download off');
      }
      return real(endpoint, request);
    });
    const a = clientA
      .install({
        requests: [`${NAME}@1.0.0`, 'second-tool@0.1.0'],
        dir: m.dir,
        lockfile: join(root, 'concurrent-fail-a.lock'),
      })
      .finally(() => clientA.close());
    const settledA = a.then(
      () => undefined,
      (error: unknown) => error,
    );
    await atGate;

    // Act: while A's download waits (a slow registry), B installs into the folder.
    const heldByA = await exists(join(m.dir, 'installed.json.lock'));
    const b = installAgain(m, 'concurrent-fail-b.lock');
    // Held during the download (as before), B would wait for A's registry, and fail INSTALL_BUSY after 30 s.
    if (!heldByA) await b;
    release();

    // Assess: A fails, B installed, and what installed.json records is in place.
    expect(await settledA).toMatchObject({ name: 'ClientError', code: 'FETCH_FAILED' });
    await b;
    expect(await verifyFolder(m)).toEqual([{ name: NAME, version: '1.0.0', ok: true }]);
    expect(heldByA).toBe(false);
  });

  it('downloads again a cached artifact deleted by `remove --clean` elsewhere after the install found it', async () => {
    const m = await machine();
    await addRegistry(m);
    // Prepare: demo-plugin@1.0.0 installed in another folder (its artifact cached), and second-tool's cached
    // artifact damaged: placing second-tool first, A fetches it again, and that download's hook runs a real
    // `remove demo-plugin --clean` in the other folder, which deletes demo-plugin's blob A found cached.
    const other = join(root, 'clean-race-other');
    await withClient(m, (c) =>
      c.install({ requests: [`${NAME}@1.0.0`], dir: other, lockfile: join(root, 'clean-race-other.lock') }),
    );
    await damagedSecondTool(m, 'clean-race-scratch');
    const blob = blobOf(m, TOOL_1);
    let blobAfterClean: boolean | undefined;
    const clientA = clientHooking(m, async (real, endpoint, request) => {
      if (request.url.includes('/second-tool/') && blobAfterClean === undefined) {
        await withClient(m, (c) => c.remove(NAME, { dir: other, clean: true }));
        blobAfterClean = await exists(blob);
      }
      return real(endpoint, request);
    });

    // Act
    const installed = await clientA
      .install({
        requests: ['second-tool@0.1.0', `${NAME}@1.0.0`],
        dir: m.dir,
        lockfile: join(root, 'clean-race-a.lock'),
      })
      .finally(() => clientA.close());

    // Assess: the blob was gone when A came to place it; A fetched it again and placed what was signed.
    expect(blobAfterClean).toBe(false);
    expect(installed.items.map((i) => i.name)).toEqual(['second-tool', NAME]);
    expect(await readFile(join(m.dir, NAME, '1.0.0', 'linux-amd64', NAME))).toEqual(Buffer.from(TOOL_1));
    expect(await readFile(blob)).toEqual(Buffer.from(TOOL_1));
    expect(await verifyFolder(m)).toEqual([
      { name: NAME, version: '1.0.0', ok: true },
      { name: 'second-tool', version: '0.1.0', ok: true },
    ]);
  });

  it('refuses an artifact it downloaded that is deleted from the cache again before it is placed, CACHE_BLOB_GONE', async () => {
    const m = await machine();
    await addRegistry(m);
    // Prepare: demo-plugin's cached artifact and second-tool's both damaged. A fetches demo-plugin's again,
    // places it, finds second-tool's damaged, and the download of that deletes demo-plugin's new blob
    // (rm, standing in for a second `remove --clean`): the placing that follows finds it gone again.
    await withClient(m, (c) =>
      c.install({
        requests: [`${NAME}@1.0.0`],
        dir: join(root, 'gone-twice-other'),
        lockfile: join(root, 'gone-twice-other.lock'),
      }),
    );
    const blob = blobOf(m, TOOL_1);
    await writeFile(blob, Buffer.alloc(TOOL_1.byteLength, 0x21));
    await damagedSecondTool(m, 'gone-twice-scratch');
    const clientA = clientHooking(m, async (real, endpoint, request) => {
      if (request.url.includes('/second-tool/')) await rm(blob);
      return real(endpoint, request);
    });

    // Act
    const installing = clientA
      .install({
        requests: [`${NAME}@1.0.0`, 'second-tool@0.1.0'],
        dir: m.dir,
        lockfile: join(root, 'gone-twice-a.lock'),
      })
      .finally(() => clientA.close());

    // Assess: refused, nothing placed or recorded.
    await expect(installing).rejects.toThrow(ClientError);
    await expect(installing).rejects.toMatchObject({ code: 'CACHE_BLOB_GONE' });
    expect(await exists(join(m.dir, NAME, '1.0.0'))).toBe(false);
    expect(await exists(join(m.dir, 'second-tool', '0.1.0'))).toBe(false);
    expect(await verifyFolder(m)).toEqual([]);
  });
});

describe('when two installs into other folders find one cached artifact damaged', () => {
  it('each downloads it again over the damaged one, and neither deletes the copy the other downloaded', async () => {
    const m = await machine();
    await addRegistry(m);
    // Prepare: second-tool's cached artifact damaged. X (m.dir) finds it so first and is held (a test hook
    // on ContentCache.removeBlob holds its first call; X's download of it holds too). Y (another folder)
    // then finds it damaged, downloads it again, and is held by the test on its folder's lock once its copy
    // is in the cache. X then goes on; Y, let go, places what is in the cache.
    const blob = await damagedSecondTool(m, 'damaged-twice-scratch');
    const good = await readFile(
      join(root, 'damaged-twice-scratch', 'second-tool', '0.1.0', 'linux-amd64', 'second-tool'),
    );
    const gate = () => {
      let open!: () => void;
      const opened = new Promise<void>((resolve) => {
        open = resolve;
      });
      return { open, opened };
    };
    const xRemoving = gate();
    const removeGate = gate();
    const removeBlob = ContentCache.prototype.removeBlob;
    let removes = 0;
    const spy = vi.spyOn(ContentCache.prototype, 'removeBlob').mockImplementation(async function (
      this: ContentCache,
      sha256: string,
    ) {
      removes += 1;
      if (removes === 1) {
        xRemoving.open();
        await removeGate.opened;
      }
      return removeBlob.call(this, sha256);
    });
    const xDownloading = gate();
    const xGate = gate();
    const clientX = clientHooking(m, async (real, endpoint, request) => {
      if (request.url.includes('/second-tool/')) {
        xDownloading.open();
        await xGate.opened;
      }
      return real(endpoint, request);
    });
    const folderY = join(root, 'damaged-twice-y');
    const yHeld = gate();
    const yGate = gate();
    let yLock: Promise<void> | undefined;
    const clientY = clientHooking(m, async (real, endpoint, request) => {
      if (request.url.includes('/second-tool/') && yLock === undefined) {
        yLock = new InstallTree(folderY).hold(async () => {
          yHeld.open();
          await yGate.opened;
        });
        await yHeld.opened;
      }
      return real(endpoint, request);
    });
    try {
      // Act: X finds the artifact damaged; Y finds it so too, and downloads it again.
      const x = clientX
        .install({
          requests: ['second-tool@0.1.0'],
          dir: m.dir,
          lockfile: join(root, 'damaged-twice-x.lock'),
        })
        .finally(() => clientX.close());
      const settledX = x.then(
        () => undefined,
        (error: unknown) => error,
      );
      await Promise.race([xRemoving.opened, xDownloading.opened]);
      const y = clientY
        .install({
          requests: ['second-tool@0.1.0'],
          dir: folderY,
          lockfile: join(root, 'damaged-twice-y.lock'),
        })
        .finally(() => clientY.close());
      const settledY = y.then(
        () => undefined,
        (error: unknown) => error,
      );
      // Y's copy in the cache, Y waiting on its folder: X goes on to its download, then Y places.
      for (let i = 0; i < 1000 && !(await readFile(blob).catch(() => undefined))?.equals(good); i++)
        await new Promise((resolve) => setTimeout(resolve, 10));
      removeGate.open();
      await xDownloading.opened;
      yGate.open();
      const yError = await settledY;
      xGate.open();
      const xError = await settledX;
      await yLock;

      // Assess: both installed what was signed.
      expect(yError).toBeUndefined();
      expect(xError).toBeUndefined();
      expect(await readFile(join(folderY, 'second-tool', '0.1.0', 'linux-amd64', 'second-tool'))).toEqual(
        good,
      );
      expect(await readFile(join(m.dir, 'second-tool', '0.1.0', 'linux-amd64', 'second-tool'))).toEqual(good);
      expect(await readFile(blob)).toEqual(good);
    } finally {
      spy.mockRestore();
      removeGate.open();
      xGate.open();
      yGate.open();
    }
  });
});

describe('when a remove and an install meet in one folder', () => {
  it('removes the version folder while holding the folder, so an install landing meanwhile keeps its files', async () => {
    const m = await machine();
    await addRegistry(m);
    await withClient(m, (c) => c.install({ requests: [`${NAME}@1.0.0`], dir: m.dir, lockfile: m.lockfile }));
    // A tree whose removal of a version folder first starts install B of that very version: B lands
    // between remove's record and its deletion unless the folder is held across both.
    let heldAtRemoval: boolean | undefined;
    let b: Promise<unknown> | undefined;
    class Interleaving extends InstallTree {
      override async removeVersion(name: string, version: string): Promise<void> {
        heldAtRemoval = await exists(join(m.dir, 'installed.json.lock'));
        b = installAgain(m, 'remove-race-b.lock');
        // Unheld, B records demo-plugin@1.0.0 (its files still in place) and the removal then deletes them.
        if (!heldAtRemoval) await b;
        await super.removeVersion(name, version);
      }
    }
    const tree = new Interleaving(m.dir);
    // removeInstalled reads only the tree from its context (and the cache, with `clean`).
    const ctx = { tree: () => tree } as unknown as ClientContext;
    expect(await removeInstalled(ctx, NAME, { dir: m.dir })).toEqual(['1.0.0']);
    await b;

    // Whatever the order, what installed.json records is in place.
    expect(await verifyFolder(m)).toEqual([{ name: NAME, version: '1.0.0', ok: true }]);
    expect(heldAtRemoval).toBe(true);
  });
});

describe('when the installed tree is managed', () => {
  it('says, verifying a version of a registry removed since, that it is not configured here and how to add it', async () => {
    const m = await machine();
    await addRegistry(m);
    await withClient(m, (c) => c.install({ requests: [`${NAME}@1.0.0`], dir: m.dir, lockfile: m.lockfile }));
    await withClient(m, (c) => c.removeRegistry('test'));
    const findings = await withClient(m, (c) => c.verifyInstalled({ dir: m.dir, lockfile: m.lockfile }));
    expect(findings).toMatchObject([
      {
        name: NAME,
        version: '1.0.0',
        ok: false,
        code: 'SNAPSHOT_WRONG_KEY',
        message: expect.stringContaining(
          "test is no registry configured here (removed since, or a plugin set's: `plugindex verify -c FILE` checks what a set installed), so no key here checks its signatures: `plugindex registry add test URL --key FILE` adds it again",
        ),
      },
    ]);
    // Where it named no key at all: "pinned to nothing".
    expect(findings[0]?.message).not.toContain('pinned to nothing');
  });

  it('quotes the folder and the lock a verify remedy names as a shell reads them (a space, a quote)', async () => {
    const m = await machine();
    await addRegistry(m);
    const dir = join(m.dir, '..', "team's plugins");
    const lockfile = join(m.dir, '..', 'team lock.json');
    await withClient(m, (c) => c.install({ requests: [`${NAME}@1.0.0`], dir, lockfile }));
    await writeFile(join(dir, NAME, '1.0.0', 'linux-amd64', NAME), 'tampered');
    const [modified] = await withClient(m, (c) =>
      c.verifyInstalled({ dir, lockfile, namedLockfile: lockfile }),
    );
    expect(modified).toMatchObject({ code: 'INSTALLED_MODIFIED' });
    // Unquoted, the command a user pastes installs into another folder than the one refused.
    expect(modified?.message).toContain(
      `\`plugindex install ${NAME}@1.0.0 --dir '${dir.replace("'", "'\\''")}' --lockfile '${lockfile}'\` places it again`,
    );
  });

  it('lists, disables, verifies, detects a changed file, and removes', async () => {
    const m = await machine();
    await addRegistry(m);
    await withClient(m, (c) => c.install({ requests: [`${NAME}@1.0.0`], dir: m.dir, lockfile: m.lockfile }));
    await withClient(m, (c) => c.setEnabled(NAME, false, { dir: m.dir }));
    const listed = await withClient(m, (c) => c.list({ dir: m.dir }));
    expect(listed).toMatchObject([
      { name: NAME, current: '1.0.0', enabled: false, platforms: ['linux-amd64'] },
    ]);
    const outdated = await withClient(m, (c) => c.list({ dir: m.dir, outdated: true, lockfile: m.lockfile }));
    expect(outdated[0]).toMatchObject({ latest: '1.1.0', wanted: '1.0.0' });

    expect(await withClient(m, (c) => c.verifyInstalled({ dir: m.dir, lockfile: m.lockfile }))).toEqual([
      { name: NAME, version: '1.0.0', ok: true },
    ]);
    const file = join(m.dir, NAME, '1.0.0', 'linux-amd64', NAME);
    await writeFile(file, 'tampered');
    const [modified] = await withClient(m, (c) => c.verifyInstalled({ dir: m.dir, lockfile: m.lockfile }));
    expect(modified).toMatchObject({ name: NAME, ok: false, code: 'INSTALLED_MODIFIED' });
    // What changed, and what puts it back: not "PATH: (8 bytes), installed as …", with no verb nor remedy.
    expect(modified?.message).toContain(
      `${file} was changed since it was installed (${NAME}@1.0.0 linux-amd64)`,
    );
    expect(modified?.message).toContain('now 8 bytes');
    expect(modified?.message).toContain(`\`plugindex install ${NAME}@1.0.0 --dir ${m.dir}\` places it again`);

    expect(
      await withClient(m, (c) => c.remove(NAME, { dir: m.dir, lockfile: m.lockfile, clean: true })),
    ).toEqual(['1.0.0']);
    expect(await exists(join(m.dir, NAME))).toBe(false);
    expect(parseLockfile(await readFile(m.lockfile, 'utf8'), m.lockfile).plugins).toEqual({});
    await expect(withClient(m, (c) => c.setEnabled(NAME, true, { dir: m.dir }))).rejects.toMatchObject({
      code: 'NOT_INSTALLED',
    });
  });

  it.skipIf(process.platform === 'win32')(
    'places again an installed file others may write, that another user owns, or that is not executable, and verify names it',
    async () => {
      const m = await machine();
      await addRegistry(m);
      const install = () =>
        withClient(m, (c) => c.install({ requests: [`${NAME}@1.0.0`], dir: m.dir, lockfile: m.lockfile }));
      await install();
      const file = join(m.dir, NAME, '1.0.0', 'linux-amd64', NAME);
      const manifest = join(m.dir, NAME, '1.0.0', 'manifest.json');
      // Each the right bytes, yet no file an install placed: a host cannot run the first, and anyone (or
      // the file's owner, who could make it so) may rewrite the others after the check, as with a link.
      type Damage = readonly [string, string, () => Promise<void>];
      const damages: Damage[] = [
        ['not executable', file, () => chmod(file, 0o644)],
        ['writable by others', file, () => chmod(file, 0o757)],
        ['writable by its group', file, () => chmod(file, 0o775)],
        ['a manifest writable by others', manifest, () => chmod(manifest, 0o666)],
        ...(process.getuid?.() === 0
          ? [['owned by another user', file, () => chown(file, 65534, 65534)] as Damage]
          : []),
      ];
      for (const [what, path, damage] of damages) {
        await damage();
        expect(
          await withClient(m, (c) => c.verifyInstalled({ dir: m.dir, lockfile: m.lockfile })),
          what,
        ).toMatchObject([{ name: NAME, ok: false, code: 'INSTALLED_MODIFIED' }]);
        expect((await install()).items[0]?.unchanged, what).toBe(false);
        const placed = await stat(path);
        expect(placed.mode & 0o022, what).toBe(0);
        expect(placed.uid, what).toBe(process.getuid?.());
        if (path === file) expect(placed.mode & 0o100, what).toBe(0o100);
        expect(
          await withClient(m, (c) => c.verifyInstalled({ dir: m.dir, lockfile: m.lockfile })),
          what,
        ).toEqual([{ name: NAME, version: '1.0.0', ok: true }]);
      }
    },
  );

  it('places again, without reading it, an installed file grown to a sparse terabyte, and verify names it', async () => {
    const m = await machine();
    await addRegistry(m);
    const install = () =>
      withClient(m, (c) => c.install({ requests: [`${NAME}@1.0.0`], dir: m.dir, lockfile: m.lockfile }));
    await install();
    const file = join(m.dir, NAME, '1.0.0', 'linux-amd64', NAME);
    await truncate(file, 2 ** 40);

    expect(await withClient(m, (c) => c.verifyInstalled({ dir: m.dir, lockfile: m.lockfile }))).toMatchObject(
      [{ name: NAME, ok: false, code: 'INSTALLED_MODIFIED' }],
    );
    expect((await install()).items[0]?.unchanged).toBe(false);
    expect(await readFile(file)).toEqual(Buffer.from(TOOL_1));
  }, 20_000);

  it('refuses an installed.json whose artifact digest is a path, removing nothing outside the cache (remove --clean)', async () => {
    // Prepare: a checked-out install folder whose installed.json was written by hand: the "digest" of an
    // artifact leads from <cache>/blobs/sha256/ to a file of the user's.
    const m = await machine();
    const victim = join(m.dirs.cache, '..', 'notes.txt');
    await mkdir(m.dirs.cache, { recursive: true });
    await writeFile(victim, 'keep me');
    const digest = '../../../notes.txt';
    await mkdir(m.dir, { recursive: true });
    await writeFile(
      join(m.dir, 'installed.json'),
      JSON.stringify({
        schema: 'plugindex/installed/v1',
        plugins: {
          [NAME]: {
            enabled: true,
            current: '1.0.0',
            versions: {
              '1.0.0': {
                registry: 'test',
                registry_key: 'A'.repeat(40),
                manifest_sha256: 'a'.repeat(64),
                publisher: 'B'.repeat(40),
                installed: NOW.toISOString(),
                artifacts: {
                  'linux-amd64': { path: `${NAME}/1.0.0/linux-amd64/${NAME}`, sha256: digest, size: 7 },
                },
              },
            },
          },
        },
      }),
    );

    // Act
    const removing = withClient(m, (c) => c.remove(NAME, { dir: m.dir, clean: true }));

    // Assess
    await expect(removing).rejects.toMatchObject({ name: 'ClientError', code: 'INSTALLED_INVALID' });
    expect(await readFile(victim, 'utf8')).toBe('keep me');
  });

  it('searches and describes what the registries sign', async () => {
    const m = await machine();
    await addRegistry(m);
    const hits = await withClient(m, (c) => c.search({ terms: ['demo-plug'] }));
    expect(hits.map((h) => [h.registry, h.entry.name, h.match])).toEqual([['test', NAME, 'prefix']]);
    expect(await withClient(m, (c) => c.search({ terms: ['no-such-thing'] }))).toEqual([]);
    const info = await withClient(m, (c) => c.info(`${NAME}@^1`));
    expect(info.document.versions.map((v) => v.version)).toEqual(['1.1.0', '1.0.0']);
    expect(info.resolution?.version.version).toBe('1.1.0');
  });
});

/** Replaces a published object's bytes for one test, restoring it after. */
async function tampered<T>(
  key: string,
  edit: (bytes: Uint8Array) => Uint8Array,
  body: () => Promise<T>,
): Promise<T> {
  const original = registry.site.objects.get(key) as StoredObject;
  // A new ETag with the new bytes, as a server (or an attacker) serving them would give.
  registry.site.objects.set(key, { ...original, body: edit(original.body), etag: `"tampered-${key}"` });
  try {
    return await body();
  } finally {
    registry.site.objects.set(key, original);
  }
}

interface Envelope {
  readonly schema: string;
  readonly snapshot: string;
  readonly signature: string;
}

/** Serves another snapshot.signed.json (a new ETag with it) for one test, restoring it after. */
async function withEnvelope<T>(
  edit: (envelope: Envelope) => Envelope | Promise<Envelope>,
  body: () => Promise<T>,
): Promise<T> {
  const original = registry.site.objects.get(SIGNED_SNAPSHOT_KEY) as StoredObject;
  const edited = encode(
    JSON.stringify(await edit(JSON.parse(new TextDecoder().decode(original.body)) as Envelope)),
  );
  registry.site.objects.set(SIGNED_SNAPSHOT_KEY, {
    ...original,
    body: edited,
    size: edited.byteLength,
    etag: '"edited"',
  });
  try {
    return await body();
  } finally {
    registry.site.objects.set(SIGNED_SNAPSHOT_KEY, original);
  }
}

const flipLast = (bytes: Uint8Array): Uint8Array => {
  const copy = new Uint8Array(bytes);
  copy[copy.length - 2] = (copy[copy.length - 2] as number) ^ 1;
  return copy;
};

describe('when what is served was tampered with', () => {
  let m: Machine;
  beforeEach(async () => {
    m = await machine();
    await addRegistry(m);
  });

  const install = (options: { clock?: Date } = {}) =>
    withClient(
      m,
      (c) => c.install({ requests: [`${NAME}@1.0.0`], dir: m.dir, lockfile: m.lockfile }),
      options,
    );

  async function expectNothingInstalledThenHonest(): Promise<void> {
    expect(await exists(m.dir)).toBe(false);
    expect(await exists(m.lockfile)).toBe(false);
    const honest = await install();
    expect(honest.items[0]).toMatchObject({ version: '1.0.0' });
  }

  it.each([
    ['the bin', () => binKey(binOf(NAME)), 'DOCUMENT_MISMATCH'],
    ['the plugin document', () => pluginDocumentKey(NAME), 'DOCUMENT_MISMATCH'],
    ['the manifest', () => manifestKey(NAME, '1.0.0'), 'DOCUMENT_MISMATCH'],
    ['the artifact', () => `plugins/${NAME}/1.0.0/artifacts/linux-amd64/${NAME}`, 'ARTIFACT_MISMATCH'],
    ['the signed snapshot (no longer JSON)', () => SIGNED_SNAPSHOT_KEY, 'SNAPSHOT_MALFORMED'],
  ])(
    'refuses a modified %s, installs nothing, and the next honest install works',
    async (_what, key, code) => {
      // A fresh cache each time: the bytes come from the server.
      await tampered(key(), flipLast, async () => {
        await expect(install()).rejects.toMatchObject({ name: 'TrustError', code });
      });
      await expectNothingInstalledThenHonest();
    },
  );

  it('refuses, frozen on a clean cache, a manifest whose signature beside it is not the registry key\u2019s, and places nothing', async () => {
    await install();
    await rm(m.dir, { recursive: true });
    await rm(m.dirs.cache, { recursive: true });
    // A mirror (or the host) serving the manifest's bytes with a signature by another key: the lock's digest
    // holds, the registry's signature does not.
    const manifest = registry.site.objects.get(manifestKey(NAME, '1.0.0')) as StoredObject;
    const other = await createSigner((await testKey('another')).secretKey);
    const forged = encode(await other.sign(manifest.body));
    await tampered(
      signatureKey(manifestKey(NAME, '1.0.0')),
      () => forged,
      async () => {
        const frozen = withClient(m, (c) =>
          c.install({ requests: [], dir: m.dir, lockfile: m.lockfile, frozen: true }),
        );
        await expect(frozen).rejects.toBeInstanceOf(TrustError);
        await expect(frozen).rejects.toMatchObject({
          code: 'DOCUMENT_MISMATCH',
          message: expect.stringContaining(`${m.lockfile}: plugins/${NAME}@1.0.0 pins a manifest`),
        });
      },
    );
    expect(await exists(m.dir)).toBe(false);
  });

  it('refuses a modified search.json, and searches again once it is honest', async () => {
    // Its variant is what the client is served (here the document as it is: the registry is small).
    const variant = encodedVariantKey(SEARCH_KEY, 'br');
    await tampered(SEARCH_KEY, flipLast, () =>
      tampered(variant, flipLast, async () => {
        await expect(withClient(m, (c) => c.search({ terms: ['demo'] }))).rejects.toMatchObject({
          name: 'TrustError',
          code: 'DOCUMENT_MISMATCH',
        });
      }),
    );
    expect((await withClient(m, (c) => c.search({ terms: ['demo-plugin'] }))).length).toBe(1);
  });

  it('keeps a mistyped name PLUGIN_NOT_FOUND, naming no plugin, when search.json is refused or offline not cached', async () => {
    // The did-you-mean reads search.json on the refusal's path: one that fails its digest is not read for it,
    // nor turns the refusal into its TrustError; offline, one not cached is not fetched for it.
    const variant = encodedVariantKey(SEARCH_KEY, 'br');
    const alone = {
      name: 'ClientError',
      code: 'PLUGIN_NOT_FOUND',
      message: expect.not.stringContaining('did you mean'),
    };
    await tampered(SEARCH_KEY, flipLast, () =>
      tampered(variant, flipLast, async () => {
        await expect(withClient(m, (c) => c.info('demo-plugni'))).rejects.toMatchObject(alone);
      }),
    );
    await expect(withClient(m, (c) => c.info('demo-plugni'), { offline: true })).rejects.toMatchObject(alone);
    // Honest and online, it is named.
    await expect(withClient(m, (c) => c.info('demo-plugni'))).rejects.toMatchObject({
      code: 'PLUGIN_NOT_FOUND',
      message: expect.stringContaining(`did you mean ${NAME}?`),
    });
  });

  it('refuses a snapshot whose text was changed under its signature', async () => {
    await withEnvelope(
      (envelope) => ({
        ...envelope,
        snapshot: envelope.snapshot.replace('"generation": ', '"generation": 9'),
      }),
      async () => {
        await expect(install()).rejects.toMatchObject({ name: 'TrustError', code: 'SNAPSHOT_BAD_SIGNATURE' });
      },
    );
    await expectNothingInstalledThenHonest();
  });

  it('refuses a snapshot signed by another key (a registry re-keyed without a rotation the client follows)', async () => {
    const other = await createSigner((await testKey('another')).secretKey);
    const rekeyed = async (envelope: Envelope): Promise<Envelope> => {
      const snapshot = JSON.parse(envelope.snapshot) as { key_fingerprint: string; generation: number };
      snapshot.key_fingerprint = other.fingerprint;
      snapshot.generation += 1;
      const text = JSON.stringify(snapshot);
      return { ...envelope, snapshot: text, signature: await other.sign(encode(text)) };
    };
    await withEnvelope(rekeyed, async () => {
      await expect(install()).rejects.toMatchObject({ name: 'TrustError', code: 'SNAPSHOT_BAD_SIGNATURE' });
    });
    await expectNothingInstalledThenHonest();
  });

  it('refuses an expired snapshot (a frozen registry or mirror)', async () => {
    await expect(install({ clock: new Date('2027-06-01T00:00:00Z') })).rejects.toMatchObject({
      name: 'TrustError',
      code: 'SNAPSHOT_EXPIRED',
    });
    await expectNothingInstalledThenHonest();
  });

  it('refuses a replayed older snapshot once a newer one was seen', async () => {
    const old = registry.site.objects.get(SIGNED_SNAPSHOT_KEY) as StoredObject;
    await processSubmissions(
      registry.context,
      await registry.submit(await bundle('1.2.0', [{ ...LINUX, body: encode('1.2.0') }])),
    );
    await withClient(m, (c) => c.updateRegistries([]));
    const current = registry.site.objects.get(SIGNED_SNAPSHOT_KEY) as StoredObject;
    registry.site.objects.set(SIGNED_SNAPSHOT_KEY, old);
    try {
      const [report] = await withClient(m, (c) => c.updateRegistries([]));
      expect(report?.error).toMatchObject({ name: 'TrustError', code: 'SNAPSHOT_ROLLBACK' });
    } finally {
      registry.site.objects.set(SIGNED_SNAPSHOT_KEY, current);
    }
  });
});

describe('when two registries publish the same bundle', () => {
  // A registry and a team's mirror of it: the same manifest bytes, each signed by its own registry key.
  const SAME = 'same-tool';
  const served: { url: string; key: string }[] = [];
  const closers: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    const sameBundle = await makeBundle({
      manifest: validManifest({ name: SAME, version: '1.0.0' }),
      artifacts: [{ ...LINUX, name: SAME, body: encode('#!/bin/sh\necho same\n') }],
    });
    const first = await makeRegistry();
    const mirror = await makeRegistry({ name: 'Mirror' });
    const other = await testKey('other');
    await processSubmissions(first.context, await first.submit(sameBundle));
    await processSubmissions(
      { ...mirror.context, signer: await createSigner(other.secretKey) },
      await mirror.submit(sameBundle),
    );
    for (const [site, key] of [
      [first.site, first.registryKey.publicKey],
      [mirror.site, other.publicKey],
    ] as const) {
      const listening = await listenRegistryServer(createRegistryServer({ site }), 0);
      served.push({ url: listening.url, key });
      closers.push(listening.close);
    }
  });
  afterAll(async () => {
    for (const stop of closers) await stop();
  });

  async function bothAdded(): Promise<Machine> {
    const m = await machine();
    await withClient(m, async (c) => {
      for (const [i, name] of ['a', 'b'].entries()) {
        const { url, key } = served[i] as { url: string; key: string };
        await c.addRegistry({ name, url, pin: { armored: key } });
      }
    });
    return m;
  }

  it('places, frozen from one shared cache, the signature of the registry each lock names', async () => {
    const locked: Record<string, { lockfile: string; asc: string }> = {};
    for (const registryName of ['a', 'b']) {
      const m = await bothAdded();
      await withClient(m, (c) =>
        c.install({ requests: [SAME], registry: registryName, dir: m.dir, lockfile: m.lockfile }),
      );
      const asc = await readFile(join(m.dir, SAME, '1.0.0', 'manifest.json.asc'), 'utf8');
      locked[registryName] = { lockfile: m.lockfile, asc };
    }
    expect(locked.a?.asc).not.toBe(locked.b?.asc);
    // One CI machine (one cache) installs both projects frozen: b's first, then a's.
    const ci = await bothAdded();
    for (const registryName of ['b', 'a']) {
      const { lockfile, asc } = locked[registryName] as { lockfile: string; asc: string };
      const dir = join(ci.dir, registryName);
      const installed = await withClient(ci, (c) => c.install({ requests: [], frozen: true, dir, lockfile }));
      expect(installed.items[0]?.warnings).toEqual([]);
      expect(await readFile(join(dir, SAME, '1.0.0', 'manifest.json.asc'), 'utf8')).toBe(asc);
      expect(await withClient(ci, (c) => c.verifyInstalled({ dir, lockfile }))).toEqual([
        { name: SAME, version: '1.0.0', ok: true },
      ]);
    }
  });
});

describe('when teammates configure one registry at two URLs (a mirror, a proxy: one registry, one key)', () => {
  async function configured(url: string): Promise<Machine> {
    const m = await machine();
    await withClient(m, (c) =>
      c.addRegistry({ name: 'test', url, pin: { armored: registry.registryKey.publicKey } }),
    );
    return m;
  }

  it('leaves the lock as it is on a fresh install through the other URL, and a frozen install fetches through its own', async () => {
    const origin = await listenRegistryServer(createRegistryServer({ site: registry.site }), 0);
    const proxy = await listenRegistryServer(createRegistryServer({ site: registry.site }), 0);
    try {
      const alice = await configured(origin.url);
      await withClient(alice, (c) =>
        c.install({ requests: [`${NAME}@1.0.0`], dir: alice.dir, lockfile: alice.lockfile }),
      );
      const locked = await readFile(alice.lockfile, 'utf8');
      // Bob's checkout of the same commit, his configuration naming the registry at his proxy: nothing the
      // lock pins moved, so the lock does not either.
      const bob = await configured(proxy.url);
      await writeFile(bob.lockfile, locked);
      await withClient(bob, (c) => c.install({ requests: [], dir: bob.dir, lockfile: bob.lockfile }));
      expect(await readFile(bob.lockfile, 'utf8')).toBe(locked);
      // A plugin Bob adds is recorded under the URL the lock has the registry at: one URL a registry.
      await withClient(bob, (c) =>
        c.install({ requests: ['second-tool@0.1.0'], dir: bob.dir, lockfile: bob.lockfile }),
      );
      const added = parseLockfile(await readFile(bob.lockfile, 'utf8'), bob.lockfile).plugins['second-tool'];
      expect(added?.manifest_url).toBe(`${origin.url}/plugins/second-tool/0.1.0/manifest.json`);
      expect(added?.artifacts['linux-amd64']?.url).toMatch(new RegExp(`^${origin.url}/plugins/second-tool/`));
      // The lock names Alice's URLs; Bob's CI, which reaches only his proxy, installs it frozen from there.
      await origin.close();
      const ci = await configured(proxy.url);
      await writeFile(ci.lockfile, locked);
      const frozen = await withClient(ci, (c) =>
        c.install({ requests: [], dir: ci.dir, lockfile: ci.lockfile, frozen: true }),
      );
      expect(await readFile(frozen.items[0]?.path as string)).toEqual(Buffer.from(TOOL_1));
      expect(frozen.items[0]?.warnings).toEqual([]);
    } finally {
      await origin.close().catch(() => {});
      await proxy.close();
    }
  });

  it('fetches nothing from a host a lock names that the configuration does not, online or frozen', async () => {
    // A lock whose registry locations were moved to another host (an edit slipped into a pull request):
    // the lock's base is kept for entries added after it, but every read goes through the configured URL.
    const proxy = await listenRegistryServer(createRegistryServer({ site: registry.site }), 0);
    const seen: string[] = [];
    const evil = await listenRegistryServer(
      createRegistryServer({ site: registry.site, log: (line) => seen.push(line) }),
      0,
    );
    try {
      const alice = await configured(proxy.url);
      await withClient(alice, (c) =>
        c.install({ requests: [`${NAME}@1.0.0`], dir: alice.dir, lockfile: alice.lockfile }),
      );
      const moved = (await readFile(alice.lockfile, 'utf8')).replaceAll(proxy.url, evil.url);
      const bob = await configured(proxy.url);
      await writeFile(bob.lockfile, moved);
      await withClient(bob, (c) =>
        c.install({ requests: ['second-tool@0.1.0'], dir: bob.dir, lockfile: bob.lockfile }),
      );
      const lock = parseLockfile(await readFile(bob.lockfile, 'utf8'), bob.lockfile);
      expect(lock.plugins['second-tool']?.manifest_url).toMatch(new RegExp(`^${evil.url}/`));
      const ci = await configured(proxy.url);
      await writeFile(ci.lockfile, await readFile(bob.lockfile, 'utf8'));
      const frozen = await withClient(ci, (c) =>
        c.install({ requests: [], dir: ci.dir, lockfile: ci.lockfile, frozen: true }),
      );
      expect(frozen.items.map((i) => i.name).sort()).toEqual([NAME, 'second-tool']);
      expect(seen).toEqual([]);
    } finally {
      await evil.close();
      await proxy.close();
    }
  });
});

describe('when two branches each add a plugin (the lock\u2019s min_generation)', () => {
  /** A plugin of one version, hosted by the registry, published in a batch of its own. */
  async function publish(name: string, version = '1.0.0'): Promise<void> {
    await processSubmissions(
      registry.context,
      await registry.submit(
        await makeBundle({
          manifest: validManifest({ name, version }),
          artifacts: [{ ...LINUX, name, body: encode(`#!/bin/sh\necho ${name} ${version}\n`) }],
        }),
      ),
    );
  }
  const floorOf = async (m: Machine) =>
    parseLockfile(await readFile(m.lockfile, 'utf8'), m.lockfile).registries.test?.min_generation;
  const generation = () =>
    (
      JSON.parse(
        (
          JSON.parse(
            new TextDecoder().decode((registry.site.objects.get(SIGNED_SNAPSHOT_KEY) as StoredObject).body),
          ) as { snapshot: string }
        ).snapshot,
      ) as { generation: number }
    ).generation;

  it('raises it for every plugin added, one its registry had before included', async () => {
    await publish('floor-first');
    await publish('floor-old');
    const m = await machine();
    await addRegistry(m);
    await withClient(m, (c) => c.install({ requests: ['floor-first'], dir: m.dir, lockfile: m.lockfile }));
    const floor = await floorOf(m);
    await publish('floor-unrelated');
    expect(generation()).toBeGreaterThan(floor as number);

    // floor-old@1.0.0, its newest, unmarked: the floor still rises, holding floor-first to what was read.
    await withClient(m, (c) => c.install({ requests: ['floor-old'], dir: m.dir, lockfile: m.lockfile }));
    expect(await floorOf(m)).toBe(generation());
    // demo-plugin@1.0.0, which 1.1.0 follows: an older snapshot could hide 1.1.0 from an update.
    await withClient(m, (c) => c.install({ requests: [`${NAME}@1.0.0`], dir: m.dir, lockfile: m.lockfile }));
    expect(await floorOf(m)).toBe(generation());
  });

  it('refuses a replay from before a yank of a plugin it held, once another plugin was added after the yank', async () => {
    // The floor carries what the lock's writer read last: a plugin added after another's yank raised it
    // past the yank. Left where it was (the added one quiet), a fresh machine took a snapshot from before
    // the yank, still listing the held version (so no other check saw a replay), and installed it unjudged.
    await publish('floor-held');
    await publish('floor-added');
    const m = await machine();
    await addRegistry(m);
    await withClient(m, (c) => c.install({ requests: ['floor-held'], dir: m.dir, lockfile: m.lockfile }));
    const before = new Map(registry.site.objects);
    await editPlugin(registry.context, 'floor-held', (doc) => {
      Object.assign(versionOf(doc, '1.0.0'), { yanked: true, yanked_reason: 'deletes the cluster' });
    });
    await withClient(m, (c) => c.install({ requests: ['floor-added'], dir: m.dir, lockfile: m.lockfile }));
    expect(await floorOf(m)).toBe(generation());
    const current = new Map(registry.site.objects);
    const serve = (tree: Map<string, StoredObject>) => {
      registry.site.objects.clear();
      for (const [key, object] of tree) registry.site.objects.set(key, object);
    };
    serve(before);
    try {
      const fresh = await machine();
      await addRegistry(fresh);
      await expect(
        withClient(fresh, (c) =>
          c.install({ requests: [], frozen: true, denyYanked: true, dir: fresh.dir, lockfile: m.lockfile }),
        ),
      ).rejects.toMatchObject({ name: 'TrustError', code: 'SNAPSHOT_ROLLBACK' });
      expect(await exists(fresh.dir)).toBe(false);
    } finally {
      serve(current);
    }
  });

  it.each([
    ['an update', 'late-tool', { upgrade: true }],
    ['an install of the lock', 'later-tool', {}],
  ])(
    'refuses for %s a snapshot at or above the floor that does not list the version the lock holds',
    async (_what, tool, install) => {
      await publish(tool, '1.0.0');
      const m = await machine();
      await addRegistry(m);
      await withClient(m, (c) =>
        c.install({ requests: [`${tool}@^1.0.0`], dir: m.dir, lockfile: m.lockfile }),
      );
      // The whole published tree as it is now, as a mirror that stopped here would serve it.
      const before = new Map(registry.site.objects);
      await publish(tool, '1.1.0');
      // A lock whose floor is lower than its writer read (a merge that kept the lower number, a hand edit,
      // a client that left it for an entry it judged needed none): the entry's version holds the line.
      const floor = await floorOf(m);
      await withClient(m, (c) =>
        c.install({ requests: [], upgrade: true, dir: m.dir, lockfile: m.lockfile }),
      );
      const lock = parseLockfile(await readFile(m.lockfile, 'utf8'), m.lockfile);
      expect(lock.plugins[tool]?.version).toBe('1.1.0');
      expect(await floorOf(m)).toBeGreaterThan(floor as number);
      await writeFile(
        m.lockfile,
        serializeLockfile({
          ...lock,
          registries: {
            test: { ...(lock.registries.test as LockedRegistry), min_generation: floor as number },
          },
        }),
      );
      // A fresh machine served the snapshot from before 1.1.0 (its generation at the floor or above).
      const current = new Map(registry.site.objects);
      const serve = (tree: Map<string, StoredObject>) => {
        registry.site.objects.clear();
        for (const [key, object] of tree) registry.site.objects.set(key, object);
      };
      serve(before);
      try {
        const fresh = await machine();
        await addRegistry(fresh);
        await expect(
          withClient(fresh, (c) =>
            c.install({ requests: [], ...install, dir: fresh.dir, lockfile: m.lockfile }),
          ),
        ).rejects.toMatchObject({
          name: 'TrustError',
          code: 'SNAPSHOT_ROLLBACK',
          message: expect.stringContaining(`lists no version 1.1.0 of ${tool}`),
        });
      } finally {
        serve(current);
      }
      expect(parseLockfile(await readFile(m.lockfile, 'utf8'), m.lockfile).plugins[tool]?.version).toBe(
        '1.1.0',
      );
    },
  );
});
