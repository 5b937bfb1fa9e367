/**
 * The transparency log held against what the registry serves: the log is tamper-evident only if someone
 * checks it against the signed plugin documents and the action envelopes, and this is that check, for
 * `plugindex verify --url` (the auditor's whole-registry run). A registry (or whoever holds its key) could
 * otherwise log a yank no document shows, or show a yank, advisory or owner no entry records, and the hash
 * chain would still verify.
 *
 * What the log implies, per plugin, is folded from its entries in one pass (index-builder/log-fold.ts
 * `foldLog`, which the pipeline's stuck-entry check shares), and each plugin document compared with its fold
 * (`compareDocument`); here, each action entry is held to the envelope served under `log/actions/`
 * (`compareEnvelope`: the same action, signed by the entry's signer), and each key rotation to its document.
 *
 * Pure (no I/O; openpgp checks the envelopes' signatures), and linear in the log's size and the
 * documents': the caller fetches.
 *
 * @example
 * const fold = foldLog(entries, voided);
 * const found = [...compareDocument(fold, doc), ...missingPlugins(fold, names)];
 */
import { ACTION_CLOCK_SKEW_MS, type ReadAction, readSignedAction } from '../index-builder/actions.ts';
import { isSecretKeyText } from '../index-builder/armor.ts';
import { TrustError } from '../index-builder/errors.ts';
import { registryIdentity, versionIdentity } from '../index-builder/layout.ts';
import type { LogEntry, ReadEntry } from '../index-builder/log.ts';
import {
  isDatedBefore,
  type LogDisagreement,
  type LogDisagreementCode,
  shown,
} from '../index-builder/log-fold.ts';
import {
  MAX_ROTATIONS,
  type ReadRotation,
  readSignedRotation,
  rotationKey,
  verifyRotationStep,
} from '../index-builder/rotation.ts';
import { type PublicKeyInfo, readPublicKey, verifyDetachedSignature } from '../index-builder/signing.ts';

export {
  compareDocument,
  foldLog,
  type LogDisagreement,
  type LogDisagreementCode,
  type LogFold,
  missingPlugins,
} from '../index-builder/log-fold.ts';

/**
 * Whether an entry records an action, whose envelope the registry publishes under `log/actions/` (a void
 * carries its own signature; an action it voids is held to no envelope: `verify --url` passes it over).
 */
export function isActionEntry(entry: LogEntry): boolean {
  return entry.type !== 'publish' && entry.type !== 'rotate-key' && entry.type !== 'void';
}

/**
 * How the envelope served for an action entry disagrees with it (none: it is the action the entry
 * records, signed by the key the entry names as its signer): `bytes` undefined when it is not served. The
 * signature is judged as the registry judged it, at the entry's time (and the clock skew an action may
 * have): a key that expired since signed it while it was valid.
 */
export async function compareEnvelope(
  entry: LogEntry,
  bytes: Uint8Array | undefined,
): Promise<LogDisagreement | undefined> {
  const where = `log entry ${entry.seq} (${entry.type})`;
  const differs = (code: LogDisagreementCode, why: string): LogDisagreement => ({
    code,
    ...(entry.plugin !== undefined ? { plugin: entry.plugin } : {}),
    seq: entry.seq,
    message: `${where}: ${why}`,
  });
  const path = `log/actions/${entry.digest}.json`;
  if (bytes === undefined) return differs('LOG_ENVELOPE_MISSING', `${path} is not served`);
  let read: ReadAction;
  try {
    read = readSignedAction(bytes);
  } catch (error) {
    return differs('LOG_ENVELOPE_DIFFERS', `${path} is not a signed action: ${(error as Error).message}`);
  }
  const action = read.action;
  const subject = action.action === 'revoke-key' ? undefined : action.plugin;
  const version = 'version' in action ? action.version : undefined;
  const mismatches = [
    read.digest !== entry.digest ? `its action's sha256 is ${read.digest}` : undefined,
    action.action !== entry.type ? `it is a ${action.action}` : undefined,
    subject !== entry.plugin ? `it names plugin ${shown(subject)}` : undefined,
    version !== undefined &&
    (entry.version === undefined || versionIdentity(version) !== versionIdentity(entry.version))
      ? `it names version ${version}`
      : undefined,
    entry.created !== undefined && action.created !== entry.created
      ? `it was made at ${action.created}`
      : undefined,
  ].filter((m): m is string => m !== undefined);
  if (mismatches.length > 0)
    return differs('LOG_ENVELOPE_DIFFERS', `${path} is not the action logged: ${mismatches.join(', ')}`);
  const signed = await signatureProblem(entry, read);
  return signed === undefined ? undefined : differs('LOG_ENVELOPE_DIFFERS', `${path}: ${signed}`);
}

/**
 * The log's key rotations held to the signed rotation documents the registry publishes: each rotate-key
 * entry (its `detail.sequence`, the key it left as its signer, the key it names as `detail.fingerprint`, the
 * rotation's sha256 as its digest, and `detail.compromised`) against `keys/rotation/<N>.json` of that
 * sequence, and each rotation the snapshot counts (`counted`, its `key_rotations`) against an entry. The
 * chain of documents is what a client follows from an older key (client/key-chain.ts), the log what an
 * auditor reads: a log naming other keys than the documents, or either without the other, let the two tell
 * different histories of who signed for the registry, and `verify --url` read neither against the other. A
 * rotation published and logged that the snapshot does not count yet (one under way, or whose re-signing
 * died) is held to its document as any other. `registry`: the registry the snapshot names (as a client
 * holds each rotation it follows, by `registryIdentity`). `load` gives a rotation's bytes, undefined when
 * it is not served.
 */
export async function compareRotations(
  entries: readonly ReadEntry[],
  snapshot: {
    /** The rotations it counts (`key_rotations`). */
    readonly counted: number;
    /** The registry it names. */
    readonly registry: string;
    /** The key that signs it. */
    readonly fingerprint: string;
  },
  load: (sequence: number) => Promise<Uint8Array | undefined>,
): Promise<LogDisagreement[]> {
  const { counted, registry } = snapshot;
  const found: LogDisagreement[] = [];
  const logged = new Map<number, LogEntry>();
  const reads = new Map<number, ReadRotation>();
  for (const { entry } of entries) {
    if (entry.type !== 'rotate-key') continue;
    const where = `log entry ${entry.seq} (rotate-key)`;
    const to = entry.detail?.fingerprint ?? 'none';
    const differs = (code: LogDisagreementCode, why: string) =>
      found.push({ code, seq: entry.seq, message: `${where}: ${why}` });
    const text = entry.detail?.sequence;
    const sequence = Number(text);
    if (text === undefined || !/^[1-9][0-9]{0,8}$/.test(text)) {
      differs('LOG_ROTATION_DIFFERS', `names no rotation by its number (detail.sequence ${shown(text)})`);
      continue;
    }
    const earlier = logged.get(sequence);
    if (earlier) {
      differs('LOG_ROTATION_DIFFERS', `logs rotation ${sequence}, which entry ${earlier.seq} logged already`);
      continue;
    }
    logged.set(sequence, entry);
    const path = rotationKey(sequence);
    const bytes = await load(sequence);
    if (bytes === undefined) {
      differs(
        'LOG_ROTATION_MISSING',
        `logs rotation ${sequence} from key ${entry.signer} to key ${to}, but ${path} is not served`,
      );
      continue;
    }
    let read: ReadRotation;
    try {
      read = readSignedRotation(bytes, path);
    } catch (error) {
      differs('LOG_ROTATION_DIFFERS', `${path} is not a signed key rotation: ${(error as Error).message}`);
      continue;
    }
    const { rotation } = read;
    const marked = entry.detail?.compromised === 'true';
    const mismatches = [
      rotation.sequence !== sequence ? `it says it is rotation ${rotation.sequence}` : undefined,
      rotation.previous.fingerprint !== entry.signer || rotation.next.fingerprint !== to
        ? `it rotates key ${rotation.previous.fingerprint} to key ${rotation.next.fingerprint}, where the entry logs key ${entry.signer} to key ${to}`
        : undefined,
      read.digest !== entry.digest
        ? `its rotation's sha256 is ${read.digest}, not ${entry.digest}`
        : undefined,
      (rotation.compromised === true) !== marked
        ? `it ${rotation.compromised === true ? 'marks' : 'does not mark'} key ${rotation.previous.fingerprint} compromised, the entry ${marked ? 'does' : 'does not'}`
        : undefined,
      registryIdentity(rotation.registry) !== registryIdentity(registry)
        ? `it is a rotation of ${rotation.registry}, not of ${registry}`
        : undefined,
    ].filter((m): m is string => m !== undefined);
    if (mismatches.length > 0)
      differs('LOG_ROTATION_DIFFERS', `${path} is not the rotation logged: ${mismatches.join('; ')}`);
    else reads.set(sequence, read);
  }
  // Each rotation counted and not logged is asked for, to say whether it is served: a signed count far past
  // what the log records (10^9) had verify --url ask for each, for good. Past MAX_ROTATIONS unlogged, one
  // line says so and none is asked for; below it, the loop is bounded by the log's own length.
  const loggedCounted = [...logged.keys()].filter((sequence) => sequence <= counted).length;
  if (!Number.isSafeInteger(counted) || counted - loggedCounted > MAX_ROTATIONS) {
    found.push({
      code: 'LOG_ROTATION_UNLOGGED',
      message: `the snapshot counts ${counted} key rotations, and the log records ${loggedCounted} of them: more than ${MAX_ROTATIONS} rotations no entry records (not each asked for)`,
    });
    return [...found, ...(await brokenLinks(reads, logged, snapshot))];
  }
  // As for every other statement, only a rotation made since the log began must be logged: a registry that
  // rotated before it kept a log has no entry for it (its rotation, dated before the log's first entry, is
  // still held to the chain, `brokenLinks`), and was refused LOG_ROTATION_UNLOGGED.
  const first = entries[0]?.entry.time;
  const began = first === undefined ? undefined : Date.parse(first);
  for (let sequence = 1; sequence <= counted; sequence++) {
    if (logged.has(sequence)) continue;
    const bytes = await load(sequence);
    const read = bytes === undefined ? undefined : readRotationOrNone(bytes, rotationKey(sequence));
    if (
      read !== undefined &&
      read.rotation.sequence === sequence &&
      registryIdentity(read.rotation.registry) === registryIdentity(registry) &&
      (began === undefined || isDatedBefore(read.rotation.created, began))
    ) {
      reads.set(sequence, read);
      continue;
    }
    found.push({
      code: 'LOG_ROTATION_UNLOGGED',
      message: `${rotationKey(sequence)}, rotation ${sequence} of the ${counted} the snapshot counts, ${bytes !== undefined ? 'is served, but' : 'is not served, and'} no log entry records it`,
    });
  }
  found.push(...(await brokenLinks(reads, logged, snapshot)));
  return found;
}

/** A rotation as `readSignedRotation` reads it, or undefined for bytes that are none. */
function readRotationOrNone(bytes: Uint8Array, where: string): ReadRotation | undefined {
  try {
    return readSignedRotation(bytes, where);
  } catch {
    return undefined;
  }
}

/**
 * The rotations the log and the documents agree on, held to one another as a client follows them
 * (client/key-chain.ts): each from the key the one before it rotated to, signed by both its keys (the first
 * by the key it names as the one it rotates from, which the pipeline holds to its fingerprint), and the
 * last the snapshot counts to the key that signs the snapshot. Each rotation matching its entry, a log and
 * documents forged alike (rotation 2 from a key rotation 1 never named, or the last to a key that signs
 * nothing) passed, though a client holding an older key refuses them (`KEY_ROTATION_BROKEN`). A rotation
 * missing, or not its entry's, is reported as such (`compareRotations`), and the links beside it are
 * left unjudged rather than reported twice.
 */
async function brokenLinks(
  reads: ReadonlyMap<number, ReadRotation>,
  logged: ReadonlyMap<number, LogEntry>,
  snapshot: { readonly counted: number; readonly fingerprint: string },
): Promise<LogDisagreement[]> {
  const found: LogDisagreement[] = [];
  const broken = (sequence: number, why: string) => {
    const entry = logged.get(sequence);
    found.push({
      code: 'LOG_ROTATION_BROKEN',
      ...(entry ? { seq: entry.seq } : {}),
      message: `${rotationKey(sequence)}: ${why}`,
    });
  };
  for (const [sequence, read] of [...reads].sort(([a], [b]) => a - b)) {
    const before = reads.get(sequence - 1);
    if (sequence > 1 && !before) continue;
    const from = before ? before.rotation.next : read.rotation.previous;
    if (before && read.rotation.previous.fingerprint !== from.fingerprint) {
      broken(
        sequence,
        `rotates from key ${read.rotation.previous.fingerprint}, but rotation ${sequence - 1} rotated to key ${from.fingerprint}: the chain of keys is broken there`,
      );
      continue;
    }
    const current = await readKey(from.key);
    if (current?.fingerprint !== from.fingerprint) {
      broken(sequence, `the key it rotates from, ${from.fingerprint}, is not given as that public key`);
      continue;
    }
    if (isSecretKeyText(from.key, current)) {
      broken(sequence, `the key it rotates from, ${from.fingerprint}, is given with its secret key material`);
      continue;
    }
    try {
      await verifyRotationStep(read, { current: current.key, sequence });
    } catch (error) {
      if (!(error instanceof TrustError)) throw error;
      broken(sequence, error.message);
    }
  }
  const last = reads.get(snapshot.counted);
  if (last && last.rotation.next.fingerprint !== snapshot.fingerprint)
    broken(
      snapshot.counted,
      `the last of the ${snapshot.counted} rotations the snapshot counts rotates to key ${last.rotation.next.fingerprint}, but the snapshot is signed by key ${snapshot.fingerprint}`,
    );
  return found;
}

async function readKey(armored: string): Promise<PublicKeyInfo | undefined> {
  try {
    return await readPublicKey(armored);
  } catch {
    return undefined;
  }
}

/** Why an envelope is not signed by the entry's signer (or names another key than its entry), if it is not. */
async function signatureProblem(entry: LogEntry, read: ReadAction): Promise<string | undefined> {
  const key = await readKey(read.key);
  if (!key) return 'its key is not an OpenPGP public key';
  // Published with its secret part, anyone who reads the envelope may sign as that key: nothing it signs
  // is its owner's word (the registry refuses such a key in an action it takes).
  if (isSecretKeyText(read.key, key))
    return `its key (${key.fingerprint}) holds its secret key material, which anyone reading it may sign with`;
  const at = new Date(Date.parse(entry.time) + ACTION_CLOCK_SKEW_MS);
  const verdict = await verifyDetachedSignature(read.text, read.signature, [key.key], at);
  if (!verdict.ok) return `its signature does not verify by its key (${key.fingerprint}): ${verdict.message}`;
  if (verdict.fingerprint !== entry.signer)
    return `it is signed by ${verdict.fingerprint}, not by ${entry.signer} as its entry says`;
  // The key an owners add or a transfer names is the one its entry records as added or made owner.
  const action = read.action;
  const named =
    action.action === 'owners-add'
      ? entry.detail?.added
      : action.action === 'transfer'
        ? entry.detail?.owner
        : undefined;
  if ((action.action === 'owners-add' || action.action === 'transfer') && named !== undefined) {
    const owner = await readKey(action.key);
    if (owner?.fingerprint !== named)
      return `it names key ${owner?.fingerprint ?? '(unreadable)'}, not ${named} as its entry records`;
  }
  return undefined;
}
