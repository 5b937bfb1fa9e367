/**
 * The Ed25519 verification path (node:crypto) against openpgp.js's: every signature below goes through both,
 * and both must give the same answer, to the reason and the message. Signatures that openpgp.js would not
 * make (a critical unknown subpacket, SHA-1, an expiry) are written here packet by packet (RFC 4880 5.2.3),
 * with Node's Ed25519 and the key's secret seed, the way signing.ts's one-pass signer writes its own.
 */
import { execFileSync } from 'node:child_process';
import { createHash, createPrivateKey, sign as cryptoSign } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as openpgp from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  keyIdOfFingerprint,
  keyUsableAt,
  readPublicKey,
  type VerifyResult,
  verifyDetachedSignature,
  verifyDetachedSignatureBy,
} from '../../index-builder/signing.ts';
import { encode, KEYS_CREATED, testKey } from '../support/fixtures.ts';
import { SMALL_ORDER_POINTS, smallOrderKey, smallOrderKeyV6 } from '../support/small-order-key.ts';

const DAY = 86_400_000;
const SIGNED = new Date(KEYS_CREATED.getTime() + 10 * DAY);
const JUDGED = new Date(SIGNED.getTime() + DAY);
const DATA = encode('{"name":"acme-costs","version":"1.0.0"}\n');

const uint32 = (v: number): number[] => [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
const uint16 = (v: number): number[] => [(v >>> 8) & 0xff, v & 0xff];
const seconds = (date: Date): number => Math.floor(date.getTime() / 1000);

/** An MPI of `bytes` without leading zeros (RFC 4880 3.2): r or s of fewer than 32 bytes, as GnuPG writes. */
function mpi(bytes: Uint8Array): number[] {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  const value = bytes.subarray(start);
  return [...uint16((value.length - 1) * 8 + (32 - Math.clz32(value[0] ?? 0))), ...value];
}

const NODE_HASH: Partial<Record<openpgp.enums.hash, string>> = {
  [openpgp.enums.hash.sha1]: 'sha1',
  [openpgp.enums.hash.sha256]: 'sha256',
  [openpgp.enums.hash.sha512]: 'sha512',
};

interface CraftOptions {
  /** The (sub)key that signs: its packet holds the secret seed. */
  readonly by: openpgp.PrivateKey | openpgp.Subkey;
  readonly data?: Uint8Array;
  readonly created?: Date;
  readonly hash?: openpgp.enums.hash;
  /** Hashed subpackets after the creation time and issuer fingerprint, written whole (length, type, body). */
  readonly hashed?: readonly number[];
  /** The key named as issuer, when not the signing one. */
  readonly issuer?: openpgp.PrivateKey | openpgp.Subkey;
  /** Changes to the finished packet body (after the left 16 bits of the hash, then r and s). */
  readonly alter?: (body: number[]) => void;
}

/** A v4 binary-document Ed25519 signature, armored, and its R || S. */
function craft(options: CraftOptions): { armored: Promise<string>; rs: Buffer } {
  const packet = options.by.keyPacket as unknown as {
    privateParams: { seed: Uint8Array };
    publicParams: { Q: Uint8Array };
  };
  const key = createPrivateKey({
    key: {
      kty: 'OKP',
      crv: 'Ed25519',
      d: Buffer.from(packet.privateParams.seed).toString('base64url'),
      x: Buffer.from(packet.publicParams.Q.subarray(1)).toString('base64url'),
    },
    format: 'jwk',
  });
  const hash = options.hash ?? openpgp.enums.hash.sha256;
  const fingerprint = [...Buffer.from((options.issuer ?? options.by).getFingerprint(), 'hex')];
  const hashedSubpackets = [
    ...[5, 2, ...uint32(seconds(options.created ?? SIGNED))],
    ...[2 + fingerprint.length, 33, 4, ...fingerprint],
    ...(options.hashed ?? []),
  ];
  const hashed = [4, 0x00, openpgp.enums.publicKey.eddsaLegacy, hash, ...uint16(hashedSubpackets.length)];
  hashed.push(...hashedSubpackets);
  const digest = createHash(NODE_HASH[hash] as string)
    .update(options.data ?? DATA)
    .update(Uint8Array.from(hashed))
    .update(Uint8Array.from([4, 0xff, ...uint32(hashed.length)]))
    .digest();
  const rs = cryptoSign(null, digest, key);
  const keyId = fingerprint.slice(-8);
  const body = [...hashed, ...uint16(10), 9, 16, ...keyId, digest[0] as number, digest[1] as number];
  body.push(...mpi(rs.subarray(0, 32)), ...mpi(rs.subarray(32)));
  options.alter?.(body);
  const binarySignature = Uint8Array.from([0xc2, 0xff, ...uint32(body.length), ...body]);
  return { armored: openpgp.readSignature({ binarySignature }).then((s) => s.armor()), rs };
}

/** Both paths' answers, the Ed25519 path's required (it must have taken the signature, not handed it on). */
async function bothPaths(
  signature: string,
  keys: readonly openpgp.Key[],
  options: { data?: Uint8Array; at?: Date } = {},
): Promise<{ ed25519: VerifyResult; openpgp: VerifyResult }> {
  const data = options.data ?? DATA;
  const at = options.at ?? JUDGED;
  const ed25519 = await verifyDetachedSignatureBy('ed25519', data, signature, keys, at);
  const viaOpenpgp = await verifyDetachedSignatureBy('openpgp', data, signature, keys, at);
  if (!ed25519) throw new Error('the Ed25519 path handed the signature to openpgp.js');
  return { ed25519, openpgp: viaOpenpgp as VerifyResult };
}

const readPrivate = (armoredKey: string) => openpgp.readPrivateKey({ armoredKey });
/** An Ed25519 key that expires five days after the test's keys are made. */
const expiringKey = async (): Promise<openpgp.PrivateKey> =>
  (
    await openpgp.generateKey({
      type: 'ecc',
      userIDs: [{ name: 'expiring' }],
      date: KEYS_CREATED,
      keyExpirationTime: 5 * 86_400,
      format: 'object',
    })
  ).privateKey;
/** An Ed25519 key whose second subkey signs, made when the test's keys are. */
const withSigningSubkey = async (name: string): Promise<openpgp.PrivateKey> =>
  (
    await openpgp.generateKey({
      type: 'ecc',
      subkeys: [{}, { sign: true }],
      userIDs: [{ name }],
      date: KEYS_CREATED,
      format: 'object',
    })
  ).privateKey;
const publicOf = async (key: openpgp.PrivateKey) => (await readPublicKey(key.toPublic().armor())).key;

let publisher: openpgp.PrivateKey;
let publisherPublic: openpgp.Key;

beforeAll(async () => {
  publisher = await readPrivate((await testKey('ed25519-path')).secretKey);
  publisherPublic = await publicOf(publisher);
});

describe('when a v4 Ed25519 signature is sound', () => {
  it.each([
    ['SHA-256, as the registry and plugindex pack sign', openpgp.enums.hash.sha256],
    ['SHA-512, as openpgp.js and GnuPG sign with Ed25519', openpgp.enums.hash.sha512],
  ])('accepts one hashed with %s, as openpgp.js does', async (_, hash) => {
    const { ed25519, openpgp: slow } = await bothPaths(await craft({ by: publisher, hash }).armored, [
      publisherPublic,
    ]);
    expect(slow).toMatchObject({ ok: true, fingerprint: publisherPublic.getFingerprint().toUpperCase() });
    expect(ed25519).toEqual(slow);
  });

  it('accepts a signature made by openpgp.js, naming the key and its creation time', async () => {
    const signature = await openpgp.sign({
      message: await openpgp.createMessage({ binary: DATA }),
      signingKeys: publisher,
      detached: true,
      date: SIGNED,
    });
    const { ed25519, openpgp: slow } = await bothPaths(signature, [publisherPublic]);
    expect(ed25519).toEqual(slow);
    expect(ed25519).toMatchObject({ ok: true, created: SIGNED, key: publisherPublic });
  });

  it('accepts an r written in fewer than 32 bytes (an MPI drops leading zeros), padded as openpgp.js pads it', async () => {
    // About one signature in 256 has an r whose first byte is zero: search for one.
    let found: { data: Uint8Array; armored: Promise<string> } | undefined;
    for (let i = 0; !found; i++) {
      const data = encode(`document ${i}`);
      const made = craft({ by: publisher, data });
      if (made.rs[0] === 0) found = { data, armored: made.armored };
    }
    const signature = await found.armored;
    const packet = (await openpgp.readSignature({ armoredSignature: signature })).packets[0] as unknown as {
      params: { r: Uint8Array };
    };
    expect(packet.params.r.length).toBeLessThan(32);
    const { ed25519, openpgp: slow } = await bothPaths(signature, [publisherPublic], { data: found.data });
    expect(slow).toMatchObject({ ok: true });
    expect(ed25519).toEqual(slow);
  });

  it('accepts a signature by a signing subkey, naming the primary key and the subkey', async () => {
    const privateKey = await withSigningSubkey('subkey signer');
    const signingSubkey = privateKey.subkeys[1] as openpgp.Subkey;
    const { ed25519, openpgp: slow } = await bothPaths(await craft({ by: signingSubkey }).armored, [
      await publicOf(privateKey),
    ]);
    expect(slow).toMatchObject({
      ok: true,
      fingerprint: privateKey.getFingerprint().toUpperCase(),
      signingKeyId: signingSubkey.getKeyID().toHex().toUpperCase(),
    });
    expect(ed25519).toEqual(slow);
  });
});

describe('when a v4 Ed25519 signature is bad', () => {
  /** A bad input, the reason openpgp.js gives for it, and the Ed25519 path must give the same. */
  it.each<[string, () => Promise<{ signature: string; keys?: openpgp.Key[]; data?: Uint8Array }>, string]>([
    [
      'over other data',
      async () => ({ signature: await craft({ by: publisher }).armored, data: encode('x') }),
      'bad-signature',
    ],
    [
      'with its signature bytes changed (s)',
      async () => ({
        signature: await craft({
          by: publisher,
          alter: (body) => {
            body[body.length - 1] = (body[body.length - 1] as number) ^ 1;
          },
        }).armored,
      }),
      'bad-signature',
    ],
    [
      'with the left 16 bits of its hash changed',
      async () => ({
        signature: await craft({
          by: publisher,
          alter: (body) => {
            // After the hashed part, the unhashed issuer key ID (2 + 10 bytes): the two hash bytes.
            const at = 6 + (((body[4] as number) << 8) | (body[5] as number)) + 2 + 10;
            body[at] = (body[at] as number) ^ 0xff;
          },
        }).armored,
      }),
      'bad-signature',
    ],
    [
      'made by another key that names the publisher as its issuer',
      async () => {
        const other = await readPrivate((await testKey('ed25519-impostor')).secretKey);
        return { signature: await craft({ by: other, issuer: publisher }).armored };
      },
      'bad-signature',
    ],
    [
      'dated after the time it is judged at',
      async () => ({
        signature: await craft({ by: publisher, created: new Date(JUDGED.getTime() + 1000) }).armored,
      }),
      'time',
    ],
    [
      'expired (a signature expiration time subpacket)',
      async () => ({ signature: await craft({ by: publisher, hashed: [5, 3, ...uint32(60)] }).armored }),
      'time',
    ],
    [
      'with an unknown critical subpacket',
      async () => ({ signature: await craft({ by: publisher, hashed: [2, 0x80 | 100, 0] }).armored }),
      'bad-signature',
    ],
    [
      'naming a revocation key (a subpacket openpgp.js refuses on a signature it verifies)',
      async () => ({
        signature: await craft({
          by: publisher,
          hashed: [23, 12, 0x80, openpgp.enums.publicKey.eddsaLegacy, ...new Array<number>(20).fill(0xab)],
        }).armored,
      }),
      // Its message ("This key is intended to be revoked with an authorized key…") reads as a revocation.
      'key-revoked',
    ],
    [
      'with a critical notation openpgp.js does not know',
      async () => {
        const name = [...encode('x@example.com')];
        const notation = [0x80, 0, 0, 0, ...uint16(name.length), ...uint16(1), ...name, 0x31];
        return {
          signature: await craft({ by: publisher, hashed: [1 + notation.length, 0x80 | 20, ...notation] })
            .armored,
        };
      },
      'bad-signature',
    ],
    [
      'older than the key that made it',
      async () => ({
        signature: await craft({ by: publisher, created: new Date(KEYS_CREATED.getTime() - DAY) }).armored,
      }),
      'bad-signature',
    ],
  ])('refuses a signature %s, for the reason openpgp.js gives', async (_, make, reason) => {
    const { signature, keys, data } = await make();
    const { ed25519, openpgp: slow } = await bothPaths(
      signature,
      keys ?? [publisherPublic],
      data ? { data } : {},
    );
    expect(slow).toMatchObject({ ok: false, reason });
    expect(ed25519).toEqual(slow);
  });

  it('refuses a signature made after the key expired (key-expired), and takes one made before', async () => {
    const privateKey = await expiringKey();
    const key = await publicOf(privateKey);
    const late = await bothPaths(await craft({ by: privateKey }).armored, [key]);
    expect(late.openpgp).toMatchObject({ ok: false, reason: 'key-expired' });
    expect(late.ed25519).toEqual(late.openpgp);
    // Same key, same judging time: a signature made while it was valid still verifies (judged at its date).
    const early = await bothPaths(
      await craft({ by: privateKey, created: new Date(KEYS_CREATED.getTime() + DAY) }).armored,
      [key],
    );
    expect(early.openpgp).toMatchObject({ ok: true });
    expect(early.ed25519).toEqual(early.openpgp);
  });

  it('refuses a signature by a revoked key and by a revoked signing subkey (key-revoked)', async () => {
    const privateKey = await withSigningSubkey('revoked');
    const subkey = privateKey.subkeys[1] as openpgp.Subkey;
    const revokedSubkey = await subkey.revoke(
      privateKey.keyPacket as openpgp.SecretKeyPacket,
      {},
      new Date(KEYS_CREATED.getTime() + DAY),
    );
    const withRevokedSubkey = await readPrivate(privateKey.armor());
    withRevokedSubkey.subkeys[1] = revokedSubkey;
    const bySubkey = await bothPaths(await craft({ by: subkey }).armored, [
      await publicOf(withRevokedSubkey),
    ]);
    expect(bySubkey.openpgp).toMatchObject({ ok: false, reason: 'key-revoked' });
    expect(bySubkey.ed25519).toEqual(bySubkey.openpgp);

    const { privateKey: revoked } = await openpgp.revokeKey({
      key: privateKey,
      date: new Date(KEYS_CREATED.getTime() + DAY),
      format: 'object',
    });
    const byPrimary = await bothPaths(await craft({ by: privateKey }).armored, [await publicOf(revoked)]);
    expect(byPrimary.openpgp).toMatchObject({ ok: false, reason: 'key-revoked' });
    expect(byPrimary.ed25519).toEqual(byPrimary.openpgp);
  });

  describe('by an Ed25519 subkey not flagged for signing (GnuPG: an authentication subkey)', () => {
    let home: string;
    let key: openpgp.PrivateKey;
    beforeAll(() => {
      home = mkdtempSync(path.join(tmpdir(), 'plugindex-gnupg-'));
      const gpg = (...args: string[]) =>
        execFileSync(
          'gpg',
          ['--homedir', home, '--batch', '--pinentry-mode', 'loopback', '--passphrase', '', ...args],
          {
            stdio: ['ignore', 'pipe', 'pipe'],
          },
        );
      gpg('--quick-gen-key', 'auth only <auth@example.com>', 'ed25519', 'cert', 'never');
      const fingerprint = /^fpr:+([0-9A-F]{40}):/m.exec(
        gpg('--with-colons', '--list-keys').toString(),
      )?.[1] as string;
      gpg('--quick-add-key', fingerprint, 'ed25519', 'auth', 'never');
      return readPrivate(gpg('--armor', '--export-secret-keys', fingerprint).toString()).then((read) => {
        key = read;
      });
    });
    afterAll(() => rmSync(home, { recursive: true, force: true }));

    it.each([
      ['the subkey', () => key.subkeys[0] as openpgp.Subkey],
      ['the certification-only primary key', () => key],
    ])('refuses a signature by %s (not-for-signing)', async (_, by) => {
      // Signed after GnuPG made the key (now), judged a day later.
      const created = new Date();
      const { ed25519, openpgp: slow } = await bothPaths(
        await craft({ by: by(), created }).armored,
        [await publicOf(key)],
        {
          at: new Date(created.getTime() + DAY),
        },
      );
      expect(slow).toMatchObject({ ok: false, reason: 'not-for-signing' });
      expect(ed25519).toEqual(slow);
    });
  });
});

describe('when the key is an Ed25519 point of small order (anyone can sign as it)', () => {
  it('refuses a signature made without any secret (R the base point, S one), on both paths alike', async () => {
    // OpenSSL (Node's crypto, and the WebCrypto openpgp.js verifies with) takes it: both paths accepted it.
    const weak = smallOrderKey(SMALL_ORDER_POINTS.identity, KEYS_CREATED);
    const key = await openpgp.readKey({ armoredKey: weak.publicKey });
    const signature = weak.forge(DATA, SIGNED);
    const { ed25519, openpgp: slow } = await bothPaths(signature, [key]);
    expect(slow).toMatchObject({
      ok: false,
      reason: 'bad-signature',
      message: expect.stringContaining(`${weak.fingerprint} is an Ed25519 point of small order`),
    });
    expect(ed25519).toEqual(slow);
    await expect(verifyDetachedSignature(DATA, signature, [key], JUDGED)).resolves.toEqual(slow);
  });

  it.each(Object.entries(SMALL_ORDER_POINTS))(
    'refuses a v6 key (RFC 9580 Ed25519, its point A) whose point is %s, and its forged signature',
    async (name, point) => {
      // Prepare: a v6 key openpgp.js reads as such.
      const weak = smallOrderKeyV6(point, KEYS_CREATED);
      const key = await openpgp.readKey({ armoredKey: weak.publicKey });
      expect([key.keyPacket.version, key.keyPacket.algorithm]).toEqual([6, openpgp.enums.publicKey.ed25519]);
      const signature = weak.forge(DATA, SIGNED);
      if (name === 'identity') {
        // openpgp.js alone takes its forged certifications, and the forged signature (R the base point, S
        // one) over any data. (By a point of order 2, 4 or 8, over one document in that many.)
        await expect(key.verifyPrimaryKey(JUDGED)).resolves.toBeUndefined();
        const taken = await openpgp.verify({
          message: await openpgp.createMessage({ binary: encode('any other data') }),
          signature: await openpgp.readSignature({
            armoredSignature: weak.forge(encode('any other data'), SIGNED),
          }),
          verificationKeys: [key],
          date: JUDGED,
        });
        await expect(taken.signatures[0]?.verified).resolves.toBe(true);
      }

      // Act
      const result = await verifyDetachedSignature(DATA, signature, [key], JUDGED);

      // Assess
      expect(result).toMatchObject({
        ok: false,
        reason: 'bad-signature',
        message: expect.stringContaining(`${weak.fingerprint} is an Ed25519 point of small order`),
      });
    },
  );

  it('takes a v6 key openpgp.js makes, and its signature: the check is of the point, not of the version', async () => {
    const { privateKey } = await openpgp.generateKey({
      type: 'curve25519',
      userIDs: [{ name: 'v6' }],
      date: KEYS_CREATED,
      config: { v6Keys: true },
      format: 'object',
    });
    expect([privateKey.keyPacket.version, privateKey.keyPacket.algorithm]).toEqual([
      6,
      openpgp.enums.publicKey.ed25519,
    ]);
    const signature = await openpgp.sign({
      message: await openpgp.createMessage({ binary: DATA }),
      signingKeys: privateKey,
      detached: true,
      date: SIGNED,
    });
    const result = await verifyDetachedSignature(DATA, signature as string, [privateKey.toPublic()], JUDGED);
    expect(result).toMatchObject({ ok: true, fingerprint: privateKey.getFingerprint().toUpperCase() });
  });
});

describe('when a signature is not one the Ed25519 path takes', () => {
  it('hands a SHA-1 signature to openpgp.js, which refuses it', async () => {
    const signature = await craft({ by: publisher, hash: openpgp.enums.hash.sha1 }).armored;
    await expect(
      verifyDetachedSignatureBy('ed25519', DATA, signature, [publisherPublic], JUDGED),
    ).resolves.toBeUndefined();
    const result = await verifyDetachedSignature(DATA, signature, [publisherPublic], JUDGED);
    expect(result).toMatchObject({ ok: false, reason: 'bad-signature' });
    expect(result).toEqual(
      await verifyDetachedSignatureBy('openpgp', DATA, signature, [publisherPublic], JUDGED),
    );
  });

  it('hands a NIST P-256 signature to openpgp.js, which verifies it', async () => {
    const { privateKey } = await openpgp.generateKey({
      type: 'ecc',
      curve: 'nistP256',
      userIDs: [{ name: 'nist' }],
      date: KEYS_CREATED,
      format: 'object',
    });
    const signature = await openpgp.sign({
      message: await openpgp.createMessage({ binary: DATA }),
      signingKeys: privateKey,
      detached: true,
      date: SIGNED,
    });
    const key = await publicOf(privateKey);
    await expect(
      verifyDetachedSignatureBy('ed25519', DATA, signature, [key], JUDGED),
    ).resolves.toBeUndefined();
    await expect(verifyDetachedSignature(DATA, signature, [key], JUDGED)).resolves.toMatchObject({
      ok: true,
    });
  });

  it('hands an RFC 9580 v6 Ed25519 signature to openpgp.js, which verifies it and names the key by its 64 hex digits', async () => {
    // A v6 key (openpgp.js `v6Keys`, algorithm 27, as Sequoia makes them) signs v6 signatures (salted, hashed
    // with a v6 trailer): the Ed25519 path takes v4 EdDSA-legacy ones only.
    const { privateKey } = await openpgp.generateKey({
      type: 'curve25519',
      userIDs: [{ name: 'v6' }],
      date: KEYS_CREATED,
      format: 'object',
      config: { v6Keys: true },
    });
    const signature = await openpgp.sign({
      message: await openpgp.createMessage({ binary: DATA }),
      signingKeys: privateKey,
      detached: true,
      date: SIGNED,
    });
    expect((await openpgp.readSignature({ armoredSignature: signature })).packets[0]?.version).toBe(6);
    const key = await publicOf(privateKey);
    const fingerprint = key.getFingerprint().toUpperCase();
    await expect(
      verifyDetachedSignatureBy('ed25519', DATA, signature, [key], JUDGED),
    ).resolves.toBeUndefined();

    await expect(verifyDetachedSignature(DATA, signature, [key], JUDGED)).resolves.toMatchObject({
      ok: true,
      fingerprint,
      signingKeyId: keyIdOfFingerprint(fingerprint),
    });
    const tampered = encode('{"name":"acme-costs","version":"1.0.1"}\n');
    await expect(verifyDetachedSignature(tampered, signature, [key], JUDGED)).resolves.toMatchObject({
      ok: false,
      reason: 'bad-signature',
      keyIds: [keyIdOfFingerprint(fingerprint)],
    });
  });
});

describe('when a key is judged again and again', () => {
  it('judges it at each instant asked, whatever it answered for another', async () => {
    const privateKey = await expiringKey();
    const key = await publicOf(privateKey);
    const id = key.getKeyID().toHex().toUpperCase();
    const before = new Date(KEYS_CREATED.getTime() + DAY);
    const after = new Date(KEYS_CREATED.getTime() + 6 * DAY);
    for (let round = 0; round < 2; round++) {
      await expect(keyUsableAt(key, id, before)).resolves.toEqual({ usable: true });
      await expect(keyUsableAt(key, id, after)).resolves.toMatchObject({
        usable: false,
        reason: 'key-expired',
      });
    }
    // And a signature made before the expiry verifies, one made after does not, with the same key object.
    for (const [created, ok] of [
      [before, true],
      [after, false],
      [before, true],
    ] as const) {
      const result = await verifyDetachedSignature(
        DATA,
        await craft({ by: privateKey, created }).armored,
        [key],
        after,
      );
      expect(result.ok).toBe(ok);
    }
  });

  it('judges each key object by its own signatures, not by another key with the same key ID', async () => {
    const { privateKey } = await openpgp.generateKey({
      type: 'ecc',
      userIDs: [{ name: 'revoked later' }],
      date: KEYS_CREATED,
      format: 'object',
    });
    const { privateKey: revoked } = await openpgp.revokeKey({
      key: privateKey,
      date: SIGNED,
      format: 'object',
    });
    const fresh = await publicOf(privateKey);
    const revokedPublic = await publicOf(revoked);
    const id = fresh.getKeyID().toHex().toUpperCase();
    await expect(keyUsableAt(fresh, id, JUDGED)).resolves.toEqual({ usable: true });
    await expect(keyUsableAt(revokedPublic, id, JUDGED)).resolves.toMatchObject({
      usable: false,
      reason: 'key-revoked',
    });
  });
});
