/**
 * The pages of a registry of N synthetic plugins, for the page tests and the page benchmark: the home page
 * (its first plugins in the page), `search.json`, `home-search.json` and `favicon.svg`, rendered by the
 * functions the pipeline renders them with
 * (same functions, same order: search.json by name), a plugin with many versions for its page, and one of
 * a single version (`plugins/one-version/`, the benchmark's floor). Pure:
 * the caller puts the files into a store.
 */

import { HOME_SEARCH_KEY, STYLE_KEY } from '../index-builder/layout.ts';
import type { PluginDocument, SearchEntry, VersionRecord } from '../index-builder/model.ts';
import { buildSearchEntry } from '../index-builder/render/documents.ts';
import { renderHomeSearch } from '../index-builder/render/home-search.ts';
import { FAVICON_SVG, PAGE_STYLE, renderIndexPage, renderPluginPage } from '../index-builder/render/html.ts';
import { HOME_PAGE_SIZE } from '../index-builder/render/page-script.ts';
import { lookAlikesOf } from '../index-builder/search.ts';
import { syntheticDocument } from './synthetic.ts';

export interface PageFile {
  readonly key: string;
  readonly body: string;
  readonly contentType: string;
}

const PUBLISHER = 'B'.repeat(40);
const HTML = 'text/html; charset=utf-8';

/** A plugin of `count` versions (`2.<count-1>.0` newest first, down to `2.0.0`), every fifth one yanked. */
export function manyVersionsDocument(name: string, count: number): PluginDocument {
  const base = syntheticDocument(0, PUBLISHER);
  const template = base.versions[0] as VersionRecord;
  const versions: VersionRecord[] = [];
  for (let v = count - 1; v >= 0; v--) {
    const version = `2.${v}.0`;
    const manifest = `https://registry.example.com/plugins/${name}/${version}/manifest.json`;
    versions.push({
      ...template,
      version,
      published: new Date(Date.UTC(2020, 0, 1) + v * 86_400_000).toISOString(),
      manifest_url: manifest,
      manifest_signature_url: `${manifest}.asc`,
      ...(v % 5 === 4 ? { yanked: true, yanked_reason: 'a bad build' } : {}),
    });
  }
  return {
    ...base,
    name,
    display_name: 'Many versions',
    versions,
    latest_version: versions[0]?.version ?? null,
  };
}

/**
 * The site of `count` synthetic plugins plus `extra` documents (merged by name), and the page of
 * `paged`, a plugin of `versions` versions. Returns the files and the search rows (for expected answers).
 */
export function syntheticPages(
  registry: { readonly name: string; readonly url: string },
  count: number,
  options: {
    readonly extra?: readonly PluginDocument[];
    readonly versions?: number;
    /**
     * The home page as published before home-search.json (false): it names no compact rows and no
     * generation, and searches search.json. Default true: home-search.json written, and named by the page.
     */
    readonly homeSearch?: boolean;
  } = {},
): { files: PageFile[]; rows: SearchEntry[]; paged: PluginDocument } {
  const paged = manyVersionsDocument('many-versions', options.versions ?? 500);
  const docs = [...Array.from({ length: count }, (_, i) => syntheticDocument(i, PUBLISHER)), paged];
  docs.push(...(options.extra ?? []));
  const rows = docs.map(buildSearchEntry).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const generated = '2026-12-01T00:00:00.000Z';
  const search = { schema: 'plugindex/search/v1', generated, plugins: rows };
  const compact = options.homeSearch ?? true;
  // The list as served carries its look-alike flags, as the script would show them (HomeListing).
  const alike = lookAlikesOf(rows.slice());
  const first = rows
    .slice(0, HOME_PAGE_SIZE)
    .map((row, i) => (alike[i] ? { ...row, look_alikes: alike[i] } : row));
  const listing = compact
    ? { rows: first, total: rows.length, generated, search: HOME_SEARCH_KEY }
    : { rows: first, total: rows.length };
  const files: PageFile[] = [
    { key: 'index.html', body: renderIndexPage(registry, listing), contentType: HTML },
    { key: 'search.json', body: `${JSON.stringify(search)}\n`, contentType: 'application/json' },
    { key: 'favicon.svg', body: FAVICON_SVG, contentType: 'image/svg+xml' },
    { key: STYLE_KEY, body: PAGE_STYLE, contentType: 'text/css; charset=utf-8' },
    { key: `plugins/${paged.name}/index.html`, body: renderPluginPage(paged, registry), contentType: HTML },
  ];
  if (compact)
    files.push({
      key: HOME_SEARCH_KEY,
      body: renderHomeSearch(rows, generated),
      contentType: 'application/json',
    });
  // The floor: the page of a plugin of one version, the smallest page there is.
  const small = { ...syntheticDocument(count, PUBLISHER), name: 'one-version' };
  small.versions = small.versions.slice(0, 1);
  files.push({
    key: `plugins/${small.name}/index.html`,
    body: renderPluginPage(small, registry),
    contentType: HTML,
  });
  for (const doc of options.extra ?? [])
    files.push({
      key: `plugins/${doc.name}/index.html`,
      body: renderPluginPage(doc, registry),
      contentType: HTML,
    });
  return { files, rows, paged };
}
