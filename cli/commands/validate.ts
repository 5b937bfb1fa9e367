/**
 * `plugindex validate FILE`: a manifest or a bundle, judged as the registry would, without publishing.
 * A bare manifest loads only the manifest module; the bundle reader and OpenPGP are imported for bundles.
 */
import path from 'node:path';
import { type Problem, SubmissionError } from '../../index-builder/errors.ts';
import type { Manifest } from '../../index-builder/model.ts';
import type { Parsed } from '../args.ts';
import { usage } from '../errors.ts';
import { readInput } from '../inputs.ts';
import { formatProblems, problemsJson } from '../output.ts';
import { out } from '../terminal.ts';

interface Verdict {
  readonly valid: boolean;
  readonly problems: readonly Problem[];
  readonly manifest?: Manifest;
  readonly signer?: string;
}

async function judgeManifest(bytes: Uint8Array, fileName: string): Promise<Verdict> {
  const { loadManifest } = await import('../../index-builder/manifest/index.ts');
  try {
    return { valid: true, problems: [], manifest: loadManifest(bytes, fileName) };
  } catch (error) {
    if (error instanceof SubmissionError) return { valid: false, problems: error.problems };
    throw error;
  }
}

async function judgeBundle(bytes: Uint8Array): Promise<Verdict> {
  const { inspectBundle } = await import('../../index-builder/submission.ts');
  return inspectBundle(bytes);
}

export async function run(parsed: Parsed): Promise<number> {
  const file = parsed.positionals[0];
  if (!file || parsed.positionals.length > 1) throw usage('validate takes exactly one FILE');
  const bytes = await readInput(file);
  const isBundle = /\.(tgz|tar\.gz)$/i.test(file) || (bytes[0] === 0x1f && bytes[1] === 0x8b);
  const result = isBundle ? await judgeBundle(bytes) : await judgeManifest(bytes, path.basename(file));
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
