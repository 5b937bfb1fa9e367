/**
 * What the consumer's operations share, as the composition root (client.ts) wires it: the cache, the clock,
 * the platform, the fetcher, the install folders, and the registries read through their sessions. The
 * install (install.ts) and the installed tree's upkeep (maintain.ts) take it rather than the whole client.
 */
import type { Key } from 'openpgp';
import { isSecretKeyText } from '../index-builder/armor.ts';
import type { Clock } from '../index-builder/clock.ts';
import { TrustError } from '../index-builder/errors.ts';
import type { PluginDocument } from '../index-builder/model.ts';
import type { RegistryEntry } from './config.ts';
import type { ContentCache } from './disk/cache.ts';
import type { InstallTree, TrustRecord } from './disk/state.ts';
import { ClientError, pinAgainCommand } from './errors.ts';
import type { Endpoint, Fetcher, OciCredentials } from './fetcher.ts';
import type { ChainLink, ForkedKey } from './key-chain.ts';
import type { Platform } from './resolve.ts';
import type { KeptThenFailed, RegistrySession, SessionDeps } from './session.ts';
import type { Source } from './source.ts';

export interface ProgressEvent {
  readonly name: string;
  readonly received: number;
  readonly total: number;
}

export interface ClientContext {
  readonly cache: ContentCache;
  readonly clock: Clock;
  /** Never touch the network. */
  readonly offline: boolean;
  /** The platform installs default to. */
  readonly platform: Platform;
  readonly fetcher: Fetcher;
  readonly onProgress: ((event: ProgressEvent) => void) | undefined;
  /** The install folder `dir` (default `<data>/plugins`). */
  tree(dir: string | undefined): InstallTree;
  /**
   * The first registry by priority that lists the plugin (or the one named), with its verified document.
   * @throws ClientError PLUGIN_NOT_FOUND naming the registries asked.
   */
  find(
    name: string,
    registry: string | undefined,
    /** A name the user typed: its PLUGIN_NOT_FOUND names the plugin it most likely meant. */
    suggest?: boolean,
  ): Promise<{ readonly session: RegistrySession; readonly document: PluginDocument }>;
  /** A configured registry's endpoint (URL, mirrors, CA, credentials), or undefined when none has the name. */
  endpoint(registry: string): Promise<Endpoint | undefined>;
  /** A registry's endpoint as an entry describes it (a plugin set's registries are not configured). */
  endpointOf(entry: RegistryEntry): Promise<Endpoint>;
  /**
   * A session over a registry the configuration does not hold (a plugin set's), trusting `key` from
   * `trust`; what it accepts goes to `recordTrust`, not to the data directory.
   */
  openSession(
    entry: RegistryEntry,
    trust: TrustRecord,
    recordTrust: SessionDeps['recordTrust'],
    /** `trust`'s key already parsed (else it is parsed from the armored text). */
    key?: Key,
    /** What to do when the registry really moved, said with SNAPSHOT_REGISTRY_CHANGED (`checkSnapshotRegistry`). */
    whenMoved?: string,
    /** What to do when the registry was rebuilt at a lower generation (SNAPSHOT_ROLLBACK), if not `registry reset-trust NAME`. */
    whenRolledBack?: string,
  ): Promise<RegistrySession>;
  /** The credentials `docker login` keeps for an OCI reference's registry, if any (oci-auth.ts). */
  ociCredentials(reference: string): Promise<OciCredentials | undefined>;
  /** A registry's pinned key and trust state. */
  trust(registry: string): Promise<TrustRecord | undefined>;
  /**
   * Keeps a trust state (a plugin set's registry keeps its own, under a name of its URL and key): a session's
   * `recordTrust`, `KeptThenFailed` when a step after the record was written failed (ClientState `keepTrust`).
   */
  writeTrust(registry: string, record: TrustRecord): Promise<KeptThenFailed | undefined>;
  /**
   * A source installed from by manifest URL (`install URL --key`), from the pin kept for it then; undefined
   * when no pin is kept under that name.
   */
  manifestSource(name: string, manifestUrl: string): Promise<Source | undefined>;
  /** The configured registry of that name, if any. */
  registryEntry(name: string): Promise<RegistryEntry | undefined>;
  /** Every configured registry (config.json): where the user's own configuration sends credentials. */
  registryEntries(): Promise<readonly RegistryEntry[]>;
  /**
   * The keys another name of `trust`'s registry (sharing a key with it) saw a rotation retire as
   * compromised (`ClientState.sharedTrust`'s `revoked`): `trust` may hold one, its name never having
   * followed that rotation; and the key `trust` holds when its chain left such a key by another rotation
   * than the marked one (`ForkedKey`: the thief's, followed before any name knew of the theft). None for a
   * record that names no registry and is `reached` at no URL.
   *
   * `reached`: the URL the name reaches the registry at (the configured entry's, a plugin set's provider's),
   * as a session passes it (`ClientState.sharedTrust`): a mark kept as of the URL a record kept before
   * records named their registry was configured at, a mirror's maybe (`isDepartureOf`), is read by a
   * frozen install or `verify` of a name reaching the registry there only so; a record that names no
   * registry is told by it, as that URL's. Without it, such a mark refused the mirror's copy signed by the
   * stolen key online and let a frozen install take it, and `verify` pass what it placed. The name's
   * mirrors follow it (`ReachedAt`), read for marks only: a mark kept as of a URL it lists only as a mirror
   * was read by none of its checks.
   */
  revokedKeys(trust: TrustRecord, reached?: readonly string[]): Promise<readonly (ChainLink | ForkedKey)[]>;
}

/**
 * The signature checks (openpgp) and the session over them, loaded when a registry or a signature is first
 * read: an install that already matches its lock never reads one, and starts without their ~80 ms.
 */
export const loadTrust = () =>
  Promise.all([
    import('../index-builder/signing.ts'),
    import('../index-builder/verify.ts'),
    import('./session.ts'),
    import('./key-chain.ts'),
  ]).then(([signing, verify, session, keyChain]) => ({
    departuresAgainst: keyChain.departuresAgainst,
    forkFromRevoked: keyChain.forkFromRevoked,
    forkedHeldKey: keyChain.forkedHeldKey,
    revokedLink: keyChain.revokedLink,
    findBinarySecretKey: signing.findBinarySecretKey,
    readPublicKey: signing.readPublicKey,
    readTrustedKey: signing.readTrustedKey,
    untrustedKeyProblem: signing.untrustedKeyProblem,
    verifyManifest: verify.verifyManifest,
    RegistrySession: session.RegistrySession,
  }));

/** What `untrustedKeyProblem` found of each pinned key read, by its armored text (null: none): once a process. */
const pinnedKeyProblems = new Map<string, string | null>();

/**
 * A registry's pinned key, parsed and checked against the fingerprint its trust state records: a key file
 * replaced (or a write of the two cut short) is refused, never trusted for being in the data directory.
 * And a key anyone can sign as (an Ed25519 point of small order), or whose arithmetic is unbounded, is
 * refused, naming `registry` (the name its trust state is kept under, its folder's) and how to pin another: `registry
 * add` and every other place that takes a key refuse one now, but a key pinned before they did was used as
 * it was. Checked once a process for each key, however many versions a command verifies by it.
 * @throws TrustError SNAPSHOT_WRONG_KEY (another key, or one holding secret key material); ClientError
 *   PINNED_KEY_UNTRUSTED
 * @example const key = await readPinnedKey(trust, entry.name);
 */
export async function readPinnedKey(trust: TrustRecord, registry: string): Promise<Key> {
  const { readPublicKey, untrustedKeyProblem } = await loadTrust();
  const key = await readPublicKey(trust.armoredKey);
  if (key.fingerprint !== trust.fingerprint)
    throw new TrustError(
      'SNAPSHOT_WRONG_KEY',
      `the pinned key file holds key ${key.fingerprint}, but its trust state records ${trust.fingerprint}`,
    );
  // The client pins a key's public part alone: secret material there (a secret key, a secret subkey under
  // the public key) was written by another hand, and whoever can read it may sign as the registry.
  if (isSecretKeyText(trust.armoredKey, key))
    throw new TrustError(
      'SNAPSHOT_WRONG_KEY',
      `the pinned key file holds key ${key.fingerprint} with its secret key material, which the client never pins (anyone who reads it may sign as the registry): pin the registry's public key again (a configured registry: ${pinAgainCommand(registry)}), and have the registry replace a key that has left it`,
    );
  let problem = pinnedKeyProblems.get(trust.armoredKey);
  if (problem === undefined) {
    problem = untrustedKeyProblem(key.key) ?? null;
    pinnedKeyProblems.set(trust.armoredKey, problem);
  }
  if (problem !== null)
    throw new ClientError(
      'PINNED_KEY_UNTRUSTED',
      `The key pinned for registry "${registry}" (trust/${registry} in the client's data directory), ${key.fingerprint}, cannot be trusted: ${problem}. It was pinned before this client refused such keys, and nothing it signs is taken: pin the registry's current key again (a configured registry: ${pinAgainCommand(registry)}; a plugin set's, or an \`install URL --key\`'s: remove that folder, and the key the set or the install names is pinned afresh)`,
    );
  return key.key;
}
