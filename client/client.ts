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
import type { Clock } from '../index-builder/clock.ts';
import { systemClock } from '../index-builder/clock.ts';
import { TrustError } from '../index-builder/errors.ts';
import type { PluginDocument } from '../index-builder/model.ts';
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
import { type ClientContext, loadTrust, type ProgressEvent, readPinnedKey } from './context.ts';
import { readSecretFileSync, readTextIfExists } from './disk/atomic.ts';
import { ContentCache } from './disk/cache.ts';
import { ClientState, InstallTree, type TrustRecord } from './disk/state.ts';
import { ClientError } from './errors.ts';
import type { Credentials, Endpoint, Fetcher } from './fetcher.ts';
import { UNLISTED_LIMITS } from './fetcher.ts';
import { type InstalledItem, type InstallOptions, type InstallResult, installPlugins } from './install.ts';
import type { InstalledFile } from './installed.ts';
import {
  type ListedPlugin,
  listInstalled,
  readInstalled,
  removeInstalled,
  setEnabled,
  type VerifyFinding,
  verifyInstalled,
} from './maintain.ts';
import type { ClientDirectories } from './paths.ts';
import { hostPlatform, type Platform, parseRequest, type Resolution, resolvePlugin } from './resolve.ts';
import { type SearchHit, type SearchQuery, searchPlugins } from './search.ts';
import type { RegistrySession, SnapshotReport } from './session.ts';

export type { InstalledItem, InstallOptions, InstallResult, ListedPlugin, ProgressEvent, VerifyFinding };

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
  /** What install.ts and maintain.ts work with. */
  readonly #context: ClientContext;

  constructor(options: ClientOptions) {
    this.#options = options;
    this.#state = new ClientState(options.dirs);
    this.#cache = new ContentCache(options.dirs.cache);
    this.#clock = options.clock ?? systemClock;
    const state = this.#state;
    this.#context = {
      cache: this.#cache,
      clock: this.#clock,
      offline: options.offline ?? false,
      platform: this.#platform,
      fetcher: options.fetcher,
      onProgress: options.onProgress,
      tree: (dir) => new InstallTree(dir ?? state.defaultInstallDir),
      find: (name, registry) => this.#find(name, registry),
      trust: (registry) => state.trust(registry),
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
    return this.#options.platform ?? hostPlatform(process.platform, process.arch);
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
      throw new ClientError(
        'REGISTRY_NOT_PINNED',
        `${entry.name}: no pinned key with fingerprint ${entry.key_fingerprint} in ${this.#state.dirs.data}; run \`plugindex registry add ${entry.name} ${entry.url} --force\` with its key`,
      );
    const { RegistrySession } = await loadTrust();
    const key = await readPinnedKey(trust);
    return new RegistrySession(entry, await this.#endpoint(entry), key, trust, {
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
    const { readPublicKey, RegistrySession } = await loadTrust();
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

  // --- installing and the installed tree: install.ts and maintain.ts, over the context ----------------

  install(options: InstallOptions): Promise<InstallResult> {
    return installPlugins(this.#context, options);
  }

  installed(options: { dir?: string }): Promise<InstalledFile> {
    return readInstalled(this.#context, options);
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

  verifyInstalled(options: { dir?: string; lockfile?: string }): Promise<VerifyFinding[]> {
    return verifyInstalled(this.#context, options);
  }
}
