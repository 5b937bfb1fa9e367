/**
 * A key rotation whose re-signing dies part way through the publish function, on a real S3 protocol server
 * (s3rver on 127.0.0.1): S3 refusing one manifest signature's writes (500 InternalError, a mock in a proxy
 * in front of it, named so) after the rotation is published and other manifests are signed by the next
 * key. The operator may then put the old key back in the secret, as the function's SIGNING_KEY_NOT_PUBLISHED
 * offers, and the function runs on with it; or finish the rotation with the new key. Either way every step
 * must leave a registry clients verify: the snapshot by the key it names, each manifest by that key; and
 * each manifest signature it signs again invalidated at CloudFront (the named SDK mock), or the edge served
 * the other key's.
 */
import { CloudFrontClient, CreateInvalidationCommand } from '@aws-sdk/client-cloudfront';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rotationMessage } from '../../adapters/publish-queue.ts';
import { S3Store } from '../../adapters/s3-store.ts';
import { StoreError } from '../../index-builder/errors.ts';
import {
  binKey,
  binOf,
  manifestKey,
  pluginDocumentKey,
  SIGNED_SNAPSHOT_KEY,
  signatureKey,
} from '../../index-builder/layout.ts';
import type { PluginDocument, SnapshotDocument } from '../../index-builder/model.ts';
import { type RotationOutcome, rotationOutcomeKey } from '../../index-builder/pipeline/rotate.ts';
import { createSigner, readPublicKey, type Signer } from '../../index-builder/signing.ts';
import {
  openSignedSnapshot,
  verifyManifest,
  verifyPluginDocument,
  verifySnapshot,
} from '../../index-builder/verify.ts';
import { testKey } from '../support/fixtures.ts';
import { firstRotation, publishBundles, publishFunction } from '../support/publish-function.ts';
import { functionConfig, type LocalS3, startLocalS3 } from '../support/s3.ts';
import { answerS3Error, S3_ANSWERS } from '../support/s3-object-errors.ts';
import { type S3Proxy, startS3Proxy } from '../support/s3-proxy.ts';

const config = functionConfig('halted-intake', 'halted-site', {
  distributionId: undefined,
  defaults: { name: 'Halted Rotation', url: 'https://plugins.example.org' },
});
/** As `config`, over buckets of its own, with a distribution: CloudFront is the named SDK mock below. */
const cdnConfig = functionConfig('resigned-intake', 'resigned-site', {
  distributionId: 'E2EXAMPLE',
  defaults: { name: 'Resigned Rotation', url: 'https://plugins.example.org' },
});
const cloudfront = mockClient(CloudFrontClient);
const names = ['early-plugin', 'late-plugin'];
let s3: LocalS3;
let proxy: S3Proxy;
let client: S3Client;
/** `/<bucket>/<key>` of the objects whose PUTs the mock answers 500 InternalError, as S3 answers a fault. */
const failing = new Set<string>();

beforeAll(async () => {
  s3 = await startLocalS3([
    config.intakeBucket,
    config.siteBucket,
    cdnConfig.intakeBucket,
    cdnConfig.siteBucket,
  ]);
  let serial = 0;
  proxy = await startS3Proxy(s3, (request, response) => {
    const path = decodeURIComponent(new URL(request.url ?? '/', 'http://mock').pathname);
    if (request.method !== 'PUT' || !failing.has(path)) return false;
    answerS3Error(request, response, S3_ANSWERS.internal, ++serial);
    return true;
  });
  client = new S3Client({ ...s3.config, endpoint: proxy.endpoint });
});

afterAll(async () => {
  client?.destroy();
  await proxy?.close();
  await s3?.close();
});

const site = () => new S3Store({ client: s3.client, bucket: config.siteBucket });

/**
 * What a client checks, by `signer`'s key: the snapshot it reads first, each plugin document through its
 * bin, and each version's manifest by the signature its plugin document carries (as an install does).
 */
async function expectVerifiedBy(signer: Signer): Promise<SnapshotDocument> {
  const key = (await readPublicKey(signer.publicKey)).key;
  const signed = openSignedSnapshot((await site().get(SIGNED_SNAPSHOT_KEY))?.body as Uint8Array);
  const snapshot = await verifySnapshot({ ...signed, key, now: new Date() });
  expect(snapshot.key_fingerprint).toBe(signer.fingerprint);
  for (const name of names) {
    const document = (await site().get(pluginDocumentKey(name)))?.body as Uint8Array;
    verifyPluginDocument(
      snapshot,
      name,
      (await site().get(binKey(binOf(name))))?.body as Uint8Array,
      document,
    );
    const doc = JSON.parse(new TextDecoder().decode(document)) as PluginDocument;
    for (const version of doc.versions) {
      const url = manifestKey(name, version.version);
      const manifest = (await site().get(url))?.body as Uint8Array;
      await verifyManifest({
        name,
        version,
        manifest,
        signature: version.manifest_signature as string,
        key,
        url,
      });
    }
  }
  return snapshot;
}

describe("when a key rotation's re-signing dies part way", () => {
  it('leaves every manifest verified by the key the snapshot names: the old one put back, then the new', async () => {
    // Prepare: two plugins signed by key a; a rotation to b, the secret holding b, and S3 failing the late
    // plugin's manifest signature, so the early one is signed by b when the rotation dies.
    const a = await createSigner((await testKey('halted-a')).secretKey);
    const b = await createSigner((await testKey('halted-b')).secretKey);
    let secret = a;
    const publish = publishFunction(config, client, () => secret);
    await publishBundles(s3, config, publish, names);
    const { bytes, upload } = await firstRotation(config, a, b);
    await s3.client.send(new PutObjectCommand({ Bucket: config.intakeBucket, Key: upload, Body: bytes }));
    const request = {
      Records: [{ messageId: 'r-1', eventSource: 'aws:sqs', body: rotationMessage(upload).body }],
    };
    secret = b;
    failing.add(`/${config.siteBucket}/${signatureKey(manifestKey('late-plugin', '1.0.0'))}`);
    const died = publish(request);
    await expect(died).rejects.toBeInstanceOf(StoreError);
    await expect(died).rejects.toMatchObject({ code: 'STORE_IO' });
    failing.clear();

    // Act: the operator puts the old key back; the queue delivers the request again.
    secret = a;
    await publish(request);

    // Assess: the rotation is refused for now, and what clients read is a's, every manifest included.
    const intake = new S3Store({ client: s3.client, bucket: config.intakeBucket });
    const recorded = (await intake.get(rotationOutcomeKey(upload)))?.body;
    const outcome = JSON.parse(new TextDecoder().decode(recorded)) as RotationOutcome;
    expect(outcome).toMatchObject({ status: 'rejected', problems: [{ code: 'ROTATION_NOT_SIGNING_KEY' }] });
    expect((await expectVerifiedBy(a)).key_rotations ?? 0).toBe(0);

    // Act: the new key again, and the request once more: the rotation is finished.
    secret = b;
    await publish(request);

    // Assess
    expect(await expectVerifiedBy(b)).toMatchObject({ key_rotations: 1 });
  }, 120_000);
});

describe('when the key the snapshot names signs every manifest again after a rotation died part way', () => {
  it("invalidates each manifest signature it rewrote, which CloudFront served the next key's of", async () => {
    // Prepare: as above, over a distribution: two plugins by a, a rotation to b that dies with the early
    // plugin's manifest signed by b, then the old key put back.
    cloudfront.on(CreateInvalidationCommand).resolves({
      Invalidation: { Id: 'I1', Status: 'InProgress', CreateTime: new Date(), InvalidationBatch: undefined },
    });
    const a = await createSigner((await testKey('halted-a')).secretKey);
    const b = await createSigner((await testKey('halted-b')).secretKey);
    let secret = a;
    const publish = publishFunction(
      cdnConfig,
      client,
      () => secret,
      new CloudFrontClient({ region: 'us-east-1' }),
    );
    await publishBundles(s3, cdnConfig, publish, names);
    const { bytes, upload } = await firstRotation(cdnConfig, a, b);
    await s3.client.send(new PutObjectCommand({ Bucket: cdnConfig.intakeBucket, Key: upload, Body: bytes }));
    const request = {
      Records: [{ messageId: 'r-2', eventSource: 'aws:sqs', body: rotationMessage(upload).body }],
    };
    secret = b;
    const late = signatureKey(manifestKey('late-plugin', '1.0.0'));
    failing.add(`/${cdnConfig.siteBucket}/${late}`);
    await expect(publish(request)).rejects.toMatchObject({ code: 'STORE_IO' });
    failing.clear();
    const site = new S3Store({ client: s3.client, bucket: cdnConfig.siteBucket });
    const early = signatureKey(manifestKey('early-plugin', '1.0.0'));
    const byNext = new TextDecoder().decode((await site.get(early))?.body);
    secret = a;
    cloudfront.resetHistory();

    // Act: the request delivered again, signed by the old key.
    await publish(request);

    // Assess: the early plugin's signature is a's again, and CloudFront was told of both rewritten.
    expect(new TextDecoder().decode((await site.get(early))?.body)).not.toBe(byNext);
    const paths = cloudfront
      .commandCalls(CreateInvalidationCommand)
      .flatMap((call) => call.args[0].input.InvalidationBatch?.Paths?.Items ?? []);
    expect(paths).toEqual(expect.arrayContaining([`/${early}`, `/${late}`]));
  }, 120_000);
});
