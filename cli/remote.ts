/**
 * A deployed registry's upload bucket: a submission (a bundle or a signed action) uploaded to incoming/,
 * then the outcome the publish function records under status/<submission id>.json waited for; and the
 * registry config object read, for the URL an action names. The caller names the outcome key the way the
 * pipeline does, from the upload's key and bytes. Only this module (and the adapters) loads the AWS SDK.
 */

import { createReadStream } from 'node:fs';
import { createS3Client, S3Store } from '../adapters/s3-store.ts';
import { StoreError } from '../index-builder/errors.ts';
import type { SubmissionOutcome } from '../index-builder/pipeline/index.ts';
import { CACHE_PRIVATE } from '../index-builder/store.ts';

/** What is uploaded: a file streamed (a bundle is never read whole), or bytes already in memory. */
export type UploadBody = { readonly file: string } | { readonly bytes: Uint8Array };

export async function submitToBucket(options: {
  readonly bucket: string;
  readonly key: string;
  readonly body: UploadBody;
  readonly contentType: string;
  /** Where the publish function will record the outcome (`status/<submission id>.json`). */
  readonly outcomeKey: string;
  readonly timeoutSeconds: number;
  /** An S3-compatible endpoint (path-style), e.g. a local test server; AWS otherwise. */
  readonly endpoint?: string;
  readonly pollMs?: number;
  readonly log: (line: string) => void;
}): Promise<SubmissionOutcome | undefined> {
  const client = createS3Client(options.endpoint);
  try {
    const store = new S3Store({ client, bucket: options.bucket });
    const put = { contentType: options.contentType, cacheControl: CACHE_PRIVATE };
    if ('file' in options.body) await store.putStream(options.key, createReadStream(options.body.file), put);
    else await store.put(options.key, options.body.bytes, put);
    const { outcomeKey } = options;
    options.log(`uploaded s3://${options.bucket}/${options.key}; waiting for ${outcomeKey}`);
    const deadline = Date.now() + options.timeoutSeconds * 1000;
    for (;;) {
      const status = await store.get(outcomeKey);
      if (status) return JSON.parse(new TextDecoder().decode(status.body)) as SubmissionOutcome;
      if (Date.now() >= deadline) return undefined;
      await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 1000));
    }
  } finally {
    client.destroy();
  }
}

/**
 * An object of the bucket as text, or undefined when it is absent or this caller may not read it (the
 * deployment's publisher policy grants incoming/ and status/ only): the caller then asks for what it needed.
 */
export async function readBucketText(options: {
  readonly bucket: string;
  readonly key: string;
  readonly endpoint?: string;
}): Promise<string | undefined> {
  const client = createS3Client(options.endpoint);
  try {
    const store = new S3Store({ client, bucket: options.bucket });
    try {
      const object = await store.get(options.key);
      return object ? new TextDecoder().decode(object.body) : undefined;
    } catch (error) {
      // Forbidden (HTTP 403, the SDK's error kept as the cause): the same answer as absent. Anything else
      // (the network, a wrong endpoint) is a failure the caller must see.
      const status = (error as { cause?: { $metadata?: { httpStatusCode?: number } } }).cause?.$metadata
        ?.httpStatusCode;
      if (error instanceof StoreError && status === 403) return undefined;
      throw error;
    }
  } finally {
    client.destroy();
  }
}
