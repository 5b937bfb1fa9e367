/**
 * `plugindex rotate-key --registry DIR --new-key FILE`: a local registry moves to a new signing key.
 *
 * Under the registry's lock: rotation N (the published snapshot's count + 1) is signed by the current key
 * and the new one and checked as the pipeline will check it; the old secret key is kept as
 * `DIR/keys/retired/<fingerprint>.asc`, the new one becomes `DIR/keys/registry-secret.asc`, and
 * `rotateRegistryKey` publishes the rotation and re-signs everything (index-builder/pipeline/rotate.ts).
 *
 * Safe if interrupted: the signed rotation is kept in `DIR/state/rotation-pending.json` before anything
 * else changes, and the steps after it are each done again harmlessly, so running the same command again
 * (with the same new key) finishes the job wherever the first run stopped:
 *   - before the pending file is written, nothing has changed;
 *   - after it, the run again takes the rotation from it (never signs another: rotation N may already be
 *     published with those bytes, and is never rewritten), rather than from the current key;
 *   - the old key is copied to `keys/retired/` before the new one replaces it (each by temp file and
 *     rename), so no secret key is ever lost: once replaced, the registry key file already is the new key;
 *   - `rotateRegistryKey` finishes a rotation it finds published, or finds it complete;
 *   - the pending file goes last.
 */
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { readIfExists, writeFileAtomic } from '../../client/disk/atomic.ts';
import { problem, SubmissionError } from '../../index-builder/errors.ts';
import { SNAPSHOT_KEY } from '../../index-builder/layout.ts';
import type { SnapshotDocument } from '../../index-builder/model.ts';
import {
  checkRotation,
  type RotationResult,
  rotateRegistryKey,
} from '../../index-builder/pipeline/rotate.ts';
import { readJson } from '../../index-builder/pipeline/site-writer.ts';
import { readSignedRotation, signRotation } from '../../index-builder/rotation.ts';
import { createSigner } from '../../index-builder/signing.ts';
import { openRegistry, PENDING_ROTATION_FILE, SECRET_KEY_FILE, withRegistryLock } from './registry.ts';

/** The rotation under way, kept until it is complete (in DIR/state/, the registry's own bookkeeping). */
export { PENDING_ROTATION_FILE };
/** Old secret keys, by fingerprint. */
export const RETIRED_KEYS_DIR = path.join('keys', 'retired');

export type LocalRotation =
  | {
      readonly written: string;
      readonly sequence: number;
      readonly fingerprint: string;
      readonly compromised?: true;
    }
  | (RotationResult & { readonly retired: string; readonly resumed: boolean });

/**
 * Rotates the registry in `dir` to the secret key `newSecretKey` (armored; `passphrase` decrypts it, as it
 * does the registry's current key). With `output`, only writes the signed rotation there.
 * @throws SubmissionError (ROTATION_*) having changed nothing; KeyError for a key that does not read, and
 *   KEY_UNTRUSTED (from `createSigner`) for a new key whose Ed25519 point has small order or whose
 *   arithmetic is unbounded.
 */
export async function rotateLocalRegistry(
  dir: string,
  newSecretKey: string,
  options: {
    readonly passphrase?: string;
    readonly output?: string;
    /** The old key is no longer secret: the signed rotation says so (`compromised: true`). */
    readonly compromised?: boolean;
  } = {},
): Promise<LocalRotation> {
  return withRegistryLock(dir, async () => {
    const registry = await openRegistry(dir);
    const ctx = registry.context;
    // Before anything is written: a weak or costly key, every snapshot it signed refused by every client, is
    // refused here (KEY_UNTRUSTED, naming it), as any registry key is where its signer is made.
    const next = await createSigner(newSecretKey, options.passphrase, ctx.clock);
    const pendingFile = path.join(dir, PENDING_ROTATION_FILE);
    const pending = await readIfExists(pendingFile);
    let bytes: Uint8Array;
    if (pending) {
      bytes = new Uint8Array(pending);
      const read = readSignedRotation(bytes, pendingFile);
      if (read.rotation.next.fingerprint !== next.fingerprint)
        throw new SubmissionError('INVALID_SUBMISSION', [
          problem(
            'ROTATION_INVALID',
            '/rotation/next/fingerprint',
            `a rotation to key ${read.rotation.next.fingerprint} is under way (${pendingFile}): finish it by running rotate-key again with that key`,
            { expected: read.rotation.next.fingerprint, found: next.fingerprint },
          ),
        ]);
      // The rotation under way was signed without the mark, and may be published already (never rewritten):
      // finishing it under --compromised would report a mark no client will see. One marked is finished as
      // marked, with or without the flag (the run again need not repeat it).
      if (options.compromised === true && read.rotation.compromised !== true)
        throw new SubmissionError('INVALID_SUBMISSION', [
          problem(
            'ROTATION_INVALID',
            '/rotation/compromised',
            `the rotation under way (${pendingFile}) was signed without --compromised, and a rotation is never rewritten: finish it by running rotate-key again without --compromised (it then marks nothing)`,
          ),
        ]);
    } else {
      const snapshot = await readJson<SnapshotDocument>(ctx.site, SNAPSHOT_KEY);
      const signed = await signRotation({
        registry: ctx.config.url,
        sequence: (snapshot?.key_rotations ?? 0) + 1,
        previous: ctx.signer,
        next,
        now: ctx.clock.now(),
        ...(options.compromised === true ? { compromised: true } : {}),
      });
      bytes = signed.bytes;
    }
    if (options.output !== undefined) {
      // Checked as the pipeline will: a refusal writes nothing.
      const checked = await checkRotation({ ...ctx, signer: next }, bytes);
      await writeFileAtomic(options.output, bytes);
      return {
        written: options.output,
        sequence: checked.sequence,
        fingerprint: checked.next,
        ...(checked.read.rotation.compromised === true ? { compromised: true as const } : {}),
      };
    }
    // The pipeline's one check (it reads every plugin document), under the lock, before anything here
    // changes: a refusal leaves the registry as it was. The pending rotation and the key files are written
    // once it passes; nothing else changes the documents meanwhile (every local writer takes the lock).
    let retired = '';
    const result = await rotateRegistryKey({ ...ctx, signer: next }, bytes, {
      checked: async (checked) => {
        if (!pending) await writeFileAtomic(pendingFile, bytes);
        retired = path.join(dir, RETIRED_KEYS_DIR, `${checked.previous}.asc`);
        const keyFile = path.join(dir, SECRET_KEY_FILE);
        if (ctx.signer.fingerprint !== next.fingerprint) {
          // Still the old key: kept first, then replaced (a crash between leaves both, and the old one in place).
          await writeFileAtomic(retired, await readFile(keyFile), { mode: 0o600 });
          await writeFileAtomic(keyFile, newSecretKey, { mode: 0o600 });
        }
      },
    });
    await rm(pendingFile, { force: true });
    return { ...result, retired, resumed: pending !== undefined };
  });
}
