/**
 * `plugindex audit`: what the registries now say of what is installed, and a plugin's history.
 *
 * - Every installed version against its registry's current plugin document (verified through the session,
 *   as an install reads it): the advisories affecting it, worst first, and whether it has been removed or
 *   yanked since. This is how a tree installed `--frozen` (which reads no plugin document) is checked.
 * - One plugin's history from the registry's transparency log: every segment fetched and the whole chain
 *   checked against the head the snapshot signs (session.ts `log`), then the plugin's entries, and its
 *   advisories as the plugin document has them now.
 */
import type { LogEntry } from '../index-builder/log.ts';
import type { Advisory, LogHead, PluginDocument } from '../index-builder/model.ts';
import type { ClientContext } from './context.ts';
import { ClientError } from './errors.ts';
import type { InstalledVersion } from './installed.ts';
import { affectingAdvisories, bySeverity, compareAdvisories } from './lifecycle.ts';

export interface AuditFinding {
  readonly name: string;
  readonly version: string;
  readonly registry: string;
  readonly advisory: Advisory;
}

/** An installed version its registry has since removed (with the operator's reason) or yanked. */
export interface AuditState {
  readonly name: string;
  readonly version: string;
  readonly registry: string;
  readonly state: 'removed' | 'yanked';
  readonly reason?: string;
}

/** An installed version that could not be checked, and why (its source is not a configured registry...). */
export interface AuditSkipped {
  readonly name: string;
  readonly version: string;
  readonly registry: string;
  readonly reason: string;
}

export interface InstalledAudit {
  /** Every advisory affecting an installed version: `high` and `critical` first, then by plugin. */
  readonly findings: readonly AuditFinding[];
  /** Installed versions removed (first) or yanked since, by plugin. */
  readonly states: readonly AuditState[];
  readonly skipped: readonly AuditSkipped[];
  /** Installed versions checked. */
  readonly checked: number;
  /** Installed versions installed.json holds (checked or skipped). */
  readonly installed: number;
  /** The install folder audited. */
  readonly dir: string;
  /**
   * Why nothing was checked, when nothing was (`checked` 0): no such folder, nothing installed in it, or
   * every version skipped. An audit that checked nothing vouches for nothing, so it fails (exit 1): a
   * mistyped `--dir` or an install step that placed nothing passed as "no advisory" before.
   */
  readonly unaudited?: string;
}

/**
 * Whether reading an installed version's registry failed for want of anything to ask, not for what was
 * served: no such source here (an install from a manifest's URL has a pin and no configured registry), or
 * no such plugin there now. `audit` skips such a version and `list --outdated` leaves its row unchecked.
 */
export function isNothingToAsk(error: unknown): error is ClientError {
  return (
    error instanceof ClientError && (error.code === 'REGISTRY_NOT_FOUND' || error.code === 'PLUGIN_NOT_FOUND')
  );
}

/**
 * Why the registry configured under an installed version's source name cannot speak for that version, or
 * undefined when it can. installed.json names a source by name alone, and a plugin set's registry and a
 * configured one may share it: only the registry pinned to the key the version was installed through (or
 * rotated from it) says what is true of it now; another one's advisories, versions, or their absence, say
 * nothing of what is on disk. `audit` skips such a version and `list --outdated` leaves its row unchecked,
 * each with this reason.
 */
export async function explainForeignSource(
  ctx: ClientContext,
  record: Pick<InstalledVersion, 'registry' | 'registry_key'>,
): Promise<string | undefined> {
  const trust = await ctx.trust(record.registry);
  if (trust?.fingerprint === record.registry_key) return undefined;
  if ((trust?.chain ?? []).some((link) => link.fingerprint === record.registry_key)) return undefined;
  if (trust)
    return `installed through key ${record.registry_key}, but the registry named ${record.registry} here is pinned to ${trust.fingerprint}: another registry of that name (a plugin set's registry, whose documents are not read here)`;
  // Configured, its pin gone (its data folder wiped): reading it says so (REGISTRY_NOT_PINNED, and how to
  // pin it again), which is no "not configured".
  if (await ctx.registryEntry(record.registry)) return undefined;
  return `installed through key ${record.registry_key} from a registry named ${record.registry}, which is not configured here (a plugin set's registry, or one removed since)`;
}

/**
 * The advisories affecting every installed version (every version installed.json holds, not only the
 * current one: each is on disk, and a host may run it).
 * @throws TrustError when a registry's documents do not verify (a refusal, not a finding).
 */
export async function auditInstalled(
  ctx: ClientContext,
  options: { readonly dir?: string },
): Promise<InstalledAudit> {
  const tree = ctx.tree(options.dir);
  const installed = await tree.read();
  const findings: AuditFinding[] = [];
  const states: AuditState[] = [];
  const skipped: AuditSkipped[] = [];
  const documents = new Map<string, Promise<PluginDocument>>();
  let checked = 0;
  for (const [name, plugin] of Object.entries(installed.plugins).sort(([a], [b]) => a.localeCompare(b))) {
    for (const [version, record] of Object.entries(plugin.versions)) {
      const foreign = await explainForeignSource(ctx, record);
      if (foreign !== undefined) {
        skipped.push({ name, version, registry: record.registry, reason: foreign });
        continue;
      }
      const key = `${record.registry}\n${name}`;
      let document = documents.get(key);
      if (!document) {
        document = ctx.find(name, record.registry).then((found) => found.document);
        documents.set(key, document);
      }
      try {
        const doc = await document;
        checked += 1;
        for (const advisory of affectingAdvisories(doc, version))
          findings.push({ name, version, registry: record.registry, advisory });
        const published = doc.versions.find((v) => v.version === version);
        if (published?.removed)
          states.push({
            name,
            version,
            registry: record.registry,
            state: 'removed',
            reason: published.removed.reason,
          });
        else if (published?.yanked)
          states.push({
            name,
            version,
            registry: record.registry,
            state: 'yanked',
            ...(published.yanked_reason ? { reason: published.yanked_reason } : {}),
          });
      } catch (error) {
        // Only what says "no such source or plugin here"; a refusal of what was served stops the audit.
        if (!isNothingToAsk(error)) throw error;
        skipped.push({ name, version, registry: record.registry, reason: error.message });
      }
    }
  }
  // Worst first across every plugin (`high` and `critical` named first), then by plugin (a stable sort).
  findings.sort((a, b) => compareAdvisories(a.advisory, b.advisory));
  // Removed first (what no install would give now), then yanked; by plugin within each (a stable sort).
  states.sort((a, b) => (a.state === b.state ? 0 : a.state === 'removed' ? -1 : 1));
  const count = versionsIn(installed.plugins);
  const unaudited =
    checked > 0
      ? undefined
      : count > 0
        ? `none of the ${count} installed version${count === 1 ? '' : 's'} could be checked (each "not checked" says why)`
        : (await tree.exists())
          ? `nothing is installed in ${tree.dir}`
          : `there is no install folder at ${tree.dir} (install there first, or name the folder with --dir)`;
  return {
    findings,
    states,
    skipped,
    checked,
    installed: count,
    dir: tree.dir,
    ...(unaudited === undefined ? {} : { unaudited }),
  };
}

function versionsIn(plugins: Readonly<Record<string, { readonly versions: object }>>): number {
  return Object.values(plugins).reduce((sum, plugin) => sum + Object.keys(plugin.versions).length, 0);
}

export interface PluginHistory {
  readonly name: string;
  readonly registry: string;
  /** The log the snapshot vouches for (absent when the registry keeps none yet). */
  readonly log?: LogHead;
  /**
   * The plugin's entries, oldest first, each with its hash; one that never took effect with the void that
   * says so (its seq, and the registry's reason). The voids themselves are among them.
   */
  readonly entries: readonly (LogEntry & {
    readonly hash: string;
    readonly voided?: { readonly by: number; readonly reason: string };
  })[];
  /** Every advisory of the plugin, withdrawn ones included (they are history too), worst first. */
  readonly advisories: readonly Advisory[];
}

/**
 * A plugin's history from its registry's log, the whole chain checked against the snapshot's head.
 * @throws ClientError PLUGIN_NOT_FOUND, REGISTRY_NOT_FOUND; TrustError LOG_* when the log does not verify.
 */
export async function auditPlugin(
  ctx: ClientContext,
  name: string,
  options: { readonly registry?: string },
): Promise<PluginHistory> {
  const { session, document } = await ctx.find(name, options.registry);
  const { head, entries, voided } = await session.log();
  const voidOf = (seq: number) => {
    const by = voided.get(seq);
    return by ? { voided: { by: by.seq, reason: by.detail?.reason ?? '' } } : {};
  };
  return {
    name,
    registry: session.entry.name,
    ...(head ? { log: head } : {}),
    entries: entries
      .filter((e) => e.entry.plugin === name)
      .map((e) => ({ ...e.entry, hash: e.hash, ...voidOf(e.entry.seq) })),
    advisories: bySeverity(document.advisories ?? []),
  };
}
