/**
 * Whether the log holds a publish past the head the published snapshot counts that no plugin document shows:
 * a logged publish whose document the store refused (LOGGED_PUBLISH_FAILED), waiting for a batch to publish it
 * once its path is mended, or (`voidRefusedEntries`) to void it. A snapshot signed over such an entry vouches
 * for a publish no document shows (`verify --url`: LOG_DISAGREES), and every client that reads it refuses the
 * void that would settle it (LOG_VOID_OF_SEEN). `plugindex rebuild` and `rotate-key` refuse instead, before
 * they change anything (`refuseStuckPublishes`). `plugindex refresh` and the flush of the index documents
 * (the local watcher's, the deployment's) cannot: refused, the snapshot expires and clients refuse the whole
 * registry. They sign it counting the head the published one counts instead, and say which entry is stuck
 * (`LeaveStuck`, commit.ts `writeSnapshot`).
 */
import { sha256Hex } from '../digest.ts';
import { PlugindexError } from '../errors.ts';
import { binKey, binOf, pluginDocumentKey, SNAPSHOT_KEY } from '../layout.ts';
import { type LogEntry, logSegmentKey, parseSegment, segmentOf } from '../log.ts';
import type { BinDocument, DocumentDigest, LogHead, PluginDocument, SnapshotDocument } from '../model.ts';
import type { PipelineContext } from './context.ts';
import { pendingIntents, readLogHead } from './log-writer.ts';
import { readJson } from './site-writer.ts';

/** A standing publish past the head counted that no plugin document shows (`findStuckPublish`). */
export interface StuckPublish {
  readonly seq: number;
  readonly plugin: string;
  readonly version: string;
  /** Its plugin document's key. */
  readonly key: string;
  /** What that document is: missing or unreadable, without the version, or not the one the snapshot binds. */
  readonly document: 'missing' | 'without' | 'unbound';
  /** The submission whose intent record names the entry, when one still does. */
  readonly submission?: string;
}

/** A stuck publish a snapshot was signed without counting (`LeaveStuck`): what the operator is told. */
export interface StuckPublishNotice extends StuckPublish {
  /** The head the snapshot counts, and the log's. */
  readonly counted: number;
  readonly logged: number;
  readonly message: string;
}

/**
 * How `plugindex refresh` and the flush of the index documents sign a snapshot over a stuck publish
 * (commit.ts `writeSnapshot`): counting the head the published snapshot counts, not the log's, `told` the
 * entry. `by` names the command in what the operator is told (`plugindex refresh`).
 */
export interface LeaveStuck {
  readonly by: string;
  readonly told: (stuck: StuckPublishNotice) => void;
}

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
 */
export async function findStuckPublish(
  ctx: PipelineContext,
  counted: number,
  head: LogHead,
  binding?: Readonly<Record<string, DocumentDigest>>,
): Promise<StuckPublish | undefined> {
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
  for (const entry of tail) {
    const { seq, plugin, version } = entry;
    if (entry.type !== 'publish' || plugin === undefined || version === undefined || passed.has(seq))
      continue;
    const key = pluginDocumentKey(plugin);
    let read = documents.get(key);
    if (!read) {
      read = shownBy(ctx, plugin, binding);
      documents.set(key, read);
    }
    const { doc, bound } = await read;
    if (bound && doc?.versions?.some((v) => v.version === version)) continue;
    const submission = (await pendingIntents(ctx.intake)).get(`${seq} ${entry.digest}`);
    return {
      seq,
      plugin,
      version,
      key,
      document: !doc ? 'missing' : bound ? 'without' : 'unbound',
      ...(submission ? { submission } : {}),
    };
  }
  return undefined;
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

const SHOWN: Record<StuckPublish['document'], string> = {
  missing: 'is missing or unreadable',
  without: 'does not show that version',
  unbound: 'is not the one the snapshot binds',
};

/** The entry, the publish and its submission, as the operator is told of a stuck publish. */
const entryOf = ({ seq, plugin, version, submission }: StuckPublish): string =>
  `log entry ${seq}, the publish of ${plugin}@${version}${submission ? ` (submission ${submission})` : ''}`;

/** What to do, as the operator is told of a stuck publish. */
const REMEDY =
  "Mend the path the batch's LOGGED_PUBLISH_FAILED names and run the batch (plugindex process), which publishes it at its entry; or, with voidRefusedEntries set in the registry's config, run the batch, which voids it";

/**
 * Refuses LOGGED_PUBLISH_STUCK, naming the first, when a standing publish among the entries from what the
 * published snapshot counts (`counted`) to `head` is shown by no plugin document (`findStuckPublish`).
 * @throws PlugindexError LOGGED_PUBLISH_STUCK
 */
export async function refuseStuckPublishes(
  ctx: PipelineContext,
  counted: number,
  head: LogHead,
  command: 'rebuild' | 'rotate-key',
): Promise<void> {
  const stuck = await findStuckPublish(ctx, counted, head);
  if (!stuck) return;
  throw new PlugindexError(
    'LOGGED_PUBLISH_STUCK',
    `plugindex ${command} refused, nothing changed: ${entryOf(stuck)}, is past the ${counted} entries the published snapshot counts, and ${stuck.key} ${SHOWN[stuck.document]} (a batch logged it, then failed or died before its document showed it: the store refused it, say); a snapshot signed over it would vouch for a publish no document shows (verify --url: LOG_DISAGREES), and no void could be taken of it (LOG_VOID_OF_SEEN). ${REMEDY}; then run ${command} again`,
  );
}

/**
 * The head a refresh or a flush signs (`leave`, commit.ts `writeSnapshot`): the log's (`head`), unless a
 * publish past what the published snapshot counts (`counted`) is stuck (`findStuckPublish`, held to the
 * documents `binding` lists); then `counted`, the operator told which entry and what to do. Counted, the
 * entry could never be voided; left, the next batch publishes it at its entry or voids it, and the snapshot
 * counts the log again.
 */
export async function headLeavingStuck(
  ctx: PipelineContext,
  counted: LogHead,
  head: LogHead,
  binding: Readonly<Record<string, DocumentDigest>>,
  leave: LeaveStuck,
): Promise<LogHead> {
  const stuck = await findStuckPublish(ctx, counted.length, head, binding);
  if (!stuck) return head;
  leave.told({
    ...stuck,
    counted: counted.length,
    logged: head.length,
    message: `${leave.by} signed the snapshot counting the ${counted.length} log entries the published one counts, not the ${head.length} logged: ${entryOf(stuck)}, is shown by no plugin document the snapshot binds (${stuck.key} ${SHOWN[stuck.document]}: a batch logged it, then failed or died before its document was published, the store refused it, say). Counted, it would vouch for a publish no document shows (verify --url: LOG_DISAGREES), and no void could be taken of it (LOG_VOID_OF_SEEN). ${REMEDY}`,
  });
  return counted;
}

/**
 * What the published snapshot counts (`snapshot.json`, as the rebuild reads it) and the log's head as the
 * intake store records it: a key rotation's check, made before it writes anything.
 */
export async function refuseStuckRotation(ctx: PipelineContext): Promise<void> {
  const [published, head] = await Promise.all([
    readJson<SnapshotDocument>(ctx.site, SNAPSHOT_KEY),
    readLogHead(ctx.intake),
  ]);
  await refuseStuckPublishes(ctx, published?.log?.length ?? 0, head, 'rotate-key');
}
