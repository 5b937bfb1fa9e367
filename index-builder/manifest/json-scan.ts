/**
 * The JSON text scan every signed JSON document passes (manifests, actions, key rotations): a repeated key
 * at any depth, a number a 64-bit float does not hold as written. Apart from parse.ts so that readers of
 * actions and rotations do not carry the YAML parser.
 */
import { escapePointer, type Problem, problem } from '../errors.ts';

const NUMBER_TOKEN = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

/**
 * The problems a scan reports before it stops. Each names its JSON pointer, as long as the nesting is deep:
 * a rotation or manifest of 256 KiB nested 20,000 deep around 20,000 repeated keys made 20,000 pointers of
 * 40 KB each (minutes, and gigabytes; a rotation is read before any signature on it is checked). One
 * problem refuses the document; a hundred say enough of why.
 */
export const MAX_SCAN_PROBLEMS = 100;

/**
 * Duplicate keys and numbers that do not round-trip, in text JSON.parse has already accepted (so the scan
 * need not judge syntax), the first MAX_SCAN_PROBLEMS of them. Iterative: nesting depth costs no stack.
 */
type Frame =
  | {
      readonly kind: 'object';
      /** The pointer of this object itself, made once as it opens (a pointer per problem costs no walk). */
      readonly at: string;
      readonly keys: Set<string>;
      key: string;
      expectKey: boolean;
    }
  | { readonly kind: 'array'; readonly at: string; index: number };

export function scanJson(text: string): Problem[] {
  const problems: Problem[] = [];
  const stack: Frame[] = [];
  const pointer = (): string => {
    const top = stack.at(-1);
    if (!top) return '';
    return `${top.at}/${top.kind === 'object' ? escapePointer(top.key) : String(top.index)}`;
  };
  let i = 0;
  while (i < text.length && problems.length < MAX_SCAN_PROBLEMS) {
    const c = text[i] as string;
    const top = stack.at(-1);
    if (c === '{') {
      stack.push({ kind: 'object', at: pointer(), keys: new Set(), key: '', expectKey: true });
      i += 1;
    } else if (c === '[') {
      stack.push({ kind: 'array', at: pointer(), index: 0 });
      i += 1;
    } else if (c === '}' || c === ']') {
      stack.pop();
      i += 1;
    } else if (c === ',') {
      if (top?.kind === 'array') top.index += 1;
      else if (top?.kind === 'object') top.expectKey = true;
      i += 1;
    } else if (c === ':') {
      if (top?.kind === 'object') top.expectKey = false;
      i += 1;
    } else if (c === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      if (top?.kind === 'object' && top.expectKey) {
        const key = JSON.parse(text.slice(i, end + 1)) as string;
        top.key = key;
        if (top.keys.has(key)) {
          problems.push(
            problem('MANIFEST_DUPLICATE_KEY', pointer(), `the key ${JSON.stringify(key)} appears twice`, {
              expected: 'each key once per object (readers disagree on which value a repeated key has)',
            }),
          );
        }
        top.keys.add(key);
      }
      i = end + 1;
    } else if (c === '-' || (c >= '0' && c <= '9')) {
      NUMBER_TOKEN.lastIndex = i;
      const token = (NUMBER_TOKEN.exec(text) as RegExpExecArray)[0];
      const why = precisionProblem(token);
      if (why) problems.push(numberIssue(pointer(), token, why));
      i += token.length;
    } else {
      i += 1; // whitespace, and the letters of true, false and null
    }
  }
  return problems;
}

/**
 * The JSON pointers of the keys repeated within an object in `text` (text JSON.parse accepts): for any JSON
 * a signature covers, where readers disagree on which value a repeated key has.
 */
export function duplicateKeyPointers(text: string): string[] {
  return scanJson(text)
    .filter((p) => p.code === 'MANIFEST_DUPLICATE_KEY')
    .map((p) => p.path);
}

/** A decimal numeral's value as digits and exponent, without leading or trailing zeros: equal iff equal. */
function decimalValue(numeral: string): string | undefined {
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(numeral);
  if (!m) return undefined;
  const fraction = m[3] ?? '';
  const digits = `${m[2]}${fraction}`.replace(/^0+/, '');
  if (digits === '') return '0';
  const trimmed = digits.replace(/0+$/, '');
  const exponent = Number(m[4] ?? 0) - fraction.length + (digits.length - trimmed.length);
  return `${m[1]}${trimmed}e${exponent}`;
}

/**
 * Why a decimal numeral means another number once read into a 64-bit float (`0.1000000000000000000001`),
 * or undefined. Only the text can tell: the range of the value (past a double, past 2^53) is judged on the
 * parsed value by validation, for JSON and YAML alike (validate.ts).
 */
export function precisionProblem(numeral: string): string | undefined {
  const value = Number(numeral);
  if (!Number.isFinite(value) || (Number.isInteger(value) && !Number.isSafeInteger(value))) return undefined;
  const exact = decimalValue(numeral);
  if (exact !== undefined && exact !== decimalValue(String(value)))
    return `more precision than a 64-bit float holds (read as ${String(value)})`;
  return undefined;
}

export function numberIssue(path: string, numeral: string, why: string): Problem {
  return problem('MANIFEST_NUMBER_UNSAFE', path, `the number ${numeral} is ${why}`, {
    expected: `an integer within ±${Number.MAX_SAFE_INTEGER}, or a decimal a 64-bit float holds exactly as written`,
    found: numeral.length > 40 ? `${numeral.slice(0, 37)}...` : numeral,
  });
}
