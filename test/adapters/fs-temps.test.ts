/**
 * The temp files a killed filesystem-store writer leaves, and their sweep: a real put killed (SIGKILL)
 * before its rename, and temp names of writers alive, gone, young and old, beside files that are no temp.
 */
import { spawn } from 'node:child_process';
import { link, mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsStore } from '../../adapters/fs-store.ts';
import { removeStaleTemps, STALE_TEMP_MS } from '../../adapters/fs-temps.ts';
import { CACHE_PRIVATE } from '../../index-builder/store.ts';
import { putKilled } from '../support/put-killed.ts';

let root: string;

beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'plugindex-temps-'));
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Every file under `folder`, dot-files and the sidecar tree too, relative and sorted. */
async function allFiles(folder: string): Promise<string[]> {
  const entries = await readdir(folder, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(folder, path.join(e.parentPath, e.name)))
    .sort();
}

/** The PID of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0']);
  await new Promise((resolve) => child.on('exit', resolve));
  return child.pid as number;
}

/** A temp name as FsStore gives it, for a writer of PID `pid`. */
const tempName = (pid: number, n: number, kind = 'tmp') => `.${pid}.0123456789ab${n.toString(36)}.${kind}`;

describe('when a put is killed before its rename', () => {
  it('leaves temp files its sweep removes, and nothing else', async () => {
    const store = new FsStore(root);
    await store.put('status/kept.json', new TextEncoder().encode('{}'), {
      contentType: 'application/json',
      cacheControl: CACHE_PRIVATE,
    });
    const before = await allFiles(root);

    const pid = await putKilled(root, 'status/a.json');

    const left = (await allFiles(root)).filter((f) => !before.includes(f));
    // The body's temp file and its sidecar's, each beside its target, named for the killed writer.
    expect(left).toHaveLength(2);
    for (const file of left) expect(path.basename(file)).toMatch(new RegExp(`^\\.${pid}\\.[0-9a-f]{12}`));
    expect(await store.head('status/a.json')).toBeUndefined();

    const removed = await removeStaleTemps(root, { killed: pid });

    expect(removed.map((f) => path.relative(root, f)).sort()).toEqual(left.sort());
    expect(await allFiles(root)).toEqual(before);
    expect(await store.head('status/kept.json')).toBeDefined();
  }, 30_000);
});

describe('when sweeping temp files', () => {
  it('removes only those of writers gone, old enough or known killed, and an aside only with another name', async () => {
    const gone = await deadPid();
    const killed = await deadPid();
    const alive = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
    try {
      const live = alive.pid as number;
      const folder = path.join(root, 'plugins', 'p');
      const meta = path.join(root, '.meta', 'status');
      await mkdir(folder, { recursive: true });
      await mkdir(meta, { recursive: true });
      const old = new Date(Date.now() - STALE_TEMP_MS - 60_000);
      const files: Record<string, { readonly age: 'old' | 'young'; readonly gone: boolean }> = {
        [path.join(folder, tempName(gone, 1))]: { age: 'old', gone: true },
        [path.join(meta, tempName(gone, 2))]: { age: 'old', gone: true },
        [path.join(folder, tempName(gone, 3))]: { age: 'young', gone: false },
        [path.join(folder, tempName(killed, 4))]: { age: 'young', gone: true },
        [path.join(folder, tempName(live, 5))]: { age: 'old', gone: false },
        [path.join(folder, tempName(process.pid, 6))]: { age: 'old', gone: false },
        // An upload still being written, and temp names of other writers: no temp of the store's.
        [path.join(folder, '.upload.tgz')]: { age: 'old', gone: false },
        [path.join(folder, '.a.json.123.abcdef01.tmp')]: { age: 'old', gone: false },
        [path.join(folder, `.${gone}.tmp`)]: { age: 'old', gone: false },
      };
      for (const [file, { age }] of Object.entries(files)) {
        await writeFile(file, 'half');
        if (age === 'old') await utimes(file, old, old);
      }
      // A source taken aside by a killed move: gone with it while it has another name (the one it was moved
      // to); kept when it is the only name of a file (an upload put under the source's name meanwhile).
      const moved = path.join(folder, 'moved.tgz');
      await writeFile(moved, 'moved');
      await link(moved, path.join(folder, tempName(killed, 7, 'aside')));
      files[moved] = { age: 'young', gone: false };
      files[path.join(folder, tempName(killed, 7, 'aside'))] = { age: 'young', gone: true };
      await writeFile(path.join(folder, tempName(killed, 8, 'aside')), 'another upload');
      files[path.join(folder, tempName(killed, 8, 'aside'))] = { age: 'young', gone: false };

      const removed = await removeStaleTemps(root, { killed });

      const expected = Object.entries(files).filter(([, f]) => f.gone);
      expect(removed.sort()).toEqual(expected.map(([file]) => file).sort());
      const left = Object.keys(files).filter((file) => !files[file]?.gone);
      expect(await allFiles(root)).toEqual(left.map((file) => path.relative(root, file)).sort());
    } finally {
      alive.kill();
    }
  });
});
