/**
 * The client's cache, deletable at any time: documents and artifacts addressed by their sha256 (verified
 * again on every read, as pacote reads cacache by integrity), and each registry's last verified snapshot
 * with its signature and ETag, for the conditional request that makes a warm `registry update` one 304.
 *
 *   <cache>/docs/sha256/<ab>/<rest>            documents fetched as ?v=<sha256>; <rest>.<fingerprint>.asc for a
 *                                              manifest's signature by that key
 *   <cache>/blobs/sha256/<ab>/<rest>           artifacts, renamed into place only once their digest and size match
 *   <cache>/registries/<host>-<hash16>/        snapshot.json: the snapshot, its signature, its ETag (cargo's short_name);
 *                                              served-from.json: the URLs its requests were led through
 *   <cache>/tmp/                               same filesystem as blobs/, so rename(2) is atomic; a killed
 *                                              download's temp file removed by the next download
 *
 * Nothing here is trusted for being here: a document whose bytes no longer hash to their name is deleted
 * and fetched again; an artifact is rehashed as it is copied into place (and, damaged, downloaded again
 * and renamed over it, outside the install folder's hold: never deleted first, as another install may have
 * put a good copy there since); a kept manifest signature and the snapshot are
 * verified again before use. No lock guards a blob: `remove --clean` and `clean -c` may delete one an install
 * found here and has yet to place, which that install then downloads again (install.ts `placeHolding`).
 */
import { createReadStream } from 'node:fs';
import { open, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createSha256, sha256Hex } from '../../index-builder/digest.ts';
import { TrustError } from '../../index-builder/errors.ts';
import { ClientError } from '../errors.ts';
import {
  makeFolders,
  readIfExists,
  readTextIfExists,
  removeStaleTempsIn,
  tempPathFor,
  type UnsafeFolder,
  unsafeFolderOnPath,
  unsafeFolderWithin,
  vouchHint,
  writeFileAtomic,
} from './atomic.ts';

/**
 * The most hops kept with a cached snapshot (`CachedSnapshot.servedFrom`): two requests' worth, each at most
 * six (a mirror or the URL asked, the fetcher's five redirects and the URL answering, less the URL it is
 * kept under), so the hops of the request before all stay beside this one's. At 8, a request led through
 * five redirects dropped some of those of the request before: a run killed between writing the hops and
 * the snapshot (`putSnapshot`) left the snapshot before without hops it came through (marks as of them read
 * no more), and one reached through such a chain, then another, kept the first in part. A longer list (a
 * hand edit) is read to here.
 */
export const SERVED_FROM_LIMIT = 12;

/** The last snapshot a registry served and the client verified. */
export interface CachedSnapshot {
  readonly bytes: Uint8Array;
  readonly signature: string;
  readonly etag?: string;
  /**
   * Each URL the requests for it were led through, other than the one it is kept under (every hop of a
   * redirect, or the mirror that answered): the last request's in order, then those kept before, at most
   * `SERVED_FROM_LIMIT`: what later checks that ask nothing (offline, a frozen install, `verify`) read marks
   * as of too (`ReachedAt`); the last alone hid a mark kept as of a URL that redirected on, the last
   * request's alone one kept as of a URL an earlier request went through. Written by no one but the client,
   * never signed: it only ever adds marks to read, never tells a record's registry, floors or log heads.
   */
  readonly servedFrom?: readonly string[];
  /**
   * Cached by a client that kept the hops in snapshot.json (no `SERVED_FROM_FILE` beside it): the next
   * online check writes it again, or each frozen install and `verify` went on parsing it for them.
   */
  readonly servedFromInSnapshot?: true;
}

export interface BlobWrite {
  readonly sha256: string;
  readonly size: number;
  /** Where the bytes came from, for the refusal message. */
  readonly url: string;
  readonly body: AsyncIterable<Uint8Array>;
  readonly onProgress?: (received: number) => void;
}

/** The last verified snapshot of a registry, in its folder. */
const SNAPSHOT_FILE = 'snapshot.json';

/**
 * The hops kept with it (`CachedSnapshot.servedFrom`), beside it: `{"served_from": [...]}`, an empty list
 * where none. A file of its own, as a frozen install and `verify` read the hops alone (`servedFrom`): kept
 * in snapshot.json, each read and parsed the whole snapshot for them (16 ms at 10,000 plugins). Missing,
 * the snapshot was cached by a client that kept them in snapshot.json (`served_from`), read from there.
 */
const SERVED_FROM_FILE = 'served-from.json';

/**
 * `served_from` as kept (`CachedSnapshot.servedFrom`): a list of URLs, or the single URL a client of earlier
 * today wrote (never released, read as a list of one). An entry not a URL (a hand edit) is passed over, as if
 * not kept: it only ever adds marks to read, and the snapshot itself is verified on use.
 */
function servedFromKept(kept: unknown): readonly string[] {
  const listed = typeof kept === 'string' ? [kept] : Array.isArray(kept) ? (kept as unknown[]) : [];
  return listed
    .filter((url): url is string => typeof url === 'string' && URL.canParse(url))
    .slice(0, SERVED_FROM_LIMIT);
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

/**
 * A digest's place below `docs/sha256/` or `blobs/sha256/`. Only a digest has one: every path the cache
 * makes goes through here, so no text a caller passes for a digest (an installed.json written by hand, whose
 * `../../../notes.txt` had `remove --clean` delete that file) can lead out of the cache.
 * @throws TrustError DOCUMENT_MALFORMED for anything but 64 lower-case hex digits.
 */
function shard(sha256: string): string {
  if (!SHA256_HEX.test(sha256))
    throw new TrustError(
      'DOCUMENT_MALFORMED',
      `${JSON.stringify(sha256)} is not a sha256 digest (64 lower-case hex digits): nothing in the cache is named by it`,
    );
  return join(sha256.slice(0, 2), sha256.slice(2));
}

export class ContentCache {
  readonly root: string;

  constructor(root: string) {
    this.root = root;
  }

  /**
   * Refuses to write or remove `file` where the folder holding it, or one above it, is one another user may
   * change (`unsafeFolderOnPath`: owned by another user, writable by others without the sticky bit, a link
   * another user owns): they could swap a folder for a link between this check and the write, and the
   * blob, document or snapshot went, or `remove --clean` deleted, where the link led. Node.js has no
   * openat(2) to write relative to a folder already opened, so the folders must be ones no one else changes.
   * @throws ClientError CACHE_PATH_UNSAFE naming the folder and why.
   */
  async #refuseUnsafeFolder(file: string): Promise<void> {
    const unsafe = await unsafeFolderOnPath(dirname(file));
    if (unsafe) throw this.#unsafeFolderError(unsafe, file);
  }

  /** CACHE_PATH_UNSAFE for `unsafe`, a folder on the way to or inside `target`, the file or folder at issue. */
  #unsafeFolderError(unsafe: UnsafeFolder, target: string): ClientError {
    return new ClientError(
      'CACHE_PATH_UNSAFE',
      `${unsafe.at} is ${unsafe.why}: another user could swap a folder under it for a symbolic link while ` +
        `plugindex writes or removes ${target}, so nothing is. Make it yours and writable by you alone (chown, ` +
        `chmod go-w), or set PLUGINDEX_CACHE_HOME to a folder that is; or, ${vouchHint(unsafe.at)}`,
    );
  }

  #docPath(sha256: string): string {
    return join(this.root, 'docs', 'sha256', shard(sha256));
  }

  blobPath(sha256: string): string {
    return join(this.root, 'blobs', 'sha256', shard(sha256));
  }

  /** Bytes held under this digest, rehashed; a damaged entry is dropped (undefined: fetch it again). */
  async document(sha256: string): Promise<Uint8Array | undefined> {
    const path = this.#docPath(sha256);
    const bytes = await readIfExists(path);
    if (bytes === undefined) return undefined;
    if (sha256Hex(bytes) === sha256) return bytes;
    await this.#refuseUnsafeFolder(path);
    await rm(path, { force: true });
    return undefined;
  }

  /** Keeps bytes the caller has verified against `sha256`. */
  async putDocument(sha256: string, bytes: Uint8Array): Promise<void> {
    await this.#placeFile(this.#docPath(sha256), bytes);
  }

  /**
   * Where a manifest's signature by one key is kept: beside the manifest, named by the key too. Two
   * registries that publish one bundle (a registry and its mirror) render the same manifest bytes, each
   * signed by its own key: kept by digest alone, one's signature was placed for the other's install.
   * undefined for a fingerprint that is not hex (nothing is kept under a name it could not safely make).
   */
  #signaturePath(sha256: string, fingerprint: string): string | undefined {
    return /^[0-9A-Fa-f]+$/.test(fingerprint)
      ? `${this.#docPath(sha256)}.${fingerprint.toUpperCase()}.asc`
      : undefined;
  }

  /** A manifest's detached signature by the key `fingerprint`, kept beside it (verified again on use). */
  async signature(sha256: string, fingerprint: string): Promise<string | undefined> {
    const path = this.#signaturePath(sha256, fingerprint);
    return path === undefined ? undefined : readTextIfExists(path);
  }

  async putSignature(sha256: string, fingerprint: string, armored: string): Promise<void> {
    const path = this.#signaturePath(sha256, fingerprint);
    if (path !== undefined) await this.#placeFile(path, armored);
  }

  /**
   * Writes `path` by temp file and rename, its folders checked before they are made and once made (another
   * user may have made one first under a sticky folder such as /tmp).
   */
  async #placeFile(path: string, data: string | Uint8Array): Promise<void> {
    await this.#refuseUnsafeFolder(path);
    await makeFolders(dirname(path));
    await this.#refuseUnsafeFolder(path);
    await writeFileAtomic(path, data);
  }

  /** True when a blob of this digest is held with the right size (its bytes are rehashed when installed). */
  async hasBlob(sha256: string, size: number): Promise<boolean> {
    const info = await stat(this.blobPath(sha256)).catch(() => undefined);
    return info?.isFile() === true && info.size === size;
  }

  /**
   * Streams an artifact into tmp/, hashing as it goes and stopping past its signed size, and renames it into
   * place only when size and sha256 match. Returns the blob's path.
   * @throws TrustError ARTIFACT_MISMATCH naming the URL, the expected and the received digest or size.
   */
  async writeBlob(write: BlobWrite): Promise<string> {
    const target = this.blobPath(write.sha256);
    const tmpDir = join(this.root, 'tmp');
    await this.#refuseUnsafeFolder(join(tmpDir, write.sha256));
    await makeFolders(tmpDir);
    await this.#refuseUnsafeFolder(join(tmpDir, write.sha256));
    // What downloads killed part way left (nothing else removes it), before this one adds its own.
    await removeStaleTempsIn(tmpDir);
    const temp = tempPathFor(join(tmpDir, write.sha256));
    // Created (O_EXCL), never opened through a link already at that name.
    const handle = await open(temp, 'wx', 0o644);
    const hash = createSha256();
    let size = 0;
    try {
      for await (const chunk of write.body) {
        size += chunk.byteLength;
        if (size > write.size)
          throw new TrustError(
            'ARTIFACT_MISMATCH',
            `${write.url}: more than the ${write.size} bytes its signed plugin document gives`,
          );
        hash.update(chunk);
        await handle.write(chunk);
        write.onProgress?.(size);
      }
      await handle.close();
      const actual = hash.hex();
      if (size !== write.size)
        throw new TrustError(
          'ARTIFACT_MISMATCH',
          `${write.url}: ${size} bytes arrived, its signed plugin document gives ${write.size}`,
        );
      if (actual !== write.sha256)
        throw new TrustError(
          'ARTIFACT_MISMATCH',
          `${write.url}: sha256 ${actual} arrived, its signed plugin document gives ${write.sha256} (${size} bytes; a proxy or mirror that rewrites downloads causes this too)`,
        );
      await this.#refuseUnsafeFolder(target);
      await makeFolders(dirname(target));
      await this.#refuseUnsafeFolder(target);
      await rename(temp, target);
      return target;
    } catch (error) {
      await handle.close().catch(() => undefined);
      await rm(temp, { force: true });
      throw error;
    }
  }

  /**
   * Reads a blob as a stream (the installer rehashes what it copies), opened only once it is read: opened at
   * once, a blob deleted before the reader began (`remove --clean` beside an install) failed with an 'error'
   * event nothing listened to yet, which crashed the process.
   */
  readBlob(sha256: string): AsyncIterable<Buffer> {
    const path = this.blobPath(sha256);
    return { [Symbol.asyncIterator]: () => createReadStream(path)[Symbol.asyncIterator]() };
  }

  async removeBlob(sha256: string): Promise<void> {
    await this.#refuseUnsafeFolder(this.blobPath(sha256));
    await rm(this.blobPath(sha256), { force: true });
  }

  /** Every artifact held, by digest and size (what `clean` weighs against what is still referenced). */
  async blobs(): Promise<{ readonly sha256: string; readonly size: number }[]> {
    const root = join(this.root, 'blobs', 'sha256');
    const found: { sha256: string; size: number }[] = [];
    for (const shardName of await readdir(root).catch(() => [] as string[])) {
      for (const rest of await readdir(join(root, shardName)).catch(() => [] as string[])) {
        const sha256 = `${shardName}${rest}`;
        if (!SHA256_HEX.test(sha256)) continue;
        const info = await stat(join(root, shardName, rest)).catch(() => undefined);
        if (info?.isFile()) found.push({ sha256, size: info.size });
      }
    }
    return found;
  }

  #registryDir(url: string): string {
    const host = new URL(url).host.replace(/[^A-Za-z0-9.-]/g, '_') || 'file';
    return join(this.root, 'registries', `${host}-${sha256Hex(url).slice(0, 16)}`);
  }

  /** The last snapshot verified from `url`, or undefined (none, or a file this version cannot read). */
  async snapshot(url: string): Promise<CachedSnapshot | undefined> {
    const text = await readTextIfExists(join(this.#registryDir(url), SNAPSHOT_FILE));
    if (text === undefined) return undefined;
    let kept: { snapshot?: unknown; signature?: unknown; etag?: unknown; served_from?: unknown };
    try {
      kept = JSON.parse(text) as typeof kept;
    } catch {
      return undefined; // damaged: the next online run fetches it whole
    }
    if (typeof kept?.snapshot !== 'string' || typeof kept.signature !== 'string') return undefined;
    const apart = await this.#servedFromFile(url);
    const served = apart ?? servedFromKept(kept.served_from);
    return {
      bytes: new TextEncoder().encode(kept.snapshot),
      signature: kept.signature,
      ...(typeof kept.etag === 'string' ? { etag: kept.etag } : {}),
      ...(served.length > 0 ? { servedFrom: served } : {}),
      ...(apart === undefined ? { servedFromInSnapshot: true as const } : {}),
    };
  }

  /**
   * The hops kept with the snapshot cached for `url` (`CachedSnapshot.servedFrom`) without the snapshot: its
   * own small file, or, for a snapshot cached by a client that kept them in snapshot.json, read from there
   * (the one case that parses the snapshot). Empty where none is kept or none is cached.
   */
  async servedFrom(url: string): Promise<readonly string[]> {
    const own = await this.#servedFromFile(url);
    if (own !== undefined) return own;
    return (await this.snapshot(url))?.servedFrom ?? [];
  }

  /** served-from.json read, or undefined where it is missing or damaged (then read as never written). */
  async #servedFromFile(url: string): Promise<readonly string[] | undefined> {
    const text = await readTextIfExists(join(this.#registryDir(url), SERVED_FROM_FILE));
    if (text === undefined) return undefined;
    try {
      const kept = JSON.parse(text) as { served_from?: unknown } | null;
      return typeof kept === 'object' && kept !== null ? servedFromKept(kept.served_from) : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Keeps a verified snapshot, its signature and its ETag in one file written by rename, so a killed run
   * never leaves a body beside another publish's signature (which an offline run could not repair). The hops
   * go in their own file (`SERVED_FROM_FILE`, an empty list where none), written by rename first: a run
   * killed between the two leaves the new hops beside the snapshot before, which only reads more marks
   * (hops never tell a record's registry, floors or log heads), where the other order left the snapshot
   * without the hops it came through, or, over one an older client cached, read them from that.
   */
  async putSnapshot(url: string, snapshot: CachedSnapshot): Promise<void> {
    const served = (snapshot.servedFrom ?? []).slice(0, SERVED_FROM_LIMIT);
    await this.#placeFile(
      join(this.#registryDir(url), SERVED_FROM_FILE),
      `${JSON.stringify({ served_from: served })}\n`,
    );
    const kept = {
      snapshot: new TextDecoder().decode(snapshot.bytes),
      signature: snapshot.signature,
      ...(snapshot.etag ? { etag: snapshot.etag } : {}),
    };
    await this.#placeFile(join(this.#registryDir(url), SNAPSHOT_FILE), `${JSON.stringify(kept)}\n`);
  }

  /**
   * Removes the registry's folder whole (a link in its place is unlinked, not followed). Node's recursive rm
   * follows a folder in it swapped for a link mid-walk (`unsafeFolderWithin`), so one another user may change
   * in there is refused first, as a version's folder is (the client writes only files there; any folder in
   * it was made by someone else).
   * @throws ClientError CACHE_PATH_UNSAFE naming the folder and why.
   */
  async removeRegistry(url: string): Promise<void> {
    const folder = this.#registryDir(url);
    await this.#refuseUnsafeFolder(join(folder, SNAPSHOT_FILE));
    const within = await unsafeFolderWithin(folder);
    if (within) throw this.#unsafeFolderError(within, folder);
    await rm(folder, { recursive: true, force: true });
  }
}
