/**
 * Pre-compressed variants of the large documents (layout.ts: `ENCODED_DOCUMENTS`, `encodedVariantKey`).
 * A document over `COMPRESSION_THRESHOLD_BYTES` is compressed once when it is published, in both codings, so
 * neither the local server nor CloudFront (which compresses nothing over 10,000,000 bytes) compresses it per
 * request. The snapshot's digest is the uncompressed document's: a client decompresses, then checks it.
 *
 * Levels, measured on a 43 MB `index.json` of 10,000 plugins of 10 versions with random names, text,
 * dates and versions, on this 2-core machine (median of 5, busy with other work, so only the ratios are
 * firm): brotli quality 1 took 121-178 ms (11.3x smaller), 3: 289-385 ms (12.9x), 4: 323-447 ms (14.2x),
 * 5: 425-548 ms (15.0x), 6: 408-579 ms (15.2x), 9: 1,102 ms (15.7x); gzip level 1: 113-158 ms (10.6x),
 * 4: 175-235 ms (11.4x), 6: 259-372 ms (12.0x). Brotli 4 is where the size stops paying for the time
 * (a fifth smaller than quality 1; 5 and up add half as much time again for 5% less), and every client of
 * ours and every browser asks for brotli; gzip is for the rest, at level 1, nearly as small as 6 for half
 * the time. Both run on libuv's thread pool, beside the signing of the next document. A deferred publish
 * pays nothing; the flush at 10,000 plugins pays about 0.4-0.7 s more (`bench/compression.bench.ts`).
 */
import zlib from 'node:zlib';
import type { ContentEncoding } from './layout.ts';

/** Documents over this many bytes (1 MB) are published compressed too; smaller ones are not worth it. */
export const COMPRESSION_THRESHOLD_BYTES = 1_000_000;

/** Brotli's quality (0-11); see the measurements above. */
export const BROTLI_QUALITY = 4;
/**
 * Brotli's window, 2^18 bytes (256 KiB) rather than its default 4 MiB: the window is memory each
 * compression touches afresh, and fresh memory is what a publish as a process pays most for (page faults:
 * on this machine 4 compressions of the index documents at 10,000 plugins touched 36 MB with the default
 * window, 20 MB with this one, for outputs 1-5% larger; an index entry repeats the one before it, well
 * inside 256 KiB).
 */
export const BROTLI_WINDOW_BITS = 18;
/**
 * The most brotli is told to expect, whatever the document's size (and what a stream of unknown size is
 * told). Brotli picks its match finder by this hint: at quality 4 and a hint of 1 MiB or more, one with a
 * 4 MiB hash table (H54), which it zeroes before it reads a byte; under it, one of 512 KiB (H4). Fresh memory is what a publish as a process pays most for on this
 * machine (about 20 µs a page): the three documents over 1 MB of 10,000 plugins (12.7 MB) compressed with
 * H4 touched 928 pages against 2,471 and took 77 ms against 110-158 ms, for 0.3% more bytes. On 30 MB of
 * `index.json` at 100,000 plugins of 10 versions: 3% more bytes, 135-142 ms against 217-223 ms, 450 pages
 * against 1,337; on 15 MB of its `search.json`, 13% more bytes (its items repeat less).
 */
export const BROTLI_SIZE_HINT = (1 << 20) - 1;
/** gzip's level (1-9); see the measurements above. */
export const GZIP_LEVEL = 1;

/** `body` in `encoding`, compressed off the main thread. */
export async function compressDocument(body: Uint8Array, encoding: ContentEncoding): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const done = (error: Error | null, result: Uint8Array) => (error ? reject(error) : resolve(result));
    if (encoding === 'br') {
      const params = {
        [zlib.constants.BROTLI_PARAM_QUALITY]: BROTLI_QUALITY,
        [zlib.constants.BROTLI_PARAM_LGWIN]: BROTLI_WINDOW_BITS,
        [zlib.constants.BROTLI_PARAM_MODE]: zlib.constants.BROTLI_MODE_TEXT,
        [zlib.constants.BROTLI_PARAM_SIZE_HINT]: Math.min(body.byteLength, BROTLI_SIZE_HINT),
      };
      zlib.brotliCompress(body, { params }, done);
    } else zlib.gzip(body, { level: GZIP_LEVEL }, done);
  });
}

/**
 * `chunks` compressed in `encoding` as they are read, off the main thread, with backpressure: what a
 * document too large to hold is compressed as. `sizeHint` is the document's size (brotli tunes by it).
 * The compressor is fed by hand (zlib's own stream), so the core needs no stream module.
 */
export async function* compressChunks(
  chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
  encoding: ContentEncoding,
  sizeHint: number,
): AsyncGenerator<Uint8Array> {
  const compressor =
    encoding === 'br'
      ? zlib.createBrotliCompress({
          params: {
            [zlib.constants.BROTLI_PARAM_QUALITY]: BROTLI_QUALITY,
            [zlib.constants.BROTLI_PARAM_LGWIN]: BROTLI_WINDOW_BITS,
            [zlib.constants.BROTLI_PARAM_MODE]: zlib.constants.BROTLI_MODE_TEXT,
            [zlib.constants.BROTLI_PARAM_SIZE_HINT]: Math.min(sizeHint || BROTLI_SIZE_HINT, BROTLI_SIZE_HINT),
          },
        })
      : zlib.createGzip({ level: GZIP_LEVEL });
  // Until the compressor wants more, or is gone (the consumer stopped, or it failed).
  const writable = () =>
    new Promise<void>((resolve) => {
      const done = () => {
        compressor.off('drain', done);
        compressor.off('close', done);
        resolve();
      };
      compressor.on('drain', done);
      compressor.on('close', done);
    });
  const feeding = (async () => {
    try {
      for await (const chunk of chunks) {
        if (compressor.destroyed) return;
        if (!compressor.write(chunk)) await writable();
      }
      compressor.end();
    } catch (error) {
      // A rendering that fails fails the compressed stream: its reader sees the error.
      compressor.destroy(error as Error);
    }
  })();
  try {
    yield* compressor;
  } finally {
    compressor.destroy();
    await feeding;
  }
}
