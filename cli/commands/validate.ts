/**
 * `plugindex validate FILE`: a manifest or a bundle, judged as the registry would, without publishing.
 * A bare manifest loads only the manifest module; the bundle reader and OpenPGP are imported for bundles.
 */
import path from 'node:path';
import type { InspectionResult } from '../../index-builder/submission.ts';
import type { Parsed } from '../args.ts';
import { CliError, usage } from '../errors.ts';
import { holdsSecretKey, readInput } from '../inputs.ts';
import { formatProblems, problemsJson } from '../output.ts';
import { out } from '../terminal.ts';

/** Read as a bundle when it is named or starts like one (gzip), else as a manifest. */
async function judge(bytes: Uint8Array, file: string): Promise<InspectionResult> {
  const isBundle = /\.(tgz|tar\.gz)$/i.test(file) || (bytes[0] === 0x1f && bytes[1] === 0x8b);
  if (!isBundle)
    return (await import('../../index-builder/manifest/index.ts')).inspectManifest(
      bytes,
      path.basename(file),
    );
  return (await import('../../index-builder/submission.ts')).inspectBundle(bytes);
}

export async function run(parsed: Parsed): Promise<number> {
  const file = parsed.positionals[0];
  if (!file || parsed.positionals.length > 1) throw usage('validate takes exactly one FILE');
  const bytes = await readInput(file);
  // As publish refuses one: read as a manifest, a key's armor was "not valid JSON ... No number after minus
  // sign", naming neither the file's kind nor the mistake.
  if (holdsSecretKey(bytes.subarray(0, 1024)))
    throw new CliError(
      'SECRET_KEY_GIVEN',
      `${file} is a secret key, not a manifest or bundle: validate the manifest or the .tgz that plugindex pack wrote`,
      { exitCode: 2 },
    );
  const result = await judge(bytes, file);
  if (parsed.values.json) {
    out(JSON.stringify({ valid: result.valid, errors: problemsJson(result.problems) }));
  } else if (result.valid) {
    const m = result.manifest;
    const signer = result.signer ? `, signed by ${result.signer}` : '';
    out(`valid: ${m ? `${m.name}@${m.version} (${m.plugin_type})` : file}${signer}`);
  } else {
    const count = result.problems.length;
    out(`invalid: ${file} (${count} problem${count === 1 ? '' : 's'})`);
    for (const line of formatProblems(result.problems)) out(line);
  }
  return result.valid ? 0 : 1;
}
