/**
 * Lambda entry point of the publish function: wiring only. Clients are built once per container; the
 * signing key is fetched from Secrets Manager on the first invocation and kept in memory.
 */
import { CloudFrontClient } from '@aws-sdk/client-cloudfront';
import { S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { PUBLISHERS_FILE, readFunctionConfig } from './env.ts';
import { createPublishHandler } from './handlers.ts';
import { jsonLogger } from './logger.ts';
import { cachedSigner } from './secrets.ts';

const config = readFunctionConfig(process.env, new URL(`./${PUBLISHERS_FILE}`, import.meta.url));

export const handler = createPublishHandler({
  config,
  s3: new S3Client(config.s3Endpoint ? { endpoint: config.s3Endpoint, forcePathStyle: true } : {}),
  cloudfront: new CloudFrontClient({}),
  signer: cachedSigner(new SecretsManagerClient({}), config.signingKeySecretId),
  logger: jsonLogger('plugindex-publish'),
});
