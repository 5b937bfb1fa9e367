/**
 * Errors of the core. One base class, stable codes from a string-literal union, the original failure kept
 * as `cause`. A rejected submission carries every problem found, each with its own code and JSON pointer
 * (or bundle file name), so a publisher can fix everything in one round trip.
 */

export type ProblemCode =
  // Manifest: parsing
  | 'MANIFEST_TOO_LARGE'
  | 'MANIFEST_NOT_UTF8'
  | 'MANIFEST_PARSE_ERROR'
  | 'MANIFEST_YAML_UNSAFE'
  | 'MANIFEST_NOT_OBJECT'
  | 'MANIFEST_DUPLICATE_KEY'
  | 'MANIFEST_BYTE_ORDER_MARK'
  | 'MANIFEST_YAML_AMBIGUOUS'
  // Manifest: structure and limits
  | 'MANIFEST_FORBIDDEN_KEY'
  | 'MANIFEST_TOO_DEEP'
  | 'MANIFEST_CONTROL_CHARACTER'
  | 'MANIFEST_INVALID_UNICODE'
  | 'MANIFEST_UNSAFE_CHARACTER'
  | 'MANIFEST_NUMBER_UNSAFE'
  | 'MANIFEST_MISSING_FIELD'
  | 'MANIFEST_WRONG_TYPE'
  | 'MANIFEST_PATTERN_MISMATCH'
  | 'MANIFEST_NOT_ALLOWED_VALUE'
  | 'MANIFEST_STRING_TOO_SHORT'
  | 'MANIFEST_STRING_TOO_LONG'
  | 'MANIFEST_TOO_FEW_ITEMS'
  | 'MANIFEST_TOO_MANY_ITEMS'
  | 'MANIFEST_DUPLICATE_ITEMS'
  | 'MANIFEST_INVALID_FORMAT'
  | 'MANIFEST_OUT_OF_RANGE'
  | 'MANIFEST_UNKNOWN_FIELD'
  | 'MANIFEST_INVALID'
  // Manifest: rules beyond the schema
  | 'MANIFEST_INVALID_VERSION'
  | 'MANIFEST_INVALID_DEPENDENCY_RANGE'
  | 'MANIFEST_API_VERSION_RANGE'
  | 'MANIFEST_INSECURE_URL'
  /** A URL with user information (`https://github.com@evil.example/`): it reads as another host. */
  | 'MANIFEST_URL_CREDENTIALS'
  | 'MANIFEST_DUPLICATE_PLATFORM'
  | 'MANIFEST_UNIVERSAL_ARCH'
  | 'MANIFEST_LIBC_NOT_LINUX'
  /** A musl build listed before the glibc one of its os/arch, which older clients would take it for. */
  | 'MANIFEST_LIBC_ORDER'
  | 'MANIFEST_ARTIFACT_SOURCE'
  | 'MANIFEST_OCI_DIGEST_MISMATCH'
  | 'MANIFEST_OCI_REFERENCE_DIGEST'
  | 'MANIFEST_RESERVED_NAME'
  | 'MANIFEST_RESERVED_PATH'
  | 'MANIFEST_UNSAFE_PATH'
  | 'MANIFEST_SCAN_INCONSISTENT'
  // Bundle (the uploaded .tgz)
  | 'BUNDLE_TOO_LARGE'
  | 'BUNDLE_NOT_GZIP'
  /** The upload is a plugin manifest, JSON or YAML, not a bundle or an action (bundle.ts `manifestUploadProblem`). */
  | 'SUBMISSION_IS_MANIFEST'
  | 'BUNDLE_DECOMPRESSION_LIMIT'
  | 'BUNDLE_CORRUPT'
  | 'BUNDLE_TOO_MANY_ENTRIES'
  | 'BUNDLE_UNSAFE_PATH'
  | 'BUNDLE_LINK_ENTRY'
  | 'BUNDLE_SPECIAL_ENTRY'
  | 'BUNDLE_DUPLICATE_ENTRY'
  | 'BUNDLE_ENTRY_TOO_LARGE'
  | 'BUNDLE_AMBIGUOUS_ARCHIVE'
  | 'BUNDLE_MISSING_MANIFEST'
  | 'BUNDLE_MULTIPLE_MANIFESTS'
  | 'BUNDLE_MISSING_SIGNATURE'
  | 'BUNDLE_UNEXPECTED_FILE'
  | 'BUNDLE_MISSING_ARTIFACT'
  // Signatures and publisher trust
  | 'SIGNATURE_MALFORMED'
  | 'SIGNATURE_INVALID'
  | 'PUBLISHER_KEY_INVALID'
  | 'PUBLISHER_KEY_MISSING'
  | 'PUBLISHER_KEY_EXPIRED'
  | 'PUBLISHER_KEY_REVOKED'
  | 'PUBLISHER_KEY_NOT_FOR_SIGNING'
  | 'PUBLISHER_KEY_TOO_COMPLEX'
  | 'SIGNATURE_TIME_INVALID'
  | 'PUBLISHER_UNTRUSTED'
  | 'PUBLISHER_IS_REGISTRY_KEY'
  | 'PUBLISHER_NAME_NOT_ALLOWED'
  | 'PUBLISHER_NOT_OWNER'
  /** A new plugin's name reads as an existing plugin's another publisher owns (look-alike.ts). */
  | 'NAME_TOO_SIMILAR'
  /**
   * Refused for a plugin only an earlier submission of its batch made, which the batch then refused
   * (pipeline/index.ts `unpublishedJudged`): the plugin never was; submitted again, it is judged anew.
   */
  | 'PUBLISH_DEPENDS_ON_REFUSED'
  /** An artifact names an OCI repository another publisher's plugin keeps its artifacts in (oci-repositories.ts). */
  | 'OCI_REPOSITORY_CLAIMED'
  // Publishing
  | 'VERSION_EXISTS'
  | 'ARTIFACT_DIGEST_MISMATCH'
  | 'ARTIFACT_SIZE_MISMATCH'
  | 'SUBMISSION_UNREADABLE'
  /** The store lists the upload but cannot give its bytes (StoreError STORE_UNREADABLE): left where it is. */
  | 'UPLOAD_UNREADABLE'
  | 'SUBMISSION_WRITE_FAILED'
  /**
   * Its publish was logged, then its plugin document refused for good by the store: the registry voided its
   * log entry (config `voidRefusedEntries`, pipeline/index.ts `voidRefusedPlugin`), and it never took effect.
   */
  | 'LOGGED_ENTRY_VOIDED'
  /** The plugin's page or document would grow past what the registry renders (render/html.ts). */
  | 'PLUGIN_TOO_LARGE'
  | 'VERSION_REMOVED'
  // Lifecycle actions (index-builder/actions.ts) and key rotations (rotation.ts)
  | 'ACTION_TOO_LARGE'
  | 'ACTION_MALFORMED'
  | 'ACTION_WRONG_REGISTRY'
  | 'ACTION_EXPIRED'
  | 'ACTION_REPLAYED'
  | 'ACTION_SUPERSEDED'
  | 'ACTION_NOT_OWNER'
  | 'ACTION_NOT_OPERATOR'
  | 'ACTION_KEY_REVOKED'
  | 'ACTION_UNKNOWN_PLUGIN'
  | 'ACTION_UNKNOWN_VERSION'
  | 'ACTION_LAST_OWNER'
  | 'ACTION_NO_EFFECT'
  /**
   * Judged against a plugin as an earlier submission of its batch left it, which the batch then refused
   * (pipeline/index.ts `unorderAfterRefused`): submitted again, it is judged anew.
   */
  | 'ACTION_DEPENDS_ON_REFUSED'
  | 'ACTION_UNKNOWN_KEY'
  | 'ADVISORY_EXISTS'
  /** A plugin holds MAX_ADVISORIES already (lifecycle.ts). */
  | 'ADVISORY_LIMIT'
  | 'ADVISORY_UNKNOWN'
  /** A new advisory's `fixed` version is in its own `affected` range (actions.ts `newActionProblems`). */
  | 'ADVISORY_FIXED_AFFECTED'
  /** A new deprecation names the plugin itself as its replacement (actions.ts `newActionProblems`). */
  | 'DEPRECATION_REPLACES_ITSELF'
  | 'ROTATION_INVALID'
  | 'ROTATION_NOT_CURRENT_KEY'
  | 'ROTATION_NOT_SIGNING_KEY'
  // A key rotation refused because a published document is not what the registry published (published.ts)
  | 'PUBLISHED_DOCUMENT_ALTERED'
  // More problems than a report lists (boundProblems)
  | 'PROBLEMS_OMITTED';

/** One segment of a JSON pointer (RFC 6901): `~` and `/` escaped, so a key holding them stays one segment. */
export function escapePointer(segment: string | number): string {
  return String(segment).replace(/~/g, '~0').replace(/\//g, '~1');
}

/** One thing wrong with a submission or manifest. */
export interface Problem {
  readonly code: ProblemCode;
  /** JSON pointer into the manifest (`/requirements/os/0`), or `bundle:<entry>` for a bundle entry. */
  readonly path: string;
  readonly message: string;
  readonly expected?: string;
  readonly found?: string;
}

export type ErrorCode =
  | 'INVALID_MANIFEST'
  | 'INVALID_SUBMISSION'
  | 'STORE_NOT_FOUND'
  | 'STORE_IO'
  | 'STORE_INVALID_KEY'
  | 'STORE_REFUSED'
  | 'STORE_EXISTS'
  | 'STORE_CONFLICT'
  | 'STORE_UNREADABLE'
  /** A read capped by `GetOptions.maxBytes` met a larger object: nothing of it was read. */
  | 'STORE_TOO_LARGE'
  | 'KEY_INVALID'
  | 'KEY_PASSPHRASE'
  /**
   * A signing key no signature by which is taken (signing.ts `untrustedKeyProblem`: an Ed25519 point of small
   * order, anyone signs as it; unbounded arithmetic): refused where a signer is made (`createSigner`).
   */
  | 'KEY_UNTRUSTED'
  /** The registry's signing key is past its expiry: it signs nothing (signing.ts `createSigner`). */
  | 'KEY_EXPIRED'
  | 'CONFIG_INVALID'
  | 'CONFIG_REGISTRY_KEY_AS_PUBLISHER'
  | 'CONFIG_REGISTRY_KEY_AS_OPERATOR'
  | 'RENDER_UNSAFE_TEXT'
  /** A plugin's page or document past its bound (render/html.ts MAX_PLUGIN_PAGE_LENGTH). */
  | 'RENDER_TOO_LARGE'
  | 'SNAPSHOT_MALFORMED'
  | 'SNAPSHOT_BAD_SIGNATURE'
  | 'SNAPSHOT_WRONG_KEY'
  | 'SNAPSHOT_ROLLBACK'
  /**
   * A snapshot signed by a key another name of its registry followed a rotation away from (client/session.ts):
   * the registry signs nothing with a key it left, so one at or above the floor is its former holder's.
   */
  | 'SNAPSHOT_RETIRED_KEY'
  | 'SNAPSHOT_EXPIRED'
  /** A snapshot names another registry than the one the reader pinned (client/key-chain.ts). */
  | 'SNAPSHOT_REGISTRY_CHANGED'
  /** A snapshot names another registry than the one `verify --url` was asked to check (cli/verify.ts). */
  | 'SNAPSHOT_OTHER_REGISTRY'
  | 'DOCUMENT_NOT_LISTED'
  | 'DOCUMENT_MISMATCH'
  | 'DOCUMENT_MALFORMED'
  | 'ARTIFACT_MISMATCH'
  // The transparency log, as a client checks it (index-builder/log.ts)
  | 'LOG_MALFORMED'
  | 'LOG_TRUNCATED'
  | 'LOG_FORKED'
  | 'LOG_REORDERED'
  | 'LOG_ENTRY_ALTERED'
  // A void entry (log.ts `checkVoids`, log-void.ts) that names no earlier publish or action this log holds, one
  // after it, one voided already, a void, a key rotation, or that the registry key at its place did not sign;
  // or one of another registry (its signed statement names it), as a staging copy sharing the key would make
  | 'LOG_VOID_OTHER_REGISTRY'
  | 'LOG_VOID_ENTRY_MISSING'
  | 'LOG_VOID_NOT_EARLIER'
  | 'LOG_VOID_REPEATED'
  | 'LOG_VOID_OF_VOID'
  | 'LOG_VOID_OF_ROTATION'
  | 'LOG_VOID_UNSIGNED'
  // A void of an entry a log head the client saw (signed by the registry) counted: it took effect then
  | 'LOG_VOID_OF_SEEN'
  // The log holds, but what its entries say is not what the plugin documents or action envelopes served show
  // (`verify --url`: client/log-consistency.ts, each disagreement with its own code)
  | 'LOG_DISAGREES'
  // A registry key rotation chain (index-builder/rotation.ts)
  | 'KEY_ROTATION_BROKEN'
  // The publisher would sign with a key the published snapshot does not name, outside a rotation
  | 'SIGNING_KEY_NOT_CURRENT'
  // A catalog bin read once a publish is under way is of another format (catalog.ts `readBins`)
  | 'CATALOG_OUTDATED'
  // A published index document is not the rendering the catalog's order file records (a merge falls back)
  | 'INDEX_DOCUMENT_STALE'
  // A document the pipeline reads back (a plugin's, keys/revoked.json, snapshot.json) is not what the catalog
  // records the registry published there: someone else wrote it (pipeline/published.ts); the batch fails
  | 'PUBLISHED_DOCUMENT_ALTERED'
  // A publish or action in the log (a run that died's, or this batch's) whose files, documents or records
  // the store refuses for good, or whose documents no longer render, caught up or not: the batch fails whole
  // (pipeline/index.ts `loggedPublishFailed`), refusing nothing, until the operator mends what failed
  | 'LOGGED_PUBLISH_FAILED'
  // A rebuild meets a published plugin document that no longer renders as it is (pipeline/index.ts
  // `unrenderable`): nothing committed, the document the operator's to put right
  | 'PUBLISHED_DOCUMENT_UNRENDERABLE'
  // `plugindex rebuild` or `rotate-key` meets a logged publish past what the published snapshot counts that
  // no plugin document shows (pipeline/stuck-entries.ts): signing over it would bar its void; nothing changed
  | 'LOGGED_PUBLISH_STUCK'
  // The same over a logged action (a yank, an owner's change, a revocation...) that the document served does
  // not show, judged by the fold of its plugin's statements (log-fold.ts): signing over it would vouch for
  // what no document shows (verify --url: LOG_DISAGREES); nothing changed
  | 'LOGGED_ACTION_STUCK'
  // A rebuild signing every manifest again (a key rotation's, or one finishing it: pipeline/site-writer.ts
  // `resignManifests`) meets a published version's manifest gone, or bytes not the digest its plugin
  // document records: the new key would vouch for nothing, or for what the old one never did
  | 'RESIGN_MANIFEST_MISSING'
  | 'RESIGN_MANIFEST_ALTERED'
  // A refresh without the registry's config (one that cannot be read: pipeline/index.ts `refreshSnapshot`'s
  // `asPublished`) that would have to render documents, not only sign the published snapshot again
  | 'REFRESH_NEEDS_CONFIG'
  // A search's parameters the one rule refuses (index-builder/search.ts `readSearchParameters`): the codes
  // `GET /search` answers 400 with, `plugindex search` exits 2 with, and the home page shows
  | 'SEARCH_PARAMETER_REPEATED'
  | 'SEARCH_PARAMETER_TOO_LONG'
  | 'SEARCH_PARAMETER_INVALID';

export class PlugindexError extends Error {
  override readonly name: string = 'PlugindexError';
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** A manifest or submission that cannot be published; `problems` lists every reason. */
export class SubmissionError extends PlugindexError {
  override readonly name = 'SubmissionError';
  readonly problems: readonly Problem[];

  constructor(code: 'INVALID_MANIFEST' | 'INVALID_SUBMISSION', problems: readonly Problem[]) {
    const first = problems[0];
    const summary = first ? `${first.code} at ${first.path || '/'}: ${first.message}` : 'no details';
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more)` : '';
    super(code, `${summary}${more}`);
    this.problems = problems;
  }
}

/**
 * A storage failure. `STORE_IO` is the store being unavailable (a network error, throttling, a full disk):
 * retrying later may succeed, so a batch that meets it fails and is retried. `STORE_INVALID_KEY` and
 * `STORE_REFUSED` are the store refusing this key or body for good (a name too long for the filesystem, an
 * S3 400): a retry would fail the same way, so the pipeline rejects the submission that caused it.
 * `STORE_EXISTS` is a write that was only to create its object (S3's `If-None-Match: *`, a publisher's
 * upload) finding one there, left as it was. `STORE_CONFLICT` is a write only over the object read
 * (`PutOptions.ifMatch`) finding another written since, left as it is: what was written from the read is
 * out of date, and the work is done again from a new read (a batch fails, and is retried whole).
 * `STORE_UNREADABLE` is a read of an object that is there but whose bytes the store cannot give until
 * someone changes the object (on S3: archived in GLACIER, or encrypted with a key the reader may not use); its
 * message says what to do. An upload the pipeline meets so gets an outcome and stays where it is; anything
 * else read so fails the batch, as STORE_IO does (it is not `permanent`: an operator mends it).
 * `STORE_TOO_LARGE` is a read capped by `GetOptions.maxBytes` that found an object larger than the cap, and
 * read none of it: the caller reads it as a stream, if at all.
 */
/** The codes of a storage failure: the `STORE_*` of ErrorCode, listed once there. */
export type StoreErrorCode = Extract<ErrorCode, `STORE_${string}`>;

export class StoreError extends PlugindexError {
  override readonly name = 'StoreError';
  readonly key: string;
  /** The backend's own word for the failure (S3's error code), where it says more than `code`. */
  readonly reason?: string;
  /** What mends it, for STORE_UNREADABLE: an operator's step, said in the backend's terms. */
  readonly remedy?: string;

  /** True when the same request would fail again: the caller should give up on this key, not retry. */
  get permanent(): boolean {
    return this.code === 'STORE_INVALID_KEY' || this.code === 'STORE_REFUSED' || this.code === 'STORE_EXISTS';
  }

  constructor(
    code: StoreErrorCode,
    key: string,
    message: string,
    options?: { cause?: unknown; reason?: string; remedy?: string },
  ) {
    super(code, message, options);
    this.key = key;
    if (options?.reason !== undefined) this.reason = options.reason;
    if (options?.remedy !== undefined) this.remedy = options.remedy;
  }
}

export class KeyError extends PlugindexError {
  override readonly name = 'KeyError';
}

/** A client-side check of published documents failed: do not trust what was fetched. */
export class TrustError extends PlugindexError {
  override readonly name = 'TrustError';
}

export class ConfigError extends PlugindexError {
  override readonly name = 'ConfigError';
}

/** A search's parameters refused by `readSearchParameters` (index-builder/search.ts), as a library call sees it. */
export class SearchQueryError extends PlugindexError {
  override readonly name = 'SearchQueryError';
  /** The parameter at fault (`q`, `type`, `provider`, `capability`). */
  readonly parameter: string;
  /** What it may hold instead. */
  readonly expected: string;

  constructor(
    code: Extract<ErrorCode, `SEARCH_PARAMETER_${string}`>,
    parameter: string,
    message: string,
    expected: string,
  ) {
    super(code, `${message}: expected ${expected}`);
    this.parameter = parameter;
    this.expected = expected;
  }
}

/**
 * The problems a SubmissionError carries: the submission's own faults, to report. Anything else is not the
 * submission's to answer for (a store failing, a bug) and is thrown again.
 */
export function problemsFrom(error: unknown): readonly Problem[] {
  if (error instanceof SubmissionError) return error.problems;
  throw error;
}

/**
 * Where a problem is, as a line shows it: the whole document `/`, and a part's root as `bundle:/` (the path
 * `bundle:` made `BUNDLE_NOT_GZIP bundle:: ...`), as `envelope:/signature` is a pointer into its part.
 */
export function problemPath(path: string): string {
  return path === '' || path.endsWith(':') ? `${path}/` : path;
}

/** A problem in a few words, as logs and one-line reports name it: its code, then its JSON pointer or file. */
export function problemRef(p: Problem): string {
  return `${p.code} ${problemPath(p.path)}`;
}

/**
 * How many problems one report lists at most, the last of them then `PROBLEMS_OMITTED`, counting the rest.
 * A manifest within its size cap can hold tens of thousands of wrong items, each a problem of its own: a
 * 230 KB upload with 40,000 numbers for capabilities made 80,001 problems, a 20 MB outcome record and 20 MB
 * of `plugindex validate` output, 2.5 s of it. A publisher fixes the first hundred and submits again.
 */
export const MAX_REPORTED_PROBLEMS = 100;

/**
 * `problems` as a report lists them: all of them up to MAX_REPORTED_PROBLEMS, else the first ones and a
 * last `PROBLEMS_OMITTED` that counts the rest. A list bounded once is left as it is.
 */
export function boundProblems(problems: readonly Problem[]): readonly Problem[] {
  if (problems.length <= MAX_REPORTED_PROBLEMS) return problems;
  const listed = MAX_REPORTED_PROBLEMS - 1;
  const rest = problems.length - listed;
  return [
    ...problems.slice(0, listed),
    problem('PROBLEMS_OMITTED', '', `${rest} more problems, not listed (a report lists ${listed})`, {
      found: `${problems.length} problems`,
    }),
  ];
}

/** Makes a Problem; `expected`/`found` only when known. */
export function problem(
  code: ProblemCode,
  path: string,
  message: string,
  detail: { expected?: string; found?: string } = {},
): Problem {
  return { code, path, message, ...detail };
}
