/**
 * Lambda entry point of the publish function: wiring only. Clients are built once per container; the
 * signing key is fetched from Secrets Manager on the first invocation and kept in memory.
 */
import { CloudFrontClient } from '@aws-sdk/client-cloudfront';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { createS3Client } from '../adapters/s3-store.ts';
import { PUBLISHERS_FILE, readFunctionConfig } from './env.ts';
import { createPublishHandler } from './handlers.ts';
import { jsonLogger } from './logger.ts';
import { cachedSigner } from './secrets.ts';

const config = readFunctionConfig(process.env, new URL(`./${PUBLISHERS_FILE}`, import.meta.url));

export const handler = createPublishHandler({
  config,
  s3: createS3Client(config.s3Endpoint),
  cloudfront: new CloudFrontClient({}),
  signer: cachedSigner(new SecretsManagerClient({}), config.signingKeySecretId),
  logger: jsonLogger('plugindex-publish'),
});
