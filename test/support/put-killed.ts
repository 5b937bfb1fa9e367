/** A put with the filesystem store killed before its first rename (`put-dies.ts`, in a process of its own). */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect } from 'vitest';

/**
 * Runs test/support/put-dies.ts on `dir` (with `lock`, a registry, holding its lock) and returns the PID of
 * the process killed.
 */
export async function putKilled(dir: string, key: string, lock = false): Promise<number> {
  const script = fileURLToPath(new URL('./put-dies.ts', import.meta.url));
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', script, dir, key, ...(lock ? ['lock'] : [])],
    { cwd: fileURLToPath(new URL('../..', import.meta.url)) },
  ).catch((error: { signal?: string; stdout?: string }) => {
    expect(error.signal).toBe('SIGKILL');
    return { stdout: error.stdout ?? '' };
  });
  const [pid, rest] = stdout.split('\n');
  expect(rest, 'the put was not killed').toBe('');
  return Number(pid);
}
