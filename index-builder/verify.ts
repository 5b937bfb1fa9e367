/**
 * What a client checks before it trusts documents fetched from a registry (TUF's client workflow, applied
 * to our snapshot; APT's Valid-Until for freshness). Pure: the caller fetches, these functions judge.
 *
 *   1. snapshot.json verifies against the pinned registry key      (forgery)
 *   2. its generation is not below the highest one seen before     (rollback)
 *   3. it has not expired                                          (freeze)
 *   4. every document's sha256 and size match the snapshot         (mix and match)
 *      - global documents are listed in the snapshot itself;
 *      - a plugin document is listed in its bin, and the bin in the snapshot.
 *   5. a version's manifest matches the digest its plugin document gives, carries the registry's signature,
 *      and names the same artifacts (platform, sha256) the plugin document lists
 */
import type { Key } from 'openpgp';
import { normalizeDigest, sha256Hex } from './digest.ts';
import { escapePointer, TrustError } from './errors.ts';
import { binKey, binOf, isCanonicalVersion, pluginDocumentKey, SIGNED_SNAPSHOT_KEY } from './layout.ts';
import {
  type ArtifactRecord,
  artifactPlatformText,
  artifactServing,
  type BinDocument,
  type DocumentDigest,
  LIBC_OS,
  LIBC_VALUES,
  type Manifest,
  type OciArtifact,
  type PluginDocument,
  type SignedSnapshotDocument,
  type SnapshotDocument,
  type VersionRecord,
} from './model.ts';
import { verifyDetachedSignature } from './signing.ts';

function parseJson(bytes: Uint8Array, what: string): unknown {
  return parseText(new TextDecoder().decode(bytes), what);
}

function parseText(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new TrustError('SNAPSHOT_MALFORMED', `${what} is not JSON`, { cause });
  }
}

/** Whether `text` opens more than `depth` arrays or objects inside each other (strings skipped). */
function nestsDeeperThan(text: string, depth: number): boolean {
  let open = 0;
  for (let i = 0; i < text.length; i += 1) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      for (i += 1; i < text.length && text.charCodeAt(i) !== 0x22; i += 1)
        if (text.charCodeAt(i) === 0x5c /* \ */) i += 1;
    } else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      open += 1;
      if (open > depth) return true;
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) open -= 1;
  }
  return false;
}

function assertSnapshot(value: unknown): asserts value is SnapshotDocument {
  const s = value as Partial<SnapshotDocument> | null;
  const ok =
    typeof s === 'object' &&
    s !== null &&
    s.schema === 'plugindex/snapshot/v1' &&
    Number.isInteger(s.generation) &&
    typeof s.expires === 'string' &&
    !Number.isNaN(Date.parse(s.expires)) &&
    typeof s.documents === 'object' &&
    s.documents !== null;
  if (!ok)
    throw new TrustError(
      'SNAPSHOT_MALFORMED',
      'snapshot.json lacks schema, generation, expires or documents',
    );
}

/**
 * `snapshot.signed.json` opened: the snapshot's bytes and their signature, for `verifySnapshot`. Nothing in
 * it is trusted before that check; this only refuses what is not the envelope.
 * @throws TrustError SNAPSHOT_MALFORMED
 */
export function openSignedSnapshot(bytes: Uint8Array): {
  readonly snapshot: Uint8Array;
  readonly signature: string;
} {
  const text = new TextDecoder().decode(bytes);
  // The envelope is one object of strings; JSON.parse spends about 2 µs a level of nesting, so the 16 MiB a
  // client reads of it, nested 8 Mi deep by a mirror or the network, held a run 17 s and 640 MB before its
  // refusal.
  if (nestsDeeperThan(text, 1))
    throw new TrustError('SNAPSHOT_MALFORMED', `${SIGNED_SNAPSHOT_KEY} is not one object of strings`);
  const envelope = parseText(text, SIGNED_SNAPSHOT_KEY) as Partial<SignedSnapshotDocument> | null;
  if (
    typeof envelope !== 'object' ||
    envelope === null ||
    envelope.schema !== 'plugindex/signed-snapshot/v1' ||
    typeof envelope.snapshot !== 'string' ||
    typeof envelope.signature !== 'string'
  )
    throw new TrustError('SNAPSHOT_MALFORMED', `${SIGNED_SNAPSHOT_KEY} lacks schema, snapshot or signature`);
  return { snapshot: new TextEncoder().encode(envelope.snapshot), signature: envelope.signature };
}

/**
 * Steps 1-3: the snapshot is signed by the pinned key, not older than what the client saw, and not expired.
 * @example const snapshot = await verifySnapshot({ snapshot: bytes, signature: asc, key, now: new Date(), lastGeneration: 41 });
 */
export async function verifySnapshot(options: {
  readonly snapshot: Uint8Array;
  readonly signature: string;
  /** The registry key the client pinned (from a previous visit or out of band). */
  readonly key: Key;
  readonly now: Date;
  /** Highest generation this client has accepted before, if any. */
  readonly lastGeneration?: number;
}): Promise<SnapshotDocument> {
  const result = await verifyDetachedSignature(options.snapshot, options.signature, [options.key]);
  if (!result.ok) throw new TrustError('SNAPSHOT_BAD_SIGNATURE', `snapshot.json: ${result.message}`);
  const snapshot = parseJson(options.snapshot, 'snapshot.json');
  assertSnapshot(snapshot);
  if (snapshot.key_fingerprint !== result.fingerprint) {
    throw new TrustError(
      'SNAPSHOT_WRONG_KEY',
      `snapshot.json names key ${snapshot.key_fingerprint} but is signed by ${result.fingerprint}`,
    );
  }
  if (options.lastGeneration !== undefined && snapshot.generation < options.lastGeneration) {
    throw new TrustError(
      'SNAPSHOT_ROLLBACK',
      `snapshot generation ${snapshot.generation} is older than ${options.lastGeneration}, already seen`,
    );
  }
  if (Date.parse(snapshot.expires) <= options.now.getTime()) {
    throw new TrustError(
      'SNAPSHOT_EXPIRED',
      `snapshot.json expired at ${snapshot.expires}: the registry or a mirror is frozen`,
    );
  }
  return snapshot;
}

function checkDigest(
  path: string,
  bytes: Uint8Array,
  expected: DocumentDigest | undefined,
  listedIn: string,
): void {
  if (!expected) throw new TrustError('DOCUMENT_NOT_LISTED', `${path} is not listed in ${listedIn}`);
  if (bytes.byteLength !== expected.size || sha256Hex(bytes) !== expected.sha256) {
    throw new TrustError(
      'DOCUMENT_MISMATCH',
      `${path} does not match the digest in ${listedIn} (a mix of generations, or tampering)`,
    );
  }
}

/** Step 4 for a document the snapshot lists itself (index.json, index.yaml, search.json, keys, bins). */
export function verifyListedDocument(snapshot: SnapshotDocument, path: string, bytes: Uint8Array): void {
  checkDigest(path, bytes, snapshot.documents[path], 'snapshot.json');
}

/**
 * Step 4 for a bin (`snapshot/bins/<hh>.json`): it must match the snapshot; returns its listing, against
 * which the plugin documents in it are then checked (`verifyInBin`).
 */
export function verifyBin(snapshot: SnapshotDocument, bin: string, bytes: Uint8Array): BinDocument {
  const path = binKey(bin);
  verifyListedDocument(snapshot, path, bytes);
  const listing = parseJson(bytes, path) as Partial<BinDocument> | null;
  if (
    typeof listing !== 'object' ||
    listing === null ||
    typeof listing.documents !== 'object' ||
    !listing.documents
  )
    throw new TrustError('SNAPSHOT_MALFORMED', `${path} lacks its documents`);
  return listing as BinDocument;
}

/** Step 4 for a plugin document, against the listing of its bin (already verified by `verifyBin`). */
export function verifyInBin(listing: BinDocument, name: string, bytes: Uint8Array): void {
  checkDigest(
    pluginDocumentKey(name),
    bytes,
    listing.documents[pluginDocumentKey(name)],
    binKey(binOf(name)),
  );
}

/** Step 4 for a plugin document: its bin must match the snapshot, and the document its bin. */
export function verifyPluginDocument(
  snapshot: SnapshotDocument,
  name: string,
  binBytes: Uint8Array,
  docBytes: Uint8Array,
): void {
  verifyInBin(verifyBin(snapshot, binOf(name), binBytes), name, docBytes);
}

/**
 * Step 5: a version's manifest, fetched beside its plugin document, is the one the registry signed and the
 * one the plugin document describes. Returns it parsed.
 * @throws TrustError DOCUMENT_MISMATCH (digest, size or signature), ARTIFACT_MISMATCH (the plugin document and
 *   the signed manifest disagree on a platform's artifact), DOCUMENT_MALFORMED (signed bytes that are not JSON).
 */
export async function verifyManifest(options: {
  readonly name: string;
  /** What the plugin document (or an install's record of it) says of the version. */
  readonly version: Pick<VersionRecord, 'version' | 'manifest_sha256' | 'manifest_size'> & {
    readonly artifacts: readonly Pick<ArtifactRecord, 'os' | 'arch' | 'libc' | 'sha256'>[];
    /** A plugin document's builds for another C library (model.ts), held to the manifest alike. */
    readonly libc_artifacts?: readonly Pick<ArtifactRecord, 'os' | 'arch' | 'libc' | 'sha256'>[];
  };
  readonly manifest: Uint8Array;
  readonly signature: string;
  readonly key: Key;
  /** Where the manifest came from, for messages. */
  readonly url: string;
}): Promise<Manifest> {
  const { name, version, manifest, url } = options;
  const actual = sha256Hex(manifest);
  if (actual !== version.manifest_sha256 || manifest.byteLength !== version.manifest_size)
    throw new TrustError(
      'DOCUMENT_MISMATCH',
      `${url}: sha256 ${actual} (${manifest.byteLength} bytes), where ${pluginDocumentKey(name)} gives ${version.manifest_sha256} (${version.manifest_size} bytes)`,
    );
  const signed = await verifyDetachedSignature(manifest, options.signature, [options.key]);
  if (!signed.ok) throw new TrustError('DOCUMENT_MISMATCH', `${url}.asc: ${signed.message}`);
  let parsed: Manifest;
  try {
    parsed = JSON.parse(new TextDecoder().decode(manifest)) as Manifest;
  } catch (cause) {
    throw new TrustError('DOCUMENT_MALFORMED', `${url} is signed but is not JSON`, { cause });
  }
  const declared = parsed.installation?.artifacts ?? [];
  const check = (
    artifact: Pick<ArtifactRecord, 'os' | 'arch' | 'libc' | 'sha256'>,
    installed: boolean,
  ): void => {
    // The artifact serving that platform, as the client chose it: an install's record of a Mac arch names
    // the universal build it placed there (model.ts artifactServing).
    const named = artifactServing(declared, artifact);
    if (named && normalizeDigest(named.sha256) === artifact.sha256) return;
    // An install's record of a musl host's platform (a document's `artifacts` name no libc) may hold the
    // glibc build of its arch though the manifest has a musl one: a lock an older client wrote pins none,
    // and --locked or --frozen installs the glibc build it pins (client/install.ts planTarget).
    const glibc =
      installed && artifact.libc !== undefined
        ? artifactServing(declared, { os: artifact.os, arch: artifact.arch })
        : undefined;
    if (!glibc || normalizeDigest(glibc.sha256) !== artifact.sha256)
      throw new TrustError(
        'ARTIFACT_MISMATCH',
        `${name}@${version.version} ${artifactPlatformText(artifact)}: the plugin document and the signed manifest disagree`,
      );
  };
  for (const artifact of version.artifacts) check(artifact, true);
  for (const artifact of version.libc_artifacts ?? []) check(artifact, false);
  return parsed;
}

const HEX64 = /^[0-9a-f]{64}$/;
const PLATFORM_WORD = /^[a-z0-9]+$/;

/**
 * A plugin document that matched its digest is the registry's, but a client still reads it as data: every
 * version a SemVer version (it becomes a folder name), every digest and size of the right form, every
 * artifact's platform a plain word. A registry's defect, or a stolen key, must not become a path or a crash.
 * @throws TrustError DOCUMENT_MALFORMED naming the plugin document and the JSON pointer.
 */
export function assertPluginDocument(value: unknown, name: string): asserts value is PluginDocument {
  const where = pluginDocumentKey(name);
  const fail = (pointer: string, expected: string): never => {
    throw new TrustError('DOCUMENT_MALFORMED', `${where}#${pointer}: expected ${expected}`);
  };
  const doc = value as Partial<PluginDocument> | null;
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return fail('', 'an object');
  if (doc.name !== name) fail('/name', JSON.stringify(name));
  if (!Array.isArray(doc.versions)) return fail('/versions', 'an array');
  // Printed by info and install: a list of another shape made `info` die of a TypeError.
  const alikes = doc.look_alikes as unknown;
  if (alikes !== undefined) {
    if (!Array.isArray(alikes)) fail('/look_alikes', 'an array');
    for (const [i, alike] of (alikes as unknown[]).entries()) {
      const a = alike as { name?: unknown; owners?: unknown } | null;
      if (typeof a !== 'object' || a === null || Array.isArray(a)) fail(`/look_alikes/${i}`, 'an object');
      const { name: other, owners } = a as { name?: unknown; owners?: unknown };
      if (typeof other !== 'string') fail(`/look_alikes/${i}/name`, 'a plugin name');
      if (!Array.isArray(owners)) fail(`/look_alikes/${i}/owners`, 'an array of fingerprints');
      for (const [k, owner] of (owners as unknown[]).entries())
        if (typeof owner !== 'string') fail(`/look_alikes/${i}/owners/${k}`, 'a fingerprint');
    }
  }
  for (const [i, record] of doc.versions.entries()) {
    const at = `/versions/${i}`;
    const r = record as Partial<VersionRecord> | null;
    if (typeof r !== 'object' || r === null) fail(at, 'an object');
    const v = r as Partial<VersionRecord>;
    if (typeof v.version !== 'string' || !isCanonicalVersion(v.version))
      fail(`${at}/version`, 'a SemVer version');
    if (typeof v.manifest_sha256 !== 'string' || !HEX64.test(v.manifest_sha256))
      fail(`${at}/manifest_sha256`, 'a sha256');
    if (!Number.isSafeInteger(v.manifest_size) || (v.manifest_size as number) < 0)
      fail(`${at}/manifest_size`, 'a size');
    if (typeof v.publisher !== 'string') fail(`${at}/publisher`, 'a fingerprint');
    if (typeof v.yanked !== 'boolean' || typeof v.deprecated !== 'boolean')
      fail(at, 'yanked and deprecated as booleans');
    if (v.manifest_signature !== undefined && typeof v.manifest_signature !== 'string')
      fail(`${at}/manifest_signature`, 'an armored signature');
    if (!Array.isArray(v.artifacts)) fail(`${at}/artifacts`, 'an array');
    if (v.libc_artifacts !== undefined && !Array.isArray(v.libc_artifacts))
      fail(`${at}/libc_artifacts`, 'an array');
    const lists = [
      ['artifacts', v.artifacts as unknown[]],
      ['libc_artifacts', (v.libc_artifacts ?? []) as unknown[]],
    ] as const;
    for (const [list, artifact, j] of lists.flatMap(([list, items]) =>
      items.map((item, j) => [list, item, j] as const),
    )) {
      const a = artifact as Partial<ArtifactRecord> | null;
      // A libc build only in its own list, and always with its library: one in `artifacts` is what an older
      // client would take for the glibc build; one without it, in `libc_artifacts`, what this one would.
      const libc = (a as Partial<ArtifactRecord> | null)?.libc;
      if (
        list === 'libc_artifacts'
          ? !(LIBC_VALUES as readonly unknown[]).includes(libc) ||
            (a as Partial<ArtifactRecord>).os !== LIBC_OS
          : libc !== undefined
      )
        fail(
          `${at}/${list}/${j}/libc`,
          list === 'libc_artifacts' ? `a linux artifact's libc (${LIBC_VALUES.join(', ')})` : 'no libc',
        );
      const ok =
        typeof a === 'object' &&
        a !== null &&
        typeof a.os === 'string' &&
        PLATFORM_WORD.test(a.os) &&
        typeof a.arch === 'string' &&
        PLATFORM_WORD.test(a.arch) &&
        typeof a.url === 'string' &&
        typeof a.sha256 === 'string' &&
        HEX64.test(a.sha256) &&
        Number.isSafeInteger(a.size_bytes) &&
        (a.size_bytes as number) >= 0 &&
        typeof a.hosted === 'boolean';
      if (!ok) fail(`${at}/${list}/${j}`, '{os, arch, url, sha256, size_bytes, hosted} of the right forms');
      const oci = (a as Partial<ArtifactRecord>).oci;
      if (oci !== undefined) {
        const o = oci as Partial<OciArtifact> | null;
        if (typeof o !== 'object' || o === null || Array.isArray(o) || typeof o.reference !== 'string')
          fail(`${at}/${list}/${j}/oci`, '{reference, digest} with a string reference');
        // The digest a client pulls is the one it checks the bytes against.
        if ((o as Partial<OciArtifact>).digest !== `sha256:${(a as ArtifactRecord).sha256}`)
          fail(`${at}/${list}/${j}/oci/digest`, `"sha256:" and the artifact's sha256`);
      }
    }
    if (v.permissions !== undefined) {
      const permissions = v.permissions as unknown;
      if (!Array.isArray(permissions)) fail(`${at}/permissions`, 'an array of permission names');
      for (const [k, permission] of (permissions as unknown[]).entries())
        if (typeof permission !== 'string') fail(`${at}/permissions/${k}`, 'a permission name');
    }
    if (v.resources !== undefined) {
      const resources = v.resources as unknown;
      if (typeof resources !== 'object' || resources === null || Array.isArray(resources))
        fail(`${at}/resources`, 'an object of resource limits');
      for (const [limit, value] of Object.entries(resources as object))
        if (!Number.isSafeInteger(value) || value < 0)
          fail(`${at}/resources/${escapePointer(limit)}`, 'a non-negative integer');
    }
  }
}
