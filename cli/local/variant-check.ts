/**
 * Whether a compressed variant (`<doc>.br`, `<doc>.gz`: an index document's, or a plugin document's over
 * the threshold) decodes to the document now at its key, so the local server never sends a client another
 * generation's bytes under the document's name (server.ts falls back to the document, and answers 404 for
 * the variant asked for by its own name).
 *
 * A variant written by this version records the digest it decodes to (`ObjectInfo.decodedSha256`,
 * pipeline/encoded.ts): compared with the document's, read from its sidecar, nothing decoded. One that
 * records none was written before the field existed (an index document's before this version, a plugin
 * document's before the one that added it) and may be stale the same way: a run that died between the
 * variants and their document left them. Such a variant is decoded once, cut off past the document's size,
 * hashed, and the answer kept by the variant's key and ETag and the document's digest (`VariantChecks`),
 * so each one costs a decoding per server life, not per request, until a publish rewrites it with its
 * digest. Taking every such variant as stale was weighed: safe, but a registry published before this would
 * send every index document uncompressed until its next publish (28 MB at 10,000 plugins, to every reader),
 * and a large plugin's document until that plugin's next publish or a rebuild.
 */

import { pipeline } from 'node:stream/promises';
import { createBrotliDecompress, createGunzip } from 'node:zlib';
import { createSha256, sha256Hex } from '../../index-builder/digest.ts';
import type { ObjectInfo, Store } from '../../index-builder/store.ts';

/** Answers kept at most: two variants of each index document and of each large plugin's, many times over. */
const KEPT_ANSWERS = 1024;

/** Thrown inside a decoding that passes the document's size: its answer is no. */
class DecodedTooLarge extends Error {}

/** The store's failure to read the variant's bytes: no answer about them (not kept). */
class ReadFailed extends Error {}

/** `chunks` as they are, a failure to read them thrown as ReadFailed (told from one to decode them). */
async function* readOrFail(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  try {
    for await (const chunk of chunks) yield chunk;
  } catch (error) {
    throw new ReadFailed('the variant could not be read', { cause: error });
  }
}

/** The answers of one server (server.ts `createRegistryServer`), over its store. */
export class VariantChecks {
  readonly #site: Store;
  /** `<variant key> <ETag> <document sha256>` -> whether it decodes to that document, oldest first. */
  readonly #answers = new Map<string, Promise<boolean>>();

  constructor(site: Store) {
    this.#site = site;
  }

  /**
   * Whether `variant` (as the store gave it, to be sent) decodes to the document now at `document`. The
   * document's digest is its sidecar's (a document past 128 KiB has one); a smaller one is read and hashed.
   * A variant naming no coding is taken as its own bytes (one under the compression threshold).
   */
  async standsFor(variant: ObjectInfo, document: string): Promise<boolean> {
    const info = await this.#site.head(document);
    if (!info) return false;
    let sha256 = info.sha256;
    if (sha256 === undefined) {
      const read = await this.#site.get(document);
      if (!read) return false;
      sha256 = sha256Hex(read.body);
    }
    if (variant.decodedSha256 !== undefined) return variant.decodedSha256 === sha256;
    return this.#decodesTo(variant, sha256, info.size);
  }

  /** The kept answer for this variant and document, else the one its decoding gives (kept for next time). */
  #decodesTo(variant: ObjectInfo, sha256: string, size: number): Promise<boolean> {
    const id = `${variant.key} ${variant.etag} ${sha256}`;
    const kept = this.#answers.get(id);
    if (kept) return kept;
    // Kept as a promise: requests that come while it decodes wait for the one decoding. A store that failed
    // to read the variant gave no answer about it (a moment's EMFILE, a timeout): not kept, so the next
    // request decodes again, where it was kept as "no" and the document went uncompressed to every client
    // for the server's life.
    const answer = decodesTo(this.#site, variant, sha256, size).catch(() => {
      if (this.#answers.get(id) === answer) this.#answers.delete(id);
      return false;
    });
    this.#answers.set(id, answer);
    if (this.#answers.size > KEPT_ANSWERS) this.#answers.delete(this.#answers.keys().next().value as string);
    return answer;
  }
}

/**
 * Decodes the variant at `variant.key` (while it is still the object of `variant.etag`) and says whether
 * it decodes to exactly `size` bytes of digest `sha256`; cut off past `size`, so a variant of a grown
 * document, or a compression bomb, costs no more than the document's own size. Throws where the store
 * fails to open or read it: that says nothing of its bytes.
 */
async function decodesTo(site: Store, variant: ObjectInfo, sha256: string, size: number): Promise<boolean> {
  const stream = await site.getStream(variant.key);
  if (!stream) return false;
  // Another object under the key since (a publish rewrote it): its own request finds it, and asks again.
  if (stream.etag !== variant.etag) {
    stream.cancel();
    return false;
  }
  const coding = stream.contentEncoding;
  const digest = createSha256();
  let decoded = 0;
  const take = async (chunks: AsyncIterable<Uint8Array>): Promise<void> => {
    for await (const chunk of chunks) {
      decoded += chunk.byteLength;
      if (decoded > size) throw new DecodedTooLarge();
      digest.update(chunk);
    }
  };
  const body = readOrFail(stream.body);
  try {
    if (coding === undefined) await take(body);
    else if (coding === 'br' || coding === 'gzip')
      await pipeline(body, coding === 'br' ? createBrotliDecompress() : createGunzip(), take);
    else return false;
  } catch (error) {
    // Not decodable, or past the size: not this document. Not read: no answer (thrown, not kept).
    if (error instanceof ReadFailed) throw error;
    return false;
  } finally {
    stream.cancel();
  }
  return decoded === size && digest.hex() === sha256;
}
