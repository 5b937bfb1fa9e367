/**
 * The publish pipeline. One upload is one submission; a batch of submissions is evaluated one by one, the
 * accepted ones are written as immutable files, and the registry is rebuilt once for the whole batch:
 * only the changed plugins' documents plus the global documents. Every submission gets an outcome record
 * and is moved out of `incoming/`, so nothing is lost or dropped silently.
 *
 * Write order (a crash at any point leaves clients a consistent, signed view, and a retry converges):
 *   1. immutable files of accepted versions (artifacts, manifest, its signature): nothing points at them yet;
 *   2. each changed plugin's document, its signature and page;
 *   3. the global documents (index.json/.yaml, search.json, keys) and their signatures;
 *   4. snapshot.json and its signature: the commit point for clients;
 *   5. the catalog (internal state), then outcome records, then the submissions move to processed/rejected.
 * A retry after a crash finds the version already published with the same bytes, sees the catalog out of
 * date for that plugin, and rebuilds.
 */
import {
  type BundleContents,
  type BundleLimits,
  bundleSizeProblem,
  checkArtifactDigests,
  checkBundleFiles,
  readBundle,
} from './bundle.ts';
import {
  type Catalog,
  type CatalogLine,
  catalogLineOf,
  emptyCatalog,
  lineBytes,
  loadCatalog,
  namesInBins,
  saveCatalog,
  sortedNames,
} from './catalog.ts';
import type { Clock } from './clock.ts';
import type { RegistryConfig } from './config.ts';
import { digestOf, sha256Hex, streamSha256 } from './digest.ts';
import { type Problem, problem, problemsFrom, StoreError } from './errors.ts';
import {
  artifactKey,
  binKey,
  binOf,
  FAVICON_KEY,
  HOME_PAGE_KEY,
  INCOMING_PREFIX,
  INDEX_DOCUMENTS,
  INDEX_JSON_KEY,
  INDEX_YAML_KEY,
  isPluginDocumentKey,
  manifestKey,
  PLUGINS_PREFIX,
  pluginDocumentKey,
  pluginPageKey,
  processedKey,
  REGISTRY_PUBLIC_KEY_KEY,
  rejectedKey,
  SEARCH_KEY,
  SNAPSHOT_KEY,
  signatureKey,
  statusKey,
  submissionIdFromDigest,
  versionBase,
  versionIdentity,
} from './layout.ts';
import { loadManifest, normalizeDigest } from './manifest/index.ts';
import type { ArtifactRecord, Manifest, PluginDocument, RegistryIdentity, VersionRecord } from './model.ts';
import {
  buildRegistryMetadata,
  type DocumentDigest,
  encodeJson,
  type SnapshotDocument,
} from './render/documents.ts';
import { FAVICON_SVG, renderIndexPage, renderPluginPage } from './render/html.ts';
import { BufferPool, renderIndexJson, renderIndexYaml, renderSearchJson } from './render/index-documents.ts';
import { renderBins, renderSnapshot } from './render/snapshot.ts';
import { toYaml } from './render/yaml.ts';
import type { Signer } from './signing.ts';
import {
  CACHE_IMMUTABLE,
  CACHE_MUTABLE,
  CACHE_PRIVATE,
  contentTypeFor,
  type ListedObject,
  type PutOptions,
  type Store,
} from './store.ts';
import { authorizePublisher, checkPublisherSignature, loadTrustedKeys, type TrustedKeys } from './trust.ts';
import { channelHeads, isPrerelease, latestVersion, sortVersionsDescending } from './versions.ts';

export interface PipelineContext {
  /** Submissions and bookkeeping: `incoming/`, `processed/`, `rejected/`, `status/`, `state/`. */
  readonly intake: Store;
  /** The published tree, served as static files. */
  readonly site: Store;
  readonly signer: Signer;
  readonly clock: Clock;
  readonly config: RegistryConfig;
  readonly bundleLimits?: Partial<BundleLimits>;
  /**
   * Stop taking submissions into a batch once their bytes pass this (at least one is always taken); the rest
   * stay in incoming/ for the next batch (`BatchResult.deferred`). Bounds memory in a Lambda function.
   */
  readonly maxBatchBytes?: number;
  /**
   * Leave the index documents (index.json, index.yaml, search.json) for `flushIndexes`: a publish then
   * writes only what it changed, and its versions are live (plugin documents, bins, snapshot) at once; the
   * index documents follow at the flush, once for any number of batches. For callers that run on and flush
   * when a burst is over (the local watcher, the publish function); a registry is never left pending by a
   * caller that does not defer, since a batch without it renders whatever is pending.
   */
  readonly deferIndexes?: boolean;
}

export type SubmissionStatus = 'accepted' | 'already-published' | 'rejected';

/** `status/<id>.json`: what became of one submission. */
export interface SubmissionOutcome {
  readonly schema: 'plugindex/outcome/v1';
  readonly id: string;
  readonly submission: string;
  readonly status: SubmissionStatus;
  readonly plugin?: string;
  readonly version?: string;
  readonly publisher?: string;
  readonly submission_sha256: string;
  readonly processed: string;
  /** The snapshot generation that first includes this version (accepted only). */
  readonly generation?: number;
  readonly urls?: {
    readonly plugin: string;
    readonly page: string;
    readonly manifest: string;
    readonly signature: string;
    readonly artifacts: readonly string[];
  };
  readonly problems: readonly Problem[];
}

export interface BatchResult {
  readonly outcomes: readonly SubmissionOutcome[];
  /** The new snapshot generation, or null when nothing was rebuilt (e.g. every submission rejected). */
  readonly generation: number | null;
  readonly changedPlugins: readonly string[];
  /** Mutable site keys this batch rewrote: what a CDN must invalidate (immutable files never are). */
  readonly invalidate: readonly string[];
  /** Submissions left in incoming/ for the next batch because of `maxBatchBytes`. */
  readonly deferred: number;
  /** The index documents lag this batch (`deferIndexes`): `flushIndexes` renders them. */
  readonly indexesPending: boolean;
}

/**
 * A Store that passes everything through and remembers which mutable keys were written, so a deployment can
 * invalidate exactly those in its CDN.
 */
class WriteLog implements Store {
  readonly #keys = new Set<string>();

  constructor(private readonly inner: Store) {}

  get(key: string) {
    return this.inner.get(key);
  }

  head(key: string) {
    return this.inner.head(key);
  }

  async put(key: string, body: Uint8Array, options: PutOptions): Promise<void> {
    await this.inner.put(key, body, options);
    if (options.cacheControl !== CACHE_IMMUTABLE) this.#keys.add(key);
  }

  getStream(key: string) {
    return this.inner.getStream(key);
  }

  async putStream(key: string, body: AsyncIterable<Uint8Array>, options: PutOptions): Promise<void> {
    await this.inner.putStream(key, body, options);
    if (options.cacheControl !== CACHE_IMMUTABLE) this.#keys.add(key);
  }

  delete(key: string) {
    this.#keys.add(key);
    return this.inner.delete(key);
  }

  list(prefix: string) {
    return this.inner.list(prefix);
  }

  /** Sorted keys of mutable objects written or deleted. */
  mutableKeys(): string[] {
    return [...this.#keys].sort();
  }
}

function withWriteLog(ctx: PipelineContext): { ctx: PipelineContext; log: WriteLog } {
  const log = new WriteLog(ctx.site);
  return { ctx: { ...ctx, site: log }, log };
}

/** Independent writes in flight at once: hides storage latency (an S3 PUT is tens of milliseconds). */
const WRITE_CONCURRENCY = 8;

/** Runs `work` over `items`, at most `limit` at a time; the first failure rejects (after in-flight work). */
async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await work(item);
    }
  });
  await Promise.all(runners);
}

const encoder = new TextEncoder();

function identityOf(config: RegistryConfig): RegistryIdentity {
  return {
    name: config.name,
    url: config.url,
    ...(config.description ? { description: config.description } : {}),
  };
}

/** Writes one object with the content type its name implies. */
async function putFile(
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
 * Writes a mutable document and its detached signature; returns its digest. The signer hashes the bytes once
 * for both, and the store takes the digest rather than hashing again: at 10,000 plugins the global
 * documents are tens of megabytes, and hashing them is most of a publish.
 */
async function putSigned(ctx: PipelineContext, key: string, body: Uint8Array): Promise<DocumentDigest> {
  const { signature, sha256 } = await ctx.signer.signWithDigest(body);
  await putFile(ctx.site, key, body, CACHE_MUTABLE, sha256);
  await putFile(ctx.site, signatureKey(key), encoder.encode(signature), CACHE_MUTABLE);
  return { sha256, size: body.byteLength };
}

async function readJson<T>(store: Store, key: string): Promise<T | undefined> {
  const object = await store.get(key);
  if (!object) return undefined;
  return JSON.parse(new TextDecoder().decode(object.body)) as T;
}

/**
 * What becomes of an accepted submission whose files or documents could not be written or rendered: a
 * rejection naming why, unless the store was only unavailable (StoreError STORE_IO), which fails the batch
 * so the queue retries it (the upload stays in incoming/).
 */
function failedWrite(error: unknown, accepted: Accepted, what: string): Evaluation {
  if (error instanceof StoreError && !error.permanent) throw error;
  return {
    kind: 'rejected',
    manifest: accepted.manifest,
    publisher: accepted.publisher,
    problems: [
      problem(
        'SUBMISSION_WRITE_FAILED',
        'bundle:',
        `the registry failed ${what}: ${(error as Error).message}`,
        {
          expected: 'a submission every store can publish (please report this to the registry operator)',
        },
      ),
    ],
  };
}

/** One accepted submission, ready to be written. */
interface Accepted {
  readonly kind: 'accepted';
  readonly manifest: Manifest;
  readonly contents: BundleContents;
  readonly publisher: string;
  readonly sourceSha256: string;
}

type Evaluation =
  | Accepted
  | { readonly kind: 'already-published'; readonly manifest: Manifest; readonly publisher: string }
  | {
      readonly kind: 'rejected';
      readonly problems: readonly Problem[];
      readonly manifest?: Manifest;
      readonly publisher?: string;
    };

function rejection(problems: readonly Problem[]): Evaluation {
  return { kind: 'rejected', problems };
}

/**
 * Per-batch view of plugin documents: what is published plus what this batch accepted so far, so a batch
 * decides exactly as one submission per batch would: the same version twice, and a name's owner, are judged
 * against earlier submissions of the batch as against published ones.
 */
class PluginDocuments {
  readonly #cache = new Map<string, PluginDocument | null>();
  /** Name -> version identity -> source digest, of versions accepted earlier in this batch. */
  readonly #accepted = new Map<string, Map<string, string>>();
  /** Name -> owners, for names this batch gave an owner (first come: the first accepted publisher). */
  readonly #newOwners = new Map<string, readonly string[]>();

  constructor(private readonly site: Store) {}

  async get(name: string): Promise<PluginDocument | undefined> {
    if (!this.#cache.has(name))
      this.#cache.set(name, (await readJson<PluginDocument>(this.site, pluginDocumentKey(name))) ?? null);
    return this.#cache.get(name) ?? undefined;
  }

  set(name: string, doc: PluginDocument): void {
    this.#cache.set(name, doc);
  }

  /** The owners a submission for `name` is judged against: the published ones, or those this batch made. */
  owners(name: string, published: PluginDocument | undefined): readonly string[] | undefined {
    return published?.owners.length ? published.owners : this.#newOwners.get(name);
  }

  /** The source digest of a version of `name` accepted earlier in this batch, by version identity. */
  acceptedSource(name: string, identity: string): string | undefined {
    return this.#accepted.get(name)?.get(identity);
  }

  accept(name: string, identity: string, sourceSha256: string, owners: readonly string[] | undefined): void {
    let versions = this.#accepted.get(name);
    if (!versions) {
      versions = new Map();
      this.#accepted.set(name, versions);
    }
    versions.set(identity, sourceSha256);
    if (owners && owners.length > 0 && !this.#newOwners.has(name)) this.#newOwners.set(name, owners);
  }
}

async function evaluate(
  ctx: PipelineContext,
  bytes: Uint8Array,
  trusted: TrustedKeys,
  docs: PluginDocuments,
  now: Date,
): Promise<Evaluation> {
  let contents: BundleContents;
  try {
    contents = await readBundle(bytes, ctx.bundleLimits);
  } catch (error) {
    return { kind: 'rejected', problems: problemsFrom(error) };
  }
  const problems: Problem[] = [];
  let manifest: Manifest | undefined;
  try {
    manifest = loadManifest(contents.manifest, contents.manifestName);
  } catch (error) {
    problems.push(...problemsFrom(error));
  }
  if (manifest) problems.push(...checkBundleFiles(contents, manifest));
  // The signature is checked even when the manifest is invalid, so every problem is reported at once.
  const signer = await checkPublisherSignature({
    policy: ctx.config.policy,
    trusted,
    manifestName: contents.manifestName,
    manifest: contents.manifest,
    signature: contents.signature,
    publisherKey: contents.publisherKey,
    now,
  });
  problems.push(...signer.problems);
  if (!manifest || problems.length > 0 || !signer.fingerprint) {
    return {
      kind: 'rejected',
      problems,
      ...(manifest ? { manifest } : {}),
      ...(signer.fingerprint ? { publisher: signer.fingerprint } : {}),
    };
  }
  const publisher = signer.fingerprint;
  const existing = await docs.get(manifest.name);
  const owners = docs.owners(manifest.name, existing);
  problems.push(
    ...authorizePublisher({ config: ctx.config, fingerprint: publisher, name: manifest.name, owners }),
  );

  // Versions are immutable: same name and version with other bytes is refused; the same bytes is a no-op.
  // Versions that differ only in build metadata (one version to SemVer) or letter case (one folder on macOS
  // and Windows) are the same version.
  const sourceSha256 = sha256Hex(contents.manifest);
  const identity = versionIdentity(manifest.version);
  const published = existing?.versions.find((v) => versionIdentity(v.version) === identity);
  const knownSha = published?.source_sha256 ?? docs.acceptedSource(manifest.name, identity);
  if (knownSha !== undefined) {
    if (knownSha === sourceSha256 && problems.length === 0)
      return { kind: 'already-published', manifest, publisher };
    if (knownSha !== sourceSha256) {
      const other = published && published.version !== manifest.version ? published.version : undefined;
      problems.push(
        problem(
          'VERSION_EXISTS',
          '/version',
          other
            ? `${manifest.name}@${manifest.version} is the same version as ${other}, already published (versions that differ only in build metadata or letter case are one version)`
            : `${manifest.name}@${manifest.version} is already published with different content`,
          {
            expected: 'a new version number (published versions are immutable)',
            found: manifest.version,
          },
        ),
      );
    }
  }
  problems.push(...checkArtifactDigests(contents, manifest));
  if (problems.length > 0) return { kind: 'rejected', problems, manifest, publisher };
  // The first accepted publisher of a name nobody owns owns it from now on, within this batch too.
  const firstOwners = ctx.config.ownership === 'first-come' && !owners?.length ? [publisher] : undefined;
  docs.accept(manifest.name, identity, sourceSha256, firstOwners);
  return { kind: 'accepted', manifest, contents, publisher, sourceSha256 };
}

/** Writes the immutable files of an accepted version and returns its record. */
async function writeVersion(
  ctx: PipelineContext,
  accepted: Accepted,
  published: string,
): Promise<VersionRecord> {
  const { manifest, contents } = accepted;
  const url = ctx.config.url;
  const artifacts: ArtifactRecord[] = [];
  for (const artifact of manifest.installation?.artifacts ?? []) {
    const digest = normalizeDigest(artifact.sha256);
    if (artifact.file !== undefined) {
      const body = contents.files.get(artifact.file);
      if (!body) throw new Error(`artifact ${artifact.file} vanished after validation`);
      const key = artifactKey(manifest.name, manifest.version, artifact.file);
      // Opaque bytes whatever the file is called: an `.html` or `.svg` artifact is a download, never a page
      // on the registry's origin (the servers say so too, for files published before this rule).
      await ctx.site.put(key, body, {
        contentType: 'application/octet-stream',
        cacheControl: CACHE_IMMUTABLE,
      });
      artifacts.push({
        os: artifact.os,
        arch: artifact.arch,
        url: `${url}/${key}`,
        sha256: digest,
        size_bytes: body.byteLength,
        hosted: true,
      });
    } else if (artifact.url !== undefined) {
      artifacts.push({
        os: artifact.os,
        arch: artifact.arch,
        url: artifact.url,
        sha256: digest,
        size_bytes: artifact.size_bytes,
        hosted: false,
      });
    }
  }
  // A JSON manifest is published byte for byte (unknown fields and all); YAML is rendered to JSON.
  const body = contents.manifestName.endsWith('.json') ? contents.manifest : encodeJson(manifest);
  const manifestAt = manifestKey(manifest.name, manifest.version);
  await putFile(ctx.site, manifestAt, body, CACHE_IMMUTABLE);
  await putFile(
    ctx.site,
    signatureKey(manifestAt),
    encoder.encode(await ctx.signer.sign(body)),
    CACHE_IMMUTABLE,
  );
  const requirements = manifest.requirements ?? {};
  return {
    version: manifest.version,
    published,
    prerelease: isPrerelease(manifest.version),
    yanked: false,
    deprecated: false,
    api_version: manifest.api_version,
    ...(requirements.min_api_version ? { min_api_version: requirements.min_api_version } : {}),
    ...(requirements.max_api_version ? { max_api_version: requirements.max_api_version } : {}),
    manifest_url: `${url}/${manifestAt}`,
    manifest_signature_url: `${url}/${signatureKey(manifestAt)}`,
    manifest_sha256: sha256Hex(body),
    manifest_size: body.byteLength,
    source_sha256: accepted.sourceSha256,
    publisher: accepted.publisher,
    artifacts,
  };
}

type DisplayFields = Pick<
  PluginDocument,
  | 'display_name'
  | 'description'
  | 'plugin_type'
  | 'capabilities'
  | 'supported_providers'
  | 'tags'
  | 'license'
  | 'homepage'
  | 'repository'
>;

function displayFieldsOf(manifest: Manifest): DisplayFields {
  const meta = manifest.metadata ?? {};
  return {
    ...(manifest.display_name ? { display_name: manifest.display_name } : {}),
    ...(manifest.description ? { description: manifest.description } : {}),
    plugin_type: manifest.plugin_type,
    capabilities: manifest.capabilities,
    supported_providers: manifest.supported_providers ?? [],
    tags: meta.tags ?? [],
    ...(meta.license ? { license: meta.license } : {}),
    ...(meta.homepage ? { homepage: meta.homepage } : {}),
    ...(meta.repository ? { repository: meta.repository } : {}),
  };
}

/** The version whose manifest describes the plugin on pages and in search: latest, else newest. */
function displayVersion(versions: readonly VersionRecord[]): string | undefined {
  return latestVersion(versions) ?? versions.find((v) => !v.yanked)?.version ?? versions[0]?.version;
}

/** Folds newly accepted versions into a plugin document. */
function mergePluginDocument(
  ctx: PipelineContext,
  existing: PluginDocument | undefined,
  added: readonly { record: VersionRecord; manifest: Manifest }[],
): PluginDocument {
  const first = added[0];
  if (!first) throw new Error('mergePluginDocument needs at least one version');
  const versions = sortVersionsDescending([...(existing?.versions ?? []), ...added.map((a) => a.record)]);
  const shown = displayVersion(versions);
  const fromAdded = added.find((a) => a.record.version === shown)?.manifest;
  const fields: DisplayFields = fromAdded
    ? displayFieldsOf(fromAdded)
    : existing
      ? pickDisplay(existing)
      : displayFieldsOf(first.manifest);
  const owners = existing?.owners.length
    ? existing.owners
    : ctx.config.ownership === 'first-come'
      ? [first.record.publisher]
      : [];
  return {
    schema: 'plugindex/plugin/v1',
    name: first.manifest.name,
    ...fields,
    latest_version: latestVersion(versions),
    channels: channelHeads(versions),
    owners,
    versions,
  };
}

function pickDisplay(doc: PluginDocument): DisplayFields {
  const {
    display_name,
    description,
    plugin_type,
    capabilities,
    supported_providers,
    tags,
    license,
    homepage,
    repository,
  } = doc;
  return {
    ...(display_name ? { display_name } : {}),
    ...(description ? { description } : {}),
    plugin_type,
    capabilities,
    supported_providers,
    tags,
    ...(license ? { license } : {}),
    ...(homepage ? { homepage } : {}),
    ...(repository ? { repository } : {}),
  };
}

/** A plugin's document, page and catalog line, rendered and ready to write. */
interface RenderedPlugin {
  readonly doc: PluginDocument;
  readonly body: Uint8Array;
  readonly page: Uint8Array;
  /** The catalog line, but for the document's digest, which its signing gives. */
  readonly line: CatalogLine;
}

/**
 * Renders everything a plugin publishes, before any of it is written: a document that cannot be rendered
 * (RenderError) fails here, where the batch can still reject what changed it.
 */
function renderPlugin(ctx: PipelineContext, doc: PluginDocument): RenderedPlugin {
  return {
    doc,
    body: encodeJson(doc),
    page: encoder.encode(renderPluginPage(doc, identityOf(ctx.config))),
    line: catalogLineOf(doc, { sha256: '', size: 0 }),
  };
}

/** Writes a plugin's document, signature and page; returns its catalog line. */
async function writePlugin(ctx: PipelineContext, rendered: RenderedPlugin): Promise<CatalogLine> {
  const digest = await putSigned(ctx, pluginDocumentKey(rendered.doc.name), rendered.body);
  await putFile(ctx.site, pluginPageKey(rendered.doc.name), rendered.page, CACHE_MUTABLE);
  return { ...rendered.line, document: digest };
}

/** Writes a plugin's document, signature and page from the document alone (rebuilds). */
async function writePluginDocument(ctx: PipelineContext, doc: PluginDocument): Promise<CatalogLine> {
  return writePlugin(ctx, renderPlugin(ctx, doc));
}

/** Files for browsers, not documents: the snapshot does not list them. */
const PAGE_FILES = new Set([HOME_PAGE_KEY, FAVICON_KEY]);

/** Memory for the three large global documents, kept between publishes (see BufferPool). */
const renderBuffers = new BufferPool(3);

/**
 * Rewrites the snapshot bins of the changed plugins (all bins when `changed` is undefined), the index
 * documents unless `deferIndexes` (then the catalog marks them pending, and the snapshot keeps listing the
 * ones already published, which still match their digests), the static files when they differ, the
 * snapshot, and then the catalog (the same bins); bumps the generation.
 */
async function writeGlobals(
  ctx: PipelineContext,
  catalog: Catalog,
  changed?: ReadonlySet<string>,
  deferIndexes = false,
): Promise<number> {
  // Plugin documents are bound by digest through 256 bins, so the snapshot stays small at any size.
  const bins = changed ? new Set([...changed].map(binOf)) : undefined;
  const globals = catalog.globals;
  // A registry never rendered has no index documents to keep listing: render them now.
  const indexes = !deferIndexes || INDEX_DOCUMENTS.some((key) => !globals.has(key));
  // Every name, sorted, only when something registry-wide is rendered: a deferred publish sorts none.
  const names = indexes || !bins ? sortedNames(catalog) : [];
  const signed: [string, Uint8Array][] = [];
  if (indexes) {
    const updated = ctx.clock.now().toISOString();
    const lines = names.map((n) => catalog.plugins.get(n) as CatalogLine);
    const apiVersions = [...new Set(lines.flatMap((l) => l.apiVersions))].sort();
    const metadata = buildRegistryMetadata(identityOf(ctx.config), apiVersions, updated);
    const encoded = lines.map(lineBytes);
    const entries = encoded.map((l) => l.entry);
    const header = toYaml({ registry_version: '1.0.0', registry_metadata: metadata });
    const take = renderBuffers.take;
    const searchRows = encoded.map((l) => l.search);
    signed.push(
      [INDEX_JSON_KEY, renderIndexJson(metadata, entries, take)],
      [INDEX_YAML_KEY, renderIndexYaml(header, entries, take)],
      [SEARCH_KEY, renderSearchJson(updated, searchRows, take)],
    );
  }
  const large = signed.map(([, body]) => body);
  const binNames = bins ? namesInBins(catalog, bins) : names;
  const binsToWrite = bins ?? new Set(binNames.map(binOf));
  for (const [bin, body] of renderBins(catalog.plugins, binsToWrite, binNames))
    signed.push([binKey(bin), encoder.encode(body)]);
  // Side by side: one document is written while the next is hashed and signed.
  await forEachLimited(signed, WRITE_CONCURRENCY, async ([key, body]) => {
    globals.set(key, await putSigned(ctx, key, body));
  });
  // Written, so no longer read: the next publish renders into the same memory. (After a failure they are
  // not given back: a store may still be reading one.)
  renderBuffers.give(large);
  catalog.indexesPending = !indexes;
  // For what this call did not rewrite, the published snapshot (the commit point) is the truth: the
  // catalog's copy of a digest is older when a run died after its snapshot but before the catalog was saved.
  const previous = await readJson<SnapshotDocument>(ctx.site, SNAPSHOT_KEY);
  const written = new Set(signed.map(([key]) => key));
  for (const [key, digest] of Object.entries(previous?.documents ?? {}))
    if (!written.has(key)) globals.set(key, digest);
  // Static files that change only with the registry's identity or key: rewritten only when they differ.
  const statics: [string, Uint8Array][] = [
    [REGISTRY_PUBLIC_KEY_KEY, encoder.encode(ctx.signer.publicKey)],
    [HOME_PAGE_KEY, encoder.encode(renderIndexPage(identityOf(ctx.config)))],
    [FAVICON_KEY, encoder.encode(FAVICON_SVG)],
  ];
  for (const [key, body] of statics) {
    const digest = digestOf(body);
    if (globals.get(key)?.sha256 !== digest.sha256 || !(await ctx.site.head(key))) {
      await putFile(ctx.site, key, body, CACHE_MUTABLE);
    }
    globals.set(key, digest);
  }
  const documents: Record<string, DocumentDigest> = {};
  for (const [key, digest] of [...globals].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (!PAGE_FILES.has(key)) documents[key] = digest;
  }
  const generation = Math.max(catalog.generation, previous?.generation ?? 0) + 1;
  await writeSnapshot(ctx, generation, documents);
  catalog.generation = generation;
  await saveCatalog(ctx.intake, catalog, changed);
  return generation;
}

async function writeSnapshot(
  ctx: PipelineContext,
  generation: number,
  documents: Record<string, DocumentDigest>,
): Promise<void> {
  const snapshot = renderSnapshot({
    registry: ctx.config.url,
    generation,
    created: ctx.clock.now(),
    ttlSeconds: ctx.config.snapshotTtlSeconds,
    keyFingerprint: ctx.signer.fingerprint,
    documents,
  });
  await putSigned(ctx, SNAPSHOT_KEY, snapshot);
}

/**
 * Waiting submissions in upload order (then by key), so when two uploads claim the same version the earlier
 * one wins, whatever their names.
 */
async function listIncoming(store: Store): Promise<ListedObject[]> {
  const listed: ListedObject[] = [];
  for await (const info of store.list(INCOMING_PREFIX)) listed.push(info);
  listed.sort(
    (a, b) =>
      a.lastModified.getTime() - b.lastModified.getTime() || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0),
  );
  return listed;
}

/**
 * Processes submissions (by default everything under `incoming/`) as one batch with one rebuild.
 * @example const result = await processSubmissions({ intake, site, signer, clock: systemClock, config });
 */
export async function processSubmissions(
  context: PipelineContext,
  keys?: readonly string[],
): Promise<BatchResult> {
  const { ctx, log } = withWriteLog(context);
  // A listing gives each upload's size; named keys are asked for theirs one by one below.
  const waiting: readonly { key: string; size?: number }[] = keys
    ? keys.map((key) => ({ key }))
    : await listIncoming(ctx.intake);
  const trusted = await loadTrustedKeys(ctx.config, ctx.signer.fingerprints);
  const docs = new PluginDocuments(ctx.site);
  const catalog = await loadCatalog(ctx.intake);
  // The time of publishing, for the whole batch: publisher keys are judged valid (or not) at it.
  const now = ctx.clock.now();
  const processedAt = now.toISOString();

  interface Item {
    key: string;
    id: string;
    sha256: string;
    /** The upload's bytes; absent for one too large to read, which is moved as a stream. */
    bytes?: Uint8Array;
    evaluation: Evaluation;
  }
  const items: Item[] = [];
  const maxBatchBytes = ctx.maxBatchBytes ?? Number.POSITIVE_INFINITY;
  let batchBytes = 0;
  let deferred = 0;
  for (const { key, size: listedSize } of waiting) {
    // Once one submission waits, every later one waits too: upload order decides conflicts.
    if (deferred > 0 || (items.length > 0 && batchBytes >= maxBatchBytes)) {
      deferred += 1;
      continue;
    }
    // A folder marker (S3 consoles make them) is not an upload; anything else is, whatever its name.
    if (key.endsWith('/') && listedSize === 0) continue;
    const size = listedSize ?? (await ctx.intake.head(key))?.size;
    if (size === undefined) continue; // already handled by an earlier (redelivered) run
    const tooLarge = bundleSizeProblem(size, ctx.bundleLimits);
    if (tooLarge) {
      // Refused by its listed size, never read into memory: hashed (for its id) and later moved as a stream.
      const stream = await ctx.intake.getStream(key);
      if (!stream) continue;
      const sha256 = await streamSha256(stream.body).finally(() => stream.cancel());
      items.push({ key, id: submissionIdFromDigest(key, sha256), sha256, evaluation: rejection([tooLarge]) });
      continue;
    }
    if (items.length > 0 && batchBytes + size > maxBatchBytes) {
      deferred += 1;
      continue;
    }
    const object = await ctx.intake.get(key);
    if (!object) continue; // already handled by an earlier (redelivered) run
    batchBytes += object.body.byteLength;
    const evaluation = await evaluate(ctx, object.body, trusted, docs, now).catch(
      (error: unknown): Evaluation => {
        // Storage failures are transient: fail the batch, leave the submission in incoming/, retry later.
        // Anything else is this submission's own doing (input a library choked on): reject it with the
        // reason, so one poisonous upload cannot block every later one.
        if (error instanceof StoreError) throw error;
        return rejection([
          problem(
            'SUBMISSION_UNREADABLE',
            'bundle:',
            `the submission could not be checked: ${(error as Error).message}`,
          ),
        ]);
      },
    );
    const sha256 = sha256Hex(object.body);
    items.push({ key, id: submissionIdFromDigest(key, sha256), sha256, bytes: object.body, evaluation });
  }

  // 1. Immutable files of every accepted version. A store refusing one for good (a name the filesystem
  // will not take) rejects that submission alone; the store being unavailable fails the batch, to retry.
  const added = new Map<string, { record: VersionRecord; manifest: Manifest }[]>();
  for (const item of items) {
    const evaluation = item.evaluation;
    if (evaluation.kind !== 'accepted') continue;
    try {
      const record = await writeVersion(ctx, evaluation, processedAt);
      const list = added.get(evaluation.manifest.name) ?? [];
      list.push({ record, manifest: evaluation.manifest });
      added.set(evaluation.manifest.name, list);
    } catch (error) {
      item.evaluation = failedWrite(error, evaluation, 'writing its files');
    }
  }

  // 2. Changed plugins: new versions, or a document the catalog has not caught up with (crash recovery).
  const changed = new Set(added.keys());
  for (const item of items) {
    if (item.evaluation.kind !== 'already-published') continue;
    const name = item.evaluation.manifest.name;
    const current = await ctx.site.get(pluginDocumentKey(name));
    if (current && catalog.plugins.get(name)?.document.sha256 !== sha256Hex(current.body)) changed.add(name);
  }
  // Rendered before anything of theirs is written: a plugin whose documents cannot be rendered rejects the
  // submissions that changed it, and the rest of the batch publishes.
  const rendered = new Map<string, RenderedPlugin>();
  for (const name of [...changed].sort()) {
    const existing = await docs.get(name);
    const newVersions = added.get(name);
    const doc = newVersions ? mergePluginDocument(ctx, existing, newVersions) : existing;
    if (!doc) {
      changed.delete(name);
      continue;
    }
    try {
      rendered.set(name, renderPlugin(ctx, doc));
    } catch (error) {
      // A published document that no longer renders is the operator's to mend: nothing new is at fault.
      if (!newVersions) throw error;
      changed.delete(name);
      for (const item of items) {
        const evaluation = item.evaluation;
        if (evaluation.kind === 'accepted' && evaluation.manifest.name === name)
          item.evaluation = failedWrite(error, evaluation, "rendering the plugin's documents");
      }
    }
  }
  // A deferred batch marks the index documents pending before the first write they would lag behind, so a
  // crash at any later step still leaves them to the next flush: the retry may find nothing else to do (the
  // catalog bin, once written, says the plugin is up to date).
  const defer = ctx.deferIndexes === true;
  if (defer && changed.size > 0 && !catalog.indexesPending) {
    catalog.indexesPending = true;
    await saveCatalog(ctx.intake, catalog, new Set());
  }
  await forEachLimited([...rendered.values()], WRITE_CONCURRENCY, async (plugin) => {
    docs.set(plugin.doc.name, plugin.doc);
    catalog.plugins.set(plugin.doc.name, await writePlugin(ctx, plugin));
  });

  // 3 and 4. Global documents and the snapshot, once for the whole batch (index documents also when an
  // earlier batch left them pending and this caller does not defer).
  const generation =
    changed.size > 0 || (!defer && catalog.indexesPending)
      ? await writeGlobals(ctx, catalog, changed, defer)
      : null;

  // 5. Outcomes, then the submissions leave incoming/.
  const outcomes: SubmissionOutcome[] = [];
  for (const item of items) {
    const outcome = outcomeOf(ctx, item.key, item.id, item.sha256, item.evaluation, processedAt, generation);
    // Plain JSON.stringify: an outcome must be recordable whatever text a rejected manifest held.
    await ctx.intake.put(statusKey(item.id), encoder.encode(`${JSON.stringify(outcome, null, 2)}\n`), {
      contentType: 'application/json',
      cacheControl: CACHE_PRIVATE,
    });
    const destination = outcome.status === 'rejected' ? rejectedKey(item.id) : processedKey(item.id);
    const options = { contentType: 'application/gzip', cacheControl: CACHE_PRIVATE };
    if (item.bytes) {
      await ctx.intake.put(destination, item.bytes, options);
    } else {
      const stream = await ctx.intake.getStream(item.key);
      if (stream)
        await ctx.intake.putStream(destination, stream.body, options).finally(() => stream.cancel());
    }
    await ctx.intake.delete(item.key);
    outcomes.push(outcome);
  }
  return {
    outcomes,
    generation,
    changedPlugins: [...changed].sort(),
    invalidate: log.mutableKeys(),
    deferred,
    indexesPending: catalog.indexesPending,
  };
}

function outcomeOf(
  ctx: PipelineContext,
  key: string,
  id: string,
  sha256: string,
  evaluation: Evaluation,
  processed: string,
  generation: number | null,
): SubmissionOutcome {
  const manifest = evaluation.manifest;
  const base = {
    schema: 'plugindex/outcome/v1' as const,
    id,
    submission: key,
    status: evaluation.kind,
    ...(manifest ? { plugin: manifest.name, version: manifest.version } : {}),
    ...(evaluation.publisher ? { publisher: evaluation.publisher } : {}),
    submission_sha256: sha256,
    processed,
  };
  if (evaluation.kind === 'rejected' || !manifest) {
    return { ...base, problems: evaluation.kind === 'rejected' ? evaluation.problems : [] };
  }
  const url = ctx.config.url;
  const versionUrl = `${url}/${versionBase(manifest.name, manifest.version)}`;
  return {
    ...base,
    ...(evaluation.kind === 'accepted' && generation !== null ? { generation } : {}),
    urls: {
      plugin: `${url}/${pluginDocumentKey(manifest.name)}`,
      page: `${url}/${pluginPageKey(manifest.name)}`,
      manifest: `${url}/${manifestKey(manifest.name, manifest.version)}`,
      signature: `${url}/${signatureKey(manifestKey(manifest.name, manifest.version))}`,
      artifacts: (manifest.installation?.artifacts ?? []).map((a) =>
        a.file !== undefined ? `${versionUrl}/${a.file}` : (a.url ?? ''),
      ),
    },
    problems: [],
  };
}

/**
 * Re-renders every plugin document, page and global document from the published plugin documents, and
 * re-signs everything. For key rotation, a changed registry URL or name, and recovery.
 */
export async function rebuildRegistry(
  context: PipelineContext,
): Promise<{ generation: number; plugins: number; invalidate: readonly string[] }> {
  const { ctx, log } = withWriteLog(context);
  const catalog = emptyCatalog();
  catalog.generation = (await loadCatalog(ctx.intake)).generation;
  const keys: string[] = [];
  for await (const info of ctx.site.list(PLUGINS_PREFIX)) {
    if (isPluginDocumentKey(info.key)) keys.push(info.key);
  }
  await forEachLimited(keys, WRITE_CONCURRENCY, async (key) => {
    const doc = await readJson<PluginDocument>(ctx.site, key);
    if (doc) catalog.plugins.set(doc.name, await writePluginDocument(ctx, doc));
  });
  const generation = await writeGlobals(ctx, catalog);
  return { generation, plugins: catalog.plugins.size, invalidate: log.mutableKeys() };
}

/**
 * Re-signs the snapshot with a fresh expiry and the next generation, changing nothing else: a quiet
 * registry stays valid for clients (the AWS deployment runs this on a schedule).
 */
export async function refreshSnapshot(
  context: PipelineContext,
): Promise<{ generation: number; invalidate: readonly string[] }> {
  const { ctx, log } = withWriteLog(context);
  const catalog = await loadCatalog(ctx.intake);
  const previous = await readJson<SnapshotDocument>(ctx.site, SNAPSHOT_KEY);
  if (!previous || catalog.indexesPending) {
    // Nothing published yet: everything. Index documents pending: the re-signed snapshot might be the last
    // for hours, so bring them up to date first.
    const generation = await writeGlobals(ctx, catalog, previous ? new Set() : undefined);
    return { generation, invalidate: log.mutableKeys() };
  }
  const generation = Math.max(catalog.generation, previous.generation) + 1;
  await writeSnapshot(ctx, generation, { ...previous.documents });
  catalog.generation = generation;
  await saveCatalog(ctx.intake, catalog, new Set());
  return { generation, invalidate: log.mutableKeys() };
}

/**
 * Renders the index documents a deferred publish left pending (index.json, index.yaml, search.json), and a
 * snapshot that lists them; does nothing when none are pending. The one step whose cost grows with the
 * registry, so callers run it once a burst of publishes is over.
 * @example const { generation } = await flushIndexes(ctx); // null: nothing was pending
 */
export async function flushIndexes(
  context: PipelineContext,
): Promise<{ generation: number | null; invalidate: readonly string[] }> {
  const { ctx, log } = withWriteLog(context);
  const catalog = await loadCatalog(ctx.intake);
  if (!catalog.indexesPending) return { generation: null, invalidate: [] };
  const generation = await writeGlobals(ctx, catalog, new Set());
  return { generation, invalidate: log.mutableKeys() };
}
