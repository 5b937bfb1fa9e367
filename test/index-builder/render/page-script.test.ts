/**
 * The home page ranks as the client does: the page's copy of the ranking (page-script.ts RANKING_SOURCE, run
 * here as the browser runs it, from its text) against `searchPlugins` (index-builder/search.ts), on rows that reach
 * every tier, with filters, for one registry.
 */
import { describe, expect, it } from 'vitest';
import type { SearchEntry } from '../../../index-builder/model.ts';
import { PAGE_SCRIPT_HASHES } from '../../../index-builder/render/html.ts';
import {
  HOME_SCRIPT,
  LOOK_ALIKES_SOURCE,
  PARAMETERS_SOURCE,
  RANKING_SOURCE,
  VERSIONS_SCRIPT,
} from '../../../index-builder/render/page-script.ts';
import {
  lookAlikesOf,
  MAX_FILTER_LENGTH,
  MAX_QUERY_LENGTH,
  readSearchParameters,
  SEARCH_FIELDS,
  SEARCH_FILTER_VALUES,
  type SearchField,
  searchPlugins,
} from '../../../index-builder/search.ts';
import { parseSearchQuery } from '../../../index-builder/search-endpoint.ts';
import { seededRandom } from '../../support/random.ts';

interface PageQuery {
  q: string;
  type: string;
  provider: string;
  capability: string;
}
type Rank = (prepared: unknown, query: PageQuery) => SearchEntry[];

const page = new Function(`${RANKING_SOURCE}\nreturn { prepare: prepare, rank: rank };`)() as {
  prepare(rows: readonly SearchEntry[]): unknown;
  rank: Rank;
};

function row(name: string, extra: Partial<SearchEntry> = {}): SearchEntry {
  return {
    name,
    latest_version: '1.0.0',
    plugin_type: 'cost_source',
    providers: ['aws'],
    capabilities: ['actual_cost'],
    keywords: [],
    ...extra,
  };
}

/** "café" composed (NFC: é is U+00E9) and decomposed (NFD: e, then U+0301 COMBINING ACUTE ACCENT). */
const CAFE_NFC = 'caf\u00e9';
const CAFE_NFD = 'cafe\u0301';

const ROWS: SearchEntry[] = [
  row('kubecost'),
  row('kubecost-lens', { display_name: 'Kubecost Lens', keywords: ['kubernetes', 'FinOps'] }),
  row('aws-cost', { description: 'AWS Cost Explorer, for Kubernetes too', providers: ['AWS', 'kubernetes'] }),
  row('gcp-billing', { plugin_type: 'observability', providers: ['gcp'], capabilities: ['projected_cost'] }),
  row('lens-for-azure', { display_name: 'Azure lens', providers: ['azure'], keywords: ['cost'] }),
  row('opencost', { keywords: ['open-source', 'kubernetes'], deprecated: true }),
  row('cost-aggregator', { plugin_type: 'aggregator', description: 'Sums kubecost and friends' }),
  row('z-registry', { plugin_type: 'Registry', capabilities: ['Actual_Cost', 'forecast'] }),
  row('budgeteer', { description: 'budgets' }),
  row('budgets', { keywords: ['planning'] }),
  // The same letters in both Unicode forms: "Café" and "crème" composed (NFC) here, decomposed (NFD) below,
  // and a capital that lowercases to a sequence that composes (Ϊ́, U+03AA U+0301, to ΐ, U+0390).
  row('cafe-lens', { display_name: `${CAFE_NFC} Lens`, keywords: ['cr\u00e8me'] }),
  row('tea-notes', { display_name: `${CAFE_NFD} notes`, description: 'Cre\u0300me bru\u0302le\u0301e' }),
  row('greek-keys', { keywords: ['\u03aa\u0301'] }),
  ...Array.from({ length: 40 }, (_, i) =>
    row(`plugin-${String(i).padStart(3, '0')}`, { keywords: [`group-${i % 7}`], description: `number ${i}` }),
  ),
];

const QUERIES: Partial<PageQuery>[] = [
  {},
  { q: 'kubecost' },
  { q: 'kube' },
  { q: 'lens' },
  { q: 'cost' },
  { q: 'KUBERNETES' },
  { q: 'kubecots' },
  { q: 'opencots' },
  { q: 'budget' },
  { q: 'budgetz' },
  { q: 'cost kube' },
  { q: '  lens   azure ' },
  { q: 'plugin-01' },
  { q: 'group-3' },
  { q: 'plgin' },
  { q: 'number 1' },
  { q: 'nothing-matches-this' },
  { type: 'observability' },
  { type: 'registry' },
  { provider: 'aws' },
  { provider: 'KUBERNETES', q: 'cost' },
  { capability: 'actual_cost', q: 'z' },
  { capability: 'forecast' },
  { provider: 'aw' },
  { q: 'cost', type: 'aggregator' },
  { q: 'cost kube cost COST' },
  { q: 'lens lens nothing-matches-this lens' },
  { q: CAFE_NFC },
  { q: CAFE_NFD },
  { q: `${CAFE_NFD.toUpperCase()} lens` },
  { q: 'CRE\u0300ME' },
  { q: 'br\u00fbl\u00e9e' },
  { q: '\u0390' },
  { q: `${CAFE_NFC} ${CAFE_NFD}` },
];

describe('the home page search', () => {
  const prepared = page.prepare(ROWS);
  it.each(QUERIES.map((q) => [JSON.stringify(q), q] as const))('ranks %s as the client does', (_, q) => {
    const query = { q: '', type: '', provider: '', capability: '', ...q };
    const expected = searchPlugins([{ registry: 'r', priority: 1, entries: ROWS }], {
      terms: [query.q],
      ...(query.type ? { type: query.type } : {}),
      ...(query.provider ? { provider: query.provider } : {}),
      ...(query.capability ? { capability: query.capability } : {}),
    }).map((hit) => hit.entry.name);
    expect(page.rank(prepared, query).map((r) => r.name)).toEqual(expected);
  });

  it('finds NFC rows from an NFD query and NFD rows from an NFC query, in the tier the client gives them', () => {
    const client = (q: string) =>
      searchPlugins([{ registry: 'r', priority: 1, entries: ROWS }], { terms: [q] }).map((h) => [
        h.entry.name,
        h.match,
      ]);
    const expected = [
      ['cafe-lens', 'substring'],
      ['tea-notes', 'substring'],
    ];
    for (const q of [CAFE_NFC, CAFE_NFD]) {
      expect(client(q)).toEqual(expected);
      expect(page.rank(prepared, { q, type: '', provider: '', capability: '' }).map((r) => r.name)).toEqual(
        expected.map(([name]) => name),
      );
    }
  });

  it('reads a word given many times once, as the client does (each word is a pass over every row)', () => {
    // Every read of a prepared row counted: a repeated word must cost no more reads than the word once.
    let reads = 0;
    const counted = (page.prepare(ROWS) as object[]).map(
      (p) =>
        new Proxy(p, {
          get(target, key, receiver) {
            reads += 1;
            return Reflect.get(target, key, receiver);
          },
        }),
    );
    const readsFor = (q: string): number => {
      reads = 0;
      page.rank(counted, { q, type: '', provider: '', capability: '' });
      return reads;
    };
    const once = readsFor('kubernetes cost');
    expect(readsFor(`${'kubernetes cost '.repeat(1000)}KUBERNETES`)).toBe(once);
  });

  it('reaches every tier in these cases (so the comparison covers each)', () => {
    const matches = new Set(
      QUERIES.flatMap((q) =>
        searchPlugins([{ registry: 'r', priority: 1, entries: ROWS }], { terms: [q.q ?? ''] }).map(
          (h) => h.match,
        ),
      ),
    );
    expect([...matches].sort()).toEqual([
      'all',
      'description',
      'exact',
      'keyword',
      'prefix',
      'substring',
      'typo',
    ]);
  });
});

describe('the page scripts', () => {
  it('are allowed by hash, each of them, and only them', () => {
    expect(PAGE_SCRIPT_HASHES).toHaveLength(2);
    expect(new Set(PAGE_SCRIPT_HASHES).size).toBe(2);
  });

  it('write no markup from data: DOM calls and textContent only', () => {
    for (const script of [HOME_SCRIPT, VERSIONS_SCRIPT])
      expect(script).not.toMatch(
        /innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/,
      );
    // The one parse of markup: the versions script's, of the page's own noscript text.
    expect(HOME_SCRIPT).not.toContain('DOMParser');
    expect(VERSIONS_SCRIPT.match(/parseFromString\([^,]+,/g)).toEqual([
      'parseFromString(later[n - 2].textContent,',
    ]);
    expect(VERSIONS_SCRIPT).toContain("querySelectorAll('noscript.versions-page')");
  });
});

describe("when the home page reads a search's parameters (PARAMETERS_SOURCE)", () => {
  const readParameters = new Function(
    `${RANKING_SOURCE}\n${PARAMETERS_SOURCE}\nreturn readParameters;`,
  )() as (pairs: readonly (readonly [SearchField, string])[]) => unknown;
  const cases: (readonly (readonly [SearchField, string])[])[] = [
    [],
    [
      ['q', ''],
      ['provider', ''],
    ],
    [
      ['provider', ' AWS\t'],
      ['type', 'Cost_Source'],
      ['capability', '  '],
    ],
    [['provider', 'awz']],
    [['type', 'plugin']],
    [['capability', 'a ctual_cost']],
    [
      ['provider', 'aws'],
      ['provider', 'gcp'],
    ],
    [
      ['q', 'a'],
      ['q', 'a'],
    ],
    [['q', 'a b c d e f g h']],
    [['q', 'a b c d e f g h i']],
    [['q', 'a A a\u0301 \u00e1 b c d e f g']],
    [['q', 'x'.repeat(256)]],
    [['q', 'x'.repeat(257)]],
    [['q', 'e\u0301'.repeat(256)]],
    [['q', 'e\u0301'.repeat(257)]],
    [['provider', 'x'.repeat(65)]],
    [['q', 'cost\taws']],
    [['q', 'cost\u007f']],
    [['provider', 'aws\u0000']],
    [['provider', '\u00a0aws\u2003']],
    [
      ['type', 'ZZZ'],
      ['provider', 'zzz'],
    ],
  ];
  it('gives the verdict readSearchParameters gives, refusal or query, for every case', () => {
    for (const pairs of cases)
      expect(readParameters(pairs), JSON.stringify(pairs)).toEqual(readSearchParameters(pairs));
  });

  // Generated cases reach what the table above misses: a q with spaces around it (kept, not trimmed), a
  // length counted in code points (an astral letter is one, as the module counts it, not two code units),
  // two faults at once (which is told first), words split on any space (a no-break one too) and counted
  // once in either case or Unicode form, at the bound of distinct words, C1 controls (not refused),
  // characters trim() keeps (zero-width), NFKC forms NFC leaves alone (a fullwidth "ａｗｓ" is no provider),
  // and values at each length bound, composed, decomposed or astral.
  it('gives the verdict readSearchParameters gives on 4,000 generated cases', () => {
    const next = seededRandom(20261207); // the same cases on every run
    const pick = <T>(list: readonly T[]): T => list[next(list.length)] as T;
    const schema = Object.values(SEARCH_FILTER_VALUES).flat();
    const cased = (text: string) =>
      pick([text, text.toUpperCase(), text.replace(/^./, (c) => c.toUpperCase())]);
    const word = () =>
      pick([
        () => cased(pick(schema)),
        () => pick(['a', 'A', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'cost', 'Cost']),
        // One word in three spellings: composed, decomposed, capital.
        () => pick(['\u00e9', 'e\u0301', '\u00c9']),
      ])();
    // Spaces trim() and \s take (no-break, em, ideographic, BOM, line separator), and some they do not
    // (zero-width space, Mongolian vowel separator, NEL).
    const space = () =>
      pick([' ', ' ', '  ', '\u00a0', '\u2003', '\u3000', '\ufeff', '\u2028', '\u200b', '\u180e', '\u0085']);
    const odd = () =>
      pick([
        ...['\t', '\n', '\r', '\u0000', '\u001f', '\u007f', '\u0080', '\u009f'],
        // A capital that composes once lowercased, a ligature and fullwidth letters (NFKC would change them,
        // NFC does not), one whose NFC is two (U+0958), a capital I that lowercases to two, an astral letter
        // and a lone surrogate.
        ...['\u03aa\u0301', '\ufb01', '\uff41\uff57\uff53', '\u0958', '\u0130', '\u{1d49c}', '\ud800'],
      ]);
    const pad = () =>
      pick(['x', 'e\u0301', '\u{1d49c}', '\u0958', '\u00e9']).repeat(
        pick([MAX_QUERY_LENGTH, MAX_FILTER_LENGTH]) - 2 + next(5),
      );
    const [mix, words, one] = [
      // Any mix.
      () => Array.from({ length: next(8) }, () => pick([word, word, space, space, odd, pad])()).join(''),
      // Words and spaces, for q from 7 to 13 of them (some the same word, some joined by a space \s does not
      // take): each side of the bound of distinct words.
      (field: SearchField) =>
        Array.from({ length: field === 'q' ? 7 + next(7) : next(4) }, () => space() + word()).join('') +
        pick(['', space()]),
      // One word with spaces around it (often one of the field's own values), now and then something odd in it.
      (field: SearchField) =>
        [
          pick(['', space()]),
          field === 'q' || next(2) === 0 ? word() : cased(pick(SEARCH_FILTER_VALUES[field])),
          pick(['', '', odd()]),
          pick(['', space(), space() + space()]),
        ].join(''),
    ];
    for (let i = 0; i < 4000; i++) {
      // Mostly one or two pairs, a q mostly of words, a filter mostly one word: each fault alone, often.
      const pairs = Array.from({ length: 1 + next(3) }, (): readonly [SearchField, string] => {
        const field = pick(SEARCH_FIELDS);
        return [field, pick(field === 'q' ? [mix, words, words, one] : [mix, words, one, one, one])(field)];
      });
      expect(readParameters(pairs), JSON.stringify(pairs)).toEqual(readSearchParameters(pairs));
    }
  });
});

describe("when the home page reads a link's query string (readLink in PARAMETERS_SOURCE)", () => {
  const readLink = new Function(`${RANKING_SOURCE}\n${PARAMETERS_SOURCE}\nreturn readLink;`)() as (
    search: string,
  ) => { ok: boolean; problem?: unknown; query?: unknown };
  // Query strings of the search's own parameters only: the endpoint alone refuses the rest (limit, an
  // unknown name), which the page leaves alone.
  const cases = [
    '',
    '?q=cost',
    '?q=%E0%A4%A',
    '?provider=%ff',
    '?q=100%',
    '?q=a+b&provider=%20AWS',
    '?q=%E0%A4%A4',
    '?type=%C3',
    '?q=%00&provider=%ff',
    '?provider=%ff&q=%00',
    '?provider=aws&provider=%ff',
    '?%71=%ff',
    '?capability',
    '?&&q=x&&',
  ];
  it('gives the verdict GET /search gives (parseSearchQuery), refusal or query, for every case', () => {
    for (const search of cases) {
      const endpoint = parseSearchQuery(search.replace(/^\?/, ''));
      const page = readLink(search);
      if (endpoint.ok) {
        expect(page.ok, search).toBe(true);
        const { q, type, provider, capability } = endpoint.request;
        expect(page.query, search).toEqual({
          q,
          ...(type === undefined ? {} : { type }),
          ...(provider === undefined ? {} : { provider }),
          ...(capability === undefined ? {} : { capability }),
        });
      } else {
        const { error: _error, ...problem } = endpoint.refusal;
        expect(page, search).toEqual({ ok: false, problem });
      }
    }
  });

  it('refuses a value that is not percent-encoded UTF-8 with SEARCH_PARAMETER_MALFORMED, not as U+FFFD', () => {
    expect(readLink('?provider=%ff')).toEqual({
      ok: false,
      problem: {
        code: 'SEARCH_PARAMETER_MALFORMED',
        parameter: 'provider',
        message: 'the value of provider is not percent-encoded UTF-8 text',
        expected: 'percent-encoded UTF-8 text',
      },
    });
    // A name no search has is the page's, undecodable or not.
    expect(readLink('?page=%ff&%ff=1&q=cost')).toEqual({ ok: true, query: { q: 'cost' } });
  });
});

describe('when the home page flags look-alike names (LOOK_ALIKES_SOURCE)', () => {
  const lookAlikes = new Function(`${LOOK_ALIKES_SOURCE}\nreturn lookAlikes;`)() as (
    rows: readonly SearchEntry[],
  ) => (readonly string[] | undefined)[];
  const A = 'A'.repeat(40);
  const B = 'B'.repeat(40);
  const CASES: [string, SearchEntry[]][] = [
    ['a squat of another owner', [row('aws-cost', { owners: [A] }), row('awscost', { owners: [B] })]],
    ['digits read as letters', [row('awsc0st', { owners: [A] }), row('aws-cost', { owners: [B] })]],
    [
      'the same owners, in another order and case',
      [row('foo-cli', { owners: [A, B] }), row('foocli', { owners: [B.toLowerCase(), A] })],
    ],
    ['one owner in common', [row('foo-cli', { owners: [A] }), row('foocli', { owners: [A, B] })]],
    ['no owners on both sides', [row('foo-cli', { owners: [] }), row('foocli', { owners: [] })]],
    ['a row that does not say its owners', [row('foo-cli'), row('foocli', { owners: [B] })]],
    [
      'owners that are not strings',
      [row('foo-cli', { owners: [1] as unknown as string[] }), row('foocli', { owners: [B] })],
    ],
    [
      'three in a group',
      [row('a-b-c', { owners: [A] }), row('abc', { owners: [B] }), row('ab-c', { owners: [A] })],
    ],
    ['no look-alike', [row('kubecost', { owners: [A] }), row('opencost', { owners: [B] })]],
  ];

  it.each(CASES)('flags as lookAlikesOf does: %s', (_, rows) => {
    expect(lookAlikes(rows)).toEqual(lookAlikesOf(rows));
  });

  it('flags as lookAlikesOf does on 2,000 generated registries', () => {
    const random = seededRandom(62);
    const pick = <T>(values: readonly T[]): T => values[random(values.length)] as T;
    const owners = [A, B, 'C'.repeat(40), A.toLowerCase()];
    for (let n = 0; n < 2000; n++) {
      const names = new Set<string>();
      const count = 1 + random(8);
      while (names.size < count)
        names.add(
          Array.from({ length: 2 + random(4) }, () => pick(['a', 'o', 'l', '0', '1', '-', 'b'])).join(''),
        );
      const rows = [...names].map((name) => {
        const kind = random(6);
        if (kind === 0) return row(name);
        const set = Array.from({ length: kind === 1 ? 0 : 1 + random(2) }, () => pick(owners));
        return row(name, { owners: set });
      });
      expect(lookAlikes(rows), JSON.stringify(rows)).toEqual(lookAlikesOf(rows));
    }
  });
});
