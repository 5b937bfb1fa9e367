/**
 * What the transparency log says of each plugin (`foldLog`), and a plugin document held to it
 * (`compareDocument`): the fold of a plugin's statements, each action taken as the registry judged it (the
 * newer signed statement about a slot stands: lifecycle.ts `ActionOrder`, an action's `created`, or the time
 * the registry logged it when that is earlier), so an entry older than one already seen for its slot is one
 * a newer action overtook. An entry refused as changing nothing (`detail.effect: "none"`) still says what the
 * plugin was then: the state its action asks for.
 *
 * Here, in index-builder/, not in client/: `verify --url` (client/log-consistency.ts) holds every served
 * document to it, and the pipeline holds a served document to it too, where a `plugindex rebuild` or
 * `rotate-key` asks whether a logged action past the signed head shows in the document it would re-sign
 * (pipeline/stuck-entries.ts): one rule for both, and index-builder/ may not import client/.
 *
 * What the log legitimately lacks: a registry keeps a log only since it was upgraded to one, so a version,
 * advisory, removal, deprecation or revocation dated before the log's first entry may have none; its
 * later changes are logged. Dated so by a time as the pipeline writes one: a date missing or unreadable is
 * held to the log (ARCHITECTURE.md, "The log against what is served", says what the dates still permit). A
 * version whose publish is logged has its whole history in the log. Which versions a deprecation marked is
 * replayed from the log (`impliedDeprecations`): the versions listed then are those published before the log
 * or by an earlier entry, and not removed by an earlier one; a version the log cannot speak for (one older
 * than the log that no logged deprecation named since) is not compared.
 *
 * Pure (no I/O), and linear in the log's size and the documents': the caller fetches.
 *
 * @example
 * const fold = foldLog(entries, voided);
 * const found = [...compareDocument(fold, doc), ...missingPlugins(fold, names)];
 */
import { versionIdentity } from './layout.ts';
import { createdInstant, deprecationStatementOf, slotRecord } from './lifecycle.ts';
import { type LogEntry, NO_EFFECT, type ReadEntry } from './log.ts';
import type { PluginDocument } from './model.ts';

export type LogDisagreementCode =
  /** Entries name a plugin the registry serves no document for. */
  | 'LOG_PLUGIN_MISSING'
  /** A logged publish of a version its plugin document does not list. */
  | 'LOG_VERSION_MISSING'
  /** A version listed with another publisher or source digest than its publish entry names. */
  | 'LOG_VERSION_DIFFERS'
  /** A version published since the log began that no entry records. */
  | 'LOG_VERSION_UNLOGGED'
  /** A version yanked, or not, against what its last yank or unyank entry says. */
  | 'LOG_YANK_DIFFERS'
  /** A yanked version whose history is logged, with no yank entry. */
  | 'LOG_YANK_UNLOGGED'
  /** A logged removal the document does not show, or with another reason. */
  | 'LOG_REMOVAL_DIFFERS'
  /** A removal no entry records. */
  | 'LOG_REMOVAL_UNLOGGED'
  /** The plugin's deprecation against what its last whole-plugin deprecate or undeprecate says. */
  | 'LOG_DEPRECATION_DIFFERS'
  /** A deprecation no entry records. */
  | 'LOG_DEPRECATION_UNLOGGED'
  /**
   * A version deprecated, or not, or with another message or replacement, against what the logged
   * deprecations imply for it (a ranged one naming it, or the whole-plugin one it was published under).
   */
  | 'LOG_VERSION_DEPRECATION_DIFFERS'
  /** An advisory listed, withdrawn, or of another severity or range than its last entry says. */
  | 'LOG_ADVISORY_DIFFERS'
  /** An advisory, or its withdrawal, no entry records. */
  | 'LOG_ADVISORY_UNLOGGED'
  /** An owner listed that the entries removed, or not listed that they added. */
  | 'LOG_OWNERS_DIFFER'
  /** An owner no entry (nor the plugin's first publish) made one. */
  | 'LOG_OWNER_UNLOGGED'
  /** A version of a key a logged revocation names, not marked as such. */
  | 'LOG_REVOCATION_DIFFERS'
  /** A version marked as by a revoked key that no entry revoked. */
  | 'LOG_REVOCATION_UNLOGGED'
  /** An action entry whose envelope is not served under `log/actions/`. */
  | 'LOG_ENVELOPE_MISSING'
  /** An envelope served that is not the action its entry records (another digest, kind, plugin...). */
  | 'LOG_ENVELOPE_DIFFERS'
  /** A rotate-key entry whose rotation document (`keys/rotation/<N>.json`) is not served. */
  | 'LOG_ROTATION_MISSING'
  /** A rotation document served that is not the rotation its entry records (other keys, digest, mark...). */
  | 'LOG_ROTATION_DIFFERS'
  /** A rotation the snapshot counts (its `key_rotations`) that no rotate-key entry records. */
  | 'LOG_ROTATION_UNLOGGED'
  /**
   * Rotations logged and served alike that do not chain: one from another key than the one before it
   * rotated to, not signed by both its keys, or the last the snapshot counts to another key than its signer.
   */
  | 'LOG_ROTATION_BROKEN';

/** One disagreement between the log and what the registry serves. */
export interface LogDisagreement {
  readonly code: LogDisagreementCode;
  /** The plugin it is about (absent for a revocation's envelope). */
  readonly plugin?: string;
  /** The entry whose record differs (absent when no entry records what the document shows). */
  readonly seq?: number;
  readonly message: string;
}

/** An entry with the instant the registry ordered it by (its slot record: lifecycle.ts `slotRecord`). */
interface Stated {
  readonly entry: LogEntry;
  readonly at: bigint;
}

/** What a plugin's entries say of it. */
interface PluginTrail {
  readonly first: number;
  /** Publish entries by version identity. */
  readonly published: Map<string, LogEntry>;
  /** The signer of the plugin's first logged publish (its first owner, under first-come ownership). */
  firstPublisher?: string;
  /** Every deprecate and undeprecate that stood when folded (ranged or not), in log order. */
  readonly deprecationTrail: LogEntry[];
  /** The newest statement of each slot (lifecycle.ts `SLOT`), by version identity, id or fingerprint. */
  readonly yanks: Map<string, Stated>;
  readonly removals: Map<string, LogEntry>;
  /** The deprecation slot's newest instant, and the newest whole-plugin statement taken. */
  deprecationAt?: bigint;
  whole?: Stated;
  readonly advisories: Map<string, Stated>;
  /** One owner's newest statement; `transfer` the newest of all owners; `ownersAt` the newest of any. */
  readonly owners: Map<string, Stated>;
  transfer?: Stated;
  ownersAt?: bigint;
}

export interface LogFold {
  /** When the log began (its first entry's time, ms), or undefined for an empty log. */
  readonly began: number | undefined;
  readonly plugins: ReadonlyMap<string, PluginTrail>;
  /** Logged revocations by the fingerprint revoked. */
  readonly revocations: ReadonlyMap<string, LogEntry>;
}

/**
 * The instant a slot records an entry's action at, by the batches' own rule (lifecycle.ts `slotRecord`: when
 * it was made, or when it was logged if earlier); when it was logged, for an entry without `created`.
 */
function slotInstant(entry: LogEntry): bigint {
  const at =
    entry.created === undefined ? entry.time : slotRecord(entry.created, entry.digest, entry.time).created;
  return createdInstant(at);
}

/** Whether a statement at `at` stands against the newest one its slot holds (made at the same time: yes). */
const stands = (at: bigint, newest: bigint | undefined): boolean => newest === undefined || at >= newest;
const max = (a: bigint | undefined, b: bigint): bigint => (a === undefined || b > a ? b : a);

function trailOf(plugins: Map<string, PluginTrail>, name: string, seq: number): PluginTrail {
  let trail = plugins.get(name);
  if (!trail) {
    trail = {
      first: seq,
      published: new Map(),
      deprecationTrail: [],
      yanks: new Map(),
      removals: new Map(),
      advisories: new Map(),
      owners: new Map(),
    };
    plugins.set(name, trail);
  }
  return trail;
}

/**
 * What the log says of each plugin, in one pass over its entries (as `readWholeLog` gives them, with the
 * entries its voids name, checked: `voided`): an entry a void names never took effect, so it is passed over
 * as if never made (no document is expected to show it), and the void itself says nothing of a plugin.
 */
export function foldLog(
  entries: readonly ReadEntry[],
  voided: ReadonlyMap<number, unknown> = new Map(),
): LogFold {
  const plugins = new Map<string, PluginTrail>();
  const revocations = new Map<string, LogEntry>();
  const first = entries[0]?.entry;
  for (const { entry } of entries) {
    if (entry.type === 'void' || voided.has(entry.seq)) continue;
    if (entry.type === 'revoke-key') {
      const fingerprint = entry.detail?.fingerprint;
      if (fingerprint !== undefined && !revocations.has(fingerprint)) revocations.set(fingerprint, entry);
      continue;
    }
    if (entry.plugin === undefined) continue;
    const trail = trailOf(plugins, entry.plugin, entry.seq);
    const at = slotInstant(entry);
    const stated = { entry, at };
    const version = entry.version === undefined ? undefined : versionIdentity(entry.version);
    switch (entry.type) {
      case 'publish':
        if (version !== undefined && !trail.published.has(version)) trail.published.set(version, entry);
        trail.firstPublisher ??= entry.signer;
        break;
      case 'yank':
      case 'unyank':
        if (version !== undefined && stands(at, trail.yanks.get(version)?.at))
          trail.yanks.set(version, stated);
        break;
      case 'remove':
        if (version !== undefined && !trail.removals.has(version)) trail.removals.set(version, entry);
        break;
      case 'deprecate':
      case 'undeprecate':
        if (!stands(at, trail.deprecationAt)) break;
        trail.deprecationAt = at;
        trail.deprecationTrail.push(entry);
        if (entry.detail?.range === undefined) trail.whole = stated;
        break;
      case 'advisory-add':
      case 'advisory-withdraw': {
        const id = entry.detail?.id;
        if (id !== undefined && stands(at, trail.advisories.get(id)?.at)) trail.advisories.set(id, stated);
        break;
      }
      case 'owners-add':
      case 'owners-remove': {
        const fingerprint = entry.type === 'owners-add' ? entry.detail?.added : entry.detail?.removed;
        if (fingerprint === undefined) break;
        // One owner's slot is within all owners' (a transfer's): the newer of the two stands.
        const newest = trail.owners.get(fingerprint)?.at;
        if (!stands(at, newest) || !stands(at, trail.transfer?.at)) break;
        trail.owners.set(fingerprint, stated);
        trail.ownersAt = max(trail.ownersAt, at);
        break;
      }
      case 'transfer':
        // All owners' slot is around every one owner's: it stands only against the newest of them.
        if (entry.detail?.owner === undefined || !stands(at, trail.ownersAt)) break;
        trail.transfer = stated;
        trail.ownersAt = at;
        trail.owners.clear();
        break;
    }
  }
  return { began: first ? Date.parse(first.time) : undefined, plugins, revocations };
}

/** A version's deprecation as the log implies it. */
interface ImpliedDeprecation {
  readonly deprecated: boolean;
  readonly message?: string;
  readonly replacement?: string;
  /**
   * The entry that set it: the newest deprecate or undeprecate that named the version, or the whole-plugin
   * one in force when it was published; none for a version of a plugin whose whole history is logged and
   * that no deprecation reached.
   */
  readonly entry?: LogEntry;
}

const NEVER_DEPRECATED: ImpliedDeprecation = { deprecated: false };

function impliedBy(entry: LogEntry): ImpliedDeprecation {
  if (entry.type === 'undeprecate') return { deprecated: false, entry };
  const { message, replacement } = entry.detail ?? {};
  return {
    deprecated: true,
    ...(message !== undefined ? { message } : {}),
    ...(replacement !== undefined ? { replacement } : {}),
    entry,
  };
}

/**
 * The deprecation each listed version has by the logged deprecations that stood, replayed as the pipeline
 * applied them, in log order (a batch logs in the order it applies), by lifecycle.ts `deprecationStatementOf`,
 * the pipeline's own replay: a deprecate or undeprecate names every version listed then and not removed that
 * its range takes (`isInActionRange`, the rule `applyAction` reads a range by: one rule, not a copy of it),
 * and a version published later takes the whole-plugin deprecation in force then (`mergePluginDocument`). By version identity; a version is absent where the log
 * cannot say: one that predates the log (or has no publish entry) that no logged deprecation named since, one
 * published under a plugin deprecation that predates the log, and one removed with no remove entry (before
 * the log, its record as it was then).
 */
function impliedDeprecations(
  trail: PluginTrail,
  doc: PluginDocument,
  wholly: boolean,
): Map<string, ImpliedDeprecation> {
  const statements = trail.deprecationTrail;
  const implied = new Map<string, ImpliedDeprecation>();
  for (const v of doc.versions) {
    const identity = versionIdentity(v.version);
    const publish = trail.published.get(identity);
    const removal = trail.removals.get(identity);
    if (v.removed && !removal) continue;
    const statement = deprecationStatementOf(
      v.version,
      publish?.seq ?? -1,
      removal?.seq ?? Number.POSITIVE_INFINITY,
      statements,
    );
    const state = statement ? impliedBy(statement) : publish && wholly ? NEVER_DEPRECATED : undefined;
    if (state) implied.set(identity, state);
  }
  return implied;
}

/** How a version's deprecation reads in a disagreement. */
function deprecationShown(state: {
  readonly deprecated: boolean;
  readonly message?: string | undefined;
  readonly replacement?: string | undefined;
}): string {
  return state.deprecated
    ? `deprecated with message ${shown(state.message)} and replacement ${shown(state.replacement)}`
    : 'not deprecated';
}

/** An ISO 8601 time as the pipeline writes one (`toISOString`, or an action's `created` form). */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

/** Whether `time` is a time, as the pipeline writes one, before `began` (ms). */
export function isDatedBefore(time: unknown, began: number): boolean {
  if (typeof time !== 'string' || !ISO_TIME.test(time)) return false;
  const at = Date.parse(time);
  return !Number.isNaN(at) && at < began;
}

const isNone = (entry: LogEntry): boolean => entry.detail?.effect === NO_EFFECT;
export const shown = (value: string | undefined): string =>
  value === undefined ? 'none' : JSON.stringify(value);

/** Every way `doc` disagrees with what the log says of its plugin. */
export function compareDocument(fold: LogFold, doc: PluginDocument): LogDisagreement[] {
  const found: LogDisagreement[] = [];
  const plugin = doc.name;
  const say = (code: LogDisagreementCode, message: string, entry?: LogEntry) =>
    found.push({
      code,
      plugin,
      ...(entry ? { seq: entry.seq } : {}),
      message: `${entry ? `log entry ${entry.seq} (${entry.type}) of ${plugin}` : plugin}: ${message}`,
    });
  const began = fold.began;
  // Not dated before the log began, so it should be logged (a document's times are the batch's, as its
  // entries'). Only a time as the pipeline writes it predates the log: one missing or unreadable (the
  // document's fields are signed, not checked) exempted anything from the log, a version too, which then
  // also made its plugin's history partial (`wholly`) and exempted its owners, yanks and deprecations.
  const sinceLog = (time: unknown) => began !== undefined && !isDatedBefore(time, began);
  const trail = fold.plugins.get(plugin);
  const listed = new Set(doc.versions.map((v) => versionIdentity(v.version)));
  // Every version's publish is logged: the plugin was first published since the log began.
  const wholly =
    trail !== undefined && doc.versions.length > 0 && [...listed].every((v) => trail.published.has(v));

  for (const [identity, entry] of trail?.published ?? [])
    if (!listed.has(identity)) say('LOG_VERSION_MISSING', `version ${entry.version} is not listed`, entry);
  for (const v of doc.versions) {
    const identity = versionIdentity(v.version);
    const publish = trail?.published.get(identity);
    if (!publish) {
      if (sinceLog(v.published))
        say('LOG_VERSION_UNLOGGED', `version ${v.version}, published ${v.published}, has no publish entry`);
    } else if (publish.signer !== v.publisher || publish.digest !== v.source_sha256)
      say(
        'LOG_VERSION_DIFFERS',
        `version ${v.version} is listed as published by ${v.publisher} from sha256 ${v.source_sha256}, not by ${publish.signer} from ${publish.digest}`,
        publish,
      );
    const logged = publish !== undefined;
    const removal = trail?.removals.get(identity);
    if (removal && !v.removed)
      say('LOG_REMOVAL_DIFFERS', `version ${v.version} is not listed as removed`, removal);
    else if (removal && v.removed && !isNone(removal) && v.removed.reason !== removal.detail?.reason)
      say(
        'LOG_REMOVAL_DIFFERS',
        `version ${v.version} is listed as removed for ${shown(v.removed.reason)}, not ${shown(removal.detail?.reason)}`,
        removal,
      );
    else if (!removal && v.removed && (logged || sinceLog(v.removed.at)))
      say(
        'LOG_REMOVAL_UNLOGGED',
        `version ${v.version} is listed as removed (${v.removed.at}) with no remove entry`,
      );
    // A removal yanks too, whatever a yank entry said before it.
    if (!v.removed) {
      const yank = trail?.yanks.get(identity);
      if (yank) {
        const yanked = yank.entry.type === 'yank';
        if (v.yanked !== yanked)
          say(
            'LOG_YANK_DIFFERS',
            `version ${v.version} is listed as ${v.yanked ? 'yanked' : 'not yanked'}`,
            yank.entry,
          );
        else if (yanked && !isNone(yank.entry) && v.yanked_reason !== yank.entry.detail?.reason)
          say(
            'LOG_YANK_DIFFERS',
            `version ${v.version} is listed as yanked for ${shown(v.yanked_reason)}, not ${shown(yank.entry.detail?.reason)}`,
            yank.entry,
          );
      } else if (v.yanked && logged)
        say('LOG_YANK_UNLOGGED', `version ${v.version} is listed as yanked with no yank entry`);
    }
    const revocation = fold.revocations.get(v.publisher);
    if (revocation && !v.publisher_revoked)
      say(
        'LOG_REVOCATION_DIFFERS',
        `version ${v.version} by ${v.publisher} is not marked as by a revoked key`,
        revocation,
      );
    else if (!revocation && v.publisher_revoked && (logged || sinceLog(v.publisher_revoked.at)))
      say(
        'LOG_REVOCATION_UNLOGGED',
        `version ${v.version} is marked as by a revoked key (${v.publisher}) that no revoke-key entry names`,
      );
  }

  const whole = trail?.whole?.entry;
  if (whole?.type === 'deprecate') {
    const message = whole.detail?.message;
    const replacement = whole.detail?.replacement;
    if (!doc.deprecation) say('LOG_DEPRECATION_DIFFERS', 'the plugin is not listed as deprecated', whole);
    else if (doc.deprecation.message !== message || doc.deprecation.replacement !== replacement)
      say(
        'LOG_DEPRECATION_DIFFERS',
        `the plugin is listed as deprecated with message ${shown(doc.deprecation.message)} and replacement ${shown(doc.deprecation.replacement)}, not ${shown(message)} and ${shown(replacement)}`,
        whole,
      );
  } else if (whole?.type === 'undeprecate') {
    if (doc.deprecation) say('LOG_DEPRECATION_DIFFERS', 'the plugin is listed as deprecated', whole);
  } else if (doc.deprecation && (wholly || sinceLog(doc.deprecation.at)))
    say(
      'LOG_DEPRECATION_UNLOGGED',
      `the plugin is listed as deprecated (${doc.deprecation.at}) with no deprecate entry`,
    );
  // Each version's deprecation by the logged deprecations, where the log says what it is.
  if (trail) {
    const implied = impliedDeprecations(trail, doc, wholly);
    for (const v of doc.versions) {
      const state = implied.get(versionIdentity(v.version));
      if (!state) continue;
      const listedAs = {
        deprecated: v.deprecated,
        message: v.deprecation_message,
        replacement: v.deprecation_replacement,
      };
      const agrees =
        v.deprecated === state.deprecated &&
        (!v.deprecated ||
          (v.deprecation_message === state.message && v.deprecation_replacement === state.replacement));
      if (agrees) continue;
      if (state.entry)
        say(
          'LOG_VERSION_DEPRECATION_DIFFERS',
          `version ${v.version} is listed as ${deprecationShown(listedAs)}, where the log has it ${deprecationShown(state)}`,
          state.entry,
        );
      // No deprecation reached it: deprecated, it is one no entry records.
      else
        say(
          'LOG_DEPRECATION_UNLOGGED',
          `version ${v.version} is listed as deprecated with no deprecate entry`,
        );
    }
  }

  const advisories = new Map((doc.advisories ?? []).map((a) => [a.id, a]));
  for (const [id, { entry }] of trail?.advisories ?? []) {
    const listedAdvisory = advisories.get(id);
    if (entry.type === 'advisory-add') {
      if (!listedAdvisory) say('LOG_ADVISORY_DIFFERS', `advisory ${id} is not listed`, entry);
      else if (listedAdvisory.withdrawn)
        say('LOG_ADVISORY_DIFFERS', `advisory ${id} is listed as withdrawn`, entry);
      else if (
        listedAdvisory.severity !== entry.detail?.severity ||
        listedAdvisory.affected !== entry.detail?.affected
      )
        say(
          'LOG_ADVISORY_DIFFERS',
          `advisory ${id} is listed as ${listedAdvisory.severity} for ${listedAdvisory.affected}, not ${shown(entry.detail?.severity)} for ${shown(entry.detail?.affected)}`,
          entry,
        );
    } else if (listedAdvisory && !listedAdvisory.withdrawn)
      say('LOG_ADVISORY_DIFFERS', `advisory ${id} is listed as in force, not withdrawn`, entry);
  }
  for (const a of doc.advisories ?? []) {
    if (trail?.advisories.has(a.id)) continue;
    if (wholly || sinceLog(a.published))
      say('LOG_ADVISORY_UNLOGGED', `advisory ${a.id} (published ${a.published}) has no advisory-add entry`);
    else if (a.withdrawn && sinceLog(a.withdrawn.at))
      say(
        'LOG_ADVISORY_UNLOGGED',
        `advisory ${a.id} is listed as withdrawn (${a.withdrawn.at}) with no advisory-withdraw entry`,
      );
  }

  const owners = new Set(doc.owners);
  const transfer = trail?.transfer?.entry;
  for (const [fingerprint, { entry }] of trail?.owners ?? []) {
    const added = entry.type === 'owners-add';
    if (owners.has(fingerprint) !== added)
      say('LOG_OWNERS_DIFFER', `${fingerprint} is ${added ? 'not ' : ''}listed as an owner`, entry);
  }
  const transferredTo = transfer?.detail?.owner;
  if (transferredTo !== undefined && !trail?.owners.has(transferredTo) && !owners.has(transferredTo))
    say('LOG_OWNERS_DIFFER', `${transferredTo}, transferred the plugin, is not listed as an owner`, transfer);
  // Who owns it is known whole after a transfer, or from the first publish when every publish is logged.
  if (transfer || wholly)
    for (const fingerprint of doc.owners) {
      if (trail?.owners.has(fingerprint)) continue;
      const base = transfer ? transferredTo : trail?.firstPublisher;
      if (fingerprint !== base)
        say(
          'LOG_OWNER_UNLOGGED',
          `${fingerprint} is listed as an owner, which no entry${transfer ? ` since the transfer (entry ${transfer.seq})` : ''} made one`,
        );
    }
  return found;
}

/** The plugins entries name that the registry serves no document for (`served`: every plugin it lists). */
export function missingPlugins(fold: LogFold, served: ReadonlySet<string>): LogDisagreement[] {
  const found: LogDisagreement[] = [];
  for (const [plugin, trail] of fold.plugins)
    if (!served.has(plugin))
      found.push({
        code: 'LOG_PLUGIN_MISSING',
        plugin,
        seq: trail.first,
        message: `log entry ${trail.first} names ${plugin}, which the registry lists no document for`,
      });
  return found;
}
