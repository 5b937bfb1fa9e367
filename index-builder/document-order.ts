/**
 * The order of the index documents as last rendered (`state/catalog/order.tsv`): every plugin's name in
 * document order, the byte lengths of its three items (its entry in index.json and index.yaml, its row in
 * search.json, its item in falcoctl/index.yaml) and its api versions, beside the digests of the documents it
 * describes. With it, the next rendering is a merge: the published documents already hold every unchanged
 * item, in order, so a publish of one plugin takes those bytes as they are (a slice of the old document
 * between two changed items) and renders only the changed plugins' items, where a full rendering reads every
 * catalog bin, sorts every name and copies every byte (at 10,000 plugins, most of a publish's time).
 *
 * What a merge may trust is bounded: the order file is named by digest in the catalog's meta file, and each
 * old document is checked against the digest the order records before a byte of it is used, so a run that
 * died between writing documents and saving the catalog, or a document changed by hand, makes the next
 * rendering a full one. Pure: bytes in, bytes out.
 */
import type { DocumentDigest } from './model.ts';

const HEADER = 'plugindex-order 1';
const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

/** Offsets of a name's three item lengths in `DocumentOrder.lengths` (three numbers a name). */
export const ORDER_ENTRY = 0;
export const ORDER_SEARCH = 1;
export const ORDER_FALCOCTL = 2;

/** A document as written: its digest, and the store's validator for it when the store gave one. */
export interface WrittenDocument extends DocumentDigest {
  /**
   * The store's ETag for the object as written (a strong validator): an object that still has it holds
   * these bytes, and need not be hashed again to be trusted.
   */
  readonly etag?: string;
}

export interface DocumentOrder {
  /** The documents rendered in this order, as written: what the published bytes must still be. */
  readonly documents: ReadonlyMap<string, WrittenDocument>;
  /** Every name, sorted (the documents' order). */
  readonly names: readonly string[];
  /** Per name, in that order: the bytes of its entry, search row and falcoctl item. */
  readonly lengths: Uint32Array;
  /** Per name, in that order: its api versions as the catalog stores them (comma-separated). */
  readonly apiVersions: readonly string[];
}

export function serializeOrder(order: DocumentOrder): Uint8Array {
  const out = [HEADER];
  for (const [key, { sha256, size, etag }] of [...order.documents].sort(([a], [b]) => (a < b ? -1 : 1)))
    out.push(`document\t${key}\t${sha256}\t${size}${etag && !/[\t\n]/.test(etag) ? `\t${etag}` : ''}`);
  const { names, lengths, apiVersions } = order;
  for (let i = 0; i < names.length; i++)
    out.push(
      `${names[i]}\t${lengths[i * 3]}\t${lengths[i * 3 + 1]}\t${lengths[i * 3 + 2]}\t${apiVersions[i]}`,
    );
  return utf8.encode(`${out.join('\n')}\n`);
}

/** An order file's contents; undefined when it is of another format or not well formed (never trusted). */
export function parseOrder(bytes: Uint8Array): DocumentOrder | undefined {
  const lines = utf8Decoder.decode(bytes).split('\n');
  if (lines[0] !== HEADER || lines.at(-1) !== '') return undefined;
  const documents = new Map<string, WrittenDocument>();
  let i = 1;
  for (; i < lines.length - 1 && (lines[i] as string).startsWith('document\t'); i++) {
    const fields = (lines[i] as string).split('\t');
    const size = Number(fields[3]);
    if (fields.length < 4 || fields.length > 5) return undefined;
    if (!/^[0-9a-f]{64}$/.test(fields[2] as string) || !Number.isSafeInteger(size)) return undefined;
    const etag = fields[4];
    documents.set(fields[1] as string, { sha256: fields[2] as string, size, ...(etag ? { etag } : {}) });
  }
  const count = lines.length - 1 - i;
  const names: string[] = new Array(count);
  const lengths = new Uint32Array(count * 3);
  const apiVersions: string[] = new Array(count);
  for (let n = 0; n < count; n++) {
    const fields = (lines[i + n] as string).split('\t');
    if (fields.length !== 5) return undefined;
    const name = fields[0] as string;
    if (n > 0 && !((names[n - 1] as string) < name)) return undefined;
    names[n] = name;
    for (let k = 0; k < 3; k++) {
      const value = Number(fields[k + 1]);
      if (!Number.isSafeInteger(value) || value < 0 || value > 0xffffffff) return undefined;
      lengths[n * 3 + k] = value;
    }
    apiVersions[n] = fields[4] as string;
  }
  return { documents, names, lengths, apiVersions };
}

/** A changed plugin's three items, or undefined for one that is no longer in the registry. */
export interface ChangedItems {
  readonly entry: Uint8Array;
  readonly search: Uint8Array;
  readonly falcoctl: Uint8Array;
  readonly apiVersions: string;
}

/**
 * One step of a merged document, in document order: a run of consecutive old items (`from` to `to`,
 * exclusive, by their index in the old order), or a changed plugin's new item.
 */
export type MergeStep =
  | { readonly old: readonly [from: number, to: number] }
  | { readonly changed: ChangedItems };

export interface MergePlan {
  /** The documents' new order (its `documents` empty: they are known once written). */
  readonly order: DocumentOrder;
  readonly steps: readonly MergeStep[];
}

/** The first index in sorted `names` whose name is not before `name`. */
function lowerBound(names: readonly string[], name: string): number {
  let low = 0;
  let high = names.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if ((names[mid] as string) < name) low = mid + 1;
    else high = mid;
  }
  return low;
}

/**
 * The merge of `changed` plugins into `old`: each changed name replaces its old item, or is inserted in
 * name order, or (without items) is left out; every other item stays as it was, in runs.
 */
export function planMerge(
  old: DocumentOrder,
  changed: ReadonlyMap<string, ChangedItems | undefined>,
): MergePlan {
  const steps: MergeStep[] = [];
  const names: string[] = [];
  const lengths: number[] = [];
  const apiVersions: string[] = [];
  let next = 0;
  const keep = (to: number) => {
    if (to <= next) return;
    steps.push({ old: [next, to] });
    for (let i = next; i < to; i++) {
      names.push(old.names[i] as string);
      lengths.push(
        old.lengths[i * 3] as number,
        old.lengths[i * 3 + 1] as number,
        old.lengths[i * 3 + 2] as number,
      );
      apiVersions.push(old.apiVersions[i] as string);
    }
    next = to;
  };
  for (const name of [...changed.keys()].sort()) {
    const at = lowerBound(old.names, name);
    keep(at);
    if (old.names[at] === name) next = at + 1;
    const items = changed.get(name);
    if (!items) continue;
    steps.push({ changed: items });
    names.push(name);
    lengths.push(items.entry.byteLength, items.search.byteLength, items.falcoctl.byteLength);
    apiVersions.push(items.apiVersions);
  }
  keep(old.names.length);
  return { order: { documents: new Map(), names, lengths: Uint32Array.from(lengths), apiVersions }, steps };
}

/** The union of `fields` (comma-separated api versions), each once, sorted. */
export function apiVersionsOfFields(fields: Iterable<string>): string[] {
  const distinct = new Set(fields);
  const versions = new Set<string>();
  for (const field of distinct) if (field) for (const v of field.split(',')) versions.add(v);
  return [...versions].sort();
}
