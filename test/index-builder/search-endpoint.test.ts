/**
 * The search endpoint's pure parts: reading a query string (form encoding, empty values, every refusal
 * with its code and parameter), and `SearchIndex` over a store a publish is writing to: it never answers
 * from a `search.json` whose digest the snapshot it read does not list, and reads each version once.
 */
import { describe, expect, it } from 'vitest';
import { sha256Hex } from '../../index-builder/digest.ts';
import type { SearchEntry } from '../../index-builder/model.ts';
import { foldEntries, MAX_SEARCH_TERMS } from '../../index-builder/search.ts';
import {
  answerSearch,
  DEFAULT_LIMIT,
  parseSearchQuery,
  SEARCH_ANSWERS_KEPT,
  SEARCH_PAGE_BYTES,
  type SearchAnswer,
  SearchIndex,
  SearchUnavailableError,
  searchAnswer,
  searchAnswerText,
} from '../../index-builder/search-endpoint.ts';
import { encode } from '../support/fixtures.ts';
import { MemoryStore } from '../support/memory-store.ts';

const OPTIONS = { contentType: 'application/json', cacheControl: 'no-store' };

function row(name: string, overrides: Partial<SearchEntry> = {}): SearchEntry {
  return {
    name,
    latest_version: '1.0.0',
    plugin_type: 'cost_source',
    providers: ['aws'],
    capabilities: ['actual_cost'],
    keywords: [],
    ...overrides,
  };
}

/** Publishes search.json with these rows and, unless `snapshot` is false, a snapshot listing it. */
async function publish(
  store: MemoryStore,
  generation: number,
  names: readonly string[],
  snapshot = true,
): Promise<void> {
  const body = encode(JSON.stringify({ schema: 'plugindex/search/v1', plugins: names.map((n) => row(n)) }));
  await store.put('search.json', body, OPTIONS);
  if (snapshot) await listIn(store, generation, sha256Hex(body));
}

async function listIn(store: MemoryStore, generation: number, sha256: string): Promise<void> {
  const snapshot = { generation, documents: { 'search.json': { sha256, size: 0 } } };
  await store.put('snapshot.json', encode(JSON.stringify(snapshot)), OPTIONS);
}

describe('when a query string is read', () => {
  it('decodes form encoding: + and %20 are spaces, filters any case, empty values absent', () => {
    expect(parseSearchQuery('q=kube+cost%20lens&provider=AWS&type=&capability=&limit=&offset=')).toEqual({
      ok: true,
      request: { q: 'kube cost lens', provider: 'aws', limit: DEFAULT_LIMIT, offset: 0 },
    });
    expect(parseSearchQuery('')).toEqual({ ok: true, request: { q: '', limit: 100, offset: 0 } });
    expect(parseSearchQuery('&&q&limit=5&offset=10&')).toEqual({
      ok: true,
      request: { q: '', limit: 5, offset: 10 },
    });
  });

  it.each([
    ['%FF=1', 'SEARCH_PARAMETER_MALFORMED', '%FF'],
    ['q%00=1', 'SEARCH_PARAMETER_MALFORMED', 'q%00'],
    ['v=abc', 'SEARCH_PARAMETER_UNKNOWN', 'v'],
    ['q=a&limit=2&q=a', 'SEARCH_PARAMETER_REPEATED', 'q'],
    [`q=${'é'.repeat(257)}`, 'SEARCH_PARAMETER_TOO_LONG', 'q'],
    [`provider=${'a'.repeat(65)}`, 'SEARCH_PARAMETER_TOO_LONG', 'provider'],
    ['q=a%0Ab', 'SEARCH_PARAMETER_INVALID', 'q'],
    ['limit=1.5', 'SEARCH_PARAMETER_INVALID', 'limit'],
    ['offset=1000001', 'SEARCH_PARAMETER_INVALID', 'offset'],
    ['limit=+5', 'SEARCH_PARAMETER_INVALID', 'limit'],
    ['q=a+b+c+d+e+f+g+h+i', 'SEARCH_PARAMETER_INVALID', 'q'],
  ])('refuses %s as %s naming %s', (query, code, parameter) => {
    const parsed = parseSearchQuery(query);
    expect(parsed).toMatchObject({ ok: false, refusal: { error: 'bad_request', code, parameter } });
  });

  it('counts the distinct words of q: a word repeated is one, more than MAX_SEARCH_TERMS are refused', () => {
    const repeated = parseSearchQuery(`q=${encodeURIComponent('teams '.repeat(42).trim())}`);
    expect(repeated).toMatchObject({ ok: true, request: { q: 'teams '.repeat(42).trim() } });
    const eight = Array.from({ length: MAX_SEARCH_TERMS }, (_, i) => `w${i}`);
    expect(parseSearchQuery(`q=${eight.join('+')}+W0+w1`).ok).toBe(true);
    expect(parseSearchQuery(`q=${[...eight, 'w8'].join('+')}`)).toEqual({
      ok: false,
      refusal: {
        error: 'bad_request',
        code: 'SEARCH_PARAMETER_INVALID',
        parameter: 'q',
        message: `q holds ${MAX_SEARCH_TERMS + 1} distinct words`,
        expected: `at most ${MAX_SEARCH_TERMS} distinct words`,
      },
    });
  });

  it("refuses any parameter given twice in one wording, limit and offset as the search's own", () => {
    for (const [query, parameter] of [
      ['limit=2&q=a&limit=3', 'limit'],
      ['offset=1&offset=1', 'offset'],
      ['q=a&q=a', 'q'],
      ['capability=&capability=', 'capability'],
    ] as const)
      expect(JSON.stringify(parseSearchQuery(query)), query).toBe(
        JSON.stringify({
          ok: false,
          refusal: {
            error: 'bad_request',
            code: 'SEARCH_PARAMETER_REPEATED',
            parameter,
            message: `${parameter} is given more than once`,
            expected: `${parameter} at most once`,
          },
        }),
      );
  });

  it('counts q in characters, not UTF-16 units: 256 of them pass', () => {
    expect(parseSearchQuery(`q=${encodeURIComponent('😀'.repeat(256))}`).ok).toBe(true);
    expect(parseSearchQuery(`q=${encodeURIComponent('😀'.repeat(257))}`)).toMatchObject({
      refusal: { code: 'SEARCH_PARAMETER_TOO_LONG' },
    });
  });
});

describe('when an answer is paged', () => {
  const rows = { generation: 7, entries: ['a1', 'a2', 'a3', 'a4', 'a5'].map((n) => row(n)) };
  it('cuts the ranking at offset and limit and says where the next page starts', () => {
    const page = (offset: number) => searchAnswer(rows, { q: 'a', limit: 2, offset });
    expect(page(0)).toMatchObject({ total: 5, next_offset: 2, generation: 7 });
    expect(page(4)).toMatchObject({ total: 5, next_offset: null });
    expect(page(4).results.map((r) => r.plugin.name)).toEqual(['a5']);
  });
});

describe('when plugins of other owners have names that read alike', () => {
  const A = 'A'.repeat(40);
  const B = 'B'.repeat(40);
  const rows = {
    generation: 3,
    entries: [
      row('aws-cost', { owners: [A] }),
      row('awscost', { owners: [B], providers: ['gcp'] }),
      row('aws-costs', { owners: [B] }),
      row('foo-cli', { owners: [A] }),
      row('foocli', { owners: [A] }),
    ],
  };
  const flagged = (answer: SearchAnswer): [string, readonly string[] | undefined][] =>
    answer.results.map((r) => [r.plugin.name, r.look_alikes]);

  it('ranks and filters as before, each result naming its look-alikes, across pages', () => {
    const whole = searchAnswer(rows, { q: 'cost', limit: 100, offset: 0 });
    expect(flagged(whole)).toEqual([
      ['aws-cost', ['awscost']],
      ['aws-costs', undefined],
      ['awscost', ['aws-cost']],
    ]);
    // The look-alike is named though the filter leaves it out of the results, and on a later page.
    expect(flagged(searchAnswer(rows, { q: 'cost', provider: 'aws', limit: 100, offset: 0 }))).toEqual([
      ['aws-cost', ['awscost']],
      ['aws-costs', undefined],
    ]);
    expect(flagged(searchAnswer(rows, { q: 'cost', limit: 1, offset: 2 }))).toEqual([
      ['awscost', ['aws-cost']],
    ]);
    // An owner's own second name is no look-alike to warn of.
    expect(flagged(searchAnswer(rows, { q: 'foo', limit: 100, offset: 0 }))).toEqual([
      ['foo-cli', undefined],
      ['foocli', undefined],
    ]);
  });

  it('writes look_alikes into the text beside the row, and leaves it out where there are none', () => {
    const answer = searchAnswer(rows, { q: 'cost', limit: 100, offset: 0 });
    const text = [...searchAnswerText(answer)].join('');
    expect(text).toBe(`${JSON.stringify(answer)}\n`);
    const parsed = JSON.parse(text) as SearchAnswer;
    expect(parsed.results[0]).toEqual({
      match: 'substring',
      plugin: rows.entries[0],
      look_alikes: ['awscost'],
    });
    expect(Object.keys(parsed.results[1] ?? {})).toEqual(['match', 'plugin']);
  });
});

describe('when an answer is written a piece at a time', () => {
  const rows = {
    generation: 3,
    entries: [
      row('plain'),
      // Quotes, backslashes, 4-byte emoji, a lone surrogate (escaped by JSON.stringify) and a control character.
      row('odd', { description: '"\\ 😀 \ud800 \u0001 é', keywords: ['x'.repeat(5000)] }),
      ...Array.from({ length: 40 }, (_, i) => row(`p${i}`, { description: 'd'.repeat(i * 37) })),
    ],
  };

  it.each([
    ['no results', { q: 'nothing-matches', limit: 100, offset: 0 }, 16 * 1024],
    ['one result', { q: 'plain', limit: 100, offset: 0 }, 16 * 1024],
    ['every result, in small pieces', { q: '', limit: 100, offset: 0 }, 500],
    ['every result, a piece each', { q: '', limit: 100, offset: 0 }, 1],
  ])('makes the text JSON.stringify makes, with %s', (_, request, pieceChars) => {
    const answer = searchAnswer(rows, request);
    const pieces = [...searchAnswerText(answer, pieceChars)];

    expect(pieces.join('')).toBe(`${JSON.stringify(answer)}\n`);
    expect(
      Buffer.concat(pieces.map((p) => Buffer.from(p))).equals(Buffer.from(`${JSON.stringify(answer)}\n`)),
    ).toBe(true);
  });

  it('cuts the text between results, never much past the piece size but for one long row', () => {
    const answer = searchAnswer(rows, { q: '', limit: 100, offset: 0 });
    const pieces = [...searchAnswerText(answer, 2000)];
    const longest = Math.max(...answer.results.map((r) => JSON.stringify(r).length));

    expect(pieces.length).toBeGreaterThan(5);
    for (const piece of pieces) expect(piece.length).toBeLessThan(2000 + longest + 1);
  });
});

describe('when q and the rows spell a letter in different Unicode forms', () => {
  // "café" composed (NFC, U+00E9) and decomposed (NFD, e then U+0301): the same text to whoever reads it.
  const nfc = 'caf\u00e9';
  const nfd = 'cafe\u0301';
  const rowsIn = async (displayName: string) => {
    const store = new MemoryStore();
    const plugins = [row('cafe-lens', { display_name: `${displayName} Lens` }), row('other')];
    const body = encode(JSON.stringify({ schema: 'plugindex/search/v1', plugins }));
    await store.put('search.json', body, OPTIONS);
    await listIn(store, 1, sha256Hex(body));
    // As both servers answer: the rows folded once for this version of search.json, kept by SearchIndex.
    return new SearchIndex(store).current();
  };
  const answer = (rows: Awaited<ReturnType<typeof rowsIn>>, q: string) => {
    const parsed = parseSearchQuery(`q=${encodeURIComponent(q)}`);
    if (!parsed.ok) throw new Error(parsed.refusal.message);
    return searchAnswer(rows, parsed.request);
  };

  it('answers an NFD q with an NFC row, and an NFC q with an NFD row, in its tier (not as a typo)', async () => {
    const nfcRows = await rowsIn(nfc);
    const nfdRows = await rowsIn(nfd);
    for (const [rows, q, published] of [
      [nfcRows, nfd, nfc],
      [nfdRows, nfc, nfd],
    ] as const) {
      const got = answer(rows, q);
      expect(got.results.map((r) => [r.plugin.name, r.match])).toEqual([['cafe-lens', 'substring']]);
      // The row and the query are answered as given: only the ranking reads them normalized.
      expect(got.results[0]?.plugin.display_name).toBe(`${published} Lens`);
      expect(got.query.q).toBe(q);
    }
  });
});

describe('when the rows of a page are large', () => {
  /**
   * As large as a manifest lets a row be: 256 tags of 64 characters, here 4-byte emoji (the bulk of a row)
   * and quotes and backslashes (twice their bytes once the body is a JSON string in the function's response).
   */
  function largeRow(i: number): SearchEntry {
    const keywords = Array.from({ length: 256 }, (_, k) =>
      k % 2
        ? `${String(k).padStart(3, '0')}${'😀'.repeat(61)}`
        : `${String(k).padStart(4, '0')}${'"\\'.repeat(30)}`,
    );
    return row(`large-${String(i).padStart(3, '0')}`, { keywords });
  }

  it('stops a page before its rows pass the byte budget, and next_offset leads to the rest', async () => {
    const store = new MemoryStore();
    const body = encode(JSON.stringify({ plugins: Array.from({ length: 100 }, (_, i) => largeRow(i)) }));
    await store.put('search.json', body, OPTIONS);
    await listIn(store, 1, sha256Hex(body));
    const index = new SearchIndex(store);
    const names: string[] = [];
    let offset: number | null = 0;
    let pages = 0;
    while (offset !== null) {
      const { status, body: answer } = await answerSearch(index, offset ? `offset=${offset}` : '');
      expect(status).toBe(200);
      const page = answer as SearchAnswer;
      expect(page).toMatchObject({ total: 100, offset, limit: DEFAULT_LIMIT });
      expect(page.results.length).toBeGreaterThan(0);
      // Counted as the rows travel in the search function's response: the body, as a JSON string.
      const rowBytes = page.results.reduce(
        (sum, r) => sum + Buffer.byteLength(JSON.stringify(JSON.stringify(r))),
        0,
      );
      expect(rowBytes).toBeLessThanOrEqual(SEARCH_PAGE_BYTES);
      const end = offset + page.results.length;
      expect(page.next_offset).toBe(end < 100 ? end : null);
      names.push(...page.results.map((r) => r.plugin.name));
      offset = page.next_offset;
      pages++;
    }
    // The default limit (100) would have taken every row at once: the budget cut the pages.
    expect(pages).toBeGreaterThan(1);
    expect(names).toEqual(Array.from({ length: 100 }, (_, i) => largeRow(i).name));
  });

  it('still answers a row larger than the budget on its own, so paging goes on', () => {
    const huge = row('huge', { description: 'x'.repeat(SEARCH_PAGE_BYTES + 1) });
    const page = searchAnswer(
      { generation: 1, entries: [huge, row('small')] },
      { q: '', limit: 10, offset: 0 },
    );
    expect(page.results.map((r) => r.plugin.name)).toEqual(['huge']);
    expect(page.next_offset).toBe(1);
  });
});

describe('when search.json is read through the snapshot', () => {
  it('answers from the version the snapshot lists, and reads it again only when that changes', async () => {
    const store = new MemoryStore();
    await publish(store, 1, ['one']);
    const index = new SearchIndex(store);
    expect(await index.current()).toMatchObject({ generation: 1, entries: [{ name: 'one' }] });
    // A refresh re-signs the snapshot (a new generation) without a new search.json: nothing read again.
    await listIn(store, 2, sha256Hex((await store.get('search.json'))?.body as Uint8Array));
    expect((await index.current()).generation).toBe(2);
    expect(index.reads).toBe(1);
    // The rows' lowercased fields, for the ranking, are made once per version too, not once per request.
    const kept = await index.current();
    expect(kept.folded).toEqual(foldEntries(kept.entries));
    expect((await index.current()).folded).toBe(kept.folded);
    await publish(store, 3, ['one', 'two']);
    expect(await index.current()).toMatchObject({
      generation: 3,
      entries: [{ name: 'one' }, { name: 'two' }],
    });
    expect(index.reads).toBe(2);
  });

  it('waits out a publish between search.json and its snapshot, and keeps the bytes it read', async () => {
    const store = new MemoryStore();
    await publish(store, 1, ['one']);
    await publish(store, 2, ['one', 'two'], false);
    const written = sha256Hex((await store.get('search.json'))?.body as Uint8Array);
    const index = new SearchIndex(store, {
      retryDelays: [1, 1, 1],
      // The publish's snapshot lands while the index waits.
      sleep: () => listIn(store, 2, written),
    });
    const fetched: string[] = [];
    const get = store.get.bind(store);
    store.get = async (key) => {
      fetched.push(key);
      return get(key);
    };
    expect(await index.current()).toMatchObject({
      generation: 2,
      entries: [{ name: 'one' }, { name: 'two' }],
    });
    // The new bytes were read once: the second snapshot listed them, so they were not fetched again.
    expect(fetched).toEqual(['snapshot.json', 'search.json', 'snapshot.json']);
  });

  it('refuses to answer from bytes no snapshot lists: SEARCH_SNAPSHOT_MOVING', async () => {
    const store = new MemoryStore();
    await publish(store, 1, ['one']);
    await publish(store, 2, ['one', 'two'], false);
    const index = new SearchIndex(store, { retryDelays: [1, 1], sleep: async () => {} });
    const error = await index.current().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SearchUnavailableError);
    expect(error).toMatchObject({ code: 'SEARCH_SNAPSHOT_MOVING' });
  });

  it('says SEARCH_NOT_PUBLISHED before any snapshot, and shares one read among concurrent callers', async () => {
    const store = new MemoryStore();
    const index = new SearchIndex(store);
    await expect(index.current()).rejects.toMatchObject({
      name: 'SearchUnavailableError',
      code: 'SEARCH_NOT_PUBLISHED',
    });
    await publish(store, 1, ['one']);
    const answers = await Promise.all([index.current(), index.current(), index.current()]);
    expect(answers.map((a) => a.generation)).toEqual([1, 1, 1]);
    expect(index.reads).toBe(1);
  });
});

describe('when the same question is asked again', () => {
  it('answers it from the answer kept, byte for byte, without ranking again', async () => {
    const store = new MemoryStore();
    await publish(store, 1, ['kube-cost', 'kube-lens', 'cost-lens']);
    const index = new SearchIndex(store);
    const text = async (query: string) => {
      const answer = await answerSearch(index, query);
      expect(answer.status).toBe(200);
      return [...searchAnswerText(answer.body as SearchAnswer)].join('');
    };
    const first = await text('q=Cost&provider=aws&limit=2');
    // The same parameters in another order and case are the same question, whose answer is the same text.
    expect(await text('limit=2&provider=AWS&q=Cost')).toBe(first);
    expect(await text('q=Cost&provider=aws&limit=2')).toBe(first);
    expect(index.rankings).toBe(1);
    // Another page, or another spelling of the words, is another question.
    expect(await text('q=Cost&provider=aws&limit=2&offset=1')).not.toBe(first);
    expect(await text('q=cost&provider=aws&limit=2')).not.toBe(first);
    expect(index.rankings).toBe(3);
  });

  it('ranks the rows again once the snapshot lists another search.json, and tells the new generation', async () => {
    const store = new MemoryStore();
    await publish(store, 1, ['kube-cost']);
    const index = new SearchIndex(store);
    const ask = async () => (await answerSearch(index, 'q=cost')).body as SearchAnswer;
    expect((await ask()).results.map((r) => r.plugin.name)).toEqual(['kube-cost']);
    await publish(store, 2, ['kube-cost', 'cost-lens']);
    const after = await ask();
    expect(after.generation).toBe(2);
    expect(after.results.map((r) => r.plugin.name)).toEqual(['cost-lens', 'kube-cost']);
    // A snapshot re-signed over the same search.json: the same rows, but the answer says its generation.
    await listIn(store, 3, sha256Hex((await store.get('search.json'))?.body as Uint8Array));
    const resigned = await ask();
    expect(resigned).toEqual({ ...after, generation: 3 });
    expect(index.rankings).toBe(3);
    expect(index.reads).toBe(2);
  });

  it('keeps at most SEARCH_ANSWERS_KEPT answers, letting go of the one asked least recently', async () => {
    const store = new MemoryStore();
    await publish(store, 1, ['kube-cost']);
    const index = new SearchIndex(store);
    const ask = (offset: number) => answerSearch(index, `q=cost&offset=${offset}`);
    for (let offset = 0; offset < SEARCH_ANSWERS_KEPT; offset++) await ask(offset);
    await ask(0); // asked again: now the most recent
    await ask(SEARCH_ANSWERS_KEPT); // one more: the oldest (offset 1) goes
    expect(index.rankings).toBe(SEARCH_ANSWERS_KEPT + 1);
    await ask(0);
    expect(index.rankings).toBe(SEARCH_ANSWERS_KEPT + 1);
    await ask(1);
    expect(index.rankings).toBe(SEARCH_ANSWERS_KEPT + 2);
  });
});
