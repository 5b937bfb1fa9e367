/**
 * `plugindex operators list|add`: the keys of a local registry's operator, which may sign every lifecycle
 * action, the operator-only ones too (remove a version, transfer a name, revoke a key). Whether a key may
 * be one is the core's decision (`withOperator` in index-builder/config.ts); this only reads and writes.
 */
import { withOperator } from '../../index-builder/config.ts';
import { readTrustedKey } from '../../index-builder/signing.ts';
import { oneLine } from '../../index-builder/text.ts';
import { type Parsed, requiredOption, stringOption } from '../args.ts';
import { usage } from '../errors.ts';
import { readPublicKeyFile } from '../inputs.ts';
import { readConfig, withOpenRegistry, writeConfig } from '../local/registry.ts';
import { out } from '../terminal.ts';

export async function run(parsed: Parsed): Promise<number> {
  const [action, keyFile, ...extra] = parsed.positionals;
  const dir = requiredOption(parsed, 'registry');
  if (action === 'list' && keyFile === undefined) {
    const config = await readConfig(dir);
    for (const o of config.operators) out(`${o.fingerprint}${o.label ? ` (${oneLine(o.label)})` : ''}`);
    return 0;
  }
  if (action !== 'add' || !keyFile || extra.length > 0)
    throw usage('operators takes "add KEYFILE" or "list"');
  // Refused here, before the config is written: every signature by a weak or costly key is refused anyway.
  const key = await readTrustedKey(await readPublicKeyFile(keyFile, "an operator's"), 'the operator key');
  const label = stringOption(parsed, 'label') ?? key.userIds[0];
  // Under the registry's lock, as publishers add (cli/commands/publishers.ts says why).
  await withOpenRegistry(dir, async (registry) => {
    const config = withOperator(
      registry.config,
      { key, ...(label ? { label } : {}) },
      registry.context.signer.fingerprints,
    );
    await writeConfig(dir, config);
  });
  out(`${key.fingerprint} is an operator key: it may sign every action`);
  return 0;
}
