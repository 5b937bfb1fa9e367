/**
 * Where a plugin comes from, as an install sees it: a configured registry read through its session (TUF's
 * order, snapshot then bin then document), or a folder the spec's filesystem discovery lays out (on disk,
 * on a web server, in a bucket) whose manifests a pinned key signs. Both give the same verified plugin
 * document and manifest, so one resolver, one verifier, one cache and one lock serve every kind of source.
 */
import semver from 'semver';
import { hostedArtifactKey, manifestKey } from '../index-builder/layout.ts';
import type { ArtifactRecord, Manifest, PluginDocument, VersionRecord } from '../index-builder/model.ts';
import type { ContentCache } from './disk/cache.ts';
import type { TrustRecord } from './disk/state.ts';
import { ClientError } from './errors.ts';
import type { Endpoint } from './fetcher.ts';
import type { FolderSource, SourceVersion } from './folder-source.ts';
import { listed, specAsks } from './resolve.ts';
import type { RegistrySession, VerifiedManifest } from './session.ts';

export interface Source {
  /** The name the lock and installed.json record it under. */
  readonly name: string;
  readonly kind: 'registry' | 'folder';
  readonly endpoint: Endpoint;
  /** The key that vouches for what it serves: the registry's, or the one pinned for the folder. */
  readonly fingerprint: string;
  /** Keys that key succeeds through verified rotations (a registry's; client/key-chain.ts), oldest first. */
  readonly previousKeys?: readonly string[];
  /**
   * A registry's trust state (its pinned key, and the keys it was rotated from): what a frozen install
   * checks the registry's signature of a locked manifest by, reading nothing of the registry. A folder has
   * none.
   */
  readonly trust?: TrustRecord;
  /** The snapshot generation read (after `document`); 0 for a source without snapshots. */
  readonly generation: number;
  /**
   * The plugin's verified document, or undefined when the source does not hold it. A folder's manifests
   * are read one by one, so its document holds one version: the newest `spec` asks for that `fits` (the
   * API this host runs; never its platform, which would resolve a set to another version on each host),
   * else the newest it asks for, for the resolver to say why it does not fit.
   */
  document(
    name: string,
    spec: string,
    fits?: (version: VersionRecord) => boolean,
  ): Promise<PluginDocument | undefined>;
  /** A version's manifest, verified by the source's key. */
  manifest(name: string, version: VersionRecord): Promise<VerifiedManifest>;
  /** Where an artifact is downloaded from. */
  artifactUrl(name: string, version: VersionRecord, artifact: ArtifactRecord): string;
  /** Where a version's signed manifest is read from (its `.asc` beside it). */
  manifestUrl(name: string, version: VersionRecord): string;
  /**
   * A folder's judgement of a manifest had other than through `document` (a frozen install's, from the
   * cache or where its lock found it), as `document` judges one it reads: signed by the pinned key, then
   * read strictly. A registry has none: its signature is checked by `trust`, through its rotations.
   * @throws TrustError DOCUMENT_MISMATCH, DOCUMENT_MALFORMED (folder-source.ts FolderSource.verify).
   */
  verifyManifest?(
    bytes: Uint8Array,
    signature: string,
    manifestUrl: string,
  ): Promise<{ readonly manifest: Manifest; readonly publisher: string }>;
}

/** Sources by name, beyond the configured registries: a map, or sources opened when first asked for. */
export interface SourceLookup {
  get(name: string): Source | undefined | Promise<Source | undefined>;
  /** Whether `get` gives a source by that name, without opening it (a Map answers it too). */
  has?(name: string): boolean;
  /**
   * The key the source by that name is pinned to and the keys it succeeds through rotations followed
   * (`Source.fingerprint`, `previousKeys`), as kept on disk, without opening it (no session, no request):
   * what a tree already up to date is checked by when installed.json records a version under another key
   * than the lock's (install.ts `placedUnderUnlinkedKey`). Undefined when unknown.
   */
  pins?(
    name: string,
  ): Promise<{ readonly fingerprint: string; readonly previousKeys: readonly string[] } | undefined>;
  /**
   * The fingerprint of the key the source's key file holds as written, read without openpgp.js (no trust
   * state, no rotation followed): what tells a tree up to date from one whose key file was replaced since
   * its lock was made. Undefined when it cannot be read so (then `pins` parses it).
   */
  keyFile?(name: string): string | undefined;
}

/** A configured registry, through its session. */
export function registrySource(session: RegistrySession): Source {
  return {
    name: session.entry.name,
    kind: 'registry',
    endpoint: session.endpoint,
    // Read when asked: a session that follows a key rotation changes both.
    get fingerprint() {
      return session.trust.fingerprint;
    },
    get previousKeys() {
      return (session.trust.chain ?? []).map((link) => link.fingerprint);
    },
    get trust() {
      return session.trust;
    },
    get generation() {
      return session.snapshot.generation;
    },
    document: (name) => session.pluginDocument(name),
    manifest: (name, version) => session.manifest(name, version),
    artifactUrl: (name, version, artifact) => {
      // A hosted artifact under the configured URL, so a mirror or a registry served elsewhere than the
      // URL it publishes under still works; a publisher-hosted one as given.
      const key = artifact.hosted ? hostedArtifactKey(name, version.version, artifact.url) : undefined;
      return key === undefined ? artifact.url : `${session.entry.url}/${key}`;
    },
    manifestUrl: (name, version) => `${session.entry.url}/${manifestKey(name, version.version)}`,
  };
}

export interface FolderSourceBinding {
  readonly name: string;
  readonly folder: FolderSource;
  readonly endpoint: Endpoint;
  readonly fingerprint: string;
  readonly cache: ContentCache;
  /** Exact manifest paths (relative to the folder's URL) per plugin, from a set file's `path`. */
  readonly manifestPaths?: { get(name: string): string | undefined };
}

/**
 * A folder of signed manifests. A spec that is an exact version reads that version's folder (any transport,
 * a web server too); anything else lists the plugin's version folders (disk and buckets can be listed) and
 * reads the newest the spec asks for. Verified manifests are kept in the cache by digest, so a later frozen
 * install places them without asking the source.
 */
export function folderSource(binding: FolderSourceBinding): Source {
  const read = new Map<string, SourceVersion>();
  const { folder, cache } = binding;
  const remember = async (name: string, found: SourceVersion): Promise<SourceVersion> => {
    const record = found.document.versions[0] as VersionRecord;
    read.set(`${name}@${record.version}`, found);
    await cache.putDocument(record.manifest_sha256, found.manifest.bytes);
    await cache.putSignature(record.manifest_sha256, binding.fingerprint, found.manifest.signature);
    return found;
  };
  return {
    name: binding.name,
    kind: 'folder',
    endpoint: binding.endpoint,
    fingerprint: binding.fingerprint,
    generation: 0,
    async document(name, spec, fits) {
      const path = binding.manifestPaths?.get(name);
      if (path !== undefined) {
        const base = binding.endpoint.bases[0] as string;
        const found = await remember(name, await folder.readUrl(new URL(path, `${base}/`).href));
        if (found.document.name !== name)
          throw new ClientError(
            'PLUGIN_NOT_FOUND',
            `${path} in ${binding.name} is a manifest of ${found.document.name}, not of ${name}`,
          );
        return found.document;
      }
      const wanted = spec.trim();
      if (isExact(wanted)) {
        try {
          return (await remember(name, await folder.read(name, wanted))).document;
        } catch (error) {
          if (!(error instanceof ClientError && error.code === 'FETCH_NOT_FOUND')) throw error;
          throw new ClientError(
            'NO_MATCHING_VERSION',
            `${name}@${wanted} is not in ${binding.name}: ${error.message}`,
            { cause: error },
          );
        }
      }
      const versions = await folder.versions(name);
      const asked = versions.filter((v) => specAsks(wanted, v));
      if (asked.length === 0) {
        if (versions.length === 0) return undefined;
        throw noMatch(binding.name, name, wanted, versions);
      }
      // Newest first, until one fits this host: a newer version for another API must not hide an older
      // one that runs here. Bounded, as each costs a read.
      let first: PluginDocument | undefined;
      for (const version of asked.slice(0, MAX_READS)) {
        const document = (await remember(name, await folder.read(name, version))).document;
        first ??= document;
        if (!fits || fits(document.versions[0] as VersionRecord)) return document;
      }
      return first;
    },
    async manifest(name, version) {
      const found = read.get(`${name}@${version.version}`);
      if (found) return found.manifest;
      return (await remember(name, await folder.read(name, version.version))).manifest;
    },
    artifactUrl: (_name, _version, artifact) => artifact.url,
    manifestUrl: (_name, version) => version.manifest_url,
    verifyManifest: (bytes, signature, manifestUrl) => folder.verify(bytes, signature, manifestUrl),
  };
}

/** Versions a folder source reads at most to find one that fits the host. */
const MAX_READS = 16;

/** An exact version (the resolver's reading of a spec): read from its own folder, no listing needed. */
function isExact(spec: string): boolean {
  return semver.valid(spec) !== null;
}

/** No version the folder holds is one the spec asks for: say which it holds, as the resolver does. */
function noMatch(source: string, name: string, spec: string, versions: readonly string[]): ClientError {
  return new ClientError(
    'NO_MATCHING_VERSION',
    `${name}@${spec}: ${source} holds ${listed(versions)}, none of which ${spec} asks for`,
  );
}
