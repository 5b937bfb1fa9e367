/**
 * Plugins read from a folder laid out as the PulumiCost spec's filesystem discovery shows
 * (`BASE/<name>/<version>/manifest.json`, the binaries beside it), with `manifest.json.asc`, a detached
 * signature of manifest.json by a key the user pins (a publisher's or a registry's). The folder may be on
 * disk (file:), behind any static web server (https:, or loopback http:), or in an S3 bucket (s3:); every
 * byte comes through the Fetcher, so the same caps, mirrors, retries and URL rules apply as for a registry.
 *
 * No registry has checked such a folder: the manifest is judged here as a registry judges a submission
 * (signature first, then the strict reading and validation of the manifest), and a one-version plugin
 * document is made from it, so resolve, install and lock read it as they read a registry's.
 *
 * An unpacked `plugindex pack` bundle (manifest.json, its .asc, publisher.asc, artifacts/<os>-<arch>/FILE)
 * is exactly one such version folder.
 *
 * @example
 * const source = new FolderSource({ name: 'team', endpoint, fetcher, keys: [publisherKey] });
 * const [newest] = await source.versions('kubecost');
 * const { document, manifest } = await source.read('kubecost', newest);
 */

import type { Key } from 'openpgp';
import semver from 'semver';
import { normalizeDigest, sha256Hex } from '../index-builder/digest.ts';
import { type Problem, SubmissionError, TrustError } from '../index-builder/errors.ts';
import {
  isCanonicalVersion,
  pluginNameFormProblem,
  signatureKey,
  versionFolder,
} from '../index-builder/layout.ts';
import { MAX_MANIFEST_BYTES, readManifestDocument } from '../index-builder/manifest/parse.ts';
import { validateManifest } from '../index-builder/manifest/validate.ts';
import type {
  ArtifactRecord,
  Manifest,
  ManifestArtifact,
  OciArtifact,
  PluginDocument,
} from '../index-builder/model.ts';
import { ociArtifactUrl } from '../index-builder/oci.ts';
import { descriptionOf, versionRecordOf } from '../index-builder/records.ts';
import { verifyDetachedSignature } from '../index-builder/signing.ts';
import { assertPluginDocument } from '../index-builder/verify.ts';
import { channelHeads, compareVersions, latestVersion } from '../index-builder/versions.ts';
import { ClientError } from './errors.ts';
import { type Endpoint, type Fetcher, fetchBody, UNLISTED_LIMITS } from './fetcher.ts';
import type { VerifiedManifest } from './session.ts';

export interface FolderSourceOptions {
  /** The source's name, for messages. */
  readonly name: string;
  /** The folder (and its mirrors): `bases` of file:, https:, loopback http: or s3: URLs. */
  readonly endpoint: Endpoint;
  readonly fetcher: Fetcher;
  /** OpenPGP keys trusted for this source: a manifest must be signed by one of them. */
  readonly keys: readonly Key[];
}

export interface SourceVersion {
  /** Synthesized from the manifest: this one version. It passes `assertPluginDocument`. */
  readonly document: PluginDocument;
  readonly manifest: VerifiedManifest;
}

/**
 * A manifest's signing time is the only time a folder vouches for: neither a file's mtime nor an HTTP
 * Last-Modified is signed, and each transport gives another. The epoch, when the manifest names no date,
 * keeps the same bytes the same document wherever they are read from.
 */
const NO_DATE = new Date(0).toISOString();
const MANIFEST_FILE = 'manifest.json';
/** Problems quoted in a refusal; the rest are counted. */
const PROBLEMS_SHOWN = 5;

export class FolderSource {
  readonly name: string;
  readonly #endpoint: Endpoint;
  readonly #fetcher: Fetcher;
  readonly #keys: readonly Key[];

  constructor(options: FolderSourceOptions) {
    if (options.keys.length === 0)
      throw new ClientError(
        'CLIENT_CONFIG_INVALID',
        `Source "${options.name}" trusts no key: a folder's manifests are accepted only when signed by a pinned key`,
      );
    this.name = options.name;
    this.#endpoint = options.endpoint;
    this.#fetcher = options.fetcher;
    this.#keys = options.keys;
  }

  /**
   * The SemVer folder names under `<plugin>/` (other folders ignored), newest first.
   * @throws ClientError REQUEST_INVALID for a web folder (it cannot be listed: name an exact version) or a name
   *   that is not a plugin name; FETCH_NOT_FOUND when the folder has no `<plugin>/`.
   */
  async versions(plugin: string): Promise<string[]> {
    this.#checkName(plugin);
    const names = await this.#fetcher.list(this.#endpoint, plugin);
    return names.filter((name) => semver.valid(name) === name).sort((a, b) => compareVersions(b, a));
  }

  /**
   * `<plugin>/<version>/manifest.json` and its `.asc`, verified, and the one-version plugin document made from it.
   * @throws TrustError DOCUMENT_MISMATCH (no trusted signature, or a manifest of another name or version than
   *   its folder), DOCUMENT_MALFORMED (not a valid manifest); ClientError FETCH_NOT_FOUND, FETCH_FAILED,
   *   RESPONSE_TOO_LARGE, REQUEST_INVALID.
   */
  async read(plugin: string, version: string): Promise<SourceVersion> {
    this.#checkName(plugin);
    if (!isCanonicalVersion(version))
      throw new ClientError(
        'REQUEST_INVALID',
        `Source "${this.name}": ${JSON.stringify(version)} is not a SemVer version (a version folder of ${plugin})`,
      );
    // The registry's own tree drops build metadata from a version's folder (layout.ts versionFolder): a
    // version a lock holds with it (`1.0.0+build.5`) is read from `1.0.0/`, and its manifest must say it.
    const folder = versionFolder(version);
    const base = (this.#endpoint.bases[0] ?? '').replace(/\/+$/, '');
    const folderUrl = `${base}/${plugin}/${folder}`;
    const read = await this.#readVerified(this.#endpoint, `${plugin}/${folder}/`, MANIFEST_FILE, folderUrl);
    const { manifest } = read.verified;
    const matches =
      version === folder ? versionFolder(manifest.version) === folder : manifest.version === version;
    if (manifest.name !== plugin || !matches)
      throw new TrustError(
        'DOCUMENT_MISMATCH',
        `${folderUrl}/${MANIFEST_FILE}: the manifest is of ${manifest.name}@${manifest.version}, but its folder is ${plugin}/${folder}${version === folder ? '' : ` (read for ${version})`}`,
      );
    return { document: read.document, manifest: read.verified };
  }

  /**
   * An exact manifest URL and its `.asc` beside it (`<url>.asc`); the folder of the URL is where its `file`
   * artifacts are. Read with this source's endpoint settings; its credentials go only to their own origin.
   * @throws what `read` throws.
   */
  async readUrl(manifestUrl: string): Promise<SourceVersion> {
    let url: URL;
    try {
      url = new URL(manifestUrl);
    } catch {
      throw new ClientError(
        'REQUEST_INVALID',
        `Source "${this.name}": ${JSON.stringify(manifestUrl)} is not a URL`,
      );
    }
    const slash = url.pathname.lastIndexOf('/');
    const file = url.pathname.slice(slash + 1);
    if (url.search !== '' || url.hash !== '' || file === '')
      throw new ClientError(
        'REQUEST_INVALID',
        `Source "${this.name}": ${manifestUrl} is not the URL of a manifest file (no query, no fragment, not a folder)`,
      );
    const folderUrl = url.href.slice(0, url.href.length - file.length - 1);
    const { credentials, ...rest } = this.#endpoint;
    const origin = url.origin;
    const sameOrigin =
      origin !== 'null' &&
      this.#endpoint.bases[0] !== undefined &&
      sameOriginAs(origin, this.#endpoint.bases[0]);
    const endpoint: Endpoint = {
      ...rest,
      bases: [folderUrl],
      ...(credentials !== undefined && sameOrigin ? { credentials } : {}),
    };
    // Still percent-encoded, as the fetcher joins it to the folder's URL again.
    const read = await this.#readVerified(endpoint, '', file, folderUrl);
    return { document: read.document, manifest: read.verified };
  }

  /** The manifest at `<folder>/<file>` and its signature, verified, validated and made into a document. */
  async #readVerified(
    endpoint: Endpoint,
    folder: string,
    file: string,
    folderUrl: string,
  ): Promise<{ document: PluginDocument; verified: VerifiedManifest }> {
    const manifestUrl = `${folderUrl}/${file}`;
    const [bytes, signatureBytes] = await Promise.all([
      this.#body(endpoint, `${folder}${file}`, MAX_MANIFEST_BYTES),
      this.#body(endpoint, signatureKey(`${folder}${file}`), UNLISTED_LIMITS.signature),
    ]);
    const signature = new TextDecoder().decode(signatureBytes);
    const { manifest, publisher } = await this.verify(bytes, signature, manifestUrl);
    const verified: VerifiedManifest = { manifest, bytes, signature };
    const document = folderPluginDocument({ manifest: verified, manifestUrl, folderUrl, publisher });
    return { document, verified };
  }

  /**
   * A manifest's bytes and detached signature, however they were had (read here, or by a frozen install
   * from the cache or where its lock found them), judged as this source judges every manifest it reads:
   * the signature by a key trusted for the source first, then the strict reading and validation.
   * @returns the manifest and the fingerprint of the key that signed it (the publisher its document names).
   * @throws TrustError DOCUMENT_MISMATCH (no signature by a trusted key), DOCUMENT_MALFORMED (not a valid
   *   manifest).
   */
  async verify(
    bytes: Uint8Array,
    signature: string,
    manifestUrl: string,
  ): Promise<{ readonly manifest: Manifest; readonly publisher: string }> {
    // The signature before anything else: nothing of the bytes is read until a trusted key vouches for them.
    const signed = await verifyDetachedSignature(bytes, signature, this.#keys);
    if (!signed.ok)
      throw new TrustError(
        'DOCUMENT_MISMATCH',
        `${signatureKey(manifestUrl)}: the signature of ${manifestUrl} is not by a key trusted for source "${this.name}" (${signed.message})`,
      );
    return { manifest: await checkManifest(bytes, manifestUrl), publisher: signed.fingerprint };
  }

  #body(endpoint: Endpoint, path: string, maxBytes: number): Promise<Uint8Array> {
    return fetchBody(this.#fetcher, endpoint, { path, maxBytes });
  }

  #checkName(plugin: string): void {
    const problem = pluginNameFormProblem(plugin);
    if (problem !== undefined)
      throw new ClientError(
        'REQUEST_INVALID',
        `Source "${this.name}": ${JSON.stringify(plugin)} is not a plugin name (expected ${problem})`,
      );
  }
}

function sameOriginAs(origin: string, base: string): boolean {
  try {
    return new URL(base).origin === origin;
  } catch {
    return false;
  }
}

/**
 * Signed bytes read as a manifest, strictly (JSON with one meaning: no repeated key, no number a reader
 * rounds) and validated as a registry validates a submission.
 * @throws TrustError DOCUMENT_MALFORMED listing the problems with their JSON pointers.
 */
async function checkManifest(bytes: Uint8Array, url: string): Promise<Manifest> {
  let problems: readonly Problem[];
  let value: unknown;
  try {
    const parsed = await readManifestDocument(bytes, MANIFEST_FILE);
    value = parsed.value;
    problems = parsed.problems;
  } catch (error) {
    if (!(error instanceof SubmissionError)) throw error;
    problems = error.problems;
  }
  if (problems.length === 0) problems = validateManifest(value);
  if (problems.length > 0) {
    const shown = problems
      .slice(0, PROBLEMS_SHOWN)
      .map(
        (p) => `${p.code} at ${p.path || '/'}: ${p.message}${p.expected ? ` (expected ${p.expected})` : ''}`,
      )
      .join('; ');
    const more = problems.length > PROBLEMS_SHOWN ? ` (and ${problems.length - PROBLEMS_SHOWN} more)` : '';
    throw new TrustError(
      'DOCUMENT_MALFORMED',
      `${url} is signed but is not a valid manifest: ${shown}${more}`,
    );
  }
  return value as Manifest;
}

/**
 * The plugin document a registry would publish for this one version, from a verified manifest: where its
 * manifest and artifacts are, their digests, and who signed it. Exported for the tests of its artifact
 * kinds; sources call FolderSource.
 * @throws TrustError DOCUMENT_MALFORMED when the result is not a plugin document a client can read.
 */
export function folderPluginDocument(options: {
  readonly manifest: VerifiedManifest;
  /** Absolute URL of the manifest; its signature is `<url>.asc`. */
  readonly manifestUrl: string;
  /** Absolute URL of the folder that holds the manifest and its `file` artifacts, without a trailing slash. */
  readonly folderUrl: string;
  /** Fingerprint of the key that verified the manifest. */
  readonly publisher: string;
}): PluginDocument {
  const { manifest, bytes, signature } = options.manifest;
  const metadata = manifest.metadata ?? {};
  const digest = sha256Hex(bytes);
  const record = versionRecordOf(manifest, {
    published: metadata.updated ?? metadata.created ?? NO_DATE,
    manifest_url: options.manifestUrl,
    manifest_signature_url: signatureKey(options.manifestUrl),
    manifest_sha256: digest,
    manifest_size: bytes.byteLength,
    manifest_signature: signature,
    // No registry rendered these bytes: what the publisher signed is what is served.
    source_sha256: digest,
    publisher: options.publisher,
    artifacts: (manifest.installation?.artifacts ?? []).map((artifact) =>
      artifactOf(artifact, options.folderUrl),
    ),
  });
  const document: PluginDocument = {
    schema: 'plugindex/plugin/v1',
    name: manifest.name,
    ...descriptionOf(manifest),
    latest_version: latestVersion([record]),
    channels: channelHeads([record]),
    owners: [options.publisher],
    versions: [record],
  };
  assertPluginDocument(document, manifest.name);
  return document;
}

/** An artifact as a plugin document lists it; none is hosted by a registry. */
function artifactOf(artifact: ManifestArtifact, folderUrl: string): ArtifactRecord {
  const common = {
    os: artifact.os,
    arch: artifact.arch,
    // A musl build, which versionRecordOf sets apart as the registry does (`libc_artifacts`).
    ...(artifact.libc !== undefined ? { libc: artifact.libc } : {}),
    sha256: normalizeDigest(artifact.sha256),
    size_bytes: artifact.size_bytes,
    hosted: false,
  };
  // `file` is a safe relative path (the manifest's validation): joined, it stays inside the version folder.
  if (artifact.file !== undefined) return { ...common, url: `${folderUrl}/${artifact.file}` };
  if (artifact.oci !== undefined) {
    const oci: OciArtifact = {
      reference: artifact.oci.reference,
      digest: `sha256:${normalizeDigest(artifact.oci.digest)}`,
    };
    // The manifest's validation has checked the reference's form: it takes apart.
    return { ...common, url: ociArtifactUrl(oci) as string, oci };
  }
  return { ...common, url: artifact.url as string };
}
