/**
 * A process that moves one upload with the filesystem store and is killed (SIGKILL: nothing of its own
 * runs after) right before its Nth call that changes a name (a link, a rename or an unlink) during the move:
 * what a run killed at that point leaves on disk. `test/adapters/fs-store.test.ts` runs it for every N.
 * Usage: move-dies.ts ROOT N [read]: with `read`, the upload is listed and read first, as a batch does.
 */
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { sha256Hex } from '../../index-builder/digest.ts';
import { CACHE_PRIVATE, listAll } from '../../index-builder/store.ts';

const [root, n, read] = process.argv.slice(2) as [string, string, string | undefined];
let calls = 0;
let counting = false;
const names = fs as unknown as Record<string, (...args: unknown[]) => unknown>;
for (const call of ['linkSync', 'renameSync', 'unlinkSync']) {
  const real = names[call] as (...args: unknown[]) => unknown;
  names[call] = (...args: unknown[]) => {
    if (counting && ++calls === Number(n)) process.kill(process.pid, 'SIGKILL');
    return real(...args);
  };
}
// The store imports these by name: its bindings follow the module's own only once synced.
syncBuiltinESMExports();
const { FsStore } = await import('../../adapters/fs-store.ts');
const store = new FsStore(root);
const bytes = fs.readFileSync(`${root}/incoming/a.tgz`);
if (read) {
  await listAll(store, 'incoming/');
  await store.get('incoming/a.tgz');
}
counting = true;
const moved = await store.move('incoming/a.tgz', 'processed/a.tgz', {
  contentType: 'application/gzip',
  cacheControl: CACHE_PRIVATE,
  sha256: sha256Hex(bytes),
});
process.stdout.write(`${JSON.stringify({ moved, calls })}\n`);
