/**
 * Lifecycle actions end to end through processSubmissions: envelopes signed with real keys by signAction
 * (what the CLI submits) put under incoming/, applied to the published plugin documents, bound through
 * their bins to the signed snapshot, recorded in the log (its chain verified up to the snapshot's head) and
 * in each submission's outcome; and every refusal with its code, leaving what is published as it was.
 */
import * as openpgp from 'openpgp';
import { beforeAll, describe, expect, it } from 'vitest';
import { compareDocument, foldLog } from '../../../client/log-consistency.ts';
import type { ActionBody } from '../../../index-builder/actions.ts';
import { fixedClock } from '../../../index-builder/clock.ts';
import { PlugindexError, StoreError, TrustError } from '../../../index-builder/errors.ts';
import {
  actionEnvelopeKey,
  actionMarkerKey,
  actionOrderKey,
  binKey,
  binOf,
  CATALOG_META_KEY,
  catalogBinKey,
  pluginDocumentKey,
  REVOKED_KEYS_KEY,
  statusKey,
  submissionIdFromBytes,
} from '../../../index-builder/layout.ts';
import { MAX_ADVISORIES } from '../../../index-builder/lifecycle.ts';
import {
  entryLine,
  LOG_SEGMENT_ENTRIES,
  type LogEntry,
  lineHash,
  logSegmentKey,
} from '../../../index-builder/log.ts';
import type { PluginDocument, RevokedKeysDocument, SnapshotDocument } from '../../../index-builder/model.ts';
import {
  type BatchStep,
  processSubmissions,
  rebuildRegistry,
  type SubmissionOutcome,
} from '../../../index-builder/pipeline/index.ts';
import { LOG_STATE_KEY } from '../../../index-builder/pipeline/log-writer.ts';
import { signRotation } from '../../../index-builder/rotation.ts';
import {
  createSigner,
  type KeyPair,
  readPublicKey,
  verifyDetachedSignature,
} from '../../../index-builder/signing.ts';
import { CACHE_IMMUTABLE, CACHE_MUTABLE, CACHE_PRIVATE } from '../../../index-builder/store.ts';
import { verifyListedDocument } from '../../../index-builder/verify.ts';
import {
  ACTION_SIGNED,
  boundDocument,
  signedAction,
  submitAction,
  trustedSnapshot,
  upload,
  vouchedLog,
} from '../../support/actions.ts';
import {
  encode,
  KEYS_CREATED,
  makeBundle,
  makeRegistry,
  type TestRegistry,
  testKey,
  validManifest,
} from '../../support/fixtures.ts';
import { editPlugin } from '../../support/lifecycle.ts';

let publisher: KeyPair;
let operator: KeyPair;
let stranger: KeyPair;
let heir: KeyPair;

beforeAll(async () => {
  publisher = await testKey('publisher');
  operator = await testKey('operator');
  stranger = await testKey('stranger');
  heir = await testKey('heir');
});

/** A registry with the operator's key configured, and what a client reads of it. */
async function registryWithOperator(): Promise<TestRegistry> {
  return makeRegistry({ operators: [{ fingerprint: operator.fingerprint, key: operator.publicKey }] });
}

const text = (registry: TestRegistry, key: string): string =>
  new TextDecoder().decode(registry.site.objects.get(key)?.body);

/** Runs one batch of the named uploads, in that order. */
async function run(registry: TestRegistry, ...keys: string[]): Promise<SubmissionOutcome[]> {
  return [...(await processSubmissions(registry.context, keys)).outcomes];
}

/** Uploads a bundle of `version` of the demo plugin, signed by the publisher, and returns its key. */
async function submitVersion(registry: TestRegistry, version: string): Promise<string> {
  const bundle = await makeBundle({
    manifest: validManifest({ version }),
    artifacts: [{ os: 'linux', arch: 'amd64', name: 'tool', body: encode(`demo ${version}`) }],
    signer: publisher,
  });
  const [key = ''] = await registry.submit(bundle);
  return key;
}

/** The log's replay (as `verify --url` folds it) has the plugin's document as `doc` has it. */
function expectReplayMatches(entries: readonly LogEntry[], doc: PluginDocument): void {
  const fold = foldLog(
    entries.map((entry) => {
      const line = entryLine(entry);
      return { entry, line, hash: lineHash(line) };
    }),
  );
  expect(compareDocument(fold, doc)).toEqual([]);
}

/** Publishes versions of a plugin (each its own batch), signed by `signer`. */
async function publishVersions(
  registry: TestRegistry,
  versions: readonly string[],
  options: { readonly name?: string; readonly signer?: KeyPair } = {},
): Promise<void> {
  for (const version of versions) {
    const bundle = await makeBundle({
      manifest: validManifest({ version, ...(options.name ? { name: options.name } : {}) }),
      artifacts: [
        { os: 'linux', arch: 'amd64', name: 'tool', body: encode(`${options.name ?? 'demo'} ${version}`) },
      ],
      signer: options.signer ?? publisher,
    });
    const [outcome] = await run(registry, ...(await registry.submit(bundle)));
    expect(outcome?.status, version).toBe('accepted');
  }
}

/** Signs, submits and runs one action alone in its batch. */
async function act(registry: TestRegistry, body: ActionBody, signer: KeyPair): Promise<SubmissionOutcome> {
  const submitted = await submitAction(registry.intake, body, signer);
  const [outcome] = await run(registry, submitted.key);
  return outcome as SubmissionOutcome;
}

const bound = (registry: TestRegistry, name = 'demo-plugin'): Promise<PluginDocument> =>
  boundDocument(registry.site, registry.registryKey.publicKey, name);
const logOf = (registry: TestRegistry) => vouchedLog(registry.site, registry.registryKey.publicKey);
const codes = (outcome: SubmissionOutcome | undefined) => outcome?.problems.map((p) => p.code);
const version = (doc: PluginDocument, v: string) => doc.versions.find((r) => r.version === v);

describe('when an owner yanks and unyanks a version', () => {
  it('applies it, binds the document to the snapshot, logs it, and keeps the envelope and outcome', async () => {
    const registry = await registryWithOperator();
    await publishVersions(registry, ['1.0.0', '1.1.0']);
    const submitted = await submitAction(
      registry.intake,
      { action: 'yank', plugin: 'demo-plugin', version: '1.1.0', reason: 'corrupts the cache' },
      publisher,
    );
    const [outcome] = await run(registry, submitted.key);

    expect(outcome).toMatchObject({
      status: 'accepted',
      action: 'yank',
      plugin: 'demo-plugin',
      version: '1.1.0',
      signer: publisher.fingerprint,
      seq: 2,
      generation: 3,
      problems: [],
    });
    const doc = await bound(registry);
    expect(version(doc, '1.1.0')).toMatchObject({ yanked: true, yanked_reason: 'corrupts the cache' });
    expect(doc.latest_version).toBe('1.0.0');
    // The snapshot lists the bin that binds the document (checked by boundDocument), and the log's head.
    const log = await logOf(registry);
    expect(log.map((e) => [e.type, e.version, e.signer])).toEqual([
      ['publish', '1.0.0', publisher.fingerprint],
      ['publish', '1.1.0', publisher.fingerprint],
      ['yank', '1.1.0', publisher.fingerprint],
    ]);
    expect(log[2]).toMatchObject({ digest: submitted.digest, detail: { reason: 'corrupts the cache' } });
    expect(log[0]?.digest).toBe(doc.versions.find((v) => v.version === '1.0.0')?.source_sha256);
    // Anyone can check the logged action's signature: its envelope is published as it was submitted.
    const envelope = registry.site.objects.get(actionEnvelopeKey(submitted.digest));
    expect(envelope?.body).toEqual(submitted.bytes);
    expect(envelope?.cacheControl).toBe(CACHE_IMMUTABLE);
    const signed = JSON.parse(new TextDecoder().decode(envelope?.body)) as {
      action: string;
      signature: string;
    };
    const key = await readPublicKey(publisher.publicKey);
    await expect(
      verifyDetachedSignature(encode(signed.action), signed.signature, [key.key]),
    ).resolves.toMatchObject({ ok: true, fingerprint: publisher.fingerprint });
    // The outcome and the envelope are kept like a bundle's, as JSON; the marker stops a replay.
    const id = outcome?.id as string;
    expect(
      JSON.parse(new TextDecoder().decode(registry.intake.objects.get(`status/${id}.json`)?.body)),
    ).toEqual(outcome);
    expect(registry.intake.objects.get(`processed/${id}.json`)?.contentType).toBe('application/json');
    expect(registry.intake.objects.has(submitted.key)).toBe(false);
    expect(registry.intake.objects.has(actionMarkerKey(submitted.digest))).toBe(true);

    const again = await act(registry, { action: 'yank', plugin: 'demo-plugin', version: '1.1.0' }, publisher);
    expect(again).toMatchObject({ status: 'rejected', action: 'yank', signer: publisher.fingerprint });
    expect(codes(again)).toEqual(['ACTION_NO_EFFECT']);
    expect(registry.intake.objects.has(`rejected/${again.id}.json`)).toBe(true);

    const unyank = await act(
      registry,
      { action: 'unyank', plugin: 'demo-plugin', version: '1.1.0' },
      publisher,
    );
    expect(unyank).toMatchObject({ status: 'accepted', seq: 4 });
    const after = await bound(registry);
    expect(version(after, '1.1.0')).toMatchObject({ yanked: false });
    expect(version(after, '1.1.0')).not.toHaveProperty('yanked_reason');
    expect(after.latest_version).toBe('1.1.0');
    // The second yank, made later, changed nothing but stands for the version's yank: logged as such.
    expect((await logOf(registry)).map((e) => [e.type, e.detail?.effect])).toEqual([
      ['publish', undefined],
      ['publish', undefined],
      ['yank', undefined],
      ['yank', 'none'],
      ['unyank', undefined],
    ]);
  });
});

describe('when an action names a version spelled otherwise than it was published', () => {
  it('applies it to that version, and the outcome, the marker and the log name it as published', async () => {
    const registry = await registryWithOperator();
    await publishVersions(registry, ['1.2.0-RC.1+build.7']);
    const submitted = await submitAction(
      registry.intake,
      { action: 'yank', plugin: 'demo-plugin', version: '1.2.0-rc.1' },
      publisher,
    );
    const [outcome] = await run(registry, submitted.key);

    expect(outcome).toMatchObject({ status: 'accepted', version: '1.2.0-RC.1+build.7' });
    expect(version(await bound(registry), '1.2.0-RC.1+build.7')).toMatchObject({ yanked: true });
    expect((await logOf(registry)).map((e) => [e.type, e.version])).toEqual([
      ['publish', '1.2.0-RC.1+build.7'],
      ['yank', '1.2.0-RC.1+build.7'],
    ]);
    const marker = registry.intake.objects.get(actionMarkerKey(submitted.digest))?.body;
    expect(JSON.parse(new TextDecoder().decode(marker)).version).toBe('1.2.0-RC.1+build.7');
  });
});

describe('when an owner deprecates', () => {
  it('deprecates a range, then the whole plugin (later versions too), then lifts it', async () => {
    const registry = await registryWithOperator();
    await publishVersions(registry, ['1.0.0', '1.1.0', '2.0.0-beta.1']);
    const ranged = await act(
      registry,
      {
        action: 'deprecate',
        plugin: 'demo-plugin',
        range: '<1.1.0',
        message: 'use 1.1',
        replacement: 'demo-next',
      },
      publisher,
    );
    expect(ranged.status).toBe('accepted');
    let doc = await bound(registry);
    expect(version(doc, '1.0.0')).toMatchObject({
      deprecated: true,
      deprecation_message: 'use 1.1',
      deprecation_replacement: 'demo-next',
    });
    expect(version(doc, '1.1.0')?.deprecated).toBe(false);
    expect(doc).not.toHaveProperty('deprecation');

    const whole = await act(
      registry,
      { action: 'deprecate', plugin: 'demo-plugin', message: 'unmaintained' },
      publisher,
    );
    expect(whole.status).toBe('accepted');
    doc = await bound(registry);
    expect(doc.deprecation).toMatchObject({ message: 'unmaintained' });
    expect(doc.versions.map((v) => [v.version, v.deprecated, v.deprecation_message])).toEqual([
      ['2.0.0-beta.1', true, 'unmaintained'],
      ['1.1.0', true, 'unmaintained'],
      ['1.0.0', true, 'unmaintained'],
    ]);
    expect(version(doc, '1.0.0')).not.toHaveProperty('deprecation_replacement');
    // A version published after a plugin-level deprecation is deprecated as it lands.
    await publishVersions(registry, ['1.2.0']);
    doc = await bound(registry);
    expect(version(doc, '1.2.0')).toMatchObject({ deprecated: true, deprecation_message: 'unmaintained' });

    const repeated = await act(
      registry,
      { action: 'deprecate', plugin: 'demo-plugin', message: 'unmaintained' },
      publisher,
    );
    expect(codes(repeated)).toEqual(['ACTION_NO_EFFECT']);
    const nothing = await act(
      registry,
      { action: 'deprecate', plugin: 'demo-plugin', range: '>=9', message: 'x' },
      publisher,
    );
    expect(codes(nothing)).toEqual(['ACTION_UNKNOWN_VERSION']);

    const lifted = await act(registry, { action: 'undeprecate', plugin: 'demo-plugin' }, publisher);
    expect(lifted.status).toBe('accepted');
    doc = await bound(registry);
    expect(doc).not.toHaveProperty('deprecation');
    expect(doc.versions.every((v) => !v.deprecated && v.deprecation_message === undefined)).toBe(true);
    expect(
      (await logOf(registry)).filter((e) => e.type !== 'publish').map((e) => [e.type, e.detail]),
    ).toEqual([
      ['deprecate', { message: 'use 1.1', range: '<1.1.0', replacement: 'demo-next' }],
      ['deprecate', { message: 'unmaintained' }],
      // Repeated, it changed nothing, but stands for the deprecation: logged as such.
      ['deprecate', { message: 'unmaintained', effect: 'none' }],
      ['undeprecate', undefined],
    ]);
  });
});

describe('when an owner publishes and withdraws an advisory', () => {
  it('lists it, refuses a live duplicate, keeps it withdrawn, and refuses an unknown id', async () => {
    const registry = await registryWithOperator();
    await publishVersions(registry, ['1.0.0']);
    const advisory = {
      id: 'PDX-2026-0001',
      severity: 'high',
      affected: '<1.0.1',
      fixed: '1.0.1',
      summary: 'leaks credentials to the log',
      url: 'https://security.example.com/PDX-2026-0001',
    } as const;
    expect(
      (await act(registry, { action: 'advisory-add', plugin: 'demo-plugin', advisory }, publisher)).status,
    ).toBe('accepted');
    expect((await bound(registry)).advisories).toEqual([{ ...advisory, published: expect.any(String) }]);
    const duplicate = await act(
      registry,
      { action: 'advisory-add', plugin: 'demo-plugin', advisory },
      publisher,
    );
    expect(codes(duplicate)).toEqual(['ADVISORY_EXISTS']);
    expect(duplicate.problems[0]?.path).toBe('/advisory/id');

    const withdrawn = await act(
      registry,
      { action: 'advisory-withdraw', plugin: 'demo-plugin', id: advisory.id, reason: 'not exploitable' },
      publisher,
    );
    expect(withdrawn.status).toBe('accepted');
    expect((await bound(registry)).advisories?.[0]?.withdrawn).toMatchObject({ reason: 'not exploitable' });
    const unknown = await act(
      registry,
      { action: 'advisory-withdraw', plugin: 'demo-plugin', id: 'PDX-0' },
      publisher,
    );
    expect(codes(unknown)).toEqual(['ADVISORY_UNKNOWN']);
    // The withdrawal of an advisory it does not have stands for that id (as good as withdrawn): logged so.
    expect((await logOf(registry)).slice(-3)).toMatchObject([
      { type: 'advisory-add', detail: { id: advisory.id, severity: 'high', affected: '<1.0.1' } },
      { type: 'advisory-withdraw', detail: { id: advisory.id } },
      { type: 'advisory-withdraw', detail: { id: 'PDX-0', effect: 'none' } },
    ]);
  });
});

describe('when owners change', () => {
  it('adds an owner who may then act, removes one, and refuses to remove the last', async () => {
    const registry = await registryWithOperator();
    await publishVersions(registry, ['1.0.0']);
    const added = await act(
      registry,
      { action: 'owners-add', plugin: 'demo-plugin', key: heir.publicKey },
      publisher,
    );
    expect(added.status).toBe('accepted');
    expect((await bound(registry)).owners).toEqual([publisher.fingerprint, heir.fingerprint]);
    expect((await logOf(registry)).at(-1)).toMatchObject({
      type: 'owners-add',
      detail: { added: heir.fingerprint },
    });
    // The new owner may act, and publish.
    expect(
      (await act(registry, { action: 'yank', plugin: 'demo-plugin', version: '1.0.0' }, heir)).status,
    ).toBe('accepted');
    await publishVersions(registry, ['1.0.1'], { signer: heir });

    const removed = await act(
      registry,
      { action: 'owners-remove', plugin: 'demo-plugin', fingerprint: publisher.fingerprint },
      heir,
    );
    expect(removed.status).toBe('accepted');
    expect((await bound(registry)).owners).toEqual([heir.fingerprint]);
    const formerOwner = await act(
      registry,
      { action: 'unyank', plugin: 'demo-plugin', version: '1.0.0' },
      publisher,
    );
    expect(codes(formerOwner)).toEqual(['ACTION_NOT_OWNER']);
    const last = await act(
      registry,
      { action: 'owners-remove', plugin: 'demo-plugin', fingerprint: heir.fingerprint },
      heir,
    );
    expect(codes(last)).toEqual(['ACTION_LAST_OWNER']);
    // The registry's key can never own a plugin.
    const registryAsOwner = await act(
      registry,
      { action: 'owners-add', plugin: 'demo-plugin', key: registry.registryKey.publicKey },
      heir,
    );
    expect(codes(registryAsOwner)).toEqual(['PUBLISHER_IS_REGISTRY_KEY']);
    expect((await bound(registry)).owners).toEqual([heir.fingerprint]);
  });
});

describe('when actions on one target arrive in the reverse order of their making', () => {
  /** A time `seconds` after ACTION_SIGNED: when a test action says it was made. */
  const made = (seconds: number) => new Date(ACTION_SIGNED.getTime() + seconds * 1000);
  const submitAt = (registry: TestRegistry, body: ActionBody, signer: KeyPair, seconds: number) =>
    submitAction(registry.intake, body, signer, { now: made(seconds) });
  /** The bodies of the actions these tests make on demo-plugin. */
  const on = {
    deprecate: (message: string): ActionBody => ({ action: 'deprecate', plugin: 'demo-plugin', message }),
    undeprecate: (): ActionBody => ({ action: 'undeprecate', plugin: 'demo-plugin' }),
    yank: (v: string): ActionBody => ({ action: 'yank', plugin: 'demo-plugin', version: v }),
    unyank: (v: string): ActionBody => ({ action: 'unyank', plugin: 'demo-plugin', version: v }),
    ownersAdd: (key: string): ActionBody => ({ action: 'owners-add', plugin: 'demo-plugin', key }),
    ownersRemove: (fingerprint: string): ActionBody => ({
      action: 'owners-remove',
      plugin: 'demo-plugin',
      fingerprint,
    }),
    transfer: (key: string): ActionBody => ({ action: 'transfer', plugin: 'demo-plugin', key }),
  };
  /** Each outcome as its status followed by its problems' codes. */
  const verdicts = (outcomes: readonly SubmissionOutcome[]) =>
    outcomes.map((o) => [o.status, ...o.problems.map((p) => p.code)]);
  /** Makes `store` fail its put of `key`, as a run that dies there; returns what mends it. */
  const failPutOf = (store: TestRegistry['site'], key: string): (() => void) => {
    const put = store.put.bind(store);
    store.put = async (k, body, options) => {
      if (k === key) throw new StoreError('STORE_IO', k, 'injected failure');
      return put(k, body, options);
    };
    return () => {
      store.put = put;
    };
  };
  /** Runs one batch of the named uploads that dies writing the plugin's document (after its log entry). */
  const diesWritingDocument = async (registry: TestRegistry, ...keys: string[]): Promise<void> => {
    const mend = failPutOf(registry.site, pluginDocumentKey('demo-plugin'));
    await expect(run(registry, ...keys)).rejects.toThrow(/injected failure/);
    mend();
  };

  it('refuses the older one in a later batch (ACTION_SUPERSEDED), its outcome saying why, nothing published changed', async () => {
    const registry = await registryWithOperator();
    await publishVersions(registry, ['1.0.0']);
    const newer = await submitAt(registry, on.deprecate('newer'), publisher, 2);
    const older = await submitAt(registry, on.deprecate('older'), publisher, 1);
    const lifted = await submitAt(registry, on.undeprecate(), publisher, 1);
    expect((await run(registry, newer.key))[0]?.status).toBe('accepted');
    const before = registry.site.fingerprint();
    const logBefore = await logOf(registry);

    const [stale] = await run(registry, older.key);
    expect(stale).toMatchObject({ status: 'rejected', action: 'deprecate', plugin: 'demo-plugin' });
    expect(codes(stale)).toEqual(['ACTION_SUPERSEDED']);
    expect(stale?.problems[0]?.message).toContain(made(2).toISOString());
    expect(stale?.problems[0]?.found).toBe(made(1).toISOString());
    // Another kind of the same state (lifting the deprecation) is as old: refused too.
    expect(codes((await run(registry, lifted.key))[0])).toEqual(['ACTION_SUPERSEDED']);
    expect(registry.site.fingerprint()).toEqual(before);
    expect((await bound(registry)).deprecation?.message).toBe('newer');
    expect(await logOf(registry)).toEqual(logBefore);
    // The log says when the signer made what it applied.
    expect(logBefore.at(-1)).toMatchObject({ type: 'deprecate', created: made(2).toISOString() });
  });

  it('in one batch, refuses the older one uploaded after the newer, and applies actions made at one time in upload order', async () => {
    const registry = await registryWithOperator();
    await publishVersions(registry, ['1.0.0', '1.1.0']);
    const yank = await submitAt(registry, on.yank('1.1.0'), publisher, 2);
    const unyank = await submitAt(registry, on.unyank('1.1.0'), publisher, 1);
    // Another version is another target: an older action on it still applies.
    const other = await submitAt(registry, on.yank('1.0.0'), publisher, 1);
    const first = await submitAt(registry, on.deprecate('first'), publisher, 3);
    const second = await submitAt(registry, on.deprecate('second'), publisher, 3);

    const outcomes = await run(registry, yank.key, unyank.key, other.key, first.key, second.key);
    expect(verdicts(outcomes)).toEqual([
      ['accepted'],
      ['rejected', 'ACTION_SUPERSEDED'],
      ['accepted'],
      ['accepted'],
      ['accepted'],
    ]);
    const doc = await bound(registry);
    expect(version(doc, '1.1.0')?.yanked).toBe(true);
    expect(version(doc, '1.0.0')?.yanked).toBe(true);
    expect(doc.deprecation?.message).toBe('second');
    expect(
      (await logOf(registry)).filter((e) => e.type !== 'publish').map((e) => [e.type, e.created]),
    ).toEqual([
      ['yank', made(2).toISOString()],
      ['yank', made(1).toISOString()],
      ['deprecate', made(3).toISOString()],
      ['deprecate', made(3).toISOString()],
    ]);
  });

  it("refuses an owner change older than the operator's transfer, and a transfer older than an owner change", async () => {
    const registry = await registryWithOperator();
    await publishVersions(registry, ['1.0.0']);
    const transfer = await submitAt(registry, on.transfer(heir.publicKey), operator, 2);
    const add = await submitAt(registry, on.ownersAdd(stranger.publicKey), operator, 1);
    expect(verdicts(await run(registry, transfer.key, add.key))).toEqual([
      ['accepted'],
      ['rejected', 'ACTION_SUPERSEDED'],
    ]);
    expect((await bound(registry)).owners).toEqual([heir.fingerprint]);

    const added = await submitAt(registry, on.ownersAdd(stranger.publicKey), heir, 4);
    const staleTransfer = await submitAt(registry, on.transfer(publisher.publicKey), operator, 3);
    expect(verdicts(await run(registry, added.key, staleTransfer.key))).toEqual([
      ['accepted'],
      ['rejected', 'ACTION_SUPERSEDED'],
    ]);
    expect((await bound(registry)).owners).toEqual([heir.fingerprint, stranger.fingerprint]);
  });

  it('refuses an older action after a newer one on its target that had no effect (the state already said so)', async () => {
    const registry = await registryWithOperator();
    await publishVersions(registry, ['1.0.0', '1.1.0']);
    await act(registry, on.ownersAdd(heir.publicKey), publisher);
    // Made first, delivered last (held in a queue, or by whoever carried it): each would undo the newer.
    const addStranger = await submitAt(registry, on.ownersAdd(stranger.publicKey), publisher, 1);
    const yank = await submitAt(registry, on.yank('1.1.0'), publisher, 1);
    const deprecate = await submitAt(registry, on.deprecate('old'), publisher, 1);
    const advise = await submitAt(
      registry,
      {
        action: 'advisory-add',
        plugin: 'demo-plugin',
        advisory: { id: 'PDX-2026-0009', severity: 'high', affected: '<2.0.0', summary: 'bad' },
      },
      publisher,
      1,
    );
    // Made later, delivered first: the state already is what they say, so they change nothing.
    const removeStranger = await submitAt(registry, on.ownersRemove(stranger.fingerprint), heir, 2);
    const unyank = await submitAt(registry, on.unyank('1.1.0'), heir, 2);
    const undeprecate = await submitAt(registry, on.undeprecate(), heir, 2);
    const withdraw = await submitAt(
      registry,
      { action: 'advisory-withdraw', plugin: 'demo-plugin', id: 'PDX-2026-0009' },
      heir,
      2,
    );

    const first = await run(registry, removeStranger.key, unyank.key, undeprecate.key, withdraw.key);
    expect(verdicts(first)).toEqual([
      ['rejected', 'ACTION_NO_EFFECT'],
      ['rejected', 'ACTION_NO_EFFECT'],
      ['rejected', 'ACTION_NO_EFFECT'],
      ['rejected', 'ADVISORY_UNKNOWN'],
    ]);
    expect(
      JSON.parse(new TextDecoder().decode((await registry.intake.get(actionOrderKey('demo-plugin')))?.body))
        .slots,
    ).toMatchObject({
      [`owners/${stranger.fingerprint}`]: { created: made(2).toISOString() },
    });
    const logBefore = await logOf(registry);
    const later = await run(registry, addStranger.key, yank.key, deprecate.key, advise.key);
    expect(verdicts(later)).toEqual([
      ['rejected', 'ACTION_SUPERSEDED'],
      ['rejected', 'ACTION_SUPERSEDED'],
      ['rejected', 'ACTION_SUPERSEDED'],
      ['rejected', 'ACTION_SUPERSEDED'],
    ]);
    const doc = await bound(registry);
    expect(doc.owners).toEqual([publisher.fingerprint, heir.fingerprint]);
    expect(version(doc, '1.1.0')?.yanked).toBe(false);
    expect(doc.deprecation).toBeUndefined();
    expect(doc.advisories ?? []).toEqual([]);
    expect(await logOf(registry)).toEqual(logBefore);
  });

  it.each([
    ['its order', 'intake', () => actionOrderKey('demo-plugin')],
    ['its plugin document', 'site', () => pluginDocumentKey('demo-plugin')],
  ] as const)(
    'does not let a run that died put back an older action over a newer one applied since (dead at %s)',
    async (_at, storeName, failing) => {
      const registry = await registryWithOperator();
      await publishVersions(registry, ['1.0.0']);
      const older = await submitAt(registry, on.deprecate('older'), publisher, 1);
      const newer = await submitAt(registry, on.deprecate('newer'), publisher, 2);
      // The run of the older one dies once it is logged; another run publishes the newer one alone.
      const mend = failPutOf(registry[storeName], failing());
      await expect(run(registry, older.key)).rejects.toThrow(/injected failure/);
      mend();
      expect((await run(registry, newer.key))[0]?.status).toBe('accepted');
      expect((await bound(registry)).deprecation?.message).toBe('newer');
      // The older one's retry finishes it (accepted, logged once, before the newer) and leaves the newer in force.
      expect((await run(registry, older.key))[0]?.status).toBe('accepted');
      expect((await bound(registry)).deprecation?.message).toBe('newer');
      expect((await logOf(registry)).map((e) => [e.type, e.created])).toEqual([
        ['publish', undefined],
        ['deprecate', made(1).toISOString()],
        ['deprecate', made(2).toISOString()],
      ]);
    },
  );

  it('puts back every action of a batch that died after its log, a later one on the same slot not taken for another run', async () => {
    const registry = await registryWithOperator();
    await publishVersions(registry, ['1.0.0']);
    const advisory = { id: 'PDX-1', severity: 'high', affected: '<2.0.0', summary: 'leaks' } as const;
    // One batch: an advisory and its withdrawal; an owner added, whose yank the operator's transfer follows.
    const keys = [
      await submitAt(registry, { action: 'advisory-add', plugin: 'demo-plugin', advisory }, publisher, 1),
      await submitAt(
        registry,
        { action: 'advisory-withdraw', plugin: 'demo-plugin', id: 'PDX-1' },
        publisher,
        2,
      ),
      await submitAt(registry, on.ownersAdd(heir.publicKey), publisher, 1),
      await submitAt(registry, on.yank('1.0.0'), heir, 1),
      await submitAt(registry, on.transfer(publisher.publicKey), operator, 2),
    ].map((submitted) => submitted.key);
    // The run dies writing the plugin document: logged, its slots recorded, nothing shows it.
    await diesWritingDocument(registry, ...keys);

    // Its retry applies them again in their order: each later one was that very run's, not a newer statement
    // another run applied while these waited.
    expect(verdicts(await run(registry, ...keys))).toEqual(keys.map(() => ['accepted']));
    const doc = await bound(registry);
    expect(doc.advisories?.map((a) => [a.id, a.withdrawn !== undefined])).toEqual([['PDX-1', true]]);
    expect(doc.owners).toEqual([publisher.fingerprint]);
    // The log's yank is one the document shows.
    expect(version(doc, '1.0.0')?.yanked).toBe(true);
    expect((await logOf(registry)).map((e) => e.type)).toEqual([
      'publish',
      'advisory-add',
      'advisory-withdraw',
      'owners-add',
      'yank',
      'transfer',
    ]);
  });

  it('takes every upload of a batch that died after its log into its retry, past the bounds that round had', async () => {
    const registry = await registryWithOperator();
    await publishVersions(registry, ['1.0.0']);
    // The oldest upload waiting is one refused unread (past four times the bundle limit); then an advisory
    // and its withdrawal, in that upload order.
    const limit = 64 * 1024;
    const huge = 'incoming/a-huge.tgz';
    await registry.intake.put(huge, new Uint8Array(limit * 4 + 1).fill(7), {
      contentType: 'application/gzip',
      cacheControl: CACHE_PRIVATE,
    });
    const advisory = { id: 'PDX-1', severity: 'high', affected: '<2.0.0', summary: 'leaks' } as const;
    const added = await submitAt(
      registry,
      { action: 'advisory-add', plugin: 'demo-plugin', advisory },
      publisher,
      1,
    );
    const withdrawn = await submitAt(
      registry,
      { action: 'advisory-withdraw', plugin: 'demo-plugin', id: 'PDX-1' },
      publisher,
      2,
    );
    for (const [at, key] of [huge, added.key, withdrawn.key].entries()) {
      const object = registry.intake.objects.get(key);
      if (object)
        registry.intake.objects.set(key, {
          ...object,
          lastModified: new Date(Date.UTC(2026, 0, 1, 0, 0, at)),
        });
    }
    // The publish function's rounds: two uploads each (MAX_BATCH_UPLOADS), its later rounds passing over the
    // upload its first refused unread.
    const rounds = {
      ...registry.context,
      bundleLimits: { maxCompressedBytes: limit },
      maxStreamedBytes: limit * 4,
      maxBatchUploads: 2,
    };
    // A later round takes both actions and dies writing the plugin document: both logged, neither shown.
    const mend = failPutOf(registry.site, pluginDocumentKey('demo-plugin'));
    await expect(processSubmissions({ ...rounds, passOver: new Set([huge]) })).rejects.toThrow(
      /injected failure/,
    );
    mend();

    // Act: the retry is the next invocation's first round, which meets the upload refused unread again; then
    // its later round.
    const retry = await processSubmissions(rounds);
    const later = await processSubmissions({ ...rounds, passOver: new Set([huge]) });

    // Assess: as a run that did not die, the advisory the log adds shows, withdrawn as the log withdraws it.
    expect([...retry.outcomes, ...later.outcomes].map((o) => [o.submission, o.status])).toEqual([
      [huge, 'rejected'],
      [added.key, 'accepted'],
      [withdrawn.key, 'accepted'],
    ]);
    const doc = await bound(registry);
    expect(doc.advisories?.map((a) => [a.id, a.withdrawn !== undefined])).toEqual([['PDX-1', true]]);
    expect((await logOf(registry)).map((e) => e.type)).toEqual([
      'publish',
      'advisory-add',
      'advisory-withdraw',
    ]);
  });

  it('does not put back an action over a later one its dead run published, when the retry takes it alone', async () => {
    const registry = await registryWithOperator();
    await publishVersions(registry, ['1.0.0']);
    const added = await submitAt(registry, on.ownersAdd(heir.publicKey), publisher, 1);
    const transferred = await submitAt(registry, on.transfer(publisher.publicKey), operator, 2);
    // The run dies once its snapshot is out (the heir added, then transferred away), before any outcome.
    const mend = failPutOf(registry.intake, catalogBinKey(binOf('demo-plugin')));
    await expect(run(registry, added.key, transferred.key)).rejects.toThrow(/injected failure/);
    mend();
    expect((await bound(registry)).owners).toEqual([publisher.fingerprint]);

    // A retry of the owner's add alone (the transfer's upload left for a later batch, the transfer finished
    // from the log after it) must not make the heir an owner again, even for a while: the documents already
    // show the transfer made after it.
    expect(verdicts(await run(registry, added.key))).toEqual([['accepted'], ['accepted']]);
    expect((await bound(registry)).owners).toEqual([publisher.fingerprint]);
    expect(verdicts(await run(registry, transferred.key))).toEqual([['accepted']]);
    expect((await bound(registry)).owners).toEqual([publisher.fingerprint]);
    expect((await logOf(registry)).map((e) => e.type)).toEqual(['publish', 'owners-add', 'transfer']);
  });

  it('keeps the order of an action a run that died logged: an older one is refused in the retry and after it', async () => {
    const registry = await registryWithOperator();
    await publishVersions(registry, ['1.0.0']);
    const newer = await submitAt(registry, on.deprecate('newer'), publisher, 2);
    // The run dies right after the log's flush, recording the order: no marker, no document shows it.
    const mend = failPutOf(registry.intake, actionOrderKey('demo-plugin'));
    await expect(run(registry, newer.key)).rejects.toThrow(/injected failure/);
    mend();
    const older = await submitAt(registry, on.deprecate('older'), publisher, 1);

    expect(verdicts(await run(registry, newer.key, older.key))).toEqual([
      ['accepted'],
      ['rejected', 'ACTION_SUPERSEDED'],
    ]);
    const again = await submitAt(registry, on.undeprecate(), publisher, 1);
    expect(codes((await run(registry, again.key))[0])).toEqual(['ACTION_SUPERSEDED']);
    expect((await bound(registry)).deprecation?.message).toBe('newer');
    expect((await logOf(registry)).map((e) => e.type)).toEqual(['publish', 'deprecate']);
  });

  it('logs an action that changed nothing but stands for its slot, once, whether its run died or it is uploaded again', async () => {
    const registry = await registryWithOperator();
    await publishVersions(registry, ['1.0.0']);
    const undeprecate = await submitAt(registry, on.undeprecate(), publisher, 2);
    // The run dies right after the log's flush, recording the order.
    const mend = failPutOf(registry.intake, actionOrderKey('demo-plugin'));
    await expect(run(registry, undeprecate.key)).rejects.toThrow(/injected failure/);
    mend();
    const again = await upload(registry.intake, undeprecate.bytes);
    const older = await submitAt(registry, on.deprecate('older'), publisher, 1);

    // The retry, another upload of it, and an older deprecation.
    const outcomes = await run(registry, undeprecate.key, again, older.key);

    expect(verdicts(outcomes)).toEqual([
      ['rejected', 'ACTION_NO_EFFECT'],
      ['rejected', 'ACTION_NO_EFFECT'],
      ['rejected', 'ACTION_SUPERSEDED'],
    ]);
    expect((await bound(registry)).deprecation).toBeUndefined();
    expect((await logOf(registry)).map((e) => [e.type, e.digest, e.detail])).toEqual([
      ['publish', expect.any(String), undefined],
      ['undeprecate', undeprecate.digest, { effect: 'none' }],
    ]);
    expect(registry.site.objects.has(actionEnvelopeKey(undeprecate.digest))).toBe(true);
    expect(registry.intake.objects.has(actionMarkerKey(undeprecate.digest))).toBe(false);
  });

  /**
   * Makes both stores fail every write after the log's flush (its last write, the head record), as a run
   * that dies there: the log holds the batch, nothing after it is written. Returns what mends them.
   */
  const failAfterLog = (registry: TestRegistry): (() => void) => {
    let logged = false;
    const mends = [registry.site, registry.intake].map((store) => {
      const put = store.put.bind(store);
      store.put = async (key, body, options) => {
        if (logged) throw new StoreError('STORE_IO', key, 'injected failure');
        await put(key, body, options);
        if (key === LOG_STATE_KEY) logged = true;
      };
      return () => {
        store.put = put;
      };
    });
    return () => {
      for (const mend of mends) mend();
    };
  };

  it.each([
    ['its batch', { addedInBatch: false, withUnyank: true }],
    ['it alone', { addedInBatch: false, withUnyank: false }],
    ['it alone, its signer made an owner by that batch', { addedInBatch: true, withUnyank: false }],
  ])(
    'gives an action logged as changing nothing by a batch that died after its log its logged outcome in the retry of %s (ACTION_NO_EFFECT), logging it once',
    async (_, { addedInBatch, withUnyank }) => {
      // Prepare: 1.0.0 yanked in an earlier batch; a second owner, added before or in the batch that dies.
      const registry = await registryWithOperator();
      await publishVersions(registry, ['1.0.0']);
      const added = await submitAt(registry, on.ownersAdd(heir.publicKey), publisher, 0);
      if (!addedInBatch) expect(verdicts(await run(registry, added.key))).toEqual([['accepted']]);
      expect((await act(registry, on.yank('1.0.0'), publisher)).status).toBe('accepted');
      // One batch: the second owner yanks it again at 12:00 (changes nothing, stands for its slot: logged),
      // and unyanks it at 12:02; the run dies once the log holds them.
      const yank = await submitAt(registry, on.yank('1.0.0'), heir, 0);
      const unyank = await submitAt(registry, on.unyank('1.0.0'), heir, 120);
      const mend = failAfterLog(registry);
      const batch = [...(addedInBatch ? [added.key] : []), yank.key, unyank.key];
      await expect(run(registry, ...batch)).rejects.toThrow(/injected failure/);
      mend();

      // Act
      const outcomes = await run(registry, ...(withUnyank ? [yank.key, unyank.key] : [yank.key]));

      // Assess: the outcome the log says, the entry not appended again; the other actions of that batch whose
      // uploads are not taken (the owner's add, the unyank), finished from the log, reported after it.
      expect(verdicts(outcomes)).toEqual([
        ['rejected', 'ACTION_NO_EFFECT'],
        ...(addedInBatch ? [['accepted']] : []),
        ['accepted'],
      ]);
      const addedAt = addedInBatch ? 2 : 1;
      const log = (await logOf(registry)).map((e) => [e.type, e.digest, e.detail]);
      expect(log[addedAt]).toEqual(['owners-add', added.digest, expect.anything()]);
      expect(log.filter((_, at) => at !== addedAt)).toEqual([
        ['publish', expect.any(String), undefined],
        ['yank', expect.any(String), undefined],
        ['yank', yank.digest, { effect: 'none' }],
        ['unyank', unyank.digest, undefined],
      ]);
      expect(version(await bound(registry), '1.0.0')?.yanked).toBeFalsy();
    },
  );

  /**
   * Makes the put of `key` in `store` fail as a run that dies there: before its bytes land (`lands: false`),
   * or once they have, its answer lost. Returns what mends it.
   */
  const failWriteOf = (store: TestRegistry['site'], key: string, lands: boolean): (() => void) => {
    const put = store.put.bind(store);
    store.put = async (k, body, options) => {
      if (k !== key) return put(k, body, options);
      if (lands) await put(k, body, options);
      throw new StoreError('STORE_IO', k, 'injected failure');
    };
    return () => {
      store.put = put;
    };
  };

  it.each([
    ['the log segment, before it lands', 'site', false],
    ['the log segment, once it has landed', 'site', true],
    ['the head record, after the segment', 'intake', false],
  ] as const)(
    'keeps every published entry when a batch dies at %s, logs the yank the retry takes, and then the unyank left for a later batch, once',
    async (_, where, lands) => {
      // Prepare: 1.0.0 yanked by an earlier batch; a second owner yanks it again at 12:00 (changes nothing,
      // logged) and unyanks it at 12:02, in one batch that dies writing its log: its entries are in no head
      // the registry recorded or signed, so no client has seen them.
      const registry = await registryWithOperator();
      await publishVersions(registry, ['1.0.0']);
      const added = await submitAt(registry, on.ownersAdd(heir.publicKey), publisher, 0);
      expect(verdicts(await run(registry, added.key))).toEqual([['accepted']]);
      expect((await act(registry, on.yank('1.0.0'), publisher)).status).toBe('accepted');
      const published = await logOf(registry);
      const signedHead = (await trustedSnapshot(registry.site, registry.registryKey.publicKey)).log;
      const intakeText = (key: string) => new TextDecoder().decode(registry.intake.objects.get(key)?.body);
      const recordedHead = intakeText(LOG_STATE_KEY);
      const yank = await submitAt(registry, on.yank('1.0.0'), heir, 0);
      const unyank = await submitAt(registry, on.unyank('1.0.0'), heir, 120);
      const mend =
        where === 'site'
          ? failWriteOf(registry.site, logSegmentKey(0), lands)
          : failWriteOf(registry.intake, LOG_STATE_KEY, false);
      await expect(run(registry, yank.key, unyank.key)).rejects.toThrow(/injected failure/);
      mend();
      expect((await trustedSnapshot(registry.site, registry.registryKey.publicKey)).log).toEqual(signedHead);
      expect(intakeText(LOG_STATE_KEY)).toBe(recordedHead);

      // Act: the retry takes the yank's upload alone; the unyank's waits for a later batch.
      const retried = await run(registry, yank.key);
      const log = await logOf(registry);

      // Assess: every entry published before is there as it was (a client that saw the old head reads an
      // extension of it, not a fork); the yank is logged once, as the retry judged it; the dead run's
      // unyank entry, which nothing published, is gone, and no intent record names its upload.
      expect(verdicts(retried)).toEqual([['rejected', 'ACTION_NO_EFFECT']]);
      expect(log.slice(0, published.length)).toEqual(published);
      expect(log.slice(published.length).map((e) => [e.type, e.digest, e.detail])).toEqual([
        ['yank', yank.digest, { effect: 'none' }],
      ]);
      const intents = [...registry.intake.objects.keys()].filter((k) => k.startsWith('state/log-intents/'));
      expect(intents.map(intakeText)).toEqual([]);
      expect(version(await bound(registry), '1.0.0')?.yanked).toBe(true);

      // The unyank's upload, taken by a later batch: accepted (not a replay of the dead run's), logged once.
      const later = await run(registry, unyank.key);
      expect(verdicts(later)).toEqual([['accepted']]);
      const after = await logOf(registry);
      expect(after.slice(0, log.length)).toEqual(log);
      expect(after.slice(log.length).map((e) => [e.type, e.digest])).toEqual([['unyank', unyank.digest]]);
      expect(version(await bound(registry), '1.0.0')?.yanked).toBeFalsy();
      expect(verdicts(await run(registry, unyank.key))).toEqual([]);
    },
  );

  /** The outcome recorded for the upload at `key` of these bytes, or undefined. */
  const recorded = (registry: TestRegistry, key: string, bytes: Uint8Array) => {
    const object = registry.intake.objects.get(statusKey(submissionIdFromBytes(key, bytes)));
    return object && (JSON.parse(new TextDecoder().decode(object.body)) as SubmissionOutcome);
  };
  const intentRecords = (registry: TestRegistry) =>
    [...registry.intake.objects.keys()].filter((k) => k.startsWith('state/log-intents/'));

  it.each([
    ['an empty batch (the event of its upload delivered again)', false],
    ['the next batch, of another upload', true],
  ])(
    'finishes an action whose run died after its log from its envelope in the log, its upload deleted since, in %s',
    async (_, another) => {
      // Prepare: a yank whose run dies writing the plugin document (logged, its envelope under log/actions/,
      // nothing shows it); then its upload deleted (by its publisher, or an operator clearing incoming/).
      const registry = await registryWithOperator();
      await publishVersions(registry, ['1.0.0']);
      const yank = await submitAt(registry, on.yank('1.0.0'), publisher, 1);
      await diesWritingDocument(registry, yank.key);
      await registry.intake.delete(yank.key);
      const deprecate = another ? await submitAt(registry, on.deprecate('old'), publisher, 2) : undefined;

      // Act: the next batch, of whatever incoming/ holds.
      const { outcomes } = await processSubmissions(registry.context);

      // Assess: the document shows what the log holds; the upload's outcome is the acceptance at its entry,
      // reported after the batch's own; no intent record is left.
      const doc = await bound(registry);
      expect(version(doc, '1.0.0')?.yanked).toBe(true);
      expect(doc.deprecation?.message).toBe(another ? 'old' : undefined);
      expect((await logOf(registry)).map((e) => [e.type, e.digest])).toEqual([
        ['publish', expect.any(String)],
        ['yank', yank.digest],
        ...(deprecate ? [['deprecate', deprecate.digest]] : []),
      ]);
      expect(outcomes.map((o) => [o.submission, o.status, o.seq])).toEqual([
        ...(deprecate ? [[deprecate.key, 'accepted', 2]] : []),
        [actionEnvelopeKey(yank.digest), 'accepted', 1],
      ]);
      expect(recorded(registry, yank.key, yank.bytes)).toMatchObject({ status: 'accepted', seq: 1 });
      expect(intentRecords(registry)).toEqual([]);
    },
  );

  it.each([
    ['after its log, before its marker, a batch since vouching for its entry', 'log'],
    ['after its snapshot, before its outcome, its marker lost too', 'snapshot'],
  ] as const)(
    'accepts the retry of an action whose run died %s, its intent record lost, at its entry (not ACTION_REPLAYED), and refuses a copy',
    async (_, at) => {
      // Prepare: a yank whose run dies; its intent record (and marker) lost; another run since, whose snapshot
      // vouches for the yank's entry.
      const registry = await registryWithOperator();
      await publishVersions(registry, ['1.0.0']);
      const yank = await submitAt(registry, on.yank('1.0.0'), publisher, 1);
      const mend =
        at === 'log'
          ? failPutOf(registry.intake, actionOrderKey('demo-plugin'))
          : failPutOf(registry.intake, catalogBinKey(binOf('demo-plugin')));
      await expect(run(registry, yank.key)).rejects.toThrow(/injected failure/);
      mend();
      for (const key of intentRecords(registry)) registry.intake.objects.delete(key);
      registry.intake.objects.delete(actionMarkerKey(yank.digest));
      await publishVersions(registry, ['1.1.0']);
      const vouched = await logOf(registry);
      expect(vouched.map((e) => e.type)).toEqual(['publish', 'yank', 'publish']);

      // Act: the retry of the upload that run took, then a copy of the published envelope.
      const retried = await run(registry, yank.key);
      const envelope = registry.site.objects.get(actionEnvelopeKey(yank.digest))?.body as Uint8Array;
      const copied = await run(registry, await upload(registry.intake, envelope, 'copy'));

      // Assess: the retry accepted at the entry its run logged, the yank shown; the copy a replay; the yank
      // logged once.
      expect(retried.map((o) => [o.status, o.seq, ...o.problems.map((p) => p.code)])).toEqual([
        ['accepted', 1],
      ]);
      expect(verdicts(copied)).toEqual([['rejected', 'ACTION_REPLAYED']]);
      expect(version(await bound(registry), '1.0.0')?.yanked).toBe(true);
      expect(await logOf(registry)).toEqual(vouched);
    },
  );

  it('finishes a publish and the yank of it that one batch logged, when its retry takes only the yank', async () => {
    // Prepare: one batch publishes 2.0.0 and yanks it, and dies writing the plugin document.
    const registry = await registryWithOperator();
    await publishVersions(registry, ['1.0.0']);
    const bundleKey = await submitVersion(registry, '2.0.0');
    const yank = await submitAt(registry, on.yank('2.0.0'), publisher, 1);
    await diesWritingDocument(registry, bundleKey, yank.key);

    // Act: a retry of the yank alone (the bundle left for a later batch), then the later batch.
    const retried = await run(registry, yank.key);
    const afterRetry = await bound(registry);
    const later = await run(registry, bundleKey);

    // Assess: the retry shows 2.0.0 yanked, the version finished from the files its run wrote (its outcome
    // the acceptance at its entry); the bundle, met later, keeps that acceptance; each logged once.
    expect(retried.map((o) => [o.status, o.version, o.seq])).toEqual([
      ['accepted', '2.0.0', 2],
      ['accepted', '2.0.0', 1],
    ]);
    expect(version(afterRetry, '2.0.0')).toMatchObject({ yanked: true, publisher: publisher.fingerprint });
    expect(later.map((o) => [o.status, o.seq])).toEqual([['accepted', 1]]);
    expect(await bound(registry)).toEqual(afterRetry);
    expect((await logOf(registry)).map((e) => [e.type, e.version])).toEqual([
      ['publish', '1.0.0'],
      ['publish', '2.0.0'],
      ['yank', '2.0.0'],
    ]);
    expect(intentRecords(registry)).toEqual([]);
  });

  it.each([
    ['a JSON manifest (published byte for byte: the digest its entry names)', 'manifest.json'],
    ['a YAML manifest (rendered to JSON: the registry signature vouches for it)', 'manifest.yaml'],
  ])(
    'finishes a publish whose run died after its log from the files it wrote, its bundle deleted since, of %s',
    async (_, manifestName) => {
      const registry = await registryWithOperator();
      await publishVersions(registry, ['1.0.0']);
      const bundle = await makeBundle({
        manifest: validManifest({ version: '2.0.0' }),
        manifestName,
        artifacts: [{ os: 'linux', arch: 'amd64', name: 'tool', body: encode('demo 2.0.0') }],
        signer: publisher,
      });
      const [bundleKey = ''] = await registry.submit(bundle);
      await diesWritingDocument(registry, bundleKey);
      await registry.intake.delete(bundleKey);

      // Act: the next batch, of nothing.
      const { outcomes } = await processSubmissions(registry.context);

      // Assess: 2.0.0 shown, with its hosted artifact, as its run would have published it; logged once.
      const shown = version(await bound(registry), '2.0.0');
      expect(shown?.artifacts.map((a) => [a.hosted, a.size_bytes])).toEqual([[true, 'demo 2.0.0'.length]]);
      expect(outcomes.map((o) => [o.status, o.version, o.seq])).toEqual([['accepted', '2.0.0', 1]]);
      expect((await logOf(registry)).map((e) => [e.type, e.version])).toEqual([
        ['publish', '1.0.0'],
        ['publish', '2.0.0'],
      ]);
      expect(intentRecords(registry)).toEqual([]);
    },
  );

  it('does not finish a publish from a manifest under its name that neither its entry nor the registry vouches for', async () => {
    const registry = await registryWithOperator();
    await publishVersions(registry, ['1.0.0']);
    const bundleKey = await submitVersion(registry, '2.0.0');
    await diesWritingDocument(registry, bundleKey);
    await registry.intake.delete(bundleKey);
    // Whoever may write the published store puts another manifest in its place.
    const at = 'plugins/demo-plugin/2.0.0/manifest.json';
    const planted = encode(JSON.stringify(validManifest({ version: '2.0.0', description: 'planted' })));
    await registry.site.put(at, planted, { contentType: 'application/json', cacheControl: CACHE_IMMUTABLE });

    const { outcomes } = await processSubmissions(registry.context);

    expect(outcomes).toEqual([]);
    expect(version(await bound(registry), '2.0.0')).toBeUndefined();
    expect(intentRecords(registry)).toHaveLength(1);
  });

  it.each([
    ['the advisory', 0],
    ['its withdrawal', 1],
  ])(
    'finishes every action of a batch that died before its documents when its retry takes only %s',
    async (_, taken) => {
      // Prepare: one batch, an advisory and its withdrawal, dies writing the plugin document.
      const registry = await registryWithOperator();
      await publishVersions(registry, ['1.0.0']);
      const advisory = { id: 'PDX-1', severity: 'high', affected: '<2.0.0', summary: 'leaks' } as const;
      const both = [
        await submitAt(registry, { action: 'advisory-add', plugin: 'demo-plugin', advisory }, publisher, 1),
        await submitAt(
          registry,
          { action: 'advisory-withdraw', plugin: 'demo-plugin', id: 'PDX-1' },
          publisher,
          2,
        ),
      ];
      await diesWritingDocument(registry, ...both.map((s) => s.key));
      const [retriedOne, leftOne] = taken === 0 ? both : [both[1], both[0]];
      if (!retriedOne || !leftOne) throw new Error('two actions');

      // Act: a retry that takes one of them (the other left for a later batch), then the later batch.
      const retried = await run(registry, retriedOne.key);
      const afterRetry = await bound(registry);
      const later = await run(registry, leftOne.key);

      // Assess: the retry shows both, as the log has them (the other finished from its envelope, its outcome
      // recorded); the later batch keeps that outcome and applies or logs nothing again.
      expect(afterRetry.advisories?.map((a) => [a.id, a.withdrawn !== undefined])).toEqual([['PDX-1', true]]);
      expect(verdicts(retried)).toEqual([['accepted'], ['accepted']]);
      expect(recorded(registry, leftOne.key, leftOne.bytes)).toMatchObject({ status: 'accepted' });
      expect(verdicts(later)).toEqual([['accepted']]);
      expect(await bound(registry)).toEqual(afterRetry);
      expect((await logOf(registry)).map((e) => e.type)).toEqual([
        'publish',
        'advisory-add',
        'advisory-withdraw',
      ]);
      expect(intentRecords(registry)).toEqual([]);
    },
  );

  it.each([
    ['deprecate', 'after its log, before its documents, its intent record lost', 'documents'],
    ['deprecate', 'after its snapshot, before its outcome, its intent record and marker lost', 'snapshot'],
    ['undeprecate', 'after its log, before its documents, its intent record lost', 'documents'],
    ['undeprecate', 'after its snapshot, before its outcome, its intent record and marker lost', 'snapshot'],
  ] as const)(
    'marks on the retry of a ranged %s whose run died %s only the versions listed when it was logged',
    async (kind, _, at) => {
      // Prepare: 1.0.0, deprecated whole for an undeprecate to lift in part; a ranged action on <2.0.0 whose
      // run dies once it is logged; then 1.5.0, in that range, published by another run.
      const registry = await registryWithOperator();
      await publishVersions(registry, ['1.0.0']);
      if (kind === 'undeprecate')
        expect(
          (await run(registry, (await submitAt(registry, on.deprecate('whole'), publisher, 1)).key))[0]
            ?.status,
        ).toBe('accepted');
      const body: ActionBody =
        kind === 'deprecate'
          ? { action: 'deprecate', plugin: 'demo-plugin', range: '<2.0.0', message: 'ranged' }
          : { action: 'undeprecate', plugin: 'demo-plugin', range: '<2.0.0' };
      const ranged = await submitAt(registry, body, publisher, 2);
      const mend =
        at === 'documents'
          ? failPutOf(registry.site, pluginDocumentKey('demo-plugin'))
          : failPutOf(registry.intake, catalogBinKey(binOf('demo-plugin')));
      await expect(run(registry, ranged.key)).rejects.toThrow(/injected failure/);
      mend();
      for (const key of intentRecords(registry)) registry.intake.objects.delete(key);
      if (at === 'snapshot') registry.intake.objects.delete(actionMarkerKey(ranged.digest));
      await publishVersions(registry, ['1.5.0']);

      // Act: the retry of the upload that run took.
      const retried = await run(registry, ranged.key);

      // Assess: accepted at its entry; 1.0.0 as the action says, 1.5.0 as it was published (under the
      // whole-plugin deprecation, or none), as the log's replay (`verify --url`) has them.
      expect(verdicts(retried)).toEqual([['accepted']]);
      const doc = await bound(registry);
      expect(version(doc, '1.0.0')?.deprecated).toBe(kind === 'deprecate');
      expect(version(doc, '1.5.0')?.deprecated).toBe(kind === 'undeprecate');
      expect(version(doc, '1.5.0')?.deprecation_message).toBe(kind === 'undeprecate' ? 'whole' : undefined);
      const entries = await logOf(registry);
      expect(entries.filter((e) => e.type === kind)).toHaveLength(1);
      expectReplayMatches(entries, doc);
    },
  );

  it('marks on the retry of a ranged deprecate no version its retry batch publishes before it', async () => {
    // Prepare: a deprecation of <2.0.0 whose run dies once it is logged, its intent record lost; then a bundle
    // of 1.5.0 met before it in its retry's upload order (an upload that reached incoming/ late).
    const registry = await registryWithOperator();
    await publishVersions(registry, ['1.0.0']);
    const body: ActionBody = {
      action: 'deprecate',
      plugin: 'demo-plugin',
      range: '<2.0.0',
      message: 'ranged',
    };
    const ranged = await submitAt(registry, body, publisher, 2);
    await diesWritingDocument(registry, ranged.key);
    for (const key of intentRecords(registry)) registry.intake.objects.delete(key);
    const bundleKey = await submitVersion(registry, '1.5.0');

    // Act: the retry, the bundle first.
    const retried = await run(registry, bundleKey, ranged.key);

    // Assess: 1.5.0, published after the deprecation's entry, is not deprecated, as the log's replay has it.
    expect(verdicts(retried)).toEqual([['accepted'], ['accepted']]);
    const entries = await logOf(registry);
    expect(entries.map((e) => [e.type, e.version])).toEqual([
      ['publish', '1.0.0'],
      ['deprecate', undefined],
      ['publish', '1.5.0'],
    ]);
    const doc = await bound(registry);
    expect(version(doc, '1.0.0')?.deprecation_message).toBe('ranged');
    expect(version(doc, '1.5.0')?.deprecated).toBe(false);
    expectReplayMatches(entries, doc);
  });

  it('puts an overtaken ranged deprecate back under the newer one without marking a version its retry batch publishes before it', async () => {
    // Prepare: a deprecation of <2.0.0 whose run dies once it is logged, its intent record lost; a newer one
    // of <3.0.0 applied since by another run; then a bundle of 1.5.0 met before the first in its retry.
    const registry = await registryWithOperator();
    await publishVersions(registry, ['1.0.0']);
    const deprecate = (range: string, message: string, seconds: number) =>
      submitAt(registry, { action: 'deprecate', plugin: 'demo-plugin', range, message }, publisher, seconds);
    const older = await deprecate('<2.0.0', 'older', 1);
    await diesWritingDocument(registry, older.key);
    for (const key of intentRecords(registry)) registry.intake.objects.delete(key);
    const newer = await deprecate('<3.0.0', 'newer', 2);
    expect(verdicts(await run(registry, newer.key))).toEqual([['accepted']]);
    const bundleKey = await submitVersion(registry, '1.5.0');

    // Act: the retry, the bundle first.
    const retried = await run(registry, bundleKey, older.key);

    // Assess: 1.0.0 under the newer statement; 1.5.0, published after both entries, deprecated by neither.
    expect(verdicts(retried)).toEqual([['accepted'], ['accepted']]);
    const doc = await bound(registry);
    expect(version(doc, '1.0.0')?.deprecation_message).toBe('newer');
    expect(version(doc, '1.5.0')?.deprecated).toBe(false);
    const entries = await logOf(registry);
    expect(entries.map((e) => [e.type, e.detail?.message])).toEqual([
      ['publish', undefined],
      ['deprecate', 'older'],
      ['deprecate', 'newer'],
      ['publish', undefined],
    ]);
    expectReplayMatches(entries, doc);
  });
});

describe('when the operator removes a version', () => {
  it('deletes its files, lists it removed, and refuses it ever after, even with the same bytes', async () => {
    const registry = await registryWithOperator();
    await publishVersions(registry, ['1.0.0']);
    const republish = await makeBundle({
      manifest: validManifest({ version: '1.1.0' }),
      artifacts: [{ os: 'linux', arch: 'amd64', name: 'tool', body: encode('demo 1.1.0') }],
      signer: publisher,
    });
    await run(registry, ...(await registry.submit(republish)));
    const files = [
      'plugins/demo-plugin/1.1.0/manifest.json',
      'plugins/demo-plugin/1.1.0/manifest.json.asc',
      'plugins/demo-plugin/1.1.0/artifacts/linux-amd64/tool',
    ];
    for (const key of files) expect(registry.site.objects.has(key), key).toBe(true);

    const byOwner = await act(
      registry,
      { action: 'remove', plugin: 'demo-plugin', version: '1.1.0', reason: 'malware' },
      publisher,
    );
    expect(codes(byOwner)).toEqual(['ACTION_NOT_OPERATOR']);
    const removal = await submitAction(
      registry.intake,
      { action: 'remove', plugin: 'demo-plugin', version: '1.1.0', reason: 'malware' },
      operator,
    );
    const result = await processSubmissions(registry.context, [removal.key]);
    expect(result.outcomes[0]).toMatchObject({
      status: 'accepted',
      action: 'remove',
      signer: operator.fingerprint,
    });
    for (const key of files) expect(registry.site.objects.has(key), key).toBe(false);
    // Cached for a year as immutable: a CDN is told to drop them.
    expect(result.invalidate).toEqual(expect.arrayContaining(files));
    expect(registry.site.objects.has('plugins/demo-plugin/1.0.0/manifest.json')).toBe(true);
    const doc = await bound(registry);
    expect(version(doc, '1.1.0')).toMatchObject({ yanked: true, removed: { reason: 'malware' } });
    expect(doc.latest_version).toBe('1.0.0');

    const [again] = await run(registry, ...(await registry.submit(republish)));
    expect(codes(again)).toEqual(['VERSION_REMOVED']);
    for (const key of files) expect(registry.site.objects.has(key), key).toBe(false);
    const unyank = await act(
      registry,
      { action: 'unyank', plugin: 'demo-plugin', version: '1.1.0' },
      operator,
    );
    expect(codes(unyank)).toEqual(['VERSION_REMOVED']);
  });
});

describe('when the operator transfers a name', () => {
  it('makes the key in the action the only owner', async () => {
    const registry = await registryWithOperator();
    await publishVersions(registry, ['1.0.0']);
    const byOwner = await act(
      registry,
      { action: 'transfer', plugin: 'demo-plugin', key: heir.publicKey },
      publisher,
    );
    expect(codes(byOwner)).toEqual(['ACTION_NOT_OPERATOR']);
    const moved = await act(
      registry,
      { action: 'transfer', plugin: 'demo-plugin', key: heir.publicKey, reason: 'maintainer left' },
      operator,
    );
    expect(moved.status).toBe('accepted');
    expect((await bound(registry)).owners).toEqual([heir.fingerprint]);
    expect((await logOf(registry)).at(-1)).toMatchObject({
      type: 'transfer',
      signer: operator.fingerprint,
      detail: { owner: heir.fingerprint, reason: 'maintainer left' },
    });
    expect(
      codes(await act(registry, { action: 'yank', plugin: 'demo-plugin', version: '1.0.0' }, publisher)),
    ).toEqual(['ACTION_NOT_OWNER']);
    await publishVersions(registry, ['1.0.1'], { signer: heir });
  });
});

describe('when the operator revokes a publisher key', () => {
  it('lists it in a signed keys/revoked.json, marks what it published, and refuses what it signs next', async () => {
    const registry = await registryWithOperator();
    await publishVersions(registry, ['1.0.0']);
    await publishVersions(registry, ['0.1.0'], { name: 'other-plugin' });
    await publishVersions(registry, ['0.1.0'], { name: 'third-plugin', signer: heir });
    const revoked = await act(
      registry,
      { action: 'revoke-key', fingerprint: publisher.fingerprint, reason: 'key leaked' },
      operator,
    );
    // Named by the key it revokes, as other actions are by their plugin@version; its upload path kept too.
    expect(revoked).toMatchObject({
      status: 'accepted',
      action: 'revoke-key',
      fingerprint: publisher.fingerprint,
      signer: operator.fingerprint,
      submission: expect.stringMatching(/^incoming\//),
    });
    expect(revoked).not.toHaveProperty('plugin');

    const snapshot = await trustedSnapshot(registry.site, registry.registryKey.publicKey);
    const list = registry.site.objects.get(REVOKED_KEYS_KEY);
    verifyListedDocument(snapshot, REVOKED_KEYS_KEY, list?.body as Uint8Array);
    expect(list?.cacheControl).toBe(CACHE_MUTABLE);
    const key = await readPublicKey(registry.registryKey.publicKey);
    await expect(
      verifyDetachedSignature(list?.body as Uint8Array, text(registry, `${REVOKED_KEYS_KEY}.asc`), [key.key]),
    ).resolves.toMatchObject({ ok: true });
    expect(JSON.parse(text(registry, REVOKED_KEYS_KEY)) as RevokedKeysDocument).toMatchObject({
      keys: [{ fingerprint: publisher.fingerprint, reason: 'key leaked' }],
    });
    // What it published stays, marked, across the registry; another publisher's versions are untouched.
    for (const name of ['demo-plugin', 'other-plugin']) {
      const doc = await bound(registry, name);
      expect(doc.versions[0]?.publisher_revoked, name).toMatchObject({ reason: 'key leaked' });
      expect(registry.site.objects.has(`plugins/${name}/${doc.versions[0]?.version}/manifest.json`)).toBe(
        true,
      );
    }
    expect((await bound(registry, 'third-plugin')).versions[0]).not.toHaveProperty('publisher_revoked');

    const [bundle] = await run(
      registry,
      ...(await registry.submit(
        await makeBundle({ manifest: validManifest({ version: '1.0.1' }), signer: publisher }),
      )),
    );
    expect(codes(bundle)).toEqual(['PUBLISHER_KEY_REVOKED']);
    const action = await act(
      registry,
      { action: 'yank', plugin: 'demo-plugin', version: '1.0.0' },
      publisher,
    );
    expect(codes(action)).toEqual(['ACTION_KEY_REVOKED']);
    const twice = await act(
      registry,
      { action: 'revoke-key', fingerprint: publisher.fingerprint, reason: 'again' },
      operator,
    );
    expect(codes(twice)).toEqual(['ACTION_NO_EFFECT']);
    expect(twice).toMatchObject({ action: 'revoke-key', fingerprint: publisher.fingerprint });
    // A revoked key cannot be made an owner either.
    const asOwner = await act(
      registry,
      { action: 'owners-add', plugin: 'third-plugin', key: publisher.publicKey },
      heir,
    );
    expect(codes(asOwner)).toEqual(['ACTION_KEY_REVOKED']);

    // Later publishes keep listing the list as it is; a rebuild signs it anew with the rest.
    const listed = registry.site.objects.get(REVOKED_KEYS_KEY)?.body as Uint8Array;
    await publishVersions(registry, ['0.2.0'], { name: 'third-plugin', signer: heir });
    verifyListedDocument(
      await trustedSnapshot(registry.site, registry.registryKey.publicKey),
      REVOKED_KEYS_KEY,
      listed,
    );
    await rebuildRegistry(registry.context);
    const rebuilt = await trustedSnapshot(registry.site, registry.registryKey.publicKey);
    verifyListedDocument(rebuilt, REVOKED_KEYS_KEY, listed);
    await expect(
      verifyDetachedSignature(listed, text(registry, `${REVOKED_KEYS_KEY}.asc`), [key.key]),
    ).resolves.toMatchObject({ ok: true });
    expect(registry.site.writes.filter((k) => k === `${REVOKED_KEYS_KEY}.asc`)).toHaveLength(2);
  });
});

describe('when the operator revokes a key that signs with a subkey', () => {
  it("refuses the subkey's fingerprint (ACTION_UNKNOWN_KEY), and revoking the primary stops the subkey's signatures", async () => {
    const generated = await openpgp.generateKey({
      type: 'ecc',
      subkeys: [{}, { sign: true }],
      userIDs: [{ name: 'subkey publisher' }],
      date: KEYS_CREATED,
      format: 'armored',
    });
    const key = await openpgp.readKey({ armoredKey: generated.publicKey });
    const withSubkey: KeyPair = {
      secretKey: generated.privateKey,
      publicKey: generated.publicKey,
      fingerprint: key.getFingerprint().toUpperCase(),
    };
    const signing = key
      .getSubkeys()
      .find(
        (k) =>
          k.getAlgorithmInfo() &&
          k.bindingSignatures[0]?.keyFlags?.[0] &&
          (k.bindingSignatures[0].keyFlags[0] & openpgp.enums.keyFlags.signData) !== 0,
      );
    const subkeyFingerprint = (signing?.getFingerprint() ?? '').toUpperCase();
    expect(subkeyFingerprint).toMatch(/^[0-9A-F]{40}$/);
    const registry = await registryWithOperator();
    await publishVersions(registry, ['1.0.0'], { name: 'sub-plugin', signer: withSubkey });
    const before = registry.site.fingerprint();
    const bySubkey = await act(
      registry,
      { action: 'revoke-key', fingerprint: subkeyFingerprint, reason: 'leaked' },
      operator,
    );
    expect(bySubkey.problems.map((p) => [p.code, p.path])).toEqual([['ACTION_UNKNOWN_KEY', '/fingerprint']]);
    expect(registry.site.fingerprint()).toEqual(before);
    const byPrimary = await act(
      registry,
      { action: 'revoke-key', fingerprint: withSubkey.fingerprint, reason: 'leaked' },
      operator,
    );
    expect(byPrimary.status).toBe('accepted');
    expect((await bound(registry, 'sub-plugin')).versions[0]?.publisher_revoked).toMatchObject({
      reason: 'leaked',
    });
    const [next] = await run(
      registry,
      ...(await registry.submit(
        await makeBundle({
          manifest: validManifest({ name: 'sub-plugin', version: '1.0.1' }),
          signer: withSubkey,
        }),
      )),
    );
    expect(codes(next)).toEqual(['PUBLISHER_KEY_REVOKED']);
  });
});

describe('when the registry is restricted', () => {
  it('refuses an owner adding a key the trust list does not allow, and an owner the list no longer allows', async () => {
    const registry = await makeRegistry({
      policy: 'restricted',
      publishers: [
        { fingerprint: publisher.fingerprint, names: ['demo-*'], key: publisher.publicKey },
        { fingerprint: heir.fingerprint, names: ['other-*'], key: heir.publicKey },
      ],
    });
    await publishVersions(registry, ['1.0.0']);
    const before = registry.site.fingerprint();
    // The reviewer's sequence: a listed owner adds an unlisted key (which could then remove it).
    const unlisted = await act(
      registry,
      { action: 'owners-add', plugin: 'demo-plugin', key: stranger.publicKey },
      publisher,
    );
    expect(unlisted.problems.map((p) => [p.code, p.path])).toEqual([['PUBLISHER_UNTRUSTED', '/key']]);
    // A listed key, but not for this name.
    const otherNames = await act(
      registry,
      { action: 'owners-add', plugin: 'demo-plugin', key: heir.publicKey },
      publisher,
    );
    expect(otherNames.problems.map((p) => [p.code, p.path])).toEqual([
      ['PUBLISHER_NAME_NOT_ALLOWED', '/key'],
    ]);
    expect(registry.site.fingerprint()).toEqual(before);
    // An owner the trust list no longer names acts no more.
    const delisted = { ...registry.context, config: { ...registry.context.config, publishers: [] } };
    const yank = await submitAction(
      registry.intake,
      { action: 'yank', plugin: 'demo-plugin', version: '1.0.0' },
      publisher,
    );
    const [outcome] = (await processSubmissions(delisted, [yank.key])).outcomes;
    expect(outcome?.problems.map((p) => [p.code, p.path])).toEqual([['PUBLISHER_UNTRUSTED', '/plugin']]);
    expect(registry.site.fingerprint()).toEqual(before);
  });
});

describe("when the signer's clock runs ahead", () => {
  it('accepts an action made within the allowed skew ahead of the registry clock', async () => {
    const registry = await registryWithOperator();
    await publishVersions(registry, ['1.0.0']);
    const ahead = new Date(registry.context.clock.now().getTime() + 60_000);
    const submitted = await submitAction(
      registry.intake,
      { action: 'yank', plugin: 'demo-plugin', version: '1.0.0' },
      publisher,
      { now: ahead },
    );
    const [outcome] = await run(registry, submitted.key);
    expect(outcome?.problems).toEqual([]);
    expect(outcome?.status).toBe('accepted');
  });
});

/**
 * demo-plugin 1.0.0 owned by the publisher and the heir; `at(s)`: s seconds after now on the registry's clock;
 * `batchAt(s, key)`: the upload `key` published alone with the clock at `at(s)`.
 */
async function coOwnedFromNow() {
  const registry = await registryWithOperator();
  await publishVersions(registry, ['1.0.0']);
  expect(
    (await act(registry, { action: 'owners-add', plugin: 'demo-plugin', key: heir.publicKey }, publisher))
      .status,
  ).toBe('accepted');
  const start = registry.context.clock.now().getTime();
  const at = (seconds: number) => new Date(start + seconds * 1000);
  const batchAt = async (seconds: number, key: string) =>
    (await processSubmissions({ ...registry.context, clock: fixedClock(at(seconds)) }, [key])).outcomes;
  return { registry, at, batchAt };
}

describe('when a co-owner dates an action ahead of the registry clock', () => {
  it("does not hold off, for the skew allowed, another owner's action made after it", async () => {
    const { registry, at, batchAt } = await coOwnedFromNow();
    const slot = () =>
      JSON.parse(new TextDecoder().decode(registry.intake.objects.get(actionOrderKey('demo-plugin'))?.body))
        .slots['yank/1.0.0'];
    // Dated 4 minutes ahead (within the 5 the registry allows a signer's clock), taken at once: its slot is
    // recorded as set when the registry received it.
    const ahead = await submitAction(
      registry.intake,
      { action: 'yank', plugin: 'demo-plugin', version: '1.0.0' },
      publisher,
      { now: at(240) },
    );
    expect((await batchAt(0, ahead.key))[0]?.status).toBe('accepted');
    expect(slot()).toMatchObject({ created: at(0).toISOString(), digest: ahead.digest });

    // The other owner lifts it a minute later, by a true clock: made after the yank was received.
    const lifted = await submitAction(
      registry.intake,
      { action: 'unyank', plugin: 'demo-plugin', version: '1.0.0' },
      heir,
      { now: at(60) },
    );
    const [outcome] = await batchAt(61, lifted.key);

    expect(outcome?.problems).toEqual([]);
    expect(outcome?.status).toBe('accepted');
    expect(version(await bound(registry), '1.0.0')?.yanked).toBeFalsy();
    expect(slot()).toMatchObject({ created: at(60).toISOString(), digest: lifted.digest });
    // A rebuild after the private state/ was lost restores the records the batches wrote, from the log.
    const recorded = registry.intake.objects.get(actionOrderKey('demo-plugin'))?.body;
    registry.intake.objects.delete(actionOrderKey('demo-plugin'));
    await rebuildRegistry({ ...registry.context, clock: fixedClock(at(62)) });
    expect(registry.intake.objects.get(actionOrderKey('demo-plugin'))?.body).toEqual(recorded);
  });
});

describe('when a run that died took an action dated ahead of the registry clock', () => {
  it("does not put it back over another owner's action made after the registry received it", async () => {
    const { registry, at, batchAt } = await coOwnedFromNow();
    // Dated 4 minutes ahead, judged at 0: its run dies once it is logged (writing its slot's record).
    const ahead = await submitAction(
      registry.intake,
      { action: 'yank', plugin: 'demo-plugin', version: '1.0.0' },
      publisher,
      { now: at(240) },
    );
    const put = registry.intake.put.bind(registry.intake);
    registry.intake.put = async (key, body, options) => {
      if (key === actionOrderKey('demo-plugin')) throw new StoreError('STORE_IO', key, 'injected failure');
      return put(key, body, options);
    };
    await expect(batchAt(0, ahead.key)).rejects.toThrow(/injected failure/);
    registry.intake.put = put;
    // The other owner lifts it a minute later, made after the registry received the yank; taken alone.
    const lifted = await submitAction(
      registry.intake,
      { action: 'unyank', plugin: 'demo-plugin', version: '1.0.0' },
      heir,
      { now: at(60) },
    );
    await batchAt(61, lifted.key);

    // The yank's retry finishes it as logged, and leaves the later statement in force, as when it was dated
    // by a true clock (a yank made at 0 is overtaken by an unyank made at 60).
    expect((await batchAt(62, ahead.key))[0]?.status).toBe('accepted');
    expect(version(await bound(registry), '1.0.0')?.yanked).toBeFalsy();
  });
});

describe('when keys/revoked.json is unreadable', () => {
  // Not what the registry published there (its catalog records none): the batch fails on that first
  // (published-records.test.ts), as it did on the list it could not read.
  it('fails the batch and leaves its uploads in incoming/, rejecting none', async () => {
    const registry = await registryWithOperator();
    await publishVersions(registry, ['1.0.0']);
    await registry.site.put(REVOKED_KEYS_KEY, encode('{not json'), {
      contentType: 'application/json',
      cacheControl: CACHE_MUTABLE,
    });
    const yank = await submitAction(
      registry.intake,
      { action: 'yank', plugin: 'demo-plugin', version: '1.0.0' },
      publisher,
    );
    const altered = { name: 'TrustError', code: 'PUBLISHED_DOCUMENT_ALTERED' };
    await expect(processSubmissions(registry.context, [yank.key])).rejects.toMatchObject(altered);
    expect(registry.intake.objects.has(yank.key)).toBe(true);
    // A bundle alone too: its publisher is looked up in the list, and that must not reject it as unreadable.
    const bundle = await makeBundle({ manifest: validManifest({ version: '1.1.0' }), signer: publisher });
    const [bundleKey] = await registry.submit(bundle);
    await expect(processSubmissions(registry.context, [bundleKey as string])).rejects.toMatchObject(altered);
    expect(registry.intake.objects.has(bundleKey as string)).toBe(true);
    expect([...registry.intake.objects.keys()].filter((k) => k.startsWith('rejected/'))).toEqual([]);
  });
});

describe('when an action is not authorized or not possible', () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await registryWithOperator();
    await publishVersions(registry, ['1.0.0']);
  });

  /** Runs one refused action and checks nothing published changed. */
  async function refused(body: ActionBody, signer: KeyPair, options: { now?: Date; registry?: string } = {}) {
    const before = registry.site.fingerprint();
    const submitted = await submitAction(registry.intake, body, signer, options);
    const [outcome] = await run(registry, submitted.key);
    expect(registry.site.fingerprint()).toEqual(before);
    expect(outcome?.status).toBe('rejected');
    expect(registry.intake.objects.has(`rejected/${outcome?.id}.json`)).toBe(true);
    return outcome as SubmissionOutcome;
  }
  const yank = { action: 'yank', plugin: 'demo-plugin', version: '1.0.0' } as const;

  it.each([
    ['a non-owner', () => stranger, yank, 'ACTION_NOT_OWNER', '/plugin'],
    [
      'a version the plugin does not have',
      () => publisher,
      { ...yank, version: '9.9.9' },
      'ACTION_UNKNOWN_VERSION',
      '/version',
    ],
    [
      'a plugin that does not exist',
      () => publisher,
      { ...yank, plugin: 'no-such-plugin' },
      'ACTION_UNKNOWN_PLUGIN',
      '/plugin',
    ],
    [
      'an operator action by an owner',
      () => publisher,
      { action: 'revoke-key', fingerprint: 'A'.repeat(40), reason: 'x' },
      'ACTION_NOT_OPERATOR',
      '/action',
    ],
    [
      // What a client before the check signs: `fixed in 1.0.0` told its users to move to a version the
      // advisory itself affects, and an install refused it (VULNERABLE) telling them to install it.
      'an advisory fixed in a version it affects',
      () => publisher,
      {
        action: 'advisory-add',
        plugin: 'demo-plugin',
        advisory: { id: 'PDX-9', severity: 'high', affected: '<=1.0.0', fixed: '1.0.0', summary: 's' },
      },
      'ADVISORY_FIXED_AFFECTED',
      '/advisory/fixed',
    ],
    [
      // `demo-plugin is deprecated: moved; use demo-plugin instead`, on its page and in every install.
      'a plugin deprecated for itself',
      () => publisher,
      { action: 'deprecate', plugin: 'demo-plugin', message: 'moved', replacement: 'demo-plugin' },
      'DEPRECATION_REPLACES_ITSELF',
      '/replacement',
    ],
  ] as const)('refuses %s with its code', async (_, signer, body, code, path) => {
    const outcome = await refused(body as ActionBody, signer());
    expect(outcome.problems.map((p) => [p.code, p.path])).toEqual([[code, path]]);
  });

  it('says what an action for a plugin that does not exist must name (ACTION_UNKNOWN_PLUGIN)', async () => {
    // It said "this registry has no plugin \"no-such-plugin\" (found no-such-plugin)": the name twice, and
    // nothing of what was expected.
    const outcome = await refused({ ...yank, plugin: 'no-such-plugin' }, publisher);

    expect(outcome.problems).toEqual([
      expect.objectContaining({
        code: 'ACTION_UNKNOWN_PLUGIN',
        expected: 'the name of a plugin this registry publishes (as its index.json lists it)',
        found: 'no-such-plugin',
      }),
    ]);
  });

  it('refuses the registry key posing as a publisher', async () => {
    const outcome = await refused(yank, registry.registryKey);
    expect(codes(outcome)).toEqual(['PUBLISHER_IS_REGISTRY_KEY']);
    expect(outcome.problems[0]?.path).toBe('envelope:/key');
  });

  it('refuses an expired action, and another registry’s', async () => {
    const old = await refused(yank, publisher, { now: new Date('2026-10-01T00:00:00Z') });
    expect(codes(old)).toEqual(['ACTION_EXPIRED']);
    const elsewhere = await refused(yank, publisher, { registry: 'https://other.example.com' });
    expect(codes(elsewhere)).toEqual(['ACTION_WRONG_REGISTRY']);
  });

  it('refuses a signature that is not by the key in the envelope', async () => {
    const signed = await signedAction(yank, publisher);
    const envelope = JSON.parse(new TextDecoder().decode(signed.bytes)) as Record<string, string>;
    envelope.key = stranger.publicKey;
    const key = await upload(registry.intake, encode(JSON.stringify(envelope)));
    const before = registry.site.fingerprint();
    const [outcome] = await run(registry, key);
    expect(codes(outcome)).toEqual(['SIGNATURE_INVALID']);
    expect(registry.site.fingerprint()).toEqual(before);
  });

  it('refuses a replayed action, under another name or in the same batch', async () => {
    const registry2 = await registryWithOperator();
    await publishVersions(registry2, ['1.0.0']);
    const signed = await signedAction(yank, publisher);
    const first = await upload(registry2.intake, signed.bytes);
    const twin = await upload(registry2.intake, signed.bytes);
    const outcomes = await run(registry2, first, twin);
    expect(outcomes.map((o) => [o.status, ...o.problems.map((p) => p.code)])).toEqual([
      ['accepted'],
      ['rejected', 'ACTION_REPLAYED'],
    ]);
    // Undone, then replayed: the replay must not yank it again.
    expect(
      (await act(registry2, { action: 'unyank', plugin: 'demo-plugin', version: '1.0.0' }, publisher)).status,
    ).toBe('accepted');
    const before = registry2.site.fingerprint();
    const [later] = await run(registry2, await upload(registry2.intake, signed.bytes));
    expect(codes(later)).toEqual(['ACTION_REPLAYED']);
    // The very upload again (same name, same bytes) is the same submission: nothing is applied twice.
    await registry2.intake.put(first, signed.bytes, {
      contentType: 'application/json',
      cacheControl: 'no-store',
    });
    const [same] = await run(registry2, first);
    expect(same?.status).toBe('accepted');
    expect(registry2.site.fingerprint()).toEqual(before);
    expect(version(await bound(registry2), '1.0.0')?.yanked).toBe(false);
    expect((await logOf(registry2)).map((e) => e.type)).toEqual(['publish', 'yank', 'unyank']);
  });

  it('refuses a key rotation submitted as an upload, pointing at rotate-key', async () => {
    const next = await testKey('next-registry');
    const { bytes } = await signRotation({
      registry: 'https://registry.example.com',
      sequence: 1,
      previous: registry.signer,
      next: await createSigner(next.secretKey),
      now: new Date('2026-10-31T12:00:00Z'),
    });
    const [outcome] = await run(registry, await upload(registry.intake, bytes, 'rotation'));
    expect(outcome?.problems.map((p) => [p.code, p.expected])).toEqual([
      ['ROTATION_INVALID', 'submit rotations with plugindex rotate-key'],
    ]);
  });

  it('refuses an action by an operator key that is the registry key, even when configured', async () => {
    const own = await testKey('registry');
    const misconfigured = await makeRegistry({
      operators: [{ fingerprint: own.fingerprint, key: own.publicKey }],
    });
    await publishVersions(misconfigured, ['1.0.0']);
    const [outcome] = await run(
      misconfigured,
      (await submitAction(misconfigured.intake, { ...yank, version: '1.0.0' }, misconfigured.registryKey))
        .key,
    );
    expect(codes(outcome)).toEqual(['PUBLISHER_IS_REGISTRY_KEY']);
  });
});

describe('when a batch holds publishes and actions', () => {
  it('decides them in upload order, as one submission per batch would, and logs them in that order', async () => {
    const registry = await registryWithOperator();
    await publishVersions(registry, ['1.0.0']);
    const yankEarly = await submitAction(
      registry.intake,
      { action: 'yank', plugin: 'demo-plugin', version: '2.0.0' },
      publisher,
    );
    const [bundleKey] = await registry.submit(
      await makeBundle({ manifest: validManifest({ version: '2.0.0' }), signer: publisher }),
    );
    const yank = await submitAction(
      registry.intake,
      { action: 'yank', plugin: 'demo-plugin', version: '2.0.0', reason: 'broken' },
      publisher,
    );
    const addOwner = await submitAction(
      registry.intake,
      { action: 'owners-add', plugin: 'demo-plugin', key: heir.publicKey },
      publisher,
    );
    // The new owner's action sees the owner added before it in the batch.
    const unyank = await submitAction(
      registry.intake,
      { action: 'unyank', plugin: 'demo-plugin', version: '2.0.0' },
      heir,
    );
    const brandNew = await submitAction(
      registry.intake,
      { action: 'deprecate', plugin: 'fresh-plugin', message: 'never mind' },
      stranger,
    );
    const [freshBundle] = await registry.submit(
      await makeBundle({ manifest: validManifest({ name: 'fresh-plugin' }), signer: stranger }),
    );
    const deprecateFresh = await submitAction(
      registry.intake,
      { action: 'deprecate', plugin: 'fresh-plugin', message: 'never mind' },
      stranger,
    );
    const outcomes = await run(
      registry,
      yankEarly.key,
      bundleKey as string,
      yank.key,
      addOwner.key,
      unyank.key,
      brandNew.key,
      freshBundle as string,
      deprecateFresh.key,
    );
    expect(outcomes.map((o) => [o.action ?? 'publish', o.status, ...o.problems.map((p) => p.code)])).toEqual([
      ['yank', 'rejected', 'ACTION_UNKNOWN_VERSION'],
      ['publish', 'accepted'],
      ['yank', 'accepted'],
      ['owners-add', 'accepted'],
      ['unyank', 'accepted'],
      ['deprecate', 'rejected', 'ACTION_UNKNOWN_PLUGIN'],
      ['publish', 'accepted'],
      ['deprecate', 'accepted'],
    ]);
    expect(outcomes.map((o) => o.seq)).toEqual([undefined, 1, 2, 3, 4, undefined, 5, 6]);
    expect(new Set(outcomes.filter((o) => o.status === 'accepted').map((o) => o.generation))).toEqual(
      new Set([2]),
    );
    const doc = await bound(registry);
    expect(version(doc, '2.0.0')).toMatchObject({ yanked: false });
    expect(doc.latest_version).toBe('2.0.0');
    expect(doc.owners).toEqual([publisher.fingerprint, heir.fingerprint]);
    expect((await bound(registry, 'fresh-plugin')).deprecation).toMatchObject({ message: 'never mind' });
    expect((await logOf(registry)).map((e) => [e.seq, e.type, e.plugin])).toEqual([
      [0, 'publish', 'demo-plugin'],
      [1, 'publish', 'demo-plugin'],
      [2, 'yank', 'demo-plugin'],
      [3, 'owners-add', 'demo-plugin'],
      [4, 'unyank', 'demo-plugin'],
      [5, 'publish', 'fresh-plugin'],
      [6, 'deprecate', 'fresh-plugin'],
    ]);
  });
});

describe('when the log grows past a segment', () => {
  it('rolls over at 256 entries, the full segment immutable, the chain verifying across both', async () => {
    const registry = await registryWithOperator();
    await publishVersions(registry, ['1.0.0']);
    const batch = async (count: number, start: number) => {
      const keys: string[] = [];
      for (let i = start; i < start + count; i++) {
        const body: ActionBody =
          i % 2 === 0
            ? { action: 'yank', plugin: 'demo-plugin', version: '1.0.0' }
            : { action: 'unyank', plugin: 'demo-plugin', version: '1.0.0' };
        keys.push((await submitAction(registry.intake, body, publisher)).key);
      }
      const outcomes = await run(registry, ...keys);
      expect(outcomes.map((o) => o.status)).toEqual(keys.map(() => 'accepted'));
    };
    await batch(200, 0);
    await batch(60, 200);
    const log = await logOf(registry);
    expect(log).toHaveLength(261);
    expect(log.map((e) => e.seq)).toEqual([...Array(261).keys()]);
    expect(registry.site.objects.get(logSegmentKey(0))?.cacheControl).toBe(CACHE_IMMUTABLE);
    expect(registry.site.objects.get(logSegmentKey(1))?.cacheControl).toBe(CACHE_MUTABLE);
    expect(text(registry, logSegmentKey(0)).split('\n').filter(Boolean)).toHaveLength(LOG_SEGMENT_ENTRIES);
    expect(text(registry, logSegmentKey(1)).split('\n').filter(Boolean)).toHaveLength(
      261 - LOG_SEGMENT_ENTRIES,
    );
    expect((await trustedSnapshot(registry.site, registry.registryKey.publicKey)).log?.length).toBe(261);
    expect(registry.site.objects.has(binKey(binOf('demo-plugin')))).toBe(true);
    expect(registry.site.objects.has(pluginDocumentKey('demo-plugin'))).toBe(true);
  });
});

describe("when an applied action's marker is rolled back on its own (state/actions/ put back from a copy)", () => {
  it('refuses its envelope uploaded again as a replay, found in the log, where it would apply and log again', async () => {
    // Prepare: 1.0.0 deprecated by a range, 1.5.0 published after (in the range, not deprecated: a range
    // deprecates the versions it matched then); the deprecation's marker gone, its envelope public.
    const registry = await registryWithOperator();
    await publishVersions(registry, ['1.0.0']);
    const deprecate = await submitAction(
      registry.intake,
      { action: 'deprecate', plugin: 'demo-plugin', range: '<2.0.0', message: 'use 2' },
      publisher,
    );
    expect((await run(registry, deprecate.key))[0]?.status).toBe('accepted');
    await publishVersions(registry, ['1.5.0']);
    expect(version(await bound(registry), '1.5.0')?.deprecated).toBeFalsy();
    registry.intake.objects.delete(actionMarkerKey(deprecate.digest));
    const envelope = registry.site.objects.get(actionEnvelopeKey(deprecate.digest))?.body as Uint8Array;
    const entries = (await logOf(registry)).length;

    // Act: anyone uploads the published envelope again.
    const [replay] = await run(registry, await upload(registry.intake, envelope));

    // Assess: a replay, as with its marker there; nothing applied or logged again.
    expect(replay?.status).toBe('rejected');
    expect(codes(replay)).toEqual(['ACTION_REPLAYED']);
    expect(version(await bound(registry), '1.5.0')?.deprecated).toBeFalsy();
    expect((await logOf(registry)).length).toBe(entries);
  });
});

describe('when a run died after logging an action, before its marker, and a copy of its envelope is uploaded', () => {
  it('refuses the copy as a replay and finishes the upload the run logged, even when the copy is taken first', async () => {
    const registry = await registryWithOperator();
    await publishVersions(registry, ['1.0.0']);
    const yank = await submitAction(
      registry.intake,
      { action: 'yank', plugin: 'demo-plugin', version: '1.0.0', reason: 'broken' },
      publisher,
    );
    // The run dies writing the marker: the envelope is public (log/actions/), the entry logged.
    const put = registry.intake.put.bind(registry.intake);
    registry.intake.put = async (key, body, options) => {
      if (key === actionMarkerKey(yank.digest)) throw new StoreError('STORE_IO', key, 'injected failure');
      return put(key, body, options);
    };
    await expect(run(registry, yank.key)).rejects.toThrow(/injected failure/);
    registry.intake.put = put;
    const envelope = registry.site.objects.get(actionEnvelopeKey(yank.digest))?.body as Uint8Array;
    const copy = await upload(registry.intake, envelope, 'copy');

    // The copy alone (as the local server publishes each submission), then the upload the run logged.
    const [copied] = await run(registry, copy);
    const [finished] = await run(registry, yank.key);

    expect(copied?.status).toBe('rejected');
    expect(codes(copied)).toEqual(['ACTION_REPLAYED']);
    expect(finished).toMatchObject({ status: 'accepted', action: 'yank', seq: 1 });
    expect(version(await bound(registry), '1.0.0')?.yanked).toBe(true);
    expect((await logOf(registry)).map((e) => [e.type, e.digest])).toEqual([
      ['publish', expect.any(String)],
      ['yank', yank.digest],
    ]);
  });
});

describe('when a run died after logging an action, and another upload arrived since', () => {
  it('judges the new upload with the logged action applied, and logs each once', async () => {
    const registry = await registryWithOperator();
    await publishVersions(registry, ['1.0.0']);
    const added = await submitAction(
      registry.intake,
      { action: 'owners-add', plugin: 'demo-plugin', key: heir.publicKey },
      publisher,
    );
    // The run dies writing the plugin document: after the log and the marker, before anything shows it.
    const put = registry.site.put.bind(registry.site);
    registry.site.put = async (key, body, options) => {
      if (key === pluginDocumentKey('demo-plugin')) throw new StoreError('STORE_IO', key, 'injected failure');
      return put(key, body, options);
    };
    await expect(run(registry, added.key)).rejects.toThrow(/injected failure/);
    registry.site.put = put;
    expect((await bound(registry)).owners).toEqual([publisher.fingerprint]);

    // The new owner's first action, uploaded after: judged once the owner is added again.
    const yank = await submitAction(
      registry.intake,
      { action: 'yank', plugin: 'demo-plugin', version: '1.0.0' },
      heir,
    );
    const outcomes = await run(registry, added.key, yank.key);
    expect(outcomes.map((o) => [o.action, o.status, o.seq])).toEqual([
      ['owners-add', 'accepted', 1],
      ['yank', 'accepted', 2],
    ]);
    const doc = await bound(registry);
    expect(doc.owners).toEqual([publisher.fingerprint, heir.fingerprint]);
    expect(version(doc, '1.0.0')?.yanked).toBe(true);
    expect((await logOf(registry)).map((e) => [e.type, e.digest])).toEqual([
      ['publish', doc.versions[0]?.source_sha256],
      ['owners-add', added.digest],
      ['yank', yank.digest],
    ]);
  });
});

describe('when a run died after logging an advisory that fills its plugin to the bound', () => {
  /**
   * demo-plugin one advisory short of MAX_ADVISORIES, and the last one it may hold logged by a run that dies
   * before any document shows it, or (`shown`) once its plugin document shows it, before its page and its
   * snapshot. Returns the registry and what makes an advisory-add.
   */
  async function loggedToTheBound(shown = false) {
    const registry = await registryWithOperator();
    await publishVersions(registry, ['1.0.0']);
    await editPlugin(registry.context, 'demo-plugin', (doc) => {
      doc.advisories = Array.from({ length: MAX_ADVISORIES - 1 }, (_, i) => ({
        id: `PDX-2026-${1000 + i}`,
        severity: 'low' as const,
        affected: '<1.0.0',
        summary: 'an old flaw',
        published: KEYS_CREATED.toISOString(),
      }));
    });
    const advisory = (id: string): ActionBody => ({
      action: 'advisory-add',
      plugin: 'demo-plugin',
      advisory: { id, severity: 'high', affected: '<=1.0.0', summary: 'a flaw' },
    });
    const logged = await submitAction(registry.intake, advisory('PDX-2026-0001'), publisher);
    const onStep = (step: BatchStep): void => {
      if (step === 'logged' && !shown) throw new Error('killed after the log');
    };
    const site = registry.context.site;
    const put = site.put.bind(site);
    site.put = async (key, body, options) => {
      if (shown && key === 'plugins/demo-plugin/index.html') throw new Error('killed before the page');
      return put(key, body, options);
    };
    await expect(processSubmissions({ ...registry.context, onStep }, [logged.key]))
      .rejects.toThrow('killed')
      .finally(() => (site.put = put));
    return { registry, advisory, logged };
  }

  it.each([
    ['its retry', false],
    ['its retry after a rebuild', true],
  ])(
    'applies the logged advisory as logged in %s, past the bound an edit filled the plugin to meanwhile, and still refuses a new one (ADVISORY_LIMIT)',
    async (_, rebuild) => {
      // Prepare: the plugin filled to its bound meanwhile (by its operator's edit, then a rebuild: a run would
      // finish the logged advisory first). The run that logged it died once its document showed it: dying
      // before, the advisory is stuck and the edit's rebuild refuses LOGGED_ACTION_STUCK (below).
      const { registry, advisory, logged } = await loggedToTheBound(true);
      await editPlugin(registry.context, 'demo-plugin', (doc) => {
        doc.advisories = [
          ...(doc.advisories ?? []),
          {
            id: 'PDX-2026-0002',
            severity: 'high',
            affected: '<=1.0.0',
            summary: 'a flaw',
            published: KEYS_CREATED.toISOString(),
          },
        ];
      });
      if (rebuild) await rebuildRegistry(registry.context);

      // Act
      const [retried] = await run(registry, logged.key);

      // Assess: what the log holds, the documents show, past the bound for new ones; a new one is refused.
      expect(retried).toMatchObject({ status: 'accepted', seq: 1 });
      const ids = ((await bound(registry)).advisories ?? []).map((a) => a.id);
      expect(ids).toHaveLength(MAX_ADVISORIES + 1);
      expect(ids).toEqual(expect.arrayContaining(['PDX-2026-0001', 'PDX-2026-0002']));
      expect(ids.filter((id) => id === 'PDX-2026-0001')).toHaveLength(1);
      expect((await logOf(registry)).map((e) => [e.type, e.digest])).toEqual([
        ['publish', expect.any(String)],
        ['advisory-add', logged.digest],
      ]);
      const added = await act(registry, advisory('PDX-2026-0003'), publisher);
      expect(codes(added)).toEqual(['ADVISORY_LIMIT']);
    },
  );

  it("refuses the operator's edit's rebuild while no document shows the logged advisory (LOGGED_ACTION_STUCK)", async () => {
    // Prepare: the advisory logged by a run that died before any document showed it.
    const { registry } = await loggedToTheBound();

    // Act, Assess: signed over, the snapshot vouched for an advisory no document shows (verify --url:
    // LOG_DISAGREES); the operator runs the batch, which applies it, first.
    const edited = editPlugin(registry.context, 'demo-plugin', (doc) => {
      doc.advisories = [...(doc.advisories ?? []), ...(doc.advisories ?? []).slice(0, 1)];
    });
    await expect(edited).rejects.toBeInstanceOf(PlugindexError);
    await expect(edited).rejects.toMatchObject({
      code: 'LOGGED_ACTION_STUCK',
      message: expect.stringContaining('log entry 1, the advisory-add of demo-plugin'),
    });
  });

  it('finishes the logged advisory first in the run that takes another upload, which it then refuses (ADVISORY_LIMIT)', async () => {
    const { registry, advisory, logged } = await loggedToTheBound();

    // Act: another upload, taken alone by another run; then the retry of the logged one.
    const meanwhile = await submitAction(registry.intake, advisory('PDX-2026-0002'), publisher);
    const outcomes = await run(registry, meanwhile.key);
    const [retried] = await run(registry, logged.key);

    // Assess: the logged one is shown, as the log has it before the other; the other is refused, as it
    // would have been had the run that logged the last one the plugin may hold not died.
    expect(outcomes.map((o) => [o.action, o.status, ...o.problems.map((p) => p.code)])).toEqual([
      ['advisory-add', 'rejected', 'ADVISORY_LIMIT'],
      ['advisory-add', 'accepted'],
    ]);
    expect(retried).toMatchObject({ status: 'accepted', seq: 1 });
    const ids = ((await bound(registry)).advisories ?? []).map((a) => a.id);
    expect(ids).toHaveLength(MAX_ADVISORIES);
    expect(ids).toContain('PDX-2026-0001');
    expect((await logOf(registry)).map((e) => [e.type, e.digest])).toEqual([
      ['publish', expect.any(String)],
      ['advisory-add', logged.digest],
    ]);
  });
});

describe('when the published log segment no longer holds the entries its recorded head counts', () => {
  const yank = { action: 'yank', plugin: 'demo-plugin', version: '1.0.0' } as const;
  const lines = (registry: TestRegistry) => text(registry, logSegmentKey(0)).slice(0, -1).split('\n');
  const serve = (registry: TestRegistry, served: readonly string[]) =>
    registry.site.put(logSegmentKey(0), encode(`${served.join('\n')}\n`), {
      contentType: 'application/jsonl',
      cacheControl: CACHE_MUTABLE,
    });

  it.each([
    ['cut short (its last entry gone)', 'LOG_TRUNCATED', (kept: string[]) => kept.slice(0, -1)],
    [
      'altered (an entry made another)',
      'LOG_ENTRY_ALTERED',
      (kept: string[]) => [kept[0]?.replace('"publish"', '"yank"') as string, ...kept.slice(1)],
    ],
    [
      'given a line that is not JSON',
      'LOG_MALFORMED',
      (kept: string[]) => [...kept.slice(0, -1), '{"seq":1,'],
    ],
  ] as const)(
    'fails the batch when it is %s (%s), rather than append to it and vouch for it',
    async (_, code, edit) => {
      // Prepare: two publishes logged (entries 0 and 1), then the segment changed where it is published (a
      // bucket written to), its recorded head in the intake store as it was.
      const registry = await registryWithOperator();
      await publishVersions(registry, ['1.0.0', '1.1.0']);
      const tampered = edit(lines(registry));
      await serve(registry, tampered);
      const before = registry.site.fingerprint();
      const submitted = await submitAction(registry.intake, yank, publisher);

      // Act
      const error = await run(registry, submitted.key).catch((e: unknown) => e);

      // Assess: nothing appended to what the registry cannot vouch for, nothing published, the upload kept.
      expect(error).toBeInstanceOf(TrustError);
      expect(error).toMatchObject({ code });
      // verifyLogRange's own refusal kept as the cause, where it was the one to refuse.
      if (code !== 'LOG_MALFORMED')
        expect((error as Error).cause).toMatchObject({ name: 'TrustError', code });
      expect(registry.site.fingerprint()).toEqual(before);
      expect(lines(registry)).toEqual(tampered);
      expect(registry.intake.objects.has(submitted.key)).toBe(true);
    },
  );

  it("fails the batch when an entry is planted for a stranger's action, rather than resume it unjudged and unlogged", async () => {
    // Prepare: a stranger's owners-add, and an entry for it put in place of the last one where the log is
    // published, with the published snapshot.json saying it vouches for one entry only (a bucket written
    // to): what a run that died between its log and its marker leaves, but for an action never judged.
    const registry = await registryWithOperator();
    await publishVersions(registry, ['1.0.0', '1.1.0']);
    const submitted = await submitAction(
      registry.intake,
      { action: 'owners-add', plugin: 'demo-plugin', key: stranger.publicKey },
      stranger,
    );
    const [first] = lines(registry) as [string];
    const planted = entryLine({
      seq: 1,
      time: '2026-11-01T00:00:00.000Z',
      type: 'owners-add',
      plugin: 'demo-plugin',
      signer: stranger.fingerprint,
      digest: submitted.digest,
      prev: lineHash(first),
    });
    await serve(registry, [first, planted]);
    const snapshot = JSON.parse(text(registry, 'snapshot.json')) as SnapshotDocument;
    await registry.site.put(
      'snapshot.json',
      encode(JSON.stringify({ ...snapshot, log: { ...snapshot.log, length: 1 } })),
      {
        contentType: 'application/json',
        cacheControl: CACHE_MUTABLE,
      },
    );
    // On a catalog with no record of the snapshot yet (saved before it kept one: the published snapshot is
    // trusted on first use), so the log's own check is what refuses it: else the snapshot's would first.
    const meta = new TextDecoder().decode(registry.intake.objects.get(CATALOG_META_KEY)?.body);
    await registry.intake.put(CATALOG_META_KEY, encode(meta.replace(/^snapshot\t.*\n/m, '')), {
      contentType: 'text/tab-separated-values',
      cacheControl: CACHE_PRIVATE,
    });

    // Act
    const error = await run(registry, submitted.key).catch((e: unknown) => e);

    // Assess: the stranger owns nothing.
    expect(error).toBeInstanceOf(TrustError);
    expect(error).toMatchObject({ code: 'LOG_ENTRY_ALTERED' });
    expect((await bound(registry)).owners).toEqual([publisher.fingerprint]);
  });
});
