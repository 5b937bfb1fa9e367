import { describe, expect, it } from 'vitest';
import { DEFAULT_SNAPSHOT_TTL_SECONDS, parseRegistryConfig } from '../index-builder/config.ts';
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
