/**
 * `plugindex clean -c FILE`: removes installs the set does not name (a plugin, a version, a platform's files)
 * where the set placed them, says which it leaves (placed otherwise), and removes cached artifacts nothing
 * uses.
 */
import { homedir } from 'node:os';
import type { Parsed } from '../args.ts';
import { setFileOption, withClient } from '../client.ts';
import { outJson } from '../output.ts';
import { out } from '../terminal.ts';

export async function run(parsed: Parsed): Promise<number> {
  const file = setFileOption(parsed);
  return withClient(parsed, async ({ client, json }) => {
    const report = await client.cleanSet(file, { home: homedir() });
    if (json) outJson(report);
    else {
      for (const r of report.removed)
        out(
          r.platforms
            ? `removed ${r.name}@${r.version} ${r.platforms.join(', ')} (platforms the set no longer lists) from ${r.dir}`
            : `removed ${r.name}@${r.version} from ${r.dir}`,
        );
      // Not the set's to remove, but not the set's either: said, so a reader knows the folder holds more.
      for (const r of report.left) out(`left ${r.name}@${r.version} in ${r.dir}: ${r.detail}`);
      const mib = (report.bytesFreed / 1048576).toFixed(1);
      out(`cache: removed ${report.blobsRemoved} artifact(s) nothing uses (${mib} MiB)`);
    }
    return 0;
  });
}
