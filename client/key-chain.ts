/**
 * Following a registry's key rotations (index-builder/rotation.ts) from the key a client pinned, as TUF's
 * client follows root rotations: `keys/rotation/<k+1>.json`, `<k+2>`... each checked by the key held and
 * by the next, until the first that is not published; then the snapshot must be signed by the last key and
 * count exactly the rotations followed. A step that does not verify breaks the chain, and nothing of it is
 * trusted. Pure: the caller's loader fetches, and the caller keeps the new pin.
 *
 * `readThroughRotations` is the whole of it for a reader of a registry (the session, `verify --url`): the
 * snapshot read by the key held, and, when that key does not sign it, by the key the rotations lead to.
 *
 * @example
 * const { value, chain } = await readThroughRotations({
 *   load: documentLoader(fetcher, endpoint), held, from: trust.rotations,
 *   read: async (chain) => ({ snapshot: await verifiedSnapshot(chain?.key ?? held.key) }),
 * }); // then pin chain.fingerprint, when a chain was followed
 */
import type { Key } from 'openpgp';
import { isSecretKeyText } from '../index-builder/armor.ts';
import { KeyError, TrustError } from '../index-builder/errors.ts';
import type { SnapshotDocument } from '../index-builder/model.ts';
import {
  MAX_ROTATION_BYTES,
  MAX_ROTATIONS,
  readSignedRotation,
  rotationKey,
  verifyRotationStep,
} from '../index-builder/rotation.ts';
import { readPublicKey } from '../index-builder/signing.ts';
import { registryIdentity } from './config.ts';
import type { DocumentLoader } from './fetcher.ts';

// Kept apart so the install and verify commands, which name a revoked key in their refusals, load no
// openpgp.js at start (key-revocation.ts); exported here as well for the readers of a registry.
export { keyRevokedError, revokedLink } from './key-revocation.ts';

/**
 * A key a client pinned before the one it holds now, kept so what it vouched for can still be checked;
 * unless the rotation that retired it was made because it is no longer secret (`compromised`): then whoever
 * took it can sign anything, and nothing it signed is trusted (`revokedLink`).
 */
export interface ChainLink {
  readonly fingerprint: string;
  readonly armoredKey: string;
  /**
   * The sequence of the rotation that retired this key. Absent from a link an older client kept, which
   * never read the rotation's `compromised` mark.
   */
  readonly retiredBy?: number;
  /** That rotation is marked `compromised` (index-builder/rotation.ts): the key is no longer secret. */
  readonly compromised?: true;
  /**
   * For a link without `retiredBy`: when its rotation was last asked for and taught nothing (missing, out
   * of reach, or not the rotation the client followed). Asked again only `RETIREMENT_ASK_AGAIN_MS` later.
   */
  readonly askedAt?: string;
}

/**
 * How long a link whose rotation taught nothing waits before it is asked for again: each check asked, for
 * every such link of every name of the registry, and a rotation that is gone or does not answer cost that
 * request (a timeout, a 404 tried on every mirror) on every check for good.
 */
export const RETIREMENT_ASK_AGAIN_MS = 24 * 60 * 60 * 1000;

/** A key held: parsed, with its fingerprint and armored text. */
export interface HeldKey {
  readonly key: Key;
  readonly fingerprint: string;
  readonly armoredKey: string;
}

export interface FollowedChain extends HeldKey {
  /** The sequence of the last rotation followed: what the snapshot signed by `key` must count. */
  readonly rotations: number;
  /** The rotations followed, in order. */
  readonly steps: readonly {
    readonly sequence: number;
    readonly from: string;
    readonly to: string;
    readonly registry: string;
    /** The rotation says `from` is no longer secret. */
    readonly compromised?: true;
  }[];
  /** The keys rotated away from, oldest first (the key held when following began among them). */
  readonly links: readonly ChainLink[];
}

function broken(message: string): never {
  throw new TrustError('KEY_ROTATION_BROKEN', message);
}

/**
 * Follows the rotations published after `from` (the rotations the held key is at), or, when the client
 * does not know where its key stands (`from` undefined: a key given by hand), from the first rotation that
 * is from the held key (those before it are read, never trusted). Returns undefined when none is published
 * from the held key (the caller's own error then stands).
 * @throws TrustError KEY_ROTATION_BROKEN naming the step that does not verify, or past MAX_ROTATIONS.
 */
export async function followRotations(options: {
  /** The bytes of `keys/rotation/<sequence>.json`, or undefined when it is not published (404). */
  readonly load: (sequence: number) => Promise<Uint8Array | undefined>;
  readonly held: HeldKey;
  readonly from?: number;
  /** The keys rotated away from before the held one (the trust state's chain): retired, never back. */
  readonly retired?: readonly string[];
}): Promise<FollowedChain | undefined> {
  let current = options.held;
  const steps: FollowedChain['steps'][number][] = [];
  const links: ChainLink[] = [];
  // A rotation back to a key already left (K1 -> K2 -> K1...) would loop and grow the chain kept.
  const seen = new Set([...(options.retired ?? []), current.fingerprint]);
  const first = (options.from ?? 0) + 1;
  for (let sequence = first; ; sequence++) {
    if (sequence - first >= MAX_ROTATIONS)
      broken(`more than ${MAX_ROTATIONS} key rotations in a row from ${rotationKey(first)}: not followed`);
    const bytes = await options.load(sequence);
    if (bytes === undefined) break;
    const read = readSignedRotation(bytes, rotationKey(sequence));
    // Where the held key stands is unknown: rotations before the first from it are not this client's.
    if (options.from === undefined && steps.length === 0)
      if (read.rotation.previous.fingerprint !== current.fingerprint) continue;
    const next = await verifyRotationStep(read, { current: current.key, sequence });
    if (seen.has(next.fingerprint))
      broken(
        `${rotationKey(sequence)} rotates to key ${next.fingerprint}, which was already rotated away from or is held: a retired key never comes back`,
      );
    seen.add(next.fingerprint);
    steps.push({
      sequence,
      from: current.fingerprint,
      to: next.fingerprint,
      registry: read.rotation.registry,
      ...(read.rotation.compromised === true ? { compromised: true as const } : {}),
    });
    links.push({
      fingerprint: current.fingerprint,
      armoredKey: current.armoredKey,
      retiredBy: sequence,
      ...(read.rotation.compromised === true ? { compromised: true as const } : {}),
    });
    current = { key: next.key, fingerprint: next.fingerprint, armoredKey: next.armored };
  }
  if (steps.length === 0) return undefined;
  return { ...current, rotations: (steps.at(-1) as { sequence: number }).sequence, steps, links };
}

/**
 * The chain kept with what each link lacking `retiredBy` (kept by a client older than the `compromised`
 * mark, which ignored it) learns from the rotation that retired it, or undefined when none learns anything.
 * The links are the keys left by consecutive rotations ending at `rotations` (the count of the snapshot the
 * key `held` signs): each is followed from the rotations after the one the key held is at, so link `i` of
 * `n` was left by rotation `rotations - n + 1 + i`. That rotation is taken only when it rotates from the
 * link's key to the key the client went to next (the next link, or the key held), signed by both: one by
 * the stolen key and a key of the thief's own, saying nothing of a theft, is another rotation and teaches
 * nothing. A link whose rotation is missing or does not verify stays as it was (trusted as a routine
 * rotation's, as the client that kept it did), given the time it was asked (`askedAt`), and is asked again
 * at the first check a day (`RETIREMENT_ASK_AGAIN_MS`) after, not at every check; an `askedAt` ahead of
 * `now` (a clock that ran fast, set right since) is no reason to wait.
 */
export async function learnRetirements(options: {
  readonly load: (sequence: number) => Promise<Uint8Array | undefined>;
  readonly chain: readonly ChainLink[];
  readonly held: { readonly fingerprint: string };
  readonly rotations: number;
  readonly now: Date;
}): Promise<ChainLink[] | undefined> {
  const { chain } = options;
  const out = [...chain];
  let changed = false;
  for (const [i, link] of chain.entries()) {
    if (link.retiredBy !== undefined) continue;
    const sequence = options.rotations - chain.length + 1 + i;
    if (sequence < 1) continue;
    const since = link.askedAt === undefined ? Number.NaN : options.now.getTime() - Date.parse(link.askedAt);
    if (since >= 0 && since < RETIREMENT_ASK_AGAIN_MS) continue;
    const learnt = await retirementOf(options, chain, i, sequence);
    const { askedAt: _a, ...rest } = link;
    out[i] = learnt ? { ...rest, ...learnt } : { ...rest, askedAt: options.now.toISOString() };
    changed = true;
  }
  return changed ? out : undefined;
}

/** What link `i`'s rotation (`sequence`) says of it, or undefined when it cannot be read or is not it. */
async function retirementOf(
  options: {
    readonly load: (sequence: number) => Promise<Uint8Array | undefined>;
    readonly held: { readonly fingerprint: string };
  },
  chain: readonly ChainLink[],
  i: number,
  sequence: number,
): Promise<{ readonly retiredBy: number; readonly compromised?: true } | undefined> {
  const link = chain[i] as ChainLink;
  const bytes = await options.load(sequence);
  if (bytes === undefined) return undefined;
  const next = chain[i + 1]?.fingerprint ?? options.held.fingerprint;
  try {
    const read = readSignedRotation(bytes, rotationKey(sequence));
    if (read.rotation.previous.fingerprint !== link.fingerprint || read.rotation.next.fingerprint !== next)
      return undefined;
    const linkKey = await readPublicKey(link.armoredKey);
    // The client keeps a key's public part alone: secret material in a link was written by another hand.
    if (isSecretKeyText(link.armoredKey, linkKey)) return undefined;
    const { key } = linkKey;
    await verifyRotationStep(read, { current: key, sequence });
    return {
      retiredBy: sequence,
      ...(read.rotation.compromised === true ? { compromised: true as const } : {}),
    };
  } catch (error) {
    if (!(error instanceof TrustError || error instanceof KeyError)) throw error;
    return undefined;
  }
}

/**
 * `chain` extended by `links`, a key already in it not appended again (but given what the link knows of
 * the rotation that retired it, when it lacks that: a mark, once learnt, is never dropped).
 */
export function extendChain(
  chain: readonly ChainLink[] | undefined,
  links: readonly ChainLink[],
): ChainLink[] {
  const out = [...(chain ?? [])];
  for (const link of links) {
    const at = out.findIndex((l) => l.fingerprint === link.fingerprint);
    const kept = out[at];
    if (kept === undefined) out.push(link);
    else if (kept.retiredBy === undefined && link.retiredBy !== undefined) out[at] = link;
  }
  return out;
}

/**
 * A key a rotation retired, as a name that followed that rotation keeps it, with the key the rotation went
 * to (`retiredTo`): a rotation is never rewritten, so it is the one step from that key the registry made.
 * Any other step from it is signed by whoever holds the key since (a thief, or whoever it leaked to).
 */
export interface DepartedKey extends ChainLink {
  readonly retiredTo: string;
}

/** A key a rotation retired as compromised (`DepartedKey` whose rotation says so). */
export interface RevokedKey extends DepartedKey {
  readonly compromised: true;
}

/**
 * The first link of `held`'s chain that leaves a key another name left (`departed`: a `RevokedKey` list, or
 * every `DepartedKey`) for another key than that name's rotation went to, with the record it disagrees
 * with; undefined when none does. Whoever holds a retired key can sign a rotation from it to a key of
 * their own (both signatures are theirs to make), and a name that never followed the registry's rotation
 * followed that one: the key it then held was no key `revokedLink` knew, so every snapshot they signed
 * passed.
 */
export function forkFromRevoked<T extends DepartedKey>(
  departed: readonly T[] | undefined,
  held: { readonly fingerprint: string; readonly chain?: readonly ChainLink[] | undefined },
): { readonly link: ChainLink; readonly to: string; readonly mark: T } | undefined {
  const chain = held.chain ?? [];
  for (const [i, link] of chain.entries()) {
    const to = chain[i + 1]?.fingerprint ?? held.fingerprint;
    const mark = (departed ?? []).find((r) => r.fingerprint === link.fingerprint && r.retiredTo !== to);
    if (mark) return { link, to, mark };
  }
  return undefined;
}

/**
 * `departed` less the departures a link of `held` outranks: its own rotation from that key is marked
 * compromised and theirs is not. A rotation marked so is the operator's answer to a theft, and an unmarked
 * one from that key is what the thief signs (refused in turn as leaving a key marked stolen); both marked,
 * or neither, nothing tells which is the registry's, and each refuses the other.
 */
export function departuresAgainst(
  departed: readonly DepartedKey[] | undefined,
  held: { readonly chain?: readonly ChainLink[] | undefined },
): DepartedKey[] {
  const marked = new Set((held.chain ?? []).filter((l) => l.compromised === true).map((l) => l.fingerprint));
  return (departed ?? []).filter((d) => d.compromised === true || !marked.has(d.fingerprint));
}

/**
 * A key held that its chain reached from a key marked stolen through another rotation than the marked one
 * (`forkFromRevoked`), as a link refusing it: the rotation was its thief's, so the key it led to vouches for
 * nothing either. `forkedFrom` is the mark it departs from.
 */
export interface ForkedKey extends ChainLink {
  readonly compromised: true;
  readonly forkedFrom: RevokedKey;
}

/** `held`'s key as a `ForkedKey` when its chain departs from a key `revoked` marks; else undefined. */
export function forkedHeldKey(
  revoked: readonly RevokedKey[] | undefined,
  held: {
    readonly fingerprint: string;
    readonly armoredKey: string;
    readonly chain?: readonly ChainLink[] | undefined;
  },
): ForkedKey | undefined {
  const fork = forkFromRevoked(revoked, held);
  if (!fork) return undefined;
  return {
    fingerprint: held.fingerprint,
    armoredKey: held.armoredKey,
    ...(fork.link.retiredBy !== undefined ? { retiredBy: fork.link.retiredBy } : {}),
    compromised: true,
    forkedFrom: fork.mark,
  };
}

/**
 * The snapshot a followed chain leads to (already verified by its last key) must count exactly the
 * rotations followed, and every rotation must be of the registry that snapshot names, compared as
 * `registryIdentity` spells them (as the pin is, `checkSnapshotRegistry`): a rotation is never rewritten,
 * so one made before the operator wrote the registry's URL another way (its host in capitals, a default
 * port) keeps the old spelling, and compared byte for byte it locked out every client yet to follow it.
 * @throws TrustError KEY_ROTATION_BROKEN
 */
export function checkRotatedSnapshot(chain: FollowedChain, snapshot: SnapshotDocument): void {
  const counted = snapshot.key_rotations ?? 0;
  if (counted !== chain.rotations)
    broken(
      `snapshot.json, signed by key ${chain.fingerprint}, counts ${counted} key rotations, but the chain followed to that key ends at ${rotationKey(chain.rotations)}`,
    );
  for (const step of chain.steps)
    if (registryIdentity(step.registry) !== registryIdentity(snapshot.registry))
      broken(`${rotationKey(step.sequence)} is a rotation of ${step.registry}, not of ${snapshot.registry}`);
}

/**
 * A snapshot signed by the key held (no rotation followed) must count the rotations that key is at, when
 * the reader knows it (`rotations`): a lower count would reset where the next rotation is looked for (the
 * reader would then take an earlier rotation, not from its key, for a broken chain), and a higher one names
 * a rotation whose key did not sign. Either is refused before anything is kept.
 * @throws TrustError KEY_ROTATION_BROKEN
 */
export function checkHeldSnapshot(
  held: { readonly fingerprint: string; readonly rotations?: number | undefined },
  snapshot: SnapshotDocument,
  where: string,
): void {
  if (held.rotations !== undefined && (snapshot.key_rotations ?? 0) !== held.rotations)
    broken(
      `${where}, signed by key ${held.fingerprint}, counts ${snapshot.key_rotations ?? 0} key rotations, but that key is at ${held.rotations}`,
    );
}

/**
 * A snapshot must name the registry the reader first accepted one from (its `registry`, kept beside the
 * key pinned), as apt refuses a Release whose Origin, Label or Suite changed until told to take it: two
 * registries signed by one key (a staging and a production registry, say) are then never taken for one
 * another, whoever serves them (a mirror, a bucket written to, a proxy). Nothing pinned yet (a first use,
 * or a state from before this was kept) pins it now. A registry that really moved is added again
 * (`plugindex registry add --force`), its log and generation still checked against what was accepted. The
 * two are compared as `registryIdentity` spells them.
 * @throws TrustError SNAPSHOT_REGISTRY_CHANGED
 */
export function checkSnapshotRegistry(
  pinned: string | undefined,
  snapshot: SnapshotDocument,
  where: string,
  remedy: string,
): void {
  if (pinned !== undefined && registryIdentity(snapshot.registry) !== registryIdentity(pinned))
    throw new TrustError(
      'SNAPSHOT_REGISTRY_CHANGED',
      `${where} is a snapshot of registry ${JSON.stringify(snapshot.registry)}, not of ${JSON.stringify(pinned)} as pinned: refused (another registry signed by the same key, or this one moved; if it moved, ${remedy})`,
    );
}

/** A snapshot the key held does not sign: perhaps the registry rotated its key since. */
function signedByAnotherKey(error: unknown): boolean {
  return (
    error instanceof TrustError &&
    (error.code === 'SNAPSHOT_BAD_SIGNATURE' || error.code === 'SNAPSHOT_WRONG_KEY')
  );
}

/**
 * The registry's snapshot as `read` verifies it: by the key held (`read()`), or, when that key does not
 * sign it, through the rotations published from it (`keys/rotation/<N>.json` through `load`, each capped
 * at MAX_ROTATION_BYTES and fetched by its fixed name: rotations are never rewritten; once more past every
 * cache when the chain does not reach the snapshot), by the last key they lead to (`read(chain)`), a
 * snapshot that must then count exactly the rotations followed. With no rotation
 * from the key held (or `follow` false: a key taken from the registry itself has nothing to follow from),
 * the refusal by the key held stands. The caller pins `chain`'s key only once this returns.
 * @throws TrustError KEY_ROTATION_BROKEN (a step that does not verify, a loop, a count that differs), and
 *   what `read` and `load` throw.
 */
export async function readThroughRotations<T extends { readonly snapshot: SnapshotDocument }>(options: {
  readonly load: DocumentLoader;
  readonly held: HeldKey;
  /** Where the key held stands among the rotations (undefined: not known, see `followRotations`). */
  readonly from?: number;
  readonly retired?: readonly string[];
  /** Default true. */
  readonly follow?: boolean;
  /** Reads and verifies the snapshot by the key held (no chain), or by the chain's last key. */
  readonly read: (chain?: FollowedChain) => Promise<T>;
}): Promise<{ readonly value: T; readonly chain?: FollowedChain }> {
  try {
    return { value: await options.read() };
  } catch (error) {
    if (!signedByAnotherKey(error) || options.follow === false) throw error;
    const follow = async (pastCaches: boolean) => {
      const chain = await followRotations({
        held: options.held,
        ...(options.from !== undefined ? { from: options.from } : {}),
        ...(options.retired !== undefined ? { retired: options.retired } : {}),
        load: (sequence) =>
          options.load({
            path: rotationKey(sequence),
            maxBytes: MAX_ROTATION_BYTES,
            ...(pastCaches ? { pastCaches } : {}),
          }),
      });
      if (!chain) throw error;
      const value = await options.read(chain);
      checkRotatedSnapshot(chain, value.snapshot);
      return { value, chain };
    };
    try {
      return await follow(false);
    } catch (failed) {
      // A rotation is never rewritten, but one asked for before it was published has its 404 kept by the
      // edge (CloudFront keeps an error for its error caching TTL, until the rotation's invalidation is
      // through): the chain then ends short of the key that signs the snapshot, and the registry was refused
      // as if it had none. So a chain that does not reach the snapshot is followed once more with each
      // rotation read past every cache (a random `?v=`), every step checked as ever; its refusal stands.
      const short =
        failed === error ||
        signedByAnotherKey(failed) ||
        (failed instanceof TrustError && failed.code === 'KEY_ROTATION_BROKEN');
      if (!short) throw failed;
      return follow(true);
    }
  }
}
