/**
 * The publish pipeline. One upload is one submission; a batch of submissions is evaluated one by one, the
 * accepted ones are written as immutable files, and the registry is rebuilt once for the whole batch:
 * only the changed plugins' documents plus the registry-wide documents. Every submission gets an outcome
 * record and is moved out of `incoming/`, so nothing is lost or dropped silently.
 *
 * A lifecycle action (index-builder/actions.ts) is an upload like a bundle: judged in upload order against
 * the registry as the batch has changed it so far, and folded with the batch's publishes into the plugin
 * documents (pipeline/actions.ts). Every accepted publish and action appends one entry to the log.
 *
 * Write order (a crash at any point leaves clients a consistent, signed view, and a retry converges):
 *   1. the immutable files of accepted versions (artifacts, manifest, its signature): nothing points at
 *      them yet (those of a version the batch then refuses are deleted once it is rendered, before step 2);
 *   2. the log: the envelopes of accepted actions (`log/actions/<digest>.json`, immutable), the entries
 *      (segments, then `state/log.json`), then each plugin's action order (`state/action-order/<name>.json`,
 *      the newest action applied to each of its states) and each action's marker (`state/actions/<digest>.json`);
 *   3. the catalog's record of the documents the batch is about to publish that a later batch reads back
 *      (its plugin documents, `keys/revoked.json`: published.ts), and when the index documents are
 *      deferred, their pending mark, before anything they would lag behind (one write of the meta file,
 *      made side by side with step 2's writes: it need only precede step 4);
 *   4. each changed plugin's document, its signature and page;
 *   5. the snapshot bins of the changed plugins, the index documents (index.json/.yaml, search.json,
 *      falcoctl/index.yaml; unless deferred) and `keys/revoked.json` when it changed, each with its
 *      signature, then the registry key and pages when they differ;
 *   6. the catalog's record of the snapshot it is about to publish, then snapshot.json and its signature:
 *      the commit point for clients (it vouches for the log's head);
 *   7. the catalog (its changed bins, then its meta file); then the files of removed versions are deleted;
 *   8. each submission's outcome record, then the submission moves to processed/ or rejected/.
 * What a batch reads back of what was published (plugin documents, the revoked keys, the snapshot) is checked
 * against the catalog first (published.ts): a document someone else wrote fails the batch, publishing nothing.
 * A retry after a crash finds the version already published with the same bytes (or the action's marker
 * or log entry: it is applied again, idempotently, and not logged twice), sees the catalog out of date for
 * that plugin, and rebuilds. An upload the dead run showed is found published by itself (its intent record
 * names its log entry): its outcome is the acceptance, with that entry, not "already published".
 */

import { Buffer } from 'node:buffer';
import {
  type Catalog,
  type CatalogLine,
  catalogAnew,
  catalogLineOf,
  markRebuilding,
  noteWriting,
  openCatalog,
  recordedGeneration,
  saveCatalog,
  saveWriting,
} from '../catalog.ts';
import { sha256Hex } from '../digest.ts';
import { PlugindexError, type Problem, problem, StoreError, type TrustError } from '../errors.ts';
import type { FiledEntry } from '../filed-index.ts';
import {
  actionMarkerKey,
  actionOrderKey,
  isPluginDocumentKey,
  listPluginNames,
  pluginDocumentKey,
  pluginPageKey,
  REVOKED_KEYS_KEY,
  SNAPSHOT_KEY,
  signatureKey,
  versionKeys,
} from '../layout.ts';
import { recomputed, versionFiles } from '../lifecycle.ts';
import { allSettledValues, forEachLimited } from '../limited.ts';
import { signVoid } from '../log-void.ts';
import { lookAlikesWithin, nameSkeleton, writeLookAlikeIndex } from '../look-alike.ts';
import type { Manifest, PluginDocument, SnapshotDocument } from '../model.ts';
import {
  documentOciRepositories,
  manifestOciRepositories,
  ociRepositoryEntries,
  writeOciRepositoryIndex,
} from '../oci-repositories.ts';
import { encodeJson } from '../render/documents.ts';
import { MAX_PLUGIN_PAGE_LENGTH } from '../render/html.ts';
import { rotationKey } from '../rotation.ts';
import { RenderError } from '../text.ts';
import {
  acceptedInfo,
  appendToLog,
  type Folded,
  foldBatch,
  type RestoredRecords,
  restoreActionRecords,
  writeActionOrders,
  writeEnvelopes,
  writeMarkers,
} from './actions.ts';
import {
  assertSigningKeyCurrent,
  checkSigningKeyCurrent,
  commitGeneration,
  recordingSnapshot,
  settledBy,
  writeSnapshot,
} from './commit.ts';
import { type BatchResult, identityOf, type PipelineContext, type SubmissionFailure } from './context.ts';
import { cleanInterruptedVariants } from './encoded.ts';
import {
  type Accepted,
  type AcceptedAction,
  type BatchItem,
  BatchView,
  beginJudging,
  evaluateBatch,
  failedWrite,
  Inspections,
  type JudgedOnBatch,
  markLogged,
  rejected,
  released,
  resumePublished,
  writeFailedProblem,
} from './evaluate.ts';
import { planBatch, readBatch, UploadsInOrder } from './intake.ts';
import { currentLogHead, LogWriter, namesOwed, readIntentRecords, readLogHead } from './log-writer.ts';
import { recordOutcomes } from './outcomes.ts';
import { type AddedVersion, type RenderedPlugin, renderPlugin } from './plugin-document.ts';
import { checkedSnapshot, isAltered, PublishedRecords, SignedDocuments } from './published.ts';
import {
  BATCH_WRITE_CONCURRENCY,
  BoundedWork,
  resignManifests,
  signPlugin,
  turn,
  WriteLog,
  withWriteLog,
  writePluginDocument,
  writeVersion,
  writingAfter,
} from './site-writer.ts';
import {
  findStuckEntry,
  type LeaveStuck,
  refuseStuckPublishes,
  type StuckEntryNotice,
} from './stuck-entries.ts';

export type { BatchResult, BatchStep, PipelineContext, SubmissionFailure } from './context.ts';
export { completeEncodedVariants } from './encoded.ts';
export { HeldDocuments } from './held-documents.ts';
export { listWaiting } from './intake.ts';
export type { SubmissionOutcome, SubmissionStatus } from './outcomes.ts';
export type { StuckEntryNotice } from './stuck-entries.ts';

/**
 * Write step 1: the immutable files of every accepted version, each begun as soon as its upload is judged
 * (nothing points at them yet), so the files of one are written while the next is judged: an import of
 * 10,000 new plugins spent as long writing them, after judging all, as judging. `written` waits for them
 * and returns each accepted item's new version. A store refusing one for good (a name the filesystem will
 * not take) rejects that submission alone; the store being unavailable fails the batch, to retry whole.
 */
class VersionWrites {
  readonly #added = new Map<BatchItem, AddedVersion>();
  /** The versions whose files failed to write for good (their items rejected), and why. */
  readonly #failed = new Map<BatchItem, { readonly accepted: Accepted; readonly error: unknown }>();
  // Each version's files are its own (its name and version are unique in the batch): written side by side.
  readonly #work = new BoundedWork(BATCH_WRITE_CONCURRENCY);
  readonly #ctx: PipelineContext;
  readonly #published: string;

  constructor(ctx: PipelineContext, published: string) {
    this.#ctx = ctx;
    this.#published = published;
  }

  /** Begins writing an item's version when it was accepted. */
  start(item: BatchItem): void {
    const evaluation = item.evaluation;
    if (evaluation.kind !== 'accepted') return;
    // Written by a run that died (its upload not at hand): its record read back, nothing written again.
    if (evaluation.written) {
      this.#added.set(item, { record: evaluation.written, manifest: evaluation.manifest });
      return;
    }
    this.#work.run(async () => {
      try {
        const record = await writeVersion(this.#ctx, evaluation, this.#published);
        this.#added.set(item, { record, manifest: evaluation.manifest });
        // Its files are written: nothing reads them again.
        item.evaluation = released(evaluation);
      } catch (error) {
        item.evaluation = failedWrite(this.#ctx, item.upload, error, evaluation, 'writing its files');
        this.#failed.set(item, { accepted: released(evaluation), error });
      }
    });
  }

  /**
   * Throws the failure of a version a run that died logged already (the log is open once every upload is
   * read, after the writes began): what is logged stands, so the batch fails, to retry whole, rather than
   * refuse it, which left its entry in the log for a version no document shows.
   */
  assertNoneLogged(log: LogWriter): void {
    for (const [item, { accepted, error }] of this.#failed) {
      const entry = log.entry('publish', accepted.sourceSha256);
      if (entry) {
        const { name, version } = accepted.manifest;
        throw loggedPublishFailed(
          item,
          `the publish of ${name}@${version}`,
          entry.seq,
          'writing its files',
          error,
        );
      }
    }
  }

  /**
   * Every version the batch accepted, began writing and then refuses: its files failed to write for good, or
   * its plugin's documents would not render with it (its item rejected by `foldAndRender`). Asked once the
   * batch is rendered.
   */
  refused(): RefusedVersion[] {
    const refused: RefusedVersion[] = [];
    for (const [item, { manifest, record }] of this.#added)
      if (item.evaluation.kind === 'rejected')
        refused.push({ item, manifest, sourceSha256: record.source_sha256 });
    for (const [item, { accepted }] of this.#failed)
      refused.push({ item, manifest: accepted.manifest, sourceSha256: accepted.sourceSha256 });
    return refused;
  }

  async written(): Promise<Map<BatchItem, AddedVersion>> {
    await this.#work.settled();
    return this.#added;
  }
}

/**
 * The error a batch fails with when it cannot write or render a publish a run that died logged (`seq`, its
 * entry): what is logged stands and is never refused, so nothing of the batch is recorded and its uploads
 * stay in incoming/, to be retried whole once the operator has mended what failed (`cause`). Its message
 * names the publish, its submission and its entry, and what to do: the operator's log gets this, not an
 * outcome the retry will never record.
 */
function loggedPublishFailed(
  item: BatchItem,
  subject: string,
  seq: number,
  what: string,
  cause: unknown,
  by = 'appended by a run that died',
  mend = 'mend what failed',
): PlugindexError {
  const reason =
    cause instanceof PlugindexError
      ? `${cause.name} ${cause.code}: ${cause.message}`
      : cause instanceof Error
        ? `${cause.name}: ${cause.message}`
        : String(cause);
  return new PlugindexError(
    'LOGGED_PUBLISH_FAILED',
    `${subject} (submission ${item.upload.id}, ${item.upload.key}) is in the transparency log (entry ${seq}, ${by}) and the registry failed ${what} (${reason}): what is logged is never refused, so the batch fails, nothing of it recorded, and its uploads stay in incoming/; ${mend}, then run the batch again`,
    { cause },
  );
}

/** A version the batch accepted and wrote (or began to), then refused: its item, now rejected. */
interface RefusedVersion {
  readonly item: BatchItem;
  readonly manifest: Manifest;
  readonly sourceSha256: string;
}

/**
 * Refuses, as the version it was found against was, each upload found already published against a version
 * accepted earlier in the batch (the same manifest bytes) that the batch then refused: told "already
 * published", its outcome (a success to whoever waits on it) named a version no document shows, and files
 * that are deleted. Only such an upload meets a refused version's digest: one shown before the batch would
 * have found that version published too.
 */
function refuseEchoes(items: readonly BatchItem[], refused: readonly RefusedVersion[]): void {
  const bySource = new Map(refused.map((r) => [r.sourceSha256, r.item]));
  for (const item of items) {
    const evaluation = item.evaluation;
    if (evaluation.kind !== 'already-published' || evaluation.resumed) continue;
    const original = bySource.get(evaluation.sourceSha256)?.evaluation;
    if (original?.kind === 'rejected') item.evaluation = rejected(original.problems, evaluation);
  }
}

/** What an item changed of the batch's view when it was judged: its plugin, and for an action its digest. */
interface ViewChange {
  readonly plugin: string;
  /** The action's, whose record in the plugin's action order may supersede one judged after it. */
  readonly digest?: string;
}

/**
 * The items that changed the batch's view when they were judged: those accepted then (a publish, an action on
 * a plugin), whether or not the batch refuses them since (`refused`: those whose files failed, rejected
 * already).
 */
function changingItems(
  items: readonly BatchItem[],
  refused: readonly RefusedVersion[],
): Map<BatchItem, ViewChange> {
  const changers = new Map<BatchItem, ViewChange>(refused.map((r) => [r.item, { plugin: r.manifest.name }]));
  for (const item of items) {
    const evaluation = item.evaluation;
    if (evaluation.kind === 'accepted') changers.set(item, { plugin: evaluation.manifest.name });
    else if (evaluation.kind === 'action-accepted' && 'plugin' in evaluation.read.action)
      changers.set(item, { plugin: evaluation.read.action.plugin, digest: evaluation.read.digest });
  }
  return changers;
}

/**
 * ACTION_DEPENDS_ON_REFUSED: an action judged against a plugin as an earlier item of its batch left it, and
 * that item then refused. Its own outcome, not that item's refusal: told that one's failure (a store's, "under
 * this submission's id" in the operator's log), its submitter looked for a failure that was not its own.
 */
function dependsOnRefusedProblem(plugin: string): Problem {
  return problem(
    'ACTION_DEPENDS_ON_REFUSED',
    '/plugin',
    `${plugin}: this action was judged against the plugin as an earlier submission of the same batch left it, and the registry then refused that submission; what it was judged against was never published, so it is neither applied nor recorded`,
    {
      expected:
        'an action judged against the plugin as published (submit it again, unchanged: it is judged anew)',
      found: plugin,
    },
  );
}

/**
 * Refuses (ACTION_DEPENDS_ON_REFUSED) each action judged against what earlier items of the batch did, which
 * the batch then refused (their files failed, their plugin's documents would not render with them):
 * - one found to change nothing (`Rejected.ordered`) on a plugin such an item changed: that judgment was made
 *   against a state never published, and recorded in the action order and logged (`detail.effect: "none"`),
 *   the log said an action changed nothing of a plugin that does not show what it said, and the order held a
 *   statement against that state (its own record, refused with it, supersedes nothing after it either);
 * - one refused as superseded by such items alone (`Rejected.supersededIn`): told ACTION_SUPERSEDED, its
 *   submitter read of a newer action that "stands for its slot", and none does.
 * The log and the order hold only what the batch publishes; the action is judged anew when submitted again.
 * It is not judged again here, without the refused items: every check that read the plugin's state (its
 * owners, its action order, the effect) read their changes, and the view the batch judged by is not unwound
 * (an owner a refused item added would still be one, and its statement stand for the slot).
 */
function unorderAfterRefused(
  items: readonly BatchItem[],
  changers: ReadonlyMap<BatchItem, ViewChange>,
): void {
  const refusedOn = new Set<string>();
  /** The digests of the actions refused since they were applied to the view's action order. */
  const unordered = new Set<string>();
  for (const item of items) {
    const evaluation = item.evaluation;
    if (evaluation.kind !== 'rejected') continue;
    const changed = changers.get(item);
    if (changed !== undefined) {
      refusedOn.add(changed.plugin);
      if (changed.digest !== undefined) unordered.add(changed.digest);
      continue;
    }
    const { ordered, supersededIn } = evaluation;
    let plugin: string | undefined;
    if (ordered && refusedOn.has(ordered.plugin)) {
      plugin = ordered.plugin;
      unordered.add(ordered.read.digest);
    } else if (supersededIn?.digests.every((digest) => unordered.has(digest))) plugin = supersededIn.plugin;
    if (plugin === undefined) continue;
    const { ordered: _judged, supersededIn: _by, ...refusal } = evaluation;
    item.evaluation = { ...refusal, problems: [dependsOnRefusedProblem(plugin)] };
  }
}

/**
 * PUBLISH_DEPENDS_ON_REFUSED, in place of `judged.problem`: a publish refused for plugins only earlier
 * submissions of its batch made, which the batch then refused. Told that it is another publisher's plugin,
 * its submitter looked for a plugin that never was, and could not tell that the same upload is accepted now.
 */
function publishDependsOnRefusedProblem(judged: JudgedOnBatch): Problem {
  const names = judged.plugins.map((name) => `"${name}"`).join(', ');
  return problem(
    'PUBLISH_DEPENDS_ON_REFUSED',
    judged.problem.path,
    `refused as ${judged.problem.code} for ${names}, which only an earlier submission of the same batch made, and the registry then refused that submission: ${names} was never published`,
    {
      expected:
        'a publish judged against the plugins as published (submit it again, unchanged: it is judged anew)',
      found: judged.plugins.join(', '),
    },
  );
}

/**
 * Tells each publish refused for plugins only earlier submissions of its batch made (`Rejected.judgedOnBatch`:
 * their owners, their look-alike name, their OCI repository), when the batch publishes none of those plugins
 * in the end (their versions refused after the judging: their files refused for good, their page too large),
 * that it was judged against plugins that never were (PUBLISH_DEPENDS_ON_REFUSED), where its outcome named
 * them as another publisher's. It is not judged again here: the batch's view is not unwound (what the
 * refused submission made is what every later item was judged against), so, as for actions
 * (`unorderAfterRefused`), submitting it again has it judged anew. A problem that stands on any plugin the
 * batch does publish (or one published before it) is left as it is.
 */
function unpublishedJudged(items: readonly BatchItem[]): void {
  const published = new Set(
    items.flatMap(({ evaluation: e }) => (e.kind === 'accepted' ? [e.manifest.name] : [])),
  );
  for (const item of items) {
    const evaluation = item.evaluation;
    if (evaluation.kind !== 'rejected' || !evaluation.judgedOnBatch) continue;
    const never = evaluation.judgedOnBatch.filter((j) => !j.plugins.some((name) => published.has(name)));
    if (never.length === 0) continue;
    const { judgedOnBatch: _judged, ...refusal } = evaluation;
    item.evaluation = {
      ...refusal,
      problems: evaluation.problems.map((p) => {
        const judged = never.find((j) => j.problem === p);
        return judged ? publishDependsOnRefusedProblem(judged) : p;
      }),
    };
  }
}

/**
 * Deletes the files written for versions the batch refuses (`VersionWrites.refused`), which nothing
 * points at: a version is accepted only while no document shows it (else it is already published, or
 * refused as VERSION_EXISTS, VERSION_REMOVED: nothing of a shown version is written again), and one a run
 * that died logged is never refused (`isLogged`, `assertNoneLogged`). Before the log, so a run that dies
 * before or while it deletes leaves them to its retry, which writes them again, judges the upload again
 * and deletes them again if it refuses it again. A key the store refuses to delete for good (or fails on
 * unexpectedly) stays, unreferenced, as every one did before; a store that is unavailable fails the batch,
 * retried whole.
 */
async function deleteRefusedVersions(
  ctx: PipelineContext,
  refused: readonly RefusedVersion[],
  view: BatchView,
  folded: Pick<Folded, 'docs'>,
): Promise<void> {
  // What the plugin's documents point at, published or as the batch leaves them, is never deleted, whatever
  // the judging said: a guard against a record the judging does not take for the version (one without
  // `source_sha256`, in a document edited by hand and taken as it is by a rebuild), at no cost but a read
  // made already.
  const referenced = new Set<string>();
  for (const name of new Set(refused.map((r) => r.manifest.name)))
    for (const doc of [await view.published(name), folded.docs.get(name)])
      for (const record of doc?.versions ?? [])
        for (const key of versionFiles(name, record)) referenced.add(key);
  const keys = refused.flatMap(({ manifest }) => {
    const files = (manifest.installation?.artifacts ?? []).flatMap((a) =>
      a.file === undefined ? [] : [a.file],
    );
    return versionKeys(manifest.name, manifest.version, files).filter((key) => !referenced.has(key));
  });
  await forEachLimited(keys, BATCH_WRITE_CONCURRENCY, async (key) => {
    try {
      await ctx.site.delete(key);
    } catch (error) {
      // As a write is judged (failedWrite): only a store that is unavailable fails the batch.
      if (error instanceof StoreError && !error.permanent) throw error;
    }
  });
}

/** The rejection of a publish or action that would grow its plugin's page past its bound (render/html.ts). */
function tooLargeProblem(error: RenderError, path: string) {
  return problem('PLUGIN_TOO_LARGE', path, error.message, {
    expected: `a plugin whose page holds at most ${MAX_PLUGIN_PAGE_LENGTH} characters (fewer or shorter scan findings, artifacts, advisories or versions)`,
  });
}

const isTooLarge = (error: unknown): error is RenderError =>
  error instanceof RenderError && error.code === 'RENDER_TOO_LARGE';

/**
 * Whether `item` is in the log already: a publish or an action a run that died logged (`logged`, `resumed`).
 * What is logged stands, so the batch never refuses it: a refusal left an entry for what no document shows.
 */
function isLogged(item: BatchItem): boolean {
  const evaluation = item.evaluation;
  if (evaluation.kind === 'accepted') return evaluation.logged !== undefined;
  return evaluation.kind === 'action-accepted' && evaluation.resumed !== undefined;
}

/**
 * Whether a plugin's page past its bound refuses `item`: what grows a page by a publisher's words, a publish
 * (a version, its manifest's findings and artifacts) or an owner's advisory, not yet logged. The other
 * owners' actions (a yank, a deprecation, an owner added) grow it by a line at most, and are never refused
 * for it: an owner must be able to yank a version of a plugin a page of before the bound had grown past it.
 * Nor the operator's remove, transfer and revoke-key, nor an item a run that died logged already (a publish
 * it logged comes back accepted: it was refused with the new publish that grew the plugin, its entry left).
 */
function refusedForSize(item: BatchItem): boolean {
  if (isLogged(item)) return false;
  const evaluation = item.evaluation;
  return (
    evaluation.kind === 'accepted' ||
    (evaluation.kind === 'action-accepted' && evaluation.read.action.action === 'advisory-add')
  );
}

/**
 * `loggedPublishFailed` for a logged item (a publish, or an action a run that died logged), or the error as
 * it is for one not logged.
 */
function loggedFailure(item: BatchItem, error: unknown, what: string): unknown {
  const evaluation = item.evaluation;
  const seq =
    evaluation.kind === 'accepted'
      ? evaluation.logged?.seq
      : evaluation.kind === 'action-accepted'
        ? evaluation.resumed?.seq
        : undefined;
  const subject = subjectOf(item);
  return seq !== undefined && subject ? loggedPublishFailed(item, subject, seq, what, error) : error;
}

/** What an accepted publish or action is, in an operator's words: `the publish of demo@1.0.0`. */
function subjectOf(item: BatchItem): string | undefined {
  const evaluation = item.evaluation;
  if (evaluation.kind === 'accepted' || evaluation.kind === 'already-published') {
    const { name, version } = evaluation.manifest;
    return `the publish of ${name}@${version}`;
  }
  if (evaluation.kind === 'action-accepted') {
    const action = evaluation.read.action;
    const on =
      'plugin' in action ? ` on ${action.plugin}${evaluation.version ? `@${evaluation.version}` : ''}` : '';
    return `the ${action.action} action${on}`;
  }
  return undefined;
}

/** An accepted item (publish or action) turned into a rejection: the registry failed `what` for it. */
function failedItem(ctx: PipelineContext, item: BatchItem, error: unknown, what: string): void {
  const evaluation = item.evaluation;
  // Its log entry is written already: the run that logged it rendered this document (foldAndRender refuses
  // only what is not logged).
  if (isLogged(item)) throw loggedFailure(item, error, what);
  if (evaluation.kind === 'accepted' && isTooLarge(error))
    item.evaluation = rejected([tooLargeProblem(error, 'bundle:')], evaluation);
  else if (evaluation.kind === 'accepted')
    item.evaluation = failedWrite(ctx, item.upload, error, evaluation, what);
  else if (evaluation.kind === 'action-accepted') {
    if (error instanceof StoreError && !error.permanent) throw error;
    if (isTooLarge(error)) {
      item.evaluation = rejected([tooLargeProblem(error, 'envelope:')], { action: acceptedInfo(evaluation) });
      return;
    }
    item.evaluation = rejected([writeFailedProblem(ctx, item.upload, error, what, 'envelope:')], {
      action: acceptedInfo(evaluation),
    });
  }
}

/** A batch folded into documents, and the documents it rewrites, rendered. */
interface Rendered {
  readonly folded: Folded;
  readonly rendered: readonly RenderedPlugin[];
  /** The plugins whose documents the batch rewrites. */
  readonly changed: Set<string>;
}

/**
 * Folds the batch into its plugin documents and renders every one it rewrites, before anything of theirs
 * is written: those it changed, and those whose published document the catalog has not caught up with (a
 * run that died after writing it: crash recovery). A plugin whose documents cannot be rendered rejects the
 * submissions that changed it, and the batch is folded again without them (an action after a rejected
 * publish then no longer applies); the rest of the batch publishes.
 */
async function foldAndRender(
  ctx: PipelineContext,
  items: readonly BatchItem[],
  written: ReadonlyMap<BatchItem, AddedVersion>,
  view: BatchView,
  processed: string,
): Promise<Rendered> {
  for (;;) {
    const folded = await foldBatch(ctx, items, written, view, processed);
    const changed = new Set(folded.docs.keys());
    const behind = new Set(folded.resumedOn.keys());
    for (const item of items)
      if (item.evaluation.kind === 'already-published') behind.add(item.evaluation.manifest.name);
    // Their documents as read (once a batch) and checked against the catalog (published.ts): one a run that
    // died wrote is re-rendered, and its line caught up.
    for (const name of behind) {
      if (changed.has(name)) continue;
      await view.published(name);
      if (view.behind(name)) changed.add(name);
    }
    const rendered: RenderedPlugin[] = [];
    let refolded = false;
    const what = "rendering the plugin's documents";
    for (const name of [...changed].sort()) {
      const doc = folded.docs.get(name) ?? (await view.published(name));
      if (!doc) {
        changed.delete(name);
        continue;
      }
      const culprits = folded.changedBy.get(name);
      try {
        // Bounded where something of this batch changes it: what grows a plugin past its bound is refused.
        rendered.push(
          renderPlugin(doc, identityOf(ctx.config), culprits ? { maxLength: MAX_PLUGIN_PAGE_LENGTH } : {}),
        );
      } catch (error) {
        // A published document that no longer renders is the operator's to mend: nothing new is at fault.
        // One a run that died wrote (its catalog behind it), caught up for a publish or action it logged,
        // fails naming that entry, as a store refusing it does (`pluginWriteFailure`): every later batch
        // resumes it and fails here again until the document is put right, and the render's error alone
        // said nothing of the entry, nor of what to do.
        if (!culprits)
          throw (
            loggedBehind(
              name,
              items,
              folded,
              error,
              what,
              `put its published document ${pluginDocumentKey(name)} right and take it as it is (plugindex rebuild)`,
            ) ?? error
          );
        // What is logged already is never refused (isLogged): only what this batch would log.
        const refused = culprits.filter(isTooLarge(error) ? refusedForSize : (item) => !isLogged(item));
        if (refused.length === 0) {
          // Only what a run that died logged changed it, and it rendered then: the published document no
          // longer renders, the operator's to mend (as above), and the batch fails rather than refuse it.
          if (!isTooLarge(error)) throw loggedFailure(culprits.find(isLogged) as BatchItem, error, what);
          // Nothing of this batch grew it past the bound (an owner's yank, the operator's actions, ones
          // already logged): rendered whatever its size.
          rendered.push(renderPlugin(doc, identityOf(ctx.config)));
          continue;
        }
        for (const item of refused) failedItem(ctx, item, error, what);
        refolded = true;
        break;
      }
    }
    if (!refolded) return { folded, rendered, changed };
  }
}

/**
 * Plugin documents signed between turns of the event loop (about 60 µs each): the store's writes made
 * meanwhile go out at the next turn, and those answered free their slots.
 */
const SIGNED_BETWEEN_TURNS = 16;

/**
 * Write steps 3 and 4: the pending mark when `defer`, then the changed plugins' documents, signatures and
 * pages, their catalog lines updated (the catalog itself is saved at the commit). Returns once every
 * document is signed and its line set, with the writes still under way: `written` settles once none is
 * still writing, and throws the first failure (after it, no more are begun). The commit renders, hashes,
 * compresses and signs meanwhile, and its writes wait for these (`writingAfter`): at 10,000 plugins the
 * writer thread took 1.2 s to write them, and the commit had waited for that with 0.45 s of work to do.
 */
/**
 * What the batch is about to publish that a later batch reads back (its plugin documents, the revoked keys),
 * recorded in the catalog's meta file (published.ts), with the pending mark of a deferred batch: started
 * beside the log's writes, and awaited before the first plugin document is written (writeChangedPlugins).
 */
function recordWrites(
  ctx: PipelineContext,
  rendered: readonly RenderedPlugin[],
  catalog: Catalog,
  defer: boolean,
  revoked: Uint8Array | undefined,
): Promise<void> {
  // Recorded before the first of them is written: a run that dies before the catalog records them leaves
  // documents the retry knows for the registry's own, and nothing else is taken for them. Hashed apart from
  // their signing, which each gets as it is written.
  for (const plugin of rendered)
    noteWriting(catalog, pluginDocumentKey(plugin.doc.name), sha256Hex(plugin.body));
  if (revoked) noteWriting(catalog, REVOKED_KEYS_KEY, sha256Hex(revoked));
  // A deferred batch marks the index documents pending before the first write they would lag behind (the
  // plugin documents, not the log), so a crash at any later step still leaves them to the next flush: the
  // retry may find nothing else to do (the catalog bin, once written, says the plugin is up to date). One
  // write of the meta file for both.
  if (defer && rendered.length > 0 && !catalog.indexesPending) {
    catalog.indexesPending = true;
    return saveCatalog(ctx.intake, catalog, new Set());
  }
  if (rendered.length > 0 || revoked) return saveWriting(ctx.intake, catalog);
  return Promise.resolve();
}

/**
 * The error a batch fails with when the store refuses a plugin's documents for good once the log holds what
 * changed the plugin (`changedBy`: this batch's entries, or a dead run's, its upload resumed; `resumedOn`: a
 * dead run's action whose effect its document shows already, caught up; or a dead run's publish whose
 * version that document shows): LOGGED_PUBLISH_FAILED naming the first such publish or action, its entry
 * and the store's refusal, where the store's error alone (its path, no word of the entry every later batch
 * resumes and fails on) was all the operator was told. Anything else (the store unavailable, a document
 * caught up with nothing of the batch behind it) is thrown as it is.
 */
function pluginWriteFailure(
  name: string,
  items: readonly BatchItem[],
  folded: Pick<Folded, 'changedBy' | 'resumedOn'>,
  error: unknown,
): unknown {
  if (!(error instanceof StoreError) || !error.permanent) return error;
  return loggedBehind(name, items, folded, error, "writing the plugin's documents") ?? error;
}

/**
 * LOGGED_PUBLISH_FAILED for `error`, met doing `what` for plugin `name`, naming the first publish or action
 * whose entry the log holds behind its documents (see `pluginWriteFailure`); undefined when none is.
 */
function loggedBehind(
  name: string,
  items: readonly BatchItem[],
  folded: Pick<Folded, 'changedBy' | 'resumedOn'>,
  error: unknown,
  what: string,
  mend?: string,
): PlugindexError | undefined {
  const resumed = items.filter(
    ({ evaluation: e }) => e.kind === 'already-published' && e.resumed && e.manifest.name === name,
  );
  const behind = [...(folded.changedBy.get(name) ?? []), ...(folded.resumedOn.get(name) ?? []), ...resumed];
  return loggedAmong(behind, error, what, mend);
}

/** LOGGED_PUBLISH_FAILED naming the first of `behind` whose entry the log holds; undefined when none does. */
function loggedAmong(
  behind: readonly BatchItem[],
  error: unknown,
  what: string,
  mend?: string,
): PlugindexError | undefined {
  const died = 'appended by a run that died';
  for (const item of behind) {
    const evaluation = item.evaluation;
    const subject = subjectOf(item);
    if (!subject) continue;
    const seq =
      evaluation.kind === 'accepted'
        ? evaluation.logged?.seq
        : evaluation.kind === 'action-accepted' || evaluation.kind === 'already-published'
          ? evaluation.resumed?.seq
          : undefined;
    if (seq !== undefined) return loggedPublishFailed(item, subject, seq, what, error, died, mend);
    if (item.seq !== undefined)
      return loggedPublishFailed(item, subject, item.seq, what, error, 'appended by this batch', mend);
  }
  return undefined;
}

/**
 * The error a batch fails with when the store refuses `keys/revoked.json` (or its signature) for good, which
 * the commit writes after the log for a revocation this batch logged or resumed (`Folded.revoked`: a dead
 * run's, the list rewritten to catch it up): LOGGED_PUBLISH_FAILED naming the first such revocation, its
 * entry and the store's refusal, where the store's error alone was thrown by that batch and every later
 * one. Anything else the commit fails on is thrown as it is.
 */
function revokedWriteFailure(items: readonly BatchItem[], folded: Folded, error: unknown): unknown {
  if (!folded.revoked || !(error instanceof StoreError) || !error.permanent) return error;
  if (error.key !== REVOKED_KEYS_KEY && !error.key.startsWith(`${REVOKED_KEYS_KEY}.`)) return error;
  const revocations = items.filter(
    ({ evaluation: e }) => e.kind === 'action-accepted' && e.read.action.action === 'revoke-key',
  );
  return loggedAmong(revocations, error, `writing ${REVOKED_KEYS_KEY}`) ?? error;
}

/**
 * The error a batch fails with when the intake store refuses for good an action's record, written after the
 * log (`writeActionOrders`, `writeMarkers`), by the batch that logs the action or one resuming it, which
 * writes it again: LOGGED_PUBLISH_FAILED naming the action (for a plugin's action order, the first logged
 * action on that plugin), its entry and the store's refusal, where the store's error alone was thrown by
 * that batch and every later one. Anything else is thrown as it is (an envelope is written before the log).
 */
function actionRecordFailure(items: readonly BatchItem[], error: unknown): unknown {
  if (!(error instanceof StoreError) || !error.permanent) return error;
  const actions = items.filter(
    (item): item is BatchItem & { evaluation: AcceptedAction } => item.evaluation.kind === 'action-accepted',
  );
  const marked = actions.filter(({ evaluation }) => actionMarkerKey(evaluation.read.digest) === error.key);
  if (marked.length > 0) return loggedAmong(marked, error, `writing its marker ${error.key}`) ?? error;
  const ordered = actions.filter(({ evaluation: { read } }) => {
    const action = read.action;
    return 'plugin' in action && actionOrderKey(action.plugin) === error.key;
  });
  return loggedAmong(ordered, error, `writing the plugin's action order ${error.key}`) ?? error;
}

/** What `voidRefusedPlugin` reads and changes of the batch. */
interface Voiding {
  readonly items: readonly BatchItem[];
  readonly folded: Pick<Folded, 'changedBy' | 'resumedOn'>;
  readonly log: LogWriter;
  readonly view: BatchView;
  readonly catalog: Catalog;
  readonly processed: string;
  /** The plugin documents the pass wrote: those listing a voided first publish are named in its void's intent. */
  readonly toWrite: readonly RenderedPlugin[];
  /** The ids of uploads not at hand (`fromLog`) voided here: their voids' intents kept for the batch that meets them. */
  readonly awaited: Set<string>;
}

/**
 * LOGGED_ENTRY_VOIDED: the publish of `subject` was logged at `seq`, then its plugin's documents refused for
 * good, and the registry voided that entry: it never took effect. In stable terms, as SUBMISSION_WRITE_FAILED
 * is; the store's error goes to the operator.
 */
function voidedProblem(subject: string, seq: number): Problem {
  return problem(
    'LOGGED_ENTRY_VOIDED',
    'bundle:',
    `${subject} was recorded in the transparency log (entry ${seq}) and the registry then failed writing its plugin's documents for good: it voided that entry, so this publish never took effect; its operator's log has the details, under this submission's id`,
    {
      expected:
        "a submission every store can publish (please report this to the registry operator, naming this submission's id; once they mend it, submit it again, unchanged: it is judged anew)",
    },
  );
}

/**
 * The registry config's `voidRefusedEntries`: the store refused plugin `name`'s documents for good (`error`,
 * LOGGED_PUBLISH_FAILED from `pluginWriteFailure`) once the log held what changed it. When every such change
 * is a publish this batch or a run that died logged and no published snapshot counts (a void of an entry a
 * head counted is refused by clients, LOG_VOID_OF_SEEN), the store is put back to the plugin as published
 * (its document written again, or, new, its documents deleted), then each entry is voided (a `void` the
 * registry signs, log-void.ts, with an intent naming its upload: a retry records the rejection rather than
 * log the upload again, `rejectVoidedByDeadRun`), flushed, and each upload rejected LOGGED_ENTRY_VOIDED,
 * its version's files deleted. Returns false, changing nothing, when any of that does not hold (the batch
 * then fails as before): an action behind the plugin, another plugin's publish behind it (a look-alike's,
 * flagging the pair), a published document caught up, a restore refused.
 * Write order, for a crash at any point: the plugin as published (a retry meets the entry standing and the
 * same refusal), the void (a retry rejects by its intent), then the outcome (step 8, as every outcome).
 */
async function voidRefusedPlugin(
  ctx: PipelineContext,
  name: string,
  voiding: Voiding,
  error: unknown,
): Promise<boolean> {
  const { items, folded, log, view, catalog, processed, toWrite, awaited } = voiding;
  if (ctx.config.voidRefusedEntries !== true) return false;
  const resumed = items.some(
    ({ evaluation: e }) => e.kind === 'already-published' && e.resumed && e.manifest.name === name,
  );
  if (resumed || (folded.resumedOn.get(name)?.length ?? 0) > 0) return false;
  const behind = new Map<BatchItem, { readonly seq: number; readonly accepted: Accepted }>();
  for (const item of folded.changedBy.get(name) ?? []) {
    const evaluation = item.evaluation;
    if (evaluation.kind !== 'accepted') return false;
    // A first publish of another plugin that changed this one (flagging the pair, actions.ts
    // `refreshLookAlikes`): voided here, its own document, still written, showed a version no entry stands
    // for, its files deleted under it (verify --url refused the registry).
    if (evaluation.manifest.name !== name) return false;
    const seq = evaluation.logged?.seq ?? item.seq;
    if (seq === undefined || seq < log.vouched) return false;
    behind.set(item, { seq, accepted: evaluation });
  }
  if (behind.size === 0) return false;
  const key = pluginDocumentKey(name);
  const page = pluginPageKey(name);
  // The page may be what the store refuses (a folder where it goes): no snapshot binds it, the document and
  // its signature (written before a failure is thrown, allWritten) are what must be the published ones.
  const pageRefused = (failure: unknown) => {
    if (!(failure instanceof StoreError && failure.permanent && failure.key === page)) throw failure;
  };
  let published: PluginDocument | undefined;
  try {
    published = await view.published(name);
    if (published) {
      const signed = await signPlugin(ctx, renderPlugin(published, identityOf(ctx.config)), 'interrupted');
      await signed.write().catch(pageRefused);
      catalog.plugins.set(name, signed.line);
    } else {
      await ctx.site.delete(key);
      await ctx.site.delete(signatureKey(key));
      await ctx.site.delete(page).catch(pageRefused);
      await cleanInterruptedVariants(ctx, [key]);
      catalog.plugins.delete(name);
    }
  } catch (failure) {
    if (failure instanceof StoreError && failure.permanent) return false;
    throw failure;
  }
  // The snapshot as published now, not as the log was opened: one signed since (a writer beside the queue,
  // as writeSnapshot's ifMatch allows for) may count an entry, and clients refuse a void of it for good.
  // Held to the one the catalog records, so a snapshot.json put there by someone else is not believed.
  let counted: number;
  try {
    counted = checkedSnapshot(catalog, (await ctx.site.get(SNAPSHOT_KEY))?.body)?.log?.length ?? 0;
  } catch {
    return false; // another snapshot than the one this batch began from: judged by the batch's retry
  }
  if (counted > Math.min(...[...behind.values()].map(({ seq }) => seq))) return false;
  // The store's refusal, which the operator is told: LOGGED_PUBLISH_FAILED says the batch fails, and it does not.
  const refusal = error instanceof PlugindexError && error.cause !== undefined ? error.cause : error;
  const reason = `the registry failed writing the plugin's documents for good (${errorName(refusal)})`;
  const voids: [BatchItem, Awaited<ReturnType<typeof signVoid>>][] = [];
  for (const [item, { seq }] of [...behind].sort(([, a], [, b]) => a.seq - b.seq)) {
    const voided = await log.read(seq);
    if (!voided) return false;
    const fields = await signVoid({
      voided,
      reason,
      time: processed,
      signer: ctx.signer,
      registry: ctx.config.url,
    });
    voids.push([item, fields]);
  }
  // What the voided publishes filed in the indexes, taken out as if they were never filed (a name new with
  // them, each OCI repository its plugin's published versions do not name), before the void: a retry of a
  // run that dies between the two meets the entries standing, and files them again as it judges them.
  await withdrawVoided(
    view,
    name,
    published,
    [...behind.values()].map(({ accepted }) => accepted.manifest),
  );
  // A first publish's: the other documents that may list it in `look_alikes` (written by this pass, or filed
  // alike and maybe written so by a run that died), named in each void's intent, so that any later batch
  // writes them again without it if this run dies first (`LogIntent.alike`, `voidedAlike`).
  const alike = published
    ? []
    : [
        ...new Set([
          ...toWrite
            .filter((plugin) => plugin.doc.look_alikes?.some((other) => other.name === name))
            .map((plugin) => plugin.doc.name),
          ...(await view.names.filedAlike(name)).map((filed) => filed.name),
        ]),
      ]
        .filter((other) => other !== name)
        .sort();
  // An upload not at hand is marked awaited with its void, before any outcome of it is recorded: marked only
  // at `forget`, a run that died between the two left a retry that dropped the intent for that outcome, and
  // the upload, met, was judged anew, logged and voided again.
  for (const [item, fields] of voids)
    log.append(fields, item.upload.id, {
      ...(item.fromLog ? { awaited: true as const } : {}),
      ...(alike.length > 0 ? { alike } : {}),
    });
  await log.flush();
  const refused: RefusedVersion[] = [];
  for (const [item, { seq, accepted }] of behind) {
    const { manifest, publisher, sourceSha256 } = accepted;
    const subject = subjectOf(item) as string;
    ctx.onSubmissionFailure?.({
      submission: item.upload.key,
      id: item.upload.id,
      code: 'LOGGED_ENTRY_VOIDED',
      error: refusal,
    });
    item.evaluation = rejected([voidedProblem(subject, seq)], { manifest, publisher });
    if (item.fromLog) awaited.add(item.upload.id);
    refused.push({ item, manifest, sourceSha256 });
  }
  // Its files, which no document points at now (the plugin's as published is the one referenced).
  await deleteRefusedVersions(ctx, refused, view, { docs: new Map() });
  return true;
}

/**
 * Takes out of the look-alike and OCI repository indexes what `manifests`, the publishes of plugin `name` the
 * registry voids, filed there (`BatchView.fileAccepted`): its name when the plugin has no published document
 * (`published`), each repository they name that its published versions do not. Both indexes count an entry
 * only once its plugin's document confirms it, so one left would refuse nothing; but every later look-up of
 * its key read a document for it, and `look_alikes` named it, until a `plugindex rebuild`.
 */
async function withdrawVoided(
  view: BatchView,
  name: string,
  published: PluginDocument | undefined,
  manifests: readonly Manifest[],
): Promise<void> {
  const kept = published ? documentOciRepositories(published) : new Set<string>();
  const named = new Set(manifests.flatMap((manifest) => [...manifestOciRepositories(manifest).keys()]));
  await Promise.all([
    published ? undefined : view.names.withdraw(name),
    view.repositories.withdraw(
      name,
      [...named].filter((repository) => !kept.has(repository)),
    ),
  ]);
}

/**
 * `toWrite` without plugin `name`, whose publish the registry voided (`voidRefusedPlugin`), and, when that
 * was its first (`standing` false: no document of it stands), with every other document that lists it in
 * `look_alikes` rendered again without it: the pair was flagged when the batch set its owners (actions.ts
 * `refreshLookAlikes`), and a plugin that never was is no look-alike.
 * Such a document is in `toWrite` when this batch flagged it; when a run that died wrote it flagged before it
 * voided (its retry reads that document as published, `writing`, and finds nothing to change), it is not,
 * and is read here among the names filed alike (the retry, else, committed the catalog's older line over the
 * document the dead run wrote: verify --url refused the registry), and among `alike`, the documents the void's
 * intent names (`LogIntent.alike`); it is added to `changed`. Returns the plugins to write, and those rendered
 * again (`rendered`), of bytes not recorded yet.
 */
async function withoutVoidedPlugin(
  ctx: PipelineContext,
  toWrite: readonly RenderedPlugin[],
  name: string,
  view: BatchView,
  changed: Set<string>,
  standing: boolean,
  alike: readonly string[] = [],
): Promise<{ readonly plugins: RenderedPlugin[]; readonly rendered: RenderedPlugin[] }> {
  // A published plugin's version voided: the plugin stands, and so does every look-alike flag naming it.
  if (standing) return { plugins: toWrite.filter((plugin) => plugin.doc.name !== name), rendered: [] };
  const rendered: RenderedPlugin[] = [];
  const again = (doc: PluginDocument): RenderedPlugin | undefined => {
    const alike = doc.look_alikes;
    if (!alike?.some((other) => other.name === name)) return undefined;
    const { look_alikes: _, ...rest } = doc;
    const left = alike.filter((other) => other.name !== name);
    // Placed as lookAlikesWithin places the field, by `recomputed`.
    const plugin = renderPlugin(
      recomputed(left.length > 0 ? { ...rest, look_alikes: left } : rest),
      identityOf(ctx.config),
    );
    rendered.push(plugin);
    return plugin;
  };
  const plugins = toWrite.flatMap((plugin) =>
    plugin.doc.name === name ? [] : [again(plugin.doc) ?? plugin],
  );
  const writing = new Set(toWrite.map((plugin) => plugin.doc.name));
  const filed = (await view.names.filedAlike(name)).map((found) => found.name);
  for (const other of new Set([...filed, ...alike])) {
    if (writing.has(other) || other === name) continue;
    const doc = await view.published(other);
    const plugin = doc && again(doc);
    if (!plugin) continue;
    plugins.push(plugin);
    changed.add(other);
  }
  return { plugins, rendered };
}

/** The code of a refusal, as a void's reason names it. */
function errorName(error: unknown): string {
  return error instanceof StoreError ? `${error.name} ${error.code}` : 'an unexpected error';
}

/**
 * Rejects LOGGED_ENTRY_VOIDED each upload whose publish a run that died voided (`voidRefusedPlugin`, its void's
 * intent naming it) before it recorded its outcome: judged anew, it was logged again and refused again, an
 * entry and a void more at every retry.
 */
async function rejectVoidedByDeadRun(
  ctx: PipelineContext,
  items: readonly BatchItem[],
  log: LogWriter,
): Promise<string[]> {
  const names: string[] = [];
  for (const item of items) {
    const evaluation = item.evaluation;
    if (evaluation.kind !== 'accepted' || item.fromLog) continue;
    const voids = await log.voidFor(item.upload.id);
    if (!voids) continue;
    const seq = Number(voids.detail?.entry);
    ctx.onSubmissionFailure?.({
      submission: item.upload.key,
      id: item.upload.id,
      code: 'LOGGED_ENTRY_VOIDED',
      error: new Error(`log entry ${seq} voided at entry ${voids.seq} (${voids.detail?.reason})`),
    });
    const { manifest, publisher } = evaluation;
    item.evaluation = rejected([voidedProblem(subjectOf(item) as string, seq)], { manifest, publisher });
    names.push(manifest.name);
  }
  return names;
}

async function writeChangedPlugins(
  ctx: PipelineContext,
  rendered: readonly RenderedPlugin[],
  catalog: Catalog,
  recorded: Promise<void>,
  view: BatchView,
  items: readonly BatchItem[],
  folded: Pick<Folded, 'changedBy' | 'resumedOn'>,
  interrupted: ReadonlySet<string>,
): Promise<{ readonly written: Promise<void>; readonly refused: () => string | undefined }> {
  await recorded;
  // The plugin whose documents the store refused for good, first: one the registry may void (`voidRefusedPlugin`).
  let refused: string | undefined;
  // Each written as soon as it is signed, at most BATCH_WRITE_CONCURRENCY plugins at a time.
  const writes = new BoundedWork(BATCH_WRITE_CONCURRENCY);
  let failed = false;
  try {
    for (const [i, plugin] of rendered.entries()) {
      if (failed) break;
      // Its previous size, for the compressed variants a document shrinking under the threshold drops: as
      // the batch read it, else as the catalog records it; or a run that died writing it (`interrupted`),
      // whose variants, of a document that never landed, go whatever the size.
      const name = plugin.doc.name;
      const previous = interrupted.has(pluginDocumentKey(name))
        ? 'interrupted'
        : (view.publishedSize(name) ?? catalog.plugins.get(name)?.document.size);
      const signed = await signPlugin(ctx, plugin, previous);
      catalog.plugins.set(plugin.doc.name, signed.line);
      writes.run(async () => {
        if (failed) return; // the batch fails, to be retried whole: no use writing more
        await signed.write().catch((error: unknown) => {
          if (!failed && error instanceof StoreError && error.permanent) refused = name;
          failed = true;
          throw pluginWriteFailure(name, items, folded, error);
        });
      });
      // A signature settles without a turn of the event loop: without one now and then, no write would be
      // sent (nor any answered) until every document was signed.
      if (i % SIGNED_BETWEEN_TURNS === SIGNED_BETWEEN_TURNS - 1) await turn();
    }
  } catch (error) {
    await writes.settled().catch(() => undefined);
    throw error;
  }
  const written = writes.settled();
  written.catch(() => undefined); // awaited by the caller, after the commit it gates
  return { written, refused: () => refused };
}

/**
 * Processes submissions (by default everything under `incoming/`) as one batch with one rebuild: bundles
 * and lifecycle actions alike, in upload order.
 * @example const result = await processSubmissions({ intake, site, signer, clock: systemClock, config });
 */
export async function processSubmissions(
  context: PipelineContext,
  keys?: readonly string[],
): Promise<BatchResult> {
  const { ctx: writing, log: writeLog } = withWriteLog(context);
  // The operator is told of a submission's failure once its outcome is recorded: a batch that fails after
  // judging one (a publish a run that died logged, failing with it: LOGGED_PUBLISH_FAILED) records none, and
  // its retry judges it again. Told at once, the operator's log named an outcome that was never recorded.
  // Told once its outcome is recorded (recordOutcomes), in the order met for each submission.
  const told: SubmissionFailure[] = [];
  const ctx: PipelineContext = { ...writing, onSubmissionFailure: (failure) => told.push(failure) };
  // The catalog, the registry's record of what it published: what the batch reads back of that is checked
  // against it before it is used (published.ts).
  const asStored = openCatalog(ctx.intake);
  asStored.catch(() => undefined); // met below, or by the checks
  // Before any manifest is signed: a batch signed by a key the snapshot does not name fails whole, and so
  // does one that meets a snapshot the registry did not commit.
  await checkSigningKeyCurrent(ctx, asStored);
  // A catalog of another format (a release before this one wrote it) is the upgrade's, which rebuilds it,
  // holding every published document to what the registry signed: first, so that one it refuses fails the
  // batch before anything of it is read or written (and the batch is judged by the catalog rebuilt).
  const catalogOpening = asStored.then((opened) => (opened.upgrading ? currentCatalog(ctx, opened) : opened));
  await catalogOpening;
  // The time of publishing, for the whole batch: publisher keys are judged valid (or not) at it.
  const now = ctx.clock.now();
  // The owners the look-alike index files are trusted only while the catalog says they are kept (catalog.ts
  // `Catalog.namesOwnersKept`): a build before them drops the mark from the meta file, whatever it changes.
  const ownersKept = catalogOpening.then(
    (opened) => !opened.outdated && opened.namesOwnersKept,
    () => false,
  );
  const view = new BatchView(
    ctx.site,
    ctx.intake,
    new PublishedRecords(ctx.intake, catalogOpening),
    ownersKept,
  );
  // The intent records a run that died left (one listing; none, nearly always), side by side with the plan.
  const intentRecords = readIntentRecords(ctx.intake);
  intentRecords.catch(() => undefined); // met by the judging, or by the log's opening
  // What the batch takes and the keys it trusts, side by side: each is a round trip to a store or more (on
  // S3, tens of milliseconds), and neither needs the other.
  const [plan, basis] = await allSettledValues([planBatch(ctx, keys), beginJudging(ctx, view, now)]);
  const { leftInIncoming } = plan;
  // Each bundle's inspection begins as soon as it is read (on the inspector's threads, while this one
  // reads the rest).
  const inspections = new Inspections(ctx, basis, plan.taken.filter((t) => !t.tooLarge).length);
  // Each is judged, and its files written, as soon as it and those before it are read (the reading holds
  // this thread for seconds at 10,000). The log opens once all are read: its intents name every upload.
  const inOrder = new UploadsInOrder(plan.taken.length);
  const reading = readBatch(
    ctx,
    plan,
    (upload, index) => {
      if (upload) inspections.add(upload);
      inOrder.put(index, upload);
    },
    inOrder.signal,
  );
  reading.then(
    () => inspections.close(),
    (error: unknown) => inOrder.fail(error),
  );
  const opening = reading.then((uploads) =>
    LogWriter.open(ctx, { intents: uploads.map((u) => u.id), records: intentRecords }),
  );
  opening.catch(() => undefined); // met by the first action judged, or below
  const processed = now.toISOString();
  const versions = new VersionWrites(ctx, processed);
  // A run that died left intent records: what it logged for uploads not at hand is finished too.
  const deadRun = intentRecords.then(namesOwed);
  const judging = { ...basis, log: opening, deadRun };
  const items = await evaluateBatch(ctx, inOrder, inspections, judging, (item) => versions.start(item)).catch(
    async (error: unknown) => {
      // Nothing this batch began is still reading or writing when it fails (the judging, stopped, stopped
      // the reading: `inOrder.signal`).
      await reading.catch(() => undefined);
      await versions.written().catch(() => undefined);
      throw error;
    },
  );
  const written = await versions.written();
  // What changed the batch's view as it was judged (an item refused since, its files failing, still did).
  const changers = changingItems(items, versions.refused());
  ctx.onStep?.('judged');
  // The log (opened since every upload was read), and the catalog (opened at the batch's start).
  const [log, opened] = await allSettledValues([opening, catalogOpening]);
  versions.assertNoneLogged(log);
  resumePublished(items, log);
  markLogged(items, log);
  const voidedByDeadRun = await rejectVoidedByDeadRun(ctx, items, log);
  const catalog = await currentCatalog(ctx, opened);
  const { folded, changed, ...render } = await foldAndRender(ctx, items, written, view, processed);
  let rendered = render.rendered;
  // A first publish a run that died voided, after it wrote the documents that flag it as a look-alike: this
  // batch judges it no more, so nothing of it changes those (each read as published, `writing`), and the
  // catalog's older line was committed over each (DOCUMENT_MISMATCH). Written again without it, as the dead
  // run was about to. None while the plugin stands (published, or published by this batch anew).
  // So for a void whose intent names those documents (`LogIntent.alike`), whatever uploads this batch takes:
  // one of other uploads alone (one batch per S3 event, the local server) committed the older line too. The
  // voided plugin's own document is never written here: a publish voided stays voided.
  const alike = await log.voidedAlike();
  for (const name of new Set([...voidedByDeadRun, ...alike.keys()]))
    if (!changed.has(name) && !(await view.published(name)))
      rendered = (await withoutVoidedPlugin(ctx, rendered, name, view, changed, false, alike.get(name)))
        .plugins;
  const refused = versions.refused();
  refuseEchoes(items, refused);
  unorderAfterRefused(items, changers);
  unpublishedJudged(items);
  await deleteRefusedVersions(ctx, refused, view, folded);
  ctx.onStep?.('rendered');
  // The index documents list every version's manifest: a batch that removes versions renders them at once,
  // so none still names a file once it is deleted.
  const defer = ctx.deferIndexes === true && folded.removedFiles.length === 0;
  // Write step 2, the log: the accepted actions' envelopes (immutable; nothing points at them yet), one
  // entry per accepted publish and action in batch order, flushed before any document shows their effect
  // (log-writer.ts), then the actions' markers (a replay meets them; a retry resumes from them).
  // Write step 3, the catalog's record of what the batch will publish, is made side by side with them: it
  // need only be written before the plugin documents (one round trip less on every publish's path).
  const documents: [string, Uint8Array][] = folded.revoked
    ? [[REVOKED_KEYS_KEY, encodeJson(folded.revoked)]]
    : [];
  // The plugin documents a run that died was about to write (before this one records its own): it may have
  // written a grown document's compressed variants first, which the document written now must not keep.
  const interrupted = new Set(
    rendered.map((plugin) => pluginDocumentKey(plugin.doc.name)).filter((key) => catalog.writing.has(key)),
  );
  let recorded = recordWrites(ctx, rendered, catalog, defer, documents[0]?.[1]);
  recorded.catch(() => undefined); // met before the first plugin document is written (writeChangedPlugins)
  // The new names accepted, filed in the look-alike index (look-alike.ts) before the log and any plugin
  // document shows them, side by side with the envelopes: a name published is always filed.
  // Only the names of publishes the batch still accepts: one refused since its judging is never filed.
  // The OCI repositories the accepted versions name anew likewise (oci-repositories.ts).
  const accepted = new Set(
    items.flatMap(({ evaluation: e }) => (e.kind === 'accepted' ? [e.manifest.name] : [])),
  );
  // Each with the owners its document holds before and after the batch (evaluate.ts `fileOwners`): a plugin
  // whose owners the batch changed is filed again, so that the index names no owner it lacks.
  // Written whole (built anew), every owner the index files is this build's: the catalog committed then
  // says they are kept, and the next batch trusts them (`Catalog.namesOwnersKept`). A catalog rebuilt in
  // this batch (outdated) says so too, but the bins the batch read as it judged, before that rebuild, are
  // those it writes back after it, with any owner a build before format 2 left in them: then not kept.
  const filing = view
    .fileOwners(rendered.map((plugin) => plugin.doc))
    .then((refiled) =>
      Promise.all([view.names.save(new Set([...accepted, ...refiled])), view.repositories.save(accepted)]),
    )
    .then(([written]) => {
      if (written === 'whole') catalog.namesOwnersKept = true;
      else if (written === 'bins' && opened.outdated) catalog.namesOwnersKept = false;
    });
  filing.catch(() => undefined); // met below, before the log
  try {
    await Promise.all([filing, writeEnvelopes(ctx, items)]);
    appendToLog(log, items, processed);
    await log.flush();
    await writeActionOrders(ctx, items, view, now);
    await writeMarkers(ctx, items, processed);
  } catch (error) {
    await filing.catch(() => undefined);
    await recorded.catch(() => undefined); // nothing of the batch left running when it throws
    throw actionRecordFailure(items, error);
  }
  ctx.onStep?.('logged');
  // Write steps 5 to 7, once for the whole batch (index documents also when an earlier batch left them
  // pending and this caller does not defer); a snapshot is owed too when the log grew past the published one.
  // Rendered while the plugin documents are written; written after them.
  let generation: number | null = null;
  let toWrite = rendered;
  const awaited = new Set<string>();
  for (let pass = 0; ; pass++) {
    const plugins = await writeChangedPlugins(
      ctx,
      toWrite,
      catalog,
      recorded,
      view,
      items,
      folded,
      interrupted,
    );
    if (pass === 0) ctx.onStep?.('plugin-documents');
    const committing =
      changed.size > 0 || documents.length > 0 || log.unvouched || (!defer && catalog.indexesPending)
        ? commitGeneration(
            { ...ctx, site: writingAfter(ctx.site, plugins.written) },
            catalog,
            changed,
            defer,
            documents,
          )
        : Promise.resolve(null);
    // Both settled, whatever fails: nothing of this batch is still running when it returns or throws. A
    // plugin document's failure first: the commit's writes failed with it, and wrote nothing.
    const [committed, pluginsWritten] = await Promise.allSettled([committing, plugins.written]);
    if (pluginsWritten.status === 'rejected') {
      // Opted in, a publish whose document the store refuses for good is voided, and the rest written again
      // (each document rewritten the same) and committed without it; else the batch fails, as it always did.
      const name = plugins.refused();
      const voiding = { items, folded, log, view, catalog, processed, toWrite, awaited };
      if (name === undefined || !(await voidRefusedPlugin(ctx, name, voiding, pluginsWritten.reason)))
        throw pluginsWritten.reason;
      const next = await withoutVoidedPlugin(ctx, toWrite, name, view, changed, catalog.plugins.has(name));
      toWrite = next.plugins;
      if (next.rendered.length > 0) {
        // Of other bytes than the documents recorded (`recordWrites`), recorded too before they are written:
        // a run that dies after one leaves a document its retry knows for the registry's own. Their compressed
        // variants go whatever their size: the first pass may have written the longer document's.
        for (const plugin of next.rendered) {
          const key = pluginDocumentKey(plugin.doc.name);
          noteWriting(catalog, key, sha256Hex(plugin.body));
          interrupted.add(key);
        }
        recorded = recorded.then(() => saveWriting(ctx.intake, catalog));
      }
      continue;
    }
    if (committed.status === 'rejected') throw revokedWriteFailure(items, folded, committed.reason);
    generation = committed.value;
    break;
  }
  // The files of removed versions, once no document the snapshot binds points at them.
  for (const key of folded.removedFiles) await ctx.site.delete(key);
  ctx.onStep?.('committed');
  // Write step 8: outcomes, then the submissions leave incoming/. Each failure is told as soon as its
  // submission's outcome is recorded, whether or not the step then fails: a record refused (or a move
  // failing) fails the batch with the others recorded beside it, their uploads maybe moved out of incoming/,
  // and their retry never comes. Told only once the batch was done, the operator heard of none of them. A
  // rejection a run before recorded as it is (its outcomes step failing after the record, the upload left in
  // incoming/) was told by that run, and is not told again; told once the step had settled rather than at
  // its record, a run that died within the step (the function's timeout) told it to no one.
  const failures = new Map<string, SubmissionFailure[]>();
  for (const failure of told) failures.set(failure.id, [...(failures.get(failure.id) ?? []), failure]);
  // Those finished from the log (their uploads not at hand) are reported after the batch's own.
  const outcomes = await recordOutcomes(
    ctx,
    [...items.filter((item) => !item.fromLog), ...items.filter((item) => item.fromLog)],
    { url: ctx.config.url, processed, generation, current: generation ?? catalog.generation },
    (item, before) => {
      if (before) return;
      for (const failure of failures.get(item.upload.id) ?? []) context.onSubmissionFailure?.(failure);
    },
  );
  ctx.onStep?.('outcomes');
  // Finished: their log entries need finding no more.
  await log.forget(
    items.map((i) => i.upload.id),
    awaited,
  );
  return {
    outcomes,
    generation,
    changedPlugins: [...changed].sort(),
    invalidate: writeLog.mutableKeys(),
    leftInIncoming,
    indexesPending: catalog.indexesPending,
  };
}

/** What a rebuild does beyond re-rendering and re-signing the documents (a key rotation asks for both). */
export interface RebuildOptions {
  /** Sign every version's manifest again too (`manifest.json.asc` and the documents' `manifest_signature`). */
  readonly resignManifests?: boolean;
  /** The snapshot's `key_rotations` (else the published snapshot's count stands). */
  readonly keyRotations?: number;
}

/**
 * Re-renders every plugin document, page and registry-wide document from the published plugin documents,
 * and re-signs everything (with `resignManifests`, the manifests too). For key rotation
 * (pipeline/rotate.ts), a changed registry URL or name, and recovery. `invalidate` holds every key
 * rewritten that a CDN caches, the re-signed manifest signatures among them (which the write log leaves
 * out: mutable only across a rotation, `rebuildAll` names them to it).
 */
export async function rebuildRegistry(
  context: PipelineContext,
  options: RebuildOptions = {},
): Promise<{
  generation: number;
  plugins: number;
  manifests: number;
  invalidate: readonly string[];
  /** The action markers and plugins' action orders restored from the log (`restoreActionRecords`). */
  restored: RestoredRecords;
}> {
  const { ctx, log } = withWriteLog(context);
  const { generation, plugins, resigned, restored } = await rebuildAll(ctx, options);
  return { generation, plugins, manifests: resigned.length, invalidate: log.mutableKeys(), restored };
}

/**
 * Plugins a rebuild has in hand at once, each read, rendered, signed and written in turn: as many as a batch
 * writes (BATCH_WRITE_CONCURRENCY), as every plugin is rewritten. On S3 it hides four requests' latency per
 * plugin; on the filesystem the writer thread (adapters/fs-writer.ts) takes the puts made while it writes in
 * batches, with the next ones ready when it finishes one: a rebuild of 10,000 plugins took 4.3 s at 128,
 * 5.1 s at 32 (medians of two), where the thread often waited for puts its last answer freed.
 */
const REBUILD_CONCURRENCY = BATCH_WRITE_CONCURRENCY;

/**
 * Whether a key rotation is published that the published snapshot does not count (`keys/rotation/<count +
 * 1>.json`), while this rebuild is not that rotation's own: one that died part way, whose rebuild may have
 * signed some manifests with its next key before it died (each version's `.asc`, and the `manifest_signature`
 * its plugin document carries). A rebuild by the key the snapshot names (the operator put the old key back
 * in the secret, as the publish function's SIGNING_KEY_NOT_PUBLISHED offers, or the old key file) took those
 * documents as they were and committed them: their manifests signed by a key no client trusts yet, refused
 * at every install. It signs every manifest again instead. One `head` a rebuild.
 */
async function rotationUnfinished(
  ctx: PipelineContext,
  published: SnapshotDocument | undefined,
  options: RebuildOptions,
): Promise<boolean> {
  if (!published || options.keyRotations !== undefined) return false;
  return (await ctx.site.head(rotationKey((published.key_rotations ?? 0) + 1))) !== undefined;
}

/**
 * The rebuild, through the caller's write log. Returns the manifest signatures it rewrote. `upgrade`: run by a
 * batch, a flush or a refresh that met the catalog, not by the operator's `plugindex rebuild`: a catalog of
 * another format (`Catalog.upgrading`) then holds every document it takes to what the registry signed
 * (`keptAsSigned`); the operator's takes them as they are, on their word.
 */
async function rebuildAll(
  ctx: PipelineContext,
  options: RebuildOptions = {},
  upgrade = false,
  leaveStuck?: LeaveStuck,
): Promise<{
  generation: number;
  plugins: number;
  resigned: readonly string[];
  restored: RestoredRecords;
}> {
  const [opened, snapshotRead, recorded] = await allSettledValues([
    openCatalog(ctx.intake),
    ctx.site.get(SNAPSHOT_KEY),
    readLogHead(ctx.intake),
  ]);
  const published =
    snapshotRead && (JSON.parse(new TextDecoder().decode(snapshotRead.body)) as SnapshotDocument);
  // Nothing rewritten with a key the published snapshot does not name (a rotation's own rebuild gives its
  // count): a refresh or a flush meeting the mark a rotation's rebuild left when it died finishes that
  // rebuild, and re-signed the registry's documents with the next key before its commit refused it.
  assertSigningKeyCurrent(ctx, published, options.keyRotations);
  const resign = options.resignManifests === true || (await rotationUnfinished(ctx, published, options));
  // What a rebuild is run after, the intake store's `state/` lost (or put back from an older copy), took its
  // records of the log and of the actions applied lately with it: both restored from the published log.
  // Before the catalog is marked: a log this refuses (an entry altered in a segment batches do not read)
  // left it marked, and every batch after it ran this rebuild first and was refused too.
  // The upgrade (run by a batch, a flush or a refresh meeting a catalog of another format, not by the
  // operator's `plugindex rebuild`) holds every document it takes to what the registry signed, before it
  // writes anything (published.ts `SignedDocuments`).
  const signed =
    upgrade && opened.upgrading
      ? await SignedDocuments.read(ctx.site, ctx.signer.publicKey, opened, snapshotRead?.body)
      : undefined;
  const head = await currentLogHead(ctx, recorded, published || undefined);
  // The operator's rebuild or a rotation's, before it changes anything: never signed over a stuck publish.
  if (!upgrade)
    await refuseStuckPublishes(
      ctx,
      published?.log?.length ?? 0,
      head,
      options.keyRotations ? 'rotate-key' : 'rebuild',
    );
  const restored = await restoreActionRecords(ctx, head, ctx.clock.now());
  const catalog = catalogAnew(opened);
  // Before the first document is rewritten: one that dies before its catalog is finished by the next run.
  await markRebuilding(ctx.intake, catalog);
  // Each plugin's folder (listPluginNames). A folder without a document (a plugin's leftovers) reads as
  // none below.
  const found = new Set<string>();
  for await (const name of listPluginNames(ctx.site)) found.add(pluginDocumentKey(name));
  const resigned: string[] = [];
  // Each plugin's OCI repositories and owners, not its document: 100,000 documents are not held to the end.
  const rebuiltRepositories: FiledEntry[] = [];
  const rebuiltOwners: [string, readonly string[]][] = [];
  // The plugins whose documents carry `look_alikes`: each is checked again below, with every look-alike group.
  const flagged = new Set<string>();
  const revoked = await ctx.site.get(REVOKED_KEYS_KEY);
  const keys = signed
    ? await keptAsSigned(ctx, signed, opened, found, revoked?.body, resign, (doc, line) => {
        catalog.plugins.set(doc.name, line);
        rebuiltRepositories.push(...ociRepositoryEntries(doc));
        rebuiltOwners.push([doc.name, doc.owners]);
        if (doc.look_alikes) flagged.add(doc.name);
      })
    : [...found];
  await forEachLimited(keys, REBUILD_CONCURRENCY, async (key) => {
    const read = await ctx.site.get(key);
    signed?.check(key, read?.body); // read again: held again
    if (!read) return;
    let doc = JSON.parse(new TextDecoder().decode(read.body)) as PluginDocument;
    if (resign) {
      const signed = await resignManifests(ctx, doc);
      doc = signed.doc;
      resigned.push(...signed.rewritten);
      // Told to the caller's write log, whichever caller: a rebuild a publish, flush or refresh runs (the
      // catalog outdated, as a rotation's rebuild that died leaves it) returns only that log's keys, and the
      // signatures it rewrote stayed cached at the CDN by the key it replaced.
      if (ctx.site instanceof WriteLog) ctx.site.rewrote(signed.rewritten);
    }
    // A document a run that died was about to write may have a grown one's variants beside it.
    const previous = opened.writing.has(key) ? 'interrupted' : read.body.byteLength;
    catalog.plugins.set(doc.name, await writePluginDocument(ctx, doc, previous).catch(unrenderable(key)));
    rebuiltRepositories.push(...ociRepositoryEntries(doc));
    rebuiltOwners.push([doc.name, doc.owners]);
    if (doc.look_alikes) flagged.add(doc.name);
  });
  await rebuildLookAlikes(ctx, catalog, rebuiltOwners, flagged);
  // The look-alike index anew, from the plugins rebuilt (look-alike.ts): every name, before the commit; the
  // OCI repository index too (oci-repositories.ts), from the documents as rebuilt.
  await Promise.all([
    writeLookAlikeIndex(ctx.intake, rebuiltOwners),
    writeOciRepositoryIndex(ctx.intake, rebuiltRepositories),
  ]);
  // Every owner it files is its document's: the catalog committed says so (`Catalog.namesOwnersKept`).
  catalog.namesOwnersKept = true;
  // An upgrade (a batch's, a refresh's or a flush's) counts no stuck entry (`leaveStuck`), held to the bins
  // rendered anew.
  const snapshot = {
    ...(options.keyRotations === undefined ? {} : { keyRotations: options.keyRotations }),
    ...(leaveStuck ? { leaveStuck: { ...leaveStuck, rebuilt: true } } : {}),
  };
  // Signed anew like every document (after a key rotation, by the new key).
  const generation = await commitGeneration(
    ctx,
    catalog,
    undefined,
    false,
    revoked ? [[REVOKED_KEYS_KEY, revoked.body]] : [],
    snapshot,
  );
  return { generation, plugins: catalog.plugins.size, resigned: resigned.sort(), restored };
}

/**
 * Every plugin document's `look_alikes` made true to the registry as rebuilt (look-alike.ts
 * `lookAlikesWithin`), after every document is written: the names grouped by skeleton from what the rebuild
 * took (`rebuilt`, no document held), and only the documents of a group of two or more, or of a plugin whose
 * document carries the field (`flagged`), read again and rewritten where the field changes. A registry made
 * before the field (its grandfathered pairs flagged by search alone) has it set by its first rebuild or
 * catalog upgrade; at 100,000 plugins a group is a few names, and few names are in one.
 */
async function rebuildLookAlikes(
  ctx: PipelineContext,
  catalog: Catalog,
  rebuilt: readonly (readonly [string, readonly string[]])[],
  flagged: ReadonlySet<string>,
): Promise<void> {
  const groups = new Map<string, string[]>();
  for (const [name] of rebuilt) {
    const group = groups.get(nameSkeleton(name));
    if (group) group.push(name);
    else groups.set(nameSkeleton(name), [name]);
  }
  const read = [...groups.values()].filter((g) => g.length > 1 || flagged.has(g[0] as string));
  await forEachLimited(read, REBUILD_CONCURRENCY, async (names) => {
    const docs: PluginDocument[] = [];
    const sizes = new Map<string, number>();
    for (const name of names) {
      const object = await ctx.site.get(pluginDocumentKey(name));
      if (!object) continue;
      sizes.set(name, object.body.byteLength);
      docs.push(JSON.parse(new TextDecoder().decode(object.body)) as PluginDocument);
    }
    for (const doc of lookAlikesWithin(docs))
      catalog.plugins.set(
        doc.name,
        await writePluginDocument(ctx, doc, sizes.get(doc.name)).catch(
          unrenderable(pluginDocumentKey(doc.name)),
        ),
      );
  });
}

/**
 * The upgrade's first pass over the plugin documents (each plugin's folder, `found`, and each the snapshot
 * signs), each read once and held to what the registry signed (`signed`), `keys/revoked.json` too, before
 * anything is written: one refused fails the upgrade with nothing published changed. A document whose
 * rendering is the bytes published keeps them, and its signature and page (an upgrade changes the
 * catalog's lines, not the documents): only its line, from its document (`kept`, with the document for its
 * owners and OCI repositories, dropped once those are taken). The rest (`rewrite`: a document a release
 * renders otherwise, one a run that died was writing, every one whose manifests are signed again) the
 * rebuild reads again and writes; so an upgrade reads each document once, as a rebuild always did.
 * @throws TrustError PUBLISHED_DOCUMENT_ALTERED, the first by key, once every document was read.
 */
async function keptAsSigned(
  ctx: PipelineContext,
  signed: SignedDocuments,
  opened: Catalog,
  found: ReadonlySet<string>,
  revoked: Uint8Array | undefined,
  resign: boolean,
  keep: (doc: PluginDocument, line: CatalogLine) => void,
): Promise<string[]> {
  const keys = new Set(found);
  for (const key of signed.keys()) if (key !== REVOKED_KEYS_KEY) keys.add(key);
  const rewrite: string[] = [];
  const altered: [string, TrustError][] = [];
  await forEachLimited([...keys], REBUILD_CONCURRENCY, async (key) => {
    const read = await ctx.site.get(key);
    let sha256: string | undefined;
    try {
      sha256 = signed.check(key, read?.body);
    } catch (error) {
      if (!isAltered(error)) throw error;
      altered.push([key, error]);
      return;
    }
    if (!read || sha256 === undefined) return;
    const doc = JSON.parse(new TextDecoder().decode(read.body)) as PluginDocument;
    if (resign || opened.writing.has(key) || !Buffer.from(encodeJson(doc)).equals(read.body)) {
      rewrite.push(key);
      return;
    }
    try {
      keep(doc, catalogLineOf(doc, { sha256, size: read.body.byteLength }, ctx.config.url));
    } catch (error) {
      unrenderable(key)(error);
    }
  });
  // The first by key, whatever order the reads finished in: the same refusal every time it is run.
  const first = altered.sort(([a], [b]) => (a < b ? -1 : 1))[0];
  if (first) throw first[1];
  signed.check(REVOKED_KEYS_KEY, revoked);
  return rewrite;
}

/**
 * A rebuild's failure to render the published document at `key` as it is (RenderError: text a release before
 * text was checked let by), as PUBLISHED_DOCUMENT_UNRENDERABLE naming that document and what to do, the
 * render's error its cause: the RenderError alone named no plugin, and a rebuild is what the operator runs to
 * take a document put right (`loggedBehind`'s advice). Anything else is thrown as it is.
 */
const unrenderable =
  (key: string) =>
  (error: unknown): never => {
    if (!(error instanceof RenderError)) throw error;
    throw new PlugindexError(
      'PUBLISHED_DOCUMENT_UNRENDERABLE',
      `${key} as published cannot be rendered (${error.name} ${error.code}: ${error.message}): a rebuild takes the published documents as they are, so nothing is committed; put that document right, then run the rebuild again`,
      { cause: error },
    );
  };

/**
 * The catalog as opened (`catalog`), or, when it is of another format (written before an upgrade), rebuilt
 * from the published plugin documents and opened again: rendered from as it is, it would read as empty, and
 * the next index documents would list only the plugins a publish changed.
 * The rebuild commits a snapshot before the batch reaches its entries, so it counts no stuck entry
 * (`LeaveStuck`, as a refresh's upgrade): counted, a batch whose store refused the stuck document again
 * failed leaving a snapshot that vouched for a publish no document shows (verify --url: LOG_DISAGREES), and
 * a batch opted in to voids could void it no more (LOG_VOID_OF_SEEN).
 */
async function currentCatalog(ctx: PipelineContext, catalog: Catalog): Promise<Catalog> {
  if (!catalog.outdated) return catalog;
  // Nothing to tell: the batch goes on to that entry, and publishes or voids it (its own commit counting the
  // log), or fails naming it (LOGGED_PUBLISH_FAILED).
  await rebuildAll(ctx, {}, true, { by: 'the catalog upgrade of the batch', told: () => undefined });
  return openCatalog(ctx.intake);
}

/** How `refreshSnapshot` re-signs a snapshot without the registry's config (`asPublished`). */
export interface AsPublishedOptions {
  /** The longest lifetime to sign it for, in seconds; else the one the published snapshot had. */
  readonly maxTtlSeconds?: number;
}

/**
 * Re-signs the snapshot with a fresh expiry and the next generation, changing nothing else: a quiet
 * registry stays valid for clients (the AWS deployment runs this on a schedule).
 *
 * `asPublished`: for a registry whose config cannot be read (not JSON, or refused at any field), so the
 * context's config is none of the operator's and is not read. Only the published snapshot is signed again,
 * naming the registry it names, for the lifetime it had (its `expires` less its `created`), at most
 * `maxTtlSeconds`: the last lifetime a good config gave, never one longer. What would need the config
 * (nothing published yet, index documents pending, a catalog of another format to rebuild from: each renders
 * documents with the registry's name and URL) is refused instead, REFRESH_NEEDS_CONFIG, nothing written.
 *
 * A publish logged past the head the published snapshot counts that no document it binds shows (a batch
 * failed LOGGED_PUBLISH_FAILED: stuck-entries.ts) is not counted: the snapshot counts that head as the
 * published one did, and `stuck` says which entry and what to do. Refused, as a rebuild is, the snapshot
 * would expire; counted, the entry could never be voided (clients: LOG_VOID_OF_SEEN).
 * @throws PlugindexError REFRESH_NEEDS_CONFIG (asPublished only)
 */
export async function refreshSnapshot(
  context: PipelineContext,
  options: { readonly asPublished?: AsPublishedOptions } = {},
): Promise<{ generation: number; invalidate: readonly string[]; stuck?: StuckEntryNotice }> {
  const { ctx, log } = withWriteLog(context);
  let stuck: StuckEntryNotice | undefined;
  const leaveStuck: LeaveStuck = { by: 'plugindex refresh', told: (notice) => (stuck = notice) };
  const { asPublished } = options;
  const catalog = await openCatalog(ctx.intake);
  const needsConfig = (what: string) =>
    new PlugindexError(
      'REFRESH_NEEDS_CONFIG',
      `the snapshot cannot be re-signed as published without the registry's config: ${what}`,
    );
  if (asPublished && catalog.outdated) throw needsConfig('the catalog is of another format, to rebuild');
  const refresh = async () => {
    const read = await ctx.site.get(SNAPSHOT_KEY);
    if (asPublished && !read) throw needsConfig('nothing is published yet');
    if (asPublished && catalog.indexesPending) throw needsConfig('index documents are pending');
    // Nothing published yet: everything. Index documents pending: the re-signed snapshot might be the last
    // for hours, so bring them up to date first.
    if (!read || catalog.indexesPending)
      return commitGeneration(ctx, catalog, read ? new Set() : undefined, false, [], { leaveStuck });
    // Its list is signed again as it is: only the snapshot the catalog records this registry committed.
    const previous = checkedSnapshot(catalog, read.body) as SnapshotDocument;
    const next = Math.max(catalog.generation, previous.generation) + 1;
    const signing = asPublished ? asPublishedContext(ctx, previous, asPublished) : ctx;
    // Only over the snapshot read: one committed since lists documents this copy of its list would unbind.
    const written = await writeSnapshot(
      signing,
      next,
      { ...previous.documents },
      {
        ifMatch: read.etag,
        published: previous,
        before: recordingSnapshot(ctx, catalog, next, read.body),
        leaveStuck,
      },
    );
    catalog.generation = next;
    catalog.snapshot = written;
    await saveCatalog(ctx.intake, catalog, new Set(), 'bins', settledBy(catalog));
    return next;
  };
  // A catalog met of another format while at it is rebuilt from, as a catalog opened so is: not without
  // the config (CATALOG_OUTDATED thrown as it is).
  const generation = asPublished
    ? await refresh()
    : await rebuiltIfOutdated(ctx, catalog, refresh, leaveStuck);
  return { generation, invalidate: log.mutableKeys(), ...(stuck ? { stuck } : {}) };
}

/**
 * The context a snapshot is signed again with as published (`refreshSnapshot`'s `asPublished`): the two
 * things `writeSnapshot` takes of the config, from the published snapshot instead (its registry, its
 * lifetime at most `maxTtlSeconds`), so nothing of a config that cannot be read is signed.
 */
function asPublishedContext(
  ctx: PipelineContext,
  previous: SnapshotDocument,
  options: AsPublishedOptions,
): PipelineContext {
  const had = Math.floor((Date.parse(previous.expires) - Date.parse(previous.created)) / 1000);
  if (!Number.isSafeInteger(had) || had <= 0)
    throw new PlugindexError(
      'REFRESH_NEEDS_CONFIG',
      `the snapshot cannot be re-signed as published without the registry's config: the published one gives no lifetime (created ${previous.created}, expires ${previous.expires})`,
    );
  const ttl = options.maxTtlSeconds === undefined ? had : Math.min(had, options.maxTtlSeconds);
  return { ...ctx, config: { ...ctx.config, url: previous.registry, snapshotTtlSeconds: ttl } };
}

/**
 * `run` over `catalog`, or a rebuild from the plugin documents instead when the catalog is of another format
 * (its meta file, or a bin that `run` reads: catalog.ts `readBins`). Returns the generation committed.
 */
async function rebuiltIfOutdated<T>(
  ctx: PipelineContext,
  catalog: Catalog,
  run: () => Promise<T>,
  leaveStuck: LeaveStuck,
): Promise<T | number> {
  if (catalog.outdated)
    return (
      (await upgradeWaiting(ctx, catalog, leaveStuck)) ??
      (await rebuildAll(ctx, {}, true, leaveStuck)).generation
    );
  try {
    return await run();
  } catch (error) {
    if (!(error instanceof PlugindexError && error.code === 'CATALOG_OUTDATED')) throw error;
    return (await rebuildAll(ctx, {}, true, leaveStuck)).generation;
  }
}

/**
 * While an entry is stuck past the head the published snapshot counts (stuck-entries.ts `findStuckEntry`, held
 * to the documents served: one the upgrade's rebuild would leave uncounted), a refresh's or a flush's upgrade
 * of a catalog of another format waits: the published snapshot is signed again as it is (its documents, the
 * head it counts), the catalog left for the next batch to upgrade, and `leave` told of the entry. Returns that generation, or
 * undefined to upgrade now (nothing stuck, nothing published, a rebuild marked under way: its documents may
 * be rewritten already). The upgrade binds the documents served, and a failed batch may have written one
 * showing an entry logged after the stuck one, which a snapshot not counting the stuck entry cannot count:
 * bound, `verify --url` refused it LOG_VERSION_UNLOGGED until a batch settled the entry. The snapshot is held
 * to what the registry signed first (`SignedDocuments`, as the upgrade holds it), so none planted is signed.
 */
async function upgradeWaiting(
  ctx: PipelineContext,
  catalog: Catalog,
  leave: LeaveStuck,
): Promise<number | undefined> {
  if (!catalog.upgrading) return undefined;
  const [read, recorded] = await allSettledValues([ctx.site.get(SNAPSHOT_KEY), readLogHead(ctx.intake)]);
  if (!read) return undefined;
  const published = JSON.parse(new TextDecoder().decode(read.body)) as SnapshotDocument;
  const logged = await currentLogHead(ctx, recorded, published);
  // Nothing past the head counted (nearly always): no more read than that. Held to the documents served, as
  // the upgrade's rebuild holds them (`LeaveStuck.rebuilt`): it waits only where it would leave an entry
  // uncounted. Held to the bins as published, it waited after a batch that died with its documents written
  // too, which it counts, re-signing a snapshot that no longer bound them (verify --url refused it).
  if (!(await findStuckEntry(ctx, published.log?.length ?? 0, logged))) return undefined;
  await SignedDocuments.read(ctx.site, ctx.signer.publicKey, catalog, read.body);
  // Past every snapshot signed while waiting, not only the one read (one of them put back).
  const next = Math.max(recordedGeneration(catalog), published.generation) + 1;
  await writeSnapshot(
    ctx,
    next,
    { ...published.documents },
    {
      ifMatch: read.etag,
      published,
      before: recordingSnapshot(ctx, catalog, next, read.body),
      leaveStuck: { ...leave, upgradeHeld: true },
    },
  );
  return next;
}

/**
 * Renders the index documents a deferred publish left pending (index.json, index.yaml, search.json,
 * falcoctl/index.yaml), and a snapshot that lists them; does nothing when none are pending. The one step
 * whose cost grows with the registry, so callers run it once a burst of publishes is over. A stuck publish
 * (stuck-entries.ts) is not counted, as by `refreshSnapshot`, and `stuck` names it.
 * @example const { generation } = await flushIndexes(ctx); // null: nothing was pending
 */
export async function flushIndexes(
  context: PipelineContext,
): Promise<{ generation: number | null; invalidate: readonly string[]; stuck?: StuckEntryNotice }> {
  const { ctx, log } = withWriteLog(context);
  let stuck: StuckEntryNotice | undefined;
  const leaveStuck: LeaveStuck = {
    by: 'the flush of the index documents',
    told: (notice) => (stuck = notice),
  };
  const catalog = await openCatalog(ctx.intake);
  // A run that died writing plugin documents may have left a grown one's variants beside the one still
  // published; the catalog's `writing` lines name those documents, and no others are looked at. (A rebuild,
  // for an outdated catalog, rewrites them with every plugin's.)
  if (!catalog.outdated)
    await cleanInterruptedVariants(ctx, [...catalog.writing.keys()].filter(isPluginDocumentKey));
  if (!catalog.outdated && !catalog.indexesPending)
    return { generation: null, invalidate: log.mutableKeys() };
  const generation = await rebuiltIfOutdated(
    ctx,
    catalog,
    () => commitGeneration(ctx, catalog, new Set(), false, [], { leaveStuck }),
    leaveStuck,
  );
  return { generation, invalidate: log.mutableKeys(), ...(stuck ? { stuck } : {}) };
}
