/**
 * The index documents (`index.json`, `index.yaml`, `search.json`, `falcoctl/index.yaml`), rendered by concatenation: each plugin's
 * entry and search row are serialized once, when the plugin changes (the catalog's lines), and a render
 * joins those bytes between a header and a footer. At 10,000 plugins of 10 versions these are about 59 MB,
 * rendered at every publish that does not defer them, so every byte is copied once, into a buffer kept
 * between publishes (BufferPool).
 */
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

const COMMA = utf8.encode(',');
const YAML_ITEM_SEPARATOR = utf8.encode('\n- ');

/**
 * `index.json`, compact, rendered by concatenating the plugins' serialized entries; equal to JSON.stringify
 * of the whole document.
 */
export function renderIndexJson(
  metadata: object,
  entries: readonly Uint8Array[],
  allocate: Allocate = freshBuffer,
): Uint8Array {
  const prefix = `{"registry_version":"1.0.0","registry_metadata":${stringifyJson(metadata)},"plugins":[`;
  return join(utf8.encode(prefix), entries, COMMA, utf8.encode(']}\n'), allocate);
}

/**
 * `index.yaml`: the same document as index.json. The header is block YAML; each plugin is one flow mapping
 * (its JSON entry, which is valid YAML), so the file is written by concatenation at any size.
 */
export function renderIndexYaml(
  header: string,
  entries: readonly Uint8Array[],
  allocate: Allocate = freshBuffer,
): Uint8Array {
  if (entries.length === 0) return utf8.encode(`${header}plugins: []\n`);
  return join(
    utf8.encode(`${header}plugins:\n- `),
    entries,
    YAML_ITEM_SEPARATOR,
    utf8.encode('\n'),
    allocate,
  );
}

export function renderSearchJson(
  generated: string,
  rows: readonly Uint8Array[],
  allocate: Allocate = freshBuffer,
): Uint8Array {
  const prefix = `{"schema":"plugindex/search/v1","generated":${stringifyJson(generated)},"plugins":[`;
  return join(utf8.encode(prefix), rows, COMMA, utf8.encode(']}\n'), allocate);
}

const NOTHING = new Uint8Array();

/**
 * `falcoctl/index.yaml`: a YAML list, one block-style item per plugin (each item rendered once per plugin
 * change, catalog.ts), concatenated; an empty registry is the empty list.
 */
export function renderFalcoctlIndex(
  items: readonly Uint8Array[],
  allocate: Allocate = freshBuffer,
): Uint8Array {
  if (items.length === 0) return utf8.encode('[]\n');
  return join(NOTHING, items, NOTHING, NOTHING, allocate);
}
