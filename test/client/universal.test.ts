/**
 * macOS universal binaries (one file for amd64 and arm64), through the real pipeline and client: a publisher
 * lists the file once as `darwin/universal`; the registry refuses `universal` for any other OS; a client on
 * either Mac arch installs it into its own platform folder, an exact build of that arch preferred; the lock
 * records it once as `darwin-universal`, from which a frozen install of either arch places it, and `verify`
 * holds the placed file to the manifest's universal artifact.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readKey } from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRegistryServer, listenRegistryServer } from '../../cli/local/server.ts';
import { verifyFound } from '../../client/discovery.ts';
import { type FoundFolder, scanPluginFolders } from '../../client/disk/discover.ts';
import { pluginDocumentKey } from '../../index-builder/layout.ts';
import type { PluginDocument } from '../../index-builder/model.ts';
import { processSubmissions } from '../../index-builder/pipeline/index.ts';
import { platformMachine } from '../support/client.ts';
import { encode, makeBundle, makeRegistry, type TestRegistry, validManifest } from '../support/fixtures.ts';

const NAME = 'fat-tool';
const LINUX = encode('#!/bin/sh\necho linux\n');
const FAT = encode('#!/bin/sh\necho universal\n');
const ARM = encode('#!/bin/sh\necho arm64 only\n');
const MAC_AMD64 = { os: 'darwin', arch: 'amd64' } as const;
const MAC_ARM64 = { os: 'darwin', arch: 'arm64' } as const;

let registry: TestRegistry;
let base: string;
let close: () => Promise<void>;
let root: string;

function bundle(version: string, artifacts: { os: string; arch: string; body: Uint8Array }[]) {
  return makeBundle({
    manifest: validManifest({ name: NAME, version }),
    artifacts: artifacts.map((a) => ({ ...a, name: NAME })),
  });
}

beforeAll(async () => {
  registry = await makeRegistry();
  const result = await processSubmissions(
    registry.context,
    await registry.submit(
      // 1.0.0: a universal build alone for the Mac; 2.0.0: an arm64 build beside it.
      await bundle('1.0.0', [
        { os: 'linux', arch: 'amd64', body: LINUX },
        { os: 'darwin', arch: 'universal', body: FAT },
      ]),
      await bundle('2.0.0', [
        { os: 'darwin', arch: 'universal', body: FAT },
        { ...MAC_ARM64, body: ARM },
      ]),
    ),
  );
  expect(result.outcomes.map((o) => o.status)).toEqual(['accepted', 'accepted']);
  const listening = await listenRegistryServer(createRegistryServer({ site: registry.site }), 0);
  base = listening.url;
  close = listening.close;
  root = await mkdtemp(join(tmpdir(), 'plugindex-universal-'));
});
afterAll(async () => {
  await close();
  await rm(root, { recursive: true, force: true });
});

let machines = 0;
function machine() {
  machines += 1;
  const home = join(root, `m${machines}`);
  return platformMachine(home);
}

async function addedMachine() {
  const m = machine();
  await m.run(MAC_ARM64, (c) =>
    c.addRegistry({ name: 'test', url: base, pin: { armored: registry.registryKey.publicKey } }),
  );
  return m;
}

describe('when a publisher lists a universal build', () => {
  it('publishes it once, as darwin/universal, in the plugin document', async () => {
    const stored = await registry.site.get(pluginDocumentKey(NAME));
    const doc = JSON.parse(new TextDecoder().decode(stored?.body)) as PluginDocument;
    const platforms = (v: string) =>
      doc.versions.find((r) => r.version === v)?.artifacts.map((a) => `${a.os}/${a.arch}`);
    expect(platforms('1.0.0')).toEqual(['linux/amd64', 'darwin/universal']);
    expect(platforms('2.0.0')).toEqual(['darwin/universal', 'darwin/arm64']);
  });

  it.each([
    ['linux', 'MANIFEST_UNIVERSAL_ARCH'],
    ['windows', 'MANIFEST_UNIVERSAL_ARCH'],
  ])('refuses universal for %s with %s at the artifact arch', async (os, code) => {
    const [key] = await registry.submit(
      await makeBundle({
        manifest: validManifest({ name: 'bad-fat', version: '1.0.0' }),
        artifacts: [{ os, arch: 'universal', name: 'bad-fat', body: FAT }],
      }),
    );
    const result = await processSubmissions(registry.context, [key as string]);
    expect(result.outcomes[0]?.status).toBe('rejected');
    expect(result.outcomes[0]?.problems.map((p) => [p.code, p.path])).toEqual([
      [code, '/installation/artifacts/0/arch'],
    ]);
  });

  it('refuses an arch no schema names, universal or not, by the schema', async () => {
    const [key] = await registry.submit(
      await makeBundle({
        manifest: validManifest({ name: 'bad-arch', version: '1.0.0' }),
        artifacts: [{ os: 'darwin', arch: 'fat', name: 'bad-arch', body: FAT }],
      }),
    );
    const result = await processSubmissions(registry.context, [key as string]);
    expect(result.outcomes[0]?.problems[0]?.path).toBe('/installation/artifacts/0/arch');
  });
});

describe('when a Mac client installs', () => {
  it('places the universal build for either arch in that arch folder, and locks it once', async () => {
    const m = await addedMachine();
    const arm = await m.run(MAC_ARM64, (c) =>
      c.install({ requests: [`${NAME}@1.0.0`], dir: m.dir, lockfile: m.lockfile }),
    );
    expect(arm.items[0]).toMatchObject({ version: '1.0.0', platform: 'darwin-arm64' });
    expect(await readFile(join(m.dir, NAME, '1.0.0', 'darwin-arm64', NAME))).toEqual(Buffer.from(FAT));
    const lock = JSON.parse(await readFile(m.lockfile, 'utf8'));
    expect(Object.keys(lock.plugins[NAME].artifacts)).toEqual(['darwin-universal', 'linux-amd64']);
    // The other arch from the lock alone (frozen), into its own folder.
    const amd = await m.run(MAC_AMD64, (c) =>
      c.install({ requests: [], dir: m.dir, lockfile: m.lockfile, locked: true }),
    );
    expect(amd.items[0]).toMatchObject({ version: '1.0.0', platform: 'darwin-amd64' });
    expect(await readFile(join(m.dir, NAME, '1.0.0', 'darwin-amd64', NAME))).toEqual(Buffer.from(FAT));
    // The placed files held to the manifest's universal artifact and to the lock's.
    const verified = await m.run(MAC_AMD64, (c) => c.verifyInstalled({ dir: m.dir, lockfile: m.lockfile }));
    expect(verified.map((f) => [f.version, f.ok, f.code])).toEqual([['1.0.0', true, undefined]]);
    // Installed again, everything is in place (the fast path finds the locked universal build).
    const again = await m.run(MAC_AMD64, (c) =>
      c.install({ requests: [], dir: m.dir, lockfile: m.lockfile, locked: true }),
    );
    expect(again.items[0]?.unchanged).toBe(true);
    // Found on disk (the spec's discovery), both arch folders hold the signed universal build.
    const [found] = await scanPluginFolders([m.dir], { recursive: false });
    const key = await readKey({ armoredKey: registry.registryKey.publicKey });
    const seen = await verifyFound(found as FoundFolder, [
      { fingerprint: key.getFingerprint().toUpperCase(), key, label: 'test' },
    ]);
    expect(seen).toMatchObject({ status: 'verified', platforms: ['darwin-amd64', 'darwin-arm64'] });
  });

  it('prefers an exact build of the arch to the universal one', async () => {
    const m = await addedMachine();
    await m.run(MAC_ARM64, (c) =>
      c.install({ requests: [`${NAME}@2.0.0`], dir: m.dir, lockfile: m.lockfile }),
    );
    await m.run(MAC_AMD64, (c) =>
      c.install({ requests: [`${NAME}@2.0.0`], dir: m.dir, lockfile: m.lockfile }),
    );
    expect(await readFile(join(m.dir, NAME, '2.0.0', 'darwin-arm64', NAME))).toEqual(Buffer.from(ARM));
    expect(await readFile(join(m.dir, NAME, '2.0.0', 'darwin-amd64', NAME))).toEqual(Buffer.from(FAT));
  });

  it('gives no other OS the universal build, naming the platforms there are', async () => {
    const m = await addedMachine();
    await expect(
      m.run({ os: 'linux', arch: 'arm64' }, (c) =>
        c.install({ requests: [`${NAME}@2.0.0`], dir: m.dir, lockfile: m.lockfile }),
      ),
    ).rejects.toMatchObject({
      name: 'ClientError',
      code: 'NO_ARTIFACT_FOR_PLATFORM',
      message: expect.stringContaining('darwin/universal'),
    });
  });
});
