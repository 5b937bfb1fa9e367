/**
 * Index documents too large to hold (at 100,000 plugins of 10 versions, `index.json` is about 280 MB),
 * written as streams: rendered from the catalog in chunks (render/index-documents.ts `layoutChunks`), each
 * pass over the document a fresh rendering, so memory stays a few chunks whatever the registry's size.
 *
 * Per document, two renderings: the first feeds the signature (one SHA-256 for digest and signature,
 * `Signer.beginSigning`) and the compressed variants (zlib on the thread pool, streamed to the store); once
 * the variants are written, the second streams the document itself with the digest already known (the
 * store need not hash it), then its signature is written. The write order of the buffered documents holds:
 * variants, document, signature.
 */
import { compressChunks } from '../compression.ts';
import { CONTENT_ENCODINGS, ENCODED_DOCUMENTS, encodedVariantKey, signatureKey } from '../layout.ts';
import type { DocumentDigest } from '../model.ts';
import { CHUNK_BYTES } from '../render/index-documents.ts';
import { CACHE_MUTABLE, CACHE_PRIVATE, contentTypeFor, type Store } from '../store.ts';
import type { PipelineContext } from './context.ts';
import { compressesVariants, dropVariantsForLater, variantPutOptions } from './encoded.ts';
import type { DocumentCopy } from './held-documents.ts';
import { turn } from './site-writer.ts';

/** A document as a rendering that can be run again: each call gives its bytes from the start. */
export interface StreamedDocument {
  readonly key: string;
  /** Its size in bytes, known before it is rendered (it decides the compression, as for a buffer). */
  readonly size: number;
  readonly chunks: () => Iterable<Uint8Array> | AsyncIterable<Uint8Array>;
}

/**
 * A bounded queue from the one rendering of a document to one of its variants' writers: the rendering
 * waits (`room`) while the queue is full, so memory stays a few chunks per variant. A reader that stops
 * (its write failed) closes it, and the rendering then no longer waits on it.
 */
class Channel implements AsyncIterable<Uint8Array> {
  readonly #queue: Uint8Array[] = [];
  #ended = false;
  #error: Error | undefined;
  #closed = false;
  #reader: (() => void) | undefined;
  #writer: (() => void) | undefined;

  constructor(private readonly limit: number) {}

  get closed(): boolean {
    return this.#closed;
  }

  push(chunk: Uint8Array): void {
    if (this.#closed) return;
    this.#queue.push(chunk);
    this.#wake('reader');
  }

  room(): Promise<void> {
    if (this.#closed || this.#queue.length < this.limit) return Promise.resolve();
    return new Promise((resolve) => {
      this.#writer = resolve;
    });
  }

  end(): void {
    this.#ended = true;
    this.#wake('reader');
  }

  /**
   * Closes it from the reading side: its reader stopped, or its write failed, maybe before it read a chunk
   * (a store that fails at once), so nothing will take what is queued, and the rendering must not wait for
   * room.
   */
  close(): void {
    this.#closed = true;
    this.#queue.length = 0;
    this.#wake('writer');
  }

  /** Ends the stream in `error`: its reader throws it, so the writer it feeds commits nothing. */
  fail(error: Error): void {
    this.#error = error;
    this.#wake('reader');
  }

  #wake(which: 'reader' | 'writer'): void {
    const wake = which === 'reader' ? this.#reader : this.#writer;
    if (which === 'reader') this.#reader = undefined;
    else this.#writer = undefined;
    wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    try {
      for (;;) {
        if (this.#error) throw this.#error;
        if (this.#queue.length > 0) {
          const chunk = this.#queue.shift() as Uint8Array;
          this.#wake('writer');
          yield chunk;
        } else if (this.#ended) return;
        else
          await new Promise<void>((resolve) => {
            this.#reader = resolve;
          });
      }
    } finally {
      this.close();
    }
  }
}

/** Chunks a variant's writer may have waiting: the compressor works on one while the next is ready. */
const CHANNEL_CHUNKS = 2;

/**
 * The first pass over a document: one rendering feeds the signature (one SHA-256, `Signer.beginSigning`)
 * and both compressed variants, which compress on the thread pool and stream to the store as the chunks
 * come. Before, each of the three rendered the document on its own; a rendering copies every byte into
 * fresh chunks, which cost more than the hashing. Returns once the variants are written (or, with
 * `compressLater`, deleted: the rendering then feeds the signature alone).
 */
async function signAndPutVariants(ctx: PipelineContext, document: StreamedDocument) {
  const signing = ctx.signer.beginSigning();
  const later =
    ENCODED_DOCUMENTS.has(document.key) && (await dropVariantsForLater(ctx, document.key, document.size));
  const encodings = ENCODED_DOCUMENTS.has(document.key) && !later ? CONTENT_ENCODINGS : [];
  const compress = compressesVariants(ctx, document.size);
  // The document's digest, which each compressed variant records (`decodedSha256`), is known only once the
  // rendering has ended: the signing's, finished then, which the store asks for after the variant's body.
  let finished: Promise<{ readonly signature: string; readonly sha256: string }> | undefined;
  let rendered: () => void = () => {};
  const ended = new Promise<void>((resolve) => {
    rendered = resolve;
  });
  const digest = async (): Promise<string> => {
    await ended;
    if (!finished) throw new Error(`${document.key} was not rendered whole: its variants record no digest`);
    return (await finished).sha256;
  };
  const channels = encodings.map(() => new Channel(CHANNEL_CHUNKS));
  const writes = encodings.map((encoding, i) => {
    const channel = channels[i] as Channel;
    const options = variantPutOptions(document.key, encoding, compress);
    return ctx.site.putStream(
      encodedVariantKey(document.key, encoding),
      compress ? compressChunks(channel, encoding, document.size) : channel,
      compress ? { ...options, decodedSha256AfterBody: digest } : options,
    );
  });
  // Observed below, once the rendering is over; one may fail before that, even before it reads its channel:
  // then the channel is closed, so the rendering stops rather than waits for room that never comes.
  for (const [i, write] of writes.entries()) write.catch(() => channels[i]?.close());
  let size = 0;
  let failure: Error | undefined;
  try {
    for await (const chunk of document.chunks()) {
      // A variant whose write failed stops reading: the others must not be committed cut short.
      if (channels.some((channel) => channel.closed)) {
        failure = new Error(`a variant of ${document.key} failed to be written`);
        break;
      }
      signing.update(chunk);
      size += chunk.byteLength;
      for (const channel of channels) channel.push(chunk);
      await (channels.length > 0 ? Promise.all(channels.map((channel) => channel.room())) : turn());
    }
    if (!failure && size !== document.size)
      failure = new Error(`${document.key} rendered ${size} bytes where ${document.size} were counted`);
  } catch (error) {
    failure = error as Error;
  }
  if (!failure) {
    finished = signing.finish();
    finished.catch(() => {}); // returned below, once the writes have settled
  }
  rendered();
  for (const channel of channels) {
    if (failure) channel.fail(failure);
    else channel.end();
  }
  const results = await Promise.allSettled(writes);
  // A write's own failure first, rather than the rendering's failure each write was failed with (as the
  // store threw it: FsStore and S3Store give a body's failure as the cause of their StoreError).
  const cause = results.find(
    (r): r is PromiseRejectedResult =>
      r.status === 'rejected' && r.reason !== failure && (r.reason as Error | undefined)?.cause !== failure,
  );
  if (cause) throw cause.reason;
  if (failure) throw failure;
  return finished as Promise<{ readonly signature: string; readonly sha256: string }>;
}

/** The chunks as they are, each also added to `copy` before it is passed on. */
async function* copied(chunks: AsyncIterable<Uint8Array>, copy: DocumentCopy): AsyncGenerator<Uint8Array> {
  for await (const chunk of chunks) {
    copy.add(chunk);
    yield chunk;
  }
}

async function* asAsync(
  chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  for await (const chunk of chunks) {
    yield chunk;
    await turn();
  }
}

/** Writes a streamed document's variants, the document and its signature; returns its digest. */
export async function putStreamedSigned(
  ctx: PipelineContext,
  document: StreamedDocument,
  hold: boolean,
): Promise<DocumentDigest> {
  const { signature, sha256 } = await signAndPutVariants(ctx, document);
  // A document the process may hold (held-documents.ts) is copied as it is written, for its next merge,
  // when the caller says the documents together are within the streaming threshold: a merge reads held
  // copies only then (each on its own under it, four together over it, they were held for nothing).
  const copy = ctx.held && hold ? ctx.held.copy(document.key, document.size) : undefined;
  const chunks = asAsync(document.chunks());
  try {
    await ctx.site.putStream(document.key, copy ? copied(chunks, copy) : chunks, {
      contentType: contentTypeFor(document.key),
      cacheControl: CACHE_MUTABLE,
      sha256,
    });
  } catch (error) {
    copy?.drop();
    throw error;
  }
  copy?.keep(sha256);
  await ctx.site.put(signatureKey(document.key), new TextEncoder().encode(signature), {
    contentType: contentTypeFor(signatureKey(document.key)),
    cacheControl: CACHE_MUTABLE,
  });
  return { sha256, size: document.size };
}

/**
 * Chunks a spill's writer may have waiting: enough that the reads of the bins and the writes of the spill
 * overlap rather than take turns (8 MB for each of the three objects).
 */
const SPILL_CHUNKS = 8;

/**
 * Bytes written to one object of a store as a stream, gathered into chunks of CHUNK_BYTES, the store keeping
 * pace (a channel of CHANNEL_CHUNKS): what a flush spills its sorted items through (commit.ts).
 */
export class SpillWriter {
  readonly #channel = new Channel(SPILL_CHUNKS);
  readonly #done: Promise<void>;
  #chunk = new Uint8Array(CHUNK_BYTES);
  #at = 0;

  constructor(store: Store, key: string) {
    this.#done = store.putStream(key, this.#channel, {
      contentType: 'application/octet-stream',
      cacheControl: CACHE_PRIVATE,
    });
    // Observed by end() or fail(), or by the next write once the channel is closed (here, when the store
    // failed before it read the channel: the next write then finds no room to wait for).
    this.#done.catch(() => this.#channel.close());
  }

  /** Appends `bytes`; a promise only when a chunk went to the store (then await it: the store keeps pace). */
  write(bytes: Uint8Array): Promise<void> | undefined {
    let pushed = false;
    for (let from = 0; from < bytes.byteLength; ) {
      if (this.#at === CHUNK_BYTES) {
        this.#channel.push(this.#chunk);
        this.#chunk = new Uint8Array(CHUNK_BYTES);
        this.#at = 0;
        pushed = true;
      }
      const taken = Math.min(bytes.byteLength - from, CHUNK_BYTES - this.#at);
      this.#chunk.set(bytes.subarray(from, from + taken), this.#at);
      this.#at += taken;
      from += taken;
    }
    return pushed ? this.#room() : undefined;
  }

  async #room(): Promise<void> {
    await this.#channel.room();
    // Closed before the end: the store's write failed, and says why.
    if (this.#channel.closed) {
      await this.#done;
      throw new Error('a spilled write stopped reading');
    }
  }

  /** Writes what is left and waits for the object to be committed. */
  async end(): Promise<void> {
    if (this.#at > 0) this.#channel.push(this.#chunk.subarray(0, this.#at));
    this.#channel.end();
    await this.#done;
  }

  /** Abandons the object (the store commits nothing of it). */
  async fail(error: Error): Promise<void> {
    this.#channel.fail(error);
    await this.#done.catch(() => {});
  }
}
