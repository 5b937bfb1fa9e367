import { describe, expect, it } from 'vitest';
import { parseRegistryConfig } from '../../index-builder/config.ts';
import { ConfigError } from '../../index-builder/errors.ts';
import { authorizePublisher, checkConfiguredKeys, loadTrustedKeys } from '../../index-builder/trust.ts';
import { testKey } from '../support/fixtures.ts';
import { UNTRUSTED_KEYS } from '../support/untrusted-keys.ts';

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

  // A config's fingerprints are v4's 40 hex digits (config.ts): a v6 key cannot be listed there at all.
  const listable = UNTRUSTED_KEYS.filter((key) => key.fingerprint.length === 40);

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

    await expect(checkConfiguredKeys(config, WHERE)).resolves.toBeUndefined();
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
    const first = await loadTrustedKeys(config, []);
    const second = await loadTrustedKeys(config, []);

    expect(first.keys).toHaveLength(armored.length);
    const parsedAgain = second.keys.filter((info, i) => info.key !== first.keys[i]?.key).length;
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

    const one = await loadTrustedKeys(withKey(before), []);
    const other = await loadTrustedKeys(withKey(after), []);

    expect(other.keys[0]?.key).not.toBe(one.keys[0]?.key);
    expect(other.keys[0]?.fingerprint).toBe(key.fingerprint);
    for (let i = 0; i < 2; i++) {
      const refused = await checkConfiguredKeys(withKey('not a key'), WHERE).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(ConfigError);
      expect((refused as ConfigError).code).toBe('CONFIG_INVALID');
    }
  });
});
