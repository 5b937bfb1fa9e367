/**
 * FsStore's writer thread (adapters/fs-writer.ts): the puts it makes read back as the in-thread writes
 * did, and a thread that stops fails each put it had with a typed, retryable error, leaving every file
 * whole (its old bytes or its new ones) and the store usable.
 */
import { watch } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsStore, SYNC_BYTES } from '../../adapters/fs-store.ts';
import { fsWriter } from '../../adapters/fs-writer.ts';
import { StoreError } from '../../index-builder/errors.ts';
import { impliedMetadata } from '../../index-builder/layout.ts';
import { CACHE_MUTABLE } from '../../index-builder/store.ts';
import { encode, sha256 } from '../support/fixtures.ts';
import { makeFoldersUnder } from '../support/folders-under.ts';
import { expectPutReadsBack } from '../support/stores.ts';

const opts = { contentType: 'application/json', cacheControl: 'no-store' };
const text = (body: Uint8Array | undefined): string => new TextDecoder().decode(body);

let root: string;
let store: FsStore;

beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'plugindex-fs-writer-'));
  store = new FsStore(root);
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('when folders it made are removed behind its back', () => {
  it('makes them again, and new folders below them, for the next put', async () => {
    // Past the puts a process makes on its own thread (fs-store.ts): these go to the writer thread.
    for (let i = 0; i < 201; i++) await store.put(`warm/${i}.json`, encode('w'), opts);
    await store.put('plugins/a/1.0.0/artifacts/linux-amd64/x', encode('1'), opts);
    await rm(path.join(root, 'plugins', 'a'), { recursive: true });
    await rm(path.join(root, '.meta', 'plugins', 'a'), { recursive: true });

    await store.put('plugins/a/1.0.0/artifacts/linux-arm64/y', encode('2'), opts);
    await store.put('plugins/a/1.0.0/artifacts/linux-amd64/x', encode('3'), opts);

    expect(text((await store.get('plugins/a/1.0.0/artifacts/linux-arm64/y'))?.body)).toBe('2');
    expect(text((await store.get('plugins/a/1.0.0/artifacts/linux-amd64/x'))?.body)).toBe('3');
    expect(await store.head('plugins/a/1.0.0/artifacts/linux-amd64/x')).toMatchObject(opts);
  });
});

describe('when the writer thread puts a compressed variant', () => {
  it('records the digest it decodes to, and records another one for the same bytes', async () => {
    // Past the puts a process makes on its own thread (fs-store.ts): these go to the writer thread.
    for (let i = 0; i < 201; i++) await store.put(`warm/${i}.json`, encode('w'), opts);
    const variant = { ...opts, contentEncoding: 'gzip', decodedSha256: sha256('first') };
    await store.put('index.json.gz', encode('gz'), variant);
    expect(await store.head('index.json.gz')).toMatchObject({
      decodedSha256: sha256('first'),
      sha256: sha256('gz'),
    });
    await store.put('index.json.gz', encode('gz'), { ...variant, decodedSha256: sha256('second') });
    expect((await store.head('index.json.gz'))?.decodedSha256).toBe(sha256('second'));
  });
});

describe('when the writer thread stops with puts waiting', () => {
  it('fails each put it had with STORE_IO, leaves every file whole, and writes again afterwards', async () => {
    const keys = Array.from({ length: 300 }, (_, i) => `plugins/p${i % 7}/v${i}.json`);
    // Past the puts a process makes on its own thread (fs-store.ts): these go to the writer thread.
    for (const key of keys) await store.put(key, encode(`old ${key}`), opts);

    const puts = keys.map((key) => store.put(key, encode(`new ${key}`), opts));
    await fsWriter.close();
    const settled = await Promise.allSettled(puts);

    const failed = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as unknown] : []));
    expect(failed.length).toBeGreaterThan(0); // stopped before it wrote them all
    for (const error of failed) {
      expect(error).toBeInstanceOf(StoreError);
      expect(error).toMatchObject({ code: 'STORE_IO', permanent: false });
    }
    for (const [i, key] of keys.entries()) {
      const object = await store.get(key);
      const body = text(object?.body);
      // A put that succeeded holds its new bytes; one that failed holds the old or (written before the
      // stop) the new ones, never a mix, and its ETag is its bytes'.
      if (settled[i]?.status === 'fulfilled') expect(body).toBe(`new ${key}`);
      else expect([`old ${key}`, `new ${key}`]).toContain(body);
      expect(object?.etag).toBe(`"${sha256(body).slice(0, 32)}"`);
    }
    // The next put starts another thread.
    await store.put('plugins/after.json', encode('after'), opts);
    expect(text((await store.get('plugins/after.json'))?.body)).toBe('after');
  });
});

describe('when many puts wait for the writer thread at once', () => {
  it('writes each one, and fails only the put the filesystem refuses among those sent with it', async () => {
    // Past the puts a process makes on its own thread (fs-store.ts): these go to the writer thread.
    for (let i = 0; i < 200; i++) await store.put(`warm/${i}.json`, encode('warm'), opts);
    const keys = Array.from({ length: 400 }, (_, i) => `plugins/p${i % 7}/v${i}.json`);
    // A folder where one put's file would go: its rename is refused.
    const blocked = keys[211] as string;
    await mkdir(path.join(root, ...blocked.split('/'), 'inside'), { recursive: true });

    const settled = await Promise.allSettled(keys.map((key) => store.put(key, encode(`body ${key}`), opts)));

    for (const [i, key] of keys.entries()) {
      const outcome = settled[i];
      if (key === blocked) {
        expect(outcome?.status).toBe('rejected');
        expect(outcome?.status === 'rejected' ? outcome.reason : undefined).toMatchObject({
          code: 'STORE_REFUSED',
        });
        expect(outcome?.status === 'rejected' ? outcome.reason : undefined).toBeInstanceOf(StoreError);
        continue;
      }
      expect(outcome?.status).toBe('fulfilled');
      const object = await store.get(key);
      expect(text(object?.body)).toBe(`body ${key}`);
      expect(object?.etag).toBe(`"${sha256(`body ${key}`).slice(0, 32)}"`);
    }
  });
});

describe('when a thousand puts are made in one turn', () => {
  it('sends them in batches of at most 64, three at most with the thread at once, and writes each one', async () => {
    for (let i = 0; i < 200; i++) await store.put(`warm/${i}.json`, encode('warm'), opts);
    const before = { ...fsWriter.sent };
    fsWriter.sent.largest = 0;
    fsWriter.sent.mostInFlight = 0;
    const keys = Array.from({ length: 1000 }, (_, i) => `plugins/p${i % 50}/${i}.json`);

    await Promise.all(keys.map((key) => store.put(key, encode(key), opts)));

    // Not one message a put (each costs both threads more than a small put's bytes), nor one message for
    // all (the thread would write them all while this thread has nothing to hand it next).
    expect(fsWriter.sent.batches - before.batches).toBe(Math.ceil(1000 / 64));
    expect(fsWriter.sent.largest).toBe(64);
    expect(fsWriter.sent.mostInFlight).toBe(3);
    for (const key of keys.filter((_, i) => i % 97 === 0))
      expect(text((await store.get(key))?.body)).toBe(key);
  });
});

describe('when one key is put again and again while earlier puts wait', () => {
  it('holds the last put of each key, in every folder', async () => {
    for (let i = 0; i < 200; i++) await store.put(`warm/${i}.json`, encode('warm'), opts);
    const keys = Array.from(
      { length: 24 },
      (_, i) => `plugins/p${i}/${i % 2 ? 'index.json' : '1.0.0/manifest.json'}`,
    );

    // Every key's ten puts interleaved with the others', none awaited before the next is made.
    const puts = [];
    for (let round = 0; round < 10; round++)
      for (const key of keys) puts.push(store.put(key, encode(`${key} round ${round}`), opts));
    await Promise.all(puts);

    for (const key of keys) {
      const object = await store.get(key);
      expect(text(object?.body)).toBe(`${key} round 9`);
      expect(object?.etag).toBe(`"${sha256(`${key} round 9`).slice(0, 32)}"`);
    }
  });
});

describe('when a key is put for the first time', () => {
  it('gives it a whole sidecar, and replaces a half-written one a crash left without a body', async () => {
    for (let i = 0; i < 200; i++) await store.put(`warm/${i}.json`, encode('warm'), opts);
    const sidecarOf = (key: string): string => `${path.join(root, '.meta', ...key.split('/'))}.json`;
    await mkdir(path.dirname(sidecarOf('plugins/b/index.html')), { recursive: true });
    await writeFile(sidecarOf('plugins/b/index.html'), '{"contentType":"text/ht');

    await store.put('plugins/a/index.html', encode('<p>a'), {
      contentType: 'text/html',
      cacheControl: 'no-store',
    });
    await store.put('plugins/b/index.html', encode('<p>b'), {
      contentType: 'text/html',
      cacheControl: 'no-store',
    });

    for (const name of ['a', 'b']) {
      const key = `plugins/${name}/index.html`;
      expect(JSON.parse(await readFile(sidecarOf(key), 'utf8'))).toMatchObject({
        contentType: 'text/html',
        cacheControl: 'no-store',
        sha256: sha256(`<p>${name}`),
      });
      expect(await store.get(key)).toMatchObject({
        contentType: 'text/html',
        etag: `"${sha256(`<p>${name}`).slice(0, 32)}"`,
      });
      // No temp file left beside the sidecar.
      expect(await readdir(path.dirname(sidecarOf(key)))).toEqual(['index.html.json']);
    }
  });
});

describe('when the writer thread is given a put with the metadata its key implies', () => {
  it('writes no sidecar, leaves the same bytes as they are, and removes a former sidecar', async () => {
    for (let i = 0; i < 200; i++) await store.put(`warm/${i}.json`, encode('warm'), opts);
    const implied = { contentType: 'application/json', cacheControl: CACHE_MUTABLE };
    const sidecarOf = (key: string): string => `${path.join(root, '.meta', ...key.split('/'))}.json`;
    const gone = (file: string): Promise<boolean> =>
      stat(file).then(
        () => false,
        () => true,
      );
    await store.put('plugins/c/index.json', encode('{"c":1}'), { ...implied, cacheControl: 'no-store' });

    await store.put('plugins/a/index.json', encode('{"a":1}'), implied);
    const first = (await stat(path.join(root, 'plugins/a/index.json'))).ino;
    await store.put('plugins/a/index.json', encode('{"a":1}'), implied);
    await store.put('plugins/c/index.json', encode('{"c":1}'), implied);

    expect(await gone(sidecarOf('plugins/a/index.json'))).toBe(true);
    expect((await stat(path.join(root, 'plugins/a/index.json'))).ino).toBe(first);
    expect(await gone(sidecarOf('plugins/c/index.json'))).toBe(true);
    for (const name of ['a', 'c']) {
      expect(await store.get(`plugins/${name}/index.json`)).toMatchObject({
        ...implied,
        etag: `"${sha256(`{"${name}":1}`).slice(0, 32)}"`,
      });
    }
  });
});

describe('when the writer thread puts new files into folders it made', () => {
  it('looks for none of them, and looks again for a file it has put, or one in a folder it found', async () => {
    for (let i = 0; i < 200; i++) await store.put(`warm/${i}.json`, encode('warm'), opts);
    const implied = { contentType: 'application/json', cacheControl: CACHE_MUTABLE };
    await mkdir(path.join(root, 'found', 'old'), { recursive: true });
    await writeFile(path.join(root, 'found', 'old', 'index.json'), '{"old":1}');
    const looked = async (work: () => Promise<unknown>): Promise<number> => {
      const before = fsWriter.lookups;
      await work();
      return fsWriter.lookups - before;
    };

    // The first is looked for (plugins/ is not there yet); the thread makes plugins/ and each folder below.
    expect(
      await looked(() => store.put('plugins/a/1.0.0/artifacts/linux-amd64/a', encode('a'), implied)),
    ).toBe(1);
    const newFiles = () =>
      Promise.all([
        store.put('plugins/a/1.0.0/manifest.json', encode('{"m":1}'), implied),
        store.put('plugins/a/index.json', encode('{"a":1}'), implied),
        store.put('plugins/a/index.html', encode('<p>a'), {
          contentType: 'text/html',
          cacheControl: 'no-store',
        }),
        store.put('plugins/b/1.0.0/manifest.json', encode('{"b":1}'), implied),
      ]);
    expect(await looked(newFiles)).toBe(0);
    const inode = (await stat(path.join(root, 'plugins/a/index.json'))).ino;

    // Put before by the thread: looked for, and left as it is when it holds these bytes.
    expect(await looked(() => store.put('plugins/a/index.json', encode('{"a":1}'), implied))).toBeGreaterThan(
      0,
    );
    expect((await stat(path.join(root, 'plugins/a/index.json'))).ino).toBe(inode);
    // In a folder the thread found rather than made.
    expect(
      await looked(() => store.put('found/old/index.json', encode('{"old":2}'), implied)),
    ).toBeGreaterThan(0);
    expect(text((await store.get('found/old/index.json'))?.body)).toBe('{"old":2}');
  });

  it('puts a file another writer put there meanwhile as it was asked to, sidecar and all', async () => {
    for (let i = 0; i < 200; i++) await store.put(`warm/${i}.json`, encode('warm'), opts);
    await store.put('plugins/a/index.json', encode('{"a":1}'), opts);
    const sidecar = path.join(root, '.meta', 'plugins', 'a', 'index.html.json');
    await writeFile(path.join(root, 'plugins', 'a', 'index.html'), 'other');
    await writeFile(sidecar, '{"contentType":"text/plain","cacheControl":"no-store"}\n');

    await expectPutReadsBack(store, 'plugins/a/index.html', '<p>a', {
      contentType: 'text/html',
      cacheControl: 'max-age=60',
    });
    expect(text((await store.get('plugins/a/index.html'))?.body)).toBe('<p>a');
    expect(JSON.parse(await readFile(sidecar, 'utf8'))).toMatchObject({ sha256: sha256('<p>a') });
  });
});

describe('when one batch holds views into one buffer, each with its own metadata', () => {
  it('writes each view’s bytes with its metadata, under a root named in any script', async () => {
    const unicodeRoot = await mkdtemp(path.join(tmpdir(), 'plugindex-fs-writer-régistre-✓-'));
    try {
      const unicodeStore = new FsStore(unicodeRoot);
      for (let i = 0; i < 200; i++) await unicodeStore.put(`warm/${i}.json`, encode('warm'), opts);
      // Ten bodies of ten bytes, back to back in one buffer: the thread must get each view's bytes alone.
      const shared = encode(Array.from({ length: 10 }, (_, i) => String(i).repeat(10)).join(''));
      const metadataOf = (i: number) =>
        i % 3 === 0
          ? { contentType: 'application/json', cacheControl: CACHE_MUTABLE } // implied: no sidecar
          : i % 3 === 1
            ? { contentType: 'text/plain', cacheControl: 'no-store', contentEncoding: 'gzip' }
            : { contentType: 'text/plain', cacheControl: 'no-store', sha256: sha256(String(i).repeat(10)) };
      const before = fsWriter.sent.batches;

      await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          unicodeStore.put(`plugins/p${i}/index.json`, shared.subarray(i * 10, i * 10 + 10), metadataOf(i)),
        ),
      );

      expect(fsWriter.sent.batches - before).toBe(1);
      for (let i = 0; i < 10; i++) {
        const { sha256: _given, ...metadata } = { sha256: '', ...metadataOf(i) };
        const object = await unicodeStore.get(`plugins/p${i}/index.json`);
        expect(text(object?.body)).toBe(String(i).repeat(10));
        expect(object).toMatchObject({ ...metadata, etag: `"${sha256(String(i).repeat(10)).slice(0, 32)}"` });
      }
    } finally {
      await rm(unicodeRoot, { recursive: true, force: true });
    }
  });
});

describe('when a put’s metadata holds a NUL character', () => {
  it('is refused as permanent, small (the writer thread’s) or large (this thread’s), and writes nothing', async () => {
    for (let i = 0; i < 200; i++) await store.put(`warm/${i}.json`, encode('warm'), opts);
    const nul = [
      { contentType: 'text/plain\0x', cacheControl: 'no-store' },
      { contentType: 'text/plain', cacheControl: 'no-store\0' },
      { contentType: 'text/plain', cacheControl: 'no-store', contentEncoding: 'gzip\0' },
    ];
    for (const [size, at] of [
      [10, 'small'],
      [SYNC_BYTES + 1, 'large'],
    ] as const) {
      for (const [i, metadata] of nul.entries()) {
        const key = `${at}/${i}.txt`;
        const refused = store.put(key, new Uint8Array(size), metadata);
        await expect(refused).rejects.toBeInstanceOf(StoreError);
        await expect(refused).rejects.toMatchObject({ code: 'STORE_REFUSED', permanent: true });
        expect(await store.get(key)).toBeUndefined();
      }
    }
    await store.put('small/ok.txt', encode('ok'), { contentType: 'text/plain', cacheControl: 'no-store' });
    expect(text((await store.get('small/ok.txt'))?.body)).toBe('ok');
  });
});

describe('when a new immutable file is put', () => {
  /**
   * The names that come and go in `folder` (inotify) while `act` runs. Each side of it is marked by a file of
   * its own made in the folder, and the names are those seen between the two marks: one watch's events come
   * in order, so every event of `act` is in, and none of what came before it. (Waiting for `act`'s last name
   * instead was fooled by a late event of the put before: under heavy disk load, a watch on the folder again
   * was handed the first file's last change, and closed before the second put's temp file was seen.)
   */
  async function namesSeen(folder: string, act: () => Promise<void>): Promise<string[]> {
    const marks = [`.mark-${process.pid}-${Date.now()}-before`, `.mark-${process.pid}-${Date.now()}-after`];
    const seen: string[] = [];
    const marked = new Map<string, () => void>();
    const markSeen = marks.map((mark) => new Promise<void>((resolve) => marked.set(mark, resolve)));
    const watcher = watch(folder, (_event, name) => {
      const mark = marked.get(String(name));
      if (mark) mark();
      else seen.push(String(name));
    });
    try {
      const mark = async (i: number) => {
        await writeFile(path.join(folder, marks[i] as string), '');
        let timer: NodeJS.Timeout | undefined;
        try {
          await Promise.race([
            markSeen[i],
            new Promise((_, reject) => {
              timer = setTimeout(() => reject(new Error(`no event for ${marks[i]}`)), 10_000);
            }),
          ]);
        } finally {
          clearTimeout(timer);
        }
      };
      await mark(0);
      const from = seen.length;
      await act();
      await mark(1);
      return seen.slice(from);
    } finally {
      watcher.close();
      await Promise.all(marks.map((mark) => rm(path.join(folder, mark), { force: true })));
    }
  }
  const put = (key: string, body: string) => store.put(key, encode(body), impliedMetadata(key));

  it('writes it where it belongs, no temp file beside it, and replaces it later through one', async () => {
    // Past the puts a process makes on its own thread (fs-store.ts): these go to the writer thread.
    for (let i = 0; i < 200; i++) await store.put(`warm/${i}.json`, encode('warm'), opts);
    // The version's folder made by its signature (mutable: a key rotation signs it again).
    await put('plugins/a/1.0.0/manifest.json.asc', 'signature');
    const folder = path.join(root, 'plugins', 'a', '1.0.0');

    const first = await namesSeen(folder, () => put('plugins/a/1.0.0/manifest.json', '{"name":"one"}'));
    // Put again (a run that died after writing it, retried): the file is there, so it is replaced as every
    // file is.
    const again = await namesSeen(folder, () => put('plugins/a/1.0.0/manifest.json', '{"name":"two"}'));

    expect(first.length).toBeGreaterThan(0);
    expect(first.every((name) => name === 'manifest.json')).toBe(true);
    expect(again.some((name) => name.endsWith('.tmp'))).toBe(true);
    // Named for this process, as FsStore names its own (fs-temps.ts): a sweep tells a killed writer's.
    for (const temp of again.filter((name) => name.endsWith('.tmp')))
      expect(temp).toMatch(new RegExp(`^\\.${process.pid}\\.[0-9a-f]{12}[0-9a-z]+\\.tmp$`));
    expect(text((await store.get('plugins/a/1.0.0/manifest.json'))?.body)).toBe('{"name":"two"}');
    expect(await store.head('plugins/a/1.0.0/manifest.json')).toMatchObject(
      impliedMetadata('plugins/a/1.0.0/manifest.json'),
    );
    // Bare, as before: what the key implies, no sidecar.
    await expect(
      stat(path.join(root, '.meta', 'plugins', 'a', '1.0.0', 'manifest.json.json')),
    ).rejects.toThrow();
  });

  it('never writes into a file it did not put: one made meanwhile by another is replaced through a temp file', async () => {
    for (let i = 0; i < 200; i++) await store.put(`warm/${i}.json`, encode('warm'), opts);
    // The thread makes the version's folder, so it takes every other name in it for new.
    await put('plugins/b/1.0.0/manifest.json', '{"name":"b"}');
    const folder = path.join(root, 'plugins', 'b', '1.0.0');
    await writeFile(path.join(folder, 'manifest.json.asc'), 'written by another, and longer than the put');

    const names = await namesSeen(folder, () => put('plugins/b/1.0.0/manifest.json.asc', 'the put'));

    expect(names.some((name) => name.endsWith('.tmp'))).toBe(true);
    expect(await readFile(path.join(folder, 'manifest.json.asc'), 'utf8')).toBe('the put');
  });
});

describe('when a folder it must make is on a filesystem that makes none (/proc)', () => {
  it.skipIf(process.platform !== 'linux')(
    'fails the put fast with STORE_IO naming the folder, where recursive mkdir looped for ever',
    async () => {
      // Prepare: a store rooted under /proc, put to once the process's writer thread takes its puts. Its
      // first put on the process's own thread fails there (fs-store.test.ts): only this reaches the thread's
      // own copy of the walk. A folder in the way or one not writable fails alike with or without the walk
      // (ENOTDIR, EACCES, and root ignores modes): only a filesystem answering ENOENT under a folder that
      // exists, /proc, makes Node.js's recursive mkdir loop.
      const dir = `/proc/plugindex-thread-${process.pid}/registry`;

      // Act: in a process of its own, killed after 20 s.
      const outcome = await makeFoldersUnder('store-thread', dir);

      // Assess
      expect(outcome, 'killed after 20 s: it hung').not.toBe('hung');
      expect(outcome).toMatchObject({ name: 'StoreError', code: 'STORE_IO', threadBatches: 1 });
      expect(outcome).toHaveProperty(
        'message',
        expect.stringContaining(`cannot create the folder /proc/plugindex-thread-${process.pid}:`),
      );
    },
  );
});
