/**
 * The publisher's side of a submission: pack a manifest and its artifacts into a signed bundle, and check a
 * manifest or a bundle without publishing it (what `plugindex pack` and `plugindex validate` do).
 */
import { checkArtifactDigests, checkBundleFiles, readBundle, writeBundle } from './bundle.ts';
import { sha256Hex } from './digest.ts';
import { type Problem, problemsFrom } from './errors.ts';
import { inspectManifest, loadManifest, type ManifestInspection } from './manifest/index.ts';
import { type Libc, type Manifest, type ManifestArtifact, platformKey } from './model.ts';
import { createSigner } from './signing.ts';
import { checkPublisherSignature } from './trust.ts';

export interface ArtifactInput {
  readonly os: string;
  readonly arch: string;
  /** A Linux build's C library when not glibc (`musl`); its folder is then `artifacts/<os>-<arch>-<libc>/`. */
  readonly libc?: Libc;
  /** File name inside the bundle's `artifacts/<os>-<arch>/` folder. */
  readonly fileName: string;
  readonly body: Uint8Array;
}

/**
 * Adds `installation.artifacts` entries to a manifest's text, keeping YAML comments and layout. The YAML
 * library is imported only for a YAML manifest, as the manifest module reads one (parse-yaml.ts).
 */
async function withArtifacts(
  manifestName: string,
  text: string,
  artifacts: readonly ManifestArtifact[],
): Promise<string> {
  if (manifestName.endsWith('.json')) {
    const value = JSON.parse(text) as Record<string, unknown>;
    const installation = (value.installation ?? {}) as Record<string, unknown>;
    const existing = Array.isArray(installation.artifacts) ? (installation.artifacts as unknown[]) : [];
    value.installation = { ...installation, artifacts: [...existing, ...artifacts] };
    return `${JSON.stringify(value, null, 2)}\n`;
  }
  const { default: YAML } = await import('yaml');
  const doc = YAML.parseDocument(text);
  const existing = doc.getIn(['installation', 'artifacts']);
  for (const artifact of artifacts) {
    if (YAML.isSeq(existing)) existing.add(doc.createNode(artifact));
  }
  if (!YAML.isSeq(existing)) doc.setIn(['installation', 'artifacts'], doc.createNode(artifacts));
  return doc.toString();
}

/**
 * Builds a signed submission bundle. The manifest is validated first; artifacts are recorded in
 * `installation.artifacts` with their sha256 and size.
 * @throws SubmissionError when the resulting manifest is invalid.
 */
export async function packSubmission(options: {
  readonly manifestName: string;
  readonly manifest: Uint8Array;
  readonly artifacts: readonly ArtifactInput[];
  readonly secretKey: string;
  readonly passphrase?: string;
}): Promise<{ bundle: Uint8Array; manifest: Manifest; fingerprint: string }> {
  const name = options.manifestName.endsWith('.json') ? 'manifest.json' : 'manifest.yaml';
  const entries: { path: string; body: Uint8Array }[] = [];
  // The glibc builds before the musl ones, as validation asks (older clients take the first of a platform).
  const ordered = [...options.artifacts].sort(
    (a, b) => Number(a.libc !== undefined) - Number(b.libc !== undefined),
  );
  const records: ManifestArtifact[] = ordered.map((a) => {
    const file = `artifacts/${platformKey(a)}/${a.fileName}`;
    entries.push({ path: file, body: a.body });
    return {
      os: a.os,
      arch: a.arch,
      ...(a.libc !== undefined ? { libc: a.libc } : {}),
      file,
      sha256: sha256Hex(a.body),
      size_bytes: a.body.byteLength,
    };
  });
  const text = new TextDecoder().decode(options.manifest);
  let manifestBytes = options.manifest;
  if (records.length > 0) {
    let rewritten: string;
    try {
      rewritten = await withArtifacts(name, text, records);
    } catch {
      // Unparseable: let loadManifest report exactly why.
      rewritten = text;
    }
    manifestBytes = new TextEncoder().encode(rewritten);
  }
  const manifest = await loadManifest(manifestBytes, name);
  const signer = await createSigner(options.secretKey, options.passphrase);
  const signature = await signer.sign(manifestBytes);
  entries.push(
    { path: name, body: manifestBytes },
    { path: `${name}.asc`, body: new TextEncoder().encode(signature) },
    { path: 'publisher.asc', body: new TextEncoder().encode(signer.publicKey) },
  );
  return { bundle: await writeBundle(entries), manifest, fingerprint: signer.fingerprint };
}

export interface InspectionResult extends ManifestInspection {
  /** Fingerprint of the key in publisher.asc that signed the manifest, when it verifies. */
  readonly signer?: string;
}

/**
 * Checks a bundle as far as possible without a registry: safe archive, valid manifest, files present and
 * matching their digests, and a signature that verifies with the bundled publisher key. Whether the
 * registry trusts that key is for the registry to say.
 */
export async function inspectBundle(bytes: Uint8Array): Promise<InspectionResult> {
  let contents: Awaited<ReturnType<typeof readBundle>>;
  try {
    contents = await readBundle(bytes);
  } catch (error) {
    return { valid: false, problems: problemsFrom(error) };
  }
  const problems: Problem[] = [];
  const checked = await inspectManifest(contents.manifest, contents.manifestName);
  problems.push(...checked.problems);
  const manifest = checked.manifest;
  if (manifest) {
    problems.push(...checkBundleFiles(contents, manifest));
    problems.push(...checkArtifactDigests(contents, manifest));
  }
  // The registry's own check, as an open registry that knows no keys runs it: the publisher sees the
  // verdict the registry would give (an expired key, a text-mode signature, a key too complex).
  const signed = await checkPublisherSignature({
    policy: 'open',
    trusted: { publishers: [], operators: [], registryFingerprints: [] },
    manifestName: contents.manifestName,
    manifest: contents.manifest,
    signature: contents.signature,
    publisherKey: contents.publisherKey,
    now: new Date(),
  });
  problems.push(...signed.problems);
  const signer = signed.fingerprint;
  return {
    valid: problems.length === 0,
    problems,
    ...(manifest ? { manifest } : {}),
    ...(signer ? { signer } : {}),
  };
}
