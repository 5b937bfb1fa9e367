/**
 * `DIR/installed.json`: the one file a host program reads to learn what is installed, enabled and where
 * (the spec's filesystem discovery finds the same versions by their `manifest.json`, but a host should not
 * scan folders to learn which is enabled or verified). Pure: parse, serialize and the edits the client makes.
 *
 * @example
 * {
 *   "schema": "plugindex/installed/v1",
 *   "plugins": {
 *     "kubecost-lens": {
 *       "enabled": true,
 *       "current": "1.2.0",
 *       "versions": {
 *         "1.2.0": {
 *           "registry": "community", "registry_key": "<fingerprint>", "manifest_sha256": "<hex>",
 *           "publisher": "<fingerprint>", "publisher_verified": true, "installed": "2026-12-02T10:00:00.000Z", "verified": "2026-12-02T10:00:00.000Z",
 *           "artifacts": { "linux-amd64": { "path": "kubecost-lens/1.2.0/linux-amd64/kubecost-lens", "sha256": "<hex>", "size": 123 } }
 *         }
 *       }
 *     }
 *   }
 * }
 */
import { isAbsolute, relative, resolve, sep } from 'node:path';
import {
  isCanonicalVersion,
  keyProblem,
  pluginNameFormProblem,
  versionFolder,
  versionIdentity,
} from '../index-builder/layout.ts';
import { compareVersions } from '../index-builder/versions.ts';
import { ClientError } from './errors.ts';
import { isObject, own } from './json-input.ts';

const SHA256 = /^[0-9a-f]{64}$/;

const INSTALLED_SCHEMA = 'plugindex/installed/v1';
export const INSTALLED_FILE = 'installed.json';

export interface InstalledArtifact {
  /** Relative to DIR, with `/` separators. */
  readonly path: string;
  readonly sha256: string;
  readonly size: number;
}

export interface InstalledVersion {
  readonly registry: string;
  /**
   * Fingerprint of the registry key that signed the chain it was installed through; for a frozen install,
   * the key that signed the manifest placed beside it (by a lock made under a key retired since, the key the
   * client holds now, not the lock's).
   */
  readonly registry_key: string;
  readonly manifest_sha256: string;
  readonly publisher: string;
  /**
   * True when `publisher` was checked against a signature when the version was placed (its registry's
   * signed plugin document, or the key that signed a folder's manifest); absent when it is the lock's word
   * alone (a frozen install without a policy that lists publishers reads no plugin document), and in
   * records older clients wrote. A policy that lists publishers counts only a publisher checked.
   */
  readonly publisher_verified?: boolean;
  readonly installed: string;
  /** `os-arch` -> the installed executable. */
  readonly artifacts: Readonly<Record<string, InstalledArtifact>>;
  readonly yanked?: boolean;
  readonly deprecated?: boolean;
  /** When its files and signature chain last checked out: at install, and at each `plugindex verify`. */
  readonly verified?: string;
  /** Why the last `plugindex verify` refused it (absent once it verifies again): a host should not run it. */
  readonly problem?: { readonly code: string; readonly message: string };
  /**
   * The plugin set files whose `install -c` placed it, or found it placed by another set and pins it too:
   * each set's `clean -c` (and its install replacing a version) drops only its own claim, and the version
   * goes with the last (`withoutSetOwner`). A set names its folder itself, anywhere (the client's own,
   * another set's, one `install --dir` filled), and a set file comes with a checkout a pull request may
   * edit. Each is the set file's real path (links resolved, letter case as on disk) relative to the install
   * folder's, `/`-separated (`setReference`): an install folder in a checkout travels with it, to another
   * clone's path, a CI cache restored elsewhere or another system. Sorted, never empty: absent for a plain
   * install, and in records older clients wrote.
   */
  readonly sets?: readonly string[];
  /**
   * The one owner the previous release recorded (relative as `sets`, or absolute where a release before it
   * wrote it so): read as `sets` of one (`ownersOf`), never written; a record rewritten says `sets`.
   */
  readonly set?: string;
  /**
   * True when a plain install (`install NAME@VERSION`, no set) placed the version, or found it in place, while
   * sets are recorded as placing it: it is the user's too, so the last of those sets to drop it leaves it (as
   * the user's alone, `sets` gone) rather than removing it. Only beside `sets`: a version no set placed is
   * the user's without it.
   */
  readonly hand?: true;
}

export interface InstalledPlugin {
  /** The spec's enable/disable: a disabled plugin stays installed and a host does not load it. */
  readonly enabled: boolean;
  /** The version a host should run: the last one installed or updated to. */
  readonly current: string;
  readonly versions: Readonly<Record<string, InstalledVersion>>;
}

export interface InstalledFile {
  readonly schema: typeof INSTALLED_SCHEMA;
  readonly plugins: Readonly<Record<string, InstalledPlugin>>;
}

export const EMPTY_INSTALLED: InstalledFile = { schema: INSTALLED_SCHEMA, plugins: {} };

/**
 * Reads installed.json. Only the client writes it, so a wrong shape means damage or another version of the
 * client: refused with the pointer rather than guessed at.
 * @throws ClientError INSTALLED_INVALID naming this file and the JSON pointer.
 */
export function parseInstalled(text: string, file: string): InstalledFile {
  const fail = (pointer: string, expected: string): never => {
    throw new ClientError('INSTALLED_INVALID', `${file}#${pointer}: expected ${expected}`);
  };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new ClientError('INSTALLED_INVALID', `${file}: not JSON (${(cause as Error).message})`, {
      cause,
    });
  }
  if (!isObject(value) || value.schema !== INSTALLED_SCHEMA) fail('/schema', `"${INSTALLED_SCHEMA}"`);
  const plugins = (value as Record<string, unknown>).plugins;
  if (!isObject(plugins)) return fail('/plugins', 'an object');
  for (const [name, plugin] of Object.entries(plugins)) {
    const at = `/plugins/${name}`;
    // Names, versions and paths become paths the client writes and removes: nothing may lead out of DIR,
    // and each must be a name every system can hold (InstallTree.path refuses the rest, keyProblem), as a
    // checkout's installed.json made on Linux is read on Windows too: no device name (`nul`), no trailing
    // dot (Windows drops it: `tool.` is `tool` there), no segment longer than the stores take.
    if (pluginNameFormProblem(name)) fail(at, 'a plugin name as key');
    const nameProblem = keyProblem(name);
    if (nameProblem)
      fail(at, `a plugin name as key that every system can hold as a folder, not ${nameProblem}`);
    if (!isObject(plugin)) fail(at, 'an object');
    const p = plugin as Record<string, unknown>;
    if (typeof p.enabled !== 'boolean') fail(`${at}/enabled`, 'true or false');
    if (typeof p.current !== 'string') fail(`${at}/current`, 'a version');
    if (!isObject(p.versions)) fail(`${at}/versions`, 'an object');
    for (const [version, record] of Object.entries(p.versions as Record<string, unknown>)) {
      const vat = `${at}/versions/${version}`;
      if (!isCanonicalVersion(version)) fail(vat, 'a SemVer version as key');
      const folderProblem = keyProblem(`${name}/${versionFolder(version)}`);
      if (folderProblem)
        fail(vat, `a SemVer version as key that every system can hold as a folder, not ${folderProblem}`);
      if (!isObject(record) || !isObject(record.artifacts)) fail(`${vat}/artifacts`, 'an object');
      for (const key of ['registry', 'registry_key', 'manifest_sha256', 'publisher', 'installed']) {
        if (typeof (record as Record<string, unknown>)[key] !== 'string') fail(`${vat}/${key}`, 'a string');
      }
      const set = (record as Record<string, unknown>).set;
      if (set !== undefined && typeof set !== 'string') fail(`${vat}/set`, 'the path of a plugin set file');
      const sets = (record as Record<string, unknown>).sets;
      const hand = (record as Record<string, unknown>).hand;
      if (hand !== undefined && hand !== true) fail(`${vat}/hand`, 'true');
      if (
        sets !== undefined &&
        !(Array.isArray(sets) && sets.length > 0 && sets.every((s) => typeof s === 'string' && s !== ''))
      )
        fail(`${vat}/sets`, 'a list of the paths of plugin set files');
      const verified = (record as Record<string, unknown>).publisher_verified;
      if (verified !== undefined && typeof verified !== 'boolean')
        fail(`${vat}/publisher_verified`, 'true or false');
      if (!SHA256.test((record as { manifest_sha256: string }).manifest_sha256))
        fail(`${vat}/manifest_sha256`, 'a sha256 digest (64 lower-case hex digits)');
      for (const [platform, artifact] of Object.entries((record as { artifacts: object }).artifacts)) {
        const a = artifact as Partial<InstalledArtifact> | null;
        const pathProblem = isObject(a) && typeof a.path === 'string' ? keyProblem(a.path) : undefined;
        const ok =
          isObject(a) &&
          typeof a.path === 'string' &&
          pathProblem === undefined &&
          a.path.startsWith(`${name}/`) &&
          // A digest names a file of the cache (remove --clean deletes it): a path there led out of it.
          typeof a.sha256 === 'string' &&
          SHA256.test(a.sha256) &&
          Number.isSafeInteger(a.size) &&
          (a.size as number) >= 0;
        if (!ok)
          fail(
            `${vat}/artifacts/${platform}`,
            `{path (a safe path under ${name}/${pathProblem ? `, not ${pathProblem}` : ''}), sha256 (64 lower-case hex digits), size}`,
          );
      }
    }
  }
  return value as unknown as InstalledFile;
}

/** Sorted by plugin and version, so the file changes only where an install did. */
export function serializeInstalled(installed: InstalledFile): string {
  return `${JSON.stringify(installed, sortedReplacer, 2)}\n`;
}

function sortedReplacer(_key: string, value: unknown): unknown {
  if (!isObject(value)) return value;
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((k) => [k, value[k]]),
  );
}

/**
 * The sets recorded as having placed a version, in either form: `sets`, and the single `set` the previous
 * release wrote. Empty for a plain install's, and for a record older clients wrote.
 */
export function ownersOf(record: InstalledVersion | undefined): readonly string[] {
  if (record === undefined) return [];
  const owners = [...(record.sets ?? []), ...(record.set !== undefined ? [record.set] : [])];
  return [...new Set(owners)];
}

/** `record` owned by `owners` (deduplicated, sorted), in the form this client writes: `sets`, no `set`. */
function withOwners(record: InstalledVersion, owners: readonly string[]): InstalledVersion {
  const { set: _set, sets: _sets, hand, ...rest } = record;
  const sorted = [...new Set(owners)].sort();
  // A hand claim means something only beside sets: with none left, the version is the user's as it is.
  return sorted.length > 0 ? { ...rest, ...(hand ? { hand } : {}), sets: sorted } : rest;
}

/**
 * Whether one of the sets recorded as having placed a version is the set `names` recognizes (disk/state.ts
 * `SetOwner.names`: the set file's real path, whatever form recorded it).
 */
export function isPlacedBySet(
  record: InstalledVersion | undefined,
  names: (recorded: string) => boolean,
): boolean {
  return ownersOf(record).some(names);
}

/**
 * True when a version recorded with no set is, by the set's lock, the set's own: the lock names it at this
 * very version and manifest. A client before `sets` (or `set`) was recorded wrote none for what `install -c` placed,
 * and then that lock was written beside the set; a version the lock does not name (a plain install's,
 * another version of the plugin) is never the set's, whatever the set file says.
 */
export function isClaimedByLock(
  record: InstalledVersion | undefined,
  version: string,
  locked: { readonly version: string; readonly manifest_sha256: string } | undefined,
): boolean {
  return (
    record !== undefined &&
    ownersOf(record).length === 0 &&
    locked !== undefined &&
    locked.version === version &&
    locked.manifest_sha256 === record.manifest_sha256
  );
}

/**
 * Records the set `owner` (its `reference`, and `names` to know it in any recorded form) as an owner of
 * `name@version` where it pins that very version and manifest (`pinned`): a version recorded with no set
 * where that is the set's lock (`isClaimedByLock`, only when `claimUnowned`: a plain install's is never
 * claimed otherwise), and a version another set placed (the set joins its owners, so neither set's
 * `clean -c` removes what the other still pins). A record naming the set in another form (the single `set`
 * of the previous release, a path through a link) is rewritten to `reference`. `installed` itself,
 * unchanged, where nothing changes, so nothing is written.
 */
export function withSetOwner(
  installed: InstalledFile,
  name: string,
  pinned: { readonly version: string; readonly manifest_sha256: string },
  owner: { readonly reference: string; names(recorded: string): boolean },
  claimUnowned: boolean,
): InstalledFile {
  const plugin = own(installed.plugins, name);
  const record = plugin ? own(plugin.versions, pinned.version) : undefined;
  if (!plugin || !record || record.manifest_sha256 !== pinned.manifest_sha256) return installed;
  const owners = ownersOf(record);
  if (owners.length === 0 && !(claimUnowned && isClaimedByLock(record, pinned.version, pinned)))
    return installed;
  const next = withOwners(record, [...owners.filter((o) => !owner.names(o)), owner.reference]);
  if (record.set === undefined && (record.sets ?? []).join('\n') === (next.sets ?? []).join('\n'))
    return installed;
  return {
    ...installed,
    plugins: {
      ...installed.plugins,
      [name]: { ...plugin, versions: { ...plugin.versions, [pinned.version]: next } },
    },
  };
}

/**
 * Drops the set `names` recognizes from the owners of `name@version`, as its `clean -c` or its install
 * moving on does: the other sets still recorded (`others`), and whether a plain install claims it too
 * (`hand`), with `installed` recording the version theirs; neither left, the caller removes the version
 * (`withoutInstalled`) and `installed` is unchanged. `installed` itself, no `others` and no `hand`, where
 * the set is not an owner.
 */
export function withoutSetOwner(
  installed: InstalledFile,
  name: string,
  version: string,
  names: (recorded: string) => boolean,
): { readonly installed: InstalledFile; readonly others: readonly string[]; readonly hand: boolean } {
  const plugin = own(installed.plugins, name);
  const record = plugin ? own(plugin.versions, version) : undefined;
  if (!plugin || !record || !isPlacedBySet(record, names)) return { installed, others: [], hand: false };
  const others = ownersOf(record)
    .filter((o) => !names(o))
    .sort();
  const hand = record.hand === true;
  if (others.length === 0 && !hand) return { installed, others, hand };
  return {
    installed: {
      ...installed,
      plugins: {
        ...installed.plugins,
        [name]: { ...plugin, versions: { ...plugin.versions, [version]: withOwners(record, others) } },
      },
    },
    others,
    hand,
  };
}

/**
 * Records a plain install's claim (`hand`) on `name@version` where sets are recorded as placing it and it is
 * the manifest the install planned: the user asked for it too, so no set's `clean -c` removes it. `installed`
 * itself, unchanged, anywhere else.
 */
export function withHandClaim(
  installed: InstalledFile,
  name: string,
  version: string,
  manifestSha256: string,
): InstalledFile {
  const plugin = own(installed.plugins, name);
  const record = plugin ? own(plugin.versions, version) : undefined;
  if (!plugin || !record || record.manifest_sha256 !== manifestSha256) return installed;
  if (record.hand === true || ownersOf(record).length === 0) return installed;
  return {
    ...installed,
    plugins: {
      ...installed.plugins,
      [name]: { ...plugin, versions: { ...plugin.versions, [version]: { ...record, hand: true } } },
    },
  };
}

/**
 * Records one installed version (adding its platform to those already there) and makes it current. A plugin
 * installed again keeps its enabled flag.
 */
export function withInstalledVersion(
  installed: InstalledFile,
  name: string,
  version: string,
  record: InstalledVersion,
): InstalledFile {
  const plugin = own(installed.plugins, name);
  const before = plugin ? own(plugin.versions, version) : undefined;
  // A platform added to a version placed otherwise leaves it whose it was: a set adding one to a plain
  // install's claims no files it did not place. One another set placed it joins (`withSetOwner`), as each
  // set's `clean -c` then drops only its own claim.
  // A plain install of a version sets placed claims it too (`hand`): the last set to drop it leaves it.
  const owners = ownersOf(before);
  const hand = before?.hand === true || ownersOf(record).length === 0;
  const merged: InstalledVersion =
    before && before.manifest_sha256 === record.manifest_sha256
      ? withOwners(
          {
            ...record,
            ...(hand ? { hand: true } : {}),
            artifacts: { ...before.artifacts, ...record.artifacts },
          },
          owners.length > 0 ? [...owners, ...ownersOf(record)] : [],
        )
      : record;
  return {
    ...installed,
    plugins: {
      ...installed.plugins,
      [name]: {
        enabled: plugin?.enabled ?? true,
        current: version,
        versions: { ...plugin?.versions, [version]: merged },
      },
    },
  };
}

/**
 * Drops one version (or every version), keeping the highest left as current. Returns what was removed.
 * A version left whose folder is a removed one's (`1.0.0+b` beside `1.0.0+a`: build metadata is no part of
 * a folder's name) or differs from it only in letter case (`1.0.0-rc.1` beside `1.0.0-RC.1`), both placed by
 * an older client (an install refuses the pair, VERSION_FOLDER_CLASH), is recorded with a `problem`: the two
 * had one folder (the latter where case is ignored, macOS and Windows by default), and its removal took the
 * files of both. A host does not run it, and the next install places it again
 * (a record with a problem is never taken as installed), or `plugindex verify` clears it where its files
 * are whole (a filesystem that tells case apart kept its folder).
 * @throws ClientError NOT_INSTALLED naming what is installed.
 */
export function withoutInstalled(
  installed: InstalledFile,
  name: string,
  version: string | undefined,
): { readonly installed: InstalledFile; readonly removed: readonly string[] } {
  const plugin = requireInstalled(installed, name);
  if (version !== undefined && !Object.hasOwn(plugin.versions, version)) {
    throw new ClientError(
      'NOT_INSTALLED',
      `${name}@${version} is not installed (installed: ${Object.keys(plugin.versions).join(', ')})`,
    );
  }
  const removed = version === undefined ? Object.keys(plugin.versions) : [version];
  const left: Record<string, InstalledVersion> = {};
  for (const [v, record] of Object.entries(plugin.versions)) {
    if (removed.includes(v)) continue;
    const shared = removed.find((r) => versionIdentity(r) === versionIdentity(v));
    // Versions differing only in build metadata had one folder on every system (versionFolder leaves it
    // out); only in letter case, one where case is ignored.
    const how =
      shared === undefined || versionFolder(shared) !== versionFolder(v)
        ? `${name}@${v}'s folder differs from ${name}@${shared}'s only in letter case: where case is ignored (macOS and Windows by default) they were one folder`
        : `${name}@${v} differs from ${name}@${shared} only in build metadata, which a version folder leaves out: they were one folder`;
    left[v] =
      shared === undefined
        ? record
        : {
            ...record,
            problem: {
              code: 'VERSION_FOLDER_CLASH',
              message: `${how}, removed with ${name}@${shared}; \`plugindex install\` places it again`,
            },
          };
  }
  const plugins = { ...installed.plugins };
  const remaining = Object.keys(left).sort(compareVersions);
  if (remaining.length === 0) delete plugins[name];
  else {
    const current = remaining.includes(plugin.current) ? plugin.current : (remaining.at(-1) as string);
    plugins[name] = { ...plugin, current, versions: left };
  }
  return { installed: { ...installed, plugins }, removed };
}

/**
 * One installed version without the artifacts of the platforms not in `keep` (a set no longer listing
 * them): what is left, and the paths of the files that go. The same object, and none, when every platform
 * is kept; a version left with no artifact at all is the caller's to remove whole.
 */
export function withoutPlatforms(
  installed: InstalledFile,
  name: string,
  version: string,
  keep: ReadonlySet<string>,
): {
  readonly installed: InstalledFile;
  readonly platforms: readonly string[];
  readonly paths: readonly string[];
} {
  const plugin = own(installed.plugins, name);
  const record = plugin ? own(plugin.versions, version) : undefined;
  if (!plugin || !record) return { installed, platforms: [], paths: [] };
  const entries = Object.entries(record.artifacts);
  const kept = entries.filter(([platform]) => keep.has(platform));
  const dropped = entries.filter(([platform]) => !keep.has(platform));
  if (dropped.length === 0) return { installed, platforms: [], paths: [] };
  // A path a kept platform records too (never written so, but installed.json is a file on disk) stays.
  const keptPaths = new Set(kept.map(([, artifact]) => artifact.path));
  const next: InstalledVersion = { ...record, artifacts: Object.fromEntries(kept) };
  return {
    installed: {
      ...installed,
      plugins: {
        ...installed.plugins,
        [name]: { ...plugin, versions: { ...plugin.versions, [version]: next } },
      },
    },
    platforms: dropped.map(([platform]) => platform).sort(),
    paths: dropped.map(([, artifact]) => artifact.path).filter((path) => !keptPaths.has(path)),
  };
}

/**
 * Records what `plugindex verify` found for one installed version: when it checked out, or why not. Keeps
 * the same object when nothing changes.
 */
export function withVerification(
  installed: InstalledFile,
  name: string,
  version: string,
  outcome:
    | { readonly verified: string }
    | { readonly problem: { readonly code: string; readonly message: string } },
): InstalledFile {
  const plugin = own(installed.plugins, name);
  const record = plugin ? own(plugin.versions, version) : undefined;
  if (!plugin || !record) return installed;
  const { problem: _problem, ...rest } = record;
  const next: InstalledVersion =
    'verified' in outcome ? { ...rest, verified: outcome.verified } : { ...rest, problem: outcome.problem };
  return {
    ...installed,
    plugins: {
      ...installed.plugins,
      [name]: { ...plugin, versions: { ...plugin.versions, [version]: next } },
    },
  };
}

/**
 * Records the publisher of one installed version as checked against a signature (`publisher_verified`),
 * where an install found the version in place as it planned it (made from the manifest `manifestSha256`)
 * and checked its publisher now. Keeps the same object when there is no such record, or it already says so.
 */
export function withCheckedPublisher(
  installed: InstalledFile,
  name: string,
  version: string,
  manifestSha256: string,
  publisher: string,
): InstalledFile {
  const plugin = own(installed.plugins, name);
  const record = plugin ? own(plugin.versions, version) : undefined;
  if (!plugin || record?.manifest_sha256 !== manifestSha256) return installed;
  if (record.publisher === publisher && record.publisher_verified === true) return installed;
  const next: InstalledVersion = { ...record, publisher, publisher_verified: true };
  return {
    ...installed,
    plugins: {
      ...installed.plugins,
      [name]: { ...plugin, versions: { ...plugin.versions, [version]: next } },
    },
  };
}

/** @throws ClientError NOT_INSTALLED naming what is installed. */
export function withEnabled(installed: InstalledFile, name: string, enabled: boolean): InstalledFile {
  const plugin = requireInstalled(installed, name);
  return { ...installed, plugins: { ...installed.plugins, [name]: { ...plugin, enabled } } };
}

function requireInstalled(installed: InstalledFile, name: string): InstalledPlugin {
  const plugin = own(installed.plugins, name);
  if (plugin) return plugin;
  const names = Object.keys(installed.plugins);
  throw new ClientError(
    'NOT_INSTALLED',
    `${name} is not installed (${names.length ? `installed: ${names.join(', ')}` : 'nothing is installed'})`,
  );
}

/**
 * How installed.json names the set file `file` that places a version in the install folder `dir`: its path
 * relative to `dir`, `/`-separated, so a checkout holding both still names it once moved (another clone, a CI
 * cache restored at another path, a checkout taken to Windows); absolute when no relative path reaches it
 * (another drive on Windows). The caller passes both as real paths (disk/state.ts `setOwnerOf`), so a link
 * to the set file, or its name in another letter case where case is ignored, names the same set.
 * @example setReference('/work/repo/plugins', '/work/repo/plugins.yaml') // '../plugins.yaml'
 */
export function setReference(dir: string, file: string): string {
  const path = relative(resolve(dir), resolve(file));
  if (path === '' || isAbsolute(path)) return resolve(file);
  return path.split(sep).join('/');
}
