/**
 * The registry's transparency log as a client follows it: a registry the pipeline published (its publish
 * logged as entry 0), its log grown by owners' actions the pipeline applies and logs, or appended by the
 * LogWriter and vouched for by re-signed snapshots, served over real HTTP by the local server. The head is
 * remembered on first use (no request more), followed when the log grows (only the segments from the last
 * entry seen), kept offline, and every rewrite of history refused with its code, whether the registry
 * re-signed it or only the served bytes changed: the trust state as it was, nothing installed, and the
 * refusal standing on the next run.
 */
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createRegistryServer, listenRegistryServer } from '../../cli/local/server.ts';
import { createClient, type PlugindexClient } from '../../client/client.ts';
import { ContentCache } from '../../client/disk/cache.ts';
import { createHttpFetcher, type Fetcher } from '../../client/fetcher.ts';
import type { ClientDirectories } from '../../client/paths.ts';
import { fixedClock } from '../../index-builder/clock.ts';
import { TrustError } from '../../index-builder/errors.ts';
import { SIGNED_SNAPSHOT_KEY } from '../../index-builder/layout.ts';
import type { LogHead } from '../../index-builder/model.ts';
import { processSubmissions } from '../../index-builder/pipeline/index.ts';
import { readLogHead } from '../../index-builder/pipeline/log-writer.ts';
import type { StoredObject } from '../../index-builder/store.ts';
import { openSignedSnapshot } from '../../index-builder/verify.ts';
import { submitAction } from '../support/actions.ts';
import { heldAtLog, httpFetcherTelling } from '../support/client.ts';
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
  claimLogLength,
  dropLog,
  rewriteLog,
  segmentLines,
  serveSegment,
  signHistory,
  truncateLog,
} from '../support/lifecycle.ts';

const NAME = 'logged-plugin';
const NOW = new Date('2026-11-02T00:00:00Z');
const LINUX = { os: 'linux', arch: 'amd64' } as const;
const TOOL = encode('#!/bin/sh\necho logged\n');

let root: string;
let registry: TestRegistry;
let base: string;
let close: () => Promise<void>;
const requests: string[] = [];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'plugindex-log-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Publishes a version of the plugin, signed by the fixtures' publisher key (so its owner). */
async function publish(version: string): Promise<void> {
  const { outcomes } = await processSubmissions(
    registry.context,
    await registry.submit(
      await makeBundle({
        manifest: validManifest({ name: NAME, version }),
        artifacts: [{ ...LINUX, name: NAME, body: TOOL }],
      }),
    ),
  );
  expect(outcomes.map((o) => o.status)).toEqual(['accepted']);
}

/**
 * Three entries the pipeline logs itself, in one batch: the owner yanks 1.0.0, unyanks it and deprecates
 * the plugin (signed actions, as the CLI submits them). Returns the head the snapshot now vouches for.
 */
async function ownerActions(): Promise<LogHead> {
  const owner = await testKey('publisher');
  const keys: string[] = [];
  for (const body of [
    { action: 'yank', plugin: NAME, version: '1.0.0', reason: 'wrong totals' },
    { action: 'unyank', plugin: NAME, version: '1.0.0' },
    { action: 'deprecate', plugin: NAME, message: 'use logged-plugin-next' },
  ] as const)
    keys.push((await submitAction(registry.intake, body, owner)).key);
  const before = await readLogHead(registry.intake);
  const { outcomes } = await processSubmissions(registry.context, keys);
  expect(outcomes.map((o) => o.status)).toEqual(['accepted', 'accepted', 'accepted']);
  const head = await readLogHead(registry.intake);
  expect(head.length).toBe(before.length + 3);
  return head;
}

// A registry of its own for every test: the attacks rewrite its history. Its publish is log entry 0.
beforeEach(async () => {
  registry = await makeRegistry();
  await publish('1.0.0');
  const listening = await listenRegistryServer(
    createRegistryServer({ site: registry.site, log: (line) => requests.push(line) }),
    0,
  );
  base = listening.url;
  close = listening.close;
  requests.length = 0;
});
afterEach(async () => {
  await close();
});

interface Machine {
  readonly dirs: ClientDirectories;
  readonly dir: string;
  readonly lockfile: string;
  readonly stateFile: string;
}

let machines = 0;
function machine(): Machine {
  machines += 1;
  const home = join(root, `m${machines}`);
  const dirs = { config: join(home, 'config'), data: join(home, 'data'), cache: join(home, 'cache') };
  return {
    dirs,
    dir: join(home, 'plugins'),
    lockfile: join(home, 'plugindex.lock'),
    stateFile: join(dirs.data, 'trust', 'test', 'state.json'),
  };
}

async function withClient<T>(
  m: Machine,
  body: (client: PlugindexClient) => Promise<T>,
  options: { offline?: boolean; fetcher?: Fetcher } = {},
): Promise<T> {
  const client = createClient({
    dirs: m.dirs,
    fetcher: options.fetcher ?? createHttpFetcher({ env: {}, retries: 0 }),
    env: {},
    clock: fixedClock(NOW),
    platform: LINUX,
    offline: options.offline ?? false,
    freshForMs: 0,
  });
  try {
    return await body(client);
  } finally {
    await client.close();
  }
}

/** Adds the registry, as `test` unless `name` says another name (of the same URL and key). */
const addRegistry = (m: Machine, options: { name?: string; priority?: number; force?: boolean } = {}) =>
  withClient(m, (c) =>
    c.addRegistry({ name: 'test', url: base, pin: { armored: registry.registryKey.publicKey }, ...options }),
  );

const install = (m: Machine, options: { offline?: boolean } = {}) =>
  withClient(m, (c) => c.install({ requests: [`${NAME}@1.0.0`], dir: m.dir, lockfile: m.lockfile }), options);

async function remembered(m: Machine): Promise<LogHead | undefined> {
  return (JSON.parse(await readFile(m.stateFile, 'utf8')) as { log?: LogHead }).log;
}

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

const logRequests = () => requests.filter((r) => r.startsWith('GET /log/'));

describe('when a client meets a registry log', () => {
  it('remembers the head on first use without asking for the log: a cold install is five requests', async () => {
    const head = await appendLog(registry.context, 3);
    const m = machine();
    await addRegistry(m);
    expect(await remembered(m)).toEqual(head);
    requests.length = 0;
    await install(m);
    expect(requests.map((r) => r.replace(/\?v=[0-9a-f]{64}/, '?v=…'))).toEqual([
      'GET /snapshot.signed.json 304',
      expect.stringMatching(/^GET \/snapshot\/bins\/[0-9a-f]{2}\.json\?v=… 200$/),
      `GET /plugins/${NAME}/index.json?v=… 200`,
      `GET /plugins/${NAME}/1.0.0/manifest.json?v=… 200`,
      `GET /plugins/${NAME}/1.0.0/artifacts/linux-amd64/${NAME} 200`,
    ]);
    expect(await remembered(m)).toEqual(head);
  });

  it('follows a longer log, fetching only the segment from the last entry it saw, and remembers the new head', async () => {
    await appendLog(registry.context, 3);
    const m = machine();
    await addRegistry(m);
    const longer = await appendLog(registry.context, 3);
    requests.length = 0;
    const [report] = await withClient(m, (c) => c.updateRegistries([]));
    expect(report?.error).toBeUndefined();
    expect(logRequests()).toEqual([`GET /log/000000.jsonl?v=${longer.head} 200`]);
    expect(await remembered(m)).toEqual(longer);
  });

  it('across segments, asks only for those holding the entries it has not seen (and the last it has)', async () => {
    // After the publish's entry: 301 entries remembered, the last seen (300) in the second segment.
    await appendLog(registry.context, 300);
    const m = machine();
    await addRegistry(m);
    const longer = await appendLog(registry.context, 5);
    requests.length = 0;
    await withClient(m, (c) => c.updateRegistries([]));
    expect(logRequests()).toEqual([`GET /log/000001.jsonl?v=${longer.head} 200`]);
    expect(await remembered(m)).toEqual({ length: 1 + 300 + 5, head: longer.head });
  });

  it('offline, asks for nothing and keeps the head it remembers; online again, follows the log', async () => {
    const first = await appendLog(registry.context, 3);
    const m = machine();
    await addRegistry(m);
    await install(m);
    await rm(m.dir, { recursive: true });
    const longer = await appendLog(registry.context, 2);
    requests.length = 0;
    await install(m, { offline: true });
    expect(requests).toEqual([]);
    expect(await remembered(m)).toEqual(first);
    await rm(m.dir, { recursive: true });
    await install(m);
    expect(await remembered(m)).toEqual(longer);
  });

  it('takes a log that starts after the registry was remembered (one from before logs) as an extension of an empty one', async () => {
    await dropLog(registry.context);
    const m = machine();
    await addRegistry(m);
    expect(await remembered(m)).toBeUndefined();
    // The next publish starts the log; an action extends it.
    await publish('1.1.0');
    const head = await ownerActions();
    expect(head.length).toBe(4);
    const [report] = await withClient(m, (c) => c.updateRegistries([]));
    expect(report?.error).toBeUndefined();
    expect(await remembered(m)).toEqual(head);
  });
});

/**
 * How each attack is made, once the client remembers `seen` (the publish's entry and three more). New
 * entries are the owner's actions, as the pipeline logs them: entries `seen.length` to `seen.length + 2`.
 */
const ATTACKS: [string, string, (seen: LogHead) => Promise<unknown>][] = [
  [
    'cut short under the signed head (fewer entries served than it counts)',
    'LOG_TRUNCATED',
    async (seen) => {
      await ownerActions();
      await serveSegment(registry.context, (await segmentLines(registry.context)).slice(0, seen.length + 1));
    },
  ],
  [
    'cut short and re-signed by the registry (a shorter head)',
    'LOG_TRUNCATED',
    (seen) => truncateLog(registry.context, seen.length - 2),
  ],
  [
    'gone from a re-signed snapshot',
    'LOG_TRUNCATED',
    async () => {
      await signHistory(registry.context, undefined);
    },
  ],
  [
    // Its segments are not even listed: the first short one ends the reading (a hang or a crash otherwise).
    'whose signed head counts 2**40 entries, far more than are served',
    'LOG_TRUNCATED',
    () => claimLogLength(registry.context, 2 ** 40),
  ],
  [
    'rewritten at the same length and re-signed (forked)',
    'LOG_FORKED',
    (seen) => rewriteLog(registry.context, seen.length),
  ],
  [
    'rewritten longer and re-signed (forked)',
    'LOG_FORKED',
    (seen) => rewriteLog(registry.context, seen.length + 2),
  ],
  [
    'reordered: two new entries swapped in the segment',
    'LOG_REORDERED',
    async (seen) => {
      await ownerActions();
      const lines = await segmentLines(registry.context);
      const at = seen.length;
      [lines[at], lines[at + 1]] = [lines[at + 1] as string, lines[at] as string];
      await serveSegment(registry.context, lines);
    },
  ],
  [
    'an entry altered by one byte',
    'LOG_ENTRY_ALTERED',
    async (seen) => {
      await ownerActions();
      const lines = await segmentLines(registry.context);
      lines[seen.length + 1] = alterLine(lines[seen.length + 1] as string);
      await serveSegment(registry.context, lines);
    },
  ],
  [
    'the newest entry altered by one byte (it no longer hashes to the signed head)',
    'LOG_ENTRY_ALTERED',
    async () => {
      const head = await ownerActions();
      const lines = await segmentLines(registry.context);
      lines[head.length - 1] = alterLine(lines[head.length - 1] as string);
      await serveSegment(registry.context, lines);
    },
  ],
  [
    // The last entry it saw: the one its remembered head is the hash of, where the check of a longer log
    // starts (the entries before it are bound by that hash, and checked whole by verify --url and audit).
    'a seen entry altered by one byte under a longer head',
    'LOG_FORKED',
    async (seen) => {
      await ownerActions();
      const lines = await segmentLines(registry.context);
      lines[seen.length - 1] = alterLine(lines[seen.length - 1] as string);
      await serveSegment(registry.context, lines);
    },
  ],
  [
    'a segment that is not log lines',
    'LOG_MALFORMED',
    async () => {
      await ownerActions();
      await serveSegment(registry.context, ['{"seq": "zero"}']);
    },
  ],
];

describe('when a registry log no longer extends the one a client remembers', () => {
  it.each(ATTACKS)(
    'refuses a log %s (%s), keeps its trust state, installs nothing, and refuses again on the next run',
    async (_what, code, attack) => {
      const seen = await appendLog(registry.context, 3);
      expect(seen.length).toBe(4);
      const m = machine();
      await addRegistry(m);
      expect(await remembered(m)).toEqual(seen);
      const before = await readFile(m.stateFile, 'utf8');
      await attack(seen);
      for (let run = 1; run <= 2; run++) {
        const error = await install(m).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(TrustError);
        expect(error).toMatchObject({ code });
        expect(await readFile(m.stateFile, 'utf8')).toBe(before);
        expect(await exists(m.dir)).toBe(false);
        expect(await exists(m.lockfile)).toBe(false);
      }
      const [report] = await withClient(m, (c) => c.updateRegistries([]));
      expect(report?.error).toMatchObject({ name: 'TrustError', code });
      expect(await readFile(m.stateFile, 'utf8')).toBe(before);
    },
  );

  it('refuses a rewritten history on a forced re-add of the same registry (its head is kept)', async () => {
    const seen = await appendLog(registry.context, 3);
    const m = machine();
    await addRegistry(m);
    const before = await readFile(m.stateFile, 'utf8');
    await rewriteLog(registry.context, seen.length);
    await expect(addRegistry(m, { priority: 2, force: true })).rejects.toMatchObject({
      name: 'TrustError',
      code: 'LOG_FORKED',
    });
    expect(await readFile(m.stateFile, 'utf8')).toBe(before);
  });

  it('offline, refuses a snapshot another registry name of the same URL cached after a fork, as online does', async () => {
    const seen = await appendLog(registry.context, 3);
    const m = machine();
    await addRegistry(m);
    await rewriteLog(registry.context, seen.length);
    // Same URL and key under another name: held to the log 'test' remembers, it no longer takes the forked
    // one on first use (ClientState.sharedTrust).
    await expect(addRegistry(m, { name: 'other', priority: 2 })).rejects.toMatchObject({
      name: 'TrustError',
      code: 'LOG_FORKED',
    });
    // The per-URL cache is shared by every name (and every version of this client) that reaches the URL:
    // one may still hold the forked snapshot, one the trust record of 'test' never checked the log of.
    const forked = openSignedSnapshot((registry.site.objects.get(SIGNED_SNAPSHOT_KEY) as StoredObject).body);
    await new ContentCache(m.dirs.cache).putSnapshot(base, {
      bytes: forked.snapshot,
      signature: forked.signature,
    });
    const before = await readFile(m.stateFile, 'utf8');
    const [offline] = await withClient(m, (c) => c.updateRegistries(['test']), { offline: true });
    expect(offline?.error).toMatchObject({ name: 'ClientError', code: 'OFFLINE_MISSING' });
    expect(await readFile(m.stateFile, 'utf8')).toBe(before);
    const [online] = await withClient(m, (c) => c.updateRegistries(['test']));
    expect(online?.error).toMatchObject({ name: 'TrustError', code: 'LOG_FORKED' });
  });

  it('refuses a trust state whose remembered head is damaged, rather than trusting a log on first use again', async () => {
    await appendLog(registry.context, 3);
    const m = machine();
    await addRegistry(m);
    const state = JSON.parse(await readFile(m.stateFile, 'utf8')) as Record<string, unknown>;
    await writeFile(m.stateFile, JSON.stringify({ ...state, log: { length: 'three', head: 'x' } }));
    await expect(install(m)).rejects.toMatchObject({
      name: 'ClientError',
      code: 'TRUST_STATE_INVALID',
      message: expect.stringContaining('#/log'),
    });
  });
});

describe('when another name of the registry has not been used for a while', () => {
  it("reads the log from that name's head once, not again on every later check of its own name", async () => {
    await appendLog(registry.context, 3);
    const m = machine();
    await addRegistry(m);
    await addRegistry(m, { name: 'other', priority: 2 });
    const logReads: string[] = [];
    const counting = (): Fetcher =>
      httpFetcherTelling((path) => {
        if (path.startsWith('log/')) logReads.push(path);
      });
    // 'other' is not used again: the head it remembers stays where it was while the log grows. Checked once
    // by 'test', it was read from again on every check after (every segment from it to the head, as the log
    // grew), as long as 'other' went unused.
    for (let run = 1; run <= 3; run++) {
      await appendLog(registry.context, 2);
      logReads.length = 0;
      const [report] = await withClient(m, (c) => c.updateRegistries(['test']), { fetcher: counting() });
      expect(report?.error).toBeUndefined();
      expect(logReads, `run ${run}`).toHaveLength(1);
    }
  });

  it('still refuses a history rewritten after it checked the head the other name remembers', async () => {
    const seen = await appendLog(registry.context, 3);
    const m = machine();
    await addRegistry(m);
    await addRegistry(m, { name: 'other', priority: 2 });
    await appendLog(registry.context, 2);
    const [first] = await withClient(m, (c) => c.updateRegistries(['test']));
    expect(first?.error).toBeUndefined();
    await rewriteLog(registry.context, seen.length);
    const [again] = await withClient(m, (c) => c.updateRegistries(['test']));
    expect(again?.error).toMatchObject({ name: 'TrustError' });
  });
});

describe('when two runs of one client check the registry side by side', () => {
  it('under two names of one registry, lets the slower finish and holds the next run of its name to the newer', async () => {
    await appendLog(registry.context, 3);
    const m = machine();
    await addRegistry(m);
    await addRegistry(m, { name: 'other', priority: 2 });
    await appendLog(registry.context, 2);
    const older = registry.site.objects.get(SIGNED_SNAPSHOT_KEY) as StoredObject;
    // The slow run, under 'other', has that snapshot and stops as it asks for the log's new entries.
    const { slow, atLog, release } = heldAtLog();
    const slowRun = withClient(m, (c) => c.updateRegistries(['other']), { fetcher: slow });
    await atLog;
    // Meanwhile the registry publishes again, and a run under 'test' accepts that.
    await appendLog(registry.context, 2);
    const [fast] = await withClient(m, (c) => c.updateRegistries(['test']));
    expect(fast?.error).toBeUndefined();
    release();
    // The slow run checked before the newer was saved: it finishes, as one of a single name does.
    const [late] = await slowRun;
    expect(late?.error).toBeUndefined();
    expect(late?.report?.generation).toBeLessThan(fast?.report?.generation as number);
    // Its older snapshot served again to 'other' is refused: the floor is the newer, kept under 'test'.
    const current = registry.site.objects.get(SIGNED_SNAPSHOT_KEY) as StoredObject;
    registry.site.objects.set(SIGNED_SNAPSHOT_KEY, older);
    try {
      const [again] = await withClient(m, (c) => c.updateRegistries(['other']));
      expect(again?.error).toBeInstanceOf(TrustError);
      expect(again?.error).toMatchObject({
        code: 'SNAPSHOT_ROLLBACK',
        message: expect.stringContaining('trust/test'),
      });
    } finally {
      registry.site.objects.set(SIGNED_SNAPSHOT_KEY, current);
    }
  });

  it('keeps the head of the newer snapshot: the run that accepted an older one, saving last, does not take it back', async () => {
    await appendLog(registry.context, 3);
    const m = machine();
    await addRegistry(m);
    const middle = await appendLog(registry.context, 2);
    // The slow run has the snapshot counting `middle`, and stops as it asks for the log's new entries.
    const { slow, atLog, release } = heldAtLog();
    const slowRun = withClient(m, (c) => c.updateRegistries([]), { fetcher: slow });
    await atLog;
    // Meanwhile the log grows, and another run accepts the snapshot counting that.
    const newest = await appendLog(registry.context, 2);
    const [fast] = await withClient(m, (c) => c.updateRegistries([]));
    expect(fast?.error).toBeUndefined();
    expect(await remembered(m)).toEqual(newest);
    const newestState = JSON.parse(await readFile(m.stateFile, 'utf8')) as Record<string, unknown>;

    release();
    const [late] = await slowRun;
    expect(late?.error).toBeUndefined();
    expect(late?.report?.generation).toBeLessThan(newestState.highest_generation as number);
    // The slow run's older snapshot and its shorter head (`middle`) are not what the client keeps: a later
    // snapshot rewriting the entries after `middle` would then be taken as extending it.
    expect(middle.length).toBeLessThan(newest.length);
    expect(JSON.parse(await readFile(m.stateFile, 'utf8'))).toMatchObject({
      log: newest,
      snapshot_sha256: newestState.snapshot_sha256,
      highest_generation: newestState.highest_generation,
    });
  });
});
