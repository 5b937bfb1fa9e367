/**
 * `plugindex publish FILE.tgz`: into a local registry (the pipeline runs once, under the registry's lock)
 * or to a deployed one (the upload bucket; then wait for the outcome the publish function records). The
 * bundle is streamed, never read whole, and only the side asked for is loaded: the AWS SDK for --bucket.
 */

import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { INCOMING_PREFIX, statusKey, submissionIdFromDigest } from '../../index-builder/layout.ts';
import type { SubmissionOutcome } from '../../index-builder/pipeline/index.ts';
import { CACHE_PRIVATE } from '../../index-builder/store.ts';
import { type Parsed, stringOption } from '../args.ts';
import { usage } from '../errors.ts';
import { requireFile } from '../inputs.ts';
import { describeOutcome, outJson } from '../output.ts';
import { err, out } from '../terminal.ts';

/** A fresh, safe key under incoming/: the time, a nonce, and the file's own name made safe. */
function uploadKey(file: string): string {
  const time = new Date().toISOString().replace(/[:.]/g, '');
  const name = path.basename(file).replace(/[^A-Za-z0-9._-]/g, '_');
  return `${INCOMING_PREFIX}${time}-${randomBytes(4).toString('hex')}-${name}`;
}

async function publishLocally(dir: string, key: string, file: string): Promise<SubmissionOutcome> {
  const { withOpenRegistry } = await import('../local/registry.ts');
  const { processSubmissions } = await import('../../index-builder/pipeline/index.ts');
  const result = await withOpenRegistry(dir, async (registry) => {
    await registry.context.intake.putStream(key, createReadStream(file), {
      contentType: 'application/gzip',
      cacheControl: CACHE_PRIVATE,
    });
    return processSubmissions(registry.context, [key]);
  });
  const outcome = result.outcomes[0];
  if (!outcome) throw new Error('the pipeline recorded no outcome');
  return outcome;
}

async function publishToBucket(parsed: Parsed, bucket: string, key: string, file: string) {
  const timeout = Number(stringOption(parsed, 'timeout') ?? '120');
  if (!Number.isFinite(timeout) || timeout < 0) throw usage('--timeout must be a number of seconds');
  const endpoint = stringOption(parsed, 'endpoint');
  const { streamSha256 } = await import('../../index-builder/digest.ts');
  const remote = await import('../remote.ts');
  // The upload's key and digest name the outcome to wait for, as the pipeline names it.
  const outcomeKey = statusKey(submissionIdFromDigest(key, await streamSha256(createReadStream(file))));
  const outcome = await remote.publishToBucket({
    bucket,
    key,
    file,
    outcomeKey,
    timeoutSeconds: timeout,
    ...(endpoint ? { endpoint } : {}),
    log: err,
  });
  if (!outcome) {
    err(`submitted s3://${bucket}/${key}; no outcome after ${timeout} s: read ${outcomeKey} later`);
  }
  return outcome;
}

export async function run(parsed: Parsed): Promise<number> {
  const file = parsed.positionals[0];
  if (!file || parsed.positionals.length > 1) throw usage('publish takes exactly one FILE');
  const dir = stringOption(parsed, 'registry');
  const bucket = stringOption(parsed, 'bucket');
  if ((dir === undefined) === (bucket === undefined))
    throw usage('give exactly one of --registry DIR or --bucket NAME');
  await requireFile(file);
  const key = uploadKey(file);
  const outcome =
    dir !== undefined
      ? await publishLocally(dir, key, file)
      : await publishToBucket(parsed, bucket as string, key, file);
  if (!outcome) return 1;
  if (parsed.values.json) outJson(outcome);
  else for (const line of describeOutcome(outcome)) out(line);
  return outcome.status === 'rejected' ? 1 : 0;
}
