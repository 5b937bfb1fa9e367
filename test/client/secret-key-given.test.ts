/**
 * Every place the client reads key text as a public key to pin or verify by (a plugin set's `key:`,
 * `addRegistry`'s armored pin, `resetRegistryTrust` of a set's registry, `reference` of a manifest URL with
 * a key) refuses a secret key (SECRET_KEY_GIVEN), and one relabelled as a public key's armor too: taking its
 * public part in silence left the secret key where others read it (a set file committed to git), unsaid.
 * Real HTTP, real keys; nothing is pinned, fetched or installed.
 */

import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { armor, enums, unarmor } from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRegistryServer, listenRegistryServer } from '../../cli/local/server.ts';
import { verifyRegistry } from '../../cli/verify.ts';
import { ClientError } from '../../client/errors.ts';
import { REGISTRY_PUBLIC_KEY_KEY } from '../../index-builder/layout.ts';
import { processSubmissions } from '../../index-builder/pipeline/index.ts';
import { httpClient } from '../support/client.ts';
import { encode, makeBundle, makeRegistry, type TestRegistry, validManifest } from '../support/fixtures.ts';
import { gpgSecretSubkeys } from '../support/gpg.ts';
import { publicPrimaryWithSecretSubkeys } from '../support/openpgp-packets.ts';
import { servedOnePlugin } from '../support/served-registry.ts';

const NAME = 'demo-plugin';
const LINUX = { os: 'linux', arch: 'amd64' } as const;

let registry: TestRegistry;
let base: string;
let close: () => Promise<void>;
let requests: string[];
let root: string;

beforeAll(async () => {
  ({ registry, base, close, requests } = await servedOnePlugin(NAME, encode('#!/bin/sh\necho demo\n')));
  root = await mkdtemp(join(tmpdir(), 'plugindex-secret-key-given-'));
});
afterAll(async () => {
  await close();
  await rm(root, { recursive: true, force: true });
});

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

let machines = 0;

/**
 * One public key's armor holding a public key and then a secret key (`cat public.gpg secret.gpg`, armored):
 * openpgp.js reads the first key alone, a public one.
 */
async function publicThenSecret(publicKey: string, secretKey: string): Promise<string> {
  const [first, second] = await Promise.all([unarmor(publicKey), unarmor(secretKey)]);
  const data = new Uint8Array([...(first.data as Uint8Array), ...(second.data as Uint8Array)]);
  return armor(enums.armor.publicKey, data);
}

describe.each([
  ['the registry’s secret key', async (secret: string) => secret],
  [
    'its secret key under a public key’s armor header',
    async (secret: string) => secret.replaceAll('PGP PRIVATE KEY BLOCK', 'PGP PUBLIC KEY BLOCK'),
  ],
  [
    'its public key and then its secret key in one public key’s armor',
    (secret: string) => publicThenSecret(registry.registryKey.publicKey, secret),
  ],
  [
    'its public primary key holding its secret subkey',
    async (secret: string) => (await publicPrimaryWithSecretSubkeys(secret)).armored,
  ],
])('when %s is given where a public key is read', (_, text) => {
  async function machine() {
    machines += 1;
    const home = join(root, `m${machines}`);
    await mkdir(home, { recursive: true });
    return { home, client: httpClient(home), key: await text(registry.registryKey.secretKey) };
  }
  const refusal = (message: string) => ({
    name: 'ClientError',
    code: 'SECRET_KEY_GIVEN',
    message: expect.stringContaining(message),
  });

  it('addRegistry, resetRegistryTrust and reference refuse it, pinning nothing', async () => {
    const { home, client, key } = await machine();
    try {
      const before = requests.length;
      await expect(
        client.addRegistry({ name: 'main', url: base, pin: { armored: key } }),
      ).rejects.toMatchObject(
        refusal(`the registry key given (${registry.registryKey.fingerprint}) is a secret key`),
      );
      await expect(client.resetRegistryTrust({ url: base, armoredKey: key })).rejects.toMatchObject(
        refusal('gpg --export --armor'),
      );
      await expect(
        client.reference(`${base}/plugins/${NAME}/1.0.0/manifest.json`, { key }),
      ).rejects.toBeInstanceOf(ClientError);
      await expect(
        client.reference(`${base}/plugins/${NAME}/1.0.0/manifest.json`, { key }),
      ).rejects.toMatchObject(refusal('the key given'));
      expect(requests.slice(before)).toEqual([]);
      expect(await client.listRegistries()).toEqual([]);
      expect(await exists(join(home, 'data', 'trust'))).toBe(false);
    } finally {
      await client.close();
    }
  });

  it('a plugin set naming it as a provider’s key is refused at its key, installing and verifying nothing', async () => {
    const { home, client, key } = await machine();
    const repo = join(home, 'repo');
    await mkdir(repo, { recursive: true });
    await writeFile(join(repo, 'registry.asc'), key);
    const set = join(repo, 'plugins.yaml');
    await writeFile(
      set,
      `plugins:\n  install_location: ./plugins\n  providers:\n    - { type: registry, name: main, url: ${base}, key: ./registry.asc }\n  plugins:\n    - { provider: main, name: ${NAME} }\n`,
    );
    try {
      const before = requests.length;
      const said = `${set}#/plugins/providers/0/key: ${join(repo, 'registry.asc')} is a secret key`;
      await expect(client.installSet(set, { home: '/nonexistent' })).rejects.toMatchObject(refusal(said));
      await expect(client.verifySet(set, { home: '/nonexistent' })).rejects.toMatchObject(refusal(said));
      expect(requests.slice(before)).toEqual([]);
      expect((await readdir(repo)).sort()).toEqual(['plugins.yaml', 'registry.asc']);
    } finally {
      await client.close();
    }
  });
});

describe('when a plugin set names a binary (unarmored) secret key as a provider’s key', () => {
  // gpg --export-secret-keys without --armor: the set read the file as text, found no armored key and refused
  // it PLUGIN_SET_INVALID, never saying the file was a secret key that has left its owner.
  const secretBytes = async () => (await unarmor(registry.registryKey.secretKey)).data as Uint8Array;
  it.each([
    ['a binary secret key', secretBytes],
    [
      'a binary public key and then its secret key (cat public.gpg secret.gpg)',
      async () => {
        const first = (await unarmor(registry.registryKey.publicKey)).data as Uint8Array;
        return new Uint8Array([...first, ...(await secretBytes())]);
      },
    ],
    [
      'a binary public primary key holding its secret subkey',
      async () => (await publicPrimaryWithSecretSubkeys(registry.registryKey.secretKey)).binary,
    ],
  ])('refuses %s SECRET_KEY_GIVEN naming the file and its pointer, fetching nothing', async (_, bytesOf) => {
    machines += 1;
    const repo = join(root, `m${machines}`, 'repo');
    await mkdir(repo, { recursive: true });
    const keyFile = join(repo, 'registry.gpg');
    await writeFile(keyFile, await bytesOf());
    const set = join(repo, 'plugins.yaml');
    await writeFile(
      set,
      `plugins:\n  install_location: ./plugins\n  providers:\n    - { type: registry, name: main, url: ${base}, key: ./registry.gpg }\n  plugins:\n    - { provider: main, name: ${NAME} }\n`,
    );
    const client = httpClient(join(root, `m${machines}`));
    try {
      const before = requests.length;
      const said = `${set}#/plugins/providers/0/key: ${keyFile} is a secret key (${registry.registryKey.fingerprint})`;
      for (const attempt of [
        () => client.installSet(set, { home: '/nonexistent' }),
        () => client.verifySet(set, { home: '/nonexistent' }),
      ]) {
        await expect(attempt()).rejects.toBeInstanceOf(ClientError);
        await expect(attempt()).rejects.toMatchObject({
          code: 'SECRET_KEY_GIVEN',
          message: expect.stringContaining(said),
        });
      }
      expect(requests.slice(before)).toEqual([]);
      expect((await readdir(repo)).sort()).toEqual(['plugins.yaml', 'registry.gpg']);
    } finally {
      await client.close();
    }
  });
});

describe('when a registry serves its secret key where its public key belongs', () => {
  it.each([
    ['as it is', async (secret: string, _publicKey: string) => secret],
    [
      'under a public key’s armor header',
      async (secret: string, _publicKey: string) =>
        secret.replaceAll('PGP PRIVATE KEY BLOCK', 'PGP PUBLIC KEY BLOCK'),
    ],
    // keys/registry.asc made by `cat public.asc secret.asc`: the public key's block is read first.
    ['after its public key’s block', async (secret: string, publicKey: string) => `${publicKey}\n${secret}`],
    [
      'after its public key in one public key’s armor',
      (secret: string, publicKey: string) => publicThenSecret(publicKey, secret),
    ],
    [
      'as its public primary key holding its secret subkey',
      async (secret: string, _publicKey: string) => (await publicPrimaryWithSecretSubkeys(secret)).armored,
    ],
  ])(
    'registry add by fingerprint or on first use, and verify without --key, refuse it (%s), pinning nothing',
    async (_, text) => {
      const served = await makeRegistry();
      await processSubmissions(
        served.context,
        await served.submit(
          await makeBundle({
            manifest: validManifest({ name: NAME, version: '1.0.0' }),
            artifacts: [{ ...LINUX, name: NAME, body: encode('#!/bin/sh\necho demo\n') }],
          }),
        ),
      );
      // A deploy that copied the wrong file of the key pair.
      const servedText = await text(served.registryKey.secretKey, served.registryKey.publicKey);
      await served.site.put(REGISTRY_PUBLIC_KEY_KEY, encode(servedText), {
        contentType: 'application/pgp-keys',
        cacheControl: 'no-cache',
      });
      // Served as a static host or a CDN would send it: the local server itself sends no file that begins
      // as secret key material (server.ts SecretGuard), and the client's own refusal is what is held here.
      const registryServer = createRegistryServer({ site: served.site });
      const keyHost = createServer((req, res) => {
        if (new URL(req.url ?? '/', 'http://h').pathname !== `/${REGISTRY_PUBLIC_KEY_KEY}`) {
          registryServer.emit('request', req, res);
          return;
        }
        res.writeHead(200, { 'content-type': 'application/pgp-keys' });
        res.end(servedText);
      });
      keyHost.on('close', () => registryServer.close());
      const listening = await listenRegistryServer(keyHost, 0);
      machines += 1;
      const home = join(root, `m${machines}`);
      const client = httpClient(home);
      const said = `${listening.url}/${REGISTRY_PUBLIC_KEY_KEY} is a secret key (${served.registryKey.fingerprint})`;
      try {
        for (const pin of [
          { fingerprint: served.registryKey.fingerprint },
          { trustOnFirstUse: true as const },
        ])
          await expect(client.addRegistry({ name: 'main', url: listening.url, pin })).rejects.toMatchObject({
            name: 'TrustError',
            code: 'KEY_INVALID',
            message: expect.stringContaining(said),
          });
        expect(await client.listRegistries()).toEqual([]);
        const stateFile = join(home, 'verify-state.json');
        await expect(verifyRegistry({ url: listening.url, stateFile })).rejects.toMatchObject({
          name: 'TrustError',
          code: 'KEY_INVALID',
          message: expect.stringContaining(said),
        });
        expect(await exists(stateFile)).toBe(false);
      } finally {
        await client.close();
        await listening.close();
      }
    },
  );
});

describe('when a plugin set or a pin names a key GnuPG exported with its secret subkeys', () => {
  // `gpg --export-secret-subkeys`, armored and binary (its primary key a stub without its secret), and its
  // secret subkey spliced into the public key's packets (a public primary key holding a secret subkey,
  // which openpgp.js reads as no key at all: the file was refused PLUGIN_SET_INVALID, the secret unsaid).
  const gpg = gpgSecretSubkeys();
  it.each([
    ['exported, armored', 'key.asc', gpg.exported.armored],
    ['exported, binary', 'key.gpg', gpg.exported.binary],
    ['spliced into its public key, armored', 'key.asc', gpg.spliced.armored],
    ['spliced into its public key, binary', 'key.gpg', gpg.spliced.binary],
  ] as const)(
    'refuses it (%s) SECRET_KEY_GIVEN, fetching and pinning nothing',
    async (_, name, key) => {
      machines += 1;
      const home = join(root, `m${machines}`);
      const repo = join(home, 'repo');
      await mkdir(repo, { recursive: true });
      const keyFile = join(repo, name);
      await writeFile(keyFile, key);
      const set = join(repo, 'plugins.yaml');
      await writeFile(
        set,
        `plugins:\n  install_location: ./plugins\n  providers:\n    - { type: registry, name: main, url: ${base}, key: ./${name} }\n  plugins:\n    - { provider: main, name: ${NAME} }\n`,
      );
      const client = httpClient(home);
      try {
        const before = requests.length;
        const said = `${set}#/plugins/providers/0/key: ${keyFile} is a secret key (${gpg.fingerprint})`;
        for (const attempt of [
          () => client.installSet(set, { home: '/nonexistent' }),
          () => client.verifySet(set, { home: '/nonexistent' }),
        ])
          await expect(attempt()).rejects.toMatchObject({
            name: 'ClientError',
            code: 'SECRET_KEY_GIVEN',
            message: expect.stringContaining(said),
          });
        if (typeof key === 'string')
          await expect(
            client.addRegistry({ name: 'main', url: base, pin: { armored: key } }),
          ).rejects.toMatchObject({
            code: 'SECRET_KEY_GIVEN',
            message: expect.stringContaining(`the registry key given (${gpg.fingerprint}) is a secret key`),
          });
        expect(requests.slice(before)).toEqual([]);
        expect(await client.listRegistries()).toEqual([]);
      } finally {
        await client.close();
      }
    },
    60_000,
  );
});
