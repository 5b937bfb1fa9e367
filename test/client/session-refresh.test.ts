/**
 * One client instance kept across publishes, as a library user (a server, an editor) keeps one: the registry
 * served over real HTTP by the local server, published to while the instance lives. An explicit update
 * (`updateRegistries`, `plugindex registry update`) asks the registry every time (a conditional request, so an
 * unchanged registry answers 304) and moves the instance's reads to what it accepted; ordinary reads keep the
 * snapshot the instance opened, asked for once. An update the client refuses leaves the reads where they were
 * (under the key the instance accepted, while it checks too, when it followed a key rotation on the way),
 * one accepted while a read is under way leaves that read on the snapshot it began with (and its manifests on
 * that snapshot's key, when the update follows a key rotation), and reads side by side
 * that open the session ask for the snapshot once; two updates side by side run in turn, the later from what
 * the earlier accepted.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRegistryServer, listenRegistryServer } from '../../cli/local/server.ts';
import { createClient, type PlugindexClient } from '../../client/client.ts';
import { createHttpFetcher, type Fetcher } from '../../client/fetcher.ts';
import { fixedClock } from '../../index-builder/clock.ts';
import { binKey, binOf, SIGNED_SNAPSHOT_KEY } from '../../index-builder/layout.ts';
import { logSegmentKey, parseSegment, type ReadEntry } from '../../index-builder/log.ts';
import { signVoid } from '../../index-builder/log-void.ts';
import { processSubmissions } from '../../index-builder/pipeline/index.ts';
import { createSigner } from '../../index-builder/signing.ts';
import {
  encode,
  makeBundle,
  makeRegistry,
  type TestRegistry,
  testKey,
  validManifest,
} from '../support/fixtures.ts';
import {
  alterLine,
  appendLog,
  rewriteLog,
  rotateKeyOnce,
  segmentLines,
  serveSegment,
} from '../support/lifecycle.ts';

const NAME = 'kept-plugin';
const LINUX = { os: 'linux', arch: 'amd64' } as const;

let registry: TestRegistry;
let server: { url: string; close: () => Promise<void> };
let root: string;
let homes = 0;

/** Publishes a version of the plugin (a new snapshot generation). */
async function publish(version: string): Promise<void> {
  const bundle = await makeBundle({
    manifest: validManifest({ name: NAME, version }),
    artifacts: [{ ...LINUX, name: NAME, body: encode(`#!/bin/sh\necho ${version}\n`) }],
  });
  const { outcomes } = await processSubmissions(registry.context, await registry.submit(bundle));
  expect(outcomes.map((o) => o.status)).toEqual(['accepted']);
}

/**
 * Each snapshot request the instance sends, as `<status>` (200, or 304 for a conditional one answered so);
 * `answered`, awaited with each document's path once it is answered, holds that answer from its reader.
 */
function countingFetcher(snapshots: number[], answered?: (path: string) => Promise<void>): Fetcher {
  const http = createHttpFetcher({ env: {}, retries: 0 });
  return {
    ...http,
    document: async (endpoint, request) => {
      const response = await http.document(endpoint, request);
      if (request.path === SIGNED_SNAPSHOT_KEY) snapshots.push(response.status);
      await answered?.(request.path);
      return response;
    },
    download: (endpoint, request) => http.download(endpoint, request),
    ociBlob: (request) => http.ociBlob(request),
    ociManifest: (request) => http.ociManifest(request),
    list: (endpoint, path) => http.list(endpoint, path),
    close: () => http.close(),
  };
}

/**
 * A client instance kept for the whole test, the registry added through it; `snapshots` its snapshot
 * requests from then on. `freshForMs` as the CLI's default unless given: a check is trusted a minute (the
 * fixed clock never moves), which an explicit update must not lean on.
 */
async function keptClient(
  answered?: (path: string) => Promise<void>,
  freshForMs = 60_000,
  served: { readonly url: string; readonly key: string } = {
    url: server.url,
    key: registry.registryKey.publicKey,
  },
): Promise<{ client: PlugindexClient; home: string; snapshots: number[] }> {
  homes += 1;
  const home = join(root, `k${homes}`);
  const snapshots: number[] = [];
  const client = createClient({
    dirs: { config: join(home, 'config'), data: join(home, 'data'), cache: join(home, 'cache') },
    fetcher: countingFetcher(snapshots, answered),
    env: {},
    clock: fixedClock(new Date('2026-11-02T00:00:00Z')),
    platform: LINUX,
    offline: false,
    freshForMs,
  });
  await client.addRegistry({
    name: 'main',
    url: served.url,
    pin: { armored: served.key },
  });
  snapshots.length = 0;
  return { client, home, snapshots };
}

/**
 * The first answer whose path `matches`, held from its reader until `release`: `reached` once it is held.
 * Held from the start, or from `arm()` when `armed` is false.
 */
function holdAt(matches: (path: string) => boolean, armed = true) {
  let reach = (): void => undefined;
  const reached = new Promise<void>((resolve) => {
    reach = resolve;
  });
  let open = (): void => undefined;
  const released = new Promise<void>((resolve) => {
    open = resolve;
  });
  let holding = armed;
  return {
    reached,
    release: () => open(),
    arm: () => {
      holding = true;
    },
    answered: async (path: string) => {
      if (!matches(path) || !holding) return;
      holding = false;
      reach();
      await released;
    },
  };
}

/** A registry of its own (its key rotates in the test), the plugin's 1.0.0 published. */
async function ownRegistry(): Promise<TestRegistry> {
  const own = await makeRegistry();
  const bundle = await makeBundle({
    manifest: validManifest({ name: NAME, version: '1.0.0' }),
    artifacts: [{ ...LINUX, name: NAME, body: encode('#!/bin/sh\necho 1\n') }],
  });
  await processSubmissions(own.context, await own.submit(bundle));
  return own;
}

/** The test key the registry's key rotates to. */
async function secondKey() {
  return createSigner((await testKey('registry-2')).secretKey);
}

function generationServed(): number {
  const signed = JSON.parse(
    new TextDecoder().decode(registry.site.objects.get(SIGNED_SNAPSHOT_KEY)?.body),
  ) as { snapshot: string };
  return (JSON.parse(signed.snapshot) as { generation: number }).generation;
}

beforeAll(async () => {
  registry = await makeRegistry();
  await publish('1.0.0');
  server = await listenRegistryServer(createRegistryServer({ site: registry.site }), 0);
  root = await mkdtemp(join(tmpdir(), 'plugindex-kept-'));
});

afterAll(async () => {
  await server.close();
  await rm(root, { recursive: true, force: true });
});

describe('when the registry publishes while a client instance is kept', () => {
  it("reports the new generation on the same instance's next update, and reads through it", async () => {
    // Prepare: the instance updates (and so opens its session), then a publish lands.
    const { client, home, snapshots } = await keptClient();
    try {
      const [first] = await client.updateRegistries(['main']);
      expect(first?.error).toBeUndefined();
      expect(first?.report?.generation).toBe(generationServed());
      await publish('1.1.0');
      const published = generationServed();
      expect(published).toBeGreaterThan(first?.report?.generation ?? Number.POSITIVE_INFINITY);

      // Act
      const [second] = await client.updateRegistries(['main']);

      // Assess: asked again (not answered from the session, nor from the minute a check stays current), the
      // publish's generation accepted; the instance's reads are through it. (The first update's request is
      // conditional on the snapshot `registry add` kept: 304.)
      expect(second?.error).toBeUndefined();
      expect(second?.report).toMatchObject({ generation: published, changed: true });
      expect(snapshots).toEqual([304, 200]);
      const info = await client.info(NAME);
      expect(info.document.latest_version).toBe('1.1.0');
      const hits = await client.search({ terms: [NAME] });
      expect(hits.map((h) => h.entry.latest_version)).toEqual(['1.1.0']);
      const installed = await client.install({
        requests: [NAME],
        dir: join(home, 'plugins'),
        lockfile: join(home, 'plugindex.lock'),
      });
      expect(installed.items.map((item) => [item.name, item.version])).toEqual([[NAME, '1.1.0']]);
      expect(snapshots).toEqual([304, 200]);
    } finally {
      await client.close();
    }
  });

  it('asks again on each update of an unchanged registry, a conditional request answered 304', async () => {
    const { client, snapshots } = await keptClient();
    try {
      const [first] = await client.updateRegistries(['main']);
      const [second] = await client.updateRegistries(['main']);

      expect(first?.report?.generation).toBe(generationServed());
      expect(second?.report).toMatchObject({ generation: generationServed(), changed: false });
      expect(snapshots).toEqual([304, 304]);
    } finally {
      await client.close();
    }
  });

  it('keeps reading the generation it opened until an update, asking for the snapshot once', async () => {
    // Prepare: the instance reads (its session opened by the read: the check `registry add` made is a
    // moment old, so nothing is asked), then a publish lands.
    const { client, snapshots } = await keptClient();
    try {
      const before = await client.info(NAME);
      await publish(`1.2.${homes}`);

      // Act: a read after the publish, then an update, then a read.
      const after = await client.info(NAME);
      const asked = [...snapshots];
      const [update] = await client.updateRegistries(['main']);
      const updated = await client.info(NAME);

      // Assess: the read before the update is of the snapshot opened (its documents cached: nothing asked);
      // the update asks once, and the read after it is of the generation it accepted.
      expect(after.document.latest_version).toBe(before.document.latest_version);
      expect(asked).toEqual([]);
      expect(update?.report).toMatchObject({ generation: generationServed(), changed: true });
      expect(updated.document.latest_version).toBe(`1.2.${homes}`);
      expect(snapshots).toEqual([200]);
    } finally {
      await client.close();
    }
  });

  it('moves to the published snapshot when a read needs a document the registry no longer serves', async () => {
    // Prepare: the instance reads a plugin's document, not search.json; a publish replaces both.
    const { client, snapshots } = await keptClient();
    try {
      await client.info(NAME);
      await publish(`1.4.${homes}`);

      // Act
      const hits = await client.search({ terms: [NAME] });
      const info = await client.info(NAME);

      // Assess: search.json by the digest the opened snapshot names is the new one at this origin (it serves
      // only what it holds now): the snapshot read again past every cache (a 200), and the reads after it
      // through that one.
      expect(hits.map((h) => h.entry.latest_version)).toEqual([`1.4.${homes}`]);
      expect(info.document.latest_version).toBe(`1.4.${homes}`);
      expect(snapshots).toEqual([200]);
    } finally {
      await client.close();
    }
  });
});

describe('when reads side by side open the session', () => {
  it('asks for the snapshot once for all of them', async () => {
    // Prepare: no check is current (freshForMs 0), so the first open asks.
    const { client, snapshots } = await keptClient(undefined, 0);
    try {
      // Act
      const [info, again, hits] = await Promise.all([
        client.info(NAME),
        client.info(NAME),
        client.search({ terms: [NAME] }),
      ]);

      // Assess: one request (each read sent its own before, three here); the reads agree.
      expect(snapshots).toHaveLength(1);
      expect(again.document.latest_version).toBe(info.document.latest_version);
      expect(hits.map((h) => h.entry.latest_version)).toEqual([info.document.latest_version]);
    } finally {
      await client.close();
    }
  });
});

describe('when an update on a kept instance is accepted while a read is under way', () => {
  it('lets the read finish, its bin checked against the snapshot it read it by', async () => {
    // Prepare: the instance's first read is held once its bin is answered (the generation opened's bytes);
    // a publish then changes that bin.
    const bin = binKey(binOf(NAME));
    const { reached, release, answered } = holdAt((path) => path === bin);
    const { client } = await keptClient(answered);
    try {
      const reading = client.info(NAME);
      await reached;
      const opened = generationServed();
      await publish(`1.5.${homes}`);

      // Act: the update accepts the publish while the read holds the bin of the generation before.
      const [update] = await client.updateRegistries(['main']);
      release();
      const read = await reading;
      const next = await client.info(NAME);

      // Assess: the read under way checked its bin against the snapshot it read it by (checked against the
      // update's, which lists other bytes for it, it failed DOCUMENT_MISMATCH); the plugin document that bin
      // names is no longer served (this origin holds the publish's), so the read ends through the snapshot
      // read again, as any read behind a cache does. The next read is of the update's generation.
      expect(update?.report).toMatchObject({ generation: opened + 1, changed: true });
      expect(read.document.latest_version).toBe(`1.5.${homes}`);
      expect(next.document.latest_version).toBe(`1.5.${homes}`);
    } finally {
      await client.close();
    }
  });
});

describe('when an update on a kept instance is refused', () => {
  it('leaves its reads on the snapshot it had accepted, not the one refused', async () => {
    // Prepare: the instance accepts the registry with its log; the log is then rewritten under a new snapshot.
    const { client } = await keptClient();
    try {
      const seen = await appendLog(registry.context, 2);
      const [first] = await client.updateRegistries(['main']);
      expect(first?.error).toBeUndefined();
      const accepted = first?.report?.generation;
      const before = await client.search({ terms: [NAME] });
      await rewriteLog(registry.context, seen.length);
      await publish(`5.0.${homes}`);

      // Act
      const [refused] = await client.updateRegistries(['main']);
      const hits = await client.search({ terms: [NAME] });
      const [again] = await client.updateRegistries(['main']);

      // Assess: the rewritten history refused, each time it is asked; reads stay on what was accepted (the
      // refused snapshot names 5.0.x as latest).
      expect(refused?.error).toMatchObject({ name: 'TrustError', code: expect.stringMatching(/^LOG_/) });
      expect(hits.map((h) => h.entry.latest_version)).toEqual(before.map((h) => h.entry.latest_version));
      expect(again?.error).toMatchObject({
        name: 'TrustError',
        code: (refused?.error as { code?: string } | undefined)?.code,
      });
      expect(accepted).toBeLessThan(generationServed());
    } finally {
      await client.close();
    }
  });
});

describe('when an update on a kept instance follows a key rotation while a read is under way', () => {
  it('lets the read finish, its manifest checked against the key of the snapshot it read it by', async () => {
    // Prepare: a registry of its own (its key rotates), served; the instance's install is held once the
    // plugin document is answered (the manifest signature it carries is the first key's).
    const own = await ownRegistry();
    const served = await listenRegistryServer(createRegistryServer({ site: own.site }), 0);
    const document = `plugins/${NAME}/index.json`;
    const { reached, release, answered } = holdAt((path) => path === document);
    const { client, home } = await keptClient(answered, 60_000, {
      url: served.url,
      key: own.registryKey.publicKey,
    });
    try {
      const installing = client.install({
        requests: [NAME],
        dir: join(home, 'plugins'),
        lockfile: join(home, 'plugindex.lock'),
      });
      await reached;
      await rotateKeyOnce(own, await secondKey());

      // Act: the update follows the rotation while the install holds the first key's plugin document.
      const [update] = await client.updateRegistries(['main']);
      release();
      const installed = await installing;

      // Assess: the install under way checked the manifest its document carries against the key of the
      // snapshot it read that document by (against the rotation's, it failed as signed by another key).
      expect(update?.error).toBeUndefined();
      expect(update?.report).toMatchObject({ changed: true });
      expect(installed.items.map((p) => `${p.name}@${p.version}`)).toEqual([`${NAME}@1.0.0`]);
    } finally {
      await client.close();
      await served.close();
    }
  });
});

describe('when an update on a kept instance is following a key rotation while the log is read', () => {
  it("reads the log's voids by the key of the snapshot the read is through, not the one being checked", async () => {
    // Prepare: a registry of its own, its log holding a publish voided by its key; the instance reads it.
    const own = await ownRegistry();
    await appendLog(own.context, [
      {
        type: 'publish',
        plugin: 'ghost-plugin',
        version: '1.0.0',
        signer: (await testKey('publisher')).fingerprint,
      },
    ]);
    const segment = await own.site.get(logSegmentKey(0));
    const entries = parseSegment(segment?.body ?? new Uint8Array(), 0);
    await appendLog(own.context, [
      await signVoid({
        voided: entries[1] as ReadEntry,
        reason: 'refused for good',
        time: '2026-11-01T23:59:40.000Z',
        signer: own.signer,
        registry: own.context.config.url,
      }),
    ]);
    const served = await listenRegistryServer(createRegistryServer({ site: own.site }), 0);
    const { reached, release, arm, answered } = holdAt((path) => path.startsWith('log/'), false);
    const { client } = await keptClient(answered, 60_000, {
      url: served.url,
      key: own.registryKey.publicKey,
    });
    try {
      const before = await client.auditPlugin(NAME, {});
      await rotateKeyOnce(own, await secondKey());
      arm();
      const updating = client.updateRegistries(['main']);
      await reached;

      // Act: the log read while the update, having followed the rotation, reads the log it extends.
      const during = await client.auditPlugin(NAME, {}).catch((error: unknown) => error);
      release();
      const [update] = await updating;

      // Assess: read through the snapshot accepted, by its key (judged by the key being checked, the void
      // signed by the key before was refused as not the registry's); the update then accepted.
      expect(during).toEqual(before);
      expect(update?.error).toBeUndefined();
    } finally {
      await client.close();
      await served.close();
    }
  });
});

describe('when an update on a kept instance follows a key rotation and is refused while a read is under way', () => {
  it('leaves the read on the key the instance accepted, never the one the refused update was checking', async () => {
    // Prepare: a registry of its own, served; the instance reads it (its session opened by the first key).
    // The key then rotates, and the log served under the next key's snapshot has its last line (the
    // rotation's entry) altered: the update follows the rotation, then refuses the log it reads.
    const own = await ownRegistry();
    const served = await listenRegistryServer(createRegistryServer({ site: own.site }), 0);
    const { reached, release, arm, answered } = holdAt((path) => path.startsWith('log/'), false);
    const { client, home } = await keptClient(answered, 60_000, {
      url: served.url,
      key: own.registryKey.publicKey,
    });
    const next = await secondKey();
    try {
      const before = await client.info(NAME);
      await rotateKeyOnce(own, next);
      const lines = await segmentLines(own.context);
      await serveSegment(own.context, [...lines.slice(0, -1), alterLine(lines.at(-1) as string)]);
      arm();
      const updating = client.updateRegistries(['main']);
      await reached;

      // Act: an info and an install while the update, having followed the rotation, reads the log.
      const during = await client.info(NAME);
      const lockfile = join(home, 'plugindex.lock');
      await client.install({ requests: [NAME], dir: join(home, 'plugins'), lockfile });
      release();
      const [update] = await updating;
      const after = await client.info(NAME);

      // Assess: the update refused for the log; the reads during it and after it are under the key the
      // instance accepted (during it, they saw the rotation's key, which the instance never accepted, and the
      // install locked the registry to it).
      expect(update?.error).toMatchObject({ name: 'TrustError', code: expect.stringMatching(/^LOG_/) });
      expect(before.fingerprint).toBe(own.signer.fingerprint);
      expect(during.fingerprint).toBe(own.signer.fingerprint);
      expect(after.fingerprint).toBe(own.signer.fingerprint);
      const locked = JSON.parse(await readFile(lockfile, 'utf8')) as {
        registries: Record<string, { key_fingerprint: string }>;
      };
      expect(locked.registries.main?.key_fingerprint).toBe(own.signer.fingerprint);
    } finally {
      await client.close();
      await served.close();
    }
  });
});

describe('when two updates race on a kept instance, the first following a key rotation', () => {
  it('accepts them in turn, the later one ending on the newer snapshot under the next key', async () => {
    // Prepare: a registry of its own, served; the instance reads it. Its key rotates, and the first update,
    // having followed the rotation, is held at its log read; meanwhile 1.1.0 is published under the next
    // key and a second update begins.
    const own = await ownRegistry();
    const served = await listenRegistryServer(createRegistryServer({ site: own.site }), 0);
    const { reached, release, arm, answered } = holdAt((path) => path.startsWith('log/'), false);
    const { client } = await keptClient(answered, 60_000, {
      url: served.url,
      key: own.registryKey.publicKey,
    });
    const next = await secondKey();
    try {
      await client.info(NAME);
      await rotateKeyOnce(own, next);
      arm();
      const first = client.updateRegistries(['main']);
      await reached;
      const bundle = await makeBundle({
        manifest: validManifest({ name: NAME, version: '1.1.0' }),
        artifacts: [{ ...LINUX, name: NAME, body: encode('#!/bin/sh\necho 1.1\n') }],
      });
      const { outcomes } = await processSubmissions(
        { ...own.context, signer: next },
        await own.submit(bundle),
      );
      expect(outcomes.map((o) => o.status)).toEqual(['accepted']);

      // Act
      const second = client.updateRegistries(['main']);
      release();
      const [[one], [two]] = await Promise.all([first, second]);
      const after = await client.info(NAME);

      // Assess: the second ran once the first was accepted, from its state (the rotation followed once), and
      // its newer snapshot is what the instance reads, under the next key; none went back to the older.
      expect(one?.error).toBeUndefined();
      expect(two?.error).toBeUndefined();
      expect(one?.report).toMatchObject({ fingerprint: next.fingerprint, rotated: { to: next.fingerprint } });
      expect(two?.report?.rotated).toBeUndefined();
      expect(two?.report?.generation).toBeGreaterThan(one?.report?.generation ?? Number.POSITIVE_INFINITY);
      expect(after.fingerprint).toBe(next.fingerprint);
      expect(after.document.latest_version).toBe('1.1.0');
    } finally {
      await client.close();
      await served.close();
    }
  });
});
