/**
 * The registry's transparency log: every accepted publish and action (and every action refused as changing
 * nothing that still stands for its slot, its `detail.effect` `none`), every key rotation, and every void
 * (the registry's signed word that an earlier publish or action never took effect), as one entry
 * in an append-only, hash-chained list (the idea of sigstore's Rekor, not its code). Each entry names the
 * hash of the one before it, and the snapshot carries the log's length and the hash of its last entry, so
 * a client that remembers an earlier head can tell a log that extends it from one whose history was
 * rewritten, cut short or reordered.
 *
 * Layout: `log/<segment>.jsonl`, 256 entries per segment, one JSON line per entry; an append rewrites only
 * the last segment (tens of kilobytes at most), and a full segment never changes again. An entry's hash
 * is the sha256 of its line's bytes as published (no newline), so a reader checks exactly what it read.
 *
 * Pure: this module renders and judges; the pipeline writes (pipeline/log-writer.ts) and the client fetches.
 */
import { ACTION_KINDS, type ActionKind } from './action-kinds.ts';
import { sha256Hex } from './digest.ts';
import { type ErrorCode, TrustError } from './errors.ts';
import { KEY_FINGERPRINT, KEY_FINGERPRINT_FORM } from './fingerprint.ts';
import { isCanonicalVersion, pluginNameFormProblem, registryIdentity } from './layout.ts';
import type { LogHead } from './model.ts';
import { stringifyJson } from './text.ts';

export const LOG_PREFIX = 'log/';
export const LOG_SEGMENT_ENTRIES = 256;
/** The `prev` of the first entry, and the head of an empty log. */
export const ZERO_HASH = '0'.repeat(64);
export const EMPTY_LOG: LogHead = { length: 0, head: ZERO_HASH };

/**
 * What an entry records: a publish, an action (by its kind, action-kinds.ts), a registry key rotation, or a
 * void: the registry's signed word that an earlier publish or action never took effect (`VoidStatement`).
 */
export type LogEntryType = 'publish' | ActionKind | 'rotate-key' | 'void';

export interface LogEntry {
  /** 0-based position in the log. */
  readonly seq: number;
  /** When the registry accepted it (ISO 8601): the batch's time of publishing. */
  readonly time: string;
  readonly type: LogEntryType;
  readonly plugin?: string;
  readonly version?: string;
  /** Fingerprint of the key that signed what was accepted (the publisher, the owner, the operator). */
  readonly signer: string;
  /** sha256 (hex) of the bytes that key signed: the manifest, the action's text, the rotation's text. */
  readonly digest: string;
  /**
   * An action's: when its signer made it (its signed `created`), the order the registry judges one target's
   * actions by (lifecycle.ts `ActionOrder`). Absent from publishes, rotations and entries logged before it.
   */
  readonly created?: string;
  /** A few words of what it did, for `audit`: reason, message, replacement, range, advisory id, a key. */
  readonly detail?: Readonly<Record<string, string>>;
  /**
   * A void's alone: the registry's public key (armored) and its detached signature over the void's statement
   * (`voidStatement`, whose sha256 is `digest`). Carried in the entry so every reader checks it with nothing
   * more to fetch, whichever registry key signed it (a rotation since leaves the reader another key).
   */
  readonly key?: string;
  readonly signature?: string;
  /** The hash of the entry before (ZERO_HASH for the first). */
  readonly prev: string;
}

/** An entry as read, with its line and that line's hash. */
export interface ReadEntry {
  readonly entry: LogEntry;
  readonly line: string;
  readonly hash: string;
}

/** The key of the segment holding entry `seq`'s segment `index`: `log/000000.jsonl`. */
export function logSegmentKey(index: number): string {
  return `${LOG_PREFIX}${String(index).padStart(6, '0')}.jsonl`;
}

export function segmentOf(seq: number): number {
  return Math.floor(seq / LOG_SEGMENT_ENTRIES);
}

/**
 * The segments holding entries `from` to `to - 1`, one at a time: `to` comes from a signed head, which may
 * count far more entries than are served (2**40, say), so a reader stops at the first segment missing or
 * short rather than listing them all first.
 */
export function* segmentsBetween(from: number, to: number): Generator<number, void, undefined> {
  if (to <= from) return;
  for (let s = segmentOf(from); s <= segmentOf(to - 1); s++) yield s;
}

/** One entry's line: fixed key order (as the LogEntry type lists them), no spaces, no newline. */
export function entryLine(entry: LogEntry): string {
  const ordered: Record<string, unknown> = { seq: entry.seq, time: entry.time, type: entry.type };
  if (entry.plugin !== undefined) ordered.plugin = entry.plugin;
  if (entry.version !== undefined) ordered.version = entry.version;
  ordered.signer = entry.signer;
  ordered.digest = entry.digest;
  if (entry.created !== undefined) ordered.created = entry.created;
  if (entry.detail && Object.keys(entry.detail).length > 0) {
    const detail: Record<string, string> = {};
    for (const key of Object.keys(entry.detail).sort()) detail[key] = entry.detail[key] as string;
    ordered.detail = detail;
  }
  if (entry.key !== undefined) ordered.key = entry.key;
  if (entry.signature !== undefined) ordered.signature = entry.signature;
  ordered.prev = entry.prev;
  return stringifyJson(ordered);
}

export function lineHash(line: string): string {
  return sha256Hex(line);
}

/** The next entry after `head`, its line, and the head it makes. */
export function nextEntry(
  head: LogHead,
  fields: Omit<LogEntry, 'seq' | 'prev'>,
): { readonly entry: LogEntry; readonly line: string; readonly head: LogHead } {
  const entry: LogEntry = { ...fields, seq: head.length, prev: head.head };
  const line = entryLine(entry);
  return { entry, line, head: { length: head.length + 1, head: lineHash(line) } };
}

/** A segment's bytes from its lines, in order. */
export function renderSegment(lines: readonly string[]): Uint8Array {
  return new TextEncoder().encode(lines.length === 0 ? '' : `${lines.join('\n')}\n`);
}

const HEX64 = /^[0-9a-f]{64}$/;
/** A count as a void's detail spells it: decimal, no leading zero. */
const COUNT = /^(0|[1-9][0-9]{0,15})$/;

function malformed(where: string, why: string): never {
  throw new TrustError('LOG_MALFORMED', `${where}: ${why}`);
}

/**
 * An entry's `time` and `created`: the form an action's `created` must have (actions.ts), which the
 * pipeline's `toISOString` times have too. `Date.parse` alone takes "5" or "2026" for a time.
 */
const CREATED = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

const isTime = (value: unknown): boolean =>
  typeof value === 'string' && CREATED.test(value) && !Number.isNaN(Date.parse(value));

/**
 * Every type a reader of this release replays. A reader refuses a type it does not know (LOG_MALFORMED), so a
 * new one (`void`) is read by clients of a release before any registry writes one.
 */
export const LOG_ENTRY_TYPES: readonly LogEntryType[] = ['publish', ...ACTION_KINDS, 'rotate-key', 'void'];

/** What names a version (its plugin too); what names no plugin; what names the plugin its voided entry names. */
const VERSIONED: ReadonlySet<string> = new Set(['publish', 'yank', 'unyank', 'remove']);
const REGISTRY_WIDE: ReadonlySet<string> = new Set(['revoke-key', 'rotate-key']);
const MIRRORING: ReadonlySet<string> = new Set(['void']);
/** A void's detail: what its statement signs, and nothing else (`voidStatement`). */
const VOID_DETAIL: ReadonlySet<string> = new Set(['entry', 'hash', 'reason', 'registry']);

/**
 * The form of a key of an entry's `detail`. What the pipeline writes today (`actionDetail` in lifecycle.ts
 * for an action, `effect` for one that changed nothing, a rotation's fingerprint, sequence and `compromised`)
 * is a few lower-case words; a key of another name is let through, as a newer pipeline may add one and an
 * older client must still read its log, but never a value that is not a string (a nested one held the
 * printer of `audit` past its stack).
 */
const DETAIL_KEY = /^[a-z][a-z_]{0,31}$/;
/** The one `detail.effect` the pipeline writes: an action refused as changing nothing, logged for its slot. */
export const NO_EFFECT = 'none';

const ENTRY_KEYS: ReadonlySet<string> = new Set([
  'seq',
  'time',
  'type',
  'plugin',
  'version',
  'signer',
  'digest',
  'created',
  'detail',
  'key',
  'signature',
  'prev',
]);

/** A JSON pointer's token (RFC 6901). */
const token = (key: string): string => key.replaceAll('~', '~0').replaceAll('/', '~1');

/**
 * Every way `value` is not an entry as the pipeline writes it (`entryLine`), each as `#/pointer: why`:
 * a client prints what it reads (`audit NAME`, `--json` too) and must not trip on a signed entry of another
 * form, a `detail` nested a million deep included, so each field is held to the one form written.
 */
function entryProblems(value: unknown): string[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return ['#: expected an object'];
  const e = value as Record<string, unknown>;
  const problems: string[] = [];
  const check = (key: string, required: boolean, ok: (v: unknown) => boolean, form: string) => {
    if (e[key] === undefined) {
      if (required) problems.push(`#/${key}: missing (expected ${form})`);
    } else if (!ok(e[key])) problems.push(`#/${key}: expected ${form}`);
  };
  // A field of another name is let through as a string, as `detail`'s are: a newer pipeline may add one
  // (`created` came so), and an older client must still read the log; a nested one never. A void's never:
  // its signed statement (`voidStatement`) is all it says, so another field would be words no key vouched
  // for, and one statement and signature would stand for many entries.
  const isVoid = e.type === 'void';
  for (const [key, v] of Object.entries(e))
    if (!ENTRY_KEYS.has(key) && (isVoid || !DETAIL_KEY.test(key) || typeof v !== 'string'))
      problems.push(`#/${token(key)}: not a field of a ${isVoid ? 'void' : 'log entry'}`);
  check('seq', true, (v) => Number.isSafeInteger(v) && (v as number) >= 0, 'a count');
  check('time', true, isTime, 'an ISO 8601 time');
  check(
    'type',
    true,
    (v) => (LOG_ENTRY_TYPES as readonly unknown[]).includes(v),
    `one of ${LOG_ENTRY_TYPES.join(', ')}`,
  );
  const type = typeof e.type === 'string' ? e.type : undefined;
  // A void names the plugin and version of the entry it voids, when that names them (checkVoids holds it to it).
  const mirrors = type !== undefined && MIRRORING.has(type);
  const names = type !== undefined && !REGISTRY_WIDE.has(type);
  check(
    'plugin',
    names && !mirrors,
    (v) => names && typeof v === 'string' && pluginNameFormProblem(v) === undefined,
    names ? 'a plugin name' : `no plugin (a ${type} names none)`,
  );
  const versioned = type !== undefined && (VERSIONED.has(type) || mirrors);
  check(
    'version',
    versioned && !mirrors,
    (v) => versioned && typeof v === 'string' && isCanonicalVersion(v),
    versioned ? 'a SemVer version' : `no version (a ${type} names none)`,
  );
  // The registry's key and signature: a void's, and only a void's.
  const armored = (v: unknown) => isVoid && typeof v === 'string' && v.length > 0;
  check('key', isVoid, armored, isVoid ? 'an armored public key' : `no key (a ${type} carries none)`);
  check(
    'signature',
    isVoid,
    armored,
    isVoid ? 'an armored signature' : `no signature (a ${type} carries none)`,
  );
  check(
    'signer',
    true,
    // v4 or v6 (signing.ts): a client before v6 keys refuses an entry naming a 64-digit signer (LOG_MALFORMED).
    (v) => typeof v === 'string' && KEY_FINGERPRINT.test(v),
    KEY_FINGERPRINT_FORM,
  );
  check('digest', true, (v) => typeof v === 'string' && HEX64.test(v), 'a sha256 (64 hex digits)');
  check(
    'created',
    false,
    (v) => !isVoid && isTime(v),
    isVoid ? 'no created (a void is signed without one)' : 'an ISO 8601 time',
  );
  check('prev', true, (v) => typeof v === 'string' && HEX64.test(v), 'an entry hash (64 hex digits)');
  const detail = e.detail;
  if (detail !== undefined) {
    if (typeof detail !== 'object' || detail === null || Array.isArray(detail))
      problems.push('#/detail: expected an object of strings');
    else
      for (const [key, v] of Object.entries(detail)) {
        const at = `#/detail/${token(key)}`;
        if (!DETAIL_KEY.test(key)) problems.push(`${at}: not a field of an entry's detail`);
        else if (typeof v !== 'string') problems.push(`${at}: expected a string`);
        else if (key === 'effect' && v !== NO_EFFECT) problems.push(`${at}: expected "${NO_EFFECT}"`);
        else if (key === 'compromised' && v !== 'true') problems.push(`${at}: expected "true"`);
      }
  }
  if (isVoid) {
    const d = (typeof detail === 'object' && detail !== null ? detail : {}) as Record<string, unknown>;
    for (const key of Object.keys(d))
      if (!VOID_DETAIL.has(key))
        problems.push(
          `#/detail/${token(key)}: not a field of a void's detail (entry, hash, reason, registry)`,
        );
    const need = (key: string, ok: (v: string) => boolean, form: string) => {
      const v = d[key];
      if (v === undefined) problems.push(`#/detail/${key}: missing (expected ${form})`);
      else if (typeof v === 'string' && !ok(v)) problems.push(`#/detail/${key}: expected ${form}`);
    };
    need(
      'entry',
      (v) => COUNT.test(v) && Number.isSafeInteger(Number(v)),
      "the voided entry's seq (a count)",
    );
    need('hash', (v) => HEX64.test(v), "the voided entry's hash (64 hex digits)");
    need('reason', (v) => v.length > 0, 'why it never took effect (words)');
    need('registry', (v) => v.length > 0, 'the registry it is of (its URL, as its snapshots name it)');
  }
  return problems;
}

/**
 * Reads a segment: one entry per line, each of the form the pipeline writes. Order and links are
 * `verifyLogRange`'s.
 * @throws TrustError LOG_MALFORMED naming the segment and line, and every field of it that is not of its
 *   form by its JSON pointer (`log/000000.jsonl line 3#/detail/reason: expected a string`).
 */
export function parseSegment(bytes: Uint8Array, index: number): ReadEntry[] {
  const key = logSegmentKey(index);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return malformed(key, 'not UTF-8');
  }
  if (text.length === 0) return [];
  if (!text.endsWith('\n')) malformed(key, 'the last line is not complete');
  const lines = text.slice(0, -1).split('\n');
  if (lines.length > LOG_SEGMENT_ENTRIES) malformed(key, `more than ${LOG_SEGMENT_ENTRIES} entries`);
  return lines.map((line, i) => {
    const where = `${key} line ${i + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      return malformed(where, 'not JSON');
    }
    const problems = entryProblems(value);
    if (problems.length > 0)
      throw new TrustError('LOG_MALFORMED', problems.map((p) => `${where}${p}`).join('; '));
    return { entry: value as LogEntry, line, hash: lineHash(line) };
  });
}

/**
 * Checks that `entries` are exactly entries `from` to `to.length - 1` of a chain whose entry `from - 1`
 * hashes to `prev`, ending at `to.head`.
 * @throws TrustError LOG_TRUNCATED (fewer entries than the head counts), LOG_REORDERED (an entry out of its
 *   place), LOG_ENTRY_ALTERED (an entry whose hash its successor, or the head, does not name).
 */
export function verifyLogRange(
  entries: readonly ReadEntry[],
  options: { readonly from: number; readonly prev: string; readonly to: LogHead },
): void {
  const { from, to } = options;
  const expected = to.length - from;
  let prev = options.prev;
  for (const [i, read] of entries.slice(0, Math.max(expected, 0)).entries()) {
    const seq = from + i;
    if (read.entry.seq !== seq)
      throw new TrustError(
        'LOG_REORDERED',
        `log entry ${seq} holds entry ${read.entry.seq}: the log was reordered`,
      );
    if (read.entry.prev !== prev)
      throw new TrustError(
        'LOG_ENTRY_ALTERED',
        `log entry ${seq} does not follow entry ${seq - 1} (its prev is not that entry's hash): an entry was altered`,
      );
    prev = read.hash;
  }
  if (entries.length < expected)
    throw new TrustError(
      'LOG_TRUNCATED',
      `the log holds ${from + entries.length} entries where the snapshot counts ${to.length}: it was cut short`,
    );
  if (expected > 0 && prev !== to.head)
    throw new TrustError(
      'LOG_ENTRY_ALTERED',
      `log entry ${to.length - 1} does not hash to the head the snapshot signs: an entry was altered`,
    );
}

/**
 * How a new head stands to one a client remembers: `same`, or `extends` (then the caller fetches entries
 * from `remembered.length - 1` and checks them with `verifyExtension`).
 * @throws TrustError LOG_TRUNCATED (shorter, or gone), LOG_FORKED (as long, another head).
 */
export function compareLogHeads(remembered: LogHead, current: LogHead | undefined): 'same' | 'extends' {
  if (!current || current.length < remembered.length)
    throw new TrustError(
      'LOG_TRUNCATED',
      `the registry's log holds ${current?.length ?? 0} entries, fewer than the ${remembered.length} this client saw: its history was cut`,
    );
  if (current.length === remembered.length) {
    if (current.head !== remembered.head)
      throw new TrustError(
        'LOG_FORKED',
        `the registry's log of ${current.length} entries ends at ${current.head}, not at ${remembered.head} as this client saw it: its history was rewritten`,
      );
    return 'same';
  }
  return 'extends';
}

/**
 * Checks that the log at `current` extends the one a client remembered: `entries` start at entry
 * `remembered.length - 1` (the last one it saw, which must still hash to its head) when it saw any, else at 0.
 * @throws TrustError LOG_FORKED (the remembered entry changed), and what `verifyLogRange` throws.
 */
export function verifyExtension(remembered: LogHead, entries: readonly ReadEntry[], current: LogHead): void {
  if (remembered.length === 0) {
    verifyLogRange(entries, { from: 0, prev: ZERO_HASH, to: current });
    return;
  }
  const last = entries[0];
  if (!last || last.entry.seq !== remembered.length - 1 || last.hash !== remembered.head)
    throw new TrustError(
      'LOG_FORKED',
      `log entry ${remembered.length - 1} is not the one this client saw: the registry's history was rewritten`,
    );
  verifyLogRange(entries.slice(1), { from: remembered.length, prev: last.hash, to: current });
}

export function isLogHead(value: unknown): value is LogHead {
  const v = value as Partial<LogHead> | null;
  return (
    typeof v === 'object' &&
    v !== null &&
    Number.isSafeInteger(v.length) &&
    (v.length as number) >= 0 &&
    typeof v.head === 'string' &&
    HEX64.test(v.head)
  );
}

/** The schema a void's statement names: what the registry key signs for a void entry. */
export const VOID_SCHEMA = 'plugindex/log-void/v1';

/**
 * The text the registry key signs for a void (its sha256 is the entry's `digest`): the registry it is of (its
 * URL, as a key rotation names it: one key may sign for two registries, a staging copy of a production one
 * sharing its log's first entries, and neither's void may stand in the other's log, `checkVoids`), the entry
 * voided by its seq and hash (which chains to every entry before it, so the statement holds in this log
 * alone), what it named, why, when, and by which key. Rebuilt by every reader from the entry's own fields.
 */
export function voidStatement(
  entry: Pick<LogEntry, 'time' | 'signer' | 'plugin' | 'version' | 'detail'>,
): string {
  return stringifyJson({
    schema: VOID_SCHEMA,
    registry: entry.detail?.registry,
    entry: Number(entry.detail?.entry),
    hash: entry.detail?.hash,
    ...(entry.plugin !== undefined ? { plugin: entry.plugin } : {}),
    ...(entry.version !== undefined ? { version: entry.version } : {}),
    reason: entry.detail?.reason,
    time: entry.time,
    signer: entry.signer,
  });
}

/**
 * Refuses a void among `entries` (entries read past a head this client saw, of `seen` entries) that names an
 * entry that head counted. A void says an entry never took effect, and the pipeline must append it before any
 * snapshot vouches for the entry without it (one that did would vouch for an entry no document shows: `verify
 * --url` refuses it `LOG_DISAGREES`). So the registry's own signed head says an entry it counted stood then:
 * a void of it later would undo, with the registry key alone, a yank, a revocation or an owner's removal that
 * its signer signed and clients were shown. Only the entries' `detail.entry` is read: no target is needed, so
 * install and update (`readLogExtension`, which reads from the last entry seen) check it as `verify --url` does.
 * @throws TrustError LOG_VOID_OF_SEEN
 */
export function checkVoidsPastSeen(entries: readonly ReadEntry[], seen: number): void {
  for (const { entry } of entries) {
    if (entry.type !== 'void' || entry.seq < seen) continue;
    const n = Number(entry.detail?.entry);
    if (n < seen)
      throw new TrustError(
        'LOG_VOID_OF_SEEN',
        `log entry ${entry.seq} (void) voids entry ${n}, which the log of ${seen} entries this client saw (a head the registry signed) counted without a void: an entry a signed snapshot vouched for took effect, and is never voided after; refused, nothing kept: report it to the registry's operators`,
      );
  }
}

/**
 * The registry key at each void's place, by its seq: the signer of the first key rotation logged after it
 * (the key that rotation left), or the key that signs the snapshot now when none was logged since. One pass
 * from the last entry back, where a scan from the first per void was quadratic (a log of 100,000 entries, half
 * of them voids, took 98 s to check).
 */
function registryKeysOfVoids(entries: readonly ReadEntry[], current: string): ReadonlyMap<number, string> {
  const keys = new Map<number, string>();
  let key = current;
  for (let i = entries.length - 1; i >= 0; i--) {
    const { entry } = entries[i] as ReadEntry;
    if (entry.type === 'rotate-key') key = entry.signer;
    else if (entry.type === 'void') keys.set(entry.seq, key);
  }
  return keys;
}

/**
 * Replays the voids of `entries` (the whole log, from its first entry, checked by `verifyLogRange`: a void
 * is judged against the entry it names, so a part of the log cannot be judged alone; or, for the pipeline's
 * readers, which read from a segment's start to the head and use nothing before it, its entries from one
 * entry on, a void of an entry before them held to all but that entry's hash, type, plugin and version,
 * which the readers of the whole log check): each is of `registry`
 * (the registry the log is read as, as its snapshot names it; compared as `registryIdentity` spells them, as
 * a key rotation's is), names an earlier publish or action this log holds (by seq and hash, its plugin and version as that entry names them), not
 * one voided already, and is signed, by fingerprint, by the registry key at its place in the log
 * (`registryKey`: the key the snapshot is signed by now). The signature itself is `verifyVoidSignatures`'
 * (log-void.ts, which loads openpgp.js).
 * Returns the entries voided, by seq, with the void of each.
 * @throws TrustError LOG_VOID_OTHER_REGISTRY (of another registry), LOG_VOID_ENTRY_MISSING (no such entry, or not the one named), LOG_VOID_NOT_EARLIER (the
 *   void itself or an entry after it), LOG_VOID_REPEATED (voided already), LOG_VOID_OF_VOID (a void voided),
 *   LOG_VOID_OF_ROTATION (a key rotation voided), LOG_VOID_UNSIGNED (signed by another key). A void of an
 *   entry a head the client saw counted is `checkVoidsPastSeen`'s (LOG_VOID_OF_SEEN).
 */
export function checkVoids(
  entries: readonly ReadEntry[],
  options: { readonly registryKey: string; readonly registry: string },
): ReadonlyMap<number, LogEntry> {
  const from = entries[0]?.entry.seq ?? 0;
  const end = from + entries.length;
  const voided = new Map<number, LogEntry>();
  const keys = registryKeysOfVoids(entries, options.registryKey);
  for (const { entry } of entries) {
    if (entry.type !== 'void') continue;
    const n = Number(entry.detail?.entry);
    const where = `log entry ${entry.seq} (void)`;
    const fail = (code: ErrorCodeOfVoid, why: string): never => {
      throw new TrustError(code, `${where} ${why}`);
    };
    // First: another registry's void says nothing of this log, whatever entry it names (a staging copy's
    // log and its production one share their first entries, and may share the key too).
    const of = entry.detail?.registry as string;
    if (registryIdentity(of) !== registryIdentity(options.registry))
      fail(
        'LOG_VOID_OTHER_REGISTRY',
        `is a void of registry ${JSON.stringify(of)}, not of ${JSON.stringify(options.registry)}, this log's: another registry's void is never replayed here; refused, nothing kept: report it to the registry's operators`,
      );
    if (n >= end)
      fail('LOG_VOID_ENTRY_MISSING', `voids entry ${n}, which the log of ${end} entries does not hold`);
    if (n >= entry.seq) fail('LOG_VOID_NOT_EARLIER', `voids entry ${n}, not an entry before it`);
    const earlier = voided.get(n);
    if (earlier) fail('LOG_VOID_REPEATED', `voids entry ${n}, which entry ${earlier.seq} voided already`);
    const target = entries[n - from];
    if (target && target.hash !== entry.detail?.hash)
      fail(
        'LOG_VOID_ENTRY_MISSING',
        `voids entry ${n} of hash ${entry.detail?.hash}, but entry ${n} hashes to ${target.hash}`,
      );
    if (target?.entry.type === 'void')
      fail('LOG_VOID_OF_VOID', `voids entry ${n}, itself a void: a void is never undone`);
    if (target?.entry.type === 'rotate-key')
      fail('LOG_VOID_OF_ROTATION', `voids entry ${n}, a key rotation: a rotation is never undone`);
    if (target && (target.entry.plugin !== entry.plugin || target.entry.version !== entry.version))
      fail(
        'LOG_VOID_ENTRY_MISSING',
        `names ${entry.plugin ?? 'no plugin'} ${entry.version ?? ''}, but entry ${n} names ${target.entry.plugin ?? 'no plugin'} ${target.entry.version ?? ''}`.trimEnd(),
      );
    const key = keys.get(entry.seq) as string;
    if (entry.signer !== key)
      fail(
        'LOG_VOID_UNSIGNED',
        `is signed by ${entry.signer}, not by ${key}, the registry's key at that place in the log`,
      );
    voided.set(n, entry);
  }
  return voided;
}

/** The codes a void is refused by (errors.ts). */
type ErrorCodeOfVoid = Extract<ErrorCode, `LOG_VOID_${string}`>;
