import { execFile } from 'node:child_process';
import {
  link,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  symlink,
  truncate,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BARE_BYTES, FsStore, IDENTITY_ETAG_BYTES, SYNC_BYTES } from '../../adapters/fs-store.ts';
import { StoreError } from '../../index-builder/errors.ts';
import { impliedMetadata } from '../../index-builder/layout.ts';
import {
  CACHE_IMMUTABLE,
  CACHE_MUTABLE,
  CACHE_PRIVATE,
  compareUtf8,
  listAll,
  listFolders,
  moveObject,
  type ObjectInfo,
  type Store,
} from '../../index-builder/store.ts';
import { encode, sha256 } from '../support/fixtures.ts';
import { makeFoldersUnder } from '../support/folders-under.ts';
import { MemoryStore } from '../support/memory-store.ts';
import { seededRandom } from '../support/random.ts';
import { expectPutReadsBack } from '../support/stores.ts';
import { chunksOf, collect, patternBytes } from '../support/streams.ts';

const opts = { contentType: 'application/json', cacheControl: 'public, max-age=60' };
const text = (body: Uint8Array | undefined): string => new TextDecoder().decode(body);
/** The ETag FsStore (and MemoryStore) give these bytes. */
const etagFor = (body: string): string => `"${sha256(body).slice(0, 32)}"`;
async function collectFolders(from: Store, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const folder of listFolders(from, prefix)) out.push(folder);
  return out;
}

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
  return (await readdir(dir, { recursive: true })).map(String).sort();
}

describe('when a put has the metadata its key implies', () => {
  const implied = { contentType: 'application/json', cacheControl: CACHE_MUTABLE };
  const sidecarOf = (key: string): string => `${path.join(root, '.meta', ...key.split('/'))}.json`;
  const exists = (file: string): Promise<boolean> =>
    stat(file).then(
      () => true,
      () => false,
    );

  it('writes no sidecar, and reads back the same metadata with the ETag of its bytes', async () => {
    await store.put('plugins/x/index.json', encode('{"a":1}'), implied);
    await store.put('plugins/x/1.0.0/manifest.json', encode('{}'), {
      contentType: 'application/json',
      cacheControl: CACHE_IMMUTABLE,
    });

    expect(await exists(sidecarOf('plugins/x/index.json'))).toBe(false);
    expect(await exists(sidecarOf('plugins/x/1.0.0/manifest.json'))).toBe(false);
    expect(await store.get('plugins/x/index.json')).toMatchObject({ ...implied, etag: etagFor('{"a":1}') });
    expect(await store.head('plugins/x/1.0.0/manifest.json')).toMatchObject({
      cacheControl: CACHE_IMMUTABLE,
    });
  });

  it('keeps a sidecar for other metadata, an encoding, or a body past BARE_BYTES', async () => {
    const large = new Uint8Array(BARE_BYTES + 1).fill(0x20);
    await store.put('other.json', encode('{}'), { ...implied, cacheControl: CACHE_IMMUTABLE });
    await store.put('encoded.json', encode('{}'), { ...implied, contentEncoding: 'gzip' });
    await store.put('large.json', large, implied);

    for (const key of ['other.json', 'encoded.json', 'large.json'])
      expect(await exists(sidecarOf(key))).toBe(true);
    expect(await store.head('other.json')).toMatchObject({ cacheControl: CACHE_IMMUTABLE });
    expect(await store.head('large.json')).toMatchObject({
      ...implied,
      etag: `"${sha256(large).slice(0, 32)}"`,
    });
  });

  it('removes the sidecar a former put left, and serves what the key implies', async () => {
    await store.put('doc.json', encode('{"v":1}'), { ...implied, cacheControl: CACHE_IMMUTABLE });

    await store.put('doc.json', encode('{"v":1}'), implied);

    expect(await exists(sidecarOf('doc.json'))).toBe(false);
    expect(await store.get('doc.json')).toMatchObject({ ...implied, etag: etagFor('{"v":1}') });
  });

  it('leaves a file that holds the bytes as it is, with or without a sidecar', async () => {
    const file = path.join(root, 'plugins', 'x', 'index.json');
    await store.put('plugins/x/index.json', encode('{"a":1}'), implied);
    const bare = (await stat(file)).ino;
    await store.put('plugins/x/index.json', encode('{"a":1}'), implied);
    expect((await stat(file)).ino).toBe(bare);

    // Written with a sidecar (as an older version of the store wrote every file) holding the same bytes and
    // metadata: left as well.
    await store.put('old.json', encode('{}'), { ...implied, cacheControl: CACHE_IMMUTABLE });
    const sidecar = JSON.parse(await readFile(sidecarOf('old.json'), 'utf8'));
    await writeFile(sidecarOf('old.json'), JSON.stringify({ ...sidecar, cacheControl: CACHE_MUTABLE }));
    const old = (await stat(path.join(root, 'old.json'))).ino;
    await store.put('old.json', encode('{}'), implied);
    expect((await stat(path.join(root, 'old.json'))).ino).toBe(old);

    await store.put('plugins/x/index.json', encode('{"a":2}'), implied);
    expect((await stat(file)).ino).not.toBe(bare);
    expect(text((await store.get('plugins/x/index.json'))?.body)).toBe('{"a":2}');
  });
});

describe('when a put records the digest a compressed variant decodes to', () => {
  it.each([
    ['a small body', 1000],
    ['a body past SYNC_BYTES', SYNC_BYTES + 1],
  ])('reads it back with %s, and records another one for the same bytes', async (_, size) => {
    const body = patternBytes(size);
    const variant = { ...opts, contentEncoding: 'br', decodedSha256: sha256('first') };
    await store.put('plugins/a/index.json.br', body, variant);
    expect(await store.head('plugins/a/index.json.br')).toMatchObject({
      contentEncoding: 'br',
      decodedSha256: sha256('first'),
      sha256: sha256(body),
    });
    // The same bytes standing for another document are no put to skip: the record is what changed.
    await store.put('plugins/a/index.json.br', body, { ...variant, decodedSha256: sha256('second') });
    expect((await store.get('plugins/a/index.json.br'))?.decodedSha256).toBe(sha256('second'));
  });

  it('records one known only once the body has ended, streamed or whole', async () => {
    // A variant streamed beside its document's rendering (pipeline/streamed.ts) learns the digest last.
    let ended = false;
    const body = async function* () {
      yield encode('compressed ');
      yield encode('bytes');
      ended = true;
    };
    const afterBody = async () => {
      expect(ended).toBe(true);
      return sha256('the document');
    };
    const later = { ...opts, contentEncoding: 'br', decodedSha256AfterBody: afterBody };
    await store.putStream('index.json.br', body(), later);
    expect(await store.head('index.json.br')).toMatchObject({ decodedSha256: sha256('the document') });
    await store.put('search.json.br', encode('whole'), later);
    expect(await store.head('search.json.br')).toMatchObject({ decodedSha256: sha256('the document') });
  });
});

describe('when moving an upload', () => {
  const tgz = { contentType: 'application/gzip', cacheControl: CACHE_PRIVATE };
  const upload = encode('bundle bytes');
  const moving = { ...tgz, sha256: sha256(upload) };
  const read = { bytes: upload, sha256: sha256(upload), etag: etagFor('bundle bytes') };
  const drop = async (name: string, body: string | Uint8Array): Promise<void> => {
    await mkdir(path.join(root, 'incoming'), { recursive: true });
    await writeFile(path.join(root, 'incoming', name), body);
  };

  it('renames it, with no copy left behind and no sidecar for the metadata its place implies', async () => {
    await drop('a.tgz', upload);
    const before = (await stat(path.join(root, 'incoming/a.tgz'))).ino;

    expect(await store.move('incoming/a.tgz', 'processed/a-1.tgz', moving)).toBe('moved');

    expect((await stat(path.join(root, 'processed/a-1.tgz'))).ino).toBe(before);
    expect(await allFiles(root)).toEqual(['incoming', 'processed', 'processed/a-1.tgz']);
    expect(await store.head('processed/a-1.tgz')).toMatchObject({ ...tgz, etag: etagFor('bundle bytes') });
  });

  it('makes the folder again when it was removed since the store made it', async () => {
    await drop('f.tgz', upload);
    await drop('g.tgz', upload);
    await store.move('incoming/f.tgz', 'processed/f.tgz', moving);
    await rm(path.join(root, 'processed'), { recursive: true });

    expect(await store.move('incoming/g.tgz', 'processed/g.tgz', moving)).toBe('moved');
    expect(text((await store.get('processed/g.tgz'))?.body)).toBe('bundle bytes');
  });

  it('gives the moved file a sidecar for other metadata', async () => {
    await drop('b.tgz', upload);

    await store.move('incoming/b.tgz', 'processed/b.tgz', { ...moving, cacheControl: 'no-cache' });

    expect(await store.get('processed/b.tgz')).toMatchObject({
      cacheControl: 'no-cache',
      etag: etagFor('bundle bytes'),
    });
    expect(await readdir(path.join(root, '.meta/processed'))).toEqual(['b.tgz.json']);
  });

  it('leaves an upload that holds other bytes than were read where it is, and moves nothing', async () => {
    await drop('c.tgz', 'another upload under the same name');

    expect(await store.move('incoming/c.tgz', 'processed/c.tgz', moving)).toBe('changed');
    expect(await store.move('incoming/gone.tgz', 'processed/gone.tgz', moving)).toBe('changed');

    expect(await readFile(path.join(root, 'incoming/c.tgz'), 'utf8')).toBe(
      'another upload under the same name',
    );
    expect(await allFiles(root)).toEqual(['incoming', 'incoming/c.tgz', 'processed']);
  });

  it('writes what was read and keeps the newer upload, through moveObject', async () => {
    await drop('d.tgz', 'newer');

    await moveObject(store, 'incoming/d.tgz', 'processed/d.tgz', read, tgz);

    expect(text((await store.get('processed/d.tgz'))?.body)).toBe('bundle bytes');
    expect(await readFile(path.join(root, 'incoming/d.tgz'), 'utf8')).toBe('newer');
  });

  it.each([
    ['as listed', false],
    ['another file of the same bytes since it was listed', true],
  ])(
    "keeps a sidecar a put wrote at the upload's key after it was listed and read (%s), for the file it renames in",
    async (_, replaced) => {
      await drop('h.tgz', upload);
      await listAll(store, 'incoming/');
      // Replaced between the listing and the read: the move must know the file it read, not the one listed.
      if (replaced) {
        await writeFile(path.join(root, 'incoming', '.h.same'), upload);
        await rename(path.join(root, 'incoming', '.h.same'), path.join(root, 'incoming', 'h.tgz'));
      }
      expect(text((await store.get('incoming/h.tgz'))?.body)).toBe('bundle bytes');
      // A put of a new upload under the same key, half done: its sidecar written, its file not yet renamed in.
      const sidecar = path.join(root, '.meta', 'incoming', 'h.tgz.json');
      await mkdir(path.dirname(sidecar), { recursive: true });
      await writeFile(path.join(root, 'incoming', '.h.next'), 'the next upload');
      const next = await stat(path.join(root, 'incoming', '.h.next'), { bigint: true });
      const metadata = { contentType: 'application/x-next', cacheControl: 'no-store' };
      await writeFile(
        sidecar,
        JSON.stringify({
          ...metadata,
          etag: '"n"',
          size: Number(next.size),
          mtimeNs: `${next.mtimeNs}`,
          ino: `${next.ino}`,
        }),
      );

      expect(await store.move('incoming/h.tgz', 'processed/h.tgz', moving)).toBe('moved');
      await rename(path.join(root, 'incoming', '.h.next'), path.join(root, 'incoming', 'h.tgz'));

      expect(await store.head('incoming/h.tgz')).toMatchObject({ ...metadata, etag: '"n"' });
      expect(text((await store.get('processed/h.tgz'))?.body)).toBe('bundle bytes');
    },
  );

  describe('that this store listed and read', () => {
    /** Bytes this process has read so far, by every call (Linux's count). */
    const bytesRead = async (): Promise<number> =>
      Number(/^rchar: (\d+)$/m.exec(await readFile('/proc/self/io', 'utf8'))?.[1]);
    /** Its modification time is set to `mtime` (whole seconds) before it is listed, when given. */
    const listedAndRead = async (name: string, body: Uint8Array, mtime?: number): Promise<void> => {
      await drop(name, body);
      if (mtime !== undefined) await utimes(path.join(root, 'incoming', name), mtime, mtime);
      await listAll(store, 'incoming/');
      expect((await store.get(`incoming/${name}`))?.body).toEqual(body);
    };

    it.skipIf(process.platform !== 'linux')(
      'moves it, unwritten since, without reading it again',
      async () => {
        const large = patternBytes(900 * 1024); // under the size read by synchronous calls
        await listedAndRead('j.tgz', large);
        const before = (await stat(path.join(root, 'incoming/j.tgz'))).ino;
        const read = await bytesRead();

        expect(await store.move('incoming/j.tgz', 'processed/j.tgz', { ...tgz, sha256: sha256(large) })).toBe(
          'moved',
        );

        // Hashing it again would have read all 900 KiB (and /proc/self/io is a few hundred bytes).
        expect((await bytesRead()) - read).toBeLessThan(64 * 1024);
        expect((await stat(path.join(root, 'processed/j.tgz'))).ino).toBe(before);
        expect(await readdir(path.join(root, 'incoming'))).toEqual([]);
      },
    );

    it.each([
      ['rewritten in place, to other bytes of the same size', false],
      ['rewritten in place, its modification time set back', true],
    ])('leaves it where it is when it was %s', async (_, setBack) => {
      const file = path.join(root, 'incoming/k.tgz');
      // A whole second, which utimes can set back to the nanosecond.
      const then = 1_700_000_000;
      await listedAndRead('k.tgz', upload, then);
      await writeFile(file, 'bundle BYTES'); // the same inode: written in place
      if (setBack) await utimes(file, then, then);
      if (setBack) expect((await stat(file, { bigint: true })).mtimeNs).toBe(BigInt(then) * 1_000_000_000n);

      expect(await store.move('incoming/k.tgz', 'processed/k.tgz', moving)).toBe('changed');

      expect(await readFile(file, 'utf8')).toBe('bundle BYTES');
      expect(await allFiles(root)).toEqual(['incoming', 'incoming/k.tgz', 'processed']);
    });
  });

  it('removes the sidecar of an upload that had one when it was read', async () => {
    await store.put('incoming/i.tgz', upload, { ...tgz, cacheControl: 'no-store' });
    await listAll(store, 'incoming/');
    expect(await store.get('incoming/i.tgz')).toMatchObject({ cacheControl: 'no-store' });

    expect(await store.move('incoming/i.tgz', 'processed/i.tgz', moving)).toBe('moved');

    await expect(stat(path.join(root, '.meta', 'incoming', 'i.tgz.json'))).rejects.toMatchObject({
      code: 'ENOENT',
    });
  });

  it('puts and deletes for a store that cannot move', async () => {
    const memory = new MemoryStore();
    await memory.put('incoming/e.tgz', upload, tgz);

    const { etag } = (await memory.head('incoming/e.tgz')) as ObjectInfo;

    await moveObject(memory, 'incoming/e.tgz', 'processed/e.tgz', { ...read, etag }, tgz);

    expect(await memory.get('incoming/e.tgz')).toBeUndefined();
    expect(text((await memory.get('processed/e.tgz'))?.body)).toBe('bundle bytes');
  });

  it('writes what was read and keeps the newer upload, for a store that cannot move', async () => {
    const memory = new MemoryStore();
    await memory.put('incoming/f.tgz', upload, tgz);
    const { etag } = (await memory.head('incoming/f.tgz')) as ObjectInfo;
    await memory.put('incoming/f.tgz', encode('newer'), tgz);

    await moveObject(memory, 'incoming/f.tgz', 'processed/f.tgz', { ...read, etag }, tgz);

    expect(text((await memory.get('processed/f.tgz'))?.body)).toBe('bundle bytes');
    expect(text((await memory.get('incoming/f.tgz'))?.body)).toBe('newer');
  });
});

describe('when storing objects', () => {
  it.each([
    ['a small file', 4096],
    ['a file past the synchronous reads', 2 * 1024 * 1024],
  ])('reads no object past maxBytes, STORE_TOO_LARGE, and one within it whole: %s', async (_, size) => {
    await store.put('incoming/big.bin', new Uint8Array(size), opts);

    await expect(store.get('incoming/big.bin', { maxBytes: size - 1 })).rejects.toMatchObject({
      name: 'StoreError',
      code: 'STORE_TOO_LARGE',
    });
    expect((await store.get('incoming/big.bin', { maxBytes: size }))?.body.byteLength).toBe(size);
    expect(await store.get('incoming/missing.bin', { maxBytes: 1 })).toBeUndefined();
  });

  it('round-trips bytes and metadata, with a strong SHA-256 ETag', async () => {
    await store.put('a/b/c.json', encode('{"x":1}'), opts);

    const object = await store.get('a/b/c.json');

    expect(text(object?.body)).toBe('{"x":1}');
    expect(object).toMatchObject({
      key: 'a/b/c.json',
      size: 7,
      etag: etagFor('{"x":1}'),
      contentType: 'application/json',
      cacheControl: 'public, max-age=60',
    });
    expect(object?.lastModified).toBeInstanceOf(Date);
    expect({ ...(await store.head('a/b/c.json')), body: object?.body }).toEqual(object);
  });

  it('keeps the metadata in a sidecar under .meta/', async () => {
    await store.put('plugins/x/index.html', encode('<p>'), {
      contentType: 'text/html; charset=utf-8',
      cacheControl: 'no-store',
    });

    const sidecar = JSON.parse(await readFile(path.join(root, '.meta/plugins/x/index.html.json'), 'utf8'));

    expect(sidecar).toMatchObject({
      contentType: 'text/html; charset=utf-8',
      cacheControl: 'no-store',
      etag: etagFor('<p>'),
    });
  });

  it('changes the ETag with the bytes, even at the same size, and keeps it for the same bytes', async () => {
    await store.put('e.json', encode('aaaa'), opts);
    const first = (await store.head('e.json'))?.etag;
    await store.put('e.json', encode('bbbb'), opts);
    const second = (await store.head('e.json'))?.etag;
    await store.put('e.json', encode('aaaa'), opts);
    const third = (await store.get('e.json'))?.etag;

    expect(second).not.toBe(first);
    expect(third).toBe(first);
  });

  it('takes the ETag from a SHA-256 the caller gives instead of hashing the bytes again', async () => {
    const body = encode('{"big":"document"}');
    await store.put('given.json', body, { ...opts, sha256: sha256(body) });
    // A digest that does not match the bytes shows it is taken as given: the pipeline has just hashed them.
    await store.put('trusted.json', body, { ...opts, sha256: 'f'.repeat(64) });

    expect((await store.get('given.json'))?.etag).toBe(etagFor('{"big":"document"}'));
    expect((await store.head('trusted.json'))?.etag).toBe(`"${'f'.repeat(32)}"`);
  });

  it('answers undefined for a missing key, a folder, or a path through a file', async () => {
    await store.put('dir/file', encode('x'), opts);

    expect(await store.get('nope.json')).toBeUndefined();
    expect(await store.head('nope/deeper.json')).toBeUndefined();
    expect(await store.get('dir')).toBeUndefined();
    expect(await store.head('dir')).toBeUndefined();
    expect(await store.get('dir/file/below')).toBeUndefined();
  });

  it('serves a file without a sidecar with the metadata its key implies', async () => {
    await mkdir(path.join(root, 'by-hand'));
    await writeFile(path.join(root, 'by-hand/page.html'), '<h1>hi</h1>');
    await mkdir(path.join(root, 'plugins/x/1.0.0'), { recursive: true });
    await writeFile(path.join(root, 'plugins/x/1.0.0/tool.html'), '<p>');
    await mkdir(path.join(root, 'status'));
    await writeFile(path.join(root, 'status/a.json'), '{}');

    const object = await store.get('by-hand/page.html');

    expect(object).toMatchObject({
      size: 11,
      etag: etagFor('<h1>hi</h1>'),
      contentType: 'text/html; charset=utf-8',
      cacheControl: CACHE_MUTABLE,
    });
    expect((await store.head('by-hand/page.html'))?.etag).toBe(object?.etag);
    // A version's file is immutable, and an artifact opaque bytes whatever its name.
    expect(await store.head('plugins/x/1.0.0/tool.html')).toMatchObject({
      contentType: 'application/octet-stream',
      cacheControl: CACHE_IMMUTABLE,
    });
    expect(await store.head('status/a.json')).toMatchObject({ cacheControl: CACHE_PRIVATE });
  });

  it('recomputes the ETag when the sidecar describes other bytes than the file holds', async () => {
    await store.put('doc.json', encode('{"v":1}'), opts);
    // Same size, different bytes, written behind the store's back (or by a crash between the two renames).
    await writeFile(path.join(root, 'doc.json'), '{"v":2}');

    expect((await store.head('doc.json'))?.etag).toBe(etagFor('{"v":2}'));
    expect((await store.get('doc.json'))?.etag).toBe(etagFor('{"v":2}'));
  });

  it('keeps a Content-Encoding in the sidecar, and drops it once the file is replaced behind its back', async () => {
    await store.put('index.json.gz', encode('compressed'), { ...opts, contentEncoding: 'gzip' });
    await store.put('plain.json', encode('{}'), opts);

    expect(await store.get('index.json.gz')).toMatchObject({
      contentEncoding: 'gzip',
      contentType: 'application/json',
    });
    expect((await store.head('index.json.gz'))?.contentEncoding).toBe('gzip');
    const stream = await store.getStream('index.json.gz');
    stream?.cancel();
    expect(stream?.contentEncoding).toBe('gzip');
    expect((await store.head('plain.json'))?.contentEncoding).toBeUndefined();
    // Bytes written by hand are not the ones the sidecar says are compressed: served as they are.
    await writeFile(path.join(root, 'index.json.gz'), '{"by":"hand"}');
    expect((await store.head('index.json.gz'))?.contentEncoding).toBeUndefined();
  });

  it('treats an unreadable sidecar as none', async () => {
    await store.put('doc.json', encode('{}'), opts);
    await writeFile(path.join(root, '.meta/doc.json.json'), '{"contentType":');

    expect(await store.get('doc.json')).toMatchObject({
      contentType: 'application/json',
      cacheControl: CACHE_MUTABLE,
    });
  });

  it('leaves a file that already holds the bytes and metadata of a put as it is, and replaces it otherwise', async () => {
    const { stat } = await import('node:fs/promises');
    const file = path.join(root, 'plugins', 'x', 'index.json');
    await store.put('plugins/x/index.json', encode('{"a":1}'), opts);
    const first = await stat(file);

    await store.put('plugins/x/index.json', encode('{"a":1}'), opts);
    expect((await stat(file)).ino).toBe(first.ino); // not rewritten

    await store.put('plugins/x/index.json', encode('{"a":1}'), { ...opts, cacheControl: 'no-store' });
    const other = await stat(file);
    expect(other.ino).not.toBe(first.ino);
    expect((await store.head('plugins/x/index.json'))?.cacheControl).toBe('no-store');

    await writeFile(file, '{"a":1}'); // the same bytes, written behind its back: the sidecar no longer describes it
    await store.put('plugins/x/index.json', encode('{"a":1}'), { ...opts, cacheControl: 'no-store' });
    expect((await stat(file)).ino).not.toBe(other.ino);
    expect(await store.get('plugins/x/index.json')).toMatchObject({
      etag: etagFor('{"a":1}'),
      cacheControl: 'no-store',
    });
  });

  it('writes ifMatch only over the object of that ETag, else fails STORE_CONFLICT and leaves it', async () => {
    const json = { contentType: 'application/json', cacheControl: 'no-cache' };
    await store.put('snapshot.json', encode('first'), json);
    const read = (await store.get('snapshot.json'))?.etag as string;
    await store.put('snapshot.json', encode('second'), { ...json, ifMatch: read });
    const large = patternBytes(SYNC_BYTES + 1);

    for (const write of [
      () => store.put('snapshot.json', encode('third'), { ...json, ifMatch: read }),
      () => store.put('snapshot.json', large, { ...json, ifMatch: read }),
      () => store.putStream('snapshot.json', chunksOf(large, 1024), { ...json, ifMatch: read }),
      () => store.put('absent.json', encode('new'), { ...json, ifMatch: read }),
    ]) {
      const error = await write().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StoreError);
      expect(error).toMatchObject({ code: 'STORE_CONFLICT', permanent: false });
    }
    expect(new TextDecoder().decode((await store.get('snapshot.json'))?.body)).toBe('second');
    expect(await store.head('absent.json')).toBeUndefined();
  });

  it('replaces atomically under concurrent puts: one complete body, its own ETag, no temp files', async () => {
    const bodies = Array.from({ length: 20 }, (_, i) => String(i % 10).repeat(1000 + i));

    await Promise.all(bodies.map((body) => store.put('same.json', encode(body), opts)));

    const object = await store.get('same.json');
    expect(bodies).toContain(text(object?.body));
    expect(object?.etag).toBe(etagFor(text(object?.body)));
    expect((await allFiles(root)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('does not follow a symbolic link out of the store', async () => {
    const outside = await mkdtemp(path.join(tmpdir(), 'plugindex-outside-'));
    try {
      await writeFile(path.join(outside, 'secret.txt'), 'outside');
      await symlink(path.join(outside, 'secret.txt'), path.join(root, 'link.txt'));

      expect(await store.get('link.txt')).toBeUndefined();
      expect(await listAll(store, '')).toEqual([]);
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
  });

  it('lists nothing through a folder that is a link out of the store, and a link inside it as its target', async () => {
    const outside = await mkdtemp(path.join(tmpdir(), 'plugindex-outside-'));
    try {
      await writeFile(path.join(outside, 'secret.tgz'), 'outside');
      await symlink(outside, path.join(root, 'incoming'));
      await store.put('plugins/a/index.json', encode('{}'), opts);
      await symlink(path.join(root, 'plugins', 'a'), path.join(root, 'linked'));

      expect(await listAll(store, 'incoming/')).toEqual([]);
      expect(await store.get('incoming/secret.tgz')).toBeUndefined();
      // A folder link the walk starts from, inside the store: its files are the store's.
      expect((await listAll(store, 'linked/')).map((o) => [o.key, o.size])).toEqual([
        ['linked/index.json', 2],
      ]);
      // Below where a walk starts, no link is followed.
      expect((await listAll(store, '')).map((o) => o.key)).toEqual(['plugins/a/index.json']);
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
  });
});

describe("when an upload's folder is made a link out of the store after the listing", () => {
  /**
   * An upload in a folder of `incoming/`, listed (and read, when `read`), and then that folder swapped for a
   * link to one outside the store holding a file of the same name and bytes: the store's own calls are what
   * the test runs, the swap is by whoever may write to `incoming/`.
   */
  async function swapped(read: boolean): Promise<string> {
    await mkdir(path.join(root, 'incoming', 'team'), { recursive: true });
    await writeFile(path.join(root, 'incoming', 'team', 'a.tgz'), 'same bytes');
    await listAll(store, 'incoming/');
    if (read) expect(text((await store.get('incoming/team/a.tgz'))?.body)).toBe('same bytes');
    const outside = await mkdtemp(path.join(tmpdir(), 'plugindex-outside-'));
    await writeFile(path.join(outside, 'a.tgz'), 'same bytes');
    await rename(path.join(root, 'incoming', 'team'), path.join(root, 'aside'));
    await symlink(outside, path.join(root, 'incoming', 'team'));
    return outside;
  }

  it.each([
    ['listed', false],
    ['listed and read', true],
  ])('neither moves nor deletes the file outside (%s)', async (_, read) => {
    const outside = await swapped(read);
    try {
      const options = {
        contentType: 'application/gzip',
        cacheControl: CACHE_PRIVATE,
        sha256: sha256('same bytes'),
      };
      expect(await store.move('incoming/team/a.tgz', 'processed/a.tgz', options)).toBe('changed');
      await store.delete('incoming/team/a.tgz');

      expect(await readFile(path.join(outside, 'a.tgz'), 'utf8')).toBe('same bytes');
      expect(await store.head('processed/a.tgz')).toBeUndefined();
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
  });
});

/** Runs a script of test/support/ in a process of its own (through tsx), from the project's root. */
function supportProcess(
  script: string,
  args: readonly string[],
  timeout?: number,
): Promise<{ stdout: string; stderr: string }> {
  return promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(new URL(`../support/${script}`, import.meta.url)), ...args],
    { cwd: fileURLToPath(new URL('../..', import.meta.url)), ...(timeout ? { timeout } : {}) },
  );
}

describe('when a key names a FIFO', () => {
  it('finds no object, at once, where a blocking open would wait for a writer for ever', async () => {
    await mkdir(path.join(root, 'incoming'));
    await promisify(execFile)('mkfifo', [path.join(root, 'incoming', 'pipe')]);

    // In a process of its own: a blocked open would stop this thread, the test's timeout with it. Killed at
    // 45 s, below that timeout: 15 s once, near what a loaded machine takes to start tsx in a fresh process.
    const { stdout } = await supportProcess('get-key.ts', [root, 'incoming/pipe'], 45_000);

    expect(JSON.parse(stdout)).toEqual({ get: false, head: false, stream: false });
    expect(await listAll(store, 'incoming/')).toEqual([]);
  });
});

describe('when a run is killed while it moves an upload', () => {
  /** Moves incoming/a.tgz in a process killed right before its `n`th call that changes a name. */
  async function movedDying(n: number, read: boolean): Promise<string> {
    const { stdout } = await supportProcess(
      'move-dies.ts',
      [root, String(n)].concat(read ? ['read'] : []),
    ).catch((error: { signal?: string; stdout?: string }) => {
      expect(error.signal).toBe('SIGKILL');
      return { stdout: error.stdout ?? '' };
    });
    return stdout;
  }

  it('moves it again when a run was killed with it at both places, and leaves no third name', async () => {
    await mkdir(path.join(root, 'incoming'));
    await mkdir(path.join(root, 'processed'));
    await writeFile(path.join(root, 'incoming', 'a.tgz'), 'the one upload');
    // Killed after the rename onto its destination, before it let go of the source: two names of one file.
    await link(path.join(root, 'incoming', 'a.tgz'), path.join(root, 'processed', 'a.tgz'));
    await listAll(store, 'incoming/');
    await store.get('incoming/a.tgz');

    const options = {
      contentType: 'application/gzip',
      cacheControl: CACHE_PRIVATE,
      sha256: sha256('the one upload'),
    };
    expect(await store.move('incoming/a.tgz', 'processed/a.tgz', options)).toBe('moved');

    expect(await allFiles(root)).toEqual(['incoming', 'processed', 'processed/a.tgz']);
    expect((await stat(path.join(root, 'processed', 'a.tgz'))).nlink).toBe(1);
  });

  it.each([
    ['listed and read', true],
    ['known by its bytes alone', false],
  ])(
    'leaves it where a batch finds it, whatever call it dies before (%s)',
    async (_, read) => {
      const body = 'the one upload';
      for (let n = 1; ; n++) {
        await rm(path.join(root, 'incoming'), { recursive: true, force: true });
        await rm(path.join(root, 'processed'), { recursive: true, force: true });
        await mkdir(path.join(root, 'incoming'));
        await writeFile(path.join(root, 'incoming', 'a.tgz'), body);

        const finished = await movedDying(n, read);

        // What a batch sees: a listing (temp names are hidden), and the upload there or moved.
        const found = (await listAll(new FsStore(root), '')).map((o) => o.key);
        expect(found.length, `killed before call ${n}: ${found}`).toBeGreaterThan(0);
        for (const key of found) expect(await readFile(path.join(root, key), 'utf8')).toBe(body);
        if (finished) {
          // Not killed: the move made fewer calls than n, and ended with the upload moved.
          expect(JSON.parse(finished)).toMatchObject({ moved: 'moved' });
          expect(found).toEqual(['processed/a.tgz']);
          expect(n).toBeGreaterThan(2);
          break;
        }
      }
    },
    60_000,
  );
});

describe('when moving or deleting an upload only while it is the one read', () => {
  const tgz = { contentType: 'application/gzip', cacheControl: CACHE_PRIVATE };
  // Past the store's 1 MiB pieces: an upload too large to read whole is hashed in them when moved.
  const large = patternBytes(3 * 1024 * 1024 + 5);

  it('moves a large file it never read by its digest, and leaves one that holds other bytes', async () => {
    await mkdir(path.join(root, 'incoming'));
    await writeFile(path.join(root, 'incoming', 'large.tgz'), large);
    await writeFile(path.join(root, 'incoming', 'other.tgz'), large.subarray(1));

    expect(
      await store.move('incoming/large.tgz', 'rejected/large.tgz', { ...tgz, sha256: sha256(large) }),
    ).toBe('moved');
    expect(
      await store.move('incoming/other.tgz', 'rejected/other.tgz', { ...tgz, sha256: sha256(large) }),
    ).toBe('changed');

    expect(sha256(await readFile(path.join(root, 'rejected', 'large.tgz')))).toBe(sha256(large));
    expect(await readdir(path.join(root, 'incoming'))).toEqual(['other.tgz']);
    expect(await readdir(path.join(root, 'rejected'))).toEqual(['large.tgz']);
  });

  it('deletes a file by its ETag read only while it has that ETag', async () => {
    await mkdir(path.join(root, 'incoming'));
    await writeFile(path.join(root, 'incoming', 'a.tgz'), 'first');
    const { etag } = (await store.head('incoming/a.tgz')) as ObjectInfo;
    await writeFile(path.join(root, 'incoming', 'a.tgz'), 'second, under the same name');

    await store.delete('incoming/a.tgz', { ifMatch: etag });
    expect(await readFile(path.join(root, 'incoming', 'a.tgz'), 'utf8')).toBe('second, under the same name');

    await store.delete('incoming/a.tgz', { ifMatch: etagFor('second, under the same name') });
    expect(await store.head('incoming/a.tgz')).toBeUndefined();
  });
});

describe('when reading ahead', () => {
  /** What a get answers, without the lazily hashed ETag's getter: plain values to compare. */
  const plain = (object: Awaited<ReturnType<FsStore['get']>>) =>
    object && { ...object, body: text(object.body) };
  const big = 'x'.repeat(1_100_000); // past the synchronous reads' 1 MiB: read as a publish reads a document

  beforeEach(async () => {
    await store.put('index.json', encode('{"plugins":[]}'), opts); // with a sidecar (its metadata)
    await mkdir(path.join(root, 'falcoctl'));
    await writeFile(path.join(root, 'falcoctl/index.yaml'), big); // by hand: no sidecar, hashed for its ETag
  });

  it('gives a get what was read, with the metadata and ETag a plain read gives, once', async () => {
    const ahead = new FsStore(root);

    expect(await ahead.readAhead(['index.json', 'falcoctl/index.yaml', 'missing.json'], 2_000_000)).toBe(2);
    for (const key of ['index.json', 'falcoctl/index.yaml', 'missing.json'])
      expect(plain(await ahead.get(key))).toEqual(plain(await new FsStore(root).get(key)));
    // Taken by the first get: the next reads the file as it is now.
    await writeFile(path.join(root, 'falcoctl/index.yaml'), 'now');
    expect(text((await ahead.get('falcoctl/index.yaml'))?.body)).toBe('now');
  });

  it('reads nothing when the files come to more than asked', async () => {
    expect(await new FsStore(root).readAhead(['index.json', 'falcoctl/index.yaml'], big.length)).toBe(0);
  });

  it('reads the file again when it was replaced, rewritten in place, or removed since', async () => {
    const ahead = new FsStore(root);
    await store.put('search.json', encode('[1]'), opts);
    await store.put('gone.json', encode('{}'), opts);
    expect(
      await ahead.readAhead(['index.json', 'falcoctl/index.yaml', 'search.json', 'gone.json'], 1e7),
    ).toBe(4);

    await store.put('index.json', encode('{"plugins":[1]}'), opts); // a put renames a new file in
    await writeFile(path.join(root, 'falcoctl/index.yaml'), `${big.slice(1)}y`); // same inode and size
    await writeFile(path.join(root, 'search.json'), '[2]', { flag: 'r+' }); // same inode, size, a new time
    await store.delete('gone.json');

    expect(plain(await ahead.get('index.json'))).toEqual(plain(await store.get('index.json')));
    expect(text((await ahead.get('falcoctl/index.yaml'))?.body).endsWith('y')).toBe(true);
    expect(text((await ahead.get('search.json'))?.body)).toBe('[2]');
    expect(await ahead.get('gone.json')).toBeUndefined();
  });

  it('never reads a file whose last segment is a symbolic link', async () => {
    await symlink(path.join(root, 'index.json'), path.join(root, 'link.json'));
    const ahead = new FsStore(root);

    expect(await ahead.readAhead(['link.json'], 1e6)).toBe(0);
    expect(await ahead.get('link.json')).toBeUndefined();
  });
});

describe('when streaming', () => {
  it('writes a stream in pieces and reads it back as one, with the metadata of head', async () => {
    const bytes = patternBytes(3 * 1024 * 1024 + 17);

    await store.putStream('big/artifact.bin', chunksOf(bytes, 64 * 1024), opts);
    const stream = await store.getStream('big/artifact.bin');

    expect(stream).toBeDefined();
    const { body, cancel: _cancel, ...info } = stream as NonNullable<typeof stream>;
    // By digest: a deep equality over megabytes takes seconds.
    expect(sha256(await collect(body))).toBe(sha256(bytes));
    expect(info).toEqual(await store.head('big/artifact.bin'));
    expect(info).toMatchObject({ size: bytes.byteLength, etag: `"${sha256(bytes).slice(0, 32)}"` });
  });

  it('begins the body at the byte asked for, and says so; at 0 for one past the end', async () => {
    const bytes = patternBytes(1024 * 1024 + 5);
    await store.put('big/resumed.bin', bytes, opts);

    const resumed = await store.getStream('big/resumed.bin', { start: 1000 });
    const past = await store.getStream('big/resumed.bin', { start: bytes.byteLength });

    expect(resumed?.bodyStart).toBe(1000);
    expect(sha256(await collect((resumed as NonNullable<typeof resumed>).body))).toBe(
      sha256(bytes.subarray(1000)),
    );
    expect(past?.bodyStart).toBeUndefined();
    expect((await collect((past as NonNullable<typeof past>).body)).byteLength).toBe(bytes.byteLength);
  });

  it('leaves the old object, and no temp file, when the stream fails midway', async () => {
    await store.put('doc.bin', encode('old'), opts);

    const error = await store
      .putStream('doc.bin', chunksOf(patternBytes(256 * 1024), 16 * 1024, 128 * 1024), opts)
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(StoreError);
    expect(error).toMatchObject({ code: 'STORE_IO', cause: expect.any(Error) });
    expect(text((await store.get('doc.bin'))?.body)).toBe('old');
    expect((await allFiles(root)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('hashes a file without a sidecar for its ETag, and answers undefined for a missing key', async () => {
    await writeFile(path.join(root, 'by-hand.txt'), 'hello');

    const stream = await store.getStream('by-hand.txt');

    expect(stream?.etag).toBe(etagFor('hello'));
    expect(text(await collect((stream as NonNullable<typeof stream>).body))).toBe('hello');
    expect(await store.getStream('missing.txt')).toBeUndefined();
  });
});

describe('when a file no sidecar describes is past IDENTITY_ETAG_BYTES', () => {
  /** Bytes this process has read so far, by every call (Linux's count). */
  const bytesRead = async (): Promise<number> =>
    Number(/^rchar: (\d+)$/m.exec(await readFile('/proc/self/io', 'utf8'))?.[1]);
  /** A file of `size` bytes renamed in at `key` (no sidecar: dropped by hand), sparse: made at once. */
  const dropSparse = async (key: string, size: number): Promise<void> => {
    const file = path.join(root, ...key.split('/'));
    const temp = path.join(path.dirname(file), '.drop.tmp');
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(temp, '');
    await truncate(temp, size);
    await rename(temp, file);
  };
  /** Its ETag as a head, a listing and a stream give it (the stream cancelled unread). */
  const etagsOf = async (key: string): Promise<string[]> => {
    const listed = (await listAll(store, key)).find((info) => info.key === key);
    const stream = await store.getStream(key);
    stream?.cancel();
    return [(await store.head(key))?.etag, listed?.etag, stream?.etag].map(String);
  };

  it.skipIf(process.platform !== 'linux')(
    'names it without reading it: a head, a listing and a stream give one ETag of its identity',
    async () => {
      // A sparse gigabyte in incoming/: hashed for its ETag, it was read whole by each of these.
      await dropSparse('incoming/huge.tgz', 1024 ** 3);
      const before = await bytesRead();

      const etags = await etagsOf('incoming/huge.tgz');

      expect((await bytesRead()) - before).toBeLessThan(1024 * 1024);
      expect(new Set(etags).size).toBe(1);
      expect(etags[0]).toMatch(/^"[0-9a-f]{32}"$/);
    },
  );

  it('gives the file read the same ETag, and another upload under its key another, whatever its bytes', async () => {
    const size = IDENTITY_ETAG_BYTES + 1;
    const key = 'incoming/big.tgz';
    const file = path.join(root, 'incoming', 'big.tgz');
    await dropSparse(key, size);
    const first = (await store.get(key))?.etag;
    expect(await etagsOf(key)).toEqual([first, first, first]);

    // The same bytes renamed in again (another inode), as a publisher re-uploading them would.
    await dropSparse(key, size);
    const renamed = (await store.head(key))?.etag;
    // Written in place at the same size, to other bytes. Its modification time set back first, so the write
    // changes it even within one tick of the kernel's clock.
    await utimes(file, 1_700_000_000, 1_700_000_000);
    const setBack = (await store.head(key))?.etag;
    await writeFile(file, new Uint8Array(size).fill(1));
    const rewritten = (await store.head(key))?.etag;

    expect(new Set([first, renamed, setBack, rewritten]).size).toBe(4);
    // Deleted by the ETag read only while it has it (moveObject's delete, for a store that cannot move).
    await store.delete(key, { ifMatch: setBack as string });
    expect(await store.head(key)).toMatchObject({ etag: rewritten, size });
    await store.delete(key, { ifMatch: rewritten as string });
    expect(await store.head(key)).toBeUndefined();
  });

  it('keeps the ETag of its bytes for a file within it, and for one a sidecar describes', async () => {
    const within = new Uint8Array(IDENTITY_ETAG_BYTES).fill(3);
    const past = new Uint8Array(IDENTITY_ETAG_BYTES + 1).fill(4);
    await mkdir(path.join(root, 'by-hand'));
    await writeFile(path.join(root, 'by-hand', 'within.bin'), within);
    await store.put('written.bin', past, opts);

    expect((await store.head('by-hand/within.bin'))?.etag).toBe(`"${sha256(within).slice(0, 32)}"`);
    expect((await store.head('written.bin'))?.etag).toBe(`"${sha256(past).slice(0, 32)}"`);
  });
});

describe('when a key is unsafe', () => {
  const unsafe = ['../escape', '/abs', 'a/../b', 'a/./b', 'a//b', 'a/', '.meta/x', 'a/.hidden', 'a\0b', ''];

  it.each(unsafe)('rejects %j for every operation', async (key) => {
    await expect(store.put(key, encode('x'), opts)).rejects.toBeInstanceOf(StoreError);
    await expect(store.put(key, encode('x'), opts)).rejects.toMatchObject({ code: 'STORE_INVALID_KEY', key });
    await expect(store.get(key)).rejects.toMatchObject({ code: 'STORE_INVALID_KEY' });
    await expect(store.head(key)).rejects.toMatchObject({ code: 'STORE_INVALID_KEY' });
    await expect(store.delete(key)).rejects.toMatchObject({ code: 'STORE_INVALID_KEY' });
  });

  // Names an upload may have: read, moved and deleted like any file, but never written by the store.
  it.each(['a\\b', 'my plugin (1).tgz', 'plügin.tgz', 'nul.tgz', 'x+y', 'tool.'])(
    'writes no %j, but reads it when it is there',
    async (key) => {
      await expect(store.put(key, encode('x'), opts)).rejects.toMatchObject({
        code: 'STORE_INVALID_KEY',
        key,
      });
      expect(await store.get(key)).toBeUndefined();
      await writeFile(path.join(root, key), 'dropped');
      expect(new TextDecoder().decode((await store.get(key))?.body)).toBe('dropped');
      expect((await listAll(store, '')).map((o) => o.key)).toEqual([key]);
      await store.delete(key);
      expect(await allFiles(root)).toEqual([]);
    },
  );

  it('writes nothing for a refused key', async () => {
    await expect(store.put('../escape', encode('x'), opts)).rejects.toBeInstanceOf(StoreError);

    expect(await allFiles(root)).toEqual([]);
    expect(await readdir(path.dirname(root))).not.toContain('escape');
  });
});

describe('when the filesystem fails', () => {
  it('says STORE_REFUSED for what would fail again, and keeps the cause', async () => {
    await store.put('file', encode('x'), opts);

    const put = store.put('file/below.json', encode('x'), opts);

    await expect(put).rejects.toBeInstanceOf(StoreError);
    await expect(put).rejects.toMatchObject({
      code: 'STORE_REFUSED',
      permanent: true,
      key: 'file/below.json',
      cause: expect.objectContaining({ code: expect.stringMatching(/^E(NOTDIR|EXIST)$/) }),
    });
  });
});

describe('when listing', () => {
  it("gives each file its sidecar's metadata, and a file without one what its key implies", async () => {
    await store.put('plugins/a/notes.txt', encode('x'), {
      contentType: 'text/plain',
      cacheControl: 'no-store',
    });
    await store.put('plugins/a/index.json', encode('{}'), impliedMetadata('plugins/a/index.json'));
    await store.put('plugins/a-b/x.json', encode('x'), { ...opts, contentEncoding: 'gzip' });
    await store.put('incoming/upload.tgz', encode('x'), impliedMetadata('incoming/upload.tgz'));
    const metadataOf = async (prefix: string) => {
      const listed = [];
      for await (const { key, contentType, cacheControl, contentEncoding } of store.list(prefix))
        listed.push({ key, contentType, cacheControl, ...(contentEncoding ? { contentEncoding } : {}) });
      return listed;
    };

    expect(await metadataOf('plugins/a')).toEqual([
      { key: 'plugins/a-b/x.json', ...opts, contentEncoding: 'gzip' },
      { key: 'plugins/a/index.json', ...impliedMetadata('plugins/a/index.json') },
      { key: 'plugins/a/notes.txt', contentType: 'text/plain', cacheControl: 'no-store' },
    ]);
    expect(await metadataOf('')).toEqual([
      { key: 'incoming/upload.tgz', ...impliedMetadata('incoming/upload.tgz') },
      ...(await metadataOf('plugins/a')),
    ]);
  });

  it('lists by prefix in key order, even when the prefix ends mid-name', async () => {
    for (const key of ['plugins/b/index.json', 'plugins/a-b/x', 'plugins/a/index.json', 'other.json', 'z'])
      await store.put(key, encode('x'), opts);

    expect((await listAll(store, 'plugins/a')).map((o) => o.key)).toEqual([
      'plugins/a-b/x',
      'plugins/a/index.json',
    ]);
    expect((await listAll(store, 'plugins/')).map((o) => o.key)).toEqual([
      'plugins/a-b/x',
      'plugins/a/index.json',
      'plugins/b/index.json',
    ]);
    expect((await listAll(store, '')).map((o) => o.key)).toEqual([
      'other.json',
      'plugins/a-b/x',
      'plugins/a/index.json',
      'plugins/b/index.json',
      'z',
    ]);
    expect(await listAll(store, 'missing/')).toEqual([]);
    expect(await listAll(store, 'plugins/a/index.json/')).toEqual([]);
  });

  it('lists names in UTF-8 byte order, as S3 does, where UTF-16 order differs', async () => {
    // U+FF21 is EF BC A1 in UTF-8, U+1F600 is F0 9F 98 80; in UTF-16 the second (D83D DE00) comes first.
    const names = ['\u{1F600}', '\uFF21', 'b', '\u00E9', 'a\u{10000}', 'a\uFFFD'];
    await mkdir(path.join(root, 'k'), { recursive: true });
    for (const name of names) await writeFile(path.join(root, 'k', name), name);

    expect((await listAll(store, 'k/')).map((o) => o.key)).toEqual([
      'k/a\uFFFD',
      'k/a\u{10000}',
      'k/b',
      'k/\u00E9',
      'k/\uFF21',
      'k/\u{1F600}',
    ]);
  });

  it('orders keys as Buffer.compare orders their UTF-8 bytes', () => {
    // By code point: BMP units below the surrogates and above them, and astral ones.
    const pieces = [...'az/-~\u00E9\u07FF\u0800\uD7FF\uE000\uFF21\uFFFD\u{10000}\u{1F600}\u{10FFFF}'];
    const next = seededRandom(7);
    const word = () => Array.from({ length: next(5) }, () => pieces[next(pieces.length)]).join('');
    const pairs = new Set<string>();
    for (let i = 0; i < 20_000; i++) {
      const a = word();
      const b = word();
      pairs.add(`${a}\0${b}`);
      expect([a, b, Math.sign(compareUtf8(a, b))]).toEqual([
        a,
        b,
        Math.sign(Buffer.compare(Buffer.from(a), Buffer.from(b))),
      ]);
    }
    // Over many pairs, not a few repeated (a generator that lost its low bits gave 2,108 in all).
    expect(pairs.size, 'distinct pairs').toBeGreaterThan(12_000);
  });

  it('reads a listed file as it is when read: gone, replaced, or made a link since the listing', async () => {
    for (const name of ['gone', 'replaced', 'linked', 'kept'])
      await store.put(`incoming/${name}.tgz`, encode(name), opts);
    await writeFile(path.join(root, 'outside.txt'), 'outside');
    expect((await listAll(store, 'incoming/')).map((o) => o.key)).toHaveLength(4);

    await rm(path.join(root, 'incoming', 'gone.tgz'));
    await writeFile(path.join(root, 'incoming', 'replaced.tgz'), 'new bytes');
    await rm(path.join(root, 'incoming', 'linked.tgz'));
    await symlink(path.join(root, 'outside.txt'), path.join(root, 'incoming', 'linked.tgz'));

    expect(await store.get('incoming/gone.tgz')).toBeUndefined();
    expect(text((await store.get('incoming/replaced.tgz'))?.body)).toBe('new bytes');
    expect(await store.get('incoming/linked.tgz')).toBeUndefined();
    expect(text((await store.get('incoming/kept.tgz'))?.body)).toBe('kept');
    // Read once already: a second read asks first, as any read does.
    await rm(path.join(root, 'incoming', 'kept.tgz'));
    expect(await store.get('incoming/kept.tgz')).toBeUndefined();
  });

  it('reads no listed upload through a folder made a link out of the store since the listing', async () => {
    await mkdir(path.join(root, 'incoming'));
    await writeFile(path.join(root, 'incoming', 'a.tgz'), 'listed a');
    await writeFile(path.join(root, 'incoming', 'b.tgz'), 'listed b');
    expect((await listAll(store, 'incoming/')).map((o) => o.key)).toEqual([
      'incoming/a.tgz',
      'incoming/b.tgz',
    ]);
    const outside = await mkdtemp(path.join(tmpdir(), 'plugindex-outside-'));
    try {
      await writeFile(path.join(outside, 'a.tgz'), 'outside a');
      await rename(path.join(root, 'incoming'), path.join(root, 'aside'));
      await symlink(outside, path.join(root, 'incoming'));

      expect(await store.get('incoming/a.tgz')).toBeUndefined();

      // The folder put back: the very file listed, unchanged, reads as it was.
      await rm(path.join(root, 'incoming'));
      await rename(path.join(root, 'aside'), path.join(root, 'incoming'));
      expect(text((await store.get('incoming/b.tgz'))?.body)).toBe('listed b');
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
  });

  it('reads the metadata of a listed file that a put replaced since the listing', async () => {
    await mkdir(path.join(root, 'incoming'));
    await writeFile(path.join(root, 'incoming', 'a.tgz'), 'first');
    await listAll(store, 'incoming/');

    await expectPutReadsBack(store, 'incoming/a.tgz', 'second', {
      contentType: 'application/x-second',
      cacheControl: 'no-store',
    });
  });

  it('yields each object with its metadata', async () => {
    await store.put('plugins/a/index.html', encode('<p>'), {
      contentType: 'text/html',
      cacheControl: 'no-store',
    });

    expect(await listAll(store, 'plugins/')).toEqual([
      expect.objectContaining({
        key: 'plugins/a/index.html',
        size: 3,
        etag: etagFor('<p>'),
        contentType: 'text/html',
        cacheControl: 'no-store',
      }),
    ]);
  });

  it('gives a listed file without a sidecar the ETag of its bytes', async () => {
    await mkdir(path.join(root, 'incoming'));
    await writeFile(path.join(root, 'incoming/u.tgz'), 'upload');
    await store.put('plugins/x/index.json', encode('{}'), {
      contentType: 'application/json',
      cacheControl: CACHE_MUTABLE,
    });

    const listed = [...(await listAll(store, 'incoming/')), ...(await listAll(store, 'plugins/'))];

    expect(listed).toEqual([
      expect.objectContaining({
        key: 'incoming/u.tgz',
        size: 6,
        etag: etagFor('upload'),
        cacheControl: CACHE_PRIVATE,
      }),
      expect.objectContaining({ key: 'plugins/x/index.json', size: 2, etag: etagFor('{}') }),
    ]);
  });

  it('skips the sidecar tree, temp files and other dot-files', async () => {
    await store.put('a.json', encode('x'), opts);
    await writeFile(path.join(root, '.lock'), '');
    await writeFile(path.join(root, '.a.json.123.abc.tmp'), 'half');

    expect((await listAll(store, '')).map((o) => o.key)).toEqual(['a.json']);
    expect(await listAll(store, '.meta/')).toEqual([]);
    expect(await listAll(store, '.')).toEqual([]);
  });
});

describe('when listing folders', () => {
  it('names the folders next below a prefix in key order, as the listing of every key would', async () => {
    for (const key of [
      'plugins/b/index.json',
      'plugins/a-b/x',
      'plugins/a/1.0.0/manifest.json',
      'plugins/a/index.json',
      'other.json',
    ])
      await store.put(key, encode('x'), opts);

    expect(await collectFolders(store, 'plugins/')).toEqual(['plugins/a-b/', 'plugins/a/', 'plugins/b/']);
    expect(await collectFolders(store, 'plugins/a')).toEqual(['plugins/a-b/', 'plugins/a/']);
    expect(await collectFolders(store, 'plugins/a/')).toEqual(['plugins/a/1.0.0/']);
    expect(await collectFolders(store, '')).toEqual(['plugins/']);
    expect(await collectFolders(store, 'missing/')).toEqual([]);
    expect(await collectFolders(store, 'plugins/a/index.json/')).toEqual([]);
    // The same folders as the store's keys give.
    const keysOnly = { list: (prefix: string) => store.list(prefix) } as unknown as Store;
    expect(await collectFolders(keysOnly, 'plugins/')).toEqual(await collectFolders(store, 'plugins/'));
  });

  it('skips the sidecar tree, other dot-folders, files and links to folders', async () => {
    await store.put('plugins/a/index.json', encode('x'), opts);
    await mkdir(path.join(root, 'plugins', '.upload-in-progress'));
    await writeFile(path.join(root, 'plugins', 'loose.json'), 'x');
    await symlink(path.join(root, 'plugins', 'a'), path.join(root, 'plugins', 'linked'));

    expect(await collectFolders(store, 'plugins/')).toEqual(['plugins/a/']);
    expect(await collectFolders(store, '')).toEqual(['plugins/']);
  });
});

describe('when deleting', () => {
  it('removes the object and its sidecar, and prunes emptied folders below the top level', async () => {
    await store.put('incoming/deep/er/x.tgz', encode('x'), opts);
    await store.put('incoming/kept/y.tgz', encode('y'), opts);

    await store.delete('incoming/deep/er/x.tgz');

    expect(await store.get('incoming/deep/er/x.tgz')).toBeUndefined();
    expect(await allFiles(root)).toEqual([
      '.meta',
      '.meta/incoming',
      '.meta/incoming/kept',
      '.meta/incoming/kept/y.tgz.json',
      'incoming',
      'incoming/kept',
      'incoming/kept/y.tgz',
    ]);
  });

  it('keeps a top-level folder it empties', async () => {
    await store.put('incoming/x.tgz', encode('x'), opts);

    await store.delete('incoming/x.tgz');

    expect(await allFiles(root)).toEqual(expect.arrayContaining(['incoming']));
    expect(await listAll(store, '')).toEqual([]);
  });

  it('accepts a key that is not there', async () => {
    await expect(store.delete('incoming/never-was.tgz')).resolves.toBeUndefined();
  });

  it('refuses for good a key where a folder stands (STORE_REFUSED), as a put there is', async () => {
    // Node's rm gives EISDIR as a SystemError (ERR_FS_EISDIR, its errno code under `info`): read as a passing
    // failure (STORE_IO), it failed every batch that deleted there, retried for ever.
    await mkdir(path.join(root, 'plugins', 'p', 'index.html'), { recursive: true });

    const refusal = store.delete('plugins/p/index.html');

    await expect(refusal).rejects.toBeInstanceOf(StoreError);
    await expect(refusal).rejects.toMatchObject({ code: 'STORE_REFUSED', key: 'plugins/p/index.html' });
  });

  it('writes again into a folder it made once a delete, or another process, removed it', async () => {
    await store.put('plugins/a/b/x.json', encode('1'), opts);
    await store.delete('plugins/a/b/x.json'); // prunes plugins/a/b and plugins/a
    await store.put('plugins/a/b/y.json', encode('2'), opts);
    await rm(path.join(root, 'plugins', 'a'), { recursive: true }); // behind its back
    await rm(path.join(root, '.meta', 'plugins', 'a'), { recursive: true });
    await store.put('plugins/a/b/z.json', encode('3'), opts);
    await rm(path.join(root, 'plugins', 'a'), { recursive: true });
    // A new folder below ones it remembers and that are gone: they are made again too.
    await store.put('plugins/a/b/c/d/w.json', encode('4'), opts);

    expect(text((await store.get('plugins/a/b/c/d/w.json'))?.body)).toBe('4');
    expect((await listAll(store, 'plugins/')).map((o) => o.key)).toEqual(['plugins/a/b/c/d/w.json']);
  });
});

describe('when a body is larger than the store reads and writes at once', () => {
  it('round-trips it with the same metadata and ETag as a small one', async () => {
    const large = patternBytes(3 * 1024 * 1024 + 5);
    const small = patternBytes(1000);
    await store.put('big.bin', large, opts);
    await store.put('small.bin', small, opts);

    for (const [key, body] of [
      ['big.bin', large],
      ['small.bin', small],
    ] as const) {
      const { body: read, ...info } = (await store.get(key)) ?? { body: undefined };
      // Compared as bytes: a deep equality over megabytes of elements takes the test runner a minute.
      expect(read && Buffer.compare(read, body)).toBe(0);
      expect(info).toMatchObject({ size: body.byteLength, etag: `"${sha256(body).slice(0, 32)}"`, ...opts });
      expect(await store.head(key)).toEqual(info);
    }
  });
});

describe('when its root is on a filesystem that makes no folders (/proc)', () => {
  it.skipIf(process.platform !== 'linux')(
    'fails a put fast with STORE_IO naming the folder, where it hung in Node.js recursive mkdir',
    async () => {
      const dir = `/proc/plugindex-store-${process.pid}/registry`;
      const outcome = await makeFoldersUnder('store', dir);
      expect(outcome, 'killed after 20 s: it hung').not.toBe('hung');
      expect(outcome).toMatchObject({ name: 'StoreError', code: 'STORE_IO' });
      expect(outcome).toHaveProperty(
        'message',
        expect.stringContaining(`cannot create the folder /proc/plugindex-store-${process.pid}:`),
      );
    },
  );
});
