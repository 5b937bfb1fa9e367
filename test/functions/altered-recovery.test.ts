/**
 * An operator's way out of PUBLISHED_DOCUMENT_ALTERED on AWS: someone edited a document in the site bucket,
 * every batch fails on it (pipeline/published.ts), and the error says to rebuild, which takes the published
 * documents as they are (`plugindex rebuild --queue-url`: a rebuild message in the publish queue). That
 * message must get its rebuild made, though the uploads the failed batches left in incoming/ are still
 * there. On a real S3 protocol server (s3rver); Secrets Manager and CloudFront through aws-sdk-client-mock
 * (named SDK mocks), as in handlers.test.ts.
 */
import { CloudFrontClient, CreateInvalidationCommand } from '@aws-sdk/client-cloudfront';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { S3Store } from '../../adapters/s3-store.ts';
import { createPublishHandler, type HandlerDeps } from '../../functions/handlers.ts';
import { cachedSigner } from '../../functions/secrets.ts';
import { TrustError } from '../../index-builder/errors.ts';
import type { PluginDocument } from '../../index-builder/model.ts';
import { CACHE_MUTABLE, listAll } from '../../index-builder/store.ts';
import { encode, makeBundle, testKey, validManifest } from '../support/fixtures.ts';
import { functionConfig, type LocalS3, objectCreatedRecord, startLocalS3 } from '../support/s3.ts';

const secrets = mockClient(SecretsManagerClient);
const cloudfront = mockClient(CloudFrontClient);
let s3: LocalS3;
let deps: HandlerDeps;

const config = functionConfig('altered-intake', 'altered-site');

const uploaded = (key: string) => objectCreatedRecord(config.intakeBucket, key);

/** What `plugindex rebuild --queue-url` sends (adapters/publish-queue.ts `requestRebuild`). */
const rebuildRequest = { messageId: 'rebuild-1', eventSource: 'aws:sqs', body: '{"plugindex":"rebuild"}' };

async function upload(key: string, body: Uint8Array): Promise<void> {
  await s3.client.send(new PutObjectCommand({ Bucket: config.intakeBucket, Key: key, Body: body }));
}

beforeAll(async () => {
  s3 = await startLocalS3([config.intakeBucket, config.siteBucket]);
  const registryKey = await testKey('registry');
  secrets
    .on(GetSecretValueCommand)
    .resolves({ SecretString: JSON.stringify({ armoredKey: registryKey.secretKey }) });
  cloudfront.on(CreateInvalidationCommand).resolves({
    Invalidation: { Id: 'I1', Status: 'InProgress', CreateTime: new Date(), InvalidationBatch: undefined },
  });
  const quiet = { info: () => {}, warn: () => {}, error: () => {} };
  deps = {
    config,
    s3: s3.client,
    cloudfront: new CloudFrontClient({ region: 'us-east-1' }),
    signer: cachedSigner(new SecretsManagerClient({ region: 'us-east-1' }), config.signingKeySecretId),
    logger: quiet,
  };
  await upload(
    config.configKey,
    encode(JSON.stringify({ name: 'Altered Registry', url: 'https://plugins.example.com' })),
  );
});

afterAll(async () => {
  await s3?.close();
});

it('makes the rebuild a queued request asks for, though the uploads the altered document blocks still wait', async () => {
  const site = new S3Store({ client: s3.client, bucket: config.siteBucket });
  const intake = new S3Store({ client: s3.client, bucket: config.intakeBucket });
  const publish = createPublishHandler(deps);
  const document = 'plugins/cloud-plugin/index.json';
  await upload('incoming/one.tgz', await makeBundle({ manifest: validManifest({ name: 'cloud-plugin' }) }));
  await publish({ Records: [uploaded('incoming/one.tgz')] });
  // Someone with write access to the site bucket edits the plugin's document (the operator takes it as is).
  const doc = JSON.parse(new TextDecoder().decode((await site.get(document))?.body)) as PluginDocument;
  const stranger = (await testKey('stranger')).fingerprint;
  const edited = { ...doc, owners: [...doc.owners, stranger] };
  await site.put(document, encode(JSON.stringify(edited)), {
    contentType: 'application/json',
    cacheControl: CACHE_MUTABLE,
  });
  const next = await makeBundle({ manifest: validManifest({ name: 'cloud-plugin', version: '1.1.0' }) });
  await upload('incoming/two.tgz', next);
  const refused = await publish({ Records: [uploaded('incoming/two.tgz')] }).catch((e: unknown) => e);
  expect(refused).toBeInstanceOf(TrustError);
  expect(refused).toMatchObject({ code: 'PUBLISHED_DOCUMENT_ALTERED' });
  expect((refused as Error).message).toContain(document);
  expect((refused as Error).message).toContain('plugindex rebuild');

  // The operator runs the rebuild the message names; the queue delivers it, alone or with a redelivery.
  for (const records of [[rebuildRequest], [uploaded('incoming/two.tgz'), rebuildRequest]]) {
    const result = await publish({ Records: records }).catch((e: unknown) => e);
    if (result instanceof Error) {
      expect.soft(result, `records: ${records.map((r) => r.messageId).join(', ')}`).toBeUndefined();
      continue;
    }
    expect(await listAll(intake, 'incoming/')).toEqual([]);
    const published = JSON.parse(
      new TextDecoder().decode((await site.get(document))?.body),
    ) as PluginDocument;
    expect(published.owners).toContain(stranger);
    expect(published.versions.map((v) => v.version)).toEqual(['1.1.0', '1.0.0']);
    return;
  }
  throw new Error('no rebuild request got its rebuild made');
}, 120_000);
