/**
 * Look-alike plugin names (typosquatting): a NEW plugin whose name reads as an existing plugin's, owned by
 * someone else, is refused (`NAME_TOO_SIMILAR`). Names are 2-64 characters of lowercase letters and digits
 * separated by single hyphens (manifest/schema.ts; the upstream spec allows runs of hyphens), so case cannot
 * tell two names apart and the hyphen is the one separator: two names are alike when their skeletons are
 * equal (`nameSkeleton`), the name with every separator dropped (npm's and PyPI's rule, reduced to what our
 * names can hold) and the two digits that pass for letters in a monospace URL read as them (`0` as `o`, `1`
 * as `l`). No wider confusable table: `i`/`l`, `rn`/`m` and the like would refuse honest names (`api` and
 * `apl`), and a refusal must be one a publisher can predict from a sentence.
 *
 * Judged at publish time only, for a name the registry does not hold yet: existing plugins that already
 * collide are grandfathered (never changed, never unpublished), and their later versions are judged as
 * before. An owner of the existing plugin may take a look-alike (`foo-cli` beside `foocli`): a second name
 * in the same hands misleads no one about who publishes it.
 *
 * The index (filed-index.ts): a publish must not scan 100,000 names, so each name is filed under its skeleton, in the intake
 * store beside the catalog (`state/catalog/names/<bin>.tsv`, the bin of the skeleton, about 400 lines at
 * 100,000 plugins), and a new name reads one bin. `complete` marks that the bins hold every name: a registry
 * made before the index (or whose `state/` was lost) has none, and its first lookup builds the index from
 * the plugin folders the site store lists, once. A rebuild writes it anew from the documents it rebuilt.
 *
 * The bins are written before any plugin document of the batch, so every published name is in them (a
 * name whose version the batch refused after its judging is not filed); a name whose run died before its
 * document stays filed without a plugin, and the judging reads the named plugin's document before refusing anything (a name in
 * the index with no document is no conflict).
 */

import { type Problem, problem } from './errors.ts';
import {
  type FiledEntry,
  FiledIndex,
  type FiledIndexFormat,
  type FiledIndexWrite,
  writeFiledIndex,
} from './filed-index.ts';
import { LOOK_ALIKE_PREFIX, listPluginNames } from './layout.ts';
import { recomputed } from './lifecycle.ts';
import type { PluginDocument } from './model.ts';
import { LOOK_ALIKE_RULE, nameSkeleton, sameHands } from './name-skeleton.ts';
import type { Store } from './store.ts';

// The rule itself lives in name-skeleton.ts, shared with the search's look-alike flags (search.ts).
export { LOOK_ALIKE_RULE, nameSkeleton };

/** An existing plugin a new name looks like, and who owns it. */
export interface LookAlike {
  readonly name: string;
  readonly owners: readonly string[];
}

/** NAME_TOO_SIMILAR for `name`, naming the existing plugins it reads as and the rule. */
export function lookAlikeProblem(name: string, alike: readonly LookAlike[]): Problem {
  const names = alike.map((a) => `"${a.name}"`).join(', ');
  return problem(
    'NAME_TOO_SIMILAR',
    '/name',
    `"${name}" is too similar to ${names}, a plugin another publisher owns (${LOOK_ALIKE_RULE})`,
    {
      expected: `a name that does not read as ${names}, or a signature by an owner of it (${alike.flatMap((a) => a.owners).join(', ') || 'none'})`,
      found: name,
    },
  );
}

/**
 * The index's place and format (filed-index.ts): each name filed under its skeleton, with owners its
 * document has (`ownersField`), or none. Format 1 filed names alone: its lines are read as filing no owner.
 */
const FORMAT: FiledIndexFormat = {
  prefix: LOOK_ALIKE_PREFIX,
  header: 'plugindex-names 2',
  older: ['plugindex-names 1'],
  detailed: true,
};

/**
 * The owners filed beside a name: fingerprints (uppercase hex, no tab or comma) joined by commas; none
 * filed for a plugin without owners.
 */
function ownersField(owners: readonly string[] | undefined): string | undefined {
  const filed = [...new Set(owners ?? [])].filter((o) => /^[0-9A-F]+$/.test(o)).sort();
  return filed.length > 0 ? filed.join(',') : undefined;
}

/**
 * Writes the whole index from `plugins` (a rebuild's: every plugin it rebuilt, each name with its
 * document's owners), over what was stored.
 */
export async function writeLookAlikeIndex(
  store: Store,
  plugins: Iterable<readonly [name: string, owners: readonly string[]]>,
): Promise<void> {
  await writeFiledIndex(
    store,
    FORMAT,
    [...plugins].map(([name, owners]) => [nameSkeleton(name), name, ownersField(owners)] as const),
  );
}

/** A name filed under a skeleton, with the owners filed beside it (none: unknown, its document tells). */
export interface FiledName {
  readonly name: string;
  /**
   * Some of its document's owners: never one the document does not hold (look-alike.ts's callers file
   * only owners the document held both before and after the batch that files them), so one listed here
   * owns it, and its look-alike is allowed without reading the document; one not listed may own it still.
   */
  readonly owners: readonly string[];
}

/** The plugin names the site store has folders for: what an index is built from when there is none. */
async function* pluginFolderNames(site: Store): AsyncIterable<FiledEntry> {
  for await (const name of listPluginNames(site)) yield [nameSkeleton(name), name];
}

/**
 * One batch's use of the index: the names filed under a skeleton (`filedAlike`), and the new names the
 * batch accepted (`add`), filed by `save` before the batch writes any plugin document. Each bin is read
 * once a batch.
 */
export class LookAlikeIndex {
  readonly #index: FiledIndex;

  constructor(intake: Store, site: Store) {
    this.#index = new FiledIndex(intake, FORMAT, () => pluginFolderNames(site));
  }

  /** Every name filed under `name`'s skeleton, or accepted in this batch under it, but `name` itself. */
  async filedAlike(name: string): Promise<FiledName[]> {
    return (await this.#index.filedEntries(nameSkeleton(name)))
      .filter(([other]) => other !== name)
      .map(([other, owners]) => ({ name: other, owners: owners?.split(',') ?? [] }));
  }

  /**
   * Files a name this batch accepted, or files a plugin's name again, with `owners`: only owners its
   * document holds whether or not the batch's writes reach it (`FiledName.owners`). Filed again, a name's
   * owners are replaced.
   */
  add(name: string, owners?: readonly string[]): void {
    this.#index.add(nameSkeleton(name), name, ownersField(owners));
  }

  /**
   * Writes the bins of the names added and still `published`, or the whole index when the stored one is not
   * complete (filed-index.ts `FiledIndex.save`). Returns what it wrote: written `whole`, every owner it
   * files is one this build filed (catalog.ts `Catalog.namesOwnersKept`).
   */
  save(published?: ReadonlySet<string>): Promise<FiledIndexWrite> {
    return this.#index.save(published);
  }

  /** Takes a name back out of the index, filed by a publish the registry voided (`FiledIndex.withdraw`). */
  withdraw(name: string): Promise<void> {
    return this.#index.withdraw([[nameSkeleton(name), name]]);
  }
}

/**
 * Each of `group`'s documents (plugins whose names share one skeleton) with its `look_alikes` as the group
 * stands: the others whose owners are not its owners (`sameHands`, the rule search.ts `lookAlikesOf` flags
 * by), by name; the field dropped for none. Returns only the documents whose field this changes.
 */
export function lookAlikesWithin(group: readonly PluginDocument[]): PluginDocument[] {
  const hands = group.map((doc) => new Set(doc.owners.map((o) => o.toUpperCase())));
  const changed: PluginDocument[] = [];
  group.forEach((doc, i) => {
    const alike = group
      .filter(
        (other, j) => other.name !== doc.name && !sameHands(hands[i] as Set<string>, hands[j] as Set<string>),
      )
      .map((other) => ({ name: other.name, owners: [...other.owners] }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    if (JSON.stringify(alike) === JSON.stringify(doc.look_alikes ?? [])) return;
    const { look_alikes: _, ...rest } = doc;
    // Placed as mergePluginDocument's are: after the description, by `recomputed`.
    changed.push(recomputed(alike.length > 0 ? { ...rest, look_alikes: alike } : rest));
  });
  return changed;
}
