/**
 * What the pipeline reads back of what it published (a plugin's document, which a publish merges its new
 * version into; `keys/revoked.json`; `snapshot.json`) is checked against what its catalog recorded before it
 * is used: whoever may write the published store but not the intake store (a bucket's writer, a user with
 * write access to the registry's public folder) must not have the registry sign their edit. A document that
 * is not what the catalog recorded, nor what a run that died recorded it was about to write, fails the
 * batch with TrustError PUBLISHED_DOCUMENT_ALTERED, nothing published, the upload left for a retry. On the
 * real stores: the filesystem store and S3 (s3rver).
 */
import { describe, expect, it } from 'vitest';
import { forgetBins } from '../../../index-builder/catalog.ts';
import { TrustError } from '../../../index-builder/errors.ts';
import {
  binOf,
  CATALOG_META_KEY,
  CATALOG_SNAPSHOT_RECORD_KEY,
  pluginDocumentKey,
  REVOKED_KEYS_KEY,
  SNAPSHOT_KEY,
  signatureKey,
} from '../../../index-builder/layout.ts';
import type { PluginDocument, SnapshotDocument } from '../../../index-builder/model.ts';
import type { PipelineContext } from '../../../index-builder/pipeline/index.ts';
import {
  flushIndexes,
  processSubmissions,
  rebuildRegistry,
  refreshSnapshot,
} from '../../../index-builder/pipeline/index.ts';
import { readPublicKey, verifyDetachedSignature } from '../../../index-builder/signing.ts';
import { CACHE_MUTABLE, CACHE_PRIVATE, listAll, type Store } from '../../../index-builder/store.ts';
import {
  makeBundle,
  makeRegistry,
  nextUploadName,
  sha256,
  testKey,
  validManifest,
} from '../../support/fixtures.ts';
import { realStores, withMethod } from '../../support/stores.ts';

const { kinds } = realStores('records');

const NAME = 'demo-plugin';
const DOCUMENT = pluginDocumentKey(NAME);
const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** A registry on `stores`, its publisher, and a submitter of `NAME` at a version. */
async function registryOn(stores: { intake: Store; site: Store }) {
  const base = await makeRegistry();
  const context: PipelineContext = { ...base.context, ...stores };
  const publisher = await testKey('publisher');
  const submit = async (version: string, signer = publisher, name = NAME): Promise<string> => {
    const key = `incoming/${nextUploadName()}.tgz`;
    const bundle = await makeBundle({ manifest: validManifest({ name, version }), signer });
    await stores.intake.put(key, bundle, { contentType: 'application/gzip', cacheControl: 'no-store' });
    return key;
  };
  /** A batch of `keys`, as another process runs it (nothing kept in memory from the last one). */
  const run = (keys?: string[]) => {
    forgetBins(context.intake);
    return processSubmissions(context, keys);
  };
  return { context, publisher, submit, run };
}

/** A registry on `stores` (registryOn) with 1.0.0 of `NAME` published. */
async function publishedOn(stores: { intake: Store; site: Store }) {
  const registry = await registryOn(stores);
  await registry.run([await registry.submit('1.0.0')]);
  return registry;
}

async function json<T>(store: Store, key: string): Promise<T> {
  return JSON.parse(decoder.decode((await store.get(key))?.body)) as T;
}

/** Puts `body` where the registry published `key`, as anyone who may write the published store can. */
async function overwrite(site: Store, key: string, body: Uint8Array): Promise<void> {
  await site.put(key, body, { contentType: 'application/json', cacheControl: CACHE_MUTABLE });
}

/** Every object of `store` with its ETag: what a failed batch must leave as it is. */
async function contentsOf(store: Store): Promise<[string, string][]> {
  return (await listAll(store, '')).map((o): [string, string] => [o.key, o.etag]).sort();
}

/** Runs `run`, expecting it to fail PUBLISHED_DOCUMENT_ALTERED naming `key`, with nothing published. */
async function expectAltered(
  registry: Awaited<ReturnType<typeof registryOn>>,
  key: string,
  upload: string,
): Promise<TrustError> {
  const { context } = registry;
  const site = await contentsOf(context.site);
  const outcomes = await listAll(context.intake, 'status/');

  const error = await registry.run([upload]).catch((e: unknown) => e);

  expect(error).toBeInstanceOf(TrustError);
  expect(error).toMatchObject({ code: 'PUBLISHED_DOCUMENT_ALTERED' });
  expect((error as Error).message).toContain(key);
  // Nothing published (nor a version's files written), the upload kept for the retry, no outcome recorded.
  expect(await contentsOf(context.site)).toEqual(site);
  expect(await context.intake.head(upload)).toBeDefined();
  expect(await listAll(context.intake, 'status/')).toEqual(outcomes);
  return error as TrustError;
}

/**
 * `context` as a run that dies once its snapshot is written: from then on every put of an intake key that
 * `failing` matches throws 'killed after the snapshot'.
 */
function diesAfterSnapshot(context: PipelineContext, failing: (key: string) => boolean): PipelineContext {
  let committed = false;
  return {
    ...context,
    site: withMethod(context.site, 'put', (put) => async (key, body, options) => {
      await put(key, body, options);
      if (key === SNAPSHOT_KEY) committed = true;
    }),
    intake: withMethod(context.intake, 'put', (put) => async (key, body, options) => {
      if (committed && failing(key)) throw new Error('killed after the snapshot');
      return put(key, body, options);
    }),
  };
}

describe.each(kinds)('what a publish reads back of what it published, on %s', (_, stores) => {
  it.each([
    [
      'owners (a stranger made an owner)',
      (doc: PluginDocument, stranger: string) => ({ ...doc, owners: [...doc.owners, stranger] }),
    ],
    [
      'versions (one the registry never published)',
      (doc: PluginDocument) => ({
        ...doc,
        versions: [{ ...(doc.versions[0] as PluginDocument['versions'][number]), version: '0.9.0' }],
      }),
    ],
  ] as const)(
    'fails the batch on a plugin document whose %s was edited, rather than merge and sign it',
    async (_what, edit) => {
      // Prepare: 1.0.0 published; its document edited where it is published; 1.1.0 submitted by its owner.
      const registry = await publishedOn(stores());
      const original = (await registry.context.site.get(DOCUMENT))?.body as Uint8Array;
      const stranger = (await testKey('stranger')).fingerprint;
      const edited = encoder.encode(
        JSON.stringify(edit(await json(registry.context.site, DOCUMENT), stranger)),
      );
      await overwrite(registry.context.site, DOCUMENT, edited);
      const upload = await registry.submit('1.1.0');

      // Act, assess: the batch fails, naming the document and both digests.
      const error = await expectAltered(registry, DOCUMENT, upload);
      expect(error.message).toContain(sha256(original));
      expect(error.message).toContain(sha256(edited));

      // The operator puts the document back: the retry publishes 1.1.0 with the owners the registry gave.
      await overwrite(registry.context.site, DOCUMENT, original);
      const retried = await registry.run();
      expect(retried.outcomes.map((o) => o.status)).toEqual(['accepted']);
      const doc = await json<PluginDocument>(registry.context.site, DOCUMENT);
      expect(doc.owners).toEqual([registry.publisher.fingerprint]);
      expect(doc.versions.map((v) => v.version)).toEqual(['1.1.0', '1.0.0']);
    },
    60_000,
  );

  it('fails the batch on a plugin document planted for a name the registry never published', async () => {
    // Prepare: another plugin published; a document for NAME, owned by a stranger, put where it would be.
    const registry = await registryOn(stores());
    await registry.run([await registry.submit('1.0.0', registry.publisher, 'other-plugin')]);
    const stranger = await testKey('stranger');
    const planted = await json<PluginDocument>(registry.context.site, pluginDocumentKey('other-plugin'));
    await overwrite(
      registry.context.site,
      DOCUMENT,
      encoder.encode(JSON.stringify({ ...planted, name: NAME, owners: [stranger.fingerprint] })),
    );

    await expectAltered(registry, DOCUMENT, await registry.submit('1.0.0'));
  }, 60_000);

  it('fails the batch on a plugin document deleted where it is published, rather than hand its name to the next publisher', async () => {
    const registry = await publishedOn(stores());
    await registry.context.site.delete(DOCUMENT);

    await expectAltered(registry, DOCUMENT, await registry.submit('1.1.0', await testKey('stranger')));
  }, 60_000);

  it('fails the batch on a keys/revoked.json the registry never published', async () => {
    const registry = await publishedOn(stores());
    const revoked = {
      schema: 'plugindex/revoked-keys/v1',
      keys: [
        { fingerprint: registry.publisher.fingerprint, revoked: '2026-11-01T00:00:00.000Z', reason: 'x' },
      ],
    };
    await overwrite(registry.context.site, REVOKED_KEYS_KEY, encoder.encode(JSON.stringify(revoked)));

    await expectAltered(registry, REVOKED_KEYS_KEY, await registry.submit('1.1.0'));
  }, 60_000);

  it('fails the batch on a snapshot.json edited where it is published, rather than sign the digests it lists', async () => {
    // Prepare: the snapshot made to list another digest for index.json (which an edited index.json would have).
    const registry = await publishedOn(stores());
    const snapshot = await json<SnapshotDocument>(registry.context.site, SNAPSHOT_KEY);
    const forged = {
      ...snapshot,
      documents: { ...snapshot.documents, 'index.json': { sha256: sha256('forged'), size: 6 } },
    };
    await overwrite(registry.context.site, SNAPSHOT_KEY, encoder.encode(JSON.stringify(forged)));

    await expectAltered(registry, SNAPSHOT_KEY, await registry.submit('1.1.0'));
  }, 60_000);

  it('takes what a run that died before its catalog recorded it was about to publish for its own', async () => {
    // Prepare: 1.0.0 published; then the batch that publishes 1.1.0 dies once its snapshot is written, every
    // write of the catalog's meta file failing from then on (its plugin document, snapshot bins and snapshot
    // are published; the catalog records only what it was about to publish).
    const registry = await publishedOn(stores());
    const dying = diesAfterSnapshot(registry.context, (key) => key === CATALOG_META_KEY);
    const upload = await registry.submit('1.1.0');
    await expect(processSubmissions(dying, [upload])).rejects.toThrow('killed after the snapshot');
    const meta = decoder.decode((await registry.context.intake.get(CATALOG_META_KEY))?.body);
    expect(meta).toContain(`writing\t${DOCUMENT}\t`);
    // The snapshot's record is an object of its own (catalog.ts recordSnapshot), its generation first.
    const published = (await registry.context.site.get(SNAPSHOT_KEY))?.body as Uint8Array;
    expect(decoder.decode((await registry.context.intake.get(CATALOG_SNAPSHOT_RECORD_KEY))?.body)).toContain(
      `\t${sha256(published)}\n`,
    );

    // Act: the retry, then one more publish.
    const retried = await registry.run();
    const later = await registry.run([await registry.submit('1.2.0')]);

    // Assess: both accepted, and nothing recorded as about to be published is left over.
    expect(retried.outcomes.map((o) => o.status)).toEqual(['accepted']);
    expect(later.outcomes.map((o) => o.status)).toEqual(['accepted']);
    expect(decoder.decode((await registry.context.intake.get(CATALOG_META_KEY))?.body)).not.toContain(
      'writing',
    );
    const doc = await json<PluginDocument>(registry.context.site, DOCUMENT);
    expect(doc.versions.map((v) => v.version)).toEqual(['1.2.0', '1.1.0', '1.0.0']);
  }, 60_000);

  it('publishes after a rebuild that died between its snapshot and its catalog, the catalog it began from kept', async () => {
    const registry = await publishedOn(stores());
    const dying = diesAfterSnapshot(registry.context, (key) => key.startsWith('state/catalog/'));
    await expect(rebuildRegistry(dying)).rejects.toThrow('killed after the snapshot');
    // The rebuild recorded its snapshot over the meta file it began from, which still lists every bin.
    const meta = decoder.decode((await registry.context.intake.get(CATALOG_META_KEY))?.body);
    expect(meta).toMatch(/^bin\t/m);
    expect(meta).toMatch(/^rebuilding$/m);

    const result = await registry.run([await registry.submit('1.1.0')]);

    expect(result.outcomes.map((o) => o.status)).toEqual(['accepted']);
    const index = await json<{ plugins: { name: string }[] }>(registry.context.site, 'index.json');
    expect(index.plugins.map((p) => p.name)).toEqual([NAME]);
  }, 60_000);

  it('publishes on a catalog that has no record of the snapshot yet (written before this check: trusted on first use)', async () => {
    const registry = await publishedOn(stores());
    const meta = decoder.decode((await registry.context.intake.get(CATALOG_META_KEY))?.body);
    expect(meta).toMatch(/^snapshot\t/m);
    await registry.context.intake.put(
      CATALOG_META_KEY,
      encoder.encode(meta.replace(/^snapshot\t.*\n/m, '')),
      { contentType: 'text/tab-separated-values', cacheControl: CACHE_PRIVATE },
    );

    const result = await registry.run([await registry.submit('1.1.0')]);

    expect(result.outcomes.map((o) => o.status)).toEqual(['accepted']);
    const recorded = decoder.decode((await registry.context.intake.get(CATALOG_META_KEY))?.body);
    const published = (await registry.context.site.get(SNAPSHOT_KEY))?.body as Uint8Array;
    expect(recorded).toContain(`snapshot\t${sha256(published)}\t${published.byteLength}\n`);
  }, 60_000);

  it('lets a rebuild take the published documents as they are, the operator choosing to (recovery)', async () => {
    const registry = await publishedOn(stores());
    const stranger = (await testKey('stranger')).fingerprint;
    const doc = await json<PluginDocument>(registry.context.site, DOCUMENT);
    const changed = { ...doc, owners: [...doc.owners, stranger] };
    await overwrite(registry.context.site, DOCUMENT, encoder.encode(JSON.stringify(changed)));

    await rebuildRegistry(registry.context);
    const result = await registry.run([await registry.submit('1.1.0', await testKey('stranger'))]);

    expect(result.outcomes.map((o) => o.status)).toEqual(['accepted']);
    expect((await json<PluginDocument>(registry.context.site, DOCUMENT)).owners).toEqual([
      registry.publisher.fingerprint,
      stranger,
    ]);
  }, 60_000);
});

/** The catalog's meta file as the release before this one wrote it (format 6): the next run upgrades it. */
async function asFormerRelease(intake: Store): Promise<void> {
  const meta = decoder.decode((await intake.get(CATALOG_META_KEY))?.body);
  await intake.put(
    CATALOG_META_KEY,
    encoder.encode(meta.replace(/^plugindex-catalog 8\n/, 'plugindex-catalog 6\n')),
    {
      contentType: 'text/tab-separated-values',
      cacheControl: CACHE_PRIVATE,
    },
  );
}

/** The owners of each row of the published `search.json`, by name. */
async function searchOwners(site: Store): Promise<[string, readonly string[] | undefined][]> {
  const search = await json<{ plugins: { name: string; owners?: string[] }[] }>(site, 'search.json');
  return search.plugins.map((row) => [row.name, row.owners]);
}

describe.each(kinds)('the upgrade of a catalog of another format, on %s', (_, stores) => {
  it.each([
    ['a batch', (registry: Awaited<ReturnType<typeof registryOn>>, upload: string) => registry.run([upload])],
    ['a flush', (registry: Awaited<ReturnType<typeof registryOn>>) => flushIndexes(registry.context)],
    ['a refresh', (registry: Awaited<ReturnType<typeof registryOn>>) => refreshSnapshot(registry.context)],
  ] as const)(
    'run by %s, refuses a plugin document someone else edited rather than sign its owners into search.json',
    async (_by, run) => {
      // Prepare: two plugins published; the catalog left as the release before wrote it; a stranger made an
      // owner of one where it is published (whoever may write the published store can).
      const registry = await publishedOn(stores());
      await registry.run([await registry.submit('1.0.0', registry.publisher, 'other-plugin')]);
      const original = (await registry.context.site.get(DOCUMENT))?.body as Uint8Array;
      const stranger = (await testKey('stranger')).fingerprint;
      const doc = await json<PluginDocument>(registry.context.site, DOCUMENT);
      const edited = encoder.encode(JSON.stringify({ ...doc, owners: [...doc.owners, stranger] }));
      await overwrite(registry.context.site, DOCUMENT, edited);
      await asFormerRelease(registry.context.intake);
      const upload = await registry.submit('1.1.0');
      const site = await contentsOf(registry.context.site);
      forgetBins(registry.context.intake);

      // Act: the first run of this release.
      const error = await run(registry, upload).catch((e: unknown) => e);

      // Assess: refused, naming the document and both digests; nothing published changed.
      expect(error).toBeInstanceOf(TrustError);
      expect(error).toMatchObject({ code: 'PUBLISHED_DOCUMENT_ALTERED' });
      expect((error as Error).message).toContain(DOCUMENT);
      expect((error as Error).message).toContain(sha256(original));
      expect((error as Error).message).toContain(sha256(edited));
      expect(await contentsOf(registry.context.site)).toEqual(site);
      expect((await searchOwners(registry.context.site)).flat(2)).not.toContain(stranger);

      // The operator puts the document back: the upgrade runs, every row with the owners the registry gave.
      await overwrite(registry.context.site, DOCUMENT, original);
      await run(registry, upload);
      const P = registry.publisher.fingerprint;
      expect(await searchOwners(registry.context.site)).toEqual([
        [NAME, [P]],
        ['other-plugin', [P]],
      ]);
    },
    60_000,
  );

  it('reads and writes no plugin document twice, and keeps those it renders as they are', async () => {
    const registry = await publishedOn(stores());
    await registry.run([await registry.submit('1.0.0', registry.publisher, 'other-plugin')]);
    await asFormerRelease(registry.context.intake);
    const before = await contentsOf(registry.context.site);
    const reads: string[] = [];
    const puts: string[] = [];
    const site = withMethod(
      withMethod(registry.context.site, 'get', (get) => (key, options) => {
        reads.push(key);
        return get(key, options);
      }),
      'put',
      (put) => (key, body, options) => {
        puts.push(key);
        return put(key, body, options);
      },
    );
    forgetBins(registry.context.intake);

    await flushIndexes({ ...registry.context, site });

    const documents = [DOCUMENT, pluginDocumentKey('other-plugin')];
    expect(reads.filter((key) => documents.includes(key)).sort()).toEqual([...documents].sort());
    expect(puts.filter((key) => key.startsWith('plugins/'))).toEqual([]);
    const after = new Map(await contentsOf(registry.context.site));
    for (const [key, etag] of before)
      if (key.startsWith('plugins/')) expect([key, after.get(key)]).toEqual([key, etag]);
  }, 60_000);

  it('refuses a snapshot.json not signed by the registry, and takes what plugindex rebuild is told to', async () => {
    const registry = await publishedOn(stores());
    const published = await json<SnapshotDocument>(registry.context.site, SNAPSHOT_KEY);
    const stranger = (await testKey('stranger')).fingerprint;
    const doc = await json<PluginDocument>(registry.context.site, DOCUMENT);
    const edited = encoder.encode(JSON.stringify({ ...doc, owners: [...doc.owners, stranger] }));
    await overwrite(registry.context.site, DOCUMENT, edited);
    // Its bin and the snapshot rewritten to list the edited document, as its editor would: unsigned.
    const bin = Object.keys(published.documents).find((k) => k.startsWith('snapshot/bins/')) as string;
    const binDoc = await json<{ documents: Record<string, { sha256: string; size: number }> }>(
      registry.context.site,
      bin,
    );
    if (binDoc.documents[DOCUMENT])
      binDoc.documents[DOCUMENT] = { sha256: sha256(edited), size: edited.byteLength };
    const binBody = encoder.encode(JSON.stringify(binDoc));
    await overwrite(registry.context.site, bin, binBody);
    const snapshot = {
      ...published,
      documents: { ...published.documents, [bin]: { sha256: sha256(binBody), size: binBody.byteLength } },
    };
    await overwrite(registry.context.site, SNAPSHOT_KEY, encoder.encode(JSON.stringify(snapshot)));
    await asFormerRelease(registry.context.intake);
    forgetBins(registry.context.intake);

    const error = await flushIndexes(registry.context).catch((e: unknown) => e);

    expect(error).toMatchObject({ code: 'PUBLISHED_DOCUMENT_ALTERED' });
    expect((error as Error).message).toContain(`${SNAPSHOT_KEY} (sha256 `);
    expect((error as Error).message).toContain("not signed by this registry's key");
    // The operator's rebuild takes the published documents as they are, on their word.
    await rebuildRegistry(registry.context);
    expect((await json<PluginDocument>(registry.context.site, DOCUMENT)).owners).toContain(stranger);
  }, 60_000);
});

describe.each(kinds)('the upgrade after a batch of the release before died, on %s', (_, stores) => {
  it.each([
    ['a batch, its snapshot written, not its signature', signatureKey(SNAPSHOT_KEY), true],
    ['a refresh, its signature written, not its snapshot', SNAPSHOT_KEY, false],
  ] as const)(
    'takes the snapshot the run recorded or the one its catalog records: %s',
    async (_what, failing, batch) => {
      // Prepare: 1.0.0 published; a run dies at its commit, which writes the snapshot and its signature side
      // by side, one of them not; the catalog left as the release before wrote it. (A batch that dies before
      // its snapshot leaves bins no record names: refused, naming both causes, below.)
      const registry = await publishedOn(stores());
      const dying: PipelineContext = {
        ...registry.context,
        site: withMethod(registry.context.site, 'put', (put) => async (key, body, options) => {
          if (key === failing) throw new Error('killed at the commit');
          return put(key, body, options);
        }),
      };
      forgetBins(registry.context.intake);
      const upload = await registry.submit('1.1.0');
      await expect(batch ? processSubmissions(dying, [upload]) : refreshSnapshot(dying)).rejects.toThrow(
        'killed at the commit',
      );
      await asFormerRelease(registry.context.intake);
      forgetBins(registry.context.intake);

      // Act: the first run of this release, on a registry no one else wrote to.
      await flushIndexes(registry.context);

      // Assess: upgraded, what the run that died published kept, the snapshot and its signature one again.
      const doc = await json<PluginDocument>(registry.context.site, DOCUMENT);
      expect(doc.versions.map((v) => v.version)).toEqual(batch ? ['1.1.0', '1.0.0'] : ['1.0.0']);
      const snapshot = (await registry.context.site.get(SNAPSHOT_KEY))?.body as Uint8Array;
      const signature = decoder.decode((await registry.context.site.get(signatureKey(SNAPSHOT_KEY)))?.body);
      const { key } = await readPublicKey(registry.context.signer.publicKey);
      expect((await verifyDetachedSignature(snapshot, signature, [key])).ok).toBe(true);
    },
    60_000,
  );

  it('refuses the bins a batch wrote before it died short of its snapshot, naming both causes and the rebuild', async () => {
    // Prepare: 1.0.0 published; a batch of 1.1.0 dies after writing its snapshot bins, before it records and
    // writes its snapshot (snapshot.json and its signature as the generation before); the catalog left as
    // the release before wrote it. No one else wrote to the published store.
    const registry = await publishedOn(stores());
    const dying: PipelineContext = {
      ...registry.context,
      intake: withMethod(registry.context.intake, 'put', (put) => async (key, body, options) => {
        if (key === CATALOG_SNAPSHOT_RECORD_KEY) throw new Error('killed at the commit');
        return put(key, body, options);
      }),
    };
    forgetBins(registry.context.intake);
    const snapshot = (await registry.context.site.get(SNAPSHOT_KEY))?.body;
    await expect(processSubmissions(dying, [await registry.submit('1.1.0')])).rejects.toThrow(
      'killed at the commit',
    );
    expect((await registry.context.site.get(SNAPSHOT_KEY))?.body).toEqual(snapshot);
    await asFormerRelease(registry.context.intake);
    forgetBins(registry.context.intake);
    const bin = `snapshot/bins/${binOf(NAME)}.json`;

    // Act: the first run of this release.
    const error = await flushIndexes(registry.context).catch((e: unknown) => e);

    // Assess: refused, as before, but saying what the bin is: one listing the document the run that died
    // recorded it was about to publish, so either that, or someone else's; and what mends it (before: only
    // "someone else wrote it", the operator told to put back a bin the registry wrote itself).
    expect(error).toBeInstanceOf(TrustError);
    expect(error).toMatchObject({ code: 'PUBLISHED_DOCUMENT_ALTERED' });
    const message = (error as Error).message;
    expect(message).toContain(bin);
    expect(message).toContain(DOCUMENT);
    expect(message).toContain('died after writing its snapshot bins, before snapshot.json');
    expect(message).toContain('or someone else wrote it');
    expect(message).toContain('plugindex rebuild');
    // The recovery it names: the operator's rebuild, then runs of this release as before.
    await rebuildRegistry(registry.context);
    forgetBins(registry.context.intake);
    await flushIndexes(registry.context);
    const doc = await json<PluginDocument>(registry.context.site, DOCUMENT);
    expect(doc.versions.map((v) => v.version)).toEqual(['1.1.0', '1.0.0']);
  }, 60_000);

  it("refuses a bin someone else wrote as someone else's, naming no run that died", async () => {
    const registry = await publishedOn(stores());
    const bin = `snapshot/bins/${binOf(NAME)}.json`;
    const binDoc = await json<{ documents: Record<string, { sha256: string; size: number }> }>(
      registry.context.site,
      bin,
    );
    await overwrite(registry.context.site, bin, encoder.encode(JSON.stringify({ ...binDoc, documents: {} })));
    await asFormerRelease(registry.context.intake);
    forgetBins(registry.context.intake);

    const error = await flushIndexes(registry.context).catch((e: unknown) => e);

    expect(error).toMatchObject({ code: 'PUBLISHED_DOCUMENT_ALTERED' });
    expect((error as Error).message).toContain(`${bin} is not what this registry published there`);
    expect((error as Error).message).not.toContain('died');
  }, 60_000);

  it('refuses the published store put back whole as it was a generation before, signed as it was', async () => {
    const registry = await publishedOn(stores());
    const site = registry.context.site;
    const before = new Map<string, Uint8Array>();
    for (const o of await listAll(site, '')) before.set(o.key, (await site.get(o.key))?.body as Uint8Array);
    await registry.run([await registry.submit('1.1.0')]);
    for (const o of await listAll(site, '')) if (!before.has(o.key)) await site.delete(o.key);
    for (const [key, body] of before) await overwrite(site, key, body);
    await asFormerRelease(registry.context.intake);
    forgetBins(registry.context.intake);

    const error = await flushIndexes(registry.context).catch((e: unknown) => e);

    expect(error).toMatchObject({ code: 'PUBLISHED_DOCUMENT_ALTERED' });
    expect((error as Error).message).toContain(`${SNAPSHOT_KEY} (sha256 `);
    expect((error as Error).message).toMatch(/generation 1, its catalog's 2/);
  }, 60_000);
});
