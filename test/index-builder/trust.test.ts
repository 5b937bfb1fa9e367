import { describe, expect, it } from 'vitest';
import { parseRegistryConfig } from '../../index-builder/config.ts';
import { authorizePublisher } from '../../index-builder/trust.ts';

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
