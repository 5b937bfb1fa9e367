/** `plugindex refresh`: snapshot.json re-signed with a fresh expiry (run it on a schedule). */
import { refreshSnapshot } from '../../index-builder/pipeline/index.ts';
import { type Parsed, requiredOption } from '../args.ts';
import { withOpenRegistry } from '../local/registry.ts';
import { err, out } from '../terminal.ts';

export async function run(parsed: Parsed): Promise<number> {
  const dir = requiredOption(parsed, 'registry');
  const { generation, stuck } = await withOpenRegistry(dir, (registry) => refreshSnapshot(registry.context));
  out(`snapshot re-signed: generation ${generation}`);
  // Re-signed all the same (refused, the snapshot would expire): the operator is told what is left to do.
  if (stuck) err(`warning: ${stuck.code}: ${stuck.message}`);
  return 0;
}
