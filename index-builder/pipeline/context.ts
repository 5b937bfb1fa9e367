/**
 * What a publish is given (PipelineContext) and what it returns (BatchResult): the pipeline's public types,
 * shared by its phases.
 */
import type { BundleLimits } from '../bundle.ts';
import type { Clock } from '../clock.ts';
import type { RegistryConfig } from '../config.ts';
import type { ProblemCode } from '../errors.ts';
import { STREAM_THRESHOLD_BYTES } from '../layout.ts';
import type { RegistryIdentity } from '../model.ts';
import type { Signer } from '../signing.ts';
import type { ListedObject, Store } from '../store.ts';
import type { HeldDocuments } from './held-documents.ts';
import type { BundleInspector } from './inspect.ts';
import type { SubmissionOutcome } from './outcomes.ts';

export interface PipelineContext {
  /** Submissions and bookkeeping: `incoming/`, `processed/`, `rejected/`, `status/`, `state/`. */
  readonly intake: Store;
  /** The published tree, served as static files. */
  readonly site: Store;
  readonly signer: Signer;
  readonly clock: Clock;
  readonly config: RegistryConfig;
  readonly bundleLimits?: Partial<BundleLimits>;
  /**
   * Inspects a batch's bundles (read, validated, signature checked) elsewhere than in the thread that
   * judges them, when it takes the batch (adapters/inspector.ts: worker threads, for a local import);
   * without one, or for a batch it declines, they are inspected in this thread (a Lambda function).
   */
  readonly inspector?: BundleInspector;
  /**
   * Stop taking submissions into a batch once their bytes pass this (at least one is always taken); the rest
   * stay in incoming/ for the next batch (`BatchResult.leftInIncoming`). Bounds memory in a Lambda function.
   */
  readonly maxBatchBytes?: number;
  /**
   * Stop taking submissions into a batch once it holds this many (unbounded when undefined): their work (a
   * read, an outcome, a move each) grows with their count whatever their bytes, and a batch records its
   * outcomes only at its end. Bounds the time of a batch in a Lambda function.
   */
  readonly maxBatchUploads?: number;
  /**
   * Refuse unread, by its size, an upload past this many bytes (streamed, hashed and moved to rejected/, when
   * undefined). The publish function sets four times its bundle limit: streamed twice, an upload of hundreds
   * of gigabytes outlasted its 15 minutes on every delivery. One refused unread stays in incoming/, met again
   * by every batch that lists it: a local server's watcher polls every second, and with the bound it
   * recorded and printed the same refusal each second for good, so the commands keep the stream.
   */
  readonly maxStreamedBytes?: number;
  /**
   * Uploads an earlier batch of this caller's met unreadable (UPLOAD_UNREADABLE) or too large to stream
   * (BUNDLE_TOO_LARGE with no digest), by key: not taken again,
   * and left in incoming/. They stay there, the oldest waiting, so each batch would take them first and, by
   * their bytes (`maxBatchBytes`), take nothing behind them, round after round; the next caller (another
   * invocation) reads them again, once.
   */
  readonly passOver?: ReadonlySet<string>;
  /**
   * The uploads waiting, as the caller listed `incoming/` (`listWaiting`, in upload order), for the batch to
   * take from instead of listing it again. Listing is what a batch costs with millions of uploads waiting
   * (a thousand keys a request: minutes), and the publish function's rounds listed all of them each round;
   * it lists once an invocation and gives each round what the rounds before it left. An upload that arrived
   * since is not in it: it is taken by a later listing (the next invocation's, woken by its own message).
   */
  readonly waiting?: readonly ListedObject[];
  /**
   * Leave in incoming/, for a later batch, an upload modified less than this many milliseconds before the
   * batch lists them (a copy still being written, by a publisher that did not write a dot-file and rename
   * it in): a watcher of a local folder (cli/local/watch.ts) judges the folder settled before it calls a
   * batch, and an upload may arrive between its look and the batch's listing.
   */
  readonly settledForMs?: number;
  /**
   * Leave the index documents (index.json, index.yaml, search.json, falcoctl/index.yaml) for
   * `flushIndexes`: a publish then writes only what it changed, and its versions are live (plugin
   * documents, bins, snapshot) at once; the index documents follow at the flush, once for any number of
   * batches. For callers that run on and flush when a burst is over (the local watcher, the publish
   * function); a registry is never left pending by a caller that does not defer, since a batch without it
   * renders whatever is pending.
   */
  readonly deferIndexes?: boolean;
  /**
   * Index documents over this many bytes are published compressed too (`<key>.br`, `<key>.gz`); by default
   * `COMPRESSION_THRESHOLD_BYTES` (1 MB). Tests lower it to have large documents without thousands of plugins.
   */
  readonly compressionThresholdBytes?: number;
  /**
   * Delete, rather than rewrite, the compressed variants of an index document over the threshold when the
   * document is written, and leave them to `completeEncodedVariants` (encoded.ts), which the caller runs
   * once it has answered: the local server, after a publish handed to it, for which compressing the index
   * documents both ways was a third of its time at 10,000 plugins. In between, a reader gets the document
   * itself. Only for a store whose server falls back to the document when a variant is missing (the local
   * one): a CloudFront Function routes to a variant without looking in the bucket.
   */
  readonly compressLater?: boolean;
  /**
   * The index documents this process wrote last, kept across runs by a long-running caller (the local
   * server, for the publishes handed to it): a merge reads the published documents from them rather than
   * from the store while the store still has those very files, and `completeEncodedVariants` compresses
   * them from there (held-documents.ts).
   */
  readonly held?: HeldDocuments;
  /**
   * When the index documents come to more than this many bytes together, they are rendered and written as
   * streams, in bounded memory; by default `STREAM_THRESHOLD_BYTES` (128 MB, layout.ts). Tests lower it to
   * stream small documents.
   */
  readonly streamIndexesOverBytes?: number;
  /**
   * Told as each step of a batch (`processSubmissions`) ends, in order: what a caller times a batch by (the
   * local commands print each with `PLUGINDEX_STEPS=1`). Called synchronously and never awaited; it must not
   * throw, since a throw fails the batch at that step, as a store's failure would (the retry converges).
   */
  readonly onStep?: (step: BatchStep) => void;
  /**
   * Told of each submission the registry failed or could not read, with what failed, whole: the operator's
   * log line. The outcome, which the publisher reads, says what happened in stable terms (its code, the
   * submission's id, what to do) and never the error's own words: a store's message names the bucket or the
   * absolute path it wrote, an SDK's its internals. Told as soon as that outcome is recorded, and once: a
   * retry that finds the very rejection recorded (the batch failed after its record) does not tell it again.
   * Called synchronously and never awaited; it must not throw.
   */
  readonly onSubmissionFailure?: (failure: SubmissionFailure) => void;
}

/**
 * A submission the registry failed (SUBMISSION_WRITE_FAILED: a store refused its files for good, or they
 * could not be rendered; SUBMISSION_UNREADABLE: checking it threw what nothing expected) or could not read
 * (UPLOAD_UNREADABLE: the store lists it but will not give its bytes), as `onSubmissionFailure` is told of it.
 */
export interface SubmissionFailure {
  /** The upload's key under `incoming/`. */
  readonly submission: string;
  /** Its id: its outcome is `status/<id>.json`. */
  readonly id: string;
  /** The code of the problem its outcome records. */
  readonly code: Extract<
    ProblemCode,
    'SUBMISSION_WRITE_FAILED' | 'SUBMISSION_UNREADABLE' | 'UPLOAD_UNREADABLE' | 'LOGGED_ENTRY_VOIDED'
  >;
  /** What failed, as it was thrown (a StoreError, with the SDK's error as its `cause`). */
  readonly error: unknown;
}

/**
 * The steps of a batch, each told once it ends: every upload read, inspected, judged and its version's
 * files written (`judged`); the changed plugins' documents folded and rendered (`rendered`); the actions'
 * envelopes, the log entries and the markers written (`logged`); the plugin documents signed, and their
 * writes (documents, signatures, pages) begun (`plugin-documents`); those writes ended, and the
 * registry-wide documents and the snapshot written after them, or nothing when nothing changed
 * (`committed`); the outcomes recorded and the uploads moved out of `incoming/` (`outcomes`).
 */
export type BatchStep = 'judged' | 'rendered' | 'logged' | 'plugin-documents' | 'committed' | 'outcomes';

export interface BatchResult {
  readonly outcomes: readonly SubmissionOutcome[];
  /** The new snapshot generation, or null when nothing was rebuilt (e.g. every submission rejected). */
  readonly generation: number | null;
  readonly changedPlugins: readonly string[];
  /** Mutable site keys this batch rewrote: what a CDN must invalidate (immutable files never are). */
  readonly invalidate: readonly string[];
  /** Submissions left in incoming/ for the next batch because of `maxBatchBytes` or `maxBatchUploads`. */
  readonly leftInIncoming: number;
  /** The index documents lag this batch (`deferIndexes`): `flushIndexes` renders them. */
  readonly indexesPending: boolean;
}

/** Past how many bytes together the index documents are streamed (`streamIndexesOverBytes`, else the default). */
export function streamThresholdOf(ctx: Pick<PipelineContext, 'streamIndexesOverBytes'>): number {
  return ctx.streamIndexesOverBytes ?? STREAM_THRESHOLD_BYTES;
}

/** The registry as its pages and index documents name it. */
export function identityOf(config: RegistryConfig): RegistryIdentity {
  return {
    name: config.name,
    url: config.url,
    ...(config.description ? { description: config.description } : {}),
  };
}
