/**
 * The registry session behind a CDN edge that caches as the AWS deployment's does (test/support/edge-cache.ts):
 * the snapshot by its own name, each document by its `?v=`, the origin ignoring `v`. After a publish the edge
 * answers the snapshot of the generation before until the invalidation, while a document's `?v=` it had not
 * cached is the origin's new bytes; and anyone may have the edge keep a document's old bytes under the `?v=`
 * of its next digest by asking for it before the publish lands. The session reads the snapshot again past
 * every cache, held to every check a snapshot is, and a document past every cache once, then refuses. The
 * log's segments (asked for by the head the snapshot signs) and the key rotations (by their names) are read
 * past every cache once when what the edge kept fails the check.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRegistryServer, listenRegistryServer } from '../../cli/local/server.ts';
import type { PlugindexClient } from '../../client/client.ts';
import { ContentCache } from '../../client/disk/cache.ts';
import type { TrustRecord } from '../../client/disk/state.ts';
import { createHttpFetcher } from '../../client/fetcher.ts';
import { RegistrySession } from '../../client/session.ts';
import { fixedClock } from '../../index-builder/clock.ts';
import {
  binKey,
  binOf,
  pluginDocumentKey,
  SEARCH_KEY,
  SIGNED_SNAPSHOT_KEY,
} from '../../index-builder/layout.ts';
import { LOG_SEGMENT_ENTRIES, logSegmentKey, segmentOf } from '../../index-builder/log.ts';
import type { LogHead, SnapshotDocument } from '../../index-builder/model.ts';
import { processSubmissions } from '../../index-builder/pipeline/index.ts';
import { rotationKey } from '../../index-builder/rotation.ts';
import { createSigner, readPublicKey } from '../../index-builder/signing.ts';
import type { StoredObject } from '../../index-builder/store.ts';
import { httpClient } from '../support/client.ts';
import { type EdgeCache, startEdgeCache } from '../support/edge-cache.ts';
import {
  encode,
  makeBundle,
  makeRegistry,
  type TestRegistry,
  testKey,
  validManifest,
} from '../support/fixtures.ts';
import { appendLog, rotateKeyOnce } from '../support/lifecycle.ts';

const NAME = 'demo-plugin';

let registry: TestRegistry;
let origin: { url: string; close: () => Promise<void> };
let edge: EdgeCache;
let root: string;

async function publish(version: string): Promise<void> {
  const bundle = await makeBundle({
    manifest: validManifest({ name: NAME, version }),
    artifacts: [{ os: 'linux', arch: 'amd64', name: 'tool', body: encode(`tool ${version}`) }],
  });
  const context = { ...registry.context, compressionThresholdBytes: 100 };
  await processSubmissions(context, await registry.submit(bundle));
}

/** The origin's objects now, to serve again later (what it held before a publish landed). */
function siteNow(): Map<string, StoredObject> {
  return new Map(registry.site.objects);
}
function serve(objects: Map<string, StoredObject>): void {
  registry.site.objects.clear();
  for (const [key, object] of objects) registry.site.objects.set(key, object);
}

/** The snapshot the origin serves now. */
function servedSnapshot(): SnapshotDocument {
  const signed = JSON.parse(
    new TextDecoder().decode(registry.site.objects.get(SIGNED_SNAPSHOT_KEY)?.body),
  ) as { snapshot: string };
  return JSON.parse(signed.snapshot) as SnapshotDocument;
}

/** What the edge was asked past every cache (a `v` that is no bare digest), each as `<path>?v=<…>-fresh`. */
function pastCaches(): string[] {
  return edge.log
    .map((line) => line.replace(/ (hit|miss)$/, ''))
    .filter((line) => /\?v=/.test(line) && !/\?v=[0-9a-f]{64}$/.test(line))
    .map((line) =>
      line.replace(/\?v=([0-9a-f]{64}-)?[0-9a-f]{24}$/, (_, digest) => `?v=${digest ?? ''}fresh`),
    );
}

/** What the edge answers `path` with in one coding (anyone may ask it anything). */
function askEdge(path: string, coding = 'br, gzip', at: EdgeCache = edge): Promise<number> {
  return new Promise<number>((resolve, reject) =>
    http
      .get(`${at.url}/${path}`, { headers: { 'accept-encoding': coding } }, (r) => {
        r.resume();
        r.on('end', () => resolve(r.statusCode ?? 0));
      })
      .on('error', reject),
  );
}

let machines = 0;
/** A machine that added the registry through the edge: it holds the snapshot served then. */
async function machine(): Promise<{ client: () => PlugindexClient; home: string }> {
  machines += 1;
  const home = join(root, `m${machines}`);
  const client = () => httpClient(home);
  const c = client();
  try {
    await c.addRegistry({ name: 'test', url: edge.url, pin: { armored: registry.registryKey.publicKey } });
  } finally {
    await c.close();
  }
  return { client, home };
}

async function using<T>(make: () => PlugindexClient, body: (c: PlugindexClient) => Promise<T>): Promise<T> {
  const c = make();
  try {
    return await body(c);
  } finally {
    await c.close();
  }
}

async function generationKept(home: string): Promise<number> {
  const state = JSON.parse(await readFile(join(home, 'data', 'trust', 'test', 'state.json'), 'utf8'));
  return state.highest_generation as number;
}

beforeAll(async () => {
  registry = await makeRegistry();
  await publish('1.0.0');
  origin = await listenRegistryServer(createRegistryServer({ site: registry.site }), 0);
  edge = await startEdgeCache(origin.url);
  root = await mkdtemp(join(tmpdir(), 'plugindex-session-'));
});

afterAll(async () => {
  await edge.close();
  await origin.close();
  await rm(root, { recursive: true, force: true });
});

describe('when the edge answers the snapshot of the generation before a publish', () => {
  it('reads the snapshot again past every cache and searches the documents it names', async () => {
    // Prepare: the edge keeps the snapshot this machine reads; a publish lands behind it.
    edge.flush();
    const m = await machine();
    await publish('1.0.1');
    const published = servedSnapshot().generation;
    edge.log.length = 0;

    // Act
    const hits = await using(m.client, (c) => c.search({ terms: [NAME] }));

    // Assess: the edge's 304 named the old search.json, which the origin no longer holds; the snapshot
    // read again is the publish's, and its search.json lists the new version.
    expect(hits.map((h) => [h.entry.name, h.entry.latest_version])).toEqual([[NAME, '1.0.1']]);
    expect(pastCaches()).toEqual([`/${SIGNED_SNAPSHOT_KEY}?v=fresh`]);
    expect(await generationKept(m.home)).toBe(published);
  });

  it('installs the version the snapshot read again names, through its bin and plugin document', async () => {
    edge.flush();
    const m = await machine();
    await publish('1.0.2');
    edge.log.length = 0;

    const result = await using(m.client, (c) =>
      c.install({ requests: [NAME], dir: join(m.home, 'plugins'), lockfile: join(m.home, 'plugindex.lock') }),
    );

    expect(result.items.map((item) => [item.name, item.version])).toEqual([[NAME, '1.0.2']]);
    expect(pastCaches()).toEqual([`/${SIGNED_SNAPSHOT_KEY}?v=fresh`]);
  });

  it('installs when the plugin document the bin at the edge names has grown at the origin', async () => {
    // Prepare: the edge holds the snapshot and the bin of before the publish, not the plugin document, so
    // the one asked for by the old digest is the origin's new one: more bytes than the old bin lists.
    edge.flush();
    const m = await machine();
    const bin = binKey(binOf(NAME));
    expect(await askEdge(`${bin}?v=${servedSnapshot().documents[bin]?.sha256}`)).toBe(200);
    const listing = JSON.parse(new TextDecoder().decode(registry.site.objects.get(bin)?.body));
    const listed = listing.documents[pluginDocumentKey(NAME)] as { sha256: string; size: number };
    await publish('1.0.3');
    expect(registry.site.objects.get(pluginDocumentKey(NAME))?.size).toBeGreaterThan(listed.size);
    edge.log.length = 0;

    const result = await using(m.client, (c) =>
      c.install({ requests: [NAME], dir: join(m.home, 'plugins'), lockfile: join(m.home, 'plugindex.lock') }),
    );

    expect(edge.log).toContain(`/${pluginDocumentKey(NAME)}?v=${listed.sha256} miss`);
    expect(result.items.map((item) => [item.name, item.version])).toEqual([[NAME, '1.0.3']]);
    expect(pastCaches()).toEqual([`/${SIGNED_SNAPSHOT_KEY}?v=fresh`]);
  });

  it('refuses a document the origin serves otherwise than the snapshot read again names, after one read past every cache', async () => {
    edge.flush();
    const m = await machine();
    const honest = siteNow();
    const tampered = siteNow();
    // As long as the document the snapshot lists, other bytes, in each coding the origin serves it in.
    const document = tampered.get(SEARCH_KEY) as StoredObject;
    const other = encode(' '.repeat(document.size));
    const codings = { '': other, '.br': brotliCompressSync(other), '.gz': gzipSync(other) };
    for (const [suffix, body] of Object.entries(codings)) {
      const object = tampered.get(`${SEARCH_KEY}${suffix}`) as StoredObject;
      tampered.set(object.key, { ...object, body, size: body.byteLength, etag: `"tampered${suffix}"` });
    }
    serve(tampered);
    edge.log.length = 0;
    try {
      await expect(using(m.client, (c) => c.search({ terms: [NAME] }))).rejects.toMatchObject({
        name: 'TrustError',
        code: 'DOCUMENT_MISMATCH',
      });
      // The document read past every cache once: as brotli, then as itself (client/fetcher.ts).
      const listed = servedSnapshot().documents[SEARCH_KEY]?.sha256 as string;
      expect(pastCaches()).toEqual([
        `/${SIGNED_SNAPSHOT_KEY}?v=fresh`,
        `/${SEARCH_KEY}?v=${listed}-fresh`,
        `/${SEARCH_KEY}?v=${listed}-fresh`,
      ]);
    } finally {
      serve(honest);
    }
  });

  it('refuses a snapshot read again that is older than the one the edge answered (SNAPSHOT_ROLLBACK)', async () => {
    // The origin put back at a generation before the one this machine accepted from the edge.
    const before = siteNow();
    await publish('1.0.4');
    const after = siteNow();
    edge.flush();
    const m = await machine();
    const accepted = await generationKept(m.home);
    serve(before);
    edge.log.length = 0;
    try {
      await expect(using(m.client, (c) => c.search({ terms: [NAME] }))).rejects.toMatchObject({
        name: 'TrustError',
        code: 'SNAPSHOT_ROLLBACK',
      });
      expect(await generationKept(m.home)).toBe(accepted);
    } finally {
      serve(after);
    }
  });
});

describe('when reads side by side meet a snapshot the edge kept from before a publish', () => {
  it('reads the snapshot again once for all of them', async () => {
    // Prepare: one session over the edge, opened on the snapshot the edge keeps; a publish lands behind it.
    edge.flush();
    const { key } = await readPublicKey(registry.registryKey.publicKey);
    const records: TrustRecord[] = [];
    const session = new RegistrySession(
      {
        name: 'test',
        url: edge.url,
        priority: 0,
        key_fingerprint: registry.registryKey.fingerprint,
        mirrors: [],
      },
      { name: 'test', bases: [edge.url], timeoutMs: 10_000 },
      key,
      { fingerprint: registry.registryKey.fingerprint, armoredKey: registry.registryKey.publicKey },
      {
        fetcher: createHttpFetcher({ env: {}, retries: 0 }),
        cache: new ContentCache(await mkdtemp(join(root, 'cache-'))),
        recordTrust: async (record) => {
          records.push(record);
        },
        clock: fixedClock(new Date('2026-11-02T00:00:00Z')),
        offline: false,
        freshForMs: 0,
      },
    );
    const before = await session.open();
    await publish('1.0.6');
    edge.log.length = 0;

    // Act
    const [search, document, listed] = await Promise.all([
      session.searchDocument(),
      session.pluginDocument(NAME),
      session.listedDocument(SEARCH_KEY),
    ]);

    // Assess
    expect(search.plugins.map((p) => p.latest_version)).toEqual(['1.0.6']);
    expect(document?.versions.map((v) => v.version)).toContain('1.0.6');
    expect(new TextDecoder().decode(listed)).toBe(
      new TextDecoder().decode(registry.site.objects.get(SEARCH_KEY)?.body),
    );
    expect(pastCaches()).toEqual([`/${SIGNED_SNAPSHOT_KEY}?v=fresh`]);
    expect(records.map((r) => r.highestGeneration)).toEqual([before.generation, servedSnapshot().generation]);
  });
});

describe("when someone had the edge keep a document's old bytes under its next digest", () => {
  it('reads that document past every cache once the snapshot read again names the same digest', async () => {
    // Prepare: the next publish's search.json digest, asked for at the edge while the origin still holds
    // the old bytes (as anyone who can predict it may), then the publish lands.
    edge.flush();
    const m = await machine();
    const before = siteNow();
    await publish('1.0.7');
    const next = servedSnapshot().documents[SEARCH_KEY]?.sha256 as string;
    const after = siteNow();
    serve(before);
    // In each coding a client asks for, the document itself too (client/fetcher.ts asks for it when a
    // variant decodes to other bytes).
    for (const coding of ['br, gzip', 'identity'])
      expect(await askEdge(`${SEARCH_KEY}?v=${next}`, coding)).toBe(200);
    serve(after);
    edge.log.length = 0;

    // Act
    const hits = await using(m.client, (c) => c.search({ terms: [NAME] }));

    // Assess: the edge's entry under the new digest held the old bytes; the document read past every
    // cache is the publish's.
    expect(edge.log).toContain(`/${SEARCH_KEY}?v=${next} hit`);
    expect(hits.map((h) => [h.entry.name, h.entry.latest_version])).toEqual([[NAME, '1.0.7']]);
    expect(pastCaches()).toEqual([`/${SIGNED_SNAPSHOT_KEY}?v=fresh`, `/${SEARCH_KEY}?v=${next}-fresh`]);
  });
});

describe('when a publish grows the transparency log behind the edge', () => {
  it('checks the log of the snapshot the edge kept against the grown last segment, then the publish', async () => {
    // Prepare: the edge keeps a snapshot newer than the one this machine remembers the log of; another
    // publish lands behind it, its entry in the same segment.
    edge.flush();
    const m = await machine();
    await publish('1.1.0');
    edge.flush();
    expect(await askEdge(SIGNED_SNAPSHOT_KEY)).toBe(200);
    const kept = servedSnapshot().log as LogHead;
    await publish('1.1.1');
    const published = servedSnapshot();
    expect(segmentOf((published.log as LogHead).length - 1)).toBe(segmentOf(kept.length - 1));
    edge.log.length = 0;

    // Act
    const hits = await using(m.client, (c) => c.search({ terms: [NAME] }));

    // Assess: the segment asked for by the kept snapshot's head was the origin's, longer: its first
    // entries are the ones that head signs.
    expect(edge.log).toContain(`/${logSegmentKey(segmentOf(kept.length - 1))}?v=${kept.head} miss`);
    expect(hits.map((h) => h.entry.latest_version)).toEqual(['1.1.1']);
    expect(pastCaches()).toEqual([`/${SIGNED_SNAPSHOT_KEY}?v=fresh`]);
    expect(await generationKept(m.home)).toBe(published.generation);
  });

  it('checks the log when the publish behind the edge started a new segment', async () => {
    // Prepare: the log filled to one entry short of a segment, so the snapshot the edge keeps ends a
    // segment and the publish behind it begins the next.
    edge.flush();
    const filled = servedSnapshot().log as LogHead;
    await appendLog(registry.context, LOG_SEGMENT_ENTRIES - (filled.length % LOG_SEGMENT_ENTRIES) - 1);
    const m = await machine();
    await publish('1.1.2');
    edge.flush();
    expect(await askEdge(SIGNED_SNAPSHOT_KEY)).toBe(200);
    expect((servedSnapshot().log as LogHead).length % LOG_SEGMENT_ENTRIES).toBe(0);
    await publish('1.1.3');
    const published = servedSnapshot();
    const last = segmentOf((published.log as LogHead).length - 1);
    edge.log.length = 0;

    const hits = await using(m.client, (c) => c.search({ terms: [NAME] }));

    expect(hits.map((h) => h.entry.latest_version)).toEqual(['1.1.3']);
    expect(edge.log).toContain(`/${logSegmentKey(last)}?v=${(published.log as LogHead).head} miss`);
    expect(pastCaches()).toEqual([`/${SIGNED_SNAPSHOT_KEY}?v=fresh`]);
    expect(await generationKept(m.home)).toBe(published.generation);
  });

  it.each([
    ['the last segment as it was', false],
    ['the 404 of a segment not yet begun', true],
  ])(
    'reads a segment past every cache once when someone had the edge keep %s under the next head',
    async (_, fill) => {
      // Prepare: the next publish's head, asked for at the edge while the origin still holds the log before
      // it (as anyone who can predict the head may), then the publish lands.
      edge.flush();
      if (fill) {
        const filled = servedSnapshot().log as LogHead;
        await appendLog(registry.context, LOG_SEGMENT_ENTRIES - (filled.length % LOG_SEGMENT_ENTRIES));
      }
      const m = await machine();
      const before = siteNow();
      await publish(fill ? '1.1.5' : '1.1.4');
      const next = servedSnapshot().log as LogHead;
      const segment = logSegmentKey(segmentOf(next.length - 1));
      const after = siteNow();
      serve(before);
      expect(await askEdge(`${segment}?v=${next.head}`)).toBe(fill ? 404 : 200);
      serve(after);
      edge.log.length = 0;

      // Act
      const hits = await using(m.client, (c) => c.search({ terms: [NAME] }));

      // Assess: the segment the edge kept under the new head was taken for a log cut short; read past every
      // cache, it holds the publish's entry.
      expect(edge.log).toContain(`/${segment}?v=${next.head} hit`);
      expect(hits.map((h) => h.entry.latest_version)).toEqual([fill ? '1.1.5' : '1.1.4']);
      // Every segment the check reads, read again: from the entry this machine remembers last.
      const segments = fill ? [logSegmentKey(segmentOf(next.length - 2)), segment] : [segment];
      expect(pastCaches()).toEqual([
        `/${SIGNED_SNAPSHOT_KEY}?v=fresh`,
        ...segments.map((key) => `/${key}?v=${next.head}-fresh`),
      ]);
      expect(await generationKept(m.home)).toBe(servedSnapshot().generation);
    },
  );

  it('refuses a log the origin serves cut short, after one read past every cache (LOG_TRUNCATED)', async () => {
    edge.flush();
    const m = await machine();
    await publish('1.1.6');
    const honest = siteNow();
    const head = servedSnapshot().log as LogHead;
    const segment = logSegmentKey(segmentOf(head.length - 1));
    const cut = siteNow();
    const object = cut.get(segment) as StoredObject;
    const lines = new TextDecoder().decode(object.body).split('\n').filter(Boolean);
    const body = encode(`${lines.slice(0, -1).join('\n')}\n`);
    cut.set(segment, { ...object, body, size: body.byteLength, etag: '"cut"' });
    serve(cut);
    edge.log.length = 0;
    try {
      await expect(using(m.client, (c) => c.search({ terms: [NAME] }))).rejects.toMatchObject({
        name: 'TrustError',
        code: 'LOG_TRUNCATED',
      });
      expect(pastCaches()).toEqual([`/${SIGNED_SNAPSHOT_KEY}?v=fresh`, `/${segment}?v=${head.head}-fresh`]);
    } finally {
      serve(honest);
    }
  });
});

describe('when a run after the snapshot was read again past every cache meets the snapshot the edge kept', () => {
  it('reads it past every cache again rather than take the edge for a rollback', async () => {
    // Prepare: a search after a publish read the publish's snapshot past every cache; the edge still
    // answers the one before by its name.
    edge.flush();
    const m = await machine();
    await publish('1.2.0');
    await using(m.client, (c) => c.search({ terms: [NAME] }));
    const published = servedSnapshot().generation;
    expect(await generationKept(m.home)).toBe(published);
    edge.log.length = 0;

    // Act
    const hits = await using(m.client, (c) => c.search({ terms: [NAME] }));

    // Assess
    expect(edge.log).toContain(`/${SIGNED_SNAPSHOT_KEY} hit`);
    expect(hits.map((h) => h.entry.latest_version)).toEqual(['1.2.0']);
    expect(pastCaches()).toEqual([`/${SIGNED_SNAPSHOT_KEY}?v=fresh`]);
    expect(await generationKept(m.home)).toBe(published);
  });
});

describe('when the origin is put back to a generation before one a run read past every cache', () => {
  it('refuses it after one read past every cache (SNAPSHOT_ROLLBACK)', async () => {
    edge.flush();
    const m = await machine();
    const before = siteNow();
    await publish('1.2.2');
    const after = siteNow();
    await using(m.client, (c) => c.search({ terms: [NAME] }));
    const accepted = await generationKept(m.home);
    serve(before);
    edge.flush();
    edge.log.length = 0;
    try {
      await expect(using(m.client, (c) => c.search({ terms: [NAME] }))).rejects.toMatchObject({
        name: 'TrustError',
        code: 'SNAPSHOT_ROLLBACK',
      });
      expect(pastCaches()).toEqual([`/${SIGNED_SNAPSHOT_KEY}?v=fresh`]);
      expect(await generationKept(m.home)).toBe(accepted);
    } finally {
      serve(after);
    }
  });
});

describe('when another name of the registry read a publish past every cache that the edge still answers the snapshot before of', () => {
  it('reads it past every cache rather than take the edge for a rollback of what that name accepted', async () => {
    // Prepare: one machine with two names for the registry, both at the snapshot the edge keeps; a search
    // through one after a publish read the publish's snapshot past every cache.
    edge.flush();
    const m = await machine();
    await using(m.client, (c) =>
      c.addRegistry({ name: 'other', url: edge.url, pin: { armored: registry.registryKey.publicKey } }),
    );
    await publish('1.2.3');
    await using(m.client, (c) => c.search({ terms: [NAME], registry: 'test' }));
    const published = servedSnapshot().generation;
    expect(await generationKept(m.home)).toBe(published);
    edge.log.length = 0;

    // Act
    const hits = await using(m.client, (c) => c.search({ terms: [NAME], registry: 'other' }));

    // Assess
    expect(edge.log).toContain(`/${SIGNED_SNAPSHOT_KEY} hit`);
    expect(hits.map((h) => h.entry.latest_version)).toEqual(['1.2.3']);
    expect(pastCaches()).toEqual([`/${SIGNED_SNAPSHOT_KEY}?v=fresh`]);
  });
});

describe('when the registry rotates its key while the edge keeps the snapshot before', () => {
  /** A registry of its own (a rotation changes its key for good), behind an edge of its own. */
  async function rotatingRegistry() {
    const own = await makeRegistry();
    const bundle = await makeBundle({
      manifest: validManifest({ name: NAME, version: '1.0.0' }),
      artifacts: [{ os: 'linux', arch: 'amd64', name: 'tool', body: encode('tool 1.0.0') }],
    });
    await processSubmissions(own.context, await own.submit(bundle));
    const served = await listenRegistryServer(createRegistryServer({ site: own.site }), 0);
    const cdn = await startEdgeCache(served.url);
    const next = await createSigner((await testKey('registry-2')).secretKey);
    machines += 1;
    const home = join(root, `m${machines}`);
    const client = () => httpClient(home);
    await using(client, (c) =>
      c.addRegistry({ name: 'test', url: cdn.url, pin: { armored: own.registryKey.publicKey } }),
    );
    return {
      edge: cdn,
      next,
      client,
      home,
      rotate: () => rotateKeyOnce(own, next),
      async close() {
        await cdn.close();
        await served.close();
      },
    };
  }
  const install = (home: string) => (c: PlugindexClient) =>
    c.install({ requests: [NAME], dir: join(home, 'plugins'), lockfile: join(home, 'plugindex.lock') });
  const pinned = async (home: string) =>
    JSON.parse(await readFile(join(home, 'data', 'trust', 'test', 'state.json'), 'utf8')).fingerprint;

  it('follows the rotation from the snapshot read again, and then reads past the snapshot the edge kept', async () => {
    const r = await rotatingRegistry();
    try {
      // Prepare: the edge keeps the snapshot by the first key; the rotation lands behind it.
      await r.rotate();
      r.edge.log.length = 0;

      // Act: an install, then a search in another run, while the edge still answers the first key's.
      const installed = await using(r.client, install(r.home));
      const hits = await using(r.client, (c) => c.search({ terms: [NAME] }));

      // Assess
      expect(installed.items.map((i) => i.version)).toEqual(['1.0.0']);
      expect(hits.map((h) => h.entry.name)).toEqual([NAME]);
      expect(await pinned(r.home)).toBe(r.next.fingerprint);
      expect(r.edge.log).toContain(`/${rotationKey(1)} miss`);
    } finally {
      await r.close();
    }
  });

  it('reads a rotation past every cache when the edge kept its 404 from before it was published', async () => {
    const r = await rotatingRegistry();
    try {
      // Prepare: someone asked for the next rotation before it existed; the edge keeps the 404.
      expect(await askEdge(rotationKey(1), 'br, gzip', r.edge)).toBe(404);
      await r.rotate();
      r.edge.log.length = 0;

      // Act
      const installed = await using(r.client, install(r.home));

      // Assess
      expect(r.edge.log).toContain(`/${rotationKey(1)} hit`);
      expect(installed.items.map((i) => i.version)).toEqual(['1.0.0']);
      expect(await pinned(r.home)).toBe(r.next.fingerprint);
      expect(r.edge.log.filter((line) => line.startsWith(`/${rotationKey(1)}?v=`))).toEqual([
        expect.stringMatching(/^\/keys\/rotation\/1\.json\?v=[0-9a-f]{24} miss$/),
      ]);
    } finally {
      await r.close();
    }
  });
});
