/**
 * What a lifecycle action (index-builder/actions.ts) does to a plugin document: yank and unyank, deprecate
 * and undeprecate, advisories, owners, and the operator's remove and transfer; and what a revoked key does
 * to the versions it published and to `keys/revoked.json`. Pure: a document and an action in, the new
 * document or the problems out, each with its code and the action's JSON pointer. Who may act (the signer,
 * the owners, the operator) is decided before (trust.ts); here only what the action means.
 *
 * An action that changes nothing is refused (ACTION_NO_EFFECT), so every accepted action has an effect;
 * a crash retry that re-applies an accepted action takes that refusal to mean "already done"
 * (pipeline/actions.ts). Such a refusal that still stands for its slot (`ActionOrder`) is logged all the
 * same, marked as changing nothing, so the order a rebuild restores from the log is the one recorded.
 */
import satisfies from 'semver/functions/satisfies.js';
import type { ActionBody } from './actions.ts';
import { type Problem, problem } from './errors.ts';
import { hostedArtifactKey, manifestKey, signatureKey, versionIdentity } from './layout.ts';
import type { LogEntry } from './log.ts';
import type { Advisory, PluginDocument, RevokedKeysDocument, VersionRecord } from './model.ts';
import { channelHeads, latestVersion } from './versions.ts';

/** An action on one plugin: every kind but `revoke-key`, which is registry-wide. */
export type PluginAction = Exclude<ActionBody, { readonly action: 'revoke-key' }>;

/** A key as an action names it (`owners-add`, `transfer`): read by the caller, which has the key parser. */
export interface NamedKey {
  /** Primary key fingerprint. */
  readonly fingerprint: string;
  /** Every fingerprint of the key (primary and subkeys). */
  readonly fingerprints: readonly string[];
}

export interface LifecycleOptions {
  /** When the registry applies the action (ISO 8601): deprecations, advisories and removals carry it. */
  readonly at: string;
  /** The key the action names (`owners-add`, `transfer`), read from its `key`. */
  readonly key?: NamedKey;
  /** Every fingerprint of the registry's own key: never an owner. */
  readonly registryFingerprints: readonly string[];
  /** Is this fingerprint revoked (`keys/revoked.json`)? A revoked key never becomes an owner. */
  readonly isRevoked?: (fingerprint: string) => boolean;
  /**
   * The action is in the log already: a run that died logged it, and its retry applies it again. The bounds
   * on what a plugin may hold (MAX_ADVISORIES) are for new actions; a logged one is applied as logged, or the
   * log would hold an advisory no document shows (another run may have added one meanwhile, judged against
   * the published document, which did not show this one yet).
   */
  readonly logged?: boolean;
  /**
   * A logged ranged deprecate or undeprecate: the versions (`versionIdentity`) listed when its entry was
   * appended, the only ones it may mark (`listedWhenLogged`). Its range read against the versions at its
   * retry marked those published after it too, which its signer never saw and the log's replay
   * (`deprecationStatementOf`, `verify --url`) leaves as they were published.
   */
  readonly listed?: ReadonlySet<string>;
}

export type LifecycleResult =
  | { readonly ok: true; readonly doc: PluginDocument }
  | { readonly ok: false; readonly problems: readonly Problem[] };

/** The fields of a version's record an action changes, first and in this order; then the rest as they were. */
const STATE_FIELDS = [
  'version',
  'published',
  'prerelease',
  'yanked',
  'yanked_reason',
  'deprecated',
  'deprecation_message',
  'deprecation_replacement',
  'removed',
  'publisher_revoked',
] as const;

/** A version's record in one key order, whatever changed, so one state always renders the same bytes. */
function orderedRecord(record: Record<string, unknown>): VersionRecord {
  const out: Record<string, unknown> = {};
  for (const key of STATE_FIELDS) if (record[key] !== undefined) out[key] = record[key];
  for (const [key, value] of Object.entries(record))
    if (!(STATE_FIELDS as readonly string[]).includes(key) && value !== undefined) out[key] = value;
  return out as unknown as VersionRecord;
}

/** `record` with `changes` applied; a field set to undefined is dropped. */
function changed(
  record: VersionRecord,
  changes: Partial<Record<keyof VersionRecord, unknown>>,
): VersionRecord {
  return orderedRecord({ ...record, ...changes });
}

/**
 * A plugin document in its one key order, with `latest_version` and `channels` recomputed from its versions
 * (a yanked or removed version is never latest): every change to a document ends here.
 */
export function recomputed(doc: PluginDocument): PluginDocument {
  // Built key by key rather than by a rest and spreads of conditional objects: the same keys in the same
  // order, at a fraction of the cost before V8 optimizes it (an import of 10,000 plugins calls this once each).
  const out: Record<string, unknown> = { schema: doc.schema, name: doc.name };
  for (const key of Object.keys(doc))
    if (!RECOMPUTED_KEYS.has(key)) out[key] = doc[key as keyof PluginDocument];
  out.latest_version = latestVersion(doc.versions);
  out.channels = channelHeads(doc.versions);
  out.owners = doc.owners;
  if (doc.deprecation) out.deprecation = doc.deprecation;
  if (doc.advisories && doc.advisories.length > 0) out.advisories = doc.advisories;
  out.versions = doc.versions;
  return out as unknown as PluginDocument;
}

/** The keys `recomputed` places itself; every other key of a document (its description) keeps its order. */
const RECOMPUTED_KEYS = new Set([
  'schema',
  'name',
  'latest_version',
  'channels',
  'owners',
  'deprecation',
  'advisories',
  'versions',
]);

/** A version's record deprecated with this message and replacement (none: the replacement is dropped). */
export function deprecatedRecord(
  record: VersionRecord,
  message: string,
  replacement?: string,
): VersionRecord {
  return changed(record, {
    deprecated: true,
    deprecation_message: message,
    deprecation_replacement: replacement,
  });
}

/** The record of `version` (build metadata and letter case aside, as versions are one), or undefined. */
export function findVersion(doc: PluginDocument, version: string): VersionRecord | undefined {
  const identity = versionIdentity(version);
  return doc.versions.find((v) => versionIdentity(v.version) === identity);
}

/**
 * The site keys of a version's immutable files: its manifest, the manifest's signature and the artifacts
 * the registry hosts. What `remove` deletes.
 */
export function versionFiles(name: string, record: VersionRecord): string[] {
  const manifest = manifestKey(name, record.version);
  const hosted = [...record.artifacts, ...(record.libc_artifacts ?? [])]
    .filter((a) => a.hosted)
    .map((a) => hostedArtifactKey(name, record.version, a.url))
    .filter((key): key is string => key !== undefined);
  return [manifest, signatureKey(manifest), ...hosted];
}

const noEffect = (path: string, message: string): LifecycleResult => ({
  ok: false,
  problems: [problem('ACTION_NO_EFFECT', path, message, { expected: 'an action that changes something' })],
});
const refused = (...problems: Problem[]): LifecycleResult => ({ ok: false, problems });

/**
 * Most advisories a plugin may hold, withdrawn ones included (they stay listed). Each is asked of every
 * version its page shows and every install; without a bound, an owner's 1,000 advisory-add actions made a
 * page of 500 versions take 21 s to render, 5,000 of them 87 s, in the function that publishes for everyone.
 */
export const MAX_ADVISORIES = 256;
const done = (doc: PluginDocument): LifecycleResult => ({ ok: true, doc: recomputed(doc) });

function unknownVersion(doc: PluginDocument, version: string): Problem {
  return problem('ACTION_UNKNOWN_VERSION', '/version', `${doc.name} has no version ${version}`, {
    expected: `one of ${doc.versions.map((v) => v.version).join(', ') || '(no versions)'}`,
    found: version,
  });
}

function removedVersion(doc: PluginDocument, record: VersionRecord): Problem {
  return problem(
    'VERSION_REMOVED',
    '/version',
    `${doc.name}@${record.version} was removed by the registry's operator (${record.removed?.reason ?? ''})`,
  );
}

/**
 * Whether a deprecate or undeprecate names `version`: with no range, every version; with one, prereleases
 * included (`<2.0.0` deprecates `1.5.0-beta.1` too). `verify --url` replays logged deprecations with it
 * (client/log-consistency.ts), so the two can never read a range differently.
 */
export function isInActionRange(version: string, range: string | undefined): boolean {
  return range === undefined || satisfies(version, range, { includePrerelease: true });
}

/**
 * Of `statements` (deprecates and undeprecates of one plugin that stood, in log order, which is the order a
 * batch applies them), the one that says what a version's deprecation is: the newest that named it while it
 * was listed and not removed (`listed`, `removed`: the seqs of its publish and removal entries; -1 and
 * Infinity where those predate the statements), else, for a version published among them, the whole-plugin
 * one in force then (`mergePluginDocument` gives a version published later the plugin's deprecation; a ranged
 * one leaves that as it was). Undefined when none says. `verify --url` holds documents to this replay of the
 * log (client/log-consistency.ts), and the retry of a run that died puts an overtaken deprecation back under
 * the newer ones by it (`withOvertakenRestored`): one rule for both.
 */
export function deprecationStatementOf(
  version: string,
  listed: number,
  removed: number,
  statements: readonly LogEntry[],
): LogEntry | undefined {
  for (let i = statements.length - 1; i >= 0; i -= 1) {
    const statement = statements[i] as LogEntry;
    const range = statement.detail?.range;
    if (statement.seq < listed) {
      // Older than the version: only the newest whole-plugin one says what it was published under.
      if (range === undefined) return statement;
      continue;
    }
    if (statement.seq < removed && isInActionRange(version, range)) return statement;
  }
  return undefined;
}

/**
 * `doc` as if an action a run that died logged, and whose retry found it overtaken (a newer action applied
 * to a related slot while its upload waited), had been applied where the log has it, under the newer ones:
 * `entries` are the plugin's log entries from that action's on, in log order, it first. A transfer overtaken
 * by one owner's add or removal: its owner, then each owner statement after it. A deprecation overtaken by a
 * ranged one (or a ranged one by another): every version's deprecation replayed from it on
 * (`deprecationStatementOf`), and the plugin's own by the last whole-plugin one. Other actions are overtaken
 * only within their own slot, whose newest statement the document already shows: `doc` as it is. `listed`
 * (`listedWhenLogged`, of the first) tells a version published in this batch, not yet logged, from one
 * logged before them all.
 * Left undone, the log held the action before the newer one and no document showed it, which `verify --url`
 * reports; the dead run's documents, had they been published, showed both.
 */
export function withOvertakenRestored(
  doc: PluginDocument,
  entries: readonly LogEntry[],
  listed?: ReadonlySet<string>,
): PluginDocument {
  const first = entries[0];
  if (first?.type === 'transfer') {
    const owner = first.detail?.owner;
    if (owner === undefined) return doc;
    let owners = [owner];
    for (const entry of entries.slice(1)) {
      const { added, removed, owner: to } = entry.detail ?? {};
      if (entry.type === 'transfer' && to !== undefined) owners = [to];
      else if (entry.type === 'owners-add' && added !== undefined && !owners.includes(added))
        owners = [...owners, added];
      else if (entry.type === 'owners-remove' && removed !== undefined)
        owners = owners.filter((fp) => fp !== removed);
    }
    return recomputed({ ...doc, owners });
  }
  if (first?.type !== 'deprecate' && first?.type !== 'undeprecate') return doc;
  const statements = entries.filter((e) => e.type === 'deprecate' || e.type === 'undeprecate');
  const listedAt = new Map<string, number>();
  const removedAt = new Map<string, number>();
  for (const entry of entries) {
    if (entry.version === undefined) continue;
    if (entry.type === 'publish') listedAt.set(versionIdentity(entry.version), entry.seq);
    if (entry.type === 'remove') removedAt.set(versionIdentity(entry.version), entry.seq);
  }
  const versions = doc.versions.map((v) => {
    const identity = versionIdentity(v.version);
    const removal = removedAt.get(identity);
    // Removed before the overtaken action: none of the statements named it.
    if (v.removed && removal === undefined) return v;
    // A version whose publish is not among `entries` was listed before them all (-1), unless `listed` (those
    // listed when the first was logged) leaves it out: published in this batch, after every statement.
    const unlogged = listed === undefined || listed.has(identity) ? -1 : Number.POSITIVE_INFINITY;
    const statement = deprecationStatementOf(
      v.version,
      listedAt.get(identity) ?? unlogged,
      removal ?? Number.POSITIVE_INFINITY,
      statements,
    );
    const message = statement?.detail?.message;
    if (statement?.type === 'deprecate' && message !== undefined)
      return deprecatedRecord(v, message, statement.detail?.replacement);
    if (statement?.type === 'undeprecate')
      return changed(v, {
        deprecated: false,
        deprecation_message: undefined,
        deprecation_replacement: undefined,
      });
    return v;
  });
  const whole = statements.findLast((e) => e.detail?.range === undefined);
  const { deprecation: _before, ...rest } = doc;
  if (!whole) return recomputed({ ...doc, versions });
  const message = whole.detail?.message;
  if (whole.type === 'undeprecate' || message === undefined)
    return recomputed({ ...rest, versions } as PluginDocument);
  const replacement = whole.detail?.replacement;
  const deprecation = { message, ...(replacement !== undefined ? { replacement } : {}), at: whole.time };
  return recomputed({ ...rest, deprecation, versions } as PluginDocument);
}

/**
 * The versions a range names (`isInActionRange`), removed ones aside; of a logged ranged action, only those
 * listed when it was logged (`listed`). Without a range, every version: the whole plugin's statement is also
 * the one a version published later takes (`deprecationStatementOf`).
 */
function matching(doc: PluginDocument, range: string | undefined, listed?: ReadonlySet<string>): Set<string> {
  const named = (v: VersionRecord) =>
    range === undefined || listed === undefined || listed.has(versionIdentity(v.version));
  return new Set(
    doc.versions
      .filter((v) => !v.removed && isInActionRange(v.version, range) && named(v))
      .map((v) => v.version),
  );
}

/**
 * The versions (`versionIdentity`) of `doc` listed when the logged action at `seq` was appended, by the log's
 * order: those whose publish is logged before it (`entries`: the plugin's entries read back from before it),
 * and those the published document (`published`, as before this batch) lists whose publish is not among
 * `entries`, logged earlier still. Not one this batch is publishing (logged after it, once it is) nor one
 * another run published since. Logs written before this rule need nothing new: the order is the log's.
 */
export function listedWhenLogged(
  doc: PluginDocument,
  published: PluginDocument | undefined,
  seq: number,
  entries: readonly LogEntry[],
): Set<string> {
  const publishedAt = new Map<string, number>();
  for (const entry of entries)
    if (entry.type === 'publish' && entry.plugin === doc.name && entry.version !== undefined)
      publishedAt.set(versionIdentity(entry.version), entry.seq);
  const before = new Set(published?.versions.map((v) => versionIdentity(v.version)));
  const listed = new Set<string>();
  for (const v of doc.versions) {
    const identity = versionIdentity(v.version);
    const at = publishedAt.get(identity);
    if (at === undefined ? before.has(identity) : at < seq) listed.add(identity);
  }
  return listed;
}

function rangeMatchesNothing(doc: PluginDocument, range: string): Problem {
  return problem('ACTION_UNKNOWN_VERSION', '/range', `no version of ${doc.name} is in ${range}`, {
    expected: `a range matching one of ${doc.versions.map((v) => v.version).join(', ') || '(no versions)'}`,
    found: range,
  });
}

/** Why `key` cannot be an owner (the registry's key, a revoked key), or undefined. */
function ownerKeyProblem(key: NamedKey | undefined, options: LifecycleOptions): Problem | undefined {
  if (!key) return problem('ACTION_MALFORMED', '/key', 'the key the action names could not be read');
  if (key.fingerprints.some((fp) => options.registryFingerprints.includes(fp)))
    return problem('PUBLISHER_IS_REGISTRY_KEY', '/key', "the registry's signing key can never own a plugin");
  if (options.isRevoked?.(key.fingerprint))
    return problem(
      'ACTION_KEY_REVOKED',
      '/key',
      `key ${key.fingerprint} was revoked; it cannot own a plugin`,
    );
  return undefined;
}

/**
 * Applies one action to a plugin document. The document returned has `latest_version` and `channels`
 * recomputed; the problems name the action's pointer.
 * @example const result = applyAction(doc, { action: 'yank', plugin: 'x', version: '1.0.0' }, { at, registryFingerprints });
 */
export function applyAction(
  doc: PluginDocument,
  action: PluginAction,
  options: LifecycleOptions,
): LifecycleResult {
  const at = options.at;
  switch (action.action) {
    case 'yank':
    case 'unyank':
    case 'remove': {
      const record = findVersion(doc, action.version);
      if (!record) return refused(unknownVersion(doc, action.version));
      let next: VersionRecord;
      if (action.action === 'yank') {
        // Removed is yanked too, but saying so would hide why: the operator removed it.
        if (record.removed) return refused(removedVersion(doc, record));
        if (record.yanked) return noEffect('/version', `${doc.name}@${record.version} is already yanked`);
        next = changed(record, { yanked: true, yanked_reason: action.reason });
      } else if (action.action === 'unyank') {
        if (record.removed) return refused(removedVersion(doc, record));
        if (!record.yanked) return noEffect('/version', `${doc.name}@${record.version} is not yanked`);
        next = changed(record, { yanked: false, yanked_reason: undefined });
      } else {
        if (record.removed) return noEffect('/version', `${doc.name}@${record.version} is already removed`);
        // Yanked as well, for clients that read only that flag: never chosen, never latest.
        next = changed(record, { yanked: true, removed: { reason: action.reason, at } });
      }
      return done({ ...doc, versions: doc.versions.map((v) => (v === record ? next : v)) });
    }
    case 'deprecate': {
      const targets = matching(doc, action.range, options.listed);
      if (action.range !== undefined && targets.size === 0)
        return refused(rangeMatchesNothing(doc, action.range));
      const same = (v: VersionRecord) =>
        v.deprecated &&
        v.deprecation_message === action.message &&
        v.deprecation_replacement === action.replacement;
      const versions = doc.versions.map((v) =>
        targets.has(v.version) && !same(v) ? deprecatedRecord(v, action.message, action.replacement) : v,
      );
      const whole = action.range === undefined;
      const plugin = doc.deprecation;
      const pluginSame =
        !whole || (plugin?.message === action.message && plugin?.replacement === action.replacement);
      if (pluginSame && versions.every((v, i) => v === doc.versions[i]))
        return noEffect(
          whole ? '' : '/range',
          `${doc.name}${whole ? '' : ` ${action.range}`} is already deprecated with this message`,
        );
      // Without a range, the plugin itself: versions published later are deprecated too (mergePluginDocument).
      const deprecation = whole
        ? {
            message: action.message,
            ...(action.replacement !== undefined ? { replacement: action.replacement } : {}),
            at,
          }
        : doc.deprecation;
      return done({ ...doc, ...(deprecation ? { deprecation } : {}), versions });
    }
    case 'undeprecate': {
      const targets = matching(doc, action.range, options.listed);
      if (action.range !== undefined && targets.size === 0)
        return refused(rangeMatchesNothing(doc, action.range));
      const versions = doc.versions.map((v) =>
        targets.has(v.version) && v.deprecated
          ? changed(v, {
              deprecated: false,
              deprecation_message: undefined,
              deprecation_replacement: undefined,
            })
          : v,
      );
      const whole = action.range === undefined;
      if ((!whole || !doc.deprecation) && versions.every((v, i) => v === doc.versions[i]))
        return noEffect(whole ? '' : '/range', `nothing of ${doc.name} is deprecated there`);
      const { deprecation: _gone, ...rest } = doc;
      return done({ ...(whole ? rest : doc), versions } as PluginDocument);
    }
    case 'advisory-add': {
      const advisories = doc.advisories ?? [];
      const existing = advisories.find((a) => a.id === action.advisory.id);
      if (existing && !existing.withdrawn)
        return refused(
          problem('ADVISORY_EXISTS', '/advisory/id', `${doc.name} already has advisory ${existing.id}`, {
            expected: 'a new advisory id (withdraw the published one first to replace it)',
            found: existing.id,
          }),
        );
      if (!existing && !options.logged && advisories.length >= MAX_ADVISORIES)
        return refused(
          problem(
            'ADVISORY_LIMIT',
            '/advisory',
            `${doc.name} has ${advisories.length} advisories, the most a plugin may have`,
            {
              expected: `at most ${MAX_ADVISORIES} advisories a plugin, withdrawn ones included (publish one again by its id to replace it)`,
            },
          ),
        );
      const { id, severity, affected, fixed, summary, url } = action.advisory;
      const advisory: Advisory = {
        id,
        severity,
        affected,
        ...(fixed !== undefined ? { fixed } : {}),
        summary,
        ...(url !== undefined ? { url } : {}),
        published: at,
      };
      // Ids stay unique: a withdrawn advisory published again takes its place (the log keeps both).
      const next = existing
        ? advisories.map((a) => (a === existing ? advisory : a))
        : [...advisories, advisory];
      return done({ ...doc, advisories: next });
    }
    case 'advisory-withdraw': {
      const advisories = doc.advisories ?? [];
      const existing = advisories.find((a) => a.id === action.id);
      if (!existing)
        return refused(
          problem('ADVISORY_UNKNOWN', '/id', `${doc.name} has no advisory ${action.id}`, {
            expected: `one of ${advisories.map((a) => a.id).join(', ') || '(no advisories)'}`,
            found: action.id,
          }),
        );
      if (existing.withdrawn) return noEffect('/id', `advisory ${action.id} is already withdrawn`);
      const withdrawn = { at, ...(action.reason !== undefined ? { reason: action.reason } : {}) };
      return done({
        ...doc,
        advisories: advisories.map((a) => (a === existing ? { ...a, withdrawn } : a)),
      });
    }
    case 'owners-add': {
      const bad = ownerKeyProblem(options.key, options);
      if (bad || !options.key) return refused(bad as Problem);
      const fingerprint = options.key.fingerprint;
      if (doc.owners.includes(fingerprint))
        return noEffect('/key', `${fingerprint} already owns ${doc.name}`);
      return done({ ...doc, owners: [...doc.owners, fingerprint] });
    }
    case 'owners-remove': {
      if (!doc.owners.includes(action.fingerprint))
        return noEffect('/fingerprint', `${action.fingerprint} does not own ${doc.name}`);
      if (doc.owners.length === 1)
        return refused(
          problem(
            'ACTION_LAST_OWNER',
            '/fingerprint',
            `${action.fingerprint} is the last owner of ${doc.name}`,
            {
              expected: 'another owner added first (plugindex owners add), or a transfer by the operator',
            },
          ),
        );
      return done({ ...doc, owners: doc.owners.filter((fp) => fp !== action.fingerprint) });
    }
    case 'transfer': {
      const bad = ownerKeyProblem(options.key, options);
      if (bad || !options.key) return refused(bad as Problem);
      const fingerprint = options.key.fingerprint;
      if (doc.owners.length === 1 && doc.owners[0] === fingerprint)
        return noEffect('/key', `${fingerprint} already is the only owner of ${doc.name}`);
      return done({ ...doc, owners: [fingerprint] });
    }
  }
}

/**
 * The order of signed statements. Each action on a plugin sets one piece of its state (a slot): a version's
 * yank (`yank/<version>`), the plugin's deprecation (`deprecation`, whatever the range: ranges overlap, and
 * the whole plugin's covers versions published later), an advisory (`advisory/<id>`), one owner
 * (`owners/<fingerprint>`) or all of them (`owners`, a transfer). The newest statement about a slot stands:
 * an action made (its signed `created`) before one already applied to the same slot, or to a slot within it
 * or around it (`owners` and `owners/<fp>`), is refused, ACTION_SUPERSEDED; one made at the same time is
 * not older, and applies in upload order, as the log then records them. The operator's `remove` and
 * `revoke-key` set no slot: nothing undoes them, so no later statement can be overtaken by them.
 */
export type ActionSlot = string;

/** The newest action applied to a slot: when its signer made it, and its digest (its identity). */
export interface SlotRecord {
  readonly created: string;
  readonly digest: string;
}

/** A plugin's slots, each with the newest action applied to it. */
export type ActionOrder = Readonly<Record<ActionSlot, SlotRecord>>;

/** `state/action-order/<name>.json` in the intake store: a plugin's `ActionOrder` across batches. */
export interface ActionOrderDocument {
  readonly schema: 'plugindex/action-order/v1';
  readonly plugin: string;
  readonly slots: ActionOrder;
}

/**
 * How each slot is spelled: one spelling for an action (`actionSlot`) and for its log entry
 * (`loggedActionSlot`), since a rebuild merges the order it restores from the log into the recorded one.
 */
const SLOT = {
  yank: (version: string): ActionSlot => `yank/${versionIdentity(version)}`,
  deprecation: 'deprecation',
  advisory: (id: string): ActionSlot => `advisory/${id}`,
  owner: (fingerprint: string): ActionSlot => `owners/${fingerprint}`,
  owners: 'owners',
} as const;

/** The slot an action on a plugin sets, or undefined (`remove`: final). `key`: the key it names, read. */
export function actionSlot(action: PluginAction, key?: NamedKey): ActionSlot | undefined {
  switch (action.action) {
    case 'yank':
    case 'unyank':
      return SLOT.yank(action.version);
    case 'deprecate':
    case 'undeprecate':
      return SLOT.deprecation;
    case 'advisory-add':
      return SLOT.advisory(action.advisory.id);
    case 'advisory-withdraw':
      return SLOT.advisory(action.id);
    case 'owners-add':
      return key ? SLOT.owner(key.fingerprint) : undefined;
    case 'owners-remove':
      return SLOT.owner(action.fingerprint);
    case 'transfer':
      return SLOT.owners;
    case 'remove':
      return undefined;
  }
}

/**
 * The slot a logged action set, from what its log entry records (the version yanked, the advisory's id, the
 * key added or removed: `actionDetail`), as `actionSlot` gave it from the action itself; undefined for what
 * sets none (a publish, a rotation, `remove`, `revoke-key`) and for an entry that lacks what names its slot.
 * A rebuild restores a plugin's action order from the log with it (pipeline/actions.ts).
 */
export function loggedActionSlot(entry: LogEntry): ActionSlot | undefined {
  const named = (slot: (value: string) => ActionSlot, value: string | undefined) =>
    value === undefined ? undefined : slot(value);
  switch (entry.type) {
    case 'yank':
    case 'unyank':
      return named(SLOT.yank, entry.version);
    case 'deprecate':
    case 'undeprecate':
      return SLOT.deprecation;
    case 'advisory-add':
    case 'advisory-withdraw':
      return named(SLOT.advisory, entry.detail?.id);
    case 'owners-add':
      return named(SLOT.owner, entry.detail?.added);
    case 'owners-remove':
      return named(SLOT.owner, entry.detail?.removed);
    case 'transfer':
      return SLOT.owners;
    default:
      return undefined;
  }
}

/**
 * The action order each plugin's logged actions give (`loggedActionSlot`), the newer per slot standing, each
 * recorded as the batch that took it recorded it (`slotRecord`: made when signed, or when logged if earlier).
 * Entries logged before the log recorded `created` give none.
 */
export function loggedOrders(entries: Iterable<LogEntry>): Map<string, ActionOrder> {
  const orders = new Map<string, ActionOrder>();
  for (const entry of entries) {
    const slot = loggedActionSlot(entry);
    if (!slot || entry.plugin === undefined || entry.created === undefined) continue;
    const record = slotRecord(entry.created, entry.digest, entry.time);
    orders.set(entry.plugin, withSlotRecord(orders.get(entry.plugin) ?? {}, slot, record));
  }
  return orders;
}

/**
 * `logged` (an order taken from the log) with `recorded` (the intake store's) over it, the newer per slot
 * standing and the recorded one on a tie: it is the batches' own, and may know an action refused as changing
 * nothing before such actions were logged.
 */
export function mergedOrder(logged: ActionOrder, recorded: ActionOrder): ActionOrder {
  let order = logged;
  for (const [slot, record] of Object.entries(recorded)) order = withSlotRecord(order, slot, record);
  return order;
}

const FRACTION = /\.(\d{1,9})/;

/**
 * An ISO 8601 time as nanoseconds since the epoch: `created` may carry up to nine fractional digits, which
 * `Date.parse` would cut to milliseconds (two actions a microsecond apart are not made at one time).
 */
export function createdInstant(created: string): bigint {
  const fraction = FRACTION.exec(created)?.[1] ?? '';
  const millis = Date.parse(created.replace(FRACTION, ''));
  return BigInt(millis) * 1_000_000n + BigInt(fraction.padEnd(9, '0'));
}

/** Is one slot the other, or within it (`owners/<fp>` within `owners`)? */
function related(a: ActionSlot, b: ActionSlot): boolean {
  return a === b || a.startsWith(`${b}/`) || b.startsWith(`${a}/`);
}

/** Every action applied to `slot` (or a slot within or around it) made after `created`, in slot order. */
export function supersedingActions(
  order: ActionOrder,
  slot: ActionSlot,
  created: string,
): (SlotRecord & { readonly slot: ActionSlot })[] {
  const instant = createdInstant(created);
  // Slots in one order, so which one a refusal names never depends on how the record was written.
  return Object.keys(order)
    .sort()
    .filter((name) => related(name, slot) && createdInstant((order[name] as SlotRecord).created) > instant)
    .map((name) => ({ slot: name, ...(order[name] as SlotRecord) }));
}

/** The newest action applied to `slot` (or a slot within or around it) made after `created`, if any. */
export function supersedingAction(
  order: ActionOrder,
  slot: ActionSlot,
  created: string,
): (SlotRecord & { readonly slot: ActionSlot }) | undefined {
  let newest: (SlotRecord & { readonly slot: ActionSlot }) | undefined;
  for (const record of supersedingActions(order, slot, created))
    if (!newest || createdInstant(record.created) > createdInstant(newest.created)) newest = record;
  return newest;
}

/** ACTION_SUPERSEDED: why an action older than the one that set its slot is refused. */
export function supersededProblem(
  plugin: string,
  created: string,
  newer: SlotRecord & { readonly slot: ActionSlot },
): Problem {
  return problem(
    'ACTION_SUPERSEDED',
    '/created',
    `${plugin}: an action made later (at ${newer.created}, sha256 ${newer.digest}) already stands for its ${newer.slot} (applied, or found already so); this one, made at ${created}, before it, cannot overrule it`,
    {
      expected: `an action made after ${newer.created} (sign it again if it should still apply)`,
      found: created,
    },
  );
}

/**
 * The record of an action that set its slot, judged by the registry at `judged` (ISO 8601): made at its signed
 * `created`, or at `judged` when that is earlier. An action may be dated up to ACTION_CLOCK_SKEW_MS ahead of
 * the registry's clock (a signer's clock fast, or a co-owner dating one ahead on purpose); recorded as dated,
 * it held off, for that long and renewably, an action another owner made after it (ACTION_SUPERSEDED). No
 * action is taken before the registry receives it, so it was made by then. A newer action, however dated,
 * is then judged against that.
 */
export function slotRecord(created: string, digest: string, judged: string): SlotRecord {
  return { created: createdInstant(judged) < createdInstant(created) ? judged : created, digest };
}

/** `order` with `record` as the newest action of `slot` (kept as it was when that one is newer). */
export function withSlotRecord(order: ActionOrder, slot: ActionSlot, record: SlotRecord): ActionOrder {
  const held = order[slot];
  if (held && createdInstant(held.created) > createdInstant(record.created)) return order;
  return { ...order, [slot]: record };
}

/**
 * `order` without the records made before `before`: an action that old is refused for its age
 * (ACTION_EXPIRED) before its order counts, so they can never supersede one that is taken.
 */
export function prunedOrder(order: ActionOrder, before: Date): ActionOrder {
  const limit = BigInt(before.getTime()) * 1_000_000n;
  return Object.fromEntries(
    Object.entries(order)
      .filter(([, record]) => createdInstant(record.created) >= limit)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  );
}

/**
 * Reads `state/action-order/<name>.json`.
 * @throws Error when it is not such a document: the registry's own state, the operator's to mend.
 */
export function parseActionOrder(text: string, plugin: string): ActionOrder {
  const value = JSON.parse(text) as Partial<ActionOrderDocument> | null;
  const slots = value?.slots as Record<string, Partial<SlotRecord>> | undefined;
  if (
    typeof value !== 'object' ||
    value === null ||
    value.schema !== 'plugindex/action-order/v1' ||
    value.plugin !== plugin ||
    typeof slots !== 'object' ||
    slots === null ||
    !Object.values(slots).every(
      (r) =>
        typeof r?.created === 'string' &&
        !Number.isNaN(Date.parse(r.created)) &&
        typeof r.digest === 'string',
    )
  )
    throw new Error(`the action order of ${plugin} is not a plugindex/action-order/v1 document`);
  return slots as ActionOrder;
}

/**
 * Marks every version of `doc` that `fingerprint` published and that is not marked yet: the document with
 * the marks, or undefined when there is none to mark.
 */
export function revokeInDocument(
  doc: PluginDocument,
  fingerprint: string,
  revocation: { readonly at: string; readonly reason?: string },
): PluginDocument | undefined {
  let marked = false;
  const versions = doc.versions.map((v) => {
    if (v.publisher !== fingerprint || v.publisher_revoked) return v;
    marked = true;
    return changed(v, {
      publisher_revoked: {
        at: revocation.at,
        ...(revocation.reason !== undefined ? { reason: revocation.reason } : {}),
      },
    });
  });
  return marked ? recomputed({ ...doc, versions }) : undefined;
}

export const EMPTY_REVOKED_KEYS: RevokedKeysDocument = { schema: 'plugindex/revoked-keys/v1', keys: [] };

/** The revocation of `fingerprint` in the list, or undefined. */
export function revocationOf(
  list: RevokedKeysDocument,
  fingerprint: string,
): RevokedKeysDocument['keys'][number] | undefined {
  return list.keys.find((k) => k.fingerprint === fingerprint);
}

/**
 * The list with one more revoked key, or the problems: the registry's own key is never revoked this way
 * (that is a key rotation), and a key revoked already is no effect.
 */
export function withRevokedKey(
  list: RevokedKeysDocument,
  entry: RevokedKeysDocument['keys'][number],
  registryFingerprints: readonly string[],
):
  | { readonly ok: true; readonly list: RevokedKeysDocument }
  | { readonly ok: false; readonly problems: readonly Problem[] } {
  if (registryFingerprints.includes(entry.fingerprint))
    return {
      ok: false,
      problems: [
        problem(
          'PUBLISHER_IS_REGISTRY_KEY',
          '/fingerprint',
          "the registry's own key is not revoked by an action",
          {
            expected: 'a publisher key (the registry key changes by plugindex rotate-key)',
          },
        ),
      ],
    };
  if (revocationOf(list, entry.fingerprint))
    return {
      ok: false,
      problems: [
        problem('ACTION_NO_EFFECT', '/fingerprint', `key ${entry.fingerprint} is already revoked`, {
          expected: 'an action that changes something',
        }),
      ],
    };
  return { ok: true, list: { ...list, keys: [...list.keys, entry] } };
}

/**
 * Reads `keys/revoked.json` as published.
 * @throws Error when it is not such a document: the registry's own file, the operator's to mend.
 */
export function parseRevokedKeys(text: string): RevokedKeysDocument {
  const value = JSON.parse(text) as Partial<RevokedKeysDocument> | null;
  if (
    typeof value !== 'object' ||
    value === null ||
    value.schema !== 'plugindex/revoked-keys/v1' ||
    !Array.isArray(value.keys) ||
    !value.keys.every((k) => typeof k?.fingerprint === 'string')
  )
    throw new Error('keys/revoked.json is not a plugindex/revoked-keys/v1 document');
  return value as RevokedKeysDocument;
}

/** A few words of what an action did, for its log entry (`plugindex audit`). */
export function actionDetail(action: ActionBody, key?: NamedKey): Record<string, string> {
  const detail: Record<string, string | undefined> = {};
  switch (action.action) {
    case 'yank':
      detail.reason = action.reason;
      break;
    case 'deprecate':
      detail.message = action.message;
      detail.replacement = action.replacement;
      detail.range = action.range;
      break;
    case 'undeprecate':
      detail.range = action.range;
      break;
    case 'advisory-add':
      detail.id = action.advisory.id;
      detail.severity = action.advisory.severity;
      detail.affected = action.advisory.affected;
      break;
    case 'advisory-withdraw':
      detail.id = action.id;
      detail.reason = action.reason;
      break;
    case 'owners-add':
      detail.added = key?.fingerprint;
      break;
    case 'owners-remove':
      detail.removed = action.fingerprint;
      break;
    case 'remove':
      detail.reason = action.reason;
      break;
    case 'transfer':
      detail.owner = key?.fingerprint;
      detail.reason = action.reason;
      break;
    case 'revoke-key':
      detail.fingerprint = action.fingerprint;
      detail.reason = action.reason;
      break;
    case 'unyank':
      break;
  }
  return Object.fromEntries(Object.entries(detail).filter(([, v]) => v !== undefined)) as Record<
    string,
    string
  >;
}
