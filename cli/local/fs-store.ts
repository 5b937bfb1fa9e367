/**
 * The filesystem Store: the embedded default. Keys are files under `root`; writes replace atomically (a
 * temp file in the same folder, then rename), so a reader or the HTTP server sees the old bytes or the new,
 * never a torn file. Content type and cache control live in a sidecar tree `root/.meta/`, written before the
 * body is renamed into place. The ETag is made from the size and the nanosecond modification time, which
 * every atomic replace changes: no hashing of multi-megabyte documents on every read.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { StoreError } from '../../index-builder/errors.ts';
import {
  contentTypeFor,
  isSafeKey,
  type ObjectInfo,
  type PutOptions,
  type Store,
  type StoredObject,
} from '../../index-builder/store.ts';

const META_DIR = '.meta';

interface Sidecar {
  readonly contentType: string;
  readonly cacheControl: string;
}

const etagOf = (size: bigint, mtimeNs: bigint): string => `"${size.toString(16)}-${mtimeNs.toString(16)}"`;

function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

export class FsStore implements Store {
  readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  /** The file of a key; refuses anything that is not a plain relative key inside the root. */
  #file(key: string, base = this.root): string {
    if (!isSafeKey(key))
      throw new StoreError('STORE_INVALID_KEY', key, `unsafe storage key ${JSON.stringify(key)}`);
    const file = path.resolve(base, ...key.split('/'));
    if (!file.startsWith(base + path.sep))
      throw new StoreError('STORE_INVALID_KEY', key, `storage key ${JSON.stringify(key)} leaves the store`);
    return file;
  }

  #meta(key: string): string {
    return `${this.#file(key, path.join(this.root, META_DIR))}.json`;
  }

  async #io<T>(key: string, action: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (error instanceof StoreError) throw error;
      throw new StoreError('STORE_IO', key, `cannot ${action} ${key}: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  /** The stored metadata, or what the key implies when there is none (a file put there by hand). */
  async #sidecar(key: string): Promise<Sidecar> {
    try {
      return JSON.parse(await readFile(this.#meta(key), 'utf8')) as Sidecar;
    } catch (error) {
      if (!isMissing(error) && !(error instanceof SyntaxError)) throw error;
      return { contentType: contentTypeFor(key), cacheControl: 'no-cache' };
    }
  }

  async get(key: string): Promise<StoredObject | undefined> {
    const file = this.#file(key);
    return this.#io(key, 'read', async () => {
      let body: Uint8Array;
      let info: Awaited<ReturnType<typeof stat>> & { mtimeNs: bigint; size: bigint };
      try {
        // Open once and stat the handle, so the ETag belongs to exactly the bytes read.
        const handle = await open(file, 'r');
        try {
          info = (await handle.stat({ bigint: true })) as typeof info;
          if (!info.isFile()) return undefined;
          body = new Uint8Array(await handle.readFile());
        } finally {
          await handle.close();
        }
      } catch (error) {
        if (isMissing(error) || (error as NodeJS.ErrnoException).code === 'EISDIR') return undefined;
        throw error;
      }
      const meta = await this.#sidecar(key);
      return {
        key,
        body,
        size: body.byteLength,
        etag: etagOf(info.size, info.mtimeNs),
        contentType: meta.contentType,
        cacheControl: meta.cacheControl,
        lastModified: new Date(Number(info.mtimeMs)),
      };
    });
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const file = this.#file(key);
    return this.#io(key, 'stat', async () => {
      let info: Awaited<ReturnType<typeof stat>> & { mtimeNs: bigint; size: bigint };
      try {
        info = (await stat(file, { bigint: true })) as typeof info;
      } catch (error) {
        if (isMissing(error)) return undefined;
        throw error;
      }
      if (!info.isFile()) return undefined;
      const { contentType, cacheControl } = await this.#sidecar(key);
      return {
        key,
        size: Number(info.size),
        etag: etagOf(info.size, info.mtimeNs),
        contentType,
        cacheControl,
        lastModified: new Date(Number(info.mtimeMs)),
      };
    });
  }

  async put(key: string, body: Uint8Array, options: PutOptions): Promise<void> {
    const file = this.#file(key);
    const meta = this.#meta(key);
    await this.#io(key, 'write', async () => {
      const sidecar: Sidecar = { contentType: options.contentType, cacheControl: options.cacheControl };
      await writeAtomically(meta, new TextEncoder().encode(JSON.stringify(sidecar)));
      await writeAtomically(file, body);
    });
  }

  async delete(key: string): Promise<void> {
    const file = this.#file(key);
    const meta = this.#meta(key);
    await this.#io(key, 'delete', async () => {
      await rm(file, { force: true });
      await rm(meta, { force: true });
      await this.#prune(path.dirname(file), this.root);
      await this.#prune(path.dirname(meta), path.join(this.root, META_DIR));
    });
  }

  /**
   * Removes folders left empty by a delete, up to (not including) `stop`. Top-level folders stay: they
   * are the registry's layout (incoming/ must survive being emptied, or a watcher on it goes blind).
   */
  async #prune(dir: string, stop: string): Promise<void> {
    let current = dir;
    while (current.startsWith(stop + path.sep) && path.dirname(current) !== stop) {
      try {
        await rmdir(current);
      } catch {
        return; // not empty, or gone
      }
      current = path.dirname(current);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    // Start at the deepest folder the prefix names, then filter by the full prefix (it may end mid-name).
    const slash = prefix.lastIndexOf('/');
    const start = slash >= 0 ? prefix.slice(0, slash) : '';
    if (start !== '' && !isSafeKey(start)) return;
    const keys: string[] = [];
    await walk(path.join(this.root, ...start.split('/').filter(Boolean)), start, keys);
    keys.sort();
    for (const key of keys) {
      if (!key.startsWith(prefix)) continue;
      const info = await this.head(key);
      if (info) yield info;
    }
  }
}

async function walk(dir: string, keyPrefix: string, out: string[]): Promise<void> {
  let entries: import('node:fs').Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    if (isMissing(error)) return;
    throw error;
  }
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue; // sidecars, temp files, the lock
    const key = keyPrefix ? `${keyPrefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) await walk(path.join(dir, entry.name), key, out);
    else if (entry.isFile()) out.push(key);
  }
}

/** Write to a unique temp file beside the target, then rename over it: atomic on POSIX filesystems. */
async function writeAtomically(file: string, body: Uint8Array): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const temp = path.join(
    path.dirname(file),
    `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`,
  );
  try {
    await writeFile(temp, body);
    await rename(temp, file);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}
