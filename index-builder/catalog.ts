/**
 * The catalog: the registry's internal state, from which the registry-wide documents are rendered without
 * reading any plugin document. Each plugin has one line holding its index entry, search row and falcoctl
 * index item already serialized, so a publish parses only what changed, and `index.json`, `index.yaml`,
 * `search.json` and `falcoctl/index.yaml` are rendered by concatenating lines (render/index-documents.ts): at 10,000 plugins the cost of a publish is
 * writing the global files, not re-serializing them.
 *
 * Storage (in the intake store, never published): `state/catalog/meta.tsv` holds the generation and the
 * digests of global documents; `state/catalog/bins/<bin>.tsv` holds the lines of the plugins whose names
 * fall in that bin (the same 256 bins as the snapshot). A publish rewrites the meta file and one bin per
 * changed plugin. A process keeps the bins it has read, checked by ETag, so a warm process (the local
 * server, a warm Lambda) reads only what another writer changed.
 *
 * The journal: a publish that defers the index documents (the local server, the publish function) does not
 * rewrite the bins of the plugins it changed, whose size grows with the registry (about 1.4 MB each at
 * 100,000 plugins of 10 versions), but writes their lines, and only theirs, to one journal object named by
 * its digest (`state/catalog/journal/<sha256>.tsv`, the bin format), and the meta file lists the journal in
 * order. A load applies it over the bins. The flush, whose cost grows with the registry anyway, folds the
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
 *   global <key> <sha256> <size>
 *   plugin <name> <doc sha256> <doc size> <api versions, comma-separated> <entry JSON> <search JSON>
 *          <n>, then on the next lines the plugin's falcoctl index item, n bytes of block YAML (it is
 *          copied into falcoctl/index.yaml as it is, so stored rendered; its own line breaks end it)
 */
import { Buffer } from 'node:buffer';
import { sha256Hex } from './digest.ts';
import {
  binOf,
  CATALOG_JOURNAL_PREFIX,
  CATALOG_META_KEY,
  catalogBinKey,
  catalogJournalKey,
} from './layout.ts';
import type { DocumentDigest, PluginDocument } from './model.ts';
import { buildFalcoctlEntry, buildIndexEntry, buildSearchEntry } from './render/documents.ts';
import { toYaml } from './render/yaml.ts';
import { CACHE_PRIVATE, type Store } from './store.ts';
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
   * The index documents (index.json, index.yaml, search.json, falcoctl/index.yaml) lag the plugin documents: a publish deferred
   * them (`PipelineContext.deferIndexes`) and no flush has rendered them since.
   */
  indexesPending: boolean;
  /**
   * The meta file is of another catalog format (one written before an upgrade): what it holds was not read,
   * and the registry must be rebuilt from its plugin documents before a publish renders anything from it.
   */
  outdated: boolean;
}

// 4: lines gained the falcoctl entry; 5: it is stored rendered (YAML, length-prefixed), not as JSON; 6: the
// meta file lists a journal (the bins and the journal's objects are format 5). A catalog of another format
// reads as empty and outdated; the pipeline then rebuilds it from the plugin documents before it publishes.
// Version 6 reads a format-5 meta file (it has no journal); a version before it reads a 6 as outdated, so
// it never renders from bins that lack what the journal holds.
const HEADER = 'plugindex-catalog 5';
const META_HEADER = 'plugindex-catalog 6';
const READABLE_META = new Set([HEADER, META_HEADER]);

/** How every catalog file is stored: private to the publisher. */
const CATALOG_PUT = { contentType: 'text/tab-separated-values', cacheControl: CACHE_PRIVATE } as const;

/** A journal longer than this is folded into the bins by the next publish (see the file's comment). */
export const JOURNAL_MAX_ENTRIES = 64;
export const JOURNAL_MAX_BYTES = 8 * 1024 * 1024;

export function emptyCatalog(): Catalog {
  return {
    generation: 0,
    plugins: new Map(),
    registryDigests: new Map(),
    bins: new Map(),
    journal: [],
    journaled: new Set(),
    indexesPending: false,
    outdated: false,
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
  if (!READABLE_META.has(lines[0] as string)) {
    into.outdated = true;
    return;
  }
  for (let i = 1; i < lines.length; i++) {
    const fields = (lines[i] as string).split('\t');
    if (fields[0] === 'generation') into.generation = Number(fields[1]) || 0;
    else if (fields[0] === 'pending' && fields[1] === 'indexes') into.indexesPending = true;
    else if (fields[0] === 'bin' && fields.length === 3)
      into.bins.set(fields[1] as string, fields[2] as string);
    else if (fields[0] === 'journal' && fields.length === 3)
      into.journal.push({ sha256: fields[1] as string, size: Number(fields[2]) });
    else if (fields[0] === 'global' && fields.length === 4) {
      into.registryDigests.set(fields[1] as string, { sha256: fields[2] as string, size: Number(fields[3]) });
    }
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
 * Reads a bin's plugin lines as views into its bytes. Returns undefined for a bin of another format; a
 * line that is not whole (a file cut short) ends the reading, as a line the old reader could not split
 * was skipped.
 */
function parseBin(bytes: Uint8Array, bin: string | undefined): Map<string, CatalogLine> | undefined {
  if (!startsWith(bytes, 0, HEADER_LINE)) return undefined;
  const plugins = new Map<string, CatalogLine>();
  const at: number[] = [];
  const stored: StoredBin = { bin, bytes, at };
  // Names decoded from the bytes as they lie, without a view per line (a cold process reads 10,000).
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = HEADER_LINE.byteLength;
  while (pos < bytes.byteLength) {
    const end = bytes.indexOf(NEWLINE, pos);
    const lineEnd = end < 0 ? bytes.byteLength : end;
    if (!startsWith(bytes, pos, PLUGIN_FIELD)) {
      pos = lineEnd + 1;
      continue;
    }
    // name, sha256, size, api versions, entry, search: tab-separated; then the falcoctl item's length.
    const nameStart = pos + PLUGIN_FIELD.byteLength;
    const nameEnd = bytes.indexOf(TAB, nameStart);
    if (nameEnd < 0 || nameEnd > lineEnd) return plugins;
    const base = at.length;
    at.push(pos);
    let from = nameEnd + 1;
    for (let field = 0; field < 5; field++) {
      const tab = bytes.indexOf(TAB, from);
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

function serializeMeta(catalog: Catalog): string {
  const out = [META_HEADER, `generation\t${catalog.generation}`];
  if (catalog.indexesPending) out.push('pending\tindexes');
  for (const [bin, digest] of [...catalog.bins].sort(([a], [b]) => (a < b ? -1 : 1)))
    out.push(`bin\t${bin}\t${digest}`);
  for (const { sha256, size } of catalog.journal) out.push(`journal\t${sha256}\t${size}`);
  for (const [key, d] of [...catalog.registryDigests].sort(([a], [b]) => (a < b ? -1 : 1)))
    out.push(`global\t${key}\t${d.sha256}\t${d.size}`);
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
  let size = 0;
  for (const part of parts) size += part.byteLength;
  const out = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

interface CachedBin {
  readonly sha256: string;
  readonly plugins: ReadonlyMap<string, CatalogLine>;
}

/** Bins read at once by a process that starts cold. */
const BIN_READS_IN_FLIGHT = 8;

/** Bins read per store, by digest: what a warm process need not read again. */
const binCache = new WeakMap<Store, Map<string, CachedBin>>();

function cacheOf(store: Store): Map<string, CachedBin> {
  let cache = binCache.get(store);
  if (!cache) {
    cache = new Map();
    binCache.set(store, cache);
  }
  return cache;
}

/**
 * The plugins map a warm process keeps per store and lends to each load, rather than copying 100,000
 * lines into a new map per publish (about 40 ms here at that size). It records the names set or deleted
 * while lent: the next load puts their bins back as the store has them (a run that failed before saving
 * leaves no trace), as it does every bin whose digest changed, so a load costs the bins that changed.
 */
class PluginMap extends Map<string, CatalogLine> {
  readonly dirty = new Set<string>();

  override set(name: string, line: CatalogLine): this {
    this.dirty?.add(name);
    return super.set(name, line);
  }

  override delete(name: string): boolean {
    this.dirty.add(name);
    return super.delete(name);
  }
}

interface Assembled {
  readonly plugins: PluginMap;
  /** Bin -> the names the map holds from it or from the journal, as of the last load (plus `plugins.dirty`). */
  readonly members: Map<string, Set<string>>;
  /** Bin -> the digest of the catalog bin the map holds. */
  readonly digests: Map<string, string>;
  /** The journal objects applied over the bins, oldest first, and the names they set. */
  journal: readonly string[];
  journaled: Set<string>;
  /** Lent to a run not yet released (releaseCatalog): another load meanwhile gets a copy of its own. */
  lent: boolean;
}

const assembledByStore = new WeakMap<Store, Assembled>();
const assembledByMap = new WeakMap<ReadonlyMap<string, CatalogLine>, Assembled>();

/** Puts `bin` of the map back to the cached bin `cached` (or to nothing). */
function resyncBin(assembled: Assembled, bin: string, cached: CachedBin | undefined): void {
  const { plugins, members } = assembled;
  for (const name of members.get(bin) ?? []) Map.prototype.delete.call(plugins, name);
  const names = new Set<string>();
  for (const [name, line] of cached?.plugins ?? []) {
    Map.prototype.set.call(plugins, name, line);
    names.add(name);
  }
  members.set(bin, names);
  if (cached) assembled.digests.set(bin, cached.sha256);
  else assembled.digests.delete(bin);
}

/** Journal objects read per store, by digest: named by their digest, they never change. */
const journalCache = new WeakMap<Store, Map<string, ReadonlyMap<string, CatalogLine>>>();

function journalCacheOf(store: Store): Map<string, ReadonlyMap<string, CatalogLine>> {
  let cache = journalCache.get(store);
  if (!cache) {
    cache = new Map();
    journalCache.set(store, cache);
  }
  return cache;
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
 * Loads the catalog from the intake store. The meta file names every bin with its digest, so only bins
 * this process has not seen in that state are read. The result is the caller's to change until it calls
 * `releaseCatalog`; in a warm process its plugins map is the one kept for the store (see PluginMap).
 */
export async function loadCatalog(store: Store): Promise<Catalog> {
  const catalog = emptyCatalog();
  const meta = await store.get(CATALOG_META_KEY);
  if (meta) parseMeta(utf8Decoder.decode(meta.body), catalog);
  if (catalog.outdated) return catalog;
  const cache = cacheOf(store);
  const wanted = [...catalog.bins].filter(([bin, digest]) => cache.get(bin)?.sha256 !== digest);
  const fresh = new Map<string, CachedBin>();
  // Read side by side: a cold process reads all 256, and a store's latency adds up one by one.
  let next = 0;
  const reader = async (): Promise<void> => {
    while (next < wanted.length) {
      const [bin] = wanted[next++] as [string, string];
      const object = await store.get(catalogBinKey(bin));
      if (!object) continue;
      const plugins = parseBin(object.body, bin);
      // A bin of another format: the catalog cannot be rendered from.
      if (!plugins) catalog.outdated = true;
      else {
        const cached = { sha256: sha256Hex(object.body), plugins };
        cache.set(bin, cached);
        fresh.set(bin, cached);
      }
    }
  };
  const [journal] = await Promise.all([
    readJournal(store, catalog),
    ...Array.from({ length: Math.min(BIN_READS_IN_FLIGHT, wanted.length) }, reader),
  ]);
  if (!journal) catalog.outdated = true;
  if (catalog.outdated || !journal) return catalog;
  for (const lines of journal) for (const name of lines.keys()) catalog.journaled.add(name);
  // The bins as the meta file names them: read now, or kept from before at that digest (a bin the store
  // no longer has is left out, as it always was).
  const current = new Map<string, CachedBin>();
  for (const [bin, digest] of catalog.bins) {
    const cached = fresh.get(bin) ?? cache.get(bin);
    if (cached && (fresh.has(bin) || cached.sha256 === digest)) current.set(bin, cached);
  }
  let assembled = assembledByStore.get(store);
  if (assembled?.lent) {
    // Another run holds the kept map: this one gets a copy.
    for (const cached of current.values())
      for (const [name, line] of cached.plugins) catalog.plugins.set(name, line);
    for (const lines of journal) for (const [name, line] of lines) catalog.plugins.set(name, line);
    return catalog;
  }
  if (!assembled) {
    assembled = {
      plugins: new PluginMap(),
      members: new Map(),
      digests: new Map(),
      journal: [],
      journaled: new Set(),
      lent: false,
    };
    assembledByStore.set(store, assembled);
    assembledByMap.set(assembled.plugins, assembled);
  }
  const stale = new Set<string>();
  // A name a run set may be in no bin's record (a new plugin): it goes, and its bin comes back as stored.
  for (const name of assembled.plugins.dirty) {
    Map.prototype.delete.call(assembled.plugins, name);
    stale.add(binOf(name));
  }
  assembled.plugins.dirty.clear();
  // The journal as applied, unless it only grew since: the names it set go back to their bins first.
  const digests = catalog.journal.map((d) => d.sha256);
  const grown =
    assembled.journal.length <= digests.length && assembled.journal.every((d, i) => digests[i] === d);
  if (!grown) {
    for (const name of assembled.journaled) {
      Map.prototype.delete.call(assembled.plugins, name);
      stale.add(binOf(name));
    }
    assembled.journaled = new Set();
  }
  const applied = grown ? assembled.journal.length : 0;
  for (const bin of assembled.members.keys()) if (!current.has(bin)) stale.add(bin);
  for (const [bin, cached] of current) if (assembled.digests.get(bin) !== cached.sha256) stale.add(bin);
  for (const bin of stale) resyncBin(assembled, bin, current.get(bin));
  // Over the bins, oldest first: objects not applied before whole, the others where a bin was put back.
  journal.forEach((lines, index) => {
    for (const [name, line] of lines) {
      const bin = binOf(name);
      if (index < applied && !stale.has(bin)) continue;
      Map.prototype.set.call(assembled.plugins, name, line);
      assembled.journaled.add(name);
      let names = assembled.members.get(bin);
      if (!names) {
        names = new Set();
        assembled.members.set(bin, names);
      }
      names.add(name);
    }
  });
  assembled.journal = digests;
  assembled.lent = true;
  return { ...catalog, plugins: assembled.plugins };
}

/** Ends a run's use of a loaded catalog: the next load may lend its plugins map again. */
export function releaseCatalog(catalog: Catalog): void {
  const assembled = assembledByMap.get(catalog.plugins);
  if (assembled) assembled.lent = false;
}

/**
 * The names of the catalog's plugins in `bin`: from the kept map's record when the catalog has it (the
 * bin's names as loaded, and those changed since), else by looking at every name.
 */
function membersOf(catalog: Catalog, bins: ReadonlySet<string>): Map<string, string[]> {
  const byBin = new Map<string, string[]>();
  const add = (bin: string, name: string) => {
    let list = byBin.get(bin);
    if (!list) {
      list = [];
      byBin.set(bin, list);
    }
    list.push(name);
  };
  const assembled = assembledByMap.get(catalog.plugins);
  if (!assembled) {
    for (const [name, line] of catalog.plugins) {
      const bin = binOfLine(name, line);
      if (bins.has(bin)) add(bin, name);
    }
    return byBin;
  }
  const seen = new Set<string>();
  for (const bin of bins)
    for (const name of assembled.members.get(bin) ?? [])
      if (catalog.plugins.has(name)) {
        seen.add(name);
        add(bin, name);
      }
  for (const name of assembled.plugins.dirty) {
    const bin = binOf(name);
    if (bins.has(bin) && !seen.has(name) && catalog.plugins.has(name)) {
      seen.add(name);
      add(bin, name);
    }
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
 */
export async function saveCatalog(
  store: Store,
  catalog: Catalog,
  changed?: ReadonlySet<string>,
  write: CatalogWrite = 'bins',
): Promise<void> {
  const journaled =
    write === 'journal' && changed && changed.size > 0 && (await journalLines(store, catalog, changed));
  // A deferred publish that changed no plugin leaves the journal as it is.
  const folding =
    !journaled &&
    catalog.journal.length > 0 &&
    (changed === undefined || write === 'fold' || (write === 'journal' && changed.size > 0));
  const names = folding && changed ? new Set([...changed, ...catalog.journaled]) : changed;
  if (!journaled) await writeBins(store, catalog, names);
  const emptied = folding ? catalog.journal : [];
  if (folding) {
    catalog.journal = [];
    catalog.journaled.clear();
  }
  await store.put(CATALOG_META_KEY, utf8.encode(serializeMeta(catalog)), CATALOG_PUT);
  // No longer listed, so no longer read: also any a run wrote before it died, never listed, and after a
  // rebuild (every bin written from a catalog made anew), any the old catalog listed.
  if (emptied.length > 0 || changed === undefined)
    for await (const { key } of store.list(CATALOG_JOURNAL_PREFIX)) await store.delete(key);
}

/** Writes the bins of `changed` plugins (every bin when undefined). */
async function writeBins(
  store: Store,
  catalog: Catalog,
  changed: ReadonlySet<string> | undefined,
): Promise<void> {
  const wanted = changed ? new Set([...changed].map(binOf)) : undefined;
  // Only the members of the bins written are gathered and sorted, not every name of the registry.
  const byBin = wanted ? membersOf(catalog, wanted) : allByBin(catalog);
  const bins = wanted ?? new Set(byBin.keys());
  const cache = cacheOf(store);
  for (const bin of [...bins].sort()) {
    const members = (byBin.get(bin) ?? []).sort();
    const key = catalogBinKey(bin);
    const body = serializeBin(members, catalog.plugins);
    const digest = sha256Hex(body);
    await store.put(key, body, { ...CATALOG_PUT, sha256: digest });
    catalog.bins.set(bin, digest);
    // Kept as read back from these bytes: its lines then hold no strings, only views.
    cache.set(bin, { sha256: digest, plugins: parseBin(body, bin) as Map<string, CatalogLine> });
  }
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

function allByBin(catalog: Catalog): Map<string, string[]> {
  const byBin = new Map<string, string[]>();
  for (const [name, line] of catalog.plugins) {
    const bin = binOfLine(name, line);
    const list = byBin.get(bin);
    if (list) list.push(name);
    else byBin.set(bin, [name]);
  }
  return byBin;
}

export function sortedNames(catalog: Catalog): string[] {
  return [...catalog.plugins.keys()].sort();
}

/** Sorted names of the plugins in `bins` only: a publish renders its bins without sorting every name. */
export function namesInBins(catalog: Catalog, bins: ReadonlySet<string>): string[] {
  return [...membersOf(catalog, bins).values()].flat().sort();
}

/** The api versions of `lines`, each once, sorted (the registry metadata's `supported_api_versions`). */
export function apiVersionsOf(lines: readonly CatalogLine[]): string[] {
  const versions = new Set<string>();
  const fields = new Set<string>();
  for (const line of lines) {
    if (line instanceof StoredLine) fields.add(line.apiVersionsField);
    else for (const v of line.apiVersions) versions.add(v);
  }
  for (const field of fields) if (field) for (const v of field.split(',')) versions.add(v);
  return [...versions].sort();
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
