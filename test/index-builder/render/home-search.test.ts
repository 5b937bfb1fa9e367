/**
 * home-search.json, the home page's compact form of search.json's rows: read back by the page's own `unpack`
 * (page-script.ts UNPACK_SOURCE, run here from its text as the browser runs it), it gives search.json's rows
 * exactly, field for field, whatever a row leaves out; and it is smaller than search.json.
 */
import { describe, expect, it } from 'vitest';
import { syntheticPages } from '../../../bench/synthetic-pages.ts';
import { HOME_SEARCH_KEY } from '../../../index-builder/layout.ts';
import type { SearchEntry } from '../../../index-builder/model.ts';
import { HOME_SEARCH_SCHEMA, renderHomeSearch } from '../../../index-builder/render/home-search.ts';
import { UNPACK_SOURCE } from '../../../index-builder/render/page-script.ts';
import { LOOK_ALIKES_SHOWN } from '../../../index-builder/search.ts';

const unpack = new Function(`${UNPACK_SOURCE}\nreturn unpack;`)() as (doc: unknown) => SearchEntry[];

const ROWS: SearchEntry[] = [
  {
    name: 'aws-cost',
    display_name: 'AWS Cost',
    description: 'Costs from "Cost Explorer" & friends',
    latest_version: '1.2.0',
    plugin_type: 'cost_source',
    providers: ['AWS', 'kubernetes'],
    capabilities: ['actual_cost'],
    keywords: ['finops', 'Cloud'],
  },
  // Nothing optional: no display name, no description, no stable release, empty lists.
  {
    name: 'bare',
    latest_version: null,
    plugin_type: 'registry',
    providers: [],
    capabilities: [],
    keywords: [],
  },
  {
    name: 'old-lens',
    description: '</script><b>ü</b> \u2028',
    latest_version: '0.1.0-beta.1',
    plugin_type: 'observability',
    providers: ['AWS', 'kubernetes'],
    capabilities: ['actual_cost'],
    keywords: ['finops', 'Cloud'],
    deprecated: true,
  },
  {
    name: 'same-lists',
    display_name: 'Same lists',
    latest_version: '2.0.0',
    plugin_type: 'cost_source',
    providers: ['kubernetes', 'AWS'],
    capabilities: ['actual_cost'],
    keywords: ['finops', 'Cloud'],
  },
];

describe('home-search.json', () => {
  it("reads back, by the page's own unpack, as search.json's rows exactly", () => {
    const doc = JSON.parse(renderHomeSearch(ROWS, '2026-12-01T00:00:00.000Z'));
    expect(doc.schema).toBe(HOME_SEARCH_SCHEMA);
    expect(doc.generated).toBe('2026-12-01T00:00:00.000Z');
    const rows = unpack(doc);
    expect(rows).toEqual(ROWS);
    // Left out where search.json leaves it out, not present as undefined or empty.
    expect(Object.keys(rows[1] as SearchEntry).sort()).toEqual(Object.keys(ROWS[1] as SearchEntry).sort());
    expect(Object.keys(rows[2] as SearchEntry).sort()).toEqual(Object.keys(ROWS[2] as SearchEntry).sort());
  });

  it("carries each row's look-alikes of other owners (lookAlikesOf), and not its owners", () => {
    const owned = (name: string, owners: string[], deprecated = false): SearchEntry => ({
      ...(ROWS[1] as SearchEntry),
      name,
      owners,
      ...(deprecated ? { deprecated } : {}),
    });
    const rows = [
      owned('aws-cost', ['A'.repeat(40)], true),
      owned('awsc0st', ['B'.repeat(40)]),
      owned('foo-cli', ['A'.repeat(40)]),
      owned('foocli', ['A'.repeat(40)]),
    ];
    const doc = JSON.parse(renderHomeSearch(rows, 'g'));
    expect(unpack(doc)).toEqual([
      { ...ROWS[1], name: 'aws-cost', deprecated: true, look_alikes: ['awsc0st'] },
      { ...ROWS[1], name: 'awsc0st', look_alikes: ['aws-cost'] },
      { ...ROWS[1], name: 'foo-cli' },
      { ...ROWS[1], name: 'foocli' },
    ]);
    // A row of none ends at its keywords or its deprecation, as it did before flags (an older page reads it).
    expect(doc.plugins.map((p: unknown[]) => p.length)).toEqual([10, 10, 8, 8]);
  });

  it('carries the first LOOK_ALIKES_SHOWN look-alikes of a row and the count of the rest, as the page shows them', () => {
    // It carried every one, though the page shows ten: a row as long as the registry's look-alike list.
    const squats = Array.from({ length: 30 }, (_, i) => `squat-name${'-'.repeat(i)}`);
    const rows = squats.map((name, i) => ({
      ...(ROWS[1] as SearchEntry),
      name,
      owners: [String(i).padStart(40, '0')],
    }));
    const doc = JSON.parse(renderHomeSearch(rows, 'g'));
    const unpacked = unpack(doc) as (SearchEntry & { look_alikes?: string[]; look_alikes_more?: number })[];
    for (const [i, row] of unpacked.entries()) {
      const others = squats.filter((_, j) => j !== i).sort();
      expect(row.look_alikes).toEqual(others.slice(0, LOOK_ALIKES_SHOWN));
      expect(row.look_alikes_more).toBe(others.length - LOOK_ALIKES_SHOWN);
    }
    expect(doc.plugins[0]).toHaveLength(11);
    // A row of ten or fewer carries no count (it ends at its list, as before).
    const few = JSON.parse(renderHomeSearch(rows.slice(0, LOOK_ALIKES_SHOWN + 1), 'g'));
    expect(few.plugins.map((p: unknown[]) => p.length)).toEqual(Array(LOOK_ALIKES_SHOWN + 1).fill(10));
    expect(unpack(few).every((r) => !('look_alikes_more' in r))).toBe(true);
  });

  it('writes each type and each list once, in order of first use (a list in another order is another list)', () => {
    const doc = JSON.parse(renderHomeSearch(ROWS, 'g'));
    expect(doc.strings).toEqual(['cost_source', 'registry', 'observability']);
    expect(doc.lists).toEqual([
      ['AWS', 'kubernetes'],
      ['actual_cost'],
      ['finops', 'Cloud'],
      [],
      ['kubernetes', 'AWS'],
    ]);
  });

  it('is less than half the bytes of search.json for a registry of synthetic plugins', () => {
    const built = syntheticPages({ name: 'R', url: 'https://registry.example.com' }, 1000, { versions: 1 });
    const size = (key: string) => Buffer.byteLength(built.files.find((f) => f.key === key)?.body ?? '');
    const rows = unpack(JSON.parse(built.files.find((f) => f.key === HOME_SEARCH_KEY)?.body ?? ''));
    // Every field but the owners search.json's rows carry for the client's look-alike flags: the page
    // shows none, and they would be most of its bytes (40 hex digits a row, few of them shared).
    expect(rows).toEqual(built.rows.map(({ owners: _owners, ...row }) => row));
    expect(size(HOME_SEARCH_KEY)).toBeGreaterThan(0);
    expect(size(HOME_SEARCH_KEY)).toBeLessThan(size('search.json') / 2);
  });
});
