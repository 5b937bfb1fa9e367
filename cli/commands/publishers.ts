/**
 * `plugindex publishers list|add`: who a local registry trusts. What adding a key means for the policy is
 * the core's decision (`withTrustedPublisher` in index-builder/config.ts); this only reads and writes.
 */
import { nameGlobProblem, withTrustedPublisher } from '../../index-builder/config.ts';
import { readTrustedKey } from '../../index-builder/signing.ts';
import { oneLine } from '../../index-builder/text.ts';
import { listOption, type Parsed, requiredOption, stringOption } from '../args.ts';
import { usage } from '../errors.ts';
import { readPublicKeyFile } from '../inputs.ts';
import { readConfig, withOpenRegistry, writeConfig } from '../local/registry.ts';
import { out } from '../terminal.ts';

export async function run(parsed: Parsed): Promise<number> {
  const [action, keyFile, ...extra] = parsed.positionals;
  const dir = requiredOption(parsed, 'registry');
  if (action === 'list' && keyFile === undefined) {
    const config = await readConfig(dir);
    out(`policy: ${config.policy}, ownership: ${config.ownership}`);
    for (const p of config.publishers)
      out(`${p.fingerprint} ${p.names.join(',')}${p.label ? ` (${oneLine(p.label)})` : ''}`);
    return 0;
  }
  if (action !== 'add' || !keyFile || extra.length > 0)
    throw usage('publishers takes "add KEYFILE --names GLOB" or "list"');
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
  const key = await readTrustedKey(await readPublicKeyFile(keyFile, "the publisher's"), 'the publisher key');
  const label = stringOption(parsed, 'label') ?? key.userIds[0];
  // Read, judged and written under the registry's lock, as every other writer of the registry works: two
  // adds at once each wrote the config it had read (one trust lost), and one during a rotation judged the
  // key against whichever key the key file held (withOpenRegistry refuses then: ROTATION_PENDING).
  await withOpenRegistry(dir, async (registry) => {
    const config = withTrustedPublisher(
      registry.config,
      { key, names, ...(label ? { label } : {}) },
      registry.context.signer.fingerprints,
    );
    await writeConfig(dir, config);
  });
  out(`trusted ${key.fingerprint} for ${names.join(', ')}; policy is now restricted`);
  return 0;
}
