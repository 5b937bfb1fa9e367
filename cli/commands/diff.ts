/**
 * `plugindex diff -c FILE`: what `install -c FILE` would add, upgrade, downgrade or find changed on disk,
 * and what it or `clean -c FILE` would remove (installs, versions and platforms' files the set no longer
 * names). Exits as diff(1) does: 0 nothing would change, 1 something would, 2 trouble (the set, a source or a
 * check failed), so a CI step can gate on it.
 */
import { homedir } from 'node:os';
import type { Parsed } from '../args.ts';
import { apiVersionOption, setFileOption, withClient } from '../client.ts';
import { outJson } from '../output.ts';
import { out } from '../terminal.ts';

const MARKS = { add: '+', upgrade: '^', downgrade: 'v', remove: '-', changed: '!' } as const;

export async function run(parsed: Parsed): Promise<number> {
  const file = setFileOption(parsed);
  return withClient(parsed, async ({ client, json }) => {
    const diff = await client.diffSet(file, { home: homedir(), ...apiVersionOption(parsed) });
    // A set file edited since its lock (even a comment) is a change: install would record it in the lock.
    const changed = diff.changes.length > 0 || diff.lockChanges.length > 0 || diff.fileChanged;
    if (json) outJson({ ok: true, changed, ...diff });
    else {
      for (const c of diff.changes) {
        const versions = c.from && c.to ? `${c.from} -> ${c.to}` : (c.to ?? c.from ?? '');
        out(`${MARKS[c.change]} ${c.change} ${c.name} ${versions}${c.detail ? `: ${c.detail}` : ''}`);
        if (c.newPermissions)
          out(
            `    asks for new permissions: ${c.newPermissions.join(', ')} (install needs --accept-permissions)`,
          );
      }
      for (const change of diff.lockChanges)
        out(`~ lock ${change.entry} ${change.change} (${change.detail})`);
      if (diff.fileChanged)
        out(`~ ${file} changed since ${diff.lockfile} was written (install -c records it in the lock)`);
      if (!changed) out(`nothing would change: ${file} is installed as ${diff.lockfile} locks it`);
    }
    return changed ? 1 : 0;
  });
}
