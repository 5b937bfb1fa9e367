import { beforeAll, describe, expect, it } from 'vitest';
import { StoreError } from '../../index-builder/errors.ts';
import {
  binOf,
  CATALOG_META_KEY,
  LOOK_ALIKE_COMPLETE_KEY,
  LOOK_ALIKE_PREFIX,
  lookAlikeBinKey,
} from '../../index-builder/layout.ts';
import { LookAlikeIndex, lookAlikeProblem, nameSkeleton } from '../../index-builder/look-alike.ts';
import { processSubmissions, rebuildRegistry } from '../../index-builder/pipeline/index.ts';
import type { KeyPair } from '../../index-builder/signing.ts';
import { submitAction } from '../support/actions.ts';
import {
  encode,
  makeBundle,
  makeRegistry,
  type TestRegistry,
  testKey,
  validManifest,
} from '../support/fixtures.ts';
import { MemoryStore } from '../support/memory-store.ts';
import { documentOf, intakeKeysUnder, publish, verdicts } from '../support/published.ts';
import { withMethod } from '../support/stores.ts';

let publisher: KeyPair;
let squatter: KeyPair;
let operator: KeyPair;
let heir: KeyPair;

beforeAll(async () => {
  publisher = await testKey('publisher');
  squatter = await testKey('squatter');
  operator = await testKey('operator');
  heir = await testKey('heir');
});

/** A registry with an operator (for a transfer), first-come ownership as by default. */
const registryWithOperator = (): Promise<TestRegistry> =>
  makeRegistry({ operators: [{ fingerprint: operator.fingerprint, key: operator.publicKey }] });

/** A bundle of plugin `name` at `version`, signed by `signer`. */
const bundleOf = (name: string, signer: KeyPair, version = '1.0.0'): Promise<Uint8Array> =>
  makeBundle({ manifest: validManifest({ name, version }), signer });

/** The index's objects in the intake store, by key. */
const indexKeys = (registry: TestRegistry): string[] => intakeKeysUnder(registry, LOOK_ALIKE_PREFIX);

describe('nameSkeleton', () => {
  it('drops separators and case, and reads 0 as o and 1 as l', () => {
    expect(nameSkeleton('aws-cost')).toBe('awscost');
    expect(nameSkeleton('awscost')).toBe('awscost');
    expect(nameSkeleton('aws-c0st')).toBe('awscost');
    expect(nameSkeleton('AWS_Cost.plugin')).toBe('awscostplugin');
    expect(nameSkeleton('ku1-ecost')).toBe('kulecost');
  });

  it('keeps letters apart that only a wider confusable table would merge', () => {
    expect(nameSkeleton('cost-api')).not.toBe(nameSkeleton('cost-apl'));
    expect(nameSkeleton('aws-cost')).not.toBe(nameSkeleton('aws-costs'));
  });
});

describe('lookAlikeProblem', () => {
  it('names the existing plugin, its owners and the rule under a stable code', () => {
    const found = lookAlikeProblem('awscost', [{ name: 'aws-cost', owners: ['F1'] }]);
    expect(found).toMatchObject({ code: 'NAME_TOO_SIMILAR', path: '/name', found: 'awscost' });
    expect(found.message).toContain('"aws-cost"');
    expect(found.message).toContain('separators');
    expect(found.expected).toContain('F1');
  });
});

describe('when the index is read and saved', () => {
  it('files new names in their skeleton bin and finds them from another batch', async () => {
    const intake = new MemoryStore();
    const site = new MemoryStore();
    const first = new LookAlikeIndex(intake, site);
    expect(await first.filedAlike('aws-cost')).toEqual([]);
    first.add('aws-cost');
    // Within the batch, before it is saved.
    expect(await first.filedAlike('awscost')).toEqual([{ name: 'aws-cost', owners: [] }]);
    await first.save();
    expect(intake.objects.has(LOOK_ALIKE_COMPLETE_KEY)).toBe(true);
    expect(new TextDecoder().decode(intake.objects.get(lookAlikeBinKey(binOf('awscost')))?.body)).toBe(
      'plugindex-names 2\nawscost\taws-cost\n',
    );
    const second = new LookAlikeIndex(intake, site);
    expect(await second.filedAlike('aws-c0st')).toEqual([{ name: 'aws-cost', owners: [] }]);
    expect(await second.filedAlike('aws-cost')).toEqual([]);
  });

  it('builds itself from the plugin folders when it is missing or of another format', async () => {
    const intake = new MemoryStore();
    const site = new MemoryStore();
    const put = { contentType: 'application/json', cacheControl: 'no-store' } as const;
    await site.put('plugins/aws-cost/index.json', encode('{}'), put);
    const index = new LookAlikeIndex(intake, site);
    expect(await index.filedAlike('awscost')).toEqual([{ name: 'aws-cost', owners: [] }]);
    index.add('awscost');
    await index.save();
    // The bins that hold a name, and the mark: not 256 bins for one name.
    expect([...intake.objects.keys()].sort()).toEqual(
      [lookAlikeBinKey(binOf('awscost')), LOOK_ALIKE_COMPLETE_KEY].sort(),
    );
    // A bin of another format: not trusted, built anew from the folders.
    await intake.put(lookAlikeBinKey(binOf('awscost')), encode('plugindex-names 0\n'), put);
    expect(await new LookAlikeIndex(intake, site).filedAlike('aws-cost')).toEqual([]);
    expect(await new LookAlikeIndex(intake, site).filedAlike('a-wscost')).toEqual([
      { name: 'aws-cost', owners: [] },
    ]);
  });
});

describe('when a new plugin is named like an existing one', () => {
  it('refuses another key the look-alike, naming the plugin and the rule, as its outcome', async () => {
    const registry = await makeRegistry();
    await publish(registry, await bundleOf('aws-cost', publisher));
    const outcomes = await publish(
      registry,
      await bundleOf('awscost', squatter),
      await bundleOf('aws-c0st', squatter),
      await bundleOf('aws-cost-l', squatter),
      await bundleOf('aws-costs', squatter),
    );
    expect(verdicts(outcomes)).toEqual([
      ['awscost', 'rejected', 'NAME_TOO_SIMILAR'],
      ['aws-c0st', 'rejected', 'NAME_TOO_SIMILAR'],
      ['aws-cost-l', 'accepted', ''],
      ['aws-costs', 'accepted', ''],
    ]);
    const refusal = outcomes[0]?.problems[0];
    expect(refusal?.message).toContain('"aws-cost"');
    expect(refusal?.message).toContain('"0" read as "o"');
    // Recorded like every refusal: its status record, and the upload filed under rejected/.
    const status = registry.intake.objects.get(`status/${outcomes[0]?.id}.json`);
    expect(JSON.parse(new TextDecoder().decode(status?.body))).toMatchObject({
      status: 'rejected',
      problems: [{ code: 'NAME_TOO_SIMILAR', path: '/name' }],
    });
    expect(documentOf(registry, 'awscost')).toBeUndefined();
    expect(documentOf(registry, 'aws-c0st')).toBeUndefined();
  });

  it('refuses the second of two look-alikes new in one batch', async () => {
    const registry = await makeRegistry();
    const outcomes = await publish(
      registry,
      await bundleOf('gcp-billing', publisher),
      await bundleOf('gcpbilling', squatter),
    );
    expect(verdicts(outcomes)).toEqual([
      ['gcp-billing', 'accepted', ''],
      ['gcpbilling', 'rejected', 'NAME_TOO_SIMILAR'],
    ]);
  });

  it("lets the existing plugin's owner take a look-alike of its own", async () => {
    const registry = await makeRegistry();
    await publish(registry, await bundleOf('aws-cost', publisher));
    expect(verdicts(await publish(registry, await bundleOf('awscost', publisher)))).toEqual([
      ['awscost', 'accepted', ''],
    ]);
    expect(documentOf(registry, 'awscost')?.owners).toEqual([publisher.fingerprint]);
  });

  it('leaves plugins that already collide as they are, and judges new names against both', async () => {
    const registry = await registryWithOperator();
    await publish(registry, await bundleOf('aws-cost', publisher), await bundleOf('awscost', publisher));
    // The operator gives one of them to another key: two look-alikes with other owners, as a registry made
    // before the rule may hold.
    const transfer = await submitAction(
      registry.intake,
      { action: 'transfer', plugin: 'awscost', key: heir.publicKey },
      operator,
    );
    expect(
      verdicts(await processSubmissions(registry.context, [transfer.key]).then((r) => r.outcomes)),
    ).toEqual([['awscost', 'accepted', '']]);
    expect(documentOf(registry, 'awscost')?.owners).toEqual([heir.fingerprint]);
    // Each keeps publishing; a third key's look-alike is refused, naming both.
    const outcomes = await publish(
      registry,
      await bundleOf('aws-cost', publisher, '2.0.0'),
      await bundleOf('awscost', heir, '2.0.0'),
      await bundleOf('aws-c0st', squatter),
    );
    expect(verdicts(outcomes)).toEqual([
      ['aws-cost', 'accepted', ''],
      ['awscost', 'accepted', ''],
      ['aws-c0st', 'rejected', 'NAME_TOO_SIMILAR'],
    ]);
    expect(outcomes[2]?.problems[0]?.message).toContain('"aws-cost", "awscost"');
    // An owner of only one of them is still refused for the other's sake.
    expect(verdicts(await publish(registry, await bundleOf('aws-co-st', heir)))).toEqual([
      ['aws-co-st', 'rejected', 'NAME_TOO_SIMILAR'],
    ]);
  });

  it('takes a name filed in the index whose plugin was never published (its run died before it)', async () => {
    const registry = await makeRegistry();
    await publish(registry, await bundleOf('gcp-billing', publisher));
    const index = new LookAlikeIndex(registry.intake, registry.site);
    index.add('aws-cost');
    await index.save();
    expect(verdicts(await publish(registry, await bundleOf('awscost', squatter)))).toEqual([
      ['awscost', 'accepted', ''],
    ]);
  });

  it('files no new name whose version the batch refused after judging it (its files refused for good)', async () => {
    const registry = await makeRegistry();
    await publish(registry, await bundleOf('gcp-billing', publisher));
    // The store refuses for good every file of the new plugin's version (as a folder standing in its way).
    const refuse = (key: string): void => {
      if (key.startsWith('plugins/aws-cost/1.0.0/'))
        throw new StoreError('STORE_REFUSED', key, `cannot write ${key}: refused`);
    };
    const { put, putStream } = registry.site;
    registry.site.put = (key, ...rest) => {
      refuse(key);
      return put.call(registry.site, key, ...rest);
    };
    registry.site.putStream = (key, ...rest) => {
      refuse(key);
      return putStream.call(registry.site, key, ...rest);
    };
    expect(verdicts(await publish(registry, await bundleOf('aws-cost', squatter)))).toEqual([
      ['aws-cost', 'rejected', 'SUBMISSION_WRITE_FAILED'],
    ]);
    // Not filed: a name refused is no plugin, and each one filed is a line every later lookup of its
    // skeleton reads (and a document read for it), never removed but by a rebuild.
    const bin = registry.intake.objects.get(lookAlikeBinKey(binOf('awscost')));
    expect(bin ? new TextDecoder().decode(bin.body) : '').not.toContain('aws-cost');
  });

  it('tells an upload refused for a plugin the batch then refused that the plugin never was', async () => {
    const registry = await makeRegistry();
    // The store refuses for good every file of the first upload's new plugin: the batch refuses it after
    // judging the later uploads against it.
    const { put } = registry.site;
    registry.site.put = (key, ...rest) => {
      if (key.startsWith('plugins/aws-cost/1.0.0/'))
        throw new StoreError('STORE_REFUSED', key, `cannot write ${key}: refused`);
      return put.call(registry.site, key, ...rest);
    };
    const outcomes = await publish(
      registry,
      await bundleOf('aws-cost', publisher),
      await bundleOf('awscost', squatter),
      await bundleOf('aws-cost', squatter, '2.0.0'),
    );
    // Not NAME_TOO_SIMILAR and PUBLISHER_NOT_OWNER, naming "a plugin another publisher owns" that never was.
    expect(verdicts(outcomes)).toEqual([
      ['aws-cost', 'rejected', 'SUBMISSION_WRITE_FAILED'],
      ['awscost', 'rejected', 'PUBLISH_DEPENDS_ON_REFUSED'],
      ['aws-cost', 'rejected', 'PUBLISH_DEPENDS_ON_REFUSED'],
    ]);
    expect(outcomes[1]?.problems[0]).toMatchObject({ path: '/name', found: 'aws-cost' });
    expect(outcomes[1]?.problems[0]?.message).toContain('refused as NAME_TOO_SIMILAR for "aws-cost"');
    expect(outcomes[2]?.problems[0]?.message).toContain('"aws-cost" was never published');
    expect(documentOf(registry, 'aws-cost')).toBeUndefined();
    // Submitted again, unchanged, they are judged anew.
    registry.site.put = put;
    expect(
      verdicts(
        await publish(
          registry,
          await bundleOf('aws-cost', squatter, '2.0.0'),
          await bundleOf('awscost', squatter),
        ),
      ),
    ).toEqual([
      ['aws-cost', 'accepted', ''],
      ['awscost', 'accepted', ''],
    ]);
  });

  it('takes any name when ownership is none: no one owns the original to be impersonated', async () => {
    const registry = await makeRegistry({ ownership: 'none' });
    await publish(registry, await bundleOf('aws-cost', publisher));
    expect(verdicts(await publish(registry, await bundleOf('awscost', squatter)))).toEqual([
      ['awscost', 'accepted', ''],
    ]);
  });
});

/** Runs `keys` as one batch through `registry`, counting the site's reads of each key. */
async function readsOf(
  registry: TestRegistry,
  keys: readonly string[],
): Promise<{ verdicts: string[][]; reads: Map<string, number> }> {
  const reads = new Map<string, number>();
  const site = withMethod(registry.site, 'get', (get) => (at) => {
    reads.set(at, (reads.get(at) ?? 0) + 1);
    return get(at);
  });
  const result = await processSubmissions({ ...registry.context, site }, keys);
  return { verdicts: verdicts(result.outcomes), reads };
}

/** The owners the index files beside `name` ('' for none), as its bin holds them. */
function filedOwners(registry: TestRegistry, name: string): string | undefined {
  const bin = new TextDecoder().decode(
    registry.intake.objects.get(lookAlikeBinKey(binOf(nameSkeleton(name))))?.body,
  );
  const line = bin.split('\n').find((l) => l.split('\t')[1] === name);
  return line === undefined ? undefined : (line.split('\t')[2] ?? '');
}

/** Runs one action signed by `signer`, expecting it accepted. */
async function act(registry: TestRegistry, body: Parameters<typeof submitAction>[1], signer: KeyPair) {
  const action = await submitAction(registry.intake, body, signer);
  const result = await processSubmissions(registry.context, [action.key]);
  expect(verdicts(result.outcomes)).toEqual([['plugin' in body ? body.plugin : '', 'accepted', '']]);
}

describe("when an owner's own look-alike is judged from the owners the index files", () => {
  it('allows it judging by the owners filed, and still refuses another key', async () => {
    const registry = await makeRegistry();
    await publish(registry, await bundleOf('aws-cost', publisher));
    expect(filedOwners(registry, 'aws-cost')).toBe(publisher.fingerprint);
    const own = await readsOf(registry, await registry.submit(await bundleOf('awscost', publisher)));
    expect(own.verdicts).toEqual([['awscost', 'accepted', '']]);
    // Read once, not for the judging (the owners filed allow it) but for the documents' `look_alikes`
    // (pipeline/actions.ts `refreshLookAlikes`): whether the pair is flagged depends on the other plugin's
    // whole owner set, which the index does not hold (it files only owners the document surely has).
    expect(own.reads.get('plugins/aws-cost/index.json') ?? 0).toBe(1);
    expect(verdicts(await publish(registry, await bundleOf('aws-c0st', squatter)))).toEqual([
      ['aws-c0st', 'rejected', 'NAME_TOO_SIMILAR'],
    ]);
  });

  it('refuses the former owner after a transfer, and allows the new one', async () => {
    const registry = await registryWithOperator();
    await publish(registry, await bundleOf('aws-cost', publisher));
    await act(registry, { action: 'transfer', plugin: 'aws-cost', key: heir.publicKey }, operator);
    // Filed again with the owners both documents hold (none): the new owner's look-alike reads the document.
    expect(filedOwners(registry, 'aws-cost')).toBe('');
    expect(verdicts(await publish(registry, await bundleOf('awscost', publisher)))).toEqual([
      ['awscost', 'rejected', 'NAME_TOO_SIMILAR'],
    ]);
    expect(verdicts(await publish(registry, await bundleOf('aws-c0st', heir)))).toEqual([
      ['aws-c0st', 'accepted', ''],
    ]);
  });

  it('refuses an owner removed, and allows the owners left', async () => {
    const registry = await makeRegistry();
    await publish(registry, await bundleOf('aws-cost', publisher));
    await act(registry, { action: 'owners-add', plugin: 'aws-cost', key: heir.publicKey }, publisher);
    // An owner added is not filed (a run that died before the log would leave the document without it).
    expect(filedOwners(registry, 'aws-cost')).toBe(publisher.fingerprint);
    await act(
      registry,
      { action: 'owners-remove', plugin: 'aws-cost', fingerprint: publisher.fingerprint },
      heir,
    );
    // Filed again with the owner both documents hold, the one left.
    expect(filedOwners(registry, 'aws-cost')).toBe(heir.fingerprint);
    expect(verdicts(await publish(registry, await bundleOf('awscost', publisher)))).toEqual([
      ['awscost', 'rejected', 'NAME_TOO_SIMILAR'],
    ]);
    expect(verdicts(await publish(registry, await bundleOf('aws-c0st', heir)))).toEqual([
      ['aws-c0st', 'accepted', ''],
    ]);
  });

  it('names no owner the document lacks when a transfer dies after the filing, before its log', async () => {
    const registry = await registryWithOperator();
    await publish(registry, await bundleOf('aws-cost', publisher));
    const transfer = await submitAction(
      registry.intake,
      { action: 'transfer', plugin: 'aws-cost', key: heir.publicKey },
      operator,
    );
    const dies = withMethod(registry.site, 'put', (put) => async (at, body, options) => {
      if (at.startsWith('log/')) throw new StoreError('STORE_IO', at, 'the run died here');
      return put(at, body, options);
    });
    await expect(processSubmissions({ ...registry.context, site: dies }, [transfer.key])).rejects.toThrow();
    // The document still names the publisher alone; the index files neither key.
    expect(documentOf(registry, 'aws-cost')?.owners).toEqual([publisher.fingerprint]);
    expect(filedOwners(registry, 'aws-cost')).toBe('');
    expect(verdicts(await publish(registry, await bundleOf('aws-c0st', heir)))).toEqual([
      ['aws-c0st', 'rejected', 'NAME_TOO_SIMILAR'],
    ]);
    expect(verdicts(await publish(registry, await bundleOf('awscost', publisher)))).toEqual([
      ['awscost', 'accepted', ''],
    ]);
  });

  it('reads a format-1 index as filing no owner, and writes its bins back in format 2', async () => {
    const registry = await makeRegistry();
    await publish(registry, await bundleOf('aws-cost', publisher));
    const put = { contentType: 'text/tab-separated-values', cacheControl: 'no-store' } as const;
    for (const key of indexKeys(registry)) registry.intake.objects.delete(key);
    await registry.intake.put(
      lookAlikeBinKey(binOf('awscost')),
      encode('plugindex-names 1\nawscost\taws-cost\n'),
      put,
    );
    await registry.intake.put(LOOK_ALIKE_COMPLETE_KEY, encode('plugindex-names 1\n'), put);
    // Not built anew: no folder listed; the owner's look-alike reads the document, as before format 2.
    const own = await readsOf(registry, await registry.submit(await bundleOf('awscost', publisher)));
    expect(own.verdicts).toEqual([['awscost', 'accepted', '']]);
    expect(own.reads.get('plugins/aws-cost/index.json')).toBe(1);
    expect(
      [...own.reads.keys()].filter((key) => key.startsWith('plugins/') && !key.includes('cost')),
    ).toEqual([]);
    expect(
      new TextDecoder().decode(registry.intake.objects.get(lookAlikeBinKey(binOf('awscost')))?.body),
    ).toBe(`plugindex-names 2\nawscost\taws-cost\nawscost\tawscost\t${publisher.fingerprint}\n`);
    expect(verdicts(await publish(registry, await bundleOf('aws-c0st', squatter)))).toEqual([
      ['aws-c0st', 'rejected', 'NAME_TOO_SIMILAR'],
    ]);
  });
  it('trusts no owner filed once a build before format 2 changed owners, until a rebuild files them again', async () => {
    const registry = await registryWithOperator();
    await publish(registry, await bundleOf('aws-cost', publisher));
    const meta = (): string =>
      new TextDecoder().decode(registry.intake.objects.get(CATALOG_META_KEY)?.body ?? new Uint8Array());
    // A build before format 2 transfers the plugin: it files nothing again (its bin is left as it was,
    // naming the former owner) and writes a meta file without the line it does not know.
    const binKey = lookAlikeBinKey(binOf('awscost'));
    const bin = registry.intake.objects.get(binKey)?.body as Uint8Array;
    await act(registry, { action: 'transfer', plugin: 'aws-cost', key: heir.publicKey }, operator);
    const put = { contentType: 'text/tab-separated-values', cacheControl: 'no-store' } as const;
    await registry.intake.put(binKey, bin, put);
    const older = meta()
      .split('\n')
      .filter((line) => line !== 'names\towners')
      .join('\n');
    await registry.intake.put(CATALOG_META_KEY, encode(older), put);
    expect(documentOf(registry, 'aws-cost')?.owners).toEqual([heir.fingerprint]);
    expect(filedOwners(registry, 'aws-cost')).toBe(publisher.fingerprint);
    // The former owner is refused from the document, as the owners filed are not trusted.
    const former = await readsOf(registry, await registry.submit(await bundleOf('awscost', publisher)));
    expect(former.verdicts).toEqual([['awscost', 'rejected', 'NAME_TOO_SIMILAR']]);
    expect(former.reads.get('plugins/aws-cost/index.json')).toBe(1);
    expect(verdicts(await publish(registry, await bundleOf('aws-c0st', heir)))).toEqual([
      ['aws-c0st', 'accepted', ''],
    ]);
    expect(meta().split('\n')).not.toContain('names\towners');
    // A rebuild files every plugin's owners anew, and its catalog says they are kept.
    await rebuildRegistry(registry.context);
    expect(meta().split('\n')).toContain('names\towners');
    expect(filedOwners(registry, 'aws-cost')).toBe(heir.fingerprint);
    const own = await readsOf(registry, await registry.submit(await bundleOf('aws-co-st', heir)));
    expect(own.verdicts).toEqual([['aws-co-st', 'accepted', '']]);
    // Once, for the documents' look_alikes (as above), not for the judging.
    expect(own.reads.get('plugins/aws-cost/index.json') ?? 0).toBe(1);
    expect(verdicts(await publish(registry, await bundleOf('awscost', publisher)))).toEqual([
      ['awscost', 'rejected', 'NAME_TOO_SIMILAR'],
    ]);
  });
  it('trusts no owner filed in a bin a batch read before the rebuild it ran, and wrote back after it', async () => {
    const registry = await registryWithOperator();
    await publish(registry, await bundleOf('aws-cost', publisher));
    // A build before format 2 transfers the plugin (its bin left naming the former owner, its meta file
    // without the line), then its rebuild dies: the meta file says one is under way.
    const binKey = lookAlikeBinKey(binOf('awscost'));
    const bin = registry.intake.objects.get(binKey)?.body as Uint8Array;
    await act(registry, { action: 'transfer', plugin: 'aws-cost', key: heir.publicKey }, operator);
    const put = { contentType: 'text/tab-separated-values', cacheControl: 'no-store' } as const;
    await registry.intake.put(binKey, bin, put);
    const meta = new TextDecoder().decode(registry.intake.objects.get(CATALOG_META_KEY)?.body);
    const lines = meta.split('\n').filter((line) => line !== 'names\towners' && line !== '');
    await registry.intake.put(CATALOG_META_KEY, encode(`${[...lines, 'rebuilding'].join('\n')}\n`), put);
    // The next batch reads that bin as it judges a new name filed in it (`heirtool669`, a name of its own),
    // the rebuild runs, and the bin is written back after it.
    expect(binOf('heirtool669')).toBe(binOf('awscost'));
    expect(verdicts(await publish(registry, await bundleOf('heir-tool669', heir)))).toEqual([
      ['heir-tool669', 'accepted', ''],
    ]);
    expect(verdicts(await publish(registry, await bundleOf('awscost', publisher)))).toEqual([
      ['awscost', 'rejected', 'NAME_TOO_SIMILAR'],
    ]);
  });
});

describe('when the index is lost or rebuilt', () => {
  it('builds it from the published plugins when the intake store has none', async () => {
    const registry = await makeRegistry();
    await publish(registry, await bundleOf('aws-cost', publisher));
    for (const key of indexKeys(registry)) registry.intake.objects.delete(key);
    expect(verdicts(await publish(registry, await bundleOf('awscost', squatter)))).toEqual([
      ['awscost', 'rejected', 'NAME_TOO_SIMILAR'],
    ]);
    expect(verdicts(await publish(registry, await bundleOf('azure-cost', squatter)))).toEqual([
      ['azure-cost', 'accepted', ''],
    ]);
    expect(indexKeys(registry).sort()).toEqual(
      [
        LOOK_ALIKE_COMPLETE_KEY,
        ...new Set(['awscost', 'azurecost'].map((s) => lookAlikeBinKey(binOf(s)))),
      ].sort(),
    );
  });

  it('keeps the index it built for a batch that accepted no new name, so the next one lists no folder', async () => {
    const registry = await makeRegistry();
    await publish(registry, await bundleOf('aws-cost', publisher));
    for (const key of indexKeys(registry)) registry.intake.objects.delete(key);
    const listed: string[] = [];
    const { list } = registry.site;
    registry.site.list = (prefix) => {
      listed.push(prefix);
      return list.call(registry.site, prefix);
    };
    // A batch whose one new name is refused: the index is built from the folders, once.
    expect(verdicts(await publish(registry, await bundleOf('awscost', squatter)))).toEqual([
      ['awscost', 'rejected', 'NAME_TOO_SIMILAR'],
    ]);
    const scans = (): number => listed.filter((prefix) => prefix.startsWith('plugins/')).length;
    const built = scans();
    expect(built).toBeGreaterThan(0);
    expect(registry.intake.objects.has(LOOK_ALIKE_COMPLETE_KEY)).toBe(true);
    // The next new name reads its bin: no folder is listed again (at 100,000 plugins, each batch's scan).
    expect(verdicts(await publish(registry, await bundleOf('aws-c0st', squatter)))).toEqual([
      ['aws-c0st', 'rejected', 'NAME_TOO_SIMILAR'],
    ]);
    expect(scans()).toBe(built);
  });

  it('refuses a rebuild over the new plugin a run that died logged before its document, its look-alike still refused', async () => {
    const registry = await makeRegistry();
    await publish(registry, await bundleOf('gcp-billing', publisher));
    // A run that dies after the log, before the new plugin's document.
    const dies = withMethod(registry.site, 'put', (put) => async (at, body, options) => {
      if (at === 'plugins/aws-cost/index.json') throw new StoreError('STORE_IO', at, 'the run died here');
      return put(at, body, options);
    });
    const keys = await registry.submit(await bundleOf('aws-cost', publisher));
    await expect(processSubmissions({ ...registry.context, site: dies }, keys)).rejects.toMatchObject({
      code: 'STORE_IO',
    });
    expect(documentOf(registry, 'aws-cost')).toBeUndefined();

    // A rebuild now refuses (it signed the snapshot over an entry no document shows: stuck-entries.ts),
    // nothing rewritten, the look-alike index the dead run filed left as it is.
    await expect(rebuildRegistry(registry.context)).rejects.toMatchObject({ code: 'LOGGED_PUBLISH_STUCK' });

    // The next batch finishes the logged publish before it judges a new name (its names owed), so a
    // look-alike in it is refused all the same.
    const outcomes = await publish(registry, await bundleOf('awscost', squatter));
    expect(verdicts(outcomes).find(([name]) => name === 'awscost')).toEqual([
      'awscost',
      'rejected',
      'NAME_TOO_SIMILAR',
    ]);
    expect(documentOf(registry, 'aws-cost')).toBeDefined();
  });

  it('writes it anew in a rebuild, every plugin filed, and still refuses look-alikes', async () => {
    const registry = await makeRegistry();
    await publish(registry, await bundleOf('aws-cost', publisher), await bundleOf('gcp-billing', publisher));
    for (const key of indexKeys(registry)) registry.intake.objects.delete(key);
    // A bin of an older index, holding no name of these: the rebuild leaves no such bin behind.
    const stale = lookAlikeBinKey(
      ['00', '01', '02'].find((b) => b !== binOf('awscost') && b !== binOf('gcpbilling')) as string,
    );
    await registry.intake.put(stale, encode('plugindex-names 0\n'), {
      contentType: 'text/plain',
      cacheControl: 'no-store',
    });
    await rebuildRegistry(registry.context);
    expect(registry.intake.objects.has(stale)).toBe(false);
    expect(registry.intake.objects.has(LOOK_ALIKE_COMPLETE_KEY)).toBe(true);
    const bin = (name: string) =>
      new TextDecoder().decode(registry.intake.objects.get(lookAlikeBinKey(binOf(nameSkeleton(name))))?.body);
    // Each with its document's owners (the same owner's look-alike is judged without reading it).
    expect(bin('aws-cost')).toContain(`awscost\taws-cost\t${publisher.fingerprint}\n`);
    expect(bin('gcp-billing')).toContain(`gcpbilling\tgcp-billing\t${publisher.fingerprint}\n`);
    // Judged from the index alone: the site's plugin folders are not listed.
    const listed: string[] = [];
    const { list } = registry.site;
    registry.site.list = (prefix) => {
      listed.push(prefix);
      return list.call(registry.site, prefix);
    };
    expect(verdicts(await publish(registry, await bundleOf('gcp-bi11ing', squatter)))).toEqual([
      ['gcp-bi11ing', 'rejected', 'NAME_TOO_SIMILAR'],
    ]);
    expect(listed.filter((prefix) => prefix.startsWith('plugins/'))).toEqual([]);
  });
});
