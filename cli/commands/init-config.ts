/** `plugindex init-config [FILE]`: writes a commented starter plugin set (default plugins.yaml). */
import { constants } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ClientError } from '../../client/errors.ts';
import { initConfigText } from '../../client/set-file.ts';
import type { Parsed } from '../args.ts';
import { withClient } from '../client.ts';
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
  const text = initConfigText(await configuredLocalUrl(parsed));
  try {
    // O_EXCL unless --force: a set a team keeps in version control is never overwritten by accident.
    await writeFile(file, text, {
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

/**
 * The URL of the registry configured as `local`, the starter's provider name: a starter naming
 * 127.0.0.1:8080 beside a `local` served elsewhere failed `install -c` with ECONNREFUSED. A configuration
 * that does not read leaves the starter as it is: it is `install`'s to refuse, not a starter's.
 */
async function configuredLocalUrl(parsed: Parsed): Promise<string | undefined> {
  try {
    const registries = await withClient(parsed, ({ client }) => client.listRegistries());
    return registries.find(({ entry }) => entry.name === 'local')?.entry.url;
  } catch (error) {
    if (error instanceof ClientError) return undefined;
    throw error;
  }
}
