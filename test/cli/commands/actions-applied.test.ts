/**
 * The action commands end to end, with the registry applying what they submit: the built `plugindex` run
 * as a process against a local registry, each action's `--json` outcome and exit code (0 accepted, 1
 * refused, 2 a usage error) and its effect on the published documents. A yank that yanks, deprecations with
 * and without a range, advisories, a publisher rotating its key through `owners add` then publishing with
 * the new one, every right an action lacks refused with its code, a replayed envelope, and the operator's
 * removal, revocation and transfer signed by an operator key (`plugindex operators add`), never the
 * registry's own. The tests share one registry and run in order: each starts from the state the one before
 * left, as a plugin's history does; the last checks the log holds every accepted publish and action.
 */
import { execFile } from 'node:child_process';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initRegistry } from '../../../cli/local/registry.ts';
import { manifestKey, pluginDocumentKey, signatureKey } from '../../../index-builder/layout.ts';
import { logSegmentKey, parseSegment, type ReadEntry } from '../../../index-builder/log.ts';
import type { PluginDocument, RevokedKeysDocument } from '../../../index-builder/model.ts';
import type { SubmissionOutcome } from '../../../index-builder/pipeline/index.ts';
import type { KeyPair } from '../../../index-builder/signing.ts';
import { makeBundle, testKey, validManifest } from '../../support/fixtures.ts';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const BIN = path.join(ROOT, 'cli/bin.mjs');
const execute = promisify(execFile);
const PLUGIN = 'applied-demo';

/** A party to the registry: its secret and public key files, and its fingerprint. */
interface Party {
  readonly secret: string;
  readonly public: string;
  readonly fingerprint: string;
}

let work: string;
let dir: string;
/** The key that published the plugin first: its owner until it rotates to `next`. */
let owner: Party;
/** The owner's new key, added by the old one. */
let next: Party;
let stranger: Party;
let operator: Party;
/** The registry's own signing key: never an operator, a publisher or an owner. */
let registryKey: string;
let bundles = 0;

/** Every accepted publish and action, in order: what the log must hold. */
const accepted: { seq: number; type: string }[] = [];

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** The outcome a submitting command printed with --json. */
  readonly outcome?: SubmissionOutcome;
}

/** Runs the built command as a process; a submission's --json outcome is read, and remembered if accepted. */
async function plugindex(...args: string[]): Promise<Run> {
  let run: Omit<Run, 'outcome'>;
  try {
    const { stdout, stderr } = await execute(process.execPath, [BIN, ...args], {
      cwd: work,
      env: { ...process.env, CI: '1' },
    });
    run = { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    run = { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
  const parsed = args.includes('--json') && run.stdout ? (JSON.parse(run.stdout) as unknown) : undefined;
  if (!parsed || (parsed as { schema?: unknown }).schema !== 'plugindex/outcome/v1') return run;
  const outcome = parsed as SubmissionOutcome;
  if (outcome.status === 'accepted' && outcome.seq !== undefined)
    accepted.push({ seq: outcome.seq, type: outcome.action ?? 'publish' });
  return { ...run, outcome };
}

/** An action submitted to the local registry, signed by `by`, with its --json outcome. */
const act = (by: Party | string, ...args: string[]) =>
  plugindex(...args, '--key', typeof by === 'string' ? by : by.secret, '--registry', dir, '--json');

/** A bundle of `version` (other manifest fields as given) signed by `by`, published with --json. */
async function publish(by: Party, version: string, overrides: Record<string, unknown> = {}): Promise<Run> {
  const file = path.join(work, `bundle-${++bundles}.tgz`);
  const signer: KeyPair = {
    secretKey: await readFile(by.secret, 'utf8'),
    publicKey: await readFile(by.public, 'utf8'),
    fingerprint: by.fingerprint,
  };
  const manifest = validManifest({ name: PLUGIN, version, ...overrides });
  await writeFile(file, await makeBundle({ manifest, signer }));
  return plugindex('publish', file, '--registry', dir, '--json');
}

async function doc(): Promise<PluginDocument> {
  return JSON.parse(await readFile(path.join(dir, 'public', pluginDocumentKey(PLUGIN)), 'utf8'));
}

const version = async (v: string) => (await doc()).versions.find((r) => r.version === v);
const codes = (run: Run) => run.outcome?.problems.map((p) => p.code) ?? [];
const page = () => readFile(path.join(dir, 'public/plugins', PLUGIN, 'index.html'), 'utf8');
const exists = (file: string) =>
  access(file).then(
    () => true,
    () => false,
  );

/** Keeps the entries of `entries` not logged as changing nothing (`detail.effect` `none`), by seq. */
const applied =
  (entries: readonly ReadEntry[]) =>
  ({ seq }: { readonly seq: number }): boolean =>
    entries[seq]?.entry.detail?.effect !== 'none';

/** Expects an action accepted: exit 0, its outcome naming it and who signed it. */
function expectAccepted(run: Run, fields: Partial<SubmissionOutcome>): void {
  expect(run.code, run.stderr).toBe(0);
  expect(run.outcome).toMatchObject({ status: 'accepted', problems: [], ...fields });
  expect(run.outcome?.seq).toEqual(expect.any(Number));
}

/** Expects a submission refused: exit 1, its outcome rejected with exactly these codes. */
function expectRefused(run: Run, expected: readonly string[]): void {
  expect(run.code, run.stderr).toBe(1);
  expect(run.outcome?.status).toBe('rejected');
  expect(codes(run)).toEqual(expected);
}

async function party(label: string): Promise<Party> {
  const pair = await testKey(label);
  const secret = path.join(work, `${label}-secret.asc`);
  const pub = path.join(work, `${label}-public.asc`);
  await writeFile(secret, pair.secretKey);
  await writeFile(pub, pair.publicKey);
  return { secret, public: pub, fingerprint: pair.fingerprint };
}

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'plugindex-actions-applied-'));
  dir = path.join(work, 'registry');
  await initRegistry(dir, { name: 'Applied', url: 'http://127.0.0.1:1' });
  registryKey = path.join(dir, 'keys/registry-secret.asc');
  owner = await party('publisher');
  next = await party('next-owner');
  stranger = await party('stranger');
  operator = await party('operator');
  const added = await plugindex('operators', 'add', operator.public, '--registry', dir);
  expect(added.code, added.stderr).toBe(0);
  expect(added.stdout).toContain(`${operator.fingerprint} is an operator key`);
  for (const v of ['1.0.0', '1.1.0', '2.0.0']) {
    const published = await publish(owner, v);
    expect(published.code, published.stderr).toBe(0);
  }
}, 120_000);

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('when an owner acts on a plugin', () => {
  it('yanks a version with its reason (exit 0, accepted), and unyanks it; unyanking again changes nothing (exit 1)', async () => {
    const yank = await act(owner, 'yank', `${PLUGIN}@1.0.0`, '--reason', 'broken build');
    expectAccepted(yank, { action: 'yank', plugin: PLUGIN, version: '1.0.0', signer: owner.fingerprint });
    expect(await version('1.0.0')).toMatchObject({ yanked: true, yanked_reason: 'broken build' });
    expect(await page()).toContain('Yanked: broken build');
    const unyank = await act(owner, 'unyank', `${PLUGIN}@1.0.0`);
    expectAccepted(unyank, { action: 'unyank', version: '1.0.0' });
    const record = await version('1.0.0');
    expect(record?.yanked).toBe(false);
    expect(record).not.toHaveProperty('yanked_reason');
    expectRefused(await act(owner, 'unyank', `${PLUGIN}@1.0.0`), ['ACTION_NO_EFFECT']);
  });

  it('deprecates a range with a replacement, then the whole plugin, and lifts both', async () => {
    const range = await act(
      owner,
      'deprecate',
      `${PLUGIN}@<2.0.0`,
      '--message',
      'upgrade to 2.x',
      '--replacement',
      'other-demo',
    );
    expectAccepted(range, { action: 'deprecate', plugin: PLUGIN });
    for (const v of ['1.0.0', '1.1.0'])
      expect(await version(v)).toMatchObject({
        deprecated: true,
        deprecation_message: 'upgrade to 2.x',
        deprecation_replacement: 'other-demo',
      });
    expect((await version('2.0.0'))?.deprecated).toBe(false);
    expect((await doc()).deprecation).toBeUndefined();

    const whole = await act(owner, 'deprecate', PLUGIN, '--message', 'unmaintained');
    expectAccepted(whole, { action: 'deprecate' });
    const deprecated = await doc();
    expect(deprecated.deprecation).toEqual({ message: 'unmaintained', at: expect.any(String) });
    // Every version now carries the plugin's message, without the range's replacement.
    for (const v of deprecated.versions) {
      expect(v).toMatchObject({ deprecated: true, deprecation_message: 'unmaintained' });
      expect(v).not.toHaveProperty('deprecation_replacement');
    }

    expectAccepted(await act(owner, 'undeprecate', `${PLUGIN}@<2.0.0`), { action: 'undeprecate' });
    expect((await version('1.1.0'))?.deprecated).toBe(false);
    expect((await doc()).deprecation).toMatchObject({ message: 'unmaintained' });
    expectAccepted(await act(owner, 'undeprecate', PLUGIN), { action: 'undeprecate' });
    const lifted = await doc();
    expect(lifted.deprecation).toBeUndefined();
    expect(lifted.versions.map((v) => v.deprecated)).toEqual([false, false, false]);
    // Nothing is deprecated any more: a range that matches versions still changes nothing.
    expectRefused(await act(owner, 'undeprecate', `${PLUGIN}@<2.0.0`), ['ACTION_NO_EFFECT']);
  });

  it('publishes an advisory, refuses the same id twice, and withdraws it (kept, marked)', async () => {
    const fields = [
      '--id',
      'PDX-2026-0001',
      '--severity',
      'high',
      '--affected',
      '<1.1.0',
      '--fixed',
      '1.1.0',
    ];
    const add = await act(owner, 'advisory', 'add', PLUGIN, ...fields, '--summary', 'leaks');
    expectAccepted(add, { action: 'advisory-add', plugin: PLUGIN });
    expect((await doc()).advisories).toEqual([
      expect.objectContaining({ id: 'PDX-2026-0001', severity: 'high', affected: '<1.1.0', fixed: '1.1.0' }),
    ]);
    const again = await act(owner, 'advisory', 'add', PLUGIN, ...fields, '--summary', 'leaks');
    expectRefused(again, ['ADVISORY_EXISTS']);
    const unknown = await act(owner, 'advisory', 'withdraw', PLUGIN, '--id', 'PDX-2026-0404');
    expectRefused(unknown, ['ADVISORY_UNKNOWN']);
    const withdraw = await act(
      owner,
      'advisory',
      'withdraw',
      PLUGIN,
      '--id',
      'PDX-2026-0001',
      '--reason',
      'false alarm',
    );
    expectAccepted(withdraw, { action: 'advisory-withdraw' });
    const [advisory] = (await doc()).advisories ?? [];
    expect(advisory).toMatchObject({ id: 'PDX-2026-0001', withdrawn: { reason: 'false alarm' } });
  });

  it('refuses a key that is not an owner (exit 1, ACTION_NOT_OWNER), and changes nothing', async () => {
    const before = await doc();
    const result = await act(stranger, 'yank', `${PLUGIN}@2.0.0`);
    expectRefused(result, ['ACTION_NOT_OWNER']);
    expect(result.outcome?.signer).toBe(stranger.fingerprint);
    expect(await doc()).toEqual(before);
  });

  it('refuses an action for a version or a plugin that does not exist', async () => {
    expectRefused(await act(owner, 'yank', `${PLUGIN}@9.9.9`), ['ACTION_UNKNOWN_VERSION']);
    expectRefused(await act(owner, 'yank', 'no-such-plugin@1.0.0'), ['ACTION_UNKNOWN_PLUGIN']);
  });

  it('applies a written envelope once with submit, and refuses it replayed (ACTION_REPLAYED)', async () => {
    const file = path.join(work, 'replay.json');
    const written = await plugindex(
      'yank',
      `${PLUGIN}@1.1.0`,
      '--key',
      owner.secret,
      '--registry',
      dir,
      '--output',
      file,
    );
    expect(written.code, written.stderr).toBe(0);
    expect((await version('1.1.0'))?.yanked).toBe(false);
    const first = await plugindex('submit', file, '--registry', dir, '--json');
    expectAccepted(first, { action: 'yank', version: '1.1.0' });
    expect((await version('1.1.0'))?.yanked).toBe(true);
    // Unyanked, so replaying the yank would change the document again: only the replay check stops it.
    expectAccepted(await act(owner, 'unyank', `${PLUGIN}@1.1.0`), { action: 'unyank' });
    const replayed = await plugindex('submit', file, '--registry', dir, '--json');
    expectRefused(replayed, ['ACTION_REPLAYED']);
    expect((await version('1.1.0'))?.yanked).toBe(false);
  });

  it('exits 2 for a usage error, printing no outcome (the error, as --json asks) and submitting nothing', async () => {
    const before = await doc();
    const runs = [
      await act(owner, 'yank', PLUGIN),
      await act(owner, 'deprecate', PLUGIN),
      await act(owner, 'advisory', 'add', PLUGIN, '--id', 'X-1', '--severity', 'dire'),
      await act(operator, 'operator', 'remove', `${PLUGIN}@1.0.0`),
    ];
    for (const run of runs) {
      expect(run.code, run.stderr).toBe(2);
      expect(JSON.parse(run.stdout)).toEqual({
        ok: false,
        error: { code: 'USAGE', message: expect.any(String) },
      });
      expect(run.stderr).toContain('usage: plugindex');
    }
    expect(await doc()).toEqual(before);
  });
});

describe('when a publisher rotates its key with owners add', () => {
  it('adds the new key signed by the old, lists both, and publishes with the new key', async () => {
    const add = await act(owner, 'owners', 'add', PLUGIN, next.public);
    expectAccepted(add, { action: 'owners-add', plugin: PLUGIN, signer: owner.fingerprint });
    expect((await doc()).owners).toEqual([owner.fingerprint, next.fingerprint]);
    const listed = await plugindex('owners', 'list', PLUGIN, '--registry', dir, '--json');
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual({
      plugin: PLUGIN,
      source: dir,
      owners: [owner.fingerprint, next.fingerprint],
      revoked: [],
    });
    const published = await publish(next, '2.1.0');
    expect(published.code, published.stderr).toBe(0);
    expect(published.outcome).toMatchObject({ status: 'accepted', publisher: next.fingerprint });
    expect((await version('2.1.0'))?.publisher).toBe(next.fingerprint);
    expect((await doc()).latest_version).toBe('2.1.0');
  });

  it('never makes the registry key an owner (PUBLISHER_IS_REGISTRY_KEY)', async () => {
    const registryPublic = path.join(dir, 'public/keys/registry.asc');
    expectRefused(await act(owner, 'owners', 'add', PLUGIN, registryPublic), ['PUBLISHER_IS_REGISTRY_KEY']);
  });

  it('retires the old key with the new one: the old key neither acts nor publishes, and the last owner stays', async () => {
    const remove = await act(next, 'owners', 'remove', PLUGIN, owner.fingerprint);
    expectAccepted(remove, { action: 'owners-remove', signer: next.fingerprint });
    expect((await doc()).owners).toEqual([next.fingerprint]);
    expectRefused(await act(owner, 'yank', `${PLUGIN}@2.0.0`), ['ACTION_NOT_OWNER']);
    expectRefused(await publish(owner, '2.2.0'), ['PUBLISHER_NOT_OWNER']);
    const last = await act(next, 'owners', 'remove', PLUGIN, next.fingerprint);
    expectRefused(last, ['ACTION_LAST_OWNER']);
    expect((await doc()).owners).toEqual([next.fingerprint]);
  });
});

describe('when the operator acts with an operator key', () => {
  it("refuses the registry's own key and a publisher key as the operator, and changes nothing", async () => {
    const before = await doc();
    const byRegistry = await act(registryKey, 'operator', 'remove', `${PLUGIN}@1.0.0`, '--reason', 'x');
    expectRefused(byRegistry, ['PUBLISHER_IS_REGISTRY_KEY']);
    const byOwner = await act(next, 'operator', 'remove', `${PLUGIN}@1.0.0`, '--reason', 'x');
    expectRefused(byOwner, ['ACTION_NOT_OPERATOR']);
    expect(await doc()).toEqual(before);
    // Nor can the registry's key be made an operator.
    const registryPublic = path.join(dir, 'public/keys/registry.asc');
    const made = await plugindex('operators', 'add', registryPublic, '--registry', dir);
    expect(made.code).toBe(1);
    expect(made.stderr).toContain('CONFIG_REGISTRY_KEY_AS_OPERATOR');
  });

  it('removes a version: listed as removed with its reason, its files deleted, never published again', async () => {
    const manifest = path.join(dir, 'public', manifestKey(PLUGIN, '1.0.0'));
    expect(await exists(manifest)).toBe(true);
    const result = await act(operator, 'operator', 'remove', `${PLUGIN}@1.0.0`, '--reason', 'a court order');
    expectAccepted(result, { action: 'remove', version: '1.0.0', signer: operator.fingerprint });
    expect(await version('1.0.0')).toMatchObject({ yanked: true, removed: { reason: 'a court order' } });
    expect(await exists(manifest)).toBe(false);
    expect(await exists(path.join(dir, 'public', signatureKey(manifestKey(PLUGIN, '1.0.0'))))).toBe(false);
    expect(await page()).toContain('a court order');
    // The registry-wide index lists only versions that have a manifest.
    const index = JSON.parse(await readFile(path.join(dir, 'public/index.json'), 'utf8')) as {
      plugins: { name: string; versions: { version: string }[] }[];
    };
    const entry = index.plugins.find((p) => p.name === PLUGIN);
    expect(entry?.versions.map((v) => v.version)).toEqual(['2.1.0', '2.0.0', '1.1.0']);
    // Neither the same manifest nor other bytes under that version, by its owner.
    expectRefused(await publish(next, '1.0.0'), ['VERSION_REMOVED']);
    expectRefused(await publish(next, '1.0.0', { description: 'other bytes' }), ['VERSION_REMOVED']);
    // Nor can its owner bring it back.
    expectRefused(await act(next, 'unyank', `${PLUGIN}@1.0.0`), ['VERSION_REMOVED']);
  });

  it('revokes a publisher key: what it published marked, its later publishes and actions refused', async () => {
    const result = await act(operator, 'operator', 'revoke', next.fingerprint, '--reason', 'the key leaked');
    expectAccepted(result, {
      action: 'revoke-key',
      fingerprint: next.fingerprint,
      signer: operator.fingerprint,
    });
    expect(await version('2.1.0')).toMatchObject({ publisher_revoked: { reason: 'the key leaked' } });
    // What the owner's earlier key published is not marked.
    expect(await version('2.0.0')).not.toHaveProperty('publisher_revoked');
    const revoked = JSON.parse(
      await readFile(path.join(dir, 'public/keys/revoked.json'), 'utf8'),
    ) as RevokedKeysDocument;
    expect(revoked.keys).toEqual([
      expect.objectContaining({ fingerprint: next.fingerprint, reason: 'the key leaked' }),
    ]);
    expectRefused(await publish(next, '2.2.0'), ['PUBLISHER_KEY_REVOKED']);
    expectRefused(await act(next, 'yank', `${PLUGIN}@2.0.0`), ['ACTION_KEY_REVOKED']);
    expectRefused(await act(operator, 'operator', 'revoke', next.fingerprint, '--reason', 'again'), [
      'ACTION_NO_EFFECT',
    ]);
  });

  it('transfers the name to another key, which may then act and publish; never to a revoked key', async () => {
    expectRefused(await act(operator, 'operator', 'transfer', PLUGIN, next.public), ['ACTION_KEY_REVOKED']);
    const result = await act(
      operator,
      'operator',
      'transfer',
      PLUGIN,
      stranger.public,
      '--reason',
      'recovered',
    );
    expectAccepted(result, { action: 'transfer', plugin: PLUGIN, signer: operator.fingerprint });
    expect((await doc()).owners).toEqual([stranger.fingerprint]);
    expectAccepted(await act(stranger, 'yank', `${PLUGIN}@2.1.0`, '--reason', 'published by a leaked key'), {
      action: 'yank',
      signer: stranger.fingerprint,
    });
    const published = await publish(stranger, '2.2.0');
    expect(published.code, published.stderr).toBe(0);
    expect((await doc()).latest_version).toBe('2.2.0');
  });

  it('logged every accepted publish and action, in order, once', async () => {
    const segment = new Uint8Array(await readFile(path.join(dir, 'public', logSegmentKey(0))));
    const entries = parseSegment(segment, 0);
    // Beside them, the actions refused as changing nothing that stood for their slot (an unyank, an
    // undeprecate, a withdrawal of an advisory not held), each logged as changing nothing.
    expect(
      entries.map(({ entry }) => ({ seq: entry.seq, type: entry.type })).filter(applied(entries)),
    ).toEqual([...accepted].sort((a, b) => a.seq - b.seq));
    expect(
      entries.filter(({ entry }) => entry.detail?.effect === 'none').map(({ entry }) => entry.type),
    ).toEqual(['unyank', 'undeprecate', 'advisory-withdraw']);
  });
});

describe("when the registry's state/ folder is lost", () => {
  it('the rebuild that recovers it restores what was applied: the replay stays refused, the log whole', async () => {
    // Prepare: the log as published; then the intake state gone (the catalog, the log's head, the markers).
    const segment = () => readFile(path.join(dir, 'public', logSegmentKey(0)));
    const before = await segment();
    await rm(path.join(dir, 'state'), { recursive: true });

    // Act: the rebuild an operator runs then; the yank applied and since undone, submitted again.
    const rebuilt = await plugindex('rebuild', '--registry', dir);
    const replayed = await plugindex('submit', path.join(work, 'replay.json'), '--registry', dir, '--json');
    const published = await publish(stranger, '2.3.0');

    // Assert: the rebuild says what it restored; the replay is refused; the log kept every entry and grew.
    expect(rebuilt.code, rebuilt.stderr).toBe(0);
    expect(rebuilt.stdout).toMatch(
      /restored from the log: \d+ applied action\(s\), the action order of 1 plugin\(s\)/,
    );
    expectRefused(replayed, ['ACTION_REPLAYED']);
    expect((await version('1.1.0'))?.yanked).toBe(false);
    expect(published.code, published.stderr).toBe(0);
    const after = await segment();
    expect(after.subarray(0, before.byteLength)).toEqual(before);
    const entries = parseSegment(new Uint8Array(after), 0);
    expect(
      entries.map(({ entry }) => ({ seq: entry.seq, type: entry.type })).filter(applied(entries)),
    ).toEqual([...accepted].sort((a, b) => a.seq - b.seq));
  });
});
