/**
 * What a batch reads back of what the registry published, checked against the catalog before it is used.
 *
 * A publish merges its new version into the plugin's published document (its owners, versions,
 * deprecations), judges publishers by the published `keys/revoked.json`, and makes the next snapshot from
 * the published `snapshot.json`; then the registry signs the result. Those documents live in the published
 * store, which more hands may write than the intake store, where the catalog is kept (on AWS the site bucket,
 * which administrators may write; locally `public/`, which a web server's deploy user may). So each is held
 * to what the catalog recorded the registry published there (the plugin's line, the `global` line of
 * `keys/revoked.json`, the `snapshot` line), or to what a run recorded it was about to publish there before it
 * did (`writing` lines: a run that died between the document and the catalog). Anything else, a document
 * where the catalog records none, or none where it records one, fails the batch with TrustError
 * PUBLISHED_DOCUMENT_ALTERED naming the key and both digests: the batch publishes nothing, and its uploads
 * stay in `incoming/` for a retry once the operator has put the document back (or, to take the published
 * documents as they are, run `plugindex rebuild`, which trusts them on first use and records them anew).
 *
 * Trusted on first use: `snapshot.json` while the catalog records none (a catalog saved before it was
 * recorded). A catalog of another format checks nothing here: it is rebuilt from the published documents
 * first, each held to what the registry signed (`SignedDocuments`). Cost: one SHA-256 of each document read (the few plugin documents a batch changes, the
 * revoked list, the snapshot: a few kilobytes each), and the plugin's document digest from its catalog bin,
 * which the commit reads anyway.
 */
import { type Catalog, documentsIn, openCatalog } from '../catalog.ts';
import { sha256Hex } from '../digest.ts';
import { TrustError } from '../errors.ts';
import {
  binOf,
  binOfKey,
  CATALOG_META_KEY,
  listPluginNames,
  pluginDocumentKey,
  REVOKED_KEYS_KEY,
  SNAPSHOT_BINS_PREFIX,
  SNAPSHOT_KEY,
  signatureKey,
} from '../layout.ts';
import { forEachLimited } from '../limited.ts';
import type { BinDocument, SnapshotDocument } from '../model.ts';
import { readPublicKey, verifyDetachedSignature } from '../signing.ts';
import type { Store } from '../store.ts';

/**
 * What a published document is to the catalog: the one it records, one a run recorded it was about to
 * write (the catalog is behind it), unrecorded (trusted on first use), or absent (none published).
 */
export type Verdict = 'recorded' | 'writing' | 'unrecorded' | 'absent';

/** The code of a published document that is not what the registry recorded it published. */
const ALTERED = 'PUBLISHED_DOCUMENT_ALTERED';

/** True for the failure `checkPublished` throws: the batch fails on it, no submission is to blame. */
export function isAltered(error: unknown): error is TrustError {
  return error instanceof TrustError && error.code === ALTERED;
}

/**
 * Holds `body`, the document published at `key` (undefined: none), to `recorded` (the sha256 the catalog
 * records there; undefined: none) and to what runs recorded they were about to write there.
 * `firstUse`: no record is no claim (a record the catalog did not keep yet), so what is there is trusted.
 * @throws TrustError PUBLISHED_DOCUMENT_ALTERED naming the key, the digest expected and the one found.
 */
function checkPublished(
  catalog: Catalog,
  key: string,
  recorded: string | undefined,
  body: Uint8Array | undefined,
  firstUse = false,
): Verdict {
  if (catalog.outdated) return body ? 'unrecorded' : 'absent';
  return holdPublished(catalog, key, recorded, body, firstUse);
}

/** `checkPublished` whatever the catalog's format; `by` says where `recorded` comes from. */
function holdPublished(
  catalog: Catalog,
  key: string,
  recorded: string | undefined,
  body: Uint8Array | undefined,
  firstUse = false,
  by = 'its catalog records',
  found = body ? sha256Hex(body) : undefined,
): Verdict {
  if (found === recorded) return body ? 'recorded' : 'absent';
  const writing = catalog.writing.get(key);
  if (found !== undefined && writing?.has(found)) return 'writing';
  if (firstUse && recorded === undefined) return 'unrecorded';
  const expected = [recorded ?? 'none', ...(writing ?? [])].join(' or ');
  throw new TrustError(
    ALTERED,
    `${key} is not what this registry published there: ${by} ${expected}, the published store holds ${found ?? 'none'}; someone else wrote it. Put the published document back and retry (or run plugindex rebuild, --registry DIR or on AWS --queue-url URL, to take the published documents as they are)`,
  );
}

/** The checks of one batch, over the catalog it opened (`catalog`, opened side by side with the rest). */
export class PublishedRecords {
  readonly #intake: Store;
  readonly #catalog: Promise<Catalog>;
  /** Each bin's document digests, asked for once per batch (a cold process reads the bin once). */
  readonly #bins = new Map<string, ReturnType<typeof documentsIn>>();

  constructor(intake: Store, catalog: Promise<Catalog>) {
    this.#intake = intake;
    this.#catalog = catalog;
  }

  /** The digest the catalog records for `name`'s document (undefined: none). */
  async #recordedDocument(name: string): Promise<string | undefined> {
    const catalog = await this.#catalog;
    if (catalog.outdated) return undefined;
    const bin = binOf(name);
    let documents = this.#bins.get(bin);
    if (!documents) {
      documents = documentsIn(this.#intake, catalog, new Set([bin]));
      this.#bins.set(bin, documents);
      documents.catch(() => {
        if (this.#bins.get(bin) === documents) this.#bins.delete(bin);
      });
    }
    return (await documents).get(name)?.document.sha256;
  }

  /** `name`'s published document (`body`) checked: see `checkPublished`. */
  async pluginDocument(key: string, name: string, body: Uint8Array | undefined): Promise<Verdict> {
    const recorded = await this.#recordedDocument(name);
    return checkPublished(await this.#catalog, key, recorded, body);
  }

  /** The published `keys/revoked.json` (`body`) checked. */
  async revokedKeys(body: Uint8Array | undefined): Promise<Verdict> {
    const catalog = await this.#catalog;
    return checkPublished(
      catalog,
      REVOKED_KEYS_KEY,
      catalog.registryDigests.get(REVOKED_KEYS_KEY)?.sha256,
      body,
    );
  }
}

/**
 * The published `snapshot.json` (`body`) checked against `catalog` (trusted on first use while it records
 * none), then read: undefined for none.
 */
export function checkedSnapshot(
  catalog: Catalog,
  body: Uint8Array | undefined,
): SnapshotDocument | undefined {
  checkPublished(catalog, SNAPSHOT_KEY, catalog.snapshot?.sha256, body, catalog.snapshot === undefined);
  return body ? (JSON.parse(new TextDecoder().decode(body)) as SnapshotDocument) : undefined;
}

/** Plugin documents read at once by `checkEveryPublished`: a few kilobytes each, S3's latency hidden. */
const CHECK_CONCURRENCY = 64;

/**
 * Every document a rebuild takes as it is (each plugin's, `keys/revoked.json`, `snapshot.json`), held to what
 * the catalog records the registry published, writing nothing: what a key rotation checks before it writes
 * anything, so that the new key vouches for exactly what the old one did. A rotation, run after a suspected
 * compromise as often as not, signed with the new key a plugin document someone else had edited in the
 * published store (a stranger made an owner every client then accepted), where a publish refuses it. Taking
 * the published documents as they are stays `plugindex rebuild`'s, on the operator's word. A plugin the
 * catalog records whose document is gone is refused too, as a batch refuses it. Nothing is checked while the
 * catalog is of another format or marked `rebuilding` (a rebuild under way, or one that died, which the next
 * run finishes and which takes the documents as they are, as every batch does then), nor with no catalog
 * at all (the private `state/` lost: see below).
 * `visit`, when given, is handed each plugin document read (its name and bytes), checked or not (no catalog, or
 * one that checks nothing, still has every document a rebuild takes read for it): a caller that must look into
 * every document (a rotation's key among the owners and publishers, rotate.ts) does it in this one pass, where
 * it read each document a second time. What it is handed counts only once this returns: a document refused
 * is handed over all the same.
 * Cost: one read and one SHA-256 of each plugin document, 64 at a time, and the catalog's bins.
 * @throws TrustError PUBLISHED_DOCUMENT_ALTERED naming the first such document (by name) and both digests.
 */
export async function checkEveryPublished(
  site: Store,
  intake: Store,
  visit?: (name: string, body: Uint8Array) => void,
): Promise<void> {
  // No catalog at all: the intake store's `state/` lost (or never saved), which only the intake store's
  // writers can do, and nothing else stands to check against: the rebuild after a loss takes what is
  // published as it is too (a rotation meeting a lost state/ is finished, lost-state.test.ts).
  const [meta, catalog] = await Promise.all([intake.head(CATALOG_META_KEY), openCatalog(intake)]);
  const checking = meta !== undefined && !catalog.outdated;
  if (!checking && !visit) return;
  const recorded = checking
    ? await documentsIn(intake, catalog, new Set(catalog.bins.keys()))
    : new Map<string, never>();
  const names = new Set(recorded.keys());
  // Each plugin's folder, as a rebuild finds them: a document it would take is checked, recorded or not.
  for await (const name of listPluginNames(site)) names.add(name);
  const altered: { name: string; error: unknown }[] = [];
  await forEachLimited([...names], CHECK_CONCURRENCY, async (name) => {
    const key = pluginDocumentKey(name);
    const object = await site.get(key);
    if (object) visit?.(name, object.body);
    if (!checking) return;
    try {
      checkPublished(catalog, key, recorded.get(name)?.document.sha256, object?.body);
    } catch (error) {
      if (!isAltered(error)) throw error;
      altered.push({ name, error });
    }
  });
  // The first by name, whatever order the reads finished in: the same refusal every time it is run.
  const first = altered.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))[0];
  if (first) throw first.error;
  if (!checking) return;
  const [revoked, snapshot] = await Promise.all([site.get(REVOKED_KEYS_KEY), site.get(SNAPSHOT_KEY)]);
  checkPublished(
    catalog,
    REVOKED_KEYS_KEY,
    catalog.registryDigests.get(REVOKED_KEYS_KEY)?.sha256,
    revoked?.body,
  );
  checkedSnapshot(catalog, snapshot?.body);
}

/**
 * What the registry signed of the documents an upgrade's rebuild takes (the catalog of another format,
 * `Catalog.upgrading`, whose records this release cannot read), for it to hold each to (`check`) as a batch
 * holds one to the catalog, before it writes anything: the upgrade (format 7 added `owners` to every search
 * row) signed the rows of a plugin document someone else had edited in the published store, a stranger's
 * owner among them. `snapshot.json` is held to its signature by this registry's key and to the catalog's
 * generation (one put back from before is refused), each snapshot bin to the digest it lists, each plugin
 * document to the digest its bin lists, `keys/revoked.json` to the snapshot's own; or, each, to what the run
 * that died last recorded it was about to publish (the catalog's `writing` lines, read from the old file).
 * Nothing published yet: nothing is expected. Cost: the snapshot's signature and the 256 bins (a few tens of
 * bytes a plugin), read 64 at a time; each document is hashed as the rebuild reads it anyway.
 * @throws TrustError PUBLISHED_DOCUMENT_ALTERED naming the snapshot or the bin, and the digests.
 */
export class SignedDocuments {
  readonly #catalog: Catalog;
  readonly #signed = new Map<string, string>();

  private constructor(catalog: Catalog) {
    this.#catalog = catalog;
  }

  static async read(
    site: Store,
    publicKey: string,
    catalog: Catalog,
    snapshot: Uint8Array | undefined,
  ): Promise<SignedDocuments> {
    const signed = new SignedDocuments(catalog);
    if (!snapshot) return signed;
    const [signature, { key }] = await Promise.all([
      site.get(signatureKey(SNAPSHOT_KEY)),
      readPublicKey(publicKey),
    ]);
    const text = new TextDecoder().decode(snapshot);
    // The snapshot its catalog records, or one a run recorded it was about to publish, is the registry's
    // though the signature beside it is not its own: a run writes the two side by side, and one that died
    // between them left the other's.
    const sha256 = sha256Hex(snapshot);
    const verified =
      catalog.snapshot?.sha256 === sha256 || catalog.writing.get(SNAPSHOT_KEY)?.has(sha256)
        ? { ok: true as const }
        : signature
          ? await verifyDetachedSignature(snapshot, new TextDecoder().decode(signature.body), [key])
          : { ok: false as const, message: `${signatureKey(SNAPSHOT_KEY)} is missing` };
    const generation = verified.ok ? (JSON.parse(text) as SnapshotDocument).generation : Number.NaN;
    if (!(generation >= catalog.generation))
      throw new TrustError(
        ALTERED,
        `${SNAPSHOT_KEY} (sha256 ${sha256}) is not what this registry published there: ${verified.ok ? `generation ${generation}, its catalog's ${catalog.generation}` : `not signed by this registry's key (${verified.message})`}. Put it back and retry (or run plugindex rebuild to take the published documents as they are)`,
      );
    const documents = (JSON.parse(text) as SnapshotDocument).documents;
    const revoked = documents[REVOKED_KEYS_KEY];
    if (revoked) signed.#signed.set(REVOKED_KEYS_KEY, revoked.sha256);
    const bins = Object.entries(documents).filter(([k]) => k.startsWith(SNAPSHOT_BINS_PREFIX));
    await forEachLimited(bins, CHECK_CONCURRENCY, async ([binKey, digest]) => {
      const bin = await site.get(binKey);
      try {
        holdPublished(catalog, binKey, digest.sha256, bin?.body, false, SIGNED_BY);
      } catch (error) {
        throw binOfDeadCommit(catalog, binKey, digest.sha256, bin?.body, error);
      }
      const listed = (JSON.parse(new TextDecoder().decode(bin?.body)) as BinDocument).documents;
      for (const [k, d] of Object.entries(listed)) signed.#signed.set(k, d.sha256);
    });
    return signed;
  }

  /** The keys of the documents signed (plugin documents, `keys/revoked.json`): each one a rebuild must find. */
  keys(): IterableIterator<string> {
    return this.#signed.keys();
  }

  /**
   * Holds `body`, the document published at `key` (undefined: none), to what the registry signed there.
   * Returns its sha256 (undefined: none), computed once for the check.
   */
  check(key: string, body: Uint8Array | undefined): string | undefined {
    const found = body ? sha256Hex(body) : undefined;
    holdPublished(this.#catalog, key, this.#signed.get(key), body, false, SIGNED_BY, found);
    return found;
  }
}

/**
 * The refusal of snapshot bin `binKey` (`body`; the snapshot signed lists `signed`), `error`, said again when
 * the bin is what a batch of an earlier release leaves when it dies after writing its snapshot bins, before
 * `snapshot.json`: a bin of this registry's shape, of its own name, listing a plugin document that a run
 * recorded it was about to publish (`Catalog.writing`: a batch records its documents before it writes them,
 * its bins nothing). Told only "someone else wrote it", the operator of an honest registry was sent to put
 * back a bin nothing holds a copy of. Still refused: which documents such a bin lists unchanged, nothing this
 * release reads records, and a bin someone else wrote may list a recorded document too (its digest is the
 * published document's). So the message names both causes and the recovery, `plugindex rebuild`.
 */
function binOfDeadCommit(
  catalog: Catalog,
  binKey: string,
  signed: string,
  body: Uint8Array | undefined,
  error: unknown,
): unknown {
  if (!isAltered(error) || !body) return error;
  let found: Partial<BinDocument> | undefined;
  try {
    found = JSON.parse(new TextDecoder().decode(body)) as Partial<BinDocument>;
  } catch {
    return error; // not a bin at all
  }
  const documents = found?.documents;
  if (found?.schema !== 'plugindex/bin/v1' || found.bin !== binOfKey(binKey) || typeof documents !== 'object')
    return error;
  const recorded = Object.entries(documents ?? {})
    .filter(([key, digest]) => catalog.writing.get(key)?.has(digest?.sha256) === true)
    .map(([key]) => key)
    .sort();
  if (recorded.length === 0) return error;
  return new TrustError(
    ALTERED,
    `${binKey} (sha256 ${sha256Hex(body)}) is not the bin the snapshot this registry signed lists there (sha256 ${signed}), and it lists ${recorded.join(', ')} as a run recorded it was about to publish: either a batch of an earlier release died after writing its snapshot bins, before snapshot.json, or someone else wrote it. This release cannot tell which (nothing it reads records the documents such a bin lists unchanged). Check the plugin documents it lists, then run plugindex rebuild (--registry DIR or on AWS --queue-url URL), which takes the published documents as they are`,
    { cause: error },
  );
}

/** Where `SignedDocuments` says the digest it expected comes from. */
const SIGNED_BY = 'the snapshot it signed lists';
