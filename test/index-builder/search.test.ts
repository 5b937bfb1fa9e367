/**
 * Search over hand-built `search.json` rows (model.ts SearchEntry) of two registries: the tiers in order,
 * typos, words in either Unicode form, several terms, the filters, and ties across registries.
 */
import { describe, expect, it } from 'vitest';
import { SearchQueryError } from '../../index-builder/errors.ts';
import type { SearchEntry } from '../../index-builder/model.ts';
import {
  boundedLevenshtein,
  checkSearchQuery,
  foldEntries,
  readSearchParameters,
  type SearchHit,
  type SearchSource,
  searchPlugins,
  searchPluginsInSlices,
  searchTerms,
} from '../../index-builder/search.ts';
import { seededRandom } from '../support/random.ts';

function entry(name: string, overrides: Partial<SearchEntry> = {}): SearchEntry {
  return {
    name,
    latest_version: '1.0.0',
    plugin_type: 'cost_source',
    providers: [],
    capabilities: [],
    keywords: [],
    ...overrides,
  };
}

const main: SearchSource = {
  registry: 'main',
  priority: 1,
  entries: [
    entry('cost', { description: 'The reference cost source', providers: ['aws'] }),
    entry('cost-explorer', { providers: ['AWS'], capabilities: ['cost_retrieval', 'forecasting'] }),
    entry('aws-cost', { providers: ['aws'], capabilities: ['cost_retrieval'] }),
    entry('lens', { display_name: 'Cost Lens', plugin_type: 'observability' }),
    entry('finops-tags', { keywords: ['Cost', 'tagging'], providers: ['azure'] }),
    entry('budget-alerts', { description: 'Alerts when the cost of a project passes its budget' }),
    entry('kubecost-lens', {
      display_name: 'Kubecost Lens',
      description: 'Kubernetes spend per namespace',
      providers: ['kubernetes'],
      keywords: ['k8s'],
    }),
    entry('metrics-bridge', { plugin_type: 'observability', providers: ['gcp'], keywords: ['prometheus'] }),
  ],
};

const mirror: SearchSource = {
  registry: 'acme',
  priority: 2,
  entries: [
    entry('cost', { description: "Acme's fork" }),
    entry('acme-cost', { providers: ['aws'] }),
    entry('costs-acme', { providers: ['aws'] }),
  ],
};

const names = (hits: readonly SearchHit[]): string[] =>
  hits.map((h) => `${h.registry}/${h.entry.name}:${h.match}`);

describe('when searching by one term', () => {
  it('ranks exact, prefix, substring, keyword, description; priority then name within a tier', () => {
    expect(names(searchPlugins([main, mirror], { terms: ['cost'] }))).toEqual([
      'main/cost:exact',
      'acme/cost:exact',
      'main/cost-explorer:prefix',
      'acme/costs-acme:prefix',
      'main/aws-cost:substring',
      'main/kubecost-lens:substring',
      'main/lens:substring',
      'acme/acme-cost:substring',
      'main/finops-tags:keyword',
      'main/budget-alerts:description',
    ]);
  });

  it('reads the display name with the name (substring tier)', () => {
    expect(names(searchPlugins([main], { terms: ['LENS'] }))).toEqual([
      'main/lens:exact',
      'main/kubecost-lens:substring',
    ]);
  });

  it('ignores case in names, keywords and descriptions', () => {
    expect(names(searchPlugins([main], { terms: ['KUBECOST-Lens'] }))).toEqual(['main/kubecost-lens:exact']);
    expect(names(searchPlugins([main], { terms: ['K8S'] }))).toEqual(['main/kubecost-lens:keyword']);
    expect(names(searchPlugins([main], { terms: ['NAMESPACE'] }))).toEqual([
      'main/kubecost-lens:description',
    ]);
  });
});

/** "café" composed (NFC: é is U+00E9) and decomposed (NFD: e, then U+0301 COMBINING ACUTE ACCENT). */
const CAFE_NFC = 'caf\u00e9';
const CAFE_NFD = 'cafe\u0301';

describe('when the query and the rows spell a letter in different Unicode forms', () => {
  // A name part "cafe" is one edit from either spelling: before normalization, that typo was all that matched.
  const unicode = (displayName: string, keyword: string, description: string): SearchSource => ({
    registry: 'main',
    priority: 1,
    entries: [
      entry('cafe-lens', { display_name: `${displayName} Lens` }),
      entry('menu-tags', { keywords: [keyword] }),
      entry('tea-notes', { description: `Notes from the ${description}` }),
    ],
  });
  const nfcRows = unicode(CAFE_NFC, 'cr\u00e8me', 'cr\u00e8me br\u00fbl\u00e9e');
  const nfdRows = unicode(CAFE_NFD, 'cre\u0300me', 'cre\u0300me bru\u0302le\u0301e');

  it('finds a row written in NFC from a query in NFD, in the tier the words reach, not as a typo', () => {
    expect(names(searchPlugins([nfcRows], { terms: [CAFE_NFD] }))).toEqual(['main/cafe-lens:substring']);
    expect(names(searchPlugins([nfcRows], { terms: ['CRE\u0300ME'] }))).toEqual([
      'main/menu-tags:keyword',
      'main/tea-notes:description',
    ]);
    expect(names(searchPlugins([nfcRows], { terms: ['bru\u0302le\u0301e'] }))).toEqual([
      'main/tea-notes:description',
    ]);
  });

  it('finds a row written in NFD from a query in NFC, the same way', () => {
    expect(names(searchPlugins([nfdRows], { terms: [CAFE_NFC] }))).toEqual(['main/cafe-lens:substring']);
    expect(names(searchPlugins([nfdRows], { terms: ['CR\u00c8ME'] }))).toEqual([
      'main/menu-tags:keyword',
      'main/tea-notes:description',
    ]);
    expect(names(searchPlugins([nfdRows], { terms: ['br\u00fbl\u00e9e'] }))).toEqual([
      'main/tea-notes:description',
    ]);
  });

  it('folds case before composing: a capital with no composed form matches its composed small letter', () => {
    // Ϊ́ (U+03AA U+0301) is already NFC; lowercased it is ϊ U+0301, which composes to ΐ (U+0390).
    // Composing first and lowercasing after would leave the row decomposed, and the two would differ.
    const greek: SearchSource = {
      registry: 'main',
      priority: 1,
      entries: [entry('greek', { keywords: ['\u03aa\u0301'] })],
    };
    expect(names(searchPlugins([greek], { terms: ['\u0390'] }))).toEqual(['main/greek:keyword']);
    expect(names(searchPlugins([greek], { terms: ['\u03b9\u0308\u0301'] }))).toEqual(['main/greek:keyword']);
  });

  it('reads a word in both forms as one word, and returns the rows as published', () => {
    expect(searchTerms([`${CAFE_NFC} ${CAFE_NFD}`])).toEqual([CAFE_NFC]);
    const [hit] = searchPlugins([nfdRows], { terms: [CAFE_NFC] });
    expect(hit?.entry.display_name).toBe(`${CAFE_NFD} Lens`);
  });
});

describe('when a term has a typo', () => {
  it('finds kubecost-lens from "kubecots" (two edits from its part "kubecost")', () => {
    expect(names(searchPlugins([main], { terms: ['kubecots'] }))).toEqual(['main/kubecost-lens:typo']);
  });

  it('allows one edit for terms of 4 to 7 characters, against the whole name too', () => {
    expect(names(searchPlugins([main], { terms: ['lenz'] }))).toEqual([
      'main/kubecost-lens:typo',
      'main/lens:typo',
    ]);
    expect(names(searchPlugins([main], { terms: ['metrix-bridge'] }))).toEqual(['main/metrics-bridge:typo']);
    expect(searchPlugins([main], { terms: ['lnzz'] })).toEqual([]);
  });

  it('allows none for terms under 4 characters, and no more than the bound for longer ones', () => {
    expect(searchPlugins([main], { terms: ['aws-cots-x'] })).toEqual([]);
    expect(searchPlugins([main], { terms: ['cot'] })).toEqual([]);
    expect(searchPlugins([main], { terms: ['kbcots'] })).toEqual([]);
  });

  it('ranks a typo below every other tier', () => {
    const sources: SearchSource[] = [
      {
        registry: 'main',
        priority: 1,
        entries: [entry('alpha-toll'), entry('tools'), entry('zeta', { description: 'a tool' })],
      },
    ];
    expect(names(searchPlugins(sources, { terms: ['tool'] }))).toEqual([
      'main/tools:prefix',
      'main/zeta:description',
      'main/alpha-toll:typo',
    ]);
  });
});

describe('when searching by several terms', () => {
  it('keeps only entries every term matches, ranked by the weakest term', () => {
    expect(names(searchPlugins([main, mirror], { terms: ['cost', 'reference'] }))).toEqual([
      'main/cost:description',
    ]);
    expect(names(searchPlugins([main, mirror], { terms: ['aws', 'cost'] }))).toEqual([
      'main/aws-cost:substring',
    ]);
    expect(names(searchPlugins([main], { terms: ['kubecost', 'namespace'] }))).toEqual([
      'main/kubecost-lens:description',
    ]);
  });

  it('splits a quoted phrase into its words', () => {
    expect(searchPlugins([main], { terms: ['kubecost  namespace'] })).toEqual(
      searchPlugins([main], { terms: ['kubecost', 'namespace'] }),
    );
  });

  it('finds nothing when one term matches nothing', () => {
    expect(searchPlugins([main, mirror], { terms: ['cost', 'zzzzzz'] })).toEqual([]);
  });

  it('reads a repeated word once (any case), and ranks as for the word alone', () => {
    const repeated = Array.from({ length: 14 }, () => 'cost COST Cost').join(' ');
    expect(searchTerms([repeated, 'cost'])).toEqual(['cost']);
    expect(searchTerms(['Kube  cost', 'kube'])).toEqual(['kube', 'cost']);
    expect(searchPlugins([main, mirror], { terms: [repeated] })).toEqual(
      searchPlugins([main, mirror], { terms: ['cost'] }),
    );
    expect(searchPlugins([main], { terms: ['kubecots kubecots'] })).toEqual(
      searchPlugins([main], { terms: ['kubecots'] }),
    );
  });

  it('ranks rows lowercased beforehand (foldEntries) exactly as it ranks them as they are', () => {
    for (const terms of [['cost'], ['COST lens'], ['kubecots'], [], ['k8s']])
      for (const filters of [
        {},
        { provider: 'AWS' },
        { type: 'Observability' },
        { capability: 'forecasting' },
      ]) {
        const query = { terms, ...filters };
        const folded = [main, mirror].map((s) => ({ ...s, folded: foldEntries(s.entries) }));
        expect(searchPlugins(folded, query)).toEqual(searchPlugins([main, mirror], query));
      }
  });
});

describe('when filtering', () => {
  it('keeps entries of the type, provider (any case) and capability, all at once', () => {
    expect(names(searchPlugins([main], { terms: ['cost'], provider: 'aws' }))).toEqual([
      'main/cost:exact',
      'main/cost-explorer:prefix',
      'main/aws-cost:substring',
    ]);
    expect(
      names(searchPlugins([main], { terms: ['cost'], provider: 'AWS', capability: 'forecasting' })),
    ).toEqual(['main/cost-explorer:prefix']);
    expect(names(searchPlugins([main], { terms: ['cost'], type: 'observability' }))).toEqual([
      'main/lens:substring',
    ]);
  });

  it('lists every entry passing the filters when there are no terms, by name', () => {
    expect(names(searchPlugins([main], { terms: [], type: 'observability' }))).toEqual([
      'main/lens:all',
      'main/metrics-bridge:all',
    ]);
    expect(names(searchPlugins([main], { terms: ['  '], provider: 'kubernetes' }))).toEqual([
      'main/kubecost-lens:all',
    ]);
  });

  it('finds nothing when no entry passes', () => {
    expect(searchPlugins([main, mirror], { terms: [], capability: 'teleportation' })).toEqual([]);
  });
});

describe('when two registries hold the same name', () => {
  it('gives a hit for each, the lower priority number first', () => {
    const hits = searchPlugins([mirror, main], { terms: ['cost'] });
    expect(names(hits).slice(0, 2)).toEqual(['main/cost:exact', 'acme/cost:exact']);
    expect(hits[0]).toEqual({ registry: 'main', priority: 1, match: 'exact', entry: main.entries[0] });
  });

  it('orders equal priorities by registry name', () => {
    const twin: SearchSource = { ...mirror, priority: 1 };
    expect(names(searchPlugins([main, twin], { terms: ['cost'] })).slice(0, 2)).toEqual([
      'acme/cost:exact',
      'main/cost:exact',
    ]);
  });

  it('lists by name first when there are no terms, each registry beside the other', () => {
    expect(names(searchPlugins([main, mirror], { terms: [] }))).toEqual([
      'acme/acme-cost:all',
      'main/aws-cost:all',
      'main/budget-alerts:all',
      'main/cost:all',
      'acme/cost:all',
      'main/cost-explorer:all',
      'acme/costs-acme:all',
      'main/finops-tags:all',
      'main/kubecost-lens:all',
      'main/lens:all',
      'main/metrics-bridge:all',
    ]);
  });
});

describe('when nothing matches', () => {
  it('returns no hits', () => {
    expect(searchPlugins([main, mirror], { terms: ['quantum'] })).toEqual([]);
    expect(searchPlugins([], { terms: ['cost'] })).toEqual([]);
  });
});

describe('when the typo distance is bounded', () => {
  /** The whole table, no band, no early exit: what the bounded distance must agree with. */
  function levenshtein(a: string, b: string): number {
    let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
      const current = [i];
      for (let j = 1; j <= b.length; j++)
        current.push(
          Math.min(
            (previous[j] as number) + 1,
            (current[j - 1] as number) + 1,
            (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1),
          ),
        );
      previous = current;
    }
    return previous[b.length] as number;
  }

  it('gives the true distance up to the bound and bound + 1 beyond it, on 50,000 pairs of short words', () => {
    // A small alphabet makes near pairs common; a fixed seed makes a failure reproducible.
    const next = seededRandom(12345);
    const word = (): string => Array.from({ length: next(13) }, () => 'ab-c'[next(4)]).join('');
    const mismatches: string[] = [];
    const cases = new Set<string>();
    for (let k = 0; k < 50_000; k++) {
      const [a, b, bound] = [word(), word(), next(4)];
      cases.add(`${a} ${b} ${bound}`);
      const expected = Math.min(levenshtein(a, b), bound + 1);
      if (boundedLevenshtein(a, b, bound) !== expected) mismatches.push(`${a} ${b} ${bound}`);
    }
    expect(mismatches).toEqual([]);
    // Over many pairs, not a few repeated (an LCG whose products lost their low bits gave 1,091 in all).
    expect(cases.size, 'distinct pairs and bounds').toBeGreaterThan(40_000);
    // Longer names after short ones: the kept rows grow and nothing of an earlier call leaks in.
    expect(boundedLevenshtein('kubecost', 'kubecots', 2)).toBe(2);
    expect(boundedLevenshtein(`${'x'.repeat(200)}a`, `${'x'.repeat(200)}b`, 1)).toBe(1);
    expect(boundedLevenshtein('kubecost', 'kubecost', 0)).toBe(0);
  });
});

describe('when rows share name parts and a query holds several words', () => {
  /**
   * The ranking as its documentation states it, with nothing kept between rows or terms: each term's best
   * tier tried strongest first in every row, the distance measured against every part of every name.
   */
  function reference(rows: readonly SearchEntry[], terms: readonly string[]): [string, string][] {
    const tiers = ['exact', 'prefix', 'substring', 'keyword', 'description', 'typo'];
    const tierOf = (term: string, row: SearchEntry): number | undefined => {
      const name = row.name.toLowerCase();
      const bound = term.length < 4 ? 0 : term.length <= 7 ? 1 : 2;
      const found = [
        name === term,
        name.startsWith(term),
        name.includes(term) || (row.display_name ?? '').toLowerCase().includes(term),
        row.keywords.some((k) => k.toLowerCase().includes(term)),
        (row.description ?? '').toLowerCase().includes(term),
        bound > 0 && [name, ...name.split('-')].some((p) => boundedLevenshtein(term, p, bound) <= bound),
      ].indexOf(true);
      return found === -1 ? undefined : found;
    };
    const hits: [number, string][] = [];
    for (const row of rows) {
      const found = terms.map((t) => tierOf(t, row));
      if (found.some((t) => t === undefined)) continue;
      hits.push([Math.max(...(found as number[])), row.name]);
    }
    hits.sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
    return hits.map(([tier, name]) => [name, tiers[tier] as string]);
  }

  it('ranks 2,000 random queries over rows of few distinct parts as the stated ranking does', () => {
    // Few letters and few parts, so most rows share parts and most words meet several tiers at once.
    const next = seededRandom(2024);
    const word = (min: number, max: number): string =>
      Array.from({ length: min + next(max - min + 1) }, () => 'abcde'[next(5)]).join('');
    const parts = Array.from({ length: 12 }, () => word(2, 9));
    const pick = () => parts[next(parts.length)] as string;
    const names = new Set<string>();
    while (names.size < 300) names.add(Array.from({ length: 1 + next(3) }, pick).join('-'));
    const rows = [...names].map((name) =>
      entry(name, {
        ...(next(3) === 0 ? { display_name: `${pick()} ${pick()}` } : {}),
        ...(next(2) === 0 ? { description: `${word(3, 8)} ${pick()} ${word(3, 8)}` } : {}),
        keywords: Array.from({ length: next(3) }, pick),
      }),
    );
    const source: SearchSource = { registry: 'r', priority: 1, entries: rows, folded: foldEntries(rows) };
    const differences: string[] = [];
    let typos = 0;
    for (let k = 0; k < 2000; k++) {
      // A word is random, or a part with a letter changed: a typo of a part many rows hold.
      const typo = (): string => {
        const part = pick();
        const at = next(part.length);
        return `${part.slice(0, at)}${'abcde'[next(5)]}${part.slice(at + 1)}`;
      };
      const terms = searchTerms([
        Array.from({ length: 1 + next(4) }, () => (next(2) ? typo() : word(1, 10))).join(' '),
      ]);
      const expected = reference(rows, terms);
      const got = searchPlugins([source], { terms }).map((h) => [h.entry.name, h.match]);
      if (JSON.stringify(got) !== JSON.stringify(expected)) differences.push(terms.join(' '));
      typos += expected.filter(([, match]) => match === 'typo').length;
    }
    expect(differences).toEqual([]);
    // The cases reach the tier the kept distances serve, often.
    expect(typos).toBeGreaterThan(1000);
  });
});

describe('when ranked in slices', () => {
  it('gives the same hits as at once, and lets other work run between the slices', async () => {
    const rows = Array.from({ length: 2000 }, (_, i) =>
      entry(`plugin-${String(i).padStart(4, '0')}`, { description: i % 2 ? 'cost' : 'usage' }),
    );
    const sources: SearchSource[] = [
      { registry: 'main', priority: 1, entries: rows },
      { registry: 'mirror', priority: 2, entries: rows.slice(0, 500) },
    ];
    for (const terms of [['pluginx', 'cost'], ['plugin-0042'], []]) {
      let ranked = false;
      const sliced = searchPluginsInSlices(sources, { terms }, 100).finally(() => {
        ranked = true;
      });
      // Another client's work, queued after the search began, runs before it ends.
      let ranBetween = false;
      setImmediate(() => {
        ranBetween = !ranked;
      });
      const hits = await sliced;
      expect(ranBetween).toBe(true);
      expect(hits).toEqual(searchPlugins(sources, { terms }));
    }
  });
});

describe('when a search names its parameters (readSearchParameters, the rule of all three ways to search)', () => {
  it('trims and lowercases a filter, and reads one of spaces only as none', () => {
    expect(
      readSearchParameters([
        ['provider', ' AWS\t'],
        ['type', '  '],
        ['q', ' cost '],
      ]),
    ).toEqual({
      ok: true,
      query: { q: ' cost ', provider: 'aws' },
    });
  });

  it('refuses at the first fault, naming the parameter', () => {
    expect(
      readSearchParameters([
        ['provider', 'aws'],
        ['capability', 'cost'],
        ['provider', 'gcp'],
      ]),
    ).toMatchObject({
      ok: false,
      problem: { code: 'SEARCH_PARAMETER_INVALID', parameter: 'capability' },
    });
    expect(
      readSearchParameters([
        ['q', 'a'],
        ['q', 'b'],
      ]),
    ).toMatchObject({
      ok: false,
      problem: { code: 'SEARCH_PARAMETER_REPEATED', parameter: 'q' },
    });
  });

  it('counts q in NFC: 256 decomposed letters are 256 characters, not 512', () => {
    expect(readSearchParameters([['q', 'e\u0301'.repeat(256)]]).ok).toBe(true);
    expect(readSearchParameters([['q', 'e\u0301'.repeat(257)]])).toMatchObject({
      ok: false,
      problem: { code: 'SEARCH_PARAMETER_TOO_LONG' },
    });
  });

  it('throws SearchQueryError for a library caller, and hands back the query read', () => {
    expect(() => checkSearchQuery({ terms: ['cost'], type: 'plugin' })).toThrow(
      expect.objectContaining({
        name: 'SearchQueryError',
        code: 'SEARCH_PARAMETER_INVALID',
        parameter: 'type',
      }),
    );
    expect(() => checkSearchQuery({ terms: ['cost'], type: 'plugin' })).toThrow(SearchQueryError);
    expect(checkSearchQuery({ terms: ['cost'], provider: ' Aws ', capability: '' })).toEqual({
      terms: ['cost'],
      provider: 'aws',
    });
  });
});

describe('when names look alike (the look-alike skeleton the registry refuses new names by)', () => {
  const A = 'A'.repeat(40);
  const B = 'B'.repeat(40);
  const alike: SearchSource = {
    registry: 'main',
    priority: 1,
    entries: [
      entry('aws-cost', { owners: [A] }),
      entry('awscost', { owners: [B] }),
      entry('aws-c0st', { owners: [A] }),
      entry('foo-cli', { owners: [A, B] }),
      entry('foocli', { owners: [B, A.toLowerCase()] }),
      entry('lone-cost', { owners: [B] }),
    ],
  };
  const flags = (hits: readonly SearchHit[]): [string, readonly string[] | undefined][] =>
    hits.map((h) => [h.entry.name, h.lookAlikes]);

  it("flags each hit with the look-alikes in other hands, and no owner's own second name (the same owners, in any order or case)", () => {
    expect(flags(searchPlugins([alike], { terms: [] }))).toEqual([
      ['aws-c0st', ['awscost']],
      ['aws-cost', ['awscost']],
      ['awscost', ['aws-c0st', 'aws-cost']],
      ['foo-cli', undefined],
      ['foocli', undefined],
      ['lone-cost', undefined],
    ]);
  });

  it("flags a look-alike that names the other plugin's owner among its own: sharing one is not the same hands", () => {
    // B, the owner of a grandfathered squat, adds A's public key as an owner (owners add needs only B's
    // signature): B can still publish awscost, so a user of aws-cost must still be told.
    const squat: SearchSource = {
      registry: 'main',
      priority: 1,
      entries: [entry('aws-cost', { owners: [A] }), entry('awscost', { owners: [B, A] })],
    };
    expect(flags(searchPlugins([squat], { terms: [] }))).toEqual([
      ['aws-cost', ['awscost']],
      ['awscost', ['aws-cost']],
    ]);
  });

  it('flags a look-alike the search did not match, and in slices as at once', async () => {
    const query = { terms: ['aws-cost'] };
    expect(flags(searchPlugins([alike], query))[0]).toEqual(['aws-cost', ['awscost']]);
    expect(flags(await searchPluginsInSlices([alike], query, 1))).toEqual(
      flags(searchPlugins([alike], query)),
    );
  });

  it('flags a plugin without owners beside any look-alike, since anyone may publish it', () => {
    const none: SearchSource = {
      registry: 'main',
      priority: 1,
      entries: [entry('aws-cost', { owners: [] }), entry('awscost', { owners: [A] })],
    };
    expect(flags(searchPlugins([none], { terms: [] }))).toEqual([
      ['aws-cost', ['awscost']],
      ['awscost', ['aws-cost']],
    ]);
  });

  it('flags nothing where a row does not say its owners (a registry that wrote its rows before them)', () => {
    const older: SearchSource = {
      registry: 'main',
      priority: 1,
      entries: [entry('aws-cost'), entry('awscost', { owners: [B] })],
    };
    expect(flags(searchPlugins([older], { terms: [] }))).toEqual([
      ['aws-cost', undefined],
      ['awscost', undefined],
    ]);
  });

  it("compares names within a registry, not with another registry's", () => {
    const other: SearchSource = {
      registry: 'acme',
      priority: 2,
      entries: [entry('awscost', { owners: [B] })],
    };
    const mine: SearchSource = {
      registry: 'main',
      priority: 1,
      entries: [entry('aws-cost', { owners: [A] })],
    };
    expect(flags(searchPlugins([mine, other], { terms: [] }))).toEqual([
      ['aws-cost', undefined],
      ['awscost', undefined],
    ]);
  });

  it('keeps the groups with the folded rows: made once, the same answer from rows folded beforehand', () => {
    const folded = foldEntries(alike.entries);
    expect(flags(searchPlugins([{ ...alike, folded }], { terms: ['cost'] }))).toEqual(
      flags(searchPlugins([alike], { terms: ['cost'] })),
    );
  });
});
