/**
 * OpenPGP keys and detached signatures (openpgp.js). Keys are v4 (openpgp's default ECC: Ed25519 signing key
 * with a Curve25519 encryption subkey) because GnuPG 2.2, still what many clients run, rejects v6 keys.
 * Everything here takes and returns strings and bytes; where keys live is the caller's business.
 */
import { Buffer } from 'node:buffer';
import { createHash, createPrivateKey, sign as cryptoSign } from 'node:crypto';
import * as openpgp from 'openpgp';
import { type Clock, systemClock } from './clock.ts';
import { sha256Hex } from './digest.ts';
import { KeyError } from './errors.ts';

/** Signs bytes with the registry key. */
export interface Signer {
  /** Primary key fingerprint, 40 uppercase hex digits. */
  readonly fingerprint: string;
  /** Every fingerprint of the key (primary and subkeys), uppercase. */
  readonly fingerprints: readonly string[];
  /** The armored public key, as published at `keys/registry.asc`. */
  readonly publicKey: string;
  /** An armored detached signature over `data`. */
  sign(data: Uint8Array): Promise<string>;
  /**
   * `sign`, plus the SHA-256 (hex) of `data` from the same pass over the bytes: the snapshot lists that
   * digest for every document the registry signs, and at 10,000 plugins those are tens of megabytes.
   */
  signWithDigest(data: Uint8Array): Promise<{ readonly signature: string; readonly sha256: string }>;
  /**
   * `signWithDigest` over data given in pieces (a document streamed from the catalog, too large to hold):
   * feed every chunk to `update`, in order, then `finish` once. For Ed25519 keys nothing is kept but the
   * hash state; other key types (signed by openpgp.js) keep the chunks until `finish`.
   */
  beginSigning(): IncrementalSigning;
}

/** A signature and digest being computed over data fed in pieces (`Signer.beginSigning`). */
export interface IncrementalSigning {
  update(chunk: Uint8Array): void;
  finish(): Promise<{ readonly signature: string; readonly sha256: string }>;
}

export interface KeyPair {
  readonly secretKey: string;
  readonly publicKey: string;
  readonly fingerprint: string;
}

export interface PublicKeyInfo {
  readonly fingerprint: string;
  readonly fingerprints: readonly string[];
  readonly userIds: readonly string[];
  readonly armored: string;
  readonly key: openpgp.Key;
}

export type VerifyResult =
  | {
      readonly ok: true;
      /** The signer's primary key fingerprint. */
      readonly fingerprint: string;
      /** The key (primary or subkey) that made the signature, uppercase hex key ID. */
      readonly signingKeyId: string;
      readonly key: openpgp.Key;
      readonly created: Date;
    }
  | {
      readonly ok: false;
      /**
       * `time`: dated after the time it is judged at, or expired; `key-revoked`, `key-expired`,
       * `not-for-signing`: the key (or the subkey that signed) could not sign when the signature was made.
       */
      readonly reason:
        | 'malformed'
        | 'unknown-key'
        | 'bad-signature'
        | 'time'
        | 'key-revoked'
        | 'key-expired'
        | 'not-for-signing';
      readonly message: string;
      /** Issuer key IDs named by the signature (uppercase hex), to say who signed it. */
      readonly keyIds: readonly string[];
    };

const upper = (s: string): string => s.toUpperCase();
/** SHA-256 where the key allows it (RSA, NIST P-256), for keys the one-pass signer below does not take. */
const SIGN_CONFIG = { preferredHashAlgorithm: openpgp.enums.hash.sha256 };

function fingerprintsOf(key: openpgp.Key): string[] {
  return [key.getFingerprint(), ...key.getSubkeys().map((sub) => sub.getFingerprint())].map(upper);
}

/**
 * Generates a v4 ECC key pair.
 * @example const { secretKey, publicKey, fingerprint } = await generateKeyPair({ name: 'Acme Publisher' });
 */
export async function generateKeyPair(options: {
  readonly name: string;
  readonly email?: string;
  readonly passphrase?: string;
  readonly date?: Date;
}): Promise<KeyPair> {
  const userID = options.email ? { name: options.name, email: options.email } : { name: options.name };
  const generated = await openpgp.generateKey({
    type: 'ecc',
    userIDs: [userID],
    format: 'armored',
    ...(options.passphrase ? { passphrase: options.passphrase } : {}),
    ...(options.date ? { date: options.date } : {}),
  });
  const key = await openpgp.readKey({ armoredKey: generated.publicKey });
  return {
    secretKey: generated.privateKey,
    publicKey: generated.publicKey,
    fingerprint: upper(key.getFingerprint()),
  };
}

/** Reads an armored public (or secret: its public part) key; throws KeyError('KEY_INVALID'). */
export async function readPublicKey(armored: string): Promise<PublicKeyInfo> {
  let key: openpgp.Key;
  try {
    key = await openpgp.readKey({ armoredKey: armored });
  } catch (cause) {
    throw new KeyError('KEY_INVALID', `not an armored OpenPGP key: ${(cause as Error).message}`, { cause });
  }
  const pub = key.toPublic();
  const userIds = pub.getUserIDs();
  return {
    fingerprint: upper(pub.getFingerprint()),
    fingerprints: fingerprintsOf(pub),
    userIds,
    armored: pub.armor(),
    key: pub,
  };
}

/**
 * Builds the registry's signer from an armored secret key. Each signature is dated by `clock` (its creation
 * time, which a verifier compares with the key's validity and its own time).
 * @throws KeyError KEY_INVALID (not a secret key) or KEY_PASSPHRASE (wrong or missing passphrase).
 * @example const signer = await createSigner(armored, process.env.PLUGINDEX_KEY_PASSPHRASE, systemClock);
 */
export async function createSigner(
  armoredSecretKey: string,
  passphrase?: string,
  clock: Clock = systemClock,
): Promise<Signer> {
  let privateKey: openpgp.PrivateKey;
  try {
    privateKey = await openpgp.readPrivateKey({ armoredKey: armoredSecretKey });
  } catch (cause) {
    throw new KeyError('KEY_INVALID', `not an armored OpenPGP secret key: ${(cause as Error).message}`, {
      cause,
    });
  }
  if (!privateKey.isDecrypted()) {
    if (!passphrase)
      throw new KeyError('KEY_PASSPHRASE', 'the signing key is encrypted and no passphrase was given');
    try {
      privateKey = await openpgp.decryptKey({ privateKey, passphrase });
    } catch (cause) {
      throw new KeyError('KEY_PASSPHRASE', 'the passphrase does not decrypt the signing key', { cause });
    }
  }
  const publicKey = privateKey.toPublic().armor();
  const onePass = await onePassSigner(privateKey, clock);
  const openpgpSign = async (data: Uint8Array) => {
    const message = await openpgp.createMessage({ binary: data });
    const signature = await openpgp.sign({
      message,
      signingKeys: privateKey,
      detached: true,
      format: 'armored',
      date: clock.now(),
      config: SIGN_CONFIG,
    });
    return { signature, sha256: sha256Hex(data) };
  };
  const signWithDigest = async (data: Uint8Array) => {
    if (!onePass) return openpgpSign(data);
    const signing = onePass();
    signing.update(data);
    return signing.finish();
  };
  const beginSigning = (): IncrementalSigning => {
    if (onePass) return onePass();
    // openpgp.js signs whole messages here: the pieces are joined at the end (keys other than Ed25519 are
    // an operator's choice, and their streamed documents are held in memory once).
    const chunks: Uint8Array[] = [];
    return {
      update: (chunk) => void chunks.push(chunk),
      finish: () => openpgpSign(Buffer.concat(chunks)),
    };
  };
  return {
    fingerprint: upper(privateKey.getFingerprint()),
    fingerprints: fingerprintsOf(privateKey),
    publicKey,
    signWithDigest,
    beginSigning,
    async sign(data: Uint8Array): Promise<string> {
      return (await signWithDigest(data)).signature;
    },
  };
}

/** The hashed and unhashed parts of a v4 signature packet (RFC 4880, 5.2.3). */
const SIGNATURE_VERSION = 4;
const SIGNATURE_BINARY_DOCUMENT = 0x00;
const SUBPACKET_CREATION_TIME = 2;
const SUBPACKET_ISSUER_KEY_ID = 16;
const SUBPACKET_ISSUER_FINGERPRINT = 33;
const PACKET_TAG_SIGNATURE = 2;

function uint32(value: number): number[] {
  return [(value >>> 24) & 0xff, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff];
}

function uint16(value: number): number[] {
  return [(value >>> 8) & 0xff, value & 0xff];
}

/** An OpenPGP multiprecision integer: bit count, then the bytes without leading zeros (RFC 4880, 3.2). */
function mpi(bytes: Uint8Array): number[] {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  const value = bytes.subarray(start);
  const bits = (value.length - 1) * 8 + (32 - Math.clz32(value[0] ?? 0));
  return [...uint16(bits), ...value];
}

/** A new-format packet header for `length` bytes of body (RFC 4880, 4.2.2). */
function packetHeader(tag: number, length: number): number[] {
  if (length < 192) return [0xc0 | tag, length];
  return [0xc0 | tag, 0xff, ...uint32(length)];
}

/**
 * A signer for Ed25519 (v4 "EdDSA legacy") keys, the kind `generateKeyPair` makes, that hashes the data once:
 * one SHA-256 pass gives both the document's digest (a copy of the hash state, finished) and the signature's
 * hash (the same state, continued over the packet trailer). openpgp.js would hash the bytes with SHA-512 (the
 * curve's preferred hash, whatever is asked) after copying them, and the snapshot digest would need another
 * pass: about 70 ms against 16 ms for a 28 MB index. Only the packet framing is written here; the primitives
 * are Node's (SHA-256, Ed25519), and openpgp.js parses every packet before it is armored. Tests verify these
 * signatures with openpgp.js and with GnuPG. Other key types (an operator's RSA or NIST key) return undefined
 * and are signed by openpgp.js.
 */
async function onePassSigner(
  privateKey: openpgp.PrivateKey,
  clock: Clock,
): Promise<(() => IncrementalSigning) | undefined> {
  const signingKey = await privateKey.getSigningKey().catch(() => undefined);
  const packet = signingKey?.keyPacket as
    | {
        algorithm: number;
        privateParams?: { seed?: Uint8Array };
        publicParams?: { Q?: Uint8Array };
        getFingerprint(): string;
      }
    | undefined;
  const seed = packet?.privateParams?.seed;
  const point = packet?.publicParams?.Q; // 0x40 || the 32-byte public key
  if (
    !packet ||
    packet.algorithm !== openpgp.enums.publicKey.eddsaLegacy ||
    seed?.length !== 32 ||
    point?.length !== 33
  ) {
    return undefined;
  }
  const key = createPrivateKey({
    key: {
      kty: 'OKP',
      crv: 'Ed25519',
      d: Buffer.from(seed).toString('base64url'),
      x: Buffer.from(point.subarray(1)).toString('base64url'),
    },
    format: 'jwk',
  });
  const fingerprint = [...Buffer.from(packet.getFingerprint(), 'hex')];
  const keyId = fingerprint.slice(-8);
  const finish = async (hash: ReturnType<typeof createHash>) => {
    const created = Math.floor(clock.now().getTime() / 1000);
    const hashedSubpackets = [
      ...[5, SUBPACKET_CREATION_TIME, ...uint32(created)],
      ...[2 + fingerprint.length, SUBPACKET_ISSUER_FINGERPRINT, 4, ...fingerprint],
    ];
    const hashed = Uint8Array.from([
      SIGNATURE_VERSION,
      SIGNATURE_BINARY_DOCUMENT,
      openpgp.enums.publicKey.eddsaLegacy,
      openpgp.enums.hash.sha256,
      ...uint16(hashedSubpackets.length),
      ...hashedSubpackets,
    ]);
    const trailer = Uint8Array.from([SIGNATURE_VERSION, 0xff, ...uint32(hashed.length)]);
    const sha256 = hash.copy().digest('hex');
    const digest = hash.update(hashed).update(trailer).digest();
    // EdDSA in OpenPGP v4 signs the digest; Node's Ed25519 gives R || S.
    const rs = cryptoSign(null, digest, key);
    const unhashedSubpackets = [1 + keyId.length, SUBPACKET_ISSUER_KEY_ID, ...keyId];
    const body = [
      ...hashed,
      ...uint16(unhashedSubpackets.length),
      ...unhashedSubpackets,
      digest[0] as number,
      digest[1] as number,
      ...mpi(rs.subarray(0, 32)),
      ...mpi(rs.subarray(32)),
    ];
    const binarySignature = Uint8Array.from([...packetHeader(PACKET_TAG_SIGNATURE, body.length), ...body]);
    const signature = await openpgp.readSignature({ binarySignature });
    return { signature: signature.armor(), sha256 };
  };
  return () => {
    const hash = createHash('sha256');
    return { update: (chunk) => void hash.update(chunk), finish: () => finish(hash) };
  };
}

const ARMOR_BEGIN = /-----BEGIN PGP [A-Z ]+-----/g;

/** What is wrong with the shape of a detached signature, before any key is tried, or undefined. */
function signatureShapeProblem(armored: string, signature: openpgp.Signature): string | undefined {
  if ((armored.match(ARMOR_BEGIN) ?? []).length !== 1) return 'exactly one armored block is allowed';
  const packets = signature.packets.length;
  if (packets !== 1) return `the signature holds ${packets} signature packets; exactly one is allowed`;
  const type = (signature.packets[0] as { signatureType?: number } | undefined)?.signatureType;
  // A text-mode signature (0x01) also verifies other bytes (line endings canonicalized): refused.
  if (type !== openpgp.enums.signature.binary)
    return 'only a binary-document signature (type 0x00) over the exact bytes is allowed';
  return undefined;
}

/**
 * Verifies an armored detached signature over `data` against candidate keys. Never throws for bad input:
 * the result says what is wrong, so callers can report it as a submission problem. The signature must be
 * one binary-document signature in one armored block: anything more is read differently by other tools.
 * `date` (default now) is when it is judged: a signature made after it is refused.
 */
export async function verifyDetachedSignature(
  data: Uint8Array,
  armoredSignature: string,
  keys: readonly openpgp.Key[],
  date: Date = new Date(),
): Promise<VerifyResult> {
  let signature: openpgp.Signature;
  try {
    signature = await openpgp.readSignature({ armoredSignature });
  } catch (cause) {
    return {
      ok: false,
      reason: 'malformed',
      message: `not an armored OpenPGP signature: ${(cause as Error).message}`,
      keyIds: [],
    };
  }
  const shape = signatureShapeProblem(armoredSignature, signature);
  if (shape) return { ok: false, reason: 'malformed', message: shape, keyIds: [] };
  const keyIds = Array.from(signature.getSigningKeyIDs(), (id) => upper(id.toHex()));
  const candidates = keys.filter((key) => key.getKeyIDs().some((id) => keyIds.includes(upper(id.toHex()))));
  if (candidates.length === 0) {
    return {
      ok: false,
      reason: 'unknown-key',
      message: `signed by unknown key ${keyIds.join(', ') || '(no issuer)'}`,
      keyIds,
    };
  }
  try {
    const message = await openpgp.createMessage({ binary: data });
    const result = await openpgp.verify({
      message,
      signature,
      verificationKeys: [...candidates],
      expectSigned: true,
      date,
    });
    const first = result.signatures[0];
    if (!first) throw new Error('no signature packet');
    await first.verified;
    const signerId = upper(first.keyID.toHex());
    const signer = candidates.find((key) => key.getKeyIDs().some((id) => upper(id.toHex()) === signerId));
    if (!signer) throw new Error('signer key not among candidates');
    const created = (await first.signature).packets[0]?.created ?? date;
    return {
      ok: true,
      fingerprint: upper(signer.getFingerprint()),
      signingKeyId: signerId,
      key: signer,
      created,
    };
  } catch (cause) {
    const message = (cause as Error).message;
    return {
      ok: false,
      reason: failureReason(message),
      message: `signature does not verify: ${message}`,
      keyIds,
    };
  }
}

/** Why openpgp.js refused a signature, from its message (it has no error codes). */
function failureReason(message: string): Extract<VerifyResult, { ok: false }>['reason'] {
  if (/creation time is in the future|signature is expired/i.test(message)) return 'time';
  if (/revoked/i.test(message)) return 'key-revoked';
  if (/key is expired/i.test(message)) return 'key-expired';
  if (/could not find valid signing key/i.test(message)) return 'not-for-signing';
  return 'bad-signature';
}

export type KeyUsability =
  | { readonly usable: true }
  | {
      readonly usable: false;
      readonly reason: 'key-revoked' | 'key-expired' | 'not-for-signing';
      readonly message: string;
    };

/**
 * May `key`, through its (sub)key `signingKeyId`, sign at `date`? Judged at the time given (the time of
 * publishing), not at the time a signature claims: a key that has expired or been revoked since signs
 * nothing, however its signature is dated. The subkey must be bound, unexpired, unrevoked and flagged for
 * signing at that time too.
 */
export async function keyUsableAt(key: openpgp.Key, signingKeyId: string, date: Date): Promise<KeyUsability> {
  const id = key.getKeyIDs().find((k) => upper(k.toHex()) === signingKeyId);
  try {
    // One call judges the primary key (revoked, expired) and the subkey (bound, flagged, unexpired) at `date`.
    await key.getSigningKey(id, date);
    return { usable: true };
  } catch (cause) {
    const message = (cause as Error).message;
    const reason = /revoked/i.test(message)
      ? 'key-revoked'
      : /expired/i.test(message)
        ? 'key-expired'
        : 'not-for-signing';
    return { usable: false, reason, message: `the signing key ${signingKeyId} cannot sign now: ${message}` };
  }
}

/** Most user IDs, subkeys and packets a publisher key may hold: bounds the work one submission costs. */
export const PUBLISHER_KEY_LIMITS = { userIds: 16, subkeys: 16, packets: 128 } as const;

/** Why a publisher key is too complex to check, or undefined. */
export function keyComplexityProblem(key: openpgp.Key): string | undefined {
  const packets = key.toPacketList().length;
  if (key.users.length > PUBLISHER_KEY_LIMITS.userIds)
    return `${key.users.length} user IDs (at most ${PUBLISHER_KEY_LIMITS.userIds})`;
  if (key.subkeys.length > PUBLISHER_KEY_LIMITS.subkeys)
    return `${key.subkeys.length} subkeys (at most ${PUBLISHER_KEY_LIMITS.subkeys})`;
  if (packets > PUBLISHER_KEY_LIMITS.packets)
    return `${packets} packets (at most ${PUBLISHER_KEY_LIMITS.packets})`;
  return undefined;
}
