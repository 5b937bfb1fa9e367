import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsStore } from '../../cli/local/fs-store.ts';
import { StoreError } from '../../index-builder/errors.ts';
import { listAll } from '../../index-builder/store.ts';
import { encode } from '../support/fixtures.ts';

const opts = { contentType: 'application/json', cacheControl: 'public, max-age=60' };
let root: string;
let store: FsStore;

beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'plugindex-fs-'));
  store = new FsStore(root);
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function allFiles(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).map(String);
}

describe('when storing objects', () => {
  it('round-trips bytes and metadata', async () => {
    await store.put('a/b/c.json', encode('{"x":1}'), opts);
    const object = await store.get('a/b/c.json');
    expect(new TextDecoder().decode(object?.body)).toBe('{"x":1}');
    expect(object).toMatchObject({
      key: 'a/b/c.json',
      size: 7,
      contentType: 'application/json',
      cacheControl: 'public, max-age=60',
    });
    expect(object?.etag).toMatch(/^"[0-9a-f]+-[0-9a-f]+"$/);
    expect(await store.head('a/b/c.json')).toMatchObject({ size: 7, etag: object?.etag });
  });

  it('changes the ETag whenever the object is replaced, even with bytes of the same size', async () => {
    await store.put('e.json', encode('aaaa'), opts);
    const first = (await store.head('e.json'))?.etag;
    await store.put('e.json', encode('bbbb'), opts);
    const second = await store.get('e.json');
    expect(second?.etag).not.toBe(first);
    expect(second?.etag).toBe((await store.head('e.json'))?.etag);
  });

  it('answers undefined for what is not there', async () => {
    expect(await store.get('nope.json')).toBeUndefined();
    expect(await store.head('nope/deeper.json')).toBeUndefined();
    await store.put('dir/file', encode('x'), opts);
    expect(await store.get('dir')).toBeUndefined();
  });

  it('replaces atomically and leaves no temp files behind', async () => {
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => store.put('same.json', encode(String(i).repeat(1000)), opts)),
    );
    const body = new TextDecoder().decode((await store.get('same.json'))?.body);
    expect(body).toMatch(/^(\d+)\1*$/);
    expect(body.length % 1000).toBe(0);
    expect((await allFiles(root)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('refuses keys that could leave the store', async () => {
    for (const key of ['../escape', '/abs', 'a/../b', 'a//b', '.meta/x', 'a\\b', '']) {
      await expect(store.put(key, encode('x'), opts), key).rejects.toBeInstanceOf(StoreError);
      await expect(store.get(key), key).rejects.toMatchObject({ code: 'STORE_INVALID_KEY' });
    }
  });
});

describe('when listing and deleting', () => {
  it('lists by prefix in key order, even when the prefix ends mid-name', async () => {
    for (const key of ['plugins/b/index.json', 'plugins/a-b/x', 'plugins/a/index.json', 'other.json'])
      await store.put(key, encode('x'), opts);
    expect((await listAll(store, 'plugins/a')).map((o) => o.key)).toEqual([
      'plugins/a-b/x',
      'plugins/a/index.json',
    ]);
    expect((await listAll(store, '')).map((o) => o.key)).toEqual([
      'other.json',
      'plugins/a-b/x',
      'plugins/a/index.json',
      'plugins/b/index.json',
    ]);
    expect(await listAll(store, 'missing/')).toEqual([]);
  });

  it('deletes an object and its metadata, pruning empty folders but keeping top-level ones', async () => {
    await store.put('incoming/deep/x.tgz', encode('x'), opts);
    await store.delete('incoming/deep/x.tgz');
    await store.delete('incoming/never-was.tgz');
    expect(await store.get('incoming/deep/x.tgz')).toBeUndefined();
    expect(await allFiles(root)).toEqual(expect.arrayContaining(['incoming']));
    expect((await allFiles(root)).filter((f) => f.includes('deep'))).toEqual([]);
  });
});
