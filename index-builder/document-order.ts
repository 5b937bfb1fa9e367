/**
 * The order of the index documents as last rendered (`state/catalog/order.bin`): every plugin's name in
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
import { Buffer } from 'node:buffer';
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

/** Whether this machine stores a Uint32 low byte first (every platform Node runs on here; checked). */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** `lengths` as little-endian bytes. */
function lengthBytes(lengths: Uint32Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(lengths.buffer, lengths.byteOffset, lengths.byteLength);
  const bytes = new Uint8Array(lengths.byteLength);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < lengths.length; i++) view.setUint32(i * 4, lengths[i] as number, true);
  return bytes;
}

/** Little-endian bytes as lengths (a copy, aligned). */
function lengthsOf(bytes: Uint8Array): Uint32Array {
  // A copy of its own, at offset 0 of its own memory, whatever `bytes` is a view of (a Buffer's `slice` is
  // no copy: Uint8Array's is).
  const copy = Uint8Array.prototype.slice.call(bytes);
  if (LITTLE_ENDIAN) return new Uint32Array(copy.buffer, 0, copy.byteLength / 4);
  const view = new DataView(copy.buffer);
  return Uint32Array.from({ length: copy.byteLength / 4 }, (_, i) => view.getUint32(i * 4, true));
}

/**
 * The order file: a header line, one line per document (`document <key> <sha256> <size> [<etag>]`), then the
 * names (`names <count> <bytes>` and that many bytes of names, one a line), the api versions
 * (`api <bytes>`, one a line, in the same order) and the lengths (`lengths <bytes>`, three little-endian
 * 32-bit numbers a name): columns rather than a line a plugin, so a cold process reads 10,000 names with one
 * split and the lengths with one copy, where a line a plugin took tens of milliseconds to parse.
 */
export function serializeOrder(order: DocumentOrder): Uint8Array {
  const head = [HEADER];
  for (const [key, { sha256, size, etag }] of [...order.documents].sort(([a], [b]) => (a < b ? -1 : 1)))
    head.push(`document\t${key}\t${sha256}\t${size}${etag && !/[\t\n]/.test(etag) ? `\t${etag}` : ''}`);
  const names = utf8.encode(order.names.join('\n'));
  const api = utf8.encode(order.apiVersions.join('\n'));
  const lengths = lengthBytes(order.lengths);
  const parts = [
    utf8.encode(`${head.join('\n')}\nnames\t${order.names.length}\t${names.byteLength}\n`),
    names,
    utf8.encode(`\napi\t${api.byteLength}\n`),
    api,
    utf8.encode(`\nlengths\t${lengths.byteLength}\n`),
    lengths,
  ];
  return Buffer.concat(parts);
}

/** Reads an order file from the start: its text lines, and blocks of bytes their lines announce. */
class OrderReader {
  at = 0;
  constructor(readonly bytes: Uint8Array) {}

  /** The next line's tab-separated fields; undefined at the end. */
  line(): string[] | undefined {
    const end = this.bytes.indexOf(0x0a, this.at);
    if (end < 0) return undefined;
    const fields = utf8Decoder.decode(this.bytes.subarray(this.at, end)).split('\t');
    this.at = end + 1;
    return fields;
  }

  /** The next `size` bytes, then a line break unless `last`; undefined when they are not there. */
  block(size: number, last = false): Uint8Array | undefined {
    const end = this.at + size;
    if (!Number.isSafeInteger(size) || size < 0 || end > this.bytes.byteLength) return undefined;
    if (!last && this.bytes[end] !== 0x0a) return undefined;
    const block = this.bytes.subarray(this.at, end);
    this.at = last ? end : end + 1;
    return block;
  }
}

/** An order file's contents; undefined when it is of another format or not well formed (never trusted). */
export function parseOrder(bytes: Uint8Array): DocumentOrder | undefined {
  const reader = new OrderReader(bytes);
  if (reader.line()?.join('\t') !== HEADER) return undefined;
  const documents = new Map<string, WrittenDocument>();
  let fields = reader.line();
  for (; fields?.[0] === 'document'; fields = reader.line()) {
    const size = Number(fields[3]);
    if (fields.length < 4 || fields.length > 5) return undefined;
    if (!/^[0-9a-f]{64}$/.test(fields[2] as string) || !Number.isSafeInteger(size)) return undefined;
    const etag = fields[4];
    documents.set(fields[1] as string, { sha256: fields[2] as string, size, ...(etag ? { etag } : {}) });
  }
  if (fields?.[0] !== 'names' || fields.length !== 3) return undefined;
  const count = Number(fields[1]);
  const nameBytes = reader.block(Number(fields[2]));
  if (!nameBytes || !Number.isSafeInteger(count)) return undefined;
  const names = count === 0 ? [] : utf8Decoder.decode(nameBytes).split('\n');
  fields = reader.line();
  const apiBytes = fields?.[0] === 'api' && fields.length === 2 ? reader.block(Number(fields[1])) : undefined;
  if (!apiBytes) return undefined;
  const apiVersions = count === 0 ? [] : utf8Decoder.decode(apiBytes).split('\n');
  fields = reader.line();
  const lengthBlock =
    fields?.[0] === 'lengths' && fields.length === 2 ? reader.block(Number(fields[1]), true) : undefined;
  if (!lengthBlock || reader.at !== bytes.byteLength) return undefined;
  if (names.length !== count || apiVersions.length !== count || lengthBlock.byteLength !== count * 12)
    return undefined;
  for (let i = 1; i < count; i++) if (!((names[i - 1] as string) < (names[i] as string))) return undefined;
  return { documents, names, lengths: lengthsOf(lengthBlock), apiVersions };
}

/** The items of `parts` (single items, or arrays of them) in one array, by concat (native, run by run). */
function concatAll<T>(parts: readonly (T | readonly T[])[]): T[] {
  let out: T[] = [];
  // A call's arguments are bounded (a spread of 100,000 overflows the stack): a few thousand at a time.
  for (let at = 0; at < parts.length; at += 4096) out = out.concat(...parts.slice(at, at + 4096));
  return out;
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
  | { readonly changed: ChangedItems; readonly name: string };

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
  let next = 0;
  let count = 0;
  for (const name of [...changed.keys()].sort()) {
    const at = lowerBound(old.names, name);
    if (at > next) steps.push({ old: [next, at] });
    count += Math.max(0, at - next);
    next = Math.max(next, old.names[at] === name ? at + 1 : at);
    const items = changed.get(name);
    if (!items) continue;
    steps.push({ changed: items, name });
    count++;
  }
  if (old.names.length > next) steps.push({ old: [next, old.names.length] });
  count += Math.max(0, old.names.length - next);
  // Runs of old names, lengths and api versions copied as runs (slices joined by one concat).
  const nameParts: (string | readonly string[])[] = [];
  const apiParts: (string | readonly string[])[] = [];
  const lengths = new Uint32Array(count * 3);
  let at = 0;
  for (const step of steps) {
    if ('old' in step) {
      const [from, to] = step.old;
      nameParts.push(old.names.slice(from, to));
      apiParts.push(old.apiVersions.slice(from, to));
      lengths.set(old.lengths.subarray(from * 3, to * 3), at * 3);
      at += to - from;
    } else {
      const { changed: items } = step;
      nameParts.push(step.name);
      apiParts.push(items.apiVersions);
      lengths.set([items.entry.byteLength, items.search.byteLength, items.falcoctl.byteLength], at * 3);
      at++;
    }
  }
  const names = concatAll(nameParts);
  const apiVersions = concatAll(apiParts);
  return { order: { documents: new Map(), names, lengths, apiVersions }, steps };
}

/** The union of `fields` (comma-separated api versions), each once, sorted. */
export function apiVersionsOfFields(fields: Iterable<string>): string[] {
  const distinct = new Set(fields);
  const versions = new Set<string>();
  for (const field of distinct) if (field) for (const v of field.split(',')) versions.add(v);
  return [...versions].sort();
}
