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

import { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  PutObjectCommand,
  type PutObjectCommandInput,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { StoreError } from '../index-builder/errors.ts';
import { keyProblem } from '../index-builder/layout.ts';
import type {
  ListedObject,
  ObjectInfo,
  PutOptions,
  Store,
  StoredObject,
  StoredStream,
} from '../index-builder/store.ts';
import { hasLoneSurrogate } from '../index-builder/text.ts';

export interface S3StoreOptions {
  readonly client: S3Client;
  readonly bucket: string;
  /** Prepended to every key, e.g. `registry/` to share a bucket; empty by default. */
  readonly prefix?: string;
  /** Bodies at least this large go up as multipart uploads (S3 takes at most 5 GiB in one PUT). */
  readonly multipartThresholdBytes?: number;
  /**
   * The part size of multipart uploads (8 MiB by default; S3's least is 5 MiB): an upload holds up to four
   * parts in memory at once.
   */
  readonly partSizeBytes?: number;
  /** Keys per ListObjectsV2 page (S3's maximum is 1,000); smaller in tests to exercise pagination. */
  readonly pageSize?: number;
}

/**
 * An S3 client for AWS (region and credentials from the environment), or for an S3-compatible endpoint
 * such as a local test server, which needs path-style addressing.
 */
export function createS3Client(endpoint?: string): S3Client {
  return new S3Client(endpoint ? { endpoint, forcePathStyle: true } : {});
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
const PART_SIZE = 8 * 1024 * 1024;

async function* emptyStream(): AsyncIterable<Uint8Array> {}

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
  },
): ObjectInfo {
  return {
    key,
    size: response.ContentLength ?? 0,
    etag: response.ETag ?? '""',
    contentType: response.ContentType ?? 'application/octet-stream',
    cacheControl: response.CacheControl ?? '',
    ...(response.ContentEncoding ? { contentEncoding: response.ContentEncoding } : {}),
    lastModified: response.LastModified ?? new Date(0),
  };
}

function isNotFound(error: unknown): boolean {
  if (!(error instanceof S3ServiceException)) return false;
  return error.name === 'NoSuchKey' || error.name === 'NotFound' || error.$metadata.httpStatusCode === 404;
}

export class S3Store implements Store {
  readonly #client: S3Client;
  readonly #bucket: string;
  readonly #prefix: string;
  readonly #multipartThreshold: number;
  readonly #partSize: number;
  readonly #pageSize: number;

  constructor(options: S3StoreOptions) {
    this.#client = options.client;
    this.#bucket = options.bucket;
    this.#prefix = options.prefix ?? '';
    this.#multipartThreshold = options.multipartThresholdBytes ?? DEFAULT_MULTIPART_THRESHOLD;
    this.#partSize = options.partSizeBytes ?? PART_SIZE;
    this.#pageSize = options.pageSize ?? 1000;
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

  /** A failure as the core's StoreError: STORE_REFUSED when S3 says "never" (PERMANENT_ERRORS), else STORE_IO. */
  #fail(key: string, action: string, error: unknown): never {
    if (error instanceof StoreError) throw error;
    const s3Error = error instanceof S3ServiceException ? error : undefined;
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

  async get(key: string): Promise<StoredObject | undefined> {
    const Key = this.#objectKey(key);
    try {
      const response = await this.#client.send(new GetObjectCommand({ Bucket: this.#bucket, Key }));
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

  /** S3 replaces an object atomically on PUT: readers see the old object or the new, never a mix. */
  async put(key: string, body: Uint8Array, options: PutOptions): Promise<void> {
    const params = {
      Bucket: this.#bucket,
      Key: this.#writeKey(key),
      Body: body,
      ContentType: options.contentType,
      CacheControl: options.cacheControl,
      // S3 serves it back as the Content-Encoding header, which CloudFront passes on with the variant.
      ...(options.contentEncoding ? { ContentEncoding: options.contentEncoding } : {}),
    };
    try {
      if (body.byteLength >= this.#multipartThreshold) {
        await this.#upload(params);
      } else {
        // A digest the core already computed makes S3 check the bytes on arrival, at no hashing cost here.
        const checksum = options.sha256
          ? { ChecksumSHA256: Buffer.from(options.sha256, 'hex').toString('base64') }
          : {};
        await this.#client.send(new PutObjectCommand({ ...params, ...checksum }));
      }
    } catch (error) {
      this.#fail(key, 'write', error);
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
   * Streams through lib-storage's Upload: one PUT when the body is under a part, a multipart upload
   * otherwise, never more than `queueSize` parts in memory. A body that fails midway aborts the upload, so
   * nothing is published: S3 makes a multipart object visible only once it is completed.
   */
  async putStream(key: string, body: AsyncIterable<Uint8Array>, options: PutOptions): Promise<void> {
    const params = {
      Bucket: this.#bucket,
      Key: this.#writeKey(key),
      Body: Readable.from(body, { objectMode: false }),
      ContentType: options.contentType,
      CacheControl: options.cacheControl,
      // S3 serves it back as the Content-Encoding header, which CloudFront passes on with the variant.
      ...(options.contentEncoding ? { ContentEncoding: options.contentEncoding } : {}),
    };
    try {
      await this.#upload(params);
    } catch (error) {
      this.#fail(key, 'write', error);
    }
  }

  /** A multipart upload (one PUT when the body fits one part), at most `queueSize` parts in memory. */
  async #upload(params: PutObjectCommandInput): Promise<void> {
    await new Upload({ client: this.#client, params, partSize: this.#partSize, queueSize: 4 }).done();
  }

  async delete(key: string): Promise<void> {
    const Key = this.#objectKey(key);
    try {
      await this.#client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key }));
    } catch (error) {
      if (isNotFound(error)) return;
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
