/** `plugindex process`: every submission waiting in the registry's incoming/ folder, as one batch. */
import { processSubmissions } from '../../index-builder/pipeline/index.ts';
import { type Parsed, requiredOption } from '../args.ts';
import { withOpenRegistry } from '../local/registry.ts';
import { describeOutcome, outJson } from '../output.ts';
import { out } from '../terminal.ts';

export async function run(parsed: Parsed): Promise<number> {
  const dir = requiredOption(parsed, 'registry');
  const result = await withOpenRegistry(dir, (registry) => processSubmissions(registry.context));
  if (parsed.values.json) outJson({ generation: result.generation, outcomes: result.outcomes });
  else {
    for (const outcome of result.outcomes) for (const line of describeOutcome(outcome)) out(line);
    out(result.generation === null ? 'nothing to rebuild' : `rebuilt: generation ${result.generation}`);
  }
  return result.outcomes.some((o) => o.status === 'rejected') ? 1 : 0;
}
