/** Runs make-folders-under.ts as a process killed after 20 s: what it printed, or `hung` where it was killed. */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execute = promisify(execFile);

export type FoldersOutcome =
  | {
      readonly name: string;
      readonly code?: string;
      readonly message: string;
      /** For `store-thread`: the batches of puts the writer thread was sent for the put under the folder. */
      readonly threadBatches?: number;
    }
  | 'hung';

export async function makeFoldersUnder(
  kind: 'write' | 'lock' | 'blob' | 'install' | 'store' | 'store-thread',
  dir: string,
): Promise<FoldersOutcome> {
  const script = fileURLToPath(new URL('./make-folders-under.ts', import.meta.url));
  try {
    const { stdout } = await execute(process.execPath, ['--import', 'tsx', script, kind, dir], {
      cwd: fileURLToPath(new URL('../..', import.meta.url)),
      timeout: 20_000,
    });
    return JSON.parse(stdout) as FoldersOutcome;
  } catch (error) {
    if ((error as { killed?: boolean }).killed === true) return 'hung';
    throw error;
  }
}
