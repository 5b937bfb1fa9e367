/**
 * GnuPG as a client would run it: a throwaway keyring holding one public key, and `gpg --verify` of
 * detached signatures against it. Tests assert on its machine-readable status lines (`VALIDSIG <fpr>`).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface GpgKeyring {
  /** `gpg --verify` of `signature` over `data`; the status lines. Throws when gpg exits non-zero. */
  verify(data: Uint8Array, signature: string): string;
  /** `gpg --verify`'s status lines whatever its exit code (a bad or expired signature exits non-zero). */
  status(data: Uint8Array, signature: string): string;
  close(): void;
}

export function gpgKeyring(armoredPublicKey: string): GpgKeyring {
  const home = mkdtempSync(path.join(tmpdir(), 'plugindex-gnupg-'));
  const file = (name: string) => path.join(home, name);
  writeFileSync(file('key.asc'), armoredPublicKey);
  execFileSync('gpg', ['--homedir', home, '--batch', '--quiet', '--import', file('key.asc')], {
    stdio: 'pipe',
  });
  /** Writes the pair and returns gpg's arguments to verify it. */
  const verifyArgs = (data: Uint8Array, signature: string): string[] => {
    writeFileSync(file('data'), data);
    writeFileSync(file('data.asc'), signature);
    return ['--homedir', home, '--batch', '--status-fd', '1', '--verify', file('data.asc'), file('data')];
  };
  return {
    verify(data, signature) {
      return execFileSync('gpg', verifyArgs(data, signature), {
        stdio: ['ignore', 'pipe', 'pipe'],
      }).toString();
    },
    status(data, signature) {
      return spawnSync('gpg', verifyArgs(data, signature), { encoding: 'utf8' }).stdout;
    },
    close() {
      rmSync(home, { recursive: true, force: true });
    },
  };
}

/** A time as `gpg --faked-system-time` takes it, frozen there (`!`): `20260101T000000!`. */
const gpgTime = (date: Date): string => `${date.toISOString().replace(/[-:]|\.\d{3}Z$/g, '')}!`;

/**
 * A secret key as GnuPG makes one to keep signing apart (`gpg --quick-gen-key NAME ed25519 cert`, then
 * `--quick-add-key FPR ed25519 sign`): an Ed25519 primary key that may only certify, and an Ed25519 signing
 * subkey that expires `seconds` after `created` (both made at `created`, gpg's clock set there), exported
 * without a passphrase.
 */
export function gpgKeyWithSigningSubkey(options: { readonly created: Date; readonly seconds: number }): {
  readonly secretKey: string;
  readonly fingerprint: string;
  readonly subkeyFingerprint: string;
} {
  const home = mkdtempSync(path.join(tmpdir(), 'plugindex-gnupg-'));
  const gpg = (...args: string[]): string =>
    execFileSync(
      'gpg',
      [
        '--homedir',
        home,
        '--batch',
        '--quiet',
        '--pinentry-mode',
        'loopback',
        '--passphrase',
        '',
        '--faked-system-time',
        gpgTime(options.created),
        ...args,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    ).toString();
  try {
    gpg('--quick-gen-key', 'plugindex subkey signer <signer@example.com>', 'ed25519', 'cert', 'never');
    const fingerprintOf = (kind: 'pub' | 'sub'): string => {
      const lines = gpg('--with-colons', '--with-subkey-fingerprints', '--list-keys').split('\n');
      const at = lines.findIndex((line) => line.startsWith(`${kind}:`));
      return (lines.slice(at).find((line) => line.startsWith('fpr:')) ?? '').split(':')[9] ?? '';
    };
    const fingerprint = fingerprintOf('pub');
    gpg('--quick-add-key', fingerprint, 'ed25519', 'sign', `seconds=${options.seconds}`);
    return {
      secretKey: gpg('--armor', '--export-secret-keys', fingerprint),
      fingerprint,
      subkeyFingerprint: fingerprintOf('sub'),
    };
  } finally {
    spawnSync('gpgconf', ['--homedir', home, '--kill', 'gpg-agent']);
    rmSync(home, { recursive: true, force: true });
  }
}

/**
 * Public keys as GnuPG makes them (`gpg --quick-gen-key NAME ALGO default never`), one per algorithm name
 * (`brainpoolP256r1`, `secp256k1`: curves openpgp.js reads but does not make in Node), each with its fingerprint.
 */
export function gpgPublicKeys(
  algorithms: readonly string[],
): { readonly key: string; readonly fingerprint: string }[] {
  const home = mkdtempSync(path.join(tmpdir(), 'plugindex-gnupg-'));
  const gpg = (...args: string[]): string =>
    execFileSync(
      'gpg',
      ['--homedir', home, '--batch', '--quiet', '--pinentry-mode', 'loopback', '--passphrase', '', ...args],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    ).toString();
  try {
    return algorithms.map((algorithm) => {
      const uid = `plugindex ${algorithm} <${algorithm}@example.com>`;
      gpg('--quick-gen-key', uid, algorithm, 'default', 'never');
      const lines = gpg('--with-colons', '--list-keys', `=${uid}`).split('\n');
      const fingerprint = (lines.find((line) => line.startsWith('fpr:')) ?? '').split(':')[9] ?? '';
      return { key: gpg('--armor', '--export', fingerprint), fingerprint };
    });
  } finally {
    spawnSync('gpgconf', ['--homedir', home, '--kill', 'gpg-agent']);
    rmSync(home, { recursive: true, force: true });
  }
}
