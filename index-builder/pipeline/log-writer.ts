/**
 * Appending to the transparency log (index-builder/log.ts) during a publish.
 *
 * The segments are the log's truth; `state/log.json` (intake) says how long it is and its head, and the
 * snapshot vouches for a prefix of it (its `log`). Entries are appended after a batch's immutable files and
 * before the plugin documents that show their effect, so a crash leaves at worst entries the snapshot does
 * not vouch for yet: the retry finds them (`logged`) instead of appending them twice, and the next snapshot
 * vouches for them. Write order within an append: the segments, then `state/log.json`; a crash between the
 * two leaves an entry past the recorded length, which the next append overwrites (its submission, not yet
 * shown anywhere, is then logged again by the retry).
 */
import {
  EMPTY_LOG,
  LOG_SEGMENT_ENTRIES,
  type LogEntry,
  logSegmentKey,
  nextEntry,
  parseSegment,
  type ReadEntry,
  renderSegment,
  segmentOf,
} from '../log.ts';
import type { LogHead, SnapshotDocument } from '../model.ts';
import { CACHE_IMMUTABLE, CACHE_MUTABLE, CACHE_PRIVATE, type Store } from '../store.ts';
import type { PipelineContext } from './context.ts';
import { readJson } from './site-writer.ts';

/** `state/log.json` in the intake store: the log's length and head as last appended. */
export const LOG_STATE_KEY = 'state/log.json';
export const LOG_CONTENT_TYPE = 'application/jsonl';

/** The log's length and head as recorded (an empty log when nothing was ever appended). */
export async function readLogHead(intake: Store): Promise<LogHead> {
  return (await readJson<LogHead>(intake, LOG_STATE_KEY)) ?? EMPTY_LOG;
}

export class LogWriter {
  #head: LogHead;
  /** Segment index -> its lines, for the segments read or appended to in this run. */
  readonly #segments = new Map<number, string[]>();
  readonly #dirty = new Set<number>();
  /**
   * `type digest` -> every entry a run that died may have appended (those the snapshot does not vouch for
   * yet, and the last `recent`), to append once.
   */
  readonly #unvouched = new Map<string, LogEntry>();
  /** How many entries the published snapshot vouches for. */
  #vouched = 0;

  private constructor(
    private readonly ctx: PipelineContext,
    head: LogHead,
  ) {
    this.#head = head;
  }

  /**
   * Opens the log for appending: its recorded head, its last segment, and the entries a run that died may
   * have appended: those past what the published snapshot vouches for, and the last `recent` entries
   * whatever it vouches for. A snapshot written in between (a scheduled refresh, a flush) vouches for a
   * dead run's entries too, so a batch passes as `recent` how many uploads it holds: a dead run appended at
   * most one entry per upload it held, and those still waiting are the oldest, so taken first again.
   */
  static async open(ctx: PipelineContext, options: { readonly recent?: number } = {}): Promise<LogWriter> {
    const head = await readLogHead(ctx.intake);
    const writer = new LogWriter(ctx, head);
    if (head.length === 0) return writer;
    const snapshot = await readJson<SnapshotDocument>(ctx.site, 'snapshot.json');
    const vouched = Math.min(snapshot?.log?.length ?? 0, head.length);
    writer.#vouched = vouched;
    const from = Math.max(0, Math.min(vouched, head.length - (options.recent ?? 0)));
    for (let s = segmentOf(Math.max(from, head.length - 1)); s >= 0 && s >= segmentOf(from); s--) {
      const lines = await writer.#segment(s);
      lines.forEach((line, i) => {
        const seq = s * LOG_SEGMENT_ENTRIES + i;
        if (seq < from || seq >= head.length) return;
        const entry = JSON.parse(line) as LogEntry;
        writer.#unvouched.set(`${entry.type} ${entry.digest}`, entry);
      });
    }
    return writer;
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

  /** True when the log holds entries the published snapshot does not vouch for: a snapshot is owed. */
  get unvouched(): boolean {
    return this.#head.length > this.#vouched;
  }

  /** Appends an entry (written at `flush`). Returns it. */
  append(fields: Omit<LogEntry, 'seq' | 'prev'>): LogEntry {
    const { entry, line, head } = nextEntry(this.#head, fields);
    const index = segmentOf(entry.seq);
    const lines = this.#segments.get(index) ?? [];
    if (!this.#segments.has(index)) this.#segments.set(index, lines);
    // Anything past the recorded length (a run that died between segment and state) is overwritten.
    lines.length = entry.seq - index * LOG_SEGMENT_ENTRIES;
    lines.push(line);
    this.#dirty.add(index);
    this.#unvouched.set(`${entry.type} ${entry.digest}`, entry);
    this.#head = head;
    return entry;
  }

  /** Writes the segments appended to, then the recorded head. A full segment is immutable from then on. */
  async flush(): Promise<void> {
    if (this.#dirty.size === 0) return;
    for (const index of [...this.#dirty].sort((a, b) => a - b)) {
      const lines = this.#segments.get(index) as string[];
      await this.ctx.site.put(logSegmentKey(index), renderSegment(lines), {
        contentType: LOG_CONTENT_TYPE,
        cacheControl: lines.length === LOG_SEGMENT_ENTRIES ? CACHE_IMMUTABLE : CACHE_MUTABLE,
      });
    }
    this.#dirty.clear();
    await this.ctx.intake.put(LOG_STATE_KEY, new TextEncoder().encode(`${JSON.stringify(this.#head)}\n`), {
      contentType: 'application/json',
      cacheControl: CACHE_PRIVATE,
    });
  }

  /** A segment's lines up to the recorded length, read once. */
  async #segment(index: number): Promise<string[]> {
    const held = this.#segments.get(index);
    if (held) return held;
    const object = await this.ctx.site.get(logSegmentKey(index));
    let read: ReadEntry[] = [];
    if (object) {
      try {
        read = parseSegment(object.body, index);
      } catch (cause) {
        // The operator's to mend (the log is append-only): every batch fails until it is.
        throw new Error(`${logSegmentKey(index)}, a published log segment, is unreadable`, { cause });
      }
    }
    const keep = Math.max(0, Math.min(LOG_SEGMENT_ENTRIES, this.#head.length - index * LOG_SEGMENT_ENTRIES));
    const lines = read.slice(0, keep).map((r) => r.line);
    this.#segments.set(index, lines);
    return lines;
  }
}
