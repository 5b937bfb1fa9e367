/** `plugindex update [NAME[@SPEC] ...]`: re-resolve (ignoring the lock) and install; the lock follows. */

import type { Parsed } from '../args.ts';
import { apiVersionOption, dirOption, lockfileOption, platformOption, withClient } from '../client.ts';
import { report } from './install.ts';

export async function run(parsed: Parsed): Promise<number> {
  return withClient(parsed, async ({ client, json }) => {
    const requests =
      parsed.positionals.length > 0
        ? parsed.positionals
        : Object.keys((await client.installed(dirOption(parsed))).plugins);
    const result = await client.install({
      requests,
      lockfile: lockfileOption(parsed),
      upgrade: true,
      ...dirOption(parsed),
      ...platformOption(parsed),
      ...apiVersionOption(parsed),
    });
    report(result, json, 'updated to');
    return 0;
  });
}
