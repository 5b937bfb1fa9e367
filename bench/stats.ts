import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** What every benchmark reports: medians (never means, which one slow run on a shared machine skews). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** A goal's verdict, as every benchmark prints it: `goal <= 300 ms: met`, or MISSED. */
export function goalVerdict(met: boolean, goal: string): string {
  return `goal ${goal}: ${met ? 'met' : 'MISSED'}`;
}

/** Wall time of one process, in milliseconds; a failing command stops the bench (it measures nothing). */
export function timeProcess(args: readonly string[]): number {
  const started = process.hrtime.bigint();
  runNode([process.execPath], args);
  return Number(process.hrtime.bigint() - started) / 1e6;
}

/** Runs `node ARGS` through `prefix` (the node binary, or a wrapper before it); its stderr, once it succeeded. */
function runNode(prefix: readonly string[], args: readonly string[]): string {
  const [command = process.execPath, ...rest] = prefix;
  const result = spawnSync(command, [...rest, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    encoding: 'utf8',
  });
  if (result.status !== 0)
    throw new Error(`node ${args.join(' ')} exited ${result.status}: ${result.stderr}`);
  return result.stderr;
}

/** GNU time, which reports a process's page faults (Debian's `time` package); absent elsewhere. */
const GNU_TIME = '/usr/bin/time';

/**
 * Minor page faults of one process (`node ARGS`), or undefined where GNU time is not installed. Run apart
 * from the timed rounds, so the wrapper costs them nothing. On this virtual machine a page touched for the
 * first time costs 11-15 µs. One build's faults, run from one folder, repeat within about 1% where its wall
 * time drifts by a fifth and more; the same files elsewhere (a longer path, another hour) have counted up
 * to 5% more or fewer. So builds are compared by their faults side by side, in folders named alike.
 */
export function processFaults(args: readonly string[]): number | undefined {
  if (!existsSync(GNU_TIME)) return undefined;
  const stderr = runNode([GNU_TIME, '-f', '%R', process.execPath], args);
  // GNU time's line is the last one on stderr, after anything the command wrote there.
  const faults = Number(stderr.trim().split('\n').at(-1));
  return Number.isInteger(faults) ? faults : undefined;
}
