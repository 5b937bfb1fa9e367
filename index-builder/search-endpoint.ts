/**
 * The spec's `GET /search?q=&provider=&type=&capability=` (and `limit`, `offset`), one definition for both
 * homes of the endpoint: the local server (cli/local/server.ts) and the search function on AWS
 * (functions/search.ts). Pure but for the Store it reads through:
 *
 * - `parseSearchQuery`: the raw query string into a `SearchRequest`, or a `SearchRefusal` (400) with a stable
 *   code, the parameter it is about and what was expected. Strict, because a misspelt parameter silently
 *   ignored would answer another question than the one asked.
 * - `SearchIndex`: the published `search.json`, read once per version of it. Each request reads the small
 *   `snapshot.json`; the rows are parsed (and folded for ranking: lowercased, NFC) again only when the digest the snapshot
 *   lists for `search.json` changes, and a document whose bytes the snapshot does not list (a publish between the two reads) is
 *   never used: the answer's `generation` is that of a snapshot that binds the rows it was computed from.
 * - `searchAnswer`: ranked by `searchPlugins` (index-builder/search.ts), the ranking the client uses, then
 *   paged by `limit` and by a byte budget (`SEARCH_PAGE_BYTES`: the function's answer must stay under AWS
 *   Lambda's 6 MB response limit). `answerSearch` ranks the same way in slices (`searchPluginsInSlices`), so
 *   the local server answers other clients meanwhile, and keeps its last answers (`SearchIndex.answer`).
 *
 * A client never needs this endpoint (it reads the signed `search.json` and ranks it itself); it is a
 * convenience for spec clients, so its answer is unsigned and says which generation it comes from.
 *
 * @example
 * const parsed = parseSearchQuery('q=cost&provider=aws');
 * if (parsed.ok) searchAnswer(await index.current(), parsed.request); // { generation, total, results, ... }
 */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { sha256Hex } from './digest.ts';
import { SEARCH_KEY, SNAPSHOT_KEY } from './layout.ts';
import type { SearchEntry } from './model.ts';
import {
  type FoldedEntry,
  foldEntries,
  MAX_FILTER_LENGTH,
  MAX_QUERY_LENGTH,
  type MatchKind,
  readSearchParameters,
  repeatedParameter,
  SEARCH_FIELDS,
  type SearchField,
  type SearchHit,
  type SearchProblemCode,
  searchPlugins,
  searchPluginsInSlices,
} from './search.ts';
import type { Store } from './store.ts';

/** The request path of the endpoint (the spec's `/search`), on the local server and behind CloudFront. */
export const SEARCH_PATH = '/search';

/** The bounds of `q` and of a filter, defined with the rule they belong to (index-builder/search.ts). */
export { MAX_FILTER_LENGTH, MAX_QUERY_LENGTH };
export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 1000;
/** Larger than any registry's plugin count; the bound keeps `offset` a small integer. */
export const MAX_OFFSET = 1_000_000;
/**
 * The most bytes of rows one page carries. `limit` alone bounds no answer: a row may hold 256 tags of 64
 * characters (4-byte emoji among them), so 1000 rows can be tens of megabytes, and the search function on AWS
 * may answer at most 6 MB (a synchronous invocation's response payload; past it the Function URL answers
 * 502). Its body travels there as a JSON string inside the function's JSON result, so a row is counted as
 * it travels, escaped twice (a `"` or `\` of a row costs 4 bytes there); 4 MiB leaves
 * room for the answer's other fields and the headers. The local server cuts its pages at the same rows, so
 * both servers answer the same pages, and `next_offset` leads a client through the rest.
 */
export const SEARCH_PAGE_BYTES = 4 * 1024 * 1024;

export const SEARCH_PARAMETERS = ['q', 'type', 'provider', 'capability', 'limit', 'offset'] as const;
export type SearchParameter = (typeof SEARCH_PARAMETERS)[number];

/** What a refusal says went wrong; stable, for clients to branch on. */
export type SearchRefusalCode =
  /** Percent-encoding that is not UTF-8, or a parameter name that cannot be read. */
  | 'SEARCH_PARAMETER_MALFORMED'
  | 'SEARCH_PARAMETER_UNKNOWN'
  /** The search's own parameters' faults (`readSearchParameters`, shared with `plugindex search` and the
   * home page), and a limit or offset repeated, too long or not an integer in range. */
  | SearchProblemCode;

/** The body of a 400 answer. */
export interface SearchRefusal {
  readonly error: 'bad_request';
  readonly code: SearchRefusalCode;
  /** The parameter as named in the query (decoded when it could be). */
  readonly parameter: string;
  readonly message: string;
  readonly expected: string;
}

/** A checked request. Filters are trimmed and lowercased (`readSearchParameters`). */
export interface SearchRequest {
  readonly q: string;
  readonly type?: string;
  readonly provider?: string;
  readonly capability?: string;
  readonly limit: number;
  readonly offset: number;
}

export type ParsedSearchQuery =
  | { readonly ok: true; readonly request: SearchRequest }
  | { readonly ok: false; readonly refusal: SearchRefusal };

/** The body of a 200 answer: `schema` names this shape, which only grows by new fields. */
export interface SearchAnswer {
  readonly schema: 'plugindex/search-results/v1';
  /** The generation of the snapshot that lists the `search.json` the results come from. */
  readonly generation: number;
  readonly query: {
    readonly q: string;
    readonly type: string | null;
    readonly provider: string | null;
    readonly capability: string | null;
  };
  /** Every match, before paging. */
  readonly total: number;
  readonly offset: number;
  readonly limit: number;
  /** The `offset` of the next page, or null on the last one. */
  readonly next_offset: number | null;
  /**
   * Best first: each row exactly as `search.json` has it, the tier it matched in, and `look_alikes` when
   * other plugins of this registry have names that read as its own and other owners than its own (search.ts
   * `lookAlikesOf`; absent when there are none), which a client shows beside it: added to v1, a client
   * that knows no such field ignores it.
   */
  readonly results: readonly SearchResult[];
}

/** One result of a search answer (`SearchAnswer.results`). */
export interface SearchResult {
  readonly match: MatchKind;
  readonly plugin: SearchEntry;
  readonly look_alikes?: readonly string[];
}

function refuse(
  code: SearchRefusalCode,
  parameter: string,
  message: string,
  expected: string,
): ParsedSearchQuery {
  return { ok: false, refusal: { error: 'bad_request', code, parameter, message, expected } };
}

/** Form decoding (`+` is a space, as every HTML form and Go's url.Values encode it), or undefined. */
function decodeComponent(text: string): string | undefined {
  try {
    return decodeURIComponent(text.replaceAll('+', ' '));
  } catch {
    return undefined;
  }
}

/** C0 controls and DEL: no parameter name holds one. */
function hasControlCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}

/** The integer, or what was expected instead. */
function parseCount(value: string, min: number, max: number): number | string {
  if (!/^[0-9]{1,7}$/.test(value)) return `an integer from ${min} to ${max}`;
  const n = Number(value);
  return n >= min && n <= max ? n : `an integer from ${min} to ${max}`;
}

/**
 * Reads the query string (without the `?`). Parameters: `q`, `type`, `provider`, `capability`, read by the
 * rule `plugindex search` and the home page read them by (`readSearchParameters` in index-builder/search.ts:
 * each once, an empty value absent, `q` at most 256 characters and `MAX_SEARCH_TERMS` distinct words, a
 * filter trimmed, any case, one value the manifest schema knows); `limit` (1 to 1000, default 100) and
 * `offset` (0 to 1,000,000, default 0). Empty `&&` pieces are skipped. Anything else is refused, the first
 * fault told: a name or value that cannot be decoded, an unknown name, a limit or offset given twice or too
 * long, in query order; then the search's own parameters' first fault, in query order; then a limit or
 * offset that is no integer in range (`limit=x&q=%00` is q's control character).
 */
export function parseSearchQuery(rawQuery: string): ParsedSearchQuery {
  const pairs: (readonly [SearchField, string])[] = [];
  const counts = new Map<'limit' | 'offset', string>();
  for (const piece of rawQuery.split('&')) {
    if (piece === '') continue;
    const equals = piece.indexOf('=');
    const rawName = equals === -1 ? piece : piece.slice(0, equals);
    const rawValue = equals === -1 ? '' : piece.slice(equals + 1);
    const name = decodeComponent(rawName);
    if (name === undefined || hasControlCharacter(name))
      return refuse(
        'SEARCH_PARAMETER_MALFORMED',
        rawName.slice(0, 64),
        'the parameter name is not percent-encoded UTF-8 text',
        `one of ${SEARCH_PARAMETERS.join(', ')}`,
      );
    if (!(SEARCH_PARAMETERS as readonly string[]).includes(name))
      return refuse(
        'SEARCH_PARAMETER_UNKNOWN',
        name.slice(0, 64),
        `unknown parameter ${JSON.stringify(name.slice(0, 64))}`,
        `one of ${SEARCH_PARAMETERS.join(', ')}`,
      );
    const parameter = name as SearchParameter;
    const value = decodeComponent(rawValue);
    if (value === undefined)
      return refuse(
        'SEARCH_PARAMETER_MALFORMED',
        parameter,
        `the value of ${parameter} is not percent-encoded UTF-8 text`,
        'percent-encoded UTF-8 text',
      );
    if ((SEARCH_FIELDS as readonly string[]).includes(parameter)) {
      pairs.push([parameter as SearchField, value]);
      continue;
    }
    const count = parameter as 'limit' | 'offset';
    if (counts.has(count))
      return { ok: false, refusal: { error: 'bad_request', ...repeatedParameter(count) } };
    if ([...value].length > MAX_FILTER_LENGTH)
      return refuse(
        'SEARCH_PARAMETER_TOO_LONG',
        count,
        `${count} is ${[...value].length} characters long`,
        `at most ${MAX_FILTER_LENGTH} characters`,
      );
    counts.set(count, value);
  }

  const read = readSearchParameters(pairs);
  if (!read.ok) {
    const { code, parameter, message, expected } = read.problem;
    return refuse(code, parameter, message, expected);
  }
  const parsedCounts = { limit: DEFAULT_LIMIT, offset: 0 };
  for (const [name, min, max] of [
    ['limit', 1, MAX_LIMIT],
    ['offset', 0, MAX_OFFSET],
  ] as const) {
    const value = counts.get(name);
    if (value === undefined || value === '') continue;
    const parsed = parseCount(value, min, max);
    if (typeof parsed === 'string')
      return refuse(
        'SEARCH_PARAMETER_INVALID',
        name,
        `${name} is ${JSON.stringify(value.slice(0, 16))}`,
        parsed,
      );
    parsedCounts[name] = parsed;
  }
  return { ok: true, request: { ...read.query, ...parsedCounts } };
}

/** The rows a search runs over, and the generation of the snapshot that binds them. */
export interface SearchRows {
  readonly generation: number;
  /** The digest the snapshot lists for `search.json` (`SearchIndex`), which the kept answers are of. */
  readonly sha256?: string;
  readonly entries: readonly SearchEntry[];
  /** `foldEntries(entries)`, made once per version of `search.json` (`SearchIndex`); else made per search. */
  readonly folded?: readonly FoldedEntry[];
}

/** The bytes of one result as the search function's response carries it (see `SEARCH_PAGE_BYTES`). */
function resultBytes(result: SearchResult): number {
  return Buffer.byteLength(JSON.stringify(JSON.stringify(result)), 'utf8');
}

/**
 * Ranks `rows` for `request` exactly as the client's `plugindex search` does for one registry (one source,
 * so only the tiers and names order them), then cuts the page: at most `limit` rows, and no more than fit
 * in `SEARCH_PAGE_BYTES` (but always the first, so a client paging by `next_offset` always moves on; no row
 * a manifest can give comes near the budget). `next_offset` is the first row left out, by either bound.
 */
export function searchAnswer(rows: SearchRows, request: SearchRequest): SearchAnswer {
  const [sources, query] = rankingOf(rows, request);
  return pageOf(searchPlugins(sources, query), rows, request);
}

/** `searchAnswer`, the same answer, ranked in slices with turns of the event loop between them. */
export async function searchAnswerInSlices(rows: SearchRows, request: SearchRequest): Promise<SearchAnswer> {
  const [sources, query] = rankingOf(rows, request);
  return pageOf(await searchPluginsInSlices(sources, query), rows, request);
}

function rankingOf(rows: SearchRows, request: SearchRequest): Parameters<typeof searchPlugins> {
  const source = { registry: '', priority: 1, entries: rows.entries };
  return [
    [rows.folded === undefined ? source : { ...source, folded: rows.folded }],
    {
      terms: [request.q],
      ...(request.type === undefined ? {} : { type: request.type }),
      ...(request.provider === undefined ? {} : { provider: request.provider }),
      ...(request.capability === undefined ? {} : { capability: request.capability }),
    },
  ];
}

function pageOf(hits: readonly SearchHit[], rows: SearchRows, request: SearchRequest): SearchAnswer {
  const page: SearchResult[] = [];
  let bytes = 0;
  for (const hit of hits.slice(request.offset, request.offset + request.limit)) {
    const result: SearchResult = {
      match: hit.match,
      plugin: hit.entry,
      ...(hit.lookAlikes === undefined ? {} : { look_alikes: hit.lookAlikes }),
    };
    bytes += resultBytes(result);
    if (bytes > SEARCH_PAGE_BYTES && page.length > 0) break;
    page.push(result);
  }
  const end = request.offset + page.length;
  return {
    schema: 'plugindex/search-results/v1',
    generation: rows.generation,
    query: {
      q: request.q,
      type: request.type ?? null,
      provider: request.provider ?? null,
      capability: request.capability ?? null,
    },
    total: hits.length,
    offset: request.offset,
    limit: request.limit,
    next_offset: end < hits.length ? end : null,
    results: page,
  };
}

/**
 * `JSON.stringify(answer) + '\n'`, the same text, in pieces of about `pieceChars` characters (a piece holds
 * whole results, so a row longer than that is a piece of its own): the answer's fields, then its results a
 * few at a time, then the close. A server that writes the pieces as its client takes them holds a piece or
 * two per client, never a copy of the whole answer (up to `SEARCH_PAGE_BYTES`), however long the client
 * takes to read it; the rows themselves are the shared `search.json`'s, referenced by the answer.
 *
 * @example
 * let length = 0;
 * for (const piece of searchAnswerText(answer)) length += Buffer.byteLength(piece); // the Content-Length
 */
export function* searchAnswerText(answer: SearchAnswer, pieceChars = 16 * 1024): Generator<string> {
  // `results` is the shape's last field, so the text up to its `[` is that of the answer without them.
  const fields = JSON.stringify({ ...answer, results: [] });
  if (!fields.endsWith('"results":[]}'))
    throw new Error('a search answer must end with its results to be written a piece at a time');
  let piece = fields.slice(0, -2);
  for (const [i, result] of answer.results.entries()) {
    // An element of an array is written as it would be alone (no result is undefined, a function or a symbol).
    piece += i === 0 ? JSON.stringify(result) : `,${JSON.stringify(result)}`;
    if (piece.length >= pieceChars) {
      yield piece;
      piece = '';
    }
  }
  yield `${piece}]}\n`;
}

/** Each answer's tag and length, made once however often the answer is sent (`SearchIndex` keeps answers). */
const TAGS = new WeakMap<SearchAnswer, SearchAnswerTag>();

/** What a 200 answer is validated and sized by. */
export interface SearchAnswerTag {
  /** A strong entity tag: the SHA-256 of the body, quoted (RFC 9110 §8.8.3). */
  readonly etag: string;
  /** The body's length in bytes, its `Content-Length`. */
  readonly length: number;
}

/**
 * The strong ETag and the length of the body both servers send for `answer` (`searchAnswerText`, the text
 * the search function sends whole): the digest of those very bytes. A tag made of the generation and the
 * query alone would not be strong: a release that ranks differently, or pages by another byte budget, sends
 * other bytes for the same generation and question, and a client holding the old page under the same tag
 * would be told 304 for bytes it does not have. Two queries that read as one question (`limit=10&q=Cost`
 * and `q=Cost&limit=10`) give one body, so one tag. Made once per answer (`SearchIndex` keeps the last 64):
 * a 4 MiB page took 17 to 56 ms warm, where counting its length alone, which the local server did on every
 * request before, took 12 to 44 ms (this shared machine, noisy); asked again, 0.01 ms.
 */
export function searchAnswerTag(answer: SearchAnswer): SearchAnswerTag {
  const kept = TAGS.get(answer);
  if (kept !== undefined) return kept;
  const hash = createHash('sha256');
  let length = 0;
  for (const piece of searchAnswerText(answer)) {
    hash.update(piece, 'utf8');
    length += Buffer.byteLength(piece);
  }
  const tag = { etag: `"${hash.digest('hex')}"`, length };
  TAGS.set(answer, tag);
  return tag;
}

/**
 * The registry cannot answer a search now: no snapshot yet (`SEARCH_NOT_PUBLISHED`), or `search.json`
 * changed under every read and no snapshot listed the bytes read (`SEARCH_SNAPSHOT_MOVING`, a publish in
 * progress: retry in a moment). Servers answer 503.
 */
export class SearchUnavailableError extends Error {
  readonly code: 'SEARCH_NOT_PUBLISHED' | 'SEARCH_SNAPSHOT_MOVING';
  constructor(code: 'SEARCH_NOT_PUBLISHED' | 'SEARCH_SNAPSHOT_MOVING', message: string) {
    super(message);
    this.name = 'SearchUnavailableError';
    this.code = code;
  }
}

interface ListedSearch {
  readonly generation: number;
  readonly sha256: string;
}

/**
 * The generation and the `search.json` digest a published snapshot lists. Anything else is a broken
 * registry, not a moment of it: a plain error, which the servers answer 500.
 */
function readSnapshot(body: Uint8Array): ListedSearch {
  const snapshot = JSON.parse(new TextDecoder().decode(body)) as {
    generation?: unknown;
    documents?: Record<string, { sha256?: unknown } | undefined>;
  };
  const generation = snapshot.generation;
  const sha256 = snapshot.documents?.[SEARCH_KEY]?.sha256;
  if (!Number.isSafeInteger(generation) || typeof sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(sha256))
    throw new Error(`${SNAPSHOT_KEY} lists no generation or no sha256 for ${SEARCH_KEY}`);
  return { generation: generation as number, sha256 };
}

export interface SearchIndexOptions {
  /** Pauses between reads while a publish is between `search.json` and its snapshot, in milliseconds. */
  readonly retryDelays?: readonly number[];
  readonly sleep?: (ms: number) => Promise<void>;
}

/**
 * `search.json` as the published snapshot binds it, kept between requests (a warm Lambda, the local
 * server) and read again only when the snapshot lists another digest for it.
 */
export class SearchIndex {
  readonly #site: Pick<Store, 'get'>;
  readonly #retryDelays: readonly number[];
  readonly #sleep: (ms: number) => Promise<void>;
  /** The rows of the version read last, with their folded fields (`foldEntries`): made once per version, not per request. */
  #rows:
    | {
        readonly sha256: string;
        readonly entries: readonly SearchEntry[];
        readonly folded: readonly FoldedEntry[];
      }
    | undefined;
  /** Bytes read whose digest no snapshot listed yet: the snapshot after them may, then no second read. */
  #ahead: { readonly sha256: string; readonly body: Uint8Array } | undefined;
  #inflight: Promise<SearchRows> | undefined;
  /**
   * The last answers computed over the version read last, by request (`answer`), least recently asked
   * first: emptied when another version is read.
   */
  readonly #answers = new Map<string, Promise<SearchAnswer>>();
  /** How many times `search.json` was read and parsed: what "once per version" means, observable. */
  reads = 0;
  /** How many answers were ranked rather than found kept: what the kept answers spare, observable. */
  rankings = 0;

  constructor(site: Pick<Store, 'get'>, options: SearchIndexOptions = {}) {
    this.#site = site;
    this.#retryDelays = options.retryDelays ?? [50, 200, 500];
    this.#sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  /** The rows now; concurrent callers share one read, so a cold cache reads `search.json` once. */
  current(): Promise<SearchRows> {
    this.#inflight ??= this.#read().finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }

  async #read(): Promise<SearchRows> {
    for (let attempt = 0; ; attempt++) {
      const snapshot = await this.#site.get(SNAPSHOT_KEY);
      if (!snapshot)
        throw new SearchUnavailableError('SEARCH_NOT_PUBLISHED', 'the registry has published nothing yet');
      const listed = readSnapshot(snapshot.body);
      if (this.#rows?.sha256 === listed.sha256)
        return {
          generation: listed.generation,
          sha256: listed.sha256,
          entries: this.#rows.entries,
          folded: this.#rows.folded,
        };
      if (this.#ahead?.sha256 === listed.sha256) return this.#keep(listed, this.#ahead.body);
      const document = await this.#site.get(SEARCH_KEY);
      if (document) {
        const sha256 = sha256Hex(document.body);
        if (sha256 === listed.sha256) return this.#keep(listed, document.body);
        this.#ahead = { sha256, body: document.body };
      }
      const delay = this.#retryDelays[attempt];
      if (delay === undefined)
        throw new SearchUnavailableError(
          'SEARCH_SNAPSHOT_MOVING',
          `${SEARCH_KEY} does not match the digest ${SNAPSHOT_KEY} lists (a publish in progress)`,
        );
      await this.#sleep(delay);
    }
  }

  #keep(listed: ListedSearch, body: Uint8Array): SearchRows {
    const document = JSON.parse(new TextDecoder().decode(body)) as { plugins?: unknown };
    if (!Array.isArray(document.plugins)) throw new Error(`${SEARCH_KEY} has no plugins array`);
    this.reads++;
    const entries = document.plugins as SearchEntry[];
    this.#rows = { sha256: listed.sha256, entries, folded: foldEntries(entries) };
    this.#ahead = undefined;
    this.#answers.clear();
    return { generation: listed.generation, sha256: listed.sha256, entries, folded: this.#rows.folded };
  }

  /**
   * `searchAnswer(rows, request)` for rows of `current()`, ranked in slices (`searchAnswerInSlices`), or
   * the same answer kept from an earlier request: a spec client paging back and forth, a page polled, a
   * query repeated by a flood of clients each cost one ranking per version of `search.json`, not one each.
   * Kept by the parsed request (so `limit=10&q=Cost` and `q=Cost&limit=10` are one question, as their
   * answers are one text) with the generation and the digest of the rows: the answer says its generation,
   * which a publish that leaves `search.json` as it was still moves. Requests asked at once share one
   * ranking. At most `SEARCH_ANSWERS_KEPT`, each a page of references to the rows held anyway.
   */
  answer(rows: SearchRows, request: SearchRequest): Promise<SearchAnswer> {
    const key = JSON.stringify([
      rows.sha256 ?? null,
      rows.generation,
      request.q,
      request.type ?? null,
      request.provider ?? null,
      request.capability ?? null,
      request.limit,
      request.offset,
    ]);
    const kept = this.#answers.get(key);
    if (kept !== undefined) {
      // Asked again: the last to be let go.
      this.#answers.delete(key);
      this.#answers.set(key, kept);
      return kept;
    }
    this.rankings++;
    const answer = searchAnswerInSlices(rows, request);
    // Rows of a version read since were ranked for a request already under way: answered, not kept.
    if (rows.sha256 === undefined || rows.sha256 !== this.#rows?.sha256) return answer;
    this.#answers.set(key, answer);
    answer.catch(() => this.#answers.delete(key));
    const oldest = this.#answers.keys().next();
    if (this.#answers.size > SEARCH_ANSWERS_KEPT && !oldest.done) this.#answers.delete(oldest.value);
    return answer;
  }
}

export const SEARCH_MAX_AGE_SECONDS = 10;

/** How many answers a `SearchIndex` keeps: the last asked, each a page (up to `limit` results) of the rows. */
export const SEARCH_ANSWERS_KEPT = 64;

/**
 * Headers of every answer of the endpoint (200, its 304, 400 and 503), beside the serving policy's own (its
 * CSP and `CORS_READ_HEADERS`, which both servers add: serving.ts names this module's path, so not here); a
 * 200 and its 304 carry the answer's ETag (`searchAnswerTag`), and the 304 the same Cache-Control, so a
 * cache that revalidated keeps the answer another 10 s (RFC 9111 §4.3.4).
 */
export function searchResponseHeaders(status: number, etag?: string): Record<string, string> {
  return {
    ...(etag === undefined ? {} : { etag }),
    'content-type': 'application/json',
    // A short life: a publish shows within seconds, and CloudFront's cache (keyed on the query) spares the
    // function the repeated questions. A 503 is a moment's state, never cached.
    'cache-control': status === 503 ? 'no-store' : `public, max-age=${SEARCH_MAX_AGE_SECONDS}`,
  };
}

/** The body of a 503 answer: the registry cannot answer a search now (`SearchUnavailableError`). */
export interface SearchUnavailable {
  readonly error: 'unavailable';
  readonly code: SearchUnavailableError['code'];
  readonly message: string;
}

/** What the endpoint answers: the status and its JSON body, told apart by the status. */
export type SearchEndpointAnswer =
  | { readonly status: 200; readonly body: SearchAnswer; readonly tag: SearchAnswerTag }
  | { readonly status: 400; readonly body: SearchRefusal }
  | { readonly status: 503; readonly body: SearchUnavailable };

/**
 * The status and JSON body of the endpoint for one raw query string: what both servers send, so they
 * cannot differ. Throws only what the store throws (and a broken snapshot), which the servers answer 500.
 */
export async function answerSearch(index: SearchIndex, rawQuery: string): Promise<SearchEndpointAnswer> {
  const parsed = parseSearchQuery(rawQuery);
  if (!parsed.ok) return { status: 400, body: parsed.refusal };
  try {
    const body = await index.answer(await index.current(), parsed.request);
    return { status: 200, body, tag: searchAnswerTag(body) };
  } catch (error) {
    if (!(error instanceof SearchUnavailableError)) throw error;
    return {
      status: 503,
      body: { error: 'unavailable', code: error.code, message: error.message },
    };
  }
}
