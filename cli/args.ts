/** Argument parsing over node:util parseArgs, turning its errors into usage errors (exit 2). */
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { editDistance } from '../index-builder/edit-distance.ts';
import { type CliError, usage } from './errors.ts';

export type Options = NonNullable<ParseArgsConfig['options']>;

export interface Parsed {
  readonly values: Record<string, string | boolean | string[] | undefined>;
  readonly positionals: string[];
}

/**
 * `args` read by `options` (and `--help`), for the command `command` names in messages.
 * @throws CliError USAGE (exit 2) for an option the command does not take, named back with the one it most
 *   likely meant, else in its own words: node:util's ("To specify a positional argument starting with a '-',
 *   place it at the end of the command after '--'") read as though the word were an argument misplaced.
 */
export function parse(args: readonly string[], options: Options, command = 'the command'): Parsed {
  try {
    const { values, positionals } = parseArgs({
      args: [...args],
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
    return { values: values as Parsed['values'], positionals };
  } catch (error) {
    const { code, message } = error as Error & { code?: string };
    // node:util names the option it does not know; a typo of one the command takes is named back.
    const unknown = code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? /'(-[^']*)'/.exec(message)?.[1] : undefined;
    const near = unknown?.startsWith('--')
      ? closest(unknown.slice(2), [...Object.keys(options), 'help'])
      : undefined;
    if (unknown === undefined) throw usage(message);
    if (near) throw usage(`Unknown option '${unknown}': did you mean --${near}?`);
    // `serve --watch` (README said so of serve's watching): what a `--no-` option turns off is the default.
    const negated = `no-${unknown.slice(2)}`;
    if (unknown.startsWith('--') && Object.hasOwn(options, negated))
      throw usage(
        `Unknown option '${unknown}': ${command} does so unless --${negated} is given, so leave ${unknown} out`,
      );
    throw usage(
      `Unknown option '${unknown}': ${command} takes none of that name (its usage below lists those it takes)`,
    );
  }
}

/**
 * The one of `candidates` a mistyped `word` most likely meant (at most two edits away, counting a swap of
 * two neighbours as one, and at most half its length; or the only one it begins), else undefined:
 * the did-you-mean of an unknown command or option, as cargo and git give it.
 */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  // No command or option is that long: a word past it is no typo of one, and costs no table to say so.
  if (word.length > 64) return undefined;
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const d = editDistance(word, candidate);
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  if (best !== undefined && bestDistance <= 2 && bestDistance * 2 <= word.length) return best;
  const prefixed = candidates.filter((c) => word.length >= 3 && c.startsWith(word));
  return prefixed.length === 1 ? prefixed[0] : undefined;
}

/**
 * What a usage error says of a `word` that is none of `candidates` (a command, or a command's action such as
 * `registry add`): the one it most likely meant, else where the list is (`listedBy`), in one wording for both,
 * so `registry ad` is named back as `instal` is.
 */
export function unknownWord(
  kind: string,
  word: string,
  candidates: readonly string[],
  listedBy: string,
  /** The one candidate is what `word` means, however it is spelt (another tool's word for it). */
  meant = false,
): string {
  const near = meant ? candidates[0] : closest(word, candidates);
  return near
    ? `unknown ${kind} "${word}": did you mean "${near}"? (${listedBy})`
    : `unknown ${kind} "${word}": ${listedBy}`;
}

/**
 * A command's unknown action (`owners lst`) as a usage error (exit 2), in the words of an unknown command.
 */
export function unknownAction(command: string, word: string, actions: readonly string[]): CliError {
  return usage(
    unknownWord(`${command} action`, word, actions, `plugindex ${command} --help lists every action`),
  );
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
 * Where `pack` and `keygen` write: `--output`, as every action and `rotate-key` name it, or `--out`, the name
 * they first took and keep (the same option); required, and never both, which could name two places.
 * @returns the path and the option's name as given (`output` or `out`), for messages that name it.
 * @throws CliError USAGE for neither or both.
 */
export function outputOption(parsed: Parsed): { readonly file: string; readonly option: 'output' | 'out' } {
  const output = stringOption(parsed, 'output');
  const out = stringOption(parsed, 'out');
  if (output !== undefined && out !== undefined)
    throw usage('give --output or --out (the same option), not both');
  if (out !== undefined) return { file: requiredOption(parsed, 'out'), option: 'out' };
  return { file: requiredOption(parsed, 'output'), option: 'output' };
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
