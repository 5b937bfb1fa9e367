/**
 * Index documents merged rather than rendered (pipeline/commit.ts `mergedIndexDocuments`): a publish takes
 * every unchanged plugin's items from the published documents and renders only the changed ones. Every step
 * here runs on two registries, one merging and one made to render in full (its order file deleted before
 * each run), and their documents must be the same bytes; and a published document that is not the recorded
 * one, or a lost order, makes the run render in full.
 */
import { Buffer } from 'node:buffer';
import { beforeAll, describe, expect, it } from 'vitest';
import { forgetBins, JOURNAL_MAX_ENTRIES } from '../../../index-builder/catalog.ts';
import { StoreError } from '../../../index-builder/errors.ts';
import {
  CATALOG_META_KEY,
  CATALOG_ORDER_KEY,
  HOME_PAGE_KEY,
  INDEX_DOCUMENTS,
  INDEX_JSON_KEY,
  SEARCH_KEY,
} from '../../../index-builder/layout.ts';
import type { SnapshotDocument } from '../../../index-builder/model.ts';
import type { PipelineContext } from '../../../index-builder/pipeline/context.ts';
import { flushIndexes, processSubmissions } from '../../../index-builder/pipeline/index.ts';
import type { KeyPair } from '../../../index-builder/signing.ts';
import { verifyListedDocument } from '../../../index-builder/verify.ts';
import { submitAction } from '../../support/actions.ts';
import {
  makeBundle,
  recordingRegistry,
  type TestRegistry,
  testKey,
  validManifest,
} from '../../support/fixtures.ts';

let publisher: KeyPair;
beforeAll(async () => {
  publisher = await testKey('publisher');
});

const decoder = new TextDecoder();
const text = (registry: TestRegistry, key: string) => decoder.decode(registry.site.objects.get(key)?.body);

/**
 * A run as a process that starts cold runs it (every `plugindex publish`): without the bins a warm process
 * keeps, which it renders from instead of merging.
 */
type Step = (registry: TestRegistry, context: PipelineContext) => Promise<void>;

const cold = (registry: TestRegistry) => forgetBins(registry.intake);

const publish =
  (...plugins: [name: string, version: string, description?: string][]): Step =>
  async (registry, context) => {
    const bundles = await Promise.all(
      plugins.map(([name, version, description]) =>
        makeBundle({ manifest: validManifest({ name, version, ...(description ? { description } : {}) }) }),
      ),
    );
    const result = await processSubmissions(context, await registry.submit(...bundles));
    expect(result.outcomes.map((o) => o.status)).toEqual(plugins.map(() => 'accepted'));
  };

const deferred =
  (step: Step): Step =>
  (registry, context) =>
    step(registry, { ...context, deferIndexes: true });

const flush: Step = async (_, context) => {
  expect((await flushIndexes(context)).generation).not.toBeNull();
};

const yank =
  (plugin: string, version: string): Step =>
  async (registry, context) => {
    const { key } = await submitAction(registry.intake, { action: 'yank', plugin, version }, publisher);
    const result = await processSubmissions(context, [key]);
    expect(result.outcomes.map((o) => o.status)).toEqual(['accepted']);
  };

const STEPS: [string, Step][] = [
  ['a first plugin (rendered in full: there is no order yet)', publish(['m-plugin', '1.0.0'])],
  ['two inserted, before and after', publish(['c-plugin', '0.1.0'], ['x-plugin', '2.0.0'])],
  [
    'one replaced in the middle, with text of every UTF-8 length',
    publish(['m-plugin', '1.1.0', 'Coûts — 成本 🚀']),
  ],
  ['a first and a last, deferred', deferred(publish(['a-plugin', '1.0.0'], ['zz-plugin', '1.0.0']))],
  ['another deferred, replacing one of them', deferred(publish(['a-plugin', '1.1.0']))],
  ['the flush of the deferred ones', flush],
  ['a yank', yank('m-plugin', '1.0.0')],
  ['one more between', publish(['d-plugin', '3.0.0'])],
];

describe.each([
  ['buffered', {}],
  ['streamed', { streamIndexesOverBytes: 0 }],
] as const)('when the index documents are merged (%s)', (_, options) => {
  it('publishes at each step the bytes a full rendering publishes, bound by the snapshot', async () => {
    const merging = await recordingRegistry(options);
    const full = await recordingRegistry(options);
    for (const [i, [what, step]] of STEPS.entries()) {
      merging.reads.length = 0;
      full.registry.intake.objects.delete(CATALOG_ORDER_KEY);
      cold(merging.registry);
      cold(full.registry);
      await step(merging.registry, merging.context);
      await step(full.registry, full.context);
      const rendered = what !== STEPS[3]?.[0] && what !== STEPS[4]?.[0];
      // Merged into the published documents, once there are some (a deferred publish renders nothing).
      expect(merging.reads.includes(INDEX_JSON_KEY), what).toBe(i > 0 && rendered);
      expect(full.reads.includes(INDEX_JSON_KEY), what).toBe(false);
      const snapshot = JSON.parse(text(merging.registry, 'snapshot.json')) as SnapshotDocument;
      for (const key of [...INDEX_DOCUMENTS, HOME_PAGE_KEY]) {
        const bytes = merging.registry.site.objects.get(key)?.body as Uint8Array;
        const expected = full.registry.site.objects.get(key)?.body as Uint8Array;
        expect(Buffer.from(bytes).toString(), `${what}: ${key}`).toBe(Buffer.from(expected).toString());
        if (key !== HOME_PAGE_KEY) expect(() => verifyListedDocument(snapshot, key, bytes)).not.toThrow();
      }
    }
    const index = JSON.parse(text(merging.registry, INDEX_JSON_KEY)) as { plugins: { name: string }[] };
    expect(index.plugins.map((p) => p.name)).toEqual([
      'a-plugin',
      'c-plugin',
      'd-plugin',
      'm-plugin',
      'x-plugin',
      'zz-plugin',
    ]);
    expect(text(merging.registry, SEARCH_KEY)).toContain('成本 🚀');
    // The home page lists the first plugins, from the merged search rows.
    expect(text(merging.registry, HOME_PAGE_KEY)).toContain('a-plugin');
  });

  it.each([
    ['changed by hand', (registry: TestRegistry) => spoil(registry, INDEX_JSON_KEY)],
    [
      'changed by hand (the smallest one)',
      (registry: TestRegistry) => spoil(registry, 'falcoctl/index.yaml'),
    ],
    // search.json's first rows are read for the home page before a byte is written.
    [
      'changed by hand (search.json, whose first rows the home page takes)',
      (registry: TestRegistry) => spoil(registry, SEARCH_KEY),
    ],
    [
      "another generation's (search.json with one plugin more, as a run that died before its order file)",
      (registry: TestRegistry) => void oneMoreFirst(registry),
    ],
    ['without its order file', (registry: TestRegistry) => registry.intake.objects.delete(CATALOG_ORDER_KEY)],
    [
      'with an order file that is not the one the catalog names',
      (registry: TestRegistry) => spoil(registry.intake, CATALOG_ORDER_KEY),
    ],
  ])('renders in full when a published document is %s', async (_, damage) => {
    const merging = await recordingRegistry(options);
    const full = await recordingRegistry(options);
    for (const { registry, context } of [merging, full]) {
      await publish(['b-plugin', '1.0.0'], ['d-plugin', '1.0.0'])(registry, context);
      damage(registry);
      cold(registry);
      await publish(['c-plugin', '1.0.0'])(registry, context);
    }
    for (const key of INDEX_DOCUMENTS) {
      const bytes = merging.registry.site.objects.get(key)?.body as Uint8Array;
      expect(decoder.decode(bytes), key).toBe(text(full.registry, key));
      expect(decoder.decode(bytes), key).not.toContain('spoiled');
    }
    expect(JSON.parse(text(merging.registry, INDEX_JSON_KEY)).plugins).toHaveLength(3);
    // And the next publish merges again, into the documents rendered in full.
    merging.reads.length = 0;
    cold(merging.registry);
    await publish(['a-plugin', '1.0.0'])(merging.registry, merging.context);
    expect(merging.reads).toContain(INDEX_JSON_KEY);
    expect(JSON.parse(text(merging.registry, INDEX_JSON_KEY)).plugins).toHaveLength(4);
  });
});

describe("when a streamed search.json is not the recorded one past the home page's rows", () => {
  it("renders in full: the first rows, read by the order's lengths, do not parse", async () => {
    const { registry, context } = await recordingRegistry({ streamIndexesOverBytes: 0 });
    // More plugins than the home page lists, so its rows are read from the head alone.
    const names = Array.from({ length: 60 }, (_, i) => `p${String(i).padStart(2, '0')}-plugin`);
    await publish(...names.map((name): [string, string] => [name, '1.0.0']))(registry, context);
    await oneMoreFirst(registry);
    cold(registry);
    await publish(['zz-plugin', '1.0.0'])(registry, context);
    const published = JSON.parse(text(registry, SEARCH_KEY)) as { plugins: { name: string }[] };
    expect(published.plugins.map((p) => p.name)).toEqual([...names, 'zz-plugin']);
    const snapshot = JSON.parse(text(registry, 'snapshot.json')) as SnapshotDocument;
    expect(() =>
      verifyListedDocument(snapshot, SEARCH_KEY, registry.site.objects.get(SEARCH_KEY)?.body as Uint8Array),
    ).not.toThrow();
  });
});

/**
 * Rewrites search.json as another generation's rendering would be, with one plugin more before the others
 * (a run that died after it wrote the document, before its order file).
 */
async function oneMoreFirst(registry: TestRegistry): Promise<void> {
  const search = JSON.parse(text(registry, SEARCH_KEY)) as { plugins: { name: string }[] };
  search.plugins.unshift({ ...(search.plugins[0] as { name: string }), name: 'a-plugin' });
  const object = registry.site.objects.get(SEARCH_KEY);
  await registry.site.put(SEARCH_KEY, Buffer.from(JSON.stringify(search)), {
    contentType: object?.contentType ?? 'application/json',
    cacheControl: object?.cacheControl ?? 'no-cache',
  });
}

/** Rewrites an object with other bytes of the same size, as a hand edit would (a store's ETag follows). */
function spoil(store: TestRegistry | TestRegistry['intake'], key: string): void {
  const target = 'site' in store ? store.site : store;
  const object = target.objects.get(key);
  if (!object) throw new Error(`missing ${key}`);
  const body = Buffer.from(object.body);
  body.write('spoiled', Math.floor(body.byteLength / 2));
  void target.put(key, body, { contentType: object.contentType, cacheControl: object.cacheControl });
}

describe('when a process keeps every bin', () => {
  it('renders from the lines it holds rather than reading the published documents', async () => {
    const { registry, reads, context } = await recordingRegistry({});
    await publish(['b-plugin', '1.0.0'])(registry, context);
    reads.length = 0;
    await publish(['c-plugin', '1.0.0'])(registry, context);
    expect(reads).not.toContain(INDEX_JSON_KEY);
    expect(JSON.parse(text(registry, INDEX_JSON_KEY)).plugins).toHaveLength(2);
  });
});

describe('when a deferred publish writes its plugins into their bins', () => {
  it('names them unrendered in the meta file before any bin holds their new lines', async () => {
    const { registry, context } = await recordingRegistry({});
    await publish(['b-plugin', '1.0.0'])(registry, context);
    const meta = () => decoder.decode(registry.intake.objects.get(CATALOG_META_KEY)?.body);
    expect(meta()).toMatch(/^order\t[0-9a-f]{64}\t\d+$/m);
    // Every bin write fails: the run dies after the meta file says what the documents lag.
    const put = registry.intake.put.bind(registry.intake);
    registry.intake.put = async (key, body, options) => {
      if (key.startsWith('state/catalog/bins/')) throw new Error('the disk is full');
      return put(key, body, options);
    };
    // A full journal makes a deferred publish write its plugin's bin.
    for (let i = 0; i < JOURNAL_MAX_ENTRIES; i++) {
      const catalog = meta();
      expect(catalog).not.toContain('unrendered\tzz');
      await deferred(publish(['b-plugin', `1.0.${i + 1}`]))(registry, context);
    }
    await expect(deferred(publish(['zz-plugin', '1.0.0']))(registry, context)).rejects.toThrow(
      'the disk is full',
    );
    expect(meta()).toMatch(/^unrendered\tzz-plugin$/m);
    // Once the disk has room, the upload left in incoming/ is published and the documents list it.
    registry.intake.put = put;
    await processSubmissions(context);
    const index = JSON.parse(text(registry, INDEX_JSON_KEY)) as { plugins: { name: string }[] };
    expect(index.plugins.map((p) => p.name)).toEqual(['b-plugin', 'zz-plugin']);
    expect(text(registry, INDEX_JSON_KEY)).toContain(`"1.0.${JOURNAL_MAX_ENTRIES}"`);
  });
});

describe.each([
  ['buffered', {}],
  ['streamed', { streamIndexesOverBytes: 0 }],
] as const)('when a plugin document fails to be written during a merge (%s)', (_, options) => {
  it('fails with the store error rather than waiting for ever, and the retry publishes', async () => {
    const { registry, context } = await recordingRegistry(options);
    await publish(['b-plugin', '1.0.0'], ['d-plugin', '1.0.0'], ['f-plugin', '1.0.0'])(registry, context);
    cold(registry);
    const put = registry.site.put.bind(registry.site);
    let failing = true;
    registry.site.put = async (key, body, putOptions) => {
      if (failing && key === 'plugins/c-plugin/index.json')
        throw new StoreError('STORE_IO', key, 'the disk is full');
      return put(key, body, putOptions);
    };
    const [key] = await registry.submit(
      await makeBundle({ manifest: validManifest({ name: 'c-plugin', version: '1.0.0' }) }),
    );
    // The commit's writes wait for the plugin documents', and each compressed variant's write then fails
    // before it reads a chunk of the merged document: the merge must stop rather than wait for room.
    const failed = processSubmissions(context, [key as string]);
    await expect(failed).rejects.toBeInstanceOf(StoreError);
    await expect(failed).rejects.toMatchObject({ code: 'STORE_IO', message: 'the disk is full' });
    failing = false;
    const retried = await processSubmissions(context, [key as string]);
    expect(retried.outcomes.map((o) => o.status)).toEqual(['accepted']);
    expect(JSON.parse(text(registry, INDEX_JSON_KEY)).plugins.map((p: { name: string }) => p.name)).toEqual([
      'b-plugin',
      'c-plugin',
      'd-plugin',
      'f-plugin',
    ]);
  });
});
