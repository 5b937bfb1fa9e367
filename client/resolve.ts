/**
 * From a request (`kubecost-lens@^1.2`) and a plugin's verified document to the one version and artifact a
 * client installs. The version rules are the registry's own (index-builder/versions.ts), applied to the
 * versions this host can run; what this module adds is the host's side (its API version and platform) and
 * messages that say why nothing matched, so a user can fix the request instead of guessing.
 *
 * Pure: no I/O. The caller passes the host's platform and API version.
 *
 * @example
 * const { name, spec } = parseRequest('kubecost-lens@^1.2');
 * const platform = hostPlatform(process.platform, process.arch);
 * const { version, artifact, warnings } = resolvePlugin(doc, { spec, platform, apiVersion: 'v1' });
 */
import semver from 'semver';
import { editDistance } from '../index-builder/edit-distance.ts';
import {
  pluginNameFormProblem,
  pluginNameProblem,
  shownUnparsedUrl,
  versionIdentity,
} from '../index-builder/layout.ts';
import {
  ARCH_VALUES,
  type ArtifactRecord,
  allArtifacts,
  artifactPlatformText,
  artifactServing,
  LIBC_OS,
  LIBC_VALUES,
  type Libc,
  OS_VALUES,
  type PluginDocument,
  platformKey,
  platformsServing,
  type VersionRecord,
} from '../index-builder/model.ts';
import { oneLine } from '../index-builder/text.ts';
import {
  channelOf,
  isPrerelease,
  resolveVersion,
  sortVersionsDescending,
} from '../index-builder/versions.ts';
import { redactUrl } from './config.ts';
import { ClientError } from './errors.ts';
import { checkNotRemoved, deprecationWarning, revocationWarning } from './lifecycle.ts';

export interface Platform {
  readonly os: string;
  readonly arch: string;
  /**
   * A Linux host's C library when not glibc (`musl`: Alpine). Absent: glibc, as every platform was before,
   * so an older lock's, set's or folder's `linux-amd64` is the glibc host it always meant.
   */
  readonly libc?: Libc;
}

/** Node's names where they differ from the registry's (Go's, which the manifests use). */
const NODE_OS: Readonly<Record<string, string>> = { win32: 'windows' };
const NODE_ARCH: Readonly<Record<string, string>> = { x64: 'amd64', ia32: '386' };

/**
 * Node's `process.platform`/`process.arch` -> the registry's names (`win32`/`x64` -> `windows`/`amd64`).
 * Unknown values pass through unchanged: such a host then finds no artifact, and is told which exist.
 *
 * @example hostPlatform('win32', 'x64') // { os: 'windows', arch: 'amd64' }
 */
export function hostPlatform(platform: string, arch: string, libc?: Libc): Platform {
  const os = NODE_OS[platform] ?? platform;
  return { os, arch: NODE_ARCH[arch] ?? arch, ...(libc !== undefined && os === LIBC_OS ? { libc } : {}) };
}

/**
 * This host's C library, from Node's diagnostic report header (`process.report.getReport().header`): a
 * Node.js built against glibc names the glibc it runs with (`glibcVersionRuntime`), a musl build (Alpine's)
 * names none. Undefined (glibc) off Linux, and where no report is given. `--platform linux/ARCH` or
 * `linux/ARCH/musl` overrides it, for an install made for another host (a CI image, a container).
 * @example hostLibc('linux', { header: {} }) // 'musl'
 */
export function hostLibc(platform: string, report: unknown): Libc | undefined {
  if (platform !== LIBC_OS || typeof report !== 'object' || report === null) return undefined;
  const header = (report as { header?: unknown }).header;
  if (typeof header !== 'object' || header === null) return undefined;
  return typeof (header as { glibcVersionRuntime?: unknown }).glibcVersionRuntime === 'string'
    ? undefined
    : 'musl';
}

/**
 * `linux/amd64` (or `linux-amd64`, the lock file's spelling) -> Platform. Case-insensitive; Node's names
 * (`win32/x64`) are accepted too. Only the registry's OS and architecture names are: a typo is caught here
 * rather than reported later as a missing artifact.
 * @throws ClientError REQUEST_INVALID naming what was given and the form expected.
 */
export function parsePlatform(text: string): Platform {
  const expected = `OS/ARCH with OS one of ${OS_VALUES.join(', ')} and ARCH one of ${ARCH_VALUES.join(', ')}, and for ${LIBC_OS} /${LIBC_VALUES.join('|')} for a host whose C library is not glibc (e.g. linux/amd64, linux/arm64/musl)`;
  // No OS name holds a '-', so the first separator splits `linux-amd64` as it does `linux/amd64`.
  const match = /^([^/-]+)[/-]([^/-]+)(?:[/-]([^/-]+))?$/.exec(text.trim().toLowerCase());
  if (!match) throw new ClientError('REQUEST_INVALID', `platform ${JSON.stringify(text)} is not ${expected}`);
  const libc = match[3];
  if (libc !== undefined && !(LIBC_VALUES as readonly string[]).includes(libc))
    throw new ClientError(
      'REQUEST_INVALID',
      `platform ${JSON.stringify(text)} names an unknown C library "${libc}": expected ${expected}`,
    );
  const platform = hostPlatform(match[1] as string, match[2] as string);
  if (libc !== undefined && platform.os !== LIBC_OS)
    throw new ClientError(
      'REQUEST_INVALID',
      `platform ${JSON.stringify(text)} names a C library, which only a ${LIBC_OS} platform has: expected ${expected}`,
    );
  const knownOs = (OS_VALUES as readonly string[]).includes(platform.os);
  const knownArch = (ARCH_VALUES as readonly string[]).includes(platform.arch);
  if (!knownOs || !knownArch) {
    const unknown = knownOs ? `architecture "${platform.arch}"` : `OS "${platform.os}"`;
    throw new ClientError(
      'REQUEST_INVALID',
      `platform ${JSON.stringify(text)} names an unknown ${unknown}: expected ${expected}`,
    );
  }
  return libc === undefined ? platform : { ...platform, libc: libc as Libc };
}

export { platformKey };

/** `linux-amd64-musl` -> its platform (`platformKey`'s inverse, for keys read from a lock or installed.json). */
export function platformOfKey(key: string): Platform {
  const [os = '', arch = '', libc] = key.split('-');
  return libc !== undefined && (LIBC_VALUES as readonly string[]).includes(libc)
    ? { os, arch, libc: libc as Libc }
    : { os, arch };
}

/** How platforms read in messages: the form `--platform` takes. */
const platformText = artifactPlatformText;

/** A channel, as versions.ts reads it: `latest` and `beta` alike (it tries this before a range). */
const CHANNEL = /^[a-z][a-z0-9-]*$/i;

/** True when `spec` is one of the forms resolveVersion reads: a version, a range, `latest` or a channel. */
export function isVersionSpec(spec: string): boolean {
  const trimmed = spec.trim();
  return semver.valid(trimmed) !== null || CHANNEL.test(trimmed) || semver.validRange(trimmed) !== null;
}

/** Why `spec` is none of the forms resolveVersion reads, or undefined when it is one. */
function specProblem(spec: string): string | undefined {
  if (spec.trim() === '') return "the version after '@' is empty";
  if (isVersionSpec(spec)) return undefined;
  return `version ${JSON.stringify(spec)} is not a version (1.2.3), a range (^1.2.0, ~1.2, ">=1 <2"), "latest" or a channel (beta)`;
}

/**
 * A version given as another tool gives it (pip's `NAME==1.2.0`, `NAME=1.2.0`, `NAME 1.2.0` quoted as one
 * word, or a version alone where the name goes), in this tool's form, for the refusal to end with: it said
 * only what a plugin name is, and a user of those tools was left to find the '@' in the usage.
 */
function versionSpeltElsewise(text: string): string {
  if (readsAsVersion(text)) return `; a version goes after its plugin's name and '@' (NAME@${text})`;
  const apart = /^([^=\s]+?)\s*(?:==?|\s)\s*(\S.*)$/.exec(text);
  const [name, spec] = [apart?.[1], apart?.[2]];
  if (name === undefined || spec === undefined || pluginNameFormProblem(name) !== undefined) return '';
  // In one word what follows is no plugin of its own, so a version a plugin could be named (`==12`, `==v2`)
  // is one too: `versionGivenApart`'s rule, for two words, missed them.
  if (!isVersionSpec(spec) && spec !== 'latest') return '';
  return `; did you mean ${name}@${spec}?`;
}

/**
 * The plugin of `names` a mistyped `name` most likely meant (at most two edits, counting a swap of
 * neighbours as one, and at most a third of its length; the nearest, then the first by name), else undefined.
 * `names` are a registry's search.json entries, which no schema reads on the client: only one a plugin can be
 * named is named back (not a number read as no distance at all, nor a terminal's escape to a library caller).
 */
export function nearestPluginName(name: string, names: Iterable<unknown>): string | undefined {
  // No plugin name is that long: a word past it is no typo of one, and costs no table to say so.
  if (name.length > 128) return undefined;
  let best: { name: string; distance: number } | undefined;
  for (const candidate of names) {
    if (typeof candidate !== 'string' || candidate === name) continue;
    // Length first: it bounds the distance from below, and spares a table for a name megabytes long.
    if (Math.abs(candidate.length - name.length) > 2 || pluginNameFormProblem(candidate) !== undefined)
      continue;
    const distance = editDistance(name, candidate);
    if (distance > 2 || distance * 3 > name.length) continue;
    if (!best || distance < best.distance || (distance === best.distance && candidate < best.name))
      best = { name: candidate, distance };
  }
  return best?.name;
}

/** A word no plugin can be named that reads as a version or range (`1.2.0`, `^1.2`, `>=1`, `v1.2.0`). */
function readsAsVersion(word: string): boolean {
  return /^[v=<>~^\d]/i.test(word) && pluginNameFormProblem(word) !== undefined && isVersionSpec(word);
}

/**
 * Whether `word`, typed after `name` (`install kubecost-lens 1.2.0`, as cargo, apt and gem users type it),
 * is that plugin's version rather than a plugin of its own: `name` a plugin name, `word` none but a version.
 */
export function versionGivenApart(name: string, word: string): boolean {
  return pluginNameFormProblem(name) === undefined && readsAsVersion(word);
}

/**
 * `name` or `name@SPEC` -> `{ name, spec }`, spec `latest` when absent.
 * @throws ClientError REQUEST_INVALID for a name no plugin can have (the manifest's rule, and the names the
 *   registry reserves: layout.ts `pluginNameProblem`), an empty spec after `@`, or a spec that does not parse.
 * @example parseRequest('kubecost-lens@^1.2') // { name: 'kubecost-lens', spec: '^1.2' }
 */
export function parseRequest(text: string): { readonly name: string; readonly spec: string } {
  const trimmed = text.trim();
  const at = trimmed.indexOf('@');
  const name = at === -1 ? trimmed : trimmed.slice(0, at);
  const spec = at === -1 ? 'latest' : trimmed.slice(at + 1).trim();
  const form = 'expected NAME or NAME@VERSION (e.g. kubecost-lens@^1.2)';
  // A URL (`info`, `update` and `audit` take none; `install` reads one before it asks for a request): named
  // without its credentials and query values, which the refusals below echoed whole, read as a name
  // (`plugin name "https://u:s3cret" in "https://u:s3cret@…"`).
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed))
    throw new ClientError('REQUEST_INVALID', `${redactUrl(trimmed)} is a URL, not a plugin name: ${form}`);
  // `user:password@host` without a scheme: no plugin name holds a `:`, and the refusal below echoed it whole
  // as `plugin name "user:s3cret"`. Shown as text that reads as a URL is, all before its last `@` masked.
  // (Not `NAME:TAG`, which has no `@`, nor `HOST:PORT/REPO@sha256:…`, whose `:` is before a `/`.)
  if (at !== -1 && name.includes(':') && !name.includes('/'))
    throw new ClientError(
      'REQUEST_INVALID',
      `${shownUnparsedUrl(trimmed)} reads as credentials and a host (USER:PASSWORD@HOST), not a plugin name: ${form}`,
    );
  if (name === '')
    throw new ClientError('REQUEST_INVALID', `request ${JSON.stringify(text)} has no plugin name: ${form}`);
  // The manifest's rule: a request for any other name cannot match.
  const formProblem = pluginNameFormProblem(name);
  if (formProblem)
    throw new ClientError(
      'REQUEST_INVALID',
      `plugin name ${JSON.stringify(name)} in ${JSON.stringify(text)} is not a plugin name: expected ${formProblem}${versionSpeltElsewise(trimmed)}`,
    );
  const reserved = pluginNameProblem(name);
  if (reserved) throw new ClientError('REQUEST_INVALID', `request ${JSON.stringify(text)}: ${reserved}`);
  const problem = specProblem(spec);
  if (problem)
    throw new ClientError('REQUEST_INVALID', `request ${JSON.stringify(text)}: ${problem}; ${form}`);
  return { name, spec };
}

/** `v2`, `v2.1` or `2` -> its numbers; undefined for anything else. */
function parseApiVersion(text: string): { readonly major: number; readonly minor?: number } | undefined {
  const match = /^v?(\d+)(?:\.(\d+))?$/i.exec(text.trim());
  if (!match) return undefined;
  return match[2] === undefined
    ? { major: Number(match[1]) }
    : { major: Number(match[1]), minor: Number(match[2]) };
}

/**
 * True when the host's API version is within the version's `min_api_version`..`max_api_version` (each
 * optional). Compared as numbers (`v10` is above `v9`); a bound of only a major covers every minor of it
 * (`max v2` admits a `v2.3` host). An unparsable bound excludes the version, and so does an unparsable host
 * version against any bound: nothing says the plugin can run there.
 * @example apiVersionAllows({ ...record, min_api_version: 'v2' }, 'v1') // false
 */
export function apiVersionAllows(record: VersionRecord, apiVersion: string): boolean {
  if (record.min_api_version === undefined && record.max_api_version === undefined) return true;
  const host = parseApiVersion(apiVersion);
  if (!host) return false;
  if (record.min_api_version !== undefined) {
    const min = parseApiVersion(record.min_api_version);
    if (!min) return false;
    if (host.major !== min.major ? host.major < min.major : (host.minor ?? 0) < (min.minor ?? 0))
      return false;
  }
  if (record.max_api_version !== undefined) {
    const max = parseApiVersion(record.max_api_version);
    if (!max) return false;
    if (host.major !== max.major) return host.major < max.major;
    if (max.minor !== undefined && (host.minor ?? 0) > max.minor) return false;
  }
  return true;
}

/**
 * The version's artifact for `platform`, or undefined: its own, else a universal one covering it
 * (model.ts `artifactServing`: `darwin/universal` serves darwin/amd64 and darwin/arm64).
 */
export function artifactFor(record: VersionRecord, platform: Platform): ArtifactRecord | undefined {
  return artifactServing(allArtifacts(record), platform);
}

/**
 * The warning for a musl host given the glibc build, there being none for musl: installed rather than
 * refused, as a static build (most Go plugins, `CGO_ENABLED=0`) runs on either, and a musl host installed
 * the glibc build before clients knew musl (refused, every Alpine install of such a plugin that worked
 * would fail); said, as a dynamically linked one fails to start with a bare "not found".
 */
export function libcFallbackWarning(
  name: string,
  version: string,
  platform: Platform,
  artifact: { readonly libc?: string },
  /** The lock it was read from, when a frozen install's: a lock an older client wrote has no musl key. */
  lockfile?: string,
  /**
   * True when the glibc build is already in place as that lock has it (an install's fast path, which reads
   * no registry, so cannot know whether the version now has a musl build): said on every such install.
   */
  inPlace = false,
  /** ` --lockfile PATH` for a lock that is not the default one (lockfile.ts `lockfileFlag`), for the remedy. */
  flag = '',
): string[] {
  if (platform.libc === undefined || artifact.libc === platform.libc) return [];
  const holder =
    lockfile === undefined
      ? `${name}@${version} has no ${platform.libc} build`
      : `${lockfile} locks no ${platform.libc} build of ${name}@${version}`;
  // From a lock: an install without --frozen would not do (with the glibc build in place as the lock has
  // it, the fast path keeps it); update reads the registry and pins its musl build of the version.
  const remedy =
    lockfile === undefined
      ? `install with --platform ${platform.os}/${platform.arch} to choose it knowingly`
      : `\`plugindex update ${name}${flag}\` locks and installs the registry's ${platform.libc} build, if it has one`;
  const doing = inPlace ? 'its glibc build is in place' : 'installing its glibc build';
  return [
    `${holder} for ${platform.os}/${platform.arch}: ${doing}, which starts here only if it is statically linked (${remedy})`,
  ];
}

/**
 * Of a lock entry's (or installed.json's) artifacts, keyed `os-arch` as each artifact's own platform, the key
 * of the one serving `platform`: its own, else its OS's `universal` (a lock records the artifact a version
 * has, so a universal build is locked once as `darwin-universal` and serves both Mac arches from there).
 */
export function lockedKeyFor(
  artifacts: Readonly<Record<string, unknown>>,
  platform: Platform,
): string | undefined {
  return platformsServing(platform)
    .map(platformKey)
    .find((key) => Object.hasOwn(artifacts, key));
}

export interface ResolveOptions {
  /** An exact version, a range, `latest` or a channel name (see parseRequest). */
  readonly spec: string;
  readonly platform: Platform;
  /** The plugin API the host speaks, e.g. `v1`. */
  readonly apiVersion: string;
}

export interface Resolution {
  readonly version: VersionRecord;
  readonly artifact: ArtifactRecord;
  /**
   * For the user, not errors: a deprecated (or, from a lock, yanked) version was chosen, or one whose
   * publisher key was revoked since. Advisories are the install's to judge (lifecycle.ts).
   */
  readonly warnings: readonly string[];
}

/** How many versions a message lists before it says how many more there are. */
const LISTED_VERSIONS = 6;

/** Items for a message: the first few, then how many more. */
export function listed(items: readonly string[], separator = ', '): string {
  const shown = items.slice(0, LISTED_VERSIONS).join(separator);
  return items.length > LISTED_VERSIONS ? `${shown} and ${items.length - LISTED_VERSIONS} more` : shown;
}

/** True when `spec` asks for `version`, read as resolveVersion reads it (yanked and API aside); a folder source picks by it. */
export function specAsks(spec: string, version: string): boolean {
  const wanted = spec.trim();
  if (wanted === '' || wanted === 'latest') return !isPrerelease(version);
  const exact = semver.valid(wanted);
  if (exact) return semver.eq(version, exact);
  if (CHANNEL.test(wanted)) return channelOf(version) === wanted.toLowerCase();
  return semver.validRange(wanted) !== null && semver.satisfies(version, wanted);
}

function apiBounds(record: VersionRecord): string {
  const { min_api_version: min, max_api_version: max } = record;
  if (min !== undefined && max !== undefined) return `${min}..${max}`;
  return min !== undefined ? `${min} or later` : `${max} or earlier`;
}

/** Why `record` was left out for this host, or undefined when it was not. */
function exclusion(record: VersionRecord, apiVersion: string): string | undefined {
  if (record.removed) return `${record.version} was removed (${oneLine(record.removed.reason)})`;
  if (record.yanked)
    return `${record.version} is yanked${record.yanked_reason ? ` (${oneLine(record.yanked_reason)})` : ''}`;
  if (!apiVersionAllows(record, apiVersion))
    return `${record.version} needs API ${apiBounds(record)}, the host is ${apiVersion}`;
  return undefined;
}

function noMatch(
  doc: PluginDocument,
  options: ResolveOptions,
  candidates: readonly VersionRecord[],
): ClientError {
  const newest = sortVersionsDescending(doc.versions);
  const reasons = newest
    .filter((r) => specAsks(options.spec, r.version))
    .map((r) => exclusion(r, options.apiVersion))
    .filter((why): why is string => why !== undefined);
  const why =
    reasons.length > 0
      ? `left out: ${listed(reasons, '; ')}`
      : options.spec.trim() === 'latest' && candidates.length > 0
        ? 'there is no release yet, only prereleases: ask for a channel or an exact version'
        : 'no version matches';
  const available = newest.filter((r) => !r.yanked).map((r) => r.version);
  const there =
    available.length > 0 ? `Versions there are: ${listed(available)}` : 'Every version of it is yanked';
  return new ClientError('NO_MATCHING_VERSION', `${doc.name}@${options.spec}: ${why}. ${there}`);
}

function noArtifact(doc: PluginDocument, record: VersionRecord, platform: Platform, hint = ''): ClientError {
  const platforms = allArtifacts(record).map((a) => platformText(a));
  const has = platforms.length > 0 ? `it has ${platforms.join(', ')}` : 'it has no artifacts at all';
  return new ClientError(
    'NO_ARTIFACT_FOR_PLATFORM',
    `${doc.name}@${record.version} has no artifact for ${platformText(platform)}; ${has}${hint}`,
  );
}

/** What a chosen version's record says to warn of: deprecated (its own or the plugin's), a key revoked. */
function notes(doc: PluginDocument, record: VersionRecord): string[] {
  return [...deprecationWarning(doc, record), ...revocationWarning(doc, record)];
}

/**
 * Chooses the version and artifact to install for a request.
 *
 * spec: an exact version, a range (`^1.2.0`, `~1.2`, `>=1 <2`), `latest` (highest non-prerelease non-yanked)
 * or a channel (`beta`). Versions whose API bounds exclude `apiVersion` are not chosen; yanked versions are
 * never chosen, not even when asked for exactly (a lock file still installs one: resolveLocked); a
 * removed one is refused with its reason when asked for exactly, and left out of a range; a deprecated
 * version (or any version of a deprecated plugin) is chosen with a warning naming the message and the
 * replacement. The registry's rules (versions.ts resolveVersion) choose among
 * what is left. A version without the platform's artifact is not skipped for an older one: that would install
 * something other than what the request resolves to on every other host.
 *
 * @throws ClientError REQUEST_INVALID for a spec that does not parse.
 * @throws ClientError VERSION_REMOVED for an exact version the operator removed, with the reason.
 * @throws ClientError NO_MATCHING_VERSION naming the plugin and spec, why each version the spec asks for
 *   was left out (`1.3.0 is yanked`, `2.0.0 needs API v2..v3, the host is v1`) and a few of the versions
 *   there are, newest first.
 * @throws ClientError NO_ARTIFACT_FOR_PLATFORM naming plugin@version, the platform and those it has.
 * @example resolvePlugin(doc, { spec: '^1.2.0', platform: { os: 'linux', arch: 'amd64' }, apiVersion: 'v1' })
 */
export function resolvePlugin(doc: PluginDocument, options: ResolveOptions): Resolution {
  const problem = specProblem(options.spec);
  if (problem) throw new ClientError('REQUEST_INVALID', `${doc.name}: ${problem}`);
  const candidates = doc.versions.filter((r) => exclusion(r, options.apiVersion) === undefined);
  const chosen = resolveVersion(candidates, options.spec);
  const version = chosen === undefined ? undefined : candidates.find((r) => r.version === chosen);
  if (!version) {
    // Asked for exactly, a removed version says why it is gone rather than merely that nothing matched.
    const exact = semver.valid(options.spec.trim());
    const removed = exact ? doc.versions.find((r) => r.removed && semver.eq(r.version, exact)) : undefined;
    if (removed) checkNotRemoved(doc, removed, '');
    throw noMatch(doc, options, candidates);
  }
  const artifact = artifactFor(version, options.platform);
  if (!artifact) {
    // Say where the platform can be had, so the user can pin that version rather than search for it.
    const older = sortVersionsDescending(candidates).find(
      (r) => specAsks(options.spec, r.version) && artifactFor(r, options.platform),
    );
    const hint = older ? ` (${older.version} has it: ask for ${doc.name}@${older.version})` : '';
    throw noArtifact(doc, version, options.platform, hint);
  }
  const fallback = libcFallbackWarning(doc.name, version.version, options.platform, artifact);
  return { version, artifact, warnings: [...fallback, ...notes(doc, version)] };
}

/**
 * The exact version a lock file holds, whatever has happened to it since: a yanked one still resolves, with
 * a warning (`yanked: <reason>`), as Cargo does for a lock, unless `denyYanked`; a removed one does not (its
 * files are gone, and so is the registry's word for it). No API filter applies (the lock decided).
 * Versions are compared as the registry identifies them (build metadata and letter case aside).
 * @throws ClientError NO_MATCHING_VERSION when the version is no longer in the document.
 * @throws ClientError VERSION_REMOVED when the operator removed it, with the reason.
 * @throws ClientError YANKED when it is yanked and `denyYanked`, with the reason.
 * @throws ClientError NO_ARTIFACT_FOR_PLATFORM naming plugin@version, the platform and those it has.
 */
export function resolveLocked(
  doc: PluginDocument,
  version: string,
  platform: Platform,
  options: {
    readonly denyYanked?: boolean;
    /** ` --lockfile PATH` for a lock that is not the default one (lockfile.ts `lockfileFlag`), for the remedy. */
    readonly lockfileFlag?: string;
  } = {},
): Resolution {
  const identity = versionIdentity(version);
  const record = doc.versions.find((r) => versionIdentity(r.version) === identity);
  if (!record) {
    const there = sortVersionsDescending(doc.versions).map((r) => r.version);
    throw new ClientError(
      'NO_MATCHING_VERSION',
      `${doc.name}@${version}, which the lock holds, is no longer in the registry; ${
        there.length > 0 ? `versions there are: ${listed(there)}` : 'it has no versions'
      }`,
    );
  }
  checkNotRemoved(doc, record, ', which the lock holds,');
  const yanked = `${doc.name}@${record.version} is yanked: ${record.yanked_reason ? oneLine(record.yanked_reason) : 'no reason given'}`;
  if (record.yanked && options.denyYanked)
    throw new ClientError(
      'YANKED',
      `${yanked}; the lock holds it, and --deny-yanked refuses it (\`plugindex update ${doc.name}${options.lockfileFlag ?? ''}\` moves to a version that is not)`,
    );
  const artifact = artifactFor(record, platform);
  if (!artifact) throw noArtifact(doc, record, platform);
  const warnings = [
    ...libcFallbackWarning(doc.name, record.version, platform, artifact),
    ...(record.yanked ? [yanked] : []),
  ];
  return { version: record, artifact, warnings: [...warnings, ...notes(doc, record)] };
}
