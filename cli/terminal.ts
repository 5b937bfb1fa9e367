/**
 * Where the CLI's lines go: stdout for answers, stderr for diagnostics. Apart from cli/output.ts (which
 * formats problems and outcomes, and imports the core's layout to say where an outcome is kept) so that the
 * dispatcher and `--help` load nothing else.
 *
 * Every line is written as `shown` gives it: what the CLI prints holds text from registries, locks and files
 * (names, descriptions, advisories, log entries, a refused value), and a terminal acts on control
 * characters in it (move the cursor, clear the screen, retitle the window, reorder what is drawn).
 */

/**
 * The characters a terminal acts on or draws out of order: C0 controls but tab and newline, DEL, C1
 * controls (U+009B is a whole CSI), and the bidi controls (U+061C, U+200E, U+200F, U+202A-U+202E,
 * U+2066-U+2069): those of index-builder/text.ts's refusals a terminal acts on (it also refuses the line and
 * paragraph separators, the BOM and noncharacters, which a terminal draws as they are), written here so that
 * `--help`, which loads this module, loads nothing more.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is escaped
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * `text` with every character a terminal would act on written as a `\uXXXX` escape. JSON output keeps its
 * meaning: such a character can only stand inside a JSON string (JSON.stringify escapes C0 itself), where
 * its escape is the same character.
 */
export function shown(text: string): string {
  return text.replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export function out(line = ''): void {
  process.stdout.write(`${shown(line)}\n`);
}

export function err(line: string): void {
  process.stderr.write(`${shown(line)}\n`);
}
