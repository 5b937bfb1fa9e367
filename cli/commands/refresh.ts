/** `plugindex refresh`: snapshot.json re-signed with a fresh expiry (run it on a schedule). */
import { refreshSnapshot } from '../../index-builder/pipeline/index.ts';
import { type Parsed, requiredOption } from '../args.ts';
import { withOpenRegistry } from '../local/registry.ts';
import { out } from '../terminal.ts';

export async function run(parsed: Parsed): Promise<number> {
  const dir = requiredOption(parsed, 'registry');
  const { generation } = await withOpenRegistry(dir, (registry) => refreshSnapshot(registry.context));
  out(`snapshot re-signed: generation ${generation}`);
  return 0;
}
