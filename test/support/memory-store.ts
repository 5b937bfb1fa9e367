/**
 * An in-memory Store for core unit tests: a complete implementation of the interface (not a mock), so
 * the pipeline runs exactly as it does over the filesystem or S3.
 */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { StoreError } from '../../index-builder/errors.ts';
import { keyProblem } from '../../index-builder/layout.ts';
import {
  type DeleteOptions,
  type GetOptions,
  type ObjectInfo,
  type PutOptions,
  type Store,
  type StoredObject,
  type StoredStream,
  tooLargeToGet,
} from '../../index-builder/store.ts';

export class MemoryStore implements Store {
  readonly objects = new Map<string, StoredObject>();
  /** Every key written, in order: lets tests assert what a publish touched. */
  readonly writes: string[] = [];

  async get(key: string, options?: GetOptions): Promise<StoredObject | undefined> {
    const object = this.objects.get(key);
    const tooLarge = object && tooLargeToGet(key, object.body.byteLength, options);
    if (tooLarge) throw tooLarge;
    return object;
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const object = this.objects.get(key);
    if (!object) return undefined;
    const { body: _body, ...info } = object;
    return info;
  }

  /** Like every store, writes only safe keys (index-builder/layout.ts); reads any key it holds. */
  async put(key: string, body: Uint8Array, options: PutOptions): Promise<void> {
    const problem = keyProblem(key);
    if (problem) throw new StoreError('STORE_INVALID_KEY', key, `unsafe storage key: ${problem}`);
    if (options.ifMatch !== undefined && this.objects.get(key)?.etag !== options.ifMatch)
      throw new StoreError('STORE_CONFLICT', key, `${key} is not the object read (If-Match)`);
    this.writes.push(key);
    const sha256 = createHash('sha256').update(body).digest('hex');
    // Kept as the filesystem store keeps it: a digest known after the body, asked for once it is whole.
    const decodedSha256 = options.decodedSha256 ?? (await options.decodedSha256AfterBody?.());
    this.objects.set(key, {
      key,
      body: new Uint8Array(body),
      size: body.byteLength,
      etag: `"${sha256.slice(0, 32)}"`,
      contentType: options.contentType,
      cacheControl: options.cacheControl,
      ...(options.contentEncoding ? { contentEncoding: options.contentEncoding } : {}),
      ...(decodedSha256 ? { decodedSha256 } : {}),
      sha256,
      lastModified: new Date(),
    });
  }

  async getStream(key: string): Promise<StoredStream | undefined> {
    const object = this.objects.get(key);
    if (!object) return undefined;
    const { body, ...info } = object;
    // In chunks, so readers meet a body split across reads as they do from a file or a socket.
    return {
      ...info,
      body: (async function* () {
        for (let at = 0; at < body.byteLength; at += 4096) yield body.subarray(at, at + 4096);
      })(),
      cancel: () => undefined,
    };
  }

  async putStream(key: string, body: AsyncIterable<Uint8Array>, options: PutOptions): Promise<void> {
    const chunks: Uint8Array[] = [];
    for await (const chunk of body) chunks.push(chunk);
    await this.put(key, Buffer.concat(chunks), options);
  }

  async delete(key: string, options?: DeleteOptions): Promise<void> {
    if (options?.ifMatch !== undefined && this.objects.get(key)?.etag !== options.ifMatch) return;
    this.objects.delete(key);
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    for (const key of [...this.objects.keys()].filter((k) => k.startsWith(prefix)).sort()) {
      const info = await this.head(key);
      if (info) yield info;
    }
  }

  /** key -> sha256 of every object: compare before/after to prove nothing changed. */
  fingerprint(): Map<string, string> {
    return new Map([...this.objects].map(([k, o]) => [k, createHash('sha256').update(o.body).digest('hex')]));
  }
}
