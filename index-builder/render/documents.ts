/**
 * The published JSON documents, derived from plugin documents: the spec's registry index entries,
 * search rows, and the signed snapshot that binds every mutable document by digest.
 */
import type { PluginDocument, RegistryIdentity, SearchEntry, VersionRecord } from '../model.ts';
import { parseOciReference } from '../oci.ts';
import { stringifyJson } from '../text.ts';

/** One plugin in `index.json`, in the PulumiCost "Registry Structure". */
export interface RegistryIndexEntry {
  readonly name: string;
  readonly display_name?: string;
  readonly description?: string;
  readonly latest_version: string;
  readonly plugin_type: string;
  readonly supported_providers: readonly string[];
  readonly capabilities: readonly string[];
  readonly versions: readonly {
    readonly version: string;
    readonly manifest_url: string;
    readonly published: string;
    readonly deprecated: boolean;
    readonly yanked: boolean;
    readonly api_compatibility?: { readonly min_api_version?: string; readonly max_api_version?: string };
  }[];
  readonly tags: readonly string[];
}

export interface RegistryIndexDocument {
  readonly registry_version: '1.0.0';
  readonly registry_metadata: {
    readonly name: string;
    readonly description?: string;
    readonly url: string;
    readonly last_updated: string;
    readonly supported_api_versions: readonly string[];
  };
  readonly plugins: readonly RegistryIndexEntry[];
}

function apiCompatibility(
  record: VersionRecord,
): RegistryIndexEntry['versions'][number]['api_compatibility'] {
  if (!record.min_api_version && !record.max_api_version) return undefined;
  return {
    ...(record.min_api_version ? { min_api_version: record.min_api_version } : {}),
    ...(record.max_api_version ? { max_api_version: record.max_api_version } : {}),
  };
}

/**
 * The plugin's entry in `index.json`. The spec requires `latest_version`; a plugin with no stable release
 * (only prereleases, or everything yanked) names its newest version there, and its own document says
 * `latest_version: null`, which is the exact answer for clients that read it.
 */
export function buildIndexEntry(doc: PluginDocument): RegistryIndexEntry {
  const newest = doc.versions.find((v) => !v.yanked) ?? doc.versions[0];
  return {
    name: doc.name,
    ...(doc.display_name ? { display_name: doc.display_name } : {}),
    ...(doc.description ? { description: doc.description } : {}),
    latest_version: doc.latest_version ?? newest?.version ?? '0.0.0',
    plugin_type: doc.plugin_type,
    supported_providers: doc.supported_providers,
    capabilities: doc.capabilities,
    // A version the operator removed has no manifest any more: only its plugin document lists it, with why.
    versions: doc.versions
      .filter((record) => !record.removed)
      .map((record) => {
        const api = apiCompatibility(record);
        return {
          version: record.version,
          manifest_url: record.manifest_url,
          published: record.published,
          deprecated: record.deprecated,
          yanked: record.yanked,
          ...(api ? { api_compatibility: api } : {}),
        };
      }),
    tags: doc.tags,
  };
}

export function buildSearchEntry(doc: PluginDocument): SearchEntry {
  return {
    name: doc.name,
    ...(doc.display_name ? { display_name: doc.display_name } : {}),
    ...(doc.description ? { description: doc.description } : {}),
    latest_version: doc.latest_version,
    plugin_type: doc.plugin_type,
    providers: doc.supported_providers,
    capabilities: doc.capabilities,
    keywords: doc.tags,
    ...(doc.deprecation ? { deprecated: true as const } : {}),
    owners: doc.owners,
  };
}

/**
 * One plugin in `falcoctl/index.yaml`, in falcoctl's index format (Diginfra's rules and plugin
 * distribution): where to find the plugin, and what a search matches. Absent fields are left out.
 */
export interface FalcoctlIndexEntry {
  readonly name: string;
  readonly type: 'plugin';
  /** The OCI registry (`host[:port]`) of the plugin's artifacts, else this registry's host. */
  readonly registry: string;
  /** The OCI repository, without tag; only for a plugin whose artifacts are kept in an OCI registry. */
  readonly repository?: string;
  readonly description?: string;
  readonly keywords: readonly string[];
  readonly license?: string;
  readonly home?: string;
  readonly sources?: readonly string[];
  readonly maintainers?: readonly { readonly name: string; readonly email?: string }[];
}

/**
 * The plugin's entry in `falcoctl/index.yaml`. Registry and repository come from the first OCI artifact of
 * the version a client installs by default (latest, else the newest not yanked); a plugin with none is
 * found at this registry (`registryUrl`'s host), and names no repository.
 */
export function buildFalcoctlEntry(doc: PluginDocument, registryUrl: string): FalcoctlIndexEntry {
  const shown =
    doc.versions.find((v) => v.version === doc.latest_version) ??
    doc.versions.find((v) => !v.yanked) ??
    doc.versions[0];
  const oci = shown?.artifacts.find((a) => a.oci !== undefined)?.oci;
  const parts = oci ? parseOciReference(oci.reference) : undefined;
  return {
    name: doc.name,
    type: 'plugin',
    registry: parts?.registry ?? new URL(registryUrl).host,
    ...(parts ? { repository: parts.repository } : {}),
    ...(doc.description ? { description: doc.description } : {}),
    keywords: [...new Set([...doc.tags, ...doc.capabilities])],
    ...(doc.license ? { license: doc.license } : {}),
    ...(doc.homepage ? { home: doc.homepage } : {}),
    ...(doc.repository ? { sources: [doc.repository] } : {}),
    ...(doc.maintainers?.length ? { maintainers: doc.maintainers } : {}),
  };
}

/** `registry_metadata` of index.json; the plugin list is concatenated from the catalog (index-documents.ts). */
export function buildRegistryMetadata(
  identity: RegistryIdentity,
  apiVersions: readonly string[],
  updated: string,
): RegistryIndexDocument['registry_metadata'] {
  return {
    name: identity.name,
    ...(identity.description ? { description: identity.description } : {}),
    url: identity.url,
    last_updated: updated,
    supported_api_versions: apiVersions.length > 0 ? apiVersions : ['v1'],
  };
}

const encoder = new TextEncoder();

/**
 * Documents people read are pretty-printed; the large global ones are concatenated (index-documents.ts). Text no
 * reader should get is escaped or refused (text.ts).
 * @throws RenderError (RENDER_UNSAFE_TEXT) for a string that is not Unicode text.
 */
export function encodeJson(value: unknown): Uint8Array {
  return encoder.encode(`${stringifyJson(value, 2)}\n`);
}
