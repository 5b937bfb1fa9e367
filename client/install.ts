/**
 * Installing: every target resolved and verified first (its registry's snapshot, bin, plugin document and
 * the version's manifest, and against the lock when it holds the plugin), the new lock computed and checked
 * (`--locked`), then each artifact downloaded into the cache (checked while it streams), and only then
 * placed and recorded in installed.json. A refusal at any step installs nothing. A tree that already is
 * the lock is checked on disk and left as it is, without a request.
 */
import { TrustError } from '../index-builder/errors.ts';
import { hostedArtifactKey, keyProblem, versionFolder } from '../index-builder/layout.ts';
import type { ArtifactRecord, VersionRecord } from '../index-builder/model.ts';
import type { ClientContext } from './context.ts';
import { withFileLock } from './disk/atomic.ts';
import { type InstallTree, readLockfile, writeLockfile } from './disk/state.ts';
import { ClientError } from './errors.ts';
import { type InstalledVersion, withInstalledVersion, withoutInstalled } from './installed.ts';
import { own } from './json-input.ts';
import {
  EMPTY_LOCKFILE,
  type LockChange,
  type LockedPlugin,
  type Lockfile,
  lockChanges,
  lockedPluginFrom,
  withPlugin,
} from './lockfile.ts';
import {
  type Platform,
  parseRequest,
  platformKey,
  type Resolution,
  resolveLocked,
  resolvePlugin,
} from './resolve.ts';
import type { RegistrySession, VerifiedManifest } from './session.ts';

export interface InstallOptions {
  /** `NAME[@SPEC]` each; none: exactly what the lock file holds (as `npm ci`). */
  readonly requests: readonly string[];
  readonly registry?: string;
  readonly platform?: Platform;
  /** Install folder; default `<data>/plugins`. */
  readonly dir?: string;
  readonly lockfile: string;
  /** Refuse to change the lock file. */
  readonly locked?: boolean;
  /** The host's plugin API version (`v1`): versions whose bounds exclude it are not chosen. */
  readonly apiVersion?: string;
  /** Re-resolve the named plugins (all of them when none is named) ignoring the lock: `update`. */
  readonly upgrade?: boolean;
}

export interface InstalledItem {
  readonly name: string;
  readonly version: string;
  readonly registry: string;
  readonly platform: string;
  /** Absolute path of the installed executable. */
  readonly path: string;
  readonly warnings: readonly string[];
  /** True when nothing was fetched: already installed as recorded. */
  readonly unchanged: boolean;
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
}

/** One target resolved and verified, ready to download and place. */
interface Planned {
  readonly target: Target;
  readonly session: RegistrySession;
  readonly resolution: Resolution;
  readonly manifest: VerifiedManifest;
  readonly entry: LockedPlugin;
}

export function installPlugins(ctx: ClientContext, options: InstallOptions): Promise<InstallResult> {
  // Two installs in one project take turns on its lock file; one that may not write it (--locked, a
  // read-only checkout in CI) takes no lock either.
  return options.locked ? install(ctx, options) : withFileLock(options.lockfile, () => install(ctx, options));
}

async function install(ctx: ClientContext, options: InstallOptions): Promise<InstallResult> {
  const platform = options.platform ?? ctx.platform;
  const tree = ctx.tree(options.dir);
  const before = await readLockfile(options.lockfile);
  const targets = installTargets(options, before);
  if (options.locked && !before)
    throw new ClientError(
      'LOCK_OUT_OF_SYNC',
      `${options.lockfile} does not exist, and --locked/--frozen forbid creating it (run \`plugindex install\` without them once)`,
    );

  // Fast path (an installed tree that already is the lock): nothing to fetch, nothing to verify online.
  if (!options.upgrade && targets.every((t) => t.locked)) {
    const unchanged = await alreadyInstalled(tree, targets, platform);
    if (unchanged) return { items: unchanged, lockfileChanged: false, lockChanges: [] };
  }

  // 1. Resolve and verify every target (and compute the lock) before anything is written.
  const planned: Planned[] = [];
  for (const target of targets)
    planned.push(await planTarget(ctx, target, options, platform, before ?? EMPTY_LOCKFILE));
  let lock = before ?? EMPTY_LOCKFILE;
  for (const plan of planned) {
    lock = withPlugin(lock, plan.target.name, plan.entry, {
      key_fingerprint: plan.session.trust.fingerprint,
      generation: plan.session.snapshot.generation,
    });
  }
  const changes = lockChanges(before ?? EMPTY_LOCKFILE, lock);
  if (options.locked && changes.length > 0)
    throw new ClientError(
      'LOCK_OUT_OF_SYNC',
      `${options.lockfile} would change, and --locked/--frozen forbid it: ${changes.map((c) => `${c.entry} ${c.change} (${c.detail})`).join('; ')}`,
    );

  // 2. Download what the cache lacks (each artifact verified while it streams).
  const downloaded = new Set<Planned>();
  for (const plan of planned) if (await download(ctx, plan)) downloaded.add(plan);
  // 3. Place every file (each by temp file and rename), then record them all at once; a failure part way
  // removes what this run placed for versions that were not installed before.
  const installedBefore = await tree.read();
  const placed: Placed[] = [];
  try {
    for (const plan of planned) placed.push(await place(ctx, tree, plan, platform, downloaded.has(plan)));
  } catch (error) {
    for (const { item } of placed)
      if (!own(installedBefore.plugins, item.name)?.versions[item.version])
        await tree.removeVersion(item.name, item.version);
    throw error;
  }
  await tree.update(async (current) => {
    let next = current;
    const replaced: [string, string][] = [];
    for (const { item, record } of placed) {
      next = withInstalledVersion(next, item.name, item.version, record);
      // An update replaces: the versions it moved away from go, once the new one is in place.
      if (!options.upgrade) continue;
      for (const version of Object.keys(own(next.plugins, item.name)?.versions ?? {})) {
        if (version === item.version) continue;
        next = withoutInstalled(next, item.name, version).installed;
        replaced.push([item.name, version]);
      }
    }
    // Removed while the folder is still held, after installed.json no longer names them.
    const afterWrite = async () => {
      for (const [name, version] of replaced) await tree.removeVersion(name, version);
    };
    return { installed: next, result: undefined, afterWrite };
  });
  const lockfileChanged = await writeLockfile(options.lockfile, lock);
  return { items: placed.map((p) => p.item), lockfileChanged, lockChanges: changes };
}

function installTargets(options: InstallOptions, lock: Lockfile | undefined): Target[] {
  const locked = (name: string): LockedPlugin | undefined =>
    lock && Object.hasOwn(lock.plugins, name) ? lock.plugins[name] : undefined;
  if (options.requests.length === 0) {
    if (!lock)
      throw new ClientError(
        'REQUEST_INVALID',
        `nothing to install: no names given and no ${options.lockfile}`,
      );
    return Object.entries(lock.plugins).map(([name, entry]) => ({
      name,
      spec: entry.requested,
      registry: entry.registry,
      ...(options.upgrade ? {} : { locked: entry }),
    }));
  }
  return options.requests.map((request) => {
    const { name, spec } = parseRequest(request);
    const entry = locked(name);
    const explicit = request.includes('@');
    // The lock decides unless asked to upgrade or asked for another spec than the one it was made for.
    const keep = entry && !options.upgrade && (!explicit || entry.requested === spec);
    return {
      name,
      spec: explicit ? spec : (entry?.requested ?? spec),
      ...(keep ? { locked: entry } : {}),
      ...(entry ? { registry: entry.registry } : {}),
    };
  });
}

async function alreadyInstalled(
  tree: InstallTree,
  targets: readonly Target[],
  platform: Platform,
): Promise<InstalledItem[] | undefined> {
  const installed = await tree.read();
  const key = platformKey(platform);
  const items: InstalledItem[] = [];
  for (const target of targets) {
    const entry = target.locked as LockedPlugin;
    const plugin = own(installed.plugins, target.name);
    const record = plugin ? own(plugin.versions, entry.version) : undefined;
    const artifact = record?.artifacts[key];
    const lockedArtifact = entry.artifacts[key];
    if (
      !record ||
      !artifact ||
      !lockedArtifact ||
      record.manifest_sha256 !== entry.manifest_sha256 ||
      artifact.sha256 !== lockedArtifact.sha256 ||
      plugin?.current !== entry.version
    )
      return undefined;
    const actual = await tree.hashFile(artifact.path);
    if (actual?.sha256 !== artifact.sha256 || actual.size !== artifact.size) return undefined;
    items.push({
      name: target.name,
      version: entry.version,
      registry: entry.registry,
      platform: key,
      path: tree.path(artifact.path),
      warnings: [],
      unchanged: true,
    });
  }
  return items;
}

async function planTarget(
  ctx: ClientContext,
  target: Target,
  options: InstallOptions,
  platform: Platform,
  lock: Lockfile,
): Promise<Planned> {
  const registry = options.registry ?? target.registry;
  const { session, document } = await ctx.find(target.name, registry);
  let resolution: Resolution;
  if (target.locked) {
    checkLockedRegistry(lock, session, options.lockfile);
    resolution = resolveLocked(document, target.locked.version, platform);
  } else {
    resolution = resolvePlugin(document, {
      spec: target.spec,
      platform,
      apiVersion: options.apiVersion ?? 'v1',
    });
  }
  const entry = lockedPluginFrom(session.entry.name, target.spec, resolution.version);
  if (target.locked) checkAgainstLock(target.name, target.locked, entry, options.lockfile);
  const manifest = await session.manifest(target.name, resolution.version);
  return { target, session, resolution, manifest, entry };
}

/** The lock's record of the registry: the key it was made with, and the generation it may not go below. */
function checkLockedRegistry(lock: Lockfile, session: RegistrySession, lockfile: string): void {
  const name = session.entry.name;
  const registry = Object.hasOwn(lock.registries, name) ? lock.registries[name] : undefined;
  if (!registry) return;
  if (registry.key_fingerprint !== session.trust.fingerprint)
    throw new ClientError(
      'LOCK_MISMATCH',
      `${lockfile}: registries/${session.entry.name} was locked with key ${registry.key_fingerprint}, but ${session.entry.name} is pinned to ${session.trust.fingerprint} here`,
    );
  if (session.snapshot.generation < registry.min_generation)
    throw new TrustError(
      'SNAPSHOT_ROLLBACK',
      `${session.entry.url}: generation ${session.snapshot.generation} is older than ${registry.min_generation}, the lowest ${lockfile} accepts`,
    );
}

/** Downloads the artifact into the cache unless it is held there; true when it downloaded it now. */
async function download(ctx: ClientContext, plan: Planned): Promise<boolean> {
  const artifact = plan.resolution.artifact;
  if (await ctx.cache.hasBlob(artifact.sha256, artifact.size_bytes)) return false;
  const name = `${plan.target.name}@${plan.resolution.version.version}`;
  if (ctx.offline)
    throw new ClientError(
      'OFFLINE_MISSING',
      `${name} ${artifact.os}/${artifact.arch} (sha256 ${artifact.sha256}) is not cached, and --offline forbids downloading it`,
    );
  const url = artifactUrl(plan.session.entry.url, plan.target.name, plan.resolution.version, artifact);
  const download = await ctx.fetcher.download(plan.session.endpoint, {
    url,
    maxBytes: artifact.size_bytes,
  });
  const progress = ctx.onProgress;
  await ctx.cache.writeBlob({
    sha256: artifact.sha256,
    size: artifact.size_bytes,
    url: download.url,
    body: download.body,
    ...(progress
      ? { onProgress: (received: number) => progress({ name, received, total: artifact.size_bytes }) }
      : {}),
  });
  return true;
}

/** One version's files in the tree, and the record installed.json will hold for them. */
interface Placed {
  readonly item: InstalledItem;
  readonly record: InstalledVersion;
}

async function place(
  ctx: ClientContext,
  tree: InstallTree,
  plan: Planned,
  platform: Platform,
  justDownloaded: boolean,
): Promise<Placed> {
  const { name } = plan.target;
  const version = plan.resolution.version;
  const artifact = plan.resolution.artifact;
  const key = platformKey(platform);
  // The version's folder as the registry names it (build metadata dropped): a `+` has no place in a path.
  const folder = `${name}/${versionFolder(version.version)}`;
  const relative = `${folder}/${key}/${artifactFileName(name, artifact)}`;
  const expected = { sha256: artifact.sha256, size: artifact.size_bytes };
  try {
    await tree.placeExecutable(relative, ctx.cache.readBlob(artifact.sha256), expected);
  } catch (error) {
    // A cached blob that no longer hashes to its name was damaged on disk: drop it and download it once more.
    if (justDownloaded || !(error instanceof TrustError && error.code === 'ARTIFACT_MISMATCH')) throw error;
    await ctx.cache.removeBlob(artifact.sha256);
    await download(ctx, plan);
    await tree.placeExecutable(relative, ctx.cache.readBlob(artifact.sha256), expected);
  }
  // The signed manifest where the spec's filesystem discovery looks for it, its signature beside it.
  await tree.placeFile(`${folder}/manifest.json.asc`, plan.manifest.signature);
  await tree.placeFile(`${folder}/manifest.json`, plan.manifest.bytes);
  const record: InstalledVersion = {
    registry: plan.session.entry.name,
    registry_key: plan.session.trust.fingerprint,
    manifest_sha256: version.manifest_sha256,
    publisher: version.publisher,
    installed: ctx.clock.now().toISOString(),
    verified: ctx.clock.now().toISOString(),
    artifacts: { [key]: { path: relative, sha256: artifact.sha256, size: artifact.size_bytes } },
    ...(version.yanked ? { yanked: true } : {}),
    ...(version.deprecated ? { deprecated: true } : {}),
  };
  return {
    record,
    item: {
      name,
      version: version.version,
      registry: plan.session.entry.name,
      platform: key,
      path: tree.path(relative),
      warnings: plan.resolution.warnings,
      unchanged: false,
    },
  };
}

/** Refuses a registry that now signs something else for a locked version than the lock recorded. */
function checkAgainstLock(name: string, locked: LockedPlugin, now: LockedPlugin, lockfile: string): void {
  const differ = (what: string, was: string, is: string): never => {
    throw new ClientError(
      'LOCK_MISMATCH',
      `${lockfile}: plugins/${name}@${locked.version} locks ${what} ${was}, but ${now.registry} now signs ${is}; if the change is expected, run \`plugindex update ${name}\``,
    );
  };
  if (now.manifest_sha256 !== locked.manifest_sha256)
    differ('manifest sha256', locked.manifest_sha256, now.manifest_sha256);
  if (now.publisher !== locked.publisher) differ('publisher key', locked.publisher, now.publisher);
  for (const [platform, artifact] of Object.entries(now.artifacts)) {
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
 * Where an artifact is fetched from: a hosted one under the client's configured URL (so a mirror or a
 * registry served elsewhere than the URL it publishes under still works), a publisher-hosted one as given.
 */
function artifactUrl(
  registryUrl: string,
  name: string,
  version: VersionRecord,
  artifact: ArtifactRecord,
): string {
  const key = artifact.hosted ? hostedArtifactKey(name, version.version, artifact.url) : undefined;
  return key === undefined ? artifact.url : `${registryUrl}/${key}`;
}

/**
 * The installed file's name: the artifact's own when it is one safe segment (layout.ts's rule: no path,
 * no Windows device name), else the plugin's.
 */
function artifactFileName(name: string, artifact: ArtifactRecord): string {
  const last = pathOf(artifact.url)?.split('/').pop() ?? '';
  let decoded: string;
  try {
    decoded = decodeURIComponent(last);
  } catch {
    return name;
  }
  return decoded.includes('/') || keyProblem(decoded) ? name : decoded;
}

/** A URL's path, or undefined for text that is not a URL (a registry's defect must not be a crash). */
function pathOf(url: string): string | undefined {
  try {
    return new URL(url).pathname;
  } catch {
    return undefined;
  }
}
