/**
 * The bytes the hand-built OpenPGP keys of the tests share (costly-key.ts, small-order-key.ts): numbers,
 * packet headers, armor, and a v4 key's fingerprint and signatures, written packet by packet (RFC 4880).
 */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import * as openpgp from 'openpgp';

export const uint32 = (v: number): number[] => [
  (v >>> 24) & 0xff,
  (v >>> 16) & 0xff,
  (v >>> 8) & 0xff,
  v & 0xff,
];
export const uint16 = (v: number): number[] => [(v >>> 8) & 0xff, v & 0xff];
/** A new-format packet header with a five-byte length (RFC 4880 4.2.2.3). */
export const header = (tag: number, length: number): number[] => [0xc0 | tag, 0xff, ...uint32(length)];

/** Armored `bytes` (no checksum line: it is optional, RFC 4880 6.2). */
export function armor(
  type: 'PUBLIC KEY BLOCK' | 'PRIVATE KEY BLOCK' | 'SIGNATURE',
  bytes: readonly number[],
): string {
  const lines =
    Buffer.from(bytes)
      .toString('base64')
      .match(/.{1,64}/g) ?? [];
  return `-----BEGIN PGP ${type}-----\n\n${lines.join('\n')}\n-----END PGP ${type}-----\n`;
}

/** A v4 key's public key packet `body` as its fingerprint and signatures hash it, and its fingerprint. */
export function v4Key(body: readonly number[]): { keyHashed: number[]; fingerprint: number[] } {
  const keyHashed = [0x99, ...uint16(body.length), ...body];
  return { keyHashed, fingerprint: [...createHash('sha1').update(Uint8Array.from(keyHashed)).digest()] };
}

/** How a v4 key of the tests signs: its algorithm, the hash its signatures name, and their numbers. */
export interface V4Signer {
  readonly fingerprint: readonly number[];
  readonly algorithm: number;
  readonly hash: 'sha224' | 'sha256';
  /** The signature's MPIs as they stand in the packet: made without any secret, whatever they hold. */
  readonly numbers: readonly number[];
}

const HASH_IDS = { sha224: 11, sha256: 8 } as const;

/**
 * A v4 signature packet (RFC 4880 5.2.3) of `type` over `signed` (what precedes the hashed part), made at
 * `at` (seconds) by `signer`, naming it by issuer fingerprint and key ID, with the `extra` hashed subpackets:
 * its left 16 bits right, its numbers the signer's.
 */
export function v4Signature(
  signer: V4Signer,
  type: number,
  signed: readonly number[],
  at: number,
  extra: readonly number[],
): number[] {
  const { fingerprint } = signer;
  const subpackets = [5, 2, ...uint32(at), 2 + fingerprint.length, 33, 4, ...fingerprint, ...extra];
  const hashed = [
    4,
    type,
    signer.algorithm,
    HASH_IDS[signer.hash],
    ...uint16(subpackets.length),
    ...subpackets,
  ];
  const digest = createHash(signer.hash)
    .update(Uint8Array.from([...signed, ...hashed, 4, 0xff, ...uint32(hashed.length)]))
    .digest();
  const packet = [
    ...hashed,
    ...uint16(10),
    9,
    16,
    ...fingerprint.slice(-8),
    digest[0] as number,
    digest[1] as number,
    ...signer.numbers,
  ];
  return [...header(2, packet.length), ...packet];
}

/**
 * The secret key `armoredSecretKey` with its primary key packet replaced by its public part, as openpgp.js
 * writes the packets (`toPacketList`, the first swapped): a public primary key holding secret subkeys (the
 * encryption subkey every key openpgp.js generates has), binary, and armored as a PUBLIC KEY BLOCK.
 */
export async function publicPrimaryWithSecretSubkeys(
  armoredSecretKey: string,
): Promise<{ readonly binary: Uint8Array; readonly armored: string }> {
  const privateKey = await openpgp.readPrivateKey({ armoredKey: armoredSecretKey });
  const list = new openpgp.PacketList<openpgp.AnyPacket>();
  list.push(privateKey.toPublic().keyPacket);
  for (const packet of [...privateKey.toPacketList()].slice(1)) list.push(packet);
  const binary = list.write();
  return { binary, armored: openpgp.armor(openpgp.enums.armor.publicKey, binary) };
}
