import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { normalizeDigest } from '../../../index-builder/digest.ts';
import type { Problem } from '../../../index-builder/errors.ts';
import { loadManifest, validateManifest } from '../../../index-builder/manifest/index.ts';
import { RESOURCE_LIMITS } from '../../../index-builder/model.ts';
import { encode, validManifest } from '../../support/fixtures.ts';
import { rejectedProblems } from '../../support/problems.ts';
import { PULUMICOST_SPEC } from '../../support/reference.ts';

// Real public data: the PulumiCost specification's example manifest (shared/reference, not copied here).
const REFERENCE_EXAMPLE = path.join(PULUMICOST_SPEC, 'examples/aws-cost-explorer-plugin.json');

const codes = (problems: readonly Problem[]): string[] => problems.map((p) => `${p.code} ${p.path}`);

describe('when the manifest is the real upstream example', () => {
  it('accepts it, sha256:-prefixed checksum and all', async () => {
    const manifest = await loadManifest(new Uint8Array(readFileSync(REFERENCE_EXAMPLE)), 'manifest.json');
    expect(manifest.name).toBe('aws-cost-explorer');
    expect(normalizeDigest(manifest.installation?.checksum ?? '')).toMatch(/^[0-9a-f]{64}$/);
  });

  it('accepts the same document written as YAML', async () => {
    const value = JSON.parse(readFileSync(REFERENCE_EXAMPLE, 'utf8'));
    expect(await loadManifest(encode(YAML.stringify(value)), 'manifest.yaml')).toEqual(value);
  });
});

describe('when fields break the schema', () => {
  it('reports every problem at once with its JSON pointer', () => {
    const problems = validateManifest(
      validManifest({
        name: 'Bad_Name',
        version: 'v1',
        plugin_type: 'nope',
        capabilities: [],
        api_version: undefined,
      }),
    );
    expect(codes(problems)).toEqual(
      expect.arrayContaining([
        'MANIFEST_PATTERN_MISMATCH /name',
        'MANIFEST_PATTERN_MISMATCH /version',
        'MANIFEST_NOT_ALLOWED_VALUE /plugin_type',
        'MANIFEST_TOO_FEW_ITEMS /capabilities',
        'MANIFEST_MISSING_FIELD /api_version',
      ]),
    );
  });

  it('says what was expected and what was found', () => {
    const [p] = validateManifest(validManifest({ plugin_type: 'miner' }));
    expect(p).toMatchObject({ code: 'MANIFEST_NOT_ALLOWED_VALUE', path: '/plugin_type', found: '"miner"' });
    expect(p?.expected).toContain('cost_source');
  });

  it('tells a missing field from a wrong type', () => {
    expect(codes(validateManifest({ ...validManifest(), capabilities: undefined }))).toEqual([
      'MANIFEST_MISSING_FIELD /capabilities',
    ]);
    expect(codes(validateManifest(validManifest({ capabilities: 'actual_cost' })))).toEqual([
      'MANIFEST_WRONG_TYPE /capabilities',
    ]);
  });

  it.each([
    ['ab', true],
    ['a1-b2-c3', true],
    ['a', false],
    ['-ab', false],
    ['ab-', false],
    ['a--b', false],
    ['AB', false],
    ['a_b', false],
    ['a'.repeat(64), true],
    ['a'.repeat(65), false],
  ])('judges the name %s valid: %s', (name, ok) => {
    expect(validateManifest(validManifest({ name })).length === 0).toBe(ok);
  });

  it('accepts checksums with and without the sha256: prefix, and nothing else', () => {
    const hex = 'ab'.repeat(32);
    expect(validateManifest(validManifest({ installation: { checksum: hex } }))).toEqual([]);
    expect(validateManifest(validManifest({ installation: { checksum: `sha256:${hex}` } }))).toEqual([]);
    expect(codes(validateManifest(validManifest({ installation: { checksum: `md5:${hex}` } })))).toEqual([
      'MANIFEST_PATTERN_MISMATCH /installation/checksum',
    ]);
  });
});

describe('when rules go beyond the schema', () => {
  it('parses dependency ranges', () => {
    const deps = [
      { name: 'a', version: '>=1.44.0' },
      { name: 'b', version: '^2.1.0 || ~3.0' },
      { name: 'c', version: 'latest and greatest' },
    ];
    expect(codes(validateManifest(validManifest({ requirements: { dependencies: deps } })))).toEqual([
      'MANIFEST_INVALID_DEPENDENCY_RANGE /requirements/dependencies/2/version',
    ]);
  });

  it('refuses a version number past 2^53 - 1, in any part, which readers would round', () => {
    // semver compares numeric identifiers as JavaScript numbers: 1.0.0-9007199254740993 and
    // 1.0.0-9007199254740992 (or -100000000000000000000 and -99999999999999999999) compared equal, two
    // versions of one precedence that other SemVer readers order.
    for (const version of [
      '99999999999999999999.0.0',
      '1.0.0-9007199254740992',
      '1.0.0-rc.100000000000000000000',
      '1.0.0-beta.99999999999999999999+build',
    ])
      expect(codes(validateManifest(validManifest({ version }))), version).toEqual([
        'MANIFEST_INVALID_VERSION /version',
      ]);
    for (const version of [
      '1.0.0-9007199254740991',
      '1.0.0-rc.1',
      '1.0.0-x99999999999999999999',
      '1.0.0+99999999999999999999',
    ])
      expect(validateManifest(validManifest({ version })), version).toEqual([]);
  });

  it('compares min and max API versions numerically', () => {
    expect(
      validateManifest(validManifest({ requirements: { min_api_version: 'v2', max_api_version: 'v10' } })),
    ).toEqual([]);
    expect(
      codes(
        validateManifest(validManifest({ requirements: { min_api_version: 'v10', max_api_version: 'v2' } })),
      ),
    ).toEqual(['MANIFEST_API_VERSION_RANGE /requirements/min_api_version']);
  });

  it.each([
    ['https://example.com/x', true],
    ['http://127.0.0.1:8080/x', true],
    ['http://localhost/x', true],
    ['http://[::1]/x', true],
    ['http://example.com/x', false],
    ['ftp://example.com/x', false],
    ['javascript:alert(1)', false],
  ])('judges the URL %s acceptable: %s', (url, ok) => {
    const problems = validateManifest(validManifest({ metadata: { homepage: url } }));
    expect(problems.length === 0).toBe(ok);
  });

  it('refuses user information before a host in every URL: a link to github.com@evil.example reads as github.com', () => {
    const manifest = validManifest({
      metadata: {
        homepage: 'https://github.com@evil.example/acme',
        repository: 'https://u:p@github.com/acme/x',
      },
      contacts: { maintainers: [{ name: 'm', url: 'https://@evil.example/' }] },
      security_scan_results: {
        status: 'vulnerable',
        vulnerabilities: [{ id: 'X-1', url: 'https://nvd.nist.gov@evil.example/1' }],
      },
    });
    expect(codes(validateManifest(manifest))).toEqual([
      'MANIFEST_URL_CREDENTIALS /metadata/homepage',
      'MANIFEST_URL_CREDENTIALS /metadata/repository',
      'MANIFEST_URL_CREDENTIALS /contacts/maintainers/0/url',
      'MANIFEST_URL_CREDENTIALS /security_scan_results/vulnerabilities/0/url',
    ]);
    // An @ in the path or the query is no user information.
    expect(
      validateManifest(validManifest({ metadata: { homepage: 'https://example.com/@acme?by=a@b' } })),
    ).toEqual([]);
  });

  it('needs exactly one of file or url per artifact, and one artifact per platform', () => {
    const a = { os: 'linux', arch: 'amd64', sha256: 'a'.repeat(64), size_bytes: 1 };
    expect(codes(validateManifest(validManifest({ installation: { artifacts: [a] } })))).toEqual([
      'MANIFEST_ARTIFACT_SOURCE /installation/artifacts/0',
    ]);
    expect(
      codes(
        validateManifest(
          validManifest({
            installation: {
              artifacts: [
                { ...a, file: 'bin/x' },
                { ...a, url: 'https://dl.example.com/x' },
              ],
            },
          }),
        ),
      ),
    ).toEqual(['MANIFEST_DUPLICATE_PLATFORM /installation/artifacts/1']);
  });

  it('refuses artifact file paths that could escape the version folder', () => {
    for (const file of ['../x', '/etc/x', 'a/../b', './x', 'a//b', 'a\\b']) {
      const problems = validateManifest(
        validManifest({
          installation: {
            artifacts: [{ os: 'linux', arch: 'amd64', file, sha256: 'a'.repeat(64), size_bytes: 1 }],
          },
        }),
      );
      expect(codes(problems), file).toContain('MANIFEST_PATTERN_MISMATCH /installation/artifacts/0/file');
    }
  });
});

describe('when a manifest declares permissions and resources', () => {
  it('accepts known permission names and limits within their bounds', () => {
    const manifest = validManifest({
      permissions: ['network_client', 'filesystem_read'],
      resources: { max_memory_mb: 512, max_cpu_percent: 100, timeout_seconds: 1 },
    });
    expect(validateManifest(manifest)).toEqual([]);
  });

  it('refuses an unknown permission, a repeated one, and a list that is not one', () => {
    const problems = validateManifest(
      validManifest({ permissions: ['network_client', 'root', 'network_client'] }),
    );
    expect(codes(problems)).toEqual(
      expect.arrayContaining([
        'MANIFEST_NOT_ALLOWED_VALUE /permissions/1',
        'MANIFEST_DUPLICATE_ITEMS /permissions',
      ]),
    );
    expect(problems.find((p) => p.path === '/permissions/1')?.expected).toContain('network_raw');
    expect(codes(validateManifest(validManifest({ permissions: 'network_client' })))).toEqual([
      'MANIFEST_WRONG_TYPE /permissions',
    ]);
  });

  it('refuses an unknown resource by its pointer, naming the known ones', () => {
    const problems = validateManifest(validManifest({ resources: { max_memory_mb: 1, max_gpus: 2 } }));
    expect(codes(problems)).toEqual(['MANIFEST_UNKNOWN_FIELD /resources/max_gpus']);
    expect(problems[0]?.expected).toContain('max_memory_mb');
  });

  it.each([
    ['max_cpu_percent', 0, 'MANIFEST_OUT_OF_RANGE'],
    ['max_cpu_percent', 101, 'MANIFEST_OUT_OF_RANGE'],
    ['max_threads', 65_537, 'MANIFEST_OUT_OF_RANGE'],
    ['timeout_seconds', 1.5, 'MANIFEST_WRONG_TYPE'],
    ['max_memory_mb', '512', 'MANIFEST_WRONG_TYPE'],
  ])('refuses %s: %s (%s)', (name, value, code) => {
    expect(codes(validateManifest(validManifest({ resources: { [name]: value } })))).toEqual([
      `${code} /resources/${name}`,
    ]);
  });

  it('accepts every limit at its bound', () => {
    const resources = Object.fromEntries(Object.entries(RESOURCE_LIMITS));
    expect(validateManifest(validManifest({ resources }))).toEqual([]);
  });
});

describe('when a manifest declares security_scan_results', () => {
  const scan = (value: Record<string, unknown>) => validManifest({ security_scan_results: value });
  const full = {
    status: 'vulnerable',
    vulnerabilities: [
      { id: 'CVE-2026-1234', severity: 'high', summary: 'A bad thing', url: 'https://sec.example/1' },
      { id: 'GHSA-aaaa-bbbb-cccc' },
    ],
    last_scan: '2026-10-30T12:00:00Z',
    scan_version: 'trivy 0.60.0',
  };

  it('accepts a full result, a bare one, and every status', () => {
    expect(validateManifest(scan(full))).toEqual([]);
    for (const status of ['secure', 'vulnerable', 'unknown'])
      expect(validateManifest(scan({ status, vulnerabilities: [] })), status).toEqual([]);
  });

  it('refuses an unknown field of the block and of a vulnerability by its pointer, naming the known ones', () => {
    const problems = validateManifest(
      scan({ ...full, vulnerabilites: [], vulnerabilities: [{ id: 'X-1', cvss: 9.8 }] }),
    );
    expect(codes(problems)).toEqual([
      'MANIFEST_UNKNOWN_FIELD /security_scan_results/vulnerabilites',
      'MANIFEST_UNKNOWN_FIELD /security_scan_results/vulnerabilities/0/cvss',
    ]);
    expect(problems[0]?.expected).toBe('one of status, vulnerabilities, last_scan, scan_version');
    expect(problems[1]?.expected).toBe('one of id, severity, summary, url');
  });

  it.each([
    ['a missing status', { vulnerabilities: [] }, 'MANIFEST_MISSING_FIELD /security_scan_results/status'],
    [
      'missing vulnerabilities',
      { status: 'unknown' },
      'MANIFEST_MISSING_FIELD /security_scan_results/vulnerabilities',
    ],
    [
      'an unknown status',
      { status: 'clean', vulnerabilities: [] },
      'MANIFEST_NOT_ALLOWED_VALUE /security_scan_results/status',
    ],
    [
      'an unknown severity',
      { status: 'vulnerable', vulnerabilities: [{ id: 'X-1', severity: 'medium' }] },
      'MANIFEST_NOT_ALLOWED_VALUE /security_scan_results/vulnerabilities/0/severity',
    ],
    [
      'a vulnerability without an id',
      { status: 'vulnerable', vulnerabilities: [{ summary: 'x' }] },
      'MANIFEST_MISSING_FIELD /security_scan_results/vulnerabilities/0/id',
    ],
    [
      'a long id',
      { status: 'vulnerable', vulnerabilities: [{ id: 'x'.repeat(129) }] },
      'MANIFEST_STRING_TOO_LONG /security_scan_results/vulnerabilities/0/id',
    ],
    [
      'a long summary',
      { status: 'vulnerable', vulnerabilities: [{ id: 'X-1', summary: 's'.repeat(1025) }] },
      'MANIFEST_STRING_TOO_LONG /security_scan_results/vulnerabilities/0/summary',
    ],
    [
      'an http link',
      { status: 'vulnerable', vulnerabilities: [{ id: 'X-1', url: 'http://sec.example/1' }] },
      'MANIFEST_INSECURE_URL /security_scan_results/vulnerabilities/0/url',
    ],
    [
      'a scan time that is not a date-time',
      { status: 'unknown', vulnerabilities: [], last_scan: 'yesterday' },
      'MANIFEST_INVALID_FORMAT /security_scan_results/last_scan',
    ],
    [
      'a long scanner version',
      { status: 'unknown', vulnerabilities: [], scan_version: 'v'.repeat(129) },
      'MANIFEST_STRING_TOO_LONG /security_scan_results/scan_version',
    ],
    ['a list', [], 'MANIFEST_WRONG_TYPE /security_scan_results'],
  ])('refuses %s', (_, value, expected) => {
    expect(codes(validateManifest(validManifest({ security_scan_results: value })))).toEqual([expected]);
  });

  it('caps the vulnerabilities listed', () => {
    const vulnerabilities = Array.from({ length: 257 }, (_, i) => ({ id: `X-${i}` }));
    expect(codes(validateManifest(scan({ status: 'vulnerable', vulnerabilities })))).toEqual([
      'MANIFEST_TOO_MANY_ITEMS /security_scan_results/vulnerabilities',
    ]);
  });

  it('refuses a vulnerability listed twice, naming the first', () => {
    const problems = validateManifest(
      scan({ status: 'vulnerable', vulnerabilities: [{ id: 'X-1' }, { id: 'X-2' }, { id: 'X-1' }] }),
    );
    expect(codes(problems)).toEqual(['MANIFEST_DUPLICATE_ITEMS /security_scan_results/vulnerabilities/2/id']);
    expect(problems[0]?.expected).toContain('/security_scan_results/vulnerabilities/0');
  });

  it('refuses a "secure" scan that lists vulnerabilities', () => {
    const problems = validateManifest(scan({ status: 'secure', vulnerabilities: [{ id: 'X-1' }] }));
    expect(codes(problems)).toEqual(['MANIFEST_SCAN_INCONSISTENT /security_scan_results/status']);
  });
});

describe('when an artifact is kept in an OCI registry', () => {
  const hex = 'ab'.repeat(32);
  const artifact = (oci: unknown, extra: Record<string, unknown> = {}) =>
    validManifest({
      installation: {
        artifacts: [{ os: 'linux', arch: 'amd64', sha256: hex, size_bytes: 10, oci, ...extra }],
      },
    });

  it.each([
    'registry.example/acme/lens',
    'registry.example/acme/lens:1.2.0',
    'registry.example:5000/acme/sub/lens_x:v1.2.0-rc.1',
    '127.0.0.1:5000/lens',
    '[::1]:5000/acme/lens',
    'localhost/a.b_c-d',
    'registry.example/acme/a__b--c',
    `registry.example/acme/lens@sha256:${hex}`,
    `registry.example/acme/lens:1.2.0@sha256:${hex}`,
  ])('accepts the reference %s', (reference) => {
    expect(validateManifest(artifact({ reference, digest: `sha256:${hex}` }))).toEqual([]);
  });

  it('accepts the artifact sha256 written with or without sha256:, in either case', () => {
    for (const sha256 of [hex, `sha256:${hex}`, hex.toUpperCase()])
      expect(
        validateManifest(
          artifact({ reference: 'registry.example/acme/lens:1', digest: `sha256:${hex}` }, { sha256 }),
        ),
      ).toEqual([]);
  });

  it.each([
    ['no registry', 'lens'],
    ['an uppercase repository', 'registry.example/Acme/lens'],
    ['a tag that starts with a dot', 'registry.example/acme/lens:.x'],
    ['a tag too long', `registry.example/acme/lens:${'a'.repeat(129)}`],
    ['a separator at the end', 'registry.example/acme/lens-'],
    ['a scheme', 'https://registry.example/acme/lens'],
    ['a short digest', 'registry.example/acme/lens@sha256:abc'],
    ['two separators in a row', 'registry.example/acme/a._b'],
    ['a first component that names no registry', 'acme/lens:1.0.0'],
  ])('refuses a reference with %s', (_, reference) => {
    expect(codes(validateManifest(artifact({ reference, digest: `sha256:${hex}` })))).toEqual([
      'MANIFEST_PATTERN_MISMATCH /installation/artifacts/0/oci/reference',
    ]);
  });

  it('refuses a tag alone: the digest is required, and the message says why', () => {
    const problems = validateManifest(artifact({ reference: 'registry.example/acme/lens:1.2.0' }));
    expect(codes(problems)).toEqual(['MANIFEST_MISSING_FIELD /installation/artifacts/0/oci/digest']);
    expect(problems[0]?.message).toContain('a tag alone can move');
  });

  it('refuses a digest of another form, and other keys in oci', () => {
    expect(
      codes(
        validateManifest(
          artifact({ reference: 'registry.example/a', digest: `sha256:${hex.toUpperCase()}` }),
        ),
      ),
    ).toEqual(['MANIFEST_PATTERN_MISMATCH /installation/artifacts/0/oci/digest']);
    const problems = validateManifest(
      artifact({ reference: 'registry.example/a', digest: `sha256:${hex}`, mediaType: 'x' }),
    );
    expect(codes(problems)).toEqual(['MANIFEST_UNKNOWN_FIELD /installation/artifacts/0/oci/mediaType']);
    expect(problems[0]?.expected).toBe('one of reference, digest');
  });

  it("refuses a digest that is not the artifact's sha256, saying which was expected", () => {
    const other = `sha256:${'cd'.repeat(32)}`;
    const problems = validateManifest(artifact({ reference: 'registry.example/a:1', digest: other }));
    expect(codes(problems)).toEqual(['MANIFEST_OCI_DIGEST_MISMATCH /installation/artifacts/0/oci/digest']);
    expect(problems[0]).toMatchObject({ expected: `sha256:${hex}`, found: `"${other}"` });
  });

  it('refuses a reference that pins another digest than oci.digest', () => {
    const other = `sha256:${'cd'.repeat(32)}`;
    const problems = validateManifest(
      artifact({ reference: `registry.example/a@${other}`, digest: `sha256:${hex}` }),
    );
    expect(codes(problems)).toEqual([
      'MANIFEST_OCI_REFERENCE_DIGEST /installation/artifacts/0/oci/reference',
    ]);
    expect(problems[0]).toMatchObject({ expected: `@sha256:${hex}`, found: `@${other}` });
  });

  it('needs exactly one of file, url and oci', () => {
    const oci = { reference: 'registry.example/a:1', digest: `sha256:${hex}` };
    for (const extra of [{ file: 'bin/x' }, { url: 'https://dl.example.com/x' }]) {
      const problems = validateManifest(artifact(oci, extra));
      expect(codes(problems)).toEqual(['MANIFEST_ARTIFACT_SOURCE /installation/artifacts/0']);
      expect(problems[0]?.message).toContain('oci');
    }
    const none = validateManifest(artifact(undefined));
    expect(codes(none)).toEqual(['MANIFEST_ARTIFACT_SOURCE /installation/artifacts/0']);
    expect(none[0]?.message).toBe('an artifact has none of file, url and oci');
  });
});

describe('when the structure is hostile', () => {
  it('rejects prototype keys at any depth without polluting Object.prototype', async () => {
    const text =
      '{"name":"demo-plugin","version":"1.0.0","api_version":"v1","plugin_type":"cost_source","capabilities":["actual_cost"],"metadata":{"__proto__":{"polluted":true}}}';
    const problems = await rejectedProblems(loadManifest(encode(text), 'manifest.json'));
    expect(codes(problems)).toEqual(['MANIFEST_FORBIDDEN_KEY /metadata/__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('rejects control characters in values and keys, but allows tabs and newlines', () => {
    expect(validateManifest(validManifest({ description: 'two\nlines\tand a tab' }))).toEqual([]);
    expect(codes(validateManifest(validManifest({ description: 'nul\u0000' })))).toEqual([
      'MANIFEST_CONTROL_CHARACTER /description',
    ]);
    expect(codes(validateManifest(validManifest({ 'bad\u001bkey': 1 })))).toEqual([
      'MANIFEST_CONTROL_CHARACTER /bad\u001bkey',
    ]);
  });

  it('keeps unknown fields, at the top and nested', async () => {
    const value = validManifest({ x_future: true, requirements: { os: ['linux'], gpu: 'optional' } });
    expect(validateManifest(value)).toEqual([]);
    expect(await loadManifest(encode(JSON.stringify(value)), 'manifest.json')).toMatchObject({
      x_future: true,
      requirements: { gpu: 'optional' },
    });
  });

  it('caps list lengths', () => {
    const tags = Array.from({ length: 300 }, (_, i) => `t${i}`);
    expect(codes(validateManifest(validManifest({ metadata: { tags } })))).toEqual([
      'MANIFEST_TOO_MANY_ITEMS /metadata/tags',
    ]);
  });
});
