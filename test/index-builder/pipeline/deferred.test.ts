/**
 * Publishing with the index documents deferred (`deferIndexes`), as the local watcher and the publish
 * function do: the version is live at once through its plugin document, bin and snapshot; index.json,
 * index.yaml, search.json and falcoctl/index.yaml follow at `flushIndexes`, once for any number of batches; and at every point
 * the snapshot binds documents that are really there.
 */
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { loadCatalog } from '../../../index-builder/catalog.ts';
import { PlugindexError } from '../../../index-builder/errors.ts';
import { binKey, binOf, INDEX_DOCUMENTS } from '../../../index-builder/layout.ts';
import type { PluginDocument, SnapshotDocument } from '../../../index-builder/model.ts';
import {
  flushIndexes,
  type PipelineContext,
  processSubmissions,
  rebuildRegistry,
  refreshSnapshot,
} from '../../../index-builder/pipeline/index.ts';
import { readPublicKey } from '../../../index-builder/signing.ts';
import { verifyListedDocument, verifyPluginDocument, verifySnapshot } from '../../../index-builder/verify.ts';
import { makeBundle, makeRegistry, type TestRegistry, validManifest } from '../../support/fixtures.ts';
import { MemoryStore } from '../../support/memory-store.ts';

const decoder = new TextDecoder();

function body(registry: TestRegistry, key: string): Uint8Array {
  const object = registry.site.objects.get(key);
  if (!object) throw new Error(`missing ${key}`);
  return object.body;
}

function json<T>(registry: TestRegistry, key: string): T {
  return JSON.parse(decoder.decode(body(registry, key))) as T;
}

function deferring(registry: TestRegistry): PipelineContext {
  return { ...registry.context, deferIndexes: true };
}

async function publishDeferred(registry: TestRegistry, name: string, version: string) {
  const keys = await registry.submit(await makeBundle({ manifest: validManifest({ name, version }) }));
  return processSubmissions(deferring(registry), keys);
}

/** What a client does: the signed snapshot, then each document it lists, by digest. */
async function verifyAsClient(registry: TestRegistry, plugins: readonly string[]): Promise<SnapshotDocument> {
  const snapshot = await verifySnapshot({
    snapshot: body(registry, 'snapshot.json'),
    signature: decoder.decode(body(registry, 'snapshot.json.asc')),
    key: (await readPublicKey(registry.signer.publicKey)).key,
    now: new Date('2026-11-02T00:00:00Z'),
  });
  for (const key of INDEX_DOCUMENTS) verifyListedDocument(snapshot, key, body(registry, key));
  for (const name of plugins) {
    verifyPluginDocument(
      snapshot,
      name,
      body(registry, binKey(binOf(name))),
      body(registry, `plugins/${name}/index.json`),
    );
  }
  return snapshot;
}

const indexedVersions = (registry: TestRegistry, name: string): string[] =>
  json<{ plugins: { name: string; versions: { version: string }[] }[] }>(registry, 'index.json')
    .plugins.find((p) => p.name === name)
    ?.versions.map((v) => v.version) ?? [];

const falcoctlNames = (registry: TestRegistry): string[] =>
  (YAML.parse(decoder.decode(body(registry, 'falcoctl/index.yaml'))) as { name: string }[]).map(
    (e) => e.name,
  );

describe('when a publish defers the index documents', () => {
  it('makes the version live in its plugin document, bin and snapshot, and leaves the index documents as they were', async () => {
    const registry = await makeRegistry();
    await processSubmissions(registry.context, await registry.submit(await makeBundle()));
    const before = new Map(INDEX_DOCUMENTS.map((key) => [key, body(registry, key)]));
    registry.site.writes.length = 0;

    const result = await publishDeferred(registry, 'demo-plugin', '1.1.0');

    expect(result.outcomes[0]).toMatchObject({ status: 'accepted', generation: 2 });
    expect(result.indexesPending).toBe(true);
    expect(
      registry.site.writes.filter((k) => INDEX_DOCUMENTS.includes(k.replace(/\.(asc|br|gz)$/, ''))),
    ).toEqual([]);
    expect(result.invalidate).not.toContain('index.json');
    for (const [key, bytes] of before) expect(body(registry, key)).toEqual(bytes);
    const doc = json<PluginDocument>(registry, 'plugins/demo-plugin/index.json');
    expect(doc.versions.map((v) => v.version)).toEqual(['1.1.0', '1.0.0']);
    // The snapshot is new and still binds the index documents that are there: a client sees no mismatch.
    const snapshot = await verifyAsClient(registry, ['demo-plugin']);
    expect(snapshot.generation).toBe(2);
    expect(indexedVersions(registry, 'demo-plugin')).toEqual(['1.0.0']);
    expect((await loadCatalog(registry.intake)).indexesPending).toBe(true);
  });

  it('renders them once at the flush, for any number of deferred batches', async () => {
    const registry = await makeRegistry();
    await processSubmissions(registry.context, await registry.submit(await makeBundle()));
    for (const version of ['1.1.0', '1.2.0', '1.3.0'])
      expect((await publishDeferred(registry, 'demo-plugin', version)).indexesPending).toBe(true);
    await publishDeferred(registry, 'other-plugin', '0.1.0');
    expect(falcoctlNames(registry)).toEqual(['demo-plugin']);
    registry.site.writes.length = 0;

    const flushed = await flushIndexes(registry.context);

    expect(flushed.generation).toBe(6);
    expect(registry.site.writes.filter((k) => k === 'index.json')).toHaveLength(1);
    expect(flushed.invalidate).toEqual(
      [
        ...INDEX_DOCUMENTS.flatMap((k) => [k, `${k}.asc`, `${k}.br`, `${k}.gz`]),
        // The home page lists the first plugins, rendered with the index documents.
        'index.html',
        'snapshot.json',
        'snapshot.json.asc',
        'snapshot.signed.json',
      ].sort(),
    );
    expect(indexedVersions(registry, 'demo-plugin')).toEqual(['1.3.0', '1.2.0', '1.1.0', '1.0.0']);
    expect(indexedVersions(registry, 'other-plugin')).toEqual(['0.1.0']);
    const yaml = YAML.parse(decoder.decode(body(registry, 'index.yaml'))) as unknown;
    expect(yaml).toEqual(json(registry, 'index.json'));
    expect(falcoctlNames(registry)).toEqual(['demo-plugin', 'other-plugin']);
    const search = json<{ plugins: { name: string; latest_version: string }[] }>(registry, 'search.json');
    expect(search.plugins.map((p) => [p.name, p.latest_version])).toEqual([
      ['demo-plugin', '1.3.0'],
      ['other-plugin', '0.1.0'],
    ]);
    expect((await verifyAsClient(registry, ['demo-plugin', 'other-plugin'])).generation).toBe(6);
    expect((await loadCatalog(registry.intake)).indexesPending).toBe(false);

    registry.site.writes.length = 0;
    expect(await flushIndexes(registry.context)).toEqual({ generation: null, invalidate: [] });
    expect(registry.site.writes).toEqual([]);
  });

  it("journals the deferred publishes' catalog lines, and a flush in another process folds them into the bins", async () => {
    const registry = await makeRegistry();
    await processSubmissions(registry.context, await registry.submit(await makeBundle()));
    registry.intake.writes.length = 0;
    await publishDeferred(registry, 'demo-plugin', '1.1.0');
    await publishDeferred(registry, 'other-plugin', '0.1.0');
    const written = registry.intake.writes.filter((k) => k.startsWith('state/catalog/'));
    expect(written.filter((k) => k.includes('/bins/'))).toEqual([]);
    expect(new Set(written.filter((k) => k.includes('/journal/'))).size).toBe(2);

    // Another process: stores of its own over the same objects, nothing kept from the publishes.
    const copy = (store: MemoryStore) => {
      const fresh = new MemoryStore();
      for (const [key, object] of store.objects) fresh.objects.set(key, object);
      return fresh;
    };
    const cold = { ...registry, intake: copy(registry.intake), site: copy(registry.site) };
    cold.context = { ...registry.context, intake: cold.intake, site: cold.site };
    expect((await flushIndexes(cold.context)).generation).not.toBeNull();

    expect(indexedVersions(cold, 'demo-plugin')).toEqual(['1.1.0', '1.0.0']);
    expect(indexedVersions(cold, 'other-plugin')).toEqual(['0.1.0']);
    expect(cold.intake.writes).toEqual(
      expect.arrayContaining([
        ...new Set(['demo-plugin', 'other-plugin'].map((n) => `state/catalog/bins/${binOf(n)}.tsv`)),
      ]),
    );
    expect([...cold.intake.objects.keys()].filter((k) => k.includes('/journal/'))).toEqual([]);
    await verifyAsClient(cold, ['demo-plugin', 'other-plugin']);
    // The bins alone now say what the journal said.
    const catalog = await loadCatalog(copy(cold.intake));
    expect(catalog.journal).toEqual([]);
    expect(JSON.parse(catalog.plugins.get('other-plugin')?.search ?? '{}')).toMatchObject({
      latest_version: '0.1.0',
    });
  });

  it('rebuilds at the flush when a bin it reads turns out to be of another format', async () => {
    const registry = await makeRegistry();
    await processSubmissions(registry.context, await registry.submit(await makeBundle()));
    await publishDeferred(registry, 'demo-plugin', '1.1.0');
    // A publish reads no bin but its own plugin's (not even that, warm): the flush reads them all.
    const key = `state/catalog/bins/${binOf('demo-plugin')}.tsv`;
    const object = registry.intake.objects.get(key);
    if (!object) throw new Error(`missing ${key}`);
    const older = decoder.decode(object.body).replace(/^plugindex-catalog \d+/, 'plugindex-catalog 4');
    registry.intake.objects.set(key, { ...object, body: new TextEncoder().encode(older) });
    const cold = { ...registry, intake: new MemoryStore(), site: new MemoryStore() };
    for (const [k, o] of registry.intake.objects) cold.intake.objects.set(k, o);
    for (const [k, o] of registry.site.objects) cold.site.objects.set(k, o);
    cold.context = { ...registry.context, intake: cold.intake, site: cold.site };
    expect((await flushIndexes(cold.context)).generation).not.toBeNull();
    expect(decoder.decode(cold.intake.objects.get(key)?.body).startsWith('plugindex-catalog 8\n')).toBe(true);
    expect(indexedVersions(cold, 'demo-plugin')).toEqual(['1.1.0', '1.0.0']);
    await verifyAsClient(cold, ['demo-plugin']);
  });

  it('leaves no journal behind a rebuild, which writes every bin anew', async () => {
    const registry = await makeRegistry();
    await processSubmissions(registry.context, await registry.submit(await makeBundle()));
    await publishDeferred(registry, 'demo-plugin', '1.1.0');
    const journal = () => [...registry.intake.objects.keys()].filter((k) => k.includes('/journal/'));
    expect(journal()).toHaveLength(1);
    await rebuildRegistry(registry.context);
    expect(journal()).toEqual([]);
    expect(indexedVersions(registry, 'demo-plugin')).toEqual(['1.1.0', '1.0.0']);
    expect((await loadCatalog(registry.intake)).journal).toEqual([]);
  });

  it('renders them at the first publish into an empty registry, so the snapshot always lists them', async () => {
    const registry = await makeRegistry();
    const result = await publishDeferred(registry, 'demo-plugin', '1.0.0');
    expect(result.indexesPending).toBe(false);
    expect(indexedVersions(registry, 'demo-plugin')).toEqual(['1.0.0']);
    await verifyAsClient(registry, ['demo-plugin']);
    expect((await flushIndexes(registry.context)).generation).toBeNull();
  });

  it('writes nothing for a batch that only rejects, and keeps what is pending', async () => {
    const registry = await makeRegistry();
    await processSubmissions(registry.context, await registry.submit(await makeBundle()));
    await publishDeferred(registry, 'demo-plugin', '1.1.0');
    registry.site.writes.length = 0;
    const keys = await registry.submit(new TextEncoder().encode('not a bundle'));
    const result = await processSubmissions(deferring(registry), keys);
    expect(result).toMatchObject({ generation: null, indexesPending: true });
    expect(registry.site.writes).toEqual([]);
  });
});

describe('when index documents are pending and another operation comes', () => {
  async function pending(): Promise<TestRegistry> {
    const registry = await makeRegistry();
    await processSubmissions(registry.context, await registry.submit(await makeBundle()));
    await publishDeferred(registry, 'demo-plugin', '1.1.0');
    return registry;
  }

  it('a batch that does not defer renders them, even with nothing to publish', async () => {
    const registry = await pending();
    const result = await processSubmissions(registry.context);
    expect(result).toMatchObject({ outcomes: [], generation: 3, indexesPending: false });
    expect(indexedVersions(registry, 'demo-plugin')).toEqual(['1.1.0', '1.0.0']);
    await verifyAsClient(registry, ['demo-plugin']);
  });

  it('a snapshot refresh renders them first, so a quiet registry does not lag for hours', async () => {
    const registry = await pending();
    const { generation, invalidate } = await refreshSnapshot(registry.context);
    expect(generation).toBe(3);
    expect(invalidate).toContain('index.json');
    expect(indexedVersions(registry, 'demo-plugin')).toEqual(['1.1.0', '1.0.0']);
    await verifyAsClient(registry, ['demo-plugin']);
    expect((await loadCatalog(registry.intake)).indexesPending).toBe(false);
  });

  it('a snapshot refresh without the config (asPublished) refuses REFRESH_NEEDS_CONFIG, writing nothing', async () => {
    // Rendering them would name the registry by a config that could not be read (functions/handlers.ts).
    const registry = await pending();
    const before = new Map([...registry.site.objects].map(([key, object]) => [key, object.body]));

    const refused = refreshSnapshot(registry.context, { asPublished: {} });

    await expect(refused).rejects.toThrow(PlugindexError);
    await expect(refused).rejects.toMatchObject({ code: 'REFRESH_NEEDS_CONFIG' });
    expect(new Map([...registry.site.objects].map(([key, object]) => [key, object.body]))).toEqual(before);
    expect((await loadCatalog(registry.intake)).indexesPending).toBe(true);
  });

  it('a full rebuild renders them and clears the mark', async () => {
    const registry = await pending();
    await rebuildRegistry(registry.context);
    expect(indexedVersions(registry, 'demo-plugin')).toEqual(['1.1.0', '1.0.0']);
    expect((await loadCatalog(registry.intake)).indexesPending).toBe(false);
  });

  it('a flush that fails midway stays pending, and the next one converges', async () => {
    const registry = await pending();
    const site = registry.site;
    const realPut = site.put.bind(site);
    site.put = async (key, bytes, options) => {
      if (key === 'index.yaml') throw new Error('injected failure');
      return realPut(key, bytes, options);
    };
    await expect(flushIndexes(registry.context)).rejects.toThrow('injected failure');
    expect((await loadCatalog(registry.intake)).indexesPending).toBe(true);
    site.put = realPut;
    expect((await flushIndexes(registry.context)).generation).not.toBeNull();
    expect(indexedVersions(registry, 'demo-plugin')).toEqual(['1.1.0', '1.0.0']);
    await verifyAsClient(registry, ['demo-plugin']);
    expect((await loadCatalog(registry.intake)).indexesPending).toBe(false);
  });
});
