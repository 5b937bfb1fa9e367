/**
 * The consumer library's only network code (tuf-js `Fetcher`, sigstore `external/fetch.ts`): documents and
 * artifacts from a registry's URL, then its mirrors in order, each response capped in bytes before it is
 * trusted with anything. Everything else in client/ takes the bytes this returns.
 *
 * Transport is undici 7's own `fetch` with its own dispatcher (the global fetch refuses a dispatcher of
 * another undici). One `EnvHttpProxyAgent` per distinct set of trusted CAs carries the proxy settings of
 * the environment it was given, not of `process.env` behind its back; an http: URL (loopback only) goes
 * direct, never to a proxy. Redirects are followed here, not by
 * undici, so that credentials never follow one to another origin. Timeouts are ours too (an abort per
 * request), so the headers wait and each body wait are measured the same way for every agent.
 *
 * Artifacts kept in an OCI registry come through `ociBlob` (and `ociManifest`): the Distribution API's GETs,
 * the registry's token dance (a Bearer token from the realm its 401 names, pull scope only), the same caps,
 * CAs and proxies, and a token that never follows a redirect to another origin (see `#open`).
 *
 * @example
 * const fetcher = createHttpFetcher();
 * const endpoint = { name: 'acme', bases: ['https://plugins.example'], timeoutMs: 30_000 };
 * const snapshot = await fetcher.document(endpoint, { path: 'snapshot.json', maxBytes: UNLISTED_LIMITS.snapshot });
 * await fetcher.close();
 */
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import dns from 'node:dns';
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { rootCertificates } from 'node:tls';
import { fileURLToPath } from 'node:url';
import type { Dispatcher, Response } from 'undici';
import { sha256Hex } from '../index-builder/digest.ts';
import { TrustError } from '../index-builder/errors.ts';
import { type ContentEncoding, encodedVariantKey, isLoopbackHost } from '../index-builder/layout.ts';
import { ociApiOf, ociRegistryUrl } from '../index-builder/oci.ts';
import { HEADER_NAME, shownUrl, withoutCredentials } from './config.ts';
import { ClientError } from './errors.ts';
import {
  type AuthChallenge,
  MANIFEST_MEDIA_TYPES,
  type OciReference,
  parseBearerChallenge,
  parseOciReference,
} from './oci.ts';
import type { S3Failure, S3Object, S3Transport } from './transport/s3.ts';

export type Credentials =
  | { readonly type: 'bearer_token'; readonly token: string }
  | { readonly type: 'api_key'; readonly key: string; readonly header: string }
  | { readonly type: 'basic_auth'; readonly username: string; readonly password: string };

export interface Endpoint {
  /** The registry's name, for messages. */
  readonly name: string;
  /**
   * The registry's URL, then its mirrors, in the order tried; no trailing slash. https:, loopback http:,
   * file:, or s3: (`s3://bucket/optional/prefix`, read with the standard AWS credential chain).
   */
  readonly bases: readonly string[];
  /** Per request: the wait for the headers, and each wait for more of the body. */
  readonly timeoutMs: number;
  /** PEM text of extra CAs for this registry, trusted beside the system roots and NODE_EXTRA_CA_CERTS. */
  readonly ca?: string;
  /**
   * Sent only to the origin of bases[0]: never to a mirror, never after a redirect to another origin, and
   * never on a redirect from elsewhere (a mirror's) back to that origin.
   */
  readonly credentials?: Credentials;
  /** For s3: bases: the region (else AWS_REGION, AWS_DEFAULT_REGION, us-east-1) and a custom S3 endpoint URL. */
  readonly s3?: { readonly region?: string; readonly endpoint?: string; readonly forcePathStyle?: boolean };
}

export interface DocumentRequest {
  /** Relative to a base, e.g. 'snapshot.json', 'plugins/x/index.json'. */
  readonly path: string;
  /** Cap on the bytes actually received (the signed size when known). */
  readonly maxBytes: number;
  /** Appended as ?v=<version> (the read that stays consistent behind a CDN); not to file: or s3: bases. */
  readonly version?: string;
  /**
   * The SHA-256 (hex) the caller will hold the bytes to, when it knows it (a document the snapshot lists).
   * A body that came compressed and decodes to other bytes is then asked for once more uncompressed: a
   * registry writes a document's `.br` and `.gz` before the document, so a publish that died between them
   * (or a cache that took the variant in that moment) serves a variant of the next generation beside the
   * document the snapshot binds. The caller still checks what is returned.
   */
  readonly sha256?: string;
  /** Sent as If-None-Match. */
  readonly etag?: string;
  /**
   * Past every cache: `v` gets a fresh random nonce (after `version`, when given) and the request says
   * `Cache-Control: no-cache`. The registry's CloudFront keys its cache on `v` alone (no header) and forwards
   * it to the origin, which ignores it (infra/constructs/distribution.ts), so the nonce is what reaches the
   * origin's bytes of now there; the header is for other caches on the way that honour it. Random, not a
   * clock: a value someone can predict is one they can ask for first, and have the edge keep what the
   * origin held then under it.
   */
  readonly pastCaches?: boolean;
  /**
   * Asks for the document in this coding alone (`Accept-Encoding: br`, `gzip` or `identity`) rather than
   * brotli or gzip, and takes no other: what a client accepting only it is sent. `verify --url` checks each
   * representation this way, since what it is sent by default is one variant only. Never asked for again as
   * identity: the bytes are that representation's, for the caller to judge.
   */
  readonly coding?: ContentEncoding | 'identity';
  /**
   * Asks first for the document's pre-compressed variant by its own name, `<path>.br` (or `.gz`), in that
   * coding alone, then for the document as without it when the variant is not taken: what the client does
   * for a plugin document over the compression threshold (pipeline/encoded.ts `putSizedVariants`), which the
   * AWS edge never routes to its variant (a CloudFront Function cannot look whether one is there) and
   * CloudFront does not compress past 10,000,000 bytes. Only with `sha256` and without `coding`, over
   * http(s): the variant is taken when it decodes (undici decodes its Content-Encoding, once) to bytes of
   * that digest within the cap; when it is not there (404; 403 from S3 without the list permission) or
   * answers anything else, or decodes to other bytes or past the cap (a stale variant: a run that died
   * after writing a grown document's variants, before the document), the document is asked for as ever.
   */
  readonly variant?: ContentEncoding;
}

export type DocumentResponse = (
  | { readonly status: 200; readonly bytes: Uint8Array; readonly etag?: string; readonly url: string }
  | { readonly status: 304; readonly url: string }
) & {
  /**
   * The URLs asked for before `url` (the one answering), in order, the first the one requested, when
   * redirects led there: a hop a mark may be kept as of, which `url` alone would hide (client/session.ts).
   */
  readonly redirectedFrom?: readonly string[];
};

export interface DownloadRequest {
  readonly url: string;
  readonly maxBytes: number;
}

export interface Download {
  /**
   * What answered, as a message shows it (shownUrl: credentials dropped, query values and a fragment as
   * `…`): its only use is naming the download in a refusal (an artifact mismatch), and a blob store a
   * redirect led to answers at a presigned URL, whose query is a secret.
   */
  readonly url: string;
  /** The content-length, when the server gave one (and the body is not content-encoded). */
  readonly size?: number;
  /** Iterate it to the end (or break out of the loop): until then the connection stays open. */
  readonly body: AsyncIterable<Uint8Array>;
}

/** A user name and password for an OCI registry: sent to its token service (or as Basic, if it asks for that). */
export interface OciCredentials {
  readonly username: string;
  readonly password: string;
}

export interface OciRequest {
  /** `registry[:port]/repository[:tag][@sha256:…]`: an artifact's `oci.reference`. */
  readonly reference: string;
  /** Per request: the wait for the headers, and each wait for more of the body; default 30 s. */
  readonly timeoutMs?: number;
  /** PEM text of extra CAs for the registry (and its token service); with it, a loopback registry is reached over https:. */
  readonly ca?: string;
  /** Without them a pull is anonymous (an anonymous token where the registry hands them out). */
  readonly credentials?: OciCredentials;
}

export interface OciBlobRequest extends OciRequest {
  /** `sha256:<hex>` of the blob: the artifact's `oci.digest`. */
  readonly digest: string;
  /**
   * The registry whose signed document named the blob: one that is not on this machine may not name a
   * blob on its loopback (as `download` refuses such an artifact URL).
   */
  readonly namedBy?: Endpoint;
  /** Cap on the bytes received (the artifact's signed size). */
  readonly maxBytes: number;
}

export interface OciManifest {
  /** `sha256:<hex>` of the bytes received (checked against the reference's digest when it pins one). */
  readonly digest: string;
  /** The Content-Type served (parameters dropped), or '' when the registry sent none. */
  readonly mediaType: string;
  readonly bytes: Uint8Array;
}

export interface Fetcher {
  /** One document from the first base that answers: mirrors tried in order on a network error, timeout, 404 or 5xx (after retries). */
  document(endpoint: Endpoint, request: DocumentRequest): Promise<DocumentResponse>;
  /**
   * An artifact by absolute URL. When the URL lies under bases[0], the same path under each mirror is tried in turn as for
   * documents. The body is streamed (never buffered whole) and throws RESPONSE_TOO_LARGE as soon as more than maxBytes
   * arrive (whatever content-length said); a content-length above maxBytes is refused before reading.
   */
  download(endpoint: Endpoint, request: DownloadRequest): Promise<Download>;
  /**
   * A blob of an OCI registry (`GET /v2/<repository>/blobs/<digest>`), with the registry's token dance when it
   * asks for one. The body is streamed and capped as `download`'s is; the caller checks its digest.
   * @throws ClientError FETCH_NOT_FOUND (404), CREDENTIALS_MISSING (the registry wants credentials none were
   *   given for), RESPONSE_TOO_LARGE, REQUEST_INVALID (a reference or digest that does not parse), FETCH_FAILED.
   */
  ociBlob(request: OciBlobRequest): Promise<Download>;
  /**
   * The manifest (or index) a reference names, by its digest when it pins one, else by its tag
   * (`latest` without either), accepting every manifest type `MANIFEST_MEDIA_TYPES` lists; capped at 4 MiB.
   * @throws TrustError DOCUMENT_MISMATCH when the bytes do not hash to the digest pinned (or to the
   *   Docker-Content-Digest served); what `ociBlob` throws otherwise.
   */
  ociManifest(request: OciRequest): Promise<OciManifest>;
  /**
   * The names of the folders directly under `path` of a file: or s3: base (mirrors in order), sorted.
   * @throws ClientError REQUEST_INVALID for a web (http/https) base, which cannot be listed; FETCH_NOT_FOUND
   *   when nothing is there.
   */
  list(endpoint: Endpoint, path: string): Promise<string[]>;
  /** Closes the agents (keep-alive sockets), so a CLI exits at once. */
  close(): Promise<void>;
}

export interface HttpFetcherOptions {
  /** Environment for HTTPS_PROXY/HTTP_PROXY/NO_PROXY (either case) and NODE_EXTRA_CA_CERTS; default process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Extra attempts on network errors, timeouts and 5xx; default 2. */
  readonly retries?: number;
  /** First backoff, doubled each time, with jitter; default 200. */
  readonly retryDelayMs?: number;
  /** Default 'plugindex-client'. */
  readonly userAgent?: string;
  /**
   * Test seam: how a connection made directly (not through a proxy) resolves a host name; default Node's
   * (`dns.lookup`). A test has a name resolve to 127.0.0.1 with it without touching DNS.
   */
  readonly lookup?: LookupFunction;
}

const KiB = 1024;
const MiB = 1024 * KiB;

/** Caps for documents the snapshot does not list (their size is not known in advance). */
export const UNLISTED_LIMITS: {
  readonly snapshot: number;
  readonly signature: number;
  readonly key: number;
  /** A manifest read by where a lock found it: the manifest's own cap (MAX_MANIFEST_BYTES, not imported
   * here: the manifest reader would bring its YAML parser into every install). */
  readonly manifest: number;
} = Object.freeze({
  snapshot: 16 * MiB,
  signature: 64 * KiB,
  key: 1 * MiB,
  manifest: 256 * KiB,
});

const MAX_REDIRECTS = 5;
/** OCI manifests: the distribution project refuses to store one over 4 MiB. */
const OCI_MANIFEST_LIMIT = 4 * MiB;
/** A token service's answer: a JWT or an opaque token, with a little JSON around it. */
const OCI_TOKEN_LIMIT = 64 * KiB;
const OCI_TIMEOUT_MS = 30_000;
/**
 * How long a registry token is used again: under the 60 s the distribution spec gives a token at the least
 * (a registry that revokes one sooner answers 401, and a new one is asked for).
 */
const OCI_TOKEN_REUSE_MS = 50_000;
const SHA256_DIGEST = /^sha256:[a-f0-9]{64}$/;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const FILE_CHUNK = 64 * KiB;
/**
 * The least a body must bring, on average, over each span of the endpoint's timeout spent waiting on the
 * server (cargo's `http.low-speed-limit`, curl's `--speed-limit`): the timeout alone bounds each wait, and a
 * server that drips a byte inside each one would hold an install for as long as its cap lasts (hours for a
 * large artifact). 1 KiB/s: far under any working link, far over a drip. A body too slow is a transient
 * failure, so the next mirror is tried.
 */
export const LOW_SPEED_BYTES_PER_SECOND = KiB;
/** Bytes a header value may not hold (undici's error for them would quote the secret). */
const HEADER_VALUE_FORBIDDEN = /[\0\r\n]/;
/** Error codes of a certificate that did not verify (OpenSSL's and Node's). */
const TLS_CODE = /^(ERR_TLS_|ERR_SSL_|ERR_OSSL_|UNABLE_TO_|CERT_|DEPTH_ZERO_|SELF_SIGNED_|HOSTNAME_MISMATCH)/;
/**
 * A range of addresses a guarded connection may not reach, as messages name it. `onThisMachine`: its
 * addresses reach this machine's own services, so a registry there is the user's (all it names is theirs).
 */
interface GuardedRange {
  /** Where a URL or a redirect went, in a message: "this machine's loopback", "the link-local range …". */
  readonly place: string;
  /** What an address literal in it is: "an address of this machine", "in 169.254.0.0/16". */
  readonly member: string;
  readonly onThisMachine: boolean;
}

const LOOPBACK: GuardedRange = {
  place: "this machine's loopback",
  member: 'an address of this machine',
  onThisMachine: true,
};

function linkLocal(range: string, why: string): GuardedRange {
  return {
    place: `the link-local range ${range} (${why})`,
    member: `in the link-local range ${range}`,
    onThisMachine: false,
  };
}

/** 169.254.0.0/16: a cloud VM's metadata service (and its credentials) answers at 169.254.169.254. */
const LINK_LOCAL_V4 = linkLocal('169.254.0.0/16', "a cloud VM's metadata service answers at 169.254.169.254");
const LINK_LOCAL_V6 = linkLocal('fe80::/10', 'the services of the link this machine is on');
/** Not this machine's (a registry there is not the user's own): where its NAT64 gateway would connect. */
const NAT64_LOOPBACK: GuardedRange = {
  place: 'a NAT64 form (64:ff9b::/96) of a loopback or unspecified address',
  member: 'a NAT64 form (64:ff9b::/96) of a loopback or unspecified address',
  onThisMachine: false,
};
const NAT64_LINK_LOCAL: GuardedRange = {
  place: `a NAT64 form (64:ff9b::/96) of ${LINK_LOCAL_V4.place}`,
  member: `a NAT64 form (64:ff9b::/96) of an address ${LINK_LOCAL_V4.member}`,
  onThisMachine: false,
};

/**
 * Each range with the subnets that reach it. Loopback (127.0.0.0/8, ::1) and the unspecified address
 * (0.0.0.0/8, ::), which Linux and macOS connect to this machine; link-local (169.254.0.0/16, fe80::/10):
 * the services of the machine's own link, a cloud metadata service among them. Not private ranges (10/8,
 * 172.16/12, 192.168/16): a corporate mirror hosts artifacts there. A BlockList matches an IPv4-mapped IPv6
 * address (::ffff:169.254.169.254, ::ffff:a9fe:a9fe) against its IPv4 rules. The NAT64 well-known prefix
 * (64:ff9b::/96, RFC 6052) embeds an IPv4 address a NAT64 gateway connects to: one of these ranges is
 * refused there too (RFC 6052 forbids the translation, which not every gateway heeds). The deprecated
 * IPv4-compatible (::127.0.0.1) and IPv4-translated (::ffff:0:127.0.0.1) forms reach no address here: Linux
 * routes them as any IPv6 address.
 */
const GUARDED_SUBNETS: readonly (readonly [GuardedRange, string, number, 'ipv4' | 'ipv6'])[] = [
  [LOOPBACK, '127.0.0.0', 8, 'ipv4'],
  [LOOPBACK, '0.0.0.0', 8, 'ipv4'],
  [LOOPBACK, '::1', 128, 'ipv6'],
  [LOOPBACK, '::', 128, 'ipv6'],
  [LINK_LOCAL_V4, '169.254.0.0', 16, 'ipv4'],
  [LINK_LOCAL_V6, 'fe80::', 10, 'ipv6'],
  [NAT64_LOOPBACK, '64:ff9b::7f00:0', 104, 'ipv6'],
  [NAT64_LOOPBACK, '64:ff9b::', 104, 'ipv6'],
  [NAT64_LINK_LOCAL, '64:ff9b::a9fe:0', 112, 'ipv6'],
];

const GUARDED_LISTS = GUARDED_SUBNETS.map(([range, network, prefix, family]) => {
  const list = new BlockList();
  list.addSubnet(network, prefix, family);
  return { range, list };
});

/** The guarded range an IP address is in (`guardedRangeOf('::ffff:169.254.169.254')`); undefined for none, or what is not an address. */
function guardedRangeOf(address: string): GuardedRange | undefined {
  const family = isIP(address);
  if (family === 0) return undefined;
  const type = family === 4 ? 'ipv4' : 'ipv6';
  return GUARDED_LISTS.find(({ list }) => list.check(address, type))?.range;
}

/** A guarded connection's host, resolved to an address in a guarded range: the connection is never made. */
class ResolvedToGuardedRange extends Error {
  constructor(
    readonly host: string,
    readonly address: string,
    readonly range: GuardedRange,
  ) {
    super(`${host} resolved to ${address}, ${range.member}`);
    this.name = 'ResolvedToGuardedRange';
  }
}

/**
 * `resolve`, refusing a name any of whose addresses is in a guarded range: the rule checked on the address
 * connected to, not the name, so a name that resolves there (in /etc/hosts, or a DNS server that answers a
 * public address first and loopback or 169.254.169.254 when the client connects) does not pass. Node calls
 * it at connect time, with `all` when it will try several addresses (autoSelectFamily): every one is
 * checked, not only the first.
 */
function guardedLookup(resolve: LookupFunction): LookupFunction {
  return (hostname, options, callback) => {
    resolve(hostname, options, (error, address, family) => {
      if (error) {
        callback(error, address, family);
        return;
      }
      const addresses = typeof address === 'string' ? [address] : address.map((each) => each.address);
      for (const each of addresses) {
        const range = guardedRangeOf(each);
        if (range !== undefined) {
          callback(new ResolvedToGuardedRange(hostname, each, range), address, family);
          return;
        }
      }
      callback(null, address, family);
    });
  };
}

/** The ResolvedToGuardedRange a failed fetch holds (undici wraps the socket's error), if any. */
function refusalIn(error: unknown): ResolvedToGuardedRange | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 8; depth++) {
    if (current instanceof ResolvedToGuardedRange) return current;
    if (current instanceof AggregateError && current.errors.length > 0) current = current.errors[0];
    else if (current instanceof Error && current.cause !== undefined) current = current.cause;
    else return undefined;
  }
  return undefined;
}

/**
 * A request whose first URL a party not on this machine chose (an artifact URL, an OCI registry a document
 * names, a token realm): its connections may not reach this machine, nor its link (GUARDED_SUBNETS, see #open).
 */
interface Guard {
  /** The error thrown when the first URL's host is, or resolves to, an address in `range` (`detail` says which). */
  refused(range: GuardedRange, detail: string): ClientError;
}

/**
 * How one URL failed: `transient` is retried then the next mirror tried, `missing` (404) and `unusable`
 * (a certificate, a bad redirect) go to the next mirror at once, `fatal` (another 4xx) stops there.
 */
class Failure {
  /** The URL as a message shows it (shownText): its only use. */
  readonly url: string;
  constructor(
    url: string,
    readonly what: string,
    readonly kind: 'transient' | 'missing' | 'unusable' | 'fatal',
    readonly cause?: unknown,
    readonly tls = false,
  ) {
    this.url = shownText(url);
  }

  after(attempts: number): Failure {
    return attempts > 1
      ? new Failure(this.url, `${this.what} (${attempts} attempts)`, this.kind, this.cause, this.tls)
      : this;
  }
}

/** A body that broke off while being read: a Failure for the mirror loop, a FETCH_FAILED for a download. */
class BodyFailed extends Error {
  constructor(readonly failure: Failure) {
    super(failure.what, { cause: failure.cause });
  }
}

/**
 * A compressed variant of a document whose digest the caller gave that decoded past the size listed: a
 * variant of a later generation of a document that grew (written before the document itself) as much as a
 * bomb. Never seen outside `document`, which asks for the document itself once, then throws `error`.
 */
class VariantTooLarge extends Error {
  constructor(readonly error: ClientError) {
    super(error.message, { cause: error });
  }
}

/** The abort and timer of one request: armed while waiting on the server, never while the caller holds a chunk. */
class Deadline {
  readonly #controller = new AbortController();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #expired = false;

  constructor(readonly ms: number) {}

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  get expired(): boolean {
    return this.#expired;
  }

  arm(): void {
    this.disarm();
    this.#timer = setTimeout(() => {
      this.#expired = true;
      this.#controller.abort(new Error(`timed out after ${seconds(this.ms)}`));
    }, this.ms);
  }

  disarm(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Drops the connection (a body refused or left unread). */
  abort(): void {
    this.disarm();
    this.#controller.abort();
  }
}

/**
 * The bytes of a body as they come on the wire, before undici decodes its Content-Encoding. A cap counts
 * the decoded bytes (a listed document's own size), and a body of empty compressed blocks decodes to next
 * to nothing however long it runs: a mirror could send hundreds of megabytes for a document of a kilobyte,
 * fast enough for any speed rule. Past `cap` the request is dropped (RESPONSE_TOO_LARGE).
 */
class WireCount {
  bytes = 0;
  exceeded = false;
  /** What a body of at most `maxBytes` decoded bytes may take on the wire (`wireCapOf`). */
  readonly cap: number;

  constructor(
    maxBytes: number,
    readonly deadline: Deadline,
  ) {
    this.cap = wireCapOf(maxBytes);
  }

  add(bytes: number): void {
    this.bytes += bytes;
    if (this.bytes > this.cap && !this.exceeded) {
      this.exceeded = true;
      this.deadline.abort();
    }
  }
}

/**
 * The most a body of at most `maxBytes` decoded bytes may take on the wire: brotli and gzip add a few bytes
 * a block to what they cannot compress (well under a 64th), and a header and trailer.
 */
function wireCapOf(maxBytes: number): number {
  return maxBytes + Math.ceil(maxBytes / 64) + 64 * KiB;
}

/** A dispatcher over `agent` that counts each response body's bytes as they arrive, before decoding. */
function countingDispatcher(u: typeof import('undici'), agent: Dispatcher, wire: WireCount): Dispatcher {
  // undici's own handler decorator, which passes every call on (its types declare none of them): a body's
  // chunks reach onResponseData before the fetch decodes them.
  type Handler = Dispatcher.DispatchHandler & {
    onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void;
  };
  const Decorator = u.DecoratorHandler as unknown as new (handler: Dispatcher.DispatchHandler) => Handler;
  class Counting extends Decorator {
    override onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
      wire.add(chunk.byteLength);
      super.onResponseData(controller, chunk);
    }
  }
  return agent.compose((dispatch) => (options, handler) => dispatch(options, new Counting(handler)));
}

/**
 * A document's bytes, for a request without an ETag: a 304 to it can only be a server's defect.
 * @throws ClientError FETCH_FAILED for that 304, and what `document` throws.
 */
export async function fetchBody(
  fetcher: Fetcher,
  endpoint: Endpoint,
  request: Omit<DocumentRequest, 'etag'>,
): Promise<Uint8Array> {
  const response = await fetcher.document(endpoint, request);
  if (response.status !== 200)
    throw new ClientError('FETCH_FAILED', `${shownText(response.url)}: answered 304 to an unconditional GET`);
  return response.bytes;
}

/**
 * What the pure readers (client/key-chain.ts, client/log-reader.ts) are given to read a registry's files:
 * a document's bytes (under its cap, as `?v=<version>` when given), or undefined when the registry does
 * not have it (404 from every mirror); any other failure is thrown.
 */
export type DocumentLoader = (request: Omit<DocumentRequest, 'etag'>) => Promise<Uint8Array | undefined>;

/** `fetchBody` through one endpoint, as a DocumentLoader: FETCH_NOT_FOUND is undefined. */
export function documentLoader(fetcher: Fetcher, endpoint: Endpoint): DocumentLoader {
  return async (request) => {
    try {
      return await fetchBody(fetcher, endpoint, request);
    } catch (error) {
      if (error instanceof ClientError && error.code === 'FETCH_NOT_FOUND') return undefined;
      throw error;
    }
  };
}

/** A `?v=` no cache has been asked for: `of` (a digest, for the logs), then 96 random bits. */
function freshVersion(of: string | undefined): string {
  const nonce = randomBytes(12).toString('hex');
  return of === undefined ? nonce : `${of}-${nonce}`;
}

/**
 * undici, loaded at the first request: a command that finds everything it needs on disk (an install that
 * already matches its lock) never pays the ~100 ms its import costs.
 */
let undiciModule: Promise<typeof import('undici')> | undefined;
function undici(): Promise<typeof import('undici')> {
  // Bundled, a dynamic import of this CommonJS package may carry its exports under `default` only.
  undiciModule ??= import('undici').then((m) =>
    'EnvHttpProxyAgent' in m ? m : (m as unknown as { default: typeof import('undici') }).default,
  );
  return undiciModule;
}

/**
 * The fetcher over undici with the proxy and CA settings of `options.env`.
 * @example const fetcher = createHttpFetcher({ env: process.env, retries: 2 });
 */
export function createHttpFetcher(options: HttpFetcherOptions = {}): Fetcher {
  return new HttpFetcher(options);
}

class HttpFetcher implements Fetcher {
  readonly #env: Readonly<Record<string, string | undefined>>;
  readonly #retries: number;
  readonly #retryDelayMs: number;
  readonly #userAgent: string;
  readonly #lookup: LookupFunction | undefined;
  readonly #proxy: { readonly http: string; readonly https: string; readonly no: string };
  /** Registry tokens (or Basic values) by origin, repository and credentials, with when to stop using them. */
  readonly #ociTokens = new Map<string, { readonly authorization: string; readonly until: number }>();
  /**
   * CA set -> its agent ('' for Node's defaults), prefixed with `direct\0` for an agent without a proxy and
   * `guarded\0` for one whose direct connections refuse an address on this machine.
   */
  readonly #agents = new Map<string, Dispatcher>();
  /** The s3: transport, imported at the first s3: URL (the AWS SDK takes long to load). */
  #s3: Promise<{ readonly transport: S3Transport; readonly Failed: typeof S3Failure }> | undefined;
  #extraCa: Promise<string | undefined> | undefined;

  constructor(options: HttpFetcherOptions) {
    this.#env = options.env ?? process.env;
    this.#retries = options.retries ?? 2;
    this.#retryDelayMs = options.retryDelayMs ?? 200;
    this.#userAgent = options.userAgent ?? 'plugindex-client';
    this.#lookup = options.lookup;
    // Lower case first, as undici and curl read them. An empty string, never undefined, goes to undici:
    // undefined would make it read process.env itself.
    const env = this.#env;
    this.#proxy = {
      http: env.http_proxy ?? env.HTTP_PROXY ?? '',
      https: env.https_proxy ?? env.HTTPS_PROXY ?? '',
      no: env.no_proxy ?? env.NO_PROXY ?? '',
    };
  }

  async document(endpoint: Endpoint, request: DocumentRequest): Promise<DocumentResponse> {
    const bases = checkEndpoint(endpoint);
    const urls = bases.map((base) => {
      const url = new URL(`${prefixOf(base)}${request.path.replace(/^\/+/, '')}`);
      const version = request.pastCaches ? freshVersion(request.version) : request.version;
      if (version !== undefined && url.protocol !== 'file:' && url.protocol !== 's3:')
        url.searchParams.set('v', version);
      return url;
    });
    return this.#firstAnswer(endpoint, request.path, urls, async (url) => {
      if (url.protocol === 's3:') {
        const object = await this.#s3Object(endpoint, url, request.maxBytes);
        if (object instanceof Failure) return object;
        const bytes = await collect(object.body).catch(bodyFailure);
        return bytes instanceof Failure ? bytes : { status: 200, bytes, url: url.href };
      }
      if (url.protocol === 'file:') {
        const bytes = await readFileDocument(endpoint, url, request.maxBytes);
        return bytes instanceof Failure ? bytes : { status: 200, bytes, url: url.href };
      }
      if (request.variant !== undefined && request.sha256 !== undefined && request.coding === undefined) {
        const variant = await this.#namedVariant(endpoint, url, request, request.variant, request.sha256);
        if (variant) return variant;
      }
      const answer = await this.#httpDocument(endpoint, url, request, request.coding).catch(
        async (error: unknown) => {
          if (!(error instanceof VariantTooLarge)) throw error;
          // As for other bytes below: the document itself, within the same cap; else the variant's refusal.
          const plain = await this.#httpDocument(endpoint, url, request, 'identity');
          if (plain instanceof Failure || plain.status !== 200) throw error.error;
          return plain;
        },
      );
      if (answer instanceof Failure || answer.status !== 200) return answer;
      const { coded, ...response } = answer;
      if (
        !coded ||
        request.sha256 === undefined ||
        request.coding !== undefined ||
        sha256Hex(response.bytes) === request.sha256
      )
        return response;
      // The document itself, which the variant should have been: what it holds, the caller checks.
      const plain = await this.#httpDocument(endpoint, url, request, 'identity');
      if (plain instanceof Failure || plain.status !== 200) return response;
      const { coded: _, ...document } = plain;
      return document;
    });
  }

  async download(endpoint: Endpoint, request: DownloadRequest): Promise<Download> {
    const bases = checkEndpoint(endpoint);
    const target = checkDownloadUrl(endpoint, bases, request.url);
    // checkDownloadUrl judges the host by its name; this, where it connects, by the address it resolves to.
    // A URL on an origin the user configured (the registry's, a mirror's) is theirs, as are all of a
    // registry on this machine.
    const guard: Guard | undefined =
      isElsewhere(bases[0] as URL) && !bases.some((base) => base.origin === target.origin)
        ? {
            refused: (range, detail) =>
              new ClientError(
                'REGISTRY_URL_INVALID',
                `Registry "${endpoint.name}": artifact URL ${display(target)} is refused: ${artifactIn(range)} (${detail})`,
              ),
          }
        : undefined;
    // The same path under each mirror, when the artifact is hosted by the registry itself.
    const prefix = prefixOf(bases[0] as URL);
    const urls = target.href.startsWith(prefix)
      ? bases.map((base) => new URL(`${prefixOf(base)}${target.href.slice(prefix.length)}`))
      : [target];
    return this.#firstAnswer(endpoint, display(target), urls, async (url) => {
      if (url.protocol === 's3:') {
        const object = await this.#s3Object(endpoint, url, request.maxBytes);
        if (object instanceof Failure) return object;
        const body = surfaced(endpoint, url.href, object.body);
        return object.size === undefined
          ? { url: url.href, body }
          : { url: url.href, size: object.size, body };
      }
      return url.protocol === 'file:'
        ? openFileDownload(endpoint, url, request.maxBytes)
        : this.#httpDownload(endpoint, url, request.maxBytes, guard);
    });
  }

  async list(endpoint: Endpoint, path: string): Promise<string[]> {
    const listable = checkEndpoint(endpoint).filter(
      (base) => base.protocol === 'file:' || base.protocol === 's3:',
    );
    if (listable.length === 0) {
      throw new ClientError(
        'REQUEST_INVALID',
        `Registry "${endpoint.name}" (${endpoint.bases[0]}) is a web folder, which cannot be listed: name an exact version (or an exact manifest URL)`,
      );
    }
    const urls = listable.map((base) => new URL(`${prefixOf(base)}${path.replace(/^\/+|\/+$/g, '')}`));
    return this.#firstAnswer(endpoint, `folder ${path}`, urls, async (url) => {
      if (url.protocol === 'file:') return listFileFolder(url);
      const { transport, Failed } = await this.#s3Transport();
      return transport.list(endpoint, url).catch((error) => s3Failure(url, error, Failed));
    });
  }

  async close(): Promise<void> {
    const agents = [...this.#agents.values()];
    this.#agents.clear();
    const s3 = this.#s3;
    this.#s3 = undefined;
    await Promise.all([
      ...agents.map((agent) => agent.close()),
      s3?.then(({ transport }) => transport.close()).catch(() => {}),
    ]);
  }

  #s3Transport(): Promise<{ readonly transport: S3Transport; readonly Failed: typeof S3Failure }> {
    this.#s3 ??= import('./transport/s3.ts').then((m) => ({
      transport: new m.S3Transport({ env: this.#env, lowSpeedBytesPerSecond: LOW_SPEED_BYTES_PER_SECOND }),
      Failed: m.S3Failure,
    }));
    return this.#s3;
  }

  /** An s3: object opened, its body throwing BodyFailed where it breaks off, as the HTTP bodies do. */
  async #s3Object(endpoint: Endpoint, url: URL, maxBytes: number): Promise<S3Object | Failure> {
    const { transport, Failed } = await this.#s3Transport();
    const tooBig = (found: string) => tooLarge(endpoint, url.href, maxBytes, found);
    let object: S3Object;
    try {
      object = await transport.open(endpoint, url, maxBytes, tooBig);
    } catch (error) {
      return s3Failure(url, error, Failed);
    }
    async function* body(): AsyncGenerator<Uint8Array> {
      try {
        yield* object.body;
      } catch (error) {
        throw new BodyFailed(s3Failure(url, error, Failed));
      }
    }
    return object.size === undefined ? { body: body() } : { size: object.size, body: body() };
  }

  /** The first URL that answers, each tried with retries; the failures of all of them otherwise. */
  async #firstAnswer<T>(
    endpoint: Endpoint,
    what: string,
    urls: readonly URL[],
    attempt: (url: URL) => Promise<T | Failure>,
  ): Promise<T> {
    const failures: Failure[] = [];
    for (const url of urls) {
      const result = await this.#withRetries(() => attempt(url));
      if (!(result instanceof Failure)) return result;
      failures.push(result);
      if (result.kind === 'fatal') break;
    }
    throw this.#failed(endpoint, what, failures);
  }

  async #withRetries<T>(attempt: () => Promise<T | Failure>): Promise<T | Failure> {
    for (let done = 1; ; done++) {
      const result = await attempt();
      if (!(result instanceof Failure)) return result;
      if (result.kind !== 'transient' || done > this.#retries) return result.after(done);
      // Exponential backoff with jitter (half to all of the doubled delay), so clients that failed
      // together do not come back together.
      const delay = this.#retryDelayMs * 2 ** (done - 1) * (0.5 + Math.random() / 2);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }

  #failed(endpoint: Endpoint, what: string, failures: readonly Failure[]): ClientError {
    const cause = failures.find((failure) => failure.cause !== undefined)?.cause;
    if (failures.every((failure) => failure.kind === 'missing')) {
      const tried = failures.map((failure) => `${failure.url} (${failure.what})`).join(', ');
      return new ClientError('FETCH_NOT_FOUND', `Registry "${endpoint.name}" has no ${what}: ${tried}`, {
        cause,
      });
    }
    const tried = failures.map((failure) => `${failure.url}: ${failure.what}`).join('; ');
    const tls = failures.find((failure) => failure.tls);
    let hint = '';
    if (tls) {
      const proxy = this.#proxyFor(new URL(tls.url));
      hint =
        `. A TLS certificate was not trusted: if "${endpoint.name}" uses a private CA, give its certificate ` +
        `with --ca FILE or set NODE_EXTRA_CA_CERTS to a PEM file` +
        (proxy ? `; requests went through the proxy ${proxy}, which may be replacing certificates` : '');
    }
    return new ClientError(
      'FETCH_FAILED',
      `Could not fetch ${what} from registry "${endpoint.name}": ${tried}${hint}`,
      {
        cause,
      },
    );
  }

  /**
   * The variant in `coding` of the document at `url`, asked for by its own name (`DocumentRequest.variant`):
   * its decoded bytes when they are the document's (`sha256`), else undefined, for the document itself to be
   * asked for. Its absence (404, or 403 from an S3 origin that may not list) and its every other failure
   * are the same undefined: the variant only saves bytes, and the document's own request meets whatever
   * holds for the mirror as ever.
   */
  async #namedVariant(
    endpoint: Endpoint,
    url: URL,
    request: DocumentRequest,
    coding: ContentEncoding,
    sha256: string,
  ): Promise<DocumentResponse | undefined> {
    const at = new URL(url);
    at.pathname = encodedVariantKey(at.pathname, coding);
    // No If-None-Match: the variant has an ETag of its own. A body that decodes past the cap is a variant
    // of a later generation (or a bomb), cut off there: the document itself is asked for.
    const { etag: _, ...plain } = request;
    const answer = await this.#httpDocument(endpoint, at, { ...plain, coding }, coding).catch(
      (error: unknown) => {
        if (error instanceof ClientError && error.code === 'RESPONSE_TOO_LARGE') return undefined;
        throw error;
      },
    );
    if (answer === undefined || answer instanceof Failure || answer.status !== 200) return undefined;
    if (sha256Hex(answer.bytes) !== sha256) return undefined;
    return {
      status: 200,
      bytes: answer.bytes,
      url: answer.url,
      ...(answer.redirectedFrom ? { redirectedFrom: answer.redirectedFrom } : {}),
    };
  }

  /** A document over http(s); `coded` names the content coding it came in, if any. */
  async #httpDocument(
    endpoint: Endpoint,
    url: URL,
    request: DocumentRequest,
    acceptEncoding = DOCUMENT_ACCEPT_ENCODING,
  ): Promise<(DocumentResponse & { readonly coded?: string }) | Failure> {
    const deadline = new Deadline(endpoint.timeoutMs);
    // The large documents are published pre-compressed: undici decodes the body as it streams, and readBody
    // counts the decoded bytes against the cap (a listed document's own size), so the digest is checked on
    // what the registry signed and a compression bomb is cut off at the cap (RESPONSE_TOO_LARGE).
    const headers: Record<string, string> = {
      'user-agent': this.#userAgent,
      'accept-encoding': acceptEncoding,
    };
    if (request.etag !== undefined) headers['if-none-match'] = request.etag;
    if (request.pastCaches) headers['cache-control'] = 'no-cache';
    const wire = new WireCount(request.maxBytes, deadline);
    const opened = await this.#open(endpoint, url, headers, deadline, undefined, wire);
    if (opened instanceof Failure) return opened;
    const { response, at, hops } = opened;
    const redirected = hops.length > 0 ? { redirectedFrom: hops } : {};
    if (response.status === 304 && request.etag !== undefined) {
      deadline.abort();
      return { status: 304, url: at, ...redirected };
    }
    if (response.status !== 200) {
      deadline.abort();
      return statusFailure(display(url), response.status);
    }
    refuseDeclared(endpoint, response, at, request.maxBytes, deadline);
    const accepted =
      acceptEncoding === 'identity'
        ? []
        : acceptEncoding === DOCUMENT_ACCEPT_ENCODING
          ? DOCUMENT_CODINGS
          : [acceptEncoding];
    const coding = response.headers.get('content-encoding')?.trim().toLowerCase();
    const coded = coding === undefined || coding === '' || coding === 'identity' ? {} : { coded: coding };
    const bytes = await collect(
      readBody(response, deadline, at, request.maxBytes, endpoint, wire, accepted),
    ).catch((error: unknown) => {
      // A variant decoding past the cap, of a document whose digest is known: the document itself may fit.
      if (
        coded.coded !== undefined &&
        request.sha256 !== undefined &&
        request.coding === undefined &&
        error instanceof ClientError &&
        error.code === 'RESPONSE_TOO_LARGE'
      )
        throw new VariantTooLarge(error);
      return bodyFailure(error);
    });
    if (bytes instanceof Failure) return bytes;
    const etag = response.headers.get('etag');
    return etag === null
      ? { status: 200, bytes, url: at, ...coded, ...redirected }
      : { status: 200, bytes, etag, url: at, ...coded, ...redirected };
  }

  async #httpDownload(
    endpoint: Endpoint,
    url: URL,
    maxBytes: number,
    guard?: Guard,
  ): Promise<Download | Failure> {
    const deadline = new Deadline(endpoint.timeoutMs);
    // Artifacts are compressed already; identity keeps content-length the size of what is counted.
    const headers = { 'user-agent': this.#userAgent, 'accept-encoding': 'identity' };
    const wire = new WireCount(maxBytes, deadline);
    const opened = await this.#open(endpoint, url, headers, deadline, undefined, wire, guard);
    if (opened instanceof Failure) return opened;
    const { response, at } = opened;
    if (response.status !== 200) {
      deadline.abort();
      return statusFailure(display(url), response.status);
    }
    const declared = refuseDeclared(endpoint, response, at, maxBytes, deadline);
    const encoding = response.headers.get('content-encoding');
    // Refused here, before the caller holds the body, so the next mirror is tried (readBody refuses it too).
    const problem = codingProblem(encoding);
    if (problem !== undefined) {
      deadline.abort();
      await response.body?.cancel().catch(() => {});
      return new Failure(display(url), problem, 'unusable');
    }
    const size = encoding === null || encoding === 'identity' ? declared : undefined;
    const body = surfaced(endpoint, at, readBody(response, deadline, at, maxBytes, endpoint, wire));
    const shown = shownText(at);
    return size === undefined ? { url: shown, body } : { url: shown, size, body };
  }

  /**
   * The response to `url` after its redirects (up to five), any status. Credentials go with a request
   * only to the origin of bases[0], and only on a chain that started there; a redirect from there to
   * another origin is refused, not followed.
   *
   * `scoped` headers (an OCI registry's token, or the Basic credentials sent to its token service) are the
   * other policy: they go only while the chain stays on their origin, and a redirect elsewhere is followed
   * WITHOUT them. Registries answer a blob GET with a redirect to their storage (a CDN, a presigned bucket
   * URL), so refusing it, as for a registry's credentials, would make most registries unusable; sending the
   * token along would hand it to a third party (and a presigned URL refuses a second form of auth anyway).
   * Once dropped they stay dropped, even if a later hop comes back to their origin: that URL was chosen by
   * the other origin, which must not be able to aim our token at a request of its choosing.
   *
   * A hop is `guarded` when a party not on this machine chose its URL: the first when `guard` is given,
   * and any other whose origin a host not on this machine redirected to (`guardedAfter`). A guarded hop
   * is never connected to an address in a guarded range (this machine's, a link-local one), whatever its
   * name (an address literal, or a name resolved at connect time by `guardedLookup`): the first throws
   * `guard.refused`, a redirect fails as the rule for redirects by name (`redirectProblem`) does. Through a
   * proxy the proxy resolves the name, and only the rule by name holds.
   */
  async #open(
    endpoint: Endpoint,
    start: URL,
    headers: Readonly<Record<string, string>>,
    deadline: Deadline,
    scoped?: ScopedHeaders,
    wire?: WireCount,
    guard?: Guard,
  ): Promise<{ readonly response: Response; readonly at: string; readonly hops: string[] } | Failure> {
    const shown = display(start);
    /** The URLs redirected from, in order (`DocumentResponse.redirectedFrom`). */
    const hops: string[] = [];
    const credentialed = endpoint.credentials ? new URL(endpoint.bases[0] as string).origin : undefined;
    // Only a chain that starts on the registry's origin carries its credentials: a mirror (or an artifact's
    // host) that redirects there chose the URL, and must not aim the user's credentials at a request of its
    // choosing. Followed without them, as the scoped headers are below.
    const mayCredential = credentialed !== undefined && start.origin === credentialed;
    const u = await undici();
    let url = start;
    let sendScoped = scoped !== undefined;
    let guarded = guard !== undefined;
    for (let hop = 0; ; hop++) {
      const via = hop === 0 ? '' : `redirected to ${display(url)}: `;
      const refuse = (range: GuardedRange, detail: string): Failure => {
        if (hop === 0 && guard !== undefined) throw guard.refused(range, detail);
        return new Failure(shown, `${via}refused: ${redirectInto(range)} (${detail})`, 'unusable');
      };
      // An address literal is never looked up: the name is the address.
      const literal = url.hostname.replace(/^\[(.*)\]$/, '$1');
      const literalRange = guarded ? guardedRangeOf(literal) : undefined;
      if (literalRange !== undefined) return refuse(literalRange, `${literal} is ${literalRange.member}`);
      const sendCredentials = mayCredential && url.origin === credentialed;
      if (url.origin !== scoped?.origin) sendScoped = false;
      const base = sendScoped && scoped ? { ...headers, ...scoped.headers } : headers;
      const sent = sendCredentials ? { ...base, ...credentialHeaders(endpoint.credentials) } : base;
      // Per hop: a redirect may move from a loopback http: URL, which never goes through a proxy, to https:.
      const agent = await this.#agentFor(endpoint, url.protocol === 'http:', guarded);
      const dispatcher = wire ? countingDispatcher(u, agent, wire) : agent;
      let response: Response;
      deadline.arm();
      try {
        response = await u.fetch(url, {
          redirect: 'manual',
          headers: sent,
          signal: deadline.signal,
          dispatcher,
        });
      } catch (error) {
        const refusal = guarded ? refusalIn(error) : undefined;
        if (refusal !== undefined)
          return refuse(refusal.range, `${refusal.host} resolved to ${refusal.address}`);
        if (deadline.expired)
          return new Failure(shown, `${via}timed out after ${seconds(deadline.ms)}`, 'transient');
        return networkFailure(shown, error, via);
      } finally {
        deadline.disarm();
      }
      // What answered, and the hops below, are kept (a session reads marks as of them): credentials
      // dropped, the query kept; only a message hides its values.
      if (!REDIRECT_STATUSES.has(response.status)) return { response, at: withoutCredentials(url), hops };
      await response.body?.cancel().catch(() => {});
      const location = response.headers.get('location');
      const next = location === null ? undefined : parseUrl(location, url);
      if (next === undefined) {
        return new Failure(shown, `${via}HTTP ${response.status} without a usable Location`, 'unusable');
      }
      if (sendCredentials && next.origin !== url.origin) {
        throw new ClientError(
          'FETCH_CROSS_ORIGIN_REDIRECT',
          `${display(url)} of registry "${endpoint.name}" redirects to another origin (${display(next)}): refused, ` +
            `as the registry's credentials may only go to ${credentialed}`,
        );
      }
      const problem = redirectProblem(url, next);
      if (problem !== undefined) {
        return new Failure(
          shown,
          `${via}HTTP ${response.status} to ${display(next)}, refused: ${problem}`,
          'unusable',
        );
      }
      if (hop === MAX_REDIRECTS)
        return new Failure(shown, `more than ${MAX_REDIRECTS} redirects`, 'unusable');
      guarded = guardedAfter(url, guarded, next);
      hops.push(withoutCredentials(url));
      url = next;
    }
  }

  async ociBlob(request: OciBlobRequest): Promise<Download> {
    const named = ociTarget(request);
    const naming = request.namedBy?.bases[0] === undefined ? undefined : parseUrl(request.namedBy.bases[0]);
    const refused = (range: GuardedRange, detail?: string) =>
      new ClientError(
        'REGISTRY_URL_INVALID',
        `Registry "${request.namedBy?.name}": OCI artifact ${request.reference} is refused: a registry on ${range.place}${detail === undefined ? '' : ` (${detail})`}, named by a registry that is not on this machine`,
      );
    const elsewhere = naming !== undefined && isElsewhere(naming);
    // An origin the user configured for the naming registry is theirs, not that registry's choice.
    const configured = (request.namedBy?.bases ?? []).flatMap((base) => parseUrl(base) ?? []);
    const byName = naming === undefined ? undefined : namedInto(new URL(named.base), naming, configured);
    if (byName !== undefined) throw refused(byName.range, byName.detail);
    // The check above is by name; the guard holds it where the registry is connected to, by address.
    const theirs = configured.some((base) => base.origin === named.origin);
    const target: OciTarget = elsewhere && !theirs ? { ...named, guard: { refused } } : named;
    if (!SHA256_DIGEST.test(request.digest)) {
      throw new ClientError(
        'REQUEST_INVALID',
        `OCI blob digest ${JSON.stringify(request.digest)} of ${request.reference} is not sha256: and 64 lower-case hex digits`,
      );
    }
    const what = `blob ${request.digest} of ${request.reference}`;
    const url = new URL(`${target.base}/v2/${target.ref.repository}/blobs/${request.digest}`);
    // Blobs are compressed already; identity keeps content-length the size of what is counted.
    const { response, at, deadline, wire } = await this.#ociGet(
      target,
      url,
      { 'accept-encoding': 'identity' },
      what,
      request.maxBytes,
    );
    const declared = refuseDeclared(target.endpoint, response, at, request.maxBytes, deadline);
    const encoding = response.headers.get('content-encoding');
    const size = encoding === null || encoding === 'identity' ? declared : undefined;
    const body = surfaced(
      target.endpoint,
      at,
      readBody(response, deadline, at, request.maxBytes, target.endpoint, wire),
    );
    const shown = shownText(at);
    return size === undefined ? { url: shown, body } : { url: shown, size, body };
  }

  async ociManifest(request: OciRequest): Promise<OciManifest> {
    const target = ociTarget(request);
    const { ref, endpoint } = target;
    const name = ref.digest ?? ref.tag ?? 'latest';
    const what = `manifest ${name} of ${request.reference}`;
    const url = new URL(`${target.base}/v2/${ref.repository}/manifests/${name}`);
    const { response, at, deadline, wire } = await this.#ociGet(
      target,
      url,
      { accept: MANIFEST_MEDIA_TYPES.join(', ') },
      what,
      OCI_MANIFEST_LIMIT,
    );
    refuseDeclared(endpoint, response, at, OCI_MANIFEST_LIMIT, deadline);
    let bytes: Uint8Array;
    try {
      bytes = await collect(readBody(response, deadline, at, OCI_MANIFEST_LIMIT, endpoint, wire));
    } catch (error) {
      if (error instanceof BodyFailed) throw this.#failed(endpoint, what, [error.failure]);
      throw error;
    }
    const digest = `sha256:${sha256Hex(bytes)}`;
    // A manifest by digest is content-addressed: bytes of another digest are another manifest.
    if (ref.digest !== undefined && digest !== ref.digest) {
      throw new TrustError(
        'DOCUMENT_MISMATCH',
        `${shownText(at)} (${what}) does not match its digest: expected ${ref.digest}, received ${digest} (${bytes.byteLength} bytes)`,
      );
    }
    // The registry's own statement of what it served, when it makes one in our algorithm, must agree too.
    const served = response.headers.get('docker-content-digest')?.trim();
    if (served?.startsWith('sha256:') && served !== digest) {
      throw new TrustError(
        'DOCUMENT_MISMATCH',
        `${shownText(at)} (${what}) is served as ${served} (Docker-Content-Digest) but its bytes hash to ${digest}`,
      );
    }
    const mediaType = (response.headers.get('content-type') ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
    return { digest, mediaType, bytes };
  }

  /**
   * A 200 to a GET of an OCI registry, after the token dance it asks for: anonymous first; on a 401, a
   * Bearer token from the realm it names (or Basic, if that is its challenge), then once more with it.
   * `maxBytes` caps the body the caller reads: what comes on the wire is counted against what such a body
   * can take compressed (WireCount), as for any download, since a registry may encode a body whatever the
   * request's Accept-Encoding said.
   */
  async #ociGet(
    target: OciTarget,
    url: URL,
    headers: Readonly<Record<string, string>>,
    what: string,
    maxBytes: number,
  ): Promise<{
    readonly response: Response;
    readonly at: string;
    readonly deadline: Deadline;
    readonly wire: WireCount;
  }> {
    // A token is asked for once per registry, repository and credentials in a run, not once per blob.
    const who = target.credentials
      ? sha256Hex(`${target.credentials.username}:${target.credentials.password}`)
      : '';
    const key = `${target.origin}\n${target.ref.repository}\n${who}`;
    const held = this.#ociTokens.get(key);
    let authorization = held !== undefined && held.until > Date.now() ? held.authorization : undefined;
    let reused = authorization !== undefined;
    for (;;) {
      const sent = authorization;
      const result = await this.#withRetries(async () => {
        const deadline = new Deadline(target.timeoutMs);
        const wire = new WireCount(maxBytes, deadline);
        const opened = await this.#open(
          target.endpoint,
          url,
          { 'user-agent': this.#userAgent, ...headers },
          deadline,
          sent === undefined ? undefined : { origin: target.origin, headers: { authorization: sent } },
          wire,
          target.guard,
        );
        if (opened instanceof Failure) return opened;
        if (opened.response.status >= 500) {
          deadline.abort();
          return statusFailure(display(url), opened.response.status);
        }
        return { ...opened, deadline, wire };
      });
      if (result instanceof Failure) throw this.#failed(target.endpoint, what, [result]);
      const { response, deadline } = result;
      if (response.status === 200) return result;
      deadline.abort();
      // Only the registry's own challenge is answered: one from where it redirected (its blob storage, a
      // CDN) would name a realm of that host's choosing, and the user's credentials would go there.
      if (response.status !== 401 || new URL(result.at).origin !== target.origin)
        throw this.#failed(target.endpoint, what, [
          statusFailure(display(new URL(result.at)), response.status),
        ]);
      if (reused) {
        // Expired or revoked since it was issued: one new dance, as for the first request.
        this.#ociTokens.delete(key);
        authorization = undefined;
        reused = false;
        continue;
      }
      if (authorization !== undefined) {
        const offered = authorization.startsWith('Basic ')
          ? 'them'
          : target.credentials === undefined
            ? 'an anonymous token'
            : 'the token issued for them';
        throw refusedCredentials(target, what, `${display(url)} answered HTTP 401 to ${offered}`);
      }
      const header = response.headers.get('www-authenticate');
      const challenge = parseBearerChallenge(header);
      if (challenge === undefined) {
        throw new ClientError(
          'FETCH_FAILED',
          `Could not fetch ${what}: ${display(url)} answered HTTP 401 without a Bearer or Basic challenge ` +
            `(WWW-Authenticate: ${header === null ? 'none' : JSON.stringify(header)})`,
        );
      }
      authorization = await this.#ociAuthorization(target, what, challenge);
      this.#ociTokens.set(key, { authorization, until: Date.now() + OCI_TOKEN_REUSE_MS });
    }
  }

  /** The Authorization value a challenge asks for: a token from its realm, or the credentials as Basic. */
  async #ociAuthorization(target: OciTarget, what: string, challenge: AuthChallenge): Promise<string> {
    if (challenge.scheme === 'basic') {
      if (target.credentials === undefined) {
        throw missingCredentials(target, what, 'it asks for a user name and password (Basic)');
      }
      return basicAuthorization(target.credentials);
    }
    const realm = challenge.realm === undefined ? undefined : parseUrl(challenge.realm);
    const problem =
      realm === undefined
        ? `its realm ${JSON.stringify(challenge.realm ?? null)} is not a URL`
        : realm.protocol === 'file:'
          ? 'its realm is a file: URL'
          : urlProblem(realm);
    if (realm === undefined || problem !== undefined) {
      throw new ClientError(
        'FETCH_FAILED',
        `Could not fetch ${what}: registry "${target.endpoint.name}" sent a Bearer challenge this client will not follow: ${problem}`,
      );
    }
    // As for a redirect there: a registry elsewhere (one a publisher or a lock may name) would aim a GET of
    // its choosing, with the user's credentials for it, at a service on this machine. Checked by name here,
    // and by the address connected to (the guard, `guardedAfter` as for a redirect).
    const realmRefused = (range: GuardedRange, detail?: string) =>
      new ClientError(
        'REGISTRY_URL_INVALID',
        `Could not fetch ${what}: registry "${target.endpoint.name}" names a token realm on ${range.place} (${display(realm)}${detail === undefined ? '' : `: ${detail}`}), and it is not on this machine: refused before any request`,
      );
    const registry = new URL(target.base);
    const realmByName = namedInto(realm, registry, [registry]);
    if (realmByName !== undefined) throw realmRefused(realmByName.range, realmByName.detail);
    const realmGuard = guardedAfter(registry, target.guard !== undefined, realm)
      ? { refused: realmRefused }
      : undefined;
    if (challenge.service !== undefined) realm.searchParams.set('service', challenge.service);
    // Pull only, whatever scope the challenge names: the least a token may allow.
    realm.searchParams.set('scope', `repository:${target.ref.repository}:pull`);
    const tokenWhat = `a token for ${what} from ${display(realm)}`;
    // The token service is the registry's to name, so the registry's credentials go to it (as docker sends
    // them), but only there: never after a redirect to another origin.
    const scoped =
      target.credentials === undefined
        ? undefined
        : { origin: realm.origin, headers: { authorization: basicAuthorization(target.credentials) } };
    const endpoint: Endpoint = { ...target.endpoint, bases: [realm.origin] };
    const result = await this.#withRetries(async () => {
      const deadline = new Deadline(target.timeoutMs);
      // The token service is the registry's to name: its answer is counted on the wire as any body is.
      const wire = new WireCount(OCI_TOKEN_LIMIT, deadline);
      const opened = await this.#open(
        endpoint,
        realm,
        { 'user-agent': this.#userAgent, accept: 'application/json' },
        deadline,
        scoped,
        wire,
        realmGuard,
      );
      if (opened instanceof Failure) return opened;
      if (opened.response.status !== 200) {
        deadline.abort();
        const { status } = opened.response;
        return status === 401 || status === 403
          ? new Failure(display(realm), `HTTP ${status}`, 'fatal')
          : statusFailure(display(realm), status);
      }
      return collect(readBody(opened.response, deadline, opened.at, OCI_TOKEN_LIMIT, endpoint, wire)).catch(
        bodyFailure,
      );
    });
    if (result instanceof Failure) {
      if (result.what.startsWith('HTTP 401') || result.what.startsWith('HTTP 403')) {
        throw target.credentials === undefined
          ? missingCredentials(target, what, `its token service refused an anonymous token (${result.what})`)
          : refusedCredentials(target, what, `its token service answered ${result.what} to them`);
      }
      throw this.#failed(endpoint, tokenWhat, [result]);
    }
    const token = tokenOf(result);
    if (token === undefined) {
      throw new ClientError(
        'FETCH_FAILED',
        `Could not fetch ${tokenWhat}: the answer is not JSON with a "token" or "access_token" string that an ` +
          'HTTP header can carry',
      );
    }
    return `Bearer ${token}`;
  }

  /**
   * The agent for the endpoint's CA set, made once and kept until close(). `direct` (an http: URL, which
   * the client reads only on a loopback host): one that never goes through a proxy. Cleartext is allowed
   * there only because nothing leaves the machine; through HTTP_PROXY the request, and the registry's
   * credentials with it, crossed the network to the proxy unencrypted (and a proxy elsewhere cannot reach
   * this machine's loopback anyway). Go's clients (docker, helm, oras) never proxy a loopback host either.
   */
  async #agentFor(endpoint: Endpoint, direct = false, guarded = false): Promise<Dispatcher> {
    this.#extraCa ??= readExtraCa(this.#env);
    const extra = await this.#extraCa;
    const cas =
      extra === undefined && endpoint.ca === undefined ? '' : `${extra ?? ''}\0${endpoint.ca ?? ''}`;
    // A guarded request never takes a pooled connection of an agent that did not check its address.
    const key = `${direct ? 'direct\0' : ''}${guarded ? 'guarded\0' : ''}${cas}`;
    const known = this.#agents.get(key);
    if (known) return known;
    // `ca` replaces Node's roots rather than adding to them, hence the union.
    const ca =
      cas === ''
        ? undefined
        : [...rootCertificates, ...[extra, endpoint.ca].filter((pem) => pem !== undefined)];
    // How a direct connection is made: a proxy's own connection, and a tunnel's, take none of it.
    const lookup = guarded ? guardedLookup(this.#lookup ?? dns.lookup) : this.#lookup;
    const connect = {
      ...(ca === undefined ? {} : { ca }),
      ...(lookup === undefined ? {} : { lookup }),
    };
    if (direct) {
      const agent = new (await undici()).Agent({ headersTimeout: 0, bodyTimeout: 0, connect });
      this.#agents.set(key, agent);
      return agent;
    }
    const { http, https, no } = this.#proxy;
    for (const [name, value] of [
      ['HTTP_PROXY', http],
      ['HTTPS_PROXY', https],
    ] as const) {
      if (value !== '' && parseUrl(withScheme(value)) === undefined) {
        throw new ClientError('FETCH_FAILED', `${name} is set but is not a proxy URL (http://HOST:PORT)`);
      }
    }
    // Through a proxy the origin's TLS options are `requestTls`, the proxy's own `proxyTls`.
    const agent = new (await undici()).EnvHttpProxyAgent({
      httpProxy: http === '' ? '' : withScheme(http),
      httpsProxy: https === '' ? '' : withScheme(https),
      noProxy: no,
      // No http: target reaches this agent (they are loopback, sent direct); were one to, a plain GET with
      // the absolute URL, as curl sends, rather than a CONNECT.
      proxyTunnel: false,
      // Ours (Deadline) measure every request; undici's would only add a second, different clock.
      headersTimeout: 0,
      bodyTimeout: 0,
      connect,
      ...(ca === undefined ? {} : { requestTls: { ca }, proxyTls: { ca } }),
    });
    this.#agents.set(key, agent);
    return agent;
  }

  /** The proxy (without any credentials in it) that a request to `url` goes through, if any. */
  #proxyFor(url: URL): string | undefined {
    if (url.protocol === 'http:') return undefined;
    const proxy = url.protocol === 'https:' ? this.#proxy.https || this.#proxy.http : this.#proxy.http;
    if (proxy === '' || bypassesProxy(this.#proxy.no, url)) return undefined;
    const parsed = parseUrl(withScheme(proxy));
    return parsed ? display(parsed).replace(/\/$/, '') : undefined;
  }
}

/** Headers sent only while a request's redirects stay on `origin` (see #open). */
interface ScopedHeaders {
  readonly origin: string;
  readonly headers: Readonly<Record<string, string>>;
}

/** An OCI request's registry, as the rest of the fetcher sees one: an endpoint and the URL its API is under. */
interface OciTarget {
  /** The reference with the registry and repository its API is asked at (`ociApiOf`): URLs and token scopes. */
  readonly ref: OciReference;
  readonly endpoint: Endpoint;
  /** `https://host[:port]` (or http: for a loopback registry without a CA); no trailing slash. */
  readonly base: string;
  readonly origin: string;
  readonly timeoutMs: number;
  readonly credentials?: OciCredentials;
  /** Given when a registry elsewhere named this one: its connections may not reach this machine, nor its link. */
  readonly guard?: Guard;
}

/**
 * The reference's registry as a URL (Docker Hub's API host for any of its names, `ociApiOf`): https:,
 * except a loopback registry given no CA, which is reached over
 * http: (the rule the client applies to registry URLs: cleartext only where nothing leaves the machine).
 */
function ociTarget(request: OciRequest): OciTarget {
  const written = parseOciReference(request.reference);
  // Docker Hub's API is at registry-1.docker.io whatever name the reference writes, its official names under
  // library/ (the repository a token's scope names too); the reference as written stays what messages name.
  const ref = { ...written, ...ociApiOf(written.registry, written.repository) };
  const timeoutMs = request.timeoutMs ?? OCI_TIMEOUT_MS;
  const { credentials } = request;
  if (credentials !== undefined) {
    const problem = credentials.username.includes(':')
      ? "its user name holds a ':', which Basic authentication cannot carry"
      : [credentials.username, credentials.password].some((secret) => HEADER_VALUE_FORBIDDEN.test(secret))
        ? 'they hold a line break or NUL, which no HTTP header may carry'
        : undefined;
    if (problem !== undefined) {
      throw new ClientError(
        'CLIENT_CONFIG_INVALID',
        `The credentials for ${written.registry} are refused: ${problem}`,
      );
    }
  }
  // One rule with the repositories publish and a pasted reference compare (oci.ts ociRepositoryOf): what
  // two spellings of a registry reach here is what decides whether they are one. parseOciReference has
  // held the port to 1-65535, so the URL parses.
  const url = ociRegistryUrl(ref.registry, { ca: request.ca !== undefined }) as URL;
  const endpoint: Endpoint = {
    name: written.registry,
    bases: [url.origin],
    timeoutMs,
    ...(request.ca === undefined ? {} : { ca: request.ca }),
  };
  return {
    ref,
    endpoint,
    base: url.origin,
    origin: url.origin,
    timeoutMs,
    ...(credentials === undefined ? {} : { credentials }),
  };
}

function basicAuthorization(credentials: OciCredentials): string {
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
}

/** The token of a token service's JSON answer (`token`, or OAuth2's `access_token`), if it can be a header. */
function tokenOf(bytes: Uint8Array): string | undefined {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { token, access_token: accessToken } = value as { token?: unknown; access_token?: unknown };
  const found = typeof token === 'string' && token !== '' ? token : accessToken;
  return typeof found === 'string' && found !== '' && !HEADER_VALUE_FORBIDDEN.test(found) && !/\s/.test(found)
    ? found
    : undefined;
}

function missingCredentials(target: OciTarget, what: string, why: string): ClientError {
  return new ClientError(
    'CREDENTIALS_MISSING',
    `Could not fetch ${what}: registry "${target.endpoint.name}" requires credentials to pull ` +
      `${target.ref.repository} (${why}), and none were given for it`,
  );
}

function refusedCredentials(target: OciTarget, what: string, why: string): ClientError {
  return target.credentials === undefined
    ? missingCredentials(target, what, why)
    : new ClientError(
        'FETCH_FAILED',
        `Could not fetch ${what}: registry "${target.endpoint.name}" refused the credentials given for ` +
          `${target.ref.repository} (${why})`,
      );
}

/** The endpoint's bases as URLs, or REGISTRY_URL_INVALID before any request is made. */
function checkEndpoint(endpoint: Endpoint): URL[] {
  if (endpoint.bases.length === 0) {
    throw new ClientError('REGISTRY_URL_INVALID', `Registry "${endpoint.name}" has no URL`);
  }
  if (endpoint.credentials) checkCredentials(endpoint.name, endpoint.credentials);
  return endpoint.bases.map((base, index) => {
    const role = index === 0 ? 'URL' : `mirror ${index}`;
    const url = parseUrl(base);
    if (url === undefined) {
      throw new ClientError(
        'REGISTRY_URL_INVALID',
        `Registry "${endpoint.name}": ${role} "${base}" is not a URL`,
      );
    }
    const problem = urlProblem(url) ?? (url.search || url.hash ? 'it has a query or fragment' : undefined);
    if (problem !== undefined) {
      throw new ClientError(
        'REGISTRY_URL_INVALID',
        `Registry "${endpoint.name}": ${role} ${display(url)} is refused: ${problem}`,
      );
    }
    return url;
  });
}

/** The artifact URL, refused unless its scheme is one the client reads (file: only for a file: registry). */
function checkDownloadUrl(endpoint: Endpoint, bases: readonly URL[], raw: string): URL {
  const url = parseUrl(raw);
  const byName = url === undefined || bases[0] === undefined ? undefined : namedInto(url, bases[0], bases);
  const problem =
    url === undefined
      ? 'it is not a URL'
      : url.protocol === 'file:' && bases[0]?.protocol !== 'file:'
        ? 'a file: URL from a registry that is not on this machine'
        : url.protocol === 's3:' && bases[0]?.protocol !== 's3:'
          ? // Else any registry could have the user's AWS credentials read a bucket of its choosing.
            'an s3: URL from a registry that is not in S3'
          : byName !== undefined
            ? // A registry elsewhere (or a publisher it hosts) would aim a GET at a service of this machine,
              // or of its link (a cloud metadata service).
              `${artifactIn(byName.range)}${byName.detail === undefined ? '' : ` (${byName.detail})`}`
            : urlProblem(url);
  if (problem !== undefined) {
    throw new ClientError(
      'REGISTRY_URL_INVALID',
      `Registry "${endpoint.name}": artifact URL ${url ? display(url) : JSON.stringify(raw)} is refused: ${problem}`,
    );
  }
  return url as URL;
}

/**
 * Why the client will not read `url`, or undefined: https:, loopback http:, a file: URL of this machine, an
 * s3: bucket (a set's bucket, a manifest URL in one). `install URL` holds its manifest URL to it before a
 * key is pinned (client.ts `#urlReference`).
 */
export function urlProblem(url: URL): string | undefined {
  if (url.username !== '' || url.password !== '') {
    return 'it has credentials in it (they belong in the registry configuration)';
  }
  if (url.protocol === 'https:') return undefined;
  if (url.protocol === 'http:')
    return isLoopbackHost(url.hostname) ? undefined : 'http: is allowed only for loopback hosts';
  if (url.protocol === 'file:') {
    try {
      fileURLToPath(url);
      return undefined;
    } catch {
      return 'not a file: URL of this machine';
    }
  }
  if (url.protocol === 's3:') {
    return /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(url.hostname) && url.port === ''
      ? undefined
      : 'an s3: URL must be s3://BUCKET/optional/prefix, with a valid bucket name';
  }
  return `the scheme ${url.protocol} is not https:, loopback http:, file: or s3:`;
}

/**
 * The guarded range an http(s): URL's host is in by name: a loopback host, and the other names a connection
 * takes there without naming loopback (localhost with its root dot, and names under .localhost, which
 * resolvers answer with loopback), then any address literal in a range (GUARDED_SUBNETS: the unspecified
 * address 0.0.0.0 or [::], a mapped [::ffff:7f00:1], link-local 169.254.169.254 or [fe80::1]). The WHATWG
 * parser has already written an IPv4 host in its one form (`http://2852039166/`, `http://0xa9.254.169.254/`
 * and `http://169.254.43518/` are all 169.254.169.254), so the literal is judged as connected to.
 * isLoopbackHost alone let a registry elsewhere name https://0.0.0.0:PORT/ and reach a local service.
 */
function guardedRangeOfUrl(url: URL): GuardedRange | undefined {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  const host = url.hostname.toLowerCase();
  if (isLoopbackHost(host) || /(^|\.)localhost\.?$/.test(host)) return LOOPBACK;
  return guardedRangeOf(host.replace(/^\[(.*)\]$/, '$1'));
}

/** An http(s): URL on a host that reaches this machine's own services, by name (see guardedRangeOfUrl). */
function onThisMachine(url: URL): boolean {
  return guardedRangeOfUrl(url)?.onThisMachine === true;
}

/**
 * The range `to` is refused for, by name, when `by` (a registry, or a host that redirected) names it, and
 * which literal it is: none when `by` is on this machine (a registry there is the user's own) or a file:
 * registry. A link-local origin among `own` (the origins the user configured: a registry's and its
 * mirrors', or the redirecting host's own) is theirs, as the guard at connect time has it; this machine's
 * loopback never is, for a registry elsewhere.
 */
function namedInto(
  to: URL,
  by: URL,
  own: readonly URL[],
): { readonly range: GuardedRange; readonly detail?: string } | undefined {
  if (!isElsewhere(by)) return undefined;
  const range = guardedRangeOfUrl(to);
  if (range === undefined) return undefined;
  if (!range.onThisMachine && own.some((base) => base.origin === to.origin)) return undefined;
  const literal = to.hostname.replace(/^\[(.*)\]$/, '$1');
  return isIP(literal) === 0 ? { range } : { range, detail: `${literal} is ${range.member}` };
}

/**
 * Why a redirect from `from` to `to` is not followed: no downgrade from https, nothing but http(s), and
 * never from another host onto this machine's loopback or a link-local address (a server elsewhere aiming a
 * GET at a local service, or at a cloud metadata service).
 */
function redirectProblem(from: URL, to: URL): string | undefined {
  if (to.protocol === 'file:' || to.protocol === 's3:') return `a redirect to a ${to.protocol} URL`;
  if (from.protocol === 'https:' && to.protocol !== 'https:')
    return 'a redirect from https: to another scheme';
  const byName = namedInto(to, from, [from]);
  if (byName !== undefined)
    return `${redirectInto(byName.range)}${byName.detail === undefined ? '' : ` (${byName.detail})`}`;
  return urlProblem(to);
}

/** Why an artifact URL in `range` is refused: what a message says. */
function artifactIn(range: GuardedRange): string {
  return `a URL on ${range.place} from a registry that is not on this machine`;
}

/** Why a redirect into `range` is refused: what a message says. */
function redirectInto(range: GuardedRange): string {
  return `a redirect from another host to ${range.place}`;
}

/** A registry base not on this machine (by name): a web registry elsewhere, or one in S3. */
function isElsewhere(base: URL): boolean {
  return !(base.protocol === 'file:' || onThisMachine(base));
}

/**
 * Whether the hop to `to`, redirected (or, for a token realm, named) by `from`, is guarded: on the same
 * origin it is as `from` was; on another, when `from` was guarded or is not on this machine by name. Once a
 * party elsewhere has chosen a URL, the rest of the chain stays guarded.
 */
function guardedAfter(from: URL, fromGuarded: boolean, to: URL): boolean {
  return to.origin === from.origin ? fromGuarded : fromGuarded || !onThisMachine(from);
}

/**
 * Refuses credentials that cannot be sent as a header before undici sees them: its own error would
 * quote the header value, secret and all.
 */
function checkCredentials(name: string, credentials: Credentials): void {
  const invalid = (what: string) =>
    new ClientError('CLIENT_CONFIG_INVALID', `Registry "${name}": the ${credentials.type} ${what}`);
  if (credentials.type === 'api_key' && !HEADER_NAME.test(credentials.header)) {
    throw invalid(`header name ${JSON.stringify(credentials.header)} is not an HTTP header name`);
  }
  const secrets =
    credentials.type === 'bearer_token'
      ? [credentials.token]
      : credentials.type === 'api_key'
        ? [credentials.key]
        : [credentials.username, credentials.password];
  if (secrets.some((secret) => HEADER_VALUE_FORBIDDEN.test(secret))) {
    throw invalid('holds a line break or NUL, which no HTTP header may carry');
  }
}

function credentialHeaders(credentials: Credentials | undefined): Record<string, string> {
  switch (credentials?.type) {
    case 'bearer_token':
      return { authorization: `Bearer ${credentials.token}` };
    case 'api_key':
      return { [credentials.header.toLowerCase()]: credentials.key };
    case 'basic_auth':
      return { authorization: basicAuthorization(credentials) };
    default:
      return {};
  }
}

/** What a document request accepts: the codings the registry publishes its large documents in. */
const DOCUMENT_ACCEPT_ENCODING = 'br, gzip';
/** The codings of DOCUMENT_ACCEPT_ENCODING, as `codingProblem` reads a response's (x-gzip is gzip). */
const DOCUMENT_CODINGS: readonly string[] = ['br', 'gzip'];

/**
 * Why a response's Content-Encoding is refused before its body is read, or undefined. More than one coding
 * (`gzip, br`) is always refused: undici decodes each in turn, and WireCount sees only the outer one, so 128
 * bytes of brotli that decode to 64 MiB of empty gzip blocks, which decode to nothing, kept the client busy
 * decoding until the timeout without a byte counted against either cap. `accepted`, when given, is every
 * coding the request asked for: a document request asks for brotli and gzip, and another coding (or one
 * undici does not know, passed through undecoded) is no answer to it. Identity is no coding.
 */
function codingProblem(header: string | null, accepted?: readonly string[]): string | undefined {
  if (header === null) return undefined;
  const codings = header
    .split(',')
    .map((coding) => coding.trim().toLowerCase())
    .filter((coding) => coding !== '' && coding !== 'identity')
    .map((coding) => (coding === 'x-gzip' ? 'gzip' : coding));
  const shown = JSON.stringify(header.slice(0, 64));
  if (codings.length > 1)
    return `the body is in ${codings.length} stacked content codings (${shown}), refused`;
  const coding = codings[0];
  if (coding !== undefined && accepted !== undefined && !accepted.includes(coding))
    return `the body is in a content coding not asked for (${shown}; asked for ${accepted.join(', ')}), refused`;
  return undefined;
}

/** The content-length, after refusing one over the cap (the body is never read then). */
function refuseDeclared(
  endpoint: Endpoint,
  response: Response,
  url: string,
  maxBytes: number,
  deadline: Deadline,
): number | undefined {
  const header = response.headers.get('content-length');
  const declared = header !== null && /^\d+$/.test(header) ? Number(header) : undefined;
  if (declared !== undefined && declared > maxBytes) {
    deadline.abort();
    throw tooLarge(endpoint, url, maxBytes, `it declares ${declared} bytes (content-length)`);
  }
  return declared;
}

/**
 * The body, chunk by chunk as it arrives, cut off (and the connection dropped) as soon as more than
 * `maxBytes` came, whatever content-length said, or once a span of the timeout spent waiting on the server
 * brought less than LOW_SPEED_BYTES_PER_SECOND on average. The timer runs only while waiting on the server.
 * A Content-Encoding `codingProblem` refuses is a failure before the first chunk: a document's mirror loop
 * tries the next mirror, and a body already handed to its caller fails FETCH_FAILED.
 */
async function* readBody(
  response: Response,
  deadline: Deadline,
  url: string,
  maxBytes: number,
  endpoint: Endpoint,
  wire?: WireCount,
  accepted?: readonly string[],
): AsyncGenerator<Uint8Array> {
  const body = response.body;
  if (body === null) return;
  const reader = body.getReader();
  let received = 0;
  let finished = false;
  // The current span: the time spent waiting on the server (not while the caller holds a chunk), and
  // the bytes it brought.
  let spanWaited = 0;
  let spanBytes = 0;
  try {
    const problem = codingProblem(response.headers.get('content-encoding'), accepted);
    if (problem !== undefined) throw new BodyFailed(new Failure(url, problem, 'unusable'));
    for (;;) {
      let next: Awaited<ReturnType<typeof reader.read>>;
      deadline.arm();
      const waitStart = performance.now();
      try {
        next = await reader.read();
      } catch (error) {
        if (wire?.exceeded)
          throw tooLarge(
            endpoint,
            url,
            maxBytes,
            `${wire.bytes} bytes had come on the wire (${response.headers.get('content-encoding') ?? 'identity'}), more than such a body takes, for ${received} decoded`,
          );
        const what = deadline.expired
          ? `timed out after ${seconds(deadline.ms)} with ${received} bytes received`
          : `${describe(error)} after ${received} bytes`;
        throw new BodyFailed(new Failure(url, what, 'transient', deadline.expired ? undefined : error));
      } finally {
        deadline.disarm();
      }
      if (next.done) {
        finished = true;
        return;
      }
      received += next.value.byteLength;
      spanWaited += performance.now() - waitStart;
      spanBytes += next.value.byteLength;
      if (spanWaited >= deadline.ms) {
        const least = Math.ceil((LOW_SPEED_BYTES_PER_SECOND * spanWaited) / 1000);
        if (spanBytes < least)
          throw new BodyFailed(
            new Failure(
              url,
              `too slow: ${spanBytes} bytes in ${seconds(Math.round(spanWaited))} of waiting, under the least of ${LOW_SPEED_BYTES_PER_SECOND} bytes a second, with ${received} bytes received`,
              'transient',
            ),
          );
        spanWaited = 0;
        spanBytes = 0;
      }
      if (received > maxBytes) {
        const encoding = response.headers.get('content-encoding');
        const decoded =
          encoding === null || encoding === 'identity' ? '' : ` (decompressed from ${encoding})`;
        throw tooLarge(
          endpoint,
          url,
          maxBytes,
          `${received} bytes${decoded} had arrived when it was cut off`,
        );
      }
      yield next.value;
    }
  } finally {
    if (!finished) {
      deadline.abort();
      reader.cancel().catch(() => {});
    }
  }
}

/** A download's body as the caller sees it: a break in the stream is a FETCH_FAILED naming the URL. */
async function* surfaced(
  endpoint: Endpoint,
  url: string,
  chunks: AsyncGenerator<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  try {
    yield* chunks;
  } catch (error) {
    if (!(error instanceof BodyFailed)) throw error;
    throw new ClientError(
      'FETCH_FAILED',
      `Download of ${shownText(url)} from registry "${endpoint.name}" broke off: ${error.failure.what}`,
      { cause: error.failure.cause },
    );
  }
}

/** A file: document, read with the same cap; a missing file is a 404. */
async function readFileDocument(
  endpoint: Endpoint,
  url: URL,
  maxBytes: number,
): Promise<Uint8Array | Failure> {
  const checked = await checkFile(endpoint, url, maxBytes);
  if (checked instanceof Failure) return checked;
  return collect(readFileChunks(endpoint, url, maxBytes)).catch(bodyFailure);
}

async function openFileDownload(endpoint: Endpoint, url: URL, maxBytes: number): Promise<Download | Failure> {
  const size = await checkFile(endpoint, url, maxBytes);
  if (size instanceof Failure) return size;
  // Opened only once iterated, so a body never read holds no file handle.
  return { url: url.href, size, body: surfaced(endpoint, url.href, readFileChunks(endpoint, url, maxBytes)) };
}

/** The file's size, after refusing a missing file (404), a folder, or a size over the cap. */
async function checkFile(endpoint: Endpoint, url: URL, maxBytes: number): Promise<number | Failure> {
  try {
    const info = await stat(fileURLToPath(url));
    if (!info.isFile()) return new Failure(url.href, 'not a regular file', 'unusable');
    if (info.size > maxBytes) throw tooLarge(endpoint, url.href, maxBytes, `the file has ${info.size} bytes`);
    return info.size;
  } catch (error) {
    if (error instanceof ClientError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR')
      return new Failure(url.href, 'no such file', 'missing', error);
    return new Failure(url.href, describe(error), 'unusable', error);
  }
}

/** The file in chunks, cut off past the cap (it may have grown since it was checked). */
async function* readFileChunks(endpoint: Endpoint, url: URL, maxBytes: number): AsyncGenerator<Uint8Array> {
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  let received = 0;
  try {
    handle = await open(fileURLToPath(url), 'r');
    for (;;) {
      const chunk = new Uint8Array(FILE_CHUNK);
      const { bytesRead } = await handle.read(chunk, 0, FILE_CHUNK, null);
      if (bytesRead === 0) return;
      received += bytesRead;
      if (received > maxBytes) {
        throw tooLarge(endpoint, url.href, maxBytes, `${received} bytes had been read when it was cut off`);
      }
      yield chunk.subarray(0, bytesRead);
    }
  } catch (error) {
    if (error instanceof ClientError) throw error;
    throw new BodyFailed(new Failure(url.href, describe(error), 'unusable', error));
  } finally {
    await handle?.close();
  }
}

/** The folders in a file: folder, sorted (links to folders too); a missing folder is a 404. */
async function listFileFolder(url: URL): Promise<string[] | Failure> {
  const folder = fileURLToPath(url);
  try {
    const names: string[] = [];
    for (const entry of await readdir(folder, { withFileTypes: true })) {
      const isFolder =
        entry.isDirectory() ||
        (entry.isSymbolicLink() &&
          (await stat(`${folder}/${entry.name}`).catch(() => undefined))?.isDirectory());
      if (isFolder) names.push(entry.name);
    }
    return names.sort();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR')
      return new Failure(url.href, 'no such folder', 'missing', error);
    return new Failure(url.href, describe(error), 'unusable', error);
  }
}

/** An S3Failure as the mirror loop's Failure; anything else (a RESPONSE_TOO_LARGE, a defect) is thrown again. */
function s3Failure(url: URL, error: unknown, Failed: typeof S3Failure): Failure {
  if (!(error instanceof Failed)) throw error;
  return new Failure(url.href, error.what, error.kind, error.cause ?? error);
}

/** A body that broke off as the mirror loop's Failure; anything else is thrown again. */
function bodyFailure(error: unknown): Failure {
  if (error instanceof BodyFailed) return error.failure;
  throw error;
}

/** NODE_EXTRA_CA_CERTS's PEM text, or undefined when it is not set. */
async function readExtraCa(env: Readonly<Record<string, string | undefined>>): Promise<string | undefined> {
  const path = env.NODE_EXTRA_CA_CERTS;
  if (path === undefined || path === '') return undefined;
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw new ClientError(
      'FETCH_FAILED',
      `NODE_EXTRA_CA_CERTS names ${path}, which could not be read (${describe(error)})`,
      { cause: error },
    );
  }
}

/** Whether NO_PROXY exempts `url`: undici's own rule (EnvHttpProxyAgent), for naming the proxy in a hint. */
function bypassesProxy(noProxy: string, url: URL): boolean {
  const entries = noProxy.split(/[,\s]/).filter((entry) => entry !== '');
  if (entries.length === 0) return false;
  if (noProxy === '*') return true;
  const host = url.host.replace(/:\d*$/, '').toLowerCase();
  const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
  return entries.some((entry) => {
    const parsed = /^(.+):(\d+)$/.exec(entry);
    const name = (parsed?.[1] ?? entry).replace(/^\*?\./, '').toLowerCase();
    if (parsed && Number(parsed[2]) !== port) return false;
    return host === name || host.endsWith(`.${name}`);
  });
}

function statusFailure(url: string, status: number): Failure {
  const kind = status === 404 ? 'missing' : status >= 500 ? 'transient' : 'fatal';
  return new Failure(url, `HTTP ${status}`, kind);
}

function networkFailure(url: string, error: unknown, via: string): Failure {
  const code = rootCause(error).code;
  const tls = typeof code === 'string' && TLS_CODE.test(code);
  // A certificate that did not verify will not verify on a second try; a mirror may have another.
  return new Failure(url, `${via}${describe(error)}`, tls ? 'unusable' : 'transient', error, tls);
}

/** The innermost error: undici's "fetch failed" wraps the socket's, which may be an AggregateError of addresses. */
function rootCause(error: unknown): { readonly code?: unknown; readonly message?: unknown } {
  let current: unknown = error;
  for (let depth = 0; depth < 8; depth++) {
    if (current instanceof AggregateError && current.errors.length > 0) current = current.errors[0];
    else if (current instanceof Error && current.cause !== undefined) current = current.cause;
    else break;
  }
  return typeof current === 'object' && current !== null ? current : { message: String(current) };
}

function describe(error: unknown): string {
  const { code, message } = rootCause(error);
  const text = typeof message === 'string' && message !== '' ? message : String(code ?? error);
  return typeof code === 'string' && !text.includes(code) ? `${text} (${code})` : text;
}

function tooLarge(endpoint: Endpoint, url: string, maxBytes: number, found: string): ClientError {
  return new ClientError(
    'RESPONSE_TOO_LARGE',
    `${shownText(url)} of registry "${endpoint.name}" is over its cap of ${maxBytes} bytes: ${found}`,
  );
}

/** A base as the prefix its paths are appended to: always ending in one slash. */
function prefixOf(base: URL): string {
  return base.href.endsWith('/') ? base.href : `${base.href}/`;
}

/** `url` for a message: never with credentials, query values or a fragment in it (shownUrl). */
const display = shownUrl;

/**
 * A URL kept as text (what answered, `DocumentResponse.url`, which keeps its query) for a message: as
 * `display` shows it. Text that is no URL is a file's path or a label, shown as it is.
 */
function shownText(url: string): string {
  return URL.canParse(url) ? shownUrl(new URL(url)) : url;
}

/** A proxy given as HOST:PORT, as curl accepts it, is an http: proxy. */
function withScheme(proxy: string): string {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(proxy) ? proxy : `http://${proxy}`;
}

function parseUrl(text: string, base?: URL): URL | undefined {
  try {
    return new URL(text, base);
  } catch {
    return undefined;
  }
}

function seconds(ms: number): string {
  return `${ms / 1000} s`;
}

/** A body read whole (for what is small and capped already). */
export async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const part of chunks) parts.push(part);
  return new Uint8Array(Buffer.concat(parts));
}
