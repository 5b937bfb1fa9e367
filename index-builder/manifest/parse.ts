/**
 * Turns manifest bytes into a plain value, safely. JSON is parsed by JSON.parse; YAML by the `yaml` library
 * with its core schema only: any explicit tag (`!!js/function`, `!!binary`, `!custom`) is refused rather than
 * resolved, duplicate keys are errors, several documents are an error, and alias expansion is capped so an
 * alias bomb fails in microseconds instead of exhausting memory.
 */
import YAML from 'yaml';
import { type Problem, problem, SubmissionError } from '../errors.ts';

/** Largest manifest accepted, in bytes. */
export const MAX_MANIFEST_BYTES = 256 * 1024;
/** Largest number of alias expansions in a YAML manifest. */
export const MAX_YAML_ALIASES = 50;

function fail(problems: readonly Problem[]): never {
  throw new SubmissionError('INVALID_MANIFEST', problems);
}

function lineAndColumn(text: string, offset: number): string {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const column = offset - before.lastIndexOf('\n');
  return `line ${line}, column ${column}`;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    const message = (error as Error).message;
    const position = /position (\d+)/.exec(message);
    const where = position ? ` at ${lineAndColumn(text, Number(position[1]))}` : '';
    fail([problem('MANIFEST_PARSE_ERROR', '', `the manifest is not valid JSON${where}: ${message}`)]);
  }
}

function firstLine(message: string): string {
  return message.split('\n')[0] ?? message;
}

function parseYaml(text: string): unknown {
  const doc = YAML.parseDocument(text, {
    schema: 'core',
    uniqueKeys: true,
    merge: false,
    strict: true,
    prettyErrors: true,
  });
  const problems: Problem[] = [];
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
  YAML.visit(doc, (_key, node) => {
    if ((YAML.isScalar(node) || YAML.isMap(node) || YAML.isSeq(node)) && node.tag) {
      problems.push(
        problem('MANIFEST_YAML_UNSAFE', '', `YAML tags are not allowed (found ${node.tag})`, {
          expected: 'plain YAML: mappings, lists, strings, numbers, booleans, null',
        }),
      );
    }
  });
  if (problems.length > 0) fail(problems);
  try {
    return doc.toJS({ maxAliasCount: MAX_YAML_ALIASES });
  } catch (error) {
    if (error instanceof ReferenceError) {
      fail([
        problem(
          'MANIFEST_YAML_UNSAFE',
          '',
          `too many YAML alias expansions (an alias bomb?): ${error.message}`,
          { expected: `at most ${MAX_YAML_ALIASES}` },
        ),
      ]);
    }
    fail([
      problem('MANIFEST_PARSE_ERROR', '', `the manifest is not valid YAML: ${(error as Error).message}`),
    ]);
  }
}

/**
 * Parses a manifest file by its name: `.json` as JSON, `.yaml`/`.yml` as YAML.
 * @throws SubmissionError (INVALID_MANIFEST)
 */
export function parseManifestDocument(bytes: Uint8Array, fileName: string): unknown {
  if (bytes.byteLength > MAX_MANIFEST_BYTES) {
    fail([
      problem('MANIFEST_TOO_LARGE', '', 'the manifest is too large', {
        expected: `at most ${MAX_MANIFEST_BYTES} bytes`,
        found: `${bytes.byteLength} bytes`,
      }),
    ]);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    fail([problem('MANIFEST_NOT_UTF8', '', 'the manifest is not valid UTF-8 text')]);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const isYaml = /\.ya?ml$/i.test(fileName);
  const value = isYaml ? parseYaml(text) : parseJson(text);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    const found = value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
    fail([
      problem('MANIFEST_NOT_OBJECT', '', 'the manifest must be an object (a mapping)', {
        expected: 'an object',
        found,
      }),
    ]);
  }
  return value;
}
