/**
 * A YAML manifest read with one meaning (parse.ts says why): the `yaml` library with its core schema only.
 * Any explicit tag (`!!js/function`, `!!binary`, `!custom`) is refused rather than resolved, duplicate keys
 * are errors, several documents are an error, an alias within the node it names (a loop) is refused, alias
 * expansion is capped so an alias bomb fails in microseconds instead of exhausting memory (and so is the
 * size a manifest expands to), and nesting far deeper than a manifest's is refused before the parser sees
 * it (MAX_YAML_NESTING). The document is read a second time as YAML 1.1 (what PyYAML, Go's yaml.v2 and Ruby
 * read) and refused where the two differ (`yes`, `010`, `1:20`, a `<<` merge, and, held to PyYAML's
 * patterns, `1e3`, `=` and `<<`): the publisher quotes the value. Directives (`%YAML 1.1`, `%TAG`), keys
 * that are not strings and merge keys are refused outright.
 *
 * Its own module, imported by parse.ts only when a manifest is YAML: the library is 160 KB of code, and a
 * JSON manifest (every example, and what `plugindex pack` writes for a `.json`) never needs it.
 */
import YAML from 'yaml';
import { escapePointer, type Problem, problem } from '../errors.ts';
import { numberIssue, precisionProblem } from './json-scan.ts';
import { failManifest, MAX_MANIFEST_BYTES, MAX_YAML_ALIASES, type ParsedDocument } from './parse.ts';

/** Largest manifest once aliases are expanded, as JSON text. */
const MAX_EXPANDED_CHARACTERS = 4 * MAX_MANIFEST_BYTES;

/**
 * Nesting refused before the document is parsed. Flow brackets and compact block items (`- - - x`) nest a
 * level a byte or two, so the size cap allows 100,000 levels, and the parser took seconds on them (10 s for
 * flow sequences), overflowing its stack partway and going on. Validation refuses anything past
 * MAX_MANIFEST_DEPTH (16) anyway; this leaves room above it so the usual MANIFEST_TOO_DEEP, with its
 * pointer, is what a document merely too deep gets (a constant of its own: validate.ts and what it loads are
 * not for the client, which reads plugin sets through this module). Nesting by indentation needs a line a level, so the size cap
 * keeps it to a few hundred levels, which parse in well under a second.
 */
export const MAX_YAML_NESTING = 64;
/** A line opening more than MAX_YAML_NESTING block collections at once (`- `, `? `, `: ` in a row). */
const COMPACT_NESTING = new RegExp(`^[ \\t]*(?:[-?:][ \\t]+){${MAX_YAML_NESTING + 1}}`, 'm');

/** The numbers of YAML 1.1, as PyYAML resolves plain scalars to ints and floats. */
const YAML11_NUMBER =
  /^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+|[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/;

/** The lexer's tokens that stand for no text of the source (document start, flow end, scalar start). */
const CONTROL_TOKENS = new Set(['\u0002', '\u0018', '\u001f']);

/**
 * Where flow collections (`[`, `{`) nest past `limit`: the offset of the bracket that does, else undefined.
 * On the YAML lexer's tokens, so brackets in quoted or plain text and in comments do not count; lexed only
 * when there are that many brackets at all. Every other token is the source's own text, so their lengths
 * add up to the offset.
 */
function flowNestingPast(text: string, limit: number): number | undefined {
  if ((text.match(/[[{]/g)?.length ?? 0) <= limit) return undefined;
  let depth = 0;
  let offset = 0;
  for (const token of new YAML.Lexer().lex(text)) {
    if (token === '[' || token === '{') {
      depth += 1;
      if (depth > limit) return offset;
    } else if (token === ']' || token === '}') depth -= 1;
    if (!CONTROL_TOKENS.has(token)) offset += token.length;
  }
  return undefined;
}

/**
 * Where YAML text nests past MAX_YAML_NESTING in flow brackets or compact items (the offset of the bracket,
 * or of the line's start), else undefined: checked before the text is parsed, which such nesting makes take
 * seconds. Pure; a manifest (MANIFEST_TOO_DEEP) and the client's plugin set file are held to it alike.
 */
export function findDeepYamlNesting(text: string): number | undefined {
  return COMPACT_NESTING.exec(text)?.index ?? flowNestingPast(text, MAX_YAML_NESTING);
}

function firstLine(message: string): string {
  return message.split('\n')[0] ?? message;
}

/** The first place two readings differ, as a JSON pointer, with both values, or undefined when they agree. */
function firstDifference(
  a: unknown,
  b: unknown,
  path = '',
): { path: string; a: unknown; b: unknown } | undefined {
  // A YAML 1.1 timestamp and the same instant as text mean one thing; anything else must be equal.
  if (b instanceof Date)
    return typeof a === 'string' && Date.parse(a) === b.getTime() ? undefined : { path, a, b };
  if (typeof a !== 'object' || a === null || typeof b !== 'object' || b === null)
    return Object.is(a, b) || a === b ? undefined : { path, a, b };
  if (Array.isArray(a) !== Array.isArray(b)) return { path, a, b };
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const key of keys) {
    if (!Object.hasOwn(a, key) || !Object.hasOwn(b, key))
      return {
        path: `${path}/${escapePointer(key)}`,
        a: (a as Record<string, unknown>)[key],
        b: (b as Record<string, unknown>)[key],
      };
    const found = firstDifference(
      (a as Record<string, unknown>)[key],
      (b as Record<string, unknown>)[key],
      `${path}/${escapePointer(key)}`,
    );
    if (found) return found;
  }
  return undefined;
}

/** The JSON pointer of a node, from the ancestors `YAML.visit` gives (the client's set file reads it too). */
export function yamlPointerOf(ancestors: readonly unknown[], node: unknown): string {
  const chain = [...ancestors, node];
  let pointer = '';
  for (let i = 0; i < chain.length - 1; i++) {
    const parent = chain[i];
    const child = chain[i + 1];
    if (YAML.isPair(parent) && parent.value === child && YAML.isScalar(parent.key))
      pointer += `/${escapePointer(String(parent.key.value))}`;
    else if (YAML.isSeq(parent)) pointer += `/${parent.items.indexOf(child as never)}`;
  }
  return pointer;
}

/**
 * The nodes anchors name, as `YAML.visit` meets them: a visitor notes each node it visits (`note`), in the
 * document's order, parents before their children, so that an alias met later resolves (`resolve`) to the
 * last node its anchor named before it, as YAML resolves it, however often the name is given again. One
 * lookup an alias, where the library's own `Alias.resolve` walks the document for each.
 */
export class YamlAnchors {
  readonly #named = new Map<string, unknown>();

  note(node: unknown): void {
    if ((YAML.isScalar(node) || YAML.isMap(node) || YAML.isSeq(node)) && node.anchor)
      this.#named.set(node.anchor, node);
  }

  resolve(alias: YAML.Alias): unknown {
    return this.#named.get(alias.source);
  }
}

/**
 * Whether an alias lies within the node it resolves to (`loop: &a [1, *a]`), `ancestors` as `YAML.visit`
 * gives them: a loop, which no JSON holds, and which a reading that recurses follows until the stack
 * overflows. By the node, not the name: in `&x [&x [a], *x]` the alias is the inner list, no loop. Pure; a
 * manifest (MANIFEST_YAML_UNSAFE) and the client's plugin set file are held to it alike.
 */
export function isAliasLoop(ancestors: readonly unknown[], alias: YAML.Alias, anchors: YamlAnchors): boolean {
  const named = anchors.resolve(alias);
  return named !== undefined && ancestors.includes(named);
}

const shown = (value: unknown): string =>
  value === undefined
    ? 'no such key (it reads another key there)'
    : value instanceof Date
      ? `a timestamp ${value.toISOString()}`
      : JSON.stringify(value);

/**
 * How YAML is read where it is signed or trusted (manifests, the client's plugin sets): the 1.2 core schema
 * (no `yes` for true, no sexagesimal numbers), keys unique, no merge keys, errors with their place.
 */
export const STRICT_YAML = {
  schema: 'core',
  uniqueKeys: true,
  merge: false,
  strict: true,
  prettyErrors: true,
} as const;

/** Reads YAML manifest text, or throws SubmissionError (INVALID_MANIFEST) when there is no value. */
export function parseYaml(text: string): ParsedDocument {
  if (findDeepYamlNesting(text) !== undefined) {
    failManifest([
      problem('MANIFEST_TOO_DEEP', '', 'the manifest is nested too deeply (found before parsing it)', {
        expected: `at most ${MAX_YAML_NESTING} levels of brackets or compact items`,
      }),
    ]);
  }
  const doc = YAML.parseDocument(text, STRICT_YAML);
  const problems: Problem[] = [];
  const ambiguous = (path: string, message: string): void => {
    problems.push(
      problem('MANIFEST_YAML_AMBIGUOUS', path, message, {
        expected: 'plain YAML every reader reads alike: quote strings such as "yes", "010" or "1:20"',
      }),
    );
  };
  if (doc.directives?.yaml.explicit || /^%/m.test(text.split(/^---/m)[0] ?? ''))
    ambiguous('', 'YAML directives (%YAML, %TAG) are not allowed: readers differ in honouring them');
  for (const error of doc.errors) {
    if (error.code === 'DUPLICATE_KEY') {
      problems.push(
        problem(
          'MANIFEST_DUPLICATE_KEY',
          '',
          `duplicate key in the YAML manifest: ${firstLine(error.message)}`,
        ),
      );
    } else if (error.code === 'MULTIPLE_DOCS') {
      problems.push(
        problem(
          'MANIFEST_PARSE_ERROR',
          '',
          'the YAML manifest holds several documents; exactly one is allowed',
        ),
      );
    } else {
      problems.push(
        problem('MANIFEST_PARSE_ERROR', '', `the manifest is not valid YAML: ${firstLine(error.message)}`),
      );
    }
  }
  const numbers: Problem[] = [];
  let aliases = false;
  const anchors = new YamlAnchors();
  YAML.visit(doc, {
    Node(_key, node, path) {
      anchors.note(node);
      if ((YAML.isScalar(node) || YAML.isMap(node) || YAML.isSeq(node)) && node.tag) {
        problems.push(
          problem('MANIFEST_YAML_UNSAFE', '', `YAML tags are not allowed (found ${node.tag})`, {
            expected: 'plain YAML: mappings, lists, strings, numbers, booleans, null',
          }),
        );
      }
      // A plain number YAML 1.1 does not spell so (`1e3`: its floats need a dot and a signed exponent) is
      // text to PyYAML, and a plain `=` or `<<` value is its `value` or `merge` tag, which it cannot construct. The 1.1 reading
      // below is this library's, which takes both as 1.2 does, so the text is held to PyYAML's patterns.
      if (YAML.isScalar(node) && node.type === 'PLAIN') {
        const source = node.source ?? '';
        if (typeof node.value === 'number' && !YAML11_NUMBER.test(source))
          ambiguous(yamlPointerOf(path, node), `YAML 1.2 reads ${source} as a number, YAML 1.1 as text`);
        else if (source === '=' || source === '<<')
          ambiguous(
            yamlPointerOf(path, node),
            `YAML 1.1 reads a plain "${source}" as a tag it cannot construct`,
          );
      }
      // Precision only on the text; the range is judged on the value (validate.ts).
      if (YAML.isScalar(node) && typeof node.value === 'number') {
        const source = node.source ?? '';
        const why = /^[-+]?\d/.test(source) ? precisionProblem(source.replace(/^\+/, '')) : undefined;
        if (why) numbers.push(numberIssue(yamlPointerOf(path, node), source, why));
      }
    },
    // An alias within the node its anchor names makes a loop: no JSON holds it, and the readings below
    // recursed on it until the stack overflowed (a RangeError, not a refusal).
    Alias(_key, node, path) {
      aliases = true;
      if (isAliasLoop(path, node, anchors)) {
        problems.push(
          problem(
            'MANIFEST_YAML_UNSAFE',
            yamlPointerOf(path, node),
            'an alias within the node it names (a loop)',
            {
              expected: 'aliases to nodes outside them',
            },
          ),
        );
      }
    },
    Pair(_key, pair) {
      const key = pair.key;
      if (!YAML.isScalar(key) || typeof key.value !== 'string') {
        const what = YAML.isScalar(key) ? `${typeof key.value} ${JSON.stringify(key.value)}` : 'a collection';
        ambiguous(
          '',
          `a key must be a string (found ${what}); readers turn other keys into text differently`,
        );
      } else if (key.value === '<<') {
        ambiguous(
          '',
          'merge keys (<<) are not allowed: YAML 1.1 readers merge them, YAML 1.2 readers do not',
        );
      }
    },
  });
  if (problems.length > 0) failManifest(problems);
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_YAML_ALIASES });
  } catch (error) {
    if (error instanceof ReferenceError) {
      failManifest([
        problem(
          'MANIFEST_YAML_UNSAFE',
          '',
          `too many YAML alias expansions (an alias bomb?): ${error.message}`,
          { expected: `at most ${MAX_YAML_ALIASES}` },
        ),
      ]);
    }
    failManifest([
      problem('MANIFEST_PARSE_ERROR', '', `the manifest is not valid YAML: ${(error as Error).message}`),
    ]);
  }
  // Aliases copy nodes (each copy counted once against MAX_YAML_ALIASES, however large): 160 KB of text
  // was 10 MB of manifest, seconds of work and a 10 MB manifest.json published. No YAML manifest within
  // MAX_MANIFEST_BYTES renders past a few times that as JSON without them (quotes and brackets), so only
  // a document with aliases is rendered to be measured.
  const rendered = aliases ? JSON.stringify(value).length : 0;
  if (rendered > MAX_EXPANDED_CHARACTERS) {
    failManifest([
      problem('MANIFEST_TOO_LARGE', '', 'the manifest is too large once its YAML aliases are expanded', {
        expected: `at most ${MAX_EXPANDED_CHARACTERS} characters as JSON`,
        found: `${rendered} characters`,
      }),
    ]);
  }
  // The same bytes as YAML 1.1 readers take them (booleans yes/no/on/off, octal 010, sexagesimal 1:20,
  // timestamps, merges); an error there is a difference too.
  let legacy: unknown;
  try {
    legacy = YAML.parse(text, {
      version: '1.1',
      merge: true,
      uniqueKeys: false,
      maxAliasCount: MAX_YAML_ALIASES,
    });
  } catch (error) {
    ambiguous('', `YAML 1.1 readers cannot read this document: ${firstLine((error as Error).message)}`);
    failManifest(problems);
  }
  const difference = firstDifference(value, legacy);
  if (difference)
    ambiguous(
      difference.path,
      `YAML 1.2 reads ${shown(difference.a)} here, YAML 1.1 reads ${shown(difference.b)}`,
    );
  return { value, problems: [...numbers, ...problems] };
}
