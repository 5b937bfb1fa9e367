/**
 * The readers of a registry log that holds voids (index-builder/log-void.ts): `verify --url` (cli/verify.ts,
 * client/log-consistency.ts) and `audit NAME` (client/audit.ts), through client/log-reader.ts. A registry the
 * pipeline published, served over real HTTP by the local server, its log then given a publish and a yank
 * that no document shows (what a batch logs before the store refuses the plugin's document for good), and
 * the registry's own key voiding them: the entries stay, each replayed as never having taken effect. A void
 * another key signed is refused by both, and so is one the registry's key signed for another registry; one
 * whose key a rotation since retired as compromised is marked so. And the pipeline, whose own readers of
 * the log replay voids too (test/index-builder/pipeline/voided-entries.test.ts), publishes on after them.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRegistryServer, listenRegistryServer } from '../../cli/local/server.ts';
import { verifyRegistry } from '../../cli/verify.ts';
import { LogDisagreementError } from '../../client/errors.ts';
import { parseRegistryConfig } from '../../index-builder/config.ts';
import { TrustError } from '../../index-builder/errors.ts';
import { logSegmentKey, parseSegment, type ReadEntry } from '../../index-builder/log.ts';
import { signVoid } from '../../index-builder/log-void.ts';
import { type PipelineContext, processSubmissions } from '../../index-builder/pipeline/index.ts';
import { rotationKey, signRotation } from '../../index-builder/rotation.ts';
import { createSigner } from '../../index-builder/signing.ts';
import { CACHE_IMMUTABLE } from '../../index-builder/store.ts';
import { httpClient } from '../support/client.ts';
import {
  makeBundle,
  makeRegistry,
  nextUploadName,
  type TestRegistry,
  testKey,
  validManifest,
} from '../support/fixtures.ts';
import { appendLog } from '../support/lifecycle.ts';
import { MemoryStore } from '../support/memory-store.ts';
import { rejectionOf } from '../support/problems.ts';

const NOW = new Date('2026-11-02T00:00:00Z');
const PLUGIN = 'demo-plugin';
const GHOST = 'ghost-plugin';
const REASON = 'the store refused the plugin document for good (STORE_REFUSED)';
const site = new MemoryStore();

/** A publish of GHOST `version` by the publisher's key, logged as if the store then refused its document. */
async function ghostPublish(version: string) {
  return {
    type: 'publish' as const,
    plugin: GHOST,
    version,
    signer: (await testKey('publisher')).fingerprint,
    time: '2026-11-01T23:59:30.000Z',
  };
}
let base: string;
let close: () => Promise<void>;
let registry: TestRegistry;
let context: PipelineContext;
let home: string;

/** The log's entries as published (one segment here). */
async function published(): Promise<ReadEntry[]> {
  const segment = await site.get(logSegmentKey(0));
  if (!segment) throw new Error('no log');
  return parseSegment(segment.body, 0);
}

/** Appends a void of each entry `seqs` names, signed by the registry's key, and a snapshot vouching for it. */
async function voidEntries(...seqs: number[]): Promise<void> {
  const entries = await published();
  const voids = [];
  for (const seq of seqs)
    voids.push(
      await signVoid({
        voided: entries[seq] as ReadEntry,
        reason: REASON,
        time: '2026-11-01T23:59:40.000Z',
        signer: context.signer,
        registry: context.config.url,
      }),
    );
  await appendLog(context, voids);
}

const verify = () => verifyRegistry({ url: base, pinnedKey: registry.registryKey.publicKey, now: NOW });

beforeAll(async () => {
  const listening = await listenRegistryServer(createRegistryServer({ site }), 0);
  base = listening.url;
  close = listening.close;
  registry = await makeRegistry();
  context = { ...registry.context, site, config: parseRegistryConfig({ name: 'Voiding', url: base }) };
  const key = `incoming/${nextUploadName()}.tgz`;
  await context.intake.put(key, await makeBundle({ manifest: validManifest({ name: PLUGIN }) }), {
    contentType: 'application/gzip',
    cacheControl: 'no-store',
  });
  await processSubmissions(context, [key]);
  home = await mkdtemp(join(tmpdir(), 'plugindex-voided-'));
});
afterAll(async () => {
  await close();
  await rm(home, { recursive: true, force: true });
});

describe('when the log holds entries that never took effect', () => {
  it('verify --url reports them while no void names them, and verifies the registry once its key voids them', async () => {
    const publisher = await testKey('publisher');
    // Logged, then never shown: a publish of a plugin the store refused, a yank of a version it refused.
    await appendLog(context, [
      await ghostPublish('1.0.0'),
      {
        type: 'yank',
        plugin: PLUGIN,
        version: '1.0.0',
        signer: publisher.fingerprint,
        created: '2026-11-01T23:59:00.000Z',
        time: '2026-11-01T23:59:30.000Z',
      },
    ]);
    const error = await rejectionOf(verify(), LogDisagreementError);
    expect(error.disagreements.map((d) => [d.code, d.plugin, d.seq])).toEqual([
      ['LOG_YANK_DIFFERS', PLUGIN, 2],
      ['LOG_PLUGIN_MISSING', GHOST, 1],
      ['LOG_ENVELOPE_MISSING', PLUGIN, 2],
    ]);

    await voidEntries(1, 2);
    // Neither is held to a document, nor the yank to an envelope: five entries, no action left to check.
    // And says which entries the registry voided, and why: a user sees what the registry undid.
    const report = await verify();
    expect(report).toMatchObject({ plugins: 1, log: { length: 5 }, envelopes: 0 });
    expect(report.voided).toEqual([
      { seq: 1, type: 'publish', plugin: GHOST, version: '1.0.0', by: 3, reason: REASON },
      { seq: 2, type: 'yank', plugin: PLUGIN, version: '1.0.0', by: 4, reason: REASON },
    ]);
  });

  it('audit NAME shows the voided entry as voided, with the void and its reason', async () => {
    const client = httpClient(home);
    try {
      await client.addRegistry({ name: 'main', url: base, pin: { armored: registry.registryKey.publicKey } });
      const history = await client.auditPlugin(PLUGIN, {});
      expect(history.log?.length).toBe(5);
      expect(history.entries.map((e) => [e.seq, e.type, e.voided])).toEqual([
        [0, 'publish', undefined],
        [2, 'yank', { by: 4, reason: REASON }],
        [4, 'void', undefined],
      ]);
      expect(history.entries[2]?.detail).toMatchObject({ entry: '2', reason: REASON });
    } finally {
      await client.close();
    }
  });

  it('lets the pipeline publish on after the voids, verify --url still taking the log', async () => {
    // Its own readers of the log replay the voids (before, it refused a log holding one, LOG_MALFORMED).
    const key = `incoming/${nextUploadName()}.tgz`;
    await context.intake.put(
      key,
      await makeBundle({ manifest: validManifest({ name: PLUGIN, version: '1.1.0' }) }),
      {
        contentType: 'application/gzip',
        cacheControl: 'no-store',
      },
    );
    const result = await processSubmissions(context, [key]);
    expect(result.outcomes.map((o) => [o.plugin, o.version, o.status, o.seq])).toEqual([
      [PLUGIN, '1.1.0', 'accepted', 5],
    ]);
    const report = await verify();
    expect(report).toMatchObject({ plugins: 1, log: { length: 6 } });
    expect(report.voided?.map((v) => [v.seq, v.by])).toEqual([
      [1, 3],
      [2, 4],
    ]);
  });
});

/**
 * A registry of its own, on a store of its own served over a socket, with PLUGIN 1.0.0 published: its log's
 * first entry. For a test that writes into its log what the shared one must not hold.
 */
async function servedRegistryOf(name: string) {
  const own = new MemoryStore();
  const listening = await listenRegistryServer(createRegistryServer({ site: own }), 0);
  const other = await makeRegistry();
  const ctx: PipelineContext = {
    ...other.context,
    site: own,
    config: parseRegistryConfig({ name, url: listening.url }),
  };
  const key = `incoming/${nextUploadName()}.tgz`;
  await ctx.intake.put(key, await makeBundle({ manifest: validManifest({ name: PLUGIN }) }), {
    contentType: 'application/gzip',
    cacheControl: 'no-store',
  });
  await processSubmissions(ctx, [key]);
  return { own, listening, other, ctx };
}

describe("when a void is not the registry key's", () => {
  it('refuses it in verify --url and audit alike (LOG_VOID_UNSIGNED)', async () => {
    // A registry of its own: its publish, then a void of it signed by a publisher's key.
    const { own, listening, other, ctx } = await servedRegistryOf('Forged');
    const client = httpClient(await mkdtemp(join(home, 'forged-')));
    try {
      const segment = await own.get(logSegmentKey(0));
      const entries = parseSegment(segment?.body ?? new Uint8Array(), 0);
      const stranger = await createSigner((await testKey('publisher')).secretKey);
      await appendLog(ctx, [
        await signVoid({
          voided: entries[0] as ReadEntry,
          reason: 'not the registry',
          time: '2026-11-01T23:59:50.000Z',
          signer: stranger,
          registry: ctx.config.url,
        }),
      ]);
      const verified = verifyRegistry({
        url: listening.url,
        pinnedKey: other.registryKey.publicKey,
        now: NOW,
      });
      expect(await rejectionOf(verified, TrustError)).toMatchObject({ code: 'LOG_VOID_UNSIGNED' });
      await client.addRegistry({
        name: 'forged',
        url: listening.url,
        pin: { armored: other.registryKey.publicKey },
      });
      expect(await rejectionOf(client.auditPlugin(PLUGIN, {}), TrustError)).toMatchObject({
        code: 'LOG_VOID_UNSIGNED',
      });
    } finally {
      await client.close();
      await listening.close();
    }
  });
});

describe('when a void signed by the registry key is of another registry', () => {
  /**
   * A registry of its own, a publish no document shows logged after its first, and its key's void of that
   * publish for registry `of(its URL)`; then `check` against it, verify --url and audit alike.
   */
  async function voidedFor(
    name: string,
    of: (url: string) => string,
    check: (read: {
      verified: () => ReturnType<typeof verifyRegistry>;
      audit: () => Promise<unknown>;
    }) => Promise<void>,
  ): Promise<void> {
    const { own, listening, other, ctx } = await servedRegistryOf(name);
    const client = httpClient(await mkdtemp(join(home, `${name.toLowerCase()}-`)));
    try {
      await appendLog(ctx, [await ghostPublish('1.0.0')]);
      const entries = parseSegment((await own.get(logSegmentKey(0)))?.body ?? new Uint8Array(), 0);
      await appendLog(ctx, [
        await signVoid({
          voided: entries[1] as ReadEntry,
          reason: REASON,
          time: '2026-11-01T23:59:50.000Z',
          signer: ctx.signer,
          registry: of(ctx.config.url),
        }),
      ]);
      await client.addRegistry({
        name: name.toLowerCase(),
        url: listening.url,
        pin: { armored: other.registryKey.publicKey },
      });
      await check({
        verified: () =>
          verifyRegistry({ url: listening.url, pinnedKey: other.registryKey.publicKey, now: NOW }),
        // Of the plugin the registry shows: audit reads the whole log, its voids replayed, whichever it is.
        audit: () => client.auditPlugin(PLUGIN, {}),
      });
    } finally {
      await client.close();
      await listening.close();
    }
  }

  it('refuses it in verify --url and audit alike, naming both registries (LOG_VOID_OTHER_REGISTRY)', async () => {
    // A staging registry made from this one shares its key and its log's first entries: its voids, signed
    // by that key, must not stand in this registry's log.
    const staging = 'https://staging.registry.example';
    await voidedFor(
      'Production',
      () => staging,
      async ({ verified, audit }) => {
        const error = await rejectionOf(verified(), TrustError);
        expect(error.code).toBe('LOG_VOID_OTHER_REGISTRY');
        expect(error.message).toMatch(
          new RegExp(
            `^log entry 2 \\(void\\) is a void of registry "${staging}", not of "http://127\\.0\\.0\\.1:\\d+"`,
          ),
        );
        expect(await rejectionOf(audit(), TrustError)).toMatchObject({ code: 'LOG_VOID_OTHER_REGISTRY' });
      },
    );
  });

  it('takes one of this registry, its URL spelled another way (the scheme in capitals, a trailing slash)', async () => {
    await voidedFor(
      'Spelled',
      (url) => `${url.toUpperCase()}/`,
      async ({ verified, audit }) => {
        expect((await verified()).voided).toEqual([
          { seq: 1, type: 'publish', plugin: GHOST, version: '1.0.0', by: 2, reason: REASON },
        ]);
        expect(await audit()).toMatchObject({ log: { length: 3 }, entries: [{ seq: 0, type: 'publish' }] });
      },
    );
  });
});

describe('when the key that signed a void was retired as compromised since', () => {
  it('verify --url marks the voided entry so: whoever stole the key may have written the void', async () => {
    // A registry of its own: its publish, a publish no document shows, the registry's void of it, then a
    // rotation logged as made because that key was stolen.
    const { own, listening, other, ctx } = await servedRegistryOf('Stolen');
    try {
      // The registry's key A, rotated (routinely) to B, which is then stolen and rotated to C: each void
      // signed by the key the registry held when it was written, each rotation from the key the one before
      // it rotated to (verify --url holds the log's rotate-key entries to the signed rotations, and those
      // to one chain); the snapshot counts neither, so A still signs it.
      const keyB = await createSigner((await testKey('publisher')).secretKey);
      const keyC = await createSigner((await testKey('registry-2')).secretKey);
      await appendLog(ctx, [await ghostPublish('1.0.0'), await ghostPublish('1.0.1')]);
      const segment = await own.get(logSegmentKey(0));
      const entries = parseSegment(segment?.body ?? new Uint8Array(), 0);
      const voidOf = (seq: number, signer: typeof keyB) =>
        signVoid({
          voided: entries[seq] as ReadEntry,
          reason: REASON,
          time: '2026-11-01T23:59:50.000Z',
          signer,
          registry: ctx.config.url,
        });
      const rotation = async (compromised: boolean) => {
        const sequence = compromised ? 2 : 1;
        const [previous, next] = compromised ? [keyB, keyC] : [ctx.signer, keyB];
        const signed = await signRotation({
          registry: ctx.config.url,
          sequence,
          previous,
          next,
          now: new Date('2026-11-01T23:59:55.000Z'),
          compromised,
        });
        await own.put(rotationKey(sequence), signed.bytes, {
          contentType: 'application/json',
          cacheControl: CACHE_IMMUTABLE,
        });
        return {
          type: 'rotate-key' as const,
          signer: previous.fingerprint,
          time: '2026-11-01T23:59:55.000Z',
          digest: signed.digest,
          detail: {
            fingerprint: next.fingerprint,
            sequence: String(sequence),
            ...(compromised ? { compromised: 'true' } : {}),
          },
        };
      };
      // Appended at once: a void, a routine rotation, a void, a rotation made because the key it left was
      // stolen.
      await appendLog(ctx, [
        await voidOf(1, ctx.signer),
        await rotation(false),
        await voidOf(2, keyB),
        await rotation(true),
      ]);
      const report = await verifyRegistry({
        url: listening.url,
        pinnedKey: other.registryKey.publicKey,
        now: NOW,
      });
      const ghostVoid = { type: 'publish', plugin: GHOST, reason: REASON };
      expect(report.voided).toEqual([
        { ...ghostVoid, seq: 1, version: '1.0.0', by: 3 },
        { ...ghostVoid, seq: 2, version: '1.0.1', by: 5, compromised: true },
      ]);
    } finally {
      await listening.close();
    }
  });
});
