/**
 * The catalog: the registry's internal state, from which the global documents are rendered without reading
 * any plugin document. One line per plugin holds its index entry and search row already serialized, so a
 * publish parses only the lines of the plugins it changes and renders `index.json`, `index.yaml` and
 * `search.json` by concatenation: the cost of a publish at 10,000 plugins is writing the global files, not
 * re-serializing them.
 *
 * Format (text, one record per line, fields separated by tabs; JSON never contains a raw tab or newline):
 *   plugindex-catalog 2
 *   generation <n>
 *   global <key> <sha256> <size>
 *   plugin <name> <doc sha256> <doc size> <api versions, comma-separated> <entry JSON> <search JSON>
 */
import { createHash } from 'node:crypto';
import type { PluginDocument } from './model.ts';
import { buildIndexEntry, buildSearchEntry, type DocumentDigest } from './render/documents.ts';

export interface CatalogLine {
  readonly document: DocumentDigest;
  readonly apiVersions: readonly string[];
  /** The plugin's entry in index.json, serialized. */
  readonly entry: string;
  /** The plugin's row in search.json, serialized. */
  readonly search: string;
}

export interface Catalog {
  generation: number;
  readonly plugins: Map<string, CatalogLine>;
  readonly globals: Map<string, DocumentDigest>;
}

const HEADER = 'plugindex-catalog 2';

export function emptyCatalog(): Catalog {
  return { generation: 0, plugins: new Map(), globals: new Map() };
}

export function catalogLineOf(doc: PluginDocument, document: DocumentDigest): CatalogLine {
  return {
    document,
    apiVersions: [...new Set(doc.versions.map((v) => v.api_version))],
    entry: JSON.stringify(buildIndexEntry(doc)),
    search: JSON.stringify(buildSearchEntry(doc)),
  };
}

/** Reads a catalog; an unknown or damaged one reads as empty, and the next full rebuild recreates it. */
export function parseCatalog(text: string): Catalog {
  const catalog = emptyCatalog();
  const lines = text.split('\n');
  if (lines[0] !== HEADER) return catalog;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line === '') continue;
    const fields = line.split('\t');
    if (fields[0] === 'generation') catalog.generation = Number(fields[1]) || 0;
    else if (fields[0] === 'global' && fields.length === 4) {
      catalog.globals.set(fields[1] as string, { sha256: fields[2] as string, size: Number(fields[3]) });
    } else if (fields[0] === 'plugin' && fields.length === 7) {
      catalog.plugins.set(fields[1] as string, {
        document: { sha256: fields[2] as string, size: Number(fields[3]) },
        apiVersions: fields[4] ? (fields[4] as string).split(',') : [],
        entry: fields[5] as string,
        search: fields[6] as string,
      });
    }
  }
  return catalog;
}

export function serializeCatalog(catalog: Catalog): string {
  const out = [HEADER, `generation\t${catalog.generation}`];
  for (const [key, d] of [...catalog.globals].sort(([a], [b]) => (a < b ? -1 : 1)))
    out.push(`global\t${key}\t${d.sha256}\t${d.size}`);
  for (const name of sortedNames(catalog)) {
    const p = catalog.plugins.get(name) as CatalogLine;
    out.push(
      `plugin\t${name}\t${p.document.sha256}\t${p.document.size}\t${p.apiVersions.join(',')}\t${p.entry}\t${p.search}`,
    );
  }
  return `${out.join('\n')}\n`;
}

export function sortedNames(catalog: Catalog): string[] {
  return [...catalog.plugins.keys()].sort();
}

/** `index.json`, compact, rendered by concatenation; equal to JSON.stringify of the whole document. */
export function renderIndexJson(metadata: object, entries: readonly string[]): string {
  return `{"registry_version":"1.0.0","registry_metadata":${JSON.stringify(metadata)},"plugins":[${entries.join(',')}]}\n`;
}

/**
 * `index.yaml`: the same document as index.json. The header is block YAML; each plugin is one flow mapping
 * (its JSON entry, which is valid YAML), so the file is written by concatenation at any size.
 */
export function renderIndexYaml(header: string, entries: readonly string[]): string {
  if (entries.length === 0) return `${header}plugins: []\n`;
  let out = `${header}plugins:\n`;
  for (const entry of entries) out += `- ${entry}\n`;
  return out;
}

export function renderSearchJson(generated: string, rows: readonly string[]): string {
  return `{"schema":"plugindex/search/v1","generated":${JSON.stringify(generated)},"plugins":[${rows.join(',')}]}\n`;
}

/** Number of snapshot bins: plugin documents are bound by digest in 256 small bin files (TUF's hashed bins). */
export const BIN_COUNT = 256;

/** The bin a plugin's document is listed in: the first byte of sha256(name), as two hex digits. */
export function binOf(name: string): string {
  return createHash('sha256').update(name).digest('hex').slice(0, 2);
}

export function binKey(bin: string): string {
  return `snapshot/bins/${bin}.json`;
}

/**
 * The bin documents for `bins`: path -> digest of every plugin document whose name falls in the bin.
 * One pass over the catalog, however many bins are asked for.
 */
export function renderBins(catalog: Catalog, bins: ReadonlySet<string>): Map<string, string> {
  const grouped = new Map<string, Record<string, DocumentDigest>>([...bins].map((bin) => [bin, {}]));
  for (const name of sortedNames(catalog)) {
    const documents = grouped.get(binOf(name));
    if (documents)
      documents[`plugins/${name}/index.json`] = (catalog.plugins.get(name) as CatalogLine).document;
  }
  return new Map(
    [...grouped].map(([bin, documents]) => [
      bin,
      `${JSON.stringify({ schema: 'plugindex/bin/v1', bin, documents }, null, 2)}\n`,
    ]),
  );
}
