/**
 * Version rules (PulumiCost spec, "Version Resolution Algorithm"): exact, range, `latest` (highest
 * non-prerelease, non-yanked) and channels (`beta` -> highest `-beta.N`).
 */
import Range from 'semver/classes/range.js';
import compare from 'semver/functions/compare.js';
import eq from 'semver/functions/eq.js';
import gt from 'semver/functions/gt.js';
import prerelease from 'semver/functions/prerelease.js';
import rcompare from 'semver/functions/rcompare.js';
import validVersion from 'semver/functions/valid.js';
import maxSatisfying from 'semver/ranges/max-satisfying.js';
import validRange from 'semver/ranges/valid.js';

interface Versioned {
  readonly version: string;
  readonly yanked: boolean;
}

/** Newest first by SemVer precedence (build metadata ignored, as SemVer says). */
export function sortVersionsDescending<T extends Versioned>(records: readonly T[]): T[] {
  return [...records].sort((a, b) => rcompare(a.version, b.version));
}

/** Ascending SemVer precedence, for sorting (build metadata ignored). */
export function compareVersions(a: string, b: string): number {
  return compare(a, b);
}

export function isPrerelease(version: string): boolean {
  return prerelease(version) !== null;
}

/** The channel of a prerelease: its first identifier when alphabetic (`2.0.0-beta.3` -> `beta`). */
export function channelOf(version: string): string | undefined {
  const first = prerelease(version)?.[0];
  return typeof first === 'string' && /^[a-z][a-z0-9-]*$/i.test(first) ? first.toLowerCase() : undefined;
}

/** Highest non-prerelease, non-yanked version, or null. */
export function latestVersion(records: readonly Versioned[]): string | null {
  let best: string | null = null;
  for (const record of records) {
    if (record.yanked || isPrerelease(record.version)) continue;
    if (best === null || gt(record.version, best)) best = record.version;
  }
  return best;
}

/** Channel -> highest non-yanked version of that channel. */
export function channelHeads(records: readonly Versioned[]): Record<string, string> {
  const heads: Record<string, string> = {};
  for (const record of records) {
    if (record.yanked) continue;
    const channel = channelOf(record.version);
    if (!channel) continue;
    const current = heads[channel];
    if (current === undefined || gt(record.version, current)) heads[channel] = record.version;
  }
  return heads;
}

/**
 * Resolves a request to one version: `latest`, a channel name, an exact version, or a SemVer range
 * (`^1.2.0`: highest match; prereleases only when the range names one). Yanked versions resolve only
 * when asked for exactly, as Cargo does for lock files. Returns undefined when nothing matches.
 */
export function resolveVersion(records: readonly Versioned[], request: string): string | undefined {
  const wanted = request.trim();
  if (wanted === '' || wanted === 'latest') return latestVersion(records) ?? undefined;
  const exact = validVersion(wanted);
  if (exact) return records.find((r) => eq(r.version, exact))?.version;
  if (/^[a-z][a-z0-9-]*$/i.test(wanted)) return channelHeads(records)[wanted.toLowerCase()];
  if (validRange(wanted) === null) return undefined;
  const candidates = records.filter((r) => !r.yanked).map((r) => r.version);
  return maxSatisfying(candidates, wanted) ?? undefined;
}

/**
 * True when an advisory affects `version`: it is not withdrawn, and the version satisfies its `affected`
 * range, prereleases included (`<1.2.3` affects `1.2.3-rc.1`: a prerelease of the fix is not the fix). A
 * range that does not parse affects every version: a signed warning must not pass unread. One definition
 * for the pages and the client.
 */
export function advisoryAffects(
  advisory: { readonly affected: string; readonly withdrawn?: unknown },
  version: string,
): boolean {
  return advisoryTest(advisory)(version);
}

/**
 * `advisoryAffects` for one advisory and many versions: its range parsed once. Asked version by version,
 * each call parsed the range twice (`validRange`, then `satisfies`), and semver's cache of 1,000 parsed
 * ranges held none of a plugin's once it had more than 500 advisories: a page of 500 versions and 1,000
 * advisories took 21 s to render, 43 µs a pair.
 */
export function advisoryTest(advisory: {
  readonly affected: string;
  readonly withdrawn?: unknown;
}): (version: string) => boolean {
  if (advisory.withdrawn) return () => false;
  let range: Range;
  try {
    range = new Range(advisory.affected, { includePrerelease: true });
  } catch {
    return () => true;
  }
  return (version) => range.test(version);
}
