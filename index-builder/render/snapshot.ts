/**
 * The snapshot documents: `snapshot.json`, which binds the digest of every mutable document the registry
 * signs, and the bins (`snapshot/bins/<hh>.json`), which bind the plugin documents, 256 of them by the hash
 * of the name (TUF's hashed bins), so the snapshot stays a few kilobytes at any size. What a client checks
 * in them is verify.ts.
 */
import { binOf, pluginDocumentKey } from '../layout.ts';
import type { DocumentDigest, LogHead, SignedSnapshotDocument, SnapshotDocument } from '../model.ts';
import { stringifyJson } from '../text.ts';
import { encodeJson } from './documents.ts';

/**
 * The bin documents for `bins`: path -> digest of every plugin document whose name falls in the bin, the
 * plugins taken in the order of `names` (sorted). One pass, however many bins are asked for.
 */
export function renderBins(
  plugins: ReadonlyMap<string, { readonly document: DocumentDigest }>,
  bins: ReadonlySet<string>,
  names: readonly string[],
): Map<string, string> {
  const grouped = new Map<string, Record<string, DocumentDigest>>([...bins].map((bin) => [bin, {}]));
  for (const name of names) {
    const documents = grouped.get(binOf(name));
    if (documents)
      documents[pluginDocumentKey(name)] = (plugins.get(name) as { document: DocumentDigest }).document;
  }
  return new Map(
    [...grouped].map(([bin, documents]) => [
      bin,
      `${stringifyJson({ schema: 'plugindex/bin/v1', bin, documents }, 2)}\n`,
    ]),
  );
}

export interface SnapshotOptions {
  /** The registry's URL. */
  readonly registry: string;
  readonly generation: number;
  readonly created: Date;
  /** How long clients may trust it: a frozen mirror cannot replay an old view past this. */
  readonly ttlSeconds: number;
  /** The registry key that signs it. */
  readonly keyFingerprint: string;
  /** Path -> digest of every document listed, in the order they are to appear (sorted). */
  readonly documents: Readonly<Record<string, DocumentDigest>>;
  /** The transparency log's length and head, when it has entries. */
  readonly log?: LogHead;
  /** Registry key rotations so far, when there were any. */
  readonly keyRotations?: number;
}

/** `snapshot.json`, pretty-printed: a few kilobytes, read by people as well as clients. */
export function renderSnapshot(options: SnapshotOptions): Uint8Array {
  const snapshot: SnapshotDocument = {
    schema: 'plugindex/snapshot/v1',
    registry: options.registry,
    generation: options.generation,
    created: options.created.toISOString(),
    expires: new Date(options.created.getTime() + options.ttlSeconds * 1000).toISOString(),
    key_fingerprint: options.keyFingerprint,
    documents: options.documents,
    ...(options.log && options.log.length > 0 ? { log: options.log } : {}),
    ...(options.keyRotations ? { key_rotations: options.keyRotations } : {}),
  };
  return encodeJson(snapshot);
}

/** `snapshot.signed.json`: the snapshot's bytes and their signature in one document. */
export function renderSignedSnapshot(snapshot: Uint8Array, signature: string): Uint8Array {
  const signed: SignedSnapshotDocument = {
    schema: 'plugindex/signed-snapshot/v1',
    snapshot: new TextDecoder().decode(snapshot),
    signature,
  };
  return encodeJson(signed);
}
