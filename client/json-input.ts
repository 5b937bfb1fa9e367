/**
 * Reading the JSON files only the client writes (config.json, plugindex.lock) by hand, not with a schema
 * library, so the client starts fast: every problem of a file as `file#/pointer: expected X, found Y`, a
 * missing field and a field of the wrong type told apart.
 */
import { escapePointer, MAX_REPORTED_PROBLEMS } from '../index-builder/errors.ts';
import { duplicateKeyPointers } from '../index-builder/manifest/json-scan.ts';
import { ClientError, type ClientErrorCode } from './errors.ts';

/** A configured registry's name: what commands and lock files call it. */
export const REGISTRY_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
/**
 * A registry key's fingerprint: OpenPGP v4, as index-builder/signing.ts makes registry keys (GnuPG 2.2 reads
 * no v6 key). A publisher's may be v6 too: index-builder/fingerprint.ts's KEY_FINGERPRINT.
 */
export const FINGERPRINT = /^[0-9A-F]{40}$/;

/** The value of an object's own property: a plugin named `constructor` must not find Object.prototype's. */
export function own<T>(record: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function isNonNegativeInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** What a value is, for "found ...": a missing field and a field of the wrong type read differently. */
export function describe(value: unknown): string {
  if (value === undefined) return 'nothing (the field is missing)';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  switch (typeof value) {
    case 'string':
      return value.length > 80 ? `${JSON.stringify(value.slice(0, 80))}… (a string)` : JSON.stringify(value);
    case 'number':
      return `the number ${value}`;
    case 'boolean':
      return `the boolean ${value}`;
    default:
      return 'an object';
  }
}

/**
 * What a value written where a secret reference belongs is, without the value: a number (an unquoted PIN
 * or numeric token, which YAML and JSON read as one) is still the secret, and a message goes to logs.
 */
export function describeSecretField(value: unknown): string {
  if (typeof value === 'number' || typeof value === 'bigint')
    return 'a number (not shown: it may be the secret)';
  return describe(value);
}

/** Every problem of one file, each as `file#/pointer: expected X, found Y`. */
export class Problems {
  readonly #file: string;
  readonly #code: ClientErrorCode;
  readonly #lines: string[] = [];

  constructor(file: string, code: ClientErrorCode) {
    this.#file = file;
    this.#code = code;
  }

  add(pointer: string, expected: string, found: string): void {
    this.#lines.push(`${this.#file}#${pointer}: expected ${expected}, found ${found}`);
  }

  expect(pointer: string, expected: string, value: unknown): void {
    this.add(pointer, expected, describe(value));
  }

  unknownFields(at: string, value: Record<string, unknown>, known: readonly string[]): void {
    for (const key of Object.keys(value)) {
      if (!known.includes(key))
        this.add(
          `${at}/${escapePointer(key)}`,
          `only the fields ${known.join(', ')}`,
          'a field this version does not know',
        );
    }
  }

  count(): number {
    return this.#lines.length;
  }

  any(): boolean {
    return this.#lines.length > 0;
  }

  error(): ClientError {
    const [first] = this.#lines;
    const count = this.#lines.length;
    // Listed up to MAX_REPORTED_PROBLEMS lines, as a submission's are: a set file within its size cap
    // held 75,000 problems, an 11 MB message.
    const listed =
      count > MAX_REPORTED_PROBLEMS ? this.#lines.slice(0, MAX_REPORTED_PROBLEMS - 1) : this.#lines;
    const rest = count > listed.length ? [`${count - listed.length} more problems, not listed`] : [];
    const message =
      count === 1 && first !== undefined
        ? first
        : `${this.#file} has ${count} problems:\n${[...listed, ...rest].map((l) => `  ${l}`).join('\n')}`;
    return new ClientError(this.#code, message);
  }
}

/**
 * The file's top-level JSON object, each key once in each object: `JSON.parse` keeps the last of a repeated
 * key without a word, where a lock or a configuration left with both sides of a merge means two things.
 * @throws ClientError (the Problems' code) when it is not JSON, repeats a key, or is not an object.
 */
export function parseJsonObject(
  text: string,
  problems: Problems,
  /** What to do about a merge conflict this file's reader knows better (the lock's floor: lockfile.ts). */
  conflictAdvice?: (hunks: readonly ConflictHunk[]) => string | undefined,
): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    const conflict = mergeConflictLine(text);
    const advice =
      conflictAdvice?.(conflictHunks(text)) ??
      'keep one side of each conflict (of a lock, either side whole, then install without --frozen to lock what the other side asked for)';
    problems.add(
      '',
      'a JSON document',
      conflict
        ? `an unresolved merge conflict (line ${conflict.line}: ${JSON.stringify(conflict.text)}): ${advice}`
        : `text that is not JSON (${(error as Error).message})`,
    );
    throw problems.error();
  }
  for (const pointer of duplicateKeyPointers(text)) problems.add(pointer, 'each key once', 'it again');
  if (problems.any()) throw problems.error();
  if (!isObject(value)) {
    problems.expect('', 'a JSON object', value);
    throw problems.error();
  }
  return value;
}

/** A line git writes around the sides of a conflict (`<<<<<<< HEAD`, `|||||||`, `=======`, `>>>>>>> branch`). */
const CONFLICT_MARKER = /^(?:<{7}|\|{7}|={7}|>{7})(?: |$)/;

/** One conflict git left: the lines of each side (a diff3 style's common ancestor left out). */
export interface ConflictHunk {
  readonly ours: readonly string[];
  readonly theirs: readonly string[];
}

/**
 * Every conflict in `text`, each side's lines; empty when a marker is out of order (not git's, or a
 * conflict cut short), so a caller advises nothing it cannot read.
 */
function conflictHunks(text: string): ConflictHunk[] {
  const hunks: ConflictHunk[] = [];
  let side: 'ours' | 'base' | 'theirs' | undefined;
  let ours: string[] = [];
  let theirs: string[] = [];
  for (const line of text.split(/\r?\n/)) {
    const marker = CONFLICT_MARKER.test(line) ? line.slice(0, 7) : undefined;
    if (marker === '<<<<<<<') {
      if (side !== undefined) return [];
      side = 'ours';
      ours = [];
      theirs = [];
    } else if (marker === '|||||||') {
      if (side !== 'ours') return [];
      side = 'base';
    } else if (marker === '=======') {
      if (side !== 'ours' && side !== 'base') return [];
      side = 'theirs';
    } else if (marker === '>>>>>>>') {
      if (side !== 'theirs') return [];
      hunks.push({ ours, theirs });
      side = undefined;
    } else if (side === 'ours') ours.push(line);
    else if (side === 'theirs') theirs.push(line);
  }
  return side === undefined ? hunks : [];
}

/**
 * The first line of `text` that is a merge conflict marker, numbered from 1, or undefined. A lock two
 * branches changed is left so by git; JSON.parse said only "Expected double-quoted property name in JSON
 * at position 1191", which names neither the conflict nor its line.
 */
function mergeConflictLine(text: string): { readonly line: number; readonly text: string } | undefined {
  const lines = text.split(/\r?\n/);
  const index = lines.findIndex((line) => CONFLICT_MARKER.test(line));
  if (index < 0) return undefined;
  const marker = lines[index] as string;
  return { line: index + 1, text: marker.length > 80 ? `${marker.slice(0, 80)}…` : marker };
}
