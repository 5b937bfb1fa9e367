/**
 * A failure injected at every write step of a publish (artifacts, manifest, signature, plugin document,
 * globals, bins, snapshot, catalog, outcome), then the retry: the registry converges, and at no point does a
 * published document point at a file that is not there. Both ways of publishing: at once (the CLI), and with
 * the index documents deferred, then flushed (the watcher and the publish function), failing in either step.
 */
import { describe, expect, it } from 'vitest';
import { loadCatalog } from '../../../index-builder/catalog.ts';
import { StoreError } from '../../../index-builder/errors.ts';
import { binKey, binOf, REVOKED_KEYS_KEY, submissionIdFromBytes } from '../../../index-builder/layout.ts';
import type { PluginDocument, SnapshotDocument } from '../../../index-builder/model.ts';
import { flushIndexes, processSubmissions, refreshSnapshot } from '../../../index-builder/pipeline/index.ts';
import { readPublicKey, verifyDetachedSignature } from '../../../index-builder/signing.ts';
import type { PutOptions } from '../../../index-builder/store.ts';
import { verifyListedDocument, verifyPluginDocument } from '../../../index-builder/verify.ts';
import { boundDocument, submitAction, trustedSnapshot, upload, vouchedLog } from '../../support/actions.ts';
import {
  encode,
  makeBundle,
  makeRegistry,
  type TestRegistry,
  testKey,
  validManifest,
} from '../../support/fixtures.ts';
import type { MemoryStore } from '../../support/memory-store.ts';

const text = (store: MemoryStore, key: string): string =>
  new TextDecoder().decode(store.objects.get(key)?.body);

/**
 * Every URL a published document names must resolve in the site (but a removed version's, whose files the
 * operator deleted on purpose, when `skipRemoved`).
 */
function danglingReferences(registry: TestRegistry, options: { skipRemoved?: boolean } = {}): string[] {
  const site = registry.site;
  const missing: string[] = [];
  const base = 'https://registry.example.com/';
  const check = (url: string): void => {
    if (url.startsWith(base) && !site.objects.has(url.slice(base.length))) missing.push(url);
  };
  for (const key of site.objects.keys()) {
    if (!/^plugins\/[^/]+\/index\.json$/.test(key)) continue;
    const doc = JSON.parse(text(site, key)) as PluginDocument;
    for (const v of doc.versions) {
      if (options.skipRemoved && v.removed) continue;
      check(v.manifest_url);
      check(v.manifest_signature_url);
      for (const a of v.artifacts) check(a.url);
    }
  }
  if (site.objects.has('index.json')) {
    const index = JSON.parse(text(site, 'index.json')) as {
      plugins: { versions: { manifest_url: string; removed?: unknown }[] }[];
    };
    for (const p of index.plugins)
      for (const v of p.versions) if (!(options.skipRemoved && v.removed)) check(v.manifest_url);
  }
  return missing;
}

/** One way of publishing what waits (or the named submissions): what a CLI run or a watcher round does. */
type Publish = (registry: TestRegistry, keys?: string[]) => Promise<unknown>;

const modes: [string, Publish][] = [
  ['at once', (registry, keys) => processSubmissions(registry.context, keys)],
  [
    'deferring the index documents, then flushing them',
    async (registry, keys) => {
      await processSubmissions({ ...registry.context, deferIndexes: true }, keys);
      await flushIndexes(registry.context);
    },
  ],
];

async function publishOnce(registry: TestRegistry, version: string, publish: Publish): Promise<void> {
  const bundle = await makeBundle({
    manifest: validManifest({ version }),
    artifacts: [{ os: 'linux', arch: 'amd64', name: 'tool', body: encode(`v${version}`) }],
  });
  await publish(registry, await registry.submit(bundle));
}

/** How many writes (site and intake) a second publish makes, counted once. */
async function writesOfOnePublish(publish: Publish): Promise<number> {
  const registry = await makeRegistry();
  await publishOnce(registry, '1.0.0', publish);
  const before = registry.site.writes.length + registry.intake.writes.length;
  await publishOnce(registry, '1.1.0', publish);
  return registry.site.writes.length + registry.intake.writes.length - before - 1; // minus the submission upload
}

function failAt(registry: TestRegistry, n: number): () => void {
  let count = 0;
  const stores = [registry.site, registry.intake];
  const originals = stores.map((s) => s.put.bind(s));
  stores.forEach((store, i) => {
    store.put = async (key: string, body: Uint8Array, options: PutOptions) => {
      count += 1;
      // What a store throws when it is unavailable (a network error, a full disk): worth a retry.
      if (count === n) throw new StoreError('STORE_IO', key, `injected failure at write ${n} (${key})`);
      return (originals[i] as typeof store.put)(key, body, options);
    };
  });
  return () =>
    stores.forEach((store, i) => {
      store.put = originals[i] as typeof store.put;
    });
}

describe.each(modes)('when a publish %s fails at any write step', (_, publish) => {
  it('never leaves a published document pointing at a missing file, and the retry converges', async () => {
    const steps = await writesOfOnePublish(publish);
    expect(steps).toBeGreaterThan(15);
    const key = await readPublicKey((await testKey('registry')).publicKey);
    for (let n = 1; n <= steps; n++) {
      const registry = await makeRegistry();
      await publishOnce(registry, '1.0.0', publish);
      const bundle = await makeBundle({
        manifest: validManifest({ version: '1.1.0' }),
        artifacts: [{ os: 'linux', arch: 'amd64', name: 'tool', body: encode('v1.1.0') }],
      });
      const [submission] = await registry.submit(bundle);
      const restore = failAt(registry, n);
      await expect(publish(registry, [submission as string]), `step ${n}`).rejects.toThrow(
        /injected failure/,
      );
      restore();
      expect(danglingReferences(registry), `step ${n}`).toEqual([]);

      // The retry (the queue redelivers; locally, the next run) finishes the job.
      await publish(registry);
      if (registry.intake.objects.has(submission as string))
        throw new Error(`step ${n}: submission still waiting`);
      const outcomes = [...registry.intake.objects.keys()].filter((k) => k.startsWith('status/'));
      expect(outcomes, `step ${n}`).toHaveLength(2); // one for each version, whatever step failed
      // Accepted, whatever step failed: the version the retry finds published is this upload's.
      expect(
        outcomes.map((k) => (JSON.parse(text(registry.intake, k)) as { status: string }).status),
        `step ${n}`,
      ).toEqual(['accepted', 'accepted']);
      expect((await loadCatalog(registry.intake)).indexesPending, `step ${n}`).toBe(false);
      expect(
        (JSON.parse(text(registry.site, 'index.json')) as { plugins: { latest_version: string }[] })
          .plugins[0]?.latest_version,
        `step ${n}`,
      ).toBe('1.1.0');
      expect(danglingReferences(registry), `step ${n}`).toEqual([]);
      const doc = JSON.parse(text(registry.site, 'plugins/demo-plugin/index.json')) as PluginDocument;
      expect(
        doc.versions.map((v) => v.version),
        `step ${n}`,
      ).toEqual(['1.1.0', '1.0.0']);
      const snapshot = JSON.parse(text(registry.site, 'snapshot.json')) as SnapshotDocument;
      for (const path of ['index.json', 'index.yaml', 'search.json'])
        verifyListedDocument(snapshot, path, registry.site.objects.get(path)?.body as Uint8Array);
      verifyPluginDocument(
        snapshot,
        'demo-plugin',
        registry.site.objects.get(binKey(binOf('demo-plugin')))?.body as Uint8Array,
        registry.site.objects.get('plugins/demo-plugin/index.json')?.body as Uint8Array,
      );
      // A later publish that leaves demo-plugin's bin alone must still list that bin as it is published
      // (the catalog's copy of its digest may be from before the failure).
      const elsewhere = ['other-plugin', 'third-plugin', 'fourth-plugin'].find(
        (name) => binOf(name) !== binOf('demo-plugin'),
      ) as string;
      await publish(
        registry,
        await registry.submit(await makeBundle({ manifest: validManifest({ name: elsewhere }) })),
      );
      const later = JSON.parse(text(registry.site, 'snapshot.json')) as SnapshotDocument;
      expect(later.generation, `step ${n}`).toBeGreaterThan(snapshot.generation);
      verifyPluginDocument(
        later,
        'demo-plugin',
        registry.site.objects.get(binKey(binOf('demo-plugin')))?.body as Uint8Array,
        registry.site.objects.get('plugins/demo-plugin/index.json')?.body as Uint8Array,
      );
      for (const signed of [
        'index.json',
        'snapshot.json',
        'plugins/demo-plugin/index.json',
        'plugins/demo-plugin/1.1.0/manifest.json',
      ]) {
        const body = registry.site.objects.get(signed)?.body as Uint8Array;
        await expect(
          verifyDetachedSignature(body, text(registry.site, `${signed}.asc`), [key.key]),
          `step ${n} ${signed}`,
        ).resolves.toMatchObject({ ok: true });
      }
    }
  });
});

/** Like failAt, deletes too: removing a version deletes its files from the site. */
function failWriteOrDeleteAt(registry: TestRegistry, n: number): () => void {
  let count = 0;
  const stores = [registry.site, registry.intake];
  const puts = stores.map((s) => s.put.bind(s));
  const deletes = stores.map((s) => s.delete.bind(s));
  const step = (key: string) => {
    count += 1;
    if (count === n) throw new StoreError('STORE_IO', key, `injected failure at write ${n} (${key})`);
  };
  stores.forEach((store, i) => {
    store.put = async (key: string, body: Uint8Array, options: PutOptions) => {
      step(key);
      return (puts[i] as typeof store.put)(key, body, options);
    };
    store.delete = async (key: string) => {
      step(key);
      return (deletes[i] as typeof store.delete)(key);
    };
  });
  return () =>
    stores.forEach((store, i) => {
      store.put = puts[i] as typeof store.put;
      store.delete = deletes[i] as typeof store.delete;
    });
}

/** One batch of publishes and actions that a failure interrupts, and what it must come to. */
interface ActionScenario {
  readonly title: string;
  /** Publishes what the batch acts on (not interrupted). */
  prepare(registry: TestRegistry): Promise<void>;
  /**
   * Puts the batch's uploads under incoming/, in order; returns their keys, the log entries they make
   * (type, then the version for a publish, the digest for an action) and the actions' envelopes.
   */
  submit(
    registry: TestRegistry,
  ): Promise<{ keys: string[]; entries: [string, string][]; actions: Uint8Array[] }>;
  /** What the published registry says once the batch is done. */
  check(registry: TestRegistry, step: string): Promise<void>;
}

const publishAtOnce: Publish = (registry, keys) => processSubmissions(registry.context, keys);

const scenarios: ActionScenario[] = [
  {
    title: 'a publish and actions on it',
    async prepare(registry) {
      await publishOnce(registry, '1.0.0', publishAtOnce);
    },
    async submit(registry) {
      const publisher = await testKey('publisher');
      const bundle = await makeBundle({
        manifest: validManifest({ version: '1.1.0' }),
        artifacts: [{ os: 'linux', arch: 'amd64', name: 'tool', body: encode('v1.1.0') }],
      });
      const [bundleKey] = await registry.submit(bundle);
      // The yank acts on the version published before it in the same batch.
      const yank = await submitAction(
        registry.intake,
        { action: 'yank', plugin: 'demo-plugin', version: '1.1.0', reason: 'broken' },
        publisher,
      );
      const advisory = await submitAction(
        registry.intake,
        {
          action: 'advisory-add',
          plugin: 'demo-plugin',
          advisory: { id: 'PDX-1', severity: 'high', affected: '<1.1.0', summary: 'leaks' },
        },
        publisher,
      );
      return {
        keys: [bundleKey as string, yank.key, advisory.key],
        entries: [
          ['publish', '1.1.0'],
          ['yank', yank.digest],
          ['advisory-add', advisory.digest],
        ],
        actions: [yank.bytes, advisory.bytes],
      };
    },
    async check(registry, step) {
      const doc = await boundDocument(registry.site, registry.registryKey.publicKey, 'demo-plugin');
      expect(
        doc.versions.map((v) => [v.version, v.yanked]),
        step,
      ).toEqual([
        ['1.1.0', true],
        ['1.0.0', false],
      ]);
      expect(doc.latest_version, step).toBe('1.0.0');
      expect(
        doc.advisories?.map((a) => a.id),
        step,
      ).toEqual(['PDX-1']);
    },
  },
  {
    title: "the operator's removal of a version",
    async prepare(registry) {
      for (const version of ['1.0.0', '1.1.0']) await publishOnce(registry, version, publishAtOnce);
    },
    async submit(registry) {
      const removal = await submitAction(
        registry.intake,
        { action: 'remove', plugin: 'demo-plugin', version: '1.1.0', reason: 'malware' },
        await testKey('operator'),
      );
      return { keys: [removal.key], entries: [['remove', removal.digest]], actions: [removal.bytes] };
    },
    async check(registry, step) {
      const doc = await boundDocument(registry.site, registry.registryKey.publicKey, 'demo-plugin');
      expect(doc.versions[0]?.removed?.reason, step).toBe('malware');
      expect(doc.latest_version, step).toBe('1.0.0');
      expect(
        [...registry.site.objects.keys()].filter((k) => k.startsWith('plugins/demo-plugin/1.1.0/')),
        step,
      ).toEqual([]);
    },
  },
  {
    title: "the operator's revocation of a publisher key",
    async prepare(registry) {
      await publishOnce(registry, '1.0.0', publishAtOnce);
      await publishAtOnce(
        registry,
        await registry.submit(await makeBundle({ manifest: validManifest({ name: 'other-plugin' }) })),
      );
    },
    async submit(registry) {
      const revoke = await submitAction(
        registry.intake,
        { action: 'revoke-key', fingerprint: (await testKey('publisher')).fingerprint, reason: 'leaked' },
        await testKey('operator'),
      );
      return { keys: [revoke.key], entries: [['revoke-key', revoke.digest]], actions: [revoke.bytes] };
    },
    async check(registry, step) {
      for (const name of ['demo-plugin', 'other-plugin']) {
        const doc = await boundDocument(registry.site, registry.registryKey.publicKey, name);
        expect(doc.versions[0]?.publisher_revoked?.reason, `${step} ${name}`).toBe('leaked');
      }
      const snapshot = await trustedSnapshot(registry.site, registry.registryKey.publicKey);
      verifyListedDocument(
        snapshot,
        REVOKED_KEYS_KEY,
        registry.site.objects.get(REVOKED_KEYS_KEY)?.body as Uint8Array,
      );
    },
  },
];

async function operatorRegistry(): Promise<TestRegistry> {
  const operator = await testKey('operator');
  return makeRegistry({ operators: [{ fingerprint: operator.fingerprint, key: operator.publicKey }] });
}

/** How many writes and deletes (site and intake) one run of the scenario's batch makes. */
async function stepsOf(scenario: ActionScenario, publish: Publish): Promise<number> {
  const registry = await operatorRegistry();
  await scenario.prepare(registry);
  const { keys } = await scenario.submit(registry);
  const writes = registry.site.writes.length + registry.intake.writes.length;
  let deletes = 0;
  const del = registry.site.delete.bind(registry.site);
  registry.site.delete = (key) => {
    deletes += 1;
    return del(key);
  };
  const delIntake = registry.intake.delete.bind(registry.intake);
  registry.intake.delete = (key) => {
    deletes += 1;
    return delIntake(key);
  };
  await publish(registry, keys);
  return registry.site.writes.length + registry.intake.writes.length - writes + deletes;
}

/**
 * Each way of publishing, and at once with a snapshot signed between the failure and the retry (the
 * scheduled refresh): that snapshot vouches for what the dead run logged, and the retry must still not log
 * it twice.
 */
const actionModes: [string, Publish, boolean][] = [
  ...modes.map(([title, publish]): [string, Publish, boolean] => [title, publish, false]),
  ['at once, with a snapshot refresh before the retry,', publishAtOnce, true],
];

describe.each(actionModes)(
  'when a batch of actions %s fails at any write or delete',
  (_, publish, refresh) => {
    it.each(scenarios)(
      'converges on retry for $title, each log entry once and in order',
      async (scenario) => {
        const steps = await stepsOf(scenario, publish);
        expect(steps).toBeGreaterThan(10);
        for (let n = 1; n <= steps; n++) {
          const step = `${scenario.title}, step ${n} of ${steps}`;
          const registry = await operatorRegistry();
          await scenario.prepare(registry);
          const before = (await vouchedLog(registry.site, registry.registryKey.publicKey)).length;
          const { keys, entries, actions } = await scenario.submit(registry);
          const ids = keys.map((key) =>
            submissionIdFromBytes(key, registry.intake.objects.get(key)?.body as Uint8Array),
          );
          const restore = failWriteOrDeleteAt(registry, n);
          await expect(publish(registry, keys), step).rejects.toThrow(/injected failure/);
          restore();
          expect(danglingReferences(registry, { skipRemoved: true }), step).toEqual([]);
          if (refresh) await refreshSnapshot(registry.context);

          // The retry (the queue redelivers; locally, the next run) finishes the job.
          await publish(registry);
          expect(
            [...registry.intake.objects.keys()].filter((k) => k.startsWith('incoming/')),
            step,
          ).toEqual([]);
          const outcomes = ids.map(
            (id) =>
              JSON.parse(text(registry.intake, `status/${id}.json`)) as { status: string; seq?: number },
          );
          // A bundle whose version a dead run's document already shows was published by that very upload.
          expect(
            outcomes.map((o) => o.status),
            step,
          ).toEqual(keys.map(() => 'accepted'));
          const log = await vouchedLog(registry.site, registry.registryKey.publicKey);
          expect(
            log.slice(before).map((e) => [e.type, e.type === 'publish' ? (e.version as string) : e.digest]),
            step,
          ).toEqual(entries);
          expect(log, step).toHaveLength(before + entries.length);
          // An action's outcome names its entry.
          const actionSeqs = outcomes.slice(keys.length - actions.length).map((o) => o.seq);
          expect(actionSeqs, step).toEqual(
            log.slice(before + entries.length - actions.length).map((e) => e.seq),
          );
          await scenario.check(registry, step);
          expect(danglingReferences(registry, { skipRemoved: true }), step).toEqual([]);
          // Applied once: the same actions again, under new names, are replays, and change nothing.
          const published = registry.site.fingerprint();
          const replays = [];
          for (const bytes of actions) replays.push(await upload(registry.intake, bytes, 'replay'));
          const replayed = await processSubmissions(registry.context, replays);
          expect(
            replayed.outcomes.map((o) => o.problems.map((p) => p.code)),
            step,
          ).toEqual(actions.map(() => ['ACTION_REPLAYED']));
          expect(registry.site.fingerprint(), step).toEqual(published);
        }
      },
    );
  },
);

describe('when a publish a run logged before it died would be refused by the retry', () => {
  it('finishes it as it was judged, so the log names no version that no document shows', async () => {
    const publisher = await testKey('publisher');
    const registry = await makeRegistry({
      policy: 'restricted',
      publishers: [{ fingerprint: publisher.fingerprint, names: ['demo-*'], key: publisher.publicKey }],
    });
    const keys = await registry.submit(await makeBundle());
    // Dies writing the plugin document: the version's files and its log entry are written.
    const put = registry.site.put.bind(registry.site);
    registry.site.put = async (key: string, body: Uint8Array, options: PutOptions) => {
      if (key === 'plugins/demo-plugin/index.json') throw new StoreError('STORE_IO', key, 'injected failure');
      return put(key, body, options);
    };
    await expect(processSubmissions(registry.context, keys)).rejects.toMatchObject({
      name: 'StoreError',
      code: 'STORE_IO',
    });
    registry.site.put = put;
    // The operator takes the key off the trust list before the retry runs; and the same manifest arrives
    // again, signed by a key nobody trusts: only the upload the dead run logged is finished.
    const delisted = { ...registry.context, config: { ...registry.context.config, publishers: [] } };
    const copy = await registry.submit(await makeBundle({ signer: await testKey('stranger') }));

    // The copy first: judged before the upload the dead run logged, it must not be taken for it.
    const retried = await processSubmissions(delisted, [...copy, ...keys]);

    expect(retried.outcomes.map((o) => [o.status, o.publisher])).toEqual([
      ['rejected', undefined],
      ['accepted', publisher.fingerprint],
    ]);
    const log = await vouchedLog(registry.site, registry.registryKey.publicKey);
    expect(log.map((e) => [e.type, e.plugin, e.version])).toEqual([['publish', 'demo-plugin', '1.0.0']]);
    const doc = JSON.parse(text(registry.site, 'plugins/demo-plugin/index.json')) as PluginDocument;
    expect(doc.versions.map((v) => v.version)).toEqual(['1.0.0']);
    // Shown, so other bytes under that version are refused as they always are.
    const other = await makeBundle({ manifest: validManifest({ description: 'other bytes' }) });
    const [again] = (await processSubmissions(registry.context, await registry.submit(other))).outcomes;
    expect(again?.problems.map((p) => p.code)).toEqual(['VERSION_EXISTS']);
  });
});

describe('when a batch dies after its log entries and another batch runs before the retry', () => {
  it('logs each publish once: the retry finds them by their intent records, not by a window', async () => {
    const registry = await makeRegistry();
    await publishOnce(registry, '1.0.0', publishAtOnce);
    const keys = [
      ...(await registry.submit(await makeBundle({ manifest: validManifest({ name: 'alpha' }) }))),
      ...(await registry.submit(await makeBundle({ manifest: validManifest({ name: 'beta' }) }))),
    ];
    // Dies writing the plugin documents, after the log is written.
    const put = registry.site.put.bind(registry.site);
    registry.site.put = async (key: string, body: Uint8Array, options: PutOptions) => {
      if (key === 'plugins/alpha/index.json') throw new StoreError('STORE_IO', key, 'injected failure');
      return put(key, body, options);
    };
    await expect(processSubmissions(registry.context, keys)).rejects.toThrow(/injected failure/);
    registry.site.put = put;
    // A batch of only a yank runs in between (plugindex yank --registry processes only its key).
    const yank = await submitAction(
      registry.intake,
      { action: 'yank', plugin: 'demo-plugin', version: '1.0.0', reason: 'broken' },
      await testKey('publisher'),
    );
    await processSubmissions(registry.context, [yank.key]);
    const retried = await processSubmissions(registry.context);
    // beta's document may be written before alpha's failed: it is beta's upload that it shows.
    expect(retried.outcomes.map((o) => o.status)).toEqual(['accepted', 'accepted']);
    const log = await vouchedLog(registry.site, registry.registryKey.publicKey);
    expect(log.map((e) => [e.type, e.plugin])).toEqual([
      ['publish', 'demo-plugin'],
      ['publish', 'alpha'],
      ['publish', 'beta'],
      ['yank', 'demo-plugin'],
    ]);
    // Finished: no intent record is left behind.
    expect([...registry.intake.objects.keys()].filter((k) => k.startsWith('state/log-intents/'))).toEqual([]);
  });

  it('drops from its intent record a submission the run that died finished itself', async () => {
    const registry = await makeRegistry();
    const [alpha] = await registry.submit(await makeBundle({ manifest: validManifest({ name: 'alpha' }) }));
    const [beta] = await registry.submit(await makeBundle({ manifest: validManifest({ name: 'beta' }) }));
    // Dies filing beta away, after alpha's outcome is recorded and alpha is filed away.
    const remove = registry.intake.delete.bind(registry.intake);
    registry.intake.delete = async (key, options) => {
      if (key === beta) throw new StoreError('STORE_IO', key, 'the run died');
      return remove(key, options);
    };
    await expect(processSubmissions(registry.context)).rejects.toMatchObject({
      name: 'StoreError',
      code: 'STORE_IO',
    });
    registry.intake.delete = remove;
    const intents = (): string[] =>
      [...registry.intake.objects.keys()].filter((k) => k.startsWith('state/log-intents/'));
    expect(intents()).toHaveLength(1);
    expect(registry.intake.objects.has(alpha as string)).toBe(false);

    // The retry takes beta alone (alpha is gone from incoming/): alpha's intent must not outlive it.
    const retried = await processSubmissions(registry.context);
    expect(retried.outcomes.map((o) => [o.submission, o.status])).toEqual([[beta, 'accepted']]);
    expect(intents()).toEqual([]);
  });

  it('finishes from the files its run wrote a submission a retry leaves for later, and logs it once', async () => {
    const registry = await makeRegistry();
    await publishOnce(registry, '1.0.0', publishAtOnce);
    const [alpha] = await registry.submit(await makeBundle({ manifest: validManifest({ name: 'alpha' }) }));
    const [beta] = await registry.submit(await makeBundle({ manifest: validManifest({ name: 'beta' }) }));
    const put = registry.site.put.bind(registry.site);
    registry.site.put = async (key: string, body: Uint8Array, options: PutOptions) => {
      if (key === 'plugins/alpha/index.json') throw new StoreError('STORE_IO', key, 'injected failure');
      return put(key, body, options);
    };
    await expect(processSubmissions(registry.context, [alpha as string, beta as string])).rejects.toThrow(
      /injected failure/,
    );
    registry.site.put = put;
    const intents = (): string[] =>
      [...registry.intake.objects.keys()].filter((k) => k.startsWith('state/log-intents/'));
    expect(intents()).toHaveLength(1); // one record for the batch
    // The retry takes alpha alone (as a batch cut by maxBatchBytes would): beta, logged, is finished with it
    // from the files its run wrote, its acceptance recorded under its id.
    const first = await processSubmissions(registry.context, [alpha as string]);
    const betaId = submissionIdFromBytes(
      beta as string,
      registry.intake.objects.get(beta as string)?.body as Uint8Array,
    );
    expect(first.outcomes.map((o) => [o.id, o.status])).toEqual([
      [expect.any(String), 'accepted'],
      [betaId, 'accepted'],
    ]);
    expect(intents()).toEqual([]);
    await refreshSnapshot(registry.context);
    const retried = await processSubmissions(registry.context);
    // Its upload, met later, keeps that acceptance (its entry), not rejected nor "already published".
    expect(retried.outcomes.map((o) => [o.id, o.status, o.seq])).toEqual([[betaId, 'accepted', 2]]);
    const log = await vouchedLog(registry.site, registry.registryKey.publicKey);
    expect(log.map((e) => [e.type, e.plugin])).toEqual([
      ['publish', 'demo-plugin'],
      ['publish', 'alpha'],
      ['publish', 'beta'],
    ]);
    expect(intents()).toEqual([]);
  });
});
