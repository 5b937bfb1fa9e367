/**
 * `plugindex verify --url URL`: what a client does before trusting a registry, for the whole registry at
 * once. It checks the snapshot (signature by the pinned key, rollback against the last generation seen,
 * expiry, and that `snapshot.signed.json` says the same), then every document the snapshot binds, every
 * plugin document through its bin (every bin the snapshot lists: the bins, not search.json, say which
 * plugins exist), every manifest against the digest its plugin document gives and its signature, and every
 * hosted artifact against its sha256 and size, streamed and cut off at its size (a version the operator
 * removed has no files left: its record is checked, not them), and the transparency log whole, from its
 * first entry to the head the snapshot signs (and, with `--state`, that it extends the head seen last
 * time: client/log-reader.ts), then held against what is served (client/log-consistency.ts): each plugin
 * document against the state its entries imply, each action entry against its envelope under
 * `log/actions/`, every disagreement reported at once (`LOG_DISAGREES`). A registry that rotated its key
 * since the one pinned is followed through
 * its signed rotations (client/key-chain.ts), and the report says so. Both are the client's own readers,
 * given this command's loader. Documents are fetched as
 * `<path>?v=<sha256>`, the read that stays consistent through a CDN (README, "Reading it safely"), through
 * the client's one fetcher (proxies, CAs, caps on every response). The judging is index-builder/verify.ts.
 */
import { readFile, writeFile } from 'node:fs/promises';
import type { Key } from 'openpgp';
import { normalizeRegistryUrl } from '../client/config.ts';
import { ClientError, LogDisagreementError, servedSecretKey } from '../client/errors.ts';
import {
  createHttpFetcher,
  type DocumentLoader,
  documentLoader,
  type Endpoint,
  type Fetcher,
  fetchBody,
  UNLISTED_LIMITS,
} from '../client/fetcher.ts';
import { checkHeldSnapshot, checkSnapshotRegistry, readThroughRotations } from '../client/key-chain.ts';
import {
  compareDocument,
  compareEnvelope,
  compareRotations,
  foldLog,
  isActionEntry,
  type LogDisagreement,
  missingPlugins,
} from '../client/log-consistency.ts';
import { readWholeLog } from '../client/log-reader.ts';
import { TrustedSnapshot } from '../client/trusted-snapshot.ts';
import { MAX_ACTION_BYTES } from '../index-builder/actions.ts';
import { isSecretKeyText } from '../index-builder/armor.ts';
import { fixedClock, systemClock } from '../index-builder/clock.ts';
import { COMPRESSION_THRESHOLD_BYTES } from '../index-builder/compression.ts';
import { createSha256, sha256Hex } from '../index-builder/digest.ts';
import { TrustError } from '../index-builder/errors.ts';
import {
  actionEnvelopeKey,
  binOfKey,
  CONTENT_ENCODINGS,
  type ContentEncoding,
  ENCODED_DOCUMENTS,
  encodedVariantKey,
  hostedArtifactKey,
  manifestKey,
  pluginDocumentKey,
  REGISTRY_PUBLIC_KEY_KEY,
  registryIdentity,
  SIGNED_SNAPSHOT_KEY,
  SNAPSHOT_KEY,
  signatureKey,
} from '../index-builder/layout.ts';
import { forEachLimited } from '../index-builder/limited.ts';
import { EMPTY_LOG, isLogHead, type LogEntry, type ReadEntry } from '../index-builder/log.ts';
import {
  type ArtifactRecord,
  artifactPlatformText,
  type BinDocument,
  type LogHead,
  type SnapshotDocument,
} from '../index-builder/model.ts';
import { MAX_ROTATION_BYTES, rotationKey } from '../index-builder/rotation.ts';
import {
  type PublicKeyInfo,
  readPublicKey,
  readTrustedKey,
  untrustedKeyProblem,
} from '../index-builder/signing.ts';
import { openSignedSnapshot, verifyInBin, verifyManifest } from '../index-builder/verify.ts';

const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

/** Reads a whole registry through one endpoint of the client's fetcher. */
class Reader {
  readonly #fetcher: Fetcher;
  readonly #endpoint: Endpoint;
  /** For the client's pure readers (the log, key rotations) and documents a registry may not have. */
  readonly load: DocumentLoader;

  constructor(fetcher: Fetcher, base: string) {
    this.#fetcher = fetcher;
    this.#endpoint = { name: base, bases: [base], timeoutMs: 30_000 };
    this.load = documentLoader(fetcher, this.#endpoint);
  }

  get base(): string {
    return this.#endpoint.bases[0] as string;
  }

  /**
   * A document under the base, capped at `maxBytes`; `version` is its `?v=`, or `pastCaches` asks with the
   * fetcher's random nonce (client/fetcher.ts).
   */
  get(
    path: string,
    maxBytes: number,
    version?: string | { readonly pastCaches: true },
    coding?: ContentEncoding | 'identity',
  ): Promise<Uint8Array> {
    return fetchBody(this.#fetcher, this.#endpoint, {
      path,
      maxBytes,
      ...(typeof version === 'string' ? { version } : (version ?? {})),
      ...(coding === undefined ? {} : { coding }),
    });
  }

  /**
   * Each encoded variant of `documents` (the index documents, layout.ts `ENCODED_DOCUMENTS`, and each plugin
   * document over the compression threshold), asked
   * for as a client accepting that coding alone is sent it, held to the digest the snapshot lists for the
   * document: browsers, falcoctl and other spec clients are sent a variant by their Accept-Encoding and check
   * nothing, and this command, asking for `br, gzip` as every plugindex client does, was sent brotli only,
   * so a gzip variant of other bytes (another generation's, or tampered) passed. Over http(s) only: a
   * folder or a bucket read directly has no negotiation. Returns the variants checked.
   * @throws TrustError DOCUMENT_MISMATCH naming the variant; ClientError FETCH_NOT_FOUND naming it; what
   *   `get` throws (RESPONSE_TOO_LARGE for one that decodes past the document's size).
   */
  async checkVariants(
    documents: SnapshotDocument['documents'],
    check: (path: string, body: Uint8Array) => void,
  ): Promise<number> {
    if (!/^https?:/i.test(this.base)) return 0;
    let checked = 0;
    for (const [path, digest] of Object.entries(documents)) {
      for (const coding of CONTENT_ENCODINGS) {
        const variant = `${this.base}/${encodedVariantKey(path, coding)}`;
        const body = await this.get(path, digest.size, digest.sha256, coding).catch((error: unknown) => {
          // Only an edge that routes to the variant without looking (CloudFront) answers 404 here, for a
          // registry published before variants: every client accepting that coding is answered 404 too.
          if (!(error instanceof ClientError && error.code === 'FETCH_NOT_FOUND')) throw error;
          throw new ClientError(
            'FETCH_NOT_FOUND',
            `${variant}, served for ${path} to a client that accepts ${coding}, is not there (a registry published before its documents had variants: publish, or plugindex rebuild)`,
            { cause: error },
          );
        });
        try {
          check(path, body);
        } catch (error) {
          if (!(error instanceof TrustError && error.code === 'DOCUMENT_MISMATCH')) throw error;
          throw new TrustError(
            'DOCUMENT_MISMATCH',
            `${variant}, served for ${path} to a client that accepts ${coding}, is not the ${path} the snapshot lists (a variant of another generation: a run that died between it and its document, which the next publish, flush or plugindex rebuild rewrites, and which the local server holds back; or tampering)`,
            { cause: error },
          );
        }
        checked += 1;
      }
    }
    return checked;
  }

  /**
   * The brotli variant of a plugin document over the compression threshold, asked for by its own name as
   * the plugindex client asks for it (`DocumentRequest.variant`: the AWS edge routes no plugin document to
   * its variant), held to the digest its bin lists. One that is not there (404) is no fault: the client
   * reads the document itself, as it does from a registry published before plugin documents had variants,
   * and the local server answers so for a variant of other bytes than the document it holds. Over http(s)
   * only. Returns the variants checked (0 or 1).
   * @throws TrustError DOCUMENT_MISMATCH naming the variant; what `get` throws (RESPONSE_TOO_LARGE for one
   *   that decodes past the document's size).
   */
  async checkNamedVariant(
    path: string,
    digest: { readonly sha256: string; readonly size: number },
    check: (body: Uint8Array) => void,
  ): Promise<number> {
    if (!/^https?:/i.test(this.base)) return 0;
    const variant = encodedVariantKey(path, 'br');
    let body: Uint8Array;
    try {
      body = await this.get(variant, digest.size, digest.sha256, 'br');
    } catch (error) {
      if (error instanceof ClientError && error.code === 'FETCH_NOT_FOUND') return 0;
      throw error;
    }
    try {
      check(body);
    } catch (error) {
      if (!(error instanceof TrustError && error.code === 'DOCUMENT_MISMATCH')) throw error;
      throw new TrustError(
        'DOCUMENT_MISMATCH',
        `${this.base}/${variant}, which the plugindex client asks for by name, is not the ${path} its bin lists (a run that died after writing a grown document's variants, before the document, or tampering): the client reads the document itself meanwhile; the plugin's next publish, the next index flush (the publish function's on AWS, the watcher's of plugindex serve), or plugindex rebuild, replaces or deletes it`,
        { cause: error },
      );
    }
    return 1;
  }

  /**
   * A hosted artifact against the digest and size its signed plugin document gives, hashed as it arrives:
   * never held in memory, never read past its size (the fetcher refuses more: RESPONSE_TOO_LARGE).
   */
  async checkArtifact(name: string, version: string, artifact: ArtifactRecord): Promise<void> {
    const where = `${name}@${version} ${artifactPlatformText(artifact)}`;
    // Under the URL being verified, wherever the registry says it publishes (as an install reads it).
    const key = hostedArtifactKey(name, version, artifact.url);
    const url = key === undefined ? artifact.url : `${this.base}/${key}`;
    const download = await this.#fetcher.download(this.#endpoint, { url, maxBytes: artifact.size_bytes });
    const hash = createSha256();
    let size = 0;
    for await (const chunk of download.body) {
      size += chunk.byteLength;
      hash.update(chunk);
    }
    const fail = (why: string): never => {
      throw new TrustError('ARTIFACT_MISMATCH', `${download.url} (${where}): ${why}`);
    };
    if (size !== artifact.size_bytes)
      fail(`${size} bytes, where its plugin document gives ${artifact.size_bytes}`);
    if (hash.hex() !== artifact.sha256) fail('its sha256 does not match its plugin document');
  }
}

/** Action envelopes fetched at once. */
const ENVELOPE_FETCHES = 8;

/** Attempts at a snapshot whose signature comes from another publish than its body (fetched in between). */
const SNAPSHOT_ATTEMPTS = 3;

/**
 * The snapshot and its signature, fetched together past every cache (the fetcher's random `?v=` nonce and
 * no-cache, to the origin) and checked by `verify`; fetched again when the signature does not match, which a publish between the two
 * requests causes. Any other failure is final.
 */
async function fetchSnapshot(
  reader: Reader,
  verify: (snapshot: Uint8Array, signature: string) => Promise<SnapshotDocument>,
): Promise<SnapshotDocument> {
  for (let attempt = 1; ; attempt++) {
    // Random, not the clock: a `?v=` someone can predict is one they can ask the edge for first, and have
    // it keep the snapshot of then under it for this run to be shown.
    const fresh = { pastCaches: true } as const;
    const body = await reader.get(SNAPSHOT_KEY, UNLISTED_LIMITS.snapshot, fresh);
    const signature = text(await reader.get(signatureKey(SNAPSHOT_KEY), UNLISTED_LIMITS.signature, fresh));
    // What installing clients read instead of the pair must say the same (registries from before it: none).
    const envelope = await reader.load({
      path: SIGNED_SNAPSHOT_KEY,
      maxBytes: UNLISTED_LIMITS.snapshot,
      ...fresh,
    });
    try {
      const snapshot = await verify(body, signature);
      if (envelope) {
        const signed = openSignedSnapshot(envelope);
        if (text(signed.snapshot) !== text(body) || signed.signature !== signature)
          throw new TrustError(
            'SNAPSHOT_BAD_SIGNATURE',
            `${SIGNED_SNAPSHOT_KEY} does not hold snapshot.json and its signature`,
          );
      }
      return snapshot;
    } catch (error) {
      const retry = error instanceof TrustError && error.code === 'SNAPSHOT_BAD_SIGNATURE';
      if (!retry || attempt >= SNAPSHOT_ATTEMPTS) throw error;
    }
  }
}

export interface VerifyReport {
  /** The key the registry signs with: the one pinned, or the one its rotations lead to from it. */
  readonly fingerprint: string;
  /**
   * Where the key pinned came from: `--key` (`given`), the `--state` file (`state`: trusted on a first run,
   * or followed since), or the registry's own `keys/registry.asc` (`registry`: trusted on this first use).
   */
  readonly keyFrom: 'given' | 'state' | 'registry';
  /** The key rotations followed from the key pinned, in order, when the registry rotated since. */
  readonly rotations?: readonly {
    readonly sequence: number;
    readonly from: string;
    readonly to: string;
    /** The rotation says `from` is no longer secret (`rotate-key --compromised`). */
    readonly compromised?: true;
  }[];
  readonly generation: number;
  readonly expires: string;
  readonly documents: number;
  /**
   * Encoded variants (`.br`, `.gz`) checked to decode to the document listed: the index documents', and
   * those of each plugin document over the compression threshold.
   */
  readonly variants: number;
  readonly plugins: number;
  readonly manifests: number;
  /** Hosted artifacts checked against their digest and size. */
  readonly artifacts: number;
  /** Versions the operator removed (their files gone, not fetched). */
  readonly removed: number;
  /** The transparency log checked whole: its length (0 when the registry keeps none yet) and head. */
  readonly log: LogHead;
  /** Action entries whose envelope under `log/actions/` was checked to be the action logged. */
  readonly envelopes: number;
  /**
   * The entries the registry voided (index-builder/log-void.ts), oldest first: what each was, the void that
   * says it never took effect and the registry's reason. Absent when none was: a void is the registry's
   * word alone, so the user is shown every one.
   */
  readonly voided?: readonly VoidedEntry[];
}

/** An entry a void names, as `verify --url` reports it. */
export interface VoidedEntry {
  readonly seq: number;
  readonly type: string;
  readonly plugin?: string;
  readonly version?: string;
  /** The void's seq. */
  readonly by: number;
  readonly reason: string;
  /**
   * Present (true) when the key that signed the void is one the next rotation logged after it retired as
   * compromised: whoever stole that key could have written the void, and nothing tells the two apart.
   */
  readonly compromised?: true;
}

export async function verifyRegistry(options: {
  /**
   * The registry to verify: its snapshots must name it (compared as `registryIdentity` spells URLs), and
   * it is read here unless `mirror` is given.
   */
  readonly url: string;
  /**
   * A mirror of the registry at `url` (a copy served elsewhere, as `registry add --mirror` configures one):
   * read there instead, held to `url` all the same.
   */
  readonly mirror?: string;
  /**
   * Armored registry key pinned by the client; without one, the key `stateFile` kept, and without that the
   * served key, trusted on first use (and kept in `stateFile`).
   */
  readonly pinnedKey?: string;
  /** A file keeping the highest generation seen, for rollback protection across runs. */
  readonly stateFile?: string;
  readonly now?: Date;
  /** The transport (default: the client's, with this process's proxy and CA settings). */
  readonly fetcher?: Fetcher;
}): Promise<VerifyReport> {
  // As `registry add` takes them: a URL holding credentials would be shown in every message.
  normalizeRegistryUrl(options.url);
  if (options.mirror !== undefined) normalizeRegistryUrl(options.mirror);
  const fetcher = options.fetcher ?? createHttpFetcher({ env: process.env });
  try {
    const base = (options.mirror ?? options.url).replace(/\/+$/, '');
    return await verifyWith(new Reader(fetcher, base), options);
  } finally {
    if (!options.fetcher) await fetcher.close();
  }
}

/** What `--state` keeps between runs. */
interface VerifyState {
  readonly generation?: number;
  /** The key followed last (armored), and its fingerprint. */
  readonly fingerprint?: string;
  readonly key?: string;
  /** Where that key stands among the registry's rotations. */
  readonly rotations?: number;
  /** The fingerprints of the keys rotated away from, oldest first. */
  readonly chain?: readonly string[];
  readonly log?: LogHead;
  /** The registry the snapshots verified name (`checkSnapshotRegistry`). */
  readonly registry?: string;
}

/**
 * The state file as saved: a damaged one is refused rather than read as none (a damaged `log` would
 * otherwise let a rewritten history be taken on first use again).
 * @throws ClientError TRUST_STATE_INVALID naming the file and the field.
 */
function readVerifyState(textOf: string, file: string): VerifyState {
  let value: unknown;
  try {
    value = JSON.parse(textOf);
  } catch {
    throw new ClientError('TRUST_STATE_INVALID', `${file}: not JSON`);
  }
  const state = value as Record<string, unknown> | null;
  if (typeof state !== 'object' || state === null || Array.isArray(state))
    throw new ClientError('TRUST_STATE_INVALID', `${file}: expected an object`);
  if (state.log !== undefined && !isLogHead(state.log))
    throw new ClientError(
      'TRUST_STATE_INVALID',
      `${file}#/log: expected {"length": a count, "head": 64 hex digits}`,
    );
  if (state.key !== undefined && typeof state.key !== 'string')
    throw new ClientError('TRUST_STATE_INVALID', `${file}#/key: expected an armored key`);
  if (
    state.chain !== undefined &&
    !(Array.isArray(state.chain) && state.chain.every((f) => typeof f === 'string'))
  )
    throw new ClientError('TRUST_STATE_INVALID', `${file}#/chain: expected a list of fingerprints`);
  if (state.registry !== undefined && typeof state.registry !== 'string')
    throw new ClientError(
      'TRUST_STATE_INVALID',
      `${file}#/registry: expected the registry's URL as its snapshots name it`,
    );
  return state as VerifyState;
}

/**
 * The key a `--state` file kept (trusted on a first run, or followed since), held to what a key given is
 * (`readTrustedKey`): read without that check when `--key` was a key it rotated from, a key kept by a verify
 * that took any key (one anyone can sign as, or whose arithmetic is unbounded) was pinned, and failed later
 * at its first signature (SNAPSHOT_BAD_SIGNATURE), in words that named neither the file nor the key.
 * @throws ClientError PINNED_KEY_UNTRUSTED naming the file, the key and why; TRUST_STATE_INVALID for a key
 *   kept with its secret key material.
 */
async function readKeptKey(armored: string, file: string | undefined): Promise<PublicKeyInfo> {
  const kept = await readPublicKey(armored);
  // A verify keeps a key's public part alone: secret material there was written by another hand, and
  // whoever reads the file may sign as the registry.
  if (isSecretKeyText(armored, kept))
    throw new ClientError(
      'TRUST_STATE_INVALID',
      `${file}#/key: key ${kept.fingerprint} is given with its secret key material, which a verify never keeps (anyone who reads it may sign as the registry): remove ${file} and verify again with --key FILE (the registry's public key)`,
    );
  const problem = untrustedKeyProblem(kept.key);
  if (problem)
    throw new ClientError(
      'PINNED_KEY_UNTRUSTED',
      `${file}#/key: key ${kept.fingerprint}, the registry key this state kept, cannot be trusted: ${problem}; nothing it signs is taken: remove ${file} and verify again with --key FILE (the registry's current key)`,
    );
  return kept;
}

async function verifyWith(
  reader: Reader,
  options: {
    readonly url: string;
    readonly mirror?: string;
    readonly pinnedKey?: string;
    readonly stateFile?: string;
    readonly now?: Date;
  },
): Promise<VerifyReport> {
  let saved: VerifyState | undefined;
  if (options.stateFile) {
    const kept = await readFile(options.stateFile, 'utf8').catch(() => undefined);
    if (kept) saved = readVerifyState(kept, options.stateFile);
  }
  // Without --key, the key the state kept (the one trusted on first use, or followed since) is the pin: the
  // served keys/registry.asc only on the first run. Taking it every run let whoever serves the registry
  // (a mirror, a bucket written to) swap in a key of its own, re-sign everything, and have the state keep it.
  const keyFrom: VerifyReport['keyFrom'] =
    options.pinnedKey !== undefined ? 'given' : saved?.key !== undefined ? 'state' : 'registry';
  // Refused before the state keeps it: a pin no signature by which is taken (weak or costly) verifies nothing.
  const given =
    keyFrom === 'state' && saved?.key !== undefined
      ? await readKeptKey(saved.key, options.stateFile)
      : await readTrustedKey(
          options.pinnedKey ?? text(await reader.get(REGISTRY_PUBLIC_KEY_KEY, UNLISTED_LIMITS.key)),
          'the registry key',
        );
  if (keyFrom === 'registry' && given.secret === true)
    throw servedSecretKey(`${reader.base}/${REGISTRY_PUBLIC_KEY_KEY}`, given.fingerprint);
  // The CLI refuses a --key file holding one first; a caller of this function is held to the same.
  if (keyFrom === 'given' && isSecretKeyText(options.pinnedKey ?? '', given))
    throw new ClientError(
      'SECRET_KEY_GIVEN',
      `the registry key given (${given.fingerprint}) is a secret key, not a public key: nothing was read. Give its public key (gpg --export --armor ${given.fingerprint}, or the public.asc plugindex keygen wrote); a secret key that has left its owner should be replaced (plugindex keygen)`,
    );
  if (keyFrom === 'state' && given.fingerprint !== saved?.fingerprint)
    throw new ClientError(
      'TRUST_STATE_INVALID',
      `${options.stateFile}#/key: is key ${given.fingerprint}, not ${saved?.fingerprint} as #/fingerprint says`,
    );
  // A state from before it kept the key names its fingerprint alone: the served key must be that one (with
  // no key to follow rotations from, a registry that rotated since is verified by giving --key).
  if (keyFrom === 'registry' && saved?.fingerprint !== undefined && given.fingerprint !== saved.fingerprint)
    throw new TrustError(
      'SNAPSHOT_WRONG_KEY',
      `${reader.base}/${REGISTRY_PUBLIC_KEY_KEY} is key ${given.fingerprint}, not ${saved.fingerprint} as ${options.stateFile} pins (give the key with --key)`,
    );
  // A key given that the registry rotated from (in the chain saved): start from the key followed last time,
  // with where it stands, so a rotation is not followed again from an older key nor its count mistaken.
  let pinned = given;
  let chainSaved: readonly string[] = [];
  if (saved?.key !== undefined && saved.chain?.includes(given.fingerprint)) {
    pinned = await readKeptKey(saved.key, options.stateFile);
    if (pinned.fingerprint !== saved.fingerprint)
      throw new ClientError(
        'TRUST_STATE_INVALID',
        `${options.stateFile}#/key: is key ${pinned.fingerprint}, not ${saved.fingerprint} as #/fingerprint says`,
      );
    chainSaved = saved.chain;
  } else if (saved?.fingerprint === given.fingerprint) {
    // The key followed last time itself (kept, or given again): the keys it left stay left.
    chainSaved = saved.chain ?? [];
  }
  const lastGeneration = saved?.generation;
  const lastLog = saved?.log;
  // Trust in TUF's order, which the trusted snapshot enforces: the snapshot, then the documents it lists
  // (the bins among them), then each plugin document against its verified bin.
  const trustedBy = (key: Key) =>
    new TrustedSnapshot({
      key,
      clock: options.now ? fixedClock(options.now) : systemClock,
      ...(lastGeneration !== undefined ? { highestGeneration: lastGeneration } : {}),
    });
  const from = saved?.fingerprint === pinned.fingerprint ? saved.rotations : undefined;
  const held = { key: pinned.key, fingerprint: pinned.fingerprint, armoredKey: pinned.armored };
  const { value, chain } = await readThroughRotations({
    load: reader.load,
    held,
    ...(from !== undefined ? { from } : {}),
    // The keys left before the one held never come back (a loop), as for a session.
    retired: chainSaved,
    // A key taken from the registry itself has nothing to follow from; one given or kept has.
    follow: keyFrom !== 'registry',
    read: async (followed) => {
      const trusted = trustedBy((followed ?? held).key);
      const snapshot = await fetchSnapshot(reader, (bytes, signature) =>
        trusted.updateSnapshot(bytes, signature),
      );
      return { trusted, snapshot };
    },
  });
  const { trusted, snapshot } = value;
  // Signed by the key held (no rotation followed): it must count the rotations the state says that key is
  // at, as a session requires, or the state would keep a count that sends the next run to the wrong rotation.
  if (!chain)
    checkHeldSnapshot(
      { fingerprint: held.fingerprint, rotations: from },
      snapshot,
      `${reader.base}/${SNAPSHOT_KEY}`,
    );
  checkSnapshotRegistry(
    saved?.registry,
    snapshot,
    `${reader.base}/${SNAPSHOT_KEY}`,
    `remove ${options.stateFile} to verify it afresh`,
  );
  checkRegistryAsked(options, snapshot, `${reader.base}/${SNAPSHOT_KEY}`);
  const key = chain ?? held;
  if (chain) chainSaved = [...chainSaved, ...chain.links.map((l) => l.fingerprint)];
  const rotations = chain?.steps.map(({ sequence, from: before, to, compromised }) => ({
    sequence,
    from: before,
    to,
    ...(compromised ? { compromised } : {}),
  }));
  // The log first: what it says of each plugin is held against its document as that is read, so no
  // document is kept for it.
  const {
    head: logHead,
    entries,
    voided,
  } = await readWholeLog(reader.load, snapshot, {
    base: reader.base,
    registryKey: key.fingerprint,
    ...(lastLog ? { remembered: lastLog } : {}),
  });
  const log = logHead ?? EMPTY_LOG;
  const fold = foldLog(entries, voided);
  const disagreements: LogDisagreement[] = [];
  const served = new Set<string>();
  // Every document by the digest the snapshot (or a bin) gives it: `?v=<sha256>` is its own CDN cache entry,
  // so no cache can hand back an older generation than the snapshot names.
  const bins: BinDocument[] = [];
  for (const [path, digest] of Object.entries(snapshot.documents)) {
    // An index document as it is; its encoded variants each by their coding (checkVariants), so a fault in
    // one is named as that variant's, not the document's.
    const coding = ENCODED_DOCUMENTS.has(path) ? 'identity' : undefined;
    const body = await reader.get(path, digest.size, digest.sha256, coding);
    const bin = binOfKey(path);
    if (bin === undefined) trusted.verifyDocument(path, body);
    else bins.push(trusted.updateBin(bin, body));
  }
  const encoded = Object.fromEntries(
    Object.entries(snapshot.documents).filter(([path]) => ENCODED_DOCUMENTS.has(path)),
  );
  let variants = await reader.checkVariants(encoded, (path, body) => trusted.verifyDocument(path, body));
  let manifests = 0;
  let artifacts = 0;
  let plugins = 0;
  let removed = 0;
  for (const listing of bins) {
    for (const [docPath, digest] of Object.entries(listing.documents)) {
      const name = docPath.split('/')[1] as string;
      // One over the compression threshold has variants too (pipeline/encoded.ts `putSizedVariants`): read
      // as it is, then each variant by its coding alone, as an index document is. A variant is held to the
      // digest alone: matching it, its bytes are the document's, already parsed and checked above.
      const sized = digest.size > COMPRESSION_THRESHOLD_BYTES;
      const body = await reader.get(docPath, digest.size, digest.sha256, sized ? 'identity' : undefined);
      const doc = trusted.pluginDocument(name, body);
      if (sized) {
        variants += await reader.checkVariants({ [docPath]: digest }, (_, variant) =>
          verifyInBin(listing, name, variant),
        );
        variants += await reader.checkNamedVariant(docPath, digest, (variant) =>
          verifyInBin(listing, name, variant),
        );
      }
      plugins += 1;
      served.add(doc.name);
      disagreements.push(...compareDocument(fold, doc));
      for (const version of doc.versions) {
        // Removed for legal or security reasons: its files are deleted on purpose, its record says why.
        if (version.removed) {
          removed += 1;
          continue;
        }
        const manifestPath = manifestKey(doc.name, version.version);
        // The signature installs read (in the plugin document) and the one gpg users fetch must be one.
        // Asked for by the digest of the one the document carries, as every document is: a key rotation
        // signs the manifest again, and `?v=<manifest sha256>` named the same cache entry before and after
        // it, so a CDN's copy by the retired key was what the registry was held to.
        const ascVersion =
          version.manifest_signature !== undefined
            ? sha256Hex(version.manifest_signature)
            : version.manifest_sha256;
        const asc = text(await reader.get(signatureKey(manifestPath), UNLISTED_LIMITS.signature, ascVersion));
        if (version.manifest_signature !== undefined && version.manifest_signature !== asc)
          throw new TrustError(
            'DOCUMENT_MISMATCH',
            `${reader.base}/${signatureKey(manifestPath)} is not the signature ${pluginDocumentKey(doc.name)} carries for ${version.version}`,
          );
        await verifyManifest({
          name: doc.name,
          version,
          manifest: await reader.get(manifestPath, version.manifest_size, version.manifest_sha256),
          signature: asc,
          key: key.key,
          url: `${reader.base}/${manifestPath}`,
        });
        manifests += 1;
        for (const artifact of [...version.artifacts, ...(version.libc_artifacts ?? [])]) {
          if (!artifact.hosted) continue;
          await reader.checkArtifact(doc.name, version.version, artifact);
          artifacts += 1;
        }
      }
    }
  }
  disagreements.push(...missingPlugins(fold, served));
  // Each action's envelope, by its digest (immutable), a few at a time: one request and one signature
  // check an action entry.
  const actions = entries
    .map((read, i) => ({ entry: read.entry, i }))
    // One voided never took effect: the registry may have published its envelope, or not.
    .filter(({ entry }) => isActionEntry(entry) && !voided.has(entry.seq));
  const envelopes: (LogDisagreement | undefined)[] = new Array(entries.length);
  await forEachLimited(actions, ENVELOPE_FETCHES, async ({ entry, i }) => {
    const bytes = await reader.load({
      path: actionEnvelopeKey(entry.digest),
      maxBytes: MAX_ACTION_BYTES,
      version: entry.digest,
    });
    envelopes[i] = await compareEnvelope(entry, bytes);
  });
  for (const found of envelopes) if (found) disagreements.push(found);
  // Each rotation by its fixed name (never rewritten), and once more past every cache when it is not there:
  // the edge keeps the 404 of one asked for before it was published (as `readThroughRotations` does).
  const rotation = async (sequence: number) => {
    const request = { path: rotationKey(sequence), maxBytes: MAX_ROTATION_BYTES };
    return (await reader.load(request)) ?? reader.load({ ...request, pastCaches: true });
  };
  disagreements.push(
    ...(await compareRotations(
      entries,
      { counted: snapshot.key_rotations ?? 0, registry: snapshot.registry, fingerprint: key.fingerprint },
      rotation,
    )),
  );
  if (disagreements.length > 0) throw new LogDisagreementError(disagreements);
  if (options.stateFile)
    await writeFile(
      options.stateFile,
      `${JSON.stringify({ generation: snapshot.generation, fingerprint: key.fingerprint, key: key.armoredKey, rotations: snapshot.key_rotations ?? 0, ...(chainSaved.length > 0 ? { chain: chainSaved } : {}), ...(log.length > 0 ? { log } : {}), registry: snapshot.registry })}\n`,
    );
  return {
    fingerprint: key.fingerprint,
    keyFrom,
    ...(rotations ? { rotations } : {}),
    generation: snapshot.generation,
    expires: snapshot.expires,
    documents: Object.keys(snapshot.documents).length,
    variants,
    plugins,
    manifests,
    artifacts,
    removed,
    log,
    envelopes: actions.length,
    ...(voided.size > 0 ? { voided: voidedReport(entries, voided) } : {}),
  };
}

/**
 * The snapshot must be of the registry asked for (`--url`), compared as `registryIdentity` spells URLs:
 * the key given signs it, but one key may sign two registries (a staging copy made from production's
 * folder, sharing its log's first entries), and without a name pinned (`--state`) one's snapshot, and with
 * it its voids and key rotations (held to the registry the snapshot names), passed at the other's URL. A
 * mirror serves snapshots naming the registry it copies, as `registry add` takes it: verified by naming
 * that registry with `--url` and the mirror with `--mirror`.
 * @throws TrustError SNAPSHOT_OTHER_REGISTRY naming both.
 */
function checkRegistryAsked(
  asked: { readonly url: string; readonly mirror?: string },
  snapshot: SnapshotDocument,
  where: string,
): void {
  if (registryIdentity(snapshot.registry) === registryIdentity(asked.url)) return;
  const remedy =
    asked.mirror === undefined
      ? `if ${asked.url} is a mirror of ${snapshot.registry}, verify it as one: --url ${snapshot.registry} --mirror ${asked.url}`
      : `if ${asked.mirror} is a mirror of ${snapshot.registry}, give that registry: --url ${snapshot.registry} --mirror ${asked.mirror}`;
  throw new TrustError(
    'SNAPSHOT_OTHER_REGISTRY',
    `${where} is a snapshot of registry ${JSON.stringify(snapshot.registry)}, not of ${JSON.stringify(asked.url)}, the registry asked for: refused (another registry signed by the same key, whose voids and key rotations are not this one's; ${remedy})`,
  );
}

/** The entries `voided` names, oldest first, each with its void. */
function voidedReport(
  entries: readonly ReadEntry[],
  voided: ReadonlyMap<number, LogEntry>,
): readonly VoidedEntry[] {
  // The voids whose key (checkVoids held each to it) the first rotation after them retired as compromised:
  // one pass from the last entry back, the nearest rotation after each void the one that left its key.
  const byStolenKey = new Set<number>();
  let stolen = false;
  for (let i = entries.length - 1; i >= 0; i--) {
    const { entry } = entries[i] as ReadEntry;
    if (entry.type === 'rotate-key') stolen = entry.detail?.compromised === 'true';
    else if (entry.type === 'void' && stolen) byStolenKey.add(entry.seq);
  }
  return [...voided]
    .sort(([a], [b]) => a - b)
    .map(([seq, by]) => {
      const { type, plugin, version } = (entries[seq] as ReadEntry).entry;
      return {
        seq,
        type,
        ...(plugin !== undefined ? { plugin } : {}),
        ...(version !== undefined ? { version } : {}),
        by: by.seq,
        reason: by.detail?.reason ?? '',
        ...(byStolenKey.has(by.seq) ? { compromised: true as const } : {}),
      };
    });
}
