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
