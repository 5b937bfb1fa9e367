/**
 * Whether the log holds a publish past the head the published snapshot counts that no plugin document shows:
 * a logged publish whose document the store refused (LOGGED_PUBLISH_FAILED), waiting for a batch to publish it
 * once its path is mended, or (`voidRefusedEntries`) to void it. A snapshot signed over such an entry vouches
 * for a publish no document shows (`verify --url`: LOG_DISAGREES), and every client that reads it refuses the
 * void that would settle it (LOG_VOID_OF_SEEN). A logged action (a yank, an owner's change, a revocation) no
 * document shows is stuck likewise: counted, the snapshot vouches for it. `plugindex rebuild` and `rotate-key`
 * refuse instead, before they change anything (`refuseStuckPublishes`: LOGGED_PUBLISH_STUCK, or
 * LOGGED_ACTION_STUCK, an action judged by its plugin's fold, log-fold.ts). `plugindex refresh` and the flush of the index documents
 * (the local watcher's, the deployment's) cannot: refused, the snapshot expires and clients refuse the whole
 * registry. They sign it counting the head the published one counts instead, and say which entry is stuck
 * (`LeaveStuck`, commit.ts `writeSnapshot`), a logged action no document they bind shows included.
 */
import type { Key } from 'openpgp';
import { sha256Hex } from '../digest.ts';
import { PlugindexError } from '../errors.ts';
import { binKey, binOf, pluginDocumentKey, REVOKED_KEYS_KEY, SNAPSHOT_KEY } from '../layout.ts';
import { mapLimited } from '../limited.ts';
import { type LogEntry, logSegmentKey, NO_EFFECT, parseSegment, type ReadEntry, segmentOf } from '../log.ts';
import { compareDocument, foldLog, type LogDisagreement } from '../log-fold.ts';
import type {
  BinDocument,
  DocumentDigest,
  LogHead,
  PluginDocument,
  RevokedKeysDocument,
  SnapshotDocument,
} from '../model.ts';
import type { PipelineContext } from './context.ts';
import { currentLogHead, pendingIntents, readLogHead } from './log-writer.ts';
import { readJson } from './site-writer.ts';

/**
 * A standing publish past the head counted that no plugin document shows, or (held to what a snapshot binds)
 * an action that no document it binds can show (`findStuckEntry`).
 */
export interface StuckEntry {
  readonly seq: number;
  /** `publish`, or the action's kind. */
  readonly type: LogEntry['type'];
  /** The plugin, and the version, it names (a `revoke-key` names neither). */
  readonly plugin?: string;
  readonly version?: string;
  /** The document that does not show it: its plugin document's key, or `keys/revoked.json`. */
  readonly key: string;
  /**
   * What that document is: missing or unreadable, without the version, not the one the snapshot binds, or
   * (an action) bound as published before the entry was logged.
   */
  readonly document: 'missing' | 'without' | 'unbound' | 'before' | 'unshown';
  /**
   * An action the document served does not show (`unshown`): how it disagrees with the log's fold
   * (log-fold.ts `compareDocument`'s code and words, as `verify --url` would report it).
   */
  readonly disagreement?: string;
  /** The submission whose intent record names the entry, when one still does. */
  readonly submission?: string;
}

/** A stuck entry a snapshot was signed without counting (`LeaveStuck`): what the operator is told. */
export interface StuckEntryNotice extends StuckEntry {
  /**
   * The code the operator is told it under (the refresh's warning, the flush's, the function's error line):
   * a rebuild's refusal of the same entry's (`stuckCode`), so a stuck yank is not told as a stuck publish.
   */
  readonly code: StuckCode;
  /** The head the snapshot counts, and the log's. */
  readonly counted: number;
  readonly logged: number;
  readonly message: string;
  /**
   * The refresh's or flush's upgrade of a catalog of another format waits on this entry (index.ts
   * `upgradeWaiting`): it runs once a batch settles it, so the operator knows the upgrade is held too.
   */
  readonly upgradeHeld?: true;
}

/**
 * How `plugindex refresh` and the flush of the index documents sign a snapshot over a stuck entry
 * (commit.ts `writeSnapshot`): counting the head the published snapshot counts, not the log's, `told` the
 * entry. `by` names the command in what the operator is told (`plugindex refresh`).
 */
export interface LeaveStuck {
  readonly by: string;
  readonly told: (stuck: StuckEntryNotice) => void;
  /**
   * The bins the snapshot binds are rendered anew from the documents served (the catalog upgrade's rebuild a
   * refresh or a flush runs, `rebuiltIfOutdated`, or a batch, index.ts `currentCatalog`), not signed as
   * published: a document there may show an action past the head, so an action is judged as a rebuild's own
   * check judges it (`shown`), by the fold.
   */
  readonly rebuilt?: boolean;
  /** The catalog upgrade this refresh or flush was to run waits on the entry (`StuckEntryNotice.upgradeHeld`). */
  readonly upgradeHeld?: boolean;
}

/**
 * How actions past the head are looked for (`findStuckEntry`): `before`, every one is stuck (the documents
 * the snapshot binds were published before it was logged); `shown`, one the served document does not show,
 * judged by the fold of its plugin's whole trail of statements (log-fold.ts); `none`, not looked for.
 */
export type ActionsJudged = 'before' | 'shown' | 'none';

/**
 * The first standing publish among the entries from what the published snapshot counts (`counted`) to `head`
 * that no plugin document shows, or undefined. Costs nothing more than the comparison when the snapshot counts
 * the head (always, but after a batch that failed or died past its log); else the tail's segments (one, but
 * at a segment's end) and one document per plugin published in it. A publish a later entry of the tail voids
 * is not looked for. A `remove` is no reason to pass one over: it takes out one version, whose record its
 * document keeps (`removed`), never the plugin.
 * `binding`: the documents the snapshot to be signed lists. A document then shows a publish only when it is
 * the one they bind (through its bin): a refresh or a flush signs the bins as published, and a batch that
 * failed may have written a document showing the publish (the store refused its page, say) that no bin binds.
 * Actions (a yank, an owner's removal, a revocation...: any but one the log says changed nothing, `effect:
 * none`), as `actions` says (`ActionsJudged`). Held to the bins as published (a refresh's, a flush's:
 * `before`, the default with `binding`), every one is stuck: those bins and `keys/revoked.json` were written by
 * a commit with a snapshot counting every entry logged before it, so they were rendered before an entry past
 * that head and cannot show it (a batch that failed or died after logging it). Held to the documents served
 * (a rebuild's, a rotation's, whether a refresh's or a flush's upgrade waits (index.ts `upgradeWaiting`), the
 * default without `binding`; and an upgrade's rebuild, whose bins are rendered anew from them: `shown`),
 * whether a document shows one takes the plugin's whole trail of statements (a yank an older unyank stands
 * against, a deprecation's range...): the whole log is read, only then, and the
 * plugin's document held to its fold (log-fold.ts `compareDocument`, `verify --url`'s own rule); the action
 * is stuck where that names its entry, or the document is missing. A revocation is stuck unless
 * `keys/revoked.json` lists the key it revokes.
 */
export async function findStuckEntry(
  ctx: PipelineContext,
  counted: number,
  head: LogHead,
  binding?: Readonly<Record<string, DocumentDigest>>,
  actions: ActionsJudged = binding !== undefined ? 'before' : 'shown',
): Promise<StuckEntry | undefined> {
  if (head.length <= counted) return undefined;
  const tail: LogEntry[] = [];
  for (let index = segmentOf(counted); index <= segmentOf(head.length - 1); index++) {
    const segment = await ctx.site.get(logSegmentKey(index));
    // A segment gone or unreadable is the log's check to refuse (the rebuild's `currentLogHead`, a batch's).
    if (!segment) continue;
    for (const { entry } of parseSegment(segment.body, index))
      if (entry.seq >= counted && entry.seq < head.length) tail.push(entry);
  }
  const passed = new Set<number>();
  for (const entry of tail) if (entry.type === 'void') passed.add(Number(entry.detail?.entry));
  const documents = new Map<string, Promise<ShownBy>>();
  const shownOf = (plugin: string): Promise<ShownBy> => {
    const key = pluginDocumentKey(plugin);
    let read = documents.get(key);
    if (!read) {
      read = shownBy(ctx, plugin, binding);
      documents.set(key, read);
    }
    return read;
  };
  const standingActions = tail.filter((entry) => !passed.has(entry.seq) && isDocumentAction(entry));
  const unshown =
    actions === 'shown' && standingActions.length > 0
      ? await actionsUnshown(ctx, head, standingActions, shownOf)
      : new Map<number, Unshown>();
  const stuckAs = async (
    entry: LogEntry,
    key: string,
    document: StuckEntry['document'],
    disagreement?: string,
  ): Promise<StuckEntry> => {
    const { seq, plugin, version } = entry;
    const submission = (await pendingIntents(ctx.intake)).get(`${seq} ${entry.digest}`);
    return {
      seq,
      type: entry.type,
      ...(plugin !== undefined ? { plugin } : {}),
      ...(version !== undefined ? { version } : {}),
      key,
      document,
      ...(disagreement !== undefined ? { disagreement } : {}),
      ...(submission ? { submission } : {}),
    };
  };
  for (const entry of tail) {
    const { seq, plugin, version } = entry;
    if (passed.has(seq)) continue;
    if (isDocumentAction(entry)) {
      const key =
        entry.type === 'revoke-key' || plugin === undefined ? REVOKED_KEYS_KEY : pluginDocumentKey(plugin);
      if (actions === 'before') return stuckAs(entry, key, 'before');
      const found = unshown.get(seq);
      if (found) return stuckAs(entry, key, found.document, found.disagreement);
      continue;
    }
    if (entry.type !== 'publish' || plugin === undefined || version === undefined) continue;
    const { doc, bound } = await shownOf(plugin);
    if (bound && doc?.versions?.some((v) => v.version === version)) continue;
    return stuckAs(entry, pluginDocumentKey(plugin), !doc ? 'missing' : bound ? 'without' : 'unbound');
  }
  return undefined;
}

/** How a served document fails to show an action (`actionsUnshown`). */
interface Unshown {
  readonly document: 'missing' | 'unbound' | 'unshown';
  readonly disagreement?: string;
}

/**
 * The actions of `standing` (past the head counted, not voided) that the documents served do not show, by seq.
 * Read only when the tail holds one: the whole log to `head` (its segments side by side), of the entries it
 * holds only those of the plugins these actions name, the revocations and its first entry (when the log
 * began) kept, so memory is the few plugins' trails. Each plugin's document is then held to the fold
 * (log-fold.ts `compareDocument`), and an action stuck where a disagreement names its entry: what `verify
 * --url` would refuse the snapshot for, were it counted; or, a disagreement naming none of them that the fold
 * without the standing actions does not find, the one whose inclusion brings it (`bringerOf`: a fold per
 * standing action of that plugin alone), else the plugin's first. An action a later one overtook (an older
 * unyank logged after a newer yank) is not named, as the document rightly shows the newer.
 */
async function actionsUnshown(
  ctx: PipelineContext,
  head: LogHead,
  standing: readonly LogEntry[],
  shownOf: (plugin: string) => Promise<ShownBy>,
): Promise<Map<number, Unshown>> {
  const unshown = new Map<number, Unshown>();
  const plugins = new Set<string>();
  const revocations: LogEntry[] = [];
  for (const entry of standing)
    if (entry.type === 'revoke-key') revocations.push(entry);
    else if (entry.plugin !== undefined) plugins.add(entry.plugin);
  if (revocations.length > 0) {
    const revoked = await readJson<RevokedKeysDocument>(ctx.site, REVOKED_KEYS_KEY).catch(() => undefined);
    const listed = new Set((revoked?.keys ?? []).map((k) => k.fingerprint));
    for (const entry of revocations) {
      const fingerprint = entry.detail?.fingerprint;
      if (fingerprint === undefined || !listed.has(fingerprint))
        unshown.set(entry.seq, { document: revoked ? 'unshown' : 'missing' });
    }
  }
  if (plugins.size === 0) return unshown;
  const segments = [...Array(segmentOf(head.length - 1) + 1).keys()];
  const read = await mapLimited(segments, SEGMENT_READS, async (index) => {
    const segment = await ctx.site.get(logSegmentKey(index));
    if (!segment) return [];
    return parseSegment(segment.body, index).filter(
      ({ entry }) =>
        entry.seq < head.length &&
        (entry.seq === 0 ||
          entry.type === 'void' ||
          entry.type === 'revoke-key' ||
          (entry.plugin !== undefined && plugins.has(entry.plugin))),
    );
  });
  const entries = read.flat();
  const voided = new Map<number, true>();
  for (const { entry } of entries) if (entry.type === 'void') voided.set(Number(entry.detail?.entry), true);
  const fold = foldLog(entries, voided);
  // The fold as the published snapshot has it, the standing actions passed over (as a void's entry is): a
  // disagreement that names no entry (an owner no entry since a transfer made one, where the transfer to an
  // owner already listed is not shown) is theirs when only counting them brings it.
  const without = new Map<number, true>(voided);
  for (const entry of standing) without.set(entry.seq, true);
  const counted = foldLog(entries, without);
  for (const plugin of plugins) {
    const ofPlugin = standing.filter((entry) => entry.plugin === plugin && entry.type !== 'revoke-key');
    const { doc, bound } = await shownOf(plugin);
    if (!doc || !bound) {
      for (const entry of ofPlugin) unshown.set(entry.seq, { document: doc ? 'unbound' : 'missing' });
      continue;
    }
    const disagreements = new Map<number, LogDisagreement>();
    const found = compareDocument(fold, doc);
    for (const one of found)
      if (one.seq !== undefined && !disagreements.has(one.seq)) disagreements.set(one.seq, one);
    for (const entry of ofPlugin) {
      const one = disagreements.get(entry.seq);
      if (one) unshown.set(entry.seq, { document: 'unshown', disagreement: `${one.code}: ${one.message}` });
    }
    const first = ofPlugin[0];
    if (first === undefined || ofPlugin.some((entry) => unshown.has(entry.seq))) continue;
    const before = compareDocument(counted, doc).map(disagreementKey);
    const brought = new Set(found.map(disagreementKey).filter((key) => !before.includes(key)));
    if (brought.size === 0) continue;
    const [culprit, one] = bringerOf(entries, without, plugin, ofPlugin, doc, before, brought) ?? [
      first,
      found.find((some) => brought.has(disagreementKey(some))),
    ];
    if (one) unshown.set(culprit.seq, { document: 'unshown', disagreement: `${one.code}: ${one.message}` });
  }
  return unshown;
}

/**
 * Which of a plugin's standing actions (`ofPlugin`, in log order) brings a disagreement naming none of them
 * that the whole fold has and the fold without them (`without`: every standing action passed over, as a void's
 * entry is) lacks (`brought`), and that disagreement: the plugin's fold taken with its standing actions
 * counted one more at a time, the first whose inclusion brings one of `brought` that the fold without it
 * lacks (a yank the document shows, then a transfer to an owner already listed that it does not: the
 * transfer, not the yank). A disagreement an action brings that a later one settles (a yank the document
 * shows unyanked, as a later unyank says) is not one of `brought`, so not blamed. Undefined when none alone
 * brings one (the caller then names the plugin's first). Costs a fold of the plugin's trail (its entries, the
 * revocations and the log's first) per standing action of the plugin: a few, and only for the plugins whose
 * disagreement names no entry.
 */
function bringerOf(
  entries: readonly ReadEntry[],
  without: ReadonlyMap<number, true>,
  plugin: string,
  ofPlugin: readonly LogEntry[],
  doc: PluginDocument,
  before: readonly string[],
  brought: ReadonlySet<string>,
): readonly [LogEntry, LogDisagreement] | undefined {
  const trail = entries.filter(
    ({ entry }) => entry.seq === 0 || entry.type === 'revoke-key' || entry.plugin === plugin,
  );
  const passedOver = new Map(without);
  let lacking = new Set(before);
  for (const entry of ofPlugin) {
    passedOver.delete(entry.seq);
    const found = compareDocument(foldLog(trail, passedOver), doc);
    const one = found.find(
      (some) => !lacking.has(disagreementKey(some)) && brought.has(disagreementKey(some)),
    );
    if (one) return [entry, one];
    lacking = new Set(found.map(disagreementKey));
  }
  return undefined;
}

/** A disagreement as compared between the two folds (`actionsUnshown`). */
const disagreementKey = (found: LogDisagreement): string =>
  `${found.code} ${found.seq ?? ''} ${found.message}`;

/** The log's segments read side by side when the whole log is folded (`actionsUnshown`). */
const SEGMENT_READS = 8;

/**
 * An action entry whose effect is a document (a plugin's, or `keys/revoked.json`): every kind but one the log
 * says changed nothing (`effect: none`). A key rotation's entry is its own snapshot's to count, a void's
 * effect is the entry it voids.
 */
function isDocumentAction(entry: LogEntry): boolean {
  const action = entry.type !== 'publish' && entry.type !== 'rotate-key' && entry.type !== 'void';
  return action && entry.detail?.effect !== NO_EFFECT;
}

/** A plugin's document as published (undefined: missing or unreadable), and whether `binding` binds it. */
interface ShownBy {
  readonly doc: PluginDocument | undefined;
  readonly bound: boolean;
}

async function shownBy(
  ctx: PipelineContext,
  plugin: string,
  binding: Readonly<Record<string, DocumentDigest>> | undefined,
): Promise<ShownBy> {
  const key = pluginDocumentKey(plugin);
  if (!binding) return { doc: await readJson<PluginDocument>(ctx.site, key), bound: true };
  const bin = binKey(binOf(plugin));
  const [read, binRead] = await Promise.all([ctx.site.get(key), ctx.site.get(bin)]);
  const doc = read && parsed<PluginDocument>(read.body);
  // The bin as the snapshot lists it (its digest), and the document as that bin lists it.
  if (!doc || !binRead || sha256Hex(binRead.body) !== binding[bin]?.sha256) return { doc, bound: false };
  const listed = parsed<BinDocument>(binRead.body)?.documents?.[key]?.sha256;
  return { doc, bound: listed !== undefined && listed === sha256Hex(read.body) };
}

function parsed<T>(body: Uint8Array): T | undefined {
  try {
    return JSON.parse(new TextDecoder().decode(body)) as T;
  } catch {
    return undefined;
  }
}

const SHOWN: Record<StuckEntry['document'], string> = {
  missing: 'is missing or unreadable',
  without: 'does not show that version',
  unbound: 'is not the one the snapshot binds',
  before: 'as the snapshot binds it was published before the entry was logged',
  unshown: 'does not show it',
};

/** The entry, what it did and its submission, as the operator is told of a stuck entry. */
const entryOf = ({ seq, type, plugin, version, submission }: StuckEntry): string => {
  const of = plugin === undefined ? '' : ` of ${plugin}${version === undefined ? '' : `@${version}`}`;
  return `log entry ${seq}, the ${type}${of}${submission ? ` (submission ${submission})` : ''}`;
};

/** The code a stuck entry is refused or told under: a publish's, or an action's. */
export type StuckCode = 'LOGGED_PUBLISH_STUCK' | 'LOGGED_ACTION_STUCK';

const stuckCode = (stuck: StuckEntry): StuckCode =>
  stuck.type === 'publish' ? 'LOGGED_PUBLISH_STUCK' : 'LOGGED_ACTION_STUCK';

/** What to do, as the operator is told of a stuck publish. */
const REMEDY =
  "Mend the path the batch's LOGGED_PUBLISH_FAILED names and run the batch (plugindex process), which publishes it at its entry; or, with voidRefusedEntries set in the registry's config, run the batch, which voids it";

/** What to do, as the operator is told of a stuck action (a batch voids only publishes). */
const ACTION_REMEDY =
  "Mend the path the batch's LOGGED_PUBLISH_FAILED names and run the batch (plugindex process), which applies it at its entry";

/** Where the document stands, as the operator is told of a stuck entry. */
const shownAs = (stuck: StuckEntry): string =>
  `${stuck.key} ${SHOWN[stuck.document]}${stuck.disagreement === undefined ? '' : ` (${stuck.disagreement})`}`;

/**
 * Refuses, naming the first, when a standing publish or action among the entries from what the published
 * snapshot counts (`counted`) to `head` is shown by no document served (`findStuckEntry`): a publish
 * LOGGED_PUBLISH_STUCK, an action (a yank, an owner's change, a revocation...) LOGGED_ACTION_STUCK. Counted,
 * the snapshot would vouch for what no document shows (verify --url: LOG_DISAGREES), and a publish could no
 * longer be voided (LOG_VOID_OF_SEEN).
 * @throws PlugindexError LOGGED_PUBLISH_STUCK, LOGGED_ACTION_STUCK
 */
export async function refuseStuckPublishes(
  ctx: PipelineContext,
  counted: number,
  head: LogHead,
  command: 'rebuild' | 'rotate-key',
): Promise<void> {
  const stuck = await findStuckEntry(ctx, counted, head);
  if (!stuck) return;
  const past = `plugindex ${command} refused, nothing changed: ${entryOf(stuck)}, is past the ${counted} entries the published snapshot counts, and ${shownAs(stuck)} (a batch logged it, then failed or died before its document showed it: the store refused it, say)`;
  if (stuckCode(stuck) === 'LOGGED_PUBLISH_STUCK')
    throw new PlugindexError(
      'LOGGED_PUBLISH_STUCK',
      `${past}; a snapshot signed over it would vouch for a publish no document shows (verify --url: LOG_DISAGREES), and no void could be taken of it (LOG_VOID_OF_SEEN). ${REMEDY}; then run ${command} again`,
    );
  throw new PlugindexError(
    'LOGGED_ACTION_STUCK',
    `${past}; a snapshot signed over it would vouch for an action no document shows (verify --url: LOG_DISAGREES). ${ACTION_REMEDY}; then run ${command} again`,
  );
}

/**
 * The head a refresh or a flush signs (`leave`, commit.ts `writeSnapshot`): the log's (`head`), unless a
 * publish or an action past what the published snapshot counts (`counted`) is stuck (`findStuckEntry`, held
 * to the documents `binding` lists); then `counted`, the operator told which entry and what to do. Counted,
 * the snapshot would vouch for what no document shows, and a publish could never be voided; left, the next
 * batch publishes or applies it at its entry (or voids a publish), and the snapshot counts the log again.
 */
export async function headLeavingStuck(
  ctx: PipelineContext,
  counted: LogHead,
  head: LogHead,
  binding: Readonly<Record<string, DocumentDigest>>,
  leave: LeaveStuck,
): Promise<LogHead> {
  const stuck = await findStuckEntry(ctx, counted.length, head, binding, leave.rebuilt ? 'shown' : 'before');
  if (!stuck) return head;
  leave.told({
    ...stuck,
    code: stuckCode(stuck),
    counted: counted.length,
    logged: head.length,
    message: `${leave.by} signed the snapshot counting the ${counted.length} log entries the published one counts, not the ${head.length} logged: ${entryOf(stuck)}, is shown by no document the snapshot binds (${shownAs(stuck)}: a batch logged it, then failed or died before its documents were published, the store refused one, say). Counted, it would vouch for an entry no document shows (verify --url: LOG_DISAGREES)${stuck.type === 'publish' ? ', and no void could be taken of it (LOG_VOID_OF_SEEN)' : ''}. ${stuck.type === 'publish' ? REMEDY : ACTION_REMEDY}${leave.upgradeHeld ? `. Meanwhile the catalog upgrade is on hold until the entry is settled: the catalog (state/catalog) is of another format, and upgraded now it would bind documents a snapshot not counting the entry cannot; the batch that settles it upgrades the catalog first` : ''}`,
    ...(leave.upgradeHeld ? { upgradeHeld: true as const } : {}),
  });
  return counted;
}

/**
 * What the published snapshot counts (`snapshot.json`, as the rebuild reads it) and the log's head as the
 * rebuild takes it (log-writer.ts `currentLogHead`, not recorded here): a key rotation's check, made before it
 * writes anything. The intake store's record alone was read: lost (or put back older) over a stuck entry, the
 * check saw nothing past the head, and the rotation published its document and logged its entry before its
 * rebuild, taking the published log's entries past the signed head, refused. `rotatingFrom`: the key the
 * published snapshot may still be signed by (rotate.ts `keyRotatedFrom`).
 */
export async function refuseStuckRotation(ctx: PipelineContext, rotatingFrom?: Key): Promise<void> {
  const [published, recorded] = await Promise.all([
    readJson<SnapshotDocument>(ctx.site, SNAPSHOT_KEY),
    readLogHead(ctx.intake),
  ]);
  const head = await currentLogHead(ctx, recorded, published, {
    ...(rotatingFrom ? { rotatingFrom } : {}),
    unrecorded: true,
  });
  await refuseStuckPublishes(ctx, published?.log?.length ?? 0, head, 'rotate-key');
}
