/**
 * Writing the published tree: the store wrapper that records what a CDN must invalidate, signed documents
 * (hashed once for digest and signature), the immutable files of a version, and a plugin's documents.
 */
import type { CatalogLine } from '../catalog.ts';
import { normalizeDigest, sha256Hex } from '../digest.ts';
import { PlugindexError } from '../errors.ts';
import {
  artifactKey,
  isManifestSignatureKey,
  manifestKey,
  pluginDocumentKey,
  pluginPageKey,
  signatureKey,
} from '../layout.ts';
import { allSettledValues } from '../limited.ts';
import type { ArtifactRecord, DocumentDigest, Manifest, PluginDocument, VersionRecord } from '../model.ts';
import { ociArtifactUrl } from '../oci.ts';
import { versionRecordOf } from '../records.ts';
import { encodeJson } from '../render/documents.ts';
import {
  CACHE_IMMUTABLE,
  CACHE_MUTABLE,
  contentTypeFor,
  type DeleteOptions,
  type GetOptions,
  listFolders,
  type PutOptions,
  type Store,
} from '../store.ts';
import { identityOf, type PipelineContext } from './context.ts';
import { type PreviousSize, putSizedVariants } from './encoded.ts';
import type { Accepted } from './evaluate.ts';
import { type RenderedPlugin, renderPlugin } from './plugin-document.ts';

/**
 * A Store that passes everything through and remembers which mutable keys were written, so a deployment can
 * invalidate exactly those in its CDN. A manifest's signature is mutable only across a key rotation, whose
 * rebuild names the ones it signs again (`resignManifests`, told by `rewrote`): written with a new version, nothing cached it yet,
 * as for the version's immutable files, so it costs no invalidation path.
 */
function isInvalidated(key: string, options: PutOptions): boolean {
  return options.cacheControl !== CACHE_IMMUTABLE && !isManifestSignatureKey(key);
}

export class WriteLog implements Store {
  readonly #keys = new Set<string>();

  constructor(private readonly inner: Store) {}

  get(key: string, options?: GetOptions) {
    return this.inner.get(key, options);
  }

  head(key: string) {
    return this.inner.head(key);
  }

  async put(key: string, body: Uint8Array, options: PutOptions): Promise<void> {
    await this.inner.put(key, body, options);
    if (isInvalidated(key, options)) this.#keys.add(key);
  }

  getStream(key: string) {
    return this.inner.getStream(key);
  }

  async putStream(key: string, body: AsyncIterable<Uint8Array>, options: PutOptions): Promise<void> {
    await this.inner.putStream(key, body, options);
    if (isInvalidated(key, options)) this.#keys.add(key);
  }

  delete(key: string, options?: DeleteOptions) {
    this.#keys.add(key);
    return this.inner.delete(key, options);
  }

  list(prefix: string) {
    return this.inner.list(prefix);
  }

  listFolders(prefix: string) {
    return listFolders(this.inner, prefix);
  }

  /**
   * Names keys rewritten that the write log leaves out as never cached (`isInvalidated`): the manifest
   * signatures a rebuild signs again (`resignManifests`), which a CDN served by the old key.
   */
  rewrote(keys: readonly string[]): void {
    for (const key of keys) this.#keys.add(key);
  }

  /** Sorted keys of mutable objects written or deleted, and those named by `rewrote`. */
  mutableKeys(): string[] {
    return [...this.#keys].sort();
  }
}

/** The context with its site store wrapped in a WriteLog, and the log. */
export function withWriteLog(ctx: PipelineContext): { ctx: PipelineContext; log: WriteLog } {
  const log = new WriteLog(ctx.site);
  return { ctx: { ...ctx, site: log }, log };
}

/**
 * `store`, whose writes (put, putStream, delete, move) each begin only once `before` has settled, and fail
 * with its failure; reads go straight through. A batch commits (renders, hashes, compresses and signs the
 * registry-wide documents) while its plugin documents are still being written, and writes nothing of its own
 * before they are: the write order stays that of pipeline/index.ts.
 */
export function writingAfter(store: Store, before: Promise<void>): Store {
  const gated: Store = {
    get: (key, options) => store.get(key, options),
    head: (key) => store.head(key),
    getStream: (key) => store.getStream(key),
    list: (prefix) => store.list(prefix),
    listFolders: (prefix) => listFolders(store, prefix),
    async put(key, body, options) {
      await before;
      await store.put(key, body, options);
    },
    async putStream(key, body, options) {
      await before;
      await store.putStream(key, body, options);
    },
    async delete(key, options) {
      await before;
      await store.delete(key, options);
    },
  };
  const move = store.move?.bind(store);
  if (move)
    gated.move = async (from, to, options) => {
      await before;
      return move(from, to, options);
    };
  return gated;
}

/**
 * Independent writes in flight at once: hides storage latency (an S3 PUT is tens of milliseconds). What they
 * write is in memory already (the commit's signed documents, the log's intents), so more in flight costs no
 * memory: a commit that rewrites most of the 256 snapshot bins (an import, a rebuild) took 16 rounds of
 * two puts at 8, with every call answered after 20 ms (bench/store-latency.ts).
 */
export const WRITE_CONCURRENCY = 32;

/**
 * Writes in flight at once in the steps that write one thing per submission of a batch (each version's files,
 * each changed plugin's documents, each outcome). On S3 it hides more latency; on the filesystem the writer
 * thread (adapters/fs-writer.ts) takes the puts made while it writes in fewer, larger messages, and has the
 * next batch ready whenever it finishes one: at 32 in flight, every put waiting was in the batch it wrote,
 * and an import of 10,000 plugins wrote their documents (30,000 puts) in 2.0 s with the two cores half idle;
 * at 128, in 1.6 s.
 */
export const BATCH_WRITE_CONCURRENCY = 128;

/**
 * Work started as it is handed over, at most `limit` at a time, in the order handed; `settled` waits for all
 * of it and throws the first failure once nothing is still running. For writes that may begin while the
 * caller still decides what else to write (a batch writes each accepted version's files while it judges
 * the next upload).
 */
export class BoundedWork {
  readonly #limit: number;
  #running = 0;
  readonly #waiting: (() => void)[] = [];
  readonly #started: Promise<void>[] = [];

  constructor(limit: number) {
    this.#limit = limit;
  }

  run(work: () => Promise<void>): void {
    const started = this.#run(work);
    // Its failure is `settled`'s to throw, when the caller waits: not an unhandled rejection meanwhile.
    started.catch(() => undefined);
    this.#started.push(started);
  }

  async #run(work: () => Promise<void>): Promise<void> {
    // A slot is handed from the work that ends to the next waiting, so no more than `limit` ever run.
    if (this.#running >= this.#limit) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    else this.#running += 1;
    try {
      await work();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#running -= 1;
    }
  }

  async settled(): Promise<void> {
    const results = await Promise.allSettled(this.#started);
    const failed = results.find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
  }
}

/**
 * Waits for every write of `writes`, then throws the first failure: when it returns or throws, none of them
 * is still writing. Writes of one step that nothing orders among themselves (a document, its signature and
 * page; a version's files) go side by side: awaited one by one, each was a round trip to the store. With
 * every store call answered after 20 ms (S3's latency, simulated: bench/store-latency.ts), a deferred publish
 * took 678 ms so and 576 ms side by side (medians of 7).
 */
export async function allWritten(writes: readonly Promise<unknown>[]): Promise<void> {
  await allSettledValues(writes);
}

/**
 * Lets the event loop run: a long stretch of work on this thread (a pass over hundreds of megabytes, a
 * batch read by synchronous calls) must not starve the rest of it.
 */
export const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const encoder = new TextEncoder();

/** Writes one object with the content type its name implies. */
export async function putFile(
  store: Store,
  key: string,
  body: Uint8Array,
  cacheControl: string,
  sha256?: string,
): Promise<void> {
  await store.put(key, body, {
    contentType: contentTypeFor(key),
    cacheControl,
    ...(sha256 ? { sha256 } : {}),
  });
}

/**
 * Writes a mutable document and its detached signature, after `before` settles; returns its digest. The
 * signer hashes the bytes once for both, and the store takes the digest rather than hashing again: at
 * 10,000 plugins the global documents are tens of megabytes, and hashing them is most of a publish.
 */
export async function putSigned(
  ctx: PipelineContext,
  key: string,
  body: Uint8Array,
  before?: Promise<void>,
  signedAs?: (sha256: string) => void,
): Promise<DocumentDigest & { readonly signature: string }> {
  const signed = await ctx.signer.signWithDigest(body);
  // Told before it waits for them: the variants record the digest of the document they decode to.
  signedAs?.(signed.sha256);
  // What must be written before the document (its encoded variants), running meanwhile.
  await before;
  await allWritten(signedPuts(ctx, key, body, signed));
  return { sha256: signed.sha256, size: body.byteLength, signature: signed.signature };
}

/** The puts of a mutable document signed already, and of its signature, begun side by side. */
function signedPuts(
  ctx: PipelineContext,
  key: string,
  body: Uint8Array,
  { signature, sha256 }: { readonly signature: string; readonly sha256: string },
): Promise<void>[] {
  return [
    putFile(ctx.site, key, body, CACHE_MUTABLE, sha256),
    putFile(ctx.site, signatureKey(key), encoder.encode(signature), CACHE_MUTABLE),
  ];
}

export async function readJson<T>(store: Store, key: string): Promise<T | undefined> {
  const object = await store.get(key);
  if (!object) return undefined;
  return JSON.parse(new TextDecoder().decode(object.body)) as T;
}

/** Writes the immutable files of an accepted version and returns its record. */
export async function writeVersion(
  ctx: PipelineContext,
  accepted: Accepted,
  published: string,
): Promise<VersionRecord> {
  const { manifest, contents } = accepted;
  const url = ctx.config.url;
  // Every file of the version at once (nothing points at any of them yet, so no order among them). Each
  // is awaited, failed or not, before this returns or throws: none is left writing.
  const writes: Promise<void>[] = [];
  const writing = (write: Promise<void>): void => {
    write.catch(() => undefined); // settled below, by allWritten
    writes.push(write);
  };
  try {
    const artifacts: ArtifactRecord[] = [];
    for (const artifact of manifest.installation?.artifacts ?? []) {
      let size: number | undefined;
      if (artifact.file !== undefined) {
        const body = contents.files.get(artifact.file);
        if (!body) throw new Error(`artifact ${artifact.file} vanished after validation`);
        const key = artifactKey(manifest.name, manifest.version, artifact.file);
        // Opaque bytes whatever the file is called: an `.html` or `.svg` artifact is a download, never a page
        // on the registry's origin (the servers say so too, for files published before this rule).
        // Its digest was checked against these bytes in evaluation: the store need not hash them again.
        writing(
          ctx.site.put(key, body, {
            contentType: 'application/octet-stream',
            cacheControl: CACHE_IMMUTABLE,
            sha256: normalizeDigest(artifact.sha256),
          }),
        );
        size = body.byteLength;
      }
      const record = artifactRecordOf(url, manifest, artifact, size);
      if (record) artifacts.push(record);
    }
    // A JSON manifest is published byte for byte (unknown fields and all); YAML is rendered to JSON.
    const body = contents.manifestName.endsWith('.json') ? contents.manifest : encodeJson(manifest);
    const manifestAt = manifestKey(manifest.name, manifest.version);
    // One pass over the manifest gives its signature and the digest its record and the store take.
    const signed = await ctx.signer.signWithDigest(body);
    writing(putFile(ctx.site, manifestAt, body, CACHE_IMMUTABLE, signed.sha256));
    // Mutable, unlike the manifest: a key rotation signs it again (layout.ts `isManifestSignatureKey`).
    writing(putFile(ctx.site, signatureKey(manifestAt), encoder.encode(signed.signature), CACHE_MUTABLE));
    await allWritten(writes);
    return versionRecordOf(manifest, {
      published,
      manifest_url: `${url}/${manifestAt}`,
      manifest_signature_url: `${url}/${signatureKey(manifestAt)}`,
      manifest_sha256: signed.sha256,
      manifest_size: body.byteLength,
      manifest_signature: signed.signature,
      source_sha256: accepted.sourceSha256,
      publisher: accepted.publisher,
      artifacts,
    });
  } catch (error) {
    await allWritten(writes).catch(() => undefined);
    throw error;
  }
}

type ManifestArtifact = NonNullable<NonNullable<Manifest['installation']>['artifacts']>[number];

/** An artifact's record in its version's: a hosted one (`file`) of `hostedSize` bytes, a URL, or an OCI reference. */
function artifactRecordOf(
  url: string,
  manifest: Manifest,
  artifact: ManifestArtifact,
  hostedSize: number | undefined,
): ArtifactRecord | undefined {
  const digest = normalizeDigest(artifact.sha256);
  // The key order every record keeps: os, arch, then a musl build's libc.
  const platform = {
    os: artifact.os,
    arch: artifact.arch,
    ...(artifact.libc !== undefined ? { libc: artifact.libc } : {}),
  };
  if (artifact.file !== undefined)
    return {
      ...platform,
      url: `${url}/${artifactKey(manifest.name, manifest.version, artifact.file)}`,
      sha256: digest,
      size_bytes: hostedSize ?? 0,
      hosted: true,
    };
  if (artifact.url !== undefined)
    return {
      ...platform,
      url: artifact.url,
      sha256: digest,
      size_bytes: artifact.size_bytes,
      hosted: false,
    };
  if (artifact.oci !== undefined) {
    // Validation parsed the reference and matched its digest to the sha256: the URL is pinned by it.
    const { reference, digest: ociDigest } = artifact.oci;
    return {
      ...platform,
      url: ociArtifactUrl(artifact.oci) ?? `oci://${reference}`,
      sha256: digest,
      size_bytes: artifact.size_bytes,
      hosted: false,
      oci: { reference, digest: ociDigest },
    };
  }
  return undefined;
}

/**
 * The record of version `manifest` whose files a run that died wrote and logged (its manifest as published,
 * `body`, a JSON manifest byte for byte): read back from the site, each hosted artifact's size from its object
 * (`writeVersion` writes nothing that is not this). Undefined when one of its files is gone.
 */
export async function writtenVersionRecord(
  ctx: PipelineContext,
  manifest: Manifest,
  body: Uint8Array,
  logged: { readonly published: string; readonly sourceSha256: string; readonly publisher: string },
): Promise<VersionRecord | undefined> {
  const url = ctx.config.url;
  const manifestAt = manifestKey(manifest.name, manifest.version);
  const listed = manifest.installation?.artifacts ?? [];
  const sizeOf = (artifact: ManifestArtifact): Promise<number | undefined> =>
    artifact.file === undefined
      ? Promise.resolve(0)
      : ctx.site.head(artifactKey(manifest.name, manifest.version, artifact.file)).then((info) => info?.size);
  const [signature, sizes] = await allSettledValues([
    ctx.site.get(signatureKey(manifestAt)),
    allSettledValues(listed.map(sizeOf)),
  ]);
  if (!signature || sizes.some((size) => size === undefined)) return undefined;
  const artifacts: ArtifactRecord[] = [];
  for (const [i, artifact] of listed.entries()) {
    const record = artifactRecordOf(url, manifest, artifact, sizes[i]);
    if (record) artifacts.push(record);
  }
  return versionRecordOf(manifest, {
    published: logged.published,
    manifest_url: `${url}/${manifestAt}`,
    manifest_signature_url: `${url}/${signatureKey(manifestAt)}`,
    manifest_sha256: sha256Hex(body),
    manifest_size: body.byteLength,
    manifest_signature: new TextDecoder().decode(signature.body),
    source_sha256: logged.sourceSha256,
    publisher: logged.publisher,
    artifacts,
  });
}

/** Writes a plugin's document, signature and page; returns its catalog line. */
export async function writePlugin(
  ctx: PipelineContext,
  rendered: RenderedPlugin,
  previousSize?: PreviousSize,
): Promise<CatalogLine> {
  const { line, write } = await signPlugin(ctx, rendered, previousSize);
  await write();
  return line;
}

/** A plugin's document signed: its catalog line, and what writes its document, signature and page. */
export interface SignedPlugin {
  readonly line: CatalogLine;
  /** Writes the three side by side; settles once none is still writing. */
  write(): Promise<void>;
}

/**
 * Signs a plugin's document (its catalog line needs the digest), writing nothing yet. `previousSize`, the
 * size of the document it replaces (its catalog line's), or `'interrupted'`, says whether compressed
 * variants of it may be there to delete (`putSizedVariants`).
 */
export async function signPlugin(
  ctx: PipelineContext,
  rendered: RenderedPlugin,
  previousSize?: PreviousSize,
): Promise<SignedPlugin> {
  const signed = await ctx.signer.signWithDigest(rendered.body);
  const key = pluginDocumentKey(rendered.doc.name);
  return {
    line: { ...rendered.line, document: { sha256: signed.sha256, size: rendered.body.byteLength } },
    write: async () => {
      // Its variants written (or deleted) before it, as an index document's: a server never serves a
      // variant of older bytes for the document at its new ones. Under the threshold, nothing to wait for.
      const variants = putSizedVariants(ctx, key, rendered.body, previousSize, signed.sha256);
      if (variants) await variants;
      await allWritten([
        ...signedPuts(ctx, key, rendered.body, signed),
        putFile(ctx.site, pluginPageKey(rendered.doc.name), rendered.page, CACHE_MUTABLE),
      ]);
    },
  };
}

/** Writes a plugin's document, signature and page from the document alone (rebuilds). */
export async function writePluginDocument(
  ctx: PipelineContext,
  doc: PluginDocument,
  previousSize?: PreviousSize,
): Promise<CatalogLine> {
  return writePlugin(ctx, renderPlugin(doc, identityOf(ctx.config)), previousSize);
}

/**
 * Signs every version's manifest of `doc` again with the context's signer (after a registry key rotation):
 * each `manifest.json.asc` is rewritten, and the `manifest_signature` the document carries with it. The
 * bytes re-signed are checked against the digest the document gives, so the new key vouches for exactly
 * what the old one did. A removed version has no manifest left to sign and is kept as it is. Returns the
 * document to render and the signatures rewritten, which a CDN must be told of: served as mutable (layout.ts
 * `isManifestSignatureKey`), so a CDN that is not told holds the old key's for minutes, not a year.
 * @throws PlugindexError RESIGN_MANIFEST_MISSING when a manifest is gone, RESIGN_MANIFEST_ALTERED when its bytes
 *   are not the digest its document records: the operator's to mend.
 */
export async function resignManifests(
  ctx: PipelineContext,
  doc: PluginDocument,
): Promise<{ readonly doc: PluginDocument; readonly rewritten: readonly string[] }> {
  const rewritten: string[] = [];
  const versions: VersionRecord[] = [];
  for (const version of doc.versions) {
    if (version.removed) {
      versions.push(version);
      continue;
    }
    const key = manifestKey(doc.name, version.version);
    const object = await ctx.site.get(key);
    if (!object)
      throw new PlugindexError(
        'RESIGN_MANIFEST_MISSING',
        `${key}: expected the manifest of ${doc.name} ${version.version} (sha256 ${version.manifest_sha256}, ` +
          `its plugin document's), to sign again with the new key; it is missing`,
      );
    const signed = await ctx.signer.signWithDigest(object.body);
    if (signed.sha256 !== version.manifest_sha256)
      throw new PlugindexError(
        'RESIGN_MANIFEST_ALTERED',
        `${key}: expected sha256 ${version.manifest_sha256}, as its plugin document gives ` +
          `(/versions/${doc.versions.indexOf(version)}/manifest_sha256); it hashes to ${signed.sha256}, ` +
          'and the new key would vouch for bytes the old one never signed',
      );
    await putFile(ctx.site, signatureKey(key), encoder.encode(signed.signature), CACHE_MUTABLE);
    rewritten.push(signatureKey(key));
    versions.push({ ...version, manifest_signature: signed.signature });
  }
  return { doc: { ...doc, versions }, rewritten };
}
