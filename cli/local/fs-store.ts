/**
 * The filesystem Store: the embedded default. Keys are files under `root`.
 *
 * Writes replace atomically: the body goes to a unique temp file beside the target and is renamed over it,
 * so a reader (or the HTTP server) sees the old bytes or the new ones, never a torn file. Content type,
 * cache control and the ETag live in a sidecar tree, `root/.meta/<key>.json`, written before the body is
 * renamed into place: a reader never finds a body without its metadata.
 *
 * The ETag is a strong validator, the quoted first 32 hex digits of the body's SHA-256 (the same tag the
 * in-memory store gives), computed once at put time so reads never hash. The sidecar also records the
 * identity of the file it describes (size, nanosecond mtime, inode; a rename keeps all three). A sidecar
 * that does not describe the body on disk (a crash between the two renames, two concurrent puts of one key,
 * a file copied in by hand) is ignored for the ETag, which is then recomputed from the bytes actually read.
 *
 * @example
 * const site = new FsStore('registry/public');
 * await site.put('index.json', bytes, { contentType: 'application/json', cacheControl: CACHE_MUTABLE });
 * const object = await site.get('index.json'); // { body, etag: '"3f2a…"', contentType, … }
 */
import { Buffer } from 'node:buffer';
import { createHash, randomBytes } from 'node:crypto';
import { constants, type Dirent } from 'node:fs';
import { type FileHandle, mkdir, open, readdir, readFile, rename, rm, rmdir } from 'node:fs/promises';
import path from 'node:path';
import { StoreError } from '../../index-builder/errors.ts';
import {
  contentTypeFor,
  isSafeKey,
  type ObjectInfo,
  type PutOptions,
  type Store,
  type StoredObject,
  type StoredStream,
} from '../../index-builder/store.ts';

/** The sidecar tree; its name starts with a dot, which no safe key segment can. */
const META_DIR = '.meta';
/** Metadata of a file that was put there by hand (no sidecar). */
const FALLBACK_CACHE_CONTROL = 'no-cache';
/** A leaf symlink is never followed: `list` skips links, so `get` must not find what `list` hides. */
const READ_FLAGS = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0);
/** Attempts at a write whose folder a concurrent delete pruned in between. */
const WRITE_ATTEMPTS = 3;
/** Read size for streams and hashing. */
const STREAM_CHUNK = 1024 * 1024;

interface FileIdentity {
  readonly size: number;
  /** Nanosecond modification time, as a decimal string (JSON has no bigint). */
  readonly mtimeNs: string;
  readonly ino: string;
}

interface Sidecar extends FileIdentity {
  readonly contentType: string;
  readonly cacheControl: string;
  readonly etag: string;
}

interface BigStats {
  readonly size: bigint;
  readonly ino: bigint;
  readonly mtimeNs: bigint;
  readonly mtimeMs: bigint;
  isFile(): boolean;
}

/** The strong ETag of some bytes: quoted, first 32 hex digits of SHA-256. */
function etagOf(body: Uint8Array): string {
  return etagFromSha256(createHash('sha256').update(body).digest('hex'));
}

function etagFromSha256(hex: string): string {
  return `"${hex.slice(0, 32)}"`;
}

function identityOf(stats: BigStats): FileIdentity {
  return { size: Number(stats.size), mtimeNs: stats.mtimeNs.toString(), ino: stats.ino.toString() };
}

function describes(sidecar: Sidecar, stats: BigStats): boolean {
  const file = identityOf(stats);
  return sidecar.size === file.size && sidecar.mtimeNs === file.mtimeNs && sidecar.ino === file.ino;
}

function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
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
  return value as Sidecar;
}

export class FsStore implements Store {
  readonly root: string;
  readonly #metaRoot: string;

  constructor(root: string) {
    this.root = path.resolve(root);
    this.#metaRoot = path.join(this.root, META_DIR);
  }

  async get(key: string): Promise<StoredObject | undefined> {
    const file = this.#file(key);
    return this.#io(key, 'read', async () => {
      // One handle for stat and read, so size, date and ETag all belong to exactly the bytes returned.
      const handle = await openForRead(file);
      if (!handle) return undefined;
      let stats: BigStats;
      let body: Uint8Array;
      try {
        stats = await handle.stat({ bigint: true });
        if (!stats.isFile()) return undefined;
        body = new Uint8Array(await handle.readFile());
      } finally {
        await handle.close();
      }
      const sidecar = await this.#readSidecar(key);
      const etag = sidecar && describes(sidecar, stats) ? sidecar.etag : etagOf(body);
      return { ...this.#info(key, stats, sidecar, etag), body };
    });
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const file = this.#file(key);
    return this.#io(key, 'stat', async () => {
      const handle = await openForRead(file);
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
   * describes it costs a read and a hash, in chunks.
   */
  async #describe(key: string, handle: FileHandle): Promise<ObjectInfo | undefined> {
    const stats = await handle.stat({ bigint: true });
    if (!stats.isFile()) return undefined;
    const sidecar = await this.#readSidecar(key);
    const etag = sidecar && describes(sidecar, stats) ? sidecar.etag : etagFromSha256(await hashFile(handle));
    return this.#info(key, stats, sidecar, etag);
  }

  async put(key: string, body: Uint8Array, options: PutOptions): Promise<void> {
    await this.#write(key, body, options);
  }

  /** Streams the file from disk; the handle closes when the body is read to its end or abandoned. */
  async getStream(key: string): Promise<StoredStream | undefined> {
    const file = this.#file(key);
    return this.#io(key, 'read', async () => {
      const handle = await openForRead(file);
      if (!handle) return undefined;
      try {
        const info = await this.#describe(key, handle);
        if (!info) {
          await handle.close();
          return undefined;
        }
        // Positional reads from 0: the same bytes the stat and the ETag describe, whatever the hash read.
        const body = handle.createReadStream({ start: 0, highWaterMark: STREAM_CHUNK });
        return { ...info, body, cancel: () => body.destroy() };
      } catch (error) {
        await handle.close();
        throw error;
      }
    });
  }

  async putStream(key: string, body: AsyncIterable<Uint8Array>, options: PutOptions): Promise<void> {
    await this.#write(key, body, options);
  }

  async #write(
    key: string,
    body: Uint8Array | AsyncIterable<Uint8Array>,
    options: PutOptions,
  ): Promise<void> {
    const file = this.#file(key);
    const meta = this.#metaFile(key);
    await this.#io(key, 'write', async () => {
      // A digest the caller already has is taken as given: the pipeline hashes every document it signs.
      const { temp, stats, sha256 } = await writeTemp(file, body, options.sha256);
      try {
        const sidecar: Sidecar = {
          contentType: options.contentType,
          cacheControl: options.cacheControl,
          etag: etagFromSha256(sha256),
          ...identityOf(stats),
        };
        // Metadata first: once the body is visible, its sidecar already is.
        await writeAtomically(meta, new TextEncoder().encode(`${JSON.stringify(sidecar)}\n`));
        await rename(temp, file);
      } catch (error) {
        await rm(temp, { force: true });
        throw error;
      }
    });
  }

  async delete(key: string): Promise<void> {
    const file = this.#file(key);
    const meta = this.#metaFile(key);
    await this.#io(key, 'delete', async () => {
      // Body first, so there is never a body without its sidecar.
      await rm(file, { force: true });
      await rm(meta, { force: true });
      await prune(path.dirname(file), this.root);
      await prune(path.dirname(meta), this.#metaRoot);
    });
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    // Walk from the deepest folder the prefix names, then filter by the whole prefix (it may end mid-name:
    // `plugins/abc` matches `plugins/abc-def/x`). A prefix no key can start with lists nothing.
    const slash = prefix.lastIndexOf('/');
    const start = slash >= 0 ? prefix.slice(0, slash) : '';
    if (start !== '' && !isSafeKey(start)) return;
    const keys: string[] = [];
    await this.#io(prefix, 'list', () =>
      walk(path.join(this.root, ...start.split('/').filter(Boolean)), start, keys),
    );
    // Keys are ASCII (isSafeKey), so code-unit order is byte order, the order S3 lists in.
    keys.sort();
    for (const key of keys) {
      if (!key.startsWith(prefix)) continue;
      const info = await this.head(key);
      if (info) yield info; // deleted since the walk
    }
  }

  /** The file of a key; refuses anything that is not a plain relative key inside the root. */
  #file(key: string): string {
    return resolveInside(this.root, key);
  }

  #metaFile(key: string): string {
    return `${resolveInside(this.#metaRoot, key)}.json`;
  }

  async #readSidecar(key: string): Promise<Sidecar | undefined> {
    let text: string;
    try {
      text = await readFile(this.#metaFile(key), 'utf8');
    } catch (error) {
      if (isMissing(error) || errorCode(error) === 'EISDIR') return undefined;
      throw error;
    }
    return parseSidecar(text);
  }

  /**
   * ObjectInfo from a stat, a sidecar and the ETag: the sidecar's when it describes the file, else hashed
   * from the bytes by the caller.
   */
  #info(key: string, stats: BigStats, sidecar: Sidecar | undefined, etag: string): ObjectInfo {
    return {
      key,
      size: Number(stats.size),
      etag,
      contentType: sidecar?.contentType ?? contentTypeFor(key),
      cacheControl: sidecar?.cacheControl ?? FALLBACK_CACHE_CONTROL,
      lastModified: new Date(Number(stats.mtimeMs)),
    };
  }

  async #io<T>(key: string, action: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (error instanceof StoreError) throw error;
      throw new StoreError(
        'STORE_IO',
        key,
        `cannot ${action} ${JSON.stringify(key)}: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
  }
}

function resolveInside(base: string, key: string): string {
  if (!isSafeKey(key))
    throw new StoreError('STORE_INVALID_KEY', key, `unsafe storage key ${JSON.stringify(key)}`);
  // isSafeKey already rules out `..`, absolute paths and backslashes; this is the belt to those braces.
  const file = path.resolve(base, ...key.split('/'));
  if (!file.startsWith(base + path.sep))
    throw new StoreError('STORE_INVALID_KEY', key, `storage key ${JSON.stringify(key)} leaves the store`);
  return file;
}

/** A read handle, or undefined when there is no regular file there (missing, a folder on the way, a link). */
async function openForRead(file: string): Promise<FileHandle | undefined> {
  try {
    return await open(file, READ_FLAGS);
  } catch (error) {
    const code = errorCode(error);
    if (isMissing(error) || code === 'EISDIR' || code === 'ELOOP') return undefined;
    throw error;
  }
}

function tempNameFor(file: string): string {
  const name = `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  return path.join(path.dirname(file), name);
}

/**
 * Writes `body` to a new temp file beside `file` and returns it with its stats (taken after the last write,
 * so they are what the renamed file will show) and its SHA-256 (`knownSha256` when given: not hashed
 * again). Retries when a concurrent delete pruned the folder: that happens at open, before a stream body
 * has been read.
 */
async function writeTemp(
  file: string,
  body: Uint8Array | AsyncIterable<Uint8Array>,
  knownSha256?: string,
): Promise<{ temp: string; stats: BigStats; sha256: string }> {
  for (let attempt = 1; ; attempt++) {
    await mkdir(path.dirname(file), { recursive: true });
    const temp = tempNameFor(file);
    let handle: FileHandle;
    try {
      handle = await open(temp, 'wx');
    } catch (error) {
      if (errorCode(error) === 'ENOENT' && attempt < WRITE_ATTEMPTS) continue;
      throw error;
    }
    try {
      const hash = knownSha256 === undefined ? createHash('sha256') : undefined;
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
      const stats = await handle.stat({ bigint: true });
      await handle.close();
      return { temp, stats, sha256: knownSha256 ?? hash?.digest('hex') ?? '' };
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
  const hash = createHash('sha256');
  const buffer = Buffer.allocUnsafe(STREAM_CHUNK);
  for (let position = 0; ; ) {
    const { bytesRead } = await handle.read(buffer, 0, buffer.byteLength, position);
    if (bytesRead === 0) return hash.digest('hex');
    hash.update(buffer.subarray(0, bytesRead));
    position += bytesRead;
  }
}

/** Write to a unique temp file beside the target, then rename over it: atomic on POSIX filesystems. */
async function writeAtomically(file: string, body: Uint8Array): Promise<void> {
  const { temp } = await writeTemp(file, body);
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
async function prune(dir: string, stop: string): Promise<void> {
  let current = dir;
  while (current.startsWith(stop + path.sep) && path.dirname(current) !== stop) {
    try {
      await rmdir(current);
    } catch {
      return; // not empty (a concurrent put, or other keys), or already gone
    }
    current = path.dirname(current);
  }
}

async function walk(dir: string, keyPrefix: string, out: string[]): Promise<void> {
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    if (isMissing(error)) return;
    throw error;
  }
  for (const entry of entries) {
    // `.meta`, temp files, the registry lock: nothing whose name starts with a dot is a key.
    if (entry.name.startsWith('.')) continue;
    const key = keyPrefix ? `${keyPrefix}/${entry.name}` : entry.name;
    if (!isSafeKey(key)) continue; // a file dropped in by hand under a name no key can have
    if (entry.isDirectory()) await walk(path.join(dir, entry.name), key, out);
    else if (entry.isFile()) out.push(key);
  }
}
