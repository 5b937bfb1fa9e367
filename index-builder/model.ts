/**
 * The data model: the manifest a publisher writes (the PulumiCost "Core Manifest Structure" plus our
 * `installation.artifacts` extension) and the documents the registry publishes.
 */

export const PLUGIN_TYPES = ['cost_source', 'observability', 'registry', 'aggregator'] as const;
export type PluginType = (typeof PLUGIN_TYPES)[number];

export const OS_VALUES = ['linux', 'windows', 'darwin', 'freebsd'] as const;
export const ARCH_VALUES = ['amd64', 'arm64', '386', 'arm'] as const;

/**
 * An artifact's `arch` for one file that runs on several architectures of its OS: a macOS universal
 * binary (amd64 and arm64 in one Mach-O file). Only for the OSes `UNIVERSAL_ARCHES` names; it is an
 * artifact's arch, never a host's (a host is one architecture), so a platform (`--platform`, a set's
 * `platforms:`, an install folder) never names it.
 */
export const UNIVERSAL_ARCH = 'universal';
export const UNIVERSAL_ARCHES: Readonly<Record<string, readonly string[]>> = { darwin: ['amd64', 'arm64'] };

/** The arches a manifest artifact may name: the spec's and, for the OSes above, `universal`. */
export const ARTIFACT_ARCH_VALUES = [...ARCH_VALUES, UNIVERSAL_ARCH] as const;

/**
 * The C libraries a Linux artifact may name besides glibc, which an artifact without `libc` is linked
 * against (the only kind older clients know): `musl` (Alpine). A glibc build does not start where musl is
 * the system's library, and a musl build linked dynamically not on glibc, so a publisher may offer both for
 * one linux arch, the glibc one listed first (validate.ts).
 */
export const LIBC_VALUES = ['musl'] as const;
export type Libc = (typeof LIBC_VALUES)[number];
/** The one OS whose artifacts name a C library. */
export const LIBC_OS = 'linux';

/**
 * The artifacts' platforms that serve a host's `os`/`arch`, best first: its own, then its OS's universal
 * build where one covers the arch. One rule for the registry's checks and the client's choice alike.
 * @example platformsServing({ os: 'darwin', arch: 'arm64' }) // [darwin/arm64, darwin/universal]
 */
export function platformsServing(platform: {
  readonly os: string;
  readonly arch: string;
  readonly libc?: string;
}): { readonly os: string; readonly arch: string; readonly libc?: string }[] {
  const exact = { os: platform.os, arch: platform.arch };
  // A musl host's own build first, then the glibc one (which a static build, as most Go builds are, is;
  // the client warns that a dynamically linked one will not start: resolve.ts).
  if (platform.libc !== undefined) return [{ ...exact, libc: platform.libc }, exact];
  const covers = Object.hasOwn(UNIVERSAL_ARCHES, platform.os)
    ? (UNIVERSAL_ARCHES[platform.os] as readonly string[]).includes(platform.arch)
    : false;
  return covers ? [exact, { os: platform.os, arch: UNIVERSAL_ARCH }] : [exact];
}

/** Every artifact of a version: those older clients read, then the builds for another C library. */
export function allArtifacts(record: {
  readonly artifacts: readonly ArtifactRecord[];
  readonly libc_artifacts?: readonly ArtifactRecord[];
}): readonly ArtifactRecord[] {
  return record.libc_artifacts ? [...record.artifacts, ...record.libc_artifacts] : record.artifacts;
}

/** An artifact's platform as messages and pages write it: `linux/amd64`, `linux/amd64/musl`. */
export function artifactPlatformText(a: {
  readonly os: string;
  readonly arch: string;
  readonly libc?: string;
}): string {
  return `${a.os}/${a.arch}${a.libc !== undefined ? `/${a.libc}` : ''}`;
}

/**
 * `linux-amd64`, `linux-amd64-musl`: the key used in lock files and install folders (a '/' would make a
 * folder level). A glibc platform's is the key every release wrote, so older locks and folders read as
 * they are; a musl one's adds its library, so one folder holds both hosts' files apart.
 */
export function platformKey(platform: {
  readonly os: string;
  readonly arch: string;
  readonly libc?: string;
}): string {
  return `${platform.os}-${platform.arch}${platform.libc !== undefined ? `-${platform.libc}` : ''}`;
}

/**
 * Of `artifacts` (a manifest's, a document's), the one serving `platform`: its own exactly, else a universal
 * one covering it (an exact build is the publisher's word for that arch, preferred over the fat file).
 */
export function artifactServing<
  T extends { readonly os?: unknown; readonly arch?: unknown; readonly libc?: unknown },
>(
  artifacts: readonly T[],
  platform: { readonly os: string; readonly arch: string; readonly libc?: string },
): T | undefined {
  for (const wanted of platformsServing(platform)) {
    const found = artifacts.find(
      (a) => a.os === wanted.os && a.arch === wanted.arch && a.libc === wanted.libc,
    );
    if (found) return found;
  }
  return undefined;
}

/**
 * An artifact kept in an OCI registry (Diginfra's distribution): where to pull it, and the digest that pins
 * the exact blob (a tag alone can move, so the digest is required and equals the artifact's sha256).
 */
export interface OciArtifact {
  /** `registry[:port]/repository[:tag]`, e.g. `registry.example/acme/kubecost-lens:1.2.0`. */
  readonly reference: string;
  /** `sha256:<hex>` of the blob the publisher pushed. */
  readonly digest: string;
}

/** One per-platform binary. Exactly one of `file` (carried in the bundle), `url` (hosted elsewhere) or `oci`. */
export interface ManifestArtifact {
  os: string;
  arch: string;
  /** A Linux build's C library when not glibc (absent: glibc). */
  libc?: Libc;
  file?: string;
  url?: string;
  oci?: OciArtifact;
  sha256: string;
  size_bytes: number;
  [unknown: string]: unknown;
}

export interface Manifest {
  name: string;
  display_name?: string;
  description?: string;
  version: string;
  api_version: string;
  plugin_type: PluginType;
  capabilities: string[];
  supported_providers?: string[];
  supported_regions?: string[];
  requirements?: {
    min_api_version?: string;
    max_api_version?: string;
    os?: string[];
    arch?: string[];
    dependencies?: { name: string; version: string; type?: string; optional?: boolean }[];
    environment_variables?: {
      name: string;
      description?: string;
      required?: boolean;
      default_value?: string;
    }[];
    [unknown: string]: unknown;
  };
  authentication?: { required?: boolean; methods?: string[]; scopes?: string[]; permissions?: string[] };
  installation?: {
    binary_url?: string;
    checksum?: string;
    size_bytes?: number;
    install_script?: string;
    docker_image?: string;
    artifacts?: ManifestArtifact[];
    [unknown: string]: unknown;
  };
  configuration?: {
    schema_url?: string;
    defaults?: Record<string, unknown>;
    examples?: Record<string, unknown>[];
  };
  contacts?: {
    maintainers?: { name: string; email?: string; url?: string }[];
    support_url?: string;
    documentation_url?: string;
  };
  metadata?: {
    tags?: string[];
    license?: string;
    homepage?: string;
    repository?: string;
    release_notes_url?: string;
    created?: string;
    updated?: string;
    [unknown: string]: unknown;
  };
  /** The permissions the plugin needs (validated extension, known names only). */
  permissions?: Permission[];
  /** Its resource limits (validated extension, known names only, bounded integers). */
  resources?: Partial<Record<ResourceName, number>>;
  /** The spec's security scan of this version (validated: known fields only, bounded). */
  security_scan_results?: SecurityScan;
  /** Forward compatibility: unknown fields are preserved in the published manifest and ignored here. */
  [unknown: string]: unknown;
}

/** A published artifact of one version, as clients see it in `plugins/<name>/index.json`. */
export interface ArtifactRecord {
  readonly os: string;
  readonly arch: string;
  /** Only in `libc_artifacts`: the C library of a Linux build that is not glibc. */
  readonly libc?: Libc;
  /** Absolute download URL: the registry's own copy for `file` artifacts, the publisher's for `url` ones. */
  readonly url: string;
  readonly sha256: string;
  readonly size_bytes: number;
  /** True when the registry hosts the bytes (immutable path under the version folder). */
  readonly hosted: boolean;
  /** Set when the bytes live in an OCI registry; `url` is then `oci://<registry>/<repository>@<digest>`. */
  readonly oci?: OciArtifact;
}

/** Permission names a plugin may ask for (NexCage's capability system), the manifest's `permissions`. */
export const PERMISSIONS = [
  'filesystem_read',
  'filesystem_write',
  'filesystem_execute',
  'network_client',
  'network_server',
  'network_raw',
  'process_spawn',
  'process_signal',
  'process_ptrace',
  'container_create',
  'container_start',
  'container_stop',
  'container_delete',
  'container_exec',
  'container_list',
  'container_info',
  'host_command',
  'host_mount',
  'host_device',
  'system_info',
  'system_metrics',
  'config_read',
  'config_write',
  'logging',
  'metrics',
  'tracing',
  'api_server',
  'api_client',
] as const;
export type Permission = (typeof PERMISSIONS)[number];

/** Resource limits a plugin declares (the manifest's `resources`), each a positive integer up to its bound. */
export const RESOURCE_LIMITS = {
  max_memory_mb: 1_048_576,
  max_cpu_percent: 100,
  max_file_descriptors: 1_048_576,
  max_threads: 65_536,
  timeout_seconds: 86_400,
  max_network_connections: 65_536,
  max_disk_usage_mb: 1_048_576,
} as const;
export type ResourceName = keyof typeof RESOURCE_LIMITS;
export type Resources = Readonly<Partial<Record<ResourceName, number>>>;

/** How bad an advisory says a vulnerability is (OSV's and GitHub's words); install refuses `high` and up. */
export const SEVERITIES = ['low', 'moderate', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

/** A security advisory an owner or operator published for a plugin (`plugindex advisory add`). */
export interface Advisory {
  /** Unique within the plugin, e.g. `PDX-2026-0001`, `GHSA-xxxx-xxxx-xxxx`, `CVE-2026-12345`. */
  readonly id: string;
  readonly severity: Severity;
  /** The versions affected, a SemVer range (`<1.2.3`, `>=1.0.0 <1.2.3`). */
  readonly affected: string;
  /** The first version with the fix, when there is one. */
  readonly fixed?: string;
  readonly summary: string;
  readonly url?: string;
  /** When the registry accepted it (ISO 8601). */
  readonly published: string;
  /** Set once withdrawn (`advisory withdraw`): kept, so history stays, but no longer affects installs. */
  readonly withdrawn?: { readonly at: string; readonly reason?: string };
}

/** What a security scan concluded (the spec's `security_scan_results.status`). */
export const SCAN_STATUSES = ['secure', 'vulnerable', 'unknown'] as const;

/** The spec's `security_scan_results`, as a manifest declares it and the plugin document carries it. */
export interface SecurityScan {
  readonly status: (typeof SCAN_STATUSES)[number];
  readonly vulnerabilities: readonly {
    readonly id: string;
    readonly severity?: Severity;
    readonly summary?: string;
    readonly url?: string;
  }[];
  readonly last_scan?: string;
  readonly scan_version?: string;
}

export interface VersionRecord {
  readonly version: string;
  readonly published: string;
  readonly prerelease: boolean;
  readonly yanked: boolean;
  readonly yanked_reason?: string;
  readonly deprecated: boolean;
  readonly deprecation_message?: string;
  /** The plugin to use instead, when a deprecation names one. */
  readonly deprecation_replacement?: string;
  /**
   * Removed by the operator (legal or security reasons): its files are deleted, the version is listed with
   * why, and it can never be published again (`yanked` is true as well, for clients that read only that).
   */
  readonly removed?: { readonly reason: string; readonly at: string };
  /** The key that published it was revoked after it did (the version stays, marked). */
  readonly publisher_revoked?: { readonly at: string; readonly reason?: string };
  /** The manifest's `security_scan_results`, carried through. */
  readonly security_scan?: SecurityScan;
  readonly api_version: string;
  readonly min_api_version?: string;
  readonly max_api_version?: string;
  readonly manifest_url: string;
  readonly manifest_signature_url: string;
  /** sha256 and size of the published (registry-rendered) manifest.json. */
  readonly manifest_sha256: string;
  readonly manifest_size: number;
  /**
   * The registry's detached signature of the manifest (the text of `manifest.json.asc`), so an install
   * reads it with the plugin document instead of asking for it. Absent in documents published before it.
   */
  readonly manifest_signature?: string;
  /** sha256 of the bytes the publisher signed; the same bytes again is an idempotent success. */
  readonly source_sha256: string;
  /** Fingerprint of the publisher key that signed this version. */
  readonly publisher: string;
  /** Every artifact an older client may take: none names a `libc` (glibc builds, universal ones, other OSes). */
  readonly artifacts: readonly ArtifactRecord[];
  /**
   * The artifacts built for another C library (`libc: musl`), apart: an older client matches artifacts by
   * os/arch alone and holds every one in `artifacts` to the signed manifest's first of its os/arch
   * (verify.ts verifyManifest), so a musl build listed there would fail every install of the version by an
   * older client, and be taken by one on the glibc host it does not start on. Absent when there are none.
   */
  readonly libc_artifacts?: readonly ArtifactRecord[];
  /** What the version asks the host to allow (sorted); absent when it declares none. */
  readonly permissions?: readonly Permission[];
  /** The resource limits the version declares; absent when it declares none. */
  readonly resources?: Resources;
}

/** `plugins/<name>/index.json`: everything a client needs about one plugin. */
export interface PluginDocument {
  readonly schema: 'plugindex/plugin/v1';
  readonly name: string;
  readonly display_name?: string;
  readonly description?: string;
  readonly plugin_type: string;
  /** Highest non-prerelease, non-yanked version; null when there is none. */
  readonly latest_version: string | null;
  /** Channel name (the first prerelease identifier, e.g. `beta`) -> highest non-yanked version in it. */
  readonly channels: Readonly<Record<string, string>>;
  readonly capabilities: readonly string[];
  readonly supported_providers: readonly string[];
  readonly tags: readonly string[];
  readonly license?: string;
  readonly homepage?: string;
  readonly repository?: string;
  /** The displayed version's maintainers (name and email only), for indexes that list them. */
  readonly maintainers?: readonly { readonly name: string; readonly email?: string }[];
  /** Publisher key fingerprints allowed to publish new versions (first-come ownership). */
  readonly owners: readonly string[];
  /** The whole plugin deprecated (`deprecate NAME` without a range): every version, later ones too. */
  readonly deprecation?: { readonly message: string; readonly replacement?: string; readonly at: string };
  /** Advisories, oldest first; withdrawn ones stay listed. */
  readonly advisories?: readonly Advisory[];
  /**
   * The plugins whose name reads as this one's (look-alike.ts) and whose owners are not its owners, as the
   * registry knew them when it rendered this document (the pairs search.ts `lookAlikesOf` flags), by name:
   * what `info` and `install` warn of, signed, without search.json. Absent for none. Added to
   * `plugindex/plugin/v1` as an optional field: a reader that knows none ignores it (verify.ts checks only
   * the fields it reads).
   */
  readonly look_alikes?: readonly { readonly name: string; readonly owners: readonly string[] }[];
  /** Newest first (SemVer precedence). */
  readonly versions: readonly VersionRecord[];
}

/** One row of `search.json`: compact, for client-side search by name, keyword, type, provider, capability. */
export interface SearchEntry {
  readonly name: string;
  readonly display_name?: string;
  readonly description?: string;
  readonly latest_version: string | null;
  readonly plugin_type: string;
  readonly providers: readonly string[];
  readonly capabilities: readonly string[];
  readonly keywords: readonly string[];
  /** Present (true) when the whole plugin is deprecated, so a list can say so without its document. */
  readonly deprecated?: true;
  /**
   * The plugin's owners (its document's `owners`, key fingerprints), so a search can tell a look-alike name
   * of another owner from an owner's own second name (search.ts `lookAlikesOf`). Added to format
   * `plugindex/search/v1` as an optional field: rows a registry wrote before it have none, and a reader
   * that knows none ignores it.
   */
  readonly owners?: readonly string[];
}

/** A document's sha256 (hex) and size in bytes, as the snapshot and its bins list them. */
export interface DocumentDigest {
  readonly sha256: string;
  readonly size: number;
}

/** `snapshot.json`: what a client checks before it trusts any mutable document. */
export interface SnapshotDocument {
  readonly schema: 'plugindex/snapshot/v1';
  readonly registry: string;
  /** Strictly increasing with every rebuild: a client refuses a generation lower than one it has seen. */
  readonly generation: number;
  readonly created: string;
  /** A client refuses a snapshot past this time: a frozen mirror cannot replay an old view forever. */
  readonly expires: string;
  /** Fingerprint of the registry key that signs this snapshot and every document. */
  readonly key_fingerprint: string;
  /** Path -> digest of every mutable JSON/YAML document, so documents cannot be mixed across generations. */
  readonly documents: Readonly<Record<string, DocumentDigest>>;
  /**
   * The transparency log's length and the hash of its last entry (index-builder/log.ts): a client that
   * remembers an earlier head refuses a log that does not extend it. Absent before the log existed.
   */
  readonly log?: LogHead;
  /** How many registry key rotations (`keys/rotation/<N>.json`) led to the key that signs this snapshot. */
  readonly key_rotations?: number;
}

/**
 * `keys/revoked.json` (signed, listed in the snapshot): the publisher keys the operator revoked
 * (`revoke-key`). A revoked key's bundles and actions are refused from its revocation on; what it published
 * before stays, each version marked `publisher_revoked`.
 */
export interface RevokedKeysDocument {
  readonly schema: 'plugindex/revoked-keys/v1';
  /** In the order they were revoked. */
  readonly keys: readonly {
    readonly fingerprint: string;
    /** When the registry applied the revocation (ISO 8601). */
    readonly revoked: string;
    readonly reason: string;
    /** The digest of the action that revoked it: its log entry, and `log/actions/<digest>.json`. */
    readonly action: string;
  }[];
}

/** The log's length (entries) and the hash of its last entry (64 zeros when empty). */
export interface LogHead {
  readonly length: number;
  readonly head: string;
}

/** `snapshot.signed.json`: `snapshot.json`'s exact text and its signature, one object for one request. */
export interface SignedSnapshotDocument {
  readonly schema: 'plugindex/signed-snapshot/v1';
  /** The bytes of `snapshot.json`, as UTF-8 text (it is ASCII JSON): the signature is over exactly these. */
  readonly snapshot: string;
  /** The armored detached signature, the text of `snapshot.json.asc`. */
  readonly signature: string;
}

/** `snapshot/bins/<hh>.json`: the digest of every plugin document whose name falls in the bin. */
export interface BinDocument {
  readonly schema: 'plugindex/bin/v1';
  readonly bin: string;
  readonly documents: Readonly<Record<string, DocumentDigest>>;
}

/** `search.json`. */
export interface SearchDocument {
  readonly schema: 'plugindex/search/v1';
  readonly generated: string;
  readonly plugins: readonly SearchEntry[];
}

/** Who the registry is, as shown on pages and written into `index.json`'s `registry_metadata`. */
export interface RegistryIdentity {
  readonly name: string;
  /** Base URL without a trailing slash, e.g. `http://127.0.0.1:8080`. */
  readonly url: string;
  readonly description?: string;
}
