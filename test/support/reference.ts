/**
 * The real public data we interoperate with (upstream PulumiCost schemas and examples), kept in
 * `shared/reference` beside the project, never copied into it. Found, in order, at PLUGINDEX_REFERENCE, beside
 * this checkout, or beside the checkout it was cloned from (a clean clone elsewhere, as CI and reviews make).
 * Missing data fails the tests that need it, naming where it was looked for: those tests are never skipped.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '../..');

function origin(): string | undefined {
  try {
    const url = execFileSync('git', ['-C', ROOT, 'remote', 'get-url', 'origin'], { stdio: 'pipe' })
      .toString()
      .trim();
    return path.isAbsolute(url) ? url : undefined; // a local clone's source; a network remote has no files here
  } catch {
    return undefined;
  }
}

function findReference(): string {
  const from = origin();
  const candidates = [
    process.env.PLUGINDEX_REFERENCE,
    path.resolve(ROOT, '../shared/reference'),
    from ? path.resolve(from, '../shared/reference') : undefined,
  ].filter((dir): dir is string => dir !== undefined);
  const found = candidates.find((dir) => existsSync(path.join(dir, 'pulumicost-spec')));
  if (!found) {
    throw new Error(
      `shared/reference not found; looked in ${candidates.join(', ')} (or set PLUGINDEX_REFERENCE)`,
    );
  }
  return found;
}

/** `shared/reference/pulumicost-spec`. */
export const PULUMICOST_SPEC = path.join(findReference(), 'pulumicost-spec');
