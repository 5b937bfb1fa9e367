import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import {
  apiVersionsOf,
  type CatalogLine,
  catalogLineOf,
  documentsIn,
  emptyCatalog,
  entryBytes,
  falcoctlItem,
  JOURNAL_MAX_ENTRIES,
  loadCatalog,
  openCatalog,
  outlineCatalog,
  readBins,
  saveCatalog,
  searchBytes,
  sortedLines,
} from '../../index-builder/catalog.ts';
import { ORDER_SEARCH } from '../../index-builder/document-order.ts';
import { StoreError } from '../../index-builder/errors.ts';
import { binKey, binOf } from '../../index-builder/layout.ts';
import type { PluginDocument, VersionRecord } from '../../index-builder/model.ts';
import {
  BufferPool,
  renderFalcoctlIndex,
  renderIndexJson,
  renderIndexYaml,
  renderSearchJson,
} from '../../index-builder/render/index-documents.ts';
import { toYaml } from '../../index-builder/render/yaml.ts';
import type { StoredObject } from '../../index-builder/store.ts';
import { MemoryStore } from '../support/memory-store.ts';

const utf8 = (text: string) => new TextEncoder().encode(text);
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

const entry = (name: string) => ({
  name,
  latest_version: '1.0.0',
  versions: [
    {
      version: '1.0.0',
      manifest_url: `https://r/${name}`,
      note: 'tab\there, newline\nthere: "quoted", ünïcode ✓',
    },
  ],
});

describe('when rendering global documents by concatenation', () => {
  const metadata = {
    name: 'R',
    url: 'https://r',
    last_updated: '2026-11-01T00:00:00.000Z',
    supported_api_versions: ['v1'],
  };
  const entries = [entry('a-one'), entry('b-two')];

  it('writes index.json byte for byte as the whole document serialized at once', () => {
    const rendered = renderIndexJson(
      metadata,
      entries.map((e) => utf8(JSON.stringify(e))),
    );
    const whole = { registry_version: '1.0.0', registry_metadata: metadata, plugins: entries };
    expect(text(rendered)).toBe(`${JSON.stringify(whole)}\n`);
    expect(text(renderIndexJson(metadata, []))).toBe(`${JSON.stringify({ ...whole, plugins: [] })}\n`);
  });

  it('writes index.yaml that parses to the same document, empty or not', () => {
    const header = toYaml({ registry_version: '1.0.0', registry_metadata: metadata });
    const encoded = entries.map((e) => utf8(JSON.stringify(e)));
    const yaml = text(renderIndexYaml(header, encoded));
    expect(YAML.parse(yaml)).toEqual(JSON.parse(text(renderIndexJson(metadata, encoded))));
    expect(YAML.parse(text(renderIndexYaml(header, [])))).toEqual({
      registry_version: '1.0.0',
      registry_metadata: metadata,
      plugins: [],
    });
  });

  it('writes search.json rows in order', () => {
    expect(JSON.parse(text(renderSearchJson('t', [utf8('{"name":"a"}'), utf8('{"name":"b"}')])))).toEqual({
      schema: 'plugindex/search/v1',
      generated: 't',
      plugins: [{ name: 'a' }, { name: 'b' }],
    });
  });
});

describe('when rendering the falcoctl index', () => {
  const hex = 'ab'.repeat(32);
  const record = (version: string, artifacts: VersionRecord['artifacts'] = []): VersionRecord => ({
    version,
    published: '2026-11-01T00:00:00.000Z',
    prerelease: false,
    yanked: false,
    deprecated: false,
    api_version: 'v1',
    manifest_url: 'https://r.example/m',
    manifest_signature_url: 'https://r.example/m.asc',
    manifest_sha256: 'e'.repeat(64),
    manifest_size: 1,
    source_sha256: 'f'.repeat(64),
    publisher: 'A'.repeat(40),
    artifacts,
  });
  const oci = (reference: string): VersionRecord['artifacts'][number] => ({
    os: 'linux',
    arch: 'amd64',
    url: `oci://${reference}`,
    sha256: hex,
    size_bytes: 1,
    hosted: false,
    oci: { reference, digest: `sha256:${hex}` },
  });
  const plugin = (name: string, overrides: Partial<PluginDocument>): PluginDocument => ({
    schema: 'plugindex/plugin/v1',
    name,
    plugin_type: 'cost_source',
    latest_version: '1.0.0',
    channels: {},
    capabilities: ['actual_cost'],
    supported_providers: ['aws'],
    tags: [],
    owners: [],
    versions: [record('1.0.0')],
    ...overrides,
  });
  const docs = [
    plugin('a-lens', {
      description: 'Reads: "costs"',
      tags: ['billing', 'actual_cost'],
      license: 'Apache-2.0',
      homepage: 'https://lens.example.com',
      repository: 'https://git.example.com/acme/a-lens',
      maintainers: [{ name: 'The Lens Authors', email: 'lens@example.com' }, { name: 'Solo' }],
      latest_version: '1.1.0',
      versions: [
        record('2.0.0-rc.1', [oci('next.example/acme/a-lens:2.0.0-rc.1')]),
        record('1.1.0', [
          { ...oci('x.example/x'), oci: undefined, url: 'https://dl.example.com/a', os: 'darwin' },
          oci('registry.example:5000/acme/a-lens:1.1.0'),
        ]),
      ],
    }),
    plugin('b-plain', {}),
  ];
  const render = (registryUrl: string) =>
    new TextDecoder().decode(
      renderFalcoctlIndex(
        docs.map((doc) => falcoctlItem(catalogLineOf(doc, { sha256: '', size: 0 }, registryUrl))),
      ),
    );

  it("writes one entry per plugin: the latest version's first OCI registry and repository, else this registry's host", () => {
    expect(render('https://plugins.example.org:8443/base')).toBe(
      [
        '- name: "a-lens"',
        '  type: "plugin"',
        '  registry: "registry.example:5000"',
        '  repository: "acme/a-lens"',
        '  description: "Reads: \\"costs\\""',
        '  keywords:',
        '  - "billing"',
        '  - "actual_cost"',
        '  license: "Apache-2.0"',
        '  home: "https://lens.example.com"',
        '  sources:',
        '  - "https://git.example.com/acme/a-lens"',
        '  maintainers:',
        '  - name: "The Lens Authors"',
        '    email: "lens@example.com"',
        '  - name: "Solo"',
        '- name: "b-plain"',
        '  type: "plugin"',
        '  registry: "plugins.example.org:8443"',
        '  keywords:',
        '  - "actual_cost"',
        '',
      ].join('\n'),
    );
  });

  it('is a list a YAML reader reads as those entries, and the empty list for an empty registry', () => {
    expect(YAML.parse(render('https://r.example'))).toEqual([
      {
        name: 'a-lens',
        type: 'plugin',
        registry: 'registry.example:5000',
        repository: 'acme/a-lens',
        description: 'Reads: "costs"',
        keywords: ['billing', 'actual_cost'],
        license: 'Apache-2.0',
        home: 'https://lens.example.com',
        sources: ['https://git.example.com/acme/a-lens'],
        maintainers: [{ name: 'The Lens Authors', email: 'lens@example.com' }, { name: 'Solo' }],
      },
      { name: 'b-plain', type: 'plugin', registry: 'r.example', keywords: ['actual_cost'] },
    ]);
    expect(YAML.parse(new TextDecoder().decode(renderFalcoctlIndex([])))).toEqual([]);
  });
});

describe('when rendering into kept buffers', () => {
  it('renders the same bytes into a kept buffer as into a fresh one, and reuses it next time', () => {
    const pool = new BufferPool(2);
    const entries = ['a', 'b', 'c'].map((n) => utf8(JSON.stringify(entry(n))));
    const first = renderIndexJson({ name: 'r' }, entries, pool.take);
    expect(first).toEqual(renderIndexJson({ name: 'r' }, entries));

    pool.give([first]);
    const second = renderIndexJson({ name: 'r' }, entries.slice(0, 2), pool.take);
    expect(second.buffer).toBe(first.buffer);
    expect(text(second)).toBe(text(renderIndexJson({ name: 'r' }, entries.slice(0, 2))));
  });

  it('never hands out a buffer twice before it is given back, nor takes back one it did not make', () => {
    const pool = new BufferPool(4);
    const a = pool.take(1024);
    const b = pool.take(1024);
    expect(b.buffer).not.toBe(a.buffer);

    const foreign = new Uint8Array(4096);
    pool.give([foreign, a]);
    const c = pool.take(1024);
    const d = pool.take(1024);
    expect(c.buffer).toBe(a.buffer);
    expect([foreign.buffer, a.buffer, b.buffer]).not.toContain(d.buffer);
  });

  it('keeps at most as many buffers as it was told', () => {
    const pool = new BufferPool(1);
    const views = [pool.take(64), pool.take(64)];
    pool.give(views);
    expect(pool.take(64).buffer).toBe(views[0]?.buffer);
    expect([views[0]?.buffer, views[1]?.buffer]).not.toContain(pool.take(64).buffer);
  });
});

/** The same objects in another store: what a process that starts cold reads (nothing of them kept). */
function coldCopy(store: MemoryStore): MemoryStore {
  const copy = new MemoryStore();
  for (const [key, object] of store.objects) copy.objects.set(key, object);
  return copy;
}

describe('when storing the catalog', () => {
  function catalogOf(names: string[]) {
    const catalog = emptyCatalog();
    catalog.generation = 7;
    catalog.registryDigests.set('index.json', { sha256: 'a'.repeat(64), size: 10 });
    for (const name of names) {
      catalog.plugins.set(name, {
        document: { sha256: 'b'.repeat(64), size: 5 },
        apiVersions: ['v1'],
        entry: JSON.stringify(entry(name)),
        search: JSON.stringify({ name }),
        falcoctl: toYaml([{ name, type: 'plugin', description: 'tab\there, newline\nthere' }]),
      });
    }
    return catalog;
  }

  it('round-trips through the store, strings with tabs and newlines included', async () => {
    const store = new MemoryStore();
    const catalog = catalogOf(['a-one', 'b-two', 'c-three']);
    await saveCatalog(store, catalog);
    const loaded = await loadCatalog(store);
    expect(loaded.generation).toBe(7);
    expect([...loaded.plugins.keys()].sort()).toEqual(['a-one', 'b-two', 'c-three']);
    expect(JSON.parse(loaded.plugins.get('b-two')?.entry ?? '')).toEqual(entry('b-two'));
    expect(loaded.plugins.get('c-three')?.falcoctl).toBe(catalog.plugins.get('c-three')?.falcoctl);
    expect(loaded.registryDigests.get('index.json')).toEqual({ sha256: 'a'.repeat(64), size: 10 });
  });

  it('rewrites only the bins of changed plugins, plus the meta file', async () => {
    const store = new MemoryStore();
    const catalog = catalogOf(['a-one', 'b-two', 'c-three']);
    await saveCatalog(store, catalog);
    store.writes.length = 0;
    await saveCatalog(store, catalog, new Set(['b-two']));
    expect(store.writes).toEqual([`state/catalog/bins/${binOf('b-two')}.tsv`, 'state/catalog/meta.tsv']);
  });

  /** `store` with its bin puts answered a moment later, counting how many are in flight at once. */
  function slowBins(store: MemoryStore, fail?: (begun: number) => boolean) {
    const seen = { begun: 0, inFlight: 0, most: 0, metaWithBinsInFlight: false };
    const put = store.put.bind(store);
    store.put = async (key, body, options) => {
      if (!key.startsWith('state/catalog/bins/')) {
        if (key === 'state/catalog/meta.tsv' && seen.inFlight > 0) seen.metaWithBinsInFlight = true;
        return put(key, body, options);
      }
      seen.begun += 1;
      const failing = fail?.(seen.begun) ?? false;
      seen.inFlight += 1;
      seen.most = Math.max(seen.most, seen.inFlight);
      try {
        await new Promise((resolve) => setTimeout(resolve, 2));
        if (failing) throw new StoreError('STORE_IO', key, 'connection reset');
        return await put(key, body, options);
      } finally {
        seen.inFlight -= 1;
      }
    };
    return seen;
  }
  const names400 = Array.from({ length: 400 }, (_, i) => `p-${i}`);
  const binsOf = (names: readonly string[]) => new Set(names.map(binOf)).size;

  it('writes the bins side by side, sixteen at a time, and the meta file once every one is written', async () => {
    const store = new MemoryStore();
    const seen = slowBins(store);
    await saveCatalog(store, catalogOf(names400));
    expect(seen.begun).toBe(binsOf(names400));
    expect(seen.most).toBe(16);
    expect(seen.metaWithBinsInFlight).toBe(false);
    expect(store.writes.at(-1)).toBe('state/catalog/meta.tsv');
    expect([...(await loadCatalog(coldCopy(store))).plugins.keys()].sort()).toEqual([...names400].sort());
  });

  it('begins no bin after one fails, lets those begun end, writes no meta file, and throws the failure', async () => {
    const store = new MemoryStore();
    const seen = slowBins(store, (begun) => begun === 3);
    const saving = saveCatalog(store, catalogOf(names400));
    await expect(saving).rejects.toBeInstanceOf(StoreError);
    await expect(saving).rejects.toMatchObject({ code: 'STORE_IO' });
    expect(seen.inFlight).toBe(0);
    // Those in flight when it failed, and no more.
    expect(seen.begun).toBeLessThanOrEqual(3 + 16);
    expect(store.writes).not.toContain('state/catalog/meta.tsv');
  });

  it('sees a change made by another writer', async () => {
    const store = new MemoryStore();
    await saveCatalog(store, catalogOf(['a-one']));
    expect((await loadCatalog(store)).plugins.has('a-one')).toBe(true);
    // Another process (a second store object over the same objects) adds a plugin.
    const other = new MemoryStore();
    for (const [key, object] of store.objects) other.objects.set(key, object);
    const theirs = await loadCatalog(other);
    theirs.plugins.set('zz-new', theirs.plugins.get('a-one') as never);
    await saveCatalog(other, theirs, new Set(['zz-new']));
    for (const [key, object] of other.objects) store.objects.set(key, object);
    expect((await loadCatalog(store)).plugins.has('zz-new')).toBe(true);
  });

  it('opens a catalog reading no bin, then reads only the bins asked for, under the lines it holds', async () => {
    const store = new MemoryStore();
    const names = Array.from({ length: 40 }, (_, i) => `p-${i}`);
    await saveCatalog(store, catalogOf(names));
    const reads: string[] = [];
    const counted = coldCopy(store);
    const get = counted.get.bind(counted);
    counted.get = (key) => {
      reads.push(key);
      return get(key);
    };
    const opened = await openCatalog(counted);
    // The meta file, and beside it the record of the snapshots runs were about to publish.
    expect(reads).toEqual(['state/catalog/meta.tsv', 'state/catalog/snapshot-writing.tsv']);
    expect(opened.plugins.size).toBe(0);
    expect(opened.unread.size).toBe(new Set(names.map(binOf)).size);
    // A run's own line stays over the bin's when the bin is read after it.
    opened.plugins.set('p-1', {
      ...(catalogOf(['p-1']).plugins.get('p-1') as CatalogLine),
      search: '{"run":1}',
    });
    await readBins(counted, opened, [binOf('p-1')]);
    expect(reads.slice(2)).toEqual([`state/catalog/bins/${binOf('p-1')}.tsv`]);
    const inBin = names.filter((n) => binOf(n) === binOf('p-1')).sort();
    expect([...opened.plugins.keys()].filter((n) => binOf(n) === binOf('p-1')).sort()).toEqual(inBin);
    expect(opened.plugins.get('p-1')?.search).toBe('{"run":1}');
    expect(opened.unread.has(binOf('p-1'))).toBe(false);
  });

  it('forgets what a run changed in its catalog but never saved (a run that failed)', async () => {
    const store = new MemoryStore();
    const saved = catalogOf(['a-one', 'b-two']);
    await saveCatalog(store, saved);
    const run = await loadCatalog(store);
    run.plugins.set('zz-unsaved', run.plugins.get('a-one') as never);
    run.plugins.set('a-one', { ...(run.plugins.get('a-one') as CatalogLine), search: '{"name":"changed"}' });
    run.plugins.delete('b-two');

    const next = await loadCatalog(store);
    expect([...next.plugins.keys()].sort()).toEqual(['a-one', 'b-two']);
    expect(next.plugins.get('a-one')?.search).toBe(saved.plugins.get('a-one')?.search);
  });

  it('writes a bin it has not read whole: its lines read, the changed ones over them', async () => {
    const store = new MemoryStore();
    const names = Array.from({ length: 40 }, (_, i) => `p-${i}`);
    await saveCatalog(store, catalogOf(names));
    const opened = await openCatalog(coldCopy(store));
    opened.plugins.set('p-1', {
      ...(catalogOf(['p-1']).plugins.get('p-1') as CatalogLine),
      search: '{"run":1}',
    });
    await saveCatalog(store, opened, new Set(['p-1']));
    const loaded = await loadCatalog(coldCopy(store));
    expect([...loaded.plugins.keys()].sort()).toEqual([...names].sort());
    expect(loaded.plugins.get('p-1')?.search).toBe('{"run":1}');
    // Read bin by bin and let go: the bin written was never put among the catalog's lines.
    expect(opened.plugins.size).toBe(1);
  });

  it('renders from a loaded line the very bytes it renders from the line saved (entry, search row, falcoctl item)', async () => {
    const store = new MemoryStore();
    const catalog = catalogOf(['a-one', 'b-two']);
    await saveCatalog(store, catalog);
    const loaded = await loadCatalog(store);
    for (const name of ['a-one', 'b-two']) {
      const saved = catalog.plugins.get(name) as CatalogLine;
      const read = loaded.plugins.get(name) as CatalogLine;
      expect(text(entryBytes(read))).toBe(saved.entry);
      expect(text(searchBytes(read))).toBe(saved.search);
      expect(text(falcoctlItem(read))).toBe(saved.falcoctl);
      expect(read.document).toEqual(saved.document);
      expect(read.apiVersions).toEqual(saved.apiVersions);
    }
    expect(apiVersionsOf([...loaded.plugins.values()])).toEqual(['v1']);
  });

  it('writes a bin back byte for byte when only another bin changed, and a changed bin from its lines', async () => {
    const store = new MemoryStore();
    const names = ['a-one', 'b-two', 'c-three', 'd-four'];
    await saveCatalog(store, catalogOf(names));
    const before = new Map([...store.objects].map(([key, object]) => [key, text(object.body)]));
    const loaded = await loadCatalog(store);
    loaded.plugins.set('b-two', {
      ...catalogOf(['b-two']).plugins.get('b-two'),
      apiVersions: ['v2'],
    } as CatalogLine);
    await saveCatalog(store, loaded);
    for (const [key, body] of before) {
      if (!key.includes('/bins/')) continue;
      if (key.endsWith(`${binOf('b-two')}.tsv`))
        expect(text(store.objects.get(key)?.body ?? new Uint8Array())).not.toBe(body);
      else expect(text(store.objects.get(key)?.body ?? new Uint8Array())).toBe(body);
    }
    const again = await loadCatalog(store);
    expect(again.plugins.get('b-two')?.apiVersions).toEqual(['v2']);
    expect(again.plugins.get('c-three')?.falcoctl).toBe(
      catalogOf(['c-three']).plugins.get('c-three')?.falcoctl,
    );
  });

  it('reads a bin of another format as an outdated catalog, not as a registry without its plugins', async () => {
    const store = new MemoryStore();
    await saveCatalog(store, catalogOf(['a-one', 'b-two']));
    const key = `state/catalog/bins/${binOf('a-one')}.tsv`;
    const object = store.objects.get(key) as StoredObject;
    const older = text(object.body).replace(/^plugindex-catalog \d+/, 'plugindex-catalog 4');
    store.objects.set(key, { ...object, body: utf8(older) });
    const loaded = await loadCatalog(coldCopy(store));
    expect(loaded.outdated).toBe(true);
  });

  it('keeps the whole lines of a bin cut short, and none of the line it cuts', async () => {
    const store = new MemoryStore();
    const names = Array.from({ length: 400 }, (_, i) => `p-${i}`);
    await saveCatalog(store, catalogOf(names));
    const bin = binOf('p-0');
    const key = `state/catalog/bins/${bin}.tsv`;
    const object = store.objects.get(key) as StoredObject;
    const inBin = names.filter((n) => binOf(n) === bin).sort();
    expect(inBin.length).toBeGreaterThan(1);
    // Cut inside the last line's falcoctl item.
    store.objects.set(key, { ...object, body: object.body.subarray(0, object.body.byteLength - 3) });
    const loaded = await loadCatalog(coldCopy(store));
    expect(inBin.filter((n) => loaded.plugins.has(n))).toEqual(inBin.slice(0, -1));
    expect(JSON.parse(loaded.plugins.get(inBin[0] as string)?.entry ?? '')).toEqual(
      entry(inBin[0] as string),
    );
  });

  it('names snapshot bins by the first byte of the name digest', () => {
    expect(binOf('demo-plugin')).toMatch(/^[0-9a-f]{2}$/);
    expect(binKey('0a')).toBe('snapshot/bins/0a.json');
  });
});

describe('when journaling the catalog', () => {
  const line = (name: string, search = `{"name":"${name}"}`): CatalogLine => ({
    document: { sha256: 'b'.repeat(64), size: 5 },
    apiVersions: ['v1'],
    entry: JSON.stringify(entry(name)),
    search,
    falcoctl: toYaml([{ name, type: 'plugin' }]),
  });
  const JOURNAL_KEY = /^state\/catalog\/journal\/[0-9a-f]{64}\.tsv$/;
  const journalKeys = (store: MemoryStore) => [...store.objects.keys()].filter((k) => JOURNAL_KEY.test(k));
  const binKeys = (keys: readonly string[]) => keys.filter((k) => k.startsWith('state/catalog/bins/'));

  async function seeded(names: string[]) {
    const store = new MemoryStore();
    const catalog = emptyCatalog();
    for (const name of names) catalog.plugins.set(name, line(name));
    await saveCatalog(store, catalog);
    store.writes.length = 0;
    return store;
  }

  /** One run as a publish makes it: opens the catalog, sets `lines`, saves them as `write` says. */
  async function run(store: MemoryStore, lines: Record<string, string>, write: 'journal' | 'fold') {
    const catalog = await openCatalog(store);
    for (const [name, search] of Object.entries(lines)) catalog.plugins.set(name, line(name, search));
    await saveCatalog(store, catalog, new Set(Object.keys(lines)), write);
  }

  const searchOf = async (store: MemoryStore, name: string) => {
    const catalog = await loadCatalog(store);
    return catalog.plugins.get(name)?.search;
  };

  it('writes a deferred change as one journal object and the meta file, every bin left as it was', async () => {
    const store = await seeded(['a-one', 'b-two', 'c-three']);
    await run(store, { 'b-two': '{"v":1}', 'zz-new': '{"v":1}' }, 'journal');
    expect(store.writes).toHaveLength(2);
    expect(store.writes[0]).toMatch(JOURNAL_KEY);
    expect(store.writes[1]).toBe('state/catalog/meta.tsv');
    for (const reader of [store, coldCopy(store)]) {
      const loaded = await loadCatalog(reader);
      expect(loaded.outdated).toBe(false);
      expect([...loaded.plugins.keys()].sort()).toEqual(['a-one', 'b-two', 'c-three', 'zz-new']);
      expect(loaded.plugins.get('b-two')?.search).toBe('{"v":1}');
      expect(text(entryBytes(loaded.plugins.get('zz-new') as CatalogLine))).toBe(
        JSON.stringify(entry('zz-new')),
      );
      // A plugin only the journal holds is a member of its bin: the snapshot bin it renders lists it.
      expect([...(await documentsIn(reader, loaded, new Set([binOf('zz-new')]))).keys()]).toContain('zz-new');
    }
  });

  it('folds the journal into the bins it touches, then deletes its objects', async () => {
    const store = await seeded(['a-one', 'b-two', 'c-three']);
    await run(store, { 'b-two': '{"v":1}' }, 'journal');
    await run(store, { 'zz-new': '{"v":2}' }, 'journal');
    expect(journalKeys(store)).toHaveLength(2);
    store.writes.length = 0;
    await run(store, { 'c-three': '{"v":3}' }, 'fold');
    expect(binKeys(store.writes).sort()).toEqual(
      [...new Set(['b-two', 'zz-new', 'c-three'].map((n) => `state/catalog/bins/${binOf(n)}.tsv`))].sort(),
    );
    expect(journalKeys(store)).toEqual([]);
    expect(text((store.objects.get('state/catalog/meta.tsv') as StoredObject).body)).not.toContain('journal');
    const cold = await loadCatalog(coldCopy(store));
    expect([cold.plugins.get('b-two')?.search, cold.plugins.get('zz-new')?.search]).toEqual([
      '{"v":1}',
      '{"v":2}',
    ]);
    expect(cold.plugins.get('c-three')?.search).toBe('{"v":3}');
    expect(await searchOf(store, 'b-two')).toBe('{"v":1}');
  });

  it('folds instead when the journal is full', async () => {
    const store = await seeded(['a-one']);
    for (let i = 0; i < JOURNAL_MAX_ENTRIES; i++) await run(store, { 'a-one': `{"v":${i}}` }, 'journal');
    expect(binKeys(store.writes)).toEqual([]);
    expect(journalKeys(store)).toHaveLength(JOURNAL_MAX_ENTRIES);
    store.writes.length = 0;
    await run(store, { 'a-one': '{"v":"last"}' }, 'journal');
    expect(binKeys(store.writes)).toEqual([`state/catalog/bins/${binOf('a-one')}.tsv`]);
    expect(journalKeys(store)).toEqual([]);
    expect(await searchOf(coldCopy(store), 'a-one')).toBe('{"v":"last"}');
  });

  it('reads a catalog whose journal object is missing or not the bytes it names as outdated', async () => {
    const store = await seeded(['a-one', 'b-two']);
    await run(store, { 'b-two': '{"v":1}' }, 'journal');
    const [key] = journalKeys(store) as [string];
    const missing = coldCopy(store);
    missing.objects.delete(key);
    expect((await loadCatalog(missing)).outdated).toBe(true);
    const altered = coldCopy(store);
    const object = altered.objects.get(key) as StoredObject;
    altered.objects.set(key, { ...object, body: utf8(text(object.body).replace('"v":1', '"v":2')) });
    expect((await loadCatalog(altered)).outdated).toBe(true);
  });

  it('gives a warm process what the journal holds after a run that changed a plugin but never saved', async () => {
    const store = await seeded(['a-one', 'b-two']);
    await run(store, { 'b-two': '{"v":1}' }, 'journal');
    const failed = await loadCatalog(store);
    failed.plugins.set('b-two', line('b-two', '{"v":"unsaved"}'));
    expect(await searchOf(store, 'b-two')).toBe('{"v":1}');
  });

  it("follows another writer's journal and fold in a warm process", async () => {
    const store = await seeded(['a-one', 'b-two', 'c-three']);
    expect(await searchOf(store, 'a-one')).toBe('{"name":"a-one"}'); // warm from here on
    const other = coldCopy(store);
    const sync = () => {
      for (const key of [...store.objects.keys()]) if (!other.objects.has(key)) store.objects.delete(key);
      for (const [key, object] of other.objects) store.objects.set(key, object);
    };
    await run(other, { 'a-one': '{"v":1}', 'b-two': '{"v":1}' }, 'journal');
    sync();
    expect(await searchOf(store, 'a-one')).toBe('{"v":1}');
    // The other writer folds, then journals anew: the warm map drops what it applied before.
    await run(other, { 'c-three': '{"v":2}' }, 'fold');
    await run(other, { 'a-one': '{"v":3}' }, 'journal');
    sync();
    const warm = await loadCatalog(store);
    const cold = await loadCatalog(coldCopy(store));
    for (const name of ['a-one', 'b-two', 'c-three'])
      expect([name, warm.plugins.get(name)?.search]).toEqual([name, cold.plugins.get(name)?.search]);
    expect(warm.plugins.get('a-one')?.search).toBe('{"v":3}');
    expect(warm.plugins.get('b-two')?.search).toBe('{"v":1}');
  });

  it.each([5, 6, 7])(
    'reads a meta file of format %i, whose search rows lack owners or documents their look-alikes, as outdated (rebuilt before use)',
    async (format) => {
      const store = await seeded(['a-one', 'b-two']);
      const object = store.objects.get('state/catalog/meta.tsv') as StoredObject;
      const older = text(object.body).replace(/^plugindex-catalog 8/, `plugindex-catalog ${format}`);
      expect(older.startsWith(`plugindex-catalog ${format}\n`)).toBe(true);
      store.objects.set('state/catalog/meta.tsv', { ...object, body: utf8(older) });
      const loaded = await loadCatalog(coldCopy(store));
      expect(loaded.outdated).toBe(true);
      expect([...loaded.plugins.keys()]).toEqual([]);
      // The upgrade's, which holds the documents to what the registry signed: of the old file, only what
      // a run that died recorded it was about to write, and the generation.
      expect(loaded.upgrading).toBe(true);
      const writing = `${older}writing\tplugins/a-one/index.json\t${'d'.repeat(64)}\nrebuilding\n`;
      store.objects.set('state/catalog/meta.tsv', {
        ...object,
        body: utf8(writing.replace('rebuilding\n', '')),
      });
      const died = await openCatalog(coldCopy(store));
      expect([died.upgrading, [...(died.writing.get('plugins/a-one/index.json') ?? [])]]).toEqual([
        true,
        ['d'.repeat(64)],
      ]);
      // A rebuild the release before marked (one that died) is finished as it began, taking what is there.
      store.objects.set('state/catalog/meta.tsv', { ...object, body: utf8(writing) });
      const marked = await openCatalog(coldCopy(store));
      expect([marked.outdated, marked.upgrading]).toEqual([true, false]);
    },
  );
});

describe('when going through every line in order without holding them', () => {
  const line = (name: string, tag = 'saved'): CatalogLine => ({
    document: { sha256: (tag === 'saved' ? 'b' : 'c').repeat(64), size: name.length },
    apiVersions: [tag === 'saved' ? 'v1' : 'v2'],
    entry: JSON.stringify({ name, tag, pad: 'x'.repeat(name.length * 7) }),
    search: JSON.stringify({ name, tag }),
    falcoctl: toYaml([{ name, tag }]),
  });
  const names = Array.from({ length: 300 }, (_, i) => `plugin-${String((i * 7919) % 1000).padStart(3, '0')}`);

  /** A store with `names` saved, one deferred run's lines journaled, then opened as a publish opens it. */
  async function opened() {
    const store = new MemoryStore();
    const catalog = emptyCatalog();
    for (const name of names) catalog.plugins.set(name, line(name));
    await saveCatalog(store, catalog);
    const run = await openCatalog(store);
    for (const name of ['plugin-000', 'zz-journaled']) run.plugins.set(name, line(name, 'journal'));
    await saveCatalog(store, run, new Set(['plugin-000', 'zz-journaled']), 'journal');
    const cold = coldCopy(store);
    const open = await openCatalog(cold);
    // A run's own change, not saved: it is what the run renders.
    open.plugins.set('aa-run', line('aa-run', 'run'));
    return { cold, open };
  }

  it('gives every line in name order, a window at a time, the journal and the run over the bins', async () => {
    const { cold, open } = await opened();
    const outline = await outlineCatalog(cold, open);
    const expected = [...names, 'zz-journaled', 'aa-run'].sort();
    expect(outline.names).toEqual(expected);
    expect(outline.apiVersions).toEqual(['v1', 'v2']);
    // The bins are let go: the catalog still holds only the journal's lines and the run's.
    expect([...open.plugins.keys()].sort()).toEqual(['aa-run', 'plugin-000', 'zz-journaled']);
    const full = await loadCatalog(coldCopy(cold));
    full.plugins.set('aa-run', line('aa-run', 'run'));
    const want = expected.map((name) => full.plugins.get(name) as CatalogLine);
    for (const windowBytes of [1, 5_000, 1 << 30]) {
      const windows: string[][] = [];
      const got: string[] = [];
      for await (const window of sortedLines(cold, open, outline, windowBytes)) {
        windows.push(window.map((item) => text(item.search)));
        for (const item of window)
          got.push(`${text(item.entry)}|${text(item.search)}|${text(item.falcoctl)}`);
      }
      expect(got).toEqual(want.map((l) => `${l.entry}|${l.search}|${l.falcoctl}`));
      const count = windows.length;
      if (windowBytes === 1) expect(count, 'a name a window').toBe(expected.length);
      else if (windowBytes === 5_000) expect(count).toBeGreaterThan(2);
      else expect(count).toBe(1);
    }
    // Each item's length as the outline counted it.
    expect(outline.lengths[expected.indexOf('aa-run') * 3 + ORDER_SEARCH]).toBe(
      line('aa-run', 'run').search.length,
    );
  });

  it("gives the document digests of a bin's plugins without reading its lines into the catalog", async () => {
    const { cold, open } = await opened();
    const bin = binOf('plugin-000');
    const documents = await documentsIn(cold, open, new Set([bin]));
    const inBin = [...names, 'zz-journaled', 'aa-run'].filter((n) => binOf(n) === bin).sort();
    expect([...documents.keys()].sort()).toEqual(inBin);
    expect(documents.get('plugin-000')?.document.sha256).toBe('c'.repeat(64));
    expect(open.unread.has(bin)).toBe(true);
    expect(open.plugins.size).toBe(3);
  });

  it('reads the bins whose digests it lacks sixteen at a time, each once, and keeps none of their lines', async () => {
    const { cold, open } = await opened();
    /** The cold store, its bin reads slow enough to overlap, counted. */
    class PacedStore extends MemoryStore {
      reads: string[] = [];
      reading = 0;
      mostReading = 0;
      override async get(key: string): Promise<StoredObject | undefined> {
        if (!key.startsWith('state/catalog/bins/')) return super.get(key);
        this.reads.push(key);
        this.mostReading = Math.max(this.mostReading, ++this.reading);
        try {
          await new Promise((resolve) => setTimeout(resolve, 2));
          return await super.get(key);
        } finally {
          this.reading--;
        }
      }
    }
    const paced = new PacedStore();
    for (const [key, object] of cold.objects) paced.objects.set(key, object);
    const bins = new Set(open.bins.keys());
    expect(bins.size, 'bins enough to fill the pool').toBeGreaterThan(16);
    const documents = await documentsIn(paced, open, bins);
    expect(documents.size).toBe(names.length + 2);
    expect(paced.mostReading).toBe(16);
    expect(new Set(paced.reads).size).toBe(paced.reads.length);
    expect(paced.reads.length).toBe(bins.size);
    // Indexed: asked again, it reads nothing.
    await documentsIn(paced, open, bins);
    expect(paced.reads.length).toBe(bins.size);
    // Not kept: a reader of the lines reads the bin again.
    const bin = binOf('plugin-000');
    await readBins(paced, open, [bin]);
    expect(paced.reads.filter((key) => key.endsWith(`/${bin}.tsv`))).toHaveLength(2);
  });
});
