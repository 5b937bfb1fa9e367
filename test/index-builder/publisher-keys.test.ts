/**
 * Publisher keys are judged at the time of publishing, not at the time a signature claims: an expired or
 * revoked key (or signing subkey) is refused however its signature is dated, a subkey not flagged for
 * signing signs nothing, and a signature dated after the publish is refused. GnuPG reaches the same verdict
 * on the same key and signature. Keys, signatures and their work are bounded: a huge or complex key is
 * refused before any signature is checked.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as openpgp from 'openpgp';
import { describe, expect, it } from 'vitest';
import type { ProblemCode } from '../../index-builder/errors.ts';
import { processSubmissions } from '../../index-builder/pipeline/index.ts';
import { readPublicKey } from '../../index-builder/signing.ts';
import { signedAction, upload } from '../support/actions.ts';
import { costlyKey } from '../support/costly-key.ts';
import {
  encode,
  makeBundle,
  makeRegistry,
  PUBLISHER_SIGNS,
  type RawEntry,
  rawTar,
  signAsPublisher,
  testKey,
  validManifest,
} from '../support/fixtures.ts';
import { gpgKeyring } from '../support/gpg.ts';
import type { MemoryStore } from '../support/memory-store.ts';
import { SMALL_ORDER_POINTS, smallOrderKey, smallOrderKeyV6 } from '../support/small-order-key.ts';

const DAY = 24 * 3600 * 1000;
/** The test registries publish at 2026-11-01 (fixtures.ts). */
const CREATED = new Date('2026-01-01T00:00:00Z');
const WHILE_VALID = new Date('2026-01-05T00:00:00Z');

interface Publisher {
  readonly secretKey: string;
  readonly publicKey: string;
}

type GenerateOptions = Partial<Parameters<typeof openpgp.generateKey>[0]>;

/** The low-level calls openpgp.js keeps out of its public types: to sign with a key not meant for it. */
interface RawSigning {
  setBytes(bytes: Uint8Array, format: number): void;
}
interface RawSignature {
  sign(key: unknown, data: unknown, date: Date, detached: boolean, config: unknown): Promise<void>;
}

async function generate(options: GenerateOptions = {}): Promise<openpgp.PrivateKey> {
  const { privateKey } = await openpgp.generateKey({
    type: 'ecc',
    userIDs: [{ name: 'publisher', email: 'p@example.com' }],
    date: CREATED,
    format: 'object',
    ...options,
  });
  return privateKey as unknown as openpgp.PrivateKey;
}

const asPublisher = (key: openpgp.PrivateKey): Publisher => ({
  secretKey: key.armor(),
  publicKey: key.toPublic().armor(),
});

const manifestBytes = (manifest = validManifest({ name: 'keyed-plugin' })): Uint8Array =>
  encode(`${JSON.stringify(manifest, null, 2)}\n`);

/** A bundle signed at `signedAt` by `signer`, carrying `publicKey` as publisher.asc. */
async function bundleSigned(signer: Publisher, signedAt: Date, publicKey = signer.publicKey) {
  const body = manifestBytes();
  const signature = await signAsPublisher(body, signer.secretKey, signedAt);
  return {
    signature,
    body,
    bundle: await makeBundle({
      manifestText: new TextDecoder().decode(body),
      signature,
      publisherKey: publicKey,
    }),
  };
}

async function outcomeOf(bundle: Uint8Array, config = {}) {
  const registry = await makeRegistry(config);
  await registry.submit(bundle);
  const [outcome] = (await processSubmissions(registry.context)).outcomes;
  expect(registry.site.objects.has('plugins/keyed-plugin/index.json')).toBe(false);
  return outcome;
}

/** The outcome of a bundle signed with `signature` by a hand-built key (costly, or of small order), carrying it. */
async function outcomeOfHandBuilt(key: { publicKey: string }, body: Uint8Array, signature: string) {
  return outcomeOf(
    await rawTar([
      { name: 'manifest.json', body },
      { name: 'manifest.json.asc', body: signature },
      { name: 'publisher.asc', body: key.publicKey },
    ]),
  );
}

/** The one problem a bundle whose publisher.asc is refused for `message` reports. */
const refusedPublisherKey = (message: string) =>
  expect.objectContaining({
    code: 'PUBLISHER_KEY_INVALID',
    path: 'bundle:publisher.asc',
    message: expect.stringContaining(message),
  });

const codes = (outcome: { problems: readonly { code: ProblemCode }[] } | undefined) =>
  outcome?.problems.map((p) => p.code);

/** What a publisher is told when the signing subkey of `key` (its first) expired 30 days after CREATED. */
function expiredSubkeyMessage(key: openpgp.PrivateKey, signed?: Date): string {
  const fingerprint = key.getFingerprint().toUpperCase();
  const subkey = (key.subkeys[0] as openpgp.Subkey).getFingerprint().toUpperCase();
  const made = signed ? `; the signature was made at ${signed.toISOString()}` : '';
  return `the signing subkey ${subkey} of key ${fingerprint} expired at ${new Date(CREATED.getTime() + 30 * DAY).toISOString()}${made}, and signs nothing after it: extend the subkey (gpg --quick-set-expire ${fingerprint} 1y ${subkey}) or add a signing subkey (gpg --quick-add-key ${fingerprint} ed25519 sign 1y), then sign again and give the registry the updated key (it reads the expiry from the key it is given)`;
}

describe('when a publisher key is no longer valid at the time of publishing', () => {
  it('refuses an expired key, whatever time the signature claims, as GnuPG does', async () => {
    const key = await generate({ keyExpirationTime: 30 * 24 * 3600 });
    const publisher = asPublisher(key);
    const { bundle, body, signature } = await bundleSigned(publisher, WHILE_VALID);
    expect(codes(await outcomeOf(bundle))).toEqual(['PUBLISHER_KEY_EXPIRED']);
    const gpg = gpgKeyring(publisher.publicKey);
    expect(gpg.status(body, signature)).toMatch(/EXPKEYSIG/);
    gpg.close();
  });

  it('judges a key it has read before at the time of each publish: accepted while valid, refused once expired', async () => {
    const key = await generate({ keyExpirationTime: 30 * 24 * 3600 });
    const { bundle } = await bundleSigned(asPublisher(key), WHILE_VALID);
    // The same key text (read once per process) in a registry publishing while the key is valid...
    const early = await makeRegistry({}, '2026-01-10T00:00:00Z');
    await early.submit(bundle);
    expect((await processSubmissions(early.context)).outcomes.map((o) => o.status)).toEqual(['accepted']);
    // ...then in one publishing after it expired.
    expect(codes(await outcomeOf(bundle))).toEqual(['PUBLISHER_KEY_EXPIRED']);
  });

  it('refuses a revoked key, even for a signature made before the revocation, as GnuPG does', async () => {
    const key = await generate();
    const signed = await bundleSigned(asPublisher(key), WHILE_VALID);
    const { publicKey: revoked } = await openpgp.revokeKey({
      key,
      date: new Date(WHILE_VALID.getTime() + DAY),
      format: 'armored',
    });
    const { bundle } = await bundleSigned(asPublisher(key), WHILE_VALID, revoked);
    expect(codes(await outcomeOf(bundle))).toEqual(['PUBLISHER_KEY_REVOKED']);
    const gpg = gpgKeyring(revoked);
    expect(gpg.status(signed.body, signed.signature)).toMatch(/REVKEYSIG/);
    gpg.close();
  });

  it('refuses a signing subkey that has expired since, naming it, when, and what to do', async () => {
    const key = await generate({ subkeys: [{ sign: true, keyExpirationTime: 30 * 24 * 3600 }] });
    const { bundle } = await bundleSigned(asPublisher(key), WHILE_VALID);
    const outcome = await outcomeOf(bundle);
    expect(codes(outcome)).toEqual(['PUBLISHER_KEY_EXPIRED']);
    expect(outcome?.problems[0]?.message).toBe(expiredSubkeyMessage(key, WHILE_VALID));
  });

  it('refuses a signature its signing subkey made after it expired (PUBLISHER_KEY_EXPIRED), as GnuPG does', async () => {
    const key = await generate({ subkeys: [{ sign: true, keyExpirationTime: 30 * 24 * 3600 }] });
    const subkey = key.subkeys[0] as openpgp.Subkey;
    // The same key material with the subkey bound without an expiry signs as that subkey past it.
    const { privateKey: unbounded } = await openpgp.reformatKey({
      privateKey: key,
      userIDs: [{ name: 'publisher', email: 'p@example.com' }],
      date: CREATED,
      keyExpirationTime: 0,
      format: 'object',
    });
    const body = manifestBytes();
    const late = new Date(CREATED.getTime() + 40 * DAY);
    const signature = await openpgp.sign({
      message: await openpgp.createMessage({ binary: body }),
      signingKeys: unbounded,
      signingKeyIDs: [subkey.getKeyID()],
      detached: true,
      date: late,
      format: 'armored',
    });
    const publisherKey = key.toPublic().armor();
    const bundle = await makeBundle({
      manifestText: new TextDecoder().decode(body),
      signature,
      publisherKey,
    });
    const outcome = await outcomeOf(bundle);
    expect(codes(outcome)).toEqual(['PUBLISHER_KEY_EXPIRED']);
    expect(outcome?.problems[0]?.message).toBe(expiredSubkeyMessage(key));
    const gpg = gpgKeyring(publisherKey);
    expect(gpg.status(body, signature)).toMatch(/EXPKEYSIG|KEYEXPIRED/);
    gpg.close();
  });

  it('refuses a signing subkey that has been revoked', async () => {
    const key = await generate({ subkeys: [{ sign: true }] });
    const publisher = asPublisher(key);
    const subkey = key.subkeys[0] as openpgp.Subkey;
    key.subkeys[0] = await subkey.revoke(key.keyPacket as never, {}, new Date(WHILE_VALID.getTime() + DAY));
    const { bundle } = await bundleSigned(publisher, WHILE_VALID, key.toPublic().armor());
    expect(codes(await outcomeOf(bundle))).toEqual(['PUBLISHER_KEY_REVOKED']);
  });

  it('refuses a signature by a subkey not flagged for signing', async () => {
    // An RSA encryption subkey can make a signature mathematically; its flags say it may not.
    const key = await generate({ type: 'rsa', rsaBits: 2048 });
    const subkey = key.subkeys[0] as openpgp.Subkey;
    const body = manifestBytes();
    const literal = new openpgp.LiteralDataPacket();
    (literal as unknown as RawSigning).setBytes(body, openpgp.enums.literal.binary);
    const packet = new openpgp.SignaturePacket();
    packet.signatureType = openpgp.enums.signature.binary;
    packet.publicKeyAlgorithm = subkey.keyPacket.algorithm;
    packet.hashAlgorithm = openpgp.enums.hash.sha256;
    await (packet as unknown as RawSignature).sign(
      subkey.keyPacket,
      literal,
      WHILE_VALID,
      true,
      openpgp.config,
    );
    const list = new openpgp.PacketList<openpgp.AnyPacket>();
    list.push(packet);
    const signature = new openpgp.Signature(list as never).armor();
    const bundle = await makeBundle({
      manifestText: new TextDecoder().decode(body),
      signature,
      publisherKey: key.toPublic().armor(),
    });
    expect(codes(await outcomeOf(bundle))).toEqual(['PUBLISHER_KEY_NOT_FOR_SIGNING']);
  });

  it('refuses a signature dated after the time of publishing', async () => {
    const key = await generate();
    const { bundle } = await bundleSigned(asPublisher(key), new Date('2027-06-01T00:00:00Z'));
    expect(codes(await outcomeOf(bundle))).toEqual(['SIGNATURE_TIME_INVALID']);
  });

  it('refuses a trusted key of a restricted registry once it has expired', async () => {
    const key = await generate({ keyExpirationTime: 30 * 24 * 3600 });
    const publisher = asPublisher(key);
    const info = await readPublicKey(publisher.publicKey);
    const { bundle } = await bundleSigned(publisher, WHILE_VALID);
    const outcome = await outcomeOf(bundle, {
      policy: 'restricted',
      publishers: [{ fingerprint: info.fingerprint, names: ['*'], key: info.armored }],
    });
    expect(codes(outcome)).toEqual(['PUBLISHER_KEY_EXPIRED']);
  });

  it('accepts the same key, dated and judged within its validity', async () => {
    const key = await generate({ keyExpirationTime: 365 * 24 * 3600 });
    const { bundle } = await bundleSigned(asPublisher(key), WHILE_VALID);
    const registry = await makeRegistry();
    await registry.submit(bundle);
    expect((await processSubmissions(registry.context)).outcomes[0]?.status).toBe('accepted');
  });
});

describe('when a key or signature is larger or more complex than a publisher needs', () => {
  async function entries(extra: { publisher?: string; signature?: string } = {}): Promise<RawEntry[]> {
    const publisher = await testKey('publisher');
    const body = manifestBytes();
    return [
      { name: 'manifest.json', body },
      {
        name: 'manifest.json.asc',
        body: extra.signature ?? (await signAsPublisher(body, publisher.secretKey)),
      },
      { name: 'publisher.asc', body: extra.publisher ?? publisher.publicKey },
    ];
  }

  it.each([
    [
      'a publisher key past 64 KiB',
      async () => ({ publisher: `${'x'.repeat(70 * 1024)}` }),
      'bundle:publisher.asc',
    ],
    [
      'a signature past 16 KiB',
      async () => ({ signature: `${'x'.repeat(17 * 1024)}` }),
      'bundle:manifest.json.asc',
    ],
  ])('refuses %s by its size, before reading it', async (_, extra, at) => {
    const outcome = await outcomeOf(await rawTar(await entries(await extra())));
    expect(outcome?.problems).toEqual([
      expect.objectContaining({ code: 'BUNDLE_ENTRY_TOO_LARGE', path: at }),
    ]);
  });

  it('refuses a key with more user IDs than a publisher needs', async () => {
    const userIDs = Array.from({ length: 20 }, (_, i) => ({ name: `name ${i}`, email: `${i}@example.com` }));
    const key = await generate({ userIDs });
    const { bundle } = await bundleSigned(asPublisher(key), WHILE_VALID);
    expect(codes(await outcomeOf(bundle))).toEqual(['PUBLISHER_KEY_TOO_COMPLEX']);
  });

  it('refuses a publisher.asc holding two keys, which gpg --import would both take', async () => {
    const publisher = await testKey('publisher');
    const other = await testKey('other');
    const outcome = await outcomeOf(
      await rawTar(await entries({ publisher: `${publisher.publicKey}\n${other.publicKey}` })),
    );
    expect(codes(outcome)).toEqual(['PUBLISHER_KEY_INVALID']);
  });

  it('refuses a signature file holding two signatures, or a text-mode signature', async () => {
    const publisher = await testKey('publisher');
    const body = manifestBytes();
    const one = await openpgp.readSignature({
      armoredSignature: await signAsPublisher(body, publisher.secretKey),
    });
    const list = new openpgp.PacketList<openpgp.AnyPacket>();
    list.push(...one.packets, ...one.packets);
    const twice = new openpgp.Signature(list as never).armor();
    expect(codes(await outcomeOf(await rawTar(await entries({ signature: twice }))))).toEqual([
      'SIGNATURE_MALFORMED',
    ]);

    const text = await openpgp.sign({
      message: await openpgp.createMessage({ text: new TextDecoder().decode(body) }),
      signingKeys: await openpgp.readPrivateKey({ armoredKey: publisher.secretKey }),
      detached: true,
      date: WHILE_VALID,
    });
    expect(codes(await outcomeOf(await rawTar(await entries({ signature: text }))))).toEqual([
      'SIGNATURE_MALFORMED',
    ]);
  });
});

describe('when checking a publisher key would cost unbounded work', () => {
  // openpgp.js checks these in JavaScript, on the main thread, before it judges the key: the work grows with
  // the exponent's bits times the square of the modulus's. These are small (8,192 bits: seconds); the MPIs
  // of 65,535 bits a 64 KiB publisher.asc holds took an estimated 40 minutes of one upload's verification.
  it.each([
    [
      'an RSA key whose public exponent is as long as its modulus (a SHA-224 signature: no WebCrypto)',
      'rsa',
      'sha224',
    ],
    ['a DSA key (openpgp.js verifies nothing by one, after its arithmetic)', 'dsa', 'sha256'],
  ] as const)('refuses %s before checking any signature by it', async (_, algorithm, hash) => {
    const key = costlyKey({ algorithm, bits: 8192, hash, created: CREATED });
    const body = manifestBytes();
    const outcome = await outcomeOfHandBuilt(key, body, key.sign(body, WHILE_VALID));
    expect(outcome?.problems).toEqual([refusedPublisherKey(key.fingerprint)]);
  });
});

describe('when a publisher key is an Ed25519 point of small order (anyone can sign as it)', () => {
  it.each(Object.entries(SMALL_ORDER_POINTS))(
    'refuses a key whose point is %s, with its forged signature, as GnuPG refuses it',
    async (_, point) => {
      const weak = smallOrderKey(point, CREATED);
      const body = manifestBytes();
      const outcome = await outcomeOfHandBuilt(weak, body, weak.forge(body, WHILE_VALID));
      expect(outcome?.problems).toEqual([
        refusedPublisherKey(`${weak.fingerprint} is an Ed25519 point of small order`),
      ]);
    },
  );

  it.each(Object.entries(SMALL_ORDER_POINTS))(
    'refuses an RFC 9580 (v6) Ed25519 key whose point A is %s, with its forged signature',
    async (_, point) => {
      const weak = smallOrderKeyV6(point, CREATED);
      const body = manifestBytes();
      const outcome = await outcomeOfHandBuilt(weak, body, weak.forge(body, WHILE_VALID));
      expect(outcome?.problems).toEqual([
        refusedPublisherKey(`${weak.fingerprint} is an Ed25519 point of small order`),
      ]);
    },
  );

  it('is a key GnuPG takes no signature by: it refuses the key, or its forged certification', () => {
    const weak = smallOrderKey(SMALL_ORDER_POINTS.identity, CREATED);
    const body = manifestBytes();
    const home = mkdtempSync(path.join(tmpdir(), 'plugindex-gnupg-'));
    const file = (name: string) => path.join(home, name);
    writeFileSync(file('key.asc'), weak.publicKey);
    writeFileSync(file('data'), body);
    writeFileSync(file('data.asc'), weak.forge(body, WHILE_VALID));
    // GnuPG 2.2 (libgcrypt 1.10) aborts on the key ("mulm_25519: different sizes"); another may import it
    // without its user ID (the certification is bad). Either way no signature by it verifies.
    spawnSync('gpg', ['--homedir', home, '--batch', '--import', file('key.asc')], { encoding: 'utf8' });
    const verified = spawnSync(
      'gpg',
      ['--homedir', home, '--batch', '--status-fd', '1', '--verify', file('data.asc'), file('data')],
      { encoding: 'utf8' },
    );
    rmSync(home, { recursive: true, force: true });
    expect(verified.status).not.toBe(0);
    expect(verified.stdout).not.toMatch(/GOODSIG|VALIDSIG/);
  });

  it('refuses an owners add naming one, and a yank it forges, publishing neither', async () => {
    // Prepare: a published plugin, its owner asked to add a "co-maintainer" key that is such a point.
    const registry = await makeRegistry();
    const publisher = await testKey('publisher');
    await registry.submit(
      await makeBundle({ manifest: validManifest({ name: 'keyed-plugin' }), signer: publisher }),
    );
    expect((await processSubmissions(registry.context)).outcomes[0]?.status).toBe('accepted');
    const weak = smallOrderKey(SMALL_ORDER_POINTS.identity, CREATED);
    const add = await signedAction(
      { action: 'owners-add', plugin: 'keyed-plugin', key: weak.publicKey },
      publisher,
    );
    await upload(registry.intake, add.bytes);
    // A yank signed by nobody: the weak key's forged signature, the key in the envelope.
    const yank = JSON.parse(
      new TextDecoder().decode(
        (
          await signedAction(
            { action: 'yank', plugin: 'keyed-plugin', version: '1.0.0', reason: 'forged' },
            publisher,
          )
        ).bytes,
      ),
    ) as { action: string };
    const forged = { ...yank, signature: weak.forge(encode(yank.action), CREATED), key: weak.publicKey };
    await upload(registry.intake, encode(JSON.stringify(forged)));

    // Act
    const outcomes = (await processSubmissions(registry.context)).outcomes;

    // Assess
    expect(outcomes.map((o) => [o.status, codes(o), o.problems[0]?.path])).toEqual([
      ['rejected', ['PUBLISHER_KEY_INVALID'], '/key'],
      ['rejected', ['PUBLISHER_KEY_INVALID'], 'envelope:/key'],
    ]);
    const document = JSON.parse(
      new TextDecoder().decode((await registry.site.get('plugins/keyed-plugin/index.json'))?.body),
    ) as { owners: unknown[] };
    expect(document.owners).toHaveLength(1);
  });
});

describe('when a submission carries a secret key where the public key goes', () => {
  /** Every published object whose text holds secret key material. */
  async function secretsPublished(site: MemoryStore): Promise<string[]> {
    const found: string[] = [];
    for (const [key, object] of site.objects)
      if (new TextDecoder().decode(object.body).includes('PRIVATE KEY BLOCK')) found.push(key);
    return found;
  }

  it("refuses an action whose envelope's key is the signer's secret key, publishing nothing of it", async () => {
    // Prepare: an action signed by another tool than plugindex, which put the secret key in the envelope.
    // Accepted, its envelope was published as it came, under log/actions/ (immutable, never rewritten).
    const registry = await makeRegistry();
    const publisher = await testKey('publisher');
    await registry.submit(
      await makeBundle({ manifest: validManifest({ name: 'keyed-plugin' }), signer: publisher }),
    );
    expect((await processSubmissions(registry.context)).outcomes[0]?.status).toBe('accepted');
    const { bytes } = await signedAction(
      { action: 'yank', plugin: 'keyed-plugin', version: '1.0.0', reason: 'broken' },
      publisher,
    );
    const envelope = { ...JSON.parse(new TextDecoder().decode(bytes)), key: publisher.secretKey };
    await upload(registry.intake, encode(JSON.stringify(envelope)));

    // Act
    const [outcome] = (await processSubmissions(registry.context)).outcomes;

    // Assess
    expect(outcome?.status).toBe('rejected');
    expect(outcome?.problems).toEqual([
      expect.objectContaining({ code: 'PUBLISHER_KEY_INVALID', path: 'envelope:/key' }),
    ]);
    expect(outcome?.problems[0]?.message).toMatch(/secret key/);
    expect(await secretsPublished(registry.site)).toEqual([]);
  });

  it('refuses a bundle whose publisher.asc is the secret key, telling the publisher it left their hands', async () => {
    // Prepare
    const publisher = await testKey('publisher');
    const { bundle } = await bundleSigned(publisher, PUBLISHER_SIGNS, publisher.secretKey);

    // Act
    const outcome = await outcomeOf(bundle);

    // Assess
    expect(outcome?.problems).toEqual([
      expect.objectContaining({ code: 'PUBLISHER_KEY_INVALID', path: 'bundle:publisher.asc' }),
    ]);
    expect(outcome?.problems[0]?.message).toMatch(/secret key/);
  });
});
