/**
 * The action commands end to end, with the registry applying what they submit: a yank that yanks, an
 * owner added who can then act, a refusal for each right an action lacks, the operator's removal and
 * revocation, a replay. They need the pipeline to apply signed actions from incoming/ (the lifecycle
 * pipeline's branch); until that is merged the registry rejects every action as a bundle it cannot read, so
 * the suites below are skipped. Enable them by turning `whenActionsApply` into `describe`.
 */
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { initRegistry } from '../../../cli/local/registry.ts';
import { main } from '../../../cli/main.ts';
import type { PluginDocument } from '../../../index-builder/model.ts';
import type { SubmissionOutcome } from '../../../index-builder/pipeline/index.ts';
import { readPublicKey } from '../../../index-builder/signing.ts';
import { makeBundle, testKey, validManifest } from '../../support/fixtures.ts';

// Needs: processSubmissions applying signed actions (the lifecycle pipeline branch). Then: describe.
const whenActionsApply = describe.skip;

const PLUGIN = 'applied-demo';

let work: string;
let dir: string;
let owner: string;
let ownerFingerprint: string;
let stranger: string;
let newOwner: string;
let newOwnerPublic: string;
let newOwnerFingerprint: string;
let registryKey: string;

interface Run {
  readonly code: number;
  readonly outcome?: SubmissionOutcome;
  readonly stderr: string;
}

/** Runs a command in this process with --json, and reads the outcome it printed. */
async function plugindex(...args: string[]): Promise<Run> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((c) => stdout.push(String(c)) > 0);
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((c) => stderr.push(String(c)) > 0);
  try {
    const code = await main([...args, '--json']);
    const text = stdout.join('');
    return { code, stderr: stderr.join(''), ...(text ? { outcome: JSON.parse(text) } : {}) };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

async function doc(): Promise<PluginDocument> {
  return JSON.parse(await readFile(path.join(dir, 'public/plugins', PLUGIN, 'index.json'), 'utf8'));
}

const version = async (v: string) => (await doc()).versions.find((r) => r.version === v);
const codes = (run: Run) => run.outcome?.problems.map((p) => p.code) ?? [];
const asOwner = (key = owner) => ['--key', key, '--registry', dir];

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'plugindex-actions-applied-'));
  dir = path.join(work, 'registry');
  await initRegistry(dir, { name: 'Applied', url: 'http://127.0.0.1:1' });
  registryKey = path.join(dir, 'keys/registry-secret.asc');
  const write = async (name: string, text: string) => {
    const file = path.join(work, name);
    await writeFile(file, text);
    return file;
  };
  const publisher = await testKey('publisher');
  owner = await write('owner.asc', publisher.secretKey);
  ownerFingerprint = publisher.fingerprint;
  stranger = await write('stranger.asc', (await testKey('stranger')).secretKey);
  const next = await testKey('next-owner');
  newOwner = await write('next.asc', next.secretKey);
  newOwnerPublic = await write('next-public.asc', next.publicKey);
  newOwnerFingerprint = next.fingerprint;
  for (const v of ['1.0.0', '1.1.0', '2.0.0']) {
    const bundle = await write(`${v}.tgz`, '');
    await writeFile(bundle, await makeBundle({ manifest: validManifest({ name: PLUGIN, version: v }) }));
    expect(await main(['publish', bundle, '--registry', dir, '--json'])).toBe(0);
  }
}, 60_000);

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

whenActionsApply('when an owner acts on a plugin', () => {
  it('yanks a version with its reason (exit 0, accepted), and unyanks it', async () => {
    const yank = await plugindex('yank', `${PLUGIN}@1.0.0`, '--reason', 'broken build', ...asOwner());
    expect(yank.code, yank.stderr).toBe(0);
    expect(yank.outcome).toMatchObject({ status: 'accepted', plugin: PLUGIN, version: '1.0.0' });
    expect(await version('1.0.0')).toMatchObject({ yanked: true, yanked_reason: 'broken build' });
    const page = await readFile(path.join(dir, 'public/plugins', PLUGIN, 'index.html'), 'utf8');
    expect(page).toContain('Yanked: broken build');
    const unyank = await plugindex('unyank', `${PLUGIN}@1.0.0`, ...asOwner());
    expect(unyank.code, unyank.stderr).toBe(0);
    expect((await version('1.0.0'))?.yanked).toBe(false);
  });

  it('deprecates a range with a replacement, and the whole plugin, and lifts both', async () => {
    const range = await plugindex(
      'deprecate',
      `${PLUGIN}@<2.0.0`,
      '--message',
      'upgrade to 2.x',
      '--replacement',
      'other-demo',
      ...asOwner(),
    );
    expect(range.code, range.stderr).toBe(0);
    expect(await version('1.1.0')).toMatchObject({
      deprecated: true,
      deprecation_message: 'upgrade to 2.x',
      deprecation_replacement: 'other-demo',
    });
    expect((await version('2.0.0'))?.deprecated).toBe(false);
    const whole = await plugindex('deprecate', PLUGIN, '--message', 'unmaintained', ...asOwner());
    expect(whole.code, whole.stderr).toBe(0);
    expect((await doc()).deprecation).toMatchObject({ message: 'unmaintained' });
    expect((await plugindex('undeprecate', PLUGIN, ...asOwner())).code).toBe(0);
    expect((await plugindex('undeprecate', `${PLUGIN}@<2.0.0`, ...asOwner())).code).toBe(0);
    expect((await doc()).deprecation).toBeUndefined();
    expect((await version('1.1.0'))?.deprecated).toBe(false);
  });

  it('publishes an advisory, refuses the same id twice, and withdraws it (kept, marked)', async () => {
    const args = ['--id', 'PDX-2026-0001', '--severity', 'high', '--affected', '<1.1.0', '--fixed', '1.1.0'];
    const add = await plugindex('advisory', 'add', PLUGIN, ...args, '--summary', 'leaks', ...asOwner());
    expect(add.code, add.stderr).toBe(0);
    expect((await doc()).advisories).toEqual([
      expect.objectContaining({ id: 'PDX-2026-0001', severity: 'high', affected: '<1.1.0', fixed: '1.1.0' }),
    ]);
    const again = await plugindex('advisory', 'add', PLUGIN, ...args, '--summary', 'leaks', ...asOwner());
    expect(again.code).toBe(1);
    expect(codes(again)).toEqual(['ADVISORY_EXISTS']);
    const withdraw = await plugindex(
      'advisory',
      'withdraw',
      PLUGIN,
      '--id',
      'PDX-2026-0001',
      '--reason',
      'false alarm',
      ...asOwner(),
    );
    expect(withdraw.code, withdraw.stderr).toBe(0);
    expect((await doc()).advisories?.[0]?.withdrawn).toMatchObject({ reason: 'false alarm' });
  });

  it('adds an owner who can then act, lists both, and never removes the last one', async () => {
    const add = await plugindex('owners', 'add', PLUGIN, newOwnerPublic, ...asOwner());
    expect(add.code, add.stderr).toBe(0);
    expect((await doc()).owners).toEqual(expect.arrayContaining([ownerFingerprint, newOwnerFingerprint]));
    const listed = await plugindex('owners', 'list', PLUGIN, '--registry', dir);
    expect(listed.code).toBe(0);
    expect((await plugindex('yank', `${PLUGIN}@1.1.0`, ...asOwner(newOwner))).code).toBe(0);
    expect((await plugindex('owners', 'remove', PLUGIN, ownerFingerprint, ...asOwner(newOwner))).code).toBe(
      0,
    );
    expect((await doc()).owners).toEqual([newOwnerFingerprint]);
    const last = await plugindex('owners', 'remove', PLUGIN, newOwnerFingerprint, ...asOwner(newOwner));
    expect(last.code).toBe(1);
    expect(codes(last)).toEqual(['ACTION_LAST_OWNER']);
  });

  it('refuses a key that is not an owner (exit 1, ACTION_NOT_OWNER), and changes nothing', async () => {
    const before = await doc();
    const result = await plugindex('yank', `${PLUGIN}@2.0.0`, ...asOwner(stranger));
    expect(result.code).toBe(1);
    expect(codes(result)).toEqual(['ACTION_NOT_OWNER']);
    expect(await doc()).toEqual(before);
  });

  it('refuses an action for a version that does not exist (ACTION_UNKNOWN_VERSION)', async () => {
    const result = await plugindex('yank', `${PLUGIN}@9.9.9`, ...asOwner(newOwner));
    expect(result.code).toBe(1);
    expect(codes(result)).toEqual(['ACTION_UNKNOWN_VERSION']);
  });

  it('applies a written envelope once with submit, and refuses it replayed (ACTION_REPLAYED)', async () => {
    const file = path.join(work, 'replay.json');
    const written = await main([
      'unyank',
      `${PLUGIN}@1.1.0`,
      '--key',
      newOwner,
      '--registry',
      dir,
      '--output',
      file,
    ]);
    expect(written).toBe(0);
    const first = await plugindex('submit', file, '--registry', dir);
    expect(first.code, first.stderr).toBe(0);
    const replayed = await plugindex('submit', file, '--registry', dir);
    expect(replayed.code).toBe(1);
    expect(codes(replayed)).toEqual(['ACTION_REPLAYED']);
  });
});

whenActionsApply("when the operator acts with the registry's key", () => {
  it('refuses a publisher key posing as the operator (ACTION_NOT_OPERATOR)', async () => {
    const result = await plugindex(
      'operator',
      'remove',
      `${PLUGIN}@1.0.0`,
      '--reason',
      'x',
      ...asOwner(newOwner),
    );
    expect(result.code).toBe(1);
    expect(codes(result)).toEqual(['ACTION_NOT_OPERATOR']);
  });

  it('removes a version: listed as removed with its reason, its files deleted', async () => {
    const result = await plugindex(
      'operator',
      'remove',
      `${PLUGIN}@1.0.0`,
      '--reason',
      'a court order',
      ...asOwner(registryKey),
    );
    expect(result.code, result.stderr).toBe(0);
    expect((await version('1.0.0'))?.removed).toMatchObject({ reason: 'a court order' });
    await expect(stat(path.join(dir, 'public/plugins', PLUGIN, '1.0.0/manifest.json'))).rejects.toThrow();
  });

  it('revokes a publisher key: what it published marked, its later actions refused (ACTION_KEY_REVOKED)', async () => {
    const result = await plugindex(
      'operator',
      'revoke',
      (await readPublicKey(await readFile(newOwnerPublic, 'utf8'))).fingerprint,
      '--reason',
      'the key leaked',
      ...asOwner(registryKey),
    );
    expect(result.code, result.stderr).toBe(0);
    const refused = await plugindex('yank', `${PLUGIN}@2.0.0`, ...asOwner(newOwner));
    expect(refused.code).toBe(1);
    expect(codes(refused)).toEqual(['ACTION_KEY_REVOKED']);
  });

  it('transfers the name to another key', async () => {
    const result = await plugindex(
      'operator',
      'transfer',
      PLUGIN,
      path.join(work, 'owner.asc'),
      '--reason',
      'recovered',
      ...asOwner(registryKey),
    );
    expect(result.code, result.stderr).toBe(0);
    expect((await doc()).owners).toEqual([ownerFingerprint]);
  });
});
