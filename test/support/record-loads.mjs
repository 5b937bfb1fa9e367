/**
 * Records every module a Node.js process loads, for a test asking what a command loads (openpgp.js costs
 * 70-80 ms a process): given as `NODE_OPTIONS=--import <this file's URL>` with PLUGINDEX_TEST_LOADED_MODULES
 * naming the file to append each module's URL to, a line each. Plain JavaScript: the built command runs it
 * without a TypeScript loader. `recordingLoads` and `chunksHolding` (loaded-chunks.ts) set it up and read it back.
 */
import { register } from 'node:module';

register('./record-loads-hooks.mjs', import.meta.url, {
  data: { file: process.env.PLUGINDEX_TEST_LOADED_MODULES },
});
