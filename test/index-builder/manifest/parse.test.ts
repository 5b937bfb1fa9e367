import { describe, expect, it, vi } from 'vitest';
import YAML from 'yaml';
import { SubmissionError } from '../../../index-builder/errors.ts';
import { MAX_MANIFEST_BYTES, parseManifestDocument } from '../../../index-builder/manifest/index.ts';
import { MAX_SCAN_PROBLEMS } from '../../../index-builder/manifest/json-scan.ts';
import { encode, validManifest } from '../../support/fixtures.ts';
import { rejectedProblems } from '../../support/problems.ts';

const yaml = YAML.stringify(validManifest());

async function codesOf(bytes: Uint8Array, name: string): Promise<string[]> {
  return (await rejectedProblems(parseManifestDocument(bytes, name))).map((p) => p.code);
}

describe('when parsing JSON', () => {
  it('returns the object', async () => {
    expect(await parseManifestDocument(encode(JSON.stringify(validManifest())), 'manifest.json')).toEqual(
      validManifest(),
    );
  });

  it('reports syntax errors as MANIFEST_PARSE_ERROR with the parser message', async () => {
    expect(await codesOf(encode('{\n  "name": ,\n}'), 'manifest.json')).toEqual(['MANIFEST_PARSE_ERROR']);
    await expect(parseManifestDocument(encode('{\n  "name": ,\n}'), 'manifest.json')).rejects.toThrow(
      /not valid JSON.*Unexpected token/,
    );
  });

  it.each([
    ['an array', '[1]'],
    ['a string', '"x"'],
    ['null', 'null'],
  ])('rejects %s at the top level', async (_label, text) => {
    expect(await codesOf(encode(text), 'manifest.json')).toEqual(['MANIFEST_NOT_OBJECT']);
  });

  it('rejects bytes that are not UTF-8 and manifests over the size limit', async () => {
    expect(await codesOf(new Uint8Array([0x7b, 0xc3, 0x28, 0x7d]), 'manifest.json')).toEqual([
      'MANIFEST_NOT_UTF8',
    ]);
    expect(await codesOf(new Uint8Array(MAX_MANIFEST_BYTES + 1).fill(0x20), 'manifest.json')).toEqual([
      'MANIFEST_TOO_LARGE',
    ]);
  });

  it('refuses a manifest nested deep around a key repeated thousands of times at once, naming the first problems', async () => {
    // 256 KiB: 20,000 arrays deep around one object repeating its key some 20,000 times. Each problem's
    // pointer was made by walking the 20,000 levels: minutes and gigabytes for one upload.
    const depth = 20_000;
    const repeats = Math.floor((MAX_MANIFEST_BYTES - 2 * depth - 64) / 6);
    const text = `{"x":${'['.repeat(depth)}{${Array(repeats).fill('"k":1').join(',')}}${']'.repeat(depth)}}`;
    // Act (the test's timeout bounds it: the scan before took minutes; its speed is the bench's to time)
    const problems = await rejectedProblems(parseManifestDocument(encode(text), 'manifest.json'));

    expect(problems).toHaveLength(MAX_SCAN_PROBLEMS);
    expect(problems[0]).toMatchObject({
      code: 'MANIFEST_DUPLICATE_KEY',
      path: `/x${'/0'.repeat(depth)}/k`,
    });
  }, 30_000);
});

describe('when parsing YAML', () => {
  it('returns the same value as the JSON form', async () => {
    expect(await parseManifestDocument(encode(yaml), 'manifest.yaml')).toEqual(validManifest());
    expect(await parseManifestDocument(encode(yaml), 'manifest.yml')).toEqual(validManifest());
  });

  it('refuses YAML 1.1 words a 1.1 reader takes for booleans, and keeps them when quoted', async () => {
    expect(await codesOf(encode(`${yaml}legacy: yes\ncountry: NO\n`), 'manifest.yaml')).toEqual([
      'MANIFEST_YAML_AMBIGUOUS',
    ]);
    expect(
      await parseManifestDocument(encode(`${yaml}legacy: "yes"\ncountry: 'NO'\n`), 'manifest.yaml'),
    ).toMatchObject({ legacy: 'yes', country: 'NO' });
  });

  it.each([
    ['a code tag', `${yaml}x: !!js/function "function(){}"\n`],
    ['a binary tag', `${yaml}x: !!binary aGVsbG8=\n`],
    ['a custom tag', `${yaml}x: !include /etc/passwd\n`],
    ['a set tag', `${yaml}x: !!set {a, b}\n`],
  ])('refuses %s', async (_label, text) => {
    expect(await codesOf(encode(text), 'manifest.yaml')).toContain('MANIFEST_YAML_UNSAFE');
  });

  it('stops an alias bomb before it expands', async () => {
    const levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    for (const name of 'bcdefghi') {
      const prev = String.fromCharCode(name.charCodeAt(0) - 1);
      levels.push(`${name}: &${name} [${Array(9).fill(`*${prev}`).join(',')}]`);
    }
    // 9^9 copies of "lol" expanded, minutes or a crash. The cap stops the expansion: the alias past it is
    // refused (a ReferenceError) where it is met, rather than expanded into a value something then walks.
    const expanded = vi.spyOn(YAML.Alias.prototype, 'toJSON');
    try {
      expect(await codesOf(encode(`${yaml}${levels.join('\n')}\n`), 'manifest.yaml')).toEqual([
        'MANIFEST_YAML_UNSAFE',
      ]);
      expect(expanded.mock.results.filter((r) => r.type === 'throw')).toEqual([
        { type: 'throw', value: expect.any(ReferenceError) },
      ]);
    } finally {
      expanded.mockRestore();
    }
  });

  it('takes a node used 50 times (its anchor and 49 aliases) and refuses a 51st use, as an alias bomb', async () => {
    // The cap written out, not read from MAX_YAML_ALIASES: a test built on the constant moves with it, and
    // the bomb above still stops under a cap 20 times looser. The anchored node is its first use.
    const copies = (n: number) => `${yaml}base: &b {x: 1}\ncopies: [${Array(n).fill('*b').join(', ')}]\n`;
    expect(await parseManifestDocument(encode(copies(49)), 'manifest.yaml')).toMatchObject({
      copies: Array(49).fill({ x: 1 }),
    });
    expect(await rejectedProblems(parseManifestDocument(encode(copies(50)), 'manifest.yaml'))).toEqual([
      expect.objectContaining({
        code: 'MANIFEST_YAML_UNSAFE',
        path: '',
        message: expect.stringContaining('too many YAML alias expansions'),
        expected: 'at most 50',
      }),
    ]);
  });

  it.each([
    ['list', 'loop: &a [1, *a]\n'],
    ['mapping', 'loop: &a {b: *a}\n'],
    ['block mapping (deeper down)', 'loop: &a\n  b:\n    - *a\n'],
  ])('refuses an alias within the %s it names', async (_label, text) => {
    await expect(parseManifestDocument(encode(`${yaml}${text}`), 'manifest.yaml')).rejects.toSatisfy(
      (e) => e instanceof SubmissionError && e.problems[0]?.code === 'MANIFEST_YAML_UNSAFE',
    );
  });

  it('takes an alias of an anchor given again inside the node that first had it for the node it names', async () => {
    // YAML resolves *x to the inner list, the last node named x before it: no loop, whatever the name.
    expect(
      await parseManifestDocument(encode(`${yaml}nested: &x [&x [a], *x]\n`), 'manifest.yaml'),
    ).toMatchObject({ nested: [['a'], ['a']] });
  });

  it('refuses aliases that copy a large node past what any manifest holds', async () => {
    // 160 KB of text, ten MB once its aliases are expanded (each copy an alias of its own, under the cap):
    // accepted before, after seconds of work, and published as a 10 MB manifest.json.
    const big = `big: &a [${Array(20_000).fill('xxxxxxx').join(',')}]\ncopies: [${Array(49).fill('*a').join(',')}]\n`;
    // Refused on the expanded size, before the second reading (YAML 1.1) and the walk comparing the two
    // readings, each over the whole 10 MB.
    const secondReading = vi.spyOn(YAML, 'parse');
    try {
      expect(await codesOf(encode(`${yaml}${big}`), 'manifest.yaml')).toEqual(['MANIFEST_TOO_LARGE']);
      expect(secondReading).not.toHaveBeenCalled();
    } finally {
      secondReading.mockRestore();
    }
  });

  it('allows a few aliases', async () => {
    expect(
      await parseManifestDocument(encode(`${yaml}base: &b {x: 1}\ncopy: *b\n`), 'manifest.yaml'),
    ).toMatchObject({ copy: { x: 1 } });
  });

  it('refuses duplicate keys and several documents', async () => {
    expect(await codesOf(encode(`${yaml}name: again\n`), 'manifest.yaml')).toEqual([
      'MANIFEST_DUPLICATE_KEY',
    ]);
    expect(await codesOf(encode(`${yaml}---\nname: second\n`), 'manifest.yaml')).toEqual([
      'MANIFEST_PARSE_ERROR',
    ]);
  });
});

describe('when a YAML manifest is nested deeper than any manifest is', () => {
  // Within the size cap, flow brackets and compact `- ` items nest a level a byte or two: the parser took
  // seconds on them (its stack overflowed at a few hundred levels, then it went on), for each upload.
  const half = (MAX_MANIFEST_BYTES - yaml.length - 16) >> 1;
  it.each([
    ['flow sequences', `${yaml}x: ${'['.repeat(half)}${']'.repeat(half)}\n`],
    ['flow mappings', `${yaml}x: ${'{'.repeat(half)}${'}'.repeat(half)}\n`],
    ['compact block sequences', `${yaml}x:\n${'- '.repeat(half)}y\n`],
    ['compact explicit keys', `${yaml}x:\n${'? '.repeat(half)}y\n`],
  ])('refuses %s as MANIFEST_TOO_DEEP, at once', async (_label, text) => {
    // Found by a scan of the text, before the parser, which took seconds on such nesting, sees it.
    const parsed = vi.spyOn(YAML, 'parseDocument');
    try {
      expect(await codesOf(encode(text), 'manifest.yaml')).toEqual(['MANIFEST_TOO_DEEP']);
      expect(parsed).not.toHaveBeenCalled();
    } finally {
      parsed.mockRestore();
    }
  });

  it('reads brackets in quoted text, plain text and comments as text', async () => {
    const text = `${yaml}note: "${'['.repeat(100)}"\nplain: a${'{'.repeat(100)}\n# ${'['.repeat(100)}\n`;
    expect(await parseManifestDocument(encode(text), 'manifest.yaml')).toMatchObject({
      note: '['.repeat(100),
      plain: `a${'{'.repeat(100)}`,
    });
  });
});
