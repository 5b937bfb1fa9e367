/**
 * Whether the log holds a publish past the head the published snapshot counts that no plugin document shows:
 * a logged publish whose document the store refused (LOGGED_PUBLISH_FAILED), waiting for a batch to publish it
 * once its path is mended, or (`voidRefusedEntries`) to void it. `plugindex rebuild` and `rotate-key` sign a
 * snapshot over the log's head: over such an entry, that snapshot vouches for a publish no document shows
 * (`verify --url`: LOG_DISAGREES), and every client that reads it refuses the void that would settle it
 * (LOG_VOID_OF_SEEN). Both refuse instead, before they change anything.
 */
import { PlugindexError } from '../errors.ts';
import { pluginDocumentKey, SNAPSHOT_KEY } from '../layout.ts';
import { type LogEntry, logSegmentKey, parseSegment, segmentOf } from '../log.ts';
import type { LogHead, PluginDocument, SnapshotDocument } from '../model.ts';
import type { PipelineContext } from './context.ts';
import { pendingIntents, readLogHead } from './log-writer.ts';
import { readJson } from './site-writer.ts';

/**
 * Refuses LOGGED_PUBLISH_STUCK, naming the first, when a standing publish among the entries from what the
 * published snapshot counts (`counted`) to `head` is shown by no plugin document. Costs nothing more than
 * the comparison when the snapshot counts the head (always, but after a batch that failed or died past its log);
 * else the tail's segments (one, but at a segment's end) and one document per plugin published in it.
 * A publish a later entry of the tail voids is not looked for. A `remove` is no reason to pass one over: it
 * takes out one version, whose record its document keeps (`removed`), never the plugin.
 * @throws PlugindexError LOGGED_PUBLISH_STUCK
 */
export async function refuseStuckPublishes(
  ctx: PipelineContext,
  counted: number,
  head: LogHead,
  command: 'rebuild' | 'rotate-key',
): Promise<void> {
  if (head.length <= counted) return;
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
  const documents = new Map<string, Promise<PluginDocument | undefined>>();
  for (const entry of tail) {
    const { seq, plugin, version } = entry;
    if (entry.type !== 'publish' || plugin === undefined || version === undefined || passed.has(seq))
      continue;
    const key = pluginDocumentKey(plugin);
    let read = documents.get(key);
    if (!read) {
      read = readJson<PluginDocument>(ctx.site, key);
      documents.set(key, read);
    }
    const doc = await read;
    if (doc?.versions?.some((v) => v.version === version)) continue;
    const submission = (await pendingIntents(ctx.intake)).get(`${seq} ${entry.digest}`);
    throw new PlugindexError(
      'LOGGED_PUBLISH_STUCK',
      `plugindex ${command} refused, nothing changed: log entry ${seq}, the publish of ${plugin}@${version}${submission ? ` (submission ${submission})` : ''}, is past the ${counted} entries the published snapshot counts, and ${key} ${doc ? 'does not show that version' : 'is missing or unreadable'} (a batch logged it, then failed or died before its document showed it: the store refused it, say); a snapshot signed over it would vouch for a publish no document shows (verify --url: LOG_DISAGREES), and no void could be taken of it (LOG_VOID_OF_SEEN). Mend the path the batch's LOGGED_PUBLISH_FAILED names and run the batch (plugindex process), which publishes it at its entry; or, with voidRefusedEntries set in the registry's config, run the batch, which voids it; then run ${command} again`,
    );
  }
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
