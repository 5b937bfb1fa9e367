import { describe, expect, it } from 'vitest';
import {
  DEFAULT_SNAPSHOT_TTL_SECONDS,
  parseRegistryConfig,
  type TrustedPublisher,
  withDeployedTrustList,
  withTrustedPublisher,
} from '../index-builder/config.ts';
import { ConfigError } from '../index-builder/errors.ts';

describe('when reading a registry config', () => {
  it('defaults to an open policy with first-come ownership', () => {
    const config = parseRegistryConfig({ name: 'r', url: 'https://r.example.com/' });
    expect(config).toMatchObject({
      policy: 'open',
      ownership: 'first-come',
      publishers: [],
      url: 'https://r.example.com',
    });
    expect(config.snapshotTtlSeconds).toBe(DEFAULT_SNAPSHOT_TTL_SECONDS);
  });

  it.each([
    [{ url: 'https://r.example.com' }, '/name'],
    [{ name: 'r', url: 'ftp://r.example.com' }, '/url'],
    [{ name: 'r', url: 'not a url' }, '/url'],
    [{ name: 'r', url: 'https://r', policy: 'anyone' }, '/policy'],
    [{ name: 'r', url: 'https://r', ownership: 'last-come' }, '/ownership'],
    [{ name: 'r', url: 'https://r', snapshotTtlSeconds: 5 }, '/snapshotTtlSeconds'],
    [{ name: 'r\u2028', url: 'https://r' }, '/name'],
    [{ name: 'r', url: 'https://r', description: 'a\ud800' }, '/description'],
    [
      { name: 'r', url: 'https://r', publishers: [{ fingerprint: 'XYZ', names: ['*'], key: 'k' }] },
      '/publishers/0/fingerprint',
    ],
    [
      { name: 'r', url: 'https://r', publishers: [{ fingerprint: 'A'.repeat(40), names: [], key: 'k' }] },
      '/publishers/0/names',
    ],
  ])('rejects %j naming %s', (value, pointer) => {
    expect(() => parseRegistryConfig(value)).toThrow(ConfigError);
    expect(() => parseRegistryConfig(value)).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining(pointer) }),
    );
  });
});

const publisherEntry = (fingerprint: string, names: string[] = ['acme-*']): TrustedPublisher => ({
  fingerprint,
  names,
  key: `-----BEGIN PGP PUBLIC KEY BLOCK----- ${fingerprint}`,
});

describe('when a trust list is deployed with the functions', () => {
  const open = parseRegistryConfig({
    name: 'r',
    url: 'https://r.example.com',
    publishers: [publisherEntry('B'.repeat(40), ['*'])],
  });

  it('restricts publishing to the list, whatever the config says', () => {
    const list = [publisherEntry('A'.repeat(40))];
    const config = withDeployedTrustList(open, list);
    expect(config).toEqual({ ...open, policy: 'restricted', publishers: list });
    expect(parseRegistryConfig(config)).toEqual(config);
  });

  it('trusts no one when the list is empty', () => {
    expect(withDeployedTrustList(open, [])).toMatchObject({ policy: 'restricted', publishers: [] });
  });

  it('stands in for trust fields of the config object that would not parse', () => {
    const stored = { name: 'r', url: 'https://r.example.com', policy: 'anyone', publishers: 'everyone' };
    const list = [publisherEntry('A'.repeat(40))];
    expect(() => parseRegistryConfig(stored)).toThrow(ConfigError);
    expect(parseRegistryConfig(withDeployedTrustList(stored, list))).toMatchObject({
      policy: 'restricted',
      publishers: list,
    });
  });

  it('leaves the config as it is when no list is deployed', () => {
    expect(withDeployedTrustList(open, undefined)).toBe(open);
  });
});

describe('when an operator trusts a publisher', () => {
  const open = parseRegistryConfig({ name: 'r', url: 'https://r.example.com' });

  it('adds the key for its names and makes the registry restricted', () => {
    const acme = publisherEntry('A'.repeat(40));
    const config = withTrustedPublisher(open, acme);
    expect(config).toEqual({ ...open, policy: 'restricted', publishers: [acme] });
    expect(open).toMatchObject({ policy: 'open', publishers: [] });
  });

  it('replaces the entry of the same key, whatever its letter case, and keeps the others', () => {
    const other = publisherEntry('B'.repeat(40), ['*']);
    const before = withTrustedPublisher(withTrustedPublisher(open, publisherEntry('a'.repeat(40))), other);
    const config = withTrustedPublisher(before, publisherEntry('A'.repeat(40), ['acme-new-*']));
    expect(config.publishers.map((p) => [p.fingerprint, p.names])).toEqual([
      ['B'.repeat(40), ['*']],
      ['A'.repeat(40), ['acme-new-*']],
    ]);
  });

  it('keeps a label, and checks the entry as a stored config is', () => {
    const labelled = { ...publisherEntry('C'.repeat(40)), label: 'Acme <release@acme.example>' };
    expect(withTrustedPublisher(open, labelled).publishers).toEqual([labelled]);
    const bad = publisherEntry('C'.repeat(40), []);
    expect(() => withTrustedPublisher(open, bad)).toThrow(ConfigError);
    expect(() => withTrustedPublisher(open, bad)).toThrow(
      expect.objectContaining({
        code: 'CONFIG_INVALID',
        message: expect.stringContaining('/publishers/0/names'),
      }),
    );
  });
});
