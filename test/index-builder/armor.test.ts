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
import { readPublicKey } from '../../index-builder/signing.ts';
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

describe('when the armor is read as openpgp.js reads it', () => {
  it('takes the lines before the blank one for headers, whatever they hold, and every line after it for data', async () => {
    // openpgp.js takes any line before the blank one as a header (one without a colon is only logged) and
    // decodes every data line, skipping characters outside Radix-64 (a colon among them). A header line that
    // decodes to a secret subkey packet's header (xwEA: tag 7, length 1) refused a public key as secret;
    // a secret subkey's data lines each holding a colon were not read, its key then refused as no key at all.
    const gpg = gpgSecretSubkeys();
    const key = await testKey('publisher');
    const honest = key.publicKey.replace(/(-----BEGIN PGP PUBLIC KEY BLOCK-----\r?\n)/, '$1xwEA\n');
    expect(honest).toContain('\nxwEA\n');
    expect((await readPublicKey(honest)).fingerprint).toBe(key.fingerprint);
    expect([armoredHoldsSecretKeyPackets(honest), isSecretKeyText(honest, {})]).toEqual([false, false]);

    const [head = '', body = ''] = gpg.spliced.armored.split(/\r?\n\r?\n/);
    const hidden = `${head}\n\n${body.replace(/^([A-Za-z0-9+/]{8})/gm, '$1:')}`;
    expect(hidden).toMatch(/^[A-Za-z0-9+/]{8}:/m);
    expect(armoredHoldsSecretKeyPackets(hidden)).toBe(true);
    expect((await readPublicKey(hidden)).secret).toBe(true);
    // Trailing white space after an armor line's dashes, which openpgp.js drops before it reads one.
    const spaced = gpg.spliced.armored.replace(/(BLOCK-----)(\r?\n)/g, '$1 \t$2');
    expect(spaced).toContain('BLOCK----- \t\n');
    expect(armoredHoldsSecretKeyPackets(spaced)).toBe(true);
    expect((await readPublicKey(spaced)).secret).toBe(true);
  }, 60_000);
});
