/**
 * `plugindex publish --registry` as an operator runs it, one process per publish: each starts cold, reads
 * the catalog the one before it wrote (its bins read as bytes, cli/bin.mjs over the built bundle), and
 * returns only once the index documents are rendered, signed and bound by a signed snapshot.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { FsStore } from '../../../adapters/fs-store.ts';
import { initRegistry } from '../../../cli/local/registry.ts';
import { loadCatalog } from '../../../index-builder/catalog.ts';
import type { SnapshotDocument } from '../../../index-builder/model.ts';
import { plugindexProcess } from '../../support/cli.ts';
import { makeBundle, sha256, validManifest } from '../../support/fixtures.ts';
import { gpgKeyring } from '../../support/gpg.ts';

const BIN = path.resolve(import.meta.dirname, '../../../cli/bin.mjs');
const run = promisify(execFile);
const NAMES = ['gamma-three', 'alpha-one', 'beta-two'];

let work: string;
let dir: string;
const published: { code: number; stdout: string }[] = [];

const file = (key: string): Promise<Buffer> => readFile(path.join(dir, 'public', key));
const json = async <T>(key: string): Promise<T> => JSON.parse((await file(key)).toString()) as T;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'plugindex-publish-process-'));
  dir = path.join(work, 'registry');
  await initRegistry(dir, { name: 'r', url: 'http://127.0.0.1:8080' });
  for (const name of NAMES) {
    // Text beyond ASCII, so the lines a process reads as bytes are copied as bytes, not as characters.
    const manifest = validManifest({ name, description: `${name}: ünïcode ✓, "quoted", tab\there` });
    const bundle = path.join(work, `${name}.tgz`);
    await writeFile(bundle, await makeBundle({ manifest }));
    const { stdout } = await run(process.execPath, [BIN, 'publish', bundle, '--registry', dir]);
    published.push({ code: 0, stdout });
  }
}, 120_000);

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('when each publish is a process of its own', () => {
  it('accepts every bundle', () => {
    expect(published.map((p) => p.stdout.split(' ').slice(0, 2).join(' '))).toEqual(
      NAMES.map((name) => `accepted ${name}@1.0.0`),
    );
  });

  it('lists every plugin in every index document, in name order, with its text intact', async () => {
    const sorted = [...NAMES].sort();
    const index = await json<{ plugins: { name: string; description?: string }[] }>('index.json');
    expect(index.plugins.map((p) => p.name)).toEqual(sorted);
    expect(index.plugins[0]?.description).toBe('alpha-one: ünïcode ✓, "quoted", tab\there');
    expect(YAML.parse((await file('index.yaml')).toString())).toEqual(index);
    const search = await json<{ plugins: { name: string }[] }>('search.json');
    expect(search.plugins.map((p) => p.name)).toEqual(sorted);
    const falcoctl = YAML.parse((await file('falcoctl/index.yaml')).toString()) as { name: string }[];
    expect(falcoctl.map((p) => p.name)).toEqual(sorted);
  });

  it('binds the index documents by a snapshot that gpg verifies, each document signed too', async () => {
    const snapshot = await json<SnapshotDocument>('snapshot.json');
    for (const key of ['index.json', 'index.yaml', 'search.json', 'falcoctl/index.yaml'])
      expect(snapshot.documents[key]?.sha256, key).toBe(sha256(await file(key)));
    const gpg = gpgKeyring((await file('keys/registry.asc')).toString());
    try {
      expect(gpg.verify(await file('snapshot.json'), (await file('snapshot.json.asc')).toString())).toContain(
        'VALIDSIG',
      );
      expect(gpg.verify(await file('index.json'), (await file('index.json.asc')).toString())).toContain(
        'VALIDSIG',
      );
    } finally {
      gpg.close();
    }
  });

  it('leaves a catalog that a cold process reads whole, each line what index.json lists', async () => {
    const catalog = await loadCatalog(new FsStore(dir));
    expect(catalog.outdated).toBe(false);
    expect(catalog.indexesPending).toBe(false);
    const index = await json<{ plugins: { name: string }[] }>('index.json');
    expect([...catalog.plugins.keys()].sort()).toEqual([...NAMES].sort());
    for (const entry of index.plugins)
      expect(JSON.parse(catalog.plugins.get(entry.name)?.entry ?? 'null')).toEqual(entry);
  });
});

describe('when the registry folder is on a filesystem that makes no folders (/proc)', () => {
  it.skipIf(process.platform !== 'linux')(
    'fails fast with NOT_A_REGISTRY naming it, where its lock hung in Node.js recursive mkdir',
    async () => {
      // The registry's lock was made first (`withRegistryLock`), its folders with it: it hung there, then
      // said FOLDER_NOT_MADE. A folder holding no registry now takes no lock (NOT_A_REGISTRY) and makes none.
      const registry = `/proc/plugindex-process-${process.pid}/registry`;
      const result = await plugindexProcess(['process', '--registry', registry], {
        cwd: work,
        timeoutMs: 45_000, // below the test's timeout, far from what a loaded machine's start takes
      });
      expect(result.code, 'killed at the timeout: it hung').toBe(1);
      expect(result.stderr).toContain(`NOT_A_REGISTRY: ${registry} is not a registry`);
    },
  );
});
