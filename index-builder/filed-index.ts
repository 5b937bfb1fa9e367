/**
 * A lookup index kept beside the catalog in the intake store, for a rule a publish judges against every
 * plugin without reading every plugin: values (plugin names) filed under a key (a name's skeleton, an OCI
 * repository), one TSV file per bin of the key (the catalog's 256 bins, `<prefix><hh>.tsv`, about 400
 * lines each at 100,000 plugins), and `<prefix>complete`, the mark that the bins hold every plugin. A
 * registry made before an index (or whose `state/` was lost) has none, and its first lookup builds it from
 * the site store once (`build`); a rebuild writes it anew (`writeFiledIndex`). Entries are only ever added
 * by a publish: what an entry says is confirmed against the plugin's document before anything is refused
 * for it, so one left by a run that died, or by a version refused after its judging, costs a read, no more.
 *
 * Used by the look-alike name index (look-alike.ts) and the OCI repository index (oci-repositories.ts).
 */

import { binOf } from './layout.ts';
import { forEachLimited, readOnce } from './limited.ts';
import { CACHE_PRIVATE, type Store } from './store.ts';

/** Where an index is kept and how its files begin (a file of another header is of another format). */
export interface FiledIndexFormat {
  /** `state/catalog/<index>/`: the bins are `<prefix><hh>.tsv`, the mark `<prefix>complete`. */
  readonly prefix: string;
  /** The first line of every bin and of the mark, e.g. `plugindex-names 1`. */
  readonly header: string;
  /**
   * Headers of older formats still read as they are (their lines hold no detail): an index of one is not
   * built anew, and each bin a batch writes back is written in this format, its old lines as they were.
   */
  readonly older?: readonly string[];
  /** Whether a line may hold a third field, what is filed of the value (`FiledEntry`'s `detail`). */
  readonly detailed?: boolean;
  /**
   * Headers of older formats whose keys an older rule wrote, and the keys each of their keys is now (none:
   * it names nothing any more; more than one where the older rule wrote two keys alike). An index of one is
   * filed anew from its own bins, each line under what `rekey` gives, and written whole in this format: a
   * read of its bins (at most 256) where building it from the source reads every plugin. A bin of it that
   * does not read, or one of this format beside its bins (a rekeying that died), has it built from the source
   * after all.
   */
  readonly rekeyed?: {
    readonly headers: readonly string[];
    readonly rekey: (key: string) => readonly string[];
  };
}

/** What `FiledIndex.save` wrote: the whole index, the bins of the entries added, or nothing. */
export type FiledIndexWrite = 'whole' | 'bins' | 'none';

/**
 * One entry: `value` filed under `key`, with `detail`, what the index files of the value beside it (the
 * look-alike index: the plugin's owners); filing a value again replaces its detail.
 */
export type FiledEntry = readonly [key: string, value: string, detail?: string];

export function filedBinKey(format: FiledIndexFormat, bin: string): string {
  return `${format.prefix}${bin}.tsv`;
}

export function filedCompleteKey(format: FiledIndexFormat): string {
  return `${format.prefix}complete`;
}

const PUT = { contentType: 'text/tab-separated-values', cacheControl: CACHE_PRIVATE } as const;
const BINS_IN_FLIGHT = 16;
const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

/** Key -> the values filed under it, each with its detail (none: undefined), of one bin. */
type Bin = Map<string, Map<string, string | undefined>>;

/** What a TSV line can hold: anything non-empty that would not split a line or a field. */
const filable = (text: string): boolean => text.length > 0 && !/[\t\n\r]/.test(text);

function fileEntry(bins: Map<string, Bin>, [key, value, detail]: FiledEntry): void {
  if (!filable(key) || !filable(value)) return;
  const filed = detail !== undefined && filable(detail) ? detail : undefined;
  const binName = binOf(key);
  let bin = bins.get(binName);
  if (!bin) {
    bin = new Map();
    bins.set(binName, bin);
  }
  const values = bin.get(key);
  if (values) values.set(value, filed);
  else bin.set(key, new Map([[value, filed]]));
}

/** Whether `header` begins a file of `format`, or of an older format it still reads. */
const readable = (format: FiledIndexFormat, header: string | undefined): boolean =>
  header === format.header || (header !== undefined && (format.older ?? []).includes(header));

/** A bin as stored; undefined when it is of another format (the index is then built anew). */
function parseBin(format: FiledIndexFormat, bytes: Uint8Array): Bin | undefined {
  const entries = parseEntries(format, bytes);
  if (!entries || !readable(format, entries.header)) return undefined;
  const bins = new Map<string, Bin>();
  for (const entry of entries.lines) fileEntry(bins, entry);
  return [...bins.values()][0] ?? new Map();
}

/** A bin's header and lines; undefined when a line does not read (a detail only in this format's bins). */
function parseEntries(
  format: FiledIndexFormat,
  bytes: Uint8Array,
): { header: string | undefined; lines: FiledEntry[] } | undefined {
  const [header, ...rest] = utf8Decoder.decode(bytes).split('\n');
  const detailed = format.detailed === true && header === format.header;
  const lines: FiledEntry[] = [];
  for (const line of rest) {
    if (line === '') continue;
    const [key, value, detail, extra] = line.split('\t');
    if (!key || !value || extra !== undefined || (detail !== undefined && (!detailed || !detail)))
      return undefined;
    lines.push([key, value, detail]);
  }
  return { header, lines };
}

/**
 * Every entry of an index whose mark is of a `rekeyed` format, read from its stored bins, each key filed
 * under what it is now; undefined when a bin does not read, or is not of that format. A bin of this format
 * here was left by a whole write that died before the mark (a rekeying's): it was written over the older bin
 * of its name, whose lines rekeyed into another bin are lost if that bin was not written yet, so only the
 * source still has them.
 */
async function rekeyedEntries(store: Store, format: FiledIndexFormat): Promise<FiledEntry[] | undefined> {
  const rekeyed = format.rekeyed;
  if (!rekeyed) return undefined;
  const complete = filedCompleteKey(format);
  const keys: string[] = [];
  for await (const { key } of store.list(format.prefix)) if (key !== complete) keys.push(key);
  const entries: FiledEntry[] = [];
  let unread = false;
  await forEachLimited(keys, BINS_IN_FLIGHT, async (key) => {
    const object = await store.get(key);
    if (!object) return;
    const bin = parseEntries(format, object.body);
    if (bin?.header !== undefined && rekeyed.headers.includes(bin.header))
      for (const [old, value, detail] of bin.lines)
        for (const key of rekeyed.rekey(old)) entries.push([key, value, detail]);
    else unread = true;
  });
  return unread ? undefined : entries;
}

function serializeBin(format: FiledIndexFormat, bin: Bin | undefined): Uint8Array {
  const lines = [format.header];
  for (const key of [...(bin?.keys() ?? [])].sort())
    for (const [value, detail] of [...(bin?.get(key) ?? [])].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      lines.push(detail === undefined ? `${key}\t${value}` : `${key}\t${value}\t${detail}`);
  return utf8.encode(`${lines.join('\n')}\n`);
}

async function writeBins(
  store: Store,
  format: FiledIndexFormat,
  bins: ReadonlyMap<string, Bin>,
  which: readonly string[],
): Promise<void> {
  await forEachLimited(which, BINS_IN_FLIGHT, (bin) =>
    store.put(filedBinKey(format, bin), serializeBin(format, bins.get(bin)), PUT),
  );
}

/**
 * Writes the whole index `bins` holds: the bins that hold an entry, none else (a first publish writes one
 * bin, not 256), any other bin stored deleted (an older index's: entries are never taken back by a publish,
 * so only one of another format can hold what these do not), then the mark that it is complete.
 */
async function writeWholeIndex(
  store: Store,
  format: FiledIndexFormat,
  bins: ReadonlyMap<string, Bin>,
): Promise<void> {
  await writeBins(store, format, bins, [...bins.keys()].sort());
  const complete = filedCompleteKey(format);
  for await (const { key } of store.list(format.prefix))
    if (key !== complete && !bins.has(key.slice(format.prefix.length, -'.tsv'.length)))
      await store.delete(key);
  await store.put(complete, utf8.encode(`${format.header}\n`), PUT);
}

/** Writes the whole index from `entries` (a rebuild's: of every plugin it rebuilt), over what was stored. */
export async function writeFiledIndex(
  store: Store,
  format: FiledIndexFormat,
  entries: Iterable<FiledEntry>,
): Promise<void> {
  const bins = new Map<string, Bin>();
  for (const entry of entries) fileEntry(bins, entry);
  await writeWholeIndex(store, format, bins);
}

/**
 * One batch's use of an index: the values filed under a key (`filed`), and the entries the batch accepted
 * (`add`), filed by `save` before the batch writes any plugin document. Each bin is read once a batch.
 */
export class FiledIndex {
  readonly #intake: Store;
  readonly #format: FiledIndexFormat;
  /** Every entry of the registry, from the site store: what the index is built from when it is not complete. */
  readonly #source: () => AsyncIterable<FiledEntry>;
  /** Each bin read (or built), by bin. */
  readonly #bins = new Map<string, Promise<Bin | undefined>>();
  /**
   * Whether the stored index is complete and of this format (`complete`), complete but keyed by an older
   * rule (`rekey`: built from its own bins, `FiledIndexFormat.rekeyed`), or neither (built from `#source`).
   */
  #stored: Promise<'complete' | 'rekey' | 'build'> | undefined;
  /** The whole index, built from `#source`, when the stored one is not complete. */
  #built: Promise<Map<string, Bin>> | undefined;
  /** Entries this batch accepted, filed by `save` (and judged against by later submissions), as a bin. */
  readonly #added: Bin = new Map();

  constructor(intake: Store, format: FiledIndexFormat, source: () => AsyncIterable<FiledEntry>) {
    this.#intake = intake;
    this.#format = format;
    this.#source = source;
  }

  /** Every value filed under `key`, or accepted in this batch under it, sorted. */
  async filed(key: string): Promise<string[]> {
    return (await this.filedEntries(key)).map(([value]) => value);
  }

  /** Every value filed under `key`, or accepted in this batch under it, sorted, each with its detail. */
  async filedEntries(key: string): Promise<[value: string, detail: string | undefined][]> {
    const bin = await this.#bin(binOf(key));
    const entries = new Map([...(bin?.get(key) ?? []), ...(this.#added.get(key) ?? [])]);
    return [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  /** Files an entry this batch accepted (again: its detail replaced). */
  add(key: string, value: string, detail?: string): void {
    const values = this.#added.get(key);
    if (values) values.set(value, detail);
    else this.#added.set(key, new Map([[value, detail]]));
  }

  /**
   * Writes the bins of the entries added whose value is still `published` (read, merged and written back),
   * or, when the stored index is not complete, the whole index built from the site with them, then its
   * mark; the index built is written even when no entry was added (every one refused), or each later batch
   * built it again until one was accepted. Nothing when no entry was added and nothing was built. Returns
   * what it wrote: `whole` (every line then this batch's: built from the source, or filed by it), `bins`
   * (those of the entries, over the bins as the batch read them), or `none`.
   */
  async save(published?: ReadonlySet<string>): Promise<FiledIndexWrite> {
    // Only the values the batch still publishes: one whose version it refused after its judging (its files
    // refused for good, its page too large) stayed filed, a line every later lookup of its key read (with a
    // document read for it), removed by a rebuild alone.
    const added: FiledEntry[] = [...this.#added].flatMap(([key, values]) =>
      [...values]
        .filter(([value]) => !published || published.has(value))
        .map(([value, detail]) => [key, value, detail] as const),
    );
    if (added.length === 0 && this.#built === undefined) return 'none';
    // Nothing of the batch's rests on a build that failed when nothing was added: the next batch builds it.
    if (
      added.length === 0 &&
      !(await this.#built?.then(
        () => true,
        () => false,
      ))
    )
      return 'none';
    if (!(await this.#isComplete())) {
      const bins = await this.#buildAll();
      for (const entry of added) fileEntry(bins, entry);
      await writeWholeIndex(this.#intake, this.#format, bins);
      return 'whole';
    }
    // Copies of the bins read, to file the entries in: a failed write leaves the ones read as they are.
    const bins = new Map<string, Bin>();
    for (const [key] of added) {
      const binName = binOf(key);
      if (bins.has(binName)) continue;
      const read = (await this.#bin(binName)) ?? new Map();
      bins.set(binName, new Map([...read].map(([k, values]) => [k, new Map(values)])));
    }
    for (const entry of added) fileEntry(bins, entry);
    await writeBins(this.#intake, this.#format, bins, [...bins.keys()].sort());
    return 'bins';
  }

  /**
   * Takes `entries` (key and value; any detail) back out of the index: out of those this batch accepted, and
   * out of each stored bin holding one, read again as stored (the batch's `save` wrote it since it was read)
   * and written back without them. For a publish the registry voided (pipeline/index.ts `voidRefusedPlugin`):
   * it never took effect, and the index is left as if it never was filed. A bin absent or of another format
   * holds none of them (an index of another format is built anew from the site, where the publish is not).
   */
  async withdraw(entries: readonly FiledEntry[]): Promise<void> {
    const byBin = new Map<string, FiledEntry[]>();
    for (const entry of entries) {
      this.#added.get(entry[0])?.delete(entry[1]);
      const binName = binOf(entry[0]);
      byBin.set(binName, [...(byBin.get(binName) ?? []), entry]);
    }
    for (const [binName, taken] of byBin) {
      const object = await this.#intake.get(filedBinKey(this.#format, binName));
      const bin = object && parseBin(this.#format, object.body);
      if (!bin) continue;
      let changed = false;
      for (const [key, value] of taken) {
        const values = bin.get(key);
        if (!values?.delete(value)) continue;
        changed = true;
        if (values.size === 0) bin.delete(key);
      }
      if (!changed) continue;
      await writeBins(this.#intake, this.#format, new Map([[binName, bin]]), [binName]);
      this.#bins.set(binName, Promise.resolve(bin));
    }
  }

  async #isComplete(): Promise<boolean> {
    return (await this.#storedState()) === 'complete';
  }

  #storedState(): Promise<'complete' | 'rekey' | 'build'> {
    this.#stored ??= this.#intake.get(filedCompleteKey(this.#format)).then((object) => {
      const marked = (headers: readonly string[] | undefined) =>
        object !== undefined &&
        (headers ?? []).some((header) => utf8Decoder.decode(object.body) === `${header}\n`);
      if (marked([this.#format.header, ...(this.#format.older ?? [])])) return 'complete';
      return marked(this.#format.rekeyed?.headers) ? 'rekey' : 'build';
    });
    return this.#stored;
  }

  #bin(binName: string): Promise<Bin | undefined> {
    return readOnce(this.#bins, binName, () => this.#readBin(binName));
  }

  async #readBin(binName: string): Promise<Bin | undefined> {
    if (await this.#isComplete()) {
      const object = await this.#intake.get(filedBinKey(this.#format, binName));
      const bin = object ? parseBin(this.#format, object.body) : new Map();
      if (bin) return bin;
      // A bin of another format: the index is not to be trusted, and is built anew like a missing one.
      this.#stored = Promise.resolve('build');
    }
    return (await this.#buildAll()).get(binName);
  }

  #buildAll(): Promise<Map<string, Bin>> {
    this.#built ??= (async () => {
      const bins = new Map<string, Bin>();
      const rekeyed =
        (await this.#storedState()) === 'rekey'
          ? await rekeyedEntries(this.#intake, this.#format)
          : undefined;
      for await (const entry of rekeyed ?? this.#source()) fileEntry(bins, entry);
      return bins;
    })();
    return this.#built;
  }
}
