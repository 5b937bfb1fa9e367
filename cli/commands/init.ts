/** `plugindex init`: a new local registry (config, signing key, an empty signed published state). */
import { REGISTRY_PUBLIC_KEY_KEY } from '../../index-builder/layout.ts';
import { type Parsed, requiredOption, stringOption } from '../args.ts';
import { refuseOutputInRegistry, registryUrlOptionText } from '../inputs.ts';
import { initRegistry, isRegistry } from '../local/registry.ts';
import { out } from '../terminal.ts';

export async function run(parsed: Parsed): Promise<number> {
  const dir = requiredOption(parsed, 'registry');
  const name = stringOption(parsed, 'name') ?? 'plugindex local registry';
  const given = stringOption(parsed, 'url');
  // Checked before anything is made, a usage error as every URL typed on the command line (it was exit 1).
  const url =
    given === undefined
      ? 'http://127.0.0.1:8080'
      : registryUrlOptionText(given, "--url must be the registry's URL");
  const description = stringOption(parsed, 'description');
  // Never inside another registry's folder: under its public/ the new signing key was served to anyone. A
  // registry there already is REGISTRY_EXISTS, as it always was.
  if (!(await isRegistry(dir))) await refuseOutputInRegistry('registry', dir, { kind: 'folder' });
  const { registry, fingerprint } = await initRegistry(dir, {
    name,
    url,
    ...(description ? { description } : {}),
  });
  // What the config holds (no trailing slash), which every document names, rather than the text given.
  const { url: published } = registry.config;
  out(`created registry "${name}" in ${dir}`);
  out(`  url:          ${published}`);
  out(`  signing key:  ${fingerprint} (public key at ${published}/${REGISTRY_PUBLIC_KEY_KEY})`);
  out('  policy:       open, first-come ownership (restrict with: plugindex publishers add)');
  out(`  submit with:  plugindex publish BUNDLE.tgz --registry ${dir}`);
  return 0;
}
