/**
 * The outcome of an upload whose batch died after its version was shown (its plugin document written, or
 * the whole generation committed) and before its outcome was recorded: the retry finds the upload still in
 * incoming/ and its version published, by this very upload. Its outcome is the acceptance the dead run
 * would have recorded (its log entry, a generation that shows it), recorded once, the upload filed under
 * processed/, nothing published again. On the real stores: the filesystem store and S3 (s3rver).
 */
import { describe, expect, it } from 'vitest';
import { forgetBins } from '../../../index-builder/catalog.ts';
import { submissionIdFromBytes } from '../../../index-builder/layout.ts';
import type { SnapshotDocument } from '../../../index-builder/model.ts';
import type { BatchStep, PipelineContext } from '../../../index-builder/pipeline/index.ts';
import { processSubmissions } from '../../../index-builder/pipeline/index.ts';
import { listAll, type Store } from '../../../index-builder/store.ts';
import { makeBundle, makeRegistry, nextUploadName, testKey, validManifest } from '../../support/fixtures.ts';
import { realStores, withMethod } from '../../support/stores.ts';

/** Empty stores of each kind: a folder of their own, or a prefix of their own in the buckets. */
const { kinds } = realStores('outcomes');

/** A registry on `stores` (trusting only the test publisher, when `restricted`), and a submitter into it. */
async function registryOn(stores: { intake: Store; site: Store }, restricted = false) {
  const publisher = await testKey('publisher');
  const base = await makeRegistry(
    restricted
      ? {
          policy: 'restricted',
          publishers: [{ fingerprint: publisher.fingerprint, names: ['demo-*'], key: publisher.publicKey }],
        }
      : {},
  );
  const context: PipelineContext = { ...base.context, ...stores };
  const submit = async (bundle: Uint8Array): Promise<{ key: string; id: string }> => {
    const key = `incoming/${nextUploadName()}.tgz`;
    await stores.intake.put(key, bundle, { contentType: 'application/gzip', cacheControl: 'no-store' });
    return { key, id: submissionIdFromBytes(key, bundle) };
  };
  return { context, submit, publisher };
}

/** Runs a batch that dies (a process killed: nothing of it runs after) once it reaches `step`. */
async function diesAt(context: PipelineContext, step: BatchStep, keys: string[]): Promise<void> {
  const onStep = (reached: BatchStep): void => {
    if (reached === step) throw new Error(`killed after ${step}`);
  };
  await expect(processSubmissions({ ...context, onStep }, keys)).rejects.toThrow(`killed after ${step}`);
  forgetBins(context.intake); // the retry is another process
}

/** Every object of `store` with its ETag: what a retry must leave as it is when it publishes nothing. */
async function contentsOf(store: Store): Promise<[string, string][]> {
  return (await listAll(store, '')).map((o): [string, string] => [o.key, o.etag]).sort();
}

async function json<T>(store: Store, key: string): Promise<T | undefined> {
  const object = await store.get(key);
  return object ? (JSON.parse(new TextDecoder().decode(object.body)) as T) : undefined;
}

/** `store` counting its puts under `prefix`. */
function countingPuts(store: Store, prefix: string): { store: Store; puts: string[] } {
  const puts: string[] = [];
  return {
    puts,
    store: withMethod(store, 'put', (put) => (key, body, options) => {
      if (key.startsWith(prefix)) puts.push(key);
      return put(key, body, options);
    }),
  };
}

describe.each(kinds)('when a batch died after it published an upload, on %s', (_, stores) => {
  it('records the upload accepted once the whole generation was committed, publishing nothing again', async () => {
    const { context, submit } = await registryOn(stores());
    const bundle = await makeBundle();
    const upload = await submit(bundle);
    await diesAt(context, 'committed', [upload.key]);
    const snapshot = await json<SnapshotDocument>(context.site, 'snapshot.json');
    const site = await contentsOf(context.site);
    const counted = countingPuts(context.intake, 'status/');

    const retried = await processSubmissions({ ...context, intake: counted.store });

    expect(retried.outcomes).toMatchObject([
      { id: upload.id, status: 'accepted', seq: 0, generation: snapshot?.generation, problems: [] },
    ]);
    expect(counted.puts).toEqual([`status/${upload.id}.json`]);
    expect(await json(context.intake, `status/${upload.id}.json`)).toEqual(retried.outcomes[0]);
    expect(await context.intake.head(upload.key)).toBeUndefined();
    expect(await context.intake.head(`processed/${upload.id}.tgz`)).toBeDefined();
    expect(await contentsOf(context.site)).toEqual(site);
    // No intent record is left for the log: the upload is finished.
    expect(await listAll(context.intake, 'state/log-intents/')).toEqual([]);

    // Another upload of the same bundle is what it always was: found published; other bytes are refused.
    const again = await submit(bundle);
    const other = await submit(await makeBundle({ manifest: validManifest({ description: 'other' }) }));
    const later = await processSubmissions(context, [again.key, other.key]);
    expect(later.outcomes.map((o) => [o.status, o.problems.map((p) => p.code)])).toEqual([
      ['already-published', []],
      ['rejected', ['VERSION_EXISTS']],
    ]);
  }, 60_000);

  it('records the upload accepted in the generation the retry commits, once its document was written', async () => {
    const { context, submit } = await registryOn(stores());
    const upload = await submit(await makeBundle());
    await diesAt(context, 'plugin-documents', [upload.key]);

    const retried = await processSubmissions(context);

    const snapshot = await json<SnapshotDocument>(context.site, 'snapshot.json');
    expect(snapshot?.log?.length).toBe(1);
    expect(retried.outcomes).toMatchObject([
      { id: upload.id, status: 'accepted', seq: 0, generation: snapshot?.generation },
    ]);
    expect(await json(context.intake, `status/${upload.id}.json`)).toEqual(retried.outcomes[0]);
    expect(await context.intake.head(`processed/${upload.id}.tgz`)).toBeDefined();
  }, 60_000);

  it('records the upload accepted though its key was taken off the trust list before the retry', async () => {
    const { context, submit, publisher } = await registryOn(stores(), true);
    const upload = await submit(await makeBundle());
    await diesAt(context, 'committed', [upload.key]);
    const delisted = { ...context, config: { ...context.config, publishers: [] } };

    const retried = await processSubmissions(delisted);

    expect(retried.outcomes).toMatchObject([
      { id: upload.id, status: 'accepted', publisher: publisher.fingerprint, seq: 0, problems: [] },
    ]);
    expect(await context.intake.head(`processed/${upload.id}.tgz`)).toBeDefined();
  }, 60_000);
});

describe.each(kinds)('when an upload whose acceptance was recorded comes again, on %s', (_, stores) => {
  it('keeps its acceptance though the retry would refuse it now (its key off the trust list)', async () => {
    // Prepare: an upload accepted and recorded; the same bytes put under the same name again (a
    // redelivery, or anyone who can upload and holds the bundle, which a publisher may have made public),
    // after its key was taken off the trust list.
    const { context, submit, publisher } = await registryOn(stores(), true);
    const bundle = await makeBundle();
    const upload = await submit(bundle);
    const first = await processSubmissions(context);
    expect(first.outcomes).toMatchObject([{ id: upload.id, status: 'accepted', seq: 0 }]);
    await context.intake.put(upload.key, bundle, {
      contentType: 'application/gzip',
      cacheControl: 'no-store',
    });
    const delisted = { ...context, config: { ...context.config, publishers: [] } };

    // Act
    const again = await processSubmissions(delisted);

    // Assess: the record of its acceptance stands, its log entry and all; the upload is filed under processed/.
    expect(again.outcomes).toMatchObject([
      { id: upload.id, status: 'accepted', publisher: publisher.fingerprint, seq: 0, problems: [] },
    ]);
    expect(await json(context.intake, `status/${upload.id}.json`)).toMatchObject({
      status: 'accepted',
      seq: 0,
    });
    expect(await context.intake.head(`rejected/${upload.id}.tgz`)).toBeUndefined();
    expect(await context.intake.head(upload.key)).toBeUndefined();
  }, 60_000);
});
