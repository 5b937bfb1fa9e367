/**
 * `plugindex list [--outdated]`: what installed.json says; with --outdated, what could move or needs a look
 * (a newer version, the installed one yanked, deprecated or removed since, an advisory affecting it; exit 1
 * if any).
 * `-c FILE`: also the plugin folders the set's discovery finds on disk (the spec's filesystem discovery),
 * each with whether it verifies, and under an installed one the set's policy refuses a `POLICY_DENIED: FILE#/policy/...:` line
 * per rule it breaks (exit 1), under one the set placed there and no longer names a `NOT_IN_SET:` line
 * (exit 1, as `verify -c`; never judged by the set's policy), under one it neither names nor placed a
 * `NOT_PLACED_BY_SET:` line (another's: no exit of its own); `--watch` prints them again whenever those
 * folders change.
 */
import { homedir } from 'node:os';
import { resolve } from 'node:path';
import type { DiscoveryReport, ListedPlugin } from '../../client/client.ts';
import { advisoryText } from '../../client/lifecycle.ts';
import { oneLine } from '../../index-builder/text.ts';
import { givenOptions, type Parsed, stringOption } from '../args.ts';
import { dirOption, lockfileOption, withClient } from '../client.ts';
import { usage } from '../errors.ts';
import { outJson } from '../output.ts';
import { out } from '../terminal.ts';

export async function run(parsed: Parsed): Promise<number> {
  const outdated = parsed.values.outdated === true;
  const apiVersion = stringOption(parsed, 'api-version');
  const config = stringOption(parsed, 'config');
  if (parsed.values.watch === true && config === undefined)
    throw usage('--watch needs -c FILE (what to watch)');
  if (config !== undefined) {
    // -c lists the set's discovery: an option of the installed listing would be ignored, and its exit would
    // speak for a check not made (`list -c FILE --outdated` in CI asked no registry what is outdated).
    const other = givenOptions(parsed, ['outdated', 'dir', 'lockfile', 'api-version']);
    if (other.length > 0)
      throw usage(
        `-c FILE lists what the set's discovery finds on disk, each verified (not ${other.join(', ')}; \`plugindex diff -c FILE\` says what an install would change)`,
      );
    return listSet(parsed, resolve(config));
  }
  return withClient(parsed, async ({ client, json }) => {
    const rows = await client.list({
      ...dirOption(parsed),
      outdated,
      lockfile: lockfileOption(parsed),
      ...(apiVersion ? { apiVersion } : {}),
    });
    const moving = (r: ListedPlugin): boolean =>
      (r.wanted !== undefined && r.wanted !== r.current) ||
      (r.latest != null && r.latest !== r.current) ||
      r.yanked ||
      r.deprecated ||
      r.removed !== undefined ||
      (r.advisories?.length ?? 0) > 0;
    // A row no registry here could speak for is shown with why (as `audit` shows what it skipped), but
    // is no finding: exit 1 says something was found to move, not that something could not be asked.
    const shown = outdated ? rows.filter((r) => moving(r) || r.unchecked !== undefined) : rows;
    if (json) outJson({ plugins: shown });
    else if (shown.length === 0) out(outdated ? 'everything is up to date' : 'nothing is installed');
    else
      for (const r of shown) {
        const others = r.versions.filter((v) => v !== r.current);
        const marks = [
          r.enabled ? '' : 'disabled',
          r.removed ? 'removed' : r.yanked ? 'yanked' : '',
          r.deprecated ? 'deprecated' : '',
          r.unchecked !== undefined ? 'not checked' : '',
          r.advisories?.length
            ? `${r.advisories.length} advisor${r.advisories.length === 1 ? 'y' : 'ies'}`
            : '',
          // The row is the current version's; others in the folder (an install of another version keeps
          // the one before) were said nowhere but --json, until `remove NAME` removed them all.
          others.length > 0 ? `also installed: ${others.join(', ')}` : '',
        ]
          .filter(Boolean)
          .join(', ');
        const moves = outdated ? `  wanted ${r.wanted ?? '-'}  latest ${r.latest ?? '-'}` : '';
        out(
          `${r.name}  ${r.current}${moves}  ${r.platforms.join(' ')}  from ${r.registry}${marks ? `  [${marks}]` : ''}`,
        );
        for (const line of lifecycleLines(r)) out(`  ${line}`);
      }
    return outdated && shown.some(moving) ? 1 : 0;
  });
}

/** What the registry says of an installed version now, a line each (worst advisory first). */
function lifecycleLines(r: ListedPlugin): string[] {
  const lines = (r.advisories ?? []).map((a) => `advisory ${advisoryText(a)}`);
  if (r.unchecked !== undefined) lines.push(`not checked: ${r.unchecked}`);
  if (r.removed) lines.push(`removed on ${r.removed.at}: ${oneLine(r.removed.reason)}`);
  else if (r.yanked && r.yanked_reason) lines.push(`yanked: ${oneLine(r.yanked_reason)}`);
  if (r.deprecation) {
    const instead = r.deprecation.replacement ? `; use ${r.deprecation.replacement} instead` : '';
    lines.push(`deprecated${r.deprecation.message ? `: ${oneLine(r.deprecation.message)}` : ''}${instead}`);
  }
  return lines;
}

/** Discovered plugins of a set, once or (--watch) each time their folders change, until interrupted. */
async function listSet(parsed: Parsed, file: string): Promise<number> {
  const watch = parsed.values.watch === true;
  return withClient(parsed, async ({ client, json }) => {
    const print = (report: DiscoveryReport): void => {
      if (json) outJson(report);
      else if (report.plugins.length === 0) out(`no plugin folders under ${report.paths.join(', ')}`);
      else
        for (const p of report.plugins) {
          out(`${p.name ?? '?'}  ${p.version ?? '?'}  ${p.status}  ${p.dir}  (${p.detail})`);
          // Under its row, so the row itself reads as it always has.
          for (const problem of p.policy ?? []) out(`  POLICY_DENIED: ${problem}`);
          if (p.not_in_set !== undefined) out(`  NOT_IN_SET: ${p.not_in_set}`);
          if (p.not_placed_by_set !== undefined) out(`  NOT_PLACED_BY_SET: ${p.not_placed_by_set}`);
        }
    };
    const report = await client.discover(file, { home: homedir() });
    if (!watch) {
      print(report);
      // As `verify -c`: a version in the set's folders the set placed and does not name there is a rejection,
      // exit 1; one it neither names nor placed (`not_placed_by_set`) is another's, and fails nothing.
      return report.plugins.every(
        (p) => p.status === 'verified' && p.policy === undefined && p.not_in_set === undefined,
      )
        ? 0
        : 1;
    }
    // Armed before the first listing is printed: whatever changes after a reader sees a listing is listed again.
    // Watched again after each change: a path that did not exist may exist now, and is watched inside.
    const { watchPaths } = await import('../../client/disk/discover.ts');
    let stop = (): void => {};
    const arm = async (): Promise<void> => {
      const next = await watchPaths(report.paths, () => {
        void client
          .discover(file, { home: homedir() })
          .then(print)
          .then(arm)
          .catch((error: Error) => out(`error: ${error.message}`));
      });
      stop();
      stop = next;
    };
    await arm();
    print(report);
    await new Promise<void>((done) => {
      process.once('SIGINT', done);
      process.once('SIGTERM', done);
    });
    stop();
    return 0;
  });
}
