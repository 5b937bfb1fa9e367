/**
 * Index documents too large to hold (at 100,000 plugins of 10 versions, `index.json` is about 280 MB),
 * written as streams: rendered from the catalog in chunks (render/index-documents.ts `layoutChunks`), each
 * pass over the document a fresh rendering, so memory stays a few chunks whatever the registry's size.
 *
 * Per document: the signing pass (one SHA-256 for digest and signature, `Signer.beginSigning`) runs beside
 * the compressed variants' passes (zlib on the thread pool, streamed to the store); once the variants are
 * written, the document itself is streamed with the digest already known (the store need not hash it), then
 * its signature. The write order of the buffered documents holds: variants, document, signature.
 */
import { COMPRESSION_THRESHOLD_BYTES, compressChunks } from '../compression.ts';
import { CONTENT_ENCODINGS, ENCODED_DOCUMENTS, encodedVariantKey, signatureKey } from '../layout.ts';
import type { DocumentDigest } from '../model.ts';
import { CACHE_MUTABLE, contentTypeFor } from '../store.ts';
import type { PipelineContext } from './context.ts';

/** A document as a rendering that can be run again: each call gives its bytes from the start. */
export interface StreamedDocument {
  readonly key: string;
  /** Its size in bytes, known before it is rendered (it decides the compression, as for a buffer). */
  readonly size: number;
  readonly chunks: () => Iterable<Uint8Array>;
}

/** Lets the event loop run between chunks: a pass over hundreds of megabytes must not starve the others. */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function signPass(ctx: PipelineContext, document: StreamedDocument) {
  const signing = ctx.signer.beginSigning();
  let size = 0;
  for (const chunk of document.chunks()) {
    signing.update(chunk);
    size += chunk.byteLength;
    await turn();
  }
  if (size !== document.size)
    throw new Error(`${document.key} rendered ${size} bytes where ${document.size} were counted`);
  return signing.finish();
}

async function putVariants(ctx: PipelineContext, document: StreamedDocument): Promise<void> {
  if (!ENCODED_DOCUMENTS.has(document.key)) return;
  const compress = document.size > (ctx.compressionThresholdBytes ?? COMPRESSION_THRESHOLD_BYTES);
  await settleAll(
    CONTENT_ENCODINGS.map((encoding) =>
      ctx.site.putStream(
        encodedVariantKey(document.key, encoding),
        compress ? compressChunks(document.chunks(), encoding, document.size) : asAsync(document.chunks()),
        {
          contentType: contentTypeFor(document.key),
          cacheControl: CACHE_MUTABLE,
          ...(compress ? { contentEncoding: encoding } : {}),
        },
      ),
    ),
  );
}

async function* asAsync(chunks: Iterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  for (const chunk of chunks) {
    yield chunk;
    await turn();
  }
}

/** Waits for every promise, then throws the first failure: nothing is still writing when it returns. */
async function settleAll(promises: readonly Promise<unknown>[]): Promise<void> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/** Writes a streamed document's variants, the document and its signature; returns its digest. */
export async function putStreamedSigned(
  ctx: PipelineContext,
  document: StreamedDocument,
): Promise<DocumentDigest> {
  const signing = signPass(ctx, document);
  const variants = putVariants(ctx, document);
  await settleAll([signing, variants]);
  const { signature, sha256 } = await signing;
  await ctx.site.putStream(document.key, asAsync(document.chunks()), {
    contentType: contentTypeFor(document.key),
    cacheControl: CACHE_MUTABLE,
    sha256,
  });
  await ctx.site.put(signatureKey(document.key), new TextEncoder().encode(signature), {
    contentType: contentTypeFor(signatureKey(document.key)),
    cacheControl: CACHE_MUTABLE,
  });
  return { sha256, size: document.size };
}
