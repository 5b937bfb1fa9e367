/** Files a command reads on the user's behalf, with errors that name the file. */
import { open, readFile } from 'node:fs/promises';
import { type Parsed, stringOption } from './args.ts';
import { CliError, usage } from './errors.ts';

export async function readInput(file: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(file));
  } catch (cause) {
    throw new CliError('FILE_NOT_FOUND', `cannot read ${file}: ${(cause as Error).message}`, { cause });
  }
}

export async function readTextInput(file: string): Promise<string> {
  // Every byte as given, a byte order mark included (a passphrase is compared byte for byte).
  return new TextDecoder('utf-8', { ignoreBOM: true }).decode(await readInput(file));
}

/**
 * `--passphrase-file FILE` (or the option named, `rotate-key`'s `--new-passphrase-file`): the passphrase of
 * a secret key, without its final line break. An empty one is refused (exit 2): it reads as no passphrase,
 * so `keygen` wrote the key unencrypted while its owner, who gave a file, took it for encrypted (a password
 * manager's command that failed into the file, say).
 */
export async function readPassphrase(
  parsed: Parsed,
  option = 'passphrase-file',
): Promise<string | undefined> {
  const file = stringOption(parsed, option);
  if (!file) return undefined;
  const passphrase = (await readTextInput(file)).replace(/\r?\n$/, '');
  if (passphrase === '') throw usage(`--${option} ${file} is empty: a passphrase is required`);
  return passphrase;
}

/** Fails with FILE_NOT_FOUND unless FILE is a regular file this process can read (before streaming it). */
export async function requireFile(file: string): Promise<void> {
  try {
    const handle = await open(file, 'r');
    try {
      if (!(await handle.stat()).isFile()) throw new Error('not a regular file');
    } finally {
      await handle.close();
    }
  } catch (cause) {
    throw new CliError('FILE_NOT_FOUND', `cannot read ${file}: ${(cause as Error).message}`, { cause });
  }
}
