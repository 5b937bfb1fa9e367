/**
 * Where things live, and the one definition of a safe path. Every key the registry writes or reads is
 * spelled here, so the publisher, the stores, the servers and a verifying client agree on it. The manifest
 * rules (manifest/validate.ts) check every key a version will be written under with the same `keyProblem`
 * the stores apply before they write (adapters/fs-store.ts, adapters/s3-store.ts): whatever validation
 * accepts, every store can write, so no accepted upload can fail later on its own name.
 *
 * The published tree (the site store):
 *   index.json, index.yaml, search.json               the index documents (registry-wide), + .asc,
 *                                                     + .br and .gz (encoded variants; compressed past 1 MB)
 *   snapshot.json                                     the commit point: digests of every document, + .asc
 *   snapshot/bins/<hh>.json                           the digests of the plugin documents in bin hh, + .asc
 *   keys/registry.asc, index.html, favicon.svg        the registry key and the home page
 *   style.css                                         the pages' one style sheet (a page asset)
 *   plugins/<name>/index.json, index.html             the plugin document (+ .asc) and page (mutable)
 *   plugins/<name>/<version folder>/manifest.json     the signed manifest (immutable), + .asc (mutable:
 *                                                     a key rotation signs every manifest again)
 *   plugins/<name>/<version folder>/<artifact path>   hosted artifacts (immutable, served as downloads)
 *
 * The intake store (never published):
 *   incoming/<any name>                               uploads waiting
 *   status/<submission id>.json                       what became of each
 *   processed/<submission id>.tgz, rejected/…         the uploads after processing
 *   state/catalog/meta.tsv, state/catalog/bins/<hh>.tsv   the catalog (catalog.ts), order.bin (document-order.ts)
 *
 * The version folder is the version without its build metadata: SemVer says `1.0.0+a` and `1.0.0+b` are
 * one version, and S3 reads a `+` in a URL path as a space.
 */
// semver's parse alone, not its index: every command that names a key loads this module, and the index
// (all of semver) cost a publish handed to a server about 4 ms of its start.
import parseVersion from 'semver/functions/parse.js';
import { sha256Hex } from './digest.ts';
import {
  CACHE_IMMUTABLE,
  CACHE_MUTABLE,
  CACHE_PRIVATE,
  contentTypeFor,
  listFolders,
  type Store,
} from './store.ts';

/** Longest path segment: under every filesystem's name limit (eCryptfs: 143) with room for `.json`. */
export const MAX_SEGMENT_LENGTH = 128;
/** Longest key: S3's limit is 1,024 bytes, and keys are ASCII. */
export const MAX_KEY_LENGTH = 1024;

/**
 * One segment as a pattern: letters, digits, `.`, `_` and `-`, not starting with a dot (dot-files are a
 * store's own: sidecars, temp files, the lock). No `+` (S3 reads it as a space in a URL path), no `%`, `~`
 * or other characters that URLs, shells or Windows treat specially.
 */
export const SAFE_SEGMENT_PATTERN = `[A-Za-z0-9_-][A-Za-z0-9._-]{0,${MAX_SEGMENT_LENGTH - 1}}`;
/** A relative path of safe segments, as a JSON Schema pattern (the manifest's `artifacts[].file`). */
export const SAFE_RELATIVE_PATH_PATTERN = `^${SAFE_SEGMENT_PATTERN}(?:/${SAFE_SEGMENT_PATTERN})*$`;

const SAFE_SEGMENT = new RegExp(`^${SAFE_SEGMENT_PATTERN}$`);
/** Names Windows gives to devices, with any extension: a file named `nul.txt` cannot be made there. */
const WINDOWS_DEVICE = /^(con|prn|aux|nul|com[0-9]|lpt[0-9])$/i;

/** Why `segment` is not a safe path segment, or undefined when it is. */
function segmentProblem(segment: string): string | undefined {
  if (!SAFE_SEGMENT.test(segment)) {
    if (segment.length === 0) return 'an empty segment';
    if (segment.length > MAX_SEGMENT_LENGTH) return `a segment longer than ${MAX_SEGMENT_LENGTH} characters`;
    if (segment.startsWith('.')) return `a segment starting with "." (${JSON.stringify(segment)})`;
    return `a character other than letters, digits, ".", "_" and "-" (${JSON.stringify(segment)})`;
  }
  // Windows drops a trailing dot (`tool.` and `tool` are one file there) and reserves device names.
  if (segment.endsWith('.')) return `a segment ending with "." (${JSON.stringify(segment)})`;
  if (WINDOWS_DEVICE.test(segment.split('.')[0] ?? '')) return `a Windows device name (${segment})`;
  return undefined;
}

/**
 * A safe segment as `segmentProblem` has it: a safe pattern's characters, no dot at either end, the part
 * before its first dot no Windows device name.
 */
const CHECKED_SEGMENT = `(?!${WINDOWS_DEVICE.source.slice(1, -1)}(?:[./]|$))[A-Za-z0-9_-](?:[A-Za-z0-9._-]{0,${MAX_SEGMENT_LENGTH - 2}}[A-Za-z0-9_-])?`;
/**
 * A whole key of such segments, in one match: most keys are safe, and a store checks every key it writes
 * or reads (an import of 10,000 plugins, about 200,000), where splitting each into segments and each of
 * those at its dots cost more than the write's bookkeeping. A key it does not match is looked at segment by
 * segment, for what to say. The routing CloudFront Function embeds it (infra/edge-routing.ts), read with
 * the `i` flag as here.
 */
export const SAFE_KEY_PATTERN = `^${CHECKED_SEGMENT}(?:/${CHECKED_SEGMENT})*$`;
const SAFE_KEY = new RegExp(SAFE_KEY_PATTERN, 'i');

/** Why `key` is not a safe store key, or undefined when it is: a relative path of safe segments. */
export function keyProblem(key: string): string | undefined {
  if (key.length <= MAX_KEY_LENGTH && SAFE_KEY.test(key)) return undefined;
  if (key.length === 0) return 'an empty key';
  if (key.length > MAX_KEY_LENGTH) return `a key longer than ${MAX_KEY_LENGTH} characters`;
  for (const segment of key.split('/')) {
    const problem = segmentProblem(segment);
    if (problem) return problem;
  }
  return undefined;
}

/** True when `key` is a relative path of safe segments: what every store writes without question. */
export function isSafeKey(key: string): boolean {
  return keyProblem(key) === undefined;
}

/**
 * Plugin names the tree or a client's disk gives another meaning: Windows device names (the folder
 * `plugins/nul/` cannot exist there), and the words the registry's own URLs and files use.
 */
const RESERVED_PLUGIN_NAMES = new Set(['index', 'search', 'snapshot', 'keys', 'plugins', 'favicon']);

/** The manifest's plugin name rule (schema.ts says the same): words of lowercase letters and digits joined by single `-`. */
const PLUGIN_NAME_PATTERN = /^[a-z0-9]+(-[a-z0-9]+)*$/;
const PLUGIN_NAME_LENGTH = { min: 2, max: 64 } as const;

/**
 * What a name lacks to be a plugin name at all (form and length), or undefined; `pluginNameProblem` then
 * says whether it is one the registry reserves. A client refuses such a name before asking any registry.
 */
export function pluginNameFormProblem(name: string): string | undefined {
  if (name.length < PLUGIN_NAME_LENGTH.min || name.length > PLUGIN_NAME_LENGTH.max)
    return `${PLUGIN_NAME_LENGTH.min} to ${PLUGIN_NAME_LENGTH.max} characters`;
  if (!PLUGIN_NAME_PATTERN.test(name)) return "lowercase letters and digits, in words joined by single '-'";
  return undefined;
}

/** Why `name` (already a valid plugin name) cannot be published, or undefined. */
export function pluginNameProblem(name: string): string | undefined {
  if (RESERVED_PLUGIN_NAMES.has(name)) return `"${name}" is a name the registry's own paths use`;
  if (WINDOWS_DEVICE.test(name)) return `"${name}" is a Windows device name`;
  return undefined;
}

/** Files the registry writes beside the artifacts of a version, and names its routes give a meaning. */
const RESERVED_TOP_LEVEL = new Set(['manifest', 'manifest.json', 'manifest.yaml', 'manifest.yml']);
/** At any depth: a path ending in `/` is answered with its folder's index page. */
const RESERVED_ANY_DEPTH = new Set(['index.html', 'index.htm', 'index.json', 'index.yaml']);

/**
 * Why an artifact path (relative to its version folder) collides with a file the registry writes or a
 * route answers, or undefined. Case-insensitive: on macOS and Windows `Manifest.json` is `manifest.json`.
 * `.asc` is the registry's: a detached signature beside a file is read as the registry's signature of it.
 */
export function artifactPathProblem(file: string): string | undefined {
  const segments = file.toLowerCase().split('/');
  if (segments.length === 1 && RESERVED_TOP_LEVEL.has(segments[0] as string))
    return `"${file}" is the registry's own file in every version folder`;
  const reserved = segments.find((s) => RESERVED_ANY_DEPTH.has(s));
  if (reserved) return `"${reserved}" answers for its folder, so no artifact may be named so`;
  if (segments.some((s) => s.endsWith('.asc'))) return '".asc" names the registry\'s detached signatures';
  return undefined;
}

/**
 * The folder of a version: the version without build metadata (`1.2.0-rc.1+b7` -> `1.2.0-rc.1`), which is
 * also its identity (two versions that differ only there are one version).
 */
export function versionFolder(version: string): string {
  return parseVersion(version)?.version ?? version;
}

/**
 * Whether `version` is a SemVer version spelled as SemVer writes it, build metadata included: what a
 * published version record, a lock and an install record hold (`v1.0.0`, `=1.0.0` or ` 1.0.0`, which
 * semver also reads, are not). `semver.valid(v) === v` would refuse `1.0.0+build.5`, which is published.
 */
export function isCanonicalVersion(version: string): boolean {
  const parsed = parseVersion(version);
  if (parsed === null) return false;
  const build = parsed.build.length > 0 ? `+${parsed.build.join('.')}` : '';
  return `${parsed.version}${build}` === version;
}

/**
 * The identity two versions share when every reader must treat them as one: build metadata dropped (SemVer)
 * and letter case folded (`1.0.0-RC.1` and `1.0.0-rc.1` would be one folder on macOS and Windows).
 */
export function versionIdentity(version: string): string {
  return versionFolder(version).toLowerCase();
}

/** The detached signature the registry publishes beside a document or manifest. */
export function signatureKey(key: string): string {
  return `${key}.asc`;
}

/** The index documents: registry-wide, rendered from every plugin's catalog line. */
export const INDEX_JSON_KEY = 'index.json';
export const INDEX_YAML_KEY = 'index.yaml';
export const SEARCH_KEY = 'search.json';
/**
 * The registry as a falcoctl index (Diginfra's distribution: a YAML list of artifacts, one entry per
 * plugin), for tools that find plugins through such an index. In a folder of its own, as such tools are
 * given an index URL and read the whole file.
 */
export const FALCOCTL_INDEX_KEY = 'falcoctl/index.yaml';
/** Their cost grows with the registry (about 59 MB at 10,000 plugins of 10 versions); all else is per plugin. */
export const INDEX_DOCUMENTS: readonly string[] = [
  INDEX_JSON_KEY,
  INDEX_YAML_KEY,
  SEARCH_KEY,
  FALCOCTL_INDEX_KEY,
];

/**
 * When the index documents come to more than this many bytes together, they are rendered and written as
 * streams (pipeline/streamed.ts), never whole in memory. Below it, into the kept buffers, which is faster
 * (at 10,000 plugins of 10 versions, 61 MB, a warm flush took about half the time streamed ones took:
 * one rendering instead of four, one hash, compression of a buffer in one call) but holds each document,
 * its lines' bytes and its compressed variants at once: about twice the documents. 128 MB keeps the
 * buffers for registries up to about 20,000 such plugins, and bounds what the rendering holds beyond.
 */
export const STREAM_THRESHOLD_BYTES = 128 * 1024 * 1024;

/**
 * The content codings a large document is also published in, best first: brotli, then gzip for clients
 * without it. Each variant sits beside its document, named by the coding's usual file suffix.
 */
export const CONTENT_ENCODINGS = ['br', 'gzip'] as const;
export type ContentEncoding = (typeof CONTENT_ENCODINGS)[number];
const ENCODING_SUFFIX: Readonly<Record<ContentEncoding, string>> = { br: '.br', gzip: '.gz' };

/**
 * The documents published with encoded variants: the index documents, the only ones that grow with the
 * registry (and the only ones past the 10,000,000 bytes CloudFront compresses on its own). A fixed set,
 * because the CloudFront Function that picks a variant cannot look in the bucket: each of these always
 * has both variants (compressed, or the document's own bytes while it is small), so no request is routed
 * to a key that is not there.
 */
export const ENCODED_DOCUMENTS: ReadonlySet<string> = new Set(INDEX_DOCUMENTS);

/** `index.json` -> `index.json.br` / `index.json.gz`: the variant of a document in one coding. */
export function encodedVariantKey(key: string, encoding: ContentEncoding): string {
  return `${key}${ENCODING_SUFFIX[encoding]}`;
}

/**
 * A compressed variant's key (`index.json.gz`, `plugins/x/index.json.br`): the document it holds
 * (`encodedVariantKey` undone: an index document's, or a plugin document's) and its coding; undefined for
 * any other key.
 */
export function variantOfKey(
  key: string,
): { readonly document: string; readonly encoding: ContentEncoding } | undefined {
  for (const [encoding, suffix] of Object.entries(ENCODING_SUFFIX) as [ContentEncoding, string][]) {
    if (!key.endsWith(suffix)) continue;
    const document = key.slice(0, -suffix.length);
    return ENCODED_DOCUMENTS.has(document) || isPluginDocumentKey(document)
      ? { document, encoding }
      : undefined;
  }
  return undefined;
}

/** The signed record of every mutable document's digest: the commit point of a publish. */
export const SNAPSHOT_KEY = 'snapshot.json';
/**
 * The snapshot and its signature in one object, written after the pair: what a client reads, in one
 * request that cannot mix the body of one publish with the signature of another.
 */
export const SIGNED_SNAPSHOT_KEY = 'snapshot.signed.json';
/** The registry's public key, which signs every document. */
export const REGISTRY_PUBLIC_KEY_KEY = 'keys/registry.asc';
/** The publisher keys the operator revoked (signed, listed in the snapshot). */
export const REVOKED_KEYS_KEY = 'keys/revoked.json';

/** The envelope of an applied action, as submitted (immutable): anyone can check a logged action's signature. */
export function actionEnvelopeKey(digest: string): string {
  return `log/actions/${digest}.json`;
}

/** In the intake store: where the applied actions' markers are (`actionMarkerKey`), listed by a rebuild. */
export const ACTION_MARKERS_PREFIX = 'state/actions/';

/** In the intake store: the record that an action (by its digest) was applied, which a replay meets. */
export function actionMarkerKey(digest: string): string {
  return `${ACTION_MARKERS_PREFIX}${digest}.json`;
}

/** In the intake store: where the plugins' action orders are (`actionOrderKey`), listed by a rebuild. */
export const ACTION_ORDERS_PREFIX = 'state/action-order/';

/** In the intake store: a plugin's newest applied action per state it holds (lifecycle.ts `ActionOrder`). */
export function actionOrderKey(name: string): string {
  return `${ACTION_ORDERS_PREFIX}${name}.json`;
}
export const HOME_PAGE_KEY = 'index.html';
export const FAVICON_KEY = 'favicon.svg';
/** The pages' style sheet (render/html.ts `PAGE_STYLE`): a page asset, like the icon. */
export const STYLE_KEY = 'style.css';
/** The home page's search rows in a compact form (render/home-search.ts): a page asset, like index.html. */
export const HOME_SEARCH_KEY = 'home-search.json';

/** Number of snapshot bins: plugin documents are bound by digest in 256 small bin files (TUF's hashed bins). */
export const BIN_COUNT = 256;
export const SNAPSHOT_BINS_PREFIX = 'snapshot/bins/';

/** Bins already computed: a rebuild asks for every name's bin several times. */
const binsByName = new Map<string, string>();

/** The bin a plugin's document is listed in: the first byte of sha256(name), as two hex digits. */
export function binOf(name: string): string {
  let bin = binsByName.get(name);
  if (bin === undefined) {
    bin = sha256Hex(name).slice(0, 2);
    binsByName.set(name, bin);
  }
  return bin;
}

/** The snapshot bin document of `bin` (two hex digits). */
export function binKey(bin: string): string {
  return `${SNAPSHOT_BINS_PREFIX}${bin}.json`;
}

/** The bin a key names (`snapshot/bins/<bin>.json`), or undefined for any other key. */
export function binOfKey(key: string): string | undefined {
  if (!key.startsWith(SNAPSHOT_BINS_PREFIX) || !key.endsWith('.json')) return undefined;
  const bin = key.slice(SNAPSHOT_BINS_PREFIX.length, -'.json'.length);
  return /^[0-9a-f]{2}$/.test(bin) ? bin : undefined;
}

export const PLUGINS_PREFIX = 'plugins/';

export function pluginDocumentKey(name: string): string {
  return `${PLUGINS_PREFIX}${name}/index.json`;
}

/** True for `plugins/<name>/index.json`, a plugin document (not a file of one of its versions). */
export function isPluginDocumentKey(key: string): boolean {
  const parts = key.split('/');
  return parts.length === 3 && `${parts[0]}/` === PLUGINS_PREFIX && parts[2] === 'index.json';
}

/**
 * The name of each plugin the site store has a folder for, in the store's order: its folders, not every key
 * under `plugins/` (tens of files a plugin, each a metadata read on the filesystem store). A folder need not
 * hold a document (a plugin's leftovers): a reader of its document finds none.
 */
export async function* listPluginNames(site: Store): AsyncIterable<string> {
  for await (const folder of listFolders(site, PLUGINS_PREFIX))
    if (isPluginDocumentKey(`${folder}index.json`)) yield folder.slice(PLUGINS_PREFIX.length, -1);
}

export function pluginPageKey(name: string): string {
  return `${PLUGINS_PREFIX}${name}/index.html`;
}

export function versionBase(name: string, version: string): string {
  return `${PLUGINS_PREFIX}${name}/${versionFolder(version)}`;
}

export function manifestKey(name: string, version: string): string {
  return `${versionBase(name, version)}/manifest.json`;
}

export function artifactKey(name: string, version: string, file: string): string {
  return `${versionBase(name, version)}/${file}`;
}

/**
 * The key under a version's folder that a published artifact URL names (`<registry url>/plugins/<n>/<v>/…`),
 * wherever the registry says it is published: a client reads it under the URL it was given (a mirror, a
 * local server), not the one in the document. Undefined for a URL outside the version's folder or not a URL.
 */
export function hostedArtifactKey(name: string, version: string, url: string): string | undefined {
  let path: string;
  try {
    path = new URL(url).pathname;
  } catch {
    return undefined;
  }
  const folder = `/${versionBase(name, version)}/`;
  const at = path.lastIndexOf(folder);
  return at < 0 ? undefined : path.slice(at + 1);
}

/** Every key an accepted version is written under: what validation checks with `keyProblem`. */
export function versionKeys(name: string, version: string, files: readonly string[]): string[] {
  const manifest = manifestKey(name, version);
  return [manifest, signatureKey(manifest), ...files.map((file) => artifactKey(name, version, file))];
}

/** The registry's detached signature of a version's manifest: the one file of a version folder that changes. */
export const MANIFEST_SIGNATURE_FILE = 'manifest.json.asc';

/** The files of a version folder that are the registry's, not artifacts (`manifest` is its route). */
const VERSION_FILES = new Set(['manifest', 'manifest.json', MANIFEST_SIGNATURE_FILE]);

/**
 * True for `plugins/<name>/<version>/manifest.json.asc`, a manifest's signature: the one file of a version
 * folder a key rotation rewrites (pipeline/rotate.ts signs every manifest again with the new key), so it is
 * served as mutable, never cached for a year: a CDN's copy by the retired key (an invalidation that failed
 * or was never asked for) is refused by every client holding the new key, and an install `--frozen` from a
 * lock made since, `plugindex verify --url` and anyone checking it by hand read it.
 */
export function isManifestSignatureKey(key: string): boolean {
  return isUnderPlugins(key) && slashesIn(key, 4) === 3 && key.endsWith(`/${MANIFEST_SIGNATURE_FILE}`);
}

/**
 * True for a key under `plugins/`, its first segment spelled in any letter case. The filesystem store on
 * macOS's and Windows' default filesystems opens `Plugins/x/1.0.0/page.html` as the artifact
 * `plugins/x/1.0.0/page.html`: read by its spelling alone, a request for it made a hostile publisher's HTML
 * artifact a page of the registry's origin (`plugindex serve`). Only the first segment matters: any spelling
 * of the others keeps a key an artifact (a `Manifest.json` becomes a download, never a page).
 */
function isUnderPlugins(key: string): boolean {
  return (
    key.startsWith(PLUGINS_PREFIX) || key.slice(0, PLUGINS_PREFIX.length).toLowerCase() === PLUGINS_PREFIX
  );
}

/**
 * True for a hosted artifact's key (`plugins/<name>/<version>/<path>` other than the manifest and its
 * signature): served as a download, never as content a browser renders. The CloudFront Function
 * (infra/edge-routing.ts) applies the same test; a test runs both over the same paths.
 */
export function isHostedArtifactKey(key: string): boolean {
  if (!isUnderPlugins(key)) return false;
  const slashes = slashesIn(key, 4);
  if (slashes < 3) return false;
  return !(slashes === 3 && VERSION_FILES.has(key.slice(key.lastIndexOf('/') + 1)));
}

/**
 * How many `/` a key holds, counted up to `most` (a key's depth, asked of every key a store writes: cheaper
 * counted than split).
 */
function slashesIn(key: string, most: number): number {
  let count = 0;
  for (let at = key.indexOf('/'); at >= 0 && count < most; at = key.indexOf('/', at + 1)) count += 1;
  return count;
}

/** The folders of the intake store, never served: their files are never cached anywhere. */
const INTAKE_FOLDERS: readonly string[] = ['incoming/', 'processed/', 'rejected/', 'status/', 'state/'];

/** What a file's name says of how it is served. */
export interface ImpliedMetadata {
  readonly contentType: string;
  readonly cacheControl: string;
}

/**
 * The content type and cache policy a key's place in the layout implies: a version's files are immutable
 * (its hosted artifacts opaque bytes, whatever their names) but for its manifest's signature, which a key
 * rotation rewrites (`isManifestSignatureKey`), the intake store's are private, and the rest
 * of the site is mutable, each typed by its extension. The filesystem store keeps no sidecar for a small
 * file written with exactly this (adapters/fs-store.ts), and serves a file without one so: a publish of a
 * new plugin then creates half the files, and a file made by hand is served as its place says.
 */
export function impliedMetadata(key: string): ImpliedMetadata {
  if (INTAKE_FOLDERS.some((folder) => key.startsWith(folder)))
    return { contentType: contentTypeFor(key), cacheControl: CACHE_PRIVATE };
  if (isManifestSignatureKey(key)) return { contentType: contentTypeFor(key), cacheControl: CACHE_MUTABLE };
  if (isUnderPlugins(key) && slashesIn(key, 3) >= 3) {
    const contentType = isHostedArtifactKey(key) ? 'application/octet-stream' : contentTypeFor(key);
    return { contentType, cacheControl: CACHE_IMMUTABLE };
  }
  return { contentType: contentTypeFor(key), cacheControl: CACHE_MUTABLE };
}

/** The registry config object in the intake store (AWS); locally it is the registry folder's plugindex.json. */
export const CONFIG_KEY = 'config/plugindex.json';

/** Where uploads wait, under any name, until a batch takes them. */
export const INCOMING_PREFIX = 'incoming/';

/** `status/<id>.json`: what became of one submission. */
export function statusKey(id: string): string {
  return `status/${id}.json`;
}

/** Where an accepted (or already published) upload is kept once processed (`json` for an action). */
export function processedKey(id: string, extension: 'tgz' | 'json' = 'tgz'): string {
  return `processed/${id}.${extension}`;
}

/** Where a rejected upload is kept: nothing is dropped (`json` for an action). */
export function rejectedKey(id: string, extension: 'tgz' | 'json' = 'tgz'): string {
  return `rejected/${id}.${extension}`;
}

/**
 * A stable id for a submission from its upload's key and SHA-256 (hex): its file name and the start of its
 * digest, so a redelivered upload maps to itself, and an upload hashed as a stream gets the same id as one
 * read whole. Whatever the upload's name, the id is a safe key segment (`status/<id>.json`,
 * `rejected/<id>.tgz`): an upload named `con.x.tgz` or `a b.tgz` gets its outcome like any other. The same
 * bytes uploaded under two keys are two submissions, each with its outcome: only a plain name right under
 * `incoming/` goes without the start of its key's own digest, and of each id only one name is plain: a
 * bundle's `<base>.tgz` or an action's `<base>.json` (its whole name). Any other name (in a folder of
 * `incoming/`, made safe or cut short here, `.tar.gz`, `.TGZ`, no extension, a Windows device name) adds it,
 * so `incoming/a/x.tgz` and `incoming/b/x.tgz`, `a b.tgz` and `a_b.tgz`, or `x.tgz`, `x.tar.gz` and `x`
 * differ. Before, the last three shared an id, and the outcome recorded last (and the one copy in
 * `processed/` or `rejected/`) stood for both.
 */
export function submissionIdFromDigest(key: string, sha256: string): string {
  const name = key.split('/').pop() ?? 'submission';
  const base = name.replace(/\.(tgz|tar\.gz)$/i, '');
  const safe =
    base
      .replace(/[^A-Za-z0-9._-]/g, '_')
      .replace(/^[.]+/, '_')
      .slice(0, 80) || 'submission';
  const digest = sha256.slice(0, 12);
  const isJson = /\.json$/i.test(safe);
  // One plain name an id: `x.tgz` (not `x.tar.gz`, `x.TGZ` or `x`), `x.json` (not `x.json.tgz`).
  const plainName = isJson ? name === safe : name === `${safe}.tgz`;
  const plain = plainName && key === `${INCOMING_PREFIX}${name}`;
  const keyHash = `-${sha256Hex(new TextEncoder().encode(key)).slice(0, 8)}`;
  const id = `${safe}-${digest}${plain ? '' : keyHash}`;
  // The stand-in for a name the stores refuse is keyed whatever the name: `con.x.tgz` and `nul.y.tgz`, or
  // `submission.tgz`, would share it otherwise.
  return segmentProblem(`${id}.json`) === undefined ? id : `submission-${digest}${keyHash}`;
}

/**
 * An ETag as one form, its quotes dropped (S3 gives it quoted in a listing, a HEAD and a PUT's answer alike;
 * an SDK or a shell may give it bare).
 */
function bareEtag(etag: string): string {
  return etag.replace(/^(?:W\/)?"(.*)"$/, '$1');
}

/**
 * The id of an upload the registry judges unread (the store lists it but cannot read it, StoreError
 * STORE_UNREADABLE, or it is too large to stream): no bytes name it, so its key and its ETag do, hashed in the
 * digest's place (`unreadable\0<key>\0<ETag, unquoted>`, which no upload's bytes are taken for), and each batch
 * that meets it while it stays in `incoming/` records its outcome again under the same id. The ETag is what
 * keeps it from whoever guesses the key (publishers read `status/` by exact key only): S3 gives it to the
 * uploader in its PUT's answer, and to no other publisher (none may read `incoming/`); it is the MD5 of the
 * bytes, of their parts, or S3's own for a KMS key or SSE-C, so no one without the bytes or that answer
 * computes it. Named by the key alone, as it was, anyone who guessed another's upload key read its outcome.
 * @example unreadableSubmissionId('incoming/my.tgz', '"9e107d9d372bb6826bd81d3542a419d6"')
 */
export function unreadableSubmissionId(key: string, etag: string): string {
  return submissionIdFromDigest(
    key,
    sha256Hex(new TextEncoder().encode(`unreadable\0${key}\0${bareEtag(etag)}`)),
  );
}

/**
 * The ids the outcome of the upload at `key` of these bytes (`sha256`), given `etag` by the store that took
 * it, may be recorded under, the one it has when judged: by its bytes (`submissionIdFromDigest`), or by its
 * key and ETag when the registry judges it unread (`unreadableSubmissionId`: no bytes to name it). A
 * submitter waiting for its outcome asks for both; it waited for the first alone, and never found the outcome
 * of an upload the registry could not read (archived by a lifecycle rule, encrypted with a key the registry
 * may not use) until it gave up.
 */
export function submissionIdsOf(
  key: string,
  sha256: string,
  etag: string,
): readonly [read: string, unreadable: string] {
  return [submissionIdFromDigest(key, sha256), unreadableSubmissionId(key, etag)];
}

/** `submissionIdFromDigest` for an upload's bytes. */
export function submissionIdFromBytes(key: string, bytes: Uint8Array): string {
  return submissionIdFromDigest(key, sha256Hex(bytes));
}

/** The catalog, the publisher's own state (catalog.ts): the meta file, one file per bin, and the journal. */
export const CATALOG_META_KEY = 'state/catalog/meta.tsv';

/**
 * The snapshots runs recorded they were about to publish (catalog.ts `recordSnapshot`), each with its
 * generation: an object of its own, not lines of the meta file, so that writing the record never writes
 * back a meta file another writer replaced since this run read it.
 */
export const CATALOG_SNAPSHOT_RECORD_KEY = 'state/catalog/snapshot-writing.tsv';

export function catalogBinKey(bin: string): string {
  return `state/catalog/bins/${bin}.tsv`;
}

/**
 * The order of the index documents as last rendered (document-order.ts): what the next rendering merges the
 * changed plugins into. Named by digest in the meta file.
 */
export const CATALOG_ORDER_KEY = 'state/catalog/order.bin';

/** The catalog's journal: the lines deferred publishes changed, one object per commit, named by its digest. */
export const CATALOG_JOURNAL_PREFIX = 'state/catalog/journal/';

export function catalogJournalKey(sha256: string): string {
  return `${CATALOG_JOURNAL_PREFIX}${sha256}.tsv`;
}

/**
 * Where a flush too large to hold spills every plugin's items in document order (one object per kind of
 * item: `entries`, `search`, `falcoctl`), for its renderings to stream; deleted once the documents are written.
 */
export function catalogSpillKey(items: 'entries' | 'search' | 'falcoctl'): string {
  return `state/catalog/spill/${items}.bin`;
}

/**
 * The look-alike name index (look-alike.ts): each plugin name filed under its skeleton, in one file per bin
 * of the skeleton (the catalog's 256 bins), and the mark that it holds every name of the registry.
 */
export const LOOK_ALIKE_PREFIX = 'state/catalog/names/';
export const LOOK_ALIKE_COMPLETE_KEY = `${LOOK_ALIKE_PREFIX}complete`;

export function lookAlikeBinKey(bin: string): string {
  return `${LOOK_ALIKE_PREFIX}${bin}.tsv`;
}

/**
 * The OCI repository index (oci-repositories.ts): each plugin filed under every OCI repository its versions
 * keep artifacts in, in one file per bin of the repository, and the mark that it holds every plugin.
 */
export const OCI_REPOSITORIES_PREFIX = 'state/catalog/oci-repositories/';

/**
 * A loopback host, where the client takes plain http: (a registry served on this machine, an OCI registry
 * there: oci.ts `ociRegistryUrl`), as WHATWG URL parsing writes a hostname.
 */
export function isLoopbackHost(hostname: string): boolean {
  // WHATWG URL has already normalized the host: `127.1` is `127.0.0.1`, `[0::1]` is `[::1]`.
  return (
    hostname === 'localhost' || hostname === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname)
  );
}

/**
 * The registry a URL names, as WHATWG URL parsing spells it (the scheme and host lower-cased, a default port
 * dropped) and without trailing slashes, as client/config.ts `normalizeRegistryUrl` writes a configured one:
 * an operator who writes the same URL another way in the registry's config has not moved it, and a pin
 * compared byte for byte (client/key-chain.ts `checkSnapshotRegistry`) refused every client until each added
 * it again. A key rotation and a void in the log (log.ts `checkVoids`) are held to the registry they are of
 * the same way. A path is compared as it is (`/Registry` and `/registry` may be two registries on one host).
 * A string no URL parser takes is compared as it is.
 * @example registryIdentity('HTTPS://Plugins.Example:443/') // 'https://plugins.example'
 */
export function registryIdentity(url: string): string {
  return URL.canParse(url) ? new URL(url).href.replace(/\/+$/, '') : url;
}

/**
 * Text meant as a URL that no URL parser takes (a port out of range, a space in the host, an unclosed IPv6
 * bracket), as a refusal shows it: what reads as a user name or password (up to the last `@` before any
 * query, or before the first `/` of its path, a password holding a `?` or `#`) as `***`, each query value
 * and a fragment as `…`, the rest as typed, so the mistake stays visible. A refusal echoed it whole,
 * credentials and all, as no parser could say which part they were.
 * @example shownUnparsedUrl('https://u:pw@r.example:99999/x?t=1') // 'https://***@r.example:99999/x?t=…'
 */
export function shownUnparsedUrl(text: string): string {
  // A scheme only where a `/` follows its `:` (`hps:/`, `https://`): without one, `user:s3cret@host` has
  // none, and `user:` was kept as a scheme, the user name shown beside the masked password.
  const scheme = /^(?:[a-z][a-z0-9+.-]*:(?=\/))?\/*/i.exec(text)?.[0] ?? '';
  const queryAt = text.search(/[?#]/);
  const beforeQuery = queryAt < 0 ? text : text.slice(0, queryAt);
  // Up to the first `/` after the scheme too: a password may hold a `?` or a `#`, which no parser here says
  // is not a query's, and cut at them the text held no `@` and `user:hunter2` was shown.
  const slash = text.indexOf('/', scheme.length);
  const authority = slash < 0 ? text : text.slice(0, slash);
  const at = Math.max(beforeQuery.lastIndexOf('@'), authority.lastIndexOf('@'));
  const bare = at < scheme.length ? text : `${scheme}***${text.slice(at)}`;
  return shownUrlText(bare.replace(/\?[^#]*/, (query) => shownQuery(query)).replace(/#.*/s, '#…'));
}

/**
 * How many characters of a URL after its scheme and host a message shows (client/config.ts `shownUrl` and
 * `redactUrl`, `shownUnparsedUrl` here): its start and its last `SHOWN_URL_END_CHARACTERS`; the rest between
 * them is counted, not shown. A URL of any length was echoed whole into every refusal, its log line and
 * `--json`. Above the URLs the client itself forms, which a message names whole: a plugin's documents and
 * artifacts under a base path, an OCI manifest or blob by its digest (`/v2/REPOSITORY/manifests/sha256:` and
 * 64 digits: 100 characters with a short repository, so a cut at 100 hid the digest a message was about)
 * with a presigned query's names.
 */
export const SHOWN_URL_PATH_CHARACTERS = 256;

/**
 * Of `SHOWN_URL_PATH_CHARACTERS`, those kept from the end of a long URL. The end names the thing a message is
 * about, the start only where it is: a local registry's or manifest's `file:` URL deep in a checkout lost its
 * file name to a cut after the start, and an OCI blob's URL under a long repository its digest (`/blobs/`,
 * `sha256:` and 64 digits: 78 characters, with room for the plugin's folders above a file name).
 */
export const SHOWN_URL_END_CHARACTERS = 160;

/** Of the scheme and host (or text before any `/`, of one no parser takes): a DNS name's 253, and a port. */
const SHOWN_URL_HOST_CHARACTERS = 262;

/**
 * A GitHub token, by GitHub's documented formats: a prefix naming its kind (`ghp_`, `gho_`, `ghu_`, `ghs_`,
 * `ghr_`) then 36 letters and digits, or `github_pat_`, 22, `_` and 59. Formats made to be recognized
 * (secret scanning), and no path the registry lays out holds one: a plugin name holds no `_`, nor does a
 * SemVer version. Found as secret scanning finds it, wherever it stands in the URL with no letter or digit
 * run on either side (an underscore is neither: `ghp_…_old` holds the token): a whole segment alone, it missed
 * `ghp_….json`, `…/token=ghp_…;v=1` and `ghp_…-old`.
 * Other text is shown as it is: a guess would hide the part of a URL that says where the mistake is, and miss
 * tokens all the same.
 */
const TOKEN =
  /(?<![A-Za-z0-9])(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})(?![A-Za-z0-9])/g;

/**
 * A run of letters, digits, `_` and percent-escapes (`ghp%5F…`, `%67hp_…`): what a server decodes, so a token
 * written so is the token (the WHATWG parser leaves a path's escapes as they are). Every maximal run, those
 * holding an escape judged by `maskedTokens`: a pattern demanding one backtracked through each run without
 * one from every start in it, quadratic (86 s for a URL of 100,000 letters, which a lock may name).
 */
const ENCODED_RUN = /(?:%[0-9A-Fa-f]{2}|[A-Za-z0-9_])+/g;

/**
 * `text` with every GitHub token (`TOKEN`) as `***`, one written with percent-escapes too: such a run is
 * masked whole when its decoded text holds a token (its escapes decoded byte by byte, so one that is no
 * UTF-8 still reads), and left as written otherwise.
 */
function maskedTokens(text: string): string {
  const holdsToken = (run: string): boolean => {
    const decoded = run.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) =>
      String.fromCharCode(Number.parseInt(hex, 16)),
    );
    return new RegExp(TOKEN.source).test(decoded);
  };
  return text
    .replace(ENCODED_RUN, (run) => (run.includes('%') && holdsToken(run) ? '***' : run))
    .replace(TOKEN, '***');
}

/**
 * A URL as a message shows it, already without credentials and query values (`shownUrl`,
 * `shownUnparsedUrl`): a GitHub token in it as `***` (`maskedTokens`), and one longer than its scheme,
 * host and `SHOWN_URL_PATH_CHARACTERS` more cut in the middle: the scheme, the host and the start of the
 * rest, how many characters were left out, and the last `SHOWN_URL_END_CHARACTERS` (whole characters, never
 * half a surrogate pair). Every URL alike, https: as file:: whatever makes one long (a folder deep in a
 * checkout, a long base path or OCI repository, a presigned query's names), its end names the file, the
 * version or the digest, as its start names the host.
 * @example shownUrlText(`file:///${'a'.repeat(300)}/manifest.json`) // 'file:///aa…a… (59 more characters) …aa…a/manifest.json'
 */
export function shownUrlText(shown: string): string {
  const masked = maskedTokens(shown);
  // Two slashes, then the host: `file:///home/…` has none, and its first folder is the path's, not a host's.
  const head = /^(?:[a-z][a-z0-9+.-]*:)?(?:\/\/)?[^/?#]*/i.exec(masked)?.[0] ?? '';
  const keep = Math.min(Array.from(head).length, SHOWN_URL_HOST_CHARACTERS) + SHOWN_URL_PATH_CHARACTERS;
  if (masked.length <= keep) return masked;
  const characters = Array.from(masked);
  if (characters.length <= keep) return masked;
  const start = characters.slice(0, keep - SHOWN_URL_END_CHARACTERS).join('');
  const end = characters.slice(characters.length - SHOWN_URL_END_CHARACTERS).join('');
  return `${start}… (${characters.length - keep} more characters) …${end}`;
}

/**
 * `?a=1&b` as `?a=…&…`: each parameter's name kept, every value hidden, a parameter without `=` hidden
 * whole (it may be the token itself). A query can hold a secret as credentials do (a `?token=`, a presigned
 * storage URL's `X-Amz-Signature`). A part of a URL, not cut here: the URL it is shown in is, whole
 * (`shownUrlText`), so a count of what was left out counts the URL's characters once.
 */
export function shownQuery(search: string): string {
  if (search === '' || search === '?') return search;
  const shown = search
    .slice(1)
    .split('&')
    .map((part) => {
      const equals = part.indexOf('=');
      return equals < 0 ? '…' : `${part.slice(0, equals)}=…`;
    });
  return `?${shown.join('&')}`;
}
