/**
 * Registry key rotation: `keys/rotation/<N>.json` names the key that signs from rotation N on, and is signed
 * by the key before it and by the new one (TUF's root rotation, one step at a time). A client that pinned
 * an earlier key follows the steps in order, each signed by the key it holds and by the next, and pins the
 * last; a step that does not verify is a break, and the client refuses the registry. Pure.
 */
import type { Key } from 'openpgp';
import { isSecretKeyText } from './armor.ts';
import { sha256Hex } from './digest.ts';
import { TrustError } from './errors.ts';
import { duplicateKeyPointers } from './manifest/json-scan.ts';
import { rotationKey } from './rotation-paths.ts';
import { readPublicKey, type Signer, verifyDetachedSignature } from './signing.ts';
import { stringifyJson } from './text.ts';

export const ROTATION_SCHEMA = 'plugindex/key-rotation/v1';
export const SIGNED_ROTATION_SCHEMA = 'plugindex/signed-key-rotation/v1';
// Kept apart so a client naming a rotation loads no openpgp.js (rotation-paths.ts); exported here as before.
export { ROTATION_PREFIX, rotationKey } from './rotation-paths.ts';
/** A rotation document is two keys and two signatures. */
export const MAX_ROTATION_BYTES = 256 * 1024;
/** A client follows at most this many steps in one go (TUF's client caps root rotations at 256 too). */
export const MAX_ROTATIONS = 256;

export interface KeyRotation {
  readonly schema: typeof ROTATION_SCHEMA;
  /** The registry's URL. */
  readonly registry: string;
  /** 1 for the first rotation: the key before it is the one the registry started with. */
  readonly sequence: number;
  readonly created: string;
  readonly previous: { readonly fingerprint: string; readonly key: string };
  readonly next: { readonly fingerprint: string; readonly key: string };
  /**
   * True when the rotation was made because the previous key is no longer secret (`rotate-key
   * --compromised`): a client following it trusts that key for nothing from then on. Absent on a routine
   * rotation, whose record is then byte for byte what it was before the mark existed. Signed with the rest,
   * so only the holders of both keys can set it; and since a record is never rewritten, it is set once.
   */
  readonly compromised?: boolean;
}

/** The published (and submitted) form: the rotation's exact text and a signature by each key. */
export interface SignedKeyRotation {
  readonly schema: typeof SIGNED_ROTATION_SCHEMA;
  readonly rotation: string;
  /** By the previous key, then by the next one. */
  readonly signatures: readonly [string, string];
}

export interface ReadRotation {
  readonly rotation: KeyRotation;
  readonly text: Uint8Array;
  readonly signatures: readonly [string, string];
  /** sha256 (hex) of `text`, as the log records it. */
  readonly digest: string;
}

function broken(message: string): never {
  throw new TrustError('KEY_ROTATION_BROKEN', message);
}

/**
 * Reads a signed rotation's form (nothing verified yet).
 * @throws TrustError KEY_ROTATION_BROKEN naming what is missing.
 */
export function readSignedRotation(bytes: Uint8Array, where = 'the key rotation'): ReadRotation {
  if (bytes.byteLength > MAX_ROTATION_BYTES) broken(`${where} is larger than ${MAX_ROTATION_BYTES} bytes`);
  let envelope: Partial<SignedKeyRotation> | null;
  let rotation: Partial<KeyRotation> | null;
  let envelopeText: string;
  try {
    envelopeText = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    envelope = JSON.parse(envelopeText) as Partial<SignedKeyRotation>;
    rotation = JSON.parse(String(envelope?.rotation)) as Partial<KeyRotation>;
  } catch {
    return broken(`${where} is not a signed key rotation (JSON)`);
  }
  // A repeated key is read differently by different readers: refused, in the envelope or the rotation.
  const repeated = [
    ...duplicateKeyPointers(envelopeText),
    ...duplicateKeyPointers(String(envelope?.rotation)),
  ];
  if (repeated.length > 0) broken(`${where} repeats the key at ${repeated.join(', ')}`);
  const sigs = envelope?.signatures;
  const part = (p: unknown): p is { fingerprint: string; key: string } =>
    typeof p === 'object' &&
    p !== null &&
    typeof (p as { fingerprint?: unknown }).fingerprint === 'string' &&
    typeof (p as { key?: unknown }).key === 'string';
  if (
    envelope?.schema !== SIGNED_ROTATION_SCHEMA ||
    typeof envelope.rotation !== 'string' ||
    !Array.isArray(sigs) ||
    sigs.length !== 2 ||
    !sigs.every((s) => typeof s === 'string') ||
    typeof rotation !== 'object' ||
    rotation === null ||
    rotation.schema !== ROTATION_SCHEMA ||
    typeof rotation.registry !== 'string' ||
    !Number.isSafeInteger(rotation.sequence) ||
    (rotation.sequence as number) < 1 ||
    typeof rotation.created !== 'string' ||
    !part(rotation.previous) ||
    !part(rotation.next)
  )
    broken(
      `${where} lacks schema, rotation {registry, sequence, created, previous, next} or its two signatures`,
    );
  // Optional, but when present a boolean: a mark some reader took for true and another for false would
  // make the same signed step mean two things.
  if (rotation.compromised !== undefined && typeof rotation.compromised !== 'boolean')
    broken(`${where} has a compromised mark that is not true or false`);
  const text = new TextEncoder().encode(envelope.rotation as string);
  return {
    rotation: rotation as KeyRotation,
    text,
    signatures: sigs as unknown as [string, string],
    digest: sha256Hex(text),
  };
}

/**
 * Verifies one step of the chain: it is rotation `sequence`, for `registry`, its previous key is `current`
 * (by fingerprint, and its signature verifies by that key), and its next key signed it too.
 * Returns the next key, which must be a public key only.
 * @throws TrustError KEY_ROTATION_BROKEN saying which check failed (a next key holding secret key material too).
 */
export async function verifyRotationStep(
  read: ReadRotation,
  expected: { readonly current: Key; readonly sequence: number; readonly registry?: string },
): Promise<{ readonly key: Key; readonly fingerprint: string; readonly armored: string }> {
  const { rotation } = read;
  const where = rotationKey(expected.sequence);
  const currentFingerprint = expected.current.getFingerprint().toUpperCase();
  if (rotation.sequence !== expected.sequence) broken(`${where} says it is rotation ${rotation.sequence}`);
  if (expected.registry !== undefined && rotation.registry !== expected.registry)
    broken(`${where} is a rotation of ${rotation.registry}, not ${expected.registry}`);
  if (rotation.previous.fingerprint !== currentFingerprint)
    broken(
      `${where} rotates from key ${rotation.previous.fingerprint}, not from ${currentFingerprint}, the key held`,
    );
  const byCurrent = await verifyDetachedSignature(read.text, read.signatures[0], [expected.current]);
  if (!byCurrent.ok)
    broken(`${where} is not signed by the key it rotates from (${currentFingerprint}): ${byCurrent.message}`);
  let next: Awaited<ReturnType<typeof readPublicKey>>;
  try {
    next = await readPublicKey(rotation.next.key);
  } catch {
    return broken(`${where} names a next key that is not an OpenPGP public key`);
  }
  if (next.fingerprint !== rotation.next.fingerprint)
    broken(`${where} names key ${rotation.next.fingerprint}, but its key is ${next.fingerprint}`);
  // A rotation's keys are public (signRotation writes each signer's public key), so only a hand-made one holds
  // a secret key: followed, trust moved to a key whose secret half the registry itself had just published,
  // which anyone who read the rotation can sign snapshots with. Refused as a break, the key held stays pinned.
  if (isSecretKeyText(rotation.next.key, next))
    broken(
      `${where} names a secret key (${next.fingerprint}) as the key it rotates to, not a public key: that key is no longer secret, so the rotation is not followed and the key held stays pinned. The registry must rotate again from the key held to a new key, publishing only its public key (plugindex rotate-key)`,
    );
  if (next.fingerprint === currentFingerprint) broken(`${where} rotates to the same key`);
  const byNext = await verifyDetachedSignature(read.text, read.signatures[1], [next.key]);
  if (!byNext.ok)
    broken(`${where} is not signed by the key it rotates to (${next.fingerprint}): ${byNext.message}`);
  return { key: next.key, fingerprint: next.fingerprint, armored: next.armored };
}

/**
 * Makes rotation `sequence` from the registry's current signer to the next one, signed by both.
 * @example const bytes = await signRotation({ registry, sequence: 1, previous: oldSigner, next: newSigner, now });
 */
export async function signRotation(options: {
  readonly registry: string;
  readonly sequence: number;
  readonly previous: Signer;
  readonly next: Signer;
  readonly now: Date;
  /** The previous key is no longer secret: written as `compromised: true` (omitted otherwise). */
  readonly compromised?: boolean;
}): Promise<{ readonly bytes: Uint8Array; readonly digest: string }> {
  const rotation: KeyRotation = {
    schema: ROTATION_SCHEMA,
    registry: options.registry,
    sequence: options.sequence,
    created: options.now.toISOString(),
    previous: { fingerprint: options.previous.fingerprint, key: options.previous.publicKey },
    next: { fingerprint: options.next.fingerprint, key: options.next.publicKey },
    ...(options.compromised === true ? { compromised: true } : {}),
  };
  const text = new TextEncoder().encode(stringifyJson(rotation, 2));
  const signed: SignedKeyRotation = {
    schema: SIGNED_ROTATION_SCHEMA,
    rotation: new TextDecoder().decode(text),
    signatures: [await options.previous.sign(text), await options.next.sign(text)],
  };
  return { bytes: new TextEncoder().encode(`${stringifyJson(signed, 2)}\n`), digest: sha256Hex(text) };
}
