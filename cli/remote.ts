/**
 * Publishing to a deployed registry: upload the bundle to the upload bucket's incoming/ folder, then wait
 * for the publish function to record its outcome under status/<submission id>.json. The id is computed the
 * way the pipeline computes it, from the key and the bytes, so the command knows where to look.
 */
import { createReadStream } from 'node:fs';
import { S3Client } from '@aws-sdk/client-s3';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { REBUILD_REQUEST } from '../functions/events.ts';
import { S3Store } from '../functions/s3-store.ts';
import { statusKey, submissionIdFromDigest } from '../index-builder/layout.ts';
import type { SubmissionOutcome } from '../index-builder/pipeline/index.ts';

export async function publishToBucket(options: {
  readonly bucket: string;
  readonly key: string;
  /** The bundle file, uploaded as a stream (multipart when large). */
  readonly file: string;
  /** Its SHA-256 (hex), which names the outcome to wait for. */
  readonly sha256: string;
  readonly timeoutSeconds: number;
  /** An S3-compatible endpoint (path-style), e.g. a local test server; AWS otherwise. */
  readonly endpoint?: string;
  readonly pollMs?: number;
  readonly log: (line: string) => void;
}): Promise<SubmissionOutcome | undefined> {
  const client = new S3Client(options.endpoint ? { endpoint: options.endpoint, forcePathStyle: true } : {});
  try {
    const store = new S3Store({ client, bucket: options.bucket });
    await store.putStream(options.key, createReadStream(options.file), {
      contentType: 'application/gzip',
      cacheControl: 'no-store',
    });
    const outcomeKey = statusKey(submissionIdFromDigest(options.key, options.sha256));
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
 * Asks the deployed publish function for a full rebuild by queueing a message in the submission queue's
 * single message group, so it runs after (never alongside) the publishes already waiting.
 */
export async function requestRebuild(queueUrl: string): Promise<string | undefined> {
  const client = new SQSClient({});
  try {
    const response = await client.send(
      new SendMessageCommand({
        QueueUrl: queueUrl,
        MessageBody: JSON.stringify(REBUILD_REQUEST),
        MessageGroupId: 'publish',
        // Each request is its own: the queue's content-based deduplication would merge two within 5 minutes.
        MessageDeduplicationId: `rebuild-${Date.now()}`,
      }),
    );
    return response.MessageId;
  } finally {
    client.destroy();
  }
}
