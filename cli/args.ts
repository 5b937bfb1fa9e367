/** Argument parsing over node:util parseArgs, turning its errors into usage errors (exit 2). */
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { usage } from './errors.ts';

export type Options = NonNullable<ParseArgsConfig['options']>;

export interface Parsed {
  readonly values: Record<string, string | boolean | string[] | undefined>;
  readonly positionals: string[];
}

export function parse(args: readonly string[], options: Options): Parsed {
  try {
    const { values, positionals } = parseArgs({
      args: [...args],
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
    return { values: values as Parsed['values'], positionals };
  } catch (error) {
    throw usage((error as Error).message);
  }
}

export function stringOption(parsed: Parsed, name: string): string | undefined {
  const value = parsed.values[name];
  return typeof value === 'string' ? value : undefined;
}

export function requiredOption(parsed: Parsed, name: string): string {
  const value = stringOption(parsed, name);
  if (value === undefined || value === '') throw usage(`--${name} is required`);
  return value;
}

/**
 * The options among `names` that were given, as typed (`--dir`): what a form of a command that takes them
 * from elsewhere (a set file) refuses, rather than ignore them and exit for a check it did not make.
 */
export function givenOptions(parsed: Parsed, names: readonly string[]): string[] {
  return names.filter((name) => parsed.values[name] !== undefined).map((name) => `--${name}`);
}

export function listOption(parsed: Parsed, name: string): string[] {
  const value = parsed.values[name];
  return Array.isArray(value) ? value : typeof value === 'string' ? [value] : [];
}

export function portOption(parsed: Parsed, fallback: number): number {
  const raw = stringOption(parsed, 'port');
  if (raw === undefined) return fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw usage(`--port must be 0-65535, found ${raw}`);
  return port;
}

/**
 * A whole-number option (decimal digits, at most nine), or undefined when it was not given; what range it
 * may take is for the code it configures to judge.
 */
export function wholeNumberOption(parsed: Parsed, name: string): number | undefined {
  const raw = stringOption(parsed, name);
  if (raw === undefined) return undefined;
  if (!/^[0-9]{1,9}$/.test(raw)) throw usage(`--${name} must be a whole number, found ${raw}`);
  return Number(raw);
}
