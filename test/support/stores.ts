/** Checks shared by the store tests (fs-store, fs-writer), and a store with one method replaced. */
import { expect } from 'vitest';
import type { Store } from '../../index-builder/store.ts';
import { encode, sha256 } from './fixtures.ts';

/** Puts `body` under `key` with `metadata`, and expects a read to give that metadata and its bytes' ETag. */
export async function expectPutReadsBack(
  store: Store,
  key: string,
  body: string,
  metadata: { readonly contentType: string; readonly cacheControl: string },
): Promise<void> {
  await store.put(key, encode(body), metadata);
  expect(await store.get(key)).toMatchObject({ ...metadata, etag: `"${sha256(body).slice(0, 32)}"` });
}

/** `store`, its method `name` replaced by what `replace` makes of the store's own (bound to it). */
export function withMethod<K extends 'get' | 'put'>(
  store: Store,
  name: K,
  replace: (original: Store[K]) => Store[K],
): Store {
  const replaced = replace(store[name].bind(store) as Store[K]);
  return new Proxy(store, {
    get(target, property) {
      if (property === name) return replaced;
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
