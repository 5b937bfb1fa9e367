/**
 * GnuPG as a client would run it: a throwaway keyring holding one public key, and `gpg --verify` of
 * detached signatures against it. Tests assert on its machine-readable status lines (`VALIDSIG <fpr>`).
 */

import { Buffer } from 'node:buffer';
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

/** Binary OpenPGP packets split at each packet's start (RFC 9580 §4.2), with their tags. */
function splitPackets(bytes: Uint8Array): { tag: number; bytes: Uint8Array }[] {
  const packets: { tag: number; bytes: Uint8Array }[] = [];
  let at = 0;
  while (at < bytes.byteLength) {
    const first = bytes[at] as number;
    const current = (first & 0x40) !== 0;
    const tag = current ? first & 0x3f : (first >> 2) & 0x0f;
    let start = at + 1;
    let length: number;
    if (current) {
      const o1 = bytes[start] as number;
      if (o1 < 192) [length, start] = [o1, start + 1];
      else if (o1 < 224)
        [length, start] = [((o1 - 192) << 8) + (bytes[start + 1] as number) + 192, start + 2];
      else [length, start] = [Buffer.from(bytes.subarray(start + 1, start + 5)).readUInt32BE(), start + 5];
    } else {
      const size = [1, 2, 4][first & 0x03] as number;
      length = Buffer.from(bytes.subarray(start, start + size)).readUIntBE(0, size);
      start += size;
    }
    packets.push({ tag, bytes: bytes.subarray(at, start + length) });
    at = start + length;
  }
  return packets;
}

/**
 * A key with a signing subkey as GnuPG makes and exports it to hand the subkey on (`gpg --quick-gen-key`,
 * `--quick-add-key FPR ed25519 sign`, `--export-secret-subkeys`, armored and not): the primary key a secret
 * key packet without its secret (GnuPG's stub), the subkey a secret subkey packet (tag 7). And that subkey
 * spliced into the public key (`gpg --export`'s packets, its public subkey's replaced): a public primary key
 * holding a secret subkey, binary and armored as a PUBLIC KEY BLOCK.
 */
export function gpgSecretSubkeys(): {
  readonly fingerprint: string;
  readonly exported: { readonly armored: string; readonly binary: Uint8Array };
  readonly spliced: { readonly armored: string; readonly binary: Uint8Array };
  readonly publicKey: { readonly armored: string; readonly binary: Uint8Array };
} {
  const home = mkdtempSync(path.join(tmpdir(), 'plugindex-gnupg-'));
  const gpg = (...args: string[]): Buffer =>
    execFileSync(
      'gpg',
      ['--homedir', home, '--batch', '--quiet', '--pinentry-mode', 'loopback', '--passphrase', '', ...args],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
  try {
    const uid = 'plugindex secret subkey <subkey@example.com>';
    gpg('--quick-gen-key', uid, 'ed25519', 'cert', 'never');
    const lines = gpg('--with-colons', '--list-keys', `=${uid}`).toString().split('\n');
    const fingerprint = (lines.find((line) => line.startsWith('fpr:')) ?? '').split(':')[9] ?? '';
    gpg('--quick-add-key', fingerprint, 'ed25519', 'sign', 'never');
    const exported = {
      armored: gpg('--armor', '--export-secret-subkeys', fingerprint).toString(),
      binary: new Uint8Array(gpg('--export-secret-subkeys', fingerprint)),
    };
    const publicKey = {
      armored: gpg('--armor', '--export', fingerprint).toString(),
      binary: new Uint8Array(gpg('--export', fingerprint)),
    };
    const publicPackets = splitPackets(publicKey.binary);
    const secretPackets = splitPackets(exported.binary);
    const beforeSubkey = (packets: typeof publicPackets, tag: number) =>
      packets.slice(
        0,
        packets.findIndex((p) => p.tag === tag),
      );
    const fromSubkey = secretPackets.slice(secretPackets.findIndex((p) => p.tag === 7));
    const binary = Buffer.concat([...beforeSubkey(publicPackets, 14), ...fromSubkey].map((p) => p.bytes));
    const armored = `-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n${(binary.toString('base64').match(/.{1,64}/g) ?? []).join('\n')}\n-----END PGP PUBLIC KEY BLOCK-----\n`;
    return { fingerprint, exported, spliced: { armored, binary: new Uint8Array(binary) }, publicKey };
  } finally {
    spawnSync('gpgconf', ['--homedir', home, '--kill', 'gpg-agent']);
    rmSync(home, { recursive: true, force: true });
  }
}

let secretSubkeys: ReturnType<typeof gpgSecretSubkeys> | undefined;

/** `gpgSecretSubkeys`, made once per test file (GnuPG takes a second or two to make a key). */
export function gpgSecretSubkeysOnce(): ReturnType<typeof gpgSecretSubkeys> {
  secretSubkeys ??= gpgSecretSubkeys();
  return secretSubkeys;
}
