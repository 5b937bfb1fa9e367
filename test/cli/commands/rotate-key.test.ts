/**
 * `plugindex rotate-key` as a user runs it: the built command as a process, on a local registry that
 * `plugindex serve` serves over HTTP, and a client machine (its own PLUGINDEX_* folders) that pinned the
 * first key. Two rotations, the client following them (`registry update`, `list`, `install`, `verify
 * --url`), refusals that change nothing, `--output`, and a rotation interrupted part way then finished by
 * running the command again.
 */
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initRegistry, openRegistry, SECRET_KEY_FILE } from '../../../cli/local/registry.ts';
import { PENDING_ROTATION_FILE, RETIRED_KEYS_DIR } from '../../../cli/local/rotate-key.ts';
import { SNAPSHOT_KEY } from '../../../index-builder/layout.ts';
import type { SnapshotDocument } from '../../../index-builder/model.ts';
import { processSubmissions, refreshSnapshot } from '../../../index-builder/pipeline/index.ts';
import { rotateRegistryKey } from '../../../index-builder/pipeline/rotate.ts';
import { readSignedRotation, signRotation } from '../../../index-builder/rotation.ts';
import { createSigner, generateKeyPair } from '../../../index-builder/signing.ts';
import type { PutOptions, Store } from '../../../index-builder/store.ts';
import { type CommandResult, clientHomes, plugindexProcess } from '../../support/cli.ts';
import { encode, KEYS_CREATED, makeBundle, validManifest } from '../../support/fixtures.ts';
import { type ServingRegistry, startServe } from '../../support/serve.ts';
import { SMALL_ORDER_POINTS, smallOrderKey } from '../../support/small-order-key.ts';
import { treeOf } from '../../support/tree.ts';

const NAME = 'rotate-demo';

/** The registries' own URL; the tests serve each elsewhere, a mirror of it (`verify --url REGISTRY_URL --mirror`). */
const REGISTRY_URL = 'http://127.0.0.1:1';
let work: string;
let served: ServingRegistry | undefined;

/** The built command, with this test's client folders. */
function plugindex(...args: string[]): Promise<CommandResult> {
  // The test's own limit (60 s) is the only one these runs had before the shared runner.
  return plugindexProcess(args, {
    cwd: work,
    env: clientHomes(path.join(work, 'client')),
    timeoutMs: 60_000,
  });
}

/** `plugindex verify` of REGISTRY_URL at its mirror `mirror`, from the key in the file `pinned`. */
function verifyMirror(mirror: string, pinned: string): Promise<CommandResult> {
  return plugindex('verify', '--url', REGISTRY_URL, '--mirror', mirror, '--key', pinned);
}

async function keyFile(name: string): Promise<{ file: string; fingerprint: string; secretKey: string }> {
  const pair = await generateKeyPair({ name: `operator ${name}` });
  const file = path.join(work, `${name}.asc`);
  await writeFile(file, pair.secretKey, { mode: 0o600 });
  return { file, fingerprint: pair.fingerprint, secretKey: pair.secretKey };
}

async function registryWithPlugin(dir: string, versions: readonly string[]): Promise<string> {
  const { fingerprint } = await initRegistry(dir, { name: 'Rotating', url: REGISTRY_URL });
  await publish(dir, versions);
  return fingerprint;
}

async function publish(dir: string, versions: readonly string[]): Promise<void> {
  for (const version of versions) {
    const file = path.join(work, `${NAME}-${version}.tgz`);
    await writeFile(
      file,
      await makeBundle({
        manifest: validManifest({ name: NAME, version }),
        artifacts: [{ os: 'linux', arch: 'amd64', name: NAME, body: encode(`#!/bin/sh\necho ${version}\n`) }],
      }),
    );
    const published = await plugindex('publish', file, '--registry', dir);
    expect(published.code, published.stderr).toBe(0);
  }
}

async function snapshotOf(dir: string): Promise<SnapshotDocument> {
  return JSON.parse(await readFile(path.join(dir, 'public', SNAPSHOT_KEY), 'utf8'));
}

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'plugindex-rotate-key-'));
});
afterAll(async () => {
  await served?.stop();
  await rm(work, { recursive: true, force: true });
});

describe('when an operator rotates a served registry key twice', () => {
  let dir: string;
  let first: string;
  let firstKey: string;

  beforeAll(async () => {
    dir = path.join(work, 'registry');
    first = await registryWithPlugin(dir, ['1.0.0']);
    firstKey = path.join(work, 'first-public.asc');
    await writeFile(firstKey, await readFile(path.join(dir, 'public/keys/registry.asc')));
    served = await startServe(dir);
    const added = await plugindex('registry', 'add', 'main', served.url, '--key', firstKey);
    expect(added.code, added.stderr).toBe(0);
    const installed = await plugindex('install', NAME);
    expect(installed.code, installed.stderr).toBe(0);
  }, 60_000);

  it('publishes each rotation, keeps each old key retired (0600), and the client follows both', async () => {
    const keys = [await keyFile('second'), await keyFile('third')];
    let previous = first;
    for (const [i, key] of keys.entries()) {
      const rotated = await plugindex('rotate-key', '--registry', dir, '--new-key', key.file);
      expect(rotated.code, rotated.stderr).toBe(0);
      expect(rotated.stdout).toContain(`published rotation ${i + 1}: key ${previous} -> ${key.fingerprint}`);
      const retired = path.join(dir, RETIRED_KEYS_DIR, `${previous}.asc`);
      expect((await stat(retired)).mode & 0o777).toBe(0o600);
      expect(await readFile(path.join(dir, SECRET_KEY_FILE), 'utf8')).toBe(key.secretKey);
      previous = key.fingerprint;
    }
    expect(await snapshotOf(dir)).toMatchObject({ key_rotations: 2, key_fingerprint: previous });
    await publish(dir, ['1.1.0']);

    const updated = await plugindex('registry', 'update', 'main');
    expect(updated.code, updated.stderr).toBe(0);
    expect(updated.stdout).toContain(`key ${previous}`);
    expect(updated.stdout).toContain(`followed 2 signed rotation(s) from ${first} to ${previous}`);
    const listed = await plugindex('registry', 'list');
    expect(listed.stdout).toContain(`key ${previous}`);
    const installed = await plugindex('install', `${NAME}@1.1.0`);
    expect(installed.code, installed.stderr).toBe(0);
    const verified = await plugindex('verify');
    expect(verified.code, verified.stdout).toBe(0);

    const whole = await verifyMirror(served?.url as string, firstKey);
    expect(whole.code, whole.stderr).toBe(0);
    expect(whole.stdout).toContain(`key ${previous}`);
    expect(whole.stdout).toContain(
      `followed 2 signed rotation(s), ${first} -> ${keys[0]?.fingerprint} -> ${previous}`,
    );
  });

  it('refuses the current key as the new one, and a missing key file, changing nothing', async () => {
    const before = await treeOf(dir);
    const current = path.join(work, 'current.asc');
    await writeFile(current, await readFile(path.join(dir, SECRET_KEY_FILE)));
    const same = await plugindex('rotate-key', '--registry', dir, '--new-key', current);
    expect(same.code).toBe(1);
    expect(same.stderr).toContain('ROTATION_INVALID /rotation/next/fingerprint');
    const missing = await plugindex(
      'rotate-key',
      '--registry',
      dir,
      '--new-key',
      path.join(work, 'nope.asc'),
    );
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('FILE_NOT_FOUND');
    const unnamed = await plugindex('rotate-key', '--registry', dir);
    expect(unnamed.code).toBe(2);
    expect(await treeOf(dir)).toEqual(before);
  });

  it('refuses a public key as --new-key with KEY_INVALID naming the option and the file, changing nothing', async () => {
    // "not an armored OpenPGP secret key: Armored text not of type private key" named neither.
    const before = await treeOf(dir);
    const fresh = await generateKeyPair({ name: 'operator public only' });
    const file = path.join(work, 'public-only.asc');
    await writeFile(file, fresh.publicKey);
    const refused = await plugindex('rotate-key', '--registry', dir, '--new-key', file);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(
      `KEY_INVALID: --new-key ${file} is a public key, not the secret key that signs: give the secret key`,
    );
    expect(await treeOf(dir)).toEqual(before);
  });

  it('refuses a new key whose Ed25519 point has small order with KEY_UNTRUSTED naming it, changing nothing', async () => {
    // Anyone could sign snapshots as such a key, and every client refuses what it signs.
    const before = await treeOf(dir);
    const weak = smallOrderKey(SMALL_ORDER_POINTS.identity, KEYS_CREATED);
    const file = path.join(work, 'small-order.asc');
    await writeFile(file, weak.secretKey, { mode: 0o600 });
    const refused = await plugindex('rotate-key', '--registry', dir, '--new-key', file);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`KEY_UNTRUSTED: the signing key ${weak.fingerprint} cannot be trusted`);
    expect(refused.stderr).toContain('is an Ed25519 point of small order');
    expect(await treeOf(dir)).toEqual(before);
  });

  it('with --output, only writes the signed rotation', async () => {
    const before = await treeOf(dir);
    const next = await keyFile('fourth');
    const output = path.join(work, 'rotation-3.json');
    const written = await plugindex(
      'rotate-key',
      '--registry',
      dir,
      '--new-key',
      next.file,
      '--output',
      output,
    );
    expect(written.code, written.stderr).toBe(0);
    expect(readSignedRotation(await readFile(output)).rotation).toMatchObject({
      sequence: 3,
      next: { fingerprint: next.fingerprint },
    });
    expect(await treeOf(dir)).toEqual(before);
  });

  it('never writes the rotation over the new key it signs with (OUTPUT_OVER_INPUT, exit 2), changing nothing', async () => {
    // Written over it, the new key would be gone, and with it the rotation's only way to be finished.
    const before = await treeOf(dir);
    const next = await keyFile('fifth');
    const refused = await plugindex(
      'rotate-key',
      '--registry',
      dir,
      '--new-key',
      next.file,
      '--output',
      next.file,
    );
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`OUTPUT_OVER_INPUT: --output ${next.file} is`);
    expect(await readFile(next.file, 'utf8')).toBe(next.secretKey);
    expect(await treeOf(dir)).toEqual(before);
  });
});

describe('when a published plugin document was edited by someone else', () => {
  it('refuses to rotate, changing nothing, until the operator takes the documents as they are', async () => {
    const dir = path.join(work, 'edited');
    await registryWithPlugin(dir, ['1.0.0']);
    const document = path.join(dir, 'public/plugins', NAME, 'index.json');
    const edited = JSON.parse(await readFile(document, 'utf8'));
    edited.description = 'edited in the published store';
    await writeFile(document, JSON.stringify(edited));
    const before = await treeOf(dir);
    const next = await keyFile('after-edit');

    const refused = await plugindex('rotate-key', '--registry', dir, '--new-key', next.file);

    // Before the key file is swapped: the registry still signs with its key, as a publish refuses too.
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('PUBLISHED_DOCUMENT_ALTERED');
    expect(refused.stderr).toContain(`plugins/${NAME}/index.json`);
    expect(await treeOf(dir)).toEqual(before);
    const rebuilt = await plugindex('rebuild', '--registry', dir);
    expect(rebuilt.code, rebuilt.stderr).toBe(0);
    const rotated = await plugindex('rotate-key', '--registry', dir, '--new-key', next.file);
    expect(rotated.code, rotated.stderr).toBe(0);
    expect(await snapshotOf(dir)).toMatchObject({ key_rotations: 1, key_fingerprint: next.fingerprint });
  }, 60_000);
});

/** A site store that fails every write of `key`, as a full disk or a killed process would stop there. */
function failingOn(store: Store, key: string): Store {
  return new Proxy(store, {
    get(target, property, receiver) {
      if (property === 'put')
        return async (k: string, body: Uint8Array, options: PutOptions) => {
          if (k === key) throw new Error(`interrupted before writing ${k}`);
          return target.put(k, body, options);
        };
      const value = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

describe('when a rotation is interrupted part way', () => {
  it('is finished by running the command again, and refuses another key meanwhile', async () => {
    const dir = path.join(work, 'interrupted');
    const first = await registryWithPlugin(dir, ['1.0.0', '2.0.0']);
    // The first key's public part, as a client pinned it (the retired copy below is its secret key).
    const firstPublic = await readFile(path.join(dir, 'public/keys/registry.asc'), 'utf8');
    const next = await keyFile('interrupted-next');
    // The state a run of rotate-key leaves when it dies re-signing: the rotation kept as pending, the old
    // key retired and the new one installed, the rotation published and half the registry re-signed.
    const { context } = await openRegistry(dir);
    const newSigner = await createSigner(next.secretKey);
    const { bytes } = await signRotation({
      registry: context.config.url,
      sequence: 1,
      previous: context.signer,
      next: newSigner,
      now: new Date(),
    });
    await writeFile(path.join(dir, PENDING_ROTATION_FILE), bytes);
    await mkdir(path.join(dir, RETIRED_KEYS_DIR), { recursive: true });
    await writeFile(
      path.join(dir, RETIRED_KEYS_DIR, `${first}.asc`),
      await readFile(path.join(dir, SECRET_KEY_FILE)),
      { mode: 0o600 },
    );
    await writeFile(path.join(dir, SECRET_KEY_FILE), next.secretKey, { mode: 0o600 });
    await expect(
      rotateRegistryKey(
        { ...context, site: failingOn(context.site, SNAPSHOT_KEY), signer: newSigner },
        bytes,
      ),
    ).rejects.toThrow(/interrupted/);
    expect(await snapshotOf(dir)).toMatchObject({ key_fingerprint: first });

    // Meanwhile nothing else signs: the command refuses while the rotation is pending, and the core
    // refuses to sign a snapshot with a key the published one does not name, outside the rotation.
    const before = await treeOf(path.join(dir, 'public'));
    const refresh = await plugindex('refresh', '--registry', dir);
    expect(refresh.code).toBe(1);
    expect(refresh.stderr).toContain('plugindex rotate-key');
    // It names the key the rotation goes to and where the rotation under way is kept, and the command that
    // finishes it, so the operator knows which key file to give.
    expect(refresh.stderr).toContain('ROTATION_PENDING');
    expect(refresh.stderr).toContain(`rotation 1 to key ${next.fingerprint}`);
    expect(refresh.stderr).toContain(path.join(dir, PENDING_ROTATION_FILE));
    expect(refresh.stderr).toContain(
      `plugindex rotate-key --registry ${dir} --new-key FILE, FILE the secret key ${next.fingerprint}`,
    );
    const installed = { ...context, signer: newSigner };
    await expect(refreshSnapshot(installed)).rejects.toMatchObject({
      name: 'KeyError',
      code: 'SIGNING_KEY_NOT_CURRENT',
    });
    await expect(processSubmissions(installed)).rejects.toMatchObject({
      name: 'KeyError',
      code: 'SIGNING_KEY_NOT_CURRENT',
    });
    expect(await treeOf(path.join(dir, 'public'))).toEqual(before);

    const other = await keyFile('interrupted-other');
    const refused = await plugindex('rotate-key', '--registry', dir, '--new-key', other.file);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('under way');

    const finished = await plugindex('rotate-key', '--registry', dir, '--new-key', next.file);
    expect(finished.code, finished.stderr).toBe(0);
    expect(finished.stdout).toContain(`finished rotation 1: key ${first} -> ${next.fingerprint}`);
    expect(await snapshotOf(dir)).toMatchObject({ key_fingerprint: next.fingerprint, key_rotations: 1 });
    await expect(stat(path.join(dir, PENDING_ROTATION_FILE))).rejects.toThrow(/ENOENT/);

    const server = await startServe(dir);
    try {
      const firstKey = path.join(work, 'interrupted-first.asc');
      await writeFile(firstKey, firstPublic);
      const whole = await verifyMirror(server.url, firstKey);
      expect(whole.code, whole.stderr).toBe(0);
      expect(whole.stdout).toContain('2 manifests');
    } finally {
      await server.stop();
    }
  }, 60_000);
});

describe('when an operator rotates the key because the old one was stolen (--compromised)', () => {
  it('marks the signed rotation, and a client that follows it refuses what the old key signed until reinstalled', async () => {
    // Prepare: a served registry, a client that installed 1.0.0 under the first key.
    const dir = path.join(work, 'compromised');
    const first = await registryWithPlugin(dir, ['1.0.0']);
    const server = await startServe(dir);
    try {
      const firstKey = path.join(work, 'compromised-first.asc');
      await writeFile(firstKey, await readFile(path.join(dir, 'public/keys/registry.asc')));
      const added = await plugindex('registry', 'add', 'stolen', server.url, '--key', firstKey);
      expect(added.code, added.stderr).toBe(0);
      // Its own folder and lock, from this registry alone (the registry above serves the same plugin).
      const pluginsDir = path.join(work, 'compromised-plugins');
      const lockfile = path.join(work, 'compromised.lock');
      const into = ['--registry', 'stolen', '--dir', pluginsDir, '--lockfile', lockfile];
      const installed = await plugindex('install', NAME, ...into);
      expect(installed.code, installed.stderr).toBe(0);
      const next = await keyFile('after-theft');

      // Act
      const rotated = await plugindex(
        'rotate-key',
        '--registry',
        dir,
        '--new-key',
        next.file,
        '--compromised',
      );

      // Assess: the mark is in the rotation both keys signed, and said.
      expect(rotated.code, rotated.stderr).toBe(0);
      expect(rotated.stdout).toContain(`published rotation 1: key ${first} -> ${next.fingerprint}`);
      expect(rotated.stdout).toContain(
        `marked compromised: clients that follow rotation 1 no longer trust key ${first}`,
      );
      const record = readSignedRotation(await readFile(path.join(dir, 'public/keys/rotation/1.json')));
      expect(record.rotation.compromised).toBe(true);

      const updated = await plugindex('registry', 'update', 'stolen');
      expect(updated.code, updated.stderr).toBe(0);
      const whole = await verifyMirror(server.url, firstKey);
      expect(whole.code, whole.stderr).toBe(0);
      expect(whole.stdout).toContain(`rotation 1 says key ${first} is no longer secret`);
      const refused = await plugindex('verify', '--dir', pluginsDir, '--lockfile', lockfile);
      expect(refused.code).toBe(3);
      expect(refused.stdout).toContain(`NOT verified ${NAME}@1.0.0: KEY_REVOKED:`);
      expect(refused.stdout).toContain(`plugindex install ${NAME}@1.0.0`);
      const again = await plugindex('install', `${NAME}@1.0.0`, ...into);
      expect(again.code, again.stderr).toBe(0);
      const verified = await plugindex('verify', '--dir', pluginsDir, '--lockfile', lockfile);
      expect(verified.code, verified.stdout).toBe(0);
    } finally {
      await server.stop();
    }
  }, 60_000);

  it('refuses to add the mark to a rotation under way that was signed without it, changing nothing', async () => {
    const dir = path.join(work, 'compromised-late');
    await registryWithPlugin(dir, ['1.0.0']);
    const next = await keyFile('compromised-late-next');
    const { context } = await openRegistry(dir);
    const { bytes } = await signRotation({
      registry: context.config.url,
      sequence: 1,
      previous: context.signer,
      next: await createSigner(next.secretKey),
      now: new Date(),
    });
    await writeFile(path.join(dir, PENDING_ROTATION_FILE), bytes);
    const before = await treeOf(dir);

    const refused = await plugindex('rotate-key', '--registry', dir, '--new-key', next.file, '--compromised');

    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('ROTATION_INVALID /rotation/compromised');
    expect(await treeOf(dir)).toEqual(before);
    // With --output, the mark is written into the rotation for an operator to check first.
    const fresh = path.join(work, 'compromised-output');
    await registryWithPlugin(fresh, ['1.0.0']);
    const output = path.join(work, 'compromised-rotation.json');
    const written = await plugindex(
      'rotate-key',
      '--registry',
      fresh,
      '--new-key',
      next.file,
      '--compromised',
      '--output',
      output,
    );
    expect(written.code, written.stderr).toBe(0);
    expect(written.stdout).toContain('(the old key marked compromised)');
    expect(readSignedRotation(await readFile(output)).rotation.compromised).toBe(true);
  }, 60_000);
});
