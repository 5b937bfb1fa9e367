/**
 * V8's budget for optimizing, for `plugindex process` (a whole batch in one process): less bytecode
 * inlined into each function it optimizes. Such a command runs for seconds,
 * where optimizing costs more than it saves. An import of 3,000 new plugins had V8's threads optimize 437
 * functions in 3.7 s of CPU (for the publishing thread, the inspector's and the writer's), beside about 7 s
 * of the rest, on two cores; with at most 200 bytes of bytecode inlined into a function (V8's default:
 * 920), in 2.5 s. The import took 5.02 s against 5.33 s (medians of 10, faster in 9 rounds), and 4.52 s
 * against 4.71 s in another run (medians of 12, faster in 7, slower in 4; bench/ab-import.sh). Not for
 * every command: loading `node:v8` costs a process about 5 ms, and a single publish optimizes little
 * (`rebuild` and `serve` may gain too, unmeasured).
 */

/**
 * Lowers the budget for the rest of the process: V8 reads it at each optimization, so, set before the
 * batch's code is hot, it holds for every thread the batch starts.
 */
export function optimizeLess(): void {
  process.getBuiltinModule('node:v8').setFlagsFromString('--max-inlined-bytecode-size-cumulative=200');
}
