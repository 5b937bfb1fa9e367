import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { digestOf, sha256Base64, sha256Hex, streamSha256 } from '../../index-builder/digest.ts';

const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

async function* chunksOf(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.byteLength; at += size) yield bytes.subarray(at, at + size);
}

describe('when hashing bytes', () => {
  it('gives the SHA-256 as lowercase hex', () => {
    expect(sha256Hex(new Uint8Array())).toBe(EMPTY_SHA256);
    expect(sha256Hex(new TextEncoder().encode('abc'))).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
  });

  it('hashes a string as its UTF-8 bytes', () => {
    const name = 'plügin-ß';
    expect(sha256Hex(name)).toBe(sha256Hex(new TextEncoder().encode(name)));
  });

  it('gives a document its digest and size together', () => {
    const body = new TextEncoder().encode('{"a":1}\n');
    expect(digestOf(body)).toEqual({ sha256: sha256Hex(body), size: 8 });
  });

  it('gives the base64 form a CSP hash source takes', () => {
    expect(sha256Base64('abc')).toBe(createHash('sha256').update('abc').digest('base64'));
  });
});

describe('when hashing a stream', () => {
  it('gives the same digest as the bytes in one piece, however they are cut', async () => {
    const bytes = new Uint8Array(100_003).map((_, i) => (i * 7) & 0xff);
    for (const size of [1, 4096, 65_536, 200_000])
      expect(await streamSha256(chunksOf(bytes, size))).toBe(sha256Hex(bytes));
  });

  it('gives the empty digest for an empty stream', async () => {
    expect(await streamSha256(chunksOf(new Uint8Array(), 1))).toBe(EMPTY_SHA256);
  });
});
