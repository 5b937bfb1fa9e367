/**
 * `plugindex verify`: without --url, every installed plugin rehashed against its record and the lock, and
 * its signature chain checked again (offline); with --url, a served registry checked whole as a client
 * would, its log held against the documents and action envelopes served (each disagreement a line). Exit 3
 * with the trust check that failed (its code) when something does not verify; with -c, each
 * version that verifies is judged by the set's policy too, and one it refuses (and nothing worse) is exit 1,
 * as is a version the set placed and no longer names (NOT_IN_SET); one it neither names nor placed is
 * another's (NOT_PLACED_BY_SET), said and not failed; so is, with or without -c, a version recorded as placed
 * by a plugin set whose file is gone (SET_FILE_GONE), with the `clean --orphans` that drops its claim.
 */
import { homedir } from 'node:os';
import { resolve } from 'node:path';
import { LogDisagreementError } from '../../client/errors.ts';
import type { TrustError } from '../../index-builder/errors.ts';
import { oneLine } from '../../index-builder/text.ts';
import { givenOptions, type Parsed, stringOption } from '../args.ts';
import {
  dirOption,
  lockfileOption,
  namedLockfileOption,
  registryUrlArgument,
  withClient,
} from '../client.ts';
import { isRefusal, usage } from '../errors.ts';
import { readGivenKeyFile, refuseOutputOver } from '../inputs.ts';
import { outJson } from '../output.ts';
import { out } from '../terminal.ts';

export async function run(parsed: Parsed): Promise<number> {
  const url = stringOption(parsed, 'url');
  // Each form checks one thing: an option of another form would be ignored, and the exit would speak for a
  // check not made (`verify --url U -c FILE` checked the registry and said nothing of the set).
  if (parsed.values.config !== undefined) {
    const other = givenOptions(parsed, ['url', 'mirror', 'key', 'state', 'dir', 'lockfile']);
    if (other.length > 0)
      throw usage(
        `-c FILE verifies what the set installed, in its folders, against its lock (not ${other.join(', ')})`,
      );
  }
  // The same for the other two forms: `verify --url U --dir D` checked the registry and no install, and
  // `verify --key K` the installs by their own records, K unread.
  const other = givenOptions(parsed, url === undefined ? ['mirror', 'key', 'state'] : ['dir', 'lockfile']);
  if (other.length > 0)
    throw usage(
      url === undefined
        ? `${other.join(', ')} ${other.length > 1 ? 'are' : 'is'} for --url URL: without it verify checks what is installed`
        : `--url checks a served registry, not what is installed (not ${other.join(', ')})`,
    );
  return url === undefined ? verifyInstalled(parsed) : verifyServed(parsed, url);
}

/** A set's policy refusing a version whose files and signatures verify (`verify -c`). */
const POLICY_DENIED = 'POLICY_DENIED';
/** A version the set placed in its folder and does not name there (`verify -c`), as client/plugin-set.ts says it. */
const NOT_IN_SET = 'NOT_IN_SET';
/** What `verify -c` rejects without a trust check failing: exit 1, not 3. */
const REJECTIONS: ReadonlySet<string | undefined> = new Set([POLICY_DENIED, NOT_IN_SET]);
/**
 * A version in a set's folder the set neither names there nor placed (`verify -c`): another's, which
 * `clean -c` leaves, so said and not failed (exit 0): a folder the set shares with plain installs holds them.
 */
const NOT_PLACED_BY_SET = 'NOT_PLACED_BY_SET';
/**
 * A version recorded as placed by a set whose file is gone (client/maintain.ts): said, with how to drop the
 * claim, and not failed: its files are checked apart, and an install folder outside a checkout that moves
 * holds one after every move.
 */
const SET_FILE_GONE = 'SET_FILE_GONE';
/** What is said and fails nothing. */
const NOTICES: ReadonlySet<string | undefined> = new Set([NOT_PLACED_BY_SET, SET_FILE_GONE]);

async function verifyInstalled(parsed: Parsed): Promise<number> {
  return withClient(parsed, async ({ client, json }) => {
    const config = stringOption(parsed, 'config');
    const findings =
      config === undefined
        ? await client.verifyInstalled({
            ...dirOption(parsed),
            lockfile: lockfileOption(parsed),
            ...namedLockfileOption(parsed),
          })
        : await client.verifySet(resolve(config), { home: homedir() });
    const failed = findings.filter((f) => !f.ok && !NOTICES.has(f.code));
    if (json) outJson({ ok: failed.length === 0, plugins: findings });
    else {
      for (const f of findings)
        out(
          f.ok
            ? `verified ${f.name}@${f.version}`
            : f.code === NOT_PLACED_BY_SET
              ? `another's ${f.name}@${f.version}: ${f.code}: ${f.message}`
              : f.code === SET_FILE_GONE
                ? `orphaned claim on ${f.name}@${f.version}: ${f.code}: ${f.message}`
                : `NOT ${f.code === POLICY_DENIED ? 'allowed' : f.code === NOT_IN_SET ? 'in the set' : 'verified'} ${f.name}@${f.version}: ${f.code}: ${f.message}`,
        );
      if (findings.length === 0) out('nothing is installed');
    }
    // A trust check that failed is exit 3; a set's policy refusing what verifies, or a version in its folders
    // the set placed and no longer names (which `diff -c` names as a removal, exit 1), is a rejection, exit 1;
    // one it neither names nor placed is another's, left by `clean -c`, and fails nothing.
    if (failed.some((f) => !REJECTIONS.has(f.code))) return 3;
    return failed.length === 0 ? 0 : 1;
  });
}

async function verifyServed(parsed: Parsed, url: string): Promise<number> {
  const keyFile = stringOption(parsed, 'key');
  const stateFile = stringOption(parsed, 'state');
  const mirror = stringOption(parsed, 'mirror');
  // Held to what `registry add` takes of a registry's URL and its mirrors before anything is read or
  // printed: a URL holding credentials was shown whole in every message and --json, and one that is no URL
  // was read at the mirror and refused as another registry's snapshot.
  registryUrlArgument('--url', url);
  if (mirror !== undefined) registryUrlArgument('--mirror', mirror);
  const subject = mirror === undefined ? url : `${url} at its mirror ${mirror}`;
  // Its --json names the mirror read, refused or not.
  const mirrored = mirror !== undefined ? { mirror } : {};
  // The state file is written (the key kept, the generation seen): guarded as every --output, so
  // `--key k.asc --state k.asc`, a secret key, or a file in a registry's folder is never written over.
  if (stateFile !== undefined) await refuseOutputOver('state', stateFile, [keyFile]);
  try {
    // The served registry's checks (and openpgp) load only for --url.
    const { verifyRegistry } = await import('../verify.ts');
    const report = await verifyRegistry({
      url,
      ...(mirror !== undefined ? { mirror } : {}),
      ...(keyFile ? { pinnedKey: await readGivenKeyFile(keyFile, "the registry's") } : {}),
      ...(stateFile ? { stateFile } : {}),
    });
    if (parsed.values.json === true) {
      outJson({ ok: true, url, ...mirrored, ...report });
      return 0;
    }
    out(
      `verified ${subject}: generation ${report.generation}, expires ${report.expires}, key ${report.fingerprint}`,
    );
    if (report.rotations)
      out(
        `  the registry's key rotated since the key given: followed ${report.rotations.length} signed rotation(s), ${[report.rotations[0]?.from, ...report.rotations.map((r) => r.to)].join(' -> ')}`,
      );
    for (const step of report.rotations ?? [])
      if (step.compromised)
        out(
          `  rotation ${step.sequence} says key ${step.from} is no longer secret: nothing it signs is to be trusted`,
        );
    out(
      `  ${report.documents} signed documents${report.variants > 0 ? ` (and ${report.variants} encoded variants of them)` : ''}, ${report.plugins} plugins, ${report.manifests} manifests, ${report.artifacts} hosted artifacts${report.removed > 0 ? `, ${report.removed} removed versions (files gone, on purpose)` : ''}`,
    );
    out(
      report.log.length > 0
        ? `  log: ${report.log.length} entries, every link checked from the first to head ${report.log.head}, and held against every plugin document and the ${report.envelopes} action envelopes`
        : '  log: none yet',
    );
    // A void is the registry's word alone that an entry never took effect: each is shown, with its reason.
    for (const v of report.voided ?? [])
      out(
        `  log entry #${v.seq} (${[v.type, v.plugin, v.version].filter((w) => w !== undefined).join(' ')}) voided by the registry at #${v.by}: ${oneLine(v.reason)}${v.compromised ? ' (signed by a key a rotation since retired as compromised: whoever stole it may have written it)' : ''}`,
      );
    if (report.keyFrom === 'registry')
      out('  (the key was taken from the registry itself: pin it with --key for real protection)');
    return 0;
  } catch (error) {
    if (!isRefusal(error)) throw error;
    const { code, message } = error as TrustError;
    // The log against what is served: every disagreement, one a line, each with its own code.
    if (error instanceof LogDisagreementError) {
      const { disagreements } = error;
      if (parsed.values.json === true) outJson({ ok: false, url, ...mirrored, code, message, disagreements });
      else {
        out(
          `NOT verified ${subject}: ${code}: the log disagrees with what the registry serves (${disagreements.length}):`,
        );
        for (const d of disagreements) out(`  ${d.code}: ${d.message}`);
      }
      return 3;
    }
    if (parsed.values.json === true) outJson({ ok: false, url, ...mirrored, code, message });
    else out(`NOT verified ${subject}: ${code}: ${message}`);
    return 3;
  }
}
