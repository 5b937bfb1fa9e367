/**
 * The encoded variants of the index documents (layout.ts `ENCODED_DOCUMENTS`): `<key>.br` and `<key>.gz`,
 * compressed when the document is over the threshold, else the document's own bytes (served without a
 * Content-Encoding), so that every variant a server may route to exists and none ever holds another
 * generation's bytes: each is rewritten with its document, every time.
 *
 * Written before their document: a document at its new bytes then always has current variants, so what
 * checks only the document (a retry, the snapshot's digest of it) never vouches for a variant that lags.
 */
import { COMPRESSION_THRESHOLD_BYTES, compressDocument } from '../compression.ts';
import { CONTENT_ENCODINGS, encodedVariantKey } from '../layout.ts';
import { CACHE_MUTABLE, contentTypeFor } from '../store.ts';
import type { PipelineContext } from './context.ts';

/** Writes both variants of the document `key` whose bytes are `body`. */
export async function putEncodedVariants(ctx: PipelineContext, key: string, body: Uint8Array): Promise<void> {
  const compress = body.byteLength > (ctx.compressionThresholdBytes ?? COMPRESSION_THRESHOLD_BYTES);
  await Promise.all(
    CONTENT_ENCODINGS.map(async (encoding) => {
      const bytes = compress ? await compressDocument(body, encoding) : body;
      // The document's own type: a variant is the same representation, only encoded for the transfer.
      await ctx.site.put(encodedVariantKey(key, encoding), bytes, {
        contentType: contentTypeFor(key),
        cacheControl: CACHE_MUTABLE,
        ...(compress ? { contentEncoding: encoding } : {}),
      });
    }),
  );
}
