/**
 * A key a registry's rotation retired as compromised: which link of a trust state's chain is one, and the
 * refusal of what it signed. Apart from key-chain.ts, which follows rotations by openpgp.js, so that the
 * install and verify commands, which name such a key in their refusals, load none of it at start (an
 * install that finds its tree up to date never checks a signature: README, What it costs).
 */
import { rotationKey } from '../index-builder/rotation-paths.ts';
import { ClientError } from './errors.ts';
import type { ChainLink, RevokedKey } from './key-chain.ts';

/**
 * The link of `chain` retiring `fingerprint` as compromised, or undefined: a key a rotation marked as no
 * longer secret vouches for nothing from then on, not what it signed before the rotation either (a
 * signature carries whatever date its signer gives it). A routine rotation's key stays trusted for what it
 * signed (an installed version's manifest, a lock made under it).
 */
export function revokedLink(
  chain: readonly ChainLink[] | undefined,
  fingerprint: string | undefined,
): ChainLink | undefined {
  return (chain ?? []).find((link) => link.fingerprint === fingerprint && link.compromised === true);
}

/**
 * The refusal of a signature by a key retired as compromised, naming it, the rotation that retired it,
 * what it was found on, and what mends it (`remedy`); for a key reached from a stolen one through its
 * thief's rotation (`ForkedKey`), the key it was reached from and the rotation that retired that one.
 */
export function keyRevokedError(
  link: ChainLink & { readonly forkedFrom?: RevokedKey },
  registry: string,
  what: string,
  remedy: string,
): ClientError {
  const retired = (l: ChainLink) => (l.retiredBy === undefined ? 'a key rotation' : rotationKey(l.retiredBy));
  const { forkedFrom } = link;
  return new ClientError(
    'KEY_REVOKED',
    forkedFrom
      ? `${what} is signed by key ${link.fingerprint}, reached from key ${forkedFrom.fingerprint} through a rotation registry ${registry} never made: it retired that key at ${retired(forkedFrom)}, to key ${forkedFrom.retiredTo}, because it is no longer secret, so the rotation to ${link.fingerprint} was signed by whoever took it, and nothing ${link.fingerprint} signed is trusted; ${remedy}`
      : `${what} is signed by key ${link.fingerprint}, which registry ${registry} retired at ${retired(link)} because it is no longer secret: whoever took it can sign anything, so nothing it signed is trusted; ${remedy}`,
  );
}
