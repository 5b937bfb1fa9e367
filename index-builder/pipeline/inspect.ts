/**
 * What a bundle says of itself, whatever else the batch holds: read, its manifest validated, its files and
 * artifact digests checked, its signature verified. None of it depends on the order of the batch or on the
 * stores, so it can be worked out for many uploads at once, and elsewhere than the thread that judges them:
 * a `BundleInspector` (adapters/inspector.ts: worker threads) is given plain data (`InspectionBasis`) and
 * bytes, and answers plain data (`Inspection`), which can cross between threads as it is.
 */
import {
  type BundleContents,
  type BundleLimits,
  checkArtifactDigests,
  checkBundleFiles,
  readBundle,
} from '../bundle.ts';
import type { RegistryConfig } from '../config.ts';
import { type Problem, problemsFrom } from '../errors.ts';
import { loadManifest } from '../manifest/index.ts';
import type { Manifest } from '../model.ts';
import { checkPublisherSignature, loadTrustedKeys, type SignerCheck, type TrustedKeys } from '../trust.ts';

export type Inspection =
  /** Not a bundle that can be read at all: rejected with these problems. */
  | { readonly kind: 'unreadable'; readonly problems: readonly Problem[] }
  | {
      readonly kind: 'read';
      readonly contents: BundleContents;
      readonly manifest: Manifest | undefined;
      /** The manifest's, the files', then the signature's. */
      readonly problems: readonly Problem[];
      readonly signer: SignerCheck;
      /** Checked later than the others (after the version's), so they are reported in that order. */
      readonly artifactProblems: readonly Problem[];
    }
  /** A library choked on the upload: rethrown when it is judged, where every such failure is handled. */
  | { readonly kind: 'threw'; readonly error: Error };

/** What every bundle of a batch is inspected against: plain data, so another thread can be given it. */
export interface InspectionBasis {
  /** Whose keys count (`policy`, `publishers`, `operators`). */
  readonly config: RegistryConfig;
  /** Every fingerprint of the registry's own keys, which never sign as a publisher. */
  readonly registryFingerprints: readonly string[];
  /** The time of publishing: a publisher key is judged valid (or not) at it. */
  readonly now: Date;
  readonly bundleLimits?: Partial<BundleLimits>;
}

/**
 * Inspects a batch's bundles elsewhere than in the thread that judges them. The pipeline asks once a batch;
 * an inspector that would not pay for so few bundles answers undefined, and they are inspected here.
 */
export interface BundleInspector {
  /**
   * A batch of about this many uploads is being read (some may be actions): an inspector that would take
   * it can start getting ready meanwhile (threads load their modules).
   */
  prepare?(uploads: number): void;
  /**
   * The inspections of one batch of `bundles` bundles. `here` inspects one in this thread: for the bundles
   * the inspector cannot take (its threads still starting, or one that stopped), so every one is answered.
   */
  begin(
    basis: InspectionBasis,
    bundles: number,
    here: (bytes: Uint8Array) => Promise<Inspection>,
  ): InspectionRun | undefined;
}

export interface InspectionRun {
  /** How many bundles to keep in flight: enough to keep the inspector's threads busy. */
  readonly concurrency: number;
  inspect(bytes: Uint8Array): Promise<Inspection>;
  /** The batch asks no more (it is over, or it failed). */
  end(): void;
}

/** Reads the trusted keys a basis names (once a batch, in each thread that inspects). */
export function trustedKeysOf(basis: InspectionBasis): Promise<TrustedKeys> {
  return loadTrustedKeys(basis.config, basis.registryFingerprints);
}

/** Inspects one bundle in this thread; never throws (a failure is an Inspection, `threw`). */
export async function inspectBundle(
  bytes: Uint8Array,
  basis: InspectionBasis,
  trusted: TrustedKeys,
): Promise<Inspection> {
  try {
    return await inspectRead(bytes, basis, trusted);
  } catch (error) {
    return threw(error);
  }
}

/** A library's failure on an upload, as an Inspection (an Error, so it can be cloned between threads). */
export function threw(error: unknown): Inspection {
  return { kind: 'threw', error: error instanceof Error ? error : new Error(String(error)) };
}

async function inspectRead(
  bytes: Uint8Array,
  basis: InspectionBasis,
  trusted: TrustedKeys,
): Promise<Inspection> {
  let contents: BundleContents;
  try {
    contents = await readBundle(bytes, basis.bundleLimits);
  } catch (error) {
    return { kind: 'unreadable', problems: problemsFrom(error) };
  }
  const problems: Problem[] = [];
  let manifest: Manifest | undefined;
  try {
    manifest = await loadManifest(contents.manifest, contents.manifestName);
  } catch (error) {
    problems.push(...problemsFrom(error));
  }
  if (manifest) problems.push(...checkBundleFiles(contents, manifest));
  // The signature is checked even when the manifest is invalid, so every problem is reported at once.
  const signer = await checkPublisherSignature({
    policy: basis.config.policy,
    trusted,
    manifestName: contents.manifestName,
    manifest: contents.manifest,
    signature: contents.signature,
    publisherKey: contents.publisherKey,
    now: basis.now,
  });
  problems.push(...signer.problems);
  const artifactProblems = manifest && problems.length === 0 ? checkArtifactDigests(contents, manifest) : [];
  return { kind: 'read', contents, manifest, problems, signer, artifactProblems };
}
