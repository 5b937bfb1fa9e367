/**
 * A process that puts one key with the filesystem store and is killed (SIGKILL: nothing of its own runs
 * after) right before the put's first rename, its temp files written: what a writer killed mid-put leaves on
 * disk. Prints its PID first. `test/adapters/fs-temps.test.ts` and `test/cli/local/registry.test.ts` run it.
 * Usage: put-dies.ts ROOT KEY [lock]: with `lock`, ROOT is a local registry, and the put is made holding
 * its lock, as a batch makes its puts.
 */
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { CACHE_PRIVATE } from '../../index-builder/store.ts';

const [root, key, lock] = process.argv.slice(2) as [string, string, string | undefined];
const names = fs as unknown as Record<string, (...args: unknown[]) => unknown>;
const rename = names.renameSync as (...args: unknown[]) => unknown;
let counting = false;
names.renameSync = (...args: unknown[]) => {
  if (counting) process.kill(process.pid, 'SIGKILL');
  return rename(...args);
};
// The store imports these by name: its bindings follow the module's own only once synced.
syncBuiltinESMExports();
const { FsStore } = await import('../../adapters/fs-store.ts');
const { withRegistryLock } = await import('../../cli/local/registry.ts');
// Written at once (a pipe's stdout is written later, and the kill would lose it).
fs.writeSync(1, `${process.pid}\n`);
const put = async (): Promise<void> => {
  counting = true;
  // Metadata no key implies: a sidecar is written too, through a temp file of its own.
  await new FsStore(root).put(key, new TextEncoder().encode('never renamed in'), {
    contentType: 'application/x-put-dies',
    cacheControl: CACHE_PRIVATE,
  });
};
if (lock) await withRegistryLock(root, put);
else await put();
process.stdout.write('not killed\n');
