/**
 * A deployed registry's upload bucket: a submission (a bundle or a signed action) uploaded to incoming/,
 * then the outcome the publish function records under status/<submission id>.json waited for; and the
 * registry config object read, for the URL an action names. The caller names the outcome keys the way the
 * pipeline does, from the upload's key and bytes, and the ETag S3 answered the upload with (computed from
 * the bytes sent when that answer was lost). A key rotation goes under rotations/ and through the queue
 * (`rotateThroughQueue`). Only this module (and the adapters) loads the AWS SDK.
 */

import { createReadStream } from 'node:fs';
import { createS3Client, mayBeOwnWrite, S3Store } from '../adapters/s3-store.ts';
import { parseRegistryUrl, readConfigJson } from '../index-builder/config.ts';
import { ConfigError, StoreError } from '../index-builder/errors.ts';
import type { SubmissionOutcome } from '../index-builder/pipeline/index.ts';
import type { RotationOutcome } from '../index-builder/pipeline/rotate.ts';
import { CACHE_PRIVATE } from '../index-builder/store.ts';
import { usage } from './errors.ts';

/** What is uploaded: a file streamed (a bundle is never read whole), or bytes already in memory. */
export type UploadBody = { readonly file: string } | { readonly bytes: Uint8Array };

export async function submitToBucket(options: {
  readonly bucket: string;
  /** The upload's key, the caller's own: no one else writes it (cli/submit.ts `uploadKey`, random). */
  readonly key: string;
  readonly body: UploadBody;
  readonly contentType: string;
  /**
   * Where the publish function will record the outcome (`status/<submission id>.json`), given the ETag S3
   * answered the upload with: the first found is it (by the upload's bytes, or by its key and that ETag when
   * the function judges it unread: `submissionIdsOf`).
   */
  readonly outcomeKeys: (etag: string) => readonly string[];
  readonly timeoutSeconds: number;
  /** An S3-compatible endpoint (path-style), e.g. a local test server; AWS otherwise. */
  readonly endpoint?: string;
  readonly pollMs?: number;
  readonly log: (line: string) => void;
}): Promise<{ readonly outcome?: SubmissionOutcome; readonly outcomeKeys: readonly string[] }> {
  const client = createS3Client(options.endpoint);
  try {
    const store = new S3Store({ client, bucket: options.bucket });
    // Only where nothing is: another publisher's upload waiting under this key is never replaced (and a
    // deployment's publisher policy refuses an upload without the condition).
    // The ETag S3 answers with is the upload's own (a publisher may not read incoming/ to learn it later).
    let etag = '""';
    // The ETag S3 gives these bytes, computed as they go (S3Store `onSent`): the upload bucket stores them
    // under S3's own keys, and its policy refuses a publisher's upload naming any other, so it is S3's.
    let sent = '""';
    const put = {
      contentType: options.contentType,
      cacheControl: CACHE_PRIVATE,
      createOnly: true,
      onWritten: (written: string) => {
        etag = written;
      },
      onSent: (computed: string) => {
        sent = computed;
      },
    };
    // A race S3 answers 409 is sent again (S3Store): the file opened again for each attempt.
    const { body } = options;
    try {
      if ('file' in body) await store.putStreamFrom(options.key, () => createReadStream(body.file), put);
      else await store.put(options.key, body.bytes, put);
    } catch (error) {
      // S3 did the upload and its answer was lost; the SDK sent it again, and S3 answered that 412, the
      // object being the first attempt's. The key is this command's own (a time and 32 random bits: no one
      // else writes it), so the object is taken for this upload, and its outcome (named by these bytes)
      // tells: it failed STORE_EXISTS, the upload published all the same, and a publisher who took the
      // failure at its word and published again got the version back as already published. Its ETag was
      // in the lost answer: the one computed from the bytes sent names an outcome the registry records by
      // it (an upload judged unread), which was otherwise waited for under a name nothing is recorded by.
      if (!mayBeOwnWrite(error)) throw error;
      etag = sent;
      options.log(
        `S3's answer to the upload of s3://${options.bucket}/${options.key} was lost, and the SDK's second attempt found an object there: taken for this upload (the key is this command's own)`,
      );
    }
    const outcomeKeys = options.outcomeKeys(etag);
    options.log(`uploaded s3://${options.bucket}/${options.key}; waiting for ${outcomeKeys.join(' or ')}`);
    const deadline = Date.now() + options.timeoutSeconds * 1000;
    for (;;) {
      // Asked side by side: one poll costs one round trip, whichever the function records. Not there yet is
      // 403 to a publisher (`readableOrNone`).
      const found = await Promise.all(outcomeKeys.map((key) => readableOrNone(store.get(key))));
      const status = found.find((object) => object !== undefined);
      if (status)
        return {
          outcome: JSON.parse(new TextDecoder().decode(status.body)) as SubmissionOutcome,
          outcomeKeys,
        };
      if (Date.now() >= deadline) return { outcomeKeys };
      await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 1000));
    }
  } finally {
    client.destroy();
  }
}

/**
 * What `read` gives, or undefined when S3 answers 403 (the SDK's error kept as the StoreError's cause): to a
 * caller without `s3:ListBucket`, which the deployment's publisher policy does not grant, S3 answers a read of
 * an object that is not there 403 AccessDenied rather than 404, and that is how an outcome not yet recorded
 * reads. So the wait for one threw STORE_IO at its first look, before the function had published the upload.
 * Anything else (the network, a wrong endpoint) is a failure the caller must see.
 */
async function readableOrNone<T>(read: Promise<T | undefined>): Promise<T | undefined> {
  try {
    return await read;
  } catch (error) {
    const status = (error as { cause?: { $metadata?: { httpStatusCode?: number } } }).cause?.$metadata
      ?.httpStatusCode;
    if (error instanceof StoreError && status === 403) return undefined;
    throw error;
  }
}

/**
 * An object of the bucket as text, or undefined when it is absent or this caller may not read it (the
 * deployment's publisher policy grants incoming/ and status/ only): the caller then asks for what it needed.
 */
export async function readBucketText(options: {
  readonly bucket: string;
  readonly key: string;
  readonly endpoint?: string;
}): Promise<string | undefined> {
  const client = createS3Client(options.endpoint);
  try {
    const store = new S3Store({ client, bucket: options.bucket });
    // Forbidden: the same answer as absent.
    const object = await readableOrNone(store.get(options.key));
    return object ? new TextDecoder().decode(object.body) : undefined;
  } finally {
    client.destroy();
  }
}

/**
 * Refuses a `--compromised` rotation when one of the same number from the same key to the same key waits
 * under `rotations/` unmarked, as the local form refuses to finish an unmarked rotation under way with the
 * mark: the function publishes the first it meets and refuses the other, so the marked one signed now
 * would be refused, and only after the unmarked one had gone out, for good (a rotation is never rewritten).
 * One to another key is not: the function publishes only a rotation to the key it holds.
 */
async function refuseUnmarkedUnderWay(
  store: S3Store,
  sequence: number,
  previous: { readonly fingerprint: string },
  next: { readonly fingerprint: string },
  refuse: (...args: Parameters<typeof import('../index-builder/errors.ts').problem>) => never,
  rotation: typeof import('../index-builder/rotation.ts'),
): Promise<void> {
  const { ROTATION_UPLOADS_PREFIX } = await import('../index-builder/pipeline/rotate.ts');
  for await (const info of store.list(ROTATION_UPLOADS_PREFIX)) {
    if (info.size > rotation.MAX_ROTATION_BYTES) continue;
    const object = await store.get(info.key);
    if (!object) continue;
    let read: ReturnType<typeof rotation.readSignedRotation>;
    try {
      read = rotation.readSignedRotation(object.body, info.key);
    } catch {
      continue; // not a rotation: the function refuses it, and publishes nothing of it
    }
    const { rotation: r } = read;
    if (
      r.sequence === sequence &&
      r.previous.fingerprint === previous.fingerprint &&
      r.next.fingerprint === next.fingerprint &&
      r.compromised !== true
    )
      refuse(
        'ROTATION_INVALID',
        '/rotation/compromised',
        `rotation ${sequence} to key ${next.fingerprint} was uploaded without --compromised (${info.key}), and the publish function publishes it first: a rotation is never rewritten, so a marked one of that number would be refused once it went out; rotate to another new key with --compromised instead`,
        { found: info.key },
      );
  }
}

/** The config object's `/url` as `parseRegistryUrl` reads it, a fault named with the object it is in. */
function parseRegistryUrlAt(value: unknown, where: string): string {
  try {
    return parseRegistryUrl(value);
  } catch (error) {
    if (error instanceof ConfigError)
      throw new ConfigError(error.code, `${where}: ${error.message}`, { cause: error });
    throw error;
  }
}

/** What `rotateThroughQueue` did: the rotation signed and where it went, and its outcome once recorded. */
export interface QueuedRotation {
  readonly registry: string;
  readonly sequence: number;
  readonly previous: string;
  readonly fingerprint: string;
  readonly uploadKey: string;
  readonly outcomeKey: string;
  readonly messageId: string | undefined;
  /** Undefined when none was recorded within the timeout. */
  readonly outcome: RotationOutcome | undefined;
}

/**
 * Rotating a deployed registry's key. The operator has put the new key into the signing key secret; this
 * signs rotation N (the published snapshot's count + 1, read at the registry's URL and checked to be
 * signed by the old key) with the old key and the new one, uploads it to the upload bucket under
 * `rotations/` (not `incoming/`), asks the publish function for it through the queue, and waits for the
 * outcome the function records.
 * @throws SubmissionError ROTATION_INVALID (the same key twice; a rotation of that number published that the
 *   snapshot does not count yet; with `compromised`, one to the same key waiting unmarked under `rotations/`:
 *   `refuseUnmarkedUnderWay`), ROTATION_NOT_CURRENT_KEY (the registry does not sign with the old key); KeyError
 *   KEY_UNTRUSTED (from `createSigner`, either key) for one whose Ed25519 point has small order or whose
 *   arithmetic is unbounded; having uploaded nothing.
 */
export async function rotateThroughQueue(options: {
  readonly bucket: string;
  readonly queueUrl: string;
  readonly oldSecretKey: string;
  readonly newSecretKey: string;
  /** Decrypts the old key, and the new one unless `newPassphrase` is given. */
  readonly passphrase?: string;
  /** Decrypts the new key: one put into the signing key secret with a passphrase of its own. */
  readonly newPassphrase?: string;
  /** The old key is no longer secret: the signed rotation says so (`compromised: true`). */
  readonly compromised?: boolean;
  /** The registry's public URL; default: the `url` of the config object in the upload bucket. */
  readonly url?: string;
  readonly endpoint?: string;
  readonly timeoutSeconds: number;
  readonly pollMs?: number;
  readonly log: (line: string) => void;
}): Promise<QueuedRotation> {
  const [
    { createSigner, readPublicKey, verifyDetachedSignature },
    rotation,
    rotate,
    errors,
    layout,
    verify,
    fetcher,
    queue,
    { ClientError },
  ] = await Promise.all([
    import('../index-builder/signing.ts'),
    import('../index-builder/rotation.ts'),
    import('../index-builder/pipeline/rotate.ts'),
    import('../index-builder/errors.ts'),
    import('../index-builder/layout.ts'),
    import('../index-builder/verify.ts'),
    import('../client/fetcher.ts'),
    import('../adapters/publish-queue.ts'),
    import('../client/errors.ts'),
  ]);
  const refuse = (...args: Parameters<typeof errors.problem>): never => {
    throw new errors.SubmissionError('INVALID_SUBMISSION', [errors.problem(...args)]);
  };
  // Each failure names its key: with two passphrases, "does not decrypt the signing key" alone does not say
  // which one is wrong.
  const signerOf = (which: string, armored: string, passphrase: string | undefined) =>
    createSigner(armored, passphrase).catch((error: unknown) => {
      if (error instanceof errors.KeyError)
        throw new errors.KeyError(error.code, `the ${which} key: ${error.message}`, { cause: error });
      throw error;
    });
  const previous = await signerOf('old', options.oldSecretKey, options.passphrase);
  // Before anything is uploaded, refused where its signer is made (KEY_UNTRUSTED): a registry key anyone can
  // sign as, or whose signatures cost unbounded work, would have every snapshot it signs refused by every
  // client.
  const next = await signerOf('new', options.newSecretKey, options.newPassphrase ?? options.passphrase);
  if (previous.fingerprint === next.fingerprint)
    refuse('ROTATION_INVALID', '/rotation/next/fingerprint', 'the new key is the old key', {
      found: next.fingerprint,
    });
  const client = createS3Client(options.endpoint);
  try {
    const store = new S3Store({ client, bucket: options.bucket });
    // The URL the rotation is signed for, as the function's config holds it (`parseRegistryUrl`: no trailing
    // slash), which it must equal: read raw, `https://r.example/` (typed so, or so in the object) was signed,
    // uploaded and then refused as of another registry, and an object that was not JSON was a SyntaxError.
    let url = options.url === undefined ? undefined : parseRegistryUrl(options.url);
    if (url === undefined) {
      const config = await store.get(layout.CONFIG_KEY);
      const object = `s3://${options.bucket}/${layout.CONFIG_KEY}`;
      const text = config ? new TextDecoder().decode(config.body) : undefined;
      const configured =
        text === undefined
          ? undefined
          : (readConfigJson(text, `registry config ${object}`) as { url?: unknown } | null)?.url;
      if (configured === undefined)
        throw usage(
          `s3://${options.bucket}/${layout.CONFIG_KEY} names no registry URL: give the registry's --url`,
        );
      url = parseRegistryUrlAt(configured, object);
    }
    // The published snapshot, past every cache: which rotation is next, and that the old key is current.
    // The fetcher's random `?v=`, not the clock's: one anyone can predict, they can ask the edge for first,
    // and have it keep the snapshot of then under it for this read.
    const http = fetcher.createHttpFetcher({ env: process.env });
    let snapshot: { key_fingerprint?: string; key_rotations?: number };
    try {
      const bytes = await fetcher.fetchBody(
        http,
        { name: url, bases: [url], timeoutMs: 30_000 },
        { path: layout.SIGNED_SNAPSHOT_KEY, maxBytes: fetcher.UNLISTED_LIMITS.snapshot, pastCaches: true },
      );
      const signed = verify.openSignedSnapshot(bytes);
      const keys = await Promise.all(
        [previous, next].map(async (s) => (await readPublicKey(s.publicKey)).key),
      );
      const check = await verifyDetachedSignature(signed.snapshot, signed.signature, keys);
      snapshot = JSON.parse(new TextDecoder().decode(signed.snapshot));
      if (!check.ok || check.fingerprint !== snapshot.key_fingerprint)
        refuse(
          'ROTATION_NOT_CURRENT_KEY',
          '/rotation/previous/fingerprint',
          `${url}/${layout.SIGNED_SNAPSHOT_KEY} is signed by neither key given`,
          { expected: previous.fingerprint, found: snapshot.key_fingerprint ?? '(none)' },
        );
      if (snapshot.key_fingerprint === next.fingerprint)
        refuse(
          'ROTATION_NOT_CURRENT_KEY',
          '/rotation/previous/fingerprint',
          `${url} already signs with the new key (rotation ${snapshot.key_rotations ?? 0}): nothing to rotate`,
          { expected: previous.fingerprint, found: next.fingerprint },
        );
      // Published, the snapshot not yet counting it (the function stopped while signing again): the function
      // finishes that one, and refuses any other of its number, as a rotation is never rewritten.
      const sequence = (snapshot.key_rotations ?? 0) + 1;
      const publishedRotation = await fetcher
        .fetchBody(
          http,
          { name: url, bases: [url], timeoutMs: 30_000 },
          { path: rotation.rotationKey(sequence), maxBytes: rotation.MAX_ROTATION_BYTES, pastCaches: true },
        )
        .catch((error: unknown) => {
          if (error instanceof ClientError && error.code === 'FETCH_NOT_FOUND') return undefined;
          throw error;
        });
      if (publishedRotation)
        refuse(
          'ROTATION_INVALID',
          '/rotation/sequence',
          `rotation ${sequence} is published already (${url}/${rotation.rotationKey(sequence)}) and the publish function finishes it at its next run; a rotation is never rewritten`,
        );
    } finally {
      await http.close();
    }
    const sequence = (snapshot.key_rotations ?? 0) + 1;
    if (options.compromised === true)
      await refuseUnmarkedUnderWay(store, sequence, previous, next, refuse, rotation);
    const { bytes } = await rotation.signRotation({
      registry: url,
      sequence,
      previous,
      next,
      now: new Date(),
      ...(options.compromised === true ? { compromised: true } : {}),
    });
    const uploadKey = rotate.rotationUploadKey(bytes);
    const outcomeKey = rotate.rotationOutcomeKey(uploadKey);
    await store.put(uploadKey, bytes, { contentType: 'application/json', cacheControl: CACHE_PRIVATE });
    const messageId = await queue.requestRotation(options.queueUrl, uploadKey);
    options.log(
      `uploaded rotation ${sequence} to s3://${options.bucket}/${uploadKey} (message ${messageId}); waiting for ${outcomeKey}`,
    );
    const deadline = Date.now() + options.timeoutSeconds * 1000;
    let outcome: RotationOutcome | undefined;
    for (;;) {
      const status = await store.get(outcomeKey);
      if (status) {
        outcome = JSON.parse(new TextDecoder().decode(status.body)) as RotationOutcome;
        break;
      }
      if (Date.now() >= deadline) break;
      await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 1000));
    }
    return {
      registry: url,
      sequence,
      previous: previous.fingerprint,
      fingerprint: next.fingerprint,
      uploadKey,
      outcomeKey,
      messageId,
      outcome,
    };
  } finally {
    client.destroy();
  }
}
