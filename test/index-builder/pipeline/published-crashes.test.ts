/**
 * The check of what a batch reads back of what it published (published.ts) must never take a run's own
 * documents for someone else's: a store that fails at any write of a publish (at once, or deferred and then
 * flushed), a refresh or a rebuild, before the write or after it (S3 wrote the object, its answer was lost),
 * leaves a registry the next publish takes up with no PUBLISHED_DOCUMENT_ALTERED, publishing everything once.
 * On the real stores: the filesystem store and S3 (s3rver).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Store } from '../../../adapters/s3-store.ts';
import { forgetBins } from '../../../index-builder/catalog.ts';
import { fixedClock } from '../../../index-builder/clock.ts';
import { StoreError } from '../../../index-builder/errors.ts';
import {
  binKey,
  binOf,
  CATALOG_META_KEY,
  CATALOG_SNAPSHOT_RECORD_KEY,
  pluginDocumentKey,
  SNAPSHOT_KEY,
} from '../../../index-builder/layout.ts';
import type { PluginDocument, SnapshotDocument } from '../../../index-builder/model.ts';
import type { PipelineContext } from '../../../index-builder/pipeline/index.ts';
import {
  flushIndexes,
  processSubmissions,
  rebuildRegistry,
  refreshSnapshot,
} from '../../../index-builder/pipeline/index.ts';
import { rotateRegistryKey } from '../../../index-builder/pipeline/rotate.ts';
import { signRotation } from '../../../index-builder/rotation.ts';
import { createSigner, type Signer } from '../../../index-builder/signing.ts';
import { listAll, type Store } from '../../../index-builder/store.ts';
import { verifyListedDocument, verifyPluginDocument } from '../../../index-builder/verify.ts';
import { makeBundle, makeRegistry, nextUploadName, testKey, validManifest } from '../../support/fixtures.ts';
import { type LocalS3, startLocalS3 } from '../../support/s3.ts';
import { type StorePair, storeKinds, withMethod } from '../../support/stores.ts';

let s3: LocalS3;
let folder: string;

beforeAll(async () => {
  nextSigner = await createSigner((await testKey('registry-2')).secretKey);
  s3 = await startLocalS3([INTAKE, SITE]);
  folder = await mkdtemp(path.join(tmpdir(), 'plugindex-crashes-'));
});

afterAll(async () => {
  await s3?.close();
  await rm(folder, { recursive: true, force: true });
});

const INTAKE = 'crashes-intake';
const SITE = 'crashes-site';
const kinds = storeKinds(
  () => folder,
  () => s3.client,
  { intake: INTAKE, site: SITE },
);

const NAME = 'demo-plugin';
const decoder = new TextDecoder();

async function json<T>(store: Store, key: string): Promise<T> {
  return JSON.parse(decoder.decode((await store.get(key))?.body)) as T;
}

/** When the injected failure strikes a write: before it reaches the store, or once the store has it. */
type When = 'before' | 'after';

/**
 * `context` with both stores failing their `n`th write (puts and deletes), `when` says how; counts every write
 * into `count`.
 */
function failingAt(
  context: PipelineContext,
  n: number,
  when: When,
  count: { writes: number },
): PipelineContext {
  const wrap = (store: Store): Store => {
    const strike = (): boolean => {
      count.writes += 1;
      return count.writes === n;
    };
    const injected = (key: string) =>
      new StoreError('STORE_IO', key, `injected failure at write ${n} (${key})`);
    const put = withMethod(store, 'put', (original) => async (key, body, options) => {
      const hit = strike();
      if (hit && when === 'before') throw injected(key);
      await original(key, body, options);
      if (hit) throw injected(key);
    });
    const originalDelete = store.delete.bind(store);
    return new Proxy(put, {
      get(target, property) {
        if (property === 'delete')
          return async (key: string) => {
            const hit = strike();
            if (hit && when === 'before') throw injected(key);
            await originalDelete(key);
            if (hit) throw injected(key);
          };
        return Reflect.get(target, property, target);
      },
    });
  };
  return { ...context, intake: wrap(context.intake), site: wrap(context.site) };
}

/**
 * What the interrupted operation is, run on `context` (its stores failing or not); `resume`, what must come
 * before the next publish (a rotation is finished by running it again: the next publish signs with its key).
 */
interface Operation {
  run(context: PipelineContext, submit: (version: string) => Promise<string>): Promise<unknown>;
  resume?(context: PipelineContext): Promise<PipelineContext>;
}

let nextSigner: Signer;

/** Each registry's rotation 1, to `nextSigner` (signed once: a rotation is finished with the same bytes). */
const rotations = new WeakMap<object, Promise<Uint8Array>>();

function rotationOf(context: PipelineContext): Promise<Uint8Array> {
  let bytes = rotations.get(context.config);
  if (!bytes) {
    bytes = signRotation({
      registry: context.config.url,
      sequence: 1,
      previous: context.signer,
      next: nextSigner,
      now: new Date('2026-11-02T00:00:00Z'),
    }).then((signed) => signed.bytes);
    rotations.set(context.config, bytes);
  }
  return bytes;
}

const operations: [string, Operation][] = [
  [
    'a publish at once',
    { run: async (context, submit) => processSubmissions(context, [await submit('1.1.0')]) },
  ],
  [
    'a deferred publish, then its flush',
    {
      async run(context, submit) {
        await processSubmissions({ ...context, deferIndexes: true }, [await submit('1.1.0')]);
        await flushIndexes(context);
      },
    },
  ],
  ['a refresh of the snapshot', { run: (context) => refreshSnapshot(context) }],
  ['a rebuild', { run: (context) => rebuildRegistry(context) }],
  [
    'a key rotation (plugindex rotate-key)',
    {
      run: async (context) =>
        rotateRegistryKey({ ...context, signer: nextSigner }, await rotationOf(context)),
      async resume(context) {
        const rotated = { ...context, signer: nextSigner };
        await rotateRegistryKey(rotated, await rotationOf(context));
        return rotated;
      },
    },
  ],
];

interface Registry {
  readonly context: PipelineContext;
  submit(version: string): Promise<string>;
}

async function registryOn(stores: StorePair): Promise<Registry> {
  const base = await makeRegistry();
  const context: PipelineContext = { ...base.context, ...stores };
  return { context, submit: submitTo(stores.intake) };
}

/** The bundle of `NAME` at each version, made once: each registry is a store pair of its own. */
const bundles = new Map<string, Promise<Uint8Array>>();

/** Puts an upload of `NAME` at `version` in `intake`, and gives its key. */
function submitTo(intake: Store): (version: string) => Promise<string> {
  return async (version) => {
    const key = `incoming/${nextUploadName()}.tgz`;
    let bundle = bundles.get(version);
    if (!bundle) {
      bundle = makeBundle({ manifest: validManifest({ name: NAME, version }) });
      bundles.set(version, bundle);
    }
    await intake.put(key, await bundle, { contentType: 'application/gzip', cacheControl: 'no-store' });
    return key;
  };
}

/** A registry on `stores` with 1.0.0 published. */
async function publishedOn(stores: StorePair): Promise<Registry> {
  const registry = await registryOn(stores);
  await processSubmissions(registry.context, [await registry.submit('1.0.0')]);
  return registry;
}

let copies = 0;
const copyFolder = (from: string, to: string) => promisify(execFile)('cp', ['-R', from, to]);

/**
 * Fresh registries of a store kind with 1.0.0 published, one per crash point. On S3 publishing 1.0.0 is a
 * third of a crash point's requests: there it is published once (through the S3 store) and each registry is
 * a copy of its objects, s3rver's files copied to a prefix of their own (each object's bytes, metadata and
 * MD5, as a copy within the bucket would make them), with a clock that goes on where the published one's
 * stopped. The filesystem store's sidecars record each file's inode, which a copy does not keep: there each
 * is published anew (a tenth of the time of S3's).
 */
function publishedRegistries(kind: string, stores: () => StorePair): () => Promise<Registry> {
  if (!kind.includes('S3')) return () => publishedOn(stores());
  const pair = (prefix: string): StorePair => ({
    intake: new S3Store({ client: s3.client, bucket: INTAKE, prefix }),
    site: new S3Store({ client: s3.client, bucket: SITE, prefix }),
  });
  let base: Promise<{ readonly registry: Registry; readonly next: Date }> | undefined;
  return async () => {
    base ??= publishedOn(pair('published/')).then((registry) => ({
      registry,
      next: registry.context.clock.now(),
    }));
    const { registry, next } = await base;
    copies += 1;
    const prefix = `copy-${copies}/`;
    // cp(1), not node's fs.cp, whose stats and copies of each file, each a trip through the thread pool,
    // were a tenth of a crash point's CPU time on S3. Neither keeps the files' times (s3rver's LastModified).
    for (const bucket of [INTAKE, SITE])
      await copyFolder(path.join(s3.directory, bucket, 'published'), path.join(s3.directory, bucket, prefix));
    const stores = pair(prefix);
    return {
      context: { ...registry.context, ...stores, clock: fixedClock(next, 1000) },
      submit: submitTo(stores.intake),
    };
  };
}

/** How many writes `operation` makes on a registry with 1.0.0 published (no failure). */
async function writesOf(published: () => Promise<Registry>, operation: Operation): Promise<number> {
  const { context, submit } = await published();
  const count = { writes: 0 };
  await operation.run(failingAt(context, 0, 'before', count), async (version) => submit(version));
  return count.writes;
}

describe.each(kinds)('a store failing at any write, on %s', (kind, stores) => {
  // On S3 only the failure it adds (the object written, the answer lost): the rest is the filesystem's
  // sweep again, at minutes a run.
  const failures: readonly When[] = kind.includes('S3') ? ['after'] : ['before', 'after'];
  const published = publishedRegistries(kind, stores);
  describe.each(operations)('of %s', (name, operation) => {
    it.each(failures)(
      'fails %s the write, and the next publish takes it up with no PUBLISHED_DOCUMENT_ALTERED',
      async (when) => {
        const steps = await writesOf(published, operation);
        expect(steps).toBeGreaterThan(3);
        for (let n = 1; n <= steps; n++) {
          const step = `${name}, write ${n} of ${steps}, failing ${when} it`;
          const registry = await published();
          const { submit } = registry;
          let { context } = registry;
          const count = { writes: 0 };
          const submitted: string[] = [];
          const failed = await operation
            .run(failingAt(context, n, when, count), async (version) => {
              const key = await submit(version);
              submitted.push(key);
              return key;
            })
            .then(
              () => undefined,
              (error: unknown) => error,
            );
          expect(failed, step).toBeInstanceOf(StoreError);
          expect((failed as Error).message, step).toMatch(/injected failure/);

          // The next run is another process: a publish of what waits and of 1.2.0, at once.
          forgetBins(context.intake);
          if (operation.resume) context = await operation.resume(context);
          forgetBins(context.intake);
          const later = await processSubmissions(context).catch((error: unknown) => {
            throw new Error(`${step}: ${String(error)}`);
          });
          forgetBins(context.intake);
          const last = await processSubmissions(context, [await submit('1.2.0')]).catch((error: unknown) => {
            throw new Error(`${step}: ${String(error)}`);
          });
          // Each upload accepted once (an outcome the failed run recorded, or the next run's).
          const outcomes = await listAll(context.intake, 'status/');
          expect(
            await Promise.all(
              outcomes.map(async (o) => (await json<{ status: string }>(context.intake, o.key)).status),
            ),
            step,
          ).toEqual(['accepted', ...submitted, 'x'].map(() => 'accepted'));
          expect(later.outcomes.length + last.outcomes.length, step).toBeLessThanOrEqual(
            submitted.length + 1,
          );
          const doc = await json<PluginDocument>(context.site, pluginDocumentKey(NAME));
          expect(
            doc.versions.map((v) => v.version),
            step,
          ).toEqual(submitted.length > 0 ? ['1.2.0', '1.1.0', '1.0.0'] : ['1.2.0', '1.0.0']);
          const snapshot = await json<SnapshotDocument>(context.site, SNAPSHOT_KEY);
          for (const key of ['index.json', 'search.json'])
            verifyListedDocument(snapshot, key, (await context.site.get(key))?.body as Uint8Array);
          verifyPluginDocument(
            snapshot,
            NAME,
            (await context.site.get(binKey(binOf(NAME))))?.body as Uint8Array,
            (await context.site.get(pluginDocumentKey(NAME)))?.body as Uint8Array,
          );
        }
      },
      600_000,
    );
  });
});

/**
 * Two writers the queue does not serialize (a command run against the buckets beside it: the publish
 * function's retryingConflicts is for them): one commits while the other is between reading the snapshot
 * and its conditional write. The one refused (STORE_CONFLICT), or failing on the snapshot it meets, is run
 * again, and every later publish goes through: no record of what a run is about to publish may write back a
 * meta file the other replaced since it was read. On the filesystem store, which refuses an ifMatch write
 * over another object as S3 does (s3rver ignores If-Match).
 */
describe('two writers, one committing between the other reading the snapshot and writing its own', () => {
  const [, fsStores] = kinds[0] as [string, () => StorePair];
  const meta = (body: Uint8Array) => decoder.decode(body);

  it.each([
    [
      'a refresh commits as a publish records the snapshot it is about to write',
      (text: string) => text.includes(`writing\t${SNAPSHOT_KEY}`),
      'publish' as const,
    ],
    [
      'a refresh commits as a publish records the plugin documents it is about to write',
      (text: string) => text.includes(`writing\t${pluginDocumentKey(NAME)}`),
      'publish' as const,
    ],
    [
      'a publish commits as a refresh records the snapshot it is about to write',
      (text: string) => text.includes(`writing\t${SNAPSHOT_KEY}`),
      'refresh' as const,
    ],
  ])(
    '%s: the one refused is run again, and later publishes go through',
    async (_, atRecord, racing) => {
      const { context, submit } = await registryOn(fsStores());
      await processSubmissions(context, [await submit('1.0.0')]);
      const waiting = await submit('1.1.0');
      let other: Promise<unknown> | undefined;
      // The other writer runs to its end right before the record is written (and is awaited there).
      const interleaved = (record: (key: string, body: Uint8Array) => boolean): PipelineContext => ({
        ...context,
        intake: withMethod(context.intake, 'put', (put) => async (key, body, options) => {
          if (!other && record(key, body)) {
            other = racing === 'publish' ? refreshSnapshot(context) : processSubmissions(context, [waiting]);
            await other;
          }
          return put(key, body, options);
        }),
      });
      const recordSeen = (key: string, body: Uint8Array) =>
        (key === CATALOG_META_KEY && atRecord(meta(body))) ||
        (key === CATALOG_SNAPSHOT_RECORD_KEY && atRecord(`writing\t${SNAPSHOT_KEY}`));
      const first =
        racing === 'publish'
          ? processSubmissions(interleaved(recordSeen), [waiting])
          : refreshSnapshot(interleaved(recordSeen));
      await first.catch(() => undefined); // refused, or not: either way run again, as the queue would
      expect(other, 'the other writer ran').toBeDefined();

      forgetBins(context.intake);
      await (racing === 'publish' ? processSubmissions(context) : refreshSnapshot(context));
      forgetBins(context.intake);
      const later = await processSubmissions(context, [await submit('1.2.0')]);

      expect(later.outcomes.map((o) => o.status)).toEqual(['accepted']);
      const doc = await json<PluginDocument>(context.site, pluginDocumentKey(NAME));
      expect(doc.versions.map((v) => v.version)).toEqual(['1.2.0', '1.1.0', '1.0.0']);
      const outcomes = await listAll(context.intake, 'status/');
      expect(outcomes).toHaveLength(3);
    },
    60_000,
  );
});

describe('a key rotation that died while re-signing', () => {
  const [, fsStores] = kinds[0] as [string, () => StorePair];

  it.each([
    ['a refresh', (context: PipelineContext) => refreshSnapshot(context)],
    ['a flush', (context: PipelineContext) => flushIndexes(context)],
  ])(
    '%s with the next key, finishing the rebuild the mark asks for, re-signs nothing the snapshot does not name',
    async (_, run) => {
      const { context, submit } = await registryOn(fsStores());
      await processSubmissions(context, [await submit('1.0.0')]);
      const dying: PipelineContext = {
        ...context,
        signer: nextSigner,
        site: withMethod(context.site, 'put', (put) => async (key, body, options) => {
          if (key === pluginDocumentKey(NAME)) throw new StoreError('STORE_IO', key, 'killed re-signing');
          return put(key, body, options);
        }),
      };
      await expect(rotateRegistryKey(dying, await rotationOf(context))).rejects.toThrow('killed re-signing');
      const before = await listAll(context.site, '');
      const bodies = await Promise.all(before.map(async (o) => (await context.site.get(o.key))?.body));

      await expect(run({ ...context, signer: nextSigner })).rejects.toMatchObject({
        name: 'KeyError',
        code: 'SIGNING_KEY_NOT_CURRENT',
      });

      const after = await listAll(context.site, '');
      expect(after.map((o) => o.key)).toEqual(before.map((o) => o.key));
      for (const [i, o] of before.entries())
        expect((await context.site.get(o.key))?.body, o.key).toEqual(bodies[i]);
      // The rotation run again finishes it, and publishing goes on with the next key.
      await rotateRegistryKey({ ...context, signer: nextSigner }, await rotationOf(context));
      const later = await processSubmissions({ ...context, signer: nextSigner }, [await submit('1.1.0')]);
      expect(later.outcomes.map((o) => o.status)).toEqual(['accepted']);
    },
    60_000,
  );
});
