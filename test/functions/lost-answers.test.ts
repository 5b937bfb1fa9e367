/**
 * The publish function when S3 does a conditional write and its answer is lost on the way back (the
 * connection reset): the SDK sends the write again, and S3 answers that one 412, the object there being the
 * first attempt's own. On s3rver behind the gate that checks `If-Match` as S3 does (s3-gate.ts), through a
 * proxy that loses the answers it is told to (s3-lost-answers.ts: mocks of IAM's conditions and of the
 * network, named so).
 */
import { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rotationMessage } from '../../adapters/publish-queue.ts';
import { S3Store } from '../../adapters/s3-store.ts';
import { binKey, binOf, SIGNED_SNAPSHOT_KEY, SNAPSHOT_KEY } from '../../index-builder/layout.ts';
import { type RotationOutcome, rotationOutcomeKey } from '../../index-builder/pipeline/rotate.ts';
import { createSigner, readPublicKey } from '../../index-builder/signing.ts';
import { openSignedSnapshot, verifyPluginDocument, verifySnapshot } from '../../index-builder/verify.ts';
import { testKey } from '../support/fixtures.ts';
import { firstRotation, publishBundles, publishFunction } from '../support/publish-function.ts';
import { functionConfig, type LocalS3, startLocalS3 } from '../support/s3.ts';
import { type S3Gate, startS3Gate } from '../support/s3-gate.ts';
import { type S3LostAnswers, startS3LostAnswers } from '../support/s3-lost-answers.ts';

const config = functionConfig('lost-intake', 'lost-site', {
  distributionId: undefined,
  defaults: { name: 'Lost Answers', url: 'https://plugins.example.org' },
});
let s3: LocalS3;
let gate: S3Gate;
let lost: S3LostAnswers;
let client: S3Client;

beforeAll(async () => {
  s3 = await startLocalS3([config.intakeBucket, config.siteBucket]);
  gate = await startS3Gate(s3, [{ effect: 'Allow', actions: ['s3:*'], resources: ['*'], conditions: {} }]);
  lost = await startS3LostAnswers(s3, gate.endpoint);
  client = new S3Client({ ...s3.config, endpoint: lost.endpoint });
});

afterAll(async () => {
  client?.destroy();
  await lost?.close();
  await gate?.close();
  await s3?.close();
});

const site = () => new S3Store({ client: s3.client, bucket: config.siteBucket });
const intake = () => new S3Store({ client: s3.client, bucket: config.intakeBucket });

describe("when the answer to a key rotation's own snapshot write is lost", () => {
  it('finishes the rotation in the same invocation: clients verify the registry by the new key', async () => {
    // Prepare: a registry of two plugins signed by key a, then a rotation to key b, the secret holding b.
    const a = await createSigner((await testKey('lost-a')).secretKey);
    const b = await createSigner((await testKey('lost-b')).secretKey);
    let secret = a;
    const publish = publishFunction(config, client, () => secret);
    const names = ['first-plugin', 'second-plugin'];
    await publishBundles(s3, config, publish, names);
    const { bytes, upload } = await firstRotation(config, a, b);
    await intake().put(upload, bytes, { contentType: 'application/json', cacheControl: 'no-store' });
    secret = b;
    lost.lose.add(`PUT /${config.siteBucket}/${SNAPSHOT_KEY}`);

    // Act
    await publish({
      Records: [{ messageId: 'r-1', eventSource: 'aws:sqs', body: rotationMessage(upload).body }],
    });

    // Assess: the write was done and its answer lost, the SDK's second attempt refused by its own object.
    expect(lost.lose.size).toBe(0);
    expect(gate.refused).toContain(`412 ${config.siteBucket}/${SNAPSHOT_KEY}`);
    const outcome = JSON.parse(
      new TextDecoder().decode((await intake().get(rotationOutcomeKey(upload)))?.body),
    ) as RotationOutcome;
    expect(outcome).toMatchObject({ status: 'rotated', sequence: 1, fingerprint: b.fingerprint });
    // What clients read first is the new key's snapshot, the pair's, counting the rotation.
    const signed = openSignedSnapshot((await site().get(SIGNED_SNAPSHOT_KEY))?.body as Uint8Array);
    const snapshot = await verifySnapshot({
      ...signed,
      key: (await readPublicKey(b.publicKey)).key,
      now: new Date(),
    });
    expect(new TextDecoder().decode(signed.snapshot)).toBe(
      new TextDecoder().decode((await site().get(SNAPSHOT_KEY))?.body),
    );
    expect(snapshot).toMatchObject({ key_fingerprint: b.fingerprint, key_rotations: 1 });
    for (const name of names)
      verifyPluginDocument(
        snapshot,
        name,
        (await site().get(binKey(binOf(name))))?.body as Uint8Array,
        (await site().get(`plugins/${name}/index.json`))?.body as Uint8Array,
      );
  }, 120_000);
});
