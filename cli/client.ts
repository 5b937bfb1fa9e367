/**
 * What every consumer command shares: the client built from this machine (its directories, the one HTTP
 * fetcher, a progress bar when a person is watching), the options that mean the same everywhere, and the
 * client's answers turned into exit codes (README: 0 done, 1 not found or failed, 2 usage, 3 refused by
 * a trust check).
 */
import { homedir } from 'node:os';
import { resolve } from 'node:path';
import { createClient, type PlugindexClient, type ProgressEvent } from '../client/client.ts';
import { normalizeRegistryUrl } from '../client/config.ts';
import { ClientError } from '../client/errors.ts';
import { createHttpFetcher } from '../client/fetcher.ts';
import { clientDirectories } from '../client/paths.ts';
import { type Platform, parsePlatform, parseRequest, versionGivenApart } from '../client/resolve.ts';
import { listOption, type Parsed, stringOption } from './args.ts';
import { CliError, usage } from './errors.ts';
import { shown } from './terminal.ts';

export const LOCKFILE = 'plugindex.lock';

/**
 * A registry's URL (or a mirror's) given on the command line, normalized, held to the rule `registry add`
 * holds one to before anything is read or printed. One refused is a usage error (CliError
 * REGISTRY_URL_INVALID, exit 2, `given` naming the argument): `registry add` exited 1 for it where
 * `verify --url` exited 2. The client's message never repeats credentials. A URL read from config.json or a
 * plugin set is not this: it stays the file's fault (exit 1, its JSON pointer).
 * @example registryUrlArgument('--mirror', 'https://Mirror.example/reg/') // 'https://mirror.example/reg'
 */
export function registryUrlArgument(given: string, url: string): string {
  try {
    return normalizeRegistryUrl(url);
  } catch (error) {
    if (!(error instanceof ClientError) || error.code !== 'REGISTRY_URL_INVALID') throw error;
    throw new CliError('REGISTRY_URL_INVALID', `${given}: ${error.message}`, { exitCode: 2, cause: error });
  }
}

/**
 * What a command throws when the client refuses an argument typed on the command line by its own rule
 * (ClientError REQUEST_INVALID: a plugin name, a version spec, a falcoctl-style or OCI reference, a manifest
 * URL, `--platform`): a usage error (exit 2), the code and message kept, as registryUrlArgument makes a
 * registry's. A refused manifest URL alone exited 2, a refused name or reference 1 with the same code, so no
 * script could map the code to one exit. Only what reads the command line goes through this: a name or spec
 * read from a file (a plugin set, a lock, installed.json) stays the file's fault (exit 1, its own code and
 * pointer). Anything else (a fetch, a signature, a plugin not found) is passed on as it is.
 */
export function argumentRefusal(error: unknown): unknown {
  if (!(error instanceof ClientError) || error.code !== 'REQUEST_INVALID') return error;
  return new CliError('REQUEST_INVALID', error.message, { exitCode: 2, cause: error });
}

/**
 * Refuses a version typed as a word of its own after its plugin's name (`install NAME 1.2.0`), naming
 * `NAME@1.2.0`: it was read as a plugin named "1.2.0" (install, update) or an extra word (info), and neither
 * refusal said where a version goes.
 * @throws CliError REQUEST_INVALID, exit 2
 */
export function refuseVersionApart(positionals: readonly string[]): void {
  for (const [index, word] of positionals.entries()) {
    const name = positionals[index - 1];
    if (name === undefined || !versionGivenApart(name, word)) continue;
    throw new CliError(
      'REQUEST_INVALID',
      `"${name} ${word}": a version is written after its plugin's name and '@', not as a word of its own: did you mean ${name}@${word}?`,
      { exitCode: 2 },
    );
  }
}

/** A `NAME[@SPEC]` typed on the command line, read by the client's rule; refused as argumentRefusal says. */
export function requestArgument(text: string): { readonly name: string; readonly spec: string } {
  try {
    return parseRequest(text);
  } catch (error) {
    throw argumentRefusal(error);
  }
}

export interface ClientRun {
  readonly client: PlugindexClient;
  readonly json: boolean;
}

/** Runs `body` with a client, closing its connections after (so the command exits at once). */
export async function withClient<T>(parsed: Parsed, body: (run: ClientRun) => Promise<T>): Promise<T> {
  const json = parsed.values.json === true;
  const offline = parsed.values.offline === true;
  const client = createClient({
    dirs: clientDirectories(process.env, process.platform, homedir()),
    fetcher: createHttpFetcher({ env: process.env }),
    env: process.env,
    home: homedir(),
    offline,
    ...progressOption(json),
  });
  try {
    return await body({ client, json });
  } finally {
    await client.close();
  }
}

/** `-c FILE` (`--config`), absolute; a usage error naming `-c FILE` when absent. */
export function setFileOption(parsed: Parsed): string {
  const file = stringOption(parsed, 'config');
  if (file === undefined || file === '') throw usage('-c FILE is required (the plugin set file)');
  return resolve(file);
}

export function lockfileOption(parsed: Parsed): string {
  return resolve(stringOption(parsed, 'lockfile') ?? LOCKFILE);
}

/**
 * The lock file given with `--lockfile` when it is not the default one, as `InstallOptions.namedLockfile`:
 * a remedy naming a command (`plugindex update`, `plugindex install` without --frozen) repeats it, where it
 * named the command alone and so the default lock, another than the one refused.
 */
export function namedLockfileOption(parsed: Parsed): { namedLockfile?: string } {
  const given = stringOption(parsed, 'lockfile');
  return given !== undefined && resolve(given) !== resolve(LOCKFILE) ? { namedLockfile: resolve(given) } : {};
}

export function dirOption(parsed: Parsed): { dir?: string } {
  const dir = stringOption(parsed, 'dir');
  return dir ? { dir: resolve(dir) } : {};
}

/**
 * `--platform OS/ARCH[/LIBC]` for a command showing one platform (info); one the client does not read is
 * refused as argumentRefusal says (exit 2), and so is the option given twice: the last value alone was read.
 */
export function platformOption(parsed: Parsed): { platform?: Platform } {
  const texts = listOption(parsed, 'platform');
  if (texts.length > 1)
    throw usage(
      `--platform given ${texts.length} times (${texts.join(', ')}): this command shows one platform; install and update take it repeated`,
    );
  const text = texts[0];
  if (!text) return {};
  try {
    return { platform: parsePlatform(text) };
  } catch (error) {
    throw argumentRefusal(error);
  }
}

/**
 * `--platform` as install and update take it, repeatable: each platform placed. Every value is read before
 * anything is, so one typed wrong is the command line's (exit 2), whichever it is.
 */
export function platformsOption(parsed: Parsed): { platforms?: readonly Platform[] } {
  const texts = listOption(parsed, 'platform');
  if (texts.length === 0) return {};
  try {
    return { platforms: texts.map((text) => parsePlatform(text)) };
  } catch (error) {
    throw argumentRefusal(error);
  }
}

export function apiVersionOption(parsed: Parsed): { apiVersion?: string } {
  const value = stringOption(parsed, 'api-version');
  return value ? { apiVersion: value } : {};
}

/**
 * A one-line bar on stderr, byte-exact from the signed sizes: only for a person at a terminal (never with
 * --json, never under CI), so logs and pipes stay clean.
 */
function progressOption(json: boolean): { onProgress?: (event: ProgressEvent) => void } {
  if (json || !process.stderr.isTTY || process.env.CI) return {};
  let last = 0;
  return {
    onProgress: ({ name, received, total }) => {
      const now = Date.now();
      if (received < total && now - last < 100) return;
      last = now;
      const width = 30;
      const done = total === 0 ? width : Math.round((received / total) * width);
      const bar = `${'#'.repeat(done)}${'.'.repeat(width - done)}`;
      const mib = (n: number): string => (n / 1048576).toFixed(1);
      process.stderr.write(`\r${shown(name)} [${bar}] ${mib(received)}/${mib(total)} MiB`);
      if (received >= total) process.stderr.write('\n');
    },
  };
}
