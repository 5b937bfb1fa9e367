/** A process id no live process has: a temp file or lock named by it was left by a writer that is gone. */
import { spawn } from 'node:child_process';

/** The PID of a process that has exited (and so writes and holds nothing). */
export async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0']);
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid as number;
}
