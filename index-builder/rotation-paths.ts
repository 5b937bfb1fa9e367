/**
 * Where a registry publishes its key rotations (`keys/rotation/<N>.json`), apart from rotation.ts, which
 * reads and checks them with openpgp.js: a client naming a rotation in a refusal (the install and verify
 * commands, key-revocation.ts) loads nothing heavy for it. Pure.
 */
export const ROTATION_PREFIX = 'keys/rotation/';

/** `keys/rotation/<N>.json`, N from 1. */
export function rotationKey(sequence: number): string {
  return `${ROTATION_PREFIX}${sequence}.json`;
}
