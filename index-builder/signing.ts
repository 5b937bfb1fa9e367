/**
 * OpenPGP keys and detached signatures (openpgp.js). Keys are v4 (openpgp's default ECC: Ed25519 signing key
 * with a Curve25519 encryption subkey) because GnuPG 2.2, still what many clients run, rejects v6 keys.
 * Everything here takes and returns strings and bytes; where keys live is the caller's business.
 */
import * as openpgp from 'openpgp';
import { KeyError } from './errors.ts';

/** Signs bytes with the registry key. */
export interface Signer {
  /** Primary key fingerprint, 40 uppercase hex digits. */
  readonly fingerprint: string;
  /** Every fingerprint of the key (primary and subkeys), uppercase. */
  readonly fingerprints: readonly string[];
  /** The armored public key, as published at `keys/registry.asc`. */
  readonly publicKey: string;
  /** An armored detached signature over `data`. */
  sign(data: Uint8Array): Promise<string>;
}

export interface KeyPair {
  readonly secretKey: string;
  readonly publicKey: string;
  readonly fingerprint: string;
}

export interface PublicKeyInfo {
  readonly fingerprint: string;
  readonly fingerprints: readonly string[];
  readonly userIds: readonly string[];
  readonly armored: string;
  readonly key: openpgp.Key;
}

export type VerifyResult =
  | { readonly ok: true; readonly fingerprint: string }
  | {
      readonly ok: false;
      readonly reason: 'malformed' | 'unknown-key' | 'bad-signature';
      readonly message: string;
      /** Issuer key IDs named by the signature (uppercase hex), to say who signed it. */
      readonly keyIds: readonly string[];
    };

const upper = (s: string): string => s.toUpperCase();
/**
 * SHA-256 where the key allows it (RSA, NIST P-256). With an Ed25519 key openpgp.js signs with SHA-512
 * whatever is asked (the curve's preferred hash); GnuPG verifies either.
 */
const SIGN_CONFIG = { preferredHashAlgorithm: openpgp.enums.hash.sha256 };

function fingerprintsOf(key: openpgp.Key): string[] {
  return [key.getFingerprint(), ...key.getSubkeys().map((sub) => sub.getFingerprint())].map(upper);
}

/**
 * Generates a v4 ECC key pair.
 * @example const { secretKey, publicKey, fingerprint } = await generateKeyPair({ name: 'Acme Publisher' });
 */
export async function generateKeyPair(options: {
  readonly name: string;
  readonly email?: string;
  readonly passphrase?: string;
  readonly date?: Date;
}): Promise<KeyPair> {
  const userID = options.email ? { name: options.name, email: options.email } : { name: options.name };
  const generated = await openpgp.generateKey({
    type: 'ecc',
    userIDs: [userID],
    format: 'armored',
    ...(options.passphrase ? { passphrase: options.passphrase } : {}),
    ...(options.date ? { date: options.date } : {}),
  });
  const key = await openpgp.readKey({ armoredKey: generated.publicKey });
  return {
    secretKey: generated.privateKey,
    publicKey: generated.publicKey,
    fingerprint: upper(key.getFingerprint()),
  };
}

/** Reads an armored public (or secret: its public part) key; throws KeyError('KEY_INVALID'). */
export async function readPublicKey(armored: string): Promise<PublicKeyInfo> {
  let key: openpgp.Key;
  try {
    key = await openpgp.readKey({ armoredKey: armored });
  } catch (cause) {
    throw new KeyError('KEY_INVALID', `not an armored OpenPGP key: ${(cause as Error).message}`, { cause });
  }
  const pub = key.toPublic();
  const userIds = pub.getUserIDs();
  return {
    fingerprint: upper(pub.getFingerprint()),
    fingerprints: fingerprintsOf(pub),
    userIds,
    armored: pub.armor(),
    key: pub,
  };
}

/**
 * Builds the registry's signer from an armored secret key.
 * @throws KeyError KEY_INVALID (not a secret key) or KEY_PASSPHRASE (wrong or missing passphrase).
 */
export async function createSigner(armoredSecretKey: string, passphrase?: string): Promise<Signer> {
  let privateKey: openpgp.PrivateKey;
  try {
    privateKey = await openpgp.readPrivateKey({ armoredKey: armoredSecretKey });
  } catch (cause) {
    throw new KeyError('KEY_INVALID', `not an armored OpenPGP secret key: ${(cause as Error).message}`, {
      cause,
    });
  }
  if (!privateKey.isDecrypted()) {
    if (!passphrase)
      throw new KeyError('KEY_PASSPHRASE', 'the signing key is encrypted and no passphrase was given');
    try {
      privateKey = await openpgp.decryptKey({ privateKey, passphrase });
    } catch (cause) {
      throw new KeyError('KEY_PASSPHRASE', 'the passphrase does not decrypt the signing key', { cause });
    }
  }
  const publicKey = privateKey.toPublic().armor();
  return {
    fingerprint: upper(privateKey.getFingerprint()),
    fingerprints: fingerprintsOf(privateKey),
    publicKey,
    async sign(data: Uint8Array): Promise<string> {
      const message = await openpgp.createMessage({ binary: data });
      return openpgp.sign({
        message,
        signingKeys: privateKey,
        detached: true,
        format: 'armored',
        config: SIGN_CONFIG,
      });
    },
  };
}

/**
 * Verifies an armored detached signature over `data` against candidate keys. Never throws for bad input:
 * the result says what is wrong, so callers can report it as a submission problem.
 */
export async function verifyDetachedSignature(
  data: Uint8Array,
  armoredSignature: string,
  keys: readonly openpgp.Key[],
): Promise<VerifyResult> {
  let signature: openpgp.Signature;
  try {
    signature = await openpgp.readSignature({ armoredSignature });
  } catch (cause) {
    return {
      ok: false,
      reason: 'malformed',
      message: `not an armored OpenPGP signature: ${(cause as Error).message}`,
      keyIds: [],
    };
  }
  const keyIds = Array.from(signature.getSigningKeyIDs(), (id) => upper(id.toHex()));
  const candidates = keys.filter((key) => key.getKeyIDs().some((id) => keyIds.includes(upper(id.toHex()))));
  if (candidates.length === 0) {
    return {
      ok: false,
      reason: 'unknown-key',
      message: `signed by unknown key ${keyIds.join(', ') || '(no issuer)'}`,
      keyIds,
    };
  }
  try {
    const message = await openpgp.createMessage({ binary: data });
    const result = await openpgp.verify({
      message,
      signature,
      verificationKeys: [...candidates],
      expectSigned: true,
    });
    const first = result.signatures[0];
    if (!first) throw new Error('no signature packet');
    await first.verified;
    const signerId = upper(first.keyID.toHex());
    const signer = candidates.find((key) => key.getKeyIDs().some((id) => upper(id.toHex()) === signerId));
    if (!signer) throw new Error('signer key not among candidates');
    return { ok: true, fingerprint: upper(signer.getFingerprint()) };
  } catch (cause) {
    return {
      ok: false,
      reason: 'bad-signature',
      message: `signature does not verify: ${(cause as Error).message}`,
      keyIds,
    };
  }
}
