/**
 * Judging each submission of a batch, before anything is written: a safe archive, a valid manifest, the
 * files it names and no others, a publisher signature by a key valid at the time of publishing, the
 * publisher's right to the name, an unchanged version, and artifacts that match their digests. Every
 * problem is reported at once. A batch decides exactly as one submission per batch would (BatchView).
 */
import { type BundleContents, checkArtifactDigests, checkBundleFiles, readBundle } from '../bundle.ts';
import { sha256Hex } from '../digest.ts';
import { type Problem, problem, problemsFrom, StoreError } from '../errors.ts';
import { pluginDocumentKey, versionIdentity } from '../layout.ts';
import { loadManifest } from '../manifest/index.ts';
import type { Manifest, PluginDocument } from '../model.ts';
import type { Store } from '../store.ts';
import { authorizePublisher, checkPublisherSignature, loadTrustedKeys, type TrustedKeys } from '../trust.ts';
import type { PipelineContext } from './context.ts';
import type { Upload } from './intake.ts';
import { readJson } from './site-writer.ts';

/** One accepted submission, ready to be written. */
export interface Accepted {
  readonly kind: 'accepted';
  readonly manifest: Manifest;
  readonly contents: BundleContents;
  readonly publisher: string;
  /** SHA-256 of the manifest bytes the publisher signed: a version's identity across batches. */
  readonly sourceSha256: string;
}

export interface Rejected {
  readonly kind: 'rejected';
  readonly problems: readonly Problem[];
  readonly manifest?: Manifest;
  readonly publisher?: string;
}

export type Evaluation =
  | Accepted
  | { readonly kind: 'already-published'; readonly manifest: Manifest; readonly publisher: string }
  | Rejected;

/** One submission of a batch and what became of it so far (a write can still turn it into a rejection). */
export interface BatchItem {
  readonly upload: Upload;
  evaluation: Evaluation;
}

/** A rejection, naming the manifest and publisher when they are known. */
export function rejected(
  problems: readonly Problem[],
  known: { readonly manifest?: Manifest | undefined; readonly publisher?: string | undefined } = {},
): Rejected {
  return {
    kind: 'rejected',
    problems,
    ...(known.manifest ? { manifest: known.manifest } : {}),
    ...(known.publisher ? { publisher: known.publisher } : {}),
  };
}

/**
 * What becomes of an accepted submission whose files or documents could not be written or rendered: a
 * rejection naming why, unless the store was only unavailable (StoreError STORE_IO), which fails the batch
 * so the queue retries it (the upload stays in incoming/).
 */
export function failedWrite(error: unknown, accepted: Accepted, what: string): Rejected {
  if (error instanceof StoreError && !error.permanent) throw error;
  return rejected(
    [
      problem(
        'SUBMISSION_WRITE_FAILED',
        'bundle:',
        `the registry failed ${what}: ${(error as Error).message}`,
        {
          expected: 'a submission every store can publish (please report this to the registry operator)',
        },
      ),
    ],
    accepted,
  );
}

/**
 * Per-batch view of plugin documents: what is published plus what this batch accepted so far, so a batch
 * decides exactly as one submission per batch would: the same version twice, and a name's owner, are judged
 * against earlier submissions of the batch as against published ones.
 */
export class BatchView {
  readonly #published = new Map<string, PluginDocument | null>();
  /** Name -> version identity -> source digest, of versions accepted earlier in this batch. */
  readonly #acceptedEarlier = new Map<string, Map<string, string>>();
  /** Name -> owners, for names this batch gave an owner (first come: the first accepted publisher). */
  readonly #newOwners = new Map<string, readonly string[]>();

  constructor(private readonly site: Store) {}

  /** The published document of `name`, read once per batch. */
  async published(name: string): Promise<PluginDocument | undefined> {
    if (!this.#published.has(name))
      this.#published.set(name, (await readJson<PluginDocument>(this.site, pluginDocumentKey(name))) ?? null);
    return this.#published.get(name) ?? undefined;
  }

  /** The owners a submission for `name` is judged against: the published ones, or those this batch made. */
  owners(name: string, published: PluginDocument | undefined): readonly string[] | undefined {
    return published?.owners.length ? published.owners : this.#newOwners.get(name);
  }

  /** The source digest of a version of `name` accepted earlier in this batch, by version identity. */
  acceptedEarlier(name: string, identity: string): string | undefined {
    return this.#acceptedEarlier.get(name)?.get(identity);
  }

  accept(name: string, identity: string, sourceSha256: string, owners: readonly string[] | undefined): void {
    let versions = this.#acceptedEarlier.get(name);
    if (!versions) {
      versions = new Map();
      this.#acceptedEarlier.set(name, versions);
    }
    versions.set(identity, sourceSha256);
    if (owners && owners.length > 0 && !this.#newOwners.has(name)) this.#newOwners.set(name, owners);
  }
}

/** What every submission of a batch is judged against. */
interface Judging {
  readonly trusted: TrustedKeys;
  readonly view: BatchView;
  /** The time of publishing, for the whole batch: publisher keys are judged valid (or not) at it. */
  readonly now: Date;
}

async function evaluate(ctx: PipelineContext, bytes: Uint8Array, judging: Judging): Promise<Evaluation> {
  const { trusted, view, now } = judging;
  let contents: BundleContents;
  try {
    contents = await readBundle(bytes, ctx.bundleLimits);
  } catch (error) {
    return rejected(problemsFrom(error));
  }
  const problems: Problem[] = [];
  let manifest: Manifest | undefined;
  try {
    manifest = loadManifest(contents.manifest, contents.manifestName);
  } catch (error) {
    problems.push(...problemsFrom(error));
  }
  if (manifest) problems.push(...checkBundleFiles(contents, manifest));
  // The signature is checked even when the manifest is invalid, so every problem is reported at once.
  const signer = await checkPublisherSignature({
    policy: ctx.config.policy,
    trusted,
    manifestName: contents.manifestName,
    manifest: contents.manifest,
    signature: contents.signature,
    publisherKey: contents.publisherKey,
    now,
  });
  problems.push(...signer.problems);
  if (!manifest || problems.length > 0 || !signer.fingerprint) {
    return rejected(problems, { manifest, publisher: signer.fingerprint });
  }
  const publisher = signer.fingerprint;
  const existing = await view.published(manifest.name);
  const owners = view.owners(manifest.name, existing);
  problems.push(
    ...authorizePublisher({ config: ctx.config, fingerprint: publisher, name: manifest.name, owners }),
  );

  // Versions are immutable: same name and version with other bytes is refused; the same bytes is a no-op.
  // Versions that differ only in build metadata (one version to SemVer) or letter case (one folder on macOS
  // and Windows) are the same version.
  const sourceSha256 = sha256Hex(contents.manifest);
  const identity = versionIdentity(manifest.version);
  const published = existing?.versions.find((v) => versionIdentity(v.version) === identity);
  const knownSha = published?.source_sha256 ?? view.acceptedEarlier(manifest.name, identity);
  if (knownSha !== undefined) {
    if (knownSha === sourceSha256 && problems.length === 0)
      return { kind: 'already-published', manifest, publisher };
    if (knownSha !== sourceSha256) {
      const other = published && published.version !== manifest.version ? published.version : undefined;
      problems.push(
        problem(
          'VERSION_EXISTS',
          '/version',
          other
            ? `${manifest.name}@${manifest.version} is the same version as ${other}, already published (versions that differ only in build metadata or letter case are one version)`
            : `${manifest.name}@${manifest.version} is already published with different content`,
          {
            expected: 'a new version number (published versions are immutable)',
            found: manifest.version,
          },
        ),
      );
    }
  }
  problems.push(...checkArtifactDigests(contents, manifest));
  if (problems.length > 0) return rejected(problems, { manifest, publisher });
  // The first accepted publisher of a name nobody owns owns it from now on, within this batch too.
  const firstOwners = ctx.config.ownership === 'first-come' && !owners?.length ? [publisher] : undefined;
  view.accept(manifest.name, identity, sourceSha256, firstOwners);
  return { kind: 'accepted', manifest, contents, publisher, sourceSha256 };
}

/**
 * Judges every upload of a batch in upload order, each against the published registry and the
 * submissions before it. Storage failures are transient: they fail the batch, leaving every submission in
 * incoming/ to retry. Anything else thrown is the submission's own doing (input a library choked on): it is
 * rejected with the reason, so one poisonous upload cannot block every later one.
 */
export async function evaluateBatch(
  ctx: PipelineContext,
  uploads: readonly Upload[],
  view: BatchView,
  now: Date,
): Promise<BatchItem[]> {
  const judging: Judging = { trusted: await loadTrustedKeys(ctx.config, ctx.signer.fingerprints), view, now };
  const items: BatchItem[] = [];
  for (const upload of uploads) {
    if (upload.kind === 'too-large') {
      items.push({ upload, evaluation: rejected([upload.problem]) });
      continue;
    }
    const evaluation = await evaluate(ctx, upload.bytes, judging).catch((error: unknown): Evaluation => {
      if (error instanceof StoreError) throw error;
      return rejected([
        problem(
          'SUBMISSION_UNREADABLE',
          'bundle:',
          `the submission could not be checked: ${(error as Error).message}`,
        ),
      ]);
    });
    items.push({ upload, evaluation });
  }
  return items;
}
