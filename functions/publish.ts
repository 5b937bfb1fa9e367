/**
 * Lambda entry point of the publish function: wiring only. Clients are built once per container; the
 * signing key is fetched from Secrets Manager on the first invocation and kept in memory.
 */
import { CloudFrontClient } from '@aws-sdk/client-cloudfront';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { createSqsClient } from '../adapters/publish-queue.ts';
import { createS3Client } from '../adapters/s3-store.ts';
import { PUBLISHERS_FILE, readFunctionConfig } from './env.ts';
import {
  createPublishHandler,
  type InvocationTime,
  type PublishResponse,
  publishResponse,
} from './handlers.ts';
import { jsonLogger } from './logger.ts';
import { cachedSigner } from './secrets.ts';

const config = readFunctionConfig(process.env, new URL(`./${PUBLISHERS_FILE}`, import.meta.url));

const publish = createPublishHandler({
  config,
  s3: createS3Client(config.s3Endpoint),
  cloudfront: new CloudFrontClient({}),
  signer: cachedSigner(new SecretsManagerClient({}), config.signingKeySecretId),
  logger: jsonLogger('plugindex-publish'),
  // Built here like the others, not imported lazily: the bundle is one file per function, so an import() of
  // it made the bundle larger still (37 KB against 27 KB), to save only its modules' evaluation. Its requests
  // time out (createSqsClient): a hung one ran into the function's timeout.
  sqs: createSqsClient(),
});

/**
 * The invocation's answer is counts and the first outcomes (`publishResponse`), never the whole result:
 * Lambda fails an invocation whose response passes 6 MB, after everything in it was done. The runtime's
 * context tells the rounds the time left (no round is started that the timeout would cut off); for an SQS
 * batch the answer names the messages whose uploads were left in incoming/ (`batchItemFailures`: the event
 * source mapping reports batch item failures), which come back to wake a later invocation: at once, their
 * visibility set to 0 on the queue the stack names (`PUBLISH_QUEUE_URL`).
 */
export const handler = async (event: unknown, context?: InvocationTime): Promise<PublishResponse> =>
  publishResponse(await publish(event, context));
