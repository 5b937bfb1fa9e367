/**
 * Registry key rotation, the publisher's side. The operator signs rotation N (index-builder/rotation.ts)
 * with the key the registry signs with now and with the next one, makes the next one the registry's signing
 * key (`ctx.signer`), and hands the signed rotation to `rotateRegistryKey`, which checks it against what is
 * published and then:
 *
 *   1. writes `keys/rotation/<N>.json` (never rewritten: clients follow it from the key they pinned);
 *   2. appends a `rotate-key` entry to the transparency log (signer: the old key; digest: the rotation's);
 *   3. re-signs everything with the new key, through the rebuild (pipeline/index.ts): every version's
 *      `manifest.json.asc` and the `manifest_signature` its plugin document carries, every plugin document
 *      and page, every bin and index document, `keys/registry.asc`, and last the snapshot, which counts
 *      N rotations and is the commit point, as for a publish.
 *
 * Until that snapshot is written, clients trust the old key's snapshot, as during any rebuild (a document
 * rewritten before it does not match the digest the old snapshot gives, and is refused until it does); a
 * client takes a manifest's signature from its plugin document, never from the rewritten `.asc` alone.
 * A run that dies part way is finished by running it again with the same bytes: the rotation is then
 * found published with those bytes, its log entry found (LogWriter.logged: unvouched, named by its intent
 * record, or past what `snapshot.signed.json` vouches for), and the re-signing redone whole. A refusal writes
 * nothing.
 *
 * @example
 * const result = await rotateRegistryKey({ ...ctx, signer: newSigner }, signedRotationBytes);
 */
import type { Key } from 'openpgp';
import { isSecretKeyText } from '../armor.ts';
import { sha256Hex } from '../digest.ts';
import { KeyError, type Problem, problem, SubmissionError, TrustError } from '../errors.ts';
import {
  isSafeKey,
  REGISTRY_PUBLIC_KEY_KEY,
  REVOKED_KEYS_KEY,
  SIGNED_SNAPSHOT_KEY,
  SNAPSHOT_KEY,
} from '../layout.ts';
import { parseRevokedKeys } from '../lifecycle.ts';
import type { SnapshotDocument } from '../model.ts';
import { type ReadRotation, readSignedRotation, rotationKey, verifyRotationStep } from '../rotation.ts';
import { readPublicKey, untrustedKeyProblem } from '../signing.ts';
import { CACHE_IMMUTABLE } from '../store.ts';
import { openSignedSnapshot } from '../verify.ts';
import type { PipelineContext } from './context.ts';
import { retiredFingerprints } from './evaluate.ts';
import { rebuildRegistry } from './index.ts';
import { LogWriter } from './log-writer.ts';
import { checkEveryPublished, isAltered } from './published.ts';
import { putFile, readJson, withWriteLog } from './site-writer.ts';
import { refuseStuckRotation } from './stuck-entries.ts';

/**
 * Where a rotation submitted to a deployed registry waits in the intake store (the upload bucket), under a
 * name of the sha256 of its bytes: not `incoming/`, which holds bundles and actions.
 */
export const ROTATION_UPLOADS_PREFIX = 'rotations/';

/** `rotations/<sha256>.json` for a signed rotation's bytes. */
export function rotationUploadKey(bytes: Uint8Array): string {
  return `${ROTATION_UPLOADS_PREFIX}${sha256Hex(bytes)}.json`;
}

/**
 * `status/rotation-<sha256>.json`: the outcome the publish function records for an uploaded rotation. A
 * request may name any key (it is a queue message, not only what `rotate-key --bucket` uploads); when its
 * last segment would not make a key the stores write (a space, a `+`, too long), the outcome is named for
 * the SHA-256 of the whole key instead: a name the store refuses made the outcome's write throw, and the
 * request was redelivered five times, holding the queue's one message group for hours.
 */
export function rotationOutcomeKey(uploadKey: string): string {
  const name = uploadKey.slice(uploadKey.lastIndexOf('/') + 1).replace(/\.json$/, '');
  const key = `status/rotation-${name}.json`;
  return isSafeKey(key) ? key : `status/rotation-${sha256Hex(uploadKey)}.json`;
}

/**
 * What became of a rotation uploaded to a deployed registry, as the publish function records it at
 * `rotationOutcomeKey` and `plugindex rotate-key --bucket` reads it.
 */
export interface RotationOutcome {
  readonly rotation: string;
  readonly status: 'rotated' | 'already-rotated' | 'rejected';
  readonly sequence?: number;
  readonly previous?: string;
  readonly fingerprint?: string;
  readonly generation?: number;
  /** Present (true) when the rotation is marked as made because the old key is no longer secret. */
  readonly compromised?: true;
  readonly problems: readonly Problem[];
  readonly processed: string;
}

/** A rotation checked against the published registry. */
export interface CheckedRotation {
  readonly read: ReadRotation;
  readonly sequence: number;
  /** Fingerprints of the key rotated from and the key rotated to. */
  readonly previous: string;
  readonly next: string;
  /**
   * `new`: to publish; `resume`: `keys/rotation/<N>.json` is published with these bytes, the re-signing is
   * not finished; `done`: the published snapshot counts it, signed by its new key, and
   * `snapshot.signed.json` carries that snapshot.
   */
  readonly state: 'new' | 'resume' | 'done';
  /** The published snapshot. */
  readonly snapshot: SnapshotDocument;
}

export interface RotationResult {
  /** `already-rotated`: nothing was written, the rotation was complete. */
  readonly status: 'rotated' | 'already-rotated';
  readonly sequence: number;
  readonly previous: string;
  readonly fingerprint: string;
  /** Present (true) when the rotation says the key rotated from is no longer secret (`--compromised`). */
  readonly compromised?: true;
  readonly generation: number;
  readonly plugins: number;
  /** Manifest signatures rewritten. */
  readonly manifests: number;
  /** Every key rewritten that a CDN caches: documents, the re-signed `.asc` files, the rotation itself. */
  readonly invalidate: readonly string[];
}

function refuse(
  code:
    | 'ROTATION_INVALID'
    | 'ROTATION_NOT_CURRENT_KEY'
    | 'ROTATION_NOT_SIGNING_KEY'
    | 'PUBLISHED_DOCUMENT_ALTERED',
  path: string,
  message: string,
  detail: { expected?: string; found?: string } = {},
): never {
  const problems: Problem[] = [problem(code, path, message, detail)];
  throw new SubmissionError('INVALID_SUBMISSION', problems);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && sha256Hex(a) === sha256Hex(b);
}

/**
 * The published key with fingerprint `fingerprint`, as an openpgp key: `keys/registry.asc`, or (a run that
 * died after that file was rewritten, before the snapshot) the rotation's own copy of its previous key,
 * which the fingerprint binds all the same.
 */
async function keyWithFingerprint(
  ctx: PipelineContext,
  fingerprint: string,
  read: ReadRotation,
): Promise<Key> {
  const published = await ctx.site.get(REGISTRY_PUBLIC_KEY_KEY);
  const candidates = [published ? new TextDecoder().decode(published.body) : '', read.rotation.previous.key];
  for (const armored of candidates) {
    const info = await readPublicKey(armored).catch(() => undefined);
    if (info?.fingerprint === fingerprint) return info.key;
  }
  return refuse(
    'ROTATION_NOT_CURRENT_KEY',
    '/rotation/previous/key',
    `neither ${REGISTRY_PUBLIC_KEY_KEY} nor the rotation holds key ${fingerprint}, the key the snapshot names`,
  );
}

/** Whether `snapshot.signed.json` carries the published `snapshot.json`: the one object clients read first. */
async function signedCarriesPair(ctx: PipelineContext): Promise<boolean> {
  const pair = await ctx.site.get(SNAPSHOT_KEY);
  const signed = await ctx.site.get(SIGNED_SNAPSHOT_KEY);
  if (!pair || !signed) return false;
  try {
    return sameBytes(openSignedSnapshot(signed.body).snapshot, pair.body);
  } catch (error) {
    if (error instanceof TrustError) return false; // not the envelope: finishing the rotation rewrites it
    throw error;
  }
}

/**
 * The length of the log `snapshot.signed.json` vouches for (what clients read), 0 when there is none: where a
 * resumed rotation looks for its entry from. Only where to look: the entries are checked against the head
 * the writer takes (`currentLogHead`), whatever this says.
 */
async function clientLogLength(ctx: PipelineContext): Promise<number> {
  const signed = await ctx.site.get(SIGNED_SNAPSHOT_KEY);
  if (!signed) return 0;
  try {
    const document = JSON.parse(
      new TextDecoder().decode(openSignedSnapshot(signed.body).snapshot),
    ) as Partial<SnapshotDocument> | null;
    const length = document?.log?.length;
    return typeof length === 'number' && Number.isSafeInteger(length) && length >= 0 ? length : 0;
  } catch (error) {
    if (error instanceof TrustError || error instanceof SyntaxError) return 0;
    throw error;
  }
}

/**
 * What else a key a rotation goes to is, or undefined: a key the registry rotated away from (a client that
 * followed that rotation refuses a rotation back to it, client/key-chain.ts, and a published rotation is
 * never rewritten: every such client would be stuck), a key the registry's operator revoked (any of its
 * fingerprints), an operator's key (never the registry key: the trust model), or a trusted publisher's (a
 * plugin owner's, or a key that signed a published version as its publisher, is checked last, `keyUseIn`).
 */
async function keyTakenBy(
  ctx: PipelineContext,
  next: { readonly fingerprint: string; readonly key: string },
): Promise<string | undefined> {
  const fingerprints = await fingerprintsOf(next);
  if ((await retiredFingerprints(ctx.site)).some((fingerprint) => fingerprints.has(fingerprint)))
    return 'a key the registry rotated away from';
  const revoked = await ctx.site.get(REVOKED_KEYS_KEY);
  const list = revoked ? parseRevokedKeys(new TextDecoder().decode(revoked.body)) : undefined;
  if (list?.keys.some((key) => fingerprints.has(key.fingerprint)))
    return "a key the registry's operator revoked";
  if (ctx.config.operators.some((operator) => fingerprints.has(operator.fingerprint)))
    return "an operator's key";
  if (ctx.config.publishers.some((publisher) => fingerprints.has(publisher.fingerprint)))
    return "a trusted publisher's key";
  return undefined;
}

/** The fingerprints of `next`, its primary key's and its subkeys', as the pipeline compares keys. */
async function fingerprintsOf(next: {
  readonly fingerprint: string;
  readonly key: string;
}): Promise<Set<string>> {
  const info = await readPublicKey(next.key).catch(() => undefined);
  return new Set([
    next.fingerprint,
    ...(info?.key.getKeys().map((key) => key.getFingerprint().toUpperCase()) ?? []),
  ]);
}

/** What a plugin document says of a key a rotation goes to: it owns the plugin, or it published `version`. */
interface KeyUse {
  readonly plugin: string;
  /** The newest version whose publisher signature is the key's, when it is not an owner of the plugin. */
  readonly version?: string;
}

/**
 * What published plugin document `body` (of `name`) says of a key of `fingerprints`, or undefined. An owner:
 * an open registry's owners are listed nowhere else, and rotated to, every action the owner signed was refused
 * (PUBLISHER_IS_REGISTRY_KEY), the plugin's owner locked out of it, as a trusted publisher would be. A former
 * owner (the plugin transferred since) whose publisher signature is on a version: rotated to, the history held
 * publisher signatures and registry signatures by one key, each read for the other. A document that does not
 * parse says nothing: it is `checkEveryPublished`'s to refuse.
 */
function keyUseIn(name: string, body: Uint8Array, fingerprints: ReadonlySet<string>): KeyUse | undefined {
  let document: { owners?: unknown; versions?: unknown } | null;
  try {
    document = JSON.parse(new TextDecoder().decode(body)) as typeof document;
  } catch {
    return undefined;
  }
  const { owners, versions } = document ?? {};
  if (Array.isArray(owners) && owners.some((owner) => typeof owner === 'string' && fingerprints.has(owner)))
    return { plugin: name };
  if (!Array.isArray(versions)) return undefined;
  // Newest first, as the document lists them.
  const signed = (versions as unknown[]).find(
    (v): v is { version: string } =>
      typeof v === 'object' &&
      v !== null &&
      typeof (v as { publisher?: unknown }).publisher === 'string' &&
      fingerprints.has((v as { publisher: string }).publisher) &&
      typeof (v as { version?: unknown }).version === 'string',
  );
  return signed ? { plugin: name, version: signed.version } : undefined;
}

/**
 * Checks a signed rotation against the published registry, writing nothing: its form, that it is the next
 * rotation (the published snapshot's `key_rotations` + 1) of this registry, from the key the snapshot
 * names to the key `ctx.signer` signs with, signed by both.
 * @throws SubmissionError INVALID_SUBMISSION with one problem: ROTATION_INVALID (form, registry, sequence,
 *   signatures, the same key, a key rotated away from, revoked, an operator's or a publisher's; for a new
 *   rotation, a plugin owner's, or one that signed a published version as its publisher; a new key
 *   no signature by which is taken (at /rotation/next/key), a rotation N
 *   already published with other bytes), ROTATION_NOT_CURRENT_KEY (not from the key the registry signs
 *   with), ROTATION_NOT_SIGNING_KEY (not to the key `ctx.signer` holds), PUBLISHED_DOCUMENT_ALTERED (a
 *   rotation whose rebuild has not begun, and a published document not what the registry published:
 *   `checkEveryPublished`).
 */
export async function checkRotation(ctx: PipelineContext, bytes: Uint8Array): Promise<CheckedRotation> {
  let read: ReadRotation;
  try {
    read = readSignedRotation(bytes);
  } catch (error) {
    if (!(error instanceof TrustError)) throw error;
    return refuse('ROTATION_INVALID', '', error.message);
  }
  const { rotation } = read;
  const snapshot = await readJson<SnapshotDocument>(ctx.site, SNAPSHOT_KEY);
  if (!snapshot)
    return refuse(
      'ROTATION_NOT_CURRENT_KEY',
      '/rotation/previous',
      'the registry has published nothing yet: there is no key to rotate from',
    );
  const url = ctx.config.url;
  if (rotation.registry !== url)
    refuse('ROTATION_INVALID', '/rotation/registry', `the rotation is of another registry`, {
      expected: url,
      found: rotation.registry,
    });
  const published = snapshot.key_rotations ?? 0;
  const sequence = rotation.sequence;
  const existing = await ctx.site.get(rotationKey(sequence));
  const same = existing !== undefined && sameBytes(existing.body, bytes);
  const base = { read, sequence, previous: rotation.previous.fingerprint, next: rotation.next.fingerprint };
  if (sequence <= published) {
    // A redelivered request, or a run repeated after it finished: nothing to do.
    // Done once what clients read first carries it too: a run that died between the pair and
    // `snapshot.signed.json` left the old key's there, which only finishing the rotation rewrites.
    if (sequence === published && same && snapshot.key_fingerprint === rotation.next.fingerprint)
      return { ...base, state: (await signedCarriesPair(ctx)) ? 'done' : 'resume', snapshot };
    refuse(
      'ROTATION_INVALID',
      '/rotation/sequence',
      `rotation ${sequence} is already published: the registry is at rotation ${published}`,
      { expected: String(published + 1), found: String(sequence) },
    );
  }
  if (sequence !== published + 1)
    refuse(
      'ROTATION_INVALID',
      '/rotation/sequence',
      `the registry is at rotation ${published}: the next rotation is ${published + 1}`,
      { expected: String(published + 1), found: String(sequence) },
    );
  if (rotation.previous.fingerprint !== snapshot.key_fingerprint)
    refuse(
      'ROTATION_NOT_CURRENT_KEY',
      '/rotation/previous/fingerprint',
      'the rotation is not from the key the registry signs with',
      { expected: snapshot.key_fingerprint, found: rotation.previous.fingerprint },
    );
  // The key it names as the one it rotates from is that key, public: the registry reads it from here as a key
  // retired (evaluate.ts `retiredFingerprints`), where another key under the right fingerprint, signed by
  // the right one, passed and retired that key's fingerprints; and a secret one would publish the old key
  // for anyone to sign a client still holding it a snapshot with. A client reads the key it holds instead.
  const previousKey = await readPublicKey(rotation.previous.key).catch(() => undefined);
  if (
    previousKey?.fingerprint !== rotation.previous.fingerprint ||
    isSecretKeyText(rotation.previous.key, previousKey)
  )
    refuse(
      'ROTATION_INVALID',
      '/rotation/previous/key',
      `the key the rotation rotates from must be the public key of ${rotation.previous.fingerprint}`,
      {
        expected: `the public key of ${rotation.previous.fingerprint}`,
        found: !previousKey
          ? 'no OpenPGP public key'
          : previousKey.fingerprint !== rotation.previous.fingerprint
            ? `key ${previousKey.fingerprint}`
            : 'secret key material',
      },
    );
  if (rotation.next.fingerprint === snapshot.key_fingerprint)
    refuse(
      'ROTATION_INVALID',
      '/rotation/next/fingerprint',
      'the rotation is to the key it rotates from: a new key is needed',
      { found: rotation.next.fingerprint },
    );
  const taken = await keyTakenBy(ctx, rotation.next);
  if (taken)
    refuse(
      'ROTATION_INVALID',
      '/rotation/next/fingerprint',
      `the rotation is to ${taken}: the registry's key is its own, new, and never one it revoked`,
      { found: rotation.next.fingerprint },
    );
  // A new key no signature by which is taken (small order, unbounded arithmetic: `untrustedKeyProblem`) was
  // refused only as a signature that does not verify (/signatures), which says nothing of the key; rotate-key
  // refuses it first (`readTrustedKey`), a rotation made otherwise is told why here, at the key.
  const nextKey = await readPublicKey(rotation.next.key).catch(() => undefined);
  const untrusted = nextKey && untrustedKeyProblem(nextKey.key);
  if (untrusted)
    refuse(
      'ROTATION_INVALID',
      '/rotation/next/key',
      `the new key ${rotation.next.fingerprint} cannot be trusted, no signature by it is ever taken (nor by any client, which could never follow the rotation): ${untrusted}`,
      {
        expected:
          'an Ed25519 key (gpg --quick-gen-key NAME ed25519, or plugindex keygen), or RSA of at most 16384 bits with exponent 65537',
      },
    );
  if (existing && !same)
    refuse(
      'ROTATION_INVALID',
      '/rotation/sequence',
      `${rotationKey(sequence)} is already published with other bytes, and is never rewritten: finish that rotation (run it again with the key it names)`,
    );
  if (rotation.next.fingerprint !== ctx.signer.fingerprint)
    refuse(
      'ROTATION_NOT_SIGNING_KEY',
      '/rotation/next/fingerprint',
      "the rotation is not to the key the registry now signs with: make the new key the registry's signing key first",
      { expected: ctx.signer.fingerprint, found: rotation.next.fingerprint },
    );
  const current = await keyWithFingerprint(ctx, snapshot.key_fingerprint, read);
  try {
    await verifyRotationStep(read, { current, sequence, registry: url });
  } catch (error) {
    if (!(error instanceof TrustError)) throw error;
    refuse('ROTATION_INVALID', '/signatures', error.message);
  }
  // Last, as it reads every plugin document: until its rebuild begins, nothing re-signed by the new key may be
  // other than what the old one signed. A rotation found published is checked too: a run that died between
  // publishing it and marking its rebuild (a log refused, a store down) left the documents untouched and the
  // catalog's record standing, and skipping the check let anyone edit one in between for the retry to sign.
  // Once the rebuild is marked, the catalog reads as outdated and this checks nothing (the rebuild takes the
  // documents as they are, as every run does until it is done).
  // In the same pass, for a new rotation only: a plugin owner's key, or a key whose publisher signature is on
  // a published version (`keyUseIn`), judged once the documents are found as published (an edited one named
  // another owner) and the cheap checks passed. A rotation published already is finished whatever it goes to:
  // one a release before these checks published, its run dead before the rebuild, was refused for good, the
  // registry left ROTATION_PENDING until its files were deleted by hand; the owner it locks out is mended by
  // an operator's transfer of the plugin.
  const fingerprints = existing ? undefined : await fingerprintsOf(rotation.next);
  const uses: KeyUse[] = [];
  const visit =
    fingerprints &&
    ((name: string, body: Uint8Array) => {
      const use = keyUseIn(name, body, fingerprints);
      if (use) uses.push(use);
    });
  await checkEveryPublished(ctx.site, ctx.intake, visit).catch((error: unknown) => {
    if (!isAltered(error)) throw error;
    refuse(
      'PUBLISHED_DOCUMENT_ALTERED',
      '',
      `${error.message}. A key rotation signs nothing the old key did not: mend the published store first, then rotate`,
    );
  });
  // The first by name, whatever order the reads finished in: the same refusal every time it is run.
  const use = uses.sort((a, b) => (a.plugin < b.plugin ? -1 : a.plugin > b.plugin ? 1 : 0))[0];
  if (use)
    refuse(
      'ROTATION_INVALID',
      '/rotation/next/fingerprint',
      use.version === undefined
        ? `the rotation is to the key of ${use.plugin}'s owner: the registry's key is its own, new, and never one it revoked`
        : `the rotation is to the key that signed ${use.plugin}@${use.version} as its publisher (no owner of ${use.plugin} now): its publisher signatures and the registry's would be one key's in the history; the registry's key is its own, new, and never one it revoked`,
      { found: rotation.next.fingerprint },
    );
  return { ...base, state: existing ? 'resume' : 'new', snapshot };
}

/**
 * The key `read` rotates from, when `read` is signed by it and, as its next key, by `ctx.signer`'s; else
 * undefined. Until the rotation's snapshot is published, the published one is that key's, not `ctx.signer`'s:
 * the log head it signs is what a lost `state/log.json` gives way to (log-writer.ts `currentLogHead`), and
 * only the operator's own next key, in the rotation it signed, vouches for the key before it.
 */
async function keyRotatedFrom(ctx: PipelineContext, read: ReadRotation): Promise<Key | undefined> {
  // A previous key that is no key vouches for nothing (KEY_INVALID); any other failure is a fault, thrown.
  const previous = await readPublicKey(read.rotation.previous.key).catch((error: unknown) => {
    if (!(error instanceof KeyError)) throw error;
    return undefined;
  });
  if (!previous) return undefined;
  try {
    const next = await verifyRotationStep(read, { current: previous.key, sequence: read.rotation.sequence });
    return next.fingerprint === ctx.signer.fingerprint ? previous.key : undefined;
  } catch (error) {
    if (!(error instanceof TrustError)) throw error;
    return undefined;
  }
}

/**
 * Publishes a signed rotation and re-signs the registry with the new key (`ctx.signer`). Idempotent: the
 * same bytes again finish an interrupted rotation, or do nothing once it is complete.
 * `options.checked`, when given, is awaited once the rotation passes `checkRotation` and before anything is
 * published, whatever its state: a caller with steps of its own between the check and the publishing (the
 * local rotate-key keeps the rotation and swaps its key files) takes them there, where it checked first and
 * this read every plugin document a second time. Its errors are thrown, nothing published.
 * @throws SubmissionError as `checkRotation` does, having written nothing; a store or signing failure as
 *   thrown (run it again).
 */
export async function rotateRegistryKey(
  context: PipelineContext,
  signedRotation: Uint8Array,
  options: { readonly checked?: (checked: CheckedRotation) => Promise<void> } = {},
): Promise<RotationResult> {
  const { ctx, log } = withWriteLog(context);
  const checked = await checkRotation(ctx, signedRotation);
  await options.checked?.(checked);
  const { read, sequence, previous, next } = checked;
  const summary = {
    sequence,
    previous,
    fingerprint: next,
    ...(read.rotation.compromised === true ? { compromised: true as const } : {}),
  };
  if (checked.state === 'done')
    return {
      status: 'already-rotated',
      ...summary,
      generation: checked.snapshot.generation,
      plugins: 0,
      manifests: 0,
      invalidate: [],
    };
  // Before the rotation is published or logged: its rebuild would sign over a stuck publish (stuck-entries.ts).
  const rotatingFrom = await keyRotatedFrom(ctx, read);
  await refuseStuckRotation(ctx, rotatingFrom);
  const key = rotationKey(sequence);
  if (checked.state === 'new') await putFile(ctx.site, key, signedRotation, CACHE_IMMUTABLE);
  // Once in the log, even when a run died after appending it (its entry is then past what the snapshot vouches).
  // Found by its intent record, wherever other entries put it since (log-writer.ts).
  const intent = `rotation-${sequence}`;
  // Resumed, its entry may be vouched for already by its own snapshot (`snapshot.json`, the next key's: a run
  // that died before `snapshot.signed.json`), its intent record lost with `state/`: looked for from the log
  // the snapshot clients read vouches for, it was appended again over the one published.
  const writer = await LogWriter.open(ctx, {
    intents: [intent],
    rotatingFrom,
    ...(checked.state === 'resume' ? { since: await clientLogLength(ctx) } : {}),
  });
  if (!writer.logged('rotate-key', read.digest)) {
    writer.append(
      {
        time: ctx.clock.now().toISOString(),
        type: 'rotate-key',
        signer: previous,
        digest: read.digest,
        // The mark in the log too, so an audit of the log alone tells a compromise from a routine rotation.
        detail: {
          fingerprint: next,
          sequence: String(sequence),
          ...(read.rotation.compromised === true ? { compromised: 'true' } : {}),
        },
      },
      intent,
    );
    await writer.flush();
  }
  const rebuilt = await rebuildRegistry(ctx, { resignManifests: true, keyRotations: sequence });
  await writer.forget([intent]);
  // The rotation too, though immutable: a client that asked for it before it existed may have a 404 cached.
  const invalidate = [...new Set([...log.mutableKeys(), ...rebuilt.invalidate, key])].sort();
  return {
    status: 'rotated',
    ...summary,
    generation: rebuilt.generation,
    plugins: rebuilt.plugins,
    manifests: rebuilt.manifests,
    invalidate,
  };
}
