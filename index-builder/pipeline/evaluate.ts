/**
 * Judging each submission of a batch, before anything is written: a safe archive, a valid manifest, the
 * files it names and no others, a publisher signature by a key valid at the time of publishing (and not
 * revoked), the publisher's right to the name, an unchanged version (never a removed one), and artifacts
 * that match their digests. Every problem is reported at once. An action is judged by pipeline/actions.ts.
 * A batch decides exactly as one submission per batch would (BatchView).
 */

import type { ActionKind } from '../action-kinds.ts';
import { isJsonSubmission, type ReadAction } from '../actions.ts';
import type { BundleContents } from '../bundle.ts';
import { sha256Hex } from '../digest.ts';
import { type Problem, problem, StoreError } from '../errors.ts';
import {
  actionOrderKey,
  isPluginDocumentKey,
  manifestKey,
  PLUGINS_PREFIX,
  pluginDocumentKey,
  REVOKED_KEYS_KEY,
  signatureKey,
  statusKey,
  versionIdentity,
} from '../layout.ts';
import {
  type ActionOrder,
  type ActionSlot,
  EMPTY_REVOKED_KEYS,
  loggedOrders,
  mergedOrder,
  type NamedKey,
  parseActionOrder,
  parseRevokedKeys,
  revocationOf,
  type SlotRecord,
  withSlotRecord,
} from '../lifecycle.ts';
import { allSettledValues, readOnce } from '../limited.ts';
import { type LogEntry, NO_EFFECT } from '../log.ts';
import { type LookAlike, LookAlikeIndex, lookAlikeProblem } from '../look-alike.ts';
import type { Manifest, PluginDocument, RevokedKeysDocument, VersionRecord } from '../model.ts';
import {
  documentOciRepositories,
  manifestOciRepositories,
  OciRepositoryIndex,
  ociRepositoryProblem,
  type RepositoryHolder,
} from '../oci-repositories.ts';
import { versionRecordOf } from '../records.ts';
import { ROTATION_PREFIX, readSignedRotation } from '../rotation.ts';
import { readPublicKey, verifyDetachedSignature } from '../signing.ts';
import type { Store } from '../store.ts';
import { authorizePublisher, loadTrustedKeys, type TrustedKeys } from '../trust.ts';
import { evaluateAction, finishFromLog } from './actions.ts';
import type { PipelineContext } from './context.ts';
import { type Inspection, type InspectionBasis, inspectBundle, threw } from './inspect.ts';
import type { Upload } from './intake.ts';
import type { LogWriter } from './log-writer.ts';
import { mergePluginDocument } from './plugin-document.ts';
import { isAltered, type PublishedRecords, type Verdict } from './published.ts';
import { writtenVersionRecord } from './site-writer.ts';

/** One accepted submission, ready to be written. */
export interface Accepted {
  readonly kind: 'accepted';
  readonly manifest: Manifest;
  /** The bundle's files; `RELEASED_CONTENTS` once its version is written (`released`). */
  readonly contents: BundleContents;
  readonly publisher: string;
  /** SHA-256 of the manifest bytes the publisher signed: a version's identity across batches. */
  readonly sourceSha256: string;
  /**
   * Its publish is in the log already (that entry's `seq`): a run that died logged it before any document
   * showed it (`markLogged`). What is logged stands: it is published whatever else the batch refuses, never
   * refused for its plugin's size (index.ts `refusedForSize`), as an action a run that died logged is not.
   */
  readonly logged?: { readonly seq: number };
  /**
   * Its version's files were written by a run that died, its upload not at hand: the record read back from
   * them (`finishPublishFromLog`), nothing written again.
   */
  readonly written?: VersionRecord;
}

/** What an accepted submission holds of its bundle once its version's files are written: nothing. */
export const RELEASED_CONTENTS: BundleContents = Object.freeze({
  manifestName: '',
  manifest: new Uint8Array(0),
  files: new Map<string, Uint8Array>(),
});

/**
 * An accepted submission without its bundle's files, once they are written: nothing reads them after, and
 * an import of 10,000 bundles held every one (each a buffer of its own) until the batch ended.
 */
export function released(accepted: Accepted): Accepted {
  return { ...accepted, contents: RELEASED_CONTENTS };
}

/** What an outcome says of an action: its kind, what it is about, who signed it. */
export interface ActionInfo {
  readonly kind: ActionKind;
  readonly plugin?: string;
  readonly version?: string;
  /** For a revoke-key: the fingerprint of the key it revokes. */
  readonly fingerprint?: string;
  readonly signer?: string;
}

/** One accepted action (index-builder/actions.ts), ready to be applied (pipeline/actions.ts). */
export interface AcceptedAction {
  readonly kind: 'action-accepted';
  readonly read: ReadAction;
  readonly signer: string;
  /**
   * The version the action names, as published (the record's: `yank p@1.0.0+B` of a version published as
   * `1.0.0+b` names that one), so the log, the marker and the outcome say which version it was.
   */
  readonly version?: string;
  /** The key the action names (`owners-add`, `transfer`). */
  readonly key?: NamedKey;
  /**
   * Accepted by a run that died before it recorded the outcome: its log entry is written already (seq,
   * time), and its effects are applied again, idempotently; `finished` when they all were (its outcome was
   * recorded), so nothing is applied again.
   */
  readonly resumed?: {
    readonly seq: number;
    readonly time: string;
    readonly finished?: boolean;
    /** Where the run that died left its record: the marker, or only the log entry (no marker yet). */
    readonly from: 'marker' | 'log';
    /**
     * An action made after it was applied to its slot since the run died (another run, while this upload
     * waited for its retry): its effect is not put back over that newer statement, which it would undo.
     */
    readonly overtaken?: true;
    /**
     * Overtaken: the plugin's log entries from its own on, under which it is put back where the log has it
     * (lifecycle.ts `withOvertakenRestored`), as the dead run's documents would have shown it.
     */
    readonly underneath?: readonly LogEntry[];
    /**
     * A deprecate or undeprecate: the versions (`versionIdentity`) listed when its entry was appended, the
     * only ones its range marks again (lifecycle.ts `listedWhenLogged`), not those published since.
     */
    readonly listed?: ReadonlySet<string>;
  };
}

export interface Rejected {
  readonly kind: 'rejected';
  readonly problems: readonly Problem[];
  readonly manifest?: Manifest;
  readonly publisher?: string;
  readonly action?: ActionInfo;
  /**
   * An action refused only because the plugin already is as it says (ACTION_NO_EFFECT, or a withdrawal of an
   * advisory it does not have): still the newest statement about its slot, so an older action on it, met
   * later, is refused (ACTION_SUPERSEDED) and the state it found stays. Recorded with the order, and logged
   * (its entry's `detail.effect` is `none`, its envelope published): a rebuild restores the order from the
   * log, and a slot only the intake store knew was lost with its `state/`.
   */
  readonly ordered?: OrderedRefusal;
  /**
   * An action refused ACTION_SUPERSEDED by actions of this batch alone (none the registry applied before the
   * batch supersedes it): their digests. Should the batch refuse them all since, none of them ever stood,
   * and neither does the refusal (pipeline/index.ts `unorderAfterRefused`).
   */
  readonly supersededIn?: { readonly plugin: string; readonly digests: readonly string[] };
  /**
   * A publish refused for plugins no document showed before the batch, made by earlier submissions of it
   * (PUBLISHER_NOT_OWNER, NAME_TOO_SIMILAR, OCI_REPOSITORY_CLAIMED): each such problem and the plugins it
   * stands on. Should the batch then publish none of them, the problem names plugins that never were
   * (pipeline/index.ts `unpublishedJudged`).
   */
  readonly judgedOnBatch?: readonly JudgedOnBatch[];
}

/** A refusal of a publish that stands on `plugins`, made by earlier submissions of its batch alone. */
export interface JudgedOnBatch {
  readonly problem: Problem;
  readonly plugins: readonly string[];
}

/** An action refused as changing nothing that still stands for its slot (`Rejected.ordered`). */
export interface OrderedRefusal {
  readonly plugin: string;
  readonly slot: ActionSlot;
  readonly record: SlotRecord;
  /** What its log entry records: the action, its signer, the key it names, its version as published. */
  readonly read: ReadAction;
  readonly signer: string;
  readonly key?: NamedKey;
  readonly version?: string;
}

/** A bundle whose version is published already with these manifest bytes: nothing to write. */
export interface AlreadyPublished {
  readonly kind: 'already-published';
  readonly manifest: Manifest;
  readonly publisher: string;
  readonly sourceSha256: string;
  /**
   * Published by this very upload, in a run that died before it recorded the outcome (`publishedBy`): its
   * log entry. Its outcome is then that acceptance, not a second upload's "already published".
   */
  readonly resumed?: { readonly seq: number };
}

export type Evaluation = Accepted | AlreadyPublished | AcceptedAction | Rejected;

/** One submission of a batch and what became of it so far (a write can still turn it into a rejection). */
export interface BatchItem {
  readonly upload: Upload;
  evaluation: Evaluation;
  /** Its entry in the log, once appended (or found appended by a run that died). */
  seq?: number;
  /**
   * A publish or an action a run that died logged for an upload not at hand, finished from what it published
   * before its entry: an action's envelope under `log/actions/` (`finishFromLog`, pipeline/actions.ts), a
   * version's files (`finishPublishFromLog`). `upload` is that envelope or manifest, its id the upload's; its
   * outcome is recorded, and nothing is moved out of `incoming/`.
   */
  readonly fromLog?: true;
}

/** A rejection, naming the manifest and publisher (or the action) when they are known. */
export function rejected(
  problems: readonly Problem[],
  known: {
    readonly manifest?: Manifest | undefined;
    readonly publisher?: string | undefined;
    readonly action?: ActionInfo | undefined;
  } = {},
): Rejected {
  return {
    kind: 'rejected',
    problems,
    ...(known.manifest ? { manifest: known.manifest } : {}),
    ...(known.publisher ? { publisher: known.publisher } : {}),
    ...(known.action ? { action: known.action } : {}),
  };
}

/**
 * What becomes of an accepted submission whose files or documents could not be written or rendered: a
 * rejection naming what the registry failed, unless the store was only unavailable (StoreError STORE_IO),
 * which fails the batch so the queue retries it (the upload stays in incoming/). The error itself goes to the
 * operator (`onSubmissionFailure`), not into the outcome the publisher reads.
 */
export function failedWrite(
  ctx: PipelineContext,
  upload: Upload,
  error: unknown,
  accepted: Accepted,
  what: string,
): Rejected {
  if (error instanceof StoreError && !error.permanent) throw error;
  return rejected([writeFailedProblem(ctx, upload, error, what, 'bundle:')], accepted);
}

/**
 * SUBMISSION_WRITE_FAILED for `upload` (a bundle, `bundle:`, or an action, `envelope:`), in stable terms: what
 * the registry failed and what to do. The error's own message (a store's: the bucket, the absolute path it
 * wrote; an SDK's) is the operator's: it goes to `onSubmissionFailure`, under the submission's id.
 */
export function writeFailedProblem(
  ctx: PipelineContext,
  upload: Upload,
  error: unknown,
  what: string,
  path: 'bundle:' | 'envelope:',
): Problem {
  ctx.onSubmissionFailure?.({
    submission: upload.key,
    id: upload.id,
    code: 'SUBMISSION_WRITE_FAILED',
    error,
  });
  return problem(
    'SUBMISSION_WRITE_FAILED',
    path,
    `the registry failed ${what}; its operator's log has the details, under this submission's id`,
    {
      expected: `${path === 'bundle:' ? 'a submission' : 'an action'} every store can publish (please report this to the registry operator, naming this submission's id)`,
    },
  );
}

/**
 * Per-batch view of plugin documents: what is published, and each document as this batch has changed it so
 * far (versions accepted, actions applied), so a batch decides exactly as one submission per batch would:
 * the same version twice, a name's owner, an action after a publish of the same plugin, two actions on one
 * plugin, are judged against earlier submissions of the batch as against published ones. Versions accepted
 * in the batch are held as provisional records (their files are not written yet), enough to judge by.
 */
export class BatchView {
  /** Each published document read, or being read (the read-ahead and the judging may ask at once). */
  readonly #published = new Map<string, Promise<PluginDocument | undefined>>();
  /** What each published document read is to the catalog (published.ts). */
  readonly #verdicts = new Map<string, Verdict>();
  /** The size of each published document read, for the compressed variants it may have (encoded.ts). */
  readonly #sizes = new Map<string, number>();
  readonly #current = new Map<string, PluginDocument>();
  #listed: string[] | undefined;
  #revokedPublished: RevokedKeysDocument | undefined;
  #revoked: RevokedKeysDocument | undefined;
  /** Digests of the actions accepted in this batch: the same one again is a replay. */
  readonly applied = new Set<string>();
  /** Each plugin's action order as recorded (`state/action-order/`), read once per batch. */
  readonly #recordedOrder = new Map<string, Promise<ActionOrder>>();
  /** Each plugin's action order as the published log's entries from `#loggedSince` on set it. */
  #logged = new Map<string, ActionOrder>();
  /** The actions the same entries log as applied (not as changing nothing), by kind and digest. */
  #loggedApplied = new Set<string>();
  #loggedSince = Number.POSITIVE_INFINITY;
  /** The log those entries were read from (`takeLoggedOrders`): which of the recorded slots it voids. */
  #log: LogWriter | undefined;
  /** Each plugin's action order as this batch has changed it so far. */
  readonly #order = new Map<string, ActionOrder>();

  /** The look-alike name index (look-alike.ts): what a new name is judged against, and where it is filed. */
  readonly names: LookAlikeIndex;
  /** The OCI repository index (oci-repositories.ts): which plugins hold a repository, and where one is filed. */
  readonly repositories: OciRepositoryIndex;
  /** The new names this batch filed (`fileAccepted`), whose owners `fileOwners` files. */
  readonly #addedNames = new Set<string>();
  /** The OCI repositories each plugin's versions accepted in this batch name, by plugin. */
  readonly #claimed = new Map<string, Set<string>>();

  /**
   * `records`: what each document read back is checked against before it is used (published.ts).
   * `ownersKept`: whether the owners the look-alike index files are kept to the documents (catalog.ts
   * `Catalog.namesOwnersKept`); when not, a build before format 2 may have changed owners since they were
   * filed, and `lookAlikes` trusts none.
   */
  constructor(
    private readonly site: Store,
    private readonly intake: Store,
    private readonly records: PublishedRecords,
    private readonly ownersKept: Promise<boolean> = Promise.resolve(false),
  ) {
    this.names = new LookAlikeIndex(intake, site);
    this.repositories = new OciRepositoryIndex(intake, site);
  }

  /**
   * The plugins but `name` that hold `repository` (oci-repositories.ts), with their owners as this batch
   * stands: one filed whose document names it in no version left (or has no document) holds nothing.
   */
  async repositoryHolders(repository: string, name: string): Promise<RepositoryHolder[]> {
    const holders: RepositoryHolder[] = [];
    for (const other of await this.repositories.filed(repository)) {
      if (other === name) continue;
      const doc = await this.current(other);
      if (doc && this.repositoriesOf(doc).has(repository)) holders.push({ name: other, owners: doc.owners });
    }
    return holders;
  }

  /**
   * The OCI repositories `doc`'s versions name, with those its versions accepted in this batch name: their
   * records in it are provisional, without artifacts until written.
   */
  repositoriesOf(doc: PluginDocument): Set<string> {
    const named = documentOciRepositories(doc);
    for (const repository of this.#claimed.get(doc.name) ?? []) named.add(repository);
    return named;
  }

  /**
   * Files in the indexes what an accepted version of `manifest` adds: its name when new (look-alike.ts), each
   * OCI repository its plugin did not name yet (oci-repositories.ts). `existing`: its document before it.
   */
  fileAccepted(manifest: Manifest, existing: PluginDocument | undefined): void {
    if (!existing) {
      this.names.add(manifest.name);
      this.#addedNames.add(manifest.name);
    }
    const named = existing ? this.repositoriesOf(existing) : new Set<string>();
    const claimed = this.#claimed.get(manifest.name) ?? new Set<string>();
    for (const repository of manifestOciRepositories(manifest).keys()) {
      claimed.add(repository);
      if (!named.has(repository)) this.repositories.add(repository, manifest.name);
    }
    if (claimed.size > 0) this.#claimed.set(manifest.name, claimed);
  }

  /**
   * The plugins that `name`, a name no plugin has yet, reads as (look-alike.ts) and `publisher` does not
   * own, with their owners as this batch stands: a name filed in the index with no document (its run died
   * before it, or its version was refused after its judging) is none. One the index files `publisher` as
   * an owner of is owned (`FiledName.owners`: never an owner its document lacks), its document not read (at
   * 100,000 plugins that read was most of a warm publish's time past its goal), unless this batch changed it,
   * or the catalog does not say the owners filed are kept (`ownersKept`: a build before them ran since).
   */
  async lookAlikes(name: string, publisher: string): Promise<LookAlike[]> {
    const alike: LookAlike[] = [];
    for (const other of await this.names.filedAlike(name)) {
      if (!this.#current.has(other.name) && other.owners.includes(publisher) && (await this.ownersKept))
        continue;
      const doc = await this.current(other.name);
      if (doc && !doc.owners.includes(publisher)) alike.push({ name: other.name, owners: doc.owners });
    }
    return alike;
  }

  /**
   * Files in the look-alike index the owners of each of `docs` (the documents the batch writes) that its
   * index line is to hold: a name new in this batch its owners, a plugin whose owners the batch changed
   * those its published document holds too, so that whether or not the batch's writes reach its document
   * the index never names an owner it lacks (a crash after the filing, before the log, leaves the document
   * as it was). Returns the plugins filed again, whose bins `names.save` is then to write.
   */
  async fileOwners(docs: Iterable<PluginDocument>): Promise<string[]> {
    const refiled: string[] = [];
    for (const doc of docs) {
      const before = await this.published(doc.name);
      if (!before) {
        if (this.#addedNames.has(doc.name)) this.names.add(doc.name, doc.owners);
        continue;
      }
      const same =
        before.owners.length === doc.owners.length && before.owners.every((o) => doc.owners.includes(o));
      if (same) continue;
      this.names.add(
        doc.name,
        before.owners.filter((o) => doc.owners.includes(o)),
      );
      refiled.push(doc.name);
    }
    return refiled;
  }

  /**
   * The published document of `name`, read once per batch, checked against what the catalog records.
   * @throws TrustError PUBLISHED_DOCUMENT_ALTERED (published.ts): the batch fails.
   */
  published(name: string): Promise<PluginDocument | undefined> {
    // A failed read is not kept: the next ask reads again (and meets the failure where it is judged).
    return readOnce(this.#published, name, () => this.#read(name));
  }

  async #read(name: string): Promise<PluginDocument | undefined> {
    const key = pluginDocumentKey(name);
    const object = await this.site.get(key);
    this.#verdicts.set(name, await this.records.pluginDocument(key, name, object?.body));
    if (object) this.#sizes.set(name, object.body.byteLength);
    return object ? (JSON.parse(new TextDecoder().decode(object.body)) as PluginDocument) : undefined;
  }

  /**
   * Whether `name`'s published document, read in this batch, is ahead of the catalog: a run that died after
   * writing it (or, trusted on first use, one the catalog has no record of).
   */
  behind(name: string): boolean {
    const verdict = this.#verdicts.get(name);
    return verdict === 'writing' || verdict === 'unrecorded';
  }

  /** The size in bytes of `name`'s published document, when this batch read it. */
  publishedSize(name: string): number | undefined {
    return this.#sizes.get(name);
  }

  /** The document of `name` as this batch has changed it so far (the published one when unchanged). */
  async current(name: string): Promise<PluginDocument | undefined> {
    return this.#current.get(name) ?? (await this.published(name));
  }

  /** Whether `name` has a document only as this batch made it: none was published before the batch. */
  async madeInBatch(name: string): Promise<boolean> {
    return this.#current.has(name) && (await this.published(name).catch(() => null)) === undefined;
  }

  /** Records a change this batch made to a document (judged, not yet written). */
  change(doc: PluginDocument): void {
    this.#current.set(doc.name, doc);
  }

  /** The name of every plugin, published (listed once per batch) or made in this batch: a revocation marks them all. */
  async allNames(): Promise<string[]> {
    if (!this.#listed) {
      const listed: string[] = [];
      for await (const info of this.site.list(PLUGINS_PREFIX))
        if (isPluginDocumentKey(info.key)) listed.push(info.key.split('/')[1] as string);
      this.#listed = listed;
    }
    return [...new Set([...this.#listed, ...this.#current.keys()])].sort();
  }

  /** `keys/revoked.json` as published (empty when there is none), read once per batch. */
  async publishedRevoked(): Promise<RevokedKeysDocument> {
    if (!this.#revokedPublished) {
      const object = await this.site.get(REVOKED_KEYS_KEY);
      await this.records.revokedKeys(object?.body);
      this.#revokedPublished = object
        ? parseRevokedKeys(new TextDecoder().decode(object.body))
        : EMPTY_REVOKED_KEYS;
    }
    return this.#revokedPublished;
  }

  /** The revoked keys as this batch has changed them so far. */
  async revoked(): Promise<RevokedKeysDocument> {
    return this.#revoked ?? (await this.publishedRevoked());
  }

  changeRevoked(list: RevokedKeysDocument): void {
    this.#revoked = list;
  }

  /**
   * The newest action applied to each slot of plugin `name` before this batch: as recorded (none: empty), and
   * as the log entries taken so far (`takeLoggedOrders`) set them, the newer per slot standing.
   */
  async recordedOrder(name: string): Promise<ActionOrder> {
    const recorded = this.#standing(await this.#readOrder(name));
    const logged = this.#logged.get(name);
    return logged ? mergedOrder(logged, recorded) : recorded;
  }

  /**
   * Takes the action orders the published log's entries logged from `since` (ms since the epoch) on set
   * (`LogWriter.entriesSince`) into every order this view gives, recorded or as the batch changed it, unless
   * it took them from as early already: the record in the intake store is a copy the log vouches for, and one
   * put back older on its own is caught up, as a rebuild would restore it.
   */
  async takeLoggedOrders(log: LogWriter, since: number): Promise<void> {
    if (since >= this.#loggedSince) return;
    const entries = await log.entriesSince(since);
    this.#logged = loggedOrders(entries);
    this.#loggedApplied = new Set(
      entries.filter((e) => e.detail?.effect !== NO_EFFECT).map((e) => `${e.type} ${e.digest}`),
    );
    this.#loggedSince = since;
    this.#log = log;
    for (const [name, order] of this.#order) {
      const logged = this.#logged.get(name);
      this.#order.set(name, logged ? mergedOrder(logged, this.#standing(order)) : this.#standing(order));
    }
  }

  /**
   * `order` without the slots of actions the registry voided (as far as the log is read: every action made
   * after one judged now was logged after it, so whatever could supersede it is among those read): the
   * intake store's record is a copy of the log, written after an entry that a void since says never took
   * effect, and an action made before that one was refused as superseded by it. One applied again since
   * (its upload judged anew) is the log's own order's, merged over this, or this batch's (`applied`).
   */
  #standing(order: ActionOrder): ActionOrder {
    const voided = this.#log?.voided;
    return Object.fromEntries(
      Object.entries(order).filter(([, { digest }]) => !voided?.has(digest) || this.applied.has(digest)),
    );
  }

  /**
   * Whether the log entries taken (`takeLoggedOrders`) log the action of kind `kind` and envelope `digest` as
   * applied: its marker (`state/actions/`) is a copy of that, and one gone on its own (rolled back) is
   * caught up here.
   */
  loggedApplied(kind: ActionKind, digest: string): boolean {
    return this.#loggedApplied.has(`${kind} ${digest}`);
  }

  #readOrder(name: string): Promise<ActionOrder> {
    return readOnce(this.#recordedOrder, name, () =>
      this.intake
        .get(actionOrderKey(name))
        .then((object) => (object ? parseActionOrder(new TextDecoder().decode(object.body), name) : {})),
    );
  }

  /** The newest action applied to each slot of plugin `name`, as this batch stands. */
  async order(name: string): Promise<ActionOrder> {
    return this.#order.get(name) ?? (await this.recordedOrder(name));
  }

  /** Records an action this batch applied to a slot of plugin `name`. */
  async applyOrder(name: string, slot: ActionSlot, record: SlotRecord): Promise<void> {
    this.#order.set(name, withSlotRecord(await this.order(name), slot, record));
  }

  /** Is this fingerprint revoked, as this batch stands? */
  async isRevoked(fingerprint: string): Promise<boolean> {
    return revocationOf(await this.revoked(), fingerprint) !== undefined;
  }
}

/** What every submission of a batch is judged against. */
export interface Judging {
  readonly trusted: TrustedKeys;
  readonly view: BatchView;
  /** The time of publishing, for the whole batch: publisher keys are judged valid (or not) at it. */
  readonly now: Date;
  /** The log, for what a run that died appended already. */
  readonly log: LogWriter;
}

/** The record a version accepted in this batch is judged by until its files are written. */
function provisionalRecord(manifest: Manifest, accepted: Omit<Accepted, 'kind' | 'contents'>, now: Date) {
  return versionRecordOf(manifest, {
    published: now.toISOString(),
    manifest_url: '',
    manifest_signature_url: '',
    manifest_sha256: '',
    manifest_size: 0,
    source_sha256: accepted.sourceSha256,
    publisher: accepted.publisher,
    artifacts: [],
  });
}

/** Bundles inspected at once in this thread: their signatures are checked on the thread pool, their reads overlap. */
const INSPECT_CONCURRENCY = 8;

/** What inspecting a batch's bundles needs of its judging: everything but the log. */
export type InspectionJudging = Omit<Judging, 'log'>;

/**
 * Every bundle of the batch inspected in bounded flight (by the context's inspector, on other threads, when
 * it takes the batch), each with the published document its name needs read ahead (a failure left for the
 * judging to meet where it always did), as soon as it is read (`add`): the inspection of the first uploads
 * overlaps the reading of the rest (an import of 10,000 read for 1.5 s with the inspector threads idle),
 * and the judging of the first, and the writing of their files, overlaps the inspection of the rest (an
 * import of 1,000 new plugins judged and wrote nothing until all were inspected, while the writer thread
 * sat idle, then wrote while this thread waited). Each is handed out once (`take`), in any order.
 */
interface QueuedBundle {
  readonly upload: Upload;
  readonly settle: (inspection: Inspection | undefined) => void;
}

export class Inspections {
  /** Each bundle's inspection until it is taken: one taken is not held here (its files are the item's). */
  readonly #ready = new Map<Upload, Promise<Inspection | undefined>>();
  /** Bundles added and not begun yet (from `#next` on), beyond the bound in flight. */
  readonly #queue: (QueuedBundle | undefined)[] = [];
  #next = 0;
  readonly #inFlight = new Set<Promise<void>>();
  readonly #limit: number;
  readonly #inspectOne: (bytes: Uint8Array) => Promise<Inspection>;
  readonly #judging: InspectionJudging;
  readonly #end: () => void;
  #closed = false;
  #stopped = false;
  #ended = false;

  /** `expected`: about how many bundles will be added (an inspector decides by it whether to take them). */
  constructor(ctx: PipelineContext, judging: InspectionJudging, expected: number) {
    this.#judging = judging;
    const basis: InspectionBasis = {
      config: ctx.config,
      registryFingerprints: judging.trusted.registryFingerprints,
      now: judging.now,
      ...(ctx.bundleLimits ? { bundleLimits: ctx.bundleLimits } : {}),
    };
    const here = (bytes: Uint8Array): Promise<Inspection> => inspectBundle(bytes, basis, judging.trusted);
    const run = expected > 0 ? ctx.inspector?.begin(basis, expected, here) : undefined;
    this.#inspectOne = run ? (bytes: Uint8Array) => run.inspect(bytes) : here;
    this.#limit = run?.concurrency ?? INSPECT_CONCURRENCY;
    this.#end = () => run?.end();
  }

  /** Begins inspecting `upload` (an action, or one too large, needs none), once there is room in flight. */
  add(upload: Upload): void {
    if (this.#closed || !isBundle(upload)) return;
    this.#ready.set(
      upload,
      new Promise<Inspection | undefined>((settle) => this.#queue.push({ upload, settle })),
    );
    this.#pump();
  }

  /** No more bundles will be added. */
  close(): void {
    this.#closed = true;
    this.#pump();
  }

  /**
   * The batch failed with `error`: begins no more inspections (those not begun are answered undefined),
   * waits for those begun, so nothing of the batch is still reading, then throws `error`.
   */
  async abandon(error: unknown): Promise<never> {
    this.#stopped = true;
    this.close();
    await this.settled();
    throw error;
  }

  #pump(): void {
    while (this.#next < this.#queue.length && (this.#stopped || this.#inFlight.size < this.#limit)) {
      const { upload, settle } = this.#queue[this.#next] as QueuedBundle;
      this.#queue[this.#next++] = undefined; // its bytes are the inspection's now
      if (this.#stopped) {
        settle(undefined);
        continue;
      }
      // Never rejects: an inspection's failure is an Inspection ('threw'), judged where it is met.
      const running: Promise<void> = inspect(upload, this.#judging, this.#inspectOne)
        .catch(threw)
        .then(settle)
        .finally(() => {
          this.#inFlight.delete(running);
          this.#pump();
        });
      this.#inFlight.add(running);
    }
    if (this.#closed && this.#inFlight.size === 0 && this.#next === this.#queue.length && !this.#ended) {
      this.#ended = true;
      this.#end();
    }
  }

  /** The inspection of `upload` (undefined for an action, or one never added), once it is ready; taken once. */
  take(upload: Upload): Promise<Inspection | undefined> {
    const ready = this.#ready.get(upload);
    this.#ready.delete(upload);
    return ready ?? Promise.resolve(undefined);
  }

  /** Waits for every inspection begun: nothing of the batch is still reading when it fails. */
  async settled(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.all(this.#inFlight);
  }
}

/** An upload read as a bundle: anything but a JSON envelope (an action, a rotation). */
function isBundle(upload: Upload): upload is Extract<Upload, { readonly kind: 'read' }> {
  return upload.kind === 'read' && !isJsonSubmission(upload.bytes);
}

/** A bundle inspected, and the document its name needs read ahead; undefined for an action. */
async function inspect(
  upload: Upload,
  judging: InspectionJudging,
  inspectOne: (bytes: Uint8Array) => Promise<Inspection>,
): Promise<Inspection | undefined> {
  if (!isBundle(upload)) return undefined;
  const inspection = await inspectOne(upload.bytes);
  if (inspection.kind === 'read' && inspection.manifest) {
    const { name } = inspection.manifest;
    const doc = await judging.view.published(name).catch(() => undefined);
    // A new name is judged against the index too: its bin read ahead (a failure met where it is judged).
    if (!doc) await judging.view.names.filedAlike(name).catch(() => undefined);
    // And each OCI repository it names that its own versions do not yet, against the repository index (its
    // bin read ahead likewise): a plugin publishing into its own repository reads no bin.
    const named = doc ? documentOciRepositories(doc) : new Set<string>();
    await Promise.all(
      [...manifestOciRepositories(inspection.manifest).keys()]
        .filter((r) => !named.has(r))
        .map((repository) => judging.view.repositories.filed(repository).catch(() => undefined)),
    );
  }
  return inspection;
}

/**
 * OCI_REPOSITORY_CLAIMED for each repository `manifest` names anew that another owner's plugin holds, each
 * with the plugins that hold it.
 */
async function claimedRepositoryProblems(
  view: BatchView,
  manifest: Manifest,
  existing: PluginDocument | undefined,
  publisher: string,
): Promise<JudgedOnBatch[]> {
  const named = existing ? view.repositoriesOf(existing) : new Set<string>();
  const problems: JudgedOnBatch[] = [];
  for (const [repository, path] of manifestOciRepositories(manifest)) {
    if (named.has(repository)) continue;
    const others = (await view.repositoryHolders(repository, manifest.name)).filter(
      (holder) => !holder.owners.includes(publisher),
    );
    if (others.length > 0)
      problems.push({
        problem: ociRepositoryProblem(path, repository, others),
        plugins: others.map((holder) => holder.name),
      });
  }
  return problems;
}

async function evaluate(
  ctx: PipelineContext,
  inspection: Inspection,
  judging: InspectionJudging,
): Promise<Evaluation> {
  const { view, now } = judging;
  if (inspection.kind === 'threw') throw inspection.error;
  if (inspection.kind === 'unreadable') return rejected(inspection.problems);
  const { contents, manifest, signer } = inspection;
  const problems: Problem[] = [...inspection.problems];
  // A key the operator revoked publishes nothing from the revocation on (what it published stays).
  if (signer.fingerprint && (await view.isRevoked(signer.fingerprint)))
    problems.push(
      problem(
        'PUBLISHER_KEY_REVOKED',
        `bundle:${contents.manifestName}.asc`,
        `key ${signer.fingerprint} was revoked by the registry's operator`,
        { expected: 'a signature by a key that is not revoked' },
      ),
    );
  if (!manifest || problems.length > 0 || !signer.fingerprint) {
    return rejected(problems, { manifest, publisher: signer.fingerprint });
  }
  const publisher = signer.fingerprint;
  const existing = await view.current(manifest.name);
  const owners = existing?.owners.length ? existing.owners : undefined;
  problems.push(
    ...authorizePublisher({ config: ctx.config, fingerprint: publisher, name: manifest.name, owners }),
  );
  // The refusals that stand on plugins an earlier submission of this batch made (their owners, their
  // names, their repositories): the batch may refuse that submission after this judging.
  const judged: JudgedOnBatch[] = [];
  if (owners && (await view.madeInBatch(manifest.name)))
    for (const p of problems)
      if (p.code === 'PUBLISHER_NOT_OWNER') judged.push({ problem: p, plugins: [manifest.name] });
  // A new name that reads as a plugin someone else owns is refused (typosquatting); one its owners take is
  // not, and plugins that already collide are left as they are (look-alike.ts). Only under first-come
  // ownership: without owners anyone may publish the existing name itself, and a look-alike takes nothing.
  if (!existing && ctx.config.ownership === 'first-come' && problems.length === 0) {
    const others = await view.lookAlikes(manifest.name, publisher);
    if (others.length > 0) {
      const found = lookAlikeProblem(manifest.name, others);
      problems.push(found);
      judged.push({ problem: found, plugins: others.map((a) => a.name) });
    }
  }
  // An OCI repository another owner's plugin keeps its artifacts in is refused (oci-repositories.ts): the
  // same owners may share one, and a repository this plugin's own versions already name stays its own.
  if (ctx.config.ownership === 'first-come' && problems.length === 0)
    for (const claimed of await claimedRepositoryProblems(view, manifest, existing, publisher)) {
      problems.push(claimed.problem);
      judged.push(claimed);
    }
  // Only those whose every plugin the batch made: one published before stands whatever the batch does.
  const onBatch: JudgedOnBatch[] = [];
  for (const j of judged)
    if ((await Promise.all(j.plugins.map((p) => view.madeInBatch(p)))).every(Boolean)) onBatch.push(j);

  // Versions are immutable: same name and version with other bytes is refused; the same bytes is a no-op.
  // Versions that differ only in build metadata (one version to SemVer) or letter case (one folder on macOS
  // and Windows) are the same version. A version the operator removed is never published again.
  const sourceSha256 = sha256Hex(contents.manifest);
  const identity = versionIdentity(manifest.version);
  const published = existing?.versions.find((v) => versionIdentity(v.version) === identity);
  if (published?.removed) {
    problems.push(
      problem(
        'VERSION_REMOVED',
        '/version',
        `${manifest.name}@${published.version} was removed by the registry's operator (${published.removed.reason}) and can never be published again`,
        { expected: 'a new version number', found: manifest.version },
      ),
    );
    return rejected(problems, { manifest, publisher });
  }
  const knownSha = published?.source_sha256;
  if (knownSha !== undefined) {
    // The same manifest is the same version only with the artifacts it names: a bundle carrying other bytes
    // under them was told "already published", a success to whoever waits on it, and filed as processed.
    if (knownSha === sourceSha256 && problems.length === 0 && inspection.artifactProblems.length === 0)
      return { kind: 'already-published', manifest, publisher, sourceSha256 };
    if (knownSha !== sourceSha256) {
      const other = published && published.version !== manifest.version ? published.version : undefined;
      problems.push(
        problem(
          'VERSION_EXISTS',
          '/version',
          other
            ? `${manifest.name}@${manifest.version} is the same version as ${other}, already published (versions that differ only in build metadata or letter case are one version)`
            : `${manifest.name}@${manifest.version} is already published with different content`,
          {
            expected: 'a new version number (published versions are immutable)',
            found: manifest.version,
          },
        ),
      );
    }
  }
  problems.push(...inspection.artifactProblems);
  if (problems.length > 0) {
    const refusal = rejected(problems, { manifest, publisher });
    return onBatch.length > 0 ? { ...refusal, judgedOnBatch: onBatch } : refusal;
  }
  // The first accepted publisher of a name nobody owns owns it from now on, within this batch too.
  const record = provisionalRecord(manifest, { manifest, publisher, sourceSha256 }, now);
  view.change(mergePluginDocument(existing, [{ record, manifest }], ctx.config.ownership));
  view.fileAccepted(manifest, existing);
  return { kind: 'accepted', manifest, contents, publisher, sourceSha256 };
}

/** The refusals of a bundle its judging at another time, or under another trust list, could turn. */
const BY_TIME_OR_TRUST: ReadonlySet<string> = new Set([
  'PUBLISHER_KEY_EXPIRED',
  'PUBLISHER_KEY_REVOKED',
  'PUBLISHER_KEY_NOT_FOR_SIGNING',
  'PUBLISHER_IS_REGISTRY_KEY',
  'PUBLISHER_UNTRUSTED',
  'PUBLISHER_NAME_NOT_ALLOWED',
  'PUBLISHER_NOT_OWNER',
  'NAME_TOO_SIMILAR',
  'OCI_REPOSITORY_CLAIMED',
  'SIGNATURE_INVALID',
  'SIGNATURE_TIME_INVALID',
]);

/**
 * A bundle a run that died accepted and logged, which its retry would refuse (its publisher's key expired
 * since, or was removed from the trust list): the log holds its entry and its version's files are written,
 * so it is finished as it was judged then, by the entry's signer, rather than refused with its entry left
 * in the log for a version no document shows (and then open to other bytes). Only the very manifest the
 * entry names (its digest, name and version), from the very upload its intent record names, with artifacts
 * that match it. A version shown already (the run died after its plugin document) is found published by
 * this upload, as `resumePublished` finds one the retry would not refuse: its outcome is still an acceptance.
 */
async function resumeLogged(
  ctx: PipelineContext,
  upload: Upload,
  inspection: Extract<Inspection, { kind: 'read' }>,
  judging: Judging,
): Promise<Evaluation | undefined> {
  const { manifest, contents } = inspection;
  if (!manifest || inspection.artifactProblems.length > 0) return undefined;
  const sourceSha256 = sha256Hex(contents.manifest);
  const entry = loggedFor(judging.log, upload, manifest, sourceSha256);
  if (!entry) return undefined;
  const existing = await judging.view.current(manifest.name);
  const identity = versionIdentity(manifest.version);
  const publisher = entry.signer;
  const shown = existing?.versions.find((v) => versionIdentity(v.version) === identity);
  // The dead run got as far as showing it: this upload is what its document shows (the same bytes, the
  // same key), so it is found published by itself, with nothing written again.
  if (shown)
    return !shown.removed && shown.source_sha256 === sourceSha256 && shown.publisher === publisher
      ? { kind: 'already-published', manifest, publisher, sourceSha256, resumed: { seq: entry.seq } }
      : undefined;
  const record = provisionalRecord(manifest, { manifest, publisher, sourceSha256 }, new Date(entry.time));
  judging.view.change(mergePluginDocument(existing, [{ record, manifest }], ctx.config.ownership));
  judging.view.fileAccepted(manifest, existing);
  return { kind: 'accepted', manifest, contents, publisher, sourceSha256 };
}

/**
 * The publish entry a run that died appended for this very upload (its id: its name and bytes), as that
 * run's intent record names it, when it is the publish of these manifest bytes; else undefined. Another
 * upload of the same manifest (signed again, or by someone else) is not the one the entry records.
 */
function loggedFor(
  log: LogWriter,
  upload: Upload,
  manifest: Manifest,
  sourceSha256: string,
): LogEntry | undefined {
  const intended = log.intended(upload.id);
  if (intended?.type !== 'publish' || intended.digest !== sourceSha256) return undefined;
  const entry = log.entry('publish', sourceSha256);
  if (!entry?.signer || entry.seq !== intended.seq) return undefined;
  return entry.plugin === manifest.name && entry.version === manifest.version ? entry : undefined;
}

/**
 * The publish a run that died logged for submission `id`, whose bundle is not at hand (deleted since, or left
 * for a later batch), finished from the files that run wrote before its entry: the manifest as published
 * (`plugins/<n>/<v>/manifest.json`, the entry's name and version), its signature and hosted artifacts read
 * back (`writtenVersionRecord`), the entry's signer its publisher. Only a manifest the entry's digest names
 * (a JSON manifest is published byte for byte) or the registry's own signature vouches for (a YAML manifest
 * is rendered to JSON): the files are the published store's. Shown already (the run died after its plugin
 * document), it is found published by that upload. Left unfinished, the log held a version no document
 * showed, and the actions of that run on it (a yank of the version its batch published) were lost for good,
 * the retry of each finding no version to apply them to. Undefined when its outcome is recorded already, or
 * a file is gone or not the one logged.
 */
export async function finishPublishFromLog(
  ctx: PipelineContext,
  id: string,
  judging: Judging,
): Promise<BatchItem | undefined> {
  const { log, view } = judging;
  const intent = log.intended(id);
  const unfinished = (): undefined => {
    log.release(id);
    return undefined;
  };
  if (intent?.type !== 'publish' || (await ctx.intake.head(statusKey(id))) !== undefined) return unfinished();
  const entry = log.entry('publish', intent.digest);
  if (entry?.seq !== intent.seq || !entry.plugin || !entry.version) return unfinished();
  const key = manifestKey(entry.plugin, entry.version);
  const [object, signature] = await allSettledValues([ctx.site.get(key), ctx.site.get(signatureKey(key))]);
  if (!object || !signature) return unfinished();
  if (sha256Hex(object.body) !== intent.digest) {
    const { key: registryKey } = await readPublicKey(ctx.signer.publicKey);
    const vouched = await verifyDetachedSignature(object.body, new TextDecoder().decode(signature.body), [
      registryKey,
    ]).catch(() => undefined);
    if (!vouched?.ok) return unfinished();
  }
  let manifest: Manifest;
  try {
    manifest = JSON.parse(new TextDecoder().decode(object.body)) as Manifest;
  } catch {
    return unfinished();
  }
  if (manifest?.name !== entry.plugin || manifest.version !== entry.version) return unfinished();
  const upload: Upload = {
    kind: 'read',
    key,
    id,
    sha256: intent.digest,
    bytes: object.body,
    etag: object.etag,
  };
  const publisher = entry.signer;
  const sourceSha256 = intent.digest;
  const existing = await view.current(manifest.name);
  const identity = versionIdentity(manifest.version);
  const shown = existing?.versions.find((v) => versionIdentity(v.version) === identity);
  if (shown)
    return !shown.removed && shown.source_sha256 === sourceSha256 && shown.publisher === publisher
      ? {
          upload,
          evaluation: {
            kind: 'already-published',
            manifest,
            publisher,
            sourceSha256,
            resumed: { seq: entry.seq },
          },
          fromLog: true,
        }
      : unfinished();
  const record = await writtenVersionRecord(ctx, manifest, object.body, {
    published: entry.time,
    sourceSha256,
    publisher,
  });
  if (!record) return unfinished();
  view.change(mergePluginDocument(existing, [{ record, manifest }], ctx.config.ownership));
  view.fileAccepted(manifest, existing);
  return {
    upload,
    evaluation: {
      kind: 'accepted',
      manifest,
      contents: RELEASED_CONTENTS,
      publisher,
      sourceSha256,
      logged: { seq: entry.seq },
      written: record,
    },
    fromLog: true,
  };
}

/**
 * Marks each bundle found already published that this very upload published, by the same key: a run that
 * died after it showed the version (its plugin document, or the whole generation) and before it recorded
 * the outcome, leaving the upload in incoming/. Its outcome is then the acceptance that run would have
 * recorded (its log entry), not the "already published" of a later upload of the same bytes. Run once the
 * log is open (its intent records name the dead run's uploads), after the judging, which does not wait for
 * the log.
 */
export function resumePublished(items: readonly BatchItem[], log: LogWriter): void {
  for (const item of items) {
    const evaluation = item.evaluation;
    if (evaluation.kind !== 'already-published' || evaluation.resumed) continue;
    const { manifest, sourceSha256, publisher } = evaluation;
    const entry = loggedFor(log, item.upload, manifest, sourceSha256);
    if (entry?.signer === publisher) item.evaluation = { ...evaluation, resumed: { seq: entry.seq } };
  }
}

/**
 * Marks each accepted publish whose entry the log holds already (`logged`): a run that died appended it and
 * died before a document showed the version, so the batch accepts it again (its files written again, its
 * entry found, not appended twice: `appendToLog`). Marked before the batch renders, which must not refuse it:
 * a refusal left the entry in the log for a version no document shows. Run once the log is open.
 */
export function markLogged(items: readonly BatchItem[], log: LogWriter): void {
  for (const item of items) {
    const evaluation = item.evaluation;
    if (evaluation.kind !== 'accepted' || evaluation.logged) continue;
    const entry = log.entry('publish', evaluation.sourceSha256);
    if (entry) item.evaluation = { ...evaluation, logged: { seq: entry.seq } };
  }
}

/**
 * Every fingerprint of every key the registry has signed with: its key now, and each key a published
 * rotation retired. A retired key stays the registry's (its signatures are still about, and it may have
 * been rotated because it leaked), so it can never sign as a publisher, an owner or an operator.
 * @throws TrustError KEY_ROTATION_BROKEN when a published rotation does not read: the batch fails, its
 *   uploads stay in incoming/, rather than be judged without knowing every registry key.
 */
async function registryFingerprints(ctx: PipelineContext): Promise<string[]> {
  return [...new Set([...ctx.signer.fingerprints, ...(await retiredFingerprints(ctx.site))])];
}

/**
 * Every fingerprint of every key a published rotation retired (its `previous`): keys the registry signed
 * with and rotated away from, never to sign again (a client refuses a rotation back to one).
 * @throws TrustError KEY_ROTATION_BROKEN when a published rotation does not read.
 */
export async function retiredFingerprints(site: Store): Promise<string[]> {
  const all = new Set<string>();
  for await (const listed of site.list(ROTATION_PREFIX)) {
    const stored = await site.get(listed.key);
    if (!stored) continue;
    const { rotation } = readSignedRotation(stored.body, listed.key);
    for (const fp of (await readPublicKey(rotation.previous.key)).fingerprints) all.add(fp);
  }
  return [...all];
}

/**
 * What a batch is judged against, but the log: the trusted keys (with every key the registry has signed
 * with), the batch's view and its time. Loaded before the uploads are read, so their inspections can start
 * as each is read.
 * @throws TrustError KEY_ROTATION_BROKEN (see `registryFingerprints`).
 */
export async function beginJudging(
  ctx: PipelineContext,
  view: BatchView,
  now: Date,
): Promise<InspectionJudging> {
  return { trusted: await loadTrustedKeys(ctx.config, await registryFingerprints(ctx)), view, now };
}

/**
 * Judges every upload of a batch in upload order, each against the published registry and the
 * submissions before it, taking each bundle's inspection from `inspections` (every upload added to it).
 * `uploads` may still be being read: a bundle is judged as soon as it and those before it are, since a
 * bundle's judging needs no log; the first action waits for `judging.log`, which opens once every upload
 * is read (its intents name them all).
 * Storage failures are transient: they fail the batch, leaving every submission in incoming/ to retry.
 * Anything else thrown is the submission's own doing (input a library choked on): it is rejected with the
 * reason, so one poisonous upload cannot block every later one. `onJudged` is told of each item as it is
 * judged, in order.
 */
export async function evaluateBatch(
  ctx: PipelineContext,
  uploads: AsyncIterable<Upload>,
  inspections: Inspections,
  judging: InspectionJudging & {
    readonly log: Promise<LogWriter>;
    /**
     * Whether a run that died left an intent record of an action (`namesAction`): the judging then waits for
     * the log before the first upload, to finish the actions it logged for uploads not at hand in the order
     * the log has them.
     */
    readonly deadRun?: Promise<boolean>;
  },
  onJudged?: (item: BatchItem) => void,
): Promise<BatchItem[]> {
  const items: BatchItem[] = [];
  let withLog: Judging | undefined;
  /** The actions owed from the log (`LogWriter.owedFromLog`), by the id they are finished after ('' first). */
  const owed = new Map<string, string[]>();
  const finishOwed = async (after: string): Promise<void> => {
    const ids = owed.get(after);
    if (!ids || !withLog) return;
    owed.delete(after);
    for (const id of ids) {
      const item =
        withLog.log.intended(id)?.type === 'publish'
          ? await finishPublishFromLog(ctx, id, withLog)
          : await finishFromLog(ctx, id, withLog);
      if (!item) continue;
      items.push(item);
      onJudged?.(item);
    }
  };
  try {
    // Read before any upload is judged: an unreadable keys/revoked.json is the operator's to mend and fails
    // the batch (its uploads stay in incoming/), rather than rejecting each upload that met it.
    let revokedRead = false;
    // A run that died logged actions for uploads this batch may not hold (deleted since, or left for a later
    // batch): finished here from the log, each after the upload at hand the log has before it, so every
    // action of that run is applied in its order (only then, nearly never, does the judging wait for the log).
    if (judging.deadRun && (await judging.deadRun)) {
      await judging.view.publishedRevoked();
      revokedRead = true;
      withLog = { ...judging, log: await judging.log };
      for (const { id, after } of withLog.log.owedFromLog())
        owed.set(after ?? '', [...(owed.get(after ?? '') ?? []), id]);
      await finishOwed('');
    }
    for await (const upload of uploads) {
      if (!revokedRead) {
        await judging.view.publishedRevoked();
        revokedRead = true;
      }
      // Refused by its size, or not readable: nothing to inspect.
      if (upload.kind !== 'read') {
        items.push({ upload, evaluation: rejected([upload.problem]) });
        continue;
      }
      // An action (or a rotation) is a JSON envelope; anything else is read as a bundle.
      const inspection = await inspections.take(upload);
      let judged: Promise<Evaluation>;
      if (inspection) judged = evaluate(ctx, inspection, judging);
      else {
        withLog ??= { ...judging, log: await judging.log };
        judged = evaluateAction(ctx, upload, withLog);
      }
      let evaluation = await judged.catch((error: unknown): Evaluation => {
        // A document read back that the registry did not publish is no submission's doing: the batch fails.
        if (error instanceof StoreError || isAltered(error)) throw error;
        // Its words are the operator's (a library's, a store's), for its log; the outcome says what happened.
        ctx.onSubmissionFailure?.({
          submission: upload.key,
          id: upload.id,
          code: 'SUBMISSION_UNREADABLE',
          error,
        });
        return rejected([
          problem(
            'SUBMISSION_UNREADABLE',
            'bundle:',
            "the registry could not check this submission: it failed in a way it did not expect; its operator's log has the details, under this submission's id",
            {
              expected:
                "a submission the registry can check (please report this to the registry operator, naming this submission's id)",
            },
          ),
        ]);
      });
      // Only a refusal a later time or a changed trust list could cause waits for the log (which opens once
      // every upload is read), to finish a publish a run that died logged: a corrupt bundle never does.
      if (
        evaluation.kind === 'rejected' &&
        inspection?.kind === 'read' &&
        evaluation.problems.some((p) => BY_TIME_OR_TRUST.has(p.code))
      ) {
        withLog ??= { ...judging, log: await judging.log };
        evaluation = (await resumeLogged(ctx, upload, inspection, withLog)) ?? evaluation;
      }
      const item = { upload, evaluation };
      items.push(item);
      onJudged?.(item);
      if (owed.size > 0) await finishOwed(upload.id);
    }
    // After an upload the plan took that was gone when read: still finished.
    for (const after of [...owed.keys()]) await finishOwed(after);
  } catch (error) {
    return inspections.abandon(error);
  }
  await inspections.settled();
  return items;
}
