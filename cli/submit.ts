/**
 * The one way a command submits something to a registry, a bundle (`publish`) or a signed action (`yank`,
 * `deprecate`, ..., `submit`): put under `incoming/` like any upload, then its recorded outcome read back.
 * Locally (`--registry DIR`) the pipeline runs at once on that one upload, under the registry's lock: in the
 * server running on the registry when there is one (`plugindex serve`, cli/local/submission-socket.ts),
 * else in this process. On a deployed registry (`--bucket NAME`) it is uploaded to the upload bucket and the
 * outcome the publish function records under `status/<id>.json` is waited for. Every submitter prints the
 * outcome and exits the same way: 0 accepted or already published, 1 rejected or no outcome in time, 2 a
 * usage error.
 */

import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import {
  INCOMING_PREFIX,
  INDEX_DOCUMENTS,
  STREAM_THRESHOLD_BYTES,
  statusKey,
  submissionIdsOf,
} from '../index-builder/layout.ts';
import type { SubmissionOutcome } from '../index-builder/pipeline/index.ts';
import { CACHE_PRIVATE } from '../index-builder/store.ts';
import { type Parsed, stringOption } from './args.ts';
import { CliError, usage } from './errors.ts';
import { serviceUrlOption } from './inputs.ts';
import { describeOutcome, outJson } from './output.ts';
import type { UploadBody } from './remote.ts';
import { err, out } from './terminal.ts';

/** Where a submission goes. */
export type SubmitTarget =
  | { readonly kind: 'registry'; readonly dir: string }
  | {
      readonly kind: 'bucket';
      readonly bucket: string;
      readonly endpoint?: string;
      /** How long to wait for the outcome. */
      readonly timeoutSeconds: number;
    };

/** What is submitted: a name for its upload key, its content type, and its bytes or file. */
export interface Submission {
  /** Made safe and put after the time and a nonce in the upload's key (`incoming/<time>-<nonce>-<name>`). */
  readonly name: string;
  readonly contentType: string;
  readonly body: UploadBody;
}

export const DEFAULT_TIMEOUT_SECONDS = 120;

/**
 * `--registry DIR` or `--bucket NAME [--endpoint URL] [--timeout SECONDS]`, exactly one.
 * @throws CliError USAGE for both, neither, or a timeout that is not a number of seconds.
 */
export function submitTarget(parsed: Parsed): SubmitTarget {
  const dir = stringOption(parsed, 'registry');
  const bucket = stringOption(parsed, 'bucket');
  if ((dir === undefined) === (bucket === undefined))
    throw usage('give exactly one of --registry DIR or --bucket NAME');
  if (dir !== undefined) {
    refuseBucketOptions(parsed, ['endpoint', 'timeout']);
    return { kind: 'registry', dir };
  }
  const endpoint = serviceUrlOption(parsed, 'endpoint');
  return {
    kind: 'bucket',
    bucket: bucket as string,
    ...(endpoint ? { endpoint } : {}),
    timeoutSeconds: timeoutOption(parsed),
  };
}

/**
 * A usage error for an option of the upload bucket (`--endpoint`, `--timeout`) given where nothing goes to
 * one: a local registry (its outcome is there at once), an action written with `--output`. Taken and ignored,
 * `--timeout 5` read as a bound that was not kept, and `--endpoint` as a registry that was not the one written.
 */
export function refuseBucketOptions(parsed: Parsed, names: readonly string[]): void {
  for (const name of names)
    if (stringOption(parsed, name) !== undefined) throw usage(`--${name} is for --bucket UPLOAD_BUCKET`);
}

function timeoutOption(parsed: Parsed): number {
  const raw = stringOption(parsed, 'timeout');
  if (raw === undefined) return DEFAULT_TIMEOUT_SECONDS;
  const timeout = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(timeout) || timeout < 0)
    throw usage(`--timeout must be a number of seconds, found ${raw}`);
  return timeout;
}

/** A fresh, safe key under incoming/: the time, a nonce, and the name made safe. */
function uploadKey(name: string): string {
  const time = new Date().toISOString().replace(/[:.]/g, '');
  const safe = path.basename(name).replace(/[^A-Za-z0-9._-]/g, '_');
  return `${INCOMING_PREFIX}${time}-${randomBytes(4).toString('hex')}-${safe}`;
}

async function submitLocally(dir: string, key: string, submission: Submission): Promise<SubmissionOutcome> {
  // A server running on the registry (`plugindex serve`) publishes it warm: no pipeline loaded here.
  const handedOver = await submitToService(dir, key, submission);
  if (handedOver) return handedOver;
  // The index documents a publish merges into are read while the pipeline's modules load: this thread is
  // busy compiling for a fifth of a second, and the pool's threads would be idle. Read before the lock, but
  // the store hands them over only while each file is still the one read.
  const { openSite } = await import('./local/site.ts');
  const site = openSite(dir);
  void site.readAhead(INDEX_DOCUMENTS, STREAM_THRESHOLD_BYTES);
  const { withOpenRegistry } = await import('./local/registry.ts');
  const { processSubmissions } = await import('../index-builder/pipeline/index.ts');
  // Opened under the lock: a rotate-key that held it may have replaced the key this would sign with.
  const result = await withOpenRegistry(
    dir,
    async (registry) => {
      const put = { contentType: submission.contentType, cacheControl: CACHE_PRIVATE };
      const { body } = submission;
      if ('file' in body) await registry.context.intake.putStream(key, createReadStream(body.file), put);
      else await registry.context.intake.put(key, body.bytes, put);
      return processSubmissions(registry.context, [key]);
    },
    { site },
  );
  const outcome = result.outcomes[0];
  if (!outcome) throw new Error('the pipeline recorded no outcome');
  return outcome;
}

/** Uploads up to this size (8 MiB) are read whole when handed to a running server. */
const WHOLE_UPLOAD_BYTES = 8 << 20;

/**
 * Hands the submission to the server running on the registry, if one is (cli/local/submission-socket.ts):
 * puts the upload under incoming/ as any submitter does, sends its key and digest, and returns the outcome
 * the server recorded. Undefined when no server listens.
 */
async function submitToService(
  dir: string,
  key: string,
  submission: Submission,
): Promise<SubmissionOutcome | undefined> {
  // Loaded side by side, while the connection is made: each import is a turn of the loader of its own.
  const modules = Promise.all([import('../adapters/fs-store.ts'), import('../index-builder/digest.ts')]);
  modules.catch(() => {}); // awaited below, unless no server answers
  const { connectToService, requestOutcome, serviceGone } = await import('./local/submission-socket.ts');
  const connection = await connectToService(dir);
  if (!connection) return undefined;
  // Nothing is read from it until the request is sent; a failure meanwhile (the server gone) is seen then.
  connection.on('error', () => {});
  try {
    const [{ FsStore }, { sha256Hex, streamSha256 }] = await modules;
    const { body } = submission;
    // A bundle is usually small: read once, hashed and put from the same bytes (two streams over the file
    // cost this command about 10 ms of its 170). A large one is streamed, twice.
    const file = 'file' in body ? body.file : undefined;
    const bytes =
      file === undefined
        ? (body as { bytes: Uint8Array }).bytes
        : (await stat(file)).size <= WHOLE_UPLOAD_BYTES
          ? await readFile(file)
          : undefined;
    // The digest names the outcome, should the server find the upload already taken by its own batch.
    const sha256 = bytes ? sha256Hex(bytes) : await streamSha256(createReadStream(file as string));
    const put = { contentType: submission.contentType, cacheControl: CACHE_PRIVATE };
    const intake = new FsStore(dir);
    if (bytes) await intake.put(key, bytes, put);
    else await intake.putStream(key, createReadStream(file as string), put);
    // The server closes a connection whose request is slow to come (a large upload is slow to hash and put
    // here), or it is gone: ask on a new connection, or say it is gone, the upload staying in incoming/.
    if (!connection.destroyed) return await requestOutcome(connection, { key, sha256 });
    const again = await connectToService(dir);
    if (!again) throw serviceGone(key, 'went away before it was asked');
    try {
      return await requestOutcome(again, { key, sha256 });
    } finally {
      again.destroy();
    }
  } finally {
    connection.destroy();
  }
}

async function submitToBucket(
  target: Extract<SubmitTarget, { kind: 'bucket' }>,
  key: string,
  submission: Submission,
): Promise<SubmissionOutcome> {
  const { sha256Hex, streamSha256 } = await import('../index-builder/digest.ts');
  const remote = await import('./remote.ts');
  const { body } = submission;
  // The upload's key and digest name the outcome to wait for, as the pipeline names it: by its bytes, or by
  // its key and the ETag S3 gave it should the registry judge it unread (UPLOAD_UNREADABLE, BUNDLE_TOO_LARGE).
  const sha256 = 'file' in body ? await streamSha256(createReadStream(body.file)) : sha256Hex(body.bytes);
  const { outcome, outcomeKeys } = await remote.submitToBucket({
    bucket: target.bucket,
    key,
    body,
    contentType: submission.contentType,
    outcomeKeys: (etag) => submissionIdsOf(key, sha256, etag).map(statusKey),
    timeoutSeconds: target.timeoutSeconds,
    ...(target.endpoint ? { endpoint: target.endpoint } : {}),
    log: err,
  });
  // No outcome in time is a failure like any other (exit 1): under --json it was an empty stdout, which a
  // program could not tell from a crash, nor learn from where to read the outcome later.
  if (!outcome)
    throw new CliError(
      'OUTCOME_TIMEOUT',
      `submitted s3://${target.bucket}/${key}; no outcome after ${target.timeoutSeconds} s: read ${outcomeKeys.join(' or ')} later`,
      { detail: { bucket: target.bucket, upload_key: key, status_keys: outcomeKeys } },
    );
  return outcome;
}

/**
 * Submits and returns the outcome the registry recorded.
 * @throws CliError NOT_A_REGISTRY / LOCKED for a local registry, OUTCOME_TIMEOUT (naming the status keys to
 *   read later) for none recorded in a bucket's time; StoreError when a store fails.
 */
export async function submit(target: SubmitTarget, submission: Submission): Promise<SubmissionOutcome> {
  const key = uploadKey(submission.name);
  return target.kind === 'registry'
    ? submitLocally(target.dir, key, submission)
    : submitToBucket(target, key, submission);
}

/** Prints the outcome (`--json`: the outcome record itself) and returns the exit code. */
export function reportOutcome(parsed: Parsed, outcome: SubmissionOutcome): number {
  if (parsed.values.json) outJson(outcome);
  else for (const line of describeOutcome(outcome)) out(line);
  return outcome.status === 'rejected' ? 1 : 0;
}
