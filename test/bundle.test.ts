import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { checkBundleFiles, readBundle, writeBundle } from '../index-builder/bundle.ts';
import { SubmissionError } from '../index-builder/errors.ts';
import type { Manifest } from '../index-builder/model.ts';
import { encode, type RawEntry, rawTar as tarOf, validManifest } from './support/fixtures.ts';

const manifestEntry: RawEntry = { name: 'manifest.json', body: JSON.stringify(validManifest()) };

async function problemCodes(bytes: Uint8Array, limits = {}): Promise<string[]> {
  const error = await readBundle(bytes, limits).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SubmissionError);
  return (error as SubmissionError).problems.map((p) => p.code);
}

describe('when reading a well-formed bundle', () => {
  it('separates the manifest, its signature, the publisher key and the other files', async () => {
    const bytes = await writeBundle([
      { path: 'manifest.json', body: encode('{}') },
      { path: 'manifest.json.asc', body: encode('sig') },
      { path: 'publisher.asc', body: encode('key') },
      { path: 'artifacts/linux-amd64/tool', body: encode('bin') },
    ]);
    const contents = await readBundle(bytes);
    expect(contents.manifestName).toBe('manifest.json');
    expect(new TextDecoder().decode(contents.signature)).toBe('sig');
    expect(new TextDecoder().decode(contents.publisherKey)).toBe('key');
    expect([...contents.files.keys()]).toEqual(['artifacts/linux-amd64/tool']);
  });

  it('writes the same bytes for the same inputs, in any order', async () => {
    const a = await writeBundle([
      { path: 'b', body: encode('2') },
      { path: 'manifest.json', body: encode('1') },
    ]);
    const b = await writeBundle([
      { path: 'manifest.json', body: encode('1') },
      { path: 'b', body: encode('2') },
    ]);
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
  });

  it('normalizes ./ prefixes and ignores folders', async () => {
    const contents = await readBundle(
      await tarOf([
        { name: './manifest.yaml', body: 'name: x' },
        { name: './artifacts/', type: 'directory' },
      ]),
    );
    expect(contents.manifestName).toBe('manifest.yaml');
    expect(contents.files.size).toBe(0);
  });

  it('leaves a missing signature for the trust check to report', async () => {
    const contents = await readBundle(await tarOf([manifestEntry]));
    expect(contents.signature).toBeUndefined();
  });
});

describe('when the archive is hostile', () => {
  it.each([
    ['parent traversal', '../x', 'BUNDLE_UNSAFE_PATH'],
    ['nested traversal', 'a/../../x', 'BUNDLE_UNSAFE_PATH'],
    ['an absolute path', '/etc/passwd', 'BUNDLE_UNSAFE_PATH'],
    ['a backslash', 'a\\..\\x', 'BUNDLE_UNSAFE_PATH'],
    ['a drive letter', 'C:/x', 'BUNDLE_UNSAFE_PATH'],
  ])('rejects %s', async (_label, name, code) => {
    expect(await problemCodes(await tarOf([manifestEntry, { name, body: 'x' }]))).toContain(code);
  });

  it.each<[NonNullable<RawEntry['type']>, string]>([
    ['symlink', 'BUNDLE_LINK_ENTRY'],
    ['link', 'BUNDLE_LINK_ENTRY'],
    ['character-device', 'BUNDLE_SPECIAL_ENTRY'],
    ['block-device', 'BUNDLE_SPECIAL_ENTRY'],
    ['fifo', 'BUNDLE_SPECIAL_ENTRY'],
  ])('rejects a %s entry', async (type, code) => {
    expect(
      await problemCodes(await tarOf([manifestEntry, { name: 'odd', type, linkname: 'manifest.json' }])),
    ).toEqual([code]);
  });

  it('rejects duplicates, also those that differ only by case', async () => {
    expect(
      await problemCodes(await tarOf([manifestEntry, { name: 'a', body: '1' }, { name: 'a', body: '2' }])),
    ).toEqual(['BUNDLE_DUPLICATE_ENTRY']);
    expect(
      await problemCodes(
        await tarOf([manifestEntry, { name: 'Tool', body: '1' }, { name: 'tool', body: '2' }]),
      ),
    ).toEqual(['BUNDLE_DUPLICATE_ENTRY']);
  });

  it('reports every problem at once', async () => {
    const codes = await problemCodes(
      await tarOf([
        manifestEntry,
        { name: '../a', body: '1' },
        { name: 'l', type: 'symlink', linkname: '/' },
      ]),
    );
    expect(codes).toEqual(['BUNDLE_UNSAFE_PATH', 'BUNDLE_LINK_ENTRY']);
  });

  it('caps entries, entry size, compressed size and inflated size', async () => {
    expect(
      await problemCodes(await tarOf([manifestEntry, { name: 'a' }, { name: 'b' }]), { maxEntries: 2 }),
    ).toEqual(['BUNDLE_TOO_MANY_ENTRIES']);
    expect(
      await problemCodes(await tarOf([manifestEntry, { name: 'big', body: 'x'.repeat(5000) }]), {
        maxEntryBytes: 2000,
      }),
    ).toEqual(['BUNDLE_ENTRY_TOO_LARGE']);
    const bytes = await tarOf([manifestEntry]);
    expect(await problemCodes(bytes, { maxCompressedBytes: 10 })).toEqual(['BUNDLE_TOO_LARGE']);
    expect(await problemCodes(bytes, { maxUncompressedBytes: 100 })).toEqual(['BUNDLE_DECOMPRESSION_LIMIT']);
  });

  it('stops a compression bomb without inflating it', async () => {
    const bomb = new Uint8Array(gzipSync(Buffer.alloc(256 * 1024 * 1024)));
    const started = performance.now();
    expect(await problemCodes(bomb)).toEqual(['BUNDLE_DECOMPRESSION_LIMIT']);
    expect(performance.now() - started).toBeLessThan(5000);
  });

  it('rejects what is not a gzipped tar', async () => {
    expect(await problemCodes(encode('plain text, not gzip at all'))).toEqual(['BUNDLE_NOT_GZIP']);
    expect(await problemCodes(await tarOf([manifestEntry], false))).toEqual(['BUNDLE_NOT_GZIP']);
    expect(
      await problemCodes(new Uint8Array(gzipSync(Buffer.from('not a tar archive, just text'.repeat(40))))),
    ).toEqual(['BUNDLE_CORRUPT']);
    const whole = await tarOf([manifestEntry]);
    expect(await problemCodes(whole.slice(0, whole.length - 12))).toEqual(['BUNDLE_CORRUPT']);
  });

  it('needs exactly one manifest', async () => {
    expect(await problemCodes(await tarOf([{ name: 'readme', body: 'x' }]))).toEqual([
      'BUNDLE_MISSING_MANIFEST',
    ]);
    expect(await problemCodes(await tarOf([manifestEntry, { name: 'manifest.yaml', body: 'a: 1' }]))).toEqual(
      ['BUNDLE_MULTIPLE_MANIFESTS'],
    );
  });
});

describe('when matching files to the manifest', () => {
  const manifest = validManifest({
    installation: {
      artifacts: [
        {
          os: 'linux',
          arch: 'amd64',
          file: 'artifacts/linux-amd64/tool',
          sha256: 'a'.repeat(64),
          size_bytes: 1,
        },
        {
          os: 'linux',
          arch: 'arm64',
          url: 'https://dl.example.com/tool',
          sha256: 'a'.repeat(64),
          size_bytes: 1,
        },
      ],
    },
  }) as unknown as Manifest;

  it('accepts exactly the named files', async () => {
    const contents = await readBundle(
      await writeBundle([
        { path: 'manifest.json', body: encode('{}') },
        { path: 'artifacts/linux-amd64/tool', body: encode('x') },
      ]),
    );
    expect(checkBundleFiles(contents, manifest)).toEqual([]);
  });

  it('reports files nobody named and named files that are missing', async () => {
    const contents = await readBundle(
      await writeBundle([
        { path: 'manifest.json', body: encode('{}') },
        { path: 'extra.sh', body: encode('x') },
      ]),
    );
    expect(checkBundleFiles(contents, manifest).map((p) => `${p.code} ${p.path}`)).toEqual([
      'BUNDLE_UNEXPECTED_FILE bundle:extra.sh',
      'BUNDLE_MISSING_ARTIFACT /installation/artifacts/0/file',
    ]);
  });
});
