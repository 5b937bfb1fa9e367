/**
 * What a key's fingerprint looks like where plugindex names a key by it, and the key ID a signature names
 * that key by. No imports: log.ts and the client's light paths read fingerprints without loading openpgp.js;
 * signing.ts gives the same names.
 */

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
