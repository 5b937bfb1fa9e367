/** `plugindex publishers`: trusting a key for names, in a real local registry, through the command itself. */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initRegistry } from '../../../cli/local/registry.ts';
import type { PluginDocument } from '../../../index-builder/model.ts';
import { generateKeyPair } from '../../../index-builder/signing.ts';
import { signedAction } from '../../support/actions.ts';
import { plugindex, plugindexProcess, runWhileLocked } from '../../support/cli.ts';
import { KEYS_CREATED, makeBundle, testKey, validManifest } from '../../support/fixtures.ts';
import { gpgSecretSubkeysOnce } from '../../support/gpg.ts';
import { publicPrimaryWithSecretSubkeys } from '../../support/openpgp-packets.ts';
import { treeOf } from '../../support/tree.ts';
import { UNTRUSTED_KEYS } from '../../support/untrusted-keys.ts';

let work: string;
let dir: string;

const configOf = async (): Promise<{
  policy: string;
  publishers: { fingerprint: string; names: string[] }[];
}> => JSON.parse(await readFile(path.join(dir, 'plugindex.json'), 'utf8'));

/** `plugindex publishers add` of the key in `file` (under the work folder), trusted for `names`. */
const addPublisher = (file: string, names: string) =>
  plugindex('publishers', 'add', '--registry', dir, path.join(work, file), '--names', names);

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'plugindex-publishers-'));
  dir = path.join(work, 'registry');
  await initRegistry(dir, { name: 'r', url: 'http://127.0.0.1:8080' });
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('when an operator trusts publishers', () => {
  it('trusts a key for its names and makes the registry restricted', async () => {
    const key = await testKey('acme');
    await writeFile(path.join(work, 'acme.asc'), key.publicKey);
    const added = await addPublisher('acme.asc', 'acme-*');
    expect(added.code).toBe(0);
    expect(added.stdout).toContain(`trusted ${key.fingerprint} for acme-*; policy is now restricted`);
    expect(await configOf()).toMatchObject({
      policy: 'restricted',
      publishers: [{ fingerprint: key.fingerprint, names: ['acme-*'] }],
    });
    const listed = await plugindex('publishers', 'list', '--registry', dir);
    expect(listed.stdout).toContain(`${key.fingerprint} acme-*`);
  });

  it('says which names a key added again no longer has, and keeps its label unless --label gives another', async () => {
    // Added again, a key's entry was replaced in silence: "trusted X for beta-*" while alpha-* and the
    // operator's label ("Alpha team", which `publishers remove LABEL` names it by) were gone.
    const key = await testKey('readded');
    await writeFile(path.join(work, 'readded.asc'), key.publicKey);
    const first = await plugindex(
      'publishers',
      'add',
      '--registry',
      dir,
      path.join(work, 'readded.asc'),
      '--names',
      'alpha-*,shared-*',
      '--label',
      'Alpha team',
    );
    expect(first.code, first.stderr).toBe(0);
    const again = await addPublisher('readded.asc', 'beta-*,shared-*');
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain(
      `trusted ${key.fingerprint} for beta-*, shared-*, no longer for alpha-* (its names before); policy is now restricted`,
    );
    const entry = (await configOf()).publishers.find((p) => p.fingerprint === key.fingerprint);
    expect(entry).toMatchObject({ names: ['beta-*', 'shared-*'], label: 'Alpha team' });
    const relabelled = await plugindex(
      'publishers',
      'add',
      '--registry',
      dir,
      path.join(work, 'readded.asc'),
      '--names',
      'beta-*,shared-*',
      '--label',
      'Beta team',
    );
    expect(relabelled.stdout).toContain(
      `trusted ${key.fingerprint} for beta-*, shared-*; policy is now restricted`,
    );
    expect((await configOf()).publishers.find((p) => p.fingerprint === key.fingerprint)).toMatchObject({
      label: 'Beta team',
    });
  });

  it('lists a key whose user ID holds a line feed on one line: its label cannot add a trusted key to the list', async () => {
    // A publisher's key, its user ID made to read as a second line of the list: a key trusted for every name.
    const forged = `forger)\n${'F'.repeat(40)} * (everything`;
    const key = await generateKeyPair({ name: forged, date: KEYS_CREATED });
    await writeFile(path.join(work, 'forger.asc'), key.publicKey);
    const added = await addPublisher('forger.asc', 'forger-*');
    expect(added.code, added.stderr).toBe(0);
    const listed = await plugindex('publishers', 'list', '--registry', dir);
    expect(listed.stdout.split('\n').filter((l) => l.startsWith('F'.repeat(40)))).toEqual([]);
    expect(listed.stdout).toContain(
      `${key.fingerprint} forger-* (forger)\\u000a${'F'.repeat(40)} * (everything)`,
    );
  });

  it("refuses the registry's own key with its code, exit 1, and leaves the config as it was", async () => {
    const before = await readFile(path.join(dir, 'plugindex.json'), 'utf8');
    const own = path.join(dir, 'public', 'keys', 'registry.asc');
    const refused = await plugindex('publishers', 'add', '--registry', dir, own, '--names', '*');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('CONFIG_REGISTRY_KEY_AS_PUBLISHER');
    expect(await readFile(path.join(dir, 'plugindex.json'), 'utf8')).toBe(before);
  });

  it.each(UNTRUSTED_KEYS)(
    'refuses $label with KEY_INVALID naming it and why, and leaves the config as it was',
    async (key) => {
      // Every signature by such a key is refused: trusting one only defers the refusal to a publish.
      const before = await readFile(path.join(dir, 'plugindex.json'), 'utf8');
      await writeFile(path.join(work, 'untrusted.asc'), key.publicKey);
      const refused = await addPublisher('untrusted.asc', 'evil-*');
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(`KEY_INVALID: the publisher key ${key.fingerprint} cannot be trusted`);
      expect(refused.stderr).toContain(key.reason);
      expect(await readFile(path.join(dir, 'plugindex.json'), 'utf8')).toBe(before);
    },
  );

  it.each([
    ['armored', (key: { secretKey: string }) => key.secretKey],
    [
      'armored after a byte order mark and blank lines',
      (key: { secretKey: string }) => `\ufeff\n\n${key.secretKey}`,
    ],
    // Secret packets under a public key's armor header: openpgp.js reads them as the secret key.
    [
      'under a public key’s armor header',
      (key: { secretKey: string }) =>
        key.secretKey.replaceAll('PGP PRIVATE KEY BLOCK', 'PGP PUBLIC KEY BLOCK'),
    ],
    // A public primary key holding a secret subkey (tag 7), which openpgp.js reads as no key at all.
    [
      'as its public primary key holding its secret subkey, armored',
      async (key: { secretKey: string }) => (await publicPrimaryWithSecretSubkeys(key.secretKey)).armored,
    ],
    [
      'as its public primary key holding its secret subkey, binary',
      async (key: { secretKey: string }) => (await publicPrimaryWithSecretSubkeys(key.secretKey)).binary,
    ],
    ['exported by gpg --export-secret-subkeys --armor', () => gpgSecretSubkeysOnce().exported.armored],
    ['exported by gpg --export-secret-subkeys', () => gpgSecretSubkeysOnce().exported.binary],
    [
      'as gpg’s public key spliced with its secret subkey, armored',
      () => gpgSecretSubkeysOnce().spliced.armored,
    ],
    [
      'as gpg’s public key spliced with its secret subkey, binary',
      () => gpgSecretSubkeysOnce().spliced.binary,
    ],
  ])(
    'refuses a secret key (%s) with SECRET_KEY_GIVEN, exit 2, naming the file, and writes nothing',
    async (_, text) => {
      // A publisher who sends the operator its secret key must learn it left them, as the deployed trust
      // list and the registry refuse one: never trusted by its public part without a word.
      const key = await testKey('careless');
      const file = path.join(work, 'careless-secret.asc');
      await writeFile(file, await text(key));
      const before = await treeOf(dir);
      const refused = await plugindexProcess(
        ['publishers', 'add', '--registry', dir, file, '--names', 'careless-*'],
        { cwd: work },
      );
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain(`SECRET_KEY_GIVEN: ${file} is a secret key`);
      expect(refused.stdout).toBe('');
      expect(await treeOf(dir)).toEqual(before);
    },
  );

  it('writes the config under the registry lock: never while a batch, a rebuild or a rotation holds it', async () => {
    // Unlocked, two adds at once each wrote the config it had read, one trust lost; and one during a
    // rotation judged the key against the key file of that moment.
    const key = await testKey('patient');
    await writeFile(path.join(work, 'patient.asc'), key.publicKey);
    const configFile = path.join(dir, 'plugindex.json');
    const before = await readFile(configFile, 'utf8');
    const {
      endedWhileHeld,
      during,
      result: added,
    } = await runWhileLocked(
      dir,
      ['publishers', 'add', '--registry', dir, path.join(work, 'patient.asc'), '--names', 'patient-*'],
      {
        cwd: work,
        file: configFile,
      },
    );
    expect(endedWhileHeld).toBe(false);
    expect(during).toBe(before);
    expect(added.code, added.stderr).toBe(0);
    expect((await configOf()).publishers.map((p) => p.fingerprint)).toContain(key.fingerprint);
  });

  it('refuses while a key rotation is under way (ROTATION_PENDING, exit 1), writing nothing', async () => {
    // The key file may hold either key then: the new registry key would pass as a publisher's, and the
    // rotation, which refuses a trusted publisher's key, could never be finished.
    const pendingDir = path.join(work, 'pending');
    await initRegistry(pendingDir, { name: 'p', url: 'http://127.0.0.1:8080' });
    await mkdir(path.join(pendingDir, 'state'), { recursive: true });
    await writeFile(path.join(pendingDir, 'state', 'rotation-pending.json'), '{}');
    const key = await testKey('hasty');
    await writeFile(path.join(work, 'hasty.asc'), key.publicKey);
    const before = await treeOf(pendingDir);
    const refused = await plugindexProcess(
      ['publishers', 'add', '--registry', pendingDir, path.join(work, 'hasty.asc'), '--names', 'hasty-*'],
      { cwd: work },
    );
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('ROTATION_PENDING');
    expect(await treeOf(pendingDir)).toEqual(before);
  });

  it.each([
    ['a capital letter', 'acme-*,Acme-*', 'A'],
    ['a space', 'acme tools-*', ' '],
    ['an underscore', 'acme_*', '_'],
  ])(
    'refuses a --names glob with %s, which no plugin name holds (exit 2), writing nothing',
    async (_, names, char) => {
      // Trusted for a glob no name matches, the publisher was told "trusted" and every publish refused.
      const key = await testKey('globber');
      await writeFile(path.join(work, 'globber.asc'), key.publicKey);
      const before = await treeOf(dir);
      const refused = await plugindexProcess(
        ['publishers', 'add', '--registry', dir, path.join(work, 'globber.asc'), '--names', names],
        { cwd: work },
      );
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain(`holds ${JSON.stringify(char)}, which no plugin name does`);
      expect(refused.stdout).toBe('');
      expect(await treeOf(dir)).toEqual(before);
    },
  );

  it('answers a malformed request with a usage error (exit 2)', async () => {
    expect((await plugindex('publishers', 'list', 'extra', '--registry', dir)).code).toBe(2);
    expect((await plugindex('publishers', '--registry', dir)).code).toBe(2);
    expect((await plugindex('publishers', 'add', '--registry', dir, path.join(work, 'acme.asc'))).code).toBe(
      2,
    );
  });

  it('names the file when the key cannot be read (exit 1)', async () => {
    const missing = await addPublisher('nope.asc', 'x-*');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`cannot read ${path.join(work, 'nope.asc')}`);
  });

  it('says which file is broken when the registry config is not JSON (exit 1)', async () => {
    const broken = path.join(work, 'broken');
    await initRegistry(broken, { name: 'b', url: 'http://127.0.0.1:8080' });
    await writeFile(path.join(broken, 'plugindex.json'), '{ not json');
    const listed = await plugindex('publishers', 'list', '--registry', broken);
    expect(listed.code).toBe(1);
    expect(listed.stderr).toContain(`CONFIG_INVALID: ${path.join(broken, 'plugindex.json')} is not JSON`);
  });

  it('names the file as well as the field when the registry config is refused at a field (exit 1)', async () => {
    const refused = path.join(work, 'refused');
    await initRegistry(refused, { name: 'r', url: 'http://127.0.0.1:8080' });
    const file = path.join(refused, 'plugindex.json');
    await writeFile(file, JSON.stringify({ ...JSON.parse(await readFile(file, 'utf8')), policy: 'anyone' }));
    const listed = await plugindex('publishers', 'list', '--registry', refused);
    expect(listed.code).toBe(1);
    // Before, `registry config /policy: …`: the field alone, not which registry's config.
    expect(listed.stderr).toContain(`CONFIG_INVALID: registry config ${file} /policy:`);
  });
});

describe('when an operator stops trusting a publisher', () => {
  /** A new registry in the work folder, trusting `keys` for `demo-*`, each labelled with its `label`. */
  const registryTrusting = async (name: string, ...keys: { publicKey: string; label: string }[]) => {
    const at = path.join(work, name);
    await initRegistry(at, { name, url: 'http://127.0.0.1:8080' });
    for (const [i, key] of keys.entries()) {
      const file = path.join(work, `${name}-${i}.asc`);
      await writeFile(file, key.publicKey);
      const added = await plugindexProcess(
        ['publishers', 'add', '--registry', at, file, '--names', 'demo-*', '--label', key.label],
        {
          cwd: work,
        },
      );
      expect(added.code, added.stderr).toBe(0);
    }
    return at;
  };
  const publishersOf = async (at: string) =>
    JSON.parse(await readFile(path.join(at, 'plugindex.json'), 'utf8')) as {
      policy: string;
      publishers: { fingerprint: string }[];
    };

  it('removes the key named by its fingerprint, keeps the others and the restricted policy', async () => {
    const [kept, gone] = [await testKey('kept'), await testKey('gone')];
    const at = await registryTrusting(
      'by-fingerprint',
      { ...kept, label: 'kept' },
      { ...gone, label: 'gone' },
    );
    const removed = await plugindexProcess(
      ['publishers', 'remove', '--registry', at, gone.fingerprint.toLowerCase()],
      { cwd: work },
    );
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.stdout).toContain(`${gone.fingerprint} (gone) is no longer trusted`);
    expect(removed.stdout).toContain(`plugindex operator revoke ${gone.fingerprint} --reason TEXT`);
    expect(await publishersOf(at)).toMatchObject({
      policy: 'restricted',
      publishers: [{ fingerprint: kept.fingerprint }],
    });
  });

  it('leaves what the key published, signed by the registry, refuses its next publish, and revoke still marks it', async () => {
    // Removal is no revocation: the versions stay as they were (operator revoke marks them), and only what
    // comes next is judged by the list.
    const key = await testKey('former');
    const at = await registryTrusting('published', { ...key, label: 'former' });
    await writeFile(path.join(at, 'incoming', 'first.tgz'), await makeBundle({ signer: key }));
    expect((await plugindexProcess(['process', '--registry', at], { cwd: work })).code).toBe(0);
    const docFile = path.join(at, 'public', 'plugins', 'demo-plugin', 'index.json');
    const before = await readFile(docFile, 'utf8');
    const removed = await plugindexProcess(['publishers', 'remove', '--registry', at, 'former'], {
      cwd: work,
    });
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.stdout).toContain('no publisher is trusted now: the policy stays restricted');
    expect((await publishersOf(at)).publishers).toEqual([]);
    expect(await readFile(docFile, 'utf8')).toBe(before);
    await writeFile(
      path.join(at, 'incoming', 'next.tgz'),
      await makeBundle({ signer: key, manifest: validManifest({ version: '1.0.1' }) }),
    );
    const next = await plugindexProcess(['process', '--registry', at], { cwd: work });
    expect(next.code).toBe(1);
    expect(next.stdout).toContain('PUBLISHER_UNTRUSTED');
    expect(await readFile(docFile, 'utf8')).toBe(before);
    // What README points to for marking those versions: a revocation, taken after the removal too, as the
    // registry knows the key by the versions it published.
    const operator = await testKey('revoking-operator');
    await writeFile(path.join(work, 'revoking-operator.asc'), operator.publicKey);
    const listed = await plugindexProcess(
      ['operators', 'add', '--registry', at, path.join(work, 'revoking-operator.asc')],
      { cwd: work },
    );
    expect(listed.code, listed.stderr).toBe(0);
    const revoke = { action: 'revoke-key', fingerprint: key.fingerprint, reason: 'key lost' } as const;
    await writeFile(
      path.join(at, 'incoming', 'revoke.json'),
      (await signedAction(revoke, operator, { registry: 'http://127.0.0.1:8080', now: new Date() })).bytes,
    );
    const revoked = await plugindexProcess(['process', '--registry', at], { cwd: work });
    expect(revoked.code, revoked.stdout).toBe(0);
    const doc = JSON.parse(await readFile(docFile, 'utf8')) as PluginDocument;
    expect(doc.versions.map((v) => [v.version, v.publisher_revoked?.reason])).toEqual([
      ['1.0.0', 'key lost'],
    ]);
  });

  it('refuses a fingerprint or label it does not list (TRUST_ENTRY_NOT_FOUND, exit 1), writing nothing', async () => {
    const at = await registryTrusting('unknown', { ...(await testKey('known')), label: 'known' });
    const before = await treeOf(at);
    for (const given of ['F'.repeat(40), 'nobody']) {
      const refused = await plugindexProcess(['publishers', 'remove', '--registry', at, given], {
        cwd: work,
      });
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(
        `TRUST_ENTRY_NOT_FOUND: ${path.join(at, 'plugindex.json')} lists no publisher key`,
      );
    }
    expect(await treeOf(at)).toEqual(before);
  });

  it('refuses a label two keys share (exit 2), naming both fingerprints, writing nothing', async () => {
    const [one, two] = [await testKey('twin-one'), await testKey('twin-two')];
    const at = await registryTrusting('twins');
    for (const [i, key] of [one, two].entries()) {
      await writeFile(path.join(work, `twin-${i}.asc`), key.publicKey);
      const added = await plugindexProcess(
        [
          'publishers',
          'add',
          '--registry',
          at,
          path.join(work, `twin-${i}.asc`),
          '--names',
          'demo-*',
          '--label',
          'twin',
        ],
        { cwd: work },
      );
      expect(added.code, added.stderr).toBe(0);
    }
    const before = await treeOf(at);
    const refused = await plugindexProcess(['publishers', 'remove', '--registry', at, 'twin'], { cwd: work });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(one.fingerprint);
    expect(refused.stderr).toContain(two.fingerprint);
    expect(await treeOf(at)).toEqual(before);
  });

  it('refuses while a key rotation is under way (ROTATION_PENDING, exit 1), writing nothing', async () => {
    const key = await testKey('rotating');
    const at = await registryTrusting('rotating', { ...key, label: 'rotating' });
    await writeFile(path.join(at, 'state', 'rotation-pending.json'), '{}');
    const before = await treeOf(at);
    const refused = await plugindexProcess(['publishers', 'remove', '--registry', at, key.fingerprint], {
      cwd: work,
    });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('ROTATION_PENDING');
    expect(await treeOf(at)).toEqual(before);
  });
});

describe('when publishers list is given an option of add', () => {
  it.each([
    ['--names', 'acme-*'],
    ['--label', 'ACME'],
  ])('refuses %s as a usage error (exit 2) rather than list every publisher', async (option, value) => {
    const listed = await plugindexProcess(['publishers', 'list', '--registry', dir, option, value], {
      cwd: work,
    });
    expect(listed.code).toBe(2);
    expect(listed.stderr).toContain(`${option} is not an option of publishers list`);
    expect(listed.stdout).toBe('');
  });
});

describe('when the action is mistyped', () => {
  it.each([
    ['lst', 'list'],
    ['ad', 'add'],
    ['remov', 'remove'],
  ])(
    'names "%s" back with the action it most likely meant (exit 2), as every other command',
    async (typed, meant) => {
      // Before, the shape of every action alone, where `registry ad` and `owners lst` said which one was meant.
      const refused = await plugindexProcess(['publishers', typed, '--registry', dir], { cwd: work });
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain(`unknown publishers action "${typed}": did you mean "${meant}"?`);
      expect(refused.stdout).toBe('');
    },
  );

  it('says so before asking for --registry, and under --json prints the failure as JSON', async () => {
    const refused = await plugindexProcess(['publishers', 'lsit', '--json'], { cwd: work });
    expect(refused.code).toBe(2);
    expect(JSON.parse(refused.stdout)).toEqual({
      ok: false,
      error: { code: 'USAGE', message: expect.stringContaining('did you mean "list"?') },
    });
  });
});

describe('when a program asks publishers for --json', () => {
  /** The entry as every --json answer gives it. */
  const entry = (fingerprint: string, names: string[], label: string | null) => ({
    fingerprint,
    names,
    label,
  });

  it('prints the list after add, list and remove in one shape, add and remove with the entry they changed', async () => {
    const at = path.join(work, 'json-publishers');
    await initRegistry(at, { name: 'j', url: 'http://127.0.0.1:8080' });
    const [first, second] = [await testKey('json-first'), await testKey('json-second')];
    await writeFile(path.join(work, 'json-first.asc'), first.publicKey);
    await writeFile(path.join(work, 'json-second.asc'), second.publicKey);
    const run = async (...args: string[]) => {
      const result = await plugindexProcess(['publishers', ...args, '--registry', at, '--json'], {
        cwd: work,
      });
      expect(result.code, result.stderr).toBe(0);
      return JSON.parse(result.stdout) as unknown;
    };

    // Act and assess: empty, then two added (the second unlabelled: its user ID is the label), one removed.
    expect(await run('list')).toEqual({ policy: 'open', ownership: 'first-come', publishers: [] });
    const a = entry(first.fingerprint, ['first-*'], 'ACME');
    expect(
      await run('add', path.join(work, 'json-first.asc'), '--names', 'first-*', '--label', 'ACME'),
    ).toEqual({ added: a, policy: 'restricted', ownership: 'first-come', publishers: [a] });
    const added = (await run('add', path.join(work, 'json-second.asc'), '--names', 'second-*,other-*')) as {
      added: { label: string | null };
    };
    const b = entry(second.fingerprint, ['second-*', 'other-*'], added.added.label);
    expect(added).toEqual({ added: b, policy: 'restricted', ownership: 'first-come', publishers: [a, b] });
    expect(await run('list')).toEqual({ policy: 'restricted', ownership: 'first-come', publishers: [a, b] });
    expect(await run('remove', 'ACME')).toEqual({
      removed: a,
      policy: 'restricted',
      ownership: 'first-come',
      publishers: [b],
    });
    expect(await run('list')).toEqual({ policy: 'restricted', ownership: 'first-come', publishers: [b] });
  });

  it('gives the entry a key added again replaced, as its text names the names it no longer has', async () => {
    // The text said "no longer for first-*"; --json gave the new entry alone, the names it lost unsaid.
    const at = path.join(work, 'json-readded');
    await initRegistry(at, { name: 'j', url: 'http://127.0.0.1:8080' });
    const key = await testKey('json-readded');
    await writeFile(path.join(work, 'json-readded.asc'), key.publicKey);
    const add = async (names: string) => {
      const result = await plugindexProcess(
        [
          'publishers',
          'add',
          path.join(work, 'json-readded.asc'),
          '--names',
          names,
          '--registry',
          at,
          '--json',
        ],
        { cwd: work },
      );
      expect(result.code, result.stderr).toBe(0);
      return JSON.parse(result.stdout) as Record<string, unknown>;
    };
    const first = await add('first-*,shared-*');
    expect(first).not.toHaveProperty('replaced');
    const label = (first.added as { label: string | null }).label;
    const again = await add('shared-*,later-*');
    expect(again).toMatchObject({
      added: entry(key.fingerprint, ['shared-*', 'later-*'], label),
      replaced: entry(key.fingerprint, ['first-*', 'shared-*'], label),
    });
  });
});

describe('when the key to trust is one the operator revoked', () => {
  it('refuses it, KEY_REVOKED (exit 1), as publisher or operator, the config as it was', async () => {
    // Prepare: a key that published, then revoked (keys/revoked.json). `publishers add` said "trusted X for
    // leak-*" and `operators add` "it may sign every action", while the registry refuses every bundle and
    // action it signs (PUBLISHER_KEY_REVOKED, ACTION_KEY_REVOKED).
    const registry = path.join(work, 'revoking');
    await initRegistry(registry, { name: 'r', url: 'http://127.0.0.1:8080' });
    const leaked = await testKey('leaked');
    const operator = await testKey('revoking-operator');
    const files = {
      leaked: path.join(work, 'leaked.asc'),
      operator: path.join(work, 'revoking-operator.asc'),
      operatorSecret: path.join(work, 'revoking-operator-secret.asc'),
      bundle: path.join(work, 'leak.tgz'),
    };
    await writeFile(files.leaked, leaked.publicKey);
    await writeFile(files.operator, operator.publicKey);
    await writeFile(files.operatorSecret, operator.secretKey);
    await writeFile(
      files.bundle,
      await makeBundle({ manifest: validManifest({ name: 'leak-tool' }), signer: leaked }),
    );
    expect((await plugindex('operators', 'add', '--registry', registry, files.operator)).code).toBe(0);
    expect((await plugindex('publish', files.bundle, '--registry', registry)).code).toBe(0);
    const revoked = await plugindex(
      ...['operator', 'revoke', leaked.fingerprint, '--reason', 'leaked'],
      ...['--key', files.operatorSecret, '--registry', registry],
    );
    expect(revoked.code, revoked.stdout + revoked.stderr).toBe(0);
    const config = await readFile(path.join(registry, 'plugindex.json'), 'utf8');

    // Act
    const asPublisher = await plugindex(
      'publishers',
      'add',
      '--registry',
      registry,
      files.leaked,
      '--names',
      'leak-*',
    );
    const asOperator = await plugindex('operators', 'add', '--registry', registry, files.leaked);

    // Assess
    for (const refused of [asPublisher, asOperator]) {
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(
        `KEY_REVOKED: ${leaked.fingerprint} was revoked by the registry's operator`,
      );
      expect(refused.stdout).toBe('');
    }
    expect(await readFile(path.join(registry, 'plugindex.json'), 'utf8')).toBe(config);
  });
});
