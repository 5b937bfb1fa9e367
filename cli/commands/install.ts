/**
 * `plugindex install [NAME[@SPEC] ...]`: resolve, verify end to end, install, and record in the lock file;
 * with no names, exactly what the lock holds. `-c FILE`: exactly a plugin set, locked beside the file.
 * `--locked` refuses to change the lock; `--frozen` installs exactly the lock without reading any registry
 * (artifacts from the cache or from where the lock recorded them); `--offline` touches no network at all.
 * A version a high or critical advisory affects is refused unless `--allow-vulnerable`; a locked version
 * yanked since installs with a warning, or with `--deny-yanked` not at all; a removed one never does.
 */

import { homedir } from 'node:os';
import { resolve } from 'node:path';
import { checkReference, type InstallResult } from '../../client/client.ts';
import type { Source } from '../../client/source.ts';
import { oneLine } from '../../index-builder/text.ts';
import { givenOptions, type Parsed, stringOption } from '../args.ts';
import {
  apiVersionOption,
  argumentRefusal,
  dirOption,
  lockfileOption,
  namedLockfileOption,
  platformsOption,
  refuseVersionApart,
  withClient,
} from '../client.ts';
import { usage } from '../errors.ts';
import { readGivenKeyFile } from '../inputs.ts';
import { outJson } from '../output.ts';
import { err, out } from '../terminal.ts';
import { lookAlikeWarning } from './search.ts';

export async function run(parsed: Parsed): Promise<number> {
  const registry = stringOption(parsed, 'registry');
  const config = stringOption(parsed, 'config');
  const locked = parsed.values.locked === true;
  const frozen = parsed.values.frozen === true;
  const trustLock = parsed.values['trust-lock'] === true;
  // Lock-only trust is a frozen install's alone: any other install reads the source, which must be configured.
  if (trustLock && !frozen) throw usage('--trust-lock is for --frozen installs (it takes the lock as it is)');
  const acceptPermissions = parsed.values['accept-permissions'] === true;
  const lifecycle = lifecycleOptions(parsed);
  if (config !== undefined) {
    const fromFile = givenOptions(parsed, ['registry', 'dir', 'lockfile', 'platform', 'key', 'trust-lock']);
    if (parsed.positionals.length > 0 || fromFile.length > 0)
      throw usage(
        `-c FILE installs exactly the set: its names, sources, folders, platforms and keys come from the file (not ${parsed.positionals.length > 0 ? 'names' : fromFile.join(', ')})`,
      );
    return withClient(parsed, async ({ client, json }) => {
      const result = await client.installSet(resolve(config), {
        home: homedir(),
        locked,
        frozen,
        acceptPermissions,
        ...lifecycle,
        ...apiVersionOption(parsed),
      });
      report(result, json, 'installed', result.lockfile);
      return 0;
    });
  }
  const keyFile = stringOption(parsed, 'key');
  // Read before anything else: a platform refused is the command line's fault, said before any registry is.
  const platform = platformsOption(parsed);
  // Every text too, before the first is looked up: read in its turn, one typed wrong was hidden by whatever
  // reading a registry for a reference before it came to (an OCI reference none lists, PLUGIN_NOT_FOUND).
  refuseVersionApart(parsed.positionals);
  for (const text of parsed.positionals)
    await checkReference(text).catch((error: unknown) => {
      throw argumentRefusal(error);
    });
  return withClient(parsed, async ({ client, json }) => {
    const key =
      keyFile === undefined
        ? undefined
        : await readGivenKeyFile(keyFile, "the publisher's or the registry's");
    // URLs, NAME:TAG and OCI references become a request and the source it comes from. Every text is read
    // here by the client's rule (a name or spec too: parseArtifactReference reads it as install would), so
    // each refusal of it (REQUEST_INVALID) is the command line's: exit 2, whatever its form. That includes a
    // reference the registry's own index leaves ambiguous (two plugins in its repository, a digest leading
    // to several versions): the text typed is what must change.
    const requests: (string | { request: string; registry: string })[] = [];
    const sources = new Map<string, Source>();
    for (const text of parsed.positionals) {
      const target = await client
        .reference(text, key === undefined ? {} : { key })
        .catch((error: unknown) => {
          throw argumentRefusal(error);
        });
      if (!target) requests.push(text);
      else {
        requests.push({ request: target.request, registry: target.registry });
        if (target.source) sources.set(target.registry, target.source);
      }
    }
    const result = await client.install({
      requests,
      ...(sources.size > 0 ? { sources } : {}),
      lockfile: lockfileOption(parsed),
      ...namedLockfileOption(parsed),
      locked,
      frozen,
      ...(trustLock ? { trustLock } : {}),
      acceptPermissions,
      ...lifecycle,
      ...(registry ? { registry } : {}),
      ...dirOption(parsed),
      ...platform,
      ...apiVersionOption(parsed),
    });
    report(result, json, 'installed');
    return 0;
  });
}

/**
 * `--deny-yanked` (a locked version yanked since is an error, not a warning) and `--allow-vulnerable` (a
 * version a high or critical advisory affects is installed with a warning, not refused).
 */
export function lifecycleOptions(parsed: Parsed): { denyYanked?: true; allowVulnerable?: true } {
  return {
    ...(parsed.values['deny-yanked'] === true ? { denyYanked: true } : {}),
    ...(parsed.values['allow-vulnerable'] === true ? { allowVulnerable: true } : {}),
  };
}

/** What install and update print: one line per plugin, warnings on stderr, and whether the lock changed. */
export function report(result: InstallResult, json: boolean, verb: string, lockfile?: string): void {
  if (json) {
    outJson(lockfile ? { ...result, lockfile } : result);
    return;
  }
  for (const item of result.items) {
    const platforms = Object.keys(item.paths);
    const where = platforms.length > 1 ? platforms.join(', ') : item.platform;
    // An update's move below the version it replaces is said as one, with why the newer is not kept: read as
    // "updated to", it passed for an upgrade.
    // And one to the version it holds, placed again (a file changed), not "updated to" a version unchanged.
    const done = item.unchanged
      ? 'up to date'
      : item.downgrade
        ? 'downgraded to'
        : item.placedAgain
          ? 'placed again'
          : verb;
    out(`${done} ${item.name}@${item.version} (${where}) from ${item.registry}: ${item.path}`);
    if (item.downgrade && !item.unchanged)
      out(
        `  down from ${item.downgrade.from}: ${oneLine(item.downgrade.reason)}; ${item.version} is the highest version the request allows now`,
      );
    if (item.permissions.length > 0 && !item.unchanged) out(`  permissions: ${item.permissions.join(', ')}`);
    for (const warning of item.warnings) err(`warning: ${warning}`);
    // Told, never refused: the registry allowed the pair (published before the rule, or owners changed since).
    if (item.look_alikes?.length)
      err(`warning: ${item.name} ${lookAlikeWarning(item.look_alikes.map((a) => a.name))}`);
  }
  if (result.lockfileChanged) {
    if (lockfile) out(`lock: ${lockfile}`);
    for (const change of result.lockChanges) out(`lock: ${change.entry} ${change.change} (${change.detail})`);
  }
}
