/**
 * CloudFront invalidation after a rebuild: only the mutable paths the pipeline rewrote (BatchResult's
 * `invalidate`), never immutable files. CloudFront takes at most 1,000 paths per request and charges per
 * path beyond the free tier, so a larger set becomes one wildcard. While too many invalidations are in
 * flight (TooManyInvalidationsInProgress), CloudFront throttles, or it fails on its side (a 5xx), the request
 * is retried with exponential backoff.
 */

import { type CloudFrontClient, CreateInvalidationCommand } from '@aws-sdk/client-cloudfront';
import { sha256Hex } from '../index-builder/digest.ts';
import { AwsAdapterError } from './errors.ts';

export interface InvalidationOptions {
  readonly client: CloudFrontClient;
  readonly distributionId: string;
  /** Paths per request before a wildcard is used instead (CloudFront's limit is 1,000). */
  readonly maxPaths?: number;
  readonly maxAttempts?: number;
  readonly baseDelayMs?: number;
  /** Injected in tests; real time otherwise. */
  readonly sleep?: (ms: number) => Promise<void>;
}

export interface InvalidationResult {
  /** The paths asked for, or `['/*']` when there were too many. */
  readonly paths: readonly string[];
  readonly invalidationId: string | undefined;
  readonly attempts: number;
}

const realSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Why a failed request is worth sending again after a wait, or undefined when it is not (a denial, a bad
 * distribution id). CloudFront's own faults (5xx, the SDK's `$fault: 'server'`) are: the SDK had sent them
 * three times within a fraction of a second (50 ms is its base delay for them), and the invalidation failed
 * on a blip of CloudFront's API, the edge left serving the documents it cached, and the alarm raised.
 */
function worthWaiting(error: unknown): 'throttled' | 'server' | undefined {
  const { name, $fault } = error as { name?: string; $fault?: string };
  if (name === 'TooManyInvalidationsInProgress' || name === 'Throttling') return 'throttled';
  if ($fault === 'server') return 'server';
  return undefined;
}

/** Site keys to CloudFront paths; the home page is also cached as `/`. */
export function pathsFor(keys: readonly string[]): string[] {
  const paths = new Set<string>();
  for (const key of keys) {
    paths.add(`/${key.split('/').map(encodeURIComponent).join('/')}`);
    if (key === 'index.html') paths.add('/');
  }
  return [...paths].sort();
}

/** Invalidates the given site keys; nothing to do for an empty list. */
export async function invalidateKeys(
  keys: readonly string[],
  options: InvalidationOptions,
): Promise<InvalidationResult> {
  if (keys.length === 0) return { paths: [], invalidationId: undefined, attempts: 0 };
  const maxPaths = options.maxPaths ?? 1000;
  const all = pathsFor(keys);
  const paths = all.length > maxPaths ? ['/*'] : all;
  const maxAttempts = options.maxAttempts ?? 6;
  const baseDelay = options.baseDelayMs ?? 1000;
  const sleep = options.sleep ?? realSleep;
  // One reference for all attempts of this call: if a response is lost and the request retried, CloudFront
  // recognises it and does not start a second invalidation.
  const callerReference = sha256Hex(`${Date.now()}\n${paths.join('\n')}`).slice(0, 32);
  for (let attempt = 1; ; attempt++) {
    try {
      const response = await options.client.send(
        new CreateInvalidationCommand({
          DistributionId: options.distributionId,
          InvalidationBatch: {
            CallerReference: callerReference,
            Paths: { Quantity: paths.length, Items: paths },
          },
        }),
      );
      return { paths, invalidationId: response.Invalidation?.Id, attempts: attempt };
    } catch (error) {
      const why = worthWaiting(error);
      if (!why) {
        throw new AwsAdapterError(
          'INVALIDATION_FAILED',
          `CloudFront invalidation failed: ${(error as Error).message}`,
          { cause: error },
        );
      }
      if (attempt >= maxAttempts) {
        throw why === 'throttled'
          ? new AwsAdapterError(
              'INVALIDATION_THROTTLED',
              `CloudFront still throttling after ${attempt} attempts`,
              {
                cause: error,
              },
            )
          : new AwsAdapterError(
              'INVALIDATION_FAILED',
              `CloudFront invalidation failed on CloudFront's side ${attempt} times: ${(error as Error).message}`,
              { cause: error },
            );
      }
      // Exponential backoff with full jitter, so concurrent publishers spread out.
      await sleep(Math.round(Math.random() * baseDelay * 2 ** (attempt - 1)));
    }
  }
}
