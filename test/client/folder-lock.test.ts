/**
 * A lock made with a folder source inside a repository (`type: file, path: ./vendor`), installed in another
 * checkout of it: the lock records `file:` locations under the first checkout's path, and the same files are
 * found under this checkout's folder (their bytes checked against the lock as always): by the folder's own
 * layout, or by the `path` the set names the manifest at, wherever under the folder it is.
 */
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSigner } from '../../index-builder/signing.ts';
import { httpClient } from '../support/client.ts';
import { encode, sha256, testKey, validManifest } from '../support/fixtures.ts';

const LINUX = { os: 'linux', arch: 'amd64' } as const;
let root: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'plugindex-folder-lock-'));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/**
 * Alice's checkout at `<root>/<name>/alice/repo`: disk-tool 1.0.0 signed under `vendor/<manifest>` (its
 * executable beside it), and a set naming the manifest by `path` when `byPath`, else by its version.
 */
async function aliceRepo(name: string, manifest: string, byPath: boolean): Promise<string> {
  const repo = join(root, name, 'alice/repo');
  const at = dirname(join(repo, 'vendor', manifest));
  await mkdir(at, { recursive: true });
  const body = encode('#!/bin/sh\necho disk-tool\n');
  await writeFile(join(at, 'disk-tool'), body);
  const bytes = encode(
    `${JSON.stringify(
      validManifest({
        name: 'disk-tool',
        installation: {
          artifacts: [{ ...LINUX, file: 'disk-tool', sha256: sha256(body), size_bytes: body.byteLength }],
        },
      }),
      null,
      2,
    )}\n`,
  );
  const publisher = await testKey('publisher');
  const file = join(repo, 'vendor', manifest);
  await writeFile(`${file}.asc`, await (await createSigner(publisher.secretKey)).sign(bytes));
  await writeFile(file, bytes);
  await writeFile(join(repo, 'publisher.asc'), publisher.publicKey);
  const named = byPath ? `path: ${manifest}` : 'version: "1.0.0"';
  await writeFile(
    join(repo, 'plugins.yaml'),
    `plugins:
  install_location: ./plugins
  providers:
    - { type: file, name: vendored, path: ./vendor, key: ./publisher.asc }
  plugins:
    - { provider: vendored, name: disk-tool, ${named} }
`,
  );
  return repo;
}

describe('when a lock made in one checkout is installed in another', () => {
  it.each([
    ['the folder layout', 'layout', 'disk-tool/1.0.0/manifest.json', false],
    ['a path outside the folder layout', 'flat', 'disk-tool/manifest.json', true],
    ['a path nesting the layout deeper', 'nested', 'team/disk-tool/1.0.0/manifest.json', true],
  ] as const)(
    'installs frozen from this checkout (the manifest named by %s), and a plain install leaves the lock as it was',
    async (_, name, manifest, byPath) => {
      const aliceHome = join(root, name, 'alice-home');
      const aliceRepoDir = await aliceRepo(name, manifest, byPath);
      const alice = httpClient(aliceHome);
      try {
        await alice.installSet(join(aliceRepoDir, 'plugins.yaml'), { home: '/nonexistent' });
      } finally {
        await alice.close();
      }
      const lock = await readFile(join(aliceRepoDir, 'plugins.lock'), 'utf8');
      expect(lock).toContain(`file://${aliceRepoDir}/vendor/${dirname(manifest)}/disk-tool`);
      const ciRepo = join(root, name, 'ci/build/repo');
      await mkdir(ciRepo, { recursive: true });
      for (const entry of ['plugins.yaml', 'publisher.asc', 'vendor', 'plugins.lock'])
        await cp(join(aliceRepoDir, entry), join(ciRepo, entry), { recursive: true });
      await rm(join(root, name, 'alice'), { recursive: true, force: true });

      const ci = httpClient(join(root, name, 'ci-home'));
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
    },
  );
});

describe('when a set’s lock is installed frozen without its set', () => {
  it('refuses the folder it names SOURCE_NOT_CONFIGURED, its key being the set’s, not kept here', async () => {
    const repo = await aliceRepo('no-set', 'disk-tool/1.0.0/manifest.json', false);
    const alice = httpClient(join(root, 'no-set', 'alice-home'));
    try {
      await alice.installSet(join(repo, 'plugins.yaml'), { home: '/nonexistent' });
    } finally {
      await alice.close();
    }
    const dir = join(root, 'no-set', 'ci-plugins');
    const ci = httpClient(join(root, 'no-set', 'ci-home'));
    try {
      await expect(
        ci.install({ requests: [], frozen: true, lockfile: join(repo, 'plugins.lock'), dir }),
      ).rejects.toMatchObject({
        name: 'ClientError',
        code: 'SOURCE_NOT_CONFIGURED',
        message: expect.stringContaining(
          '`plugindex install -c FILE --frozen` with the plugin set that names it',
        ),
      });
      await expect(readFile(join(dir, 'disk-tool/1.0.0/linux-amd64/disk-tool'))).rejects.toMatchObject({
        code: 'ENOENT',
      });
      // Through its set, the folder's key checks it as before.
      const frozen = await ci.installSet(join(repo, 'plugins.yaml'), { home: '/nonexistent', frozen: true });
      expect(frozen.items.map((i) => i.warnings)).toEqual([[]]);
    } finally {
      await ci.close();
    }
  });
});
