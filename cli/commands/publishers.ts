/**
 * `plugindex publishers list|add|remove`: who a local registry trusts. What adding a key means for the policy
 * is the core's decision (`withTrustedPublisher` in index-builder/config.ts); this only reads and writes.
 * Each action takes `--json`: the policy, the ownership and the publishers trusted after it, `add` and
 * `remove` with the entry they changed (`added`, `removed`; an `add` of a key listed already with the entry
 * it replaced, `replaced`).
 */
import {
  nameGlobProblem,
  type RegistryConfig,
  type TrustedPublisher,
  withTrustedPublisher,
} from '../../index-builder/config.ts';
import { oneLine } from '../../index-builder/text.ts';
import { listOption, type Parsed, requiredOption, stringOption, unknownAction } from '../args.ts';
import { usage } from '../errors.ts';
import { readTrustedKeyFile } from '../inputs.ts';
import { readConfig, withOpenRegistry, writeConfig } from '../local/registry.ts';
import { outJson } from '../output.ts';
import { out } from '../terminal.ts';
import { refuseOtherOptions, refuseRevokedKey, removeTrustEntry, trustEntryLine } from '../trust-entry.ts';

const SHAPE =
  'publishers takes "add KEYFILE --names GLOB [--label TEXT]", "remove FINGERPRINT|LABEL" or "list"';
const ACTIONS: readonly string[] = ['add', 'remove', 'list'];

/** A trusted publisher as `--json` gives it: its key by fingerprint (the armor stays in the config), every key present. */
function publisherJson(p: TrustedPublisher): { fingerprint: string; names: string[]; label: string | null } {
  return { fingerprint: p.fingerprint, names: [...p.names], label: p.label ?? null };
}

/**
 * What every `publishers --json` answer holds, `add` and `remove` after the entry they changed: the policy,
 * the ownership and the publishers trusted now, so one shape reads the list whichever action printed it.
 */
function trustJson(config: RegistryConfig): {
  policy: string;
  ownership: string;
  publishers: ReturnType<typeof publisherJson>[];
} {
  return {
    policy: config.policy,
    ownership: config.ownership,
    publishers: config.publishers.map(publisherJson),
  };
}

export async function run(parsed: Parsed): Promise<number> {
  const [action, keyFile, ...extra] = parsed.positionals;
  if (action === undefined) throw usage(SHAPE);
  if (!ACTIONS.includes(action)) throw unknownAction('publishers', action, ACTIONS);
  const dir = requiredOption(parsed, 'registry');
  if (action === 'list' && keyFile === undefined) {
    refuseOtherOptions(parsed, 'publishers list');
    const config = await readConfig(dir);
    if (parsed.values.json) {
      outJson(trustJson(config));
      return 0;
    }
    out(`policy: ${config.policy}, ownership: ${config.ownership}`);
    for (const p of config.publishers)
      out(`${p.fingerprint} ${p.names.join(',')}${p.label ? ` (${oneLine(p.label)})` : ''}`);
    return 0;
  }
  if (action === 'remove' && keyFile !== undefined && extra.length === 0) return remove(parsed, dir, keyFile);
  if (action !== 'add' || !keyFile || extra.length > 0) throw usage(SHAPE);
  const names = listOption(parsed, 'names')
    .flatMap((n) => n.split(','))
    .map((n) => n.trim())
    .filter(Boolean);
  if (names.length === 0) throw usage('--names is required (for example --names "acme-*")');
  for (const glob of names) {
    const problem = nameGlobProblem(glob);
    if (problem) throw usage(`--names: ${problem}`);
  }
  // Refused here, before the config is written: every signature by a weak or costly key is refused anyway.
  const key = await readTrustedKeyFile(keyFile, "the publisher's", 'the publisher key');
  // Read, judged and written under the registry's lock, as every other writer of the registry works: two
  // adds at once each wrote the config it had read (one trust lost), and one during a rotation judged the
  // key against whichever key the key file held (withOpenRegistry refuses then: ROTATION_PENDING).
  const { config, earlier } = await withOpenRegistry(dir, async (registry) => {
    await refuseRevokedKey(registry, key.fingerprint, 'a trusted publisher');
    // A key added again replaces its entry: its label is kept unless --label gives another (the key's user
    // ID took the place of the operator's, which `publishers remove LABEL` names it by), and the names it
    // loses are said below.
    const earlier = registry.config.publishers.find((p) => p.fingerprint === key.fingerprint);
    const label = stringOption(parsed, 'label') ?? earlier?.label ?? key.userIds[0];
    const config = withTrustedPublisher(
      registry.config,
      { key, names, ...(label ? { label } : {}) },
      registry.context.signer.fingerprints,
    );
    await writeConfig(dir, config);
    return { config, earlier };
  });
  if (parsed.values.json) {
    const added = config.publishers.find((p) => p.fingerprint === key.fingerprint);
    // A key listed already: the entry it replaced too, whose names the text says it no longer has.
    outJson({
      added: added ? publisherJson(added) : null,
      ...(earlier ? { replaced: publisherJson(earlier) } : {}),
      ...trustJson(config),
    });
    return 0;
  }
  const dropped = (earlier?.names ?? []).filter((name) => !names.includes(name));
  const lost = dropped.length > 0 ? `, no longer for ${dropped.join(', ')} (its names before)` : '';
  out(`trusted ${key.fingerprint} for ${names.join(', ')}${lost}; policy is now restricted`);
  return 0;
}

/**
 * Stops trusting a publisher key: under the lock and refused during a rotation, as `add`. The policy stays
 * `restricted` (an empty list trusts no one; opening the registry is not what removing a key asks). What
 * the key published stays published, signed by the registry: `operator revoke` is what marks it.
 */
async function remove(parsed: Parsed, dir: string, given: string): Promise<number> {
  refuseOtherOptions(parsed, 'publishers remove');
  const removed = await removeTrustEntry(dir, 'publishers', given);
  if (parsed.values.json) {
    outJson({ removed: publisherJson(removed.entry), ...trustJson(removed.config) });
    return 0;
  }
  const { fingerprint } = removed.entry;
  const { policy } = removed.config;
  out(
    `${trustEntryLine(removed.entry)} is no longer trusted: ${policy === 'restricted' ? 'it may not publish, nor act as an owner of a plugin' : 'but the policy is open, so any key may still publish'}`,
  );
  out(
    `  what it published stays published, signed by the registry; to mark it: plugindex operator revoke ${fingerprint} --reason TEXT`,
  );
  if (removed.config.publishers.length === 0 && policy === 'restricted')
    out(
      '  no publisher is trusted now: the policy stays restricted, so nothing can be published until one is added',
    );
  return 0;
}
