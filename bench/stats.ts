import { spawnSync } from 'node:child_process';

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
  const result = spawnSync(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const elapsed = Number(process.hrtime.bigint() - started) / 1e6;
  if (result.status !== 0)
    throw new Error(`node ${args.join(' ')} exited ${result.status}: ${result.stderr}`);
  return elapsed;
}
