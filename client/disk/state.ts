import { constants, realpathSync, type Stats } from 'node:fs';
import { lstat, mkdir, open, readdir, realpath, rename, rm, rmdir, stat } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { createSha256, sha256Hex } from '../../index-builder/digest.ts';
import { TrustError } from '../../index-builder/errors.ts';
import { keyProblem, versionFolder } from '../../index-builder/layout.ts';
import { isLogHead } from '../../index-builder/log.ts';
import type { LogHead } from '../../index-builder/model.ts';
import {
  type ClientConfig,
  EMPTY_CLIENT_CONFIG,
  parseClientConfig,
  type RegistryEntry,
  registryIdentity,
  serializeClientConfig,
} from '../config.ts';
import { ClientError } from '../errors.ts';
import {
  EMPTY_INSTALLED,
  INSTALLED_FILE,
  type InstalledFile,
  parseInstalled,
  serializeInstalled,
  setReference,
} from '../installed.ts';
import type { ChainLink, DepartedKey, RevokedKey } from '../key-chain.ts';
import { type Lockfile, parseLockfile, serializeLockfile } from '../lockfile.ts';
import type { ClientDirectories } from '../paths.ts';
import type { KeptThenFailed } from '../session.ts';
import {
  folderUnsafety,
  hashFileAt,
  judgeFolderPath,
  makeFolders,
  readTextIfExists,
  removeStaleTemps,
  tempPathFor,
  type UnsafeFolder,
  unsafeFolderOnPath,
  unsafeFolderWithin,
  vouchHint,
  withFileLock,
  writeFileAtomic,
} from './atomic.ts';
import { ANY_REGISTRY, TrustIndex, trustFolders } from './trust-index.ts';

/** A registry's trust state: its pinned key and what the client has accepted from it. */
export interface TrustRecord {
  readonly fingerprint: string;
  readonly armoredKey: string;
  readonly highestGeneration?: number;
  /** sha256 of the last snapshot verified, so a later run can tell its cached copy is that very snapshot. */
  readonly snapshotSha256?: string;
  /** When that snapshot was last checked with the registry (ISO 8601). */
  readonly checkedAt?: string;
  /**
   * The registry's transparency log as last accepted (its length and head hash): a later snapshot must
   * vouch for a log that extends it (session.ts). Absent until a snapshot carried one.
   */
  readonly log?: LogHead;
  /**
   * The log heads other names of the registry remembered (`SharedTrust.logs`) that `log` was checked to
   * extend when it was accepted (session.ts): a later head checked to extend `log` extends them too, so they
   * are not read from again. Checked again on every check, a head another name left behind cost a read of
   * every segment from it to the registry's head, as long as that name went unused.
   */
  readonly logsExtended?: readonly LogHead[];
  /**
   * The registry key rotations the pinned key is at (the `key_rotations` of the last snapshot it verified):
   * the next one to follow is `keys/rotation/<rotations + 1>.json`. Unknown for a key pinned by hand.
   */
  readonly rotations?: number;
  /** The keys pinned before this one, oldest first, each left through a verified rotation (client/key-chain.ts). */
  readonly chain?: readonly ChainLink[];
  /**
   * The registry the snapshots accepted name (their `registry`): a later one must name it too
   * (`checkSnapshotRegistry`). Absent until a snapshot was accepted with this kept.
   */
  readonly registry?: string;
  /**
   * The keys a lineage this name held before left, each with the key it went to (`retiredTo`), its
   * rotation's compromised mark, and the registry it was of (`registry`; absent: this record's): kept when
   * the name is added again with a key unrelated to it (`registry add --force NAME URL --key FILE`), and
   * through every such replacement since. A mark is a fact about a key, not about whichever key the name
   * pins next: dropped with the chain, a snapshot or rotation by the stolen key was taken again under any
   * name pinning it, this one too should it pin the old lineage again. Only these facts are kept: the old
   * lineage's floors and log are another registry's, which an unrelated key does not share.
   */
  readonly formerDepartures?: readonly FormerDeparture[];
  /**
   * Former departures that do not read (a field missing or of the wrong type), kept as found and written
   * back so on every write: each a mark, maybe, that this name alone holds. Dropped, the mark was forgotten;
   * refusing the whole record refused every check of the name and left every other name blind to the
   * marks that do read. Only the checks of the registry each may be of refuse (`sharedTrust`), naming it.
   */
  readonly damagedDepartures?: readonly DamagedDeparture[];
}

/** A former departure that does not read (`TrustRecord.damagedDepartures`). */
export interface DamagedDeparture {
  /** Where it is: the file and its JSON pointer (`…/state.json#/former_departures/2`). */
  readonly at: string;
  /** What is wrong with it, each field's problem with its pointer. */
  readonly problems: string;
  /**
   * Which checks it may bear on: those of the registry it names (`registry`, where that field reads), of
   * the record's own registry (`record`: it names none, as a departure naming none is read), or of any
   * registry that reads the record (`any`: its `registry` does not read, so nothing tells).
   */
  readonly scope: 'registry' | 'record' | 'any';
  readonly registry?: string;
  /** The entry as found, written back as it is. */
  readonly raw: unknown;
}

/** A key a lineage a name held before left (`TrustRecord.formerDepartures`). */
export interface FormerDeparture extends DepartedKey {
  /** The registry its snapshots named (as kept in its record); absent where that record named none. */
  readonly registry?: string;
}

/**
 * What every trust record of one registry under one trust root has accepted, whatever name it is kept under
 * (a configured registry, each plugin set's): the highest generation (with the name that accepted it) and
 * the log heads remembered. A session holds a snapshot to these as to its own record's (session.ts).
 */
export interface SharedTrust {
  readonly highestGeneration?: { readonly generation: number; readonly name: string };
  /** Each distinct log head remembered, in no particular order. */
  readonly logs: readonly LogHead[];
  /**
   * The keys a rotation one of these records followed retired as compromised (each a chain link with its
   * mark, and the key that rotation went to): a name that never followed that rotation still holds such a
   * key, and a snapshot it signs is the thief's to write, whatever its generation and log; so is a
   * rotation from it to any other key (`forkFromRevoked`). Read from every record of the registry holding
   * or having held a key `keys` holds or held, not only those of its trust root: a name the thief led
   * from the stolen key to a key of theirs shares no other key with the name that followed the mark.
   */
  readonly revoked?: readonly RevokedKey[];
  /**
   * Every key those records (as `revoked`'s) left, with the key each went to: a key is retired once, so a
   * chain leaving one for another key is signed by whoever holds it since, marked stolen or not.
   */
  readonly departures?: readonly DepartedKey[];
  /**
   * The keys a record of that trust root rotated away from (each the first name found and the generation
   * it accepted since, under a later key): the registry signs nothing with such a key after the rotation,
   * so a snapshot by it that passes the floor is its former holder's, whether the rotation was routine.
   */
  readonly retired?: readonly {
    readonly fingerprint: string;
    readonly name: string;
    readonly generation: number;
  }[];
}

/**
 * Whether `other` is of the same trust root as a record pinning `keys` (its key, then those it rotated
 * from): `other` pins one of them, or rotated from the key pinned now. A key pinned by hand under another
 * name is another trust root (it may be a wrong pin, or a forger's): what it accepted binds nothing else.
 */
function isSameTrustRoot(
  other: TrustRecord,
  keys: { readonly fingerprint: string; readonly chain?: readonly ChainLink[] },
): boolean {
  if (other.fingerprint === keys.fingerprint) return true;
  if ((keys.chain ?? []).some((link) => link.fingerprint === other.fingerprint)) return true;
  return (other.chain ?? []).some((link) => link.fingerprint === keys.fingerprint);
}

/**
 * Whether `other` holds or held a key `keys` holds or held: one key both chains passed through is enough
 * for what `other` knows of that key (a compromised mark) to count, where its floors need `isSameTrustRoot`.
 */
function sharesAKey(
  other: TrustRecord,
  keys: { readonly fingerprint: string; readonly chain?: readonly ChainLink[] },
): boolean {
  const held = new Set([keys.fingerprint, ...(keys.chain ?? []).map((link) => link.fingerprint)]);
  return [other.fingerprint, ...(other.chain ?? []).map((link) => link.fingerprint)].some((f) => held.has(f));
}

/** `chain`, each link lacking its rotation's number given what `known`'s link of that key learnt of it. */
function withRetirementsKept(
  chain: readonly ChainLink[] | undefined,
  known: readonly ChainLink[] | undefined,
): readonly ChainLink[] | undefined {
  if (!chain || !known) return chain;
  return chain.map((link) => {
    if (link.retiredBy !== undefined) return link;
    return known.find((k) => k.fingerprint === link.fingerprint && k.retiredBy !== undefined) ?? link;
  });
}

/** The keys `held`'s chain left, each with the key the chain went to next. */
function departuresOf(held: TrustRecord): DepartedKey[] {
  const chain = held.chain ?? [];
  return chain.map((link, i) => ({ ...link, retiredTo: chain[i + 1]?.fingerprint ?? held.fingerprint }));
}

/** Whether `a` and `b` say the same departure: the same key left for the same key, of the same registry. */
function isSameDeparture(a: FormerDeparture, b: FormerDeparture): boolean {
  return a.fingerprint === b.fingerprint && a.retiredTo === b.retiredTo && a.registry === b.registry;
}

/**
 * `kept`'s former departures, then (`replaced`, a record `kept` gives way to with a key unrelated to its
 * lineage) the keys `kept`'s own chain left, of the registry it named, or, for one kept before records
 * named their registry, of `otherwise` (the registry its name was of: `writeTrust`'s `formerRegistry`):
 * each once, the link that learnt its rotation's mark kept over one that did not.
 */
function formerDeparturesOf(
  kept: TrustRecord | undefined,
  replaced: boolean,
  otherwise?: string,
): FormerDeparture[] {
  const of = kept?.registry ?? otherwise;
  return uniqueDepartures([
    ...(kept?.formerDepartures ?? []),
    ...(kept && replaced
      ? departuresOf(kept).map((d) => ({ ...d, ...(of !== undefined ? { registry: of } : {}) }))
      : []),
  ]);
}

/** `departures`, each once in the order first met, the one that learnt its rotation's mark kept over one that did not. */
function uniqueDepartures(departures: readonly FormerDeparture[]): FormerDeparture[] {
  const out: FormerDeparture[] = [];
  for (const d of departures) {
    const i = out.findIndex((o) => isSameDeparture(o, d));
    if (i < 0) out.push(d);
    else if (d.compromised === true && out[i]?.compromised !== true) out[i] = d;
  }
  return out;
}

/** `record` with `former` as its former departures (with its own, each once); none kept: as it was. */
function withFormerDepartures(record: TrustRecord, former: readonly FormerDeparture[]): TrustRecord {
  const merged = uniqueDepartures([...former, ...(record.formerDepartures ?? [])]);
  return merged.length > 0 ? { ...record, formerDepartures: merged } : record;
}

/**
 * `record` with `damaged` as its damaged former departures (with its own, each entry once, as found): kept
 * through every write, so a mark that does not read is never dropped by one.
 */
function withDamagedDepartures(record: TrustRecord, damaged: readonly DamagedDeparture[]): TrustRecord {
  const merged: DamagedDeparture[] = [];
  const seen = new Set<string>();
  for (const d of [...(record.damagedDepartures ?? []), ...damaged]) {
    const raw = JSON.stringify(d.raw) ?? 'undefined';
    if (!seen.has(raw)) merged.push(d);
    seen.add(raw);
  }
  const { damagedDepartures: _d, ...rest } = record;
  return merged.length > 0 ? { ...rest, damagedDepartures: merged } : rest;
}

/**
 * Whether a former departure kept as of the registry `of` bears on a check of `registry` (the one its
 * snapshot signs for, and the URL it was `reached` at, as `registryIdentity` spells them): `of` names
 * either. One of a record kept before records named their registry may be kept as of the URL it was
 * configured at, a mirror's maybe (`Client`'s fallback where no snapshot verified tells the registry;
 * `writeTrust`'s `formerRegistry`, `removeTrust`'s `url`): read by the checks of the registry's own name
 * alone, its mark was read by none, and the mirror's own copy signed by the stolen key was taken again.
 * Read as marks and departures only, never a floor: what they do is refuse a key they name.
 */
function isDepartureOf(
  of: string,
  registry: {
    readonly signed: string;
    readonly reached: readonly string[];
    readonly mirrors?: readonly string[];
  },
): boolean {
  const identity = registryIdentity(of);
  return (
    identity === registry.signed ||
    registry.reached.includes(identity) ||
    (registry.mirrors ?? []).includes(identity)
  );
}

/**
 * The URLs a check may reach its registry at, as `sharedTrust` is given them: the first is the URL reached
 * (the configured entry's, a set provider's, or the one a frozen install fetches under), which may tell a
 * record kept before records named their registry (`isOfRegistry`); the others (the name's mirrors, one of
 * which may have served the request, and each URL a redirect led a session's snapshot request to or through,
 * or the last request for the cached snapshot, kept with it) only whose
 * marks are read (`isDepartureOf`). A mark kept as of a URL
 * another name lists only as a mirror was read by neither online nor frozen checks of that name, and the
 * mirror (or the main URL) serving the stolen key's copy was taken. Mirrors never tell a record's registry:
 * its floors and log heads would then bind a registry only the configuration says the mirror serves, while
 * a mark, read wrongly, only refuses a key the thief may hold anyway.
 */
export type ReachedAt = string | readonly string[];

function reachedIdentity(
  registry: string,
  reached: ReachedAt | undefined,
): { signed: string; reached: string[]; mirrors: string[] } {
  const urls = (reached === undefined ? [] : typeof reached === 'string' ? [reached] : [...reached]).map(
    registryIdentity,
  );
  return { signed: registryIdentity(registry), reached: urls.slice(0, 1), mirrors: urls.slice(1) };
}

/**
 * The damaged former departures of `record` that may bear on a check (`isDepartureOf`): those naming its
 * registry, those naming none where the record is of it (`own`), and those whose registry does not read.
 */
function damagedBearingOn(
  record: TrustRecord,
  registry: {
    readonly signed: string;
    readonly reached: readonly string[];
    readonly mirrors?: readonly string[];
  },
  own: boolean,
): DamagedDeparture[] {
  // One naming none is of the record's registry, as a departure that reads and names none is read.
  return (record.damagedDepartures ?? []).filter((d) =>
    d.scope === 'registry' ? isDepartureOf(d.registry ?? '', registry) : d.scope === 'any' || own,
  );
}

/**
 * TRUST_STATE_INVALID for former departures that do not read, kept by `owner` (`trust/NAME`, or the names
 * removed): each with its file and pointer, and how to mend it (in `mendIn`). A mark is a fact about a key: read as none, a stolen key's was
 * forgotten; so the checks it may bear on refuse until it is mended or deleted by hand.
 */
export function damagedDeparturesError(
  owner: string,
  damaged: readonly DamagedDeparture[],
  mendIn = `its state.json and in ${FORMER_DEPARTURES_FILE} beside it`,
): ClientError {
  const one = damaged.length === 1;
  return new ClientError(
    'TRUST_STATE_INVALID',
    `${damaged.map((d) => d.problems).join('; ')}: ${one ? 'a key' : 'keys'} ${owner} knew of (a former ` +
      `departure, which may mark a key stolen) ${one ? 'does' : 'do'} not read, so what it would refuse ` +
      'cannot be told; mend each entry ({"fingerprint", "key", "retired_to"} strings, "retired_by" the ' +
      `rotation number, "compromised": true, "registry" the registry's URL) in ${mendIn}, or delete it ` +
      'there to forget what it kept',
  );
}

/** Whether `record` kept a former departure of, or to, a key `keys` holds or held. */
function departedFromAKey(
  record: TrustRecord,
  keys: { readonly fingerprint: string; readonly chain?: readonly ChainLink[] },
): boolean {
  const held = new Set([keys.fingerprint, ...(keys.chain ?? []).map((link) => link.fingerprint)]);
  return (record.formerDepartures ?? []).some((d) => held.has(d.fingerprint) || held.has(d.retiredTo));
}

/**
 * The name a plugin set's registry (pinned by URL and key, not configured) keeps its trust state under.
 * `url` as `normalizeRegistryUrl` writes it; `fingerprint` the key the set pins.
 */
export function setTrustName(url: string, fingerprint: string): string {
  return `set-${sha256Hex(`${url}\n${fingerprint}`).slice(0, 16)}`;
}

/**
 * Whether the record kept as `name` is of the registry `identity` spells. A record names it (`registry`)
 * since the client pinned which registry a key signs for; one kept before is told by its name: a
 * configured registry's by the URL configured, a plugin set's by its name, made of the URL and key the set
 * pins (`setTrustName`). Any other (a manifest URL's pin) is of no registry.
 */
function isOfRegistry(
  name: string,
  record: TrustRecord,
  registry: { readonly signed: string; readonly reached: readonly string[] },
  configured: readonly RegistryEntry[],
): boolean {
  if (record.registry !== undefined) return registryIdentity(record.registry) === registry.signed;
  // Its URL is where it was reached, which may be a mirror's: the same URL reached now, or the registry's own.
  const urls = [registry.signed, ...registry.reached];
  const entry = configured.find((r) => r.name === name);
  if (entry) return urls.includes(registryIdentity(entry.url));
  const keys = [record.fingerprint, ...(record.chain ?? []).map((link) => link.fingerprint)];
  return urls.some((url) => keys.some((fingerprint) => setTrustName(url, fingerprint) === name));
}

/**
 * The registries the index lists `record` under: the one it names, or none (one kept before records named
 * it), and those its former departures name (those that do not read too, where their registry reads),
 * whose checks read what it knows of their keys; and every registry (`ANY_REGISTRY`) where a former
 * departure's registry does not read: listed under its own alone, the checks of the registry it was of
 * never read it, and went on blind to the mark.
 */
function indexedRegistries(record: TrustRecord): string[] {
  const any = (record.damagedDepartures ?? []).some((d) => d.scope === 'any') ? [ANY_REGISTRY] : [];
  // One kept before records named their registry is listed under none, read as its name tells it.
  if (record.registry === undefined) return any;
  const own = [registryIdentity(record.registry)];
  const former = [...(record.formerDepartures ?? []), ...(record.damagedDepartures ?? [])].flatMap((d) =>
    d.registry === undefined ? [] : [registryIdentity(d.registry)],
  );
  return [...new Set([...own, ...former, ...any])];
}

/** `state.json` of `record`, its highest generation `highest` (none when 0). */
function trustStateJson(record: TrustRecord, highest: number): string {
  const state = {
    fingerprint: record.fingerprint,
    ...(highest > 0 ? { highest_generation: highest } : {}),
    ...(record.snapshotSha256 ? { snapshot_sha256: record.snapshotSha256 } : {}),
    ...(record.checkedAt ? { checked_at: record.checkedAt } : {}),
    // Not merged with what was kept: the record's session judged it against that (or it is kept's own).
    ...(record.log ? { log: { length: record.log.length, head: record.log.head } } : {}),
    ...(record.log && record.logsExtended?.length
      ? { logs_extended: record.logsExtended.map((l) => ({ length: l.length, head: l.head })) }
      : {}),
    ...(record.rotations !== undefined ? { rotations: record.rotations } : {}),
    ...(record.chain?.length
      ? {
          chain: record.chain.map((l) => ({
            fingerprint: l.fingerprint,
            key: l.armoredKey,
            ...(l.retiredBy !== undefined ? { retired_by: l.retiredBy } : {}),
            ...(l.compromised ? { compromised: true } : {}),
            ...(l.askedAt !== undefined ? { asked_at: l.askedAt } : {}),
          })),
        }
      : {}),
    ...(record.registry !== undefined ? { registry: record.registry } : {}),
    ...(record.formerDepartures?.length || record.damagedDepartures?.length
      ? { former_departures: keptDeparturesJson(record) }
      : {}),
  };
  return `${JSON.stringify(state, null, 2)}\n`;
}

/** `record`'s former departures as `state.json` and `former.json` hold them: those that do not read as found. */
function keptDeparturesJson(record: TrustRecord): unknown[] {
  return [
    ...formerDeparturesJson(record.formerDepartures ?? []),
    ...(record.damagedDepartures ?? []).map((d) => d.raw),
  ];
}

/**
 * Former departures as `state.json#/former_departures`, `former.json` (`FORMER_DEPARTURES_FILE`) and
 * `REMOVED_DEPARTURES_FILE` hold them.
 */
function formerDeparturesJson(departures: readonly FormerDeparture[]): Record<string, unknown>[] {
  return departures.map((d) => ({
    fingerprint: d.fingerprint,
    key: d.armoredKey,
    retired_to: d.retiredTo,
    ...(d.retiredBy !== undefined ? { retired_by: d.retiredBy } : {}),
    ...(d.compromised ? { compromised: true } : {}),
    ...(d.registry !== undefined ? { registry: d.registry } : {}),
  }));
}

/**
 * The file under the trust root keeping what names removed (`registry remove`) knew of keys: the keys their
 * records' chains left, each with the key it went to, its compromised mark and its registry, and the former
 * departures they kept, as `{"former_departures": [...]}`. A mark is a fact about a key, not about a name:
 * removed with the name's folder, the stolen key's snapshots were taken again once the registry was added
 * back by that key (`registry remove`, then `registry add` with the old key file). Only these facts are
 * kept: the removed name's floors, log head and pin are forgotten with it. Its name starts with `.`, so no
 * reader of the trust folders (`trustFolders`) takes it for a name.
 */
export const REMOVED_DEPARTURES_FILE = '.removed-departures.json';

/**
 * The file beside `state.json` holding a copy of its former departures. A client before them reads
 * `state.json` and, at its next check, writes it again from the fields it knows: run after a downgrade, it
 * dropped the stolen key's mark, and the client run again after it trusted that key's snapshots under any
 * name pinning it. No client before them writes this file, so what it holds is read back.
 */
const FORMER_DEPARTURES_FILE = 'former.json';

/**
 * `state.json#/chain`: each link `{fingerprint, key}`, with `retired_by` (the rotation that retired it; a
 * link an older client kept has none), `compromised` (true: that rotation says the key is no longer
 * secret) and `asked_at` (when a link without `retired_by` last had its rotation asked for, and learnt
 * nothing: `learnRetirements` asks again a day later; one that is no time is asked at once).
 */
function parseChain(value: unknown, file: string): ChainLink[] {
  if (!Array.isArray(value))
    throw new ClientError('TRUST_STATE_INVALID', `${file}#/chain: expected a list of earlier keys`);
  return value.map(
    (
      link: {
        fingerprint?: unknown;
        key?: unknown;
        retired_by?: unknown;
        compromised?: unknown;
        asked_at?: unknown;
      } | null,
      i,
    ) => {
      if (typeof link?.fingerprint !== 'string' || typeof link.key !== 'string')
        throw new ClientError(
          'TRUST_STATE_INVALID',
          `${file}#/chain/${i}: expected {fingerprint, key} strings`,
        );
      const retiredBy = link.retired_by;
      if (retiredBy !== undefined && !(Number.isSafeInteger(retiredBy) && (retiredBy as number) >= 1))
        throw new ClientError(
          'TRUST_STATE_INVALID',
          `${file}#/chain/${i}/retired_by: expected the number of the rotation that retired the key`,
        );
      if (link.compromised !== undefined && link.compromised !== true)
        throw new ClientError('TRUST_STATE_INVALID', `${file}#/chain/${i}/compromised: expected true`);
      return {
        fingerprint: link.fingerprint,
        armoredKey: link.key,
        ...(retiredBy !== undefined ? { retiredBy: retiredBy as number } : {}),
        ...(link.compromised === true ? { compromised: true as const } : {}),
        // Only when to ask again: one that is no time is dropped, and asked for at this check.
        ...(typeof link.asked_at === 'string' && !Number.isNaN(Date.parse(link.asked_at))
          ? { askedAt: link.asked_at }
          : {}),
      };
    },
  );
}

/**
 * `state.json#/former_departures` (and `former.json`, `REMOVED_DEPARTURES_FILE`): each `{fingerprint, key,
 * retired_to}`, with `retired_by`, `compromised` (true) and `registry` as a chain link and its record name
 * them. Those that do not read are set apart (`damaged`, each with its pointer under `at`, its problems
 * and the registry it names where that reads) rather than refused: each refuses only the checks it may
 * bear on (`sharedTrust`), and is written back as found. A list that is no list is refused whole
 * (TRUST_STATE_INVALID): nothing of it can be told.
 */
function readFormerDepartures(
  value: unknown,
  at: string,
): { departures: FormerDeparture[]; damaged: DamagedDeparture[] } {
  if (!Array.isArray(value))
    throw new ClientError('TRUST_STATE_INVALID', `${at}: expected a list of keys a lineage held before left`);
  const departures: FormerDeparture[] = [];
  const damaged: DamagedDeparture[] = [];
  value.forEach((d: Record<string, unknown> | null, i) => {
    const problems: string[] = [];
    for (const field of ['fingerprint', 'key', 'retired_to'])
      if (d?.[field] === undefined) problems.push(`${at}/${i}/${field}: missing`);
      else if (typeof d[field] !== 'string') problems.push(`${at}/${i}/${field}: expected a string`);
    const retiredBy = d?.retired_by;
    if (retiredBy !== undefined && !(Number.isSafeInteger(retiredBy) && (retiredBy as number) >= 1))
      problems.push(`${at}/${i}/retired_by: expected the number of the rotation that retired the key`);
    if (d?.compromised !== undefined && d.compromised !== true)
      problems.push(`${at}/${i}/compromised: expected true`);
    if (d?.registry !== undefined && typeof d.registry !== 'string')
      problems.push(`${at}/${i}/registry: expected the registry's URL as its snapshots named it`);
    if (problems.length > 0 || !d || typeof d !== 'object') {
      const named = d !== null && typeof d === 'object' ? d.registry : undefined;
      damaged.push({
        at: `${at}/${i}`,
        problems: problems.join('; ') || `${at}/${i}: expected an object`,
        raw: d,
        ...(typeof named === 'string'
          ? { scope: 'registry' as const, registry: named }
          : { scope: named === undefined ? ('record' as const) : ('any' as const) }),
      });
      return;
    }
    departures.push({
      fingerprint: d.fingerprint as string,
      armoredKey: d.key as string,
      retiredTo: d.retired_to as string,
      ...(retiredBy !== undefined ? { retiredBy: retiredBy as number } : {}),
      ...(d.compromised === true ? { compromised: true as const } : {}),
      ...(typeof d.registry === 'string' ? { registry: d.registry } : {}),
    });
  });
  return { departures, damaged };
}

/** A trust file's JSON (`state.json`, `former.json`, `REMOVED_DEPARTURES_FILE`): TRUST_STATE_INVALID when it is not, `remedy` added. */
function trustJson(text: string, file: string, remedy = ''): unknown {
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new ClientError('TRUST_STATE_INVALID', `${file} is not JSON${remedy}`, { cause });
  }
}

/**
 * CONFIG_PATH_UNSAFE or DATA_PATH_UNSAFE for `unsafe`, a folder on the way to or inside `folder` (the config
 * folder, or a trust folder in the data folder).
 */
function unsafeStateError(kind: 'config' | 'data', unsafe: UnsafeFolder, folder: string): ClientError {
  const [code, what, variable] =
    kind === 'config'
      ? ([
          'CONFIG_PATH_UNSAFE',
          'a config.json of their own (registries, keys)',
          'PLUGINDEX_CONFIG_HOME',
        ] as const)
      : ([
          'DATA_PATH_UNSAFE',
          'trust records of their own (a pinned key, a floor)',
          'PLUGINDEX_DATA_HOME',
        ] as const);
  return new ClientError(
    code,
    `${unsafe.at} is ${unsafe.why}: another user could put ${what} in ${folder}, or swap a folder under it ` +
      `for a symbolic link while plugindex writes there, so nothing there is read or written. Make it yours ` +
      `and writable by you alone (chown, chmod go-w), or set ${variable} to a folder that is; or, ${vouchHint(unsafe.at)}`,
  );
}

export class ClientState {
  readonly dirs: ClientDirectories;
  readonly #index: TrustIndex;
  /**
   * The index being caught up with the folders by this process, shared by the checks that start meanwhile:
   * `registry update` checks every registry at once, and after an upgrade each read every folder to build it.
   */
  #catchingUp: Promise<Map<string, string[]>> | undefined;

  constructor(dirs: ClientDirectories) {
    this.dirs = dirs;
    this.#index = new TrustIndex(this.#trustRoot);
  }

  get #trustRoot(): string {
    return join(this.dirs.data, 'trust');
  }

  get configFile(): string {
    return join(this.dirs.config, 'config.json');
  }

  /**
   * Refuses to read or write what is kept in `folder` (the config folder, or one in the data folder's
   * `trust/`) where it, or a folder above it, is one another user may change (`unsafeFolderOnPath`, as the
   * cache and install folders are judged): they could put a config.json or trust records of their own there
   * (a registry's URL, a pinned key, a floor, a mark dropped: nothing the client reads there is signed), or
   * swap a folder for a link between a check and a write. OpenSSH's StrictModes refuses to read a user's
   * authorized_keys so. Read as well as written, as the planted file needs no race. `within`: the folders
   * in `folder` too, before a recursive rm of its entries (which follows one swapped for a link mid-walk).
   * @returns whether `folder` was there whole (`judgeFolderPath`): a reader reads nothing where it was not,
   *   as another user may have made it, theirs, under /tmp since.
   * @throws ClientError CONFIG_PATH_UNSAFE or DATA_PATH_UNSAFE naming the folder and why.
   */
  async #refuseUnsafeFolder(
    kind: 'config' | 'data',
    folder: string,
    options: { readonly within?: boolean } = {},
  ): Promise<boolean> {
    const judged = await judgeFolderPath(folder);
    const unsafe = judged.unsafe ?? (options.within ? await unsafeFolderWithin(folder) : undefined);
    if (unsafe) throw unsafeStateError(kind, unsafe, folder);
    return judged.whole;
  }

  /**
   * `#refuseUnsafeFolder` of a name's trust folder `dir` where the trust root and the folders above it were
   * judged already (a caller reading every name's record): the folder itself alone, lstat-ed, or, a link,
   * the whole real path it leads to. Judged whole, each of 200 names cost the root's chain again (sharedTrust
   * over 200 names of one registry: 57 ms unjudged, about 170 ms judged whole, 63 ms so).
   * @returns whether it was there (whole): nothing is read from one that was not (`#refuseUnsafeFolder`).
   */
  async #refuseUnsafeTrustFolder(dir: string): Promise<boolean> {
    const info = await lstat(dir).catch(() => undefined);
    if (info === undefined) return false;
    // A link, or a name of more than one part (none is made so), judged whole.
    if (info.isSymbolicLink() || dirname(dir) !== this.#trustRoot)
      return this.#refuseUnsafeFolder('data', dir);
    const why = folderUnsafety(info, dir);
    if (why !== undefined) throw unsafeStateError('data', { at: dir, why }, dir);
    return true;
  }

  /**
   * `#refuseUnsafeFolder` of a trust folder `dir` again, once the lock has made it and the folders missing
   * above it: judged before, a folder not there yet was none, and under a sticky folder (/tmp) another user
   * could make one first, theirs, between that check and the lock's mkdir (which takes a folder already
   * there); the record was then written in it, the judgment inside the lock (`#trustJudged`'s) looking at
   * the name's folder alone, and its failure read as no record. The cache judges so, before and after.
   */
  async #refuseMadeByAnother(dir: string): Promise<void> {
    await this.#refuseUnsafeFolder('data', dir);
  }

  get defaultInstallDir(): string {
    return join(this.dirs.data, 'plugins');
  }

  async readConfig(): Promise<ClientConfig> {
    // Not there when judged, there is none: one there now another user may have made since (under /tmp).
    if (!(await this.#refuseUnsafeFolder('config', this.dirs.config))) return EMPTY_CLIENT_CONFIG;
    const text = await readTextNotFolder(this.configFile, 'CLIENT_CONFIG_INVALID', 'the configuration');
    return text === undefined ? EMPTY_CLIENT_CONFIG : parseClientConfig(text, this.configFile);
  }

  /** Edits the configuration under its lock, so two `registry add` never lose one another's entry. */
  async editConfig<T>(
    edit: (config: ClientConfig) => Promise<{ config: ClientConfig; result: T }>,
  ): Promise<T> {
    await this.#refuseUnsafeFolder('config', this.dirs.config);
    return withFileLock(this.configFile, async () => {
      const before = await this.readConfig();
      const { config, result } = await edit(before);
      if (config !== before)
        await writeFileAtomic(this.configFile, serializeClientConfig(config), { mode: 0o600 });
      return result;
    });
  }

  #trustDir(registry: string): string {
    return join(this.#trustRoot, registry);
  }

  async trust(registry: string): Promise<TrustRecord | undefined> {
    if (!(await this.#refuseUnsafeFolder('data', this.#trustDir(registry)))) return undefined;
    return this.#trustJudged(registry);
  }

  /** `trust` where the trust root was judged already: only the name's own folder is (`#refuseUnsafeTrustFolder`). */
  async #trustJudged(registry: string): Promise<TrustRecord | undefined> {
    const dir = this.#trustDir(registry);
    if (!(await this.#refuseUnsafeTrustFolder(dir))) return undefined;
    const [armoredKey, state, former] = await Promise.all([
      readTextIfExists(join(dir, 'registry.asc')),
      readTextIfExists(join(dir, 'state.json')),
      readTextIfExists(join(dir, FORMER_DEPARTURES_FILE)),
    ]);
    if (armoredKey === undefined || state === undefined) return undefined;
    // `former.json` is refused whole when it is no JSON list, as `state.json`'s list is; an entry of either
    // that does not read is kept apart (`damagedDepartures`), refusing only the checks it may bear on.
    const formerFile = join(dir, FORMER_DEPARTURES_FILE);
    const kept =
      former === undefined
        ? { departures: [], damaged: [] }
        : readFormerDepartures(trustJson(former, formerFile), `${formerFile}#`);
    const parsed = trustJson(state, join(dir, 'state.json')) as {
      fingerprint?: unknown;
      highest_generation?: unknown;
      snapshot_sha256?: unknown;
      checked_at?: unknown;
      log?: unknown;
      logs_extended?: unknown;
      rotations?: unknown;
      chain?: unknown;
      registry?: unknown;
      former_departures?: unknown;
    };
    if (typeof parsed.fingerprint !== 'string')
      throw new TrustError(
        'SNAPSHOT_MALFORMED',
        `${join(dir, 'state.json')}#/fingerprint: expected a string`,
      );
    // A damaged head must not pass as none: that would trust whatever log comes next, on first use again.
    if (parsed.log !== undefined && !isLogHead(parsed.log))
      throw new ClientError(
        'TRUST_STATE_INVALID',
        `${join(dir, 'state.json')}#/log: expected {"length": a count, "head": 64 hex digits}`,
      );
    // Likewise a damaged pin of the registry's name must not pass as none.
    if (parsed.registry !== undefined && typeof parsed.registry !== 'string')
      throw new ClientError(
        'TRUST_STATE_INVALID',
        `${join(dir, 'state.json')}#/registry: expected the registry's URL as its snapshots name it`,
      );
    const record: TrustRecord = {
      fingerprint: parsed.fingerprint,
      armoredKey,
      ...(Number.isInteger(parsed.highest_generation)
        ? { highestGeneration: parsed.highest_generation as number }
        : {}),
      ...(typeof parsed.snapshot_sha256 === 'string' ? { snapshotSha256: parsed.snapshot_sha256 } : {}),
      ...(typeof parsed.checked_at === 'string' ? { checkedAt: parsed.checked_at } : {}),
      ...(parsed.log !== undefined ? { log: { length: parsed.log.length, head: parsed.log.head } } : {}),
      // Only with the head they were checked against; one that does not read as a head is checked again.
      ...(parsed.log !== undefined && Array.isArray(parsed.logs_extended)
        ? {
            logsExtended: parsed.logs_extended
              .filter(isLogHead)
              .map((head) => ({ length: head.length, head: head.head })),
          }
        : {}),
      ...(Number.isSafeInteger(parsed.rotations) && (parsed.rotations as number) >= 0
        ? { rotations: parsed.rotations as number }
        : {}),
      ...(parsed.chain !== undefined ? { chain: parseChain(parsed.chain, join(dir, 'state.json')) } : {}),
      ...(typeof parsed.registry === 'string' ? { registry: parsed.registry } : {}),
    };
    const own =
      parsed.former_departures !== undefined
        ? readFormerDepartures(parsed.former_departures, `${join(dir, 'state.json')}#/former_departures`)
        : { departures: [], damaged: [] };
    // Those a client before them dropped from state.json since, read back from their copy.
    return withDamagedDepartures(
      withFormerDepartures(
        own.departures.length > 0 ? { ...record, formerDepartures: own.departures } : record,
        kept.departures,
      ),
      [...own.damaged, ...kept.damaged],
    );
  }

  /**
   * Writes `record`'s `state.json` (its highest generation `highest`), its former departures' copy first
   * (`FORMER_DEPARTURES_FILE`): a crash between the two leaves the copy ahead, and what it adds is a fact
   * about a key either way. A record keeping none has no copy.
   */
  async #writeState(dir: string, record: TrustRecord, highest: number): Promise<void> {
    const copy = join(dir, FORMER_DEPARTURES_FILE);
    if (record.formerDepartures?.length || record.damagedDepartures?.length)
      await writeFileAtomic(copy, `${JSON.stringify(keptDeparturesJson(record), null, 2)}\n`);
    else await rm(copy, { force: true });
    await writeFileAtomic(join(dir, 'state.json'), trustStateJson(record, highest));
  }

  /**
   * Pins a key (at `registry add`, or followed through a rotation) or records a newer generation; never
   * lowers the generation kept under the same key, nor goes back to an older snapshot's record (its digest,
   * its check, its log head) over a newer one's, nor to a key the record rotated away from, nor drops what
   * a link of the chain learnt of its rotation. The key file first, then the state naming it. `replacing`:
   * a registry added again afresh (`registry add --force`, another URL or an unrelated key), whose record
   * is the one given, whatever was kept, but for what it knew of keys: the keys the kept record's chain
   * left (a compromised mark with them) and those it kept from before are kept as its former departures
   * (`TrustRecord.formerDepartures`), here as on every write. `formerRegistry`: the registry the record
   * replaced was of where it names none (kept before records named their registry), which its departures
   * are kept as of: kept of none, they were read for no registry, and another name pinning the stolen key
   * took its snapshots again (`Client.addRegistry` gives the registry its last snapshot named, or the URL
   * it was configured at).
   * @returns the fingerprint of the key the record holds now: the one given, or, where the record stands,
   *   the key it followed to since, which a configuration names (a caller naming the key given named back
   *   one the record had rotated away from).
   * @throws what failed; after the record was written too (`keepTrust` says which).
   */
  async writeTrust(
    registry: string,
    given: TrustRecord,
    options: { readonly replacing?: boolean; readonly formerRegistry?: string } = {},
  ): Promise<string> {
    const { fingerprint, failure } = await this.keepTrust(registry, given, options);
    if (failure) throw failure.keptThenFailed;
    return fingerprint;
  }

  /**
   * `writeTrust`, telling a failure after the record was written (the trust index's last step, dropping the
   * registries the record is no longer of) from one before: `failure`, with the key the record holds. The
   * record is then the name's, whatever the caller does next: a session that took such a failure as the
   * record's stayed on the key the record left, following the rotation again at each read, while the files
   * and any new client held the new one, and its configuration was never told. Not undone instead: the index
   * only says where to look (trust-index.ts), so one listing a record under a registry it left too costs a
   * read, and the next write drops it; nor put first, which would leave the registry the record still names
   * without it. A failure before the record is written is thrown, nothing changed.
   */
  async keepTrust(
    registry: string,
    given: TrustRecord,
    options: { readonly replacing?: boolean; readonly formerRegistry?: string } = {},
  ): Promise<{ readonly fingerprint: string; readonly failure?: KeptThenFailed }> {
    const dir = this.#trustDir(registry);
    await this.#refuseUnsafeFolder('data', dir);
    return withFileLock(join(dir, 'state.json'), async () => {
      await this.#refuseMadeByAnother(dir);
      const before = await this.#trustJudged(registry).catch(() => undefined);
      // Two runs side by side, the one that began under a key the other then followed a rotation away from
      // saving last: written as given, it put back the retired key as the pin (a stolen one too, its mark
      // dropped with the chain), the floor and log head of its older snapshot, and a configured registry's
      // next run was REGISTRY_NOT_PINNED. A retired key never comes back (followRotations): the record stands,
      // but for what the slower run's links learnt of their rotations (a compromised mark): dropped with its
      // record, the stolen key was trusted for what it signed until a check learnt it again.
      if (!options.replacing && before?.chain?.some((link) => link.fingerprint === given.fingerprint)) {
        const learnt = withRetirementsKept(before.chain, given.chain);
        if (learnt?.some((link, i) => link !== before.chain?.[i]))
          await this.#writeState(dir, { ...before, chain: learnt }, before.highestGeneration ?? 0);
        return { fingerprint: before.fingerprint };
      }
      const sameKey = before?.fingerprint === given.fingerprint;
      // Two runs side by side, the one that accepted the older snapshot saving last: the newer snapshot's
      // record stands. Written as given, the log head remembered went back to the older one's, and a later
      // snapshot rewriting the entries between the two was taken as extending it.
      const newer =
        sameKey &&
        given.highestGeneration !== undefined &&
        (before?.highestGeneration ?? 0) > given.highestGeneration
          ? before
          : undefined;
      const { snapshotSha256: _s, checkedAt: _c, log: _l, logsExtended: _e, ...kept } = given;
      // What a link learnt of its rotation in the other run (`learnRetirements`: its number, a compromised
      // mark) is kept: dropped, the stolen key was trusted for what it signed until a check learnt it again.
      const chain = sameKey ? withRetirementsKept(given.chain, before?.chain) : given.chain;
      const rest: TrustRecord = { ...kept, ...(chain ? { chain } : {}) };
      const held: TrustRecord = newer
        ? {
            ...rest,
            ...(newer.snapshotSha256 !== undefined ? { snapshotSha256: newer.snapshotSha256 } : {}),
            ...(newer.checkedAt !== undefined ? { checkedAt: newer.checkedAt } : {}),
            ...(newer.log !== undefined ? { log: newer.log } : {}),
            ...(newer.logsExtended !== undefined ? { logsExtended: newer.logsExtended } : {}),
          }
        : { ...given, ...(chain ? { chain } : {}) };
      // What the name knew of keys it no longer holds is kept whatever it pins now, the keys its record
      // left too where this replaces it (`TrustRecord.formerDepartures`); its floors and log are not.
      const ownDepartures = departuresOf(held);
      const record = withFormerDepartures(
        withDamagedDepartures(held, before?.damagedDepartures ?? []),
        formerDeparturesOf(before, options.replacing === true, options.formerRegistry).filter(
          (d) =>
            !ownDepartures.some(
              (o) =>
                o.fingerprint === d.fingerprint &&
                o.retiredTo === d.retiredTo &&
                (o.compromised === true || d.compromised !== true) &&
                (d.registry === undefined || d.registry === held.registry),
            ),
        ),
      );
      const highest = Math.max(record.highestGeneration ?? 0, sameKey ? (before?.highestGeneration ?? 0) : 0);
      // Listed under its registry before the record names it, so no reader of that registry's names misses
      // it; under the one it leaves (a registry added again at another URL) until the record names another.
      const registries = indexedRegistries(record);
      await this.#listInIndex(registry, registries, 'add');
      if (!sameKey || before?.armoredKey !== record.armoredKey)
        await writeFileAtomic(join(dir, 'registry.asc'), record.armoredKey);
      await this.#writeState(dir, record, highest);
      // Kept: the record is the name's from here, so a failure now is told apart (`keepTrust`).
      try {
        await this.#listInIndex(registry, registries, 'only');
      } catch (error) {
        return { fingerprint: record.fingerprint, failure: { keptThenFailed: error } };
      }
      return { fingerprint: record.fingerprint };
    });
  }

  /**
   * Replaces what the record kept as `name` accepted (its highest generation, the log head and the heads it
   * was checked to extend, the snapshot it last checked) with `floor`, the snapshot a reset just verified,
   * for a record pinning the key that signs it; a record pinning a key it rotated from keeps none, and takes
   * the registry again on its next check (following the rotation). The one way a floor goes down
   * (`plugindex registry reset-trust`): `writeTrust` never lowers it.
   * @returns the record as it was (`before`, absent when there is none), and `failure` when the trust index's
   *   last step failed after the record was written (`keepTrust`).
   */
  async resetAccepted(
    name: string,
    floor: {
      readonly fingerprint: string;
      readonly generation: number;
      readonly log?: LogHead;
      readonly registry: string;
    },
  ): Promise<{ readonly before?: TrustRecord; readonly failure?: KeptThenFailed }> {
    const dir = this.#trustDir(name);
    await this.#refuseUnsafeFolder('data', dir);
    return withFileLock(join(dir, 'state.json'), async () => {
      await this.#refuseMadeByAnother(dir);
      const before = await this.#trustJudged(name).catch(() => undefined);
      if (!before) return {};
      const {
        highestGeneration: _h,
        snapshotSha256: _s,
        checkedAt: _c,
        log: _l,
        logsExtended: _e,
        ...pinned
      } = before;
      const same = before.fingerprint === floor.fingerprint;
      const record: TrustRecord = {
        ...pinned,
        registry: before.registry ?? floor.registry,
        ...(same && floor.log ? { log: floor.log } : {}),
      };
      const registries = indexedRegistries(record);
      await this.#listInIndex(name, registries, 'add');
      await this.#writeState(dir, record, same ? floor.generation : 0);
      // Reset: a failure now is told apart, as `keepTrust`'s, and the caller goes on with the other steps.
      try {
        await this.#listInIndex(name, registries, 'only');
      } catch (error) {
        return { before, failure: { keptThenFailed: error } };
      }
      return { before };
    });
  }

  /**
   * Lists the folder `name` in the trust index under `registries`: besides those it is listed under
   * (`add`), or under those alone (`only`). Nothing is written when the index already says so.
   */
  async #listInIndex(name: string, registries: readonly string[], mode: 'add' | 'only'): Promise<void> {
    const says = (names: ReadonlyMap<string, readonly string[]>): boolean => {
      const listed = names.get(name);
      if (listed === undefined) return false;
      const has = registries.every((r) => listed.includes(r));
      return mode === 'add' ? has : has && listed.length === registries.length;
    };
    const kept = await this.#index.read();
    if (kept && says(kept)) return;
    await this.#index.edit(
      () => this.#readIndexFromFolders(),
      (names) => {
        if (says(names)) return false;
        const listed = mode === 'add' ? (names.get(name) ?? []) : [];
        names.set(name, [...new Set([...listed, ...registries])]);
        return true;
      },
    );
  }

  /** The trust index as the folders under trust/ say: each readable record under the registry it names. */
  async #readIndexFromFolders(): Promise<Map<string, string[]>> {
    const names = new Map<string, string[]>();
    for (const name of await trustFolders(this.#trustRoot)) {
      const record = await this.#trustJudged(name).catch(() => undefined);
      if (record) names.set(name, indexedRegistries(record));
    }
    return names;
  }

  /**
   * What the trust records of `registry` (as `registryIdentity` spells the name its snapshots give, kept in
   * each record as `registry`) under the trust root of `keys` accepted, across every name kept: a registry
   * configured by the user and named in plugin sets is one registry, and a snapshot older than one any of
   * them accepted is a rollback for all. Read, not locked: each record is written whole by rename. A record
   * kept before records named their registry is told by its name (`isOfRegistry`), its URL compared with
   * `registry` and with the URL the snapshot was `reached` at; one that cannot be read
   * (nor the configuration, for those) binds no other name; it still binds its own. A former departure is
   * read as of the registry or of the URL `reached`, or of a mirror `reached` lists after it (`isDepartureOf`,
   * `ReachedAt`).
   */
  async sharedTrust(
    registry: string,
    keys: { readonly fingerprint: string; readonly chain?: readonly ChainLink[] },
    reached?: ReachedAt,
  ): Promise<SharedTrust> {
    let highest: SharedTrust['highestGeneration'];
    const logs: LogHead[] = [];
    const revoked: RevokedKey[] = [];
    const departures: DepartedKey[] = [];
    const retired: NonNullable<SharedTrust['retired']>[number][] = [];
    const check = reachedIdentity(registry, reached);
    // A name that left a lineage of this registry for an unrelated key (or another registry) still knows
    // what that lineage's keys became: found by those keys, under this registry or the one it is of now.
    const related = (record: TrustRecord, held: typeof keys) =>
      sharesAKey(record, held) || departedFromAKey(record, held);
    const found = await this.recordsSharingTrust(registry, keys, reached, related, { former: true });
    const learn = (left: DepartedKey): void => {
      const same = (r: DepartedKey) => r.fingerprint === left.fingerprint && r.retiredTo === left.retiredTo;
      if (!departures.some(same)) departures.push(left);
      if (left.compromised === true && !revoked.some(same)) revoked.push({ ...left, compromised: true });
    };
    // What names removed knew of this registry's keys (`removeTrust`): whatever key is held now, a key
    // retired stays retired, and one marked stolen stays refused (the registry added back by it too).
    const removed = await this.#removedDeparturesKept();
    const damaged = removed.damaged.filter(
      (d) => d.scope === 'any' || isDepartureOf(d.registry ?? '', check),
    );
    if (damaged.length > 0)
      throw damagedDeparturesError('names removed', damaged, this.#removedDeparturesFile);
    for (const { registry: of, ...d } of removed.departures)
      if (of !== undefined && isDepartureOf(of, check)) learn(d);
    for (const { name, record, formerOnly } of found) {
      const former = (record.formerDepartures ?? []).flatMap(({ registry: of, ...d }): DepartedKey[] =>
        (of === undefined ? !formerOnly : isDepartureOf(of, check)) ? [d] : [],
      );
      for (const left of [...(formerOnly ? [] : departuresOf(record)), ...former]) learn(left);
      if (formerOnly || !isSameTrustRoot(record, keys)) continue;
      for (const link of record.chain ?? [])
        if (!retired.some((r) => r.fingerprint === link.fingerprint))
          retired.push({ fingerprint: link.fingerprint, name, generation: record.highestGeneration ?? 0 });
      if (record.highestGeneration !== undefined && record.highestGeneration > (highest?.generation ?? 0))
        highest = { generation: record.highestGeneration, name };
      const log = record.log;
      if (log && !logs.some((l) => l.length === log.length && l.head === log.head)) logs.push(log);
    }
    return {
      ...(highest ? { highestGeneration: highest } : {}),
      logs,
      ...(revoked.length > 0 ? { revoked } : {}),
      ...(departures.length > 0 ? { departures } : {}),
      ...(retired.length > 0 ? { retired } : {}),
    };
  }

  /**
   * The names (sorted) whose records `sharedTrust` holds a snapshot of `registry` to, each with its record.
   * Only the folders the trust index lists under `registry`, the URL `reached` or every registry
   * (`ANY_REGISTRY`) are read, and those listed under none (records
   * kept before records named their registry) that a plugin set or the configuration may name; checked
   * every time with 200 trust folders, every one was read. The index is a cache of the folders
   * (trust-index.ts): one missing or unreadable is rebuilt from them, a folder it does not list is read and
   * added, and a record found under another registry than the index lists it under (written by a client
   * before the index) has the index rebuilt and the names found again. That is found only by a check of the
   * registry it is listed under: a folder listed under R1 whose record was rewritten for R2 where this index
   * was not told (an older client, a linked folder written through another data folder, a restored copy)
   * is missed by R2's checks until then (ARCHITECTURE.md, "Left open").
   */
  async recordsSharingTrust(
    registry: string,
    keys: { readonly fingerprint: string; readonly chain?: readonly ChainLink[] },
    reached?: ReachedAt,
    /** Which records count beside being of `registry`: by default those of the trust root of `keys`. */
    related: (
      record: TrustRecord,
      keys: { readonly fingerprint: string; readonly chain?: readonly ChainLink[] },
    ) => boolean = isSameTrustRoot,
    /**
     * `former`: a record of another registry now counts too where its former departures name `registry`
     * (`formerOnly` then: only those departures are of it).
     */
    options: { readonly former?: boolean } = {},
  ): Promise<{ readonly name: string; readonly record: TrustRecord; readonly formerOnly?: true }[]> {
    // The trust root judged first: a record another user may plant is refused, not read as none. One not
    // there whole when judged holds no record: another user may have made it, theirs, since (under /tmp),
    // and its index and records read would lend their floor and marks to this registry's checks.
    if (!(await this.#refuseUnsafeFolder('data', this.#trustRoot))) return [];
    const identity = reachedIdentity(registry, reached);
    const read = new Map<string, TrustRecord | undefined>();
    const recordOf = async (name: string): Promise<TrustRecord | undefined> => {
      // A record that does not read is no other name's concern; a folder another user may change is: its
      // marks (a key retired as stolen) would go unread, so the check is refused, naming it, as the root's.
      if (!read.has(name))
        read.set(
          name,
          await this.#trustJudged(name).catch((error: unknown) => {
            if (error instanceof ClientError && error.code === 'DATA_PATH_UNSAFE') throw error;
            return undefined;
          }),
        );
      return read.get(name);
    };
    if (!this.#catchingUp)
      this.#catchingUp = this.#caughtUpIndex(recordOf, false).finally(() => {
        this.#catchingUp = undefined;
      });
    let index = await this.#catchingUp;
    let configured: readonly RegistryEntry[] | undefined;
    const configuredOnce = async (): Promise<readonly RegistryEntry[]> =>
      (configured ??= await this.readConfig().then(
        (config) => config.registries,
        () => [] as RegistryEntry[],
      ));
    for (let attempt = 1; ; attempt++) {
      const found: { name: string; record: TrustRecord; formerOnly?: true }[] = [];
      let stale = false;
      let refused: ClientError | undefined;
      for (const [name, listed] of [...index.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
        if (listed.length === 0) {
          // Kept before records named their registry, so told by its name alone: a set's, or a configured one.
          if (!name.startsWith('set-') && !(await configuredOnce()).some((r) => r.name === name)) continue;
        } else if (
          !listed.some(
            (r) =>
              r === identity.signed ||
              r === ANY_REGISTRY ||
              identity.reached.includes(r) ||
              identity.mirrors.includes(r),
          )
        )
          continue;
        const record = await recordOf(name);
        if (!record) continue;
        if (indexedRegistries(record).some((r) => !listed.includes(r))) stale = true;
        const entries = record.registry === undefined ? await configuredOnce() : [];
        const own = isOfRegistry(name, record, identity, entries);
        // A former departure that does not read may mark a key of this registry stolen: this check refuses,
        // those of registries it cannot bear on go on (`TrustRecord.damagedDepartures`). Once the index is
        // caught up (below): damaged by hand, the entry is listed under the registries it may bear on only
        // by the rebuild a stale listing starts, and thrown first, it never was.
        const damaged = options.former === true ? damagedBearingOn(record, identity, own) : [];
        if (damaged.length > 0) {
          refused ??= damagedDeparturesError(`trust/${name}`, damaged);
          continue;
        }
        const former =
          !own &&
          options.former === true &&
          (record.formerDepartures ?? []).some(
            (d) => d.registry !== undefined && isDepartureOf(d.registry, identity),
          );
        if (!own && !former) continue;
        if (!related(record, keys)) continue;
        found.push({ name, record, ...(own ? {} : { formerOnly: true as const }) });
      }
      if (!stale || attempt > 1) {
        if (refused) throw refused;
        return found;
      }
      // A record under another registry than the index lists it: a client before the index wrote it, and
      // others may be listed wrong too. Read from every folder again.
      read.clear();
      index = await this.#caughtUpIndex(recordOf, true);
    }
  }

  /**
   * The trust index, caught up with the folders under trust/: built from them when missing (or `rebuild`),
   * each folder it does not list read (`recordOf`) and added when its record reads, each it lists that is
   * gone dropped. A folder whose record does not read is not listed (it binds no other name), and is read
   * again on the next check.
   */
  async #caughtUpIndex(
    recordOf: (name: string) => Promise<TrustRecord | undefined>,
    rebuild: boolean,
  ): Promise<Map<string, string[]>> {
    const folders = await trustFolders(this.#trustRoot);
    const kept = rebuild ? undefined : await this.#index.read();
    const listed = kept ?? new Map<string, string[]>();
    const present = new Set(folders);
    const gone = [...listed.keys()].filter((name) => !present.has(name));
    const unlisted = folders.filter((name) => !listed.has(name));
    if (kept && gone.length === 0 && unlisted.length === 0) return kept;
    const added = new Map<string, string[]>();
    for (const name of unlisted) {
      const record = await recordOf(name);
      if (record) added.set(name, indexedRegistries(record));
    }
    let result = new Map<string, string[]>();
    await this.#index.edit(
      async () => new Map(),
      (names) => {
        let changed = false;
        if (rebuild) {
          // Every folder was read again: what they say replaces what the index said.
          changed = names.size > 0 || added.size > 0;
          names.clear();
        }
        for (const name of gone) changed = names.delete(name) || changed;
        for (const [name, registries] of added)
          if (!names.has(name)) {
            names.set(name, registries);
            changed = true;
          }
        result = new Map(names);
        return changed;
      },
    );
    // Only the folders there now: one listed by a writer since, whose record this reader did not see, is
    // read on the next check, as it would have been found or not by a reader of every folder.
    for (const name of result.keys()) if (!present.has(name)) result.delete(name);
    return result;
  }

  /**
   * Forgets the name `registry`'s trust folder (its pin, floors, log head), keeping first what its record
   * knew of keys (its chain's departures and the former ones it kept) in `REMOVED_DEPARTURES_FILE`, which
   * `sharedTrust` reads as `formerDepartures` of their registry: a key marked stolen stays stolen when the
   * name goes. `url`: the registry the departures are of where the record names none (a record kept
   * before records named their registry): the configured entry's URL. A record that does not read, whole or
   * a former departure of it, is refused as `trustToRemove` refuses it, unless `force`: then what of it still
   * reads is kept.
   *
   * The folder is emptied under the record's lock, all but the lock file itself, and only the empty folder
   * removed after: removed whole once the lock was let go, a check of the name that saved a mark it had just
   * learnt in between (it took the lock the moment this let go of it) lost that mark with the folder. A
   * check saving after the emptying writes its record into the folder again (`rmdir` then leaves it, or the
   * lock makes it again: `withLockFile`), so what it learnt is kept there, read as any folder's. A folder that
   * is a link (to one kept elsewhere) is only unlinked, after the lock as before: what it leads to is kept.
   */
  async removeTrust(
    registry: string,
    options: { readonly url?: string; readonly force?: boolean } = {},
  ): Promise<void> {
    const dir = this.#trustDir(registry);
    // Its entries are removed by a recursive rm: a folder in it another user may change is refused too.
    await this.#refuseUnsafeFolder('data', dir, { within: true });
    const linked = (await lstat(dir).catch(() => undefined))?.isSymbolicLink() === true;
    const lock = join(dir, 'state.json');
    // Read under the record's lock, so a check writing it meanwhile (a mark just learnt) is read whole.
    await withFileLock(lock, async () => {
      const record = await this.trustToRemove(registry, options);
      // Forced past a record that does not read: the copy of its former departures may still.
      const known = record ? formerDeparturesOf(record, true) : await this.#formerCopy(dir);
      const of = record?.registry ?? options.url;
      const kept = known.flatMap((d): FormerDeparture[] =>
        d.registry !== undefined ? [d] : of !== undefined ? [{ ...d, registry: of }] : [],
      );
      if (kept.length > 0) await this.#keepRemovedDepartures(kept);
      if (linked) return;
      // The lock file (and a breaker's, `<lock>.breaking`) stays: it is this hold, and goes as it is let go.
      const holds = new Set([`${basename(lock)}.lock`, `${basename(lock)}.lock.breaking`]);
      for (const entry of await readdir(dir).catch(() => [] as string[]))
        if (!holds.has(entry)) await rm(join(dir, entry), { recursive: true, force: true });
    });
    if (linked) await rm(dir, { force: true });
    // Empty unless a check saved into it since the lock was let go: then its record stays, marks and all.
    else await rmdir(dir).catch(() => undefined);
    // After the folder: an index listing a folder that is gone only costs a look (it is dropped then).
    if (await this.#index.read())
      await this.#index.edit(
        async () => new Map(),
        (names) => names.delete(registry),
      );
  }

  /**
   * The record of `registry` that `registry remove` would forget, as `trust` reads it. Refused where it does
   * not read (TRUST_STATE_INVALID, naming the file): removed, the folder took with it whatever marks it
   * keeps (a key retired, or stolen, which a registry added back by that key must not be trusted with), and
   * what they are cannot be told; likewise a record keeping a former departure that does not read
   * (`damagedDeparturesError`). With `force`, undefined for a record that does not read, and the record
   * with its damaged entries for one that reads: `removeTrust` keeps what of either still reads.
   * @throws ClientError TRUST_STATE_INVALID saying to mend it or pass --force; DATA_PATH_UNSAFE, force or not.
   */
  async trustToRemove(
    registry: string,
    options: { readonly force?: boolean } = {},
  ): Promise<TrustRecord | undefined> {
    const force = `\`plugindex registry remove ${registry} --force\` to remove it, keeping what of it still reads`;
    let record: TrustRecord | undefined;
    try {
      record = await this.trust(registry);
    } catch (error) {
      if (error instanceof ClientError && error.code === 'DATA_PATH_UNSAFE') throw error;
      if (options.force) return undefined;
      throw new ClientError(
        'TRUST_STATE_INVALID',
        `${(error as Error).message}: the trust record of ${registry} does not read, so the keys it may mark ` +
          `retired or stolen cannot be told, and would be forgotten with it; mend it, or ${force}`,
        { cause: error },
      );
    }
    // A folder keeping a state.json but no pinned key reads as no record (`trust`), and went whole, its
    // chain's marks with it, where one whose state.json does not read is refused.
    const stateFile = join(this.#trustDir(registry), 'state.json');
    if (record === undefined && !options.force && (await readTextIfExists(stateFile)) !== undefined)
      throw new ClientError(
        'TRUST_STATE_INVALID',
        `${join(this.#trustDir(registry), 'registry.asc')} is missing: the trust record of ${registry} (${stateFile}) ` +
          `does not read without its pinned key, so the keys it may mark retired or stolen cannot be told, and ` +
          `would be forgotten with it; put the key back, or ${force}`,
      );
    if (record?.damagedDepartures?.length && !options.force) {
      const damaged = damagedDeparturesError(`trust/${registry}`, record.damagedDepartures);
      throw new ClientError('TRUST_STATE_INVALID', `${damaged.message}; or ${force}`);
    }
    return record;
  }

  /** The former departures `former.json` in `dir` keeps and reads, where its `state.json` does not: none else. */
  async #formerCopy(dir: string): Promise<FormerDeparture[]> {
    const file = join(dir, FORMER_DEPARTURES_FILE);
    const text = await readTextIfExists(file).catch(() => undefined);
    if (text === undefined) return [];
    try {
      return readFormerDepartures(trustJson(text, file), `${file}#`).departures;
    } catch {
      return [];
    }
  }

  get #removedDeparturesFile(): string {
    return join(this.#trustRoot, REMOVED_DEPARTURES_FILE);
  }

  /**
   * What names removed knew of keys (`REMOVED_DEPARTURES_FILE`); none when there is no file. An entry that
   * does not read is left out, as `#removedDeparturesKept` gives it: `sharedTrust` refuses the checks it may
   * bear on.
   */
  async removedDepartures(): Promise<FormerDeparture[]> {
    return (await this.#removedDeparturesKept()).departures;
  }

  /**
   * `REMOVED_DEPARTURES_FILE` read: its entries that read, and those that do not (`damaged`, as a record's
   * are kept apart: each names the registry it is of, so one damaged refuses only that registry's checks,
   * where refusing the file refused every check of every registry). A file that is no JSON, or holds no
   * list, is refused whole (TRUST_STATE_INVALID): nothing of it can be told.
   */
  async #removedDeparturesKept(): Promise<{ departures: FormerDeparture[]; damaged: DamagedDeparture[] }> {
    const file = this.#removedDeparturesFile;
    if (!(await this.#refuseUnsafeFolder('data', this.#trustRoot))) return { departures: [], damaged: [] };
    const text = await readTextIfExists(file);
    if (text === undefined) return { departures: [], damaged: [] };
    // Refused, not read as none: the mark it keeps would be forgotten.
    const parsed = trustJson(text, file, ': delete it to forget the marks it kept');
    const kept = (parsed as { former_departures?: unknown } | null)?.former_departures;
    if (kept === undefined)
      throw new ClientError('TRUST_STATE_INVALID', `${file}#/former_departures: missing`);
    const read = readFormerDepartures(kept, `${file}#/former_departures`);
    // Each is written with its registry: one naming none is of no registry that can be told.
    return {
      departures: read.departures,
      damaged: read.damaged.map((d) => (d.scope === 'record' ? { ...d, scope: 'any' as const } : d)),
    };
  }

  /**
   * Adds `departures` to `REMOVED_DEPARTURES_FILE` under its lock, each once (a mark kept over none), those
   * there that do not read kept as found.
   */
  async #keepRemovedDepartures(departures: readonly FormerDeparture[]): Promise<void> {
    const file = this.#removedDeparturesFile;
    await withFileLock(file, async () => {
      const { departures: before, damaged } = await this.#removedDeparturesKept();
      const merged = uniqueDepartures([...before, ...departures]);
      if (merged.length === before.length && merged.every((d, i) => d.compromised === before[i]?.compromised))
        return;
      const entries = [...formerDeparturesJson(merged), ...damaged.map((d) => d.raw)];
      await writeFileAtomic(file, `${JSON.stringify({ former_departures: entries }, null, 2)}\n`);
    });
  }
}

/**
 * The mode a placed artifact is created with, less the user's umask (the kernel's); a placed file's is 0644
 * (`writeFileAtomic`), less it alike. Neither is writable by group or others whatever the umask allows.
 */
const PLACED_EXECUTABLE_MODE = 0o755;

/**
 * Makes the folder `at` where it is not there, 0755 less the umask as a placed artifact is
 * (`PLACED_EXECUTABLE_MODE`), its owner's bits given back where the umask took them, and, with `parents`,
 * each missing folder above it alike, one at a time from the top. A folder already there is left as it is.
 * Never group- or other-writable, whatever the umask allows (`mkdir -p`'s 0777 less a umask of 002 is),
 * and never one its owner cannot enter (a umask of 0177 made it 0600, and every install of a user failed
 * EACCES). Not chmod-ed on Windows, which has no such bits.
 */
async function makeFolderAsPlaced(at: string, parents: boolean): Promise<void> {
  // With parents, the client's walk (`makeFolders`), not Node's recursive mkdir, which looped for ever on a
  // path under /proc (`--dir /proc/x/y`): FOLDER_NOT_MADE names the folder instead. Each folder's owner bits
  // are given back before the next is made in it (under 0177 a parent made 0600 cannot be entered).
  if (parents) await makeFolders(at, PLACED_EXECUTABLE_MODE, ownerBitsBack);
  else if (await makeOneFolder(at)) await ownerBitsBack(at);
}

/** Opens a folder itself, never through a link at its name (O_NOFOLLOW): ELOOP or ENOTDIR for one. */
const FOLDER_NOT_FOLLOWED = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;

/**
 * INSTALL_PATH_LINKED for `at`, a folder the client had just made, or found missing, when another user
 * swapped a link in at its name: nothing is made, written or chmod-ed through it.
 */
function linkedInstead(at: string, cause?: unknown): ClientError {
  return new ClientError(
    'INSTALL_PATH_LINKED',
    `${at} became a symbolic link (or a file) while plugindex made it as a folder: someone who may write the ` +
      'folder above it swapped it in; nothing is written or removed through it. Remove it, and install into a ' +
      'folder only you may write',
    { cause },
  );
}

/**
 * Gives a folder just made its owner's bits where the umask took them; none other. Not on Windows. Through
 * a handle of the folder opened without following a link (fchmod): chmod by path follows one, and a link
 * swapped in for the folder between its mkdir and the chmod had the user's folder it led to chmod-ed.
 * @throws ClientError INSTALL_PATH_LINKED where a link (or a file) is there now.
 */
async function ownerBitsBack(folder: string): Promise<void> {
  if (process.platform === 'win32') return;
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(folder, FOLDER_NOT_FOLLOWED);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' || code === 'ENOTDIR') throw linkedInstead(folder, error);
    throw error;
  }
  try {
    const { mode } = await handle.stat();
    if ((mode & 0o700) !== 0o700) await handle.chmod((mode | 0o700) & PLACED_EXECUTABLE_MODE);
  } finally {
    await handle.close();
  }
}

/**
 * Makes `at`, its parent there, as a placement does: true, or false where a folder is there already. A
 * link there is no folder (lstat, not stat): the path was checked for links before, so one there now was
 * planted since, and mkdir's EEXIST taken for the folder had the placement write where it led.
 * @throws ClientError INSTALL_PATH_LINKED for a link (or a file) at `at`.
 */
async function makeOneFolder(at: string): Promise<boolean> {
  try {
    await mkdir(at, { mode: PLACED_EXECUTABLE_MODE });
    return true;
  } catch (error) {
    // A folder there all the same is no failure, as it was none for `mkdir -p` (Windows answers EPERM for a
    // drive's root).
    const found = await lstat(at).catch(() => undefined);
    if (found?.isDirectory()) return false;
    if (found !== undefined) throw linkedInstead(at, error);
    throw error;
  }
}

/** INSTALL_PATH_UNSAFE for `at`, a folder on the way to or inside the install folder `dir`, and `why`. */
function unsafeFolderError(at: string, why: string, dir: string): ClientError {
  return new ClientError(
    'INSTALL_PATH_UNSAFE',
    `${at} is ${why}: another user could swap a folder under it for a symbolic link while plugindex writes ` +
      `there, so nothing is written or removed in the install folder ${dir}. Make it yours and writable by ` +
      `you alone (chown, chmod go-w), or install into a folder that is; or, ${vouchHint(at)}`,
  );
}

/** An install folder: its installed.json and the files under it. */
export class InstallTree {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  get file(): string {
    return join(this.dir, INSTALLED_FILE);
  }

  /** Whether the folder is there (`audit` tells a missing one from an empty one). */
  async exists(): Promise<boolean> {
    return (await stat(this.dir).catch(() => undefined))?.isDirectory() === true;
  }

  /** @throws ClientError INSTALLED_INVALID for one that does not parse, or a folder where it goes. */
  async read(): Promise<InstalledFile> {
    const text = await readTextNotFolder(this.file, 'INSTALLED_INVALID', "the install folder's record");
    return text === undefined ? EMPTY_INSTALLED : parseInstalled(text, this.file);
  }

  /**
   * Edits installed.json under its lock: concurrent installs into one folder each keep their record.
   * `afterWrite` runs once the file is written, still holding the lock (removing what it no longer names).
   * `held`: the caller holds the lock already (`hold`), as taking it again would wait on itself.
   */
  async update<T>(
    edit: (
      installed: InstalledFile,
    ) => Promise<{ installed: InstalledFile; result: T; afterWrite?: () => Promise<void> }>,
    options: { readonly held?: boolean } = {},
  ): Promise<T> {
    const run = async () => {
      const before = await this.read();
      const { installed, result, afterWrite } = await edit(before);
      if (installed !== before) await writeFileAtomic(this.file, serializeInstalled(installed));
      await afterWrite?.();
      return result;
    };
    if (options.held === true) return run();
    await this.#makeInstallFolder();
    return withFileLock(this.file, run);
  }

  /**
   * Runs `fn` holding installed.json's lock, for what must not interleave with another process's edit of
   * the folder: an install places its files and records them in one hold (its `update` then `held`), as an
   * install failing part way removes the versions it placed that were not recorded when it began, and an
   * update's replacing removes a version's folder, each of which another install may have placed or
   * recorded in between (the record then named files that were gone).
   */
  async hold<T>(fn: () => Promise<T>): Promise<T> {
    await this.#makeInstallFolder();
    return withFileLock(this.file, fn);
  }

  /**
   * Makes this folder, and the folders above it that are missing, as a placement makes the folders under it
   * (`makeFolderAsPlaced`), before its lock's `mkdir` or a placement's would make them as the umask has it:
   * under 0177 an install folder not there yet was made 0600, and the install failed EACCES; under 002,
   * group-writable, so its group could swap a plugin's folder for one of its own.
   */
  async #makeInstallFolder(): Promise<void> {
    await this.#refuseUnsafeFolder();
    if ((await stat(this.dir).catch(() => undefined))?.isDirectory()) return;
    await makeFolderAsPlaced(this.dir, true);
    // Again once made: under a sticky folder (/tmp) another user may have made a part first, as theirs.
    await this.#refuseUnsafeFolder();
  }

  /**
   * Refuses an install folder another user may change, or one on the way to it (`unsafeFolderOnPath`: owned
   * by another user, writable by others without the sticky bit, a link another user owns), as OpenSSH and
   * GnuPG refuse theirs: such a user could swap a folder for a symbolic link between a check here and the
   * write or removal it let through, and Node.js has no openat(2) to rule that out.
   * @throws ClientError INSTALL_PATH_UNSAFE naming the folder and why.
   */
  async #refuseUnsafeFolder(): Promise<void> {
    const unsafe = await unsafeFolderOnPath(this.dir);
    if (unsafe) throw unsafeFolderError(unsafe.at, unsafe.why, this.dir);
  }

  /**
   * The absolute path of `relative` in this folder. Every write and removal goes through here, so this is
   * where nothing a registry or a damaged installed.json says can lead outside the folder: `relative` must
   * be a path of safe segments (layout.ts, the same rule the registry's stores keep).
   * @throws TrustError DOCUMENT_MALFORMED naming the path and why.
   */
  path(relative: string): string {
    const problem = keyProblem(relative);
    if (problem)
      throw new TrustError(
        'DOCUMENT_MALFORMED',
        `${JSON.stringify(relative)} is not a path inside ${this.dir}: ${problem}`,
      );
    return join(this.dir, ...relative.split('/'));
  }

  /**
   * `path(relative)`, once each folder between this folder and it that exists is found to be a folder and
   * not a symbolic link. mkdir, open, rename and rm follow a link in the middle of a path: a link planted in
   * the tree (a checked-out repository's `plugins/demo -> ~/.ssh` beside an installed.json naming
   * `demo/1.0.0/id_ed25519`, or another user's in a shared folder) had a placement write, and a removal
   * (`clean`, `remove`, an update's replacing) delete, outside the folder. The folder itself may be a link:
   * the user chose it. What does not exist yet is made by mkdir, as folders. A link swapped in after this
   * check (a race by someone who may write the folder, who could replace the plugin itself) is not caught:
   * Node.js has no openat(2).
   * @throws ClientError INSTALL_PATH_LINKED naming the link (or the file where a folder was expected).
   */
  async #unlinkedPath(relative: string, options: { readonly again?: boolean } = {}): Promise<string> {
    const target = this.path(relative);
    // `again`: the install folder was judged by this placement already (`#makeInstallFolder`).
    if (options.again !== true) await this.#refuseUnsafeFolder();
    const found = await this.#linkOnTheWay(relative);
    if (found?.why !== undefined) throw unsafeFolderError(found.at, found.why, this.dir);
    if (found)
      throw new ClientError(
        'INSTALL_PATH_LINKED',
        `${found.at} is ${found.link ? 'a symbolic link' : 'not a folder'}, inside the install folder ${this.dir}: ` +
          `nothing is written or removed through it (${relative} would be); remove it, or install into a folder without it`,
      );
    return target;
  }

  /**
   * The first of the folders between this folder and `relative` (and, with `self`, `relative` itself) that
   * is a symbolic link, or a file where a folder is due, or a folder another user may change (`why`,
   * `folderUnsafety`); undefined when there is none (what does not exist is none).
   */
  async #linkOnTheWay(
    relative: string,
    self = false,
  ): Promise<{ readonly at: string; readonly link: boolean; readonly why?: string } | undefined> {
    const segments = relative.split('/');
    let at = this.dir;
    for (const [index, segment] of segments.entries()) {
      const last = index === segments.length - 1;
      if (last && !self) break;
      at = join(at, segment);
      let info: Awaited<ReturnType<typeof lstat>>;
      try {
        info = await lstat(at);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw error;
      }
      if (info.isSymbolicLink() || (!last && !info.isDirectory())) return { at, link: info.isSymbolicLink() };
      const why = last ? undefined : folderUnsafety(info, at);
      if (why !== undefined) return { at, link: false, why };
    }
    return undefined;
  }

  /**
   * Copies an artifact into place from a verified blob, hashing what it copies (the cache is not trusted
   * for being there), executable, by temp file and rename.
   * @throws TrustError ARTIFACT_MISMATCH when the copy does not hash to what was signed; ClientError
   *   INSTALL_PATH_LINKED (`#unlinkedPath`).
   */
  async placeExecutable(
    relative: string,
    source: AsyncIterable<Uint8Array>,
    expected: { readonly sha256: string; readonly size: number },
  ): Promise<void> {
    await this.#unlinkedPath(relative);
    await this.#makeFolders(relative);
    // Again once the folders are made: one a link replaced since the first check is refused here.
    const target = await this.#unlinkedPath(relative, { again: true });
    // A placement killed part way left its temp file here: the version's folder is to hold its files alone.
    await removeStaleTemps(target);
    const temp = tempPathFor(target);
    // Created, never opened through a link already at that name. 0755 less the user's umask, which the
    // kernel applies at creation (process.umask() is not to be read, deprecated, and not at all in a worker):
    // umask 077 keeps the plugin from every other user, as it keeps their other files. Never wider than 0755
    // (a umask of 002 makes it no group-writable file): one others may rewrite is no file an install placed
    // (`notAsPlaced`), and was placed again on every install.
    const handle = await open(temp, 'wx', PLACED_EXECUTABLE_MODE);
    const hash = createSha256();
    let size = 0;
    try {
      for await (const chunk of source) {
        size += chunk.byteLength;
        hash.update(chunk);
        await handle.write(chunk);
      }
      // A umask that takes the owner's own bits (0177) left an artifact no host could run, and never as
      // placed: the owner's are given back, no one else's.
      const { mode } = await handle.stat();
      if (process.platform !== 'win32' && (mode & 0o700) !== 0o700)
        await handle.chmod((mode | 0o700) & PLACED_EXECUTABLE_MODE);
      await handle.close();
      const actual = hash.hex();
      if (size !== expected.size || actual !== expected.sha256)
        throw new TrustError(
          'ARTIFACT_MISMATCH',
          `${relative}: the cached copy hashes to ${actual} (${size} bytes), not the signed ${expected.sha256} (${expected.size} bytes)`,
        );
      await rename(temp, target);
    } catch (error) {
      await handle.close().catch(() => undefined);
      await rm(temp, { force: true });
      throw error;
    }
  }

  /**
   * sha256 and size of an installed file, or undefined when it is gone or is reached through a symbolic
   * link (is one, or a folder on its way is): a link's bytes are whatever its target holds when a host runs
   * it (another user's file, or one changed after this check), so it is no installed file. Nor, for the same
   * reason, is a regular file with the right bytes that someone else may rewrite after the check (`notAsPlaced`:
   * writable by its group or by others, or owned by another user, who may make it so), nor, with `executable`
   * (an artifact), one that is not executable: a host cannot run it, yet it was called up to date for good.
   * An install then places the file again (a link in its place replaced, one on the way refused) and `verify`
   * names it. `maxBytes`: a file larger is not read, and has the digest '' (no file's), its size given.
   */
  async hashFile(
    relative: string,
    options: { readonly executable?: boolean; readonly maxBytes?: number } = {},
  ): Promise<{ sha256: string; size: number } | undefined> {
    const target = this.path(relative);
    if (await this.#linkOnTheWay(relative, true)) return undefined;
    // Nor is a FIFO (its read waits for a writer) or a device (never ends): no installed file either.
    const info = await lstat(target).catch(() => undefined);
    if (!info?.isFile() || notAsPlaced(info, options.executable === true)) return undefined;
    // Larger than what it stands for can be: its size says it is not that file, unread (a sparse terabyte
    // planted in a shared folder or a checkout was hashed whole on every install, and every verify).
    if (options.maxBytes !== undefined && info.size > options.maxBytes)
      return { sha256: '', size: info.size };
    return hashFileAt(target);
  }

  async placeFile(relative: string, data: string | Uint8Array): Promise<void> {
    await this.#unlinkedPath(relative);
    await this.#makeFolders(relative);
    const target = await this.#unlinkedPath(relative, { again: true });
    await removeStaleTemps(target);
    await writeFileAtomic(target, data);
  }

  /**
   * Makes the folders between this folder and `relative`'s file that are not there, one at a time, each 0755
   * less the umask, as its files are (`PLACED_EXECUTABLE_MODE`), never group- or other-writable: made 0777
   * less the umask (`mkdir -p`'s), a umask of 002 left each version's folder writable by its group, who could
   * put a file of their own in place of one an install checked. A umask that takes the owner's own bits
   * (0177) made folders their owner could not enter, and every install of a user (not root) failed EACCES:
   * the owner's are given back, no one else's (`makeFolderAsPlaced`). The install folder, and what is
   * missing above it, alike (`#makeInstallFolder`): made as the umask had it, under 0177 it was 0600.
   */
  async #makeFolders(relative: string): Promise<void> {
    await this.#makeInstallFolder();
    let at = this.dir;
    for (const segment of relative.split('/').slice(0, -1)) {
      at = join(at, segment);
      await makeFolderAsPlaced(at, false);
    }
  }

  /**
   * Removes one installed file (a platform's artifact) and its folder once that is empty.
   * @throws ClientError INSTALL_PATH_LINKED (`#unlinkedPath`).
   */
  async removeArtifact(relative: string): Promise<void> {
    const target = await this.#unlinkedPath(relative);
    await rm(target, { force: true });
    await rmdir(dirname(target)).catch(() => undefined);
  }

  /**
   * The names in the plugin's folder `name/` that a filesystem ignoring letter case (macOS's and Windows'
   * defaults) or Windows' trailing dots and spaces takes for `folder` (`foldedName`), `folder` itself aside:
   * whatever is there, recorded in installed.json or not (an older client's, an install cut short between
   * its folder and its record, a copy), as an install would write into it. Only that folder is listed, never
   * the install folder, so the cost is one plugin's versions however large the tree. A name that is
   * `folder` on this filesystem (the same folder, spelled as it was first made on one that ignores case) is
   * no other. None when the plugin's folder is missing, or is a link (placing refuses it: `#unlinkedPath`).
   */
  async foldedAs(name: string, folder: string): Promise<string[]> {
    const plugin = this.path(name);
    if (!(await lstat(plugin).catch(() => undefined))?.isDirectory()) return [];
    const wanted = foldedName(folder);
    const variants = (await readdir(plugin).catch(() => [] as string[])).filter(
      (entry) => entry !== folder && foldedName(entry) === wanted,
    );
    if (variants.length === 0) return [];
    const self = await lstat(join(plugin, folder)).catch(() => undefined);
    const found: string[] = [];
    for (const entry of variants) {
      const info = await lstat(join(plugin, entry)).catch(() => undefined);
      if (self && info && self.dev === info.dev && self.ino === info.ino) continue;
      found.push(entry);
    }
    return found.sort();
  }

  /**
   * Removes a version's folder (a link in its place is removed, not followed), then the plugin's once empty.
   * @throws ClientError INSTALL_PATH_LINKED (`#unlinkedPath`).
   */
  async removeVersion(name: string, version: string): Promise<void> {
    const folder = await this.#unlinkedPath(`${name}/${versionFolder(version)}`);
    // Node's recursive rm lstats each entry, then reads a folder and removes its entries by path: a folder
    // in here swapped for a link in between is followed, and what it leads to removed. Only someone who may
    // write a folder in here can swap one, so none may be such a folder.
    const unsafe = await unsafeFolderWithin(folder);
    if (unsafe) throw unsafeFolderError(unsafe.at, unsafe.why, this.dir);
    await rm(folder, { recursive: true, force: true });
    // The plugin's folder goes too once its last version has (rmdir refuses a folder that is not empty).
    await rmdir(this.path(name)).catch(() => undefined);
  }
}

/**
 * A plugin set as installed.json in one install folder names it (`InstalledVersion.sets`): how an install
 * records it, and which recorded names are it.
 */
export interface SetOwner {
  /** The set file's real path from the install folder's real path (installed.ts `setReference`). */
  readonly reference: string;
  /**
   * Whether a recorded name is this set: the set file's real path, whether recorded as `reference`, by the
   * previous release from the folder as the set named it, through a link, in another letter case where case
   * is ignored, or absolute, as a release before that wrote it.
   */
  names(recorded: string): boolean;
}

/**
 * The set file `file` as installed.json in the install folder `dir` names it. Both taken as real paths
 * (`realpath`: links resolved, and on macOS and Windows each name in its letter case on disk): compared as
 * given, a link to the set file, or `-c Plugins.yaml` where case is ignored, was another set, whose
 * `clean -c` left what the set placed and whose `verify -c` called it another's. Relative between the real
 * paths, as between the given ones, so a checkout holding both still names it once moved.
 */
export async function setOwnerOf(dir: string, file: string): Promise<SetOwner> {
  const realFile = await realPath(file);
  const realDir = await realPath(dir);
  const reference = setReference(realDir, realFile);
  const known = new Map<string, boolean>();
  return {
    reference,
    names(recorded) {
      let is = known.get(recorded);
      if (is === undefined) {
        // Lexically first (what this client writes); a name recorded otherwise is resolved on disk. Sync:
        // asked inside the verify and diff judgements, once per distinct name, of files a set just read.
        const candidates = [resolve(realDir, recorded), resolve(dir, recorded)];
        is =
          candidates.includes(realFile) ||
          candidates.some((candidate) => realPathSyncIfExists(candidate) === realFile);
        known.set(recorded, is);
      }
      return is;
    },
  };
}

/**
 * Of the plugin sets installed.json in the install folder `dir` records (`InstalledVersion.sets`, and the
 * previous release's `set`), those whose file is gone: no file at the recorded name, read from the folder's
 * real path (how this client writes it, `setReference`) nor from the folder as given (how the previous
 * release wrote `set`), a link that leads nowhere included. Such a set's claims are kept for good: only its
 * own `clean -c`, or its install moving on, drops them, and neither can run without the file.
 * A name another failure hides (a folder not readable) is not taken for gone.
 */
export async function goneSetFiles(dir: string, recorded: Iterable<string>): Promise<ReadonlySet<string>> {
  const realDir = await realPath(dir);
  const gone = new Set<string>();
  for (const name of new Set(recorded)) {
    const candidates = [...new Set([resolve(realDir, name), resolve(dir, name)])];
    if ((await Promise.all(candidates.map(isMissing))).every(Boolean)) gone.add(name);
  }
  return gone;
}

/** True when nothing is at `path` (a link to nothing followed): ENOENT, or ENOTDIR for a file on its way. */
async function isMissing(path: string): Promise<boolean> {
  try {
    await stat(path);
    return false;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ENOTDIR';
  }
}

/** `path`'s real path; for a path not there yet (an install folder before the first install), its nearest existing parent's real path joined with the rest. */
export async function realPath(path: string): Promise<string> {
  const absolute = resolve(path);
  try {
    return await realpath(absolute);
  } catch (error) {
    const parent = dirname(absolute);
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || parent === absolute) return absolute;
    return join(await realPath(parent), basename(absolute));
  }
}

function realPathSyncIfExists(path: string): string | undefined {
  try {
    // `.native`, as `realpath` from fs/promises is: the JavaScript one keeps the letter case as given.
    return realpathSync.native(path);
  } catch {
    return undefined;
  }
}

/**
 * True when an installed regular file is not as a placement leaves it (`placeExecutable` 0755, `placeFile`
 * 0644, each less the umask, so never writable by group or others, even where the umask (002) would allow
 * it; owned by this user): writable by its group or by others, owned by a user other than
 * this one or root (its owner may make it writable at any time), or, for an executable, without its owner's
 * execute bit. Windows keeps no such mode or owner: nothing there is judged.
 */
function notAsPlaced(info: Stats, executable: boolean): boolean {
  if (process.platform === 'win32') return false;
  const uid = process.getuid?.();
  if (uid !== undefined && info.uid !== uid && info.uid !== 0) return true;
  return (info.mode & 0o022) !== 0 || (executable && (info.mode & 0o100) === 0);
}

/**
 * A file name as a filesystem that ignores case compares it (macOS's and Windows' defaults: `Plugins.lock`
 * and `plugins.lock` are one file there), and ignores Unicode normalization as macOS does, and trailing dots
 * and spaces as Windows does (`1.0.0.` and `1.0.0 ` are `1.0.0` there): names equal folded may be one file
 * on some machine a checkout is taken to, whatever this one does.
 */
export function foldedName(name: string): string {
  // Upper then lower: a few letters fold only that way (the long s, U+017F, is "S" upper-cased).
  return name
    .normalize('NFC')
    .toUpperCase()
    .toLowerCase()
    .normalize('NFC')
    .replace(/[. ]+$/, '');
}

/**
 * The other files in `file`'s folder whose name without its extension is `file`'s, compared as a filesystem
 * that ignores case compares names (`plugins.yml`, `plugins` and `Plugins.yml` beside `plugins.yaml`), each
 * with its size: the files a set's lock, named for its set file without the extension, would be shared with
 * (`Plugins.lock` is `plugins.lock` on macOS and Windows). Only regular files (a link followed), never `file`
 * itself nor another name for it (a link to it is the same set), nor `exclude` (the lock) in any case.
 */
export async function filesSharingStem(
  file: string,
  exclude: string,
): Promise<{ readonly path: string; readonly size: number }[]> {
  const folder = dirname(file);
  const stem = foldedName(basename(file, extname(file)));
  const lock = foldedName(basename(exclude));
  const self = await stat(file).catch(() => undefined);
  const found: { path: string; size: number }[] = [];
  // A folder that cannot be listed (execute-only) hides its other files: nothing is known to share the lock.
  for (const name of await readdir(folder).catch(() => [] as string[])) {
    const path = join(folder, name);
    if (foldedName(basename(name, extname(name))) !== stem || path === join(folder, basename(file))) continue;
    if (dirname(exclude) === folder && foldedName(name) === lock) continue;
    const info = await stat(path).catch(() => undefined);
    if (!info?.isFile() || (self && info.dev === self.dev && info.ino === self.ino)) continue;
    found.push({ path, size: info.size });
  }
  return found.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/**
 * The lock file, or undefined when there is none.
 * @throws ClientError LOCKFILE_INVALID for one that does not parse, or a folder where the lock goes.
 */
export async function readLockfile(path: string): Promise<Lockfile | undefined> {
  const text = await readLockText(path);
  return text === undefined ? undefined : parseLockfile(text, path);
}

/**
 * A file's text, or undefined when there is none; a folder at its path named as `code` says, `path` is a
 * folder, not `what` (a `--lockfile` naming one, a folder made where the lock, installed.json or config.json
 * goes): Node's bare "EISDIR: illegal operation on a directory, read", which names no path, reached every
 * install, update, list and registry command as a stack trace.
 */
async function readTextNotFolder(
  path: string,
  code: 'LOCKFILE_INVALID' | 'INSTALLED_INVALID' | 'CLIENT_CONFIG_INVALID',
  what: string,
): Promise<string | undefined> {
  try {
    return await readTextIfExists(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EISDIR') throw error;
    throw new ClientError(code, `${path} is a folder, not ${what}: move it away`, { cause: error });
  }
}

/** The lock's text (`readTextNotFolder`). */
function readLockText(path: string): Promise<string | undefined> {
  return readTextNotFolder(path, 'LOCKFILE_INVALID', 'a lock file');
}

/**
 * Writes the lock only when its text changes (cargo: helpful on read-only trees), line endings aside: a lock
 * checked out with CR LF (Git for Windows) is the one written, and was rewritten by every install there,
 * called changed. Returns whether it did.
 */
export async function writeLockfile(path: string, lock: Lockfile): Promise<boolean> {
  const text = serializeLockfile(lock);
  const there = await readLockText(path);
  if (there === text || there?.replaceAll('\r\n', '\n') === text) return false;
  await writeFileAtomic(path, text);
  return true;
}

/**
 * The steps after a trust record was kept that failed, as one `KeptThenFailed`: none, the one, or every one
 * in a ClientError TRUST_KEPT_THEN_FAILED (its cause an AggregateError of them) whose message names each (the trust index's last step, then naming the key in
 * config.json): the first alone dropped the other, and the user fixed one cause to meet the next.
 */
export function keptThenFailedAll(
  name: string,
  failures: readonly (KeptThenFailed | undefined)[],
): KeptThenFailed | undefined {
  const tell = (e: unknown): string => {
    const code = (e as { code?: unknown }).code;
    const message = e instanceof Error ? e.message : String(e);
    // Node's own errors begin with their code already.
    return typeof code === 'string' && !message.startsWith(code) ? `${code}: ${message}` : message;
  };
  // One cause told once: a reset keeps several records behind one trust index, whose lock fails each alike.
  const errors: unknown[] = [];
  const told: string[] = [];
  for (const f of failures) {
    if (!f || told.includes(tell(f.keptThenFailed))) continue;
    errors.push(f.keptThenFailed);
    told.push(tell(f.keptThenFailed));
  }
  if (errors.length <= 1) return errors.length === 0 ? undefined : { keptThenFailed: errors[0] };
  // One of ours, with a stable code, so a command tells it as one (its code and the message naming each
  // cause, cli/main.ts), where a bare AggregateError was printed as a defect, its stack trace.
  return {
    keptThenFailed: new ClientError(
      'TRUST_KEPT_THEN_FAILED',
      `${name}: the trust state was kept, then ${errors.length} steps after it failed: ${told.join('; and ')}`,
      { cause: new AggregateError(errors, `${errors.length} steps failed`) },
    ),
  };
}
