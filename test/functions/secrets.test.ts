/** Secrets Manager cannot run here: aws-sdk-client-mock (a named SDK mock) stands in for it. */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import * as openpgp from 'openpgp';
import { beforeEach, describe, expect, it } from 'vitest';
import { AwsAdapterError } from '../../functions/errors.ts';
import { cachedSigner, loadSigner } from '../../functions/secrets.ts';
import { generateKeyPair } from '../../index-builder/signing.ts';
import { testKey } from '../support/fixtures.ts';
import { gpgKeyWithSigningSubkey } from '../support/gpg.ts';

const secrets = mockClient(SecretsManagerClient);
const client = new SecretsManagerClient({ region: 'us-east-1' });

beforeEach(() => secrets.reset());

describe('when the signing key comes from Secrets Manager', () => {
  it('builds the signer from the armored key', async () => {
    const key = await testKey('registry');
    secrets
      .on(GetSecretValueCommand, { SecretId: 'plugindex/key' })
      .resolves({ SecretString: JSON.stringify({ armoredKey: key.secretKey }) });
    await expect(loadSigner(client, 'plugindex/key')).resolves.toMatchObject({
      fingerprint: key.fingerprint,
    });
  });

  it('decrypts a key protected by a passphrase', async () => {
    const key = await generateKeyPair({ name: 'locked', passphrase: 'hunter2' });
    secrets
      .on(GetSecretValueCommand)
      .resolves({ SecretString: JSON.stringify({ armoredKey: key.secretKey, passphrase: 'hunter2' }) });
    await expect(loadSigner(client, 'plugindex/key')).resolves.toMatchObject({
      fingerprint: key.fingerprint,
    });
  });

  it('fetches once per cold start, and again after a failure', async () => {
    const key = await testKey('registry');
    secrets
      .on(GetSecretValueCommand)
      .rejectsOnce(new Error('throttled'))
      .resolves({ SecretString: JSON.stringify({ armoredKey: key.secretKey }) });
    const signer = cachedSigner(client, 'plugindex/key');
    await expect(signer()).rejects.toMatchObject({ code: 'SECRET_UNAVAILABLE' });
    await signer();
    await signer();
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(2);
  });

  it('fetches again once the cached key is older than its maximum age, so a rotation reaches warm containers', async () => {
    const key = await testKey('registry');
    secrets
      .on(GetSecretValueCommand)
      .resolves({ SecretString: JSON.stringify({ armoredKey: key.secretKey }) });
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
      .resolvesOnce({ SecretString: JSON.stringify({ armoredKey: before.secretKey }) })
      .resolves({ SecretString: JSON.stringify({ armoredKey: after.secretKey }) });
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
    secrets.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify({ armoredKey: privateKey }) });
    await expect(loadSigner(client, 'plugindex/key')).rejects.toMatchObject({
      name: 'KeyError',
      code: 'KEY_EXPIRED',
    });
  });

  it('refuses a key whose signing subkey has expired with KEY_EXPIRED when the secret is read', async () => {
    // A GnuPG key whose primary only certifies: nothing else may sign once the subkey expired.
    const key = gpgKeyWithSigningSubkey({ created: new Date(Date.now() - 7200_000), seconds: 3600 });
    secrets
      .on(GetSecretValueCommand)
      .resolves({ SecretString: JSON.stringify({ armoredKey: key.secretKey }) });
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
