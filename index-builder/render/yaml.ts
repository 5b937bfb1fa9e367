/**
 * A small block-style YAML emitter for the registry's own JSON-shaped documents (objects, arrays, strings,
 * numbers, booleans, null). Why not `yaml.stringify`: at 10,000 plugins index.yaml is tens of megabytes and
 * the general-purpose stringifier costs seconds per publish; this costs about what JSON.stringify does.
 * Strings are written as JSON string literals, which are valid YAML double-quoted scalars, so no value can
 * be misread as another type, a tag, an anchor or a comment; characters a YAML 1.1 reader would take for line
 * breaks are escaped (text.ts). Tests check it round-trips through `yaml`.
 */
import { stringifyJson } from '../text.ts';

function emitScalar(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') return stringifyJson(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError('cannot write a non-finite number to YAML');
    return String(value);
  }
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  throw new TypeError(`cannot write ${typeof value} to YAML`);
}

// Keys written bare when they cannot be read as anything but a string (YAML 1.1 booleans and null excluded).
const BARE_KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/;
const RESERVED = /^(y|n|yes|no|on|off|true|false|null)$/i;

function emitKey(key: string): string {
  return BARE_KEY.test(key) && !RESERVED.test(key) ? key : stringifyJson(key);
}

const isContainer = (value: unknown): value is object => typeof value === 'object' && value !== null;

function isEmpty(value: object): boolean {
  return Array.isArray(value) ? value.length === 0 : Object.keys(value).length === 0;
}

function emit(value: unknown, indent: string, out: string[]): void {
  if (Array.isArray(value)) {
    for (const item of value) {
      if (isContainer(item) && !isEmpty(item)) {
        // The first line of a nested block follows "- " on the same line.
        const nested: string[] = [];
        emit(item, `${indent}  `, nested);
        const first = nested[0] ?? '';
        out.push(`${indent}- ${first.slice(indent.length + 2)}`, ...nested.slice(1));
      } else {
        out.push(`${indent}- ${isContainer(item) ? (Array.isArray(item) ? '[]' : '{}') : emitScalar(item)}`);
      }
    }
    return;
  }
  for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
    if (child === undefined) continue;
    const name = emitKey(key);
    if (isContainer(child) && !isEmpty(child)) {
      out.push(`${indent}${name}:`);
      emit(child, Array.isArray(child) ? indent : `${indent}  `, out);
    } else {
      out.push(
        `${indent}${name}: ${isContainer(child) ? (Array.isArray(child) ? '[]' : '{}') : emitScalar(child)}`,
      );
    }
  }
}

/** Renders a JSON-shaped value as a block-style YAML document. */
export function toYaml(value: object): string {
  if (isEmpty(value)) return Array.isArray(value) ? '[]\n' : '{}\n';
  const out: string[] = [];
  emit(value, '', out);
  return `${out.join('\n')}\n`;
}
