/**
 * The registry signing key from AWS Secrets Manager. The secret is JSON, `{"armoredKey": "...",
 * "passphrase": "..."}`, read once per cold start and kept in memory only: it never goes to environment
 * variables, logs or outputs.
 */
import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { createSigner, type Signer } from '../index-builder/signing.ts';
import { AwsAdapterError } from './errors.ts';

interface SigningSecret {
  readonly armoredKey: string;
  readonly passphrase?: string;
}

function parseSecret(secretId: string, text: string | undefined): SigningSecret {
  let value: unknown;
  try {
    value = JSON.parse(text ?? '');
  } catch {
    throw new AwsAdapterError('SECRET_UNAVAILABLE', `secret ${secretId} is not JSON with an armoredKey`);
  }
  const secret = value as Partial<SigningSecret>;
  if (
    typeof secret?.armoredKey !== 'string' ||
    (secret.passphrase !== undefined && typeof secret.passphrase !== 'string')
  ) {
    throw new AwsAdapterError(
      'SECRET_UNAVAILABLE',
      `secret ${secretId} needs "armoredKey" (and optionally "passphrase") strings`,
    );
  }
  return { armoredKey: secret.armoredKey, ...(secret.passphrase ? { passphrase: secret.passphrase } : {}) };
}

/** Fetches the secret and builds the signer. */
export async function loadSigner(client: SecretsManagerClient, secretId: string): Promise<Signer> {
  let text: string | undefined;
  try {
    const response = await client.send(new GetSecretValueCommand({ SecretId: secretId }));
    text = response.SecretString;
  } catch (error) {
    throw new AwsAdapterError(
      'SECRET_UNAVAILABLE',
      `cannot read secret ${secretId}: ${(error as Error).name}`,
      { cause: error },
    );
  }
  const secret = parseSecret(secretId, text);
  return createSigner(secret.armoredKey, secret.passphrase);
}

/** How the functions ask for the signer: `fresh` reads the secret again, past the cache. */
export type SignerSource = (options?: { readonly fresh?: boolean }) => Promise<Signer>;

/**
 * One fetch per cold start, shared by every invocation of a warm container, and again after `maxAgeMs` so
 * a rotated key reaches warm containers without a redeploy. A key rotation cannot wait for that: it asks
 * for a `fresh` read, which also replaces what the cache serves from then on (functions/handlers.ts asks
 * for one whenever the cached key is not the one the registry publishes).
 */
export function cachedSigner(
  client: SecretsManagerClient,
  secretId: string,
  options: { readonly maxAgeMs?: number; readonly now?: () => number } = {},
): SignerSource {
  const maxAge = options.maxAgeMs ?? 15 * 60 * 1000;
  const now = options.now ?? Date.now;
  let pending: Promise<Signer> | undefined;
  let fetchedAt = 0;
  return (request = {}) => {
    if (pending && (request.fresh || now() - fetchedAt > maxAge)) pending = undefined;
    if (!pending) {
      fetchedAt = now();
      const loading = loadSigner(client, secretId).catch((error: unknown) => {
        if (pending === loading) pending = undefined; // a failed fetch is retried by the next invocation
        throw error;
      });
      pending = loading;
    }
    return pending;
  };
}
