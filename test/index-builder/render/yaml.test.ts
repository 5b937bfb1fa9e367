import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { toYaml } from '../../../index-builder/render/yaml.ts';

describe('when writing YAML', () => {
  it('round-trips nested objects, arrays and every scalar type through a YAML parser', () => {
    const value = {
      name: 'x',
      count: 3,
      ratio: 0.5,
      ok: true,
      none: null,
      empty: [],
      blank: {},
      list: [1, 'two', { three: [3, [4, []]] }],
      nested: { deeper: { deepest: ['a'] } },
    };
    expect(YAML.parse(toYaml(value))).toEqual(value);
  });

  it('keeps strings that look like other YAML types as strings', () => {
    const tricky = [
      'yes',
      'no',
      'null',
      '~',
      '1.0',
      '0x10',
      '#comment',
      '&anchor',
      '*alias',
      '!tag',
      '- item',
      'a: b',
      '{x}',
      '[y]',
      '',
      ' pad ',
    ];
    const value = { tricky, 'key: with colon': 1, yes: 'y', null: 'n', '#': 'hash' };
    const parsed = YAML.parse(toYaml(value));
    expect(isDeepStrictEqual(parsed, value)).toBe(true);
  });

  it('escapes control characters, quotes and non-ASCII text', () => {
    const value = { s: 'line\nbreak\t"quoted" \\ back \u0001 ü 漢字 \u2028' };
    expect(YAML.parse(toYaml(value))).toEqual(value);
  });

  it('writes block style with bare keys', () => {
    expect(toYaml({ plugins: [{ name: 'a', tags: ['x'] }] })).toBe(
      'plugins:\n- name: "a"\n  tags:\n  - "x"\n',
    );
  });

  it('refuses values JSON cannot hold', () => {
    expect(() => toYaml({ n: Number.NaN })).toThrow(TypeError);
    expect(() => toYaml({ f: () => 1 })).toThrow(TypeError);
  });
});
