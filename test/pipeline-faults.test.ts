/**
 * A failure injected at every write step of a publish (artifacts, manifest, signature, plugin document,
 * globals, bins, snapshot, catalog, outcome), then the retry: the registry converges, and at no point does a
 * published document point at a file that is not there.
 */
import { describe, expect, it } from 'vitest';
import { binKey, binOf } from '../index-builder/catalog.ts';
import type { PluginDocument } from '../index-builder/model.ts';
import { processSubmissions } from '../index-builder/pipeline.ts';
import type { SnapshotDocument } from '../index-builder/render/documents.ts';
import { readPublicKey, verifyDetachedSignature } from '../index-builder/signing.ts';
import type { PutOptions } from '../index-builder/store.ts';
import { verifyListedDocument, verifyPluginDocument } from '../index-builder/verify.ts';
import {
  encode,
  makeBundle,
  makeRegistry,
  type TestRegistry,
  testKey,
  validManifest,
} from './support/fixtures.ts';
import type { MemoryStore } from './support/memory-store.ts';

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

async function publishOnce(registry: TestRegistry, version: string): Promise<void> {
  const bundle = await makeBundle({
    manifest: validManifest({ version }),
    artifacts: [{ os: 'linux', arch: 'amd64', name: 'tool', body: encode(`v${version}`) }],
  });
  await processSubmissions(registry.context, await registry.submit(bundle));
}

/** How many writes (site and intake) a second publish makes, counted once. */
async function writesOfOnePublish(): Promise<number> {
  const registry = await makeRegistry();
  await publishOnce(registry, '1.0.0');
  const before = registry.site.writes.length + registry.intake.writes.length;
  await publishOnce(registry, '1.1.0');
  return registry.site.writes.length + registry.intake.writes.length - before - 1; // minus the submission upload
}

function failAt(registry: TestRegistry, n: number): () => void {
  let count = 0;
  const stores = [registry.site, registry.intake];
  const originals = stores.map((s) => s.put.bind(s));
  stores.forEach((store, i) => {
    store.put = async (key: string, body: Uint8Array, options: PutOptions) => {
      count += 1;
      if (count === n) throw new Error(`injected failure at write ${n} (${key})`);
      return (originals[i] as typeof store.put)(key, body, options);
    };
  });
  return () =>
    stores.forEach((store, i) => {
      store.put = originals[i] as typeof store.put;
    });
}

describe('when a publish fails at any write step', () => {
  it('never leaves a published document pointing at a missing file, and the retry converges', async () => {
    const steps = await writesOfOnePublish();
    expect(steps).toBeGreaterThan(15);
    const key = await readPublicKey((await testKey('registry')).publicKey);
    for (let n = 1; n <= steps; n++) {
      const registry = await makeRegistry();
      await publishOnce(registry, '1.0.0');
      const bundle = await makeBundle({
        manifest: validManifest({ version: '1.1.0' }),
        artifacts: [{ os: 'linux', arch: 'amd64', name: 'tool', body: encode('v1.1.0') }],
      });
      const [submission] = await registry.submit(bundle);
      const restore = failAt(registry, n);
      await expect(processSubmissions(registry.context, [submission as string]), `step ${n}`).rejects.toThrow(
        /injected failure/,
      );
      restore();
      expect(danglingReferences(registry), `step ${n}`).toEqual([]);

      // The retry (the queue redelivers; locally, the next run) finishes the job.
      const retry = await processSubmissions(registry.context);
      if (registry.intake.objects.has(submission as string))
        throw new Error(`step ${n}: submission still waiting`);
      expect(['accepted', 'already-published', undefined], `step ${n}`).toContain(retry.outcomes[0]?.status);
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
