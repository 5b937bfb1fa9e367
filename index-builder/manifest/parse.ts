/**
 * Turns manifest bytes into a plain value, safely, and only when every reader would read the same value:
 * the publisher signs bytes, and the signature must mean one thing to the registry and to every client.
 *
 * JSON is parsed by JSON.parse, then scanned once more (a scanner that only ever sees valid JSON) for what
 * JSON.parse settles silently and other readers settle otherwise: a key repeated at any depth (JSON.parse
 * keeps the last value, many readers the first) and a number that does not survive the trip into a 64-bit
 * float (`12345678901234567890`, `0.1000000000000000000001`).
 *
 * YAML is read by parse-yaml.ts, loaded only for a YAML manifest (reading is asynchronous for that reason):
 * the core schema only, no tags, unique keys, capped aliases, and the same value as YAML 1.1 readers take.
 *
 * A UTF-8 byte order mark is refused, not stripped: a JSON manifest is published byte for byte, signed.
 */
import { type Problem, problem, SubmissionError } from '../errors.ts';
import { scanJson } from './json-scan.ts';

/** Largest manifest accepted, in bytes. */
export const MAX_MANIFEST_BYTES = 256 * 1024;
/** Largest number of alias expansions in a YAML manifest. */
export const MAX_YAML_ALIASES = 50;

/** Refuses the manifest with every problem found (parse-yaml.ts refuses through it too). */
export function failManifest(problems: readonly Problem[]): never {
  throw new SubmissionError('INVALID_MANIFEST', problems);
}

function lineAndColumn(text: string, offset: number): string {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const column = offset - before.lastIndexOf('\n');
  return `line ${line}, column ${column}`;
}

function parseJson(text: string): ParsedDocument {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    const message = (error as Error).message;
    const position = /position (\d+)/.exec(message);
    const where = position ? ` at ${lineAndColumn(text, Number(position[1]))}` : '';
    failManifest([problem('MANIFEST_PARSE_ERROR', '', `the manifest is not valid JSON${where}: ${message}`)]);
  }
  return { value, problems: scanJson(text) };
}

/** The result of parsing: the value, and what makes readers disagree on it (reported with validation). */
export interface ParsedDocument {
  readonly value: unknown;
  readonly problems: readonly Problem[];
}

/**
 * Parses a manifest file by its name: `.json` as JSON, `.yaml`/`.yml` as YAML.
 * @throws SubmissionError (INVALID_MANIFEST), for anything `readManifestDocument` finds.
 */
export async function parseManifestDocument(bytes: Uint8Array, fileName: string): Promise<unknown> {
  const { value, problems } = await readManifestDocument(bytes, fileName);
  if (problems.length > 0) failManifest(problems);
  return value;
}

/**
 * Parses a manifest file by its name, returning the value with what makes readers disagree on it
 * (repeated keys, numbers, YAML 1.1 differences), so they are reported with the validation problems.
 * @throws SubmissionError (INVALID_MANIFEST) when there is no value to validate.
 */
export async function readManifestDocument(bytes: Uint8Array, fileName: string): Promise<ParsedDocument> {
  if (bytes.byteLength > MAX_MANIFEST_BYTES) {
    failManifest([
      problem('MANIFEST_TOO_LARGE', '', 'the manifest is too large', {
        expected: `at most ${MAX_MANIFEST_BYTES} bytes`,
        found: `${bytes.byteLength} bytes`,
      }),
    ]);
  }
  // The decoder would drop a byte order mark silently; it is refused instead (below).
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    failManifest([problem('MANIFEST_NOT_UTF8', '', 'the manifest is not valid UTF-8 text')]);
  }
  if (text.charCodeAt(0) === 0xfeff) {
    failManifest([
      problem('MANIFEST_BYTE_ORDER_MARK', '', 'the manifest starts with a byte order mark', {
        expected: 'UTF-8 without a byte order mark (it would be published inside the signed manifest)',
      }),
    ]);
  }
  const isYaml = /\.ya?ml$/i.test(fileName);
  const parsed = isYaml ? (await import('./parse-yaml.ts')).parseYaml(text) : parseJson(text);
  const value = parsed.value;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    const found = value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
    failManifest([
      problem('MANIFEST_NOT_OBJECT', '', 'the manifest must be an object (a mapping)', {
        expected: 'an object',
        found,
      }),
    ]);
  }
  return parsed;
}
