/** `plugindex init-config [FILE]`: writes a commented starter plugin set (default plugins.yaml). */
import { constants } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { initConfigText } from '../../client/set-file.ts';
import type { Parsed } from '../args.ts';
import { CliError, usage } from '../errors.ts';
import { notWritten, refuseOutputOver } from '../inputs.ts';
import { out } from '../terminal.ts';

export async function run(parsed: Parsed): Promise<number> {
  if (parsed.positionals.length > 1) throw usage('one FILE at most');
  const file = resolve(parsed.positionals[0] ?? 'plugins.yaml');
  const force = parsed.values.force === true;
  // Guarded as every --output: `init-config R/public/plugins.yaml` served a file from the registry's
  // folder, and with --force a secret key named by a slip of completion was replaced by the starter set.
  await refuseOutputOver('FILE', file, []);
  try {
    // O_EXCL unless --force: a set a team keeps in version control is never overwritten by accident.
    await writeFile(file, initConfigText(), {
      flag: force ? 'w' : constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY,
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST')
      throw new CliError('FILE_EXISTS', `${file} exists; pass --force to replace it`);
    throw notWritten(file, error);
  }
  out(
    `wrote ${file}: edit its providers and plugins, then run \`plugindex install -c ${parsed.positionals[0] ?? 'plugins.yaml'}\``,
  );
  return 0;
}
