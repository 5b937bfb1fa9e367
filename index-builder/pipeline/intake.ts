/**
 * Taking a batch from the intake store: which uploads, in what order, and how many bytes. Nothing here
 * judges an upload; it is only read (or, when too large to read, hashed as a stream) and named.
 */
import { bundleSizeProblem, DEFAULT_BUNDLE_LIMITS } from '../bundle.ts';
import { createSha256, sha256Hex } from '../digest.ts';
import { type Problem, problem, StoreError } from '../errors.ts';
import { INCOMING_PREFIX, submissionIdFromDigest, unreadableSubmissionId } from '../layout.ts';
import { mapLimited } from '../limited.ts';
import { type ListedObject, listAll, type Store } from '../store.ts';
import type { PipelineContext } from './context.ts';
import { pendingSubmissions } from './log-writer.ts';
import { turn } from './site-writer.ts';

/** Uploads read at once: hides storage latency (an S3 GET is tens of milliseconds). */
const READ_CONCURRENCY = 8;
/** How far ahead of the clock a file's time may be and still be a write under way (clocks differ a little). */
const SKEW_MS = 1000;

/** One upload taken into a batch, named by its key and digest. */
export type Upload =
  | {
      readonly kind: 'read';
      readonly key: string;
      readonly id: string;
      readonly sha256: string;
      readonly bytes: Uint8Array;
      /** Its ETag as read: it leaves `incoming/` only while it has this one (`moveObject`). */
      readonly etag: string;
    }
  | {
      /** Refused by its size, never read into memory: moved out of incoming/ as a stream. */
      readonly kind: 'too-large';
      readonly key: string;
      readonly id: string;
      readonly sha256: string;
      /** Its ETag as hashed: it leaves `incoming/` only while it has this one. */
      readonly etag: string;
      readonly problem: Problem;
    }
  | {
      /**
       * Listed, but its bytes are not the store's to give until someone changes it (StoreError
       * STORE_UNREADABLE: on S3, archived, or encrypted with a key the registry may not use), or too large
       * to be streamed at all (past `maxStreamedBytes`). Refused with what mends it, and left in incoming/:
       * what cannot be read cannot be copied to rejected/ either, and a delete alone would lose it. Named by
       * its key (`unreadableSubmissionId`); no digest.
       */
      readonly kind: 'unreadable';
      readonly key: string;
      readonly id: string;
      readonly problem: Problem;
    };

/**
 * Waiting submissions in upload order (then by key), so when two uploads claim the same version the earlier
 * one wins, whatever their names.
 */
export async function listWaiting(store: Store): Promise<ListedObject[]> {
  const listed = await listAll(store, INCOMING_PREFIX);
  listed.sort(
    (a, b) =>
      a.lastModified.getTime() - b.lastModified.getTime() || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0),
  );
  return listed;
}

/**
 * The most bytes of an upload too large to read whole that is still streamed (hashed, then copied to
 * rejected/): `maxStreamedBytes`, every upload when undefined. One larger is refused unread.
 */
function maxStreamedBytes(ctx: PipelineContext): number {
  return ctx.maxStreamedBytes ?? Number.POSITIVE_INFINITY;
}

/**
 * An upload refused by its size without being read: too large to stream (`maxStreamedBytes`). Named by its
 * key and ETag (`unreadableSubmissionId`), as its uploader can name it and no one else.
 */
async function notStreamed(
  ctx: PipelineContext,
  key: string,
  size: number,
  listed?: Pick<Waiting, 'etag'>,
): Promise<Upload> {
  const tooLarge = bundleSizeProblem(size, ctx.bundleLimits);
  return {
    kind: 'unreadable',
    key,
    id: unreadableSubmissionId(key, await etagOf(ctx, key, listed?.etag)),
    problem: problem(
      'BUNDLE_TOO_LARGE',
      'bundle:',
      `the bundle is too large, and too large for the registry to move to rejected/: it stays in incoming/ until it is deleted`,
      { expected: tooLarge?.expected ?? `at most ${maxUploadBytes(ctx)} bytes`, found: `${size} bytes` },
    ),
  };
}

/** Which uploads a batch takes, decided on their sizes before any is read. */
export interface BatchPlan {
  /**
   * In upload order; one `tooLarge` is refused by its size and never read whole, and one `notStreamed` (its
   * size) is not read at all.
   */
  readonly taken: readonly {
    readonly key: string;
    readonly tooLarge?: Problem;
    readonly notStreamed?: number;
    /**
     * Its listing's entry, whose ETag names its outcome should the registry judge it unread: read only
     * then, since the filesystem store hashes an upload's bytes for it when it is first read (within its
     * IDENTITY_ETAG_BYTES: one larger, and so one too large to stream, it names by its identity, unread).
     */
    readonly listed?: Pick<Waiting, 'etag'>;
  }[];
  /** Uploads left in incoming/ for the next batch because of `maxBatchBytes` or `maxBatchUploads`. */
  readonly leftInIncoming: number;
}

interface Waiting {
  readonly key: string;
  readonly size?: number;
  readonly etag?: string;
  readonly lastModified?: Date;
}

/**
 * `planBatch`'s choice over `waiting`, in upload order; the bounds (`maxBatchBytes`, `maxBatchUploads`) hold
 * from past index `through` only. `cut`: the index of the first upload the bounds left, if they left one.
 */
function planWaiting(
  ctx: PipelineContext,
  waiting: readonly Waiting[],
  through: number,
): BatchPlan & { readonly cut?: number } {
  const taken: { key: string; tooLarge?: Problem; notStreamed?: number; listed?: Waiting }[] = [];
  const maxBatchBytes = ctx.maxBatchBytes ?? Number.POSITIVE_INFINITY;
  const maxBatchUploads = ctx.maxBatchUploads ?? Number.POSITIVE_INFINITY;
  // In upload order, the last modified last: once one is too recent, so is every later one. A time ahead
  // of the clock was set by hand (an archive's, a copy's that keeps times), not by a write under way.
  const now = Date.now();
  const settledBy = ctx.settledForMs === undefined ? undefined : now - ctx.settledForMs;
  let batchBytes = 0;
  // Taken to be read (whole or as a stream): at least one is, whatever its bytes; one not streamed is not.
  let reading = 0;
  let leftInIncoming = 0;
  let cut: number | undefined;
  for (const [index, listed] of waiting.entries()) {
    // Not its ETag: read, it hashes a small upload in the filesystem store (a read more of every upload).
    const { key, size, lastModified } = listed;
    // Met unreadable by an earlier batch of the caller's: neither taken nor waiting (it decides no conflict).
    if (ctx.passOver?.has(key)) continue;
    const modified = lastModified?.getTime();
    if (
      settledBy !== undefined &&
      modified !== undefined &&
      modified > settledBy &&
      modified <= now + SKEW_MS
    ) {
      leftInIncoming += 1;
      continue;
    }
    const bounded = index > through;
    // Once one submission waits, every later one waits too: upload order decides conflicts.
    if (leftInIncoming > 0) {
      leftInIncoming += 1;
      continue;
    }
    if (bounded && (taken.length >= maxBatchUploads || (reading > 0 && batchBytes >= maxBatchBytes))) {
      cut = index;
      leftInIncoming += 1;
      continue;
    }
    // A folder marker (S3 consoles make them) is not an upload; anything else is, whatever its name.
    if (key.endsWith('/') && size === 0) continue;
    if (size === undefined) continue; // already handled by an earlier (redelivered) run
    const tooLarge = bundleSizeProblem(size, ctx.bundleLimits);
    if (tooLarge && size > maxStreamedBytes(ctx)) {
      // Not read at all: it costs the batch nothing.
      taken.push({ key, tooLarge, notStreamed: size, listed });
      continue;
    }
    // One too large to read whole is still streamed twice (hashed, then copied to rejected/): its bytes
    // count as any other's. A batch took every one waiting, and a flood of them outlasted the function.
    if (bounded && reading > 0 && batchBytes + size > maxBatchBytes) {
      cut = index;
      leftInIncoming += 1;
      continue;
    }
    batchBytes += size;
    reading += 1;
    taken.push(tooLarge ? { key, tooLarge, listed } : { key, listed });
  }
  return { taken, leftInIncoming, ...(cut !== undefined ? { cut } : {}) };
}

/**
 * The index of the last upload from `from` (and before `until`) that an intent record may name (a run
 * that died logged an entry for it), or -1. Only a dead run leaves a record, so this is one listing, and
 * nothing more, nearly always. An id names its upload by its key and the start of its bytes' digest,
 * unknown before it is read: an upload whose key gives the id but for those 12 digits is taken for it
 * (another of the same name taken with it costs the batch one upload more, no more).
 */
async function lastLoggedFor(
  ctx: PipelineContext,
  waiting: readonly Waiting[],
  from: number,
  until: number,
): Promise<number> {
  const shapes = new Set<string>();
  for (const id of await pendingSubmissions(ctx.intake)) for (const shape of idShapes(id)) shapes.add(shape);
  if (shapes.size === 0) return -1;
  let last = -1;
  for (let index = from; index < Math.min(until, waiting.length); index++)
    if (shapes.has(submissionIdFromDigest((waiting[index] as Waiting).key, ANY_DIGEST))) last = index;
  return last;
}

/** The digest an id's shape is taken with (`idShapes`). */
const ANY_DIGEST = '0'.repeat(64);

/**
 * The ids `id` would be with its digest's 12 digits as `ANY_DIGEST`'s, by where they may stand: last (a plain
 * name's), or before the key's own 8 (`submissionIdFromDigest`).
 */
function idShapes(id: string): string[] {
  const shapes: string[] = [];
  const zero = ANY_DIGEST.slice(0, 12);
  if (/-[0-9a-f]{12}$/.test(id)) shapes.push(`${id.slice(0, -12)}${zero}`);
  if (/-[0-9a-f]{12}-[0-9a-f]{8}$/.test(id)) shapes.push(`${id.slice(0, -21)}${zero}${id.slice(-9)}`);
  return shapes;
}

/**
 * Plans one batch (by default everything under `incoming/`, or what the context's `waiting` lists, else the
 * named keys): in upload order, until
 * the uploads' bytes pass `maxBatchBytes` (at least one is always taken) or their count `maxBatchUploads`.
 * An upload larger than the bundle limit is taken, to be refused. Nothing is read yet; an inspector is told how many are coming.
 */
export async function planBatch(ctx: PipelineContext, keys?: readonly string[]): Promise<BatchPlan> {
  // A listing gives each upload's size; named keys are asked for theirs (all at once, in bounded flight).
  const waiting: readonly Waiting[] = keys
    ? await mapLimited(keys, READ_CONCURRENCY, async (key) => {
        const info = await ctx.intake.head(key);
        if (!info) return { key };
        // Its ETag read only if asked for (planWaiting's `listed`): the filesystem store hashes a small one.
        return {
          key,
          size: info.size,
          get etag() {
            return info.etag;
          },
        };
      })
    : (ctx.waiting ?? (await listWaiting(ctx.intake)));
  let plan = planWaiting(ctx, waiting, -1);
  // Cut short by its bounds, a batch takes every upload a run that died logged for (an intent record names
  // it) all the same: the retry then judges that run's batch whole, as it judged it. Rounds differ in what
  // they pass over (`passOver`: an invocation's later rounds pass over what its first met unreadable, the
  // retry's first round takes those again), and a retry that left part of that batch for a later one took
  // the later actions' records for newer statements, leaving the earlier actions out for good (an advisory
  // and its withdrawal, the withdrawal left, came back as no advisory at all).
  if (!keys && plan.cut !== undefined) {
    // Within as many uploads past the cut as the batch took: the retry took no more of those the dead run
    // passed over in their place. So a record left for good (its upload deleted unfinished) and an upload
    // named alike at the end of a flood do not lift the bounds.
    const through = await lastLoggedFor(ctx, waiting, plan.cut, plan.cut + plan.taken.length);
    if (through >= plan.cut) plan = planWaiting(ctx, waiting, through);
  }
  const { taken, leftInIncoming } = plan;
  // Reading them takes a while (10,000 uploads, about a second): an inspector may get ready meanwhile.
  ctx.inspector?.prepare?.(taken.length);
  return { taken, leftInIncoming };
}

/**
 * How long reading may hold the thread before it lets the event loop turn. A local store reads
 * synchronously, so without a turn 10,000 uploads would be read in one task of a second and more, and
 * nothing handed on meanwhile (`onRead`: to inspector threads, by messages sent once a turn) would go.
 */
const READ_SLICE_MS = 4;

/**
 * Reads the uploads a plan took, in its order (an upload gone meanwhile is left out: an earlier,
 * redelivered run handled it), and hands each to `onRead` as soon as it is read, with its place in the plan
 * (undefined for one gone), so its inspection and its judging can start while the rest are read. An upload
 * too large is not read: it is hashed as a stream, for its id. Once `signal` is aborted (the batch failed),
 * no further upload is read.
 */
export async function readBatch(
  ctx: PipelineContext,
  plan: BatchPlan,
  onRead?: (upload: Upload | undefined, index: number) => void,
  signal?: AbortSignal,
): Promise<Upload[]> {
  let slice = performance.now();
  // Every reader waits for the same turn (one that went on would read the rest within this task).
  let turning: Promise<void> | undefined;
  const read = await mapLimited(
    plan.taken,
    READ_CONCURRENCY,
    async ({ key, tooLarge, notStreamed: size, listed }, index): Promise<Upload | undefined> => {
      if (!turning && performance.now() - slice > READ_SLICE_MS)
        turning = turn().then(() => {
          turning = undefined;
          slice = performance.now();
        });
      if (turning) await turning;
      const upload = signal?.aborted
        ? undefined
        : size !== undefined
          ? await notStreamed(ctx, key, size, listed)
          : await readUpload(ctx, key, tooLarge, listed);
      onRead?.(upload, index);
      return upload;
    },
  );
  return read.filter((upload): upload is Upload => upload !== undefined);
}

/**
 * One upload read (or, too large, hashed as a stream); undefined when it is gone. One the store cannot read
 * until someone changes it is an upload too, refused (`unreadable`): thrown, it failed every batch, and the
 * queue brought it back until its dead-letter queue, holding every other upload behind it. Any other read
 * failure (the store unavailable) still fails the batch, to be retried.
 */
async function readUpload(
  ctx: PipelineContext,
  key: string,
  tooLarge?: Problem,
  listed?: Pick<Waiting, 'etag'>,
): Promise<Upload | undefined> {
  try {
    return await readUploadBytes(ctx, key, tooLarge);
  } catch (error) {
    if (!(error instanceof StoreError && error.code === 'STORE_UNREADABLE')) throw error;
    const id = unreadableSubmissionId(key, await etagOf(ctx, key, listed?.etag));
    // The store's message names where it read (a bucket, a path): the operator's, for its log. The outcome
    // says what happened by the store's word for it (S3's error code) and what mends it.
    ctx.onSubmissionFailure?.({ submission: key, id, code: 'UPLOAD_UNREADABLE', error });
    return {
      kind: 'unreadable',
      key,
      id,
      problem: problem(
        'UPLOAD_UNREADABLE',
        'bundle:',
        'the registry cannot read this upload, which stays in incoming/ until it can',
        {
          expected: error.remedy ?? 'an upload the registry can read',
          ...(error.reason !== undefined ? { found: error.reason } : {}),
        },
      ),
    };
  }
}

async function readUploadBytes(
  ctx: PipelineContext,
  key: string,
  tooLarge?: Problem,
): Promise<Upload | undefined> {
  if (tooLarge) return hashTooLarge(ctx, key, tooLarge);
  // Read whole only within the bundle limit, as the store finds the object when it reads it: the plan went by
  // the listing's size, and an upload replaced since by a larger one (anyone who can upload may race a
  // batch so) was read whole, gigabytes into a function of a few, which was killed each time.
  const object = await ctx.intake.get(key, { maxBytes: maxUploadBytes(ctx) }).catch((error: unknown) => {
    if (error instanceof StoreError && error.code === 'STORE_TOO_LARGE') return 'too-large' as const;
    throw error;
  });
  if (object === 'too-large') return hashTooLarge(ctx, key);
  if (!object) return undefined; // already handled by an earlier (redelivered) run
  const sha256 = sha256Hex(object.body);
  return {
    kind: 'read',
    key,
    id: submissionIdFromDigest(key, sha256),
    sha256,
    bytes: object.body,
    // Asked for only when the store cannot move it: the local store hashes a file's ETag when first asked.
    get etag() {
      return object.etag;
    },
  };
}

/**
 * An upload too large to read whole, hashed as a stream for its id and refused by its size: `tooLarge` as
 * planned, else as its stream's size says (one found larger when read than when listed). One within the
 * limit by then (put back smaller again) is kept from the stream and read as any other, as long as the
 * stream stays within it.
 */
async function hashTooLarge(
  ctx: PipelineContext,
  key: string,
  tooLarge?: Problem,
): Promise<Upload | undefined> {
  const stream = await ctx.intake.getStream(key);
  if (!stream) return undefined;
  // Listed within it, and put back larger since (anyone who can upload may race a batch so).
  if (stream.size > maxStreamedBytes(ctx)) {
    stream.cancel();
    return notStreamed(ctx, key, stream.size, stream);
  }
  const { etag } = stream;
  const hash = createSha256();
  const limit = maxUploadBytes(ctx);
  let refusal = tooLarge ?? bundleSizeProblem(stream.size, ctx.bundleLimits);
  const kept: Uint8Array[] = [];
  let size = 0;
  try {
    for await (const chunk of stream.body) {
      hash.update(chunk);
      size += chunk.byteLength;
      if (refusal) continue;
      if (size > limit) {
        refusal = bundleSizeProblem(size, ctx.bundleLimits);
        kept.length = 0;
      } else kept.push(chunk);
    }
  } finally {
    stream.cancel();
  }
  const sha256 = hash.hex();
  const id = submissionIdFromDigest(key, sha256);
  if (refusal) return { kind: 'too-large', key, id, sha256, etag, problem: refusal };
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of kept) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  return { kind: 'read', key, id, sha256, bytes, etag };
}

/**
 * The ETag of the upload at `key`: as listed (`known`), else as the store's head gives it. One the store will
 * not give even so (a plan of named keys, the HEAD refused as the GET was: on S3, SSE-C) is the empty one, `""`,
 * and the outcome's id is then one anyone who guesses the key computes, as every such id was before. The
 * publish function plans from a listing, which gives every object's ETag. Neither store reads an upload too
 * large to stream for it: S3's listing and HEAD give it, and the filesystem store makes one that large from
 * the file's identity (`identityEtag` in adapters/fs-store.ts), new for every upload under the key, as S3's.
 */
async function etagOf(ctx: PipelineContext, key: string, known: string | undefined): Promise<string> {
  if (known !== undefined) return known;
  return (await ctx.intake.head(key).catch(() => undefined))?.etag ?? '""';
}

/** The most bytes of an upload read whole: the bundle limit. */
function maxUploadBytes(ctx: PipelineContext): number {
  return ctx.bundleLimits?.maxCompressedBytes ?? DEFAULT_BUNDLE_LIMITS.maxCompressedBytes;
}

/**
 * A batch's uploads in plan order as they are read (`put` with each one's place, undefined for one gone),
 * for the judging to take each as soon as it and those before it are read. Iterated once; a judging that
 * stops before the last (the batch failed) aborts `signal`, and the reading it is given stops.
 */
export class UploadsInOrder implements AsyncIterable<Upload> {
  readonly #read = new Map<number, Upload | undefined>();
  readonly #stop = new AbortController();
  #next = 0;
  #failure: { readonly error: unknown } | undefined;
  #wake: (() => void) | undefined;

  constructor(private readonly count: number) {}

  get signal(): AbortSignal {
    return this.#stop.signal;
  }

  put(index: number, upload: Upload | undefined): void {
    this.#read.set(index, upload);
    this.#notify();
  }

  /** The reading failed: the iteration throws `error` once it reaches what was not read. */
  fail(error: unknown): void {
    this.#failure ??= { error };
    this.#notify();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Upload> {
    try {
      while (this.#next < this.count) {
        if (!this.#read.has(this.#next)) {
          if (this.#failure) throw this.#failure.error;
          await new Promise<void>((resolve) => {
            this.#wake = resolve;
          });
          continue;
        }
        const upload = this.#read.get(this.#next);
        this.#read.delete(this.#next++);
        if (upload) yield upload;
      }
    } finally {
      if (this.#next < this.count) this.#stop.abort();
    }
  }
}
