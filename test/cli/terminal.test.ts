/**
 * What the CLI writes to a terminal: text from registries, locks and files, with nothing a terminal acts on.
 */
import { describe, expect, it } from 'vitest';
import { shown } from '../../cli/terminal.ts';

describe('shown', () => {
  it('writes every character a terminal acts on as an escape, and keeps tab, newline and the rest', () => {
    const acted = [
      ...Array.from({ length: 0x20 }, (_, i) => i).filter((c) => c !== 0x09 && c !== 0x0a),
      ...Array.from({ length: 0x21 }, (_, i) => 0x7f + i),
      0x061c,
      0x200e,
      0x200f,
      0x202a,
      0x202b,
      0x202c,
      0x202d,
      0x202e,
      0x2066,
      0x2067,
      0x2068,
      0x2069,
    ];
    for (const code of acted) {
      const text = `a${String.fromCharCode(code)}b`;
      expect(shown(text), `U+${code.toString(16)}`).toBe(`a\\u${code.toString(16).padStart(4, '0')}b`);
    }
    const kept = 'tab\there\nnext line: é, 漢字, emoji 😀, quote " and backslash \\';
    expect(shown(kept)).toBe(kept);
  });

  it('leaves JSON meaning what it meant: the escapes stand inside its strings', () => {
    const value = { name: 'evil\u009b2J', note: 'rtl\u202eevil', esc: '\u001b]0;title\u0007' };
    const written = shown(JSON.stringify(value, null, 2));
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what must not be there
    expect(written).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202e]/);
    expect(JSON.parse(written)).toEqual(value);
  });
});
