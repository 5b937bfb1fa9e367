/**
 * What `publishers` and `operators` share beside their `add`: the options a subcommand does not take refused
 * (each takes `--registry` and `--json`), the entry `remove` names found in the config's list, by its
 * fingerprint or its label, and taken out of it (`removeTrustEntry`), and an entry as a line names it.
 */
import path from 'node:path';
import { parseRegistryConfig, type RegistryConfig } from '../index-builder/config.ts';
import { REVOKED_KEYS_KEY } from '../index-builder/layout.ts';
import type { RevokedKeysDocument } from '../index-builder/model.ts';
import { oneLine } from '../index-builder/text.ts';
import type { Parsed } from './args.ts';
import { CliError, usage } from './errors.ts';
import { CONFIG_FILE, type LocalRegistry, withOpenRegistry, writeConfig } from './local/registry.ts';

/** The options every `publishers` and `operators` action takes: the registry, and `--json`. */
const COMMON_OPTIONS = ['registry', 'json'];

/**
 * A usage error (exit 2) for an option given that `command` (a `list` or a `remove`, which take only the
 * common ones) does not take: `publishers list --names acme-*` listed every publisher, the filter taken
 * without a word.
 */
export function refuseOtherOptions(parsed: Parsed, command: string): void {
  for (const [name, value] of Object.entries(parsed.values))
    if (value !== undefined && !COMMON_OPTIONS.includes(name))
      throw usage(`--${name} is not an option of ${command}`);
}

/** An entry of a config's `publishers` or `operators`. */
interface TrustEntry {
  readonly fingerprint: string;
  readonly label?: string;
}

/**
 * The index of the entry `given` names in `entries` (`what`: "publisher", "operator"): its primary
 * fingerprint (any case, spaces ignored, as `operator revoke` takes one) or else its label exactly.
 * @throws CliError TRUST_ENTRY_NOT_FOUND (exit 1) when none is; USAGE (exit 2) when a label names more
 *   than one, listing their fingerprints, so the operator names one of them.
 */
export function findTrustEntry(
  entries: readonly TrustEntry[],
  given: string,
  what: string,
  configFile: string,
): number {
  const fingerprint = given.replace(/\s+/g, '').toUpperCase();
  const byKey = entries.findIndex((e) => e.fingerprint === fingerprint);
  if (byKey >= 0) return byKey;
  const byLabel = entries.flatMap((e, i) => (e.label === given ? [i] : []));
  if (byLabel.length > 1)
    throw usage(
      `${byLabel.length} ${what} keys are labelled ${JSON.stringify(oneLine(given))} in ${configFile}: name one by its fingerprint (${byLabel.map((i) => entries[i]?.fingerprint).join(', ')})`,
    );
  const [only] = byLabel;
  if (only !== undefined) return only;
  throw new CliError(
    'TRUST_ENTRY_NOT_FOUND',
    `${configFile} lists no ${what} key whose fingerprint or label is ${JSON.stringify(oneLine(given))} (expected one that \`plugindex ${what}s list\` prints)`,
  );
}

/** An entry as `list` and `remove` print it: its fingerprint, and its label in brackets when it has one. */
export function trustEntryLine(entry: TrustEntry): string {
  return `${entry.fingerprint}${entry.label ? ` (${oneLine(entry.label)})` : ''}`;
}

/**
 * Takes the entry `given` names (`findTrustEntry`) out of the config's `list` and writes the config, under
 * the registry's lock and refused during a rotation (`withOpenRegistry`), as `add` writes it. Returns the
 * entry and the config written.
 */
export function removeTrustEntry<K extends 'publishers' | 'operators'>(
  dir: string,
  list: K,
  given: string,
): Promise<{ readonly entry: RegistryConfig[K][number]; readonly config: RegistryConfig }> {
  return withOpenRegistry(dir, async (registry) => {
    const entries: readonly RegistryConfig[K][number][] = registry.config[list];
    const at = findTrustEntry(entries, given, list.slice(0, -1), path.join(dir, CONFIG_FILE));
    const entry = entries[at] as RegistryConfig[K][number];
    const config = parseRegistryConfig({ ...registry.config, [list]: entries.filter((_, i) => i !== at) });
    await writeConfig(dir, config);
    return { entry, config };
  });
}

/**
 * Refuses to trust a key the registry's operator revoked (`keys/revoked.json`), as `role`: `publishers add`
 * said "trusted X" and `operators add` "it may sign every action", while the registry refuses every bundle
 * and action that key signs. A revocation is never lifted: the key's owner makes a new one.
 * @throws CliError KEY_REVOKED (exit 1)
 */
export async function refuseRevokedKey(
  registry: LocalRegistry,
  fingerprint: string,
  role: string,
): Promise<void> {
  const published = await registry.context.site.get(REVOKED_KEYS_KEY);
  if (!published) return;
  let keys: RevokedKeysDocument['keys'] | undefined;
  try {
    keys = (JSON.parse(new TextDecoder().decode(published.body)) as Partial<RevokedKeysDocument>).keys;
  } catch {
    return; // a list that does not read is the batch's to refuse (its own code), not this command's
  }
  const entry = Array.isArray(keys) ? keys.find((k) => k?.fingerprint === fingerprint) : undefined;
  if (!entry) return;
  throw new CliError(
    'KEY_REVOKED',
    `${fingerprint} was revoked by the registry's operator on ${entry.revoked} (${oneLine(entry.reason)}): every bundle and action it signs is refused, so it cannot be ${role}; nothing was written. Its owner makes a new key (plugindex keygen) and you add that one`,
  );
}
