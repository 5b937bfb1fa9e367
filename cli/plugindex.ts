/** The entry point esbuild bundles into dist/cli/plugindex.mjs (build/cli.mjs), which cli/bin.mjs runs. */
import { main } from './main.ts';

process.exitCode = await main(process.argv.slice(2));
