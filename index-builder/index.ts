/**
 * plugindex core: manifest model and validation, version rules, index rendering, signing, and the publish
 * pipeline. No AWS SDK, no filesystem, no network: storage, keys and the clock come in through interfaces.
 */
export {
  type BundleContents,
  type BundleLimits,
  checkBundleFiles,
  DEFAULT_BUNDLE_LIMITS,
  readBundle,
  writeBundle,
} from './bundle.ts';
export { type Clock, fixedClock, systemClock } from './clock.ts';
export {
  DEFAULT_SNAPSHOT_TTL_SECONDS,
  type OwnershipRule,
  type PublishPolicy,
  parseRegistryConfig,
  type RegistryConfig,
  type TrustedPublisher,
} from './config.ts';
export {
  ConfigError,
  type ErrorCode,
  KeyError,
  PlugindexError,
  type Problem,
  type ProblemCode,
  StoreError,
  SubmissionError,
  TrustError,
} from './errors.ts';
export { loadManifest, normalizeDigest, validateManifest } from './manifest/index.ts';
export type {
  ArtifactRecord,
  Manifest,
  ManifestArtifact,
  PluginDocument,
  RegistryIdentity,
  SearchDocument,
  SearchEntry,
  VersionRecord,
} from './model.ts';
export {
  type BatchResult,
  type PipelineContext,
  processSubmissions,
  rebuildRegistry,
  refreshSnapshot,
  type SubmissionOutcome,
  type SubmissionStatus,
  sha256Hex,
  streamSha256,
  submissionId,
  submissionIdOf,
} from './pipeline.ts';
export type {
  DocumentDigest,
  RegistryIndexDocument,
  RegistryIndexEntry,
  SnapshotDocument,
} from './render/documents.ts';
export {
  createSigner,
  generateKeyPair,
  type KeyPair,
  readPublicKey,
  type Signer,
  verifyDetachedSignature,
} from './signing.ts';
export {
  CACHE_IMMUTABLE,
  CACHE_MUTABLE,
  CACHE_PRIVATE,
  contentTypeFor,
  isSafeKey,
  type ListedObject,
  type ObjectInfo,
  type PutOptions,
  type Store,
  type StoredObject,
  type StoredStream,
} from './store.ts';
export { inspectBundle, inspectManifest, packSubmission } from './submission.ts';
export {
  channelHeads,
  channelOf,
  latestVersion,
  resolveVersion,
  sortVersionsDescending,
} from './versions.ts';
