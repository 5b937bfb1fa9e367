/**
 * `plugindex.lock`: JSON, machine-owned. For each installed plugin it records what the signed plugin
 * document said of the chosen version: the manifest's digest, the publisher key, and the digest and size of
 * the artifact of EVERY platform (Terraform records every signed `zh:` hash for the same reason: a lock made
 * on Linux must install on macOS without another resolution). For each registry it records the pinned key
 * and the lowest snapshot generation a frozen install may accept, which carries TUF's rollback protection
 * to a fresh CI machine. Where the bytes were found is recorded for a frozen install to fetch them, but the
 * digest is the identity, so a mirror may serve them: a registry's locations stay under the URL the lock
 * first recorded it at, whichever URL a teammate reaches it at (install.ts `underLockedBase`).
 *
 * The file is written with sorted keys and a fixed layout, so equal content is equal bytes, and it is
 * rewritten only when it changes (cargo's `write_pkg_lockfile`); `withPlugin` returns the same object when
 * nothing changed so a caller can tell without comparing.
 *
 * Pure: text in, values out.
 *
 * @example
 * let lock = parseLockfile(text, 'plugindex.lock');
 * lock = withPlugin(lock, 'kubecost-lens', lockedPluginFrom('community', '^1.2.0', record),
 *   { key_fingerprint: snapshot.key_fingerprint, generation: snapshot.generation });
 */
import { escapePointer, TrustError } from '../index-builder/errors.ts';
import { KEY_FINGERPRINT, KEY_FINGERPRINT_FORM } from '../index-builder/fingerprint.ts';
import {
  isCanonicalVersion,
  keyProblem,
  pluginNameFormProblem,
  pluginNameProblem,
  versionFolder,
} from '../index-builder/layout.ts';
import {
  type ArtifactRecord,
  allArtifacts,
  LIBC_VALUES,
  type OciArtifact,
  type VersionRecord,
} from '../index-builder/model.ts';
import { parseOciReference } from '../index-builder/oci.ts';
import {
  type ConflictHunk,
  compareStrings,
  FINGERPRINT,
  isNonNegativeInteger,
  isObject,
  own,
  Problems,
  parseJsonObject,
  REGISTRY_NAME,
} from './json-input.ts';
import { isVersionSpec, platformKey } from './resolve.ts';

export interface LockedArtifact {
  readonly sha256: string;
  readonly size: number;
  /**
   * Where the bytes were found when locked (absolute), so `install --frozen` fetches them without reading
   * any registry: the digest above, not the URL, is what is trusted. Absent in locks written before it.
   */
  readonly url?: string;
  /** For an artifact kept in an OCI registry: the reference and digest it is pulled by. */
  readonly oci?: OciArtifact;
}

export interface LockedPlugin {
  readonly registry: string;
  /** What was asked for (`^1.2.0`, `latest`, `beta`): `update` and `outdated` compute "wanted" from it. */
  readonly requested: string;
  readonly version: string;
  readonly manifest_sha256: string;
  /** Fingerprint of the publisher key that signed the version. */
  readonly publisher: string;
  /**
   * Where the signed manifest was found (its `.asc` beside it), so a frozen install with a clean cache can
   * still place it; the digest above, not the URL, is what is trusted.
   */
  readonly manifest_url?: string;
  /** 'os-arch' -> digest and size, for EVERY platform the version has (so a lock made on Linux installs on macOS). */
  readonly artifacts: Readonly<Record<string, LockedArtifact>>;
  /** The permissions the version asks for (sorted): a newer version asking for more needs --accept-permissions. */
  readonly permissions?: readonly string[];
  /** The resource limits it declares, so a frozen install still holds them to a policy. */
  readonly resources?: Readonly<Record<string, number>>;
}

export interface LockedRegistry {
  readonly key_fingerprint: string;
  /** The lowest snapshot generation a frozen install may accept. */
  readonly min_generation: number;
}

/**
 * A plugin set file's digests (plugin-set.ts `setFileDigest`): the one a lock is written with, and the one
 * an older client wrote of the same file in a checkout with CR LF line endings.
 */
export interface SetFileDigests {
  /** Of its text with line feeds for line breaks: what `config_sha256` is written as. */
  readonly sha256: string;
  /**
   * Of its bytes, where they differ (a CR among them): clients before line feeds were counted recorded it in
   * a Windows checkout, and that lock is of the same file, left as it is.
   */
  readonly bytesSha256?: string;
}

/** Whether `lock` records `file` as the plugin set file it was made from. */
export function madeFromSetFile(lock: Lockfile, file: SetFileDigests): boolean {
  return (
    lock.config_sha256 === file.sha256 ||
    (file.bytesSha256 !== undefined && lock.config_sha256 === file.bytesSha256)
  );
}

export interface Lockfile {
  readonly lockfile_version: 1;
  /**
   * The sha256 of the plugin set file the lock was made from (`install -c`), so `diff` can say it changed: of
   * its text with line feeds for line breaks (plugin-set.ts), so a checkout's line endings change nothing.
   */
  readonly config_sha256?: string;
  readonly registries: Readonly<Record<string, LockedRegistry>>;
  readonly plugins: Readonly<Record<string, LockedPlugin>>;
}

export const EMPTY_LOCKFILE: Lockfile = Object.freeze({
  lockfile_version: 1,
  registries: Object.freeze({}),
  plugins: Object.freeze({}),
});

/** The lockfile versions this client reads. */
const LOCKFILE_VERSIONS: readonly number[] = [1];
const SHA256 = /^[0-9a-f]{64}$/;
/**
 * `os-arch`, as the manifest's enums spell them (`linux-amd64`); any such pair, so a new OS is not refused;
 * and for a build of another C library `os-arch-libc` (model.ts platformKey, `LIBC_VALUES`).
 */
const PLATFORM = new RegExp(`^[a-z0-9]+-[a-z0-9]+(?:-(?:${LIBC_VALUES.join('|')}))?$`);

const LOCK_FIELDS = ['lockfile_version', 'config_sha256', 'registries', 'plugins'] as const;
const REGISTRY_FIELDS = ['key_fingerprint', 'min_generation'] as const;
const PLUGIN_FIELDS = [
  'registry',
  'requested',
  'version',
  'manifest_sha256',
  'publisher',
  'manifest_url',
  'artifacts',
  'permissions',
  'resources',
] as const;
const ARTIFACT_FIELDS = ['sha256', 'size', 'url', 'oci'] as const;
const OCI_FIELDS = ['reference', 'digest'] as const;
/** A permission word as the manifest spells them; any such word, so a newer registry's names are read. */
const PERMISSION = /^[a-z][a-z0-9_]{0,63}$/;

/**
 * Reads `plugindex.lock`. Every field is checked and every problem reported, one line each as
 * `file#/json/pointer: expected X, found Y`; fields this version does not know are refused, since a
 * rewrite would drop them.
 * @throws ClientError LOCKFILE_INVALID; an unknown lockfile_version says which versions this client reads.
 */
export function parseLockfile(text: string, file: string): Lockfile {
  const problems = new Problems(file, 'LOCKFILE_INVALID');
  const value = parseJsonObject(text, problems, floorConflictAdvice);
  // A lock of another version means other fields: checking them against this one would only be noise.
  if (!LOCKFILE_VERSIONS.includes(value.lockfile_version as number)) {
    problems.expect(
      '/lockfile_version',
      `${LOCKFILE_VERSIONS.join(' or ')} (the lockfile versions this client reads)`,
      value.lockfile_version,
    );
    throw problems.error();
  }
  problems.unknownFields('', value, LOCK_FIELDS);
  const registries = readRecord(problems, '/registries', value.registries, 'registry', (at, key, item) => {
    if (!REGISTRY_NAME.test(key))
      problems.add(at, 'a registry name ([a-z0-9][a-z0-9._-]{0,63})', JSON.stringify(key));
    return readRegistry(problems, at, item);
  });
  const plugins = readRecord(problems, '/plugins', value.plugins, 'plugin', (at, key, item) => {
    const nameProblem = publishableNameProblem(key);
    if (nameProblem) problems.add(at, 'a plugin name', `${JSON.stringify(key)} (${nameProblem})`);
    const plugin = readPlugin(problems, at, item);
    if (plugin && registries && !Object.hasOwn(registries, plugin.registry))
      problems.add(
        `${at}/registry`,
        'a registry the lock lists under /registries',
        `${JSON.stringify(plugin.registry)}, which it does not`,
      );
    return plugin;
  });
  const { config_sha256 } = value;
  if (config_sha256 !== undefined && (typeof config_sha256 !== 'string' || !SHA256.test(config_sha256)))
    problems.expect('/config_sha256', 'a sha256 digest (64 lowercase hex digits)', config_sha256);
  if (problems.any() || !registries || !plugins) throw problems.error();
  return {
    lockfile_version: 1,
    ...(typeof config_sha256 === 'string' ? { config_sha256 } : {}),
    registries,
    plugins,
  };
}

/** A lock's line of a registry's floor, as serializeLockfile writes it. */
const FLOOR_LINE = /^\s*"min_generation": (\d+),?\s*$/;

/**
 * What to do with a lock whose every conflict is a registry's `min_generation` line alone: two branches
 * that each changed an entry of that registry, each raising its floor to the generation it read. The
 * higher number holds what either side locked (each side's entries were read at its own number or below),
 * and is no lower than either: so keeping it keeps both floors.
 */
function floorConflictAdvice(hunks: readonly ConflictHunk[]): string | undefined {
  const floors = (lines: readonly string[]) =>
    lines.length === 1 ? FLOOR_LINE.exec(lines[0] as string)?.[1] : undefined;
  const pairs = hunks.map((h) => [floors(h.ours), floors(h.theirs)] as const);
  if (pairs.length === 0 || pairs.some(([a, b]) => a === undefined || b === undefined)) return undefined;
  const highest = pairs.map(([a, b]) => Math.max(Number(a), Number(b)));
  return `the sides differ only in min_generation: keep the higher number${highest.length > 1 ? ' of each' : ''} (${highest.join(', ')}), which holds what either side locked, and drop the markers`;
}

/**
 * The lock as text: sorted keys at every level, 2-space indent, trailing newline, so equal content is
 * byte-identical whatever order it was built in. Only the lock's own fields are written.
 */
export function serializeLockfile(lock: Lockfile): string {
  const registries: Record<string, unknown> = {};
  for (const [name, r] of Object.entries(lock.registries))
    registries[name] = { key_fingerprint: r.key_fingerprint, min_generation: r.min_generation };
  const plugins: Record<string, unknown> = {};
  for (const [name, p] of Object.entries(lock.plugins)) {
    const artifacts: Record<string, unknown> = {};
    for (const [platform, a] of Object.entries(p.artifacts))
      artifacts[platform] = {
        sha256: a.sha256,
        size: a.size,
        ...(a.url !== undefined ? { url: a.url } : {}),
        ...(a.oci !== undefined ? { oci: { reference: a.oci.reference, digest: a.oci.digest } } : {}),
      };
    plugins[name] = {
      registry: p.registry,
      requested: p.requested,
      version: p.version,
      manifest_sha256: p.manifest_sha256,
      publisher: p.publisher,
      ...(p.manifest_url !== undefined ? { manifest_url: p.manifest_url } : {}),
      artifacts,
      ...(p.permissions && p.permissions.length > 0 ? { permissions: [...p.permissions] } : {}),
      ...(p.resources && Object.keys(p.resources).length > 0 ? { resources: { ...p.resources } } : {}),
    };
  }
  const head = {
    lockfile_version: lock.lockfile_version,
    ...(lock.config_sha256 !== undefined ? { config_sha256: lock.config_sha256 } : {}),
  };
  return `${canonicalJson({ ...head, registries, plugins }, '')}\n`;
}

/**
 * The lock entry for one resolved version, artifacts keyed by 'os-arch' from `record.artifacts`: every
 * platform, not only the one installing.
 * @throws TrustError DOCUMENT_MALFORMED when the record lists two artifacts for one platform: a document
 *   the registry should never have signed (its validation refuses that), and which one is meant cannot be told.
 */
export function lockedPluginFrom(
  registry: string,
  requested: string,
  record: VersionRecord,
  /** Where each artifact is fetched from (the registry's configured URL for hosted ones); default its url. */
  locate: (artifact: ArtifactRecord) => string = (artifact) => artifact.url,
): LockedPlugin {
  const artifacts: Record<string, LockedArtifact> = {};
  // Every artifact, a musl build's too (`linux-amd64-musl`): the lock pins what any host installs.
  for (const artifact of [...allArtifacts(record)].sort((a, b) =>
    compareStrings(platformKey(a), platformKey(b)),
  )) {
    const platform = platformKey(artifact);
    if (Object.hasOwn(artifacts, platform)) {
      throw new TrustError(
        'DOCUMENT_MALFORMED',
        `version ${record.version} lists two artifacts for ${platform}: nothing can be locked for it`,
      );
    }
    artifacts[platform] = {
      sha256: artifact.sha256,
      size: artifact.size_bytes,
      ...(artifact.oci
        ? { oci: { reference: artifact.oci.reference, digest: artifact.oci.digest } }
        : { url: locate(artifact) }),
    };
  }
  const permissions = [...(record.permissions ?? [])].sort(compareStrings);
  return {
    registry,
    requested,
    version: record.version,
    manifest_sha256: record.manifest_sha256,
    publisher: record.publisher,
    artifacts,
    ...(permissions.length > 0 ? { permissions } : {}),
    ...(record.resources && Object.keys(record.resources).length > 0
      ? { resources: { ...record.resources } as Record<string, number> }
      : {}),
  };
}

/**
 * The lock with `name` set to `entry`. Returns the SAME object (===) when the entry is deep-equal to the one
 * there and the registry's key is the one locked: a newer generation alone does not rewrite the lock, but a
 * rotated key does (a frozen install would otherwise refuse the key the registry signs with now).
 * Otherwise sets it and `registries[entry.registry]` = { key_fingerprint, min_generation: the higher of the
 * one locked (if under the same key) and `generation` }, for every entry: the floor carries the newest
 * state its writer read to the other entries too (a yank or advisory on a held plugin made before this
 * entry was read), which an entry judged alone could not. A registry no plugin uses any more is dropped.
 */
export function withPlugin(
  lock: Lockfile,
  name: string,
  entry: LockedPlugin,
  registry: { readonly key_fingerprint: string; readonly generation: number },
): Lockfile {
  const existing = own(lock.plugins, name);
  const locked = own(lock.registries, entry.registry);
  if (existing && samePlugin(existing, entry) && locked?.key_fingerprint === registry.key_fingerprint)
    return lock;
  const min_generation =
    locked?.key_fingerprint === registry.key_fingerprint
      ? Math.max(locked.min_generation, registry.generation)
      : registry.generation;
  const plugins = { ...lock.plugins, [name]: entry };
  const registries = {
    ...lock.registries,
    [entry.registry]: { key_fingerprint: registry.key_fingerprint, min_generation },
  };
  return { ...lock, registries: usedRegistries(registries, plugins), plugins };
}

/** The lock without `name`; registries no remaining plugin uses are dropped. The same object when absent. */
export function withoutPlugin(lock: Lockfile, name: string): Lockfile {
  if (!Object.hasOwn(lock.plugins, name)) return lock;
  const plugins = { ...lock.plugins };
  delete plugins[name];
  return { ...lock, registries: usedRegistries(lock.registries, plugins), plugins };
}

export interface LockChange {
  /** 'plugins/<name>' or 'registries/<name>'. */
  readonly entry: string;
  readonly change: 'added' | 'removed' | 'changed';
  /** e.g. 'version 1.2.0 -> 1.2.3', 'manifest_sha256 ab12… -> cd34…' (several joined with '; '). */
  readonly detail: string;
}

/** Every difference between two locks, sorted by entry: what `--locked` names when it refuses. */
export function lockChanges(before: Lockfile, after: Lockfile): LockChange[] {
  const changes: LockChange[] = [];
  const compare = <T>(
    kind: 'plugins' | 'registries',
    a: Readonly<Record<string, T>>,
    b: Readonly<Record<string, T>>,
    summary: (value: T) => string,
    differences: (from: T, to: T) => string[],
  ): void => {
    for (const name of new Set([...Object.keys(a), ...Object.keys(b)])) {
      const from = own(a, name);
      const to = own(b, name);
      const entry = `${kind}/${name}`;
      if (from === undefined && to !== undefined)
        changes.push({ entry, change: 'added', detail: summary(to) });
      else if (from !== undefined && to === undefined)
        changes.push({ entry, change: 'removed', detail: summary(from) });
      else if (from !== undefined && to !== undefined) {
        const detail = differences(from, to);
        if (detail.length > 0) changes.push({ entry, change: 'changed', detail: detail.join('; ') });
      }
    }
  };
  compare('plugins', before.plugins, after.plugins, pluginSummary, (a, b) => pluginDifferences(a, b, false));
  compare('registries', before.registries, after.registries, registrySummary, registryDifferences);
  return changes.sort((x, y) => compareStrings(x.entry, y.entry));
}

function pluginSummary(p: LockedPlugin): string {
  const platforms = Object.keys(p.artifacts).sort(compareStrings);
  return `${p.version} from ${p.registry} (requested ${p.requested}; ${platforms.length === 0 ? 'no artifacts' : platforms.join(', ')})`;
}

function registrySummary(r: LockedRegistry): string {
  return `key_fingerprint ${short(r.key_fingerprint)}, min_generation ${r.min_generation}`;
}

/**
 * Whether a location moved. Two `file:` locations never did: a folder source inside a repository is at
 * another path in each checkout, and a lock rewritten by every checkout it is installed in would change
 * with each developer (a frozen install finds the file under the source's own folder: install.ts).
 */
function locationMoved(a: string | undefined, b: string | undefined): boolean {
  return a !== b && !(a?.startsWith('file:') && b?.startsWith('file:'));
}

/**
 * What differs between two entries. Where an artifact was found (`url`) is not what is locked, so only
 * `samePlugin` (whether to rewrite the lock) counts it; `--locked` does not refuse a registry that moved.
 */
function pluginDifferences(a: LockedPlugin, b: LockedPlugin, withLocations: boolean): string[] {
  const out: string[] = [];
  for (const field of ['registry', 'requested', 'version'] as const)
    if (a[field] !== b[field]) out.push(`${field} ${a[field]} -> ${b[field]}`);
  for (const field of ['manifest_sha256', 'publisher'] as const)
    if (a[field] !== b[field]) out.push(`${field} ${short(a[field])} -> ${short(b[field])}`);
  const platforms = [...new Set([...Object.keys(a.artifacts), ...Object.keys(b.artifacts)])].sort(
    compareStrings,
  );
  for (const platform of platforms) {
    const from = own(a.artifacts, platform);
    const to = own(b.artifacts, platform);
    if (!from && to) out.push(`artifact ${platform} added (sha256 ${short(to.sha256)}, ${to.size} bytes)`);
    else if (from && !to) out.push(`artifact ${platform} removed`);
    else if (from && to) {
      if (from.sha256 !== to.sha256)
        out.push(`artifact ${platform} sha256 ${short(from.sha256)} -> ${short(to.sha256)}`);
      if (from.size !== to.size) out.push(`artifact ${platform} size ${from.size} -> ${to.size}`);
      if (from.oci?.reference !== to.oci?.reference)
        out.push(
          `artifact ${platform} oci ${from.oci?.reference ?? '(none)'} -> ${to.oci?.reference ?? '(none)'}`,
        );
      if (withLocations && locationMoved(from.url, to.url))
        out.push(`artifact ${platform} url ${from.url} -> ${to.url}`);
    }
  }
  if (withLocations && locationMoved(a.manifest_url, b.manifest_url))
    out.push(`manifest_url ${a.manifest_url} -> ${b.manifest_url}`);
  const permissions = (p: LockedPlugin): string => (p.permissions ?? []).join(',') || '(none)';
  if (permissions(a) !== permissions(b)) out.push(`permissions ${permissions(a)} -> ${permissions(b)}`);
  const resources = (p: LockedPlugin): string =>
    Object.entries(p.resources ?? {})
      .sort(([x], [y]) => compareStrings(x, y))
      .map(([k, v]) => `${k}=${v}`)
      .join(',') || '(none)';
  if (resources(a) !== resources(b)) out.push(`resources ${resources(a)} -> ${resources(b)}`);
  return out;
}

function registryDifferences(a: LockedRegistry, b: LockedRegistry): string[] {
  const out: string[] = [];
  if (a.key_fingerprint !== b.key_fingerprint)
    out.push(`key_fingerprint ${short(a.key_fingerprint)} -> ${short(b.key_fingerprint)}`);
  if (a.min_generation !== b.min_generation)
    out.push(`min_generation ${a.min_generation} -> ${b.min_generation}`);
  return out;
}

/** A digest or fingerprint cut for a one-line detail: enough to tell two apart by eye. */
function short(hex: string): string {
  return hex.length > 12 ? `${hex.slice(0, 12)}…` : hex;
}

function samePlugin(a: LockedPlugin, b: LockedPlugin): boolean {
  return pluginDifferences(a, b, true).length === 0;
}

/** `registries` without those no plugin in `plugins` names. */
function usedRegistries(
  registries: Readonly<Record<string, LockedRegistry>>,
  plugins: Readonly<Record<string, LockedPlugin>>,
): Record<string, LockedRegistry> {
  const used = new Set(Object.values(plugins).map((p) => p.registry));
  return Object.fromEntries(Object.entries(registries).filter(([name]) => used.has(name)));
}

/** Why `name` is not a plugin name a registry could have published, or undefined. */
function publishableNameProblem(name: string): string | undefined {
  return pluginNameFormProblem(name) ?? pluginNameProblem(name);
}

function readRegistry(problems: Problems, at: string, value: unknown): LockedRegistry | undefined {
  if (!isObject(value)) {
    problems.expect(at, 'a locked registry (an object)', value);
    return undefined;
  }
  const before = problems.count();
  problems.unknownFields(at, value, REGISTRY_FIELDS);
  const { key_fingerprint, min_generation } = value;
  if (typeof key_fingerprint !== 'string' || !FINGERPRINT.test(key_fingerprint))
    problems.expect(`${at}/key_fingerprint`, 'a key fingerprint (40 uppercase hex digits)', key_fingerprint);
  if (!isNonNegativeInteger(min_generation))
    problems.expect(`${at}/min_generation`, 'a snapshot generation (an integer >= 0)', min_generation);
  if (problems.count() > before) return undefined;
  return { key_fingerprint: key_fingerprint as string, min_generation: min_generation as number };
}

function readPlugin(problems: Problems, at: string, value: unknown): LockedPlugin | undefined {
  if (!isObject(value)) {
    problems.expect(at, 'a locked plugin (an object)', value);
    return undefined;
  }
  const before = problems.count();
  problems.unknownFields(at, value, PLUGIN_FIELDS);
  const { registry, requested, version, manifest_sha256, publisher } = value;
  if (typeof registry !== 'string' || !REGISTRY_NAME.test(registry))
    problems.expect(`${at}/registry`, 'a registry name ([a-z0-9][a-z0-9._-]{0,63})', registry);
  // The spec an update resolves again: one that does not parse was refused there (REQUEST_INVALID), naming
  // neither the lock nor the entry, as though the command line had given it.
  if (typeof requested !== 'string' || requested.trim() === '' || !isVersionSpec(requested))
    problems.expect(
      `${at}/requested`,
      'the version requested (a version, a range, "latest" or a channel)',
      requested,
    );
  if (typeof version !== 'string' || !isCanonicalVersion(version))
    problems.expect(`${at}/version`, 'a SemVer version, as SemVer spells it (no "v")', version);
  else if (keyProblem(versionFolder(version)))
    // Its folder in an install folder, as no registry could publish it (a manifest's version fits a
    // segment): refused here, before anything is fetched, rather than when the first file is placed.
    problems.add(
      `${at}/version`,
      `a SemVer version whose folder every system can hold (${keyProblem(versionFolder(version))})`,
      JSON.stringify(version.length > 40 ? `${version.slice(0, 40)}…` : version),
    );
  if (typeof manifest_sha256 !== 'string' || !SHA256.test(manifest_sha256))
    problems.expect(`${at}/manifest_sha256`, 'a sha256 digest (64 lowercase hex digits)', manifest_sha256);
  if (typeof publisher !== 'string' || !KEY_FINGERPRINT.test(publisher))
    problems.expect(`${at}/publisher`, KEY_FINGERPRINT_FORM, publisher);
  const artifacts = readRecord(
    problems,
    `${at}/artifacts`,
    value.artifacts,
    'artifact',
    (path, key, item) => {
      if (!PLATFORM.test(key))
        problems.add(
          path,
          'a platform "os-arch" or "os-arch-libc" (e.g. "linux-amd64", "linux-amd64-musl")',
          JSON.stringify(key),
        );
      return readArtifact(problems, path, item);
    },
  );
  const { permissions, manifest_url, resources } = value;
  if (
    resources !== undefined &&
    !(
      isObject(resources) &&
      Object.entries(resources).every(([k, v]) => PERMISSION.test(k) && isNonNegativeInteger(v))
    )
  )
    problems.expect(`${at}/resources`, 'resource limits (names to integers >= 0)', resources);
  if (manifest_url !== undefined && (typeof manifest_url !== 'string' || !URL.canParse(manifest_url)))
    problems.expect(`${at}/manifest_url`, 'an absolute URL', manifest_url);
  if (
    permissions !== undefined &&
    !(
      Array.isArray(permissions) &&
      permissions.every((p) => typeof p === 'string' && PERMISSION.test(p)) &&
      new Set(permissions).size === permissions.length
    )
  )
    problems.expect(
      `${at}/permissions`,
      'a list of unique permission names (e.g. network_client)',
      permissions,
    );
  if (problems.count() > before || !artifacts) return undefined;
  return {
    registry: registry as string,
    requested: requested as string,
    version: version as string,
    manifest_sha256: manifest_sha256 as string,
    publisher: publisher as string,
    ...(typeof manifest_url === 'string' ? { manifest_url } : {}),
    artifacts,
    ...(Array.isArray(permissions) ? { permissions: permissions as string[] } : {}),
    ...(isObject(resources) ? { resources: resources as Record<string, number> } : {}),
  };
}

function readArtifact(problems: Problems, at: string, value: unknown): LockedArtifact | undefined {
  if (!isObject(value)) {
    problems.expect(at, 'a locked artifact (an object)', value);
    return undefined;
  }
  const before = problems.count();
  problems.unknownFields(at, value, ARTIFACT_FIELDS);
  const { sha256, size, url, oci } = value;
  if (typeof sha256 !== 'string' || !SHA256.test(sha256))
    problems.expect(`${at}/sha256`, 'a sha256 digest (64 lowercase hex digits)', sha256);
  if (!isNonNegativeInteger(size)) problems.expect(`${at}/size`, 'a size in bytes (an integer >= 0)', size);
  if (url !== undefined && (typeof url !== 'string' || !URL.canParse(url)))
    problems.expect(`${at}/url`, 'an absolute URL', url);
  let locatedOci: OciArtifact | undefined;
  if (oci !== undefined) {
    if (!isObject(oci)) problems.expect(`${at}/oci`, 'an object {reference, digest}', oci);
    else {
      problems.unknownFields(`${at}/oci`, oci, OCI_FIELDS);
      // Read as the manifest's rules read it (index-builder/oci.ts): a reference a frozen install could not
      // pull from is said here, at its pointer, not as a bare REQUEST_INVALID when the blob is fetched; one
      // pinning another digest than the lock's names two artifacts.
      const parts = typeof oci.reference === 'string' ? parseOciReference(oci.reference) : undefined;
      if (parts === undefined)
        problems.expect(
          `${at}/oci/reference`,
          'an OCI reference (registry[:port]/repository[:tag][@sha256:hex])',
          oci.reference,
        );
      else if (parts.digest !== undefined && parts.digest !== oci.digest)
        problems.add(
          `${at}/oci/reference`,
          "an OCI reference that pins no digest, or the artifact's own",
          `${JSON.stringify(oci.reference)}, which pins ${parts.digest}`,
        );
      if (oci.digest !== `sha256:${String(sha256)}`)
        problems.expect(`${at}/oci/digest`, `"sha256:" followed by the artifact's sha256`, oci.digest);
      locatedOci = { reference: String(oci.reference), digest: String(oci.digest) };
    }
  }
  if (problems.count() > before) return undefined;
  return {
    sha256: sha256 as string,
    size: size as number,
    ...(typeof url === 'string' ? { url } : {}),
    ...(locatedOci ? { oci: locatedOci } : {}),
  };
}

/** An object of entries, each read by `read`; undefined when the object or any entry has a problem. */
function readRecord<T>(
  problems: Problems,
  at: string,
  value: unknown,
  what: string,
  read: (pointer: string, key: string, item: unknown) => T | undefined,
): Record<string, T> | undefined {
  if (!isObject(value)) {
    problems.expect(at, `an object of ${what} entries`, value);
    return undefined;
  }
  const before = problems.count();
  const out: Record<string, T> = {};
  for (const [key, item] of Object.entries(value)) {
    const entry = read(`${at}/${escapePointer(key)}`, key, item);
    if (entry !== undefined) out[key] = entry;
  }
  return problems.count() > before ? undefined : out;
}

/**
 * JSON with the keys of every object sorted, 2-space indent. Not JSON.stringify over sorted objects: it
 * writes integer-like keys ("10", "9") first in numeric order whatever the insertion order.
 */
function canonicalJson(value: unknown, indent: string): string {
  if (typeof value !== 'object' || value === null) return JSON.stringify(value);
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    return `[\n${value.map((v) => `${inner}${canonicalJson(v, inner)}`).join(',\n')}\n${indent}]`;
  }
  const keys = Object.keys(value).sort(compareStrings);
  if (keys.length === 0) return '{}';
  const record = value as Record<string, unknown>;
  const lines = keys.map((k) => `${inner}${JSON.stringify(k)}: ${canonicalJson(record[k], inner)}`);
  return `{\n${lines.join(',\n')}\n${indent}}`;
}

/**
 * ` --lockfile PATH` for a lock a command named that is not its default (`InstallOptions.namedLockfile`), else
 * nothing: what a remedy naming a command adds, so the command it names acts on the lock refused.
 */
export function lockfileFlag(options: { readonly namedLockfile?: string }): string {
  const path = options.namedLockfile;
  return path === undefined ? '' : ` --lockfile ${shellWord(path)}`;
}

/**
 * `path` as a POSIX shell reads it back as one word: as it is when it holds nothing a shell reads, else in
 * single quotes (a `'` in it as `'\\''`). For a path a remedy names in a command to paste, where a space or a
 * quote in it named another folder or file.
 */
export function shellWord(path: string): string {
  return /^[\w@%+=:,./-]+$/.test(path) ? path : `'${path.replaceAll("'", "'\\''")}'`;
}
