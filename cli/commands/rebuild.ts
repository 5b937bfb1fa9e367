/**
 * `plugindex rebuild`: re-render and re-sign every document, locally under the registry's lock, or on AWS
 * as a message in the submission queue, so it runs in order with the publishes ahead of it.
 */
import { type Parsed, stringOption } from '../args.ts';
import { usage } from '../errors.ts';
import { serviceUrlOption } from '../inputs.ts';
import { out } from '../terminal.ts';

export async function run(parsed: Parsed): Promise<number> {
  const dir = stringOption(parsed, 'registry');
  const queueUrl = serviceUrlOption(parsed, 'queue-url');
  if ((dir === undefined) === (queueUrl === undefined))
    throw usage('give exactly one of --registry DIR or --queue-url URL');
  if (queueUrl !== undefined) {
    const { requestRebuild } = await import('../../adapters/publish-queue.ts');
    const id = await requestRebuild(queueUrl);
    out(`rebuild requested (message ${id}); the publish function runs it after the submissions ahead of it`);
    return 0;
  }
  const { withOpenRegistry } = await import('../local/registry.ts');
  const { rebuildRegistry } = await import('../../index-builder/pipeline/index.ts');
  const result = await withOpenRegistry(dir as string, (registry) => rebuildRegistry(registry.context));
  out(`rebuilt ${result.plugins} plugins: generation ${result.generation}`);
  const { markers, orders } = result.restored;
  // Only a registry whose intake state was lost (or put back older) has any to restore: say so.
  if (markers + orders > 0)
    out(`restored from the log: ${markers} applied action(s), the action order of ${orders} plugin(s)`);
  return 0;
}
