/**
 * Search over the `search.json` of every configured registry, ranked the way a user expects: a plugin whose
 * name is the word typed first, then names that start with it, contain it, then keywords, descriptions, and
 * last names one typo away. Pure: the caller fetches and verifies each registry's `search.json`.
 *
 * One ranking for every reader: the client's `search` (over each configured registry) and the registry's own
 * `GET /search` endpoint (index-builder/search-endpoint.ts, served by the local server and the search
 * function) call this same function, so a spec client and `plugindex search` see the same order. It lives in
 * the core, not in client/, because the publisher's servers use it too and never import the client.
 *
 * @example
 * searchPlugins([{ registry: 'main', priority: 1, entries: doc.plugins }], { terms: ['cost'], provider: 'aws' });
 */
import { SearchQueryError } from './errors.ts';
import { CAPABILITIES, PROVIDERS } from './manifest/schema.ts';
import { PLUGIN_TYPES, type SearchEntry } from './model.ts';
import { nameSkeleton, sameHands } from './name-skeleton.ts';

/** Code-unit order, as the client sorts names everywhere (locale-independent, so every host agrees). */
function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export interface SearchSource {
  readonly registry: string;
  /** Lower wins a tie (priority 1 before 2), as in the client configuration. */
  readonly priority: number;
  readonly entries: readonly SearchEntry[];
  /**
   * `foldEntries(entries)`, when the caller keeps it between searches (the endpoint's `SearchIndex` makes it
   * once per version of `search.json`); made here for this search when absent. Ranked in its place.
   */
  readonly folded?: readonly FoldedEntry[];
}

/**
 * The most distinct words a query may hold where a stranger sends it (the `GET /search` endpoint refuses
 * more). Each distinct word is one more pass over every row (name, display name, keywords, description,
 * then a typo distance against each distinct part of the names), so the words bound what one request costs
 * a public endpoint (which keeps only its last answers); and since every word must match, a plugin's few
 * fields never answer a longer query anyway. `q`'s 256 characters would otherwise allow 128 words.
 */
export const MAX_SEARCH_TERMS = 8;

/**
 * Text as the ranking compares it, a query's and a row's alike: lowercased, then in Unicode NFC. The same
 * word reaches us composed ("café" with U+00E9, as most keyboards write it) or decomposed ("cafe" and
 * U+0301, as macOS input and some pastes give it); compared by code units, one spelling finds the other only
 * as a typo. NFC comes last because lowercasing can undo it: "Ϊ́" (U+03AA U+0301, NFC, there being no
 * composed capital) lowercases to U+03CA U+0301, which composes to "ΐ" (U+0390). The page's copy of the
 * ranking (render/page-script.ts) folds the same way.
 */
export function foldText(text: string): string {
  return text.toLowerCase().normalize('NFC');
}

/**
 * The words of a query as the ranking reads them: folded (`foldText`), split on whitespace, each once, in
 * the order first met. A word twice asks nothing more (every word must match, and an entry ranks by its
 * weakest), so a word repeated, in either case or either Unicode form, costs what it costs once.
 */
export function searchTerms(terms: readonly string[]): string[] {
  return [...new Set(terms.flatMap((t) => foldText(t).split(/\s+/)).filter((t) => t !== ''))];
}

/** The longest `q`, in characters of its NFC form: enough for any name and a few words; it bounds the work. */
export const MAX_QUERY_LENGTH = 256;
/** The longest filter value; the longest allowed value is far shorter, so a longer one is refused as such. */
export const MAX_FILTER_LENGTH = 64;

/** The parameters of a search, as `GET /search`, `plugindex search` and the home page's URL name them. */
export const SEARCH_FIELDS = ['q', 'type', 'provider', 'capability'] as const;
export type SearchField = (typeof SEARCH_FIELDS)[number];

/** The values a filter can take: the manifest schema's, lowercase. */
export const SEARCH_FILTER_VALUES: Readonly<Record<Exclude<SearchField, 'q'>, readonly string[]>> = {
  type: PLUGIN_TYPES,
  provider: PROVIDERS,
  capability: CAPABILITIES,
};

/** Why a search's parameters were refused; stable, the same code from the endpoint, the CLI and the page. */
export type SearchProblemCode =
  | 'SEARCH_PARAMETER_REPEATED'
  | 'SEARCH_PARAMETER_TOO_LONG'
  /** A type, provider or capability the schema does not know, a control character, a `q` of more distinct
   * words than `MAX_SEARCH_TERMS`. */
  | 'SEARCH_PARAMETER_INVALID';

export interface SearchProblem {
  readonly code: SearchProblemCode;
  readonly parameter: SearchField;
  readonly message: string;
  readonly expected: string;
}

/** The parameters read: `q` as given (its words are read by `searchTerms`), each filter trimmed and lowercased. */
export interface ReadSearchQuery {
  readonly q: string;
  readonly type?: string;
  readonly provider?: string;
  readonly capability?: string;
}

export type SearchParametersRead =
  | { readonly ok: true; readonly query: ReadSearchQuery }
  | { readonly ok: false; readonly problem: SearchProblem };

/**
 * The refusal of a parameter given twice, in one wording for every parameter of `GET /search`: the search's
 * own (`readSearchParameters`) and the endpoint's `limit` and `offset` (search-endpoint.ts).
 */
export function repeatedParameter<P extends string>(
  parameter: P,
): {
  readonly code: 'SEARCH_PARAMETER_REPEATED';
  readonly parameter: P;
  readonly message: string;
  readonly expected: string;
} {
  return {
    code: 'SEARCH_PARAMETER_REPEATED',
    parameter,
    message: `${parameter} is given more than once`,
    expected: `${parameter} at most once`,
  };
}

/** C0 controls and DEL: nothing a search can mean, and a NUL has no place in a log line. */
function hasControlCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}

/**
 * The one rule of what a search's parameters mean, for all three ways to search: `GET /search`
 * (search-endpoint.ts, after its URL decoding), `plugindex search` (its words joined by a space as `q`, its
 * `--type`, `--provider`, `--capability`) and the home page (render/page-script.ts holds a copy, checked
 * against this one by its test). `pairs` in the order given; the first fault met is the answer.
 *
 * - Each parameter at most once (`SEARCH_PARAMETER_REPEATED`): two providers would be a question no filter asks.
 * - An empty value is the parameter's absence (a spec client sends `?q=&provider=` for "everything").
 * - `q`: at most `MAX_QUERY_LENGTH` characters counted in NFC, so a word typed decomposed ("cafe" and U+0301)
 *   has the verdict of its composed form, as it has its matches; no control character (a tab or newline
 *   included: the page's field cannot hold one, and it is no word); at most `MAX_SEARCH_TERMS` distinct words.
 * - A filter is one word of the schema: trimmed of surrounding whitespace and lowercased (then NFC), as a
 *   form field trims and as the schema's values are all lowercase; what is left empty is absent; anything
 *   else the schema does not list is refused (`SEARCH_PARAMETER_INVALID`), where it used to match nothing
 *   in the client and the page while the endpoint refused it. Trimmed rather than refused: no value has a
 *   space, so " aws" can mean only "aws", as "AWS" does.
 */
export function readSearchParameters(
  pairs: readonly (readonly [SearchField, string])[],
): SearchParametersRead {
  const seen = new Set<SearchField>();
  const query: { q: string; type?: string; provider?: string; capability?: string } = { q: '' };
  const refuse = (
    code: SearchProblemCode,
    parameter: SearchField,
    message: string,
    expected: string,
  ): SearchParametersRead => ({ ok: false, problem: { code, parameter, message, expected } });
  for (const [parameter, given] of pairs) {
    if (seen.has(parameter)) return { ok: false, problem: repeatedParameter(parameter) };
    seen.add(parameter);
    const value = parameter === 'q' ? given : given.trim();
    const max = parameter === 'q' ? MAX_QUERY_LENGTH : MAX_FILTER_LENGTH;
    const length = [...value.normalize('NFC')].length;
    if (length > max)
      return refuse(
        'SEARCH_PARAMETER_TOO_LONG',
        parameter,
        `${parameter} is ${length} characters long`,
        `at most ${max} characters`,
      );
    if (hasControlCharacter(value))
      return refuse(
        'SEARCH_PARAMETER_INVALID',
        parameter,
        `${parameter} holds a control character`,
        'text without control characters',
      );
    if (parameter === 'q') {
      // Counted as the ranking reads them (a word repeated is one): each is a pass over every row.
      const words = searchTerms([value]).length;
      if (words > MAX_SEARCH_TERMS)
        return refuse(
          'SEARCH_PARAMETER_INVALID',
          parameter,
          `q holds ${words} distinct words`,
          `at most ${MAX_SEARCH_TERMS} distinct words`,
        );
      query.q = value;
      continue;
    }
    if (value === '') continue;
    const folded = foldText(value);
    const allowed = SEARCH_FILTER_VALUES[parameter];
    if (!allowed.includes(folded))
      return refuse(
        'SEARCH_PARAMETER_INVALID',
        parameter,
        `${JSON.stringify(folded)} is not a ${parameter} a plugin can have`,
        `one of ${allowed.join(', ')}`,
      );
    query[parameter] = folded;
  }
  return { ok: true, query };
}

/**
 * `query` by the rule `readSearchParameters` states, for a library caller (the client's `search`): its terms
 * joined by a space as `q`, each filter trimmed and lowercased. The query as read, or the first fault.
 * @throws SearchQueryError with the code `GET /search` would answer 400 with
 */
export function checkSearchQuery<Q extends SearchQuery>(query: Q): Q {
  const pairs: (readonly [SearchField, string])[] = [['q', query.terms.join(' ')]];
  for (const filter of ['type', 'provider', 'capability'] as const) {
    const value = query[filter];
    if (value !== undefined) pairs.push([filter, value]);
  }
  const read = readSearchParameters(pairs);
  if (!read.ok) {
    const { code, parameter, message, expected } = read.problem;
    throw new SearchQueryError(code, parameter, message, expected);
  }
  const { type, provider, capability } = read.query;
  const { type: _t, provider: _p, capability: _c, ...rest } = query;
  return {
    ...rest,
    ...(type === undefined ? {} : { type }),
    ...(provider === undefined ? {} : { provider }),
    ...(capability === undefined ? {} : { capability }),
  } as Q;
}

/** An entry's fields as the ranking compares them (`foldText`): folded once, not once per word and row. */
export interface FoldedEntry {
  readonly entry: SearchEntry;
  readonly name: string;
  /**
   * The name, then each of its '-'-separated parts (what a typo is measured against), as indexes into
   * `partTable`: the distinct parts of every row folded together, which rows share (100,000 rows named
   * `plugin-NNNNN` hold 100,002 parts but one `plugin`), so a search measures a term's distance to each
   * distinct part once, not once per row (`TypoVerdicts`).
   */
  readonly partIds: readonly number[];
  /** The same array for every row of one `foldEntries` call. */
  readonly partTable: readonly string[];
  /** '' when the entry has none (no word is empty, so '' matches none). */
  readonly displayName: string;
  readonly keywords: readonly string[];
  /** '' when the entry has none. */
  readonly description: string;
  readonly type: string;
  readonly providers: readonly string[];
  readonly capabilities: readonly string[];
  /** The row's look-alikes of other owners (`lookAlikesOf`), made with the fold; undefined for none. */
  readonly lookAlikes: readonly string[] | undefined;
}

/**
 * The owners a row says it has, uppercased (fingerprints are hex; a registry writes them uppercase), or
 * undefined when it says none: a row of a registry that wrote its rows before they carried owners, or one
 * whose field is not a list of strings (the row is the registry's, signed, but no reason to throw here).
 */
function ownersOf(entry: SearchEntry): ReadonlySet<string> | undefined {
  const owners: unknown = entry.owners;
  if (!Array.isArray(owners) || !owners.every((o) => typeof o === 'string')) return undefined;
  return new Set(owners.map((o: string) => o.toUpperCase()));
}

/**
 * Look-alikes a flag names before it counts the rest ("… and 2 more"): `plugindex info` and `search`
 * (cli/commands/search.ts `lookAlikeWarning`), the home page (served and built by its script) and the plugin
 * page. A registry's list is not bounded, and a flag of thousands was one line of them.
 */
export const LOOK_ALIKES_SHOWN = 10;

/**
 * Per row of `entries` (one registry's `search.json`), the other rows whose name reads as its own
 * (`nameSkeleton`, the rule the registry refuses a new name by: look-alike.ts) and whose owners are not its
 * owners (the same set of fingerprints), by name in code-unit order; undefined for a row with none. The
 * registry refuses such a name now, but names published before the rule, or given to another owner since,
 * still stand side by side, and a user who searches `aws-cost` should see that `awscost` is someone else's.
 * Two names in the same hands (an owner's own `foo-cli` beside `foocli`) mislead no one, so the same owners
 * clear a pair. One owner in common does not: `owners add` needs only an owner's signature, so a squat's
 * owner could name the other plugin's owner among its own (a public key) and clear the flag while keeping
 * the right to publish it; any key that may publish one name and not the other is another owner. A plugin
 * with no owners (ownership `none`) is in no one's hands, since anyone may publish its next version. A row
 * that does not say its owners (a registry that wrote it before rows carried them) is neither flagged nor
 * flags another: telling an owner's own second name from a squat needs both rows' owners.
 *
 * One pass grouping by skeleton, then pairs only within a group of two or more (a registry refuses new
 * look-alikes, so groups stay small): made once per version of the rows (`foldEntries`), not per search.
 * @example lookAlikesOf([awsCostOfA, awscostOfB])[0] // ['awscost']
 */
export function lookAlikesOf(entries: readonly SearchEntry[]): (readonly string[] | undefined)[] {
  const groups = new Map<string, number | number[]>();
  for (let i = 0; i < entries.length; i++) {
    const skeleton = nameSkeleton((entries[i] as SearchEntry).name);
    const group = groups.get(skeleton);
    if (group === undefined) groups.set(skeleton, i);
    else if (typeof group === 'number') groups.set(skeleton, [group, i]);
    else group.push(i);
  }
  const flags: (readonly string[] | undefined)[] = new Array(entries.length).fill(undefined);
  for (const group of groups.values()) {
    if (typeof group === 'number') continue;
    const owners = group.map((i) => ownersOf(entries[i] as SearchEntry));
    group.forEach((i, at) => {
      const mine = owners[at];
      if (mine === undefined) return;
      const name = (entries[i] as SearchEntry).name;
      const others: string[] = [];
      group.forEach((j, other) => {
        const theirs = owners[other];
        const otherName = (entries[j] as SearchEntry).name;
        if (theirs === undefined || otherName === name || sameHands(mine, theirs)) return;
        others.push(otherName);
      });
      if (others.length > 0) flags[i] = others.sort(compareStrings);
    });
  }
  return flags;
}

const foldAll = (values: readonly string[]): string[] => values.map(foldText);
/** '' for a field the entry lacks (no word is empty, so '' matches none). */
const foldOptional = (text: string | undefined): string => (text ? foldText(text) : '');

/**
 * `entries` folded for ranking (`foldText`), in order: make it once per version of the rows (normalizing
 * costs more than lowercasing alone), and pass it as `folded`. The entries themselves stay as published.
 */
export function foldEntries(entries: readonly SearchEntry[]): FoldedEntry[] {
  const partTable: string[] = [];
  const partIndex = new Map<string, number>();
  const idOf = (part: string): number => {
    let id = partIndex.get(part);
    if (id === undefined) {
      id = partTable.push(part) - 1;
      partIndex.set(part, id);
    }
    return id;
  };
  const lookAlikes = lookAlikesOf(entries);
  return entries.map((entry, i) => {
    const name = foldText(entry.name);
    return {
      entry,
      name,
      partIds: [name, ...name.split('-')].map(idOf),
      partTable,
      displayName: foldOptional(entry.display_name),
      keywords: foldAll(entry.keywords),
      description: foldOptional(entry.description),
      type: foldText(entry.plugin_type),
      providers: foldAll(entry.providers),
      capabilities: foldAll(entry.capabilities),
      lookAlikes: lookAlikes[i],
    };
  });
}

export interface SearchQuery {
  readonly terms: readonly string[];
  /** `--type`: the plugin_type. */
  readonly type?: string;
  /** `--provider`: one of the entry's providers. */
  readonly provider?: string;
  /** `--capability`: one of the entry's capabilities. */
  readonly capability?: string;
}

export type MatchKind = 'exact' | 'prefix' | 'substring' | 'keyword' | 'description' | 'typo' | 'all';

export interface SearchHit {
  readonly registry: string;
  readonly priority: number;
  /** The weakest of the terms' best matches: what the entry ranks by. */
  readonly match: MatchKind;
  readonly entry: SearchEntry;
  /**
   * Other plugins of the same registry whose names read as this one's, whose owners are not the same keys as
   * its own (`lookAlikesOf`): absent when there are none, or when the rows do not say their owners.
   */
  readonly lookAlikes?: readonly string[];
}

/** Strongest first; an entry ranks by its index here. */
const TIERS: readonly MatchKind[] = ['exact', 'prefix', 'substring', 'keyword', 'description', 'typo', 'all'];

/** Two rows of the distance table, kept between calls and grown when a longer name comes: no allocation per pair. */
let rowA = new Int32Array(64);
let rowB = new Int32Array(64);

/**
 * The Levenshtein distance of `a` and `b` (UTF-16 code units), or `bound + 1` as soon as it is sure to
 * exceed `bound`: search compares every term against every name, and almost all pairs are far apart. Only
 * the band of cells within `bound` of the diagonal is computed (a path that leaves it has already made more
 * than `bound` edits), 5 cells a row for a bound of 2 instead of the name's length. Exported for its test.
 */
export function boundedLevenshtein(a: string, b: string, bound: number): number {
  const far = bound + 1;
  const n = b.length;
  if (Math.abs(a.length - n) > bound) return far;
  if (rowA.length < n + 2) {
    rowA = new Int32Array(2 * (n + 2));
    rowB = new Int32Array(2 * (n + 2));
  }
  let previous = rowA;
  let current = rowB;
  for (let j = 0; j <= n; j++) previous[j] = Math.min(j, far);
  for (let i = 1; i <= a.length; i++) {
    const lo = Math.max(1, i - bound);
    const hi = Math.min(n, i + bound);
    // The cells just outside the band read as "too far", so no value of an earlier call leaks in.
    current[lo - 1] = lo === 1 ? Math.min(i, far) : far;
    let rowMin = current[lo - 1] as number;
    const code = a.charCodeAt(i - 1);
    for (let j = lo; j <= hi; j++) {
      const substitution = (previous[j - 1] as number) + (code === b.charCodeAt(j - 1) ? 0 : 1);
      const cell = Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, substitution, far);
      current[j] = cell;
      if (cell < rowMin) rowMin = cell;
    }
    if (hi < n) current[hi + 1] = far;
    // Every later cell descends from this row, and distances never shrink along a path.
    if (rowMin > bound) return far;
    const swap = previous;
    previous = current;
    current = swap;
  }
  return Math.min(previous[n] as number, far);
}

/** How many edits a term may be from a name: none for short terms, where one edit reaches most names. */
function typoBound(term: string): number {
  if (term.length < 4) return 0;
  return term.length <= 7 ? 1 : 2;
}

/**
 * Whether one term is within its typo bound of a name part, measured once per distinct part of a
 * `partTable` per search: the verdicts are the distance's, only not computed again for the next row holding
 * the same part. The worst query the endpoint takes (8 words, each a typo of a part every row shares) spent
 * most of its 270 ms at 100,000 rows measuring the same pair again.
 */
class TypoVerdicts {
  readonly #bound: number;
  readonly #term: string;
  /** Per table: 0 not measured yet, 1 within the bound, 2 beyond it. */
  readonly #byTable = new Map<readonly string[], Uint8Array>();
  #lastTable: readonly string[] | undefined;
  #last: Uint8Array = new Uint8Array(0);

  constructor(term: string) {
    this.#term = term;
    this.#bound = typoBound(term);
  }

  /** `matches(row)` when every part's verdict is already known, else undefined; measures nothing. */
  known(row: FoldedEntry): boolean | undefined {
    if (this.#bound === 0) return false;
    const verdicts = row.partTable === this.#lastTable ? this.#last : this.#byTable.get(row.partTable);
    if (verdicts === undefined) return undefined;
    let all = true;
    for (const id of row.partIds) {
      const verdict = verdicts[id];
      if (verdict === 1) return true;
      if (verdict === 0) all = false;
    }
    return all ? false : undefined;
  }

  /** True when some part of the row's name is within the bound (never for a term too short for typos). */
  matches(row: FoldedEntry): boolean {
    if (this.#bound === 0) return false;
    if (row.partTable !== this.#lastTable) {
      let verdicts = this.#byTable.get(row.partTable);
      if (verdicts === undefined) {
        verdicts = new Uint8Array(row.partTable.length);
        this.#byTable.set(row.partTable, verdicts);
      }
      this.#lastTable = row.partTable;
      this.#last = verdicts;
    }
    const verdicts = this.#last;
    for (const id of row.partIds) {
      let verdict = verdicts[id] as number;
      if (verdict === 0) {
        const part = row.partTable[id] as string;
        verdict = boundedLevenshtein(this.#term, part, this.#bound) <= this.#bound ? 1 : 2;
        verdicts[id] = verdict;
      }
      if (verdict === 1) return true;
    }
    return false;
  }
}

const EXACT = TIERS.indexOf('exact');
const PREFIX = TIERS.indexOf('prefix');
const SUBSTRING = TIERS.indexOf('substring');
const KEYWORD = TIERS.indexOf('keyword');
const DESCRIPTION = TIERS.indexOf('description');
const TYPO = TIERS.indexOf('typo');

/** Whether the term meets tier `tier`'s own condition in the row (a stronger tier's may hold too). */
function meets(tier: number, term: string, typos: TypoVerdicts, row: FoldedEntry): boolean {
  switch (tier) {
    case EXACT:
      return row.name === term;
    case PREFIX:
      return row.name.startsWith(term);
    case SUBSTRING:
      return row.name.includes(term) || row.displayName.includes(term);
    case KEYWORD:
      return row.keywords.some((k) => k.includes(term));
    case DESCRIPTION:
      return row.description.includes(term);
    default:
      return typos.matches(row);
  }
}

/**
 * The best tier one (folded) term reaches in one entry, strongest first, or undefined when it matches
 * nothing; or, when it reaches `floor` or better, `floor` itself. An entry ranks by its weakest term, so once one term has
 * reached `floor` another term's tier matters only if weaker: for such a term it is enough to find any
 * tier up to `floor`, asked weakest first (where the earlier term met the row, this one likely does too:
 * eight words each a typo of a part every row shares cost one pass over the rows, not eight), and only
 * when none holds are the weaker tiers tried in order. What the entry ranks by is the same either way.
 * The display name counts with the name, in the substring tier: people search by the name they see on a
 * page ("Kubecost Lens"), and a word of it says as much as a piece of the name does, more than a keyword.
 */
function termTier(term: string, typos: TypoVerdicts, row: FoldedEntry, floor: number): number | undefined {
  if (floor > EXACT) {
    // The typo's verdict first only when already measured: measuring costs more than a substring search.
    const known = floor >= TYPO ? typos.known(row) : undefined;
    if (known === true) return floor;
    for (let tier = Math.min(floor, DESCRIPTION); tier >= SUBSTRING; tier--)
      if (meets(tier, term, typos, row)) return floor;
    // The substring tier's condition holds wherever the exact one's or the prefix's does.
    if (floor < SUBSTRING && meets(floor, term, typos, row)) return floor;
    if (floor >= TYPO && known === undefined && typos.matches(row)) return floor;
  }
  for (let tier = floor > EXACT ? floor + 1 : EXACT; tier <= TYPO; tier++)
    if (meets(tier, term, typos, row)) return tier;
  return undefined;
}

/** The entry's tier for all terms (the weakest term's), or undefined when a term matches nothing. */
function entryTier(
  terms: readonly string[],
  typos: readonly TypoVerdicts[],
  row: FoldedEntry,
): number | undefined {
  let weakest = EXACT;
  for (let i = 0; i < terms.length; i++) {
    const tier = termTier(terms[i] as string, typos[i] as TypoVerdicts, row, weakest);
    if (tier === undefined) return undefined;
    if (tier > weakest) weakest = tier;
  }
  return weakest;
}

/** The query's filters, folded once (a row's are folded): an absent filter holds for every row. */
interface Filters {
  readonly type: string | undefined;
  readonly provider: string | undefined;
  readonly capability: string | undefined;
}

function passesFilters(row: FoldedEntry, filters: Filters): boolean {
  const { type, provider, capability } = filters;
  if (type !== undefined && row.type !== type) return false;
  if (provider !== undefined && !row.providers.includes(provider)) return false;
  if (capability !== undefined && !row.capabilities.includes(capability)) return false;
  return true;
}

/**
 * Searches the entries of every source, best first.
 *
 * Tiers, strongest first: exact name, name prefix, name (or display name) substring, keyword, description,
 * then a typo-tolerant name match (Levenshtein distance <= 1 for terms of 4-7 characters, <= 2 for longer,
 * against the name and each of its '-'-separated parts). Case-insensitive, and blind to the Unicode form
 * (NFC or NFD) of the query and the rows (`foldText`); terms are split on whitespace,
 * and a word given twice counts once (`searchTerms`). Several terms: every term must match something (AND), and the entry ranks by its weakest term. The
 * `type`, `provider` and `capability` filters must all hold. No terms: every entry passing the filters, as
 * match `all`, sorted by name, then priority, then registry name. Ties within a tier: by priority (1 before
 * 2), then name, then registry name. The same name in
 * two registries gives two hits: the user picks one with `--registry`.
 *
 * @example searchPlugins(sources, { terms: ['kubecots'] }) // kubecost-lens, match 'typo'
 */
export function searchPlugins(sources: readonly SearchSource[], query: SearchQuery): SearchHit[] {
  const ranking = rank(sources, query, Number.POSITIVE_INFINITY);
  for (let step = ranking.next(); ; step = ranking.next()) if (step.done) return step.value;
}

/** Rows ranked between two turns of the event loop by `searchPluginsInSlices`: about 5 ms of the worst query. */
export const SEARCH_SLICE_ROWS = 10_000;

/**
 * `searchPlugins`, the same hits in the same order, ranked `sliceRows` rows at a time with a turn of the
 * event loop between slices (`setImmediate`), so a server that ranks 100,000 rows answers its other clients
 * meanwhile: the worst query the endpoint takes still costs tens of milliseconds there, held at once.
 */
export async function searchPluginsInSlices(
  sources: readonly SearchSource[],
  query: SearchQuery,
  sliceRows = SEARCH_SLICE_ROWS,
): Promise<SearchHit[]> {
  const ranking = rank(sources, query, sliceRows);
  for (let step = ranking.next(); ; step = ranking.next()) {
    if (step.done) return step.value;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/** The ranking itself, pausing (a `yield`) after each `sliceRows` rows it has looked at. */
function* rank(
  sources: readonly SearchSource[],
  query: SearchQuery,
  sliceRows: number,
): Generator<void, SearchHit[]> {
  const terms = searchTerms(query.terms);
  const filters: Filters = {
    type: query.type === undefined ? undefined : foldText(query.type),
    provider: query.provider === undefined ? undefined : foldText(query.provider),
    capability: query.capability === undefined ? undefined : foldText(query.capability),
  };
  const typos = terms.map((term) => new TypoVerdicts(term));
  const ranked: { readonly tier: number; readonly hit: SearchHit }[] = [];
  let untilPause = sliceRows;
  for (const source of sources) {
    for (const row of source.folded ?? foldEntries(source.entries)) {
      if (--untilPause <= 0) {
        yield;
        untilPause = sliceRows;
      }
      if (!passesFilters(row, filters)) continue;
      const tier = terms.length === 0 ? TIERS.indexOf('all') : entryTier(terms, typos, row);
      if (tier === undefined) continue;
      const match = TIERS[tier] as MatchKind;
      const hit: SearchHit = {
        registry: source.registry,
        priority: source.priority,
        match,
        entry: row.entry,
        ...(row.lookAlikes === undefined ? {} : { lookAlikes: row.lookAlikes }),
      };
      ranked.push({ tier, hit });
    }
  }
  const byName = (a: SearchHit, b: SearchHit): number => compareStrings(a.entry.name, b.entry.name);
  const byPriority = (a: SearchHit, b: SearchHit): number => a.priority - b.priority;
  // A listing reads as a catalog (by name, one registry's copy beside the other's); a search puts the
  // preferred registry's hits first within a tier.
  const [first, second] = terms.length === 0 ? [byName, byPriority] : [byPriority, byName];
  ranked.sort(
    (a, b) =>
      a.tier - b.tier ||
      first(a.hit, b.hit) ||
      second(a.hit, b.hit) ||
      compareStrings(a.hit.registry, b.hit.registry),
  );
  return ranked.map((r) => r.hit);
}
