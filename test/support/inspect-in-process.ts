/**
 * A process that publishes one batch of three bundles with a ThreadInspector whose batch waits for its
 * threads while they load, and prints what became of it (test/adapters/inspector.test.ts runs it): a
 * process whose only pending work is that wait must not end before the batch does.
 */
import { ThreadInspector } from '../../adapters/inspector.ts';
import { processSubmissions } from '../../index-builder/pipeline/index.ts';
import { makeBundle, makeRegistry, validManifest } from './fixtures.ts';

const registry = await makeRegistry();
const keys = await registry.submit(
  ...(await Promise.all(
    ['one', 'two', 'three'].map((n) => makeBundle({ manifest: validManifest({ name: `alone-${n}` }) })),
  )),
);
const inspector = new ThreadInspector({ threads: 1, minBundles: 2, waitForThreadsFrom: 2 });
const result = await processSubmissions({ ...registry.context, inspector }, keys);
process.stdout.write(
  `${JSON.stringify({ statuses: result.outcomes.map((o) => o.status), onThreads: inspector.inspectedOnThreads })}\n`,
);
await inspector.close();
