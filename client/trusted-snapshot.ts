/**
 * The client's trusted metadata: TUF's trusted metadata store (tuf-js `TrustedMetadataStore`) over the
 * core's checks (index-builder/verify.ts). Its state is the order of trust: a snapshot first, signed by the
 * pinned key, not below the highest generation this client has accepted, not expired; then a bin, only
 * against that snapshot; then a plugin document, only against its verified bin. Nothing can be verified
 * out of that order, and a newer snapshot drops the bins of the one before, so no document of one
 * generation is ever checked against another's listing.
 *
 * Pure: bytes in, verified values out. The caller (client/session.ts) fetches, and keeps the highest
 * generation across runs in the data directory.
 *
 * @example
 * const trusted = new TrustedSnapshot({ key, highestGeneration: 41, clock: systemClock });
 * await trusted.updateSnapshot(snapshotBytes, snapshotAsc);
 * trusted.updateBin(binOf('kubecost-lens'), binBytes);
 * const doc = trusted.pluginDocument('kubecost-lens', docBytes);
 */
import type { Key } from 'openpgp';
import type { Clock } from '../index-builder/clock.ts';
import { TrustError } from '../index-builder/errors.ts';
import { binKey, binOf, pluginDocumentKey } from '../index-builder/layout.ts';
import type { BinDocument, PluginDocument, SnapshotDocument } from '../index-builder/model.ts';
import {
  assertPluginDocument,
  verifyBin,
  verifyInBin,
  verifyListedDocument,
  verifySnapshot,
} from '../index-builder/verify.ts';
import { ClientError } from './errors.ts';

export interface TrustedSnapshotOptions {
  /** The registry key the client pinned (at `registry add`, or rotated to through a signed chain). */
  readonly key: Key;
  /** The highest generation this client has accepted from this registry before, if any. */
  readonly highestGeneration?: number;
  readonly clock: Clock;
}

export class TrustedSnapshot {
  readonly #key: Key;
  readonly #clock: Clock;
  #highest: number | undefined;
  #snapshot: SnapshotDocument | undefined;
  /** Bin -> its verified listing, for the current snapshot only. */
  readonly #bins = new Map<string, BinDocument>();

  constructor(options: TrustedSnapshotOptions) {
    this.#key = options.key;
    this.#clock = options.clock;
    this.#highest = options.highestGeneration;
  }

  /** What the caller keeps across runs, so a later run refuses anything older (rollback). */
  get highestGeneration(): number | undefined {
    return this.#highest;
  }

  /** The snapshot trusted now. @throws ClientError CLIENT_OUT_OF_ORDER before `updateSnapshot`. */
  get snapshot(): SnapshotDocument {
    if (!this.#snapshot) throw outOfOrder('no snapshot has been verified yet');
    return this.#snapshot;
  }

  /**
   * Verifies and trusts `snapshot.json` (forgery, rollback, freeze).
   * @throws TrustError SNAPSHOT_BAD_SIGNATURE, SNAPSHOT_WRONG_KEY, SNAPSHOT_MALFORMED, SNAPSHOT_ROLLBACK or
   *   SNAPSHOT_EXPIRED; the snapshot trusted before stays trusted.
   */
  async updateSnapshot(bytes: Uint8Array, signature: string): Promise<SnapshotDocument> {
    const snapshot = await verifySnapshot({
      snapshot: bytes,
      signature,
      key: this.#key,
      now: this.#clock.now(),
      ...(this.#highest === undefined ? {} : { lastGeneration: this.#highest }),
    });
    if (this.#snapshot?.generation !== snapshot.generation) this.#bins.clear();
    this.#snapshot = snapshot;
    this.#highest = Math.max(this.#highest ?? snapshot.generation, snapshot.generation);
    return snapshot;
  }

  /** Verifies a document the snapshot lists itself (`index.json`, `search.json`, `keys/registry.asc`, ...). */
  verifyDocument(path: string, bytes: Uint8Array): void {
    verifyListedDocument(this.snapshot, path, bytes);
  }

  /** Verifies and keeps a bin's listing (`snapshot/bins/<bin>.json`) against the trusted snapshot. */
  updateBin(bin: string, bytes: Uint8Array): BinDocument {
    const listing = verifyBin(this.snapshot, bin, bytes);
    this.#bins.set(bin, listing);
    return listing;
  }

  /**
   * Verifies a plugin document against its bin's listing, and returns it parsed.
   * @throws ClientError CLIENT_OUT_OF_ORDER unless the plugin's bin was verified for this snapshot;
   *   TrustError DOCUMENT_NOT_LISTED or DOCUMENT_MISMATCH, or DOCUMENT_MALFORMED for bytes that match
   *   their digest yet are not this plugin's document (a registry's defect, refused all the same).
   */
  pluginDocument(name: string, bytes: Uint8Array): PluginDocument {
    const bin = binOf(name);
    const listing = this.#bins.get(bin);
    if (!listing) throw outOfOrder(`${pluginDocumentKey(name)} before its bin ${binKey(bin)}`);
    verifyInBin(listing, name, bytes);
    let doc: unknown;
    try {
      doc = JSON.parse(new TextDecoder().decode(bytes));
    } catch (cause) {
      throw new TrustError('DOCUMENT_MALFORMED', `${pluginDocumentKey(name)} is not JSON`, { cause });
    }
    assertPluginDocument(doc, name);
    return doc;
  }
}

function outOfOrder(what: string): ClientError {
  return new ClientError('CLIENT_OUT_OF_ORDER', `trusted snapshot: ${what}`);
}
