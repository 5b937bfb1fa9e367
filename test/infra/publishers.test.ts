/**
 * The deployed trust list: read and checked at synth (infra/publishers.ts), carried in the function assets,
 * and read back by the functions at cold start (functions/env.ts).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { App } from 'aws-cdk-lib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDeployedPublishers, readDeployedTrust } from '../../functions/env.ts';
import { AwsAdapterError } from '../../functions/errors.ts';
import { readPublicKey } from '../../index-builder/signing.ts';
import { bundleFunctions } from '../../infra/bundle-functions.ts';
import { InfraError } from '../../infra/errors.ts';
import { loadTrustedPublishers, loadTrustList, stageFunction } from '../../infra/publishers.ts';
import { PlugindexStack } from '../../infra/stack.ts';
import { testKey } from '../support/fixtures.ts';
import { gpgSecretSubkeysOnce } from '../support/gpg.ts';
import { publicPrimaryWithSecretSubkeys } from '../support/openpgp-packets.ts';
import { UNTRUSTED_KEYS } from '../support/untrusted-keys.ts';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'plugindex-publishers-'));
  await mkdir(path.join(dir, 'keys'));
  await writeFile(path.join(dir, 'keys/acme.asc'), (await testKey('publisher')).publicKey);
  await writeFile(path.join(dir, 'keys/other.asc'), (await testKey('other')).publicKey);
  await writeFile(path.join(dir, 'keys/secret.asc'), (await testKey('publisher')).secretKey);
  // Secret packets under a public key's armor header: openpgp.js reads them as the secret key.
  await writeFile(
    path.join(dir, 'keys/relabelled.asc'),
    (await testKey('publisher')).secretKey.replaceAll('PGP PRIVATE KEY BLOCK', 'PGP PUBLIC KEY BLOCK'),
  );
  // A public primary key holding a secret subkey (tag 7): openpgp.js reads it as no key at all.
  const careless = await testKey('publisher');
  await writeFile(
    path.join(dir, 'keys/subkey.asc'),
    (await publicPrimaryWithSecretSubkeys(careless.secretKey)).armored,
  );
  await writeFile(path.join(dir, 'keys/gpg-subkey.asc'), gpgSecretSubkeysOnce().spliced.armored);
  for (const [i, key] of UNTRUSTED_KEYS.entries())
    await writeFile(path.join(dir, `keys/untrusted-${i}.asc`), key.publicKey);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function listFile(name: string, value: unknown): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, typeof value === 'string' ? value : JSON.stringify(value));
  return file;
}

describe('when the deployment names trusted publishers', () => {
  it('reads each public key relative to the file and records its fingerprint', async () => {
    const file = await listFile('good.json', {
      publishers: [
        { key: 'keys/acme.asc', names: ['acme-*'], label: 'ACME' },
        { key: 'keys/other.asc', names: ['*'] },
      ],
    });

    const publishers = await loadTrustedPublishers(file);

    const acme = await readPublicKey((await testKey('publisher')).publicKey);
    const other = await readPublicKey((await testKey('other')).publicKey);
    expect(publishers).toEqual([
      { fingerprint: acme.fingerprint, names: ['acme-*'], key: acme.armored, label: 'ACME' },
      { fingerprint: other.fingerprint, names: ['*'], key: other.armored },
    ]);
  });

  it.each([
    ['not JSON', '{"publishers": [', 'cannot read it as JSON'],
    ['no list', { publishers: [] }, '#/publishers: expected a non-empty array'],
    ['no names', { publishers: [{ key: 'keys/acme.asc' }] }, '#/publishers/0/names: expected'],
    ['a blank name', { publishers: [{ key: 'keys/acme.asc', names: [''] }] }, '#/publishers/0/names'],
    [
      'a glob no plugin name matches',
      { publishers: [{ key: 'keys/acme.asc', names: ['acme-*', 'Acme Tools*'] }] },
      '#/publishers/0/names/1: "Acme Tools*" holds "A", which no plugin name does',
    ],
    ['a missing key file', { publishers: [{ key: 'keys/none.asc', names: ['*'] }] }, 'cannot read'],
    ['a secret key', { publishers: [{ key: 'keys/secret.asc', names: ['*'] }] }, 'is a secret key'],
    [
      'a secret key under a public key’s armor header',
      { publishers: [{ key: 'keys/relabelled.asc', names: ['*'] }] },
      'is a secret key',
    ],
    [
      'a public key holding its secret subkey',
      { publishers: [{ key: 'keys/subkey.asc', names: ['*'] }] },
      'is a secret key',
    ],
    [
      'a public key GnuPG exported spliced with its secret subkey',
      { publishers: [{ key: 'keys/gpg-subkey.asc', names: ['*'] }] },
      'is a secret key',
    ],
    [
      'a key twice',
      {
        publishers: [
          { key: 'keys/acme.asc', names: ['a-*'] },
          { key: 'keys/acme.asc', names: ['b-*'] },
        ],
      },
      '#/publishers/1/key: key',
    ],
  ])('refuses %s at synth, naming the place', async (name, value, message) => {
    const file = await listFile(`${name.replaceAll(' ', '-')}.json`, value);

    const error = await loadTrustedPublishers(file).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(InfraError);
    expect(error).toMatchObject({ code: 'PUBLISHERS_INVALID' });
    expect((error as Error).message).toContain(message.startsWith('#') ? `${file}${message}` : message);
  });
});

describe('when the trust list names a key no signature by which could be taken', () => {
  it.each(
    UNTRUSTED_KEYS.flatMap((key, i) => [
      { ...key, role: 'publisher', list: { publishers: [{ key: `keys/untrusted-${i}.asc`, names: ['*'] }] } },
      {
        ...key,
        role: 'operator',
        list: {
          publishers: [{ key: 'keys/acme.asc', names: ['*'] }],
          operators: [{ key: `keys/untrusted-${i}.asc` }],
        },
      },
    ]),
  )('refuses $label as a $role at synth (PUBLISHERS_INVALID), naming the place and why', async (c) => {
    // The publish function would refuse every signature by it, publish after publish.
    const file = await listFile(`untrusted-${c.role}-${c.fingerprint}.json`, c.list);

    const error = await loadTrustList(file).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(InfraError);
    expect(error).toMatchObject({ code: 'PUBLISHERS_INVALID' });
    expect((error as Error).message).toContain(`${file}#/${c.role}s/0/key: `);
    expect((error as Error).message).toContain(`is key ${c.fingerprint}, which cannot be trusted`);
    expect((error as Error).message).toContain(c.reason);
  });
});

describe('when the trust list names the operator', () => {
  it('reads the operator keys beside the publishers, and stages them for the functions', async () => {
    const file = await listFile('with-operators.json', {
      publishers: [{ key: 'keys/acme.asc', names: ['acme-*'] }],
      operators: [{ key: 'keys/other.asc', label: 'ops' }],
    });
    const trust = await loadTrustList(file);
    const other = await readPublicKey((await testKey('other')).publicKey);
    expect(trust.operators).toEqual([{ fingerprint: other.fingerprint, key: other.armored, label: 'ops' }]);
    expect(trust.publishers).toHaveLength(1);

    const bundleDir = path.join(dir, 'bundle');
    await mkdir(bundleDir, { recursive: true });
    await writeFile(path.join(bundleDir, 'index.mjs'), 'export {}\n');
    stageFunction(bundleDir, path.join(dir, 'staged'), trust.publishers, trust.operators);
    expect(readDeployedTrust(path.join(dir, 'staged', 'publishers.json'))).toEqual(trust);
    // Without operators the staged list is what it always was.
    stageFunction(bundleDir, path.join(dir, 'staged-plain'), trust.publishers);
    expect(readDeployedTrust(path.join(dir, 'staged-plain', 'publishers.json'))).toEqual({
      publishers: trust.publishers,
      operators: [],
    });
  });

  it.each([
    ['operators that are not a list', { operators: {} }, '#/operators: expected an array'],
    ['an operator without a key', { operators: [{ label: 'x' }] }, '#/operators/0/key'],
    ['an operator secret key', { operators: [{ key: 'keys/secret.asc' }] }, 'is a secret key'],
    [
      'an operator twice',
      { operators: [{ key: 'keys/other.asc' }, { key: 'keys/other.asc' }] },
      '#/operators/1/key',
    ],
  ])('refuses %s at synth, naming the place', async (name, extra, message) => {
    const file = await listFile(`${name.replaceAll(' ', '-')}.json`, {
      publishers: [{ key: 'keys/acme.asc', names: ['*'] }],
      ...extra,
    });
    const error = await loadTrustList(file).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InfraError);
    expect((error as Error).message).toContain(message.startsWith('#') ? `${file}${message}` : message);
  });
});

describe('when the stack deploys a trust list', () => {
  let functionsDir: string;
  let outdir: string;

  beforeAll(async () => {
    functionsDir = await mkdtemp(path.join(tmpdir(), 'plugindex-trust-bundle-'));
    outdir = await mkdtemp(path.join(tmpdir(), 'plugindex-trust-out-'));
    await bundleFunctions(functionsDir);
  });
  afterAll(async () => {
    await rm(functionsDir, { recursive: true, force: true });
    await rm(outdir, { recursive: true, force: true });
  });

  it('puts it beside the publish function, where the function reads it back', async () => {
    const trustedPublishers = await loadTrustedPublishers(
      await listFile('deployed.json', { publishers: [{ key: 'keys/acme.asc', names: ['acme-*'] }] }),
    );
    const app = new App({ outdir });
    new PlugindexStack(app, 'Plugindex', { functionsDir, trustedPublishers });
    app.synth();

    const assets = readdirSync(outdir).filter((name) => name.startsWith('asset.'));
    const staged = assets.filter((name) => readdirSync(path.join(outdir, name)).includes('publishers.json'));
    expect(staged).toHaveLength(1);
    for (const name of staged) {
      const files = readdirSync(path.join(outdir, name)).sort();
      expect(files).toEqual(['index.mjs', 'publishers.json']);
      const deployed = readDeployedPublishers(path.join(outdir, name, 'publishers.json'));
      expect(deployed).toEqual(trustedPublishers);
      expect(readFileSync(path.join(outdir, name, 'publishers.json'), 'utf8')).not.toContain('PRIVATE');
    }
  });
});

describe('when a function reads its deployed trust list', () => {
  it('treats a missing file as none, and fails fast on a broken one', async () => {
    expect(readDeployedPublishers(path.join(dir, 'absent.json'))).toBeUndefined();
    const broken = await listFile('broken.json', { publishers: [{ fingerprint: 'nope', names: ['*'] }] });
    expect(() => readDeployedPublishers(broken)).toThrow(AwsAdapterError);
    expect(() => readDeployedPublishers(broken)).toThrow(
      expect.objectContaining({ code: 'ENV_INVALID', message: expect.stringContaining('/publishers/0') }),
    );
  });
});
