/**
 * `plugindex verify --url URL`: what a client does before trusting a registry, over plain HTTPS. It checks
 * the snapshot (signature by the pinned key, rollback against the last generation seen, expiry), then every
 * document the snapshot binds, every plugin document through its bin (every bin the snapshot lists: the
 * bins, not search.json, say which plugins exist), every manifest against the digest its plugin document
 * gives and its signature, and every hosted artifact against its sha256 and size, streamed and cut off at
 * its size. Documents are fetched as `<path>?v=<sha256>`, the read that stays consistent through a CDN
 * (README, "Reading it safely"). The judging is index-builder/verify.ts; this file fetches.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { TrustedSnapshot } from '../client/trusted-snapshot.ts';
import { fixedClock, systemClock } from '../index-builder/clock.ts';
import { createSha256 } from '../index-builder/digest.ts';
import { TrustError } from '../index-builder/errors.ts';
import {
  binOfKey,
  pluginDocumentKey,
  SIGNED_SNAPSHOT_KEY,
  SNAPSHOT_KEY,
  signatureKey,
} from '../index-builder/layout.ts';
import type { ArtifactRecord, BinDocument, SnapshotDocument } from '../index-builder/model.ts';
import { readPublicKey } from '../index-builder/signing.ts';
import { openSignedSnapshot, verifyManifest } from '../index-builder/verify.ts';

/** Largest document fetched; a hostile server cannot make the client read without end. */
const MAX_DOCUMENT_BYTES = 256 * 1024 * 1024;

async function fetchBytes(url: string): Promise<Uint8Array>;
async function fetchBytes(url: string, options: { missing: 'undefined' }): Promise<Uint8Array | undefined>;
async function fetchBytes(url: string, options?: { missing: 'undefined' }): Promise<Uint8Array | undefined> {
  const response = await fetch(url);
  if (response.status === 404 && options) return undefined;
  if (!response.ok) throw new TrustError('DOCUMENT_NOT_LISTED', `GET ${url}: HTTP ${response.status}`);
  const declared = Number(response.headers.get('content-length') ?? '0');
  if (declared > MAX_DOCUMENT_BYTES)
    throw new TrustError('DOCUMENT_MISMATCH', `GET ${url}: ${declared} bytes is over the limit`);
  const body = new Uint8Array(await response.arrayBuffer());
  if (body.byteLength > MAX_DOCUMENT_BYTES)
    throw new TrustError('DOCUMENT_MISMATCH', `GET ${url}: over the size limit`);
  return body;
}

const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

/**
 * Checks a hosted artifact against the digest and size its signed plugin document gives, hashing it as it
 * arrives: never held in memory, and never read past its size (a server that sends more is refused there).
 */
async function verifyArtifact(artifact: ArtifactRecord, where: string): Promise<void> {
  const fail = (why: string): never => {
    throw new TrustError('ARTIFACT_MISMATCH', `${artifact.url} (${where}): ${why}`);
  };
  const response = await fetch(artifact.url);
  if (!response.ok || !response.body) fail(`HTTP ${response.status}`);
  const hash = createSha256();
  let size = 0;
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > artifact.size_bytes)
        fail(`more than the ${artifact.size_bytes} bytes its plugin document gives`);
      hash.update(value);
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  if (size !== artifact.size_bytes)
    fail(`${size} bytes, where its plugin document gives ${artifact.size_bytes}`);
  if (hash.hex() !== artifact.sha256) fail('its sha256 does not match its plugin document');
}

/** The plugin documents a bin lists, by path. */
/** Attempts at a snapshot whose signature comes from another publish than its body (fetched in between). */
const SNAPSHOT_ATTEMPTS = 3;

/**
 * The snapshot and its signature, fetched together under a fresh `?v=` (past any cache, to the origin) and
 * checked by `verify`; fetched again when the signature does not match, which a publish between the two
 * requests causes. Any other failure is final.
 */
async function fetchSnapshot(
  base: string,
  verify: (snapshot: Uint8Array, signature: string) => Promise<SnapshotDocument>,
): Promise<SnapshotDocument> {
  for (let attempt = 1; ; attempt++) {
    const fresh = `${Date.now().toString(36)}-${attempt}`;
    const body = await fetchBytes(`${base}/${SNAPSHOT_KEY}?v=${fresh}`);
    const signature = text(await fetchBytes(`${base}/${signatureKey(SNAPSHOT_KEY)}?v=${fresh}`));
    // What installing clients read instead of the pair must say the same (registries from before it: none).
    const envelope = await fetchBytes(`${base}/${SIGNED_SNAPSHOT_KEY}?v=${fresh}`, { missing: 'undefined' });
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
  readonly fingerprint: string;
  readonly generation: number;
  readonly expires: string;
  readonly documents: number;
  readonly plugins: number;
  readonly manifests: number;
  /** Hosted artifacts checked against their digest and size. */
  readonly artifacts: number;
}

export async function verifyRegistry(options: {
  readonly url: string;
  /** Armored registry key pinned by the client; without one, the served key is trusted on first use. */
  readonly pinnedKey?: string;
  /** A file keeping the highest generation seen, for rollback protection across runs. */
  readonly stateFile?: string;
  readonly now?: Date;
}): Promise<VerifyReport> {
  const base = options.url.replace(/\/+$/, '');
  const key = await readPublicKey(options.pinnedKey ?? text(await fetchBytes(`${base}/keys/registry.asc`)));
  let lastGeneration: number | undefined;
  if (options.stateFile) {
    const saved = await readFile(options.stateFile, 'utf8').catch(() => undefined);
    if (saved) lastGeneration = (JSON.parse(saved) as { generation?: number }).generation;
  }
  // Trust in TUF's order, which the trusted snapshot enforces: the snapshot, then the documents it lists
  // (the bins among them), then each plugin document against its verified bin.
  const trusted = new TrustedSnapshot({
    key: key.key,
    clock: options.now ? fixedClock(options.now) : systemClock,
    ...(lastGeneration !== undefined ? { highestGeneration: lastGeneration } : {}),
  });
  const snapshot = await fetchSnapshot(base, (snapshotBytes, signature) =>
    trusted.updateSnapshot(snapshotBytes, signature),
  );
  // Every document by the digest the snapshot (or a bin) gives it: `?v=<sha256>` is its own CDN cache entry,
  // so no cache can hand back an older generation than the snapshot names.
  const bins: BinDocument[] = [];
  for (const [path, digest] of Object.entries(snapshot.documents)) {
    const body = await fetchBytes(`${base}/${path}?v=${digest.sha256}`);
    const bin = binOfKey(path);
    if (bin === undefined) trusted.verifyDocument(path, body);
    else bins.push(trusted.updateBin(bin, body));
  }
  let manifests = 0;
  let artifacts = 0;
  let plugins = 0;
  for (const listing of bins) {
    for (const [docPath, digest] of Object.entries(listing.documents)) {
      const name = docPath.split('/')[1] as string;
      const doc = trusted.pluginDocument(name, await fetchBytes(`${base}/${docPath}?v=${digest.sha256}`));
      plugins += 1;
      for (const version of doc.versions) {
        // The signature installs read (in the plugin document) and the one gpg users fetch must be one.
        const asc = text(await fetchBytes(version.manifest_signature_url));
        if (version.manifest_signature !== undefined && version.manifest_signature !== asc)
          throw new TrustError(
            'DOCUMENT_MISMATCH',
            `${version.manifest_signature_url} is not the signature ${pluginDocumentKey(doc.name)} carries for ${version.version}`,
          );
        await verifyManifest({
          name: doc.name,
          version,
          manifest: await fetchBytes(version.manifest_url),
          signature: asc,
          key: key.key,
          url: version.manifest_url,
        });
        manifests += 1;
        for (const artifact of version.artifacts) {
          if (!artifact.hosted) continue;
          await verifyArtifact(artifact, `${doc.name}@${version.version} ${artifact.os}/${artifact.arch}`);
          artifacts += 1;
        }
      }
    }
  }
  if (options.stateFile)
    await writeFile(
      options.stateFile,
      `${JSON.stringify({ generation: snapshot.generation, fingerprint: key.fingerprint })}\n`,
    );
  return {
    fingerprint: key.fingerprint,
    generation: snapshot.generation,
    expires: snapshot.expires,
    documents: Object.keys(snapshot.documents).length,
    plugins,
    manifests,
    artifacts,
  };
}
