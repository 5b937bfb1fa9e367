/**
 * Secret key material found in key text and bytes by the packets' tags alone (armor.ts), with no
 * openpgp.js: a secret primary key, and a secret subkey under a public primary key (tag 7), as GnuPG
 * exports one (`--export-secret-subkeys`, armored and binary) and spliced into the public key's packets,
 * and as openpgp.js writes one.
 */
import { describe, expect, it } from 'vitest';
import {
  armoredHoldsSecretKeyPackets,
  holdsSecretKeyPackets,
  isSecretKeyText,
  packetTags,
} from '../../index-builder/armor.ts';
import { testKey } from '../support/fixtures.ts';
import { gpgSecretSubkeys } from '../support/gpg.ts';
import { publicPrimaryWithSecretSubkeys } from '../support/openpgp-packets.ts';

describe('when key material holds a secret subkey', () => {
  it('finds it in every form, armored and binary, and nothing secret in public keys', async () => {
    const gpg = gpgSecretSubkeys();
    const key = await testKey('publisher');
    const spliced = await publicPrimaryWithSecretSubkeys(key.secretKey);
    const secret = [
      ['gpg --export-secret-subkeys', gpg.exported],
      ['gpg public key spliced with its secret subkey', gpg.spliced],
      ['openpgp.js public primary key with its secret subkey', spliced],
    ] as const;
    for (const [what, { armored, binary }] of secret) {
      expect([what, armoredHoldsSecretKeyPackets(armored), isSecretKeyText(armored, {})]).toEqual([
        what,
        true,
        true,
      ]);
      expect([what, holdsSecretKeyPackets(binary)]).toEqual([what, true]);
    }
    // The spliced forms are what they say: a public primary key (tag 6) and a secret subkey (tag 7).
    expect([...packetTags(gpg.spliced.binary)]).toEqual([6, 13, 2, 7, 2]);
    expect([...packetTags(spliced.binary)].slice(0, 1)).toEqual([6]);
    expect([...packetTags(spliced.binary)]).toContain(7);
    for (const armored of [gpg.publicKey.armored, key.publicKey])
      expect([armoredHoldsSecretKeyPackets(armored), isSecretKeyText(armored, {})]).toEqual([false, false]);
    expect(holdsSecretKeyPackets(gpg.publicKey.binary)).toBe(false);
  }, 60_000);
});
