/**
 * The filesystem store's temp names, and the sweep of those a killed writer left.
 *
 * FsStore writes every replaced file through a temp file beside it, renamed over it, and moves an upload
 * through a second name beside its destination (a hard link), then takes its source aside before it lets
 * go of it. A process killed between those calls leaves the temp name behind, hidden from every listing (a
 * dot-name), and nothing else would ever remove it. So each name carries its writer's PID, as the client's
 * temp files do (`TEMP_NAME` in client/disk/atomic.ts, whose rule this is), and `removeStaleTemps` removes
 * those whose writer is gone: `.<pid>.<12 hex><counter>.tmp` for a body, a sidecar or a move's second
 * name; `.<pid>.<12 hex><counter>.aside` for a source taken aside, which is removed only while the file
 * has another name (the one it was moved to): one alone is an upload put under the source's name while it
 * was being moved, and is kept (an upload is never lost).
 *
 * The writer thread (adapters/fs-writer.ts) names its temp files the same way, in its own code.
 */
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { lstat, readdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import { forEachLimited } from '../index-builder/limited.ts';

/** This process's temp-file names: random once, then counted (a random draw per file cost 3% of a batch). */
const TEMP_PREFIX = `${process.pid}.${randomBytes(6).toString('hex')}`;
let tempCounter = 0;

/** A temp name as FsStore and its writer thread give it: the writer's PID, and whether it is an aside. */
const TEMP_NAME = /^\.(\d+)\.[0-9a-f]{12}[0-9a-z]+\.(tmp|aside)$/;

/**
 * A temp file beside `file`: short whatever the target's name, so it fits where the name itself fits; unique
 * to this process and call (and opened with O_EXCL all the same).
 */
export function tempNameFor(file: string): string {
  return nameBeside(file, 'tmp');
}

/** The name beside `file` that a move takes its source aside under, before it lets go of it. */
export function asideNameFor(file: string): string {
  return nameBeside(file, 'aside');
}

/** This process's next name beside `file`, of the kind `TEMP_NAME` reads. */
function nameBeside(file: string, kind: 'tmp' | 'aside'): string {
  tempCounter += 1;
  return path.join(path.dirname(file), `.${TEMP_PREFIX}${tempCounter.toString(36)}.${kind}`);
}

/**
 * A temp file of a dead PID younger than this is left, unless its writer is the one known killed: a writer
 * in another PID namespace (a container sharing the folder) looks dead from here, and its puts take
 * milliseconds, a streamed one a few seconds between writes.
 */
export const STALE_TEMP_MS = 15 * 60 * 1000;

export interface StaleTempOptions {
  /** The PID of a writer known to have been killed (the holder of a stale lock): its temps go at any age. */
  readonly killed?: number;
  /** For tests: the time to judge ages at (milliseconds since the epoch). */
  readonly now?: number;
}

/**
 * Removes, under `root` (every folder, the sidecar trees too; no link followed), the temp files of FsStore
 * writers that are gone: not this process, no process of that PID alive, and older than STALE_TEMP_MS or
 * written by `options.killed`. An aside is removed only while the file has another name. A walk of the
 * whole tree, so not for every batch: run when a writer is known to have been killed (a stale lock broken).
 * Returns the paths removed.
 * @example await removeStaleTemps(registryDir, { killed: 4242 });
 */
export async function removeStaleTemps(root: string, options: StaleTempOptions = {}): Promise<string[]> {
  const now = options.now ?? Date.now();
  const removed: string[] = [];
  // Folder by folder, a level of the tree at a time, SWEEP_CONCURRENCY folders read at once.
  for (let level: Buffer[] = [Buffer.from(root)]; level.length > 0; ) {
    const next: Buffer[] = [];
    await forEachLimited(level, SWEEP_CONCURRENCY, async (folder) => {
      const entries = await readdir(folder, { withFileTypes: true, encoding: 'buffer' }).catch(() => []);
      for (const entry of entries) {
        const at = Buffer.concat([folder, SEPARATOR, entry.name]);
        if (entry.isDirectory()) next.push(at);
        else if (entry.isFile() && (await removeIfStale(at, entry.name, now, options.killed)))
          removed.push(at.toString());
      }
    });
    level = next;
  }
  return removed;
}

/**
 * Folders read at once by a sweep: a tree of 2,000 plugins of 10 versions (62,000 folders) was swept in
 * 4.9-8.2 s one folder at a time, 2.6-3.1 s 16 at a time (two cores, both busy with other work); a walk by
 * synchronous calls took 1.3-2.0 s, but would hold a server's thread all along.
 */
const SWEEP_CONCURRENCY = 16;
const SEPARATOR = Buffer.from(path.sep);

/** Removes the file at `at` (named `name`) when it is a temp file of a writer gone (removeStaleTemps). */
async function removeIfStale(
  at: Buffer,
  name: Buffer,
  now: number,
  killed: number | undefined,
): Promise<boolean> {
  const match = TEMP_NAME.exec(name.toString('latin1'));
  if (!match) return false;
  const pid = Number(match[1]);
  if (pid === process.pid || processAlive(pid)) return false;
  const stats = await lstat(at).catch(() => undefined);
  if (!stats?.isFile()) return false;
  if (pid !== killed && now - stats.mtimeMs < STALE_TEMP_MS) return false;
  // The only name of an upload taken aside: kept.
  if (match[2] === 'aside' && stats.nlink < 2) return false;
  try {
    await unlink(at);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/**
 * Whether a process of this PID runs (EPERM: it does, as another user's). The client's lock files have their
 * own copy (client/disk/atomic.ts), which says why there are two.
 */
export function processAlive(pid: number): boolean {
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
