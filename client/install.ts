import { join } from 'node:path';
import { normalizeDigest, sha256Hex } from '../index-builder/digest.ts';
import { TrustError } from '../index-builder/errors.ts';
import { keyProblem, manifestKey, versionFolder, versionIdentity } from '../index-builder/layout.ts';
import {
  type Advisory,
  type ArtifactRecord,
  artifactPlatformText,
  type Manifest,
  type ManifestArtifact,
  type OciArtifact,
  type PluginDocument,
  type Resources,
  type VersionRecord,
} from '../index-builder/model.ts';
import { oneLine } from '../index-builder/text.ts';
import { compareVersions, isPrerelease } from '../index-builder/versions.ts';
import { DEFAULT_TIMEOUT_SECONDS } from './config.ts';
import { type ClientContext, loadTrust, readPinnedKey } from './context.ts';
import { readRegularIfExists, withFileLock } from './disk/atomic.ts';
import {
  type InstallTree,
  readLockfile,
  realPath,
  type SetOwner,
  setOwnerOf,
  type TrustRecord,
  writeLockfile,
} from './disk/state.ts';
import { ClientError, pinAgainRemedy } from './errors.ts';
import { collect, type Endpoint, fetchBody, UNLISTED_LIMITS } from './fetcher.ts';
import {
  type InstalledFile,
  type InstalledVersion,
  isPlacedBySet,
  withCheckedPublisher,
  withHandClaim,
  withInstalledVersion,
  withoutInstalled,
  withoutSetOwner,
  withSetOwner,
} from './installed.ts';
import { compareStrings, own } from './json-input.ts';
import { keyRevokedError, revokedLink } from './key-revocation.ts';
import { checkAdvisories, deprecationOf } from './lifecycle.ts';
import {
  EMPTY_LOCKFILE,
  type LockChange,
  type LockedArtifact,
  type LockedPlugin,
  type LockedRegistry,
  type Lockfile,
  lockChanges,
  lockedPluginFrom,
  lockfileFlag,
  madeFromSetFile,
  type SetFileDigests,
  withoutPlugin,
  withPlugin,
} from './lockfile.ts';
import { type Policy, type PolicyRefusal, permissionChanges, policyRefusals, refusalText } from './policy.ts';
import {
  apiVersionAllows,
  libcFallbackWarning,
  lockedKeyFor,
  type Platform,
  parseRequest,
  platformKey,
  platformOfKey,
  resolveLocked,
  resolvePlugin,
} from './resolve.ts';
import type { VerifiedManifest } from './session.ts';
import { registrySource, type Source, type SourceLookup } from './source.ts';

/** One plugin to install, as a plugin set names it. */
export interface InstallTarget {
  readonly name: string;
  /** An exact version, a range, `latest` or a channel. */
  readonly spec: string;
  /** The source's name (a configured registry, or one of `InstallOptions.sources`). */
  readonly registry?: string;
  /** Every platform to install (default: the install's platform). */
  readonly platforms?: readonly Platform[];
  /** Install folder (default: the install's). */
  readonly dir?: string;
  /** The installed file's name (default: the artifact's own). */
  readonly output?: string;
  /** Where the target is written (`plugins.yaml#/plugins/plugins/0`), named by any error about it. */
  readonly where?: string;
  /**
   * The manifest's exact path under its source (a set's `path`, percent-encoded as a URL path), when the set
   * names one: the lock decides only while it found the manifest there.
   */
  readonly path?: string;
}

export interface InstallOptions {
  /**
   * `NAME[@SPEC]` each (or with the source it is to come from, as a reference resolves it); none (and no
   * targets): exactly what the lock file holds (as `npm ci`).
   */
  readonly requests: readonly (string | { readonly request: string; readonly registry: string })[];
  /** Targets given whole (a plugin set): `requests` is then ignored, and the lock holds exactly these. */
  readonly targets?: readonly InstallTarget[];
  /** Sources beyond the configured registries, by name (a plugin set's providers). */
  readonly sources?: SourceLookup;
  readonly registry?: string;
  readonly platform?: Platform;
  /**
   * Several platforms, each placed (`--platform` repeated), in place of `platform`: one version resolved,
   * for the first, that every one must have a build of (NO_ARTIFACT_FOR_PLATFORM naming the one it lacks),
   * as a set's `platforms:`. An update naming them places these and removes the old version's others.
   */
  readonly platforms?: readonly Platform[];
  /** Install folder; default `<data>/plugins`. */
  readonly dir?: string;
  readonly lockfile: string;
  /**
   * `lockfile` as a command names it when it is not the command's default (`--lockfile PATH`): every remedy
   * naming a command that reads the lock says `--lockfile PATH` with it (`lockfileFlag`), where it named the
   * command alone, which acts on the default lock. Absent for the default one, and for a library's caller.
   */
  readonly namedLockfile?: string;
  /** Refuse to change the lock file. */
  readonly locked?: boolean;
  /**
   * Exactly the lock, reading no source: each artifact from the cache or from where the lock recorded it,
   * checked against the lock's digest, and a registry's manifest against the registry's key kept here.
   * Implies `locked`.
   */
  readonly frozen?: boolean;
  /**
   * With `frozen`: install entries of a source this machine does not configure (no registry, set or pin
   * under its name) on the lock's digests alone, warned of, instead of refusing them
   * (SOURCE_NOT_CONFIGURED): a lock is untrusted input, and nothing here holds a key to check it by.
   */
  readonly trustLock?: boolean;
  /** The host's plugin API version (`v1`): versions whose bounds exclude it are not chosen. */
  readonly apiVersion?: string;
  /** Re-resolve the named plugins (all of them when none is named) ignoring the lock: `update`. */
  readonly upgrade?: boolean;
  /** What the team allows (a plugin set's `policy:`). */
  readonly policy?: Policy;
  /** Install versions that ask for permissions the locked ones did not. */
  readonly acceptPermissions?: boolean;
  /**
   * Refuse a locked version yanked since (YANKED) instead of installing it with a warning; `frozen` too,
   * which then reads the registry's signed plugin document for it (`checkFrozenYank`).
   */
  readonly denyYanked?: boolean;
  /**
   * Install a version an advisory at `high` or `critical` affects (warned of) instead of refusing it
   * (VULNERABLE). Advisories are read from the plugin document, so a `frozen` install, which reads none,
   * checks none: `plugindex audit` is how a frozen tree is checked.
   */
  readonly allowVulnerable?: boolean;
  /** The plugin set file's digests, the first recorded in the lock (`config_sha256`). */
  readonly setFile?: SetFileDigests;
  /**
   * The plugin set file placing these (its absolute path), recorded among each placed version's `sets` as
   * its real path (disk/state.ts `setOwnerOf`); its replacing drops only its own claim, and removes a
   * version no other set still claims (installed.ts `InstalledVersion.sets`).
   */
  readonly owner?: string;
}

export interface InstalledItem {
  readonly name: string;
  readonly version: string;
  readonly registry: string;
  /** The first platform installed (`os-arch`); `paths` has them all. */
  readonly platform: string;
  /** Absolute path of the installed executable (of the first platform). */
  readonly path: string;
  /** `os-arch` -> absolute path, one per platform installed. */
  readonly paths: Readonly<Record<string, string>>;
  readonly permissions: readonly string[];
  readonly warnings: readonly string[];
  /** The advisories affecting the version, worst first (each also among the warnings). */
  readonly advisories: readonly Advisory[];
  /**
   * The plugins whose names read as this one's, of other owners, as its signed document says
   * (`PluginDocument.look_alikes`); absent for none, or where no document was read (a frozen install's, but with `denyYanked`).
   */
  readonly look_alikes?: PluginDocument['look_alikes'];
  /** True when nothing was fetched: already installed as recorded. */
  readonly unchanged: boolean;
  /**
   * An update that moved to a lower version than the one current in its folder (`1.0.0-beta.2` yanked, the
   * highest the request allows now `1.0.0-beta.1`): the version it left, and why that one is not kept.
   * Reported as "updated to", a downgrade read as an upgrade.
   */
  readonly downgrade?: Downgrade;
  /**
   * An update that placed again the very version current in its folder (a file of it changed or gone, its
   * manifest or key not what the source signs now): reported as "updated to", a version that did not change.
   */
  readonly placedAgain?: true;
}

export interface Downgrade {
  readonly from: string;
  readonly reason: string;
}

export interface InstallResult {
  readonly items: readonly InstalledItem[];
  readonly lockfileChanged: boolean;
  readonly lockChanges: readonly LockChange[];
}

/** A target of one install: what was asked, and what the lock holds for it. */
interface Target {
  readonly name: string;
  readonly spec: string;
  /** The lock's entry when it decides the version. */
  readonly locked?: LockedPlugin;
  /** The registry the lock has it from, even when re-resolving: a plugin never moves registry silently. */
  readonly registry?: string;
  readonly platforms: readonly Platform[];
  readonly dir: string | undefined;
  readonly output?: string;
  /** Where the lock found its manifest: a source installed from by URL is found again there. */
  readonly manifestUrl?: string;
  /** The manifest's path under its source, when a set names it (`InstallTarget.path`). */
  readonly path?: string;
  /** Where the target is written, for messages. */
  readonly where?: string;
  /** An update's platforms taken from the version it moves from, installed in the folder (`platformsToUpdate`). */
  readonly updatingFrom?: string;
  /**
   * The musl host's platform an update added beside the glibc build the folder holds (`platformsToUpdate`):
   * the folder holds none of it, so a refusal names the glibc build it does hold.
   */
  readonly updatingAdded?: string;
  /**
   * Named by the user (a request, a set's entry) and neither locked nor installed: a PLUGIN_NOT_FOUND names
   * the plugin it most likely meant, where one the lock or the folder holds was listed once.
   */
  readonly typed?: boolean;
}

/** One platform's file of a planned version: what to fetch, from where, and what it must hash to. */
export interface PlannedFile {
  readonly platform: string;
  readonly sha256: string;
  readonly size: number;
  readonly url?: string;
  readonly oci?: OciArtifact;
  /** Relative to the install folder. */
  readonly path: string;
}

/** One target resolved and verified (or, frozen, taken from the lock), ready to download and place. */
export interface Planned {
  readonly name: string;
  readonly version: string;
  readonly registry: string;
  readonly dir: string | undefined;
  /** The source's key fingerprint. */
  readonly fingerprint: string;
  /**
   * The key that signed the manifest placed, when another than `fingerprint`: a frozen install of a lock
   * made under a key since retired signs with the key the client holds now, and installed.json records that
   * one (`registry_key`), which the next install compares with `revoked`.
   */
  readonly signedBy?: string;
  /**
   * The keys the source's trust state marks retired as compromised (key-chain.ts revokedLink): a version
   * installed.json records as placed under one is placed again, with the signature by the current key.
   */
  readonly revoked: readonly string[];
  /**
   * The keys the source's key succeeds through rotations followed (`Source.previousKeys`), for a plan read
   * from its source: a version installed.json records under neither one of them nor `fingerprint` is placed
   * again (`placedKeyProblem`). Absent for a frozen plan, which judges no such key.
   */
  readonly previousKeys?: readonly string[];
  readonly endpoint: Endpoint;
  readonly files: readonly PlannedFile[];
  /** The signed manifest and its signature; absent only for a frozen install whose cache lacks them. */
  readonly manifest?: VerifiedManifest;
  readonly entry: LockedPlugin;
  readonly yanked: boolean;
  readonly deprecated: boolean;
  /** An update's move below the version current in the folder (`InstalledItem.downgrade`). */
  readonly downgrade?: Downgrade;
  /** An update to the version current in the folder (`InstalledItem.placedAgain`). */
  readonly placedAgain?: true;
  readonly warnings: readonly string[];
  /** The advisories affecting it (none known for a frozen install, which reads no plugin document). */
  readonly advisories: readonly Advisory[];
  /** Its signed document's look-alikes of other owners (`InstalledItem.look_alikes`). */
  readonly look_alikes?: PluginDocument['look_alikes'];
  /**
   * Permissions this version asks for that neither the lock's version nor the version installed in its
   * folder did (`acceptedFrom` names them).
   */
  readonly newPermissions: readonly string[];
  /** The versions whose permissions were accepted before (`name@version`, the lock's and the installed). */
  readonly acceptedFrom?: string;
  /**
   * True when the signature chain was checked now (not for a frozen install, which reads no snapshot: at
   * most the registry's signature of the manifest is checked).
   */
  readonly checked: boolean;
  /**
   * True when `entry.publisher` was checked against a signature (the registry's signed plugin document, or
   * the key that signed a folder's manifest), not taken on the lock's word: installed.json records which.
   */
  readonly publisherVerified: boolean;
  /** The resource limits the version declares (from its document; unknown when frozen). */
  readonly resources?: Resources;
  readonly generation: number;
}

export interface InstallPlan {
  readonly planned: readonly Planned[];
  readonly before: Lockfile | undefined;
  readonly lock: Lockfile;
  readonly changes: readonly LockChange[];
  /** Set when every target already is installed as the lock says (nothing to fetch or place). */
  readonly unchanged?: readonly InstalledItem[];
  /** With `unchanged`: each target's version as found in its folder, for the claims recorded on it. */
  readonly found?: readonly FoundVersion[];
}

/** A version found in place as an install would place it: in which folder, and its manifest's digest. */
type FoundVersion = Pick<Planned, 'name' | 'version' | 'dir'> & {
  readonly entry: Pick<LockedPlugin, 'manifest_sha256'>;
};

/**
 * What planning a target of a plugin set throws, with the place in the set that names it: a missing
 * plugin or version is then found in the file, not guessed at. Same class and code, the original as cause.
 */
async function naming<T>(target: Target, work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (error) {
    if (target.where === undefined || !(error instanceof ClientError || error instanceof TrustError))
      throw error;
    const message = `${target.where} (${target.name}): ${error.message}`;
    throw error instanceof ClientError
      ? new ClientError(error.code, message, { cause: error })
      : new TrustError(error.code, message, { cause: error });
  }
}

/**
 * What one install has read of its folders before it writes: each installed.json read once, each file
 * hashed once, however many targets and checks ask (the fast path, then "installed as planned").
 */
class OnDisk {
  readonly #reads = new Map<string, Promise<InstalledFile>>();
  readonly #hashes = new Map<string, Promise<{ sha256: string; size: number } | undefined>>();
  readonly #listings = new Map<string, Promise<string[]>>();

  read(tree: InstallTree): Promise<InstalledFile> {
    let read = this.#reads.get(tree.dir);
    if (!read) {
      read = tree.read();
      this.#reads.set(tree.dir, read);
    }
    return read;
  }

  /** `tree.foldedAs`: the plugin's folder listed once per install, however many checks ask. */
  foldedAs(tree: InstallTree, name: string, folder: string): Promise<string[]> {
    const key = `${tree.path(name)}\0${folder}`;
    let found = this.#listings.get(key);
    if (!found) {
      found = tree.foldedAs(name, folder);
      this.#listings.set(key, found);
    }
    return found;
  }

  /**
   * `tree.hashFile`; `executable` for an artifact, which is no installed file unless it is one; a file past
   * `maxBytes` (an artifact's signed size, a manifest's or a signature's cap) is not read.
   */
  hash(
    tree: InstallTree,
    relative: string,
    maxBytes: number,
    executable = false,
  ): Promise<{ sha256: string; size: number } | undefined> {
    const path = `${tree.path(relative)}\0${maxBytes}\0${executable}`;
    let hash = this.#hashes.get(path);
    if (!hash) {
      hash = tree.hashFile(relative, { executable, maxBytes });
      this.#hashes.set(path, hash);
    }
    return hash;
  }
}

/** Downloads in flight at once: enough to hide a round trip, few enough not to crowd a registry. */
const DOWNLOADS_AT_ONCE = 4;

/** Runs `work` over `items`, at most `limit` at a time; the first failure is thrown once all have stopped. */
async function eachLimited<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const failures: unknown[] = [];
  const worker = async () => {
    while (next < items.length && failures.length === 0) {
      const item = items[next++] as T;
      try {
        await work(item);
      } catch (error) {
        failures.push(error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failures.length > 0) throw failures[0];
}

export function installPlugins(ctx: ClientContext, options: InstallOptions): Promise<InstallResult> {
  // Two installs in one project take turns on its lock file; one that does not write it (--locked, a
  // read-only checkout in CI) takes no lock either.
  return options.locked || options.frozen
    ? install(ctx, options)
    : withFileLock(options.lockfile, () => install(ctx, options));
}

async function install(ctx: ClientContext, options: InstallOptions): Promise<InstallResult> {
  const seen = new OnDisk();
  const plan = await planInstall(ctx, options, seen);
  const owners = new Map<string, Promise<SetOwner>>();
  // The set placing these, as each folder's installed.json names it; undefined for a plain install.
  const ownerIn = (tree: InstallTree): Promise<SetOwner> | undefined => {
    const file = options.owner;
    if (file === undefined) return undefined;
    let owner = owners.get(tree.dir);
    if (!owner) {
      owner = setOwnerOf(tree.dir, file);
      owners.set(tree.dir, owner);
    }
    return owner;
  };
  // Before anything is placed, so the replacing below removes a claimed version the set moved from.
  await claimLockedVersions(ctx, options, plan.before, seen, ownerIn);
  if (plan.unchanged) {
    // Found in place as the slow path finds a version installed as planned: a plain install claims by hand
    // what sets placed (it recorded nothing here, and the last set's `clean -c` removed the user's version).
    await joinPlacedVersions(ctx, options, plan.found ?? [], seen, ownerIn);
    return { items: plan.unchanged, lockfileChanged: false, lockChanges: [] };
  }

  // A target already installed as planned is left as it is (a set where one plugin moved touches only it).
  const unchanged = new Set<Planned>();
  for (const planned of plan.planned)
    if (await installedAsPlanned(ctx.tree(planned.dir ?? options.dir), planned, seen)) unchanged.add(planned);
  const changing = plan.planned.filter((p) => !unchanged.has(p));
  await recordCheckedPublishers(ctx, options, [...unchanged], seen);
  await joinPlacedVersions(ctx, options, [...unchanged], seen, ownerIn);

  // 2. Download what the cache lacks (each artifact verified while it streams), holding nothing: a slow
  // registry keeps no other install of these folders waiting.
  const fetched = new Set<PlannedFile>();
  const files = changing.flatMap((planned) => planned.files.map((file) => ({ planned, file })));
  await eachLimited(files, DOWNLOADS_AT_ONCE, async ({ planned, file }) => {
    if (await download(ctx, planned, file)) fetched.add(file);
  });

  // 3. Place every file (each by temp file and rename), then record them all at once per folder; a failure
  // part way removes what this run placed for versions that were not installed before.
  // Each folder held (installed.json's lock, in the order of their paths, so two installs into the same
  // folders never each wait on the other) from before its first file is placed until its record is written:
  // what it held before is read under the hold, and nothing another install places or records can land in
  // between and be removed below, by the cleanup or by the replacing (installed.json then named files gone).
  // One hold a folder, by its real path: a set may name one folder two ways (a link to it, another letter
  // case where case is ignored), one installed.json whose lock, taken again under the other name, this
  // process waited on itself for, then failed INSTALL_BUSY. Sorted by the real path alike.
  const byReal = new Map<string, InstallTree>();
  for (const dir of new Set(changing.map((p) => p.dir))) {
    const tree = ctx.tree(dir ?? options.dir);
    const real = await realPath(tree.dir);
    if (!byReal.has(real)) byReal.set(real, tree);
  }
  const trees = [...byReal.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, tree]) => tree);
  // The hold covers placing alone. A cached blob found damaged as it is copied (its bytes no longer the
  // signed digest), or gone (`remove --clean` or `clean -c` deleted it since it was found), ends the attempt:
  // what it placed is removed as for any failure, the folders are let go, the blob is downloaded again
  // holding nothing, and the placing begins again. Downloaded under the hold, a slow registry kept every
  // other install of the folder waiting, failing INSTALL_BUSY after 30 s. Each blob is fetched once more at
  // most: one this run downloaded that is damaged or gone again is refused. A damaged blob is not deleted
  // first but replaced (`again`: the download's rename over it): deleted, it could be the copy another install
  // finding it damaged too had downloaded meanwhile, which that install, finding it gone, refused
  // CACHE_BLOB_GONE.
  for (;;) {
    try {
      await placeHolding(ctx, options, trees, changing, ownerIn);
      break;
    } catch (error) {
      if (!(error instanceof CachedBlobFault)) throw error;
      if (fetched.has(error.file)) throw error.refusal();
      fetched.add(error.file);
      await download(ctx, error.planned, error.file, true);
    }
  }
  // --locked and --frozen leave the lock as it is, even where only its record of the set file or of where
  // artifacts were found would change (what they lock is checked above: it does not).
  const lockfileChanged =
    options.locked || options.frozen ? false : await writeLockfile(options.lockfile, plan.lock);
  return {
    items: plan.planned.map((p) => itemOf(p, ctx.tree(p.dir ?? options.dir), unchanged.has(p))),
    lockfileChanged,
    lockChanges: plan.changes,
  };
}

/**
 * Places the changing versions and records them, holding `trees` (in their order) throughout; a failure part
 * way removes what it placed for versions that were not installed before (read under the hold) and is thrown,
 * a cached blob found damaged or gone as `CachedBlobFault`.
 */
async function placeHolding(
  ctx: ClientContext,
  options: InstallOptions,
  trees: readonly InstallTree[],
  changing: readonly Planned[],
  ownerIn: (tree: InstallTree) => Promise<SetOwner> | undefined,
): Promise<void> {
  // `begun`: each version whose placing began, the one that failed too (its folders are made before its first
  // file is read: left, a failed attempt left them empty).
  const byDir = new Map<string, { tree: InstallTree; placed: Placed[]; begun: Planned[] }>();
  const treeOf = (dir: string | undefined) => {
    const tree = ctx.tree(dir ?? options.dir);
    let group = byDir.get(tree.dir);
    if (!group) {
      group = { tree, placed: [], begun: [] };
      byDir.set(tree.dir, group);
    }
    return group;
  };
  const before = new Map<string, Awaited<ReturnType<InstallTree['read']>>>();
  const holding = trees.reduceRight<() => Promise<void>>(
    (inner, tree) => () => tree.hold(inner),
    async () => {
      try {
        for (const planned of changing) {
          const group = treeOf(planned.dir);
          if (!before.has(group.tree.dir)) before.set(group.tree.dir, await group.tree.read());
          group.begun.push(planned);
          group.placed.push(await place(ctx, group.tree, planned, await ownerIn(group.tree)));
        }
      } catch (error) {
        for (const { tree, begun } of byDir.values())
          for (const { name, version } of begun)
            if (!own(before.get(tree.dir)?.plugins ?? {}, name)?.versions[version])
              await tree.removeVersion(name, version);
        throw error;
      }
      // An update, or a plugin set (one version per plugin), replaces: the versions it moved away from go,
      // once the new one is in place.
      const replace = options.upgrade === true || options.targets !== undefined;
      for (const { tree, placed } of byDir.values()) await record(tree, placed, replace, await ownerIn(tree));
    },
  );
  await holding();
}

/**
 * A cached artifact that placing found damaged (its bytes no longer the signed digest) or gone: nothing of it
 * was placed. Thrown out of the folders' hold, so it is fetched again holding nothing.
 */
class CachedBlobFault extends Error {
  override readonly name = 'CachedBlobFault';
  readonly planned: Planned;
  readonly file: PlannedFile;
  readonly #blob: string;

  constructor(planned: Planned, file: PlannedFile, cause: unknown, blob: string) {
    super(
      `${planned.name}@${planned.version} ${file.platform}: its cached artifact ${blob} is damaged or gone`,
      {
        cause,
      },
    );
    this.planned = planned;
    this.file = file;
    this.#blob = blob;
  }

  /**
   * What to throw when the blob was downloaded by this very install: damaged, the original ARTIFACT_MISMATCH
   * (the disk changes what it holds); gone, deleted again by a `remove --clean` or `clean -c` running beside.
   */
  refusal(): Error {
    if (this.cause instanceof TrustError) return this.cause;
    return new ClientError(
      'CACHE_BLOB_GONE',
      `${this.planned.name}@${this.planned.version} ${this.file.platform}: its artifact (sha256 ${this.file.sha256}) was deleted from the cache (${this.#blob}) after this install downloaded it, before it was placed: a \`plugindex remove --clean\` or \`clean -c\` ran beside it; run install again`,
      { cause: this.cause },
    );
  }
}

/**
 * A plugin set's versions that a client before installed.json recorded sets placed, claimed as the set's
 * (their `sets` written) where the set's lock, as it was before this install, names each at its version and
 * manifest (installed.ts `isClaimedByLock`), in the folder the set installs it into: unclaimed, the set's
 * next lock bump left the old version beside the new one, `clean -c` left it and `verify -c` named it
 * `NOT_IN_SET` for good. Where another set is recorded as placing it, this set joins its owners
 * (installed.ts `withSetOwner`, as `joinPlacedVersions` does for a version found in place). On the fast path
 * too, as a tree already the lock is the common case after an upgrade; installed.json is written only where
 * something is claimed. A version the lock does not name (one installed by hand into a folder a set names)
 * is never claimed.
 */
async function claimLockedVersions(
  ctx: ClientContext,
  options: InstallOptions,
  before: Lockfile | undefined,
  seen: OnDisk,
  ownerIn: (tree: InstallTree) => Promise<SetOwner> | undefined,
): Promise<void> {
  if (options.owner === undefined || before === undefined) return;
  const byDir = new Map<string, { tree: InstallTree; names: string[] }>();
  for (const target of options.targets ?? []) {
    if (!own(before.plugins, target.name)) continue;
    const tree = ctx.tree(target.dir ?? options.dir);
    const group = byDir.get(tree.dir) ?? { tree, names: [] };
    group.names.push(target.name);
    byDir.set(tree.dir, group);
  }
  for (const { tree, names } of byDir.values()) {
    const owner = (await ownerIn(tree)) as SetOwner;
    const claimed = (installed: InstalledFile) =>
      names.reduce(
        (next, name) => withSetOwner(next, name, own(before.plugins, name) as LockedPlugin, owner, true),
        installed,
      );
    // Read first: a folder with nothing to claim (or none yet) is not locked, let alone written.
    const held = await seen.read(tree);
    if (claimed(held) === held) continue;
    await tree.update(async (current) => ({ installed: claimed(current), result: undefined }));
  }
}

/**
 * A set's versions found in place as planned that another set placed: this set joins their owners
 * (installed.ts `withSetOwner`), so each set's `clean -c`, or its install moving on, drops only its own
 * claim, and the version goes with the last; recorded once (`ownersOf` the first alone), the first set's
 * `clean -c` removed what the other still pinned, and the other's left what it placed. A plain install's is
 * left its own: a set never claims what the user installed. A plain install finding in place a version sets
 * placed claims it by hand (`withHandClaim`), so the last set to drop it leaves it. On the fast path too
 * (`InstallPlan.found`): there a plain install recorded no claim, and the set's `clean -c` removed the
 * version the user had installed. installed.json is written only where something changes.
 */
async function joinPlacedVersions(
  ctx: ClientContext,
  options: InstallOptions,
  unchanged: readonly FoundVersion[],
  seen: OnDisk,
  ownerIn: (tree: InstallTree) => Promise<SetOwner> | undefined,
): Promise<void> {
  const byDir = new Map<string, { tree: InstallTree; plans: FoundVersion[] }>();
  for (const plan of unchanged) {
    const tree = ctx.tree(plan.dir ?? options.dir);
    const group = byDir.get(tree.dir) ?? { tree, plans: [] };
    group.plans.push(plan);
    byDir.set(tree.dir, group);
  }
  for (const { tree, plans } of byDir.values()) {
    const owner = await ownerIn(tree);
    const joined = (installed: InstalledFile) =>
      plans.reduce(
        (next, p) =>
          owner === undefined
            ? withHandClaim(next, p.name, p.version, p.entry.manifest_sha256)
            : withSetOwner(
                next,
                p.name,
                { version: p.version, manifest_sha256: p.entry.manifest_sha256 },
                owner,
                false,
              ),
        installed,
      );
    const held = await seen.read(tree);
    if (joined(held) === held) continue;
    await tree.update(async (current) => ({ installed: joined(current), result: undefined }));
  }
}

/**
 * Versions left as they are whose publisher this plan checked against a signature, recorded as checked
 * where installed.json did not say so (a frozen install without a policy that lists publishers took the
 * lock's word): a policy that lists publishers then finds the tree up to date without a request
 * (alreadyInstalled), where it would otherwise ask the source on every run. installed.json is written only
 * where a record changes.
 */
async function recordCheckedPublishers(
  ctx: ClientContext,
  options: InstallOptions,
  unchanged: readonly Planned[],
  seen: OnDisk,
): Promise<void> {
  const byDir = new Map<string, { tree: InstallTree; plans: Planned[] }>();
  for (const plan of unchanged) {
    if (!plan.publisherVerified) continue;
    const tree = ctx.tree(plan.dir ?? options.dir);
    const before = await seen.read(tree);
    const edit = (installed: InstalledFile) =>
      withCheckedPublisher(
        installed,
        plan.name,
        plan.version,
        plan.entry.manifest_sha256,
        plan.entry.publisher,
      );
    if (edit(before) === before) continue;
    const group = byDir.get(tree.dir) ?? { tree, plans: [] };
    group.plans.push(plan);
    byDir.set(tree.dir, group);
  }
  for (const { tree, plans } of byDir.values())
    await tree.update(async (current) => ({
      installed: plans.reduce(
        (next, p) =>
          withCheckedPublisher(next, p.name, p.version, p.entry.manifest_sha256, p.entry.publisher),
        current,
      ),
      result: undefined,
    }));
}

/**
 * Everything an install decides, before it writes anything: the targets resolved and verified (or, frozen,
 * taken from the lock), the policy and the permissions checked, and the lock it would write.
 * @throws ClientError LOCK_OUT_OF_SYNC, POLICY_DENIED, PERMISSIONS_NOT_ACCEPTED, and what resolving and
 *   verifying throw.
 */
export async function planInstall(
  ctx: ClientContext,
  options: InstallOptions,
  seen: OnDisk = new OnDisk(),
): Promise<InstallPlan> {
  const locked = options.locked === true || options.frozen === true;
  const before = await readLockfile(options.lockfile);
  // Read only for a target naming no platforms: the host's is a diagnostic report on Linux (client.ts).
  const replaced = locked ? new Set<string>() : await replacedSetKeys(options, before);
  const targets = installTargets(
    options,
    before,
    () => namedPlatforms(options) ?? [ctx.platform],
    await platformsToUpdate(ctx, options, seen),
  ).map((target): Target => {
    if (!target.locked || !replaced.has(target.locked.registry)) return target;
    const { locked: _, ...resolved } = target;
    return resolved;
  });
  if (locked && !before)
    throw new ClientError(
      'LOCK_OUT_OF_SYNC',
      `${options.lockfile} does not exist, and --locked/--frozen forbid creating it (run \`plugindex install${lockfileFlag(options)}\` without them once)`,
    );
  if (options.frozen) {
    const missing = targets.filter((t) => !t.locked).map((t) => `${t.name}@${t.spec}`);
    if (missing.length > 0)
      throw new ClientError(
        'LOCK_OUT_OF_SYNC',
        `${options.lockfile} does not lock ${missing.join(', ')} as asked, and --frozen installs only what it locks`,
      );
  }

  // Fast path (an installed tree that already is the lock): nothing to fetch, nothing to verify online, and
  // so, as for --frozen, no plugin document read for what happened since (yanks, removals, advisories):
  // nothing is installed either. `plugindex audit` and `list --outdated` ask the registries. Not taken with
  // --deny-yanked, which asks for exactly that document read (a yank since must refuse). Nor when the policy
  // refuses what the tree holds: a lock and tree moved on by a command that reads no set (`update`,
  // `install NAME --lockfile`) keep the set file's digest, and would be called up to date unjudged; the plan
  // below then refuses them on the source's word.
  if (!options.upgrade && !options.denyYanked && targets.every((t) => t.locked)) {
    // A frozen install of a source not configured here is refused (SOURCE_NOT_CONFIGURED) whether or not its
    // tree is in place: the files match the lock's digests, but nothing this machine trusts vouched for the
    // lock, and the same lock on a clean machine is refused; so one answer, with no request either way.
    if (options.frozen && !options.trustLock)
      await refuseUnconfiguredSources(ctx, options, targets, before as Lockfile);
    const installed = await alreadyInstalled(ctx, targets, options, seen, before);
    const unchanged =
      installed && (await installedPolicyAllows(ctx, options, targets)) ? installed : undefined;
    if (unchanged) {
      // A tree holding the locked version beside another spelled in other letter case (an older client
      // placed both) is no tree up to date: the plan below would refuse it, after asking its sources.
      for (const t of targets)
        await checkVersionFolder(
          ctx.tree(t.dir ?? options.dir),
          seen,
          t.name,
          (t.locked as LockedPlugin).version,
        );
      const lock = setLock(before ?? EMPTY_LOCKFILE, targets, options);
      const changes = lockChanges(before ?? EMPTY_LOCKFILE, lock);
      const found = targets.map((t) => ({
        name: t.name,
        version: (t.locked as LockedPlugin).version,
        dir: t.dir,
        entry: t.locked as LockedPlugin,
      }));
      if (changes.length === 0 && lock === before)
        return { planned: [], before, lock, changes, unchanged, found };
    }
  }

  // 1. Resolve and verify every target (and compute the lock) before anything is written.
  const planned: Planned[] = [];
  if (options.frozen) {
    // Every source known here (or lock-only trust taken) before any target fetches anything: planned side
    // by side, a known source's requests would otherwise be under way when an unknown one is refused.
    if (!options.trustLock) await refuseUnconfiguredSources(ctx, options, targets, before as Lockfile);
    await openPins(ctx, options, targets, before as Lockfile);
    // Each from the lock alone, so side by side (a manifest to fetch each, at most).
    const frozen = new Map<Target, Planned>();
    await eachLimited(targets, DOWNLOADS_AT_ONCE, async (target) => {
      frozen.set(target, await planFrozen(ctx, target, options, before as Lockfile));
    });
    for (const target of targets) planned.push(frozen.get(target) as Planned);
  } else {
    // One after another: the targets share their registries' sessions, which open once.
    for (const target of targets)
      planned.push(await naming(target, planTarget(ctx, target, options, before ?? EMPTY_LOCKFILE, seen)));
  }
  const refused = planned.flatMap((p) =>
    policyRefusals(options.policy, {
      name: p.name,
      version: p.version,
      // By the signed manifest where there is one: a frozen plan's version is otherwise the lock's word.
      prerelease: isPrerelease(p.manifest?.manifest.version ?? p.version),
      permissions: p.entry.permissions ?? [],
      ...(p.resources ? { resources: p.resources } : {}),
      publisher: p.entry.publisher,
      source: p.registry,
    }),
  );
  // Each rule named where the set file writes it (`owner`: the set whose policy this is).
  if (refused.length > 0)
    throw new ClientError('POLICY_DENIED', `the policy refuses: ${refusalText(options.owner, refused)}`);
  for (const p of planned) await checkVersionFolder(ctx.tree(p.dir ?? options.dir), seen, p.name, p.version);
  let lock = before ?? EMPTY_LOCKFILE;
  for (const p of planned)
    lock = withPlugin(lock, p.name, p.entry, { key_fingerprint: p.fingerprint, generation: p.generation });
  lock = setLock(lock, targets, options);
  const changes = lockChanges(before ?? EMPTY_LOCKFILE, lock);
  if (locked && changes.length > 0)
    throw new ClientError(
      'LOCK_OUT_OF_SYNC',
      `${options.lockfile} would change, and --locked/--frozen forbid it: ${changes.map((c) => `${c.entry} ${c.change} (${c.detail})`).join('; ')}`,
    );
  // After --locked: a lock that may not change is the first thing to say; new permissions come next.
  const asking = planned.filter((p) => p.newPermissions.length > 0);
  if (asking.length > 0 && !options.acceptPermissions)
    throw new ClientError(
      'PERMISSIONS_NOT_ACCEPTED',
      `${asking.map((p) => `${p.name}@${p.version} asks for ${p.newPermissions.join(', ')}, which ${p.acceptedFrom} did not`).join('; ')}: review them, then install with --accept-permissions`,
    );
  return { planned, before, lock, changes };
}

/**
 * Refuses a version whose folder would be the folder of another version of the plugin in `tree`, their
 * names differing only in build metadata or in letter case: `1.0.0+a` and `1.0.0+b` are one folder on every
 * system (versionFolder leaves build metadata out, as SemVer's precedence does), and `1.0.0-RC.1` and
 * `1.0.0-rc.1`, two SemVer versions (no registry publishes both, but two sources may each hold one), one
 * folder on a filesystem that ignores case (macOS's and Windows' defaults); each placement writing over the
 * other's files, and an update from one to the other removing, with the version it replaced, the one it had
 * just placed. Another version is one
 * installed.json records, or a folder in the plugin's folder it does not (`InstallTree.foldedAs`: left by
 * an older client, an install cut short between its folder and its record, or a copy), which installed.json
 * alone never showed. A tree an older client filled with both, recorded, is refused too, the version asked
 * for being one of them: neither is picked, as their one folder holds the files of whichever was placed
 * last. Refused on every system, as an install folder is a checkout's too. Plugin
 * names need no such check: they are lower case by rule wherever one is read (layout.ts).
 * @throws ClientError VERSION_FOLDER_CLASH naming both versions (or the folder), their folders and how to go on.
 */
async function checkVersionFolder(
  tree: InstallTree,
  seen: OnDisk,
  name: string,
  version: string,
): Promise<void> {
  const plugin = own((await seen.read(tree)).plugins, name);
  const folder = versionFolder(version);
  const where = tree.path(`${name}/${folder}`);
  const ignored = 'where case is ignored (macOS and Windows by default) they are one folder';
  const both = plugin !== undefined && own(plugin.versions, version) !== undefined;
  for (const other of Object.keys(plugin?.versions ?? {})) {
    if (other === version || versionIdentity(other) !== versionIdentity(version)) continue;
    const otherFolder = versionFolder(other);
    const remove = `\`plugindex remove ${name}@${other} --dir ${tree.dir}\``;
    // Build metadata is no part of a folder's name (layout.ts versionFolder): `1.0.0+a` and `1.0.0+b` are
    // one folder on every system, not only where case is ignored.
    const oneFolder =
      otherFolder === folder
        ? 'their names differ only in build metadata, which a version folder leaves out: they are one folder on every system'
        : `their names differ only in letter case, and ${ignored}`;
    throw new ClientError(
      'VERSION_FOLDER_CLASH',
      both
        ? `${name}@${version} and ${name}@${other} are both installed in ${tree.dir}, in ${where} and ${tree.path(`${name}/${otherFolder}`)} (placed by an older client): ${oneFolder}, holding the files of whichever was placed last, so neither is taken as installed; remove ${name}@${other} (${remove}), then install again`
        : `${name}@${version} would be placed in ${where}, and ${name}@${other} is installed in ${tree.path(`${name}/${otherFolder}`)}: ${oneFolder}, each writing over the other's files; remove ${name}@${other} first (${remove}), then install again`,
    );
  }
  const [found] = await seen.foldedAs(tree, name, folder);
  if (found !== undefined)
    throw new ClientError(
      'VERSION_FOLDER_CLASH',
      `${name}@${version} would be placed in ${where}, and ${join(tree.path(name), found)} is there, which ${tree.file} does not record (an older client's, an install cut short, or a copy): their names differ only in letter case (or, as Windows reads them, in trailing dots and spaces), and ${ignored}, the placement writing over what it holds; move ${found} out of ${tree.path(name)} or delete it, then install again`,
    );
}

/**
 * True when the policy (if any) allows every version the tree holds as the lock says (`alreadyInstalled`),
 * judged by `installedPolicyProblems` on the signed manifest in place, read again and held to the lock's
 * digest: the lock's own claims (its permissions and resources) are the word of a file a pull request can
 * edit, and one edited to leave out a permission would be called up to date unjudged. The publisher is the
 * one installed.json recorded when the version was placed, which `alreadyInstalled` found the lock names too.
 */
async function installedPolicyAllows(
  ctx: ClientContext,
  options: InstallOptions,
  targets: readonly Target[],
): Promise<boolean> {
  if (options.policy === undefined) return true;
  for (const t of targets) {
    const entry = t.locked as LockedPlugin;
    const tree = ctx.tree(t.dir ?? options.dir);
    // The lock's publisher is the one installed.json recorded, checked if the policy lists publishers
    // (alreadyInstalled).
    const recorded = { ...entry, publisher_verified: true };
    const problems = await installedPolicyProblems(tree, options.policy, t.name, entry.version, recorded);
    if (problems === undefined || problems.length > 0) return false;
  }
  return true;
}

/**
 * What the policy refuses of a version installed in `tree` (policy.ts `policyProblems`: one sentence per
 * rule broken, naming the version), judged on what the signed manifest in place asks for (its permissions,
 * resources and version), held to the digest `recorded` gives, and on the publisher and source `recorded`
 * names (installed.json's record, or a lock entry the tree was found to hold). The manifest's signature is
 * not checked here: an install placed it verified, and `plugindex verify` checks it again.
 * @returns undefined when no such manifest is in place (missing, other bytes, not JSON): nothing to judge.
 */
export async function installedPolicyProblems(
  tree: InstallTree,
  policy: Policy,
  name: string,
  version: string,
  recorded: {
    readonly manifest_sha256: string;
    readonly publisher: string;
    readonly publisher_verified?: boolean;
    readonly registry: string;
  },
): Promise<PolicyRefusal[] | undefined> {
  const manifest = await installedManifest(tree, name, version, recorded.manifest_sha256);
  if (!manifest) return undefined;
  const problems = policyRefusals(policy, {
    name,
    version,
    prerelease: isPrerelease(manifest.version ?? version),
    permissions: Array.isArray(manifest.permissions) ? manifest.permissions : [],
    ...(manifest.resources ? { resources: manifest.resources } : {}),
    publisher: recorded.publisher,
    source: recorded.registry,
  });
  // A publisher the policy lists but nothing checked (a frozen install without such a policy took the
  // lock's word for it) says nothing of who published it: the policy cannot be called kept.
  if (
    policy.publishers?.includes(recorded.publisher.toUpperCase()) === true &&
    recorded.publisher_verified !== true
  )
    problems.push({
      at: '/policy/publishers',
      problem: `${name}@${version}: its publisher key ${recorded.publisher} is not recorded as checked against a signature (a frozen install without a publishers policy takes the lock's word for it, and older clients recorded no check), so policy.publishers cannot be judged; \`plugindex install -c\` checks it`,
    });
  return problems;
}

/** A plugin set's lock holds exactly its plugins, and the digest of the file it was made from. */
function setLock(lock: Lockfile, targets: readonly Target[], options: InstallOptions): Lockfile {
  if (options.targets === undefined) return lock;
  const named = new Set(targets.map((t) => t.name));
  let next = lock;
  for (const name of Object.keys(lock.plugins)) if (!named.has(name)) next = withoutPlugin(next, name);
  if (options.setFile !== undefined && !madeFromSetFile(next, options.setFile))
    next = { ...next, config_sha256: options.setFile.sha256 };
  return next;
}

/**
 * `resolve` for a platform an update took from the folder: a new version without its build is refused
 * saying why that platform was asked for (the update named none) and what to do, where the message named a
 * platform out of nowhere.
 */
function updatingFor<T>(target: Target, folder: string, platform: Platform, resolve: () => T, flag = ''): T {
  try {
    return resolve();
  } catch (error) {
    if (
      target.updatingFrom === undefined ||
      !(error instanceof ClientError) ||
      error.code !== 'NO_ARTIFACT_FOR_PLATFORM'
    )
      throw error;
    // A platform the folder never held (the musl host's, added beside its glibc build) is not what the old
    // version "is installed for": the glibc build is, and the new version lacks that too (musl falls back to it).
    const held =
      target.updatingAdded === platformKey(platform) ? { os: platform.os, arch: platform.arch } : platform;
    const text = artifactPlatformText(held);
    throw new ClientError(
      'NO_ARTIFACT_FOR_PLATFORM',
      // The platforms named are those placed, and the old version goes whole: said, where "name the
      // platforms" read as the others kept. An update of every plugin stops here too: naming the others
      // updates them.
      `${error.message} (${target.name}@${target.updatingFrom} is installed for ${text} in ${folder}, and an update naming no platform places the new version for each platform the old one is installed for: \`plugindex update ${target.name} --platform OS/ARCH${flag}\` (one of those it has, repeated for each to keep) updates it for those platforms alone, removing ${target.name}@${target.updatingFrom} with its other builds; or leave it at ${target.updatingFrom}, naming the plugins to update)`,
      { cause: error },
    );
  }
}

/** What `platformsToUpdate` found of one plugin: the version it moves from, its platforms, a musl host's added. */
interface FolderPlatforms {
  readonly version: string;
  readonly platforms: readonly Platform[];
  readonly added?: string;
}

/**
 * An update's platforms, plugin by plugin, when none is named (`--platform`): those the version it moves
 * from is installed for in the folder, the host's first. A fleet's folder filled with `install --platform`
 * (the host's build and an arm64 one, say, or another system's alone) kept only the host's build of the
 * new version, the old version's other builds removed with it; now each is placed again at the new version
 * (one the new version lacks refuses the update, NO_ARTIFACT_FOR_PLATFORM, removing nothing). Empty for
 * anything else: an install places the platform asked for, a plugin set the platforms its file names.
 */
async function platformsToUpdate(
  ctx: ClientContext,
  options: InstallOptions,
  seen: OnDisk,
): Promise<ReadonlyMap<string, FolderPlatforms>> {
  const found = new Map<string, FolderPlatforms>();
  if (!options.upgrade || namedPlatforms(options) !== undefined || options.targets !== undefined)
    return found;
  const installed = await seen.read(ctx.tree(options.dir));
  for (const [name, plugin] of Object.entries(installed.plugins)) {
    const keys = Object.keys(own(plugin.versions, plugin.current)?.artifacts ?? {});
    if (keys.length === 0) continue;
    const host = platformKey(ctx.platform);
    // A musl host's folder holding the glibc build of its arch and none of its own: a client before musl was
    // told apart placed it there as this host's, asked for nothing, and the update placed the musl build
    // before folders were read; but `--platform linux/ARCH` or a glibc container sharing the folder places
    // the same. So both: the host's own build, and the glibc one kept (`update NAME --platform` names one).
    const glibc = platformKey({ os: ctx.platform.os, arch: ctx.platform.arch });
    const added = host !== glibc && keys.includes(glibc) && !keys.includes(host);
    if (added) keys.push(host);
    // The host's first: the version is resolved for the first platform, as a plain update resolves it.
    const ordered = [...keys].sort((a, b) => Number(b === host) - Number(a === host) || compareStrings(a, b));
    found.set(name, {
      version: plugin.current,
      platforms: ordered.map((key) => (key === host ? ctx.platform : platformOfKey(key))),
      ...(added ? { added: host } : {}),
    });
  }
  return found;
}

/** The platforms an install names (`platforms`, else `platform`), each once, in the order given; else undefined. */
function namedPlatforms(options: InstallOptions): readonly Platform[] | undefined {
  const named = options.platforms?.length ? options.platforms : options.platform ? [options.platform] : [];
  const once = named.filter(
    (p, i) => named.findIndex((other) => platformKey(other) === platformKey(p)) === i,
  );
  return once.length > 0 ? once : undefined;
}

function installTargets(
  options: InstallOptions,
  lock: Lockfile | undefined,
  platforms: () => readonly Platform[],
  updating: ReadonlyMap<string, FolderPlatforms> = new Map(),
): Target[] {
  const fromFolder = (name: string) => {
    const found = updating.get(name);
    return found
      ? {
          platforms: found.platforms,
          updatingFrom: found.version,
          ...(found.added !== undefined ? { updatingAdded: found.added } : {}),
        }
      : {};
  };
  const locked = (name: string): LockedPlugin | undefined =>
    lock && Object.hasOwn(lock.plugins, name) ? lock.plugins[name] : undefined;
  if (options.targets) {
    return options.targets.map((t) => {
      const entry = locked(t.name);
      // The lock decides while it was made for this request from this source (and, for a manifest named by
      // its path, from that path: the spec alone is then `latest` whichever version the path names, and a
      // path moved to another version kept the old one under --frozen, and under --locked refused the new).
      const keep =
        entry &&
        !options.upgrade &&
        entry.requested === t.spec &&
        entry.registry === t.registry &&
        (t.path === undefined || foundAt(entry, t.path));
      return {
        name: t.name,
        spec: t.spec,
        platforms: t.platforms && t.platforms.length > 0 ? t.platforms : platforms(),
        dir: t.dir ?? options.dir,
        ...(t.output !== undefined ? { output: t.output } : {}),
        ...(t.where !== undefined ? { where: t.where } : {}),
        ...(t.path !== undefined ? { path: t.path } : {}),
        ...(t.registry !== undefined ? { registry: t.registry } : {}),
        ...(keep ? { locked: entry } : {}),
        ...(entry === undefined ? { typed: true } : {}),
      };
    });
  }
  const base = { platforms: platforms(), dir: options.dir };
  if (options.requests.length === 0) {
    if (!lock)
      throw new ClientError(
        'REQUEST_INVALID',
        // Said with the way on: a CI job run from another folder than the lock's found none there.
        `nothing to install: no names given and no ${options.lockfile}: name what to install (plugindex install NAME[@SPEC]), or give the lock with --lockfile FILE`,
      );
    return Object.entries(lock.plugins).map(([name, entry]) => ({
      ...base,
      ...fromFolder(name),
      name,
      spec: entry.requested,
      registry: entry.registry,
      ...(entry.manifest_url !== undefined ? { manifestUrl: entry.manifest_url } : {}),
      ...(options.upgrade ? {} : { locked: entry }),
    }));
  }
  return options.requests.map((given) => {
    const request = typeof given === 'string' ? given : given.request;
    const from = typeof given === 'string' ? undefined : given.registry;
    const { name, spec } = parseRequest(request);
    const entry = locked(name);
    const explicit = request.includes('@');
    // The lock decides unless asked to upgrade, or asked for another spec or source than it was made for.
    const keep =
      entry &&
      !options.upgrade &&
      (!explicit || entry.requested === spec) &&
      (from === undefined || from === entry.registry);
    const registry = from ?? entry?.registry;
    return {
      ...base,
      ...fromFolder(name),
      name,
      spec: explicit ? spec : (entry?.requested ?? spec),
      ...(keep ? { locked: entry } : {}),
      ...(registry !== undefined ? { registry } : {}),
      ...(entry?.manifest_url !== undefined && from === undefined ? { manifestUrl: entry.manifest_url } : {}),
      ...(entry === undefined && !updating.has(name) ? { typed: true } : {}),
    };
  });
}

/**
 * True when the lock found the entry's manifest at `path` under its source. By the end of the URL: the
 * source's own folder is another in each checkout for a `file` provider (lockfile.ts `locationMoved`).
 */
function foundAt(entry: LockedPlugin, path: string): boolean {
  // A lock written before locations were says nothing of where: its word stands, as before.
  return entry.manifest_url === undefined || entry.manifest_url.endsWith(`/${path}`);
}

/** The installed file's path in its folder: `<name>/<version folder>/<os-arch>/<file>`. */
function filePath(name: string, version: string, platform: string, fileName: string): string {
  // The version's folder as the registry names it (build metadata dropped): a `+` has no place in a path.
  return `${name}/${versionFolder(version)}/${platform}/${fileName}`;
}

/**
 * The fast path's items: each target's locked version already in its folder as the lock has it (the record,
 * the files at their paths and the signed manifest beside them), as unchanged items; undefined when any
 * target's is not, and the install is planned in full.
 */
async function alreadyInstalled(
  ctx: ClientContext,
  targets: readonly Target[],
  options: InstallOptions,
  seen: OnDisk,
  lock: Lockfile | undefined,
): Promise<InstalledItem[] | undefined> {
  const items: InstalledItem[] = [];
  const revoked = new Map<string, Promise<readonly string[]>>();
  const pins = new Map<string, Promise<PinnedKeys | undefined>>();
  for (const target of targets) {
    const tree = ctx.tree(target.dir ?? options.dir);
    const entry = target.locked as LockedPlugin;
    const record = intactRecord(await seen.read(tree), target.name, entry.version, entry.manifest_sha256);
    // The publisher too: a policy that lists publishers judges the one installed.json recorded
    // (installedPolicyAllows), so it must be the one the lock names, and one checked against a signature
    // when it was placed: a frozen install without such a policy recorded the lock's word, which a lock
    // edited to claim an allowed publisher made, and the plan below asks the source instead.
    if (!record || record.publisher !== entry.publisher) return undefined;
    if (options.policy?.publishers !== undefined && record.publisher_verified !== true) return undefined;
    if (await placedUnderRevokedKey(ctx, options, record, revoked)) return undefined;
    if (await placedUnderUnlinkedKey(ctx, options, record, lock, pins)) return undefined;
    const paths: Record<string, string> = {};
    const warnings: string[] = [];
    for (const platform of target.platforms) {
      const key = platformKey(platform);
      const artifact = own(record.artifacts, key);
      const lockedKey = lockedKeyFor(entry.artifacts, platform);
      const lockedArtifact = lockedKey === undefined ? undefined : own(entry.artifacts, lockedKey);
      if (!artifact || !lockedArtifact || artifact.sha256 !== lockedArtifact.sha256) return undefined;
      // A musl host's glibc build, from a lock without a musl key (an older client's, or a version with no
      // musl build): kept, as reading the registry on every install to learn which would cost every
      // Alpine install of a static build a round trip; said, with what reads it (ARCHITECTURE, Platforms).
      warnings.push(
        ...libcFallbackWarning(
          target.name,
          entry.version,
          platform,
          platformOfKey(lockedKey as string),
          options.lockfile,
          true,
          lockfileFlag(options),
        ),
      );
      const fileName = installedFileName(target.name, target.output, key, lockedArtifact.url);
      if (artifact.path !== filePath(target.name, entry.version, key, fileName)) return undefined;
      const actual = await seen.hash(tree, artifact.path, artifact.size, true);
      if (actual?.sha256 !== artifact.sha256 || actual.size !== artifact.size) return undefined;
      paths[key] = tree.path(artifact.path);
    }
    if (!(await manifestInPlace(tree, target.name, entry, seen))) return undefined;
    const first = platformKey(target.platforms[0] as Platform);
    items.push({
      name: target.name,
      version: entry.version,
      registry: entry.registry,
      platform: first,
      path: paths[first] as string,
      paths,
      permissions: entry.permissions ?? [],
      warnings,
      advisories: [],
      unchanged: true,
    });
  }
  return items;
}

/**
 * True when installed.json records `record` as placed under a key its configured registry's trust state
 * marks retired as compromised: `plugindex verify` would refuse its signature (KEY_REVOKED), and the plan
 * places the current key's over it, unasked. The trust state is a file on disk, read once per registry
 * (`revoked`), with nothing fetched. A plugin set's registry is left to its plan: its trust state is known
 * only once its source opens (the key the set pins parsed, a session opened), which the fast path avoids.
 */
async function placedUnderRevokedKey(
  ctx: ClientContext,
  options: InstallOptions,
  record: InstalledVersion,
  revoked: Map<string, Promise<readonly string[]>>,
): Promise<boolean> {
  if (options.sources !== undefined) return false;
  let keys = revoked.get(record.registry);
  if (!keys) {
    keys = (async () =>
      (await ctx.registryEntry(record.registry)) ? revokedKeys(await ctx.trust(record.registry)) : [])();
    revoked.set(record.registry, keys);
  }
  return (await keys).includes(record.registry_key);
}

/** The key a source is pinned to and those it succeeds through rotations followed. */
type PinnedKeys = { readonly fingerprint: string; readonly previousKeys: readonly string[] };

/**
 * True when installed.json records `record` as placed under a key that is neither the one its source is
 * pinned to nor one the pin was rotated from: `verify` refuses it (SNAPSHOT_WRONG_KEY), and the plan
 * places it again with the signature by the pinned key (`placedKeyProblem`). A set's key file, or a
 * registry's pin, replaced by another key and the lock made again under it (`update`) left such a
 * version in place, install and `diff` saying nothing would change. A configured registry's pin is read
 * from its trust state on disk; a plugin set's source's (`SourceLookup.pins`, its key parsed) only when
 * the record's key is not the lock's, so that a tree up to date still loads no signature code. Not for a
 * frozen install, whose plan places no signature for this: it judges the lock's key alone, against the set's key file.
 */
async function placedUnderUnlinkedKey(
  ctx: ClientContext,
  options: InstallOptions,
  record: InstalledVersion,
  lock: Lockfile | undefined,
  pins: Map<string, Promise<PinnedKeys | undefined>>,
): Promise<boolean> {
  const lookup = options.sources;
  const given = lookup?.has?.(record.registry) === true;
  const lockKey = own(lock?.registries ?? {}, record.registry)?.key_fingerprint;
  if (options.frozen) {
    // The lock's key alone, as its plan judges it (checkFrozenKey): a set's key file replaced since the lock
    // was made is refused there, LOCK_MISMATCH naming `update -c`, where a tree in place was up to date.
    if (!given || lockKey === undefined || lookup?.keyFile?.(record.registry) === lockKey) return false;
    const pinned = await lookup?.pins?.(record.registry);
    return pinned !== undefined && !keyLinked(lockKey, pinned.fingerprint, pinned.previousKeys);
  }
  // The lock's key, the record's and the key file's one: up to date with nothing parsed nor read. A key
  // file replaced with nothing else changed left the lock's and the record's one, and was called up to
  // date where verify -c refused it (SNAPSHOT_WRONG_KEY): it is judged by the pins below.
  if (given && lockKey === record.registry_key && lookup?.keyFile?.(record.registry) === lockKey)
    return false;
  let keys = pins.get(record.registry);
  if (!keys) {
    keys = given
      ? (lookup?.pins?.(record.registry) ?? Promise.resolve(undefined))
      : (async () => {
          if (!(await ctx.registryEntry(record.registry))) return undefined;
          const trust = await ctx.trust(record.registry);
          return trust
            ? {
                fingerprint: trust.fingerprint,
                previousKeys: (trust.chain ?? []).map((link) => link.fingerprint),
              }
            : undefined;
        })();
    pins.set(record.registry, keys);
  }
  const pinned = await keys;
  if (pinned === undefined) return false;
  // A set's lock made under a key the pin does not lead from is made again (checkLockedSource), as an
  // install of a set whose file changed locks what changed: the tree is no tree up to date either.
  if (given && lockKey !== undefined && !keyLinked(lockKey, pinned.fingerprint, pinned.previousKeys))
    return true;
  return !keyLinked(record.registry_key, pinned.fingerprint, pinned.previousKeys);
}

/**
 * Why a version installed.json records (`record`) is to be placed again with the plan's signed manifest, or
 * undefined: it was placed under a key its source's trust state marks retired as compromised (`verify`:
 * KEY_REVOKED), or, for a plan read from its source, under a key that is neither the one pinned for it nor
 * one the pin was rotated from (`verify`: SNAPSHOT_WRONG_KEY). One rule for install (`installedAsPlanned`)
 * and `diff -c` (plugin-set.ts compareInstalled), so that the two cannot disagree. A frozen plan without the
 * manifest at hand has none to place.
 */
export function placedKeyProblem(
  plan: Planned,
  record: { readonly registry: string; readonly registry_key: string },
): string | undefined {
  if (plan.manifest === undefined) return undefined;
  if (plan.revoked.includes(record.registry_key))
    return `placed under key ${record.registry_key}, which ${plan.registry} retired as compromised`;
  // Another source's record (the same manifest from a registry under another name) is judged by its own.
  if (
    plan.previousKeys !== undefined &&
    record.registry === plan.registry &&
    !keyLinked(record.registry_key, plan.fingerprint, plan.previousKeys)
  )
    return `placed under key ${record.registry_key}, which ${plan.registry} is no longer pinned to (it is pinned to ${plan.fingerprint}, which no rotation followed leads to from that key)`;
  return undefined;
}

/** The keys a trust state marks retired as compromised (key-chain.ts revokedLink). */
function revokedKeys(trust: TrustRecord | undefined): string[] {
  return (trust?.chain ?? []).filter((link) => link.compromised === true).map((link) => link.fingerprint);
}

/** The source a target is read from: one the install was given by name, or the configured registries. */
async function findSource(
  ctx: ClientContext,
  target: Target,
  options: InstallOptions,
  spec: string,
  fits: (version: VersionRecord) => boolean,
): Promise<{ source: Source; document: Awaited<ReturnType<Source['document']>> & object }> {
  const registry = options.registry ?? target.registry;
  let given = registry === undefined ? undefined : await options.sources?.get(registry);
  // Not a configured registry, but installed from by URL before: read it where the lock found it.
  if (!given && registry !== undefined && target.manifestUrl && !(await ctx.registryEntry(registry)))
    given = await ctx.manifestSource(registry, target.manifestUrl);
  if (given) {
    const document = await given.document(target.name, spec, fits);
    if (!document)
      throw new ClientError('PLUGIN_NOT_FOUND', `no plugin named ${target.name} in ${given.name}`);
    return { source: given, document };
  }
  const { session, document } = await ctx.find(target.name, registry, target.typed === true);
  return { source: registrySource(session), document };
}

async function planTarget(
  ctx: ClientContext,
  target: Target,
  options: InstallOptions,
  lock: Lockfile,
  seen: OnDisk,
): Promise<Planned> {
  const [first] = target.platforms as [Platform, ...Platform[]];
  const apiVersion = options.apiVersion ?? 'v1';
  // The API only, as resolvePlugin filters: a version without this host's artifact is no reason to read an
  // older one (the request would resolve to another version here than on every other host, and a lock
  // would hold whichever a host ran first); resolvePlugin then says which platforms it has.
  const fits = (v: VersionRecord) => apiVersionAllows(v, apiVersion);
  const { source, document } = await findSource(
    ctx,
    target,
    options,
    target.locked?.version ?? target.spec,
    fits,
  );
  checkLockedSource(lock, source, options, target.locked !== undefined);
  checkLockedVersionListed(lock, source, document, target.name, options.lockfile);
  const denyYanked = options.denyYanked === true;
  const folder = ctx.tree(target.dir ?? options.dir).dir;
  const resolution = target.locked
    ? resolveLocked(document, target.locked.version, first, {
        denyYanked,
        lockfileFlag: lockfileFlag(options),
      })
    : updatingFor(
        target,
        folder,
        first,
        () => resolvePlugin(document, { spec: target.spec, platform: first, apiVersion }),
        lockfileFlag(options),
      );
  const version = resolution.version;
  // The lock's version is held to its digests however it was reached: decided by the lock, or resolved
  // again (an update, another spec) to the very version the lock holds from this source. A registry never
  // publishes a version twice, so other digests for it are a registry (or a lock) changed under it, which
  // Cargo refuses as a changed checksum; only another version is the lock's to take.
  const previous = own(lock.plugins, target.name);
  const held =
    target.locked ??
    (previous?.registry === source.name &&
    versionIdentity(previous.version) === versionIdentity(version.version)
      ? previous
      : undefined);
  // A lock an older client wrote pins no musl build (it never saw one). Where the lock may not change
  // (--locked, --frozen) a musl host installs the glibc build it pins, said, rather than a build the lock
  // does not pin; elsewhere the install adds the version's musl pins to the lock, as any lock change.
  const keepLock = held !== undefined && (options.locked === true || options.frozen === true);
  const unpinned = (platform: Platform): boolean =>
    keepLock &&
    platform.libc !== undefined &&
    !Object.hasOwn((held as LockedPlugin).artifacts, platformKey(platform));
  const warnings = new Set(resolution.warnings);
  const artifacts: [string, ArtifactRecord][] = [];
  for (const platform of target.platforms) {
    const pinned = unpinned(platform) ? { os: platform.os, arch: platform.arch } : platform;
    const chosen =
      platform === first && pinned === platform
        ? resolution
        : updatingFor(
            target,
            folder,
            platform,
            () => resolveLocked(document, version.version, pinned),
            lockfileFlag(options),
          );
    // The musl platform an update added beside the folder's glibc build (`platformsToUpdate`) was added to
    // reach the version's musl build; with none, it is the glibc build again: placed, it was a second copy
    // of the build the folder holds, recorded as the host's own, and kept by every update after. The
    // folder's glibc build, updated, serves the host as it did.
    if (target.updatingAdded === platformKey(platform) && chosen.artifact.libc !== platform.libc) {
      // Resolved for it first (the host's), its fallback warning said the glibc build goes there.
      for (const warning of libcFallbackWarning(target.name, version.version, platform, chosen.artifact))
        warnings.delete(warning);
      warnings.add(
        `${target.name}@${version.version} has no ${platform.libc} build for ${platform.os}/${platform.arch}: its glibc build in ${platformKey({ os: platform.os, arch: platform.arch })}/ is updated, as the folder holds it, which starts here only if it is statically linked`,
      );
      continue;
    }
    for (const warning of chosen.warnings) warnings.add(warning);
    if (pinned !== platform)
      for (const warning of libcFallbackWarning(
        target.name,
        version.version,
        platform,
        chosen.artifact,
        options.lockfile,
        false,
        lockfileFlag(options),
      ))
        warnings.add(warning);
    artifacts.push([platformKey(platform), chosen.artifact]);
  }
  const locked = lockedPluginFrom(source.name, target.spec, version, (a) =>
    source.artifactUrl(target.name, version, a),
  );
  const entry = underLockedBase(
    {
      ...locked,
      artifacts: keepLock ? withoutNewLibcBuilds(locked.artifacts, held as LockedPlugin) : locked.artifacts,
      manifest_url: source.manifestUrl(target.name, version),
    },
    target.name,
    lock,
    source,
  );
  if (held) checkAgainstLock(target.name, held, entry, options.lockfile);
  // After the trust checks (a lock the registry contradicts is the first thing to say), before the manifest
  // is fetched: a version the install refuses costs no more requests.
  const vulnerable = checkAdvisories(document, version.version, {
    allowVulnerable: options.allowVulnerable === true,
  });
  for (const warning of vulnerable.warnings) warnings.add(warning);
  const manifest = await source.manifest(target.name, version);
  return {
    name: target.name,
    version: version.version,
    registry: source.name,
    dir: target.dir,
    fingerprint: source.fingerprint,
    revoked: revokedKeys(source.kind === 'registry' ? source.trust : undefined),
    previousKeys: source.previousKeys ?? [],
    endpoint: source.endpoint,
    files: artifacts.map(([platform, artifact]) => {
      const url = artifact.oci ? undefined : source.artifactUrl(target.name, version, artifact);
      const fileName = installedFileName(target.name, target.output, platform, url);
      return {
        platform,
        sha256: artifact.sha256,
        size: artifact.size_bytes,
        ...(url !== undefined ? { url } : {}),
        ...(artifact.oci ? { oci: artifact.oci } : {}),
        path: filePath(target.name, version.version, platform, fileName),
      };
    }),
    manifest,
    entry,
    yanked: version.yanked,
    deprecated: deprecationOf(document, version) !== undefined,
    ...(options.upgrade === true
      ? await downgradeOf(seen, ctx.tree(target.dir ?? options.dir), target.name, version.version, document)
      : {}),
    warnings: [...warnings],
    advisories: vulnerable.advisories,
    ...(document.look_alikes?.length ? { look_alikes: document.look_alikes } : {}),
    checked: true,
    // From the source's signed plugin document (a folder's names the key that signed the manifest).
    publisherVerified: true,
    ...(await permissionsAsked(ctx.tree(target.dir ?? options.dir), seen, target.name, previous, entry)),
    generation: source.generation,
    ...(version.resources ? { resources: version.resources } : {}),
  };
}

/**
 * The URL a registry's locations in a lock entry are under (its manifest at `<base>/plugins/<name>/<version>/
 * manifest.json`, its hosted artifacts beside it): the one the lock's writer configured the registry at.
 * Undefined for an entry that records no such location (a lock written before locations, a folder's).
 */
function registryBase(entry: LockedPlugin, name: string): string | undefined {
  const key = `/${manifestKey(name, entry.version)}`;
  const at = entry.manifest_url;
  return at?.endsWith(key) && at.length > key.length ? at.slice(0, -key.length) : undefined;
}

/** `url` moved from under `from` to under `to`; as it is when it is not under `from`. */
function rebased(url: string, from: string, to: string): string {
  return url.startsWith(`${from}/`) ? `${to}${url.slice(from.length)}` : url;
}

/**
 * A registry's lock entry with its locations under the URL the lock already records that registry at, not
 * the one this client configures it at: teammates reaching one registry at two URLs (the origin, a mirror,
 * an internal proxy; one key) rewrote each other's locations on every fresh install, so each commit
 * flipped the lock back. The same registry is the lock's: the entry's registry name, locked with this
 * source's key or one it rotated from (a key this client does not link to the lock's is another trust
 * root, and the entry takes this client's URL with it). The base is the plugin's own entry's, else the
 * first other entry's of that registry, so one lock keeps one URL per registry. A frozen install fetches
 * what lies under it through its own configured URL and mirrors (planFrozen): the digests, not the URL,
 * are what is trusted.
 */
function underLockedBase(entry: LockedPlugin, name: string, lock: Lockfile, source: Source): LockedPlugin {
  const locked = own(lock.registries, source.name);
  if (
    source.kind !== 'registry' ||
    !locked ||
    !keyLinked(locked.key_fingerprint, source.fingerprint, source.previousKeys)
  )
    return entry;
  const ownBase = registryBase(entry, name);
  const previous = own(lock.plugins, name);
  const candidates = [
    ...(previous?.registry === source.name ? [[name, previous] as const] : []),
    ...Object.entries(lock.plugins)
      .filter(([other, p]) => other !== name && p.registry === source.name)
      .sort(([a], [b]) => compareStrings(a, b)),
  ];
  const base = candidates.map(([n, p]) => registryBase(p, n)).find((b) => b !== undefined);
  if (ownBase === undefined || base === undefined || base === ownBase) return entry;
  const artifacts: Record<string, LockedArtifact> = {};
  for (const [platform, artifact] of Object.entries(entry.artifacts))
    artifacts[platform] =
      artifact.url === undefined ? artifact : { ...artifact, url: rebased(artifact.url, ownBase, base) };
  return {
    ...entry,
    manifest_url: rebased(entry.manifest_url as string, ownBase, base),
    artifacts,
  };
}

/**
 * A `file:` location a lock recorded for a folder source, found under that source's folder as it is here:
 * the lock was made in another checkout of the repository (or the folder moved), and the same file is at
 * the same place under the folder here. The folder it was under is the recorded manifest location less the
 * manifest's path under its source (`lockedFolder`: the set's `path`, else the folder's own layout); a
 * location under it moves with it. Without one (a lock written before locations were, or a manifest found
 * elsewhere), a location holding the folder's layout (`<plugin>/<version>/...`) is found by that. Any other
 * location is as recorded. The bytes are checked against the lock's digest either way.
 */
function underFolder(
  url: string,
  base: string | undefined,
  name: string,
  version: string,
  recordedFolder: string | undefined,
): string {
  if (base === undefined || !url.startsWith('file:') || !base.startsWith('file:')) return url;
  const here = base.replace(/\/+$/, '');
  if (url.startsWith(`${here}/`)) return url;
  // By the folder the lock found the manifest under: the layout's pattern, looked for in the location,
  // took `team/disk-tool/1.0.0/` as the folder's `disk-tool/1.0.0/`, and a manifest a set names outside the
  // layout (`disk-tool/manifest.json`) was read in the first checkout, or nowhere.
  if (recordedFolder !== undefined && url.startsWith(`${recordedFolder}/`))
    return `${here}${url.slice(recordedFolder.length)}`;
  const at = url.lastIndexOf(`/${name}/${versionFolder(version)}/`);
  return at < 0 ? url : `${here}${url.slice(at)}`;
}

/**
 * The folder a lock's `file:` manifest location was under when it was locked: the location less the
 * manifest's path under its source (a set's `path`, else the folder layout's `<plugin>/<version>/manifest.json`),
 * or undefined when it does not end so.
 */
function lockedFolder(
  manifestUrl: string | undefined,
  name: string,
  version: string,
  path: string | undefined,
): string | undefined {
  if (manifestUrl === undefined || !manifestUrl.startsWith('file:')) return undefined;
  const under = path ?? `${name}/${versionFolder(version)}/manifest.json`;
  return manifestUrl.endsWith(`/${under}`) ? manifestUrl.slice(0, -under.length - 1) : undefined;
}

/**
 * A frozen target: the lock's entry as it is, no source asked. The manifest is placed when the cache, or
 * where it was found, holds the bytes the lock names (a registry's: where the registry publishes it, and
 * signed by the key this client keeps for the registry); the artifacts come from the cache or from where the
 * lock recorded them (a folder source's `file:` locations found under its folder here, `underFolder`),
 * checked against the lock's digests and the manifest's.
 *
 * No plugin document is read but a registry's for `--deny-yanked` (`checkFrozenYank`; its `look_alikes` are
 * then told, as by any install that reads one) and for the publisher
 * a policy that lists publishers judges, so nothing else that happened since the lock is known here: a
 * version deprecated since, or an advisory against it, is neither warned of nor refused (and
 * `--allow-vulnerable` changes nothing). `plugindex audit` checks a frozen tree.
 */
async function planFrozen(
  ctx: ClientContext,
  target: Target,
  options: InstallOptions,
  lock: Lockfile,
): Promise<Planned> {
  const recorded = target.locked as LockedPlugin;
  const registry = own(lock.registries, recorded.registry);
  await checkFrozenKey(ctx, options, recorded.registry, registry?.key_fingerprint);
  const given = await options.sources?.get(recorded.registry);
  const folderBase = given?.kind === 'folder' ? given.endpoint.bases[0] : undefined;
  const recordedFolder = lockedFolder(recorded.manifest_url, target.name, recorded.version, target.path);
  const relocate = (url: string) =>
    underFolder(url, folderBase, target.name, recorded.version, recordedFolder);
  const entry: LockedPlugin =
    recorded.manifest_url === undefined
      ? recorded
      : { ...recorded, manifest_url: relocate(recorded.manifest_url) };
  const fallbacks: string[] = [];
  const files = target.platforms.map((platform): PlannedFile => {
    const key = platformKey(platform);
    // The folder is the host platform's; the artifact the lock's for it, a universal build's for a Mac,
    // and for a musl host the glibc build where the lock has no musl one (an older client's lock).
    const lockedKey = lockedKeyFor(entry.artifacts, platform);
    const artifact = lockedKey === undefined ? undefined : own(entry.artifacts, lockedKey);
    if (lockedKey !== undefined)
      fallbacks.push(
        ...libcFallbackWarning(
          target.name,
          entry.version,
          platform,
          platformOfKey(lockedKey),
          options.lockfile,
          false,
          lockfileFlag(options),
        ),
      );
    if (!artifact)
      throw new ClientError(
        'NO_ARTIFACT_FOR_PLATFORM',
        `${options.lockfile}: ${target.name}@${entry.version} locks no artifact for ${key} (it locks ${Object.keys(entry.artifacts).join(', ') || 'none'})`,
      );
    const fileName = installedFileName(target.name, target.output, key, artifact.url);
    return {
      platform: key,
      sha256: artifact.sha256,
      size: artifact.size,
      ...(artifact.url !== undefined ? { url: relocate(artifact.url) } : {}),
      ...(artifact.oci ? { oci: artifact.oci } : {}),
      path: filePath(target.name, entry.version, key, fileName),
    };
  });
  // A registry's artifacts under the URL the lock's writer reached it at (a teammate's mirror or proxy, which
  // this machine may not reach) are fetched under the URL this client configures it at, and its mirrors:
  // the same registry by the key checked above, and the same bytes by the lock's digests.
  const configured =
    given === undefined
      ? await ctx.endpoint(recorded.registry)
      : given.kind === 'registry'
        ? given.endpoint
        : undefined;
  const lockedBase = registryBase(recorded, target.name);
  const here = configured?.bases[0]?.replace(/\/+$/, '');
  const placed =
    lockedBase === undefined || here === undefined
      ? files
      : files.map((f) => (f.url === undefined ? f : { ...f, url: rebased(f.url, lockedBase, here) }));
  const endpoint = await endpointFor(ctx, options, entry.registry, placed, entry.manifest_url);
  const trust = await registryTrust(ctx, options, target.name, entry, given);
  const folder = await folderTrust(ctx, entry, given);
  const warnings: string[] = [...fallbacks];
  // A source this machine knows nothing of has no key here to check the lock by: a pull request adding
  // such an entry (its own manifest, files and publisher) would be placed on its own digests, unsigned by
  // anyone the user trusts. Refused before any request unless the user takes the lock's word explicitly.
  if (!trust && !folder && given === undefined) {
    if (!options.trustLock) throw unconfiguredSource(target.name, entry, registry, options);
    warnings.push(
      `${target.name}@${entry.version}: installed on ${options.lockfile}'s digests alone (--trust-lock): source ${entry.registry} is not configured here, so no key this machine trusts checked its signature`,
    );
  }
  const published = trust ? manifestKey(target.name, entry.version) : undefined;
  // A lock made under a key retired as compromised: its manifest's signature is the registry's by the key
  // it holds now, read from it, never the one cached under the lock's key (whoever took that key may have
  // put it there, or may serve it).
  const current =
    trust && revokedLink(trust.chain, registry?.key_fingerprint) ? trust.fingerprint : undefined;
  // The key this name holds, retired as stolen by a rotation another name of the registry followed and
  // this one never did (a plugin set pinning the old key): no key after the theft is known here to read a
  // signature by, and the cached one (or one served) by that key counts for nothing.
  // Read as of each URL this install may reach the registry at too (`here`, then its mirrors, one of
  // which may serve it): a mark kept as of a mirror's URL is read only so (`ClientContext.revokedKeys`).
  const reachedAt = configured?.bases.map((base) => base.replace(/\/+$/, ''));
  const held = trust
    ? (await ctx.revokedKeys(trust, reachedAt)).find((link) => link.fingerprint === trust.fingerprint)
    : undefined;
  if (trust && held)
    throw keyRevokedError(
      held,
      entry.registry,
      `${options.lockfile}: plugins/${target.name}@${entry.version}, checked by the key this client holds for ${entry.registry},`,
      'forkedFrom' in held
        ? `${pinAgainRemedy({ registry: entry.registry })}, then install online without --frozen, which writes the lock under it`
        : `another name of the registry followed that rotation and this one did not: install online without --frozen (\`plugindex install -c FILE\` for a plugin set's, after \`plugindex registry update\` for a configured one), which follows it and writes the lock under the current key`,
    );
  // Before the manifest is fetched: a version the install refuses costs no more requests. The document read
  // for it says the plugin's look-alikes too, told as any install that reads one tells them.
  const judged =
    options.denyYanked && trust ? await checkFrozenYank(ctx, target, entry, given, lock, options) : undefined;
  const fetched = await frozenManifest(
    ctx,
    entry,
    registry?.key_fingerprint,
    endpoint,
    published,
    current,
  ).catch((error: Error) => {
    // From a registry, only its being unreachable (or offline) is an outage to go on through; a manifest it
    // does not serve, or serves as other bytes than the lock pins, is the lock contradicting the registry.
    if (trust && !(error instanceof ClientError && OUTAGES.has(error.code)))
      throw new ClientError(
        'LOCK_MISMATCH',
        `${options.lockfile}: plugins/${target.name}@${entry.version} pins manifest sha256 ${entry.manifest_sha256}, which registry ${entry.registry} does not publish for it (${error.message})`,
        { cause: error },
      );
    // A policy is judged on what the manifest asks for: without it, nothing would be but the lock's word.
    if (options.policy)
      throw new ClientError(
        'POLICY_DENIED',
        `${options.lockfile}: plugins/${target.name}@${entry.version}: the policy cannot be judged without the manifest it pins (sha256 ${entry.manifest_sha256}; ${error.message})`,
      );
    // A folder's manifest is where the lock says (not where a registry publishes it), so no failure to
    // have it is an outage to go on through: a lock pointing it at a host that does not answer would
    // place the files on the lock's digests alone, which the folder's key never vouched for.
    if (folder) throw folderRefusal(target.name, entry, folder, error, options.lockfile);
    warnings.push(
      `${target.name}@${entry.version}: its signed manifest was not placed beside it (${error.message})`,
    );
    return undefined;
  });
  let checked = fetched;
  let signedBy: string | undefined;
  if (checked) {
    const check = async (read: FrozenManifest) => {
      signedBy = await checkFrozenManifest(
        ctx,
        target.name,
        entry,
        read.manifest,
        { trust, folder, registry, given, lock },
        options,
      );
    };
    try {
      await check(checked);
    } catch (error) {
      const refused =
        (error instanceof TrustError && error.code === 'DOCUMENT_MISMATCH') ||
        (error instanceof ClientError && error.code === 'KEY_REVOKED');
      if (!(checked.again && refused)) throw error;
      // Read afresh or not at all: the refusal stands when the registry cannot be asked again.
      const afresh = await checked.again().catch((again: unknown) => {
        if (again instanceof ClientError || again instanceof TrustError) return undefined;
        throw again;
      });
      if (!afresh) throw error;
      checked = afresh;
      await check(checked);
    }
    await checked.keep();
  }
  const manifest = checked?.manifest;
  return {
    name: target.name,
    version: entry.version,
    registry: entry.registry,
    dir: target.dir,
    fingerprint: registry?.key_fingerprint ?? '',
    // The lock keeps the key it was made with; installed.json, the key that signed what is placed.
    ...(manifest && signedBy !== undefined ? { signedBy } : {}),
    revoked: revokedKeys(trust),
    endpoint,
    files: placed,
    ...(manifest ? { manifest } : {}),
    entry,
    yanked: false,
    deprecated: false,
    warnings,
    advisories: [],
    ...(judged?.look_alikes?.length ? { look_alikes: judged.look_alikes } : {}),
    checked: false,
    // The lock's publisher is checked only against a folder's signing key, and against a registry's signed
    // plugin document under a policy that lists publishers (checkFrozenManifest); else it is the lock's word.
    publisherVerified:
      fetched !== undefined &&
      (folder !== undefined || (trust !== undefined && options.policy?.publishers !== undefined)),
    newPermissions: [],
    ...(entry.resources ? { resources: entry.resources } : {}),
    generation: registry?.min_generation ?? 0,
  };
}

/**
 * Whether this machine keeps a key to check a lock entry's source by, the set's sources aside: a configured
 * registry (its pinned key), or a manifest URL installed from with `--key` before (the key kept as its pin,
 * the trust state `folderTrust` opens it from). Read as a registry's is, without parsing the key: a tree
 * already up to date is judged by this alone, and parsing loads openpgp.js (70-80 ms a process) to check
 * nothing by; an install that does check by the key parses it where it does (`folderTrust`, and
 * `checkRegistrySignature` or the session for a registry), refusing a damaged pin there.
 * @throws what `registryTrust` throws (REGISTRY_NOT_PINNED: configured, but no key pinned); ClientError
 *   TRUST_STATE_INVALID and TrustError SNAPSHOT_MALFORMED for a pin's state that does not read.
 */
async function sourceKnown(
  ctx: ClientContext,
  options: InstallOptions,
  name: string,
  entry: LockedPlugin,
): Promise<boolean> {
  if (await registryTrust(ctx, options, name, entry, undefined)) return true;
  // No registry is configured under the name (else `registryTrust` answered): the pin a manifest URL's
  // install kept under it, as `ClientContext.manifestSource` finds it (its key and state both kept).
  return entry.manifest_url !== undefined && (await ctx.trust(entry.registry)) !== undefined;
}

/**
 * Refuses the first target locked from a source neither given (a plugin set's provider, a manifest URL's
 * `--key`) nor configured here, opening none of them (`SourceLookup.has` where the lookup answers it: a
 * given source opened reaches its credentials and CA bundle, which a tree already in place never needed).
 * @throws ClientError SOURCE_NOT_CONFIGURED (`unconfiguredSource`), REGISTRY_NOT_PINNED.
 */
async function refuseUnconfiguredSources(
  ctx: ClientContext,
  options: InstallOptions,
  targets: readonly Target[],
  lock: Lockfile,
): Promise<void> {
  for (const target of targets) {
    const recorded = target.locked as LockedPlugin;
    const lookup = options.sources;
    const given = lookup?.has
      ? lookup.has(recorded.registry)
      : (await lookup?.get(recorded.registry)) !== undefined;
    if (!given && !(await sourceKnown(ctx, options, target.name, recorded)))
      throw unconfiguredSource(target.name, recorded, own(lock.registries, recorded.registry), options);
  }
}

/**
 * Opens the pin each target is checked by: a manifest URL's (`folderTrust`: its key parsed, as its plan
 * does) and a configured registry's (each key `checkRegistrySignature` may read the manifest's signature
 * by: the one pinned, and those the chain kept from the lock's key on), so a damaged one (a key that does
 * not read, or not the one its state records) is refused before any target fetches anything, as all else
 * wrong with the lock is: `sourceKnown` asks only whether the pin is kept (parsing loads openpgp.js, for a
 * tree up to date to check nothing by), and a key is otherwise first parsed once the manifest and its
 * signature were fetched (a registry's), or when the target's turn came among targets planned side by side
 * (a manifest URL's), the others' requests under way. Each key is parsed again where its target is checked
 * (a few ms; the install fetches anyway).
 * @throws what `folderTrust` and `readPinnedKey` throw (KeyError KEY_INVALID, TrustError SNAPSHOT_WRONG_KEY,
 *   ClientError PINNED_KEY_UNTRUSTED, TRUST_STATE_INVALID), and ClientError REGISTRY_NOT_PINNED.
 */
async function openPins(
  ctx: ClientContext,
  options: InstallOptions,
  targets: readonly Target[],
  lock: Lockfile,
): Promise<void> {
  for (const target of targets) {
    const recorded = target.locked as LockedPlugin;
    // A given source (a set's provider, a manifest URL's `--key`) is no pin kept here: its plan opens it.
    const lookup = options.sources;
    const given = lookup?.has
      ? lookup.has(recorded.registry)
      : (await lookup?.get(recorded.registry)) !== undefined;
    if (given) continue;
    if (recorded.manifest_url !== undefined) await folderTrust(ctx, recorded, undefined);
    const trust = await registryTrust(ctx, options, target.name, recorded, undefined);
    if (!trust) continue;
    const locked = own(lock.registries, recorded.registry)?.key_fingerprint;
    for (const link of [...linksFrom(trust, locked), trust])
      await readPinnedKey({ ...trust, ...link }, recorded.registry);
  }
}

/** The keys a chain kept from `locked` on (the key a lock was made with), oldest first; none when it kept no such key. */
function linksFrom(trust: TrustRecord, locked: string | undefined): NonNullable<TrustRecord['chain']> {
  const chain = trust.chain ?? [];
  const from = chain.findIndex((link) => link.fingerprint === locked);
  return from < 0 ? [] : chain.slice(from);
}

/**
 * Why a frozen install refuses an entry of a source this machine does not configure, and how to configure
 * it: a registry by its key (the lock's fingerprint is the lock's word, not a key to trust), a manifest URL
 * by installing it once with the publisher's key, a plugin set's folder through its set file. Only what
 * works in this invocation is offered: a plugin set's install (`owner`, `install -c`) takes no `--trust-lock`
 * (its sources are the set's, refused as a usage error), and is already the install through its set; there
 * the way is the configured registry its provider names, or a `url` and `key` the set pins it by.
 */
function unconfiguredSource(
  name: string,
  entry: LockedPlugin,
  registry: LockedRegistry | undefined,
  options: Pick<InstallOptions, 'lockfile' | 'owner'>,
): ClientError {
  const base = registryBase(entry, name);
  const key = registry ? ` (locked with key ${registry.key_fingerprint})` : '';
  const add =
    base !== undefined
      ? [`\`plugindex registry add ${entry.registry} ${base} --key FILE\` with the registry's public key`]
      : [];
  const ways =
    options.owner !== undefined
      ? [...add, `give provider ${entry.registry} in ${options.owner} its url: and key: FILE`]
      : [
          ...add,
          ...(entry.manifest_url !== undefined
            ? [`\`plugindex install ${entry.manifest_url} --key FILE\` once with its publisher's key`]
            : []),
          `\`plugindex install -c FILE --frozen\` with the plugin set that names it`,
        ];
  const lockOnly =
    options.owner !== undefined ? '' : ", or pass --trust-lock to install on the lock's digests alone";
  return new ClientError(
    'SOURCE_NOT_CONFIGURED',
    `${options.lockfile}: plugins/${name}@${entry.version} is locked from source ${entry.registry}${key}, which this machine does not configure, so no key it trusts can check what the lock pins: configure it (${ways.join('; or ')})${lockOnly}`,
  );
}

/**
 * A frozen install's manifest (hashed to the lock's digest) against all a lock entry claims of it, before it
 * counts for anything or is kept in the cache.
 * @throws TrustError DOCUMENT_MISMATCH (the registry, or the folder's pinned key, did not sign it),
 *   DOCUMENT_MALFORMED (a folder's manifest that is not a valid one), ClientError LOCK_MISMATCH (another
 *   plugin, version, artifact, permissions, resources or publisher than the lock's), each naming the lock
 *   file, and what checkSignedPublisher throws.
 * @returns the key that signed it, for a registry's manifest.
 */
async function checkFrozenManifest(
  ctx: ClientContext,
  name: string,
  entry: LockedPlugin,
  manifest: VerifiedManifest,
  {
    trust,
    folder,
    registry,
    given,
    lock,
  }: {
    readonly trust: TrustRecord | undefined;
    readonly folder: FolderTrust | undefined;
    readonly registry: LockedRegistry | undefined;
    readonly given: Source | undefined;
    readonly lock: Lockfile;
  },
  options: InstallOptions,
): Promise<string | undefined> {
  // The source's signature first: nothing of the manifest counts until the key this client trusts for the
  // registry, or pins for the folder, vouches for it (a lock forged whole names its own manifest, files and
  // publisher).
  const signedBy = trust
    ? await checkRegistrySignature(name, entry, manifest, trust, registry, options)
    : undefined;
  if (folder) await checkFolderSignature(name, entry, manifest, folder, options.lockfile);
  // Policy or none: a lock that names another plugin or version than the manifest it pins, or other
  // bytes than it names, would place that manifest, and record the version and files, under the lock's word.
  checkLockedVersion(name, entry, manifest.manifest, options.lockfile);
  checkLockedArtifacts(name, entry, manifest.manifest, options.lockfile);
  if (options.policy) checkLockedAsks(name, entry, manifest.manifest, options.lockfile);
  // The registry signs a manifest's bytes, not who published them: the publisher is in its signed plugin
  // document, read (as a session reads it: from the cache when fresh or offline) only for a policy that
  // judges publishers, so that it judges the registry's word, not the lock's.
  if (trust && options.policy?.publishers !== undefined)
    await checkSignedPublisher(ctx, name, entry, given, lock, options);
  return signedBy;
}

/**
 * A frozen install's manifest: the cache's copy, else the one where the lock found it (and its `.asc`),
 * taken only if it hashes to the lock's digest. From a registry (`published`: its path there), it is read
 * where the registry publishes it, through its endpoint and mirrors, never at a location the lock names: a
 * lock is not the registry's word, and one that names a manifest the registry does not serve must not turn
 * a refusal into a warning. The signature is the one by the key the lock was made with (`keyFingerprint`),
 * kept and found under that key: another registry publishing the same manifest bytes signs them with its
 * own. `keep` puts what was fetched in the cache, once the caller has checked it; `again`, for one read from
 * a registry, reads the signature afresh, past every cache, for a caller whose keys refused the one read.
 * With `current` (the lock's key was retired as compromised; the key the client holds now), the cache's
 * signature under the lock's key is not read: the signature is read from the registry, and kept under
 * `current`, the key it must be by.
 * @throws when neither is at hand (ClientError OFFLINE_MISSING, FETCH_*; LOCK_MISMATCH for other bytes than
 *   the lock pins; LOCK_OUT_OF_SYNC for a lock that records no key or no location): a source without a
 *   registry's signature goes on without it, with a warning.
 */
async function frozenManifest(
  ctx: ClientContext,
  entry: LockedPlugin,
  keyFingerprint: string | undefined,
  endpoint: Endpoint,
  published: string | undefined,
  current?: string,
): Promise<FrozenManifest> {
  if (keyFingerprint === undefined)
    throw new ClientError('LOCK_OUT_OF_SYNC', `the lock records no key for ${entry.registry}`);
  const cached = await ctx.cache.document(entry.manifest_sha256);
  const kept =
    cached && current === undefined
      ? await ctx.cache.signature(entry.manifest_sha256, keyFingerprint)
      : undefined;
  const parsed = (bytes: Uint8Array, signature: string): VerifiedManifest => ({
    manifest: JSON.parse(new TextDecoder().decode(bytes)),
    bytes,
    signature,
  });
  if (cached && kept !== undefined) return { manifest: parsed(cached, kept), keep: async () => {} };
  if (published === undefined && entry.manifest_url === undefined)
    throw new ClientError('LOCK_OUT_OF_SYNC', 'the lock records no location for it');
  if (ctx.offline)
    throw new ClientError('OFFLINE_MISSING', 'it is not cached, and --offline forbids fetching it');
  const read = async (at: string, maxBytes: number) =>
    published === undefined
      ? collect((await ctx.fetcher.download(endpoint, { url: at, maxBytes })).body)
      : fetchBody(ctx.fetcher, endpoint, { path: at, maxBytes, version: entry.manifest_sha256 });
  const where = published ?? (entry.manifest_url as string);
  const bytes = await read(where, UNLISTED_LIMITS.manifest);
  if (sha256Hex(bytes) !== entry.manifest_sha256)
    throw new ClientError(
      'LOCK_MISMATCH',
      `${published === undefined ? where : `${endpoint.bases[0]}/${where}`} is not the manifest the lock records (sha256 ${entry.manifest_sha256})`,
    );
  const readSignature = async (at: (path: string, maxBytes: number) => Promise<Uint8Array>) =>
    new TextDecoder().decode(
      await at(`${where}.asc`, UNLISTED_LIMITS.signature).catch((error: unknown) => {
        // A manifest served without its signature is unsigned, whatever else is wrong with the lock.
        if (!(error instanceof ClientError && error.code === 'FETCH_NOT_FOUND')) throw error;
        throw new TrustError(
          'DOCUMENT_MISMATCH',
          `${where}.asc: the manifest the lock pins has no signature beside it (${error.message})`,
          { cause: error },
        );
      }),
    );
  const withSignature = (signature: string): FrozenManifest => ({
    manifest: parsed(bytes, signature),
    keep: async () => {
      await ctx.cache.putDocument(entry.manifest_sha256, bytes);
      await ctx.cache.putSignature(entry.manifest_sha256, current ?? keyFingerprint, signature);
    },
  });
  const found = withSignature(await readSignature(read));
  if (published === undefined) return found;
  // A registry signs every manifest again at a key rotation, and asked for by the manifest's digest, which
  // the rotation keeps, a cache may still hand back the retired key's signature: once refused, it is asked
  // for again past every cache (the fetcher's random `?v=` nonce, which the CDN's behavior for signatures
  // keys on: one read from the clock can be asked for first, and the retired key's signature kept under it).
  return {
    ...found,
    again: async () =>
      withSignature(
        await readSignature((path, maxBytes) =>
          fetchBody(ctx.fetcher, endpoint, {
            path,
            maxBytes,
            version: entry.manifest_sha256,
            pastCaches: true,
          }),
        ),
      ),
  };
}

/** A frozen install's manifest as read, and (read from a registry) how to read its signature afresh. */
interface FrozenManifest {
  readonly manifest: VerifiedManifest;
  keep(): Promise<void>;
  /** The signature read again past every cache: for one the registry's keys refused. */
  again?(): Promise<FrozenManifest>;
}

/** What keeps a frozen install from a registry's manifest without saying anything of the lock. */
const OUTAGES: ReadonlySet<string> = new Set(['FETCH_FAILED', 'OFFLINE_MISSING']);

/**
 * The trust state a frozen install checks a registry's signature by: the one a set's registry (pinned by
 * URL and key) keeps, as its session holds it, else a configured registry's. Undefined for a source without
 * a registry's signature (a manifest URL, a folder on disk, on a web server or in a bucket): their manifests
 * are held to the lock's digest, their files to the manifest's, as before.
 * @throws ClientError REGISTRY_NOT_PINNED for a configured registry without a pinned key.
 */
async function registryTrust(
  ctx: ClientContext,
  options: InstallOptions,
  name: string,
  entry: LockedPlugin,
  given: Source | undefined,
): Promise<TrustRecord | undefined> {
  if (given) return given.kind === 'registry' ? given.trust : undefined;
  if (!(await ctx.registryEntry(entry.registry))) return undefined;
  const trust = await ctx.trust(entry.registry);
  if (!trust)
    throw new ClientError(
      'REGISTRY_NOT_PINNED',
      `${options.lockfile}: plugins/${name}@${entry.version} is locked from registry ${entry.registry}, which has no pinned key here to check its signature by (\`plugindex registry add ${entry.registry} URL --key FILE\`)`,
    );
  return trust;
}

/**
 * A frozen install's manifest against the registry's detached signature (manifest.json.asc), by the key
 * this client trusts for that registry: the one the lock was made with, or one the client followed a
 * rotation to since (the registry signs every manifest again at a rotation), as `plugindex verify` checks
 * an installed version (maintain.ts). Nothing of the registry is read: its key is kept offline. A key a
 * rotation retired as compromised is not among them.
 * @throws TrustError DOCUMENT_MISMATCH naming the lock file, the plugin and the keys expected; ClientError
 *   KEY_REVOKED when the signature is by a key retired as compromised.
 * @returns the fingerprint of the key that signed it.
 */
async function checkRegistrySignature(
  name: string,
  entry: LockedPlugin,
  manifest: VerifiedManifest,
  trust: TrustRecord,
  locked: LockedRegistry | undefined,
  lockOptions: Pick<InstallOptions, 'lockfile' | 'namedLockfile'>,
): Promise<string> {
  const { lockfile } = lockOptions;
  const later = linksFrom(trust, locked?.key_fingerprint);
  // A key retired as compromised vouches for nothing (key-chain.ts revokedLink).
  const links = [...later.filter((link) => link.compromised !== true), trust];
  const { verifyManifest } = await loadTrust();
  const verifyBy = async (link: { readonly fingerprint: string; readonly armoredKey: string }) =>
    verifyManifest({
      name,
      version: {
        version: entry.version,
        manifest_sha256: entry.manifest_sha256,
        manifest_size: manifest.bytes.byteLength,
        // The artifacts are held to the manifest next, by digest and size (checkLockedArtifacts).
        artifacts: [],
      },
      manifest: manifest.bytes,
      signature: manifest.signature,
      key: await readPinnedKey({ ...trust, ...link }, entry.registry),
      // Where it was read (the registry's published path, or the cache holding what was read there), not
      // the location the lock names, which a frozen install from a registry never reads.
      url: `${manifestKey(name, entry.version)} of registry ${entry.registry}`,
    });
  let refusal: unknown;
  for (const link of links) {
    try {
      await verifyBy(link);
      return link.fingerprint;
    } catch (error) {
      if (!(error instanceof TrustError)) throw error;
      refusal = error;
    }
  }
  for (const link of later.filter((l) => l.compromised === true)) {
    const signs = await verifyBy(link).then(
      () => true,
      (error: unknown) => {
        if (!(error instanceof TrustError)) throw error;
        return false;
      },
    );
    if (signs)
      throw keyRevokedError(
        link,
        entry.registry,
        `${lockfile}: the manifest of plugins/${name}@${entry.version} (${manifestKey(name, entry.version)}) as read`,
        `the registry signed every manifest again with its current key ${trust.fingerprint} at that rotation, and a frozen install of a lock made under the retired key takes only that signature, read from the registry (a copy serving the old one is stale or forged; \`plugindex install${lockfileFlag(lockOptions)}\` without --frozen writes the lock again under the current key)`,
      );
  }
  throw new TrustError(
    'DOCUMENT_MISMATCH',
    `${lockfile}: plugins/${name}@${entry.version} pins a manifest (sha256 ${entry.manifest_sha256}, ${manifestKey(name, entry.version)}) that registry ${entry.registry} did not sign: expected a signature by ${links.map((l) => l.fingerprint).join(' or ')} (${(refusal as Error).message}); if the registry rotated its key since, follow the rotation first (\`plugindex registry update ${entry.registry}\`, or for a set's registry an install without --frozen)`,
    { cause: refusal },
  );
}

/**
 * The source a frozen install checks a folder's manifest by (the key it pins): a set's folder (on disk, on a
 * web server, in a bucket), or a manifest URL installed from with `--key` before, whose key is kept as its
 * pin (`install URL --key`; context.ts manifestSource). Undefined for a registry (`registryTrust` checks
 * that), and for a source this client knows nothing of (no set names it, no registry or pin is kept under
 * its name): there is no key here to check by.
 */
async function folderTrust(
  ctx: ClientContext,
  entry: LockedPlugin,
  given: Source | undefined,
): Promise<FolderTrust | undefined> {
  let source = given;
  if (!source && entry.manifest_url !== undefined && !(await ctx.registryEntry(entry.registry)))
    source = await ctx.manifestSource(entry.registry, entry.manifest_url);
  if (source?.kind !== 'folder') return undefined;
  const verify = source.verifyManifest;
  // folderSource always gives one; a folder that could not check a signature is refused, not trusted on
  // the lock's digests.
  if (!verify)
    throw new ClientError(
      'CLIENT_CONFIG_INVALID',
      `source ${source.name} cannot check a manifest's signature, and a frozen install takes none from it unchecked`,
    );
  return { name: source.name, fingerprint: source.fingerprint, verify };
}

/** What a frozen install checks a folder's manifest by: the source, its pinned key, and its verifier. */
interface FolderTrust {
  readonly name: string;
  readonly fingerprint: string;
  readonly verify: NonNullable<Source['verifyManifest']>;
}

/**
 * A frozen install's manifest from a folder source, judged as an install that reads the folder judges it
 * (folder-source.ts FolderSource.verify): signed by the key the source pins, then read strictly; and the
 * publisher the lock names is the key that signed it (a folder's document names its signer as the
 * publisher, and installed.json records the lock's). Nothing of the folder is read.
 * @throws TrustError DOCUMENT_MISMATCH, DOCUMENT_MALFORMED; ClientError LOCK_MISMATCH (another publisher);
 *   each naming the lock file and the plugin.
 */
async function checkFolderSignature(
  name: string,
  entry: LockedPlugin,
  manifest: VerifiedManifest,
  folder: FolderTrust,
  lockfile: string,
): Promise<void> {
  const where = entry.manifest_url ?? `${name}@${entry.version}`;
  let publisher: string;
  try {
    ({ publisher } = await folder.verify(manifest.bytes, manifest.signature, where));
  } catch (error) {
    if (!(error instanceof TrustError)) throw error;
    throw new TrustError(
      error.code,
      `${lockfile}: plugins/${name}@${entry.version} pins a manifest (sha256 ${entry.manifest_sha256}) that source ${folder.name} does not vouch for by its key ${folder.fingerprint}: ${error.message}`,
      { cause: error },
    );
  }
  if (publisher !== entry.publisher)
    throw new ClientError(
      'LOCK_MISMATCH',
      `${lockfile}: plugins/${name}@${entry.version} locks publisher key ${entry.publisher}, but the manifest it pins is signed by ${publisher}`,
    );
}

/**
 * Why a frozen install from a folder source refuses a manifest it could not have: what signs the files is
 * missing. A manifest without a signature beside it stays the signature refusal it is (DOCUMENT_MISMATCH);
 * an outage keeps its code; anything else (not there, other bytes than the lock pins) is the lock
 * contradicting the source (LOCK_MISMATCH), as for a registry.
 */
function folderRefusal(
  name: string,
  entry: LockedPlugin,
  folder: FolderTrust,
  error: Error,
  lockfile: string,
): Error {
  const at = `${lockfile}: plugins/${name}@${entry.version}`;
  if (error instanceof TrustError)
    return new TrustError(
      error.code,
      `${at} pins a manifest (sha256 ${entry.manifest_sha256}) that source ${folder.name} does not vouch for by its key ${folder.fingerprint}: ${error.message}`,
      { cause: error },
    );
  if (error instanceof ClientError && OUTAGES.has(error.code))
    return new ClientError(
      error.code,
      `${at}: the manifest it pins (sha256 ${entry.manifest_sha256}) cannot be had, and without it nothing says source ${folder.name}'s key signed its files (${error.message})`,
      { cause: error },
    );
  return new ClientError(
    'LOCK_MISMATCH',
    `${at} pins manifest sha256 ${entry.manifest_sha256}, which source ${folder.name} does not publish signed where the lock says (${error.message})`,
    { cause: error },
  );
}

/**
 * The publisher a frozen lock names against the one its registry signs for that version, in the plugin
 * document (through the source's session, held to the lock's key and generation floor, as any install).
 * @throws ClientError LOCK_MISMATCH (another publisher, digest or artifact), PLUGIN_NOT_FOUND,
 *   NO_MATCHING_VERSION, and what reading the registry throws.
 */
async function checkSignedPublisher(
  ctx: ClientContext,
  name: string,
  entry: LockedPlugin,
  given: Source | undefined,
  lock: Lockfile,
  lockOptions: Pick<InstallOptions, 'lockfile' | 'namedLockfile'>,
): Promise<void> {
  await signedLockedDocument(ctx, name, entry, given, lock, lockOptions);
}

/**
 * `--deny-yanked` for a frozen install: the version a lock holds from a registry, refused when that registry
 * now lists it yanked or removed, as an install that reads the registry refuses it (`resolveLocked`). Only
 * its signed plugin document says so, which a frozen install otherwise never reads: it is read for this (as
 * for a policy that lists publishers), and a document that cannot be had (offline, the registry down)
 * refuses the install rather than leave the flag unjudged. Frozen, `--deny-yanked` was taken without a word
 * and the yanked version installed, warned of by nothing.
 * @returns the document read, whose `look_alikes` the install then tells of as one that is not frozen does.
 * @throws ClientError YANKED, VERSION_REMOVED; OFFLINE_MISSING or FETCH_FAILED naming the flag; what
 *   `signedLockedDocument` throws.
 */
async function checkFrozenYank(
  ctx: ClientContext,
  target: Target,
  entry: LockedPlugin,
  given: Source | undefined,
  lock: Lockfile,
  lockOptions: Pick<InstallOptions, 'lockfile' | 'namedLockfile'>,
): Promise<PluginDocument> {
  const { lockfile } = lockOptions;
  const document = await signedLockedDocument(ctx, target.name, entry, given, lock, lockOptions).catch(
    (error: unknown) => {
      if (!(error instanceof ClientError && OUTAGES.has(error.code))) throw error;
      throw new ClientError(
        error.code,
        `${lockfile}: plugins/${target.name}@${entry.version}: --deny-yanked is judged on what ${entry.registry}'s signed plugin document says of the version now, which could not be read (${error.message}); install without --deny-yanked to place the lock as it is, or once the registry can be read`,
        { cause: error },
      );
    },
  );
  resolveLocked(document, entry.version, target.platforms[0] as Platform, {
    denyYanked: true,
    lockfileFlag: lockfileFlag(lockOptions),
  });
  return document;
}

/**
 * The plugin document a frozen lock's registry signs now, holding the lock's version with the lock's digests
 * (through the source's session, held to the lock's key and generation floor, as any install).
 * @throws ClientError LOCK_MISMATCH (another publisher, digest or artifact), PLUGIN_NOT_FOUND,
 *   NO_MATCHING_VERSION, and what reading the registry throws.
 */
async function signedLockedDocument(
  ctx: ClientContext,
  name: string,
  entry: LockedPlugin,
  given: Source | undefined,
  lock: Lockfile,
  lockOptions: Pick<InstallOptions, 'lockfile' | 'namedLockfile'>,
): Promise<PluginDocument> {
  const { lockfile } = lockOptions;
  let source: Source;
  let document: PluginDocument | undefined;
  if (given) {
    source = given;
    document = await given.document(name, entry.version);
  } else {
    const found = await ctx.find(name, entry.registry);
    source = registrySource(found.session);
    document = found.document;
  }
  if (!document)
    throw new ClientError(
      'PLUGIN_NOT_FOUND',
      `${lockfile}: plugins/${name}@${entry.version} is locked from ${source.name}, which lists no plugin named ${name}`,
    );
  checkLockedSource(lock, source, lockOptions, true);
  checkLockedVersionListed(lock, source, document, name, lockfile);
  const version = document.versions.find(
    (v) => versionIdentity(v.version) === versionIdentity(entry.version),
  );
  if (!version)
    throw new ClientError(
      'NO_MATCHING_VERSION',
      `${lockfile}: plugins/${name} locks version ${entry.version}, which ${source.name} does not list`,
    );
  const signed = lockedPluginFrom(source.name, entry.requested, version, (a) =>
    source.artifactUrl(name, version, a),
  );
  checkAgainstLock(name, entry, signed, lockfile);
  return document;
}

/**
 * The endpoint a frozen download goes through: the source's (its credentials, CA and mirrors) when the
 * install knows it, else one for the origin of where the lock recorded the artifact, with no credentials.
 */
async function endpointFor(
  ctx: ClientContext,
  options: InstallOptions,
  registry: string,
  files: readonly PlannedFile[],
  manifestUrl: string | undefined,
): Promise<Endpoint> {
  const given = (await options.sources?.get(registry))?.endpoint ?? (await ctx.endpoint(registry));
  if (given) return given;
  // Its folder, not its origin: a file: or s3: URL has no origin to speak of.
  const url = files.find((f) => f.url !== undefined)?.url ?? manifestUrl;
  return {
    name: registry,
    bases: url ? [url.slice(0, url.lastIndexOf('/'))] : [],
    timeoutMs: DEFAULT_TIMEOUT_SECONDS * 1000,
  };
}

/**
 * The lock's record of the source: the key it was made with (or one the source's key succeeds through
 * verified rotations), and the generation it may not go below. The floor holds for every target read from
 * that source, not only those the lock decides (`locked`): an update, another spec or a plugin new to the
 * lock read from an older snapshot than the lock's would roll a machine with no trust state of its own (a
 * fresh CI runner) back to what that snapshot resolves to. A target the lock does not decide may come from
 * a key the configuration pins since (the lock then records that key, and its floor starts again).
 */
function checkLockedSource(
  lock: Lockfile,
  source: Source,
  options: Pick<InstallOptions, 'lockfile' | 'namedLockfile'>,
  locked: boolean,
): void {
  const { lockfile } = options;
  const registry = own(lock.registries, source.name);
  if (!registry) return;
  if (!keyLinked(registry.key_fingerprint, source.fingerprint, source.previousKeys)) {
    if (!locked) return;
    throw new ClientError(
      'LOCK_MISMATCH',
      `${lockfile}: registries/${source.name} was locked with key ${registry.key_fingerprint}, but ${source.name} is pinned to ${source.fingerprint} here, and no key rotation this client followed leads from one to the other: if that key was pinned here on purpose (a key file replaced by the registry's new key), \`plugindex update${lockfileFlag(options)}\` (\`plugindex update -c FILE\` for a plugin set) locks it again under the key pinned here`,
    );
  }
  if (source.kind === 'registry' && source.generation < registry.min_generation)
    throw new TrustError(
      'SNAPSHOT_ROLLBACK',
      `${source.endpoint.bases[0]}: generation ${source.generation} is older than ${registry.min_generation}, the lowest ${lockfile} accepts`,
    );
}

/**
 * The version a lock holds of a plugin from a registry is a floor of its own: a registry never unlists a
 * version (a removed one stays listed, with why), so a plugin document of that registry, under the lock's
 * key, that does not list it is from a snapshot older than the lock's entry, whatever its generation. The
 * lock's `min_generation` holds that already when it is as its writer left it; this check still holds a
 * lock whose floor is lower (a merge that kept the lower number, one edited by hand), where an update
 * would resolve the lock's spec to an older version and a plain install would call the locked one missing.
 * @throws TrustError SNAPSHOT_ROLLBACK naming the lock entry and the version.
 */
function checkLockedVersionListed(
  lock: Lockfile,
  source: Source,
  document: PluginDocument,
  name: string,
  lockfile: string,
): void {
  const held = own(lock.plugins, name);
  const registry = own(lock.registries, source.name);
  if (
    source.kind !== 'registry' ||
    held?.registry !== source.name ||
    !registry ||
    !keyLinked(registry.key_fingerprint, source.fingerprint, source.previousKeys)
  )
    return;
  const identity = versionIdentity(held.version);
  if (document.versions.some((v) => versionIdentity(v.version) === identity)) return;
  throw new TrustError(
    'SNAPSHOT_ROLLBACK',
    `${source.endpoint.bases[0]}: generation ${source.generation} lists no version ${held.version} of ${name}, which ${lockfile} locks from ${source.name} (plugins/${name}): a registry never unlists a version, so this snapshot is older than the lock (a replay), or the lock names a version the registry never published`,
  );
}

/** True when `locked` is the key pinned, or one it succeeds through the rotations the client followed. */
function keyLinked(locked: string, pinned: string, previous: readonly string[] = []): boolean {
  return locked === pinned || previous.includes(locked);
}

/**
 * A frozen install reads no registry, but the key its lock was made with must still be the one this client
 * pins for that source (a plugin set's, or a configured registry's), or one the pin was rotated from
 * (client/key-chain.ts): a lock of another key is refused. A source this client does not know is the
 * lock's alone to vouch for.
 */
async function checkFrozenKey(
  ctx: ClientContext,
  options: InstallOptions,
  name: string,
  locked: string | undefined,
): Promise<void> {
  if (locked === undefined) return;
  const given = await options.sources?.get(name);
  const trust = given ? undefined : await ctx.trust(name);
  const pinned = given?.fingerprint ?? trust?.fingerprint;
  if (pinned === undefined) return;
  const previous = given?.previousKeys ?? (trust?.chain ?? []).map((link) => link.fingerprint);
  // A set's source is no configured registry: `registry update` (all it named) follows none of its
  // rotations, and a key file the set replaced is locked again only by its update.
  const remedy = given
    ? `if the set's key file was replaced on purpose (by the registry's new key), \`plugindex update -c FILE\` (without --frozen) locks it again under the key the set pins, the lock then committed`
    : `if the registry rotated its key since, \`plugindex registry update ${name}\` follows the rotation; if the key pinned here was replaced on purpose, \`plugindex update${lockfileFlag(options)}\` (without --frozen) locks it again under it`;
  if (!keyLinked(locked, pinned, previous))
    throw new ClientError(
      'LOCK_MISMATCH',
      `${options.lockfile}: registries/${name} was locked with key ${locked}, but ${name} is pinned to ${pinned} here, and no key rotation this client followed leads from one to the other (${remedy})`,
    );
}

/**
 * The sources of a plugin set whose key file holds a key the lock's key for that source is not, nor one it
 * leads to through rotations followed (a key file replaced by another key, nothing else changed). The lock
 * no longer decides their entries, as for a spec or a provider the set changed (`installTargets`): a set
 * naming another key names another source, so `install -c` resolves them afresh under it and locks them
 * again, as `update -c` does, where its fast path called the tree up to date and `verify -c` refused it
 * (SNAPSHOT_WRONG_KEY). The key file's fingerprint is computed from its packet (no openpgp.js) and compared
 * first: a tree up to date parses no key. Not with --locked or --frozen, which keep the lock and refuse
 * (LOCK_MISMATCH, naming `update -c FILE`).
 */
async function replacedSetKeys(options: InstallOptions, lock: Lockfile | undefined): Promise<Set<string>> {
  const replaced = new Set<string>();
  const lookup = options.sources;
  if (!lock || !lookup?.has || !lookup.pins) return replaced;
  for (const [name, registry] of Object.entries(lock.registries)) {
    if (!lookup.has(name) || lookup.keyFile?.(name) === registry.key_fingerprint) continue;
    const pinned = await lookup.pins(name);
    if (pinned && !keyLinked(registry.key_fingerprint, pinned.fingerprint, pinned.previousKeys))
      replaced.add(name);
  }
  return replaced;
}

/**
 * True when the folder already holds the planned version as current, every file in place and intact, and
 * `plugindex verify` has not refused it since (what it checks beside the files, the signed manifest, is
 * placed again with them), nor was it placed under a key the source's trust state marks compromised.
 */
async function installedAsPlanned(tree: InstallTree, plan: Planned, seen: OnDisk): Promise<boolean> {
  const record = intactRecord(await seen.read(tree), plan.name, plan.version, plan.entry.manifest_sha256);
  if (!record) return false;
  // Its signature beside it is by a stolen key (verify would refuse it, KEY_REVOKED), or by one the pin no
  // longer links to (SNAPSHOT_WRONG_KEY): the plan holds the pinned key's, placed over it.
  if (placedKeyProblem(plan, record) !== undefined) return false;
  for (const file of plan.files) {
    const held = own(record.artifacts, file.platform);
    if (!held || held.path !== file.path || held.sha256 !== file.sha256) return false;
    const actual = await seen.hash(tree, held.path, file.size, true);
    if (actual?.sha256 !== file.sha256 || actual.size !== file.size) return false;
  }
  // A frozen install without the manifest at hand has none to place: the files alone are the install.
  return plan.manifest === undefined || manifestInPlace(tree, plan.name, plan.entry, seen);
}

/**
 * The installed record of `version` when it is its plugin's current version, made from the manifest
 * `manifestSha256`, and `verify` has not refused it since (its signed manifest beside it gone or changed,
 * say: such a version is placed again); else undefined.
 */
function intactRecord(
  installed: InstalledFile,
  name: string,
  version: string,
  manifestSha256: string,
): InstalledVersion | undefined {
  const plugin = own(installed.plugins, name);
  if (plugin?.current !== version) return undefined;
  const record = own(plugin.versions, version);
  return record?.manifest_sha256 === manifestSha256 && record.problem === undefined ? record : undefined;
}

/**
 * True when the signed manifest beside a version (what discovery and a host read of it: its permissions)
 * is the one the lock pins, its signature beside it: an install places both, so it places them again when
 * either was changed or removed.
 */
async function manifestInPlace(
  tree: InstallTree,
  name: string,
  entry: LockedPlugin,
  seen: OnDisk,
): Promise<boolean> {
  const problems = await installedManifestProblems(
    name,
    entry.version,
    entry.manifest_sha256,
    (relative, maxBytes) => seen.hash(tree, relative, maxBytes),
  );
  return problems.length === 0;
}

/**
 * What is wrong with the signed manifest and its signature beside an installed version, against the digest
 * `manifestSha256` it must have; empty when both are in place. One check for install (which places them
 * again) and `diff -c` (which names what install would place), so that the two cannot disagree.
 */
export async function installedManifestProblems(
  name: string,
  version: string,
  manifestSha256: string,
  hash: (relative: string, maxBytes: number) => Promise<{ sha256: string; size: number } | undefined>,
): Promise<string[]> {
  const manifest = installedManifestPath(name, version);
  // Each read only up to its cap: a manifest or signature planted larger is not theirs, and is not hashed.
  const [bytes, signature] = await Promise.all([
    hash(manifest, UNLISTED_LIMITS.manifest),
    hash(`${manifest}.asc`, UNLISTED_LIMITS.signature),
  ]);
  const problems: string[] = [];
  if (bytes?.sha256 !== manifestSha256)
    problems.push(`${manifest} is ${bytes ? 'not the signed manifest' : 'missing'}`);
  if (!signature) problems.push(`${manifest}.asc is missing`);
  return problems;
}

/**
 * The permissions a version asks for that were not accepted before: not by the version the lock holds, nor
 * by the version installed as current in the folder it goes to (its signed manifest in place, held to the
 * digest installed.json records). Compared with the lock alone, an update with the lock deleted (or a
 * plugin installed without one, `--lockfile` elsewhere) took a version's new permissions silently. A first
 * install, with neither, asks nothing: what it installs is what was asked for. A version installed whose
 * grant nothing in place vouches for (its signed manifest gone or changed) is no first install: it granted
 * nothing that can be shown, so every permission counts as new (an update took them silently), unless the
 * version planned is the very manifest installed.json recorded for it (placed again, it asks what it did).
 */
async function permissionsAsked(
  tree: InstallTree,
  seen: OnDisk,
  name: string,
  locked: LockedPlugin | undefined,
  entry: LockedPlugin,
): Promise<{ newPermissions: string[]; acceptedFrom?: string }> {
  const installed = await installedPermissions(tree, seen, name, entry);
  if (!locked && !installed) return { newPermissions: [] };
  const accepted = [...(locked?.permissions ?? []), ...(installed?.permissions ?? [])];
  const from = [
    ...(locked ? [`${name}@${locked.version}`] : []),
    ...(installed && installed.version !== locked?.version
      ? [
          `${name}@${installed.version}${installed.unshown ? ' (its signed manifest, which would show what it was granted, is not in place)' : ''}`,
        ]
      : []),
  ];
  return {
    newPermissions: permissionChanges(accepted, entry.permissions ?? []).added,
    acceptedFrom: from.join(' and '),
  };
}

/**
 * The permissions of the version installed as current of `name` in `tree`, read from its signed manifest in
 * place (held to the digest installed.json records); undefined when none is installed. One whose manifest
 * is not in place as recorded (missing, other bytes, not JSON) granted none that can be established: none,
 * unless installed.json records it as made from `planned`, the manifest about to be placed (whose own
 * permissions were then the ones granted).
 */
async function installedPermissions(
  tree: InstallTree,
  seen: OnDisk,
  name: string,
  planned: LockedPlugin,
): Promise<{ version: string; permissions: readonly string[]; unshown?: true } | undefined> {
  // installed.json read once per folder for the whole plan (`OnDisk`), not once per target.
  const plugin = own((await seen.read(tree)).plugins, name);
  if (!plugin) return undefined;
  // A current version installed.json holds no record of (a hand edit) shows no grant either.
  const record = own(plugin.versions, plugin.current);
  if (!record) return { version: plugin.current, permissions: [], unshown: true };
  const manifest = await installedManifest(tree, name, plugin.current, record.manifest_sha256);
  if (!manifest)
    return record.manifest_sha256 === planned.manifest_sha256
      ? { version: plugin.current, permissions: planned.permissions ?? [] }
      : { version: plugin.current, permissions: [], unshown: true };
  const permissions = Array.isArray(manifest.permissions) ? manifest.permissions : [];
  return { version: plugin.current, permissions: permissions.filter((p) => typeof p === 'string') };
}

/**
 * The signed manifest placed beside an installed version, read (a regular file, under the manifest's cap)
 * and held to `sha256`; undefined when it is missing, other bytes or not JSON. Not its signature: an install
 * placed it verified, and `plugindex verify` checks it again.
 */
async function installedManifest(
  tree: InstallTree,
  name: string,
  version: string,
  sha256: string,
): Promise<Manifest | undefined> {
  const bytes = await readRegularIfExists(
    tree.path(installedManifestPath(name, version)),
    UNLISTED_LIMITS.manifest,
  );
  if (bytes === undefined || sha256Hex(bytes) !== sha256) return undefined;
  try {
    const parsed: unknown = JSON.parse(bytes.toString('utf8'));
    return typeof parsed === 'object' && parsed !== null ? (parsed as Manifest) : undefined;
  } catch {
    return undefined;
  }
}

/** Where a version's signed manifest is placed in its folder (its `.asc` beside it). */
function installedManifestPath(name: string, version: string): string {
  return `${name}/${versionFolder(version)}/manifest.json`;
}

/**
 * Downloads one artifact into the cache unless it is held there (`again`: whatever is there, a blob found
 * damaged, which the download's rename then replaces); true when it downloaded it now.
 */
async function download(
  ctx: ClientContext,
  plan: Planned,
  file: PlannedFile,
  again = false,
): Promise<boolean> {
  if (!again && (await ctx.cache.hasBlob(file.sha256, file.size))) return false;
  const name = `${plan.name}@${plan.version}`;
  if (ctx.offline)
    throw new ClientError(
      'OFFLINE_MISSING',
      `${name} ${file.platform} (sha256 ${file.sha256}) is not cached, and --offline forbids downloading it`,
    );
  let body: AsyncIterable<Uint8Array>;
  let from: string;
  if (file.oci) {
    const credentials = await ctx.ociCredentials(file.oci.reference);
    const pulled = await ctx.fetcher
      .ociBlob({
        reference: file.oci.reference,
        digest: file.oci.digest,
        maxBytes: file.size,
        namedBy: plan.endpoint,
        timeoutMs: plan.endpoint.timeoutMs,
        ...(credentials ? { credentials } : {}),
      })
      .catch((error: unknown) => {
        if (error instanceof ClientError && error.code === 'CREDENTIALS_MISSING' && !credentials)
          throw new ClientError(
            'CREDENTIALS_MISSING',
            `${error.message}: log in to it as docker does (\`docker login\`, \`oras login\`), which keeps them in $DOCKER_CONFIG/config.json or ~/.docker/config.json`,
            { cause: error },
          );
        throw error;
      });
    body = pulled.body;
    from = pulled.url;
  } else if (file.url !== undefined) {
    const fetched = await ctx.fetcher.download(plan.endpoint, { url: file.url, maxBytes: file.size });
    body = fetched.body;
    from = fetched.url;
  } else {
    throw new ClientError(
      'LOCK_OUT_OF_SYNC',
      `${name} ${file.platform} is not cached, and the lock records no location for it (it was written before locations were); run install without --frozen once`,
    );
  }
  const progress = ctx.onProgress;
  await ctx.cache.writeBlob({
    sha256: file.sha256,
    size: file.size,
    url: from,
    body,
    ...(progress ? { onProgress: (received: number) => progress({ name, received, total: file.size }) } : {}),
  });
  return true;
}

/** One version's files in the tree, and the record installed.json will hold for them. */
interface Placed {
  readonly item: { readonly name: string; readonly version: string };
  readonly record: InstalledVersion;
}

async function place(
  ctx: ClientContext,
  tree: InstallTree,
  plan: Planned,
  owner: SetOwner | undefined,
): Promise<Placed> {
  for (const file of plan.files) {
    const expected = { sha256: file.sha256, size: file.size };
    try {
      await tree.placeExecutable(file.path, ctx.cache.readBlob(file.sha256), expected);
    } catch (error) {
      // Damaged on disk (it no longer hashes to its name: placeExecutable placed nothing), or deleted since it
      // was found: fetched again by the caller, outside the folder's hold.
      const damaged = error instanceof TrustError && error.code === 'ARTIFACT_MISMATCH';
      const gone =
        (error as NodeJS.ErrnoException).code === 'ENOENT' &&
        (error as NodeJS.ErrnoException).path === ctx.cache.blobPath(file.sha256);
      if (damaged || gone) throw new CachedBlobFault(plan, file, error, ctx.cache.blobPath(file.sha256));
      throw error;
    }
  }
  // The signed manifest where the spec's filesystem discovery looks for it, its signature beside it.
  const manifestPath = installedManifestPath(plan.name, plan.version);
  if (plan.manifest) {
    await tree.placeFile(`${manifestPath}.asc`, plan.manifest.signature);
    await tree.placeFile(manifestPath, plan.manifest.bytes);
  }
  const now = ctx.clock.now().toISOString();
  const record: InstalledVersion = {
    registry: plan.registry,
    registry_key: plan.signedBy ?? plan.fingerprint,
    manifest_sha256: plan.entry.manifest_sha256,
    publisher: plan.entry.publisher,
    ...(plan.publisherVerified ? { publisher_verified: true } : {}),
    installed: now,
    // Frozen, no signature chain was read (the lock's digests were, and a registry's signature of the
    // manifest): `plugindex verify` checks it later.
    ...(plan.checked ? { verified: now } : {}),
    artifacts: Object.fromEntries(
      plan.files.map((f) => [f.platform, { path: f.path, sha256: f.sha256, size: f.size }]),
    ),
    ...(plan.yanked ? { yanked: true } : {}),
    ...(plan.deprecated ? { deprecated: true } : {}),
    ...(owner !== undefined ? { sets: [owner.reference] } : {}),
  };
  return { record, item: { name: plan.name, version: plan.version } };
}

/**
 * Records what was placed in one folder's installed.json, in one edit, under the hold the placing took
 * (`InstallTree.hold`). A plugin set (`owner`) replaces only the versions it placed: its folder may be the
 * client's own or another set's, and the version beside its own one the user's. Of those, one another set
 * placed too loses only this set's claim, and stays theirs.
 */
async function record(
  tree: InstallTree,
  placed: readonly Placed[],
  replace: boolean,
  owner: SetOwner | undefined,
): Promise<void> {
  await tree.update(
    async (current) => {
      let next = current;
      const replaced: [string, string][] = [];
      for (const { item, record } of placed) {
        // A record naming this set otherwise (the previous release's `set`, a path through a link) is
        // named as it is now first, so the placing does not list the set twice.
        if (owner !== undefined)
          next = withSetOwner(
            next,
            item.name,
            { version: item.version, manifest_sha256: record.manifest_sha256 },
            owner,
            false,
          );
        next = withInstalledVersion(next, item.name, item.version, record);
        if (!replace) continue;
        for (const [version, held] of Object.entries(own(next.plugins, item.name)?.versions ?? {})) {
          if (version === item.version || (owner !== undefined && !isPlacedBySet(held, owner.names)))
            continue;
          if (owner !== undefined) {
            const shared = withoutSetOwner(next, item.name, version, owner.names);
            if (shared.others.length > 0 || shared.hand) {
              next = shared.installed;
              continue;
            }
          }
          next = withoutInstalled(next, item.name, version).installed;
          replaced.push([item.name, version]);
        }
      }
      // Removed while the folder is still held, after installed.json no longer names them.
      const afterWrite = async () => {
        for (const [name, version] of replaced) await tree.removeVersion(name, version);
      };
      return { installed: next, result: undefined, afterWrite };
    },
    { held: true },
  );
}

/**
 * An update's move below the version current in its folder, and why that version is not kept: what the
 * document says of it now (yanked, removed), else that the request no longer allows it. Or an update to
 * that very version (`placedAgain`, said only when the plan then places it).
 */
async function downgradeOf(
  seen: OnDisk,
  tree: InstallTree,
  name: string,
  to: string,
  document: PluginDocument,
): Promise<{ downgrade?: Downgrade; placedAgain?: true }> {
  const from = own((await seen.read(tree)).plugins, name)?.current;
  if (from === to) return { placedAgain: true };
  if (from === undefined || compareVersions(to, from) >= 0) return {};
  const record = document.versions.find((v) => versionIdentity(v.version) === versionIdentity(from));
  const reason = record?.removed
    ? `${name}@${from} was removed: ${oneLine(record.removed.reason)}`
    : record?.yanked
      ? `${name}@${from} is yanked: ${record.yanked_reason ? oneLine(record.yanked_reason) : 'no reason given'}`
      : record
        ? `${name}@${from} is not a version the request allows`
        : `${name}@${from} is no longer listed by the registry`;
  return { downgrade: { from, reason } };
}

function itemOf(plan: Planned, tree: InstallTree, unchanged: boolean): InstalledItem {
  const paths = Object.fromEntries(plan.files.map((f) => [f.platform, tree.path(f.path)]));
  const first = plan.files[0] as PlannedFile;
  return {
    name: plan.name,
    version: plan.version,
    registry: plan.registry,
    platform: first.platform,
    path: paths[first.platform] as string,
    paths,
    permissions: plan.entry.permissions ?? [],
    warnings: plan.warnings,
    advisories: plan.advisories,
    ...(plan.look_alikes ? { look_alikes: plan.look_alikes } : {}),
    unchanged,
    ...(plan.downgrade && !unchanged ? { downgrade: plan.downgrade } : {}),
    ...(plan.placedAgain && !unchanged ? { placedAgain: true } : {}),
  };
}

/**
 * `artifacts` without the builds for another C library (`linux-amd64-musl`) that `locked` does not pin: a
 * lock an older client wrote, which never saw them (the registry lists them apart, `libc_artifacts`). Its
 * version is the same version, not a changed one, and its lock is left as it is.
 */
function withoutNewLibcBuilds<T>(
  artifacts: Readonly<Record<string, T>>,
  locked: LockedPlugin,
): Record<string, T> {
  return Object.fromEntries(
    Object.entries(artifacts).filter(
      ([key]) => platformOfKey(key).libc === undefined || Object.hasOwn(locked.artifacts, key),
    ),
  );
}

/**
 * Refuses a registry that now signs something else for a locked version than the lock recorded (`update`
 * refuses it too: it would resolve to that version again).
 */
function checkAgainstLock(name: string, locked: LockedPlugin, now: LockedPlugin, lockfile: string): void {
  const differ = (what: string, was: string, is: string): never => {
    throw new ClientError(
      'LOCK_MISMATCH',
      `${lockfile}: plugins/${name}@${locked.version} locks ${what} ${was}, but ${now.registry} now signs ${is} for that version (a version is signed once: the source or the lock changed since); if the change is expected, delete plugins/${name} from ${lockfile}, and install it again to lock what is signed now`,
    );
  };
  if (now.manifest_sha256 !== locked.manifest_sha256)
    differ('manifest sha256', locked.manifest_sha256, now.manifest_sha256);
  if (now.publisher !== locked.publisher) differ('publisher key', locked.publisher, now.publisher);
  for (const [platform, artifact] of Object.entries(withoutNewLibcBuilds(now.artifacts, locked))) {
    const was = locked.artifacts[platform];
    if (!was || was.sha256 !== artifact.sha256 || was.size !== artifact.size)
      differ(
        `${platform} artifact`,
        was ? `${was.sha256} (${was.size} bytes)` : '(none)',
        `${artifact.sha256} (${artifact.size} bytes)`,
      );
  }
}

/**
 * A frozen install's lock entry against the manifest it pins (which hashes to the lock's digest): the
 * plugin and version it is. A lock edited to call a prerelease's manifest a release would otherwise be
 * judged by a policy, placed and recorded as that release.
 */
function checkLockedVersion(name: string, locked: LockedPlugin, manifest: Manifest, lockfile: string): void {
  if (manifest.name === name && versionIdentity(manifest.version) === versionIdentity(locked.version)) return;
  throw new ClientError(
    'LOCK_MISMATCH',
    `${lockfile}: plugins/${name} locks version ${locked.version}, but the manifest it pins (sha256 ${locked.manifest_sha256}) is ${manifest.name}@${manifest.version}`,
  );
}

/**
 * A frozen install's lock entry against the manifest it pins (which hashes to the lock's digest): every
 * artifact it locks is one the manifest names for that platform, by digest and size. A lock edited to point
 * a platform at other bytes (another version's file, anyone's) would otherwise place them beside a signed
 * manifest that names others, judged by a policy on what that manifest asks for; `plugindex verify` refuses
 * such a tree, so the install must not make one. Every lock an install wrote holds: the plugin document's
 * artifacts were held to the manifest's (verify.ts verifyManifest) before it was locked.
 */
function checkLockedArtifacts(
  name: string,
  locked: LockedPlugin,
  manifest: Manifest,
  lockfile: string,
): void {
  // Read as data: the bytes hash to the lock's digest, but a frozen install has checked no signature yet.
  const listed: unknown = manifest.installation?.artifacts;
  const declared = (Array.isArray(listed) ? listed : []).filter(
    (a): a is ManifestArtifact => typeof a === 'object' && a !== null && typeof a.sha256 === 'string',
  );
  for (const [platform, artifact] of Object.entries(locked.artifacts)) {
    // By the artifact's own platform, its C library included: `linux-amd64-musl` is the manifest's musl
    // build (read as `os-arch`, it was no artifact, and every frozen install of a lock pinning one failed),
    // and `linux-amd64` its glibc one, never the musl build of that arch.
    const named = declared.find((a) => platformKey(a) === platform);
    if (named && normalizeDigest(named.sha256) === artifact.sha256 && named.size_bytes === artifact.size)
      continue;
    throw new ClientError(
      'LOCK_MISMATCH',
      `${lockfile}: plugins/${name}@${locked.version} locks ${platform} sha256 ${artifact.sha256} (${artifact.size} bytes), but the manifest it pins (sha256 ${locked.manifest_sha256}) names ${named ? `sha256 ${normalizeDigest(named.sha256)} (${named.size_bytes} bytes)` : 'no artifact'} for ${platform}`,
    );
  }
}

/**
 * A frozen install's lock entry against the manifest it pins (which hashes to the lock's digest): the
 * permissions and resources it asks for, which a policy judges. A lock edited to leave out a permission
 * the policy denies would otherwise install a plugin that asks for it.
 */
function checkLockedAsks(name: string, locked: LockedPlugin, manifest: Manifest, lockfile: string): void {
  const { added, removed } = permissionChanges(locked.permissions, manifest.permissions ?? []);
  const resources = (r: Readonly<Record<string, number>> = {}) =>
    JSON.stringify(Object.entries(r).sort(([a], [b]) => compareStrings(a, b)));
  const locks = resources(locked.resources);
  const asks = resources(manifest.resources as Record<string, number> | undefined);
  if (added.length > 0 || removed.length > 0 || locks !== asks)
    throw new ClientError(
      'LOCK_MISMATCH',
      `${lockfile}: plugins/${name}@${locked.version} does not lock what the manifest it pins asks for (permissions ${[...added.map((p) => `+${p}`), ...removed.map((p) => `-${p}`)].join(', ') || 'the same'}; resources ${asks} where it locks ${locks})`,
    );
}

/** What Windows runs by extension (its PATHEXT's executables): a file without one is not started there. */
const WINDOWS_RUNNABLE = /\.(?:exe|com|bat|cmd)$/i;

/**
 * The installed file's name for one platform (`os-arch`): a set's `output` where it names one, else the
 * artifact's own (`artifactFileName`). On Windows an `output` without a runnable extension takes the
 * artifact's (`plat` for `tool.exe` is `plat.exe`): Windows starts a file by its extension (CreateProcess
 * and Node's spawn look for `plat.exe`), and a set naming one file for Linux and Windows hosts placed a
 * Windows executable no host there could start.
 */
function installedFileName(
  name: string,
  output: string | undefined,
  platform: string,
  url: string | undefined,
): string {
  const own = artifactFileName(name, url, platform);
  if (output === undefined) return own;
  const runnable = WINDOWS_RUNNABLE.exec(own)?.[0];
  if (!platform.startsWith('windows-') || runnable === undefined || WINDOWS_RUNNABLE.test(output))
    return output;
  const named = `${output}${runnable}`;
  return keyProblem(named) ? output : named;
}

/**
 * The installed file's name: the last segment of where the artifact is fetched from when it is one safe
 * segment (layout.ts's rule: no path, no Windows device name), else the plugin's (an OCI blob has none),
 * with `.exe` for a Windows platform: an OCI-hosted Windows executable was placed as `tool`, which
 * Windows does not start (it runs a file by its extension), where `output: tool` is placed as `tool.exe`.
 */
function artifactFileName(name: string, url: string | undefined, platform: string): string {
  const last = url === undefined ? '' : (pathOf(url)?.split('/').pop() ?? '');
  let decoded = '';
  try {
    decoded = decodeURIComponent(last);
  } catch {
    // Not a name: the plugin's, below.
  }
  if (decoded !== '' && !decoded.includes('/') && !keyProblem(decoded)) return decoded;
  const executable = `${name}.exe`;
  return platform.startsWith('windows-') && !keyProblem(executable) ? executable : name;
}

/** A URL's path, or undefined for text that is not a URL (a registry's defect must not be a crash). */
function pathOf(url: string): string | undefined {
  try {
    return new URL(url).pathname;
  } catch {
    return undefined;
  }
}
