/**
 * `plugindex validate FILE`: a manifest or a bundle, judged as the registry would, without publishing.
 * A bare manifest loads only the manifest module; the bundle reader and OpenPGP are imported for bundles.
 */
import path from 'node:path';
import type { InspectionResult } from '../../index-builder/submission.ts';
import type { Parsed } from '../args.ts';
import { usage } from '../errors.ts';
import { readInput } from '../inputs.ts';
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
  const result = await judge(await readInput(file), file);
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
