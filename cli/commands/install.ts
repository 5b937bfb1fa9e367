/**
 * `plugindex install [NAME[@SPEC] ...]`: resolve, verify end to end, install, and record in the lock file;
 * with no names, exactly what the lock holds. `--locked` refuses to change the lock; `--frozen` is that
 * plus `--offline`.
 */
import type { InstallResult } from '../../client/client.ts';
import { type Parsed, stringOption } from '../args.ts';
import { apiVersionOption, dirOption, lockfileOption, platformOption, withClient } from '../client.ts';
import { outJson } from '../output.ts';
import { err, out } from '../terminal.ts';

export async function run(parsed: Parsed): Promise<number> {
  const registry = stringOption(parsed, 'registry');
  return withClient(parsed, async ({ client, json }) => {
    const result = await client.install({
      requests: parsed.positionals,
      lockfile: lockfileOption(parsed),
      locked: parsed.values.locked === true || parsed.values.frozen === true,
      ...(registry ? { registry } : {}),
      ...dirOption(parsed),
      ...platformOption(parsed),
      ...apiVersionOption(parsed),
    });
    report(result, json, 'installed');
    return 0;
  });
}

/** What install and update print: one line per plugin, warnings on stderr, and whether the lock changed. */
export function report(result: InstallResult, json: boolean, verb: string): void {
  if (json) {
    outJson(result);
    return;
  }
  for (const item of result.items) {
    out(
      `${item.unchanged ? 'up to date' : verb} ${item.name}@${item.version} (${item.platform}) from ${item.registry}: ${item.path}`,
    );
    for (const warning of item.warnings) err(`warning: ${warning}`);
  }
  if (result.lockfileChanged)
    for (const change of result.lockChanges) out(`lock: ${change.entry} ${change.change} (${change.detail})`);
}
