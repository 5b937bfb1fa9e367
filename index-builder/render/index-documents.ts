/**
 * The index documents (`index.json`, `index.yaml`, `search.json`, `falcoctl/index.yaml`), rendered by concatenation: each plugin's
 * entry and search row are serialized once, when the plugin changes (the catalog's lines), and a render
 * joins those bytes between a header and a footer. At 10,000 plugins of 10 versions these are about 59 MB,
 * rendered at every publish that does not defer them, so every byte is copied once, into a buffer kept
 * between publishes (BufferPool).
 */
import { Buffer } from 'node:buffer';
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
