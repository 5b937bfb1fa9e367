/**
 * A v4 Ed25519 (EdDSA legacy) key whose public point has small order, and signatures by it that anyone can
 * make: with R the base point B and S one, Ed25519's check [S]B = R + [h]A holds for every h when A is the
 * identity (and for some h when A has order 2, 4 or 8). Written packet by packet (RFC 4880 5.2, 5.5, 5.11),
 * since no tool makes such a key: its self-certification is forged the same way, and armored (no
 * checksum line: it is optional, RFC 4880 6.2).
 */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { armor, header, uint16, uint32, v4Key, v4Signature } from './openpgp-packets.ts';

/** The OID of Ed25519 in OpenPGP (RFC 4880bis, 9.2). */
const ED25519_OID = [0x2b, 0x06, 0x01, 0x04, 0x01, 0xda, 0x47, 0x0f, 0x01];
const PREFIX_NATIVE_POINT = 0x40;

/** Ed25519 point encodings of small order (RFC 8032 5.1.2), little-endian y with x's sign in the top bit. */
export const SMALL_ORDER_POINTS = {
  /** The identity (y = 1): every forged signature verifies. */
  identity: [1, ...new Array<number>(31).fill(0)],
  /** Order 2 (y = p - 1). */
  'order 2': [0xec, ...new Array<number>(30).fill(0xff), 0x7f],
  /** Order 4 (y = 0). */
  'order 4': new Array<number>(32).fill(0),
  /** Order 8. */
  'order 8': [...Buffer.from('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a', 'hex')],
  /** The identity written with y = p + 1, which OpenSSL reads mod p. */
  'the identity, non-canonical': [0xee, ...new Array<number>(30).fill(0xff), 0x7f],
} as const;
/** R, the base point's encoding (RFC 8032 5.1); S, one (little-endian). */
const FORGED_R = [0x58, ...new Array<number>(31).fill(0x66)];
const FORGED_S = SMALL_ORDER_POINTS.identity;

export interface SmallOrderKey {
  /** The armored public key: one user ID, certified (forged) for signing and certifying. */
  readonly publicKey: string;
  /**
   * The same key as an unencrypted secret key (RFC 4880 5.5.3), its seed noise: openpgp.js reads it and
   * signs with it (its signatures verify by no key), as a registry key given to rotate-key would be.
   */
  readonly secretKey: string;
  readonly fingerprint: string;
  /** An armored detached binary-document signature over `data`, made without any secret. */
  forge(data: Uint8Array, created?: Date): string;
}

/** A key whose public point is `point` (32 bytes), made at `created`. */
export function smallOrderKey(point: readonly number[], created: Date): SmallOrderKey {
  const seconds = Math.floor(created.getTime() / 1000);
  const body = [
    4,
    ...uint32(seconds),
    22, // EdDSA legacy
    ED25519_OID.length,
    ...ED25519_OID,
    ...uint16(263), // the MPI's bits: 0x40 then 32 bytes
    PREFIX_NATIVE_POINT,
    ...point,
  ];
  const { keyHashed, fingerprint } = v4Key(body);
  const signer = {
    fingerprint,
    algorithm: 22,
    hash: 'sha256',
    // R's bits (its first byte is 0x58), R; S's bits (its first byte is 1), S.
    numbers: [...uint16(255), ...FORGED_R, ...uint16(249), ...FORGED_S],
  } as const;
  const signature = (type: number, signed: readonly number[], at: number, extra: readonly number[]) =>
    v4Signature(signer, type, signed, at, extra);
  const userId = [...Buffer.from('small order <small-order@example.org>')];
  const certification = signature(
    0x13,
    [...keyHashed, 0xb4, ...uint32(userId.length), ...userId],
    seconds,
    [2, 27, 0x03], // key flags: certify, sign
  );
  const key = [...header(6, body.length), ...body, ...header(13, userId.length), ...userId, ...certification];
  // String-to-key usage 0 (not encrypted), the seed as an MPI of 256 bits, then the sum of its bytes mod 65536.
  const seed = [0x80, ...new Array<number>(31).fill(7)];
  const seedMpi = [...uint16(256), ...seed];
  const secretBody = [...body, 0, ...seedMpi, ...uint16(seedMpi.reduce((sum, b) => sum + b, 0) & 0xffff)];
  const secret = [
    ...header(5, secretBody.length),
    ...secretBody,
    ...header(13, userId.length),
    ...userId,
    ...certification,
  ];
  return {
    publicKey: armor('PUBLIC KEY BLOCK', key),
    secretKey: armor('PRIVATE KEY BLOCK', secret),
    fingerprint: Buffer.from(fingerprint).toString('hex').toUpperCase(),
    forge: (data, at = created) =>
      armor('SIGNATURE', signature(0x00, [...data], Math.floor(at.getTime() / 1000), [])),
  };
}

/** SHA-256's salt in a v6 signature (RFC 9580 5.2.3, table 23). */
const V6_SALT = new Array<number>(16).fill(0x5a);

/**
 * A v6 Ed25519 key (RFC 9580: algorithm 27, its point `A` 32 bytes as they are) whose point is `point`,
 * made at `created`, and signatures anyone can make by it (R the base point, S one, as for `smallOrderKey`).
 * Written packet by packet (RFC 9580 5.2.3, 5.2.4, 5.5.2.3, 5.5.4.3; a direct-key signature and a user ID
 * certification, each forged), since no tool makes such a key; openpgp.js makes v6 keys
 * (`generateKey({ type: 'curve25519', config: { v6Keys: true } })`) but of a point of its own.
 */
export function smallOrderKeyV6(point: readonly number[], created: Date): Omit<SmallOrderKey, 'secretKey'> {
  const seconds = Math.floor(created.getTime() / 1000);
  const body = [6, ...uint32(seconds), 27 /* Ed25519 */, ...uint32(point.length), ...point];
  const keyHashed = [0x9b, ...uint32(body.length), ...body];
  const fingerprint = [...createHash('sha256').update(Uint8Array.from(keyHashed)).digest()];
  const signature = (type: number, signed: readonly number[], at: number, extra: readonly number[]) => {
    const subpackets = [5, 2, ...uint32(at), 2 + fingerprint.length, 33, 6, ...fingerprint, ...extra];
    const hashed = [6, type, 27, 8 /* SHA-256 */, ...uint32(subpackets.length), ...subpackets];
    const digest = createHash('sha256')
      .update(Uint8Array.from([...V6_SALT, ...signed, ...hashed, 6, 0xff, ...uint32(hashed.length)]))
      .digest();
    const packet = [
      ...hashed,
      ...uint32(0), // no unhashed subpackets
      digest[0] as number,
      digest[1] as number,
      V6_SALT.length,
      ...V6_SALT,
      ...FORGED_R,
      ...FORGED_S,
    ];
    return [...header(2, packet.length), ...packet];
  };
  const flags = [2, 27, 0x03]; // key flags: certify, sign
  const direct = signature(0x1f, keyHashed, seconds, flags);
  const userId = [...Buffer.from('small order v6 <small-order-v6@example.org>')];
  const certification = signature(
    0x13,
    [...keyHashed, 0xb4, ...uint32(userId.length), ...userId],
    seconds,
    flags,
  );
  const key = [
    ...header(6, body.length),
    ...body,
    ...direct,
    ...header(13, userId.length),
    ...userId,
    ...certification,
  ];
  return {
    publicKey: armor('PUBLIC KEY BLOCK', key),
    fingerprint: Buffer.from(fingerprint).toString('hex').toUpperCase(),
    forge: (data, at = created) =>
      armor('SIGNATURE', signature(0x00, [...data], Math.floor(at.getTime() / 1000), [])),
  };
}
