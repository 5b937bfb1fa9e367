/** Files a command reads or writes on the user's behalf, with errors that name the file. */
import { lstat, mkdir, open, readFile, readlink, realpath, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  armoredHoldsSecretKeyPackets,
  mayBeBinaryPackets,
  SECRET_KEY_ARMOR,
} from '../index-builder/armor.ts';
import { parseRegistryUrl } from '../index-builder/config.ts';
import { ConfigError, KeyError } from '../index-builder/errors.ts';
import { shownUnparsedUrl } from '../index-builder/layout.ts';
import type { PublicKeyInfo } from '../index-builder/signing.ts';
import { type Parsed, stringOption } from './args.ts';
import { CliError, usage } from './errors.ts';

/**
 * A registry's URL typed on the command line (`init --url`, `rotate-key --url`, `action --registry-url`) as
 * its config holds it (`parseRegistryUrl`: http(s), no trailing slash, no credentials, query or fragment).
 * One refused is a usage error (exit 2), as every URL typed on the command line is (a consumer's, cli/client.ts
 * `registryUrlArgument`), `refused` saying which option and why; the config's check never echoes credentials.
 * @example registryUrlOptionText('https://r.example/', "--url must be the registry's URL") // 'https://r.example'
 */
export function registryUrlOptionText(text: string, refused: string): string {
  try {
    return parseRegistryUrl(text);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    throw usage(`${refused}: ${error.message.replace(/^registry config \/url: /, '')}`);
  }
}

/**
 * An AWS service URL typed on the command line (`--queue-url`, `--endpoint`), as it is: an absolute http(s)
 * URL with no user name or password (AWS credentials come from the SDK's chain, and a message would show
 * them), else a usage error (exit 2) showing it masked (`shownUnparsedUrl`). Unchecked, one that was no URL
 * reached the SDK, which threw a TypeError (a stack trace, exit 1) and still asked the service's own host.
 * @example serviceUrlOption(parsed, 'queue-url') // 'https://sqs.us-east-1.amazonaws.com/1/q.fifo', or undefined
 */
export function serviceUrlOption(parsed: Parsed, name: 'queue-url' | 'endpoint'): string | undefined {
  const text = stringOption(parsed, name);
  if (text === undefined) return undefined;
  const url = URL.canParse(text) ? new URL(text) : undefined;
  const problem =
    url === undefined
      ? 'it is not an absolute URL'
      : url.protocol !== 'https:' && url.protocol !== 'http:'
        ? `the scheme ${url.protocol} is not http: or https:`
        : url.username !== '' || url.password !== ''
          ? 'credentials in the URL are refused (AWS credentials come from the environment or a profile)'
          : undefined;
  if (problem !== undefined) throw usage(`--${name} ${shownUnparsedUrl(text)}: ${problem}`);
  return text;
}

export async function readInput(file: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(file));
  } catch (cause) {
    throw notRead(file, cause);
  }
}

/**
 * FILE_NOT_FOUND for a file the user named to be read (`--key`, a manifest, a bundle), naming it, why and
 * what to do, as notWritten names one not written: Node's words alone (`EISDIR: illegal operation on a
 * directory, read`) left the user to decode errno.
 */
function notRead(file: string, cause: unknown): CliError {
  const { code, message } = cause as NodeJS.ErrnoException;
  // A folder is said in these words alone: Node's ("illegal operation on a directory") add nothing.
  if (code === 'EISDIR')
    return new CliError('FILE_NOT_FOUND', `cannot read ${file}: it is a folder: name a file in it`, {
      cause,
    });
  const next =
    code === 'ENOENT'
      ? 'no file is there: check the path'
      : code === 'ENOTDIR'
        ? 'a part of its path is a file, not a folder: check the path'
        : code === 'EACCES' || code === 'EPERM'
          ? 'this user may not read it'
          : 'name a file this user may read';
  return new CliError('FILE_NOT_FOUND', `cannot read ${file}: ${message}: ${next}`, { cause });
}

export async function readTextInput(file: string): Promise<string> {
  // Every byte as given, a byte order mark included (a passphrase is compared byte for byte).
  return new TextDecoder('utf-8', { ignoreBOM: true }).decode(await readInput(file));
}

/** The armor header of a public key block (a public.asc). */
const PUBLIC_KEY_ARMOR = '-----BEGIN PGP PUBLIC KEY BLOCK-----';

/**
 * The secret key a command signs with (`--key` of `pack` and the actions, `rotate-key`'s `--new-key` and
 * `--old-key`), as text, refused before anything is read further when it holds none: openpgp.js's words
 * alone ("not an armored OpenPGP secret key: Armored text not of type private key") named neither the
 * option nor the file, and a publisher who gave keygen's public.asc was not told of the secret.asc beside
 * it. What passes is judged where its signer is made (`createSigner`: passphrase, expiry, a key no client
 * takes).
 * @throws KeyError KEY_INVALID naming `option` and `file` (a public key, a binary secret key, no key);
 *   CliError FILE_NOT_FOUND
 */
export async function readSecretKeyFile(file: string, option: string): Promise<string> {
  const bytes = await readInput(file);
  const text = new TextDecoder('utf-8', { ignoreBOM: true }).decode(bytes);
  if (text.includes(SECRET_KEY_ARMOR)) return text;
  const export_ = 'gpg --export-secret-keys --armor FINGERPRINT';
  const refuse = (what: string): never => {
    throw new KeyError('KEY_INVALID', `${option} ${file} ${what}`);
  };
  if (SECRET_KEY_PACKET_BYTES.has(bytes[0] ?? -1))
    refuse(`is a binary secret key: give it armored (${export_})`);
  const give = `give the secret key (the secret.asc plugindex keygen wrote beside public.asc, or ${export_})`;
  if (text.includes(PUBLIC_KEY_ARMOR)) refuse(`is a public key, not the secret key that signs: ${give}`);
  return refuse(`holds no armored OpenPGP secret key: ${give}`);
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
      const stats = await handle.stat();
      if (stats.isDirectory()) throw Object.assign(new Error('a folder'), { code: 'EISDIR' });
      if (!stats.isFile()) throw new Error('not a regular file');
    } finally {
      await handle.close();
    }
  } catch (cause) {
    throw notRead(file, cause);
  }
}

/**
 * The first byte of a binary secret key (gpg --export-secret-keys): a Secret-Key Packet, tag 5, in the old
 * packet format (0x94-0x97, by length type) or the new one (0xC5) (RFC 9580 §4.2, §5.5.1.3).
 */
const SECRET_KEY_PACKET_BYTES = new Set([0x94, 0x95, 0x96, 0x97, 0xc5]);

/**
 * True when `bytes` (a file, or its first bytes) hold secret key material: a binary secret key, or the
 * armor of one anywhere in the text (after a byte order mark, blank lines, a comment, a public block).
 */
export function holdsSecretKey(bytes: Uint8Array): boolean {
  if (SECRET_KEY_PACKET_BYTES.has(bytes[0] ?? -1)) return true;
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    .toString('latin1')
    .includes(SECRET_KEY_ARMOR);
}

/**
 * A public key file given for a key to trust (`publishers add`, `operators add`, the new owner of
 * `operator transfer` and `owners add`), as text. A secret key is refused (exit 2), never read for its public
 * part: another person's has left its owner, who must be told so (the deployed trust list and the registry
 * refuse one too), where taking its public part in silence trusted it and left the secret key in the
 * operator's hands unsaid; one's own (`owners add` of one's new key) is a file given for the wrong one, and
 * then copied on as the key to trust.
 * @throws CliError SECRET_KEY_GIVEN (exit 2), FILE_NOT_FOUND
 */
export async function readPublicKeyFile(file: string, whose: string): Promise<string> {
  const bytes = await readInput(file);
  if (holdsSecretKey(bytes)) throw secretKeyGiven(file, whose);
  // Binary key packets holding a secret key anywhere (after a public key's, which the first byte shows),
  // read by their tags through openpgp.js, loaded here only: `publish` reads no key through this module.
  if (mayBeBinaryPackets(bytes)) {
    const { findBinarySecretKey } = await import('../index-builder/signing.ts');
    if (await findBinarySecretKey(bytes)) throw secretKeyGiven(file, whose);
  }
  const text = new TextDecoder('utf-8', { ignoreBOM: true }).decode(bytes);
  // Secret key or secret subkey packets under a public key's armor header (a public primary key holding a
  // secret subkey among them), found by their tags with no openpgp.js loaded.
  if (armoredHoldsSecretKeyPackets(text)) throw secretKeyGiven(file, whose);
  return text;
}

/**
 * `readPublicKeyFile`, then the key read and held to what the registry trusts (`readTrustedKey`, `what` its
 * name in messages). Secret packets under a public key's armor header pass the file's test (no secret armor,
 * a text file) and openpgp.js reads them as the secret key: refused all the same, SECRET_KEY_GIVEN.
 * @throws CliError SECRET_KEY_GIVEN (exit 2), FILE_NOT_FOUND; KeyError KEY_INVALID
 */
export async function readTrustedKeyFile(file: string, whose: string, what: string): Promise<PublicKeyInfo> {
  const text = await readPublicKeyFile(file, whose);
  // Loaded here only: `publish`, which reads no key to trust, loads no openpgp.js through this module.
  const { readTrustedKey } = await import('../index-builder/signing.ts');
  const key = await readTrustedKey(text, what);
  if (key.secret) throw secretKeyGiven(file, whose);
  return key;
}

/**
 * `readPublicKeyFile` for a key the client pins or verifies by (`registry add --key`, `registry reset-trust
 * URL --key`, `install URL --key`, `verify --url --key`): secret packets under a public key's armor header
 * are refused too, here where the file can be named (the client refuses them as well, SECRET_KEY_GIVEN).
 * Text that is no key at all is returned as it is, for the reader's own message.
 * @throws CliError SECRET_KEY_GIVEN (exit 2), FILE_NOT_FOUND
 */
export async function readGivenKeyFile(file: string, whose: string): Promise<string> {
  const text = await readPublicKeyFile(file, whose);
  const { readPublicKey } = await import('../index-builder/signing.ts');
  const key = await readPublicKey(text).catch(() => undefined);
  if (key?.secret) throw secretKeyGiven(file, whose);
  return text;
}

function secretKeyGiven(file: string, whose: string): CliError {
  return new CliError(
    'SECRET_KEY_GIVEN',
    `${file} is a secret key, not ${whose} public key: nothing was written, signed or sent. Give the public key (the public.asc plugindex keygen wrote beside it, or gpg --export --armor FINGERPRINT); a secret key sent to you is no longer secret, so its owner should make a new one (plugindex keygen)`,
    { exitCode: 2 },
  );
}

/** How much of a file in an output's place is read to tell whether it holds a secret key (64 KiB). */
const OUTPUT_HEAD_BYTES = 64 << 10;

/** The first `bytes` of `file`, or all of it when shorter. */
async function readHead(file: string, bytes: number): Promise<Uint8Array> {
  const handle = await open(file, 'r');
  try {
    const buffer = new Uint8Array(bytes);
    const { bytesRead } = await handle.read(buffer, 0, bytes, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/**
 * What marks a folder as a local registry's, in cli/local/registry.ts's layout (not imported: that module
 * loads the pipeline, and `pack` pays for every module it loads): its config beside its signing key
 * (`SECRET_KEY_FILE`) or its published snapshot (`SITE_DIR`/`SNAPSHOT_KEY`, what init publishes first). The
 * config alone is not enough, nor beside a bare `keys/` or `public/` folder: README's recipe for a deployed
 * registry writes a `plugindex.json` into the operator's working folder beside `keys/acme` (`keygen --output
 * keys/acme`, each publisher's key pair), where the next publisher's key is made and an action is written
 * with `--output`, both refused; and a web project has its `public/`, a macOS home its `~/Public` (the same
 * name to its case-insensitive disk), where every output below was refused.
 */
const REGISTRY_CONFIG_FILE = 'plugindex.json';
const REGISTRY_MARKS = [path.join('keys', 'registry-secret.asc'), path.join('public', 'snapshot.json')];

/** How many links `realLocation` follows before it takes the path as it is (Linux's own bound is 40). */
const MAX_LINKS = 40;

/**
 * Where `file` is, absolute, every link in it resolved, the file itself too (a link to a registry's config
 * is written through to that config), and a part not there yet kept as given.
 */
async function realLocation(file: string, links = 0): Promise<string> {
  const absolute = path.resolve(file);
  const real = await realpath(absolute).catch(() => undefined);
  if (real !== undefined) return real;
  // A dangling link: writing to it creates its target, so the target is where it writes.
  const target = await lstat(absolute).then(
    (s) => (s.isSymbolicLink() ? readlink(absolute) : undefined),
    () => undefined,
  );
  if (target !== undefined && links < MAX_LINKS)
    return realLocation(path.resolve(path.dirname(absolute), target), links + 1);
  const parent = path.dirname(absolute);
  if (parent === absolute) return absolute;
  return path.join(await realLocation(parent, links), path.basename(absolute));
}

/** True when `dir` holds a registry's config beside its signing key or its published snapshot. */
async function isRegistryFolder(dir: string): Promise<boolean> {
  const isFile = (name: string) =>
    stat(path.join(dir, name)).then(
      (s) => s.isFile(),
      () => false,
    );
  // A mark by lstat: a link there, even one leading nowhere, is the registry's all the same.
  const isThere = (name: string) =>
    lstat(path.join(dir, name)).then(
      () => true,
      () => false,
    );
  if (!(await isFile(REGISTRY_CONFIG_FILE))) return false;
  for (const mark of REGISTRY_MARKS) if (await isThere(mark)) return true;
  return false;
}

/** True when `location` is `dir` or under it (both absolute and resolved). */
function isWithin(location: string, dir: string): boolean {
  const relative = path.relative(dir, location);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}

/**
 * How an output is named to the user: `--option` for an option (`output`, `state`), and a positional as its
 * usage names it (`FILE`, init-config's), never `--FILE`.
 */
function flag(option: string): string {
  return /^[A-Z]/.test(option) ? option : `--${option}`;
}

/**
 * Refuses an output (`--option OUTPUT`, a file or, `keygen`'s, a folder) inside a registry's folder: the
 * `--registry DIR` the command was given, or any folder above it that holds a registry (`isRegistryFolder`),
 * by any path or link to it. `yank ... --registry R --output R/plugindex.json` replaced the registry's config
 * with the action it had signed, and an output under `public/` (served as it is), `keys/`, `state/` or
 * `status/` replaced the registry's key or published state; `keygen --out R/public/me` served the publisher's
 * new secret key. Only the registry's own commands write there.
 * @throws CliError OUTPUT_IN_REGISTRY (exit 2)
 */
export async function refuseOutputInRegistry(
  option: string,
  output: string,
  options: {
    readonly registry?: string | undefined;
    readonly kind?: 'file' | 'folder';
    /** The command that submits what is written (`plugindex publish FILE`), told for a file under incoming/. */
    readonly submit?: string | undefined;
  } = {},
): Promise<void> {
  const location = await realLocation(output);
  let registry: string | undefined;
  if (options.registry !== undefined) {
    const given = await realLocation(options.registry);
    if (isWithin(location, given)) registry = options.registry;
  }
  for (let dir = location; registry === undefined; dir = path.dirname(dir)) {
    if (await isRegistryFolder(dir)) registry = dir;
    if (path.dirname(dir) === dir) break;
  }
  if (registry === undefined) return;
  // A bundle or action aimed at incoming/ (README's tour moves one there): the way in, not only the refusal.
  const within = path.relative(await realLocation(registry), location).split(path.sep)[0];
  const howIn =
    options.submit !== undefined && within === 'incoming'
      ? `: write it outside, then ${options.submit} --registry ${registry} (or move it into ${path.join(registry, 'incoming')} once whole)`
      : '';
  throw new CliError(
    'OUTPUT_IN_REGISTRY',
    `${flag(option)} ${output} is inside the registry ${registry}, whose config, keys and published files only the registry's own commands write: nothing was written (give ${flag(option)} a ${options.kind ?? 'file'} outside it)${howIn}`,
    { exitCode: 2 },
  );
}

/**
 * Refuses to write the file `--option OUTPUT` names over a file the command reads (`inputs`: the same file
 * by any name, a link or another path to it) or over one that holds a secret key, before anything is
 * signed or written: `yank ... --key my-key/secret.asc --output my-key/secret.asc` (a completion one word
 * off) replaced the publisher's only secret key with the action it had signed, and `pack --out` and
 * `rotate-key --output` the same, and `init-config FILE --force` and `verify --state FILE` (which it
 * writes after the check) likewise. Nor inside a registry's folder (`refuseOutputInRegistry`; `registry`: the
 * `--registry DIR` the command was given). Any other file there is written over, as `--out` and `--output` say.
 * @throws CliError OUTPUT_IN_REGISTRY, OUTPUT_OVER_INPUT or OUTPUT_OVER_SECRET_KEY (exit 2)
 */
export async function refuseOutputOver(
  option: string,
  output: string,
  inputs: readonly (string | undefined)[],
  registry?: string,
  submit?: string,
): Promise<void> {
  await refuseOutputInRegistry(option, output, { registry, submit });
  // Nothing there, or nothing this process may read: the write itself then says what is wrong.
  const target = await stat(output).catch(() => undefined);
  if (!target) return;
  for (const input of inputs) {
    if (input === undefined) continue;
    const read = await stat(input).catch(() => undefined);
    if (read && read.dev === target.dev && read.ino === target.ino)
      throw new CliError(
        'OUTPUT_OVER_INPUT',
        `${flag(option)} ${output} is ${input}, which this command reads: nothing was written (give ${flag(option)} another file)`,
        { exitCode: 2 },
      );
  }
  if (!target.isFile()) return;
  const head = await readHead(output, OUTPUT_HEAD_BYTES).catch(() => undefined);
  if (head && holdsSecretKey(head))
    throw new CliError(
      'OUTPUT_OVER_SECRET_KEY',
      `${flag(option)} ${output} holds a secret key, which writing there would destroy: nothing was written (give ${flag(option)} another file)`,
      { exitCode: 2 },
    );
}

/**
 * FILE_NOT_WRITTEN for a file the user named (`--out`, `--output`, init-config's FILE) that could not be
 * written, naming it, why and what to do: a folder that is not there or is a file was a stack trace.
 */
export function notWritten(file: string, cause: unknown): CliError {
  const { code, message } = cause as NodeJS.ErrnoException;
  const next =
    code === 'ENOENT'
      ? 'create its folder first, or name a file in a folder that exists'
      : code === 'ENOTDIR'
        ? 'a part of its path is a file, not a folder: name another path'
        : code === 'EISDIR'
          ? 'it is a folder: name a file'
          : 'name a file this user may write';
  return new CliError('FILE_NOT_WRITTEN', `cannot write ${file}: ${message}: ${next}`, { cause });
}

/**
 * Creates the folder `dir` the user named, and the folders above it that are not there. Not Node's
 * `mkdir(dir, { recursive: true })`: on a filesystem that answers ENOENT for a folder under one that exists
 * (`/proc`), Node makes the parent (EEXIST, taken as done) and tries the folder again, forever, and
 * `keygen --out /proc/x` hung. Here a folder still ENOENT once its parent is there is a failure.
 * @throws CliError FILE_NOT_WRITTEN for that; the errno error of any other mkdir failure, for the caller to name.
 */
export async function makeFolder(dir: string): Promise<void> {
  const made = await mkdir(dir).then(
    () => undefined,
    (error: NodeJS.ErrnoException) => error,
  );
  if (made === undefined || (await isFolder(dir, made))) return;
  const parent = path.dirname(dir);
  if (made.code !== 'ENOENT' || parent === dir) throw made;
  await makeFolder(parent);
  const again = await mkdir(dir).then(
    () => undefined,
    (error: NodeJS.ErrnoException) => error,
  );
  if (again === undefined || (await isFolder(dir, again))) return;
  if (again.code === 'ENOENT')
    throw new CliError(
      'FILE_NOT_WRITTEN',
      `cannot create the folder ${dir}: ${parent} exists, and its filesystem makes no folder there (as /proc): name a folder elsewhere`,
      { cause: again },
    );
  throw again;
}

/** True when mkdir's `error` is EEXIST of a folder: the folder is there, as asked. */
async function isFolder(dir: string, error: NodeJS.ErrnoException): Promise<boolean> {
  return (
    error.code === 'EEXIST' &&
    (await stat(dir).then(
      (s) => s.isDirectory(),
      () => false,
    ))
  );
}

/** Writes `data` to `file` (the user's output); FILE_NOT_WRITTEN, naming the file, when it cannot be. */
export async function writeOutput(file: string, data: Uint8Array | string): Promise<void> {
  try {
    await writeFile(file, data);
  } catch (cause) {
    throw notWritten(file, cause);
  }
}
