/**
 * The registry writing a void (config `voidRefusedEntries`, pipeline/index.ts `voidRefusedPlugin`): a publish
 * logged, then its plugin document refused for good by the store (a folder where its page goes, on the
 * filesystem store), is voided by the registry's key within the batch, its upload rejected
 * LOGGED_ENTRY_VOIDED, and the rest of the batch and later batches publish. Served over a socket by the local
 * server, so `verify --url` and a client read what the pipeline published. Without the setting, the known gap
 * stands (refused-recovery.test.ts): every batch fails LOGGED_PUBLISH_FAILED.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { forgetBins } from '../../../index-builder/catalog.ts';
import type { RegistryConfig } from '../../../index-builder/config.ts';
import { StoreError, TrustError } from '../../../index-builder/errors.ts';
import { submissionIdFromBytes } from '../../../index-builder/layout.ts';
import { LookAlikeIndex } from '../../../index-builder/look-alike.ts';
import { OciRepositoryIndex } from '../../../index-builder/oci-repositories.ts';
import { HeldDocuments } from '../../../index-builder/pipeline/held-documents.ts';
import { type BatchStep, flushIndexes, processSubmissions } from '../../../index-builder/pipeline/index.ts';
import { readIntentRecords } from '../../../index-builder/pipeline/log-writer.ts';
import { listAll, type Store } from '../../../index-builder/store.ts';
import { boundDocument, submitAction } from '../../support/actions.ts';
import { httpClient } from '../../support/client.ts';
import { makeBundle, makeRegistry, ociBundle, testKey } from '../../support/fixtures.ts';
import { signLogHead } from '../../support/lifecycle.ts';
import {
  diesOnceLogged,
  installable,
  laterRunInstalls,
  pageMadeAFolder,
  type ServedOnDisk,
  clientSawFirst as sawFirst,
  servedOnDisk as servedRegistry,
} from '../../support/served-registry.ts';

const REASON = "the registry failed writing the plugin's documents for good (StoreError STORE_REFUSED)";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A registry on two filesystem stores, its site served over a socket, opted in to voids unless told. */
const servedOnDisk = (config: Partial<RegistryConfig> = { voidRefusedEntries: true }) =>
  servedRegistry('plugindex-void-writer-', cleanups, config);

type Served = ServedOnDisk;

const outcomesOf = (result: Awaited<ReturnType<typeof processSubmissions>>) =>
  result.outcomes.map((o) => [o.plugin, o.version, o.status, o.seq, o.problems.map((p) => p.code)]);

/** A folder where demo-plugin's page goes (EISDIR: STORE_REFUSED), which nothing checks before the log. */
async function pageFolder(registry: Served): Promise<void> {
  await pageMadeAFolder(registry.siteRoot);
}

/**
 * A folder where demo-plugin's page goes, then demo-plugin and other-plugin uploaded: the publish the store
 * refuses after its entry is logged, and one beside it.
 */
async function stuckBesideOther(registry: Served) {
  await pageFolder(registry);
  const stuck = await registry.submit(await makeBundle());
  const other = await registry.submit(await installable('other-plugin'));
  return { stuck, other };
}

/** demo-plugin@1.0.0 published by a batch of its own. */
async function demoPublished(registry: Served): Promise<void> {
  await registry.batch([(await registry.submit(await installable('demo-plugin'))).key]);
}

/** first-plugin published; a client installs it, remembering the log of one entry. */
const clientSawFirst = (registry: Served) => sawFirst(registry, cleanups);

describe('when the store refuses a new plugin document for good, the registry opted in to voids', () => {
  it('voids its entry in the batch, rejects its upload, and publishes the rest for clients that saw the log', async () => {
    // Prepare: first-plugin published, a client's install of it. A folder where demo-plugin's page goes;
    // demo-plugin and other-plugin uploaded, one batch.
    const registry = await servedOnDisk();
    const saw = await clientSawFirst(registry);
    const { stuck, other } = await stuckBesideOther(registry);

    // Act
    const result = await registry.batch();

    // Assert: demo-plugin logged (entry 1), other-plugin (entry 2), the void of entry 1 (entry 3), signed by
    // the registry's key; demo-plugin rejected LOGGED_ENTRY_VOIDED naming entry 1 (before: the batch failed
    // LOGGED_PUBLISH_FAILED, every upload waiting), other-plugin published.
    expect(outcomesOf(result)).toEqual([
      ['demo-plugin', '1.0.0', 'rejected', undefined, ['LOGGED_ENTRY_VOIDED']],
      ['other-plugin', '1.0.0', 'accepted', 2, []],
    ]);
    expect((await registry.outcome(stuck.id))?.problems[0]?.message).toContain('(entry 1)');
    expect(await registry.incoming()).toEqual([]);
    expect(await registry.outcome(other.id)).toMatchObject({ status: 'accepted', seq: 2 });
    // The operator is told the store's refusal, under the upload's id.
    expect(registry.told).toEqual([
      expect.objectContaining({ id: stuck.id, code: 'LOGGED_ENTRY_VOIDED', error: expect.any(StoreError) }),
    ]);
    expect((await registry.entries()).map((e) => [e.seq, e.type, e.plugin, e.detail?.entry])).toEqual([
      [0, 'publish', 'first-plugin', undefined],
      [1, 'publish', 'demo-plugin', undefined],
      [2, 'publish', 'other-plugin', undefined],
      [3, 'void', 'demo-plugin', '1'],
    ]);
    // Nothing of demo-plugin is left published: its document and its version's files.
    expect(await registry.context.site.head('plugins/demo-plugin/index.json')).toBeUndefined();
    expect(await registry.context.site.head('plugins/demo-plugin/1.0.0/manifest.json')).toBeUndefined();
    const report = await registry.verify();
    expect(report).toMatchObject({ plugins: 2, log: { length: 4 } });
    expect(report.voided).toEqual([
      { seq: 1, type: 'publish', plugin: 'demo-plugin', version: '1.0.0', by: 3, reason: REASON },
    ]);
    // Another run of the client (the log of one entry it saw) updates and installs.
    const { updated, installed } = await laterRunInstalls(saw, cleanups, 'other-plugin');
    expect(updated?.error).toBeUndefined();
    expect(updated).toMatchObject({ report: { changed: true } });
    expect(installed.items.map((item) => [item.name, item.version])).toEqual([['other-plugin', '1.0.0']]);

    // A later batch publishes; once the folder is taken away, demo-plugin submitted again is judged anew.
    await rm(path.join(registry.siteRoot, 'plugins/demo-plugin/index.html'), { recursive: true });
    const third = await registry.submit(await installable('third-plugin'));
    const again = await registry.submit(await makeBundle());
    expect(outcomesOf(await registry.batch([third.key, again.key]))).toEqual([
      ['third-plugin', '1.0.0', 'accepted', 4, []],
      ['demo-plugin', '1.0.0', 'accepted', 5, []],
    ]);
    expect(await registry.verify()).toMatchObject({ plugins: 4, log: { length: 6 } });
  }, 90_000);
});

describe("when the store refuses a published plugin's new document for good, the registry opted in to voids", () => {
  it('puts its published document back, voids the entry, and the plugin stays as it was', async () => {
    // Prepare: demo-plugin@1.0.0 published; then a folder where its page goes, and 2.0.0 uploaded.
    const registry = await servedOnDisk();
    await demoPublished(registry);
    const published = await registry.context.site.get('plugins/demo-plugin/index.json');
    await pageFolder(registry);
    const stuck = await registry.submit(await installable('demo-plugin', '2.0.0'));

    // Act
    const result = await registry.batch();

    // Assert: 2.0.0 voided (its document, written beside the refused page, put back as published).
    expect(outcomesOf(result)).toEqual([
      ['demo-plugin', '2.0.0', 'rejected', undefined, ['LOGGED_ENTRY_VOIDED']],
    ]);
    expect(await registry.outcome(stuck.id)).toMatchObject({ status: 'rejected' });
    expect((await registry.context.site.get('plugins/demo-plugin/index.json'))?.body).toEqual(
      published?.body,
    );
    const report = await registry.verify();
    expect(report).toMatchObject({ plugins: 1, log: { length: 3 } });
    expect(report.voided).toEqual([
      { seq: 1, type: 'publish', plugin: 'demo-plugin', version: '2.0.0', by: 2, reason: REASON },
    ]);
  }, 60_000);
});

describe('when a run that died logged a publish whose plugin document the store then refuses for good', () => {
  it('voids the entry the dead run appended, and its upload is rejected', async () => {
    // Prepare: demo-plugin@1.0.0 published (entry 0); a run logs 2.0.0 (entry 1) and dies; then a folder
    // where the plugin's page goes.
    const registry = await servedOnDisk();
    await demoPublished(registry);
    const stuck = await registry.submit(await installable('demo-plugin', '2.0.0'));
    await diesOnceLogged(registry.context, [stuck.key]);
    await pageFolder(registry);

    // Act
    const result = await registry.batch();

    // Assert: the retry resumes the logged publish, meets the refusal, and voids entry 1 (entry 2).
    expect(outcomesOf(result)).toEqual([
      ['demo-plugin', '2.0.0', 'rejected', undefined, ['LOGGED_ENTRY_VOIDED']],
    ]);
    expect(await registry.incoming()).toEqual([]);
    expect((await registry.verify()).voided).toEqual([
      { seq: 1, type: 'publish', plugin: 'demo-plugin', version: '2.0.0', by: 2, reason: REASON },
    ]);
  }, 60_000);
});

describe('when a batch that voided a publish dies before recording its outcome', () => {
  it('rejects the upload by the void its retry finds, logging it no more', async () => {
    // Prepare: the batch voids demo-plugin's publish (entry 0, void entry 2) and dies once it has committed.
    const registry = await servedOnDisk();
    const { stuck } = await stuckBesideOther(registry);
    const onStep = (step: BatchStep): void => {
      if (step === 'committed') throw new Error('killed after the commit');
    };
    await expect(registry.batch(undefined, onStep)).rejects.toThrow('killed after the commit');
    expect(await registry.incoming()).toHaveLength(2);

    // Act
    const result = await registry.batch();

    // Assert: its rejection recorded from the void (before the intent, it was logged again, entry 3, and voided
    // again, at every retry); the log as the dead run left it.
    expect(outcomesOf(result)).toEqual([
      ['demo-plugin', '1.0.0', 'rejected', undefined, ['LOGGED_ENTRY_VOIDED']],
      ['other-plugin', '1.0.0', 'accepted', 1, []],
    ]);
    expect(await registry.outcome(stuck.id)).toMatchObject({ status: 'rejected' });
    expect(await registry.incoming()).toEqual([]);
    expect((await registry.entries()).map((e) => e.type)).toEqual(['publish', 'publish', 'void']);
    expect((await registry.verify()).voided).toHaveLength(1);
  }, 60_000);
});

describe('when the store refuses a plugin document for good and the registry did not opt in to voids', () => {
  it('fails the batch LOGGED_PUBLISH_FAILED as before, appending no void', async () => {
    const registry = await servedOnDisk({});
    const { stuck, other } = await stuckBesideOther(registry);

    await expect(registry.batch()).rejects.toMatchObject({ code: 'LOGGED_PUBLISH_FAILED' });

    expect(await registry.incoming()).toEqual([stuck.key, other.key].sort());
    expect(await registry.outcome(other.id)).toBeUndefined();
    expect((await registry.entries()).map((e) => e.type)).toEqual(['publish', 'publish']);
    expect(registry.told).toEqual([]);
  }, 60_000);
});

describe('the registry config', () => {
  it('refuses a voidRefusedEntries that is not a boolean', async () => {
    await expect(makeRegistry({ voidRefusedEntries: 'yes' as unknown as true })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringContaining('/voidRefusedEntries'),
    });
  });
});

/** `site` with its puts run through `put` first (each call of the store's own methods bound to it). */
function puttingThrough(site: Store, put: Store['put']): Store {
  return {
    get: (key, options) => site.get(key, options),
    head: (key) => site.head(key),
    getStream: (key, options) => site.getStream(key, options),
    put,
    putStream: (key, body, options) => site.putStream(key, body, options),
    delete: (key, options) => site.delete(key, options),
    list: (prefix) => site.list(prefix),
    ...(site.move ? { move: site.move.bind(site) } : {}),
    ...(site.listFolders ? { listFolders: site.listFolders.bind(site) } : {}),
  };
}

describe('when a snapshot counting the logged publish is signed while the batch writes its plugin documents', () => {
  it('voids nothing: clients that saw that snapshot would refuse the log (LOG_VOID_OF_SEEN)', async () => {
    // Prepare: demo-plugin@1.0.0 published, a folder where its page goes, 2.0.0 uploaded. A refresh of a
    // release before this one (signLogHead) run beside the batch (a writer outside the queue, as writeSnapshot's ifMatch
    // allows for) signs the snapshot over the log once the batch has logged 2.0.0, just before its document
    // is written (this release's leaves the entry uncounted: stuck-entries.test.ts).
    const registry = await servedOnDisk();
    await demoPublished(registry);
    await pageFolder(registry);
    const stuck = await registry.submit(await installable('demo-plugin', '2.0.0'));
    const site = registry.context.site;
    let refreshed = false;
    const racing = puttingThrough(site, async (key, body, options) => {
      if (key === 'plugins/demo-plugin/index.json' && !refreshed) {
        refreshed = true;
        await signLogHead(registry.context);
      }
      return site.put(key, body, options);
    });

    // Act
    const run = processSubmissions({ ...registry.context, site: racing }, [stuck.key]);

    // Assert: the published snapshot counts entry 1, so no void of it is appended (before, the void was
    // written from the snapshot read when the batch opened its log); the batch fails as without the setting.
    const failure = await run.then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refreshed).toBe(true);
    const snapshot = JSON.parse(new TextDecoder().decode((await site.get('snapshot.json'))?.body));
    expect(snapshot.log.length).toBe(2);
    expect((await registry.entries()).map((e) => e.type)).toEqual(['publish', 'publish']);
    expect(failure).toMatchObject({ code: 'LOGGED_PUBLISH_FAILED' });
  }, 60_000);
});

const WAYS = [
  ['in one process per batch', {}],
  ['by a long-running process holding the index documents', { held: true }],
  ['with the index documents deferred, then flushed', { defer: true }],
] as const;

describe.each(WAYS)("when a published plugin's new version is voided %s", (_, way) => {
  it('leaves no index document, bin or search row naming the voided version', async () => {
    // Prepare: demo-plugin@1.0.0 published; a folder where its page goes; 2.0.0 and other-plugin uploaded.
    const registry = await servedOnDisk();
    const held = 'held' in way ? new HeldDocuments() : undefined;
    const context = {
      ...registry.context,
      ...(held ? { held } : {}),
      ...('defer' in way ? { deferIndexes: true } : {}),
    };
    const batch = async (keys?: string[]) => {
      try {
        return await processSubmissions(context, keys);
      } finally {
        if (!held) forgetBins(context.intake);
      }
    };
    await batch([(await registry.submit(await installable('demo-plugin'))).key]);
    await pageFolder(registry);
    await registry.submit(await installable('demo-plugin', '2.0.0'));
    await registry.submit(await installable('other-plugin'));

    // Act
    const result = await batch();
    if ('defer' in way) await flushIndexes(registry.context);

    // Assert: every registry-wide document the batch wrote names 1.0.0 only (other-plugin is 1.0.0 too).
    expect(outcomesOf(result).map(([, version, status]) => [version, status])).toEqual([
      ['2.0.0', 'rejected'],
      ['1.0.0', 'accepted'],
    ]);
    const keys = (await listAll(registry.context.site, '')).map((o) => o.key);
    const documents = keys.filter(
      (key) =>
        /^(index\.(json|yaml)|search\.json|falcoctl\/index\.yaml|snapshot\/.*|home-search\.json)$/.test(
          key,
        ) || key.endsWith('.html'),
    );
    expect(documents.length).toBeGreaterThan(4);
    // Written by this batch (or its flush): other-plugin is in them.
    const index = await registry.context.site.get('index.json');
    expect(new TextDecoder().decode(index?.body)).toContain('other-plugin');
    for (const key of documents) {
      const text = new TextDecoder().decode((await registry.context.site.get(key))?.body);
      expect([key, text.includes('2.0.0')]).toEqual([key, false]);
    }
    expect((await registry.verify()).voided).toHaveLength(1);
  }, 60_000);
});

describe('when a new plugin is voided with the index documents deferred', () => {
  it('flushes them without it, and the registry verifies', async () => {
    const registry = await servedOnDisk();
    const context = { ...registry.context, deferIndexes: true };
    await processSubmissions(context, [(await registry.submit(await installable('first-plugin'))).key]);
    forgetBins(context.intake);
    await pageFolder(registry);
    await registry.submit(await makeBundle());
    await registry.submit(await installable('other-plugin'));

    // Act
    const result = await processSubmissions(context);
    forgetBins(context.intake);
    await flushIndexes(registry.context);

    // Assert
    expect(outcomesOf(result).map(([name, , status]) => [name, status])).toEqual([
      ['demo-plugin', 'rejected'],
      ['other-plugin', 'accepted'],
    ]);
    const search = new TextDecoder().decode((await registry.context.site.get('search.json'))?.body);
    expect([search.includes('other-plugin'), search.includes('demo-plugin')]).toEqual([true, false]);
    expect(await registry.verify()).toMatchObject({ plugins: 2, log: { length: 4 } });
  }, 60_000);
});

describe('when a batch dies after appending its void, before its commit', () => {
  it('the retry publishes the rest once, rejects the voided upload, and logs nothing again', async () => {
    // Prepare: a client saw first-plugin (entry 0). A folder where demo-plugin's page goes; demo-plugin and
    // other-plugin uploaded; the batch dies at the first site write after its void is in the log.
    const registry = await servedOnDisk();
    const { home } = await clientSawFirst(registry);
    const { stuck, other } = await stuckBesideOther(registry);
    const site = registry.context.site;
    const dying = puttingThrough(site, async (key, body, options) => {
      const voided = (await registry.entries()).some((e) => e.type === 'void');
      if (voided && !key.startsWith('log/')) throw new Error('killed after the void');
      return site.put(key, body, options);
    });
    await expect(
      processSubmissions({ ...registry.context, site: dying }, [stuck.key, other.key]),
    ).rejects.toThrow('killed after the void');
    forgetBins(registry.context.intake);
    expect((await registry.entries()).map((e) => e.type)).toEqual(['publish', 'publish', 'publish', 'void']);

    // Act
    const result = await registry.batch();

    // Assert
    expect(outcomesOf(result)).toEqual([
      ['demo-plugin', '1.0.0', 'rejected', undefined, ['LOGGED_ENTRY_VOIDED']],
      ['other-plugin', '1.0.0', 'accepted', 2, []],
    ]);
    expect(await registry.incoming()).toEqual([]);
    expect((await registry.entries()).map((e) => e.type)).toEqual(['publish', 'publish', 'publish', 'void']);
    expect(await registry.verify()).toMatchObject({ plugins: 2, log: { length: 4 } });
    const later = httpClient(home);
    cleanups.push(() => later.close());
    const [updated] = await later.updateRegistries(['main']);
    expect(updated?.error).toBeUndefined();
  }, 90_000);
});

describe('when snapshot.json is put back to an older one over a snapshot counting a stuck publish', () => {
  it('voids nothing: the snapshot the registry committed counts the entry, whatever snapshot.json says', async () => {
    // Prepare: first-plugin published (entry 0, snapshot A). A run logs demo-plugin (entry 1) and dies; a
    // refresh of a release before this one (signLogHead) signs snapshot B over it (log of 2). Someone who may write the
    // site, holding no key, puts A's bytes back as snapshot.json; and a folder stands where demo-plugin's
    // page goes.
    const registry = await servedOnDisk();
    await registry.batch([(await registry.submit(await installable('first-plugin'))).key]);
    const older = await registry.context.site.get('snapshot.json');
    const stuck = await registry.submit(await makeBundle());
    await diesOnceLogged(registry.context, [stuck.key]);
    await signLogHead(registry.context);
    await registry.context.site.put('snapshot.json', older?.body as Uint8Array, {
      contentType: 'application/json',
      cacheControl: 'no-cache',
    });
    await pageFolder(registry);

    // Act
    const failure = await registry.batch([stuck.key]).then(
      () => undefined,
      (error: unknown) => error,
    );

    // Assert: no void of entry 1, which snapshot B counted (before, the one planted was believed, the void
    // appended, and every client that read B refused the registry for good: LOG_VOID_OF_SEEN).
    expect((await registry.entries()).map((e) => e.type)).toEqual(['publish', 'publish']);
    // The batch refuses the snapshot.json it did not publish, before it judges anything.
    expect(failure).toBeInstanceOf(TrustError);
    expect(failure).toMatchObject({ code: 'PUBLISHED_DOCUMENT_ALTERED' });
  }, 60_000);
});

describe("when a batch voids a dead run's publish whose upload it did not take", () => {
  it('the batch that meets that upload rejects it by the void, logging it no more', async () => {
    // Prepare: a run logs demo-plugin (entry 0) and dies; a folder where its page goes. A batch of
    // other-plugin alone (the local server publishes an upload at once) finishes demo-plugin from the log,
    // meets the refusal and voids entry 0; demo-plugin's upload is still in incoming/.
    const registry = await servedOnDisk();
    const stuck = await registry.submit(await makeBundle());
    await diesOnceLogged(registry.context, [stuck.key]);
    await pageFolder(registry);
    const other = await registry.submit(await installable('other-plugin'));
    expect(outcomesOf(await registry.batch([other.key]))).toEqual([
      ['other-plugin', '1.0.0', 'accepted', 1, []],
      ['demo-plugin', '1.0.0', 'rejected', undefined, ['LOGGED_ENTRY_VOIDED']],
    ]);
    expect(await registry.incoming()).toEqual([stuck.key]);

    // Act
    const result = await registry.batch();

    // Assert: rejected by that void (before, its intent was dropped for the outcome recorded from the log,
    // and the upload, judged anew, was logged again at entry 3 and voided again at entry 4).
    expect(outcomesOf(result)).toEqual([
      ['demo-plugin', '1.0.0', 'rejected', undefined, ['LOGGED_ENTRY_VOIDED']],
    ]);
    expect((await registry.entries()).map((e) => e.type)).toEqual(['publish', 'publish', 'void']);
    expect(await registry.incoming()).toEqual([]);
    expect(await listAll(registry.context.intake, 'state/log-intents/')).toEqual([]);
    expect((await registry.verify()).voided).toHaveLength(1);
  }, 60_000);
});

/**
 * demoplugin published by `publisher`, who then adds `heir` as an owner. demo-plugin (its look-alike,
 * allowed: `publisher` owns demoplugin) uploaded, keeping its artifact at `repository`; a folder stands where
 * its page goes. Different hands: the batch flags the pair on both documents.
 */
async function alikeOfPublished(registry: Served, repository: string) {
  const publisher = await testKey('publisher');
  const heir = await testKey('heir');
  await registry.batch([(await registry.submit(await installable('demoplugin'))).key]);
  const added = await submitAction(
    registry.context.intake,
    { action: 'owners-add', plugin: 'demoplugin', key: heir.publicKey },
    publisher,
    { registry: registry.url },
  );
  const owners = await registry.batch([added.key]);
  expect(outcomesOf(owners).map(([, , status, , codes]) => [status, codes])).toEqual([['accepted', []]]);
  await pageFolder(registry);
  const bundle = await ociBundle('demo-plugin', `${repository}:1.0.0`, {
    sha: 'ab'.repeat(32),
    size: 42,
    signer: publisher,
  });
  return registry.submit(bundle);
}

describe("when a batch voiding a look-alike's first publish dies once the other document is written again", () => {
  it("the retry takes that document for the registry's own, and finishes", async () => {
    // Prepare: demoplugin@1.1.0 beside demo-plugin (alikeOfPublished): the batch voids demo-plugin and dies
    // just after it writes demoplugin's document without it, 1.1.0 in it (bytes no pass wrote before).
    const registry = await servedOnDisk();
    const stuck = await alikeOfPublished(registry, 'registry.example/acme/demo-plugin');
    const later = await registry.submit(await installable('demoplugin', '1.1.0'));
    const site = registry.context.site;
    const dying = puttingThrough(site, async (key, body, options) => {
      const voided = (await registry.entries()).some((e) => e.type === 'void');
      const put = await site.put(key, body, options);
      if (voided && key === 'plugins/demoplugin/index.json') throw new Error('killed after the document');
      return put;
    });
    await expect(
      processSubmissions({ ...registry.context, site: dying }, [stuck.key, later.key]),
    ).rejects.toThrow('killed after the document');
    forgetBins(registry.context.intake);

    // Act
    const result = await registry.batch();

    // Assert: the document it wrote was recorded first, so the retry knows it (before: a digest nothing
    // recorded, PUBLISHED_DOCUMENT_ALTERED at every batch until a rebuild).
    expect(outcomesOf(result)).toEqual([
      ['demo-plugin', '1.0.0', 'rejected', undefined, ['LOGGED_ENTRY_VOIDED']],
      ['demoplugin', '1.1.0', 'accepted', 3, []],
    ]);
    const publicKey = registry.base.registryKey.publicKey;
    const doc = await boundDocument(site, publicKey, 'demoplugin');
    expect([doc.look_alikes, doc.versions.map((v) => v.version)]).toEqual([undefined, ['1.1.0', '1.0.0']]);
    expect(await registry.verify()).toMatchObject({ plugins: 1 });
  }, 60_000);
});

describe("when a plugin's first publish is voided, its name a look-alike of another plugin's", () => {
  it('takes its name out of the look-alike and OCI repository indexes and off the other document', async () => {
    // Prepare: see alikeOfPublished.
    const registry = await servedOnDisk();
    const repository = 'registry.example/acme/demo-plugin';
    const stuck = await alikeOfPublished(registry, repository);

    // Act
    const result = await registry.batch([stuck.key]);

    // Assert: demo-plugin voided; as if it was never published, demoplugin's signed document lists no
    // look-alike (before: demo-plugin, a plugin that never was, until a rebuild), and neither index files
    // demo-plugin (before: both did, until a rebuild).
    expect(outcomesOf(result)).toEqual([
      ['demo-plugin', '1.0.0', 'rejected', undefined, ['LOGGED_ENTRY_VOIDED']],
    ]);
    const publicKey = registry.base.registryKey.publicKey;
    expect((await boundDocument(registry.context.site, publicKey, 'demoplugin')).look_alikes).toBeUndefined();
    const { intake, site } = registry.context;
    const page = new TextDecoder().decode((await site.get('plugins/demoplugin/index.html'))?.body);
    expect(page).not.toContain('looks like');
    const search = new TextDecoder().decode((await site.get('search.json'))?.body);
    expect([search.includes('demoplugin'), search.includes('demo-plugin')]).toEqual([true, false]);
    forgetBins(intake);
    expect(await new LookAlikeIndex(intake, site).filedAlike('demoplugin')).toEqual([]);
    expect(await new OciRepositoryIndex(intake, site).filed(repository)).toEqual([]);
    expect(await registry.verify()).toMatchObject({ plugins: 1 });
  }, 60_000);
});

// A plain name's id holds the key's name; another's a hash of the key too (layout.ts `submissionIdFromDigest`).
const UPLOAD_KEYS = [
  ['a plain name', undefined],
  ['a name in a folder', 'incoming/team-a/demo.tar.gz'],
] as const;

describe.each(UPLOAD_KEYS)(
  "when the upload (%s) of a dead run's publish a batch voided from the log never comes",
  (_, at) => {
    it("keeps the void's intent while the upload is in incoming/, and clears it once it is gone", async () => {
      // Prepare: a run logs demo-plugin (entry 0) and dies; a folder where its page goes. A batch of
      // other-plugin alone finishes demo-plugin from the log and voids entry 0 (entry 2); demo-plugin's upload
      // is still in incoming/, so its void's intent is kept for the batch that meets it.
      const registry = await servedOnDisk();
      const bundle = await makeBundle();
      const stuck = at ? { key: at, id: submissionIdFromBytes(at, bundle) } : await registry.submit(bundle);
      if (at)
        await registry.context.intake.put(at, bundle, {
          contentType: 'application/gzip',
          cacheControl: 'no-store',
        });
      await diesOnceLogged(registry.context, [stuck.key]);
      await pageFolder(registry);
      const other = await registry.submit(await installable('other-plugin'));
      await registry.batch([other.key]);
      const intents = async () => (await listAll(registry.context.intake, 'state/log-intents/')).length;
      expect(await intents()).toBe(1);
      const third = await registry.submit(await installable('third-plugin'));
      await registry.batch([third.key]);
      expect(await intents()).toBe(1);

      // Act: the upload is deleted (by its submitter, or a lifecycle rule); a batch of another plugin.
      await registry.context.intake.delete(stuck.key);
      const fourth = await registry.submit(await installable('fourth-plugin'));
      const result = await registry.batch([fourth.key]);

      // Assert: no upload in incoming/ can be the one it names, so it is cleared (before: kept for good, read
      // by every batch's listing).
      expect(outcomesOf(result)).toEqual([['fourth-plugin', '1.0.0', 'accepted', 4, []]]);
      expect(await intents()).toBe(0);
      expect((await registry.verify()).voided).toHaveLength(1);
    }, 60_000);
  },
);

describe("when the document the store refuses is another plugin's, changed by a first publish's look-alike flag", () => {
  it('voids nothing: the batch fails LOGGED_PUBLISH_FAILED as without the setting', async () => {
    // Prepare: demo-plugin published by `publisher`, who adds `heir` as an owner; then a folder where its
    // page goes. demoplugin (its look-alike, allowed: `publisher` owns demo-plugin) uploaded: the batch flags
    // the pair on both documents, and the store refuses demo-plugin's, changed by demoplugin's publish alone.
    const registry = await servedOnDisk();
    const publisher = await testKey('publisher');
    const heir = await testKey('heir');
    await demoPublished(registry);
    const added = await submitAction(
      registry.context.intake,
      { action: 'owners-add', plugin: 'demo-plugin', key: heir.publicKey },
      publisher,
      { registry: registry.url },
    );
    await registry.batch([added.key]);
    await pageFolder(registry);
    const alike = await registry.submit(await installable('demoplugin'));

    // Act
    const failure = await registry.batch([alike.key]).then(
      () => undefined,
      (error: unknown) => error,
    );

    // Assert: no void (before: demoplugin's entry was voided and its upload rejected, while its document,
    // which the batch still wrote, showed the version, its files deleted under it).
    expect(failure).toMatchObject({ code: 'LOGGED_PUBLISH_FAILED' });
    expect((await registry.entries()).map((e) => e.type)).toEqual(['publish', 'owners-add', 'publish']);
    expect(await registry.incoming()).toEqual([alike.key]);
  }, 60_000);
});

describe("when a published plugin's new version naming a new OCI repository is voided", () => {
  it('takes the plugin out from under that repository, and keeps its name filed', async () => {
    // Prepare: demo-plugin@1.0.0 published (no OCI artifact); a folder where its page goes; 2.0.0 uploaded,
    // keeping its artifact at an OCI repository no version of it named before.
    const registry = await servedOnDisk();
    await demoPublished(registry);
    await pageFolder(registry);
    const repository = 'registry.example/acme/demo-plugin';
    const stuck = await registry.submit(
      await ociBundle('demo-plugin', `${repository}:2.0.0`, {
        sha: 'cd'.repeat(32),
        size: 42,
        version: '2.0.0',
      }),
    );

    // Act
    const result = await registry.batch([stuck.key]);

    // Assert: 2.0.0 voided; the repository index files demo-plugin under nothing (before: under the
    // repository, until a rebuild), the name index still files its name (its 1.0.0 stands).
    expect(outcomesOf(result)).toEqual([
      ['demo-plugin', '2.0.0', 'rejected', undefined, ['LOGGED_ENTRY_VOIDED']],
    ]);
    const { intake, site } = registry.context;
    forgetBins(intake);
    expect(await new OciRepositoryIndex(intake, site).filed(repository)).toEqual([]);
    expect((await new LookAlikeIndex(intake, site).filedAlike('demoplugin')).map((f) => f.name)).toEqual([
      'demo-plugin',
    ]);
  }, 60_000);
});

describe("when a batch voiding a look-alike's first publish dies taking its name out of the index", () => {
  it('the retry voids it and writes the other document without it, which the snapshot binds', async () => {
    // Prepare: see alikeOfPublished. The batch writes demoplugin's document naming demo-plugin, the store
    // refuses demo-plugin's page, the batch puts the site back, then dies writing the look-alike bin back
    // without demo-plugin (FiledIndex.withdraw), before its void is appended.
    const registry = await servedOnDisk();
    const stuck = await alikeOfPublished(registry, 'registry.example/acme/demo-plugin');
    const { intake, site } = registry.context;
    let restored = false;
    const watched: Store = {
      ...puttingThrough(site, (key, body, options) => site.put(key, body, options)),
      delete: async (key, options) => {
        await site.delete(key, options);
        if (key === 'plugins/demo-plugin/index.json') restored = true;
      },
    };
    const dying = puttingThrough(intake, async (key, body, options) => {
      if (restored && key.startsWith('state/catalog/names/')) throw new Error('killed in the withdraw');
      return intake.put(key, body, options);
    });
    await expect(
      processSubmissions({ ...registry.context, site: watched, intake: dying }, [stuck.key]),
    ).rejects.toThrow('killed in the withdraw');
    forgetBins(intake);

    // Act
    const result = await registry.batch();

    // Assert: demo-plugin voided; demoplugin's document, which the dead run wrote naming it, is written again
    // without it and bound by the snapshot (before: the retry read it as published, changed nothing, and
    // committed the catalog's older line over it, DOCUMENT_MISMATCH, verify --url refusing the registry).
    expect(outcomesOf(result)).toEqual([
      ['demo-plugin', '1.0.0', 'rejected', undefined, ['LOGGED_ENTRY_VOIDED']],
    ]);
    const publicKey = registry.base.registryKey.publicKey;
    expect((await boundDocument(site, publicKey, 'demoplugin')).look_alikes).toBeUndefined();
    forgetBins(intake);
    expect(await new LookAlikeIndex(intake, site).filedAlike('demoplugin')).toEqual([]);
    expect(await registry.verify()).toMatchObject({ plugins: 1 });
  }, 60_000);
});

describe("when a batch voiding a look-alike's first publish dies once the void is appended, before the other document", () => {
  it('the retry writes that document without it, which the snapshot binds', async () => {
    // Prepare: see alikeOfPublished. The batch writes demoplugin's document naming demo-plugin, voids
    // demo-plugin, and dies just before it writes demoplugin's document again without it.
    const registry = await servedOnDisk();
    const stuck = await alikeOfPublished(registry, 'registry.example/acme/demo-plugin');
    const site = registry.context.site;
    const dying = puttingThrough(site, async (key, body, options) => {
      const voided = (await registry.entries()).some((e) => e.type === 'void');
      if (voided && key === 'plugins/demoplugin/index.json') throw new Error('killed before the document');
      return site.put(key, body, options);
    });
    await expect(processSubmissions({ ...registry.context, site: dying }, [stuck.key])).rejects.toThrow(
      'killed before the document',
    );
    forgetBins(registry.context.intake);

    // Act
    const result = await registry.batch();

    // Assert
    expect(outcomesOf(result)).toEqual([
      ['demo-plugin', '1.0.0', 'rejected', undefined, ['LOGGED_ENTRY_VOIDED']],
    ]);
    const publicKey = registry.base.registryKey.publicKey;
    expect((await boundDocument(site, publicKey, 'demoplugin')).look_alikes).toBeUndefined();
    expect(await registry.verify()).toMatchObject({ plugins: 1 });
  }, 60_000);
});

describe("when a published plugin's new version is voided beside a new version of its look-alike", () => {
  it("keeps it in the look-alike's look_alikes: the plugin stands", async () => {
    // Prepare: demoplugin published by `publisher`, who adds `heir`; demo-plugin@1.0.0 published by
    // `publisher` (allowed), the pair flagged on both documents. A folder where demo-plugin's page goes;
    // demo-plugin@2.0.0 and demoplugin@1.1.0 uploaded.
    const registry = await servedOnDisk();
    const heir = await testKey('heir');
    await registry.batch([(await registry.submit(await installable('demoplugin'))).key]);
    const added = await submitAction(
      registry.context.intake,
      { action: 'owners-add', plugin: 'demoplugin', key: heir.publicKey },
      await testKey('publisher'),
      { registry: registry.url },
    );
    await registry.batch([added.key]);
    await demoPublished(registry);
    const publicKey = registry.base.registryKey.publicKey;
    const site = registry.context.site;
    expect((await boundDocument(site, publicKey, 'demoplugin')).look_alikes?.map((a) => a.name)).toEqual([
      'demo-plugin',
    ]);
    await pageFolder(registry);
    const stuck = await registry.submit(await installable('demo-plugin', '2.0.0'));
    const later = await registry.submit(await installable('demoplugin', '1.1.0'));

    // Act
    const result = await registry.batch([stuck.key, later.key]);

    // Assert: 2.0.0 voided, demo-plugin@1.0.0 stands, and demoplugin still lists it (before: the batch wrote
    // demoplugin's document again without it, as if demo-plugin never was).
    expect(outcomesOf(result)).toEqual([
      ['demo-plugin', '2.0.0', 'rejected', undefined, ['LOGGED_ENTRY_VOIDED']],
      ['demoplugin', '1.1.0', 'accepted', 4, []],
    ]);
    const doc = await boundDocument(site, publicKey, 'demoplugin');
    expect([doc.look_alikes?.map((a) => a.name), doc.versions.map((v) => v.version)]).toEqual([
      ['demo-plugin'],
      ['1.1.0', '1.0.0'],
    ]);
    expect(await registry.verify()).toMatchObject({ plugins: 2 });
  }, 60_000);
});

/** A site that dies (a process killed) at the first write of demoplugin's document once the log holds a void. */
function diesBeforeAlikeDocument(registry: Served): Store {
  const site = registry.context.site;
  return puttingThrough(site, async (key, body, options) => {
    const voided = (await registry.entries()).some((e) => e.type === 'void');
    if (voided && key === 'plugins/demoplugin/index.json') throw new Error('killed before the document');
    return site.put(key, body, options);
  });
}

describe("when a batch voiding a look-alike's first publish dies before the other document, and the next batch is of other uploads", () => {
  it('that batch writes the document without it, which the snapshot binds, and the upload is still rejected by the void', async () => {
    // Prepare: see alikeOfPublished. The batch writes demoplugin's document naming demo-plugin, voids
    // demo-plugin, and dies just before it writes demoplugin's document again without it. The next batch is
    // of other-plugin alone (one batch per S3 event; the local server).
    const registry = await servedOnDisk();
    const stuck = await alikeOfPublished(registry, 'registry.example/acme/demo-plugin');
    await expect(
      processSubmissions({ ...registry.context, site: diesBeforeAlikeDocument(registry) }, [stuck.key]),
    ).rejects.toThrow('killed before the document');
    forgetBins(registry.context.intake);
    const other = await registry.submit(await installable('other-plugin'));

    // Act
    const result = await registry.batch([other.key]);

    // Assert: demoplugin's document written again without demo-plugin and bound by the snapshot (before: the
    // catalog's older line was committed over the document the dead run wrote, DOCUMENT_MISMATCH, verify --url
    // refusing the registry until a batch met demo-plugin's upload).
    expect(outcomesOf(result)).toEqual([['other-plugin', '1.0.0', 'accepted', 4, []]]);
    const publicKey = registry.base.registryKey.publicKey;
    const site = registry.context.site;
    expect((await boundDocument(site, publicKey, 'demoplugin')).look_alikes).toBeUndefined();
    expect(await registry.verify()).toMatchObject({ plugins: 2 });
    expect(await site.get('plugins/demo-plugin/index.json')).toBeUndefined();
    // The upload, met at last, is rejected by the void, nothing logged again.
    expect(outcomesOf(await registry.batch([stuck.key]))).toEqual([
      ['demo-plugin', '1.0.0', 'rejected', undefined, ['LOGGED_ENTRY_VOIDED']],
    ]);
    expect((await registry.entries()).map((e) => e.type)).toEqual([
      'publish',
      'owners-add',
      'publish',
      'void',
      'publish',
    ]);
    expect(await listAll(registry.context.intake, 'state/log-intents/')).toEqual([]);
    expect(await registry.verify()).toMatchObject({ plugins: 2 });
  }, 90_000);
});

describe("when a batch voiding from the log a look-alike's first publish dies before the other document", () => {
  it('a later batch of other uploads leaves no served document listing the voided name', async () => {
    // Prepare: see alikeOfPublished. A run logs demo-plugin and dies; a batch of other-plugin alone finishes it
    // from the log, writes demoplugin's document naming it, meets the refusal, voids it and dies just before it
    // writes demoplugin's document again without it. Then a batch of third-plugin alone.
    const registry = await servedOnDisk();
    const stuck = await alikeOfPublished(registry, 'registry.example/acme/demo-plugin');
    await diesOnceLogged(registry.context, [stuck.key]);
    const other = await registry.submit(await installable('other-plugin'));
    await expect(
      processSubmissions({ ...registry.context, site: diesBeforeAlikeDocument(registry) }, [other.key]),
    ).rejects.toThrow('killed before the document');
    forgetBins(registry.context.intake);
    const site = registry.context.site;
    const served = async () => {
      const read = await site.get('plugins/demoplugin/index.json');
      return (JSON.parse(new TextDecoder().decode(read?.body)) as { look_alikes?: unknown }).look_alikes;
    };
    expect(await served()).toEqual([expect.objectContaining({ name: 'demo-plugin' })]);
    const third = await registry.submit(await installable('third-plugin'));

    // Act
    await registry.batch([third.key]);

    // Assert: the served document lists demo-plugin no more (before: it still did, bound by no snapshot).
    expect(await served()).toBeUndefined();
    const publicKey = registry.base.registryKey.publicKey;
    expect((await boundDocument(site, publicKey, 'demoplugin')).look_alikes).toBeUndefined();
    // other-plugin, whose publish the dead run logged, finished from the log too.
    expect(await registry.verify()).toMatchObject({ plugins: 3 });
  }, 90_000);
});

describe("when a batch voiding a dead run's publish whose upload it did not take dies once its outcome is recorded", () => {
  it("keeps the void's intent, and the batch that meets the upload rejects it by the void, logging it no more", async () => {
    // Prepare: a run logs demo-plugin (entry 0) and dies; a folder where its page goes. A batch of other-plugin
    // alone finishes demo-plugin from the log, voids entry 0 (entry 2), records both outcomes and dies before
    // it forgets its intents. A batch of third-plugin alone.
    const registry = await servedOnDisk();
    const stuck = await registry.submit(await makeBundle());
    await diesOnceLogged(registry.context, [stuck.key]);
    await pageFolder(registry);
    const other = await registry.submit(await installable('other-plugin'));
    const onStep = (step: BatchStep): void => {
      if (step === 'outcomes') throw new Error('killed after the outcomes');
    };
    await expect(registry.batch([other.key], onStep)).rejects.toThrow('killed after the outcomes');
    expect(await registry.outcome(stuck.id)).toMatchObject({ status: 'rejected' });
    const third = await registry.submit(await installable('third-plugin'));
    await registry.batch([third.key]);
    // The void's intent, marked awaited by that batch, keeps the hash of the void's line (the next entry's
    // `prev`): what a lost log record takes the entry by.
    const [, , voided, next] = await registry.entries();
    expect(voided?.type).toBe('void');
    const kept = await readIntentRecords(registry.context.intake);
    expect([...kept.values()].flatMap((intents) => [...intents.values()])).toEqual([
      expect.objectContaining({ seq: 2, type: 'void', hash: next?.prev, awaited: true }),
    ]);

    // Act
    const result = await registry.batch([stuck.key]);

    // Assert: rejected by the void (before: its intent, not yet marked awaited, was dropped for the outcome
    // recorded from the log, and the upload, judged anew, was logged again and voided again).
    expect(outcomesOf(result)).toEqual([
      ['demo-plugin', '1.0.0', 'rejected', undefined, ['LOGGED_ENTRY_VOIDED']],
    ]);
    expect((await registry.entries()).map((e) => e.type)).toEqual(['publish', 'publish', 'void', 'publish']);
    expect(await registry.incoming()).toEqual([]);
    expect(await listAll(registry.context.intake, 'state/log-intents/')).toEqual([]);
    expect((await registry.verify()).voided).toHaveLength(1);
  }, 60_000);
});

describe("when the voided look-alike's name is published anew while its void's intent stands", () => {
  it('the other document, which the dead run flagged with it, is bound as served', async () => {
    // Prepare: see alikeOfPublished. The batch writes demoplugin's document naming demo-plugin, voids
    // demo-plugin, and dies just before it writes demoplugin's document again without it; demo-plugin's
    // upload stays in incoming/. The folder is taken away, and demo-plugin@2.0.0 uploaded by the same
    // publisher: the pair flagged as the dead run flagged it.
    const registry = await servedOnDisk();
    const stuck = await alikeOfPublished(registry, 'registry.example/acme/demo-plugin');
    await expect(
      processSubmissions({ ...registry.context, site: diesBeforeAlikeDocument(registry) }, [stuck.key]),
    ).rejects.toThrow('killed before the document');
    forgetBins(registry.context.intake);
    await rm(path.join(registry.siteRoot, 'plugins/demo-plugin/index.html'), { recursive: true });
    const fresh = await registry.submit(await installable('demo-plugin', '2.0.0'));

    // Act
    const result = await registry.batch([fresh.key]);

    // Assert: demoplugin's document, flagged with demo-plugin by the dead run and again now, is the one the
    // snapshot binds (before: the catalog's older line was committed over it, DOCUMENT_MISMATCH, and verify
    // --url refused the registry for good, the batch that met the voided upload too).
    expect(outcomesOf(result)).toEqual([['demo-plugin', '2.0.0', 'accepted', 4, []]]);
    const publicKey = registry.base.registryKey.publicKey;
    const site = registry.context.site;
    const flagged = async () =>
      (await boundDocument(site, publicKey, 'demoplugin')).look_alikes?.map((other) => other.name);
    expect(await flagged()).toEqual(['demo-plugin']);
    expect(await registry.verify()).toMatchObject({ plugins: 2 });
    // The voided upload, met at last, is rejected by the void; the new flag stands.
    expect(outcomesOf(await registry.batch([stuck.key]))).toEqual([
      ['demo-plugin', '1.0.0', 'rejected', undefined, ['LOGGED_ENTRY_VOIDED']],
    ]);
    expect(await flagged()).toEqual(['demo-plugin']);
    expect(await registry.verify()).toMatchObject({ plugins: 2 });
  }, 90_000);
});
