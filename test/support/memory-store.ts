/**
 * An in-memory Store for core unit tests: a complete implementation of the interface (not a mock), so
 * the pipeline runs exactly as it does over the filesystem or S3.
 */
import { createHash } from 'node:crypto';
import type { ObjectInfo, PutOptions, Store, StoredObject } from '../../index-builder/store.ts';

export class MemoryStore implements Store {
  readonly objects = new Map<string, StoredObject>();
  /** Every key written, in order: lets tests assert what a publish touched. */
  readonly writes: string[] = [];

  async get(key: string): Promise<StoredObject | undefined> {
    return this.objects.get(key);
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const object = this.objects.get(key);
    if (!object) return undefined;
    const { body: _body, ...info } = object;
    return info;
  }

  async put(key: string, body: Uint8Array, options: PutOptions): Promise<void> {
    this.writes.push(key);
    this.objects.set(key, {
      key,
      body: new Uint8Array(body),
      size: body.byteLength,
      etag: `"${createHash('sha256').update(body).digest('hex').slice(0, 32)}"`,
      contentType: options.contentType,
      cacheControl: options.cacheControl,
      lastModified: new Date(),
    });
  }

  async delete(key: string): Promise<void> {
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
