/**
 * One registry as one run of the client sees it: its pinned key, a trusted snapshot, and the documents read
 * through it in TUF's order (snapshot, then bin, then plugin document, then a version's manifest), each
 * from the cache when the cache holds the bytes its digest names and from the network otherwise, verified
 * either way before use, and kept in the cache only once verified.
 *
 * The snapshot is the one request that asks "what is new": sent with If-None-Match, so an unchanged registry
 * costs one 304. Everything else is addressed by digest (`<path>?v=<sha256>`) and never asked twice.
 *
 * The snapshot also vouches for the registry's transparency log (index-builder/log.ts: its length and head
 * hash). The head last accepted is kept in the trust state; a new snapshot is accepted only if its log
 * extends that one: the same head costs nothing, a longer log costs the segments holding the new entries
 * (and the last one remembered, which must still hash to the head remembered), and anything else (a log
 * cut short or gone, another history of the same length or longer) is refused before anything of that
 * snapshot is kept. A registry seen for the first time has its head remembered as it is (trust on first
 * use, no request more: a cold install stays five requests). The reading and judging is client/log-reader.ts.
 *
 * The floor and the log heads are also those every other name this client keeps the same registry under
 * (configured, a plugin set's) accepted under the same trust root (`SessionDeps.sharedTrust`).
 *
 * A snapshot the pinned key does not sign may be the registry's after a key rotation: the session then
 * follows the published rotations from the pinned key (client/key-chain.ts), verifies the snapshot by the
 * last key, and pins that key in the trust state, with the chain it followed; a break refuses the registry.
 */
import type { Key } from 'openpgp';
import type { Clock } from '../index-builder/clock.ts';
import { COMPRESSION_THRESHOLD_BYTES } from '../index-builder/compression.ts';
import { sha256Hex } from '../index-builder/digest.ts';
import { TrustError } from '../index-builder/errors.ts';
import {
  binKey,
  binOf,
  isPluginDocumentKey,
  manifestKey,
  pluginDocumentKey,
  SEARCH_KEY,
  SIGNED_SNAPSHOT_KEY,
  SNAPSHOT_KEY,
  signatureKey,
} from '../index-builder/layout.ts';
import type { LogEntry, ReadEntry } from '../index-builder/log.ts';
import type {
  LogHead,
  Manifest,
  PluginDocument,
  SearchDocument,
  SnapshotDocument,
  VersionRecord,
} from '../index-builder/model.ts';
import { MAX_ROTATION_BYTES, rotationKey } from '../index-builder/rotation.ts';
import { openSignedSnapshot, verifyManifest } from '../index-builder/verify.ts';
import { type RegistryEntry, registryIdentity, withoutCredentials } from './config.ts';
import { type CachedSnapshot, type ContentCache, SERVED_FROM_LIMIT } from './disk/cache.ts';
import type { SharedTrust, TrustRecord } from './disk/state.ts';
import { ClientError, pinAgainCommand, pinAgainRemedy } from './errors.ts';
import {
  type DocumentResponse,
  documentLoader,
  type Endpoint,
  type Fetcher,
  fetchBody,
  UNLISTED_LIMITS,
} from './fetcher.ts';
import {
  type ChainLink,
  checkHeldSnapshot,
  checkSnapshotRegistry,
  departuresAgainst,
  extendChain,
  forkFromRevoked,
  keyRevokedError,
  learnRetirements,
  readThroughRotations,
  revokedLink,
} from './key-chain.ts';
import { readLogExtension, readWholeLog } from './log-reader.ts';
import { TrustedSnapshot } from './trusted-snapshot.ts';

/** Attempts at a snapshot whose signature belongs to another publish than its body (one in between). */
const SNAPSHOT_ATTEMPTS = 3;

/** A trust record kept, then a step after it failed with `error` (SessionDeps.recordTrust). */
export interface KeptThenFailed {
  readonly keptThenFailed: unknown;
}

export interface SessionDeps {
  readonly fetcher: Fetcher;
  readonly cache: ContentCache;
  /**
   * Keeps the generation accepted (and the snapshot's digest), so no later run goes back. Resolves to
   * `KeptThenFailed` when the record was kept and a step after it failed (the configuration naming the key
   * a rotation led to): the session takes the record as its own all the same, as the files hold it, then
   * throws that failure.
   */
  readonly recordTrust: (record: TrustRecord) => Promise<KeptThenFailed | undefined>;
  readonly clock: Clock;
  /**
   * What the client's other names for the registry a snapshot names accepted under the same trust root
   * (`ClientState.sharedTrust`): a snapshot checked with the registry is held to that floor and those log
   * heads as to its own record's. Absent, the session's own record alone binds it.
   */
  readonly sharedTrust?: (
    registry: string,
    keys: TrustRecord,
    reached: readonly string[],
  ) => Promise<SharedTrust>;
  /**
   * The rotations read this run to learn what a link kept by an older client lacks (`learnRetirements`),
   * by registry identity and sequence, shared by the sessions of one client: each name of the registry,
   * and a snapshot read again, asked for them again. Absent, each session asks on its own.
   */
  readonly rotationsRead?: Map<string, Promise<Uint8Array | undefined>>;
  /** Never touch the network: the cached snapshot (if unexpired) and cached documents only. */
  readonly offline: boolean;
  /**
   * How long a snapshot checked with the registry stays current without asking again: `registry update`
   * then `install` ask once, not twice. 0 asks every time; `open({ refresh: true })` always asks.
   */
  readonly freshForMs: number;
  /**
   * What to do when the registry really moved (its snapshots name another registry than the one pinned),
   * said with SNAPSHOT_REGISTRY_CHANGED: a configured registry is added again, a plugin set's is not.
   */
  readonly whenMoved?: string;
  /**
   * What to do when the registry was rebuilt at a lower generation under the same key, said with
   * SNAPSHOT_ROLLBACK: a configured registry's `plugindex registry reset-trust NAME` (the default), a plugin
   * set's or one being added the same by its URL and key.
   */
  readonly whenRolledBack?: string;
}

/** How `open` went: whether the registry changed since the cached snapshot. */
export interface SnapshotReport {
  readonly generation: number;
  readonly expires: string;
  /** False when the registry answered 304 (or offline): nothing new. */
  readonly changed: boolean;
  /** The key the snapshot is signed by: the one pinned now. */
  readonly fingerprint: string;
  /** Set when the registry's key rotated since the key pinned before, and this run followed it. */
  readonly rotated?: { readonly from: string; readonly to: string; readonly steps: number };
}

/** A version's verified manifest, with the bytes and signature an install writes beside it. */
export interface VerifiedManifest {
  readonly manifest: Manifest;
  readonly bytes: Uint8Array;
  readonly signature: string;
}

interface SnapshotRequest {
  readonly pastCaches?: boolean;
  readonly etag?: string;
}
interface Fetched {
  readonly body: Uint8Array;
  readonly signature: string;
  readonly etag?: string;
  /** `servedFrom` of the response the snapshot came in. */
  readonly servedFrom?: readonly string[];
}
type FetchedSnapshot = Fetched | { readonly notModified: true; readonly servedFrom?: readonly string[] };

/**
 * The registry URL `url` (where a request for `path` under a base ended up, or a redirect on the way led) is
 * that base at: the URL less `/path` and any query. Undefined where it does not end in `path` (a redirect
 * to a storage URL of another name), which is no registry's URL.
 */
function servedFromUrl(url: string, path: string): string | undefined {
  if (!URL.canParse(url)) return undefined;
  const at = new URL(url);
  at.search = '';
  at.hash = '';
  return at.href.endsWith(`/${path}`) ? at.href.slice(0, -(path.length + 1)) : undefined;
}

/**
 * The hops of `servedAt` kept with the snapshot cached under `url` (`CachedSnapshot.servedFrom`): in order
 * (this request's, then those kept before), each once, `url` itself left out, without credentials, at most
 * `SERVED_FROM_LIMIT`: twice what the fetcher follows, so every hop of this request is kept and every one of
 * the request before (the snapshot before's, should a run be killed before that snapshot is replaced), and
 * the oldest kept before go first. Those kept before stay, answered at `url` itself too: they only add marks to read.
 */
function keptHops(servedAt: readonly string[], url: string): readonly string[] {
  const kept: string[] = [];
  for (const at of servedAt) {
    const bare = registryIdentity(withoutCredentials(new URL(at)));
    if (bare !== registryIdentity(url) && !kept.includes(bare)) kept.push(bare);
  }
  return kept.slice(0, SERVED_FROM_LIMIT);
}

/**
 * The registry URLs a response for `path` was asked for at (`servedFromUrl`): each URL a redirect left on
 * the way (`DocumentResponse.redirectedFrom`) and the one that answered. Every hop, not only the last: a URL
 * a mark is kept as of that redirects on, one hop more, hid the mark from a check reading the last alone.
 */
function servedFrom(response: DocumentResponse, path: string): { servedFrom?: readonly string[] } {
  const at = [...(response.redirectedFrom ?? []), response.url].flatMap(
    (url) => servedFromUrl(url, path) ?? [],
  );
  return at.length > 0 ? { servedFrom: at } : {};
}

/**
 * A document read by its digest came back as other bytes (or more of them) under a snapshot a cache may
 * have answered: the session reads the snapshot again past every cache and the document through it. Never
 * seen outside the session but as what it is, DOCUMENT_MISMATCH.
 */
class BehindSnapshot extends TrustError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DOCUMENT_MISMATCH', message, options);
  }
}

export class RegistrySession {
  readonly entry: RegistryEntry;
  readonly endpoint: Endpoint;
  readonly #deps: SessionDeps;
  #key: Key;
  #trust: TrustRecord;
  #trusted: TrustedSnapshot;
  /** The key that signs what `#trusted` lists (its manifests' signatures too), by its fingerprint. */
  #signer: { readonly key: Key; readonly fingerprint: string };
  /**
   * Each version record of a plugin document read, to the key of the snapshot it was read by: a manifest is
   * checked against that key, not the session's, which an update following a rotation replaces while a read
   * that began on the snapshot before (its document carrying signatures by the key before) is under way.
   */
  readonly #signedBy = new WeakMap<VersionRecord, { readonly key: Key; readonly fingerprint: string }>();
  #report: SnapshotReport | undefined;
  /** Set once the registry answered 404 for `snapshot.signed.json` (published before it existed). */
  #pairOnly = false;
  /**
   * Whether the snapshot trusted now was read past every cache (a fresh `?v=`): the documents it names are
   * then the origin's of that moment, and one a cache answers otherwise is read past it, not the snapshot.
   */
  #pastCaches = false;
  /** Set while `#readAgain` opens the snapshot: it is read past every cache. */
  #askPastCaches = false;
  /** The snapshot read again past every cache (once a session), while and after it is. */
  #readingAgain: Promise<void> | undefined;
  /** Digests whose `?v=` this session was answered other bytes for: read past every cache from then on. */
  readonly #answeredOtherwise = new Set<string>();
  /** The URLs the snapshot opened was held to the marks kept as of (`reachedAt`). */
  #reachedAt: readonly string[] | undefined;
  /**
   * The last open started: each starts once the one before settles, as each replaces what the session
   * trusts (an update on a kept client beside a read's first open, or beside `#readAgain`).
   */
  #opening: Promise<SnapshotReport> | undefined;

  constructor(entry: RegistryEntry, endpoint: Endpoint, key: Key, trust: TrustRecord, deps: SessionDeps) {
    this.entry = entry;
    this.endpoint = endpoint;
    this.#key = key;
    this.#trust = trust;
    this.#deps = deps;
    this.#trusted = this.#trustedBy(key, trust);
    this.#signer = { key, fingerprint: trust.fingerprint };
  }

  /** The registry key trusted: the one pinned, or the one a key rotation led to in this session. */
  get key(): Key {
    return this.#key;
  }

  /**
   * The chain kept, its links an older client kept (no rotation number, and so no `compromised` mark read)
   * given what their rotations say (`learnRetirements`), or undefined when there is nothing to learn. Once
   * per link: a rotation read is never rewritten. A link whose rotation cannot be read now is kept with the
   * time it was asked, and asked again a day later; each rotation is asked for once a run, whichever name
   * of the registry asks (`SessionDeps.rotationsRead`). What this cannot read fails nothing else.
   */
  async #learntChain(
    snapshot: SnapshotDocument,
    trust: TrustRecord,
    now: Date,
  ): Promise<ChainLink[] | undefined> {
    const chain = trust.chain ?? [];
    if (chain.every((link) => link.retiredBy !== undefined)) return undefined;
    const read = this.#deps.rotationsRead ?? new Map<string, Promise<Uint8Array | undefined>>();
    return learnRetirements({
      chain,
      held: trust,
      rotations: snapshot.key_rotations ?? 0,
      now,
      load: (sequence) => {
        const key = `${registryIdentity(snapshot.registry)}\n${sequence}`;
        let bytes = read.get(key);
        if (!bytes) {
          bytes = this.#load({ path: rotationKey(sequence), maxBytes: MAX_ROTATION_BYTES }).catch(
            (error: unknown) => {
              if (error instanceof ClientError) return undefined;
              throw error;
            },
          );
          read.set(key, bytes);
        }
        return bytes;
      },
    });
  }

  /** The trust state this session works under (an update accepted replaces it, a followed rotation's too). */
  get trust(): TrustRecord {
    return this.#trust;
  }

  /** The way out of SNAPSHOT_ROLLBACK for a registry its operator really rebuilt at a lower generation. */
  get #whenRolledBack(): string {
    return `if its operator rebuilt it at a lower generation (and only then), forget what every name of it accepted: ${
      this.#deps.whenRolledBack ?? `plugindex registry reset-trust ${this.entry.name}`
    }`;
  }

  /** The registry's files the pure readers ask for (client/log-reader.ts, client/key-chain.ts). */
  get #load() {
    return documentLoader(this.#deps.fetcher, this.endpoint);
  }

  get snapshot(): SnapshotDocument {
    return this.#trusted.snapshot;
  }

  /**
   * The URLs the snapshot opened was held to the marks kept as of (`ReachedAt`: the entry's URL, its
   * mirrors, and each URL a redirect led its request to or through): what a check of that snapshot outside
   * the session (`registry reset-trust`) reads marks as of too. Only the first may tell a record's registry.
   */
  get reachedAt(): readonly string[] {
    return this.#reachedAt ?? [this.entry.url, ...this.entry.mirrors];
  }

  #trustedBy(key: Key, trust: TrustRecord): TrustedSnapshot {
    return new TrustedSnapshot({
      key,
      clock: this.#deps.clock,
      ...(trust.highestGeneration !== undefined ? { highestGeneration: trust.highestGeneration } : {}),
    });
  }

  /**
   * Trusts the registry's current snapshot: a conditional request against the cached one, or the cached one
   * alone when offline. Records the generation accepted, so no later run goes back; a key rotation followed
   * is recorded as the new pin.
   *
   * Once per session, the reads' snapshot: every read of the session (a command's, or a kept client's until
   * its next update) is through the snapshot opened first, asked for once. `refresh` is an explicit update
   * (`registry update`, `updateRegistries`), which asks the registry every time, whatever this session opened
   * before and however recently a check was made (`SessionDeps.freshForMs`); what it accepts is what the
   * reads go through from then on, and one it refuses leaves them on the snapshot they had.
   * @throws TrustError (SNAPSHOT_*) when it does not verify, KEY_ROTATION_BROKEN when a rotation published
   *   from the pinned key does not; ClientError OFFLINE_MISSING, FETCH_*.
   */
  async open(options: { readonly refresh?: boolean } = {}): Promise<SnapshotReport> {
    const refresh = options.refresh === true;
    if (!refresh) {
      if (this.#report) return this.#report;
      // A snapshot being read again (`#readAgain`) is the one to open: not a second request beside it.
      if (this.#readingAgain) {
        await this.#readingAgain;
        if (this.#report) return this.#report;
      }
    }
    // A read's first open in flight is the one it waits for (not a second request beside it); a refresh asks
    // once that one settled, the registry answering what it holds then.
    return this.#afterOpening(async () => (!refresh && this.#report) || this.#open({ refresh }));
  }

  /** Runs `open` once the open started before it settled (`#opening`). */
  #afterOpening(open: () => Promise<SnapshotReport>): Promise<SnapshotReport> {
    const settled = this.#opening?.then(
      () => undefined,
      () => undefined,
    );
    const opening = settled ? settled.then(open) : open();
    this.#opening = opening;
    return opening;
  }

  /**
   * Opens the snapshot. Nothing the reads go through changes until it is accepted: the snapshot is checked
   * in a `TrustedSnapshot` of its own, and the key and trust state a rotation followed on the way leads to
   * are this open's own (`trust`, `key`) until then. Once accepted (its trust state recorded), all of it is
   * the session's at once, with no await between: a read beside an update (`info`'s fingerprint, the key an
   * install locks, the key revocations it checks) saw the rotation's key and record while the update still
   * checked the log and the marks, and locked a key the update then refused. A read under way keeps the
   * snapshot it began with (`#pluginDocument`).
   */
  async #open(options: { readonly refresh?: boolean }): Promise<SnapshotReport> {
    let trust = this.#trust;
    let key = this.#key;
    let trusted = this.#trustedBy(key, trust);
    const { cache } = this.#deps;
    const cached = await cache.snapshot(this.entry.url);
    let body: Uint8Array;
    let signature: string;
    let etag: string | undefined;
    let changed = true;
    let pastCaches = false;
    /**
     * Where the snapshot was read when it was asked for, each hop (a redirect may have led past every URL
     * configured, and a URL it led through may be one a mark is kept as of), or, not asked for, where the
     * request for the one cached was led through (`CachedSnapshot.servedFrom`).
     */
    let servedAt: readonly string[] = [];
    let rotated: SnapshotReport['rotated'];
    const now = this.#deps.clock.now();
    // The cached snapshot is the one last checked with the registry (its digest is in the trust state) and
    // that check is recent: it is verified again, but not asked for again. A check dated ahead of the clock
    // (a run whose clock ran fast, set right since) is not recent: taken as one, no run asked the registry
    // until the clock caught up with it, up to the snapshot's expiry (new yanks and advisories unseen).
    const checkedAge =
      trust.checkedAt === undefined ? Number.NaN : now.getTime() - Date.parse(trust.checkedAt);
    const current =
      cached !== undefined &&
      !options.refresh &&
      trust.snapshotSha256 === sha256Hex(cached.bytes) &&
      checkedAge >= 0 &&
      checkedAge < this.#deps.freshForMs;
    if (this.#deps.offline || current) {
      if (!cached)
        throw new ClientError(
          'OFFLINE_MISSING',
          `${this.entry.name}: no snapshot of ${this.entry.url} is cached; run \`plugindex registry update ${this.entry.name}\` online first`,
        );
      // The cache is per URL, shared by every registry name, plugin set and `registry add` of that URL: a
      // snapshot cached by another is one this trust record never checked the log of (it may be a fork).
      // Offline, only the snapshot this record accepted is trusted; not a refusal, as online may accept it.
      if (trust.snapshotSha256 !== sha256Hex(cached.bytes))
        throw new ClientError(
          'OFFLINE_MISSING',
          `${this.entry.name}: the snapshot of ${this.entry.url} cached is not the one this client last checked for ${this.entry.name}; run \`plugindex registry update ${this.entry.name}\` online first`,
        );
      await trusted.updateSnapshot(cached.bytes, cached.signature);
      body = cached.bytes;
      signature = cached.signature;
      etag = cached.etag;
      // Every URL the last request for it was led through, kept with it: no request tells them now.
      servedAt = cached.servedFrom ?? [];
      changed = false;
    } else {
      const held = trust;
      const { value, chain } = await readThroughRotations({
        load: this.#load,
        held: { key, fingerprint: held.fingerprint, armoredKey: held.armoredKey },
        ...(held.rotations !== undefined ? { from: held.rotations } : {}),
        retired: (held.chain ?? []).map((l) => l.fingerprint),
        read: async (followed) => {
          const reading = followed ? this.#trustedBy(followed.key, held) : trusted;
          const fetched = await this.#fetchSnapshot(cached, reading);
          return { ...fetched, trusted: reading, snapshot: reading.snapshot };
        },
      }).catch((error: unknown) => {
        // Refused under the floor this record keeps: said with the way out of a registry really rebuilt.
        if (error instanceof TrustError && error.code === 'SNAPSHOT_ROLLBACK')
          throw new TrustError(
            'SNAPSHOT_ROLLBACK',
            `${this.entry.url}/${SNAPSHOT_KEY}: ${error.message}; ${this.#whenRolledBack}`,
            { cause: error },
          );
        throw error;
      });
      ({ body, signature, etag, changed, pastCaches } = value);
      // This request's hops, then those kept from earlier requests (`keptHops`): a registry reached through
      // M1, then through M2, kept M2's alone, and a mark kept as of M1 was read by no later check. Read by
      // this check too, as by one that asks nothing after it: marks only, never a record's registry.
      servedAt = [...(value.servedFrom ?? []), ...(cached?.servedFrom ?? [])];
      if (chain) {
        // Only now, with the snapshot verified by the last key, is that key the one this open checks the rest
        // under; the session's once the snapshot is accepted.
        rotated = { from: held.fingerprint, to: chain.fingerprint, steps: chain.steps.length };
        trust = {
          ...held,
          fingerprint: chain.fingerprint,
          armoredKey: chain.armoredKey,
          chain: extendChain(held.chain, chain.links),
        };
        key = chain.key;
        trusted = value.trusted;
      }
    }
    const snapshot = trusted.snapshot;
    checkSnapshotRegistry(
      trust.registry,
      snapshot,
      `${this.entry.url}/${SNAPSHOT_KEY}`,
      this.#deps.whenMoved ?? `add it again: ${pinAgainCommand(this.entry.name, this.entry.url)}`,
    );
    // A snapshot not asked for again (offline, or checked moments ago) is the one this record accepted.
    const checked = !this.#deps.offline && !current;
    // The trust state is kept per name, and one registry is reached under several (configured, each plugin
    // set's): held to its own record alone, a name was served a snapshot older than another had accepted
    // from the same registry and key (a rollback of what this machine has seen), and took a forked log on
    // first use that another name would refuse. Keyed by the registry the snapshot signs, not the URL
    // reached: a mirror's or another spelling's snapshot is the same registry's. (A record kept before
    // records named their registry is told by the URL it was reached at: this one's, or the registry's.)
    // What the others know of its keys (a mark, a key's one successor) binds a snapshot not asked for again
    // too: offline, a name holding a key another saw retired as stolen installed from the snapshot that key
    // signed, cached before the mark. Their floors and log heads bind only one checked with the registry.
    // Marks are read as of each URL this name may reach the registry at: its own, and its mirrors, one of
    // which may have served this snapshot (`ReachedAt`); and each URL a redirect led to, where that served
    // it or redirected on: a mark kept as of it (a name configured there, removed) was read by no check
    // reaching it so, and the stolen key's copy served there, or one hop past it, was taken (not asked for,
    // each URL the request for the one cached was led through, kept with it: offline, read as of the
    // configured URLs alone). After the mirrors, as a mark only: whoever answers chose where it led, so it
    // never tells a record's registry (floors, log heads), while a mark read wrongly only refuses, which that
    // answer could do anyway.
    const reachedAt = [this.entry.url, ...this.entry.mirrors];
    for (const at of servedAt)
      if (!reachedAt.some((url) => registryIdentity(url) === registryIdentity(at))) reachedAt.push(at);
    const known = await this.#deps.sharedTrust?.(snapshot.registry, trust, reachedAt);
    const shared = checked ? known : undefined;
    // A key another name of this registry saw retired as stolen: a snapshot it signs (with any generation
    // and a log extending what was seen, as its holder can write) is refused before anything of it is kept.
    const revoked = revokedLink(known?.revoked, trust.fingerprint);
    if (revoked)
      throw keyRevokedError(
        revoked,
        snapshot.registry,
        `${this.entry.url}/${SNAPSHOT_KEY}`,
        `another name of that registry on this machine followed the rotation, this one never did: ${checked ? `what answers at ${this.entry.url} serves a snapshot by the retired key (a stale cache, or whoever took the key)` : 'the snapshot it last accepted, kept here, is by the retired key'}; ${pinAgainRemedy({ registry: this.entry.name, url: this.entry.url })}`,
      );
    // Its thief can also sign a rotation from that key to one of their own, which a name still holding it
    // followed: the key it then held was none marked, and every snapshot the thief signed passed. The one
    // step from a stolen key is the marked rotation's.
    const fork = forkFromRevoked(known?.revoked, trust);
    if (fork)
      throw keyRevokedError(
        fork.mark,
        snapshot.registry,
        `${this.entry.url}/${fork.link.retiredBy === undefined ? 'a key rotation' : rotationKey(fork.link.retiredBy)} (a rotation to key ${fork.to})`,
        `another name of that registry on this machine followed the rotation that retired it to key ${fork.mark.retiredTo}, and this is another: what answers at ${this.entry.url} serves a rotation the key's thief signed; ${pinAgainRemedy({ registry: this.entry.name, url: this.entry.url })}`,
      );
    // Signed by the key pinned (no rotation followed): it must count the rotations that key is at. Checked
    // after the marks, which refuse its snapshot whatever it counts: the thief's copy of a registry counts
    // the rotation that retired the key (its files are the registry's, re-signed), and refused for the
    // count first, KEY_ROTATION_BROKEN, the refusal said nothing of the theft nor of the mend.
    if (!rotated) checkHeldSnapshot(trust, snapshot, `${this.entry.url}/${SNAPSHOT_KEY}`);
    // The same of a key retired routinely that leaked since, which no mark names: a key is retired once.
    const departed = forkFromRevoked(departuresAgainst(known?.departures, trust), trust);
    if (departed)
      throw new TrustError(
        'KEY_ROTATION_BROKEN',
        `${this.entry.url}/${departed.link.retiredBy === undefined ? 'a key rotation' : rotationKey(departed.link.retiredBy)} rotates key ${departed.link.fingerprint} to key ${departed.to}, but ${snapshot.registry} rotated it to key ${departed.mark.retiredTo}${departed.mark.retiredBy === undefined ? '' : ` at ${rotationKey(departed.mark.retiredBy)}`}, as another name of it on this machine followed: a key is retired once, so this rotation was signed by whoever holds that key since; refused, nothing kept. ${pinAgainRemedy({ registry: this.entry.name, url: this.entry.url, start: true })}`,
      );
    const floor = shared?.highestGeneration;
    if (floor && snapshot.generation < floor.generation && !pastCaches) {
      // Another name of the registry read a publish past every cache (`#readAgain`) that the edge still
      // answers the snapshot before of: asked for past every cache, as any snapshot older than one accepted
      // is (`#fetchSnapshot`), from where this open began (the session's key and trust state, this open's
      // never having been theirs); refused below if the origin's is older still.
      this.#askPastCaches = true;
      try {
        return await this.#open({ refresh: true });
      } finally {
        this.#askPastCaches = false;
      }
    }
    if (floor && snapshot.generation < floor.generation)
      throw new TrustError(
        'SNAPSHOT_ROLLBACK',
        `${this.entry.url}/${SNAPSHOT_KEY}: snapshot generation ${snapshot.generation} is older than ${floor.generation}, already seen from ${snapshot.registry} under the same key (kept as trust/${floor.name} in the data directory); ${this.#whenRolledBack}`,
      );
    // Signed by a key another name followed a rotation away from, yet not below the floor: the registry
    // signs nothing with a key it left (its snapshots by that key are all older than the first by the next),
    // so this is whoever holds the key now (one that leaked after a routine rotation, which no mark names).
    // The registry's own answer is signed by its current key, which this name then follows a rotation to.
    const retired = shared?.retired?.find((r) => r.fingerprint === trust.fingerprint);
    if (retired)
      throw new TrustError(
        'SNAPSHOT_RETIRED_KEY',
        `${this.entry.url}/${SNAPSHOT_KEY}: snapshot generation ${snapshot.generation} is signed by key ${trust.fingerprint}, which ${snapshot.registry} rotated away from (followed as trust/${retired.name} in the data directory, generation ${retired.generation} accepted since under a later key): the registry signs nothing with a key it left, so this is a copy signed by whoever holds that key now; refused, nothing kept. ${pinAgainRemedy({ registry: this.entry.name, url: this.entry.url, start: true })}, or reach the registry itself`,
      );
    // Before anything of this snapshot is kept (cache, trust state): a refused log leaves both as they were.
    const extension = checked ? await this.#extendedLog(snapshot, trust, shared?.logs ?? []) : undefined;
    const log = extension ? extension.log : trust.log;
    // A new ETag for the same bytes (another CDN edge) is kept too, or every later run would get a 200; and
    // each URL other than the one it is kept under that a redirect (or a mirror) led the request through, and
    // those kept before (`keptHops`), so a check that asks nothing (offline, a frozen install, `verify`)
    // reads the marks kept as of every hop too, as this one did: the last alone hid a mark kept as of a URL
    // that redirected on, and the last request's alone one kept as of a URL an earlier request went through
    // (reached through M1, then M2: M1's mark was read offline no more). Kept whatever this
    // name's mirrors (the cache is the URL's, shared by every name reaching it there), and never with
    // credentials a redirect put in one (`withoutCredentials`): no registry's URL has any.
    const served = keptHops(servedAt, this.entry.url);
    const servedBefore = cached?.servedFrom ?? [];
    const servedChanged =
      served.length !== servedBefore.length || served.some((url, at) => url !== servedBefore[at]);
    if (changed || !cached || etag !== cached.etag || servedChanged || cached.servedFromInSnapshot)
      await cache.putSnapshot(this.entry.url, {
        bytes: body,
        signature,
        ...(etag ? { etag } : {}),
        ...(served.length > 0 ? { servedFrom: served } : {}),
      });
    let recordedThenFailed: KeptThenFailed | undefined;
    if (checked) {
      const learnt = await this.#learntChain(snapshot, trust, now);
      const { logsExtended: _before, ...kept } = trust;
      trust = {
        ...kept,
        ...(learnt ? { chain: learnt } : {}),
        highestGeneration: snapshot.generation,
        snapshotSha256: sha256Hex(body),
        checkedAt: now.toISOString(),
        ...(log ? { log } : {}),
        ...(log && extension?.extended.length ? { logsExtended: extension.extended } : {}),
        rotations: snapshot.key_rotations ?? 0,
        registry: snapshot.registry,
      };
      recordedThenFailed = await this.#deps.recordTrust(trust);
    }
    // Accepted: the session's from here, all at once (no await from here to the return). Even when a step
    // after the record was kept failed: the session stayed on the key the record left, following the
    // rotation again at each read (and failing once it was no longer served) while the files, and any new
    // client, held the new one.
    this.#trust = trust;
    this.#key = key;
    this.#trusted = trusted;
    this.#signer = { key, fingerprint: trust.fingerprint };
    this.#reachedAt = reachedAt;
    this.#pastCaches = pastCaches;
    this.#report = {
      generation: snapshot.generation,
      expires: snapshot.expires,
      changed,
      fingerprint: trust.fingerprint,
      ...(rotated ? { rotated } : {}),
    };
    if (recordedThenFailed) throw recordedThenFailed.keptThenFailed;
    return this.#report;
  }

  /**
   * The log head to remember once `snapshot` is accepted: it must extend this record's head and each other
   * head `shared` remembers for the registry (readLogExtension). Only a head that differs from this record's,
   * and that this record's was not checked to extend before (`TrustRecord.logsExtended`), costs requests:
   * the snapshot's log extends this record's, so it extends those too. With none remembered anywhere, the
   * snapshot's is taken on first use. `extended`: the heads of `shared` the log now extends, to remember.
   * @throws TrustError LOG_* as readLogExtension.
   */
  async #extendedLog(
    snapshot: SnapshotDocument,
    trust: TrustRecord,
    shared: readonly LogHead[],
  ): Promise<{ readonly log: LogHead | undefined; readonly extended: LogHead[] }> {
    const own = trust.log;
    const same = (a: LogHead, b: LogHead) => a.length === b.length && a.head === b.head;
    const source = { base: this.entry.url };
    let log = await readLogExtension(this.#load, snapshot, { ...source, remembered: own });
    const extended: LogHead[] = [];
    for (const remembered of shared) {
      const known =
        own !== undefined &&
        (same(remembered, own) || (trust.logsExtended ?? []).some((head) => same(head, remembered)));
      if (!known) log = await readLogExtension(this.#load, snapshot, { ...source, remembered });
      if (log === undefined || !same(remembered, log)) extended.push(remembered);
    }
    return { log, extended };
  }

  /**
   * The registry's whole log as the snapshot vouches for it, every entry checked from the first to the
   * head (`audit`): empty when the snapshot carries no log.
   * @throws TrustError LOG_* when the served log is not the one the snapshot signs; ClientError
   *   OFFLINE_MISSING (the log is not kept offline), FETCH_*.
   */
  async log(): Promise<{
    readonly head: LogHead | undefined;
    readonly entries: readonly ReadEntry[];
    readonly voided: ReadonlyMap<number, LogEntry>;
  }> {
    await this.open();
    // Refused offline only once a segment is wanted: a snapshot that carries no log needs none.
    return readWholeLog(
      async (request) => {
        if (this.#deps.offline)
          throw new ClientError(
            'OFFLINE_MISSING',
            `${this.entry.name}: the registry's log is not kept offline; run without --offline`,
          );
        return this.#load(request);
      },
      this.snapshot,
      // The key of the snapshot read through (accepted with it): judged by the key an update following a
      // rotation was checking, the voids the key before signed were refused as not the registry's.
      { base: this.entry.url, registryKey: this.#signer.fingerprint },
    );
  }

  /**
   * The registry's current snapshot: `snapshot.signed.json`, the snapshot and its signature in one request
   * (with the cached ETag, so an unchanged registry answers 304); from a registry that does not publish it
   * (404), the pair `snapshot.json` and `.asc`. A signature that does not verify is asked for again past
   * every cache (a fresh `?v=`): the pair may straddle a publish, and a cache may hold a damaged copy; so is
   * one older than the generation accepted, which an edge answers for up to a minute after a publish.
   * `pastCaches`: whether the snapshot returned was asked for so (`#readAgain` has it asked for so at once).
   */
  async #fetchSnapshot(
    cached: CachedSnapshot | undefined,
    trusted: TrustedSnapshot,
  ): Promise<{
    body: Uint8Array;
    signature: string;
    etag?: string;
    changed: boolean;
    pastCaches: boolean;
    servedFrom?: readonly string[];
  }> {
    for (let attempt = 1; ; attempt++) {
      const pastCaches = attempt > 1 || this.#askPastCaches;
      const request: SnapshotRequest = pastCaches
        ? { pastCaches }
        : cached?.etag
          ? { etag: cached.etag }
          : {};
      let fetched: FetchedSnapshot;
      if (this.#pairOnly) fetched = await this.#fetchPair(request, cached);
      else {
        try {
          fetched = await this.#fetchSigned(request);
        } catch (error) {
          if (!(error instanceof ClientError && error.code === 'FETCH_NOT_FOUND')) throw error;
          this.#pairOnly = true;
          fetched = await this.#fetchPair(request, cached);
        }
      }
      const current = 'notModified' in fetched ? (cached as CachedSnapshot) : undefined;
      const body = current?.bytes ?? (fetched as Fetched).body;
      const signature = current?.signature ?? (fetched as Fetched).signature;
      const etag = current ? cached?.etag : (fetched as Fetched).etag;
      const changed = !current && (!cached || sha256Hex(body) !== sha256Hex(cached.bytes));
      try {
        await trusted.updateSnapshot(body, signature);
        const at = fetched.servedFrom;
        return {
          body,
          signature,
          changed,
          pastCaches,
          ...(etag ? { etag } : {}),
          ...(at !== undefined ? { servedFrom: at } : {}),
        };
      } catch (error) {
        // Older than one accepted, asked for by its name: the edge's, kept for up to its max-age after a
        // publish this client has read past every cache since (`#readAgain`, in this run or one before);
        // asked for past every cache, an origin put back to an older generation is refused as ever.
        const retry =
          error instanceof TrustError &&
          (error.code === 'SNAPSHOT_BAD_SIGNATURE' || (error.code === 'SNAPSHOT_ROLLBACK' && !pastCaches));
        if (!retry || attempt >= SNAPSHOT_ATTEMPTS) throw error;
      }
    }
  }

  async #fetchSigned(request: SnapshotRequest): Promise<FetchedSnapshot> {
    const response = await this.#deps.fetcher.document(this.endpoint, {
      path: SIGNED_SNAPSHOT_KEY,
      maxBytes: UNLISTED_LIMITS.snapshot,
      ...request,
    });
    const served = servedFrom(response, SIGNED_SNAPSHOT_KEY);
    if (response.status === 304) return { notModified: true, ...served };
    const { snapshot, signature } = openSignedSnapshot(response.bytes);
    return { body: snapshot, signature, ...(response.etag ? { etag: response.etag } : {}), ...served };
  }

  async #fetchPair(request: SnapshotRequest, cached: CachedSnapshot | undefined): Promise<FetchedSnapshot> {
    const response = await this.#deps.fetcher.document(this.endpoint, {
      path: SNAPSHOT_KEY,
      maxBytes: UNLISTED_LIMITS.snapshot,
      ...(request.pastCaches ? { pastCaches: true } : {}),
      ...(request.etag ? { etag: request.etag } : {}),
    });
    const served = servedFrom(response, SNAPSHOT_KEY);
    if (response.status === 304) return { notModified: true, ...served };
    const body = response.bytes;
    // The very snapshot verified before: its signature is the one kept with it.
    const signature =
      cached && sha256Hex(body) === sha256Hex(cached.bytes)
        ? cached.signature
        : await this.#text(
            signatureKey(SNAPSHOT_KEY),
            UNLISTED_LIMITS.signature,
            sha256Hex(body),
            request.pastCaches === true,
          );
    return { body, signature, ...(response.etag ? { etag: response.etag } : {}), ...served };
  }

  async #text(path: string, maxBytes: number, version: string, pastCaches = false): Promise<string> {
    const bytes = await fetchBody(this.#deps.fetcher, this.endpoint, {
      path,
      maxBytes,
      version,
      ...(pastCaches ? { pastCaches } : {}),
    });
    return new TextDecoder().decode(bytes);
  }

  /**
   * `read` (which reads documents by digest through `#listed`), and once more after the snapshot is read
   * again past every cache when a document came back as other bytes than a snapshot a cache may have
   * answered names. On AWS the snapshot is asked for by its own name, which the edge answers from its cache
   * for up to a minute after a publish (until the publish's invalidation is through), while a document's
   * `?v=<sha256>` that edge had not cached is the origin's, which ignores `v` and answers the new bytes: a
   * client holding the old snapshot failed DOCUMENT_MISMATCH (or RESPONSE_TOO_LARGE, a document that grew)
   * on every search and install for that minute. The snapshot read again is opened as any other (signature,
   * key chain, rollback floor, log extension, all kept on disk as `open` keeps them); one naming the same
   * digest leaves the document to be read past every cache once (`#listed`), then refused.
   */
  async #throughCurrentSnapshot<T>(read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (error) {
      if (!(error instanceof BehindSnapshot)) throw error;
      // Once a session: a read side by side (a frozen install plans its targets so) that failed the same
      // way, before or after, reads again through the snapshot read then, or fails as it did.
      this.#readingAgain ??= this.#readAgain();
      await this.#readingAgain;
      return read();
    }
  }

  /** Opens the registry's snapshot again, read past every cache, as `open` opens any. */
  async #readAgain(): Promise<void> {
    this.#report = undefined;
    await this.#afterOpening(async () => {
      this.#askPastCaches = true;
      try {
        return await this.#open({ refresh: true });
      } finally {
        this.#askPastCaches = false;
      }
    });
  }

  /**
   * A document the snapshot (or a bin) lists, by its digest: from the cache when held, else fetched as
   * `<path>?v=<sha256>`, capped at its listed size. The caller verifies; `keep` caches it once it has.
   *
   * Other bytes (or more) under that `?v=` are a cache's, or the origin's of another generation: under a
   * snapshot a cache may have answered, BehindSnapshot (`#throughCurrentSnapshot` reads the snapshot again);
   * under one read past every cache, the document is read past every cache too, once: an edge can be made
   * to keep a document's old bytes under the `?v=` of its next digest, by anyone who asks for that `?v=`
   * before the publish lands. What that answers, the caller checks as ever. `edgeKeyed` false: a path whose
   * cache ignores `v` (a version's manifest, kept a year), read as it always was.
   */
  async #listed(
    path: string,
    digest: { sha256: string; size: number },
    edgeKeyed = true,
  ): Promise<{ bytes: Uint8Array; keep: () => Promise<void> }> {
    const held = await this.#deps.cache.document(digest.sha256);
    if (held) return { bytes: held, keep: async () => undefined };
    if (this.#deps.offline)
      throw new ClientError(
        'OFFLINE_MISSING',
        `${this.entry.name}: ${path} (sha256 ${digest.sha256}) is not cached, and --offline forbids fetching it`,
      );
    // A plugin document over the compression threshold has a brotli variant beside it, which the AWS edge
    // does not route to: asked for by its name, decoded, else the document (fetcher.ts, `variant`).
    const variant =
      isPluginDocumentKey(path) && digest.size > COMPRESSION_THRESHOLD_BYTES
        ? { variant: 'br' as const }
        : {};
    const read = (pastCaches: boolean) =>
      fetchBody(this.#deps.fetcher, this.endpoint, {
        path,
        maxBytes: digest.size,
        version: digest.sha256,
        sha256: digest.sha256,
        ...variant,
        ...(pastCaches ? { pastCaches } : {}),
      });
    const kept = (bytes: Uint8Array) => ({
      bytes,
      keep: () => this.#deps.cache.putDocument(digest.sha256, bytes),
    });
    if (!edgeKeyed) return kept(await read(false));
    if (!this.#answeredOtherwise.has(digest.sha256)) {
      let answered: Uint8Array | ClientError;
      try {
        answered = await read(false);
      } catch (error) {
        if (!(error instanceof ClientError && error.code === 'RESPONSE_TOO_LARGE')) throw error;
        answered = error;
      }
      if (
        !(answered instanceof ClientError) &&
        answered.byteLength === digest.size &&
        sha256Hex(answered) === digest.sha256
      )
        return kept(answered);
      this.#answeredOtherwise.add(digest.sha256);
      if (!this.#pastCaches)
        throw new BehindSnapshot(
          `${this.entry.url}/${path}?v=${digest.sha256}: ${
            answered instanceof ClientError ? `more than the ${digest.size} bytes listed` : 'other bytes'
          } than the snapshot names (a mix of generations, or tampering)`,
          answered instanceof ClientError ? { cause: answered } : undefined,
        );
    }
    return kept(await read(true));
  }

  /**
   * The plugin's signed document, or undefined when this registry does not list it (its bin says so).
   * @throws TrustError when the bin or the document does not match what the snapshot binds.
   */
  pluginDocument(name: string): Promise<PluginDocument | undefined> {
    return this.#throughCurrentSnapshot(() => this.#pluginDocument(name));
  }

  async #pluginDocument(name: string): Promise<PluginDocument | undefined> {
    await this.open();
    // The snapshot opened now, kept to the end of this read: an update accepted meanwhile (a kept client's)
    // replaces the session's, and the bin read by this one's digest is then checked against that one's.
    const [trusted, signer] = [this.#trusted, this.#signer];
    const bin = binOf(name);
    const path = binKey(bin);
    const binDigest = trusted.snapshot.documents[path];
    if (!binDigest) return undefined;
    const binBytes = await this.#listed(path, binDigest);
    const listing = trusted.updateBin(bin, binBytes.bytes);
    await binBytes.keep();
    const docDigest = listing.documents[pluginDocumentKey(name)];
    if (!docDigest) return undefined;
    const docBytes = await this.#listed(pluginDocumentKey(name), docDigest);
    const doc = trusted.pluginDocument(name, docBytes.bytes);
    await docBytes.keep();
    for (const version of doc.versions) this.#signedBy.set(version, signer);
    return doc;
  }

  /** The registry's verified `search.json`. */
  searchDocument(): Promise<SearchDocument> {
    return this.#throughCurrentSnapshot(() => this.#searchDocument());
  }

  async #searchDocument(): Promise<SearchDocument> {
    await this.open();
    const trusted = this.#trusted; // as `#pluginDocument`
    const digest = trusted.snapshot.documents[SEARCH_KEY];
    if (!digest)
      throw new TrustError('DOCUMENT_NOT_LISTED', `${this.entry.url}: ${SEARCH_KEY} is not in snapshot.json`);
    const fetched = await this.#listed(SEARCH_KEY, digest);
    trusted.verifyDocument(SEARCH_KEY, fetched.bytes);
    await fetched.keep();
    const parsed = JSON.parse(new TextDecoder().decode(fetched.bytes)) as SearchDocument;
    if (!Array.isArray(parsed?.plugins))
      throw new TrustError('DOCUMENT_MALFORMED', `${this.entry.url}/${SEARCH_KEY} lacks its plugins`);
    return parsed;
  }

  /**
   * Any other document the snapshot lists (the falcoctl index), its bytes verified against the snapshot;
   * undefined when this registry does not publish it.
   */
  listedDocument(path: string): Promise<Uint8Array | undefined> {
    return this.#throughCurrentSnapshot(() => this.#listedDocument(path));
  }

  async #listedDocument(path: string): Promise<Uint8Array | undefined> {
    await this.open();
    const trusted = this.#trusted; // as `#pluginDocument`
    const digest = trusted.snapshot.documents[path];
    if (!digest) return undefined;
    const fetched = await this.#listed(path, digest);
    trusted.verifyDocument(path, fetched.bytes);
    await fetched.keep();
    return fetched.bytes;
  }

  /**
   * A version's manifest and its signature, verified against the plugin document (digest, signature by the
   * pinned key, the same artifacts). Cached by its digest, the signature beside it under the pinned key's
   * fingerprint.
   */
  async manifest(name: string, version: VersionRecord): Promise<VerifiedManifest> {
    const path = manifestKey(name, version.version);
    const url = `${this.entry.url}/${path}`;
    const fetched = await this.#listed(
      path,
      { sha256: version.manifest_sha256, size: version.manifest_size },
      false,
    );
    const { key, fingerprint } = this.#signedBy.get(version) ?? this.#signer;
    const verify = (signature: string) =>
      verifyManifest({ name, version, manifest: fetched.bytes, signature, key, url });
    // The plugin document carries it (since manifest_signature exists); else it was kept beside the cached
    // manifest, or it is fetched. A kept one that no longer verifies was damaged on disk: fetched again.
    let signature =
      version.manifest_signature ?? (await this.#deps.cache.signature(version.manifest_sha256, fingerprint));
    let manifest: Manifest | undefined;
    if (signature !== undefined) {
      try {
        manifest = await verify(signature);
      } catch (error) {
        if (version.manifest_signature !== undefined || !(error instanceof TrustError)) throw error;
        signature = undefined;
      }
    }
    if (signature === undefined || manifest === undefined) {
      if (this.#deps.offline)
        throw new ClientError(
          'OFFLINE_MISSING',
          `${url}.asc is not cached, and --offline forbids fetching it`,
        );
      signature = await this.#text(signatureKey(path), UNLISTED_LIMITS.signature, version.manifest_sha256);
      manifest = await verify(signature);
      await this.#deps.cache.putSignature(version.manifest_sha256, fingerprint, signature);
    }
    await fetched.keep();
    return { manifest, bytes: fetched.bytes, signature };
  }
}
