/**
 * What became of each submission: its outcome record (`status/<id>.json`), then the upload itself moved
 * out of `incoming/` (to `processed/` or `rejected/`: nothing is dropped). Written last in a publish, after
 * the commit, so an outcome never names a version clients cannot see yet; a crash before leaves the upload
 * in incoming/, and the retry records it.
 */

import type { ActionKind } from '../action-kinds.ts';
import { isJsonSubmission } from '../actions.ts';
import { boundProblems, type Problem } from '../errors.ts';
import {
  manifestKey,
  pluginDocumentKey,
  pluginPageKey,
  processedKey,
  rejectedKey,
  signatureKey,
  statusKey,
  versionBase,
} from '../layout.ts';
import { mapLimited } from '../limited.ts';
import { ociArtifactUrl } from '../oci.ts';
import { CACHE_PRIVATE, moveObject, type PutOptions } from '../store.ts';
import { acceptedInfo } from './actions.ts';
import type { PipelineContext } from './context.ts';
import type { AcceptedAction, BatchItem, Evaluation } from './evaluate.ts';
import type { Upload } from './intake.ts';
import { BATCH_WRITE_CONCURRENCY, readJson } from './site-writer.ts';

export type SubmissionStatus = 'accepted' | 'already-published' | 'rejected';

/** `status/<id>.json`: what became of one submission. */
export interface SubmissionOutcome {
  readonly schema: 'plugindex/outcome/v1';
  readonly id: string;
  readonly submission: string;
  readonly status: SubmissionStatus;
  /** For an action: its kind (`yank`, `owners-add`...). */
  readonly action?: ActionKind;
  readonly plugin?: string;
  readonly version?: string;
  /**
   * For a revoke-key (which names no plugin): the fingerprint of the key it revokes, what it acts on as
   * `plugin`@`version` is another action's. Absent from outcomes recorded before it was added.
   */
  readonly fingerprint?: string;
  readonly publisher?: string;
  /** For an action: the fingerprint of the key that signed it. */
  readonly signer?: string;
  /** The SHA-256 of the upload's bytes; absent for one the store could not read (`UPLOAD_UNREADABLE`). */
  readonly submission_sha256?: string;
  readonly processed: string;
  /** The snapshot generation that first includes this version or action's effect (accepted only). */
  readonly generation?: number;
  /** Its entry in the registry's log (`log/`), for an accepted publish or action. */
  readonly seq?: number;
  readonly urls?: {
    readonly plugin: string;
    readonly page: string;
    readonly manifest: string;
    readonly signature: string;
    readonly artifacts: readonly string[];
  };
  readonly problems: readonly Problem[];
}

/** What every outcome of a batch shares. */
export interface BatchRecord {
  /** The registry's URL, which the outcome's URLs start with. */
  readonly url: string;
  /** The time of publishing (ISO 8601). */
  readonly processed: string;
  /** The generation the batch committed, or null when it committed none. */
  readonly generation: number | null;
  /**
   * The generation the registry is at once the batch is done: its own, else the last one committed. A
   * publish a run that died committed before it recorded the outcome is shown in it.
   */
  readonly current: number;
}

/** The outcome of an action: accepted or rejected, what it was, who signed it, its log entry. */
function actionOutcomeOf(item: BatchItem, batch: BatchRecord): SubmissionOutcome | undefined {
  const { upload, evaluation } = item;
  const info =
    evaluation.kind === 'action-accepted'
      ? acceptedInfo(evaluation)
      : evaluation.kind === 'rejected'
        ? evaluation.action
        : undefined;
  if (!info) return undefined;
  const accepted = evaluation.kind === 'action-accepted';
  return {
    schema: 'plugindex/outcome/v1' as const,
    id: upload.id,
    submission: upload.key,
    status: accepted ? 'accepted' : 'rejected',
    action: info.kind,
    ...(info.plugin !== undefined ? { plugin: info.plugin } : {}),
    ...(info.version !== undefined ? { version: info.version } : {}),
    ...(info.fingerprint !== undefined ? { fingerprint: info.fingerprint } : {}),
    ...(info.signer !== undefined ? { signer: info.signer } : {}),
    ...(upload.kind !== 'unreadable' ? { submission_sha256: upload.sha256 } : {}),
    processed: batch.processed,
    ...(accepted && batch.generation !== null ? { generation: batch.generation } : {}),
    ...(accepted && item.seq !== undefined ? { seq: item.seq } : {}),
    problems: evaluation.kind === 'rejected' ? boundProblems(evaluation.problems) : [],
  };
}

/** The outcome of one submission of a batch. */
export function outcomeOf(item: BatchItem, batch: BatchRecord): SubmissionOutcome {
  const actionOutcome = actionOutcomeOf(item, batch);
  if (actionOutcome) return actionOutcome;
  const { upload } = item;
  const evaluation = item.evaluation as Exclude<Evaluation, AcceptedAction>;
  const manifest = evaluation.manifest;
  // Published by this very upload in a run that died before recording it: that run's acceptance.
  const resumed = evaluation.kind === 'already-published' && evaluation.resumed !== undefined;
  const accepted = evaluation.kind === 'accepted' || resumed;
  // Built field by field, in the record's key order: spreads of conditional objects cost several µs each
  // before V8 optimizes them, and a batch of 10,000 makes 10,000 outcomes once.
  const outcome: { -readonly [K in keyof SubmissionOutcome]?: SubmissionOutcome[K] } = {
    schema: 'plugindex/outcome/v1',
    id: upload.id,
    submission: upload.key,
    status: resumed ? 'accepted' : evaluation.kind,
  };
  if (manifest) {
    outcome.plugin = manifest.name;
    outcome.version = manifest.version;
  }
  if (evaluation.publisher) outcome.publisher = evaluation.publisher;
  if (upload.kind !== 'unreadable') outcome.submission_sha256 = upload.sha256;
  outcome.processed = batch.processed;
  if (evaluation.kind === 'rejected' || !manifest) {
    outcome.problems = evaluation.kind === 'rejected' ? boundProblems(evaluation.problems) : [];
    return outcome as SubmissionOutcome;
  }
  const { url } = batch;
  // A resumed publish is shown already when its retry commits nothing: in the generation published.
  const generation = resumed ? batch.current : batch.generation;
  if (accepted && generation !== null) outcome.generation = generation;
  if (accepted && item.seq !== undefined) outcome.seq = item.seq;
  const versionUrl = `${url}/${versionBase(manifest.name, manifest.version)}`;
  const manifestAt = manifestKey(manifest.name, manifest.version);
  outcome.urls = {
    plugin: `${url}/${pluginDocumentKey(manifest.name)}`,
    page: `${url}/${pluginPageKey(manifest.name)}`,
    manifest: `${url}/${manifestAt}`,
    signature: `${url}/${signatureKey(manifestAt)}`,
    artifacts: (manifest.installation?.artifacts ?? []).map((a) =>
      a.file !== undefined
        ? `${versionUrl}/${a.file}`
        : (a.url ?? (a.oci ? (ociArtifactUrl(a.oci) ?? '') : '')),
    ),
  };
  outcome.problems = [];
  return outcome as SubmissionOutcome;
}

const encoder = new TextEncoder();

/**
 * The outcome recorded for `upload` (its id, its bytes) that stands over `outcome`, else undefined: an
 * acceptance, or the very rejection `outcome` is (the same problem codes, recorded at another time, its
 * problems' words aside).
 */
async function outcomeRecorded(
  ctx: PipelineContext,
  upload: BatchItem['upload'],
  outcome: SubmissionOutcome,
): Promise<SubmissionOutcome | undefined> {
  // An upload the store cannot read has no bytes to match a record by: none is read for it.
  if (upload.kind === 'unreadable') return undefined;
  // A record that does not parse (changed by hand) is recorded again, as one that is not there.
  const recorded = await readJson<SubmissionOutcome>(ctx.intake, statusKey(upload.id)).catch((error) => {
    if (error instanceof SyntaxError) return undefined;
    throw error;
  });
  if (recorded?.id !== upload.id) return undefined;
  // An acceptance recorded from the log for this id while its upload was not at hand (`BatchItem.fromLog`),
  // under what it was finished from (its manifest, its envelope), whose digest it carries: the id (the
  // upload's key and the start of its bytes' digest) is what names the upload. Told "already published" over
  // it, the very bundle its run logged lost its acceptance and its entry.
  if (recorded.status === 'accepted' && recorded.submission !== upload.key) return recorded;
  if (recorded.submission_sha256 !== upload.sha256) return undefined;
  if (recorded.status === 'accepted') return recorded;
  return outcome.status === 'rejected' && sameRejection(recorded, outcome) ? recorded : undefined;
}

/**
 * Whether two rejections of one upload are the same: the same in every field (in the same key order, as
 * outcomeOf writes) but the time of publishing and their problems' words, and the same problem codes in the
 * same order. A problem's words may name the batch's time or a count (ACTION_EXPIRED names the time it was
 * judged at): compared whole, a retry took the rejection recorded for another, recorded it again and told
 * its failures again.
 */
function sameRejection(a: SubmissionOutcome, b: SubmissionOutcome): boolean {
  const gist = (o: SubmissionOutcome) =>
    JSON.stringify({ ...o, processed: null, problems: o.problems.map((p) => p.code) });
  return gist(a) === gist(b);
}

/**
 * Records every submission's outcome, then moves it out of incoming/ to processed/ or rejected/ (a rename
 * where the store can, else a copy, as a stream when it was too large to read, and a delete). Returns the
 * outcomes, in batch order. `onRecorded` is told of each item once its outcome is recorded (written, or an
 * acceptance recorded before that stands), before its move: when a write fails, those recorded beside it
 * still are, and their uploads may have left incoming/, where no retry meets them again. `before` says the
 * item's rejection was recorded as it is by an earlier run, which told its failures then.
 */
export async function recordOutcomes(
  ctx: PipelineContext,
  items: readonly BatchItem[],
  batch: BatchRecord,
  onRecorded?: (item: BatchItem, before: boolean) => void,
): Promise<SubmissionOutcome[]> {
  // Each submission's record is its own: recorded side by side, each in its order (outcome, copy, delete).
  return mapLimited(items, BATCH_WRITE_CONCURRENCY, async (item) => {
    const { upload } = item;
    // A run that died after it recorded this very upload's acceptance, before it moved the upload: the retry
    // finds its version published (by this upload), and the record of its acceptance stands. So it does for
    // the same upload met again later (a redelivery, or anyone who holds the bundle putting it under its name
    // again) that would be refused now (its key since expired, revoked or off the trust list, its version
    // removed, an action past its age): an upload's acceptance is a fact, and a rejection recorded over it
    // lost its log entry and URLs, and told whoever waits on it that it was never published.
    // A run whose outcomes step failed after it recorded this very upload's rejection, before it moved the
    // upload (the store failing the move, or another record): the retry judges it as that run did, and the
    // record stands as it is, its failures told by that run (`onRecorded`'s `before`); recorded and told
    // again, the operator's log named one failure twice.
    const judged = outcomeOf(item, batch);
    const recorded =
      item.evaluation.kind === 'already-published' || item.evaluation.kind === 'rejected'
        ? await outcomeRecorded(ctx, upload, judged)
        : undefined;
    const outcome = recorded ?? judged;
    // Plain JSON.stringify: an outcome must be recordable whatever text a rejected manifest held.
    if (!recorded)
      await ctx.intake.put(statusKey(upload.id), encoder.encode(`${JSON.stringify(outcome, null, 2)}\n`), {
        contentType: 'application/json',
        cacheControl: CACHE_PRIVATE,
      });
    onRecorded?.(item, recorded?.status === 'rejected');
    // An action (a JSON envelope) is kept as what it is; anything else as the bundle it was taken for.
    const json = upload.kind === 'read' && isJsonSubmission(upload.bytes);
    const extension = json ? 'json' : 'tgz';
    const destination =
      outcome.status === 'rejected' ? rejectedKey(upload.id, extension) : processedKey(upload.id, extension);
    const options = {
      contentType: json ? 'application/json' : 'application/gzip',
      cacheControl: CACHE_PRIVATE,
    };
    // Finished from its envelope in the log, its upload not at hand: nothing of it is in incoming/ to move.
    if (item.fromLog) return outcome;
    if (upload.kind === 'read') {
      await moveObject(ctx.intake, upload.key, destination, upload, options);
    } else if (upload.kind === 'too-large') await moveTooLarge(ctx, upload, destination, options);
    // An upload the store cannot read stays in incoming/, where its outcome says how to mend it: nothing can
    // copy its bytes to rejected/ (S3 answers a copy as it answers the read), and a delete alone loses it.
    return outcome;
  });
}

/**
 * Moves an upload too large to have been read: by the store's move, which checks its digest, else copied as a
 * stream and deleted, each only while it is the upload hashed (its ETag). Another upload put under its name
 * since is left in `incoming/` for the next batch; the one hashed is then gone, and its outcome stands.
 */
async function moveTooLarge(
  ctx: PipelineContext,
  upload: Extract<Upload, { kind: 'too-large' }>,
  destination: string,
  options: PutOptions,
): Promise<void> {
  const moved = ctx.intake.move
    ? await ctx.intake.move(upload.key, destination, { ...options, sha256: upload.sha256 })
    : 'cannot';
  if (moved !== 'cannot') return;
  const stream = await ctx.intake.getStream(upload.key);
  if (!stream) return;
  if (stream.etag !== upload.etag) {
    stream.cancel();
    return;
  }
  await ctx.intake.putStream(destination, stream.body, options).finally(() => stream.cancel());
  await ctx.intake.delete(upload.key, { ifMatch: upload.etag });
}
