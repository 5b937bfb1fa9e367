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
  type LogEntry,
  lineHash,
  logSegmentKey,
  nextEntry,
  type ReadEntry,
  renderSegment,
} from '../../index-builder/log.ts';
import { signVoid } from '../../index-builder/log-void.ts';
import type { LogHead, SnapshotDocument } from '../../index-builder/model.ts';
import { createSigner } from '../../index-builder/signing.ts';
import { testKey } from '../support/fixtures.ts';
import { rejectionOf } from '../support/problems.ts';

const BASE = 'https://plugins.registry.example';
/** The fingerprint of the key the snapshot is signed by (no void is read here: none is checked). */
const KEY = 'A'.repeat(40);

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
    const read = await readWholeLog(load, snapshotWith(head), { base: BASE, registryKey: KEY });
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
    expect(await readWholeLog(load, snapshotWith(), { base: BASE, registryKey: KEY })).toEqual({
      head: undefined,
      entries: [],
      voided: new Map(),
    });
    expect(asked).toEqual([]);
  });

  it('refuses a log whose segment is missing: LOG_TRUNCATED', async () => {
    served.delete(logSegmentKey(1));
    const whole = await refusal(readWholeLog(load, snapshotWith(head), { base: BASE, registryKey: KEY }));
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
      readWholeLog(load, snapshotWith(head), { base: BASE, registryKey: KEY }),
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
    const error = await refusal(readWholeLog(load, snapshotWith(head), { base: BASE, registryKey: KEY }));
    expect(error.code).toBe('LOG_ENTRY_ALTERED');
    expect(error.message).toContain('log entry 271');
  });

  it('refuses a snapshot whose log is not a head, before asking for anything: LOG_MALFORMED', async () => {
    const bad = snapshotWith({ length: -1, head: 'nope' });
    expect(() => snapshotLogHead(bad, { base: BASE })).toThrow(TrustError);
    for (const reading of [
      readWholeLog(load, bad, { base: BASE, registryKey: KEY }),
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
      expect(
        (await refusal(readWholeLog(load, current, { base: BASE, registryKey: KEY, remembered }))).code,
      ).toBe(code);
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

    const read = await readWholeLog(cached, snapshotWith(head), { base: BASE, registryKey: KEY });
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
    await expect(readWholeLog(failing, snapshotWith(head), { base: BASE, registryKey: KEY })).rejects.toThrow(
      'connection reset',
    );
  });
});

/** A chain of lines as written by `write` (given each one's `prev`), not by `entryLine`: any bytes signed. */
function rawLog(write: readonly ((prev: string) => string)[]): { lines: string[]; head: LogHead } {
  const out: string[] = [];
  let prev = EMPTY_LOG.head;
  for (const line of write) {
    out.push(line(prev));
    prev = lineHash(out[out.length - 1] as string);
  }
  return { lines: out, head: { length: out.length, head: prev } };
}

const SIGNER = 'A'.repeat(40);
const DIGEST = 'b'.repeat(64);
const fine = (fields: string) => (prev: string) =>
  `{"seq":0,"time":"2026-11-01T00:00:00.000Z",${fields},"prev":"${prev}"}`;

describe('when a signed log entry is not of the form the pipeline writes', () => {
  it('refuses a detail nested 200,000 deep before anything prints it: LOG_MALFORMED at #/detail/reason', async () => {
    const deep = `${'['.repeat(200_000)}${']'.repeat(200_000)}`;
    const { lines: raw, head: rawHead } = rawLog([
      fine(
        `"type":"yank","plugin":"demo","version":"1.0.0","signer":"${SIGNER}","digest":"${DIGEST}","detail":{"reason":${deep}}`,
      ),
    ]);
    served = segments(raw);
    const error = await refusal(readWholeLog(load, snapshotWith(rawHead), { base: BASE, registryKey: KEY }));
    expect(error.code).toBe('LOG_MALFORMED');
    expect(error.message).toBe('log/000000.jsonl line 1#/detail/reason: expected a string');
  });

  it('names every field of another form by its pointer, and takes each entry the pipeline writes', async () => {
    const cases: [fields: string, problems: string[]][] = [
      [
        `"type":"frobnicate","plugin":"demo","signer":"${SIGNER.toLowerCase()}","digest":"xyz"`,
        [
          '#/type: expected one of publish, yank, unyank, deprecate, undeprecate, advisory-add, advisory-withdraw, owners-add, owners-remove, remove, transfer, revoke-key, rotate-key, void',
          '#/signer: expected a key fingerprint (40 or 64 uppercase hex digits: an OpenPGP v4 or v6 key)',
          '#/digest: expected a sha256 (64 hex digits)',
        ],
      ],
      [
        `"type":"publish","plugin":"Not A Name","signer":"${SIGNER}","digest":"${DIGEST}"`,
        ['#/plugin: expected a plugin name', '#/version: missing (expected a SemVer version)'],
      ],
      [
        `"type":"rotate-key","plugin":"demo","signer":"${SIGNER}","digest":"${DIGEST}","detail":{"fingerprint":"${SIGNER}","sequence":1}`,
        ['#/plugin: expected no plugin (a rotate-key names none)', '#/detail/sequence: expected a string'],
      ],
      [
        `"type":"yank","plugin":"demo","version":"v1.0.0","signer":"${SIGNER}","digest":"${DIGEST}","detail":{"effect":"some","a/b":"x"},"extra":{"deep":[]}`,
        [
          '#/extra: not a field of a log entry',
          '#/version: expected a SemVer version',
          '#/detail/effect: expected "none"',
          "#/detail/a~1b: not a field of an entry's detail",
        ],
      ],
      [
        `"type":"rotate-key","signer":"${SIGNER}","digest":"${DIGEST}","detail":{"fingerprint":"${SIGNER}","sequence":"1","compromised":"yes","later":{}}`,
        ['#/detail/compromised: expected "true"', '#/detail/later: expected a string'],
      ],
      [
        `"type":"deprecate","signer":"${SIGNER}","digest":"${DIGEST}","detail":[]`,
        ['#/plugin: missing (expected a plugin name)', '#/detail: expected an object of strings'],
      ],
    ];
    for (const [fields, problems] of cases) {
      const { lines: raw, head: rawHead } = rawLog([fine(fields)]);
      served = segments(raw);
      const error = await refusal(
        readWholeLog(load, snapshotWith(rawHead), { base: BASE, registryKey: KEY }),
      );
      expect(error.code).toBe('LOG_MALFORMED');
      expect(error.message).toBe(problems.map((p) => `log/000000.jsonl line 1${p}`).join('; '));
    }
    // What the pipeline writes: a no-effect action with its created, a rotation, a revocation; and what a
    // newer one may add beside it, a string under a name of its own.
    const { lines: good, head: goodHead } = rawLog([
      fine(
        `"type":"yank","plugin":"demo","version":"1.0.0+build.5","signer":"${SIGNER}","digest":"${DIGEST}","created":"2026-11-01T00:00:00.000Z","detail":{"effect":"none","reason":"broken"}`,
      ),
      // A rotation after a theft (rotate-key --compromised), and a field a newer pipeline may add, a string.
      (prev) =>
        `{"seq":1,"time":"2026-11-01T00:00:00.000Z","type":"rotate-key","signer":"${SIGNER}","digest":"${DIGEST}","detail":{"fingerprint":"${'C'.repeat(40)}","sequence":"1","compromised":"true","later":"x"},"note":"x","prev":"${prev}"}`,
      (prev) =>
        `{"seq":2,"time":"2026-11-01T00:00:00.000Z","type":"revoke-key","signer":"${SIGNER}","digest":"${DIGEST}","created":"2026-11-01T00:00:00Z","detail":{"fingerprint":"${'C'.repeat(40)}","reason":"lost"},"prev":"${prev}"}`,
    ]);
    served = segments(good);
    const { entries } = await readWholeLog(load, snapshotWith(goodHead), { base: BASE, registryKey: KEY });
    expect(entries.map((e) => e.entry.type)).toEqual(['yank', 'rotate-key', 'revoke-key']);
  });
});

describe('when a log a client saw is extended by a void of an entry it saw', () => {
  // Five publishes, then the registry's void of entry `voids`, signed by its key (index-builder/log-void.ts).
  async function voidedLog(voids: number): Promise<{ heads: LogHead[]; key: string }> {
    const registry = await createSigner((await testKey('registry')).secretKey);
    const { lines: first, heads: made } = makeLog(5);
    const read: ReadEntry[] = first.map((line) => ({
      entry: JSON.parse(line) as LogEntry,
      line,
      hash: lineHash(line),
    }));
    const fields = await signVoid({
      voided: read[voids] as ReadEntry,
      reason: 'the store refused its document for good',
      time: '2026-11-01T00:00:00Z',
      signer: registry,
      registry: BASE,
    });
    const next = nextEntry(made[5] as LogHead, fields);
    served = segments([...first, next.line]);
    return { heads: [...made, next.head], key: registry.fingerprint };
  }

  it('refuses it in install and update (readLogExtension) and verify --url (readWholeLog): LOG_VOID_OF_SEEN', async () => {
    // Seen at 3 entries: the snapshot then vouched for entries 0 to 2 as they stood, entry 2 the last of them.
    for (const voids of [1, 2]) {
      const { heads: at, key } = await voidedLog(voids);
      const current = snapshotWith(at[6]);
      const remembered = at[3] as LogHead;
      for (const reading of [
        readLogExtension(load, current, { base: BASE, remembered }),
        readWholeLog(load, current, { base: BASE, registryKey: key, remembered }),
      ]) {
        const error = await refusal(reading);
        expect(error.code).toBe('LOG_VOID_OF_SEEN');
        expect(error.message).toContain(
          `log entry 5 (void) voids entry ${voids}, which the log of 3 entries`,
        );
      }
    }
  });

  it('takes a void of an entry past the head it saw, and one it saw already', async () => {
    const { heads: at, key } = await voidedLog(3);
    const current = snapshotWith(at[6]);
    // Entry 3 is past a head of 3 entries; a head of 6 holds the void itself.
    for (const remembered of [at[3], at[6]] as LogHead[]) {
      expect(await readLogExtension(load, current, { base: BASE, remembered })).toEqual(at[6]);
      const read = await readWholeLog(load, current, { base: BASE, registryKey: key, remembered });
      expect([...read.voided.keys()]).toEqual([3]);
    }
  });
});
