/**
 * `plugindex keygen`: a publisher key pair, the secret half readable by its owner only. Written only where
 * nothing is: a key already in DIR is the one that owns its publisher's plugin names (a new one written over
 * it could never publish them again), and a name someone else put there first (a link to a file they can
 * read, in a shared folder) is never written through.
 */
import { lstat, rm } from 'node:fs/promises';
import path from 'node:path';
import { generateKeyPair } from '../../index-builder/signing.ts';
import { outputOption, type Parsed, stringOption } from '../args.ts';
import { CliError, usage } from '../errors.ts';
import { makeFolder, notWritten, readPassphrase, refuseOutputInRegistry } from '../inputs.ts';
import { createNewFile } from '../new-file.ts';
import { out } from '../terminal.ts';

const SECRET_FILE = 'secret.asc';
const PUBLIC_FILE = 'public.asc';

function fileExists(file: string, cause?: unknown): CliError {
  return new CliError(
    'FILE_EXISTS',
    `${file} exists (a key there is kept): write the new key pair to another folder`,
    cause === undefined ? undefined : { cause },
  );
}

/**
 * Creates `file` with `data`, whole: never through a link or over a file already at that name (whose mode
 * `mode` would not change), even one put there after the check before it.
 */
function createNew(file: string, data: string, mode: number): Promise<void> {
  return createNewFile(file, data, { mode, exists: (cause) => fileExists(file, cause) });
}

/**
 * The address openpgp.js takes in a user ID (its `isEmailAddress`): one it refuses came out of key
 * generation as a stack trace, so it is refused as the option it is, before anything is made.
 */
const EMAIL = /^[^\p{C}\p{Z}@<>\\]+@[^\p{C}\p{Z}@<>\\]+[^\p{C}\p{Z}\p{P}]$/u;

export async function run(parsed: Parsed): Promise<number> {
  const email = stringOption(parsed, 'email');
  if (email && !EMAIL.test(email))
    throw usage(
      `--email ${email} is not an email address a key can carry: expected NAME@DOMAIN (me@example.org), without spaces, <, > or \\, ending in a letter or digit`,
    );
  const { file: dir, option } = outputOption(parsed);
  // Never into a registry's folder: under public/ the secret key would be served to anyone.
  await refuseOutputInRegistry(option, dir, { kind: 'folder' });
  const files = { secret: path.join(dir, SECRET_FILE), public: path.join(dir, PUBLIC_FILE) };
  // Both checked before either is written: a folder with half a pair is refused as one with both.
  for (const file of [files.secret, files.public])
    if (
      await lstat(file).then(
        () => true,
        () => false,
      )
    )
      throw fileExists(file);
  const passphrase = await readPassphrase(parsed);
  const pair = await generateKeyPair({
    name: stringOption(parsed, 'name') ?? 'plugindex publisher',
    ...(email ? { email } : {}),
    ...(passphrase ? { passphrase } : {}),
  });
  await makeFolder(dir).catch((cause: unknown) => {
    throw cause instanceof CliError ? cause : notWritten(dir, cause);
  });
  await createNew(files.secret, pair.secretKey, 0o600).catch((cause: unknown) => {
    throw cause instanceof CliError ? cause : notWritten(files.secret, cause);
  });
  try {
    await createNew(files.public, pair.publicKey, 0o644);
  } catch (error) {
    // The secret half alone is no pair: removed, so the folder is as it was.
    await rm(files.secret, { force: true });
    throw error instanceof CliError ? error : notWritten(files.public, error);
  }
  out(pair.fingerprint);
  return 0;
}
