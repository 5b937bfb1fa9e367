/**
 * A publisher holding an RFC 9580 v6 Ed25519 key (algorithm 27, made by openpgp.js with `v6Keys: true`, as
 * Sequoia makes them), end to end through the built command on a real local registry served over HTTP:
 * trusted with `publishers add`, its bundle published (a v6 signature, verified by openpgp.js), its yank and
 * deprecation applied as the plugin's owner, the log naming it by its 64 hex digits, and a client installing,
 * verifying and auditing from that log, its lock and plugin set naming the key. GnuPG 2.2 reads no v6 key,
 * so it plays no part here (the registry's own key stays v4, for it: e2e.test.ts).
 */
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as openpgp from 'openpgp';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { clientHomes, plugindexProcess } from '../support/cli.ts';
import { validManifest } from '../support/fixtures.ts';
import { freePort, type ServingRegistry, startServe } from '../support/serve.ts';

const NAME = 'v6-costs';

describe('when a publisher signs with a v6 key', () => {
  let work = '';
  let registry = '';
  let base = '';
  let fingerprint = '';
  let served: ServingRegistry | undefined;
  const cli = (args: readonly string[], cwd = work) =>
    plugindexProcess(args, { cwd, env: clientHomes(path.join(work, 'client')), timeoutMs: 60_000 });

  beforeAll(async () => {
    work = await mkdtemp(path.join(inject('tempRoot'), 'v6-publisher-'));
    registry = path.join(work, 'registry');
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const init = await cli(['init', '--registry', registry, '--name', 'V6 Registry', '--url', base]);
    expect(init.code, init.stderr).toBe(0);
    const generated = await openpgp.generateKey({
      type: 'curve25519',
      userIDs: [{ name: 'V6 Publisher', email: 'v6@example.com' }],
      format: 'armored',
      config: { v6Keys: true },
    });
    await mkdir(path.join(work, 'key'));
    await writeFile(path.join(work, 'key/secret.asc'), generated.privateKey, { mode: 0o600 });
    await writeFile(path.join(work, 'key/public.asc'), generated.publicKey);
    const key = await openpgp.readKey({ armoredKey: generated.publicKey });
    expect([key.keyPacket.version, key.keyPacket.algorithm]).toEqual([6, openpgp.enums.publicKey.ed25519]);
    fingerprint = key.getFingerprint().toUpperCase();
    await writeFile(
      path.join(work, 'manifest.json'),
      JSON.stringify(
        validManifest({
          name: NAME,
          display_name: 'V6 Costs',
          description: 'Published under a v6 key',
          metadata: { license: 'MIT' },
        }),
      ),
    );
    await writeFile(path.join(work, 'tool'), '#!/bin/sh\necho v6\n');
  });

  afterAll(async () => {
    await served?.stop();
  });

  it('is trusted by publishers add, and its bundle is published under it', async () => {
    const added = await cli([
      'publishers',
      'add',
      '--registry',
      registry,
      path.join(work, 'key/public.asc'),
      '--names',
      'v6-*',
    ]);
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toContain(`trusted ${fingerprint} for v6-*; policy is now restricted`);

    const bundle = path.join(work, 'v6.tgz');
    const packed = await cli([
      'pack',
      path.join(work, 'manifest.json'),
      '--artifact',
      `linux/amd64=${path.join(work, 'tool')}`,
      '--key',
      path.join(work, 'key/secret.asc'),
      '--out',
      bundle,
    ]);
    expect(packed.code, packed.stderr).toBe(0);
    expect(packed.stdout).toContain(`signed by ${fingerprint}`);

    // A restricted registry finds the configured key by the key ID the v6 signature names: the first 16 hex
    // digits of its fingerprint (the last 16, a v4 key's, name no configured key).
    const published = await cli(['publish', bundle, '--registry', registry]);
    expect(published.code, published.stdout + published.stderr).toBe(0);
    expect(published.stdout).toContain(`accepted ${NAME}@1.0.0`);
  });

  it("applies the owner's yank and deprecation signed by it, and logs each by its 64 hex digits", async () => {
    const key = ['--key', path.join(work, 'key/secret.asc'), '--registry', registry];
    const yanked = await cli(['yank', `${NAME}@1.0.0`, '--reason', 'rebuilt', ...key]);
    expect(yanked.code, yanked.stderr).toBe(0);
    expect(yanked.stdout).toContain(`accepted yank ${NAME}@1.0.0`);
    const unyanked = await cli(['unyank', `${NAME}@1.0.0`, ...key]);
    expect(unyanked.code, unyanked.stderr).toBe(0);
    const deprecated = await cli(['deprecate', NAME, '--message', 'use v6-costs-next', ...key]);
    expect(deprecated.code, deprecated.stderr).toBe(0);
    expect(deprecated.stdout).toContain(`accepted deprecate ${NAME}`);

    const log = await readFile(path.join(registry, 'public/log/000000.jsonl'), 'utf8');
    const entries = log
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; signer: string });
    expect(entries.map((e) => [e.type, e.signer])).toEqual([
      ['publish', fingerprint],
      ['yank', fingerprint],
      ['unyank', fingerprint],
      ['deprecate', fingerprint],
    ]);
  });

  it('is read by a client: install, its lock, verify, audit and a plugin set naming the key', async () => {
    served = await startServe(registry, Number(new URL(base).port));
    const registryKey = path.join(registry, 'public/keys/registry.asc');
    const add = await cli(['registry', 'add', 'v6reg', base, '--key', registryKey]);
    expect(add.code, add.stderr).toBe(0);
    const project = path.join(work, 'project');
    await mkdir(project);

    const installed = await cli(['install', NAME, '--platform', 'linux/amd64', '--dir', 'plugins'], project);
    expect(installed.code, installed.stderr).toBe(0);
    expect(installed.stdout).toContain(`installed ${NAME}@1.0.0`);
    const lock = JSON.parse(await readFile(path.join(project, 'plugindex.lock'), 'utf8'));
    expect(lock.plugins[NAME].publisher).toBe(fingerprint);

    // The lock is read back (it names the v6 key) and every signature checked again.
    const verified = await cli(['verify', '--dir', 'plugins'], project);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
    expect(verified.stdout).toContain(`verified ${NAME}@1.0.0`);
    const frozen = await cli(['install', '--frozen', '--dir', 'plugins'], project);
    expect(frozen.code, frozen.stderr).toBe(0);

    // The log read whole, every entry naming the v6 signer.
    const audit = await cli(['audit', NAME, '--json'], project);
    expect(audit.code, audit.stderr).toBe(0);
    expect(audit.stdout).toContain(fingerprint);
    const whole = await cli(['verify', '--url', base, '--key', registryKey], project);
    expect(whole.code, whole.stdout + whole.stderr).toBe(0);
    expect(whole.stdout).toContain('log: 4 entries');

    // A plugin set whose policy names the v6 key (in lower case, as one may copy it) installs from it.
    await writeFile(path.join(project, 'registry.asc'), await readFile(registryKey));
    const setNaming = (publisher: string) =>
      writeFile(
        path.join(project, 'plugins.yaml'),
        [
          'plugins:',
          '  install_location: ./set-plugins',
          '  providers:',
          `    - { type: registry, name: v6reg, url: ${base}, key: ./registry.asc }`,
          '  plugins:',
          `    - { provider: v6reg, name: ${NAME}, version: "1.0.0", platforms: [linux/amd64] }`,
          'policy:',
          `  publishers: ["${publisher}"]`,
          '',
        ].join('\n'),
      );
    await setNaming('B'.repeat(64));
    const otherKey = await cli(['install', '-c', 'plugins.yaml'], project);
    expect(otherKey.code).not.toBe(0);
    expect(otherKey.stderr).toContain(
      `is signed by publisher ${fingerprint}, which is not among policy.publishers`,
    );
    await setNaming(fingerprint.toLowerCase());
    const fromSet = await cli(['install', '-c', 'plugins.yaml'], project);
    expect(fromSet.code, fromSet.stdout + fromSet.stderr).toBe(0);
    expect(fromSet.stdout).toContain(`${NAME}@1.0.0`);
  });
});

describe('when an operator holds a v6 key', () => {
  it('is added by operators add, and its revoke-key naming a v6 publisher by 64 hex digits is applied and logged', async () => {
    const work = await mkdtemp(path.join(inject('tempRoot'), 'v6-operator-'));
    const cli = (args: readonly string[]) =>
      plugindexProcess(args, { cwd: work, env: clientHomes(path.join(work, 'client')), timeoutMs: 60_000 });
    const registry = path.join(work, 'registry');
    const init = await cli([
      'init',
      '--registry',
      registry,
      '--name',
      'V6 Ops',
      '--url',
      'http://127.0.0.1:9',
    ]);
    expect(init.code, init.stderr).toBe(0);
    const keys = await Promise.all(
      ['V6 Operator', 'V6 Publisher'].map((name) =>
        openpgp.generateKey({
          type: 'curve25519',
          userIDs: [{ name }],
          format: 'armored',
          config: { v6Keys: true },
        }),
      ),
    );
    const [operator, publisher] = keys as [(typeof keys)[0], (typeof keys)[0]];
    await writeFile(path.join(work, 'operator.asc'), operator.privateKey, { mode: 0o600 });
    await writeFile(path.join(work, 'operator.pub'), operator.publicKey);
    const revoked = (await openpgp.readKey({ armoredKey: publisher.publicKey }))
      .getFingerprint()
      .toUpperCase();

    await writeFile(path.join(work, 'publisher.pub'), publisher.publicKey);
    const added = await cli(['operators', 'add', '--registry', registry, path.join(work, 'operator.pub')]);
    expect(added.code, added.stderr).toBe(0);
    const trusted = await cli([
      'publishers',
      'add',
      '--registry',
      registry,
      path.join(work, 'publisher.pub'),
      '--names',
      'v6-*',
    ]);
    expect(trusted.code, trusted.stderr).toBe(0);
    // Given as gpg prints it, in groups of four and lower case: the action carries it as 64 uppercase digits.
    const spaced = revoked
      .toLowerCase()
      .replace(/(.{4})/g, '$1 ')
      .trim();
    const revoke = await cli([
      'operator',
      'revoke',
      spaced,
      '--reason',
      'key leaked',
      '--key',
      path.join(work, 'operator.asc'),
      '--registry',
      registry,
    ]);
    expect(revoke.code, revoke.stdout + revoke.stderr).toBe(0);

    const [entry] = (await readFile(path.join(registry, 'public/log/000000.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; signer: string });
    const operatorFingerprint = (await openpgp.readKey({ armoredKey: operator.publicKey }))
      .getFingerprint()
      .toUpperCase();
    expect(entry).toMatchObject({ type: 'revoke-key', signer: operatorFingerprint });
    const revokedKeys = await readFile(path.join(registry, 'public/keys/revoked.json'), 'utf8');
    expect(revokedKeys).toContain(revoked);
  });
});
