/** `plugindex refresh`: snapshot.json re-signed with a fresh expiry (run it on a schedule). */
import { refreshSnapshot } from '../../index-builder/pipeline/index.ts';
import { type Parsed, requiredOption } from '../args.ts';
import { openRegistry, withRegistryLock } from '../local/registry.ts';
import { out } from '../terminal.ts';

export async function run(parsed: Parsed): Promise<number> {
  const dir = requiredOption(parsed, 'registry');
  const registry = await openRegistry(dir);
  const { generation } = await withRegistryLock(dir, () => refreshSnapshot(registry.context));
  out(`snapshot re-signed: generation ${generation}`);
  return 0;
}
