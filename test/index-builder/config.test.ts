import { describe, expect, it } from 'vitest';
import {
  DEFAULT_SNAPSHOT_TTL_SECONDS,
  MAX_SNAPSHOT_TTL_SECONDS,
  parseRegistryConfig,
  type TrustedPublisher,
  withDeployedTrustList,
  withOperator,
  withTrustedPublisher,
} from '../../index-builder/config.ts';
import { ConfigError } from '../../index-builder/errors.ts';

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

  it('takes a snapshot lifetime up to ten years, whose expiry is still an RFC 3339 time', () => {
    const config = parseRegistryConfig({
      name: 'r',
      url: 'https://r',
      snapshotTtlSeconds: MAX_SNAPSHOT_TTL_SECONDS,
    });
    const expires = new Date(Date.now() + config.snapshotTtlSeconds * 1000).toISOString();
    expect(expires).toMatch(/^[0-9]{4}-[0-9]{2}-[0-9]{2}T/);
  });

  it.each([
    [{ url: 'https://r.example.com' }, '/name'],
    [{ name: 'r', url: 'ftp://r.example.com' }, '/url'],
    [{ name: 'r', url: 'not a url' }, '/url'],
    [{ name: 'r', url: 'https://r', policy: 'anyone' }, '/policy'],
    [{ name: 'r', url: 'https://r', ownership: 'last-come' }, '/ownership'],
    [{ name: 'r', url: 'https://r', snapshotTtlSeconds: 5 }, '/snapshotTtlSeconds'],
    // Past Date's range: every publish threw a RangeError at the snapshot's expiry.
    [{ name: 'r', url: 'https://r', snapshotTtlSeconds: 1e13 }, '/snapshotTtlSeconds'],
    [
      { name: 'r', url: 'https://r', snapshotTtlSeconds: MAX_SNAPSHOT_TTL_SECONDS + 1 },
      '/snapshotTtlSeconds',
    ],
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

describe('when the registry URL carries credentials, a query or a fragment', () => {
  // The URL is signed into every published document (index.json, snapshot.json, each rotation): a token in
  // it was published to everyone, and the client refuses to read a URL with credentials anyway.
  it.each([
    ['a user and password', 'https://deploy:s3cr3t-token@r.example.com'],
    ['a user name alone', 'https://s3cr3t-token@r.example.com/'],
    ['a query', 'https://r.example.com/?token=s3cr3t-token'],
    ['a fragment', 'https://r.example.com/#s3cr3t-token'],
    // No URL parser takes these (a port out of range, a space in the host, an unclosed IPv6 bracket, no
    // scheme): "found" echoed them whole, credentials and query with them.
    ['credentials, and a port out of range', 'https://deploy:s3cr3t-token@r.example.com:99999'],
    ['a user name alone, and a space in the host', 'https://s3cr3t-token@r.exa mple.com'],
    ['credentials, and an unclosed IPv6 bracket', 'https://deploy:s3cr3t-token@[::1/reg'],
    ['credentials and a query, and no scheme', '//deploy:s3cr3t-token@r.example.com/?t=s3cr3t-token'],
  ])('rejects one with %s naming /url, the secret not in the message', (_, url) => {
    expect(() => parseRegistryConfig({ name: 'r', url })).toThrow(
      expect.objectContaining({
        name: 'ConfigError',
        code: 'CONFIG_INVALID',
        message: expect.stringContaining('/url'),
      }),
    );
    expect(() => parseRegistryConfig({ name: 'r', url })).toThrow(
      expect.objectContaining({ message: expect.not.stringContaining('s3cr3t') }),
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

  it("names every operator: the deployed ones, or none, never the config object's", () => {
    const stored = parseRegistryConfig({
      name: 'r',
      url: 'https://r.example.com',
      operators: [{ fingerprint: 'C'.repeat(40), key: 'k' }],
    });
    const list = [publisherEntry('A'.repeat(40))];
    expect(withDeployedTrustList(stored, list).operators).toEqual([]);
    const deployed = [{ fingerprint: 'D'.repeat(40), key: 'k', label: 'ops' }];
    expect(parseRegistryConfig(withDeployedTrustList(stored, list, deployed)).operators).toEqual(deployed);
  });
});

describe("when a registry names its operator's keys", () => {
  const open = parseRegistryConfig({ name: 'r', url: 'https://r.example.com' });
  const REGISTRY = ['E'.repeat(40), 'F'.repeat(40)];
  const keyOf = (fingerprint: string, subkey = '0'.repeat(40)) => ({
    fingerprint,
    fingerprints: [fingerprint, subkey],
    armored: `key ${fingerprint}`,
  });

  it('adds a key (replacing its earlier entry) and leaves the policy alone', () => {
    expect(open.operators).toEqual([]);
    const once = withOperator(open, { key: keyOf('a'.repeat(40)), label: 'first' }, REGISTRY);
    const config = withOperator(once, { key: keyOf('A'.repeat(40)) }, REGISTRY);
    expect(config).toEqual({
      ...open,
      operators: [{ fingerprint: 'A'.repeat(40), key: `key ${'A'.repeat(40)}` }],
    });
  });

  it("refuses the registry's key, by any of its subkeys", () => {
    const add = () => withOperator(open, { key: keyOf('C'.repeat(40), REGISTRY[1]) }, REGISTRY);
    expect(add).toThrow(ConfigError);
    expect(add).toThrow(expect.objectContaining({ code: 'CONFIG_REGISTRY_KEY_AS_OPERATOR' }));
  });

  it.each([
    [{ operators: 'x' }, '/operators'],
    [{ operators: [{ key: 'k' }] }, '/operators/0/fingerprint'],
    [{ operators: [{ fingerprint: 'A'.repeat(40) }] }, '/operators/0/key'],
    [{ operators: [{ fingerprint: 'A'.repeat(40), key: 'k', label: 1 }] }, '/operators/0/label'],
  ])('refuses %j naming %s', (extra, pointer) => {
    const parse = () => parseRegistryConfig({ name: 'r', url: 'https://r.example.com', ...extra });
    expect(parse).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining(pointer) }),
    );
  });
});

describe('when an operator trusts a publisher', () => {
  const open = parseRegistryConfig({ name: 'r', url: 'https://r.example.com' });
  const REGISTRY = ['E'.repeat(40), 'F'.repeat(40)];
  const keyOf = (fingerprint: string, subkey = '0'.repeat(40)) => ({
    fingerprint,
    fingerprints: [fingerprint, subkey],
    armored: `key ${fingerprint}`,
  });

  it('adds the key for its names and makes the registry restricted', () => {
    const config = withTrustedPublisher(open, { key: keyOf('A'.repeat(40)), names: ['acme-*'] }, REGISTRY);
    expect(config).toEqual({
      ...open,
      policy: 'restricted',
      publishers: [{ fingerprint: 'A'.repeat(40), names: ['acme-*'], key: `key ${'A'.repeat(40)}` }],
    });
    expect(open).toMatchObject({ policy: 'open', publishers: [] });
  });

  it('replaces the entry of the same key, whatever its letter case, and keeps the others', () => {
    const first = withTrustedPublisher(open, { key: keyOf('a'.repeat(40)), names: ['acme-*'] }, REGISTRY);
    const before = withTrustedPublisher(first, { key: keyOf('B'.repeat(40)), names: ['*'] }, REGISTRY);
    const config = withTrustedPublisher(
      before,
      { key: keyOf('A'.repeat(40)), names: ['acme-new-*'] },
      REGISTRY,
    );
    expect(config.publishers.map((p) => [p.fingerprint, p.names])).toEqual([
      ['B'.repeat(40), ['*']],
      ['A'.repeat(40), ['acme-new-*']],
    ]);
  });

  it('keeps a label, and checks the entry as a stored config is', () => {
    const label = 'Acme <release@acme.example>';
    const labelled = withTrustedPublisher(
      open,
      { key: keyOf('C'.repeat(40)), names: ['*'], label },
      REGISTRY,
    );
    expect(labelled.publishers[0]?.label).toBe(label);
    const bad = () => withTrustedPublisher(open, { key: keyOf('C'.repeat(40)), names: [] }, REGISTRY);
    expect(bad).toThrow(ConfigError);
    expect(bad).toThrow(
      expect.objectContaining({
        code: 'CONFIG_INVALID',
        message: expect.stringContaining('/publishers/0/names'),
      }),
    );
  });

  it('never trusts the registry signing key, by its primary key or any subkey', () => {
    for (const key of [keyOf('E'.repeat(40)), keyOf('D'.repeat(40), 'F'.repeat(40))]) {
      const trust = () => withTrustedPublisher(open, { key, names: ['*'] }, REGISTRY);
      expect(trust).toThrow(ConfigError);
      expect(trust).toThrow(expect.objectContaining({ code: 'CONFIG_REGISTRY_KEY_AS_PUBLISHER' }));
    }
  });
});
