/**
 * The core's Store over Amazon S3 (@aws-sdk/client-s3): the AWS deployment's intake and site buckets, used
 * by the functions and by the CLI's remote publish. Only adapters/ and functions/ import the AWS SDK. SDK
 * failures are translated to the core's StoreError at the call site, the original kept as `cause`; a
 * missing object is `undefined`, as the Store interface says.
 *
 * @example
 * const site = new S3Store({ client: new S3Client({}), bucket: 'my-registry-site' });
 * await processSubmissions({ intake, site, signer, clock: systemClock, config });
 */

import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  ChecksumAlgorithm,
  type CompletedPart,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
  S3ServiceException,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { StoreError } from '../index-builder/errors.ts';
import { keyProblem } from '../index-builder/layout.ts';
import {
  type DeleteOptions,
  type GetOptions,
  type ListedObject,
  type ObjectInfo,
  type PutOptions,
  type Store,
  type StoredObject,
  type StoredStream,
  tooLargeToGet,
} from '../index-builder/store.ts';
import { hasLoneSurrogate } from '../index-builder/text.ts';

export interface S3StoreOptions {
  readonly client: S3Client;
  readonly bucket: string;
  /** Prepended to every key, e.g. `registry/` to share a bucket; empty by default. */
  readonly prefix?: string;
  /** Bodies at least this large go up as multipart uploads (S3 takes at most 5 GiB in one PUT). */
  readonly multipartThresholdBytes?: number;
  /** The part size of multipart uploads (8 MiB by default; S3's least is 5 MiB, the last part aside). */
  readonly partSizeBytes?: number;
  /**
   * Parts of one streamed upload (`putStream`) on the wire at once (1 by default): it holds one more part
   * buffer than that, whatever the body's size.
   */
  readonly streamPartsInFlight?: number;
  /** Keys per ListObjectsV2 page (S3's maximum is 1,000); smaller in tests to exercise pagination. */
  readonly pageSize?: number;
  /**
   * Waits before a conditional request S3 answered 409 ConditionalRequestConflict is sent again, `attempt`
   * being the attempt that was answered so (1 for the first): `conflictBackoffMs` by default. Tests pass one
   * that records and does not sleep.
   */
  readonly conflictDelay?: (attempt: number) => Promise<void>;
}

/** `put` and `putStream` options only S3 takes. */
export interface S3PutOptions extends PutOptions {
  /**
   * Write only where no object is (`If-None-Match: *`, checked by S3 as part of the write): a publisher's
   * upload into a bucket other publishers write to never replaces one waiting there, and a deployment's
   * publisher policy refuses an upload without it. An object there fails with `STORE_EXISTS`, unchanged,
   * at once; when the SDK had sent the write before, its answer lost, the object may be that attempt's
   * (`mayBeOwnWrite`). A write S3 answers 409 ConditionalRequestConflict (another request on the key raced it, and S3
   * says to retry) is sent again after a short backoff by `put` and `putStreamFrom`, which can send the body
   * again; `putStream`, whose body is read once, fails STORE_IO.
   */
  readonly createOnly?: boolean;
  /**
   * Told the ETag S3 gave the object written (its PUT's or its multipart completion's answer), once it is
   * written: what names an upload's outcome should the registry be unable to read it, which its uploader,
   * who may not read `incoming/`, learns from this answer alone (`unreadableSubmissionId`).
   */
  readonly onWritten?: (etag: string) => void;
  /**
   * Told, before the write is answered, the ETag S3 gives an object of the bytes sent when it stores them
   * unencrypted or under its own keys (SSE-S3, as the upload bucket does and its policy holds publishers to):
   * the MD5 of a single PUT's body, or for a multipart upload the MD5 of its parts' MD5s (their ETags), and
   * their count. The one way to that ETag when the answer carrying it is lost and the resend met the object
   * (`mayBeOwnWrite`): `onWritten` is then never told, and the uploader may not read `incoming/`.
   */
  readonly onSent?: (etag: string) => void;
}

/**
 * How the S3 clients the product builds send again a request S3 throttled (503 SlowDown), failed (500
 * InternalError, 503) or let time out (RequestTimeout), by the SDK's own standard retry mode (its backoff,
 * exponential with full jitter and a second as the base for a throttle, and its retry quota, which stops
 * retries through an outage). Set in code, so `AWS_MAX_ATTEMPTS` and `AWS_RETRY_MODE` do not change them.
 * - `batch`: the publish function and the commands. A batch writes tens of thousands of objects (an import
 *   of 10,000 plugins), and S3 answers SlowDown while it scales a prefix up: with the SDK's three attempts
 *   (about three seconds of backoff at most) one throttled write failed the whole batch, for the queue to
 *   start it again. Eight attempts wait up to about 70 seconds (35 on average) before the batch fails.
 * - `interactive`: the search function, which answers a person within its 10-second timeout. Retried
 *   longer, a throttled read ran into that timeout, a bare 502 instead of its 503, and kept retrying for
 *   every caller while S3 asked for fewer requests.
 * Standard, not adaptive: adaptive slows every request of a client once one is throttled, and S3 throttles
 * a prefix, while one client writes many (the AWS SDKs' guide keeps adaptive for a client of one resource).
 */
export const S3_RETRY = {
  batch: { retryMode: 'standard', maxAttempts: 8 },
  interactive: { retryMode: 'standard', maxAttempts: 3 },
} as const satisfies Record<string, Pick<S3ClientConfig, 'retryMode' | 'maxAttempts'>>;

/** Which of `S3_RETRY`'s bounds a client keeps. */
export type S3RetryPolicy = keyof typeof S3_RETRY;

/**
 * An S3 client for AWS (region and credentials from the environment), or for an S3-compatible endpoint
 * such as a local test server, which needs path-style addressing; it retries as `S3_RETRY[retry]` says.
 * Every S3 client of the publish and search functions and of the commands is made here.
 */
export function createS3Client(endpoint?: string, retry: S3RetryPolicy = 'batch'): S3Client {
  return new S3Client({ ...S3_RETRY[retry], ...(endpoint ? { endpoint, forcePathStyle: true } : {}) });
}

const DEFAULT_MULTIPART_THRESHOLD = 16 * 1024 * 1024;
/** S3's longest object key, in UTF-8 bytes. */
const MAX_OBJECT_KEY_BYTES = 1024;
/**
 * S3 errors that say "never" for this key or body: a retry fails the same way. Every other failure (denied
 * while a policy is fixed, RequestTimeout and ExpiredToken, which are 400s too, throttling, 5xx, the network)
 * may pass on a retry.
 */
const PERMANENT_ERRORS = new Set([
  'KeyTooLongError',
  'InvalidArgument',
  'InvalidObjectName',
  'EntityTooLarge',
  'MetadataTooLarge',
]);
/**
 * KMS's refusals S3 passes on for an object whose key cannot decrypt now (disabled, pending deletion,
 * deleted): the operator's to mend (enable the key), not a retry's.
 */
const KMS_KEY_UNUSABLE = new Set([
  'KMS.DisabledException',
  'KMS.KMSInvalidStateException',
  'KMS.NotFoundException',
]);
/**
 * An AccessDenied that is KMS's, not S3's: S3 names the KMS action (`kms:Decrypt`) or the key in its message
 * ("The ciphertext refers to a customer master key that does not exist ... or you are not allowed to
 * access"). An S3 denial (`s3:GetObject`, a policy being fixed) names neither, and may pass on a retry.
 */
const KMS_DENIAL = /\bkms:|customer master key|KMS key/i;

/**
 * Why S3 will not give the object read to this reader until someone changes the object, and what mends it;
 * undefined for any other failure (throttling, 5xx, the network, an S3 denial: they may pass on a retry). A
 * publisher cannot put such an upload (the deployment's publisher policy denies it), but an operator, a
 * replication rule or a lifecycle transition can.
 */
function unreadableObject(error: unknown): { readonly why: string; readonly remedy: string } | undefined {
  if (!(error instanceof S3ServiceException)) return undefined;
  if (error.name === 'InvalidObjectState') {
    const storageClass = (error as { StorageClass?: string }).StorageClass;
    return {
      why: `it is archived${storageClass ? ` (${storageClass})` : ''}`,
      remedy:
        'restore it (aws s3api restore-object), or put it again in the STANDARD storage class: the next batch after that reads it',
    };
  }
  // SSE-C: S3 answers a GET without the uploader's key 400 InvalidRequest, naming server-side encryption.
  if (error.name === 'InvalidRequest' && /server side encryption/i.test(error.message))
    return {
      why: "it is encrypted with a key of its uploader's own (SSE-C)",
      remedy:
        "copy it over itself with that key as the source's (aws s3 cp --sse-c-copy-source) under the bucket's own encryption, or have it uploaded again: the next batch after that reads it",
    };
  if ((error.name === 'AccessDenied' && KMS_DENIAL.test(error.message)) || KMS_KEY_UNUSABLE.has(error.name))
    return {
      why: 'it is encrypted with a KMS key the reader may not use',
      remedy:
        "let the publish function's role decrypt with that key (kms:Decrypt), or copy it over itself under the bucket's own encryption: the next batch after that reads it",
    };
  return undefined;
}

const PART_SIZE = 8 * 1024 * 1024;
/**
 * Parts of a streamed body on the wire at once. Its producer (a rendering, a compressor, the flush's spill,
 * each a single producer) cannot go faster than the parts go up anyway: one part on the wire while the next
 * is filled keeps both busy. Each part held is 8 MiB, and the flush spills to three objects at once: with
 * lib-storage's four on the wire (and a fifth gathered, then copied again into a fresh buffer) the spill's
 * uploads held about 120 MB; now 48 MB.
 */
const STREAM_PARTS_IN_FLIGHT = 1;
/**
 * Parts of a body already in memory (`put`) on the wire at once: they are views into it, so more of them
 * cost no memory.
 */
const BUFFER_PARTS_IN_FLIGHT = 4;
/** The first part buffer of a stream, grown to a whole part only when the body is that large. */
const FIRST_PART_BYTES = 256 * 1024;

async function* emptyStream(): AsyncIterable<Uint8Array> {}

/**
 * The user metadata (`x-amz-meta-decoded-sha256`) a compressed variant records its document's digest under
 * (`PutOptions.decodedSha256`), as the filesystem store's sidecar does: a flush tells a variant a dead run
 * left from a current one by its head alone (`cleanInterruptedVariants`), where one recording nothing was
 * rewritten at every flush. S3 lowercases metadata names; CloudFront passes the header on with the variant.
 */
const DECODED_SHA256_METADATA = 'decoded-sha256';
const SHA256_HEX = /^[0-9a-f]{64}$/;

/** The metadata recording `decodedSha256`, refused unless it is a SHA-256's hex (S3 takes ASCII only). */
function decodedMetadata(
  key: string,
  decodedSha256: string | undefined,
): { Metadata?: Record<string, string> } {
  if (decodedSha256 === undefined) return {};
  if (!SHA256_HEX.test(decodedSha256))
    throw new StoreError(
      'STORE_REFUSED',
      key,
      `cannot write ${JSON.stringify(key)}: its decodedSha256 ${JSON.stringify(decodedSha256)} is not a SHA-256 in lowercase hex`,
    );
  return { Metadata: { [DECODED_SHA256_METADATA]: decodedSha256 } };
}

/** What a GetObject or HeadObject response says about the object. */
function infoOf(
  key: string,
  response: {
    ContentLength?: number;
    ETag?: string;
    ContentType?: string;
    CacheControl?: string;
    ContentEncoding?: string;
    LastModified?: Date;
    Metadata?: Record<string, string>;
  },
): ObjectInfo {
  // Anything else under the name (someone's own metadata) records no digest: the variant counts as unknown.
  const decodedSha256 = response.Metadata?.[DECODED_SHA256_METADATA];
  return {
    key,
    size: response.ContentLength ?? 0,
    etag: response.ETag ?? '""',
    contentType: response.ContentType ?? 'application/octet-stream',
    cacheControl: response.CacheControl ?? '',
    ...(response.ContentEncoding ? { contentEncoding: response.ContentEncoding } : {}),
    ...(decodedSha256 !== undefined && SHA256_HEX.test(decodedSha256) ? { decodedSha256 } : {}),
    lastModified: response.LastModified ?? new Date(0),
  };
}

/** The fields of the object itself, as PutObject and CreateMultipartUpload take them. */
interface ObjectParams {
  readonly Bucket: string;
  readonly Key: string;
  readonly ContentType: string;
  readonly CacheControl: string;
  readonly ContentEncoding?: string;
  readonly Metadata?: Record<string, string>;
}

/**
 * One multipart upload, its parts sent as they come, at most `limit` on the wire at once (`send` waits for
 * room): created by its first part, completed by `complete`, aborted by `abort` (S3 then keeps none of its
 * parts, and the object as it was).
 */
class MultipartUpload {
  readonly #client: S3Client;
  readonly #params: ObjectParams;
  readonly #limit: number;
  readonly #sending = new Set<Promise<void>>();
  readonly #parts: CompletedPart[] = [];
  /** The first part that failed: every later send and the completion throw it. */
  #failure: { readonly error: unknown } | undefined;
  #uploadId: Promise<string> | undefined;
  #count = 0;

  constructor(client: S3Client, params: ObjectParams, limit: number) {
    this.#client = client;
    this.#params = params;
    this.#limit = limit;
  }

  /** Whether a part was sent: a body of one part is one PUT instead. */
  get started(): boolean {
    return this.#count > 0;
  }

  async #create(): Promise<string> {
    // As lib-storage does: where the client adds a CRC32 to each part (AWS's default), the upload must be
    // created with that algorithm, or S3 refuses each part for a checksum type it was not created with.
    const checksum =
      (await this.#client.config.requestChecksumCalculation()) === 'WHEN_SUPPORTED'
        ? { ChecksumAlgorithm: ChecksumAlgorithm.CRC32 }
        : {};
    const created = await this.#client.send(
      new CreateMultipartUploadCommand({ ...this.#params, ...checksum }),
    );
    if (!created.UploadId) throw new Error('CreateMultipartUpload answered without an UploadId');
    return created.UploadId;
  }

  /**
   * Sends `bytes` as the next part once fewer than `limit` are on the wire (a failure of one sent before
   * throws here); `sent` is called once S3 has them, when the caller may reuse their memory.
   */
  async send(bytes: Uint8Array, sent?: () => void): Promise<void> {
    this.#uploadId ??= this.#create();
    const UploadId = await this.#uploadId;
    while (this.#sending.size >= this.#limit) await Promise.race(this.#sending);
    this.#check();
    const PartNumber = ++this.#count;
    const sending: Promise<void> = this.#sendPart(UploadId, PartNumber, bytes, sent).then(
      () => {
        this.#sending.delete(sending);
      },
      (error: unknown) => {
        this.#failure ??= { error };
        this.#sending.delete(sending);
      },
    );
    this.#sending.add(sending);
  }

  #check(): void {
    if (this.#failure) throw this.#failure.error;
  }

  async #sendPart(UploadId: string, PartNumber: number, bytes: Uint8Array, sent?: () => void): Promise<void> {
    const { Bucket, Key } = this.#params;
    const part = await this.#client.send(
      new UploadPartCommand({ Bucket, Key, UploadId, PartNumber, Body: bytes }),
    );
    if (!part.ETag) throw new Error(`UploadPart answered part ${PartNumber} without an ETag`);
    this.#parts.push({
      PartNumber,
      ETag: part.ETag,
      ...(part.ChecksumCRC32 ? { ChecksumCRC32: part.ChecksumCRC32 } : {}),
      ...(part.ChecksumCRC32C ? { ChecksumCRC32C: part.ChecksumCRC32C } : {}),
      ...(part.ChecksumSHA1 ? { ChecksumSHA1: part.ChecksumSHA1 } : {}),
      ...(part.ChecksumSHA256 ? { ChecksumSHA256: part.ChecksumSHA256 } : {}),
    });
    sent?.();
  }

  /**
   * Waits for every part, then makes the object of them (visible at once, whole); under `condition` (only
   * where no object is, or only over the one read), the completion being the one step of a multipart upload
   * that takes it.
   */
  async complete(
    condition: { IfNoneMatch?: string; IfMatch?: string } = {},
    onSent?: (etag: string) => void,
  ): Promise<string> {
    await Promise.all(this.#sending);
    this.#check();
    const { Bucket, Key } = this.#params;
    const Parts = [...this.#parts].sort((a, b) => (a.PartNumber as number) - (b.PartNumber as number));
    // S3's multipart ETag: the MD5 of the parts' MD5s (each part's ETag under SSE-S3), then their count.
    if (onSent) {
      const md5s = Parts.map((part) => Buffer.from((part.ETag ?? '').replaceAll('"', ''), 'hex'));
      onSent(`"${createHash('md5').update(Buffer.concat(md5s)).digest('hex')}-${Parts.length}"`);
    }
    const completed = await this.#client.send(
      new CompleteMultipartUploadCommand({
        Bucket,
        Key,
        UploadId: await this.#uploadId,
        MultipartUpload: { Parts },
        ...condition,
      }),
    );
    return completed.ETag ?? '""';
  }

  /**
   * Once no part is on the wire (S3 may keep a part that arrives after the abort), discards the parts sent.
   * Best effort: the caller throws the failure that made it abort, and a bucket's lifecycle rule for
   * incomplete uploads takes what an abort that failed left.
   */
  async abort(): Promise<void> {
    await Promise.allSettled(this.#sending);
    const uploadId = await this.#uploadId?.catch(() => undefined);
    if (uploadId === undefined) return;
    const { Bucket, Key } = this.#params;
    await this.#client
      .send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId: uploadId }))
      .catch(() => {});
  }
}

function isNotFound(error: unknown): boolean {
  if (!(error instanceof S3ServiceException)) return false;
  return error.name === 'NoSuchKey' || error.name === 'NotFound' || error.$metadata.httpStatusCode === 404;
}

function isPreconditionFailed(error: unknown): boolean {
  if (!(error instanceof S3ServiceException)) return false;
  return error.name === 'PreconditionFailed' || error.$metadata.httpStatusCode === 412;
}

/** How many times the SDK sent the request that failed with `error` (1 when it says nothing). */
function resentTimes(error: unknown): number {
  return error instanceof S3ServiceException ? (error.$metadata.attempts ?? 1) : 1;
}

/**
 * Whether a create-only write refused because an object is there (`STORE_EXISTS`) was sent more than once by
 * the SDK: an attempt before, whose answer was lost (a connection reset, a timeout, a 500 after S3 had done
 * it), may have made that object, and S3 answers the resend 412 all the same. Only a caller that knows no
 * one else writes the key (a name of its own, drawn at random) may take the object for its own; a publisher
 * cannot read `incoming/` to compare it.
 * @example if (mayBeOwnWrite(error)) log('the upload may be in: waiting for its outcome');
 */
export function mayBeOwnWrite(error: unknown): boolean {
  return error instanceof StoreError && error.code === 'STORE_EXISTS' && resentTimes(error.cause) > 1;
}

/**
 * S3's answer to a conditional write racing another write of the key (409 ConditionalRequestConflict):
 * which one lands is not known, so the write is as good as refused by its condition.
 */
function isConditionalConflict(error: unknown): boolean {
  return error instanceof S3ServiceException && error.name === 'ConditionalRequestConflict';
}

/**
 * How many times a conditional request (a delete `ifMatch`, a create-only write) is sent while S3 answers it
 * 409 ConditionalRequestConflict.
 */
const CONFLICT_ATTEMPTS = 3;
/** The backoff after a 409 ConditionalRequestConflict's first attempt, doubled after each one after. */
const CONFLICT_BACKOFF_MS = 100;

/**
 * How long to wait after attempt `attempt` of a conditional request S3 answered 409: 50 to 100 ms after the
 * first, 100 to 200 ms after the second. Sent again at once, it met the same race (the request it raced may
 * still be in flight); the jitter keeps two writers that raced each other from meeting again in step.
 */
export function conflictBackoffMs(attempt: number, random: () => number = Math.random): number {
  return CONFLICT_BACKOFF_MS * 2 ** (attempt - 1) * (0.5 + random() / 2);
}

const sleepAfterConflict = (attempt: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, conflictBackoffMs(attempt)));

/** The conditions of a write, as S3 takes them: create only, or only over the object read. */
function conditionOf(options: S3PutOptions): { IfNoneMatch?: string; IfMatch?: string } {
  if (options.createOnly) return { IfNoneMatch: '*' };
  return options.ifMatch !== undefined ? { IfMatch: options.ifMatch } : {};
}

export class S3Store implements Store {
  readonly #client: S3Client;
  readonly #bucket: string;
  readonly #prefix: string;
  readonly #multipartThreshold: number;
  readonly #partSize: number;
  readonly #streamPartsInFlight: number;
  readonly #pageSize: number;
  readonly #conflictDelay: (attempt: number) => Promise<void>;

  constructor(options: S3StoreOptions) {
    this.#client = options.client;
    this.#bucket = options.bucket;
    this.#prefix = options.prefix ?? '';
    this.#multipartThreshold = options.multipartThresholdBytes ?? DEFAULT_MULTIPART_THRESHOLD;
    this.#partSize = options.partSizeBytes ?? PART_SIZE;
    this.#streamPartsInFlight = options.streamPartsInFlight ?? STREAM_PARTS_IN_FLIGHT;
    this.#pageSize = options.pageSize ?? 1000;
    this.#conflictDelay = options.conflictDelay ?? sleepAfterConflict;
  }

  /**
   * `send` (one whole conditional request, a write's body sent from its start) again after a backoff while S3
   * answers it 409 ConditionalRequestConflict, at most CONFLICT_ATTEMPTS times: S3's own advice for a
   * conditional request that raced another request on the key. Without it a publisher's upload failed
   * STORE_IO on a race it did not lose, and the publish function's delete of a moved upload failed its
   * invocation after the batch was committed. Never a 412 (final: STORE_EXISTS, or the object left), nor any
   * other failure; nor a request that is not conditional (`conditional` false), which S3 never answers so.
   */
  async #againAfterConflicts(conditional: boolean, send: () => Promise<void>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await send();
        return;
      } catch (error) {
        const cause = error instanceof StoreError ? error.cause : error;
        if (!conditional || !isConditionalConflict(cause) || attempt >= CONFLICT_ATTEMPTS) throw error;
        await this.#conflictDelay(attempt);
      }
    }
  }

  /**
   * The object key of a key the store reads or deletes: anything S3 can hold (an upload may have any name),
   * which is any non-empty UTF-8 text of at most 1,024 bytes with the prefix.
   */
  #objectKey(key: string): string {
    const objectKey = `${this.#prefix}${key}`;
    if (key.length === 0 || hasLoneSurrogate(key) || Buffer.byteLength(objectKey) > MAX_OBJECT_KEY_BYTES)
      throw new StoreError('STORE_INVALID_KEY', key, `no S3 object can have the key ${JSON.stringify(key)}`);
    return objectKey;
  }

  /** The object key of a key the store writes: only safe keys (layout.ts), as every store. */
  #writeKey(key: string): string {
    const problem = keyProblem(key);
    if (problem)
      throw new StoreError('STORE_INVALID_KEY', key, `unsafe storage key ${JSON.stringify(key)}: ${problem}`);
    return this.#objectKey(key);
  }

  /**
   * A failure as the core's StoreError: STORE_EXISTS when a write to create the object found one there,
   * STORE_CONFLICT when a write only over the object read (`ifMatch`) found another, STORE_UNREADABLE when a
   * read found an object S3 will not give this reader until someone changes it (`unreadableObject`),
   * STORE_REFUSED when S3 says "never" (PERMANENT_ERRORS), else STORE_IO.
   */
  #fail(key: string, action: string, error: unknown, options: S3PutOptions | undefined = undefined): never {
    if (error instanceof StoreError) throw error;
    if (options?.createOnly && isPreconditionFailed(error))
      throw new StoreError(
        'STORE_EXISTS',
        key,
        resentTimes(error) > 1
          ? `cannot ${action} s3://${this.#bucket}/${this.#prefix}${key}: an object is there (If-None-Match) as the write was sent again (attempt ${resentTimes(error)}), an attempt before it unanswered: the object may be that attempt's, this write's own`
          : `cannot ${action} s3://${this.#bucket}/${this.#prefix}${key}: an object is there already (If-None-Match), and it is left as it was`,
        { cause: error },
      );
    // With If-Match, S3 answers a key with no object at all 404 NoSuchKey (the object read was deleted since).
    const gone = error instanceof S3ServiceException && error.name === 'NoSuchKey';
    if (
      options?.ifMatch !== undefined &&
      (isPreconditionFailed(error) || isConditionalConflict(error) || gone)
    )
      throw new StoreError(
        'STORE_CONFLICT',
        key,
        `cannot ${action} s3://${this.#bucket}/${this.#prefix}${key}: it is not the object read (If-Match ${options.ifMatch}), and it is left as it is`,
        { cause: error },
      );
    const s3Error = error instanceof S3ServiceException ? error : undefined;
    const unreadable = action === 'read' ? unreadableObject(error) : undefined;
    if (s3Error && unreadable)
      throw new StoreError(
        'STORE_UNREADABLE',
        key,
        `cannot read s3://${this.#bucket}/${this.#prefix}${key}: ${s3Error.name} (HTTP ${s3Error.$metadata.httpStatusCode}), ${unreadable.why} (S3: ${JSON.stringify(s3Error.message)}); ${unreadable.remedy}`,
        { cause: error, reason: s3Error.name, remedy: unreadable.remedy },
      );
    const detail = s3Error
      ? `${s3Error.name} (HTTP ${s3Error.$metadata.httpStatusCode})`
      : (error as Error).message;
    throw new StoreError(
      s3Error && PERMANENT_ERRORS.has(s3Error.name) ? 'STORE_REFUSED' : 'STORE_IO',
      key,
      `cannot ${action} s3://${this.#bucket}/${this.#prefix}${key}: ${detail}`,
      { cause: error },
    );
  }

  async get(key: string, options?: GetOptions): Promise<StoredObject | undefined> {
    const Key = this.#objectKey(key);
    try {
      const response = await this.#client.send(new GetObjectCommand({ Bucket: this.#bucket, Key }));
      // The object's size as this response serves it (not as a listing said): past the cap, none is read.
      const tooLarge = tooLargeToGet(key, response.ContentLength ?? 0, options);
      if (tooLarge) {
        (response.Body as Partial<Readable> | undefined)?.destroy?.();
        throw tooLarge;
      }
      const body = response.Body ? await response.Body.transformToByteArray() : new Uint8Array();
      return { ...infoOf(key, response), body, size: body.byteLength };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      this.#fail(key, 'read', error);
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const Key = this.#objectKey(key);
    try {
      const response = await this.#client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key }));
      return infoOf(key, response);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      this.#fail(key, 'stat', error);
    }
  }

  /**
   * The fields of the object at `key` written with `options`, recording `decodedSha256` (the option's, or one
   * the caller learnt after the body) as metadata.
   */
  #params(key: string, options: PutOptions, decodedSha256 = options.decodedSha256): ObjectParams {
    return {
      Bucket: this.#bucket,
      Key: this.#writeKey(key),
      ContentType: options.contentType,
      CacheControl: options.cacheControl,
      // S3 serves it back as the Content-Encoding header, which CloudFront passes on with the variant.
      ...(options.contentEncoding ? { ContentEncoding: options.contentEncoding } : {}),
      ...decodedMetadata(key, decodedSha256),
    };
  }

  /** One PUT of the whole body. */
  async #putObject(params: ObjectParams, body: Uint8Array, options: S3PutOptions): Promise<void> {
    // A digest the core already computed makes S3 check the bytes on arrival, at no hashing cost here.
    const { sha256 } = options;
    const checksum = sha256 ? { ChecksumSHA256: Buffer.from(sha256, 'hex').toString('base64') } : {};
    const condition = conditionOf(options);
    if (options.onSent) options.onSent(`"${createHash('md5').update(body).digest('hex')}"`);
    const written = await this.#client.send(
      new PutObjectCommand({ ...params, Body: body, ...checksum, ...condition }),
    );
    options.onWritten?.(written.ETag ?? '""');
  }

  /**
   * S3 replaces an object atomically on PUT, and makes a multipart object visible only once it is
   * completed: readers see the old object or the new, never a mix.
   */
  async put(key: string, body: Uint8Array, options: S3PutOptions): Promise<void> {
    // The body is whole already: a digest known after it is known now, and written as one given.
    if (options.decodedSha256AfterBody && options.decodedSha256 === undefined) {
      const { decodedSha256AfterBody, ...rest } = options;
      return this.put(key, body, { ...rest, decodedSha256: await decodedSha256AfterBody() });
    }
    await this.#againAfterConflicts(options.createOnly === true, () => this.#putOnce(key, body, options));
  }

  async #putOnce(key: string, body: Uint8Array, options: S3PutOptions): Promise<void> {
    const params = this.#params(key, options);
    try {
      if (body.byteLength < this.#multipartThreshold) {
        await this.#putObject(params, body, options);
        return;
      }
      const upload = new MultipartUpload(this.#client, params, BUFFER_PARTS_IN_FLIGHT);
      try {
        // Views into the body: no part is copied.
        for (let at = 0; at < body.byteLength; at += this.#partSize)
          await upload.send(body.subarray(at, at + this.#partSize));
        // Completed first: an optional call does not evaluate its argument when nothing is to be told.
        const etag = await upload.complete(conditionOf(options), options.onSent);
        options.onWritten?.(etag);
      } catch (error) {
        await upload.abort();
        throw error;
      }
    } catch (error) {
      this.#fail(key, 'write', error, options);
    }
  }

  /** The response body as it arrives from S3: an oversized upload is copied or hashed in constant memory. */
  async getStream(key: string): Promise<StoredStream | undefined> {
    const Key = this.#objectKey(key);
    try {
      const response = await this.#client.send(new GetObjectCommand({ Bucket: this.#bucket, Key }));
      const body = response.Body;
      // In Node.js the SDK's body is an http.IncomingMessage: a Readable, hence an async iterable.
      if (body !== undefined && !(Symbol.asyncIterator in body)) {
        throw new StoreError('STORE_IO', key, 'the S3 response body is not a stream in this runtime');
      }
      return {
        ...infoOf(key, response),
        body: (body as AsyncIterable<Uint8Array> | undefined) ?? emptyStream(),
        // An unread body keeps its connection out of the client's pool until destroyed.
        cancel: () => (body as Partial<Readable> | undefined)?.destroy?.(),
      };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      this.#fail(key, 'read', error);
    }
  }

  /**
   * One PUT when the body fits in one part, a multipart upload otherwise. Each chunk is copied once, into
   * part buffers of exactly a part (S3 wants every part but the last of one size), which the upload reuses
   * once S3 has a part: it holds `streamPartsInFlight + 1` parts at most, whatever the body's size, and
   * reads the body no further ahead. (lib-storage's Upload gathered the chunks and copied them again, into
   * a fresh buffer a part, with four on the wire.) A body that fails midway, or a part that does, aborts the
   * upload, so nothing is published; the body is then read no further.
   *
   * A digest known only after the body (`decodedSha256AfterBody`, a variant streamed beside its document's
   * rendering) is asked for once the body has ended, before anything is made visible. S3 takes metadata only
   * with the PUT or the CreateMultipartUpload, never with the completion: a body of one part is one PUT sent
   * then, with it; a multipart one, whose upload was created with the first part, is completed and then
   * copied over itself with the metadata (CopyObject, REPLACE, only while it is the object completed), one
   * request more, only for a variant over a part (8 MiB compressed). Hashing the document before its
   * variants would render it twice, which the one rendering for the signature and both variants exists to
   * avoid; holding the variant whole would cost its size in memory. Between the completion and the copy the
   * variant records no digest, which a reader takes as unknown (rewritten by a flush, decoded by the local
   * server), never as current.
   */
  async putStream(key: string, body: AsyncIterable<Uint8Array>, options: S3PutOptions): Promise<void> {
    const params = this.#params(key, options);
    const size = this.#partSize;
    const upload = new MultipartUpload(this.#client, params, this.#streamPartsInFlight);
    const spare: Uint8Array[] = [];
    // A small body (most of those moved out of incoming/) never takes a whole part.
    let part: Uint8Array = new Uint8Array(Math.min(size, FIRST_PART_BYTES));
    let filled = 0;
    try {
      for await (const chunk of body) {
        for (let from = 0; from < chunk.byteLength; ) {
          if (filled === size) {
            // A whole part, and more to come: not the last one.
            const full = part;
            await upload.send(full, () => spare.push(full));
            part = spare.pop() ?? new Uint8Array(size);
            filled = 0;
          } else if (filled === part.byteLength) {
            const grown = new Uint8Array(Math.min(size, part.byteLength * 4));
            grown.set(part);
            part = grown;
          }
          const taken = Math.min(chunk.byteLength - from, part.byteLength - filled);
          part.set(chunk.subarray(from, from + taken), filled);
          filled += taken;
          from += taken;
        }
      }
      const after =
        options.decodedSha256 === undefined ? await options.decodedSha256AfterBody?.() : undefined;
      if (!upload.started) {
        const whole = after === undefined ? params : this.#params(key, options, after);
        await this.#putObject(whole, part.subarray(0, filled), options);
        return;
      }
      await upload.send(part.subarray(0, filled));
      if (after === undefined) {
        const etag = await upload.complete(conditionOf(options), options.onSent);
        options.onWritten?.(etag);
        return;
      }
      // Not told `onSent`: the copy's ETag is not the multipart one it would be told.
      const completed = await upload.complete(conditionOf(options));
      // Copied first: an optional call does not evaluate its argument when nothing is to be told.
      const etag = await this.#recordAfter(this.#params(key, options, after), completed);
      options.onWritten?.(etag);
    } catch (error) {
      await upload.abort();
      this.#fail(key, 'write', error, options);
    }
  }

  /**
   * Copies the object just completed (`etag`) over itself with `params`' metadata, the others restated (a
   * REPLACE copy keeps none of the source's); an object put there since is left (412). Returns the copy's
   * ETag. One request up to 5 GiB, far past any variant.
   */
  async #recordAfter(params: ObjectParams, etag: string): Promise<string> {
    const copied = await this.#client.send(
      new CopyObjectCommand({
        ...params,
        CopySource: `${params.Bucket}/${params.Key.split('/').map(encodeURIComponent).join('/')}`,
        CopySourceIfMatch: etag,
        MetadataDirective: 'REPLACE',
      }),
    );
    return copied.CopyObjectResult?.ETag ?? '""';
  }

  /**
   * `putStream` of the body `open` gives, opened again for each attempt: a create-only write S3 answers 409
   * ConditionalRequestConflict is sent again from the body's start (a stream cannot be read twice), after a
   * short backoff.
   * @example await store.putStreamFrom(key, () => createReadStream(file), { ...put, createOnly: true });
   */
  async putStreamFrom(
    key: string,
    open: () => AsyncIterable<Uint8Array>,
    options: S3PutOptions,
  ): Promise<void> {
    await this.#againAfterConflicts(options.createOnly === true, () => this.putStream(key, open(), options));
  }

  async delete(key: string, options?: DeleteOptions): Promise<void> {
    const Key = this.#objectKey(key);
    // S3 checks `If-Match` and deletes as one step (general purpose buckets since September 2025): an upload
    // put under the key since it was read is left, with 412 Precondition Failed. Another request on the key
    // racing it is answered 409 ConditionalRequestConflict, nothing deleted: asked again, S3 then says which
    // (deleted, 412 or 404), after a short backoff (sent again at once, it may meet the request it raced
    // still in flight). Thrown at once, it failed the publish function's invocation after its batch was
    // committed, and the queue held every upload behind it for its visibility timeout.
    const IfMatch = options?.ifMatch;
    try {
      await this.#againAfterConflicts(Boolean(IfMatch), async () => {
        try {
          await this.#client.send(
            new DeleteObjectCommand({ Bucket: this.#bucket, Key, ...(IfMatch ? { IfMatch } : {}) }),
          );
        } catch (error) {
          if (isNotFound(error) || (IfMatch && isPreconditionFailed(error))) return;
          throw error;
        }
      });
    } catch (error) {
      this.#fail(key, 'delete', error);
    }
  }

  async *list(prefix: string): AsyncIterable<ListedObject> {
    for await (const page of this.#pages(prefix)) {
      for (const item of page.Contents ?? []) {
        if (!item.Key?.startsWith(this.#prefix)) continue;
        yield {
          key: item.Key.slice(this.#prefix.length),
          size: item.Size ?? 0,
          etag: item.ETag ?? '""',
          lastModified: item.LastModified ?? new Date(0),
        };
      }
    }
  }

  /** The common prefixes of a listing by the delimiter `/`: a page names up to `pageSize` folders. */
  async *listFolders(prefix: string): AsyncIterable<string> {
    for await (const page of this.#pages(prefix, '/')) {
      for (const common of page.CommonPrefixes ?? []) {
        if (!common.Prefix?.startsWith(this.#prefix)) continue;
        yield common.Prefix.slice(this.#prefix.length);
      }
    }
  }

  /** The pages of a listing of `prefix` (by `delimiter` when given), one request each, as S3 pages it. */
  async *#pages(prefix: string, delimiter?: string): AsyncIterable<ListObjectsV2CommandOutput> {
    let token: string | undefined;
    do {
      let page: ListObjectsV2CommandOutput;
      try {
        page = await this.#client.send(
          new ListObjectsV2Command({
            Bucket: this.#bucket,
            Prefix: `${this.#prefix}${prefix}`,
            ...(delimiter ? { Delimiter: delimiter } : {}),
            MaxKeys: this.#pageSize,
            ...(token ? { ContinuationToken: token } : {}),
          }),
        );
      } catch (error) {
        this.#fail(prefix, 'list', error);
      }
      yield page;
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }
}
