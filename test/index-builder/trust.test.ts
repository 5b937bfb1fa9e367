import * as openpgp from 'openpgp';
import { describe, expect, it, vi } from 'vitest';
import {
  parseRegistryConfig,
  type RegistryConfig,
  type TrustedOperator,
  type TrustedPublisher,
} from '../../index-builder/config.ts';
import { sha256Hex } from '../../index-builder/digest.ts';
import { ConfigError } from '../../index-builder/errors.ts';
import { generateKeyPair, readPublicKey } from '../../index-builder/signing.ts';
import {
  authorizePublisher,
  CONFIGURED_KEY_CHECKS,
  checkActionSignature,
  checkConfiguredKeys,
  checkedKeysChanged,
  checkedKeysText,
  checkPublisherSignature,
  configuredCandidates,
  configuredKeyDigest,
  loadTrustedKeys,
  parseCheckedKeys,
  readSubmittedKey,
} from '../../index-builder/trust.ts';
import { configuredKeyCorpus } from '../support/configured-key-corpus.ts';
import { testKey } from '../support/fixtures.ts';
import { gpgSecretSubkeysOnce } from '../support/gpg.ts';
import { publicPrimaryWithSecretSubkeys } from '../support/openpgp-packets.ts';
import { UNTRUSTED_KEYS } from '../support/untrusted-keys.ts';

// A counting pass-through (not a mock of behaviour): how many configured keys a process parses, each
// `readPublicKey` call of trust.ts counted and answered by the real one.
const keyReads = vi.hoisted(() => ({ count: 0 }));
vi.mock('../../index-builder/signing.ts', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../../index-builder/signing.ts')>();
  return {
    ...actual,
    readPublicKey: (armored: string) => {
      keyReads.count++;
      return actual.readPublicKey(armored);
    },
  };
});

const A = 'A'.repeat(40);
const B = 'B'.repeat(40);
const open = parseRegistryConfig({ name: 'r', url: 'https://r.example.com' });
const restricted = parseRegistryConfig({
  name: 'r',
  url: 'https://r.example.com',
  policy: 'restricted',
  publishers: [{ fingerprint: A, names: ['acme-*', 'exact-name'], key: 'k' }],
});

const codes = (options: Parameters<typeof authorizePublisher>[0]): string[] =>
  authorizePublisher(options).map((p) => p.code);

describe('when the registry is open', () => {
  it('lets any key claim a new name, and only owners publish to an owned one', () => {
    expect(codes({ config: open, fingerprint: B, name: 'anything', owners: undefined })).toEqual([]);
    expect(codes({ config: open, fingerprint: B, name: 'anything', owners: [A] })).toEqual([
      'PUBLISHER_NOT_OWNER',
    ]);
    expect(codes({ config: open, fingerprint: A, name: 'anything', owners: [A] })).toEqual([]);
  });

  it('ignores ownership when the registry says none', () => {
    const none = parseRegistryConfig({ name: 'r', url: 'https://r.example.com', ownership: 'none' });
    expect(codes({ config: none, fingerprint: B, name: 'anything', owners: [A] })).toEqual([]);
  });
});

describe('when the registry is restricted', () => {
  it('accepts listed keys for their globs only', () => {
    expect(codes({ config: restricted, fingerprint: A, name: 'acme-costs', owners: undefined })).toEqual([]);
    expect(codes({ config: restricted, fingerprint: A, name: 'exact-name', owners: undefined })).toEqual([]);
    expect(codes({ config: restricted, fingerprint: A, name: 'other', owners: undefined })).toEqual([
      'PUBLISHER_NAME_NOT_ALLOWED',
    ]);
    expect(codes({ config: restricted, fingerprint: B, name: 'acme-costs', owners: undefined })).toEqual([
      'PUBLISHER_UNTRUSTED',
    ]);
  });
});

describe('when a restricted registry does not list the key', () => {
  it('says what would list it: the operator adding it for the name (PUBLISHER_UNTRUSTED)', () => {
    // It said only "is not a trusted publisher of this registry": neither the publisher nor the operator
    // transferring a name to that key was told what to do.
    const problems = authorizePublisher({
      config: restricted,
      fingerprint: B,
      name: 'acme-costs',
      owners: [],
    });

    expect(problems).toEqual([
      expect.objectContaining({
        code: 'PUBLISHER_UNTRUSTED',
        path: '/name',
        // Both ways a registry lists one: a deployed registry's operator has no publishers add (its
        // trust list is publishers.json, deployed), and was told only the local command.
        expected: `a key the registry's operator lists for "acme-costs" (a local registry: plugindex publishers add --registry DIR KEYFILE --names "acme-costs"; on AWS: its entry in publishers.json, deployed)`,
        found: B,
      }),
    ]);
  });
});

describe('when a config edited by hand trusts a key no signature by which is taken', () => {
  const WHERE = 'registry config /srv/registry/plugindex.json';
  const configWith = async (
    bad: { fingerprint: string; publicKey: string },
    as: 'publishers' | 'operators',
  ) => {
    const good = await testKey('acme');
    const entries = [
      { fingerprint: good.fingerprint, key: good.publicKey, names: ['*'] },
      { fingerprint: bad.fingerprint, key: bad.publicKey, names: ['*'] },
    ];
    return parseRegistryConfig({
      name: 'r',
      url: 'https://r.example.org',
      policy: 'restricted',
      publishers: as === 'publishers' ? entries : [],
      operators: as === 'operators' ? entries.map(({ names: _, ...o }) => o) : [],
    });
  };

  // Every one, the v6 key too: a config names a v6 key by its 64 hex digits (fingerprint.ts).
  const listable = UNTRUSTED_KEYS;

  it.each(listable.flatMap((key) => (['publishers', 'operators'] as const).map((as) => ({ ...key, as }))))(
    'refuses $label among the $as with CONFIG_INVALID, naming the config, the entry and why',
    async (key) => {
      const config = await configWith(key, key.as);

      const refused = checkConfiguredKeys(config, WHERE);

      await expect(refused).rejects.toThrow(ConfigError);
      await expect(refused).rejects.toMatchObject({
        code: 'CONFIG_INVALID',
        message: expect.stringContaining(
          `${WHERE} /${key.as}/1/key: the ${key.as === 'publishers' ? 'publisher' : 'operator'} key ${key.fingerprint} cannot be trusted`,
        ),
      });
      await expect(refused).rejects.toMatchObject({ message: expect.stringContaining(key.reason) });
    },
  );

  it('names every such entry, and one that is no key at all', async () => {
    const [small, dsa] = [UNTRUSTED_KEYS[0], UNTRUSTED_KEYS[3]];
    const config = parseRegistryConfig({
      name: 'r',
      url: 'https://r.example.org',
      publishers: [{ fingerprint: small?.fingerprint, key: small?.publicKey, names: ['*'] }],
      operators: [
        { fingerprint: 'A'.repeat(40), key: 'not a key' },
        { fingerprint: dsa?.fingerprint, key: dsa?.publicKey },
      ],
    });

    const refused = checkConfiguredKeys(config, WHERE);

    await expect(refused).rejects.toThrow(ConfigError);
    const { message } = (await refused.catch((e: unknown) => e)) as ConfigError;
    expect(message).toContain(`${WHERE} /publishers/0/key: the publisher key ${small?.fingerprint}`);
    expect(message).toContain(`${WHERE} /operators/0/key: not an armored OpenPGP key`);
    expect(message).toContain(`${WHERE} /operators/1/key: the operator key ${dsa?.fingerprint}`);
  });

  it('takes a config whose keys are all usable', async () => {
    const good = await testKey('acme');
    const config = parseRegistryConfig({
      name: 'r',
      url: 'https://r.example.org',
      publishers: [{ fingerprint: good.fingerprint, key: good.publicKey, names: ['*'] }],
      operators: [{ fingerprint: good.fingerprint, key: good.publicKey }],
    });

    const ids = [good.fingerprint.slice(-16), expect.stringMatching(/^[0-9A-F]{16}$/)];
    await expect(checkConfiguredKeys(config, WHERE)).resolves.toEqual(
      new Map([
        [configuredKeyDigest(config.publishers[0] as TrustedPublisher), ids],
        [configuredKeyDigest(config.operators[0] as TrustedOperator), ids],
      ]),
    );
  });
});

describe('the configured keys read once a process', () => {
  const WHERE = 'registry config /srv/registry/plugindex.json';
  // The same key armored under as many Comment headers: as many entries, one key's parsing each.
  const variants = (armored: string, count: number): string[] =>
    Array.from({ length: count }, (_, i) =>
      armored.replace(
        '-----BEGIN PGP PUBLIC KEY BLOCK-----\n',
        `-----BEGIN PGP PUBLIC KEY BLOCK-----\nComment: ${i}\n`,
      ),
    );

  it('reads a config of more keys than the cache was bounded by once, not again every batch', async () => {
    const key = await testKey('many');
    // More than the 4,096 entries the cache was emptied at: emptied part way through every read, so a
    // registry trusting that many keys parsed each of them again for every batch, twice with the check.
    const armored = variants(key.publicKey, 4_200);
    const config = parseRegistryConfig({
      name: 'r',
      url: 'https://r.example.org',
      publishers: armored.map((k) => ({ fingerprint: key.fingerprint, key: k, names: ['*'] })),
    });

    await checkConfiguredKeys(config, WHERE);
    const ids = [key.fingerprint.slice(-16)];
    const first = await configuredCandidates(await loadTrustedKeys(config, []), ids);
    const second = await configuredCandidates(await loadTrustedKeys(config, []), ids);

    expect(first).toHaveLength(armored.length);
    const parsedAgain = second.filter((info, i) => info.key !== first[i]?.key).length;
    expect(parsedAgain).toBe(0);
  }, 120_000);

  it('reads a key again whose text changed, and one that failed to read', async () => {
    const key = await testKey('changed');
    const [before, after] = variants(key.publicKey, 2) as [string, string];
    const withKey = (k: string) =>
      parseRegistryConfig({
        name: 'r',
        url: 'https://r.example.org',
        publishers: [{ fingerprint: key.fingerprint, key: k, names: ['*'] }],
      });

    const ids = [key.fingerprint.slice(-16)];
    const [one] = await configuredCandidates(await loadTrustedKeys(withKey(before), []), ids);
    const [other] = await configuredCandidates(await loadTrustedKeys(withKey(after), []), ids);

    expect(other?.key).not.toBe(one?.key);
    expect(other?.fingerprint).toBe(key.fingerprint);
    for (let i = 0; i < 2; i++) {
      const refused = await checkConfiguredKeys(withKey('not a key'), WHERE).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(ConfigError);
      expect((refused as ConfigError).code).toBe('CONFIG_INVALID');
    }
  });
});

/** A detached signature over `data` by `secretKey` (its signing subkey, when it has one), armored. */
async function signDetached(data: Uint8Array, secretKey: string): Promise<string> {
  const signingKeys = await openpgp.readPrivateKey({ armoredKey: secretKey });
  const message = await openpgp.createMessage({ binary: data });
  return openpgp.sign({ message, signingKeys, detached: true, format: 'armored' });
}

describe('when an upload is judged among many configured publishers', () => {
  const manifest = new TextEncoder().encode('{"name":"acme-costs"}');
  const judge = async (config: RegistryConfig, secretKey: string) =>
    checkPublisherSignature({
      policy: config.policy,
      trusted: await loadTrustedKeys(config, []),
      manifestName: 'manifest.json',
      manifest,
      signature: new TextEncoder().encode(await signDetached(manifest, secretKey)),
      publisherKey: undefined,
      now: new Date(),
    });
  const restrictedTo = (publishers: { fingerprint: string; key: string }[]) =>
    parseRegistryConfig({
      name: 'r',
      url: 'https://r.example.org',
      policy: 'restricted',
      publishers: publishers.map((p) => ({ ...p, names: ['*'] })),
    });
  // Entries whose text is no key: read, each would fail the batch (KEY_INVALID), so a judgement that
  // passes them read none of them. (Such a config is refused at load, `checkConfiguredKeys`; it is built
  // here past that check only to show which keys a judgement reads.)
  const unread = Array.from({ length: 3 }, (_, i) => ({
    fingerprint: String(i).repeat(40),
    key: 'not a key',
  }));

  it('reads only the key whose entry the signature names, not every configured one', async () => {
    const signer = await testKey('many-signer');
    const config = restrictedTo([...unread, { fingerprint: signer.fingerprint, key: signer.publicKey }]);

    const judged = await judge(config, signer.secretKey);

    expect(judged).toEqual({ fingerprint: signer.fingerprint, problems: [] });
  });

  it('finds a key that signs with its subkey, whose ID names no entry, among every configured key', async () => {
    const other = await testKey('many-other');
    const generated = await openpgp.generateKey({
      type: 'ecc',
      userIDs: [{ name: 'subkey signer' }],
      subkeys: [{ sign: true }],
      format: 'armored',
    });
    const info = await readPublicKey(generated.publicKey);
    const config = restrictedTo([
      { fingerprint: other.fingerprint, key: other.publicKey },
      { fingerprint: info.fingerprint, key: info.armored },
    ]);
    const signature = await openpgp.readSignature({
      armoredSignature: await signDetached(manifest, generated.privateKey),
    });
    const issuer = signature.getSigningKeyIDs()[0]?.toHex().toUpperCase();
    expect(issuer).not.toBe(info.fingerprint.slice(-16));

    const judged = await judge(config, generated.privateKey);

    expect(judged).toEqual({ fingerprint: info.fingerprint, problems: [] });
  });

  it('refuses a signature by a key no entry holds as untrusted', async () => {
    const listed = await testKey('many-listed');
    const stranger = await testKey('many-stranger');
    const config = restrictedTo([{ fingerprint: listed.fingerprint, key: listed.publicKey }]);

    const judged = await judge(config, stranger.secretKey);

    expect(judged.problems.map((p) => p.code)).toEqual(['PUBLISHER_UNTRUSTED']);
  });
});

describe('when the entries a config holds were checked before (checkConfiguredKeys `checked`)', () => {
  const WHERE = 'registry config /srv/registry/plugindex.json';
  const withPublisher = (fingerprint: string, key: string) =>
    parseRegistryConfig({
      name: 'r',
      url: 'https://r.example.org',
      policy: 'restricted',
      publishers: [{ fingerprint, key, names: ['*'] }],
    });

  it('does not read an entry again whose fingerprint and text were checked', async () => {
    // A text no key reads from: were the entry read, it would be refused.
    const config = withPublisher('C'.repeat(40), 'not a key');
    const checked = new Map([
      [configuredKeyDigest(config.publishers[0] as TrustedPublisher), ['0123456789ABCDEF']],
    ]);

    await expect(checkConfiguredKeys(config, WHERE, { checked })).resolves.toEqual(checked);
  });

  it('checks an entry again whose key text changed, and refuses it', async () => {
    const good = await testKey('checked-before');
    const before = withPublisher(good.fingerprint, good.publicKey);
    const checked = await checkConfiguredKeys(before, WHERE);
    const small = UNTRUSTED_KEYS[0];
    const after = withPublisher(good.fingerprint, small?.publicKey ?? '');

    const refused = checkConfiguredKeys(after, WHERE, { checked });

    await expect(refused).rejects.toThrow(ConfigError);
    await expect(refused).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringContaining(`${WHERE} /publishers/0/key: the publisher key ${small?.fingerprint}`),
    });
  });

  it('refuses an entry given as its secret key, naming the entry, one listed as checked by the older checks too', async () => {
    // Prepare: a secret key pasted into the config by hand, and listed as checked under the tag before the
    // checks refused one (as a registry's state/checked-keys.json of that release holds it).
    const pasted = await testKey('pasted-secret');
    const config = withPublisher(pasted.fingerprint, pasted.secretKey);
    const olderChecks = 'plugindex configured key checks 1: reads, fingerprint, untrustedKeyProblem';
    const listedBefore = sha256Hex(`${olderChecks}\n${pasted.fingerprint}\n${pasted.secretKey}`);
    const checked = new Map([[listedBefore, [pasted.fingerprint.slice(-16)]]]);

    // Act
    const refused = checkConfiguredKeys(config, WHERE, { checked });

    // Assess
    await expect(refused).rejects.toThrow(ConfigError);
    await expect(refused).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringContaining(
        `${WHERE} /publishers/0/key: the publisher key ${pasted.fingerprint} is given as its secret key, which a config must never hold`,
      ),
    });
    await expect(refused).rejects.not.toMatchObject({ message: expect.stringContaining('PRIVATE KEY') });
  });

  it('refuses an entry holding its secret key under a public key’s armor header, naming the entry', async () => {
    // Prepare: the secret key's armor relabelled (a hand edit, a tool that labels every key block public):
    // openpgp.js reads the secret packets under either header, so the header alone says nothing.
    const pasted = await testKey('pasted-secret-relabelled');
    const relabelled = pasted.secretKey.replaceAll('PGP PRIVATE KEY BLOCK', 'PGP PUBLIC KEY BLOCK');
    const config = withPublisher(pasted.fingerprint, relabelled);

    // Act
    const refused = checkConfiguredKeys(config, WHERE);

    // Assess
    await expect(refused).rejects.toThrow(ConfigError);
    await expect(refused).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringContaining(
        `${WHERE} /publishers/0/key: the publisher key ${pasted.fingerprint} is given as its secret key`,
      ),
    });
  });

  it('refuses an entry holding its public primary key with its secret subkey (openpgp.js, GnuPG), naming the entry', async () => {
    // A public primary key holding a secret subkey (tag 7): openpgp.js reads it as no key at all, so it was
    // refused as an unreadable key, and the secret subkey in the config went unsaid.
    const pasted = await testKey('pasted-secret-subkey');
    const gpg = gpgSecretSubkeysOnce();
    for (const [fingerprint, key] of [
      [pasted.fingerprint, (await publicPrimaryWithSecretSubkeys(pasted.secretKey)).armored],
      [gpg.fingerprint, gpg.spliced.armored],
      [gpg.fingerprint, gpg.exported.armored],
    ] as const) {
      const refused = checkConfiguredKeys(withPublisher(fingerprint, key), WHERE);
      await expect(refused).rejects.toThrow(ConfigError);
      await expect(refused).rejects.toMatchObject({
        code: 'CONFIG_INVALID',
        message: expect.stringContaining(
          `${WHERE} /publishers/0/key: the publisher key ${fingerprint} is given as its secret key`,
        ),
      });
    }
  }, 60_000);

  it('refuses an entry whose fingerprint is not its key’s, naming the entry', async () => {
    const good = await testKey('fingerprint-claimed');
    const config = withPublisher('D'.repeat(40), good.publicKey);

    const refused = checkConfiguredKeys(config, WHERE);

    await expect(refused).rejects.toThrow(ConfigError);
    await expect(refused).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringContaining(
        `${WHERE} /publishers/0/fingerprint: ${'D'.repeat(40)} is not the fingerprint of the publisher key beside it (${good.fingerprint})`,
      ),
    });
  });
});

describe('when an action is signed by a v6 publisher key', () => {
  // RFC 9580 v6 (openpgp.js `v6Keys`): its key ID is the first 16 hex digits of its 64, where a v4 key's is
  // the last 16 of its 40; the registry's copy of the key is found by it.
  it("judges it by the registry's copy of the key, not the envelope's (which a revocation may be stripped from)", async () => {
    const generated = await openpgp.generateKey({
      type: 'curve25519',
      userIDs: [{ name: 'V6 Owner' }],
      format: 'armored',
      config: { v6Keys: true },
    });
    const secret = await openpgp.readPrivateKey({ armoredKey: generated.privateKey });
    const { publicKey: revoked } = await openpgp.revokeKey({
      key: secret,
      reasonForRevocation: { flag: openpgp.enums.reasonForRevocation.keyCompromised, string: 'leaked' },
      date: new Date(Date.now() - 60_000),
      format: 'armored',
    });
    const fingerprint = secret.getFingerprint().toUpperCase();
    // The registry's copy carries the revocation; the action's envelope carries the key as it was before.
    const config = parseRegistryConfig({
      name: 'r',
      url: 'https://r.example.org',
      policy: 'restricted',
      publishers: [{ fingerprint, key: revoked, names: ['*'] }],
    });
    const text = new TextEncoder().encode('{"action":"yank"}');

    const checked = await checkActionSignature({
      text,
      signature: await signDetached(text, generated.privateKey),
      key: generated.publicKey,
      trusted: await loadTrustedKeys(config, []),
      now: new Date(),
    });

    expect(checked.fingerprint).toBeUndefined();
    expect(checked.problems.map((p) => [p.code, p.path])).toEqual([
      ['PUBLISHER_KEY_REVOKED', 'envelope:/signature'],
    ]);
    expect(checked.problems[0]?.message).toMatch(/revoked/i);
  });
});

describe('when a cold process judges a signature no entry names, its checked list kept (state/checked-keys.json)', () => {
  const WHERE = 'registry config /srv/registry/plugindex.json';
  const PUBLISHERS = 200;
  const manifest = new TextEncoder().encode('{"name":"acme-costs"}');
  type Trust = typeof import('../../index-builder/trust.ts');

  /** A restricted config of PUBLISHERS fresh keys (parsed by no earlier test) and `extra` last. */
  async function manyPublishers(extra: readonly { fingerprint: string; key: string }[] = []) {
    const keys = await Promise.all(
      Array.from({ length: PUBLISHERS }, (_, i) => generateKeyPair({ name: `cold ${i}` })),
    );
    return parseRegistryConfig({
      name: 'r',
      url: 'https://r.example.org',
      policy: 'restricted',
      publishers: [...keys.map((k) => ({ fingerprint: k.fingerprint, key: k.publicKey })), ...extra].map(
        (p) => ({ ...p, names: ['*'] }),
      ),
    });
  }

  /** A key signing with its subkey, whose primary key ID (its entry's) is not its signatures' issuer. */
  async function subkeySigner() {
    const generated = await openpgp.generateKey({
      type: 'ecc',
      userIDs: [{ name: 'cold subkey signer' }],
      subkeys: [{ sign: true }],
      format: 'armored',
    });
    const key = await openpgp.readKey({ armoredKey: generated.publicKey });
    return {
      secretKey: generated.privateKey,
      fingerprint: key.getFingerprint().toUpperCase(),
      key: generated.publicKey,
    };
  }

  /**
   * A process that starts cold (trust.ts loaded afresh: no key parsed, nothing indexed) with the checked list
   * `text`, loads `config` as a registry does (`checkConfiguredKeys`), and judges an upload signed by
   * `secretKey` without publisher.asc; and how many keys it parsed.
   */
  async function judgeCold(config: RegistryConfig, text: string, secretKey: string) {
    vi.resetModules();
    const cold = (await import('../../index-builder/trust.ts')) as Trust;
    keyReads.count = 0;
    await cold.checkConfiguredKeys(config, WHERE, { checked: cold.parseCheckedKeys(text) });
    const judged = await cold.checkPublisherSignature({
      policy: config.policy,
      trusted: await cold.loadTrustedKeys(config, []),
      manifestName: 'manifest.json',
      manifest,
      signature: new TextEncoder().encode(await signDetached(manifest, secretKey)),
      publisherKey: undefined,
      now: new Date(),
    });
    return { judged, parsed: keyReads.count };
  }

  it("reads no configured key for a stranger's signature, and refuses it as before", async () => {
    const config = await manyPublishers();
    const list = checkedKeysText(await checkConfiguredKeys(config, WHERE));
    const stranger = await testKey('cold-stranger');

    const { judged, parsed } = await judgeCold(config, list, stranger.secretKey);
    // The same process without the list: every key read, to find none holding the issuer.
    const { judged: without, parsed: everyKey } = await judgeCold(config, '', stranger.secretKey);

    expect(parsed).toBe(0);
    expect(everyKey).toBe(PUBLISHERS);
    expect(judged.problems.map((p) => p.code)).toEqual(['PUBLISHER_UNTRUSTED']);
    expect(judged).toEqual(without);
  }, 60_000);

  it('finds a key signing with its subkey, sent without publisher.asc, by the subkey ID, reading it alone', async () => {
    const signer = await subkeySigner();
    const config = await manyPublishers([{ fingerprint: signer.fingerprint, key: signer.key }]);
    const list = checkedKeysText(await checkConfiguredKeys(config, WHERE));

    const { judged, parsed } = await judgeCold(config, list, signer.secretKey);

    expect(judged).toEqual({ fingerprint: signer.fingerprint, problems: [] });
    expect(parsed).toBe(1);
  }, 60_000);

  it('refuses, never accepts, a signature whose key IDs a tampered list moved to another entry', async () => {
    // Prepare: the list says the first publisher holds the stranger's key ID and the subkey signer's IDs,
    // and the signer's entry holds none of them (whoever may write state/ wrote it).
    const signer = await subkeySigner();
    const stranger = await testKey('cold-tampered-stranger');
    const config = await manyPublishers([{ fingerprint: signer.fingerprint, key: signer.key }]);
    const passed = await checkConfiguredKeys(config, WHERE);
    const [first] = config.publishers;
    const signerDigest = configuredKeyDigest({ fingerprint: signer.fingerprint, key: signer.key });
    const signerIds = passed.get(signerDigest) ?? [];
    const tampered = new Map<string, readonly string[]>(passed);
    tampered.set(configuredKeyDigest(first as TrustedPublisher), [
      ...signerIds,
      stranger.fingerprint.slice(-16),
    ]);
    tampered.set(signerDigest, ['0123456789ABCDEF']);
    const list = checkedKeysText(tampered);

    // Act
    const bySigner = await judgeCold(config, list, signer.secretKey);
    const byStranger = await judgeCold(config, list, stranger.secretKey);

    // Assess: the first publisher's key read, found to hold neither, and nothing accepted by it.
    expect(bySigner.judged.problems.map((p) => p.code)).toEqual(['PUBLISHER_UNTRUSTED']);
    expect(byStranger.judged.problems.map((p) => p.code)).toEqual(['PUBLISHER_UNTRUSTED']);
    expect(bySigner.judged.fingerprint).toBeUndefined();
    expect(byStranger.judged.fingerprint).toBeUndefined();
    expect(byStranger.parsed).toBe(1);
  }, 60_000);

  it("refuses none of one registry's signatures for the key IDs another registry's list gives the same key", async () => {
    // Prepare: one process serving two registries that both trust the same subkey signer (a warm server, a
    // test run). Registry A's list (whoever may write A's state/) says the signer's key holds another ID;
    // registry B's list is its own, true. B's config is loaded, then A's, then B judges a signature.
    const signer = await subkeySigner();
    const configOf = (name: string) =>
      parseRegistryConfig({
        name,
        url: `https://${name}.example.org`,
        policy: 'restricted',
        publishers: [{ fingerprint: signer.fingerprint, key: signer.key, names: ['*'] }],
      });
    const a = configOf('a');
    const b = configOf('b');
    const digest = configuredKeyDigest({ fingerprint: signer.fingerprint, key: signer.key });
    const listB = checkedKeysText(await checkConfiguredKeys(b, WHERE));
    const listA = checkedKeysText(new Map([[digest, ['0123456789ABCDEF']]]));
    vi.resetModules();
    const cold = (await import('../../index-builder/trust.ts')) as Trust;
    await cold.checkConfiguredKeys(b, WHERE, { checked: cold.parseCheckedKeys(listB) });
    await cold.checkConfiguredKeys(a, WHERE, { checked: cold.parseCheckedKeys(listA) });
    const judgeIn = async (config: RegistryConfig) =>
      cold.checkPublisherSignature({
        policy: config.policy,
        trusted: await cold.loadTrustedKeys(config, []),
        manifestName: 'manifest.json',
        manifest,
        signature: new TextEncoder().encode(await signDetached(manifest, signer.secretKey)),
        publisherKey: undefined,
        now: new Date(),
      });

    // Act
    const inB = await judgeIn(b);
    const inA = await judgeIn(a);

    // Assess: B takes its signer's signature; A, whose own list lies, refuses it (never accepts what it should not).
    expect(inB).toEqual({ fingerprint: signer.fingerprint, problems: [] });
    expect(inA.problems.map((p) => p.code)).toEqual(['PUBLISHER_UNTRUSTED']);
  }, 60_000);

  it('reads a list of the older form (digests alone), reading each entry once again to keep its key IDs', async () => {
    const key = await generateKeyPair({ name: 'older list' });
    const config = parseRegistryConfig({
      name: 'r',
      url: 'https://r.example.org',
      publishers: [{ fingerprint: key.fingerprint, key: key.publicKey, names: ['*'] }],
    });
    const digest = configuredKeyDigest(config.publishers[0] as TrustedPublisher);
    const older = parseCheckedKeys(JSON.stringify({ checked: [digest] }));

    vi.resetModules();
    const cold = (await import('../../index-builder/trust.ts')) as Trust;
    keyReads.count = 0;
    const passed = await cold.checkConfiguredKeys(config, WHERE, { checked: older });

    expect([...older]).toEqual([[digest, undefined]]);
    expect(keyReads.count).toBe(1);
    expect(passed.get(digest)).toContain(key.fingerprint.slice(-16));
    expect(checkedKeysChanged(older, passed)).toBe(true);
    expect(parseCheckedKeys(checkedKeysText(passed))).toEqual(passed);
  });
});

describe('when the configured key checks judge a key otherwise (CONFIGURED_KEY_CHECKS)', () => {
  // An entry listed as checked is not checked again (its digest names the checks, CONFIGURED_KEY_CHECKS):
  // checks tightened under the same tag would leave every entry that passed the old ones unchecked by the
  // new. So the tag ends in the digest of the checks' verdicts on a corpus of every kind of entry they could
  // come to judge apart (`configuredKeyCorpus`), and a change of verdict, or a kind added to the corpus (a new
  // untrusted key among them), cannot pass here without a new tag.
  const WHERE = 'registry config /srv/registry/plugindex.json';

  /** Each corpus entry's label and whether the check takes it, as a config holding it alone is loaded. */
  let judging: Promise<[string, 'taken' | 'refused'][]> | undefined;
  const verdicts = (): Promise<[string, 'taken' | 'refused'][]> => {
    judging ??= judge();
    return judging;
  };
  async function judge(): Promise<[string, 'taken' | 'refused'][]> {
    const corpus = await configuredKeyCorpus();
    return Promise.all(
      corpus.map(async ({ label, fingerprint, key }): Promise<[string, 'taken' | 'refused']> => {
        const config = parseRegistryConfig({
          name: 'r',
          url: 'https://r.example.org',
          publishers: [{ fingerprint, key, names: ['*'] }],
        });
        const checked = await checkConfiguredKeys(config, WHERE).then(
          () => 'taken' as const,
          (error: unknown) => {
            // Only the check's refusal is a verdict; anything else is a broken corpus.
            if (error instanceof ConfigError && error.code === 'CONFIG_INVALID') return 'refused' as const;
            throw error;
          },
        );
        return [label, checked];
      }),
    );
  }

  /** The digest the tag must end in: of every label and verdict, in label order. */
  const verdictsDigest = (judged: readonly [string, string][]): string =>
    sha256Hex(JSON.stringify([...judged].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))).slice(0, 16);

  it('names the verdicts its checks give, so checks that judge otherwise change every digest', async () => {
    const judged = await verdicts();
    const digest = verdictsDigest(judged);

    expect(new Set(judged.map(([label]) => label)).size).toBe(judged.length);
    expect(
      CONFIGURED_KEY_CHECKS.endsWith(`verdicts ${digest}`),
      `The configured key checks' verdicts on the corpus (test/support/configured-key-corpus.ts) are now ${JSON.stringify(judged)}, whose digest is ${digest}, and CONFIGURED_KEY_CHECKS (index-builder/trust.ts) is "${CONFIGURED_KEY_CHECKS}". Entries listed as checked under that tag would skip the checks as they are now: end the tag in "verdicts ${digest}" (every entry is then checked once again at its next load).`,
    ).toBe(true);
  }, 60_000);

  it('takes the kinds of key a registry trusts, and refuses each untrusted one and a fingerprint not its key’s', async () => {
    const judged = new Map(await verdicts());

    expect(judged.get('a v4 Ed25519 key (EdDSA legacy)')).toBe('taken');
    expect(judged.get('a v6 Ed25519 key')).toBe('taken');
    expect(judged.get('an RSA key of 16384 bits, its exponent 64 bits')).toBe('taken');
    expect(judged.get('an RSA key of 16392 bits, its exponent 24 bits')).toBe('refused');
    expect(judged.get('an RSA key of 2048 bits, its exponent 72 bits')).toBe('refused');
    for (const untrusted of UNTRUSTED_KEYS) expect(judged.get(untrusted.label)).toBe('refused');
    expect(judged.get('no key at all')).toBe('refused');
    expect(judged.get('a fingerprint not its key’s')).toBe('refused');
  }, 60_000);
});

describe('when a submission carries a public key holding a secret subkey', () => {
  it('refuses it PUBLISHER_KEY_INVALID as it refuses a secret key, built by openpgp.js or GnuPG', async () => {
    // Read as no key at all (openpgp.js refuses a secret subkey under a public primary key), it was refused as
    // "not an armored OpenPGP public key": the publisher never learned their secret subkey had left them.
    const key = await testKey('careless-subkey');
    const gpg = gpgSecretSubkeysOnce();
    for (const armored of [
      (await publicPrimaryWithSecretSubkeys(key.secretKey)).armored,
      gpg.spliced.armored,
      gpg.exported.armored,
    ]) {
      const read = await readSubmittedKey(armored, { at: '/publisher.asc', name: 'publisher.asc' }, []);
      expect(read.problem).toMatchObject({
        code: 'PUBLISHER_KEY_INVALID',
        message: expect.stringContaining('publisher.asc holds a secret key'),
      });
    }
  }, 60_000);
});
