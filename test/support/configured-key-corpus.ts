/**
 * Configured entries of as many kinds as a check of configured keys could plausibly come to judge apart
 * (index-builder/trust.ts `checkConfiguredKeys`): every key no signature by which is taken (UNTRUSTED_KEYS, so
 * a new kind added there joins), RSA keys either side of the limits of `keyArithmeticProblem` and of a
 * minimum size a check might come to have, each curve and key version openpgp.js makes, and keys expired,
 * revoked, complex (more user IDs and subkeys than a submitted key may hold), given as a secret key (under
 * either armor header), two keys in one block, no key at all, and an entry whose fingerprint is not its key's. Their verdicts stand for the
 * check's behaviour in CONFIGURED_KEY_CHECKS (`test/index-builder/trust.test.ts`): a check that judges any of
 * them otherwise, or a kind added here, makes that tag change, so entries checked before are checked again.
 * The keys are made by openpgp.js at each run (the RSA ones packet by packet, `costlyKey`, their numbers
 * noise: only their sizes are judged); what each is, not its bytes, gives its verdict.
 */
import * as openpgp from 'openpgp';
import { costlyKey } from './costly-key.ts';
import { KEYS_CREATED } from './fixtures.ts';
import { gpgKeyWithSigningSubkey, gpgPublicKeys } from './gpg.ts';
import { UNTRUSTED_KEYS } from './untrusted-keys.ts';

export interface CorpusEntry {
  readonly label: string;
  readonly fingerprint: string;
  readonly key: string;
}

type GenerateOptions = Omit<Parameters<typeof openpgp.generateKey>[0], 'format' | 'userIDs'> & {
  readonly userIDs?: openpgp.UserID[];
};

/** A key openpgp.js makes with `options`, as its public (or, `secret`, its secret) armored text. */
async function made(label: string, options: GenerateOptions, secret = false): Promise<CorpusEntry> {
  const { userIDs = [{ name: label }], ...rest } = options;
  const generated = await openpgp.generateKey({ ...rest, userIDs, format: 'armored' });
  const key = await openpgp.readKey({ armoredKey: generated.publicKey });
  return {
    label,
    fingerprint: key.getFingerprint().toUpperCase(),
    key: secret ? generated.privateKey : generated.publicKey,
  };
}

/** An RSA key (`costlyKey`: its numbers noise) with a modulus of `bits` and a public exponent of `exponentBits`. */
function rsa(bits: number, exponentBits: number): CorpusEntry {
  const { publicKey, fingerprint } = costlyKey({
    algorithm: 'rsa',
    bits,
    exponentBits,
    hash: 'sha256',
    created: KEYS_CREATED,
  });
  return {
    label: `an RSA key of ${bits} bits, its exponent ${exponentBits} bits`,
    fingerprint,
    key: publicKey,
  };
}

/** Every entry of the corpus, labelled; each label once. */
export async function configuredKeyCorpus(): Promise<CorpusEntry[]> {
  const ed25519 = await made('a v4 Ed25519 key (EdDSA legacy)', { type: 'ecc' });
  const other = await made('another v4 Ed25519 key', { type: 'ecc' });
  const revoked = await (async () => {
    const generated = await openpgp.generateKey({
      type: 'ecc',
      userIDs: [{ name: 'revoked' }],
      format: 'object',
    });
    const { publicKey } = await openpgp.revokeKey({ key: generated.privateKey, format: 'armored' });
    return {
      label: 'a revoked key',
      fingerprint: generated.publicKey.getFingerprint().toUpperCase(),
      key: publicKey,
    };
  })();
  const generated = await Promise.all([
    made('a v4 key signing with its subkey', { type: 'ecc', subkeys: [{ sign: true }] }),
    made('a v6 Ed25519 key', { type: 'curve25519', config: { v6Keys: true } }),
    made('a v6 Ed448 key', { type: 'curve448', config: { v6Keys: true } }),
    made('a v4 Ed448 key', { type: 'curve448' }),
    ...(['nistP256', 'nistP384', 'nistP521'] as const).map((curve) =>
      made(`a v4 ECDSA key on ${curve}`, { type: 'ecc', curve }),
    ),
    made('an expired key', {
      type: 'ecc',
      date: new Date(KEYS_CREATED.getTime() - 86_400_000),
      keyExpirationTime: 3600,
    }),
    made('a key of 17 user IDs and 17 subkeys', {
      type: 'ecc',
      userIDs: Array.from({ length: 17 }, (_, i) => ({ name: `complex ${i}` })),
      subkeys: Array.from({ length: 17 }, () => ({})),
    }),
    made('a secret key (its public part what is trusted)', { type: 'ecc' }, true),
  ]);
  // Secret packets under a public key's armor header: openpgp.js reads them under either.
  const relabelled = await made('a secret key under a public key’s armor header', { type: 'ecc' }, true);
  // Curves openpgp.js reads but cannot make in Node (its `eckey-utils` absent): GnuPG's.
  const byGnupg = gpgPublicKeys(['brainpoolP256r1', 'secp256k1', 'nistp256']).map(
    ({ key, fingerprint }, i) => ({
      label: `a GnuPG ${['brainpoolP256r1', 'secp256k1', 'nistp256'][i]} key`,
      fingerprint,
      key,
    }),
  );
  const gnupgSubkey = gpgKeyWithSigningSubkey({ created: KEYS_CREATED, seconds: 86_400 });
  return [
    ed25519,
    revoked,
    ...generated,
    ...byGnupg,
    {
      label: 'a GnuPG secret key, its primary key certifying only, its expired subkey signing',
      fingerprint: gnupgSubkey.fingerprint,
      key: gnupgSubkey.secretKey,
    },
    {
      ...relabelled,
      key: relabelled.key.replaceAll('PGP PRIVATE KEY BLOCK', 'PGP PUBLIC KEY BLOCK'),
    },
    rsa(1024, 24),
    rsa(2048, 24),
    rsa(3072, 24),
    rsa(16_384, 64),
    rsa(16_392, 24),
    rsa(2048, 72),
    ...UNTRUSTED_KEYS.map((k) => ({ label: k.label, fingerprint: k.fingerprint, key: k.publicKey })),
    {
      label: 'two keys in one block',
      fingerprint: ed25519.fingerprint,
      key: twoKeys(ed25519.key, other.key),
    },
    { label: 'no key at all', fingerprint: ed25519.fingerprint, key: 'not a key' },
    { label: 'a fingerprint not its key’s', fingerprint: other.fingerprint, key: ed25519.key },
  ];
}

/** The packets of two armored public keys in one armored block. */
function twoKeys(first: string, second: string): string {
  const unarmor = (text: string): string =>
    text
      .split('\n')
      .filter(
        (line) => line !== '' && !line.startsWith('-----') && !line.startsWith('=') && !line.includes(':'),
      )
      .join('');
  const bytes = Buffer.concat([
    Buffer.from(unarmor(first), 'base64'),
    Buffer.from(unarmor(second), 'base64'),
  ]);
  return openpgp.armor(openpgp.enums.armor.publicKey, bytes);
}
