/**
 * The content cache: what a download killed part way left in its tmp/ folder, a blob deleted before its
 * reader began, and the snapshot kept with where the last request for it was led.
 */
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ContentCache, SERVED_FROM_LIMIT } from '../../../client/disk/cache.ts';
import { sha256Hex } from '../../../index-builder/digest.ts';
import { deadPid } from '../../support/dead-pid.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'plugindex-cache-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('when downloads killed part way left their temp files in the cache', () => {
  it('removes, at the next download, every one whose writer is gone and unwritten for 10 minutes, whatever its digest, and no live one', async () => {
    const cache = new ContentCache(dir);
    const tmp = path.join(dir, 'tmp');
    await mkdir(tmp, { recursive: true });
    const dead = await deadPid();
    const other = 'a'.repeat(64);
    // Two killed downloads (one of another artifact, never asked for again), a live writer's, another file.
    const left = [`.${other}.${dead}.0123abcd.tmp`, `.${'b'.repeat(64)}.${dead}.89abcdef.tmp`];
    const live = `.${other}.${process.pid}.fedcba98.tmp`;
    // And one of a writer whose PID runs nothing here, written a minute ago: another machine's download
    // in a shared cache (a CI volume, a home folder over NFS), left to it.
    const recent = `.${'c'.repeat(64)}.${dead}.13572468.tmp`;
    for (const name of [...left, live, recent, 'notes.txt']) await writeFile(path.join(tmp, name), 'partial');
    const old = new Date(Date.now() - 11 * 60_000);
    const recently = new Date(Date.now() - 60_000);
    for (const name of [...left, live]) await utimes(path.join(tmp, name), old, old);
    await utimes(path.join(tmp, recent), recently, recently);

    const body = new TextEncoder().encode('#!/bin/sh\necho demo\n');
    await cache.writeBlob({
      sha256: sha256Hex(body),
      size: body.byteLength,
      url: 'https://example.org/demo',
      body: (async function* () {
        yield body;
      })(),
    });

    expect((await readdir(tmp)).sort()).toEqual([live, recent, 'notes.txt'].sort());
  });
});

describe('when a blob is deleted before its reader begins', () => {
  it('fails the read with ENOENT naming the blob, and nothing else (no error event unheard)', async () => {
    // Prepare: a blob held, its read asked for, then the blob deleted (`remove --clean` beside an install).
    const cache = new ContentCache(path.join(dir, 'gone'));
    const body = new TextEncoder().encode('#!/bin/sh\necho gone\n');
    const sha256 = sha256Hex(body);
    await cache.writeBlob({
      sha256,
      size: body.byteLength,
      url: 'https://example.test/gone',
      body: (async function* () {
        yield body;
      })(),
    });
    const reading = cache.readBlob(sha256);
    await cache.removeBlob(sha256);
    // Opened when asked for, the stream's ENOENT came as an 'error' event before anyone listened: the
    // process's uncaught exception. Let any such event fire first.
    await new Promise((resolve) => setImmediate(resolve));

    // Act
    const read = (async () => {
      for await (const _ of reading);
    })();

    // Assess
    await expect(read).rejects.toMatchObject({ code: 'ENOENT', path: cache.blobPath(sha256) });
  });
});

describe.skipIf(process.platform === 'win32')(
  'when a folder on the way to the cache, or in it, is one others may write',
  () => {
    const body = new TextEncoder().encode('#!/bin/sh\necho shared\n');
    const write = (cache: ContentCache) =>
      cache.writeBlob({
        sha256: sha256Hex(body),
        size: body.byteLength,
        url: 'https://example.test/shared',
        body: (async function* () {
          yield body;
        })(),
      });

    it('refuses to write a blob, a document or a snapshot under a parent every user may write without the sticky bit (CACHE_PATH_UNSAFE)', async () => {
      const shared = await mkdtemp(path.join(dir, 'unsafe-'));
      await chmod(shared, 0o777);
      const cache = new ContentCache(path.join(shared, 'cache'));

      await expect(write(cache)).rejects.toMatchObject({ name: 'ClientError', code: 'CACHE_PATH_UNSAFE' });
      await expect(cache.putDocument(sha256Hex(body), body)).rejects.toMatchObject({
        code: 'CACHE_PATH_UNSAFE',
      });
      await expect(
        cache.putSnapshot('https://example.test/', { bytes: body, signature: 'sig' }),
      ).rejects.toMatchObject({ code: 'CACHE_PATH_UNSAFE' });
      expect(await readdir(shared)).toEqual([]);
    });

    it('refuses to write or remove a blob where its shard folder became writable by every user', async () => {
      const cache = new ContentCache(await mkdtemp(path.join(dir, 'shard-')));
      await write(cache);
      await chmod(path.dirname(cache.blobPath(sha256Hex(body))), 0o777);

      await expect(cache.removeBlob(sha256Hex(body))).rejects.toMatchObject({ code: 'CACHE_PATH_UNSAFE' });
      await expect(write(cache)).rejects.toMatchObject({ code: 'CACHE_PATH_UNSAFE' });
      expect(await cache.hasBlob(sha256Hex(body), body.byteLength)).toBe(true);
    });

    it('refuses to remove a registry\u2019s folder that holds one every user may write (a recursive rm follows a link swapped in there), removing nothing', async () => {
      const cache = new ContentCache(await mkdtemp(path.join(dir, 'registry-')));
      const url = 'https://example.test/';
      await cache.putSnapshot(url, { bytes: body, signature: 'sig' });
      const [name] = await readdir(path.join(cache.root, 'registries'));
      const folder = path.join(cache.root, 'registries', String(name));
      // Not the client's (it writes only files there): a folder another user may swap for a link to theirs.
      await mkdir(path.join(folder, 'shared'));
      await chmod(path.join(folder, 'shared'), 0o777);
      await writeFile(path.join(folder, 'shared', 'kept'), 'kept');

      await expect(cache.removeRegistry(url)).rejects.toMatchObject({
        name: 'ClientError',
        code: 'CACHE_PATH_UNSAFE',
        message: expect.stringContaining(path.join(folder, 'shared')),
      });
      expect(await readFile(path.join(folder, 'shared', 'kept'), 'utf8')).toBe('kept');
      expect((await cache.snapshot(url))?.signature).toBe('sig');

      // Made the user's alone again, it goes whole; a link in it is unlinked, what it leads to kept.
      await chmod(path.join(folder, 'shared'), 0o755);
      const outside = await mkdtemp(path.join(dir, 'outside-'));
      await writeFile(path.join(outside, 'mine'), 'mine');
      await symlink(outside, path.join(folder, 'linked'));
      await cache.removeRegistry(url);
      expect(await cache.snapshot(url)).toBeUndefined();
      expect(await readdir(path.join(cache.root, 'registries'))).toEqual([]);
      expect(await readFile(path.join(outside, 'mine'), 'utf8')).toBe('mine');
    });

    it('writes under a parent every user may write that has the sticky bit (as /tmp)', async () => {
      const shared = await mkdtemp(path.join(dir, 'sticky-'));
      await chmod(shared, 0o1777);
      const cache = new ContentCache(path.join(shared, 'cache'));

      await write(cache);
      expect(await cache.hasBlob(sha256Hex(body), body.byteLength)).toBe(true);
    });

    it('names PLUGINDEX_SAFE_FOLDERS and the folder in its refusal, and writes there once the folder is listed', async () => {
      const shared = await mkdtemp(path.join(dir, 'vouched-'));
      await chmod(shared, 0o777);
      const cache = new ContentCache(path.join(shared, 'cache'));

      await expect(write(cache)).rejects.toThrow(`PLUGINDEX_SAFE_FOLDERS=${shared}`);
      try {
        vi.stubEnv('PLUGINDEX_SAFE_FOLDERS', shared);
        await write(cache);
        await cache.putDocument(sha256Hex(body), body);
        expect(await cache.hasBlob(sha256Hex(body), body.byteLength)).toBe(true);
      } finally {
        vi.unstubAllEnvs();
      }
    });

    it('vouches for a folder whose path holds the list\u2019s delimiter through a folder above it, as PATH can list none', async () => {
      const above = await mkdtemp(path.join(dir, 'delimited-'));
      const shared = path.join(above, `team${path.delimiter}shared`);
      await mkdir(shared);
      await chmod(shared, 0o777);
      const cache = new ContentCache(path.join(shared, 'cache'));
      try {
        // Listed itself, it is split in two at the delimiter, and neither half names it.
        vi.stubEnv('PLUGINDEX_SAFE_FOLDERS', shared);
        await expect(write(cache)).rejects.toMatchObject({ code: 'CACHE_PATH_UNSAFE' });
        vi.stubEnv('PLUGINDEX_SAFE_FOLDERS', above);
        await write(cache);
        expect(await cache.hasBlob(sha256Hex(body), body.byteLength)).toBe(true);
      } finally {
        vi.unstubAllEnvs();
      }
    });
  },
);

describe('when a snapshot is kept with each URL the last request for it was led through (a redirect\u2019s hops, or a mirror)', () => {
  it('reads those URLs back with it in order, the single URL an earlier form kept as one, and passes over entries that are not URLs (a hand edit), the snapshot kept', async () => {
    // Prepare
    const cache = new ContentCache(path.join(dir, 'served-from'));
    const url = 'https://old.plugins.example';
    const bytes = new TextEncoder().encode('{"generation":1}');
    const hops = ['https://front.plugins.example', 'https://plugins.example/reg'];
    await cache.putSnapshot(url, { bytes, signature: 'sig', servedFrom: hops });

    // Act
    const kept = await cache.snapshot(url);

    // Assess
    expect(kept).toEqual({ bytes, signature: 'sig', servedFrom: hops });
    expect(await cache.servedFrom(url)).toEqual(hops);
    // As a client that kept them in snapshot.json wrote it: no served-from.json beside it.
    const [folder] = await readdir(path.join(dir, 'served-from', 'registries'));
    const file = path.join(dir, 'served-from', 'registries', folder as string, 'snapshot.json');
    await rm(path.join(path.dirname(file), 'served-from.json'));
    const keep = (served: unknown) =>
      writeFile(
        file,
        JSON.stringify({ snapshot: '{"generation":1}', signature: 'sig', served_from: served }),
      );
    await keep('https://plugins.example/reg');
    expect(await cache.snapshot(url)).toEqual({
      bytes,
      signature: 'sig',
      servedFrom: ['https://plugins.example/reg'],
      servedFromInSnapshot: true,
    });
    await keep(['not a url', 7, 'https://plugins.example/reg']);
    expect(await cache.snapshot(url)).toEqual({
      bytes,
      signature: 'sig',
      servedFrom: ['https://plugins.example/reg'],
      servedFromInSnapshot: true,
    });
    await keep('not a url');
    expect(await cache.snapshot(url)).toEqual({ bytes, signature: 'sig', servedFromInSnapshot: true });
    await keep({ url: 'https://plugins.example/reg' });
    expect(await cache.snapshot(url)).toEqual({ bytes, signature: 'sig', servedFromInSnapshot: true });
  });

  it('keeps them in a file of their own beside the snapshot, read without parsing the snapshot, and reads those of a snapshot cached with them in it once a read', async () => {
    // Prepare: a snapshot of 10,000 plugins' documents (1.2 MB kept).
    const cache = new ContentCache(path.join(dir, 'served-from-own'));
    const url = 'https://old.plugins.example';
    const documents = Object.fromEntries(
      Array.from({ length: 10_000 }, (_, at) => [`plugins/p${at}/index.json`, { sha256: 'ab'.repeat(32) }]),
    );
    const bytes = new TextEncoder().encode(JSON.stringify({ generation: 1, documents }));
    const hops = ['https://front.plugins.example', 'https://plugins.example/reg'];
    await cache.putSnapshot(url, { bytes, signature: 'sig', servedFrom: hops });
    const [folder] = await readdir(path.join(dir, 'served-from-own', 'registries'));
    const held = path.join(dir, 'served-from-own', 'registries', folder as string);
    const parse = vi.spyOn(JSON, 'parse');
    const snapshotParses = () =>
      parse.mock.calls.filter(([text]) => typeof text === 'string' && text.startsWith('{"snapshot":')).length;
    try {
      // Act
      const read = await cache.servedFrom(url);

      // Assess
      expect(read).toEqual(hops);
      expect(snapshotParses()).toBe(0);
      expect(JSON.parse(await readFile(path.join(held, 'served-from.json'), 'utf8'))).toEqual({
        served_from: hops,
      });
      expect(JSON.parse(await readFile(path.join(held, 'snapshot.json'), 'utf8'))).not.toHaveProperty(
        'served_from',
      );

      // Act: none kept (an empty list, so no read falls back to the snapshot), none cached, and one cached
      // by a client that kept them in snapshot.json (no file of their own).
      parse.mockClear();
      await cache.putSnapshot(url, { bytes, signature: 'sig' });
      const none = await cache.servedFrom(url);
      const uncached = await cache.servedFrom('https://none.plugins.example');
      const parsedForNone = snapshotParses();
      await rm(path.join(held, 'served-from.json'));
      await writeFile(
        path.join(held, 'snapshot.json'),
        JSON.stringify({ snapshot: new TextDecoder().decode(bytes), signature: 'sig', served_from: hops }),
      );
      parse.mockClear();
      const older = await cache.servedFrom(url);

      // Assess
      expect(none).toEqual([]);
      expect(uncached).toEqual([]);
      expect(parsedForNone).toBe(0);
      expect(older).toEqual(hops);
      expect(snapshotParses()).toBe(1);
    } finally {
      parse.mockRestore();
    }
  });

  it('keeps and reads back at most SERVED_FROM_LIMIT of them, the first ones', async () => {
    // Prepare
    const cache = new ContentCache(path.join(dir, 'served-from-many'));
    const url = 'https://old.plugins.example';
    const bytes = new TextEncoder().encode('{"generation":1}');
    const hops = Array.from({ length: SERVED_FROM_LIMIT + 3 }, (_, at) => `https://hop${at}.plugins.example`);

    // Act
    await cache.putSnapshot(url, { bytes, signature: 'sig', servedFrom: hops });

    // Assess
    expect((await cache.snapshot(url))?.servedFrom).toEqual(hops.slice(0, SERVED_FROM_LIMIT));
  });
});
