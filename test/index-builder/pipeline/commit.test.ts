/**
 * The commit point: a snapshot is written only over the snapshot it was made from. Another writer that
 * commits between a batch's read of the snapshot and its write (a command run against the buckets beside
 * the queue's batches, here a refresh) is not undone: the batch fails STORE_CONFLICT with its snapshot not
 * written, and its retry commits on top. On the real stores: the filesystem store, and S3 through
 * the gate that answers `If-Match` as S3 does (test/support/s3-gate.ts; s3rver ignores the header).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { forgetBins } from '../../../index-builder/catalog.ts';
import { StoreError } from '../../../index-builder/errors.ts';
import { binKey, binOf, SIGNED_SNAPSHOT_KEY, SNAPSHOT_KEY } from '../../../index-builder/layout.ts';
import type { SnapshotDocument } from '../../../index-builder/model.ts';
import type { PipelineContext } from '../../../index-builder/pipeline/index.ts';
import { processSubmissions, refreshSnapshot } from '../../../index-builder/pipeline/index.ts';
import { readPublicKey, verifyDetachedSignature } from '../../../index-builder/signing.ts';
import type { Store } from '../../../index-builder/store.ts';
import { openSignedSnapshot, verifyPluginDocument } from '../../../index-builder/verify.ts';
import { makeBundle, makeRegistry, nextUploadName, testKey, validManifest } from '../../support/fixtures.ts';
import { type LocalS3, startLocalS3 } from '../../support/s3.ts';
import { type S3Gate, startS3Gate } from '../../support/s3-gate.ts';
import { storeKinds, withMethod } from '../../support/stores.ts';

let s3: LocalS3;
let gate: S3Gate;
let client: S3Client;
let folder: string;

beforeAll(async () => {
  s3 = await startLocalS3(['commit-intake', 'commit-site']);
  gate = await startS3Gate(s3, [{ effect: 'Allow', actions: ['s3:*'], resources: ['*'], conditions: {} }]);
  client = new S3Client({ ...s3.config, endpoint: gate.endpoint });
  folder = await mkdtemp(path.join(tmpdir(), 'plugindex-commit-'));
});

afterAll(async () => {
  client?.destroy();
  await gate?.close();
  await s3?.close();
  await rm(folder, { recursive: true, force: true });
});

const kinds = storeKinds(
  () => folder,
  () => client,
  { intake: 'commit-intake', site: 'commit-site' },
  'the S3 store (s3rver, behind a gate that checks If-Match)',
);

async function json<T>(store: Store, key: string): Promise<T> {
  return JSON.parse(new TextDecoder().decode((await store.get(key))?.body)) as T;
}

async function submit(context: PipelineContext, name: string): Promise<string> {
  const key = `incoming/${nextUploadName()}.tgz`;
  const bundle = await makeBundle({ manifest: validManifest({ name }) });
  await context.intake.put(key, bundle, { contentType: 'application/gzip', cacheControl: 'no-store' });
  return key;
}

/** What clients read first, `snapshot.signed.json`: the published snapshot, signed by the registry key. */
async function expectSignedSnapshot(site: Store): Promise<void> {
  const key = (await readPublicKey((await testKey('registry')).publicKey)).key;
  const body = (await site.get(SNAPSHOT_KEY))?.body as Uint8Array;
  const signed = openSignedSnapshot((await site.get(SIGNED_SNAPSHOT_KEY))?.body as Uint8Array);
  expect(new TextDecoder().decode(signed.snapshot)).toBe(new TextDecoder().decode(body));
  await expect(verifyDetachedSignature(body, signed.signature, [key])).resolves.toMatchObject({ ok: true });
}

/** The snapshot pair: `snapshot.json` and its detached signature by the registry key. */
async function expectSignedPair(site: Store): Promise<void> {
  const key = (await readPublicKey((await testKey('registry')).publicKey)).key;
  const body = (await site.get(SNAPSHOT_KEY))?.body as Uint8Array;
  const signature = new TextDecoder().decode((await site.get(`${SNAPSHOT_KEY}.asc`))?.body);
  await expect(verifyDetachedSignature(body, signature, [key])).resolves.toMatchObject({ ok: true });
}

describe.each(kinds)('when another writer commits while a batch commits, on %s', (_, stores) => {
  it('fails the batch STORE_CONFLICT, leaves the other snapshot whole, and the retry commits on top', async () => {
    const base = await makeRegistry();
    const context: PipelineContext = { ...base.context, ...stores() };
    await processSubmissions(context, [await submit(context, 'first-plugin')]);
    forgetBins(context.intake);
    const key = await submit(context, 'second-plugin');
    // Another writer's refresh lands between the batch's read of the snapshot and its write.
    let other: number | undefined;
    const site = withMethod(context.site, 'put', (put) => async (written, body, options) => {
      if (written === SNAPSHOT_KEY && other === undefined)
        other = (await refreshSnapshot({ ...context, intake: context.intake })).generation;
      return put(written, body, options);
    });

    const failed = processSubmissions({ ...context, site }, [key]);

    await expect(failed).rejects.toBeInstanceOf(StoreError);
    await expect(failed).rejects.toMatchObject({ code: 'STORE_CONFLICT', key: SNAPSHOT_KEY });
    expect(other).toBe(2);
    expect((await json<SnapshotDocument>(context.site, SNAPSHOT_KEY)).generation).toBe(2);
    // Clients read the other writer's, whole (the pair's signature may be the failed batch's until its retry).
    await expectSignedSnapshot(context.site);

    forgetBins(context.intake);
    const retried = await processSubmissions(context);

    expect(retried.outcomes.map((o) => o.status)).toEqual(['accepted']);
    const snapshot = await json<SnapshotDocument>(context.site, SNAPSHOT_KEY);
    expect(snapshot.generation).toBe(3);
    await expectSignedSnapshot(context.site);
    await expectSignedPair(context.site);
    for (const name of ['first-plugin', 'second-plugin'])
      verifyPluginDocument(
        snapshot,
        name,
        (await context.site.get(binKey(binOf(name))))?.body as Uint8Array,
        (await context.site.get(`plugins/${name}/index.json`))?.body as Uint8Array,
      );
  }, 60_000);
});
