/** `plugindex process`: every submission waiting in the registry's incoming/ folder, as one batch. */
import path from 'node:path';
import { processSubmissions } from '../../index-builder/pipeline/index.ts';
import { type Parsed, requiredOption } from '../args.ts';
import { optimizeLess } from '../local/optimizing.ts';
import { withOpenRegistry } from '../local/registry.ts';
import { describeOutcome, outJson } from '../output.ts';
import { out } from '../terminal.ts';

export async function run(parsed: Parsed): Promise<number> {
  const dir = requiredOption(parsed, 'registry');
  optimizeLess();
  const result = await withOpenRegistry(dir, (registry) => processSubmissions(registry.context));
  if (parsed.values.json) outJson({ generation: result.generation, outcomes: result.outcomes });
  else {
    // One write, not one a line: a batch of 10,000 plugins prints 40,000 lines, and each write to a pipe
    // is a system call (about a third of a second in all).
    const lines = result.outcomes.flatMap((outcome) => describeOutcome(outcome));
    // What the batch published, in serve's words ("published generation N"): it said "nothing to rebuild"
    // and "rebuilt: generation N", the words of `plugindex rebuild`, a recovery this command is not.
    lines.push(
      // A batch with no upload may still publish (a dead run's logged entries finished): said so first.
      result.generation !== null
        ? `published generation ${result.generation}`
        : result.outcomes.length === 0
          ? `nothing waiting in ${path.join(dir, 'incoming')}`
          : 'published nothing: the registry is as it was',
    );
    out(lines.join('\n'));
  }
  return result.outcomes.some((o) => o.status === 'rejected') ? 1 : 0;
}
