/**
 * Committing a generation: everything registry-wide a publish writes after the plugin documents, ending
 * with the snapshot, the commit point for clients, and then the catalog that records it. The snapshot is
 * also the record of digests: what a call does not rewrite keeps the digest the published snapshot gives
 * it, never the catalog's, which lags the snapshot when a run died between the two.
 */
import {
  apiVersionsField,
  apiVersionsOf,
  binsKept,
  type Catalog,
  type CatalogLine,
  type CatalogOutline,
  documentsIn,
  entryBytes,
  falcoctlItem,
  forgetBins,
  heldEntry,
  heldEntryLength,
  heldFalcoctlLength,
  heldSearchRow,
  heldSearchRowLength,
  itemLengths,
  markUnrendered,
  outlineCatalog,
  readBins,
  readOrder,
  recordedGeneration,
  recordSnapshot,
  saveCatalog,
  saveOrder,
  searchBytes,
  sortedLines,
  sortedNames,
} from '../catalog.ts';
import { digestOf, sha256Hex } from '../digest.ts';
import {
  apiVersionsOfFields,
  type ChangedItems,
  type DocumentOrder,
  ORDER_ENTRY,
  ORDER_FALCOCTL,
  ORDER_SEARCH,
  planMerge,
  type WrittenDocument,
} from '../document-order.ts';
import { KeyError } from '../errors.ts';
import {
  binKey,
  binOf,
  catalogSpillKey,
  ENCODED_DOCUMENTS,
  FALCOCTL_INDEX_KEY,
  FAVICON_KEY,
  HOME_PAGE_KEY,
  INDEX_DOCUMENTS,
  INDEX_JSON_KEY,
  INDEX_YAML_KEY,
  isPluginDocumentKey,
  REGISTRY_PUBLIC_KEY_KEY,
  SEARCH_KEY,
  SIGNED_SNAPSHOT_KEY,
  SNAPSHOT_KEY,
  STYLE_KEY,
  signatureKey,
} from '../layout.ts';
import { allSettledValues, forEachLimited } from '../limited.ts';
import { EMPTY_LOG } from '../log.ts';
import type { DocumentDigest, LogHead, SearchEntry, SnapshotDocument } from '../model.ts';
import { buildRegistryMetadata } from '../render/documents.ts';
import { FAVICON_SVG, type HomeListing, PAGE_STYLE, renderIndexPage } from '../render/html.ts';
import {
  BufferPool,
  type DocumentLayout,
  FALCOCTL_LAYOUT,
  IndexDocumentStale,
  indexJsonLayout,
  indexYamlLayout,
  LayoutCutter,
  layoutChunks,
  layoutSize,
  OldDocument,
  renderLayout,
  searchJsonLayout,
  splicedChunks,
  utf8Length,
} from '../render/index-documents.ts';
import { HOME_PAGE_SIZE } from '../render/page-script.ts';
import { renderBins, renderSignedSnapshot, renderSnapshot } from '../render/snapshot.ts';
import { toYaml } from '../render/yaml.ts';
import { CACHE_MUTABLE, contentTypeFor, type ObjectInfo } from '../store.ts';
import { identityOf, type PipelineContext, streamThresholdOf } from './context.ts';
import { putEncodedVariants } from './encoded.ts';
import { currentLogHead, readLogHead, SegmentReads, signedLogHead } from './log-writer.ts';
import { checkedSnapshot } from './published.ts';
import { allWritten, putFile, putSigned, readJson, WRITE_CONCURRENCY } from './site-writer.ts';
import { putStreamedSigned, SpillWriter, type StreamedDocument } from './streamed.ts';
import { headLeavingStuck, type LeaveStuck } from './stuck-entries.ts';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Files for browsers, not documents: the snapshot does not list them. */
const PAGE_FILES = new Set([HOME_PAGE_KEY, FAVICON_KEY, STYLE_KEY]);

/** Memory for the four large index documents, kept between publishes (see BufferPool). */
const renderBuffers = new BufferPool(4);

/** One index document: its layout and items, rendered into a buffer or as a stream by its size. */
interface IndexDocument {
  readonly key: string;
  readonly layout: DocumentLayout;
  readonly lines: readonly CatalogLine[];
  /**
   * The item as held (a stored line's bytes, else the text a stream encodes as it goes: heldEntry), and its
   * bytes (kept encoded, for a buffer).
   */
  readonly text: (line: CatalogLine) => string | Uint8Array;
  readonly bytes: (line: CatalogLine) => Uint8Array;
  /**
   * Its item's length as `over` counts it: a stored line's bytes, else the UTF-16 units of its text (at
   * most its UTF-8 bytes, at least a third of them), measured without a view or an encoding.
   */
  readonly length: (line: CatalogLine) => number;
}

const ENTRIES = { text: heldEntry, bytes: entryBytes, length: heldEntryLength };
const SEARCH_ROWS = { text: heldSearchRow, bytes: searchBytes, length: heldSearchRowLength };
const FALCOCTL_ITEMS = { text: falcoctlItem, bytes: falcoctlItem, length: heldFalcoctlLength };

/** The size of `doc`, without encoding it. */
function sizeOf(doc: IndexDocument): number {
  let bytes = 0;
  for (const line of doc.lines) {
    const item = doc.text(line);
    bytes += typeof item === 'string' ? utf8Length(item) : item.byteLength;
  }
  return layoutSize(doc.layout, doc.lines.length, bytes);
}

/** Whether `documents` come to more than `threshold` bytes, counted without encoding them. */
function over(documents: readonly IndexDocument[], threshold: number): boolean {
  let chars = 0;
  for (const doc of documents) {
    let items = 0;
    for (const line of doc.lines) items += doc.length(line);
    chars += layoutSize(doc.layout, doc.lines.length, items);
  }
  // UTF-8 takes one to three bytes per UTF-16 unit: only a count in between needs the exact sizes.
  if (chars > threshold) return true;
  if (chars * 3 <= threshold) return false;
  return documents.reduce((sum, doc) => sum + sizeOf(doc), 0) > threshold;
}

/** The index documents' layouts and their registry metadata, for the plugins' api versions. */
function indexLayouts(ctx: PipelineContext, apiVersions: readonly string[]) {
  const updated = ctx.clock.now().toISOString();
  const metadata = buildRegistryMetadata(identityOf(ctx.config), [...apiVersions], updated);
  const header = toYaml({ registry_version: '1.0.0', registry_metadata: metadata });
  return {
    [INDEX_JSON_KEY]: indexJsonLayout(metadata),
    [INDEX_YAML_KEY]: indexYamlLayout(header),
    [SEARCH_KEY]: searchJsonLayout(updated),
    [FALCOCTL_INDEX_KEY]: FALCOCTL_LAYOUT,
  };
}

/** The order the documents are rendered in, but for their digests (known once they are written). */
type RenderedOrder = Omit<DocumentOrder, 'documents'>;

/** Index documents to write, buffered or streamed, and the home page's first plugins. */
interface IndexDocuments {
  readonly buffered: [string, Uint8Array][];
  readonly streamed: StreamedDocument[];
  readonly home: HomeListing;
  /** The order the documents are rendered in: saved once they are written, for the next merge. */
  readonly order: RenderedOrder;
  /** Merged into the published documents (a stale one fails its write with IndexDocumentStale). */
  readonly merged?: boolean;
  /** The streamed documents are views of documents held in memory: written side by side, not in turn. */
  readonly held?: boolean;
  /** Deletes what the rendering left in the intake store (a spill), once the documents are written. */
  readonly done?: () => Promise<void>;
}

/** The order of `lines` (named `names`, sorted). */
function orderOfLines(names: readonly string[], lines: readonly CatalogLine[]): RenderedOrder {
  const lengths = new Uint32Array(lines.length * 3);
  for (let i = 0; i < lines.length; i++) lengths.set(itemLengths(lines[i] as CatalogLine), i * 3);
  return { names, lengths, apiVersions: lines.map(apiVersionsField) };
}

/**
 * The index documents, from every plugin's catalog line (`names`, sorted; the catalog holds every line):
 * their cost grows with the registry, so each line's bytes are encoded once and copied once, into the kept
 * buffers; documents over the streaming threshold together are returned as renderings to stream instead.
 */
function renderIndexDocuments(
  ctx: PipelineContext,
  catalog: Catalog,
  names: readonly string[],
  given?: ReturnType<typeof indexLayouts>,
): IndexDocuments {
  const lines = names.map((n) => catalog.plugins.get(n) as CatalogLine);
  // The registry metadata's time is read from the clock once per rendering.
  const layouts = given ?? indexLayouts(ctx, apiVersionsOf(lines));
  const documents: IndexDocument[] = [
    { key: INDEX_JSON_KEY, layout: layouts[INDEX_JSON_KEY], lines, ...ENTRIES },
    { key: INDEX_YAML_KEY, layout: layouts[INDEX_YAML_KEY], lines, ...ENTRIES },
    { key: SEARCH_KEY, layout: layouts[SEARCH_KEY], lines, ...SEARCH_ROWS },
    { key: FALCOCTL_INDEX_KEY, layout: layouts[FALCOCTL_INDEX_KEY], lines, ...FALCOCTL_ITEMS },
  ];
  const home = homeListing(catalog, names);
  const order = orderOfLines(names, lines);
  if (over(documents, streamThresholdOf(ctx))) {
    const streamed = documents.map((doc) => ({
      key: doc.key,
      size: sizeOf(doc),
      chunks: () => layoutChunks(doc.layout, lines.map(doc.text)),
    }));
    return { buffered: [], streamed, home, order };
  }
  const buffered = documents.map((doc): [string, Uint8Array] => [
    doc.key,
    renderLayout(doc.layout, lines.map(doc.bytes), renderBuffers.take),
  ]);
  return { buffered, streamed: [], home, order };
}

/**
 * Which items each index document is made of: where their lengths are in an outline or order (three a name),
 * where a full rendering spills them, and a changed plugin's item a merge puts in.
 */
const INDEX_ITEMS = [
  { key: INDEX_JSON_KEY, items: 'entries', offset: ORDER_ENTRY, item: (c: ChangedItems) => c.entry },
  { key: INDEX_YAML_KEY, items: 'entries', offset: ORDER_ENTRY, item: (c: ChangedItems) => c.entry },
  { key: SEARCH_KEY, items: 'search', offset: ORDER_SEARCH, item: (c: ChangedItems) => c.search },
  {
    key: FALCOCTL_INDEX_KEY,
    items: 'falcoctl',
    offset: ORDER_FALCOCTL,
    item: (c: ChangedItems) => c.falcoctl,
  },
] as const;

/** Each index document's size, in INDEX_ITEMS' order, from its items' lengths (three a name, `count` names). */
function documentSizes(
  layouts: ReturnType<typeof indexLayouts>,
  lengths: Uint32Array,
  count: number,
): number[] {
  return INDEX_ITEMS.map(({ key, offset }) => {
    let items = 0;
    for (let i = 0; i < count; i++) items += lengths[i * 3 + offset] as number;
    return layoutSize(layouts[key], count, items);
  });
}

/**
 * The index documents of a catalog whose bins were not all read (a publish reads only the bins it changes):
 * outlined first, bin by bin (names, item lengths, api versions); under the streaming threshold, every bin
 * is then read and the documents rendered into buffers as above. Over it, the lines are never all held: the
 * bins are by the hash of the name and the documents in name order, so every plugin's items are spilled to
 * the intake store in that order, a window of names at a time (catalog.ts `sortedLines`), and each rendering
 * streams the spill back (`LayoutCutter`), one object read at a time whatever the store.
 */
async function indexDocumentsOf(
  ctx: PipelineContext,
  catalog: Catalog,
  changed: ReadonlySet<string> | undefined,
  merge = true,
): Promise<IndexDocuments> {
  if (catalog.unread.size === 0) return renderIndexDocuments(ctx, catalog, sortedNames(catalog));
  // A warm process holding every bin joins their lines into its kept buffers: reading the published
  // documents into fresh memory would cost it more than that copy.
  if (binsKept(ctx.intake, catalog)) {
    await readBins(ctx.intake, catalog, catalog.unread);
    return renderIndexDocuments(ctx, catalog, sortedNames(catalog));
  }
  const merged = merge && changed ? await mergedIndexDocuments(ctx, catalog, changed) : undefined;
  if (merged) return merged;
  const outline = await outlineCatalog(ctx.intake, catalog);
  const order = { names: outline.names, lengths: outline.lengths, apiVersions: outline.apiVersionFields };
  const layouts = indexLayouts(ctx, outline.apiVersions);
  const count = outline.names.length;
  const sizes = documentSizes(layouts, outline.lengths, count);
  if (sizes.reduce((sum, size) => sum + size, 0) <= streamThresholdOf(ctx)) {
    await readBins(ctx.intake, catalog, catalog.unread);
    return { ...renderIndexDocuments(ctx, catalog, outline.names, layouts), order };
  }
  forgetBins(ctx.intake);
  const rows = await spillLines(ctx, catalog, outline);
  const streamed = INDEX_ITEMS.map(({ key, items, offset }, i) => ({
    key,
    size: sizes[i] as number,
    chunks: () =>
      spilledChunks(
        ctx,
        catalogSpillKey(items),
        new LayoutCutter(layouts[key], outline.lengths, count, 3, offset),
      ),
  }));
  const done = async () => {
    for (const items of ['entries', 'search', 'falcoctl'] as const)
      await ctx.intake.delete(catalogSpillKey(items));
  };
  return { buffered: [], streamed, home: { rows, total: count }, order, done };
}

/** A merge is worth it for up to this many changed plugins, or an eighth of the registry if that is more. */
const MERGE_MIN_CHANGED = 64;

/**
 * The index documents as a merge of the changed plugins (`changed`, and those a deferred publish left
 * unrendered) into the published ones (document-order.ts): every other plugin's items are the old
 * documents' bytes, taken as they are, so no bin but the changed plugins' is read and nothing is sorted or
 * copied but what changed. Undefined when there is no order to merge into, or more changed than a merge is
 * worth, or a published document under the streaming threshold is not the recorded one: then the caller
 * renders them in full. Over the threshold, each old document is streamed and checked as it is read (a
 * stale one fails with IndexDocumentStale).
 */
async function mergedIndexDocuments(
  ctx: PipelineContext,
  catalog: Catalog,
  changed: ReadonlySet<string>,
): Promise<IndexDocuments | undefined> {
  const old = await readOrder(ctx.intake, catalog);
  if (!old || INDEX_ITEMS.some(({ key }) => !old.documents.has(key))) return undefined;
  const names = new Set([...catalog.unrendered, ...changed]);
  if (names.size > Math.max(MERGE_MIN_CHANGED, old.names.length / 8)) return undefined;
  await readBins(ctx.intake, catalog, [...names].filter((name) => !catalog.plugins.has(name)).map(binOf));
  const items = new Map<string, ChangedItems | undefined>();
  for (const name of names) {
    const line = catalog.plugins.get(name);
    items.set(
      name,
      line && {
        entry: entryBytes(line),
        search: searchBytes(line),
        falcoctl: falcoctlItem(line),
        apiVersions: apiVersionsField(line),
      },
    );
  }
  const plan = planMerge(old, items);
  const { order } = plan;
  const count = order.names.length;
  const layouts = indexLayouts(ctx, apiVersionsOfFields(order.apiVersions));
  const sizes = documentSizes(layouts, order.lengths, count);
  const streaming = sizes.reduce((sum, size) => sum + size, 0) > streamThresholdOf(ctx);
  // Under the threshold, each old document is read whole and checked before a byte of it is used: by the
  // store's validator when it still is the one recorded, else by hashing it.
  const held = new Map<string, Uint8Array>();
  if (!streaming) {
    // From the memory of a process that wrote them last and holds them still (held-documents.ts), else
    // read side by side: reading a document into fresh memory is mostly page faults, which the pool's
    // threads take in parallel.
    const objects = await Promise.all(
      INDEX_ITEMS.map(async ({ key }) => (await ctx.held?.read(ctx.site, key)) ?? ctx.site.get(key)),
    );
    for (const [i, { key }] of INDEX_ITEMS.entries()) {
      const object = objects[i];
      const expected = old.documents.get(key) as WrittenDocument;
      if (!object || object.body.byteLength !== expected.size) return undefined;
      if (!unchanged(object, expected) && digestOf(object.body).sha256 !== expected.sha256) return undefined;
      held.set(key, object.body);
    }
  }
  const chunksOf = (key: string, offset: number, item: (c: ChangedItems) => Uint8Array) => {
    const oldItems = {
      layout: layouts[key as keyof typeof layouts],
      size: (old.documents.get(key) as DocumentDigest).size,
      lengths: old.lengths,
      count: old.names.length,
      stride: 3,
      offset,
    };
    const layout = layouts[key as keyof typeof layouts];
    const body = held.get(key);
    if (body) return () => splicedChunks(layout, plan.steps, item, new OldDocument([body], key), oldItems);
    return () =>
      streamedSplice(ctx, key, old.documents.get(key) as WrittenDocument, (oldDocument) =>
        splicedChunks(layout, plan.steps, item, oldDocument, oldItems),
      );
  };
  const streamed = INDEX_ITEMS.map(({ key, offset, item }, i) => ({
    key,
    size: sizes[i] as number,
    chunks: chunksOf(key, offset, item),
  }));
  const search = streamed[2] as StreamedDocument;
  const rows = await firstRows(search.chunks(), layouts[SEARCH_KEY], order, HOME_PAGE_SIZE);
  return { buffered: [], streamed, home: { rows, total: count }, order, merged: true, held: !streaming };
}

/** Whether the store says `object` still is the document as written (same ETag, same size). */
function unchanged(object: Pick<ObjectInfo, 'etag' | 'size'>, written: WrittenDocument): boolean {
  return written.etag !== undefined && object.etag === written.etag && object.size === written.size;
}

/**
 * A published document streamed from the site store into a merge, checked as it is read (hashed, unless the
 * store's validator is still the one recorded).
 */
async function* streamedSplice(
  ctx: PipelineContext,
  key: string,
  expected: WrittenDocument,
  splice: (old: OldDocument) => AsyncIterable<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  const object = await ctx.site.getStream(key);
  if (!object) throw new IndexDocumentStale(key, 'is missing');
  try {
    yield* splice(new OldDocument(object.body, key, unchanged(object, expected) ? undefined : expected));
  } finally {
    object.cancel();
  }
}

/** The first `limit` rows of a search.json rendered as `chunks` in `order` (read no further than they are). */
async function firstRows(
  chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
  layout: DocumentLayout,
  order: RenderedOrder,
  limit: number,
): Promise<SearchEntry[]> {
  const count = Math.min(limit, order.names.length);
  const separator = utf8Length(layout.separator);
  let needed = utf8Length(layout.prefix);
  for (let i = 0; i < count; i++) needed += (order.lengths[i * 3 + ORDER_SEARCH] as number) + separator;
  const head = new Uint8Array(needed);
  let at = 0;
  for await (const chunk of chunks) {
    const taken = Math.min(chunk.byteLength, needed - at);
    head.set(chunk.subarray(0, taken), at);
    at += taken;
    if (at === needed) break;
  }
  const rows: SearchEntry[] = [];
  let position = utf8Length(layout.prefix);
  for (let i = 0; i < count; i++) {
    const length = order.lengths[i * 3 + ORDER_SEARCH] as number;
    try {
      rows.push(JSON.parse(decoder.decode(head.subarray(position, position + length))) as SearchEntry);
    } catch {
      // Its items are not where the order says: not the rendering the order records.
      throw new IndexDocumentStale(SEARCH_KEY, 'does not hold its rows where its order says');
    }
    position += length + separator;
  }
  return rows;
}

/**
 * Spills every plugin's entry, search row and falcoctl item, in the outline's order, to three objects of the
 * intake store; returns the home page's first rows (search.json's first).
 */
async function spillLines(
  ctx: PipelineContext,
  catalog: Catalog,
  outline: CatalogOutline,
): Promise<SearchEntry[]> {
  const writers = (['entries', 'search', 'falcoctl'] as const).map(
    (items) => new SpillWriter(ctx.intake, catalogSpillKey(items)),
  );
  const [entries, search, falcoctl] = writers as [SpillWriter, SpillWriter, SpillWriter];
  const rows: SearchEntry[] = [];
  try {
    for await (const window of sortedLines(ctx.intake, catalog, outline))
      for (const item of window) {
        if (rows.length < HOME_PAGE_SIZE) rows.push(JSON.parse(decoder.decode(item.search)) as SearchEntry);
        await entries.write(item.entry);
        await search.write(item.search);
        await falcoctl.write(item.falcoctl);
      }
    await Promise.all(writers.map((writer) => writer.end()));
  } catch (error) {
    await Promise.all(writers.map((writer) => writer.fail(error as Error)));
    throw error;
  }
  return rows;
}

/** A spilled object, cut into its items and laid out as its document (`cutter`), as chunks. */
async function* spilledChunks(
  ctx: PipelineContext,
  key: string,
  cutter: LayoutCutter,
): AsyncGenerator<Uint8Array> {
  const object = await ctx.intake.getStream(key);
  if (!object) throw new Error(`${key} is missing: the flush's spill was deleted while it ran`);
  try {
    for await (const piece of object.body) yield* cutter.feed(piece);
    yield* cutter.finish();
  } finally {
    object.cancel();
  }
}

/** The home page's first page of plugins: search.json's first rows (`names` is sorted, as search.json is). */
function homeListing(catalog: Catalog, names: readonly string[]): HomeListing {
  const rows = names
    .slice(0, HOME_PAGE_SIZE)
    .map((n) => JSON.parse((catalog.plugins.get(n) as CatalogLine).search) as SearchEntry);
  return { rows, total: names.length };
}

/**
 * Static files that change only with the registry's identity or key, and the home page, which shows the
 * first plugins and so changes with the index documents (`home`, when they were rendered; else the home
 * page stays as published): rewritten only when they differ from what `registryDigests` records (or are
 * missing); their digests go into it.
 */
async function writeStatics(
  ctx: PipelineContext,
  registryDigests: Map<string, DocumentDigest>,
  home: HomeListing | undefined,
): Promise<void> {
  const statics: [string, Uint8Array][] = [
    [REGISTRY_PUBLIC_KEY_KEY, encoder.encode(ctx.signer.publicKey)],
    [FAVICON_KEY, encoder.encode(FAVICON_SVG)],
    [STYLE_KEY, encoder.encode(PAGE_STYLE)],
  ];
  if (home || !registryDigests.has(HOME_PAGE_KEY))
    statics.push([HOME_PAGE_KEY, encoder.encode(renderIndexPage(identityOf(ctx.config), home))]);
  // Side by side: each is looked for (and written when it differs or is gone) on its own, and one after
  // another the looks were four round trips to the store on every commit.
  await allWritten(
    statics.map(async ([key, body]) => {
      const digest = digestOf(body);
      if (registryDigests.get(key)?.sha256 !== digest.sha256 || !(await ctx.site.head(key))) {
        await putFile(ctx.site, key, body, CACHE_MUTABLE);
      }
      registryDigests.set(key, digest);
    }),
  );
}

/**
 * Refuses to sign a snapshot with a key other than the one the published snapshot names, unless the caller
 * is a key rotation's rebuild (`keyRotations`): a snapshot signed by a new key with the old `key_rotations`
 * is one no client can follow (an interrupted local rotate-key leaves the new key installed; only the
 * rotation may finish the move). `previous` is the published snapshot.
 * @throws KeyError SIGNING_KEY_NOT_CURRENT, before anything is signed.
 */
export function assertSigningKeyCurrent(
  ctx: PipelineContext,
  previous: SnapshotDocument | undefined,
  keyRotations?: number,
): void {
  if (keyRotations !== undefined || !previous || previous.key_fingerprint === ctx.signer.fingerprint) return;
  throw new KeyError(
    'SIGNING_KEY_NOT_CURRENT',
    `the registry signs with key ${ctx.signer.fingerprint} but the published snapshot names ${previous.key_fingerprint}: a key rotation is under way (finish it with plugindex rotate-key), or the wrong key is configured`,
  );
}

/**
 * `assertSigningKeyCurrent` against the published snapshot, for a caller about to sign anything, once that
 * snapshot is checked against what `catalog` records this registry committed (read side by side).
 * @throws TrustError PUBLISHED_DOCUMENT_ALTERED (published.ts), KeyError SIGNING_KEY_NOT_CURRENT.
 */
export async function checkSigningKeyCurrent(ctx: PipelineContext, catalog: Promise<Catalog>): Promise<void> {
  const [read, opened] = await allSettledValues([ctx.site.get(SNAPSHOT_KEY), catalog]);
  assertSigningKeyCurrent(ctx, checkedSnapshot(opened, read?.body));
}

/**
 * What `writeSnapshot` does before it writes: records the snapshot it is about to publish, signed for
 * `generation` (catalog.ts `recordSnapshot`, published.ts), so a run that dies between the snapshot and the
 * catalog leaves one the next run knows for its own.
 */
export function recordingSnapshot(
  ctx: PipelineContext,
  catalog: Catalog,
  generation: number,
  over: Uint8Array | undefined,
): (digest: DocumentDigest) => Promise<void> {
  const replaced = over === undefined ? undefined : sha256Hex(over);
  return (digest) => recordSnapshot(ctx.intake, catalog, generation, digest.sha256, replaced);
}

/**
 * Which of what runs recorded they were about to publish (`Catalog.writing`) the catalog records once saved,
 * after a commit (the snapshot it wrote in `catalog.snapshot`): what `saveCatalog` may let go.
 */
export function settledBy(catalog: Catalog): (key: string) => boolean {
  return (key) => {
    if (key === SNAPSHOT_KEY) return true;
    // A plugin's: once the line this run holds of it records one of them (this run wrote it, or caught up).
    const recorded = isPluginDocumentKey(key)
      ? catalog.plugins.get(key.split('/')[1] as string)?.document
      : catalog.registryDigests.get(key);
    return recorded !== undefined && catalog.writing.get(key)?.has(recorded.sha256) === true;
  };
}

/**
 * Commits a new generation: rewrites the snapshot bins of the changed plugins (all bins when `changed` is
 * undefined), the index documents unless `deferIndexes` (then the catalog marks them pending, and the
 * snapshot keeps listing the ones already published, which still match their digests), `documents` (other
 * signed documents the caller changed, such as `keys/revoked.json`), the static files when they differ,
 * then the snapshot (the commit point), then the catalog (the same bins). Returns the new generation.
 * `keyRotations` is for a key rotation's snapshot (else the published count stands); `leaveStuck`, a refresh's
 * or a flush's, for one that counts no stuck publish (`writeSnapshot`).
 */
export async function commitGeneration(
  ctx: PipelineContext,
  catalog: Catalog,
  changed?: ReadonlySet<string>,
  deferIndexes = false,
  documents: readonly (readonly [string, Uint8Array])[] = [],
  snapshot: { readonly keyRotations?: number; readonly leaveStuck?: LeaveStuck } = {},
): Promise<number> {
  // The log's head, which the snapshot vouches for, read side by side with the snapshot: the caller wrote the
  // log before (a batch's step 2), and it is this writer's alone. Read just before the snapshot was signed,
  // it was a round trip of its own on every commit's path, after the statics, before the snapshot's record.
  // With it, the log's segment the snapshot's check of the head reads (log-writer.ts `loggedPast`), begun now:
  // read when the snapshot is signed, it was a round trip more on every commit's path.
  const reads = new SegmentReads(ctx.site);
  const log = readLogHead(ctx.intake).then((recorded) => {
    reads.prefetch(recorded);
    return recorded;
  });
  log.catch(() => undefined); // met by writeSnapshot, unless a failure comes first
  // Its ETag too: the new snapshot is made from this one, and replaces only this one (writeSnapshot). Its
  // digests are signed again for what this call does not rewrite: only the snapshot the catalog records.
  const read = await ctx.site.get(SNAPSHOT_KEY);
  const previous = checkedSnapshot(catalog, read?.body);
  assertSigningKeyCurrent(ctx, previous, snapshot.keyRotations);
  // Plugin documents are bound by digest through 256 bins, so the snapshot stays small at any size.
  const bins = changed ? new Set([...changed].map(binOf)) : undefined;
  const registryDigests = catalog.registryDigests;
  // A registry never rendered has no index documents to keep listing: render them now.
  const indexes = !deferIndexes || INDEX_DOCUMENTS.some((key) => !registryDigests.has(key));
  // Every bin rewritten (a rebuild, a first publish): every line, read now if the catalog was opened.
  if (!bins) await readBins(ctx.intake, catalog, catalog.unread);
  let rendered: IndexDocuments | undefined;
  try {
    rendered = indexes ? await indexDocumentsOf(ctx, catalog, changed) : undefined;
    await putStreamedDocuments(ctx, rendered, registryDigests);
  } catch (error) {
    // A merge into a published document that is not the one recorded (a run died after writing it, or it
    // was changed by hand), found as the home page's first rows are read from it or as it is written:
    // nothing of it was committed; render every document in full instead. Only a merge reads an old one.
    // A store that read the stale document as a body gives it as the cause of its own error.
    const stale = error instanceof IndexDocumentStale || (error as Error).cause instanceof IndexDocumentStale;
    if (!stale || (rendered && !rendered.merged)) throw error;
    rendered = await indexDocumentsOf(ctx, catalog, changed, false);
    await putStreamedDocuments(ctx, rendered, registryDigests);
  }
  const signed = [...(rendered?.buffered ?? [])];
  const large = signed.map(([, body]) => body);
  // The snapshot bins it rewrites list every plugin of theirs: their digests, without reading their lines.
  const binDocuments = bins ? await documentsIn(ctx.intake, catalog, bins) : catalog.plugins;
  const binNames = bins ? [...binDocuments.keys()].sort() : sortedNames(catalog);
  const binsToWrite = bins ?? new Set(binNames.map(binOf));
  for (const [bin, body] of renderBins(binDocuments, binsToWrite, binNames))
    signed.push([binKey(bin), encoder.encode(body)]);
  for (const [key, body] of documents) signed.push([key, body]);
  // Side by side: one document is written while the next is hashed and signed.
  await forEachLimited(signed, WRITE_CONCURRENCY, async ([key, body]) => {
    // Variants are compressed on the thread pool while the document is signed, and written before it.
    // The compressed variants record the document's digest, which its signing gives: they wait for it once
    // compressed (a failed signing fails them, unwritten).
    let signedAs: (sha256: string) => void = () => {};
    let unsigned: (error: unknown) => void = () => {};
    const digest = new Promise<string>((resolve, reject) => {
      signedAs = resolve;
      unsigned = reject;
    });
    digest.catch(() => {}); // a variant under the threshold records none, and never waits for it
    const variants = ENCODED_DOCUMENTS.has(key) ? putEncodedVariants(ctx, key, body, digest) : undefined;
    variants?.catch(() => {}); // awaited in putSigned; unobserved only if signing fails first
    const { sha256, size } = await putSigned(ctx, key, body, variants, signedAs).catch((error: unknown) => {
      unsigned(error);
      throw error;
    });
    registryDigests.set(key, { sha256, size });
  });
  // Written, so no longer read: the next publish renders into the same memory. (After a failure they are
  // not given back: a store may still be reading one.)
  renderBuffers.give(large);
  catalog.indexesPending = !indexes;
  // For what this call did not rewrite, the published snapshot (the commit point) is the truth: the
  // catalog's copy of a digest is older when a run died after its snapshot but before the catalog was saved.
  const written = new Set([...signed.map(([key]) => key), ...(rendered?.streamed ?? []).map((d) => d.key)]);
  for (const [key, digest] of Object.entries(previous?.documents ?? {}))
    if (!written.has(key)) registryDigests.set(key, digest);
  await writeStatics(ctx, registryDigests, rendered?.home);
  const listed: Record<string, DocumentDigest> = {};
  for (const [key, digest] of [...registryDigests].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (!PAGE_FILES.has(key)) listed[key] = digest;
  }
  // Past every snapshot a run recorded too: an upgrade after refreshes that waited (`upgradeWaiting`), one
  // of their snapshots put back, went below one clients had seen.
  const generation = Math.max(recordedGeneration(catalog), previous?.generation ?? 0) + 1;
  const committed = await writeSnapshot(ctx, generation, listed, {
    ...snapshot,
    ...(read ? { ifMatch: read.etag } : {}),
    published: previous,
    before: recordingSnapshot(ctx, catalog, generation, read?.body),
    log,
    reads,
  });
  catalog.generation = generation;
  catalog.snapshot = committed;
  // The order the documents are now in, for the next rendering to merge into; else what it must re-render.
  if (rendered) {
    // With the store's validator of each, so the next merge need not hash them to trust them. Asked side by
    // side: one after another, each was a round trip to the store (20 ms or more on S3) on every commit.
    const documents = new Map<string, WrittenDocument>();
    const heads = await allSettledValues(INDEX_DOCUMENTS.map((key) => ctx.site.head(key)));
    for (const [i, key] of INDEX_DOCUMENTS.entries()) {
      const etag = heads[i]?.etag;
      const digest = registryDigests.get(key) as DocumentDigest;
      documents.set(key, { ...digest, ...(etag ? { etag } : {}) });
      ctx.held?.noteEtag(key, digest.sha256, etag);
    }
    await saveOrder(ctx.intake, catalog, { ...rendered.order, documents });
  } else markUnrendered(catalog, changed);
  // A deferred publish journals its plugins' lines; the flush folds the journal into the bins (catalog.ts).
  await saveCatalog(ctx.intake, catalog, changed, indexes ? 'fold' : 'journal', settledBy(catalog));
  return generation;
}

/** Writes the streamed index documents, one at a time (each holds a few chunks in flight, whatever its size). */
async function putStreamedDocuments(
  ctx: PipelineContext,
  rendered: IndexDocuments | undefined,
  registryDigests: Map<string, DocumentDigest>,
): Promise<void> {
  // Held for the next merge only when the documents together are within the threshold, as a merge reads them.
  const total = [
    ...(rendered?.streamed ?? []).map((document) => document.size),
    ...(rendered?.buffered ?? []).map(([, body]) => body.byteLength),
  ].reduce((sum, size) => sum + size, 0);
  const hold = total <= streamThresholdOf(ctx);
  try {
    // Held documents side by side: their compressions then share the thread pool, and nothing is rendered.
    await forEachLimited(
      rendered?.streamed ?? [],
      rendered?.held ? WRITE_CONCURRENCY : 1,
      async (document) => {
        registryDigests.set(document.key, await putStreamedSigned(ctx, document, hold));
      },
    );
  } catch (error) {
    // The spill goes either way; the rendering's failure is the one to report.
    await rendered?.done?.().catch(() => {});
    throw error;
  }
  await rendered?.done?.();
}

/**
 * The head a refresh or a flush may leave a stuck entry past (`leaveStuck`): the one the published snapshot
 * counts (`claimed`), or the signed snapshot's when that counts more. `snapshot.json` is held to the catalog's
 * record alone, and taken on its word where the catalog keeps none (the intake store's `state/` lost, or a
 * catalog saved before it kept one): deleted, or put back claiming a shorter log, it made the refresh sign a
 * shorter log than clients had seen, every one of them then refusing the registry as rolled back. Read only
 * when the log holds entries past `claimed`: one read, and a signature checked.
 * @throws TrustError SNAPSHOT_MALFORMED, SNAPSHOT_BAD_SIGNATURE (`signedLogHead`)
 */
async function countedHead(ctx: PipelineContext, claimed: LogHead): Promise<LogHead> {
  const signed = await signedLogHead(ctx);
  return signed && signed.length > claimed.length ? signed : claimed;
}

/**
 * Signs and writes `snapshot.json` for `generation`, listing `documents`, expiring after the configured TTL,
 * vouching for the log as `state/log.json` records it, and counting the key rotations (`keyRotations`, else
 * as many as the published snapshot counts). With `ifMatch`, the ETag of the published snapshot the caller
 * made `documents` from, only over that one: a snapshot another writer committed since (the deployment's
 * queue lets one batch write at a time; a command run against the buckets beside it does not take the
 * queue) is never replaced by one that lists the documents as they were before it, which would unbind what
 * it published. That fails with StoreError STORE_CONFLICT, the snapshot there left as it is, and the
 * batch is retried whole, from the new snapshot.
 * `leaveStuck` (a refresh's, a flush's): when a publish past the head the published snapshot counts is shown by
 * no document `documents` binds (stuck-entries.ts), that head is counted instead of the log's, and the
 * operator told: these renew a snapshot that must not expire, and cannot refuse as a rebuild does.
 */
export async function writeSnapshot(
  ctx: PipelineContext,
  generation: number,
  documents: Record<string, DocumentDigest>,
  options: {
    readonly keyRotations?: number;
    readonly ifMatch?: string;
    /** The published snapshot as the caller read (and checked) it, undefined for none: not read again. */
    readonly published?: SnapshotDocument | undefined;
    /** Run once the snapshot is signed, before it is written (`recordingSnapshot`). */
    readonly before?: (digest: DocumentDigest) => Promise<void>;
    /** The log's head as the caller read it once the log was written: not read again. */
    readonly log?: Promise<LogHead>;
    /** The log's segments as the caller began reading them (`SegmentReads.prefetch`). */
    readonly reads?: SegmentReads;
    /** Count no stuck publish (stuck-entries.ts `headLeavingStuck`): a refresh's, a flush's. */
    readonly leaveStuck?: LeaveStuck;
  } = {},
): Promise<DocumentDigest> {
  // Both read side by side (two round trips to the stores one after the other, before).
  const [published, recorded] = await allSettledValues([
    'published' in options
      ? Promise.resolve(options.published)
      : readJson<SnapshotDocument>(ctx.site, SNAPSHOT_KEY),
    options.log ?? readLogHead(ctx.intake),
  ]);
  assertSigningKeyCurrent(ctx, published, options.keyRotations);
  // Never a shorter log than the published snapshot signs (a record lost: a rebuild, a refresh after it).
  const logged = await currentLogHead(
    ctx,
    recorded,
    published,
    options.reads ? { reads: options.reads } : {},
  );
  // Only when the log holds entries the published snapshot does not count (a batch failed or died past it).
  const claimed = published?.log ?? EMPTY_LOG;
  const log =
    options.leaveStuck && logged.length > claimed.length
      ? await headLeavingStuck(ctx, await countedHead(ctx, claimed), logged, documents, options.leaveStuck)
      : logged;
  const keyRotations = options.keyRotations ?? published?.key_rotations;
  const snapshot = renderSnapshot({
    log,
    ...(keyRotations ? { keyRotations } : {}),
    registry: ctx.config.url,
    generation,
    created: ctx.clock.now(),
    ttlSeconds: ctx.config.snapshotTtlSeconds,
    keyFingerprint: ctx.signer.fingerprint,
    documents,
  });
  // The pair first (what gpg users and `verify --url` read), side by side, then the one object clients
  // read. The snapshot is written only over the one read (`ifMatch`), its signature as always: a snapshot
  // refused may leave this run's signature beside the one there until the retry commits (a conflict means
  // a writer outside the queue). The signature written after the snapshot instead cost every publish one
  // round trip more (492 ms against 473 ms over stores answering after 20 ms, bench/store-latency.ts).
  const { signature, sha256 } = await ctx.signer.signWithDigest(snapshot);
  await options.before?.({ sha256, size: snapshot.byteLength });
  await allWritten([
    ctx.site.put(SNAPSHOT_KEY, snapshot, {
      contentType: contentTypeFor(SNAPSHOT_KEY),
      cacheControl: CACHE_MUTABLE,
      sha256,
      ...(options.ifMatch !== undefined ? { ifMatch: options.ifMatch } : {}),
    }),
    putFile(ctx.site, signatureKey(SNAPSHOT_KEY), encoder.encode(signature), CACHE_MUTABLE),
  ]);
  await putFile(ctx.site, SIGNED_SNAPSHOT_KEY, renderSignedSnapshot(snapshot, signature), CACHE_MUTABLE);
  return { sha256, size: snapshot.byteLength };
}
