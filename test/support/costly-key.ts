/**
 * Keys whose arithmetic has no bound, and a signature "by" one: an RSA key with a public exponent as long as
 * its modulus, or a DSA key, whose signatures openpgp.js checks in JavaScript (RSA where WebCrypto has not
 * the hash, SHA-224 say; DSA always), a modular exponentiation whose work grows with the exponent's bits
 * times the square of the modulus's. Written packet by packet (RFC 4880 5.2, 5.5) from random numbers: no
 * signature by them verifies, and their self-certification is noise; only the work of checking counts.
 */
import { Buffer } from 'node:buffer';
import { armor, header, uint16, uint32, v4Key, v4Signature } from './openpgp-packets.ts';

/** `bytes` bytes of deterministic noise (xorshift32), the top bit and the lowest set: odd, of full length. */
function number(bytes: number, seed: number): number[] {
  const out: number[] = [];
  let x = seed;
  for (let i = 0; i < bytes; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out.push(x & 0xff);
  }
  out[0] = (out[0] as number) | 0x80;
  out[bytes - 1] = (out[bytes - 1] as number) | 1;
  return out;
}

/** An MPI of a number whose first byte is not zero (RFC 4880 3.2). */
const mpi = (value: readonly number[]): number[] => [
  ...uint16((value.length - 1) * 8 + (32 - Math.clz32(value[0] ?? 0))),
  ...value,
];

export interface CostlyKey {
  readonly publicKey: string;
  readonly fingerprint: string;
  /** A signature over `data` that names the key, its left 16 bits right, its numbers noise. */
  sign(data: Uint8Array, created: Date): string;
}

/**
 * An RSA key with a modulus and a public exponent of `bits` bits each, or a DSA key whose p and q have
 * `bits` bits; `hash`, the hash its signatures name.
 */
export function costlyKey(options: {
  readonly algorithm: 'rsa' | 'dsa';
  readonly bits: number;
  /** An RSA key's public exponent's bits, when not `bits` (a multiple of 8, as `bits` is). */
  readonly exponentBits?: number;
  readonly hash: 'sha224' | 'sha256';
  readonly created: Date;
}): CostlyKey {
  const bytes = options.bits / 8;
  const exponentBytes = (options.exponentBits ?? options.bits) / 8;
  const algorithm = options.algorithm === 'rsa' ? 1 : 17;
  const seconds = Math.floor(options.created.getTime() / 1000);
  const material =
    options.algorithm === 'rsa'
      ? [...mpi(number(bytes, 1)), ...mpi(number(exponentBytes, 2))] // n, e
      : [...mpi(number(bytes, 3)), ...mpi(number(bytes, 4)), ...mpi(number(16, 5)), ...mpi(number(16, 6))]; // p, q, g, y
  const body = [4, ...uint32(seconds), algorithm, ...material];
  const { keyHashed, fingerprint } = v4Key(body);
  // RSA: s, a little under n; DSA: r and s, small (under q), which still makes the exponents q's size.
  const numbers =
    options.algorithm === 'rsa'
      ? mpi([0x7f, ...number(bytes - 1, 7)])
      : [...mpi(number(8, 8)), ...mpi(number(8, 9))];
  const signer = { fingerprint, algorithm, hash: options.hash, numbers };
  const signature = (type: number, signed: readonly number[], at: number, extra: readonly number[]) =>
    v4Signature(signer, type, signed, at, extra);
  const userId = [...Buffer.from('costly <costly@example.org>')];
  const certification = signature(
    0x13,
    [...keyHashed, 0xb4, ...uint32(userId.length), ...userId],
    seconds,
    [2, 27, 0x03],
  );
  return {
    publicKey: armor('PUBLIC KEY BLOCK', [
      ...header(6, body.length),
      ...body,
      ...header(13, userId.length),
      ...userId,
      ...certification,
    ]),
    fingerprint: Buffer.from(fingerprint).toString('hex').toUpperCase(),
    sign: (data, created) =>
      armor('SIGNATURE', signature(0x00, [...data], Math.floor(created.getTime() / 1000), [])),
  };
}
