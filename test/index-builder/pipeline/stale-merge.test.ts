/**
 * A streamed flush that died once `index.json` was written, on the real stores: the next merge finds that
 * document not the one its order records (IndexDocumentStale, thrown by the rendering as the store reads
 * it), and must render every document in full, whichever store wraps the rendering's failure (FsStore and
 * S3Store make it the cause of their StoreError). Before, every later flush, refresh and publish failed the
 * same way, and clients refused the index document the snapshot no longer bound.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FsStore } from '../../../adapters/fs-store.ts';
import { S3Store } from '../../../adapters/s3-store.ts';
import { forgetBins } from '../../../index-builder/catalog.ts';
import { StoreError } from '../../../index-builder/errors.ts';
import { INDEX_JSON_KEY } from '../../../index-builder/layout.ts';
import type { SnapshotDocument } from '../../../index-builder/model.ts';
import type { PipelineContext } from '../../../index-builder/pipeline/context.ts';
import { flushIndexes, processSubmissions, refreshSnapshot } from '../../../index-builder/pipeline/index.ts';
import type { Store } from '../../../index-builder/store.ts';
import { verifyListedDocument } from '../../../index-builder/verify.ts';
import { makeBundle, makeRegistry, nextUploadName, validManifest } from '../../support/fixtures.ts';
import { realStores } from '../../support/stores.ts';

/** s3rver and a temporary folder, for this file's tests. */
const local = realStores('stale');

/** `site` whose putStream of `failing` keys fails while `dying` says so: a run that dies there. */
function dyingSite(site: Store, state: { dying: boolean }, failing: (key: string) => boolean): Store {
  return new Proxy(site, {
    get(target, property) {
      if (property === 'putStream')
        return (key: string, body: AsyncIterable<Uint8Array>, options: never) =>
          state.dying && failing(key)
            ? Promise.reject(new StoreError('STORE_IO', key, 'the run died here'))
            : target.putStream(key, body, options);
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** A context whose index documents stream (and compress) whatever their size, and a submitter into it. */
function streaming(base: PipelineContext, intake: Store, site: Store) {
  const context: PipelineContext = {
    ...base,
    intake,
    site,
    compressionThresholdBytes: 100,
    streamIndexesOverBytes: 0,
  };
  const submit = async (name: string): Promise<string> => {
    const key = `incoming/${nextUploadName()}.tgz`;
    const bundle = await makeBundle({ manifest: validManifest({ name, version: '1.0.0' }) });
    await intake.put(key, bundle, { contentType: 'application/gzip', cacheControl: 'no-store' });
    return key;
  };
  return { context, submit };
}

describe.each([
  [
    'the filesystem store',
    () => ({
      intake: new FsStore(path.join(local.folder(), 'intake')),
      site: new FsStore(path.join(local.folder(), 'site')),
    }),
  ],
  [
    'the S3 store (s3rver)',
    () => ({
      intake: new S3Store({ client: local.s3().client, bucket: 'stale-intake' }),
      site: new S3Store({ client: local.s3().client, bucket: 'stale-site' }),
    }),
  ],
])('when a streamed flush died after index.json was written, on %s', (_, stores) => {
  it('renders every document in full on the next flush, and the refresh and the snapshot bind them', async () => {
    const base = await makeRegistry();
    const { intake, site: real } = stores();
    const state = { dying: false };
    const site = dyingSite(real, state, (key) => key.startsWith('index.yaml'));
    const { context, submit } = streaming(base.context, intake, site);
    await processSubmissions(context, [await submit('b-plugin'), await submit('d-plugin')]);
    await processSubmissions({ ...context, deferIndexes: true }, [await submit('c-plugin')]);
    state.dying = true;
    forgetBins(intake); // a cold process: every Lambda invocation, every CLI run
    await expect(flushIndexes(context)).rejects.toThrow('the run died here');
    state.dying = false;
    forgetBins(intake);
    await flushIndexes(context);
    forgetBins(intake);
    await refreshSnapshot(context);
    const snapshot = JSON.parse(
      new TextDecoder().decode((await real.get('snapshot.json'))?.body),
    ) as SnapshotDocument;
    const body = (await real.get(INDEX_JSON_KEY))?.body as Uint8Array;
    expect(() => verifyListedDocument(snapshot, INDEX_JSON_KEY, body)).not.toThrow();
    const index = JSON.parse(new TextDecoder().decode(body)) as { plugins: { name: string }[] };
    expect(index.plugins.map((p) => p.name)).toEqual(['b-plugin', 'c-plugin', 'd-plugin']);
  }, 60_000);
});

describe('when one compressed variant of a streamed document fails to be written', () => {
  it("throws that write's own failure, not the rendering stopped because of it", async () => {
    const base = await makeRegistry();
    const intake = new FsStore(path.join(local.folder(), 'variant-intake'));
    const state = { dying: false };
    const site = dyingSite(
      new FsStore(path.join(local.folder(), 'variant-site')),
      state,
      (key) => key === 'index.json.gz',
    );
    const { context, submit } = streaming(base.context, intake, site);
    await processSubmissions(context, [await submit('b-plugin')]);
    forgetBins(intake);
    state.dying = true;
    const error = await processSubmissions(context, [await submit('c-plugin')]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect(error).toMatchObject({ key: 'index.json.gz', message: 'the run died here' });
  }, 60_000);
});
