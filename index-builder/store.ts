/**
 * The storage interface the core writes through. The local registry uses a filesystem implementation
 * (adapters/fs-store.ts); the AWS deployment uses S3. Keys are `/`-separated relative paths, never starting
 * with `/`, never containing `.` or `..` segments.
 */
import { StoreError } from './errors.ts';
import { mapLimited } from './limited.ts';

export interface PutOptions {
  readonly contentType: string;
  readonly cacheControl: string;
  /**
   * The body's SHA-256 (hex), when the caller has it already: a store uses it instead of hashing again (an
   * ETag) or to have the bytes checked on arrival (S3's checksum).
   */
  readonly sha256?: string;
  /**
   * The body's `Content-Encoding` (`br`, `gzip`) when it is a pre-compressed variant of a document
   * (layout.ts `encodedVariantKey`); absent for bytes served as they are.
   */
  readonly contentEncoding?: string;
  /**
   * Of a pre-compressed variant: the SHA-256 (hex) of the bytes it decodes to, its document's. Recorded
   * where the store keeps metadata (the filesystem store's sidecar, S3's `x-amz-meta-decoded-sha256`), so a
   * server or a flush can tell a variant of its document's bytes from one of another generation's without
   * decoding it (a run that died between a grown document's variants and the document); a store without
   * such metadata may drop it.
   */
  readonly decodedSha256?: string;
  /**
   * `decodedSha256` where it is known only once the body has been read: a variant streamed beside its
   * document's first rendering (pipeline/streamed.ts), whose digest comes with the rendering's end. A store
   * that records it asks for it after the body has ended, before the object becomes visible (S3, which takes
   * metadata only before a multipart body, records it on a variant larger than a part by a copy just after
   * the completion: until then that variant records none); one that keeps no such metadata never calls it.
   */
  readonly decodedSha256AfterBody?: () => Promise<string>;
  /**
   * Write only over the object whose ETag (as `get`, `head` or a listing gave it) is this one: a body made
   * from what was read never replaces what another writer put since. Anything else there (or nothing) fails
   * with StoreError `STORE_CONFLICT`, the object left as it is. S3 checks it as part of the write
   * (`If-Match`); the filesystem store just before its rename, as its writers take turns under a lock.
   */
  readonly ifMatch?: string;
}

/** How `Store.get` reads. */
export interface GetOptions {
  /**
   * The most bytes the caller takes into memory: an object larger (as the store finds it when it reads, not
   * as a listing said it was) is not read, StoreError STORE_TOO_LARGE. An upload listed small and replaced
   * by a larger one before its read was read whole, however large.
   */
  readonly maxBytes?: number;
}

/**
 * The failure of a `get` capped by `options.maxBytes` at an object of `size` bytes, or undefined when it is
 * within the cap: each store asks before it reads the body.
 */
export function tooLargeToGet(
  key: string,
  size: number,
  options: GetOptions | undefined,
): StoreError | undefined {
  const max = options?.maxBytes;
  if (max === undefined || size <= max) return undefined;
  return new StoreError(
    'STORE_TOO_LARGE',
    key,
    `not read: ${JSON.stringify(key)} holds ${size} bytes, more than the ${max} asked for`,
  );
}

/** How `Store.delete` deletes. */
export interface DeleteOptions {
  /**
   * Delete only the object whose ETag (as `get`, `head` or a listing gave it) is this one: an object put
   * under the key since it was read is left where it is, and that is not an error. An upload replaced under
   * its name while a batch took the former one is the next batch's, and must not be deleted with it.
   */
  readonly ifMatch?: string;
}

/** What a listing tells about an object (S3's ListObjectsV2 gives no more without a request per key). */
export interface ListedObject {
  readonly key: string;
  readonly size: number;
  /** A strong validator for the bytes (quoted, as in HTTP). */
  readonly etag: string;
  readonly lastModified: Date;
}

export interface ObjectInfo extends ListedObject {
  readonly contentType: string;
  readonly cacheControl: string;
  /** As put (`PutOptions.contentEncoding`); absent when the bytes are served as they are. */
  readonly contentEncoding?: string;
  /** As put (`PutOptions.decodedSha256`), where the store records it. */
  readonly decodedSha256?: string;
  /**
   * The bytes' whole SHA-256 (hex), where the store has it without reading them (the filesystem store's
   * sidecar); absent otherwise.
   */
  readonly sha256?: string;
}

export interface StoredObject extends ObjectInfo {
  readonly body: Uint8Array;
}

/**
 * An object whose body is read as it is consumed, for objects too large to hold in memory (an oversized
 * upload, a big artifact). The body holds a file handle or a connection until it is read to its end or
 * cancelled: a caller that may not read it all calls `cancel()` when done (harmless after the end).
 */
/** How `Store.getStream` reads. */
export interface GetStreamOptions {
  /**
   * The first byte the caller wants (a resumed download's range): a store that can seek starts the body
   * there and says so in `StoredStream.bodyStart`; one that cannot, or an offset past the end, starts at 0.
   */
  readonly start?: number;
}

export interface StoredStream extends ObjectInfo {
  readonly body: AsyncIterable<Uint8Array>;
  /** Where in the object the body begins: `GetStreamOptions.start` where the store seeked to it, else 0. */
  readonly bodyStart?: number;
  cancel(): void;
}

/** What `Store.move` did. */
export type MoveResult = 'moved' | 'changed' | 'cannot';

export interface Store {
  /** The object, or `undefined` when there is none. */
  get(key: string, options?: GetOptions): Promise<StoredObject | undefined>;
  /** Metadata without the body, or `undefined` when there is none. */
  head(key: string): Promise<ObjectInfo | undefined>;
  /**
   * Writes atomically: a reader sees the old bytes or the new ones, never a mix. Once the promise settles the
   * store holds no reference to `body`: the caller reuses that memory (the pipeline's render buffers).
   */
  put(key: string, body: Uint8Array, options: PutOptions): Promise<void>;
  /** `get` without holding the body in memory. */
  getStream(key: string, options?: GetStreamOptions): Promise<StoredStream | undefined>;
  /**
   * `put` from a stream, without holding it in memory (multipart on S3), as atomically as `put`: a stream
   * that fails midway leaves the old object, or none. `options.sha256` may be ignored: it is only known once
   * the stream has ended.
   */
  putStream(key: string, body: AsyncIterable<Uint8Array>, options: PutOptions): Promise<void>;
  /** Deleting a missing key is not an error; nor is an object left by `options.ifMatch`. */
  delete(key: string, options?: DeleteOptions): Promise<void>;
  /**
   * Moves the object at `from` to `to`, with `options`' metadata, if it still holds the bytes the caller read
   * from it, whose SHA-256 is `options.sha256`: 'moved'; 'changed' when it holds other bytes (put there
   * since it was read) or none, and then `from` is left as it is; 'cannot' when this store cannot move
   * between the two (another filesystem). Optional: call it through `moveObject`, which puts and deletes
   * otherwise. The filesystem store links and renames: an upload leaves `incoming/` without a copy of its
   * bytes, and is at `from` or at `to` whenever the process dies; and it knows a file it read, unwritten
   * since, by its identity rather than by hashing it again.
   */
  move?(from: string, to: string, options: PutOptions & { readonly sha256: string }): Promise<MoveResult>;
  /** Every object whose key starts with `prefix`, in lexicographic key order. */
  list(prefix: string): AsyncIterable<ListedObject>;
  /**
   * The folders next below `prefix`: each distinct key start up to the first `/` after `prefix`, that `/`
   * included, in lexicographic order (S3's common prefixes for the delimiter `/`). A store may also name a
   * folder that holds no object (a filesystem's empty folder). Optional: call it through `listFolders`,
   * which derives the folders from `list` for a store without it. A rebuild finds every plugin by its folder
   * under `plugins/`, where a listing of every key would name each version's files too (and the
   * filesystem store reads each one's metadata to list it).
   */
  listFolders?(prefix: string): AsyncIterable<string>;
}

/** Immutable files: versioned manifests, their signatures, hosted artifacts. */
export const CACHE_IMMUTABLE = 'public, max-age=31536000, immutable';
/**
 * Mutable documents (indexes, snapshot, pages): one minute in any cache, then revalidate. Short enough that
 * a publish is visible quickly; the signed snapshot bounds how stale a client may be regardless.
 */
export const CACHE_MUTABLE = 'public, max-age=60, must-revalidate';
/** Submission outcomes and internal state: never cached. */
export const CACHE_PRIVATE = 'no-store';

const CONTENT_TYPES: Record<string, string> = {
  '.json': 'application/json',
  '.yaml': 'application/yaml',
  '.yml': 'application/yaml',
  '.asc': 'application/pgp-signature',
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.tsv': 'text/tab-separated-values',
  '.svg': 'image/svg+xml',
  '.tgz': 'application/gzip',
  '.gz': 'application/gzip',
  '.zip': 'application/zip',
};

/** Content type by file extension; unknown extensions are opaque bytes. */
export function contentTypeFor(key: string): string {
  if (key.endsWith('keys/registry.asc')) return 'application/pgp-keys';
  const dot = key.lastIndexOf('.');
  const slash = key.lastIndexOf('/');
  if (dot <= slash) return 'application/octet-stream';
  return CONTENT_TYPES[key.slice(dot).toLowerCase()] ?? 'application/octet-stream';
}

// Keys: a store writes only safe keys (`isSafeKey` and `keyProblem` in layout.ts: relative paths of plain
// ASCII segments), the keys the registry makes. It reads, moves and deletes whatever it lists, though: an
// upload may arrive under any name its backend allows (`my plugin (1).tgz`, `plügin.tgz`), and every upload
// gets an outcome. Each store says which names it can hold (`isReadableKey` in the filesystem store); keys of
// the registry's own making pass both checks.

/** What a caller read of an object it moves: its bytes, their SHA-256 (hex), and its ETag then. */
export interface ReadObject {
  readonly bytes: Uint8Array;
  readonly sha256: string;
  readonly etag: string;
}

/**
 * Moves `read`, the object read from `from`, to `to` (`Store.move`), or puts its bytes there and deletes
 * `from` for a store that cannot move, only while `from` still has the ETag read. An object at `from` that is
 * no longer the one read (another upload under the same name, made since) is left where it is: only the
 * bytes read are moved or written.
 * @example await moveObject(intake, 'incoming/a.tgz', 'processed/a-1f2e.tgz', { bytes, sha256, etag }, options);
 */
export async function moveObject(
  store: Store,
  from: string,
  to: string,
  read: ReadObject,
  options: PutOptions,
): Promise<void> {
  const moved = store.move ? await store.move(from, to, { ...options, sha256: read.sha256 }) : 'cannot';
  if (moved === 'moved') return;
  await store.put(to, read.bytes, { ...options, sha256: read.sha256 });
  if (moved === 'cannot') await store.delete(from, { ifMatch: read.etag });
}

/**
 * Keys in one page of a listing: S3's ListObjectsV2 gives at most 1,000 a request, so a listing of N keys
 * costs N / 1,000 requests (rounded up, one at least), one after the other (each page names the next).
 */
export const LIST_PAGE_KEYS = 1000;

/**
 * Which of `keys` (each under `prefix`) are in `store`, asked in about as few requests as it can be: the
 * prefix listed a page at a time while the pages listed are fewer than the keys still to find (those past
 * the last key listed), then each of those left asked for by `head`, `limit` at a time. So 10,000 keys
 * under a prefix of a few objects cost one listing's request, where a `head` each cost 10,000; and a few
 * keys under a prefix of a million objects cost at most twice the requests of a `head` each (the pages
 * listed never outnumber the keys then left), where listing it all would cost a thousand requests.
 * `keys` must be under `prefix`; they are compared in UTF-8 byte order, the order a store lists in.
 * @example const applied = await existingKeys(intake, 'state/actions/', markerKeys, 32);
 */
export async function existingKeys(
  store: Store,
  prefix: string,
  keys: readonly string[],
  limit: number,
): Promise<Set<string>> {
  const wanted = [...new Set(keys)].sort(compareUtf8);
  const found = new Set<string>();
  // wanted[next] and after: not yet passed by the listing.
  let next = 0;
  // One key is one `head`, never more than a listing's first page.
  if (wanted.length > 1) {
    let listed = 0;
    let ended = true;
    for await (const { key } of store.list(prefix)) {
      for (; next < wanted.length && compareUtf8(wanted[next] as string, key) <= 0; next++)
        if (wanted[next] === key) found.add(key);
      listed++;
      // Every key found or passed: the rest of the listing would answer nothing.
      if (next === wanted.length) break;
      // A page's end: the next page only while the pages listed are fewer than the keys left to ask for.
      if (listed % LIST_PAGE_KEYS === 0 && listed / LIST_PAGE_KEYS >= wanted.length - next) {
        ended = false;
        break;
      }
    }
    // A listing that ended passed every key: those not found are not there.
    if (ended) next = wanted.length;
  }
  const left = wanted.slice(next);
  const there = await mapLimited(left, limit, async (key) => (await store.head(key)) !== undefined);
  left.forEach((key, index) => {
    if (there[index]) found.add(key);
  });
  return found;
}

/**
 * Orders keys as their UTF-8 bytes, as S3 lists them, without encoding them: UTF-16 order, but for a
 * surrogate, which stands for a code point above every other UTF-16 unit (U+E000 to U+FFFF among them).
 * Keys are well-formed (no lone surrogate: the filesystem store's are decoded from file names). A listing
 * of 10,000 uploads sorted by `Buffer.compare` of keys encoded per comparison made 280,000 buffers:
 * 150-700 ms. One definition for the filesystem store's listings and `existingKeys`.
 */
export function compareUtf8(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const xSurrogate = x >= 0xd800 && x <= 0xdfff;
    if (xSurrogate !== (y >= 0xd800 && y <= 0xdfff)) return xSurrogate ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

/** Reads every object of a listing into an array (for small prefixes). */
export async function listAll(store: Store, prefix: string): Promise<ListedObject[]> {
  const out: ListedObject[] = [];
  for await (const info of store.list(prefix)) out.push(info);
  return out;
}

/**
 * The folders next below `prefix` (`Store.listFolders`), from the store's own listing of them when it has
 * one, else from its keys.
 * @example for await (const folder of listFolders(site, 'plugins/')) console.log(folder); // 'plugins/a/'
 */
export async function* listFolders(store: Store, prefix: string): AsyncIterable<string> {
  if (store.listFolders) {
    yield* store.listFolders(prefix);
    return;
  }
  const folders = new Set<string>();
  for await (const { key } of store.list(prefix)) {
    const slash = key.indexOf('/', prefix.length);
    if (slash >= 0) folders.add(key.slice(0, slash + 1));
  }
  // In UTF-8 byte order, as S3 lists (code-point order, which JavaScript's string order is not).
  const encoder = new TextEncoder();
  const sorted = [...folders]
    .map((folder) => ({ folder, bytes: encoder.encode(folder) }))
    .sort((a, b) => compareBytes(a.bytes, b.bytes));
  for (const { folder } of sorted) yield folder;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) if (a[i] !== b[i]) return (a[i] as number) - (b[i] as number);
  return a.length - b.length;
}

/**
 * `parts` back to back in one buffer of their own: a catalog bin's lines (catalog.ts), and what the local
 * store's threads are handed (transferred, not cloned: adapters/fs-writer.ts, adapters/inspector.ts).
 */
export function joinBytes(parts: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  let size = 0;
  for (const part of parts) size += part.byteLength;
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const part of parts) {
    bytes.set(part, offset);
    offset += part.byteLength;
  }
  return bytes;
}
