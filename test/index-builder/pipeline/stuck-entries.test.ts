/**
 * `plugindex rebuild` and `rotate-key` while a logged publish is stuck (pipeline/stuck-entries.ts): its entry
 * past what the published snapshot counts, its plugin document refused by the store, so no document shows
 * it. Both signed a snapshot over that entry, which then vouched for a publish no document shows (verify
 * --url: LOG_DISAGREES) and barred its void for good (clients: LOG_VOID_OF_SEEN); both now refuse
 * LOGGED_PUBLISH_STUCK before they change anything. The documented recovery of a document that no longer
 * renders (put it right, then rebuild) still goes on: its entry is shown by the document. On the filesystem
 * store, as refused-recovery.test.ts.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { forgetBins } from '../../../index-builder/catalog.ts';
import { PlugindexError, StoreError, TrustError } from '../../../index-builder/errors.ts';
import { CATALOG_META_KEY, CATALOG_SNAPSHOT_RECORD_KEY } from '../../../index-builder/layout.ts';
import { type LogEntry, lineHash, NO_EFFECT, nextEntry, parseSegment } from '../../../index-builder/log.ts';
import type { PluginDocument, SnapshotDocument } from '../../../index-builder/model.ts';
import {
  type BatchStep,
  flushIndexes,
  type PipelineContext,
  processSubmissions,
  rebuildRegistry,
  refreshSnapshot,
} from '../../../index-builder/pipeline/index.ts';
import { type LogIntent, LogWriter, readIntentRecords } from '../../../index-builder/pipeline/log-writer.ts';
import { rotateRegistryKey } from '../../../index-builder/pipeline/rotate.ts';
import { signRotation } from '../../../index-builder/rotation.ts';
import { createSigner, type Signer } from '../../../index-builder/signing.ts';
import { submitAction } from '../../support/actions.ts';
import { makeBundle, makeRegistry, testKey, validManifest } from '../../support/fixtures.ts';
import {
  clientSawFirst,
  diesOnceLogged,
  installable,
  laterRunInstalls,
  pageMadeAFolder,
  registryOnStores,
  servedOnDisk,
} from '../../support/served-registry.ts';

const folders: string[] = [];
afterEach(async () => {
  for (const folder of folders.splice(0)) await rm(folder, { recursive: true, force: true });
});

let nextSigner: Signer;
beforeAll(async () => {
  nextSigner = await createSigner((await testKey('registry-2')).secretKey);
});

/** A registry on two filesystem stores in a folder of its own; first-plugin published (entry 0). */
async function registryOnDisk() {
  const root = await mkdtemp(path.join(tmpdir(), 'plugindex-stuck-entries-'));
  folders.push(root);
  const site = path.join(root, 'site');
  const { base, context, submit } = await registryOnStores(root);
  const batch = async (onStep?: (step: BatchStep) => void) => {
    try {
      return await processSubmissions({ ...context, ...(onStep ? { onStep } : {}) });
    } finally {
      forgetBins(context.intake); // the next run is another process
    }
  };
  await submit(await makeBundle({ manifest: validManifest({ name: 'first-plugin' }) }));
  await batch();
  return { root, site, base, context, submit, batch };
}

/** Every file under `root` by its path, with its bytes' sha256: a refusal leaves them as they were. */
/** `registry`'s first key rotation, to `nextSigner`, signed by its key. */
function firstRotation(registry: Awaited<ReturnType<typeof registryOnDisk>>) {
  return signRotation({
    registry: registry.context.config.url,
    sequence: 1,
    previous: registry.base.signer,
    next: nextSigner,
    now: new Date('2026-11-02T00:00:00Z'),
  });
}

async function filesOf(root: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    files.set(
      path.relative(root, file),
      createHash('sha256')
        .update(await readFile(file))
        .digest('hex'),
    );
  }
  return files;
}

describe('when a logged publish is stuck, its plugin document refused by the store', () => {
  it('refuses rebuild and rotate-key LOGGED_PUBLISH_STUCK, changing nothing, and both go on once a batch publishes it', async () => {
    // Prepare: a folder where demo-plugin's document goes (EISDIR: STORE_REFUSED); its publish is logged
    // (entry 1), then its document refused: the batch fails LOGGED_PUBLISH_FAILED, the snapshot counting 1.
    const registry = await registryOnDisk();
    const document = path.join(registry.site, 'plugins/demo-plugin/index.json');
    await mkdir(document, { recursive: true });
    const stuck = await registry.submit(await makeBundle());
    await expect(registry.batch()).rejects.toMatchObject({ code: 'LOGGED_PUBLISH_FAILED' });
    const before = await filesOf(registry.root);
    const rotation = await firstRotation(registry);

    // Act, Assess: each refuses, naming the entry, the publish, its submission and what to do (before,
    // each signed a snapshot counting entry 1, which no document shows), and nothing changed.
    const refusal = (command: string) => ({
      name: 'PlugindexError',
      code: 'LOGGED_PUBLISH_STUCK',
      message: expect.stringMatching(
        new RegExp(
          `^plugindex ${command} refused, nothing changed: log entry 1, the publish of demo-plugin@1\\.0\\.0 \\(submission ${stuck.id}\\), is past the 1 entries the published snapshot counts, and plugins/demo-plugin/index\\.json is missing or unreadable .*LOG_DISAGREES.*LOG_VOID_OF_SEEN.*run the batch \\(plugindex process\\).*voidRefusedEntries.*then run ${command} again$`,
        ),
      ),
    });
    const rebuilt = rebuildRegistry(registry.context);
    await expect(rebuilt).rejects.toBeInstanceOf(PlugindexError);
    await expect(rebuilt).rejects.toMatchObject(refusal('rebuild'));
    expect(await filesOf(registry.root)).toEqual(before);
    await expect(
      rotateRegistryKey({ ...registry.context, signer: nextSigner }, rotation.bytes),
    ).rejects.toMatchObject(refusal('rotate-key'));
    expect(await filesOf(registry.root)).toEqual(before);

    // Once the path is mended, the batch publishes it at its entry; then both go on.
    await rm(document, { recursive: true });
    const mended = await registry.batch();
    expect(mended.outcomes.map((o) => [o.plugin, o.status, o.seq])).toEqual([['demo-plugin', 'accepted', 1]]);
    await expect(rebuildRegistry(registry.context)).resolves.toMatchObject({ plugins: 2 });
    forgetBins(registry.context.intake);
    await expect(
      rotateRegistryKey({ ...registry.context, signer: nextSigner }, rotation.bytes),
    ).resolves.toMatchObject({ status: 'rotated' });
  }, 60_000);
});

describe('when a logged publish is shown by a document that no longer renders', () => {
  it('lets the rebuild go on once the document is put right, and the batch then publishes it at its entry', async () => {
    // Prepare: demo-plugin@1.0.0 published; a run logs 2.0.0 (entry 2), writes its document and dies
    // before its page (its catalog not recording it); that document then holds text the render refuses (as
    // a release before text was checked wrote it), recorded as being written, as the dead run left it.
    const registry = await registryOnDisk();
    await registry.submit(await makeBundle());
    await registry.batch();
    await registry.submit(await makeBundle({ manifest: validManifest({ version: '2.0.0' }) }));
    const site = registry.context.site;
    const put = site.put.bind(site);
    site.put = async (key, body, options) => {
      if (key === 'plugins/demo-plugin/index.html') throw new Error('killed before the page');
      return put(key, body, options);
    };
    await expect(registry.batch()).rejects.toThrow('killed before the page');
    site.put = put;
    const key = 'plugins/demo-plugin/index.json';
    const file = path.join(registry.site, key);
    const written = JSON.parse(await readFile(file, 'utf8')) as PluginDocument;
    expect(written.versions.map((v) => v.version)).toEqual(['2.0.0', '1.0.0']);
    const broken = JSON.stringify({ ...written, description: 'broken \ud800 text' });
    await writeFile(file, broken);
    const meta = await registry.context.intake.get(CATALOG_META_KEY);
    const sha = createHash('sha256').update(broken).digest('hex');
    await registry.context.intake.put(
      CATALOG_META_KEY,
      new TextEncoder().encode(`${new TextDecoder().decode(meta?.body)}writing\t${key}\t${sha}\n`),
      { contentType: 'text/plain', cacheControl: 'private, no-store' },
    );
    await expect(registry.batch()).rejects.toMatchObject({ code: 'LOGGED_PUBLISH_FAILED' });

    // Act, Assess: a rebuild before the document is put right refuses it as unrenderable (its entry is
    // shown: not LOGGED_PUBLISH_STUCK); once put right, the rebuild goes on, and the batch publishes 2.0.0
    // at its entry.
    await expect(rebuildRegistry(registry.context)).rejects.toMatchObject({
      code: 'PUBLISHED_DOCUMENT_UNRENDERABLE',
    });
    forgetBins(registry.context.intake);
    await writeFile(file, JSON.stringify(written));
    await expect(rebuildRegistry(registry.context)).resolves.toMatchObject({ plugins: 2 });
    forgetBins(registry.context.intake);
    const mended = await registry.batch();
    expect(mended.outcomes.map((o) => [o.plugin, o.version, o.status, o.seq])).toEqual([
      ['demo-plugin', '2.0.0', 'accepted', 2],
    ]);
  }, 60_000);
});

describe('when a stuck publish is followed in its batch by the removal of another version of its plugin', () => {
  it('still refuses rebuild LOGGED_PUBLISH_STUCK (a remove takes one version out, never the plugin)', async () => {
    // Prepare: demo-plugin@1.0.0 published; one batch logs the publish of 2.0.0, then the operator's removal
    // of 1.0.0, and dies writing demo-plugin's document: neither shows, the snapshot counting 1.
    const operator = await testKey('operator');
    const registry = await makeRegistry({
      operators: [{ fingerprint: operator.fingerprint, key: operator.publicKey }],
    });
    await registry.submit(await makeBundle());
    await processSubmissions(registry.context);
    await registry.submit(await makeBundle({ manifest: validManifest({ version: '2.0.0' }) }));
    await submitAction(
      registry.intake,
      { action: 'remove', plugin: 'demo-plugin', version: '1.0.0', reason: 'malware' },
      operator,
    );
    const site = registry.context.site;
    const put = site.put.bind(site);
    site.put = async (key, body, options) => {
      if (key === 'plugins/demo-plugin/index.json') throw new Error('killed before the document');
      return put(key, body, options);
    };
    await expect(processSubmissions(registry.context)).rejects.toThrow('killed before the document');
    site.put = put;
    forgetBins(registry.intake);
    const log = new TextDecoder().decode((await registry.intake.get('state/log.json'))?.body);
    expect(JSON.parse(log)).toMatchObject({ length: 3 });

    // Act, Assess: the publish of 2.0.0 (entry 1) is stuck whatever the removal (entry 2) after it; before,
    // the removal, read as the plugin's, let the rebuild sign a snapshot counting both.
    await expect(rebuildRegistry(registry.context)).rejects.toMatchObject({
      code: 'LOGGED_PUBLISH_STUCK',
      message: expect.stringContaining('log entry 1, the publish of demo-plugin@2.0.0'),
    });
  }, 60_000);
});

/** The snapshot as published: its generation, expiry and the log head it counts. */
async function publishedSnapshot(site: PipelineContext['site']): Promise<SnapshotDocument> {
  return JSON.parse(new TextDecoder().decode((await site.get('snapshot.json'))?.body)) as SnapshotDocument;
}

/**
 * first-plugin published (entry 0) and installed by a client (it remembers the log of one entry); with
 * `defer`, other-plugin published by a batch deferring the index documents, as the local watcher's do
 * (entry 1, the index documents left pending). Then demo-plugin's publish logged and stuck, the snapshot not
 * counting it, `how`: `refused`, a folder where its page goes (EISDIR: STORE_REFUSED, as void-writer.test.ts),
 * its document written, its page refused, the batch failing LOGGED_PUBLISH_FAILED; `died`, the batch killed
 * once it is logged, then that folder made. The registry not opted in to voids.
 */
async function stuckAfterFirst(defer: boolean, how: 'refused' | 'died') {
  const registry = await servedOnDisk('plugindex-stuck-refresh-', cleanups, {});
  const deferring = { ...registry.context, ...(defer ? { deferIndexes: true } : {}) };
  const batch = async (context: PipelineContext = deferring) => {
    try {
      return await processSubmissions(context);
    } finally {
      forgetBins(context.intake); // the next run is another process
    }
  };
  const saw = await clientSawFirst(registry, cleanups);
  if (defer) {
    await registry.submit(await installable('other-plugin'));
    expect(await batch()).toMatchObject({ indexesPending: true });
  }
  const stuck = await registry.submit(await installable('demo-plugin'));
  if (how === 'died') await diesOnceLogged(deferring, [stuck.key]);
  const page = await pageMadeAFolder(registry.siteRoot);
  if (how === 'refused') await expect(batch()).rejects.toMatchObject({ code: 'LOGGED_PUBLISH_FAILED' });
  const before = await publishedSnapshot(registry.context.site);
  const seq = defer ? 2 : 1;
  expect(before.log?.length).toBe(seq);
  const voiding = {
    ...registry.context,
    config: { ...registry.context.config, voidRefusedEntries: true as const },
  };
  return { registry, saw, page, stuck, seq, before, batch, voiding };
}

/** Every intent the intake store's intent records name, by submission id. */
async function intentsNamed(intake: PipelineContext['intake']): Promise<Map<string, LogIntent>> {
  const named = new Map<string, LogIntent>();
  for (const intents of (await readIntentRecords(intake)).values())
    for (const [id, intent] of intents) named.set(id, intent);
  return named;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const RENEWALS = [
  ['a refresh', 'plugindex refresh', (context: PipelineContext) => refreshSnapshot(context)],
  [
    "the local watcher's flush of the index documents",
    'the flush of the index documents',
    (context: PipelineContext) => flushIndexes(context),
  ],
] as const;

describe.each(RENEWALS)('when %s meets a stuck publish', (_, by, renew) => {
  const command = by === 'plugindex refresh' ? 'refresh' : 'flush';
  it('renews the snapshot without counting the entry, which verifies, and a batch then voids it', async () => {
    // Prepare
    const { registry, saw, stuck, seq, before, voiding } = await stuckAfterFirst(command === 'flush', 'died');

    // Act
    const renewed = await renew(registry.context);
    forgetBins(registry.context.intake);

    // Assert: a new generation and expiry, the log counted as the published snapshot counted it (before, it
    // counted the stuck entry, which verify --url refused LOG_DISAGREES, and the void below was never
    // written), and the entry named, with what to do.
    const after = await publishedSnapshot(registry.context.site);
    expect(renewed.generation).toBe(before.generation + 1);
    expect(after.generation).toBe(before.generation + 1);
    expect(Date.parse(after.expires)).toBeGreaterThan(Date.parse(before.expires));
    expect(after.log).toEqual(before.log);
    expect(renewed.stuck).toMatchObject({
      seq,
      plugin: 'demo-plugin',
      version: '1.0.0',
      document: 'missing',
      submission: stuck.id,
    });
    expect(renewed.stuck?.message).toMatch(
      new RegExp(
        `^${by} signed the snapshot counting the ${seq} log entries the published one counts, not the ${seq + 1} logged: log entry ${seq}, the publish of demo-plugin@1\\.0\\.0 \\(submission ${stuck.id}\\).*run the batch \\(plugindex process\\).*voidRefusedEntries`,
      ),
    );
    // verify --url (the client's own readers) takes a log whose segments hold entries past the head counted.
    const verified = await registry.verify();
    expect(verified.log).toEqual(before.log);
    expect(verified.generation).toBe(after.generation);
    // And so does the client that saw the log of one entry.
    const { updated } = await laterRunInstalls(saw, cleanups, 'first-plugin');
    expect(updated?.error).toBeUndefined();

    // Act: the registry opts in to voids, and the next batch meets the entry again, its page refused.
    const voided = await processSubmissions(voiding);
    forgetBins(registry.context.intake);

    // Assert: the entry voided (by the next), which clients that saw the renewed snapshot take.
    expect(voided.outcomes.map((o) => [o.plugin, o.status, o.problems.map((p) => p.code)])).toEqual([
      ['demo-plugin', 'rejected', ['LOGGED_ENTRY_VOIDED']],
    ]);
    expect((await registry.verify()).voided).toMatchObject([{ seq, by: seq + 1, plugin: 'demo-plugin' }]);
    const again = await laterRunInstalls(saw, cleanups, 'first-plugin');
    expect(again.updated?.error).toBeUndefined();
  }, 90_000);

  it('renews the snapshot, and the batch run once the path is mended publishes the entry at its seq', async () => {
    // Prepare
    const { registry, saw, page, stuck, seq, before, batch } = await stuckAfterFirst(
      command === 'flush',
      'refused',
    );
    const renewed = await renew(registry.context);
    forgetBins(registry.context.intake);
    // Its document written, but bound by no bin the snapshot signs: not counted (before, it was, and verify
    // --url refused the registry LOG_DISAGREES).
    expect(renewed.stuck).toMatchObject({ seq, document: 'unbound', submission: stuck.id });
    expect((await publishedSnapshot(registry.context.site)).log).toEqual(before.log);
    expect((await registry.verify()).log).toEqual(before.log);

    // Act
    await rm(page, { recursive: true });
    const mended = await batch(registry.context);

    // Assert: published at its entry, the snapshot counting it; verified, and the client installs it.
    expect(mended.outcomes.map((o) => [o.plugin, o.status, o.seq])).toEqual([
      ['demo-plugin', 'accepted', seq],
    ]);
    expect((await publishedSnapshot(registry.context.site)).log?.length).toBe(seq + 1);
    expect((await registry.verify()).log.length).toBe(seq + 1);
    const { updated, installed } = await laterRunInstalls(saw, cleanups, 'demo-plugin');
    expect(updated?.error).toBeUndefined();
    expect(installed).toBeDefined();
  }, 90_000);
});

describe('when a refresh meets entries past the head counted that the documents it binds show', () => {
  it('counts them, as before', async () => {
    // Prepare: first-plugin published (entry 0); its publish appended again (entry 1), as
    // test/support/lifecycle.ts makes a log history: the document the snapshot binds shows that version.
    const registry = await servedOnDisk('plugindex-stuck-refresh-', cleanups, {});
    await registry.batch([(await registry.submit(await installable('first-plugin'))).key]);
    const [first] = await registry.entries();
    const { seq: _seq, prev: _prev, ...again } = first as LogEntry;
    const writer = await LogWriter.open(registry.context);
    writer.append(again);
    await writer.flush();

    // Act
    const renewed = await refreshSnapshot(registry.context);

    // Assert
    expect(renewed.stuck).toBeUndefined();
    expect((await publishedSnapshot(registry.context.site)).log).toEqual(writer.head);
    expect((await registry.verify()).log).toEqual(writer.head);
  }, 60_000);
});

describe('when a refresh meets a stuck yank, its page refused by the store', () => {
  it('renews the snapshot without counting it, and the batch run once the path is mended applies it at its entry', async () => {
    // Prepare: demo-plugin published (entry 0); a folder where its page goes, so its owner's yank is logged
    // (entry 1), its document rewritten, its page refused: the batch fails LOGGED_PUBLISH_FAILED.
    const registry = await servedOnDisk('plugindex-stuck-refresh-', cleanups, {});
    await registry.batch([(await registry.submit(await installable('demo-plugin'))).key]);
    const page = await pageMadeAFolder(registry.siteRoot);
    await submitAction(
      registry.context.intake,
      { action: 'yank', plugin: 'demo-plugin', version: '1.0.0', reason: 'corrupts the cache' },
      await testKey('publisher'),
      { registry: registry.url },
    );
    await expect(registry.batch()).rejects.toMatchObject({ code: 'LOGGED_PUBLISH_FAILED' });
    const before = await publishedSnapshot(registry.context.site);
    expect(before.log?.length).toBe(1);

    // Act
    const renewed = await refreshSnapshot(registry.context);
    forgetBins(registry.context.intake);

    // Assert: renewed, the yank not counted (before, it was: a snapshot vouching for a yank the document it
    // binds does not show, LOG_DISAGREES), and named. (verify --url meanwhile meets the document the failed
    // batch rewrote, which no bin binds, whatever the refresh counts: until the batch is mended.)
    const after = await publishedSnapshot(registry.context.site);
    expect(after.generation).toBe(before.generation + 1);
    expect(after.log).toEqual(before.log);
    // Told under an action's code, not a publish's (before: LOGGED_PUBLISH_STUCK, for a yank).
    expect(renewed.stuck).toMatchObject({
      seq: 1,
      type: 'yank',
      plugin: 'demo-plugin',
      version: '1.0.0',
      code: 'LOGGED_ACTION_STUCK',
    });
    expect(renewed.stuck?.message).toMatch(
      /^plugindex refresh signed the snapshot counting the 1 log entries the published one counts, not the 2 logged: log entry 1, the yank of demo-plugin@1\.0\.0 \(submission \S+\), .*LOG_DISAGREES\)\. Mend the path .* which applies it at its entry$/,
    );

    // Act: the path mended, the next batch.
    await rm(page, { recursive: true });
    const mended = await registry.batch();

    // Assert: the yank applied at its entry, counted, and verified.
    expect(mended.outcomes.map((o) => [o.action, o.status, o.seq])).toEqual([['yank', 'accepted', 1]]);
    expect((await registry.verify()).log.length).toBe(2);
  }, 60_000);
});

describe('when a refresh meets a stuck publish and a snapshot.json that claims a shorter log than the signed one', () => {
  it('never counts fewer entries than the signed snapshot counted, so the client that saw them takes it', async () => {
    // Prepare: first-plugin published and seen by a client (entry 0), demo-plugin's publish stuck (entry 1).
    // The catalog's record of the snapshot gone (the intake store's state/ lost, or a catalog saved before it
    // kept one), and snapshot.json replaced by one naming no log: taken on its word, as nothing holds it.
    // The signed head is the floor a refresh signs (log-writer.ts `currentLogHead`); counting what
    // snapshot.json claims to leave the stuck entry out, it signed an empty log over it, and every client that
    // had seen the log refused the registry as rolled back.
    const { registry, saw, before } = await stuckAfterFirst(false, 'died');
    const meta = (await registry.context.intake.get(CATALOG_META_KEY))?.body as Uint8Array;
    const lines = new TextDecoder().decode(meta).split('\n');
    await registry.context.intake.put(
      CATALOG_META_KEY,
      new TextEncoder().encode(lines.filter((line) => !line.startsWith('snapshot\t')).join('\n')),
      { contentType: 'text/plain', cacheControl: 'no-store' },
    );
    const { log: _log, ...planted } = before;
    await writeFile(path.join(registry.siteRoot, 'snapshot.json'), JSON.stringify(planted));

    // Act
    const renewed = await refreshSnapshot(registry.context);
    forgetBins(registry.context.intake);

    // Assert: the signed head counted (the stuck entry past it still left out, and named).
    expect((await publishedSnapshot(registry.context.site)).log).toEqual(before.log);
    expect(renewed.stuck).toMatchObject({ seq: 1, plugin: 'demo-plugin', counted: 1, logged: 2 });
    const { updated } = await laterRunInstalls(saw, cleanups, 'first-plugin');
    expect(updated?.error).toBeUndefined();
  }, 90_000);
});

describe.each(RENEWALS)(
  'when %s upgrades a catalog of another format over a stuck publish',
  (_, by, renew) => {
    it('waits to upgrade it, signing the published snapshot again without counting the entry, and names it', async () => {
      // Prepare: demo-plugin's publish stuck past the head (a batch died once it was logged); the catalog left
      // as the release before wrote it, so this release's first refresh or flush upgrades it. That upgrade's
      // rebuild signed the log's head, the stuck entry counted: no void could then be taken of it
      // (LOG_VOID_OF_SEEN), and verify --url refused the registry (LOG_DISAGREES). It now waits for the batch
      // that settles the entry (`upgradeWaiting`).
      const { registry, saw, seq, before } = await stuckAfterFirst(false, 'died');
      await catalogOfAnotherFormat(registry.context.intake);

      // Act
      const renewed = await renew(registry.context);
      forgetBins(registry.context.intake);

      // Assert: the next generation of the published snapshot (its documents, the log counted as it counted
      // it), the catalog left of the other format, the entry named; the registry verifies and the client that
      // saw it updates.
      const after = await publishedSnapshot(registry.context.site);
      expect(after.generation).toBe(before.generation + 1);
      expect(after.documents).toEqual(before.documents);
      expect(after.log).toEqual(before.log);
      expect(new TextDecoder().decode((await registry.context.intake.get(CATALOG_META_KEY))?.body)).toMatch(
        /^plugindex-catalog 6\n/,
      );
      expect(renewed.stuck).toMatchObject({
        seq,
        type: 'publish',
        plugin: 'demo-plugin',
        document: 'missing',
      });
      expect(renewed.stuck?.message).toMatch(
        new RegExp(`^${by} signed the snapshot counting the ${seq} log entries`),
      );
      // The operator is told the upgrade waits on the entry, in the words and in the notice's fields (the
      // function's error line carries them): it said only what a plain refresh says.
      expect(renewed.stuck?.message).toContain('the catalog upgrade is on hold until the entry is settled');
      expect(renewed.stuck).toMatchObject({ upgradeHeld: true });
      expect((await registry.verify()).log).toEqual(before.log);
      const { updated } = await laterRunInstalls(saw, cleanups, 'first-plugin');
      expect(updated?.error).toBeUndefined();

      // Each wait records the snapshot it signs (state/catalog/snapshot-writing.tsv), and nothing let them go
      // until the upgrade ran: a registry waiting for weeks grew the object a line a refresh. It keeps the
      // highest generation signed (and the one it writes over), so waits after it stay past every one.
      for (let i = 0; i < 4; i++) {
        await renew(registry.context);
        forgetBins(registry.context.intake);
      }
      const record = new TextDecoder().decode(
        (await registry.context.intake.get(CATALOG_SNAPSHOT_RECORD_KEY))?.body,
      );
      const lines = record.split('\n').filter(Boolean);
      const last = await publishedSnapshot(registry.context.site);
      expect(last.generation).toBe(before.generation + 5);
      expect(lines.length).toBeLessThanOrEqual(2);
      expect(lines.at(-1)).toMatch(new RegExp(`^${last.generation}\t`));
    }, 90_000);
  },
);

/**
 * Every write of demo-plugin's document refused by the filesystem store, as it refuses a key it cannot write
 * (StoreError STORE_REFUSED), the document still read as published: running as root, no mode or folder on
 * disk refuses the write and leaves the file readable. `mend` lets writes through again.
 */
function documentWriteRefused(site: PipelineContext['site']): { readonly mend: () => void } {
  const put = site.put.bind(site);
  site.put = async (key, body, options) => {
    if (key === 'plugins/demo-plugin/index.json')
      throw new StoreError('STORE_REFUSED', key, `cannot write ${JSON.stringify(key)}: refused`);
    return put(key, body, options);
  };
  return { mend: () => (site.put = put) };
}

/**
 * The catalog's meta file put back as the release before wrote it (format 6): whatever runs next upgrades it,
 * rebuilding it from the documents served (`currentCatalog`, `rebuiltIfOutdated`).
 */
async function catalogOfAnotherFormat(intake: PipelineContext['intake']): Promise<void> {
  const meta = new TextDecoder().decode((await intake.get(CATALOG_META_KEY))?.body);
  expect(meta.startsWith('plugindex-catalog 8\n')).toBe(true);
  await intake.put(
    CATALOG_META_KEY,
    new TextEncoder().encode(meta.replace(/^plugindex-catalog 8\n/, 'plugindex-catalog 6\n')),
    { contentType: 'text/tab-separated-values', cacheControl: 'private, no-store' },
  );
  forgetBins(intake);
}

describe('when a batch upgrades a catalog of another format over a stuck publish whose document the store refuses again', () => {
  /**
   * first-plugin published and seen by a client (entry 0); demo-plugin's publish logged (entry 1), its
   * document's write refused, the batch failing LOGGED_PUBLISH_FAILED; then the catalog of another format.
   */
  async function stuckBeforeUpgrade() {
    const registry = await servedOnDisk('plugindex-stuck-upgrade-', cleanups, {});
    const saw = await clientSawFirst(registry, cleanups);
    const refused = documentWriteRefused(registry.context.site);
    const stuck = await registry.submit(await installable('demo-plugin'));
    await expect(registry.batch()).rejects.toMatchObject({ code: 'LOGGED_PUBLISH_FAILED' });
    const before = await publishedSnapshot(registry.context.site);
    expect(before.log?.length).toBe(1);
    await catalogOfAnotherFormat(registry.context.intake);
    return { registry, saw, refused, stuck, before };
  }

  it('commits the upgrade without counting the entry, so the failed batch leaves a snapshot that verifies', async () => {
    // Prepare
    const { registry, saw, before } = await stuckBeforeUpgrade();

    // Act: the batch upgrades the catalog first (its rebuild commits a snapshot), then meets the entry, its
    // document refused again.
    await expect(registry.batch()).rejects.toMatchObject({ code: 'LOGGED_PUBLISH_FAILED' });

    // Assert: the upgrade committed (a new generation), counting the head the published snapshot counted, in
    // snapshot.json and in the signed pair alike. Before, it counted the stuck entry: a snapshot vouching for a
    // publish no document shows (verify --url: LOG_DISAGREES), and no void could be taken of it.
    const after = await publishedSnapshot(registry.context.site);
    expect(after.generation).toBeGreaterThan(before.generation);
    expect(after.log).toEqual(before.log);
    const signed = JSON.parse(await readFile(path.join(registry.siteRoot, 'snapshot.signed.json'), 'utf8'));
    expect((JSON.parse(signed.snapshot) as SnapshotDocument).log).toEqual(before.log);
    const verified = await registry.verify();
    expect(verified.generation).toBe(after.generation);
    expect(verified.log).toEqual(before.log);
    const { updated } = await laterRunInstalls(saw, cleanups, 'first-plugin');
    expect(updated?.error).toBeUndefined();
  }, 90_000);

  it('lets the same batch, opted in to voids, void the entry, which verify --url and the client take', async () => {
    // Prepare
    const { registry, saw, before } = await stuckBeforeUpgrade();
    const voiding = {
      ...registry.context,
      config: { ...registry.context.config, voidRefusedEntries: true as const },
    };

    // Act
    const voided = await processSubmissions(voiding);
    forgetBins(registry.context.intake);

    // Assert: the entry voided by the next, both counted; verified, and the client that saw entry 0 takes it.
    expect(voided.outcomes.map((o) => [o.plugin, o.status, o.problems.map((p) => p.code)])).toEqual([
      ['demo-plugin', 'rejected', ['LOGGED_ENTRY_VOIDED']],
    ]);
    const verified = await registry.verify();
    expect(verified.log.length).toBe((before.log?.length ?? 0) + 2);
    expect(verified.voided).toMatchObject([{ seq: 1, by: 2, plugin: 'demo-plugin' }]);
    const { updated } = await laterRunInstalls(saw, cleanups, 'first-plugin');
    expect(updated?.error).toBeUndefined();
  }, 90_000);
});

describe.each(RENEWALS)(
  'when %s meets a catalog of another format, a stuck publish, and a later entry its failed batch published a document for',
  (_, by, renew) => {
    it('waits to upgrade, re-signing the published snapshot, which verifies; the mended batch upgrades and publishes both', async () => {
      // Prepare: first-plugin published and seen by a client (entry 0); demo-plugin's publish (entry 1) and
      // other-plugin's (entry 2) logged by one batch, demo-plugin's document refused, other-plugin's written:
      // the batch fails LOGGED_PUBLISH_FAILED. Then the catalog of another format. The upgrade bound
      // other-plugin's document, showing entry 2, in a snapshot counting 1 (verify --url: LOG_VERSION_UNLOGGED).
      const registry = await servedOnDisk('plugindex-stuck-wait-', cleanups, {});
      const saw = await clientSawFirst(registry, cleanups);
      const refused = documentWriteRefused(registry.context.site);
      await registry.submit(await installable('demo-plugin'));
      await registry.submit(await installable('other-plugin'));
      await expect(registry.batch()).rejects.toMatchObject({ code: 'LOGGED_PUBLISH_FAILED' });
      const served = await registry.context.site.get('plugins/other-plugin/index.json');
      expect(served).toBeDefined();
      const before = await publishedSnapshot(registry.context.site);
      expect(before.log?.length).toBe(1);
      await catalogOfAnotherFormat(registry.context.intake);

      // Act
      const renewed = await renew(registry.context);
      forgetBins(registry.context.intake);

      // Assert: the published snapshot signed again (its documents, its log), the entry named, the catalog
      // left for the batch to upgrade; verify --url and the client take it.
      const after = await publishedSnapshot(registry.context.site);
      expect(after.generation).toBe(before.generation + 1);
      expect(after.documents).toEqual(before.documents);
      expect(after.log).toEqual(before.log);
      expect(renewed.stuck).toMatchObject({ seq: 1, plugin: 'demo-plugin', code: 'LOGGED_PUBLISH_STUCK' });
      expect(renewed.stuck?.message).toMatch(
        new RegExp(`^${by} signed the snapshot counting the 1 log entries`),
      );
      expect(new TextDecoder().decode((await registry.context.intake.get(CATALOG_META_KEY))?.body)).toMatch(
        /^plugindex-catalog 6\n/,
      );
      expect((await registry.verify()).log).toEqual(before.log);
      const { updated } = await laterRunInstalls(saw, cleanups, 'first-plugin');
      expect(updated?.error).toBeUndefined();

      // Act: a second renewal waits again; then the path is mended and the batch runs.
      await renew(registry.context);
      forgetBins(registry.context.intake);
      refused.mend();
      const mended = await registry.batch();

      // Assert: the catalog upgraded, both publishes at their entries, verified; the client installs one.
      expect(mended.outcomes.map((o) => [o.plugin, o.status, o.seq])).toEqual([
        ['demo-plugin', 'accepted', 1],
        ['other-plugin', 'accepted', 2],
      ]);
      expect(new TextDecoder().decode((await registry.context.intake.get(CATALOG_META_KEY))?.body)).toMatch(
        /^plugindex-catalog 8\n/,
      );
      expect((await registry.verify()).log.length).toBe(3);
      const again = await laterRunInstalls(saw, cleanups, 'demo-plugin');
      expect(again.updated?.error).toBeUndefined();
      expect(again.installed).toBeDefined();
    }, 90_000);

    it('never signs a generation lower than one it signed while waiting, an earlier re-signed snapshot put back', async () => {
      // Prepare: demo-plugin's publish stuck, the catalog of another format; three renewals wait, each signing
      // the published snapshot again, the catalog (of the other format) never saved. Then the first of them put
      // back (snapshot.json and its signature, the registry's own): re-signed at its generation plus one, the
      // snapshot went back past the ones clients had seen (SNAPSHOT_ROLLBACK).
      const { registry } = await stuckAfterFirst(false, 'died');
      await catalogOfAnotherFormat(registry.context.intake);
      await renew(registry.context);
      forgetBins(registry.context.intake);
      const kept = await Promise.all(
        ['snapshot.json', 'snapshot.json.asc', 'snapshot.signed.json'].map(
          async (name) => [name, await readFile(path.join(registry.siteRoot, name))] as const,
        ),
      );
      await renew(registry.context);
      forgetBins(registry.context.intake);
      await renew(registry.context);
      forgetBins(registry.context.intake);
      const latest = await publishedSnapshot(registry.context.site);
      for (const [name, body] of kept) await writeFile(path.join(registry.siteRoot, name), body);

      // Act
      await renew(registry.context);
      forgetBins(registry.context.intake);

      // Assert
      const renewed = await publishedSnapshot(registry.context.site);
      expect(renewed.generation).toBeGreaterThan(latest.generation);

      // Act: put back again, then the batch, which upgrades first (its rebuild commits a snapshot) and then
      // fails on the entry, its page still refused.
      for (const [name, body] of kept) await writeFile(path.join(registry.siteRoot, name), body);
      await expect(registry.batch()).rejects.toMatchObject({ code: 'LOGGED_PUBLISH_FAILED' });

      // Assert: the upgrade's snapshot past every one signed before it.
      expect((await publishedSnapshot(registry.context.site)).generation).toBeGreaterThan(renewed.generation);
    }, 90_000);

    it('signs no snapshot.json someone else planted while it waits: refused PUBLISHED_DOCUMENT_ALTERED, nothing written', async () => {
      // Prepare: demo-plugin's publish stuck (entry 1), the catalog of another format, and snapshot.json
      // replaced by one lasting a year more, not signed by the registry: signed again as it stood, it would
      // have been the registry's.
      const { registry, before } = await stuckAfterFirst(false, 'died');
      await catalogOfAnotherFormat(registry.context.intake);
      const planted = {
        ...before,
        expires: new Date(Date.parse(before.expires) + 365 * 86_400_000).toISOString(),
      };
      await writeFile(path.join(registry.siteRoot, 'snapshot.json'), JSON.stringify(planted));
      const files = await filesOf(registry.siteRoot);

      // Act
      const renewed = renew(registry.context);

      // Assert
      await expect(renewed).rejects.toBeInstanceOf(TrustError);
      await expect(renewed).rejects.toMatchObject({
        code: 'PUBLISHED_DOCUMENT_ALTERED',
        message: expect.stringMatching(
          /^snapshot\.json \(sha256 [0-9a-f]{64}\) is not what this registry published there/,
        ),
      });
      expect(await filesOf(registry.siteRoot)).toEqual(files);
    }, 90_000);
  },
);

describe.each(RENEWALS)(
  'when %s meets a catalog of another format after a batch died with its plugin documents written',
  (_, _by, renew) => {
    it('upgrades it at once, counting the entry the documents served show, which verify --url and the client take', async () => {
      // Prepare: first-plugin 1.0.0 seen by a client; its 2.0.0 logged (entry 1) by a batch killed once its
      // plugin documents were written, before its snapshot; then the catalog of another format. Nothing is
      // stuck: the documents served show the entry. The upgrade waited all the same (judged by the bins as
      // published, which cannot show it), signing the published snapshot again over a document it no longer
      // binds: verify --url refused the registry until the next batch.
      const registry = await servedOnDisk('plugindex-stuck-died-written-', cleanups, {});
      const saw = await clientSawFirst(registry, cleanups);
      const next = await registry.submit(await installable('first-plugin', '2.0.0'));
      const onStep = (step: BatchStep): void => {
        if (step === 'plugin-documents') throw new Error('killed after the plugin documents');
      };
      await expect(processSubmissions({ ...registry.context, onStep }, [next.key])).rejects.toThrow(
        'killed after the plugin documents',
      );
      forgetBins(registry.context.intake);
      const before = await publishedSnapshot(registry.context.site);
      expect(before.log?.length).toBe(1);
      await catalogOfAnotherFormat(registry.context.intake);

      // Act
      const renewed = await renew(registry.context);
      forgetBins(registry.context.intake);

      // Assert: upgraded (the catalog of this format), the entry counted, nothing told; verified, and the
      // client that saw entry 0 updates and installs the new version.
      expect(renewed.stuck).toBeUndefined();
      expect(new TextDecoder().decode((await registry.context.intake.get(CATALOG_META_KEY))?.body)).toMatch(
        /^plugindex-catalog 8\n/,
      );
      expect((await publishedSnapshot(registry.context.site)).log?.length).toBe(2);
      expect((await registry.verify()).log.length).toBe(2);
      const { updated, installed } = await laterRunInstalls(saw, cleanups, 'first-plugin');
      expect(updated?.error).toBeUndefined();
      expect(installed).toBeDefined();
    }, 90_000);
  },
);

describe('when a logged action is stuck, its plugin document write refused by the store', () => {
  it('refuses rebuild and rotate-key LOGGED_ACTION_STUCK, changing nothing, and both go on once a batch applies it', async () => {
    // Prepare: demo-plugin@1.0.0 published (entry 1); its document's write refused, so its owner's yank is
    // logged (entry 2) and the batch fails LOGGED_PUBLISH_FAILED, the document served still unyanked and the
    // snapshot counting 2. Before, both checked publishes alone and signed a snapshot counting the yank,
    // which verify --url refused (LOG_DISAGREES: LOG_YANK_DIFFERS).
    const registry = await registryOnDisk();
    await registry.submit(await makeBundle());
    await registry.batch();
    const refused = documentWriteRefused(registry.context.site);
    const yank = await submitAction(
      registry.context.intake,
      { action: 'yank', plugin: 'demo-plugin', version: '1.0.0', reason: 'corrupts the cache' },
      await testKey('publisher'),
      { registry: registry.context.config.url },
    );
    await expect(registry.batch()).rejects.toMatchObject({ code: 'LOGGED_PUBLISH_FAILED' });
    const served = JSON.parse(
      await readFile(path.join(registry.site, 'plugins/demo-plugin/index.json'), 'utf8'),
    ) as PluginDocument;
    expect(served.versions.map((v) => [v.version, v.yanked])).toEqual([['1.0.0', false]]);
    const published = await publishedSnapshot(registry.context.site);
    expect(published.log?.length).toBe(2);
    // The path mended, the operator runs a rebuild or a rotation before the batch: each would write the
    // document as served, unyanked, and sign a snapshot counting the yank.
    refused.mend();
    const before = await filesOf(registry.root);
    const rotation = await firstRotation(registry);

    // Act, Assess: each refuses, naming the entry, the yank, its submission, how the document disagrees and
    // what to do, and nothing changed.
    const refusal = (command: string) => ({
      name: 'PlugindexError',
      code: 'LOGGED_ACTION_STUCK',
      message: expect.stringMatching(
        new RegExp(
          `^plugindex ${command} refused, nothing changed: log entry 2, the yank of demo-plugin@1\\.0\\.0 \\(submission [^)]+\\), is past the 2 entries the published snapshot counts, and plugins/demo-plugin/index\\.json does not show it \\(LOG_YANK_DIFFERS: .*\\).*LOG_DISAGREES.*run the batch \\(plugindex process\\), which applies it at its entry; then run ${command} again$`,
        ),
      ),
    });
    const rebuilt = rebuildRegistry(registry.context);
    await expect(rebuilt).rejects.toBeInstanceOf(PlugindexError);
    await expect(rebuilt).rejects.toMatchObject(refusal('rebuild'));
    expect(await filesOf(registry.root)).toEqual(before);
    await expect(
      rotateRegistryKey({ ...registry.context, signer: nextSigner }, rotation.bytes),
    ).rejects.toMatchObject(refusal('rotate-key'));
    expect(await filesOf(registry.root)).toEqual(before);
    expect(yank.key).toMatch(/^incoming\//);

    // The batch applies the yank at its entry; then both go on.
    const mended = await registry.batch();
    expect(mended.outcomes.map((o) => [o.action, o.status, o.seq])).toEqual([['yank', 'accepted', 2]]);
    await expect(rebuildRegistry(registry.context)).resolves.toMatchObject({ plugins: 2 });
    forgetBins(registry.context.intake);
    await expect(
      rotateRegistryKey({ ...registry.context, signer: nextSigner }, rotation.bytes),
    ).resolves.toMatchObject({ status: 'rotated' });
  }, 60_000);

  it('lets a rebuild of a registry with no stuck entry go on, its actions past nothing', async () => {
    // Prepare: demo-plugin published and yanked by its owner, every batch whole.
    const registry = await registryOnDisk();
    await registry.submit(await makeBundle());
    await registry.batch();
    await submitAction(
      registry.context.intake,
      { action: 'yank', plugin: 'demo-plugin', version: '1.0.0', reason: 'corrupts the cache' },
      await testKey('publisher'),
      { registry: registry.context.config.url },
    );
    await registry.batch();

    // Act, Assess
    await expect(rebuildRegistry(registry.context)).resolves.toMatchObject({ plugins: 2 });
    expect((await publishedSnapshot(registry.context.site)).log?.length).toBe(3);
  }, 60_000);
});

describe("when the intake store's record of the log head is lost while the snapshot lags behind the log", () => {
  it('loses no entry and counts no fewer than the signed snapshot: refresh, rebuild and batch each keep the stuck entry', async () => {
    // Prepare: first-plugin published and seen by a client (entry 0); demo-plugin's publish logged (entry 1)
    // by a batch killed once it was logged, its page then refused: the snapshot counts 1, the log holds 2.
    // Then state/log.json is deleted (the intake store's state/ lost, or that file alone).
    const { registry, saw, stuck, before, page, batch } = await stuckAfterFirst(false, 'died');
    const logged = await registry.entries();
    expect(logged.map((e) => [e.seq, e.type, e.plugin])).toEqual([
      [0, 'publish', 'first-plugin'],
      [1, 'publish', 'demo-plugin'],
    ]);
    await registry.context.intake.delete('state/log.json');

    // Act, Assess: a refresh renews the snapshot counting what the signed one counts, never fewer, and the
    // stuck entry stays in the log.
    const renewed = await refreshSnapshot(registry.context);
    forgetBins(registry.context.intake);
    expect((await publishedSnapshot(registry.context.site)).log).toEqual(before.log);
    expect(await registry.entries()).toEqual(logged);
    expect(renewed.stuck).toMatchObject({ seq: 1, plugin: 'demo-plugin', submission: stuck.id });

    // A rebuild refuses the stuck publish, as with the record in place (taking the signed head as the log's,
    // it saw no entry past it, signed, and the next batch appended over entry 1).
    await expect(rebuildRegistry(registry.context)).rejects.toMatchObject({
      code: 'LOGGED_PUBLISH_STUCK',
      message: expect.stringContaining(
        `log entry 1, the publish of demo-plugin@1.0.0 (submission ${stuck.id})`,
      ),
    });
    forgetBins(registry.context.intake);
    expect(await registry.entries()).toEqual(logged);

    // The path mended, the batch publishes the upload at its entry: entry 1 kept, not appended over.
    await rm(page, { recursive: true });
    const mended = await batch(registry.context);
    expect(mended.outcomes.map((o) => [o.plugin, o.status, o.seq])).toEqual([['demo-plugin', 'accepted', 1]]);
    expect(await registry.entries()).toEqual(logged);
    expect((await publishedSnapshot(registry.context.site)).log?.length).toBe(2);
    expect((await registry.verify()).log.length).toBe(2);
    const { updated, installed } = await laterRunInstalls(saw, cleanups, 'demo-plugin');
    expect(updated?.error).toBeUndefined();
    expect(installed).toBeDefined();
  }, 90_000);
});

describe("when the intake store's record of the log head is lost and a stuck entry is replaced in the published log by one of the same seq, type and digest", () => {
  it.each([
    ['the batch', false],
    ['a rebuild, then the batch', true],
  ])(
    'takes only the line its intent record names: %s logs the upload anew at its entry, over the planted one',
    async (_, rebuildFirst) => {
      // Prepare: as above, demo-plugin@1.0.0's publish logged (entry 1) by a batch killed once it was logged,
      // the snapshot counting 1. Whoever may write the site bucket (not the intake store) replaces entry 1 with
      // a publish of another version, its seq, type and digest kept (it still chains from the signed head);
      // then state/log.json is lost.
      const { registry, saw, stuck, page, batch } = await stuckAfterFirst(false, 'died');
      const segmentFile = path.join(registry.siteRoot, 'log/000000.jsonl');
      const [first, genuine] = (await readFile(segmentFile, 'utf8')).trimEnd().split('\n');
      const entry = JSON.parse(genuine ?? '') as LogEntry;
      expect([entry.seq, entry.type, entry.plugin, entry.version]).toEqual([
        1,
        'publish',
        'demo-plugin',
        '1.0.0',
      ]);
      expect((await intentsNamed(registry.context.intake)).get(stuck.id)).toEqual({
        seq: 1,
        type: 'publish',
        digest: entry.digest,
        hash: lineHash(genuine ?? ''),
      });
      const { seq: _seq, prev: _prev, ...fields } = entry;
      const planted = nextEntry({ length: 1, head: lineHash(first ?? '') }, { ...fields, version: '6.6.6' });
      expect([planted.entry.seq, planted.entry.type, planted.entry.digest]).toEqual([
        1,
        'publish',
        entry.digest,
      ]);
      await writeFile(segmentFile, `${first}\n${planted.line}\n`);
      await registry.context.intake.delete('state/log.json');

      // Act: (the rebuild an operator runs after losing state/, then) the batch once the page's path is mended.
      if (rebuildFirst) {
        await rebuildRegistry(registry.context);
        forgetBins(registry.context.intake);
        expect((await publishedSnapshot(registry.context.site)).log?.length).toBe(1);
      }
      await rm(page, { recursive: true });
      const mended = await batch(registry.context);

      // Assess: before, the planted entry was taken as logged, its intent naming its seq, type and digest: the
      // rebuild refused it (LOGGED_PUBLISH_STUCK, "the publish of demo-plugin@6.6.6"), and the batch took the
      // upload as logged at it and signed it into the log, which verify --url then refused (LOG_DISAGREES:
      // version 6.6.6 is not listed, 1.0.0 has no publish entry). Now the signed head is taken, the upload
      // logged anew at entry 1, over the planted line, and the registry verifies.
      expect(mended.outcomes.map((o) => [o.plugin, o.status, o.seq])).toEqual([
        ['demo-plugin', 'accepted', 1],
      ]);
      expect((await registry.entries()).map((e) => [e.seq, e.type, e.plugin, e.version, e.digest])).toEqual([
        [0, 'publish', 'first-plugin', '1.0.0', expect.any(String)],
        [1, 'publish', 'demo-plugin', '1.0.0', entry.digest],
      ]);
      expect((await publishedSnapshot(registry.context.site)).log?.length).toBe(2);
      expect((await registry.verify()).log.length).toBe(2);
      const { updated, installed } = await laterRunInstalls(saw, cleanups, 'demo-plugin');
      expect(updated?.error).toBeUndefined();
      expect(installed).toBeDefined();
    },
    90_000,
  );
});

describe("when the intake store's record of the log head is lost over a stuck entry whose intent was written before intents kept its line's hash", () => {
  it('still takes the entry by its seq, type and digest: the rebuild refuses it, and the mended batch publishes it at its entry', async () => {
    // Prepare: as above, demo-plugin's publish logged (entry 1) and stuck; its intent record rewritten in the
    // earlier form, without the hash, as a registry upgraded past a run that died left it; state/log.json lost.
    const { registry, stuck, page, batch } = await stuckAfterFirst(false, 'died');
    const { intake } = registry.context;
    const records = await readIntentRecords(intake);
    expect(records.size).toBe(1);
    for (const [key, intents] of records) {
      const unhashed = Object.fromEntries(
        [...intents].map(([id, { hash: _hash, ...intent }]) => [id, intent]),
      );
      await intake.put(key, new TextEncoder().encode(JSON.stringify({ intents: unhashed })), {
        contentType: 'application/json',
        cacheControl: 'no-store',
      });
    }
    expect((await intentsNamed(intake)).get(stuck.id)).not.toHaveProperty('hash');
    const logged = await registry.entries();
    await intake.delete('state/log.json');

    // Act, Assess: the entry is taken past the signed head as before the hash was kept.
    await expect(rebuildRegistry(registry.context)).rejects.toMatchObject({
      code: 'LOGGED_PUBLISH_STUCK',
      message: expect.stringContaining(
        `log entry 1, the publish of demo-plugin@1.0.0 (submission ${stuck.id})`,
      ),
    });
    forgetBins(intake);
    await rm(page, { recursive: true });
    const mended = await batch(registry.context);
    expect(mended.outcomes.map((o) => [o.plugin, o.status, o.seq])).toEqual([['demo-plugin', 'accepted', 1]]);
    expect(await registry.entries()).toEqual(logged);
    expect((await registry.verify()).log.length).toBe(2);
  }, 90_000);
});

describe('when a logged revocation is stuck, keys/revoked.json refused by the store', () => {
  it('refuses rebuild LOGGED_ACTION_STUCK naming keys/revoked.json, and goes on once a batch applies it', async () => {
    // Prepare: demo-plugin@1.0.0 published; a folder where keys/revoked.json goes (EISDIR: STORE_REFUSED),
    // so the operator's revocation of its publisher's key is logged (entry 1) and the batch fails; then the
    // folder taken away, no batch run yet.
    const operator = await testKey('operator');
    const root = await mkdtemp(path.join(tmpdir(), 'plugindex-stuck-entries-'));
    folders.push(root);
    const { context, submit } = await registryOnStores(root, {
      operators: [{ fingerprint: operator.fingerprint, key: operator.publicKey }],
    });
    const batch = async () => {
      try {
        return await processSubmissions(context);
      } finally {
        forgetBins(context.intake);
      }
    };
    await submit(await makeBundle());
    await batch();
    const list = path.join(root, 'site/keys/revoked.json');
    await mkdir(list, { recursive: true });
    await submitAction(
      context.intake,
      { action: 'revoke-key', fingerprint: (await testKey('publisher')).fingerprint, reason: 'key leaked' },
      operator,
    );
    await expect(batch()).rejects.toMatchObject({ code: 'LOGGED_PUBLISH_FAILED' });
    await rm(list, { recursive: true });
    const before = await filesOf(root);

    // Act, Assess: before, the rebuild signed a snapshot counting a revocation keys/revoked.json does not list.
    await expect(rebuildRegistry(context)).rejects.toMatchObject({
      code: 'LOGGED_ACTION_STUCK',
      message: expect.stringMatching(
        /^plugindex rebuild refused, nothing changed: log entry 1, the revoke-key \(submission [^)]+\), is past the 1 entries the published snapshot counts, and keys\/revoked\.json is missing or unreadable /,
      ),
    });
    expect(await filesOf(root)).toEqual(before);
    forgetBins(context.intake);
    const mended = await batch();
    expect(mended.outcomes.map((o) => [o.action, o.status, o.seq])).toEqual([['revoke-key', 'accepted', 1]]);
    await expect(rebuildRegistry(context)).resolves.toMatchObject({ plugins: 1 });
  }, 60_000);
});

describe("when the intake store's record of the log head is lost and an entry chaining from the signed head was planted in the published log", () => {
  it('counts no entry the registry never logged: the rebuild signs the signed head, and the next batch appends over it', async () => {
    // Prepare: first-plugin published (entry 0), the snapshot counting 1. Whoever may write the site bucket
    // (not the intake store) appends an entry to the published segment, chaining from the signed head: a
    // yank logged as changing nothing (no document need show it). Then state/log.json is lost.
    const registry = await registryOnDisk();
    const segmentFile = path.join(registry.site, 'log/000000.jsonl');
    const lines = (await readFile(segmentFile, 'utf8')).trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    const planted = nextEntry(
      { length: 1, head: lineHash(lines[0] ?? '') },
      {
        time: new Date().toISOString(),
        type: 'yank',
        plugin: 'first-plugin',
        version: '1.0.0',
        signer: 'B'.repeat(40),
        digest: createHash('sha256').update('never submitted').digest('hex'),
        detail: { effect: NO_EFFECT, reason: 'planted' },
      },
    );
    await writeFile(segmentFile, `${lines[0]}\n${planted.line}\n`);
    await registry.context.intake.delete('state/log.json');

    // Act: the rebuild an operator runs after losing state/.
    forgetBins(registry.context.intake);
    await rebuildRegistry(registry.context);

    // Assess: the snapshot counts the one entry the registry logged; before, the planted entry was taken as
    // the log's (it chains from the signed head) and signed into every client's history for good.
    expect((await publishedSnapshot(registry.context.site)).log?.length).toBe(1);
    forgetBins(registry.context.intake);
    await registry.submit(await makeBundle());
    const next = await registry.batch();
    expect(next.outcomes.map((o) => [o.plugin, o.status, o.seq])).toEqual([['demo-plugin', 'accepted', 1]]);
    const entries = parseSegment(await readFile(segmentFile), 0).map((read) => read.entry);
    expect(entries.map((e) => [e.seq, e.type, e.plugin])).toEqual([
      [0, 'publish', 'first-plugin'],
      [1, 'publish', 'demo-plugin'],
    ]);
  }, 60_000);
});

describe('when a logged transfer to an owner already listed is stuck, its plugin document write refused', () => {
  it('refuses rebuild LOGGED_ACTION_STUCK, and the mended batch lets it go on, verify --url agreeing', async () => {
    // Prepare: demo-plugin published by the publisher (entry 0), who adds heir as an owner (entry 1); the
    // document's writes then refused, so the operator's transfer to heir is logged (entry 2) and the batch
    // fails: the document served still lists both owners, the snapshot counting 2.
    const operator = await testKey('operator');
    const heir = await testKey('heir');
    const registry = await servedOnDisk('plugindex-stuck-transfer-', cleanups, {
      operators: [{ fingerprint: operator.fingerprint, key: operator.publicKey }],
    });
    await registry.batch([(await registry.submit(await installable('demo-plugin'))).key]);
    await submitAction(
      registry.context.intake,
      { action: 'owners-add', plugin: 'demo-plugin', key: heir.publicKey },
      await testKey('publisher'),
      { registry: registry.url },
    );
    expect((await registry.batch()).outcomes.map((o) => o.status)).toEqual(['accepted']);
    const refused = documentWriteRefused(registry.context.site);
    await submitAction(
      registry.context.intake,
      { action: 'transfer', plugin: 'demo-plugin', key: heir.publicKey },
      operator,
      { registry: registry.url },
    );
    await expect(registry.batch()).rejects.toMatchObject({ code: 'LOGGED_PUBLISH_FAILED' });
    refused.mend();
    expect((await publishedSnapshot(registry.context.site)).log?.length).toBe(2);

    // Act, Assess: the document lists the new owner already, so no disagreement names the transfer's entry
    // (the old owner is one no entry since the transfer made one: LOG_OWNER_UNLOGGED, no entry named); before,
    // the rebuild took it as shown and signed a snapshot counting it, which verify --url refused.
    await expect(rebuildRegistry(registry.context)).rejects.toMatchObject({
      code: 'LOGGED_ACTION_STUCK',
      message: expect.stringMatching(
        /^plugindex rebuild refused, nothing changed: log entry 2, the transfer of demo-plugin \(submission [^)]+\), is past the 2 entries the published snapshot counts, and plugins\/demo-plugin\/index\.json does not show it \(LOG_OWNER_UNLOGGED: /,
      ),
    });
    forgetBins(registry.context.intake);
    const mended = await registry.batch();
    expect(mended.outcomes.map((o) => [o.action, o.status, o.seq])).toEqual([['transfer', 'accepted', 2]]);
    await expect(rebuildRegistry(registry.context)).resolves.toMatchObject({ plugins: 1 });
    forgetBins(registry.context.intake);
    expect((await registry.verify()).log.length).toBe(3);
  }, 60_000);
});

describe("when a logged publish is stuck and the intake store's record of the log head is lost", () => {
  it('refuses rotate-key LOGGED_PUBLISH_STUCK before it writes anything', async () => {
    // Prepare: as above, demo-plugin's publish logged (entry 1) and its document refused; then
    // state/log.json lost. Nothing else recorded the head: the rotation's own check read that record alone.
    const registry = await registryOnDisk();
    const document = path.join(registry.site, 'plugins/demo-plugin/index.json');
    await mkdir(document, { recursive: true });
    await registry.submit(await makeBundle());
    await expect(registry.batch()).rejects.toMatchObject({ code: 'LOGGED_PUBLISH_FAILED' });
    await registry.context.intake.delete('state/log.json');
    const before = await filesOf(registry.root);
    const rotation = await firstRotation(registry);

    // Act, Assess: refused, nothing changed (before, it published the rotation and logged its entry, then
    // its rebuild refused, the rotation left half done).
    await expect(
      rotateRegistryKey({ ...registry.context, signer: nextSigner }, rotation.bytes),
    ).rejects.toMatchObject({ code: 'LOGGED_PUBLISH_STUCK' });
    expect(await filesOf(registry.root)).toEqual(before);
  }, 60_000);
});

/** What a batch killed after its documents leaves past the head, shown: a yank, or a yank and its undoing. */
const SHOWN_ACTIONS = [
  [
    'a yank',
    [{ action: 'yank', plugin: 'demo-plugin', version: '1.0.0', reason: 'corrupts the cache' }],
    true,
  ],
  [
    'a yank and an unyank',
    [
      { action: 'yank', plugin: 'demo-plugin', version: '1.0.0', reason: 'corrupts the cache' },
      { action: 'unyank', plugin: 'demo-plugin', version: '1.0.0' },
    ],
    false,
  ],
] as const;

describe.each(SHOWN_ACTIONS)(
  'when %s its document shows are followed past the head by a stuck transfer to an owner already listed',
  (_, shownActions, yanked) => {
    it('refuses rebuild LOGGED_ACTION_STUCK naming the transfer, and the mended batch lets it go on', async () => {
      // Prepare: demo-plugin published (entry 0), heir added as an owner (entry 1), the snapshot counting 2.
      // The owner's actions are logged (entries 2...) and the document written by a batch killed before its
      // commit; the document's writes then refused, the operator's transfer to heir is logged and that batch
      // fails: the document served shows the actions before it, not the transfer.
      const operator = await testKey('operator');
      const publisher = await testKey('publisher');
      const heir = await testKey('heir');
      const registry = await servedOnDisk('plugindex-stuck-transfer-', cleanups, {
        operators: [{ fingerprint: operator.fingerprint, key: operator.publicKey }],
      });
      await registry.batch([(await registry.submit(await installable('demo-plugin'))).key]);
      await submitAction(
        registry.context.intake,
        { action: 'owners-add', plugin: 'demo-plugin', key: heir.publicKey },
        publisher,
        { registry: registry.url },
      );
      expect((await registry.batch()).outcomes.map((o) => o.status)).toEqual(['accepted']);
      for (const action of shownActions)
        await submitAction(registry.context.intake, action, publisher, { registry: registry.url });
      const onStep = (step: BatchStep): void => {
        if (step === 'plugin-documents') throw new Error('killed after the documents');
      };
      await expect(processSubmissions({ ...registry.context, onStep })).rejects.toThrow(
        'killed after the documents',
      );
      forgetBins(registry.context.intake);
      const refused = documentWriteRefused(registry.context.site);
      await submitAction(
        registry.context.intake,
        { action: 'transfer', plugin: 'demo-plugin', key: heir.publicKey },
        operator,
        { registry: registry.url },
      );
      await expect(registry.batch()).rejects.toMatchObject({ code: 'LOGGED_PUBLISH_FAILED' });
      refused.mend();
      const transfer = 2 + shownActions.length;
      expect((await registry.entries()).map((e) => [e.seq, e.type])).toEqual([
        [0, 'publish'],
        [1, 'owners-add'],
        ...shownActions.map((a, i) => [2 + i, a.action]),
        [transfer, 'transfer'],
      ]);
      expect((await publishedSnapshot(registry.context.site)).log?.length).toBe(2);
      const served = JSON.parse(
        await readFile(path.join(registry.siteRoot, 'plugins/demo-plugin/index.json'), 'utf8'),
      ) as PluginDocument;
      expect(served.versions.map((v) => [v.version, v.yanked])).toEqual([['1.0.0', yanked]]);
      expect(served.owners).toHaveLength(2);

      // Act, Assess: the transfer's disagreement (the old owner LOG_OWNER_UNLOGGED) names no entry; before, the
      // plugin's first standing action, the yank (which its document shows, or shows undone), was named.
      await expect(rebuildRegistry(registry.context)).rejects.toMatchObject({
        code: 'LOGGED_ACTION_STUCK',
        message: expect.stringMatching(
          new RegExp(
            `^plugindex rebuild refused, nothing changed: log entry ${transfer}, the transfer of demo-plugin \\(submission [^)]+\\), is past the 2 entries the published snapshot counts, and plugins/demo-plugin/index\\.json does not show it \\(LOG_OWNER_UNLOGGED: `,
          ),
        ),
      });
      forgetBins(registry.context.intake);
      const mended = await registry.batch();
      expect(mended.outcomes.map((o) => [o.action, o.status, o.seq])).toContainEqual([
        'transfer',
        'accepted',
        transfer,
      ]);
      await expect(rebuildRegistry(registry.context)).resolves.toMatchObject({ plugins: 1 });
      forgetBins(registry.context.intake);
      expect((await registry.verify()).log.length).toBe(transfer + 1);
    }, 60_000);
  },
);
