/**
 * Errors of the consumer library, one stable code each. Trust failures of the published documents
 * themselves are the core's `TrustError` (index-builder/verify.ts codes); the codes here marked as refusals
 * are the client's own trust checks (a response over its cap, an install or lock that no longer matches
 * what was signed), and a command exits 3 for them as for any TrustError.
 */

import { TrustError } from '../index-builder/errors.ts';
import type { LogDisagreement } from './log-consistency.ts';

export type ClientErrorCode =
  /** A document asked of the trusted snapshot before what it hangs on was verified (a caller's defect). */
  | 'CLIENT_OUT_OF_ORDER'
  /** The client configuration (config.json) is not what this version reads (names the JSON pointer), or a folder. */
  | 'CLIENT_CONFIG_INVALID'
  /** No configured registry has that name. */
  | 'REGISTRY_NOT_FOUND'
  /**
   * A frozen install of a lock entry whose source (registry, folder, manifest URL) this machine does not
   * configure, so no key it trusts checks it; `--trust-lock` takes the lock's digests alone instead.
   */
  | 'SOURCE_NOT_CONFIGURED'
  /** A configured registry whose pinned key is missing from the data directory (or is not the one configured). */
  | 'REGISTRY_NOT_PINNED'
  /** A registry's trust state (`<data>/trust/<name>/state.json`) does not parse. */
  | 'TRUST_STATE_INVALID'
  /**
   * A trust record was kept (a rotation followed, a reset), then two or more steps after it failed (the trust
   * index's last step, naming the key in config.json): its message names each, its cause an AggregateError.
   * A refusal (exit 3) when one of them is.
   */
  | 'TRUST_KEPT_THEN_FAILED'
  /** `registry add` of a name already configured with another URL or key, without `--force`. */
  | 'REGISTRY_EXISTS'
  /** A registry URL that is not https: (loopback http: and file: excepted), or not a URL at all. */
  | 'REGISTRY_URL_INVALID'
  /** The registry and every mirror failed (network error, timeout, 5xx after retries, or an HTTP error). */
  | 'FETCH_FAILED'
  /** The registry answered 404 for a document it should have (after every mirror). */
  | 'FETCH_NOT_FOUND'
  /** A redirect to another origin while credentials are configured: refused rather than leak them. */
  | 'FETCH_CROSS_ORIGIN_REDIRECT'
  /** A secret named by the config (`${ENV}` or `file:PATH`) is not there. */
  | 'CREDENTIALS_MISSING'
  /**
   * A plugin set's `auth` would send a secret to an origin the user's configuration does not send that
   * secret to (no configured registry there with that auth): a set comes with a checkout, which a pull
   * request may edit, so refused before the secret is read.
   */
  | 'CREDENTIALS_NOT_TRUSTED'
  /**
   * A plugin set's `ca_file` would widen the TLS trust for an origin where its `auth` sends the secret of a
   * configured registry, which trusts another CA (or the system's roots alone): whoever could then intercept
   * the connection would read the secret. Refused before any request.
   */
  | 'CA_NOT_TRUSTED'
  /** `--offline` (or `--frozen`) and something needed is not in the cache. */
  | 'OFFLINE_MISSING'
  /** No configured registry has a plugin of that name. */
  | 'PLUGIN_NOT_FOUND'
  /** The plugin exists but no version matches the request (the message says why each was left out). */
  | 'NO_MATCHING_VERSION'
  /**
   * A pasted OCI manifest or index digest leads, through indexes listing indexes, deeper than the levels the
   * client follows (oci.ts `OCI_WALK_MAX_DEPTH`); the message names the index and the bound.
   */
  | 'OCI_INDEX_TOO_DEEP'
  /**
   * A pasted OCI index digest leads to more documents than the client reads in all (oci.ts
   * `OCI_WALK_MAX_MANIFESTS`); the message names the index that would pass the bound and the bound.
   */
  | 'OCI_INDEX_TOO_MANY_MANIFESTS'
  /** The chosen version has no artifact for the platform (the message lists those it has). */
  | 'NO_ARTIFACT_FOR_PLATFORM'
  /** A `NAME[@SPEC]` or `OS/ARCH` that does not parse. */
  | 'REQUEST_INVALID'
  /** plugindex.lock does not parse or has the wrong shape (names the JSON pointer), or is a folder (names it). */
  | 'LOCKFILE_INVALID'
  /** `--locked`/`--frozen` and the lock is missing or would change; names the entries. */
  | 'LOCK_OUT_OF_SYNC'
  /** DIR/installed.json does not parse or has the wrong shape (names the JSON pointer), or is a folder (names it). */
  | 'INSTALLED_INVALID'
  /** Nothing installed under that name (or version). */
  | 'NOT_INSTALLED'
  /** Another install holds the lock on the same target for too long. */
  | 'INSTALL_BUSY'
  /**
   * An artifact an install downloaded into the cache was deleted from it again before it was placed (a
   * `remove --clean` or `clean -c` running beside it, twice): nothing of it is placed; installing again mends it.
   */
  | 'CACHE_BLOB_GONE'
  /**
   * A folder inside an install folder, on the way to a file the client would write or remove, is a
   * symbolic link (or a file): nothing is written or removed through it. The message names it.
   */
  | 'INSTALL_PATH_LINKED'
  /**
   * A folder on the way to an install folder, the install folder, or one inside it on the way to a file the
   * client would write or remove, is one another user may change (owned by a user other than this one or
   * root, writable by every user or by a group not the user's own without the sticky bit, or a symbolic link
   * another user owns): they could swap a folder in it for a link between the client's check and its write,
   * which Node.js cannot rule out (it has no openat). Nothing is written or removed under it; names the folder
   * and `PLUGINDEX_SAFE_FOLDERS=FOLDER`, which lifts the judgment where the user trusts whoever may change it.
   */
  | 'INSTALL_PATH_UNSAFE'
  /**
   * The cache folder, a folder on the way to it, or one inside it on the way to a file the client would
   * write or remove, is one another user may change (as for `INSTALL_PATH_UNSAFE`): a blob, document or
   * snapshot could be written, or a blob removed (`remove --clean`), through a link they swapped in. Names it.
   */
  | 'CACHE_PATH_UNSAFE'
  /**
   * The config folder, or a folder above it, is one another user may change (as for `INSTALL_PATH_UNSAFE`):
   * they could put a config.json of their own there (a registry's URL, its key). Nothing there is read or
   * written; names the folder and `PLUGINDEX_SAFE_FOLDERS=FOLDER`.
   */
  | 'CONFIG_PATH_UNSAFE'
  /**
   * A folder holding trust records (the data folder's `trust/` or one in it), or a folder above it, is one
   * another user may change (as for `INSTALL_PATH_UNSAFE`): they could plant records of their own (a pinned
   * key, a floor), which nothing signs. Nothing there is read or written; names the folder and
   * `PLUGINDEX_SAFE_FOLDERS=FOLDER`.
   */
  | 'DATA_PATH_UNSAFE'
  /**
   * A version would go to the folder of another version of the plugin installed in that install folder,
   * their names differing only in letter case (`1.0.0-RC.1`, `1.0.0-rc.1`): one folder where case is
   * ignored (macOS, Windows). The message names both and how to go on.
   */
  | 'VERSION_FOLDER_CLASH'
  /**
   * A file the client reads (installed.json, a lock, a lock file of its own, its config) is a FIFO, a device
   * or a socket: not read, as reading one would wait for a writer or never end. Names the path.
   */
  | 'FILE_NOT_REGULAR'
  /**
   * A folder the client would make (an install folder, the config, data or cache folder, a set file's lock
   * folder) is under one that exists on a filesystem that makes no folders there (`/proc`): Node's recursive
   * mkdir tried it again for ever; or where a file is (the folder itself, or one above it: a `--lockfile
   * FILE/x.lock`), where Node's EEXIST or ENOTDIR named neither. Names the folder.
   */
  | 'FOLDER_NOT_MADE'
  /**
   * A plugin set file (plugins, discovery, policy: client/set-file.ts) does not parse or has the wrong
   * shape; the message lists every problem as `FILE#/pointer (line N): expected X, found Y`.
   */
  | 'PLUGIN_SET_INVALID'
  /**
   * A key given where a public key is read (a plugin set's `key:`, `registry add --key`, `registry
   * reset-trust URL --key`, `install URL --key`) is a secret key, or secret packets under a public key's
   * armor: refused, never read for its public part, since the secret key sits where others read it (a set
   * file committed to git). The message names the file or field and says to give the public key. A command
   * exits 2 for it, as the CLI's own SECRET_KEY_GIVEN.
   */
  | 'SECRET_KEY_GIVEN'
  /**
   * The team policy of the plugin set refuses the chosen version (a denied permission, a publisher or
   * registry not allowed, a prerelease, a resource limit above its bound); the message names each reason.
   */
  | 'POLICY_DENIED'
  /**
   * The chosen version asks for permissions the installed (or locked) one did not; installing it needs
   * `--accept-permissions`. The message names the permissions added.
   */
  | 'PERMISSIONS_NOT_ACCEPTED'
  /** `--deny-yanked` and the lock holds a version yanked since (the message names it and why). */
  | 'YANKED'
  /** The version was removed by the registry's operator; the message gives the reason (never installable). */
  | 'VERSION_REMOVED'
  /**
   * An advisory at `high` or `critical` affects the chosen version; installing it needs `--allow-vulnerable`.
   * The message names each advisory: id, severity, summary, the fixed version.
   */
  | 'VULNERABLE'
  // Refusals (exit 3):
  /** More bytes arrived than the cap for that kind of document (or the signed size of an artifact). */
  | 'RESPONSE_TOO_LARGE'
  /** What the registry signs now differs from the lock (manifest digest, publisher, artifact, key). */
  | 'LOCK_MISMATCH'
  /** An installed file no longer matches its record (rehashed by `plugindex verify`). */
  | 'INSTALLED_MODIFIED'
  /**
   * `plugindex registry reset-trust` of a registry whose snapshot is not signed by the key pinned (nor one it
   * rotated to): a reset forgets the floors of a registry rebuilt under the same key, never takes another
   * key. Nothing is forgotten; the message names `registry add --force` for a registry under a new key.
   */
  | 'TRUST_RESET_REFUSED'
  /**
   * The key a registry's trust state pins is one anyone can sign as (an Ed25519 point of small order) or
   * whose arithmetic is unbounded: pinned before `registry add` refused such keys. Nothing it signs is
   * taken; the message names the registry, its trust folder and how to pin its current key again.
   */
  | 'PINNED_KEY_UNTRUSTED'
  /**
   * A signature by a registry key that a rotation retired as compromised (`rotate-key --compromised`): a
   * manifest's beside an installed version, or the one a frozen install found for a lock made under that
   * key. The message names the key, the rotation, and what mends it.
   */
  | 'KEY_REVOKED';

/** The codes that are trust refusals: a command exits 3 for them, as for a TrustError. */
const REFUSAL_CODES: ReadonlySet<ClientErrorCode> = new Set([
  'RESPONSE_TOO_LARGE',
  'LOCK_MISMATCH',
  'INSTALLED_MODIFIED',
  'KEY_REVOKED',
  'FETCH_CROSS_ORIGIN_REDIRECT',
  'CREDENTIALS_NOT_TRUSTED',
  'CA_NOT_TRUSTED',
  'INSTALL_PATH_LINKED',
  'INSTALL_PATH_UNSAFE',
  'CACHE_PATH_UNSAFE',
  'CONFIG_PATH_UNSAFE',
  'DATA_PATH_UNSAFE',
  'TRUST_RESET_REFUSED',
  'PINNED_KEY_UNTRUSTED',
]);

export class ClientError extends Error {
  override readonly name = 'ClientError';
  readonly code: ClientErrorCode;

  constructor(code: ClientErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }

  /** True when the caller gave the wrong thing (a secret key for a public one): a command exits 2. */
  get misuse(): boolean {
    return this.code === 'SECRET_KEY_GIVEN';
  }

  /** True when the client refused what it was served (exit 3), not merely failed to find or fetch it. */
  get refusal(): boolean {
    if (REFUSAL_CODES.has(this.code)) return true;
    // Several failures told as one: a refusal among them stays one (exit 3), as it was told alone.
    return (
      this.code === 'TRUST_KEPT_THEN_FAILED' &&
      this.cause instanceof AggregateError &&
      this.cause.errors.some((e) => e instanceof TrustError || (e instanceof ClientError && e.refusal))
    );
  }
}

/**
 * The log disagrees with the documents or envelopes served: each disagreement is in `disagreements`, the
 * message names them all (a refusal, exit 3, as for any TrustError).
 */
export class LogDisagreementError extends TrustError {
  readonly disagreements: readonly LogDisagreement[];

  constructor(disagreements: readonly LogDisagreement[]) {
    super(
      'LOG_DISAGREES',
      `the log disagrees with what the registry serves (${disagreements.length}): ${disagreements.map((d) => `${d.code} ${d.message}`).join('; ')}`,
    );
    this.disagreements = disagreements;
  }
}

/**
 * The command that pins a configured registry's key again, as every error naming the way out spells it:
 * `registry` and `url` where the error knows them, else `NAME` and `URL` for the user to fill in.
 * @example pinAgainCommand('main') // "`plugindex registry add --force main URL --key FILE`"
 */
export function pinAgainCommand(registry = 'NAME', url = 'URL'): string {
  return `\`plugindex registry add --force ${registry} ${url} --key FILE\``;
}

/**
 * How to pin a registry's current key (a configured registry's, by `pinAgainCommand`; a plugin set's, in
 * its set file), the remedy of every refusal of a key held that no check can mend. Written out in each
 * error, it had drifted ("instead", a missing `--key`); `start` capitalizes it to begin a sentence.
 */
export function pinAgainRemedy(
  options: { readonly registry?: string; readonly url?: string; readonly start?: boolean } = {},
): string {
  return `${options.start ? 'Pin' : 'pin'} the registry's current key (${pinAgainCommand(options.registry, options.url)}, or the key: of the plugin set naming it)`;
}

/**
 * A registry that serves its secret key where its public key belongs (keys/registry.asc: a deploy that
 * copied the wrong file) has given anyone its signing key: nothing it signs proves it signed it, and pinning
 * the public part in silence hid that from the user and from the operator.
 * @example throw servedSecretKey(`${url}/${REGISTRY_PUBLIC_KEY_KEY}`, key.fingerprint);
 */
export function servedSecretKey(at: string, fingerprint: string): TrustError {
  return new TrustError(
    'KEY_INVALID',
    `${at} is a secret key (${fingerprint}), not the registry's public key: nothing was pinned or trusted. The registry publishes its signing key, so anyone may sign as it; tell its operator, who must make a new key (plugindex keygen) and publish only its public key`,
  );
}
