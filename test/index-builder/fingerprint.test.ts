/**
 * Key fingerprints of v4 keys (40 hex digits) and RFC 9580 v6 keys (64), and the key ID a signature names
 * each by, held to the keys openpgp.js makes (`config: { v6Keys: true }` for v6; GnuPG 2.2 reads no v6 key,
 * so it plays no part here); then each reader of a fingerprint (registry config, actions, the log) taking
 * both and refusing any other length with its own code.
 */
import * as openpgp from 'openpgp';
import { describe, expect, it } from 'vitest';
import { actionProblems } from '../../index-builder/actions.ts';
import { dearmoredBlocks } from '../../index-builder/armor.ts';
import { parseTrustedOperators, parseTrustedPublishers } from '../../index-builder/config.ts';
import { ConfigError, TrustError } from '../../index-builder/errors.ts';
import {
  KEY_FINGERPRINT,
  keyIdOfFingerprint,
  primaryKeyFingerprint,
} from '../../index-builder/fingerprint.ts';
import { EMPTY_LOG, nextEntry, parseSegment, renderSegment } from '../../index-builder/log.ts';
import { gpgPublicKeys } from '../support/gpg.ts';

async function publicKey(v6Keys: boolean): Promise<openpgp.PublicKey> {
  const { publicKey: armored } = await openpgp.generateKey({
    type: v6Keys ? 'curve25519' : 'ecc',
    userIDs: [{ name: v6Keys ? 'V6 Publisher' : 'V4 Publisher' }],
    format: 'armored',
    config: { v6Keys },
  });
  return openpgp.readKey({ armoredKey: armored });
}

const V6_FINGERPRINT = 'ABCDEF0123456789'.repeat(4);
const WRONG_LENGTHS = [39, 41, 63, 65].map((n) => 'A'.repeat(n));

describe('when a key ID is taken from a fingerprint', () => {
  it('takes the one openpgp.js gives a v6 key (its first 16 hex digits) and a v4 key (its last 16)', async () => {
    for (const v6 of [true, false]) {
      const key = await publicKey(v6);
      const fingerprint = key.getFingerprint().toUpperCase();
      expect(fingerprint).toMatch(KEY_FINGERPRINT);
      expect(fingerprint).toHaveLength(v6 ? 64 : 40);
      expect(key.keyPacket.version).toBe(v6 ? 6 : 4);

      expect(keyIdOfFingerprint(fingerprint)).toBe(key.getKeyID().toHex().toUpperCase());
    }
  });
});

describe("when a key's fingerprint is computed from its packet, without openpgp.js", () => {
  it('gives the one openpgp.js gives a v4 and a v6 key, from their armor and their binary packets', async () => {
    for (const v6 of [true, false]) {
      const key = await publicKey(v6);
      const [packets] = [...dearmoredBlocks(key.armor())];
      expect(primaryKeyFingerprint(packets as Uint8Array)).toBe(key.getFingerprint().toUpperCase());
      expect(primaryKeyFingerprint(key.write())).toBe(key.getFingerprint().toUpperCase());
    }
  });

  it("gives GnuPG's fingerprint of each key kind it makes (old-format packet headers, one and two length octets), armored and binary, and the first key's of a file holding two", () => {
    const made = gpgPublicKeys(['ed25519', 'rsa2048', 'nistp256', 'brainpoolP256r1']);
    const binary = made.map(({ key }) => [...dearmoredBlocks(key)][0] as Buffer);
    made.forEach(({ fingerprint }, i) => {
      expect((binary[i]?.[0] ?? 0xff) & 0x40).toBe(0);
      expect(primaryKeyFingerprint(binary[i] as Buffer)).toBe(fingerprint);
    });
    expect(primaryKeyFingerprint(Buffer.concat(binary.slice(1)))).toBe(made[1]?.fingerprint);
  });

  it('never throws nor reads past its bytes, however they are cut or changed', () => {
    const key = gpgPublicKeys(['ed25519'])[0]?.key ?? '';
    const packets = [...dearmoredBlocks(key)][0] as Buffer;
    let seed = 7;
    const next = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed;
    };
    for (let round = 0; round < 5_000; round++) {
      const bytes = Uint8Array.from(packets.subarray(0, next() % (packets.length + 1)));
      for (let k = 0; k < 3 && bytes.length > 0; k++)
        bytes[next() % Math.min(bytes.length, 8)] = next() % 256;
      const fingerprint = primaryKeyFingerprint(bytes);
      if (fingerprint !== undefined) expect(fingerprint).toMatch(KEY_FINGERPRINT);
    }
    // A header whose length runs past the end, a partial length, a five-octet length of 4 GiB - 1.
    for (const bytes of [
      [0xc6, 0xff, 0xff, 0xff, 0xff, 0xff],
      [0xc6, 0xe1, 0x04],
      [0x9b, 0xff, 0xff, 0xff, 0xff],
      [0x9b],
      [],
    ])
      expect(primaryKeyFingerprint(Uint8Array.from(bytes))).toBeUndefined();
  });

  it('gives none for what is no public key packet first: a secret key, text, a packet cut short', async () => {
    const { privateKey } = await openpgp.generateKey({
      type: 'ecc',
      userIDs: [{ name: 'Secret' }],
      format: 'binary',
    });
    const packets = (await publicKey(false)).write();
    for (const bytes of [privateKey, new TextEncoder().encode('not a key'), packets.subarray(0, 20)])
      expect(primaryKeyFingerprint(bytes)).toBeUndefined();
  });
});

describe('when a registry config names a v6 key', () => {
  it('reads a publisher and an operator of 64 hex digits, in either case', () => {
    const [publisher] = parseTrustedPublishers([
      { fingerprint: V6_FINGERPRINT.toLowerCase(), key: 'armored', names: ['*'] },
    ]);
    const [operator] = parseTrustedOperators([{ fingerprint: V6_FINGERPRINT, key: 'armored' }]);
    expect(publisher?.fingerprint).toBe(V6_FINGERPRINT);
    expect(operator?.fingerprint).toBe(V6_FINGERPRINT);
  });

  it.each(WRONG_LENGTHS)('refuses a fingerprint of %s with CONFIG_INVALID at its pointer', (fingerprint) => {
    const message = `registry config /publishers/0/fingerprint: expected a key fingerprint (40 or 64 uppercase hex digits: an OpenPGP v4 or v6 key)`;
    const read = () => parseTrustedPublishers([{ fingerprint, key: 'armored', names: ['*'] }]);
    expect(read).toThrow(ConfigError);
    expect(read).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', message }));
    expect(() => parseTrustedOperators([{ fingerprint, key: 'armored' }])).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
  });
});

describe('when an action names a v6 key', () => {
  const body = (fingerprint: string) => ({
    schema: 'plugindex/action/v1',
    registry: 'https://r.example.org',
    created: '2026-11-01T12:00:00Z',
    nonce: '0'.repeat(32),
    action: 'revoke-key',
    fingerprint,
    reason: 'key leaked',
  });

  it('takes its 64 hex digits, and refuses any other length as ACTION_MALFORMED at /fingerprint', () => {
    expect(actionProblems(body(V6_FINGERPRINT))).toEqual([]);
    for (const fingerprint of WRONG_LENGTHS)
      expect(actionProblems(body(fingerprint)).map((p) => `${p.code} ${p.path}`)).toEqual([
        'ACTION_MALFORMED /fingerprint',
      ]);
  });
});

describe('when a log entry names a v6 signer', () => {
  const line = (signer: string) =>
    nextEntry(EMPTY_LOG, {
      time: '2026-11-01T12:00:00.000Z',
      type: 'yank',
      plugin: 'demo',
      version: '1.0.0',
      signer,
      digest: '0'.repeat(64),
    }).line;

  it('reads it', () => {
    expect(parseSegment(renderSegment([line(V6_FINGERPRINT)]), 0)[0]?.entry.signer).toBe(V6_FINGERPRINT);
  });

  it.each(WRONG_LENGTHS)('refuses a signer of %s with LOG_MALFORMED naming the field', (signer) => {
    const read = () => parseSegment(renderSegment([line(signer)]), 0);
    expect(read).toThrow(TrustError);
    expect(read).toThrow(
      expect.objectContaining({
        code: 'LOG_MALFORMED',
        message: expect.stringContaining(
          'line 1#/signer: expected a key fingerprint (40 or 64 uppercase hex digits: an OpenPGP v4 or v6 key)',
        ),
      }),
    );
  });
});
