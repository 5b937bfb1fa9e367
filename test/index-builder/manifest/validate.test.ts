import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { normalizeDigest } from '../../../index-builder/digest.ts';
import type { Problem } from '../../../index-builder/errors.ts';
import { loadManifest, validateManifest } from '../../../index-builder/manifest/index.ts';
import { encode, validManifest } from '../../support/fixtures.ts';
import { submissionErrorFrom } from '../../support/problems.ts';
import { PULUMICOST_SPEC } from '../../support/reference.ts';

// Real public data: the PulumiCost specification's example manifest (shared/reference, not copied here).
const REFERENCE_EXAMPLE = path.join(PULUMICOST_SPEC, 'examples/aws-cost-explorer-plugin.json');

const codes = (problems: readonly Problem[]): string[] => problems.map((p) => `${p.code} ${p.path}`);

describe('when the manifest is the real upstream example', () => {
  it('accepts it, sha256:-prefixed checksum and all', () => {
    const manifest = loadManifest(new Uint8Array(readFileSync(REFERENCE_EXAMPLE)), 'manifest.json');
    expect(manifest.name).toBe('aws-cost-explorer');
    expect(normalizeDigest(manifest.installation?.checksum ?? '')).toMatch(/^[0-9a-f]{64}$/);
  });

  it('accepts the same document written as YAML', () => {
    const value = JSON.parse(readFileSync(REFERENCE_EXAMPLE, 'utf8'));
    expect(loadManifest(encode(YAML.stringify(value)), 'manifest.yaml')).toEqual(value);
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

describe('when the structure is hostile', () => {
  it('rejects prototype keys at any depth without polluting Object.prototype', () => {
    const text =
      '{"name":"demo-plugin","version":"1.0.0","api_version":"v1","plugin_type":"cost_source","capabilities":["actual_cost"],"metadata":{"__proto__":{"polluted":true}}}';
    const error = submissionErrorFrom(() => loadManifest(encode(text), 'manifest.json'));
    expect(codes(error.problems)).toEqual(['MANIFEST_FORBIDDEN_KEY /metadata/__proto__']);
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

  it('keeps unknown fields, at the top and nested', () => {
    const value = validManifest({ x_future: true, requirements: { os: ['linux'], gpu: 'optional' } });
    expect(validateManifest(value)).toEqual([]);
    expect(loadManifest(encode(JSON.stringify(value)), 'manifest.json')).toMatchObject({
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
