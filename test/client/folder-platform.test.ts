/**
 * A plugin set resolved from a folder source resolves to one version whatever the host, as from a registry:
 * a newer version without this host's artifact is not skipped for an older one that has it, or the same set
 * would install 1.1.0 on one host and 1.0.0 on another, and a lock would hold whichever ran first.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClientError } from '../../client/errors.ts';
import { createSigner } from '../../index-builder/signing.ts';
import { httpClient } from '../support/client.ts';
import { encode, sha256, testKey, validManifest } from '../support/fixtures.ts';

let root: string;
let folder: string;

async function version(v: string, platforms: { os: string; arch: string }[]): Promise<void> {
  const at = join(folder, 'plat-tool', v);
  await mkdir(at, { recursive: true });
  const artifacts = [];
  for (const p of platforms) {
    const body = encode(`#!/bin/sh\necho plat-tool ${v} ${p.os}\n`);
    const file = `plat-tool-${p.os}-${p.arch}${p.os === 'windows' ? '.exe' : ''}`;
    await writeFile(join(at, file), body);
    artifacts.push({ ...p, file, sha256: sha256(body), size_bytes: body.byteLength });
  }
  const bytes = encode(
    `${JSON.stringify(validManifest({ name: 'plat-tool', version: v, installation: { artifacts } }), null, 2)}\n`,
  );
  const signer = await createSigner((await testKey('publisher')).secretKey);
  await writeFile(join(at, 'manifest.json.asc'), await signer.sign(bytes));
  await writeFile(join(at, 'manifest.json'), bytes);
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'plugindex-folder-platform-'));
  folder = join(root, 'folder');
  await version('1.0.0', [
    { os: 'linux', arch: 'amd64' },
    { os: 'darwin', arch: 'arm64' },
  ]);
  await version('1.1.0', [{ os: 'darwin', arch: 'arm64' }]);
  await version('2.0.0', [
    { os: 'linux', arch: 'amd64' },
    { os: 'windows', arch: 'amd64' },
  ]);
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A set asking for ^1.0 (or `plugin`, a set's plugin line) from the folder, installed by a host of `platform`. */
async function installOn(
  name: string,
  platform: { os: string; arch: string },
  plugin = '{ provider: disk, name: plat-tool, version: "^1.0" }',
) {
  const home = join(root, name);
  const project = join(home, 'project');
  await mkdir(project, { recursive: true });
  await writeFile(join(project, 'publisher.asc'), (await testKey('publisher')).publicKey);
  const file = join(project, 'plugins.yaml');
  await writeFile(
    file,
    `plugins:
  install_location: ./plugins
  providers:
    - { type: file, name: disk, path: ${folder}, key: ./publisher.asc }
  plugins:
    - ${plugin}
`,
  );
  const client = httpClient(home, { platform });
  try {
    return await client.installSet(file, { home: '/nonexistent' });
  } finally {
    await client.close();
  }
}

describe('when the newest version a set asks for has no artifact for this host', () => {
  it('resolves to it on every host, and says it has none here (NO_ARTIFACT_FOR_PLATFORM), not the older one', async () => {
    const mac = await installOn('mac', { os: 'darwin', arch: 'arm64' });
    expect(mac.items.map((i) => i.version)).toEqual(['1.1.0']);
    const error = await installOn('linux', { os: 'linux', arch: 'amd64' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ClientError);
    expect(error).toMatchObject({
      code: 'NO_ARTIFACT_FOR_PLATFORM',
      message: expect.stringContaining('1.1.0'),
    });
  });
});

describe('when a set names the installed file (output) for a Windows platform', () => {
  it('keeps the artifact\u2019s .exe there, as Windows runs a file by its extension, and names the others as given', async () => {
    // Prepare: a team set for Linux and Windows hosts naming its file `plat`; the Windows artifact is
    // `plat-tool-windows-amd64.exe`, and a file `plat` cannot be started there (CreateProcess and Node's
    // spawn look for `plat.exe`).
    const plugin =
      '{ provider: disk, name: plat-tool, version: "2.0.0", output: plat, platforms: [linux/amd64, windows/amd64] }';
    // Act
    const result = await installOn('windows', { os: 'windows', arch: 'amd64' }, plugin);
    // Assess
    const [item] = result.items;
    expect(item?.paths['linux-amd64']).toMatch(/[/\\]plat-tool[/\\]2\.0\.0[/\\]linux-amd64[/\\]plat$/);
    expect(item?.paths['windows-amd64']).toMatch(
      /[/\\]plat-tool[/\\]2\.0\.0[/\\]windows-amd64[/\\]plat\.exe$/,
    );
    expect(await readFile(item?.paths['windows-amd64'] as string, 'utf8')).toBe(
      '#!/bin/sh\necho plat-tool 2.0.0 windows\n',
    );
    // The next install finds it in place under that name, nothing placed again.
    const again = await installOn('windows', { os: 'windows', arch: 'amd64' }, plugin);
    expect(again.items.map((i) => i.unchanged)).toEqual([true]);
  });
});
