#!/usr/bin/env node
// The installed `plugindex` command: turn on Node's compile cache where the runtime has it (Node.js 22.1
// and later; a no-op before), then run the bundle that `npm ci` built (build/cli.mjs, npm's `prepare`).
import module from 'node:module';

module.enableCompileCache?.();
try {
  await import('../dist/cli/plugindex.mjs');
} catch (error) {
  if (error?.code !== 'ERR_MODULE_NOT_FOUND' || !String(error.message).includes('dist/cli/plugindex.mjs'))
    throw error;
  process.stderr.write('plugindex: the command is not built yet: run `npm run build` (npm ci does it too)\n');
  process.exitCode = 1;
}
