/**
 * A plugin document's `look_alikes` (look-alike.ts `lookAlikesWithin`): the pairs `lookAlikesOf` flags in
 * search, on both plugins' signed documents, kept true as owners change. `aws-cost` and `awscost` are
 * published in one batch by one key (same hands, as before the rule refused the second), then their owners
 * are changed by owners actions on ONE of them: the other's document is rewritten in the same batch, bound to
 * the signed snapshot through its bin as every document is. A rebuild sets the field where a registry made
 * before it has none.
 */
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { StoreError } from '../../../index-builder/errors.ts';
import { LOOK_ALIKE_PREFIX, pluginPageKey } from '../../../index-builder/layout.ts';
import { processSubmissions, rebuildRegistry } from '../../../index-builder/pipeline/index.ts';
import type { KeyPair } from '../../../index-builder/signing.ts';
import type { Store } from '../../../index-builder/store.ts';
import { boundDocument, submitAction } from '../../support/actions.ts';
import {
  makeBundle,
  makeRegistry,
  type TestRegistry,
  testKey,
  validManifest,
} from '../../support/fixtures.ts';
import { documentOf, publish, verdicts } from '../../support/published.ts';
import { withMethod } from '../../support/stores.ts';

// A release before the field is this one with `lookAlikesWithin` finding nothing to set (`asBefore`): how a
// registry's documents came to hold pairs without it, signed, as the upgrade holds them to.
const release = vi.hoisted(() => ({ asBefore: false }));
vi.mock('../../../index-builder/look-alike.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../../index-builder/look-alike.ts')>();
  return {
    ...real,
    lookAlikesWithin: (group: Parameters<typeof real.lookAlikesWithin>[0]) =>
      release.asBefore ? [] : real.lookAlikesWithin(group),
  };
});

let registry: TestRegistry;
let publisher: KeyPair;
let operator: KeyPair;
let heir: KeyPair;

async function act(body: Parameters<typeof submitAction>[1], signer: KeyPair): Promise<void> {
  const submitted = await submitAction(registry.intake, body, signer);
  const { outcomes } = await processSubmissions(registry.context, [submitted.key]);
  expect(outcomes.map((o) => o.status)).toEqual(['accepted']);
}

const alikesOf = async (name: string) =>
  (await boundDocument(registry.site, registry.registryKey.publicKey, name)).look_alikes;

beforeAll(async () => {
  publisher = await testKey('publisher');
  operator = await testKey('operator');
  heir = await testKey('heir');
  registry = await makeRegistry({
    operators: [{ fingerprint: operator.fingerprint, key: operator.publicKey }],
  });
  const bundles = await Promise.all(
    ['aws-cost', 'awscost', 'cost-lens'].map((name) =>
      makeBundle({ manifest: validManifest({ name }), signer: publisher }),
    ),
  );
  expect(verdicts(await publish(registry, ...bundles)).map(([, verdict]) => verdict)).toEqual([
    'accepted',
    'accepted',
    'accepted',
  ]);
}, 60_000);

describe('when a pair of look-alike names is in one set of hands', () => {
  it('flags neither document', async () => {
    expect(await alikesOf('aws-cost')).toBeUndefined();
    expect(await alikesOf('awscost')).toBeUndefined();
  });
});

describe("when an action on one plugin changes the pair's owners", () => {
  it('flags both documents when a transfer gives one to another key', async () => {
    await act({ action: 'transfer', plugin: 'awscost', key: heir.publicKey }, operator);
    expect(await alikesOf('aws-cost')).toEqual([{ name: 'awscost', owners: [heir.fingerprint] }]);
    expect(await alikesOf('awscost')).toEqual([{ name: 'aws-cost', owners: [publisher.fingerprint] }]);
    expect(await alikesOf('cost-lens')).toBeUndefined();
  });

  it("writes the note on both plugins' pages with their documents, the other's included", async () => {
    const page = async (name: string) =>
      new TextDecoder().decode((await registry.site.get(pluginPageKey(name)))?.body);
    expect(await page('aws-cost')).toContain('looks like: awscost (other owner)</div>');
    expect(await page('awscost')).toContain('looks like: aws-cost (other owner)</div>');
    expect(await page('cost-lens')).not.toContain('looks like');
  });

  it('keeps both flagged, with the owners as they are now, while one owner is in common', async () => {
    await act({ action: 'owners-add', plugin: 'aws-cost', key: heir.publicKey }, publisher);
    expect(await alikesOf('aws-cost')).toEqual([{ name: 'awscost', owners: [heir.fingerprint] }]);
    expect((await alikesOf('awscost'))?.map((a) => [a.name, [...a.owners].sort()])).toEqual([
      ['aws-cost', [heir.fingerprint, publisher.fingerprint].sort()],
    ]);
  });

  it('clears both documents when an owners add makes the owner sets equal', async () => {
    await act({ action: 'owners-add', plugin: 'awscost', key: publisher.publicKey }, heir);
    expect(await alikesOf('aws-cost')).toBeUndefined();
    expect(await alikesOf('awscost')).toBeUndefined();
  });

  it('flags both documents again when an owners remove makes them differ', async () => {
    await act({ action: 'owners-remove', plugin: 'aws-cost', fingerprint: heir.fingerprint }, publisher);
    expect(await alikesOf('aws-cost')).toEqual([
      { name: 'awscost', owners: expect.arrayContaining([heir.fingerprint, publisher.fingerprint]) },
    ]);
    expect(await alikesOf('awscost')).toEqual([{ name: 'aws-cost', owners: [publisher.fingerprint] }]);
  });

  it('carries the flag over an ordinary publish of a later version', async () => {
    const bundle = await makeBundle({
      manifest: validManifest({ name: 'awscost', version: '1.1.0' }),
      signer: heir,
    });
    // Read back: no other plugin's document, nor the name index (an ordinary publish does no new work).
    const reads: string[] = [];
    const count = (store: Store) =>
      withMethod(store, 'get', (get) => (at) => {
        reads.push(at);
        return get(at);
      });
    const keys = await registry.submit(bundle);
    const result = await processSubmissions(
      { ...registry.context, site: count(registry.site), intake: count(registry.intake) },
      keys,
    );
    expect(verdicts(result.outcomes)).toEqual([['awscost', 'accepted', '']]);
    expect(reads).not.toContain('plugins/aws-cost/index.json');
    expect(reads.filter((key) => key.startsWith(LOOK_ALIKE_PREFIX))).toEqual([]);
    expect(await alikesOf('awscost')).toEqual([{ name: 'aws-cost', owners: [publisher.fingerprint] }]);
  });
});

describe("when a run dies writing the other plugin's document, after the log", () => {
  it('the retry of the owners action flags both documents, though the one it names is written already', async () => {
    const dying = await makeRegistry({
      operators: [{ fingerprint: operator.fingerprint, key: operator.publicKey }],
    });
    const bundles = await Promise.all(
      ['az-spend', 'azspend'].map((name) =>
        makeBundle({ manifest: validManifest({ name }), signer: publisher }),
      ),
    );
    await publish(dying, ...bundles);
    const transfer = await submitAction(
      dying.intake,
      { action: 'transfer', plugin: 'azspend', key: heir.publicKey },
      operator,
    );
    const put = dying.site.put.bind(dying.site);
    dying.site.put = async (key, body, options) => {
      if (key === 'plugins/az-spend/index.json') throw new StoreError('STORE_IO', key, 'injected failure');
      return put(key, body, options);
    };
    await expect(processSubmissions(dying.context, [transfer.key])).rejects.toMatchObject({
      name: 'StoreError',
      code: 'STORE_IO',
    });
    dying.site.put = put;
    // The plugin the action names is written with its new owners; the other is not.
    expect(documentOf(dying, 'azspend')?.owners).toEqual([heir.fingerprint]);
    expect(documentOf(dying, 'az-spend')?.look_alikes).toBeUndefined();

    await processSubmissions(dying.context, [transfer.key]);
    const bound = (name: string) => boundDocument(dying.site, dying.registryKey.publicKey, name);
    expect((await bound('az-spend')).look_alikes).toEqual([{ name: 'azspend', owners: [heir.fingerprint] }]);
    expect((await bound('azspend')).look_alikes).toEqual([
      { name: 'az-spend', owners: [publisher.fingerprint] },
    ]);
  }, 60_000);
});

describe("when a run dies writing a new plugin's document, after the other plugin's, flagged", () => {
  it('the retry binds the other document, written flagged already', async () => {
    // Prepare: gcp-bill published by `publisher`, who adds `heir`; gcpbill uploaded by `publisher` (other
    // hands: the pair is flagged). The run writes gcp-bill's document naming gcpbill, then fails writing
    // gcpbill's.
    const dying = await makeRegistry();
    const bundle = await makeBundle({ manifest: validManifest({ name: 'gcp-bill' }), signer: publisher });
    await publish(dying, bundle);
    const added = await submitAction(
      dying.intake,
      { action: 'owners-add', plugin: 'gcp-bill', key: heir.publicKey },
      publisher,
    );
    await processSubmissions(dying.context, [added.key]);
    const upload = await makeBundle({ manifest: validManifest({ name: 'gcpbill' }), signer: publisher });
    const key = 'incoming/gcpbill.tgz';
    await dying.intake.put(key, upload, { contentType: 'application/gzip', cacheControl: 'no-store' });
    const put = dying.site.put.bind(dying.site);
    let otherWritten: () => void = () => {};
    const other = new Promise<void>((resolve) => {
      otherWritten = resolve;
    });
    dying.site.put = async (at, body, options) => {
      if (at === 'plugins/gcpbill/index.json') {
        await other;
        throw new StoreError('STORE_IO', at, 'injected failure');
      }
      const written = await put(at, body, options);
      if (at === 'plugins/gcp-bill/index.json') otherWritten();
      return written;
    };
    await expect(processSubmissions(dying.context, [key])).rejects.toMatchObject({
      code: 'STORE_IO',
    });
    dying.site.put = put;
    const flagged = [{ name: 'gcpbill', owners: [publisher.fingerprint] }];
    expect(documentOf(dying, 'gcp-bill')?.look_alikes).toEqual(flagged);

    // Act
    const { outcomes } = await processSubmissions(dying.context, [key]);

    // Assert: both documents flagged and bound (before: the retry found gcp-bill's as it would render it,
    // changed nothing of it and committed the catalog's older line over it, DOCUMENT_MISMATCH for good).
    expect(outcomes.map((o) => o.status)).toEqual(['accepted']);
    const bound = (name: string) => boundDocument(dying.site, dying.registryKey.publicKey, name);
    expect((await bound('gcp-bill')).look_alikes).toEqual(flagged);
    expect((await bound('gcpbill')).look_alikes).toEqual([
      { name: 'gcp-bill', owners: expect.arrayContaining([publisher.fingerprint, heir.fingerprint]) },
    ]);
  }, 60_000);
});

describe('when a rebuild meets documents made before the field, or one whose field is stale', () => {
  it('sets it on both documents of a pair search flags, and drops one no pair stands for', async () => {
    const put = { contentType: 'application/json', cacheControl: 'no-cache' } as const;
    const edit = async (name: string, change: (doc: Record<string, unknown>) => void) => {
      const key = `plugins/${name}/index.json`;
      const doc = JSON.parse(new TextDecoder().decode(registry.site.objects.get(key)?.body));
      change(doc);
      await registry.site.put(key, new TextEncoder().encode(JSON.stringify(doc)), put);
    };
    // A registry whose pair was grandfathered before documents carried the field, and a stray flag.
    await edit('aws-cost', (doc) => delete doc.look_alikes);
    await edit('awscost', (doc) => delete doc.look_alikes);
    await edit('cost-lens', (doc) => {
      doc.look_alikes = [{ name: 'c0st-lens', owners: [heir.fingerprint] }];
    });
    await rebuildRegistry(registry.context);
    expect(await alikesOf('aws-cost')).toEqual([
      { name: 'awscost', owners: expect.arrayContaining([heir.fingerprint, publisher.fingerprint]) },
    ]);
    expect(await alikesOf('awscost')).toEqual([{ name: 'aws-cost', owners: [publisher.fingerprint] }]);
    expect(await alikesOf('cost-lens')).toBeUndefined();
  });
});

describe('when a rebuild sets the field', () => {
  it('reads again only the documents of a skeleton group of two or more (a lone plugin unflagged: none)', async () => {
    const reads = new Map<string, number>();
    const site = withMethod(registry.site, 'get', (get) => (at) => {
      reads.set(at, (reads.get(at) ?? 0) + 1);
      return get(at);
    });
    await rebuildRegistry({ ...registry.context, site });
    const of = (name: string) => reads.get(`plugins/${name}/index.json`) ?? 0;
    expect(of('cost-lens')).toBeGreaterThan(0);
    expect([of('aws-cost'), of('awscost')]).toEqual([of('cost-lens') + 1, of('cost-lens') + 1]);
  });
});

describe('when the first run after the upgrade meets a catalog of format 7, its pairs unflagged', () => {
  it('rebuilds, and sets the field on both documents of each pair, signed and bound', async () => {
    const before = await makeRegistry({
      operators: [{ fingerprint: operator.fingerprint, key: operator.publicKey }],
    });
    const bundles = await Promise.all(
      ['gcp-bill', 'gcpbill'].map((name) =>
        makeBundle({ manifest: validManifest({ name }), signer: publisher }),
      ),
    );
    await publish(before, ...bundles);
    release.asBefore = true;
    try {
      const transfer = await submitAction(
        before.intake,
        { action: 'transfer', plugin: 'gcpbill', key: heir.publicKey },
        operator,
      );
      await processSubmissions(before.context, [transfer.key]);
    } finally {
      release.asBefore = false;
    }
    const bound = (name: string) => boundDocument(before.site, before.registryKey.publicKey, name);
    expect((await bound('gcpbill')).owners).toEqual([heir.fingerprint]);
    expect((await bound('gcp-bill')).look_alikes).toBeUndefined();
    const meta = before.intake.objects.get('state/catalog/meta.tsv');
    if (!meta) throw new Error('missing meta.tsv');
    const older = new TextDecoder()
      .decode(meta.body)
      .replace(/^plugindex-catalog 8\n/, 'plugindex-catalog 7\n');
    expect(older.startsWith('plugindex-catalog 7\n')).toBe(true);
    before.intake.objects.set('state/catalog/meta.tsv', { ...meta, body: new TextEncoder().encode(older) });

    const next = await makeBundle({ manifest: validManifest({ name: 'new-one' }), signer: publisher });
    expect(verdicts(await publish(before, next))).toEqual([['new-one', 'accepted', '']]);
    expect((await bound('gcp-bill')).look_alikes).toEqual([{ name: 'gcpbill', owners: [heir.fingerprint] }]);
    expect((await bound('gcpbill')).look_alikes).toEqual([
      { name: 'gcp-bill', owners: [publisher.fingerprint] },
    ]);
    expect((await bound('new-one')).look_alikes).toBeUndefined();
  }, 60_000);
});
