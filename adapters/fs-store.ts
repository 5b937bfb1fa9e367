/**
 * The filesystem Store: the embedded default. Keys are files under `root`.
 *
 * Writes replace atomically: the body goes to a unique temp file beside the target and is renamed over it,
 * so a reader (or the HTTP server) sees the old bytes or the new ones, never a torn file. A temp name
 * carries its writer's PID, so what a killed writer left can be told and removed (fs-temps.ts). Content type,
 * cache control and the ETag live in a sidecar tree, `root/.meta/<key>.json`, written before the body is
 * renamed into place: a reader never finds a body without its metadata. A small file whose metadata is
 * what its key implies (`impliedMetadata` in layout.ts: most of a plugin's files) has no sidecar: it is
 * read with that metadata, and its ETag is hashed from the bytes read.
 *
 * The ETag is a strong validator, the quoted first 32 hex digits of the body's SHA-256 (the same tag the
 * in-memory store gives), computed once at put time so reads never hash. The sidecar also records the
 * identity of the file it describes (size, nanosecond mtime, inode; a rename keeps all three). A sidecar
 * that does not describe the body on disk (a crash between the two renames, two concurrent puts of one key,
 * a file copied in by hand) is ignored for the ETag, which is then recomputed from the bytes actually read;
 * past IDENTITY_ETAG_BYTES, from the file's identity instead (`identityEtag`), so that no read of a file's
 * metadata costs a read of its bytes (an upload of gigabytes left in `incoming/`).
 *
 * Names: the store writes only safe keys (layout.ts), but lists and reads files under any name a filesystem
 * allows (`my plugin (1).tgz`, a newline, bytes that are not UTF-8), so every upload dropped into
 * `incoming/` can be read, moved and given an outcome. Names starting with a dot are the store's own
 * (sidecars, temp files, the lock) or an upload still being written (write a dot-file, then rename it in):
 * never listed, never read.
 *
 * Reads never leave the tree: a file whose real path (after every symbolic link on the way) is outside the
 * store's real root does not exist for it, even behind a link an operator made; a link as the last
 * segment is never followed at all.
 *
 * @example
 * const site = new FsStore('registry/public');
 * await site.put('index.json', bytes, { contentType: 'application/json', cacheControl: CACHE_MUTABLE });
 * const object = await site.get('index.json'); // { body, etag: '"3f2a…"', contentType, … }
 */
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  type Dirent,
  fstatSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readlinkSync,
  readSync,
  realpathSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import {
  type FileHandle,
  lstat,
  open,
  readdir,
  readFile,
  readlink,
  realpath,
  rename,
  rm,
} from 'node:fs/promises';
import path from 'node:path';
import { createSha256, sha256Hex } from '../index-builder/digest.ts';
import { StoreError } from '../index-builder/errors.ts';
import { impliedMetadata, isSafeKey, keyProblem } from '../index-builder/layout.ts';
import {
  compareUtf8,
  type DeleteOptions,
  type GetOptions,
  type GetStreamOptions,
  type MoveResult,
  type ObjectInfo,
  type PutOptions,
  type Store,
  type StoredObject,
  type StoredStream,
  tooLargeToGet,
} from '../index-builder/store.ts';
import { asideNameFor, tempNameFor } from './fs-temps.ts';
import { fsWriter, MADE_FOLDERS_LIMIT, type WriteRequest } from './fs-writer.ts';

/** The sidecar tree; its name starts with a dot, which no safe key segment can. */
const META_DIR = '.meta';
/**
 * Largest body written without a sidecar when its metadata is what its key implies (`impliedMetadata`):
 * a read of such a file hashes it for its ETag, which up to this size costs less than the sidecar's file
 * did to create (an import of 10,000 new plugins created 160,000 files, half of them sidecars, and spent a
 * core's time in the kernel's open and mkdir).
 */
export const BARE_BYTES = 128 * 1024;
/**
 * A leaf symlink is never followed: `list` skips links, so `get` must not find what `list` hides. And
 * non-blocking, so that opening a FIFO someone made in incoming/ or the site (or named in a hand-over) does
 * not wait for a writer with the thread, and the whole server, stopped: it opens at once, and is then no
 * regular file. A regular file reads as it always does.
 */
const READ_FLAGS = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);
/** Attempts at a write whose folder a concurrent delete pruned in between. */
const WRITE_ATTEMPTS = 3;
/** Read size for streams and hashing. */
const STREAM_CHUNK = 1024 * 1024;
/** The path separator, as the bytes a real path is compared by. */
const SEPARATOR = Buffer.from(path.sep);
/**
 * Bodies up to this size are read and deleted with synchronous calls, and written by the writer thread
 * (fs-writer.ts). Each asynchronous call is a round trip through libuv's pool, about 60 µs of CPU here (a
 * promise, a FileHandle, two thread switches) for a system call of a few: a small file's put (body and
 * sidecar, eleven calls) cost three times the CPU it does synchronously, and a batch of 1,000 new plugins
 * makes about 12,000 store calls. A read blocks this thread for a local disk's small-file syscalls, tens of
 * µs; the writes, whose calls the kernel makes dear (creating and replacing files), run beside it. Larger
 * bodies (index documents, artifacts) and streams stay asynchronous, so nothing blocks for long.
 */
export const SYNC_BYTES = 1024 * 1024;
/** Small puts a process makes on this thread before it hands them to the writer thread. */
const PUTS_BEFORE_WRITER = 200;
let smallPuts = 0;
/** What the synchronous path says of a file it leaves to the asynchronous one (larger than SYNC_BYTES). */
const LARGE = Symbol('large');
/** Longest file name most filesystems take, in bytes. */
const NAME_MAX = 255;
/** Error codes that say the filesystem refuses this name or operation for good, not for now. */
const REFUSED_CODES = new Set(['ENAMETOOLONG', 'EILSEQ', 'EINVAL', 'EISDIR', 'ENOTDIR', 'EEXIST']);
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
const lossyUtf8 = new TextDecoder('utf-8');

/**
 * Why `key` cannot name a file of this store for reading, or undefined: segments that are file names (not
 * empty, `.` or `..`, not a dot-file, no NUL, at most 255 bytes), and on Windows no `\\` (a separator there).
 */
export function readableKeyProblem(key: string): string | undefined {
  if (key.length === 0) return 'an empty key';
  if (key.includes('\0')) return 'a NUL character';
  if (path.sep === '\\' && key.includes('\\')) return 'a backslash';
  for (const segment of key.split('/')) {
    if (segment.length === 0) return 'an empty segment';
    if (segment.startsWith('.')) return 'a segment starting with "."';
    if (Buffer.byteLength(segment) > NAME_MAX) return `a segment longer than ${NAME_MAX} bytes`;
  }
  return undefined;
}

/** Whether a put's metadata holds a NUL character (refused on every path: `put`). */
function holdsNul(options: PutOptions): boolean {
  return (
    options.contentType.includes('\0') ||
    options.cacheControl.includes('\0') ||
    options.contentEncoding?.includes('\0') === true ||
    options.decodedSha256?.includes('\0') === true
  );
}

interface FileIdentity {
  readonly size: number;
  /** Nanosecond modification time, as a decimal string (JSON has no bigint). */
  readonly mtimeNs: string;
  readonly ino: string;
}

interface Sidecar extends FileIdentity {
  readonly contentType: string;
  readonly cacheControl: string;
  readonly contentEncoding?: string;
  readonly etag: string;
  /** The whole SHA-256 (the ETag holds 128 bits of it): what a put of the same bytes is known by. */
  readonly sha256?: string;
  /** Of a compressed variant: its document's SHA-256 (`PutOptions.decodedSha256`). */
  readonly decodedSha256?: string;
}

interface BigStats {
  readonly size: bigint;
  readonly dev: bigint;
  readonly ino: bigint;
  /** How many names the file has (a move gives it a second one before it lets go of the first). */
  readonly nlink: bigint;
  readonly ctimeNs: bigint;
  readonly mtimeNs: bigint;
  readonly mtimeMs: bigint;
  /** 0 where the filesystem keeps no birth time. */
  readonly birthtimeNs: bigint;
  isFile(): boolean;
}

/** The strong ETag of some bytes: quoted, first 32 hex digits of SHA-256. */
function etagOf(body: Uint8Array): string {
  return etagFromSha256(sha256Hex(body));
}

/**
 * Past this size, a file no sidecar describes (an upload dropped into `incoming/`, a file copied in by hand)
 * has the ETag of its identity (`identityEtag`), not of its bytes. Hashed for it, a file was read whole by
 * every `head`, listing's ETag and stream that asked, whatever its size: an upload of gigabytes left in
 * `incoming/`, too large to stream (`maxStreamedBytes`) and so named by its key and ETag
 * (`unreadableSubmissionId`), was read whole by every batch that met it, where S3's listing gives the ETag
 * for nothing. Up to it, hashing costs less than a millisecond, and a body read (SYNC_BYTES) is in hand.
 */
export const IDENTITY_ETAG_BYTES = SYNC_BYTES;

/**
 * The ETag of a file from its stats alone (device, inode, size, birth, modification and change times, in
 * nanoseconds), hashed and quoted as a body's is. A new upload under the same key, renamed in or written in
 * place, is another inode or has another change time (which no one sets: the kernel stamps every write,
 * rename and link), so it has another ETag, as S3 gives a new upload; the very file, unwritten, keeps it.
 * What it gives up is a body's: the same bytes put again are another ETag (only a re-read or a hash then
 * tells them equal: every caller that compares ETags reads or hashes again on a mismatch), and a rewrite in
 * place that keeps the size within one tick of the kernel's clock is not seen, as `sameVersion` does not
 * see it, which a move trusts already.
 */
function identityEtag(stats: BigStats): string {
  const { dev, ino, size, birthtimeNs, mtimeNs, ctimeNs } = stats;
  return etagFromSha256(sha256Hex(`file\0${dev}\0${ino}\0${size}\0${birthtimeNs}\0${mtimeNs}\0${ctimeNs}`));
}

/**
 * A file's ETag: its sidecar's where that describes the file, else computed when first asked for: its
 * identity's past IDENTITY_ETAG_BYTES, else its bytes' (`hash`).
 */
function etagFor(sidecar: Sidecar | undefined, stats: BigStats, hash: () => string): string | (() => string) {
  if (sidecar && describes(sidecar, stats)) return sidecar.etag;
  return stats.size > BigInt(IDENTITY_ETAG_BYTES) ? () => identityEtag(stats) : hash;
}

/**
 * The bytes read as a plain Uint8Array (what every store returns), without copying them: `new
 * Uint8Array(buffer)` would copy, and at 10,000 plugins a publish reads megabytes (its catalog), whose
 * copies cost more in fresh memory than the reading. A Buffer that shares its memory with others (Node's
 * pool for small reads) is copied, so no reader is handed memory beyond its own bytes.
 */
function asPlainBytes(buffer: Buffer): Uint8Array {
  const whole = buffer.byteOffset === 0 && buffer.byteLength === buffer.buffer.byteLength;
  return whole ? new Uint8Array(buffer.buffer, 0, buffer.byteLength) : new Uint8Array(buffer);
}

function etagFromSha256(hex: string): string {
  return `"${hex.slice(0, 32)}"`;
}

function identityOf(stats: BigStats): FileIdentity {
  return { size: Number(stats.size), mtimeNs: stats.mtimeNs.toString(), ino: stats.ino.toString() };
}

/** A file as `readAhead` read it: its stats from the same descriptor, and its bytes. */
interface AheadRead {
  readonly stats: BigStats;
  readonly body: Uint8Array;
}

/**
 * What the store keeps of a file's stats to know that file again later. A whole BigIntStats is 18 bigints
 * and 4 Dates (Node.js 20 makes them all at once); a batch kept one per upload from its listing to the
 * upload's move: at an import of 10,000, 230,000 objects on the heap that every collection went through.
 */
interface FileVersion {
  readonly dev: bigint;
  readonly ino: bigint;
  readonly size: bigint;
  readonly mtimeNs: bigint;
  readonly ctimeNs: bigint;
}

function versionOf(stats: BigStats): FileVersion {
  return { dev: stats.dev, ino: stats.ino, size: stats.size, mtimeNs: stats.mtimeNs, ctimeNs: stats.ctimeNs };
}

/** Whether two stats are of the same file, unwritten between (a rename since changes its change time only). */
function sameFile(a: FileVersion, b: FileVersion): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs;
}

/** Whether two stats are of the same version of the same file. */
function sameVersion(a: FileVersion, b: FileVersion): boolean {
  return sameFile(a, b) && a.ctimeNs === b.ctimeNs;
}

function describes(sidecar: Sidecar, stats: BigStats): boolean {
  const file = identityOf(stats);
  return sidecar.size === file.size && sidecar.mtimeNs === file.mtimeNs && sidecar.ino === file.ino;
}

/**
 * Thrown inside a read that met a put of its key: the key's sidecar describes another file (another inode),
 * written within RACE_WINDOW_NS, so a put renamed its new sidecar in between the read's open and its read of
 * the sidecar (before the put renamed its body in, or after, the read holding the former file). Taken for
 * what its key implies, the file would lose the metadata its sidecar gave it: a compressed variant served as
 * identity. The read is made again (`#io`), a millisecond apart; the last of RACE_ATTEMPTS takes the file
 * for what its key implies, as a read does of a file its sidecar does not describe (a put that died between
 * its two renames, a file replaced by hand).
 */
const RACED = Symbol('raced with a put');
const RACE_WINDOW_NS = 1_000_000_000n;
const RACE_ATTEMPTS = 50;

function racedPut(sidecar: Sidecar | undefined, stats: BigStats): boolean {
  if (!sidecar || sidecar.ino === stats.ino.toString()) return false;
  const age = BigInt(Date.now()) * 1_000_000n - BigInt(sidecar.mtimeNs);
  return age < RACE_WINDOW_NS && age > -RACE_WINDOW_NS;
}

function errorCode(error: unknown): string | undefined {
  // A SystemError (rmSync on a folder: ERR_FS_EISDIR) keeps its errno code under `info`.
  const failure = error as (NodeJS.ErrnoException & { info?: { code?: unknown } }) | undefined;
  return typeof failure?.info?.code === 'string' ? failure.info.code : failure?.code;
}

function isMissing(error: unknown): boolean {
  const code = errorCode(error);
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** Sidecars are our own files, but a truncated or hand-edited one must degrade to "none", not fail reads. */
function parseSidecar(text: string): Sidecar | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  const strings = ['contentType', 'cacheControl', 'etag', 'mtimeNs', 'ino'] as const;
  if (!strings.every((field) => typeof v[field] === 'string') || typeof v.size !== 'number') return undefined;
  if (v.contentEncoding !== undefined && typeof v.contentEncoding !== 'string') return undefined;
  if (v.sha256 !== undefined && typeof v.sha256 !== 'string') return undefined;
  if (v.decodedSha256 !== undefined && typeof v.decodedSha256 !== 'string') return undefined;
  return value as Sidecar;
}

/** Most keys of a listing kept as `#listedKeys` (a registry's whole tree listed would be millions). */
const LISTED_KEYS_KEPT = 100_000;

export class FsStore implements Store {
  readonly root: string;
  readonly #metaRoot: string;
  /** The root with every symbolic link resolved, and a separator: found at the first read (the folder may not
   * exist before). */
  #realRoot: Buffer | undefined;
  /** Listed names that are not UTF-8: key (decoded with U+FFFD) -> the file's path as raw bytes. */
  readonly #rawPaths = new Map<string, Buffer>();
  readonly #folders: FolderMemo = new Set();
  /**
   * Keys the last listing found, not yet read: a `get` of one opens the file without asking first whether it
   * is there (a batch lists `incoming/`, then reads every upload). A hint only: a file gone since is found
   * missing by the open, at the cost of an exception. With each, the stats of the file the listing found
   * without a sidecar: a `get` that opens that very version (`sameVersion`) has none to look for either,
   * since a put writes the sidecar before it renames a new file in.
   */
  readonly #listedKeys = new Map<string, FileVersion | undefined>();
  /**
   * Listed keys read since, whose file had no sidecar, with its stats then: a `move` of that very file has
   * no sidecar to remove at `from` (one there since belongs to a put still renaming its own file in).
   */
  readonly #readBare = new Map<string, FileVersion>();
  /** Files read before a `get` asked for them (`readAhead`), by key; each is taken once. */
  readonly #ahead = new Map<string, Promise<AheadRead | undefined>>();
  /** Keys whose read is on its last attempt: it takes a sidecar that describes another file as a put that died. */
  readonly #lastAttempts = new Set<string>();

  constructor(root: string) {
    this.root = path.resolve(root);
    this.#metaRoot = path.join(this.root, META_DIR);
  }

  /**
   * The sidecar of the file a key names (`resolveInside` gave it): the same path below the sidecar tree, with
   * no second check of the key (a put resolved each key twice, and the check was most of that).
   */
  #sidecarOf(file: string): string {
    return `${this.#metaRoot}${file.slice(this.root.length)}.json`;
  }

  /**
   * Starts reading the files `keys` name now, on the pool's threads, for `get`s to come: a process that has
   * its own thread's work to do first (a publish loads its modules, about a fifth of a second, while the
   * pool idles) overlaps the two. Nothing is read when the files come to more than `maxBytes` together.
   * A `get` takes what was read only while the file is still the very one read (same device, inode, size,
   * modification and change times; every put replaces a file by a rename, so any write in between changes
   * one of them); else it reads the file as usual. Failures are left to that `get`. Resolves to the number
   * of files read (the caller need not wait for it).
   */
  readAhead(keys: readonly string[], maxBytes: number): Promise<number> {
    const reads = this.#readAll(keys, maxBytes);
    for (const [i, key] of keys.entries())
      this.#ahead.set(
        key,
        reads.then(
          (read) => read[i],
          () => undefined,
        ),
      );
    // How many files were read: for tests; the caller need not wait.
    return reads.then(
      (read) => read.filter(Boolean).length,
      () => 0,
    );
  }

  async #readAll(keys: readonly string[], maxBytes: number): Promise<readonly (AheadRead | undefined)[]> {
    const handles = await Promise.all(keys.map((key) => this.#openForRead(key).catch(() => undefined)));
    try {
      const stats = await Promise.all(handles.map((handle) => handle?.stat({ bigint: true })));
      let total = 0;
      for (const stat of stats) if (stat?.isFile()) total += Number(stat.size);
      if (total > maxBytes) return [];
      return await Promise.all(
        handles.map(async (handle, i) => {
          const stat = stats[i];
          return handle && stat?.isFile()
            ? { stats: stat, body: asPlainBytes(await handle.readFile()) }
            : undefined;
        }),
      );
    } finally {
      await Promise.all(handles.map((handle) => handle?.close()));
    }
  }

  /** What `readAhead` read of `key`, if the file is still the one read; taken, so it is freed after use. */
  async #takeAhead(key: string): Promise<StoredObject | undefined> {
    const ahead = this.#ahead.get(key);
    if (!ahead) return undefined;
    this.#ahead.delete(key);
    const read = await ahead;
    if (!read) return undefined;
    const now = await lstat(this.#readPath(key), { bigint: true }).catch(() => undefined);
    if (!now || !sameVersion(now, read.stats)) return undefined;
    const sidecar = await this.#readSidecar(key);
    if (this.#raced(key, sidecar, read.stats)) return undefined;
    const etag = etagFor(sidecar, read.stats, () => etagOf(read.body));
    return this.#info(key, read.stats, sidecar, etag, read.body);
  }

  async get(key: string, options?: GetOptions): Promise<StoredObject | undefined> {
    return this.#io(key, 'read', async () => {
      const early = await this.#takeAhead(key);
      if (early) {
        const tooLarge = tooLargeToGet(key, early.size, options);
        if (tooLarge) throw tooLarge;
        return early;
      }
      const small = this.#getSync(key, options);
      if (small !== LARGE) return small;
      // One handle for stat and read, so size, date and ETag all belong to exactly the bytes returned.
      const handle = await this.#openForRead(key);
      if (!handle) return undefined;
      let stats: BigStats;
      let body: Uint8Array;
      try {
        stats = await handle.stat({ bigint: true });
        if (!stats.isFile()) return undefined;
        // The size of the file opened, whatever a listing said: past the cap, none of it is read.
        const tooLarge = tooLargeToGet(key, Number(stats.size), options);
        if (tooLarge) throw tooLarge;
        body = asPlainBytes(await handle.readFile());
      } finally {
        await handle.close();
      }
      const sidecar = await this.#readSidecar(key);
      if (this.#raced(key, sidecar, stats)) throw RACED;
      const etag = etagFor(sidecar, stats, () => etagOf(body));
      return this.#info(key, stats, sidecar, etag, body);
    });
  }

  /** `get` by synchronous calls (SYNC_BYTES), or LARGE for a file past it. */
  #getSync(key: string, options?: GetOptions): StoredObject | undefined | typeof LARGE {
    const file = this.#readPath(key);
    const listed = this.#listedKeys.get(key);
    const opened = listed
      ? this.#openListedSync(file, listed)
      : this.#openForReadSync(file, this.#listedKeys.has(key));
    this.#listedKeys.delete(key);
    if (opened === undefined) return undefined;
    const fd = typeof opened === 'number' ? opened : opened.fd;
    let stats: BigStats;
    let body: Uint8Array;
    try {
      // One descriptor for stat and read, so size, date and ETag all belong to exactly the bytes returned.
      stats = typeof opened === 'number' ? fstatSync(fd, { bigint: true }) : opened.stats;
      if (!stats.isFile()) return undefined;
      const tooLarge = tooLargeToGet(key, Number(stats.size), options);
      if (tooLarge) throw tooLarge;
      if (stats.size > BigInt(SYNC_BYTES)) return LARGE;
      body = asPlainBytes(readOpened(fd, stats.size));
    } finally {
      closeSync(fd);
    }
    const sidecar = listed && sameVersion(listed, stats) ? undefined : this.#readSidecarSync(key);
    if (this.#raced(key, sidecar, stats)) throw RACED;
    if (listed && !sidecar) this.#readBare.set(key, versionOf(stats));
    const etag = etagFor(sidecar, stats, () => etagOf(body));
    return this.#info(key, stats, sidecar, etag, body);
  }

  /**
   * `head` by synchronous calls, or LARGE for a file past SYNC_BYTES that no sidecar describes and that is
   * not past IDENTITY_ETAG_BYTES (none, while the two are one size).
   */
  #headSync(key: string): ObjectInfo | undefined | typeof LARGE {
    const file = this.#readPath(key);
    const fd = this.#openForReadSync(file);
    if (fd === undefined) return undefined;
    try {
      const stats = fstatSync(fd, { bigint: true });
      if (!stats.isFile()) return undefined;
      const sidecar = this.#readSidecarSync(key);
      if (this.#raced(key, sidecar, stats)) throw RACED;
      if (sidecar && describes(sidecar, stats)) return this.#info(key, stats, sidecar, sidecar.etag);
      if (stats.size > BigInt(IDENTITY_ETAG_BYTES))
        return this.#info(key, stats, sidecar, identityEtag(stats));
      if (stats.size > BigInt(SYNC_BYTES)) return LARGE;
      return this.#info(key, stats, sidecar, etagOf(readOpened(fd, stats.size)));
    } finally {
      closeSync(fd);
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    return this.#io(key, 'stat', async () => {
      const small = this.#headSync(key);
      if (small !== LARGE) return small;
      const handle = await this.#openForRead(key);
      if (!handle) return undefined;
      try {
        return await this.#describe(key, handle);
      } finally {
        await handle.close();
      }
    });
  }

  /**
   * What an open file is, or undefined when it is not a regular file. Only a file without a sidecar that
   * describes it, within IDENTITY_ETAG_BYTES, costs a read and a hash, in chunks.
   */
  async #describe(key: string, handle: FileHandle): Promise<ObjectInfo | undefined> {
    const stats = await handle.stat({ bigint: true });
    if (!stats.isFile()) return undefined;
    const sidecar = await this.#readSidecar(key);
    if (this.#raced(key, sidecar, stats)) throw RACED;
    const etag =
      sidecar && describes(sidecar, stats)
        ? sidecar.etag
        : stats.size > BigInt(IDENTITY_ETAG_BYTES)
          ? identityEtag(stats)
          : etagFromSha256(await hashFile(handle));
    return this.#info(key, stats, sidecar, etag);
  }

  async put(key: string, body: Uint8Array, options: PutOptions): Promise<void> {
    // No HTTP header holds a NUL, and the writer thread's messages end each field with one.
    if (holdsNul(options))
      throw new StoreError(
        'STORE_REFUSED',
        key,
        `cannot write ${JSON.stringify(key)}: its metadata holds a NUL`,
      );
    if (options.ifMatch !== undefined) await this.#checkMatch(key, options.ifMatch);
    // The body is whole already: a digest known after it is known now, and written as one given.
    if (options.decodedSha256AfterBody && options.decodedSha256 === undefined) {
      const { decodedSha256AfterBody, ...rest } = options;
      return this.put(key, body, { ...rest, decodedSha256: await decodedSha256AfterBody() });
    }
    if (body.byteLength > SYNC_BYTES) return this.#write(key, body, options);
    const bare = isBare(key, body, options);
    // A process that writes a few files (one publish) writes them here: the writer thread costs a start
    // (about 100 ms on a busy machine) that only a batch or a rebuild earns back.
    smallPuts += 1;
    if (smallPuts <= PUTS_BEFORE_WRITER)
      return this.#io(key, 'write', async () => this.#writeSync(key, body, options, bare));
    const file = resolveInside(this.root, key);
    const meta = this.#sidecarOf(file);
    // A bare put needs the digest only beside a former sidecar: the writer thread hashes then.
    const sha256 = options.sha256 ?? (bare ? undefined : sha256Hex(body));
    // Field by field, not from spreads of conditional objects: an import makes 70,000 of these.
    const request: { -readonly [K in keyof WriteRequest]: WriteRequest[K] } = {
      file,
      meta,
      body,
      contentType: options.contentType,
      cacheControl: options.cacheControl,
      bare,
    };
    if (options.contentEncoding) request.contentEncoding = options.contentEncoding;
    if (options.decodedSha256) request.decodedSha256 = options.decodedSha256;
    if (sha256 !== undefined) request.sha256 = sha256;
    await this.#io(key, 'write', () => fsWriter.put(request));
  }

  /**
   * True when the file at `file` already holds these bytes (by the SHA-256 its sidecar records) with this
   * metadata: putting them again would change nothing a reader can see, yet cost two
   * replacing renames, the dearest calls on ext4 (the replaced inode is freed, its blocks discarded, and
   * replace-by-rename forces the new file's blocks out). A rebuild rewrites every plugin document and page
   * mostly unchanged. Only a sidecar that describes the file on disk counts.
   */
  #holdsAlready(file: string, meta: string, sha256: string, options: PutOptions): boolean {
    let sidecar: Sidecar | undefined;
    try {
      sidecar = parseSidecar(readFileSync(meta, 'utf8'));
    } catch {
      return false;
    }
    if (
      !sidecar ||
      sidecar.sha256 !== sha256 ||
      sidecar.contentType !== options.contentType ||
      sidecar.cacheControl !== options.cacheControl ||
      sidecar.contentEncoding !== options.contentEncoding ||
      sidecar.decodedSha256 !== options.decodedSha256
    )
      return false;
    try {
      const stats = lstatSync(file, { bigint: true });
      return stats.isFile() && describes(sidecar, stats);
    } catch {
      return false;
    }
  }

  /**
   * `put` by synchronous calls, in the same order as `#write`: temp file, sidecar, rename. A bare put
   * (`isBare`) writes no sidecar, and removes the one a former put left once the body is replaced (a
   * sidecar that does not describe its file is not read for anything).
   */
  #writeSync(key: string, body: Uint8Array, options: PutOptions, bare: boolean): void {
    const file = resolveInside(this.root, key);
    const meta = this.#sidecarOf(file);
    if (bare) {
      const state = bareState(file, meta, body);
      if (state === 'same') return;
      // A file written with a sidecar before (an older version, other metadata) may hold these bytes.
      if (state === 'sidecar' && this.#holdsAlready(file, meta, options.sha256 ?? sha256Hex(body), options))
        return;
      const { temp } = writeTempSync(file, body, this.#folders, false);
      try {
        renameSync(temp, file);
      } catch (error) {
        rmSync(temp, { force: true });
        throw error;
      }
      if (state === 'sidecar') unlinkIfThere(meta);
      return;
    }
    const sha256 = options.sha256 ?? sha256Hex(body);
    if (this.#holdsAlready(file, meta, sha256, options)) return;
    const { temp, stats } = writeTempSync(file, body, this.#folders, true);
    try {
      // Metadata first: once the body is visible, its sidecar already is.
      this.#writeSidecarSync(meta, options, sha256, stats as BigStats);
      renameSync(temp, file);
    } catch (error) {
      rmSync(temp, { force: true });
      throw error;
    }
  }

  /** Writes the sidecar of a body about to be renamed in (`stats`: the temp file's, which a rename keeps). */
  #writeSidecarSync(meta: string, options: PutOptions, sha256: string, stats: BigStats): void {
    const sidecar: Sidecar = {
      contentType: options.contentType,
      cacheControl: options.cacheControl,
      ...(options.contentEncoding ? { contentEncoding: options.contentEncoding } : {}),
      ...(options.decodedSha256 ? { decodedSha256: options.decodedSha256 } : {}),
      etag: etagFromSha256(sha256),
      sha256,
      ...identityOf(stats),
    };
    const metaTemp = writeTempSync(meta, encodeSidecar(sidecar), this.#folders, false).temp;
    try {
      renameSync(metaTemp, meta);
    } catch (error) {
      rmSync(metaTemp, { force: true });
      throw error;
    }
  }

  /** Streams the file from disk; the handle closes when the body is read to its end or abandoned. */
  async getStream(key: string, options?: GetStreamOptions): Promise<StoredStream | undefined> {
    return this.#io(key, 'read', async () => {
      const handle = await this.#openForRead(key);
      if (!handle) return undefined;
      try {
        const info = await this.#describe(key, handle);
        if (!info) {
          await handle.close();
          return undefined;
        }
        // Positional reads from 0 (or the start asked for, within the file): the same bytes the stat and the
        // ETag describe, whatever the hash read.
        const wanted = options?.start ?? 0;
        const start = Number.isSafeInteger(wanted) && wanted > 0 && wanted < info.size ? wanted : 0;
        const body = handle.createReadStream({ start, highWaterMark: STREAM_CHUNK });
        return { ...info, body, ...(start > 0 ? { bodyStart: start } : {}), cancel: () => body.destroy() };
      } catch (error) {
        await handle.close();
        throw error;
      }
    });
  }

  async putStream(key: string, body: AsyncIterable<Uint8Array>, options: PutOptions): Promise<void> {
    if (options.ifMatch !== undefined) await this.#checkMatch(key, options.ifMatch);
    await this.#write(key, body, options);
  }

  /**
   * `PutOptions.ifMatch`: the object at `key` is the one read. Checked before the write, not as a part of
   * it (no rename is conditional): the local registry's writers take turns under its lock, and this catches
   * one that wrote outside it.
   * @throws StoreError STORE_CONFLICT when another object (or none) is there.
   */
  async #checkMatch(key: string, etag: string): Promise<void> {
    const current = await this.head(key);
    if (current?.etag !== etag)
      throw new StoreError(
        'STORE_CONFLICT',
        key,
        `cannot write ${JSON.stringify(key)}: it is not the object read (${current ? `ETag ${current.etag}` : 'none'} where ${etag} was read), and it is left as it is`,
      );
  }

  async #write(
    key: string,
    body: Uint8Array | AsyncIterable<Uint8Array>,
    options: PutOptions,
  ): Promise<void> {
    const file = resolveInside(this.root, key);
    const meta = this.#sidecarOf(file);
    await this.#io(key, 'write', async () => {
      // A digest the caller already has is taken as given: the pipeline hashes every document it signs.
      const written = await writeTemp(file, body, {
        ...(options.sha256 === undefined ? {} : { knownSha256: options.sha256 }),
        describe: true,
        folders: this.#folders,
      });
      const { temp, sha256 } = written;
      const stats = written.stats as BigStats;
      try {
        // Asked for once the body has ended (a variant streamed beside its document's rendering), and
        // written before the body is renamed in: no reader ever finds the variant without it.
        const decodedSha256 = options.decodedSha256 ?? (await options.decodedSha256AfterBody?.());
        const sidecar: Sidecar = {
          contentType: options.contentType,
          cacheControl: options.cacheControl,
          ...(options.contentEncoding ? { contentEncoding: options.contentEncoding } : {}),
          ...(decodedSha256 ? { decodedSha256 } : {}),
          etag: etagFromSha256(sha256),
          ...(sha256 ? { sha256 } : {}),
          ...identityOf(stats),
        };
        // Metadata first: once the body is visible, its sidecar already is.
        await writeAtomically(meta, encodeSidecar(sidecar), this.#folders);
        await rename(temp, file);
      } catch (error) {
        await rm(temp, { force: true });
        throw error;
      }
    });
  }

  async delete(key: string, options?: DeleteOptions): Promise<void> {
    // A file put under the key since it was read (another upload of that name) is left, for the next batch.
    if (options?.ifMatch !== undefined && (await this.head(key))?.etag !== options.ifMatch) return;
    await this.#io(key, 'delete', async () => {
      const file = this.#readPath(key);
      // Body first, so there is never a body without its sidecar. Only safe keys have sidecars.
      // Synchronous calls: an unlink and an rmdir or two, each a round trip through the pool otherwise.
      // Never a file outside the store: not when a folder on its way has been made a link since it was
      // listed (an upload's folder under `incoming/`, by whoever may write there).
      if (this.#folderInsideSync(folderOf(file))) {
        rmSync(file, { force: true });
        if (typeof file === 'string') prune(path.dirname(file), this.root);
      }
      this.#rawPaths.delete(key);
      if (isSafeKey(key)) {
        const meta = `${resolveInside(this.#metaRoot, key)}.json`;
        rmSync(meta, { force: true });
        prune(path.dirname(meta), this.#metaRoot);
      }
    });
  }

  /**
   * A move by synchronous calls: the file gets a second name beside `to` (a hard link, under a temp name),
   * where it is checked against `options.sha256` (what is moved is what was read, whatever was put at `from`
   * meanwhile), then that name is renamed onto `to`, with a sidecar unless `to` implies its metadata; only
   * then is `from` let go, and only while it names that very file (`letGo`). So a run killed at any point
   * leaves the upload at `from` or at `to`, or at both (then the next batch finds it again, and its outcome
   * recorded): never under a temp name alone, where no batch would find it. Other bytes stay at `from`: an
   * upload is never lost, and never taken for one it is not. The file this store read (listed, without a
   * sidecar) is known by its identity instead, when it is still that very file, unwritten since (its change
   * time too, before the link) and after it: then nothing is read or hashed again (a batch moves 10,000
   * uploads, in its last step, on this thread).
   */
  async move(
    from: string,
    to: string,
    options: PutOptions & { readonly sha256: string },
  ): Promise<MoveResult> {
    return this.#io(from, 'move', async () => {
      const source = this.#readPath(from);
      const file = resolveInside(this.root, to);
      const meta = this.#sidecarOf(file);
      const folder = path.dirname(file);
      const temp = tempNameFor(file);
      const read = this.#readBare.get(from);
      this.#readBare.delete(from);
      const unwritten = read !== undefined && fileAsRead(source, read, sameVersion) !== undefined;
      // A file known by its bytes alone is taken only from inside the store: a folder on its way made a link
      // since the listing would hand it one from elsewhere. The very file read needs no such check.
      if (!unwritten && !this.#folderInsideSync(folderOf(source))) return 'changed';
      for (let attempt = 1; ; attempt++) {
        const remembered = this.#folders.has(folder);
        if (!remembered) makeFolderSync(folder, this.#folders);
        try {
          // A second name rather than a rename: `from` keeps the upload until it is in place at `to`, so a
          // run killed in between leaves it where the next batch finds it (no listing shows a temp name).
          linkSync(source, temp);
          break;
        } catch (error) {
          if (errorCode(error) === 'EXDEV') return 'cannot';
          if (!isMissing(error)) throw error;
          // The folder only remembered (pruned since) is made again; else `from` is gone.
          this.#folders.delete(folder);
          if (!remembered || attempt > 1) return 'changed';
        }
      }
      let stats: BigStats | undefined;
      try {
        stats = (unwritten && fileAsRead(temp, read, sameFile)) || movedStats(temp, options.sha256);
      } catch (error) {
        rmSync(temp, { force: true });
        throw error;
      }
      if (!stats) {
        rmSync(temp, { force: true });
        return 'changed';
      }
      const bare = isBare(to, { byteLength: Number(stats.size) }, options);
      try {
        // Metadata first, as a put: once the body is at `to`, its sidecar already is.
        if (!bare) this.#writeSidecarSync(meta, options, options.sha256, stats);
        renameSync(temp, file);
      } catch (error) {
        rmSync(temp, { force: true });
        throw error;
      }
      // A third name: `to` was that very file already (a retry after a run killed before it let go), and a
      // rename between two names of one file leaves both.
      if (stats.nlink > 2n) unlinkIfThere(temp);
      letGo(source, stats, asideNameFor(file));
      if (bare) unlinkIfThere(meta); // a former put's, which no longer describes the file
      this.#rawPaths.delete(from);
      if (typeof source === 'string') prune(path.dirname(source), this.root);
      // The very file read without a sidecar (its change time is the link's) has none to remove.
      const hadNone = read !== undefined && sameFile(read, stats);
      if (isSafeKey(from) && !hadNone) {
        const fromMeta = `${resolveInside(this.#metaRoot, from)}.json`;
        unlinkIfThere(fromMeta);
        prune(path.dirname(fromMeta), this.#metaRoot);
      }
      return 'moved';
    });
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    // Walk from the deepest folder the prefix names, then filter by the whole prefix (it may end mid-name:
    // `plugins/abc` matches `plugins/abc-def/x`). A prefix no key can start with lists nothing.
    const folder = this.#folderOf(prefix);
    if (!folder) return;
    const { start, dir } = folder;
    const found: { key: string; raw?: Buffer }[] = [];
    const sidecars: { key: string }[] = [];
    await this.#io(prefix, 'list', async () => {
      // The walk follows no link below its folder, so when that folder is inside the store's real root,
      // so is every file it finds (`#listed` then asks each for its size by one lstat).
      if (await this.#outsideRealRoot(dir)) return;
      await walk(Buffer.from(dir), start, found);
      // Then the sidecars of that folder, by the same walk of the sidecar tree, so that a file without one
      // (an upload, mostly) is not looked for one: a batch lists 10,000 uploads. After the files: a file
      // found was renamed in after its sidecar was written, so its sidecar is found too.
      await walk(
        Buffer.from(path.join(this.#metaRoot, ...start.split('/').filter(Boolean))),
        start,
        sidecars,
      );
    });
    const described = new Set(sidecars.map(({ key }) => key.slice(0, -'.json'.length)));
    // S3 lists in UTF-8 byte order; so does this.
    found.sort((a, b) => compareUtf8(a.key, b.key));
    this.#listedKeys.clear();
    this.#readBare.clear();
    for (const { key, raw } of found) {
      if (!key.startsWith(prefix)) continue;
      if (raw) this.#rawPaths.set(key, raw);
      if (this.#listedKeys.size < LISTED_KEYS_KEPT) this.#listedKeys.set(key, undefined);
      const info = await this.#listed(key, described.has(key));
      if (info) yield info; // deleted since the walk
    }
  }

  /**
   * `head` for a listing: a file without a sidecar that describes it gets its ETag hashed when it is asked
   * for, from the bytes on disk then (a batch lists every upload in `incoming/` for its size and date, then
   * reads and hashes each one it takes: hashing each at the listing too doubled that); past
   * IDENTITY_ETAG_BYTES, the ETag of its identity as listed, as S3's listing gives the ETag of the object it
   * lists. Its sidecar is read only when the listing's walk of the sidecar tree found one (`hasSidecar`).
   */
  async #listed(key: string, hasSidecar: boolean): Promise<ObjectInfo | undefined> {
    return this.#io(key, 'stat', async () => {
      // A file the walk found inside the real root: one lstat, where a read's open, real-path check,
      // fstat and close are four calls (a batch lists 10,000 uploads, then reads each anyway). A file made
      // a link since the walk is listed as no file; reads check every file's real path themselves.
      const stats = lstatSync(this.#readPath(key), { bigint: true, throwIfNoEntry: false });
      if (!stats?.isFile()) return undefined;
      const sidecar = hasSidecar ? this.#readSidecarSync(key) : undefined;
      if (this.#raced(key, sidecar, stats)) throw RACED;
      if (!sidecar && this.#listedKeys.has(key)) this.#listedKeys.set(key, versionOf(stats));
      const etag = etagFor(sidecar, stats, () => this.#hashNow(key));
      return this.#info(key, stats, sidecar, etag);
    });
  }

  /** The ETag of the file a key names as it is now (quoted, empty when it is gone). */
  #hashNow(key: string): string {
    const fd = this.#openForReadSync(this.#readPath(key));
    if (fd === undefined) return '""';
    try {
      return etagFromSha256(sha256OfOpened(fd));
    } finally {
      closeSync(fd);
    }
  }

  /** Is `dir` missing, or is its real path outside the store's real root (a folder made a link)? */
  async #outsideRealRoot(dir: string): Promise<boolean> {
    let real: string;
    try {
      real = await realpath(dir);
    } catch (error) {
      if (isMissing(error) || errorCode(error) === 'ENOTDIR') return true;
      throw error;
    }
    // The folder itself may be the root: compared with its separator, as the root is.
    return !startsWith(Buffer.from(`${real}${path.sep}`), await this.#realRootNow());
  }

  /**
   * Whether the folder `dir` is inside the store's real root (its real path, through any link on its way),
   * by a synchronous call; false when it is missing. A check, then the call it guards: Node.js has no
   * `unlinkat` or `renameat` to make the two one.
   */
  #folderInsideSync(dir: string | Buffer): boolean {
    let real: Buffer;
    try {
      real = realpathSync.native(dir, { encoding: 'buffer' });
    } catch {
      return false;
    }
    return startsWith(Buffer.concat([real, SEPARATOR]), this.#realRootNowSync());
  }

  /** The store's real root, with a separator at its end: the bytes every real path inside it starts with. */
  async #realRootNow(): Promise<Buffer> {
    this.#realRoot ??= Buffer.from(`${await realpath(this.root)}${path.sep}`);
    return this.#realRoot;
  }

  /** `#realRootNow` by a synchronous call. */
  #realRootNowSync(): Buffer {
    this.#realRoot ??= Buffer.from(`${realpathSync(this.root)}${path.sep}`);
    return this.#realRoot;
  }

  /**
   * The deepest folder `prefix` names (`start`, its key; `dir`, its path), where a listing walks from and
   * then filters by the whole prefix; undefined when no key can start with it.
   */
  #folderOf(prefix: string): { readonly start: string; readonly dir: string } | undefined {
    const slash = prefix.lastIndexOf('/');
    const start = slash >= 0 ? prefix.slice(0, slash) : '';
    if (start !== '' && readableKeyProblem(start) !== undefined) return undefined;
    return { start, dir: path.join(this.root, ...start.split('/').filter(Boolean)) };
  }

  /**
   * The folders next below `prefix` by one directory read, without a read of any file's metadata. Links are
   * not folders here, as `list` does not follow them; nor are dot-names (the sidecar tree, temp folders).
   */
  async *listFolders(prefix: string): AsyncIterable<string> {
    const folder = this.#folderOf(prefix);
    if (!folder) return;
    const { start, dir } = folder;
    const entries = await this.#io(prefix, 'list', async () => {
      try {
        return await readdir(Buffer.from(dir), { withFileTypes: true, encoding: 'buffer' });
      } catch (error) {
        if (isMissing(error)) return [];
        throw error;
      }
    });
    const folders: string[] = [];
    for (const entry of entries) {
      if (entry.name[0] === 0x2e || !entry.isDirectory()) continue;
      // Named as `list` names the keys below it (a name that is not UTF-8 decoded with U+FFFD).
      const folder = `${start ? `${start}/` : ''}${lossyUtf8.decode(entry.name)}/`;
      if (folder.startsWith(prefix)) folders.push(folder);
    }
    // In UTF-8 byte order, as `list` and S3.
    folders.sort(compareUtf8);
    yield* folders;
  }

  /**
   * The file a key names for reading or deleting: a listed name that is not UTF-8 by its raw bytes, any
   * other by its text. Refuses keys no file of this store can have.
   */
  #readPath(key: string): string | Buffer {
    const raw = this.#rawPaths.get(key);
    if (raw) return raw;
    const problem = readableKeyProblem(key);
    if (problem)
      throw new StoreError(
        'STORE_INVALID_KEY',
        key,
        `unusable storage key ${JSON.stringify(key)}: ${problem}`,
      );
    return path.join(this.root, ...key.split('/'));
  }

  /**
   * A read handle on the regular file a key names, or undefined when there is none: missing, a folder, a
   * link as the last segment (O_NOFOLLOW), or a file whose real path leaves the store's real root (a link
   * to a folder elsewhere on the way).
   */
  async #openForRead(key: string): Promise<FileHandle | undefined> {
    const file = this.#readPath(key);
    const handle = await openForRead(file);
    if (!handle) return undefined;
    try {
      if (inside(await realPathOf(handle, file), await this.#realRootNow())) return handle;
    } catch (error) {
      await handle.close();
      throw error;
    }
    await handle.close();
    return undefined;
  }

  /**
   * `#openForRead` by synchronous calls: a descriptor, or undefined. A file `likelyThere` is opened without
   * asking first whether it is (a missing one then costs an exception rather than every one a call).
   */
  #openForReadSync(file: string | Buffer, likelyThere = false): number | undefined {
    if (!likelyThere && absent(file)) return undefined;
    const fd = openToReadSync(file);
    if (fd === undefined) return undefined;
    try {
      if (inside(realPathOfSync(fd, file), this.#realRootNowSync())) return fd;
    } catch (error) {
      closeSync(fd);
      throw error;
    }
    closeSync(fd);
    return undefined;
  }

  /**
   * `#openForReadSync` of a file the last listing found without a sidecar (`listed`, its stats then), with
   * its stats now. When it is that very file still (device, inode, size, change and modification times), it
   * is inside the store: the listing's walk reached it from the real root through no link, and it has not
   * even been renamed since, whatever the folders on its path have become. Then its real path is not read
   * again (a batch reads 10,000 uploads it has just listed, and the `/proc/self/fd` link of each cost about
   * 17 µs of this thread). Any other file is checked as `#openForReadSync` checks it.
   */
  #openListedSync(file: string | Buffer, listed: FileVersion): { fd: number; stats: BigStats } | undefined {
    const fd = openToReadSync(file);
    if (fd === undefined) return undefined;
    try {
      const stats = fstatSync(fd, { bigint: true });
      if (
        (stats.isFile() && sameVersion(listed, versionOf(stats))) ||
        inside(realPathOfSync(fd, file), this.#realRootNowSync())
      )
        return { fd, stats };
    } catch (error) {
      closeSync(fd);
      throw error;
    }
    closeSync(fd);
    return undefined;
  }

  #readSidecarSync(key: string): Sidecar | undefined {
    if (!isSafeKey(key)) return undefined; // never written: the store writes only safe keys
    const meta = `${resolveInside(this.#metaRoot, key)}.json`;
    // Most files have none: asked without an exception (a read that fails throws one).
    if (absent(meta)) return undefined;
    let text: string;
    try {
      text = readFileSync(meta, 'utf8');
    } catch (error) {
      if (isMissing(error) || errorCode(error) === 'EISDIR') return undefined;
      throw error;
    }
    return parseSidecar(text);
  }

  async #readSidecar(key: string): Promise<Sidecar | undefined> {
    if (!isSafeKey(key)) return undefined; // never written: the store writes only safe keys
    let text: string;
    try {
      text = await readFile(`${resolveInside(this.#metaRoot, key)}.json`, 'utf8');
    } catch (error) {
      if (isMissing(error) || errorCode(error) === 'EISDIR') return undefined;
      throw error;
    }
    return parseSidecar(text);
  }

  /**
   * ObjectInfo from a stat, a sidecar and the ETag: the sidecar's when it describes the file, else hashed
   * from the bytes (or past IDENTITY_ETAG_BYTES made from the stats) by the caller, or by `etag` when first
   * asked for.
   */
  #info(
    key: string,
    stats: BigStats,
    sidecar: Sidecar | undefined,
    etag: string | (() => string),
  ): ObjectInfo;
  #info(
    key: string,
    stats: BigStats,
    sidecar: Sidecar | undefined,
    etag: string | (() => string),
    body: Uint8Array,
  ): StoredObject;
  #info(
    key: string,
    stats: BigStats,
    sidecar: Sidecar | undefined,
    etag: string | (() => string),
    body?: Uint8Array,
  ): ObjectInfo {
    // Only a sidecar that describes this very file speaks for it: a file replaced since (by a put without a
    // sidecar, or by hand) is what its key implies, served as it is.
    const own = sidecar && describes(sidecar, stats) ? sidecar : undefined;
    const implied = own ?? impliedMetadata(key);
    // Assigned, not spread from conditional objects: every read and listed file makes one.
    const info: { -readonly [K in keyof StoredObject]?: StoredObject[K] } = {
      key,
      size: Number(stats.size),
      etag: typeof etag === 'string' ? etag : '',
      contentType: implied.contentType,
      cacheControl: implied.cacheControl,
    };
    if (own?.contentEncoding) info.contentEncoding = own.contentEncoding;
    if (own?.decodedSha256) info.decodedSha256 = own.decodedSha256;
    if (own?.sha256) info.sha256 = own.sha256;
    info.lastModified = new Date(Number(stats.mtimeMs));
    if (body) info.body = body;
    if (typeof etag !== 'string') {
      // Hashed from the bytes in hand when first asked for (a spread of the object asks): the pipeline
      // reads files for their bytes (a publish reads 256 catalog bins), and only the server uses the ETag.
      let hashed: string | undefined;
      Object.defineProperty(info, 'etag', {
        get: () => {
          hashed ??= etag();
          return hashed;
        },
        enumerable: true,
        configurable: true,
      });
    }
    return info as ObjectInfo;
  }

  /** Whether a read of `key` met a put (RACED), unless this is its last attempt (`#lastAttempts`). */
  #raced(key: string, sidecar: Sidecar | undefined, stats: BigStats): boolean {
    return racedPut(sidecar, stats) && !this.#lastAttempts.has(key);
  }

  async #io<T>(key: string, action: string, work: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const last = attempt === RACE_ATTEMPTS;
      if (last) this.#lastAttempts.add(key);
      try {
        return await work();
      } catch (error) {
        if (error !== RACED) throw this.#failure(key, action, error);
        await new Promise((resolve) => setTimeout(resolve, 1));
      } finally {
        if (last) this.#lastAttempts.delete(key);
      }
    }
  }

  #failure(key: string, action: string, error: unknown): StoreError {
    if (error instanceof StoreError) return error;
    // A name or operation this filesystem refuses for good is not worth retrying; anything else may be.
    const code = REFUSED_CODES.has(errorCode(error) ?? '') ? 'STORE_REFUSED' : 'STORE_IO';
    return new StoreError(code, key, `cannot ${action} ${JSON.stringify(key)}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/**
 * A put that needs no sidecar: a small body (BARE_BYTES), not encoded, with the metadata its key implies
 * (`impliedMetadata`, which a read without a sidecar gives), its ETag hashed from the bytes when read.
 */
function isBare(key: string, body: { readonly byteLength: number }, options: PutOptions): boolean {
  if (body.byteLength > BARE_BYTES || options.contentEncoding) return false;
  const implied = impliedMetadata(key);
  return options.contentType === implied.contentType && options.cacheControl === implied.cacheControl;
}

/**
 * Before a bare put: 'same' when the file holds these bytes and no sidecar says otherwise of it (nothing to
 * write), 'sidecar' when the file has a sidecar (to be removed once the body is replaced), else 'none'. The
 * writer thread (fs-writer.ts) decides the same way.
 */
function bareState(file: string, meta: string, body: Uint8Array): 'same' | 'sidecar' | 'none' {
  // A new file (most of an import's) is found missing without an exception, and its sidecar is not looked
  // for: a sidecar left without its body (a put that died between the two) describes no file this put
  // writes, so it is never read for it (`#info`), and the next put with a sidecar replaces it.
  if (absent(file)) return 'none';
  if (present(meta)) return 'sidecar';
  let fd: number;
  try {
    fd = openSync(file, READ_FLAGS);
  } catch {
    return 'none';
  }
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile() || stats.size !== body.byteLength) return 'none';
    return Buffer.from(body.buffer, body.byteOffset, body.byteLength).equals(readFileSync(fd))
      ? 'same'
      : 'none';
  } finally {
    closeSync(fd);
  }
}

function encodeSidecar(sidecar: Sidecar): Uint8Array {
  return new TextEncoder().encode(`${JSON.stringify(sidecar)}\n`);
}

/**
 * The file open at `fd`, `size` bytes by its fstat: what readFileSync reads of a regular file (up to the size
 * it finds, or less when it shrank), without the fstat it would make again: once per upload read, and once
 * more when it is moved.
 */
function readOpened(fd: number, size: bigint | number): Buffer {
  const expected = Number(size);
  const buffer = Buffer.allocUnsafe(expected);
  let filled = 0;
  for (let read = 1; filled < expected && read > 0; filled += read)
    read = readSync(fd, buffer, filled, expected - filled, null);
  return filled < expected ? buffer.subarray(0, filled) : buffer;
}

/** Whether `bytes` start with `prefix`. */
function startsWith(bytes: Buffer, prefix: Buffer): boolean {
  return bytes.length >= prefix.length && bytes.subarray(0, prefix.length).equals(prefix);
}

/** Whether a file's real path lies inside `root` (a real root with its separator at the end). */
function inside(real: Buffer | undefined, root: Buffer): boolean {
  return real !== undefined && real.length > root.length && startsWith(real, root);
}

/**
 * The stats of the regular file at `file` when `same` says it is the file `read` was (`sameVersion`: unwritten
 * since, its change time too; `sameFile` after a rename, which changes it), else undefined.
 */
function fileAsRead(
  file: string | Buffer,
  read: FileVersion,
  same: (a: FileVersion, b: FileVersion) => boolean,
): BigStats | undefined {
  try {
    const stats = lstatSync(file, { bigint: true, throwIfNoEntry: false });
    return stats?.isFile() && same(read, versionOf(stats)) ? stats : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The stats of a regular file moved to `temp` if it holds the bytes whose SHA-256 is `sha256`, else undefined.
 * Hashed in pieces: it may be an upload too large to have been read whole.
 */
function movedStats(temp: string, sha256: string): BigStats | undefined {
  let fd: number;
  try {
    fd = openSync(temp, READ_FLAGS);
  } catch {
    return undefined; // a link (O_NOFOLLOW), or a folder
  }
  try {
    const stats = fstatSync(fd, { bigint: true });
    if (!stats.isFile()) return undefined;
    return sha256OfOpened(fd) === sha256 ? stats : undefined;
  } finally {
    closeSync(fd);
  }
}

/** The folder a file's path names it in, for a path given as text or as raw bytes (a name not UTF-8). */
function folderOf(file: string | Buffer): string | Buffer {
  return typeof file === 'string'
    ? path.dirname(file)
    : file.subarray(0, Math.max(1, file.lastIndexOf(SEPARATOR)));
}

/** The SHA-256 (hex) of the file open at `fd`, from where it stands to its end, read in pieces. */
function sha256OfOpened(fd: number): string {
  const hash = createSha256();
  const buffer = Buffer.allocUnsafe(STREAM_CHUNK);
  for (let bytesRead = readSync(fd, buffer); bytesRead > 0; bytesRead = readSync(fd, buffer))
    hash.update(buffer.subarray(0, bytesRead));
  return hash.hex();
}

/**
 * Puts what a move took aside back at `source`, or beside it under a name of its own when another upload
 * has taken that name since (a hard link never replaces a file). Uploads keep their names' folder.
 */
function returnUpload(temp: string, source: string | Buffer): void {
  for (let attempt = 0; ; attempt++) {
    const target =
      attempt === 0
        ? source
        : Buffer.concat([Buffer.from(source), Buffer.from(`.${randomBytes(4).toString('hex')}`)]);
    try {
      linkSync(temp, target);
      break;
    } catch (error) {
      if (errorCode(error) !== 'EEXIST' || attempt >= WRITE_ATTEMPTS) throw error;
    }
  }
  rmSync(temp, { force: true });
}

/**
 * Lets go of `source` once the file it named is in place elsewhere (`placed`, its stats): taken aside first
 * (a rename: another upload put at `source` since is then aside, not lost), then unlinked when it is that
 * very file (device and inode), else put back. A run killed between the two leaves a second name of a file
 * that is in place, under a temp name.
 */
function letGo(source: string | Buffer, placed: BigStats, aside: string): void {
  try {
    renameSync(source, aside);
  } catch (error) {
    if (isMissing(error)) return; // deleted meanwhile: nothing to let go of
    throw error;
  }
  const now = lstatSync(aside, { bigint: true, throwIfNoEntry: false });
  if (now && now.dev === placed.dev && now.ino === placed.ino) unlinkSync(aside);
  else if (now) returnUpload(aside, source);
}

/**
 * True when nothing is at `file` (ENOENT), asked without an exception: a failed open, read or unlink throws
 * one, whose stack trace costs more than the call (an import of 10,000 plugins met about 40,000 missing
 * files here: sidecars, new plugins' documents). False on any other answer, so the call it saves is made
 * and decides as it always did.
 */
function absent(file: string | Buffer): boolean {
  try {
    return lstatSync(file, { throwIfNoEntry: false }) === undefined;
  } catch {
    return false;
  }
}

/** True when something is at `file`; false on any failure, without an exception. */
function present(file: string): boolean {
  try {
    return lstatSync(file, { throwIfNoEntry: false }) !== undefined;
  } catch {
    return false;
  }
}

/** Removes a file if it is there (a former sidecar, mostly not: looked for first, without an exception). */
function unlinkIfThere(file: string): void {
  if (absent(file)) return;
  try {
    unlinkSync(file);
  } catch (error) {
    if (!isMissing(error)) throw error;
  }
}

/** The path of a key the store writes: only safe keys (layout.ts), and never outside `base`. */
function resolveInside(base: string, key: string): string {
  const problem = keyProblem(key);
  if (problem)
    throw new StoreError('STORE_INVALID_KEY', key, `unsafe storage key ${JSON.stringify(key)}: ${problem}`);
  // A safe key's segments are plain names (keyProblem: no `.`, `..` or empty one, no backslash), so on POSIX
  // the key joined to the base is the path path.resolve would give, without its pass over every character
  // (an import of 10,000 plugins resolves 100,000 keys). The check below is the belt to those braces.
  const file =
    path.sep === '/' && !base.endsWith('/') ? `${base}/${key}` : path.resolve(base, ...key.split('/'));
  if (!file.startsWith(base + path.sep))
    throw new StoreError('STORE_INVALID_KEY', key, `storage key ${JSON.stringify(key)} leaves the store`);
  return file;
}

/** A read handle, or undefined when there is no regular file there (missing, a folder on the way, a link). */
async function openForRead(file: string | Buffer): Promise<FileHandle | undefined> {
  try {
    return await open(file, READ_FLAGS);
  } catch (error) {
    const code = errorCode(error);
    if (isMissing(error) || code === 'EISDIR' || code === 'ELOOP') return undefined;
    throw error;
  }
}

/**
 * The real path of an open file, as bytes: Linux names it in /proc (no race with a link swapped after the
 * open); elsewhere the path is resolved again, which a concurrent swap could fool but an operator's link
 * cannot.
 */
async function realPathOf(handle: FileHandle, file: string | Buffer): Promise<Buffer | undefined> {
  try {
    return await readlink(`/proc/self/fd/${handle.fd}`, { encoding: 'buffer' });
  } catch {
    return realpath(file, { encoding: 'buffer' }).catch(() => undefined);
  }
}

/** A descriptor to read `file` by, never through a link at its end; undefined when it is missing, a folder or a link. */
function openToReadSync(file: string | Buffer): number | undefined {
  try {
    return openSync(file, READ_FLAGS);
  } catch (error) {
    const code = errorCode(error);
    if (isMissing(error) || code === 'EISDIR' || code === 'ELOOP') return undefined;
    throw error;
  }
}

/** `realPathOf` by synchronous calls. */
function realPathOfSync(fd: number, file: string | Buffer): Buffer | undefined {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`, { encoding: 'buffer' });
  } catch {
    try {
      return realpathSync(file, { encoding: 'buffer' });
    } catch {
      return undefined;
    }
  }
}

/** `writeTemp` by synchronous calls, for a body of at most SYNC_BYTES; stats only when `describe`. */
function writeTempSync(
  file: string,
  body: Uint8Array,
  folders: FolderMemo,
  describe: boolean,
): { temp: string; stats?: BigStats } {
  const folder = path.dirname(file);
  for (let attempt = 1; ; attempt++) {
    const remembered = folders.has(folder);
    if (!remembered) makeFolderSync(folder, folders);
    const temp = tempNameFor(file);
    let fd: number;
    try {
      fd = openSync(temp, 'wx');
    } catch (error) {
      // A folder only remembered does not spend an attempt: the next makes it.
      if (errorCode(error) === 'ENOENT' && remembered) {
        folders.delete(folder);
        attempt--;
        continue;
      }
      if (errorCode(error) === 'ENOENT' && attempt < WRITE_ATTEMPTS) continue;
      throw error;
    }
    try {
      for (let offset = 0; offset < body.byteLength; )
        offset += writeSync(fd, body, offset, body.byteLength - offset);
      const stats = describe ? fstatSync(fd, { bigint: true }) : undefined;
      closeSync(fd);
      return { temp, stats };
    } catch (error) {
      try {
        closeSync(fd);
      } catch {}
      rmSync(temp, { force: true });
      throw error;
    }
  }
}

/** How far up `makeFolderSync` looks for a folder it remembers (a version's artifacts are 4 below plugins/). */
const KNOWN_DEPTH = 8;

function remember(folders: FolderMemo, folder: string): void {
  if (folders.size >= MADE_FOLDERS_LIMIT) folders.clear();
  folders.add(folder);
}

/**
 * Makes `folder` (and what is missing above it) and remembers each one. Below the nearest folder it
 * remembers, each is made by one `mkdir`, top down, none failing: a recursive mkdir tries the deepest first
 * and climbs on each ENOENT (then stats a folder that exists), and a new plugin's folders (its own, the
 * version's, `artifacts/`, `<os>-<arch>/`) cost about ten mkdir calls where four do (strace, a batch of 10
 * new plugins: 108 against 58). A remembered folder
 * pruned since (ENOENT) is forgotten, and the recursive mkdir makes what is missing. A name taken by a file
 * (EEXIST) fails the first write into it, as before.
 */
function makeFolderSync(folder: string, folders: FolderMemo): void {
  const missing: string[] = [];
  let known = folder;
  for (let depth = 0; depth < KNOWN_DEPTH && !folders.has(known); depth++) {
    missing.push(known);
    known = path.dirname(known);
  }
  if (folders.has(known)) {
    try {
      for (let i = missing.length - 1; i >= 0; i--) {
        const made = missing[i] as string;
        try {
          mkdirSync(made);
        } catch (error) {
          if (errorCode(error) !== 'EEXIST') throw error;
        }
        remember(folders, made);
      }
      return;
    } catch (error) {
      if (errorCode(error) !== 'ENOENT') throw error;
      folders.delete(known);
    }
  }
  makeFoldersSync(folder);
  for (const made of missing) remember(folders, made);
}

/**
 * Makes `folder` and those missing above it, top down; returns the topmost it made (undefined: none), as
 * `mkdirSync(folder, { recursive: true })` does. Not that call: on a filesystem that answers ENOENT for a
 * folder under one that exists (`/proc`), Node makes the parent (EEXIST, taken as done) and tries the folder
 * again, for ever, and a store whose root a user named there hung. Here a folder still ENOENT once its parent
 * is there fails with ENOENT, its message naming the folder (the caller's StoreError, STORE_IO, keeps it).
 * The same walk is written in the writer thread (fs-writer.ts, Node built-ins only), in `cli/inputs.ts`
 * (`makeFolder`) and in `client/disk/atomic.ts` (`makeFolders`): adapters import only the core.
 */
function makeFoldersSync(folder: string): string | undefined {
  try {
    mkdirSync(folder);
    return folder;
  } catch (error) {
    if (isFolderSync(folder)) return undefined;
    const parent = path.dirname(folder);
    if (errorCode(error) !== 'ENOENT' || parent === folder) throw error;
  }
  const first = makeFoldersSync(path.dirname(folder));
  try {
    mkdirSync(folder);
    return first ?? folder;
  } catch (error) {
    if (isFolderSync(folder)) return first;
    if (errorCode(error) !== 'ENOENT') throw error;
    throw Object.assign(
      new Error(
        `cannot create the folder ${folder}: ${path.dirname(folder)} exists, and its filesystem makes no folder there (as /proc): name a folder elsewhere`,
        { cause: error },
      ),
      { code: 'ENOENT' },
    );
  }
}

function isFolderSync(folder: string): boolean {
  return statSync(folder, { throwIfNoEntry: false })?.isDirectory() === true;
}

/**
 * The folders this store made or found, so a write into one skips its `mkdir` (a publish writes many
 * files into a few folders, and each call is a round trip through libuv's pool). A folder pruned since
 * (a delete, another process) fails the temp file's open with ENOENT, which forgets it and makes it again.
 */
type FolderMemo = Set<string>;

/** What `writeTemp` is to do beyond writing. */
interface TempOptions {
  /** The body's SHA-256 when the caller has it: not hashed again. */
  readonly knownSha256?: string;
  /** Stat and hash the written file (a body's sidecar needs both; a sidecar itself neither). */
  readonly describe: boolean;
  readonly folders: FolderMemo;
}

/**
 * Writes `body` to a new temp file beside `file` and returns it with its stats (taken after the last write,
 * so they are what the renamed file will show) and its SHA-256 (`knownSha256` when given: not hashed
 * again), when asked to `describe` it. Retries when a concurrent delete pruned the folder: that happens at
 * open, before a stream body has been read.
 */
async function writeTemp(
  file: string,
  body: Uint8Array | AsyncIterable<Uint8Array>,
  options: TempOptions,
): Promise<{ temp: string; stats?: BigStats; sha256: string }> {
  const folder = path.dirname(file);
  for (let attempt = 1; ; attempt++) {
    const remembered = options.folders.has(folder);
    if (!remembered) {
      // Synchronous, as makeFolderSync's calls are: a folder not remembered is rare after a store's first puts.
      makeFoldersSync(folder);
      if (options.folders.size >= MADE_FOLDERS_LIMIT) options.folders.clear();
      options.folders.add(folder);
    }
    const temp = tempNameFor(file);
    let handle: FileHandle;
    try {
      handle = await open(temp, 'wx');
    } catch (error) {
      // A folder only remembered does not spend an attempt: the next makes it.
      if (errorCode(error) === 'ENOENT' && remembered) {
        options.folders.delete(folder);
        attempt--;
        continue;
      }
      if (errorCode(error) === 'ENOENT' && attempt < WRITE_ATTEMPTS) continue;
      throw error;
    }
    try {
      const hash = options.describe && options.knownSha256 === undefined ? createSha256() : undefined;
      if (body instanceof Uint8Array) {
        hash?.update(body);
        // One write call, where writeFile would cut a large body into 512 KiB calls.
        await writeAll(handle, body);
      } else {
        for await (const chunk of body) {
          hash?.update(chunk);
          await writeAll(handle, chunk);
        }
      }
      const stats = options.describe ? await handle.stat({ bigint: true }) : undefined;
      await handle.close();
      return { temp, stats, sha256: options.knownSha256 ?? hash?.hex() ?? '' };
    } catch (error) {
      await handle.close().catch(() => undefined);
      await rm(temp, { force: true });
      throw error;
    }
  }
}

async function writeAll(handle: FileHandle, chunk: Uint8Array): Promise<void> {
  for (let offset = 0; offset < chunk.byteLength; ) {
    const { bytesWritten } = await handle.write(chunk, offset, chunk.byteLength - offset);
    offset += bytesWritten;
  }
}

/** SHA-256 of an open file, read positionally in chunks (never the whole file in memory). */
async function hashFile(handle: FileHandle): Promise<string> {
  const hash = createSha256();
  const buffer = Buffer.allocUnsafe(STREAM_CHUNK);
  for (let position = 0; ; ) {
    const { bytesRead } = await handle.read(buffer, 0, buffer.byteLength, position);
    if (bytesRead === 0) return hash.hex();
    hash.update(buffer.subarray(0, bytesRead));
    position += bytesRead;
  }
}

/** Write to a unique temp file beside the target, then rename over it: atomic on POSIX filesystems. */
async function writeAtomically(file: string, body: Uint8Array, folders: FolderMemo): Promise<void> {
  const { temp } = await writeTemp(file, body, { describe: false, folders });
  try {
    await rename(temp, file);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

/**
 * Removes folders left empty by a delete, from `dir` up to (not including) the top-level folders under
 * `stop`. Top-level folders stay: they are the registry's layout, and `incoming/` must survive being
 * emptied or the watcher on it (cli/local/watch.ts) goes blind.
 */
function prune(dir: string, stop: string): void {
  let current = dir;
  while (current.startsWith(stop + path.sep) && path.dirname(current) !== stop) {
    try {
      rmdirSync(current);
    } catch {
      return; // not empty (a concurrent put, or other keys), or already gone
    }
    current = path.dirname(current);
  }
}

/**
 * Collects the files under `dir` (raw bytes: a name need not be UTF-8) as keys under `keyPrefix`. A name that
 * is not UTF-8 is keyed by its text with U+FFFD for what does not decode, and carries its raw path.
 */
async function walk(dir: Buffer, keyPrefix: string, out: { key: string; raw?: Buffer }[]): Promise<void> {
  let entries: Dirent<Buffer>[];
  try {
    entries = await readdir(dir, { withFileTypes: true, encoding: 'buffer' });
  } catch (error) {
    if (isMissing(error)) return;
    throw error;
  }
  const separator = Buffer.from(path.sep);
  for (const entry of entries) {
    // `.meta`, temp files, the registry lock, an upload still being written: never a key.
    if (entry.name[0] === 0x2e) continue;
    let name: string;
    let raw = false;
    try {
      name = strictUtf8.decode(entry.name);
    } catch {
      name = lossyUtf8.decode(entry.name);
      raw = true;
    }
    const key = keyPrefix ? `${keyPrefix}/${name}` : name;
    const file = Buffer.concat([dir, separator, entry.name]);
    if (entry.isDirectory()) await walk(file, key, out);
    else if (entry.isFile()) out.push(raw || keyPrefix.includes('\uFFFD') ? { key, raw: file } : { key });
  }
}
