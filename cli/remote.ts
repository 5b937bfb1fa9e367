/**
 * Publishing to a deployed registry: upload the bundle to the upload bucket's incoming/ folder, then wait
 * for the publish function to record its outcome under status/<submission id>.json. The caller names that
 * key the way the pipeline does, from the upload's key and bytes.
 */

import { createReadStream } from 'node:fs';
import { createS3Client, S3Store } from '../adapters/s3-store.ts';
import type { SubmissionOutcome } from '../index-builder/pipeline/index.ts';
import { CACHE_PRIVATE } from '../index-builder/store.ts';

export async function publishToBucket(options: {
  readonly bucket: string;
  readonly key: string;
  /** The bundle file, uploaded as a stream (multipart when large). */
  readonly file: string;
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
    await store.putStream(options.key, createReadStream(options.file), {
      contentType: 'application/gzip',
      cacheControl: CACHE_PRIVATE,
    });
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
