/**
 * `plugindex clean -c FILE`: removes installs the set does not name (a plugin, a version, a platform's files)
 * where the set placed them, says which it leaves (placed otherwise), and removes cached artifacts nothing
 * uses. `plugindex clean --orphans [--dir DIR]`: drops the claims of plugin sets whose file is gone (which
 * `verify` names, SET_FILE_GONE), removing each version no other set nor a plain install claims.
 */
import { homedir } from 'node:os';
import { givenOptions, type Parsed } from '../args.ts';
import { dirOption, setFileOption, withClient } from '../client.ts';
import { usage } from '../errors.ts';
import { outJson } from '../output.ts';
import { out } from '../terminal.ts';

export async function run(parsed: Parsed): Promise<number> {
  if (parsed.values.orphans === true) return cleanOrphans(parsed);
  // A set names its folders itself: a --dir beside -c would be ignored, and the report speak for no folder.
  if (parsed.values.dir !== undefined)
    throw usage('--dir goes with --orphans; -c FILE cleans the folders the set names');
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

async function cleanOrphans(parsed: Parsed): Promise<number> {
  // The sets whose file is gone are found from the folder's installed.json, not from a set file.
  const other = givenOptions(parsed, ['config']);
  if (other.length > 0)
    throw usage(
      '--orphans drops the claims of sets whose file is gone, in --dir DIR (not -c FILE: `clean -c FILE` cleans a set that is there)',
    );
  return withClient(parsed, async ({ client, json }) => {
    const report = await client.cleanOrphans(dirOption(parsed));
    if (json) outJson(report);
    else {
      for (const r of report.removed)
        out(
          `removed ${r.name}@${r.version} from ${r.dir}: claimed only by ${r.sets.join(', ')}, whose file${r.sets.length === 1 ? ' is' : 's are'} gone`,
        );
      for (const r of report.left) out(`left ${r.name}@${r.version} in ${r.dir}: ${r.detail}`);
      if (report.removed.length === 0 && report.left.length === 0)
        out('no claim of a plugin set whose file is gone');
    }
    return 0;
  });
}
