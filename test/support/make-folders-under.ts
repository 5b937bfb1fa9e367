/**
 * Makes a folder at a path the user chose, as one part of the client or the filesystem store does, and prints
 * what it threw (`{ name, code, message }`) or `{ made: true }`. A path under /proc made Node's recursive mkdir
 * loop for ever, so the tests run this as a process with a time limit (`makeFoldersUnder`), as they run the
 * command for `keygen --out /proc/x`.
 * Usage: make-folders-under.ts KIND DIR, KIND one of write (a file written whole: config, trust state),
 * lock (a lock file beside one), blob (a download into the cache), install (an install folder held),
 * store (an FsStore put), store-thread (an FsStore put made by its writer thread: the process has made the
 * puts it makes on its own thread first, in a folder of its own, so the folders are the thread's to make;
 * printed with `threadBatches`, the batches the thread was sent for that put)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FsStore } from '../../adapters/fs-store.ts';
import { fsWriter } from '../../adapters/fs-writer.ts';
import { withLockFile, writeFileAtomic } from '../../client/disk/atomic.ts';
import { ContentCache } from '../../client/disk/cache.ts';
import { InstallTree } from '../../client/disk/state.ts';
import { sha256Hex } from '../../index-builder/digest.ts';

const [kind, dir] = process.argv.slice(2) as [string, string];
const body = new TextEncoder().encode('bytes\n');
/** For store-thread: the batches the writer thread had been sent before the put under `dir`. */
let threadBatchesBefore = 0;
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
  store: () => putDemo(new FsStore(dir)),
  'store-thread': async () => {
    // Past the puts a process makes on its own thread (fs-store.ts): the next goes to the writer thread.
    const warm = await mkdtemp(path.join(tmpdir(), 'plugindex-warm-'));
    try {
      for (let i = 0; i < 201; i++) await putDemo(new FsStore(warm), `warm/${i}.json`);
    } finally {
      await rm(warm, { recursive: true, force: true });
    }
    threadBatchesBefore = fsWriter.sent.batches;
    return putDemo(new FsStore(dir));
  },
};

function putDemo(store: FsStore, key = 'plugins/demo/index.json'): Promise<void> {
  return store.put(key, body, { contentType: 'application/json', cacheControl: 'no-cache' });
}
const action = actions[kind];
if (action === undefined) throw new Error(`no such kind: ${kind}`);
try {
  await action();
  process.stdout.write(`${JSON.stringify({ made: true })}\n`);
} catch (error) {
  const { name, code, message } = error as { name: string; code?: string; message: string };
  const threadBatches =
    kind === 'store-thread' ? { threadBatches: fsWriter.sent.batches - threadBatchesBefore } : {};
  process.stdout.write(`${JSON.stringify({ name, code, message, ...threadBatches })}\n`);
}
