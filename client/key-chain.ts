/**
 * Following a registry's key rotations (index-builder/rotation.ts) from the key a client pinned, as TUF's
 * client follows root rotations: `keys/rotation/<k+1>.json`, `<k+2>`... each checked by the key held and
 * by the next, until the first that is not published; then the snapshot must be signed by the last key and
 * count exactly the rotations followed. A step that does not verify breaks the chain, and nothing of it is
 * trusted. Pure: the caller fetches (capped at MAX_ROTATION_BYTES each) and keeps the new pin.
 *
 * @example
 * const chain = await followRotations({ load: (n) => get(rotationKey(n)), held, from: trust.rotations });
 * if (chain) checkRotatedSnapshot(chain, snapshot); // then pin chain.fingerprint
 */
import type { Key } from 'openpgp';
import { TrustError } from '../index-builder/errors.ts';
import type { SnapshotDocument } from '../index-builder/model.ts';
import {
  MAX_ROTATIONS,
  readSignedRotation,
  rotationKey,
  verifyRotationStep,
} from '../index-builder/rotation.ts';

/** A key a client pinned before the one it holds now, kept so what it vouched for can still be checked. */
export interface ChainLink {
  readonly fingerprint: string;
  readonly armoredKey: string;
}

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
    });
    links.push({ fingerprint: current.fingerprint, armoredKey: current.armoredKey });
    current = { key: next.key, fingerprint: next.fingerprint, armoredKey: next.armored };
  }
  if (steps.length === 0) return undefined;
  return { ...current, rotations: (steps.at(-1) as { sequence: number }).sequence, steps, links };
}

/** `chain` extended by `links`, a key already in it not appended again. */
export function extendChain(
  chain: readonly ChainLink[] | undefined,
  links: readonly ChainLink[],
): ChainLink[] {
  const out = [...(chain ?? [])];
  for (const link of links) if (!out.some((l) => l.fingerprint === link.fingerprint)) out.push(link);
  return out;
}

/**
 * The snapshot a followed chain leads to (already verified by its last key) must count exactly the
 * rotations followed, and every rotation must be of the registry that snapshot names.
 * @throws TrustError KEY_ROTATION_BROKEN
 */
export function checkRotatedSnapshot(chain: FollowedChain, snapshot: SnapshotDocument): void {
  const counted = snapshot.key_rotations ?? 0;
  if (counted !== chain.rotations)
    broken(
      `snapshot.json, signed by key ${chain.fingerprint}, counts ${counted} key rotations, but the chain followed to that key ends at ${rotationKey(chain.rotations)}`,
    );
  for (const step of chain.steps)
    if (step.registry !== snapshot.registry)
      broken(`${rotationKey(step.sequence)} is a rotation of ${step.registry}, not of ${snapshot.registry}`);
}
