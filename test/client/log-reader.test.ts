/**
 * Reading a registry's log (client/log-reader.ts), pure: segments "served" from a map by an in-memory
 * loader that records what it was asked for. A range across a segment boundary, a segment missing or not
 * parsing, a snapshot's head that is not one, a head seen before and the log that must extend it.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import type { DocumentLoader } from '../../client/fetcher.ts';
import {
  MAX_LOG_SEGMENT_BYTES,
  readLogExtension,
  readWholeLog,
  snapshotLogHead,
} from '../../client/log-reader.ts';
import { TrustError } from '../../index-builder/errors.ts';
import {
  EMPTY_LOG,
  LOG_SEGMENT_ENTRIES,
  logSegmentKey,
  nextEntry,
  renderSegment,
} from '../../index-builder/log.ts';
import type { LogHead, SnapshotDocument } from '../../index-builder/model.ts';
import { rejectionOf } from '../support/problems.ts';

const BASE = 'https://plugins.registry.example';

/** A log of `count` entries: every line, and the head after each entry (heads[n] = the head of n entries). */
function makeLog(count: number): { lines: string[]; heads: LogHead[] } {
  const lines: string[] = [];
  const heads: LogHead[] = [EMPTY_LOG];
  for (let seq = 0; seq < count; seq++) {
    const next = nextEntry(heads[seq] as LogHead, {
      time: '2026-11-01T00:00:00Z',
      type: 'publish',
      plugin: `plugin-${seq}`,
      version: '1.0.0',
      signer: 'A'.repeat(40),
      digest: 'b'.repeat(64),
    });
    lines.push(next.line);
    heads.push(next.head);
  }
  return { lines, heads };
}

/** The segments of the first `count` lines, by their keys. */
function segments(lines: readonly string[], count = lines.length): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (let start = 0; start < count; start += LOG_SEGMENT_ENTRIES)
    out.set(
      logSegmentKey(start / LOG_SEGMENT_ENTRIES),
      renderSegment(lines.slice(start, Math.min(start + LOG_SEGMENT_ENTRIES, count))),
    );
  return out;
}

const snapshotWith = (log?: unknown): SnapshotDocument =>
  ({
    schema: 'plugindex/snapshot/v1',
    registry: BASE,
    generation: 3,
    created: '2026-11-01T00:00:00Z',
    expires: '2026-11-08T00:00:00Z',
    key_fingerprint: 'A'.repeat(40),
    documents: {},
    ...(log === undefined ? {} : { log }),
  }) as SnapshotDocument;

const refusal = (work: Promise<unknown>) => rejectionOf(work, TrustError);

// 300 entries: segment 0 full (0..255), segment 1 holding 256..299.
const { lines, heads } = makeLog(300);
const head = heads[300] as LogHead;
let served: Map<string, Uint8Array>;
let asked: Parameters<DocumentLoader>[0][];
const load: DocumentLoader = async (request) => {
  asked.push(request);
  return served.get(request.path);
};

beforeEach(() => {
  served = segments(lines);
  asked = [];
});

describe('when a client reads a registry log through its loader', () => {
  it('reads the whole log across a segment boundary, each segment as ?v=<head> under its cap', async () => {
    const read = await readWholeLog(load, snapshotWith(head), { base: BASE });
    expect(read.head).toEqual(head);
    expect(read.entries.map((e) => e.entry.seq)).toEqual([...Array(300).keys()]);
    expect(read.entries.map((e) => e.line)).toEqual(lines);
    expect(asked).toEqual([
      { path: 'log/000000.jsonl', maxBytes: MAX_LOG_SEGMENT_BYTES, version: head.head },
      { path: 'log/000001.jsonl', maxBytes: MAX_LOG_SEGMENT_BYTES, version: head.head },
    ]);
  });

  it('reads an extension from the last entry remembered, across the boundary, and only the segments holding it', async () => {
    // Remembered at 200 entries: entry 199 (segment 0) onwards.
    expect(await readLogExtension(load, snapshotWith(head), { base: BASE, remembered: heads[200] })).toEqual(
      head,
    );
    expect(asked.map((r) => r.path)).toEqual(['log/000000.jsonl', 'log/000001.jsonl']);
    // Remembered at 280 entries: segment 1 alone.
    asked = [];
    expect(await readLogExtension(load, snapshotWith(head), { base: BASE, remembered: heads[280] })).toEqual(
      head,
    );
    expect(asked.map((r) => r.path)).toEqual(['log/000001.jsonl']);
  });

  it('asks for nothing when the head is the one remembered, or is seen for the first time', async () => {
    expect(await readLogExtension(load, snapshotWith(head), { base: BASE, remembered: head })).toEqual(head);
    expect(await readLogExtension(load, snapshotWith(head), { base: BASE, remembered: undefined })).toEqual(
      head,
    );
    expect(await readWholeLog(load, snapshotWith(), { base: BASE })).toEqual({
      head: undefined,
      entries: [],
    });
    expect(asked).toEqual([]);
  });

  it('refuses a log whose segment is missing: LOG_TRUNCATED', async () => {
    served.delete(logSegmentKey(1));
    const whole = await refusal(readWholeLog(load, snapshotWith(head), { base: BASE }));
    expect(whole.code).toBe('LOG_TRUNCATED');
    expect(whole.message).toContain('holds 256 entries where the snapshot counts 300');
    // The segment holding the last entry remembered is gone: the log was cut under what this client saw.
    const extension = await refusal(
      readLogExtension(load, snapshotWith(head), { base: BASE, remembered: heads[280] }),
    );
    expect(extension.code).toBe('LOG_TRUNCATED');
    expect(extension.message).toContain(`${BASE}/log/000001.jsonl no longer holds entry 279`);
  });

  it('refuses a segment that does not parse: LOG_MALFORMED, naming it and its line', async () => {
    served.set(logSegmentKey(1), new TextEncoder().encode('{"seq": 256, "not": "an entry"}\n'));
    for (const reading of [
      readWholeLog(load, snapshotWith(head), { base: BASE }),
      readLogExtension(load, snapshotWith(head), { base: BASE, remembered: heads[280] }),
    ]) {
      const error = await refusal(reading);
      expect(error.code).toBe('LOG_MALFORMED');
      expect(error.message).toContain('log/000001.jsonl line 1');
    }
  });

  it('refuses an entry altered in the segment past the boundary: LOG_ENTRY_ALTERED', async () => {
    const altered = [...lines];
    altered[270] = (altered[270] as string).replace('plugin-270', 'plugin-27x');
    served = segments(altered);
    const error = await refusal(readWholeLog(load, snapshotWith(head), { base: BASE }));
    expect(error.code).toBe('LOG_ENTRY_ALTERED');
    expect(error.message).toContain('log entry 271');
  });

  it('refuses a snapshot whose log is not a head, before asking for anything: LOG_MALFORMED', async () => {
    const bad = snapshotWith({ length: -1, head: 'nope' });
    expect(() => snapshotLogHead(bad, { base: BASE })).toThrow(TrustError);
    for (const reading of [
      readWholeLog(load, bad, { base: BASE }),
      readLogExtension(load, bad, { base: BASE, remembered: heads[1] }),
    ]) {
      const error = await refusal(reading);
      expect(error.code).toBe('LOG_MALFORMED');
      expect(error.message).toBe(
        `${BASE}/snapshot.json#/log: expected {"length": a count, "head": 64 hex digits}`,
      );
    }
    expect(asked).toEqual([]);
  });

  it('refuses a log that does not extend the head remembered: another history, shorter, or gone', async () => {
    const cases: [remembered: LogHead, current: SnapshotDocument, code: string][] = [
      // Entry 99 is not the one seen: the history under a longer head was rewritten.
      [{ length: 100, head: 'f'.repeat(64) }, snapshotWith(head), 'LOG_FORKED'],
      // As long as the one seen, another head.
      [{ length: 300, head: 'e'.repeat(64) }, snapshotWith(head), 'LOG_FORKED'],
      [head, snapshotWith(heads[200]), 'LOG_TRUNCATED'],
      [head, snapshotWith(), 'LOG_TRUNCATED'],
    ];
    for (const [remembered, current, code] of cases) {
      expect((await refusal(readWholeLog(load, current, { base: BASE, remembered }))).code).toBe(code);
      expect((await refusal(readLogExtension(load, current, { base: BASE, remembered }))).code).toBe(code);
    }
  });

  it('reads the segments once more past every cache when what a cache kept under the head fails the check', async () => {
    // A cache keeps segment 1 as it was at 280 entries under this head (asked for before it was published).
    const kept = segments(lines, 280);
    const cached: DocumentLoader = async (request) => {
      asked.push(request);
      return (request.pastCaches ? served : kept).get(request.path);
    };

    const read = await readWholeLog(cached, snapshotWith(head), { base: BASE });
    const extended = await readLogExtension(cached, snapshotWith(head), {
      base: BASE,
      remembered: heads[280],
    });

    expect(read.entries).toHaveLength(300);
    expect(extended).toEqual(head);
    expect(asked.map((r) => `${r.path}${r.pastCaches ? ' past caches' : ''}`)).toEqual([
      'log/000000.jsonl',
      'log/000001.jsonl',
      'log/000000.jsonl past caches',
      'log/000001.jsonl past caches',
      'log/000001.jsonl',
      'log/000001.jsonl past caches',
    ]);
  });

  it('refuses what is served past every cache as it refuses any log, after that one read', async () => {
    served.delete(logSegmentKey(1));
    const error = await refusal(
      readLogExtension(load, snapshotWith(head), { base: BASE, remembered: heads[280] }),
    );
    expect(error.code).toBe('LOG_TRUNCATED');
    expect(asked.map((r) => r.pastCaches === true)).toEqual([false, true]);
  });

  it("passes on the loader's own failure (not a 404) as it is", async () => {
    const failing: DocumentLoader = async () => {
      throw new Error('connection reset');
    };
    await expect(readWholeLog(failing, snapshotWith(head), { base: BASE })).rejects.toThrow(
      'connection reset',
    );
  });
});
