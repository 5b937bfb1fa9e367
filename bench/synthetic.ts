/**
 * A registry's worth of plugins for the benchmarks, made without running the pipeline N times: plugin
 * documents of the published shape (their digests stand in; nothing fetches those versions), and small
 * manifests for the versions a benchmark does publish for real.
 */
import { artifactKey, manifestKey } from '../index-builder/layout.ts';
import type { PluginDocument, SearchEntry, VersionRecord } from '../index-builder/model.ts';

export const VERSIONS_PER_PLUGIN = 10;
export const URL_BASE = 'https://registry.example.com';
const TYPES = ['cost_source', 'observability', 'registry', 'aggregator'];

export function pluginName(i: number): string {
  return `plugin-${String(i).padStart(5, '0')}`;
}

export function syntheticDocument(i: number, publisher: string): PluginDocument {
  const name = pluginName(i);
  const versions: VersionRecord[] = [];
  for (let v = VERSIONS_PER_PLUGIN - 1; v >= 0; v--) {
    const version = `1.${v}.0`;
    const manifest = `${URL_BASE}/${manifestKey(name, version)}`;
    versions.push({
      version,
      published: new Date(Date.UTC(2026, 0, 1 + v)).toISOString(),
      prerelease: false,
      yanked: false,
      deprecated: false,
      api_version: 'v1',
      min_api_version: 'v1',
      max_api_version: 'v1',
      manifest_url: manifest,
      manifest_signature_url: `${manifest}.asc`,
      manifest_sha256: 'a'.repeat(64),
      manifest_size: 900,
      source_sha256: 'b'.repeat(64),
      publisher,
      artifacts: [
        {
          os: 'linux',
          arch: 'amd64',
          url: `${URL_BASE}/${artifactKey(name, version, `artifacts/linux-amd64/${name}`)}`,
          sha256: 'c'.repeat(64),
          size_bytes: 1024,
          hosted: true,
        },
        {
          os: 'darwin',
          arch: 'arm64',
          url: `${URL_BASE}/${artifactKey(name, version, `artifacts/darwin-arm64/${name}`)}`,
          sha256: 'd'.repeat(64),
          size_bytes: 1024,
          hosted: true,
        },
      ],
    });
  }
  return {
    schema: 'plugindex/plugin/v1',
    name,
    display_name: `Plugin ${i}`,
    description: `Synthetic plugin number ${i} for the publish benchmark`,
    plugin_type: TYPES[i % TYPES.length] as string,
    latest_version: versions[0]?.version ?? null,
    channels: {},
    capabilities: ['actual_cost', 'projected_cost'],
    supported_providers: ['aws', 'kubernetes'],
    tags: ['bench', `group-${i % 17}`],
    license: 'Apache-2.0',
    owners: [publisher],
    versions,
  };
}

export function manifestFor(name: string, version: string): Uint8Array {
  return new TextEncoder().encode(
    JSON.stringify({
      name,
      display_name: name,
      description: 'Benchmark plugin',
      version,
      api_version: 'v1',
      plugin_type: 'cost_source',
      capabilities: ['actual_cost'],
      supported_providers: ['aws'],
      requirements: { min_api_version: 'v1', max_api_version: 'v1', os: ['linux'], arch: ['amd64'] },
    }),
  );
}

const SEARCH_PROVIDERS = ['aws', 'azure', 'gcp', 'kubernetes'];
const SEARCH_TYPES = ['cost_source', 'observability', 'registry', 'aggregator'];

/** `n` rows of `search.json` for the search benches: four providers and types, 50 tags, two kinds of text. */
export function syntheticSearchRows(n: number): SearchEntry[] {
  return Array.from({ length: n }, (_, i) => ({
    // One row in 500 named like the row before it without its hyphen, by another owner: the look-alikes a
    // registry made before it refused them still holds (search.ts `lookAlikesOf`).
    name: i % 500 === 7 ? pluginName(i - 1).replace('-', '') : pluginName(i),
    display_name: `Plugin ${i}`,
    description: `Synthetic plugin number ${i}, reporting ${i % 3 === 0 ? 'cost' : 'usage'} data`,
    latest_version: '1.9.0',
    plugin_type: SEARCH_TYPES[i % SEARCH_TYPES.length] as string,
    providers: [SEARCH_PROVIDERS[i % SEARCH_PROVIDERS.length] as string],
    capabilities: ['actual_cost'],
    keywords: [`tag-${i % 50}`, 'actual_cost'],
    // One of 1,000 publishers' fingerprints (40 hex digits), as a registry's rows name their owners.
    owners: [(i % 1000).toString(16).toUpperCase().padStart(40, 'F')],
  }));
}
