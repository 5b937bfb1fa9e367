/** The `plugindex` command as a test drives it: run in this process, or the built command as a process. */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { vi } from 'vitest';
import { withRegistryLock } from '../../cli/local/registry.ts';
import { main } from '../../cli/main.ts';

/** What a run of the command printed, and its exit code (null: killed, as one past `timeoutMs` is). */
export interface CommandResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the command in this process, and returns its exit code with what it printed. */
export async function plugindex(
  ...argv: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => stdout.push(String(chunk)) > 0);
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => stderr.push(String(chunk)) > 0);
  try {
    const code = await main(argv);
    return { code, stdout: stdout.join(''), stderr: stderr.join('') };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

/** The installed command: the bundle the global setup built from the source under test. */
const BIN = path.resolve(import.meta.dirname, '../../cli/bin.mjs');
const execute = promisify(execFile);

/**
 * Runs the built `plugindex` as a user does, in `cwd` (a command that should have ended is killed after
 * `timeoutMs`, its code then null).
 */
export async function plugindexProcess(
  args: readonly string[],
  options: { readonly cwd: string; readonly env?: NodeJS.ProcessEnv; readonly timeoutMs?: number },
): Promise<CommandResult> {
  try {
    const { stdout, stderr } = await execute(process.execPath, [BIN, ...args], {
      cwd: options.cwd,
      env: { ...process.env, CI: '1', ...options.env },
      timeout: options.timeoutMs ?? 30_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number | string | null; stdout: string; stderr: string };
    return { code: typeof e.code === 'number' ? e.code : null, stdout: e.stdout, stderr: e.stderr };
  }
}

/** The environment giving the command a client's own folders (config, data, cache) under `dir`. */
export function clientHomes(dir: string): NodeJS.ProcessEnv {
  return {
    PLUGINDEX_CONFIG_HOME: path.join(dir, 'config'),
    PLUGINDEX_DATA_HOME: path.join(dir, 'data'),
    PLUGINDEX_CACHE_HOME: path.join(dir, 'cache'),
  };
}

/**
 * Runs the built command with `args` while this process holds the lock of the registry in `dir`, for 5 s
 * (long enough for a command that takes no lock to have ended) before letting go: whether it ended while
 * the lock was held, `file` as it read then, and what the command gave once it ended.
 */
export async function runWhileLocked(
  dir: string,
  args: readonly string[],
  options: { readonly cwd: string; readonly file: string },
): Promise<{ endedWhileHeld: boolean; during: string; result: CommandResult }> {
  let running: Promise<CommandResult> | undefined;
  let during = '';
  let endedWhileHeld = false;
  await withRegistryLock(dir, async () => {
    running = plugindexProcess(args, { cwd: options.cwd });
    endedWhileHeld = await Promise.race([
      running.then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 5_000)),
    ]);
    during = await readFile(options.file, 'utf8');
  });
  return { endedWhileHeld, during, result: await (running as Promise<CommandResult>) };
}
