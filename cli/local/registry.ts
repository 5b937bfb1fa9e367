/**
 * A registry on the local filesystem, the embedded default:
 *
 *   DIR/plugindex.json            configuration (name, URL, policy, trusted publishers)
 *   DIR/keys/registry-secret.asc  the registry signing key (mode 0600)
 *   DIR/incoming/                 drop submissions here (write elsewhere, then rename in)
 *   DIR/processed/ rejected/      submissions after processing
 *   DIR/status/<id>.json          one outcome per submission
 *   DIR/state/                    internal state (catalog, the configured keys checked)
 *   DIR/public/                   the published tree, served as static files
 */
import { randomUUID } from 'node:crypto';
import { chmod, lstat, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { FsStore } from '../../adapters/fs-store.ts';
import { removeStaleTemps } from '../../adapters/fs-temps.ts';
import { ThreadInspector } from '../../adapters/inspector.ts';
import { withLockFile } from '../../client/disk/atomic.ts';
import { systemClock } from '../../index-builder/clock.ts';
import {
  parseRegistryConfig,
  parseRegistryConfigAt,
  type RegistryConfig,
  readConfigJson,
} from '../../index-builder/config.ts';
import {
  type BatchStep,
  type PipelineContext,
  rebuildRegistry,
  type SubmissionFailure,
} from '../../index-builder/pipeline/index.ts';
import { readSignedRotation } from '../../index-builder/rotation.ts';
import {
  assertSigningKeyTrusted,
  createSigner,
  generateKeyPair,
  readPublicKey,
  type Signer,
} from '../../index-builder/signing.ts';
import {
  type CheckedKeys,
  checkConfiguredKeys,
  checkedKeysChanged,
  checkedKeysText,
  parseCheckedKeys,
} from '../../index-builder/trust.ts';
import { CliError } from '../errors.ts';
import { makeFolder } from '../inputs.ts';
import { createNewFile } from '../new-file.ts';
import { err } from '../terminal.ts';
import { openSite, SITE_DIR } from './site.ts';

export const CONFIG_FILE = 'plugindex.json';
export const SECRET_KEY_FILE = path.join('keys', 'registry-secret.asc');
/** A rotate-key under way, kept until it is complete (cli/local/rotate-key.ts). */
export const PENDING_ROTATION_FILE = path.join('state', 'rotation-pending.json');

export interface LocalRegistry {
  readonly dir: string;
  readonly config: RegistryConfig;
  readonly context: PipelineContext;
}

export async function isRegistry(dir: string): Promise<boolean> {
  return stat(path.join(dir, CONFIG_FILE)).then(
    () => true,
    () => false,
  );
}

async function isFile(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

export async function readConfig(dir: string): Promise<RegistryConfig> {
  let text: string;
  try {
    text = await readFile(path.join(dir, CONFIG_FILE), 'utf8');
  } catch (cause) {
    throw new CliError(
      'NOT_A_REGISTRY',
      `${dir} is not a registry (no ${CONFIG_FILE}); create one with plugindex init`,
      { cause },
    );
  }
  const file = path.join(dir, CONFIG_FILE);
  return parseRegistryConfigAt(readConfigJson(text, file), `registry config ${file}`);
}

/**
 * The config a registry runs with (`openRegistry`, `serve` at its start): `readConfig`'s, its publisher and
 * operator keys read too, so one that could never be trusted (a config edited by hand) stops the run before
 * anything is read or published, named with the file and its entry. `publishers add` and `operators add`
 * open the registry (its signer) so they stop too; `publishers list` and `operators list` read the config
 * with `readConfig` alone, and the entry is mended by hand.
 * @throws ConfigError CONFIG_INVALID (`checkConfiguredKeys`), and what `readConfig` throws
 */
export async function readRunningConfig(dir: string): Promise<RegistryConfig> {
  const config = await readConfig(dir);
  const checked = await readCheckedKeys(dir);
  const passed = await checkConfiguredKeys(config, `registry config ${path.join(dir, CONFIG_FILE)}`, {
    checked,
  });
  if (checkedKeysChanged(checked, passed)) await writeCheckedKeys(dir, passed);
  return config;
}

/**
 * The digests of the configured entries this registry's config held when its keys were last checked and
 * passed (`configuredKeyDigest`: the entry's fingerprint and key text, and the checks made), so a cold
 * process (each `plugindex publish`) reads again only the entries that changed, not every key (about 1 ms
 * each: two seconds at 2,000 publishers). Only entries that passed are listed, and a changed text is another
 * digest, so a key refused is refused again at every load. Beside each digest, the (sub)key IDs of its key:
 * a signature whose issuer no entry's fingerprint names (a stranger's, a signing subkey's) is looked up by them
 * (`configuredCandidates`), where it read every configured key; the key found is still read and must hold
 * the ID. The file trusts nothing the config does not: whoever can write it can write plugindex.json beside it.
 */
export const CHECKED_KEYS_FILE = path.join('state', 'checked-keys.json');

/** The entries kept in CHECKED_KEYS_FILE; none when it is missing or not as written (all checked again). */
async function readCheckedKeys(dir: string): Promise<CheckedKeys> {
  return parseCheckedKeys(await readFile(path.join(dir, CHECKED_KEYS_FILE), 'utf8').catch(() => undefined));
}

/**
 * Keeps the digests (and key IDs) of the config's entries now checked, replacing the file whole (renamed into place, so a
 * reader meets one list or the other). Unwritten (a registry folder read-only to this user), the next process
 * checks every key again: slower, never less checked, so the failure is not the caller's.
 */
async function writeCheckedKeys(dir: string, checked: CheckedKeys): Promise<void> {
  const file = path.join(dir, CHECKED_KEYS_FILE);
  const temp = `${file}.${process.pid}.${randomUUID()}.tmp`;
  try {
    await writeFile(temp, checkedKeysText(checked));
    await rename(temp, file);
  } catch {
    await rm(temp, { force: true }).catch(() => undefined);
  }
}

/**
 * Refuses the registry's key file when it holds a key no signature by which is taken (`serve` at its start,
 * as for its config: every batch would fail on it, `createSigner`'s KEY_UNTRUSTED, and the server served a
 * tree anyone could forge). A key file missing, unreadable or encrypted without its passphrase is left to the
 * batches to report, as before: the published tree is still served.
 * @throws KeyError KEY_UNTRUSTED
 */
export async function checkRegistryKey(dir: string): Promise<void> {
  const secret = await readFile(path.join(dir, SECRET_KEY_FILE), 'utf8').catch(() => undefined);
  const key = secret === undefined ? undefined : await readPublicKey(secret).catch(() => undefined);
  if (key) assertSigningKeyTrusted(key.key);
}

/**
 * Writes the registry's config, and beside it the digests of its entries, checked (CHECKED_KEYS_FILE): what
 * `publishers add` and `operators add` write is checked there already, so the next load reads no key again
 * (and a later command that writes nothing leaves the registry as it found it).
 * @throws ConfigError CONFIG_INVALID (`checkConfiguredKeys`), before anything is written
 */
export async function writeConfig(dir: string, config: RegistryConfig): Promise<void> {
  const file = path.join(dir, CONFIG_FILE);
  const checked = await readCheckedKeys(dir);
  const passed = await checkConfiguredKeys(config, `registry config ${file}`, { checked });
  const temp = `${file}.${process.pid}.tmp`;
  await writeFile(temp, `${JSON.stringify(config, null, 2)}\n`);
  await rename(temp, file);
  await writeCheckedKeys(dir, passed);
}

/** The process's inspector threads, started by the first batch large enough, shared by every registry it opens. */
const inspector = new ThreadInspector();

/**
 * The stores a caller keeps for a registry across runs (a long-running server): what the pipeline caches
 * per store (each catalog bin's lines and document digests, keyed by the bin's digest in the catalog's meta
 * file, so another process's changes are read again) then lasts beyond one run.
 */
export interface RegistryStores {
  /** The published tree (`openSite`). */
  readonly site?: FsStore;
  /** The registry folder itself: incoming/, status/, state/ and the rest. */
  readonly intake?: FsStore;
}

/**
 * The signer of the last key this process opened, by the key's armored text and passphrase. A server opens
 * its registry for every publish handed to it, and making the signer again (openpgp.js reading the key and
 * checking its self-signatures) took 4-19 ms of such a publish's 80-100. The key file is still read at
 * every open, under the lock: another key there (a rotate-key) is another signer at once.
 */
let lastSigner:
  | { readonly secret: string; readonly passphrase: string | undefined; readonly signer: Promise<Signer> }
  | undefined;

function signerOf(secret: string, passphrase: string | undefined): Promise<Signer> {
  if (lastSigner?.secret === secret && lastSigner.passphrase === passphrase) return lastSigner.signer;
  const signer = createSigner(secret, passphrase);
  lastSigner = { secret, passphrase, signer };
  return signer;
}

/**
 * With PLUGINDEX_STEPS set (to anything but empty), each batch says on stderr when each of its steps ends, in
 * milliseconds since the process started: where a slow batch spends its time, without a profiler.
 */
function printStep(step: BatchStep): void {
  err(`plugindex: ${step} at ${Math.round(performance.now())} ms`);
}

/**
 * A submission the registry failed, said on stderr (the local operator's log) with what failed: its outcome in
 * `status/` says what happened in stable terms, without the store's own message (an absolute path).
 */
function printFailure({ submission, id, code, error }: SubmissionFailure): void {
  err(
    `plugindex: ${code} for ${submission} (status/${id}.json): ${error instanceof Error ? error.message : String(error)}`,
  );
}

/** The registry in `dir`, its signing key read now; `stores`, those the caller opened already. */
export async function openRegistry(dir: string, stores: RegistryStores = {}): Promise<LocalRegistry> {
  const config = await readRunningConfig(dir);
  const secret = await readFile(path.join(dir, SECRET_KEY_FILE), 'utf8');
  const passphrase = process.env.PLUGINDEX_KEY_PASSPHRASE;
  const signer = await signerOf(secret, passphrase);
  return {
    dir,
    config,
    context: {
      intake: stores.intake ?? new FsStore(dir),
      site: stores.site ?? openSite(dir),
      signer,
      clock: systemClock,
      config,
      inspector,
      ...(process.env.PLUGINDEX_STEPS ? { onStep: printStep } : {}),
      onSubmissionFailure: printFailure,
    },
  };
}

/** Creates a registry: config, signing key, and an empty but complete, signed published tree. */
export async function initRegistry(
  dir: string,
  options: { readonly name: string; readonly url: string; readonly description?: string },
): Promise<{ registry: LocalRegistry; fingerprint: string }> {
  if (await isRegistry(dir)) throw new CliError('REGISTRY_EXISTS', `${dir} is already a registry`);
  const config = parseRegistryConfig({
    name: options.name,
    url: options.url,
    ...(options.description ? { description: options.description } : {}),
    policy: 'open',
    ownership: 'first-come',
    publishers: [],
  });
  // A key already there is kept, whatever else the folder lacks: one put back beside a lost config is the
  // key clients pinned, and a new one written over it could never be followed to. Nor is a file or link
  // someone else put there written through (a link to a file they can read, in a shared folder).
  const keyFile = path.join(dir, SECRET_KEY_FILE);
  const keyExists = (cause?: unknown) =>
    new CliError(
      'FILE_EXISTS',
      `${keyFile} exists: a signing key there is never replaced by init (move it away to start anew)`,
      cause === undefined ? undefined : { cause },
    );
  if (
    await lstat(keyFile).then(
      () => true,
      () => false,
    )
  )
    throw keyExists();
  // What the folder held before (undefined: no folder), so that a failed init takes away all it made: left
  // half made, its config said "already a registry" to the next init, and no published tree or key was ever
  // made. The key file was checked absent above, so what is removed was never a key clients pinned.
  const before = await entriesOf(dir);
  let madeKey = false;
  try {
    for (const sub of ['keys', 'incoming', 'processed', 'rejected', 'status', 'state', SITE_DIR]) {
      // Not Node's recursive mkdir, which loops for ever under /proc (makeFolder says why).
      await makeFolder(path.join(dir, sub));
    }
    const pair = await generateKeyPair({ name: `${options.name} (signing key)` });
    // Created here, whole, or refused: never opened through what appeared since the check.
    await createNewFile(keyFile, pair.secretKey, { mode: 0o600, exists: keyExists });
    madeKey = true;
    await chmod(keyFile, 0o600);
    await writeConfig(dir, config);
    const registry = await openRegistry(dir);
    await rebuildRegistry(registry.context);
    return { registry, fingerprint: pair.fingerprint };
  } catch (error) {
    // A key file that appeared since the check (FILE_EXISTS) is someone else's: it stays, with its folder.
    const kept = madeKey ? before : new Set([...(before ?? []), 'keys', SECRET_KEY_FILE]);
    await removeAllBut(dir, kept).catch((cause: unknown) =>
      err(`plugindex: could not remove what the failed init made in ${dir}: ${(cause as Error).message}`),
    );
    throw error;
  }
}

/** Every entry under `dir`, relative to it; undefined when there is no such folder. */
async function entriesOf(dir: string): Promise<Set<string> | undefined> {
  try {
    return new Set(await readdir(dir, { recursive: true }));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    // A mistyped --registry naming a file (or a path under one) was a stack trace.
    if (code === 'ENOTDIR')
      throw new CliError(
        'FILE_NOT_WRITTEN',
        `cannot make the registry ${dir}: it, or a folder above it, is a file: name a folder (or one not there yet)`,
        { cause: error },
      );
    throw error;
  }
}

/** Removes from `dir` every entry `kept` does not hold (the whole folder when `kept` is undefined). */
async function removeAllBut(dir: string, kept: Set<string> | undefined): Promise<void> {
  if (kept === undefined) {
    await rm(dir, { recursive: true, force: true });
    return;
  }
  for (const entry of (await entriesOf(dir)) ?? []) {
    const parent = path.dirname(entry);
    // Only the topmost new entries: what is under them goes with them.
    if (!kept.has(entry) && (parent === '.' || kept.has(parent)))
      await rm(path.join(dir, entry), { recursive: true, force: true });
  }
}

/**
 * An exclusive lock on the registry, so `publish` and a running `serve --watch` never rebuild at once
 * (the local stand-in for the single-consumer queue of the AWS deployment). Taking the lock of a holder that
 * was killed, it also removes the temp files that holder's stores left (and those of other writers gone
 * long since, a killed submitter's in incoming/): a walk of the whole registry, paid only after a kill, and
 * beside the work rather than before it, since it removes only files of processes that are gone (at
 * 100,000 plugins of 10 versions the walk would take minutes, and a waiter gives up after 30 s). The call
 * returns once both are done, the lock released as soon as the work is.
 */
export async function withRegistryLock<T>(
  dir: string,
  work: () => Promise<T>,
  timeoutMs = 30_000,
): Promise<T> {
  // Taking the lock makes its folder: a mistyped --registry became an empty folder (and a file there
  // FOLDER_NOT_MADE), so a folder that holds no registry is refused first.
  if (!(await isRegistry(dir))) await readConfig(dir);
  // One a stale lock this waiter broke (it may break more than one before it holds the lock).
  const sweeping: Promise<void>[] = [];
  try {
    return await withLockFile(path.join(dir, '.lock'), work, {
      timeoutMs,
      busy: (holder) => new CliError('LOCKED', `registry ${dir} is busy (lock held by process ${holder})`),
      broke: async (holder) => {
        sweeping.push(sweepTemps(dir, holder));
      },
    });
  } finally {
    await Promise.all(sweeping);
  }
}

/** removeStaleTemps after a killed `holder`, said on stderr; tidying only, so it never fails the work. */
async function sweepTemps(dir: string, holder: number | undefined): Promise<void> {
  try {
    const removed = await removeStaleTemps(dir, holder === undefined ? {} : { killed: holder });
    if (removed.length > 0)
      err(
        `plugindex: removed ${removed.length} temp file(s) left by process ${holder ?? '(unknown)'}, killed`,
      );
  } catch (error) {
    // A folder it cannot read or a file it cannot remove does not stop the work.
    err(`plugindex: could not remove the temp files a killed process left: ${(error as Error).message}`);
  }
}

/**
 * Opens the registry under its lock and runs `work` with it: the signing key is read once the lock is held,
 * so a `rotate-key` that held it before cannot leave this run signing with the key it replaced.
 */
export function withOpenRegistry<T>(
  dir: string,
  work: (registry: LocalRegistry) => Promise<T>,
  stores?: RegistryStores,
): Promise<T> {
  return withRegistryLock(dir, async () => {
    // The new key may already be installed while the rotation is unfinished: anything signed now would be
    // signed by a key no published rotation names yet.
    const pendingFile = path.join(dir, PENDING_ROTATION_FILE);
    if (await isFile(pendingFile)) throw await rotationPending(dir, pendingFile);
    return work(await openRegistry(dir, stores));
  });
}

/**
 * ROTATION_PENDING, naming the rotation under way (its number and the key it goes to, read from the signed
 * rotation kept in `pendingFile`) and the command that finishes it: "the same new key" alone left the
 * operator to guess which of their key files that was.
 */
async function rotationPending(dir: string, pendingFile: string): Promise<CliError> {
  let rotation: { sequence: number; next: string } | undefined;
  try {
    const read = readSignedRotation(new Uint8Array(await readFile(pendingFile)), pendingFile);
    rotation = { sequence: read.rotation.sequence, next: read.rotation.next.fingerprint };
  } catch {
    // A kept rotation that does not read is rotate-key's to refuse, naming what is wrong with it.
  }
  const what = rotation
    ? `registry key rotation ${rotation.sequence} to key ${rotation.next} is under way in ${dir}, kept in ${pendingFile}`
    : `a registry key rotation is under way in ${dir}, kept in ${pendingFile}`;
  const key = rotation ? `the secret key ${rotation.next}` : 'the same new key the rotation began with';
  return new CliError(
    'ROTATION_PENDING',
    `${what}; nothing is signed until it is finished: finish it first by running plugindex rotate-key --registry ${dir} --new-key FILE, FILE ${key} (a run that died part way resumes where it stopped)`,
  );
}
