/**
 * Places an artifact and a file into an install folder, as an install does (holding the folder, then
 * placing), under the umask this process was started with (`sh -c 'umask 077; exec node ...'`), and prints
 * each one's mode (and the folders' it made, the install folder and its parent among them) and whether the
 * tree takes it for a file an install placed (`hashFile`). `test/client/disk/state.test.ts` runs it.
 * Usage: place-under-umask.ts DIR (DIR and its parent not there yet)
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { InstallTree } from '../../client/disk/state.ts';
import { sha256Hex } from '../../index-builder/digest.ts';

const [dir] = process.argv.slice(2) as [string];
const tree = new InstallTree(dir);
const body = new TextEncoder().encode('#!/bin/sh\necho placed\n');
const artifact = 'tool/1.0.0/linux-amd64/tool';
const manifest = 'tool/1.0.0/manifest.json';
// As an install does: the folder held (installed.json's lock, the first thing written there), then placed.
await tree.hold(async () => {
  await tree.placeExecutable(
    artifact,
    (async function* () {
      yield body;
    })(),
    { sha256: sha256Hex(body), size: body.byteLength },
  );
  await tree.placeFile(manifest, '{}\n');
});
const modeOf = async (relative: string) =>
  ((await stat(path.join(dir, ...relative.split('/')))).mode & 0o777).toString(8);
process.stdout.write(
  `${JSON.stringify({
    artifact: await modeOf(artifact),
    artifactPlaced: (await tree.hashFile(artifact, { executable: true })) !== undefined,
    manifest: await modeOf(manifest),
    manifestPlaced: (await tree.hashFile(manifest)) !== undefined,
    // The folders the placing made under the install folder: the plugin's, the version's, the platform's.
    folders: await Promise.all(['tool', 'tool/1.0.0', 'tool/1.0.0/linux-amd64'].map(modeOf)),
    // The install folder's parent and the install folder, neither there before.
    installFolder: await Promise.all(
      [path.dirname(dir), dir].map(async (at) => ((await stat(at)).mode & 0o777).toString(8)),
    ),
  })}\n`,
);
