/** Lambda entry point of the scheduled snapshot refresh: wiring only. */
import { CloudFrontClient } from '@aws-sdk/client-cloudfront';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { createS3Client } from '../adapters/s3-store.ts';
import { PUBLISHERS_FILE, readFunctionConfig } from './env.ts';
import { createRefreshHandler } from './handlers.ts';
import { jsonLogger } from './logger.ts';
import { cachedSigner } from './secrets.ts';

const config = readFunctionConfig(process.env, new URL(`./${PUBLISHERS_FILE}`, import.meta.url));

export const handler = createRefreshHandler({
  config,
  s3: createS3Client(config.s3Endpoint),
  cloudfront: new CloudFrontClient({}),
  signer: cachedSigner(new SecretsManagerClient({}), config.signingKeySecretId),
  logger: jsonLogger('plugindex-refresh'),
});
