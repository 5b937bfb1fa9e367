/**
 * `home-search.json`: what the home page searches, in a compact form for the page alone. search.json
 * (the signed document clients read) repeats every field name in every row and every provider, capability,
 * keyword and type in full; here a row is an array and those strings are indexes into one table, about 40%
 * of search.json's bytes. In Chromium the time from request to parsed rows grows with the bytes decoded
 * (about 50 ms per MB on this machine, compressed or not: bench/pages.bench.ts), and that time is what
 * stands between the page and its first search.
 *
 * A page asset, like `index.html`: neither signed nor listed in the snapshot (no client reads it; a client
 * reads search.json and checks it). Rendered from the same rows as search.json, in the same flush, with the
 * same `generated`, so the page can tell whether the list it was served is the one these rows give.
 *
 * Shape (`plugindex/home-search/v1`):
 *   { "schema", "generated", "strings": [type, ..], "lists": [[string, ..], ..], "plugins": [[name,
 *     display_name, description, latest_version, type, providers, capabilities, keywords, deprecated?,
 *     look_alikes?, look_alikes_more?], ..] }
 * where type is an index into `strings`, and providers, capabilities and keywords each an index into
 * `lists` (a list shared by many plugins is written once, and the page holds it once); an absent display name
 * or description is "" (the page treats both alike), an absent latest version null, and `deprecated` is 1
 * when present, left off otherwise (0 when a look-alike list follows). `look_alikes` is the row's
 * `lookAlikesOf` (search.ts: the names that read as its own, of other owners; what `plugindex search` and
 * `GET /search` flag), left off when it has none: the rows here carry no owners (40 hex digits a row, most
 * of these bytes), so the server flags them, and an older page, which reads nine fields, ignores it. Only
 * its first `LOOK_ALIKES_SHOWN` names (what the page shows), then, when there are more, `look_alikes_more`,
 * the count of the rest (the page's "and N more"); a page of before the count shows the ten without it. The
 * page script's `unpack` (page-script.ts) reads it back into rows of search.json's shape, without owners and
 * with their `look_alikes`; test/index-builder/render/home-search.test.ts checks the round trip.
 */
import type { SearchEntry } from '../model.ts';
import { LOOK_ALIKES_SHOWN, lookAlikesOf } from '../search.ts';

export const HOME_SEARCH_SCHEMA = 'plugindex/home-search/v1';

/** `home-search.json` for `rows` (search.json's rows, in its order) and search.json's `generated`. */
export function renderHomeSearch(rows: Iterable<SearchEntry>, generated: string): string {
  // Each distinct type, and each distinct list of providers, capabilities or keywords, once: most plugins
  // share theirs, and the page then holds one array for all the rows that share it.
  const strings = new Table<string>();
  const lists = new Table<readonly string[]>();
  const plugins: string[] = [];
  const all = [...rows];
  // Made here, once a flush, not by the page: it carries no owners to make them from.
  const alike = lookAlikesOf(all);
  all.forEach((row, i) => {
    const packed: unknown[] = [
      row.name,
      row.display_name ?? '',
      row.description ?? '',
      row.latest_version,
      strings.at(row.plugin_type),
      lists.at(row.providers),
      lists.at(row.capabilities),
      lists.at(row.keywords),
    ];
    const flags = alike[i];
    if (row.deprecated || flags) packed.push(row.deprecated ? 1 : 0);
    // As many names as the page shows, and the count of the rest it says ("and N more"): the whole list
    // was carried, a row as long as the registry's look-alikes of the name, for a line that shows ten.
    if (flags) packed.push(flags.slice(0, LOOK_ALIKES_SHOWN));
    if (flags && flags.length > LOOK_ALIKES_SHOWN) packed.push(flags.length - LOOK_ALIKES_SHOWN);
    plugins.push(JSON.stringify(packed));
  });
  return `{"schema":${JSON.stringify(HOME_SEARCH_SCHEMA)},"generated":${JSON.stringify(generated)},"strings":${JSON.stringify(strings.values)},"lists":${JSON.stringify(lists.values)},"plugins":[\n${plugins.join(',\n')}\n]}\n`;
}

/** Distinct values in the order first seen, each by its index; equal by their JSON. */
class Table<T> {
  readonly values: T[] = [];
  readonly #index = new Map<string, number>();

  at(value: T): number {
    const key = JSON.stringify(value);
    let i = this.#index.get(key);
    if (i === undefined) {
      i = this.values.length;
      this.values.push(value);
      this.#index.set(key, i);
    }
    return i;
  }
}
