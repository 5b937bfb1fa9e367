/**
 * The intake store's `state/` lost, or put back from an older copy (a bucket restored from a backup, a
 * folder deleted): its record of the log's head (`state/log.json`), the catalog, the actions' markers and
 * their order went with it. What must not follow: the published log rewritten from the record's length (from
 * entry 0 when it was gone) under a snapshot signing that shorter log, which every client that saw the log
 * refuses; and, after the rebuild that recovers the catalog, an applied action taken again (its envelope is
 * public under `log/actions/`) or an older one overruling a newer. The published snapshot's log head is taken
 * when it is longer than the record and signed by the registry's key, and a rebuild restores the markers and
 * the order of the actions made within an action's age from the log. On the filesystem store and on S3
 * (s3rver).
 */
import { describe, expect, it, vi } from 'vitest';
import type { ActionBody } from '../../../index-builder/actions.ts';
import { forgetBins } from '../../../index-builder/catalog.ts';
import { sha256Hex } from '../../../index-builder/digest.ts';
import { StoreError, TrustError } from '../../../index-builder/errors.ts';
import {
  ACTION_MARKERS_PREFIX,
  actionEnvelopeKey,
  actionMarkerKey,
  actionOrderKey,
  pluginDocumentKey,
  SIGNED_SNAPSHOT_KEY,
  SNAPSHOT_KEY,
} from '../../../index-builder/layout.ts';
import {
  entryLine,
  LOG_SEGMENT_ENTRIES,
  type LogEntry,
  lineHash,
  logSegmentKey,
} from '../../../index-builder/log.ts';
import type { LogHead, PluginDocument, SnapshotDocument } from '../../../index-builder/model.ts';
import {
  RESTORE_WRITE_CONCURRENCY,
  RESTORE_WRITES_PER_SECOND,
  restoreActionRecords,
} from '../../../index-builder/pipeline/actions.ts';
import type { PipelineContext, SubmissionOutcome } from '../../../index-builder/pipeline/index.ts';
import { processSubmissions, rebuildRegistry } from '../../../index-builder/pipeline/index.ts';
import {
  currentLogHead,
  LOG_STATE_KEY,
  LogWriter,
  namesOwed,
  readIntentRecords,
  readLogHead,
  recentLogEntries,
  writeLogHead,
} from '../../../index-builder/pipeline/log-writer.ts';
import { rotateRegistryKey } from '../../../index-builder/pipeline/rotate.ts';
import { signRotation } from '../../../index-builder/rotation.ts';
import { createSigner } from '../../../index-builder/signing.ts';
import {
  CACHE_MUTABLE,
  CACHE_PRIVATE,
  LIST_PAGE_KEYS,
  listAll,
  type Store,
} from '../../../index-builder/store.ts';
import { ACTION_SIGNED, publishLogEntries, signedAction, upload, vouchedLog } from '../../support/actions.ts';
import { makeBundle, makeRegistry, nextUploadName, testKey, validManifest } from '../../support/fixtures.ts';
import { MemoryStore } from '../../support/memory-store.ts';
import { realStores, withMethod } from '../../support/stores.ts';

const { kinds } = realStores('lost-state');

const NAME = 'demo-plugin';
const decoder = new TextDecoder();
const HOUR = 3600 * 1000;

/** A registry on `stores` with 1.0.0 and 1.1.0 of NAME published, 1.0.0 yanked and then unyanked. */
async function registryWithHistory(stores: { intake: Store; site: Store }) {
  const base = await makeRegistry();
  const context: PipelineContext = { ...base.context, ...stores };
  const publisher = await testKey('publisher');
  /** A batch of `keys`, as another process runs it (nothing kept in memory from the last one). */
  const run = async (...keys: string[]): Promise<SubmissionOutcome[]> => {
    forgetBins(context.intake);
    return [...(await processSubmissions(context, keys)).outcomes];
  };
  const publish = async (version: string) => {
    const key = `incoming/${nextUploadName()}.tgz`;
    const bundle = await makeBundle({ manifest: validManifest({ version }), signer: publisher });
    await stores.intake.put(key, bundle, { contentType: 'application/gzip', cacheControl: 'no-store' });
    return run(key);
  };
  /** Signs `body` as the publisher (the owner), made `offset` ms after ACTION_SIGNED; nothing submitted. */
  const sign = (body: ActionBody, offset = 0) =>
    signedAction(body, publisher, { now: new Date(ACTION_SIGNED.getTime() + offset) });
  const yank: ActionBody = { action: 'yank', plugin: NAME, version: '1.0.0', reason: 'broken' };
  const unyank: ActionBody = { action: 'unyank', plugin: NAME, version: '1.0.0' };
  await publish('1.0.0');
  await publish('1.1.0');
  const yanked = await sign(yank);
  const unyanked = await sign(unyank, HOUR);
  for (const action of [yanked, unyanked])
    expect((await run(await upload(stores.intake, action.bytes)))[0]?.status).toBe('accepted');
  const log = () => vouchedLog(stores.site, base.registryKey.publicKey);
  return { context, signer: base.signer, run, publish, sign, yank, yanked, unyanked, log };
}

/** Every object under `prefix` of `store`, by key, as text. */
/**
 * Uploads a yank of 1.1.0, signed 2 hours in, and runs its batch, killed (`message`) at `step`: a run that
 * died there. Returns the yank and its upload's key.
 */
async function yankKilledAt(
  registry: Awaited<ReturnType<typeof registryWithHistory>>,
  step: string,
  message: string,
): Promise<{ yank: Awaited<ReturnType<typeof registry.sign>>; key: string }> {
  const yank = await registry.sign({ action: 'yank', plugin: NAME, version: '1.1.0' }, 2 * HOUR);
  const key = await upload(registry.context.intake, yank.bytes);
  const onStep = (at: string): void => {
    if (at === step) throw new Error(message);
  };
  await expect(processSubmissions({ ...registry.context, onStep }, [key])).rejects.toThrow('killed');
  return { yank, key };
}

async function texts(store: Store, prefix: string): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  for (const { key } of await listAll(store, prefix))
    found.set(key, decoder.decode((await store.get(key))?.body));
  return found;
}

/** Deletes every object of the intake store's `state/`, as a lost folder or bucket prefix leaves it. */
async function loseState(intake: Store): Promise<void> {
  for (const { key } of await listAll(intake, 'state/')) await intake.delete(key);
}

/** Edits the first yank's entry (its reason) in segment 0, where the log is published. */
async function alterYankEntry(site: Store): Promise<void> {
  const segment = decoder.decode((await site.get(logSegmentKey(0)))?.body);
  await site.put(logSegmentKey(0), new TextEncoder().encode(segment.replace('"broken"', '"fine"')), {
    contentType: 'application/jsonl',
    cacheControl: CACHE_MUTABLE,
  });
}

/** A request a store was asked: a listing's are one per page of LIST_PAGE_KEYS keys, as S3 answers it. */
interface Request {
  readonly method: string;
  /** The key asked for, or the prefix listed. */
  readonly key: string;
}

/** `store`, each request it is asked recorded in `requests`. */
function counting(store: Store, requests: Request[]): Store {
  return new Proxy(store, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      const method = String(property);
      if (method === 'list' || method === 'listFolders')
        return async function* (prefix: string) {
          let listed = 0;
          for await (const item of value.call(target, prefix) as AsyncIterable<unknown>) {
            if (listed % LIST_PAGE_KEYS === 0) requests.push({ method, key: prefix });
            listed++;
            yield item;
          }
          if (listed === 0) requests.push({ method, key: prefix });
        };
      return (key: string, ...rest: unknown[]) => {
        requests.push({ method, key });
        return value.call(target, key, ...rest);
      };
    },
  });
}

/** The requests that read (`get`, `head`, a listing's pages) or write (`put`, `delete`...). */
const reads = (requests: readonly Request[]) =>
  requests.filter((r) => ['get', 'head', 'list', 'listFolders', 'getStream'].includes(r.method));

const lines = (entries: readonly LogEntry[]) => entries.map((entry) => JSON.stringify(entry));

const yankedOf = async (site: Store, version = '1.0.0') =>
  (
    JSON.parse(decoder.decode((await site.get(pluginDocumentKey(NAME)))?.body)) as PluginDocument
  ).versions.find((v) => v.version === version)?.yanked;

describe.each(kinds)('when the intake store lost its state/, on %s', (_, stores) => {
  it('a rebuild keeps the published log, and the next publish extends it', async () => {
    // Prepare: a log of four entries (two publishes, a yank, an unyank); then state/ lost.
    const registry = await registryWithHistory(stores());
    const before = await registry.log();
    expect(before.map((entry) => entry.type)).toEqual(['publish', 'publish', 'yank', 'unyank']);
    await loseState(registry.context.intake);

    // Act: the rebuild an operator runs (the catalog is gone too), then a publish.
    await rebuildRegistry(registry.context);
    const afterRebuild = await registry.log();
    const [published] = await registry.publish('1.2.0');

    // Assert: the four entries stand as they were, the snapshot signing them; the publish is the fifth.
    expect(published?.status).toBe('accepted');
    expect(lines(afterRebuild)).toEqual(lines(before));
    const after = await registry.log();
    expect(lines(after.slice(0, 4))).toEqual(lines(before));
    expect(after.map((entry) => [entry.seq, entry.type, entry.version])).toContainEqual([
      4,
      'publish',
      '1.2.0',
    ]);
    expect(after).toHaveLength(5);
  });

  it('a rebuild restores the actions applied lately: a replay and an older action are refused', async () => {
    // Prepare: the markers and the order as the batches wrote them; then state/ lost and a rebuild.
    const registry = await registryWithHistory(stores());
    const { intake, site } = registry.context;
    const order = await texts(intake, actionOrderKey(NAME));
    const markers = await texts(intake, 'state/actions/');
    expect([...markers.keys()].sort()).toEqual(
      [registry.yanked.digest, registry.unyanked.digest].map(actionMarkerKey).sort(),
    );
    await loseState(intake);
    await rebuildRegistry(registry.context);

    // Act: the applied yank's envelope uploaded again; a yank made before the unyank, never submitted.
    const [replayed] = await registry.run(await upload(intake, registry.yanked.bytes));
    const older = await registry.sign({ ...registry.yank, reason: 'made earlier' }, HOUR / 2);
    const [overruled] = await registry.run(await upload(intake, older.bytes));

    // Assert: both refused, nothing published changed; the order is the one the batches wrote, and each
    // action's marker is back.
    expect(replayed?.problems.map((p) => p.code)).toEqual(['ACTION_REPLAYED']);
    expect(overruled?.problems.map((p) => p.code)).toEqual(['ACTION_SUPERSEDED']);
    expect(await yankedOf(site)).toBe(false);
    expect(await texts(intake, actionOrderKey(NAME))).toEqual(order);
    expect([...(await texts(intake, 'state/actions/')).keys()].sort()).toEqual([...markers.keys()].sort());
  });

  it('a batch after only the log record was lost, or put back older, appends after the published log', async () => {
    const registry = await registryWithHistory(stores());
    const { intake } = registry.context;
    const before = await registry.log();

    // Act: the record gone, a publish; the record put back as it was at two entries, another publish.
    await intake.delete(LOG_STATE_KEY);
    expect((await registry.publish('1.2.0'))[0]?.status).toBe('accepted');
    await intake.put(
      LOG_STATE_KEY,
      new TextEncoder().encode(`${JSON.stringify({ length: 2, head: before[2]?.prev })}\n`),
      { contentType: 'application/json', cacheControl: 'no-store' },
    );
    expect((await registry.publish('1.3.0'))[0]?.status).toBe('accepted');

    // Assert: one log, every entry kept, the two publishes after them.
    const after = await registry.log();
    expect(lines(after.slice(0, 4))).toEqual(lines(before));
    expect(after.slice(4).map((entry) => entry.version)).toEqual(['1.2.0', '1.3.0']);
    expect(await readLogHead(intake)).toEqual({ length: 6, head: expect.any(String) });
  });
});

describe.each(kinds)('when a rebuild restores many actions after state/ was lost, on %s', (_, stores) => {
  it('reads as many objects for 32 actions as for 2: their markers are listed, not asked for each', async () => {
    // Prepare: a registry of two actions (a yank, an unyank); a rebuild after state/ was lost, its requests
    // recorded; then 30 actions more, state/ lost again.
    const registry = await registryWithHistory(stores());
    const { intake, site } = registry.context;
    const rebuildCounted = async () => {
      const requests: Request[] = [];
      const rebuilt = await rebuildRegistry({
        ...registry.context,
        intake: counting(intake, requests),
        site: counting(site, requests),
      });
      return { requests, restored: rebuilt.restored };
    };
    await loseState(intake);
    const few = await rebuildCounted();
    const keys: string[] = [];
    for (let i = 0; i < 30; i++) {
      const body: ActionBody = { action: i % 2 === 0 ? 'yank' : 'unyank', plugin: NAME, version: '1.1.0' };
      keys.push(await upload(intake, (await registry.sign(body, 2 * HOUR + i * 1000)).bytes));
    }
    expect((await registry.run(...keys)).map((outcome) => outcome.status)).toEqual(
      keys.map(() => 'accepted'),
    );
    await loseState(intake);

    // Act
    const many = await rebuildCounted();

    // Assert: every marker restored; the same reads both times, none a marker's own.
    expect([few.restored.markers, many.restored.markers]).toEqual([2, 32]);
    expect(reads(many.requests)).toHaveLength(reads(few.requests).length);
    const markerReads = many.requests.filter(
      (r) => r.method !== 'put' && r.key.startsWith(ACTION_MARKERS_PREFIX),
    );
    expect(markerReads).toEqual([{ method: 'list', key: ACTION_MARKERS_PREFIX }]);
    expect((await listAll(intake, ACTION_MARKERS_PREFIX)).length).toBe(32);
  });
});

describe('when the markers far outnumber the actions a rebuild restores', () => {
  it('lists no more pages of them than the markers it has left to ask for, then asks for those', async () => {
    // Prepare: 5,000 markers of actions older than an action may be (five pages), beside the two of the
    // window's actions; those two lost.
    const base = await makeRegistry();
    const registry = await registryWithHistory({ intake: base.intake, site: base.site });
    const { intake } = registry.context;
    for (let i = 0; i < 5 * LIST_PAGE_KEYS; i++)
      await intake.put(actionMarkerKey(sha256Hex(`old ${i}`)), new TextEncoder().encode('{}\n'), {
        contentType: 'application/json',
        cacheControl: CACHE_PRIVATE,
      });
    for (const action of [registry.yanked, registry.unyanked])
      await intake.delete(actionMarkerKey(action.digest));

    // Act
    const requests: Request[] = [];
    const rebuilt = await rebuildRegistry({ ...registry.context, intake: counting(intake, requests) });

    // Assert: both restored, in no more requests than twice a head each (not the five pages of a whole
    // listing).
    expect(rebuilt.restored.markers).toBe(2);
    const markerReads = requests.filter((r) => r.method !== 'put' && r.key.startsWith(ACTION_MARKERS_PREFIX));
    expect(markerReads.length).toBeLessThanOrEqual(4);
    for (const action of [registry.yanked, registry.unyanked])
      expect(await intake.head(actionMarkerKey(action.digest))).toBeDefined();
  });
});

describe('when the log is read back over many segments, side by side', () => {
  const DAY = 24 * HOUR;
  const NOW = Date.parse('2026-11-20T00:00:00Z');
  /** Eight segments of entries 30 days old, then five of entries a day old: segments 0-7, then 8-12. */
  const OLD_SEGMENTS = 8;
  const RECENT_SEGMENTS = 5;
  const publishedLog = async () => {
    const site = new MemoryStore();
    const head = await publishLogEntries(
      site,
      Array.from({ length: (OLD_SEGMENTS + RECENT_SEGMENTS) * LOG_SEGMENT_ENTRIES }, (_, i) => ({
        time: new Date(NOW - (i < OLD_SEGMENTS * LOG_SEGMENT_ENTRIES ? 30 : 1) * DAY + i).toISOString(),
        type: 'publish',
        plugin: NAME,
        version: `0.0.${i}`,
        signer: 'A'.repeat(40),
        digest: sha256Hex(`entry ${i}`),
      })),
    );
    return { site, head };
  };
  const since = NOW - 7 * DAY;

  it('reads back to the first segment older than the window, in order, whatever is missing before it', async () => {
    // Prepare: segments 0-6, older than the last one read (7, the first to start before `since`), gone or
    // failing to read.
    const { site, head } = await publishedLog();
    for (const index of [0, 1, 2, 3, 4, 6]) await site.delete(logSegmentKey(index));
    const failing = withMethod(site, 'get', (get) => async (key) => {
      if (key === logSegmentKey(5)) throw new StoreError('STORE_IO', key, 'unreadable');
      return get(key);
    });

    // Act
    const entries = await recentLogEntries(failing, head, since, 'the head');

    // Assert: segments 7 to 12, every entry in order.
    expect(entries.map((read) => read.entry.seq)).toEqual(
      Array.from({ length: 6 * LOG_SEGMENT_ENTRIES }, (_, i) => (OLD_SEGMENTS - 1) * LOG_SEGMENT_ENTRIES + i),
    );
  });

  it('rejects a segment missing within the window (LOG_TRUNCATED), however many are read at once', async () => {
    for (const index of [7, 9, 11]) {
      const { site, head } = await publishedLog();
      await site.delete(logSegmentKey(index));
      const read = recentLogEntries(site, head, since, 'the head');
      await expect(read).rejects.toBeInstanceOf(TrustError);
      await expect(read).rejects.toMatchObject({
        code: 'LOG_TRUNCATED',
        message: expect.stringContaining(logSegmentKey(index)),
      });
    }
  });

  it('rejects an entry altered within the window (LOG_ENTRY_ALTERED), and a store failure there as it is', async () => {
    // Prepare: an entry of segment 8 edited; another log whose segment 10 cannot be read.
    const altered = await publishedLog();
    const segment = decoder.decode((await altered.site.get(logSegmentKey(8)))?.body);
    await altered.site.put(
      logSegmentKey(8),
      new TextEncoder().encode(segment.replace('"0.0.2100"', '"0.0.9999"')),
      { contentType: 'application/jsonl', cacheControl: CACHE_MUTABLE },
    );
    const failing = await publishedLog();
    const unreadable = withMethod(failing.site, 'get', (get) => async (key) => {
      if (key === logSegmentKey(10)) throw new StoreError('STORE_IO', key, 'unreadable');
      return get(key);
    });

    // Act
    const edited = recentLogEntries(altered.site, altered.head, since, 'the head');
    const failed = recentLogEntries(unreadable, failing.head, since, 'the head');

    // Assert
    await expect(edited).rejects.toBeInstanceOf(TrustError);
    await expect(edited).rejects.toMatchObject({ code: 'LOG_ENTRY_ALTERED' });
    await expect(failed).rejects.toBeInstanceOf(StoreError);
    await expect(failed).rejects.toMatchObject({ code: 'STORE_IO' });
  });
});

describe.each(kinds)(
  'when an action refused as changing nothing held its slot, then state/ was lost, on %s',
  (_, stores) => {
    it('logs it, so the rebuild restores its slot: an older action is still refused (ACTION_SUPERSEDED)', async () => {
      // Prepare: 1.0.0 unyanked (made at HOUR); an unyank made later (2 * HOUR), refused as changing nothing,
      // stands for the slot; a yank made between the two, held back, is refused for it.
      const registry = await registryWithHistory(stores());
      const { intake, site } = registry.context;
      const later = await registry.sign({ action: 'unyank', plugin: NAME, version: '1.0.0' }, 2 * HOUR);
      const [refused] = await registry.run(await upload(intake, later.bytes));
      expect(refused?.problems.map((p) => p.code)).toEqual(['ACTION_NO_EFFECT']);
      const between = await registry.sign({ ...registry.yank, reason: 'made between' }, 1.5 * HOUR);
      const [before] = await registry.run(await upload(intake, between.bytes));
      expect(before?.problems.map((p) => p.code)).toEqual(['ACTION_SUPERSEDED']);
      const order = await texts(intake, actionOrderKey(NAME));

      // Act: state/ lost, the rebuild, and the held-back yank submitted again.
      await loseState(intake);
      await rebuildRegistry(registry.context);
      const [after] = await registry.run(await upload(intake, between.bytes));

      // Assert: refused as before, 1.0.0 not yanked; the order as the batches wrote it; the log holds the
      // refused unyank's statement (it changed nothing), once, and its envelope is published.
      expect(after?.problems.map((p) => p.code)).toEqual(['ACTION_SUPERSEDED']);
      expect(await yankedOf(site)).toBe(false);
      expect(await texts(intake, actionOrderKey(NAME))).toEqual(order);
      const stated = (await registry.log()).filter((entry) => entry.digest === later.digest);
      expect(stated).toEqual([expect.objectContaining({ type: 'unyank', detail: { effect: 'none' } })]);
      expect(await site.head(actionEnvelopeKey(later.digest))).toBeDefined();
    });
  },
);

describe.each(kinds)('when a rebuild runs on a registry that lost nothing, on %s', (_, stores) => {
  it('restores nothing: the markers and the order as the batches wrote them', async () => {
    // Prepare: an unyank made at the same time as the applied one, refused as changing nothing: the order
    // records it (it came later in upload order, so it stands for its slot), the log does not.
    const registry = await registryWithHistory(stores());
    const { intake } = registry.context;
    const same = await registry.sign(
      { action: 'unyank', plugin: NAME, version: '1.0.0' } as ActionBody,
      HOUR,
    );
    const [refused] = await registry.run(await upload(intake, same.bytes));
    expect(refused?.problems.map((p) => p.code)).toEqual(['ACTION_NO_EFFECT']);
    const order = await texts(intake, actionOrderKey(NAME));
    const markers = await texts(intake, 'state/actions/');

    // Act
    const rebuilt = await rebuildRegistry(registry.context);

    // Assert: nothing restored, nothing rewritten.
    expect(rebuilt.restored).toEqual({ markers: 0, orders: 0 });
    expect(await texts(intake, actionOrderKey(NAME))).toEqual(order);
    expect(await texts(intake, 'state/actions/')).toEqual(markers);
  });
});

describe.each(kinds)('when an action order record is not one, on %s', (_, stores) => {
  it("a rebuild puts the log's in its place rather than fail on it; an older action is then refused", async () => {
    // Prepare: the order record of NAME cut short (a disk that lost its end, an edit by hand).
    const registry = await registryWithHistory(stores());
    const { intake } = registry.context;
    const order = await texts(intake, actionOrderKey(NAME));
    await intake.put(actionOrderKey(NAME), new TextEncoder().encode('{"schema":"plugindex/action-or'), {
      contentType: 'application/json',
      cacheControl: 'no-store',
    });

    // Act
    const rebuilt = await rebuildRegistry(registry.context);
    const older = await registry.sign({ ...registry.yank, reason: 'made earlier' }, HOUR / 2);
    const [overruled] = await registry.run(await upload(intake, older.bytes));

    // Assert: the order as the batches wrote it, from the log; the older yank refused.
    expect(rebuilt.restored).toEqual({ markers: 0, orders: 1 });
    expect(await texts(intake, actionOrderKey(NAME))).toEqual(order);
    expect(overruled?.problems.map((p) => p.code)).toEqual(['ACTION_SUPERSEDED']);
  });
});

describe.each(kinds)('when an action order record is put back older on its own, on %s', (_, stores) => {
  it('a batch still refuses an action older than one the log holds (ACTION_SUPERSEDED), with no rebuild', async () => {
    // Prepare: NAME's order put back as the yank's batch wrote it, before the unyank (a copy of it restored
    // alone, or written by whoever may write state/); the log record, the catalog and the markers as they are.
    const registry = await registryWithHistory(stores());
    const { intake, site } = registry.context;
    const rolledBack = {
      schema: 'plugindex/action-order/v1',
      plugin: NAME,
      slots: { 'yank/1.0.0': { created: ACTION_SIGNED.toISOString(), digest: registry.yanked.digest } },
    };
    await intake.put(actionOrderKey(NAME), new TextEncoder().encode(`${JSON.stringify(rolledBack)}\n`), {
      contentType: 'application/json',
      cacheControl: CACHE_PRIVATE,
    });

    // Act: a yank made before the unyank (after the yank the record still holds).
    const older = await registry.sign({ ...registry.yank, reason: 'made earlier' }, HOUR / 2);
    const [overruled] = await registry.run(await upload(intake, older.bytes));

    // Assert: refused by the unyank, which the log holds (taken from it, as a rebuild would), not the record;
    // the version stays unyanked. An action made after the unyank then applies, and the record it writes
    // holds the log's unyank no more (its slot is the newer yank's) but is whole again.
    expect(overruled?.problems.map((p) => p.code)).toEqual(['ACTION_SUPERSEDED']);
    expect(overruled?.problems[0]?.message).toContain(registry.unyanked.digest);
    expect(await yankedOf(site)).toBe(false);
    const newer = await registry.sign({ ...registry.yank, reason: 'made later' }, 2 * HOUR);
    expect((await registry.run(await upload(intake, newer.bytes)))[0]?.status).toBe('accepted');
    expect(await yankedOf(site)).toBe(true);
  });
});

describe('when a batch takes the action orders the log holds for an action it judges', () => {
  const NOW = Date.parse('2026-11-20T00:00:00Z');
  /** Segments 0 and 1 logged two days ago, segment 2 begun an hour ago: the log a batch opens. */
  const openedLog = async () => {
    const base = await makeRegistry();
    const site = new MemoryStore();
    const intake = new MemoryStore();
    const head = await publishLogEntries(
      site,
      Array.from({ length: 2 * LOG_SEGMENT_ENTRIES + 10 }, (_, i) => ({
        time: new Date(NOW - (i < 2 * LOG_SEGMENT_ENTRIES ? 48 : 1) * HOUR + i).toISOString(),
        type: 'publish' as const,
        plugin: NAME,
        version: `0.0.${i}`,
        signer: 'A'.repeat(40),
        digest: sha256Hex(`entry ${i}`),
      })),
    );
    await writeLogHead(intake, head);
    // Vouched for by the published snapshot: a batch reads only the segment it appends to.
    await site.put(SNAPSHOT_KEY, new TextEncoder().encode(JSON.stringify({ log: head })), {
      contentType: 'application/json',
      cacheControl: CACHE_MUTABLE,
    });
    const requests: Request[] = [];
    const log = await LogWriter.open({ ...base.context, intake, site: counting(site, requests) });
    return { site, log, requests };
  };

  it('reads no segment for an action made lately: the last one, which it appends to, is held already', async () => {
    const { log, requests } = await openedLog();
    const opened = requests.length;
    expect(requests.filter((r) => r.key.startsWith('log/'))).toEqual([
      { method: 'get', key: logSegmentKey(2) },
    ]);

    const entries = await log.entriesSince(NOW - 5 * 60 * 1000);

    expect(requests.length).toBe(opened);
    expect(entries[0]?.seq).toBe(2 * LOG_SEGMENT_ENTRIES);
  });

  it('reads back as far as an action older than the last segment was made, checking what it reads', async () => {
    const { site, log, requests } = await openedLog();
    const opened = requests.length;

    const entries = await log.entriesSince(NOW - 3 * HOUR);

    expect(requests.slice(opened)).toEqual([{ method: 'get', key: logSegmentKey(1) }]);
    expect(entries.map((entry) => entry.seq)).toEqual(
      Array.from({ length: LOG_SEGMENT_ENTRIES + 10 }, (_, i) => LOG_SEGMENT_ENTRIES + i),
    );
    // An entry altered where it is published, in a segment read back: refused as every read of the log is.
    const segment = decoder.decode((await site.get(logSegmentKey(0)))?.body);
    await site.put(logSegmentKey(0), new TextEncoder().encode(segment.replace('0.0.3"', '0.0.4"')), {
      contentType: 'application/jsonl',
      cacheControl: CACHE_MUTABLE,
    });
    await expect(log.entriesSince(NOW - 72 * HOUR)).rejects.toMatchObject({ code: 'LOG_ENTRY_ALTERED' });
  });
});

describe.each(kinds)('when state/ was lost and snapshot.json is not the one signed, on %s', (_, stores) => {
  /** What is done to the unsigned `snapshot.json` (anyone who can write the published store can). */
  const tamperings: [string, (site: Store) => Promise<void>][] = [
    ['deleted', (site) => site.delete(SNAPSHOT_KEY)],
    [
      'claiming an empty log',
      async (site) => {
        const published = JSON.parse(
          decoder.decode((await site.get(SNAPSHOT_KEY))?.body),
        ) as SnapshotDocument;
        const planted = { ...published, log: { length: 0, head: '0'.repeat(64) } };
        await site.put(SNAPSHOT_KEY, new TextEncoder().encode(JSON.stringify(planted)), {
          contentType: 'application/json',
          cacheControl: CACHE_MUTABLE,
        });
      },
    ],
  ];

  it.each(tamperings)(
    'a rebuild keeps the signed log and its actions (snapshot.json %s)',
    async (_, tamper) => {
      // Prepare: state/ lost; snapshot.json tampered with, snapshot.signed.json as the registry signed it.
      const registry = await registryWithHistory(stores());
      const { intake, site } = registry.context;
      const before = await registry.log();
      await loseState(intake);
      await tamper(site);

      // Act: the rebuild, then the applied yank's envelope uploaded again.
      await rebuildRegistry(registry.context);
      const [replayed] = await registry.run(await upload(intake, registry.yanked.bytes));

      // Assert: the log the registry signed kept; the replay refused.
      expect(lines(await registry.log())).toEqual(lines(before));
      expect(replayed?.problems.map((p) => p.code)).toEqual(['ACTION_REPLAYED']);
      expect(await yankedOf(site)).toBe(false);
    },
  );
});

describe.each(kinds)(
  'when a rebuild runs before the retry of a run that died after its log, on %s',
  (_, stores) => {
    it('refuses while no document shows that action (LOGGED_ACTION_STUCK), changing nothing', async () => {
      // Prepare: a yank of 1.1.0 whose run died once its entry was logged, before its document.
      const registry = await registryWithHistory(stores());
      await yankKilledAt(registry, 'logged', 'killed after the log');
      const before = await registry.log();

      // Act, Assess: signed over, the snapshot vouched for a yank no document shows (verify --url:
      // LOG_DISAGREES) until the retry.
      await expect(rebuildRegistry(registry.context)).rejects.toMatchObject({
        code: 'LOGGED_ACTION_STUCK',
        message: expect.stringContaining(`the yank of ${NAME}@1.1.0`),
      });
      expect(lines(await registry.log())).toEqual(lines(before));
    });

    it('leaves that action to its retry, which applies it (not ACTION_REPLAYED), and to it alone', async () => {
      // Prepare: a yank of 1.1.0 whose run died once its plugin document was written, before its page (so a
      // rebuild goes on: the document shows it) and its snapshot; its marker lost.
      const registry = await registryWithHistory(stores());
      const { intake, site } = registry.context;
      const put = site.put.bind(site);
      site.put = async (key, body, options) => {
        if (key === `plugins/${NAME}/index.html`) throw new Error('killed before the page');
        return put(key, body, options);
      };
      const { yank, key } = await yankKilledAt(registry, 'none', 'killed before the page').finally(
        () => (site.put = put),
      );
      const marker = () => intake.get(actionMarkerKey(yank.digest));
      const { submission } = JSON.parse(decoder.decode((await marker())?.body)) as { submission: string };
      await intake.delete(actionMarkerKey(yank.digest));

      // Act: a rebuild (an operator's, or one a catalog of another format starts), another upload of the
      // same envelope, then the retry.
      await rebuildRegistry(registry.context);
      const [replayed] = await registry.run(await upload(intake, yank.bytes));
      const [retried] = await registry.run(key);

      // Assert: the other upload is a replay; the retry applies it, logged once; its marker names its upload.
      expect(replayed?.problems.map((p) => p.code)).toEqual(['ACTION_REPLAYED']);
      expect(retried?.status, JSON.stringify(retried?.problems)).toBe('accepted');
      const version = async (v: string) =>
        (
          JSON.parse(decoder.decode((await site.get(pluginDocumentKey(NAME)))?.body)) as PluginDocument
        ).versions.find((record) => record.version === v)?.yanked;
      expect(await version('1.1.0')).toBe(true);
      expect((await registry.log()).filter((entry) => entry.digest === yank.digest)).toHaveLength(1);
      expect(JSON.parse(decoder.decode((await marker())?.body))).toMatchObject({ submission });
    });
  },
);

describe.each(kinds)(
  'when a run died after a snapshot vouched for its action, then state/ was lost, on %s',
  (_, stores) => {
    it('the rebuild leaves the retry its action, recorded as done (not ACTION_REPLAYED); a replay is refused', async () => {
      // Prepare: a yank of 1.1.0 whose run died once its snapshot was committed, before its outcome; a
      // publish after it (another snapshot vouching for its entry); then state/ lost, and the rebuild.
      const registry = await registryWithHistory(stores());
      const { intake, site } = registry.context;
      const { yank, key } = await yankKilledAt(registry, 'committed', 'killed after the snapshot');
      expect((await registry.publish('1.2.0'))[0]?.status).toBe('accepted');
      const logged = (await registry.log()).filter((entry) => entry.digest === yank.digest);
      expect(logged).toHaveLength(1);
      await loseState(intake);
      await rebuildRegistry(registry.context);

      // Act: the retry of the upload that applied it, then another upload of the same envelope.
      const [retried] = await registry.run(key);
      const [replayed] = await registry.run(await upload(intake, yank.bytes));

      // Assert: the retry accepted at its entry, as the run that died would have recorded it; 1.1.0 yanked,
      // logged once; the other upload a replay.
      expect(retried, JSON.stringify(retried?.problems)).toMatchObject({
        status: 'accepted',
        seq: logged[0]?.seq,
      });
      expect(replayed?.problems.map((p) => p.code)).toEqual(['ACTION_REPLAYED']);
      const doc = JSON.parse(
        decoder.decode((await site.get(pluginDocumentKey(NAME)))?.body),
      ) as PluginDocument;
      expect(doc.versions.find((record) => record.version === '1.1.0')?.yanked).toBe(true);
      expect((await registry.log()).filter((entry) => entry.digest === yank.digest)).toHaveLength(1);
    });
  },
);

describe('when a rebuild that restores markers cannot read an upload waiting in incoming/', () => {
  /** A registry that lost state/, an action's upload waiting, and its intake store failing `code` on it. */
  const failingOnWaiting = async (code: 'STORE_IO' | 'STORE_UNREADABLE' | 'STORE_TOO_LARGE') => {
    const registry = await registryWithHistory({ intake: new MemoryStore(), site: new MemoryStore() });
    const { intake } = registry.context;
    const action = await registry.sign({ action: 'yank', plugin: NAME, version: '1.1.0' }, 2 * HOUR);
    const waiting = await upload(intake, action.bytes);
    await loseState(intake);
    const failing = withMethod(intake, 'get', (get) => async (key, options) => {
      if (key === waiting) throw new StoreError(code, key, 'injected');
      return get(key, options);
    });
    return { ...registry.context, intake: failing };
  };

  it('fails with the store (STORE_IO), to run again, rather than restore a marker naming no upload', async () => {
    const ctx = await failingOnWaiting('STORE_IO');

    await expect(rebuildRegistry(ctx)).rejects.toThrow(StoreError);
    await expect(rebuildRegistry(ctx)).rejects.toMatchObject({ code: 'STORE_IO' });
  });

  it.each(['STORE_UNREADABLE', 'STORE_TOO_LARGE'] as const)(
    'passes over an upload the store answers %s (not an action to resume) and restores the rest',
    async (code) => {
      const ctx = await failingOnWaiting(code);

      await rebuildRegistry(ctx);

      expect((await listAll(ctx.intake, ACTION_MARKERS_PREFIX)).length).toBeGreaterThan(0);
    },
  );
});

describe('when a rebuild is refused for an entry altered in an earlier segment of the log', () => {
  it('leaves the catalog as it was: the batches after it still publish', async () => {
    // Prepare: a log of two segments (256 entries and more), all within an action's age; an entry of the
    // first edited where it is published (batches read only the last segment).
    const base = await makeRegistry();
    const registry = await registryWithHistory({ intake: base.intake, site: base.site });
    const { intake, site } = registry.context;
    const keys: string[] = [];
    for (let i = 0; i < LOG_SEGMENT_ENTRIES; i++) {
      const body: ActionBody = { action: i % 2 === 0 ? 'yank' : 'unyank', plugin: NAME, version: '1.1.0' };
      keys.push(await upload(intake, (await registry.sign(body, 2 * HOUR)).bytes));
    }
    expect((await registry.run(...keys)).map((outcome) => outcome.status)).toEqual(
      keys.map(() => 'accepted'),
    );
    await alterYankEntry(site);

    // Act and assert: the rebuild refused by type and code; the publish after it accepted, as before the
    // rebuild.
    const rebuilt = rebuildRegistry(registry.context);
    await expect(rebuilt).rejects.toBeInstanceOf(TrustError);
    await expect(rebuilt).rejects.toMatchObject({ code: 'LOG_ENTRY_ALTERED' });
    const [published] = await registry.publish('1.2.0');
    expect(published?.status, JSON.stringify(published?.problems)).toBe('accepted');
  });
});

describe.each(kinds)('when a key rotation meets a lost state/, on %s', (_, stores) => {
  it('rotates: the log its old key signed kept, the rotation logged after it', async () => {
    // Prepare: the rotation to a new key, made the registry's signing key; then state/ lost.
    const registry = await registryWithHistory(stores());
    const before = await registry.log();
    const next = await createSigner((await testKey('registry-2')).secretKey);
    const rotation = await signRotation({
      registry: registry.context.config.url,
      sequence: 1,
      previous: registry.signer,
      next,
      now: new Date('2026-11-02T00:00:00Z'),
    });
    await loseState(registry.context.intake);

    // Act: the published snapshot is the old key's until the rotation's own is published.
    const result = await rotateRegistryKey({ ...registry.context, signer: next }, rotation.bytes);

    // Assert: rotated; the new key's snapshot signs every entry as it was, and the rotation after them.
    expect(result.status).toBe('rotated');
    const after = await vouchedLog(registry.context.site, next.publicKey);
    expect(lines(after.slice(0, before.length))).toEqual(lines(before));
    expect(after.slice(before.length).map((entry) => entry.type)).toEqual(['rotate-key']);
  });
});

describe.each(kinds)('when the published store lost its files, on %s', (_, stores) => {
  it('a rebuild refuses (LOG_TRUNCATED) rather than sign an empty registry over the log it lost', async () => {
    // Prepare: every published object gone; the intake store as it was.
    const registry = await registryWithHistory(stores());
    const { site } = registry.context;
    for (const { key } of await listAll(site, '')) await site.delete(key);

    // Act
    const rebuilt = rebuildRegistry(registry.context);

    // Assert: refused by type and code, naming what to do; nothing published.
    await expect(rebuilt).rejects.toBeInstanceOf(TrustError);
    await expect(rebuilt).rejects.toMatchObject({
      code: 'LOG_TRUNCATED',
      message: expect.stringContaining('from a copy'),
    });
    expect(await listAll(site, '')).toEqual([]);
  });
});

describe.each(kinds)('a published log head taken in place of a lost record, on %s', (_, stores) => {
  /** The record lost; `currentLogHead` then. */
  const headAfterLoss = async (registry: Awaited<ReturnType<typeof registryWithHistory>>) => {
    const { intake, site } = registry.context;
    await intake.delete(LOG_STATE_KEY);
    const published = JSON.parse(decoder.decode((await site.get(SNAPSHOT_KEY))?.body)) as SnapshotDocument;
    return currentLogHead(registry.context, await readLogHead(intake), published);
  };

  it('is only one signed by the registry key (SNAPSHOT_BAD_SIGNATURE for a planted snapshot)', async () => {
    // Prepare: the published snapshot re-signed by a stranger's key, vouching for the same log.
    const registry = await registryWithHistory(stores());
    const { site } = registry.context;
    const envelope = JSON.parse(decoder.decode((await site.get(SIGNED_SNAPSHOT_KEY))?.body)) as {
      snapshot: string;
      signature: string;
    };
    const stranger = await createSigner((await testKey('stranger')).secretKey);
    envelope.signature = await stranger.sign(new TextEncoder().encode(envelope.snapshot));
    await site.put(SIGNED_SNAPSHOT_KEY, new TextEncoder().encode(JSON.stringify(envelope)), {
      contentType: 'application/json',
      cacheControl: CACHE_MUTABLE,
    });

    // Act and assert: refused by type and code; no head recorded.
    const head = headAfterLoss(registry);
    await expect(head).rejects.toBeInstanceOf(TrustError);
    await expect(head).rejects.toMatchObject({ code: 'SNAPSHOT_BAD_SIGNATURE' });
    expect(await registry.context.intake.get(LOG_STATE_KEY)).toBeUndefined();
  });

  it('is only one the published segment ends at (LOG_ENTRY_ALTERED for an edited entry)', async () => {
    // Prepare: the yank's entry edited where the log is published.
    const registry = await registryWithHistory(stores());
    await alterYankEntry(registry.context.site);

    // Act and assert: refused by type and code; no head recorded.
    const head = headAfterLoss(registry);
    await expect(head).rejects.toBeInstanceOf(TrustError);
    await expect(head).rejects.toMatchObject({ code: 'LOG_ENTRY_ALTERED' });
    expect(await registry.context.intake.get(LOG_STATE_KEY)).toBeUndefined();
  });
});

describe("when a rebuild writes back what a lost state/ held, on a store with a rate (S3's, per prefix)", () => {
  const NOW = new Date('2026-11-20T00:00:00Z');
  const ACTIONS = 1_000;
  const PLUGINS = 100;
  /** A published log of ACTIONS yanks and unyanks over PLUGINS plugins, made in the last day. */
  const recentActions = async () => {
    const site = new MemoryStore();
    const head = await publishLogEntries(
      site,
      Array.from({ length: ACTIONS }, (_, i) => {
        const made = new Date(NOW.getTime() - 24 * HOUR + i * 1000).toISOString();
        return {
          time: made,
          type: i % 2 === 0 ? ('yank' as const) : ('unyank' as const),
          plugin: `plugin-${i % PLUGINS}`,
          version: '1.0.0',
          signer: 'A'.repeat(40),
          digest: sha256Hex(`action ${i}`),
          created: made,
        };
      }),
    );
    return { site, head };
  };
  /** An empty intake store whose puts each take `latencyMs`, the time each began recorded. */
  const timedIntake = (latencyMs: number) => {
    const began: number[] = [];
    let inFlight = 0;
    let mostInFlight = 0;
    const intake = withMethod(new MemoryStore(), 'put', (put) => async (key, body, options) => {
      began.push(performance.now());
      mostInFlight = Math.max(mostInFlight, ++inFlight);
      try {
        await new Promise((resolve) => setTimeout(resolve, latencyMs));
        await put(key, body, options);
      } finally {
        inFlight--;
      }
    });
    return { intake, began, mostInFlight: () => mostInFlight };
  };
  /**
   * The restore, run on a fake clock (the timers and `performance.now()` the rate limit and the store above
   * read), advanced a millisecond at a time until it settles: what the limit grants and when is then the
   * same on a loaded machine as on an idle one, where on the real clock a pause between a grant and its put
   * bunched the puts recorded past the bound.
   */
  const restoreOnFakeClock = async (ctx: PipelineContext, head: LogHead) => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    try {
      let settled = false;
      const restoring = restoreActionRecords(ctx, head, NOW).finally(() => {
        settled = true;
      });
      const started = performance.now();
      while (!settled && performance.now() - started < 60_000) await vi.advanceTimersByTimeAsync(1);
      return { restored: await restoring, tookMs: performance.now() - started };
    } finally {
      vi.useRealTimers();
    }
  };

  it('begins no more writes a second than RESTORE_WRITES_PER_SECOND, however fast the store answers', async () => {
    // Prepare: a store that answers at once (bounded flight alone would send every write within milliseconds).
    const { site, head } = await recentActions();
    const timed = timedIntake(0);
    const base = await makeRegistry();

    // Act
    const { restored, tookMs } = await restoreOnFakeClock(
      { ...base.context, site, intake: timed.intake },
      head,
    );

    // Assess: every marker and order written; no window of a tenth of a second began more than its share and
    // the hundredth of a second's worth the limit holds at most (limitRate); so the whole took at least the
    // rate's time for what the bucket did not hold.
    expect(restored).toEqual({ markers: ACTIONS, orders: PLUGINS });
    expect(timed.began).toHaveLength(ACTIONS + PLUGINS);
    const share = RESTORE_WRITES_PER_SECOND / 10 + RESTORE_WRITES_PER_SECOND / 100;
    let most = 0;
    for (let last = 0, first = 0; last < timed.began.length; last++) {
      while ((timed.began[last] as number) - (timed.began[first] as number) >= 100) first++;
      most = Math.max(most, last - first + 1);
    }
    expect(most).toBeLessThanOrEqual(share);
    const held = RESTORE_WRITES_PER_SECOND / 100;
    expect(tookMs).toBeGreaterThanOrEqual(((ACTIONS + PLUGINS - held) * 1000) / RESTORE_WRITES_PER_SECOND);
  });

  it('keeps RESTORE_WRITE_CONCURRENCY writes in flight while the store answers slower than the rate', async () => {
    // Prepare: 40 ms a write, S3's latency at its slower: the rate would allow more than are in flight.
    const { site, head } = await recentActions();
    const timed = timedIntake(40);
    const base = await makeRegistry();

    // Act
    await restoreOnFakeClock({ ...base.context, site, intake: timed.intake }, head);

    // Assess: more than the 32 a restore wrote at once before, and never more than its bound.
    expect(timed.mostInFlight()).toBeGreaterThan(32);
    expect(timed.mostInFlight()).toBeLessThanOrEqual(RESTORE_WRITE_CONCURRENCY);
  });
});

describe.each(kinds)(
  'when the log record is put back older and snapshot.json planted to match it, on %s',
  (_, stores) => {
    it('takes the head the signed snapshot vouches for: a batch appends nothing over its entries', async () => {
      // Prepare: state/log.json put back as it was at two entries, and snapshot.json (unsigned) claiming the
      // same two, by someone who may write both stores; snapshot.signed.json as the registry signed it.
      const registry = await registryWithHistory(stores());
      const { intake, site } = registry.context;
      const before = await registry.log();
      const older = { length: 2, head: before[2]?.prev };
      await intake.put(LOG_STATE_KEY, new TextEncoder().encode(`${JSON.stringify(older)}\n`), {
        contentType: 'application/json',
        cacheControl: CACHE_PRIVATE,
      });
      const published = JSON.parse(decoder.decode((await site.get(SNAPSHOT_KEY))?.body)) as SnapshotDocument;
      await site.put(SNAPSHOT_KEY, new TextEncoder().encode(JSON.stringify({ ...published, log: older })), {
        contentType: 'application/json',
        cacheControl: CACHE_MUTABLE,
      });

      // Act: the head a batch would append to and sign; a publish.
      const head = await currentLogHead(registry.context, await readLogHead(intake), {
        ...published,
        log: older as SnapshotDocument['log'],
      });
      await registry.publish('1.2.0').catch(() => undefined);

      // Assert: the signed head, recorded again; the published entries are not appended over, whatever
      // becomes of the publish (snapshot.json is not the one the registry committed).
      expect(head.length).toBe(before.length);
      const segment = decoder.decode((await site.get(logSegmentKey(0)))?.body).split('\n');
      expect(segment.slice(0, before.length)).toEqual(lines(before));
    });
  },
);

describe.each(kinds)('when a run died after logging a yank, before its marker, on %s', (_, stores) => {
  /** The registry, and a yank of 1.1.0 whose run died once its entry was logged, its marker not written. */
  async function diedAfterLog() {
    const registry = await registryWithHistory(stores());
    const { intake } = registry.context;
    const { yank, key } = await yankKilledAt(registry, 'logged', 'killed after the log');
    await intake.delete(actionMarkerKey(yank.digest));
    return { registry, yank, key };
  }
  const intentRecords = async (intake: Store) =>
    (await listAll(intake, 'state/log-intents/')).map((o) => o.key);

  it('finishes it from its envelope in the log when its upload was deleted: the next batch, of nothing, shows it', async () => {
    const { registry, yank, key } = await diedAfterLog();
    const { intake, site } = registry.context;
    await intake.delete(key);

    // Act: the next batch (the event of the upload delivered again: incoming/ holds nothing).
    const { outcomes } = await processSubmissions(registry.context);

    // Assert: shown as logged, once; its outcome the acceptance at its entry; no intent record left.
    expect(await yankedOf(site, '1.1.0')).toBe(true);
    const logged = (await registry.log()).filter((entry) => entry.digest === yank.digest);
    expect(logged).toHaveLength(1);
    expect(outcomes.map((o) => [o.status, o.seq])).toEqual([['accepted', logged[0]?.seq]]);
    expect(await intentRecords(intake)).toEqual([]);
  });

  it('accepts its retry at its entry, its intent record lost and a snapshot since vouching for it, and refuses a later copy', async () => {
    const { registry, yank, key } = await diedAfterLog();
    const { intake, site } = registry.context;
    for (const record of await intentRecords(intake)) await intake.delete(record);
    expect((await registry.publish('1.2.0'))[0]?.status).toBe('accepted');
    const logged = (await registry.log()).filter((entry) => entry.digest === yank.digest);
    expect(logged).toHaveLength(1);

    // Act: the retry of the upload the run took; a copy of the envelope put a second and more after it was
    // published (the stores' times may be to the second).
    const [retried] = await registry.run(key);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const [copied] = await registry.run(await upload(intake, yank.bytes));

    // Assert: the retry accepted at its entry and shown; the copy a replay; logged once.
    expect(retried, JSON.stringify(retried?.problems)).toMatchObject({
      status: 'accepted',
      seq: logged[0]?.seq,
    });
    expect(copied?.problems.map((p) => p.code)).toEqual(['ACTION_REPLAYED']);
    expect(await yankedOf(site, '1.1.0')).toBe(true);
    expect((await registry.log()).filter((entry) => entry.digest === yank.digest)).toHaveLength(1);
  });
});

describe.each(kinds)(
  'when a run died after logging a yank whose upload and envelope are gone, on %s',
  (_, stores) => {
    it('one batch finds nothing to finish it from, and the batches after it no longer wait for the log for it', async () => {
      const registry = await registryWithHistory(stores());
      const { intake, site } = registry.context;
      const { yank, key } = await yankKilledAt(registry, 'logged', 'killed after the log');
      await intake.delete(key);
      await site.delete(actionEnvelopeKey(yank.digest));
      expect(namesOwed(await readIntentRecords(intake))).toBe(true);

      // Act: a batch of nothing, which owes the yank from the log and finds no envelope to finish it from.
      const { outcomes } = await processSubmissions(registry.context);

      // Assert: nothing finished; its record kept (its upload, met again, is still that run's), owing nothing,
      // marked so with the hash of its entry's line kept (what a lost log record takes the entry by).
      expect(outcomes).toEqual([]);
      const records = await readIntentRecords(intake);
      expect([...records.values()].some((intents) => intents.size > 0)).toBe(true);
      expect(namesOwed(records)).toBe(false);
      const entry = (await registry.log()).find((e) => e.digest === yank.digest) as LogEntry;
      expect([...records.values()].flatMap((intents) => [...intents.values()])).toEqual([
        { seq: entry.seq, type: 'yank', digest: yank.digest, hash: lineHash(entryLine(entry)), unowed: true },
      ]);

      // Act: its upload put back, unchanged, where it was.
      await intake.put(key, yank.bytes, { contentType: 'application/json', cacheControl: 'no-store' });
      const [retried] = await registry.run(key);

      // Assert: finished at its entry, shown, logged once; no record left.
      const logged = (await registry.log()).filter((entry) => entry.digest === yank.digest);
      expect(logged).toHaveLength(1);
      expect(retried, JSON.stringify(retried?.problems)).toMatchObject({
        status: 'accepted',
        seq: logged[0]?.seq,
      });
      expect(await yankedOf(site, '1.1.0')).toBe(true);
      expect((await listAll(intake, 'state/log-intents/')).map((o) => o.key)).toEqual([]);
    });
  },
);

describe.each(kinds)(
  'when an intent record names an entry the log does not hold at its seq, on %s',
  (_, stores) => {
    it('one batch finds nothing to finish, and the batches after it no longer wait for the log for it', async () => {
      const registry = await registryWithHistory(stores());
      const { intake } = registry.context;
      const length = (await registry.log()).length;
      expect(length).toBeGreaterThan(2);
      // Runs that died before their log head was recorded: two records whose entries were appended over
      // since (a flush's, and one of the earlier shape, a submission), and one naming an entry past the head.
      const put = (key: string, record: unknown) =>
        intake.put(key, new TextEncoder().encode(JSON.stringify(record)), {
          contentType: 'application/json',
          cacheControl: 'no-store',
        });
      const digest = 'ab'.repeat(32);
      await put('state/log-intents/batch-1.json', {
        intents: { 'gone-0123456789ab': { seq: 1, type: 'yank', digest } },
      });
      await put('state/log-intents/gone-ba9876543210.json', { seq: 2, type: 'publish', digest });
      const past = `state/log-intents/batch-${length + 5}.json`;
      await put(past, { intents: { 'gone-aaaaaaaaaaaa': { seq: length + 5, type: 'yank', digest } } });
      expect(namesOwed(await readIntentRecords(intake))).toBe(true);

      // Act: a batch of nothing.
      const { outcomes } = await processSubmissions(registry.context);

      // Assert: nothing finished, the records kept, none owing anything.
      expect(outcomes).toEqual([]);
      const records = await readIntentRecords(intake);
      expect([...records.keys()].sort()).toEqual(
        ['state/log-intents/batch-1.json', past, 'state/log-intents/gone-ba9876543210.json'].sort(),
      );
      expect(namesOwed(records)).toBe(false);
    });
  },
);
