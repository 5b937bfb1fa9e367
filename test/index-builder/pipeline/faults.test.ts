/**
 * A failure injected at every write step of a publish (artifacts, manifest, signature, plugin document,
 * globals, bins, snapshot, catalog, outcome), then the retry: the registry converges, and at no point does a
 * published document point at a file that is not there. Both ways of publishing: at once (the CLI), and with
 * the index documents deferred, then flushed (the watcher and the publish function), failing in either step.
 */
import { describe, expect, it } from 'vitest';
import { loadCatalog } from '../../../index-builder/catalog.ts';
import { StoreError } from '../../../index-builder/errors.ts';
import { binKey, binOf } from '../../../index-builder/layout.ts';
import type { PluginDocument, SnapshotDocument } from '../../../index-builder/model.ts';
import { flushIndexes, processSubmissions } from '../../../index-builder/pipeline/index.ts';
import { readPublicKey, verifyDetachedSignature } from '../../../index-builder/signing.ts';
import type { PutOptions } from '../../../index-builder/store.ts';
import { verifyListedDocument, verifyPluginDocument } from '../../../index-builder/verify.ts';
import {
  encode,
  makeBundle,
  makeRegistry,
  type TestRegistry,
  testKey,
  validManifest,
} from '../../support/fixtures.ts';
import type { MemoryStore } from '../../support/memory-store.ts';

const text = (store: MemoryStore, key: string): string =>
  new TextDecoder().decode(store.objects.get(key)?.body);

/** Every URL a published document names must resolve in the site. */
function danglingReferences(registry: TestRegistry): string[] {
  const site = registry.site;
  const missing: string[] = [];
  const base = 'https://registry.example.com/';
  const check = (url: string): void => {
    if (url.startsWith(base) && !site.objects.has(url.slice(base.length))) missing.push(url);
  };
  for (const key of site.objects.keys()) {
    if (!/^plugins\/[^/]+\/index\.json$/.test(key)) continue;
    const doc = JSON.parse(text(site, key)) as PluginDocument;
    for (const v of doc.versions) {
      check(v.manifest_url);
      check(v.manifest_signature_url);
      for (const a of v.artifacts) check(a.url);
    }
  }
  if (site.objects.has('index.json')) {
    const index = JSON.parse(text(site, 'index.json')) as {
      plugins: { versions: { manifest_url: string }[] }[];
    };
    for (const p of index.plugins) for (const v of p.versions) check(v.manifest_url);
  }
  return missing;
}

/** One way of publishing what waits (or the named submissions): what a CLI run or a watcher round does. */
type Publish = (registry: TestRegistry, keys?: string[]) => Promise<unknown>;

const modes: [string, Publish][] = [
  ['at once', (registry, keys) => processSubmissions(registry.context, keys)],
  [
    'deferring the index documents, then flushing them',
    async (registry, keys) => {
      await processSubmissions({ ...registry.context, deferIndexes: true }, keys);
      await flushIndexes(registry.context);
    },
  ],
];

async function publishOnce(registry: TestRegistry, version: string, publish: Publish): Promise<void> {
  const bundle = await makeBundle({
    manifest: validManifest({ version }),
    artifacts: [{ os: 'linux', arch: 'amd64', name: 'tool', body: encode(`v${version}`) }],
  });
  await publish(registry, await registry.submit(bundle));
}

/** How many writes (site and intake) a second publish makes, counted once. */
async function writesOfOnePublish(publish: Publish): Promise<number> {
  const registry = await makeRegistry();
  await publishOnce(registry, '1.0.0', publish);
  const before = registry.site.writes.length + registry.intake.writes.length;
  await publishOnce(registry, '1.1.0', publish);
  return registry.site.writes.length + registry.intake.writes.length - before - 1; // minus the submission upload
}

function failAt(registry: TestRegistry, n: number): () => void {
  let count = 0;
  const stores = [registry.site, registry.intake];
  const originals = stores.map((s) => s.put.bind(s));
  stores.forEach((store, i) => {
    store.put = async (key: string, body: Uint8Array, options: PutOptions) => {
      count += 1;
      // What a store throws when it is unavailable (a network error, a full disk): worth a retry.
      if (count === n) throw new StoreError('STORE_IO', key, `injected failure at write ${n} (${key})`);
      return (originals[i] as typeof store.put)(key, body, options);
    };
  });
  return () =>
    stores.forEach((store, i) => {
      store.put = originals[i] as typeof store.put;
    });
}

describe.each(modes)('when a publish %s fails at any write step', (_, publish) => {
  it('never leaves a published document pointing at a missing file, and the retry converges', async () => {
    const steps = await writesOfOnePublish(publish);
    expect(steps).toBeGreaterThan(15);
    const key = await readPublicKey((await testKey('registry')).publicKey);
    for (let n = 1; n <= steps; n++) {
      const registry = await makeRegistry();
      await publishOnce(registry, '1.0.0', publish);
      const bundle = await makeBundle({
        manifest: validManifest({ version: '1.1.0' }),
        artifacts: [{ os: 'linux', arch: 'amd64', name: 'tool', body: encode('v1.1.0') }],
      });
      const [submission] = await registry.submit(bundle);
      const restore = failAt(registry, n);
      await expect(publish(registry, [submission as string]), `step ${n}`).rejects.toThrow(
        /injected failure/,
      );
      restore();
      expect(danglingReferences(registry), `step ${n}`).toEqual([]);

      // The retry (the queue redelivers; locally, the next run) finishes the job.
      await publish(registry);
      if (registry.intake.objects.has(submission as string))
        throw new Error(`step ${n}: submission still waiting`);
      const outcomes = [...registry.intake.objects.keys()].filter((k) => k.startsWith('status/'));
      expect(outcomes, `step ${n}`).toHaveLength(2); // one for each version, whatever step failed
      expect((await loadCatalog(registry.intake)).indexesPending, `step ${n}`).toBe(false);
      expect(
        (JSON.parse(text(registry.site, 'index.json')) as { plugins: { latest_version: string }[] })
          .plugins[0]?.latest_version,
        `step ${n}`,
      ).toBe('1.1.0');
      expect(danglingReferences(registry), `step ${n}`).toEqual([]);
      const doc = JSON.parse(text(registry.site, 'plugins/demo-plugin/index.json')) as PluginDocument;
      expect(
        doc.versions.map((v) => v.version),
        `step ${n}`,
      ).toEqual(['1.1.0', '1.0.0']);
      const snapshot = JSON.parse(text(registry.site, 'snapshot.json')) as SnapshotDocument;
      for (const path of ['index.json', 'index.yaml', 'search.json'])
        verifyListedDocument(snapshot, path, registry.site.objects.get(path)?.body as Uint8Array);
      verifyPluginDocument(
        snapshot,
        'demo-plugin',
        registry.site.objects.get(binKey(binOf('demo-plugin')))?.body as Uint8Array,
        registry.site.objects.get('plugins/demo-plugin/index.json')?.body as Uint8Array,
      );
      // A later publish that leaves demo-plugin's bin alone must still list that bin as it is published
      // (the catalog's copy of its digest may be from before the failure).
      const elsewhere = ['other-plugin', 'third-plugin', 'fourth-plugin'].find(
        (name) => binOf(name) !== binOf('demo-plugin'),
      ) as string;
      await publish(
        registry,
        await registry.submit(await makeBundle({ manifest: validManifest({ name: elsewhere }) })),
      );
      const later = JSON.parse(text(registry.site, 'snapshot.json')) as SnapshotDocument;
      expect(later.generation, `step ${n}`).toBeGreaterThan(snapshot.generation);
      verifyPluginDocument(
        later,
        'demo-plugin',
        registry.site.objects.get(binKey(binOf('demo-plugin')))?.body as Uint8Array,
        registry.site.objects.get('plugins/demo-plugin/index.json')?.body as Uint8Array,
      );
      for (const signed of [
        'index.json',
        'snapshot.json',
        'plugins/demo-plugin/index.json',
        'plugins/demo-plugin/1.1.0/manifest.json',
      ]) {
        const body = registry.site.objects.get(signed)?.body as Uint8Array;
        await expect(
          verifyDetachedSignature(body, text(registry.site, `${signed}.asc`), [key.key]),
          `step ${n} ${signed}`,
        ).resolves.toMatchObject({ ok: true });
      }
    }
  });
});
