/**
 * The catalog: the registry's internal state, from which the registry-wide documents are rendered without
 * reading any plugin document. Each plugin has one line holding its index entry, search row and falcoctl
 * index item already serialized, so a publish parses only what changed, and `index.json`, `index.yaml`,
 * `search.json` and `falcoctl/index.yaml` are rendered by concatenating lines (render/index-documents.ts): at 10,000 plugins the cost of a publish is
 * writing the global files, not re-serializing them.
 *
 * Storage (in the intake store, never published): `state/catalog/meta.tsv` holds the generation, the
 * digests of global documents and of the snapshot, and what a run recorded it was about to publish
 * (pipeline/published.ts checks what a batch reads back of the published store against both);
 * `state/catalog/bins/<bin>.tsv` holds the lines of the plugins whose names fall in that bin (the same 256
 * bins as the snapshot), each with its document's digest. A publish rewrites the meta file and one bin per
 * changed plugin.
 *
 * No process holds every line for long (at 100,000 plugins of 10 versions they are 330 MB): a run opens the
 * catalog with the meta file and the journal only (openCatalog), reads the lines of a bin when it needs
 * them all (readBins), and takes the document digests of a bin's plugins from an index kept per store for
 * every bin (documentsIn): all a deferred publish needs. Bins read are kept per store up to BIN_CACHE_BYTES,
 * by the digest the meta file names, so a warm process (the local server, a warm Lambda) of a registry
 * under the streaming threshold reads only what another writer changed. What renders every line goes
 * through them in name order a window at a time (outlineCatalog, sortedLines).
 *
 * The journal: a publish that defers the index documents (the local server, the publish function) does not
 * rewrite the bins of the plugins it changed, whose size grows with the registry (about 1.4 MB each at
 * 100,000 plugins of 10 versions), but writes their lines, and only theirs, to one journal object named by
 * its digest (`state/catalog/journal/<sha256>.tsv`, the bin format), and the meta file lists the journal in
 * order. An open applies it over the bins. The flush, whose cost grows with the registry anyway, folds the
 * journal into the bins it touches; so does a publish that would make it longer than JOURNAL_MAX_ENTRIES or
 * JOURNAL_MAX_BYTES.
 *
 * A bin is read as bytes and its lines stay views into them (StoredLine): a process that starts cold (every
 * `plugindex publish`) renders the index documents by copying those bytes, without decoding 10,000 lines
 * into strings and encoding them back, and writes a bin back from the same bytes.
 *
 * Line format: fields separated by tabs (JSON never contains a raw tab or newline):
 *   generation <n>
 *   bin <bin> <sha256>                   (meta: each bin's digest)
 *   journal <sha256> <size>              (meta: the journal's objects, oldest first)
 *   pending indexes                      (only while the index documents lag: see Catalog.indexesPending)
 *   order <sha256> <size>                (meta: the order file the index documents were last rendered in)
 *   unrendered <name>                    (meta: a plugin changed since: see Catalog.unrendered)
 *   global <key> <sha256> <size>
 *   snapshot <sha256> <size>            (meta: snapshot.json as last committed)
 *   writing <key> <sha256>               (meta: a document a run recorded it was about to publish: see
 *                                         Catalog.writing; a snapshot's are `<generation> <sha256>` lines
 *                                         of `state/catalog/snapshot-writing.tsv`: recordSnapshot)
 *   rebuilding                           (meta: a rebuild under way, or one that died: `markRebuilding`)
 *   names owners                         (meta: the look-alike index's owners are kept: see
 *                                         Catalog.namesOwnersKept)
 *   plugin <name> <doc sha256> <doc size> <api versions, comma-separated> <entry JSON> <search JSON>
 *          <n>, then on the next lines the plugin's falcoctl index item, n bytes of block YAML (it is
 *          copied into falcoctl/index.yaml as it is, so stored rendered; its own line breaks end it)
 */
import { Buffer } from 'node:buffer';
import { sha256Hex } from './digest.ts';
import { apiVersionsOfFields, type DocumentOrder, parseOrder, serializeOrder } from './document-order.ts';
import { PlugindexError } from './errors.ts';
import {
  binOf,
  CATALOG_JOURNAL_PREFIX,
  CATALOG_META_KEY,
  CATALOG_ORDER_KEY,
  CATALOG_SNAPSHOT_RECORD_KEY,
  catalogBinKey,
  catalogJournalKey,
  SNAPSHOT_KEY,
} from './layout.ts';
import { forEachLimited } from './limited.ts';
import type { DocumentDigest, PluginDocument } from './model.ts';
import { buildFalcoctlEntry, buildIndexEntry, buildSearchEntry } from './render/documents.ts';
import { toYaml } from './render/yaml.ts';
import { CACHE_PRIVATE, joinBytes, type Store } from './store.ts';
import { stringifyJson } from './text.ts';

export interface CatalogLine {
  readonly document: DocumentDigest;
  readonly apiVersions: readonly string[];
  /** The plugin's entry in index.json, serialized. */
  readonly entry: string;
  /** The plugin's row in search.json, serialized. */
  readonly search: string;
  /** The plugin's item in falcoctl/index.yaml, rendered: a block-style YAML list item, ending in a line break. */
  readonly falcoctl: string;
}

export interface Catalog {
  generation: number;
  readonly plugins: Map<string, CatalogLine>;
  /**
   * Key -> digest of every registry-wide document the snapshot lists beside the plugin documents: the index
   * documents, the snapshot bins, the home page, the favicon, the registry key (stored as `global` lines).
   */
  readonly registryDigests: Map<string, DocumentDigest>;
  /** Bin -> sha256 of its catalog file, as last written: tells a warm process which bins to re-read. */
  readonly bins: Map<string, string>;
  /** The journal's objects, by digest, oldest first: their lines are newer than the bins'. */
  journal: DocumentDigest[];
  /** The names the journal holds lines of: what folding it rewrites the bins of. */
  readonly journaled: Set<string>;
  /**
   * Bins the meta file names whose lines `plugins` does not hold yet: a catalog opened for a publish
   * (openCatalog) reads only the bins it needs (readBins). Empty for a catalog read whole or made anew.
   */
  readonly unread: Set<string>;
  /**
   * The index documents (index.json, index.yaml, search.json, falcoctl/index.yaml) lag the plugin documents: a publish deferred
   * them (`PipelineContext.deferIndexes`) and no flush has rendered them since.
   */
  indexesPending: boolean;
  /**
   * The meta file is of another catalog format (one written before an upgrade), or a rebuild that died left
   * it (`markRebuilding`): what it holds was not read, and the registry must be rebuilt from its plugin
   * documents before a publish renders anything from it.
   */
  outdated: boolean;
  /**
   * The meta file is of another catalog format (`outdated` for that reason: a release before this one wrote
   * it), so the run that meets it rebuilds the catalog from the published plugin documents: the upgrade,
   * which holds each to what the registry signed (pipeline/published.ts `SignedDocuments`). Of that file only
   * its generation, its `snapshot` and its `writing` lines are read (and the snapshots runs recorded), which
   * every format since 6 writes alike.
   */
  upgrading: boolean;
  /**
   * The order file (document-order.ts) of the index documents as last rendered, by digest: what the next
   * rendering merges `unrendered` into. Undefined: the next rendering is a full one.
   */
  order: DocumentDigest | undefined;
  /** The plugins whose lines changed since the index documents were rendered in `order`. */
  readonly unrendered: Set<string>;
  /**
   * `snapshot.json` as this registry last committed it; undefined for a catalog saved before it was
   * recorded (the published one is then trusted on first use: pipeline/published.ts).
   */
  snapshot: DocumentDigest | undefined;
  /**
   * Key -> the sha256 of each document a run recorded it was about to publish there (a plugin document,
   * `keys/revoked.json`, `snapshot.json`), saved before the first of them is written and let go once the
   * catalog records what was written (`settleWrites`): a published document that is neither what the catalog
   * records nor one of these was written by someone else (pipeline/published.ts), where one of these is a
   * run that died between the document and the catalog.
   */
  readonly writing: Map<string, Set<string>>;
  /**
   * Every owner the look-alike index files beside a name (look-alike.ts, format 2) is one its document
   * holds, as this build keeps them (each owner change filed again: pipeline/evaluate.ts `fileOwners`).
   * A build before format 2 changes owners without filing them again, and writes a meta file without this
   * line (it keeps no line it does not know, from its first `saveWriting` on, before any document): once one
   * ran, the owners filed may be a former owner's, and none is trusted until the index is written whole
   * again (built from the plugin folders, or by a rebuild), which sets it.
   */
  namesOwnersKept: boolean;
}

// 4: lines gained the falcoctl entry; 5: it is stored rendered (YAML, length-prefixed), not as JSON; 6: the
// meta file lists a journal (the bins and the journal's objects are format 5). A catalog of another format
// reads as empty and outdated; the pipeline then rebuilds it from the plugin documents before it publishes.
// Version 6 reads a format-5 meta file (it has no journal); a version before it reads a 6 as outdated, so
// it never renders from bins that lack what the journal holds. 7: the search rows carry the plugin's owners
// (model.ts SearchEntry, for the search's look-alike flags); a catalog of 5 or 6 holds rows without them,
// which no publish would render again until their plugin changed, so it reads as outdated and the first
// run after the upgrade rebuilds every row, as for 4 and 5. 8: the plugin documents carry their look-alikes
// (model.ts PluginDocument `look_alikes`); a registry of 7 or before has pairs standing that no document
// names, so its first run after the upgrade rebuilds, and the rebuild sets the field (pipeline/index.ts
// `rebuildLookAlikes`).
const HEADER = 'plugindex-catalog 8';
const META_HEADER = 'plugindex-catalog 8';
const READABLE_META = new Set([HEADER, META_HEADER]);

/** How every catalog file is stored: private to the publisher. */
const CATALOG_PUT = { contentType: 'text/tab-separated-values', cacheControl: CACHE_PRIVATE } as const;

/** A journal longer than this is folded into the bins by the next publish (see the file's comment). */
export const JOURNAL_MAX_ENTRIES = 64;
const JOURNAL_MAX_BYTES = 8 * 1024 * 1024;

export function emptyCatalog(): Catalog {
  return {
    generation: 0,
    plugins: new Map(),
    registryDigests: new Map(),
    bins: new Map(),
    journal: [],
    journaled: new Set(),
    unread: new Set(),
    indexesPending: false,
    outdated: false,
    upgrading: false,
    order: undefined,
    unrendered: new Set(),
    snapshot: undefined,
    writing: new Map(),
    namesOwnersKept: false,
  };
}

/** A plugin's catalog line; `registryUrl` is this registry's, where a plugin without OCI artifacts is found. */
export function catalogLineOf(
  doc: PluginDocument,
  document: DocumentDigest,
  registryUrl: string,
): CatalogLine {
  return {
    document,
    apiVersions: [...new Set(doc.versions.map((v) => v.api_version))],
    entry: stringifyJson(buildIndexEntry(doc)),
    search: stringifyJson(buildSearchEntry(doc)),
    falcoctl: toYaml([buildFalcoctlEntry(doc, registryUrl)]),
  };
}

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();
const TAB = 0x09;
const NEWLINE = 0x0a;

/** A bin file's bytes, and where each of its lines' fields lie in them (13 numbers a line). */
interface StoredBin {
  /** The bin, or undefined for a journal object (its lines are of any bin). */
  readonly bin: string | undefined;
  readonly bytes: Uint8Array;
  /**
   * Per line: the record's start (`plugin\t...`), then the start and end of its sha256, size, api versions,
   * entry, search row and falcoctl item (whose end is the record's end). One array per bin, not per line:
   * a cold process reads 10,000 lines and keeps them.
   */
  readonly at: readonly number[];
}

const SHA256 = 1;
const SIZE = 3;
const API_VERSIONS = 5;
const ENTRY = 7;
const SEARCH = 9;
const FALCOCTL = 11;

/**
 * A line read from a bin: views into the bin's bytes, decoded only when asked for. What a publish renders
 * from every plugin (the entry, the search row, the falcoctl item) it copies as bytes (`entryBytes`, `searchBytes`,
 * `falcoctlItem`); what it reads of a few (a document digest, a search row) it decodes.
 */
class StoredLine implements CatalogLine {
  constructor(
    /** The plugin it was read for: what is stored of it (its bin, its record) is only that plugin's. */
    readonly name: string,
    private readonly stored: StoredBin,
    /** Where its fields start in `stored.at`. */
    private readonly base: number,
  ) {}

  /** The bin it was read from: known without hashing the name (a journal's line: by hashing it). */
  get bin(): string {
    return this.stored.bin ?? binOf(this.name);
  }

  #bytes(field: number): Uint8Array {
    const { at, bytes } = this.stored;
    return bytes.subarray(at[this.base + field], at[this.base + field + 1]);
  }

  #text(field: number): string {
    return utf8Decoder.decode(this.#bytes(field));
  }

  get document(): DocumentDigest {
    return { sha256: this.#text(SHA256), size: Number(this.#text(SIZE)) };
  }

  /** The api versions field as stored (comma-separated): one union of them takes each distinct one once. */
  get apiVersionsField(): string {
    return this.#text(API_VERSIONS);
  }

  get apiVersions(): readonly string[] {
    const field = this.apiVersionsField;
    return field ? field.split(',') : [];
  }

  get entry(): string {
    return this.#text(ENTRY);
  }

  get search(): string {
    return this.#text(SEARCH);
  }

  get falcoctl(): string {
    return this.#text(FALCOCTL);
  }

  get entryBytes(): Uint8Array {
    return this.#bytes(ENTRY);
  }

  /** A field's length in bytes, without a view of it. */
  lengthOf(field: typeof ENTRY | typeof SEARCH | typeof FALCOCTL): number {
    const { at } = this.stored;
    return (at[this.base + field + 1] as number) - (at[this.base + field] as number);
  }

  get searchBytes(): Uint8Array {
    return this.#bytes(SEARCH);
  }

  get falcoctlBytes(): Uint8Array {
    return this.#bytes(FALCOCTL);
  }

  /** The whole record, as it is stored. */
  get record(): Uint8Array {
    const { at, bytes } = this.stored;
    return bytes.subarray(at[this.base], at[this.base + FALCOCTL + 1]);
  }
}

/** A line read for `name` (not one set under another name), so its bin and record are that plugin's. */
function storedFor(name: string, line: CatalogLine | undefined): line is StoredLine {
  return line instanceof StoredLine && line.name === name;
}

/** The bin a line's plugin falls in: the one it was read from, else by hashing its name. */
function binOfLine(name: string, line: CatalogLine | undefined): string {
  return storedFor(name, line) ? line.bin : binOf(name);
}

/** Reads the meta file; one with an unknown header reads as empty and marks the catalog outdated. */
function parseMeta(text: string, into: Catalog): void {
  const lines = text.split('\n');
  const former = !READABLE_META.has(lines[0] as string);
  if (former) {
    into.outdated = true;
    into.upgrading = /^plugindex-catalog \d+$/.test(lines[0] as string);
    if (!into.upgrading) return;
  }
  for (let i = 1; i < lines.length; i++) {
    const fields = (lines[i] as string).split('\t');
    if (fields[0] === 'generation') into.generation = Number(fields[1]) || 0;
    else if (fields[0] === 'writing' && fields.length === 3)
      noteWriting(into, fields[1] as string, fields[2] as string);
    else if (fields[0] === 'rebuilding' && fields.length === 1) {
      // A rebuild under way (its release's, or one that died): finished as it began, taking what is there.
      into.outdated = true;
      into.upgrading = false;
    } else if (fields[0] === 'snapshot' && fields.length === 3)
      into.snapshot = { sha256: fields[1] as string, size: Number(fields[2]) };
    else if (former) continue;
    else if (fields[0] === 'pending' && fields[1] === 'indexes') into.indexesPending = true;
    else if (fields[0] === 'order' && fields.length === 3)
      into.order = { sha256: fields[1] as string, size: Number(fields[2]) };
    else if (fields[0] === 'unrendered' && fields.length === 2) into.unrendered.add(fields[1] as string);
    else if (fields[0] === 'bin' && fields.length === 3)
      into.bins.set(fields[1] as string, fields[2] as string);
    else if (fields[0] === 'journal' && fields.length === 3)
      into.journal.push({ sha256: fields[1] as string, size: Number(fields[2]) });
    else if (fields[0] === 'global' && fields.length === 4) {
      into.registryDigests.set(fields[1] as string, { sha256: fields[2] as string, size: Number(fields[3]) });
    } else if (fields[0] === 'names' && fields[1] === 'owners' && fields.length === 2)
      into.namesOwnersKept = true;
  }
}

const HEADER_LINE = utf8.encode(`${HEADER}\n`);
const PLUGIN_FIELD = utf8.encode('plugin\t');

/** The decimal number written in `bytes` from `start` to `end`; NaN unless digits alone. */
function decimalAt(bytes: Uint8Array, start: number, end: number): number {
  if (start === end) return Number.NaN;
  let value = 0;
  for (let i = start; i < end; i++) {
    const digit = (bytes[i] as number) - 0x30;
    if (digit < 0 || digit > 9) return Number.NaN;
    value = value * 10 + digit;
  }
  return value;
}

function startsWith(bytes: Uint8Array, at: number, prefix: Uint8Array): boolean {
  if (at + prefix.byteLength > bytes.byteLength) return false;
  for (let i = 0; i < prefix.byteLength; i++) if (bytes[at + i] !== prefix[i]) return false;
  return true;
}

/**
 * `parseBin`, for a bin a run meets once it is under way (the meta file read as this format).
 * @throws PlugindexError CATALOG_OUTDATED when the bin is of another format.
 */
function parseBinOfFormat(bytes: Uint8Array, bin: string): Map<string, CatalogLine> {
  const plugins = parseBin(bytes, bin);
  if (!plugins)
    throw new PlugindexError(
      'CATALOG_OUTDATED',
      `${catalogBinKey(bin)} is of another catalog format: rebuild the registry (plugindex rebuild)`,
    );
  return plugins;
}

/**
 * Reads a bin's plugin lines as views into its bytes. Returns undefined for a bin of another format; a
 * line that is not whole (a file cut short) ends the reading, as a line the old reader could not split
 * was skipped.
 */
function parseBin(bytes: Uint8Array, bin: string | undefined): Map<string, CatalogLine> | undefined {
  if (!startsWith(bytes, 0, HEADER_LINE)) return undefined;
  const plugins = new Map<string, CatalogLine>();
  const at: number[] = [];
  const stored: StoredBin = { bin, bytes, at };
  // Names decoded from the bytes as they lie, without a view per line (a cold process reads 10,000); and
  // Buffer's search for a byte, which is memchr (several times as fast as a typed array's indexOf: a pass
  // over every bin reads the whole catalog).
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = HEADER_LINE.byteLength;
  while (pos < bytes.byteLength) {
    const end = text.indexOf(NEWLINE, pos);
    const lineEnd = end < 0 ? bytes.byteLength : end;
    if (!startsWith(bytes, pos, PLUGIN_FIELD)) {
      pos = lineEnd + 1;
      continue;
    }
    // name, sha256, size, api versions, entry, search: tab-separated; then the falcoctl item's length.
    const nameStart = pos + PLUGIN_FIELD.byteLength;
    const nameEnd = text.indexOf(TAB, nameStart);
    if (nameEnd < 0 || nameEnd > lineEnd) return plugins;
    const base = at.length;
    at.push(pos);
    let from = nameEnd + 1;
    for (let field = 0; field < 5; field++) {
      const tab = text.indexOf(TAB, from);
      if (tab < 0 || tab > lineEnd) {
        at.length = base;
        return plugins;
      }
      at.push(from, tab);
      from = tab + 1;
    }
    const length = decimalAt(bytes, from, lineEnd);
    const itemEnd = lineEnd + 1 + length;
    if (end < 0 || !Number.isSafeInteger(length) || length < 0 || itemEnd > bytes.byteLength) {
      at.length = base;
      return plugins;
    }
    at.push(lineEnd + 1, itemEnd);
    const name = text.toString('utf8', nameStart, nameEnd);
    plugins.set(name, new StoredLine(name, stored, base));
    pos = itemEnd;
  }
  return plugins;
}

/**
 * The meta file as last read or saved, but for its `writing` lines: what `saveWriting` writes them under, so
 * a run records what it is about to publish without saving anything else of what it changed so far (the
 * pending mark it may clear, digests of documents the snapshot does not list yet).
 */
const storedMeta = new WeakMap<Catalog, string>();

/** Notes that a run is about to publish `sha256` at `key` (saved with the meta file: `saveWriting`). */
export function noteWriting(catalog: Catalog, key: string, sha256: string): void {
  const digests = catalog.writing.get(key);
  if (digests) digests.add(sha256);
  else catalog.writing.set(key, new Set([sha256]));
}

/**
 * Lets go of what runs recorded they were about to publish at the keys `written` names: the catalog saved
 * now records what is there.
 */
function settleWrites(catalog: Catalog, written: (key: string) => boolean): void {
  for (const key of [...catalog.writing.keys()]) if (written(key)) catalog.writing.delete(key);
}

/**
 * Saves the meta file as it was last read or saved, with the catalog's `writing` lines as they are now: the
 * record of what this run is about to publish, written before it publishes it. A catalog neither read nor
 * saved (another format's) has no meta file of its own to record it in: nothing is written.
 */
export async function saveWriting(store: Store, catalog: Catalog): Promise<void> {
  const base = storedMeta.get(catalog);
  if (base === undefined) return;
  await store.put(CATALOG_META_KEY, utf8.encode(base + writingLines(catalog)), CATALOG_PUT);
}

/**
 * The snapshots runs recorded they were about to publish (`CATALOG_SNAPSHOT_RECORD_KEY`), sha256 -> the
 * generation each was signed for, as read (only those past the catalog's generation) and recorded since.
 */
const snapshotRecords = new WeakMap<Catalog, Map<string, number>>();

/**
 * The highest generation a snapshot of this registry was signed for as far as `catalog` knows: its own, or
 * one a run recorded it was about to publish (`recordSnapshot`). A catalog of another format is never saved
 * while a refresh waits to upgrade it (pipeline/index.ts `upgradeWaiting`), so the snapshots it signs are
 * known by these records alone: the next generation counted from the snapshot read, one of them put back, went
 * below one clients had seen (SNAPSHOT_ROLLBACK).
 */
export function recordedGeneration(catalog: Catalog): number {
  let highest = catalog.generation;
  for (const generation of snapshotRecords.get(catalog)?.values() ?? [])
    if (generation > highest) highest = generation;
  return highest;
}

/** Reads `<generation> <sha256>` lines, keeping the records of snapshots past `catalog`'s generation. */
function parseSnapshotRecords(text: string, catalog: Catalog): void {
  const records = new Map<string, number>();
  for (const line of text.split('\n')) {
    const [generation, sha256, ...rest] = line.split('\t');
    if (!sha256 || rest.length > 0 || !(Number(generation) > catalog.generation)) continue;
    records.set(sha256, Number(generation));
    noteWriting(catalog, SNAPSHOT_KEY, sha256);
  }
  snapshotRecords.set(catalog, records);
}

/**
 * Records that this run is about to publish the snapshot of `sha256`, signed for `generation`, before it
 * writes it (published.ts): a run that dies between the snapshot and the catalog leaves one the next run
 * knows for the registry's own. Written to an object of its own, with the records read that are still past
 * the catalog's generation, never into the meta file: the snapshot is written only over the one read
 * (ifMatch), and the record before it must not write back a meta file a writer outside the queue replaced
 * since (its catalog, and its own snapshot's record, would be lost: every later batch would fail on that
 * snapshot). A record is let go once a catalog of its generation or a later one is saved.
 */
export async function recordSnapshot(
  store: Store,
  catalog: Catalog,
  generation: number,
  sha256: string,
  over?: string,
): Promise<void> {
  // Only what a later run needs: this snapshot, the one it is written over (published still if this run dies
  // before its write, perhaps beside another's signature), and any signed for a higher generation
  // (`recordedGeneration`). Kept all, a refresh waiting on a stuck entry for weeks (`upgradeWaiting`, never
  // saving the catalog that lets them go) grew the object a line a refresh.
  const records = new Map<string, number>();
  for (const [digest, signedFor] of snapshotRecords.get(catalog) ?? [])
    if (digest === over || signedFor > generation) records.set(digest, signedFor);
  snapshotRecords.set(catalog, records);
  records.set(sha256, generation);
  noteWriting(catalog, SNAPSHOT_KEY, sha256);
  let out = '';
  for (const [digest, signedFor] of [...records].sort(([, a], [, b]) => a - b))
    out += `${signedFor}\t${digest}\n`;
  await store.put(CATALOG_SNAPSHOT_RECORD_KEY, utf8.encode(out), CATALOG_PUT);
}

/**
 * Records in the meta file, before a rebuild writes anything, that one is under way (a `rebuilding` line,
 * kept by `saveWriting` and gone from the meta file the rebuild saves last). A rebuild rewrites documents
 * without recording each first (it takes what is published as it is): one that dies before its catalog
 * leaves plugin documents the catalog's lines do not record (re-signed after a key rotation, rendered for
 * another URL), which a batch would take for someone else's (pipeline/published.ts). Marked, the catalog
 * reads as `outdated`, so whatever runs next finishes the rebuild first. `catalog` is `catalogAnew`'s: for
 * one neither read nor saved (another format's, already outdated) nothing is written.
 */
export async function markRebuilding(store: Store, catalog: Catalog): Promise<void> {
  const base = storedMeta.get(catalog);
  if (base === undefined) return;
  storedMeta.set(catalog, `${base}rebuilding\n`);
  await saveWriting(store, catalog);
}

/**
 * A catalog made anew (a rebuild's), of `opened`'s generation: until it is saved, what it records it is about
 * to publish is saved over the meta file as `opened` read it, never over an empty one (a rebuild that died
 * there would leave a catalog that lists nothing).
 */
export function catalogAnew(opened: Catalog): Catalog {
  const catalog = emptyCatalog();
  catalog.generation = opened.generation;
  const base = storedMeta.get(opened);
  if (base !== undefined) storedMeta.set(catalog, base);
  const records = snapshotRecords.get(opened);
  if (records) {
    snapshotRecords.set(catalog, new Map(records));
    for (const sha256 of records.keys()) noteWriting(catalog, SNAPSHOT_KEY, sha256);
  }
  return catalog;
}

function writingLines(catalog: Catalog): string {
  let out = '';
  for (const [key, digests] of [...catalog.writing].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (key === SNAPSHOT_KEY) continue; // recorded in an object of its own: recordSnapshot
    for (const sha256 of [...digests].sort()) out += `writing\t${key}\t${sha256}\n`;
  }
  return out;
}

function serializeMeta(catalog: Catalog): string {
  const base = serializeMetaBase(catalog);
  storedMeta.set(catalog, base);
  return base + writingLines(catalog);
}

function serializeMetaBase(catalog: Catalog): string {
  const out = [META_HEADER, `generation\t${catalog.generation}`];
  if (catalog.indexesPending) out.push('pending\tindexes');
  if (catalog.order) {
    out.push(`order\t${catalog.order.sha256}\t${catalog.order.size}`);
    for (const name of [...catalog.unrendered].sort()) out.push(`unrendered\t${name}`);
  }
  for (const [bin, digest] of [...catalog.bins].sort(([a], [b]) => (a < b ? -1 : 1)))
    out.push(`bin\t${bin}\t${digest}`);
  for (const { sha256, size } of catalog.journal) out.push(`journal\t${sha256}\t${size}`);
  for (const [key, d] of [...catalog.registryDigests].sort(([a], [b]) => (a < b ? -1 : 1)))
    out.push(`global\t${key}\t${d.sha256}\t${d.size}`);
  if (catalog.snapshot) out.push(`snapshot\t${catalog.snapshot.sha256}\t${catalog.snapshot.size}`);
  if (catalog.namesOwnersKept) out.push('names\towners');
  return `${out.join('\n')}\n`;
}

/** A bin's bytes: each line read from a bin is written back as the bytes it was read as. */
function serializeBin(names: readonly string[], plugins: ReadonlyMap<string, CatalogLine>): Uint8Array {
  const parts: Uint8Array[] = [HEADER_LINE];
  for (const name of names) {
    const p = plugins.get(name) as CatalogLine;
    if (storedFor(name, p)) {
      parts.push(p.record);
      continue;
    }
    const item = utf8.encode(p.falcoctl);
    parts.push(
      utf8.encode(
        `plugin\t${name}\t${p.document.sha256}\t${p.document.size}\t${p.apiVersions.join(',')}\t${p.entry}\t${p.search}\t${item.byteLength}\n`,
      ),
      item,
    );
  }
  return joinBytes(parts);
}

interface CachedBin {
  readonly sha256: string;
  readonly plugins: ReadonlyMap<string, CatalogLine>;
  /** The bin's size: what keeping it costs. */
  readonly bytes: number;
}

/**
 * Bins read, or written, at once: a cold process reads up to all 256, a rebuild or an import writes them.
 * Each is a few hundred kilobytes at 100,000 plugins, so the flush's memory stays bounded.
 */
const BINS_IN_FLIGHT = 16;

/**
 * The bytes of catalog bins a process keeps per store, most recently used last. Every bin of a registry of
 * up to about 13,000 plugins of 10 versions fits (1.4 MB a bin at 100,000), so a warm process that renders
 * the index documents into buffers reads only the bins another writer changed, as when it kept every bin;
 * a larger registry's flush reads the others again (a few milliseconds a bin) rather than the process
 * holding 330 MB of lines at 100,000 plugins. A publish needs none of them (documentsIn).
 */
const BIN_CACHE_BYTES = 48 * 1024 * 1024;

/** Bins read per store, by digest: what a warm process need not read again (at most BIN_CACHE_BYTES). */
const binCache = new WeakMap<Store, Map<string, CachedBin>>();

/** The map `maps` holds for `store`, made empty the first time it is asked for. */
function mapOf<K, V>(maps: WeakMap<Store, Map<K, V>>, store: Store): Map<K, V> {
  let map = maps.get(store);
  if (!map) {
    map = new Map();
    maps.set(store, map);
  }
  return map;
}

function cacheOf(store: Store): Map<string, CachedBin> {
  return mapOf(binCache, store);
}

/** Keeps `cached` as `bin`'s, the most recently used, and lets the least recently used go past the budget. */
function keepBin(store: Store, bin: string, cached: CachedBin): void {
  const cache = cacheOf(store);
  cache.delete(bin);
  cache.set(bin, cached);
  let held = 0;
  for (const { bytes } of cache.values()) held += bytes;
  for (const [old, { bytes }] of cache) {
    if (held <= BIN_CACHE_BYTES || old === bin) break;
    cache.delete(old);
    held -= bytes;
  }
}

/**
 * Whether every bin the catalog has not read is kept in memory at the digest the meta file names: a warm
 * process, which renders the index documents from those lines faster than it could read the published ones.
 */
export function binsKept(store: Store, catalog: Catalog): boolean {
  const cache = cacheOf(store);
  for (const bin of catalog.unread) if (cache.get(bin)?.sha256 !== catalog.bins.get(bin)) return false;
  return true;
}

/**
 * Per store, per bin: the digest of the bin as last read or written, and each of its plugins' document
 * digest, which is all a deferred publish needs of the bins it changes (the snapshot bins list those
 * digests). Every bin's, whatever the budget for bins: about 20 MB at 100,000 plugins, where their bins are
 * 330 MB, so a warm process publishes without reading a bin.
 */
const documentIndex = new WeakMap<
  Store,
  Map<string, { sha256: string; documents: Map<string, DocumentDigest> }>
>();

function documentIndexOf(store: Store) {
  return mapOf(documentIndex, store);
}

function indexBin(store: Store, bin: string, cached: CachedBin): void {
  const index = documentIndexOf(store);
  if (index.get(bin)?.sha256 === cached.sha256) return;
  const documents = new Map<string, DocumentDigest>();
  for (const [name, line] of cached.plugins) documents.set(name, line.document);
  index.set(bin, { sha256: cached.sha256, documents });
}

/**
 * The document digest of every plugin of the catalog in `bins`, by name: the lines it holds (the journal's,
 * a run's), over the bins as the meta file names them, from the index when it has them at that digest (a
 * warm process), else read.
 * @throws PlugindexError CATALOG_OUTDATED when a bin read is of another format.
 */
export async function documentsIn(
  store: Store,
  catalog: Catalog,
  bins: ReadonlySet<string>,
): Promise<Map<string, { readonly document: DocumentDigest }>> {
  const out = new Map<string, { readonly document: DocumentDigest }>();
  const index = documentIndexOf(store);
  const missing = [...bins].filter(
    (bin) => catalog.unread.has(bin) && index.get(bin)?.sha256 !== catalog.bins.get(bin),
  );
  // Not kept: only their digests are wanted, which the index keeps.
  await eachBin(missing, async (bin) => {
    await binAt(store, bin, catalog.bins.get(bin) as string, false);
  });
  for (const bin of bins) {
    if (!catalog.unread.has(bin)) continue;
    const digest = catalog.bins.get(bin) as string;
    const indexed = index.get(bin);
    if (indexed?.sha256 === digest)
      for (const [name, document] of indexed.documents) out.set(name, { document });
  }
  for (const [name, line] of catalog.plugins) if (bins.has(binOfLine(name, line))) out.set(name, line);
  return out;
}

/**
 * A catalog bin as the meta file names it (`digest`): kept, or read from the store, and kept unless `keep`
 * is false (a pass over every bin, which would only push out the bins kept). Undefined when the store has no
 * such bin (left out, as it always was).
 * @throws PlugindexError CATALOG_OUTDATED when the bin is of another format.
 */
async function binAt(store: Store, bin: string, digest: string, keep = true): Promise<CachedBin | undefined> {
  const kept = cacheOf(store).get(bin);
  if (kept?.sha256 === digest) {
    if (keep) keepBin(store, bin, kept);
    indexBin(store, bin, kept);
    return kept;
  }
  const object = await store.get(catalogBinKey(bin));
  if (!object) return undefined;
  const plugins = parseBinOfFormat(object.body, bin);
  // Kept under the digest the meta file names, unhashed (a pass over every bin would hash the catalog
  // again and again): bytes another writer put since are newer, and its meta file names them by another
  // digest, so the next load reads them again.
  const cached = { sha256: digest, plugins, bytes: object.body.byteLength };
  if (keep) keepBin(store, bin, cached);
  indexBin(store, bin, cached);
  return cached;
}

/** Journal objects read per store, by digest: named by their digest, they never change. */
const journalCache = new WeakMap<Store, Map<string, ReadonlyMap<string, CatalogLine>>>();

function journalCacheOf(store: Store): Map<string, ReadonlyMap<string, CatalogLine>> {
  return mapOf(journalCache, store);
}

/**
 * The journal's objects the meta file lists, oldest first; undefined when one is missing, is not the bytes
 * its digest names, or is of another format: what it held is in no bin, so the catalog is outdated.
 */
async function readJournal(
  store: Store,
  catalog: Catalog,
): Promise<ReadonlyMap<string, CatalogLine>[] | undefined> {
  const cache = journalCacheOf(store);
  let whole = true;
  await Promise.all(
    catalog.journal
      .filter(({ sha256 }) => !cache.has(sha256))
      .map(async ({ sha256 }) => {
        const object = await store.get(catalogJournalKey(sha256));
        const lines =
          object && sha256Hex(object.body) === sha256 ? parseBin(object.body, undefined) : undefined;
        if (lines) cache.set(sha256, lines);
        else whole = false;
      }),
  );
  if (!whole) return undefined;
  return catalog.journal.map(({ sha256 }) => cache.get(sha256) as ReadonlyMap<string, CatalogLine>);
}

/**
 * Opens the catalog without reading its bins: the meta file and the journal's lines only (a few
 * megabytes at most). A publish needs only the document digests of the bins it changes (`documentsIn`);
 * writing a bin reads it; what renders every plugin reads them all (`readBins` of `catalog.unread` under
 * the streaming threshold, else `sortedLines`, a window of them at a time). The result is the caller's
 * own: a run that fails leaves nothing behind.
 */
export async function openCatalog(store: Store): Promise<Catalog> {
  const catalog = emptyCatalog();
  // The snapshots runs recorded they were about to publish, read side by side with the meta file.
  const [meta, records] = await Promise.all([
    store.get(CATALOG_META_KEY),
    store.get(CATALOG_SNAPSHOT_RECORD_KEY),
  ]);
  if (meta) parseMeta(utf8Decoder.decode(meta.body), catalog);
  // The upgrade's too: a snapshot a run recorded, or its catalog's, is the registry's though the signature
  // beside it is not its own (a run that died between the two).
  if (catalog.outdated && !catalog.upgrading) return catalog;
  parseSnapshotRecords(records ? utf8Decoder.decode(records.body) : '', catalog);
  if (catalog.outdated) return catalog;
  storedMeta.set(catalog, serializeMetaBase(catalog));
  const journal = await readJournal(store, catalog);
  // Objects no longer listed (folded) are never read again.
  const listed = new Set(catalog.journal.map((d) => d.sha256));
  const journals = journalCacheOf(store);
  for (const sha256 of journals.keys()) if (!listed.has(sha256)) journals.delete(sha256);
  if (!journal) {
    catalog.outdated = true;
    return catalog;
  }
  // Oldest first: a later object's line replaces an earlier one's.
  for (const lines of journal)
    for (const [name, line] of lines) {
      catalog.plugins.set(name, line);
      catalog.journaled.add(name);
    }
  for (const bin of catalog.bins.keys()) catalog.unread.add(bin);
  return catalog;
}

/**
 * `work` for each of `bins`, BINS_IN_FLIGHT at a time (`forEachLimited`): one after another, a store's
 * latency would add up 256 times (S3's, 20 ms or more a call).
 */
const eachBin = (bins: readonly string[], work: (bin: string) => Promise<void>): Promise<void> =>
  forEachLimited(bins, BINS_IN_FLIGHT, work);

/**
 * Reads the lines of `bins` into the catalog (those not read yet), under the lines it already holds (the
 * journal's, and those a run set), which are newer. Bins kept from before at the digest the meta file
 * names are not read again.
 * @throws PlugindexError CATALOG_OUTDATED when a bin is of another format.
 */
export async function readBins(store: Store, catalog: Catalog, bins: Iterable<string>): Promise<void> {
  const wanted = [...new Set(bins)].filter((bin) => catalog.unread.has(bin));
  await eachBin(wanted, async (bin) => {
    const cached = await binAt(store, bin, catalog.bins.get(bin) as string);
    for (const [name, line] of cached?.plugins ?? [])
      if (!catalog.plugins.has(name)) catalog.plugins.set(name, line);
    catalog.unread.delete(bin);
  });
}

/**
 * Loads the whole catalog from the intake store: every line (see openCatalog). For what needs every line at
 * once; a catalog of another format, or any bin of one, reads as empty and `outdated`.
 */
export async function loadCatalog(store: Store): Promise<Catalog> {
  const catalog = await openCatalog(store);
  if (catalog.outdated) return catalog;
  try {
    await readBins(store, catalog, catalog.unread);
  } catch (error) {
    if (!(error instanceof PlugindexError && error.code === 'CATALOG_OUTDATED')) throw error;
    const outdated = emptyCatalog();
    outdated.outdated = true;
    return outdated;
  }
  return catalog;
}

/** The names of the catalog's plugins in `bins`, by bin (from the lines it holds: read those bins first). */
function membersOf(catalog: Catalog, bins: ReadonlySet<string>): Map<string, string[]> {
  const byBin = new Map<string, string[]>();
  for (const [name, line] of catalog.plugins) {
    const bin = binOfLine(name, line);
    if (!bins.has(bin)) continue;
    const list = byBin.get(bin);
    if (list) list.push(name);
    else byBin.set(bin, [name]);
  }
  return byBin;
}

/**
 * How `saveCatalog` writes the changed plugins' lines: into their bins (`bins`); into the journal, unless it
 * would grow past its bounds (`journal`: a publish that defers the index documents); or into their bins with
 * the journal folded in and emptied (`fold`: the flush).
 */
export type CatalogWrite = 'bins' | 'journal' | 'fold';

/**
 * Saves the catalog: the lines of `changed` plugins (every bin when undefined, which folds the journal too)
 * as `write` says, then the meta file, the commit point. An emptied journal's objects are deleted after it.
 * What runs recorded they were about to publish at the keys `settled` names is let go in that last write
 * only, once the lines that record what is there are written (`settleWrites`).
 */
export async function saveCatalog(
  store: Store,
  catalog: Catalog,
  changed?: ReadonlySet<string>,
  write: CatalogWrite = 'bins',
  settled?: (key: string) => boolean,
): Promise<void> {
  const journaled =
    write === 'journal' && changed && changed.size > 0 && (await journalLines(store, catalog, changed));
  // A deferred publish that changed no plugin leaves the journal as it is.
  const folding =
    !journaled &&
    catalog.journal.length > 0 &&
    (changed === undefined || write === 'fold' || (write === 'journal' && changed.size > 0));
  const names = folding && changed ? new Set([...changed, ...catalog.journaled]) : changed;
  // A deferred publish whose lines go into their bins (the journal is full) saves them as unrendered first:
  // once a bin holds a plugin's newer line, no merge may take that plugin's items from the old documents,
  // even if this run dies before the meta file below.
  if (!journaled && write === 'journal' && catalog.order && changed && changed.size > 0)
    await store.put(CATALOG_META_KEY, utf8.encode(serializeMeta(catalog)), CATALOG_PUT);
  if (!journaled) await writeBins(store, catalog, names);
  const emptied = folding ? catalog.journal : [];
  if (folding) {
    catalog.journal = [];
    catalog.journaled.clear();
  }
  if (settled) settleWrites(catalog, settled);
  await store.put(CATALOG_META_KEY, utf8.encode(serializeMeta(catalog)), CATALOG_PUT);
  // No longer listed, so no longer read: also any a run wrote before it died, never listed, and after a
  // rebuild (every bin written from a catalog made anew), any the old catalog listed.
  if (emptied.length > 0 || changed === undefined)
    for await (const { key } of store.list(CATALOG_JOURNAL_PREFIX)) await store.delete(key);
}

/**
 * Writes the bins of `changed` plugins (every bin when undefined), a few at a time (`eachBin`): a bin the
 * catalog has not read is read (or taken from those kept), its lines overlaid with the catalog's, written
 * and let go, so a flush that folds a journal spread over every bin never holds them all. The meta file,
 * which names them, is written by the caller once every one is.
 */
async function writeBins(
  store: Store,
  catalog: Catalog,
  changed: ReadonlySet<string> | undefined,
): Promise<void> {
  const wanted = changed
    ? new Set([...changed].map(binOf))
    : new Set([...catalog.unread, ...[...catalog.plugins].map(([name, line]) => binOfLine(name, line))]);
  // Only the members of the bins written are gathered and sorted, not every name of the registry.
  const held = membersOf(catalog, wanted);
  await eachBin([...wanted].sort(), async (bin) => {
    const lines = new Map<string, CatalogLine>();
    if (catalog.unread.has(bin))
      for (const [name, line] of (await binAt(store, bin, catalog.bins.get(bin) as string))?.plugins ?? [])
        lines.set(name, line);
    for (const name of held.get(bin) ?? []) lines.set(name, catalog.plugins.get(name) as CatalogLine);
    const key = catalogBinKey(bin);
    const body = serializeBin([...lines.keys()].sort(), lines);
    const digest = sha256Hex(body);
    await store.put(key, body, { ...CATALOG_PUT, sha256: digest });
    catalog.bins.set(bin, digest);
    // Kept as read back from these bytes: its lines then hold no strings, only views.
    const plugins = parseBin(body, bin) as Map<string, CatalogLine>;
    const written = { sha256: digest, plugins, bytes: body.byteLength };
    keepBin(store, bin, written);
    indexBin(store, bin, written);
  });
}

/**
 * Writes the lines of `changed` plugins as one journal object and lists it; false, writing nothing, when the
 * journal would grow past its bounds, or a changed plugin has no line (the journal holds lines, not removals).
 */
async function journalLines(store: Store, catalog: Catalog, changed: ReadonlySet<string>): Promise<boolean> {
  const names = [...changed].sort();
  if (catalog.journal.length >= JOURNAL_MAX_ENTRIES) return false;
  if (!names.every((name) => catalog.plugins.has(name))) return false;
  const body = serializeBin(names, catalog.plugins);
  const held = catalog.journal.reduce((sum, { size }) => sum + size, 0);
  if (held + body.byteLength > JOURNAL_MAX_BYTES) return false;
  const sha256 = sha256Hex(body);
  await store.put(catalogJournalKey(sha256), body, { ...CATALOG_PUT, sha256 });
  journalCacheOf(store).set(sha256, parseBin(body, undefined) as Map<string, CatalogLine>);
  catalog.journal = [...catalog.journal, { sha256, size: body.byteLength }];
  for (const name of names) catalog.journaled.add(name);
  return true;
}

/**
 * The order the index documents were last rendered in (document-order.ts), if the meta file names one and
 * the stored file is that one; else undefined, and the next rendering is a full one.
 */
export async function readOrder(store: Store, catalog: Catalog): Promise<DocumentOrder | undefined> {
  if (!catalog.order) return undefined;
  const object = await store.get(CATALOG_ORDER_KEY);
  if (!object || object.body.byteLength !== catalog.order.size) return undefined;
  if (sha256Hex(object.body) !== catalog.order.sha256) return undefined;
  return parseOrder(object.body);
}

/**
 * Writes the order the index documents were just rendered in, and names it in the catalog (saved with the
 * meta file, after it): every plugin is rendered in it, none unrendered.
 */
export async function saveOrder(store: Store, catalog: Catalog, order: DocumentOrder): Promise<void> {
  const body = serializeOrder(order);
  const sha256 = sha256Hex(body);
  await store.put(CATALOG_ORDER_KEY, body, {
    contentType: 'application/octet-stream',
    cacheControl: CACHE_PRIVATE,
    sha256,
  });
  catalog.order = { sha256, size: body.byteLength };
  catalog.unrendered.clear();
}

/** More plugins than this unrendered, and the next rendering is a full one (the meta file lists them). */
const MAX_UNRENDERED = 4096;

/**
 * Notes plugins whose lines changed while the index documents were not rendered (a deferred publish); every
 * plugin changed (`undefined`), or more than a merge is worth, and the next rendering is a full one.
 */
export function markUnrendered(catalog: Catalog, changed: ReadonlySet<string> | undefined): void {
  if (!catalog.order) return;
  for (const name of changed ?? []) catalog.unrendered.add(name);
  if (changed === undefined || catalog.unrendered.size > MAX_UNRENDERED) {
    catalog.order = undefined;
    catalog.unrendered.clear();
  }
}

/** A line's api versions as the catalog stores them: comma-separated. */
export function apiVersionsField(line: CatalogLine): string {
  return line instanceof StoredLine ? line.apiVersionsField : line.apiVersions.join(',');
}

/** The UTF-8 lengths of a line's entry, search row and falcoctl item, without encoding a text line. */
export function itemLengths(line: CatalogLine): [entry: number, search: number, falcoctl: number] {
  if (line instanceof StoredLine)
    return [line.lengthOf(ENTRY), line.lengthOf(SEARCH), line.lengthOf(FALCOCTL)];
  return [Buffer.byteLength(line.entry), Buffer.byteLength(line.search), Buffer.byteLength(line.falcoctl)];
}

/**
 * Lets go of the bins kept for `store`: a registry whose flush goes through the bins a window at a time is
 * past what the budget holds (a few hits a pass), and the flush is what peaks.
 */
export function forgetBins(store: Store): void {
  cacheOf(store).clear();
}

/** Every name, sorted: of a catalog that holds every line (none `unread`). */
export function sortedNames(catalog: Catalog): string[] {
  if (catalog.unread.size > 0) throw new Error('sortedNames: the catalog has bins not read (readBins)');
  return [...catalog.plugins.keys()].sort();
}

/** The api versions of `lines`, each once, sorted (the registry metadata's `supported_api_versions`). */
export function apiVersionsOf(lines: readonly CatalogLine[]): string[] {
  return apiVersionsOfFields(lines.map(apiVersionsField));
}

/**
 * A line's entry and search row as UTF-8, each encoded once per line, when a buffered render first needs it.
 * Lines are replaced, never changed, when a plugin changes, so a warm process re-encodes only the changed
 * plugins: encoding the whole 28 MB index again would cost more than writing it. Kept apart, so a registry
 * whose index is streamed (render/index-documents.ts `layoutChunks`) never holds its entries twice.
 */
/**
 * A line's entry (search row) as it is held, for what only measures or streams it: a stored line's bytes,
 * never decoded (a cold process holds every line so), else its text, never encoded ahead of need.
 */
export function heldEntry(line: CatalogLine): string | Uint8Array {
  return line instanceof StoredLine ? line.entryBytes : line.entry;
}

export function heldSearchRow(line: CatalogLine): string | Uint8Array {
  return line instanceof StoredLine ? line.searchBytes : line.search;
}

/**
 * The length of a line's entry, search row and falcoctl item as held: a stored line's bytes, else the
 * text's UTF-16 units (at most a third of its UTF-8 bytes). For what only measures: no view, no encoding.
 */
export function heldEntryLength(line: CatalogLine): number {
  return line instanceof StoredLine ? line.lengthOf(ENTRY) : line.entry.length;
}

export function heldSearchRowLength(line: CatalogLine): number {
  return line instanceof StoredLine ? line.lengthOf(SEARCH) : line.search.length;
}

export function heldFalcoctlLength(line: CatalogLine): number {
  return line instanceof StoredLine ? line.lengthOf(FALCOCTL) : line.falcoctl.length;
}

const encodedEntries = new WeakMap<CatalogLine, Uint8Array>();
const encodedSearchRows = new WeakMap<CatalogLine, Uint8Array>();

export function entryBytes(line: CatalogLine): Uint8Array {
  if (line instanceof StoredLine) return line.entryBytes;
  let bytes = encodedEntries.get(line);
  if (!bytes) {
    bytes = utf8.encode(line.entry);
    encodedEntries.set(line, bytes);
  }
  return bytes;
}

export function searchBytes(line: CatalogLine): Uint8Array {
  if (line instanceof StoredLine) return line.searchBytes;
  let bytes = encodedSearchRows.get(line);
  if (!bytes) {
    bytes = utf8.encode(line.search);
    encodedSearchRows.set(line, bytes);
  }
  return bytes;
}

/** A line's falcoctl item as UTF-8 (a stored line's own bytes; else encoded once per line). */
const falcoctlItems = new WeakMap<CatalogLine, Uint8Array>();

export function falcoctlItem(line: CatalogLine): Uint8Array {
  if (line instanceof StoredLine) return line.falcoctlBytes;
  let bytes = falcoctlItems.get(line);
  if (!bytes) {
    bytes = utf8.encode(line.falcoctl);
    falcoctlItems.set(line, bytes);
  }
  return bytes;
}

/**
 * What rendering every plugin's items needs before the first byte, read without holding every line: the
 * names in document order, each one's item lengths, and the api versions (the documents' header names them).
 */
export interface CatalogOutline {
  /** Every name, sorted (the index documents' order). */
  readonly names: readonly string[];
  /** Per name, in that order: the bytes of its entry, search row and falcoctl item (three numbers a name). */
  readonly lengths: Uint32Array;
  /** The union of every line's api versions, sorted. */
  readonly apiVersions: readonly string[];
  /** Per name, in that order: its api versions as stored (comma-separated). */
  readonly apiVersionFields: readonly string[];
}

/** A buffer a pass over the bins reads bins into, again and again: no garbage of 1.4 MB a bin. */
interface ReadBuffer {
  bytes: Uint8Array;
}

/**
 * A catalog bin read into `buffer` (grown when it is too small): its lines are views into it, good until
 * the next read into the same buffer. Undefined when the store has no such bin.
 * @throws PlugindexError CATALOG_OUTDATED when the bin is of another format.
 */
async function binInto(
  store: Store,
  bin: string,
  digest: string,
  buffer: ReadBuffer,
): Promise<CachedBin | undefined> {
  const object = await store.getStream(catalogBinKey(bin));
  if (!object) return undefined;
  let at = 0;
  try {
    for await (const chunk of object.body) {
      if (at + chunk.byteLength > buffer.bytes.byteLength) {
        const grown = new Uint8Array(Math.ceil(Math.max(object.size, at + chunk.byteLength) * 1.25));
        grown.set(buffer.bytes.subarray(0, at));
        buffer.bytes = grown;
      }
      buffer.bytes.set(chunk, at);
      at += chunk.byteLength;
    }
  } finally {
    object.cancel();
  }
  const plugins = parseBinOfFormat(buffer.bytes.subarray(0, at), bin);
  const read = { sha256: digest, plugins, bytes: at };
  indexBin(store, bin, read);
  return read;
}

/**
 * Bins a pass over every bin has read or being read ahead of the one the caller goes through: a store's
 * latency (tens of milliseconds a request on S3) is paid once per eight bins, not once per bin.
 */
const BINS_AHEAD = 8;

/**
 * The bins a catalog has not read, each as the meta file names it, in turn, BINS_AHEAD of them read while
 * the caller goes through one. With `keep`, each is kept as far as the budget goes; without, the kept ones
 * are taken from memory and the others read into buffers used in turn (one more than are read ahead), so
 * a bin's lines are good until the caller asks for the next one.
 */
async function* unreadBins(store: Store, catalog: Catalog, keep: boolean): AsyncGenerator<CachedBin> {
  const bins = [...catalog.unread].sort();
  const buffers: ReadBuffer[] = Array.from({ length: BINS_AHEAD + 1 }, () => ({ bytes: new Uint8Array(0) }));
  const read = (i: number) => {
    const bin = bins[i] as string;
    const digest = catalog.bins.get(bin) as string;
    const kept = cacheOf(store).get(bin);
    if (keep || kept?.sha256 === digest) return binAt(store, bin, digest, keep);
    return binInto(store, bin, digest, buffers[i % buffers.length] as ReadBuffer);
  };
  const ahead: Promise<CachedBin | undefined>[] = [];
  let next = 0;
  const fill = () => {
    while (next < bins.length && ahead.length < BINS_AHEAD) {
      const reading = read(next++);
      // Observed on its turn; one that fails while another is gone through is not left unobserved.
      reading.catch(() => {});
      ahead.push(reading);
    }
  };
  fill();
  while (ahead.length > 0) {
    const cached = await (ahead.shift() as Promise<CachedBin | undefined>);
    // The buffer of the bin before this one is free now: read one more into it.
    fill();
    if (cached) yield cached;
  }
}

/**
 * The outline of the whole catalog: the lines it holds and those of every bin it has not read, each bin
 * read (or taken from those kept) and let go in turn, so the lines are never all in memory.
 * @throws PlugindexError CATALOG_OUTDATED when a bin is of another format.
 */
export async function outlineCatalog(store: Store, catalog: Catalog): Promise<CatalogOutline> {
  const rows: { name: string; lengths: [number, number, number]; api: string }[] = [];
  const add = (name: string, line: CatalogLine) =>
    rows.push({ name, lengths: itemLengths(line), api: apiVersionsField(line) });
  for (const [name, line] of catalog.plugins) add(name, line);
  // Kept as far as the budget goes: a registry under the streaming threshold is then rendered from them.
  for await (const { plugins } of unreadBins(store, catalog, true))
    for (const [name, line] of plugins) if (!catalog.plugins.has(name)) add(name, line);
  rows.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const lengths = new Uint32Array(rows.length * 3);
  for (let i = 0; i < rows.length; i++) lengths.set((rows[i] as (typeof rows)[number]).lengths, i * 3);
  const apiVersionFields = rows.map((row) => row.api);
  return {
    names: rows.map((row) => row.name),
    lengths,
    apiVersions: apiVersionsOfFields(apiVersionFields),
    apiVersionFields,
  };
}

/** A plugin's three items as bytes: its entry, search row and falcoctl item. */
interface LineItems {
  readonly entry: Uint8Array;
  readonly search: Uint8Array;
  readonly falcoctl: Uint8Array;
}

/** A window of the sorted lines holds at most this many bytes of items (one name past it, if it is larger). */
const WINDOW_BYTES = 64 * 1024 * 1024;

/**
 * Every line's items in the outline's order, a window of consecutive names at a time: the catalog's bins are
 * by the hash of the name, so each window reads every bin it has not read (or takes it from those kept) and
 * copies out the items of its names, one bin at a time. Memory is a window and a bin, whatever the size of
 * the registry; the cost is reading the bins once per window. A window's items are views into one buffer,
 * which the next window reuses: take what you need of them before asking for the next.
 * @throws Error when a bin no longer holds a name the outline has (another writer in between).
 */
export async function* sortedLines(
  store: Store,
  catalog: Catalog,
  outline: CatalogOutline,
  windowBytes = WINDOW_BYTES,
): AsyncGenerator<readonly LineItems[]> {
  const { names, lengths } = outline;
  const bytesOf = (i: number) =>
    (lengths[i * 3] as number) + (lengths[i * 3 + 1] as number) + (lengths[i * 3 + 2] as number);
  let arena = new Uint8Array(0);
  for (let start = 0; start < names.length; ) {
    let end = start;
    let bytes = 0;
    while (end < names.length && (end === start || bytes + bytesOf(end) <= windowBytes))
      bytes += bytesOf(end++);
    if (arena.byteLength < bytes) arena = new Uint8Array(bytes);
    const first = names[start] as string;
    const last = names[end - 1] as string;
    const items = new Map<string, LineItems>();
    let at = 0;
    const copy = (field: Uint8Array): Uint8Array => {
      arena.set(field, at);
      at += field.byteLength;
      return arena.subarray(at - field.byteLength, at);
    };
    // The lines held (the journal's, a run's) as they are: they are in memory anyway.
    for (const [name, line] of catalog.plugins)
      if (name >= first && name <= last)
        items.set(name, { entry: entryBytes(line), search: searchBytes(line), falcoctl: falcoctlItem(line) });
    for await (const { plugins } of unreadBins(store, catalog, false))
      for (const [name, line] of plugins) {
        if (name < first || name > last || catalog.plugins.has(name)) continue;
        const stored = line as StoredLine;
        // Copied: a view would keep the whole bin alive while the window lasts.
        items.set(name, {
          entry: copy(stored.entryBytes),
          search: copy(stored.searchBytes),
          falcoctl: copy(stored.falcoctlBytes),
        });
      }
    const window: LineItems[] = [];
    for (let i = start; i < end; i++) {
      const item = items.get(names[i] as string);
      if (!item) throw new Error(`catalog: ${names[i]} is no longer in its bin (another writer?)`);
      window.push(item);
    }
    yield window;
    start = end;
  }
}
