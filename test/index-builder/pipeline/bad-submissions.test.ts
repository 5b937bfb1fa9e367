/**
 * Bad submissions, each rejected with its own stable code, and the published tree byte-identical afterwards.
 * One registry serves every case, with a plugin already published, so "nothing changed" is meaningful.
 */
import { gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { MAX_REPORTED_PROBLEMS, type ProblemCode } from '../../../index-builder/errors.ts';
import { processSubmissions } from '../../../index-builder/pipeline/index.ts';
import { upload } from '../../support/actions.ts';
import {
  encode,
  makeBundle,
  makeRegistry,
  type RawEntry,
  rawTar,
  sha256,
  signAsPublisher,
  type TestRegistry,
  testKey,
  validManifest,
  withPaxGlobalPath,
} from '../../support/fixtures.ts';

/** The entries of a valid signed submission, for tests that add something hostile next to them. */
async function signedEntries(manifest = validManifest({ version: '3.0.0' })): Promise<RawEntry[]> {
  const publisher = await testKey('publisher');
  const body = encode(`${JSON.stringify(manifest)}\n`);
  const signature = await signAsPublisher(body, publisher.secretKey);
  return [
    { name: 'manifest.json', body },
    { name: 'manifest.json.asc', body: signature },
    { name: 'publisher.asc', body: publisher.publicKey },
  ];
}

const deep = (levels: number): unknown => (levels === 0 ? 'bottom' : { down: deep(levels - 1) });
const artifact = (body = encode('binary')) => ({ os: 'linux', arch: 'amd64', name: 'tool', body });

type Case = readonly [label: string, code: ProblemCode, build: () => Promise<Uint8Array>];

const cases: Case[] = [
  // Manifest errors
  [
    'a manifest without a version',
    'MANIFEST_MISSING_FIELD',
    () => makeBundle({ manifest: { ...validManifest(), version: undefined } }),
  ],
  [
    'an upper-case name',
    'MANIFEST_PATTERN_MISMATCH',
    () => makeBundle({ manifest: validManifest({ name: 'Demo-Plugin' }) }),
  ],
  [
    'a name with a double hyphen',
    'MANIFEST_PATTERN_MISMATCH',
    () => makeBundle({ manifest: validManifest({ name: 'demo--plugin' }) }),
  ],
  [
    'a one-character name',
    'MANIFEST_STRING_TOO_SHORT',
    () => makeBundle({ manifest: validManifest({ name: 'd' }) }),
  ],
  [
    'a version that is not SemVer',
    'MANIFEST_PATTERN_MISMATCH',
    () => makeBundle({ manifest: validManifest({ version: '1.0' }) }),
  ],
  [
    'an unknown plugin type',
    'MANIFEST_NOT_ALLOWED_VALUE',
    () => makeBundle({ manifest: validManifest({ plugin_type: 'miner' }) }),
  ],
  [
    'no capabilities',
    'MANIFEST_TOO_FEW_ITEMS',
    () => makeBundle({ manifest: validManifest({ capabilities: [] }) }),
  ],
  [
    'a repeated capability',
    'MANIFEST_DUPLICATE_ITEMS',
    () => makeBundle({ manifest: validManifest({ capabilities: ['actual_cost', 'actual_cost'] }) }),
  ],
  [
    'capabilities as a string',
    'MANIFEST_WRONG_TYPE',
    () => makeBundle({ manifest: validManifest({ capabilities: 'actual_cost' }) }),
  ],
  [
    'a description past its limit',
    'MANIFEST_STRING_TOO_LONG',
    () => makeBundle({ manifest: validManifest({ description: 'x'.repeat(600) }) }),
  ],
  [
    'a dependency range that does not parse',
    'MANIFEST_INVALID_DEPENDENCY_RANGE',
    () =>
      makeBundle({
        manifest: validManifest({
          requirements: { dependencies: [{ name: 'aws-sdk', version: 'newest please' }] },
        }),
      }),
  ],
  [
    'min_api_version above max_api_version',
    'MANIFEST_API_VERSION_RANGE',
    () =>
      makeBundle({
        manifest: validManifest({ requirements: { min_api_version: 'v3', max_api_version: 'v1' } }),
      }),
  ],
  [
    'a plain-http homepage',
    'MANIFEST_INSECURE_URL',
    () => makeBundle({ manifest: validManifest({ metadata: { homepage: 'http://example.com/' } }) }),
  ],
  [
    'a maintainer email that is not one',
    'MANIFEST_INVALID_FORMAT',
    () =>
      makeBundle({
        manifest: validManifest({ contacts: { maintainers: [{ name: 'x', email: 'not-an-email' }] } }),
      }),
  ],
  [
    'a control character',
    'MANIFEST_CONTROL_CHARACTER',
    () => makeBundle({ manifest: validManifest({ description: 'bell\u0007' }) }),
  ],
  [
    'nesting beyond the limit',
    'MANIFEST_TOO_DEEP',
    () => makeBundle({ manifest: validManifest({ configuration: { defaults: deep(40) } }) }),
  ],
  [
    'a manifest over the size limit',
    'MANIFEST_TOO_LARGE',
    () =>
      makeBundle({
        manifest: validManifest({ configuration: { defaults: { blob: 'x'.repeat(300 * 1024) } } }),
      }),
  ],
  [
    'JSON that does not parse',
    'MANIFEST_PARSE_ERROR',
    () => makeBundle({ manifestText: '{"name": "demo-plugin",' }),
  ],
  ['a manifest that is an array', 'MANIFEST_NOT_OBJECT', () => makeBundle({ manifestText: '[1, 2, 3]' })],
  [
    'two artifacts for one platform',
    'MANIFEST_DUPLICATE_PLATFORM',
    () =>
      makeBundle({
        manifest: validManifest({
          installation: {
            artifacts: [
              {
                os: 'linux',
                arch: 'amd64',
                url: 'https://dl.example.com/a',
                sha256: 'a'.repeat(64),
                size_bytes: 1,
              },
              {
                os: 'linux',
                arch: 'amd64',
                url: 'https://dl.example.com/b',
                sha256: 'b'.repeat(64),
                size_bytes: 1,
              },
            ],
          },
        }),
      }),
  ],
  [
    'an artifact with both file and url',
    'MANIFEST_ARTIFACT_SOURCE',
    () =>
      makeBundle({
        manifest: validManifest({
          installation: {
            artifacts: [
              {
                os: 'linux',
                arch: 'amd64',
                file: 'x',
                url: 'https://dl.example.com/x',
                sha256: 'a'.repeat(64),
                size_bytes: 1,
              },
            ],
          },
        }),
      }),
  ],
  [
    'a manifest that is not UTF-8',
    'MANIFEST_NOT_UTF8',
    async () =>
      rawTar([
        ...(await signedEntries()).slice(1),
        { name: 'manifest.json', body: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]) },
      ]),
  ],
  [
    'a negative artifact size',
    'MANIFEST_OUT_OF_RANGE',
    () =>
      makeBundle({
        manifest: validManifest({
          installation: {
            artifacts: [
              {
                os: 'linux',
                arch: 'amd64',
                url: 'https://dl.example.com/x',
                sha256: 'a'.repeat(64),
                size_bytes: -1,
              },
            ],
          },
        }),
      }),
  ],
  // YAML attacks
  [
    'a YAML alias bomb',
    'MANIFEST_YAML_UNSAFE',
    () =>
      makeBundle({
        manifestName: 'manifest.yaml',
        manifestText: `${YAML.stringify(validManifest())}a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n`,
      }),
  ],
  [
    'a YAML code tag',
    'MANIFEST_YAML_UNSAFE',
    () =>
      makeBundle({
        manifestName: 'manifest.yaml',
        manifestText: `${YAML.stringify(validManifest())}hook: !!js/function "function () { return 1 }"\n`,
      }),
  ],
  [
    'a YAML duplicate key',
    'MANIFEST_DUPLICATE_KEY',
    () =>
      makeBundle({
        manifestName: 'manifest.yaml',
        manifestText: `${YAML.stringify(validManifest())}name: other-name\n`,
      }),
  ],
  // Prototype pollution
  [
    'a JSON __proto__ key',
    'MANIFEST_FORBIDDEN_KEY',
    () =>
      makeBundle({
        manifestText: JSON.stringify(validManifest()).replace(/^\{/, '{"__proto__":{"polluted":true},'),
      }),
  ],
  [
    'a YAML constructor.prototype key',
    'MANIFEST_FORBIDDEN_KEY',
    () =>
      makeBundle({
        manifestName: 'manifest.yaml',
        manifestText: `${YAML.stringify(validManifest())}metadata2:\n  constructor:\n    prototype:\n      polluted: true\n`,
      }),
  ],
  // Unsafe tars
  [
    'a path escaping with ..',
    'BUNDLE_UNSAFE_PATH',
    async () => rawTar([...(await signedEntries()), { name: '../evil', body: 'x' }]),
  ],
  [
    'an absolute path',
    'BUNDLE_UNSAFE_PATH',
    async () => rawTar([...(await signedEntries()), { name: '/etc/cron.d/evil', body: 'x' }]),
  ],
  [
    'a symbolic link',
    'BUNDLE_LINK_ENTRY',
    async () =>
      rawTar([...(await signedEntries()), { name: 'link', type: 'symlink', linkname: '/etc/passwd' }]),
  ],
  [
    'a hard link',
    'BUNDLE_LINK_ENTRY',
    async () =>
      rawTar([...(await signedEntries()), { name: 'hard', type: 'link', linkname: 'manifest.json' }]),
  ],
  [
    'a device node',
    'BUNDLE_SPECIAL_ENTRY',
    async () => rawTar([...(await signedEntries()), { name: 'dev', type: 'character-device' }]),
  ],
  [
    'a duplicate entry',
    'BUNDLE_DUPLICATE_ENTRY',
    async () => rawTar([...(await signedEntries()), { name: 'manifest.json', body: '{}' }]),
  ],
  [
    'a file the manifest does not name',
    'BUNDLE_UNEXPECTED_FILE',
    async () => rawTar([...(await signedEntries()), { name: 'extra/payload.sh', body: 'rm -rf /' }]),
  ],
  [
    'too many entries',
    'BUNDLE_TOO_MANY_ENTRIES',
    async () =>
      rawTar([
        ...(await signedEntries()),
        ...Array.from({ length: 300 }, (_, i) => ({ name: `f${i}`, body: 'x' })),
      ]),
  ],
  [
    'a compression bomb',
    'BUNDLE_DECOMPRESSION_LIMIT',
    async () =>
      rawTar([...(await signedEntries()), { name: 'zeros', body: new Uint8Array(64 * 1024 * 1024) }]),
  ],
  ['bytes that are not gzip', 'BUNDLE_NOT_GZIP', async () => encode('just some text, not a bundle')],
  ['a truncated gzip stream', 'BUNDLE_CORRUPT', async () => (await makeBundle()).slice(0, 200)],
  [
    'a bundle without a manifest',
    'BUNDLE_MISSING_MANIFEST',
    async () => rawTar((await signedEntries()).slice(1)),
  ],
  [
    'a bundle with JSON and YAML manifests',
    'BUNDLE_MULTIPLE_MANIFESTS',
    async () =>
      rawTar([...(await signedEntries()), { name: 'manifest.yaml', body: YAML.stringify(validManifest()) }]),
  ],
  [
    'an artifact named but not carried',
    'BUNDLE_MISSING_ARTIFACT',
    () =>
      makeBundle({
        manifest: validManifest({
          version: '3.0.0',
          installation: {
            artifacts: [
              {
                os: 'linux',
                arch: 'amd64',
                file: 'artifacts/linux-amd64/tool',
                sha256: 'a'.repeat(64),
                size_bytes: 1,
              },
            ],
          },
        }),
      }),
  ],
  // Digests
  [
    'an artifact whose digest does not match',
    'ARTIFACT_DIGEST_MISMATCH',
    () =>
      makeBundle({
        manifest: validManifest({
          version: '3.0.0',
          installation: {
            artifacts: [
              {
                os: 'linux',
                arch: 'amd64',
                file: 'artifacts/linux-amd64/tool',
                sha256: sha256('something else'),
                size_bytes: 6,
              },
            ],
          },
        }),
        artifacts: [{ ...artifact(), record: false }],
      }),
  ],
  [
    'an artifact whose size does not match',
    'ARTIFACT_SIZE_MISMATCH',
    () =>
      makeBundle({
        manifest: validManifest({
          version: '3.0.0',
          installation: {
            artifacts: [
              {
                os: 'linux',
                arch: 'amd64',
                file: 'artifacts/linux-amd64/tool',
                sha256: sha256('binary'),
                size_bytes: 7,
              },
            ],
          },
        }),
        artifacts: [{ ...artifact(), record: false }],
      }),
  ],
  // Signatures and trust
  [
    'no signature',
    'BUNDLE_MISSING_SIGNATURE',
    () => makeBundle({ manifest: validManifest({ version: '3.0.0' }), signature: null }),
  ],
  [
    'a signature that is not one',
    'SIGNATURE_MALFORMED',
    () => makeBundle({ manifest: validManifest({ version: '3.0.0' }), signature: 'trust me' }),
  ],
  [
    'a signature over other bytes',
    'SIGNATURE_INVALID',
    async () =>
      makeBundle({
        manifest: validManifest({ version: '3.0.0' }),
        signature: await signAsPublisher(encode('other bytes'), (await testKey('publisher')).secretKey),
      }),
  ],
  [
    'a signature by a key other than the bundled one',
    'PUBLISHER_UNTRUSTED',
    async () =>
      makeBundle({
        manifest: validManifest({ version: '3.0.0' }),
        signer: await testKey('stranger'),
        publisherKey: (await testKey('publisher')).publicKey,
      }),
  ],
  [
    'no publisher key in an open registry',
    'PUBLISHER_KEY_MISSING',
    () => makeBundle({ manifest: validManifest({ version: '3.0.0' }), publisherKey: null }),
  ],
  [
    'a publisher key that is not a key',
    'PUBLISHER_KEY_INVALID',
    () => makeBundle({ manifest: validManifest({ version: '3.0.0' }), publisherKey: 'not a key' }),
  ],
  [
    'the registry key posing as a publisher',
    'PUBLISHER_IS_REGISTRY_KEY',
    async () =>
      makeBundle({ manifest: validManifest({ name: 'fresh-name' }), signer: await testKey('registry') }),
  ],
  [
    'a registry-key signature without a bundled key',
    'PUBLISHER_IS_REGISTRY_KEY',
    async () =>
      makeBundle({
        manifest: validManifest({ name: 'fresh-name' }),
        signer: await testKey('registry'),
        publisherKey: null,
      }),
  ],
  // Version overwrite and ownership
  [
    'an overwrite of a published version',
    'VERSION_EXISTS',
    () => makeBundle({ manifest: validManifest({ description: 'sneaky change' }) }),
  ],
  [
    'a new version by a key that does not own the name',
    'PUBLISHER_NOT_OWNER',
    async () =>
      makeBundle({ manifest: validManifest({ version: '3.0.0' }), signer: await testKey('stranger') }),
  ],
  // One upload, one meaning (the hardening review's classes, end to end through the pipeline)
  [
    'the published version again, with other build metadata',
    'VERSION_EXISTS',
    () => makeBundle({ manifest: validManifest({ version: '1.0.0+other.build' }) }),
  ],
  [
    'a repeated key in the JSON manifest',
    'MANIFEST_DUPLICATE_KEY',
    () => makeBundle({ manifestText: jsonWith('"version":"3.0.0","version":"3.0.1"') }),
  ],
  [
    'a number past 2^53',
    'MANIFEST_NUMBER_UNSAFE',
    () => makeBundle({ manifestText: jsonWith('"version":"3.0.0","x":9007199254740993') }),
  ],
  [
    'a byte order mark',
    'MANIFEST_BYTE_ORDER_MARK',
    () => makeBundle({ manifestText: `\uFEFF${JSON.stringify(validManifest({ version: '3.0.0' }))}` }),
  ],
  [
    'a lone surrogate in a description',
    'MANIFEST_INVALID_UNICODE',
    () => makeBundle({ manifestText: jsonWith('"version":"3.0.0","summary":"\\udfff"') }),
  ],
  [
    'a line separator in a description',
    'MANIFEST_UNSAFE_CHARACTER',
    () => makeBundle({ manifest: validManifest({ version: '3.0.0', description: 'a\u2028b' }) }),
  ],
  [
    'a YAML merge key',
    'MANIFEST_YAML_AMBIGUOUS',
    () =>
      makeBundle({
        manifestName: 'manifest.yaml',
        manifestText: `${YAML.stringify(validManifest({ version: '3.0.0' }))}base: &b {x: 1}\nextra:\n  <<: *b\n`,
      }),
  ],
  [
    'a YAML value that YAML 1.1 reads as a boolean',
    'MANIFEST_YAML_AMBIGUOUS',
    () =>
      makeBundle({
        manifestName: 'manifest.yaml',
        manifestText: `${YAML.stringify(validManifest({ version: '3.0.0' }))}enabled: on\n`,
      }),
  ],
  [
    'an artifact named like the manifest route',
    'MANIFEST_RESERVED_PATH',
    () =>
      makeBundle({
        manifest: validManifest({
          version: '3.0.0',
          installation: {
            artifacts: [{ os: 'linux', arch: 'amd64', file: 'manifest', sha256: sha256('x'), size_bytes: 1 }],
          },
        }),
        extraFiles: [{ path: 'manifest', body: encode('x') }],
      }),
  ],
  [
    'an artifact named index.html',
    'MANIFEST_RESERVED_PATH',
    () =>
      makeBundle({
        manifest: validManifest({ version: '3.0.0' }),
        artifacts: [{ os: 'linux', arch: 'amd64', name: 'index.html', body: encode('<p>') }],
      }),
  ],
  [
    'an artifact path with a dot segment',
    'MANIFEST_PATTERN_MISMATCH',
    () =>
      makeBundle({
        manifest: validManifest({ version: '3.0.0' }),
        artifacts: [{ os: 'linux', arch: 'amd64', name: '.hidden', body: encode('x') }],
      }),
  ],
  [
    'a plugin named like a Windows device',
    'MANIFEST_RESERVED_NAME',
    () => makeBundle({ manifest: validManifest({ name: 'aux' }) }),
  ],
  [
    'a pax global header',
    'BUNDLE_AMBIGUOUS_ARCHIVE',
    async () => withPaxGlobalPath(await rawTar(await signedEntries(), false), 'manifest.json.asc'),
  ],
  [
    'a file hidden after a zero block',
    'BUNDLE_AMBIGUOUS_ARCHIVE',
    async () => {
      const tar = await rawTar(await signedEntries(), false);
      return new Uint8Array(gzipSync(Buffer.concat([tar, tar])));
    },
  ],
  [
    'a publisher key of 100 KiB',
    'BUNDLE_ENTRY_TOO_LARGE',
    async () =>
      rawTar([
        ...(await signedEntries()).filter((e) => e.name !== 'publisher.asc'),
        { name: 'publisher.asc', body: `${(await testKey('publisher')).publicKey}${' '.repeat(100 * 1024)}` },
      ]),
  ],
  [
    'a signature dated after the publish',
    'SIGNATURE_TIME_INVALID',
    async () => {
      const body = encode(`${JSON.stringify(validManifest({ version: '3.0.0' }))}\n`);
      return makeBundle({
        manifestText: new TextDecoder().decode(body),
        signature: await signAsPublisher(
          body,
          (await testKey('publisher')).secretKey,
          new Date('2030-01-01'),
        ),
      });
    },
  ],
];

/** The valid manifest with `extra` members added, as JSON text. */
function jsonWith(extra: string): string {
  const manifest = validManifest();
  delete manifest.version;
  return `${JSON.stringify(manifest).slice(0, -1)},${extra}}`;
}

describe('when a submission is bad', () => {
  let registry: TestRegistry;

  beforeAll(async () => {
    registry = await makeRegistry();
    const keys = await registry.submit(await makeBundle());
    const result = await processSubmissions(registry.context, keys);
    expect(result.outcomes[0]?.status).toBe('accepted');
  });

  it('covers at least 40 distinct cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(40);
    expect(new Set(cases.map(([label]) => label)).size).toBe(cases.length);
  });

  it.each(cases)(
    'rejects %s with %s and leaves the published tree byte-identical',
    async (_label, code, build) => {
      const before = registry.site.fingerprint();
      const [key] = await registry.submit(await build());
      const result = await processSubmissions(registry.context, [key as string]);
      const outcome = result.outcomes[0];
      expect(outcome?.status).toBe('rejected');
      // The specific code comes first; a case may add consequences (a signature over bytes that do not decode).
      expect(outcome?.problems[0]?.code).toBe(code);
      for (const p of outcome?.problems ?? []) {
        expect(p.message.length).toBeGreaterThan(0);
        expect(typeof p.path).toBe('string');
      }
      expect(result.generation).toBeNull();
      expect(registry.site.fingerprint()).toEqual(before);
      // Never lost: an outcome record and the submission kept under rejected/.
      expect(registry.intake.objects.has(`status/${outcome?.id}.json`)).toBe(true);
      expect(registry.intake.objects.has(`rejected/${outcome?.id}.tgz`)).toBe(true);
      expect(registry.intake.objects.has(key as string)).toBe(false);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    },
  );
});

describe('when a publisher uploads a manifest instead of a bundle', () => {
  // JSON was read as a signed action: 21 ACTION_MALFORMED lines, one per manifest field ("name" is not a
  // field of a signed action), and YAML as a bundle that is not gzip; neither said to pack it.
  it.each([
    ['a JSON manifest', 'manifest.json', () => encode(`${JSON.stringify(validManifest(), null, 2)}\n`)],
    ['a YAML manifest', 'manifest.yaml', () => encode(YAML.stringify(validManifest()))],
    // A manifest may be 256 KiB, an action 128 KiB: one past 128 KiB was ACTION_TOO_LARGE, "the action
    // submission is N bytes", and one with a key written twice ACTION_MALFORMED at that key, neither a manifest.
    [
      'a JSON manifest larger than an action may be',
      'manifest.json',
      () => encode(`${JSON.stringify(validManifest(), null, 2)}${' '.repeat(150 * 1024)}\n`),
    ],
    [
      'a JSON manifest with a field written twice',
      'manifest.json',
      () => encode(JSON.stringify(validManifest()).replace(/^\{/, '{"name":"demo-plugin",')),
    ],
  ] as const)('rejects %s with SUBMISSION_IS_MANIFEST alone, saying to pack it', async (_, name, bytes) => {
    const registry = await makeRegistry();
    const before = registry.site.fingerprint();
    const key = await upload(registry.intake, bytes(), name);
    const result = await processSubmissions(registry.context, [key]);
    const outcome = result.outcomes[0];
    expect(outcome?.status).toBe('rejected');
    expect(outcome?.problems).toEqual([
      expect.objectContaining({
        code: 'SUBMISSION_IS_MANIFEST',
        path: '',
        message: 'the upload is a plugin manifest (demo-plugin 1.0.0), not a bundle or a signed action',
        expected: expect.stringContaining(
          'plugindex pack MANIFEST --artifact OS/ARCH=FILE --key SECRET_KEY --output FILE.tgz',
        ),
      }),
    ]);
    expect(registry.site.fingerprint()).toEqual(before);
  });
});

describe('when a bundle is a tar that is not gzipped', () => {
  // A tar's headers and padding are NUL bytes, valid UTF-8: the lines of the manifest.yaml it carries read
  // as a bare manifest's top level, and `tar cf` without z was told to pack the manifest it had packed.
  it('rejects it BUNDLE_NOT_GZIP, not as a bare manifest', async () => {
    const registry = await makeRegistry();
    const tar = await rawTar(
      [{ name: 'manifest.yaml', body: `# the demo plugin\n${YAML.stringify(validManifest())}` }],
      false,
    );
    const key = await upload(registry.intake, tar, 'demo.tar');
    const result = await processSubmissions(registry.context, [key]);
    expect(result.outcomes[0]?.problems.map((p) => p.code)).toEqual(['BUNDLE_NOT_GZIP']);
  });
});

describe('when a submission has more problems than a report lists', () => {
  it('records the first 99 and one that counts the rest, and publishes nothing', async () => {
    const registry = await makeRegistry();
    const before = registry.site.fingerprint();
    // 20,000 numbers for capabilities, within the manifest's size cap: two problems an item.
    const manifest = validManifest({ capabilities: Array.from({ length: 20_000 }, (_, i) => i) });
    const [key] = await registry.submit(await makeBundle({ manifest }));
    const result = await processSubmissions(registry.context, [key as string]);
    const outcome = result.outcomes[0];
    expect(outcome?.status).toBe('rejected');
    expect(outcome?.problems).toHaveLength(MAX_REPORTED_PROBLEMS);
    expect(outcome?.problems[0]?.code).toBe('MANIFEST_TOO_MANY_ITEMS');
    // Each listed in full, with what was expected and found (past them, problems are only counted).
    for (const p of outcome?.problems.slice(0, -1) ?? []) {
      expect(p.expected, p.path).toBeTruthy();
      expect(p.found, p.path).toBeTruthy();
    }
    expect(outcome?.problems.at(-1)).toEqual({
      code: 'PROBLEMS_OMITTED',
      path: '',
      message: '39902 more problems, not listed (a report lists 99)',
      found: '40001 problems',
    });
    // The record as kept: the same problems, a few kilobytes (it was 20 MB).
    const record = registry.intake.objects.get(`status/${outcome?.id}.json`);
    expect(record).toBeDefined();
    expect(JSON.parse(new TextDecoder().decode(record?.body)).problems).toEqual(outcome?.problems);
    expect(record?.body.byteLength).toBeLessThan(64 * 1024);
    expect(registry.intake.objects.has(`rejected/${outcome?.id}.tgz`)).toBe(true);
    expect(result.generation).toBeNull();
    expect(registry.site.fingerprint()).toEqual(before);
  });
});
