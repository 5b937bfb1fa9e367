/**
 * The pipeline's own readers of a log that holds a void (index-builder/log-void.ts): a batch, the retry of a
 * run that died, and a rebuild each replay the void (pipeline/log-writer.ts `standingEntries`, log.ts
 * `checkVoids`), the voided entry taken as never having happened: a voided publish is not one to publish at
 * its entry, a voided action not one applied, resumed or restored. On the filesystem store, served over a
 * socket by the local server, so `verify --url` and a client read what the pipeline published. The voids are
 * appended here as the registry's writer will (its key, before any snapshot counts the entry). An upload
 * whose entry is voided is taken out of incoming/ where a test stands for that writer recording its outcome;
 * left there, it is judged anew.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { forgetBins } from '../../../index-builder/catalog.ts';
import { TrustError } from '../../../index-builder/errors.ts';
import { logSegmentKey, parseSegment, type ReadEntry } from '../../../index-builder/log.ts';
import { signVoid } from '../../../index-builder/log-void.ts';
import { processSubmissions, rebuildRegistry } from '../../../index-builder/pipeline/index.ts';
import { LogWriter } from '../../../index-builder/pipeline/log-writer.ts';
import { rotateRegistryKey } from '../../../index-builder/pipeline/rotate.ts';
import { signRotation } from '../../../index-builder/rotation.ts';
import { createSigner, type Signer } from '../../../index-builder/signing.ts';
import { submitAction } from '../../support/actions.ts';
import { makeBundle, testKey, validManifest } from '../../support/fixtures.ts';
import { rejectionOf } from '../../support/problems.ts';
import {
  clientSawFirst,
  diesOnceLogged as diesOnceLoggedIn,
  installable,
  laterRunInstalls,
  pageMadeAFolder,
  type ServedOnDisk,
  servedOnDisk as servedRegistry,
} from '../../support/served-registry.ts';

const REASON = 'the store refused the plugin document for good (STORE_REFUSED)';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A registry on two filesystem stores, its site served over a socket (its config names that URL). */
const servedOnDisk = () => servedRegistry('plugindex-voided-', cleanups);

type Served = ServedOnDisk;

/** Appends a void of entry `seq` signed by `signer` (the registry's key unless given), no snapshot after. */
async function voidEntry(registry: Served, seq: number, signer: Signer = registry.context.signer) {
  const { context } = registry;
  const segment = await context.site.get(logSegmentKey(0));
  const entries = parseSegment(segment?.body ?? new Uint8Array(), 0);
  const writer = await LogWriter.open(context);
  writer.append(
    await signVoid({
      voided: entries[seq] as ReadEntry,
      reason: REASON,
      time: context.clock.now().toISOString(),
      signer,
      registry: context.config.url,
    }),
  );
  await writer.flush();
}

/** Runs a batch that dies (a process killed: nothing of it runs after) once its entries are logged. */
const diesOnceLogged = (registry: Served, keys: string[]) => diesOnceLoggedIn(registry.context, keys);

/** demo-plugin@1.0.0 published by a batch of its own (entry 0). */
async function demoPublished(registry: Served): Promise<void> {
  await registry.batch([(await registry.submit(await makeBundle())).key]);
}

/** demo-plugin@1.0.0 published (entry 0); a run logs 2.0.0 (entry 1) and dies. */
async function demo2LoggedByDeadRun(registry: Served): Promise<void> {
  await demoPublished(registry);
  const again = await registry.submit(await makeBundle({ manifest: validManifest({ version: '2.0.0' }) }));
  await diesOnceLogged(registry, [again.key]);
}

/** Its owner's yank of demo-plugin@1.0.0 under incoming/, for this registry. */
async function yankUploaded(registry: Served) {
  return submitAction(
    registry.context.intake,
    { action: 'yank', plugin: 'demo-plugin', version: '1.0.0', reason: 'corrupts the cache' },
    await testKey('publisher'),
    { registry: registry.url },
  );
}

const outcomesOf = (result: Awaited<ReturnType<typeof processSubmissions>>) =>
  result.outcomes.map((o) => [o.action ?? o.plugin, o.version, o.status, o.seq]);

describe('when the registry voids a logged publish the store refused for good', () => {
  it('publishes the uploads waiting behind it, and clients that saw the log before take the result', async () => {
    // Prepare: first-plugin published, a client installs it (its log of one entry remembered). Then a folder
    // stands where demo-plugin's page goes: its publish is logged (entry 1) and every batch fails on it,
    // other-plugin's logged meanwhile (entry 2) by the batch that met it.
    const registry = await servedOnDisk();
    const saw = await clientSawFirst(registry, cleanups);
    await pageMadeAFolder(registry.siteRoot);
    const stuck = await registry.submit(await makeBundle());
    await expect(registry.batch()).rejects.toMatchObject({ code: 'LOGGED_PUBLISH_FAILED' });
    const other = await registry.submit(await installable('other-plugin'));
    await expect(registry.batch()).rejects.toMatchObject({ code: 'LOGGED_PUBLISH_FAILED' });

    // Act: the registry's key voids entry 1 (entry 3), and its upload's outcome is recorded (taken away).
    await voidEntry(registry, 1);
    await registry.context.intake.delete(stuck.key);
    const result = await registry.batch();

    // Assert: the voided publish is not resumed; other-plugin is published at its own entry, the page folder
    // met no more. verify --url takes the log and lists the void; the client updates and installs.
    expect(outcomesOf(result)).toEqual([['other-plugin', '1.0.0', 'accepted', 2]]);
    expect(await registry.incoming()).toEqual([]);
    expect(await registry.context.intake.head(`status/${other.id}.json`)).toBeDefined();
    const report = await registry.verify();
    expect(report).toMatchObject({ plugins: 2, log: { length: 4 } });
    expect(report.voided).toEqual([
      { seq: 1, type: 'publish', plugin: 'demo-plugin', version: '1.0.0', by: 3, reason: REASON },
    ]);
    // Another run of the client (its state on disk: the log of one entry it saw) updates, and installs.
    const { updated, installed } = await laterRunInstalls(saw, cleanups, 'other-plugin');
    expect(updated).toMatchObject({ report: { generation: 2, changed: true } });
    expect(updated?.error).toBeUndefined();
    expect(installed.items.map((item) => [item.name, item.version])).toEqual([['other-plugin', '1.0.0']]);
  }, 60_000);
});

describe('when a run that died logged a publish the registry then voided', () => {
  it('judges its upload anew, publishing it at an entry of its own, not at the voided one', async () => {
    // Prepare: demo-plugin@1.0.0 published (entry 0); a run logs 2.0.0 (entry 1) and dies; the registry's
    // key voids that entry (entry 2).
    const registry = await servedOnDisk();
    await demo2LoggedByDeadRun(registry);
    await voidEntry(registry, 1);

    // Act
    const result = await registry.batch();

    // Assert: published at entry 3 (before, resumed at entry 1, the entry the void says never took effect).
    expect(outcomesOf(result)).toEqual([['demo-plugin', '2.0.0', 'accepted', 3]]);
    const report = await registry.verify();
    expect(report).toMatchObject({ plugins: 1, log: { length: 4 } });
    expect(report.voided).toEqual([
      { seq: 1, type: 'publish', plugin: 'demo-plugin', version: '2.0.0', by: 2, reason: REASON },
    ]);
  }, 60_000);
});

describe('when a run that died logged an action the registry then voided', () => {
  /** demo-plugin@1.0.0 published (entry 0); its yank logged by a run that died (entry 1), voided (entry 2). */
  async function yankVoided() {
    const registry = await servedOnDisk();
    await demoPublished(registry);
    const yank = await yankUploaded(registry);
    await diesOnceLogged(registry, [yank.key]);
    await voidEntry(registry, 1);
    return { registry, yank };
  }

  it('judges its upload anew, applying it at an entry of its own', async () => {
    const { registry } = await yankVoided();

    const result = await registry.batch();

    // Before, resumed at entry 1, as applied there.
    expect(outcomesOf(result)).toEqual([['yank', '1.0.0', 'accepted', 3]]);
    const report = await registry.verify();
    expect(report).toMatchObject({ log: { length: 4 }, envelopes: 1 });
    expect(report.voided).toEqual([
      { seq: 1, type: 'yank', plugin: 'demo-plugin', version: '1.0.0', by: 2, reason: REASON },
    ]);
  }, 60_000);

  it('restores no marker or slot of it in a rebuild, and its upload is then judged anew', async () => {
    // Prepare: the intake store's records of the actions lost (what a rebuild is run after).
    const { registry, yank } = await yankVoided();
    await registry.context.intake.delete(`state/actions/${yank.digest}.json`);
    await registry.context.intake.delete('state/action-order/demo-plugin.json');

    // Act
    const rebuilt = await rebuildRegistry(registry.context);
    forgetBins(registry.context.intake);

    // Assert: neither the voided yank nor the void is an action restored (before: a marker of each, the
    // yank's naming its upload, resumed at entry 1); the upload is then applied at an entry of its own.
    expect(rebuilt.restored).toEqual({ markers: 0, orders: 0 });
    expect(await registry.context.intake.head(`state/actions/${yank.digest}.json`)).toBeUndefined();
    expect(outcomesOf(await registry.batch())).toEqual([['yank', '1.0.0', 'accepted', 3]]);
    expect((await registry.verify()).voided).toHaveLength(1);
  }, 60_000);
});

describe("when the registry voided an action, its plugin's order recorded with it", () => {
  it('applies an action on the same slot made before it, not refused as superseded by it', async () => {
    // Prepare: the yank logged by a run that died (its slot, the newest of 1.0.0's, recorded), voided, and its
    // upload taken away; then another yank of 1.0.0, made an hour before it, uploaded.
    const registry = await servedOnDisk();
    await demoPublished(registry);
    const voided = await yankUploaded(registry);
    await diesOnceLogged(registry, [voided.key]);
    await voidEntry(registry, 1);
    await registry.context.intake.delete(voided.key);
    await submitAction(
      registry.context.intake,
      { action: 'yank', plugin: 'demo-plugin', version: '1.0.0', reason: 'an earlier word' },
      await testKey('publisher'),
      { registry: registry.url, now: new Date('2026-10-31T11:00:00Z') },
    );

    // Act
    const result = await registry.batch();

    // Assert: applied (before: ACTION_SUPERSEDED, by the yank that never took effect).
    expect(outcomesOf(result)).toEqual([['yank', '1.0.0', 'accepted', 3]]);
    expect((await registry.verify()).voided).toHaveLength(1);
  }, 60_000);
});

describe('when the registry rotates its key with a void in the log no snapshot counts yet', () => {
  it('holds the void to the key it rotates from, and publishes on after it', async () => {
    // Prepare: as above, demo-plugin@2.0.0 logged by a run that died (entry 1), voided by the key now the
    // registry's (entry 2); then a rotation to another key.
    const registry = await servedOnDisk();
    await demo2LoggedByDeadRun(registry);
    await voidEntry(registry, 1);
    const next = await createSigner((await testKey('registry-2')).secretKey);
    const { bytes } = await signRotation({
      registry: registry.url,
      sequence: 1,
      previous: registry.context.signer,
      next,
      now: new Date('2026-11-01T00:00:00Z'),
    });

    // Act: before, the void was held to the next key, which signs nothing before the rotation's entry
    // (LOG_VOID_UNSIGNED), and the rotation refused.
    const rotated = await rotateRegistryKey({ ...registry.context, signer: next }, bytes);
    forgetBins(registry.context.intake);
    const result = await processSubmissions({ ...registry.context, signer: next });

    // Assert: the rotation is entry 3, the upload voided at entry 1 published at entry 4.
    expect(rotated).toMatchObject({ status: 'rotated', sequence: 1 });
    expect(outcomesOf(result)).toEqual([['demo-plugin', '2.0.0', 'accepted', 4]]);
    expect((await registry.verify()).voided).toEqual([
      { seq: 1, type: 'publish', plugin: 'demo-plugin', version: '2.0.0', by: 2, reason: REASON },
    ]);
  }, 60_000);
});

describe('when the log holds a void no client takes', () => {
  it("fails the batch with the void's refusal (LOG_VOID_UNSIGNED), nothing appended", async () => {
    // Prepare: a publish logged by a run that died, voided by a publisher's key.
    const registry = await servedOnDisk();
    await demo2LoggedByDeadRun(registry);
    await voidEntry(registry, 1, await createSigner((await testKey('publisher')).secretKey));
    const head = await registry.context.intake.get('state/log.json');

    // Act, Assess
    const error = await rejectionOf(registry.batch(), TrustError);
    expect(error.code).toBe('LOG_VOID_UNSIGNED');
    expect(error.message).toContain(
      `log entry 2 (void) is signed by ${(await testKey('publisher')).fingerprint}, not by ${registry.context.signer.fingerprint}`,
    );
    expect((await registry.context.intake.get('state/log.json'))?.body).toEqual(head?.body);
  }, 60_000);
});
