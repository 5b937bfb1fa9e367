/**
 * One signed manifest must mean one thing to every reader. What JSON.parse and the `yaml` library settle
 * silently, and other readers settle otherwise, is refused with its code and JSON pointer: repeated keys,
 * numbers a 64-bit float does not hold, a byte order mark, YAML that YAML 1.1 readers read differently
 * (PyYAML, the 1.1 reader here, shows each difference), text that is not Unicode or that strict readers
 * refuse. What is accepted, PyYAML reads exactly as the registry does.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { SubmissionError } from '../../../index-builder/errors.ts';
import { loadManifest } from '../../../index-builder/manifest/index.ts';
import { encode, validManifest } from '../../support/fixtures.ts';

/** Debian's Python with its PyYAML (python3-yaml, which .ci/run installs): a YAML 1.1 reader. */
const PYTHON = '/usr/bin/python3';

/** What PyYAML's safe_load reads from each document, as JSON (timestamps as ISO text), or its error. */
function pyyaml(documents: readonly string[]): unknown[] {
  const script = `
import json, sys, yaml, datetime
out = []
for text in json.load(sys.stdin):
    try:
        out.append({"value": yaml.safe_load(text)})
    except Exception as e:
        out.append({"error": type(e).__name__})
def iso(o):
    if isinstance(o, (datetime.date, datetime.datetime)):
        return o.isoformat().replace('+00:00', 'Z')
    return str(o)
print(json.dumps(out, default=iso))
`;
  const stdout = execFileSync(PYTHON, ['-c', script], { input: JSON.stringify(documents) });
  return (JSON.parse(stdout.toString()) as { value?: unknown; error?: string }[]).map((r) =>
    r.error ? { error: r.error } : r.value,
  );
}

async function problemsOf(text: string, name = 'manifest.json'): Promise<[string, string][]> {
  try {
    await loadManifest(encode(text), name);
  } catch (error) {
    if (!(error instanceof SubmissionError)) throw error;
    return error.problems.map((p) => [p.code, p.path]);
  }
  return [];
}

/** A valid manifest with `extra` members added (keys the manifest does not have already). */
const json = (extra: string): string =>
  `${JSON.stringify(validManifest({ description: undefined, metadata: undefined })).slice(0, -1)},${extra}}`;
const yamlDoc = (extra: string): string =>
  `name: demo-plugin\nversion: 1.0.0\napi_version: v1\nplugin_type: cost_source\ncapabilities: [actual_cost]\n${extra}`;

describe('when a JSON manifest repeats a key', () => {
  it.each([
    ['at the top level', json('"name":"other-plugin"'), '/name'],
    ['inside an object', json('"metadata":{"license":"MIT","license":"GPL-3.0"}'), '/metadata/license'],
    ['inside an array', json('"x":[{"a":1},{"a":1,"a":2}]'), '/x/1/a'],
    ['spelled with an escape', json('"x":{"a":1,"\\u0061":2}'), '/x/a'],
    ['with a slash in the key', json('"x":{"a/b":1,"a\\/b":2}'), '/x/a~1b'],
  ])('refuses it %s, at its pointer', async (_, text, pointer) => {
    expect(await problemsOf(text)).toEqual([['MANIFEST_DUPLICATE_KEY', pointer]]);
  });

  it('accepts the same key in different objects', async () => {
    expect(await problemsOf(json('"x":[{"a":1},{"a":2}],"y":{"a":{"a":1}}'))).toEqual([]);
  });
});

describe('when a manifest holds a number not every reader holds alike', () => {
  it.each([
    ['2^53 + 1', '9007199254740993'],
    ['a 20-digit integer', '12345678901234567890'],
    ['1e300, an integer past 2^53', '1e300'],
    ['a number past a double', '1e400'],
    ['more digits than a double holds', '0.1000000000000000000001'],
    ['a number that rounds to zero', '1e-400'],
    ['a negative past 2^53', '-9007199254740993'],
  ])('refuses %s in JSON', async (_, numeral) => {
    expect(await problemsOf(json(`"x":{"n":${numeral}}`))).toEqual([['MANIFEST_NUMBER_UNSAFE', '/x/n']]);
  });

  it('bounds the sizes the schema has', async () => {
    const manifest = validManifest({ installation: { size_bytes: 2 ** 60 } });
    expect(await problemsOf(JSON.stringify(manifest))).toEqual(
      expect.arrayContaining([['MANIFEST_OUT_OF_RANGE', '/installation/size_bytes']]),
    );
  });

  it.each(['0.1', '1.5', '9007199254740991', '-0', '1e3', '2.5e-3', '100', '0.30000000000000004'])(
    'accepts %s',
    async (numeral) => {
      expect(await problemsOf(json(`"x":${numeral}`))).toEqual([]);
    },
  );

  it('refuses the same in YAML, judged on the text', async () => {
    expect(await problemsOf(yamlDoc('x:\n  num: 0.1000000000000000000001\n'), 'manifest.yaml')).toEqual([
      ['MANIFEST_NUMBER_UNSAFE', '/x/num'],
    ]);
    expect(await problemsOf(yamlDoc('x: [1, 12345678901234567890]\n'), 'manifest.yaml')).toEqual([
      ['MANIFEST_NUMBER_UNSAFE', '/x/1'],
    ]);
    expect(await problemsOf(yamlDoc('x: .inf\n'), 'manifest.yaml')).toEqual([
      ['MANIFEST_NUMBER_UNSAFE', '/x'],
    ]);
  });
});

describe('when a manifest starts with a byte order mark', () => {
  it.each(['manifest.json', 'manifest.yaml'])(
    'refuses it in %s rather than publish it signed',
    async (name) => {
      const text = name.endsWith('.json') ? JSON.stringify(validManifest()) : yamlDoc('');
      expect(await problemsOf(`\uFEFF${text}`, name)).toEqual([['MANIFEST_BYTE_ORDER_MARK', '']]);
    },
  );
});

describe('when YAML 1.1 readers would read a YAML manifest differently', () => {
  const ambiguous: [string, string, string][] = [
    ['a yes/no word', 'legacy: yes\n', '/legacy'],
    ['an on/off word', 'x:\n  - off\n', '/x/0'],
    ['a single-letter boolean', 'x: {answer: y}\n', '/x/answer'],
    ['a single-letter key', 'x: {n: 1}\n', '/x/n'],
    ['a leading-zero octal', 'x: 010\n', '/x'],
    ['a sexagesimal number', 'x: 1:20\n', '/x'],
    ['a 1.2 octal', 'x: 0o17\n', '/x'],
    ['a merge key', 'base: &b {license: MIT}\nmetadata:\n  <<: *b\n', ''],
    ['a %YAML directive', '', ''],
    ['a number as a key', 'x:\n  1: one\n', ''],
    ['a boolean as a key', 'x:\n  true: t\n', ''],
    ['a null key', 'x:\n  ~: nothing\n', ''],
    // YAML 1.1 floats have a dot, and a sign on the exponent; PyYAML reads these as text, or fails.
    ['an exponent without a dot', 'x: [1, 1e3]\n', '/x/1'],
    ['an exponent without a sign', 'x: {a: 2.5e3}\n', '/x/a'],
    ['an equals sign', 'x: =\n', '/x'],
    ['a merge sign as a value', 'x: [<<]\n', '/x/0'],
  ];

  it.each(ambiguous)('refuses %s', async (label, extra, pointer) => {
    const text = label === 'a %YAML directive' ? `%YAML 1.1\n---\n${yamlDoc('')}` : yamlDoc(extra);
    expect(await problemsOf(text, 'manifest.yaml')).toContainEqual(['MANIFEST_YAML_AMBIGUOUS', pointer]);
  });

  it('refuses values PyYAML really reads otherwise than a YAML 1.2 reader', () => {
    // Keys are refused for their type (PyYAML keeps `1` and "1" as two keys of one map); values differ.
    // `y` is a boolean to YAML 1.1 and Go's yaml.v2, though not to PyYAML, which is left out here.
    const documents = ambiguous
      .slice(0, 8)
      .filter(([label]) => !label.startsWith('a single-letter'))
      .map(([, extra]) => yamlDoc(extra));
    const readings = pyyaml(documents);
    documents.forEach((text, i) => {
      const yaml12 = YAML.parse(text, { schema: 'core', merge: false });
      expect(readings[i], text).not.toEqual(yaml12);
    });
  });

  it('refuses numbers PyYAML reads as text, and values it cannot read', async () => {
    const documents = ['x: [1, 1e3]\n', 'x: {a: 2.5e3}\n', 'x: =\n', 'x: [<<]\n'].map(yamlDoc);
    const readings = pyyaml(documents);
    expect(readings.map((r) => (r as { x?: unknown; error?: string }).x ?? r)).toEqual([
      [1, '1e3'],
      { a: '2.5e3' },
      { error: 'ConstructorError' },
      { error: 'ConstructorError' },
    ]);
    for (const text of documents)
      expect((await problemsOf(text, 'manifest.yaml')).map(([code]) => code)).toContain(
        'MANIFEST_YAML_AMBIGUOUS',
      );
  });

  it('accepts the quoted forms and plain timestamps, and PyYAML reads what the registry reads', async () => {
    const accepted = [
      yamlDoc('legacy: "yes"\nx: ["off", "010", "1:20", "0o17", "y"]\n'),
      yamlDoc('metadata:\n  created: 2026-01-15T10:00:00Z\n  license: MIT\n'),
      yamlDoc('x:\n  "1": one\n  "true": t\n  nested: {deep: [1, 2.5, -3, null, true, "text"]}\n'),
      yamlDoc('description: "tab\\tand new\\nline, and é, 😀"\nanchor: &a [1, 2]\nalias: *a\n'),
    ];
    const readings = pyyaml(accepted);
    for (const [i, text] of accepted.entries())
      expect(readings[i], text).toEqual(await loadManifest(encode(text), 'manifest.yaml'));
  });
});

describe('when a manifest holds text some reader refuses or reads otherwise', () => {
  it.each([
    ['a lone surrogate', '\\ud800', 'MANIFEST_INVALID_UNICODE'],
    ['a lone low surrogate', 'x\\udc00y', 'MANIFEST_INVALID_UNICODE'],
    ['a noncharacter', '\\uffff', 'MANIFEST_INVALID_UNICODE'],
    ['a noncharacter past the first plane', '\\ud83f\\udfff', 'MANIFEST_INVALID_UNICODE'],
    ['a C1 control', '\\u0080', 'MANIFEST_CONTROL_CHARACTER'],
    ['NEL, a YAML 1.1 line break', '\\u0085', 'MANIFEST_CONTROL_CHARACTER'],
    ['DEL', '\\u007f', 'MANIFEST_CONTROL_CHARACTER'],
    ['a line separator', '\\u2028', 'MANIFEST_UNSAFE_CHARACTER'],
    ['a paragraph separator', '\\u2029', 'MANIFEST_UNSAFE_CHARACTER'],
    ['a right-to-left override', 'safe\\u202egpj.exe', 'MANIFEST_UNSAFE_CHARACTER'],
    ['a byte order mark inside text', 'a\\ufeffb', 'MANIFEST_UNSAFE_CHARACTER'],
  ])('refuses %s in a value and in a key', async (_, escaped, code) => {
    expect(await problemsOf(json(`"description":"${escaped}"`))).toContainEqual([code, '/description']);
    const key = JSON.parse(`"k${escaped}"`) as string;
    const pointer = `/x/${key}`;
    expect(await problemsOf(json(`"x":{"k${escaped}":1}`))).toContainEqual([code, pointer]);
  });

  it('accepts tabs, line breaks and any well-formed text beyond them', async () => {
    expect(
      await problemsOf(json('"description":"a\\tb\\nc\\r\\u00e9 \\u4e2d \\ud83d\\ude00 \\u05d0"')),
    ).toEqual([]);
  });
});
