/**
 * `plugindex update [NAME[@SPEC] ...]`: re-resolve (ignoring the lock) and install; the lock follows.
 * `-c FILE`: every plugin of a set. A version asking for permissions the locked one did not is refused
 * (naming them) unless `--accept-permissions`, and one a high or critical advisory affects unless
 * `--allow-vulnerable`.
 */
import { homedir } from 'node:os';
import { resolve } from 'node:path';
import { givenOptions, type Parsed, stringOption } from '../args.ts';
import {
  apiVersionOption,
  dirOption,
  lockfileOption,
  namedLockfileOption,
  platformsOption,
  refuseVersionApart,
  requestArgument,
  withClient,
} from '../client.ts';
import { usage } from '../errors.ts';
import { lifecycleOptions, report } from './install.ts';

export async function run(parsed: Parsed): Promise<number> {
  const config = stringOption(parsed, 'config');
  const acceptPermissions = parsed.values['accept-permissions'] === true;
  // The names and platform typed, read by the client's rule before anything is: a refusal is the command
  // line's (exit 2); names read from installed.json are that file's.
  const platform = config === undefined ? platformsOption(parsed) : {};
  if (config === undefined) {
    refuseVersionApart(parsed.positionals);
    for (const text of parsed.positionals) requestArgument(text);
  }
  return withClient(parsed, async ({ client, json }) => {
    if (config !== undefined) {
      if (parsed.positionals.length > 0) throw usage('-c FILE updates the whole set: no names');
      // As install -c: what the set says is refused when an option says otherwise, not ignored.
      const fromFile = givenOptions(parsed, ['dir', 'lockfile', 'platform']);
      if (fromFile.length > 0)
        throw usage(
          `-c FILE updates exactly the set: its folders, lock and platforms come from the file (not ${fromFile.join(', ')})`,
        );
      const result = await client.installSet(resolve(config), {
        home: homedir(),
        upgrade: true,
        acceptPermissions,
        ...lifecycleOptions(parsed),
        ...apiVersionOption(parsed),
      });
      report(result, json, 'updated to', result.lockfile);
      return 0;
    }
    const requests =
      parsed.positionals.length > 0
        ? parsed.positionals
        : Object.keys((await client.installed(dirOption(parsed))).plugins);
    const result = await client.install({
      requests,
      lockfile: lockfileOption(parsed),
      ...namedLockfileOption(parsed),
      upgrade: true,
      acceptPermissions,
      ...lifecycleOptions(parsed),
      ...dirOption(parsed),
      ...platform,
      ...apiVersionOption(parsed),
    });
    report(result, json, 'updated to');
    return 0;
  });
}
