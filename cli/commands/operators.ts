/**
 * `plugindex operators list|add|remove`: the keys of a local registry's operator, which may sign every
 * lifecycle action, the operator-only ones too (remove a version, transfer a name, revoke a key). Whether a
 * key may be one is the core's decision (`withOperator` in index-builder/config.ts); this only reads and writes.
 * Each action takes `--json`: the operator keys listed after it, `add` and `remove` with the entry they
 * changed (`added`, `removed`), as `publishers` gives its list.
 */
import { type RegistryConfig, type TrustedOperator, withOperator } from '../../index-builder/config.ts';
import { type Parsed, requiredOption, stringOption, unknownAction } from '../args.ts';
import { usage } from '../errors.ts';
import { readTrustedKeyFile } from '../inputs.ts';
import { readConfig, withOpenRegistry, writeConfig } from '../local/registry.ts';
import { outJson } from '../output.ts';
import { out } from '../terminal.ts';
import { refuseOtherOptions, refuseRevokedKey, removeTrustEntry, trustEntryLine } from '../trust-entry.ts';

const SHAPE = 'operators takes "add KEYFILE [--label TEXT]", "remove FINGERPRINT|LABEL" or "list"';
const ACTIONS: readonly string[] = ['add', 'remove', 'list'];

/** An operator key as `--json` gives it: by fingerprint (the armor stays in the config), every key present. */
function operatorJson(o: TrustedOperator): { fingerprint: string; label: string | null } {
  return { fingerprint: o.fingerprint, label: o.label ?? null };
}

/**
 * What every `operators --json` answer holds, `add` and `remove` after the entry they changed: the operator
 * keys listed now, so one shape reads the list whichever action printed it.
 */
function operatorsJson(config: RegistryConfig): { operators: ReturnType<typeof operatorJson>[] } {
  return { operators: config.operators.map(operatorJson) };
}

export async function run(parsed: Parsed): Promise<number> {
  const [action, keyFile, ...extra] = parsed.positionals;
  if (action === undefined) throw usage(SHAPE);
  if (!ACTIONS.includes(action)) throw unknownAction('operators', action, ACTIONS);
  const dir = requiredOption(parsed, 'registry');
  if (action === 'list' && keyFile === undefined) {
    refuseOtherOptions(parsed, 'operators list');
    const config = await readConfig(dir);
    if (parsed.values.json) outJson(operatorsJson(config));
    else for (const o of config.operators) out(trustEntryLine(o));
    return 0;
  }
  if (action === 'remove' && keyFile !== undefined && extra.length === 0) return remove(parsed, dir, keyFile);
  if (action !== 'add' || !keyFile || extra.length > 0) throw usage(SHAPE);
  // Refused here, before the config is written: every signature by a weak or costly key is refused anyway.
  const key = await readTrustedKeyFile(keyFile, "an operator's", 'the operator key');
  const label = stringOption(parsed, 'label') ?? key.userIds[0];
  // Under the registry's lock, as publishers add (cli/commands/publishers.ts says why).
  const config = await withOpenRegistry(dir, async (registry) => {
    await refuseRevokedKey(registry, key.fingerprint, 'an operator key');
    const config = withOperator(
      registry.config,
      { key, ...(label ? { label } : {}) },
      registry.context.signer.fingerprints,
    );
    await writeConfig(dir, config);
    return config;
  });
  if (parsed.values.json) {
    const added = config.operators.find((o) => o.fingerprint === key.fingerprint);
    outJson({ added: added ? operatorJson(added) : null, ...operatorsJson(config) });
    return 0;
  }
  out(`${key.fingerprint} is an operator key: it may sign every action`);
  return 0;
}

/**
 * Stops taking an operator key's actions: under the lock and refused during a rotation, as `add`. The last
 * one may go too: a registry runs without any (init lists none), owners still act on their plugins, and only
 * the operator-only actions wait for a key to be added. The actions it signed stay applied.
 */
async function remove(parsed: Parsed, dir: string, given: string): Promise<number> {
  refuseOtherOptions(parsed, 'operators remove');
  const removed = await removeTrustEntry(dir, 'operators', given);
  if (parsed.values.json) {
    outJson({ removed: operatorJson(removed.entry), ...operatorsJson(removed.config) });
    return 0;
  }
  out(`${trustEntryLine(removed.entry)} is no longer an operator key; the actions it signed stay applied`);
  if (removed.config.operators.length === 0)
    out(
      '  no operator key is listed now: remove, transfer and revoke-key cannot be signed until one is added (plugindex operators add)',
    );
  return 0;
}
