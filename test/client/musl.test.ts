/**
 * Linux builds linked against musl (Alpine), through the real pipeline and client: a publisher lists a
 * `libc: musl` build beside the glibc one of the same arch (the glibc one first); the registry refuses a
 * libc on another OS, a musl build before its glibc one and two of one kind, and publishes the musl builds
 * apart (`libc_artifacts`), so the plugin document's `artifacts` stay what older clients read and check: a
 * glibc build for each linux arch, each the signed manifest's first of its os/arch. A musl host takes the
 * musl build into `linux-amd64-musl/`, a glibc host the glibc one, one lock pins both, and a musl host given
 * only a glibc build installs it with a warning.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readKey } from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRegistryServer, listenRegistryServer } from '../../cli/local/server.ts';
import { verifyFound } from '../../client/discovery.ts';
import { type FoundFolder, scanPluginFolders } from '../../client/disk/discover.ts';
import { parseLockfile } from '../../client/lockfile.ts';
import { hostLibc, hostPlatform, parsePlatform, platformKey } from '../../client/resolve.ts';
import { sha256Hex } from '../../index-builder/digest.ts';
import { manifestKey, pluginDocumentKey } from '../../index-builder/layout.ts';
import type { Manifest, PluginDocument } from '../../index-builder/model.ts';
import { processSubmissions } from '../../index-builder/pipeline/index.ts';
import { assertPluginDocument } from '../../index-builder/verify.ts';
import { platformMachine } from '../support/client.ts';
import { encode, makeBundle, makeRegistry, type TestRegistry, validManifest } from '../support/fixtures.ts';

const NAME = 'alpine-tool';
const GLIBC = encode('#!/bin/sh\necho glibc\n');
const MUSL = encode('#!/bin/sh\necho musl\n');
const ARM = encode('#!/bin/sh\necho arm64 glibc only\n');
const LINUX = { os: 'linux', arch: 'amd64' } as const;
const ALPINE = { os: 'linux', arch: 'amd64', libc: 'musl' } as const;
const ALPINE_ARM = { os: 'linux', arch: 'arm64', libc: 'musl' } as const;

let registry: TestRegistry;
let base: string;
let close: () => Promise<void>;
let root: string;

async function submitted(name: string, artifacts: { os: string; arch: string; libc?: string }[]) {
  const [key] = await registry.submit(
    await makeBundle({
      manifest: validManifest({ name, version: '1.0.0' }),
      artifacts: artifacts.map((a, i) => ({ ...a, name: `${name}-${i}`, body: encode(`build ${i}`) })),
    }),
  );
  return (await processSubmissions(registry.context, [key as string])).outcomes[0];
}

beforeAll(async () => {
  registry = await makeRegistry();
  const result = await processSubmissions(
    registry.context,
    await registry.submit(
      await makeBundle({
        manifest: validManifest({ name: NAME, version: '1.0.0' }),
        artifacts: [
          { ...LINUX, name: NAME, body: GLIBC },
          { ...ALPINE, name: NAME, body: MUSL },
          { os: 'linux', arch: 'arm64', name: NAME, body: ARM },
        ],
      }),
    ),
  );
  expect(result.outcomes.map((o) => [o.status, o.problems])).toEqual([['accepted', []]]);
  const listening = await listenRegistryServer(createRegistryServer({ site: registry.site }), 0);
  base = listening.url;
  close = listening.close;
  root = await mkdtemp(join(tmpdir(), 'plugindex-musl-'));
});
afterAll(async () => {
  await close();
  await rm(root, { recursive: true, force: true });
});

async function published(): Promise<{ doc: PluginDocument; manifest: Manifest }> {
  const read = async (key: string) =>
    JSON.parse(new TextDecoder().decode((await registry.site.get(key))?.body)) as unknown;
  return {
    doc: (await read(pluginDocumentKey(NAME))) as PluginDocument,
    manifest: (await read(manifestKey(NAME, '1.0.0'))) as Manifest,
  };
}

let machines = 0;
async function machine() {
  machines += 1;
  const home = join(root, `m${machines}`);
  const m = platformMachine(home);
  await m.run(LINUX, (c) =>
    c.addRegistry({ name: 'test', url: base, pin: { armored: registry.registryKey.publicKey } }),
  );
  return m;
}

/**
 * A machine that installed 1.0.0 on a glibc host, its lock then as a client before musl builds wrote it:
 * the version's glibc builds pinned, no `linux-amd64-musl` key.
 */
async function lockedByOlderClient() {
  const m = await machine();
  await m.run(LINUX, (c) => c.install({ requests: [`${NAME}@1.0.0`], dir: m.dir, lockfile: m.lockfile }));
  const lock = JSON.parse(await readFile(m.lockfile, 'utf8'));
  delete lock.plugins[NAME].artifacts['linux-amd64-musl'];
  await writeFile(m.lockfile, `${JSON.stringify(lock, null, 2)}\n`);
  return m;
}

describe('when a publisher lists a musl build', () => {
  it('publishes it apart, leaving older clients the glibc builds, each the manifest first of its platform', async () => {
    const { doc, manifest } = await published();
    const [record] = doc.versions;
    expect(record?.artifacts.map((a) => [a.os, a.arch, a.libc])).toEqual([
      ['linux', 'amd64', undefined],
      ['linux', 'arm64', undefined],
    ]);
    expect(record?.libc_artifacts?.map((a) => [a.os, a.arch, a.libc])).toEqual([['linux', 'amd64', 'musl']]);
    // What an older client checks of every artifact it reads (verify.ts verifyManifest before libc): the
    // manifest's first artifact of its os/arch has its digest. A musl build in `artifacts` failed it.
    const declared = manifest.installation?.artifacts ?? [];
    for (const artifact of record?.artifacts ?? []) {
      const first = declared.find((a) => a.os === artifact.os && a.arch === artifact.arch);
      expect(first?.sha256).toBe(artifact.sha256);
    }
  });

  it.each([
    [
      'a libc on another OS',
      [{ os: 'darwin', arch: 'arm64', libc: 'musl' }],
      ['MANIFEST_LIBC_NOT_LINUX', '/installation/artifacts/0/libc'],
    ],
    [
      'a musl build before the glibc one of its arch',
      [ALPINE, LINUX],
      ['MANIFEST_LIBC_ORDER', '/installation/artifacts/0'],
    ],
    [
      'two musl builds of one arch',
      [LINUX, ALPINE, ALPINE],
      ['MANIFEST_DUPLICATE_PLATFORM', '/installation/artifacts/2'],
    ],
    [
      'a C library no client knows',
      [{ os: 'linux', arch: 'amd64', libc: 'glibc' }],
      [expect.any(String), '/installation/artifacts/0/libc'],
    ],
  ])('refuses %s, naming the artifact', async (_label, artifacts, [code, path]) => {
    const outcome = await submitted('bad-libc', artifacts);
    expect(outcome?.status).toBe('rejected');
    expect(outcome?.problems.map((p) => [p.code, p.path])).toEqual([[code, path]]);
  });

  it('is refused by a client where a record puts a libc in the wrong list (DOCUMENT_MALFORMED, naming it)', async () => {
    const { doc } = await published();
    const [record] = doc.versions as [PluginDocument['versions'][number]];
    const musl = record.libc_artifacts?.[0];
    const inArtifacts = { ...doc, versions: [{ ...record, artifacts: [...record.artifacts, musl] }] };
    expect(() => assertPluginDocument(inArtifacts, NAME)).toThrow(
      expect.objectContaining({
        code: 'DOCUMENT_MALFORMED',
        message: expect.stringContaining('#/versions/0/artifacts/2/libc'),
      }),
    );
    const unnamed = { ...doc, versions: [{ ...record, libc_artifacts: [{ ...musl, libc: undefined }] }] };
    expect(() => assertPluginDocument(unnamed, NAME)).toThrow(
      expect.objectContaining({ message: expect.stringContaining('#/versions/0/libc_artifacts/0/libc') }),
    );
    expect(() => assertPluginDocument(doc, NAME)).not.toThrow();
  });

  it('takes a musl build alone for an arch (older clients then find none there)', async () => {
    const outcome = await submitted('musl-only', [ALPINE_ARM, LINUX]);
    expect(outcome?.status).toBe('accepted');
  });
});

describe('when clients of both C libraries install', () => {
  it('gives a musl host the musl build in its own folder and a glibc host the glibc one, from one lock', async () => {
    const m = await machine();
    const alpine = await m.run(ALPINE, (c) =>
      c.install({ requests: [`${NAME}@1.0.0`], dir: m.dir, lockfile: m.lockfile }),
    );
    expect(alpine.items[0]).toMatchObject({ platform: 'linux-amd64-musl', warnings: [] });
    expect(await readFile(join(m.dir, NAME, '1.0.0', 'linux-amd64-musl', NAME))).toEqual(Buffer.from(MUSL));
    const lock = JSON.parse(await readFile(m.lockfile, 'utf8'));
    expect(Object.keys(lock.plugins[NAME].artifacts)).toEqual([
      'linux-amd64',
      'linux-amd64-musl',
      'linux-arm64',
    ]);
    // A glibc host, frozen, from that lock: the glibc build beside it.
    await m.run(LINUX, (c) => c.install({ requests: [], dir: m.dir, lockfile: m.lockfile, locked: true }));
    expect(await readFile(join(m.dir, NAME, '1.0.0', 'linux-amd64', NAME))).toEqual(Buffer.from(GLIBC));
    const verified = await m.run(LINUX, (c) => c.verifyInstalled({ dir: m.dir, lockfile: m.lockfile }));
    expect(verified.map((f) => [f.version, f.ok, f.code])).toEqual([['1.0.0', true, undefined]]);
    const installed = JSON.parse(await readFile(join(m.dir, 'installed.json'), 'utf8'));
    expect(Object.keys(installed.plugins[NAME].versions['1.0.0'].artifacts).sort()).toEqual([
      'linux-amd64',
      'linux-amd64-musl',
    ]);
    // Found on disk (the spec's discovery), each folder holding the build signed for it.
    const [found] = await scanPluginFolders([m.dir], { recursive: false });
    const key = await readKey({ armoredKey: registry.registryKey.publicKey });
    const fingerprint = key.getFingerprint().toUpperCase();
    const seen = await verifyFound(found as FoundFolder, [{ fingerprint, key, label: 'test' }]);
    expect(seen).toMatchObject({ status: 'verified', platforms: ['linux-amd64', 'linux-amd64-musl'] });
  });

  it('installs --frozen from a lock pinning the musl build, on a musl host and a glibc one, each its own build', async () => {
    const m = await machine();
    await m.run(LINUX, (c) => c.install({ requests: [`${NAME}@1.0.0`], dir: m.dir, lockfile: m.lockfile }));
    const before = await readFile(m.lockfile, 'utf8');
    expect(Object.keys(JSON.parse(before).plugins[NAME].artifacts)).toContain('linux-amd64-musl');
    await rm(m.dir, { recursive: true, force: true });
    const alpine = await m.run(ALPINE, (c) =>
      c.install({ requests: [], dir: m.dir, lockfile: m.lockfile, frozen: true }),
    );
    expect(alpine.items[0]).toMatchObject({ platform: 'linux-amd64-musl', warnings: [] });
    expect(await readFile(join(m.dir, NAME, '1.0.0', 'linux-amd64-musl', NAME))).toEqual(Buffer.from(MUSL));
    const glibc = await m.run(LINUX, (c) =>
      c.install({ requests: [], dir: m.dir, lockfile: m.lockfile, frozen: true }),
    );
    expect(glibc.items[0]).toMatchObject({ platform: 'linux-amd64', warnings: [] });
    expect(await readFile(join(m.dir, NAME, '1.0.0', 'linux-amd64', NAME))).toEqual(Buffer.from(GLIBC));
    expect(await readFile(m.lockfile, 'utf8')).toBe(before);
  });

  it('installs on a musl host from a lock an older client wrote (no musl key), --locked or --frozen: the glibc build it pins, said, the lock unchanged; else the musl build pinned', async () => {
    const m = await lockedByOlderClient();
    const before = await readFile(m.lockfile, 'utf8');
    // --locked (the registry read, the lock unchanged) and --frozen (the lock alone) alike.
    for (const [mode, options] of [
      ['locked', { locked: true }],
      ['frozen', { frozen: true }],
    ] as const) {
      await rm(m.dir, { recursive: true, force: true });
      const result = await m.run(ALPINE, (c) =>
        c.install({ requests: [], dir: m.dir, lockfile: m.lockfile, ...options }),
      );
      expect(result.items[0]?.platform, mode).toBe('linux-amd64-musl');
      expect(result.items[0]?.warnings, mode).toEqual([
        expect.stringContaining(`locks no musl build of ${NAME}@1.0.0 for linux/amd64`),
      ]);
      expect(await readFile(join(m.dir, NAME, '1.0.0', 'linux-amd64-musl', NAME))).toEqual(
        Buffer.from(GLIBC),
      );
      expect(await readFile(m.lockfile, 'utf8'), mode).toBe(before);
    }
    // A glibc host with that lock: as before, nothing to say and nothing changed.
    const glibc = await m.run(LINUX, (c) =>
      c.install({ requests: [`${NAME}@1.0.0`], dir: m.dir, lockfile: m.lockfile, locked: true }),
    );
    expect(glibc.items[0]?.warnings).toEqual([]);
    expect(await readFile(m.lockfile, 'utf8')).toBe(before);
    // Where the lock may change, a musl host's install (of what is not in place) pins the musl build and
    // places it.
    await rm(m.dir, { recursive: true, force: true });
    const plain = await m.run(ALPINE, (c) => c.install({ requests: [], dir: m.dir, lockfile: m.lockfile }));
    expect(plain.items[0]?.warnings).toEqual([]);
    expect(await readFile(join(m.dir, NAME, '1.0.0', 'linux-amd64-musl', NAME))).toEqual(Buffer.from(MUSL));
    expect(Object.keys(JSON.parse(await readFile(m.lockfile, 'utf8')).plugins[NAME].artifacts)).toEqual([
      'linux-amd64',
      'linux-amd64-musl',
      'linux-arm64',
    ]);
  });

  it('says on a plain install, which reads no registry, that the glibc build in place from a lock an older client wrote is not the musl one; update then places the musl build', async () => {
    const m = await lockedByOlderClient();
    await rm(m.dir, { recursive: true, force: true });
    await m.run(ALPINE, (c) => c.install({ requests: [], dir: m.dir, lockfile: m.lockfile, frozen: true }));
    const before = await readFile(m.lockfile, 'utf8');
    // In place as the lock has it: the fast path, nothing fetched, nothing changed, but said.
    const plain = await m.run(ALPINE, (c) => c.install({ requests: [], dir: m.dir, lockfile: m.lockfile }));
    expect(plain.items[0]).toMatchObject({ platform: 'linux-amd64-musl', unchanged: true });
    expect(plain.items[0]?.warnings).toEqual([
      `${m.lockfile} locks no musl build of ${NAME}@1.0.0 for linux/amd64: its glibc build is in place, which starts here only if it is statically linked (\`plugindex update ${NAME}\` locks and installs the registry's musl build, if it has one)`,
    ]);
    expect(await readFile(join(m.dir, NAME, '1.0.0', 'linux-amd64-musl', NAME))).toEqual(Buffer.from(GLIBC));
    expect(await readFile(m.lockfile, 'utf8')).toBe(before);
    // A glibc host of the same folder and lock: nothing to say.
    await m.run(LINUX, (c) => c.install({ requests: [], dir: m.dir, lockfile: m.lockfile, frozen: true }));
    const glibc = await m.run(LINUX, (c) => c.install({ requests: [], dir: m.dir, lockfile: m.lockfile }));
    expect(glibc.items[0]).toMatchObject({ unchanged: true, warnings: [] });
    // What the warning says to run (the CLI's update: the installed names, upgrade) does what it says.
    const updated = await m.run(ALPINE, (c) =>
      c.install({ requests: [NAME], dir: m.dir, lockfile: m.lockfile, upgrade: true }),
    );
    expect(updated.items[0]?.warnings).toEqual([]);
    expect(await readFile(join(m.dir, NAME, '1.0.0', 'linux-amd64-musl', NAME))).toEqual(Buffer.from(MUSL));
    expect(Object.keys(JSON.parse(await readFile(m.lockfile, 'utf8')).plugins[NAME].artifacts)).toContain(
      'linux-amd64-musl',
    );
  });

  it('verifies, and finds on disk, the glibc build a musl host installed from a lock an older client wrote, though the version has a musl build', async () => {
    const m = await lockedByOlderClient();
    await rm(m.dir, { recursive: true, force: true });
    await m.run(ALPINE, (c) => c.install({ requests: [], dir: m.dir, lockfile: m.lockfile, frozen: true }));
    expect(await readFile(join(m.dir, NAME, '1.0.0', 'linux-amd64-musl', NAME))).toEqual(Buffer.from(GLIBC));
    // What the install placed is what the signed manifest names for linux/amd64, and what the lock pins.
    const verified = await m.run(ALPINE, (c) => c.verifyInstalled({ dir: m.dir, lockfile: m.lockfile }));
    expect(verified.map((f) => [f.version, f.ok, f.code])).toEqual([['1.0.0', true, undefined]]);
    const [found] = await scanPluginFolders([m.dir], { recursive: false });
    const key = await readKey({ armoredKey: registry.registryKey.publicKey });
    const fingerprint = key.getFingerprint().toUpperCase();
    const seen = await verifyFound(found as FoundFolder, [{ fingerprint, key, label: 'test' }]);
    expect(seen).toMatchObject({ status: 'verified', platforms: ['linux-amd64-musl'] });
    // Bytes neither build has, there, are still found changed.
    await writeFile(join(m.dir, NAME, '1.0.0', 'linux-amd64-musl', NAME), 'changed');
    const [changed] = await scanPluginFolders([m.dir], { recursive: false });
    const after = await verifyFound(changed as FoundFolder, [{ fingerprint, key, label: 'test' }]);
    expect(after).toMatchObject({ status: 'modified', platforms: [] });
    expect(after.detail).toContain(`linux-amd64-musl/${NAME} (linux-amd64-musl)`);
  });

  it("finds a publisher's folder changed where its musl build's file holds the glibc build", async () => {
    const manifest = await registry.site.get(manifestKey(NAME, '1.0.0'));
    const signature = await registry.site.get(`${manifestKey(NAME, '1.0.0')}.asc`);
    const listed = (JSON.parse(new TextDecoder().decode(manifest?.body)) as Manifest).installation?.artifacts;
    const file = (libc?: string) =>
      listed?.find((a) => a.os === 'linux' && a.arch === 'amd64' && a.libc === libc)?.file as string;
    const key = await readKey({ armoredKey: registry.registryKey.publicKey });
    const keys = [{ fingerprint: key.getFingerprint().toUpperCase(), key, label: 'test' }];
    const folder = (musl: Uint8Array): FoundFolder => ({
      root: '/p',
      dir: '/p/x',
      manifest: manifest?.body as Uint8Array,
      signature: new TextDecoder().decode(signature?.body),
      files: {
        [file()]: { sha256: sha256Hex(GLIBC), size: GLIBC.byteLength },
        [file('musl')]: { sha256: sha256Hex(musl), size: musl.byteLength },
      },
    });
    expect(await verifyFound(folder(MUSL), keys)).toMatchObject({ status: 'verified' });
    const swapped = await verifyFound(folder(GLIBC), keys);
    expect(swapped).toMatchObject({ status: 'modified' });
    expect(swapped.detail).toContain(file('musl'));
  });

  it('gives a musl host without a musl build the glibc one, with a warning saying so', async () => {
    const m = await machine();
    const result = await m.run(ALPINE_ARM, (c) =>
      c.install({ requests: [`${NAME}@1.0.0`], dir: m.dir, lockfile: m.lockfile }),
    );
    expect(result.items[0]?.platform).toBe('linux-arm64-musl');
    expect(result.items[0]?.warnings).toEqual([expect.stringContaining('has no musl build for linux/arm64')]);
    expect(await readFile(join(m.dir, NAME, '1.0.0', 'linux-arm64-musl', NAME))).toEqual(Buffer.from(ARM));
    const verified = await m.run(ALPINE_ARM, (c) => c.verifyInstalled({ dir: m.dir, lockfile: m.lockfile }));
    expect(verified.map((f) => f.ok)).toEqual([true]);
  });
});

describe('when a musl host updates a folder an older client filled', () => {
  it('places the musl build in the host\u2019s folder and keeps the glibc build it found, as either may be what the folder is for', async () => {
    // Prepare: 1.0.0 and 2.0.0, each with a glibc and a musl build; a client that did not tell musl apart
    // installed 1.0.0 on this musl host, into `linux-amd64/` (its platform had no libc), asked for nothing.
    const name = 'alpine-moving';
    const publish = (version: string) =>
      publishBuilds(name, version, [
        { ...LINUX, text: `glibc ${version}` },
        { ...ALPINE, text: `musl ${version}` },
      ]);
    await publish('1.0.0');
    const m = await machine();
    await m.run(LINUX, (c) => c.install({ requests: [name], dir: m.dir, lockfile: m.lockfile }));
    await publish('2.0.0');
    // Act: the same host, now known as musl, updates with no --platform.
    const updated = await m.run(ALPINE, (c) =>
      c.install({ requests: [name], dir: m.dir, lockfile: m.lockfile, upgrade: true }),
    );
    // Assess: the host's own build in its folder, as before the update kept the folder's platforms, and the
    // glibc build the folder held (an explicit --platform linux/amd64 or a glibc container's looks the same).
    expect(updated.items.map((i) => [i.version, i.platform, i.warnings])).toEqual([
      ['2.0.0', 'linux-amd64-musl', []],
    ]);
    expect(await readFile(join(m.dir, name, '2.0.0', 'linux-amd64-musl', name), 'utf8')).toBe('musl 2.0.0');
    expect(await readFile(join(m.dir, name, '2.0.0', 'linux-amd64', name), 'utf8')).toBe('glibc 2.0.0');
    const installed = JSON.parse(await readFile(join(m.dir, 'installed.json'), 'utf8'));
    expect(Object.keys(installed.plugins[name].versions)).toEqual(['2.0.0']);
    expect(Object.keys(installed.plugins[name].versions['2.0.0'].artifacts).sort()).toEqual([
      'linux-amd64',
      'linux-amd64-musl',
    ]);
  });
});

describe('when a musl host updates a glibc folder to a version with no musl build of its arch', () => {
  it('updates the glibc build the folder holds alone, saying so, rather than a second copy of it as the musl build', async () => {
    // Prepare: 1.0.0 and 2.0.0, each a glibc build alone, 1.0.0 installed on this host before it was known
    // as musl (linux-amd64/). The update added the host's linux-amd64-musl to reach a musl build; with none,
    // it placed the glibc bytes twice, the copy recorded as this host's own build, and kept both ever after.
    const name = 'alpine-glibc-only';
    const publish = (version: string) =>
      publishBuilds(name, version, [{ ...LINUX, text: `glibc ${version}` }]);
    await publish('1.0.0');
    const m = await machine();
    await m.run(LINUX, (c) => c.install({ requests: [name], dir: m.dir, lockfile: m.lockfile }));
    await publish('2.0.0');
    // Act
    const updated = await m.run(ALPINE, (c) =>
      c.install({ requests: [name], dir: m.dir, lockfile: m.lockfile, upgrade: true }),
    );
    // Assess: the folder as it was, at 2.0.0, and why no musl build came.
    expect(updated.items.map((i) => [i.version, Object.keys(i.paths)])).toEqual([['2.0.0', ['linux-amd64']]]);
    expect(updated.items[0]?.warnings).toEqual([
      expect.stringContaining(
        `${name}@2.0.0 has no musl build for linux/amd64: its glibc build in linux-amd64/ is updated`,
      ),
    ]);
    expect(await readFile(join(m.dir, name, '2.0.0', 'linux-amd64', name), 'utf8')).toBe('glibc 2.0.0');
    expect(await readdir(join(m.dir, name, '2.0.0'))).not.toContain('linux-amd64-musl');
    const installed = JSON.parse(await readFile(join(m.dir, 'installed.json'), 'utf8'));
    expect(Object.keys(installed.plugins[name].versions['2.0.0'].artifacts)).toEqual(['linux-amd64']);
    const verified = await m.run(ALPINE, (c) => c.verifyInstalled({ dir: m.dir, lockfile: m.lockfile }));
    expect(verified.map((f) => f.ok)).toEqual([true]);
  });
});

describe('when a musl host updates a glibc folder to a version without its arch', () => {
  it('names the build the folder holds, not the musl one the update added, in the refusal', async () => {
    // Prepare: 1.0.0 with a glibc build, installed on this host before it was known as musl (linux-amd64/);
    // 2.0.0 for arm64 alone, so neither of this arch's builds exists.
    const name = 'alpine-dropped';
    const publish = (version: string, platforms: { os: string; arch: string }[]) =>
      publishBuilds(
        name,
        version,
        platforms.map((p) => ({ ...p, text: `${p.arch} ${version}` })),
      );
    await publish('1.0.0', [LINUX]);
    const m = await machine();
    await m.run(LINUX, (c) => c.install({ requests: [name], dir: m.dir, lockfile: m.lockfile }));
    await publish('2.0.0', [{ os: 'linux', arch: 'arm64' }]);
    // Act
    const error = await m
      .run(ALPINE, (c) => c.install({ requests: [name], dir: m.dir, lockfile: m.lockfile, upgrade: true }))
      .catch((e: unknown) => e);
    // Assess: refused, saying what the folder holds (linux/amd64), not a musl build it never held.
    expect(error).toMatchObject({ code: 'NO_ARTIFACT_FOR_PLATFORM' });
    const message = (error as Error).message;
    expect(message).toContain(`${name}@1.0.0 is installed for linux/amd64 in`);
    expect(message).not.toContain('is installed for linux/amd64/musl');
    expect(await readFile(join(m.dir, name, '1.0.0', 'linux-amd64', name), 'utf8')).toBe('amd64 1.0.0');
  });
});

describe('when a musl host updates a folder holding another arch alone', () => {
  it('places that arch alone, adding no build of its own', async () => {
    const name = 'alpine-fleet';
    const publish = (version: string) =>
      publishBuilds(
        name,
        version,
        [LINUX, ALPINE, { os: 'linux', arch: 'arm64' }].map((p) => ({
          ...p,
          text: `${platformKey(p)} ${version}`,
        })),
      );
    await publish('1.0.0');
    const m = await machine();
    const arm = { os: 'linux', arch: 'arm64' } as const;
    await m.run(ALPINE, (c) =>
      c.install({ requests: [name], dir: m.dir, lockfile: m.lockfile, platform: arm }),
    );
    await publish('2.0.0');
    // Act: the musl amd64 host updates with no --platform.
    await m.run(ALPINE, (c) =>
      c.install({ requests: [name], dir: m.dir, lockfile: m.lockfile, upgrade: true }),
    );
    // Assess: the folder's arm64 build at 2.0.0, and none of this host's.
    const installed = JSON.parse(await readFile(join(m.dir, 'installed.json'), 'utf8'));
    expect(Object.keys(installed.plugins[name].versions)).toEqual(['2.0.0']);
    expect(Object.keys(installed.plugins[name].versions['2.0.0'].artifacts)).toEqual(['linux-arm64']);
  });
});

describe('when a platform names its C library', () => {
  it('reads linux/ARCH/musl, and refuses a libc elsewhere or unknown', () => {
    expect(parsePlatform('linux/amd64/musl')).toEqual(ALPINE);
    expect(parsePlatform('linux-amd64-musl')).toEqual(ALPINE);
    expect(parsePlatform('linux/amd64')).toEqual(LINUX);
    for (const text of ['darwin/arm64/musl', 'linux/amd64/uclibc', 'linux/amd64/musl/x'])
      expect(() => parsePlatform(text)).toThrow(expect.objectContaining({ code: 'REQUEST_INVALID' }));
  });

  it('takes a Linux host whose Node names no glibc for a musl one', () => {
    expect(hostLibc('linux', { header: { glibcVersionRuntime: '2.36' } })).toBeUndefined();
    expect(hostLibc('linux', { header: {} })).toBe('musl');
    expect(hostLibc('darwin', { header: {} })).toBeUndefined();
    expect(hostPlatform('linux', 'x64', 'musl')).toEqual(ALPINE);
    expect(hostPlatform('darwin', 'arm64', 'musl')).toEqual({ os: 'darwin', arch: 'arm64' });
  });

  // A spy, not a mock: Node's own report is taken, and what the client asked of it is recorded.
  it.runIf(process.platform === 'linux')(
    "reads this host's C library from a report without its network section, after a registry's connections are open",
    async () => {
      const m = await machine();
      const report = process.report as NodeJS.ProcessReport & { excludeNetwork?: boolean };
      const getReport = report.getReport;
      const asked: (boolean | undefined)[] = [];
      report.getReport = (...args: Parameters<typeof getReport>) => {
        asked.push(report.excludeNetwork);
        return getReport.apply(report, args);
      };
      try {
        // info reads the platform once the plugin document came over a kept-alive connection: with the
        // network section the report looks up the name of each end of every socket (reverse DNS, blocking),
        // which a resolver that does not answer holds for its timeout, per socket.
        const info = await m.run(undefined, (c) => c.info(`${NAME}@1.0.0`));
        expect(info.resolution?.version.version).toBe('1.0.0');
      } finally {
        report.getReport = getReport;
      }
      expect(asked).toEqual([true]);
      // Left as the process had it, for anything else that takes a report.
      expect(report.excludeNetwork).toBe(false);
    },
  );

  it('reads a lock keying a musl build, and refuses a library it does not know', () => {
    const lock = (key: string) =>
      JSON.stringify({
        lockfile_version: 1,
        registries: { test: { key_fingerprint: 'A'.repeat(40), min_generation: 1 } },
        plugins: {
          [NAME]: {
            registry: 'test',
            requested: '1.0.0',
            version: '1.0.0',
            manifest_sha256: 'a'.repeat(64),
            publisher: 'B'.repeat(40),
            artifacts: { [key]: { sha256: 'c'.repeat(64), size: 1, url: 'https://x.example/a' } },
          },
        },
      });
    expect(
      Object.keys(parseLockfile(lock('linux-amd64-musl'), 'plugindex.lock').plugins[NAME]?.artifacts ?? {}),
    ).toEqual(['linux-amd64-musl']);
    expect(() => parseLockfile(lock('linux-amd64-uclibc'), 'plugindex.lock')).toThrow(
      expect.objectContaining({
        code: 'LOCKFILE_INVALID',
        message: expect.stringContaining(`/plugins/${NAME}/artifacts/linux-amd64-uclibc`),
      }),
    );
  });
});

/** Publishes NAME@VERSION with one build per platform, each file holding `text`, and checks it is accepted. */
async function publishBuilds(
  name: string,
  version: string,
  builds: readonly { os: string; arch: string; libc?: string; text: string }[],
): Promise<void> {
  const result = await processSubmissions(
    registry.context,
    await registry.submit(
      await makeBundle({
        manifest: validManifest({ name, version }),
        artifacts: builds.map(({ text, ...platform }) => ({ ...platform, name, body: encode(text) })),
      }),
    ),
  );
  expect(result.outcomes.map((o) => o.status)).toEqual(['accepted']);
}
