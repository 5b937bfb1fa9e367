/**
 * The local HTTP server: the published tree, read through the Store (never the filesystem directly, so no
 * path outside the registry can be served, and the filesystem store follows no link out of it), with the
 * spec's endpoints mapped onto the static files and every security header set by the one serving policy
 * the CloudFront Functions share (index-builder/serving.ts: routes, page CSP by hash, artifacts as
 * downloads, `default-src 'none'` for data), the index documents pre-compressed to clients that accept it
 * (`Content-Encoding`, `Vary: Accept-Encoding`). GET and HEAD, and OPTIONS (204 with Allow, and a CORS
 * preflight's leave); any other method, CONNECT included, 405 with Allow; one Node's parser does not know, 501. Responses carry the stored Cache-Control,
 * Content-Length, the ETag and Last-Modified, and evaluate preconditions in RFC 9110 §13.2.2's order:
 * If-Match (else If-Unmodified-Since) failing is 412, If-None-Match (else If-Modified-Since) 304, then one
 * byte range (`Range`, `If-Range`) 206 or 416.
 * `GET /search?q=&provider=&type=&capability=` is the one computed answer: index-builder/search-endpoint.ts
 * over the published `search.json`, which the server reads once per version of it (the digest its snapshot
 * lists).
 *
 * @example
 * const server = createRegistryServer({ site: new FsStore('registry/public'), log: console.log });
 * const { url, close } = await listenRegistryServer(server, 0); // url: 'http://127.0.0.1:54321'
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { mayBeBinaryPackets, SECRET_KEY_ARMOR } from '../../index-builder/armor.ts';
import { StoreError } from '../../index-builder/errors.ts';
import { isSafeKey, variantOfKey } from '../../index-builder/layout.ts';
import {
  answerSearch,
  SEARCH_PATH,
  SearchIndex,
  searchAnswerText,
  searchResponseHeaders,
} from '../../index-builder/search-endpoint.ts';
import {
  ALLOW,
  COMMON_HEADERS,
  CORS_READ_HEADERS,
  DATA_CSP,
  ifMatchHits,
  ifNoneMatchHits,
  isCorsPreflight,
  matchRoute,
  optionsHeaders,
  REDIRECTS,
  type Route,
  securityHeaders,
  sizedEncodedRoute,
  tagPrecondition,
} from '../../index-builder/serving.ts';
import type { ObjectInfo, Store, StoredStream } from '../../index-builder/store.ts';
import { CliError } from '../errors.ts';
import { ConnectionSlots, type SampleTimer } from './connection-slots.ts';
import { TurnedAwayLog } from './turned-away-log.ts';
import { VariantChecks } from './variant-check.ts';

export type { Route } from '../../index-builder/serving.ts';

export interface RegistryServerOptions {
  /** The published tree. */
  readonly site: Store;
  /** One line per request, and the detail of any internal error (which the client never sees). */
  readonly log?: (line: string) => void;
  /**
   * The detail of an internal error alone, where `log` is not given: `plugindex serve` logs no request, but
   * an operator needs the cause of a 500, which the client is never told.
   */
  readonly logError?: (line: string) => void;
  /** How long to wait on a client; `SERVER_TIMEOUTS` unless a test shortens them. */
  readonly timeouts?: ServerTimeouts;
  /**
   * The most connections open at once, `MAX_CONNECTIONS` by default (a positive integer; anything else is
   * refused with USAGE). One more takes the place of the connection idle longest (else of one whose
   * answer has stalled, else, for an address holding fewer, of the slowest reader of the address holding
   * the most), or is closed as soon as it is accepted, before it is read (connection-slots.ts).
   */
  readonly maxConnections?: number;
  /**
   * The most connections one client address (an IPv6 /64) holds at once: an eighth of `maxConnections` by
   * default (`defaultShare`), so one client cannot hold every slot. 0 turns the share off, for a server
   * behind a reverse proxy, from which every connection comes. A whole number from 0 to `maxConnections`
   * (USAGE otherwise).
   */
  readonly maxConnectionsPerAddress?: number;
  /**
   * Each connection the slots refuse, and each they close to make room for another: an address's first at
   * once, then a line a minute at most with what followed (turned-away-log.ts). `plugindex serve` writes
   * them to stderr; without it nothing is told.
   */
  readonly logTurnedAway?: (line: string) => void;
  /**
   * What runs the connection slots' samples of each answer's progress, once a second (connection-slots.ts,
   * `sampleEvery`) unless a test takes them itself.
   */
  readonly sampleTimer?: SampleTimer;
}

/**
 * How long the server waits on a client. Node's defaults never give up on a client that stops reading its
 * response (`server.timeout` is 0, and its request timeouts end once the request is in): each such
 * connection holds a socket and the file it was sending, so a client that opens thousands of them (the
 * server is on a network with `--host`) exhausts the process's file descriptors, and every other client's
 * request then fails. Its headers timeout (60 s, checked every 30 s) let a silent connection or a head sent
 * a line at a time stay up to 90 s.
 */
export interface ServerTimeouts {
  /**
   * No byte either way for this long closes the connection: a client that stopped reading its response.
   * Node lets a write still waiting on the client run one period more, so such a client is cut after twice this.
   */
  readonly idleMs: number;
  /**
   * A request's head not complete within this long is answered 408 and closed: a connection that sends
   * none, or a header line at a time, each within `idleMs`. A GET has no body, so this bounds the request.
   */
  readonly headersMs: number;
  /**
   * An answer its client has taken nothing of for this long has stalled: while every connection slot is
   * taken and none is idle, its connection gives its place to a new one (connection-slots.ts), rather than
   * hold it until the idle timeout. `SERVER_TIMEOUTS.stalledMs` when not given.
   */
  readonly stalledMs?: number;
}

export const SERVER_TIMEOUTS: Required<ServerTimeouts> = {
  idleMs: 30_000,
  headersMs: 20_000,
  stalledMs: 10_000,
};

/**
 * The timeouts bound how long a connection lasts, not how many there are: a client opening connections
 * faster than they time out (each holds a descriptor, two while a file is sent) would use up the process's
 * (1,024 by default on Linux), and every request, the watcher's and the submission socket's work then
 * fail with EMFILE. Past this many a new connection takes the place of the one idle longest (else of one
 * whose client stopped reading its answer), or is closed at once; when the flood stops, the next client is
 * served as before (connection-slots.ts, with each address's share of them). 256 is far above what one
 * registry's users hold open at once, and leaves half the default descriptors to the rest of the process.
 */
export const MAX_CONNECTIONS = 256;

/**
 * One address's share of `maxConnections` slots unless told otherwise: an eighth (32 of 256), so it takes
 * eight addresses to fill them, while a browser opens six connections to a host and a few people behind one
 * NAT stay well under it (a kept-alive connection is idle, and gives its place to their next one).
 */
export function defaultShare(maxConnections: number): number {
  return Math.max(1, Math.floor(maxConnections / 8));
}

export interface ListeningRegistryServer {
  /** Base URL without a trailing slash, with the real port when 0 was asked for. */
  readonly url: string;
  close(): Promise<void>;
}

/** RFC 3986's `host [":" port]`: an IP literal in brackets or a registered name (which may be empty). */
const HOST_FIELD = /^(?:\[[0-9A-Za-z:._~%-]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]*)(?::[0-9]*)?$/;

/**
 * RFC 9112 §3.2: a request with more than one Host line, or a Host that is no host, is answered 400 (Node
 * refuses an HTTP/1.1 request without one, and keeps the first of several). This server reads no Host, but
 * a proxy in front may read another line than the one it checked, and route or cache by it.
 */
function hasBadHost(req: http.IncomingMessage): boolean {
  const hosts = req.headersDistinct.host ?? [];
  return hosts.length > 1 || hosts.some((host) => !HOST_FIELD.test(host));
}

/** Control characters (NUL included) and backslashes have no place in a key; some filesystems read `\` as `/`. */
function hasUnsafeCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || code === 0x7f || code === 0x5c) return true;
  }
  return false;
}

interface MediaRange {
  readonly type: string;
  readonly subtype: string;
  readonly q: number;
}

/** The media ranges of an Accept header; a range with an unreadable q-value is dropped. */
function parseAccept(header: string): MediaRange[] {
  const ranges: MediaRange[] = [];
  for (const part of header.split(',')) {
    const [range = '', ...params] = part.split(';').map((s) => s.trim().toLowerCase());
    const [type, subtype, extra] = range.split('/');
    if (!type || !subtype || extra !== undefined) continue;
    const qParam = params.find((p) => /^q\s*=/.test(p));
    const q = qParam === undefined ? 1 : Number(qParam.slice(qParam.indexOf('=') + 1).trim());
    if (!Number.isFinite(q) || q < 0 || q > 1) continue;
    ranges.push({ type, subtype, q });
  }
  return ranges;
}

/** RFC 9110 §12.5.1: a media type takes the q-value of the most specific range that matches it (0 if none). */
function qualityOf(ranges: readonly MediaRange[], mediaType: string): number {
  const [type, subtype] = mediaType.split('/');
  let best = { specificity: -1, q: 0 };
  for (const range of ranges) {
    const specificity =
      range.type === type && range.subtype === subtype
        ? 2
        : range.type === type && range.subtype === '*'
          ? 1
          : range.type === '*' && range.subtype === '*'
            ? 0
            : -1;
    if (specificity > best.specificity) best = { specificity, q: range.q };
  }
  return best.q;
}

/**
 * True when the Accept header ranks text/html above application/json. Browsers ask for HTML first; API
 * clients, curl (`*\/*`) and requests without Accept get JSON, as does any tie.
 */
export function prefersHtml(accept: string | undefined): boolean {
  if (!accept) return false;
  const ranges = parseAccept(accept);
  return qualityOf(ranges, 'text/html') > qualityOf(ranges, 'application/json');
}

/**
 * Maps a decoded request path (starting with `/`) to the store key it names, or undefined when no key
 * can match (every key returned passes isSafeKey, so the store never sees one it would refuse).
 */
export function routeFor(pathname: string, accept: string | undefined): Route | undefined {
  const route = matchRoute(pathname, prefersHtml(accept));
  return route && isSafeKey(route.key) ? route : undefined;
}

/**
 * An absolute-form target's `scheme "://" authority`, the rest (path and query) captured. The authority is
 * a host (an IP literal in brackets or a registered name, never empty: RFC 9110 §4.2.1) and an optional
 * port; user information has no `@` here to match, so it is refused (RFC 9110 §4.2.4).
 */
const ABSOLUTE_TARGET =
  /^https?:\/\/(?:\[[0-9A-Za-z:._~%-]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]+)(?::[0-9]*)?([/?].*)?$/is;

/**
 * The origin-form (`/path?query`) of a request target, or undefined when it has none. RFC 9112 §3.2.2: a
 * server MUST accept the absolute-form (`http://host/path`), which a forward proxy or a client that
 * believes it talks to one sends; its authority then stands for the Host, which this server reads only to
 * refuse a malformed one (hasBadHost), so a Host line naming another is ignored. Other schemes, and an
 * authority that is no `host[:port]`, name nothing here. The `*` and authority forms belong to OPTIONS and
 * CONNECT, answered by their methods before the target is read.
 */
function originFormOf(target: string): string | undefined {
  if (target.startsWith('/')) return target;
  const absolute = ABSOLUTE_TARGET.exec(target);
  if (!absolute) return undefined;
  const rest = absolute[1] ?? '';
  // An empty path is `/` (RFC 9110 §4.2.3): `http://host?q` asks for `/?q`.
  return rest.startsWith('/') ? rest : `/${rest}`;
}

/** The request path (of an origin-form target), percent-decoded, or the status to refuse it with. */
function decodePath(target: string): { pathname: string } | { status: 400 } {
  const raw = target.split('?', 1)[0] ?? '';
  let pathname: string;
  try {
    pathname = decodeURIComponent(raw);
  } catch {
    return { status: 400 }; // malformed percent-encoding
  }
  // Checked after decoding, so `%2e%2e`, `%5c` and `%00` are caught like their literal forms.
  if (hasUnsafeCharacter(raw) || hasUnsafeCharacter(pathname)) return { status: 400 };
  if (pathname.split('/').some((segment) => segment === '.' || segment === '..')) return { status: 400 };
  return { pathname };
}

/** The headers of the server's own JSON answer `text` (an error, a redirect), `extra` before them. */
function jsonHeaders(text: string, extra: http.OutgoingHttpHeaders = {}): http.OutgoingHttpHeaders {
  return {
    ...extra,
    ...COMMON_HEADERS,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    'content-security-policy': DATA_CSP,
    ...CORS_READ_HEADERS,
  };
}

function sendJson(
  res: http.ServerResponse,
  status: number,
  body: object,
  options: { head: boolean; headers?: http.OutgoingHttpHeaders },
): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, jsonHeaders(text, options.headers));
  res.end(options.head ? undefined : text);
}

/**
 * The answer to a CONNECT, written on its socket, which is then closed: Node hands a CONNECT to the server's
 * 'connect' listener, never to the request listener, and with none it destroyed the socket unanswered, where
 * every other method but GET, HEAD and OPTIONS is 405 with Allow (RFC 9110 §15.5.6). No tunnel is ever opened here,
 * and what the client sent after its head is not read.
 */
function refuseConnect(socket: Socket): void {
  const text = `${JSON.stringify({ error: 'method_not_allowed' })}\n`;
  const headers = {
    ...jsonHeaders(text, { allow: ALLOW }),
    date: new Date().toUTCString(),
    connection: 'close',
  };
  // Closed whole once written: Node no longer times out a socket it handed over, and a client that kept its
  // side open held it (and its connection slot) for good.
  socket.end(rawResponse(405, headers, text), () => socket.destroy());
}

/** A whole response as written on a socket Node's HTTP server no longer writes on (CONNECT, a parse error). */
function rawResponse(status: number, headers: http.OutgoingHttpHeaders, body: string): string {
  const lines = Object.entries(headers).map(([name, value]) => `${name}: ${String(value)}\r\n`);
  return `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\n${lines.join('')}\r\n${body}`;
}

/** A method (RFC 9110 §9.1: a token, §5.6.2) and the space after it, at the start of what the parser refused. */
const METHOD_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+ /;

/**
 * Node's own answers to what its parser refuses or times out (lib/_http_server.js, `socketOnError`), which a
 * 'clientError' listener takes over whole: kept as they were for all but an unknown method.
 */
const PARSER_REFUSALS: Readonly<Record<string, number>> = {
  HPE_HEADER_OVERFLOW: 431,
  HPE_CHUNK_EXTENSIONS_OVERFLOW: 413,
  ERR_HTTP_REQUEST_TIMEOUT: 408,
};

/**
 * A request Node's parser refused, answered before the connection is destroyed (only where no response of
 * the connection's is being written, as Node does: `answering` says whether one is; a kept-alive connection
 * whose earlier responses were sent whole is answered too, where one that had written anything was closed
 * unanswered). A method the parser does not know (`FOO`, `get`: llhttp takes only the
 * methods it lists, and calls the rest invalid) is 501 with the server's other errors' headers, as RFC 9110
 * §9.1 asks of an origin server for an unrecognized method, where Node sent a bare 400; a first line that is
 * no method at all (a TLS handshake on the plain port) stays 400, as does every other refusal of Node's.
 */
function answerClientError(
  error: Error & { code?: string; rawPacket?: Buffer },
  socket: Socket,
  answering: (socket: Socket) => boolean,
): void {
  if (socket.writable && !answering(socket)) {
    const unknownMethod =
      error.code === 'HPE_INVALID_METHOD' && METHOD_TOKEN.test(error.rawPacket?.toString('latin1') ?? '');
    if (unknownMethod) {
      const text = `${JSON.stringify({ error: 'not_implemented' })}\n`;
      const headers = { ...jsonHeaders(text), date: new Date().toUTCString(), connection: 'close' };
      socket.end(rawResponse(501, headers, text), () => socket.destroy());
      return;
    }
    const status = PARSER_REFUSALS[error.code ?? ''] ?? 400;
    socket.write(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\n\r\n`);
  }
  socket.destroy(error);
}

/** The Vary header of a response: what of the request, besides its path, chose what it holds. */
function varyOf(route: Route, encodingNegotiated: boolean): string | undefined {
  const vary = [...(route.negotiated ? ['Accept'] : []), ...(encodingNegotiated ? ['Accept-Encoding'] : [])];
  return vary.length > 0 ? vary.join(', ') : undefined;
}

function objectHeaders(
  object: ObjectInfo,
  route: Route,
  encodingNegotiated: boolean,
): http.OutgoingHttpHeaders {
  const security = securityHeaders(route.key, object.contentType);
  const headers: http.OutgoingHttpHeaders = {
    ...security,
    'cache-control': object.cacheControl,
    etag: object.etag,
    'last-modified': object.lastModified.toUTCString(),
  };
  // An encoded variant says so; below the threshold a variant holds the document as it is, and says nothing.
  if (object.contentEncoding) headers['content-encoding'] = object.contentEncoding;
  const vary = varyOf(route, encodingNegotiated);
  if (vary) headers.vary = vary;
  // Data (documents, signatures, artifacts) is public and readable from any origin; pages are not data.
  if (!security['content-type']?.toLowerCase().startsWith('text/html'))
    Object.assign(headers, CORS_READ_HEADERS);
  return headers;
}

/**
 * `GET /search`: small refusals whole; an answer (up to `SEARCH_PAGE_BYTES`, 4 MiB) a piece at a time, as
 * its client takes it (`searchAnswerText`, through a pipeline that waits for the response to drain). Sent
 * whole, each answer stayed in memory until its client read it or the idle timeout cut it: 256 clients
 * that asked for large pages and read nothing held 0.8 GB of unsent answers (1.5 GiB of the process's
 * memory) for a minute. The length is that of the same pieces, counted once per answer with its ETag
 * (`searchAnswerTag`), so `Content-Length` is sent as before and the body is byte for byte what
 * `JSON.stringify` made of it. `If-None-Match` naming that tag is 304, `If-Match` naming another 412.
 */
async function respondToSearch(
  search: SearchIndex,
  req: http.IncomingMessage,
  target: string,
  res: http.ServerResponse,
  head: boolean,
): Promise<void> {
  const query = target.includes('?') ? target.slice(target.indexOf('?') + 1) : '';
  const answer = await answerSearch(search, query);
  const headers = {
    ...COMMON_HEADERS,
    ...searchResponseHeaders(answer.status, answer.status === 200 ? answer.tag.etag : undefined),
    ...CORS_READ_HEADERS,
    'content-security-policy': DATA_CSP,
  };
  if (answer.status !== 200) {
    const text = `${JSON.stringify(answer.body)}\n`;
    res.writeHead(answer.status, { ...headers, 'content-length': Buffer.byteLength(text) });
    res.end(head ? undefined : text);
    return;
  }
  // Its preconditions, judged on the answer's tag as the search function judges them (tagPrecondition).
  const precondition = tagPrecondition(
    req.headers['if-match'],
    req.headers['if-none-match'],
    answer.tag.etag,
  );
  if (precondition === 412) {
    sendJson(res, 412, { error: 'precondition_failed' }, { head });
    return;
  }
  if (precondition === 304) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  res.writeHead(200, { ...headers, 'content-length': answer.tag.length });
  if (head) {
    res.end();
    return;
  }
  // One piece made ahead of the one being written, no more (an object stream buffers 16 by default).
  await pipeline(Readable.from(searchAnswerText(answer.body), { highWaterMark: 1 }), res);
}

async function respond(
  options: RegistryServerOptions,
  search: SearchIndex,
  variants: VariantChecks,
  secrets: SecretGuard,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): Promise<void> {
  const head = req.method === 'HEAD';
  if (hasBadHost(req)) {
    sendJson(res, 400, { error: 'bad_request' }, { head });
    return;
  }
  // OPTIONS, `*` or a path alike (RFC 9110 §9.3.7): what the server allows, and to a CORS preflight leave for
  // a page on another origin to GET (index-builder/serving.ts), as the CloudFront functions answer it. It
  // was 405, so a page elsewhere sending any header a simple request may not (If-None-Match set by hand)
  // could read none of the data whose GET says Access-Control-Allow-Origin: *.
  if (req.method === 'OPTIONS') {
    res.writeHead(
      204,
      optionsHeaders(isCorsPreflight(req.headers.origin, req.headers['access-control-request-method'])),
    );
    res.end();
    return;
  }
  if (req.method !== 'GET' && !head) {
    sendJson(res, 405, { error: 'method_not_allowed' }, { head: false, headers: { allow: ALLOW } });
    return;
  }
  const target = originFormOf(req.url ?? '');
  const decoded = target === undefined ? undefined : decodePath(target);
  if (target === undefined || decoded === undefined || 'status' in decoded) {
    sendJson(res, 400, { error: 'bad_request' }, { head });
    return;
  }
  const { pathname } = decoded;
  const moved = REDIRECTS[pathname];
  if (moved !== undefined) {
    const query = target.includes('?') ? target.slice(target.indexOf('?')) : '';
    sendJson(res, 301, { error: 'moved_permanently' }, { head, headers: { location: `${moved}${query}` } });
    return;
  }
  if (pathname === SEARCH_PATH) {
    await respondToSearch(search, req, target, res, head);
    return;
  }
  const route = routeFor(pathname, req.headers.accept);
  // Bodies are streamed from the store: an artifact of hundreds of megabytes is never held in memory.
  let object: ObjectInfo | undefined;
  let stream: StoredStream | undefined;
  // The index documents come encoded to a client that accepts it (index-builder/serving.ts).
  // A plugin document too, while it is over the threshold and so has variants; else the document itself.
  const encoded = route ? sizedEncodedRoute(route.key, req.headers['accept-encoding']) : undefined;
  // A range from a known first byte (a resumed download: `bytes=N-`) is read from there where the store can
  // seek, rather than from the start and dropped; whether it is sent is decided once the object is known.
  const seekTo = head ? 0 : firstByteAsked(req.headers.range);
  let servedKey: string | undefined;
  const read = async (key: string, from = seekTo): Promise<void> => {
    servedKey = key;
    if (head) object = await options.site.head(key);
    else {
      stream = await options.site.getStream(key, from > 0 ? { start: from } : undefined);
      object = stream;
    }
  };
  const drop = (): void => {
    stream?.cancel();
    stream = undefined;
    object = undefined;
  };
  try {
    if (route && encoded) {
      await read(encoded.key);
      // A variant that names no coding is the document's own bytes (one under the compression threshold),
      // or one whose coding the store no longer knows: a registry folder copied or restored from a backup
      // leaves no sidecar describing its file (fs-store.ts), and `search.json.gz` was then sent for
      // `/search.json` as its gzip bytes, typed application/gzip and with no Content-Encoding, which no
      // client can read. Either way the document itself is the answer. So is it for a registry published
      // before its documents had variants, until the next flush, and for a variant of other bytes than
      // the document (`VariantChecks.standsFor`, variant-check.ts).
      if (encoded.key !== route.key) {
        // The identity document, sent for a variant asked for by name to a client refusing its coding, is
        // no variant: sent as it is.
        if (
          variantOfKey(encoded.key) &&
          (!object?.contentEncoding || !(await variants.standsFor(object, route.key)))
        ) {
          drop();
          await read(route.key);
        }
      } else {
        // A variant asked for by its own name (what the plugindex client asks a large plugin document
        // as): of other bytes than its document, it is not there, and the client reads the document.
        const document = variantOfKey(route.key)?.document;
        if (object && document !== undefined && !(await variants.standsFor(object, document))) drop();
      }
    }
  } catch (error) {
    // routeFor only returns safe keys; should a store be stricter still, its refusal is a 404, not a 500.
    if (!(error instanceof StoreError && error.code === 'STORE_INVALID_KEY')) throw error;
    object = undefined;
  }
  // Secret key material is not there, as far as any client is told (SecretGuard). Judged by the first bytes
  // of the body this answer sends where it is read from the start; the guard reads the file apart only for a
  // HEAD or a range from a later byte. Read apart for every answer, the file was read twice, and what was
  // judged need not have been what was sent.
  let body: AsyncIterable<Uint8Array> | undefined;
  if (route && object) {
    let first: Uint8Array | undefined;
    if (stream && (stream.bodyStart ?? 0) === 0)
      ({ first, body } = await peekStart(stream.body, SECRET_PEEK_BYTES));
    if (await secrets.refuses(servedKey ?? route.key, first)) drop();
  }
  if (!route || !object) {
    const vary = route ? varyOf(route, encoded?.negotiated ?? false) : undefined;
    const headers: http.OutgoingHttpHeaders = vary ? { vary } : {};
    sendJson(res, 404, { error: 'not_found', path: pathname }, { head, headers });
    return;
  }
  // A body read from the byte a range named, where the whole object is to be sent after all (If-Range named
  // another), or a range that begins before it (none should): read again from the start, as the object now is.
  const bodyStart = stream?.bodyStart ?? 0;
  if (
    stream &&
    bodyStart > 0 &&
    servedKey !== undefined &&
    preconditionOf(req.headers, object) === undefined
  ) {
    const range = rangeOf(req.headers, object);
    if (range === undefined || (range !== 'unsatisfiable' && range.start < bodyStart)) {
      stream.cancel();
      stream = undefined;
      object = undefined;
      body = undefined;
      await read(servedKey, 0);
      if (!object) {
        sendJson(res, 404, { error: 'not_found', path: pathname }, { head });
        return;
      }
    }
  }
  const negotiated = encoded?.negotiated ?? false;
  const precondition = preconditionOf(req.headers, object);
  if (precondition === 412) {
    // An error as the others are (no-store, the data CSP, CORS, its JSON body; none for a HEAD), with the
    // Vary of the representation whose validators failed, as a 404 of a negotiated route carries.
    stream?.cancel();
    const vary = varyOf(route, negotiated);
    sendJson(res, 412, { error: 'precondition_failed' }, { head, headers: vary ? { vary } : {} });
    return;
  }
  const headers = objectHeaders(object, route, negotiated);
  try {
    if (precondition === 304) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    // Ranges of the bytes this response would send: the stored object, a compressed variant included (its
    // own bytes, under its own ETag, as S3 and CloudFront answer a range of it), never of bytes made here.
    headers['accept-ranges'] = 'bytes';
    const range = rangeOf(req.headers, object);
    if (range === 'unsatisfiable') {
      stream?.cancel();
      sendJson(
        res,
        416,
        { error: 'range_not_satisfiable', size: object.size },
        { head, headers: { 'content-range': `bytes */${object.size}`, 'accept-ranges': 'bytes' } },
      );
      return;
    }
    if (range === undefined) {
      headers['content-length'] = object.size;
      res.writeHead(200, headers);
      if (stream)
        await pipeline(
          Readable.from(bytesBetween(body ?? stream.body, 0, object.size - 1, servedKey ?? route.key)),
          res,
        );
      else res.end();
      return;
    }
    headers['content-range'] = `bytes ${range.start}-${range.end}/${object.size}`;
    headers['content-length'] = range.end - range.start + 1;
    res.writeHead(206, headers);
    if (stream) {
      // From where the store began the body: the range's first byte when it seeked (firstByteAsked), else 0.
      const offset = stream.bodyStart ?? 0;
      await pipeline(
        Readable.from(
          bytesBetween(body ?? stream.body, range.start - offset, range.end - offset, servedKey ?? route.key),
        ),
        res,
      );
    } else res.end();
  } finally {
    stream?.cancel();
  }
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
/**
 * The three forms of an HTTP-date (RFC 9110 §5.6.7), each in GMT, captured as day, month, year and time:
 * the IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the obsolete RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`)
 * and asctime (`Sun Nov  6 08:49:37 1994`) forms.
 */
const HTTP_DATES: readonly RegExp[] = [
  /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (?<day>\d{2}) (?<month>[A-Z][a-z]{2}) (?<year>\d{4}) (?<time>\d{2}:\d{2}:\d{2}) GMT$/,
  /^(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day, (?<day>\d{2})-(?<month>[A-Z][a-z]{2})-(?<year>\d{2}) (?<time>\d{2}:\d{2}:\d{2}) GMT$/,
  /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?<month>[A-Z][a-z]{2}) (?<day>[ \d]\d) (?<time>\d{2}:\d{2}:\d{2}) (?<year>\d{4})$/,
];

/**
 * An HTTP-date's time in whole seconds (the precision of `Last-Modified`), or undefined if it is none: a
 * field of two dates, or of anything else, is no date (RFC 9110 §13.1.3: such an If-Modified-Since is
 * ignored). Read by its grammar, not by Date.parse, which took an asctime date (no zone) in the server's own
 * time zone, hours off GMT on a machine not set to it, and a word or a bare number for a date.
 */
function secondsOf(text: string | undefined): number | undefined {
  const parts =
    text === undefined ? undefined : HTTP_DATES.map((form) => form.exec(text)).find(Boolean)?.groups;
  if (parts === undefined) return undefined;
  const { day = '', month = '', year = '', time = '' } = parts;
  const monthIndex = MONTHS.indexOf(month);
  const [hours, minutes, seconds] = time.split(':').map(Number) as [number, number, number];
  // A two-digit year more than 50 years ahead is the most recent past year of those digits (RFC 9110 §5.6.7).
  let fullYear = Number(year);
  if (year.length === 2) {
    const thisYear = new Date().getUTCFullYear();
    fullYear += Math.floor(thisYear / 100) * 100;
    if (fullYear > thisYear + 50) fullYear -= 100;
  }
  const at = Date.UTC(fullYear, monthIndex, Number(day), hours, minutes, seconds);
  const valid =
    monthIndex >= 0 &&
    hours < 24 &&
    minutes < 60 &&
    seconds < 61 &&
    new Date(at).getUTCDate() === Number(day);
  return valid ? Math.floor(at / 1000) : undefined;
}

/**
 * RFC 9110 §13.2.2 for GET and HEAD, steps 1 to 4, on the representation selected (a compressed variant is
 * judged by its own ETag and date): 412 when a precondition fails, 304 when the client's copy is current,
 * undefined to go on to the range (step 5, `rangeOf`). Step 1, If-Match when sent; else step 2,
 * If-Unmodified-Since (ignored when it is no date, §13.1.4). Step 3, If-None-Match when sent; else step 4,
 * If-Modified-Since (ignored when it is no date, §13.1.3). Dates are compared in whole seconds, as
 * `Last-Modified` says the object's.
 */
function preconditionOf(headers: http.IncomingHttpHeaders, object: ObjectInfo): 304 | 412 | undefined {
  const modified = Math.floor(object.lastModified.getTime() / 1000);
  const ifMatch = headers['if-match'];
  if (ifMatch !== undefined) {
    if (!ifMatchHits(ifMatch, object.etag)) return 412;
  } else {
    const unmodifiedSince = secondsOf(headers['if-unmodified-since']);
    if (unmodifiedSince !== undefined && modified > unmodifiedSince) return 412;
  }
  if (headers['if-none-match'] !== undefined)
    return ifNoneMatchHits(headers['if-none-match'], object.etag) ? 304 : undefined;
  const since = secondsOf(headers['if-modified-since']);
  return since !== undefined && modified <= since ? 304 : undefined;
}

/**
 * The first byte of a single `bytes=N-` or `bytes=N-M` range, read before the object is (0 for any other
 * header): where a store may begin the body. rangeOf decides later whether the range is sent; its start is
 * then this same N, as a satisfiable range of this form begins at its first byte.
 */
function firstByteAsked(header: string | undefined): number {
  const parsed = header === undefined ? null : ONE_BYTE_RANGE.exec(header.trim());
  if (!parsed || parsed[1] === undefined) return 0;
  const first = Number(parsed[1]);
  const last = parsed[2] === '' || parsed[2] === undefined ? Number.POSITIVE_INFINITY : Number(parsed[2]);
  return Number.isSafeInteger(first) && last >= first ? first : 0;
}

/** A byte range to send, inclusive at both ends. */
interface ByteRange {
  readonly start: number;
  readonly end: number;
}

/** `bytes=first-last`, `bytes=first-` or `bytes=-suffix`, one range alone (RFC 9110 §14.1.2). */
const ONE_BYTE_RANGE = /^bytes[ \t]*=[ \t]*(?:(\d+)[ \t]*-[ \t]*(\d*)|-[ \t]*(\d+))[ \t]*$/i;

/**
 * The range a GET or HEAD is answered with (RFC 9110 §14), undefined for the whole object, `unsatisfiable`
 * for a 416. A HEAD is answered as its GET would be, headers and status, as S3 does. Only one range is
 * served: a list of them (which would need a multipart/byteranges body), an unknown unit or a malformed
 * header is answered with the whole object, as §14.2 allows. `If-Range` (§13.1.5) lets the range apply only
 * to the object it names: by a strong ETag, or by a date equal to its `Last-Modified`; else the whole object.
 * An empty object has no range to send, and is sent whole.
 */
function rangeOf(
  headers: http.IncomingHttpHeaders,
  object: ObjectInfo,
): ByteRange | 'unsatisfiable' | undefined {
  const header = headers.range;
  if (header === undefined || object.size === 0) return undefined;
  const ifRange = headers['if-range'];
  if (ifRange !== undefined) {
    if (typeof ifRange !== 'string') return undefined;
    const validator = ifRange.trim();
    const matches =
      validator.startsWith('"') || validator.startsWith('W/')
        ? validator === object.etag // strong comparison: a weak tag never matches
        : secondsOf(validator) === Math.floor(object.lastModified.getTime() / 1000);
    if (!matches) return undefined;
  }
  const parsed = ONE_BYTE_RANGE.exec(header.trim());
  if (!parsed) return undefined;
  const [, first, last, suffix] = parsed;
  const size = object.size;
  if (suffix !== undefined) {
    const length = Number(suffix);
    if (length === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - length), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' || last === undefined ? Number.POSITIVE_INFINITY : Number(last);
  if (end < start) return undefined; // §14.1.1: first-pos past last-pos is invalid, and so ignored
  if (start >= size) return 'unsatisfiable';
  return { start, end: Math.min(end, size - 1) };
}

/**
 * The bytes `start` to `end` (inclusive) of a body, counted from where it begins: a store that did not
 * seek to the range (`StoredStream.bodyStart`) has the bytes before it read and dropped, and the read stops
 * once the range is sent (the caller cancels the rest). Exactly those, as the Content-Length sent says: a
 * file written in place as it is sent (a copy made over it by hand) has more bytes than its stat said, which
 * sent on a kept-alive connection would be read as the start of the next answer; or fewer, which left the
 * client waiting for the rest until the idle timeout. The first are not sent; the second fail the response
 * (its connection is closed: the client sees it cut short at once).
 * @throws StoreError STORE_IO when the body ends before `end`.
 */
async function* bytesBetween(
  body: AsyncIterable<Uint8Array>,
  start: number,
  end: number,
  key: string,
): AsyncIterable<Uint8Array> {
  let at = 0;
  for await (const chunk of body) {
    const from = Math.max(0, start - at);
    const to = Math.min(chunk.byteLength, end + 1 - at);
    if (from < to) yield chunk.subarray(from, to);
    at += chunk.byteLength;
    if (at > end) return;
  }
  if (at <= end)
    throw new StoreError(
      'STORE_IO',
      key,
      `${key}: its body ended after ${at} bytes, short of the ${end + 1} the response counts on (the file was written in place as it was sent)`,
    );
}

/** A registry folder's marks (cli/local/registry.ts: CONFIG_FILE beside SECRET_KEY_FILE), as store keys. */
const REGISTRY_MARKS = ['plugindex.json', 'keys/registry-secret.asc'] as const;
/** A file named as a secret key (`registry-secret.asc`, `my-secret.asc`), in any letter case. */
const SECRET_KEY_NAME = /(?:^|\/)[^/]*secret[^/]*\.asc$/i;
/** How many of a file's first bytes are read to tell secret key material by: the armor line, or a packet header. */
const SECRET_PEEK_BYTES = 128;
/** Paths warned of: one line each, not one per request (a client asking again and again floods nothing). */
const MAX_WARNED = 1_000;

/**
 * The published tree is served as it is on disk, so whatever lands in it is sent: a registry made inside
 * another's public/ (before init refused that) had its signing key at GET /sub/keys/registry-secret.asc.
 * Never sent, whatever the request: a key under a folder holding a registry's marks, a file named as a
 * secret key, and a body beginning as secret key material (its armor, or a binary Secret-Key packet). Each
 * is answered 404 as a missing file is, and said once on `warn`.
 */
class SecretGuard {
  readonly #site: Store;
  readonly #warn: ((line: string) => void) | undefined;
  readonly #warned = new Set<string>();

  constructor(site: Store, warn: ((line: string) => void) | undefined) {
    this.#site = site;
    this.#warn = warn;
  }

  /**
   * True (and warned of, once) when `key` must not be sent; `first`, its first bytes where the caller has
   * them (read for the answer), else read here.
   */
  async refuses(key: string, first?: Uint8Array): Promise<boolean> {
    const why = await this.#why(key, first);
    if (why === undefined) return false;
    if (!this.#warned.has(key)) {
      if (this.#warned.size >= MAX_WARNED) this.#warned.clear();
      this.#warned.add(key);
      this.#warn?.(
        `warning: not serving /${key} (answered 404): ${why}; secret key material is never served: move it out of the published tree`,
      );
    }
    return true;
  }

  async #why(key: string, first: Uint8Array | undefined): Promise<string | undefined> {
    if (SECRET_KEY_NAME.test(key)) return "its name is a secret key file's";
    const segments = key.split('/');
    // Every folder above the file, the tree's root ('') first.
    const folders = segments.map((_, i) => segments.slice(0, i).join('/'));
    const marked = await Promise.all(folders.map((folder) => this.#holdsRegistry(folder)));
    const registry = folders.find((_, i) => marked[i]);
    if (registry !== undefined)
      return `it is inside a registry's folder (/${registry ? `${registry}/` : ''}: ${REGISTRY_MARKS.join(' beside ')}), whose signing key is there`;
    if (isSecretKeyStart(first ?? (await this.#firstBytes(key))))
      return 'it begins as OpenPGP secret key material';
    return undefined;
  }

  async #holdsRegistry(folder: string): Promise<boolean> {
    const prefix = folder ? `${folder}/` : '';
    for (const mark of REGISTRY_MARKS) {
      // A key too long to be one is no mark there.
      const found = await this.#site.head(`${prefix}${mark}`).catch(() => undefined);
      if (!found) return false;
    }
    return true;
  }

  async #firstBytes(key: string): Promise<Uint8Array> {
    const stream = await this.#site.getStream(key).catch(() => undefined);
    if (!stream) return new Uint8Array(0);
    const chunks: Uint8Array[] = [];
    let size = 0;
    try {
      for await (const chunk of stream.body) {
        chunks.push(chunk);
        size += chunk.byteLength;
        if (size >= SECRET_PEEK_BYTES) break;
      }
    } finally {
      stream.cancel();
    }
    return Buffer.concat(chunks).subarray(0, SECRET_PEEK_BYTES);
  }
}

/**
 * The first `size` bytes of `body` (all of it when shorter), and `body` whole again, to send: the chunks read
 * for them first, then the rest as it comes.
 */
async function peekStart(
  body: AsyncIterable<Uint8Array>,
  size: number,
): Promise<{ first: Uint8Array; body: AsyncIterable<Uint8Array> }> {
  const iterator = body[Symbol.asyncIterator]();
  const taken: Uint8Array[] = [];
  let length = 0;
  let ended = false;
  while (length < size) {
    const next = await iterator.next();
    if (next.done) {
      ended = true;
      break;
    }
    taken.push(next.value);
    length += next.value.byteLength;
  }
  async function* again(): AsyncGenerator<Uint8Array> {
    yield* taken;
    if (ended) return;
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) yield next.value;
  }
  return { first: Buffer.concat(taken).subarray(0, size), body: again() };
}

/**
 * True when `bytes` (a file's first) begin as secret key material: the armor of one, after any byte order
 * mark and blank space, or a binary Secret-Key or Secret-Subkey packet (RFC 9580 §5.5.1.3) of a key
 * version (4, 5 or 6), its first byte after the packet's header.
 */
export function isSecretKeyStart(bytes: Uint8Array): boolean {
  const text = Buffer.from(bytes)
    .toString('latin1')
    .replace(/^\xef\xbb\xbf/, '')
    .trimStart();
  if (text.startsWith(SECRET_KEY_ARMOR)) return true;
  if (!mayBeBinaryPackets(bytes)) return false;
  const first = bytes[0] as number;
  const current = (first & 0x40) !== 0;
  const tag = current ? first & 0x3f : (first >> 2) & 0x0f;
  if (tag !== 5 && tag !== 7) return false;
  let lengthBytes: number;
  if (current) {
    const length = bytes[1] ?? 0;
    lengthBytes = length < 192 ? 1 : length < 224 ? 2 : length === 255 ? 5 : 1;
  } else lengthBytes = [1, 2, 4, 0][first & 0x03] as number;
  const version = bytes[1 + lengthBytes];
  return version === 4 || version === 5 || version === 6;
}

/** A request listener over the Store; see the module comment for the routes. */
export function createRegistryServer(options: RegistryServerOptions): http.Server {
  // Kept for the server's life: each search reads the snapshot, and search.json only when it changed.
  const search = new SearchIndex(options.site);
  // Kept too: what each variant recording no digest was found to decode to (variant-check.ts).
  const variants = new VariantChecks(options.site);
  // Warned of where an internal error's cause goes: `plugindex serve`'s stderr.
  const secrets = new SecretGuard(options.site, options.logError ?? options.log);
  const timeouts = options.timeouts ?? SERVER_TIMEOUTS;
  const maxConnections = options.maxConnections ?? MAX_CONNECTIONS;
  if (!Number.isSafeInteger(maxConnections) || maxConnections < 1)
    throw new CliError(
      'USAGE',
      `the cap on connections (--max-connections) must be a whole number of at least 1, not ${String(options.maxConnections)}`,
    );
  const maxPerAddress = options.maxConnectionsPerAddress ?? defaultShare(maxConnections);
  if (!Number.isSafeInteger(maxPerAddress) || maxPerAddress < 0 || maxPerAddress > maxConnections)
    throw new CliError(
      'USAGE',
      `the connections one address may hold (--max-connections-per-address) must be a whole number from 0 (no limit) to the cap on connections (${maxConnections}), not ${String(options.maxConnectionsPerAddress)}`,
    );
  const turnedAway = options.logTurnedAway && new TurnedAwayLog({ log: options.logTurnedAway });
  const slots = new ConnectionSlots({
    maxConnections,
    maxPerAddress,
    stalledMs: timeouts.stalledMs ?? SERVER_TIMEOUTS.stalledMs,
    onTurnedAway: turnedAway && ((event) => turnedAway.record(event)),
    ...(options.sampleTimer ? { sampleTimer: options.sampleTimer } : {}),
  });
  // Responses begun and not yet ended, by connection: a refusal of its parser's is written on one only
  // where none is (answerClientError), so it never lands inside another response.
  const answering = new WeakMap<Socket, number>();
  const server = http.createServer(
    {
      headersTimeout: timeouts.headersMs,
      requestTimeout: timeouts.headersMs,
      // Node checks the two above only this often (30 s by default, which let a slow head run 90 s).
      connectionsCheckingInterval: Math.ceil(timeouts.headersMs / 4),
    },
    (req, res) => {
      // Busy until its answer is sent or cut: an idle connection may be closed for another, a busy one only
      // once its client has stopped taking the answer.
      slots.requestStarted(req.socket);
      answering.set(req.socket, (answering.get(req.socket) ?? 0) + 1);
      res.once('close', () => {
        slots.requestEnded(req.socket);
        answering.set(req.socket, (answering.get(req.socket) ?? 1) - 1);
      });
      res.on('finish', () => options.log?.(`${req.method} ${req.url} ${res.statusCode}`));
      respond(options, search, variants, secrets, req, res).catch((error: unknown) => {
        // The client went away mid-body (a cancelled download, a scanner, the idle timeout): the response
        // was closed under the stream, no fault of the server's. Logged as an internal error, each such
        // client wrote an error line to `plugindex serve`'s output, as many as a client liked to make. A
        // store failing mid-body is its own error, never this one, and is logged.
        const clientGone =
          (error as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE' && res.destroyed;
        if (clientGone) options.log?.(`${req.method} ${req.url} ${res.statusCode} (the client left)`);
        else
          (options.log ?? options.logError)?.(
            `error serving ${req.method} ${req.url}: ${(error as Error).message}`,
          );
        if (res.headersSent) res.destroy();
        else sendJson(res, 500, { error: 'internal' }, { head: req.method === 'HEAD' });
      });
    },
  );
  // With no 'timeout' listener, Node destroys the idle socket; a streamed file is then cancelled (respond's
  // pipeline fails, its finally closes the file).
  server.setTimeout(timeouts.idleMs);
  // A client that half-closes once its request is written (`nc -N`, some HTTP/1.0 clients) must still get
  // its answer. When the client's side ends, Node's HTTP server aborts the requests in hand and ends the
  // socket at once unless `httpAllowHalfOpen` is set (its net.Server is half-open already); every answer here
  // is read from the store first, so it came after that end and was lost. Set, Node ends the socket after
  // the last response to what was received, and the idle timeout still bounds the wait. The property is
  // Node's (lib/_http_server.js, socketOnEnd), not in its types; the half-close tests hold it to its word.
  Object.assign(server, { httpAllowHalfOpen: true });
  // Each connection judged as it is accepted (after Node's own listener, which only sets up its parser):
  // it takes a slot, perhaps an idle connection's, or is closed unread (connection-slots.ts).
  server.on('connection', (socket: Socket) => slots.admit(socket));
  server.on('clientError', (error: Error, socket: Socket) =>
    answerClientError(error, socket, (s) => (answering.get(s) ?? 0) > 0),
  );
  server.on('connect', (req: http.IncomingMessage, socket: Socket) => {
    refuseConnect(socket);
    options.log?.(`${req.method} ${req.url} 405`);
  });
  server.once('close', () => turnedAway?.close());
  // Node's own bound, checked before a connection is accepted: the slots, and the one being judged. A
  // connection closed by the slots no longer counts here, so this refuses nothing they would take.
  server.maxConnections = maxConnections + 1;
  return server;
}

/** Listens on `host:port` (0 picks a free port) and resolves with the base URL and a close function. */
export function listenRegistryServer(
  server: http.Server,
  port: number,
  host = '127.0.0.1',
): Promise<ListeningRegistryServer> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const address = server.address() as AddressInfo;
      const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      resolve({
        url: `http://${shownHost}:${address.port}`,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections(); // keep-alive sockets would hold close() open
          }),
      });
    });
  });
}
