/**
 * Appending to the transparency log (index-builder/log.ts) during a publish.
 *
 * The segments are the log's truth; `state/log.json` (intake) says how long it is and its head, and the
 * snapshot vouches for a prefix of it (its `log`). The segments are published (the site store), so what a
 * run reads of them (the last segment, which it appends to, and every entry it may take for a dead run's)
 * is checked against that head first (`#chain`): a batch never appends to, or resumes from, a log it cannot
 * vouch for. Entries are appended after a batch's immutable files and
 * before the plugin documents that show their effect, so a crash leaves entries whose submission is not
 * finished: the retry must find them (`logged`) instead of appending them twice.
 *
 * How the retry finds them: by exact lookup, never by a window of recent entries (anything appended in
 * between, another batch or a rotation, would push a dead run's entries out of it). Before its entries are
 * written, an append names them in an intent record, one per flush, `state/log-intents/batch-<seq>.json`
 * (intake, beside the action markers; `<seq>` is the flush's first entry): each upload id (or a rotation's
 * `rotation-<N>`) -> its entry's seq, type, digest and line's hash (`LogIntent.hash`). One record for a
 * batch, not one per submission: a record is written and deleted in every publish, and per submission that
 * was two of its ten or so writes.
 * `open` with the ids of the submissions at hand lists the records (only a dead run leaves one) and reads
 * them, and an entry is logged when the log holds, at that seq (below the recorded length), an entry of
 * that type and digest. Once a submission is finished (`forget`), or its outcome is found recorded (a dead
 * run's, finished by that run), its id leaves its record; a record naming none is deleted, one still naming
 * a submission another batch will finish is written again without the finished ones. The entries the published snapshot does not vouch for are found too (a record lost with its
 * run is then still caught). Write order within a flush: the intent record, the segments, then
 * `state/log.json`; a crash before the last leaves entries past the recorded length, which the next append
 * overwrites (its submission, not yet shown anywhere, is then logged again). A record at the same name as a
 * dead run's names only such entries (its first seq is past the recorded length), so replacing it loses
 * nothing that counts. Records of the earlier shape, one per submission (`<id>.json`), are still read.
 */

import type { Key } from 'openpgp';
import { TrustError } from '../errors.ts';
import {
  INCOMING_PREFIX,
  pluginNameFormProblem,
  SIGNED_SNAPSHOT_KEY,
  SNAPSHOT_KEY,
  signatureKey,
  statusKey,
  submissionIdFromDigest,
} from '../layout.ts';
import { allSettledValues, forEachLimited, mapLimited } from '../limited.ts';
import {
  checkVoids,
  EMPTY_LOG,
  isLogHead,
  LOG_SEGMENT_ENTRIES,
  type LogEntry,
  lineHash,
  logSegmentKey,
  nextEntry,
  parseSegment,
  type ReadEntry,
  renderSegment,
  segmentOf,
  verifyLogRange,
  ZERO_HASH,
} from '../log.ts';
import type { LogHead, SnapshotDocument } from '../model.ts';
import { readPublicKey, verifyDetachedSignature } from '../signing.ts';
import { CACHE_IMMUTABLE, CACHE_MUTABLE, CACHE_PRIVATE, type Store, type StoredObject } from '../store.ts';
import { openSignedSnapshot } from '../verify.ts';
import type { PipelineContext } from './context.ts';
import { readJson, WRITE_CONCURRENCY } from './site-writer.ts';

/** `state/log.json` in the intake store: the log's length and head as last appended. */
export const LOG_STATE_KEY = 'state/log.json';
export const LOG_CONTENT_TYPE = 'application/jsonl';

const LOG_INTENTS_PREFIX = 'state/log-intents/';

/** `state/log-intents/<id>.json`: an intent record of the earlier shape, one submission's. */
export function logIntentKey(id: string): string {
  return `${LOG_INTENTS_PREFIX}${id}.json`;
}

/** `state/log-intents/batch-<seq>.json`: the intent record of a flush whose first entry is `seq`. */
export function logIntentsKey(seq: number): string {
  return `${LOG_INTENTS_PREFIX}batch-${seq}.json`;
}

/** An intent: the entry a submission was given. */
export interface LogIntent {
  readonly seq: number;
  readonly type: LogEntry['type'];
  readonly digest: string;
  /**
   * The hash of the entry's line (`lineHash`: what the next entry's `prev` names), known at `append`, where the
   * line is made, and written with the intent, before the line is published. What `currentLogHead` takes an
   * entry past the signed head by (`publishedPast`): seq, type and digest alone let whoever may write the site
   * bucket replace the entry by one of another plugin, version or detail, taken as logged. Absent from the
   * intents written before it was kept: those are still taken by seq, type and digest.
   */
  readonly hash?: string;
  /**
   * Set by a batch that owed it from the log and found nothing to finish it from (its envelope or files gone):
   * later batches no longer wait for the log for it (`namesOwed`), its upload, met again, still resumed.
   */
  readonly unowed?: true;
  /**
   * Set on a void's intent by the batch that voided a publish whose upload was not at hand (finished from the
   * log), written with the void (`append`), before that upload's outcome is: kept, whatever outcome is recorded,
   * until a batch that meets its upload rejects it by it (`voidFor`).
   */
  readonly awaited?: true;
  /**
   * Set on the void of a first publish (pipeline/index.ts `voidRefusedPlugin`): the other plugins whose
   * documents the voiding batch wrote, or was about to write, listing the voided plugin in `look_alikes`. A run
   * that dies after the void, before writing them again without it, leaves them to any later batch, whatever
   * uploads it takes (`voidedAlike`): the retry alone met them (its upload's), and one of other uploads
   * committed the catalog's older line over the document the dead run wrote (DOCUMENT_MISMATCH).
   */
  readonly alike?: readonly string[];
}

/** An intent record of a flush: submission id -> its intent. */
interface LogIntentsRecord {
  readonly intents: Record<string, LogIntent>;
}

/** The intents a record names, of either shape (`key` says which), or none when it is unreadable. */
function intentsOf(key: string, record: unknown): Map<string, LogIntent> {
  const found = new Map<string, LogIntent>();
  if (typeof record !== 'object' || record === null) return found;
  const name = key.slice(LOG_INTENTS_PREFIX.length, -'.json'.length);
  const batch = (record as Partial<LogIntentsRecord>).intents;
  if (!name.startsWith('batch-')) found.set(name, record as LogIntent);
  else if (typeof batch === 'object' && batch !== null)
    for (const [id, intent] of Object.entries(batch)) found.set(id, intent);
  return found;
}

/** The log's length and head as recorded (an empty log when nothing was ever appended). */
export async function readLogHead(intake: Store): Promise<LogHead> {
  return (await readJson<LogHead>(intake, LOG_STATE_KEY)) ?? EMPTY_LOG;
}

/** Records `head` as the log's (`state/log.json`): after the segments holding it, before a snapshot. */
export async function writeLogHead(intake: Store, head: LogHead): Promise<void> {
  await intake.put(LOG_STATE_KEY, new TextEncoder().encode(`${JSON.stringify(head)}\n`), {
    contentType: 'application/json',
    cacheControl: CACHE_PRIVATE,
  });
}

/**
 * The log's head to append to and to sign: the intake store's record (`recorded`, `state/log.json`), unless
 * the published snapshot vouches for a longer log; then that head, and the entries the published log holds
 * past it chained from it (`publishedPast`: a stuck entry the snapshot did not count). The record is written before the snapshot that vouches
 * for it, so that happens only when the record was lost or put back from an older copy (an intake store
 * restored from a backup, a `state/` folder deleted, which `plugindex rebuild` recovers from). Taken as it
 * was, it rewrote the published history from its own length (from entry 0 when it was gone) and signed that
 * shorter log: every client that had seen the log refused the registry from then on (LOG_TRUNCATED,
 * LOG_FORKED), and the history was gone. The published head is taken only from a snapshot signed by this
 * registry's key (`snapshot.signed.json`: a planted snapshot cannot lengthen the log), once the published
 * segment it ends in is found to end at it; it is recorded again, and the record is what every later run
 * reads. While the record is current it costs one read of the published segment the next entry goes in
 * (`loggedPast`; a `head` when that entry starts a segment), shared through `reads` with the writer that
 * appends to it or begun early by a commit: `snapshot.json` (`published`, read anyway) is not signed, and a
 * record put back older beside one planted to match it was taken on its word.
 * `rotatingFrom`: a key rotation's previous key (rotate.ts), which signs the published snapshot until the
 * rotation's own is published, where `ctx.signer` already holds the next key. `unrecorded`: the head found
 * is not recorded (a rotation's check, stuck-entries.ts `refuseStuckRotation`, made before it writes anything).
 * @throws TrustError SNAPSHOT_BAD_SIGNATURE (the signed snapshot is not this registry's key's),
 *   SNAPSHOT_MALFORMED (it is missing while `published` claims a longer log, or it names no log head), and
 *   what the segment's check throws (LOG_TRUNCATED, LOG_ENTRY_ALTERED, LOG_REORDERED, LOG_MALFORMED): the
 *   batch fails, nothing is appended or signed.
 */
export async function currentLogHead(
  ctx: PipelineContext,
  recorded: LogHead,
  published: SnapshotDocument | undefined,
  options: { readonly rotatingFrom?: Key; readonly reads?: SegmentReads; readonly unrecorded?: true } = {},
): Promise<LogHead> {
  const claimed = published?.log?.length ?? 0;
  // Nothing recorded (the record lost, or a registry that never logged), the signed snapshot is read even
  // when `published` claims no longer log: that is `snapshot.json`, which is not signed, and deleted or
  // planted with a shorter log it made the rebuild after a loss sign an empty log over the published one.
  // Nor is a record taken on `snapshot.json`'s word alone when the published log holds entries past it: put
  // back older (by whoever may write `state/`) beside a `snapshot.json` planted to claim no more, it was
  // appended to from its length, over the entries the signed snapshot vouches for.
  const reads = options.reads ?? new SegmentReads(ctx.site);
  if (claimed <= recorded.length && recorded.length > 0 && !(await loggedPast(reads, recorded)))
    return recorded;
  const head = await signedLogHead(ctx, options.rotatingFrom);
  if (!head && claimed > recorded.length)
    throw new TrustError(
      'SNAPSHOT_MALFORMED',
      `${SIGNED_SNAPSHOT_KEY} is missing, and ${SNAPSHOT_KEY} vouches for a longer log (${claimed} entries) than ${LOG_STATE_KEY} records (${recorded.length})`,
    );
  if (!head || head.length <= recorded.length) return recorded;
  // Read for its check alone, of the last segment only (nothing is that recent): the head is taken once the
  // published log is found to end at it.
  await recentLogEntries(
    ctx.site,
    head,
    Number.POSITIVE_INFINITY,
    `the head the published snapshot signs (${LOG_STATE_KEY} records ${recorded.length} entries)`,
  );
  // The record behind the signed head was lost or put back older (it is written before the snapshot that
  // vouches for it): the entries the published log holds past the signed head, chained from it, were
  // appended by batches whose record went with it (a stuck entry the snapshot did not count, a batch that
  // died past its log). Taken at the signed head, the next batch appended over them and the rebuild saw none
  // stuck: the entries were lost, and a stuck publish's upload logged again at another entry. Only those an
  // intent record names: nothing signed binds them, and the site store is not the intake's to trust, so an
  // entry planted there chaining from the signed head was taken as logged and signed into every client's
  // history. Each entry's intent is written before it and kept until a snapshot counts it (`forget`), with
  // its line's hash: by seq, type and digest alone, an entry replaced there by one of another plugin, version
  // or detail keeping those three was taken as logged (and the batch then signed it over its upload).
  const logged = await publishedPast(reads, head, await intendedEntries(ctx.intake));
  if (options.unrecorded !== true) await writeLogHead(ctx.intake, logged);
  return logged;
}

/**
 * The entries the intent records name (`publishedPast`): `hashes`, the hashes of their lines; `unhashed`, as
 * `seq type digest`, those of intents written before the hash was kept (`LogIntent.hash`).
 */
interface IntendedEntries {
  readonly hashes: ReadonlySet<string>;
  readonly unhashed: ReadonlySet<string>;
}

async function intendedEntries(intake: Store): Promise<IntendedEntries> {
  const hashes = new Set<string>();
  const unhashed = new Set<string>();
  for (const intents of (await readIntentRecords(intake)).values())
    for (const intent of intents.values()) {
      // A hash that is not a string (a record changed by hand) names no line: no entry is taken by it.
      if (typeof intent.hash === 'string') hashes.add(intent.hash);
      else if (intent.hash === undefined) unhashed.add(`${intent.seq} ${intent.type} ${intent.digest}`);
    }
  return { hashes, unhashed };
}

/**
 * The head of the published log from `head` on: the entries its segments hold past `head` that chain from it
 * (each the next seq, each naming the one before by its hash) and that an intent record names (`intended`:
 * the hash of its line, which covers every field and the `prev` it chains by; or, for an intent written
 * before the hash was kept, its seq, type and digest), up to the first that does not; `head` itself when
 * none. Read only when the intake store's record is behind the signed head.
 * @throws TrustError LOG_MALFORMED (a segment past the head unreadable)
 */
async function publishedPast(
  reads: SegmentReads,
  head: LogHead,
  intended: IntendedEntries,
): Promise<LogHead> {
  let at = head;
  for (let index = segmentOf(head.length); ; index++) {
    const object = await reads.get(index);
    if (!object) return at;
    for (const read of parsePublishedSegment(object.body, index)) {
      const { seq, type, digest, prev } = read.entry;
      if (seq < at.length) continue;
      const named = intended.hashes.has(read.hash) || intended.unhashed.has(`${seq} ${type} ${digest}`);
      if (seq !== at.length || prev !== at.head || !named) return at;
      at = { length: at.length + 1, head: read.hash };
    }
    // A segment not full ends the log.
    if (at.length < (index + 1) * LOG_SEGMENT_ENTRIES) return at;
  }
}

/**
 * The published log's segments as one run read them, each read once: `currentLogHead`'s check of the segment
 * the next entry goes in (`loggedPast`) and the writer appending to it share the read, and a commit begins it
 * side by side with its other reads (`prefetch`), not on the snapshot's path.
 */
export class SegmentReads {
  readonly #reads = new Map<number, Promise<StoredObject | undefined>>();

  constructor(readonly site: Store) {}

  /** Segment `index` as published (undefined when missing), read at the first call. */
  get(index: number): Promise<StoredObject | undefined> {
    let read = this.#reads.get(index);
    if (!read) {
      read = this.site.get(logSegmentKey(index));
      this.#reads.set(index, read);
    }
    return read;
  }

  /** Begins reading the segment the entry after `recorded` goes in, when it holds entries already. */
  prefetch(recorded: LogHead): void {
    if (recorded.length % LOG_SEGMENT_ENTRIES === 0) return;
    this.get(segmentOf(recorded.length)).catch(() => undefined); // met by `loggedPast`, if it asks
  }
}

/**
 * Does the published log hold an entry past `recorded` (the segment entry `recorded.length` goes in has it,
 * or exists at all when that entry starts a segment)? Only a run that died between a segment and the record
 * (entries no snapshot vouches for, overwritten by the next append) or a record put back older leaves one:
 * then the signed snapshot says which (`currentLogHead`). One read of the segment a batch appends to.
 */
async function loggedPast(reads: SegmentReads, recorded: LogHead): Promise<boolean> {
  const index = segmentOf(recorded.length);
  const within = recorded.length - index * LOG_SEGMENT_ENTRIES;
  if (within === 0) return (await reads.site.head(logSegmentKey(index))) !== undefined;
  const object = await reads.get(index);
  if (!object) return false;
  let lines = 0;
  for (const line of new TextDecoder().decode(object.body).split('\n')) if (line.length > 0) lines++;
  return lines > within;
}

/**
 * The entries the intent records still name (`seq digest`), each with its submission's id: those of
 * submissions a run that died logged and did not finish, which their retry finishes. One listing of the
 * records (few: only a dead run leaves one).
 */
export async function pendingIntents(intake: Store): Promise<Map<string, string>> {
  const pending = new Map<string, string>();
  for (const intents of (await readIntentRecords(intake)).values())
    for (const [id, intent] of intents) pending.set(`${intent.seq} ${intent.digest}`, id);
  return pending;
}

/**
 * The ids of the submissions the intent records name: those a run that died logged for and did not finish.
 * One listing (and nothing else while there are none, as there are but after a run that died).
 */
export async function pendingSubmissions(intake: Store): Promise<Set<string>> {
  const ids = new Set<string>();
  for (const intents of (await readIntentRecords(intake)).values())
    for (const id of intents.keys()) ids.add(id);
  return ids;
}

/** The intent records found: key -> the intents it names (submission id -> its intent). */
export type IntentRecords = Map<string, Map<string, LogIntent>>;

/**
 * Every intent record (`state/log-intents/`, either shape) that names an intent: key -> its intents. One
 * listing (the records are few: only a dead run leaves one), where asking for each upload would cost a
 * request per upload. A batch begins it at its start: whether a run that died left one decides whether its
 * judging waits for the log (`LogWriter.owedFromLog`), and `LogWriter.open` takes the same listing.
 */
export async function readIntentRecords(intake: Store): Promise<IntentRecords> {
  const records = new Map<string, Map<string, LogIntent>>();
  for await (const listed of intake.list(LOG_INTENTS_PREFIX)) {
    if (!listed.key.endsWith('.json')) continue;
    const intents = intentsOf(listed.key, await readJson<unknown>(intake, listed.key));
    if (intents.size > 0) records.set(listed.key, intents);
  }
  return records;
}

/**
 * Segments read at once going back through the published log: the reads of a rebuild's week of entries go
 * side by side, as S3 answers each after tens of milliseconds (a few hundred segments on a busy registry).
 */
const SEGMENT_READS = WRITE_CONCURRENCY;

/**
 * The published log's last entries, back to the first segment that starts before `since` (ms since the
 * epoch; one segment at least), checked against `head` (`whose`, for the error) as a client checks them:
 * each entry's hash named by the next, the last one's by the head. What the pipeline reads of its log outside
 * a LogWriter: a head recovered from the snapshot (the last segment), a rebuild's recent actions.
 *
 * How far back is known only from what is read (a segment's first entry's time), so the segments are read in
 * rounds, newest first: one, then twice as many as the round before (up to SEGMENT_READS), side by side;
 * each round's are then taken in order, newest first, as one read after another took them, up to the first
 * that starts before `since`. A segment read past that one is not looked at (its absence, or its store's
 * failure, refuses nothing): at most as many reads as were needed are spent for nothing. The last segment
 * alone costs the one read it did.
 * @throws TrustError LOG_TRUNCATED, LOG_ENTRY_ALTERED, LOG_REORDERED, LOG_MALFORMED, naming the segment
 */
export async function recentLogEntries(
  site: Store,
  head: LogHead,
  since: number,
  whose: string,
): Promise<ReadEntry[]> {
  if (head.length === 0) return [];
  const last = segmentOf(head.length - 1);
  const segments: ReadEntry[][] = [];
  let index = last;
  let reached = false;
  for (let round = 1; !reached && index >= 0; round = Math.min(round * 2, SEGMENT_READS)) {
    const indexes = Array.from({ length: Math.min(round, index + 1) }, (_, i) => index - i);
    // Each read settled, failed or not: a failure counts only for a segment the log is read back to.
    const reads = await mapLimited(indexes, indexes.length, (i) =>
      site.get(logSegmentKey(i)).then(
        (object) => ({ object }),
        (error: unknown) => ({ error }),
      ),
    );
    for (const read of reads) {
      if ('error' in read) throw read.error;
      // A segment gone: whatever the later ones hold, the log is cut short of what the head counts.
      if (!read.object)
        throw new TrustError(
          'LOG_TRUNCATED',
          `${logSegmentKey(index)}, a segment of the published log, is missing, where ${whose} counts ${head.length} entries`,
        );
      const entries = parsePublishedSegment(read.object.body, index);
      segments.unshift(entries);
      index--;
      const first = entries[0]?.entry;
      reached = !first || !(Date.parse(first.time) >= since);
      if (reached) break;
    }
  }
  const from = (last - segments.length + 1) * LOG_SEGMENT_ENTRIES;
  const entries = segments.flat().slice(0, head.length - from);
  verifyTail(entries, from, head, `${logSegmentKey(last)}, the published log, does not end at ${whose}`);
  return entries;
}

/**
 * The entries of `entries` (read from a segment's start to the head, checked against it) that took effect,
 * and the entries voided, by seq: each void among them replayed as a client replays it (log.ts `checkVoids`,
 * of this registry, `registryKey` the registry's key where the log ends), the voids and the entries they void
 * passed over, as `foldLog` passes over them: a voided publish is not one to finish at its entry, a voided
 * action not one applied, ordered or restored. The signature a void carries is its clients' to verify
 * (log-void.ts), as every other entry's is: the pipeline holds the entries it reads to the head its intake
 * store records, and re-verifies no publisher's or owner's signature either.
 * @throws TrustError LOG_VOID_* (a void no client takes: the batch fails, nothing appended)
 */
export function standingEntries(
  ctx: PipelineContext,
  entries: readonly ReadEntry[],
  registryKey: string = ctx.signer.fingerprint,
): { readonly standing: ReadEntry[]; readonly voided: ReadonlyMap<number, LogEntry> } {
  const voided = checkVoids(entries, { registryKey, registry: ctx.config.url });
  const standing = entries.filter((read) => read.entry.type !== 'void' && !voided.has(read.entry.seq));
  return { standing, voided };
}

/**
 * Segment `index` of the published log, parsed (`parseSegment`): a refusal keeps its code (LOG_MALFORMED) and
 * cause, its message naming the segment's key. A void is read as any entry is, and replayed by every reader
 * (`standingEntries`).
 * @throws TrustError LOG_MALFORMED
 */
function parsePublishedSegment(body: Uint8Array, index: number): ReadEntry[] {
  try {
    return parseSegment(body, index);
  } catch (cause) {
    if (!(cause instanceof TrustError)) throw cause;
    throw new TrustError(cause.code, `${logSegmentKey(index)}, a published log segment, is unreadable`, {
      cause,
    });
  }
}

/**
 * `verifyLogRange` over the entries read from `from` (the start of a segment) to `head`; the first entry's
 * own link is to an entry not read (unless it is entry 0), its hash bound by the entry after it, or by the
 * head. A refusal keeps its code and cause, its message prefixed by `what`.
 * @throws TrustError LOG_TRUNCATED, LOG_REORDERED, LOG_ENTRY_ALTERED
 */
function verifyTail(entries: readonly ReadEntry[], from: number, head: LogHead, what: string): void {
  try {
    verifyLogRange(entries, {
      from,
      prev: from === 0 ? ZERO_HASH : (entries[0]?.entry.prev ?? ZERO_HASH),
      to: head,
    });
  } catch (cause) {
    if (!(cause instanceof TrustError)) throw cause;
    throw new TrustError(cause.code, `${what}: ${cause.message}`, { cause });
  }
}

/**
 * The log head of the published snapshot, read from `snapshot.signed.json` and checked against this
 * registry's key (or `rotatingFrom`, the key a rotation under way goes from): the snapshot and its signature
 * in one object, as a client reads them. Undefined when there is none (a registry that never published).
 * @throws TrustError SNAPSHOT_MALFORMED, SNAPSHOT_BAD_SIGNATURE
 */
export async function signedLogHead(ctx: PipelineContext, rotatingFrom?: Key): Promise<LogHead | undefined> {
  const object = await ctx.site.get(SIGNED_SNAPSHOT_KEY);
  if (!object) return undefined;
  const { snapshot, signature } = openSignedSnapshot(object.body);
  const { key } = await readPublicKey(ctx.signer.publicKey);
  const keys = rotatingFrom ? [key, rotatingFrom] : [key];
  // At the time it is checked, as the signer signs (its signature's time is not the pipeline clock's).
  const result = await verifyDetachedSignature(snapshot, signature, keys);
  if (!result.ok)
    throw new TrustError(
      'SNAPSHOT_BAD_SIGNATURE',
      `${SIGNED_SNAPSHOT_KEY}, read as ${LOG_STATE_KEY} records no log or a shorter one than ${SNAPSHOT_KEY}, is not signed by this registry's key (${keys.map((k) => k.getFingerprint().toUpperCase()).join(' or ')}: ${result.message}): its log head is not taken`,
    );
  let document: Partial<SnapshotDocument> | null | undefined;
  try {
    document = JSON.parse(new TextDecoder().decode(snapshot)) as Partial<SnapshotDocument> | null;
  } catch {
    // Never so, signed by this registry's key; were it so, it names no log head (SNAPSHOT_MALFORMED below).
  }
  // A registry that has logged nothing (`plugindex init`'s) signs a snapshot without a log: an empty one.
  if (typeof document === 'object' && document !== null && document.log === undefined) return EMPTY_LOG;
  const log: unknown = document?.log;
  if (!isLogHead(log))
    throw new TrustError('SNAPSHOT_MALFORMED', `${SIGNED_SNAPSHOT_KEY}: its snapshot names no log head`);
  return (await pairLogHead(ctx, keys, log)) ?? log;
}

/**
 * The log head of `snapshot.json` when its signature (`snapshot.json.asc`) is by one of `keys` and it signs a
 * longer log than `signed` (the one `snapshot.signed.json` signs), else undefined. Every commit writes the pair
 * before `snapshot.signed.json`: a run that died between them (a key rotation's among them, the pair then the
 * next key's) left a snapshot the registry signed that vouches for entries the other does not, and taking the
 * shorter head appended over them, the rotation's entry logged again.
 */
async function pairLogHead(ctx: PipelineContext, keys: Key[], signed: LogHead): Promise<LogHead | undefined> {
  const [pair, signature] = await allSettledValues([
    ctx.site.get(SNAPSHOT_KEY),
    ctx.site.get(signatureKey(SNAPSHOT_KEY)),
  ]);
  if (!pair || !signature) return undefined;
  let log: unknown;
  try {
    log = (JSON.parse(new TextDecoder().decode(pair.body)) as Partial<SnapshotDocument> | null)?.log;
  } catch {
    return undefined; // not the registry's: only its signed one is taken
  }
  if (!isLogHead(log) || log.length <= signed.length) return undefined;
  // A signature that is not one (planted, cut short) vouches for nothing, as a wrong one does.
  const result = await verifyDetachedSignature(
    pair.body,
    new TextDecoder().decode(signature.body),
    keys,
  ).catch(() => undefined);
  return result?.ok ? log : undefined;
}

/** An intent naming a publish's or an action's entry (not a key rotation's, which its own retry finishes). */
function isOwedIntent(intent: LogIntent): boolean {
  // A malformed intent (a record changed by hand) names no entry `open` could find: it is owed nothing.
  if (!Number.isSafeInteger(intent.seq) || intent.seq < 0 || typeof intent.digest !== 'string') return false;
  // A void's intent (pipeline/index.ts `voidRefusedPlugin`) names the upload it rejects: nothing to finish.
  return (
    typeof intent.type === 'string' &&
    intent.type !== 'rotate-key' &&
    intent.type !== 'void' &&
    intent.unowed !== true
  );
}

/**
 * Whether `records` name a publish's or an action's entry: only then may a batch owe one from the log
 * (`owedFromLog`), and its judging wait for the log before its first upload. A key rotation's record costs
 * the batches after it nothing.
 */
export function namesOwed(records: IntentRecords): boolean {
  for (const intents of records.values())
    for (const intent of intents.values()) if (isOwedIntent(intent)) return true;
  return false;
}

/** The keys under incoming/, or undefined when they cannot be listed (every upload may then still come). */
async function listIncoming(intake: Store): Promise<readonly string[] | undefined> {
  try {
    const keys: string[] = [];
    for await (const { key } of intake.list(INCOMING_PREFIX)) keys.push(key);
    return keys;
  } catch {
    return undefined;
  }
}

/** Twelve characters that are no digest's start: where an id's digest stands (`uploadMayCome`). */
const DIGEST_PLACE = 'x'.repeat(12);

/**
 * Whether an upload in incoming/ (`keys`; undefined: unknown) may be submission `id`'s: one whose key gives
 * its id with some bytes. An id is its key's name made safe, the first 12 hex digits of the bytes' digest
 * and, but for a plain name, a hash of the key (layout.ts `submissionIdFromDigest`): the key alone gives
 * every character but the digest's. A void's intent is needed only by the batch that meets its upload
 * (`LogWriter.voidFor`); an upload put back under that key later, the same bytes, is judged anew, as the
 * rejection it was given asks (pipeline/index.ts `voidedProblem`).
 */
function uploadMayCome(id: string, keys: readonly string[] | undefined): boolean {
  if (keys === undefined) return true;
  return keys.some((key) => {
    const shape = submissionIdFromDigest(key, DIGEST_PLACE);
    const at = shape.lastIndexOf(DIGEST_PLACE);
    return (
      at >= 0 &&
      id.length === shape.length &&
      id.startsWith(shape.slice(0, at)) &&
      id.endsWith(shape.slice(at + DIGEST_PLACE.length)) &&
      /^[0-9a-f]{12}$/.test(id.slice(at, at + DIGEST_PLACE.length))
    );
  });
}

export class LogWriter {
  #head: LogHead;
  /** Segment index -> its lines, for the segments read or appended to in this run. */
  readonly #segments = new Map<number, string[]>();
  readonly #dirty = new Set<number>();
  /**
   * `type digest` -> every entry a run that died may have appended (those the snapshot does not vouch for
   * yet, and those the intent records of the submissions at hand name), to append once.
   */
  readonly #unvouched = new Map<string, LogEntry>();
  /** Intent records to write at the next flush, by submission id. */
  readonly #intents = new Map<string, LogIntent>();
  /** The intent records that exist (found at open or written since): key -> the intents it still names. */
  readonly #records = new Map<string, Map<string, LogIntent>>();
  /** How many entries the published snapshot vouches for. */
  #vouched = 0;
  /** The ids of the submissions at hand (`open`'s `intents`). */
  #batch: ReadonlySet<string> = new Set();
  /**
   * The publishes and actions a run that died logged for submissions not at hand (`owedFromLog`), by id: their
   * entries are found (`entry`), and their retry is this batch, from what that run published before them.
   */
  readonly #owed = new Map<string, LogIntent>();
  /**
   * Those of `#owed` found with nothing to finish them from (`release`): `forget` marks them `unowed` in their
   * record, so that one batch, not every later one, waits for the log for them.
   */
  readonly #unowed = new Set<string>();
  /**
   * The seq and the digest of each entry read (`open`'s, `entriesSince`'s) that a void voids: what the intake
   * store copies of it (an action's marker, its slot in its plugin's order) stand for an entry that never
   * took effect. (A digest is an action's or a manifest's: one voided may be logged again since, at its seq.)
   */
  readonly voided = new Set<number | string>();

  private constructor(
    private readonly ctx: PipelineContext,
    head: LogHead,
    private readonly reads: SegmentReads,
    /** The registry's key where the log ends: a rotation under way's previous key until its entry is in. */
    private readonly registryKey: string,
  ) {
    this.#head = head;
  }

  /**
   * Opens the log for appending: its head (`currentLogHead`: the recorded one, or the published snapshot's
   * when that is longer), its last segment, and the entries a run that died may
   * have appended: those past what the published snapshot vouches for, and those the intent records of
   * `intents` (the ids of the submissions at hand) name, wherever they are. `rotatingFrom`: as for
   * `currentLogHead`, a key rotation's previous key. `since`: the entries from that one on are found too,
   * vouched for or not (a key rotation's entry, which its rotation's snapshot may vouch for already, its
   * intent record lost).
   */
  static async open(
    ctx: PipelineContext,
    options: {
      readonly intents?: readonly string[];
      readonly rotatingFrom?: Key;
      readonly since?: number;
      /** The intent records, listed already (`readIntentRecords`); else listed here when `intents` names any. */
      readonly records?: Promise<IntentRecords>;
    } = {},
  ): Promise<LogWriter> {
    const [recorded, snapshot] = await allSettledValues([
      readLogHead(ctx.intake),
      readJson<SnapshotDocument>(ctx.site, SNAPSHOT_KEY),
    ]);
    const reads = new SegmentReads(ctx.site);
    const head = await currentLogHead(ctx, recorded, snapshot, { rotatingFrom: options.rotatingFrom, reads });
    const rotatingFrom = options.rotatingFrom?.getFingerprint().toUpperCase();
    const writer = new LogWriter(ctx, head, reads, rotatingFrom ?? ctx.signer.fingerprint);
    if (head.length === 0) return writer;
    const vouched = Math.min(snapshot?.log?.length ?? 0, head.length);
    writer.#vouched = vouched;
    const remembered = Math.min(vouched, options.since ?? vouched);
    const wanted = new Set(options.intents ?? []);
    writer.#batch = wanted;
    const records = options.records
      ? await options.records
      : wanted.size > 0
        ? await readIntentRecords(ctx.intake)
        : new Map<string, Map<string, LogIntent>>();
    const named: LogIntent[] = [];
    const owed = new Map<string, LogIntent>();
    for (const [key, intents] of records) {
      writer.#records.set(key, intents);
      for (const [id, intent] of intents) {
        if (!Number.isSafeInteger(intent.seq) || intent.seq < 0) continue;
        if (intent.seq >= head.length) {
          // Past the recorded head (its run died before recording it): never logged, nothing to finish.
          if (options.records && !wanted.has(id) && isOwedIntent(intent)) writer.#unowed.add(id);
          continue;
        }
        if (wanted.has(id)) named.push(intent);
        // A publish or an action logged for an upload not at hand (deleted since, or left for a later batch):
        // this batch finishes it from what the run published before its entry (`owedFromLog`).
        else if (options.records && isOwedIntent(intent)) {
          named.push(intent);
          owed.set(id, intent);
        }
      }
    }
    // Every entry this run trusts (those past what the snapshot vouches for, those the records name) and
    // the last segment it appends to, read and checked against the recorded head before any is used.
    const from = Math.min(remembered, ...named.map((intent) => intent.seq));
    const entries = await writer.#chain(from);
    // A voided entry never took effect: it is not one to finish (nor found, `entry`), and its upload, met
    // again, is judged anew.
    writer.#standing(entries);
    for (const read of entries) if (read.entry.seq >= remembered) writer.#remember(read.entry);
    for (const intent of named) {
      const entry = entries[intent.seq - (entries[0]?.entry.seq ?? 0)]?.entry;
      if (entry?.type === intent.type && entry.digest === intent.digest) writer.#remember(entry);
    }
    // One whose entry the log does not hold at its seq (its run died before its head was recorded, entries
    // appended over it since) has nothing to finish: marked `unowed` too (`forget`).
    for (const [id, intent] of owed)
      if (writer.entry(intent.type, intent.digest)?.seq === intent.seq) writer.#owed.set(id, intent);
      else writer.#unowed.add(id);
    return writer;
  }

  /**
   * The entries from the start of `from`'s segment to the recorded head, each checked against that head: the
   * segments are published (the site store), the head is the intake store's own record. A segment changed
   * where it is published (cut short, an entry altered or moved) would otherwise be rewritten with its
   * change by the next append, under a head the snapshot then signs, and its entries taken for what a run
   * that died logged: one a bucket planted would resume an action no one was judged for, unlogged.
   * @throws TrustError naming the segment (the operator's to mend, the log being append-only): LOG_TRUNCATED,
   *   LOG_REORDERED or LOG_ENTRY_ALTERED (verifyLogRange's, kept as its cause), or LOG_MALFORMED (a segment
   *   that is not lines of entries); every batch fails until it is mended.
   */
  async #chain(from: number): Promise<ReadEntry[]> {
    const head = this.#head;
    if (from >= head.length && head.length % LOG_SEGMENT_ENTRIES === 0) return [];
    const first = segmentOf(Math.min(from, head.length - 1));
    const entries: ReadEntry[] = [];
    const where = `${logSegmentKey(segmentOf(head.length - 1))}, the published log,`;
    // Each line parsed already, as a log entry (#segment: parseSegment).
    for (let s = first; s <= segmentOf(head.length - 1); s++)
      for (const line of await this.#segment(s))
        entries.push({ entry: JSON.parse(line) as LogEntry, line, hash: lineHash(line) });
    verifyTail(
      entries,
      first * LOG_SEGMENT_ENTRIES,
      head,
      `${where} does not hold the entries its recorded head (state/log.json) counts`,
    );
    return entries;
  }

  /**
   * The entries logged from `since` (ms since the epoch) on: every segment back to the first that begins with
   * an entry logged before it (one segment at least), checked against the head as the entries `open` read
   * are. A batch judges an action made lately with the last segment alone, which it holds already (it
   * appends to it); one made earlier reads back as far as it was made, never further.
   * @throws TrustError as `open` does (LOG_TRUNCATED, LOG_ENTRY_ALTERED...), naming the segment
   */
  async entriesSince(since: number): Promise<LogEntry[]> {
    if (this.#head.length === 0) return [];
    let index = segmentOf(this.#head.length - 1);
    for (; index > 0; index--) {
      const [first] = await this.#segment(index);
      if (first === undefined || !(Date.parse((JSON.parse(first) as LogEntry).time) >= since)) break;
    }
    return this.#standing(await this.#chain(index * LOG_SEGMENT_ENTRIES)).map((read) => read.entry);
  }

  /** The entries of `entries` that took effect (`standingEntries`), the voided ones noted. */
  #standing(entries: readonly ReadEntry[]): ReadEntry[] {
    const { standing, voided } = standingEntries(this.ctx, entries, this.registryKey);
    for (const { entry } of entries) if (voided.has(entry.seq)) this.voided.add(entry.seq).add(entry.digest);
    return standing;
  }

  /** A void appended: the entry it names stands for nothing from now on, as `#standing` notes one read. */
  #voids(entry: LogEntry): void {
    const seq = Number(entry.detail?.entry);
    const voided = [...this.#unvouched].find(([, e]) => e.seq === seq);
    if (voided) {
      this.#unvouched.delete(voided[0]);
      this.voided.add(seq).add(voided[1].digest);
    } else this.voided.add(seq);
  }

  #remember(entry: LogEntry): void {
    if (!this.voided.has(entry.seq)) this.#unvouched.set(`${entry.type} ${entry.digest}`, entry);
  }

  get head(): LogHead {
    return this.#head;
  }

  /** True when an entry of this type and digest is among those a run that died may have appended (`open`). */
  logged(type: LogEntry['type'], digest: string): boolean {
    return this.#unvouched.has(`${type} ${digest}`);
  }

  /** The entry `logged` finds (its seq and time: what a run that died recorded), or undefined. */
  entry(type: LogEntry['type'], digest: string): LogEntry | undefined {
    return this.#unvouched.get(`${type} ${digest}`);
  }

  /**
   * The entry a run that died gave the submission `id`, as its intent record names it (read at `open`), or
   * undefined: what ties an entry found by its digest to this very upload.
   */
  intended(
    id: string,
  ): { readonly seq: number; readonly type: LogEntry['type']; readonly digest: string } | undefined {
    for (const intents of this.#records.values()) {
      const intent = intents.get(id);
      if (intent) return intent;
    }
    return undefined;
  }

  /**
   * The void a run that died appended for submission `id` (its intent record names it, pipeline/index.ts
   * `voidRefusedPlugin`), when the log holds it at that seq: that run voided the upload's publish and died
   * before recording its outcome, which this batch records rather than log the upload again.
   */
  async voidFor(id: string): Promise<LogEntry | undefined> {
    for (const intents of this.#records.values()) {
      const intent = intents.get(id);
      if (intent?.type !== 'void') continue;
      const entry = (await this.read(intent.seq))?.entry;
      if (entry?.type === 'void' && entry.digest === intent.digest) return entry;
    }
    return undefined;
  }

  /**
   * The plugins whose first publish a run voided (the void in the log at its intent's seq), each with the other
   * plugins its intent names (`LogIntent.alike`): the documents that may still list it in `look_alikes`.
   */
  async voidedAlike(): Promise<Map<string, readonly string[]>> {
    const voided = new Map<string, readonly string[]>();
    for (const intents of this.#records.values())
      for (const intent of intents.values()) {
        if (intent.type !== 'void' || !Number.isSafeInteger(intent.seq) || !Array.isArray(intent.alike))
          continue;
        const entry = (await this.read(intent.seq))?.entry;
        if (entry?.type !== 'void' || entry.digest !== intent.digest || !entry.plugin) continue;
        // A record changed by hand may name anything: only plugin names are looked up (a path read fails the batch).
        const named = intent.alike.filter(
          (other): other is string => typeof other === 'string' && pluginNameFormProblem(other) === undefined,
        );
        voided.set(entry.plugin, [...new Set([...(voided.get(entry.plugin) ?? []), ...named])]);
      }
    return voided;
  }

  /**
   * The submission an intent record (read at `open`) names as the one that logged the entry of digest
   * `digest`, or undefined: an action a run that died logged and its retry has not finished.
   */
  intentOf(digest: string): string | undefined {
    for (const intents of this.#records.values())
      for (const [id, intent] of intents) if (intent.digest === digest) return id;
    return undefined;
  }

  /**
   * True when submission `id` is one this batch finishes: one of those at hand (`open`'s `intents`), or one
   * whose logged action it finishes from the log (`owedFromLog`).
   */
  atHand(id: string): boolean {
    return this.#batch.has(id) || this.#owed.has(id);
  }

  /** Submission `id` is not finished from the log after all (`owedFromLog`: what it needs is not there). */
  release(id: string): void {
    if (this.#owed.delete(id)) this.#unowed.add(id);
  }

  /**
   * The publishes and actions a run that died logged for submissions not at hand (their uploads deleted since,
   * or left for a later batch), each with where in the batch it is finished: after the submission at hand
   * whose entry is the last before its own (`after`), or before any (undefined), so the batch applies what
   * the dead run logged in the order the log has it. In log order. Only with `open`'s `records`.
   */
  owedFromLog(): { readonly id: string; readonly after?: string }[] {
    const here: { readonly id: string; readonly seq: number }[] = [];
    for (const id of this.#batch) {
      const intent = this.intended(id);
      if (intent) here.push({ id, seq: intent.seq });
    }
    return [...this.#owed]
      .sort(([, a], [, b]) => a.seq - b.seq)
      .map(([id, intent]) => {
        let after: { readonly id: string; readonly seq: number } | undefined;
        for (const at of here) if (at.seq < intent.seq && (!after || at.seq > after.seq)) after = at;
        return after ? { id, after: after.id } : { id };
      });
  }

  /** How many entries the published snapshot vouches for: a void of one of them is refused (LOG_VOID_OF_SEEN). */
  get vouched(): number {
    return this.#vouched;
  }

  /**
   * Entry `seq` as the log holds it (its line and hash, what a void names), read from its segment, checked
   * at `open`; undefined when it is past the head.
   */
  async read(seq: number): Promise<ReadEntry | undefined> {
    if (seq >= this.#head.length) return undefined;
    const index = segmentOf(seq);
    const line = (await this.#segment(index))[seq - index * LOG_SEGMENT_ENTRIES];
    return line === undefined
      ? undefined
      : { entry: JSON.parse(line) as LogEntry, line, hash: lineHash(line) };
  }

  /** True when the log holds entries the published snapshot does not vouch for: a snapshot is owed. */
  get unvouched(): boolean {
    return this.#head.length > this.#vouched;
  }

  /**
   * Appends an entry (written at `flush`), for the submission `intent` names (its intent record is written
   * first, so a retry finds the entry), with `marks` (a void's: `LogIntent.awaited`, `alike`). Returns it.
   * The entry's line is final here (its `prev` is the head it is appended to): the intent keeps its hash.
   */
  append(
    fields: Omit<LogEntry, 'seq' | 'prev'>,
    intent?: string,
    marks: Pick<LogIntent, 'awaited' | 'alike'> = {},
  ): LogEntry {
    const { entry, line, head } = nextEntry(this.#head, fields);
    const index = segmentOf(entry.seq);
    const lines = this.#segments.get(index) ?? [];
    if (!this.#segments.has(index)) this.#segments.set(index, lines);
    // Anything past the recorded length (a run that died between segment and state) is overwritten.
    lines.length = entry.seq - index * LOG_SEGMENT_ENTRIES;
    lines.push(line);
    this.#dirty.add(index);
    if (entry.type === 'void') this.#voids(entry);
    this.#remember(entry);
    if (intent !== undefined)
      this.#intents.set(intent, {
        seq: entry.seq,
        type: entry.type,
        digest: entry.digest,
        hash: head.head,
        ...marks,
      });
    this.#head = head;
    return entry;
  }

  /** Writes the segments appended to, then the recorded head. A full segment is immutable from then on. */
  async flush(): Promise<void> {
    if (this.#dirty.size === 0) return;
    // The intent record is written before any entry it names.
    if (this.#intents.size > 0) {
      const intents = new Map(this.#intents);
      const first = Math.min(...Array.from(intents.values(), (intent) => intent.seq));
      await this.#writeRecord(logIntentsKey(first), intents);
    }
    this.#intents.clear();
    for (const index of [...this.#dirty].sort((a, b) => a - b)) {
      const lines = this.#segments.get(index) as string[];
      await this.ctx.site.put(logSegmentKey(index), renderSegment(lines), {
        contentType: LOG_CONTENT_TYPE,
        cacheControl: lines.length === LOG_SEGMENT_ENTRIES ? CACHE_IMMUTABLE : CACHE_MUTABLE,
      });
    }
    this.#dirty.clear();
    await writeLogHead(this.ctx.intake, this.#head);
  }

  /**
   * Drops finished submissions (`ids`) from their intent records, and those whose outcome is recorded
   * already (a run that died after it finished them, before it forgot them: no retry takes them again, and
   * their record would stay for good): a record that names no other is deleted, one that still does is
   * written again without them (records are independent of each other). One this batch owed from the log
   * and found nothing to finish from (`release`, or its entry not the log's at its seq) is kept, marked
   * `unowed`: `namesOwed` passes over it, where it made every later batch wait for the log, for good.
   */
  async forget(ids: readonly string[], awaited: ReadonlySet<string> = new Set()): Promise<void> {
    const finished = new Set(ids);
    // The uploads in incoming/, listed once and only when an awaited void is left to keep (`uploadMayCome`).
    let incoming: Promise<readonly string[] | undefined> | undefined;
    const uploads = () => {
      incoming ??= listIncoming(this.ctx.intake);
      return incoming;
    };
    await forEachLimited([...this.#records], WRITE_CONCURRENCY, async ([key, intents]) => {
      const left = new Map<string, LogIntent>();
      let marked = false;
      for (const [id, intent] of intents) {
        // A void of a publish whose upload was not at hand (`awaited`, marked so) is kept, whatever outcome is
        // recorded, until a batch that meets its upload rejects it by it (`voidFor`): dropped for the
        // outcome recorded from the log, that upload, judged anew, was logged and voided again. Only while
        // that upload may still be met: once no upload in incoming/ can be it (deleted, or moved out by a
        // run that died before it forgot it), no batch ever meets it, and it stayed for good.
        const waiting = intent.type === 'void' && (awaited.has(id) || intent.awaited === true);
        if (waiting && (awaited.has(id) || !finished.has(id)) && uploadMayCome(id, await uploads())) {
          marked ||= intent.awaited !== true;
          left.set(id, { ...intent, awaited: true });
          continue;
        }
        if (finished.has(id) || (await this.ctx.intake.head(statusKey(id)))) continue;
        const unowed = this.#unowed.has(id) && intent.unowed !== true;
        marked ||= unowed;
        left.set(id, unowed ? { ...intent, unowed: true } : intent);
      }
      if (left.size === intents.size && !marked) return;
      const batchShape = key.slice(LOG_INTENTS_PREFIX.length).startsWith('batch-');
      if (left.size > 0 && batchShape) await this.#writeRecord(key, left);
      else if (left.size > 0 && marked) {
        // A record of the earlier shape (one submission, the intent itself), marked in its own shape.
        const [intent] = left.values();
        await this.ctx.intake.put(key, new TextEncoder().encode(`${JSON.stringify(intent)}\n`), {
          contentType: 'application/json',
          cacheControl: CACHE_PRIVATE,
        });
        this.#records.set(key, left);
      } else if (left.size === 0) {
        await this.ctx.intake.delete(key);
        this.#records.delete(key);
      }
    });
  }

  async #writeRecord(key: string, intents: Map<string, LogIntent>): Promise<void> {
    const record: LogIntentsRecord = { intents: Object.fromEntries(intents) };
    await this.ctx.intake.put(key, new TextEncoder().encode(`${JSON.stringify(record)}\n`), {
      contentType: 'application/json',
      cacheControl: CACHE_PRIVATE,
    });
    this.#records.set(key, intents);
  }

  /** A segment's lines up to the recorded length, read once. */
  async #segment(index: number): Promise<string[]> {
    const held = this.#segments.get(index);
    if (held) return held;
    const object = await this.reads.get(index);
    // Unreadable, the operator's to mend (the log is append-only): every batch fails until it is.
    const read = object ? parsePublishedSegment(object.body, index) : [];
    const keep = Math.max(0, Math.min(LOG_SEGMENT_ENTRIES, this.#head.length - index * LOG_SEGMENT_ENTRIES));
    const lines = read.slice(0, keep).map((r) => r.line);
    this.#segments.set(index, lines);
    return lines;
  }
}
