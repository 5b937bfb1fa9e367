/**
 * The publish function, built from its dependencies so tests can run it against a local S3 server with named
 * SDK mocks for what cannot run here. The Lambda entry point (publish.ts) only wires real clients and the
 * environment into it.
 */
import type { CloudFrontClient } from '@aws-sdk/client-cloudfront';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SQSClient } from '@aws-sdk/client-sqs';
import {
  MAX_ANNOUNCEMENTS_AGAIN,
  minSnapshotTtlSeconds,
  PUBLISH_MAX_RECEIVES,
} from '../adapters/publish-queue.ts';
import { S3Store } from '../adapters/s3-store.ts';
import { DEFAULT_BUNDLE_LIMITS } from '../index-builder/bundle.ts';
import { systemClock } from '../index-builder/clock.ts';
import {
  DEFAULT_SNAPSHOT_TTL_SECONDS,
  parseRegistryConfig,
  type RegistryConfig,
  readConfigJson,
  withDeployedTrustList,
} from '../index-builder/config.ts';
import {
  ConfigError,
  PlugindexError,
  type Problem,
  problem,
  problemRef,
  StoreError,
  SubmissionError,
  TrustError,
} from '../index-builder/errors.ts';
import { INCOMING_PREFIX, SNAPSHOT_KEY } from '../index-builder/layout.ts';
import type { SnapshotDocument } from '../index-builder/model.ts';
import {
  type BatchResult,
  flushIndexes,
  listWaiting,
  type PipelineContext,
  processSubmissions,
  rebuildRegistry,
  refreshSnapshot,
  type StuckEntryNotice,
  type SubmissionOutcome,
} from '../index-builder/pipeline/index.ts';
import {
  ROTATION_UPLOADS_PREFIX,
  type RotationOutcome,
  rotateRegistryKey,
  rotationOutcomeKey,
} from '../index-builder/pipeline/rotate.ts';
import { readJson } from '../index-builder/pipeline/site-writer.ts';
import { MAX_ROTATION_BYTES, type ReadRotation, readSignedRotation } from '../index-builder/rotation.ts';
import { CACHE_PRIVATE, type ListedObject } from '../index-builder/store.ts';
import { checkConfiguredKeysKept } from './checked-keys.ts';
import { invalidateKeys } from './cloudfront-invalidator.ts';
import { type FunctionConfig, PUBLISHERS_FILE } from './env.ts';
import { AwsAdapterError } from './errors.ts';
import {
  isSqsBatch,
  parseObjectCreated,
  queuedMessages,
  rotationRequests,
  wantsRebuild,
  wantsRefresh,
} from './events.ts';
import {
  CONFIG_REFUSED_LOG,
  errorFields,
  INVALIDATION_FAILED_LOG,
  LOGGED_ENTRY_STUCK_LOG,
  type Logger,
} from './logger.ts';
import { announceAgain, type HeldMessage, releaseMessages } from './message-visibility.ts';
import type { SignerSource } from './secrets.ts';

export interface HandlerDeps {
  readonly config: FunctionConfig;
  readonly s3: S3Client;
  readonly cloudfront: CloudFrontClient;
  /** The registry's signing key (Secrets Manager); `fresh` reads the secret again past any cache. */
  readonly signer: SignerSource;
  readonly logger: Logger;
  /**
   * The SQS client that makes the messages answered failed for uploads left visible again at once
   * (functions/message-visibility.ts), on `config.queueUrl`. Without either (tests, a direct invocation),
   * they come back after the queue's visibility timeout.
   */
  readonly sqs?: SQSClient;
  /** `MAX_BATCH_BYTES` unless a test lowers it (to make a batch of one upload without 512 MiB of them). */
  readonly maxBatchBytes?: number;
  /** `MAX_BATCH_UPLOADS` unless a test lowers it (rounds of a few uploads). */
  readonly maxBatchUploads?: number;
  /** The bundle limit's compressed bytes, unless a test lowers it (an upload too large without gigabytes). */
  readonly maxCompressedBytes?: number;
}

/**
 * Memory bounds for a 2 GB function: a bundle may inflate to 512 MiB, and a batch stops taking uploads
 * past 512 MiB of them (the rest wait for the next round).
 */
const LAMBDA_BUNDLE_LIMITS = { maxUncompressedBytes: 512 * 1024 * 1024 };
const MAX_BATCH_BYTES = 512 * 1024 * 1024;
/**
 * And past 2,000 uploads, whatever their bytes: a batch records its outcomes at its end, and one of every
 * upload waiting (some hundreds of thousands of junk uploads of a few bytes, a few dollars of requests)
 * outlasted the function's 15 minutes on every delivery, so nothing was ever published again.
 */
const MAX_BATCH_UPLOADS = 2000;
const MAX_ROUNDS = 10;
/** How many bundle limits' bytes of an upload are still streamed to be refused (`maxStreamedBytes`). */
const STREAMED_BUNDLES = 4;

/**
 * What the Lambda runtime tells an invocation of its time (its context's `getRemainingTimeInMillis`); tests
 * give their own. Without it (a caller with no deadline) rounds are bounded by MAX_ROUNDS alone.
 */
export interface InvocationTime {
  getRemainingTimeInMillis(): number;
}

/**
 * A round is started only with this much time left besides what follows the last round: the longest round
 * of the invocation so far, twice (the next has the same bounds, but may take the 512 MiB of large uploads
 * after a round of 2,000 small ones), and never under three minutes (a round at its bounds reads, judges and
 * moves 2,000 uploads or 512 MiB, writing each one's outcome). A round cut off by the function's timeout is
 * lost whole (its outcomes are recorded at its end) and made again on the next delivery.
 */
const MIN_ROUND_RESERVE_MS = 3 * 60_000;
/** And what follows the last round: the index documents' one rendering (flushIndexes), the invalidation. */
const AFTER_ROUNDS_RESERVE_MS = 2 * 60_000;

/** The time a round needs left before it starts (MIN_ROUND_RESERVE_MS), given the longest one so far. */
export function roundReserveMs(longestRoundMs: number): number {
  return Math.max(2 * longestRoundMs, MIN_ROUND_RESERVE_MS) + AFTER_ROUNDS_RESERVE_MS;
}

/**
 * One store per client and bucket for the container's life: what a warm process keeps of the catalog (its
 * bins, its map of lines: catalog.ts) is kept per store, so a store made per invocation would read every
 * catalog bin again at each one (at 100,000 plugins, 340 MB).
 */
const stores = new WeakMap<HandlerDeps['s3'], Map<string, S3Store>>();

function storeFor(client: HandlerDeps['s3'], bucket: string): S3Store {
  let byBucket = stores.get(client);
  if (!byBucket) {
    byBucket = new Map();
    stores.set(client, byBucket);
  }
  let store = byBucket.get(bucket);
  if (!store) {
    store = new S3Store({ client, bucket });
    byBucket.set(bucket, store);
  }
  return store;
}

/**
 * The context an invocation runs with, and the config's refusals (CONFIG_INVALID: its snapshot lifetime,
 * `snapshotTtlRefusal`, then its trusted keys, `checkConfiguredKeys`), none when it holds: returned, not
 * thrown, so the caller may still refresh the snapshot (which judges no upload and needs no trusted key)
 * while it refuses everything else. With the lifetime refused, the context's is the least the schedule
 * allows (two refreshes), what that refresh signs with. A config that cannot be read at all (not JSON, or
 * refused by `parseRegistryConfig` at any field) is `unread`, the only refusal: the context's config is then
 * none of the operator's (`UNREAD_CONFIG`), and the refresh signs the published snapshot as it is
 * (`refreshSnapshot`'s `asPublished`), reading nothing of it.
 */
async function pipelineContext(deps: HandlerDeps): Promise<{
  readonly ctx: PipelineContext;
  readonly refused: readonly ConfigError[];
  readonly unread: boolean;
}> {
  const intake = storeFor(deps.s3, deps.config.intakeBucket);
  const stored = await intake.get(deps.config.configKey);
  const defaults = deps.config.defaults;
  if (!stored && (!defaults.name || !defaults.url)) {
    throw new AwsAdapterError(
      'ENV_INVALID',
      `no registry config at s3://${deps.config.intakeBucket}/${deps.config.configKey}, and no REGISTRY_NAME/REGISTRY_URL defaults`,
    );
  }
  const where = stored
    ? `registry config s3://${deps.config.intakeBucket}/${deps.config.configKey}`
    : 'registry defaults (SNAPSHOT_TTL_SECONDS, else the default)';
  const read = readRegistryConfig(deps, stored?.body, where);
  if (read instanceof ConfigError)
    return { ctx: await contextWith(deps, intake, UNREAD_CONFIG), refused: [read], unread: true };
  const parsed = read;
  const ttlRefused = snapshotTtlRefusal(deps.config, parsed.snapshotTtlSeconds, where);
  // Refused, the lifetime is never signed: the refresh that alone proceeds signs the least one accepted, two
  // refreshes of the schedule (`snapshotTtlRefusal` refuses only where the stack has one). Nearest what the
  // operator wrote (shorter), and the tightest bound on a freeze the schedule allows: the stack's own
  // lifetime (a week by default) would leave each snapshot signed meanwhile replayable that long.
  const refresh = deps.config.snapshotRefreshSeconds;
  const registryConfig =
    ttlRefused && refresh !== undefined
      ? { ...parsed, snapshotTtlSeconds: minSnapshotTtlSeconds(refresh) }
      : parsed;
  // A trusted key no signature by which is taken (the config object edited by hand) fails every invocation
  // that judges anything, as a bad lifetime does: before anything is read or signed, the uploads left in
  // incoming/ for the queue's retries (its alarms fire), where it was taken and each upload it signed
  // refused. The keys are the deployed trust list's when there is one (refused at synth already:
  // infra/publishers.ts). Not the schedule's refresh alone (the caller decides): it judges nothing, and
  // refused too it let the snapshot expire until someone mended the config.
  // Only the entries not checked before (`checkConfiguredKeysKept`: this container's, else state/'s list).
  const keysRefused = await checkConfiguredKeysKept(
    intake,
    registryConfig,
    deps.config.publishers === undefined ? where : `the deployed trust list (${PUBLISHERS_FILE})`,
    deps.logger,
  ).then(
    () => undefined,
    (error: unknown) => {
      if (error instanceof ConfigError && error.code === 'CONFIG_INVALID') return error;
      throw error;
    },
  );
  return {
    ctx: await contextWith(deps, intake, registryConfig),
    refused: [ttlRefused, keysRefused].filter((e) => e !== undefined),
    unread: false,
  };
}

/**
 * The config object (or the defaults, `stored` undefined) as the registry's config, or its refusal: not
 * JSON, or refused at any field (`parseRegistryConfig`), ConfigError CONFIG_INVALID returned, not thrown,
 * for the caller's refresh. Any other failure is thrown.
 */
function readRegistryConfig(
  deps: HandlerDeps,
  stored: Uint8Array | undefined,
  where: string,
): RegistryConfig | ConfigError {
  const defaults = deps.config.defaults;
  try {
    const base = stored ? (readConfigJson(new TextDecoder().decode(stored), where) as object) : defaults;
    const trusted = withDeployedTrustList(base, deps.config.publishers, deps.config.operators);
    // With a trust list deployed, access to the bucket alone must not widen trust, and the registry's URL is
    // part of it: every action names the registry it is for, and is refused by any other. Taken from the
    // config object, it let anyone who may write that object name another registry (say a staging one
    // sharing an operator key), and have the actions signed for it, published there, applied here.
    const config =
      deps.config.publishers !== undefined && defaults.url !== undefined
        ? { ...trusted, url: defaults.url }
        : trusted;
    return parseRegistryConfig(config);
  } catch (error) {
    if (!(error instanceof ConfigError && error.code === 'CONFIG_INVALID')) throw error;
    // parseRegistryConfig names the field alone (`registry config /policy: ...`): say which object, as
    // every other refusal of it does (`snapshotTtlRefusal`, `checkConfiguredKeys`).
    if (error.message.startsWith(where)) return error;
    const field = error.message.replace(/^registry config /, '');
    return new ConfigError('CONFIG_INVALID', `${where} ${field}`, { cause: error });
  }
}

/**
 * The config a context holds while the registry's cannot be read: none of the operator's, read by nothing.
 * Only the refresh runs with it, which signs the published snapshot as it is (its registry, its lifetime:
 * `refreshSnapshot`'s `asPublished`); were anything to judge with it, it trusts no key.
 */
const UNREAD_CONFIG: RegistryConfig = {
  name: 'unread',
  url: 'https://unread.invalid',
  policy: 'restricted',
  ownership: 'first-come',
  publishers: [],
  operators: [],
  snapshotTtlSeconds: DEFAULT_SNAPSHOT_TTL_SECONDS,
};

/** The context an invocation runs with, over `config`. */
async function contextWith(
  deps: HandlerDeps,
  intake: S3Store,
  config: RegistryConfig,
): Promise<PipelineContext> {
  // The registry's own key is checked apart, when loaded (signing.ts `createSigner`: expired, or one no
  // signature by which is taken, KEY_UNTRUSTED): a key refused there fails every invocation, the refresh too.
  return {
    intake,
    site: storeFor(deps.s3, deps.config.siteBucket),
    signer: await deps.signer(),
    clock: systemClock,
    config,
    bundleLimits:
      deps.maxCompressedBytes === undefined
        ? LAMBDA_BUNDLE_LIMITS
        : { ...LAMBDA_BUNDLE_LIMITS, maxCompressedBytes: deps.maxCompressedBytes },
    maxBatchBytes: deps.maxBatchBytes ?? MAX_BATCH_BYTES,
    maxBatchUploads: deps.maxBatchUploads ?? MAX_BATCH_UPLOADS,
    // Streamed twice (hashed, then copied to rejected/), an upload of hundreds of gigabytes (S3 takes 5 TB
    // under one key) outlasted the function's 15 minutes on every delivery: past four times the bundle
    // limit one is refused unread, and passed over by the invocation's later rounds (`passOver`).
    maxStreamedBytes:
      STREAMED_BUNDLES * (deps.maxCompressedBytes ?? DEFAULT_BUNDLE_LIMITS.maxCompressedBytes),
    // The outcome says what happened, in stable terms; what failed, whole (S3's message, the bucket), is here.
    onSubmissionFailure: ({ submission, id, code, error }) =>
      deps.logger.error('submission failed', {
        submission: id,
        key: submission,
        code,
        ...errorFields(error),
      }),
  };
}

/**
 * The refusal of a snapshot lifetime under two refreshes of the stack's schedule (`minSnapshotTtlSeconds`),
 * or undefined: clients would see the snapshot expired between them, and only the stack knows the schedule
 * (the config object is the operator's, read at run time). Refused rather than replaced silently by another
 * lifetime, as every other bad value of the config object is: a lifetime other than the one the operator
 * wrote is found only by the clients it fails. Every invocation that judges anything throws it, before
 * anything is read or signed, so a publish's uploads stay in incoming/ and the queue retries them (its alarms
 * fire); the schedule's refresh alone proceeds with two refreshes' lifetime, logging it as an error (and an
 * alarm counts that line): refused too, it let the snapshot expire until the config was mended.
 * @returns ConfigError CONFIG_INVALID naming `where`, /snapshotTtlSeconds, its value and the least
 */
function snapshotTtlRefusal(settings: FunctionConfig, ttl: number, where: string): ConfigError | undefined {
  const refresh = settings.snapshotRefreshSeconds;
  if (refresh === undefined || ttl >= minSnapshotTtlSeconds(refresh)) return undefined;
  return new ConfigError(
    'CONFIG_INVALID',
    `${where} /snapshotTtlSeconds: ${ttl} is too short, expected at least ${minSnapshotTtlSeconds(refresh)} (two refreshes: the stack's schedule re-signs the snapshot every ${refresh} s, and clients would see it expired between them); nothing is published until it is mended, the uploads wait in incoming/, and the schedule's refresh alone re-signs the snapshot, for ${minSnapshotTtlSeconds(refresh)} s`,
  );
}

/**
 * Invalidates what the invocation rewrote. A failure is logged, not thrown: everything is committed by
 * then, and a redelivered message finds nothing to invalidate, so a throw bought no invalidation, only the
 * message back after the queue's visibility timeout (90 minutes), the one message group held till then:
 * CloudFront throttling a burst of publishes (TooManyInvalidationsInProgress) stalled every upload behind
 * it. What stays cached is bounded by the documents' own max-age (60 s; five minutes at the CDN at most),
 * the manifest signatures a key rotation rewrites included (layout.ts `isManifestSignatureKey`: they have a
 * behavior of their own, infra/constructs/distribution.ts, not the year a version's other files are cached).
 */
async function invalidate(deps: HandlerDeps, keys: readonly string[]): Promise<void> {
  if (!deps.config.distributionId || keys.length === 0) return;
  try {
    const result = await invalidateKeys(keys, {
      client: deps.cloudfront,
      distributionId: deps.config.distributionId,
    });
    deps.logger.info('invalidated', {
      paths: result.paths.length,
      invalidationId: result.invalidationId,
      attempts: result.attempts,
    });
  } catch (error) {
    if (!(error instanceof AwsAdapterError)) throw error;
    deps.logger.error(INVALIDATION_FAILED_LOG, { ...errorFields(error), paths: keys.length });
  }
}

/**
 * A handler whose failure is logged as one JSON line, with its code and cause chain, then rethrown: the
 * Lambda runtime alone would log only its text, and the rethrow is what makes SQS retry the message (and
 * in the end park it in the dead-letter queue).
 */
function loggingFailure<A extends unknown[], R>(
  logger: Logger,
  message: string,
  handler: (...args: A) => Promise<R>,
): (...args: A) => Promise<R> {
  return async (...args) => {
    try {
      return await handler(...args);
    } catch (error) {
      logger.error(message, errorFields(error));
      throw error;
    }
  };
}

/**
 * What of `given` a round left for the next: its last `leftInIncoming`, those passed over (`passOver`, as the
 * round was given it) aside. A batch takes from the front of what it is given and, once one upload waits,
 * leaves every later one (upload order decides conflicts: pipeline/intake.ts `planBatch`), so the uploads it
 * took, passed over as folder markers, or found gone are all before those it left.
 */
function leftByRound(
  given: readonly ListedObject[],
  passOver: ReadonlySet<string>,
  leftInIncoming: number,
): ListedObject[] {
  const counted = given.filter(({ key }) => !passOver.has(key));
  return leftInIncoming > 0 ? counted.slice(counted.length - leftInIncoming) : [];
}

/** Whether an upload is among `waiting` (folder markers aside). */
function anyUpload(waiting: readonly ListedObject[]): boolean {
  return waiting.some(({ key }) => !key.endsWith('/'));
}

/** The key the registry publishes now (its snapshot names it), or undefined before its first publish. */
async function publishedKey(ctx: PipelineContext): Promise<string | undefined> {
  return (await readJson<SnapshotDocument>(ctx.site, SNAPSHOT_KEY))?.key_fingerprint;
}

/**
 * Publishes the rotation uploaded at `key` with the context's signer (pipeline/rotate.ts) and records its
 * outcome where `plugindex rotate-key --bucket` waits for it; returns the keys to invalidate. A refusal is
 * recorded, final like a rejected submission's, and not thrown; a store or signing failure is (retried).
 */
async function applyRotation(
  deps: HandlerDeps,
  ctx: PipelineContext,
  key: string,
): Promise<readonly string[]> {
  const processed = ctx.clock.now().toISOString();
  const refused = (problems: readonly Problem[]): RotationOutcome => ({
    rotation: key,
    status: 'rejected',
    problems,
    processed,
  });
  let outcome: RotationOutcome;
  let invalidate: readonly string[] = [];
  const info = await ctx.intake.head(key).catch((error: unknown) => {
    // A name no S3 object can have (past 1,024 bytes, a lone surrogate) holds no rotation: refused like a
    // missing one. Thrown, the request came back five times, holding the queue's one message group.
    if (error instanceof StoreError && error.code === 'STORE_INVALID_KEY') return undefined;
    throw error;
  });
  if (!info) outcome = refused([problem('ROTATION_INVALID', '', `${key} is not in the upload bucket`)]);
  else if (info.size > MAX_ROTATION_BYTES)
    outcome = refused([
      problem(
        'ROTATION_INVALID',
        '',
        `${key} is larger than ${MAX_ROTATION_BYTES} bytes: not a key rotation`,
      ),
    ]);
  else {
    try {
      const object = await ctx.intake.get(key);
      const bytes = object?.body ?? new Uint8Array();
      // Made again at once on a conflict, as every other step of the invocation: its snapshot write, its
      // answer lost and sent again by the SDK, meets its own first attempt (412, STORE_CONFLICT). Thrown, the
      // message came back only after the queue's visibility timeout (90 minutes), the registry half rotated
      // till then: the new key's snapshot.json beside the old key's snapshot.signed.json, which clients read
      // and which binds none of the documents re-signed. Made again, the rotation is found published, resumed.
      const result = await retryingConflicts(deps, 'rotation', () => rotateRegistryKey(ctx, bytes));
      invalidate = result.invalidate;
      outcome = {
        rotation: key,
        status: result.status,
        sequence: result.sequence,
        previous: result.previous,
        fingerprint: result.fingerprint,
        ...(result.compromised ? { compromised: true } : {}),
        generation: result.generation,
        problems: [],
        processed,
      };
    } catch (error) {
      if (!(error instanceof SubmissionError)) throw error;
      outcome = refused(error.problems);
    }
  }
  await ctx.intake.put(
    rotationOutcomeKey(key),
    new TextEncoder().encode(`${JSON.stringify(outcome, null, 2)}\n`),
    {
      contentType: 'application/json',
      cacheControl: CACHE_PRIVATE,
    },
  );
  deps.logger.info('rotation', {
    rotation: key,
    outcome: outcome.status,
    sequence: outcome.sequence,
    fingerprint: outcome.fingerprint,
    problems: outcome.problems.map(problemRef),
  });
  return invalidate;
}

/**
 * The rotations uploaded under rotations/ that read as the registry's next one, from the key it publishes to
 * the key the context signs with: their requests may still wait in the queue behind the message being handled.
 * Only what a rotation says of itself is looked at: `applyRotation` checks each in full (`checkRotation`,
 * which reads every plugin document), where each found was checked in full here and again there.
 */
async function pendingRotations(ctx: PipelineContext): Promise<string[]> {
  const snapshot = await readJson<SnapshotDocument>(ctx.site, SNAPSHOT_KEY);
  if (!snapshot) return [];
  const found: string[] = [];
  for await (const info of ctx.intake.list(ROTATION_UPLOADS_PREFIX)) {
    if (info.size > MAX_ROTATION_BYTES) continue;
    const object = await ctx.intake.get(info.key);
    if (!object) continue;
    let rotation: ReadRotation['rotation'];
    try {
      rotation = readSignedRotation(object.body).rotation;
    } catch (error) {
      if (error instanceof TrustError) continue;
      throw error;
    }
    if (
      rotation.registry === ctx.config.url &&
      rotation.sequence === (snapshot.key_rotations ?? 0) + 1 &&
      rotation.previous.fingerprint === snapshot.key_fingerprint &&
      rotation.next.fingerprint === ctx.signer.fingerprint
    )
      found.push(info.key);
  }
  return found;
}

/**
 * The context to sign with: never a key other than the one the registry publishes, which is all clients
 * trust. The secret is read again (past the 15-minute cache) for a rotation request, and whenever the key
 * held is not the published one: a warm container may hold the key from before a rotation. The rotations
 * requested are published first (`apply`: also one uploaded whose request is still queued, when the secret
 * already holds its key). A secret holding a key no published rotation leads to fails the invocation,
 * before anything is signed with it.
 * @throws AwsAdapterError SIGNING_KEY_NOT_PUBLISHED
 */
async function signingContext(
  deps: HandlerDeps,
  base: PipelineContext,
  requested: readonly string[],
  apply: boolean,
): Promise<{ readonly ctx: PipelineContext; readonly invalidate: readonly string[] }> {
  const published = await publishedKey(base);
  const stale = published !== undefined && published !== base.signer.fingerprint;
  const ctx = requested.length > 0 || stale ? { ...base, signer: await deps.signer({ fresh: true }) } : base;
  const invalidate: string[] = [];
  for (const key of requested) {
    if (!key.startsWith(ROTATION_UPLOADS_PREFIX)) {
      deps.logger.warn('rotation request ignored', { key, reason: `not under ${ROTATION_UPLOADS_PREFIX}` });
      continue;
    }
    invalidate.push(...(await applyRotation(deps, ctx, key)));
  }
  let current = await publishedKey(ctx);
  if (apply && current !== undefined && current !== ctx.signer.fingerprint) {
    // Each in turn until one is published: one the full check refuses has that refusal recorded, as its
    // request, when it comes, records it.
    for (const pending of await pendingRotations(ctx)) {
      invalidate.push(...(await applyRotation(deps, ctx, pending)));
      current = await publishedKey(ctx);
      if (current === ctx.signer.fingerprint) break;
    }
  }
  if (current !== undefined && current !== ctx.signer.fingerprint)
    throw new AwsAdapterError(
      'SIGNING_KEY_NOT_PUBLISHED',
      `the signing key secret holds key ${ctx.signer.fingerprint}, but the registry publishes key ${current}: nothing is signed with a key clients do not trust until a rotation to it is published (plugindex rotate-key --bucket ...), or the secret holds key ${current} again`,
    );
  return { ctx, invalidate };
}

/** How many times a step is made when a snapshot committed by another writer meets it (STORE_CONFLICT). */
const CONFLICT_ATTEMPTS = 3;

/**
 * `step`, made again at once when its snapshot write found one another writer committed since it read it
 * (a command run against the buckets beside the queue), or its own: S3 did the write, its answer was lost,
 * and the SDK's second attempt met the first's snapshot (412). Either way the step's documents are written
 * by then and the snapshot clients read first does not list them, so they refuse them until a step commits
 * on top. Thrown, the message would come back only after the queue's visibility timeout (90 minutes); made
 * again, the step reads the new snapshot and commits on top of it, as a retried batch does (a key
 * rotation's, finds itself published and resumes: test/functions/lost-answers.test.ts).
 */
async function retryingConflicts<T>(deps: HandlerDeps, step: string, run: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (error) {
      if (!(error instanceof StoreError && error.code === 'STORE_CONFLICT') || attempt >= CONFLICT_ATTEMPTS)
        throw error;
      deps.logger.warn('snapshot conflict', { step, attempt, ...errorFields(error) });
    }
  }
}

/**
 * One error line (LOGGED_ENTRY_STUCK_LOG) for a logged entry a flush or a refresh left uncounted (`stuck`,
 * stuck-entries.ts): the snapshot is renewed and the invocation succeeds, so this line is all the operator
 * is told of a log head that lags until the entry is published, applied or voided. `detail`: what to do.
 */
function logStuck(
  logger: Logger,
  step: 'flush' | 'refresh',
  { stuck }: { readonly stuck?: StuckEntryNotice | undefined },
): void {
  if (!stuck) return;
  // Its code first: a publish's or an action's (stuck-entries.ts `StuckCode`), as a rebuild would refuse it.
  const { message, code, ...entry } = stuck;
  logger.error(LOGGED_ENTRY_STUCK_LOG, { code, step, ...entry, detail: message });
}

/**
 * The schedule's refresh while the config cannot be read (`pipelineContext`'s `unread`): the published
 * snapshot signed again as it is, for the lifetime it had, at most two refreshes of the schedule where the
 * stack has one (`minSnapshotTtlSeconds`). Two refreshes, as for a refused lifetime: the least the schedule
 * allows, and the tightest bound on a freeze while nobody can say what the operator meant; never longer than
 * the published one, the last a good config gave, and nothing of the config that cannot be read (its
 * lifetime included: it may be what is wrong). Where the refresh would need the config (nothing published,
 * index documents pending: REFRESH_NEEDS_CONFIG) the invocation fails with the config's refusal, as it did.
 * @throws ConfigError CONFIG_INVALID, `refusal`'s words and why the snapshot was not re-signed
 */
async function refreshUnread(
  deps: HandlerDeps,
  ctx: PipelineContext,
  refusal: ConfigError | undefined,
): Promise<{ generation: number; invalidate: readonly string[]; stuck?: StuckEntryNotice }> {
  const refresh = deps.config.snapshotRefreshSeconds;
  const asPublished = refresh === undefined ? {} : { maxTtlSeconds: minSnapshotTtlSeconds(refresh) };
  return refreshSnapshot(ctx, { asPublished }).catch((error: unknown) => {
    if (!(error instanceof PlugindexError && error.code === 'REFRESH_NEEDS_CONFIG') || !refusal) throw error;
    throw new ConfigError('CONFIG_INVALID', `${refusal.message}; ${error.message}`, { cause: error });
  });
}

/**
 * What the publish function made of an invocation: the batch's result, and for an SQS batch the messages it
 * answers failed (`batchItemFailures`, the event source mapping's ReportBatchItemFailures): those whose
 * uploads it left in incoming/, which come back to wake a later invocation. Absent for any other event.
 */
export interface PublishResult extends BatchResult {
  readonly batchItemFailures?: readonly { readonly itemIdentifier: string }[];
}

/**
 * Publishes everything waiting under incoming/ as one batch, whatever the event names (events are only
 * doorbells). Rejections are recorded and not retried; a storage or signing failure throws, so the queue
 * retries the message and, in the end, parks it in the dead-letter queue. A `{"plugindex": "rebuild"}`
 * message in the same queue re-renders and re-signs everything, serialized with the publishes (before the
 * uploads the invocation publishes, so it mends a published document a batch refused); a
 * `{"plugindex": "rotate-key", "key": "rotations/…"}` message publishes that key rotation first; the
 * schedule's `{"plugindex": "refresh"}` re-signs the snapshot with a fresh expiry when nothing else in the
 * invocation did. Every write of the registry is this function's, one invocation at a time: a refresh
 * beside a publish would sign a snapshot from what it read before the publish committed, and undo it.
 *
 * Every round publishes with the index documents deferred, so each submission's outcome and its live
 * version cost what it changed; the index documents are rendered once, after the last round. The rounds
 * take from one listing of incoming/, and none is started that the time left (`time`, the Lambda
 * context's) could not finish with the rendering after it (the first too, when a rebuild or a key rotation
 * was made before it; a fresh invocation's first round is always started). The messages of the uploads the
 * rounds left are answered failed (`PublishResult.batchItemFailures`), but for one at its last receipt, and
 * made visible again at once (functions/message-visibility.ts), the invocation's last step; one at its last
 * receipt is done, and its uploads announced again by fresh messages on the queue (`announceAgain`). A failure there
 * throws like any other, and the retried message (finding incoming/ empty) flushes them. The CloudFront invalidation last is
 * the exception: its failure is logged, since a retry could not redo it.
 *
 * While the config's trusted keys are refused (`checkConfiguredKeys`), or its snapshot lifetime
 * (`snapshotTtlRefusal`), or the config cannot be read at all (not JSON, refused at any other field), an
 * invocation that asks for the refresh still re-signs the snapshot (for two refreshes, the lifetime refused;
 * as published, the config unread: `refreshUnread`), judging nothing, making no rebuild or rotation,
 * answering failed the messages of its batch that ask for those or announce an upload, and logging each
 * refusal (CONFIG_REFUSED_LOG); every other one throws the first.
 */
export function createPublishHandler(
  deps: HandlerDeps,
): (event: unknown, time?: InvocationTime) => Promise<PublishResult> {
  return loggingFailure(deps.logger, 'publish failed', async (event: unknown, time?: InvocationTime) => {
    const started = Date.now();
    const notices = parseObjectCreated(event).filter((n) => n.bucket === deps.config.intakeBucket);
    deps.logger.info('woken', { notices: notices.length, keys: notices.map((n) => n.key).slice(0, 20) });
    const announced = notices.filter((n) => n.key.startsWith(INCOMING_PREFIX)).length;
    const rotations = rotationRequests(event);
    const { ctx: base, refused, unread } = await pipelineContext(deps);
    // The refresh judges no upload and signs with the registry's key alone: with the config's trusted keys
    // refused, or its snapshot lifetime (then signed with two refreshes'), it still re-signs the snapshot, or
    // the snapshot expires while the config waits to be mended (the schedule's message failing with the
    // publishes). An invocation that does not ask for it is refused as before. Each refusal is one error line
    // (CONFIG_REFUSED_LOG), which an alarm counts. The refresh's message is one of the queue's one FIFO group,
    // delivered in one batch with the messages before it: with an upload waiting, its message (back each
    // visibility timeout) came with every refresh, and the refresh alone was what went on, so it was refused
    // with the batch until the uploads' messages went to the dead-letter queue, the refreshes beside them. It
    // now goes on in any batch that asks for it, and each message asking for what the refusal holds back (an
    // upload, a rebuild, a rotation) is answered failed (`held`), to come back as a refused invocation's would;
    // the uploads wait in incoming/. So with a config that cannot be read at all (not JSON, or refused at
    // any other field): the refresh failed with the rest, and an operator's broken edit let the snapshot
    // expire. It now signs the published snapshot as it is (`refresh` below), nothing of that config read.
    const [firstRefusal] = refused;
    if (firstRefusal && !wantsRefresh(event)) throw firstRefusal;
    for (const refusal of refused) deps.logger.error(CONFIG_REFUSED_LOG, { ...errorFields(refusal) });
    const held = firstRefusal
      ? queuedMessages(event)
          .filter(
            ({ notices: announcing, request }) =>
              (request !== undefined && request !== 'refresh') ||
              announcing.some(
                ({ bucket, key }) => bucket === deps.config.intakeBucket && key.startsWith(INCOMING_PREFIX),
              ),
          )
          .map(({ messageId }) => ({ itemIdentifier: messageId }))
      : [];
    // Key rotations first: the publishes after them are signed by the key they publish. None with the config
    // refused, not even one asked for or uploaded and waiting (`apply`): a rotation is judged against the
    // config's operator keys (pipeline/rotate.ts).
    const signing = await signingContext(
      deps,
      base,
      refused.length === 0 ? rotations : [],
      refused.length === 0,
    );
    const ctx = signing.ctx;
    const deferring: PipelineContext = { ...ctx, deferIndexes: true };
    const setupMs = Date.now() - started;
    // A rebuild asked for is made before the rounds: it is what the operator runs to take the published
    // documents as they are when a batch found one the registry did not publish (PUBLISHED_DOCUMENT_ALTERED,
    // pipeline/published.ts), and made after them it was never reached, every round failing on that
    // document while the uploads it blocked waited in incoming/. The rounds then publish on top of it.
    const rebuilt =
      wantsRebuild(event) && refused.length === 0
        ? await retryingConflicts(deps, 'rebuild', () => rebuildRegistry(ctx))
        : undefined;
    if (rebuilt)
      deps.logger.info('rebuilt', {
        plugins: rebuilt.plugins,
        generation: rebuilt.generation,
        restoredActions: rebuilt.restored.markers,
        restoredOrders: rebuilt.restored.orders,
      });
    // Batches are bounded in bytes (memory); keep going, for a few rounds, while uploads are left over or
    // new ones arrived during the round, so a burst shares the one rendering of the index documents below.
    const results: BatchResult[] = [];
    const roundMs: number[] = [];
    const seen = new Set<string>();
    // Uploads met unreadable, or too large to stream (recorded unread, no digest): left in incoming/, the
    // oldest there, they would fill every later round (met again each round, nothing behind them taken);
    // met once an invocation instead.
    const unreadable = new Set<string>();
    // Rounds that met only such uploads are not counted: each passes over what it met, so they end.
    let rounds = 0;
    // incoming/ is listed once, and each round takes from what the rounds before it left: with millions of
    // uploads waiting, listing them took minutes, and every round did. It is listed again only once that
    // listing is used up, for uploads that arrived meanwhile (a burst then shares the one rendering of the
    // index documents below); one not listed is never lost: its own message wakes the next invocation.
    let waiting = await listWaiting(ctx.intake);
    // Rounds stop when the time left (Lambda's) is under what another round needs: the rest wait in
    // incoming/ for the next invocation, which their own messages start (each upload raises its own
    // EventBridge event, its own message). Not before the rounds have taken out of incoming/ as many uploads
    // as the event's messages announced: the uploads left are then the latest waiting, whose
    // messages the queue still holds. A message answered failed (`batchItemFailures`, below) comes back too,
    // made visible again at once (`releaseMessages`), but each answer counts a receipt toward the
    // dead-letter queue: so the rounds go on for the announced uploads, and a round so started may be cut
    // off by the timeout, as every round could before.
    // The one exception is the first round after a rebuild or a key rotation (each a rebuild of the whole
    // registry) that used the invocation's time: started regardless, it was cut off by the timeout and lost
    // whole. An SQS batch skips it then and answers the announced uploads' messages failed; an event that is
    // no SQS batch (a direct invocation) cannot answer per message, and still starts it.
    const sqs = isSqsBatch(event);
    let takenOut = 0;
    let stopped: { readonly remainingMs: number; readonly reserveMs: number } | undefined;
    // The first round is held to the time when work before it (a rebuild asked for, a key rotation
    // published) has used the invocation's time. A fresh invocation's first round is always started: it has
    // done nothing else, and a round needs the time it has. None with the config refused: its keys would
    // judge the uploads, its lifetime be signed.
    const workedBefore = rebuilt !== undefined || signing.invalidate.length > 0;
    let more = refused.length === 0;
    if (more && time && workedBefore && (sqs || takenOut >= announced)) {
      const remainingMs = time.getRemainingTimeInMillis();
      const reserveMs = roundReserveMs(0);
      if (remainingMs < reserveMs) {
        stopped = { remainingMs, reserveMs };
        more = false;
      }
    }
    while (more) {
      const roundStarted = Date.now();
      const given = waiting;
      const passOver = new Set(unreadable);
      const result = await retryingConflicts(deps, 'publish', () =>
        processSubmissions({ ...deferring, passOver, waiting: given }),
      );
      results.push(result);
      roundMs.push(Date.now() - roundStarted);
      let readable = 0;
      for (const outcome of result.outcomes) {
        seen.add(outcome.submission);
        if (outcome.submission_sha256 === undefined) unreadable.add(outcome.submission);
        else readable += 1;
      }
      if (result.outcomes.length === 0 || readable > 0) rounds += 1;
      takenOut += readable;
      waiting = leftByRound(given, passOver, result.leftInIncoming);
      if (rounds < MAX_ROUNDS && waiting.length === 0 && result.outcomes.length > 0)
        waiting = (await listWaiting(ctx.intake)).filter(({ key }) => !seen.has(key));
      more = rounds < MAX_ROUNDS && anyUpload(waiting);
      if (more && time && takenOut >= announced) {
        const remainingMs = time.getRemainingTimeInMillis();
        const reserveMs = roundReserveMs(Math.max(...roundMs));
        if (remainingMs < reserveMs) {
          stopped = { remainingMs, reserveMs };
          more = false;
        }
      }
    }
    // The messages whose uploads are still waiting (stopped for time, or after the last of MAX_ROUNDS):
    // each names its own upload, and one whose upload a round took out, or that was gone already, is done.
    // A request (rebuild, rotate-key, refresh) names no upload and is never among them: done in this
    // invocation, answered failed it would be made again. Uploads met unreadable are not: they stay in
    // incoming/ until restored, met again by every invocation, and their messages back would only come back
    // again, to the dead-letter queue.
    const left = new Set(
      waiting.map(({ key }) => key).filter((key) => !key.endsWith('/') && !unreadable.has(key)),
    );
    // Not a message at its last receipt (PUBLISH_MAX_RECEIVES, the queue's maxReceiveCount): back, it would
    // go to the dead-letter queue (its alarm) for an upload that waits in incoming/ unharmed. Each rebuild
    // asked for in a batch of its own while its upload's message came back could skip the first round
    // again, five in a row reach it. It is done instead, and its uploads announced again (`announceAgain`,
    // the last step): deleted alone, its upload waited for whatever invocation came next, the schedule's
    // refresh (every 6 hours) at the latest, with nothing in the queue for the age alarm to see.
    const owed = firstRefusal
      ? []
      : queuedMessages(event).filter(({ notices: announcing }) =>
          announcing.some(({ bucket, key }) => bucket === deps.config.intakeBucket && left.has(key)),
        );
    // But one whose uploads were announced again `MAX_ANNOUNCEMENTS_AGAIN` times already is answered failed,
    // to the dead-letter queue and its alarm: some fault leaves its upload round after round, and announced
    // for ever it would be a young message each time, which no age alarm sees.
    const lastReceipt = owed.filter(
      ({ receiveCount, announcedAgain }) =>
        (receiveCount ?? 0) >= PUBLISH_MAX_RECEIVES && (announcedAgain ?? 0) < MAX_ANNOUNCEMENTS_AGAIN,
    );
    if (lastReceipt.length > 0)
      deps.logger.warn('messages at their last receipt not answered failed', {
        messageIds: lastReceipt.map(({ messageId }) => messageId),
        maxReceives: PUBLISH_MAX_RECEIVES,
      });
    const back = owed.filter((message) => !lastReceipt.includes(message));
    const batchItemFailures = firstRefusal
      ? held
      : back.map(({ messageId }) => ({ itemIdentifier: messageId }));
    if (stopped)
      deps.logger.info('rounds stopped for time', {
        ...stopped,
        rounds: results.length,
        leftInIncoming: waiting.length,
      });
    const outcomes = results.flatMap((r) => r.outcomes);
    for (const [round, result] of results.entries()) {
      for (const outcome of result.outcomes) {
        deps.logger.info('submission', {
          submission: outcome.id,
          key: outcome.submission,
          // For a lifecycle action: its kind, who signed it, its log entry.
          ...(outcome.action ? { action: outcome.action, signer: outcome.signer, seq: outcome.seq } : {}),
          plugin: outcome.plugin,
          version: outcome.version,
          // A revoke-key names no plugin: the key it revokes, as the outcome record does.
          ...(outcome.fingerprint !== undefined ? { fingerprint: outcome.fingerprint } : {}),
          outcome: outcome.status,
          problems: outcome.problems.map(problemRef),
          // The round that decided it, and how long that round took (checks, writes, one rebuild).
          round: round + 1,
          roundMs: roundMs[round],
        });
      }
    }
    const toInvalidate = new Set([
      ...signing.invalidate,
      ...(rebuilt?.invalidate ?? []),
      ...results.flatMap((r) => r.invalidate),
    ]);
    let generation = results.findLast((r) => r.generation !== null)?.generation ?? null;
    if (rebuilt) generation ??= rebuilt.generation;
    const flushStarted = Date.now();
    // Not without the config: the index documents name the registry (refreshSnapshot refuses to re-sign
    // the snapshot while they are pending, asPublished).
    const flushed = unread
      ? { generation: null, invalidate: [] }
      : await retryingConflicts(deps, 'flush', () => flushIndexes(ctx));
    const flushMs = Date.now() - flushStarted;
    logStuck(deps.logger, 'flush', flushed);
    for (const key of flushed.invalidate) toInvalidate.add(key);
    generation = flushed.generation ?? generation;
    // The schedule's refresh, in turn with the publishes: a snapshot signed in this invocation is fresh.
    if (wantsRefresh(event) && generation === null) {
      const refreshed = await retryingConflicts(deps, 'refresh', () =>
        unread ? refreshUnread(deps, ctx, firstRefusal) : refreshSnapshot(ctx),
      );
      logStuck(deps.logger, 'refresh', refreshed);
      for (const key of refreshed.invalidate) toInvalidate.add(key);
      generation = refreshed.generation;
      deps.logger.info('snapshot refreshed', { generation });
    }
    const invalidationStarted = Date.now();
    await invalidate(deps, [...toInvalidate].sort());
    const invalidationMs = Date.now() - invalidationStarted;
    // The messages back for uploads left, made visible again at once: the last step, so the invocation's
    // writes are all done before another can take them (with none of the batch's messages left in flight, the
    // FIFO group is free as soon as they are visible). Not those held back by a refused config: nothing is
    // published until it is mended, and back at once they would reach the dead-letter queue in seconds.
    const released = await releaseBack(deps, back);
    // Then the uploads of the messages at their last receipt, announced again by fresh messages of the
    // publish group; a send that fails is an error line an alarm counts, the answer unchanged.
    const announcedAgain = await announceAgain(
      deps.sqs,
      deps.config.queueUrl,
      deps.config.intakeBucket,
      lastReceipt.map(({ messageId, notices: announcing, announcedAgain }) => ({
        messageId,
        announcedAgain: announcedAgain ?? 0,
        keys: [
          ...new Set(
            announcing
              .filter(({ bucket, key }) => bucket === deps.config.intakeBucket && left.has(key))
              .map(({ key }) => key),
          ),
        ],
      })),
      deps.logger,
    );
    // No round made (stopped for time before the first): every upload listed is left.
    const leftInIncoming = results.at(-1)?.leftInIncoming ?? waiting.length;
    deps.logger.info('batch done', {
      submissions: outcomes.length,
      rounds: results.length,
      leftInIncoming,
      generation,
      // Messages answered failed, to come back for the uploads left (an SQS batch only).
      messagesBack: batchItemFailures.length,
      setupMs,
      // The index documents, rendered once for every round (null: nothing was pending).
      indexesGeneration: flushed.generation,
      flushMs,
      // Of those, the ones made visible again at once (the others come back after the visibility timeout).
      messagesReleased: released.length,
      // Uploads of messages at their last receipt announced again on the queue (those messages done).
      uploadsAnnouncedAgain: announcedAgain,
      invalidationMs,
      durationMs: Date.now() - started,
    });
    return {
      outcomes,
      generation,
      changedPlugins: [...new Set(results.flatMap((r) => r.changedPlugins))].sort(),
      invalidate: [...toInvalidate].sort(),
      leftInIncoming,
      indexesPending: false,
      ...(sqs ? { batchItemFailures } : {}),
    };
  });
}

/**
 * Makes `messages` (answered failed for uploads left) visible again at once, when the function knows its
 * queue and has an SQS client; returns the ids made visible. A failure is logged by `releaseMessages` and
 * leaves the message to the visibility timeout: its answer stands either way.
 */
async function releaseBack(
  deps: HandlerDeps,
  messages: readonly { readonly messageId: string; readonly receiptHandle?: string }[],
): Promise<readonly string[]> {
  const held = messages.filter((m): m is HeldMessage => m.receiptHandle !== undefined);
  if (held.length === 0 || deps.sqs === undefined || deps.config.queueUrl === undefined) return [];
  return releaseMessages(deps.sqs, deps.config.queueUrl, held, deps.logger);
}

/** One outcome as the function's response names it: which upload, what became of it, its problems' codes. */
export interface OutcomeBrief {
  readonly id: string;
  readonly submission: string;
  readonly status: SubmissionOutcome['status'];
  readonly action?: SubmissionOutcome['action'];
  readonly plugin?: string;
  readonly version?: string;
  /** For a revoke-key, which names no plugin: the fingerprint of the key it revokes. */
  readonly fingerprint?: string;
  readonly seq?: number;
  readonly problems: readonly { readonly code: string }[];
}

/** What the Lambda entry point (publish.ts) answers an invocation with: counts, and the first outcomes. */
export interface PublishResponse {
  readonly submissions: number;
  /** How many outcomes of each status (`accepted`, `rejected`, `already-published`). */
  readonly statuses: Readonly<Record<string, number>>;
  readonly generation: number | null;
  readonly changedPlugins: number;
  /** How many site keys were invalidated (the keys are in the log's `batch done` line's count too). */
  readonly invalidated: number;
  readonly leftInIncoming: number;
  /** The first outcomes, in brief, as far as the response's bound leaves room; each is whole in status/. */
  readonly outcomes: readonly OutcomeBrief[];
  /** Outcomes decided but not in `outcomes`. */
  readonly outcomesOmitted: number;
  /**
   * For an SQS batch, the messages answered failed (`PublishResult.batchItemFailures`): the event source
   * mapping (ReportBatchItemFailures) deletes the others and leaves these to come back; it reads this
   * member and no other. At most the batch's ten ids, within the response's bound.
   */
  readonly batchItemFailures?: readonly { readonly itemIdentifier: string }[];
}

/**
 * The most bytes of JSON the publish function answers with. Lambda refuses a response of a synchronous
 * invocation (the SQS event source mapping's) past 6 MB, and fails the invocation then, after everything
 * was published: the queue kept the message, the one message group held for its visibility timeout (90
 * minutes), and a rebuild of some 30,000 plugins (its every key to invalidate) never succeeded at all. The
 * whole BatchResult was returned: 160 uploads refused with a hundred problems each passed the limit.
 */
export const MAX_PUBLISH_RESPONSE_BYTES = 256 * 1024;
/** Outcomes the response names at most: the rest are counted (each is recorded in status/ and logged). */
const RESPONSE_OUTCOMES = 100;

function briefOf(outcome: SubmissionOutcome): OutcomeBrief {
  return {
    id: outcome.id,
    submission: outcome.submission,
    status: outcome.status,
    ...(outcome.action !== undefined ? { action: outcome.action } : {}),
    ...(outcome.plugin !== undefined ? { plugin: outcome.plugin } : {}),
    ...(outcome.version !== undefined ? { version: outcome.version } : {}),
    ...(outcome.fingerprint !== undefined ? { fingerprint: outcome.fingerprint } : {}),
    ...(outcome.seq !== undefined ? { seq: outcome.seq } : {}),
    problems: outcome.problems.map((p) => ({ code: p.code })),
  };
}

/**
 * A publish's result as the function answers it, within MAX_PUBLISH_RESPONSE_BYTES however many outcomes,
 * problems or keys to invalidate it has: counts, then as many outcomes in brief as fit (an upload's name and
 * a rejected manifest's name and version are a publisher's, of any length within their caps).
 */
export function publishResponse(result: PublishResult): PublishResponse {
  const statuses: Record<string, number> = {};
  for (const outcome of result.outcomes) statuses[outcome.status] = (statuses[outcome.status] ?? 0) + 1;
  const respond = (outcomes: readonly OutcomeBrief[]): PublishResponse => ({
    submissions: result.outcomes.length,
    statuses,
    generation: result.generation,
    changedPlugins: result.changedPlugins.length,
    invalidated: result.invalidate.length,
    leftInIncoming: result.leftInIncoming,
    outcomes,
    outcomesOmitted: result.outcomes.length - outcomes.length,
    ...(result.batchItemFailures ? { batchItemFailures: result.batchItemFailures } : {}),
  });
  let outcomes = result.outcomes.slice(0, RESPONSE_OUTCOMES).map(briefOf);
  let response = respond(outcomes);
  while (Buffer.byteLength(JSON.stringify(response)) > MAX_PUBLISH_RESPONSE_BYTES && outcomes.length > 0) {
    outcomes = outcomes.slice(0, Math.floor(outcomes.length / 2));
    response = respond(outcomes);
  }
  return response;
}
