import * as openpgp from 'openpgp';
import { describe, expect, it } from 'vitest';
import { mayBeBinaryPackets } from '../../index-builder/armor.ts';
import { fixedClock } from '../../index-builder/clock.ts';
import { KeyError } from '../../index-builder/errors.ts';
import {
  createSigner,
  findBinarySecretKey,
  generateKeyPair,
  type KeyPair,
  readPublicKey,
  verifyDetachedSignature,
} from '../../index-builder/signing.ts';
import { costlyKey } from '../support/costly-key.ts';
import { encode, KEYS_CREATED, sha256, testKey } from '../support/fixtures.ts';
import { gpgKeyring, gpgKeyWithSigningSubkey, gpgPublicKeys, gpgSecretSubkeys } from '../support/gpg.ts';
import { publicPrimaryWithSecretSubkeys } from '../support/openpgp-packets.ts';
import { SMALL_ORDER_POINTS, smallOrderKey } from '../support/small-order-key.ts';

describe('when signing with the registry key', () => {
  // A multi-megabyte document of varied bytes, as the global documents are.
  const large = new Uint8Array(3 * (1 << 20) + 7).map((_, i) => (i * 31 + (i >> 20)) & 0xff);

  /**
   * Keys an operator might bring: NIST P-256 (signed by openpgp.js rather than the one-pass signer), or
   * Ed25519 with a separate signing subkey, as GnuPG makes them (the one-pass signer, as the subkey).
   */
  async function operatorKey(kind: 'nist' | 'subkey'): Promise<KeyPair> {
    const generated = await openpgp.generateKey({
      type: 'ecc',
      ...(kind === 'nist' ? { curve: 'nistP256' as const } : { subkeys: [{}, { sign: true }] }),
      userIDs: [{ name: `${kind} registry` }],
      format: 'armored',
    });
    const key = await openpgp.readKey({ armoredKey: generated.publicKey });
    return {
      secretKey: generated.privateKey,
      publicKey: generated.publicKey,
      fingerprint: key.getFingerprint().toUpperCase(),
    };
  }

  const keyFor = async (kind: string): Promise<KeyPair> =>
    kind === 'an Ed25519 key' ? testKey('gpg') : operatorKey(kind === 'a NIST P-256 key' ? 'nist' : 'subkey');

  it.each([
    ['a small document', 'an Ed25519 key', encode('{"hello":"world"}\n')],
    ['a multi-megabyte document', 'an Ed25519 key', large],
    ['a small document', 'a NIST P-256 key', encode('{"hello":"world"}\n')],
    ['a multi-megabyte document', 'a NIST P-256 key', large],
    ['a small document', 'an Ed25519 signing subkey', encode('{"hello":"world"}\n')],
  ])(
    'makes a detached signature over %s with %s that openpgp.js and GnuPG both verify',
    async (_, kind, data) => {
      const pair = await keyFor(kind);
      const signer = await createSigner(pair.secretKey);
      const { signature, sha256: digest } = await signer.signWithDigest(data);

      expect(digest).toBe(sha256(data));
      // SHA-256 either way: hashed once with the digest (Ed25519), or asked of openpgp.js (NIST).
      const packet = (await openpgp.readSignature({ armoredSignature: signature })).packets[0];
      expect(packet?.hashAlgorithm).toBe(openpgp.enums.hash.sha256);
      const key = await readPublicKey(pair.publicKey);
      await expect(verifyDetachedSignature(data, signature, [key.key])).resolves.toMatchObject({
        ok: true,
        fingerprint: pair.fingerprint,
      });
      const gpg = gpgKeyring(pair.publicKey);
      // VALIDSIG <signing key> ... <primary key>: the signing key may be a subkey.
      expect(gpg.verify(data, signature)).toMatch(
        new RegExp(`VALIDSIG [0-9A-F]{40} .* ${pair.fingerprint}\\n`),
      );
      gpg.close();
      expect(await signer.sign(data)).toMatch(/^-----BEGIN PGP SIGNATURE-----/);
    },
  );

  it.each(['an Ed25519 key', 'a NIST P-256 key'])(
    'signs a document given in pieces with %s as it signs the whole, for openpgp.js and GnuPG',
    async (kind) => {
      const pair = await keyFor(kind);
      const signer = await createSigner(pair.secretKey);
      const signing = signer.beginSigning();
      // Uneven pieces, as a streamed document's chunks end wherever a buffer filled.
      for (let at = 0, step = 1; at < large.byteLength; at += step, step = step * 3 + 1)
        signing.update(large.subarray(at, Math.min(large.byteLength, at + step)));
      const { signature, sha256: digest } = await signing.finish();

      expect(digest).toBe(sha256(large));
      expect(digest).toBe((await signer.signWithDigest(large)).sha256);
      const key = await readPublicKey(pair.publicKey);
      await expect(verifyDetachedSignature(large, signature, [key.key])).resolves.toMatchObject({ ok: true });
      const gpg = gpgKeyring(pair.publicKey);
      expect(gpg.verify(large, signature)).toMatch(new RegExp(`VALIDSIG .* ${pair.fingerprint}\\n`));
      // Not over other bytes: the last byte changed, GnuPG refuses it.
      const altered = large.slice();
      const last = altered.byteLength - 1;
      altered[last] = (altered[last] as number) ^ 1;
      expect(gpg.status(altered, signature)).toMatch(/BADSIG/);
      gpg.close();
    },
  );

  it('armors an Ed25519 signature as openpgp.js armors the packet it reads from it, checksum and all', async () => {
    const pair = await testKey('gpg');
    // Dates and data vary the packet's bytes (and its length, when r or s starts with a zero byte).
    for (let i = 0; i < 64; i++) {
      const at = new Date(Date.UTC(2026, 0, 1) + i * 86_399_999);
      const signer = await createSigner(pair.secretKey, undefined, fixedClock(at));
      const signature = await signer.sign(encode(`document ${i}`));
      const read = await openpgp.readSignature({ armoredSignature: signature });
      expect(signature).toBe(read.armor());
      expect(signature).toMatch(/\n=[A-Za-z0-9+/]{4}\n-----END PGP SIGNATURE-----\n$/);
    }
  });

  it.each(['an Ed25519 key', 'a NIST P-256 key'])(
    'dates a signature by %s by the clock it is given',
    async (kind) => {
      const pair = await keyFor(kind);
      // After the key was made (now, for the NIST key): openpgp.js signs only with a key valid at the date.
      const at = new Date(Math.ceil(Date.now() / 1000) * 1000 + 86_400_000);
      const signer = await createSigner(pair.secretKey, undefined, fixedClock(at));
      const signature = await signer.sign(encode('dated'));
      const packet = (await openpgp.readSignature({ armoredSignature: signature })).packets[0];
      expect(packet?.created).toEqual(at);
    },
  );

  it('binds every byte of a large document: one changed at its end breaks the signature', async () => {
    const pair = await testKey('gpg');
    const signer = await createSigner(pair.secretKey);
    const signature = await signer.sign(large);
    const tampered = large.slice();
    tampered[tampered.length - 1] = (large[large.length - 1] as number) ^ 1;
    const key = await readPublicKey(pair.publicKey);
    const result = await verifyDetachedSignature(tampered, signature, [key.key]);
    expect(result).toMatchObject({ ok: false, reason: 'bad-signature' });
  });

  it('makes v4 keys, which GnuPG 2.2 accepts', async () => {
    const pair = await testKey('v4');
    const key = await readPublicKey(pair.publicKey);
    expect(key.key.keyPacket.version).toBe(4);
    expect(key.fingerprint).toMatch(/^[0-9A-F]{40}$/);
  });
});

describe('when verifying', () => {
  it('reports tampered data as a bad signature', async () => {
    const pair = await testKey('tamper');
    const signature = await (await createSigner(pair.secretKey)).sign(encode('original'));
    const key = await readPublicKey(pair.publicKey);
    await expect(verifyDetachedSignature(encode('tampered'), signature, [key.key])).resolves.toMatchObject({
      ok: false,
      reason: 'bad-signature',
    });
  });

  it('reports a signature by a key not among the candidates as unknown, naming its key id', async () => {
    const signerPair = await testKey('someone');
    const other = await readPublicKey((await testKey('other')).publicKey);
    const signature = await (await createSigner(signerPair.secretKey)).sign(encode('x'));
    await expect(verifyDetachedSignature(encode('x'), signature, [other.key])).resolves.toMatchObject({
      ok: false,
      reason: 'unknown-key',
      keyIds: [signerPair.fingerprint.slice(-16)],
    });
  });

  it('reports garbage as malformed', async () => {
    await expect(verifyDetachedSignature(encode('x'), 'not a signature', [])).resolves.toMatchObject({
      ok: false,
      reason: 'malformed',
    });
  });

  it.each([
    ['an RSA key with a public exponent as long as its modulus', 'rsa', 'sha224'],
    ['a DSA key', 'dsa', 'sha256'],
  ] as const)(
    'refuses, unchecked, a signature by %s (its arithmetic is unbounded)',
    async (_, algorithm, hash) => {
      // A candidate key no submission check has seen (a configured one, say): openpgp.js spent seconds on
      // these 8,192-bit numbers, minutes on the 65,535-bit ones an MPI holds.
      const costly = costlyKey({ algorithm, bits: 8192, hash, created: new Date('2026-01-01T00:00:00Z') });
      const key = await readPublicKey(costly.publicKey);
      const signature = costly.sign(encode('x'), new Date('2026-01-02T00:00:00Z'));
      await expect(verifyDetachedSignature(encode('x'), signature, [key.key])).resolves.toMatchObject({
        ok: false,
        reason: 'bad-signature',
        message: expect.stringContaining(`the key ${costly.fingerprint} costs unbounded work`),
      });
    },
  );

  it('takes an RSA key of 2,048 bits with exponent 65537, as GnuPG makes them', async () => {
    const { privateKey, publicKey } = await openpgp.generateKey({
      type: 'rsa',
      rsaBits: 2048,
      userIDs: [{ name: 'rsa' }],
      format: 'armored',
    });
    const signature = await (await createSigner(privateKey)).sign(encode('x'));
    await expect(
      verifyDetachedSignature(encode('x'), signature, [(await readPublicKey(publicKey)).key]),
    ).resolves.toMatchObject({ ok: true });
  });
});

describe('when loading keys', () => {
  it('rejects a non-key with KEY_INVALID', async () => {
    await expect(readPublicKey('hello')).rejects.toBeInstanceOf(KeyError);
    await expect(createSigner('hello')).rejects.toMatchObject({ code: 'KEY_INVALID' });
  });

  it.each(Object.entries(SMALL_ORDER_POINTS))(
    'refuses a secret key whose Ed25519 point is %s (small order) with KEY_UNTRUSTED, naming it',
    async (_, point) => {
      // Its signatures verify over any data: a registry signing with it publishes what anyone can forge.
      const weak = smallOrderKey(point, KEYS_CREATED);

      const made = createSigner(weak.secretKey);

      await expect(made).rejects.toThrow(KeyError);
      await expect(made).rejects.toMatchObject({
        code: 'KEY_UNTRUSTED',
        message: expect.stringMatching(
          new RegExp(
            `^the signing key ${weak.fingerprint} cannot be trusted.*is an Ed25519 point of small order`,
          ),
        ),
      });
    },
  );

  it('refuses a key past its expiry with KEY_EXPIRED, when loaded and at each signature after it', async () => {
    // Both paths: Ed25519 (the one-pass signer, which signed on past the expiry) and P-256 (openpgp.js,
    // which threw a plain "Error signing message: Primary key is expired").
    for (const curve of ['curve25519Legacy', 'nistP256'] as const) {
      const created = new Date(Date.now() - 60_000);
      const { privateKey } = await openpgp.generateKey({
        type: 'ecc',
        curve,
        userIDs: [{ name: `expiring ${curve}` }],
        date: created,
        keyExpirationTime: 3600,
        format: 'armored',
      });
      let now = new Date(created.getTime() + 60_000);
      const clock = { now: () => now };
      const signer = await createSigner(privateKey, undefined, clock);
      await signer.sign(encode('in time'));
      const streamed = signer.beginSigning();
      streamed.update(encode('begun in time'));
      now = new Date(created.getTime() + 3600_000);
      await expect(signer.sign(encode('too late'))).rejects.toMatchObject({
        name: 'KeyError',
        code: 'KEY_EXPIRED',
      });
      await expect(streamed.finish()).rejects.toMatchObject({ code: 'KEY_EXPIRED' });
      await expect(createSigner(privateKey, undefined, clock)).rejects.toMatchObject({
        code: 'KEY_EXPIRED',
        message: expect.stringMatching(/expired at .*quick-set-expire/),
      });
    }
  });

  it('refuses a key whose signing subkey has expired with KEY_EXPIRED, when loaded and at each signature after it', async () => {
    // As GnuPG makes it: the primary key only certifies, so nothing else may sign once the subkey expires.
    // openpgp.js threw a plain "Error signing message: Could not find valid signing key packet" at the
    // first signature, and the key loaded without a word.
    const created = new Date('2026-01-01T00:00:00Z');
    const key = gpgKeyWithSigningSubkey({ created, seconds: 3600 });
    const { key: publicKey } = await readPublicKey(key.secretKey);
    let now = new Date(created.getTime() + 60_000);
    const clock = { now: () => now };
    const signer = await createSigner(key.secretKey, undefined, clock);
    const signature = await signer.sign(encode('in time'));
    await expect(
      verifyDetachedSignature(encode('in time'), signature, [publicKey], now),
    ).resolves.toMatchObject({
      ok: true,
      signingKeyId: key.subkeyFingerprint.slice(-16),
    });
    const streamed = signer.beginSigning();
    streamed.update(encode('begun in time'));
    now = new Date(created.getTime() + 3600_000);
    const expired = {
      name: 'KeyError',
      code: 'KEY_EXPIRED',
      message: expect.stringContaining(
        `its signing subkey ${key.subkeyFingerprint} expired at 2026-01-01T01:00:00.000Z: extend the subkey (gpg --quick-set-expire ${key.fingerprint} 1y ${key.subkeyFingerprint}) or add a signing subkey`,
      ),
    };
    await expect(signer.sign(encode('too late'))).rejects.toMatchObject(expired);
    await expect(streamed.finish()).rejects.toMatchObject(expired);
    await expect(createSigner(key.secretKey, undefined, clock)).rejects.toMatchObject(expired);
    await expect(createSigner(key.secretKey, undefined, clock)).rejects.toBeInstanceOf(KeyError);
  });

  it('signs with the key openpgp.js and GnuPG take once a signing subkey expires: the primary, where it may sign', async () => {
    // Both paths: Ed25519 (the one-pass signer, which kept the subkey it found at load and signed on with
    // it past its expiry: signatures no verifier takes) and P-256 (openpgp.js, which picks at each signature).
    for (const curve of ['curve25519Legacy', 'nistP256'] as const) {
      // Made half an hour ago, the subkey expiring in half an hour: valid when the signer is loaded.
      const created = new Date(Date.now() - 1_800_000);
      const { privateKey } = await openpgp.generateKey({
        type: 'ecc',
        curve,
        userIDs: [{ name: `subkey ${curve}` }],
        date: created,
        subkeys: [{ sign: true, keyExpirationTime: 3600 }, {}],
        format: 'armored',
      });
      const { key: publicKey } = await readPublicKey(privateKey);
      const subkeyId = publicKey.getSubkeys()[0]?.getKeyID().toHex().toUpperCase();
      const primaryId = publicKey.getKeyID().toHex().toUpperCase();
      let now = new Date();
      const signer = await createSigner(privateKey, undefined, { now: () => now });
      const early = await signer.sign(encode('in time'));
      await expect(
        verifyDetachedSignature(encode('in time'), early, [publicKey], now),
      ).resolves.toMatchObject({
        ok: true,
        signingKeyId: subkeyId,
      });
      const streamed = signer.beginSigning();
      streamed.update(encode('begun in time'));
      now = new Date(created.getTime() + 2 * 3600_000);
      for (const [data, signature] of [
        [encode('after'), await signer.sign(encode('after'))],
        [encode('begun in time'), (await streamed.finish()).signature],
      ] as const)
        await expect(
          verifyDetachedSignature(data, signature, [publicKey], now),
          curve,
        ).resolves.toMatchObject({
          ok: true,
          signingKeyId: primaryId,
        });
    }
  });

  it('needs the right passphrase for an encrypted key', async () => {
    const pair = await generateKeyPair({ name: 'locked', passphrase: 'correct horse' });
    await expect(createSigner(pair.secretKey)).rejects.toMatchObject({ code: 'KEY_PASSPHRASE' });
    await expect(createSigner(pair.secretKey, 'wrong')).rejects.toMatchObject({ code: 'KEY_PASSPHRASE' });
    const signer = await createSigner(pair.secretKey, 'correct horse');
    expect(signer.fingerprint).toBe(pair.fingerprint);
    const signature = await signer.sign(encode('unlocked'));
    const key = await readPublicKey(pair.publicKey);
    await expect(verifyDetachedSignature(encode('unlocked'), signature, [key.key])).resolves.toMatchObject({
      ok: true,
    });
  });
});

describe('when a file read for a public key holds binary key packets', () => {
  const binary = async (armored: string) => (await openpgp.unarmor(armored)).data as Uint8Array;

  it('finds a secret key among them by its packet tags, alone or after a public key, and nothing else', async () => {
    const pair = await testKey('public-only');
    const [secret, publicKey] = await Promise.all([binary(pair.secretKey), binary(pair.publicKey)]);
    const found = { fingerprint: pair.fingerprint };
    await expect(findBinarySecretKey(secret)).resolves.toEqual(found);
    await expect(findBinarySecretKey(new Uint8Array([...publicKey, ...secret]))).resolves.toEqual(found);
    // A public key, its armored text (readPublicKey's to read), and bytes that are no key tell of none.
    await expect(findBinarySecretKey(publicKey)).resolves.toBeUndefined();
    await expect(findBinarySecretKey(encode(pair.secretKey))).resolves.toBeUndefined();
    await expect(findBinarySecretKey(encode('registry.asc'))).resolves.toBeUndefined();
    await expect(findBinarySecretKey(new Uint8Array())).resolves.toBeUndefined();
  });

  it('is asked only of bytes that may be packets (mayBeBinaryPackets), never of armored text, BOM or not', async () => {
    // Its callers load openpgp.js only where the bytes may be packets: a set's armored key file needs none.
    const pair = await testKey('public-only');
    const [secret, publicKey] = await Promise.all([binary(pair.secretKey), binary(pair.publicKey)]);
    const marked = new Uint8Array([0xca, 0x03, 0x50, 0x47, 0x50, ...secret]); // a marker packet first
    for (const bytes of [secret, publicKey, marked]) expect(mayBeBinaryPackets(bytes)).toBe(true);
    await expect(findBinarySecretKey(marked)).resolves.toEqual({ fingerprint: pair.fingerprint });
    for (const text of [pair.publicKey, `\ufeff${pair.secretKey}`, `\n${pair.publicKey}`, ''])
      expect(mayBeBinaryPackets(encode(text)), JSON.stringify(text.slice(0, 8))).toBe(false);
    expect(mayBeBinaryPackets(new Uint8Array([0xff, 0xfe, 0x2d, 0x00]))).toBe(false);
  });
});

describe('when key text read as a public key may hold a secret key', () => {
  const binary = async (armored: string) => (await openpgp.unarmor(armored)).data as Uint8Array;
  const asPublicBlock = async (...armored: string[]) =>
    openpgp.armor(
      openpgp.enums.armor.publicKey,
      new Uint8Array((await Promise.all(armored.map(binary))).flatMap((bytes) => [...bytes])),
    );
  const signature = `-----BEGIN PGP SIGNATURE-----\n\n${Buffer.from('not read').toString('base64')}\n-----END PGP SIGNATURE-----\n`;

  /** A public key with a user attribute of `size` bytes (an image), after its user ID. */
  async function withUserAttribute(armored: string, size: number): Promise<string> {
    const packets = (await openpgp.readKey({ armoredKey: armored })).toPacketList();
    const attribute = new openpgp.UserAttributePacket();
    // Its subpackets, as openpgp.js reads them (its typings leave them out).
    (attribute as unknown as { attributes: string[] }).attributes.push(
      `\x01${'\x10\x00\x01'.padEnd(16, '\x00')}${'\xff'.repeat(size)}`,
    );
    const at = packets.findIndex((p) => p instanceof openpgp.PublicSubkeyPacket);
    packets.splice(at, 0, attribute);
    return openpgp.armor(openpgp.enums.armor.publicKey, packets.write() as Uint8Array);
  }

  it('reads none of these public keys as secret: v6, many subkeys, user attributes, GnuPG-made, keyrings, trailing text', async () => {
    const v4 = await testKey('public-only');
    const v6 = await openpgp.generateKey({
      type: 'curve25519',
      userIDs: [{ name: 'v6' }],
      config: { v6Keys: true },
      format: 'armored',
    });
    const subkeys = await openpgp.generateKey({
      userIDs: [{ name: 'many subkeys' }],
      subkeys: Array.from({ length: 12 }, (_, i) => ({ sign: i % 2 === 0 })),
      format: 'armored',
    });
    const [gnupg] = gpgPublicKeys(['ed25519']);
    const texts = {
      v6: v6.publicKey,
      'many subkeys': subkeys.publicKey,
      // A 2-octet and a 5-octet packet length (over 8383 bytes).
      'a small user attribute': await withUserAttribute(v4.publicKey, 300),
      'a large user attribute': await withUserAttribute(v4.publicKey, 20_000),
      'GnuPG-made (legacy packet headers)': gnupg?.key as string,
      'a keyring of three in one block': await asPublicBlock(
        v4.publicKey,
        v6.publicKey,
        gnupg?.key as string,
      ),
      'two blocks': `${v4.publicKey}\n${subkeys.publicKey}`,
      'trailing text and a detached signature': `${v4.publicKey}\nsee https://example.com\n${signature}`,
    };
    for (const [what, text] of Object.entries(texts))
      expect((await readPublicKey(text)).secret, what).toBeUndefined();
  });

  it('reads as secret a secret key after the public key read, in its block (either packet format) or in another', async () => {
    const v4 = await testKey('public-then-secret');
    const gnupg = gpgKeyWithSigningSubkey({ created: KEYS_CREATED, seconds: 86_400 });
    const texts = {
      'in one block': await asPublicBlock(v4.publicKey, v4.secretKey),
      'in one block, GnuPG-made (legacy packet headers)': await asPublicBlock(v4.publicKey, gnupg.secretKey),
      'its own block after': `${v4.publicKey}\n${v4.secretKey}`,
      // Relabelled: secret packets under a PUBLIC KEY BLOCK header of their own, after the key read.
      'a public key block of its own after': `${v4.publicKey}\n${await asPublicBlock(v4.secretKey)}`,
    };
    for (const [what, text] of Object.entries(texts)) {
      const read = await readPublicKey(text);
      expect(read.fingerprint, what).toBe(v4.fingerprint);
      expect(read.secret, what).toBe(true);
    }
  });
});

describe('when a public key holds a secret subkey', () => {
  it('reads it as secret (readPublicKey, findBinarySecretKey), named by its primary key, built by GnuPG or openpgp.js', async () => {
    const gpg = gpgSecretSubkeys();
    const key = await testKey('publisher');
    const spliced = await publicPrimaryWithSecretSubkeys(key.secretKey);
    for (const [fingerprint, form] of [
      [gpg.fingerprint, gpg.exported],
      [gpg.fingerprint, gpg.spliced],
      [key.fingerprint, spliced],
    ] as const) {
      const read = await readPublicKey(form.armored);
      expect([read.fingerprint, read.secret]).toEqual([fingerprint, true]);
      // The public part alone: no secret packet is kept in what is read.
      expect(read.armored).not.toContain('PRIVATE');
      expect(await findBinarySecretKey(form.binary)).toEqual({ fingerprint });
    }
    expect((await readPublicKey(gpg.publicKey.armored)).secret).toBeUndefined();
    expect(await findBinarySecretKey(gpg.publicKey.binary)).toBeUndefined();
  }, 60_000);
});
