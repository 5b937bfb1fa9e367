/**
 * The renderers cannot emit text a reader would take for something else, whatever reached them: separators,
 * NEL and C1 controls leave as JSON escapes (the same string to a JSON reader, and no line break to a YAML
 * 1.1 reader: PyYAML reads index.yaml back exactly as index.json), a lone surrogate is refused, and pages
 * show U+FFFD. The manifest checks refuse such text first (test/index-builder/manifest/differentials.test.ts); this is
 * the guard behind them, for documents published before those checks, or a check that misses.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { processSubmissions, rebuildRegistry } from '../../index-builder/pipeline/index.ts';
import { escapeHtml } from '../../index-builder/render/html.ts';
import { toYaml } from '../../index-builder/render/yaml.ts';
import type { StoredObject } from '../../index-builder/store.ts';
import { oneLine, RenderError, stringifyJson, textProblem } from '../../index-builder/text.ts';
import { encode, makeBundle, makeRegistry, validManifest } from '../support/fixtures.ts';

const HOSTILE = 'a\u2028b\u2029c\u0085d\u0080e\u007ff\u202eg\ufeffh\ufffei\tj\nk';

/** PyYAML (Debian's python3-yaml), a YAML 1.1 reader, reading a document into JSON. */
function pyyamlAsJson(text: string): unknown {
  const script = 'import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin.read())))';
  return JSON.parse(execFileSync('/usr/bin/python3', ['-c', script], { input: text }).toString());
}

describe('when serializing text for a published document', () => {
  it('escapes what JSON may carry raw but other readers misread, keeping the same string', () => {
    const json = stringifyJson({ [HOSTILE]: HOSTILE });
    expect(json).not.toMatch(/[\u2028\u2029\u0080-\u009f\u007f\u202e\ufeff\ufffe]/);
    expect(json).toContain('\\u2028');
    expect(JSON.parse(json)).toEqual({ [HOSTILE]: HOSTILE });
  });

  it('refuses a lone surrogate, and only a real one', () => {
    expect(() => stringifyJson({ d: 'x\ud800y' })).toThrow(RenderError);
    expect(() => stringifyJson({ d: 'x\udfff' })).toThrow(
      expect.objectContaining({ code: 'RENDER_UNSAFE_TEXT' }),
    );
    // A pair is a character; a backslash followed by "ud800" is text.
    expect(stringifyJson({ d: '😀 \\ud800 \\\\ud800' })).toBe('{"d":"😀 \\\\ud800 \\\\\\\\ud800"}');
  });

  it('writes YAML that a YAML 1.1 reader reads back unchanged', () => {
    const value = { name: HOSTILE, list: [HOSTILE, 'yes', 'on', '010', '1:20'], [HOSTILE]: 1 };
    expect(pyyamlAsJson(toYaml(value))).toEqual(value);
  });

  it('shows U+FFFD on pages for what no page should show', () => {
    expect(escapeHtml(`<${HOSTILE}\ud800>`)).toBe(
      '&lt;a\uFFFDb\uFFFDc\uFFFDd\uFFFDe\uFFFDf\uFFFDg\uFFFDh\uFFFDi\tj\nk\uFFFD&gt;',
    );
  });

  it('names the character and why', () => {
    expect(textProblem('ok\u2028')).toMatchObject({ kind: 'unsafe', character: 'U+2028' });
    expect(textProblem('\udbff\udfff')).toMatchObject({ kind: 'unicode', character: 'U+10FFFF' });
    expect(textProblem('fine\ttext\n😀')).toBeUndefined();
    // `Costs v\u200F1 2 3\u200F` displays as `Costs v3 2 1`.
    expect(textProblem('Costs v\u200F1 2 3\u200F')).toMatchObject({
      kind: 'unsafe',
      character: 'U+200F',
      why: 'a bidirectional control (text that displays other than it reads)',
    });
  });

  it('finds every code point it refuses, and no other, of all 1,114,112', () => {
    const kindOf = (cp: number): string | undefined => {
      if ((cp <= 0x1f && cp !== 0x9 && cp !== 0xa && cp !== 0xd) || (cp >= 0x7f && cp <= 0x9f))
        return 'control';
      if (cp >= 0xd800 && cp <= 0xdfff) return 'unicode';
      if ((cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) === 0xfffe) return 'unicode';
      if (
        // The bidi controls include the three invisible marks (ALM, LRM, RLM), which reorder text too.
        [0x2028, 0x2029, 0xfeff, 0x061c, 0x200e, 0x200f].includes(cp) ||
        (cp >= 0x202a && cp <= 0x202e) ||
        (cp >= 0x2066 && cp <= 0x2069)
      )
        return 'unsafe';
      return undefined;
    };
    const wrong: string[] = [];
    for (let cp = 0; cp <= 0x10ffff; cp++) {
      // Each in the middle of plain text, where a check that stops early would miss it.
      const found = textProblem(`plain ${String.fromCodePoint(cp)} text`);
      if (found?.kind !== kindOf(cp)) wrong.push(cp.toString(16));
    }
    expect(wrong).toEqual([]);
  });
});

describe('when a published plugin document holds such text', () => {
  it('renders index.json, index.yaml and falcoctl/index.yaml that PyYAML and JSON readers read alike', async () => {
    const registry = await makeRegistry();
    await registry.submit(await makeBundle({ manifest: validManifest() }));
    await processSubmissions(registry.context);
    // Planted, as a document published before the manifest checks would be.
    const key = 'plugins/demo-plugin/index.json';
    const stored = registry.site.objects.get(key) as StoredObject;
    const doc = JSON.parse(new TextDecoder().decode(stored.body)) as Record<string, unknown>;
    registry.site.objects.set(key, {
      ...stored,
      body: encode(JSON.stringify({ ...doc, description: HOSTILE })),
    });

    await rebuildRegistry(registry.context);

    const text = (k: string) => new TextDecoder().decode(registry.site.objects.get(k)?.body);
    const index = JSON.parse(text('index.json')) as { plugins: { description: string }[] };
    expect(index.plugins[0]?.description).toBe(HOSTILE);
    expect(text('index.json')).not.toMatch(/[\u2028\u2029\u0085]/);
    expect(pyyamlAsJson(text('index.yaml'))).toEqual(index);
    expect(pyyamlAsJson(text('falcoctl/index.yaml'))).toEqual([
      expect.objectContaining({ name: 'demo-plugin', description: HOSTILE }),
    ]);
  });
});

describe('oneLine', () => {
  it('writes line feeds and carriage returns as escapes, and keeps the rest as it is', () => {
    expect(oneLine('a\nb\r\nc\td é 😀 \\n')).toBe('a\\u000ab\\u000d\\u000ac\td é 😀 \\n');
    expect(oneLine('plain')).toBe('plain');
  });
});
