/** The entry point esbuild bundles into dist/cli/plugindex.mjs (build/cli.mjs), which cli/bin.mjs runs. */
import { main } from './main.ts';

// A reader that stops early (`plugindex list | head -1`) closes the pipe: the rest of the answer has no one
// to read it, which is no failure of the command (as for `cat`, which a closed pipe simply ends).
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
  process.exit(process.exitCode ?? 0);
});

process.exitCode = await main(process.argv.slice(2));
