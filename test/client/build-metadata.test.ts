/**
 * Versions with build metadata (`1.0.0+build.5`), which the pipeline publishes (as one version with
 * `1.0.0`: SemVer ignores build metadata), read by the client as published: from a registry, from a folder
 * and from the client's own lock and install record. And a version spelled loosely (`v1.0.0`), which semver
 * also reads, refused in a lock before anything is installed.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRegistryServer, listenRegistryServer } from '../../cli/local/server.ts';
import { ClientError } from '../../client/errors.ts';
import { processSubmissions } from '../../index-builder/pipeline/index.ts';
import { createSigner } from '../../index-builder/signing.ts';
import { httpClient } from '../support/client.ts';
import {
  encode,
  makeBundle,
  makeRegistry,
  sha256,
  type TestRegistry,
  testKey,
  validManifest,
} from '../support/fixtures.ts';

const LINUX = { os: 'linux', arch: 'amd64' } as const;
let root: string;
let registry: TestRegistry;
let base: string;
let close: () => Promise<void>;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'plugindex-build-metadata-'));
  registry = await makeRegistry();
  const result = await processSubmissions(
    registry.context,
    await registry.submit(
      await makeBundle({
        manifest: validManifest({ name: 'meta-tool', version: '0.9.0' }),
        artifacts: [{ ...LINUX, name: 'meta-tool', body: encode('#!/bin/sh\necho 0.9.0\n') }],
      }),
      await makeBundle({
        manifest: validManifest({ name: 'meta-tool', version: '1.0.0+build.5' }),
        artifacts: [{ ...LINUX, name: 'meta-tool', body: encode('#!/bin/sh\necho 1.0.0\n') }],
      }),
    ),
  );
  expect(result.outcomes.map((o) => o.status)).toEqual(['accepted', 'accepted']);
  ({ url: base, close } = await listenRegistryServer(createRegistryServer({ site: registry.site }), 0));
});

afterAll(async () => {
  await close?.();
  await rm(root, { recursive: true, force: true });
});

async function machine(name: string) {
  const home = join(root, name);
  const client = httpClient(home);
  await client.addRegistry({ name: 'test', url: base, pin: { armored: registry.registryKey.publicKey } });
  return { client, lockfile: join(home, 'plugindex.lock'), dir: join(home, 'plugins') };
}

describe('when a registry publishes a version with build metadata', () => {
  it('installs it, and any other version of the plugin, and reads its own record and lock of it again', async () => {
    const { client, lockfile, dir } = await machine('registry');
    try {
      const older = await client.install({ requests: ['meta-tool@0.9.0'], lockfile, dir });
      expect(older.items.map((i) => i.version)).toEqual(['0.9.0']);
      const latest = await client.install({ requests: ['meta-tool@latest'], lockfile, dir });
      expect(latest.items.map((i) => i.version)).toEqual(['1.0.0+build.5']);
      expect(JSON.parse(await readFile(lockfile, 'utf8')).plugins['meta-tool'].version).toBe('1.0.0+build.5');
      const again = await client.install({ requests: [], lockfile, dir });
      expect(again.items.map((i) => [i.version, i.unchanged])).toEqual([['1.0.0+build.5', true]]);
      const frozen = await client.install({
        requests: [],
        frozen: true,
        lockfile,
        dir: join(dir, '..', 'frozen'),
      });
      expect(frozen.items.map((i) => i.version)).toEqual(['1.0.0+build.5']);
    } finally {
      await client.close();
    }
  });

  it('refuses a lock that spells a version loosely (v1.0.0), before installing anything', async () => {
    const { client, lockfile, dir } = await machine('loose');
    try {
      await client.install({ requests: ['meta-tool@0.9.0'], lockfile, dir });
      const text = await readFile(lockfile, 'utf8');
      await writeFile(lockfile, text.replace('"version": "0.9.0"', '"version": "v0.9.0"'));
      const fresh = join(dir, '..', 'fresh');
      const error = await client
        .install({ requests: [], frozen: true, lockfile, dir: fresh })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ClientError);
      expect(error).toMatchObject({ code: 'LOCKFILE_INVALID', message: expect.stringContaining('/version') });
      await expect(readFile(join(fresh, 'installed.json'))).rejects.toMatchObject({ code: 'ENOENT' });
    } finally {
      await client.close();
    }
  });
});

describe('when a folder holds a version with build metadata', () => {
  it('installs it, then again from its own lock, frozen too', async () => {
    const folder = join(root, 'folder');
    const body = encode('#!/bin/sh\necho disk-tool\n');
    const at = join(folder, 'disk-tool', '1.0.0');
    await mkdir(at, { recursive: true });
    const manifest = validManifest({
      name: 'disk-tool',
      version: '1.0.0+build.5',
      installation: {
        artifacts: [{ ...LINUX, file: 'disk-tool', sha256: sha256(body), size_bytes: body.byteLength }],
      },
    });
    const bytes = encode(`${JSON.stringify(manifest, null, 2)}\n`);
    const publisher = await testKey('publisher');
    await writeFile(
      join(at, 'manifest.json.asc'),
      await (await createSigner(publisher.secretKey)).sign(bytes),
    );
    await writeFile(join(at, 'manifest.json'), bytes);
    await writeFile(join(at, 'disk-tool'), body);
    const project = join(root, 'project');
    await mkdir(project, { recursive: true });
    await writeFile(join(project, 'publisher.asc'), publisher.publicKey);
    const file = join(project, 'plugins.yaml');
    await writeFile(
      file,
      `plugins:
  install_location: ./plugins
  providers:
    - { type: file, name: disk, path: ${folder}, key: ./publisher.asc }
  plugins:
    - { provider: disk, name: disk-tool, version: "^1.0" }
`,
    );
    const client = httpClient(join(root, 'folder-machine'));
    try {
      const first = await client.installSet(file, { home: '/nonexistent-home' });
      expect(first.items.map((i) => i.version)).toEqual(['1.0.0+build.5']);
      await rm(join(project, 'plugins'), { recursive: true, force: true });
      const again = await client.installSet(file, { home: '/nonexistent-home' });
      expect(again.items.map((i) => i.version)).toEqual(['1.0.0+build.5']);
      const frozen = await client.installSet(file, { home: '/nonexistent-home', frozen: true });
      expect(frozen.items.map((i) => i.version)).toEqual(['1.0.0+build.5']);
    } finally {
      await client.close();
    }
  });
});
