/**
 * A lock made with a folder source inside a repository (`type: file, path: ./vendor`), installed in another
 * checkout of it: the lock records `file:` locations under the first checkout's path, and the folder's own
 * layout finds the same files under this checkout's (their bytes checked against the lock as always).
 */
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSigner } from '../../index-builder/signing.ts';
import { httpClient } from '../support/client.ts';
import { encode, sha256, testKey, validManifest } from '../support/fixtures.ts';

const LINUX = { os: 'linux', arch: 'amd64' } as const;
let root: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'plugindex-folder-lock-'));
  const repo = join(root, 'alice/repo');
  const at = join(repo, 'vendor/disk-tool/1.0.0');
  await mkdir(at, { recursive: true });
  const body = encode('#!/bin/sh\necho disk-tool\n');
  await writeFile(join(at, 'disk-tool'), body);
  const manifest = validManifest({
    name: 'disk-tool',
    installation: {
      artifacts: [{ ...LINUX, file: 'disk-tool', sha256: sha256(body), size_bytes: body.byteLength }],
    },
  });
  const bytes = encode(`${JSON.stringify(manifest, null, 2)}\n`);
  const publisher = await testKey('publisher');
  await writeFile(join(at, 'manifest.json.asc'), await (await createSigner(publisher.secretKey)).sign(bytes));
  await writeFile(join(at, 'manifest.json'), bytes);
  await writeFile(join(repo, 'publisher.asc'), publisher.publicKey);
  await writeFile(
    join(repo, 'plugins.yaml'),
    `plugins:
  install_location: ./plugins
  providers:
    - { type: file, name: vendored, path: ./vendor, key: ./publisher.asc }
  plugins:
    - { provider: vendored, name: disk-tool, version: "1.0.0" }
`,
  );
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('when a lock made in one checkout is installed in another', () => {
  it('installs frozen from this checkout, and a plain install leaves the lock as it was', async () => {
    const alice = httpClient(join(root, 'alice-home'));
    const aliceRepo = join(root, 'alice/repo');
    try {
      await alice.installSet(join(aliceRepo, 'plugins.yaml'), { home: '/nonexistent' });
    } finally {
      await alice.close();
    }
    const lock = await readFile(join(aliceRepo, 'plugins.lock'), 'utf8');
    expect(lock).toContain(`file://${aliceRepo}/vendor/disk-tool/1.0.0/disk-tool`);
    const ciRepo = join(root, 'ci/build/repo');
    await mkdir(ciRepo, { recursive: true });
    for (const entry of ['plugins.yaml', 'publisher.asc', 'vendor', 'plugins.lock'])
      await cp(join(aliceRepo, entry), join(ciRepo, entry), { recursive: true });
    await rm(join(root, 'alice'), { recursive: true, force: true });

    const ci = httpClient(join(root, 'ci-home'));
    try {
      const frozen = await ci.installSet(join(ciRepo, 'plugins.yaml'), {
        home: '/nonexistent',
        frozen: true,
      });
      expect(frozen.items.map((i) => i.version)).toEqual(['1.0.0']);
      expect(await readFile(join(ciRepo, 'plugins/disk-tool/1.0.0/linux-amd64/disk-tool'), 'utf8')).toBe(
        '#!/bin/sh\necho disk-tool\n',
      );
      await rm(join(ciRepo, 'plugins'), { recursive: true, force: true });
      await ci.installSet(join(ciRepo, 'plugins.yaml'), { home: '/nonexistent' });
      expect(await readFile(join(ciRepo, 'plugins.lock'), 'utf8')).toBe(lock);
    } finally {
      await ci.close();
    }
  });
});
