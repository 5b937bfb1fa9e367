/**
 * The catalog: the registry's internal state, from which the registry-wide documents are rendered without
 * reading any plugin document. Each plugin has one line holding its index entry, search row and falcoctl
 * index entry already serialized, so a publish parses only what changed, and `index.json`, `index.yaml`,
 * `search.json` and `falcoctl/index.yaml` are rendered by concatenating lines (render/index-documents.ts): at 10,000 plugins the cost of a publish is
 * writing the global files, not re-serializing them.
 *
 * Storage (in the intake store, never published): `state/catalog/meta.tsv` holds the generation and the
 * digests of global documents; `state/catalog/bins/<bin>.tsv` holds the lines of the plugins whose names
 * fall in that bin (the same 256 bins as the snapshot). A publish rewrites the meta file and one bin per
 * changed plugin. A process keeps the bins it has read, checked by ETag, so a warm process (the local
 * server, a warm Lambda) reads only what another writer changed.
 *
 * Line format: fields separated by tabs (JSON never contains a raw tab or newline):
 *   generation <n>
 *   pending indexes                      (only while the index documents lag: see Catalog.indexesPending)
 *   global <key> <sha256> <size>
 *   plugin <name> <doc sha256> <doc size> <api versions, comma-separated> <entry JSON> <search JSON>
 *          <falcoctl entry JSON>
 */
import { sha256Hex } from './digest.ts';
import { binOf, CATALOG_META_KEY, catalogBinKey } from './layout.ts';
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
  /** The plugin's entry in falcoctl/index.yaml, serialized as JSON (rendered as a YAML item: falcoctlItem). */
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

// 4: lines gained the falcoctl entry. A catalog of another format reads as empty and outdated; the pipeline
// then rebuilds it from the plugin documents before it publishes.
const HEADER = 'plugindex-catalog 4';

export function emptyCatalog(): Catalog {
  return {
    generation: 0,
    plugins: new Map(),
    registryDigests: new Map(),
    bins: new Map(),
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
    falcoctl: stringifyJson(buildFalcoctlEntry(doc, registryUrl)),
  };
}

/** Reads catalog lines; a file with an unknown header reads as empty and marks the catalog outdated. */
function parseCatalogLines(text: string, into: Catalog): void {
  const lines = text.split('\n');
  if (lines[0] !== HEADER) {
    into.outdated = true;
    return;
  }
  for (let i = 1; i < lines.length; i++) {
    const fields = (lines[i] as string).split('\t');
    if (fields[0] === 'generation') into.generation = Number(fields[1]) || 0;
    else if (fields[0] === 'pending' && fields[1] === 'indexes') into.indexesPending = true;
    else if (fields[0] === 'bin' && fields.length === 3)
      into.bins.set(fields[1] as string, fields[2] as string);
    else if (fields[0] === 'global' && fields.length === 4) {
      into.registryDigests.set(fields[1] as string, { sha256: fields[2] as string, size: Number(fields[3]) });
    } else if (fields[0] === 'plugin' && fields.length === 8) {
      into.plugins.set(fields[1] as string, {
        document: { sha256: fields[2] as string, size: Number(fields[3]) },
        apiVersions: fields[4] ? (fields[4] as string).split(',') : [],
        entry: fields[5] as string,
        search: fields[6] as string,
        falcoctl: fields[7] as string,
      });
    }
  }
}

function serializeMeta(catalog: Catalog): string {
  const out = [HEADER, `generation\t${catalog.generation}`];
  if (catalog.indexesPending) out.push('pending\tindexes');
  for (const [bin, digest] of [...catalog.bins].sort(([a], [b]) => (a < b ? -1 : 1)))
    out.push(`bin\t${bin}\t${digest}`);
  for (const [key, d] of [...catalog.registryDigests].sort(([a], [b]) => (a < b ? -1 : 1)))
    out.push(`global\t${key}\t${d.sha256}\t${d.size}`);
  return `${out.join('\n')}\n`;
}

function serializePlugins(names: readonly string[], plugins: ReadonlyMap<string, CatalogLine>): string {
  const out = [HEADER];
  for (const name of names) {
    const p = plugins.get(name) as CatalogLine;
    out.push(
      `plugin\t${name}\t${p.document.sha256}\t${p.document.size}\t${p.apiVersions.join(',')}\t${p.entry}\t${p.search}\t${p.falcoctl}`,
    );
  }
  return `${out.join('\n')}\n`;
}

interface CachedBin {
  readonly sha256: string;
  readonly plugins: ReadonlyMap<string, CatalogLine>;
}

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
  /** Bin -> the names the map holds from it, as of the last load (plus `plugins.dirty`). */
  readonly members: Map<string, ReadonlySet<string>>;
  /** Bin -> the digest of the catalog bin the map holds. */
  readonly digests: Map<string, string>;
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

/**
 * Loads the catalog from the intake store. The meta file names every bin with its digest, so only bins
 * this process has not seen in that state are read. The result is the caller's to change until it calls
 * `releaseCatalog`; in a warm process its plugins map is the one kept for the store (see PluginMap).
 */
export async function loadCatalog(store: Store): Promise<Catalog> {
  const catalog = emptyCatalog();
  const meta = await store.get(CATALOG_META_KEY);
  if (meta) parseCatalogLines(new TextDecoder().decode(meta.body), catalog);
  const cache = cacheOf(store);
  const current = new Map<string, CachedBin>();
  for (const [bin, digest] of catalog.bins) {
    let cached = cache.get(bin);
    if (!cached || cached.sha256 !== digest) {
      const object = await store.get(catalogBinKey(bin));
      if (!object) continue;
      const part = emptyCatalog();
      parseCatalogLines(new TextDecoder().decode(object.body), part);
      cached = { sha256: sha256Hex(object.body), plugins: part.plugins };
      cache.set(bin, cached);
    }
    current.set(bin, cached);
  }
  let assembled = assembledByStore.get(store);
  if (assembled?.lent) {
    // Another run holds the kept map: this one gets a copy.
    for (const cached of current.values())
      for (const [name, line] of cached.plugins) catalog.plugins.set(name, line);
    return catalog;
  }
  if (!assembled) {
    assembled = { plugins: new PluginMap(), members: new Map(), digests: new Map(), lent: false };
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
  for (const bin of assembled.members.keys()) if (!current.has(bin)) stale.add(bin);
  for (const [bin, cached] of current) if (assembled.digests.get(bin) !== cached.sha256) stale.add(bin);
  for (const bin of stale) resyncBin(assembled, bin, current.get(bin));
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
    for (const name of catalog.plugins.keys()) {
      const bin = binOf(name);
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

/** Saves the catalog: the bins of `changed` plugins (every bin when undefined), then the meta file. */
export async function saveCatalog(
  store: Store,
  catalog: Catalog,
  changed?: ReadonlySet<string>,
): Promise<void> {
  const wanted = changed ? new Set([...changed].map(binOf)) : undefined;
  // Only the members of the bins written are gathered and sorted, not every name of the registry.
  const byBin = wanted ? membersOf(catalog, wanted) : allByBin(catalog);
  const bins = wanted ?? new Set(byBin.keys());
  const cache = cacheOf(store);
  const options = { contentType: 'text/tab-separated-values', cacheControl: CACHE_PRIVATE };
  for (const bin of [...bins].sort()) {
    const members = (byBin.get(bin) ?? []).sort();
    const key = catalogBinKey(bin);
    const body = new TextEncoder().encode(serializePlugins(members, catalog.plugins));
    const digest = sha256Hex(body);
    await store.put(key, body, { ...options, sha256: digest });
    catalog.bins.set(bin, digest);
    cache.set(bin, {
      sha256: digest,
      plugins: new Map(members.map((n) => [n, catalog.plugins.get(n) as CatalogLine])),
    });
  }
  await store.put(CATALOG_META_KEY, new TextEncoder().encode(serializeMeta(catalog)), options);
}

function allByBin(catalog: Catalog): Map<string, string[]> {
  const byBin = new Map<string, string[]>();
  for (const name of catalog.plugins.keys()) {
    const bin = binOf(name);
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

/**
 * A line's entry and search row as UTF-8, each encoded once per line, when a buffered render first needs it.
 * Lines are replaced, never changed, when a plugin changes, so a warm process re-encodes only the changed
 * plugins: encoding the whole 28 MB index again would cost more than writing it. Kept apart, so a registry
 * whose index is streamed (render/index-documents.ts `layoutChunks`) never holds its entries twice.
 */
const encodedEntries = new WeakMap<CatalogLine, Uint8Array>();
const encodedSearchRows = new WeakMap<CatalogLine, Uint8Array>();
const utf8 = new TextEncoder();

export function entryBytes(line: CatalogLine): Uint8Array {
  let bytes = encodedEntries.get(line);
  if (!bytes) {
    bytes = utf8.encode(line.entry);
    encodedEntries.set(line, bytes);
  }
  return bytes;
}

export function searchBytes(line: CatalogLine): Uint8Array {
  let bytes = encodedSearchRows.get(line);
  if (!bytes) {
    bytes = utf8.encode(line.search);
    encodedSearchRows.set(line, bytes);
  }
  return bytes;
}

/**
 * A line's falcoctl entry as a block-style YAML list item, rendered once per line (lines are replaced, never
 * changed), and only when the falcoctl index is rendered: the catalog stores JSON, as a tab-separated line
 * cannot hold the item's line breaks.
 */
const falcoctlItems = new WeakMap<CatalogLine, Uint8Array>();

export function falcoctlItem(line: CatalogLine): Uint8Array {
  let bytes = falcoctlItems.get(line);
  if (!bytes) {
    bytes = utf8.encode(toYaml([JSON.parse(line.falcoctl) as object]));
    falcoctlItems.set(line, bytes);
  }
  return bytes;
}
