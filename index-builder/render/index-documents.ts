/**
 * The index documents (`index.json`, `index.yaml`, `search.json`, `falcoctl/index.yaml`), rendered by concatenation: each plugin's
 * entry and search row are serialized once, when the plugin changes (the catalog's lines), and a render
 * joins those bytes between a header and a footer. At 10,000 plugins of 10 versions these are about 59 MB,
 * rendered at every publish that does not defer them, so every byte is copied once, into a buffer kept
 * between publishes (BufferPool).
 */
import { Buffer } from 'node:buffer';
import { createSha256, type Sha256 } from '../digest.ts';
import type { ChangedItems, MergeStep } from '../document-order.ts';
import { PlugindexError } from '../errors.ts';
import type { DocumentDigest } from '../model.ts';
import { stringifyJson } from '../text.ts';

const utf8 = new TextEncoder();

/** Gives a buffer of exactly `size` bytes to render into. */
export type Allocate = (size: number) => Uint8Array;

const freshBuffer: Allocate = (size) => new Uint8Array(size);

/**
 * Buffers kept for the next render of the global documents. A fresh 28 MB buffer costs more in page faults
 * than the copy into it (about 11 ms against 2 ms here), and the documents are rendered at every publish.
 * `take` hands out a buffer no one else holds; `give` returns buffers once nothing reads them any more.
 */
export class BufferPool {
  readonly #free: ArrayBuffer[] = [];
  /** Buffers this pool made: only those come back (never, say, a slice of Node's shared Buffer pool). */
  readonly #own = new WeakSet<ArrayBufferLike>();

  constructor(private readonly keep: number) {}

  readonly take: Allocate = (size) => {
    const index = this.#free.findIndex((buffer) => buffer.byteLength >= size);
    let buffer = index >= 0 ? this.#free.splice(index, 1)[0] : undefined;
    if (!buffer) {
      // Headroom, so a registry that grows a little does not need a new buffer at every publish.
      buffer = new ArrayBuffer(Math.ceil(size * 1.125));
      this.#own.add(buffer);
    }
    return new Uint8Array(buffer, 0, size);
  };

  give(views: readonly Uint8Array[]): void {
    for (const { buffer } of views) {
      if (this.#free.length >= this.keep) return;
      if (buffer instanceof ArrayBuffer && this.#own.has(buffer) && !this.#free.includes(buffer)) {
        this.#free.push(buffer);
      }
    }
  }
}

/** Joins byte pieces into one buffer, with `separator` between them. */
function join(
  prefix: Uint8Array,
  parts: readonly Uint8Array[],
  separator: Uint8Array,
  suffix: Uint8Array,
  allocate: Allocate,
): Uint8Array {
  let length = prefix.byteLength + suffix.byteLength + separator.byteLength * Math.max(0, parts.length - 1);
  for (const part of parts) length += part.byteLength;
  const out = allocate(length);
  out.set(prefix, 0);
  let at = prefix.byteLength;
  for (let i = 0; i < parts.length; i++) {
    if (i > 0) {
      out.set(separator, at);
      at += separator.byteLength;
    }
    const part = parts[i] as Uint8Array;
    out.set(part, at);
    at += part.byteLength;
  }
  out.set(suffix, at);
  return out;
}

/**
 * How a document joins its items: bytes before, between and after them, and what it is with none. Both
 * renderings (one buffer, or chunks) follow the same layout, so they give the same bytes.
 */
export interface DocumentLayout {
  readonly prefix: string;
  readonly separator: string;
  readonly suffix: string;
  /** The whole document when there are no items (else prefix and suffix alone). */
  readonly empty?: string;
}

export function indexJsonLayout(metadata: object): DocumentLayout {
  const prefix = `{"registry_version":"1.0.0","registry_metadata":${stringifyJson(metadata)},"plugins":[`;
  return { prefix, separator: ',', suffix: ']}\n' };
}

/**
 * `index.yaml`: the same document as index.json. The header is block YAML; each plugin is one flow mapping
 * (its JSON entry, which is valid YAML), so the file is written by concatenation at any size.
 */
export function indexYamlLayout(header: string): DocumentLayout {
  return {
    prefix: `${header}plugins:\n- `,
    separator: '\n- ',
    suffix: '\n',
    empty: `${header}plugins: []\n`,
  };
}

export function searchJsonLayout(generated: string): DocumentLayout {
  const prefix = `{"schema":"plugindex/search/v1","generated":${stringifyJson(generated)},"plugins":[`;
  return { prefix, separator: ',', suffix: ']}\n' };
}

/**
 * `falcoctl/index.yaml`: a YAML list, one block-style item per plugin (each item rendered once per plugin
 * change, catalog.ts), concatenated; an empty registry is the empty list.
 */
export const FALCOCTL_LAYOUT: DocumentLayout = { prefix: '', separator: '', suffix: '', empty: '[]\n' };

export function renderLayout(
  layout: DocumentLayout,
  items: readonly Uint8Array[],
  allocate: Allocate,
): Uint8Array {
  if (items.length === 0 && layout.empty !== undefined) return utf8.encode(layout.empty);
  return join(
    utf8.encode(layout.prefix),
    items,
    utf8.encode(layout.separator),
    utf8.encode(layout.suffix),
    allocate,
  );
}

/**
 * `index.json`, compact, rendered by concatenating the plugins' serialized entries; equal to JSON.stringify
 * of the whole document.
 */
export function renderIndexJson(
  metadata: object,
  entries: readonly Uint8Array[],
  allocate: Allocate = freshBuffer,
): Uint8Array {
  return renderLayout(indexJsonLayout(metadata), entries, allocate);
}

export function renderIndexYaml(
  header: string,
  entries: readonly Uint8Array[],
  allocate: Allocate = freshBuffer,
): Uint8Array {
  return renderLayout(indexYamlLayout(header), entries, allocate);
}

export function renderSearchJson(
  generated: string,
  rows: readonly Uint8Array[],
  allocate: Allocate = freshBuffer,
): Uint8Array {
  return renderLayout(searchJsonLayout(generated), rows, allocate);
}

export function renderFalcoctlIndex(
  items: readonly Uint8Array[],
  allocate: Allocate = freshBuffer,
): Uint8Array {
  return renderLayout(FALCOCTL_LAYOUT, items, allocate);
}

/** UTF-8 length of a string, without encoding it. */
export function utf8Length(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/** The byte size of a document of `layout` whose items are `count` items of `itemBytes` bytes in all. */
export function layoutSize(layout: DocumentLayout, count: number, itemBytes: number): number {
  if (count === 0 && layout.empty !== undefined) return utf8Length(layout.empty);
  return (
    utf8Length(layout.prefix) +
    itemBytes +
    utf8Length(layout.separator) * Math.max(0, count - 1) +
    utf8Length(layout.suffix)
  );
}

/** Chunks a streamed document is cut into: big enough that per-chunk costs vanish, small against memory. */
export const CHUNK_BYTES = 1024 * 1024;

/**
 * A document of `layout` as chunks of about `CHUNK_BYTES`, items encoded as they are reached: what a
 * document too large to hold is rendered as (the same bytes `renderLayout` gives). Every chunk is a fresh
 * buffer, as its consumer (a hash, a compressor, an upload's part) may keep it.
 */
export function* layoutChunks(
  layout: DocumentLayout,
  items: Iterable<string | Uint8Array>,
  chunkBytes = CHUNK_BYTES,
): Generator<Uint8Array> {
  let chunk = new Uint8Array(chunkBytes);
  let at = 0;
  let count = 0;
  function* putBytes(piece: Uint8Array): Generator<Uint8Array> {
    for (let from = 0; from < piece.byteLength; ) {
      if (at === chunkBytes) {
        yield chunk;
        chunk = new Uint8Array(chunkBytes);
        at = 0;
      }
      const taken = Math.min(piece.byteLength - from, chunkBytes - at);
      chunk.set(piece.subarray(from, from + taken), at);
      at += taken;
      from += taken;
    }
  }
  function* put(piece: string | Uint8Array): Generator<Uint8Array> {
    if (typeof piece !== 'string') return yield* putBytes(piece);
    let rest = piece;
    while (rest.length > 0) {
      const { read, written } = utf8.encodeInto(rest, chunk.subarray(at));
      at += written;
      if (read === rest.length) return;
      // The next character does not fit whole in what is left: its bytes end this chunk and start the next.
      const code = rest.charCodeAt(read);
      const width = code >= 0xd800 && code <= 0xdbff ? 2 : 1;
      yield* putBytes(utf8.encode(rest.slice(read, read + width)));
      rest = rest.slice(read + width);
    }
  }
  for (const item of items) {
    yield* put(count === 0 ? layout.prefix : layout.separator);
    yield* put(item);
    count++;
  }
  if (count === 0 && layout.empty !== undefined) yield* put(layout.empty);
  else {
    if (count === 0) yield* put(layout.prefix);
    yield* put(layout.suffix);
  }
  if (at > 0) yield chunk.subarray(0, at);
}

/**
 * A document of `layout` as chunks of about `CHUNK_BYTES`, from its items' bytes one after another as they
 * arrive in any pieces (`feed`), cut into items by their lengths (`lengths[offset + i * stride]`, `count`
 * of them): what a document is rendered as from items spilled to a store in order (pipeline/commit.ts).
 * The same bytes `renderLayout` and `layoutChunks` give.
 */
export class LayoutCutter {
  readonly #prefix: Uint8Array;
  readonly #separator: Uint8Array;
  readonly #suffix: Uint8Array;
  readonly #empty: Uint8Array | undefined;
  #chunk: Uint8Array;
  #at = 0;
  /** Items started, and the bytes the last one started still lacks. */
  #started = 0;
  #left = 0;

  constructor(
    layout: DocumentLayout,
    private readonly lengths: ArrayLike<number>,
    private readonly count: number,
    private readonly stride = 1,
    private readonly offset = 0,
    private readonly chunkBytes = CHUNK_BYTES,
  ) {
    this.#prefix = utf8.encode(layout.prefix);
    this.#separator = utf8.encode(layout.separator);
    this.#suffix = utf8.encode(layout.suffix);
    this.#empty = layout.empty === undefined ? undefined : utf8.encode(layout.empty);
    this.#chunk = new Uint8Array(chunkBytes);
  }

  *#put(piece: Uint8Array): Generator<Uint8Array> {
    for (let from = 0; from < piece.byteLength; ) {
      if (this.#at === this.chunkBytes) {
        yield this.#chunk;
        this.#chunk = new Uint8Array(this.chunkBytes);
        this.#at = 0;
      }
      const taken = Math.min(piece.byteLength - from, this.chunkBytes - this.#at);
      this.#chunk.set(piece.subarray(from, from + taken), this.#at);
      this.#at += taken;
      from += taken;
    }
  }

  /** Starts the next item (its prefix or separator); false when every item is started. */
  *#start(): Generator<Uint8Array, boolean> {
    if (this.#started === this.count) return false;
    yield* this.#put(this.#started === 0 ? this.#prefix : this.#separator);
    this.#left = this.lengths[this.offset + this.#started * this.stride] as number;
    this.#started++;
    return true;
  }

  /** The next bytes of the items, in order. */
  *feed(bytes: Uint8Array): Generator<Uint8Array> {
    for (let from = 0; from < bytes.byteLength; ) {
      while (this.#left === 0)
        if (!(yield* this.#start())) throw new Error('LayoutCutter: more bytes than the items hold');
      const taken = Math.min(this.#left, bytes.byteLength - from);
      yield* this.#put(bytes.subarray(from, from + taken));
      this.#left -= taken;
      from += taken;
    }
  }

  /** The document's end, once every item's bytes were fed. */
  *finish(): Generator<Uint8Array> {
    while (this.#left === 0 && (yield* this.#start())) {}
    if (this.#left > 0 || this.#started < this.count)
      throw new Error('LayoutCutter: fewer bytes than the items hold');
    if (this.count === 0 && this.#empty !== undefined) yield* this.#put(this.#empty);
    else {
      if (this.count === 0) yield* this.#put(this.#prefix);
      yield* this.#put(this.#suffix);
    }
    if (this.#at > 0) yield this.#chunk.subarray(0, this.#at);
  }
}

/**
 * An old rendering of a document, read once from the start as its pieces come (one buffer, or a store's
 * stream), for a merge to take its unchanged items from (`splicedChunks`). With `expected`, every byte is
 * hashed as it passes and `finish` refuses bytes that are not the ones the order recorded.
 */
export class OldDocument {
  readonly #pieces: Iterator<Uint8Array> | AsyncIterator<Uint8Array>;
  readonly #hash: Sha256 | undefined;
  #piece: Uint8Array = new Uint8Array(0);
  /** Where `#piece` starts in the document, and the first byte of it not yet taken. */
  #start = 0;
  #at = 0;
  #ended = false;

  constructor(
    pieces: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
    private readonly key: string,
    private readonly expected?: DocumentDigest,
  ) {
    this.#pieces =
      Symbol.asyncIterator in pieces
        ? pieces[Symbol.asyncIterator]()
        : (pieces as Iterable<Uint8Array>)[Symbol.iterator]();
    this.#hash = expected ? createSha256() : undefined;
  }

  /** The next piece; false at the end. */
  async #pull(): Promise<boolean> {
    const next = await this.#pieces.next();
    if (next.done) {
      this.#ended = true;
      return false;
    }
    this.#start += this.#piece.byteLength;
    this.#piece = next.value;
    this.#hash?.update(next.value);
    return true;
  }

  /** The bytes from `from` to `to` (never before what was taken already), as views of the pieces. */
  async *take(from: number, to: number): AsyncGenerator<Uint8Array> {
    if (from < this.#at) throw new Error(`${this.key}: the merge went back in the old document`);
    this.#at = from;
    while (this.#at < to) {
      while (this.#at >= this.#start + this.#piece.byteLength)
        if (!(await this.#pull())) throw new IndexDocumentStale(this.key, 'ends before its last item');
      const end = Math.min(to, this.#start + this.#piece.byteLength);
      yield this.#piece.subarray(this.#at - this.#start, end - this.#start);
      this.#at = end;
    }
  }

  /** Reads what is left; refuses a document whose bytes are not the recorded ones. */
  async finish(): Promise<void> {
    if (!this.expected) return;
    let size = this.#start + this.#piece.byteLength;
    while (!this.#ended && (await this.#pull())) size += this.#piece.byteLength;
    if (size !== this.expected.size || this.#hash?.hex() !== this.expected.sha256)
      throw new IndexDocumentStale(this.key, 'is not the rendering its order records');
  }
}

/** A published index document that is not the one the order recorded: a merge stops, and a full rendering runs. */
export class IndexDocumentStale extends PlugindexError {
  override readonly name = 'IndexDocumentStale';

  constructor(key: string, why: string) {
    super('INDEX_DOCUMENT_STALE', `${key} ${why}: rendering it from the catalog instead`);
  }
}

/** Where an old document of `layout` lays its items: `lengths[offset + i * stride]` for `count` items. */
export interface OldItems {
  readonly layout: DocumentLayout;
  readonly size: number;
  readonly lengths: ArrayLike<number>;
  readonly count: number;
  readonly stride: number;
  readonly offset: number;
}

/**
 * A document of `layout` whose items are the merge's `steps`: each run of unchanged items taken from the old
 * document as it is (the separators between them included, a layout's separator never changes), each changed
 * item rendered (`item`). The bytes renderLayout gives for the merged items, without copying the old ones.
 */
export async function* splicedChunks(
  layout: DocumentLayout,
  steps: readonly MergeStep[],
  item: (changed: ChangedItems) => Uint8Array,
  old: OldDocument,
  items: OldItems,
): AsyncGenerator<Uint8Array> {
  const separator = utf8.encode(layout.separator);
  const oldSeparator = utf8Length(items.layout.separator);
  const oldSuffix = utf8Length(items.layout.suffix);
  let itemBytes = 0;
  for (let i = 0; i < items.count; i++) itemBytes += items.lengths[items.offset + i * items.stride] as number;
  const lengthOf = (i: number) => items.lengths[items.offset + i * items.stride] as number;
  // The old items start after the old prefix, whatever the registry metadata in it said then.
  let position = items.size - oldSuffix - itemBytes - oldSeparator * Math.max(0, items.count - 1);
  let index = 0;
  let emitted = 0;
  for (const step of steps) {
    yield emitted === 0 ? utf8.encode(layout.prefix) : separator;
    if ('changed' in step) {
      yield item(step.changed);
      emitted++;
      continue;
    }
    const [from, to] = step.old;
    for (; index < from; index++) position += lengthOf(index) + oldSeparator;
    const start = position;
    for (; index < to; index++) position += lengthOf(index) + oldSeparator;
    yield* old.take(start, position - oldSeparator);
    emitted += to - from;
  }
  await old.finish();
  if (emitted === 0) yield utf8.encode(layout.empty ?? layout.prefix + layout.suffix);
  else yield utf8.encode(layout.suffix);
}
