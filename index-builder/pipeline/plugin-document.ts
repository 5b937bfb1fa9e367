/**
 * A plugin's document: newly accepted versions folded into the published one, and everything the plugin
 * publishes rendered from it. Pure: no store, no clock.
 */
import { type CatalogLine, catalogLineOf } from '../catalog.ts';
import type { OwnershipRule } from '../config.ts';
import { deprecatedRecord, recomputed } from '../lifecycle.ts';
import type { Manifest, PluginDocument, RegistryIdentity, VersionRecord } from '../model.ts';
import { type Description, descriptionOf } from '../records.ts';
import { encodeJson } from '../render/documents.ts';
import { type PluginPageOptions, pageTooLarge, renderPluginPage } from '../render/html.ts';
import { latestVersion, sortVersionsDescending } from '../versions.ts';

/** A version accepted in this batch, with the manifest that describes it. */
export interface AddedVersion {
  readonly record: VersionRecord;
  readonly manifest: Manifest;
}

function pickDisplay(doc: PluginDocument): Description {
  const {
    display_name,
    description,
    plugin_type,
    capabilities,
    supported_providers,
    tags,
    license,
    homepage,
    repository,
    maintainers,
  } = doc;
  return {
    ...(display_name ? { display_name } : {}),
    ...(description ? { description } : {}),
    plugin_type,
    capabilities,
    supported_providers,
    tags,
    ...(license ? { license } : {}),
    ...(homepage ? { homepage } : {}),
    ...(repository ? { repository } : {}),
    ...(maintainers ? { maintainers } : {}),
  };
}

/** The version whose manifest describes the plugin on pages and in search: latest, else newest. */
function displayVersion(versions: readonly VersionRecord[]): string | undefined {
  return latestVersion(versions) ?? versions.find((v) => !v.yanked)?.version ?? versions[0]?.version;
}

/**
 * Folds newly accepted versions into a plugin document (a new one when `existing` is undefined). The plugin
 * is described by its displayed version's manifest; under first-come ownership a new plugin is owned by
 * the publisher of its first version. A plugin deprecated as a whole deprecates the versions published
 * after it too; its advisories and deprecation carry over.
 */
export function mergePluginDocument(
  existing: PluginDocument | undefined,
  added: readonly AddedVersion[],
  ownership: OwnershipRule,
): PluginDocument {
  const first = added[0];
  if (!first) throw new Error('mergePluginDocument needs at least one version');
  const deprecation = existing?.deprecation;
  const records = added.map((a) =>
    deprecation ? deprecatedRecord(a.record, deprecation.message, deprecation.replacement) : a.record,
  );
  const versions = sortVersionsDescending([...(existing?.versions ?? []), ...records]);
  const shown = displayVersion(versions);
  const fromAdded = added.find((a) => a.record.version === shown)?.manifest;
  const fields: Description = fromAdded
    ? descriptionOf(fromAdded)
    : existing
      ? pickDisplay(existing)
      : descriptionOf(first.manifest);
  const owners = existing?.owners.length
    ? existing.owners
    : ownership === 'first-come'
      ? [first.record.publisher]
      : [];
  // Assigned, not spread from conditional objects (once per plugin of an import, before V8 optimizes it);
  // `recomputed` puts every key in its place.
  const doc: Record<string, unknown> = { schema: 'plugindex/plugin/v1', name: first.manifest.name };
  Object.assign(doc, fields);
  doc.latest_version = null;
  doc.channels = {};
  doc.owners = owners;
  if (deprecation) doc.deprecation = deprecation;
  if (existing?.advisories) doc.advisories = existing.advisories;
  // Carried as they are: a publish changes no owners, and the batch recomputes them when owners change.
  if (existing?.look_alikes) doc.look_alikes = existing.look_alikes;
  doc.versions = versions;
  return recomputed(doc as unknown as PluginDocument);
}

/** A plugin's document, page and catalog line, rendered and ready to write. */
export interface RenderedPlugin {
  readonly doc: PluginDocument;
  readonly body: Uint8Array;
  readonly page: Uint8Array;
  /** The catalog line, but for the document's digest, which its signing gives. */
  readonly line: CatalogLine;
}

const encoder = new TextEncoder();

/**
 * Renders everything a plugin publishes, before any of it is written: a document that cannot be rendered
 * (RenderError) fails here, where the batch can still reject what changed it. With `maxLength`, a page past
 * it, or a document past it in bytes, is RENDER_TOO_LARGE; the page first, which stops as soon as it is
 * past (the document holds what the page shows, and little more).
 */
export function renderPlugin(
  doc: PluginDocument,
  registry: RegistryIdentity,
  options: PluginPageOptions = {},
): RenderedPlugin {
  const page = encoder.encode(renderPluginPage(doc, registry, options));
  const body = encodeJson(doc);
  if (options.maxLength !== undefined && body.byteLength > options.maxLength)
    throw pageTooLarge(doc.name, options.maxLength, 'document');
  return { doc, body, page, line: catalogLineOf(doc, { sha256: '', size: 0 }, registry.url) };
}
