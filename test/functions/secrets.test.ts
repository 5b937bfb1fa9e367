/**
 * Secrets Manager cannot run here: aws-sdk-client-mock (a named SDK mock) stands in for it, and for the AWS
 * CLI the README's provisioning commands run, a fake endpoint (test/support/fake-secrets-manager.ts).
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import * as openpgp from 'openpgp';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AwsAdapterError } from '../../functions/errors.ts';
import { cachedSigner, loadSigner } from '../../functions/secrets.ts';
import { generateKeyPair } from '../../index-builder/signing.ts';
import { type FakeSecretsManager, startFakeSecretsManager } from '../support/fake-secrets-manager.ts';
import { testKey } from '../support/fixtures.ts';
import { gpgKeyWithSigningSubkey } from '../support/gpg.ts';

const secrets = mockClient(SecretsManagerClient);
const client = new SecretsManagerClient({ region: 'us-east-1' });

beforeEach(() => secrets.reset());

/** The secret's value as the publish function reads it: the armored key, and the passphrase that opens it. */
const secretValue = (armoredKey: string, passphrase?: string) => ({
  SecretString: JSON.stringify({ armoredKey, ...(passphrase ? { passphrase } : {}) }),
});

describe('when the signing key comes from Secrets Manager', () => {
  it('builds the signer from the armored key', async () => {
    const key = await testKey('registry');
    secrets.on(GetSecretValueCommand, { SecretId: 'plugindex/key' }).resolves(secretValue(key.secretKey));
    await expect(loadSigner(client, 'plugindex/key')).resolves.toMatchObject({
      fingerprint: key.fingerprint,
    });
  });

  it('decrypts a key protected by a passphrase', async () => {
    const key = await generateKeyPair({ name: 'locked', passphrase: 'hunter2' });
    secrets.on(GetSecretValueCommand).resolves(secretValue(key.secretKey, 'hunter2'));
    await expect(loadSigner(client, 'plugindex/key')).resolves.toMatchObject({
      fingerprint: key.fingerprint,
    });
  });

  it('fetches once per cold start, and again after a failure', async () => {
    const key = await testKey('registry');
    secrets
      .on(GetSecretValueCommand)
      .rejectsOnce(new Error('throttled'))
      .resolves(secretValue(key.secretKey));
    const signer = cachedSigner(client, 'plugindex/key');
    await expect(signer()).rejects.toMatchObject({ code: 'SECRET_UNAVAILABLE' });
    await signer();
    await signer();
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(2);
  });

  it('fetches again once the cached key is older than its maximum age, so a rotation reaches warm containers', async () => {
    const key = await testKey('registry');
    secrets.on(GetSecretValueCommand).resolves(secretValue(key.secretKey));
    let clock = 0;
    const signer = cachedSigner(client, 'plugindex/key', { maxAgeMs: 1000, now: () => clock });
    await signer();
    clock = 500;
    await signer();
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(1);
    clock = 1501;
    await signer();
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(2);
  });

  it('reads the secret again when asked for a fresh key, and serves that key from then on', async () => {
    const [before, after] = [await testKey('registry'), await testKey('rotated')];
    secrets
      .on(GetSecretValueCommand)
      .resolvesOnce(secretValue(before.secretKey))
      .resolves(secretValue(after.secretKey));
    const signer = cachedSigner(client, 'plugindex/key');
    expect((await signer()).fingerprint).toBe(before.fingerprint);
    expect((await signer()).fingerprint).toBe(before.fingerprint); // cached: the rotation not seen yet
    expect((await signer({ fresh: true })).fingerprint).toBe(after.fingerprint);
    expect((await signer()).fingerprint).toBe(after.fingerprint);
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(2);
  });

  it('refuses a key past its expiry with KEY_EXPIRED when the secret is read, not at a signature', async () => {
    const { privateKey } = await openpgp.generateKey({
      type: 'ecc',
      userIDs: [{ name: 'expired registry' }],
      date: new Date(Date.now() - 7200_000),
      keyExpirationTime: 3600,
      format: 'armored',
    });
    secrets.on(GetSecretValueCommand).resolves(secretValue(privateKey));
    await expect(loadSigner(client, 'plugindex/key')).rejects.toMatchObject({
      name: 'KeyError',
      code: 'KEY_EXPIRED',
    });
  });

  it('refuses a key whose signing subkey has expired with KEY_EXPIRED when the secret is read', async () => {
    // A GnuPG key whose primary only certifies: nothing else may sign once the subkey expired.
    const key = gpgKeyWithSigningSubkey({ created: new Date(Date.now() - 7200_000), seconds: 3600 });
    secrets.on(GetSecretValueCommand).resolves(secretValue(key.secretKey));
    await expect(loadSigner(client, 'plugindex/key')).rejects.toMatchObject({
      name: 'KeyError',
      code: 'KEY_EXPIRED',
      message: expect.stringContaining(`its signing subkey ${key.subkeyFingerprint} expired at`),
    });
  });

  it('says what is wrong with a malformed secret, without echoing it', async () => {
    secrets
      .on(GetSecretValueCommand)
      .resolves({ SecretString: '{"key": "-----BEGIN PGP PRIVATE KEY BLOCK----- secret"}' });
    const failure = loadSigner(client, 'plugindex/key');
    await expect(failure).rejects.toBeInstanceOf(AwsAdapterError);
    await expect(loadSigner(client, 'plugindex/key')).rejects.toThrow(/needs "armoredKey"/);
    await expect(loadSigner(client, 'plugindex/key')).rejects.not.toThrow(/PRIVATE KEY/);
  });
});

describe("when an operator provisions the signing key as the README's commands do", () => {
  // The README's block run as written (`npx plugindex` as the built command, `aws` the AWS CLI sent to a
  // fake Secrets Manager), under the usual umask 022, in a folder of the operator's.
  const BIN = path.resolve(import.meta.dirname, '../../cli/bin.mjs');
  const SECRET_ID = 'plugindex/signing-key';
  /** What the block leaves in the operator's folder: the passphrase file and the key pair, no file holding both. */
  const KEY_PAIR_BESIDE_PASSPHRASE = [
    'passphrase.txt',
    'registry-key',
    'registry-key/public.asc',
    'registry-key/secret.asc',
  ];

  /** The ```sh block after "**Provision the signing key**", ready to run here. */
  async function provisioningScript(): Promise<string> {
    const readme = await readFile(path.resolve(import.meta.dirname, '../../README.md'), 'utf8');
    const after = readme.slice(readme.indexOf('**Provision the signing key**'));
    const block = /```sh\n([\s\S]*?)```/.exec(after)?.[1];
    if (!block) throw new Error('README: no provisioning block');
    return block
      .replaceAll('npx plugindex', `"${process.execPath}" "${BIN}"`)
      .replaceAll('<SigningKeySecret>', SECRET_ID);
  }

  /** Runs the block in a fresh folder, a passphrase file of `passphrase` there; returns the folder's files after. */
  async function provision(fake: FakeSecretsManager, passphrase: string) {
    const work = await mkdtemp(path.join(tmpdir(), 'plugindex-provision-'));
    const bin = path.join(work, '.bin');
    await mkdir(bin);
    await writeFile(
      path.join(bin, 'aws'),
      `#!/bin/sh\nexec /usr/bin/aws --endpoint-url "${fake.endpoint}" --region us-east-1 "$@"\n`,
      { mode: 0o755 },
    );
    await writeFile(path.join(work, 'passphrase.txt'), passphrase, { mode: 0o600 });
    const script = `umask 022\n${await provisioningScript()}`;
    const ran = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      execFile(
        '/bin/sh',
        ['-c', script],
        {
          cwd: work,
          env: {
            ...process.env,
            PATH: `${bin}:${process.env.PATH}`,
            AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
            AWS_SECRET_ACCESS_KEY: 'example',
            AWS_CONFIG_FILE: '/dev/null',
            AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
          },
        },
        (error, _stdout, stderr) => resolve({ code: error ? ((error.code as number) ?? 1) : 0, stderr }),
      );
    });
    const left = (await readdir(work, { recursive: true })).filter((f) => !f.startsWith('.bin')).sort();
    return { work, ran, left };
  }

  let fake: FakeSecretsManager | undefined;
  afterEach(async () => {
    await fake?.close();
    fake = undefined;
  });

  it('puts a secret the publish function opens, with the passphrase keygen encrypted the key with', async () => {
    // Prepare: a passphrase that ends in a space (keygen takes the file without its final line break
    // only; the README trimmed every blank, so the function was given another passphrase).
    fake = await startFakeSecretsManager({});

    // Act
    const { work, ran, left } = await provision(fake, 'correct horse battery \n');

    // Assess
    expect(ran.code, ran.stderr).toBe(0);
    expect(fake.puts.map((p) => p.secretId)).toEqual([SECRET_ID]);
    const put = fake.puts[0]?.secretString ?? '';
    const stored = JSON.parse(put) as { armoredKey: string; passphrase: string };
    const made = await readFile(path.join(work, 'registry-key/public.asc'), 'utf8');
    secrets.on(GetSecretValueCommand, { SecretId: SECRET_ID }).resolves({ SecretString: put });
    await expect(loadSigner(client, SECRET_ID)).resolves.toMatchObject({
      fingerprint: (await openpgp.readKey({ armoredKey: made })).getFingerprint().toUpperCase(),
    });
    expect(stored.passphrase).toBe('correct horse battery ');
    expect(left).toEqual(KEY_PAIR_BESIDE_PASSPHRASE);
    await rm(work, { recursive: true, force: true });
  }, 60_000);

  it('leaves no file holding the key and its passphrase when the put fails', async () => {
    // Prepare: the put refused (no permission, a wrong secret id); `... && rm secret.json` left secret.json,
    // the key with the passphrase that opens it, in the folder, readable by every local user (0644).
    fake = await startFakeSecretsManager({}, { refusePuts: true });

    // Act
    const { work, ran, left } = await provision(fake, 'correct horse\n');

    // Assess
    expect(ran.code).not.toBe(0);
    expect(fake.puts).toEqual([]);
    expect(left).toEqual(KEY_PAIR_BESIDE_PASSPHRASE);
    await rm(work, { recursive: true, force: true });
  }, 60_000);
});
