/**
 * The consumer's composition root (sigstore's `createVerifier`, tuf-js' `Updater`): configuration, trust
 * state, cache and fetcher wired into the operations a host program or the `plugindex` command calls —
 * registries, search, info, install (with the lock file), list, update, remove, enable/disable, verify.
 *
 * Everything that decides lives in the pure modules (config, trusted snapshot, resolve, search, lockfile,
 * installed); the network is client/fetcher.ts, the disk client/disk/. This file wires them: the
 * registries (add, list, remove, update) and reading them (search, info) are here; installing is
 * install.ts and the installed tree's upkeep maintain.ts, both over the `ClientContext` built here.
 *
 * @example
 * const client = createClient({ dirs: clientDirectories(process.env, process.platform, homedir()), fetcher: createHttpFetcher(), env: process.env });
 * await client.install({ requests: ['kubecost-lens@^1.2'], lockfile: 'plugindex.lock' });
 */
import { isSecretKeyText } from '../index-builder/armor.ts';
import type { Clock } from '../index-builder/clock.ts';
import { systemClock } from '../index-builder/clock.ts';
import { sha256Hex } from '../index-builder/digest.ts';
import { TrustError } from '../index-builder/errors.ts';
import { FALCOCTL_INDEX_KEY, REGISTRY_PUBLIC_KEY_KEY, REVOKED_KEYS_KEY } from '../index-builder/layout.ts';
import {
  type Advisory,
  artifactPlatformText,
  type LogHead,
  type PluginDocument,
  type VersionRecord,
} from '../index-builder/model.ts';
import {
  checkSearchQuery,
  type SearchHit,
  type SearchQuery,
  searchPlugins,
} from '../index-builder/search.ts';
import {
  type AuditFinding,
  type AuditSkipped,
  type AuditState,
  auditInstalled,
  auditPlugin,
  type InstalledAudit,
  type PluginHistory,
} from './audit.ts';
import {
  addRegistry,
  type ClientConfig,
  DEFAULT_API_KEY_HEADER,
  DEFAULT_TIMEOUT_SECONDS,
  findRegistry,
  normalizeRegistryUrl,
  type RegistryAuth,
  type RegistryEntry,
  redactUrl,
  registriesByPriority,
  registryIdentity,
  registryUrlProblem,
  removeRegistry,
  resolveSecret,
} from './config.ts';
import { type ClientContext, loadTrust, type ProgressEvent, readPinnedKey } from './context.ts';
import { readSecretFileSync, readTextIfExists } from './disk/atomic.ts';
import { ContentCache } from './disk/cache.ts';
import { ClientState, InstallTree, keptThenFailedAll, setTrustName, type TrustRecord } from './disk/state.ts';
import { ClientError, pinAgainCommand, pinAgainRemedy, servedSecretKey } from './errors.ts';
import type { Credentials, Endpoint, Fetcher, OciCredentials } from './fetcher.ts';
import { fetchBody, UNLISTED_LIMITS, urlProblem } from './fetcher.ts';
import { type InstalledItem, type InstallOptions, type InstallResult, installPlugins } from './install.ts';
import type { InstalledFile } from './installed.ts';
import type { ChainLink } from './key-chain.ts';
import { advisoryNotes } from './lifecycle.ts';
import {
  cleanOrphans,
  type ListedPlugin,
  listInstalled,
  type OrphanCleanReport,
  readInstalled,
  removeInstalled,
  setEnabled,
  type VerifyFinding,
  verifyInstalled,
} from './maintain.ts';
import type { ClientDirectories } from './paths.ts';
import type { CleanReport, DiscoveryReport, SetDiff, SetInstallOptions } from './plugin-set.ts';
import {
  artifactFor,
  hostLibc,
  hostPlatform,
  nearestPluginName,
  type Platform,
  parseRequest,
  type Resolution,
  resolvePlugin,
} from './resolve.ts';
import type { KeptThenFailed, RegistrySession, SnapshotReport } from './session.ts';
import type { Source } from './source.ts';

export type {
  AuditFinding,
  AuditSkipped,
  AuditState,
  CleanReport,
  DiscoveryReport,
  InstalledAudit,
  InstalledItem,
  InstallOptions,
  InstallResult,
  ListedPlugin,
  OrphanCleanReport,
  PluginHistory,
  ProgressEvent,
  SetDiff,
  SetInstallOptions,
  VerifyFinding,
};

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
  /** The user's home folder, for `~/.docker/config.json` (default: `HOME` of `env`). */
  readonly home?: string;
  /** Download progress, from the signed sizes (a command draws it; a host may ignore it). */
  readonly onProgress?: (event: ProgressEvent) => void;
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
  /** Set when the key given was an earlier key of the registry's, and its rotations were followed. */
  readonly rotated?: SnapshotReport['rotated'];
  /** The registry its snapshots name (their `registry`), pinned: a later snapshot must name it too. */
  readonly registry: string;
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

/**
 * The registry `resetRegistryTrust` forgets what was accepted from: a configured registry by its name, or
 * (a plugin set's, or one not configured) by its URL and the key pinned for it, reached as `registry add`
 * would reach it.
 */
export type ResetTrustTarget =
  | { readonly name: string }
  | {
      readonly url: string;
      readonly armoredKey: string;
      readonly mirrors?: readonly string[];
      readonly caFile?: string;
      readonly timeoutSeconds?: number;
      readonly auth?: RegistryAuth;
    };

export interface ResetTrustResult {
  /** The registry as its snapshots name it. */
  readonly registry: string;
  /** The key the snapshot taken is signed by (the one pinned, or one it rotated to). */
  readonly fingerprint: string;
  /** The snapshot taken as the new floor, and its log head. */
  readonly generation: number;
  readonly log?: LogHead;
  /** Each name of the registry whose floor was reset, and what it had accepted. */
  readonly forgotten: readonly {
    readonly name: string;
    readonly generation?: number;
    readonly log?: LogHead;
  }[];
}

export interface InfoResult {
  readonly registry: string;
  readonly fingerprint: string;
  readonly document: PluginDocument;
  /**
   * The version the spec resolves to on the platform, when a spec was given, with the advisories affecting
   * it (worst first; each among the warnings, as install warns of it or refuses it).
   */
  readonly resolution?: Resolution & { readonly advisories: readonly Advisory[] };
}

/** What a reference resolves to: the request to install and where from. */
export interface ReferenceTarget {
  readonly request: string;
  readonly registry: string;
  /** A source beyond the configured registries (a manifest URL verified by a given key). */
  readonly source?: Source;
}

export interface PlugindexClient {
  addRegistry(options: AddRegistryOptions): Promise<AddRegistryResult>;
  listRegistries(): Promise<RegistryStatus[]>;
  /**
   * `registry remove`: the entry, its trust folder (what it knew of keys kept) and cache. `force`: remove a
   * trust record that does not read, keeping what of it still does (refused otherwise, TRUST_STATE_INVALID).
   */
  removeRegistry(name: string, options?: { readonly force?: boolean }): Promise<void>;
  updateRegistries(names: readonly string[]): Promise<UpdateReport[]>;
  /** `registry reset-trust`: every name of a registry rebuilt at a lower generation under the same key. */
  resetRegistryTrust(target: ResetTrustTarget): Promise<ResetTrustResult>;
  /**
   * Every configured registry's (or `registry`'s) verified search.json, ranked. Its parameters are read by
   * the rule `GET /search` reads them by (index-builder/search.ts `readSearchParameters`).
   * @throws SearchQueryError (SEARCH_PARAMETER_*) for a filter the schema does not know, too many words...
   */
  search(query: SearchQuery & { readonly registry?: string }): Promise<SearchHit[]>;
  info(
    request: string,
    options?: { registry?: string; platform?: Platform; apiVersion?: string },
  ): Promise<InfoResult>;
  /**
   * The registry's verified `keys/revoked.json` (the publisher keys its operator revoked), as its snapshot
   * lists it; undefined when that registry publishes none.
   */
  revokedKeys(registry: string): Promise<Uint8Array | undefined>;
  install(options: InstallOptions): Promise<InstallResult>;
  /**
   * What a command-line reference that is not `NAME[@SPEC]` means, as install options: a manifest URL
   * (under a configured registry: that registry; elsewhere: verified by `key`, a publisher's or a
   * registry's armored public key), `NAME:TAG`, or an OCI reference (`REGISTRY/REPO:TAG`, `…@sha256:…`)
   * looked up in the configured registries' falcoctl indexes. Undefined for a plain request.
   */
  reference(text: string, options?: { readonly key?: string }): Promise<ReferenceTarget | undefined>;
  /** `install -c FILE`: exactly a plugin set, locked beside the file (plugin-set.ts). */
  installSet(
    file: string,
    options: SetInstallOptions,
  ): Promise<InstallResult & { readonly lockfile: string }>;
  /** `diff -c FILE`: what installing the set would change. */
  diffSet(file: string, options: SetInstallOptions): Promise<SetDiff>;
  /**
   * The spec's filesystem discovery: plugin folders under the set's `discovery.filesystem.paths` (and its
   * install folders), each verified against every key this client trusts.
   */
  discover(file: string, options: { readonly home: string }): Promise<DiscoveryReport>;
  /** `verify -c FILE`: what the set's folders hold, checked by the keys the set pins. */
  verifySet(file: string, options: { readonly home: string }): Promise<VerifyFinding[]>;
  /** `clean -c FILE`: installs the set no longer names, and cached artifacts nothing uses. */
  cleanSet(file: string, options: SetInstallOptions): Promise<CleanReport>;
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
  verifyInstalled(options: {
    dir?: string;
    lockfile?: string;
    namedLockfile?: string;
  }): Promise<VerifyFinding[]>;
  /**
   * `clean --orphans`: the claims of plugin sets whose file is gone dropped from the install folder's
   * versions, each version no one else claims removed.
   */
  cleanOrphans(options: { dir?: string }): Promise<OrphanCleanReport>;
  /** `audit`: the advisories affecting every installed version, by its registry's current documents. */
  auditInstalled(options: { dir?: string }): Promise<InstalledAudit>;
  /** `audit NAME`: the plugin's history from its registry's log (the whole chain checked) and advisories. */
  auditPlugin(name: string, options: { registry?: string }): Promise<PluginHistory>;
  installed(options: { dir?: string }): Promise<InstalledFile>;
  close(): Promise<void>;
}

/**
 * True for text `reference` takes as a manifest URL (a scheme, then `//`), not a name or an OCI reference.
 * @example isUrlReference('https://r.example/plugins/p/1.0.0/manifest.json') // true
 */
function isUrlReference(text: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(text);
}

/**
 * Reads a command-line reference by the rule `reference` reads it with, touching nothing (no registry, no
 * file): a manifest URL's form (`refuseManifestUrl`), or a name, `NAME[@SPEC]`, `NAME:TAG` or an OCI
 * reference (oci.ts `parseArtifactReference`). So a command refuses every text typed wrong before it reads
 * a registry for any other: each read in its turn, an OCI reference no registry lists (PLUGIN_NOT_FOUND)
 * hid the name typed wrong after it.
 * @throws ClientError REQUEST_INVALID as `reference` would.
 */
export async function checkReference(text: string): Promise<void> {
  if (isUrlReference(text)) return refuseManifestUrl(text);
  const { parseArtifactReference } = await import('./oci.ts');
  parseArtifactReference(text);
}

/**
 * A manifest URL's form, refused (REQUEST_INVALID) before anything names or reads it: no URL, credentials, a
 * query or fragment, a scheme the fetcher does not read, a folder.
 */
function refuseManifestUrl(url: string): void {
  // Checked before anything names it: credentials or a `?token=` were printed whole in every refusal
  // below, and one no parser takes was a TypeError once a key was given. A manifest URL has none of them
  // (credentials go in the registry configuration; a query would be appended to, not a file's).
  if (!URL.canParse(url)) throw new ClientError('REQUEST_INVALID', `${redactUrl(url)} is not a URL`);
  const parsed = new URL(url);
  if (parsed.username !== '' || parsed.password !== '' || parsed.search !== '' || parsed.hash !== '')
    throw new ClientError(
      'REQUEST_INVALID',
      `${redactUrl(url)}: a manifest URL has no credentials (they belong in the registry configuration), query or fragment`,
    );
  // Its folder is read as the fetcher reads any (https:, http: only on a loopback host, file:, an s3:
  // bucket): said here, before a key is pinned or anything read, where the fetcher refused it later as the
  // source's; in a registry's words when it has some (they name the host). Held to a registry's rule
  // alone, an s3: manifest URL, which the fetcher reads as it reads a set's bucket, was refused. Not an
  // s3: one's: a registry's words are that no s3: URL is allowed, where its bucket's name is what is wrong.
  const manifestFolder = new URL('.', parsed);
  const fetcherProblem = urlProblem(manifestFolder);
  const schemeProblem =
    fetcherProblem === undefined || manifestFolder.protocol === 's3:'
      ? fetcherProblem
      : (registryUrlProblem(manifestFolder.href) ?? fetcherProblem);
  if (schemeProblem !== undefined)
    throw new ClientError('REQUEST_INVALID', `${redactUrl(url)}: ${schemeProblem}`);
  if (parsed.pathname.endsWith('/'))
    throw new ClientError('REQUEST_INVALID', `${redactUrl(url)} is a folder, not the URL of a manifest file`);
}

/** A snapshot checked this recently is not asked for again (`registry update` then `install`: one request). */
const DEFAULT_FRESH_MS = 60_000;

export function createClient(options: ClientOptions): PlugindexClient {
  return new Client(options);
}

/**
 * This Linux host's C library (resolve.ts hostLibc), from Node's diagnostic report; undefined off Linux.
 * The report is taken without its network section: with it, Node looks up the name of each end of every
 * open socket (a reverse DNS lookup each, blocking the process), and the platform is read once a registry's
 * connections are open and kept alive (`info`, `list --outdated`), so a resolver that does not answer (an
 * offline network, a mirror on an address no DNS names) held the command for its timeout per socket.
 */
function thisHostLibc(): ReturnType<typeof hostLibc> {
  if (process.platform !== 'linux') return undefined;
  // Node 20.13 and later read it; the type definitions this project builds with do not name it yet.
  const report = process.report as NodeJS.ProcessReport & { excludeNetwork?: boolean };
  const before = report.excludeNetwork;
  report.excludeNetwork = true;
  try {
    return hostLibc(process.platform, report.getReport());
  } finally {
    report.excludeNetwork = before;
  }
}

class Client implements PlugindexClient {
  readonly #options: ClientOptions;
  readonly #state: ClientState;
  readonly #cache: ContentCache;
  readonly #clock: Clock;
  readonly #sessions = new Map<string, Promise<RegistrySession>>();
  /** `ClientContext.revokedKeys`, by registry, the URL reached, key held and the keys held before it. */
  readonly #revoked = new Map<string, Promise<readonly ChainLink[]>>();
  /** The rotations read this run to learn what an older client's chain lacks (`SessionDeps.rotationsRead`). */
  readonly #rotationsRead = new Map<string, Promise<Uint8Array | undefined>>();
  #config: Promise<ClientConfig> | undefined;
  /** This machine's platform, its C library read once (a diagnostic report takes a few milliseconds). */
  #host: Platform | undefined;
  #dockerConfig: Promise<string | undefined> | undefined;
  /** What install.ts and maintain.ts work with. */
  readonly #context: ClientContext;

  constructor(options: ClientOptions) {
    this.#options = options;
    this.#state = new ClientState(options.dirs);
    this.#cache = new ContentCache(options.dirs.cache);
    this.#clock = options.clock ?? systemClock;
    const state = this.#state;
    const client = this;
    this.#context = {
      cache: this.#cache,
      clock: this.#clock,
      offline: options.offline ?? false,
      // Read when an install asks: the host's C library costs a diagnostic report, which a command
      // that installs nothing (list, info, verify) need not make.
      get platform() {
        return client.#platform;
      },
      fetcher: options.fetcher,
      onProgress: options.onProgress,
      tree: (dir) => new InstallTree(dir ?? state.defaultInstallDir),
      find: (name, registry, suggest) => this.#find(name, registry, suggest),
      endpoint: async (registry) => {
        const entry = (await this.#config_()).registries.find((r) => r.name === registry);
        return entry ? this.#endpoint(entry) : undefined;
      },
      trust: (registry) => state.trust(registry),
      endpointOf: (entry) => this.#endpoint(entry),
      writeTrust: async (registry, record) => (await state.keepTrust(registry, record)).failure,
      registryEntry: async (name) => (await this.#config_()).registries.find((r) => r.name === name),
      registryEntries: async () => (await this.#config_()).registries,
      revokedKeys: (trust, reached) => {
        // A record that names no registry (kept before records named theirs, or a plugin set's key never
        // checked here) is told by the URL it is reached at, as `sharedTrust` tells one.
        const registry = trust.registry ?? reached?.[0];
        if (registry === undefined) return Promise.resolve([]);
        // Once per registry, key and chain a command: `verify` asks for every version installed through it.
        // Not per key alone: what is known of it depends on the keys held before (the marks read from the
        // records sharing one, a departure from a stolen key), and a name holding the key through the thief's
        // rotation was judged by another's record holding it pinned itself, its versions passing verify.
        const key = [
          registry,
          (reached ?? []).join(' '),
          trust.fingerprint,
          ...(trust.chain ?? []).map((l) => l.fingerprint),
        ].join('\n');
        let revoked = this.#revoked.get(key);
        if (!revoked) {
          revoked = this.#reachedWithServed(reached).then(async (urls) => {
            const shared = await state.sharedTrust(registry, trust, urls);
            const marks = shared.revoked ?? [];
            // Held through the thief's rotation from a stolen key (followed before any name knew of the
            // theft): what the key held signs counts for nothing either, in a frozen install or verify.
            // Only a chain can so depart: without one, nothing loads the signature checks for it.
            if (marks.length === 0 || (trust.chain ?? []).length === 0) return marks;
            const forked = (await loadTrust()).forkedHeldKey(marks, trust);
            return forked ? [...marks, forked] : marks;
          });
          this.#revoked.set(key, revoked);
        }
        return revoked;
      },
      manifestSource: async (name, url) => {
        const trust = await state.trust(name);
        if (!trust) return undefined;
        const key = { fingerprint: trust.fingerprint, key: await readPinnedKey(trust, name) };
        return (await this.#manifestSource(name, url, key)).source;
      },
      ociCredentials: (reference) => this.#ociCredentials(reference),
      openSession: async (entry, trust, recordTrust, key, whenMoved, whenRolledBack) => {
        const { RegistrySession } = await loadTrust();
        return new RegistrySession(
          entry,
          await this.#endpoint(entry),
          key ?? (await readPinnedKey(trust, entry.name)),
          trust,
          {
            fetcher: options.fetcher,
            cache: this.#cache,
            recordTrust,
            sharedTrust: (registry, keys, reached) => state.sharedTrust(registry, keys, reached),
            rotationsRead: this.#rotationsRead,
            clock: this.#clock,
            offline: options.offline ?? false,
            freshForMs: options.freshForMs ?? DEFAULT_FRESH_MS,
            ...(whenMoved !== undefined ? { whenMoved } : {}),
            ...(whenRolledBack !== undefined ? { whenRolledBack } : {}),
          },
        );
      },
    };
  }

  close(): Promise<void> {
    return this.#options.fetcher.close();
  }

  #config_(): Promise<ClientConfig> {
    this.#config ??= this.#state.readConfig();
    return this.#config;
  }

  get #platform(): Platform {
    if (this.#options.platform) return this.#options.platform;
    this.#host ??= hostPlatform(process.platform, process.arch, thisHostLibc());
    return this.#host;
  }

  async #endpoint(entry: RegistryEntry): Promise<Endpoint> {
    const ca = entry.ca_file ? await readTextIfExists(entry.ca_file) : undefined;
    if (entry.ca_file && ca === undefined)
      throw new ClientError(
        'CLIENT_CONFIG_INVALID',
        `${entry.name}: ca_file ${entry.ca_file} does not exist`,
      );
    // Offline, nothing is sent: a secret that is not there must not stop an install from the cache.
    const credentials = entry.auth && !this.#options.offline ? this.#credentials(entry.auth) : undefined;
    return {
      name: entry.name,
      bases: [entry.url, ...entry.mirrors],
      timeoutMs: (entry.timeout_seconds ?? DEFAULT_TIMEOUT_SECONDS) * 1000,
      ...(ca ? { ca } : {}),
      ...(credentials ? { credentials } : {}),
    };
  }

  /** `docker login`'s credentials for the reference's registry, the file read once per client. */
  async #ociCredentials(reference: string): Promise<OciCredentials | undefined> {
    const [{ dockerConfigPath, ociCredentialsFor }, { parseOciReference }] = await Promise.all([
      import('./oci-auth.ts'),
      import('./oci.ts'),
    ]);
    const file = dockerConfigPath(this.#options.env, this.#options.home ?? this.#options.env.HOME ?? '');
    this.#dockerConfig ??= readTextIfExists(file);
    const text = await this.#dockerConfig;
    return text === undefined
      ? undefined
      : ociCredentialsFor(text, file, parseOciReference(reference).registry);
  }

  #credentials(auth: RegistryAuth): Credentials {
    const secret = (ref: string): string => resolveSecret(ref, this.#options.env, readSecretFileSync);
    switch (auth.type) {
      case 'bearer_token':
        return { type: 'bearer_token', token: secret(auth.bearer_token) };
      case 'api_key':
        return { type: 'api_key', key: secret(auth.api_key), header: auth.header ?? DEFAULT_API_KEY_HEADER };
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
    const trust = await this.#pinnedTrust(entry);
    return this.#context.openSession(entry, trust, async (record) => {
      // The key the record holds once written: a run side by side may have followed a rotation past this one's.
      // A step after the record was written that failed (the trust index's, `keepTrust`) is the session's to
      // throw once it took the record, as the files hold it; the configuration is told first all the same.
      const { fingerprint: held, failure } = await this.#state.keepTrust(entry.name, record);
      if (held === entry.key_fingerprint) return failure;
      // Kept already, so the session takes the record even when the configuration cannot be told: a
      // configuration naming the key rotated from is read as pinned (#pinnedTrust) and named again at the
      // next record, but a session left on that key disagreed with the files until a later update.
      // Both failing, both are told (`keptThenFailedAll`): the index's alone hid a configuration to mend.
      return this.#repin(entry.name, held).then(
        () => failure,
        (error: unknown) => keptThenFailedAll(entry.name, [failure, { keptThenFailed: error }]),
      );
    });
  }

  /** The trust record of a configured registry, pinning the key its configuration names. */
  async #pinnedTrust(entry: RegistryEntry): Promise<TrustRecord> {
    const trust = await this.#state.trust(entry.name);
    // The configuration names the key pinned, or one the pin was rotated from (a run that stopped between
    // keeping the new pin and naming it in the configuration).
    const pinned =
      trust?.fingerprint === entry.key_fingerprint ||
      trust?.chain?.some((link) => link.fingerprint === entry.key_fingerprint) === true;
    if (!trust || !pinned)
      throw new ClientError(
        'REGISTRY_NOT_PINNED',
        `${entry.name}: no pinned key with fingerprint ${entry.key_fingerprint} in ${this.#state.dirs.data}; run ${pinAgainCommand(entry.name, entry.url)}`,
      );
    return trust;
  }

  /** The configuration names the key a rotation led to (after the trust state keeps it). */
  async #repin(name: string, fingerprint: string): Promise<void> {
    await this.#state.editConfig(async (config) => {
      const registries = config.registries.map((r) =>
        r.name === name && r.key_fingerprint !== fingerprint ? { ...r, key_fingerprint: fingerprint } : r,
      );
      const changed = registries.some((r, i) => r !== config.registries[i]);
      return { config: changed ? { ...config, registries } : config, result: undefined };
    });
    this.#config = undefined;
  }

  /** OFFLINE_MISSING for an offline client asked for what only the registry has (`what` says what). */
  #refuseOffline(what: string): void {
    if (this.#options.offline)
      throw new ClientError('OFFLINE_MISSING', `${what}, and --offline forbids fetching it: run it online`);
  }

  // --- registries --------------------------------------------------------------------------------------

  async addRegistry(options: AddRegistryOptions): Promise<AddRegistryResult> {
    // The URLs first: the offline refusal names the URL, and one never taken (credentials, a query) was
    // named whole in it.
    const url = normalizeRegistryUrl(options.url);
    const mirrors = (options.mirrors ?? []).map(normalizeRegistryUrl);
    // Pinning reads the registry's snapshot (the key, its rotations, the floor): a client told never to
    // touch the network refuses rather than read it anyway, as it did.
    this.#refuseOffline(`registry add reads the snapshot of ${url} to pin its key`);
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
      const bytes = await fetchBody(this.#options.fetcher, endpoint, {
        path: REGISTRY_PUBLIC_KEY_KEY,
        maxBytes: UNLISTED_LIMITS.key,
      });
      armored = new TextDecoder().decode(bytes);
    }
    const { readTrustedKey, RegistrySession } = await loadTrust();
    // Refused before anything is pinned: every snapshot a weak or costly key signs would be refused anyway.
    const key = await readTrustedKey(armored, 'the registry key');
    if ('armored' in pin) refuseSecretKey(armored, key, 'the registry key given', 'nothing was pinned');
    else if (isSecretKeyText(armored, key))
      throw servedSecretKey(`${url}/${REGISTRY_PUBLIC_KEY_KEY}`, key.fingerprint);
    if ('fingerprint' in pin) {
      const wanted = pin.fingerprint.replace(/\s+/g, '').toUpperCase();
      if (key.fingerprint !== wanted)
        throw new TrustError(
          'SNAPSHOT_WRONG_KEY',
          `${url}/${REGISTRY_PUBLIC_KEY_KEY} is key ${key.fingerprint}, not the ${wanted} you asked to pin`,
        );
    }
    const given: RegistryEntry = { ...draft, key_fingerprint: key.fingerprint };
    // The same registry added again (another priority, say) keeps the log head it remembers and the highest
    // generation it accepted: a forced re-add must not be a way to take a rewritten history on first use
    // again, nor an older snapshot (a rollback). That holds for a key it rotated from too (one in its
    // chain): the session then starts from the key held, with its chain and rotations, since the rotations
    // count is that key's. Another URL starts afresh but for what is known of the keys (below); another
    // key, afresh.
    const kept = await this.#state.trust(options.name).catch(() => undefined);
    const configured = (await this.#config_()).registries.find((r) => r.name === options.name);
    const lineage =
      kept !== undefined &&
      (kept.fingerprint === key.fingerprint ||
        (kept.chain ?? []).some((l) => l.fingerprint === key.fingerprint));
    const same = lineage && configured?.url === url;
    // Read before this check caches another snapshot at that URL: a record kept before records named their
    // registry has what it knew of keys kept as of the registry it was (`writeTrust`'s `formerRegistry`).
    const formerRegistry =
      kept && configured && kept.registry === undefined
        ? await this.#registryKeptAt(kept, configured.url)
        : undefined;
    // The key held is checked as any pinned key is: one kept from before weak keys were refused is not used.
    const held = lineage ? await readPinnedKey(kept, options.name) : key.key;
    const trust: TrustRecord = same
      ? {
          fingerprint: kept.fingerprint,
          armoredKey: kept.armoredKey,
          ...(kept.highestGeneration !== undefined ? { highestGeneration: kept.highestGeneration } : {}),
          ...(kept.log ? { log: kept.log } : {}),
          ...(kept.chain ? { chain: kept.chain } : {}),
          ...(kept.rotations !== undefined ? { rotations: kept.rotations } : {}),
          // --force takes the name the snapshots give now (a registry that moved); its log and generation
          // are still those kept, so another registry signed by the same key is refused all the same.
          ...(kept.registry !== undefined && !options.force ? { registry: kept.registry } : {}),
        }
      : lineage
        ? // The same keys at another URL (a registry that moved): its floor and log start afresh, as the
          // snapshots there may name another registry, but not what this machine knows of its keys. Replaced
          // by the key alone, the chain went with its compromised marks and retired keys: where this name
          // alone held them, the stolen key's snapshots were taken again, under any name pinning it.
          {
            fingerprint: kept.fingerprint,
            armoredKey: kept.armoredKey,
            ...(kept.chain ? { chain: kept.chain } : {}),
            ...(kept.rotations !== undefined ? { rotations: kept.rotations } : {}),
          }
        : // An unrelated key (another registry's): afresh, floors and all; what the name knew of the keys it
          // held (their departures, a stolen key's mark) is kept by `writeTrust` (`replacing`) as facts
          // about those keys, for a mark dropped let the stolen key sign for any name pinning it again.
          { fingerprint: key.fingerprint, armoredKey: key.armored };
    let checked: TrustRecord | undefined;
    // Read the registry through the key before anything is saved: a wrong URL or key saves nothing.
    const session = new RegistrySession(given, endpoint, held, trust, {
      fetcher: this.#options.fetcher,
      cache: this.#cache,
      // Nothing is kept until the configuration takes the registry (below).
      recordTrust: async (record) => {
        checked = record;
      },
      // A registry first configured here may have been reached before as a plugin set's: held to that too.
      sharedTrust: (registry, keys, reached) => this.#state.sharedTrust(registry, keys, reached),
      // Not configured yet (or configured with what this replaces): told by what is being added.
      whenRolledBack: `plugindex registry reset-trust ${url} --key FILE (the key given here)`,
      clock: this.#clock,
      offline: false,
      freshForMs: 0,
    });
    const report = await session.open({ refresh: true });
    // A key the registry rotated from since leads, through its rotations, to the key it signs with now.
    const entry: RegistryEntry = { ...given, key_fingerprint: report.fingerprint };
    const change = await this.#state.editConfig(async (config) => {
      const added = addRegistry(config, entry, { force: options.force ?? false });
      // A forced re-add of the same entry keeps what it checked too: the name a moved registry gives now.
      if (added.change !== 'unchanged' || options.force || !(await this.#state.trust(entry.name)))
        await this.#state.writeTrust(
          entry.name,
          checked ?? { ...session.trust, highestGeneration: report.generation },
          { replacing: !same, ...(formerRegistry !== undefined ? { formerRegistry } : {}) },
        );
      return { config: added.config, result: added.change };
    });
    this.#config = undefined;
    return {
      change,
      fingerprint: report.fingerprint,
      generation: report.generation,
      trustedOnFirstUse: 'trustOnFirstUse' in pin,
      ...(report.rotated ? { rotated: report.rotated } : {}),
      registry: session.snapshot.registry,
    };
  }

  /**
   * `reached` (a check that asks nothing: a frozen install, `verify`), and after it each URL the last request
   * for the snapshot cached for its first was led through (`CachedSnapshot.servedFrom`: every hop of a
   * redirect, or a mirror) that is none of them: a session reads the marks kept as of each, and what reads no
   * snapshot knew of no redirect, so a mark kept as of where it led (or a URL on the way that redirected on)
   * was passed over and what the stolen key signed there taken. Last, as marks only (`ReachedAt`): they never
   * tell a record's registry. None cached: `reached` itself.
   */
  async #reachedWithServed(reached: readonly string[] | undefined): Promise<readonly string[] | undefined> {
    const first = reached?.[0];
    if (reached === undefined || first === undefined) return reached;
    // The hops alone, from their own file: not the snapshot, parsed whole once per registry, key and chain.
    const served = await this.#cache.servedFrom(registryIdentity(first));
    const urls = [...reached];
    for (const at of served)
      if (!urls.some((url) => registryIdentity(url) === registryIdentity(at))) urls.push(at);
    return urls;
  }

  /**
   * The registry a record kept before records named theirs (`kept`, configured at `url`) is of: the one its
   * last snapshot names, the copy cached for `url` whose digest the record kept (the snapshot it verified),
   * else `url` itself, which may be a mirror's. Named by the URL alone, a mark it kept was read by no check
   * of the registry reached elsewhere (a plugin set naming the registry's own URL).
   */
  async #registryKeptAt(kept: TrustRecord, url: string): Promise<string> {
    const cached = await this.#cache.snapshot(url).catch(() => undefined);
    if (cached === undefined || kept.snapshotSha256 !== sha256Hex(cached.bytes)) return url;
    try {
      const named = (JSON.parse(new TextDecoder().decode(cached.bytes)) as { registry?: unknown }).registry;
      return typeof named === 'string' ? named : url;
    } catch {
      return url;
    }
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

  async removeRegistry(name: string, options: { readonly force?: boolean } = {}): Promise<void> {
    // Refused before the entry goes: a record, or a former departure of it, that does not read would go
    // with the folder, and the marks it may keep with it (`trustToRemove`), unless forced.
    const kept = await this.#state.trustToRemove(name, options);
    const url = await this.#state.editConfig(async (config) => {
      const entry = findRegistry(config, name);
      return { config: removeRegistry(config, name), result: entry.url };
    });
    this.#config = undefined;
    // What the name knew of keys (a stolen key's mark) is kept under the trust root; the rest is forgotten.
    await this.#state.removeTrust(name, {
      url: kept && kept.registry === undefined ? await this.#registryKeptAt(kept, url) : url,
      ...options,
    });
    await this.#cache.removeRegistry(url);
  }

  /**
   * Forgets what every name of a registry accepted, for a registry its operator rebuilt at a lower
   * generation under the same key: refused (SNAPSHOT_ROLLBACK) under every name it is kept as (configured,
   * each plugin set's, a mirror's), it was taken again only once each trust folder was removed by hand.
   * The registry's snapshot is read and verified first by the key pinned (or through its signed rotations),
   * held to no floor and taking its log as on first use; then every name of the registry that snapshot names
   * under the same trust root (`recordsSharingTrust`) has its floor and log head set to that snapshot's
   * (`ClientState.resetAccepted`), and the target's record takes it as checked. Nothing is forgotten when
   * the snapshot does not verify.
   * @throws ClientError TRUST_RESET_REFUSED when the registry's snapshot is not signed by the key pinned nor
   *   one it rotated to (a reset never takes another key: a registry under a new key is added again with it);
   *   REGISTRY_NOT_FOUND, REGISTRY_NOT_PINNED, FETCH_*; OFFLINE_MISSING for an offline client; TrustError as a
   *   check of the registry otherwise.
   */
  async resetRegistryTrust(target: ResetTrustTarget): Promise<ResetTrustResult> {
    // A URL is checked first, as `addRegistry`'s: the offline refusal named it whole.
    this.#refuseOffline(
      `registry reset-trust reads the snapshot of ${'name' in target ? target.name : normalizeRegistryUrl(target.url)} to take it now`,
    );
    const { departuresAgainst, forkFromRevoked, readTrustedKey, revokedLink, RegistrySession } =
      await loadTrust();
    let entry: RegistryEntry;
    let pinned: TrustRecord;
    /** The name the snapshot verified here is kept under as checked: the configured one, or the set's. */
    let own: string;
    if ('name' in target) {
      entry = findRegistry(await this.#config_(), target.name);
      pinned = await this.#pinnedTrust(entry);
      own = entry.name;
    } else {
      const url = normalizeRegistryUrl(target.url);
      const key = await readTrustedKey(target.armoredKey, 'the registry key');
      refuseSecretKey(target.armoredKey, key, 'the registry key given', 'nothing was read or forgotten');
      entry = {
        name: url,
        url,
        priority: 0,
        key_fingerprint: key.fingerprint,
        mirrors: (target.mirrors ?? []).map(normalizeRegistryUrl),
        ...(target.caFile ? { ca_file: target.caFile } : {}),
        ...(target.timeoutSeconds ? { timeout_seconds: target.timeoutSeconds } : {}),
        ...(target.auth ? { auth: target.auth } : {}),
      };
      own = setTrustName(url, key.fingerprint);
      // A set's record that followed rotations from the key given starts from where it got to.
      const kept = await this.#state.trust(own).catch(() => undefined);
      pinned = kept ?? { fingerprint: key.fingerprint, armoredKey: key.armored };
    }
    const {
      highestGeneration: _h,
      snapshotSha256: _s,
      checkedAt: _c,
      log: _l,
      logsExtended: _e,
      ...keys
    } = pinned;
    let checked: TrustRecord | undefined;
    // Held to no floor (that is what is reset) and to no other name's: those are the floors forgotten.
    const session = new RegistrySession(
      entry,
      await this.#endpoint(entry),
      await readPinnedKey(pinned, own),
      keys,
      {
        fetcher: this.#options.fetcher,
        cache: this.#cache,
        recordTrust: async (record) => {
          checked = record;
        },
        clock: this.#clock,
        offline: false,
        freshForMs: 0,
      },
    );
    // The session caches the snapshot it verified under the URL (shared by every name reaching it there, with
    // the hops it came through) before the marks below are read: a reset refused keeps the cache as it was,
    // or the stolen key's copy it refused was what every later check of that URL started from.
    const cachedBefore = await this.#cache.snapshot(entry.url);
    let committing = false;
    try {
      try {
        await session.open({ refresh: true });
      } catch (error) {
        if (
          error instanceof TrustError &&
          ['SNAPSHOT_BAD_SIGNATURE', 'SNAPSHOT_WRONG_KEY', 'KEY_ROTATION_BROKEN'].includes(error.code)
        )
          throw new ClientError(
            'TRUST_RESET_REFUSED',
            `${entry.name}: ${entry.url} is not signed by the key pinned for it (${pinned.fingerprint}), nor by one that key rotated to through a signed rotation (${error.code}: ${error.message}); nothing was forgotten. A reset takes a registry rebuilt under the same key only: one under another key is another trust root, added again with that key (${pinAgainCommand()})`,
            { cause: error },
          );
        throw error;
      }
      const accepted = checked as TrustRecord;
      const snapshot = session.snapshot;
      const sharing = await this.#state.recordsSharingTrust(snapshot.registry, accepted, entry.url);
      // A key another name followed a rotation away from as stolen: its holder can sign a snapshot at any
      // generation, or a rotation from it to a key of their own, and taken here it would be the floor of
      // every name, the one that followed included. Marks are read as of every URL a session reads them as
      // of (`RegistrySession.reachedAt`: the entry's, its mirrors, each URL a redirect led the snapshot's
      // request to or through): read as of its URL alone, a mark kept as of a mirror's was passed over, and the stolen
      // key's copy counting the rotations that key is at became every name's floor. Floors stay the URL's.
      const {
        revoked: marks,
        departures,
        retired: left,
      } = await this.#state.sharedTrust(snapshot.registry, accepted, session.reachedAt);
      const fork = forkFromRevoked(marks, accepted);
      const revoked = revokedLink(marks, accepted.fingerprint) ?? fork?.mark;
      if (revoked)
        throw new ClientError(
          'TRUST_RESET_REFUSED',
          `${entry.name}: ${entry.url} answers with a snapshot signed by key ${fork ? `${accepted.fingerprint}, reached from key ${revoked.fingerprint} through a rotation to ${fork.to}; but that key` : revoked.fingerprint}, which registry ${snapshot.registry} retired${revoked.retiredBy === undefined ? '' : ` at keys/rotation/${revoked.retiredBy}.json`}${fork ? ` to key ${fork.mark.retiredTo}` : ''} because it is no longer secret (another name of it on this machine followed that rotation): nothing was forgotten. ${pinAgainRemedy({ start: true })}`,
        );
      // A rotation from a key another name left, to another key than the registry's rotation: its holder's.
      const departed = forkFromRevoked(departuresAgainst(departures, accepted), accepted);
      if (departed)
        throw new ClientError(
          'TRUST_RESET_REFUSED',
          `${entry.name}: ${entry.url} answers with a snapshot signed by key ${accepted.fingerprint}, reached from key ${departed.link.fingerprint} through a rotation to ${departed.to}, but registry ${snapshot.registry} rotated that key to ${departed.mark.retiredTo} (another name of it on this machine followed that rotation): a key is retired once, so this is not the registry's; nothing was forgotten. ${pinAgainRemedy({ start: true })}`,
        );
      // A key another name rotated away from: the registry signs nothing with it since, and taken here its
      // holder's snapshot was every name's floor, those that followed the rotation left with none.
      const leftBy = left?.find((r) => r.fingerprint === accepted.fingerprint);
      if (leftBy)
        throw new ClientError(
          'TRUST_RESET_REFUSED',
          `${entry.name}: ${entry.url} answers with a snapshot signed by key ${accepted.fingerprint}, which registry ${snapshot.registry} rotated away from (followed as trust/${leftBy.name} in the data directory): the registry signs nothing with a key it left, so this is not the registry's current snapshot; nothing was forgotten. Reset by its current key (\`plugindex registry reset-trust ${leftBy.name}\` for a configured one), or pin it (${pinAgainCommand()})`,
        );
      committing = true;
      const names = sharing.map((s) => s.name);
      if (!names.includes(own) && (await this.#state.trust(own).catch(() => undefined))) names.push(own);
      const floor = {
        fingerprint: accepted.fingerprint,
        generation: snapshot.generation,
        ...(accepted.log ? { log: accepted.log } : {}),
        registry: snapshot.registry,
      };
      const forgotten: ResetTrustResult['forgotten'][number][] = [];
      // A step after a record was kept that failed (the trust index's last, `keepTrust`) is told once the
      // reset is done: thrown at once, it left the other names' floors, the record checked here and the
      // configuration's key (a reset that followed a rotation) as they were while the files held the floor.
      const failures: (KeptThenFailed | undefined)[] = [];
      for (const name of names.sort()) {
        const reset = await this.#state.resetAccepted(name, floor);
        failures.push(reset.failure);
        const before = reset.before;
        if (!before) continue;
        forgotten.push({
          name,
          ...(before.highestGeneration !== undefined ? { generation: before.highestGeneration } : {}),
          ...(before.log ? { log: before.log } : {}),
        });
      }
      if ('name' in target || names.includes(own)) {
        const { fingerprint: held, failure } = await this.#state.keepTrust(own, accepted);
        failures.push(failure);
        if ('name' in target && held !== entry.key_fingerprint)
          failures.push(
            await this.#repin(own, held).then(
              () => undefined,
              (error: unknown) => ({ keptThenFailed: error }),
            ),
          );
      }
      const failed = keptThenFailedAll(own, failures);
      if (failed) throw failed.keptThenFailed;
      return {
        registry: snapshot.registry,
        fingerprint: accepted.fingerprint,
        generation: snapshot.generation,
        ...(accepted.log ? { log: accepted.log } : {}),
        forgotten,
      };
    } catch (error) {
      if (!committing)
        await (cachedBefore
          ? this.#cache.putSnapshot(entry.url, cachedBefore)
          : this.#cache.removeRegistry(entry.url)
        ).catch(() => {});
      throw error;
    }
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

  async search(asked: SearchQuery & { readonly registry?: string }): Promise<SearchHit[]> {
    // The rule `GET /search` and the home page read a search by: a filter trimmed and lowercased, one the
    // schema does not know refused (SearchQueryError), where it matched nothing.
    const query = checkSearchQuery(asked);
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

  /**
   * The first registry by priority that lists the plugin (or the one named). `suggest` for a name the user
   * typed: one read from a lock or installed.json was listed once, and another plugin named in its refusal
   * (audit, list --outdated, a frozen install) pointed at a plugin nobody asked for, search.json read for it.
   */
  async #find(
    name: string,
    registry: string | undefined,
    suggest = false,
  ): Promise<{ session: RegistrySession; document: PluginDocument }> {
    const entries = await this.#entries(registry);
    for (const entry of entries) {
      const session = await this.#session(entry);
      const document = await session.pluginDocument(name);
      if (document) return { session, document };
    }
    throw new ClientError(
      'PLUGIN_NOT_FOUND',
      `no plugin named ${name} in ${entries.map((e) => `${e.name} (${e.url})`).join(', ')}${suggest ? await this.#nearest(name, entries) : ''}`,
    );
  }

  /**
   * `: did you mean NAME?` for a name none of `entries` lists, from their verified search.json (the one a
   * search reads), or nothing: one that cannot be read now (offline, not cached) leaves the refusal as it was.
   */
  async #nearest(name: string, entries: readonly RegistryEntry[]): Promise<string> {
    const names: unknown[] = [];
    for (const entry of entries) {
      const doc = await (await this.#session(entry)).searchDocument().catch(() => undefined);
      // An entry not an object (null) is a registry's defect, not this refusal's to turn into a TypeError.
      for (const plugin of doc?.plugins ?? []) names.push((plugin as { name?: unknown } | null)?.name);
    }
    const near = nearestPluginName(name, names);
    return near === undefined ? '' : `: did you mean ${near}?`;
  }

  async info(
    request: string,
    options: { registry?: string; platform?: Platform; apiVersion?: string } = {},
  ): Promise<InfoResult> {
    const { name, spec } = parseRequest(request);
    const { session, document } = await this.#find(name, options.registry, true);
    const explicit = request.includes('@');
    const resolution = explicit
      ? resolvePlugin(document, {
          spec,
          platform: options.platform ?? this.#platform,
          apiVersion: options.apiVersion ?? 'v1',
        })
      : undefined;
    const notes = resolution ? advisoryNotes(document, resolution.version.version) : undefined;
    return {
      registry: session.entry.name,
      fingerprint: session.trust.fingerprint,
      document,
      ...(resolution && notes
        ? {
            resolution: {
              ...resolution,
              warnings: [...resolution.warnings, ...notes.warnings],
              advisories: notes.advisories,
            },
          }
        : {}),
    };
  }

  async revokedKeys(registry: string): Promise<Uint8Array | undefined> {
    const [entry] = await this.#entries(registry);
    if (!entry) return undefined;
    return (await this.#session(entry)).listedDocument(REVOKED_KEYS_KEY);
  }

  // --- installing and the installed tree: install.ts and maintain.ts, over the context ----------------

  install(options: InstallOptions): Promise<InstallResult> {
    return installPlugins(this.#context, options);
  }

  async reference(
    text: string,
    options: { readonly key?: string } = {},
  ): Promise<ReferenceTarget | undefined> {
    if (isUrlReference(text)) return this.#urlReference(text, options.key);
    const { parseArtifactReference } = await import('./oci.ts');
    const parsed = parseArtifactReference(text);
    if (parsed.kind === 'name') {
      if (parsed.tag === undefined) return undefined;
      const entries = await this.#entries(undefined);
      const { session } = await this.#find(
        parsed.name,
        entries.length === 1 ? entries[0]?.name : undefined,
        true,
      );
      return { request: `${parsed.name}@${parsed.tag}`, registry: session.entry.name };
    }
    return this.#ociReference(parsed);
  }

  /**
   * An OCI reference: the one plugin whose falcoctl index entry (signed, bound by the snapshot) names that
   * repository, in the first configured registry that has one; then the version whose artifact for this
   * platform is kept in exactly that repository, under the tag given (or a version of that name), or with
   * the digest given. Anything looser could install another plugin's bytes for a reference. A repository is
   * compared as publish judges claims on it (oci.ts `ociRepositoryOf`: host in any case, `:443` or not,
   * Docker Hub by any of its names, its official images with or without `library/`), so a reference written
   * otherwise than the signed manifest still finds its plugin; two plugins in it, however each wrote it (one
   * owner's two, or a registry from before publish judged claims), are refused by name, never one picked.
   */
  async #ociReference(ref: {
    readonly registry: string;
    readonly repository: string;
    readonly tag?: string;
    readonly digest?: string;
  }): Promise<ReferenceTarget> {
    // yaml's default export: a CommonJS package imported lazily has nothing else in the built command
    // (ARCHITECTURE.md).
    const [{ default: YAML }, { ociRepositoryOf, parseOciReference: partsOf }] = await Promise.all([
      import('yaml'),
      import('../index-builder/oci.ts'),
    ]);
    const written = `${ref.registry}/${ref.repository}`;
    const shown = `${written}${ref.digest ? `@${ref.digest}` : `:${ref.tag ?? 'latest'}`}`;
    // The reference was parsed by the same grammar, so it has a repository; as written is only a fallback.
    const repository = ociRepositoryOf(written) ?? written;
    const platform = this.#platform;
    for (const entry of await this.#entries(undefined)) {
      const session = await this.#session(entry);
      const bytes = await session.listedDocument(FALCOCTL_INDEX_KEY);
      if (!bytes) continue;
      const index = YAML.parse(new TextDecoder().decode(bytes)) as unknown;
      // Each plugin listed in that repository, with the repository as its entry writes it (its latest's).
      const listed = (Array.isArray(index) ? index : []).flatMap(
        (e: { registry?: unknown; repository?: unknown; name?: unknown } | null) => {
          const { name, registry, repository: path } = e ?? {};
          if (typeof name !== 'string' || typeof registry !== 'string' || typeof path !== 'string') return [];
          const as = `${registry}/${path}`;
          return ociRepositoryOf(as) === repository ? [{ name, registry, repository: path, as }] : [];
        },
      );
      if (listed.length === 0) continue;
      if (listed.length > 1)
        throw new ClientError(
          'REQUEST_INVALID',
          `${shown}: registry ${entry.name} lists ${listed.map((l) => `${l.name} (${l.as})`).join(', ')} in that repository (${repository}, however a reference writes it); install one by name`,
        );
      const found = listed[0] as (typeof listed)[number];
      const name = found.name;
      const document = await session.pluginDocument(name);
      if (!document) continue;
      const inRepository = (v: VersionRecord) => {
        const artifact = artifactFor(v, platform);
        return artifact?.oci && ociRepositoryOf(artifact.oci.reference) === repository ? artifact : undefined;
      };
      const tag = ref.tag ?? 'latest';
      const version = document.versions.find((v) => {
        const artifact = inRepository(v);
        if (!artifact?.oci || v.yanked) return false;
        if (ref.digest) return artifact.oci.digest === ref.digest;
        // `latest` (written, or meant by no tag) is also the latest release, as a registry's tag would be.
        if (tag === 'latest' && v.version === document.latest_version) return true;
        return partsOf(artifact.oci.reference)?.tag === tag || v.version === tag;
      });
      if (version) return { request: `${name}@${version.version}`, registry: entry.name };
      const keeps = `no version of ${name} in ${entry.name} keeps its ${artifactPlatformText(platform)} artifact there`;
      if (!ref.digest) throw new ClientError('NO_MATCHING_VERSION', `${shown}: ${keeps} under tag ${tag}`);
      // Not a signed blob's digest: perhaps the manifest's or the index's a registry shows (falcoctl's and
      // crane's output, a registry's web page). Taken only as a way to name a version: the one whose signed
      // blob for this host it leads to; what installs is still that blob, pulled by its signed digest.
      const pinned = document.versions.flatMap((v) => {
        const digest = v.yanked ? undefined : inRepository(v)?.oci?.digest;
        return digest === undefined ? [] : [{ version: v.version, digest }];
      });
      // Read where the registry's signed index writes the repository: the host and the credentials the
      // install then pulls the blob with, whatever spelling was pasted.
      const reached = await this.#versionReached(found, ref.digest, pinned, {
        name,
        none: `${shown}: ${keeps} with that digest`,
      });
      return { request: `${name}@${reached}`, registry: entry.name };
    }
    throw new ClientError(
      'PLUGIN_NOT_FOUND',
      `${shown}: no configured registry's falcoctl index names that repository${repository === written ? '' : ` (${repository}, however a reference writes it)`}`,
    );
  }

  /**
   * The one version whose pinned blob (`pinned`: each unyanked version's signed `oci.digest` for this host
   * in the reference's repository) the manifest or image index of `digest` in that repository leads to: a
   * manifest by its layers, an index by its image manifests' layers, through the indexes it lists too
   * (oci.ts `walkManifests`: at most 4 levels and 32 documents, each read once). Every document is read by
   * digest, so its bytes are held to it (fetcher.ts `ociManifest`, and the walk again), and to the size and
   * type its index lists it with; nothing is picked by platform, which an index cannot say fully (no C
   * library, no universal arch).
   * @throws ClientError NO_MATCHING_VERSION (`none` then why, and the blob digest to give), REQUEST_INVALID
   *   (it leads to the blobs of several versions), OCI_INDEX_TOO_DEEP, OCI_INDEX_TOO_MANY_MANIFESTS (a bound
   *   of the walk, naming the index and the bound, and the blob digest to give), OFFLINE_MISSING; what
   *   reading the registry throws; TrustError DOCUMENT_MALFORMED (not a manifest or index),
   *   DOCUMENT_MISMATCH (a document not the size or type its index lists it with).
   */
  async #versionReached(
    ref: { readonly registry: string; readonly repository: string },
    digest: string,
    pinned: readonly { readonly version: string; readonly digest: string }[],
    /** The plugin's name, and the message's start: no version's blob has the digest. */
    { name, none }: { readonly name: string; readonly none: string },
  ): Promise<string> {
    const give = () => {
      const shown = pinned
        .slice(0, 3)
        .map((p) => `${p.version}: ${ref.registry}/${ref.repository}@${p.digest}`);
      return shown.length === 0
        ? ''
        : `; give the digest of the blob its signed manifest pins for this platform (${shown.join(', ')}${pinned.length > 3 ? ', …' : ''}; \`plugindex info ${name}\` lists each)`;
    };
    if (pinned.length === 0) throw new ClientError('NO_MATCHING_VERSION', none);
    this.#refuseOffline(
      `${none}; whether ${digest} is a manifest or an index leading to one is known only to the OCI registry`,
    );
    const { walkManifests } = await import('./oci.ts');
    const source = (at: string) => `${ref.registry}/${ref.repository}@${at}`;
    const read = async (at: string) => {
      const reference = source(at);
      const credentials = await this.#ociCredentials(reference);
      return this.#options.fetcher
        .ociManifest({ reference, ...(credentials ? { credentials } : {}) })
        .catch((error: unknown) => {
          if (error instanceof ClientError && error.code === 'FETCH_NOT_FOUND') return undefined;
          throw error;
        });
    };
    const walk = await walkManifests(digest, { read, source }).catch((error: unknown) => {
      // A bound hit: the blob's digest, which needs no walk, is the way on.
      if (
        error instanceof ClientError &&
        (error.code === 'OCI_INDEX_TOO_DEEP' || error.code === 'OCI_INDEX_TOO_MANY_MANIFESTS')
      )
        throw new ClientError(error.code, `${error.message}${give()}`, { cause: error });
      throw error;
    });
    if (walk === undefined)
      throw new ClientError(
        'NO_MATCHING_VERSION',
        `${none}, and the repository holds no manifest or index of it${give()}`,
      );
    const { layers } = walk;
    const versions = [...new Set(pinned.filter((p) => layers.has(p.digest)).map((p) => p.version))];
    const [only] = versions;
    const what = walk.kind === 'image' ? 'the manifest of that digest' : 'the image index of that digest';
    if (only === undefined)
      throw new ClientError(
        'NO_MATCHING_VERSION',
        `${none}, and ${what} leads to none of their signed blobs (it leads to ${[...layers].join(', ') || 'no layer'})${give()}`,
      );
    if (versions.length > 1)
      throw new ClientError(
        'REQUEST_INVALID',
        `${ref.registry}/${ref.repository}@${digest}: ${what} leads to the signed blobs of several versions (${versions.join(', ')}): give one blob's digest or a version`,
      );
    return only;
  }

  /**
   * A manifest URL: under a configured registry, the version it names there (verified through that
   * registry's snapshot); anywhere else, only with a key that signs it.
   */
  async #urlReference(url: string, armoredKey: string | undefined): Promise<ReferenceTarget> {
    refuseManifestUrl(url);
    const config = await this.#config_();
    for (const entry of registriesByPriority(config)) {
      for (const base of [entry.url, ...entry.mirrors]) {
        if (!url.startsWith(`${base}/`)) continue;
        const match = /^plugins\/([^/]+)\/([^/]+)\/manifest\.json$/.exec(url.slice(base.length + 1));
        if (!match)
          throw new ClientError(
            'REQUEST_INVALID',
            `${redactUrl(url)} is under registry ${entry.name} but is not a version's manifest (${base}/plugins/NAME/VERSION/manifest.json)`,
          );
        return { request: `${match[1]}@${match[2]}`, registry: entry.name };
      }
    }
    if (armoredKey === undefined)
      throw new ClientError(
        'REQUEST_INVALID',
        `${redactUrl(url)} is not under a configured registry: give --key FILE (the publisher's or the registry's public key) to verify its signature, or add its registry with \`plugindex registry add\``,
      );
    const { readTrustedKey } = await loadTrust();
    // Kept as a pin below: refused first if no signature by it could be taken.
    const key = await readTrustedKey(armoredKey, 'the key given');
    refuseSecretKey(armoredKey, key, 'the key given', 'nothing was pinned or fetched');
    // One source per host and key, named for both: the lock records it, and the key given is kept as its
    // pin (as `registry add` keeps one), so `verify` and a later install from the lock find it.
    const host = new URL(url).host.toLowerCase().replace(/[^a-z0-9.-]/g, '-') || 'file';
    const name = `url-${host.slice(0, 46)}-${key.fingerprint.slice(-16).toLowerCase()}`;
    const { folder, source } = await this.#manifestSource(name, url, key);
    const found = await folder.readUrl(url);
    await this.#state.writeTrust(name, { fingerprint: key.fingerprint, armoredKey: key.armored });
    const version = found.document.versions[0]?.version as string;
    return { request: `${found.document.name}@${version}`, registry: name, source };
  }

  /** A manifest URL as a source, verified by `key`. */
  async #manifestSource(
    name: string,
    url: string,
    key: { readonly fingerprint: string; readonly key: import('openpgp').Key },
  ) {
    const [{ FolderSource }, { folderSource }] = await Promise.all([
      import('./folder-source.ts'),
      import('./source.ts'),
    ]);
    const endpoint: Endpoint = {
      name,
      bases: [url.slice(0, url.lastIndexOf('/'))],
      timeoutMs: DEFAULT_TIMEOUT_SECONDS * 1000,
    };
    const folder = new FolderSource({ name, endpoint, fetcher: this.#options.fetcher, keys: [key.key] });
    const source = folderSource({
      name,
      folder,
      endpoint,
      fingerprint: key.fingerprint,
      cache: this.#cache,
      // Any plugin read through it is read at this URL: a URL names one manifest.
      manifestPaths: { get: () => url },
    });
    return { folder, source };
  }

  installed(options: { dir?: string }): Promise<InstalledFile> {
    return readInstalled(this.#context, options);
  }

  // A plugin set's sources (folders, buckets) load only when a set is used.
  async installSet(file: string, options: SetInstallOptions) {
    return (await import('./plugin-set.ts')).installSet(this.#context, file, options);
  }

  async diffSet(file: string, options: SetInstallOptions): Promise<SetDiff> {
    return (await import('./plugin-set.ts')).diffSet(this.#context, file, options);
  }

  async discover(file: string, options: { readonly home: string }): Promise<DiscoveryReport> {
    const configured = await Promise.all(
      (await this.#config_()).registries.map(async (entry) => {
        const trust = await this.#state.trust(entry.name);
        return trust
          ? {
              fingerprint: trust.fingerprint,
              key: await readPinnedKey(trust, entry.name),
              label: `registry ${entry.name}`,
            }
          : undefined;
      }),
    );
    const keys = configured.filter((k) => k !== undefined);
    return (await import('./plugin-set.ts')).discoverSet(this.#context, file, { ...options, keys });
  }

  async verifySet(file: string, options: { readonly home: string }): Promise<VerifyFinding[]> {
    return (await import('./plugin-set.ts')).verifySet(this.#context, file, options);
  }

  async cleanSet(file: string, options: SetInstallOptions): Promise<CleanReport> {
    return (await import('./plugin-set.ts')).cleanSet(this.#context, file, options);
  }

  list(options: {
    dir?: string;
    outdated?: boolean;
    lockfile?: string;
    apiVersion?: string;
  }): Promise<ListedPlugin[]> {
    return listInstalled(this.#context, options);
  }

  remove(
    request: string,
    options: { dir?: string; clean?: boolean; lockfile?: string },
  ): Promise<readonly string[]> {
    return removeInstalled(this.#context, request, options);
  }

  setEnabled(name: string, enabled: boolean, options: { dir?: string }): Promise<void> {
    return setEnabled(this.#context, name, enabled, options);
  }

  verifyInstalled(options: {
    dir?: string;
    lockfile?: string;
    namedLockfile?: string;
  }): Promise<VerifyFinding[]> {
    return verifyInstalled(this.#context, options);
  }

  cleanOrphans(options: { dir?: string }): Promise<OrphanCleanReport> {
    return cleanOrphans(this.#context, options);
  }

  auditInstalled(options: { dir?: string }): Promise<InstalledAudit> {
    return auditInstalled(this.#context, options);
  }

  auditPlugin(name: string, options: { registry?: string }): Promise<PluginHistory> {
    return auditPlugin(this.#context, parseRequest(name).name, options);
  }
}

/**
 * Refuses key text given for a public key (`what`) that holds a secret key: only its public part would be
 * pinned, and the secret key given in silence stays wherever it was taken from (a file shared, a script).
 * @throws ClientError SECRET_KEY_GIVEN saying what was not done (`undone`) and to give the public key.
 */
function refuseSecretKey(
  armored: string,
  key: { readonly fingerprint: string; readonly secret?: true },
  what: string,
  undone: string,
): void {
  if (isSecretKeyText(armored, key))
    throw new ClientError(
      'SECRET_KEY_GIVEN',
      `${what} (${key.fingerprint}) is a secret key, not a public key: ${undone}. Give its public key (gpg --export --armor ${key.fingerprint}, or the public.asc plugindex keygen wrote); a secret key that has left its owner should be replaced (plugindex keygen)`,
    );
}
