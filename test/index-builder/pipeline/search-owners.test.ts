/**
 * The owners a `search.json` row carries, and so the look-alike flags `GET /search` gives, after each action
 * that changes a plugin's owners (`owners add`, `owners remove`, the operator's `transfer`): published at
 * once, and deferred then flushed by another process from the catalog's journal (as the publish function
 * does), so no path leaves a row naming former owners.
 */
import { describe, expect, it } from 'vitest';
import type { ActionBody } from '../../../index-builder/actions.ts';
import type { SearchDocument } from '../../../index-builder/model.ts';
import { flushIndexes, processSubmissions } from '../../../index-builder/pipeline/index.ts';
import { searchAnswer } from '../../../index-builder/search-endpoint.ts';
import type { KeyPair } from '../../../index-builder/signing.ts';
import { submitAction } from '../../support/actions.ts';
import {
  makeBundle,
  makeRegistry,
  type TestRegistry,
  testKey,
  validManifest,
} from '../../support/fixtures.ts';
import { MemoryStore } from '../../support/memory-store.ts';
import { publish, verdicts } from '../../support/published.ts';

const decoder = new TextDecoder();

function searchDocument(registry: TestRegistry): SearchDocument {
  const object = registry.site.objects.get('search.json');
  if (!object) throw new Error('missing search.json');
  return JSON.parse(decoder.decode(object.body)) as SearchDocument;
}

/** Each row's owners, and the look-alikes `GET /search` names beside it, by name. */
function flags(
  registry: TestRegistry,
): [string, readonly string[] | undefined, readonly string[] | undefined][] {
  const doc = searchDocument(registry);
  const answer = searchAnswer({ generation: 1, entries: doc.plugins }, { q: '', limit: 100, offset: 0 });
  return answer.results.map((r) => [r.plugin.name, r.plugin.owners, r.look_alikes]);
}

/** Another process over the same objects: stores of its own, nothing kept from the runs before. */
function cold(registry: TestRegistry): TestRegistry {
  const copy = (store: MemoryStore) => {
    const fresh = new MemoryStore();
    for (const [key, object] of store.objects) fresh.objects.set(key, object);
    return fresh;
  };
  const intake = copy(registry.intake);
  const site = copy(registry.site);
  const context = { ...registry.context, intake, site };
  return {
    ...registry,
    intake,
    site,
    context,
    submit: () => Promise.reject(new Error('submit actions with submitAction')),
  };
}

describe.each([
  ['published at once', false],
  ['deferred, then flushed from the journal by another process', true],
] as const)('when an action changes the owners of a look-alike (%s)', (_, deferred) => {
  it('rows carry the owners after each action, and the flags follow them', async () => {
    const publisher = await testKey('publisher');
    const heir = await testKey('heir');
    const operator = await testKey('operator');
    let registry = await makeRegistry({
      operators: [{ fingerprint: operator.fingerprint, key: operator.publicKey }],
    });
    // One owner may take a look-alike of its own plugin (look-alike.ts): published in one batch.
    const bundles = await Promise.all(
      ['aws-cost', 'awscost'].map((name) =>
        makeBundle({ manifest: validManifest({ name }), signer: publisher }),
      ),
    );
    expect(verdicts(await publish(registry, ...bundles)).map(([, verdict]) => verdict)).toEqual([
      'accepted',
      'accepted',
    ]);
    const P = publisher.fingerprint;
    const H = heir.fingerprint;
    expect(flags(registry)).toEqual([
      ['aws-cost', [P], undefined],
      ['awscost', [P], undefined],
    ]);

    let minute = 0;
    const act = async (body: ActionBody & { readonly plugin: string }, signer: KeyPair) => {
      minute += 1;
      const action = await submitAction(registry.intake, body, signer, {
        now: new Date(Date.parse('2026-10-31T12:00:00Z') + minute * 60_000),
      });
      const outcomes = await processSubmissions({ ...registry.context, deferIndexes: deferred }, [
        action.key,
      ]);
      expect(verdicts(outcomes.outcomes)).toEqual([[body.plugin, 'accepted', '']]);
      if (deferred) {
        // The action's catalog line is in the journal only, for the flush to read.
        expect([...registry.intake.objects.keys()].some((k) => k.includes('/journal/'))).toBe(true);
        registry = cold(registry);
        expect((await flushIndexes(registry.context)).generation).not.toBeNull();
      }
    };

    // A second owner on one of them: no longer the same hands, so both are flagged.
    await act({ action: 'owners-add', plugin: 'awscost', key: heir.publicKey }, publisher);
    expect(flags(registry)).toEqual([
      ['aws-cost', [P], ['awscost']],
      ['awscost', [P, H], ['aws-cost']],
    ]);
    // The first owner leaves it: another owner's look-alike.
    await act({ action: 'owners-remove', plugin: 'awscost', fingerprint: P }, heir);
    expect(flags(registry)).toEqual([
      ['aws-cost', [P], ['awscost']],
      ['awscost', [H], ['aws-cost']],
    ]);
    // The operator gives it back: the same hands again, nothing flagged.
    await act({ action: 'transfer', plugin: 'awscost', key: publisher.publicKey }, operator);
    expect(flags(registry)).toEqual([
      ['aws-cost', [P], undefined],
      ['awscost', [P], undefined],
    ]);
    // And gives the other away.
    await act({ action: 'transfer', plugin: 'aws-cost', key: heir.publicKey }, operator);
    expect(flags(registry)).toEqual([
      ['aws-cost', [H], ['awscost']],
      ['awscost', [P], ['aws-cost']],
    ]);
  }, 60_000);
});

describe.each([
  ['published at once', false],
  ['deferred, as the publish function runs', true],
] as const)('when the first run after the upgrade meets a catalog of format 6 (%s)', (_, deferred) => {
  it('takes the upload in it, records its outcome, and rebuilds every row with its owners', async () => {
    const publisher = await testKey('publisher');
    const registry = await makeRegistry();
    const names = ['aws-cost', 'awscost', 'other-one'];
    const bundles = await Promise.all(
      names.map((name) => makeBundle({ manifest: validManifest({ name }), signer: publisher })),
    );
    await publish(registry, ...bundles);
    // What the release before wrote: format 6, its search rows without owners.
    const meta = registry.intake.objects.get('state/catalog/meta.tsv');
    if (!meta) throw new Error('missing meta.tsv');
    const older = decoder.decode(meta.body).replace(/^plugindex-catalog 8\n/, 'plugindex-catalog 6\n');
    expect(older.startsWith('plugindex-catalog 6\n')).toBe(true);
    registry.intake.objects.set('state/catalog/meta.tsv', { ...meta, body: new TextEncoder().encode(older) });

    const keys = await registry.submit(
      await makeBundle({ manifest: validManifest({ name: 'aws-c0st' }), signer: await testKey('heir') }),
      await makeBundle({ manifest: validManifest({ name: 'new-one' }), signer: publisher }),
    );
    const result = await processSubmissions({ ...registry.context, deferIndexes: deferred }, keys);
    // A look-alike of another key's plugin, judged by the documents since the catalog's owners are not kept.
    expect(verdicts(result.outcomes)).toEqual([
      ['aws-c0st', 'rejected', 'NAME_TOO_SIMILAR'],
      ['new-one', 'accepted', ''],
    ]);
    for (const { id } of result.outcomes) expect(registry.intake.objects.has(`status/${id}.json`)).toBe(true);
    if (deferred) await flushIndexes(registry.context);
    expect(flags(registry).map(([name, owners]) => [name, owners?.length])).toEqual(
      ['aws-cost', 'awscost', 'new-one', 'other-one'].map((n) => [n, 1]),
    );
    expect(decoder.decode(registry.intake.objects.get('state/catalog/meta.tsv')?.body).split('\n')[0]).toBe(
      'plugindex-catalog 8',
    );
  }, 60_000);
});
