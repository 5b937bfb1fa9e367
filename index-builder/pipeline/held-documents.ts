/**
 * The index documents a long-running process wrote last, kept in its memory (`PipelineContext.held`): its
 * next publish merges into them instead of reading them back from the store, and the compressed variants
 * it makes after answering are made from them. At 10,000 plugins that is 15 MB a publish not read into
 * fresh memory: the local server's merge read the four documents at every publish handed to it, and on
 * this machine memory touched for the first time costs about 3 ms a megabyte (a page fault each 4 KB), the
 * reading and the garbage it left being a fifth of such a publish.
 *
 * A document is trusted only while the store says its file is still the one written (the same ETag and
 * size as right after the write): another process that published meanwhile makes it read again. Each key
 * has two buffers: the one a merge reads the old document from, and the one the new document is copied
 * into as it is written (the merge's output is views of the old one); they swap once the new one is
 * complete. Everything here is bytes and a Store: no filesystem of its own.
 */
import type { ObjectInfo, Store } from '../store.ts';

/** A document as written: its bytes, its SHA-256 (hex), and the store's ETag of it once known. */
interface Kept {
  readonly body: Uint8Array<ArrayBuffer>;
  readonly sha256: string;
  etag?: string;
}

interface Slot {
  current?: Kept;
  /** The other buffer, free: the next document of this key is copied into it. */
  spare?: ArrayBuffer;
}

/** The index documents last written through one site store, kept by the caller across runs. */
export class HeldDocuments {
  readonly #slots = new Map<string, Slot>();

  #slot(key: string): Slot {
    let slot = this.#slots.get(key);
    if (!slot) {
      slot = {};
      this.#slots.set(key, slot);
    }
    return slot;
  }

  /**
   * The document `key` as written last, when `store` still holds that very file (same ETag and size): its
   * bytes and the ETag, as a read of the store would give them, and its SHA-256 (hex), known since it was
   * written (the variants made from it record it, so 15 MB are not hashed again after every publish at
   * 10,000 plugins, 12-35 ms of a server's CPU here). Undefined otherwise (never written here,
   * written by someone else since, or its ETag not yet noted). `known`: the store's `head` of it, when the
   * caller has just asked for it.
   */
  async read(
    store: Store,
    key: string,
    known?: ObjectInfo,
  ): Promise<
    | { readonly body: Uint8Array; readonly etag: string; readonly size: number; readonly sha256: string }
    | undefined
  > {
    const current = this.#slots.get(key)?.current;
    if (!current?.etag) return undefined;
    const info = known ?? (await store.head(key));
    if (!info || info.etag !== current.etag || info.size !== current.body.byteLength) return undefined;
    return { body: current.body, etag: current.etag, size: current.body.byteLength, sha256: current.sha256 };
  }

  /**
   * Starts copying a document of `size` bytes as it is written: `add` each chunk in order, then `keep` it
   * with its SHA-256 once the store has it. The copy goes to the key's free buffer, never the one a merge
   * may be reading the old document from.
   */
  copy(key: string, size: number): DocumentCopy {
    const slot = this.#slot(key);
    const spare = slot.spare && slot.spare.byteLength >= size ? slot.spare : undefined;
    // Headroom, so a registry that grows a little does not need a new buffer at every publish.
    const buffer = spare ?? new ArrayBuffer(Math.ceil(size * 1.125));
    slot.spare = undefined;
    return new DocumentCopy(slot, new Uint8Array(buffer, 0, size));
  }

  /** Notes the store's ETag of `key` once written, if the document kept for it has this SHA-256. */
  noteEtag(key: string, sha256: string, etag: string | undefined): void {
    const current = this.#slots.get(key)?.current;
    if (current && current.sha256 === sha256 && etag) current.etag = etag;
  }
}

/** A document being copied as it is written (`HeldDocuments.copy`). */
export class DocumentCopy {
  #at = 0;
  #broken = false;

  constructor(
    private readonly slot: Slot,
    private readonly target: Uint8Array<ArrayBuffer>,
  ) {}

  /** Copies the next chunk; past the announced size it stops for good (and `keep` then keeps nothing). */
  add(chunk: Uint8Array): void {
    if (this.#broken || this.#at + chunk.byteLength > this.target.byteLength) {
      this.#broken = true;
      return;
    }
    this.target.set(chunk, this.#at);
    this.#at += chunk.byteLength;
  }

  /**
   * Keeps the copy as the key's document, with `sha256`, its ETag to be noted; the old document's buffer
   * becomes the free one. A copy of another length than announced is dropped, and so is the old document:
   * nothing is kept that might not be what the store has.
   */
  keep(sha256: string): void {
    const old = this.slot.current;
    if (this.#broken || this.#at !== this.target.byteLength) {
      this.slot.current = undefined;
      this.slot.spare = this.target.buffer;
      return;
    }
    this.slot.current = { body: this.target, sha256 };
    this.slot.spare = old?.body.buffer;
  }

  /** Gives the buffer back unkept (the write failed); the document kept before stays as it was. */
  drop(): void {
    this.slot.spare = this.target.buffer;
  }
}
