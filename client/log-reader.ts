/**
 * Reading a registry's transparency log (index-builder/log.ts) as a client does, one definition for the
 * session (the head it remembers, `audit`) and for `plugindex verify --url` (the whole chain): the segments
 * holding a range of entries, fetched as `?v=<head>` (a new head is a new cache entry, so no CDN hands back
 * a segment older than the snapshot), each under its cap, then judged against the heads the snapshot signs.
 * A segment the registry does not have, or one short of full before the last, ends the entries there: the
 * check then says how many are missing. Segments that fail the check are read once more past every cache
 * (`pastCaches`), then judged the same way: the edge keys a segment on `v` alone, so anyone who can predict
 * the next head can ask for `<segment>?v=<that head>` before the publish lands and have the edge keep the
 * segment of then (or its 404) under it, a log a client would take for one cut short. Pure: the caller's
 * loader fetches.
 *
 * @example
 * const load = documentLoader(fetcher, endpoint);
 * const head = await readLogExtension(load, snapshot, { base: url, remembered: trust.log });
 * const { entries } = await readWholeLog(load, snapshot, { base: url });
 */
import { TrustError } from '../index-builder/errors.ts';
import { SNAPSHOT_KEY } from '../index-builder/layout.ts';
import type { LogEntry } from '../index-builder/log.ts';
import {
  checkVoids,
  checkVoidsPastSeen,
  compareLogHeads,
  isLogHead,
  LOG_SEGMENT_ENTRIES,
  logSegmentKey,
  parseSegment,
  type ReadEntry,
  segmentOf,
  segmentsBetween,
  verifyExtension,
  verifyLogRange,
  ZERO_HASH,
} from '../index-builder/log.ts';
import type { LogHead, SnapshotDocument } from '../index-builder/model.ts';
import type { DocumentLoader } from './fetcher.ts';

/**
 * The cap on a log segment (its size is not listed anywhere): 256 entries of a few hundred bytes each, their
 * detail (a reason, a summary) included; 16 KiB an entry at most is far above what any holds.
 */
export const MAX_LOG_SEGMENT_BYTES = 4 * 1024 * 1024;

/** Where the log is read from, as errors name it: the registry's base URL. */
interface LogSource {
  readonly base: string;
}

/**
 * The snapshot's `log`, checked for its form (it is signed, but a client must not trip on it); undefined
 * when the registry keeps no log yet.
 * @throws TrustError LOG_MALFORMED
 */
export function snapshotLogHead(snapshot: SnapshotDocument, source: LogSource): LogHead | undefined {
  if (snapshot.log !== undefined && !isLogHead(snapshot.log))
    throw new TrustError(
      'LOG_MALFORMED',
      `${source.base}/${SNAPSHOT_KEY}#/log: expected {"length": a count, "head": 64 hex digits}`,
    );
  return snapshot.log;
}

/** What a segment a cache kept from before the head it is asked by shows as (and what tampering does). */
const SEGMENT_FAULTS: ReadonlySet<string> = new Set([
  'LOG_MALFORMED',
  'LOG_TRUNCATED',
  'LOG_FORKED',
  'LOG_REORDERED',
  'LOG_ENTRY_ALTERED',
]);

/**
 * `read` through `load`, and once more with every segment asked for past every cache when what it read
 * fails the check: the refusal of what the origin serves stands.
 */
async function readPastCachesOnFault<T>(
  load: DocumentLoader,
  read: (load: DocumentLoader) => Promise<T>,
): Promise<T> {
  try {
    return await read(load);
  } catch (error) {
    if (!(error instanceof TrustError && SEGMENT_FAULTS.has(error.code))) throw error;
    return read((request) => load({ ...request, pastCaches: true }));
  }
}

/**
 * Entries `from` to `to.length - 1` as the segments hold them, not judged (the callers check them against
 * the heads); fewer when a segment is missing or short.
 * @throws TrustError LOG_MALFORMED (a segment that does not parse); what `load` throws.
 */
async function readLogEntries(load: DocumentLoader, from: number, to: LogHead): Promise<ReadEntry[]> {
  const entries: ReadEntry[] = [];
  for (const index of segmentsBetween(from, to.length)) {
    const bytes = await load({
      path: logSegmentKey(index),
      maxBytes: MAX_LOG_SEGMENT_BYTES,
      version: to.head,
    });
    if (bytes === undefined) break;
    const read = parseSegment(bytes, index);
    entries.push(...read.slice(Math.max(0, from - index * LOG_SEGMENT_ENTRIES)));
    if (read.length < LOG_SEGMENT_ENTRIES) break;
  }
  return entries;
}

/**
 * The log head to remember once `snapshot` is accepted: the one it vouches for, when that extends the one
 * remembered (the entries from the last one remembered, which must still hash to its head, fetched and
 * checked), or is the first seen (remembered as it is: trust on first use, nothing fetched). A void among
 * the entries fetched is held to its form alone, and to naming no entry the head remembered counted.
 * @throws TrustError LOG_MALFORMED, LOG_TRUNCATED, LOG_FORKED, LOG_REORDERED, LOG_ENTRY_ALTERED,
 *   LOG_VOID_OF_SEEN.
 */
export async function readLogExtension(
  load: DocumentLoader,
  snapshot: SnapshotDocument,
  source: LogSource & { readonly remembered: LogHead | undefined },
): Promise<LogHead | undefined> {
  const current = snapshotLogHead(snapshot, source);
  const { remembered } = source;
  if (!remembered) return current;
  if (compareLogHeads(remembered, current) === 'same') return remembered;
  const head = current as LogHead;
  return readPastCachesOnFault(load, async (from) => {
    const entries = await readLogEntries(from, Math.max(remembered.length - 1, 0), head);
    if (entries.length === 0 && remembered.length > 0)
      throw new TrustError(
        'LOG_TRUNCATED',
        `${source.base}/${logSegmentKey(segmentOf(remembered.length - 1))} no longer holds entry ${remembered.length - 1}, which this client saw: the registry's log was cut short`,
      );
    verifyExtension(remembered, entries, head);
    // A void's form is all that is read here (its signature and target are `verify --url`'s), but whether it
    // reaches behind the head remembered needs no more: its signed head said those entries stood.
    checkVoidsPastSeen(entries, remembered.length);
    return head;
  });
}

/**
 * The whole log the snapshot vouches for, every entry checked from the first to the head (empty, with no
 * head, when the snapshot carries no log); with `remembered` (a head seen before), also that this log
 * extends it, compared before anything is fetched, and that no void past it names an entry it counted
 * (`checkVoidsPastSeen`). Its voids replayed (log.ts `checkVoids`, each signature
 * verified by log-void.ts, loaded only when the log holds one): `voided` gives each entry that never took
 * effect, with the void that says so. `registryKey`: the fingerprint of the key the snapshot is signed by. A
 * void is held to the registry the snapshot names (signed, and held to the registry pinned before this), as
 * a key rotation is: another registry's void, signed by a key both share, is refused.
 * @throws TrustError LOG_MALFORMED, LOG_TRUNCATED, LOG_FORKED, LOG_REORDERED, LOG_ENTRY_ALTERED, LOG_VOID_*.
 */
export async function readWholeLog(
  load: DocumentLoader,
  snapshot: SnapshotDocument,
  source: LogSource & { readonly remembered?: LogHead; readonly registryKey: string },
): Promise<{
  readonly head: LogHead | undefined;
  readonly entries: readonly ReadEntry[];
  readonly voided: ReadonlyMap<number, LogEntry>;
}> {
  const head = snapshotLogHead(snapshot, source);
  const { remembered } = source;
  if (remembered) compareLogHeads(remembered, head);
  if (!head) return { head, entries: [], voided: new Map() };
  const read = await readPastCachesOnFault(load, async (from) => {
    const entries = await readLogEntries(from, 0, head);
    verifyLogRange(entries, { from: 0, prev: ZERO_HASH, to: head });
    if (remembered && remembered.length > 0 && entries[remembered.length - 1]?.hash !== remembered.head)
      throw new TrustError(
        'LOG_FORKED',
        `log entry ${remembered.length - 1} is not the one seen last time (${remembered.head}): the registry's history was rewritten`,
      );
    return { head, entries: entries.slice(0, head.length) };
  });
  if (remembered) checkVoidsPastSeen(read.entries, remembered.length);
  const voided = checkVoids(read.entries, { registryKey: source.registryKey, registry: snapshot.registry });
  if (voided.size > 0) {
    // Loaded only for a log that holds a void: openpgp.js stays off the light paths (test/architecture.test.ts).
    const { verifyVoidSignatures } = await import('../index-builder/log-void.ts');
    await verifyVoidSignatures(read.entries);
  }
  return { ...read, voided };
}
