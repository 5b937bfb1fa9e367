/**
 * Registry key rotation as a client meets it: a local registry (the pipeline on the filesystem, rotated by
 * `rotateLocalRegistry` as `plugindex rotate-key` does) served over real HTTP by the local server, and
 * clients with their own folders. A client that pinned the first key follows both rotations, keeps the new
 * pin on disk and installs; locks and frozen installs accept a key the chain links and refuse one it does
 * not; a forged step is refused (KEY_ROTATION_BROKEN, naming it) and nothing is pinned.
 */
import { cp, mkdir, readdir, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { FsStore } from '../../adapters/fs-store.ts';
import { initRegistry, openRegistry } from '../../cli/local/registry.ts';
import { rotateLocalRegistry } from '../../cli/local/rotate-key.ts';
import { createRegistryServer, listenRegistryServer } from '../../cli/local/server.ts';
import { verifyRegistry } from '../../cli/verify.ts';
import { createClient } from '../../client/client.ts';
import { ContentCache } from '../../client/disk/cache.ts';
import { keptThenFailedAll, setTrustName } from '../../client/disk/state.ts';
import { ClientError } from '../../client/errors.ts';
import { createHttpFetcher } from '../../client/fetcher.ts';
import { parseLockfile } from '../../client/lockfile.ts';
import { dearmoredBlocks } from '../../index-builder/armor.ts';
import { sha256Hex } from '../../index-builder/digest.ts';
import { TrustError } from '../../index-builder/errors.ts';
import { processSubmissions, rebuildRegistry, refreshSnapshot } from '../../index-builder/pipeline/index.ts';
import {
  MAX_ROTATION_BYTES,
  ROTATION_PREFIX,
  readSignedRotation,
  rotationKey,
  SIGNED_ROTATION_SCHEMA,
  signRotation,
} from '../../index-builder/rotation.ts';
import { createSigner, generateKeyPair, type KeyPair, type Signer } from '../../index-builder/signing.ts';
import { CACHE_PRIVATE } from '../../index-builder/store.ts';
import { type ClientMachine, clientMachine, heldAtLog, httpFetcherTelling } from '../support/client.ts';
import { encode, makeBundle, validManifest } from '../support/fixtures.ts';
import { gpgKeyring } from '../support/gpg.ts';
import { rewriteLog } from '../support/lifecycle.ts';
import { publicPrimaryWithSecretSubkeys } from '../support/openpgp-packets.ts';
import { scratchFolder } from '../support/served-registry.ts';
import { UNTRUSTED_KEYS } from '../support/untrusted-keys.ts';

const NAME = 'rotating-tool';
/**
 * The registry the tests' registries name by default: each is served at a URL of its own, a mirror of it
 * (`verify --url REGISTRY_URL --mirror URL`).
 */
const REGISTRY_URL = 'https://plugins.registry.example';
const LINUX = { os: 'linux', arch: 'amd64' } as const;

const scratch = scratchFolder('plugindex-rotation-');

interface Served {
  readonly dir: string;
  readonly url: string;
  /** The key the registry was created with: what its first clients pin. */
  readonly firstKey: string;
  readonly firstFingerprint: string;
}

/** Each request a registry served by `serve` answered (`GET /path 200`), in order. */
const served: string[] = [];

/** Serves a registry folder over HTTP until the file's tests end. */
async function serve(dir: string): Promise<Awaited<ReturnType<typeof listenRegistryServer>>> {
  const listening = await listenRegistryServer(
    createRegistryServer({ site: new FsStore(join(dir, 'public')), log: (line) => served.push(line) }),
    0,
  );
  scratch.closeAfter(listening.close);
  return listening;
}

/**
 * A copy of `registry` as published, re-signed by `oldKey` (a key it rotated away from, stolen or leaked)
 * past the generation its clients accepted, with a new version, served: what the key's holder can serve.
 */
async function publishedByOldKey(
  registry: Served,
  oldKey: string,
  label: string,
): Promise<Awaited<ReturnType<typeof listenRegistryServer>>> {
  const copy = join(scratch.path, `${label}-${registries}`);
  await cp(registry.dir, copy, { recursive: true });
  await writeFile(join(copy, 'keys/registry-secret.asc'), oldKey);
  await rebuildRegistry((await openRegistry(copy)).context, { keyRotations: 1 });
  await publish(copy, ['2.0.0']);
  return serve(copy);
}

let registries = 0;
/** A local registry with `versions` of one plugin, served over HTTP from its folder. */
async function servedRegistry(
  versions: readonly string[],
  /** The registry its snapshots name. */
  registryUrl = REGISTRY_URL,
): Promise<Served> {
  registries += 1;
  const dir = join(scratch.path, `registry${registries}`);
  const { fingerprint } = await initRegistry(dir, { name: 'Rotating', url: registryUrl });
  await publish(dir, versions);
  const listening = await serve(dir);
  const firstKey = await readFile(join(dir, 'public/keys/registry.asc'), 'utf8');
  return { dir, url: listening.url, firstKey, firstFingerprint: fingerprint };
}

async function publish(dir: string, versions: readonly string[]): Promise<void> {
  const { context } = await openRegistry(dir);
  const keys: string[] = [];
  for (const version of versions) {
    const key = `incoming/${NAME}-${version}.tgz`;
    const bundle = await makeBundle({
      manifest: validManifest({ name: NAME, version }),
      artifacts: [{ ...LINUX, name: NAME, body: encode(`#!/bin/sh\necho ${version}\n`) }],
    });
    await context.intake.put(key, bundle, { contentType: 'application/gzip', cacheControl: CACHE_PRIVATE });
    keys.push(key);
  }
  const result = await processSubmissions(context, keys);
  expect(result.outcomes.map((o) => o.status)).toEqual(versions.map(() => 'accepted'));
}

let keys = 0;
/** A new registry key, as an operator makes one. */
async function newKey(): Promise<KeyPair> {
  keys += 1;
  return generateKeyPair({ name: `rotation key ${keys}` });
}

/** Rotates `registry` to a new key, as `plugindex rotate-key` does; the new key. */
async function rotateToNewKey(registry: Served): Promise<KeyPair> {
  const next = await newKey();
  await rotateLocalRegistry(registry.dir, next.secretKey);
  return next;
}

/**
 * A cache in front of `origin` that answers `path` with `body` whenever it is asked for as the registry's
 * own documents are (no query, or `?v=<sha256>`); any other query, as a client asking past every cache
 * sends, reaches the origin (`always`: not even that, as whoever serves a registry's name may answer;
 * `active` false: everything reaches it). Counts what it served stale.
 */
async function staleSignatureCache(
  origin: string,
  path: string,
  body: Uint8Array,
  options: { readonly always?: boolean; readonly active?: () => boolean } = {},
): Promise<{ url: string; readonly served: number; readonly asked: readonly (string | null)[] }> {
  let served = 0;
  const asked: (string | null)[] = [];
  const server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://cache');
    const v = url.searchParams.get('v');
    if (url.pathname === path) asked.push(v);
    const active = options.active?.() ?? true;
    if (active && url.pathname === path && (options.always || v === null || /^[0-9a-f]{64}$/.test(v))) {
      served += 1;
      response.writeHead(200, { 'content-type': 'application/pgp-signature' }).end(body);
      return;
    }
    fetch(`${origin}${url.pathname}${url.search}`)
      .then(async (answer) => {
        response
          .writeHead(answer.status, Object.fromEntries(answer.headers))
          .end(Buffer.from(await answer.arrayBuffer()));
      })
      .catch(() => response.writeHead(502).end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  scratch.closeAfter(() => new Promise((resolve) => server.close(() => resolve())));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get served() {
      return served;
    },
    asked,
  };
}

let machines = 0;
async function machine(): Promise<ClientMachine> {
  machines += 1;
  return clientMachine(join(scratch.path, `m${machines}`));
}

/** A client that added `registry` as `main`, pinning the key it was created with. */
async function pinningFirstKey(registry: Served): Promise<ClientMachine> {
  const m = await machine();
  await m.run((c) => c.addRegistry({ name: 'main', url: registry.url, pin: { armored: registry.firstKey } }));
  return m;
}

/**
 * A served registry rotated once to a new key, a machine pinning its first key, rotation 1 as published (its
 * file and what it reads as), and a signer of the key it retired: for a test that publishes another rotation 1.
 */
async function rotatedOnce() {
  const registry = await servedRegistry(['1.0.0']);
  const m = await pinningFirstKey(registry);
  const next = await rotateToNewKey(registry);
  const published = join(registry.dir, 'public', rotationKey(1));
  const honest = readSignedRotation(await readFile(published));
  const retired = join(registry.dir, 'keys/retired', `${registry.firstFingerprint}.asc`);
  const old = await createSigner(await readFile(retired, 'utf8'));
  return { registry, m, next, published, honest, old };
}

async function trustState(m: ClientMachine, name = 'main'): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(join(m.data, 'trust', name, 'state.json'), 'utf8'));
}

/**
 * A reset of what the registry's names accepted, from `url` by `armoredKey`, is refused
 * (TRUST_RESET_REFUSED) and leaves `main`'s trust state as it was.
 */
async function expectResetRefused(m: ClientMachine, url: string, armoredKey: string): Promise<void> {
  const kept = await trustState(m);
  await expect(m.run((c) => c.resetRegistryTrust({ url, armoredKey }))).rejects.toMatchObject({
    name: 'ClientError',
    code: 'TRUST_RESET_REFUSED',
  });
  expect(await trustState(m)).toEqual(kept);
}

/**
 * A registry whose client `m` pins the first key as `main` and follows the rotation that marks it stolen
 * (to `second`); the thief kept a copy of the registry and the key, and serves what that key signs.
 */
async function stolenThenRotatedAway(label: string): Promise<{
  registry: Served;
  m: ClientMachine;
  second: KeyPair;
  thief: Awaited<ReturnType<typeof publishedByOldKey>>;
}> {
  const registry = await servedRegistry(['1.0.0']);
  const m = await pinningFirstKey(registry);
  const stolen = await readFile(join(registry.dir, 'keys/registry-secret.asc'), 'utf8');
  const second = await newKey();
  await rotateLocalRegistry(registry.dir, second.secretKey, { compromised: true });
  expect((await m.run((c) => c.updateRegistries(['main'])))[0]?.error).toBeUndefined();
  const thief = await publishedByOldKey(registry, stolen, label);
  return { registry, m, second, thief };
}

/** Adding `registry` from `url` as `old-pin`, pinning the stolen first key, is refused (KEY_REVOKED). */
async function expectStolenKeyRevoked(m: ClientMachine, url: string, registry: Served): Promise<void> {
  await expect(
    m.run((c) => c.addRegistry({ name: 'old-pin', url, pin: { armored: registry.firstKey } })),
  ).rejects.toMatchObject({ name: 'ClientError', code: 'KEY_REVOKED' });
}

/**
 * A served copy of a registry's public folder at `label` (a mirror, or a thief's server): `copyOf(dir)`
 * makes it a copy of `dir`'s public folder again, and `url` serves it.
 */
async function servedCopy(
  label: string,
  of: string,
): Promise<{ copyOf: (dir: string) => Promise<void>; url: string }> {
  const dir = join(scratch.path, `${label}-${registries}`);
  const copyOf = async (from: string) => {
    await rm(join(dir, 'public'), { recursive: true, force: true });
    await cp(join(from, 'public'), join(dir, 'public'), { recursive: true });
  };
  await copyOf(of);
  return { copyOf, url: (await serve(dir)).url };
}

/**
 * A server answering every request with a redirect (302) to the same path and query under `target`, as a
 * registry's old address or a front door does: the URL a name configures, where another serves. `retarget`
 * points it elsewhere (whoever answers there chooses where it leads).
 */
async function redirectingTo(
  target: string,
): Promise<{ url: string; readonly redirected: number; retarget: (to: string) => void }> {
  let redirected = 0;
  let to = target;
  const server = createServer((request, response) => {
    redirected += 1;
    response.writeHead(302, { location: `${to}${request.url ?? '/'}` }).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  scratch.closeAfter(() => new Promise((resolve) => server.close(() => resolve())));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get redirected() {
      return redirected;
    },
    retarget: (next) => {
      to = next;
    },
  };
}

/**
 * The registry's first key stolen and rotated away from as compromised; `thief(label)` then makes the
 * thief's copy of the registry (its folder), rebuilt under the stolen key with 2.0.0 published, and 1.0.0's
 * manifest signed as before the rotation (the stolen key's signature, what locks and folders hold under it).
 * `keyRotations`: the rotations its snapshots count (by default the registry's, one; 0 is what the stolen
 * key is at, which a name still holding it checks them against).
 */
async function stolenAndRotated(
  registry: Served,
): Promise<{ thief: (label: string, keyRotations?: number) => Promise<string> }> {
  const stolen = await readFile(join(registry.dir, 'keys/registry-secret.asc'), 'utf8');
  const signed = `plugins/${NAME}/1.0.0/manifest.json.asc`;
  const byStolenKey = await readFile(join(registry.dir, 'public', signed));
  await rotateLocalRegistry(registry.dir, (await newKey()).secretKey, { compromised: true });
  return {
    thief: async (label, keyRotations = 1) => {
      const dir = join(scratch.path, `${label}-${registries}`);
      await cp(registry.dir, dir, { recursive: true });
      await writeFile(join(dir, 'keys/registry-secret.asc'), stolen);
      await rebuildRegistry((await openRegistry(dir)).context, { keyRotations });
      await publish(dir, ['2.0.0']);
      await writeFile(join(dir, 'public', signed), byStolenKey);
      return dir;
    },
  };
}

/**
 * `main`'s record made as a client before records named their registry wrote it (no `registry`), its
 * snapshot no longer cached and the trust index gone, then `main` removed: nothing tells the registry it was
 * of but the URL configured. The marks kept under the trust root are returned.
 */
async function removedAsOlderRecord(
  m: ClientMachine,
  /** The URL `main` is configured at, whose snapshot alone is no longer cached (by default, none is). */
  uncached?: string,
): Promise<{ former_departures: unknown[] }> {
  const { registry: _named, ...older } = await trustState(m);
  await writeFile(join(m.data, 'trust', 'main', 'state.json'), `${JSON.stringify(older, null, 2)}\n`);
  await rm(join(m.data, 'trust', '.index.json'), { force: true });
  if (uncached !== undefined) await new ContentCache(join(dirname(m.data), 'cache')).removeRegistry(uncached);
  else await rm(join(dirname(m.data), 'cache', 'registries'), { recursive: true, force: true });
  await m.run((c) => c.removeRegistry('main'));
  return JSON.parse(await readFile(join(m.data, 'trust', '.removed-departures.json'), 'utf8'));
}

/**
 * A machine whose `main` reaches `registry` at `main` and each of `others` at its URL (priority 2, 3, ...
 * in turn), all pinning its first key: the names a removed name's mark is then read for.
 */
async function reachingByFirstKey(
  registry: Served,
  main: string,
  others: readonly { name: string; url: string; mirrors?: string[] }[] = [],
): Promise<ClientMachine> {
  const m = await machine();
  await m.run((c) => c.addRegistry({ name: 'main', url: main, pin: { armored: registry.firstKey } }));
  for (const [i, other] of others.entries()) {
    await m.run((c) => c.addRegistry({ ...other, pin: { armored: registry.firstKey }, priority: i + 2 }));
  }
  return m;
}

/**
 * A registry whose public folder is served at S (`final`, a copy at `${label}-s`), M (`mirror`) redirecting
 * every request to S, and R (`r`) to M: `main` reaches it at M and `name` at R (which no name lists as a
 * mirror), both pinning its first key.
 */
async function reachedThroughTwoHops(
  label: string,
  name: string,
): Promise<{
  registry: Served;
  final: Awaited<ReturnType<typeof servedCopy>>;
  mirror: Awaited<ReturnType<typeof redirectingTo>>;
  r: Awaited<ReturnType<typeof redirectingTo>>;
  m: ClientMachine;
}> {
  const registry = await servedRegistry(['1.0.0']);
  const final = await servedCopy(`${label}-s`, registry.dir);
  const mirror = await redirectingTo(final.url);
  const r = await redirectingTo(mirror.url);
  const m = await reachingByFirstKey(registry, mirror.url, [{ name, url: r.url }]);
  return { registry, final, mirror, r, m };
}

/**
 * `registry`'s first key stolen and rotated away from as compromised; `main` alone follows (at `served`,
 * made a copy of the registry again first, where it reads it there); the thief's copy is made
 * (`stolenAndRotated`), then `main`, kept as an older client wrote it, removed (`removedAsOlderRecord`).
 * With `markedAt`, the mark it leaves is checked to be kept as of that URL. Returns the thief's folder.
 */
async function followedThenRemovedAsOlder(
  m: ClientMachine,
  registry: Served,
  options: {
    thief: string;
    served?: { copyOf: (dir: string) => Promise<void> };
    keyRotations?: number;
    uncached?: string;
    markedAt?: string;
  },
): Promise<string> {
  const theft = await stolenAndRotated(registry);
  await options.served?.copyOf(registry.dir);
  expect((await m.run((c) => c.updateRegistries(['main'])))[0]?.error).toBeUndefined();
  const thiefDir = await theft.thief(options.thief, options.keyRotations);
  const kept = await removedAsOlderRecord(m, options.uncached);
  if (options.markedAt !== undefined) {
    expect(kept.former_departures).toMatchObject([
      { fingerprint: registry.firstFingerprint, compromised: true, registry: options.markedAt },
    ]);
  }
  return thiefDir;
}

/**
 * `other`'s update, its snapshot request led through `through` (a redirect, counted), refused for the
 * stolen key (KEY_REVOKED, naming it), its trust state kept; and a name added at `url` pinning that key
 * (which counts no rotation to check against), refused likewise.
 */
async function expectRedirectedUpdateRevoked(
  m: ClientMachine,
  registry: Served,
  url: string,
  through: { readonly redirected: number },
): Promise<void> {
  const before = await trustState(m, 'other');
  const redirectedBefore = through.redirected;
  const revoked = refusedNaming(registry, 'KEY_REVOKED');
  const [update] = await m.run((c) => c.updateRegistries(['other']));
  expect(through.redirected).toBeGreaterThan(redirectedBefore);
  expect(update?.error).toMatchObject(revoked);
  expect(await trustState(m, 'other')).toEqual(before);
  await expect(
    m.run((c) => c.addRegistry({ name: 'old-pin', url, pin: { armored: registry.firstKey } })),
  ).rejects.toMatchObject(revoked);
}

/** The refusal (`code`) naming `registry`'s first key, the stolen one. */
function refusedNaming(registry: Served, code: 'KEY_REVOKED' | 'TRUST_RESET_REFUSED') {
  return { name: 'ClientError', code, message: expect.stringContaining(registry.firstFingerprint) };
}

/**
 * `other` installs 1.0.0 into `m.dir`, by `m`'s lock; its snapshot, cached under `url`, is kept with the
 * URLs `servedFrom` the request was led through.
 */
async function otherInstalledVia(
  m: ClientMachine,
  url: string,
  servedFrom: readonly string[],
): Promise<void> {
  await m.run((c) =>
    c.install({ requests: [`${NAME}@1.0.0`], registry: 'other', lockfile: m.lockfile, dir: m.dir }),
  );
  const cache = new ContentCache(join(dirname(m.data), 'cache'));
  expect((await cache.snapshot(url))?.servedFrom).toEqual(servedFrom);
}

/** A client on `m`'s folders that asks no server (offline): it reads what `m`'s runs cached. */
function offlineClient(m: ClientMachine): ReturnType<typeof createClient> {
  const home = dirname(m.data);
  return createClient({
    dirs: { config: join(home, 'config'), data: m.data, cache: join(home, 'cache') },
    fetcher: createHttpFetcher({ env: {}, retries: 0 }),
    env: {},
    platform: LINUX,
    offline: true,
    freshForMs: 0,
  });
}

/**
 * `other`'s checks that ask no server, each refused for the stolen key (KEY_REVOKED): an offline install
 * by its cached snapshot, a frozen install of `m`'s lock, and verify of what it placed in `m.dir`.
 */
async function expectUnaskedChecksRevoked(m: ClientMachine, registry: Served): Promise<void> {
  const home = dirname(m.data);
  const revoked = refusedNaming(registry, 'KEY_REVOKED');
  const offline = offlineClient(m);
  const installing = offline
    .install({
      requests: [`${NAME}@1.0.0`],
      registry: 'other',
      lockfile: join(home, 'offline.lock'),
      dir: join(home, 'offline'),
    })
    .finally(() => offline.close());
  await expect(installing).rejects.toMatchObject(revoked);
  await expect(
    m.run((c) => c.install({ requests: [], lockfile: m.lockfile, frozen: true, dir: join(home, 'frozen') })),
  ).rejects.toMatchObject(revoked);
  const findings = await m.run((c) => c.verifyInstalled({ dir: m.dir }));
  expect(findings.map((f) => [f.name, f.ok, f.code])).toEqual([[NAME, false, 'KEY_REVOKED']]);
}

/**
 * A run of `updateRegistries(['main'])` on `m`'s folders that stops as it first asks for the log, until
 * `release` is called: the slower of two runs side by side, caught between checking and saving.
 */
async function updateStoppedAtLog(m: ClientMachine): Promise<{
  slowRun: ReturnType<ReturnType<typeof createClient>['updateRegistries']>;
  release: () => void;
}> {
  const { slow, atLog, release } = heldAtLog();
  const home = dirname(m.data);
  const client = createClient({
    dirs: { config: join(home, 'config'), data: m.data, cache: join(home, 'cache') },
    fetcher: slow,
    env: {},
    platform: LINUX,
    freshForMs: 0,
  });
  const slowRun = client.updateRegistries(['main']).finally(() => client.close());
  await atLog;
  return { slowRun, release };
}

describe('when a registry rotates its key twice', () => {
  let registry: Served;
  let second: KeyPair;
  let third: KeyPair;
  let early: ClientMachine;
  let lockBefore: string;
  let lagging: ClientMachine;
  /** 1.0.0's manifest signature by the first key, before the rotations signed it again. */
  let firstSignature: Buffer;

  beforeAll(async () => {
    registry = await servedRegistry(['1.0.0']);
    second = await newKey();
    third = await newKey();
  });

  it('lets a client that pinned the first key install before the rotation', async () => {
    early = await machine();
    await early.run(async (c) => {
      await c.addRegistry({ name: 'main', url: registry.url, pin: { armored: registry.firstKey } });
      await c.install({ requests: [`${NAME}@1.0.0`], lockfile: early.lockfile, dir: early.dir });
    });
    lockBefore = await readFile(early.lockfile, 'utf8');
    expect(parseLockfile(lockBefore, early.lockfile).registries.main?.key_fingerprint).toBe(
      registry.firstFingerprint,
    );
    lagging = await pinningFirstKey(registry);
    expect(await trustState(early)).toMatchObject({ fingerprint: registry.firstFingerprint, rotations: 0 });

    firstSignature = await readFile(join(registry.dir, 'public', `plugins/${NAME}/1.0.0/manifest.json.asc`));
    for (const key of [second, third]) {
      const result = await rotateLocalRegistry(registry.dir, key.secretKey);
      expect(result).toMatchObject({ status: 'rotated', fingerprint: key.fingerprint });
    }
    await publish(registry.dir, ['1.1.0']);
  });

  it('serves everything signed again by the last key: GnuPG accepts it, and no longer by the first key', async () => {
    const signed = [
      `plugins/${NAME}/1.0.0/manifest.json`,
      `plugins/${NAME}/1.1.0/manifest.json`,
      `plugins/${NAME}/index.json`,
      'index.json',
      'snapshot.json',
    ];
    const [now, before] = [gpgKeyring(third.publicKey), gpgKeyring(registry.firstKey)];
    try {
      for (const key of signed) {
        const body = await readFile(join(registry.dir, 'public', key));
        const signature = await readFile(join(registry.dir, 'public', `${key}.asc`), 'utf8');
        expect(now.verify(body, signature), key).toContain(`VALIDSIG ${third.fingerprint}`);
        expect(before.status(body, signature), key).not.toMatch(/GOODSIG|VALIDSIG/);
      }
    } finally {
      now.close();
      before.close();
    }
  });

  it('follows both rotations, pins the last key on disk and in the configuration, and installs', async () => {
    const reports = await early.run((c) => c.updateRegistries(['main']));
    expect(reports[0]?.error).toBeUndefined();
    expect(reports[0]?.report).toMatchObject({
      fingerprint: third.fingerprint,
      rotated: { from: registry.firstFingerprint, to: third.fingerprint, steps: 2 },
    });
    const state = await trustState(early);
    expect(state).toMatchObject({ fingerprint: third.fingerprint, rotations: 2 });
    expect((state.chain as { fingerprint: string }[]).map((l) => l.fingerprint)).toEqual([
      registry.firstFingerprint,
      second.fingerprint,
    ]);
    expect(await readFile(join(early.data, 'trust/main/registry.asc'), 'utf8')).toBe(third.publicKey);
    const listed = await early.run((c) => c.listRegistries());
    expect(listed.map((r) => r.entry.key_fingerprint)).toEqual([third.fingerprint]);

    // The lock made under the first key: the chain links it to the key pinned now, so installing from it
    // (the manifests and documents now signed by the third key) and updating past it go on.
    const fromLock = await early.run((c) =>
      c.install({ requests: [], lockfile: early.lockfile, dir: early.dir }),
    );
    expect(fromLock.items.map((i) => `${i.version} ${i.unchanged}`)).toEqual(['1.0.0 true']);
    const reinstalled = await early.run((c) =>
      c.install({ requests: [], lockfile: early.lockfile, dir: join(scratch.path, 'from-lock') }),
    );
    expect(reinstalled.items.map((i) => `${i.version} ${i.unchanged}`)).toEqual(['1.0.0 false']);
    const result = await early.run((c) =>
      c.install({ requests: [`${NAME}@1.1.0`], lockfile: early.lockfile, dir: early.dir }),
    );
    expect(result.items.map((i) => `${i.name}@${i.version}`)).toEqual([`${NAME}@1.1.0`]);
    expect(parseLockfile(await readFile(early.lockfile, 'utf8'), '').registries.main?.key_fingerprint).toBe(
      third.fingerprint,
    );
    // What was installed through the first key still verifies, by the keys the chain kept.
    const findings = await early.run((c) => c.verifyInstalled({ dir: early.dir }));
    expect(findings.map((f) => [`${f.name}@${f.version}`, f.ok])).toEqual([
      [`${NAME}@1.0.0`, true],
      [`${NAME}@1.1.0`, true],
    ]);
    // A later run finds the new pin: no rotation to follow.
    const again = await early.run((c) => c.updateRegistries(['main']));
    expect(again[0]?.report?.rotated).toBeUndefined();
  });

  it('installs frozen from a lock of the first key once the client followed, and refuses it otherwise', async () => {
    // The client that followed: the lock made before the rotation installs frozen.
    const lockfile = join(scratch.path, 'frozen-before.lock');
    await writeFile(lockfile, lockBefore);
    const frozen = await early.run((c) =>
      c.install({ requests: [], lockfile, frozen: true, dir: join(scratch.path, 'frozen-plugins') }),
    );
    expect(frozen.items.map((i) => i.version)).toEqual(['1.0.0']);

    // A client that pinned the third key by hand knows no chain: the first key's lock is another key's.
    const fresh = await machine();
    await fresh.run((c) =>
      c.addRegistry({ name: 'main', url: registry.url, pin: { armored: third.publicKey } }),
    );
    await expect(
      fresh.run((c) => c.install({ requests: [], lockfile, frozen: true, dir: fresh.dir })),
    ).rejects.toMatchObject({ name: 'ClientError', code: 'LOCK_MISMATCH' });

    // A client still on the first key refuses a lock of the third until it follows the rotation.
    const lockAfter = join(scratch.path, 'frozen-after.lock');
    await writeFile(lockAfter, await readFile(early.lockfile, 'utf8'));
    await expect(
      lagging.run((c) => c.install({ requests: [], lockfile: lockAfter, frozen: true, dir: lagging.dir })),
    ).rejects.toMatchObject({
      code: 'LOCK_MISMATCH',
      message: expect.stringContaining('plugindex registry update main'),
    });
    await lagging.run((c) => c.updateRegistries([]));
    const installed = await lagging.run((c) =>
      c.install({ requests: [], lockfile: lockAfter, frozen: true, dir: lagging.dir }),
    );
    expect(installed.items.map((i) => i.version)).toEqual(['1.1.0']);
  });

  it('says, refusing a lock of a key no followed rotation links to the pin, what locks it again under the pin', async () => {
    // A client that pinned the third key by hand (the key file replaced) installs from the first key's lock.
    const pinned = await machine();
    await pinned.run((c) =>
      c.addRegistry({ name: 'main', url: registry.url, pin: { armored: third.publicKey } }),
    );
    await writeFile(pinned.lockfile, lockBefore);
    await expect(
      pinned.run((c) => c.install({ requests: [], lockfile: pinned.lockfile, dir: pinned.dir })),
    ).rejects.toMatchObject({
      name: 'ClientError',
      code: 'LOCK_MISMATCH',
      message: expect.stringContaining(
        '`plugindex update` (`plugindex update -c FILE` for a plugin set) locks it again under the key pinned here',
      ),
    });
    // What it names does so.
    await pinned.run((c) =>
      c.install({ requests: [], upgrade: true, lockfile: pinned.lockfile, dir: pinned.dir }),
    );
    expect(
      parseLockfile(await readFile(pinned.lockfile, 'utf8'), pinned.lockfile).registries.main
        ?.key_fingerprint,
    ).toBe(third.fingerprint);
  });

  it('refuses a lock of the first key whose key the chain kept is damaged on disk, before any request', async () => {
    // A copy of the client that followed, its first key's link in the chain then damaged: the lock made
    // under that key is checked by it, and its manifest's signature was fetched before the key was read.
    const copy = await machine();
    const home = dirname(copy.data);
    await cp(join(dirname(early.data), 'config'), join(home, 'config'), { recursive: true });
    await cp(early.data, copy.data, { recursive: true });
    const state = await trustState(copy);
    const chain = state.chain as { key: string }[];
    (chain[0] as { key: string }).key = 'not a key\n';
    await writeFile(join(copy.data, 'trust/main/state.json'), JSON.stringify(state));
    await writeFile(copy.lockfile, lockBefore);
    const before = served.length;

    await expect(
      copy.run((c) => c.install({ requests: [], lockfile: copy.lockfile, frozen: true, dir: copy.dir })),
    ).rejects.toMatchObject({ name: 'KeyError', code: 'KEY_INVALID' });
    expect(served.slice(before)).toEqual([]);
  });

  it("installs frozen from a lock of the last key though a cache serves the first key's signature", async () => {
    // A CDN that kept 1.0.0's signature from before the rotations (an invalidation that failed) for the
    // query a frozen install asks with, the manifest's digest, which a rotation keeps; any other reaches it.
    const stale = await staleSignatureCache(
      registry.url,
      `/plugins/${NAME}/1.0.0/manifest.json.asc`,
      firstSignature,
    );
    // A lock of 1.0.0 made through that cache by the last key (an install reads the signature from the
    // plugin document, so it never met the stale one), then installed frozen on a machine with none cached.
    const [maker, ci] = [await machine(), await machine()];
    for (const m of [maker, ci])
      await m.run((c) => c.addRegistry({ name: 'main', url: stale.url, pin: { armored: third.publicKey } }));
    await maker.run((c) =>
      c.install({ requests: [`${NAME}@1.0.0`], lockfile: maker.lockfile, dir: maker.dir }),
    );
    expect(stale.served).toBe(0);
    await mkdir(join(scratch.path, 'frozen-stale'), { recursive: true });
    const lockfile = join(scratch.path, 'frozen-stale', 'plugindex.lock');
    await writeFile(lockfile, await readFile(maker.lockfile, 'utf8'));

    const installed = await ci.run((c) =>
      c.install({ requests: [], lockfile, frozen: true, dir: join(scratch.path, 'frozen-stale', 'plugins') }),
    );

    expect(installed.items.map((i) => i.version)).toEqual(['1.0.0']);
    // Refused as the cache gave it, then asked for once more past it, under the fetcher's random nonce: one
    // the clock gives can be asked for first, and the retired key's signature kept under it.
    expect(stale.served).toBe(1);
    const manifest = parseLockfile(await readFile(lockfile, 'utf8'), lockfile).plugins[NAME]?.manifest_sha256;
    expect(stale.asked).toEqual([manifest, expect.stringMatching(new RegExp(`^${manifest}-[0-9a-f]{24}$`))]);
    const placed = join(scratch.path, 'frozen-stale', 'plugins', NAME, '1.0.0', 'manifest.json.asc');
    expect(await readFile(placed)).not.toEqual(firstSignature);
  });

  it('is followed by verify --url from the first key, which says so', async () => {
    const report = await verifyRegistry({
      url: REGISTRY_URL,
      mirror: registry.url,
      pinnedKey: registry.firstKey,
    });
    expect(report).toMatchObject({
      fingerprint: third.fingerprint,
      rotations: [
        { sequence: 1, from: registry.firstFingerprint, to: second.fingerprint },
        { sequence: 2, from: second.fingerprint, to: third.fingerprint },
      ],
      plugins: 1,
      manifests: 2,
    });
  });

  it('is followed by a client given the first key at registry add', async () => {
    const late = await machine();
    const added = await late.run((c) =>
      c.addRegistry({ name: 'main', url: registry.url, pin: { armored: registry.firstKey } }),
    );
    expect(added).toMatchObject({ fingerprint: third.fingerprint, rotated: { steps: 2 } });
    expect(await trustState(late)).toMatchObject({ fingerprint: third.fingerprint, rotations: 2 });
  });
});

describe('when a plugin set pins a registry that then rotates its key', () => {
  it('follows the rotation, keeps the set lock, and installs it frozen before and after', async () => {
    const registry = await servedRegistry(['1.0.0']);
    const { project, file } = await setProject('set-project', registry.firstKey, `url: ${registry.url}`);
    const m = await machine();
    const home = { home: join(project, '.home') };
    const installed = await m.run((c) => c.installSet(file, home));
    const lockBefore = await readFile(installed.lockfile, 'utf8');
    const next = await rotateToNewKey(registry);

    // The set still pins the first key: the chain leads to the new one, and the lock moves to it (an
    // update reads the registry; an install that already is the lock would not ask it anything).
    const again = await m.run((c) => c.installSet(file, { ...home, upgrade: true }));
    expect(again.items.map((i) => i.version)).toEqual(['1.0.0']);
    const lockAfter = await readFile(installed.lockfile, 'utf8');
    expect(parseLockfile(lockAfter, '').registries.local?.key_fingerprint).toBe(next.fingerprint);
    // Frozen, reading no registry: the lock of either key, the chain this client followed linking them.
    for (const lock of [lockAfter, lockBefore]) {
      await writeFile(installed.lockfile, lock);
      await rm(join(project, 'plugins'), { recursive: true, force: true });
      const frozen = await m.run((c) => c.installSet(file, { ...home, frozen: true }));
      expect(frozen.items.map((i) => `${i.version} ${i.unchanged}`)).toEqual(['1.0.0 false']);
      // Placed through the key the chain leads to: verify -c follows the same chain from the set's key.
      const findings = await m.run((c) => c.verifySet(file, home));
      expect(findings.map((f) => [f.name, f.ok, f.code])).toEqual([[NAME, true, undefined]]);
    }
  });
});

describe("when a plugin set's key file is replaced by the key its registry rotated to", () => {
  it('update -c places again what the old key placed, and install -c and diff -c see it placed under a key the pin does not link to', async () => {
    const registry = await servedRegistry(['1.0.0']);
    const { project, file } = await setProject('set-replaced-key', registry.firstKey, `url: ${registry.url}`);
    const keyFile = join(project, 'registry.asc');
    const m = await machine();
    const home = { home: join(project, '.home') };
    const plugins = join(project, 'plugins');
    const recordKey = async () =>
      JSON.parse(await readFile(join(plugins, 'installed.json'), 'utf8')).plugins[NAME].versions['1.0.0']
        .registry_key;
    const signature = join(plugins, NAME, '1.0.0', 'manifest.json.asc');
    await m.run((c) => c.installSet(file, home));
    const oldRecord = await readFile(join(plugins, 'installed.json'), 'utf8');
    const oldSignature = await readFile(signature, 'utf8');
    // The registry moves to a new key; the set's key file is replaced by it (no chain from the old key).
    const next = await rotateToNewKey(registry);
    await writeFile(keyFile, next.publicKey);
    // Frozen into a new folder (a CI runner's), the lock of the old key is refused, naming what locks it
    // again: a set's registry is no configured one, which `registry update` (what it named) follows.
    await rename(plugins, `${plugins}-kept`);
    const frozen = await m.run((c) => c.installSet(file, { ...home, frozen: true })).catch((e: unknown) => e);
    await rm(plugins, { recursive: true, force: true });
    await rename(`${plugins}-kept`, plugins);
    expect(frozen).toMatchObject({ name: 'ClientError', code: 'LOCK_MISMATCH' });
    expect((frozen as Error).message).toContain(
      '`plugindex update -c FILE` (without --frozen) locks it again under the key the set pins',
    );
    expect((frozen as Error).message).not.toContain('registry update');

    // update -c locks it under the new key, and places the version the old key placed again (its
    // signature by the new key), where it was left as it was, and verify -c refused it SNAPSHOT_WRONG_KEY.
    const updated = await m.run((c) => c.installSet(file, { ...home, upgrade: true }));
    expect(updated.items.map((i) => [i.version, i.unchanged])).toEqual([['1.0.0', false]]);
    expect(await recordKey()).toBe(next.fingerprint);
    expect(await readFile(signature, 'utf8')).not.toBe(oldSignature);
    expect((await m.run((c) => c.verifySet(file, home))).map((f) => [f.ok, f.code])).toEqual([
      [true, undefined],
    ]);

    // A folder left so by an earlier client (the lock under the new key, the version under the old one):
    // diff -c names it, and install -c places it again, where both said nothing would change.
    await writeFile(join(plugins, 'installed.json'), oldRecord);
    await writeFile(signature, oldSignature);
    const findings = await m.run((c) => c.verifySet(file, home));
    expect(findings.map((f) => [f.ok, f.code])).toEqual([[false, 'SNAPSHOT_WRONG_KEY']]);
    const diff = await m.run((c) => c.diffSet(file, home));
    expect(diff.changes).toMatchObject([
      {
        name: NAME,
        change: 'changed',
        detail: expect.stringContaining(`placed under key ${registry.firstFingerprint}`),
      },
    ]);
    const again = await m.run((c) => c.installSet(file, home));
    expect(again.items.map((i) => i.unchanged)).toEqual([false]);
    expect(await recordKey()).toBe(next.fingerprint);
    expect((await m.run((c) => c.verifySet(file, home))).map((f) => f.ok)).toEqual([true]);
    // Then up to date, read from nothing.
    const before = served.length;
    const still = await m.run((c) => c.installSet(file, home));
    expect(still.items.map((i) => i.unchanged)).toEqual([true]);
    expect(served.slice(before)).toEqual([]);
    expect((await m.run((c) => c.diffSet(file, home))).changes).toEqual([]);
  });

  it('is seen by install for a configured registry added again by the new key, which names update, and update places it again', async () => {
    const registry = await servedRegistry(['1.0.0']);
    const m = await pinningFirstKey(registry);
    await m.run((c) => c.install({ requests: [`${NAME}@^1`], lockfile: m.lockfile, dir: m.dir }));
    const next = await rotateToNewKey(registry);
    await m.run((c) => c.removeRegistry('main'));
    await m.run((c) => c.addRegistry({ name: 'main', url: registry.url, pin: { armored: next.publicKey } }));
    // The tree is the lock, but what it holds was placed under a key the pin no longer links to: the plan
    // is made (and refuses the lock, naming what mends it), where it was called up to date.
    await expect(
      m.run((c) => c.install({ requests: [], lockfile: m.lockfile, dir: m.dir })),
    ).rejects.toMatchObject({
      code: 'LOCK_MISMATCH',
      message: expect.stringContaining('`plugindex update`'),
    });
    // A lock named with --lockfile is named in the remedy too: `plugindex update` alone updates plugindex.lock.
    await expect(
      m.run((c) => c.install({ requests: [], lockfile: m.lockfile, namedLockfile: m.lockfile, dir: m.dir })),
    ).rejects.toMatchObject({
      code: 'LOCK_MISMATCH',
      message: expect.stringContaining(`\`plugindex update --lockfile ${m.lockfile}\``),
    });
    const updated = await m.run((c) =>
      c.install({ requests: [], upgrade: true, lockfile: m.lockfile, dir: m.dir }),
    );
    expect(updated.items.map((i) => [i.version, i.unchanged])).toEqual([['1.0.0', false]]);
    expect((await m.run((c) => c.verifyInstalled({ dir: m.dir }))).map((f) => [f.ok, f.code])).toEqual([
      [true, undefined],
    ]);
    const again = await m.run((c) => c.install({ requests: [], lockfile: m.lockfile, dir: m.dir }));
    expect(again.items.map((i) => i.unchanged)).toEqual([true]);
  });

  it('install -c falls back to reading a key file whose fingerprint its packets do not give first (a marker packet before the key): the same key up to date, another one a changed set', async () => {
    // A Marker packet (RFC 9580 5.8), which openpgp.js skips, before the key: no Public-Key packet first.
    const withMarker = (armored: string) => {
      const [packets] = [...dearmoredBlocks(armored)];
      const bytes = Buffer.concat([Buffer.from([0xca, 0x03, 0x50, 0x47, 0x50]), packets as Buffer]);
      const lines = bytes.toString('base64').match(/.{1,64}/g) ?? [];
      return `-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n${lines.join('\n')}\n-----END PGP PUBLIC KEY BLOCK-----\n`;
    };
    const registry = await servedRegistry(['1.0.0']);
    const { project, file } = await setProject(
      'set-key-after-marker',
      registry.firstKey,
      `url: ${registry.url}`,
    );
    const keyFile = join(project, 'registry.asc');
    const m = await machine();
    const home = { home: join(project, '.home') };
    const installed = await m.run((c) => c.installSet(file, home));
    const lockKey = async () =>
      parseLockfile(await readFile(installed.lockfile, 'utf8'), '').registries.local?.key_fingerprint;
    await writeFile(keyFile, withMarker(registry.firstKey));
    expect((await m.run((c) => c.installSet(file, home))).items.map((i) => i.unchanged)).toEqual([true]);
    const next = await rotateToNewKey(registry);
    await writeFile(keyFile, withMarker(next.publicKey));
    await expect(m.run((c) => c.installSet(file, { ...home, frozen: true }))).rejects.toMatchObject({
      code: 'LOCK_MISMATCH',
    });
    const again = await m.run((c) => c.installSet(file, home));
    expect(again.items.map((i) => i.unchanged)).toEqual([false]);
    expect(await lockKey()).toBe(next.fingerprint);
  });

  it('install -c sees the key file replaced with nothing else changed: it locks the set again under it, and places again what the old key placed', async () => {
    const registry = await servedRegistry(['1.0.0']);
    const { project, file } = await setProject(
      'set-replaced-key-alone',
      registry.firstKey,
      `url: ${registry.url}`,
    );
    const keyFile = join(project, 'registry.asc');
    const m = await machine();
    const home = { home: join(project, '.home') };
    const plugins = join(project, 'plugins');
    const recordKey = async () =>
      JSON.parse(await readFile(join(plugins, 'installed.json'), 'utf8')).plugins[NAME].versions['1.0.0']
        .registry_key;
    const installed = await m.run((c) => c.installSet(file, home));
    const lockKey = async () =>
      parseLockfile(await readFile(installed.lockfile, 'utf8'), '').registries.local?.key_fingerprint;
    const next = await rotateToNewKey(registry);
    // The key file alone replaced: the set, the lock and the tree as they were.
    await writeFile(keyFile, next.publicKey);

    // --locked keeps the lock: refused, naming what locks it again.
    await expect(m.run((c) => c.installSet(file, { ...home, locked: true }))).rejects.toMatchObject({
      code: 'LOCK_MISMATCH',
      message: expect.stringContaining('`plugindex update -c FILE`'),
    });
    // --frozen judges the lock's key alone: refused too, where the tree in place was called up to date.
    await expect(m.run((c) => c.installSet(file, { ...home, frozen: true }))).rejects.toMatchObject({
      code: 'LOCK_MISMATCH',
      message: expect.stringContaining('`plugindex update -c FILE`'),
    });
    // diff -c and install -c see it, where they called the tree up to date and verify -c refused it.
    expect((await m.run((c) => c.diffSet(file, home))).changes).toMatchObject([
      {
        name: NAME,
        change: 'changed',
        detail: expect.stringContaining(`placed under key ${registry.firstFingerprint}`),
      },
    ]);
    const again = await m.run((c) => c.installSet(file, home));
    expect(again.items.map((i) => [i.version, i.unchanged])).toEqual([['1.0.0', false]]);
    expect(await lockKey()).toBe(next.fingerprint);
    expect(await recordKey()).toBe(next.fingerprint);
    expect((await m.run((c) => c.verifySet(file, home))).map((f) => [f.ok, f.code])).toEqual([
      [true, undefined],
    ]);
    // Then up to date, read from nothing.
    const before = served.length;
    const still = await m.run((c) => c.installSet(file, home));
    expect(still.items.map((i) => i.unchanged)).toEqual([true]);
    expect(served.slice(before)).toEqual([]);
  });

  it.each([
    ...UNTRUSTED_KEYS.map((k) => ({
      label: k.label,
      key: async () => k.publicKey,
      code: 'PLUGIN_SET_INVALID',
    })),
    {
      label: "a stranger's key (no rotation leads to it, the registry signs with another)",
      key: async () => (await generateKeyPair({ name: 'Stranger', email: 'stranger@example.org' })).publicKey,
      code: 'SNAPSHOT_BAD_SIGNATURE',
    },
  ])(
    'install -c and diff -c of a set whose key file was replaced by $label refuse it as update -c does, the lock and the tree as they were',
    async ({ label, key, code }) => {
      const registry = await servedRegistry(['1.0.0']);
      const { project, file } = await setProject(
        `set-replaced-${label.replace(/\W+/g, '-')}`,
        registry.firstKey,
        `url: ${registry.url}`,
      );
      const keyFile = join(project, 'registry.asc');
      const m = await machine();
      const home = { home: join(project, '.home') };
      const installed = await m.run((c) => c.installSet(file, home));
      const lockBefore = await readFile(installed.lockfile, 'utf8');
      const recordBefore = await readFile(join(project, 'plugins', 'installed.json'), 'utf8');
      await writeFile(keyFile, await key());
      const update = await m
        .run((c) => c.installSet(file, { ...home, upgrade: true }))
        .catch((e: unknown) => e);
      expect(update).toMatchObject({ code });
      for (const run of [
        () => m.run((c) => c.installSet(file, home)),
        () => m.run((c) => c.diffSet(file, home)),
      ])
        await expect(run()).rejects.toMatchObject({ code });
      expect(await readFile(installed.lockfile, 'utf8')).toBe(lockBefore);
      expect(await readFile(join(project, 'plugins', 'installed.json'), 'utf8')).toBe(recordBefore);
    },
  );

  it('keeps, after a rotation the set followed, what the old key placed, and tells it up to date reading nothing', async () => {
    const registry = await servedRegistry(['1.0.0']);
    const { project, file } = await setProject('set-followed-key', registry.firstKey, `url: ${registry.url}`);
    const m = await machine();
    const home = { home: join(project, '.home') };
    await m.run((c) => c.installSet(file, home));
    const next = await rotateToNewKey(registry);
    // The update follows the rotation and locks under the new key; the version stays, under the key the
    // chain leads from (verify -c accepts it), so it is not placed again.
    const updated = await m.run((c) => c.installSet(file, { ...home, upgrade: true }));
    expect(updated.items.map((i) => [i.version, i.unchanged])).toEqual([['1.0.0', true]]);
    const lock = parseLockfile(await readFile(updated.lockfile, 'utf8'), '');
    expect(lock.registries.local?.key_fingerprint).toBe(next.fingerprint);
    const before = served.length;
    const still = await m.run((c) => c.installSet(file, home));
    expect(still.items.map((i) => i.unchanged)).toEqual([true]);
    expect(served.slice(before)).toEqual([]);
    expect((await m.run((c) => c.diffSet(file, home))).changes).toEqual([]);
    expect((await m.run((c) => c.verifySet(file, home))).map((f) => f.ok)).toEqual([true]);
  });
});

/**
 * A signed rotation's document around `text` (a rotation as published, hand-made), signed by each of
 * `signers` in turn.
 */
async function signedRotationOf(text: Uint8Array, signers: readonly Signer[]): Promise<string> {
  const signatures: string[] = [];
  for (const signer of signers) signatures.push(await signer.sign(text));
  return JSON.stringify({
    schema: SIGNED_ROTATION_SCHEMA,
    rotation: new TextDecoder().decode(text),
    signatures,
  });
}

describe('when a published rotation names another key than the one it rotates from as its previous key', () => {
  it('follows it by the key held, which its chain keeps, never the key the rotation names', async () => {
    // Hand-made (signRotation writes the signer's own key; the registry's pipeline refuses one so made), but
    // signed by the key held and the next: only their holders could publish it, and the key it names as the
    // previous one tells the client nothing it does not hold. Refused, it would strand every client on a key
    // the registry no longer signs with.
    const { m, next, published, honest, old } = await rotatedOnce();
    const stranger = await generateKeyPair({ name: 'stranger' });
    const text = encode(
      JSON.stringify(
        { ...honest.rotation, previous: { ...honest.rotation.previous, key: stranger.publicKey } },
        null,
        2,
      ),
    );
    await writeFile(published, await signedRotationOf(text, [old, await createSigner(next.secretKey)]));
    const held = await readFile(join(m.data, 'trust/main/registry.asc'), 'utf8');

    const [report] = await m.run((c) => c.updateRegistries(['main']));

    expect(report?.error).toBeUndefined();
    const state = await trustState(m);
    expect(state).toMatchObject({ fingerprint: next.fingerprint, rotations: 1 });
    expect(state.chain).toEqual([expect.objectContaining({ fingerprint: old.fingerprint, key: held })]);
  });
});

describe('when a published rotation is forged', () => {
  interface Forging {
    readonly old: Signer;
    readonly next: Signer;
    readonly stranger: Signer;
    /** The honest rotation 1's text and the registry it names. */
    readonly text: Uint8Array;
    readonly url: string;
  }
  /** The honest rotation's text with two signatures. */
  const signedBy = async (f: Forging, first: Signer, second: Signer): Promise<Uint8Array> =>
    encode(await signedRotationOf(f.text, [first, second]));
  const forgeries: [string, (f: Forging) => Promise<Uint8Array>][] = [
    ['signed by the old key only', (f) => signedBy(f, f.old, f.stranger)],
    ['signed by the new key only', (f) => signedBy(f, f.stranger, f.next)],
    [
      'a skipped sequence',
      async (f) =>
        (await signRotation({ registry: f.url, sequence: 2, previous: f.old, next: f.next, now: new Date() }))
          .bytes,
    ],
    [
      'a rotation from another key',
      async (f) =>
        (
          await signRotation({
            registry: f.url,
            sequence: 1,
            previous: f.stranger,
            next: f.next,
            now: new Date(),
          })
        ).bytes,
    ],
  ];

  it.each(forgeries)(
    'refuses %s (KEY_ROTATION_BROKEN, naming the step) and pins nothing',
    async (_, forge) => {
      const { registry, m, next, published, honest, old } = await rotatedOnce();
      await writeFile(
        published,
        await forge({
          old,
          next: await createSigner(next.secretKey),
          stranger: await createSigner((await generateKeyPair({ name: 'stranger' })).secretKey),
          text: honest.text,
          url: honest.rotation.registry,
        }),
      );
      const stateBefore = await trustState(m);

      const [report] = await m.run((c) => c.updateRegistries(['main']));
      expect(report?.error).toBeInstanceOf(TrustError);
      expect(report?.error).toMatchObject({
        code: 'KEY_ROTATION_BROKEN',
        message: expect.stringContaining(rotationKey(1)),
      });
      expect(await trustState(m)).toEqual(stateBefore);
      expect((await m.run((c) => c.listRegistries()))[0]?.entry.key_fingerprint).toBe(
        registry.firstFingerprint,
      );
    },
  );

  it.each([
    ['its next key as the secret key', async (secret: string) => secret],
    [
      'its next key as the secret key under a public key’s armor header',
      async (secret: string) => secret.replaceAll('PGP PRIVATE KEY BLOCK', 'PGP PUBLIC KEY BLOCK'),
    ],
    // Refused as no OpenPGP key before (openpgp.js reads none of it), never named as secret.
    [
      'its next key as its public primary key holding its secret subkey',
      async (secret: string) => (await publicPrimaryWithSecretSubkeys(secret)).armored,
    ],
  ])(
    'refuses a rotation, signed by both keys, that names %s (KEY_ROTATION_BROKEN, naming it), and keeps the key held',
    async (_, asGiven) => {
      // Only a hand-made rotation can be so (signRotation writes each signer's public key): followed, it moved
      // the client's trust to a key whose secret half the registry had just published for anyone to sign with.
      const { registry, m, next, published, honest, old } = await rotatedOnce();
      const nextSigner = await createSigner(next.secretKey);
      const text = encode(
        JSON.stringify(
          { ...honest.rotation, next: { fingerprint: next.fingerprint, key: await asGiven(next.secretKey) } },
          null,
          2,
        ),
      );
      await writeFile(published, await signedRotationOf(text, [old, nextSigner]));
      const stateBefore = await trustState(m);

      const [report] = await m.run((c) => c.updateRegistries(['main']));

      expect(report?.error).toBeInstanceOf(TrustError);
      expect(report?.error).toMatchObject({
        code: 'KEY_ROTATION_BROKEN',
        message: expect.stringContaining(`${rotationKey(1)} names a secret key (${next.fingerprint})`),
      });
      expect(await trustState(m)).toEqual(stateBefore);
      expect((await m.run((c) => c.listRegistries()))[0]?.entry.key_fingerprint).toBe(
        registry.firstFingerprint,
      );
    },
  );

  it('refuses at once a rotation nested deep around repeated keys (KEY_ROTATION_BROKEN), read before any signature', async () => {
    const registry = await servedRegistry(['1.0.0']);
    const m = await pinningFirstKey(registry);
    await rotateToNewKey(registry);
    // Whoever serves the registry (a mirror, the network) answers rotation 1 with 256 KiB of valid JSON:
    // 20,000 arrays deep around one object repeating its key some 20,000 times.
    const depth = 20_000;
    const repeats = Math.floor((MAX_ROTATION_BYTES - 2 * depth - 128) / 6);
    const nested = `${'['.repeat(depth)}{${Array(repeats).fill('"k":1').join(',')}}${']'.repeat(depth)}`;
    const body = `{"schema":"${SIGNED_ROTATION_SCHEMA}","rotation":"{}","x":${nested}}`;
    expect(body.length).toBeLessThanOrEqual(MAX_ROTATION_BYTES);
    await writeFile(join(registry.dir, 'public', rotationKey(1)), body);

    // The test's timeout bounds the run: it took five minutes before, and ended in a RangeError.
    const [report] = await m.run((c) => c.updateRegistries(['main']));
    expect(report?.error).toMatchObject({ name: 'TrustError', code: 'KEY_ROTATION_BROKEN' });
    expect(String(report?.error?.message).length).toBeLessThan(5_000_000);
    expect(await trustState(m)).toMatchObject({ fingerprint: registry.firstFingerprint });
  }, 30_000);

  it('keeps the original refusal when no rotation is published', async () => {
    const registry = await servedRegistry(['1.0.0']);
    const m = await pinningFirstKey(registry);
    await rotateToNewKey(registry);
    await unlink(join(registry.dir, 'public', rotationKey(1)));
    const [report] = await m.run((c) => c.updateRegistries(['main']));
    expect(report?.error).toMatchObject({ name: 'TrustError', code: 'SNAPSHOT_BAD_SIGNATURE' });
    expect(await trustState(m)).toMatchObject({ fingerprint: registry.firstFingerprint });
  });
});

describe('when the registry writes its URL another way after a rotation', () => {
  it('is followed by a client still on the first key: the rotation names the same registry as the snapshot', async () => {
    const registry = await servedRegistry(['1.0.0']);
    const m = await pinningFirstKey(registry);
    const second = await rotateToNewKey(registry);
    // The operator writes the same URL with its host in capitals and its default port: the snapshots name
    // it so from now on, while the published rotation (never rewritten) keeps the spelling it was made with.
    const file = join(registry.dir, 'plugindex.json');
    const config = JSON.parse(await readFile(file, 'utf8')) as { url: string };
    await writeFile(file, JSON.stringify({ ...config, url: 'https://PLUGINS.registry.example:443' }));
    await refreshSnapshot((await openRegistry(registry.dir)).context);

    const [report] = await m.run((c) => c.updateRegistries(['main']));
    expect(report?.error).toBeUndefined();
    expect(report?.report).toMatchObject({ fingerprint: second.fingerprint });
    expect(await trustState(m)).toMatchObject({ fingerprint: second.fingerprint, rotations: 1 });
  });
});

describe('when a registry rotated from is added again by the key it rotated from', () => {
  it('keeps the remembered log head and chain, so a history rewritten since is refused (LOG_FORKED)', async () => {
    const registry = await servedRegistry(['1.0.0']);
    const m = await pinningFirstKey(registry);
    const second = await rotateToNewKey(registry);
    const [followed] = await m.run((c) => c.updateRegistries(['main']));
    expect(followed?.report?.fingerprint).toBe(second.fingerprint);
    const before = await trustState(m);
    expect(before).toMatchObject({ fingerprint: second.fingerprint, rotations: 1 });
    const { context } = await openRegistry(registry.dir);
    await rewriteLog(context, (before.log as { length: number }).length);
    await expect(
      m.run((c) =>
        c.addRegistry({ name: 'main', url: registry.url, pin: { armored: registry.firstKey }, priority: 2 }),
      ),
    ).rejects.toMatchObject({ name: 'TrustError', code: 'LOG_FORKED' });
    expect(await trustState(m)).toEqual(before);
  });
});

describe('when a registry rotated from is added again by the key it rotated from, and an older snapshot is served', () => {
  it('refuses the rollback (SNAPSHOT_ROLLBACK): the re-add keeps the highest generation accepted', async () => {
    // Prepare: a client that followed a rotation, and the registry's snapshot as it was just after it (a
    // mirror or a CDN edge keeps it), then two refreshes the client accepts (the log the same throughout).
    const registry = await servedRegistry(['1.0.0']);
    const m = await pinningFirstKey(registry);
    await rotateToNewKey(registry);
    const published = ['snapshot.signed.json', 'snapshot.json', 'snapshot.json.asc'];
    const older = await Promise.all(published.map((key) => readFile(join(registry.dir, 'public', key))));
    const { context } = await openRegistry(registry.dir);
    await refreshSnapshot(context);
    await refreshSnapshot(context);
    const [followed] = await m.run((c) => c.updateRegistries(['main']));
    const before = await trustState(m);
    expect(before.highest_generation).toBe(followed?.report?.generation);

    // Act: the older snapshot served, and the registry added again by the first key (as its users were told).
    for (const [i, key] of published.entries())
      await writeFile(join(registry.dir, 'public', key), older[i] as Buffer);
    const error = await m
      .run((c) =>
        c.addRegistry({ name: 'main', url: registry.url, pin: { armored: registry.firstKey }, force: true }),
      )
      .catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(TrustError);
    expect(error).toMatchObject({ code: 'SNAPSHOT_ROLLBACK' });
    expect(await trustState(m)).toEqual(before);
  });
});

describe('when a snapshot signed by the pinned key counts fewer rotations than that key is at', () => {
  it('refuses it (KEY_ROTATION_BROKEN) and keeps the trust state, so where rotations are looked for is not reset', async () => {
    const registry = await servedRegistry(['1.0.0']);
    const m = await pinningFirstKey(registry);
    const second = await rotateToNewKey(registry);
    await m.run((c) => c.updateRegistries(['main']));
    const before = await trustState(m);
    expect(before).toMatchObject({ fingerprint: second.fingerprint, rotations: 1 });
    // Signed by the second key, as every snapshot now is, but counting no rotation.
    const { context } = await openRegistry(registry.dir);
    await rebuildRegistry(context, { keyRotations: 0 });
    const [report] = await m.run((c) => c.updateRegistries(['main']));
    expect(report?.error).toBeInstanceOf(TrustError);
    expect(report?.error).toMatchObject({
      code: 'KEY_ROTATION_BROKEN',
      message: expect.stringContaining('counts 0'),
    });
    expect(await trustState(m)).toEqual(before);
  });
});

/**
 * A served registry of one version that `verify --url` has checked once from its first key, keeping its
 * state in a file of its own (`label` in its name): where the tests of `verify --url --state` start.
 */
async function verifiedOnce(label: string): Promise<{ registry: Served; stateFile: string }> {
  const registry = await servedRegistry(['1.0.0']);
  const stateFile = join(scratch.path, `verify-${label}-${registries}.json`);
  await verifyRegistry({ url: REGISTRY_URL, mirror: registry.url, pinnedKey: registry.firstKey, stateFile });
  return { registry, stateFile };
}

describe('when verify --url --state meets a snapshot signed by the key it kept, counting fewer rotations than that key is at', () => {
  it('refuses it (KEY_ROTATION_BROKEN) as the session does, and keeps the state, so where rotations are looked for is not reset', async () => {
    // Prepare: verified through a rotation (the state at the second key, rotation 1), then a snapshot signed
    // by that key counting no rotation.
    const { registry, stateFile } = await verifiedOnce('count');
    const second = await rotateToNewKey(registry);
    await verifyRegistry({
      url: REGISTRY_URL,
      mirror: registry.url,
      pinnedKey: registry.firstKey,
      stateFile,
    });
    const before = await readFile(stateFile, 'utf8');
    expect(JSON.parse(before)).toMatchObject({ fingerprint: second.fingerprint, rotations: 1 });
    const { context } = await openRegistry(registry.dir);
    await rebuildRegistry(context, { keyRotations: 0 });

    // Act
    const error = await verifyRegistry({ url: REGISTRY_URL, mirror: registry.url, stateFile }).catch(
      (e: unknown) => e,
    );

    // Assess
    expect(error).toBeInstanceOf(TrustError);
    expect(error).toMatchObject({
      code: 'KEY_ROTATION_BROKEN',
      message: expect.stringContaining('counts 0'),
    });
    expect(await readFile(stateFile, 'utf8')).toBe(before);
  });
});

describe('when verify --url --state meets a rotation back to a key it followed away from', () => {
  it('refuses it (KEY_ROTATION_BROKEN) as the session does: a retired key never comes back', async () => {
    // Prepare: verified through a rotation from the first key to the second, then a rotation back to the
    // first (signed by both; the pipeline refuses to publish one, so it is put in place by hand) and the
    // registry re-signed by the first key, counting it.
    const { registry, stateFile } = await verifiedOnce('loop');
    const second = await newKey();
    const rotated = await rotateLocalRegistry(registry.dir, second.secretKey);
    await verifyRegistry({ url: REGISTRY_URL, mirror: registry.url, stateFile });
    // Run again from the key kept: the chain of keys left is kept with it.
    await verifyRegistry({ url: REGISTRY_URL, mirror: registry.url, stateFile });
    const before = await readFile(stateFile, 'utf8');
    expect(JSON.parse(before)).toMatchObject({
      fingerprint: second.fingerprint,
      chain: [registry.firstFingerprint],
    });
    const first = await createSigner(await readFile((rotated as { retired: string }).retired, 'utf8'));
    const { context } = await openRegistry(registry.dir);
    const back = await signRotation({
      registry: context.config.url,
      sequence: 2,
      previous: context.signer,
      next: first,
      now: new Date(),
    });
    await writeFile(join(registry.dir, 'public', rotationKey(2)), back.bytes);
    await rebuildRegistry({ ...context, signer: first }, { resignManifests: true, keyRotations: 2 });

    // Act
    const error = await verifyRegistry({ url: REGISTRY_URL, mirror: registry.url, stateFile }).catch(
      (e: unknown) => e,
    );

    // Assess
    expect(error).toBeInstanceOf(TrustError);
    expect(error).toMatchObject({
      code: 'KEY_ROTATION_BROKEN',
      message: expect.stringContaining('already rotated away from'),
    });
    expect(await readFile(stateFile, 'utf8')).toBe(before);
  });
});

describe('when verify --url --state is given a key the registry rotated from', () => {
  it('keeps the key it followed and starts from it next time; a damaged saved log is refused', async () => {
    const { registry, stateFile } = await verifiedOnce('state');
    const verify = () =>
      verifyRegistry({ url: REGISTRY_URL, mirror: registry.url, pinnedKey: registry.firstKey, stateFile });
    const second = await rotateToNewKey(registry);
    expect(await verify()).toMatchObject({ fingerprint: second.fingerprint, rotations: [{ sequence: 1 }] });
    const saved = JSON.parse(await readFile(stateFile, 'utf8'));
    expect(saved).toMatchObject({
      fingerprint: second.fingerprint,
      key: second.publicKey,
      rotations: 1,
      chain: [registry.firstFingerprint],
    });
    const third = await rotateToNewKey(registry);
    // From the second key, saved: only the rotation since is followed.
    const report = await verify();
    expect(report).toMatchObject({ fingerprint: third.fingerprint });
    expect(report.rotations).toEqual([{ sequence: 2, from: second.fingerprint, to: third.fingerprint }]);
    expect(JSON.parse(await readFile(stateFile, 'utf8'))).toMatchObject({
      key: third.publicKey,
      chain: [registry.firstFingerprint, second.fingerprint],
    });

    const state = JSON.parse(await readFile(stateFile, 'utf8'));
    await writeFile(stateFile, JSON.stringify({ ...state, log: { length: 'three' } }));
    await expect(verify()).rejects.toMatchObject({
      name: 'ClientError',
      code: 'TRUST_STATE_INVALID',
      message: expect.stringContaining('#/log'),
    });
  });
});

describe('when verify --url --state is given a key the registry rotated from, and the key the state kept cannot be trusted', () => {
  it.each(UNTRUSTED_KEYS)(
    'refuses $label kept there (PINNED_KEY_UNTRUSTED), naming the state file, before anything is read by it',
    async (key) => {
      // Prepare: verified through a rotation (the state at the second key, its chain the first), then the key
      // kept written as a verify that took any key left it.
      const { registry, stateFile } = await verifiedOnce('untrusted');
      await rotateToNewKey(registry);
      await verifyRegistry({
        url: REGISTRY_URL,
        mirror: registry.url,
        pinnedKey: registry.firstKey,
        stateFile,
      });
      const state = JSON.parse(await readFile(stateFile, 'utf8'));
      await writeFile(
        stateFile,
        JSON.stringify({ ...state, fingerprint: key.fingerprint, key: key.publicKey }),
      );
      const before = await readFile(stateFile, 'utf8');

      // Act
      const verifying = verifyRegistry({
        url: REGISTRY_URL,
        mirror: registry.url,
        pinnedKey: registry.firstKey,
        stateFile,
      });

      // Assess
      await expect(verifying).rejects.toMatchObject({
        name: 'ClientError',
        code: 'PINNED_KEY_UNTRUSTED',
        message: expect.stringMatching(
          new RegExp(`${stateFile}#/key: .*${key.fingerprint}.*cannot be trusted: .*${key.reason}`),
        ),
      });
      expect(await readFile(stateFile, 'utf8')).toBe(before);
      // And without --key, the key kept read as the pin: refused the same way (it was KEY_INVALID, naming
      // no file).
      await expect(
        verifyRegistry({ url: REGISTRY_URL, mirror: registry.url, stateFile }),
      ).rejects.toMatchObject({
        name: 'ClientError',
        code: 'PINNED_KEY_UNTRUSTED',
        message: expect.stringContaining(`${stateFile}#/key: key ${key.fingerprint}`),
      });
      expect(await readFile(stateFile, 'utf8')).toBe(before);
    },
  );
});

/**
 * What the holder of a stolen registry key does once the registry rotated away from it: writes a manifest
 * of their own beside an installed version (more permissions, say), its record in installed.json and a
 * signature by the stolen key; everything else (the artifact) is left as installed.
 */
async function plantSignedByStolenKey(dir: string, stolen: Signer): Promise<void> {
  const folder = join(dir, NAME, '1.0.0');
  const original = JSON.parse(await readFile(join(folder, 'manifest.json'), 'utf8'));
  const planted = encode(
    `${JSON.stringify({ ...original, description: 'planted by the thief' }, null, 2)}\n`,
  );
  await writeFile(join(folder, 'manifest.json'), planted);
  await writeFile(join(folder, 'manifest.json.asc'), await stolen.sign(planted));
  const installed = JSON.parse(await readFile(join(dir, 'installed.json'), 'utf8'));
  installed.plugins[NAME].versions['1.0.0'].manifest_sha256 = sha256Hex(planted);
  await writeFile(join(dir, 'installed.json'), JSON.stringify(installed, null, 2));
}

describe('when a registry rotates its key because the old key was stolen (rotate-key --compromised)', () => {
  let registry: Served;
  let stolen: Signer;
  let second: KeyPair;
  let early: ClientMachine;
  let lockBefore: string;
  let firstSignature: Buffer;

  beforeAll(async () => {
    registry = await servedRegistry(['1.0.0']);
    second = await newKey();
    early = await machine();
    await early.run(async (c) => {
      await c.addRegistry({ name: 'main', url: registry.url, pin: { armored: registry.firstKey } });
      await c.install({ requests: [`${NAME}@1.0.0`], lockfile: early.lockfile, dir: early.dir });
    });
    lockBefore = await readFile(early.lockfile, 'utf8');
    firstSignature = await readFile(join(registry.dir, 'public', `plugins/${NAME}/1.0.0/manifest.json.asc`));
    stolen = await createSigner(await readFile(join(registry.dir, 'keys/registry-secret.asc'), 'utf8'));
    const rotated = await rotateLocalRegistry(registry.dir, second.secretKey, { compromised: true });
    expect(rotated).toMatchObject({ status: 'rotated', compromised: true });
    const reports = await early.run((c) => c.updateRegistries(['main']));
    expect(reports[0]?.error).toBeUndefined();
  });

  it('keeps the mark in the trust state, beside the key it retired', async () => {
    const state = await trustState(early);
    expect(state).toMatchObject({
      fingerprint: second.fingerprint,
      rotations: 1,
      chain: [{ fingerprint: registry.firstFingerprint, retired_by: 1, compromised: true }],
    });
  });

  it('refuses in verify a version whose manifest the stolen key signed (KEY_REVOKED), saying what mends it', async () => {
    // The version installed before the rotation: its signature beside it is the retired key's.
    const findings = await early.run((c) => c.verifyInstalled({ dir: early.dir }));
    expect(findings).toEqual([
      expect.objectContaining({
        name: NAME,
        version: '1.0.0',
        ok: false,
        code: 'KEY_REVOKED',
        message: expect.stringMatching(
          new RegExp(
            `${registry.firstFingerprint}.*keys/rotation/1\\.json.*plugindex install ${NAME}@1\\.0\\.0`,
          ),
        ),
      }),
    ]);
    // And the thief's own manifest, which a routine rotation lets pass (below): refused the same way.
    await plantSignedByStolenKey(early.dir, stolen);
    const planted = await early.run((c) => c.verifyInstalled({ dir: early.dir }));
    expect(planted.map((f) => [f.ok, f.code])).toEqual([[false, 'KEY_REVOKED']]);
  });

  it('is mended by installing the version again online: the signature by the current key placed beside it', async () => {
    await early.run((c) =>
      c.install({ requests: [`${NAME}@1.0.0`], lockfile: early.lockfile, dir: early.dir }),
    );
    const placed = await readFile(join(early.dir, NAME, '1.0.0', 'manifest.json.asc'), 'utf8');
    expect(placed).toBe(
      await readFile(join(registry.dir, 'public', `plugins/${NAME}/1.0.0/manifest.json.asc`), 'utf8'),
    );
    const findings = await early.run((c) => c.verifyInstalled({ dir: early.dir }));
    expect(findings.map((f) => [`${f.name}@${f.version}`, f.ok])).toEqual([[`${NAME}@1.0.0`, true]]);
  });

  it("installs frozen from a lock of the stolen key only by the registry's signature by the current key, never the cached one", async () => {
    // The machine has the manifest and its signature by the first key cached under that key (its install
    // before the rotation): a frozen install of the lock made then reads the signature from the registry.
    const lockfile = join(scratch.path, 'compromised-frozen.lock');
    await writeFile(lockfile, lockBefore);
    const dir = join(scratch.path, 'compromised-frozen');
    const frozen = await early.run((c) => c.install({ requests: [], lockfile, frozen: true, dir }));
    expect(frozen.items.map((i) => i.version)).toEqual(['1.0.0']);
    const placed = await readFile(join(dir, NAME, '1.0.0', 'manifest.json.asc'));
    expect(placed).not.toEqual(firstSignature);
    const findings = await early.run((c) => c.verifyInstalled({ dir }));
    expect(findings.map((f) => f.ok)).toEqual([true]);

    // A frozen install mends a folder verify refused, as an install does.
    await plantSignedByStolenKey(dir, stolen);
    expect((await early.run((c) => c.verifyInstalled({ dir }))).map((f) => f.code)).toEqual(['KEY_REVOKED']);
    await early.run((c) => c.install({ requests: [], lockfile, frozen: true, dir }));
    expect((await early.run((c) => c.verifyInstalled({ dir }))).map((f) => f.ok)).toEqual([true]);
  });

  it("refuses a frozen install from a lock of the stolen key when what serves the registry answers with that key's signature (KEY_REVOKED)", async () => {
    // A cache in front that answers the stale signature for the digest's query, but lets a fresh read
    // through: the fresh read (the current key's) is taken.
    const stale = await staleSignatureCache(
      registry.url,
      `/plugins/${NAME}/1.0.0/manifest.json.asc`,
      firstSignature,
    );
    const viaCache = await machine();
    await viaCache.run((c) =>
      c.addRegistry({ name: 'main', url: stale.url, pin: { armored: registry.firstKey } }),
    );
    const lockfile = join(scratch.path, 'compromised-stale.lock');
    await writeFile(lockfile, lockBefore);
    const installed = await viaCache.run((c) =>
      c.install({ requests: [], lockfile, frozen: true, dir: viaCache.dir }),
    );
    expect(installed.items.map((i) => i.version)).toEqual(['1.0.0']);
    expect(stale.served).toBe(1);

    // One that answers the stolen key's signature to every read (the thief serving the registry's name).
    const thief = await staleSignatureCache(
      registry.url,
      `/plugins/${NAME}/1.0.0/manifest.json.asc`,
      firstSignature,
      { always: true },
    );
    const victim = await machine();
    await victim.run((c) =>
      c.addRegistry({ name: 'main', url: thief.url, pin: { armored: registry.firstKey } }),
    );
    await expect(
      victim.run((c) => c.install({ requests: [], lockfile, frozen: true, dir: victim.dir })),
    ).rejects.toMatchObject({
      name: 'ClientError',
      code: 'KEY_REVOKED',
      message: expect.stringContaining('keys/rotation/1.json'),
    });
    // A lock named with --lockfile is named in the remedy: `plugindex install` alone writes plugindex.lock.
    await expect(
      victim.run((c) =>
        c.install({ requests: [], lockfile, namedLockfile: lockfile, frozen: true, dir: victim.dir }),
      ),
    ).rejects.toMatchObject({
      code: 'KEY_REVOKED',
      message: expect.stringContaining(
        `\`plugindex install --lockfile ${lockfile}\` without --frozen writes the lock again`,
      ),
    });
  });
});

describe('when a registry rotates its key routinely (no --compromised)', () => {
  it('keeps trusting the retired key for what it signed: a manifest it signed beside an installed version passes verify', async () => {
    const registry = await servedRegistry(['1.0.0']);
    const next = await newKey();
    const m = await machine();
    await m.run(async (c) => {
      await c.addRegistry({ name: 'main', url: registry.url, pin: { armored: registry.firstKey } });
      await c.install({ requests: [`${NAME}@1.0.0`], lockfile: m.lockfile, dir: m.dir });
    });
    const retired = await createSigner(
      await readFile(join(registry.dir, 'keys/registry-secret.asc'), 'utf8'),
    );
    expect(await rotateLocalRegistry(registry.dir, next.secretKey)).not.toHaveProperty('compromised');
    await m.run((c) => c.updateRegistries(['main']));
    const state = await trustState(m);
    expect((state.chain as Record<string, unknown>[])[0]).toMatchObject({ retired_by: 1 });
    expect((state.chain as Record<string, unknown>[])[0]).not.toHaveProperty('compromised');

    await plantSignedByStolenKey(m.dir, retired);

    // Today's behaviour, kept: the retired key's signature is trusted after a routine rotation.
    const findings = await m.run((c) => c.verifyInstalled({ dir: m.dir }));
    expect(findings.map((f) => f.ok)).toEqual([true]);
  });
});

describe('when a client older than the mark followed a rotation made after a theft', () => {
  /** The chain as a client before the mark kept it: each link its fingerprint and key, nothing more. */
  async function keptByOlderClient(m: ClientMachine, name = 'main'): Promise<void> {
    const file = join(m.data, 'trust', name, 'state.json');
    const state = JSON.parse(await readFile(file, 'utf8'));
    state.chain = state.chain.map((link: { fingerprint: string; key: string }) => ({
      fingerprint: link.fingerprint,
      key: link.key,
    }));
    await writeFile(file, JSON.stringify(state, null, 2));
  }

  /** The links of `name`'s chain taught nothing by their rotation, as if that was asked `days` ago. */
  async function askedDaysAgo(m: ClientMachine, name: string, days: number): Promise<void> {
    const file = join(m.data, 'trust', name, 'state.json');
    const state = JSON.parse(await readFile(file, 'utf8'));
    const then = new Date(Date.now() - days * 24 * 60 * 60 * 1000).toISOString();
    for (const link of state.chain) if (link.asked_at !== undefined) link.asked_at = then;
    await writeFile(file, JSON.stringify(state, null, 2));
  }

  it('asks for a rotation that is gone once a run whatever the names, then not again for a day', async () => {
    // Prepare: two names of one registry, both followed the rotation and kept as an older client keeps
    // them; the rotation then gone from what serves the registry (a 404), every request for it counted.
    const registry = await servedRegistry(['1.0.0']);
    const counted = await staleSignatureCache(registry.url, `/${rotationKey(1)}`, new Uint8Array(), {
      active: () => false,
    });
    const m = await machine();
    await m.run(async (c) => {
      await c.addRegistry({ name: 'main', url: counted.url, pin: { armored: registry.firstKey } });
      await c.addRegistry({ name: 'second', url: counted.url, pin: { armored: registry.firstKey } });
    });
    await rotateLocalRegistry(registry.dir, (await newKey()).secretKey, { compromised: true });
    await m.run((c) => c.updateRegistries(['main', 'second']));
    await keptByOlderClient(m, 'main');
    await keptByOlderClient(m, 'second');
    await unlink(join(registry.dir, 'public', rotationKey(1)));
    const asked = counted.asked as (string | null)[];
    asked.length = 0;

    // Act: a run checking both names, then another run.
    const first = await m.run((c) => c.updateRegistries(['main', 'second']));
    const once = asked.length;
    const second = await m.run((c) => c.updateRegistries(['main', 'second']));

    // Assess: before, each check of each name asked (2, then 2 more), every run for good.
    expect([...first, ...second].map((r) => r.error)).toEqual([undefined, undefined, undefined, undefined]);
    expect(once).toBe(1);
    expect(asked).toHaveLength(1);
    expect((await trustState(m)).chain).toEqual([
      expect.objectContaining({ fingerprint: registry.firstFingerprint, asked_at: expect.any(String) }),
    ]);
    // A day later it is asked for again (once).
    await askedDaysAgo(m, 'main', 2);
    await m.run((c) => c.updateRegistries(['main', 'second']));
    expect(asked).toHaveLength(2);
  });

  it('learns the mark from the rotation at its next check, and refuses the stolen key from then on', async () => {
    // Prepare: a client that installed under the first key and followed the rotation, its state then as an
    // older client leaves it (which read the record and ignored the mark).
    const registry = await servedRegistry(['1.0.0']);
    const m = await machine();
    await m.run(async (c) => {
      await c.addRegistry({ name: 'main', url: registry.url, pin: { armored: registry.firstKey } });
      await c.install({ requests: [`${NAME}@1.0.0`], lockfile: m.lockfile, dir: m.dir });
    });
    const next = await newKey();
    await rotateLocalRegistry(registry.dir, next.secretKey, { compromised: true });
    await m.run((c) => c.updateRegistries(['main']));
    await keptByOlderClient(m);
    // Such a state trusts the stolen key, as the older client did.
    expect((await m.run((c) => c.verifyInstalled({ dir: m.dir }))).map((f) => f.ok)).toEqual([true]);

    // Act
    const reports = await m.run((c) => c.updateRegistries(['main']));

    // Assess
    expect(reports[0]?.error).toBeUndefined();
    expect((await trustState(m)).chain).toEqual([
      expect.objectContaining({ fingerprint: registry.firstFingerprint, retired_by: 1, compromised: true }),
    ]);
    expect((await m.run((c) => c.verifyInstalled({ dir: m.dir }))).map((f) => f.code)).toEqual([
      'KEY_REVOKED',
    ]);
  });

  it('learns nothing from a rotation the thief made (the stolen key and one of their own), and asks again later', async () => {
    // Prepare: as above, through what answers for the registry, which then serves as rotation 1 one the
    // thief signed.
    const registry = await servedRegistry(['1.0.0']);
    const thiefKey = await createSigner((await newKey()).secretKey);
    const stolen = await createSigner(await readFile(join(registry.dir, 'keys/registry-secret.asc'), 'utf8'));
    const next = await newKey();
    await rotateLocalRegistry(registry.dir, next.secretKey, { compromised: true });
    const { bytes: forged } = await signRotation({
      registry: 'https://plugins.registry.example',
      sequence: 1,
      previous: stolen,
      next: thiefKey,
      now: new Date(),
    });
    let forging = false;
    const forger = await staleSignatureCache(registry.url, `/${rotationKey(1)}`, forged, {
      always: true,
      active: () => forging,
    });
    const m = await machine();
    await m.run((c) => c.addRegistry({ name: 'main', url: forger.url, pin: { armored: registry.firstKey } }));
    await keptByOlderClient(m);
    forging = true;
    const before = (await trustState(m)).chain;

    // Act: the check reads the forged rotation, which does not lead to the key the client went to.
    const reports = await m.run((c) => c.updateRegistries(['main']));

    // Assess: nothing learnt, nothing refused; the link stays as kept, asked again at the next check.
    expect(reports[0]?.error).toBeUndefined();
    expect(forger.served).toBeGreaterThan(0);
    expect((await trustState(m)).chain).toEqual(
      (before as Record<string, unknown>[]).map((link) => ({ ...link, asked_at: expect.any(String) })),
    );
    // The registry's own rotation, once it is served again, is learnt at the first check a day later.
    forging = false;
    await askedDaysAgo(m, 'main', 2);
    await m.run((c) => c.updateRegistries(['main']));
    expect((await trustState(m)).chain).toEqual([
      expect.objectContaining({ fingerprint: registry.firstFingerprint, retired_by: 1, compromised: true }),
    ]);
  });
});

describe('when install, update or a frozen install meets a version placed under a key since retired as compromised', () => {
  let registry: Served;
  let second: KeyPair;
  let m: ClientMachine;
  let lockBefore: string;
  let currentSignature: string;
  const dirs = { install: '', update: '', frozen: '' };

  /** installed.json's record of the version in `dir`. */
  async function recordIn(dir: string): Promise<Record<string, unknown>> {
    const installed = JSON.parse(await readFile(join(dir, 'installed.json'), 'utf8'));
    return installed.plugins[NAME].versions['1.0.0'];
  }
  const signatureIn = (dir: string) => readFile(join(dir, NAME, '1.0.0', 'manifest.json.asc'), 'utf8');

  beforeAll(async () => {
    registry = await servedRegistry(['1.0.0']);
    m = await pinningFirstKey(registry);
    for (const key of Object.keys(dirs) as (keyof typeof dirs)[]) {
      dirs[key] = join(scratch.path, `revoked-${key}`);
      await m.run((c) => c.install({ requests: [`${NAME}@1.0.0`], lockfile: m.lockfile, dir: dirs[key] }));
    }
    lockBefore = await readFile(m.lockfile, 'utf8');
    second = await newKey();
    await rotateLocalRegistry(registry.dir, second.secretKey, { compromised: true });
    const reports = await m.run((c) => c.updateRegistries(['main']));
    expect(reports[0]?.error).toBeUndefined();
    currentSignature = await readFile(
      join(registry.dir, 'public', `plugins/${NAME}/1.0.0/manifest.json.asc`),
      'utf8',
    );
  });

  it('install places it again with the current key, unasked (no verify first), and leaves it the next time', async () => {
    const dir = dirs.install;
    expect((await recordIn(dir)).registry_key).toBe(registry.firstFingerprint);
    const lockfile = join(scratch.path, 'revoked-install.lock');
    await writeFile(lockfile, lockBefore);
    const again = await m.run((c) => c.install({ requests: [`${NAME}@1.0.0`], lockfile, dir }));
    expect(again.items.map((i) => i.unchanged)).toEqual([false]);
    expect(await signatureIn(dir)).toBe(currentSignature);
    expect((await recordIn(dir)).registry_key).toBe(second.fingerprint);
    const next = await m.run((c) => c.install({ requests: [`${NAME}@1.0.0`], lockfile, dir }));
    expect(next.items.map((i) => i.unchanged)).toEqual([true]);
  });

  it('update places the current version again with the current key', async () => {
    const dir = dirs.update;
    const lockfile = join(scratch.path, 'revoked-update.lock');
    await writeFile(lockfile, lockBefore);
    const updated = await m.run((c) => c.install({ requests: [NAME], lockfile, dir, upgrade: true }));
    expect(updated.items.map((i) => [i.version, i.unchanged])).toEqual([['1.0.0', false]]);
    expect(await signatureIn(dir)).toBe(currentSignature);
    expect((await recordIn(dir)).registry_key).toBe(second.fingerprint);
  });

  it('a frozen install of the lock made under the stolen key places it again once, recording the key that signed what it placed', async () => {
    const dir = dirs.frozen;
    const lockfile = join(scratch.path, 'revoked-frozen.lock');
    await writeFile(lockfile, lockBefore);
    const frozen = await m.run((c) => c.install({ requests: [], lockfile, frozen: true, dir }));
    expect(frozen.items.map((i) => i.unchanged)).toEqual([false]);
    expect(await signatureIn(dir)).toBe(currentSignature);
    // The lock still names the stolen key (a frozen install writes no lock); the record, the key that signed.
    expect(parseLockfile(await readFile(lockfile, 'utf8'), lockfile).registries.main?.key_fingerprint).toBe(
      registry.firstFingerprint,
    );
    expect((await recordIn(dir)).registry_key).toBe(second.fingerprint);
    const next = await m.run((c) => c.install({ requests: [], lockfile, frozen: true, dir }));
    expect(next.items.map((i) => i.unchanged)).toEqual([true]);
  });

  it('a frozen install of that lock into a new folder records the current key, whose signature it placed', async () => {
    const dir = join(scratch.path, 'revoked-frozen-new');
    const lockfile = join(scratch.path, 'revoked-frozen-new.lock');
    await writeFile(lockfile, lockBefore);
    await m.run((c) => c.install({ requests: [], lockfile, frozen: true, dir }));
    expect(await signatureIn(dir)).toBe(currentSignature);
    expect((await recordIn(dir)).registry_key).toBe(second.fingerprint);
    const findings = await m.run((c) => c.verifyInstalled({ dir }));
    expect(findings.map((f) => f.ok)).toEqual([true]);
  });
});

describe('when another name of a registry followed a rotation that marked the key it holds as stolen', () => {
  it('refuses a snapshot signed by that key (KEY_REVOKED), however new its generation, under a name that never followed the rotation', async () => {
    // Prepare: a client pins the first key as `main`; the thief keeps a copy of the registry and the key
    // the registry then rotates away from as stolen, and `main` follows the rotation (the mark kept). The
    // thief, holding the registry's files as published and the stolen key, publishes under that key, past
    // the generation `main` accepted and extending the log it holds.
    const { registry, m, thief } = await stolenThenRotatedAway('stolen-copy');
    expect(await trustState(m)).toMatchObject({
      chain: [{ fingerprint: registry.firstFingerprint, compromised: true }],
    });

    // Act: the same registry reached under a name pinning the stolen key (as a set file written before the
    // theft pins it), through what the thief serves.
    const adding = m.run((c) =>
      c.addRegistry({ name: 'old-pin', url: thief.url, pin: { armored: registry.firstKey } }),
    );

    // Assess
    await expect(adding).rejects.toMatchObject({
      name: 'ClientError',
      code: 'KEY_REVOKED',
      message: expect.stringContaining(registry.firstFingerprint),
    });

    // Nor does a reset of what the registry's names accepted take that snapshot as their floor.
    await expectResetRefused(m, thief.url, registry.firstKey);
  });
});

describe('when another name of a registry followed a rotation that marked the key it holds as stolen, and the thief rotates that key to one of their own', () => {
  it('refuses the chain from the stolen key to any key but the one that rotation named (KEY_REVOKED), nothing pinned', async () => {
    // Prepare: a client pins the first key as `main`; the thief copies the registry with that key before
    // the registry rotates away from it as stolen, and `main` follows the rotation (the mark kept).
    const registry = await servedRegistry(['1.0.0']);
    const m = await pinningFirstKey(registry);
    const copy = join(scratch.path, `stolen-rotated-${registries}`);
    await cp(registry.dir, copy, { recursive: true });
    const second = await newKey();
    await rotateLocalRegistry(registry.dir, second.secretKey, { compromised: true });
    expect((await m.run((c) => c.updateRegistries(['main'])))[0]?.error).toBeUndefined();
    // The thief signs a rotation of their own from the stolen key (rotation 1 too, signed by the stolen key
    // and theirs, as any rotation is) and publishes a new version under their key.
    const theirs = await newKey();
    await rotateLocalRegistry(copy, theirs.secretKey);
    await publish(copy, ['2.0.0']);
    const thief = await serve(copy);

    // Act: the same registry reached under a name pinning the stolen key, through what the thief serves.
    const adding = m.run((c) =>
      c.addRegistry({ name: 'old-pin', url: thief.url, pin: { armored: registry.firstKey } }),
    );

    // Assess: the stolen key's rotation to the thief's key is not the one `main` followed.
    await expect(adding).rejects.toMatchObject({
      name: 'ClientError',
      code: 'KEY_REVOKED',
      message: expect.stringContaining(registry.firstFingerprint),
    });
    expect((await m.run((c) => c.listRegistries())).map((r) => r.entry.name)).toEqual(['main']);
    // Nor does a reset of what the registry's names accepted take the thief's snapshot as their floor.
    const kept = await trustState(m);
    await expect(
      m.run((c) => c.resetRegistryTrust({ url: thief.url, armoredKey: registry.firstKey })),
    ).rejects.toMatchObject({
      name: 'ClientError',
      code: 'TRUST_RESET_REFUSED',
      message: expect.stringContaining(`to key ${second.fingerprint}`),
    });
    expect(await trustState(m)).toEqual(kept);
    // The rotation the registry published, which named its current key, is still followed from the stolen key.
    const honest = await m.run((c) =>
      c.addRegistry({ name: 'old-pin', url: registry.url, pin: { armored: registry.firstKey } }),
    );
    expect(honest).toMatchObject({ fingerprint: second.fingerprint });
  });
});

describe('when another name of a registry followed a routine rotation away from the key a name holds, and that key leaks', () => {
  it('refuses a snapshot signed by the retired key at or above the generation the other name accepted (SNAPSHOT_RETIRED_KEY), nothing pinned', async () => {
    // Prepare: a client pins the first key as `main`; the registry rotates away from it routinely, and
    // `main` follows. The retired key leaks: whoever holds it signs the registry's files as published,
    // past the generation `main` accepted and extending the log it holds (it counts the rotation too).
    const registry = await servedRegistry(['1.0.0']);
    const m = await pinningFirstKey(registry);
    const retired = await readFile(join(registry.dir, 'keys/registry-secret.asc'), 'utf8');
    await rotateLocalRegistry(registry.dir, (await newKey()).secretKey);
    expect((await m.run((c) => c.updateRegistries(['main'])))[0]?.error).toBeUndefined();
    const leaked = await publishedByOldKey(registry, retired, 'leaked-copy');

    // Act: the registry reached under a name pinning the retired key (a set file written before the
    // rotation pins it), through what the key's holder serves.
    const adding = m.run((c) =>
      c.addRegistry({ name: 'old-pin', url: leaked.url, pin: { armored: registry.firstKey } }),
    );

    // Assess: the registry signs nothing with a key after rotating away from it.
    await expect(adding).rejects.toMatchObject({
      name: 'TrustError',
      code: 'SNAPSHOT_RETIRED_KEY',
      message: expect.stringContaining('trust/main'),
    });
    expect((await m.run((c) => c.listRegistries())).map((r) => r.entry.name)).toEqual(['main']);
    // Nor does a reset of what the registry's names accepted take that snapshot as their floor.
    await expectResetRefused(m, leaked.url, registry.firstKey);
    // The registry itself, reached under that name, is followed through its rotation as ever.
    const honest = await m.run((c) =>
      c.addRegistry({ name: 'old-pin', url: registry.url, pin: { armored: registry.firstKey } }),
    );
    expect(honest.rotated).toMatchObject({ from: registry.firstFingerprint, steps: 1 });
  });
});

describe('when another name of a registry followed a routine rotation away from a key that then leaks, and its holder rotates it to a key of their own', () => {
  it('refuses the chain from the retired key to any key but the one the registry rotated it to (KEY_ROTATION_BROKEN), nothing pinned', async () => {
    // Prepare: whoever will hold the key copies the registry with it; the registry rotates away from the
    // key routinely and a name follows; the holder rotates the copy to a key of their own and publishes.
    const registry = await servedRegistry(['1.0.0']);
    const m = await pinningFirstKey(registry);
    const copy = join(scratch.path, `leaked-rotated-${registries}`);
    await cp(registry.dir, copy, { recursive: true });
    const second = await newKey();
    await rotateLocalRegistry(registry.dir, second.secretKey);
    expect((await m.run((c) => c.updateRegistries(['main'])))[0]?.error).toBeUndefined();
    await rotateLocalRegistry(copy, (await newKey()).secretKey);
    await publish(copy, ['2.0.0']);
    const leaked = await serve(copy);

    // Act: the registry reached under a name pinning the retired key, through what its holder serves.
    const adding = m.run((c) =>
      c.addRegistry({ name: 'old-pin', url: leaked.url, pin: { armored: registry.firstKey } }),
    );

    // Assess: a key is retired once, to one key, and `main` followed that rotation.
    await expect(adding).rejects.toMatchObject({
      name: 'TrustError',
      code: 'KEY_ROTATION_BROKEN',
      message: expect.stringContaining(`to key ${second.fingerprint}`),
    });
    expect((await m.run((c) => c.listRegistries())).map((r) => r.entry.name)).toEqual(['main']);
    await expectResetRefused(m, leaked.url, registry.firstKey);
  });
});

describe('when a name followed a rotation the thief of its key signed before another name saw that key retired as stolen', () => {
  it('refuses verify of what it installed and a frozen install of its lock (KEY_REVOKED), saying the key held was reached through the thief', async () => {
    // Prepare: the thief copies the registry with its key, rotates the copy to a key of their own and
    // publishes a version under it; a client reaching the registry through what the thief serves follows
    // that rotation (no name knows of a theft yet) and installs the version, its lock under the thief's key.
    const registry = await servedRegistry(['1.0.0']);
    const copy = join(scratch.path, `stolen-early-${registries}`);
    await cp(registry.dir, copy, { recursive: true });
    await rotateLocalRegistry(copy, (await newKey()).secretKey);
    await publish(copy, ['2.0.0']);
    const thief = await serve(copy);
    const m = await machine();
    await m.run(async (c) => {
      await c.addRegistry({ name: 'old-pin', url: thief.url, pin: { armored: registry.firstKey } });
      await c.install({ requests: [`${NAME}@2.0.0`], lockfile: m.lockfile, dir: m.dir });
    });
    expect((await m.run((c) => c.verifyInstalled({ dir: m.dir }))).map((f) => f.ok)).toEqual([true]);
    // The registry learns of the theft and rotates away from the key as stolen; a name of it follows.
    const second = await newKey();
    await rotateLocalRegistry(registry.dir, second.secretKey, { compromised: true });
    await m.run((c) =>
      c.addRegistry({ name: 'main', url: registry.url, pin: { armored: registry.firstKey } }),
    );

    // Act
    const findings = await m.run((c) => c.verifyInstalled({ dir: m.dir }));
    const frozen = m.run((c) =>
      c.install({
        requests: [],
        lockfile: m.lockfile,
        frozen: true,
        dir: join(scratch.path, `frozen-${registries}`),
      }),
    );

    // Assess: the key old-pin holds came from the stolen key by a rotation the registry never made.
    const reached = expect.stringContaining(`reached from key ${registry.firstFingerprint}`);
    expect(findings).toEqual([
      expect.objectContaining({
        name: NAME,
        version: '2.0.0',
        ok: false,
        code: 'KEY_REVOKED',
        message: reached,
      }),
    ]);
    await expect(frozen).rejects.toMatchObject({
      name: 'ClientError',
      code: 'KEY_REVOKED',
      message: reached,
    });
  });
});

describe('when one client judges a name that reached the thief\u2019s key through its rotation after a name pinning that key itself', () => {
  it('still refuses verify of what the first installed (KEY_REVOKED): what is known of a key held is kept per chain, not per key', async () => {
    // Prepare: as above, `old-pin` followed the thief's rotation from the stolen key and installed under
    // it, and `main` followed the registry's rotation marking that key stolen; beside them, `direct` pins
    // the thief's key itself (no chain: nothing tells it came from the stolen key), installed from too.
    const registry = await servedRegistry(['1.0.0']);
    const copy = join(scratch.path, `stolen-cached-${registries}`);
    await cp(registry.dir, copy, { recursive: true });
    const thiefKey = await newKey();
    await rotateLocalRegistry(copy, thiefKey.secretKey);
    await publish(copy, ['2.0.0']);
    const thief = await serve(copy);
    const m = await machine();
    const directDir = join(scratch.path, `direct-${registries}`);
    await m.run(async (c) => {
      await c.addRegistry({ name: 'old-pin', url: thief.url, pin: { armored: registry.firstKey } });
      await c.install({ requests: [`${NAME}@2.0.0`], lockfile: m.lockfile, dir: m.dir });
      await c.addRegistry({ name: 'direct', url: thief.url, pin: { armored: thiefKey.publicKey } });
      await c.install({
        requests: [`${NAME}@2.0.0`],
        registry: 'direct',
        lockfile: join(directDir, 'plugindex.lock'),
        dir: directDir,
      });
    });
    await rotateLocalRegistry(registry.dir, (await newKey()).secretKey, { compromised: true });
    await m.run((c) =>
      c.addRegistry({ name: 'main', url: registry.url, pin: { armored: registry.firstKey } }),
    );

    // Act: one client verifies the folder `direct` installed into, then the one `old-pin` did.
    const findings = await m.run(async (c) => {
      await c.verifyInstalled({ dir: directDir });
      return c.verifyInstalled({ dir: m.dir });
    });

    // Assess: judged by `direct`'s record (the same key held, no chain), `old-pin`'s passed.
    expect(findings).toEqual([
      expect.objectContaining({
        name: NAME,
        version: '2.0.0',
        ok: false,
        code: 'KEY_REVOKED',
        message: expect.stringContaining(`reached from key ${registry.firstFingerprint}`),
      }),
    ]);
  });
});

describe('when two runs check a registry side by side and the faster follows a rotation that marks the key held as stolen', () => {
  it('keeps the key followed, its mark and its floor: the slower run, saving its snapshot by the stolen key last, takes back none', async () => {
    // Prepare: a client pins the first key; the registry publishes again under it.
    const registry = await servedRegistry(['1.0.0']);
    const m = await pinningFirstKey(registry);
    await publish(registry.dir, ['1.1.0']);
    // The slow run has that snapshot, by the first key, and stops as it asks for the log's new entries.
    const { slowRun, release } = await updateStoppedAtLog(m);
    // Meanwhile the key is stolen and rotated away from, and a run follows the rotation.
    const second = await newKey();
    await rotateLocalRegistry(registry.dir, second.secretKey, { compromised: true });
    const [fast] = await m.run((c) => c.updateRegistries(['main']));
    expect(fast?.error).toBeUndefined();
    const followed = await trustState(m);
    expect(followed).toMatchObject({
      fingerprint: second.fingerprint,
      chain: [{ fingerprint: registry.firstFingerprint, compromised: true }],
    });

    // Act: the slow run finishes with its snapshot by the first key.
    release();
    const [late] = await slowRun;

    // Assess: it checked before the rotation was saved and finishes, but the trust state is the one that
    // followed it, and the next run holds the key followed.
    expect(late?.error).toBeUndefined();
    expect(await trustState(m)).toEqual(followed);
    const [next] = await m.run((c) => c.updateRegistries(['main']));
    expect(next?.error).toBeUndefined();
    expect(next?.report?.fingerprint).toBe(second.fingerprint);
  });
});

describe('when two runs follow a registry side by side, the slower to a key the faster then followed a rotation away from', () => {
  it('leaves the configuration naming the key the trust state holds: the slower run, saving last, names back none', async () => {
    // Prepare: a client pins the first key; the registry rotates to a second one.
    const registry = await servedRegistry(['1.0.0']);
    const m = await pinningFirstKey(registry);
    await rotateToNewKey(registry);
    // The slow run follows that rotation and stops as it asks for the log's entries.
    const { slowRun, release } = await updateStoppedAtLog(m);
    // Meanwhile the registry rotates again, and a run follows both rotations to the third key.
    const third = await rotateToNewKey(registry);
    const [fast] = await m.run((c) => c.updateRegistries(['main']));
    expect(fast?.error).toBeUndefined();
    expect(await trustState(m)).toMatchObject({ fingerprint: third.fingerprint });

    // Act: the slow run finishes under the second key.
    release();
    const [late] = await slowRun;

    // Assess: the trust state holds the third key, and so does the configuration (named back to the second
    // by the slow run, it named a key the record had rotated away from).
    expect(late?.error).toBeUndefined();
    expect(await trustState(m)).toMatchObject({ fingerprint: third.fingerprint });
    expect((await m.run((c) => c.listRegistries()))[0]?.entry.key_fingerprint).toBe(third.fingerprint);
  });
});

describe('when a name holding a key another name saw retired as stolen installs offline', () => {
  it('refuses its cached snapshot by that key (KEY_REVOKED), as online, where it installed before the rotation', async () => {
    // Prepare: `main` pins the first key and installs, its snapshot and documents cached; the key is stolen
    // and rotated away from, and another name of the registry follows while `main` does not.
    const registry = await servedRegistry(['1.0.0']);
    const m = await pinningFirstKey(registry);
    await m.run((c) => c.install({ requests: [`${NAME}@1.0.0`], lockfile: m.lockfile, dir: m.dir }));
    await rotateLocalRegistry(registry.dir, (await newKey()).secretKey, { compromised: true });
    // Reached through a mirror (its snapshot cached under that URL, not over the one `main` accepted).
    const mirror = await serve(registry.dir);
    await m.run((c) =>
      c.addRegistry({ name: 'other', url: mirror.url, pin: { armored: registry.firstKey }, priority: 2 }),
    );
    const home = dirname(m.data);
    const offline = offlineClient(m);

    // Act: the version installed again offline, from what `main` cached under the stolen key.
    const installing = offline
      .install({
        requests: [`${NAME}@1.0.0`],
        registry: 'main',
        lockfile: join(home, 'offline.lock'),
        dir: join(home, 'offline'),
      })
      .finally(() => offline.close());

    // Assess
    await expect(installing).rejects.toMatchObject({
      name: 'ClientError',
      code: 'KEY_REVOKED',
      message: expect.stringContaining(registry.firstFingerprint),
    });
  });
});

describe('when a plugin set pins a key another name of its registry followed a rotation away from as stolen', () => {
  it('refuses a frozen install of its lock and verify -c of what it placed (KEY_REVOKED), though the set never followed', async () => {
    // Prepare: a set pinning the registry's first key installs (its lock, and the manifest and signature
    // cached, under that key); the key is stolen and rotated away from, and the configured name follows.
    const registry = await servedRegistry(['1.0.0']);
    const m = await pinningFirstKey(registry);
    const { project, file } = await setProject(
      `stolen-set-${registries}`,
      registry.firstKey,
      `url: ${registry.url}`,
    );
    const home = { home: join(project, '.home') };
    await m.run((c) => c.installSet(file, home));
    await rotateLocalRegistry(registry.dir, (await newKey()).secretKey, { compromised: true });
    expect((await m.run((c) => c.updateRegistries(['main'])))[0]?.error).toBeUndefined();

    // Act and assess: what the set placed under the stolen key, and a frozen install of its lock.
    const findings = await m.run((c) => c.verifySet(file, home));
    expect(findings.map((f) => [f.name, f.ok, f.code])).toEqual([[NAME, false, 'KEY_REVOKED']]);
    await rm(join(project, 'plugins'), { recursive: true, force: true });
    await expect(m.run((c) => c.installSet(file, { ...home, frozen: true }))).rejects.toMatchObject({
      name: 'ClientError',
      code: 'KEY_REVOKED',
      message: expect.stringContaining(registry.firstFingerprint),
    });

    // The mend it names: an install online follows the rotation, and what it places verifies.
    await m.run((c) => c.installSet(file, home));
    const mended = await m.run((c) => c.verifySet(file, home));
    expect(mended.map((f) => [f.name, f.ok])).toEqual([[NAME, true]]);
  });
});

describe('when a registry whose key a name followed a rotation away from as stolen is added again at another URL (registry add --force)', () => {
  it('keeps the compromised mark, so a snapshot the stolen key signs is still refused (KEY_REVOKED) under another name', async () => {
    // Prepare: `main` pins the first key and follows the rotation that marks it stolen; the thief keeps a
    // copy of the registry and the key. The registry then moves, served from its folder at another URL.
    const { registry, m, second, thief } = await stolenThenRotatedAway('stolen-copy-moved');
    const moved = await serve(registry.dir);

    // Act: the user adds the registry again at its new URL, by its current key.
    await m.run((c) =>
      c.addRegistry({ name: 'main', url: moved.url, pin: { armored: second.publicKey }, force: true }),
    );

    // Assess: the mark is kept beside the key it retired, and the stolen key's snapshot is refused.
    expect(await trustState(m)).toMatchObject({
      fingerprint: second.fingerprint,
      chain: [{ fingerprint: registry.firstFingerprint, compromised: true }],
    });
    await expectStolenKeyRevoked(m, thief.url, registry);
  });
});

describe('when a name that followed a rotation away from a stolen key is added again with an unrelated key (registry add --force)', () => {
  it('keeps the compromised mark, so the stolen key is refused (KEY_REVOKED) under another name and after the old key is pinned again; the floor is not shared', async () => {
    // Prepare: `main` pins the first key and follows the rotation that marks it stolen; the thief keeps a
    // copy of the registry and the key. Another registry (a key of its own, below the generation `main`
    // accepted, so a floor shared would refuse it) is then served, as a laptop serves one after another.
    const { registry, m, second, thief } = await stolenThenRotatedAway('stolen-copy-unrelated');
    const other = await servedRegistry(['3.0.0']);

    // Act: the user points `main` at the other registry, by its key.
    const added = await m.run((c) =>
      c.addRegistry({ name: 'main', url: other.url, pin: { armored: other.firstKey }, force: true }),
    );

    // Assess: the other registry's key and floor alone are pinned; the old lineage's departures are kept
    // beside them as facts about its keys, the stolen key's mark with them.
    expect(added.fingerprint).toBe(other.firstFingerprint);
    const state = await trustState(m);
    expect(state).toMatchObject({
      fingerprint: other.firstFingerprint,
      former_departures: [
        { fingerprint: registry.firstFingerprint, retired_to: second.fingerprint, compromised: true },
      ],
    });
    expect(state.chain).toBeUndefined();
    // The stolen key is refused under a name pinning it, and by a reset.
    await expectStolenKeyRevoked(m, thief.url, registry);
    await expectResetRefused(m, thief.url, registry.firstKey);

    // Act: the user pins the old registry again, by its current key; the mark survives that too.
    await m.run((c) =>
      c.addRegistry({ name: 'main', url: registry.url, pin: { armored: second.publicKey }, force: true }),
    );
    expect(await trustState(m)).toMatchObject({
      fingerprint: second.fingerprint,
      former_departures: [{ fingerprint: registry.firstFingerprint, compromised: true }],
    });
    await expectStolenKeyRevoked(m, thief.url, registry);
  });
});

describe('when a record kept before records named their registry followed a rotation away from a stolen key, and is added again with an unrelated key (registry add --force)', () => {
  it('keeps the mark as of the registry its last snapshot named, so the stolen key is refused (KEY_REVOKED) under another name', async () => {
    // Prepare: as above; then `main`'s record is made as a client before `registry` was kept wrote it
    // (state.json without `registry`), before the trust index too.
    const { registry, m, second, thief } = await stolenThenRotatedAway('stolen-copy-legacy');
    const { registry: named, ...older } = await trustState(m);
    await writeFile(join(m.data, 'trust', 'main', 'state.json'), `${JSON.stringify(older, null, 2)}\n`);
    await rm(join(m.data, 'trust', '.index.json'), { force: true });
    const other = await servedRegistry(['3.0.0'], 'https://other.registry.example');

    // Act: the user points `main` at the other registry, by its key.
    await m.run((c) =>
      c.addRegistry({ name: 'main', url: other.url, pin: { armored: other.firstKey }, force: true }),
    );

    // Assess: the old lineage's departure is kept as of the registry its snapshots named (kept of none,
    // no check of that registry read it), and the stolen key is refused under a name pinning it.
    expect(await trustState(m)).toMatchObject({
      fingerprint: other.firstFingerprint,
      former_departures: [
        {
          fingerprint: registry.firstFingerprint,
          retired_to: second.fingerprint,
          compromised: true,
          registry: named,
        },
      ],
    });
    await expectStolenKeyRevoked(m, thief.url, registry);
  });
});

describe('when a record kept before records named their registry followed a rotation away from a stolen key, and is removed (registry remove)', () => {
  it('keeps the mark as of the registry its last snapshot named, not the URL it was reached at, so the stolen key is refused (KEY_REVOKED)', async () => {
    // Prepare: `main`'s record as a client before `registry` was kept wrote it, before the trust index too.
    const { registry, m, thief } = await stolenThenRotatedAway('stolen-copy-legacy-removed');
    const { registry: named, ...older } = await trustState(m);
    await writeFile(join(m.data, 'trust', 'main', 'state.json'), `${JSON.stringify(older, null, 2)}\n`);
    await rm(join(m.data, 'trust', '.index.json'), { force: true });

    // Act
    await m.run((c) => c.removeRegistry('main'));

    // Assess: kept as of the registry the thief's copy names too (by the URL `main` reached, 127.0.0.1,
    // no check of a copy served elsewhere found it), and that copy is refused under a name pinning the key.
    const kept = JSON.parse(await readFile(join(m.data, 'trust', '.removed-departures.json'), 'utf8'));
    expect(kept.former_departures).toMatchObject([
      { fingerprint: registry.firstFingerprint, compromised: true, registry: named },
    ]);
    await expectStolenKeyRevoked(m, thief.url, registry);
  });
});

describe('when a record kept before records named their registry, configured at a mirror, is removed with no snapshot of it cached (registry remove), and the mirror then serves the stolen key\u2019s copy', () => {
  it('keeps the mark as of the mirror\u2019s URL, and a name pinning the stolen key there is refused (KEY_REVOKED)', async () => {
    // Prepare: `main` reaches the registry at a mirror (a copy of its public folder, served) and follows
    // the rotation that marks its first key stolen; the thief keeps a copy signed by that key.
    const registry = await servedRegistry(['1.0.0']);
    const mirror = await servedCopy('mirror', registry.dir);
    const m = await reachingByFirstKey(registry, mirror.url);

    // Act: `main`, kept as an older client wrote it, removed; the mirror then serves the thief's copy.
    // Assess: the mark is kept as of the mirror's URL, and counts for a check reaching the registry there
    // (its snapshots name the registry's own URL): read by the registry's name alone, it counted for none.
    const thiefDir = await followedThenRemovedAsOlder(m, registry, {
      thief: 'mirror-thief',
      served: mirror,
      markedAt: mirror.url,
    });
    await mirror.copyOf(thiefDir);
    await expectStolenKeyRevoked(m, mirror.url, registry);
  });
});

describe('when a record kept before records named their registry, configured at a mirror, is removed with its mark kept as of the mirror\u2019s URL, and names reaching the registry there still hold the stolen key', () => {
  it('refuses their frozen installs and verify, plain and -c, of what they placed under that key (KEY_REVOKED)', async () => {
    // Prepare: the registry is reached at a mirror by `main`, by `other` and by a plugin set, each pinning
    // its first key; `other` and the set install under it (their locks, and their folders).
    const registry = await servedRegistry(['1.0.0']);
    const mirror = await servedCopy('mirror-frozen', registry.dir);
    const m = await reachingByFirstKey(registry, mirror.url, [{ name: 'other', url: mirror.url }]);
    await m.run((c) =>
      c.install({ requests: [`${NAME}@1.0.0`], registry: 'other', lockfile: m.lockfile, dir: m.dir }),
    );
    const { project, file } = await setProject(
      `mirror-frozen-set-${registries}`,
      registry.firstKey,
      `url: ${mirror.url}`,
    );
    const home = { home: join(project, '.home') };
    await m.run((c) => c.installSet(file, home));
    // The key is stolen and rotated away from; `main` alone follows, at the mirror. The thief serves
    // 1.0.0's manifest signed by the stolen key (the registry's signature before the rotation, as the key's
    // holder can sign it): what the locks and folders hold under that key. `main`'s record as a client
    // before `registry` was kept wrote it, its snapshot no longer cached; it is removed, its mark kept as of
    // the mirror's URL; the mirror then serves the thief's copy.
    const thiefDir = await followedThenRemovedAsOlder(m, registry, {
      thief: 'mirror-frozen-thief',
      served: mirror,
      markedAt: mirror.url,
    });
    await mirror.copyOf(thiefDir);
    const revoked = refusedNaming(registry, 'KEY_REVOKED');

    // Act and assess: `other`'s frozen install and verify, reaching the registry at the mirror, read the
    // mark kept as of its URL (its record names the registry's own URL: read by that alone, none did, and
    // the frozen install placed 1.0.0 by the stolen key's signature the mirror served).
    await expect(
      m.run((c) =>
        c.install({ requests: [], lockfile: m.lockfile, frozen: true, dir: join(project, 'other-frozen') }),
      ),
    ).rejects.toMatchObject(revoked);
    const findings = await m.run((c) => c.verifyInstalled({ dir: m.dir }));
    expect(findings.map((f) => [f.name, f.ok, f.code])).toEqual([[NAME, false, 'KEY_REVOKED']]);
    // The set's, by its provider's URL.
    const setFindings = await m.run((c) => c.verifySet(file, home));
    expect(setFindings.map((f) => [f.name, f.ok, f.code])).toEqual([[NAME, false, 'KEY_REVOKED']]);
    await rm(join(project, 'plugins'), { recursive: true, force: true });
    await expect(m.run((c) => c.installSet(file, { ...home, frozen: true }))).rejects.toMatchObject(revoked);

    // A record naming no registry (`other`'s as a client before `registry` was kept wrote it) is told by the
    // URL it reaches: no registry named, no mark was read for it at all.
    const { registry: _other, ...olderOther } = await trustState(m, 'other');
    await writeFile(join(m.data, 'trust', 'other', 'state.json'), `${JSON.stringify(olderOther, null, 2)}\n`);
    await rm(join(m.data, 'trust', '.index.json'), { force: true });
    await expect(
      m.run((c) =>
        c.install({ requests: [], lockfile: m.lockfile, frozen: true, dir: join(project, 'legacy-frozen') }),
      ),
    ).rejects.toMatchObject(revoked);
    const legacy = await m.run((c) => c.verifyInstalled({ dir: m.dir }));
    expect(legacy.map((f) => [f.name, f.ok, f.code])).toEqual([[NAME, false, 'KEY_REVOKED']]);
  });
});

describe('when a record kept before records named their registry, configured at a mirror, is removed with its mark kept as of the mirror\u2019s URL, and another name lists that URL only as one of its mirrors', () => {
  it('refuses that name\u2019s online checks, frozen install and verify of the stolen key\u2019s copy served at its main URL (KEY_REVOKED)', async () => {
    // Prepare: `main` reaches the registry at M (a mirror, a copy of its public folder, served); `other`
    // at X (another copy, served), with M its mirror; both pin its first key, and `other` installs 1.0.0.
    const registry = await servedRegistry(['1.0.0']);
    const m1 = await servedCopy('mirror-listed-m', registry.dir);
    const x = await servedCopy('mirror-listed-x', registry.dir);
    const m = await reachingByFirstKey(registry, m1.url, [{ name: 'other', url: x.url, mirrors: [m1.url] }]);
    await m.run((c) =>
      c.install({ requests: [`${NAME}@1.0.0`], registry: 'other', lockfile: m.lockfile, dir: m.dir }),
    );
    // The key is stolen and rotated away from; `main` alone follows, at M. Its record as a client before
    // `registry` was kept wrote it, its snapshot no longer cached; it is removed, its mark kept as of M's
    // URL; X then serves the thief's copy.
    const thiefDir = await followedThenRemovedAsOlder(m, registry, {
      thief: 'mirror-listed-thief',
      served: m1,
      markedAt: m1.url,
    });
    await x.copyOf(thiefDir);
    const revoked = refusedNaming(registry, 'KEY_REVOKED');

    // Act and assess: `other` reaches the registry at X, and M only as its mirror: the mark kept as of M
    // is read by its frozen install and verify (read as of X alone, the frozen install placed 1.0.0 by the
    // stolen key's signature X served, and verify passed it) ...
    await expect(
      m.run((c) =>
        c.install({
          requests: [],
          lockfile: m.lockfile,
          frozen: true,
          dir: join(scratch.path, `listed-frozen-${registries}`),
        }),
      ),
    ).rejects.toMatchObject(revoked);
    const findings = await m.run((c) => c.verifyInstalled({ dir: m.dir }));
    expect(findings.map((f) => [f.name, f.ok, f.code])).toEqual([[NAME, false, 'KEY_REVOKED']]);
    // ... and online: `other`'s own update, refused for the mark (read after the rotation count the thief's
    // snapshot claims, it was KEY_ROTATION_BROKEN, which says nothing of the theft), nothing kept; and a
    // name added there pinning the stolen key.
    const before = await trustState(m, 'other');
    const [update] = await m.run((c) => c.updateRegistries(['other']));
    expect(update?.error).toMatchObject({ ...revoked, message: expect.stringContaining(x.url) });
    expect(await trustState(m, 'other')).toEqual(before);
    await expect(
      m.run((c) =>
        c.addRegistry({
          name: 'old-pin',
          url: x.url,
          mirrors: [m1.url],
          pin: { armored: registry.firstKey },
        }),
      ),
    ).rejects.toMatchObject(revoked);
  });
});

describe('when a record kept before records named their registry, configured at a mirror, is removed with its mark kept as of the mirror\u2019s URL, and a plugin set\u2019s provider lists that URL only as one of its mirrors', () => {
  it('refuses verify -c of what the set placed under the stolen key (KEY_REVOKED), read as of the provider\u2019s mirrors', async () => {
    // Prepare: `main` reaches the registry at M (a mirror, a copy of its public folder, served); a plugin
    // set's provider at X (another copy, served), with M its mirror; both pin its first key, and the set
    // installs 1.0.0 under it.
    const registry = await servedRegistry(['1.0.0']);
    const m1 = await servedCopy('set-mirror-m', registry.dir);
    const x = await servedCopy('set-mirror-x', registry.dir);
    const m = await reachingByFirstKey(registry, m1.url);
    const { project, file } = await setProject(
      `set-mirror-${registries}`,
      registry.firstKey,
      `url: ${x.url}, mirrors: [${m1.url}]`,
    );
    const home = { home: join(project, '.home') };
    await m.run((c) => c.installSet(file, home));
    expect((await m.run((c) => c.verifySet(file, home))).map((f) => [f.name, f.ok])).toEqual([[NAME, true]]);
    // The key is stolen and rotated away from; `main` alone follows, at M. Its record as a client before
    // `registry` was kept wrote it, its snapshot no longer cached; it is removed, its mark kept as of M's URL.
    await stolenAndRotated(registry);
    await m1.copyOf(registry.dir);
    expect((await m.run((c) => c.updateRegistries(['main'])))[0]?.error).toBeUndefined();
    const kept = await removedAsOlderRecord(m);
    expect(kept.former_departures).toMatchObject([
      { fingerprint: registry.firstFingerprint, compromised: true, registry: m1.url },
    ]);

    // Act
    const findings = await m.run((c) => c.verifySet(file, home));

    // Assess: the set reaches the registry at X, and M only as its provider's mirror: the mark kept as of M
    // counts for what the set placed under the stolen key (read as of X alone, verify -c passed it).
    expect(findings.map((f) => [f.name, f.ok, f.code])).toEqual([[NAME, false, 'KEY_REVOKED']]);
    expect(findings[0]?.message).toContain(registry.firstFingerprint);
  });
});

describe('when a name holding a key another name followed a rotation away from as stolen is updated against the thief\u2019s copy, which counts that rotation', () => {
  it('refuses it for the mark (KEY_REVOKED, naming the stolen key), not for the rotation count, and keeps nothing', async () => {
    // Prepare: `main` reaches the registry itself and `other` at X (a copy of its public folder, served),
    // both pinning its first key; the key is stolen and rotated away from, and `main` alone follows.
    const registry = await servedRegistry(['1.0.0']);
    const x = await servedCopy('revoked-first-x', registry.dir);
    const m = await reachingByFirstKey(registry, registry.url, [{ name: 'other', url: x.url }]);
    const theft = await stolenAndRotated(registry);
    expect((await m.run((c) => c.updateRegistries(['main'])))[0]?.error).toBeUndefined();
    // X then serves the thief's copy: rebuilt under the stolen key, its snapshot counting the rotation the
    // registry made (one past the count `other`'s key is at).
    await x.copyOf(await theft.thief('revoked-first-thief'));
    const before = await trustState(m, 'other');

    // Act
    const [update] = await m.run((c) => c.updateRegistries(['other']));

    // Assess: the mark decides, as it does for a snapshot counting what the key is at.
    expect(update?.error).toMatchObject(refusedNaming(registry, 'KEY_REVOKED'));
    expect(await trustState(m, 'other')).toEqual(before);
  });
});

describe('when a record kept before records named their registry, configured at a mirror, is removed with its mark kept as of the mirror\u2019s URL, and another name reaches that URL only through a redirect', () => {
  it('refuses that name\u2019s online checks of the stolen key\u2019s copy served there (KEY_REVOKED), and keeps nothing', async () => {
    // Prepare: `main` reaches the registry at M (a mirror, a copy of its public folder, served); `other` at
    // X, which redirects every request to M and which no name lists as a mirror; both pin its first key.
    const registry = await servedRegistry(['1.0.0']);
    const mirror = await servedCopy('redirect-m', registry.dir);
    const x = await redirectingTo(mirror.url);
    const m = await reachingByFirstKey(registry, mirror.url, [{ name: 'other', url: x.url }]);
    // The key is stolen and rotated away from; `main` alone follows, at M. Its record as a client before
    // `registry` was kept wrote it, its snapshot no longer cached; it is removed, its mark kept as of M's
    // URL; M then serves the thief's copy.
    const thiefDir = await followedThenRemovedAsOlder(m, registry, {
      thief: 'redirect-thief',
      served: mirror,
      markedAt: mirror.url,
    });
    await mirror.copyOf(thiefDir);

    // Act and assess: the snapshot came through X's redirect from M, and the mark kept as of M decides
    // (read as of X alone, no mark was read, and only the rotation count the thief's snapshot claims
    // refused it); so is a name added at X pinning the stolen key.
    await expectRedirectedUpdateRevoked(m, registry, x.url, x);
  });
});

describe('when a removed name\u2019s mark is kept as of a URL that another name reaches through a redirect, and that URL redirects on', () => {
  it('refuses that name\u2019s online checks of the stolen key\u2019s copy served past it (KEY_REVOKED), and keeps nothing', async () => {
    // Prepare: `main` reaches the registry at M, which redirects there; `other` at X, which redirects every
    // request to M; both pin its first key. The key is stolen and rotated away from; `main` alone follows.
    const registry = await servedRegistry(['1.0.0']);
    const mirror = await redirectingTo(registry.url);
    const x = await redirectingTo(mirror.url);
    const m = await reachingByFirstKey(registry, mirror.url, [{ name: 'other', url: x.url }]);
    // `main`'s record as a client before `registry` was kept wrote it; it is removed, its mark kept as of
    // M's URL. M then redirects to where the thief serves their copy: X -> M -> the thief.
    const thiefDir = await followedThenRemovedAsOlder(m, registry, {
      thief: 'redirect-on-thief',
      markedAt: mirror.url,
    });
    mirror.retarget((await serve(thiefDir)).url);

    // Act and assess: the snapshot came through M, and the mark kept as of M decides, as where M served it
    // itself (read as of the last URL alone, M's one more redirect hid the mark).
    await expectRedirectedUpdateRevoked(m, registry, x.url, mirror);
  });
});

describe('when a removed name\u2019s mark is kept as of a URL that another name\u2019s last online run was redirected through, on to another, and that name then checks without asking (offline, frozen, verify)', () => {
  it('refuses its offline install, frozen install and verify of what it placed under the stolen key (KEY_REVOKED), read as of every hop kept from the last online run', async () => {
    // Prepare: the registry's public folder is served at S; M redirects every request to S, and R to M.
    // `main` reaches the registry at M, `other` at R (which no name lists as a mirror); both pin its first
    // key, and `other` installs 1.0.0 (its snapshot, by that key, cached under R's URL, kept with every URL
    // the request was led through: M, then S).
    const { registry, final, mirror, r, m } = await reachedThroughTwoHops('hops', 'other');
    await otherInstalledVia(m, r.url, [mirror.url, final.url]);
    // The key is stolen and rotated away from; `main` alone follows, at M (served at S). Its record as a
    // client before `registry` was kept wrote it, its snapshot no longer cached; it is removed, its mark
    // kept as of M's URL, the middle hop; S then serves the thief's copy (1.0.0's manifest signed by the
    // stolen key, as `other` holds it).
    const thiefDir = await followedThenRemovedAsOlder(m, registry, {
      thief: 'hops-thief',
      served: final,
      uncached: mirror.url,
      markedAt: mirror.url,
    });
    await final.copyOf(thiefDir);

    // Act and assess: none asks R, so none is told where it leads; each reads the marks kept as of every
    // hop the last request was led through (read as of the last, S, alone, M's mark was passed over: the
    // offline install took the snapshot the stolen key signed, the frozen install placed 1.0.0 by its
    // signature S served, verify passed it).
    await expectUnaskedChecksRevoked(m, registry);
    // Nothing of the hops is kept as trust: no value of `other`'s record is either URL it was led through.
    const values: unknown[] = [];
    JSON.stringify(await trustState(m, 'other'), (_, value: unknown) => {
      values.push(value);
      return value;
    });
    expect(values).not.toContain(mirror.url);
    expect(values).not.toContain(final.url);
  });
});

describe('when a name\u2019s snapshot request was redirected through a URL a mark is kept as of, then on a later run through another, and that name then checks without asking (offline, frozen, verify)', () => {
  it('keeps the hops of both runs, the later first, and refuses its offline install, frozen install and verify under the stolen key (KEY_REVOKED)', async () => {
    // Prepare: `other` reaches the registry at R, which redirects to M1, then to S, and installs 1.0.0; R then
    // redirects to M2 instead (M2 to S), and `other` is checked online again: its snapshot, unchanged, kept
    // with M2 and S. The key is stolen and rotated away from; `main` follows at M1 and is removed, its mark
    // kept as of M1's URL; S then serves the thief's copy.
    const { registry, final, mirror, r, m } = await reachedThroughTwoHops('union', 'other');
    await otherInstalledVia(m, r.url, [mirror.url, final.url]);
    const second = await redirectingTo(final.url);
    r.retarget(second.url);
    const [update] = await m.run((c) => c.updateRegistries(['other']));
    expect(update?.error).toBeUndefined();
    const cache = new ContentCache(join(dirname(m.data), 'cache'));
    const kept = (await cache.snapshot(r.url))?.servedFrom;
    const thiefDir = await followedThenRemovedAsOlder(m, registry, {
      thief: 'union-thief',
      served: final,
      uncached: mirror.url,
      markedAt: mirror.url,
    });
    await final.copyOf(thiefDir);

    // Act and assess: with the last run's hops alone kept (M2, S), M1's mark was read by none of them: the
    // offline install took the snapshot the stolen key signed, the frozen install placed 1.0.0 by its
    // signature S served, verify passed it.
    await expectUnaskedChecksRevoked(m, registry);
    expect(kept).toEqual([second.url, final.url, mirror.url]);
  });
});

describe('when a name whose snapshot request was redirected through a URL a mark is kept as of then installs frozen and is verified', () => {
  it('reads the hops kept with its cached snapshot without parsing that snapshot (refused KEY_REVOKED as before), and one cached by a client that kept them in it once each', async () => {
    // Prepare: as above, `other` reaches the registry at R, led through M to S; a removed name's mark for
    // the stolen key is kept as of M; S then serves the thief's copy.
    const { registry, final, mirror, r, m } = await reachedThroughTwoHops('hops-parse', 'other');
    await otherInstalledVia(m, r.url, [mirror.url, final.url]);
    const thiefDir = await followedThenRemovedAsOlder(m, registry, {
      thief: 'hops-parse-thief',
      served: final,
      uncached: mirror.url,
      markedAt: mirror.url,
    });
    await final.copyOf(thiefDir);
    const home = dirname(m.data);
    const revoked = refusedNaming(registry, 'KEY_REVOKED');
    // Every parse of a whole cached snapshot file (snapshot.json, which opens with the snapshot).
    const parse = vi.spyOn(JSON, 'parse');
    const snapshotParses = () =>
      parse.mock.calls.filter(([text]) => typeof text === 'string' && text.startsWith('{"snapshot":')).length;
    const checks = async (frozen: string) => {
      await expect(
        m.run((c) =>
          c.install({ requests: [], lockfile: m.lockfile, frozen: true, dir: join(home, frozen) }),
        ),
      ).rejects.toMatchObject(revoked);
      const findings = await m.run((c) => c.verifyInstalled({ dir: m.dir }));
      expect(findings.map((f) => [f.name, f.ok, f.code])).toEqual([[NAME, false, 'KEY_REVOKED']]);
    };
    try {
      // Act: the hops read from their own file (kept in snapshot.json, each check parsed it whole for them).
      await checks('frozen');

      // Assess
      expect(snapshotParses()).toBe(0);

      // Act: the snapshot cached as a client before that file kept it, the hops in snapshot.json.
      const cached = await new ContentCache(join(home, 'cache')).snapshot(r.url);
      expect(cached?.servedFrom).toEqual([mirror.url, final.url]);
      const registries = join(home, 'cache', 'registries');
      const folders = await readdir(registries);
      const kept = await Promise.all(
        folders.map((f) => readFile(join(registries, f, 'served-from.json'), 'utf8').catch(() => '')),
      );
      const dir = join(registries, folders[kept.findIndex((text) => text.includes(mirror.url))] as string);
      await rm(join(dir, 'served-from.json'));
      await writeFile(
        join(dir, 'snapshot.json'),
        JSON.stringify({
          snapshot: new TextDecoder().decode(cached?.bytes),
          signature: cached?.signature,
          served_from: [mirror.url, final.url],
        }),
      );
      parse.mockClear();
      await checks('frozen-older');

      // Assess: read from there, as before (once by the frozen install, once by verify).
      expect(snapshotParses()).toBe(2);
    } finally {
      parse.mockRestore();
    }
  });
});

describe('when a removed name\u2019s mark is kept as of a URL that another name\u2019s snapshot request is redirected through, on to another, and that name is reset (registry reset-trust)', () => {
  it('refuses the reset (TRUST_RESET_REFUSED) of the stolen key\u2019s copy served past that URL, and forgets nothing', async () => {
    // Prepare: the registry's public folder is served at S; M redirects every request to S, and R to M.
    // `main` reaches the registry at M, `via` at R, which no name lists as a mirror; both pin its first key;
    // the key is stolen and rotated away from, and `main` alone follows, at M (served at S).
    const { registry, final, mirror, m } = await reachedThroughTwoHops('reset-hops', 'via');
    // The thief's copy counts no rotation, as the stolen key is at. `main`'s record as a client before
    // `registry` was kept wrote it, its snapshot no longer cached; it is removed, its mark kept as of M's
    // URL, the middle hop; S then serves the thief's copy.
    const thiefDir = await followedThenRemovedAsOlder(m, registry, {
      thief: 'reset-hops-thief',
      served: final,
      keyRotations: 0,
      markedAt: mirror.url,
    });
    await final.copyOf(thiefDir);
    const before = await trustState(m, 'via');
    const throughMirror = mirror.redirected;

    // Act
    const reset = m.run((c) => c.resetRegistryTrust({ name: 'via' }));

    // Assess: the snapshot came through M, and the mark kept as of M refuses the reset (read as of the
    // last URL alone, S, the thief's snapshot was taken as every name's floor).
    await expect(reset).rejects.toMatchObject(refusedNaming(registry, 'TRUST_RESET_REFUSED'));
    expect(mirror.redirected).toBeGreaterThan(throughMirror);
    expect(await trustState(m, 'via')).toEqual(before);
  });
});

describe('when a former departure of a name does not read (a hand edit, a damaged disk)', () => {
  it('refuses the checks it may bear on and its removal (TRUST_STATE_INVALID), not those of other registries, until it is deleted by hand', async () => {
    // Prepare: `main` pins a registry; two entries are added to its former departures by hand, one
    // damaged of another registry, one damaged naming none (so of `main`'s own registry).
    const registry = await servedRegistry(['1.0.0']);
    const m = await pinningFirstKey(registry);
    const file = join(m.data, 'trust', 'main', 'state.json');
    const state = await trustState(m);
    const ofAnother = { fingerprint: 'F'.repeat(40), registry: 'https://another.example' };
    const ofNone = { fingerprint: 'E'.repeat(40), compromised: 'yes' };
    const write = (former: unknown[]) =>
      writeFile(file, `${JSON.stringify({ ...state, former_departures: former }, null, 2)}\n`);
    await write([ofAnother]);

    // Act and assess: one of another registry does not hold `main`'s check.
    expect((await m.run((c) => c.updateRegistries(['main'])))[0]?.error).toBeUndefined();

    // One of `main`'s own registry holds its check and its removal, naming the file and the entry.
    await write([ofAnother, ofNone]);
    expect((await m.run((c) => c.updateRegistries(['main'])))[0]?.error).toMatchObject({
      name: 'ClientError',
      code: 'TRUST_STATE_INVALID',
      message: expect.stringContaining(`${file}#/former_departures/1/key: missing`),
    });
    await expect(m.run((c) => c.removeRegistry('main'))).rejects.toMatchObject({
      name: 'ClientError',
      code: 'TRUST_STATE_INVALID',
    });
    expect((await m.run((c) => c.listRegistries())).map((r) => r.entry.name)).toContain('main');

    // Deleted by hand (the user's word that it kept nothing worth keeping), the check goes on.
    await write([ofAnother]);
    expect((await m.run((c) => c.updateRegistries(['main'])))[0]?.error).toBeUndefined();
  });
});

describe('when a name that followed a rotation away from a stolen key is removed, and the registry added back by that key (registry remove, registry add)', () => {
  it('keeps the compromised mark under the trust root, so the stolen key is refused (KEY_REVOKED); the name, its pin and floor are forgotten', async () => {
    // Prepare: `main` pins the first key and follows the rotation that marks it stolen; the thief keeps a
    // copy of the registry and the key, and serves it.
    const { registry, m, second, thief } = await stolenThenRotatedAway('stolen-copy-removed');

    // Act: the user removes the registry.
    await m.run((c) => c.removeRegistry('main'));

    // Assess: the name is forgotten (its entry and its trust folder), the mark kept beside the folders.
    expect((await m.run((c) => c.listRegistries())).map((r) => r.entry.name)).not.toContain('main');
    await expect(readFile(join(m.data, 'trust', 'main', 'state.json'), 'utf8')).rejects.toMatchObject({
      code: 'ENOENT',
    });
    const kept = JSON.parse(await readFile(join(m.data, 'trust', '.removed-departures.json'), 'utf8'));
    expect(kept).toMatchObject({
      former_departures: [
        { fingerprint: registry.firstFingerprint, retired_to: second.fingerprint, compromised: true },
      ],
    });

    // Act and assess: added back by the stolen key (the key file the user had), the thief's snapshot is
    // refused, and nothing is pinned.
    await expect(
      m.run((c) => c.addRegistry({ name: 'main', url: thief.url, pin: { armored: registry.firstKey } })),
    ).rejects.toMatchObject({ name: 'ClientError', code: 'KEY_REVOKED' });
    expect((await m.run((c) => c.listRegistries())).map((r) => r.entry.name)).not.toContain('main');

    // Added back by its current key, it is a new name: its record starts afresh (no chain, no former
    // departures), the mark still refusing the stolen key under any other name.
    await m.run((c) =>
      c.addRegistry({ name: 'main', url: registry.url, pin: { armored: second.publicKey } }),
    );
    const state = await trustState(m);
    expect(state).toMatchObject({ fingerprint: second.fingerprint });
    expect(state.chain).toBeUndefined();
    expect(state.former_departures).toBeUndefined();
    await expectStolenKeyRevoked(m, thief.url, registry);
  });
});

describe('when a record kept before records named their registry, configured at a mirror, is removed with its mark kept as of the mirror\u2019s URL, and a name reaching that URL as its mirror or through a redirect is reset (registry reset-trust)', () => {
  it('refuses the reset (TRUST_RESET_REFUSED) of the stolen key\u2019s copy counting the rotations that key is at, and forgets nothing', async () => {
    // Prepare: `main` reaches the registry at M (a copy of its public folder, served); `other` at X (another
    // copy), with M its mirror; `via` at R, which redirects every request to M and which no name lists.
    // All pin its first key; the key is stolen and rotated away from, and `main` alone follows, at M.
    const registry = await servedRegistry(['1.0.0']);
    const m1 = await servedCopy('reset-mirror-m', registry.dir);
    const x = await servedCopy('reset-mirror-x', registry.dir);
    const r = await redirectingTo(m1.url);
    const m = await reachingByFirstKey(registry, m1.url, [
      { name: 'other', url: x.url, mirrors: [m1.url] },
      { name: 'via', url: r.url },
    ]);
    // The thief's copy counts no rotation, as the stolen key is at: no rotation count refuses it for a
    // name still holding that key (the thief signs what it counts). `main`'s record as a client before
    // `registry` was kept wrote it, its snapshot no longer cached; it is removed, its mark kept as of M's
    // URL; X and M then serve the thief's copy.
    const thiefDir = await followedThenRemovedAsOlder(m, registry, {
      thief: 'reset-mirror-thief',
      served: m1,
      keyRotations: 0,
      markedAt: m1.url,
    });
    await x.copyOf(thiefDir);
    await m1.copyOf(thiefDir);
    const refused = refusedNaming(registry, 'TRUST_RESET_REFUSED');
    const before = { other: await trustState(m, 'other'), via: await trustState(m, 'via') };

    // Act and assess: `other` reaches the registry at X and M only as its mirror; the mark kept as of M
    // refuses the reset (read as of X alone, the thief's snapshot was taken as every name's floor).
    await expect(m.run((c) => c.resetRegistryTrust({ name: 'other' }))).rejects.toMatchObject(refused);
    await expect(
      m.run((c) => c.resetRegistryTrust({ url: x.url, mirrors: [m1.url], armoredKey: registry.firstKey })),
    ).rejects.toMatchObject(refused);
    // `via`'s snapshot request is led to M by a redirect, as an online session reads marks as of.
    const redirectedBefore = r.redirected;
    await expect(m.run((c) => c.resetRegistryTrust({ name: 'via' }))).rejects.toMatchObject(refused);
    expect(r.redirected).toBeGreaterThan(redirectedBefore);
    expect({ other: await trustState(m, 'other'), via: await trustState(m, 'via') }).toEqual(before);
  });
});

describe('when a record kept before records named their registry, configured at a mirror, is removed with its mark kept as of the mirror\u2019s URL, and a name reaching that URL only through a redirect then checks without asking (offline, frozen, verify)', () => {
  it('refuses its offline install, frozen install and verify of what it placed under the stolen key (KEY_REVOKED), read as of where the redirect last led', async () => {
    // Prepare: `main` reaches the registry at M (a copy of its public folder, served); `other` at R, which
    // redirects every request to M and which no name lists as a mirror; both pin its first key, and `other`
    // installs 1.0.0 (its snapshot, by that key, cached under R's URL, kept with where the request was led).
    const registry = await servedRegistry(['1.0.0']);
    const mirror = await servedCopy('served-from-m', registry.dir);
    const r = await redirectingTo(mirror.url);
    const m = await reachingByFirstKey(registry, mirror.url, [{ name: 'other', url: r.url }]);
    await otherInstalledVia(m, r.url, [mirror.url]);
    // The key is stolen and rotated away from; `main` alone follows, at M. Its record as a client before
    // `registry` was kept wrote it, its snapshot no longer cached; it is removed, its mark kept as of M's
    // URL; M then serves the thief's copy (1.0.0's manifest signed by the stolen key, as `other` holds it).
    const thiefDir = await followedThenRemovedAsOlder(m, registry, {
      thief: 'served-from-thief',
      served: mirror,
      uncached: mirror.url,
      markedAt: mirror.url,
    });
    await mirror.copyOf(thiefDir);

    // Act and assess: none asks R, so none is told where it leads; each reads the marks kept as of where
    // the last request was led (read as of R alone, none was read: the offline install took the snapshot
    // the stolen key signed, the frozen install placed 1.0.0 by its signature M served, verify passed it).
    await expectUnaskedChecksRevoked(m, registry);
  });
});

describe('when registry reset-trust is refused for a mark kept as of a URL its snapshot request was redirected through', () => {
  it('leaves the snapshot cached for the name\u2019s URL (and the hops kept with it) as it was: the stolen key\u2019s copy is not kept', async () => {
    // Prepare: as above, `via` reaches the registry at R, which redirects to M, then to S; a removed
    // name's mark for the stolen key is kept as of M; S then serves the thief's copy.
    const { registry, final, mirror, r, m } = await reachedThroughTwoHops('reset-cache', 'via');
    const thiefDir = await followedThenRemovedAsOlder(m, registry, {
      thief: 'reset-cache-thief',
      served: final,
      keyRotations: 0,
      uncached: mirror.url,
    });
    await final.copyOf(thiefDir);
    const cache = new ContentCache(join(dirname(m.data), 'cache'));
    const before = await cache.snapshot(r.url);
    expect(before).toBeDefined();

    // Act
    const reset = m.run((c) => c.resetRegistryTrust({ name: 'via' }));

    // Assess: refused, and the cache under R holds what it held (the check that refused kept nothing of
    // the snapshot it refused: the stolen key's copy cached there was every later check's, offline too).
    await expect(reset).rejects.toMatchObject({ name: 'ClientError', code: 'TRUST_RESET_REFUSED' });
    expect(await cache.snapshot(r.url)).toEqual(before);
  });
});

describe('when a snapshot cached with the hops a redirect led its request through is checked again where the registry answers at its own URL', () => {
  it('keeps the hops kept before with it, answered 304 or 200 (an offline check still reads the marks kept as of them)', async () => {
    // Prepare: `main` reads the registry at its own URL; the cache is told, as a redirect would have left
    // it, that the last request for its snapshot was led through another URL.
    const registry = await servedRegistry(['1.0.0']);
    const m = await pinningFirstKey(registry);
    const cache = new ContentCache(join(dirname(m.data), 'cache'));
    const cached = await cache.snapshot(registry.url);
    expect(cached?.etag).toBeDefined();
    const elsewhere = 'https://elsewhere.example/reg';

    for (const etag of [cached?.etag, '"another"']) {
      await cache.putSnapshot(registry.url, {
        ...(cached as NonNullable<typeof cached>),
        ...(etag ? { etag } : {}),
        servedFrom: [elsewhere],
      });

      // Act: checked online (the ETag kept answered 304; another, 200 with the same bytes).
      expect((await m.run((c) => c.updateRegistries(['main'])))[0]?.error).toBeUndefined();

      // Assess
      const after = await cache.snapshot(registry.url);
      expect(after?.bytes, etag).toEqual(cached?.bytes);
      expect(after?.servedFrom, etag).toEqual([elsewhere]);
    }
  });
});

describe('when each snapshot request is led through the five redirects the client follows, and a run that takes a new snapshot is killed between writing its hops and the snapshot', () => {
  it('leaves the snapshot before with every hop its own request came through, after the new ones', async () => {
    // Prepare: `main` is configured at R, which leads through A1..A4 to the registry at S: five redirects,
    // as many as the fetcher follows, so five hops kept with the snapshot.
    const registry = await servedRegistry(['1.0.0']);
    const chainTo = async (target: string): Promise<string[]> => {
      const hops: string[] = [];
      let to = target;
      for (let at = 0; at < 4; at++) {
        const hop = await redirectingTo(to);
        hops.unshift(hop.url);
        to = hop.url;
      }
      return hops;
    };
    const first = await chainTo(registry.url);
    const r = await redirectingTo(first[0] as string);
    const m = await machine();
    await m.run((c) => c.addRegistry({ name: 'main', url: r.url, pin: { armored: registry.firstKey } }));
    const cache = new ContentCache(join(dirname(m.data), 'cache'));
    const before = await cache.snapshot(r.url);
    expect(before?.servedFrom).toEqual([...first, registry.url]);
    const registries = join(dirname(m.data), 'cache', 'registries');
    const [folder] = await readdir(registries);
    const held = join(registries, folder as string);
    const snapshotBefore = await readFile(join(held, 'snapshot.json'));
    // The registry publishes, and R now leads through B1..B4 to it.
    await publish(registry.dir, ['1.1.0']);
    const second = await chainTo(registry.url);
    r.retarget(second[0] as string);

    // Act: checked online, which takes the new snapshot; then the state a run killed after its first write
    // (served-from.json) and before its second (snapshot.json) leaves: the snapshot before, the new hops.
    expect((await m.run((c) => c.updateRegistries(['main'])))[0]?.error).toBeUndefined();
    expect((await cache.snapshot(r.url))?.bytes).not.toEqual(before?.bytes);
    await writeFile(join(held, 'snapshot.json'), snapshotBefore);

    // Assess: only more marks read as of it (putSnapshot), never fewer: every hop it came through is kept.
    const after = await cache.snapshot(r.url);
    expect(after?.bytes).toEqual(before?.bytes);
    expect(after?.servedFrom).toEqual([...second, registry.url, ...first]);
  });
});

describe('when a snapshot cached by a client that kept the hops in snapshot.json is checked again online, answered 304 at its own URL', () => {
  it('writes the hops beside it (an empty list), so no later check parses the snapshot for them', async () => {
    // Prepare: `main` reads the registry at its own URL; its cached snapshot is rewritten as a client that
    // kept the hops in snapshot.json wrote it (none led anywhere: no served_from, no served-from.json).
    const registry = await servedRegistry(['1.0.0']);
    const m = await pinningFirstKey(registry);
    const cache = new ContentCache(join(dirname(m.data), 'cache'));
    const cached = await cache.snapshot(registry.url);
    const registries = join(dirname(m.data), 'cache', 'registries');
    const [folder] = await readdir(registries);
    const held = join(registries, folder as string);
    await rm(join(held, 'served-from.json'));
    await writeFile(
      join(held, 'snapshot.json'),
      JSON.stringify({
        snapshot: new TextDecoder().decode(cached?.bytes),
        signature: cached?.signature,
        etag: cached?.etag,
      }),
    );
    expect((await cache.snapshot(registry.url))?.servedFromInSnapshot).toBe(true);

    // Act: checked online, the ETag kept answered 304.
    expect((await m.run((c) => c.updateRegistries(['main'])))[0]?.error).toBeUndefined();

    // Assess
    expect(JSON.parse(await readFile(join(held, 'served-from.json'), 'utf8'))).toEqual({ served_from: [] });
    expect(await cache.snapshot(registry.url)).toEqual(cached);
  });
});

describe('when naming the key a rotation led to in the configuration fails after the trust state kept it', () => {
  it('leaves the client that followed it on the key the trust state holds, as a new client is', async () => {
    // The session took the record only once it was recorded: the re-pin failing after the trust state was
    // written left the client on the retired key (every later read followed the rotation again, and with
    // the rotation no longer served, failed) where the files, and any new client, held the new one.
    const registry = await servedRegistry(['1.0.0']);
    const m = await pinningFirstKey(registry);
    const next = await rotateToNewKey(registry);
    const configFile = join(dirname(m.data), 'config', 'config.json');
    const config = await readFile(configFile, 'utf8');
    const dirs = { config: dirname(configFile), data: m.data, cache: join(dirname(m.data), 'cache') };
    let breakConfig = true;
    const client = createClient({
      dirs,
      // Once the rotation is asked for (the configuration read already), config.json becomes unreadable,
      // as a disk that fails or a hand that edits it: the re-pin after the trust state was written fails.
      fetcher: httpFetcherTelling(async (path) => {
        if (breakConfig && path.startsWith(ROTATION_PREFIX)) await writeFile(configFile, '{ not json');
      }),
      env: {},
      platform: { os: 'linux', arch: 'amd64' },
      freshForMs: 0,
    });
    try {
      const [failed] = await client.updateRegistries(['main']);
      expect(failed?.error).toMatchObject({ code: 'CLIENT_CONFIG_INVALID' });
      expect((await trustState(m)).fingerprint).toBe(next.fingerprint);
      breakConfig = false;
      await writeFile(configFile, config);
      // The rotation gone from where it was served: only a client on the new key reads the registry now.
      await rm(join(registry.dir, 'public', rotationKey(1)));
      const [fresh] = await m.run((c) => c.updateRegistries(['main']));
      expect(fresh?.error).toBeUndefined();
      expect(fresh?.report?.fingerprint).toBe(next.fingerprint);
      const [kept] = await client.updateRegistries(['main']);
      expect(kept?.error).toBeUndefined();
      expect(kept?.report).toMatchObject({ fingerprint: next.fingerprint });
      expect(kept?.report?.rotated).toBeUndefined();
    } finally {
      await client.close();
    }
  });
});

/**
 * A machine pinning a served registry's first key, the registry then rotated, and its trust index set to fail
 * its last step for `main` (`tidyingFails`): an index listing `main` under a registry it left too (a run
 * killed between the record and the index's last step leaves one), and a folder where the index's lock file
 * goes, so the index reads but cannot be written.
 */
async function rotatedWhileTidyingFails() {
  const registry = await servedRegistry(['1.0.0']);
  const m = await pinningFirstKey(registry);
  const next = await rotateToNewKey(registry);
  const trust = join(m.data, 'trust');
  await tidyingFails(trust, 'main');
  return { registry, m, next, trust, configFile: join(dirname(m.data), 'config', 'config.json') };
}

describe('when tidying the trust index fails after the trust state kept the key a rotation led to', () => {
  it('leaves the client that followed it on the key the trust state holds, the configuration naming it, and reports the failure', async () => {
    // The index's last step (dropping a registry the record is no longer of) runs after state.json is written:
    // its failure was thrown as the record's, so the session stayed on the retired key while the files held
    // the new one, and the configuration was never told.
    const { registry, m, next, trust, configFile } = await rotatedWhileTidyingFails();
    const dirs = { config: dirname(configFile), data: m.data, cache: join(dirname(m.data), 'cache') };
    const client = createClient({
      dirs,
      fetcher: createHttpFetcher(),
      env: {},
      platform: { os: 'linux', arch: 'amd64' },
      freshForMs: 0,
    });
    try {
      // Not a refusal of the registry: the disk's failure, thrown as every write's is.
      await expect(client.updateRegistries(['main'])).rejects.toMatchObject({ code: 'EISDIR' });
      expect((await trustState(m)).fingerprint).toBe(next.fingerprint);
      expect(JSON.parse(await readFile(configFile, 'utf8')).registries[0].key_fingerprint).toBe(
        next.fingerprint,
      );
      await rm(join(trust, '.index.json.lock'), { recursive: true });
      // The rotation gone from where it was served: only a client on the new key reads the registry now.
      await rm(join(registry.dir, 'public', rotationKey(1)));
      const [kept] = await client.updateRegistries(['main']);
      expect(kept?.error).toBeUndefined();
      expect(kept?.report).toMatchObject({ fingerprint: next.fingerprint });
      expect(kept?.report?.rotated).toBeUndefined();
      // Tidied by the next write: the record is listed under its registry alone.
      const tidied = JSON.parse(await readFile(join(trust, '.index.json'), 'utf8'));
      expect(tidied.names.main).not.toContain('https://left.example');
    } finally {
      await client.close();
    }
  });
});

describe("when tidying the trust index fails after a plugin set's trust state kept the key a rotation led to", () => {
  it('reports the failure, the set following the new key from the trust state, and the next run tidies the index', async () => {
    // The set's session keeps its record by `ClientContext.writeTrust` (plugin-set.ts), not by a configured
    // registry's: the failure of the index's last step after it is the disk's, thrown once the record is taken.
    const registry = await servedRegistry(['1.0.0']);
    const { project, file } = await setProject('set-index-fails', registry.firstKey, `url: ${registry.url}`);
    const m = await machine();
    const home = { home: join(project, '.home') };
    await m.run((c) => c.installSet(file, home));
    const name = setTrustName(registry.url, registry.firstFingerprint);
    expect(await trustState(m, name)).toMatchObject({ fingerprint: registry.firstFingerprint });
    const next = await rotateToNewKey(registry);
    // As the configured registry's test: the set's record listed under a registry it left too, and a folder
    // where the index's lock goes, so the index reads but cannot be written.
    const trust = join(m.data, 'trust');
    await tidyingFails(trust, name);

    await expect(m.run((c) => c.installSet(file, { ...home, upgrade: true }))).rejects.toMatchObject({
      code: 'EISDIR',
    });
    // Kept before the failure: the set's name holds the key the rotation led to.
    expect(await trustState(m, name)).toMatchObject({ fingerprint: next.fingerprint });

    await rm(join(trust, '.index.json.lock'), { recursive: true });
    // The rotation gone from where it was served: only a set reading the new key from its trust state reads on.
    await rm(join(registry.dir, 'public', rotationKey(1)));
    const again = await m.run((c) => c.installSet(file, { ...home, upgrade: true }));
    expect(again.items.map((i) => i.version)).toEqual(['1.0.0']);
    const lock = await readFile(again.lockfile, 'utf8');
    expect(parseLockfile(lock, '').registries.local?.key_fingerprint).toBe(next.fingerprint);
    const tidied = JSON.parse(await readFile(join(trust, '.index.json'), 'utf8'));
    expect(tidied.names[name]).not.toContain('https://left.example');
  });
});

/**
 * A plugin set in the scratch folder `folder` pinning `key` (its `registry.asc`), of NAME ^1.0 from one
 * provider, `local`, at `source` (its `url:`, and `mirrors:` where it has them).
 */
async function setProject(
  folder: string,
  key: string,
  source: string,
): Promise<{ project: string; file: string }> {
  const project = join(scratch.path, folder);
  await mkdir(project, { recursive: true });
  await writeFile(join(project, 'registry.asc'), key);
  const file = join(project, 'plugins.yaml');
  await writeFile(
    file,
    `plugins:
  install_location: ./plugins
  providers:
    - { type: registry, name: local, ${source}, key: ./registry.asc }
  plugins:
    - { provider: local, name: ${NAME}, version: "^1.0" }
`,
  );
  return { project, file };
}

describe('when tidying the trust index fails as registry reset-trust keeps the key a rotation led to', () => {
  it('names that key in the configuration before reporting the failure, as a session following it does', async () => {
    // reset-trust threw the index's failure before the re-pin, so config.json kept the key rotated from
    // while state.json held the new one, until the next check named it.
    const { m, next, configFile } = await rotatedWhileTidyingFails();

    await expect(m.run((c) => c.resetRegistryTrust({ name: 'main' }))).rejects.toMatchObject({
      code: 'EISDIR',
    });

    expect((await trustState(m)).fingerprint).toBe(next.fingerprint);
    expect(JSON.parse(await readFile(configFile, 'utf8')).registries[0].key_fingerprint).toBe(
      next.fingerprint,
    );
  });
});

describe('when one of the steps failing after a trust record was kept is a refusal', () => {
  it('keeps the refusal (exit 3) in the one error naming both, as it was alone', () => {
    // TRUST_KEPT_THEN_FAILED is no refusal of its own: a CONFIG_PATH_UNSAFE beside an EISDIR exited 1, where
    // alone it exited 3.
    const unsafe = new ClientError('CONFIG_PATH_UNSAFE', 'config.json is a link');
    const busy = Object.assign(new Error('EISDIR: illegal operation on a directory'), { code: 'EISDIR' });
    const both = keptThenFailedAll('main', [{ keptThenFailed: busy }, { keptThenFailed: unsafe }]);
    expect(both?.keptThenFailed).toBeInstanceOf(ClientError);
    expect(both?.keptThenFailed).toMatchObject({ code: 'TRUST_KEPT_THEN_FAILED', refusal: true });
    const neither = keptThenFailedAll('main', [
      { keptThenFailed: busy },
      { keptThenFailed: new ClientError('CLIENT_CONFIG_INVALID', 'config.json does not parse') },
    ]);
    expect(neither?.keptThenFailed).toMatchObject({ code: 'TRUST_KEPT_THEN_FAILED', refusal: false });
  });
});

describe('when tidying the trust index and naming the key in the configuration both fail after the trust state kept the key a rotation led to', () => {
  it('reports both failures, the session and reset-trust alike, and the client takes the key the trust state holds', async () => {
    const { registry, m, next, trust, configFile } = await rotatedWhileTidyingFails();
    const config = await readFile(configFile, 'utf8');
    const dirs = { config: dirname(configFile), data: m.data, cache: join(dirname(m.data), 'cache') };
    let breakConfig = true;
    let breakAt = ROTATION_PREFIX;
    const open = () =>
      createClient({
        dirs,
        // Once the rotation (or the snapshot) is asked for, the configuration read already, config.json
        // becomes unreadable.
        fetcher: httpFetcherTelling(async (path) => {
          if (breakConfig && path.startsWith(breakAt)) await writeFile(configFile, '{ not json');
        }),
        env: {},
        platform: { os: 'linux', arch: 'amd64' },
        freshForMs: 0,
      });
    const both = (error: unknown) => {
      expect(error).toBeInstanceOf(ClientError);
      expect(error).toMatchObject({ code: 'TRUST_KEPT_THEN_FAILED' });
      const cause = (error as Error).cause;
      expect(cause).toBeInstanceOf(AggregateError);
      expect((cause as AggregateError).errors).toEqual([
        expect.objectContaining({ code: 'EISDIR' }),
        expect.objectContaining({ code: 'CLIENT_CONFIG_INVALID' }),
      ]);
      expect((error as Error).message).toContain('EISDIR');
      expect((error as Error).message).toContain('CLIENT_CONFIG_INVALID');
    };
    const client = open();
    try {
      // Told as the registry's failure (one of ours: the other registries still updated), not thrown.
      const [told] = await client.updateRegistries(['main']);
      both(told?.error);
      expect((await trustState(m)).fingerprint).toBe(next.fingerprint);
      // The session took the record all the same: the rotation gone, it reads on under the new key.
      breakConfig = false;
      await writeFile(configFile, config);
      await rm(join(trust, '.index.json.lock'), { recursive: true });
      await rm(join(registry.dir, 'public', rotationKey(1)));
      const [kept] = await client.updateRegistries(['main']);
      expect(kept?.error).toBeUndefined();
      expect(kept?.report).toMatchObject({ fingerprint: next.fingerprint });
    } finally {
      await client.close();
    }

    // reset-trust by a configuration naming the key rotated from, both steps failing after the record.
    await writeFile(configFile, config);
    await tidyingFails(trust, 'main');
    breakConfig = true;
    breakAt = 'snapshot';
    const resetting = open();
    try {
      both(await resetting.resetRegistryTrust({ name: 'main' }).catch((e: unknown) => e));
    } finally {
      await resetting.close();
    }
    expect((await trustState(m)).fingerprint).toBe(next.fingerprint);
  });
});

/**
 * Makes the trust index's last step fail after a record is kept, with real files: the trust name `name`
 * listed under a registry it left too (a run killed between the record and the index's last step leaves
 * one), and a folder where the index's lock file goes, so the index reads but cannot be written.
 */
async function tidyingFails(trust: string, name: string): Promise<void> {
  const index = JSON.parse(await readFile(join(trust, '.index.json'), 'utf8'));
  index.names[name] = [...(index.names[name] ?? []), 'https://left.example'];
  await writeFile(join(trust, '.index.json'), JSON.stringify(index));
  await mkdir(join(trust, '.index.json.lock', 'blocking'), { recursive: true });
}
