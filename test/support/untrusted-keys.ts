/**
 * Keys no signature by which is taken (index-builder/signing.ts `untrustedKeyProblem`), one of each kind,
 * with the words the refusal of each says why in: the tests of every place a key enters configuration or
 * trust refuse each of them there.
 */
import { costlyKey } from './costly-key.ts';
import { KEYS_CREATED } from './fixtures.ts';
import { SMALL_ORDER_POINTS, smallOrderKey, smallOrderKeyV6 } from './small-order-key.ts';

export interface UntrustedKey {
  readonly label: string;
  readonly publicKey: string;
  readonly fingerprint: string;
  /** Words of the reason the refusal gives. */
  readonly reason: string;
}

export const UNTRUSTED_KEYS: readonly UntrustedKey[] = [
  {
    label: 'an Ed25519 key of small order',
    ...smallOrderKey(SMALL_ORDER_POINTS.identity, KEYS_CREATED),
    reason: 'is an Ed25519 point of small order',
  },
  {
    label: 'an RFC 9580 (v6) Ed25519 key of small order',
    ...smallOrderKeyV6(SMALL_ORDER_POINTS['order 8'], KEYS_CREATED),
    reason: 'is an Ed25519 point of small order',
  },
  {
    label: 'an RSA key with a long public exponent',
    ...costlyKey({ algorithm: 'rsa', bits: 2048, hash: 'sha224', created: KEYS_CREATED }),
    reason: 'public exponent has 2048 bits',
  },
  {
    label: 'a DSA key',
    ...costlyKey({ algorithm: 'dsa', bits: 1024, hash: 'sha256', created: KEYS_CREATED }),
    reason: 'is a DSA key',
  },
].map(({ label, publicKey, fingerprint, reason }) => ({ label, publicKey, fingerprint, reason }));
