/**
 * The trust index (`<data>/trust/.index.json`): what the trust every name of one registry shares costs to
 * read with many trust folders, counted as the files the disk layer (atomic.ts) reads, and that the index,
 * a cache of the folders, never has a name of the registry missed (missing, damaged, behind the folders).
 */
import { mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  ClientState,
  REMOVED_DEPARTURES_FILE,
  setTrustName,
  type TrustRecord,
} from '../../../client/disk/state.ts';
import { parseTrustIndex, TRUST_INDEX_FILE } from '../../../client/disk/trust-index.ts';

/** Every path the disk layer was asked to read, by any module importing it. */
const { reads } = vi.hoisted(() => ({ reads: [] as string[] }));
vi.mock('../../../client/disk/atomic.ts', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../../../client/disk/atomic.ts')>();
  return {
    ...actual,
    readIfExists: async (file: string) => {
      reads.push(file);
      return actual.readIfExists(file);
    },
    readTextIfExists: async (file: string) => {
      reads.push(file);
      return actual.readTextIfExists(file);
    },
  };
});

const KEY = 'A'.repeat(40);
const OTHER = 'C'.repeat(40);
const REGISTRY = 'https://plugins.example';
const SET = setTrustName(REGISTRY, KEY);
const head = (length: number, digit: string) => ({ length, head: digit.repeat(64) });
const record = (fingerprint: string, extra: Partial<TrustRecord> = {}): TrustRecord => ({
  fingerprint,
  armoredKey: `key ${fingerprint}`,
  ...extra,
});

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'plugindex-trust-index-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function emptyState(): Promise<ClientState> {
  const home = await mkdtemp(path.join(dir, 'home-'));
  return new ClientState({
    config: path.join(home, 'config'),
    data: path.join(home, 'data'),
    cache: path.join(home, 'cache'),
  });
}

/**
 * A client configured with 200 other registries (each kept under its own trust folder), and the registry
 * of the test under two names: configured (`main`) and a plugin set's.
 */
async function crowdedState(): Promise<ClientState> {
  const state = await emptyState();
  for (let i = 0; i < 200; i++)
    await state.writeTrust(
      `r${String(i).padStart(3, '0')}`,
      record(KEY, { highestGeneration: 1000 + i, registry: `https://r${i}.example` }),
    );
  await state.writeTrust(
    'main',
    record(KEY, { highestGeneration: 7, log: head(3, 'a'), registry: REGISTRY }),
  );
  await state.writeTrust(SET, record(KEY, { highestGeneration: 9, log: head(4, 'b'), registry: REGISTRY }));
  return state;
}

/** The files under the data folder read while `act` ran, relative to it. */
async function filesRead(state: ClientState, act: () => Promise<unknown>): Promise<string[]> {
  reads.length = 0;
  await act();
  return reads.map((file) => path.relative(state.dirs.data, file).split(path.sep).join('/'));
}

const SHARED = { highestGeneration: { generation: 9, name: SET }, logs: [head(3, 'a'), head(4, 'b')] };

describe('when the trust of one registry is read among 200 trust folders', () => {
  it('reads the index and the records of that registry only, not every folder', async () => {
    const state = await crowdedState();
    let shared: unknown;
    // Reading every folder, this was 405 files: the configuration and both files of all 202 records.
    const read = await filesRead(state, async () => {
      shared = await state.sharedTrust(REGISTRY, { fingerprint: KEY });
    });
    expect(shared).toEqual(SHARED);
    // Each record's former departures' copy is looked for too (none here): what a client before them kept.
    expect(read.sort()).toEqual([
      `trust/${TRUST_INDEX_FILE}`,
      // What names removed knew of keys (`registry remove`): one file, whatever the folders.
      `trust/${REMOVED_DEPARTURES_FILE}`,
      'trust/main/former.json',
      'trust/main/registry.asc',
      'trust/main/state.json',
      `trust/${SET}/former.json`,
      `trust/${SET}/registry.asc`,
      `trust/${SET}/state.json`,
    ]);
  });

  it('builds a missing index from every folder once (a data folder kept before it), then reads as few', async () => {
    const state = await crowdedState();
    await rm(path.join(state.dirs.data, 'trust', TRUST_INDEX_FILE));
    const first = await filesRead(state, () => state.sharedTrust(REGISTRY, { fingerprint: KEY }));
    expect(first.filter((file) => file.endsWith('/state.json'))).toHaveLength(202);
    const next = await filesRead(state, async () => {
      expect(await state.sharedTrust(REGISTRY, { fingerprint: KEY })).toEqual(SHARED);
    });
    expect(next).toHaveLength(8);
  });
});

describe('when several checks in one process find no index (each registry of `registry update` at once)', () => {
  it('builds it from every folder once, not once per check', async () => {
    const state = await crowdedState();
    await rm(path.join(state.dirs.data, 'trust', TRUST_INDEX_FILE));
    const read = await filesRead(state, () =>
      Promise.all(
        ['https://r1.example', 'https://r2.example', REGISTRY].map((registry) =>
          state.sharedTrust(registry, { fingerprint: KEY }),
        ),
      ),
    );
    // Every record once to build it, then the few each check reads of its own registry.
    expect(read.filter((file) => file.endsWith('/state.json')).length).toBeLessThan(202 + 10);
  });
});

describe('when the index is behind the folders, or damaged', () => {
  /** A record written as a client before the index wrote it: beside the index, not in it. */
  async function writeUnindexed(state: ClientState, name: string, state_: object): Promise<void> {
    const folder = path.join(state.dirs.data, 'trust', name);
    await mkdir(folder, { recursive: true });
    await writeFile(path.join(folder, 'registry.asc'), `key ${KEY}`);
    await writeFile(path.join(folder, 'state.json'), JSON.stringify({ fingerprint: KEY, ...state_ }));
  }

  it('reads and lists a folder the index does not list, so its generation still binds', async () => {
    const state = await crowdedState();
    await writeUnindexed(state, 'older', { highest_generation: 30, registry: REGISTRY });
    expect(await state.sharedTrust(REGISTRY, { fingerprint: KEY })).toMatchObject({
      highestGeneration: { generation: 30, name: 'older' },
    });
    const index = parseTrustIndex(
      await readFile(path.join(state.dirs.data, 'trust', TRUST_INDEX_FILE), 'utf8'),
    );
    expect(index?.get('older')).toEqual([REGISTRY]);
  });

  it('reads a trust folder that is a link to one kept elsewhere', async () => {
    const state = await crowdedState();
    const elsewhere = await mkdtemp(path.join(dir, 'elsewhere-'));
    await mkdir(path.join(elsewhere, 'linked'));
    await writeFile(path.join(elsewhere, 'linked', 'registry.asc'), `key ${KEY}`);
    await writeFile(
      path.join(elsewhere, 'linked', 'state.json'),
      JSON.stringify({ fingerprint: KEY, highest_generation: 60, registry: REGISTRY }),
    );
    await symlink(path.join(elsewhere, 'linked'), path.join(state.dirs.data, 'trust', 'linked'));
    expect(await state.sharedTrust(REGISTRY, { fingerprint: KEY })).toMatchObject({
      highestGeneration: { generation: 60, name: 'linked' },
    });
  });

  it('rebuilds the index when a record names another registry than it is listed under', async () => {
    const state = await crowdedState();
    // r000, listed under r0's registry, rewritten for this one by a client that kept no index.
    await writeUnindexed(state, 'r000', { highest_generation: 40, registry: REGISTRY });
    // A check of the registry it left finds the index wrong and reads every folder again.
    await state.sharedTrust('https://r0.example', { fingerprint: KEY });
    expect(await state.sharedTrust(REGISTRY, { fingerprint: KEY })).toMatchObject({
      highestGeneration: { generation: 40, name: 'r000' },
    });
  });

  it('rebuilds an index that does not parse, and drops a folder removed by hand', async () => {
    const state = await crowdedState();
    const file = path.join(state.dirs.data, 'trust', TRUST_INDEX_FILE);
    await writeFile(file, '{"schema": "plugindex/trust-index/v1", "names": {"main": "nope"}}');
    expect(await state.sharedTrust(REGISTRY, { fingerprint: KEY })).toEqual(SHARED);
    await rm(path.join(state.dirs.data, 'trust', SET), { recursive: true });
    expect(await state.sharedTrust(REGISTRY, { fingerprint: KEY })).toEqual({
      highestGeneration: { generation: 7, name: 'main' },
      logs: [head(3, 'a')],
    });
    expect(parseTrustIndex(await readFile(file, 'utf8'))?.has(SET)).toBe(false);
  });

  it('lists a record kept before records named their registry under none, still told by its name', async () => {
    const state = await crowdedState();
    await writeUnindexed(state, setTrustName(REGISTRY, KEY), { highest_generation: 50 });
    expect(await state.sharedTrust(`${REGISTRY}/`, { fingerprint: KEY })).toMatchObject({
      highestGeneration: { generation: 50, name: SET },
    });
  });
});

describe('when a record is written or removed', () => {
  it('lists it under the registry it names now, and no more under the one it left', async () => {
    const state = await emptyState();
    await state.writeTrust('moved', record(KEY, { highestGeneration: 3, registry: 'https://old.example' }));
    await state.writeTrust('moved', record(OTHER, { highestGeneration: 1, registry: REGISTRY }));
    const file = path.join(state.dirs.data, 'trust', TRUST_INDEX_FILE);
    expect(parseTrustIndex(await readFile(file, 'utf8'))?.get('moved')).toEqual([REGISTRY]);
    expect(await state.sharedTrust('https://old.example', { fingerprint: KEY })).toEqual({ logs: [] });
    await state.removeTrust('moved');
    expect(parseTrustIndex(await readFile(file, 'utf8'))?.has('moved')).toBe(false);
  });

  it('writes no index when a record accepts a newer generation of the same registry', async () => {
    const state = await emptyState();
    await state.writeTrust('main', record(KEY, { highestGeneration: 3, registry: REGISTRY }));
    const file = path.join(state.dirs.data, 'trust', TRUST_INDEX_FILE);
    // Each write of the index is a new file renamed over it.
    const { ino } = await stat(file);
    await state.writeTrust('main', record(KEY, { highestGeneration: 4, registry: REGISTRY }));
    expect((await stat(file)).ino).toBe(ino);
  });
});
