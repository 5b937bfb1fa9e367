/**
 * Checks shared by the store tests (fs-store, fs-writer), a store with one method replaced, and empty stores
 * of each real kind for the pipeline tests that run on both.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, expect } from 'vitest';
import { FsStore } from '../../adapters/fs-store.ts';
import { S3Store } from '../../adapters/s3-store.ts';
import type { Store } from '../../index-builder/store.ts';
import { encode, sha256 } from './fixtures.ts';
import { type LocalS3, startLocalS3 } from './s3.ts';

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
export function withMethod<K extends 'get' | 'put' | 'head' | 'list'>(
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

/** A registry's two stores. */
export interface StorePair {
  readonly intake: Store;
  readonly site: Store;
}

let freshPairs = 0;

/**
 * Empty store pairs of each real kind, for `describe.each`: the filesystem store (a folder of their own
 * under `folder()`) and S3 (a prefix of their own in `buckets`, through `client()`, named `s3Label`).
 * Getters, since the folder and the client are made in a `beforeAll`.
 */
export function storeKinds(
  folder: () => string,
  client: () => S3Client,
  buckets: { readonly intake: string; readonly site: string },
  s3Label = 'the S3 store (s3rver)',
): [string, () => StorePair][] {
  return [
    [
      'the filesystem store',
      () => {
        freshPairs += 1;
        return {
          intake: new FsStore(path.join(folder(), `intake-${freshPairs}`)),
          site: new FsStore(path.join(folder(), `site-${freshPairs}`)),
        };
      },
    ],
    [
      s3Label,
      () => {
        freshPairs += 1;
        const prefix = `r${freshPairs}/`;
        return {
          intake: new S3Store({ client: client(), bucket: buckets.intake, prefix }),
          site: new S3Store({ client: client(), bucket: buckets.site, prefix }),
        };
      },
    ],
  ];
}

/**
 * The real stores of a test file: s3rver with the buckets `<name>-intake` and `<name>-site`, and a temporary
 * folder, made before the file's tests and removed after them. Getters, since they are made in a `beforeAll`;
 * `kinds` are the empty store pairs of each kind on them (storeKinds).
 */
export function realStores(name: string): {
  readonly s3: () => LocalS3;
  readonly folder: () => string;
  readonly kinds: [string, () => StorePair][];
} {
  let s3: LocalS3 | undefined;
  let folder: string | undefined;
  beforeAll(async () => {
    s3 = await startLocalS3([`${name}-intake`, `${name}-site`]);
    folder = await mkdtemp(path.join(tmpdir(), `plugindex-${name}-`));
  });
  afterAll(async () => {
    await s3?.close();
    if (folder) await rm(folder, { recursive: true, force: true });
  });
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the real stores are made in beforeAll');
    return value;
  };
  const getS3 = () => started(s3);
  const getFolder = () => started(folder);
  return {
    s3: getS3,
    folder: getFolder,
    kinds: storeKinds(getFolder, () => getS3().client, { intake: `${name}-intake`, site: `${name}-site` }),
  };
}
