/** Checks shared by the store tests (fs-store, fs-writer). */
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
