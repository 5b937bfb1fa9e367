/**
 * The log held against what a registry serves (client/log-consistency.ts), through `verify --url`: a real
 * registry made by the pipeline, every action type signed with real keys and judged, served over real
 * HTTP by the local server. Then its plugin document edited and re-signed with the registry's own key
 * (`editPlugin`: a registry, or a thief of its key, showing what no entry records), or an envelope under
 * `log/actions/` replaced, and each disagreement is reported with its code, plugin and entry.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRegistryServer, listenRegistryServer } from '../../cli/local/server.ts';
import { verifyRegistry } from '../../cli/verify.ts';
import { LogDisagreementError } from '../../client/errors.ts';
import { compareDocument, foldLog, type LogDisagreement } from '../../client/log-consistency.ts';
import type { ActionBody } from '../../index-builder/actions.ts';
import { fixedClock } from '../../index-builder/clock.ts';
import { parseRegistryConfig } from '../../index-builder/config.ts';
import { StoreError } from '../../index-builder/errors.ts';
import { actionEnvelopeKey, pluginDocumentKey } from '../../index-builder/layout.ts';
import { EMPTY_LOG, type LogEntry, nextEntry, type ReadEntry } from '../../index-builder/log.ts';
import type { PluginDocument } from '../../index-builder/model.ts';
import { type PipelineContext, processSubmissions } from '../../index-builder/pipeline/index.ts';
import { createSigner, type KeyPair } from '../../index-builder/signing.ts';
import { CACHE_IMMUTABLE } from '../../index-builder/store.ts';
import { ACTION_SIGNED, submitAction, vouchedLog } from '../support/actions.ts';
import {
  makeBundle,
  makeRegistry,
  nextUploadName,
  type TestRegistry,
  testKey,
  validManifest,
} from '../support/fixtures.ts';
import { appendLog, dropLog, type EditableDocument, editPlugin, versionOf } from '../support/lifecycle.ts';
import { MemoryStore } from '../support/memory-store.ts';
import { publicPrimaryWithSecretSubkeys } from '../support/openpgp-packets.ts';
import { rejectionOf } from '../support/problems.ts';

/** Within the snapshot lifetime of the test clock (which starts on 2026-11-01). */
const NOW = new Date('2026-11-02T00:00:00Z');
const PLUGIN = 'demo-plugin';
const site = new MemoryStore();
let base: string;
let close: () => Promise<void>;
let registry: TestRegistry;
let context: PipelineContext;
let publisher: KeyPair;
let operator: KeyPair;
let heir: KeyPair;
/** The digest of each action submitted, by a name the test gives it. */
const digests = new Map<string, string>();
let made = 0;

/** Signs and submits one action (each made a second after the one before), then runs the pipeline. */
async function act(name: string, body: ActionBody, signer: KeyPair): Promise<void> {
  made += 1;
  const submitted = await submitAction(context.intake, body, signer, {
    registry: base,
    now: new Date(ACTION_SIGNED.getTime() + made * 1000),
  });
  digests.set(name, submitted.digest);
  await processSubmissions(context, [submitted.key]);
}

/** Publishes a version of the plugin through the registry `context` is (its intake, its pipeline). */
async function publish(version: string): Promise<void> {
  const key = `incoming/${nextUploadName()}.tgz`;
  const bundle = await makeBundle({ manifest: validManifest({ version }), signer: publisher });
  await context.intake.put(key, bundle, { contentType: 'application/gzip', cacheControl: 'no-store' });
  await processSubmissions(context, [key]);
}

beforeAll(async () => {
  const listening = await listenRegistryServer(createRegistryServer({ site }), 0);
  base = listening.url;
  close = listening.close;
  [publisher, operator, heir] = await Promise.all([
    testKey('publisher'),
    testKey('operator'),
    testKey('heir'),
  ]);
  registry = await makeRegistry();
  context = {
    ...registry.context,
    site,
    config: parseRegistryConfig({
      name: 'Audited',
      url: base,
      operators: [{ fingerprint: operator.fingerprint, key: operator.publicKey }],
    }),
  };
  for (const version of ['1.0.0', '1.1.0', '2.0.0', '2.1.0']) await publish(version);
  // Every action type, as owners and the operator make them; one refused as changing nothing (logged).
  await act('yank', { action: 'yank', plugin: PLUGIN, version: '1.0.0', reason: 'broken' }, publisher);
  await act('yank again', { action: 'yank', plugin: PLUGIN, version: '1.0.0', reason: 'still' }, publisher);
  await act('yank 2.0.0', { action: 'yank', plugin: PLUGIN, version: '2.0.0' }, publisher);
  await act('unyank', { action: 'unyank', plugin: PLUGIN, version: '2.0.0' }, publisher);
  await act(
    'deprecate range',
    { action: 'deprecate', plugin: PLUGIN, range: '<1.1.0', message: 'old' },
    publisher,
  );
  await act(
    'deprecate',
    { action: 'deprecate', plugin: PLUGIN, message: 'use another', replacement: 'other-plugin' },
    publisher,
  );
  await act('undeprecate range', { action: 'undeprecate', plugin: PLUGIN, range: '>=2.0.0' }, publisher);
  const advisory = (id: string) => ({ id, severity: 'high' as const, affected: '<1.1.0', summary: 'a flaw' });
  await act('advisory', { action: 'advisory-add', plugin: PLUGIN, advisory: advisory('PX-1') }, publisher);
  await act('advisory 2', { action: 'advisory-add', plugin: PLUGIN, advisory: advisory('PX-2') }, publisher);
  await act(
    'withdraw',
    { action: 'advisory-withdraw', plugin: PLUGIN, id: 'PX-2', reason: 'wrong' },
    publisher,
  );
  await act('owners add', { action: 'owners-add', plugin: PLUGIN, key: heir.publicKey }, publisher);
  await act(
    'owners remove',
    { action: 'owners-remove', plugin: PLUGIN, fingerprint: heir.fingerprint },
    publisher,
  );
  await act(
    'transfer',
    { action: 'transfer', plugin: PLUGIN, key: heir.publicKey, reason: 'sold' },
    operator,
  );
  await act('owners add back', { action: 'owners-add', plugin: PLUGIN, key: publisher.publicKey }, heir);
  await act(
    'remove',
    { action: 'remove', plugin: PLUGIN, version: '1.1.0', reason: 'legal request' },
    operator,
  );
  await act('revoke', { action: 'revoke-key', fingerprint: publisher.fingerprint, reason: 'lost' }, operator);
});
afterAll(async () => {
  await close();
});

const verifyPinned = () => verifyRegistry({ url: base, pinnedKey: registry.registryKey.publicKey, now: NOW });

/** What verify --url reports (it must refuse with LOG_DISAGREES). */
/**
 * Runs `body` on a registry of its own (a fresh key; its site a memory store served over HTTP at `url`),
 * made the file's `context` and `base` with `config` (its name, and operators if any); closes the server
 * after.
 */
async function withOwnRegistry<T>(
  config: { readonly name: string; readonly operators?: readonly { fingerprint: string; key: string }[] },
  body: (own: MemoryStore, fresh: Awaited<ReturnType<typeof makeRegistry>>, url: string) => Promise<T>,
): Promise<T> {
  const own = new MemoryStore();
  const listening = await listenRegistryServer(createRegistryServer({ site: own }), 0);
  try {
    const fresh = await makeRegistry();
    context = { ...fresh.context, site: own, config: parseRegistryConfig({ ...config, url: listening.url }) };
    base = listening.url;
    return await body(own, fresh, listening.url);
  } finally {
    await listening.close();
  }
}

/** Runs a batch of `key` that dies writing the plugin document on `own` (after the log and the marker). */
async function diesWritingDocument(own: MemoryStore, key: string): Promise<void> {
  const put = own.put.bind(own);
  own.put = async (k, body, options) => {
    if (k === pluginDocumentKey(PLUGIN)) throw new StoreError('STORE_IO', k, 'injected failure');
    return put(k, body, options);
  };
  await expect(processSubmissions(context, [key])).rejects.toThrow(/injected failure/);
  own.put = put;
}

async function disagreements(): Promise<readonly LogDisagreement[]> {
  const error = await rejectionOf(verifyPinned(), LogDisagreementError);
  expect(error.code).toBe('LOG_DISAGREES');
  return error.disagreements;
}

/** The document as served now, to put back after a tamper. */
function servedDocument(): PluginDocument {
  const object = site.objects.get(`plugins/${PLUGIN}/index.json`);
  return JSON.parse(new TextDecoder().decode(object?.body)) as PluginDocument;
}

/** Edits and re-signs the plugin document, returns what verify reports, and puts the document back. */
async function whenShown(edit: (doc: EditableDocument) => void): Promise<readonly LogDisagreement[]> {
  const original = servedDocument();
  await editPlugin(context, PLUGIN, edit);
  try {
    return await disagreements();
  } finally {
    await editPlugin(context, PLUGIN, (doc) => {
      for (const key of Object.keys(doc)) delete (doc as Record<string, unknown>)[key];
      Object.assign(doc, original);
    });
  }
}

const entryOf = async (name: string): Promise<LogEntry> => {
  const entry = (await vouchedLog(site, registry.registryKey.publicKey)).find(
    (e) => e.digest === digests.get(name),
  );
  if (!entry) throw new Error(`no entry for ${name}`);
  return entry;
};

describe('when the log agrees with what the registry serves', () => {
  it('verifies a registry that logged every action type, a no-effect action and a removal included', async () => {
    const entries = await vouchedLog(site, registry.registryKey.publicKey);
    expect(new Set(entries.map((e) => e.type))).toEqual(
      new Set([
        'publish',
        'yank',
        'unyank',
        'deprecate',
        'undeprecate',
        'advisory-add',
        'advisory-withdraw',
        'owners-add',
        'owners-remove',
        'transfer',
        'remove',
        'revoke-key',
      ]),
    );
    expect(entries.some((e) => e.detail?.effect === 'none')).toBe(true);
    const doc = servedDocument();
    expect(doc.owners).toEqual([heir.fingerprint, publisher.fingerprint]);
    expect(doc.versions.find((v) => v.version === '1.1.0')?.removed?.reason).toBe('legal request');

    const report = await verifyPinned();

    expect(report).toMatchObject({
      plugins: 1,
      removed: 1,
      envelopes: entries.filter((e) => e.type !== 'publish').length,
    });
  });
});

describe('when a document re-signed by the registry key shows what the log does not record', () => {
  it('reports a yank no entry records, and a logged yank the document does not show', async () => {
    const found = await whenShown((doc) => {
      versionOf(doc, '2.0.0').yanked = true;
      versionOf(doc, '1.0.0').yanked = false;
      delete versionOf(doc, '1.0.0').yanked_reason;
    });
    const yank = await entryOf('yank');
    expect(found).toEqual([
      {
        code: 'LOG_YANK_DIFFERS',
        plugin: PLUGIN,
        seq: (await entryOf('unyank')).seq,
        message: `log entry ${(await entryOf('unyank')).seq} (unyank) of ${PLUGIN}: version 2.0.0 is listed as yanked`,
      },
      {
        code: 'LOG_YANK_DIFFERS',
        plugin: PLUGIN,
        seq: (await entryOf('yank again')).seq,
        message: `log entry ${(await entryOf('yank again')).seq} (yank) of ${PLUGIN}: version 1.0.0 is listed as not yanked`,
      },
    ]);
    expect(yank.seq).toBeLessThan((await entryOf('yank again')).seq);
  });

  it('reports a yank of a version whose history is logged, with no yank or unyank entry at all', async () => {
    const found = await whenShown((doc) => {
      versionOf(doc, '2.1.0').yanked = true;
    });
    expect(found.map((d) => [d.code, d.seq])).toEqual([['LOG_YANK_UNLOGGED', undefined]]);
    expect(found[0]?.message).toBe(`${PLUGIN}: version 2.1.0 is listed as yanked with no yank entry`);
  });

  it('reports an advisory dropped, one withdrawn in the log shown in force, and one no entry records', async () => {
    const found = await whenShown((doc) => {
      const advisories = doc.advisories ?? [];
      doc.advisories = [
        ...advisories
          .filter((a) => a.id !== 'PX-1')
          .map((a) => {
            const { withdrawn: _in, ...inForce } = a;
            return inForce;
          }),
        {
          id: 'PX-9',
          severity: 'low',
          affected: '*',
          summary: 'planted',
          published: '2026-11-01T23:00:00.000Z',
        },
      ];
    });
    expect(found.map((d) => [d.code, d.seq])).toEqual([
      ['LOG_ADVISORY_DIFFERS', (await entryOf('advisory')).seq],
      ['LOG_ADVISORY_DIFFERS', (await entryOf('withdraw')).seq],
      ['LOG_ADVISORY_UNLOGGED', undefined],
    ]);
    expect(found[0]?.message).toContain('advisory PX-1 is not listed');
    expect(found[2]?.message).toContain(
      'advisory PX-9 (published 2026-11-01T23:00:00.000Z) has no advisory-add entry',
    );
  });

  it('reports owners the log did not make, and an owner it made the document drops', async () => {
    const stranger = await testKey('stranger');
    const found = await whenShown((doc) => {
      doc.owners = [heir.fingerprint, stranger.fingerprint];
    });
    expect(found.map((d) => [d.code, d.seq])).toEqual([
      ['LOG_OWNERS_DIFFER', (await entryOf('owners add back')).seq],
      ['LOG_OWNER_UNLOGGED', undefined],
    ]);
    expect(found[1]?.message).toBe(
      `${PLUGIN}: ${stranger.fingerprint} is listed as an owner, which no entry since the transfer (entry ${(await entryOf('transfer')).seq}) made one`,
    );
  });

  it('reports a deprecation lifted, a removal and a revocation the log does not record, and a logged version gone or changed', async () => {
    const found = await whenShown((doc) => {
      delete doc.deprecation;
      versionOf(doc, '2.0.0').removed = { reason: 'planted', at: '2026-11-01T23:00:00.000Z' };
      versionOf(doc, '2.0.0').source_sha256 = 'f'.repeat(64);
      (versionOf(doc, '1.1.0').removed as { reason: string }).reason = 'another reason';
      delete versionOf(doc, '1.0.0').publisher_revoked;
      doc.versions = doc.versions.filter((v) => v.version !== '2.1.0');
    });
    expect(found.map((d) => [d.code, d.seq])).toEqual([
      ['LOG_VERSION_MISSING', expect.any(Number)],
      ['LOG_VERSION_DIFFERS', expect.any(Number)],
      ['LOG_REMOVAL_UNLOGGED', undefined],
      ['LOG_REMOVAL_DIFFERS', (await entryOf('remove')).seq],
      ['LOG_REVOCATION_DIFFERS', (await entryOf('revoke')).seq],
      ['LOG_DEPRECATION_DIFFERS', (await entryOf('deprecate')).seq],
    ]);
    expect(found[0]?.message).toContain('version 2.1.0 is not listed');
    expect(found[1]?.message).toContain(`from sha256 ${'f'.repeat(64)}, not by ${publisher.fingerprint}`);
    expect(found[3]?.message).toContain('listed as removed for "another reason", not "legal request"');
  });

  it('reports versions whose deprecation is not what the logged ranges imply for them', async () => {
    // Logged: <1.1.0 deprecated ("old"), then the whole plugin ("use another"), then >=2.0.0 undeprecated.
    const served = servedDocument();
    expect(served.versions.map((v) => [v.version, v.deprecated, v.deprecation_message])).toEqual([
      ['2.1.0', false, undefined],
      ['2.0.0', false, undefined],
      ['1.1.0', true, 'use another'],
      ['1.0.0', true, 'use another'],
    ]);
    // As if the undeprecation had been of >=2.0.0 <2.1.0, and the whole deprecation had left <1.1.0 as it was.
    const found = await whenShown((doc) => {
      Object.assign(versionOf(doc, '2.1.0'), {
        deprecated: true,
        deprecation_message: 'use another',
        deprecation_replacement: 'other-plugin',
      });
      Object.assign(versionOf(doc, '1.0.0'), { deprecation_message: 'old' });
      delete versionOf(doc, '1.0.0').deprecation_replacement;
    });
    const undeprecate = await entryOf('undeprecate range');
    const deprecate = await entryOf('deprecate');
    expect(found).toEqual([
      {
        code: 'LOG_VERSION_DEPRECATION_DIFFERS',
        plugin: PLUGIN,
        seq: undeprecate.seq,
        message: `log entry ${undeprecate.seq} (undeprecate) of ${PLUGIN}: version 2.1.0 is listed as deprecated with message "use another" and replacement "other-plugin", where the log has it not deprecated`,
      },
      {
        code: 'LOG_VERSION_DEPRECATION_DIFFERS',
        plugin: PLUGIN,
        seq: deprecate.seq,
        message: `log entry ${deprecate.seq} (deprecate) of ${PLUGIN}: version 1.0.0 is listed as deprecated with message "old" and replacement none, where the log has it deprecated with message "use another" and replacement "other-plugin"`,
      },
    ]);
  });

  it('reports an envelope under log/actions/ that is another action, or is not served', async () => {
    const yankKey = actionEnvelopeKey(digests.get('yank') as string);
    const unyankKey = actionEnvelopeKey(digests.get('unyank') as string);
    const yank = site.objects.get(yankKey);
    const unyank = site.objects.get(unyankKey);
    if (!yank || !unyank) throw new Error('envelopes not published');
    site.objects.set(yankKey, unyank);
    site.objects.delete(unyankKey);
    try {
      const found = await disagreements();
      expect(found.map((d) => [d.code, d.seq])).toEqual([
        ['LOG_ENVELOPE_DIFFERS', (await entryOf('yank')).seq],
        ['LOG_ENVELOPE_MISSING', (await entryOf('unyank')).seq],
      ]);
      expect(found[0]?.message).toContain(`its action's sha256 is ${digests.get('unyank')}, it is a unyank`);
    } finally {
      site.objects.set(yankKey, yank);
      site.objects.set(unyankKey, unyank);
    }
    await expect(verifyPinned()).resolves.toMatchObject({ plugins: 1 });
  });

  it("reports an envelope of the action logged whose signature is not by the entry's signer, or does not verify", async () => {
    const stranger = await testKey('stranger');
    // Dated when the actions were made: a signature after its entry's time is refused for that alone.
    const strangerSigner = await createSigner(stranger.secretKey, undefined, fixedClock(ACTION_SIGNED));
    const keys = ['yank', 'unyank'].map((name) => actionEnvelopeKey(digests.get(name) as string));
    const originals = keys.map((key) => site.objects.get(key));
    const resigned = async (index: number, key: string): Promise<void> => {
      const object = originals[index];
      if (!object) throw new Error('envelope not published');
      const envelope = JSON.parse(new TextDecoder().decode(object.body)) as { action: string; key: string };
      const signature = await strangerSigner.sign(new TextEncoder().encode(envelope.action));
      const body = new TextEncoder().encode(JSON.stringify({ ...envelope, signature, key }));
      await site.put(keys[index] as string, body, {
        contentType: 'application/json',
        cacheControl: CACHE_IMMUTABLE,
      });
    };
    // The same action text (its digest the entry's), signed by another key: by that key, and by the owner's.
    await resigned(0, stranger.publicKey);
    await resigned(1, publisher.publicKey);
    try {
      const found = await disagreements();
      expect(found.map((d) => [d.code, d.seq])).toEqual([
        ['LOG_ENVELOPE_DIFFERS', (await entryOf('yank')).seq],
        ['LOG_ENVELOPE_DIFFERS', (await entryOf('unyank')).seq],
      ]);
      expect(found[0]?.message).toContain(
        `it is signed by ${stranger.fingerprint}, not by ${publisher.fingerprint}`,
      );
      expect(found[1]?.message).toContain(
        `its signature does not verify by its key (${publisher.fingerprint})`,
      );
    } finally {
      for (const [i, key] of keys.entries()) {
        const original = originals[i];
        if (original) site.objects.set(key, original);
      }
    }
    await expect(verifyPinned()).resolves.toMatchObject({ plugins: 1 });
  });
});

describe('when an envelope of an action logged carries its signer’s key with secret key material', () => {
  it('reports it (LOG_ENVELOPE_DIFFERS), its signature by the entry’s signer good: anyone who reads it may sign as that key', async () => {
    const signer = await createSigner(publisher.secretKey, undefined, fixedClock(ACTION_SIGNED));
    const key = actionEnvelopeKey(digests.get('yank') as string);
    const original = site.objects.get(key);
    if (!original) throw new Error('envelope not published');
    const envelope = JSON.parse(new TextDecoder().decode(original.body)) as { action: string };
    const signature = await signer.sign(new TextEncoder().encode(envelope.action));
    try {
      for (const carried of [
        publisher.secretKey,
        (await publicPrimaryWithSecretSubkeys(publisher.secretKey)).armored,
      ]) {
        const body = new TextEncoder().encode(JSON.stringify({ ...envelope, signature, key: carried }));
        await site.put(key, body, { contentType: 'application/json', cacheControl: CACHE_IMMUTABLE });
        const found = await disagreements();
        expect(found.map((d) => [d.code, d.seq])).toEqual([
          ['LOG_ENVELOPE_DIFFERS', (await entryOf('yank')).seq],
        ]);
        expect(found[0]?.message).toContain(
          `its key (${publisher.fingerprint}) holds its secret key material`,
        );
      }
    } finally {
      site.objects.set(key, original);
    }
    await expect(verifyPinned()).resolves.toMatchObject({ plugins: 1 });
  });
});

describe('when the registry logs what its documents do not show', () => {
  it('reports a yank it logged and signed that no document shows, nor any envelope, and a plugin it has no document for', async () => {
    const head = await appendLog(context, [
      {
        type: 'yank',
        plugin: PLUGIN,
        version: '2.1.0',
        signer: heir.fingerprint,
        created: '2026-11-01T23:59:00.000Z',
        time: '2026-11-01T23:59:30.000Z',
      },
      { type: 'publish', plugin: 'ghost-plugin', version: '1.0.0', time: '2026-11-01T23:59:30.000Z' },
    ]);
    const yank = head.length - 2;
    const found = await disagreements();
    expect(found.map((d) => [d.code, d.plugin, d.seq])).toEqual([
      ['LOG_YANK_DIFFERS', PLUGIN, yank],
      ['LOG_PLUGIN_MISSING', 'ghost-plugin', yank + 1],
      ['LOG_ENVELOPE_MISSING', PLUGIN, yank],
    ]);
    expect(found[0]?.message).toBe(
      `log entry ${yank} (yank) of ${PLUGIN}: version 2.1.0 is listed as not yanked`,
    );
  });
});

describe('when the registry published before it kept a log', () => {
  /**
   * A registry of its own (the clock moves on a second a call, so what came first is dated before), with a
   * version, a yank, an advisory and a deprecation from before its log, then a logged publish and yank;
   * `run` gets its log and a verify of it, and the server is closed after.
   */
  async function withOlderRegistry(
    run: (entries: readonly LogEntry[], verifyOlder: () => Promise<unknown>) => Promise<void>,
  ): Promise<void> {
    await withOwnRegistry({ name: 'Older' }, async (own, older, url) => {
      await publish('1.0.0');
      await act('old yank', { action: 'yank', plugin: PLUGIN, version: '1.0.0', reason: 'old' }, publisher);
      const advisory = { id: 'OLD-1', severity: 'low' as const, affected: '*', summary: 'old' };
      await act('old advisory', { action: 'advisory-add', plugin: PLUGIN, advisory }, publisher);
      await act('old deprecation', { action: 'deprecate', plugin: PLUGIN, message: 'old' }, publisher);
      // As it was before it kept a log: then the log begins with the next publish.
      await dropLog(context);
      await publish('1.1.0');
      await act('new yank', { action: 'yank', plugin: PLUGIN, version: '1.1.0' }, publisher);
      const entries = await vouchedLog(own, older.registryKey.publicKey);
      expect(entries.map((e) => e.type)).toEqual(['publish', 'yank']);
      await run(entries, () => verifyRegistry({ url, pinnedKey: older.registryKey.publicKey, now: NOW }));
    });
  }

  it('takes what is dated before its first entry unlogged, and holds what is dated after to the log', async () => {
    await withOlderRegistry(async (entries, verifyOlder) => {
      await expect(verifyOlder()).resolves.toMatchObject({ plugins: 1, envelopes: 1 });

      // Shown now, dated after the log began: an advisory, a deprecation's change, owners of its own.
      await editPlugin(context, PLUGIN, (doc) => {
        doc.advisories = [
          ...(doc.advisories ?? []),
          {
            id: 'NEW-1',
            severity: 'high',
            affected: '*',
            summary: 'planted',
            published: entries[1]?.time as string,
          },
        ];
      });
      const error = await rejectionOf(verifyOlder(), LogDisagreementError);
      expect(error.disagreements.map((d) => d.code)).toEqual(['LOG_ADVISORY_UNLOGGED']);
    });
  });

  it('does not take a date that is not a time as one before the log', async () => {
    await withOlderRegistry(async (_entries, verifyOlder) => {
      await editPlugin(context, PLUGIN, (doc) => {
        versionOf(doc, '1.0.0').published = 'long ago';
        doc.advisories = (doc.advisories ?? []).map((a) => ({ ...a, published: '' }));
        // Read by Date.parse as the first day of 2001.
        if (doc.deprecation) doc.deprecation = { ...doc.deprecation, at: '1' };
      });
      const error = await rejectionOf(verifyOlder(), LogDisagreementError);
      expect(error.disagreements.map((d) => d.code)).toEqual([
        'LOG_VERSION_UNLOGGED',
        'LOG_DEPRECATION_UNLOGGED',
        'LOG_ADVISORY_UNLOGGED',
      ]);
      expect(error.disagreements[0]?.message).toBe(
        `${PLUGIN}: version 1.0.0, published long ago, has no publish entry`,
      );
    });
  });
});

describe('when a run that died logged an action, and a newer one on a related slot came before its retry', () => {
  /**
   * A registry of its own, with the operator's key, two versions, and `first` logged by a run that dies
   * writing the plugin document (after the log and the marker, before any document shows it); then `newer`,
   * made after it, submitted alone in its batch (as the local server takes each submission), after a version
   * `publishedBetween` if given, and the dead run's retry. Returns the plugin's document, once verify --url has held it to the log.
   */
  async function afterDeadRun(
    first: { readonly body: ActionBody; readonly signer: () => KeyPair },
    newer: { readonly body: ActionBody; readonly signer: () => KeyPair },
    publishedBetween?: string,
  ): Promise<PluginDocument> {
    const operators = [{ fingerprint: operator.fingerprint, key: operator.publicKey }];
    return withOwnRegistry({ name: 'Crashed', operators }, async (own, fresh, url) => {
      await publish('1.0.0');
      await publish('2.0.0');
      made += 1;
      const dying = await submitAction(context.intake, first.body, first.signer(), {
        registry: base,
        now: new Date(ACTION_SIGNED.getTime() + made * 1000),
      });
      await diesWritingDocument(own, dying.key);

      if (publishedBetween !== undefined) await publish(publishedBetween);
      await act('newer', newer.body, newer.signer());
      await processSubmissions(context, [dying.key]);

      const entries = await vouchedLog(own, fresh.registryKey.publicKey);
      const both = [dying.digest, digests.get('newer')];
      // Both logged, the dead run's first.
      expect(entries.map((e) => e.digest).filter((d) => both.includes(d))).toEqual(both);
      await expect(
        verifyRegistry({ url, pinnedKey: fresh.registryKey.publicKey, now: NOW }),
      ).resolves.toMatchObject({ plugins: 1 });
      return JSON.parse(new TextDecoder().decode(own.objects.get(pluginDocumentKey(PLUGIN))?.body));
    });
  }

  it('shows a transfer, then an owner the operator added after it, as the log has them', async () => {
    const stranger = await testKey('stranger');
    const doc = await afterDeadRun(
      {
        body: { action: 'transfer', plugin: PLUGIN, key: heir.publicKey, reason: 'sold' },
        signer: () => operator,
      },
      { body: { action: 'owners-add', plugin: PLUGIN, key: stranger.publicKey }, signer: () => operator },
    );
    expect(doc.owners).toEqual([heir.fingerprint, stranger.fingerprint]);
  });

  it('shows a whole-plugin deprecation, then a ranged one made after it, as the log has them', async () => {
    const doc = await afterDeadRun(
      {
        body: { action: 'deprecate', plugin: PLUGIN, message: 'use another' },
        signer: () => publisher,
      },
      {
        body: { action: 'deprecate', plugin: PLUGIN, range: '<2.0.0', message: 'old' },
        signer: () => publisher,
      },
    );
    expect(doc.deprecation?.message).toBe('use another');
    expect(doc.versions.map((v) => [v.version, v.deprecation_message])).toEqual([
      ['2.0.0', 'use another'],
      ['1.0.0', 'old'],
    ]);
  });

  it('shows a version published before the newer one under the whole-plugin deprecation logged before it', async () => {
    const doc = await afterDeadRun(
      {
        body: { action: 'deprecate', plugin: PLUGIN, message: 'use another' },
        signer: () => publisher,
      },
      {
        body: { action: 'deprecate', plugin: PLUGIN, range: '<2.0.0', message: 'old' },
        signer: () => publisher,
      },
      '3.0.0',
    );
    expect(doc.versions.map((v) => [v.version, v.deprecation_message])).toEqual([
      ['3.0.0', 'use another'],
      ['2.0.0', 'use another'],
      ['1.0.0', 'old'],
    ]);
  });
});

describe('when entries of one slot were logged out of the order they were made', () => {
  /** A log of `fields`, chained, as `readWholeLog` gives it. */
  function logOf(fields: readonly Omit<LogEntry, 'seq' | 'prev'>[]): ReadEntry[] {
    let head = EMPTY_LOG;
    return fields.map((f) => {
      const next = nextEntry(head, f);
      head = next.head;
      return { entry: next.entry, line: next.line, hash: next.head.head };
    });
  }
  const entry = (type: LogEntry['type'], created: string, time: string): Omit<LogEntry, 'seq' | 'prev'> => ({
    time,
    type,
    plugin: PLUGIN,
    version: '1.0.0',
    signer: 'A'.repeat(40),
    digest: 'b'.repeat(64),
    ...(type === 'publish' ? {} : { created }),
  });

  it('takes the statement made last as standing, or the time it was logged when that is earlier', () => {
    const doc = (yanked: boolean): PluginDocument =>
      ({
        schema: 'plugindex/plugin/v1',
        name: PLUGIN,
        plugin_type: 'source',
        latest_version: null,
        channels: {},
        capabilities: [],
        supported_providers: [],
        tags: [],
        owners: ['A'.repeat(40)],
        versions: [
          {
            version: '1.0.0',
            published: '2026-11-01T00:00:00.000Z',
            yanked,
            deprecated: false,
            publisher: 'A'.repeat(40),
            source_sha256: 'b'.repeat(64),
          },
        ],
      }) as unknown as PluginDocument;
    // An unyank made before the yank, logged after it (a run that died, resumed): the yank stands.
    const overtaken = foldLog(
      logOf([
        entry('publish', '', '2026-11-01T00:00:00.000Z'),
        entry('yank', '2026-11-01T00:02:00.000Z', '2026-11-01T00:03:00.000Z'),
        entry('unyank', '2026-11-01T00:01:00.000Z', '2026-11-01T00:04:00.000Z'),
      ]),
    );
    expect(compareDocument(overtaken, doc(true))).toEqual([]);
    expect(compareDocument(overtaken, doc(false)).map((d) => [d.code, d.seq])).toEqual([
      ['LOG_YANK_DIFFERS', 1],
    ]);
    // A yank dated ahead of when it was logged counts from then: an unyank made after that stands.
    const ahead = foldLog(
      logOf([
        entry('publish', '', '2026-11-01T00:00:00.000Z'),
        entry('yank', '2026-11-01T00:09:00.000Z', '2026-11-01T00:03:00.000Z'),
        entry('unyank', '2026-11-01T00:05:00.000Z', '2026-11-01T00:06:00.000Z'),
      ]),
    );
    expect(compareDocument(ahead, doc(false))).toEqual([]);
  });
});

describe('when a run that died logged an action, and its upload was deleted before its retry', () => {
  it('verifies the registry once the next batch, of nothing, has run: the action shown as the log has it', async () => {
    // Prepare: a registry of its own; an owner's yank logged by a run that dies writing the plugin document;
    // its upload then deleted (by its publisher, or an operator clearing incoming/).
    await withOwnRegistry({ name: 'Cleared' }, async (own, fresh, url) => {
      await publish('1.0.0');
      made += 1;
      const dying = await submitAction(
        context.intake,
        { action: 'yank', plugin: PLUGIN, version: '1.0.0', reason: 'broken' },
        publisher,
        { registry: base, now: new Date(ACTION_SIGNED.getTime() + made * 1000) },
      );
      await diesWritingDocument(own, dying.key);
      await context.intake.delete(dying.key);

      // Act: the next batch (the event of the upload delivered again: incoming/ holds nothing).
      await processSubmissions(context);

      // Assess: the log holds the yank once, and verify --url finds the documents showing what it holds.
      const entries = await vouchedLog(own, fresh.registryKey.publicKey);
      expect(entries.filter((e) => e.digest === dying.digest)).toHaveLength(1);
      await expect(
        verifyRegistry({ url, pinnedKey: fresh.registryKey.publicKey, now: NOW }),
      ).resolves.toMatchObject({ plugins: 1 });
    });
  });
});
