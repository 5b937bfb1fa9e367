/**
 * The encoded variants of the index documents (layout.ts `ENCODED_DOCUMENTS`): `<key>.br` and `<key>.gz`,
 * compressed when the document is over the threshold, else the document's own bytes (served without a
 * Content-Encoding), so that every variant a server may route to exists and none ever holds another
 * generation's bytes: each is rewritten with its document, every time.
 *
 * Written before their document: a document at its new bytes then always has current variants, so what
 * checks only the document (a retry, the snapshot's digest of it) never vouches for a variant that lags.
 * Or, with `PipelineContext.compressLater`, deleted before it (a compressed variant only) and written by
 * `completeEncodedVariants` once the caller has answered: a variant that is there is then always current,
 * and one that is not leaves a reader the document itself.
 */
import { COMPRESSION_THRESHOLD_BYTES, compressChunks, compressDocument } from '../compression.ts';
import { createSha256, type Sha256, sha256Hex } from '../digest.ts';
import { CONTENT_ENCODINGS, type ContentEncoding, ENCODED_DOCUMENTS, encodedVariantKey } from '../layout.ts';
import { allSettledValues, forEachLimited } from '../limited.ts';
import { CACHE_MUTABLE, contentTypeFor, type PutOptions } from '../store.ts';
import { type PipelineContext, streamThresholdOf } from './context.ts';

/** Whether the variants of a document of `size` bytes are compressed (else they hold its own bytes). */
export function compressesVariants(
  ctx: Pick<PipelineContext, 'compressionThresholdBytes'>,
  size: number,
): boolean {
  return size > (ctx.compressionThresholdBytes ?? COMPRESSION_THRESHOLD_BYTES);
}

/**
 * Whether the compressed variants of a document of `size` bytes are left for `completeEncodedVariants`
 * (`PipelineContext.compressLater`); if so, they are deleted here, before the document is written.
 */
export async function dropVariantsForLater(
  ctx: PipelineContext,
  key: string,
  size: number,
): Promise<boolean> {
  if (!ctx.compressLater || !compressesVariants(ctx, size)) return false;
  await allSettledValues(
    CONTENT_ENCODINGS.map((encoding) => ctx.site.delete(encodedVariantKey(key, encoding))),
  );
  return true;
}

/**
 * How the variant in `encoding` of the document `key` is stored: the document's own type (a variant is the
 * same representation, only encoded for the transfer), with its coding when it is compressed.
 */
export function variantPutOptions(key: string, encoding: ContentEncoding, compressed: boolean): PutOptions {
  return {
    contentType: contentTypeFor(key),
    cacheControl: CACHE_MUTABLE,
    ...(compressed ? { contentEncoding: encoding } : {}),
  };
}

/**
 * Writes the variant in `encoding` of the document `key` whose bytes are `body`, compressed or as they are;
 * `sha256`, the document's digest, recorded with a compressed one (`PutOptions.decodedSha256`: what the
 * local server holds it to). A promise of it is awaited once the variant is compressed (an index document's
 * digest comes from its signing, which runs meanwhile).
 */
async function putVariant(
  ctx: Pick<PipelineContext, 'site'>,
  key: string,
  encoding: ContentEncoding,
  body: Uint8Array,
  compress: boolean,
  sha256: string | Promise<string>,
): Promise<void> {
  const bytes = compress ? await compressDocument(body, encoding) : body;
  const options = variantPutOptions(key, encoding, compress);
  await ctx.site.put(
    encodedVariantKey(key, encoding),
    bytes,
    compress ? { ...options, decodedSha256: await sha256 } : options,
  );
}

/**
 * Writes both variants of the index document `key` whose bytes are `body`, the compressed ones recording
 * `sha256`, its digest (given as the signing of the document finds it): a run that died between them and
 * the document left variants of bytes the snapshot never bound, which the local server then tells from the
 * document's by the digest alone (`standsFor`, cli/local/server.ts), as it does a plugin document's.
 */
export async function putEncodedVariants(
  ctx: PipelineContext,
  key: string,
  body: Uint8Array,
  sha256: string | Promise<string>,
): Promise<void> {
  if (await dropVariantsForLater(ctx, key, body.byteLength)) return;
  const compress = compressesVariants(ctx, body.byteLength);
  // Both settled before it returns or throws: a variant still being written once a step has failed could
  // land after the next publish's document (a server's next request runs as soon as this one ends).
  await allSettledValues(
    CONTENT_ENCODINGS.map((encoding) => putVariant(ctx, key, encoding, body, compress, sha256)),
  );
}

/**
 * Writes every variant of an index document that is missing, from the document as it is now: what a
 * publish with `compressLater` left (and what a registry published before variants lacks). Run under the
 * registry's lock, as a publish is, so no document changes while its variants are made from it. A document
 * past the streaming threshold (`streamIndexesOverBytes`) is read as a stream for each coding it lacks, so
 * memory stays bounded at any size. Stops before the next document once `shouldStop` says so (a publish is
 * waiting): what is left stays missing, and the document itself is served meanwhile. Returns the variants
 * written.
 */
export async function completeEncodedVariants(
  ctx: Pick<PipelineContext, 'site' | 'compressionThresholdBytes' | 'streamIndexesOverBytes' | 'held'>,
  options: { readonly shouldStop?: () => boolean } = {},
): Promise<string[]> {
  const written: string[] = [];
  for (const key of ENCODED_DOCUMENTS) {
    if (options.shouldStop?.()) break;
    const document = await ctx.site.head(key);
    if (!document) continue;
    const missing: ContentEncoding[] = [];
    for (const encoding of CONTENT_ENCODINGS)
      if (!(await ctx.site.head(encodedVariantKey(key, encoding)))) missing.push(encoding);
    if (missing.length === 0) continue;
    const compress = compressesVariants(ctx, document.size);
    // Read once and compressed in one call per coding, as a publish does, while it is small enough to hold
    // (the streaming threshold); else streamed, once per coding.
    const holds = document.size <= streamThresholdOf(ctx);
    // The process may hold it still, as it wrote it (held-documents.ts): then it is not read back.
    const held = holds ? await ctx.held?.read(ctx.site, key, document) : undefined;
    const whole = holds ? (held ?? (await ctx.site.get(key))) : undefined;
    // Each records the digest of the bytes it was made from, as read here (hashed as they pass when
    // streamed), not the one the store lists: those are the bytes it decodes to. A held document's is known
    // since it was written (not hashed again: 15 MB after every publish a server takes at 10,000 plugins).
    const sha256 = held?.sha256 ?? (whole ? sha256Hex(whole.body) : undefined);
    await allSettledValues(
      missing.map(async (encoding) => {
        const variant = encodedVariantKey(key, encoding);
        if (whole) await putVariant(ctx, key, encoding, whole.body, compress, sha256 as string);
        else {
          const stream = await ctx.site.getStream(key);
          if (!stream) throw new Error(`${key} went missing while its variants were made`);
          const digest = createSha256();
          const chunks = hashedAsTheyPass(stream.body, digest);
          const body = compress ? compressChunks(chunks, encoding, document.size) : chunks;
          const options = variantPutOptions(key, encoding, compress);
          await ctx.site.putStream(
            variant,
            body,
            compress ? { ...options, decodedSha256AfterBody: async () => digest.hex() } : options,
          );
        }
        written.push(variant);
      }),
    );
  }
  return written;
}

/** The chunks as they are, each added to `digest` first: its hex is theirs once they have ended. */
async function* hashedAsTheyPass(
  chunks: AsyncIterable<Uint8Array>,
  digest: Sha256,
): AsyncGenerator<Uint8Array> {
  for await (const chunk of chunks) {
    digest.update(chunk);
    yield chunk;
  }
}

/**
 * What is known of the document a plugin document replaces, for its variants: its size (undefined: none,
 * a plugin new to the catalog), or `'interrupted'`: a run that died while publishing it (the catalog
 * still records that run was about to write it) may have written a grown document's variants before it,
 * whatever size the published one has.
 */
export type PreviousSize = number | 'interrupted' | undefined;

/**
 * The variants of a document that has them only past the threshold (a plugin document: layout.ts
 * `SIZED_ENCODED_DOCUMENT`), written before it: both compressed when `body` is over the threshold, each
 * recording `sha256`, the digest of the document it decodes to (`PutOptions.decodedSha256`); else, when
 * its previous bytes were (`previousSize`), or a run that died may have left some (`'interrupted'`), both
 * deleted, so a variant of other bytes is never left beside it (a server, and the client, take the document
 * itself when a variant is missing). A document that was and stays under the threshold costs a size check
 * and nothing more: an import writes 10,000 of them. An unknown `previousSize` (a plugin new to the
 * catalog) had no variants. Undefined when there is nothing to do; else settles once none is still
 * writing.
 */
export function putSizedVariants(
  ctx: Pick<PipelineContext, 'site' | 'compressionThresholdBytes'>,
  key: string,
  body: Uint8Array,
  previousSize: PreviousSize,
  sha256: string,
): Promise<unknown> | undefined {
  // Compressed here even with `compressLater`: few documents are this large, and a server reading the
  // variant then has it current from the start. Each records the digest of the document it decodes to.
  if (compressesVariants(ctx, body.byteLength))
    return allSettledValues(
      CONTENT_ENCODINGS.map((encoding) => putVariant(ctx, key, encoding, body, true, sha256)),
    );
  if (previousSize === 'interrupted' || (previousSize !== undefined && compressesVariants(ctx, previousSize)))
    return allSettledValues(
      CONTENT_ENCODINGS.map((encoding) => ctx.site.delete(encodedVariantKey(key, encoding))),
    );
  return undefined;
}

/** Plugin documents whose variants a flush looks at side by side (`cleanInterruptedVariants`). */
const INTERRUPTED_CONCURRENCY = 8;

/**
 * What a flush does for the plugin documents a run that died was writing (`keys`: the catalog's `writing`
 * lines of plugin documents, all the registry knows of where such a run may have left a grown document's
 * variants, so no plugin another run finished is looked at): each variant there that does not decode to
 * the document now published (by the digest it records, in the filesystem store's sidecar or S3's object
 * metadata; one that records none, written before variants recorded it, counts as not) has both rewritten from the document, or deleted where it is under the threshold, as the plugin's
 * next publish does (`putSizedVariants` with `'interrupted'`). Nothing there costs a head per variant;
 * current ones cost the document's too. The `writing` lines stay until a publish settles them (they also
 * tell the registry's own document from another writer's: published.ts); variants a flush rewrote record
 * the digest, so the flushes after it keep them (a store that recorded none, as S3 did, had them rewritten
 * at every flush until then).
 */
export async function cleanInterruptedVariants(
  ctx: Pick<PipelineContext, 'site' | 'compressionThresholdBytes'>,
  keys: readonly string[],
): Promise<void> {
  await forEachLimited(keys, INTERRUPTED_CONCURRENCY, async (key) => {
    const variants = await allSettledValues(
      CONTENT_ENCODINGS.map((encoding) => ctx.site.head(encodedVariantKey(key, encoding))),
    );
    if (variants.every((variant) => variant === undefined)) return;
    const document = await ctx.site.get(key);
    if (!document) {
      await allSettledValues(
        CONTENT_ENCODINGS.map((encoding) => ctx.site.delete(encodedVariantKey(key, encoding))),
      );
      return;
    }
    const sha256 = sha256Hex(document.body);
    const current =
      compressesVariants(ctx, document.body.byteLength) &&
      variants.every((variant) => variant?.contentEncoding !== undefined && variant.decodedSha256 === sha256);
    if (!current) await putSizedVariants(ctx, key, document.body, 'interrupted', sha256);
  });
}
