/**
 * A real S3 endpoint for tests: s3rver on 127.0.0.1, started by the test, with its data in a temp folder.
 * The client options are the ones s3rver needs: path-style addressing, fixed credentials, and checksums
 * only when required (s3rver corrupts streamed PUTs that carry the SDK's default trailing checksums).
 * Its PUTs are made whole before they are seen, as S3's are (`putsWhole`).
 */
import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import type { SQSClient } from '@aws-sdk/client-sqs';
import S3rver, { type S3rverStore } from 's3rver';
import type { FunctionConfig } from '../../functions/env.ts';
import { createPublishHandler, type InvocationTime, type PublishResult } from '../../functions/handlers.ts';
import type { Logger } from '../../functions/logger.ts';
import { createSigner } from '../../index-builder/signing.ts';
import { testKey } from './fixtures.ts';

/**
 * The credentials and checksum settings an AWS SDK client reads from the environment, as with AWS: what the
 * CLI and the bundled functions need to reach the local S3 (s3rver's own credentials).
 */
export const LOCAL_S3_ENV = {
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'S3RVER',
  AWS_SECRET_ACCESS_KEY: 'S3RVER',
  AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
  AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
} as const;

export interface LocalS3 {
  readonly endpoint: string;
  readonly client: S3Client;
  /** What `client` was made with, for a test that needs a client of its own. */
  readonly config: S3ClientConfig;
  /** The folder s3rver keeps its buckets in. */
  readonly directory: string;
  close(): Promise<void>;
}

export async function startLocalS3(buckets: readonly string[]): Promise<LocalS3> {
  const directory = await mkdtemp(path.join(tmpdir(), 'plugindex-s3rver-'));
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    configureBuckets: buckets.map((name) => ({ name })),
  });
  putsWhole(server.store);
  bucketConfigsKept(server.store);
  unlogged(server);
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  const config: S3ClientConfig = {
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  };
  const client = new S3Client(config);
  return {
    endpoint,
    client,
    config,
    directory,
    async close() {
      client.destroy();
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/**
 * s3rver, silent or not, runs every request through koa-logger, which formats a line (colours and all) for
 * the request and its response and hands them to a logger told to print nothing: about 3% of the CPU time
 * of a publish on it. Silent, the line is never made. Its own logger (`ctx.logger`, for what goes wrong)
 * stays.
 */
function unlogged(server: S3rver): void {
  const middleware = (server as unknown as { middleware: { name: string }[] }).middleware;
  if (middleware[0]?.name !== 'logger')
    throw new Error("s3rver's first middleware is no logger: unlogged needs a look");
  middleware.shift();
}

/**
 * s3rver looks for each request's bucket CORS and website configurations in files of their own
 * (`getSubresource`), which no test's bucket has: two failed opens a request, each an ENOENT error made
 * with its stack, about a fifth of the CPU time of a publish on it (12 publishes of one plugin took
 * 3.8-4.0 s of CPU without this, 2.8-3.3 s with it). A bucket's are kept once read, and forgotten when any
 * configuration or bucket is written or deleted, through s3rver's store as every request goes. An
 * object's own (its tagging) is read each time, as before. So is the bucket itself (`getBucket`, a stat of
 * its folder every request makes first, about 4% of a publish's CPU time): no test makes or removes a
 * bucket's folder other than through the store.
 */
function bucketConfigsKept(store: S3rverStore): void {
  const kept = new Map<string, Promise<unknown>>();
  const getBucket = store.getBucket.bind(store);
  store.getBucket = (bucket) => {
    // Under its name alone: a configuration's has a slash in it, which no bucket's name has.
    let found = kept.get(bucket);
    if (!found) {
      found = getBucket(bucket);
      kept.set(bucket, found);
      found.catch(() => kept.delete(bucket));
    }
    return found;
  };
  const getSubresource = store.getSubresource.bind(store);
  store.getSubresource = (bucket, key, type) => {
    if (key !== undefined) return getSubresource(bucket, key, type);
    const name = `${bucket}/${type}`;
    let config = kept.get(name);
    if (!config) {
      config = getSubresource(bucket, key, type);
      kept.set(name, config);
      config.catch(() => kept.delete(name));
    }
    return config;
  };
  const writers = store as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  for (const method of ['putSubresource', 'deleteSubresource', 'putBucket', 'deleteBucket', 'reset']) {
    const original = writers[method]?.bind(store);
    if (!original) throw new Error(`s3rver's store has no ${method}: bucketConfigsKept needs a look`);
    writers[method] = async (...args: unknown[]) => {
      kept.clear();
      try {
        return await original(...args);
      } finally {
        kept.clear();
      }
    };
  }
}

/**
 * s3rver's filesystem store writes a PUT's body into the object's own file, truncated first, and answers
 * once the body has passed its hashing, before the file is written: a read during the PUT, or just after it
 * on a loaded machine, found the object empty or short (CI read `state/log.json` so: "Unexpected end of JSON
 * input"). S3 shows a PUT whole once it has answered, and the old object until then. So here the body goes
 * to a temp file beside the object (a name s3rver's listing passes over), renamed over it once written.
 */
function putsWhole(store: S3rverStore): void {
  store.putObject = async (object) => {
    const objectPath = store.getResourcePath(object.bucket, object.key, 'object');
    await mkdir(path.dirname(objectPath), { recursive: true });
    const temp = `${objectPath}.${randomUUID()}.put`;
    const md5 = createHash('md5');
    let size = 0;
    const hashing = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        md5.update(chunk);
        size += chunk.length;
        callback(null, chunk);
      },
    });
    const body = Buffer.isBuffer(object.content) ? Readable.from([object.content]) : object.content;
    try {
      await pipeline(body, hashing, createWriteStream(temp));
      await rename(temp, objectPath);
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
    const digest = md5.digest('hex');
    await store.putMetadata(object.bucket, object.key, object.metadata, digest);
    return { size, md5: digest };
  };
}

/**
 * A publish function's settings as its environment gives them (functions/env.ts), over buckets of a test's
 * own: the secret's and config object's usual names, a distribution to invalidate, nothing else set.
 */
export function functionConfig(
  intakeBucket: string,
  siteBucket: string,
  overrides: Partial<FunctionConfig> = {},
): FunctionConfig {
  return {
    intakeBucket,
    siteBucket,
    signingKeySecretId: 'plugindex/signing-key',
    configKey: 'config/plugindex.json',
    distributionId: 'E2EXAMPLE',
    s3Endpoint: undefined,
    defaults: {},
    publishers: undefined,
    operators: undefined,
    snapshotRefreshSeconds: undefined,
    ...overrides,
  };
}

/**
 * The publish function over two buckets of a local S3, signing with the test registry key, logging nowhere;
 * its requests sent by `client` (by default the local S3's own).
 */
export async function localPublishHandler(
  s3: LocalS3,
  intakeBucket: string,
  siteBucket: string,
  client: S3Client = s3.client,
  options: {
    readonly maxBatchBytes?: number;
    readonly maxCompressedBytes?: number;
    readonly maxBatchUploads?: number;
    readonly logger?: Logger;
    /** An SQS client (a test's mock: SQS cannot run here) and its queue, where messages are made visible. */
    readonly sqs?: SQSClient;
    readonly queueUrl?: string;
  } = {},
): Promise<(event: unknown, time?: InvocationTime) => Promise<PublishResult>> {
  const signer = await createSigner((await testKey('registry')).secretKey);
  const { queueUrl, ...deps } = options;
  return createPublishHandler({
    config: functionConfig(intakeBucket, siteBucket, {
      signingKeySecretId: 'unused',
      distributionId: undefined,
      ...(queueUrl !== undefined ? { queueUrl } : {}),
    }),
    s3: client,
    cloudfront: undefined as never, // no distribution configured: never called
    signer: async () => signer,
    logger: { info: () => {}, warn: () => {}, error: () => {} },
    ...deps,
  });
}

/**
 * The environment a bundled function reads on Lambda, pointing at a local S3 and a fake Secrets Manager
 * (the signing key under `plugindex/signing-key`): set on this worker process, the function's "container".
 */
export function setBundledFunctionEnv(options: {
  readonly s3: LocalS3;
  readonly secretsEndpoint: string;
  readonly intakeBucket: string;
  readonly siteBucket: string;
}): void {
  Object.assign(process.env, {
    INTAKE_BUCKET: options.intakeBucket,
    SITE_BUCKET: options.siteBucket,
    SIGNING_KEY_SECRET_ID: 'plugindex/signing-key',
    S3_ENDPOINT: options.s3.endpoint,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: options.secretsEndpoint,
    ...LOCAL_S3_ENV,
  });
}

/**
 * One SQS record as the queue delivers an upload's notification: EventBridge's "Object Created" for `key` in
 * `bucket` (what the publish function reads in functions/events.ts), with `messageId`.
 */
export function objectCreatedRecord(bucket: string, key: string, messageId = key) {
  return {
    messageId,
    eventSource: 'aws:sqs',
    body: JSON.stringify({
      version: '0',
      'detail-type': 'Object Created',
      source: 'aws.s3',
      detail: { version: '0', bucket: { name: bucket }, object: { key, size: 1 }, reason: 'PutObject' },
    }),
  };
}
