/** The manifest module: parse (JSON or YAML, safely), validate, and load in one call. */

import { type Problem, problemsFrom, SubmissionError } from '../errors.ts';
import type { Manifest } from '../model.ts';
import { readManifestDocument } from './parse.ts';
import { validateManifest } from './validate.ts';

export {
  MAX_MANIFEST_BYTES,
  MAX_YAML_ALIASES,
  parseManifestDocument,
  readManifestDocument,
} from './parse.ts';
export { MANIFEST_SCHEMA, MANIFEST_SCHEMA_ID } from './schema.ts';
export { assertManifest, MAX_MANIFEST_DEPTH, validateManifest } from './validate.ts';

/** A manifest judged without publishing it: every problem, or the manifest when there are none. */
export interface ManifestInspection {
  readonly valid: boolean;
  readonly problems: readonly Problem[];
  readonly manifest?: Manifest;
}

/** Checks a manifest file without publishing (`plugindex validate`, and the manifest in a bundle). */
export async function inspectManifest(bytes: Uint8Array, fileName: string): Promise<ManifestInspection> {
  try {
    return { valid: true, problems: [], manifest: await loadManifest(bytes, fileName) };
  } catch (error) {
    return { valid: false, problems: problemsFrom(error) };
  }
}

/**
 * Parses and validates a manifest file.
 * @throws SubmissionError (INVALID_MANIFEST) with every problem found.
 * @example const manifest = await loadManifest(bytes, 'manifest.yaml');
 */
export async function loadManifest(bytes: Uint8Array, fileName: string): Promise<Manifest> {
  const { value, problems: parsing } = await readManifestDocument(bytes, fileName);
  const problems = [...parsing, ...validateManifest(value)];
  if (problems.length > 0) throw new SubmissionError('INVALID_MANIFEST', problems);
  return value as Manifest;
}
