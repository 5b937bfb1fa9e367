/**
 * `plugindex verify --url URL`: what a client does before trusting a registry, over plain HTTPS. It checks
 * the snapshot (signature by the pinned key, rollback against the last generation seen, expiry), then every
 * document the snapshot binds, every plugin document through its bin, and every manifest against the digest
 * its plugin document gives. Documents are fetched as `<path>?v=<sha256>`, the read that stays consistent
 * through a CDN (README, "Reading it safely"). The judging is index-builder/verify.ts; this file fetches.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { binKey, binOf } from '../index-builder/catalog.ts';
import { TrustError } from '../index-builder/errors.ts';
import type { PluginDocument, SearchDocument } from '../index-builder/model.ts';
import { sha256Hex } from '../index-builder/pipeline.ts';
import type { SnapshotDocument } from '../index-builder/render/documents.ts';
import { readPublicKey, verifyDetachedSignature } from '../index-builder/signing.ts';
import { verifyListedDocument, verifyPluginDocument, verifySnapshot } from '../index-builder/verify.ts';

/** Largest document fetched; a hostile server cannot make the client read without end. */
const MAX_DOCUMENT_BYTES = 256 * 1024 * 1024;

async function fetchBytes(url: string): Promise<Uint8Array> {
  const response = await fetch(url);
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
    const body = await fetchBytes(`${base}/snapshot.json?v=${fresh}`);
    const signature = text(await fetchBytes(`${base}/snapshot.json.asc?v=${fresh}`));
    try {
      return await verify(body, signature);
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
  const snapshot = await fetchSnapshot(base, async (snapshotBytes, signature) =>
    verifySnapshot({
      snapshot: snapshotBytes,
      signature,
      key: key.key,
      now: options.now ?? new Date(),
      ...(lastGeneration !== undefined ? { lastGeneration } : {}),
    }),
  );
  // Every document by the digest the snapshot (or a bin) gives it: `?v=<sha256>` is its own CDN cache entry,
  // so no cache can hand back an older generation than the snapshot names.
  const fetched = new Map<string, Uint8Array>();
  for (const [path, digest] of Object.entries(snapshot.documents)) {
    const body = await fetchBytes(`${base}/${path}?v=${digest.sha256}`);
    verifyListedDocument(snapshot, path, body);
    fetched.set(path, body);
  }
  const search = JSON.parse(text(fetched.get('search.json') ?? new Uint8Array())) as SearchDocument;
  let manifests = 0;
  for (const row of search.plugins) {
    const bin = fetched.get(binKey(binOf(row.name))) ?? new Uint8Array();
    const listed = (JSON.parse(text(bin)) as { documents?: Record<string, { sha256: string }> }).documents;
    const digest = listed?.[`plugins/${row.name}/index.json`]?.sha256 ?? 'unlisted';
    const docBytes = await fetchBytes(`${base}/plugins/${row.name}/index.json?v=${digest}`);
    verifyPluginDocument(snapshot, row.name, bin, docBytes);
    const doc = JSON.parse(text(docBytes)) as PluginDocument;
    for (const version of doc.versions) {
      const manifest = await fetchBytes(version.manifest_url);
      if (sha256Hex(manifest) !== version.manifest_sha256) {
        throw new TrustError(
          'DOCUMENT_MISMATCH',
          `${version.manifest_url} does not match its digest in plugins/${doc.name}/index.json`,
        );
      }
      const signed = await verifyDetachedSignature(
        manifest,
        text(await fetchBytes(version.manifest_signature_url)),
        [key.key],
      );
      if (!signed.ok)
        throw new TrustError('DOCUMENT_MISMATCH', `${version.manifest_signature_url}: ${signed.message}`);
      manifests += 1;
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
    documents: fetched.size,
    plugins: search.plugins.length,
    manifests,
  };
}
