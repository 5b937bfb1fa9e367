/**
 * The installed tree's upkeep: what installed.json holds (list, with what is outdated), removal (files,
 * record, lock entry, and with `clean` the cached downloads), the spec's enable/disable, and `verify`:
 * every installed file rehashed against its record and the lock, its manifest's signature checked again by
 * the pinned key, and what was found written back where a host reads it; the claims of plugin sets whose
 * file is gone named (`SET_FILE_GONE`) and dropped on request (`cleanOrphans`).
 */

import { resolve } from 'node:path';
import type { Key } from 'openpgp';
import { TrustError } from '../index-builder/errors.ts';
import { versionFolder, versionIdentity } from '../index-builder/layout.ts';
import type { Advisory, PluginDocument } from '../index-builder/model.ts';
import { sortVersionsDescending } from '../index-builder/versions.ts';
import { explainForeignSource, isNothingToAsk } from './audit.ts';
import { type ClientContext, loadTrust, readPinnedKey } from './context.ts';
import { readRegularIfExists, withFileLock } from './disk/atomic.ts';
import type { TrustRecord } from './disk/state.ts';
import { goneSetFiles, type InstallTree, readLockfile, writeLockfile } from './disk/state.ts';
import { ClientError, pinAgainRemedy } from './errors.ts';
import { UNLISTED_LIMITS } from './fetcher.ts';
import {
  type InstalledFile,
  type InstalledVersion,
  ownersOf,
  withEnabled,
  withoutInstalled,
  withoutSetOwner,
  withVerification,
} from './installed.ts';
import { own } from './json-input.ts';
import { keyRevokedError } from './key-revocation.ts';
import { affectingAdvisories, deprecationOf } from './lifecycle.ts';
import { type Lockfile, lockfileFlag, shellWord, withoutPlugin } from './lockfile.ts';
import { lockedKeyFor, platformOfKey, resolvePlugin } from './resolve.ts';

export interface ListedPlugin {
  readonly name: string;
  readonly current: string;
  readonly versions: readonly string[];
  readonly enabled: boolean;
  readonly registry: string;
  readonly platforms: readonly string[];
  readonly yanked: boolean;
  readonly deprecated: boolean;
  /** With `outdated`: what the requested spec resolves to now, and the latest. */
  readonly wanted?: string;
  readonly latest?: string | null;
  /** With `outdated`, what the registry says of the current version now: why it was yanked, */
  readonly yanked_reason?: string;
  /** the deprecation that applies to it (its own or the plugin's), */
  readonly deprecation?: { readonly message?: string; readonly replacement?: string };
  /** its removal by the operator, */
  readonly removed?: { readonly reason: string; readonly at: string };
  /** and the advisories affecting it, worst first. */
  readonly advisories?: readonly Advisory[];
  /**
   * With `outdated`, why none of the above was asked (then absent): the registry configured under the
   * source's name is not the one the version was installed through (`explainForeignSource`, as `audit`).
   */
  readonly unchecked?: string;
}

export interface VerifyFinding {
  readonly name: string;
  readonly version: string;
  readonly ok: boolean;
  /** The refusal's code and message when not ok. */
  readonly code?: string;
  readonly message?: string;
}

/**
 * `verify`'s finding for a version recorded as placed by a plugin set whose file is gone (deleted or moved):
 * no `clean -c` can drop that claim, and without this the version stayed for good, unnamed. Said, not
 * failed (a moved checkout's install folder outside it leaves one at every move), and written nowhere:
 * installed.json's `problem` speaks for files and signatures.
 */
export const SET_FILE_GONE = 'SET_FILE_GONE';

/** A version whose recorded sets include some whose file is gone (`cleanOrphans`). */
export interface OrphanClaim {
  readonly name: string;
  readonly version: string;
  readonly dir: string;
  /** The sets recorded as placing it whose file is gone, as installed.json names them. */
  readonly sets: readonly string[];
}

export interface OrphanCleanReport {
  /** Versions removed: no set still there, nor a plain install, claims them. */
  readonly removed: readonly OrphanClaim[];
  /** Versions left, the gone sets' claims dropped: another set or the user claims them (`detail`). */
  readonly left: readonly (OrphanClaim & { readonly detail: string })[];
}

/** Every set name installed.json records, in either form (`ownersOf`). */
function recordedSets(installed: InstalledFile): string[] {
  return Object.values(installed.plugins).flatMap((plugin) =>
    Object.values(plugin.versions).flatMap((record) => [...ownersOf(record)]),
  );
}

function setFileGoneFinding(
  tree: InstallTree,
  name: string,
  version: string,
  sets: readonly string[],
): VerifyFinding {
  const one = sets.length === 1;
  return {
    name,
    version,
    ok: false,
    code: SET_FILE_GONE,
    message:
      `installed.json in ${tree.dir} records ${sets.join(', ')} as ${one ? 'a plugin set' : 'plugin sets'} that placed ${name}@${version}, ` +
      `and there is no such file (deleted, or moved: a set moved elsewhere is another set): no \`clean -c\` can drop ${one ? 'its' : 'their'} claim, so the version stays for good; ` +
      `\`plugindex clean --orphans --dir ${tree.dir}\` drops the claims of every set whose file is gone, removing each version no other set nor a plain install claims ` +
      `(a set moved elsewhere places what it pins again at its next \`install -c\`)`,
  };
}

/**
 * `clean --orphans`: drops from every version in the install folder the claims of plugin sets whose file is
 * gone (`goneSetFiles`), as each set's own `clean -c` would have, had it been run before the file went: a
 * version another set still there, or a plain install (`hand`), claims too stays theirs; one no one else
 * claims is removed, its files with it (while installed.json's lock is held, as `remove` does). Cached
 * downloads stay (`remove --clean`, or a set's `clean -c`, drops those nothing uses).
 */
export async function cleanOrphans(
  ctx: ClientContext,
  options: { dir?: string },
): Promise<OrphanCleanReport> {
  const tree = ctx.tree(options.dir);
  const gone = await goneSetFiles(tree.dir, recordedSets(await tree.read()));
  if (gone.size === 0) return { removed: [], left: [] };
  const isGone = (recorded: string) => gone.has(recorded);
  return tree.update(async (installed) => {
    let next = installed;
    const removed: OrphanClaim[] = [];
    const left: (OrphanClaim & { detail: string })[] = [];
    for (const [name, plugin] of Object.entries(installed.plugins))
      for (const [version, record] of Object.entries(plugin.versions)) {
        const sets = ownersOf(record).filter(isGone);
        if (sets.length === 0) continue;
        const dropped = withoutSetOwner(next, name, version, isGone);
        if (dropped.others.length === 0 && !dropped.hand) {
          next = withoutInstalled(next, name, version).installed;
          removed.push({ name, version, dir: tree.dir, sets });
          continue;
        }
        next = dropped.installed;
        const by = [
          dropped.others.length > 0
            ? `placed by ${dropped.others.join(', ')} too, which still claim${dropped.others.length === 1 ? 's' : ''} it`
            : '',
          dropped.hand ? "installed by hand (a plain install), the user's" : '',
        ].filter(Boolean);
        left.push({
          name,
          version,
          dir: tree.dir,
          sets,
          detail: `the claim of ${sets.join(', ')} dropped; it stays, ${by.join(', and ')}`,
        });
      }
    return {
      installed: next,
      result: { removed, left },
      afterWrite: async () => {
        for (const r of removed) await tree.removeVersion(r.name, r.version);
      },
    };
  });
}

export function readInstalled(ctx: ClientContext, options: { dir?: string }): Promise<InstalledFile> {
  return ctx.tree(options.dir).read();
}

export async function listInstalled(
  ctx: ClientContext,
  options: {
    dir?: string;
    outdated?: boolean;
    lockfile?: string;
    apiVersion?: string;
  },
): Promise<ListedPlugin[]> {
  const installed = await ctx.tree(options.dir).read();
  const lock = options.lockfile ? await readLockfile(options.lockfile) : undefined;
  const rows: ListedPlugin[] = [];
  for (const [name, plugin] of Object.entries(installed.plugins).sort(([a], [b]) => a.localeCompare(b))) {
    const current = plugin.versions[plugin.current] as InstalledVersion;
    const row: ListedPlugin = {
      name,
      current: plugin.current,
      versions: sortVersionsDescending(
        Object.keys(plugin.versions).map((v) => ({ version: v, yanked: false })),
      ).map((r) => r.version),
      enabled: plugin.enabled,
      registry: current.registry,
      platforms: Object.keys(current.artifacts).sort(),
      yanked: current.yanked ?? false,
      deprecated: current.deprecated ?? false,
    };
    if (!options.outdated) {
      rows.push(row);
      continue;
    }
    const foreign = await explainForeignSource(ctx, current);
    if (foreign !== undefined) {
      rows.push({ ...row, unchecked: foreign });
      continue;
    }
    let document: PluginDocument;
    try {
      ({ document } = await ctx.find(name, current.registry));
    } catch (error) {
      // As `audit` skips it; a refusal of what was served stops the listing.
      if (!isNothingToAsk(error)) throw error;
      rows.push({ ...row, unchecked: error.message });
      continue;
    }
    const requested = (lock ? own(lock.plugins, name) : undefined)?.requested ?? 'latest';
    const identity = versionIdentity(plugin.current);
    const versionNow = document.versions.find((v) => versionIdentity(v.version) === identity);
    const deprecation = versionNow ? deprecationOf(document, versionNow) : undefined;
    let wanted: string | undefined;
    try {
      wanted = resolvePlugin(document, {
        spec: requested,
        platform: ctx.platform,
        apiVersion: options.apiVersion ?? 'v1',
      }).version.version;
    } catch (error) {
      if (!(error instanceof ClientError)) throw error;
    }
    rows.push({
      ...row,
      yanked: versionNow?.yanked ?? row.yanked,
      deprecated: versionNow ? deprecation !== undefined : row.deprecated,
      ...(wanted ? { wanted } : {}),
      latest: document.latest_version,
      ...(versionNow?.yanked_reason ? { yanked_reason: versionNow.yanked_reason } : {}),
      ...(deprecation ? { deprecation } : {}),
      ...(versionNow?.removed ? { removed: versionNow.removed } : {}),
      advisories: affectingAdvisories(document, plugin.current),
    });
  }
  return rows;
}

export async function removeInstalled(
  ctx: ClientContext,
  request: string,
  options: { dir?: string; clean?: boolean; lockfile?: string },
): Promise<readonly string[]> {
  const at = request.lastIndexOf('@');
  const name = at > 0 ? request.slice(0, at) : request;
  const version = at > 0 ? request.slice(at + 1) : undefined;
  const tree = ctx.tree(options.dir);
  const removed = await tree.update(async (installed) => {
    const plugin = own(installed.plugins, name);
    const result = withoutInstalled(installed, name, version);
    const blobs = result.removed.flatMap((v) =>
      Object.values((plugin ? own(plugin.versions, v) : undefined)?.artifacts ?? {}).map((a) => a.sha256),
    );
    return {
      installed: result.installed,
      result: { versions: result.removed, blobs, gone: own(result.installed.plugins, name) === undefined },
      // Deleted while installed.json's lock is still held, as an install's replacing does: removed after its
      // release, an install of the same version landing in between (its files found in place, or placed
      // again) had them deleted while installed.json named them.
      afterWrite: async () => {
        for (const v of result.removed) await tree.removeVersion(name, v);
      },
    };
  });
  if (options.clean) for (const blob of removed.blobs) await ctx.cache.removeBlob(blob);
  const lockfile = options.lockfile;
  if (removed.gone && lockfile)
    await withFileLock(lockfile, async () => {
      const lock = await readLockfile(lockfile);
      if (lock) await writeLockfile(lockfile, withoutPlugin(lock, name));
    });
  return removed.versions;
}

export async function setEnabled(
  ctx: ClientContext,
  name: string,
  enabled: boolean,
  options: { dir?: string },
): Promise<void> {
  await ctx.tree(options.dir).update(async (installed) => ({
    installed: withEnabled(installed, name, enabled),
    result: undefined,
  }));
}

/**
 * Rehashes every installed file against its record and the lock, and rechecks the signature chain that
 * installed it (the manifest beside it, signed by the pinned key, naming the same artifact). Offline.
 */
export async function verifyInstalled(
  ctx: ClientContext,
  options: {
    dir?: string;
    lockfile?: string;
    /** `lockfile` as the command named it when not the default: its remedies say `--lockfile` with it. */
    namedLockfile?: string;
    /** The trust of sources the configuration does not hold (a plugin set's), by name. */
    trust?: ReadonlyMap<string, TrustRecord>;
    /** The URL each of `trust`'s sources reaches its registry at (a set's provider's), by name. */
    reached?: ReadonlyMap<string, readonly string[]>;
    /**
     * The finding for a version this check does not speak for (a version a plugin set does not name, in its
     * folder), reported as it is and written nowhere; undefined for a version to check.
     */
    outside?: (name: string, version: string, record: InstalledVersion) => VerifyFinding | undefined;
  },
): Promise<VerifyFinding[]> {
  const tree = ctx.tree(options.dir);
  const installed = await tree.read();
  const lock = options.lockfile ? await readLockfile(options.lockfile) : undefined;
  const findings: VerifyFinding[] = [];
  // Each registry's pinned key, read and checked once however many versions came through it.
  const keys = new Map<string, Promise<Key>>();
  const pinnedKey = (trust: TrustRecord, registry: string): Promise<Key> => {
    let key = keys.get(trust.fingerprint);
    if (!key) {
      key = readPinnedKey(trust, registry);
      keys.set(trust.fingerprint, key);
    }
    return key;
  };
  const unchecked = new Set<VerifyFinding>();
  // The sets recorded whose file is gone: each version they claim is named, whoever's check it is.
  const gone = await goneSetFiles(tree.dir, recordedSets(installed));
  for (const [name, plugin] of Object.entries(installed.plugins)) {
    for (const [version, record] of Object.entries(plugin.versions)) {
      const orphaned = ownersOf(record).filter((recorded) => gone.has(recorded));
      const orphan = orphaned.length > 0 ? setFileGoneFinding(tree, name, version, orphaned) : undefined;
      if (orphan) unchecked.add(orphan);
      const outside = options.outside?.(name, version, record);
      if (outside) {
        findings.push(outside, ...(orphan ? [orphan] : []));
        unchecked.add(outside);
        continue;
      }
      try {
        await verifyOne(
          ctx,
          tree,
          { name, version, record },
          {
            lock,
            lockfile: options.lockfile ?? '',
            flag: lockfileFlag(options),
            pinnedKey,
            ...(options.trust ? { given: options.trust } : {}),
            ...(options.reached ? { reached: options.reached } : {}),
          },
        );
        findings.push({ name, version, ok: true });
      } catch (error) {
        if (!(error instanceof ClientError || error instanceof TrustError)) throw error;
        findings.push({ name, version, ok: false, code: error.code, message: error.message });
      }
      if (orphan) findings.push(orphan);
    }
  }
  // What was found goes into installed.json, where a host reads it.
  const now = ctx.clock.now().toISOString();
  await tree.update(async (current) => ({
    installed: findings
      .filter((f) => !unchecked.has(f))
      .reduce(
        (next, f) =>
          withVerification(
            next,
            f.name,
            f.version,
            f.ok ? { verified: now } : { problem: { code: f.code ?? '', message: f.message ?? '' } },
          ),
        current,
      ),
    result: undefined,
  }));
  return findings;
}

/**
 * The command that places a version found changed on disk again as signed (verify records the problem, and
 * an install places a version so recorded again): its set's install for a version a set placed, else a
 * plain install into its folder.
 */
function placeAgain(
  tree: InstallTree,
  name: string,
  version: string,
  record: InstalledVersion,
  flag: string,
): string {
  // installed.json names a set relative to the folder (`setReference`): the command takes it as a path.
  const set = record.sets?.[0];
  return set !== undefined
    ? `\`plugindex install -c ${shellWord(resolve(tree.dir, set))}\` places it again as signed`
    : `\`plugindex install ${name}@${version} --dir ${shellWord(tree.dir)}${flag}\` places it again as signed`;
}

async function verifyOne(
  ctx: ClientContext,
  tree: InstallTree,
  { name, version, record }: { name: string; version: string; record: InstalledVersion },
  {
    lock,
    lockfile,
    flag,
    pinnedKey,
    given,
    reached,
  }: {
    lock: Lockfile | undefined;
    lockfile: string;
    /** ` --lockfile PATH` for a lock verify was named that is not the default (lockfile.ts `lockfileFlag`). */
    flag: string;
    pinnedKey: (trust: TrustRecord, registry: string) => Promise<Key>;
    given?: ReadonlyMap<string, TrustRecord>;
    reached?: ReadonlyMap<string, readonly string[]>;
  },
): Promise<void> {
  for (const [platform, artifact] of Object.entries(record.artifacts)) {
    const actual = await tree.hashFile(artifact.path, { executable: true, maxBytes: artifact.size });
    if (!actual)
      throw new ClientError(
        'INSTALLED_MODIFIED',
        `${tree.path(artifact.path)} is missing, or is no file an install placed: a symbolic link or reached through one, writable by others, owned by another user, or not executable (${name}@${version} ${platform}); ${placeAgain(tree, name, version, record, flag)}`,
      );
    if (actual.sha256 !== artifact.sha256 || actual.size !== artifact.size)
      throw new ClientError(
        'INSTALLED_MODIFIED',
        // A file larger than installed is not read (hashFile's maxBytes): its size alone is given.
        `${tree.path(artifact.path)} was changed since it was installed (${name}@${version} ${platform}): now ${actual.size} bytes${actual.sha256 === '' ? '' : ` (sha256 ${actual.sha256})`}, installed as ${artifact.size} bytes (sha256 ${artifact.sha256}); ${placeAgain(tree, name, version, record, flag)}`,
      );
    const locked = lock ? own(lock.plugins, name) : undefined;
    if (locked && locked.version === version) {
      // installed.json keys the host platform; the lock, the artifact's own (`darwin-universal` for a Mac).
      const lockedKey = lockedKeyFor(locked.artifacts, platformOfKey(platform));
      const lockedArtifact = lockedKey === undefined ? undefined : locked.artifacts[lockedKey];
      if (locked.manifest_sha256 !== record.manifest_sha256 || lockedArtifact?.sha256 !== artifact.sha256)
        throw new ClientError(
          'LOCK_MISMATCH',
          `${lockfile}: plugins/${name} locks manifest ${locked.manifest_sha256} and ${platform} ${lockedArtifact?.sha256 ?? '(none)'}, installed are ${record.manifest_sha256} and ${artifact.sha256}`,
        );
    }
  }
  const trust = given?.get(record.registry) ?? (await ctx.trust(record.registry));
  // Installed through the key pinned, or through one the pin was rotated from since: the manifest beside
  // it is then signed by that key or (re-signed by the registry at the rotation) by one after it.
  const rotatedFrom = trust?.chain?.findIndex((link) => link.fingerprint === record.registry_key) ?? -1;
  // No record at all: the registry was removed since (or is a set's, whose records verify -c reads), which
  // the message said as "pinned to nothing", naming no way on.
  if (!trust)
    throw new TrustError(
      'SNAPSHOT_WRONG_KEY',
      `${name}@${version} was installed through key ${record.registry_key}, but ${record.registry} is no registry configured here (removed since, or a plugin set's: \`plugindex verify -c FILE\` checks what a set installed), so no key here checks its signatures: \`plugindex registry add ${record.registry} URL --key FILE\` adds it again`,
    );
  if (trust.fingerprint !== record.registry_key && rotatedFrom < 0)
    throw new TrustError(
      'SNAPSHOT_WRONG_KEY',
      `${name}@${version} was installed through key ${record.registry_key}, but ${record.registry} is pinned to ${trust.fingerprint} now`,
    );
  const manifestPath = `${name}/${versionFolder(version)}/manifest.json`;
  // Only files of their size: the install folder may be a checkout, whose manifest.json could be a FIFO.
  const manifestBytes = await readRegularIfExists(tree.path(manifestPath), UNLISTED_LIMITS.manifest);
  const signature = (
    await readRegularIfExists(tree.path(`${manifestPath}.asc`), UNLISTED_LIMITS.signature)
  )?.toString('utf8');
  if (manifestBytes === undefined || signature === undefined)
    throw new ClientError(
      'INSTALLED_MODIFIED',
      `${tree.path(manifestPath)} or its .asc is missing; ${placeAgain(tree, name, version, record, flag)}`,
    );
  // The manifest is what a host reads the version's permissions from: one others may rewrite after this
  // check (or a link to a copy elsewhere) is no manifest an install placed, as for its files above.
  for (const [relative, maxBytes] of [
    [manifestPath, UNLISTED_LIMITS.manifest],
    [`${manifestPath}.asc`, UNLISTED_LIMITS.signature],
  ] as const)
    if (!(await tree.hashFile(relative, { maxBytes })))
      throw new ClientError(
        'INSTALLED_MODIFIED',
        `${tree.path(relative)} is no file an install placed: a symbolic link or reached through one, writable by others, or owned by another user; ${placeAgain(tree, name, version, record, flag)}`,
      );
  const { verifyManifest } = await loadTrust();
  const later = rotatedFrom < 0 ? [] : (trust.chain ?? []).slice(rotatedFrom);
  // A key retired as compromised signs nothing that counts: whoever took it could have signed a manifest
  // of their own for files they put in this folder, installed.json's record included.
  const trusted = later.filter((link) => link.compromised !== true);
  const keys = [
    ...(await Promise.all(trusted.map((link) => pinnedKey({ ...trust, ...link }, record.registry)))),
    await pinnedKey(trust, record.registry),
  ];
  const verify = (key: Key) =>
    verifyManifest({
      name,
      version: {
        version,
        manifest_sha256: record.manifest_sha256,
        manifest_size: manifestBytes.byteLength,
        // Each host platform's file as the artifact serving it (`linux-amd64-musl`: the musl build, else
        // the glibc one a musl host was given).
        artifacts: Object.entries(record.artifacts).map(([platform, a]) => ({
          ...platformOfKey(platform),
          sha256: a.sha256,
        })),
      },
      manifest: manifestBytes,
      signature,
      key,
      url: tree.path(manifestPath),
    });
  // The first key in the chain that signs it; else the pinned key's refusal.
  const signs = (key: Key) =>
    verify(key).then(
      () => true,
      () => false,
    );
  for (const key of keys.slice(0, -1)) if (await signs(key)) return;
  const refusal = await verify(keys.at(-1) as Key).then(
    () => undefined,
    (error: unknown) => error,
  );
  // The key held, retired as stolen by a rotation another name of this registry followed and this one
  // never did (a plugin set pinning the old key): it signs nothing that counts here either.
  // Read as of the URL the name reaches the registry at too (a set's provider's, or the configured
  // entry's): a mark kept as of a mirror's URL is read only so (`ClientContext.revokedKeys`), and passed
  // over, what a frozen install from that mirror placed under the stolen key verified.
  // Its mirrors too: a mark kept as of a URL this name lists only as a mirror is read so alone.
  const configured = given?.has(record.registry) ? undefined : await ctx.registryEntry(record.registry);
  const urls = given?.has(record.registry)
    ? reached?.get(record.registry)
    : configured && [configured.url, ...configured.mirrors];
  const held = (await ctx.revokedKeys(trust, urls)).find((link) => link.fingerprint === trust.fingerprint);
  if (refusal === undefined && held)
    throw keyRevokedError(
      held,
      record.registry,
      `${tree.path(manifestPath)} (${name}@${version})`,
      'forkedFrom' in held
        ? `${pinAgainRemedy({ registry: record.registry })}, then install the version again, which this verify recorded as refused`
        : `${record.registry} is still held here by that key, as another name of the registry followed the rotation and this one did not: install online (\`plugindex install -c FILE\` for a plugin set's, \`plugindex registry update\` for a configured one) to follow it, then install the version again, which this verify recorded as refused`,
    );
  if (refusal === undefined) return;
  // Signed by a revoked key (installed under it, its signature never replaced, or put there since by whoever
  // holds it, beside a version installed under a later key): say so, and what mends it.
  for (const link of (trust.chain ?? []).filter((l) => l.compromised === true))
    if (await signs(await pinnedKey({ ...trust, ...link }, record.registry)))
      throw keyRevokedError(
        link,
        record.registry,
        `${tree.path(manifestPath)} (${name}@${version})`,
        `install it again online (\`plugindex install ${name}@${version}${flag}\` into this folder, or \`plugindex install -c FILE\` for a plugin set's): this verify recorded the refusal, so the install places the version again with the manifest's signature by the registry's current key ${trust.fingerprint}, which the rotation signed every manifest with (or remove the version: \`plugindex remove ${name}@${version}\`)`,
      );
  throw refusal;
}
