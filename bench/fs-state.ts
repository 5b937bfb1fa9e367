/**
 * What making a file costs this machine's file system at the moment, so a figure can be read beside it.
 *
 * On this machine's ext4 (mounted with `discard`, no journal) a folder, a file written and renamed into it
 * cost about 100 µs of kernel time when the file system is settled, and ten times that for a minute or two
 * after many files were deleted (a test run, a bench's registry removed): 10,000 of them took 0.95 s, then
 * 13.9 s right after 10,000 others were deleted, 3.5 s twenty seconds later. An import or a rebuild makes
 * tens of thousands, so its wall time swung with whatever ran before it. The benches that make many files
 * wait, before they time, until the cost is back down (`settledFileSystem`) and print it with their figures.
 */
import { closeSync, mkdirSync, openSync, renameSync, writeSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** One probe's files: as many as this, each in its own folder, as a plugin's documents are. */
const PROBE_FILES = 500;
const BODY = Buffer.alloc(4096, 0x61);
let probes = 0;

/**
 * Microseconds per file for `PROBE_FILES` files made as the filesystem store makes them (a folder, a file
 * written under a temporary name, renamed into place), in a new folder under `dir`. The files are kept:
 * deleting them would slow the next files down, which is what is measured.
 */
export function fileCreationCost(dir: string): number {
  const at = path.join(dir, `probe-${process.pid}-${probes++}`);
  mkdirSync(at, { recursive: true });
  const t = performance.now();
  for (let i = 0; i < PROBE_FILES; i++) {
    const folder = path.join(at, String(i));
    mkdirSync(folder);
    const temporary = path.join(folder, '.doc.json.tmp');
    const fd = openSync(temporary, 'wx');
    writeSync(fd, BODY);
    closeSync(fd);
    renameSync(temporary, path.join(folder, 'doc.json'));
  }
  return ((performance.now() - t) * 1000) / PROBE_FILES;
}

/** The file system's state when a bench went on: its last probe, how long it waited, whether it settled. */
export interface FileSystemState {
  readonly usPerFile: number;
  readonly waitedMs: number;
  readonly settled: boolean;
}

/**
 * The cost of a file (µs) under which the file system counts as settled: this machine's settled cost is about
 * 100 µs, and 250 leaves room for a busy hour; PLUGINDEX_BENCH_FS_US sets another for another machine. A rule
 * relative to the probes alone was tried and failed: after a mass delete the cost can stay high and flat for
 * half a minute (two probes alike) before it falls.
 */
const SETTLED_US = Number(process.env.PLUGINDEX_BENCH_FS_US ?? 250);

/**
 * Probes every `everyMs` until a probe costs at most `SETTLED_US` a file, or `maxWaitMs` has passed;
 * returns the last probe, and whether it settled.
 */
export async function settledFileSystem(
  dir: string,
  { everyMs = 5000, maxWaitMs = 180_000 } = {},
): Promise<FileSystemState> {
  const start = performance.now();
  for (;;) {
    const cost = fileCreationCost(dir);
    const waited = performance.now() - start;
    if (cost <= SETTLED_US || waited >= maxWaitMs)
      return { usPerFile: cost, waitedMs: waited, settled: cost <= SETTLED_US };
    await sleep(everyMs);
  }
}

/** A state as the benches print it. */
export function describeFileSystem(state: FileSystemState): string {
  const waited = `${(state.waitedMs / 1000).toFixed(0)} s`;
  return `file system: ${state.usPerFile.toFixed(0)} µs a file made (folder, write, rename), ${state.settled ? `settled after ${waited}` : `NOT settled after ${waited} (over ${SETTLED_US} µs: the figures are the file system's as much as the code's)`}`;
}
