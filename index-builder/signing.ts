/**
 * OpenPGP keys and detached signatures (openpgp.js). Keys are v4 (openpgp's default ECC: Ed25519 signing key
 * with a Curve25519 encryption subkey) because GnuPG 2.2, still what many clients run, rejects v6 keys.
 * Everything here takes and returns strings and bytes; where keys live is the caller's business.
 */
import { Buffer } from 'node:buffer';
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  sign as cryptoSign,
  verify as cryptoVerify,
  type KeyObject,
} from 'node:crypto';
import * as openpgp from 'openpgp';
import { armoredHoldsSecretKeyPackets, holdsSecretKeyPackets, isSecretKeyText } from './armor.ts';
import { type Clock, systemClock } from './clock.ts';
import { sha256Hex } from './digest.ts';
import { KeyError } from './errors.ts';

// Here too, for the key ID rule's users among signing's: the form and the rule live apart, since log.ts and
// the client's light paths read fingerprints without loading openpgp.js (test/architecture.test.ts).
export { KEY_FINGERPRINT, KEY_FINGERPRINT_FORM, keyIdOfFingerprint } from './fingerprint.ts';

/** Signs bytes with the registry key. */
export interface Signer {
  /** Primary key fingerprint, uppercase hex: 40 digits (the registry's key is v4, `generateKeyPair`). */
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
  /**
   * Present when the text held secret key material anywhere (`key` is then its public part, or another
   * key's): the key read is a secret key (openpgp.js reads secret packets under a PUBLIC KEY BLOCK header
   * too), a secret key's armor follows, or a secret key's packets follow the key read in a public key's
   * armor (`cat public.gpg secret.gpg`, armored: openpgp.js reads the first key alone).
   */
  readonly secret?: true;
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
  let keys: openpgp.Key[];
  try {
    // Every key of the first armored block, not the first alone (`readKey`, which parses the block's packets
    // all the same): a secret key after it (`cat public.gpg secret.gpg`, armored as one public key block)
    // is secret material given, though the key read is public.
    keys = await openpgp.readKeys({ armoredKeys: armored }).catch(async (cause: unknown) => {
      // A public primary key holding a secret subkey, which openpgp.js reads as no key ("Unexpected packet
      // type"): read with its secret subkeys as public ones, so that it is refused as secret (below).
      if (!armoredHoldsSecretKeyPackets(armored)) throw cause;
      const { data } = await openpgp.unarmor(armored);
      return publicWithSecretSubkeys(data as Uint8Array).catch(() => Promise.reject(cause));
    });
  } catch (cause) {
    throw new KeyError('KEY_INVALID', `not an armored OpenPGP key: ${(cause as Error).message}`, { cause });
  }
  const key = keys[0] as openpgp.Key;
  const pub = key.toPublic();
  const userIds = pub.getUserIDs();
  // Secret packets in any block (a secret subkey under a public primary key, a secret key after the key
  // read), or a secret key's armor.
  const secret = keys.some((k) => k.isPrivate()) || isSecretKeyText(armored, {});
  return {
    fingerprint: upper(pub.getFingerprint()),
    fingerprints: fingerprintsOf(pub),
    userIds,
    armored: pub.armor(),
    key: pub,
    ...(secret ? { secret: true as const } : {}),
  };
}

/**
 * The first secret key in binary (unarmored) OpenPGP key packets, as `gpg --export-secret-keys` without
 * `--armor` writes them, or after a public key (`cat public.gpg secret.gpg`): read by their packet tags
 * through openpgp.js, every key of them, as `readPublicKey` reads an armored block. Undefined for bytes that
 * are no binary keys (armored text among them: `readPublicKey` reads that) or hold no secret key. A file
 * given for a public key is read as text, which a binary key is not, so its reader asks this first and
 * refuses a secret key as the armored one is refused, rather than as no key at all.
 * @example if (await findBinarySecretKey(bytes)) refuse(); else readPublicKey(new TextDecoder().decode(bytes));
 */
export async function findBinarySecretKey(
  bytes: Uint8Array,
): Promise<{ readonly fingerprint: string } | undefined> {
  const keys = await openpgp.readKeys({ binaryKeys: bytes }).catch(() => []);
  const secret = keys.find((key) => key.isPrivate());
  if (secret) return { fingerprint: upper(secret.getFingerprint()) };
  // A secret subkey under a public primary key (openpgp.js reads none of it), or a secret key packet it
  // could not read: secret key material all the same, named by its primary key where that reads.
  if (!holdsSecretKeyPackets(bytes)) return undefined;
  const [primary] = await publicWithSecretSubkeys(bytes).catch(() => []);
  return { fingerprint: primary ? upper(primary.getFingerprint()) : 'unreadable' };
}

/**
 * The packets `publicWithSecretSubkeys` reads, a public key's and secret subkeys, by tag (openpgp.js takes
 * an object of tags to packet classes, whatever its types say).
 */
const PUBLIC_KEY_PACKETS = Object.fromEntries(
  [
    openpgp.PublicKeyPacket,
    openpgp.PublicSubkeyPacket,
    openpgp.SecretSubkeyPacket,
    openpgp.UserIDPacket,
    openpgp.UserAttributePacket,
    openpgp.SignaturePacket,
  ].map((packet) => [packet.tag, packet]),
) as unknown as Parameters<typeof openpgp.PacketList.fromBinary>[1];

/** openpgp.js's own conversion of a secret subkey packet to its public part (`Key.toPublic`'s), untyped. */
const publicSubkeyOf = (
  openpgp.PublicSubkeyPacket as unknown as {
    fromSecretSubkeyPacket(packet: openpgp.SecretSubkeyPacket): openpgp.PublicSubkeyPacket;
  }
).fromSecretSubkeyPacket;

/**
 * The public key of binary packets whose public primary key holds secret subkeys, each read as its public
 * part: a key that is to be refused as secret, named by its fingerprint.
 */
async function publicWithSecretSubkeys(bytes: Uint8Array): Promise<openpgp.Key[]> {
  const packets = await openpgp.PacketList.fromBinary(bytes, PUBLIC_KEY_PACKETS);
  const list = new openpgp.PacketList<openpgp.AnyPacket>();
  for (const packet of packets)
    list.push(packet instanceof openpgp.SecretSubkeyPacket ? publicSubkeyOf(packet) : packet);
  return [new openpgp.PublicKey(list)];
}

/**
 * Builds the registry's signer from an armored secret key. Each signature is dated by `clock` (its creation
 * time, which a verifier compares with the key's validity and its own time).
 * @throws KeyError KEY_INVALID (not a secret key), KEY_UNTRUSTED (a key no signature by which is taken:
 * `untrustedKeyProblem`), KEY_PASSPHRASE (wrong or missing passphrase) or KEY_EXPIRED (the key's expiry is
 * past by `clock`; each signature throws it too, once it is).
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
  // Before anything is signed, and before the passphrase is tried: a key every client refuses each signature
  // by (`untrustedKeyProblem`: small order, anyone can sign as it; unbounded arithmetic) was checked for
  // being readable, decrypted and unexpired only, and a registry given one published snapshots and rotations
  // that anyone could forge. Publisher, operator and new registry keys were refused for it; the registry's
  // own was not.
  assertSigningKeyTrusted(privateKey);
  if (!privateKey.isDecrypted()) {
    if (!passphrase)
      throw new KeyError('KEY_PASSPHRASE', 'the signing key is encrypted and no passphrase was given');
    try {
      privateKey = await openpgp.decryptKey({ privateKey, passphrase });
    } catch (cause) {
      throw new KeyError('KEY_PASSPHRASE', 'the passphrase does not decrypt the signing key', { cause });
    }
  }
  // The key's end (RFC 4880 5.2.3.6), checked where it is loaded and at each signature: the one-pass signer
  // signed on past it (a container, a `plugindex serve`, holds its signer), and openpgp.js refused with a
  // plain "Error signing message: Primary key is expired" at the first signature of a batch, no code.
  const expires = await privateKey.getExpirationTime();
  const expiresAt = expires instanceof Date ? expires.getTime() : Number.POSITIVE_INFINITY;
  const fingerprint = upper(privateKey.getFingerprint());
  const assertUnexpired = (): void => {
    if (clock.now().getTime() >= expiresAt)
      throw new KeyError(
        'KEY_EXPIRED',
        `the signing key ${fingerprint} expired at ${new Date(expiresAt).toISOString()}: extend it (gpg --quick-set-expire) and give the registry the extended key; a rotation to another key is signed by this one too, so extend it first for that as well`,
      );
  };
  assertUnexpired();
  // The (sub)key that signs is the one openpgp.js (and GnuPG) picks at the signature's time: the newest valid
  // signing subkey, else the primary when it may sign. Chosen at load and again whenever the clock leaves
  // the span the choice holds for: the one-pass signer kept the subkey it found at load and signed on past
  // the subkey's expiry (signatures no verifier takes), and openpgp.js, where no other key could sign (a
  // GnuPG primary made for certifying only), threw its plain "Could not find valid signing key packet".
  let choice = await chooseSigningKey(privateKey, clock.now(), clock);
  const current = async (): Promise<SigningChoice> => {
    assertUnexpired();
    const now = clock.now();
    if (now.getTime() < choice.from || now.getTime() >= choice.until)
      choice = await chooseSigningKey(privateKey, now, clock);
    return choice;
  };
  const publicKey = privateKey.toPublic().armor();
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
    const { onePass } = await current();
    if (!onePass) return openpgpSign(data);
    const hash = createHash('sha256').update(data);
    return onePass(hash);
  };
  const beginSigning = (): IncrementalSigning => {
    // The signature is dated when it is finished: the key is checked, and chosen, then.
    if (choice.onePass) {
      const hash = createHash('sha256');
      return {
        update: (chunk) => void hash.update(chunk),
        finish: async () => {
          const { onePass } = await current();
          // Only the data's SHA-256 was kept: another Ed25519 (sub)key finishes it as well. One of
          // another type (a registry key mixing types) cannot; the document is signed again next time.
          if (!onePass)
            throw new KeyError(
              'KEY_INVALID',
              `the signing key ${fingerprint} changed the (sub)key it signs with, to one of another type, while a document was signed: sign it again`,
            );
          return onePass(hash);
        },
      };
    }
    // openpgp.js signs whole messages here: the pieces are joined at the end (keys other than Ed25519 are
    // an operator's choice, and their streamed documents are held in memory once).
    const chunks: Uint8Array[] = [];
    return {
      update: (chunk) => void chunks.push(chunk),
      finish: async () => {
        const { onePass } = await current();
        const data = Buffer.concat(chunks);
        return onePass ? onePass(createHash('sha256').update(data)) : openpgpSign(data);
      },
    };
  };
  return {
    fingerprint,
    fingerprints: fingerprintsOf(privateKey),
    publicKey,
    signWithDigest,
    beginSigning,
    async sign(data: Uint8Array): Promise<string> {
      return (await signWithDigest(data)).signature;
    },
  };
}

/**
 * Refuses a key to sign with (the registry's: its secret key, or its public part) that no signature by is
 * ever taken (`untrustedKeyProblem`), naming the key and why; `createSigner` asks first of all, and
 * `plugindex serve` at its start.
 * @throws KeyError KEY_UNTRUSTED
 * @example assertSigningKeyTrusted((await readPublicKey(armoredSecretKey)).key);
 */
export function assertSigningKeyTrusted(key: openpgp.Key): void {
  const untrusted = untrustedKeyProblem(key);
  if (untrusted)
    throw new KeyError(
      'KEY_UNTRUSTED',
      `the signing key ${upper(key.getFingerprint())} cannot be trusted, no signature by it is ever taken (anyone could forge what it signs, and every client refuses it): ${untrusted}; give the registry an Ed25519 key (plugindex keygen, or gpg --quick-gen-key NAME ed25519), or RSA of at most ${MAX_RSA_MODULUS_BITS} bits with exponent 65537`,
    );
}

/** The (sub)key a signer signs with, the span of time it is the one, and its one-pass signer (Ed25519). */
interface SigningChoice {
  /** From (ms): its creation. */
  readonly from: number;
  /** Until (ms): its expiry, the primary's, or a newer signing subkey's creation, whichever comes first. */
  readonly until: number;
  /** Finishes a signature over data hashed so far with SHA-256; undefined: openpgp.js signs. */
  readonly onePass?: OnePassFinish;
}

type OnePassFinish = (
  hash: ReturnType<typeof createHash>,
) => Promise<{ readonly signature: string; readonly sha256: string }>;

const endOf = (time: Date | number | null): number =>
  time instanceof Date ? time.getTime() : time === null ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;

/**
 * The (sub)key `privateKey` signs with at `at`, as openpgp.js picks it (`getSigningKey`).
 * @throws KeyError KEY_EXPIRED when no key may sign then because every signing subkey has expired (the
 *   primary being unable to sign, or expired: `createSigner` says so first), naming the subkey and what to
 *   do; KEY_INVALID when none may sign for another reason (revoked, not flagged for signing).
 */
async function chooseSigningKey(
  privateKey: openpgp.PrivateKey,
  at: Date,
  clock: Clock,
): Promise<SigningChoice> {
  let signing: openpgp.PrivateKey | openpgp.Subkey;
  try {
    signing = (await privateKey.getSigningKey(undefined, at)) as openpgp.PrivateKey | openpgp.Subkey;
  } catch (cause) {
    throw await noSigningKey(privateKey, at, cause);
  }
  const primaryEnd = endOf(await privateKey.getExpirationTime());
  const ownEnd =
    signing === privateKey ? primaryEnd : endOf(await (signing as openpgp.Subkey).getExpirationTime(at));
  // A signing subkey made after `at` is the one openpgp.js takes from its creation on (the newest wins).
  const newer = privateKey
    .getSubkeys()
    .map((sub) => sub.getCreationTime().getTime())
    .filter((created) => created > at.getTime());
  const onePass = await onePassSigner(signing, clock);
  return {
    from: signing.getCreationTime().getTime(),
    until: Math.min(primaryEnd, ownEnd, ...newer),
    ...(onePass ? { onePass } : {}),
  };
}

/** Why `privateKey` has no (sub)key that may sign at `at`: a KeyError telling the operator what to do. */
async function noSigningKey(privateKey: openpgp.PrivateKey, at: Date, cause: unknown): Promise<KeyError> {
  const fingerprint = upper(privateKey.getFingerprint());
  const when = at.toISOString();
  // The signing subkeys that have expired by `at`, the last to expire first: the one to extend.
  const expired: { readonly fingerprint: string; readonly end: number }[] = [];
  for (const sub of privateKey.getSubkeys()) {
    const flags = sub.bindingSignatures.at(-1)?.keyFlags?.[0] ?? 0;
    if (!(flags & openpgp.enums.keyFlags.signData)) continue;
    const end = endOf(await sub.getExpirationTime(at).catch(() => null));
    if (Number.isFinite(end) && end <= at.getTime())
      expired.push({ fingerprint: upper(sub.getFingerprint()), end });
  }
  expired.sort((a, b) => b.end - a.end);
  const last = expired[0];
  if (last)
    return new KeyError(
      'KEY_EXPIRED',
      `the signing key ${fingerprint} has no key that may sign at ${when}: its signing subkey ${last.fingerprint} expired at ${new Date(last.end).toISOString()}: extend the subkey (gpg --quick-set-expire ${fingerprint} 1y ${last.fingerprint}) or add a signing subkey (gpg --quick-add-key ${fingerprint} ed25519 sign 1y), and give the registry the updated key (its fingerprint stays the same, so no rotation is needed)`,
      { cause },
    );
  return new KeyError(
    'KEY_INVALID',
    `the signing key ${fingerprint} has no key that may sign at ${when}: ${(cause as Error).message}`,
    { cause },
  );
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
function mpi(bytes: Uint8Array): Uint8Array {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  const value = bytes.subarray(start);
  const bits = (value.length - 1) * 8 + (32 - Math.clz32(value[0] ?? 0));
  const out = new Uint8Array(2 + value.length);
  out.set(uint16(bits));
  out.set(value, 2);
  return out;
}

/** A new-format packet header for `length` bytes of body (RFC 4880, 4.2.2). */
function packetHeader(tag: number, length: number): Uint8Array {
  return Uint8Array.from(length < 192 ? [0xc0 | tag, length] : [0xc0 | tag, 0xff, ...uint32(length)]);
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
  signingKey: openpgp.PrivateKey | openpgp.Subkey,
  clock: Clock,
): Promise<OnePassFinish | undefined> {
  const packet = signingKey.keyPacket as unknown as
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
  // The parts of the packet that are the same in every signature by this key, made once: the hashed part
  // (all but its creation time, at CREATED_AT), the trailer hashed after it, and the unhashed part.
  const hashedSubpackets = [
    ...[5, SUBPACKET_CREATION_TIME, 0, 0, 0, 0],
    ...[2 + fingerprint.length, SUBPACKET_ISSUER_FINGERPRINT, 4, ...fingerprint],
  ];
  const hashedTemplate = Uint8Array.from([
    SIGNATURE_VERSION,
    SIGNATURE_BINARY_DOCUMENT,
    openpgp.enums.publicKey.eddsaLegacy,
    openpgp.enums.hash.sha256,
    ...uint16(hashedSubpackets.length),
    ...hashedSubpackets,
  ]);
  const CREATED_AT = 8; // four fields, the subpackets' length, the first subpacket's length and type
  const trailer = Uint8Array.from([SIGNATURE_VERSION, 0xff, ...uint32(hashedTemplate.length)]);
  const unhashedSubpackets = [1 + keyId.length, SUBPACKET_ISSUER_KEY_ID, ...keyId];
  const unhashed = Uint8Array.from([...uint16(unhashedSubpackets.length), ...unhashedSubpackets]);
  const finish = async (hash: ReturnType<typeof createHash>) => {
    const created = Math.floor(clock.now().getTime() / 1000);
    const hashed = hashedTemplate.slice();
    hashed.set(uint32(created), CREATED_AT);
    const sha256 = hash.copy().digest('hex');
    const digest = hash.update(hashed).update(trailer).digest();
    // EdDSA in OpenPGP v4 signs the digest; Node's Ed25519 gives R || S.
    const rs = cryptoSign(null, digest, key);
    const r = mpi(rs.subarray(0, 32));
    const s = mpi(rs.subarray(32));
    // The body: the hashed part, the unhashed part, the digest's first two bytes, then r and s.
    const length = hashed.length + unhashed.length + 2 + r.length + s.length;
    const header = packetHeader(PACKET_TAG_SIGNATURE, length);
    const binarySignature = Buffer.concat([header, hashed, unhashed, digest.subarray(0, 2), r, s]);
    return { signature: armorSignature(binarySignature), sha256 };
  };
  return finish;
}

/**
 * RFC 4880's CRC-24 of `bytes` (section 6.1), the armor's checksum: initialised to 0xB704CE, generator
 * 0x1864CFB, big-endian.
 */
function crc24(bytes: Uint8Array): number {
  let crc = 0xb704ce;
  for (let i = 0; i < bytes.length; i++)
    crc = ((crc << 8) ^ (CRC24_TABLE[((crc >>> 16) ^ (bytes[i] as number)) & 0xff] as number)) & 0xffffff;
  return crc;
}

/**
 * CRC-24 of each byte value, shifted through the register (RFC 4880, 6.1, a byte at a time rather than a
 * bit: an import armors 20,000 signatures).
 */
const CRC24_TABLE = Uint32Array.from({ length: 256 }, (_, byte) => {
  let crc = byte << 16;
  for (let bit = 0; bit < 8; bit++) {
    crc <<= 1;
    if (crc & 0x1000000) crc ^= 0x1864cfb;
  }
  return crc & 0xffffff;
});

/**
 * A signature packet armored exactly as openpgp.js 6 armors a v4 signature (`Signature.armor()`): the
 * header, an empty line (no Version or Comment), base64 in lines of 60 characters, the CRC-24 checksum
 * (emitted for v4 signatures), the footer. The one-pass signer's packets are parsed and armored by
 * openpgp.js in the tests, which compare the texts; here, parsing each one again to armor it cost about a
 * third of signing a small document (an import signs two a plugin), and its compilation about 0.4 s.
 */
function armorSignature(binary: Uint8Array): string {
  const base64 = Buffer.from(binary.buffer, binary.byteOffset, binary.byteLength).toString('base64');
  const lines: string[] = ['-----BEGIN PGP SIGNATURE-----\n\n'];
  for (let at = 0; at < base64.length; at += 60) lines.push(`${base64.slice(at, at + 60)}\n`);
  const crc = crc24(binary);
  const checksum = Buffer.from([(crc >> 16) & 0xff, (crc >> 8) & 0xff, crc & 0xff]).toString('base64');
  lines.push(`=${checksum}\n`, '-----END PGP SIGNATURE-----\n');
  return lines.join('');
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
 * The key IDs a detached signature names as its issuers (uppercase hex), as `verifyDetachedSignature` picks
 * its candidates by; none when it does not read (which that refuses whatever the keys).
 */
export async function signatureKeyIds(armoredSignature: string): Promise<string[]> {
  const signature = await openpgp.readSignature({ armoredSignature }).catch(() => undefined);
  return signature ? Array.from(signature.getSigningKeyIDs(), (id) => upper(id.toHex())) : [];
}

/** A detached signature as read, with the keys that may have made it; or why it is refused before any key. */
type ReadDetached =
  | {
      readonly signature: openpgp.Signature;
      readonly keyIds: readonly string[];
      readonly candidates: readonly openpgp.Key[];
    }
  | { readonly refused: Extract<VerifyResult, { ok: false }> };

async function readDetachedSignature(
  armoredSignature: string,
  keys: readonly openpgp.Key[],
): Promise<ReadDetached> {
  let signature: openpgp.Signature;
  try {
    signature = await openpgp.readSignature({ armoredSignature });
  } catch (cause) {
    return {
      refused: {
        ok: false,
        reason: 'malformed',
        message: `not an armored OpenPGP signature: ${(cause as Error).message}`,
        keyIds: [],
      },
    };
  }
  const shape = signatureShapeProblem(armoredSignature, signature);
  if (shape) return { refused: { ok: false, reason: 'malformed', message: shape, keyIds: [] } };
  const keyIds = Array.from(signature.getSigningKeyIDs(), (id) => upper(id.toHex()));
  const candidates = keys.filter((key) => key.getKeyIDs().some((id) => keyIds.includes(upper(id.toHex()))));
  if (candidates.length === 0) {
    return {
      refused: {
        ok: false,
        reason: 'unknown-key',
        message: `signed by unknown key ${keyIds.join(', ') || '(no issuer)'}`,
        keyIds,
      },
    };
  }
  // Before either path: both would accept a signature anyone can make by a weak key (OpenSSL takes it), and
  // openpgp.js would spend minutes on a costly one.
  for (const key of candidates) {
    const costly = keyArithmeticProblem(key);
    if (costly)
      return {
        refused: {
          ok: false,
          reason: 'bad-signature',
          message: `signature not checked: the key ${upper(key.getFingerprint())} costs unbounded work: ${costly}`,
          keyIds,
        },
      };
    const weak = weakKeyProblem(key, keyIds);
    if (weak)
      return {
        refused: {
          ok: false,
          reason: 'bad-signature',
          message: `signature does not verify: the key ${upper(key.getFingerprint())} is weak: ${weak}`,
          keyIds,
        },
      };
  }
  return { signature, keyIds, candidates };
}

/**
 * Verifies an armored detached signature over `data` against candidate keys. Never throws for bad input:
 * the result says what is wrong, so callers can report it as a submission problem. The signature must be
 * one binary-document signature in one armored block: anything more is read differently by other tools.
 * `date` (default now) is when it is judged: a signature made after it is refused. A v4 Ed25519 signature
 * (what publishers and the registry make) is checked by `verifyEd25519`, everything else by openpgp.js; both
 * accept and refuse the same signatures, for the same reasons.
 */
export async function verifyDetachedSignature(
  data: Uint8Array,
  armoredSignature: string,
  keys: readonly openpgp.Key[],
  date: Date = new Date(),
): Promise<VerifyResult> {
  const read = await readDetachedSignature(armoredSignature, keys);
  if ('refused' in read) return read.refused;
  return (await verifyEd25519(data, read, date)) ?? verifyWithOpenpgp(data, read, date);
}

/**
 * `verifyDetachedSignature` by one path alone, for tests that hold the two to the same answers: `ed25519`
 * resolves to undefined where it hands the signature over to openpgp.js.
 */
export async function verifyDetachedSignatureBy(
  path: 'ed25519' | 'openpgp',
  data: Uint8Array,
  armoredSignature: string,
  keys: readonly openpgp.Key[],
  date: Date = new Date(),
): Promise<VerifyResult | undefined> {
  const read = await readDetachedSignature(armoredSignature, keys);
  if ('refused' in read) return read.refused;
  return path === 'ed25519' ? verifyEd25519(data, read, date) : verifyWithOpenpgp(data, read, date);
}

type ReadSignature = Exclude<ReadDetached, { refused: unknown }>;

function refusal(cause: unknown, keyIds: readonly string[]): Extract<VerifyResult, { ok: false }> {
  const message = (cause as Error).message;
  return {
    ok: false,
    reason: failureReason(message),
    message: `signature does not verify: ${message}`,
    keyIds,
  };
}

async function verifyWithOpenpgp(data: Uint8Array, read: ReadSignature, date: Date): Promise<VerifyResult> {
  const { signature, candidates, keyIds } = read;
  try {
    const message = await openpgp.createMessage({ binary: data });
    const result = await openpgp.verify({
      message,
      signature,
      verificationKeys: [...candidates],
      expectSigned: true,
      format: 'binary',
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
    return refusal(cause, keyIds);
  }
}

/** The hash algorithms the Ed25519 path computes with Node: those an Ed25519 signature may use, and GnuPG's. */
const NODE_HASHES = new Map<number, string>([
  [openpgp.enums.hash.sha256, 'sha256'],
  [openpgp.enums.hash.sha384, 'sha384'],
  [openpgp.enums.hash.sha512, 'sha512'],
]);
const ED25519_SIZE = 32;

/** The key material openpgp.js keeps in a key packet (not in its typings). */
interface KeyPacketMaterial {
  readonly version?: number;
  readonly algorithm?: number;
  readonly publicParams?: { readonly oid?: { getName?(): string }; readonly Q?: Uint8Array };
}

/** Each Ed25519 (sub)key's Node KeyObject, made once per key packet; null where it is not one. */
const ed25519Keys = new WeakMap<object, KeyObject | null>();

/**
 * A v4 EdDSA-legacy key packet's public key as a Node KeyObject, or undefined for any other key (and for a
 * point openpgp.js would refuse: not 0x40 followed by 32 bytes).
 */
function ed25519KeyOf(keyPacket: object): KeyObject | undefined {
  const held = ed25519Keys.get(keyPacket);
  if (held !== undefined) return held ?? undefined;
  const { version, algorithm, publicParams } = keyPacket as KeyPacketMaterial;
  const point = publicParams?.Q;
  let made: KeyObject | null = null;
  if (
    version === 4 &&
    algorithm === openpgp.enums.publicKey.eddsaLegacy &&
    publicParams?.oid?.getName?.() === openpgp.enums.curve.ed25519Legacy &&
    point?.length === ED25519_SIZE + 1 &&
    point[0] === 0x40
  ) {
    try {
      made = createPublicKey({
        key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(point.subarray(1)).toString('base64url') },
        format: 'jwk',
      });
    } catch {
      made = null; // openpgp.js says why
    }
  }
  ed25519Keys.set(keyPacket, made);
  return made ?? undefined;
}

/** A little-endian-as-MPI value left-padded to `size` bytes, as openpgp.js pads r and s (util.leftPad). */
function leftPad(bytes: Uint8Array, size: number): Uint8Array {
  const padded = new Uint8Array(size);
  padded.set(bytes, size - bytes.length);
  return padded;
}

/**
 * openpgp.js's SignaturePacket.verify after its cryptographic check (openpgp 6.x, packet/signature.js), for
 * a message signature: the same checks, in the same order, with the same messages (`failureReason` reads
 * them). `date` is judged to the second, as openpgp.js's util.normalizeDate does.
 */
function checkSignatureValidity(packet: openpgp.SignaturePacket, date: Date): void {
  const config = openpgp.config;
  const judgedAt = new Date(Math.floor(date.getTime() / 1000) * 1000);
  if ((packet.created as Date) > judgedAt) throw new Error('Signature creation time is in the future');
  if (judgedAt >= packet.getExpirationTime()) throw new Error('Signature is expired');
  const hash = packet.hashAlgorithm as openpgp.enums.hash;
  const hashName = () => String(openpgp.enums.read(openpgp.enums.hash, hash)).toUpperCase();
  if (config.rejectHashAlgorithms.has(hash)) throw new Error(`Insecure hash algorithm: ${hashName()}`);
  // A binary-document signature is a message signature (the only type that reaches here).
  if (config.rejectMessageHashAlgorithms.has(hash))
    throw new Error(`Insecure message hash algorithm: ${hashName()}`);
  for (const { type, critical } of packet.unknownSubpackets)
    if (critical) throw new Error(`Unknown critical signature subpacket type ${type}`);
  for (const { name, critical } of packet.rawNotations)
    if (critical && !config.knownNotations.includes(name))
      throw new Error(`Unknown critical notation: ${name}`);
  if (packet.revocationKeyClass !== null)
    throw new Error(
      'This key is intended to be revoked with an authorized key, which OpenPGP.js does not support.',
    );
}

/**
 * The Ed25519 path: a v4 EdDSA-legacy binary-document signature hashed (SHA-256/384/512) and verified with
 * Node's crypto against a KeyObject made once per (sub)key, where openpgp.js imports the key into WebCrypto
 * again for every signature (and answers on the thread pool): about half of an import's verification time.
 * openpgp.js still parses the packet, and still judges the key (`judgeSigningKey`: bound, flagged for signing,
 * unexpired and unrevoked when the signature was made); the rest of its checks are mirrored here, in its order
 * and with its messages (createVerificationObject and SignaturePacket.verify, openpgp 6.x). Anything else (other
 * key types or hashes, v5/v6 packets, a point or an r/s openpgp.js would refuse) resolves to undefined, and
 * openpgp.js verifies it.
 */
async function verifyEd25519(
  data: Uint8Array,
  read: ReadSignature,
  date: Date,
): Promise<VerifyResult | undefined> {
  const packet = read.signature.packets[0];
  if (!(packet instanceof openpgp.SignaturePacket) || packet.version !== 4) return undefined;
  if (packet.publicKeyAlgorithm !== openpgp.enums.publicKey.eddsaLegacy) return undefined;
  const hashName = NODE_HASHES.get(packet.hashAlgorithm as number);
  const { signatureData, signedHashValue, created } = packet;
  const params = (packet as { params?: { r?: unknown; s?: unknown } }).params;
  const { r, s } = params ?? {};
  if (!hashName || !signatureData || signedHashValue?.length !== 2 || !created) return undefined;
  if (!(r instanceof Uint8Array && s instanceof Uint8Array)) return undefined;
  if (r.length > ED25519_SIZE || s.length > ED25519_SIZE) return undefined;
  // The key openpgp.js takes: the first candidate holding the issuer's key ID, its primary before its subkeys.
  let primary: openpgp.Key | undefined;
  let issuer: openpgp.Key | openpgp.Subkey | undefined;
  for (const key of read.candidates) {
    issuer = key.getKeys(packet.issuerKeyID)[0];
    if (issuer) {
      primary = key;
      break;
    }
  }
  if (!primary || !issuer || !packet.issuerKeyID.equals(issuer.getKeyID())) return undefined;
  const publicKey = ed25519KeyOf(issuer.keyPacket);
  if (!publicKey) return undefined;
  try {
    // RFC 4880 5.2.4: the data, the hashed part of the packet, then the v4 trailer (0x04 0xFF, its length).
    const trailer = Uint8Array.from([SIGNATURE_VERSION, 0xff, ...uint32(signatureData.length)]);
    const digest = createHash(hashName).update(data).update(signatureData).update(trailer).digest();
    if (digest[0] !== signedHashValue[0] || digest[1] !== signedHashValue[1])
      throw new Error('Signed digest did not match');
    // EdDSA in OpenPGP v4 signs the digest; Node's Ed25519 takes R || S.
    const rs = Buffer.concat([leftPad(r, ED25519_SIZE), leftPad(s, ED25519_SIZE)]);
    // On the thread pool, as openpgp.js's WebCrypto check was: the pipeline inspects bundles several at a
    // time (evaluate.ts), so the curve arithmetic runs beside the main thread's work.
    const valid = await new Promise<boolean>((resolve, reject) =>
      cryptoVerify(null, digest, publicKey, rs, (error, result) => (error ? reject(error) : resolve(result))),
    );
    if (!valid) throw new Error('Signature verification failed');
    checkSignatureValidity(packet, date);
    if (issuer.getCreationTime() > created) throw new Error('Key is newer than the signature');
    // Could the key sign when the signature was made (openpgp.js: createVerificationObject)?
    try {
      await judgeSigningKey(primary, issuer.getKeyID(), created);
    } catch (cause) {
      // openpgp.js's allowance for a reformatted key, when configured: judged at `date` instead.
      if (
        !openpgp.config.allowInsecureVerificationWithReformattedKeys ||
        !/Signature creation time is in the future/.test((cause as Error).message)
      )
        throw cause;
      await judgeSigningKey(primary, issuer.getKeyID(), date);
    }
    return {
      ok: true,
      fingerprint: upper(primary.getFingerprint()),
      signingKeyId: upper(packet.issuerKeyID.toHex()),
      key: primary,
      created,
    };
  } catch (cause) {
    // openpgp.verify throws its verification's error wrapped so (util.wrapError): the same message here.
    return refusal(new Error(`Error verifying signed message: ${(cause as Error).message}`), read.keyIds);
  }
}

/**
 * Most judgements kept per key (`judgeSigningKey`): a batch asks at its time of publishing and at each
 * signature's creation (to the second, so one publisher's uploads made in one run share many); with the 256
 * key texts trust.ts keeps, a bound of a few megabytes.
 */
const SIGNING_KEY_JUDGEMENTS_PER_KEY = 256;
const signingKeyJudgements = new WeakMap<openpgp.Key, Map<string, Promise<unknown>>>();

/**
 * openpgp.js's `getSigningKey(keyId, date)`, once per key object, (sub)key and instant: it walks the key's
 * self-signatures, revocations and binding signatures at `date` again at every call (their cryptographic
 * checks are cached by openpgp.js; their times are not), and the answer depends on nothing else (keys are
 * never changed once read: trust.ts shares them, read once per text). A refusal is kept as well: it is the
 * same at the same instant. The oldest entries go first past the bound.
 */
function judgeSigningKey(key: openpgp.Key, keyId: openpgp.KeyID, date: Date): Promise<unknown> {
  let judged = signingKeyJudgements.get(key);
  if (!judged) {
    judged = new Map();
    signingKeyJudgements.set(key, judged);
  }
  const at = `${keyId.toHex()}@${date.getTime()}`;
  const held = judged.get(at);
  if (held) return held;
  const judging = key.getSigningKey(keyId, date);
  judging.catch(() => undefined); // a refusal is read by every caller, not left unhandled meanwhile
  judged.set(at, judging);
  if (judged.size > SIGNING_KEY_JUDGEMENTS_PER_KEY) judged.delete(judged.keys().next().value as string);
  return judging;
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
    await (id ? judgeSigningKey(key, id, date) : key.getSigningKey(id, date));
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

/**
 * When the (sub)key `keyId` (uppercase hex) of one of `keys` stopped signing: its own expiry or its primary
 * key's, whichever came first, as of `at`; undefined when no key holds it or neither expires.
 */
export async function signingKeyExpiry(
  keys: readonly openpgp.Key[],
  keyId: string,
  at: Date,
): Promise<{ readonly fingerprint: string; readonly subkey?: string; readonly expired: Date } | undefined> {
  for (const key of keys) {
    const found = key.getKeys().find((k) => upper(k.getKeyID().toHex()) === keyId);
    if (!found) continue;
    const primaryEnd = endOf(await key.getExpirationTime().catch(() => null));
    const subkey = found === key ? undefined : (found as openpgp.Subkey);
    const ownEnd = subkey ? endOf(await subkey.getExpirationTime(at).catch(() => null)) : primaryEnd;
    const end = Math.min(primaryEnd, ownEnd);
    if (!Number.isFinite(end)) return undefined;
    return {
      fingerprint: upper(key.getFingerprint()),
      ...(subkey && ownEnd <= primaryEnd ? { subkey: upper(subkey.getFingerprint()) } : {}),
      expired: new Date(end),
    };
  }
  return undefined;
}

/** The field Ed25519 works in: 2^255 - 19. */
const P25519 = (1n << 255n) - 19n;
/**
 * The y coordinates of the Ed25519 points of small order (the identity, order 2, 4 and 8): the torsion
 * points, whose multiples are the identity. libsodium refuses them as public keys; OpenSSL (Node's crypto and
 * its WebCrypto, which openpgp.js uses) does not.
 */
const SMALL_ORDER_Y = new Set([
  0n,
  1n,
  P25519 - 1n,
  0x7a03ac9277fdc74ec6cc392cfa53202a0f67100d760b3cba4fd84d3d706a17c7n,
  P25519 - 0x7a03ac9277fdc74ec6cc392cfa53202a0f67100d760b3cba4fd84d3d706a17c7n,
]);

/**
 * Whether a 32-byte Ed25519 public key (RFC 8032 5.1.2: y little-endian, x's sign in the top bit) is a point
 * of small order, in any encoding (a y of p or more, read mod p as OpenSSL reads it, and either sign).
 */
function isSmallOrderEd25519(encoded: Uint8Array): boolean {
  let y = 0n;
  for (let i = ED25519_SIZE - 1; i >= 0; i--) y = (y << 8n) | BigInt(encoded[i] ?? 0);
  return SMALL_ORDER_Y.has((y & ((1n << 255n) - 1n)) % P25519);
}

/** A (sub)key packet's Ed25519 public key (EdDSA legacy's Q after its 0x40, or Ed25519's A), if it has one. */
function ed25519PointOf(keyPacket: object): Uint8Array | undefined {
  const { algorithm, publicParams } = keyPacket as KeyPacketMaterial & {
    readonly publicParams?: { readonly A?: Uint8Array };
  };
  const legacy = publicParams?.Q;
  if (algorithm === openpgp.enums.publicKey.eddsaLegacy && legacy?.length === ED25519_SIZE + 1)
    return legacy.subarray(1);
  const point = publicParams?.A;
  if (algorithm === openpgp.enums.publicKey.ed25519 && point?.length === ED25519_SIZE) return point;
  return undefined;
}

/** Whether each (sub)key packet's Ed25519 point has small order, found once: every signature asks. */
const smallOrderKeys = new WeakMap<object, boolean>();

/**
 * Why `key` cannot be a signer's, or undefined: a (sub)key (among those with the key IDs `keyIds`, uppercase
 * hex, when given) whose Ed25519 point has small order. By the identity, a signature with R = [S]B verifies
 * over any data, whatever S (by a point of order 2, 4 or 8, over one document in that many): anyone can sign
 * as it, its certifications too. OpenSSL (Node's crypto, and the WebCrypto openpgp.js verifies with) takes
 * such signatures; GnuPG 2.2 takes none (publisher-keys.test.ts).
 */
export function weakKeyProblem(key: openpgp.Key, keyIds?: readonly string[]): string | undefined {
  for (const k of key.getKeys()) {
    if (keyIds && !keyIds.includes(upper(k.getKeyID().toHex()))) continue;
    let weak = smallOrderKeys.get(k.keyPacket);
    if (weak === undefined) {
      const point = ed25519PointOf(k.keyPacket);
      weak = point !== undefined && isSmallOrderEd25519(point);
      smallOrderKeys.set(k.keyPacket, weak);
    }
    if (weak)
      return `its ${k === key ? 'primary key' : 'subkey'} ${upper(k.getFingerprint())} is an Ed25519 point of small order, by which signatures anyone can make verify`;
  }
  return undefined;
}

/**
 * The largest RSA modulus (GnuPG makes none larger, even with --enable-large-rsa) and public exponent (OpenSSL
 * refuses more than 64 bits with a modulus past 3,072; GnuPG makes 65537) a (sub)key may have.
 */
const MAX_RSA_MODULUS_BITS = 16_384;
const MAX_RSA_EXPONENT_BITS = 64;
const RSA_ALGORITHMS: ReadonlySet<number> = new Set([
  openpgp.enums.publicKey.rsaEncryptSign,
  openpgp.enums.publicKey.rsaEncrypt,
  openpgp.enums.publicKey.rsaSign,
]);

/** The bits of a big-endian number (an MPI's value, as openpgp.js keeps it). */
function bitLength(value: Uint8Array | undefined): number {
  let at = 0;
  while (value && at < value.length && value[at] === 0) at++;
  if (!value || at === value.length) return 0;
  return (value.length - at - 1) * 8 + (32 - Math.clz32(value[at] as number));
}

/**
 * Why checking a signature by `key` could cost unbounded work, or undefined: a (sub)key whose arithmetic
 * openpgp.js does in JavaScript, on the main thread, before it judges the key (`getSigningKey` refuses DSA,
 * but only after). A DSA key always (p and q up to 65,535 bits); an RSA one past MAX_RSA_MODULUS_BITS or
 * MAX_RSA_EXPONENT_BITS, where its signatures are checked by modular exponentiation in JavaScript (a hash
 * WebCrypto lacks, SHA-224 or SHA-3: its fallback), costing the exponent's bits times the square of the
 * modulus's: an exponent and a modulus of 65,535 bits, a 64 KiB publisher.asc, about 40 minutes.
 */
export function keyArithmeticProblem(key: openpgp.Key): string | undefined {
  let found = keyArithmetic.get(key);
  if (found === undefined) {
    found = null;
    for (const k of key.getKeys()) {
      const problem = keyPacketArithmeticProblem(k.keyPacket);
      if (problem) {
        found = `its ${k === key ? 'primary key' : 'subkey'} ${upper(k.getFingerprint())} is ${problem}`;
        break;
      }
    }
    keyArithmetic.set(key, found);
  }
  return found ?? undefined;
}

/** `keyArithmeticProblem`'s answer per key object, found once: every signature by a key asks. */
const keyArithmetic = new WeakMap<openpgp.Key, string | null>();

/** What makes one (sub)key packet's arithmetic unbounded, or undefined. */
function keyPacketArithmeticProblem(keyPacket: object): string | undefined {
  const { algorithm, publicParams } = keyPacket as {
    readonly algorithm?: number;
    readonly publicParams?: { readonly n?: Uint8Array; readonly e?: Uint8Array };
  };
  if (algorithm === openpgp.enums.publicKey.dsa)
    return 'a DSA key, which openpgp.js takes for no signature (after unbounded arithmetic)';
  if (algorithm === undefined || !RSA_ALGORITHMS.has(algorithm)) return undefined;
  const modulus = bitLength(publicParams?.n);
  const exponent = bitLength(publicParams?.e);
  if (modulus > MAX_RSA_MODULUS_BITS)
    return `an RSA key of ${modulus} bits (at most ${MAX_RSA_MODULUS_BITS})`;
  if (exponent > MAX_RSA_EXPONENT_BITS)
    return `an RSA key whose public exponent has ${exponent} bits (at most ${MAX_RSA_EXPONENT_BITS}; GnuPG uses 65537)`;
  return undefined;
}

/**
 * Reads a key an operator or a user means to trust (`what`, for the message: "the publisher key", "the
 * registry key"), refused when added rather than at its first signature: every signature by a (sub)key whose
 * arithmetic is unbounded (`keyArithmeticProblem`) or whose Ed25519 point has small order (`weakKeyProblem`)
 * is refused anyway, so trusting one only defers the refusal to a publish, an install or a verify that then
 * fails, or leaves a pin no signature can meet.
 * @throws KeyError KEY_INVALID: not an armored key, or such a key, naming which (sub)key and why.
 * @example const key = await readTrustedKey(await readFile(file, 'utf8'), 'the publisher key');
 */
export async function readTrustedKey(armored: string, what: string): Promise<PublicKeyInfo> {
  const info = await readPublicKey(armored);
  const problem = untrustedKeyProblem(info.key);
  if (problem)
    throw new KeyError(
      'KEY_INVALID',
      `${what} ${info.fingerprint} cannot be trusted: ${problem}; give an Ed25519 key (gpg --quick-gen-key NAME ed25519, or plugindex keygen), or RSA of at most ${MAX_RSA_MODULUS_BITS} bits with exponent 65537`,
    );
  return info;
}

/**
 * Why no signature by `key` may be taken, or undefined: a (sub)key whose arithmetic is unbounded, or one
 * anyone can sign as (the reasons `readDetachedSignature` refuses every signature by it for).
 */
export function untrustedKeyProblem(key: openpgp.Key): string | undefined {
  return keyArithmeticProblem(key) ?? weakKeyProblem(key);
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
