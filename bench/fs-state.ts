/**
 * What making a file costs this machine's file system at the moment, so a figure can be read beside it.
 *
 * On this machine's ext4 (mounted with `discard`, no journal) a folder, a file written and renamed into it
 * cost about 100 µs of kernel time when the file system is settled, and ten times that for a minute or two
 * after many files were deleted (a test run, a bench's registry removed): 10,000 of them took 0.95 s, then
 * 13.9 s right after 10,000 others were deleted, 3.5 s twenty seconds later. An import or a rebuild makes
 * tens of thousands, so its wall time swung with whatever ran before it. The benches that make many files
 * wait, before they time, until the cost stops falling (`settledFileSystem`) and print it with their figures.
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

/** The file system's state when a bench went on: its last probe, and how long it waited for it. */
export interface FileSystemState {
  readonly usPerFile: number;
  readonly waitedMs: number;
}

/**
 * Probes every `everyMs` until the probe before cost no more than `tolerance` times this one (the cost has
 * stopped falling) and this one no more than `tolerance` times the cheapest yet, or `maxWaitMs` has passed;
 * returns the last probe.
 */
export async function settledFileSystem(
  dir: string,
  { everyMs = 5000, maxWaitMs = 120_000, tolerance = 1.3 } = {},
): Promise<FileSystemState> {
  const start = performance.now();
  let previous = fileCreationCost(dir);
  let cheapest = previous;
  for (;;) {
    const waited = performance.now() - start;
    if (waited >= maxWaitMs) return { usPerFile: previous, waitedMs: waited };
    await sleep(everyMs);
    const cost = fileCreationCost(dir);
    cheapest = Math.min(cheapest, cost);
    // Not much cheaper than the probe before (no longer falling), nor dearer than the cheapest (no spike).
    const settled = previous <= cost * tolerance && cost <= cheapest * tolerance;
    previous = cost;
    if (settled) return { usPerFile: cost, waitedMs: performance.now() - start };
  }
}

/** A state as the benches print it. */
export function describeFileSystem(state: FileSystemState): string {
  return `file system: ${state.usPerFile.toFixed(0)} µs a file made (folder, write, rename), after waiting ${(state.waitedMs / 1000).toFixed(0)} s for it to settle`;
}
