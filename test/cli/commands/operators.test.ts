/**
 * `plugindex operators`: trusting an operator key in a real local registry, through the command itself,
 * then an operator action dropped into incoming/ and processed by `plugindex process`.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initRegistry } from '../../../cli/local/registry.ts';
import type { PluginDocument } from '../../../index-builder/model.ts';
import { signedAction } from '../../support/actions.ts';
import { plugindex, plugindexProcess, runWhileLocked } from '../../support/cli.ts';
import { makeBundle, testKey } from '../../support/fixtures.ts';
import { treeOf } from '../../support/tree.ts';
import { UNTRUSTED_KEYS } from '../../support/untrusted-keys.ts';

let work: string;
let dir: string;
const URL = 'http://127.0.0.1:8080';

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'plugindex-operators-'));
  dir = path.join(work, 'registry');
  await initRegistry(dir, { name: 'r', url: URL });
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** `plugindex operators add` of the key in `file` to the local registry, with `more` arguments. */
const addOperator = (file: string, ...more: string[]) =>
  plugindex('operators', 'add', '--registry', dir, file, ...more);

describe('when a registry names its operator', () => {
  it('adds the key, lists it, and leaves publishing as it was', async () => {
    const key = await testKey('operator');
    await writeFile(path.join(work, 'operator.asc'), key.publicKey);
    const added = await addOperator(path.join(work, 'operator.asc'), '--label', 'ops');
    expect(added.code).toBe(0);
    expect(added.stdout).toContain(`${key.fingerprint} is an operator key`);
    const config = JSON.parse(await readFile(path.join(dir, 'plugindex.json'), 'utf8')) as {
      policy: string;
      operators: { fingerprint: string; label?: string }[];
    };
    expect(config.policy).toBe('open');
    expect(config.operators).toEqual([
      { fingerprint: key.fingerprint, key: expect.any(String), label: 'ops' },
    ]);
    const listed = await plugindex('operators', 'list', '--registry', dir);
    expect(listed.stdout.trim()).toBe(`${key.fingerprint} (ops)`);
  });

  it("refuses the registry's own key with its code, exit 1, and leaves the config as it was", async () => {
    const before = await readFile(path.join(dir, 'plugindex.json'), 'utf8');
    const own = path.join(dir, 'public', 'keys', 'registry.asc');
    const refused = await addOperator(own);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('CONFIG_REGISTRY_KEY_AS_OPERATOR');
    expect(await readFile(path.join(dir, 'plugindex.json'), 'utf8')).toBe(before);
  });

  it.each(UNTRUSTED_KEYS)(
    'refuses $label with KEY_INVALID naming it and why, and leaves the config as it was',
    async (key) => {
      // Every signature by such a key is refused: trusting one only defers the refusal to its first action.
      const before = await readFile(path.join(dir, 'plugindex.json'), 'utf8');
      await writeFile(path.join(work, 'untrusted.asc'), key.publicKey);
      const refused = await addOperator(path.join(work, 'untrusted.asc'));
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(`KEY_INVALID: the operator key ${key.fingerprint} cannot be trusted`);
      expect(refused.stderr).toContain(key.reason);
      expect(await readFile(path.join(dir, 'plugindex.json'), 'utf8')).toBe(before);
    },
  );

  it('refuses a secret key with SECRET_KEY_GIVEN, exit 2, naming the file, and writes nothing', async () => {
    const key = await testKey('operator-secret');
    const file = path.join(work, 'operator-secret.asc');
    await writeFile(file, key.secretKey);
    const before = await treeOf(dir);
    const refused = await plugindexProcess(['operators', 'add', '--registry', dir, file], { cwd: work });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`SECRET_KEY_GIVEN: ${file} is a secret key`);
    expect(refused.stdout).toBe('');
    expect(await treeOf(dir)).toEqual(before);
  });

  it('writes the config under the registry lock: never while a batch, a rebuild or a rotation holds it', async () => {
    const key = await testKey('patient-operator');
    const file = path.join(work, 'patient-operator.asc');
    await writeFile(file, key.publicKey);
    const configFile = path.join(dir, 'plugindex.json');
    const before = await readFile(configFile, 'utf8');
    const {
      endedWhileHeld,
      during,
      result: added,
    } = await runWhileLocked(dir, ['operators', 'add', '--registry', dir, file], {
      cwd: work,
      file: configFile,
    });
    expect(endedWhileHeld).toBe(false);
    expect(during).toBe(before);
    expect(added.code, added.stderr).toBe(0);
    expect(await readFile(configFile, 'utf8')).toContain(key.fingerprint);
  });

  it('answers a malformed request with a usage error (exit 2)', async () => {
    expect((await plugindex('operators', 'list', 'extra', '--registry', dir)).code).toBe(2);
    expect((await plugindex('operators', '--registry', dir)).code).toBe(2);
  });

  it("takes the operator's action from incoming/, and refuses it signed by an owner", async () => {
    const publisher = await testKey('publisher');
    await writeFile(path.join(dir, 'incoming', 'demo.tgz'), await makeBundle({ signer: publisher }));
    expect((await plugindex('process', '--registry', dir)).code).toBe(0);
    const body = { action: 'remove', plugin: 'demo-plugin', version: '1.0.0', reason: 'legal' } as const;
    const now = new Date();
    await writeFile(
      path.join(dir, 'incoming', 'by-owner.json'),
      (await signedAction(body, publisher, { registry: URL, now })).bytes,
    );
    const byOwner = await plugindex('process', '--registry', dir);
    expect(byOwner.code).toBe(1);
    expect(byOwner.stdout).toContain('rejected remove demo-plugin@1.0.0');
    expect(byOwner.stdout).toContain('ACTION_NOT_OPERATOR');
    await writeFile(
      path.join(dir, 'incoming', 'by-operator.json'),
      (await signedAction(body, await testKey('operator'), { registry: URL, now })).bytes,
    );
    const byOperator = await plugindex('process', '--registry', dir);
    expect(byOperator.code).toBe(0);
    expect(byOperator.stdout).toContain('accepted remove demo-plugin@1.0.0');
    const doc = JSON.parse(
      await readFile(path.join(dir, 'public', 'plugins', 'demo-plugin', 'index.json'), 'utf8'),
    ) as PluginDocument;
    expect(doc.versions[0]?.removed?.reason).toBe('legal');
    await expect(
      readFile(path.join(dir, 'public', 'plugins', 'demo-plugin', '1.0.0', 'manifest.json')),
    ).rejects.toThrow(/ENOENT/);
  });
});

describe('when a registry stops taking an operator key', () => {
  /** A new registry in the work folder, with `key` its operator, labelled `label`. */
  const registryOperatedBy = async (name: string, key: { publicKey: string }, label: string) => {
    const at = path.join(work, name);
    await initRegistry(at, { name, url: URL });
    const file = path.join(work, `${name}.asc`);
    await writeFile(file, key.publicKey);
    const added = await plugindexProcess(['operators', 'add', '--registry', at, file, '--label', label], {
      cwd: work,
    });
    expect(added.code, added.stderr).toBe(0);
    return at;
  };

  it("removes the key by its label, and the registry refuses that key's operator action after", async () => {
    // The last one may go: a registry runs with none (init lists none), the operator-only actions waiting.
    const operator = await testKey('retired-operator');
    const at = await registryOperatedBy('retired', operator, 'retired ops');
    const removed = await plugindexProcess(['operators', 'remove', '--registry', at, 'retired ops'], {
      cwd: work,
    });
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.stdout).toContain(`${operator.fingerprint} (retired ops) is no longer an operator key`);
    expect(removed.stdout).toContain('no operator key is listed now');
    const config = JSON.parse(await readFile(path.join(at, 'plugindex.json'), 'utf8')) as {
      operators: unknown[];
    };
    expect(config.operators).toEqual([]);
    const publisher = await testKey('publisher');
    await writeFile(path.join(at, 'incoming', 'demo.tgz'), await makeBundle({ signer: publisher }));
    expect((await plugindexProcess(['process', '--registry', at], { cwd: work })).code).toBe(0);
    const body = { action: 'remove', plugin: 'demo-plugin', version: '1.0.0', reason: 'legal' } as const;
    await writeFile(
      path.join(at, 'incoming', 'by-former.json'),
      (await signedAction(body, operator, { registry: URL, now: new Date() })).bytes,
    );
    const refused = await plugindexProcess(['process', '--registry', at], { cwd: work });
    expect(refused.code).toBe(1);
    expect(refused.stdout).toContain('ACTION_NOT_OPERATOR');
  });

  it('refuses a key it does not list (TRUST_ENTRY_NOT_FOUND, exit 1), writing nothing', async () => {
    const at = await registryOperatedBy('unlisted', await testKey('listed-operator'), 'ops');
    const before = await treeOf(at);
    const refused = await plugindexProcess(['operators', 'remove', '--registry', at, 'E'.repeat(40)], {
      cwd: work,
    });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('TRUST_ENTRY_NOT_FOUND');
    expect(await treeOf(at)).toEqual(before);
  });

  it('refuses while a key rotation is under way (ROTATION_PENDING, exit 1), writing nothing', async () => {
    const operator = await testKey('rotation-operator');
    const at = await registryOperatedBy('rotation', operator, 'ops');
    await writeFile(path.join(at, 'state', 'rotation-pending.json'), '{}');
    const before = await treeOf(at);
    const refused = await plugindexProcess(['operators', 'remove', '--registry', at, operator.fingerprint], {
      cwd: work,
    });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('ROTATION_PENDING');
    expect(await treeOf(at)).toEqual(before);
  });

  it('refuses --label on list as a usage error (exit 2) rather than list every key', async () => {
    const listed = await plugindexProcess(['operators', 'list', '--registry', dir, '--label', 'ops'], {
      cwd: work,
    });
    expect(listed.code).toBe(2);
    expect(listed.stderr).toContain('--label is not an option of operators list');
    expect(listed.stdout).toBe('');
  });
});

describe('when the action is mistyped', () => {
  it.each([
    ['lst', 'list'],
    ['ad', 'add'],
    ['remvoe', 'remove'],
  ])(
    'names "%s" back with the action it most likely meant (exit 2), as every other command',
    async (typed, meant) => {
      // Before, the shape of every action alone, where `registry ad` and `operator tranfer` said which was meant.
      const refused = await plugindexProcess(['operators', typed, '--registry', dir], { cwd: work });
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain(`unknown operators action "${typed}": did you mean "${meant}"?`);
      expect(refused.stdout).toBe('');
    },
  );
});

describe('when a program asks operators for --json', () => {
  it('prints the list after add, list and remove in one shape, add and remove with the entry they changed', async () => {
    const at = path.join(work, 'json-operators');
    await initRegistry(at, { name: 'j', url: URL });
    const [first, second] = [await testKey('json-ops-first'), await testKey('json-ops-second')];
    await writeFile(path.join(work, 'json-ops-first.asc'), first.publicKey);
    await writeFile(path.join(work, 'json-ops-second.asc'), second.publicKey);
    const run = async (...args: string[]) => {
      const result = await plugindexProcess(['operators', ...args, '--registry', at, '--json'], {
        cwd: work,
      });
      expect(result.code, result.stderr).toBe(0);
      return JSON.parse(result.stdout) as unknown;
    };

    // Act and assess
    expect(await run('list')).toEqual({ operators: [] });
    const a = { fingerprint: first.fingerprint, label: 'ops' };
    expect(await run('add', path.join(work, 'json-ops-first.asc'), '--label', 'ops')).toEqual({
      added: a,
      operators: [a],
    });
    const b = { fingerprint: second.fingerprint, label: 'backup' };
    expect(await run('add', path.join(work, 'json-ops-second.asc'), '--label', 'backup')).toEqual({
      added: b,
      operators: [a, b],
    });
    expect(await run('remove', first.fingerprint)).toEqual({ removed: a, operators: [b] });
    expect(await run('list')).toEqual({ operators: [b] });
  });
});
