/**
 * What a key's fingerprint looks like where plugindex names a key by it, the key ID a signature names that
 * key by, and a primary key's fingerprint computed from its packet. Nothing heavy imported (node:crypto
 * alone): log.ts and the client's light paths read fingerprints without loading openpgp.js; signing.ts
 * gives the same names.
 */
import { hash } from 'node:crypto';

/**
 * A primary key fingerprint as plugindex names a key (configs, actions, the log, lock and plugin set files):
 * 40 uppercase hex digits for a v4 key (SHA-1, RFC 9580 5.5.4.2), 64 for a v6 one (SHA-256, 5.5.4.3).
 * The registry's own key is v4 (GnuPG 2.2 reads no v6 key); publishers and operators may hold either.
 */
export const KEY_FINGERPRINT = /^(?:[0-9A-F]{40}|[0-9A-F]{64})$/;
/** How messages name that form: `expected ${KEY_FINGERPRINT_FORM}`. */
export const KEY_FINGERPRINT_FORM =
  'a key fingerprint (40 or 64 uppercase hex digits: an OpenPGP v4 or v6 key)';

/**
 * The key ID (uppercase hex) a signature names its issuer by, from a fingerprint of `KEY_FINGERPRINT`'s form:
 * a v4 key's is the last 16 hex digits of its 40 (RFC 9580 5.5.4.2), a v6 key's the first 16 of its 64
 * (5.5.4.3). Taking the last 16 of a v6 fingerprint names no key any signature names.
 * @example keyIdOfFingerprint('2EE5955F41F8BCE3' + '0'.repeat(48)) // '2EE5955F41F8BCE3'
 */
export function keyIdOfFingerprint(fingerprint: string): string {
  return fingerprint.length === 64 ? fingerprint.slice(0, 16) : fingerprint.slice(-16);
}

/** The Public-Key packet tag (RFC 9580 §5.5.1.1). */
const PUBLIC_KEY_TAG = 6;

/**
 * The fingerprint of the primary key `packets` (binary OpenPGP, a key's first packet) start with, computed
 * as RFC 9580 §5.5.4 defines it, without openpgp.js: SHA-1 over 0x99, the two-octet length and the public
 * key packet's body for a v4 key, SHA-256 over 0x9B, the four-octet length and the body for a v6 one.
 * Undefined for anything else (no public key packet first, a secret key's, another version, a length past the end, a partial length, which no key packet takes):
 * a caller that must know then reads the key with openpgp.js. Whether the key is one to trust is not judged:
 * this names it, as a lock or a trust record names the key it was made with, for a comparison that costs
 * nothing on a path that otherwise loads no signature code (an install with nothing to do).
 * @example primaryKeyFingerprint(dearmoredBlocks(armored).next().value) // '2EE5955F41F8BCE3…' (40 digits, a v4 key)
 */
export function primaryKeyFingerprint(packets: Uint8Array): string | undefined {
  const first = packets[0] ?? 0;
  if ((first & 0x80) === 0) return undefined;
  const current = (first & 0x40) !== 0;
  const tag = current ? first & 0x3f : (first >> 2) & 0x0f;
  if (tag !== PUBLIC_KEY_TAG) return undefined;
  let at = 1;
  let length = 0;
  if (current) {
    const o1 = packets[1] ?? 0;
    if (o1 < 192) [length, at] = [o1, 2];
    else if (o1 < 224) [length, at] = [((o1 - 192) << 8) + (packets[2] ?? 0) + 192, 3];
    else if (o1 === 255) {
      for (let i = 2; i <= 5; i++) length = length * 256 + (packets[i] ?? 0);
      at = 6;
    } else return undefined;
  } else {
    const size = [1, 2, 4, 0][first & 0x03] as number;
    if (size === 0) return undefined;
    for (let i = 1; i <= size; i++) length = length * 256 + (packets[i] ?? 0);
    at = 1 + size;
  }
  if (at + length > packets.byteLength) return undefined;
  const body = packets.subarray(at, at + length);
  const version = body[0];
  if (version === 4 && length <= 0xffff) {
    return hash('sha1', withHead([0x99, length >> 8, length & 0xff], body), 'hex').toUpperCase();
  }
  if (version === 6) {
    const head = [0x9b, length >>> 24, (length >>> 16) & 0xff, (length >>> 8) & 0xff, length & 0xff];
    return hash('sha256', withHead(head, body), 'hex').toUpperCase();
  }
  return undefined;
}

/** `head` then `body`, as one array (the bytes a fingerprint hashes). */
function withHead(head: readonly number[], body: Uint8Array): Uint8Array {
  const joined = new Uint8Array(head.length + body.byteLength);
  joined.set(head);
  joined.set(body, head.length);
  return joined;
}
