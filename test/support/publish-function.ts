/** The publish function as the function tests drive it on local S3: made, fed bundles, handed a rotation. */
import type { CloudFrontClient } from '@aws-sdk/client-cloudfront';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { FunctionConfig } from '../../functions/env.ts';
import { createPublishHandler } from '../../functions/handlers.ts';
import { rotationUploadKey } from '../../index-builder/pipeline/rotate.ts';
import { signRotation } from '../../index-builder/rotation.ts';
import type { Signer } from '../../index-builder/signing.ts';
import { makeBundle, validManifest } from './fixtures.ts';
import { type LocalS3, objectCreatedRecord } from './s3.ts';

export type PublishFunction = ReturnType<typeof createPublishHandler>;

/**
 * The publish function on `s3`, signing with whatever key `signer()` gives (the secret as it is now); told
 * of CloudFront only when the config names a distribution (else never called).
 */
export function publishFunction(
  config: FunctionConfig,
  s3: S3Client,
  signer: () => Signer,
  cloudfront?: CloudFrontClient,
): PublishFunction {
  return createPublishHandler({
    config,
    s3,
    cloudfront: cloudfront ?? (undefined as never),
    signer: async () => signer(),
    logger: { info: () => {}, warn: () => {}, error: () => {} },
  });
}

/** Publishes a bundle of each of `names` (1.0.0), each uploaded to incoming/ and its event handled alone. */
export async function publishBundles(
  s3: LocalS3,
  config: FunctionConfig,
  publish: PublishFunction,
  names: readonly string[],
): Promise<void> {
  for (const name of names) {
    const key = `incoming/${name}.tgz`;
    const Body = await makeBundle({ manifest: validManifest({ name }) });
    await s3.client.send(new PutObjectCommand({ Bucket: config.intakeBucket, Key: key, Body }));
    await publish({ Records: [objectCreatedRecord(config.intakeBucket, key)] });
  }
}

/** The registry's first rotation, from `previous` to `next`, signed now: its bytes and its upload's key. */
export async function firstRotation(
  config: FunctionConfig,
  previous: Signer,
  next: Signer,
): Promise<{ bytes: Uint8Array; upload: string }> {
  const { bytes } = await signRotation({
    registry: config.defaults.url as string,
    sequence: 1,
    previous,
    next,
    now: new Date(),
  });
  return { bytes, upload: rotationUploadKey(bytes) };
}
