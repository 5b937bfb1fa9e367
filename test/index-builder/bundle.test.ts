import { execFileSync } from 'node:child_process';
import { gunzipSync, gzipSync } from 'node:zlib';
import { describe, expect, it, vi } from 'vitest';
import { type BundleLimits, checkBundleFiles, readBundle, writeBundle } from '../../index-builder/bundle.ts';
import { type Problem, SubmissionError } from '../../index-builder/errors.ts';
import type { Manifest } from '../../index-builder/model.ts';
import { encode, type RawEntry, rawTar as tarOf, validManifest } from '../support/fixtures.ts';

/** Each gunzip the bundle reader asks for: the output bound it gives zlib, and the bytes it got back. */
const inflations = vi.hoisted(() => [] as { bound?: number; inflated?: number }[]);
vi.mock('node:zlib', async (importOriginal) => {
  const zlib = await importOriginal<typeof import('node:zlib')>();
  const gunzip = (...args: Parameters<typeof zlib.gunzipSync>) => {
    const entry: { bound?: number; inflated?: number } = { bound: args[1]?.maxOutputLength };
    inflations.push(entry);
    const out = zlib.gunzipSync(...args) as Buffer | { buffer: Buffer };
    entry.inflated = Buffer.isBuffer(out) ? out.byteLength : out.buffer.byteLength;
    return out;
  };
  return { ...zlib, default: { ...zlib, gunzipSync: gunzip }, gunzipSync: gunzip };
});

const manifestEntry: RawEntry = { name: 'manifest.json', body: JSON.stringify(validManifest()) };
const decode = (bytes: Uint8Array | undefined): string => new TextDecoder().decode(bytes);

/** The problems readBundle rejects with; fails the test when it resolves or throws anything else. */
async function problemsOf(
  bytes: Uint8Array,
  limits: Partial<BundleLimits> = {},
): Promise<readonly Problem[]> {
  const error = await readBundle(bytes, limits).then(
    () => {
      throw new Error('expected readBundle to reject, but it resolved');
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SubmissionError);
  expect(error).toMatchObject({ code: 'INVALID_SUBMISSION' });
  return (error as SubmissionError).problems;
}

async function problemCodes(bytes: Uint8Array, limits: Partial<BundleLimits> = {}): Promise<string[]> {
  return (await problemsOf(bytes, limits)).map((p) => p.code);
}

/** Deterministic noise (xorshift32), so a failure can be replayed. */
function noise(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed;
  for (let i = 0; i < length; i += 1) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

describe('when reading a well-formed bundle', () => {
  it('separates the manifest, its signature, the publisher key and the other files', async () => {
    // Prepare
    const bytes = await writeBundle([
      { path: 'manifest.json', body: encode('{}') },
      { path: 'manifest.json.asc', body: encode('sig') },
      { path: 'publisher.asc', body: encode('key') },
      { path: 'artifacts/linux-amd64/tool', body: encode('bin') },
      { path: 'artifacts/darwin-arm64/tool', body: new Uint8Array([0, 1, 2, 255]) },
    ]);
    // Act
    const contents = await readBundle(bytes);
    // Assess
    expect(contents.manifestName).toBe('manifest.json');
    expect(decode(contents.manifest)).toBe('{}');
    expect(decode(contents.signature)).toBe('sig');
    expect(decode(contents.publisherKey)).toBe('key');
    expect([...contents.files.keys()].sort()).toEqual([
      'artifacts/darwin-arm64/tool',
      'artifacts/linux-amd64/tool',
    ]);
    expect(decode(contents.files.get('artifacts/linux-amd64/tool'))).toBe('bin');
    expect([...(contents.files.get('artifacts/darwin-arm64/tool') ?? [])]).toEqual([0, 1, 2, 255]);
  });

  it('round-trips a large artifact byte for byte', async () => {
    const body = noise(3 * 1024 * 1024 + 17, 7);
    const contents = await readBundle(
      await writeBundle([
        { path: 'manifest.json', body: encode('{}') },
        { path: 'artifacts/linux-amd64/tool', body },
      ]),
    );
    expect(Buffer.from(contents.files.get('artifacts/linux-amd64/tool') ?? []).equals(body)).toBe(true);
  });

  it('reads the same files whatever size the gzip trailer states, which only sizes its buffers', async () => {
    const entries = [
      { path: 'manifest.json', body: encode('{}') },
      { path: 'artifacts/linux-amd64/tool', body: noise(200_000, 11) },
    ];
    const bytes = await writeBundle(entries);
    const tar = gunzipSync(bytes);
    // Two gzip members: the trailer at the end states the size of the last one only (512 bytes).
    const split = tar.byteLength - 512;
    const twoMembers = Buffer.concat([gzipSync(tar.subarray(0, split)), gzipSync(tar.subarray(split))]);

    for (const upload of [bytes, new Uint8Array(twoMembers)]) {
      const contents = await readBundle(upload);
      expect(decode(contents.manifest)).toBe('{}');
      const tool = contents.files.get('artifacts/linux-amd64/tool') ?? new Uint8Array(0);
      expect(Buffer.from(tool).equals(entries[1]?.body ?? new Uint8Array(1))).toBe(true);
    }
  });

  it('pairs a YAML manifest with its own signature only', async () => {
    const contents = await readBundle(
      await writeBundle([
        { path: 'manifest.yml', body: encode('name: x') },
        { path: 'manifest.yml.asc', body: encode('sig') },
        { path: 'manifest.json.asc', body: encode('stray') },
      ]),
    );
    expect(contents.manifestName).toBe('manifest.yml');
    expect(decode(contents.signature)).toBe('sig');
    expect(contents.publisherKey).toBeUndefined();
    expect([...contents.files.keys()]).toEqual(['manifest.json.asc']);
  });

  it('writes the same bytes for the same inputs, twice and in any order', async () => {
    const entries = [
      { path: 'manifest.json', body: encode('1') },
      { path: 'b', body: encode('2') },
      { path: 'a/c', body: encode('3') },
    ];
    const a = await writeBundle(entries);
    const b = await writeBundle(entries);
    const c = await writeBundle([...entries].reverse());
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
    expect(Buffer.from(a).equals(Buffer.from(c))).toBe(true);
    // The gzip header says "unknown OS", not the platform zlib was built for.
    expect(a[9]).toBe(0xff);
  });

  it('normalizes ./ prefixes and ignores folders, the root folder included', async () => {
    // What `tar -czf bundle.tgz -C dir .` writes.
    const contents = await readBundle(
      await tarOf([
        { name: './', type: 'directory' },
        { name: './manifest.yaml', body: 'name: x' },
        { name: './manifest.yaml.asc', body: 'sig' },
        { name: './artifacts/', type: 'directory' },
        { name: '././artifacts/tool', body: 'bin' },
      ]),
    );
    expect(contents.manifestName).toBe('manifest.yaml');
    expect(decode(contents.signature)).toBe('sig');
    expect([...contents.files.keys()]).toEqual(['artifacts/tool']);
  });

  it('leaves a missing signature for the trust check to report', async () => {
    const contents = await readBundle(await tarOf([manifestEntry]));
    expect(contents.signature).toBeUndefined();
  });

  it('keeps the default for a limit passed as undefined', async () => {
    const many = Array.from({ length: 300 }, (_, i) => ({ name: `f${i}`, body: 'x' }));
    await expect(
      readBundle(await tarOf([manifestEntry, ...many]), { maxEntries: undefined }),
    ).rejects.toMatchObject({ problems: [expect.objectContaining({ code: 'BUNDLE_TOO_MANY_ENTRIES' })] });
  });
});

describe('when an entry name is unsafe', () => {
  it.each([
    ['parent traversal', '../x'],
    ['a bare parent', '..'],
    ['nested traversal', 'a/../../x'],
    ['an absolute path', '/etc/passwd'],
    ['a backslash', 'a\\..\\x'],
    ['a drive letter', 'C:/x'],
    ['a drive-relative path', 'c:x'],
    ['an empty segment', 'a//b'],
    ['a "." segment', 'a/./b'],
    ['a newline', 'a\nb'],
    ['a DEL character', 'a\u007fb'],
    ['a bidi override', 'tool\u202Eexe.sh'],
    ['a zero-width space', 'to\u200Bol'],
    ['a name over 255 characters', `artifacts/${'x'.repeat(250)}`],
  ])('rejects %s', async (_label, name) => {
    await expect(readBundle(await tarOf([manifestEntry, { name, body: 'x' }]))).rejects.toMatchObject({
      problems: [expect.objectContaining({ code: 'BUNDLE_UNSAFE_PATH' })],
    });
  });

  it('rejects a file whose name ends in a slash, which readers take for a file or a folder', async () => {
    expect(await problemCodes(await tarOf([manifestEntry, { name: 'a/', body: 'x' }]))).toEqual([
      'BUNDLE_AMBIGUOUS_ARCHIVE',
    ]);
  });

  it('rejects a NUL smuggled in through a pax header', async () => {
    const problems = await problemsOf(
      await tarOf([
        { name: 'manifest.json', body: '{}', pax: true },
        { name: 'tool\u0000.txt', body: 'x', pax: true },
      ]),
    );
    expect(problems).toEqual([
      expect.objectContaining({ code: 'BUNDLE_UNSAFE_PATH', message: expect.stringContaining('NUL') }),
    ]);
  });

  it('reports the entry by name, escaped so it cannot forge a log line', async () => {
    const problems = await problemsOf(
      await tarOf([manifestEntry, { name: '../x', body: '1' }, { name: 'a\nINFO published', body: '2' }]),
    );
    expect(problems.map((p) => p.path)).toEqual(['bundle:../x', 'bundle:a\\u{A}INFO published']);
  });

  it('accepts a name of exactly 255 characters', async () => {
    const name = `artifacts/${'x'.repeat(245)}`;
    const contents = await readBundle(await tarOf([manifestEntry, { name, body: 'x' }]));
    expect(contents.files.has(name)).toBe(true);
  });
});

describe('when an entry is not a regular file', () => {
  it.each<[NonNullable<RawEntry['type']>, string]>([
    ['symlink', 'BUNDLE_LINK_ENTRY'],
    ['link', 'BUNDLE_LINK_ENTRY'],
    ['character-device', 'BUNDLE_SPECIAL_ENTRY'],
    ['block-device', 'BUNDLE_SPECIAL_ENTRY'],
    ['fifo', 'BUNDLE_SPECIAL_ENTRY'],
  ])('rejects a %s entry', async (type, code) => {
    const bytes = await tarOf([manifestEntry, { name: 'odd', type, linkname: 'manifest.json' }]);
    await expect(readBundle(bytes)).rejects.toBeInstanceOf(SubmissionError);
    expect(await problemCodes(bytes)).toEqual([code]);
  });

  it('names the link target in the message', async () => {
    const problems = await problemsOf(
      await tarOf([manifestEntry, { name: 'l', type: 'symlink', linkname: '/etc/passwd' }]),
    );
    expect(problems).toEqual([
      expect.objectContaining({
        code: 'BUNDLE_LINK_ENTRY',
        path: 'bundle:l',
        message: expect.stringContaining('/etc/passwd'),
      }),
    ]);
  });
});

describe('when two entries land on the same path', () => {
  it.each([
    ['the same name twice', 'a', 'a'],
    ['names that differ only by case', 'Tool', 'tool'],
    ['a name with and without ./', './a', 'a'],
    ['composed and decomposed accents', 'caf\u00e9', 'cafe\u0301'],
  ])('rejects %s', async (_label, first, second) => {
    expect(
      await problemCodes(
        await tarOf([manifestEntry, { name: first, body: '1' }, { name: second, body: '2' }]),
      ),
    ).toEqual(['BUNDLE_DUPLICATE_ENTRY']);
  });

  it('rejects a path that is both a file and a folder', async () => {
    const problems = await problemsOf(
      await tarOf([manifestEntry, { name: 'artifacts', body: '1' }, { name: 'artifacts/tool', body: '2' }]),
    );
    expect(problems).toEqual([
      expect.objectContaining({ code: 'BUNDLE_DUPLICATE_ENTRY', path: 'bundle:artifacts' }),
    ]);
    const explicit = await problemsOf(
      await tarOf([manifestEntry, { name: 'Tool/', type: 'directory' }, { name: 'tool', body: '1' }]),
    );
    expect(explicit.map((p) => p.code)).toEqual(['BUNDLE_DUPLICATE_ENTRY']);
  });

  it('rejects a second manifest.json as a duplicate', async () => {
    expect(await problemCodes(await tarOf([manifestEntry, manifestEntry]))).toEqual([
      'BUNDLE_DUPLICATE_ENTRY',
    ]);
  });
});

describe('when the bundle breaks a limit', () => {
  it('rejects too many entries', async () => {
    expect(
      await problemCodes(await tarOf([manifestEntry, { name: 'a' }, { name: 'b' }]), { maxEntries: 2 }),
    ).toEqual(['BUNDLE_TOO_MANY_ENTRIES']);
  });

  it('rejects an entry that is too large', async () => {
    const problems = await problemsOf(await tarOf([manifestEntry, { name: 'big', body: 'x'.repeat(5000) }]), {
      maxEntryBytes: 2000,
    });
    expect(problems).toEqual([
      expect.objectContaining({ code: 'BUNDLE_ENTRY_TOO_LARGE', path: 'bundle:big', found: '5000 bytes' }),
    ]);
  });

  it('rejects an upload that is too large before looking inside', async () => {
    const problems = await problemsOf(await tarOf([manifestEntry]), { maxCompressedBytes: 10 });
    expect(problems).toEqual([expect.objectContaining({ code: 'BUNDLE_TOO_LARGE', path: 'bundle:' })]);
    // Not even the gzip magic is checked first.
    expect(await problemCodes(encode('x'.repeat(11)), { maxCompressedBytes: 10 })).toEqual([
      'BUNDLE_TOO_LARGE',
    ]);
  });

  it('rejects a tar that inflates past the absolute cap', async () => {
    const problems = await problemsOf(await tarOf([manifestEntry]), { maxUncompressedBytes: 100 });
    expect(problems).toEqual([
      expect.objectContaining({ code: 'BUNDLE_DECOMPRESSION_LIMIT', path: 'bundle:' }),
    ]);
  });

  it('rejects a tar that inflates past the ratio cap, beyond the first MiB', async () => {
    const zeros = await tarOf([manifestEntry, { name: 'zeros', body: new Uint8Array(4 * 1024 * 1024) }]);
    expect(await problemCodes(zeros, { maxRatio: 10 })).toEqual(['BUNDLE_DECOMPRESSION_LIMIT']);
    // Under a MiB, any ratio is fine.
    const small = await tarOf([manifestEntry, { name: 'zeros', body: new Uint8Array(512 * 1024) }]);
    expect((await readBundle(small, { maxRatio: 1 })).files.get('zeros')?.byteLength).toBe(512 * 1024);
  });

  it('stops a 64 MiB compression bomb at its bound, not once inflated, with small limits and with the defaults', async () => {
    const bomb = await tarOf([manifestEntry, { name: 'zeros', body: new Uint8Array(64 * 1024 * 1024) }]);
    inflations.length = 0;
    expect(await problemCodes(bomb, { maxUncompressedBytes: 8 * 1024 * 1024 })).toEqual([
      'BUNDLE_DECOMPRESSION_LIMIT',
    ]);
    expect(await problemCodes(bomb)).toEqual(['BUNDLE_DECOMPRESSION_LIMIT']);
    // zlib is told where to stop (the cap, and by default 200 times the upload) and stops there: nothing
    // comes back whole from it, where inflating first and measuring after took all 64 MiB each time.
    expect(inflations).toEqual([
      { bound: 8 * 1024 * 1024 },
      { bound: expect.toSatisfy((bound: number) => bound <= bomb.byteLength * 200) },
    ]);
  });
});

describe('when the bytes are not a gzipped tar', () => {
  it('rejects what is not gzip at all', async () => {
    expect(await problemCodes(encode('plain text, not gzip at all'))).toEqual(['BUNDLE_NOT_GZIP']);
    expect(await problemCodes(new Uint8Array())).toEqual(['BUNDLE_NOT_GZIP']);
    expect(await problemCodes(await tarOf([manifestEntry], false))).toEqual(['BUNDLE_NOT_GZIP']);
    expect(await problemCodes(noise(4096, 42))).toEqual(['BUNDLE_NOT_GZIP']);
  });

  it('rejects random bytes behind the gzip magic', async () => {
    const bytes = noise(4096, 1234);
    bytes.set([0x1f, 0x8b, 0x08, 0x00], 0);
    expect(await problemCodes(bytes)).toEqual(['BUNDLE_CORRUPT']);
  });

  it('rejects gzip that does not hold a tar', async () => {
    const text = new Uint8Array(gzipSync(Buffer.from('not a tar archive, just text'.repeat(40))));
    expect(await problemCodes(text)).toEqual(['BUNDLE_CORRUPT']);
    const short = new Uint8Array(gzipSync(Buffer.from('too short for a tar header')));
    expect(await problemCodes(short)).toEqual(['BUNDLE_CORRUPT']);
  });

  it('rejects a truncated gzip stream', async () => {
    const whole = await tarOf([manifestEntry]);
    expect(await problemCodes(whole.slice(0, whole.length - 12))).toEqual(['BUNDLE_CORRUPT']);
    expect(await problemCodes(whole.slice(0, 12))).toEqual(['BUNDLE_CORRUPT']);
  });

  it('rejects bytes after the gzip stream', async () => {
    const whole = await tarOf([manifestEntry]);
    expect(await problemCodes(Buffer.concat([whole, encode('trailing garbage')]))).toEqual([
      'BUNDLE_CORRUPT',
    ]);
  });

  it('rejects a gzip member behind zero padding, which Python reads and zlib and GNU gzip stop before', async () => {
    // Prepare: a manifest in a tar left open (no end blocks), zero padding, then a member with another file.
    const tar = await tarOf([manifestEntry], false);
    let end = tar.length;
    while (end >= 512 && tar.subarray(end - 512, end).every((b) => b === 0)) end -= 512;
    const hidden = await tarOf([{ name: 'hidden.txt', body: 'hidden' }], false);
    const bytes = Buffer.concat([gzipSync(tar.subarray(0, end)), Buffer.alloc(8), gzipSync(hidden)]);
    const python = execFileSync(
      '/usr/bin/python3',
      [
        '-c',
        'import io, sys, tarfile; print(tarfile.open(fileobj=io.BytesIO(sys.stdin.buffer.read())).getnames())',
      ],
      { input: bytes },
    );
    expect(python.toString()).toBe("['manifest.json', 'hidden.txt']\n");

    // Act, Assess: Node's zlib stops at the first zero byte after a member, so only the manifest was read.
    expect(await problemCodes(bytes)).toEqual(['BUNDLE_AMBIGUOUS_ARCHIVE']);
  });

  it('accepts zero padding after the gzip stream, which every reader skips', async () => {
    const whole = await tarOf([manifestEntry]);
    const contents = await readBundle(Buffer.concat([whole, Buffer.alloc(100)]));
    expect(contents.manifestName).toBe('manifest.json');
    expect([...contents.files.keys()]).toEqual([]);
  });

  it('rejects a tar cut off inside a header or a body, without hanging', async () => {
    const tar = await tarOf([manifestEntry, { name: 'artifact', body: 'x'.repeat(4000) }], false);
    for (const end of [300, 512 + 100, 1536 + 1000]) {
      const cut = new Uint8Array(gzipSync(tar.subarray(0, end)));
      expect(await problemCodes(cut)).toEqual(['BUNDLE_CORRUPT']);
    }
  });

  it('rejects an empty archive', async () => {
    expect(await problemCodes(await tarOf([]))).toEqual(['BUNDLE_CORRUPT']);
  });
});

describe('when the manifest is missing or ambiguous', () => {
  it('rejects a bundle without a manifest', async () => {
    const problems = await problemsOf(await tarOf([{ name: 'readme', body: 'x' }]));
    expect(problems).toEqual([expect.objectContaining({ code: 'BUNDLE_MISSING_MANIFEST', path: 'bundle:' })]);
  });

  it('rejects a manifest that is not at the top level', async () => {
    expect(await problemCodes(await tarOf([{ name: 'sub/manifest.json', body: '{}' }]))).toEqual([
      'BUNDLE_MISSING_MANIFEST',
    ]);
  });

  it('rejects JSON and YAML manifests side by side', async () => {
    expect(await problemCodes(await tarOf([manifestEntry, { name: 'manifest.yaml', body: 'a: 1' }]))).toEqual(
      ['BUNDLE_MULTIPLE_MANIFESTS'],
    );
    expect(
      await problemCodes(
        await tarOf([
          { name: 'manifest.yaml', body: 'a: 1' },
          { name: 'manifest.yml', body: 'a: 1' },
        ]),
      ),
    ).toEqual(['BUNDLE_MULTIPLE_MANIFESTS']);
  });
});

describe('when several things are wrong', () => {
  it('reports every problem at once', async () => {
    const codes = await problemCodes(
      await tarOf([
        { name: '../a', body: '1' },
        { name: 'l', type: 'symlink', linkname: '/' },
        { name: 'fifo', type: 'fifo' },
        { name: 'x', body: '1' },
        { name: 'X', body: '2' },
      ]),
    );
    expect(codes).toEqual([
      'BUNDLE_UNSAFE_PATH',
      'BUNDLE_LINK_ENTRY',
      'BUNDLE_SPECIAL_ENTRY',
      'BUNDLE_DUPLICATE_ENTRY',
      'BUNDLE_MISSING_MANIFEST',
    ]);
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
        {
          os: 'darwin',
          arch: 'arm64',
          file: 'artifacts/darwin-arm64/tool',
          sha256: 'a'.repeat(64),
          size_bytes: 1,
        },
      ],
    },
  }) as unknown as Manifest;

  async function contentsWith(...paths: string[]) {
    return readBundle(
      await writeBundle([
        { path: 'manifest.json', body: encode('{}') },
        { path: 'manifest.json.asc', body: encode('sig') },
        { path: 'publisher.asc', body: encode('key') },
        ...paths.map((path) => ({ path, body: encode('x') })),
      ]),
    );
  }

  it('accepts exactly the named files, the manifest, signature and key aside', async () => {
    const contents = await contentsWith('artifacts/linux-amd64/tool', 'artifacts/darwin-arm64/tool');
    expect(checkBundleFiles(contents, manifest)).toEqual([]);
  });

  it('reports files nobody named and named files that are missing', async () => {
    const contents = await contentsWith(
      'artifacts/linux-amd64/tool',
      'extra.sh',
      'artifacts/linux-amd64/Tool2',
    );
    expect(checkBundleFiles(contents, manifest).map((p) => `${p.code} ${p.path}`)).toEqual([
      'BUNDLE_UNEXPECTED_FILE bundle:artifacts/linux-amd64/Tool2',
      'BUNDLE_UNEXPECTED_FILE bundle:extra.sh',
      'BUNDLE_MISSING_ARTIFACT /installation/artifacts/2/file',
    ]);
  });

  it('treats every file as unexpected when the manifest names none', async () => {
    const contents = await contentsWith('artifacts/linux-amd64/tool');
    const bare = validManifest() as unknown as Manifest;
    expect(checkBundleFiles(contents, bare)).toEqual([
      expect.objectContaining({ code: 'BUNDLE_UNEXPECTED_FILE', path: 'bundle:artifacts/linux-amd64/tool' }),
    ]);
  });

  it('does not count the publisher key as an artifact', async () => {
    const named = validManifest({
      installation: {
        artifacts: [
          { os: 'linux', arch: 'amd64', file: 'publisher.asc', sha256: 'a'.repeat(64), size_bytes: 1 },
        ],
      },
    }) as unknown as Manifest;
    expect(checkBundleFiles(await contentsWith(), named)).toEqual([
      expect.objectContaining({ code: 'BUNDLE_MISSING_ARTIFACT', path: '/installation/artifacts/0/file' }),
    ]);
  });
});
