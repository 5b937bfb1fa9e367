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
 * The index: a publish must not scan 100,000 names, so each name is filed under its skeleton, in the intake
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
  binOf,
  LOOK_ALIKE_COMPLETE_KEY,
  LOOK_ALIKE_PREFIX,
  lookAlikeBinKey,
  PLUGINS_PREFIX,
} from './layout.ts';
import { forEachLimited } from './limited.ts';
import { CACHE_PRIVATE, listFolders, type Store } from './store.ts';

/** What a refusal says of the rule, in one sentence a publisher can check a name against. */
export const LOOK_ALIKE_RULE =
  'names are compared ignoring case and the separators "-", "_" and ".", with "0" read as "o" and "1" as "l"';

/**
 * The form two names share when one would pass for the other: lowercase, no `-`, `_` or `.`, `0` as `o` and
 * `1` as `l`. Total over any string (a document a rebuild takes as it is may hold a name of an older rule).
 * @example nameSkeleton('aws-c0st') === nameSkeleton('awscost') // 'awscost'
 */
export function nameSkeleton(name: string): string {
  return name.toLowerCase().replace(/[-_.]/g, '').replace(/0/g, 'o').replace(/1/g, 'l');
}

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

const HEADER = 'plugindex-names 1';
const PUT = { contentType: 'text/tab-separated-values', cacheControl: CACHE_PRIVATE } as const;
const BINS_IN_FLIGHT = 16;
const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

/** Skeleton -> the names filed under it, of one bin. */
type Bin = Map<string, Set<string>>;

/** A name a TSV line can hold: any a manifest allows, and nothing that would split a line. */
const filable = (name: string): boolean => name.length > 0 && !/[\t\n\r]/.test(name);

function fileName(bins: Map<string, Bin>, name: string): void {
  if (!filable(name)) return;
  const skeleton = nameSkeleton(name);
  const binName = binOf(skeleton);
  let bin = bins.get(binName);
  if (!bin) {
    bin = new Map();
    bins.set(binName, bin);
  }
  const names = bin.get(skeleton);
  if (names) names.add(name);
  else bin.set(skeleton, new Set([name]));
}

/** A bin as stored; undefined when it is of another format (the index is then built anew). */
function parseBin(bytes: Uint8Array): Bin | undefined {
  const lines = utf8Decoder.decode(bytes).split('\n');
  if (lines[0] !== HEADER) return undefined;
  const bin: Bin = new Map();
  for (const line of lines.slice(1)) {
    if (line === '') continue;
    const [skeleton, name, extra] = line.split('\t');
    if (!skeleton || !name || extra !== undefined) return undefined;
    const names = bin.get(skeleton);
    if (names) names.add(name);
    else bin.set(skeleton, new Set([name]));
  }
  return bin;
}

function serializeBin(bin: Bin | undefined): Uint8Array {
  const lines = [HEADER];
  for (const skeleton of [...(bin?.keys() ?? [])].sort())
    for (const name of [...(bin?.get(skeleton) ?? [])].sort()) lines.push(`${skeleton}\t${name}`);
  return utf8.encode(`${lines.join('\n')}\n`);
}

async function writeBins(
  store: Store,
  bins: ReadonlyMap<string, Bin>,
  which: readonly string[],
): Promise<void> {
  await forEachLimited(which, BINS_IN_FLIGHT, (bin) =>
    store.put(lookAlikeBinKey(bin), serializeBin(bins.get(bin)), PUT),
  );
}

/**
 * Writes the whole index `bins` holds: the bins that hold a name, none else (a first publish writes one bin,
 * not 256), any other bin stored deleted (an older index's: names are never unpublished, so only one of
 * another format can hold what these do not), then the mark that it is complete.
 */
async function writeWholeIndex(store: Store, bins: ReadonlyMap<string, Bin>): Promise<void> {
  await writeBins(store, bins, [...bins.keys()].sort());
  for await (const { key } of store.list(LOOK_ALIKE_PREFIX))
    if (key !== LOOK_ALIKE_COMPLETE_KEY && !bins.has(key.slice(LOOK_ALIKE_PREFIX.length, -'.tsv'.length)))
      await store.delete(key);
  await store.put(LOOK_ALIKE_COMPLETE_KEY, utf8.encode(`${HEADER}\n`), PUT);
}

/** Writes the whole index from `names` (a rebuild's: every plugin it rebuilt), over what was stored. */
export async function writeLookAlikeIndex(store: Store, names: Iterable<string>): Promise<void> {
  const bins = new Map<string, Bin>();
  for (const name of names) fileName(bins, name);
  await writeWholeIndex(store, bins);
}

/** The plugin names the site store has folders for: what an index is built from when there is none. */
async function* pluginFolderNames(site: Store): AsyncIterable<string> {
  for await (const folder of listFolders(site, PLUGINS_PREFIX)) yield folder.slice(PLUGINS_PREFIX.length, -1);
}

/**
 * One batch's use of the index: the names filed under a skeleton (`filedAlike`), and the new names the
 * batch accepted (`add`), filed by `save` before the batch writes any plugin document. Each bin is read
 * once a batch.
 */
export class LookAlikeIndex {
  readonly #intake: Store;
  readonly #site: Store;
  /** Each bin read (or built), by bin. */
  readonly #bins = new Map<string, Promise<Bin | undefined>>();
  /** Whether the stored index is complete and of this format: else built from the site's listing. */
  #complete: Promise<boolean> | undefined;
  /** The whole index, built from the site's listing, when the stored one is not complete. */
  #built: Promise<Map<string, Bin>> | undefined;
  /** New names this batch accepted, filed by `save` (and judged against by later submissions). */
  readonly #added = new Set<string>();

  constructor(intake: Store, site: Store) {
    this.#intake = intake;
    this.#site = site;
  }

  /** Every name filed under `name`'s skeleton, or accepted in this batch under it, but `name` itself. */
  async filedAlike(name: string): Promise<string[]> {
    const skeleton = nameSkeleton(name);
    const bin = await this.#bin(binOf(skeleton));
    const alike = new Set(bin?.get(skeleton) ?? []);
    for (const added of this.#added) if (nameSkeleton(added) === skeleton) alike.add(added);
    alike.delete(name);
    return [...alike].sort();
  }

  /** Files a new name this batch accepted. */
  add(name: string): void {
    this.#added.add(name);
  }

  /**
   * Writes the bins of the names added and still `published` (read, merged and written back), or, when the stored index is not
   * complete, the whole index built from the site's listing with them, then its mark; the index built is
   * written even when no name was added (every new name refused), or each later batch with a new name
   * listed every plugin folder again until one was accepted. Nothing when no name was added and nothing
   * was built.
   */
  async save(published?: ReadonlySet<string>): Promise<void> {
    // Only the names the batch still publishes (`published`): one whose version it refused after its
    // judging (its files refused for good, its page too large) is no plugin, and filed it stayed a line
    // every later lookup of its skeleton read (with a document read for it), removed by a rebuild alone.
    if (published) for (const name of this.#added) if (!published.has(name)) this.#added.delete(name);
    if (this.#added.size === 0 && this.#built === undefined) return;
    // Nothing of the batch's rests on a build that failed when no name was added: the next batch builds it.
    if (
      this.#added.size === 0 &&
      !(await this.#built?.then(
        () => true,
        () => false,
      ))
    )
      return;
    if (!(await this.#isComplete())) {
      const bins = await this.#buildAll();
      for (const name of this.#added) fileName(bins, name);
      await writeWholeIndex(this.#intake, bins);
      return;
    }
    // Copies of the bins read, to file the names in: a failed write leaves the ones read as they are.
    const bins = new Map<string, Bin>();
    for (const name of this.#added) {
      const binName = binOf(nameSkeleton(name));
      if (bins.has(binName)) continue;
      const read = (await this.#bin(binName)) ?? new Map();
      bins.set(binName, new Map([...read].map(([skeleton, names]) => [skeleton, new Set(names)])));
    }
    for (const name of this.#added) fileName(bins, name);
    await writeBins(this.#intake, bins, [...bins.keys()].sort());
  }

  #isComplete(): Promise<boolean> {
    this.#complete ??= this.#intake
      .get(LOOK_ALIKE_COMPLETE_KEY)
      .then((object) => object !== undefined && utf8Decoder.decode(object.body) === `${HEADER}\n`);
    return this.#complete;
  }

  #bin(binName: string): Promise<Bin | undefined> {
    let read = this.#bins.get(binName);
    if (!read) {
      read = this.#readBin(binName);
      // A failed read is not kept: the next ask reads again.
      read.catch(() => {
        if (this.#bins.get(binName) === read) this.#bins.delete(binName);
      });
      this.#bins.set(binName, read);
    }
    return read;
  }

  async #readBin(binName: string): Promise<Bin | undefined> {
    if (await this.#isComplete()) {
      const object = await this.#intake.get(lookAlikeBinKey(binName));
      const bin = object ? parseBin(object.body) : new Map();
      if (bin) return bin;
      // A bin of another format: the index is not to be trusted, and is built anew like a missing one.
      this.#complete = Promise.resolve(false);
    }
    return (await this.#buildAll()).get(binName);
  }

  #buildAll(): Promise<Map<string, Bin>> {
    this.#built ??= (async () => {
      const bins = new Map<string, Bin>();
      for await (const name of pluginFolderNames(this.#site)) fileName(bins, name);
      return bins;
    })();
    return this.#built;
  }
}
