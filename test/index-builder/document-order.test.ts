/**
 * The order the index documents were rendered in (index-builder/document-order.ts), and the splice that merges
 * changed items into an old rendering (render/index-documents.ts `splicedChunks`): a merge must give the bytes a
 * full rendering of the same items gives, whatever changed where, and must refuse an old document that is not
 * the recorded one.
 */
import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { digestOf } from '../../index-builder/digest.ts';
import {
  type ChangedItems,
  type DocumentOrder,
  parseOrder,
  planMerge,
  serializeOrder,
} from '../../index-builder/document-order.ts';
import {
  type DocumentLayout,
  FALCOCTL_LAYOUT,
  IndexDocumentStale,
  indexJsonLayout,
  indexYamlLayout,
  OldDocument,
  renderLayout,
  splicedChunks,
} from '../../index-builder/render/index-documents.ts';

const utf8 = new TextEncoder();

/** An item per name: non-ASCII text of every UTF-8 length, its size varying with `version`. */
const itemOf = (name: string, version = 1): ChangedItems => {
  const entry = utf8.encode(`{"name":"${name}","v":${version},"d":"é ✓ 🚀${'x'.repeat(version)}"}`);
  return {
    entry,
    search: entry,
    falcoctl: utf8.encode(`- name: ${name}\n  v: ${version}\n`),
    apiVersions: 'v1',
  };
};

/** The order of `items` (sorted by name), as a full rendering of `layout` writes them, and that rendering. */
function rendered(layout: DocumentLayout, items: ReadonlyMap<string, ChangedItems>) {
  const names = [...items.keys()].sort();
  const lengths = new Uint32Array(names.length * 3);
  names.forEach((name, i) => {
    const item = items.get(name) as ChangedItems;
    lengths.set([item.entry.byteLength, item.search.byteLength, item.falcoctl.byteLength], i * 3);
  });
  const body = renderLayout(
    layout,
    names.map((name) => (items.get(name) as ChangedItems).entry),
    (size) => new Uint8Array(size),
  );
  const order: DocumentOrder = {
    documents: new Map([['index.json', digestOf(body)]]),
    names,
    lengths,
    apiVersions: names.map(() => 'v1'),
  };
  return { body, order };
}

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const pieces: Uint8Array[] = [];
  for await (const chunk of chunks) pieces.push(chunk);
  return Buffer.concat(pieces);
}

/** The merge of `changed` into the rendering of `before`, its old bytes given in pieces of `piece` bytes. */
async function merged(
  layout: DocumentLayout,
  newLayout: DocumentLayout,
  before: ReadonlyMap<string, ChangedItems>,
  changed: ReadonlyMap<string, ChangedItems | undefined>,
  piece = 7,
): Promise<Uint8Array> {
  const { body, order } = rendered(layout, before);
  const plan = planMerge(order, changed);
  const pieces = Array.from({ length: Math.ceil(body.byteLength / piece) }, (_, i) =>
    body.subarray(i * piece, (i + 1) * piece),
  );
  const old = new OldDocument(pieces, 'index.json', order.documents.get('index.json'));
  const items = {
    layout,
    size: body.byteLength,
    lengths: order.lengths,
    count: order.names.length,
    stride: 3,
    offset: 0,
  };
  return collect(splicedChunks(newLayout, plan.steps, (c) => c.entry, old, items));
}

describe('the order file', () => {
  it('reads back what it wrote, with or without the store validators', () => {
    const { order } = rendered(
      indexJsonLayout({}),
      new Map([
        ['a-one', itemOf('a-one')],
        ['b-two', itemOf('b-two', 3)],
      ]),
    );
    const withEtag: DocumentOrder = {
      ...order,
      documents: new Map([
        [
          'index.json',
          { ...(order.documents.get('index.json') as { sha256: string; size: number }), etag: '"abc-2"' },
        ],
        ['search.json', { sha256: 'c'.repeat(64), size: 12 }],
      ]),
    };
    const empty: DocumentOrder = {
      documents: new Map(),
      names: [],
      lengths: new Uint32Array(0),
      apiVersions: [],
    };
    for (const written of [order, withEtag, empty]) {
      // As a store gives it: a Buffer, here a view into the middle of a larger one.
      const bytes = serializeOrder(written);
      const larger = Buffer.alloc(bytes.byteLength + 13);
      larger.set(bytes, 5);
      const read = parseOrder(larger.subarray(5, 5 + bytes.byteLength));
      expect(read?.names).toEqual(written.names);
      expect([...(read?.lengths ?? [])]).toEqual([...written.lengths]);
      expect(read?.apiVersions).toEqual(written.apiVersions);
      expect(read?.documents).toEqual(written.documents);
    }
  });

  it.each([
    ['another format', (text: string) => text.replace('plugindex-order 1', 'plugindex-order 2')],
    ['a cut file', (text: string) => text.slice(0, -3)],
    ['bytes after its end', (text: string) => `${text}\n`],
    ['names out of order', (text: string) => text.replace('a-one\nb-two', 'b-two\na-one')],
    ['a count of names that is not theirs', (text: string) => text.replace('names\t2\t', 'names\t3\t')],
    [
      'a block size that is not its own',
      (text: string) => text.replace(/\napi\t(\d+)/, (_, n) => `\napi\t${Number(n) + 1}`),
    ],
    ['a malformed digest', (text: string) => text.replace(/\t[0-9a-f]{64}\t/, '\tnot-a-digest\t')],
  ])('refuses %s', (_, spoil) => {
    const { order } = rendered(
      indexJsonLayout({}),
      new Map([
        ['a-one', itemOf('a-one')],
        ['b-two', itemOf('b-two')],
      ]),
    );
    // Bytes as Latin-1 text, so the binary lengths come back as they were.
    const text = Buffer.from(serializeOrder(order)).toString('latin1');
    const spoiled = spoil(text);
    expect(spoiled).not.toBe(text);
    expect(parseOrder(Buffer.from(spoiled, 'latin1'))).toBeUndefined();
    expect(parseOrder(Buffer.from(text, 'latin1'))?.names).toEqual(['a-one', 'b-two']);
  });
});

describe('merging changed items into an old rendering', () => {
  const names = ['b-plugin', 'd-plugin', 'f-plugin', 'h-plugin'];
  const before = new Map(names.map((name) => [name, itemOf(name)]));

  it.each([
    ['one replaced in the middle', { 'd-plugin': 4 }],
    ['one inserted first', { 'a-plugin': 2 }],
    ['one inserted last', { 'z-plugin': 2 }],
    ['several, between and replacing', { 'c-plugin': 1, 'f-plugin': 9, 'g-plugin': 2, 'h-plugin': 5 }],
    ['every one replaced', { 'b-plugin': 2, 'd-plugin': 2, 'f-plugin': 2, 'h-plugin': 2 }],
    ['one left out', { 'd-plugin': null }],
    ['every one left out', { 'b-plugin': null, 'd-plugin': null, 'f-plugin': null, 'h-plugin': null }],
    ['nothing', {}],
  ] as const)('gives the full rendering of the merged items: %s', async (_, change) => {
    const changed = new Map(
      Object.entries(change).map(([name, version]) => [
        name,
        version === null ? undefined : itemOf(name, version),
      ]),
    );
    const after = new Map(before);
    for (const [name, item] of changed) {
      if (item) after.set(name, item);
      else after.delete(name);
    }
    // The header changes at every rendering (the registry metadata's time): the old one is skipped.
    const layouts: [DocumentLayout, DocumentLayout][] = [
      [indexJsonLayout({ updated: '2026-01-01' }), indexJsonLayout({ updated: '2026-12-03T10:00:00.000Z' })],
      [indexYamlLayout('registry: old\n'), indexYamlLayout('registry: a longer header\n')],
      [FALCOCTL_LAYOUT, FALCOCTL_LAYOUT],
    ];
    for (const [oldLayout, newLayout] of layouts)
      for (const piece of [1, 7, 1 << 20]) {
        const expected = rendered(newLayout, after).body;
        const bytes = await merged(oldLayout, newLayout, before, changed, piece);
        expect(Buffer.from(bytes).toString(), `${newLayout.separator} ${piece}`).toBe(
          Buffer.from(expected).toString(),
        );
      }
  });

  it('merges into an empty rendering', async () => {
    const changed = new Map([
      ['a-plugin', itemOf('a-plugin')],
      ['b-plugin', itemOf('b-plugin')],
    ]);
    for (const layout of [FALCOCTL_LAYOUT, indexYamlLayout('h: 1\n'), indexJsonLayout({})]) {
      const bytes = await merged(layout, layout, new Map(), changed);
      expect(Buffer.from(bytes).toString()).toBe(Buffer.from(rendered(layout, changed).body).toString());
    }
  });

  it('refuses an old document that is not the recorded rendering, by type and code', async () => {
    const layout = indexJsonLayout({});
    const { body, order } = rendered(layout, before);
    const spoiled = Buffer.from(body);
    // A byte inside an unchanged item, which the merge copies without looking at it.
    spoiled[spoiled.indexOf('f-plugin') + 2] = 0x58;
    const plan = planMerge(order, new Map([['a-plugin', itemOf('a-plugin')]]));
    const items = {
      layout,
      size: body.byteLength,
      lengths: order.lengths,
      count: names.length,
      stride: 3,
      offset: 0,
    };
    for (const old of [
      new OldDocument([spoiled], 'index.json', order.documents.get('index.json')),
      // Cut short: it ends before its last item.
      new OldDocument(
        [body.subarray(0, body.byteLength - 40)],
        'index.json',
        order.documents.get('index.json'),
      ),
    ]) {
      const error = await collect(splicedChunks(layout, plan.steps, (c) => c.entry, old, items)).catch(
        (e) => e,
      );
      expect(error).toBeInstanceOf(IndexDocumentStale);
      expect(error).toMatchObject({ code: 'INDEX_DOCUMENT_STALE' });
    }
  });
});
