/**
 * The filesystem discovery's reading of what it finds: a discovery path is a folder others may write (a
 * shared plugin folder, a checkout), so what stands where a manifest or its signature is expected is read
 * only if it is a file of a manifest's size.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scanPluginFolders } from '../../../client/disk/discover.ts';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'plugindex-discover-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A version folder `<name>/<version>/` under `base`, made. */
async function versionFolder(base: string, name: string, version = '1.0.0'): Promise<string> {
  const dir = path.join(base, name, version);
  await mkdir(dir, { recursive: true });
  return dir;
}

describe.skipIf(process.platform === 'win32')(
  'when a FIFO stands where a manifest or its signature is',
  () => {
    it('skips the manifest and takes the signature for none, without waiting for a writer', async () => {
      // Prepare: a FIFO no one writes to, as manifest.json of one folder and manifest.json.asc of another,
      // and a folder with a plain manifest after them.
      const base = path.join(root, 'fifo');
      execFileSync('mkfifo', [path.join(await versionFolder(base, 'a-fifo'), 'manifest.json')]);
      const signed = await versionFolder(base, 'b-signed');
      await writeFile(path.join(signed, 'manifest.json'), '{}');
      execFileSync('mkfifo', [path.join(signed, 'manifest.json.asc')]);
      await writeFile(path.join(await versionFolder(base, 'c-plain'), 'manifest.json'), '{}');

      // Act
      const found = await scanPluginFolders([base], { recursive: false });

      // Assess
      expect(found.map((f) => [path.relative(base, f.dir), f.signature])).toEqual([
        [path.join('b-signed', '1.0.0'), undefined],
        [path.join('c-plain', '1.0.0'), undefined],
      ]);
    }, 10_000);
  },
);
