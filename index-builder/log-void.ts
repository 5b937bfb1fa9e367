/**
 * A void: the registry's signed word, appended to its transparency log, that an earlier publish or action
 * never took effect (its document refused for good after the log recorded it). The log is append-only and
 * every later entry chains after the stuck one, so the entry stays; the void says to replay the log as if it
 * had never been made. Signed by the registry key, as a rotation's step is (rotation.ts), over the statement
 * log.ts `voidStatement` renders from the entry's own fields; the key and signature ride in the entry, so a
 * reader checks it with nothing more to fetch. Which entry it may void, and which key must sign it, is log.ts
 * `checkVoids` (no openpgp.js there: the client's light paths read the log); this module signs and verifies.
 *
 * @example
 * const fields = await signVoid({ voided, reason: 'the store refused for good', time, signer, registry: url });
 * writer.append(fields); // a LogWriter's next entry
 */

import { isSecretKeyText } from './armor.ts';
import { sha256Hex } from './digest.ts';
import { TrustError } from './errors.ts';
import { type LogEntry, type ReadEntry, voidStatement } from './log.ts';
import { readPublicKey, type Signer, verifyDetachedSignature } from './signing.ts';

/**
 * The fields of a void of `voided` (the next entry's, seq and prev the log's to give), signed by `signer`,
 * the registry's key, for `registry`, its URL as its config and snapshots name it (as `signRotation`'s is).
 */
export async function signVoid(options: {
  readonly voided: ReadEntry;
  readonly reason: string;
  readonly time: string;
  readonly signer: Signer;
  readonly registry: string;
}): Promise<Omit<LogEntry, 'seq' | 'prev'>> {
  const { voided, signer } = options;
  const unsigned = {
    time: options.time,
    type: 'void' as const,
    ...(voided.entry.plugin !== undefined ? { plugin: voided.entry.plugin } : {}),
    ...(voided.entry.version !== undefined ? { version: voided.entry.version } : {}),
    signer: signer.fingerprint,
    detail: {
      entry: String(voided.entry.seq),
      hash: voided.hash,
      reason: options.reason,
      registry: options.registry,
    },
  };
  const text = new TextEncoder().encode(voidStatement(unsigned));
  return {
    ...unsigned,
    digest: sha256Hex(text),
    key: signer.publicKey,
    signature: await signer.sign(text),
  };
}

/**
 * Verifies each void's signature: its statement is the one its digest names, and the key it carries, whose
 * fingerprint is the signer the entry names (which `checkVoids` held to the registry's key), signed it.
 * @throws TrustError LOG_VOID_UNSIGNED naming the entry and what failed.
 */
export async function verifyVoidSignatures(entries: readonly ReadEntry[]): Promise<void> {
  for (const { entry } of entries) {
    if (entry.type !== 'void') continue;
    const where = `log entry ${entry.seq} (void)`;
    const unsigned = (why: string): never => {
      throw new TrustError('LOG_VOID_UNSIGNED', `${where} ${why}: only the registry's key voids an entry`);
    };
    const text = new TextEncoder().encode(voidStatement(entry));
    if (sha256Hex(text) !== entry.digest) unsigned('has a digest that is not its statement');
    let key: Awaited<ReturnType<typeof readPublicKey>>;
    try {
      key = await readPublicKey(entry.key as string);
    } catch {
      return unsigned('carries a key that is not an OpenPGP public key');
    }
    if (key.fingerprint !== entry.signer)
      unsigned(`carries key ${key.fingerprint}, not ${entry.signer}, the signer it names`);
    // Published with its secret part (a secret key, a secret subkey under its public key), anyone who
    // reads the log may sign as it: no void is taken by such a key, as the registry never writes one.
    if (isSecretKeyText(entry.key as string, key))
      unsigned(
        `carries key ${key.fingerprint} with its secret key material, which anyone reading the log may sign with`,
      );
    const verdict = await verifyDetachedSignature(text, entry.signature as string, [key.key]);
    if (!verdict.ok) unsigned(`is not signed by key ${entry.signer}: ${verdict.message}`);
  }
}
