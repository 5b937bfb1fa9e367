/**
 * ThreadInspector: bundles inspected on real worker threads (loading the TypeScript source through tsx, as
 * the tests run it) are judged exactly as those inspected in the publishing thread, every bundle is
 * answered whatever becomes of the threads, and small batches never start one.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ThreadInspector } from '../../adapters/inspector.ts';
import { parseRegistryConfig } from '../../index-builder/config.ts';
import { processSubmissions } from '../../index-builder/pipeline/index.ts';
import {
  type Inspection,
  type InspectionBasis,
  inspectBundle,
  trustedKeysOf,
} from '../../index-builder/pipeline/inspect.ts';
import { planBatch } from '../../index-builder/pipeline/intake.ts';
import { encode, makeBundle, makeRegistry, rawTar, testKey, validManifest } from '../support/fixtures.ts';

const inspectors: ThreadInspector[] = [];
afterEach(async () => {
  await Promise.all(inspectors.splice(0).map((i) => i.close()));
});

function threadInspector(options: ConstructorParameters<typeof ThreadInspector>[0] = {}): ThreadInspector {
  const inspector = new ThreadInspector(options);
  inspectors.push(inspector);
  return inspector;
}

/** A batch that meets each kind of inspection: accepted (JSON, YAML, with an artifact), and refused. */
async function mixedBatch(): Promise<Uint8Array[]> {
  const stranger = await testKey('stranger');
  return [
    await makeBundle({ manifest: validManifest({ name: 'thread-json', version: '1.0.0' }) }),
    await makeBundle({
      manifest: validManifest({ name: 'thread-artifact', version: '1.0.0' }),
      artifacts: [{ os: 'linux', arch: 'amd64', name: 'tool', body: encode('binary') }],
    }),
    await makeBundle({
      manifest: validManifest({ name: 'thread-yaml', version: '2.0.0' }),
      manifestName: 'manifest.yaml',
    }),
    await makeBundle({ manifest: { ...validManifest({ name: 'thread-bad' }), version: undefined } }),
    await makeBundle({
      manifest: validManifest({ name: 'thread-digest', version: '1.0.0' }),
      artifacts: [{ os: 'linux', arch: 'amd64', name: 'tool', body: encode('binary'), record: false }],
    }),
    await makeBundle({ manifest: validManifest({ name: 'thread-stranger' }), signer: stranger }),
    encode('not a gzip file at all'),
    await rawTar([{ name: 'manifest.json', body: encode('{"name": "only-a-manifest"}') }]),
    // The same version again, after the first: judged against the batch, not the inspection.
    await makeBundle({ manifest: validManifest({ name: 'thread-json', version: '1.0.0' }) }),
  ];
}

/** What a batch's outcomes say, without the upload names (each registry names its uploads). */
function outcomesOf(result: Awaited<ReturnType<typeof processSubmissions>>) {
  return result.outcomes.map((o) => ({
    status: o.status,
    plugin: o.plugin,
    version: o.version,
    problems: o.problems,
  }));
}

describe('when a batch is inspected on threads', () => {
  it('judges every bundle as a batch inspected in its own thread does', async () => {
    const bundles = await mixedBatch();
    const here = await makeRegistry({ policy: 'open' });
    const expected = await processSubmissions(here.context, await here.submit(...bundles));

    const inspector = threadInspector({ threads: 2, minBundles: 1 });
    await inspector.start();
    const threaded = await makeRegistry({ policy: 'open' });
    const context = { ...threaded.context, inspector };
    const result = await processSubmissions(context, await threaded.submit(...bundles));

    expect(inspector.inspectedOnThreads).toBe(bundles.length);
    expect(outcomesOf(result)).toEqual(outcomesOf(expected));
    expect(outcomesOf(result).map((o) => o.status)).toEqual([
      'accepted',
      'accepted',
      'accepted',
      'rejected',
      'rejected',
      'accepted',
      'rejected',
      'rejected',
      'already-published',
    ]);
    expect(result.changedPlugins).toEqual(expected.changedPlugins);
    // What was accepted was written from the bundle the thread read: the artifact's bytes, the manifest.
    const artifact = await threaded.site.get('plugins/thread-artifact/1.0.0/artifacts/linux-amd64/tool');
    expect(new TextDecoder().decode(artifact?.body)).toBe('binary');
    const manifest = await threaded.site.get('plugins/thread-yaml/2.0.0/manifest.json');
    expect(JSON.parse(new TextDecoder().decode(manifest?.body)).version).toBe('2.0.0');
  });

  it('inspects a batch under its threshold in its own thread, and starts no thread for it', async () => {
    const inspector = threadInspector({ minBundles: 3 });
    const registry = await makeRegistry();
    const keys = await registry.submit(
      await makeBundle({ manifest: validManifest({ name: 'small-one' }) }),
      await makeBundle({ manifest: validManifest({ name: 'small-two' }) }),
    );
    const result = await processSubmissions({ ...registry.context, inspector }, keys);
    expect(result.outcomes.map((o) => o.status)).toEqual(['accepted', 'accepted']);
    expect(inspector.inspectedOnThreads).toBe(0);
    expect(inspector.threads).toBe(0);
  });
});

describe('when a large batch meets threads still loading', () => {
  /** Publishes three new plugins as one batch with `inspector`; their outcomes. */
  async function batchOfThree(inspector: ThreadInspector): Promise<string[]> {
    const registry = await makeRegistry();
    const bundles = await Promise.all(
      ['one', 'two', 'three'].map((n) => makeBundle({ manifest: validManifest({ name: `three-${n}` }) })),
    );
    const result = await processSubmissions(
      { ...registry.context, inspector },
      await registry.submit(...bundles),
    );
    return result.outcomes.map((o) => o.status);
  }

  it('waits for them rather than inspect in its own thread', async () => {
    const inspector = threadInspector({ threads: 1, minBundles: 2, waitForThreadsFrom: 3 });

    expect(await batchOfThree(inspector)).toEqual(['accepted', 'accepted', 'accepted']);
    expect(inspector.inspectedOnThreads).toBe(3);
  });

  it('keeps the process alive while it waits for them', async () => {
    // In a process of its own: one that has nothing else pending would otherwise end mid-batch (exit 13).
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', fileURLToPath(new URL('../support/inspect-in-process.ts', import.meta.url))],
      { cwd: fileURLToPath(new URL('../..', import.meta.url)) },
    );
    expect(JSON.parse(stdout)).toEqual({ statuses: ['accepted', 'accepted', 'accepted'], onThreads: 3 });
  });

  it('inspects a smaller one in its own thread until they are ready', async () => {
    const inspector = threadInspector({ threads: 1, minBundles: 2, waitForThreadsFrom: 4 });

    expect(await batchOfThree(inspector)).toEqual(['accepted', 'accepted', 'accepted']);
    // A thread loads the TypeScript source through tsx for far longer than three inspections take.
    expect(inspector.inspectedOnThreads).toBe(0);
    await vi.waitFor(() => expect(inspector.threads).toBe(1), { timeout: 30_000 });
  });
});

describe('when a batch is planned', () => {
  it('starts the threads for a batch large enough, before any upload is read', async () => {
    const registry = await makeRegistry();
    await registry.submit(
      await makeBundle({ manifest: validManifest({ name: 'early-one' }) }),
      await makeBundle({ manifest: validManifest({ name: 'early-two' }) }),
    );
    const small = threadInspector({ threads: 1, minBundles: 3 });
    await planBatch({ ...registry.context, inspector: small });
    const large = threadInspector({ threads: 1, minBundles: 2 });
    const { taken } = await planBatch({ ...registry.context, inspector: large });
    expect(taken).toHaveLength(2);
    await vi.waitFor(() => expect(large.threads).toBe(1), { timeout: 30_000 });
    expect(small.threads).toBe(0);
  });
});

describe('when a basis cannot cross threads', () => {
  it('inspects the batch in its own thread, every bundle as it would', async () => {
    const inspector = threadInspector({ threads: 1, minBundles: 1 });
    await inspector.start();
    const registry = await testKey('registry');
    // A config is plain data; one that is not (a function in it) cannot be cloned to a thread.
    const config = parseRegistryConfig({ name: 'Test', url: 'https://registry.example.com', policy: 'open' });
    const b: InspectionBasis = {
      config: Object.assign({}, config, { hook: () => undefined }),
      registryFingerprints: [registry.fingerprint],
      now: new Date('2026-11-01T00:00:00Z'),
    };
    const trusted = await trustedKeysOf(b);
    const run = inspector.begin(b, 2, (bytes) => inspectBundle(bytes, b, trusted));
    if (!run) throw new Error('the inspector declined a batch over its threshold');
    const inspections = await Promise.all([
      run.inspect(await makeBundle({ manifest: validManifest({ name: 'unclonable-one' }) })),
      run.inspect(encode('not a bundle')),
    ]);
    run.end();
    expect(inspector.inspectedOnThreads).toBe(0);
    expect(inspections.map((i) => i.kind)).toEqual(['read', 'unreadable']);
    expect(inspections[0]?.kind === 'read' && inspections[0].problems).toEqual([]);
  });
});

describe('when the threads stop', () => {
  async function basis(): Promise<InspectionBasis> {
    const registry = await testKey('registry');
    return {
      config: parseRegistryConfig({ name: 'Test', url: 'https://registry.example.com', policy: 'open' }),
      registryFingerprints: [registry.fingerprint],
      now: new Date('2026-11-01T00:00:00Z'),
    };
  }

  it('answers the bundles they had in the batch’s own thread', async () => {
    const inspector = threadInspector({ threads: 1, minBundles: 1 });
    await inspector.start();
    const b = await basis();
    const trusted = await trustedKeysOf(b);
    let inspectedHere = 0;
    const here = (bytes: Uint8Array): Promise<Inspection> => {
      inspectedHere += 1;
      return inspectBundle(bytes, b, trusted);
    };
    const run = inspector.begin(b, 24, here);
    if (!run) throw new Error('the inspector declined a batch over its threshold');
    const bundles = await Promise.all(
      Array.from({ length: 24 }, (_, i) => makeBundle({ manifest: validManifest({ name: `stop-${i}` }) })),
    );
    const answers = bundles.map((bytes) => run.inspect(bytes));
    // Ready threads take them all: none was inspected here yet.
    expect(inspectedHere).toBe(0);
    // Stopped before any answer can be back (answers go out at the end of the thread's turn, at the earliest).
    await inspector.close();
    const inspections = await Promise.all(answers);
    run.end();
    expect(inspectedHere).toBe(24);
    expect(inspections.map((i) => (i.kind === 'read' ? i.manifest?.name : i.kind))).toEqual(
      bundles.map((_, i) => `stop-${i}`),
    );
  });
});
