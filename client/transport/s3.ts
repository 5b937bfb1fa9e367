/**
 * The fetcher's `s3:` transport: `s3://bucket/prefix` bases read with GetObject and listed with
 * ListObjectsV2, through the AWS SDK. Loaded by client/fetcher.ts only when an s3: URL is used, so no
 * other command pays for the SDK's load time.
 *
 * The SDK's own retries are off (maxAttempts 1): the fetcher retries every transport alike, and a failure
 * here only says how it failed (`S3Failure.kind`, the fetcher's vocabulary). Timeouts are ours too, as for
 * HTTP: one for the response, then one for each wait on the body.
 *
 * Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (/ AWS_SESSION_TOKEN) of the environment the
 * fetcher was given, when set there; otherwise the SDK's default Node chain (which reads the process's
 * own environment, profiles, SSO, instance and container roles). They sign requests only to AWS's own
 * endpoints and to a custom endpoint the environment names (AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL):
 * a custom endpoint comes from a plugin set, which arrives in a checkout (a pull request may edit it), and
 * a signed request there hands its host the access key id, the session token and a signature of the
 * user's. Any other custom endpoint is read unsigned, as a public bucket is (`isTrustedS3Endpoint`).
 *
 * @example
 * const s3 = new S3Transport({ env: process.env, lowSpeedBytesPerSecond: 1024 });
 * const names = await s3.list(endpoint, new URL('s3://plugins-bucket/team/kubecost/'));
 * await s3.close();
 */
import {
  GetObjectCommand,
  type GetObjectCommandOutput,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import type { Endpoint } from '../fetcher.ts';

/** How one S3 request failed, in the fetcher's terms (see its Failure): retried, next mirror, or stop. */
export class S3Failure extends Error {
  override readonly name = 'S3Failure';
  constructor(
    readonly what: string,
    readonly kind: 'transient' | 'missing' | 'unusable' | 'fatal',
    options?: { cause?: unknown },
  ) {
    super(what, options);
  }
}

/** An object being read: its size when S3 gave one, and its bytes (which throw S3Failure if the stream breaks). */
export interface S3Object {
  readonly size?: number;
  readonly body: AsyncGenerator<Uint8Array>;
}

export interface S3TransportOptions {
  readonly env: Readonly<Record<string, string | undefined>>;
  /**
   * The least a body must bring, on average, over each span of the timeout spent waiting on it (the
   * fetcher's LOW_SPEED_BYTES_PER_SECOND, the rule its HTTP bodies keep); 0 for none.
   */
  readonly lowSpeedBytesPerSecond: number;
}

/** ListObjectsV2's largest page. */
const MAX_PAGE = 1000;
const DEFAULT_REGION = 'us-east-1';
/** Never sent: the signer of an unsigned client returns each request untouched. */
const UNSIGNED_CREDENTIALS = { accessKeyId: 'unsigned', secretAccessKey: 'unsigned' } as const;

/**
 * Whether requests to `endpoint` (a custom S3 endpoint URL, or undefined for AWS's own) may be signed with
 * the user's credentials: AWS's own endpoints, and the one the environment names for S3
 * (AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL), compared as URLs (a trailing slash aside).
 */
export function isTrustedS3Endpoint(
  endpoint: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
): boolean {
  if (endpoint === undefined) return true;
  const named = env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL;
  if (!named) return false;
  const same = (url: string): string | undefined => {
    try {
      return new URL(url).href.replace(/\/+$/, '');
    } catch {
      return undefined;
    }
  };
  const trusted = same(named);
  return trusted !== undefined && trusted === same(endpoint);
}

/** The bucket and key (or key prefix) an s3: URL names; the key without its leading slash, decoded. */
export function s3Location(url: URL): { readonly bucket: string; readonly key: string } {
  return { bucket: url.hostname, key: decodeURIComponent(url.pathname.replace(/^\/+/, '')) };
}

export class S3Transport {
  readonly #env: Readonly<Record<string, string | undefined>>;
  readonly #lowSpeed: number;
  /** One client per (region, endpoint, addressing style), made at first use and destroyed by close(). */
  readonly #clients = new Map<string, S3Client>();

  constructor(options: S3TransportOptions) {
    this.#env = options.env;
    this.#lowSpeed = options.lowSpeedBytesPerSecond;
  }

  /**
   * GetObject of `url`: refused (RESPONSE_TOO_LARGE, through `tooLarge`) past `maxBytes`, by its declared
   * size before reading and by the bytes that arrive while reading.
   * @throws S3Failure for a request that failed; what `tooLarge` returns.
   */
  async open(
    endpoint: Endpoint,
    url: URL,
    maxBytes: number,
    tooLarge: (found: string) => Error,
  ): Promise<S3Object> {
    const { bucket, key } = s3Location(url);
    const client = this.#client(endpoint);
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), endpoint.timeoutMs);
    let output: GetObjectCommandOutput;
    try {
      output = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }), {
        abortSignal: abort.signal,
      });
    } catch (error) {
      throw failureOf(
        error,
        bucket,
        key,
        abort.signal.aborted ? endpoint.timeoutMs : undefined,
        this.#unsigned(endpoint),
      );
    } finally {
      clearTimeout(timer);
    }
    const body = output.Body as
      | (AsyncIterable<Uint8Array> & { destroy?: (error?: Error) => void })
      | undefined;
    const size = output.ContentLength;
    if (size !== undefined && size > maxBytes) {
      body?.destroy?.();
      throw tooLarge(`it declares ${size} bytes (ContentLength)`);
    }
    const chunks =
      body === undefined ? empty() : capped(body, endpoint.timeoutMs, this.#lowSpeed, maxBytes, tooLarge);
    return size === undefined ? { body: chunks } : { size, body: chunks };
  }

  /**
   * The names of the "folders" directly under `url` (a key prefix): ListObjectsV2 with the delimiter '/',
   * every page followed. `pageSize` (at most 1000) is S3's MaxKeys.
   * @throws S3Failure `missing` when nothing at all is stored under the prefix.
   */
  async list(endpoint: Endpoint, url: URL, pageSize = MAX_PAGE): Promise<string[]> {
    const { bucket, key } = s3Location(url);
    const prefix = key === '' || key.endsWith('/') ? key : `${key}/`;
    const client = this.#client(endpoint);
    const names = new Set<string>();
    let any = false;
    let token: string | undefined;
    do {
      const abort = new AbortController();
      const timer = setTimeout(() => abort.abort(), endpoint.timeoutMs);
      let page: ListObjectsV2CommandOutput;
      try {
        page = await client.send(
          new ListObjectsV2Command({
            Bucket: bucket,
            Prefix: prefix,
            Delimiter: '/',
            MaxKeys: Math.min(Math.max(1, pageSize), MAX_PAGE),
            ...(token === undefined ? {} : { ContinuationToken: token }),
          }),
          { abortSignal: abort.signal },
        );
      } catch (error) {
        throw failureOf(
          error,
          bucket,
          prefix,
          abort.signal.aborted ? endpoint.timeoutMs : undefined,
          this.#unsigned(endpoint),
        );
      } finally {
        clearTimeout(timer);
      }
      any ||= (page.KeyCount ?? 0) > 0 || (page.Contents?.length ?? 0) > 0;
      for (const common of page.CommonPrefixes ?? []) {
        const name = common.Prefix?.slice(prefix.length).replace(/\/$/, '');
        if (name) names.add(name);
        any = true;
      }
      // A truncated page without a token would loop forever on a faulty server: stop at what was listed.
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    // S3 has no folders: an empty prefix is the "no such folder" of a file system.
    if (!any)
      throw new S3Failure(`nothing is stored under prefix "${prefix}" of bucket "${bucket}"`, 'missing');
    return [...names].sort();
  }

  /** Destroys the clients (their keep-alive sockets). */
  async close(): Promise<void> {
    for (const client of this.#clients.values()) client.destroy();
    this.#clients.clear();
  }

  /** The custom endpoint requests go to unsigned (not trusted with the credentials), if so. */
  #unsigned(endpoint: Endpoint): string | undefined {
    const custom = endpoint.s3?.endpoint;
    return isTrustedS3Endpoint(custom, this.#env) ? undefined : custom;
  }

  #client(endpoint: Endpoint): S3Client {
    const env = this.#env;
    const region = endpoint.s3?.region ?? (env.AWS_REGION || env.AWS_DEFAULT_REGION || DEFAULT_REGION);
    const custom = endpoint.s3?.endpoint;
    const pathStyle = endpoint.s3?.forcePathStyle ?? false;
    const id = `${region}\0${custom ?? ''}\0${pathStyle}`;
    const known = this.#clients.get(id);
    if (known) return known;
    const accessKeyId = env.AWS_ACCESS_KEY_ID;
    const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
    const sessionToken = env.AWS_SESSION_TOKEN;
    const signed = isTrustedS3Endpoint(custom, env);
    const config: S3ClientConfig = {
      region,
      maxAttempts: 1,
      // A bucket in another region than the one guessed (us-east-1 by default) is followed, not refused.
      followRegionRedirects: true,
      ...(custom === undefined ? {} : { endpoint: custom }),
      ...(pathStyle ? { forcePathStyle: true } : {}),
      ...(!signed
        ? // Unsigned: no credential is looked up (the chain may ask an instance's metadata service), and
          // the signer passes each request on as it is.
          { credentials: UNSIGNED_CREDENTIALS, signer: { sign: async (request) => request } }
        : accessKeyId && secretAccessKey
          ? { credentials: { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) } }
          : {}),
    };
    const client = new S3Client(config);
    this.#clients.set(id, client);
    return client;
  }
}

async function* empty(): AsyncGenerator<Uint8Array> {}

/**
 * The body chunk by chunk, cut off past `maxBytes`; each wait on S3 is timed, and the stream dropped on exit.
 * A span of `timeoutMs` spent waiting that brought less than `lowSpeed` bytes a second on average is given
 * up (transient): the timeout alone bounds each wait, and an endpoint that dripped a byte inside each one
 * held an install for as long as the body lasted (the fetcher's rule for HTTP bodies, readBody).
 */
async function* capped(
  body: AsyncIterable<Uint8Array> & { destroy?: (error?: Error) => void },
  timeoutMs: number,
  lowSpeed: number,
  maxBytes: number,
  tooLarge: (found: string) => Error,
): AsyncGenerator<Uint8Array> {
  const iterator = body[Symbol.asyncIterator]();
  let received = 0;
  let finished = false;
  let spanWaited = 0;
  let spanBytes = 0;
  try {
    for (;;) {
      const waitStart = performance.now();
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        body.destroy?.(new Error(`timed out after ${timeoutMs / 1000} s`));
      }, timeoutMs);
      let next: IteratorResult<Uint8Array>;
      try {
        next = await iterator.next();
      } catch (error) {
        const what = timedOut
          ? `timed out after ${timeoutMs / 1000} s with ${received} bytes received`
          : `${(error as Error).message} after ${received} bytes`;
        throw new S3Failure(what, 'transient', { cause: error });
      } finally {
        clearTimeout(timer);
      }
      if (next.done) {
        finished = true;
        return;
      }
      received += next.value.byteLength;
      spanWaited += performance.now() - waitStart;
      spanBytes += next.value.byteLength;
      if (spanWaited >= timeoutMs) {
        const least = Math.ceil((lowSpeed * spanWaited) / 1000);
        if (spanBytes < least)
          throw new S3Failure(
            `too slow: ${spanBytes} bytes in ${Math.round(spanWaited) / 1000} s of waiting, under the least of ${lowSpeed} bytes a second, with ${received} bytes received`,
            'transient',
          );
        spanWaited = 0;
        spanBytes = 0;
      }
      if (received > maxBytes) throw tooLarge(`${received} bytes had arrived when it was cut off`);
      yield next.value;
    }
  } finally {
    if (!finished) body.destroy?.();
  }
}

/** The SDK's error as a failure of the fetcher's kinds, naming the bucket and key. */
function failureOf(
  error: unknown,
  bucket: string,
  key: string,
  timedOutAfter: number | undefined,
  unsignedTo: string | undefined,
): S3Failure {
  const where = `bucket "${bucket}", key "${key}"`;
  if (timedOutAfter !== undefined)
    return new S3Failure(`${where}: timed out after ${timedOutAfter / 1000} s`, 'transient', {
      cause: error,
    });
  const e = error as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  const name = e.name ?? 'Error';
  const detail = `${name}${status === undefined ? '' : ` (HTTP ${status})`}: ${e.message ?? String(error)}`;
  if (name === 'NoSuchKey' || (status === 404 && name !== 'NoSuchBucket'))
    return new S3Failure(`${where}: no such key`, 'missing', { cause: error });
  if (name === 'CredentialsProviderError')
    return new S3Failure(`${where}: no AWS credentials were found (${e.message})`, 'fatal', { cause: error });
  if (status === 403 && unsignedTo !== undefined)
    return new S3Failure(
      `${where}: access denied to a request without credentials, ${detail} (the user's AWS credentials sign requests only to AWS and to the endpoint AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL names, not to ${unsignedTo}; set AWS_ENDPOINT_URL_S3=${unsignedTo} to trust it with them)`,
      'fatal',
      { cause: error },
    );
  if (status === 403)
    return new S3Failure(
      // S3 answers 403, not 404, for a missing key to credentials that may not list the bucket.
      `${where}: access denied, ${detail} (the key may also be missing, if these credentials may not list the bucket)`,
      'fatal',
      { cause: error },
    );
  // No status: the request never got an answer (refused, reset, DNS): worth another try.
  if (status === undefined || status >= 500 || status === 429)
    return new S3Failure(`${where}: ${detail}`, 'transient', { cause: error });
  return new S3Failure(`${where}: ${detail}`, 'fatal', { cause: error });
}
