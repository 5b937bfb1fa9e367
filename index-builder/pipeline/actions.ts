/**
 * Lifecycle actions in the pipeline: judging an action envelope that landed in `incoming/` (its registry
 * and time, its signature, the signer's rights, replay, the plugin), folding a batch's accepted publishes
 * and actions into the plugin documents in upload order, and the writes only actions make: the envelope at
 * `log/actions/<digest>.json`, the marker that an action was applied (`state/actions/<digest>.json`, in the
 * intake store), `keys/revoked.json`, and the files of a removed version deleted.
 *
 * A crash retry converges. The marker is written right after the log entry (both before the plugin
 * documents), and names the upload that applied it: the same upload met again while its outcome is not
 * recorded is a run that died, whose action is applied again idempotently (an effect found already there is
 * no error) and not logged again; any other upload of the same action is a replay (ACTION_REPLAYED). Between
 * the log's flush and the marker, the log itself says it (`LogWriter.entry`); and an action the published log
 * holds as applied is a replay with no marker as well (a marker rolled back on its own: `loggedApplied`),
 * unless it is the very upload its run logged it for, in the intake store from before its envelope was
 * published (`loggedForThisUpload`: its marker and intent record lost after that run died).
 *
 * An action made before one already applied to the same state of the plugin is refused (ACTION_SUPERSEDED,
 * lifecycle.ts `ActionOrder`): the view holds each plugin's order as the batch changed it, and the order is
 * recorded (`state/action-order/<name>.json`) after the log, with the markers; a resumed action counts too.
 * An action refused as changing nothing that still stands for its slot is logged too (`NO_EFFECT`): every
 * record of the order is in the log, which a rebuild restores it from. The retry of the upload a run that
 * died logged so takes its outcome from that entry (`loggedNoEffect`), not from a second judgement.
 */
import type { ActionKind } from '../action-kinds.ts';
import {
  ACTION_CLOCK_SKEW_MS,
  ACTION_MAX_AGE_MS,
  type ActionBody,
  actionSubject,
  actionTimeAndPlaceProblems,
  isJsonSubmission,
  isOperatorAction,
  MAX_ACTION_BYTES,
  newActionProblems,
  type ReadAction,
  readSignedAction,
} from '../actions.ts';
import { sha256Hex } from '../digest.ts';
import { type Problem, problem, problemsFrom, StoreError } from '../errors.ts';
import {
  ACTION_MARKERS_PREFIX,
  ACTION_ORDERS_PREFIX,
  actionEnvelopeKey,
  actionMarkerKey,
  actionOrderKey,
  INCOMING_PREFIX,
  statusKey,
  submissionIdFromDigest,
} from '../layout.ts';
import {
  type ActionOrder,
  type ActionOrderDocument,
  actionDetail,
  actionSlot,
  applyAction,
  createdInstant,
  findVersion,
  listedWhenLogged,
  loggedOrders,
  mergedOrder,
  type NamedKey,
  parseActionOrder,
  prunedOrder,
  revocationOf,
  revokeInDocument,
  type SlotRecord,
  slotRecord,
  supersededProblem,
  supersedingAction,
  supersedingActions,
  versionFiles,
  withOvertakenRestored,
  withRevokedKey,
  withSlotRecord,
} from '../lifecycle.ts';
import { allSettledValues, forEachLimited, limitRate, mapLimited } from '../limited.ts';
import { type LogEntry, NO_EFFECT } from '../log.ts';
import { lookAlikesWithin } from '../look-alike.ts';
import type { LogHead, PluginDocument, RevokedKeysDocument, VersionRecord } from '../model.ts';
import { MAX_ROTATION_BYTES, SIGNED_ROTATION_SCHEMA } from '../rotation.ts';
import { CACHE_IMMUTABLE, CACHE_PRIVATE, existingKeys, listAll } from '../store.ts';
import { authorizeAction, checkActionSignature, readSubmittedKey, trustListProblems } from '../trust.ts';
import type { PipelineContext } from './context.ts';
import type {
  AcceptedAction,
  ActionInfo,
  BatchItem,
  BatchView,
  Evaluation,
  Judging,
  OrderedRefusal,
} from './evaluate.ts';
import { rejected } from './evaluate.ts';
import type { Upload } from './intake.ts';
import { type LogWriter, pendingIntents, recentLogEntries, standingEntries } from './log-writer.ts';
import type { SubmissionOutcome } from './outcomes.ts';
import { type AddedVersion, mergePluginDocument } from './plugin-document.ts';
import { readJson, WRITE_CONCURRENCY } from './site-writer.ts';

/** `state/actions/<digest>.json`: an action was applied, by which upload, at which log entry. */
export interface ActionMarker {
  readonly schema: 'plugindex/applied-action/v1';
  readonly digest: string;
  readonly action: ActionKind;
  readonly plugin?: string;
  readonly version?: string;
  readonly signer: string;
  readonly seq: number;
  /** When the registry applied it (the batch's time): a retry applies it again with this time. */
  readonly time: string;
  /**
   * The id of the submission that applied it (`status/<id>.json`). Absent from a marker a rebuild restored
   * from the log (`restoreActionRecords`), which does not name it (unless an intent record still does, or
   * its upload still waits in `incoming/`): any upload of that action is a replay.
   */
  readonly submission?: string;
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/**
 * `detail.effect` of the log entry of an action refused as changing nothing (the plugin already was as it
 * says) that still stands for its slot (`Rejected.ordered`): logged so the order a rebuild restores from the
 * log is the one the batches recorded. Defined with the entry's form (log.ts), which readers hold it to.
 */
export { NO_EFFECT };

type ReadUpload = Extract<Upload, { kind: 'read' }>;

/** The `schema` of a JSON upload, when it is a JSON object small enough to be a rotation; else undefined. */
function envelopeSchema(bytes: Uint8Array): unknown {
  if (bytes.byteLength > MAX_ROTATION_BYTES) return undefined;
  try {
    return (JSON.parse(decoder.decode(bytes)) as { schema?: unknown } | null)?.schema;
  } catch {
    return undefined;
  }
}

/** The key an `owners-add` or `transfer` names, read as a submitted key is; or why it cannot be read. */
async function namedKey(
  action: ReadAction['action'],
  judging: Judging,
): Promise<{ readonly key?: NamedKey; readonly problem?: Problem }> {
  if (action.action !== 'owners-add' && action.action !== 'transfer') return {};
  const read = await readSubmittedKey(
    action.key,
    { at: '/key', name: 'the key the action names' },
    judging.trusted.registryFingerprints,
  );
  if (read.problem) return { problem: read.problem };
  return { key: { fingerprint: read.key.fingerprint, fingerprints: read.key.fingerprints } };
}

/**
 * The outcome recorded for submission `id` when it says accepted (a run that died after it recorded it, or
 * the same upload again), else undefined.
 */
export async function acceptedOutcome(
  ctx: PipelineContext,
  id: string,
): Promise<SubmissionOutcome | undefined> {
  const outcome = await readJson<SubmissionOutcome>(ctx.intake, statusKey(id));
  return outcome?.status === 'accepted' ? outcome : undefined;
}

/** What ACTION_UNKNOWN_PLUGIN says was expected: it gave the name found alone, twice over with the message. */
const UNKNOWN_PLUGIN_EXPECTED = 'the name of a plugin this registry publishes (as its index.json lists it)';

/** ACTION_REPLAYED: `read` was applied already (a marker, or the log, says so). */
function replayedProblem(read: ReadAction): Problem {
  return problem('ACTION_REPLAYED', 'envelope:/action', `this action (${read.digest}) was applied already`, {
    expected: 'a new action (plugindex makes each with a fresh nonce)',
  });
}

/**
 * An action applied before, met again: a run that died (the same upload, its outcome not recorded, or the
 * log's own entry between the flush and the marker) resumes; anything else is a replay.
 */
async function replayOrResume(
  ctx: PipelineContext,
  upload: ReadUpload,
  read: ReadAction,
  judging: Judging,
  info: ActionInfo,
): Promise<Evaluation | undefined> {
  const replayed = (): Evaluation => rejected([replayedProblem(read)], { action: info });
  if (judging.view.applied.has(read.digest)) return replayed();
  const recorded = await readJson<ActionMarker>(ctx.intake, actionMarkerKey(read.digest));
  // The copy of an entry the registry voided since (its intent record, naming it, read at open) stands for
  // nothing: the action never took effect, and its upload is judged anew.
  const marker = recorded && !judging.log.voided.has(recorded.seq) ? recorded : undefined;
  const resume = (
    resumed: Omit<NonNullable<AcceptedAction['resumed']>, 'from'>,
    signer: string,
    from: 'marker' | 'log',
  ): Promise<Evaluation> => resumeAction(ctx, read, judging, resumed, signer, from);
  if (marker) {
    if (marker.submission !== upload.id) return replayed();
    const finished = (await acceptedOutcome(ctx, upload.id)) !== undefined;
    return resume(
      { seq: marker.seq, time: marker.time, ...(finished ? { finished } : {}) },
      marker.signer,
      'marker',
    );
  }
  const entry = judging.log.entry(read.action.action, read.digest);
  if (!entry) return undefined;
  const logged = judging.log.intentOf(read.digest);
  // An action logged as changing nothing (a statement that stood for its slot) applied nothing. The upload
  // that run logged it for is told what the log says of it (`loggedNoEffect`): judged again, the run's own
  // later actions, logged after it, would refuse it as superseded (or another reason), while its entry
  // stays. Any other upload of it is judged again; its entry is found, not appended twice (`appendToLog`).
  if (entry.detail?.effect === NO_EFFECT)
    return logged === upload.id ? loggedNoEffect(read, entry, judging, info) : undefined;
  // The upload that run logged it for, as its intent record names it, is the one to finish: the envelope is
  // public under log/actions/ from before the entry, and a copy of it taken first (alone in its batch, as
  // the local server takes each submission) was finished in its place, the upload that was logged then
  // told ACTION_REPLAYED.
  if (logged !== undefined && logged !== upload.id) return replayed();
  // Logged by a run that died before its marker: the same action, signed by the key the log names, as
  // judged then.
  const signer = await loggedSigner(read, entry, judging);
  if (signer !== entry.signer) return replayed();
  return resume({ seq: entry.seq, time: entry.time }, entry.signer, 'log');
}

/**
 * The action a run that died accepted and logged (`resumed`: its entry, or its marker), resumed for the upload
 * it was logged for: applied again to the view, idempotently, where the log has it, unless finished already.
 */
async function resumeAction(
  ctx: PipelineContext,
  read: ReadAction,
  judging: Judging,
  resumed: Omit<NonNullable<AcceptedAction['resumed']>, 'from'>,
  signer: string,
  from: 'marker' | 'log',
): Promise<Evaluation> {
  judging.view.applied.add(read.digest);
  const { key } = await namedKey(read.action, judging);
  const listed = resumed.finished ? undefined : await listedAtEntry(judging, read.action, resumed);
  // What comes after it in the batch is judged with its effect, as the run that died judged it; unless an
  // action made after it was applied to its slot since (another run, while this upload waited for its
  // retry): put back, its effect would undo that newer statement, which the log records after it.
  const passed = !resumed.finished && (await overtaken(ctx, judging, read, key, resumed.time));
  if (!resumed.finished && !passed) {
    await applyAgain(judging, read, resumed.time, key, listed);
    await orderApplied(judging.view, read, key, resumed.time);
  }
  // Overtaken, it is put back under the newer statements, where the log has it (`withOvertakenRestored`).
  const underneath = passed ? await loggedFrom(judging, read.action, resumed) : undefined;
  if (underneath && read.action.action !== 'revoke-key') {
    const doc = await judging.view.current(read.action.plugin);
    if (doc) judging.view.change(withOvertakenRestored(doc, underneath, listed));
  }
  return {
    kind: 'action-accepted',
    read,
    signer,
    ...(await publishedVersion(judging.view, read.action)),
    ...(key ? { key } : {}),
    resumed: {
      ...resumed,
      from,
      ...(passed ? { overtaken: true as const } : {}),
      ...(underneath ? { underneath } : {}),
      ...(listed ? { listed } : {}),
    },
  };
}

/**
 * Of a resumed deprecate or undeprecate, the versions listed when its entry was appended (lifecycle.ts
 * `listedWhenLogged`, by the log's order), the only ones its retry marks by its range (or, overtaken, that
 * `withOvertakenRestored` counts as listed before it); undefined for any other action. Applied again by its
 * range to the versions at hand, the retry marked those published since (by another run while its upload
 * waited, or earlier in this batch), which its signer never saw: the log's replay (`verify --url`,
 * LOG_VERSION_DEPRECATION_DIFFERS) has them as they were published.
 */
async function listedAtEntry(
  judging: Judging,
  action: ActionBody,
  resumed: { readonly seq: number; readonly time: string },
): Promise<ReadonlySet<string> | undefined> {
  if (action.action !== 'deprecate' && action.action !== 'undeprecate') return undefined;
  const doc = await judging.view.current(action.plugin);
  if (!doc) return undefined;
  // Every publish logged since its entry was made is among these: the log is read back from its time, less
  // the clock skew between runs, as `loggedFrom` reads it.
  const since = Date.parse(resumed.time) - ACTION_CLOCK_SKEW_MS;
  const entries = await judging.log.entriesSince(since);
  return listedWhenLogged(doc, await judging.view.published(action.plugin), resumed.seq, entries);
}

/**
 * The entry the published log holds, as applied, of the action `read` (signed by `signer`), when it is this
 * very upload's: no marker and no intent record names the upload it was logged for (both lost: deleted, or
 * put back from an older copy, after its run died), and the upload was in the intake store before the run
 * published the envelope under `log/actions/` (both times the stores'). A copy of the envelope can be made
 * only once it is published, so an upload from before is the one the run took (or another its signer made of
 * the same envelope, before anyone else could): its action took effect, and it is finished as that run's
 * retry, not refused ACTION_REPLAYED while the log holds it (and, had the run died before its documents,
 * with no document ever showing it). Undefined otherwise: any later upload is a replay.
 */
async function loggedForThisUpload(
  ctx: PipelineContext,
  upload: ReadUpload,
  read: ReadAction,
  judging: Judging,
  signer: string,
): Promise<LogEntry | undefined> {
  if (judging.log.intentOf(read.digest) !== undefined) return undefined;
  const action = read.action;
  const since = Number(createdInstant(action.created) / 1_000_000n) - ACTION_CLOCK_SKEW_MS;
  const entry = (await judging.log.entriesSince(since)).find(
    (e) => e.type === action.action && e.digest === read.digest && e.detail?.effect !== NO_EFFECT,
  );
  if (entry?.signer !== signer) return undefined;
  const [mine, envelope] = await allSettledValues([
    ctx.intake.head(upload.key),
    ctx.site.head(actionEnvelopeKey(read.digest)),
  ]);
  if (!mine || !envelope) return undefined;
  return mine.lastModified.getTime() <= envelope.lastModified.getTime() ? entry : undefined;
}

/**
 * The action a run that died logged for submission `id`, whose upload is not at hand (deleted since, by its
 * publisher or an operator clearing `incoming/`, or left for a later batch), finished by this batch as its
 * retry would finish it (`replayOrResume`: applied again, idempotently, where the log has it; or, logged as
 * changing nothing, ACTION_NO_EFFECT), from its envelope under `log/actions/`: written before its entry,
 * immutable, and the very bytes of that upload (their digest begins its id). Its outcome is recorded as the
 * run that died would have recorded it; the upload, if it is still somewhere in `incoming/`, keeps it when
 * a later batch meets it (its marker names it, its acceptance recorded). Left unfinished, the log held an
 * action no document showed, for good, and `verify --url` reported the registry (LOG_DISAGREES); and a retry
 * that took only part of the dead run's batch left the actions it did not take to be overtaken by those it
 * took, an advisory and its withdrawal coming back as no advisory at all. Undefined (nothing to finish here)
 * when its outcome is recorded already, its envelope is gone or not those bytes, or the log no longer says it
 * was that upload's.
 */
export async function finishFromLog(
  ctx: PipelineContext,
  id: string,
  judging: Judging,
): Promise<BatchItem | undefined> {
  const { log } = judging;
  const intent = log.intended(id);
  const unfinished = async (): Promise<undefined> => {
    log.release(id);
    return undefined;
  };
  if (!intent || (await ctx.intake.head(statusKey(id))) !== undefined) return unfinished();
  const key = actionEnvelopeKey(intent.digest);
  const envelope = await ctx.site.get(key);
  if (!envelope) return unfinished();
  const sha256 = sha256Hex(envelope.body);
  if (!new RegExp(`-${sha256.slice(0, 12)}(-[0-9a-f]{8})?$`).test(id)) return unfinished();
  let read: ReadAction;
  try {
    read = readSignedAction(envelope.body);
  } catch {
    return unfinished();
  }
  if (read.digest !== intent.digest || read.action.action !== intent.type) return unfinished();
  const upload: ReadUpload = { kind: 'read', key, id, sha256, bytes: envelope.body, etag: envelope.etag };
  const info: ActionInfo = { kind: read.action.action, ...actionSubject(read.action) };
  const evaluation = await replayOrResume(ctx, upload, read, judging, info);
  const finished =
    evaluation?.kind === 'action-accepted'
      ? evaluation.resumed !== undefined
      : evaluation?.kind === 'rejected' && evaluation.problems.some((p) => p.code === 'ACTION_NO_EFFECT');
  if (!evaluation || !finished) return unfinished();
  return { upload, evaluation, fromLog: true };
}

/**
 * The plugin's log entries from a resumed action's own on (it first), in log order: what its retry puts it
 * back under when it was overtaken. Read back from its entry's time, less the clock skew between runs, as far
 * as `takeLoggedSince` read for the same action; undefined when its entry is not among them.
 */
async function loggedFrom(
  judging: Judging,
  action: ActionBody,
  resumed: { readonly seq: number; readonly time: string },
): Promise<LogEntry[] | undefined> {
  // Only these are overtaken by a related slot's action that leaves part of their effect standing; any other
  // only within its own slot, whose newest statement the document shows already.
  if (action.action !== 'transfer' && action.action !== 'deprecate' && action.action !== 'undeprecate')
    return undefined;
  const since = Date.parse(resumed.time) - ACTION_CLOCK_SKEW_MS;
  const entries = (await judging.log.entriesSince(since)).filter(
    (e) => e.plugin === action.plugin && e.seq >= resumed.seq,
  );
  return entries[0]?.seq === resumed.seq ? entries : undefined;
}

/** The key that signed `read`, checked as it was when the log entry of it was appended. */
async function loggedSigner(
  read: ReadAction,
  entry: LogEntry,
  judging: Judging,
): Promise<string | undefined> {
  const signer = await checkActionSignature({
    text: read.text,
    signature: read.signature,
    key: read.key,
    trusted: judging.trusted,
    now: new Date(entry.time),
  });
  return signer.fingerprint;
}

/**
 * The outcome of an action a run that died logged as changing nothing (`NO_EFFECT`) for this very upload:
 * ACTION_NO_EFFECT, as its entry says; nothing applied, ordered or logged again. Undefined (judged again)
 * when the key the log names did not sign it.
 */
async function loggedNoEffect(
  read: ReadAction,
  entry: LogEntry,
  judging: Judging,
  info: ActionInfo,
): Promise<Evaluation | undefined> {
  const signer = await loggedSigner(read, entry, judging);
  if (signer !== entry.signer) return undefined;
  const subject = entry.version === undefined ? '' : ` ${entry.version}`;
  return rejected(
    [
      problem(
        'ACTION_NO_EFFECT',
        'envelope:/action',
        `${read.action.action}${subject} of ${entry.plugin ?? info.plugin} changed nothing when it was judged (log entry ${entry.seq}, ${entry.time}): the plugin already was as it says, and the log records it so`,
        { expected: 'an action that changes something' },
      ),
    ],
    { action: { ...info, ...(entry.version ? { version: entry.version } : {}), signer } },
  );
}

/**
 * Applies an action a run that died accepted to the view, as far as it still applies (an effect already
 * published is no error), so the submissions after it are judged with its effect.
 */
async function applyAgain(
  judging: Judging,
  read: ReadAction,
  at: string,
  key: NamedKey | undefined,
  listed: ReadonlySet<string> | undefined,
): Promise<void> {
  const { view, trusted } = judging;
  const action = read.action;
  const revoked = await view.revoked();
  if (action.action === 'revoke-key') {
    const listed = withRevokedKey(
      revoked,
      { fingerprint: action.fingerprint, revoked: at, reason: action.reason, action: read.digest },
      trusted.registryFingerprints,
    );
    if (listed.ok) view.changeRevoked(listed.list);
    for (const name of await loadEveryPlugin(view)) {
      const doc = await view.current(name);
      const marked = doc && revokeInDocument(doc, action.fingerprint, { at, reason: action.reason });
      if (marked) view.change(marked);
    }
    return;
  }
  const doc = await view.current(action.plugin);
  if (!doc) return;
  const applied = applyAction(doc, action, {
    at,
    ...(key ? { key } : {}),
    registryFingerprints: trusted.registryFingerprints,
    isRevoked: (fp) => revocationOf(revoked, fp) !== undefined,
    // Logged already: applied as logged, past the bounds for new actions (MAX_ADVISORIES), to the versions
    // listed then.
    logged: true,
    ...(listed ? { listed } : {}),
  });
  if (applied.ok) view.change(applied.doc);
}

/**
 * Has an action made after `read`, judged at `judged`, been applied to its slot (or one within or around it)?
 * Made when its slot's record says (`slotRecord`): an action dated ahead of the registry clock was made by the
 * time the registry judged it, and one another owner made after that overtakes it, as it does one dated true.
 * Compared with its signed date, such an action's retry put its effect back over that newer one.
 * A newer record that a run that died logged for a later upload of this batch (`awaitsItsRetry`) overtakes
 * nothing: it is that run's own later upload (or another dead run's), put back after this one. Counted,
 * it left a batch's earlier actions out of its retry: an advisory and its withdrawal in one batch came back
 * as no advisory at all, and a yank the operator's transfer followed came back logged but not shown.
 */
async function overtaken(
  ctx: PipelineContext,
  judging: Judging,
  read: ReadAction,
  key: NamedKey | undefined,
  judged: string,
): Promise<boolean> {
  const action = read.action;
  if (action.action === 'revoke-key') return false;
  const slot = actionSlot(action, key);
  if (slot === undefined) return false;
  const made = slotRecord(action.created, read.digest, judged).created;
  await takeLoggedSince(judging, made);
  const standing: Record<string, SlotRecord> = { ...(await judging.view.order(action.plugin)) };
  for (;;) {
    const newer = supersedingAction(standing, slot, made);
    if (!newer) return false;
    if (!(await awaitsItsRetry(ctx, judging, newer.digest))) return true;
    delete standing[newer.slot];
  }
}

/**
 * Is the action `digest` one a run that died logged (an intent record names its upload) that this batch
 * finishes and has not applied yet, its outcome not recorded: an upload at hand, or one finished from the log
 * (`finishFromLog`: its upload deleted since, or left for a later batch)? This batch applies it again after,
 * in the log's order. One whose outcome is recorded was published with that run's documents, which this
 * batch starts from. Before, one whose upload was left for a later batch overtook (the documents that run
 * published might show it already), and the earlier actions of its batch were left out of the retry for good.
 */
async function awaitsItsRetry(ctx: PipelineContext, judging: Judging, digest: string): Promise<boolean> {
  if (judging.view.applied.has(digest)) return false;
  const submission = judging.log.intentOf(digest);
  return (
    submission !== undefined &&
    judging.log.atHand(submission) &&
    (await ctx.intake.head(statusKey(submission))) === undefined
  );
}

/**
 * Takes into the view's action orders what the published log holds of the actions that could supersede one
 * made at `made`: those logged after it (an action's slot records it as made no later than it was logged,
 * `slotRecord`), read back to the first segment begun before it, with the clock's skew as margin between
 * runs' clocks. The intake store's record alone was trusted before: put back older on its own (a copy of it
 * restored, or written by whoever may write `state/`), it let an action through that an action logged since
 * had superseded. For an action made lately that is the log's last segment, which the batch holds already.
 */
async function takeLoggedSince(judging: Judging, made: string): Promise<void> {
  const since = Number(createdInstant(made) / 1_000_000n) - ACTION_CLOCK_SKEW_MS;
  await judging.view.takeLoggedOrders(judging.log, since);
}

/**
 * Records in the view that `read`, judged at `judged`, set its slot (if it has one): a later action made
 * before it is refused.
 */
async function orderApplied(
  view: BatchView,
  read: ReadAction,
  key: NamedKey | undefined,
  judged: string,
): Promise<void> {
  const action = read.action;
  if (action.action === 'revoke-key') return;
  const slot = actionSlot(action, key);
  if (slot) await view.applyOrder(action.plugin, slot, slotRecord(action.created, read.digest, judged));
}

/** Reads every plugin document into the view: a revocation marks versions across the registry. */
async function loadEveryPlugin(view: BatchView): Promise<string[]> {
  const names = await view.allNames();
  for (const name of names) await view.current(name);
  return names;
}

/**
 * Judges one action envelope, in batch order, against the view (published, and as the batch changed it):
 * its form, replay, registry and time, signature (judged as a publisher's is), a revoked signer, the
 * signer's rights, the plugin, and what the action does to it. An accepted action is applied to the view.
 */
export async function evaluateAction(
  ctx: PipelineContext,
  upload: ReadUpload,
  judging: Judging,
): Promise<Evaluation> {
  const { view, now, trusted } = judging;
  if (envelopeSchema(upload.bytes) === SIGNED_ROTATION_SCHEMA)
    return rejected([
      problem('ROTATION_INVALID', 'envelope:/schema', 'a registry key rotation is not an action', {
        expected: 'submit rotations with plugindex rotate-key',
      }),
    ]);
  let read: ReadAction;
  try {
    read = readSignedAction(upload.bytes);
  } catch (error) {
    return rejected(problemsFrom(error));
  }
  const action = read.action;
  const info: ActionInfo = { kind: action.action, ...actionSubject(action) };
  const again = await replayOrResume(ctx, upload, read, judging, info);
  if (again) return again;

  const problems: Problem[] = [...actionTimeAndPlaceProblems(action, ctx.config.url, now)];
  const checked = await checkActionSignature({
    text: read.text,
    signature: read.signature,
    key: read.key,
    trusted,
    now,
  });
  problems.push(...checked.problems);
  const signer = checked.fingerprint;
  const known = { action: { ...info, ...(signer ? { signer } : {}) } };
  if (problems.length > 0 || !signer) return rejected(problems, known);
  // No marker, and no run that died owes its retry an entry of it (`replayOrResume`): an action the
  // published log holds as applied is a replay all the same. The marker is a copy of that entry, and one
  // gone on its own (`state/actions/` put back from a copy, or deleted by whoever may write `state/`) let
  // its public envelope, uploaded again, be judged anew: where the state no longer showed all of it, its
  // signer's statement applied again over what came since (a range deprecated again with the versions
  // published after it) and was logged twice. Read back as far as an action made then could have been
  // logged, as the slot orders are (`takeLoggedSince`; for one made lately, the log's last segment, which
  // the batch holds), and only for an action within its age, signed by a key the registry trusts: neither
  // an envelope anyone makes up nor one dated years back makes a batch read the log further.
  await takeLoggedSince(judging, action.created);
  if (view.loggedApplied(action.action, read.digest)) {
    // Unless this very upload is the one its run logged it for, its marker and intent record lost since.
    const own = await loggedForThisUpload(ctx, upload, read, judging, signer);
    if (own) return resumeAction(ctx, read, judging, { seq: own.seq, time: own.time }, own.signer, 'log');
    return rejected([replayedProblem(read)], known);
  }
  // Judged here, past the replay and resume above: an action logged before these were refused is
  // finished or refused as a replay, as ever, never refused for what it says.
  const unsaid = newActionProblems(action);
  if (unsaid.length > 0) return rejected(unsaid, known);
  if (await view.isRevoked(signer))
    return rejected(
      [
        problem(
          'ACTION_KEY_REVOKED',
          'envelope:/signature',
          `key ${signer} was revoked by the registry's operator`,
          {
            expected: 'a signature by a key that is not revoked',
          },
        ),
      ],
      known,
    );
  const operatorOnly = isOperatorAction(action.action);
  const at = now.toISOString();
  const registryFingerprints = trusted.registryFingerprints;
  const refuse = (found: readonly Problem[]) => rejected(found, known);

  if (action.action === 'revoke-key') {
    const denied = authorizeAction({ trusted, signer, operatorOnly });
    if (denied.length > 0) return refuse(denied);
    const listed = withRevokedKey(
      await view.revoked(),
      { fingerprint: action.fingerprint, revoked: at, reason: action.reason, action: read.digest },
      registryFingerprints,
    );
    if (!listed.ok) return refuse(listed.problems);
    const docs: PluginDocument[] = [];
    for (const name of await loadEveryPlugin(view)) {
      const doc = await view.current(name);
      if (doc) docs.push(doc);
    }
    // Only a primary key the registry knows: signers are judged, and versions marked, by their primary
    // fingerprint, so a subkey's (or a mistyped) fingerprint would be listed and do nothing. The registry
    // holds no key that would map a subkey to its primary; refusing tells the operator to name the primary.
    const fingerprint = action.fingerprint;
    const known =
      ctx.config.publishers.some((p) => p.fingerprint === fingerprint) ||
      ctx.config.operators.some((o) => o.fingerprint === fingerprint) ||
      docs.some((d) => d.owners.includes(fingerprint) || d.versions.some((v) => v.publisher === fingerprint));
    if (!known)
      return refuse([
        problem(
          'ACTION_UNKNOWN_KEY',
          '/fingerprint',
          `key ${fingerprint} is not the primary key of any publisher, owner or operator this registry knows (a subkey's fingerprint is not revoked: name its primary key)`,
          {
            expected: 'the primary fingerprint of a key that published, owns a plugin, or is configured',
            found: fingerprint,
          },
        ),
      ]);
    for (const doc of docs) {
      const marked = revokeInDocument(doc, fingerprint, { at, reason: action.reason });
      if (marked) view.change(marked);
    }
    view.changeRevoked(listed.list);
    view.applied.add(read.digest);
    return { kind: 'action-accepted', read, signer };
  }

  if (operatorOnly) {
    const denied = authorizeAction({ trusted, signer, operatorOnly });
    if (denied.length > 0) return refuse(denied);
  }
  const doc = await view.current(action.plugin);
  if (!doc)
    return refuse([
      problem('ACTION_UNKNOWN_PLUGIN', '/plugin', `this registry has no plugin "${action.plugin}"`, {
        expected: UNKNOWN_PLUGIN_EXPECTED,
        found: action.plugin,
      }),
    ]);
  const denied = authorizeAction({
    trusted,
    signer,
    operatorOnly,
    plugin: doc.name,
    owners: doc.owners,
    config: ctx.config,
  });
  if (denied.length > 0) return refuse(denied);
  const named = await namedKey(action, judging);
  if (named.problem) return refuse([named.problem]);
  // Under `restricted`, a new owner is one the trust list lets publish the name, whoever signs.
  if (named.key && ctx.config.policy === 'restricted') {
    const untrusted = trustListProblems(ctx.config, named.key.fingerprint, doc.name, '/key');
    if (untrusted.length > 0) return refuse(untrusted);
  }
  // The newest signed statement about a piece of state stands: one made before it is refused, whatever
  // order they arrived in (lifecycle.ts `ActionOrder`).
  const slot = actionSlot(action, named.key);
  if (slot) await takeLoggedSince(judging, action.created);
  const order = await view.order(doc.name);
  const newer = slot && supersedingAction(order, slot, action.created);
  if (slot && newer) {
    const refusal = refuse([supersededProblem(doc.name, action.created, newer)]);
    // Superseded only by what this batch applied so far: a refusal that stands only while they do.
    if (supersedingAction(await view.recordedOrder(doc.name), slot, action.created)) return refusal;
    const digests = supersedingActions(order, slot, action.created).map((record) => record.digest);
    return { ...refusal, supersededIn: { plugin: doc.name, digests } };
  }
  const revoked = await view.revoked();
  const applied = applyAction(doc, action, {
    at,
    ...(named.key ? { key: named.key } : {}),
    registryFingerprints,
    isRevoked: (fp) => revoked.keys.some((k) => k.fingerprint === fp),
  });
  if (!applied.ok) {
    // The state already is what a newer statement says: that statement still stands against an older one
    // met later (the older would otherwise apply and undo it: an owner removed, then added by a delayed add).
    // Logged as well as recorded, unless its slot records it already (its envelope is public: uploaded again
    // by anyone, it would log again each time): what the order holds, the log says, and a rebuild after a
    // lost `state/` restores it.
    if (slot && statesTheState(action, applied.problems)) {
      if ((await view.order(doc.name))[slot]?.digest === read.digest) return refuse(applied.problems);
      const record = slotRecord(action.created, read.digest, at);
      await view.applyOrder(doc.name, slot, record);
      const ordered: OrderedRefusal = {
        plugin: doc.name,
        slot,
        record,
        read,
        signer,
        ...(named.key ? { key: named.key } : {}),
        ...(await publishedVersion(view, action)),
      };
      return { ...refuse(applied.problems), ordered };
    }
    return refuse(applied.problems);
  }
  view.change(applied.doc);
  view.applied.add(read.digest);
  if (slot) await view.applyOrder(action.plugin, slot, slotRecord(action.created, read.digest, at));
  return {
    kind: 'action-accepted',
    read,
    signer,
    ...(await publishedVersion(view, action)),
    ...(named.key ? { key: named.key } : {}),
  };
}

/**
 * Was the action refused only because the plugin already is as it says: it changes nothing
 * (ACTION_NO_EFFECT), or it withdraws an advisory the plugin does not have (as good as withdrawn)?
 */
function statesTheState(action: ActionBody, problems: readonly Problem[]): boolean {
  return problems.every(
    (p) =>
      p.code === 'ACTION_NO_EFFECT' ||
      (action.action === 'advisory-withdraw' && p.code === 'ADVISORY_UNKNOWN'),
  );
}

/** The version an action names, as its record has it (the action may spell it otherwise), if any. */
async function publishedVersion(view: BatchView, action: ActionBody): Promise<{ version?: string }> {
  if (!('version' in action)) return {};
  const doc = await view.current(action.plugin);
  const record = doc ? findVersion(doc, action.version) : undefined;
  return record ? { version: record.version } : {};
}

/** What an accepted action is about and who signed it, its version as published. */
export function acceptedInfo(evaluation: AcceptedAction): ActionInfo & { readonly signer: string } {
  const action = evaluation.read.action;
  return {
    kind: action.action,
    ...actionSubject(action),
    ...(evaluation.version ? { version: evaluation.version } : {}),
    signer: evaluation.signer,
  };
}

/** A batch's publishes and actions folded into the plugin documents, in upload order. */
export interface Folded {
  /** The documents the batch changed, by name. */
  readonly docs: Map<string, PluginDocument>;
  /** The items that changed each document: a document that cannot be rendered rejects them. */
  readonly changedBy: Map<string, BatchItem[]>;
  /**
   * Plugins a resumed action (a run that died) touched without changing them now, each with those actions:
   * their published document may be ahead of the catalog, which the batch then catches up, and a store
   * refusing it for good is then named by the action behind it (index.ts `pluginWriteFailure`).
   */
  readonly resumedOn: Map<string, BatchItem[]>;
  /** `keys/revoked.json` to write (changed, or rewritten for a resumed revocation), or undefined. */
  readonly revoked?: RevokedKeysDocument;
  /** The site keys of the files of versions removed (deleted after the snapshot). */
  readonly removedFiles: string[];
}

/**
 * Folds the batch's accepted items into the published documents, in upload order: each version written
 * (`written`, by item) merged, each action applied. The view judged the same sequence already; an action
 * that no longer applies (the publish it followed failed to write) is rejected here. A resumed action is
 * never rejected: an effect already there, or one no longer possible, is no error for it.
 */
export async function foldBatch(
  ctx: PipelineContext,
  items: readonly BatchItem[],
  written: ReadonlyMap<BatchItem, AddedVersion>,
  view: BatchView,
  processed: string,
): Promise<Folded> {
  const docs = new Map<string, PluginDocument>();
  const changedBy = new Map<string, BatchItem[]>();
  const resumedOn = new Map<string, BatchItem[]>();
  const removals: { name: string; version: string }[] = [];
  const registryFingerprints = ctx.signer.fingerprints;
  let revoked = await view.publishedRevoked();
  let revokedTouched = false;
  const current = async (name: string) => docs.get(name) ?? (await view.published(name));
  const change = (doc: PluginDocument, item: BatchItem) => {
    docs.set(doc.name, doc);
    const list = changedBy.get(doc.name) ?? [];
    if (!list.includes(item)) list.push(item);
    changedBy.set(doc.name, list);
  };
  const touch = (name: string, item: BatchItem) => {
    const list = resumedOn.get(name) ?? [];
    if (!list.includes(item)) list.push(item);
    resumedOn.set(name, list);
  };
  for (const item of items) {
    const evaluation = item.evaluation;
    if (evaluation.kind === 'accepted') {
      const added = written.get(item);
      if (!added) continue;
      const existing = await current(evaluation.manifest.name);
      change(mergePluginDocument(existing, [added], ctx.config.ownership), item);
      continue;
    }
    if (evaluation.kind !== 'action-accepted' || evaluation.resumed?.finished) continue;
    const { read, resumed } = evaluation;
    const action = read.action;
    const at = resumed?.time ?? processed;
    const reject = (problems: readonly Problem[]) => {
      item.evaluation = rejected(problems, { action: acceptedInfo(evaluation) });
    };
    if (action.action === 'revoke-key') {
      const listed = withRevokedKey(
        revoked,
        { fingerprint: action.fingerprint, revoked: at, reason: action.reason, action: read.digest },
        registryFingerprints,
      );
      if (listed.ok) revoked = listed.list;
      else if (!resumed) {
        reject(listed.problems);
        continue;
      }
      revokedTouched = true;
      for (const name of await view.allNames()) {
        const doc = await current(name);
        if (!doc) continue;
        const marked = revokeInDocument(doc, action.fingerprint, { at, reason: action.reason });
        if (marked) change(marked, item);
        else if (resumed && doc.versions.some((v) => v.publisher === action.fingerprint)) touch(name, item);
      }
      continue;
    }
    // Overtaken by a newer action on its slot: put back under it, where the log has it (the document, as
    // published, may still lag the catalog, as for any resumed action).
    if (resumed?.overtaken) {
      const doc = resumed.underneath && (await current(action.plugin));
      if (doc && resumed.underneath)
        change(withOvertakenRestored(doc, resumed.underneath, resumed.listed), item);
      else touch(action.plugin, item);
      continue;
    }
    const doc = await current(action.plugin);
    if (!doc) {
      if (!resumed)
        reject([
          problem('ACTION_UNKNOWN_PLUGIN', '/plugin', `this registry has no plugin "${action.plugin}"`, {
            expected: UNKNOWN_PLUGIN_EXPECTED,
            found: action.plugin,
          }),
        ]);
      continue;
    }
    const applied = applyAction(doc, action, {
      at,
      ...(evaluation.key ? { key: evaluation.key } : {}),
      registryFingerprints,
      isRevoked: (fp) => revoked.keys.some((k) => k.fingerprint === fp),
      ...(resumed ? { logged: true } : {}),
      ...(resumed?.listed ? { listed: resumed.listed } : {}),
    });
    if (applied.ok) change(applied.doc, item);
    else if (resumed) touch(doc.name, item);
    else {
      reject(applied.problems);
      continue;
    }
    // Deleted whether removed now or by a run that died: deleting what is gone already is nothing.
    if (action.action === 'remove') removals.push({ name: doc.name, version: action.version });
  }
  await refreshLookAlikes(view, docs, changedBy, resumedOn, current, change);
  const removedFiles: string[] = [];
  for (const { name, version } of removals) {
    const doc = await current(name);
    const record: VersionRecord | undefined = doc && findVersion(doc, version);
    if (doc && record?.removed) removedFiles.push(...versionFiles(doc.name, record));
  }
  return { docs, changedBy, resumedOn, ...(revokedTouched ? { revoked } : {}), removedFiles };
}

/**
 * Each plugin whose owners the batch set (a new plugin, an owners action) re-rendered with its look-alikes
 * (look-alike.ts `lookAlikesWithin`), and so is each plugin its name reads as: the pair is flagged on both
 * documents or on neither, in the batch that changed its owners, as a revocation marks documents it has no
 * action on. The other plugin's document is changed by the same items, so it is written, binned and
 * snapshotted with theirs (and refused with them). A plugin a resumed action touched counts too: a run that
 * died may have written its document and not the other's. A publish that changes no owners does no work
 * here: its document carries its look-alikes over (mergePluginDocument).
 */
async function refreshLookAlikes(
  view: BatchView,
  docs: ReadonlyMap<string, PluginDocument>,
  changedBy: ReadonlyMap<string, BatchItem[]>,
  resumedOn: ReadonlyMap<string, BatchItem[]>,
  current: (name: string) => Promise<PluginDocument | undefined>,
  change: (doc: PluginDocument, item: BatchItem) => void,
): Promise<void> {
  const triggers: [string, BatchItem[]][] = [];
  for (const [name, doc] of docs) {
    const before = await view.published(name);
    const same =
      before !== undefined &&
      before.owners.length === doc.owners.length &&
      before.owners.every((o) => doc.owners.includes(o));
    if (!same) triggers.push([name, changedBy.get(name) ?? []]);
  }
  for (const [name, items] of resumedOn) if (!docs.has(name)) triggers.push([name, items]);
  for (const [name, items] of triggers) {
    const alike = await view.names.filedAlike(name);
    if (alike.length === 0) continue;
    const group: PluginDocument[] = [];
    for (const other of [name, ...alike.map((a) => a.name)]) {
      const doc = await current(other);
      if (doc) group.push(doc);
    }
    for (const doc of lookAlikesWithin(group)) for (const item of items) change(doc, item);
    // A run that died may have written another's document flagged as this batch finds it (read as published,
    // `writing`) and not this one's: unchanged here, it was written by nothing, and the catalog's older line
    // was committed over it (DOCUMENT_MISMATCH, for good). Caught up as it is, changed by the same items.
    for (const doc of group)
      if (
        doc.name !== name &&
        !docs.has(doc.name) &&
        view.behind(doc.name) &&
        doc.look_alikes?.some((other) => other.name === name)
      )
        for (const item of items) change(doc, item);
  }
}

/**
 * The envelope of every action accepted now, and of every one logged as changing nothing, at
 * `log/actions/<digest>.json` (immutable): each entry's signature can be checked.
 */
export async function writeEnvelopes(ctx: PipelineContext, items: readonly BatchItem[]): Promise<void> {
  for (const item of items) {
    const evaluation = item.evaluation;
    if (item.upload.kind !== 'read') continue;
    const digest =
      evaluation.kind === 'action-accepted' && !evaluation.resumed
        ? evaluation.read.digest
        : evaluation.kind === 'rejected'
          ? evaluation.ordered?.read.digest
          : undefined;
    if (digest === undefined) continue;
    await ctx.site.put(actionEnvelopeKey(digest), item.upload.bytes, {
      contentType: 'application/json',
      cacheControl: CACHE_IMMUTABLE,
    });
  }
}

/**
 * One log entry per accepted publish and action, in batch order (written at the log's flush): each item's
 * `seq`. What a run that died appended already is found, not appended again.
 */
export function appendToLog(log: LogWriter, items: readonly BatchItem[], processed: string): void {
  for (const item of items) {
    const evaluation = item.evaluation;
    if (evaluation.kind === 'accepted') {
      const { manifest, publisher, sourceSha256 } = evaluation;
      item.seq =
        evaluation.logged?.seq ??
        log.entry('publish', sourceSha256)?.seq ??
        log.append(
          {
            time: processed,
            type: 'publish',
            plugin: manifest.name,
            version: manifest.version,
            signer: publisher,
            digest: sourceSha256,
          },
          item.upload.id,
        ).seq;
    } else if (evaluation.kind === 'already-published') {
      // Published by this very upload, in a run that died: its entry is the one that run appended.
      if (evaluation.resumed) item.seq = evaluation.resumed.seq;
    } else if (evaluation.kind === 'rejected' && evaluation.ordered) {
      // Changed nothing, but stands for its slot: logged, so the log holds every record of the action order
      // (a dead run's entry, found again, is not appended twice).
      const { read, signer, key, plugin, version } = evaluation.ordered;
      const action = read.action;
      item.seq =
        log.entry(action.action, read.digest)?.seq ??
        log.append(
          {
            time: processed,
            type: action.action,
            plugin,
            ...(version ? { version } : {}),
            signer,
            digest: read.digest,
            created: action.created,
            detail: { ...actionDetail(action, key), effect: NO_EFFECT },
          },
          item.upload.id,
        ).seq;
    } else if (evaluation.kind === 'action-accepted') {
      if (evaluation.resumed) {
        item.seq = evaluation.resumed.seq;
        continue;
      }
      const action = evaluation.read.action;
      const detail = actionDetail(action, evaluation.key);
      const { plugin, version } = acceptedInfo(evaluation);
      item.seq = log.append(
        {
          time: processed,
          type: action.action,
          ...(plugin ? { plugin } : {}),
          ...(version ? { version } : {}),
          signer: evaluation.signer,
          digest: evaluation.read.digest,
          // When its signer made it: the order the registry judged this target's actions by.
          created: action.created,
          ...(Object.keys(detail).length > 0 ? { detail } : {}),
        },
        item.upload.id,
      ).seq;
    }
  }
}

/**
 * The marker of every action accepted now (after the log's flush, before the documents): a replay meets
 * it, and a retry of the same upload resumes from it.
 */
export async function writeMarkers(
  ctx: PipelineContext,
  items: readonly BatchItem[],
  processed: string,
): Promise<void> {
  for (const item of items) {
    const evaluation = item.evaluation;
    if (evaluation.kind !== 'action-accepted' || item.seq === undefined) continue;
    if (evaluation.resumed?.from === 'marker') continue;
    // The marker as it always was (a rebuild restores it from the log, `restoreActionRecords`, fields alike):
    // a revoke-key's fingerprint is its outcome's, not the marker's.
    const { kind, signer, fingerprint: _revoked, ...subject } = acceptedInfo(evaluation);
    const marker: ActionMarker = {
      schema: 'plugindex/applied-action/v1',
      digest: evaluation.read.digest,
      action: kind,
      ...subject,
      signer,
      seq: item.seq,
      time: evaluation.resumed?.time ?? processed,
      submission: item.upload.id,
    };
    await writeMarker(ctx, marker);
  }
}

/** `state/actions/<digest>.json`, a batch's (`writeMarkers`) or a rebuild's (`restoreMarkers`). */
async function writeMarker(ctx: PipelineContext, marker: ActionMarker): Promise<void> {
  await ctx.intake.put(
    actionMarkerKey(marker.digest),
    encoder.encode(`${JSON.stringify(marker, null, 2)}\n`),
    {
      contentType: 'application/json',
      cacheControl: CACHE_PRIVATE,
    },
  );
}

/**
 * Each plugin's action order with the actions accepted now (and those a run that died accepted but did not
 * finish), at `state/action-order/<name>.json`, written after the log's flush: a later batch refuses an
 * action made before one of them (ACTION_SUPERSEDED). Records older than an action may be
 * (ACTION_MAX_AGE_MS, and the clock's skew as margin) are dropped: no action they could supersede is taken.
 */
export async function writeActionOrders(
  ctx: PipelineContext,
  items: readonly BatchItem[],
  view: BatchView,
  now: Date,
): Promise<void> {
  const orders = new Map<string, ActionOrder>();
  for (const item of items) {
    const evaluation = item.evaluation;
    if (evaluation.kind === 'rejected' && evaluation.ordered) {
      const { plugin, slot, record } = evaluation.ordered;
      const order = orders.get(plugin) ?? (await view.recordedOrder(plugin));
      orders.set(plugin, withSlotRecord(order, slot, record));
      continue;
    }
    if (evaluation.kind !== 'action-accepted' || item.seq === undefined || evaluation.resumed?.finished)
      continue;
    const { action, digest } = evaluation.read;
    if (action.action === 'revoke-key') continue;
    const slot = actionSlot(action, evaluation.key);
    if (!slot) continue;
    const order = orders.get(action.plugin) ?? (await view.recordedOrder(action.plugin));
    // As the view recorded it when it judged the action (a dead run's, when it logged it).
    const judged = evaluation.resumed?.time ?? now.toISOString();
    orders.set(action.plugin, withSlotRecord(order, slot, slotRecord(action.created, digest, judged)));
  }
  for (const [plugin, order] of orders) await writeActionOrder(ctx, plugin, order, now);
}

/**
 * A plugin's recorded action order, or none when the record is not one (written over by hand, cut short on a
 * disk that lost it): a batch refuses to judge against such a record (parseActionOrder throws), and the
 * rebuild an operator runs to mend the registry's state puts the log's in its place rather than fail on it.
 */
function recordedOrderOrNone(body: Uint8Array, plugin: string): ActionOrder {
  try {
    return parseActionOrder(decoder.decode(body), plugin);
  } catch {
    return {};
  }
}

/**
 * `state/action-order/<name>.json`: `order` without the records older than an action may be
 * (ACTION_MAX_AGE_MS, and the clock's skew as margin): no action they could supersede is taken.
 */
async function writeActionOrder(
  ctx: PipelineContext,
  plugin: string,
  order: ActionOrder,
  now: Date,
): Promise<void> {
  const before = new Date(now.getTime() - ACTION_MAX_AGE_MS - ACTION_CLOCK_SKEW_MS);
  const document: ActionOrderDocument = {
    schema: 'plugindex/action-order/v1',
    plugin,
    slots: prunedOrder(order, before),
  };
  await ctx.intake.put(actionOrderKey(plugin), encoder.encode(`${JSON.stringify(document, null, 2)}\n`), {
    contentType: 'application/json',
    cacheControl: CACHE_PRIVATE,
  });
}

/**
 * Writes of a restore in flight at once (its markers, then its action orders): enough that the rate below,
 * not the store's latency, bounds it while a write takes up to 25 ms (at 20 ms, S3's latency as
 * bench/store-latency.ts simulates it, 64 in flight would make 3,200 a second). At 32 in flight (1,600 a
 * second at 20 ms), a restore after a loss of `state/` (11,000 writes for a week's 10,000 actions over 1,000
 * plugins) took 8.3-8.9 s in that bench on a loaded machine; at 64 under this rate, 5.2-6.0 s.
 */
export const RESTORE_WRITE_CONCURRENCY = 64;

/**
 * Writes of a restore begun a second at most (`limitRate`): S3 takes about 3,500 PUTs a second per prefix
 * and answers more with 503 SlowDown, which the S3 client (`S3_RETRY.batch` in `createS3Client`: the SDK's
 * standard retry mode, eight attempts) retries up to seven times, after a random wait of up to 1, 2, 4, 8,
 * 16, then 20 s, and from a quota of 100 throttled retries a client; then the S3 store fails it `STORE_IO`,
 * and the rebuild with it, retried by the queue only after its 90-minute visibility timeout. So a restore stays a thousand a second under it (the
 * markers and the orders share `state/`) whatever the latency: bounded flight alone gives flight over
 * latency, and a store answering in 10 ms would take 6,400 a second from 64 in flight (3,200 from 32).
 */
export const RESTORE_WRITES_PER_SECOND = 2_500;

/** What a rebuild restored from the log: how many action markers, and how many plugins' action orders. */
export interface RestoredRecords {
  readonly markers: number;
  readonly orders: number;
}

/**
 * The intake store's record of the actions applied recently, restored from the published log by a rebuild:
 * the marker of every action logged (`restoreMarkers`) and each plugin's action order (`restoreOrders`), for
 * every action made within an action's age (ACTION_MAX_AGE_MS, the clock's skew as margin: an older one is
 * refused for its age before either counts). The intake store's `state/` lost (or put back from an older
 * copy), both went with it, and the rebuild that recovers the catalog left them so: an envelope of an applied
 * action, public under `log/actions/`, was taken again as new (its yank put back over the unyank after it),
 * and an action made before a newer one applied to its slot overruled it. The log is read back to the first
 * segment older than that age, checked against `head` first (the recorded head, or the published snapshot's
 * when the record is shorter: `currentLogHead`).
 * @throws TrustError LOG_TRUNCATED, LOG_ENTRY_ALTERED, LOG_REORDERED, LOG_MALFORMED (`recentLogEntries`), LOG_VOID_*
 *   (`standingEntries`)
 */
export async function restoreActionRecords(
  ctx: PipelineContext,
  head: LogHead,
  now: Date,
): Promise<RestoredRecords> {
  const since = now.getTime() - ACTION_MAX_AGE_MS - ACTION_CLOCK_SKEW_MS;
  // Logged at most the skew after it was made: an entry logged before `since` less the skew is older still.
  const read = await recentLogEntries(
    ctx.site,
    head,
    since - ACTION_CLOCK_SKEW_MS,
    // A published store that lost its files meets this first (its log gone, the recorded head not): the
    // rebuild that re-rendered nothing from it signed an empty registry over that head before.
    `the log's head (${head.length} entries, as the intake store records it or the published snapshot signs it; a published store that lost its files is put back from a copy, as a rebuild renders only from what is published)`,
  );
  // A voided action never took effect: no marker, no slot (nor is a void an action).
  const { standing } = standingEntries(ctx, read);
  const recent = standing
    .map(({ entry }) => entry)
    .filter(
      (entry) =>
        entry.type !== 'publish' &&
        entry.type !== 'rotate-key' &&
        Date.parse(entry.created ?? entry.time) >= since,
    );
  // An action logged as changing nothing was applied to nothing: its slot is restored, but no marker (an
  // upload of it is judged again, and changes nothing again).
  const applied = recent.filter((entry) => entry.detail?.effect !== NO_EFFECT);
  // One rate for both: they write one after the other, under the same prefix (`state/`).
  const turn = limitRate(RESTORE_WRITES_PER_SECOND);
  return {
    markers: await restoreMarkers(ctx, applied, turn),
    orders: await restoreOrders(ctx, recent, now, turn),
  };
}

/**
 * Writes the marker of each of `recent` (logged actions) that has none; returns how many. The log names no
 * submission: a restored marker names the upload an intent record names, or that action's upload still
 * waiting in `incoming/`; naming none, the upload that applied it, met again, is a replay too.
 */
async function restoreMarkers(
  ctx: PipelineContext,
  recent: readonly LogEntry[],
  turn: () => Promise<void>,
): Promise<number> {
  // A dead run's entry, its upload's retry still owed (its intent record names it): the marker names that
  // upload, which then resumes from it (as from a run that died after its markers). Naming none, it made
  // that very retry a replay, the action logged and never applied. The markers there are found by listing
  // them (`existingKeys`), not by a request per action: a week's 10,000 actions cost 10,000 requests, where
  // the listing costs one per 1,000 markers.
  const [pending, applied] = await allSettledValues([
    pendingIntents(ctx.intake),
    existingKeys(
      ctx.intake,
      ACTION_MARKERS_PREFIX,
      recent.map((entry) => actionMarkerKey(entry.digest)),
      WRITE_CONCURRENCY,
    ),
  ]);
  const missing = recent.filter((entry) => !applied.has(actionMarkerKey(entry.digest)));
  // Its intent record lost with `state/` too, a dead run's upload still waiting in incoming/ names it: its
  // retry then resumes, where a marker naming none refused it (ACTION_REPLAYED), the action logged and
  // published, its outcome never recorded.
  const waiting = await waitingUploadsOf(
    ctx,
    new Set(missing.filter((entry) => !pending.has(`${entry.seq} ${entry.digest}`)).map((e) => e.digest)),
  );
  let markers = 0;
  await forEachLimited(missing, RESTORE_WRITE_CONCURRENCY, async (entry) => {
    const submission = pending.get(`${entry.seq} ${entry.digest}`) ?? waiting.get(entry.digest);
    const marker: ActionMarker = {
      schema: 'plugindex/applied-action/v1',
      digest: entry.digest,
      action: entry.type as ActionKind,
      ...(entry.plugin !== undefined ? { plugin: entry.plugin } : {}),
      ...(entry.version !== undefined ? { version: entry.version } : {}),
      signer: entry.signer,
      seq: entry.seq,
      time: entry.time,
      ...(submission !== undefined ? { submission } : {}),
    };
    await turn();
    await writeMarker(ctx, marker);
    markers++;
  });
  return markers;
}

/**
 * The upload of each of `digests` (logged actions) waiting in `incoming/`, by digest: the first in upload
 * order (last modified, then key, as a batch takes them), by its submission id. The run that logged one took
 * its upload before it published the envelope anyone may upload again, so where both wait the dead run's is
 * the earlier (both timed by the intake store's clock). Every upload small enough to be an action is read;
 * only a rebuild that restores markers asks, and `incoming/` holds what no batch has taken yet.
 */
async function waitingUploadsOf(
  ctx: PipelineContext,
  digests: ReadonlySet<string>,
): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  if (digests.size === 0) return found;
  const listed = (await listAll(ctx.intake, INCOMING_PREFIX))
    .filter((object) => object.size <= MAX_ACTION_BYTES)
    .sort(
      (a, b) =>
        a.lastModified.getTime() - b.lastModified.getTime() || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0),
    );
  const reads = await mapLimited(listed, WRITE_CONCURRENCY, async ({ key }) => {
    // Replaced by a larger one since it was listed, or not the store's to give: not an action to resume.
    const object = await ctx.intake.get(key, { maxBytes: MAX_ACTION_BYTES }).catch((error: unknown) => {
      if (
        error instanceof StoreError &&
        (error.code === 'STORE_TOO_LARGE' || error.code === 'STORE_UNREADABLE')
      )
        return undefined;
      throw error;
    });
    if (!object || !isJsonSubmission(object.body)) return undefined;
    try {
      const { digest } = readSignedAction(object.body);
      return { digest, id: submissionIdFromDigest(key, sha256Hex(object.body)) };
    } catch {
      return undefined; // not an action: no entry names it
    }
  });
  for (const read of reads)
    if (read && digests.has(read.digest) && !found.has(read.digest)) found.set(read.digest, read.id);
  return found;
}

/**
 * Merges the slots `recent` (logged actions) set into each plugin's recorded action order, the newer per slot
 * standing, and writes the orders that changed; returns how many. Entries logged before the log recorded
 * `created` give no order.
 */
async function restoreOrders(
  ctx: PipelineContext,
  recent: readonly LogEntry[],
  now: Date,
  turn: () => Promise<void>,
): Promise<number> {
  const logged = loggedOrders(recent);
  // Only the records there are read (found by listing them, as the markers are): after a loss there are
  // none, where a read of each plugin's record cost a request each.
  const there = await existingKeys(
    ctx.intake,
    ACTION_ORDERS_PREFIX,
    [...logged.keys()].map(actionOrderKey),
    WRITE_CONCURRENCY,
  );
  let orders = 0;
  await forEachLimited([...logged], RESTORE_WRITE_CONCURRENCY, async ([plugin, slots]) => {
    const object = there.has(actionOrderKey(plugin))
      ? await ctx.intake.get(actionOrderKey(plugin))
      : undefined;
    const recorded = object ? recordedOrderOrNone(object.body, plugin) : {};
    // The recorded one stands on a tie (the log's record over it rewrote the order of a registry that lost
    // nothing, and a rebuild said it restored it).
    const order = mergedOrder(slots, recorded);
    if (Object.entries(order).every(([slot, record]) => recorded[slot]?.digest === record.digest)) return;
    await turn();
    await writeActionOrder(ctx, plugin, order, now);
    orders++;
  });
  return orders;
}
