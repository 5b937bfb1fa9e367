/**
 * Makes a folder at a path the user chose, as one part of the client or the filesystem store does, and prints
 * what it threw (`{ name, code, message }`) or `{ made: true }`. A path under /proc made Node's recursive mkdir
 * loop for ever, so the tests run this as a process with a time limit (`makeFoldersUnder`), as they run the
 * command for `keygen --out /proc/x`.
 * Usage: make-folders-under.ts KIND DIR, KIND one of write (a file written whole: config, trust state),
 * lock (a lock file beside one), blob (a download into the cache), install (an install folder held),
 * store (an FsStore put)
 */
import path from 'node:path';
import { FsStore } from '../../adapters/fs-store.ts';
import { withLockFile, writeFileAtomic } from '../../client/disk/atomic.ts';
import { ContentCache } from '../../client/disk/cache.ts';
import { InstallTree } from '../../client/disk/state.ts';
import { sha256Hex } from '../../index-builder/digest.ts';

const [kind, dir] = process.argv.slice(2) as [string, string];
const body = new TextEncoder().encode('bytes\n');
const actions: Record<string, () => Promise<unknown>> = {
  write: () => writeFileAtomic(path.join(dir, 'config.json'), '{}\n'),
  lock: () =>
    withLockFile(path.join(dir, 'state.json.lock'), async () => undefined, { busy: () => new Error('busy') }),
  blob: () =>
    new ContentCache(dir).writeBlob({
      sha256: sha256Hex(body),
      size: body.byteLength,
      url: 'https://registry.test/blob',
      body: (async function* () {
        yield body;
      })(),
    }),
  install: () => new InstallTree(dir).hold(async () => undefined),
  store: () =>
    new FsStore(dir).put('plugins/demo/index.json', body, {
      contentType: 'application/json',
      cacheControl: 'no-cache',
    }),
};
const action = actions[kind];
if (action === undefined) throw new Error(`no such kind: ${kind}`);
try {
  await action();
  process.stdout.write(`${JSON.stringify({ made: true })}\n`);
} catch (error) {
  const { name, code, message } = error as { name: string; code?: string; message: string };
  process.stdout.write(`${JSON.stringify({ name, code, message })}\n`);
}
