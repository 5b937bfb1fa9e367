/**
 * CloudFront cannot run here: these tests use aws-sdk-client-mock, a named SDK mock, and check the requests
 * the invalidator makes (paths, batching into a wildcard, backoff).
 */
import {
  CloudFrontClient,
  CloudFrontServiceException,
  CreateInvalidationCommand,
  TooManyInvalidationsInProgress,
} from '@aws-sdk/client-cloudfront';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { invalidateKeys, pathsFor } from '../../functions/cloudfront-invalidator.ts';
import { AwsAdapterError } from '../../functions/errors.ts';

const cloudfront = mockClient(CloudFrontClient);
const client = new CloudFrontClient({ region: 'us-east-1' });
const sleeps: number[] = [];
const sleep = async (ms: number): Promise<void> => {
  sleeps.push(ms);
};
const throttled = () => new TooManyInvalidationsInProgress({ message: 'slow down', $metadata: {} });

beforeEach(() => {
  cloudfront.reset();
  sleeps.length = 0;
});

describe('when a rebuild changed some documents', () => {
  it('invalidates exactly those paths in one request', async () => {
    cloudfront.on(CreateInvalidationCommand).resolves({
      Invalidation: {
        Id: 'I1',
        Status: 'InProgress',
        CreateTime: new Date(),
        InvalidationBatch: undefined,
      },
    });
    const result = await invalidateKeys(['index.json', 'index.json.asc', 'plugins/a/index.json'], {
      client,
      distributionId: 'D1',
      sleep,
    });
    expect(result).toMatchObject({
      invalidationId: 'I1',
      attempts: 1,
      paths: ['/index.json', '/index.json.asc', '/plugins/a/index.json'],
    });
    const calls = cloudfront.commandCalls(CreateInvalidationCommand);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.args[0].input).toMatchObject({
      DistributionId: 'D1',
      InvalidationBatch: {
        Paths: { Quantity: 3, Items: ['/index.json', '/index.json.asc', '/plugins/a/index.json'] },
      },
    });
  });

  it('also invalidates / when the home page changed, and encodes odd characters', () => {
    expect(pathsFor(['index.html', 'plugins/a/1.0.0+build/x'])).toEqual([
      '/',
      '/index.html',
      '/plugins/a/1.0.0%2Bbuild/x',
    ]);
  });

  it('does nothing when nothing changed', async () => {
    await expect(invalidateKeys([], { client, distributionId: 'D1', sleep })).resolves.toMatchObject({
      attempts: 0,
    });
    expect(cloudfront.commandCalls(CreateInvalidationCommand)).toHaveLength(0);
  });

  it('uses one wildcard instead of more than 1,000 paths', async () => {
    cloudfront.on(CreateInvalidationCommand).resolves({});
    const keys = Array.from({ length: 1001 }, (_, i) => `plugins/p${i}/index.json`);
    const result = await invalidateKeys(keys, { client, distributionId: 'D1', sleep });
    expect(result.paths).toEqual(['/*']);
    expect(
      cloudfront.commandCalls(CreateInvalidationCommand)[0]?.args[0].input.InvalidationBatch?.Paths,
    ).toEqual({ Quantity: 1, Items: ['/*'] });
  });
});

describe('when CloudFront is busy', () => {
  it('backs off exponentially and retries with the same caller reference', async () => {
    cloudfront
      .on(CreateInvalidationCommand)
      .rejectsOnce(throttled())
      .rejectsOnce(throttled())
      .resolves({
        Invalidation: {
          Id: 'I2',
          Status: 'InProgress',
          CreateTime: new Date(),
          InvalidationBatch: undefined,
        },
      });
    const result = await invalidateKeys(['index.json'], {
      client,
      distributionId: 'D1',
      sleep,
      baseDelayMs: 100,
    });
    expect(result).toMatchObject({ invalidationId: 'I2', attempts: 3 });
    expect(sleeps).toHaveLength(2);
    expect(sleeps[0]).toBeLessThanOrEqual(100);
    expect(sleeps[1]).toBeLessThanOrEqual(200);
    const references = cloudfront
      .commandCalls(CreateInvalidationCommand)
      .map((c) => c.args[0].input.InvalidationBatch?.CallerReference);
    expect(new Set(references).size).toBe(1);
  });

  it('gives up after the last attempt with INVALIDATION_THROTTLED', async () => {
    cloudfront.on(CreateInvalidationCommand).rejects(throttled());
    const failure = invalidateKeys(['index.json'], { client, distributionId: 'D1', sleep, maxAttempts: 3 });
    await expect(failure).rejects.toBeInstanceOf(AwsAdapterError);
    await expect(
      invalidateKeys(['index.json'], { client, distributionId: 'D1', sleep, maxAttempts: 3 }),
    ).rejects.toMatchObject({ code: 'INVALIDATION_THROTTLED' });
  });

  it("backs off and retries CloudFront's own faults (5xx), then fails INVALIDATION_FAILED after the last attempt", async () => {
    // The SDK had already sent each three times within a fraction of a second: a blip of CloudFront's API
    // failed the invalidation at once, leaving the edge serving what it cached and raising the alarm.
    const unavailable = () =>
      new CloudFrontServiceException({
        name: 'ServiceUnavailable',
        message: 'Service Unavailable',
        $fault: 'server',
        $metadata: { httpStatusCode: 503, attempts: 3 },
      });
    cloudfront
      .on(CreateInvalidationCommand)
      .rejectsOnce(unavailable())
      .rejectsOnce(unavailable())
      .resolves({
        Invalidation: {
          Id: 'I3',
          Status: 'InProgress',
          CreateTime: new Date(),
          InvalidationBatch: undefined,
        },
      });
    const options = { client, distributionId: 'D1', sleep, baseDelayMs: 100 };

    await expect(invalidateKeys(['index.json'], options)).resolves.toMatchObject({
      invalidationId: 'I3',
      attempts: 3,
    });
    expect(sleeps).toHaveLength(2);
    const references = cloudfront
      .commandCalls(CreateInvalidationCommand)
      .map((c) => c.args[0].input.InvalidationBatch?.CallerReference);
    expect(new Set(references).size).toBe(1);

    cloudfront.reset();
    sleeps.length = 0;
    cloudfront.on(CreateInvalidationCommand).rejects(unavailable());
    const failure = invalidateKeys(['index.json'], { ...options, maxAttempts: 4 });
    await expect(failure).rejects.toBeInstanceOf(AwsAdapterError);
    await expect(failure).rejects.toMatchObject({
      code: 'INVALIDATION_FAILED',
      cause: expect.objectContaining({ name: 'ServiceUnavailable' }),
    });
    expect(cloudfront.commandCalls(CreateInvalidationCommand)).toHaveLength(4);
    expect(sleeps).toHaveLength(3);
  });

  it('does not retry other failures', async () => {
    cloudfront.on(CreateInvalidationCommand).rejects(new Error('AccessDenied'));
    await expect(
      invalidateKeys(['index.json'], { client, distributionId: 'D1', sleep }),
    ).rejects.toMatchObject({ code: 'INVALIDATION_FAILED' });
    expect(cloudfront.commandCalls(CreateInvalidationCommand)).toHaveLength(1);
  });
});
