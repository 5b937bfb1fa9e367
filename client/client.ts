/**
 * The consumer's composition root (sigstore's `createVerifier`, tuf-js' `Updater`): configuration, trust
 * state, cache and fetcher wired into the operations a host program or the `plugindex` command calls —
 * registries, search, info, install (with the lock file), list, update, remove, enable/disable, verify.
 *
 * Everything that decides lives in the pure modules (config, trusted snapshot, resolve, search, lockfile,
 * installed); the network is client/fetcher.ts, the disk client/disk/. This file orders them: every
 * install resolves and verifies everything it needs first, downloads into the cache second (each artifact
 * checked while it streams), and only then places files and records them, so a refusal installs nothing.
 *
 * @example
 * const client = createClient({ dirs: clientDirectories(process.env, process.platform, homedir()), fetcher: createHttpFetcher(), env: process.env });
 * await client.install({ requests: ['kubecost-lens@^1.2'], lockfile: 'plugindex.lock' });
 */
import type { Clock } from '../index-builder/clock.ts';
import { systemClock } from '../index-builder/clock.ts';
import { TrustError } from '../index-builder/errors.ts';
import { versionBase } from '../index-builder/layout.ts';
import type { ArtifactRecord, PluginDocument, VersionRecord } from '../index-builder/model.ts';
import { sortVersionsDescending } from '../index-builder/versions.ts';
import {
  addRegistry,
  type ClientConfig,
  findRegistry,
  normalizeRegistryUrl,
  type RegistryAuth,
  type RegistryEntry,
  registriesByPriority,
  removeRegistry,
  resolveSecret,
} from './config.ts';
import { readIfExists, readSecretFileSync, readTextIfExists } from './disk/atomic.ts';
import { ContentCache } from './disk/cache.ts';
import { ClientState, InstallTree, readLockfile, type TrustRecord, writeLockfile } from './disk/state.ts';
import { ClientError } from './errors.ts';
import type { Credentials, Endpoint, Fetcher } from './fetcher.ts';
import { UNLISTED_LIMITS } from './fetcher.ts';
import {
  type InstalledFile,
  type InstalledVersion,
  withEnabled,
  withInstalledVersion,
  withoutInstalled,
  withVerification,
} from './installed.ts';
import {
  EMPTY_LOCKFILE,
  type LockChange,
  type LockedPlugin,
  type Lockfile,
  lockChanges,
  lockedPluginFrom,
  withoutPlugin,
  withPlugin,
} from './lockfile.ts';
import type { ClientDirectories } from './paths.ts';
import {
  hostPlatform,
  type Platform,
  parseRequest,
  platformKey,
  type Resolution,
  resolveLocked,
  resolvePlugin,
} from './resolve.ts';
import { type SearchHit, type SearchQuery, searchPlugins } from './search.ts';
import type { RegistrySession, SnapshotReport, VerifiedManifest } from './session.ts';

/**
 * The signature checks (openpgp) and the session over them, loaded when a registry is first read: an
 * install that already matches its lock never reads one, and starts without their ~80 ms.
 */
const trustModules = () =>
  Promise.all([
    import('../index-builder/signing.ts'),
    import('../index-builder/verify.ts'),
    import('./session.ts'),
  ]).then(([signing, verify, session]) => ({
    readPublicKey: signing.readPublicKey,
    verifyManifest: verify.verifyManifest,
    RegistrySession: session.RegistrySession,
  }));

export interface ClientOptions {
  readonly dirs: ClientDirectories;
  readonly fetcher: Fetcher;
  /** For secrets named `${ENV}` in the configuration. */
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly clock?: Clock;
  /** Never touch the network. */
  readonly offline?: boolean;
  /** How long a snapshot just checked with its registry is used without asking again (default 60 s). */
  readonly freshForMs?: number;
  /** The platform installs default to (default: this machine's). */
  readonly platform?: Platform;
  /** Download progress, from the signed sizes (a command draws it; a host may ignore it). */
  readonly onProgress?: (event: ProgressEvent) => void;
}

export interface ProgressEvent {
  readonly name: string;
  readonly received: number;
  readonly total: number;
}

/** `registry add`: how the key is pinned. */
export type KeyPin =
  | { readonly armored: string }
  | { readonly fingerprint: string }
  | { readonly trustOnFirstUse: true };

export interface AddRegistryOptions {
  readonly name: string;
  readonly url: string;
  readonly pin: KeyPin;
  readonly priority?: number;
  readonly mirrors?: readonly string[];
  readonly caFile?: string;
  readonly timeoutSeconds?: number;
  readonly auth?: RegistryAuth;
  readonly force?: boolean;
}

export interface AddRegistryResult {
  readonly change: 'added' | 'unchanged' | 'replaced';
  readonly fingerprint: string;
  readonly generation: number;
  /** True when the key was taken from the registry itself (trust on first use). */
  readonly trustedOnFirstUse: boolean;
}

export interface RegistryStatus {
  readonly entry: RegistryEntry;
  /** The highest generation accepted from it, if it was ever read. */
  readonly generation?: number;
}

export interface UpdateReport {
  readonly name: string;
  readonly report?: SnapshotReport;
  /** Why this registry could not be updated (the others still were). */
  readonly error?: Error;
}

export interface InfoResult {
  readonly registry: string;
  readonly fingerprint: string;
  readonly document: PluginDocument;
  /** The version the spec resolves to on the platform, when a spec was given. */
  readonly resolution?: Resolution;
}

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
}

export interface VerifyFinding {
  readonly name: string;
  readonly version: string;
  readonly ok: boolean;
  /** The refusal's code and message when not ok. */
  readonly code?: string;
  readonly message?: string;
}

/** A target of one install: what was asked, and what the lock holds for it. */
interface Target {
  readonly name: string;
  readonly spec: string;
  readonly locked?: LockedPlugin;
}

/** One target resolved and verified, ready to download and place. */
interface Planned {
  readonly target: Target;
  readonly session: RegistrySession;
  readonly resolution: Resolution;
  readonly manifest: VerifiedManifest;
  readonly entry: LockedPlugin;
}

export interface PlugindexClient {
  addRegistry(options: AddRegistryOptions): Promise<AddRegistryResult>;
  listRegistries(): Promise<RegistryStatus[]>;
  removeRegistry(name: string): Promise<void>;
  updateRegistries(names: readonly string[]): Promise<UpdateReport[]>;
  search(query: SearchQuery & { readonly registry?: string }): Promise<SearchHit[]>;
  info(
    request: string,
    options?: { registry?: string; platform?: Platform; apiVersion?: string },
  ): Promise<InfoResult>;
  install(options: InstallOptions): Promise<InstallResult>;
  list(options: {
    dir?: string;
    outdated?: boolean;
    lockfile?: string;
    apiVersion?: string;
  }): Promise<ListedPlugin[]>;
  remove(
    request: string,
    options: { dir?: string; clean?: boolean; lockfile?: string },
  ): Promise<readonly string[]>;
  setEnabled(name: string, enabled: boolean, options: { dir?: string }): Promise<void>;
  verifyInstalled(options: { dir?: string; lockfile?: string }): Promise<VerifyFinding[]>;
  installed(options: { dir?: string }): Promise<InstalledFile>;
  close(): Promise<void>;
}

const DEFAULT_TIMEOUT_SECONDS = 30;
/** A snapshot checked this recently is not asked for again (`registry update` then `install`: one request). */
const DEFAULT_FRESH_MS = 60_000;

export function createClient(options: ClientOptions): PlugindexClient {
  return new Client(options);
}

class Client implements PlugindexClient {
  readonly #options: ClientOptions;
  readonly #state: ClientState;
  readonly #cache: ContentCache;
  readonly #clock: Clock;
  readonly #sessions = new Map<string, Promise<RegistrySession>>();
  #config: Promise<ClientConfig> | undefined;

  constructor(options: ClientOptions) {
    this.#options = options;
    this.#state = new ClientState(options.dirs);
    this.#cache = new ContentCache(options.dirs.cache);
    this.#clock = options.clock ?? systemClock;
  }

  close(): Promise<void> {
    return this.#options.fetcher.close();
  }

  #config_(): Promise<ClientConfig> {
    this.#config ??= this.#state.readConfig();
    return this.#config;
  }

  #tree(dir: string | undefined): InstallTree {
    return new InstallTree(dir ?? this.#state.defaultInstallDir);
  }

  get #platform(): Platform {
    return this.#options.platform ?? hostPlatform(process.platform, process.arch);
  }

  async #endpoint(entry: RegistryEntry): Promise<Endpoint> {
    const ca = entry.ca_file ? await readTextIfExists(entry.ca_file) : undefined;
    if (entry.ca_file && ca === undefined)
      throw new ClientError(
        'CLIENT_CONFIG_INVALID',
        `${entry.name}: ca_file ${entry.ca_file} does not exist`,
      );
    const credentials = entry.auth ? this.#credentials(entry.auth) : undefined;
    return {
      name: entry.name,
      bases: [entry.url, ...entry.mirrors],
      timeoutMs: (entry.timeout_seconds ?? DEFAULT_TIMEOUT_SECONDS) * 1000,
      ...(ca ? { ca } : {}),
      ...(credentials ? { credentials } : {}),
    };
  }

  #credentials(auth: RegistryAuth): Credentials {
    const secret = (ref: string): string => resolveSecret(ref, this.#options.env, readSecretFileSync);
    switch (auth.type) {
      case 'bearer_token':
        return { type: 'bearer_token', token: secret(auth.bearer_token) };
      case 'api_key':
        return { type: 'api_key', key: secret(auth.api_key), header: auth.header ?? 'X-API-Key' };
      case 'basic_auth':
        return { type: 'basic_auth', username: auth.username, password: secret(auth.password) };
    }
  }

  /** The session of a configured registry, opened once per client. */
  #session(entry: RegistryEntry): Promise<RegistrySession> {
    let session = this.#sessions.get(entry.name);
    if (!session) {
      session = this.#newSession(entry);
      this.#sessions.set(entry.name, session);
    }
    return session;
  }

  async #newSession(entry: RegistryEntry): Promise<RegistrySession> {
    const trust = await this.#state.trust(entry.name);
    if (!trust || trust.fingerprint !== entry.key_fingerprint)
      throw new TrustError(
        'SNAPSHOT_WRONG_KEY',
        `${entry.name}: no pinned key with fingerprint ${entry.key_fingerprint} in ${this.#state.dirs.data}; run \`plugindex registry add ${entry.name} ${entry.url} --force\` with its key`,
      );
    const { readPublicKey, RegistrySession } = await trustModules();
    const key = await readPublicKey(trust.armoredKey);
    return new RegistrySession(entry, await this.#endpoint(entry), key.key, trust, {
      fetcher: this.#options.fetcher,
      cache: this.#cache,
      recordTrust: (record) => this.#state.writeTrust(entry.name, record),
      clock: this.#clock,
      offline: this.#options.offline ?? false,
      freshForMs: this.#options.freshForMs ?? DEFAULT_FRESH_MS,
    });
  }

  // --- registries --------------------------------------------------------------------------------------

  async addRegistry(options: AddRegistryOptions): Promise<AddRegistryResult> {
    const url = normalizeRegistryUrl(options.url);
    const mirrors = (options.mirrors ?? []).map(normalizeRegistryUrl);
    const draft: RegistryEntry = {
      name: options.name,
      url,
      priority: options.priority ?? 1,
      key_fingerprint: '',
      mirrors,
      ...(options.caFile ? { ca_file: options.caFile } : {}),
      ...(options.timeoutSeconds ? { timeout_seconds: options.timeoutSeconds } : {}),
      ...(options.auth ? { auth: options.auth } : {}),
    };
    const endpoint = await this.#endpoint(draft);
    const pin = options.pin;
    let armored: string;
    if ('armored' in pin) armored = pin.armored;
    else {
      const response = await this.#options.fetcher.document(endpoint, {
        path: 'keys/registry.asc',
        maxBytes: UNLISTED_LIMITS.key,
      });
      if (response.status !== 200) throw new ClientError('FETCH_FAILED', `${url}/keys/registry.asc: no body`);
      armored = new TextDecoder().decode(response.bytes);
    }
    const { readPublicKey, RegistrySession } = await trustModules();
    const key = await readPublicKey(armored);
    if ('fingerprint' in pin) {
      const wanted = pin.fingerprint.replace(/\s+/g, '').toUpperCase();
      if (key.fingerprint !== wanted)
        throw new TrustError(
          'SNAPSHOT_WRONG_KEY',
          `${url}/keys/registry.asc is key ${key.fingerprint}, not the ${wanted} you asked to pin`,
        );
    }
    const entry: RegistryEntry = { ...draft, key_fingerprint: key.fingerprint };
    const trust = { fingerprint: key.fingerprint, armoredKey: key.armored };
    let checked: TrustRecord | undefined;
    // Read the registry through the key before anything is saved: a wrong URL or key saves nothing.
    const session = new RegistrySession(entry, endpoint, key.key, trust, {
      fetcher: this.#options.fetcher,
      cache: this.#cache,
      // Nothing is kept until the configuration takes the registry (below).
      recordTrust: async (record) => {
        checked = record;
      },
      clock: this.#clock,
      offline: false,
      freshForMs: 0,
    });
    const report = await session.open({ refresh: true });
    const change = await this.#state.editConfig(async (config) => {
      const added = addRegistry(config, entry, { force: options.force ?? false });
      if (added.change !== 'unchanged' || !(await this.#state.trust(entry.name)))
        await this.#state.writeTrust(
          entry.name,
          checked ?? { ...trust, highestGeneration: report.generation },
        );
      return { config: added.config, result: added.change };
    });
    this.#config = undefined;
    return {
      change,
      fingerprint: key.fingerprint,
      generation: report.generation,
      trustedOnFirstUse: 'trustOnFirstUse' in pin,
    };
  }

  async listRegistries(): Promise<RegistryStatus[]> {
    const config = await this.#config_();
    return Promise.all(
      registriesByPriority(config).map(async (entry) => {
        const trust = await this.#state.trust(entry.name);
        return {
          entry,
          ...(trust?.highestGeneration !== undefined ? { generation: trust.highestGeneration } : {}),
        };
      }),
    );
  }

  async removeRegistry(name: string): Promise<void> {
    const url = await this.#state.editConfig(async (config) => {
      const entry = findRegistry(config, name);
      return { config: removeRegistry(config, name), result: entry.url };
    });
    this.#config = undefined;
    await this.#state.removeTrust(name);
    await this.#cache.removeRegistry(url);
  }

  /** Refreshes each registry (Helm's `repo update`): one failing does not stop the others. */
  async updateRegistries(names: readonly string[]): Promise<UpdateReport[]> {
    const config = await this.#config_();
    const entries = names.length ? names.map((n) => findRegistry(config, n)) : registriesByPriority(config);
    return Promise.all(
      entries.map(async (entry): Promise<UpdateReport> => {
        try {
          const session = await this.#session(entry);
          return { name: entry.name, report: await session.open({ refresh: true }) };
        } catch (error) {
          if (!(error instanceof ClientError || error instanceof TrustError)) throw error;
          return { name: entry.name, error };
        }
      }),
    );
  }

  async #entries(registry: string | undefined): Promise<RegistryEntry[]> {
    const config = await this.#config_();
    if (registry !== undefined) return [findRegistry(config, registry)];
    const entries = registriesByPriority(config);
    if (entries.length === 0)
      throw new ClientError(
        'REGISTRY_NOT_FOUND',
        'no registry is configured: add one with `plugindex registry add NAME URL --key FILE`',
      );
    return entries;
  }

  // --- reading -----------------------------------------------------------------------------------------

  async search(query: SearchQuery & { readonly registry?: string }): Promise<SearchHit[]> {
    const entries = await this.#entries(query.registry);
    const sources = await Promise.all(
      entries.map(async (entry) => {
        const session = await this.#session(entry);
        const doc = await session.searchDocument();
        return { registry: entry.name, priority: entry.priority, entries: doc.plugins };
      }),
    );
    return searchPlugins(sources, query);
  }

  /** The first registry by priority that lists the plugin (or the one named). */
  async #find(
    name: string,
    registry: string | undefined,
  ): Promise<{ session: RegistrySession; document: PluginDocument }> {
    const entries = await this.#entries(registry);
    for (const entry of entries) {
      const session = await this.#session(entry);
      const document = await session.pluginDocument(name);
      if (document) return { session, document };
    }
    throw new ClientError(
      'PLUGIN_NOT_FOUND',
      `no plugin named ${name} in ${entries.map((e) => `${e.name} (${e.url})`).join(', ')}`,
    );
  }

  async info(
    request: string,
    options: { registry?: string; platform?: Platform; apiVersion?: string } = {},
  ): Promise<InfoResult> {
    const { name, spec } = parseRequest(request);
    const { session, document } = await this.#find(name, options.registry);
    const explicit = request.includes('@');
    return {
      registry: session.entry.name,
      fingerprint: session.trust.fingerprint,
      document,
      ...(explicit
        ? {
            resolution: resolvePlugin(document, {
              spec,
              platform: options.platform ?? this.#platform,
              apiVersion: options.apiVersion ?? 'v1',
            }),
          }
        : {}),
    };
  }

  // --- installing --------------------------------------------------------------------------------------

  async install(options: InstallOptions): Promise<InstallResult> {
    const platform = options.platform ?? this.#platform;
    const tree = this.#tree(options.dir);
    const before = await readLockfile(options.lockfile);
    const targets = this.#targets(options, before);
    if (options.locked && !before)
      throw new ClientError(
        'LOCK_OUT_OF_SYNC',
        `${options.lockfile} does not exist, and --locked/--frozen forbid creating it (run \`plugindex install\` without them once)`,
      );

    // Fast path (an installed tree that already is the lock): nothing to fetch, nothing to verify online.
    if (!options.upgrade && targets.every((t) => t.locked)) {
      const unchanged = await this.#alreadyInstalled(tree, targets, platform);
      if (unchanged) return { items: unchanged, lockfileChanged: false, lockChanges: [] };
    }

    // 1. Resolve and verify every target (and compute the lock) before anything is written.
    const planned: Planned[] = [];
    for (const target of targets)
      planned.push(await this.#plan(target, options, platform, before ?? EMPTY_LOCKFILE));
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

    // 2. Download what the cache lacks (each artifact verified while it streams), then 3. place and record.
    const items: InstalledItem[] = [];
    for (const plan of planned) await this.#download(plan);
    for (const plan of planned) items.push(await this.#place(tree, plan, platform));
    // An update replaces: the versions it moved away from go, once the new one is in place.
    if (options.upgrade) for (const item of items) await this.#removeOtherVersions(tree, item);
    const lockfileChanged = await writeLockfile(options.lockfile, lock);
    return { items, lockfileChanged, lockChanges: changes };
  }

  #targets(options: InstallOptions, lock: Lockfile | undefined): Target[] {
    const locked = (name: string): LockedPlugin | undefined =>
      lock && Object.hasOwn(lock.plugins, name) ? lock.plugins[name] : undefined;
    if (options.requests.length === 0) {
      if (!lock)
        throw new ClientError(
          'LOCK_OUT_OF_SYNC',
          `nothing to install: no names given and no ${options.lockfile}`,
        );
      return Object.entries(lock.plugins).map(([name, entry]) => ({
        name,
        spec: entry.requested,
        ...(options.upgrade ? {} : { locked: entry }),
      }));
    }
    return options.requests.map((request) => {
      const { name, spec } = parseRequest(request);
      const entry = locked(name);
      const explicit = request.includes('@');
      // The lock decides unless asked to upgrade or asked for another spec than the one it was made for.
      const keep = entry && !options.upgrade && (!explicit || entry.requested === spec);
      return { name, spec: explicit ? spec : (entry?.requested ?? spec), ...(keep ? { locked: entry } : {}) };
    });
  }

  async #removeOtherVersions(tree: InstallTree, item: InstalledItem): Promise<void> {
    const others = await tree.update(async (installed) => {
      const versions = Object.keys(installed.plugins[item.name]?.versions ?? {}).filter(
        (v) => v !== item.version,
      );
      let next = installed;
      for (const version of versions)
        next = withoutInstalled(next, item.name, version, compareVersions).installed;
      return { installed: next, result: versions };
    });
    for (const version of others) await tree.removeVersion(item.name, version);
  }

  async #alreadyInstalled(
    tree: InstallTree,
    targets: readonly Target[],
    platform: Platform,
  ): Promise<InstalledItem[] | undefined> {
    const installed = await tree.read();
    const key = platformKey(platform);
    const items: InstalledItem[] = [];
    for (const target of targets) {
      const entry = target.locked as LockedPlugin;
      const record = installed.plugins[target.name]?.versions[entry.version];
      const artifact = record?.artifacts[key];
      const lockedArtifact = entry.artifacts[key];
      if (
        !record ||
        !artifact ||
        !lockedArtifact ||
        record.manifest_sha256 !== entry.manifest_sha256 ||
        artifact.sha256 !== lockedArtifact.sha256 ||
        installed.plugins[target.name]?.current !== entry.version
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

  async #plan(target: Target, options: InstallOptions, platform: Platform, lock: Lockfile): Promise<Planned> {
    const registry = target.locked?.registry ?? options.registry;
    const { session, document } = await this.#find(target.name, registry);
    let resolution: Resolution;
    if (target.locked) {
      this.#checkLockedRegistry(lock, session, options.lockfile);
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
  #checkLockedRegistry(lock: Lockfile, session: RegistrySession, lockfile: string): void {
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

  async #download(plan: Planned): Promise<void> {
    const artifact = plan.resolution.artifact;
    if (await this.#cache.hasBlob(artifact.sha256, artifact.size_bytes)) return;
    const name = `${plan.target.name}@${plan.resolution.version.version}`;
    if (this.#options.offline)
      throw new ClientError(
        'OFFLINE_MISSING',
        `${name} ${artifact.os}/${artifact.arch} (sha256 ${artifact.sha256}) is not cached, and --offline forbids downloading it`,
      );
    const url = artifactUrl(plan.session.entry.url, plan.target.name, plan.resolution.version, artifact);
    const download = await this.#options.fetcher.download(plan.session.endpoint, {
      url,
      maxBytes: artifact.size_bytes,
    });
    const progress = this.#options.onProgress;
    await this.#cache.writeBlob({
      sha256: artifact.sha256,
      size: artifact.size_bytes,
      url: download.url,
      body: download.body,
      ...(progress
        ? { onProgress: (received: number) => progress({ name, received, total: artifact.size_bytes }) }
        : {}),
    });
  }

  async #place(tree: InstallTree, plan: Planned, platform: Platform): Promise<InstalledItem> {
    const { name } = plan.target;
    const version = plan.resolution.version;
    const artifact = plan.resolution.artifact;
    const key = platformKey(platform);
    const relative = `${name}/${version.version}/${key}/${artifactFileName(name, artifact)}`;
    await tree.placeExecutable(relative, this.#cache.readBlob(artifact.sha256), {
      sha256: artifact.sha256,
      size: artifact.size_bytes,
    });
    // The signed manifest where the spec's filesystem discovery looks for it, its signature beside it.
    await tree.placeFile(`${name}/${version.version}/manifest.json.asc`, plan.manifest.signature);
    await tree.placeFile(`${name}/${version.version}/manifest.json`, plan.manifest.bytes);
    const record: InstalledVersion = {
      registry: plan.session.entry.name,
      registry_key: plan.session.trust.fingerprint,
      manifest_sha256: version.manifest_sha256,
      publisher: version.publisher,
      installed: this.#clock.now().toISOString(),
      verified: this.#clock.now().toISOString(),
      artifacts: { [key]: { path: relative, sha256: artifact.sha256, size: artifact.size_bytes } },
      ...(version.yanked ? { yanked: true } : {}),
      ...(version.deprecated ? { deprecated: true } : {}),
    };
    await tree.update(async (installed) => ({
      installed: withInstalledVersion(installed, name, version.version, record),
      result: undefined,
    }));
    return {
      name,
      version: version.version,
      registry: plan.session.entry.name,
      platform: key,
      path: tree.path(relative),
      warnings: plan.resolution.warnings,
      unchanged: false,
    };
  }

  // --- the installed tree ------------------------------------------------------------------------------

  installed(options: { dir?: string }): Promise<InstalledFile> {
    return this.#tree(options.dir).read();
  }

  async list(options: {
    dir?: string;
    outdated?: boolean;
    lockfile?: string;
    apiVersion?: string;
  }): Promise<ListedPlugin[]> {
    const installed = await this.#tree(options.dir).read();
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
      const { document } = await this.#find(name, current.registry);
      const requested = lock?.plugins[name]?.requested ?? 'latest';
      const versionNow = document.versions.find((v) => v.version === plugin.current);
      let wanted: string | undefined;
      try {
        wanted = resolvePlugin(document, {
          spec: requested,
          platform: this.#platform,
          apiVersion: options.apiVersion ?? 'v1',
        }).version.version;
      } catch (error) {
        if (!(error instanceof ClientError)) throw error;
      }
      rows.push({
        ...row,
        yanked: versionNow?.yanked ?? row.yanked,
        deprecated: versionNow?.deprecated ?? row.deprecated,
        ...(wanted ? { wanted } : {}),
        latest: document.latest_version,
      });
    }
    return rows;
  }

  async remove(
    request: string,
    options: { dir?: string; clean?: boolean; lockfile?: string },
  ): Promise<readonly string[]> {
    const at = request.lastIndexOf('@');
    const name = at > 0 ? request.slice(0, at) : request;
    const version = at > 0 ? request.slice(at + 1) : undefined;
    const tree = this.#tree(options.dir);
    const removed = await tree.update(async (installed) => {
      const plugin = installed.plugins[name];
      const result = withoutInstalled(installed, name, version, compareVersions);
      const blobs = result.removed.flatMap((v) =>
        Object.values(plugin?.versions[v]?.artifacts ?? {}).map((a) => a.sha256),
      );
      return {
        installed: result.installed,
        result: { versions: result.removed, blobs, gone: !result.installed.plugins[name] },
      };
    });
    for (const v of removed.versions) await tree.removeVersion(name, v);
    if (options.clean) for (const blob of removed.blobs) await this.#cache.removeBlob(blob);
    if (removed.gone && options.lockfile) {
      const lock = await readLockfile(options.lockfile);
      if (lock) await writeLockfile(options.lockfile, withoutPlugin(lock, name));
    }
    return removed.versions;
  }

  async setEnabled(name: string, enabled: boolean, options: { dir?: string }): Promise<void> {
    await this.#tree(options.dir).update(async (installed) => ({
      installed: withEnabled(installed, name, enabled),
      result: undefined,
    }));
  }

  /**
   * Rehashes every installed file against its record and the lock, and rechecks the signature chain that
   * installed it (the manifest beside it, signed by the pinned key, naming the same artifact). Offline.
   */
  async verifyInstalled(options: { dir?: string; lockfile?: string }): Promise<VerifyFinding[]> {
    const tree = this.#tree(options.dir);
    const installed = await tree.read();
    const lock = options.lockfile ? await readLockfile(options.lockfile) : undefined;
    const findings: VerifyFinding[] = [];
    for (const [name, plugin] of Object.entries(installed.plugins)) {
      for (const [version, record] of Object.entries(plugin.versions)) {
        try {
          await this.#verifyOne(tree, name, version, record, lock, options.lockfile ?? '');
          findings.push({ name, version, ok: true });
        } catch (error) {
          if (!(error instanceof ClientError || error instanceof TrustError)) throw error;
          findings.push({ name, version, ok: false, code: error.code, message: error.message });
        }
      }
    }
    // What was found goes into installed.json, where a host reads it.
    const now = this.#clock.now().toISOString();
    await tree.update(async (current) => ({
      installed: findings.reduce(
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

  async #verifyOne(
    tree: InstallTree,
    name: string,
    version: string,
    record: InstalledVersion,
    lock: Lockfile | undefined,
    lockfile: string,
  ): Promise<void> {
    for (const [platform, artifact] of Object.entries(record.artifacts)) {
      const actual = await tree.hashFile(artifact.path);
      if (!actual)
        throw new ClientError(
          'INSTALLED_MODIFIED',
          `${tree.path(artifact.path)} is missing (${name}@${version} ${platform})`,
        );
      if (actual.sha256 !== artifact.sha256 || actual.size !== artifact.size)
        throw new ClientError(
          'INSTALLED_MODIFIED',
          `${tree.path(artifact.path)}: sha256 ${actual.sha256} (${actual.size} bytes), installed as ${artifact.sha256} (${artifact.size} bytes)`,
        );
      const locked = lock?.plugins[name];
      if (locked && locked.version === version) {
        const lockedArtifact = locked.artifacts[platform];
        if (locked.manifest_sha256 !== record.manifest_sha256 || lockedArtifact?.sha256 !== artifact.sha256)
          throw new ClientError(
            'LOCK_MISMATCH',
            `${lockfile}: plugins/${name} locks manifest ${locked.manifest_sha256} and ${platform} ${lockedArtifact?.sha256 ?? '(none)'}, installed are ${record.manifest_sha256} and ${artifact.sha256}`,
          );
      }
    }
    const trust = await this.#state.trust(record.registry);
    if (!trust || trust.fingerprint !== record.registry_key)
      throw new TrustError(
        'SNAPSHOT_WRONG_KEY',
        `${name}@${version} was installed through key ${record.registry_key}, but ${record.registry} is pinned to ${trust?.fingerprint ?? 'nothing'} now`,
      );
    const manifestPath = `${name}/${version}/manifest.json`;
    const manifestBytes = await readIfExists(tree.path(manifestPath));
    const signature = await readTextIfExists(tree.path(`${manifestPath}.asc`));
    if (manifestBytes === undefined || signature === undefined)
      throw new ClientError('INSTALLED_MODIFIED', `${tree.path(manifestPath)} or its .asc is missing`);
    const { readPublicKey, verifyManifest } = await trustModules();
    const key = await readPublicKey(trust.armoredKey);
    await verifyManifest({
      name,
      version: {
        version,
        manifest_sha256: record.manifest_sha256,
        manifest_size: manifestBytes.byteLength,
        artifacts: Object.entries(record.artifacts).map(([platform, a]) => {
          const [os = '', arch = ''] = platform.split('-');
          return { os, arch, sha256: a.sha256 };
        }),
      },
      manifest: manifestBytes,
      signature,
      key: key.key,
      url: tree.path(manifestPath),
    });
  }
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
  if (!artifact.hosted) return artifact.url;
  const base = `/${versionBase(name, version.version)}/`;
  const path = new URL(artifact.url).pathname;
  const at = path.lastIndexOf(base);
  if (at < 0) return artifact.url;
  return `${registryUrl}${path.slice(at)}`;
}

/** The installed file's name: the artifact's own, when it is a safe single segment; else the plugin's. */
function artifactFileName(name: string, artifact: ArtifactRecord): string {
  const last = decodeURIComponent(new URL(artifact.url).pathname.split('/').pop() ?? '');
  return /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/.test(last) ? last : name;
}

function compareVersions(a: string, b: string): number {
  const sorted = sortVersionsDescending([
    { version: a, yanked: false },
    { version: b, yanked: false },
  ]);
  return a === b ? 0 : sorted[0]?.version === a ? 1 : -1;
}
