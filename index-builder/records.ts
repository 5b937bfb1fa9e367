/**
 * What a plugin document says of a manifest, in one place for every side that makes one: the registry's
 * pipeline (site-writer.ts, plugin-document.ts) and a client reading a folder of signed manifests no
 * registry published (client/folder-source.ts). A version's record and the plugin's description then
 * mean the same wherever they were made. Pure.
 */
import type {
  ArtifactRecord,
  Manifest,
  PluginDocument,
  ResourceName,
  Resources,
  SecurityScan,
  VersionRecord,
} from './model.ts';
import { RESOURCE_LIMITS } from './model.ts';
import { isPrerelease } from './versions.ts';

/** The fields of a version's record that are not read from its manifest: where it is and who signed it. */
export type VersionPlacement = Pick<
  VersionRecord,
  | 'published'
  | 'manifest_url'
  | 'manifest_signature_url'
  | 'manifest_sha256'
  | 'manifest_size'
  | 'manifest_signature'
  | 'source_sha256'
  | 'publisher'
> & { readonly artifacts: readonly ArtifactRecord[] };

/** A version's record: what its manifest declares, and where the version is. */
export function versionRecordOf(manifest: Manifest, placement: VersionPlacement): VersionRecord {
  const requirements = manifest.requirements ?? {};
  // Field by field, in the record's key order, rather than from spreads of conditional objects: twice a
  // version in an import, mostly before V8 optimizes it.
  const record: { -readonly [K in keyof VersionRecord]?: VersionRecord[K] } = {
    version: manifest.version,
    published: placement.published,
    prerelease: isPrerelease(manifest.version),
    yanked: false,
    deprecated: false,
    api_version: manifest.api_version,
  };
  if (requirements.min_api_version) record.min_api_version = requirements.min_api_version;
  if (requirements.max_api_version) record.max_api_version = requirements.max_api_version;
  record.manifest_url = placement.manifest_url;
  record.manifest_signature_url = placement.manifest_signature_url;
  record.manifest_sha256 = placement.manifest_sha256;
  record.manifest_size = placement.manifest_size;
  if (placement.manifest_signature !== undefined) record.manifest_signature = placement.manifest_signature;
  record.source_sha256 = placement.source_sha256;
  record.publisher = placement.publisher;
  // Builds for another C library apart, where older clients do not look (model.ts `libc_artifacts`).
  record.artifacts = placement.artifacts.filter((a) => a.libc === undefined);
  const libc = placement.artifacts.filter((a) => a.libc !== undefined);
  if (libc.length > 0) record.libc_artifacts = libc;
  if (manifest.permissions?.length) record.permissions = [...manifest.permissions].sort();
  if (manifest.resources && Object.keys(manifest.resources).length > 0)
    record.resources = sortedResources(manifest.resources);
  if (manifest.security_scan_results) record.security_scan = securityScanOf(manifest.security_scan_results);
  return record as VersionRecord;
}

/**
 * The scan as the record carries it: the known fields only (the schema closes the block, but a record is
 * also made from manifests read elsewhere), in one order, so the same scan renders the same bytes.
 */
function securityScanOf(scan: SecurityScan): SecurityScan {
  return {
    status: scan.status,
    vulnerabilities: scan.vulnerabilities.map((v) => ({
      id: v.id,
      ...(v.severity !== undefined ? { severity: v.severity } : {}),
      ...(v.summary !== undefined ? { summary: v.summary } : {}),
      ...(v.url !== undefined ? { url: v.url } : {}),
    })),
    ...(scan.last_scan !== undefined ? { last_scan: scan.last_scan } : {}),
    ...(scan.scan_version !== undefined ? { scan_version: scan.scan_version } : {}),
  };
}

/** The limits in a fixed order (RESOURCE_LIMITS'), so the same declaration renders the same bytes. */
function sortedResources(resources: Resources): Resources {
  const out: Partial<Record<ResourceName, number>> = {};
  for (const name of Object.keys(RESOURCE_LIMITS) as ResourceName[]) {
    const value = resources[name];
    if (value !== undefined) out[name] = value;
  }
  return out;
}

/** The fields of a plugin document that describe the plugin, taken from one version's manifest. */
export type Description = Pick<
  PluginDocument,
  | 'display_name'
  | 'description'
  | 'plugin_type'
  | 'capabilities'
  | 'supported_providers'
  | 'tags'
  | 'license'
  | 'homepage'
  | 'repository'
  | 'maintainers'
>;

/** How a manifest describes its plugin (the displayed version's, in a registry's document). */
export function descriptionOf(manifest: Manifest): Description {
  const meta = manifest.metadata ?? {};
  // Assigned one by one, in the document's key order: spreads of conditional objects cost about 20 µs a
  // call before V8 optimizes them (3 µs after), and an import of 10,000 plugins calls this once each.
  const out: { -readonly [K in keyof Description]?: Description[K] } = {};
  if (manifest.display_name) out.display_name = manifest.display_name;
  if (manifest.description) out.description = manifest.description;
  out.plugin_type = manifest.plugin_type;
  out.capabilities = manifest.capabilities;
  out.supported_providers = manifest.supported_providers ?? [];
  out.tags = meta.tags ?? [];
  if (meta.license) out.license = meta.license;
  if (meta.homepage) out.homepage = meta.homepage;
  if (meta.repository) out.repository = meta.repository;
  const maintainers = manifest.contacts?.maintainers;
  if (maintainers?.length)
    out.maintainers = maintainers.map((m) => (m.email ? { name: m.name, email: m.email } : { name: m.name }));
  return out as Description;
}
