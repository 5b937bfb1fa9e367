/**
 * Text every reader reads the same way. A signed document means one thing only if no reader can take its
 * text for something else: a lone surrogate is not Unicode (strict JSON readers refuse it, lenient ones
 * replace it), C1 controls and U+FFFE/U+FFFF are outside what YAML may contain, U+0085, U+2028 and U+2029
 * are line breaks to YAML 1.1 readers (a double-quoted scalar holding one reads back changed) and to
 * JavaScript before ES2019, and bidi controls make text display other than it reads. Manifests holding any
 * of them are refused (manifest/validate.ts); the renderers escape what JSON can escape and refuse the rest
 * (`stringifyJson`), so no published document can carry them even if a check upstream missed one.
 */
import { PlugindexError } from './errors.ts';

export type TextProblemKind = 'control' | 'unicode' | 'unsafe';

export interface TextProblem {
  readonly kind: TextProblemKind;
  /** The offending code point, as `U+XXXX`. */
  readonly character: string;
  readonly why: string;
}

/** C0 controls other than tab, LF and CR; DEL; C1 controls (U+0085 NEL among them). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is refused
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/u;
/** A surrogate on its own: in `u` mode a pair is one code point and does not match. */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/** True when `text` holds a surrogate on its own: not Unicode, and so not UTF-8 (an S3 key, say). */
export function hasLoneSurrogate(text: string): boolean {
  return LONE_SURROGATE.test(text);
}
/** Noncharacters in the Basic Multilingual Plane: U+FDD0..U+FDEF, U+FFFE, U+FFFF. */
const BMP_NONCHARACTER = /[\uFDD0-\uFDEF\uFFFE\uFFFF]/u;
const ASTRAL = /[\u{10000}-\u{10FFFF}]/gu;

/** The first noncharacter in `text`: the BMP ones, or the last two code points of another plane. */
function nonCharacter(text: string): string | undefined {
  const bmp = BMP_NONCHARACTER.exec(text);
  if (bmp) return bmp[0];
  for (const [char] of text.matchAll(ASTRAL))
    if (((char.codePointAt(0) ?? 0) & 0xfffe) === 0xfffe) return char;
  return undefined;
}
/**
 * Line and paragraph separators, the bidi controls (Unicode's Bidi_Control: the embeddings, overrides and
 * isolates, and the invisible marks U+061C, U+200E and U+200F, which reorder what is beside them as well:
 * `v\u200F1 2 3\u200F` displays `3 2 1`), and the byte order mark.
 */
const UNSAFE = /[\u061C\u200E\u200F\u2028\u2029\u202A-\u202E\u2066-\u2069\uFEFF]/u;

const codePoint = (match: string): string =>
  `U+${(match.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`;

/** What is wrong with `text` for a reader, or undefined when every reader reads it alike. */
export function textProblem(text: string): TextProblem | undefined {
  if (!ANY_PROBLEM.test(text)) return undefined;
  let match = CONTROL.exec(text);
  if (match) return { kind: 'control', character: codePoint(match[0]), why: 'a control character' };
  match = LONE_SURROGATE.exec(text);
  if (match)
    return { kind: 'unicode', character: codePoint(match[0]), why: 'a lone surrogate (not Unicode text)' };
  const non = nonCharacter(text);
  if (non) return { kind: 'unicode', character: codePoint(non), why: 'a Unicode noncharacter' };
  match = UNSAFE.exec(text);
  if (match) {
    const character = codePoint(match[0]);
    const why =
      character === 'U+2028' || character === 'U+2029'
        ? 'a line or paragraph separator (a line break to YAML 1.1 readers)'
        : character === 'U+FEFF'
          ? 'a byte order mark'
          : 'a bidirectional control (text that displays other than it reads)';
    return { kind: 'unsafe', character, why };
  }
  return undefined;
}

/** Everything `textProblem` finds in the first plane, at once (astral noncharacters aside). */
const UNSHOWABLE =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is replaced
  /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\uD800-\uDFFF\uFDD0-\uFDEF\uFFFE\uFFFF\u061C\u200E\u200F\u2028\u2029\u202A-\u202E\u2066-\u2069\uFEFF]/gu;

/** The last two code points of each plane past the first: noncharacters too. */
const ASTRAL_NONCHARACTERS = Array.from({ length: 16 }, (_, i) => (i + 1) * 0x10000 + 0xfffe)
  .map((at) => `\\u{${at.toString(16)}}\\u{${(at + 1).toString(16)}}`)
  .join('');
/**
 * Anything `textProblem` refuses, in one class (`UNSHOWABLE`'s, and the astral noncharacters): most text
 * holds none, and one scan of it for all of them costs less than one scan for each (manifest validation
 * asks of every string of 10,000 manifests in an import). The checks of `textProblem` then say which it is,
 * in their order.
 */
const ANY_PROBLEM = new RegExp(`[${UNSHOWABLE.source.slice(1, -1)}${ASTRAL_NONCHARACTERS}]`, 'u');

/** `UNSHOWABLE` without the global flag: a test keeps no position between calls. */
const ANY_UNSHOWABLE = new RegExp(UNSHOWABLE.source, 'u');

/**
 * `text` with what no page should show replaced by U+FFFD (the renderers' guard for HTML). Tested first:
 * text almost never holds any, and a test is a third of a replace's cost (a rebuild of 10,000 pages asks
 * this of some 400,000 strings).
 */
export function showableText(text: string): string {
  return ANY_UNSHOWABLE.test(text) ? text.replace(UNSHOWABLE, '\uFFFD') : text;
}

/** A document the registry was about to publish holds text no reader should get. */
export class RenderError extends PlugindexError {
  override readonly name = 'RenderError';
}

/** Characters JSON may carry raw that a strict YAML reader or an old JavaScript engine would misread. */
const ESCAPE_IN_JSON =
  /[\u007F-\u009F\u061C\u200E\u200F\u2028\u2029\u202A-\u202E\u2066-\u2069\uFEFF\uFDD0-\uFDEF\uFFFE\uFFFF]/g;
/** `ESCAPE_IN_JSON` without the global flag, to test for one before replacing any. */
const ANY_ESCAPE_IN_JSON = new RegExp(ESCAPE_IN_JSON.source);
/**
 * The escape well-formed JSON.stringify writes for a lone surrogate (`\ud800`), preceded by an even number
 * of backslashes (an odd number would make it literal text: `\\ud800` is a backslash and "ud800").
 */
const ESCAPED_SURROGATE = /(?<!\\)(?:\\\\)*\\ud[89a-f][0-9a-f]{2}/;

const unicodeEscape = (c: string): string => `\\u${(c.codePointAt(0) ?? 0).toString(16).padStart(4, '0')}`;

/**
 * Makes serialized JSON text safe for every reader, and for embedding in YAML: escapes C1 controls, DEL,
 * separators, bidi controls, the BOM and noncharacters as `\uXXXX` (the same string to any JSON reader; such
 * characters can only occur inside strings), and throws RenderError (RENDER_UNSAFE_TEXT) on a lone surrogate.
 */
export function safeJsonText(json: string): string {
  // The escape's plain prefix first: a search for a fixed string is far cheaper than the look-behind's.
  if (json.includes('\\ud') && ESCAPED_SURROGATE.test(json))
    throw new RenderError('RENDER_UNSAFE_TEXT', 'refusing to publish text with a lone surrogate');
  return ANY_ESCAPE_IN_JSON.test(json) ? json.replace(ESCAPE_IN_JSON, unicodeEscape) : json;
}

/** JSON.stringify for published documents: `safeJsonText` applied. */
export function stringifyJson(value: unknown, space?: number): string {
  return safeJsonText(JSON.stringify(value, null, space));
}

/**
 * `text` for a line of its own among others (a search row, a version's marks, a warning): a publisher's
 * description, reason or summary may hold line feeds (and carriage returns, which the terminal guard
 * escapes as well), and printed as they are they start a line of the publisher's choosing, one that reads
 * as another plugin's row or another version's. Each is written as the escape `\u000a` (`\u000d`), so the
 * text is all there and every line the reader sees is the program's.
 */
export function oneLine(text: string): string {
  return text.replace(/[\n\r]/g, (c) => (c === '\n' ? '\\u000a' : '\\u000d'));
}
