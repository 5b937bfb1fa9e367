/**
 * Taking a batch (pipeline/intake.ts) as the pipeline does: each bundle's inspection begins as soon as it is
 * read, while the rest are read, and reading lets the event loop turn, so what is handed on meanwhile (to
 * inspector threads, by messages sent once a turn) goes out before the last upload is read.
 */
import { mkdir, mkdtemp, readFile, rename, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FsStore } from '../../../adapters/fs-store.ts';
import { StoreError } from '../../../index-builder/errors.ts';
import { unreadableSubmissionId } from '../../../index-builder/layout.ts';
import { processSubmissions } from '../../../index-builder/pipeline/index.ts';
import type { BundleInspector } from '../../../index-builder/pipeline/inspect.ts';
import { planBatch, readBatch } from '../../../index-builder/pipeline/intake.ts';
import type { Store } from '../../../index-builder/store.ts';
import { makeBundle, makeRegistry, type TestRegistry, validManifest } from '../../support/fixtures.ts';
import type { MemoryStore } from '../../support/memory-store.ts';
import { realStores, withMethod } from '../../support/stores.ts';

/** `store`, with `onRead` told of every upload read from incoming/, once it is read. */
function watchedIntake(store: Store, onRead: () => void): Store {
  return withMethod(store, 'get', (get) => async (key) => {
    const object = await get(key);
    if (key.startsWith('incoming/')) onRead();
    return object;
  });
}

/**
 * `store`, with the key of every upload in incoming/ whose ETag is read, from a listing or a head, put in
 * `asked`: the filesystem store hashes an object's bytes for it, when first read.
 */
function etagWatched(store: Store, asked: string[]): Store {
  const watched = <T extends object>(key: string, info: T): T =>
    new Proxy(info, {
      get(target, property) {
        if (property === 'etag' && key.startsWith('incoming/')) asked.push(key);
        return Reflect.get(target, property, target);
      },
    });
  const listing = withMethod(
    store,
    'list',
    (list) =>
      async function* (prefix: string) {
        for await (const info of list(prefix)) yield watched(info.key, info);
      },
  );
  return withMethod(listing, 'head', (head) => async (key) => {
    const info = await head(key);
    return info && watched(key, info);
  });
}

/** Holds the thread for 2 ms, as a local store's synchronous read does. */
function holdThread(): void {
  const until = performance.now() + 2;
  while (performance.now() < until);
}

async function bundles(count: number): Promise<Uint8Array[]> {
  return Promise.all(
    Array.from({ length: count }, (_, i) => makeBundle({ manifest: validManifest({ name: `read-${i}` }) })),
  );
}

/**
 * A registry with `count` bundles waiting, and its intake as one whose reads of them are counted as they
 * begin (`read.begun`) and end (`read.count`); every read past the first `ahead` waits until `open()` (or,
 * should the batch read them all before anything opens the gate, 30 s, half the test's timeout: the test
 * then fails on its counts, never hangs). So whether the batch judges while the rest are still read does
 * not turn on how fast this machine runs, as reads that each held the thread 2 ms did: under load the
 * first judging came after the 24th read. The fallback was 1 s once, and CI's load outlasted that too
 * before the first bundle's judging read its plugin document.
 */
async function slowlyRead(count: number, ahead = 8) {
  const registry = await makeRegistry();
  const keys = await registry.submit(...(await bundles(count)));
  const read = { begun: 0, count: 0 };
  let open = () => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
    setTimeout(resolve, 30_000).unref();
  });
  const intake = withMethod(registry.intake, 'get', (get) => async (key) => {
    if (!key.startsWith('incoming/')) return get(key);
    read.begun += 1;
    if (read.begun > ahead) await opened;
    const object = await get(key);
    read.count += 1;
    return object;
  });
  return { registry, keys, intake, read, open };
}

describe('when a batch is taken', () => {
  it('begins inspecting each bundle as soon as it is read, before the rest are read', async () => {
    const registry = await makeRegistry();
    // More than are read at once (8): the first are inspected while the last are still to be read.
    const keys = await registry.submit(...(await bundles(12)));
    let reads = 0;
    const readsAtInspection: number[] = [];
    const told: number[] = [];
    const inspector: BundleInspector = {
      begin(_basis, expected, here) {
        told.push(expected);
        return {
          concurrency: 64,
          inspect(bytes) {
            readsAtInspection.push(reads);
            return here(bytes);
          },
          end() {},
        };
      },
    };
    const intake = watchedIntake(registry.intake, () => (reads += 1));

    const result = await processSubmissions({ ...registry.context, intake, inspector }, keys);

    expect(result.outcomes.map((o) => o.status)).toEqual(Array(12).fill('accepted'));
    expect(told).toEqual([12]);
    expect(readsAtInspection).toHaveLength(12);
    expect(readsAtInspection[0]).toBeLessThan(12);
  });

  it('judges each bundle, and writes its version, while the rest are still read', async () => {
    const { registry, keys, intake, read, open } = await slowlyRead(24);
    const readsAtFirstManifest: number[] = [];
    const site = withMethod(registry.site, 'put', (put) => async (key, body, options) => {
      if (key.endsWith('/manifest.json') && readsAtFirstManifest.length === 0) {
        readsAtFirstManifest.push(read.count);
        open();
      }
      return put(key, body, options);
    });

    const result = await processSubmissions({ ...registry.context, intake, site }, keys);

    expect(result.outcomes.map((o) => o.status)).toEqual(Array(24).fill('accepted'));
    expect(readsAtFirstManifest).toHaveLength(1);
    expect(readsAtFirstManifest[0]).toBeLessThan(24);
  });

  it('fails the batch when an upload cannot be read, reading no further, and keeps every upload', async () => {
    const registry = await makeRegistry();
    const keys = await registry.submit(...(await bundles(24)));
    let reads = 0;
    const intake = withMethod(registry.intake, 'get', (get) => async (key) => {
      if (key.startsWith('incoming/') && ++reads === 10)
        throw new StoreError('STORE_IO', key, 'injected failure');
      return get(key);
    });

    const failed = await processSubmissions({ ...registry.context, intake }, keys).catch((error) => error);
    const readsAtFailure = reads;
    await new Promise((resolve) => setTimeout(resolve, 20));

    expect(failed).toBeInstanceOf(StoreError);
    expect(failed).toMatchObject({ code: 'STORE_IO' });
    // Those in flight when it failed finish; none is begun after.
    expect(readsAtFailure).toBeLessThan(24);
    expect(reads).toBe(readsAtFailure);
    expect(keys.every((key) => registry.intake.objects.has(key))).toBe(true);
    expect([...registry.intake.objects.keys()].filter((k) => k.startsWith('status/'))).toEqual([]);
  });

  it('fails the batch when judging meets a storage error, and reads no further uploads', async () => {
    const { registry, keys, intake, read, open } = await slowlyRead(24);
    let begunAtFailure = -1;
    let failedReads = 0;
    const site = withMethod(registry.site, 'get', (get) => async (key) => {
      if (key === 'plugins/read-0/index.json') {
        // Read twice: ahead of its judging, as soon as its bundle is inspected (a failure there is passed
        // over, and forgotten), then where it is judged, which fails the batch. Opened at the first, the
        // gate let every upload be read before the second on a loaded machine (24 begun, not fewer).
        failedReads += 1;
        begunAtFailure = read.begun;
        if (failedReads === 2) open();
        throw new StoreError('STORE_IO', key, 'injected failure');
      }
      return get(key);
    });

    const failed = await processSubmissions({ ...registry.context, intake, site }, keys).catch(
      (error) => error,
    );
    await new Promise((resolve) => setTimeout(resolve, 20));

    expect(failed).toBeInstanceOf(StoreError);
    expect(failed).toMatchObject({ code: 'STORE_IO', message: expect.stringContaining('injected failure') });
    expect(failedReads).toBe(2);
    // Judged while the rest waited to be read; those begun then finish, and none is begun after.
    expect(begunAtFailure).toBeGreaterThan(0);
    expect(begunAtFailure).toBeLessThan(24);
    expect(read.begun).toBe(begunAtFailure);
    expect(read.count).toBe(read.begun);
    expect(keys.every((key) => registry.intake.objects.has(key))).toBe(true);
  });

  it('lets the event loop turn while it reads', async () => {
    const registry = await makeRegistry();
    const keys = await registry.submit(...(await bundles(12)));
    let reads = 0;
    let readsAtTurn: number | undefined;
    const intake = watchedIntake(registry.intake, () => {
      if (reads++ === 0) setImmediate(() => (readsAtTurn = reads));
      holdThread(); // 12 reads: 24 ms
    });
    const ctx = { ...registry.context, intake };

    const uploads = await readBatch(ctx, await planBatch(ctx, keys));

    expect(uploads.map((u) => u.key)).toEqual(keys);
    expect(readsAtTurn).toBeGreaterThan(0);
    expect(readsAtTurn).toBeLessThan(12);
  });

  it("reads no upload's ETag but to name one judged unread: the filesystem store hashes the bytes for it", async () => {
    // Read as each listed upload was planned, it hashed all 10,000 of an import once more than their reads.
    const registry = await makeRegistry();
    const names = ['e-1', 'e-2', 'e-3'];
    const keys = await registry.submit(
      ...(await Promise.all(names.map((name) => makeBundle({ manifest: validManifest({ name }) })))),
    );
    const asked: string[] = [];
    const intake = etagWatched(registry.intake, asked);

    const named = await planBatch({ ...registry.context, intake }, keys);
    await readBatch({ ...registry.context, intake }, named);
    const result = await processSubmissions({ ...registry.context, intake });

    expect(named.taken.map((t) => t.key)).toEqual(keys);
    expect(result.outcomes.map((o) => o.status)).toEqual(['accepted', 'accepted', 'accepted']);
    expect(asked).toEqual([]);
  });
});

/** Gives the object at `key` another modification time, as a copy that keeps times (or a slow one) leaves. */
function modifiedAt(store: MemoryStore, key: string, time: number): void {
  const object = store.objects.get(key);
  if (object) store.objects.set(key, { ...object, lastModified: new Date(time) });
}

describe('when an upload arrives as a batch lists incoming/', () => {
  it('leaves one modified within settledForMs for a later batch, and takes it once it is still', async () => {
    const registry = await makeRegistry();
    const [older] = await registry.submit(await makeBundle());
    // The first upload settled long ago; the second was written just now (a copy still under way).
    modifiedAt(registry.intake, older as string, Date.now() - 60_000);
    const [recent] = await registry.submit(
      await makeBundle({ manifest: validManifest({ version: '2.0.0' }) }),
    );

    const first = await processSubmissions({ ...registry.context, settledForMs: 10_000 });

    expect(first.outcomes.map((o) => [o.submission, o.status])).toEqual([[older, 'accepted']]);
    expect(first.leftInIncoming).toBe(1);
    expect(registry.intake.objects.has(recent as string)).toBe(true);
    const later = await processSubmissions({ ...registry.context, settledForMs: 0 });
    expect(later.outcomes.map((o) => [o.submission, o.status])).toEqual([[recent, 'accepted']]);
  });

  it('takes one whose time is ahead of the clock (set by hand, as an archive keeps it): no write under way', async () => {
    const registry = await makeRegistry();
    const [ahead] = await registry.submit(await makeBundle());
    modifiedAt(registry.intake, ahead as string, Date.now() + 24 * 3600 * 1000);

    const result = await processSubmissions({ ...registry.context, settledForMs: 10_000 });

    expect(result.outcomes.map((o) => [o.submission, o.status])).toEqual([[ahead, 'accepted']]);
  });
});

/** Empty stores of each real kind: the filesystem store and S3 (s3rver). */
const { kinds, folder } = realStores('intake');

/** Bytes this process has read so far, by every call (Linux's count). */
async function bytesRead(): Promise<number> {
  return Number(/^rchar: (\d+)$/m.exec(await readFile('/proc/self/io', 'utf8'))?.[1]);
}

/**
 * A sparse file of `size` bytes renamed in at `key` under `root` (no sidecar: dropped by hand), costing next to
 * nothing to make, and seconds to read.
 */
async function sparseUpload(root: string, key: string, size: number): Promise<void> {
  const file = path.join(root, ...key.split('/'));
  const temp = path.join(path.dirname(file), '.upload.tmp');
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(temp, '');
  await truncate(temp, size);
  await rename(temp, file);
}

describe.each(kinds)('when an upload is replaced by a larger one after the listing, on %s', (_, stores) => {
  const limit = 64 * 1024;
  const metadata = { contentType: 'application/gzip', cacheControl: 'no-store' };
  /** One batch over `intake` (with the test's site), uploads held to `limit`. */
  const processCapped = (registry: TestRegistry, intake: Store, site: Store) =>
    processSubmissions({ ...registry.context, intake, site, bundleLimits: { maxCompressedBytes: limit } });

  it('never reads more than the bundle limit into memory, and refuses it by its size', async () => {
    // Prepare: a small bundle listed; then, before it is read, a body past the limit put under its name
    // (as anyone who can upload may, racing the batch: on AWS a body of gigabytes, read whole by a function
    // of a few, killed the invocation each time it won the race).
    const registry = await makeRegistry();
    const { intake, site } = stores();
    const key = 'incoming/swapped.tgz';
    await intake.put(key, await makeBundle(), metadata);
    const huge = new Uint8Array(limit * 4).fill(7);
    const bodies: number[] = [];
    let swapped = false;
    const swapping = withMethod(intake, 'get', (get) => async (at, options) => {
      if (at === key && !swapped) {
        swapped = true;
        await intake.put(key, huge, metadata);
      }
      const object = await get(at, options);
      if (at.startsWith('incoming/') && object) bodies.push(object.body.byteLength);
      return object;
    });

    // Act
    const result = await processCapped(registry, swapping, site);

    // Assess: no body past the limit was read whole; the upload is refused for its size and kept.
    expect(swapped).toBe(true);
    expect(bodies.filter((size) => size > limit)).toEqual([]);
    expect(result.outcomes).toMatchObject([
      { submission: key, status: 'rejected', problems: [{ code: 'BUNDLE_TOO_LARGE' }] },
    ]);
    expect(await intake.head(`rejected/${result.outcomes[0]?.id}.tgz`)).toMatchObject({
      size: huge.byteLength,
    });
    expect(await intake.head(key)).toBeUndefined();
  }, 60_000);

  it('reads it from its stream, and judges it as any other, once it is back within the limit', async () => {
    // Prepare: the same race, the small bundle put back between the capped read and the stream.
    const registry = await makeRegistry();
    const { intake, site } = stores();
    const key = 'incoming/swapped-back.tgz';
    const bundle = await makeBundle({ manifest: validManifest({ name: 'swapped-back' }) });
    await intake.put(key, bundle, metadata);
    let swapped = false;
    const swapping = withMethod(intake, 'get', (get) => async (at, options) => {
      if (at !== key || swapped) return get(at, options);
      swapped = true;
      await intake.put(key, new Uint8Array(limit * 4), metadata);
      try {
        return await get(at, options);
      } finally {
        await intake.put(key, bundle, metadata);
      }
    });

    // Act
    const result = await processCapped(registry, swapping, site);

    // Assess
    expect(swapped).toBe(true);
    expect(result.outcomes).toMatchObject([
      { submission: key, status: 'accepted', plugin: 'swapped-back', problems: [] },
    ]);
    expect(await intake.head(`processed/${result.outcomes[0]?.id}.tgz`)).toMatchObject({
      size: bundle.byteLength,
    });
  }, 60_000);
});

describe('when a publisher uploads far more bytes than a bundle may have', () => {
  const limit = 64 * 1024;
  const metadata = { contentType: 'application/gzip', cacheControl: 'no-store' };

  /** `store`, with every read of incoming/ (whole or as a stream) counted by key in `reads`. */
  function countingReads(store: Store, reads: string[]): Store {
    return new Proxy(store, {
      get(target, property) {
        const value = Reflect.get(target, property, target);
        if (typeof value !== 'function') return value;
        if (property !== 'get' && property !== 'getStream') return value.bind(target);
        return async (key: string, ...rest: unknown[]) => {
          const read = await value.call(target, key, ...rest);
          if (key.startsWith('incoming/') && read) reads.push(key);
          return read;
        };
      },
    });
  }

  it('never streams one past four times the bundle limit: refused unread, by its key and ETag, and left in incoming/', async () => {
    // On AWS a publisher may upload up to 5 TB under one key (a multipart upload). Hashed and then copied to
    // rejected/ as streams, one of hundreds of gigabytes outlasted the function's 15 minutes on every
    // delivery: no outcome recorded, the message back after the visibility timeout, and every upload behind
    // it, whoever's, held in the one message group.
    const registry = await makeRegistry();
    const huge = 'incoming/a-huge.tgz';
    await registry.intake.put(huge, new Uint8Array(limit * 4 + 1).fill(7), metadata);
    const [good] = await registry.submit(await makeBundle({ manifest: validManifest({ name: 'small' }) }));
    const reads: string[] = [];
    const intake = countingReads(registry.intake, reads);

    const result = await processSubmissions({
      ...registry.context,
      intake,
      bundleLimits: { maxCompressedBytes: limit },
      maxStreamedBytes: limit * 4,
    });

    expect(reads).not.toContain(huge);
    const refused = result.outcomes.find((o) => o.submission === huge);
    expect(refused).toMatchObject({
      id: unreadableSubmissionId(huge, (await registry.intake.head(huge))?.etag ?? ''),
      status: 'rejected',
      problems: [{ code: 'BUNDLE_TOO_LARGE', found: `${limit * 4 + 1} bytes` }],
    });
    expect(refused?.submission_sha256).toBeUndefined();
    expect(await registry.intake.head(huge)).toMatchObject({ size: limit * 4 + 1 });
    expect(result.outcomes.find((o) => o.submission === good)).toMatchObject({ status: 'accepted' });
  });

  it.skipIf(process.platform !== 'linux')(
    'names one on the filesystem store by an ETag that reads none of it, and a replaced one by another',
    async () => {
      // Prepare: a sparse gigabyte dropped into incoming/ by hand (no sidecar), as anyone who may write there
      // can. Its ETag was hashed from its bytes, so every batch that met it (it stays in incoming/) read it
      // whole, where S3's listing gives the ETag for nothing.
      const registry = await makeRegistry();
      const intake = new FsStore(await mkdtemp(path.join(folder(), 'unstreamed-')));
      const huge = 'incoming/a-huge.tgz';
      const size = 1024 ** 3;
      await sparseUpload(intake.root, huge, size);
      const capped = { ...registry.context, intake, bundleLimits: { maxCompressedBytes: limit } };
      const before = await bytesRead();

      // Act
      const first = await processSubmissions({ ...capped, maxStreamedBytes: limit * 4 });

      // Assess: refused unread, by its key and the ETag a head gives, with next to nothing read.
      expect((await bytesRead()) - before).toBeLessThan(16 * 1024 * 1024);
      const etag = (await intake.head(huge))?.etag as string;
      expect(first.outcomes).toMatchObject([
        { submission: huge, id: unreadableSubmissionId(huge, etag), status: 'rejected' },
      ]);
      expect(first.outcomes[0]?.problems).toMatchObject([
        { code: 'BUNDLE_TOO_LARGE', found: `${size} bytes` },
      ]);

      // Act: another upload renamed in under its name, as large; then a batch again.
      await sparseUpload(intake.root, huge, size);
      const second = await processSubmissions({ ...capped, maxStreamedBytes: limit * 4 });

      // Assess: the new upload has an outcome of its own, the first's standing as it was.
      const replaced = (await intake.head(huge))?.etag as string;
      expect(replaced).not.toBe(etag);
      expect(second.outcomes).toMatchObject([
        { submission: huge, id: unreadableSubmissionId(huge, replaced) },
      ]);
      expect(second.outcomes[0]?.id).not.toBe(first.outcomes[0]?.id);
      expect(await intake.head(`status/${first.outcomes[0]?.id}.json`)).toBeDefined();
    },
    60_000,
  );

  it('takes uploads too large to read into a batch by their bytes, as it takes any other', async () => {
    // Each is streamed twice (hashed, then copied to rejected/): a batch took every one waiting, however
    // many, and a flood of them held one batch past the function's timeout.
    const registry = await makeRegistry();
    for (const name of ['a', 'b', 'c'])
      await registry.intake.put(`incoming/${name}.tgz`, new Uint8Array(limit * 2).fill(7), metadata);

    const plan = await planBatch({
      ...registry.context,
      bundleLimits: { maxCompressedBytes: limit },
      maxBatchBytes: limit * 3,
    });

    expect(plan.taken.map((t) => t.key)).toEqual(['incoming/a.tgz']);
    expect(plan.leftInIncoming).toBe(2);
  });
});

describe('when a publisher floods incoming/ with small uploads', () => {
  it('takes at most maxBatchUploads into a batch, however few their bytes, and leaves the rest waiting', async () => {
    // On AWS a batch took every upload waiting within 512 MiB: some hundreds of thousands of junk uploads of a
    // few bytes each (a few dollars of requests) made one batch no 15-minute invocation could finish, its
    // outcomes recorded only at its end, so every delivery started it again and no upload was ever published.
    const registry = await makeRegistry();
    for (const name of ['a', 'b', 'c', 'd', 'e'])
      await registry.intake.put(`incoming/${name}.tgz`, new Uint8Array([1]), {
        contentType: 'application/gzip',
        cacheControl: 'no-store',
      });

    const plan = await planBatch({ ...registry.context, maxBatchUploads: 2 });

    expect(plan.taken.map((t) => t.key)).toEqual(['incoming/a.tgz', 'incoming/b.tgz']);
    expect(plan.leftInIncoming).toBe(3);
  });

  it('takes past its bound an upload a run that died logged for, but only as far past it as it took', async () => {
    // A batch cut by its bounds takes the uploads an intent record names (its retry judges the dead run's
    // batch whole); a record left for good, and an upload named alike far behind, do not lift the bound.
    const registry = await makeRegistry();
    const names = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
    for (const [at, name] of names.entries()) {
      const key = `incoming/${name}.tgz`;
      await registry.intake.put(key, new Uint8Array([1]), {
        contentType: 'application/gzip',
        cacheControl: 'no-store',
      });
      const object = registry.intake.objects.get(key);
      if (object)
        registry.intake.objects.set(key, {
          ...object,
          lastModified: new Date(Date.UTC(2026, 0, 1, 0, 0, at)),
        });
    }
    const named = (...ids: string[]) =>
      registry.intake.put(
        'state/log-intents/batch-0.json',
        new TextEncoder().encode(
          JSON.stringify({
            intents: Object.fromEntries(
              ids.map((id, seq) => [id, { seq, type: 'yank', digest: 'd'.repeat(64) }]),
            ),
          }),
        ),
        { contentType: 'application/json', cacheControl: 'no-store' },
      );
    const keys = async () =>
      (await planBatch({ ...registry.context, maxBatchUploads: 2 })).taken.map((t) => t.key);

    await named(`c-${'1'.repeat(12)}`, `d-${'2'.repeat(12)}`);
    expect(await keys()).toEqual(['incoming/a.tgz', 'incoming/b.tgz', 'incoming/c.tgz', 'incoming/d.tgz']);
    await named(`h-${'3'.repeat(12)}`);
    expect(await keys()).toEqual(['incoming/a.tgz', 'incoming/b.tgz']);
  });
});
