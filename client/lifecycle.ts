import {
  type Advisory,
  type PluginDocument,
  SEVERITIES,
  type Severity,
  type VersionRecord,
} from '../index-builder/model.ts';
import { oneLine } from '../index-builder/text.ts';
import { advisoryAffects } from '../index-builder/versions.ts';
import { ClientError } from './errors.ts';

/** Severities an install refuses unless `--allow-vulnerable`. */
export const BLOCKING_SEVERITIES: ReadonlySet<Severity> = new Set(['high', 'critical']);

/** Worst first: `critical` ranks 0. */
function severityRank(severity: Severity): number {
  const index = SEVERITIES.indexOf(severity);
  // A severity this client does not know is ranked as the worst: never quietly below `high`.
  return index === -1 ? 0 : SEVERITIES.length - 1 - index;
}

export function isBlocking(advisory: Advisory): boolean {
  return BLOCKING_SEVERITIES.has(advisory.severity) || !SEVERITIES.includes(advisory.severity);
}

/** Worst first, then by id: the order every report shows advisories in. */
export function compareAdvisories(a: Advisory, b: Advisory): number {
  return severityRank(a.severity) - severityRank(b.severity) || a.id.localeCompare(b.id);
}

export function bySeverity(advisories: readonly Advisory[]): Advisory[] {
  return [...advisories].sort(compareAdvisories);
}

/** True when `advisory` affects `version` (the core's one definition, which the pages use too). */
export const affects = advisoryAffects;

/** The advisories of `doc` that affect `version`, worst first. */
export function affectingAdvisories(doc: PluginDocument, version: string): Advisory[] {
  return bySeverity((doc.advisories ?? []).filter((a) => affects(a, version)));
}

/** One advisory in a line: `PDX-2026-0001 (high): summary; fixed in 1.2.3; URL`. */
export function advisoryText(advisory: Advisory): string {
  const fixed = advisory.fixed ? `; fixed in ${advisory.fixed}` : '; no fixed version yet';
  const url = advisory.url ? `; ${advisory.url}` : '';
  return `${advisory.id} (${advisory.severity}): ${oneLine(advisory.summary)}${fixed}${url}`;
}

/**
 * Refuses what an install may not take: an advisory at `high` or above affecting `version`, unless allowed.
 * @throws ClientError VULNERABLE naming every blocking advisory (id, severity, summary, fixed version).
 */
export function checkAdvisories(
  doc: PluginDocument,
  version: string,
  options: { readonly allowVulnerable?: boolean },
): { readonly advisories: readonly Advisory[]; readonly warnings: readonly string[] } {
  const advisories = affectingAdvisories(doc, version);
  const blocking = advisories.filter(isBlocking);
  if (blocking.length > 0 && !options.allowVulnerable)
    throw new ClientError(
      'VULNERABLE',
      `${doc.name}@${version} is affected by ${blocking.map(advisoryText).join('; ')}: install a fixed version, or pass --allow-vulnerable to install it anyway`,
    );
  return {
    advisories,
    warnings: advisories.map((a) => `${doc.name}@${version} is affected by advisory ${advisoryText(a)}`),
  };
}

/**
 * What `info` says of the version a spec resolves to: the advisories affecting it, worst first, each in the
 * words of install's warning, one install refuses saying so. Never throws: `info` describes what an install
 * would meet, where it said the version resolved and nothing of a critical advisory install then refused.
 */
export function advisoryNotes(
  doc: PluginDocument,
  version: string,
): { readonly advisories: readonly Advisory[]; readonly warnings: readonly string[] } {
  const advisories = affectingAdvisories(doc, version);
  return {
    advisories,
    warnings: advisories.map(
      (a) =>
        `${doc.name}@${version} is affected by advisory ${advisoryText(a)}${isBlocking(a) ? ' (install refuses it, VULNERABLE, unless --allow-vulnerable)' : ''}`,
    ),
  };
}

/** The deprecation that applies to a version: its own, else the whole plugin's. */
export function deprecationOf(
  doc: PluginDocument,
  record: VersionRecord,
): { readonly message?: string; readonly replacement?: string } | undefined {
  if (record.deprecated)
    return {
      ...(record.deprecation_message ? { message: record.deprecation_message } : {}),
      ...(record.deprecation_replacement ? { replacement: record.deprecation_replacement } : {}),
    };
  if (doc.deprecation)
    return {
      message: doc.deprecation.message,
      ...(doc.deprecation.replacement ? { replacement: doc.deprecation.replacement } : {}),
    };
  return undefined;
}

/** `demo@1.0.0 is deprecated: <message>; use <replacement> instead`, or nothing. */
export function deprecationWarning(doc: PluginDocument, record: VersionRecord): string[] {
  const deprecation = deprecationOf(doc, record);
  if (!deprecation) return [];
  const message = deprecation.message ? `: ${oneLine(deprecation.message)}` : '';
  const instead = deprecation.replacement ? `; use ${deprecation.replacement} instead` : '';
  return [`${doc.name}@${record.version} is deprecated${message}${instead}`];
}

/** A version whose publisher's key was revoked after it published: kept, marked, and said. */
export function revocationWarning(doc: PluginDocument, record: VersionRecord): string[] {
  const revoked = record.publisher_revoked;
  if (!revoked) return [];
  const why = revoked.reason ? ` (${oneLine(revoked.reason)})` : '';
  return [
    `${doc.name}@${record.version} was published by key ${record.publisher}, revoked on ${revoked.at}${why}`,
  ];
}

/**
 * Refuses a version the operator removed, wherever the request came from.
 * @throws ClientError VERSION_REMOVED naming the version, why and when.
 */
export function checkNotRemoved(doc: PluginDocument, record: VersionRecord, from: string): void {
  if (!record.removed) return;
  throw new ClientError(
    'VERSION_REMOVED',
    `${doc.name}@${record.version}${from} was removed from the registry on ${record.removed.at}: ${oneLine(record.removed.reason)}`,
  );
}
