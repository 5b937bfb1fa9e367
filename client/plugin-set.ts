/**
 * A plugin set file (`install -c plugins.yaml`, Optimus's plugin manager): the sources it names made into
 * sources an install reads (registries by URL and pinned key, folders of signed manifests on disk, on a
 * web server or in a bucket), its plugins into install targets, and the three things a team does with it:
 * install exactly the set (and lock it beside the file), see what an install would change (`diff`), and
 * remove what the set no longer names (`clean`). Every decision is install.ts's; this file only wires.
 */
import { basename, dirname, extname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { dearmoredBlocks, isSecretKeyText, mayBeBinaryPackets } from '../index-builder/armor.ts';
import { sha256Hex } from '../index-builder/digest.ts';
import { primaryKeyFingerprint } from '../index-builder/fingerprint.ts';
import { versionFolder } from '../index-builder/layout.ts';
import type { PublicKeyInfo } from '../index-builder/signing.ts';
import { compareVersions } from '../index-builder/versions.ts';
import { DEFAULT_TIMEOUT_SECONDS, type RegistryAuth, type RegistryEntry } from './config.ts';
import { type ClientContext, loadTrust, readPinnedKey } from './context.ts';
import { type DiscoveredPlugin, type TrustedKey, verifyFound } from './discovery.ts';
import { readIfExists, readTextIfExists, withFileLock } from './disk/atomic.ts';
import { scanPluginFolders } from './disk/discover.ts';
import {
  filesSharingStem,
  foldedName,
  goneSetFiles,
  type InstallTree,
  readLockfile,
  type SetOwner,
  setOwnerOf,
  setTrustName,
  type TrustRecord,
} from './disk/state.ts';
import { ClientError } from './errors.ts';
import type { Endpoint } from './fetcher.ts';
import {
  type InstallOptions,
  type InstallResult,
  type InstallTarget,
  installedManifestProblems,
  installedPolicyProblems,
  installPlugins,
  type Planned,
  placedKeyProblem,
  planInstall,
} from './install.ts';
import {
  type InstalledFile,
  type InstalledVersion,
  isClaimedByLock,
  isPlacedBySet,
  ownersOf,
  withoutInstalled,
  withoutPlatforms,
  withoutSetOwner,
  withSetOwner,
} from './installed.ts';
import { own } from './json-input.ts';
import { type LockChange, type Lockfile, madeFromSetFile, type SetFileDigests } from './lockfile.ts';
import { type VerifyFinding, verifyInstalled } from './maintain.ts';
import { refusalText } from './policy.ts';
import { platformKey } from './resolve.ts';
import { type PluginSet, parsePluginSet, type SetProvider } from './set-file.ts';
import { folderSource, registrySource, type Source, type SourceLookup } from './source.ts';

/** A plugin set read and made ready: its sources, its targets, and the lock beside it. */
export interface OpenedSet {
  readonly set: PluginSet;
  /** The file's digests (`setFileDigest`): of its text with line feeds, recorded in the lock, and its bytes'. */
  readonly digests: SetFileDigests;
  /** `<folder>/<file name without extension>.lock`: beside the file, one per set. */
  readonly lockfile: string;
  readonly sources: SourceLookup;
  readonly targets: readonly InstallTarget[];
  /** Every folder the set installs into. */
  readonly dirs: readonly string[];
}

/**
 * The set file's text.
 * @throws ClientError PLUGIN_SET_INVALID when it does not exist or is not a file.
 */
async function readSetFile(file: string): Promise<string> {
  let text: string | undefined;
  try {
    text = await readTextIfExists(file);
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code !== 'EISDIR') throw cause;
    throw new ClientError('PLUGIN_SET_INVALID', `${file} is a folder, not a plugin set file`, { cause });
  }
  if (text === undefined)
    throw new ClientError(
      'PLUGIN_SET_INVALID',
      `${file} does not exist (\`plugindex init-config\` writes a starter)`,
    );
  return text;
}

/** Every folder a set installs into: its install_location, then each plugin's own. */
function installDirs(set: PluginSet): string[] {
  return [
    ...new Set([
      set.installLocation,
      ...set.plugins.flatMap((p) => (p.install_location ? [p.install_location] : [])),
    ]),
  ];
}

/** True when the set installs `name` into `dir` (a plugin moved to another folder is not named in the old). */
function namesIn(opened: OpenedSet, name: string, dir: string): boolean {
  return opened.targets.some((t) => t.name === name && t.dir === dir);
}

/**
 * The platforms (`os-arch`) the set lists for `name` in `dir`, or undefined when it lists none. Files of a
 * platform it does not list are no longer wanted there (`clean -c` removes them). A plugin without
 * `platforms:` installs this machine's platform, but a folder several machines share (or one that another
 * command filled) may hold others the set never ruled out: nothing is removed by platform then.
 */
function listedPlatforms(opened: OpenedSet, name: string, dir: string): Set<string> | undefined {
  const target = opened.targets.find((t) => t.name === name && t.dir === dir);
  return target?.platforms && target.platforms.length > 0
    ? new Set(target.platforms.map(platformKey))
    : undefined;
}

/** The key each provider of the set pins, read once, by provider name. */
async function providerKeys(set: PluginSet): Promise<Map<string, PublicKeyInfo>> {
  const keys = new Map<string, PublicKeyInfo>();
  for (const provider of [...set.providers, ...(set.discovery?.registries ?? [])])
    if (provider.key !== undefined)
      keys.set(provider.name, await readKey(provider.key, `${set.file}#${provider.pointer}/key`));
  return keys;
}

/**
 * The lock of a set file: `plugins.yaml` -> `plugins.lock`, in the same folder. Named for the set file
 * without its extension, so another set file whose name differs only in the extension (`plugins.yml`,
 * `plugins.json`, `plugins`) would be locked in the same file, each install silently replacing the other's
 * pins: refused while such a file is there. Another file counts when it is named `.yaml` or `.yml` (a set
 * being edited may not read as one), or when it reads as a plugin set (`plugins.md` beside it does not).
 * The lock's name itself is left as it always was, so every lock written so far is still found.
 * @throws ClientError PLUGIN_SET_INVALID for a set file that would be its own lock (`team.lock`): an install
 *   wrote the lock over it, and the set was gone; and for another set file sharing its lock.
 */
async function lockfileOf(file: string, options: { readonly home: string }): Promise<string> {
  const lockfile = join(dirname(file), `${basename(file, extname(file))}.lock`);
  // Compared as a filesystem that ignores case compares names: `team.LOCK` is `team.lock` on macOS.
  if (foldedName(basename(lockfile)) === foldedName(basename(file)))
    throw new ClientError(
      'PLUGIN_SET_INVALID',
      `${file}: a plugin set file named .lock would be its own lock file, which an install writes (in any letter case: where case is ignored, as on macOS and Windows, ${basename(lockfile)} is that file): name it .yaml (plugins.yaml, locked in plugins.lock)`,
    );
  const sharing: string[] = [];
  for (const other of await filesSharingStem(file, lockfile))
    if (await isSetFile(other.path, other.size, options)) sharing.push(other.path);
  if (sharing.length > 0) {
    const stem = basename(file, extname(file));
    const byCase = sharing.some((other) => basename(other, extname(other)) !== stem);
    throw new ClientError(
      'PLUGIN_SET_INVALID',
      `${file}: ${sharing.join(' and ')} beside it ${sharing.length === 1 ? 'is a plugin set file' : 'are plugin set files'} too, and a set is locked in the file named for it without its extension: both would be locked in ${lockfile}${byCase ? ' (names that differ only in letter case are one file where case is ignored, as on macOS and Windows by default)' : ''}, each install replacing the other's pins; rename one of them (${stem}-other${extname(file) || '.yaml'} is locked in ${stem}-other.lock), or remove the one no longer used`,
    );
  }
  return lockfile;
}

/** The most of another file read to see whether it is a plugin set: a set's own cap, in UTF-8 at worst. */
const SET_FILE_MAX_BYTES = 4 * 1_048_576;

/** True when `path` (of `size` bytes) is a plugin set file: named as YAML, or reading as a set. */
async function isSetFile(path: string, size: number, options: { readonly home: string }): Promise<boolean> {
  if (['.yaml', '.yml'].includes(extname(path).toLowerCase())) return true;
  if (size > SET_FILE_MAX_BYTES) return false;
  const text = await readTextIfExists(path).catch(() => undefined);
  if (text === undefined) return false;
  try {
    parsePluginSet(text, path, options);
    return true;
  } catch {
    return false;
  }
}

/**
 * Reads and checks the set file and the key files it names; each source is opened (its key parsed) when
 * an install first asks for it, so a tree that already is the lock loads no signature code at all.
 * @throws ClientError PLUGIN_SET_INVALID (the file, its pointers, a key file missing), REGISTRY_NOT_PINNED.
 */
async function openPluginSet(
  ctx: ClientContext,
  file: string,
  options: { readonly home: string },
): Promise<OpenedSet> {
  const text = await readSetFile(file);
  const set = parsePluginSet(text, file, options);
  const lockfile = await lockfileOf(file, options);
  const lock = await readLockfile(lockfile);
  const armored = new Map<string, string>();
  for (const provider of [...set.providers, ...(set.discovery?.registries ?? [])]) {
    await checkCredentialsTrusted(ctx, set, provider);
    const text = await checkProvider(ctx, set, provider);
    if (text !== undefined) armored.set(provider.name, text);
  }
  const opening = new Map<string, Promise<Source>>();
  const providerNamed = (name: string) =>
    [...set.providers, ...(set.discovery?.registries ?? [])].find((p) => p.name === name);
  const sources: SourceLookup = {
    has: (name) => providerNamed(name) !== undefined && armored.has(name),
    // The key file parsed (signature code loaded), the session left unopened: asked only of a version
    // installed.json records under another key than the lock's, as verify -c judges it (`verifySet`).
    keyFile(name) {
      const text = armored.get(name);
      return text === undefined ? undefined : keyFileFingerprint(text);
    },
    async pins(name) {
      const provider = providerNamed(name);
      const text = armored.get(name);
      if (!provider || text === undefined) return undefined;
      const fingerprint =
        keyFileFingerprint(text) ??
        (await parseKey(text, provider.key as string, `${set.file}#${provider.pointer}/key`)).fingerprint;
      const { current } =
        provider.type === 'registry' && provider.url !== undefined
          ? await keptSetTrust(ctx, setTrustName(provider.url, fingerprint), fingerprint)
          : { current: undefined };
      return {
        fingerprint: current?.fingerprint ?? fingerprint,
        previousKeys: (current?.chain ?? []).map((link) => link.fingerprint),
      };
    },
    get(name) {
      const provider = providerNamed(name);
      const text = armored.get(name);
      if (!provider || text === undefined) return undefined;
      let source = opening.get(name);
      if (!source) {
        source = sourceOf(ctx, set, provider, text, lock);
        opening.set(name, source);
      }
      return source;
    },
  };
  const targets = set.plugins.map(
    (p): InstallTarget => ({
      name: p.name,
      spec: p.version,
      registry: p.provider,
      dir: p.install_location ?? set.installLocation,
      ...(p.platforms ? { platforms: p.platforms } : {}),
      ...(p.output !== undefined ? { output: p.output } : {}),
      where: `${file}#${p.pointer}`,
      // As the source joins it to its folder's URL (folder-source.ts), so as the lock records it.
      ...(p.path !== undefined ? { path: new URL(p.path, 'file:///').pathname.slice(1) } : {}),
    }),
  );
  const dirs = installDirs(set);
  return { set, digests: setFileDigest(text), lockfile, sources, targets, dirs };
}

/**
 * The set file's digest as the lock records it (`config_sha256`): of its text with every line break a line
 * feed, as YAML reads CR LF and CR (and JSON outside its strings, where neither may stand). A checkout's
 * line endings are the system's (Git for Windows checks text out with CR LF): digested as bytes, the one
 * set locked on Linux was another file on Windows, `diff -c` exited 1 there for good and each `install -c`
 * rewrote the lock's digest, back again on the next Linux install. A file of line feeds keeps its digest.
 * One with a CR has its bytes' digest too: what clients before this one recorded in a Windows checkout, a
 * lock of the same file (`madeFromSetFile`); taken for another, `diff -c` there exited 1 from the upgrade on,
 * and the next `install -c` rewrote a lock no one had changed.
 */
function setFileDigest(text: string): SetFileDigests {
  const sha256 = sha256Hex(text.replace(/\r\n?/g, '\n'));
  const bytesSha256 = sha256Hex(text);
  return { sha256, ...(bytesSha256 !== sha256 ? { bytesSha256 } : {}) };
}

/**
 * The fingerprint of the key an armored key file holds, computed from its first packet without openpgp.js
 * (fingerprint.ts `primaryKeyFingerprint`), or undefined where it cannot be (binary packets, no public key
 * packet first): the caller then parses the key. Its trust is not judged here: the source that opens it
 * parses it (`parseKey`) before anything is read under it.
 */
function keyFileFingerprint(text: string): string | undefined {
  const first = dearmoredBlocks(text).next();
  return first.done === true ? undefined : primaryKeyFingerprint(first.value);
}

/**
 * The trust state kept for a set's registry when it is of the key the set pins, or of the one its registry
 * rotated to from it (`rotated`), as an earlier run followed; else undefined.
 */
async function keptSetTrust(
  ctx: ClientContext,
  trustName: string,
  fingerprint: string,
): Promise<{ current: TrustRecord | undefined; rotated: boolean }> {
  const kept = await ctx.trust(trustName);
  const rotated = kept?.chain?.some((link) => link.fingerprint === fingerprint) === true;
  return { current: kept?.fingerprint === fingerprint || rotated ? kept : undefined, rotated };
}

/**
 * The armored key a provider pins, or undefined for a registry named without a key: that one is the
 * configured registry of that name, found as `install NAME --registry` finds it.
 * @throws ClientError PLUGIN_SET_INVALID (the key file is missing), REGISTRY_NOT_PINNED.
 */
async function checkProvider(
  ctx: ClientContext,
  set: PluginSet,
  provider: SetProvider,
): Promise<string | undefined> {
  if (provider.type === 'registry' && provider.key === undefined) {
    if (provider.url === undefined) return undefined;
    // A discovery registry written without a key: the configured registry of that name, at that URL, or
    // nothing (never another registry that happens to have the name).
    const configured = await ctx.registryEntry(provider.name);
    const where = `${set.file}#${provider.pointer}`;
    if (!configured)
      throw new ClientError(
        'REGISTRY_NOT_PINNED',
        `${where}: registry ${provider.name} (${provider.url}) has no key, and no registry of that name is configured: give it key: FILE, or run \`plugindex registry add ${provider.name} ${provider.url} --key FILE\``,
      );
    if (configured.url !== provider.url)
      throw new ClientError(
        'REGISTRY_NOT_PINNED',
        `${where}: registry ${provider.name} is configured at ${configured.url}, not at ${provider.url} as the set says; give it key: FILE, or fix either URL`,
      );
    return undefined;
  }
  return readKeyText(provider.key as string, `${set.file}#${provider.pointer}/key`);
}

/**
 * A set's `auth` goes only where the user's own configuration sends that secret: to the origin of a
 * configured registry whose auth is the same (its type, its reference, its user name). A set file comes
 * with a checkout, which a pull request may edit: it named `${ANY_VARIABLE}` (the token config.json names
 * for a private registry, a CI secret) or `file:~/...` and a URL of its choosing, and the secret went there
 * as a header. Checked before any secret is read or request made.
 * @throws ClientError CREDENTIALS_NOT_TRUSTED naming the field, the secret's reference and the origin.
 */
async function checkCredentialsTrusted(
  ctx: ClientContext,
  set: PluginSet,
  provider: SetProvider,
): Promise<void> {
  if (provider.type !== 'registry' && provider.type !== 'url') return;
  const { auth, url } = provider;
  // A registry named without a key is the configured one, reached with the configuration's own auth; a
  // file: URL is sent nothing.
  if (auth === undefined || url === undefined || url.startsWith('file:')) return;
  if (provider.type === 'registry' && provider.key === undefined) return;
  const origin = new URL(url).origin;
  const sending = (await ctx.registryEntries()).filter(
    (entry) => new URL(entry.url).origin === origin && sameAuth(entry.auth, auth),
  );
  const reference = secretReference(auth);
  if (sending.length > 0) {
    await checkCaTrusted(set, provider, { origin, reference, sending });
    return;
  }
  const command = `plugindex registry add NAME ${url} --key FILE --auth ${auth.type} --secret '${reference}'${auth.type === 'basic_auth' ? ` --username ${auth.username}` : ''}`;
  throw new ClientError(
    'CREDENTIALS_NOT_TRUSTED',
    `${set.file}#${provider.pointer}/auth: the set would send the secret ${reference} to ${origin}, where the configuration sends it to no registry: a set file comes with a checkout, which a pull request may edit, so its credentials go only where the user's own configuration sends them; if this is the place, configure it (\`${command}\`)`,
  );
}

/**
 * Where a set's auth is honoured, the TLS trust that guards the secret is the configured registry's: a set's
 * `ca_file` there is taken only when it holds the very certificates a configured registry sending that secret
 * trusts (its `ca_file`, line endings aside). A set's own CA for that origin (a pull request may add one, and
 * the system's roots were all the configuration trusted) would let whoever can intercept the connection
 * present a certificate of it, and read the secret the configuration holds. Refused rather than ignored: a
 * set that names a CA expects it to be used, and a connection made otherwise would fail or, worse, pass for
 * a reason the set's reader cannot see. A CA bundle that is missing is said where it is read (`reachable`).
 * @throws ClientError CA_NOT_TRUSTED naming the field, the origin and the CA the configuration trusts there.
 */
async function checkCaTrusted(
  set: PluginSet,
  provider: SetProvider,
  {
    origin,
    reference,
    sending,
  }: { readonly origin: string; readonly reference: string; readonly sending: readonly RegistryEntry[] },
): Promise<void> {
  if ((provider.type !== 'registry' && provider.type !== 'url') || provider.ca_file === undefined) return;
  const at = `${set.file}#${provider.pointer}/ca_file`;
  const wanted = (await readSetPath(provider.ca_file, at, 'the CA bundle'))?.toString('utf8');
  if (wanted === undefined) return;
  for (const entry of sending) {
    if (entry.ca_file === undefined) continue;
    const configured = await readTextIfExists(entry.ca_file).catch(() => undefined);
    if (configured !== undefined && samePem(configured, wanted)) return;
  }
  const trusted = sending
    .map((entry) =>
      entry.ca_file === undefined
        ? `${entry.name}: the system's roots`
        : `${entry.name}: the CA bundle ${entry.ca_file}`,
    )
    .join('; ');
  throw new ClientError(
    'CA_NOT_TRUSTED',
    `${at}: the set would trust the CA bundle ${provider.ca_file} for ${origin}, where it sends the secret ${reference} of the configured registry (${trusted}): a set file comes with a checkout, which a pull request may edit, and a CA of its choosing would let whoever can intercept the connection read the secret; remove ca_file from the set, or give it the CA bundle the configured registry trusts`,
  );
}

/** Whether two PEM texts hold the same certificates, as a checkout's line endings may differ. */
function samePem(a: string, b: string): boolean {
  const normal = (text: string): string => text.replace(/\r\n/g, '\n').trim();
  return normal(a) === normal(b);
}

/** Whether two auths send the same secret the same way (an api_key's header name aside: same origin). */
function sameAuth(configured: RegistryAuth | undefined, wanted: RegistryAuth): boolean {
  if (configured === undefined || configured.type !== wanted.type) return false;
  if (configured.type === 'basic_auth' && wanted.type === 'basic_auth')
    return configured.username === wanted.username && configured.password === wanted.password;
  return secretReference(configured) === secretReference(wanted);
}

/** The reference (`${NAME}` or `file:PATH`, never a secret) an auth names. */
function secretReference(auth: RegistryAuth): string {
  switch (auth.type) {
    case 'bearer_token':
      return auth.bearer_token;
    case 'api_key':
      return auth.api_key;
    case 'basic_auth':
      return auth.password;
  }
}

/** The source a provider names, verified by the key it pins. */
async function sourceOf(
  ctx: ClientContext,
  set: PluginSet,
  provider: SetProvider,
  armored: string,
  lock: Lockfile | undefined,
): Promise<Source> {
  const key = await parseKey(armored, provider.key as string, `${set.file}#${provider.pointer}/key`);
  const timeoutMs = DEFAULT_TIMEOUT_SECONDS * 1000;
  switch (provider.type) {
    case 'registry': {
      const entry: RegistryEntry = {
        name: provider.name,
        url: provider.url as string,
        priority: provider.priority,
        key_fingerprint: key.fingerprint,
        mirrors: provider.mirrors,
        ...(provider.ca_file ? { ca_file: provider.ca_file } : {}),
        ...(provider.timeout_seconds ? { timeout_seconds: provider.timeout_seconds } : {}),
        ...(provider.auth ? { auth: provider.auth } : {}),
      };
      // Its trust state is kept as a configured registry's is, under a name of its URL and key (the set
      // names it, the configuration does not): the highest generation seen is the floor, and no lower than
      // the lock's.
      const trustName = setTrustName(entry.url, key.fingerprint);
      const { current, rotated } = await keptSetTrust(ctx, trustName, key.fingerprint);
      const pinned = current?.fingerprint ?? key.fingerprint;
      const locked = lock ? own(lock.registries, provider.name) : undefined;
      const floor = Math.max(
        current?.highestGeneration ?? 0,
        locked?.key_fingerprint === pinned ? locked.min_generation : 0,
      );
      const trust = {
        ...(current ?? {}),
        fingerprint: pinned,
        armoredKey: current?.armoredKey ?? key.armored,
        ...(floor > 0 ? { highestGeneration: floor } : {}),
      };
      return registrySource(
        await reachable(set, provider, async () =>
          ctx.openSession(
            entry,
            trust,
            (record) => ctx.writeTrust(trustName, record),
            // A key followed to through rotations is read from the trust state, checked as any pinned key
            // (under the name its folder has, which the refusal tells to remove).
            rotated ? await readPinnedKey(trust, trustName) : key.key,
            `remove what this client keeps of it for plugin sets (the folder trust/${trustName} in its data directory)`,
            `plugindex registry reset-trust ${entry.url} --key FILE (the key ${set.file} pins for it)`,
          ),
        ),
      );
    }
    case 'url': {
      const endpoint = await reachable(set, provider, () =>
        ctx.endpointOf({
          name: provider.name,
          url: provider.url,
          priority: 0,
          key_fingerprint: key.fingerprint,
          mirrors: [],
          ...(provider.ca_file ? { ca_file: provider.ca_file } : {}),
          ...(provider.auth ? { auth: provider.auth } : {}),
        }),
      );
      return await folderOf(ctx, set, provider.name, endpoint, key);
    }
    case 's3': {
      const endpoint: Endpoint = {
        name: provider.name,
        bases: [`s3://${provider.bucket}${provider.prefix === '' ? '' : `/${provider.prefix}`}`],
        timeoutMs,
        s3: {
          ...(provider.region ? { region: provider.region } : {}),
          ...(provider.endpoint ? { endpoint: provider.endpoint, forcePathStyle: true } : {}),
        },
      };
      return await folderOf(ctx, set, provider.name, endpoint, key);
    }
    case 'file': {
      const endpoint: Endpoint = {
        name: provider.name,
        bases: [pathToFileURL(provider.path).href.replace(/\/+$/, '')],
        timeoutMs,
      };
      return await folderOf(ctx, set, provider.name, endpoint, key);
    }
  }
}

/** A folder of signed manifests; its reader (and through it the signature code) loads only now. */
async function folderOf(
  ctx: ClientContext,
  set: PluginSet,
  name: string,
  endpoint: Endpoint,
  key: { readonly fingerprint: string; readonly key: import('openpgp').Key },
): Promise<Source> {
  const { FolderSource } = await import('./folder-source.ts');
  const manifestPaths = new Map<string, string>();
  for (const plugin of set.plugins)
    if (plugin.provider === name && plugin.path !== undefined) manifestPaths.set(plugin.name, plugin.path);
  return folderSource({
    name,
    folder: new FolderSource({ name, endpoint, fetcher: ctx.fetcher, keys: [key.key] }),
    endpoint,
    fingerprint: key.fingerprint,
    cache: ctx.cache,
    manifestPaths,
  });
}

async function readKey(file: string, where: string) {
  return parseKey(await readKeyText(file, where), file, where);
}

/**
 * The text of the key file a provider names. Binary key packets holding a secret key (gpg
 * --export-secret-keys without --armor) are refused as an armored secret key is (`parseKey`): read as text
 * they were no key at all, PLUGIN_SET_INVALID, and the secret key shared with the set went unsaid.
 * @throws ClientError PLUGIN_SET_INVALID (missing, unreadable), SECRET_KEY_GIVEN
 */
async function readKeyText(file: string, where: string): Promise<string> {
  const bytes = await readSetPath(file, where, 'the key file');
  if (bytes === undefined)
    throw new ClientError('PLUGIN_SET_INVALID', `${where}: the key file ${file} does not exist`);
  // Armored text needs no look at packets, nor openpgp.js loaded for one: a set installed again with
  // nothing to do parses no key (`openPluginSet`).
  if (mayBeBinaryPackets(bytes)) {
    const { findBinarySecretKey } = await loadTrust();
    const secret = await findBinarySecretKey(bytes);
    if (secret) throw secretKeyInSet(where, file, secret.fingerprint);
  }
  return bytes.toString('utf8');
}

/** A secret key named by a set's `key:` (`where`, the file and its pointer), as SECRET_KEY_GIVEN. */
function secretKeyInSet(where: string, file: string, fingerprint: string): ClientError {
  return new ClientError(
    'SECRET_KEY_GIVEN',
    `${where}: ${file} is a secret key (${fingerprint}), not a public key: nothing was fetched or installed. Name its public key instead (gpg --export --armor ${fingerprint}, or the public.asc plugindex keygen wrote), and remove the secret key from wherever the set is shared; once others have read it, its owner should make a new key`,
  );
}

/**
 * The bytes of a file the set names, or undefined when it does not exist. A folder (or a file that cannot be read) is
 * the set's mistake too: said at the field that names it, not as a bare EISDIR or EACCES of Node's.
 * @throws ClientError PLUGIN_SET_INVALID naming `where` and what is wrong.
 */
async function readSetPath(file: string, where: string, what: string): Promise<Buffer | undefined> {
  try {
    return await readIfExists(file);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    throw new ClientError(
      'PLUGIN_SET_INVALID',
      `${where}: ${what} ${file} ${code === 'EISDIR' ? 'is a folder, not a file' : `cannot be read (${code ?? (cause as Error).message})`}`,
      { cause },
    );
  }
}

/**
 * What reaching a provider needs from outside the set, checked as the set's own fields: its CA bundle, and
 * (through `open`) the secrets its auth names. The endpoint code says only the provider's name (as for a
 * configured registry, whose config.json it would blame); here the file and the pointer are said.
 * @throws ClientError PLUGIN_SET_INVALID (the CA bundle), CREDENTIALS_MISSING (a secret), each naming the field.
 */
async function reachable<T>(set: PluginSet, provider: SetProvider, open: () => Promise<T>): Promise<T> {
  const at = `${set.file}#${provider.pointer}`;
  if ((provider.type === 'registry' || provider.type === 'url') && provider.ca_file !== undefined) {
    const ca = await readSetPath(provider.ca_file, `${at}/ca_file`, 'the CA bundle');
    if (ca === undefined)
      throw new ClientError(
        'PLUGIN_SET_INVALID',
        `${at}/ca_file: the CA bundle ${provider.ca_file} does not exist`,
      );
  }
  try {
    return await open();
  } catch (error) {
    // The message names the reference (${NAME} or file:PATH), never the secret.
    if (error instanceof ClientError && error.code === 'CREDENTIALS_MISSING')
      throw new ClientError('CREDENTIALS_MISSING', `${at}/auth: ${error.message}`, { cause: error });
    throw error;
  }
}

async function parseKey(armored: string, file: string, where: string) {
  const { readPublicKey, untrustedKeyProblem } = await loadTrust();
  let key: Awaited<ReturnType<typeof readPublicKey>>;
  try {
    key = await readPublicKey(armored);
  } catch (cause) {
    throw new ClientError(
      'PLUGIN_SET_INVALID',
      `${where}: ${file} is not an OpenPGP public key (${(cause as Error).message})`,
      { cause },
    );
  }
  // A set file is shared (committed to git, read by every checkout and CI run): a secret key named there has
  // left its owner, and taking its public part in silence kept it there unsaid.
  if (isSecretKeyText(armored, key)) throw secretKeyInSet(where, file, key.fingerprint);
  // The set pins it: refused as the set's mistake, before anything is fetched or installed under it.
  const untrusted = untrustedKeyProblem(key.key);
  if (untrusted)
    throw new ClientError(
      'PLUGIN_SET_INVALID',
      `${where}: ${file} is key ${key.fingerprint}, which cannot be trusted: ${untrusted}`,
    );
  return key;
}

export interface SetInstallOptions {
  readonly home: string;
  readonly locked?: boolean;
  readonly frozen?: boolean;
  readonly acceptPermissions?: boolean;
  /** A locked version yanked since is refused (YANKED), not installed with a warning. */
  readonly denyYanked?: boolean;
  /** A version a `high`/`critical` advisory affects is installed with a warning, not refused. */
  readonly allowVulnerable?: boolean;
  readonly apiVersion?: string;
  /** Re-resolve every plugin ignoring the lock (`update -c`). */
  readonly upgrade?: boolean;
}

function installOptions(opened: OpenedSet, options: SetInstallOptions): InstallOptions {
  return {
    requests: [],
    targets: opened.targets,
    sources: opened.sources,
    lockfile: opened.lockfile,
    setFile: opened.digests,
    owner: opened.set.file,
    dir: opened.set.installLocation,
    ...(opened.set.policy ? { policy: opened.set.policy } : {}),
    ...(options.locked ? { locked: true } : {}),
    ...(options.frozen ? { frozen: true } : {}),
    ...(options.acceptPermissions ? { acceptPermissions: true } : {}),
    ...(options.denyYanked ? { denyYanked: true } : {}),
    ...(options.allowVulnerable ? { allowVulnerable: true } : {}),
    ...(options.apiVersion ? { apiVersion: options.apiVersion } : {}),
    ...(options.upgrade ? { upgrade: true } : {}),
  };
}

/** `install -c FILE`: exactly the set, every listed platform, locked beside the file. */
export async function installSet(
  ctx: ClientContext,
  file: string,
  options: SetInstallOptions,
): Promise<InstallResult & { readonly lockfile: string }> {
  const opened = await openPluginSet(ctx, file, options);
  const result = await installPlugins(ctx, installOptions(opened, options));
  return { ...result, lockfile: opened.lockfile };
}

export type SetChangeKind = 'add' | 'upgrade' | 'downgrade' | 'remove' | 'changed';

export interface SetChange {
  readonly name: string;
  readonly change: SetChangeKind;
  /** The installed version (absent for `add`). */
  readonly from?: string;
  /** The version an install would leave (absent for `remove`). */
  readonly to?: string;
  /** The install folder. */
  readonly dir: string;
  /** What differs, for `changed` and `remove`. */
  readonly detail?: string;
  /** Permissions the new version asks for that the locked one did not (install needs --accept-permissions). */
  readonly newPermissions?: readonly string[];
  /**
   * For a `remove` of some platforms' files only (`os-arch`, platforms the set no longer lists): the version
   * stays, without them. Absent when a whole version goes.
   */
  readonly platforms?: readonly string[];
  /**
   * For a `remove` of a version other sets are recorded as placing too (installed.json `sets`, as recorded):
   * the apply drops only this set's claim, and the version stays theirs. Absent when it goes.
   */
  readonly sharedWith?: readonly string[];
  /** For a `remove` of a version a plain install claims too (installed.json `hand`): it stays the user's. */
  readonly byHand?: boolean;
}

export interface SetDiff {
  readonly lockfile: string;
  readonly changes: readonly SetChange[];
  readonly lockChanges: readonly LockChange[];
  /** The set file differs from the one the lock was made from. */
  readonly fileChanged: boolean;
}

/**
 * `diff -c FILE`: what `install -c FILE` would add, upgrade, downgrade or find changed on disk, and what the
 * apply would remove: the installs the set does not name, the other versions of a plugin it does, and the
 * files of platforms it no longer lists (`install -c` or `clean -c` removes them, `cleanSet`'s rules). A tree
 * that already is the lock costs no request.
 */
export async function diffSet(
  ctx: ClientContext,
  file: string,
  options: SetInstallOptions,
): Promise<SetDiff> {
  const opened = await openPluginSet(ctx, file, options);
  // What an install would change, whatever it would then refuse for permissions or advisories.
  const plan = await planInstall(ctx, {
    ...installOptions(opened, options),
    acceptPermissions: true,
    allowVulnerable: true,
  });
  const changes: SetChange[] = [];
  const trees = new Map<string, { tree: InstallTree; installed: InstalledFile; owner: SetOwner }>();
  const treeAt = async (dir: string) => {
    let held = trees.get(dir);
    if (!held) {
      const tree = ctx.tree(dir);
      held = { tree, installed: await tree.read(), owner: await setOwnerOf(tree.dir, opened.set.file) };
      trees.set(dir, held);
    }
    return held;
  };
  for (const planned of plan.planned) {
    const dir = planned.dir ?? opened.set.installLocation;
    const change = await compareInstalled(planned, dir, await treeAt(dir));
    if (change) changes.push(change);
  }
  for (const dir of opened.dirs) {
    const { installed, owner } = await treeAt(dir);
    for (const [name, plugin] of Object.entries(installed.plugins)) {
      // Only what this set placed is the apply's to remove (`cleanSet`, install.ts `record`), and what its
      // lock says it placed, which install -c and clean -c claim first (installed.ts `isClaimedByLock`).
      const placed = (version: string): boolean =>
        placedBy(owner, own(plugin.versions, version)) ||
        (namesIn(opened, name, dir) &&
          isClaimedByLock(own(plugin.versions, version), version, own(plan.before?.plugins ?? {}, name)));
      // The other sets recorded as placing it: the apply drops only this set's claim, and the files stay.
      const others = (version: string): string[] =>
        ownersOf(own(plugin.versions, version)).filter((o) => !owner.names(o));
      const byHand = (version: string): boolean => own(plugin.versions, version)?.hand === true;
      const removal = (version: string, detail: string): SetChange => {
        const shared = others(version);
        if (shared.length === 0 && !byHand(version))
          return { name, change: 'remove', from: version, dir, detail };
        return {
          name,
          change: 'remove',
          from: version,
          dir,
          ...(shared.length > 0 ? { sharedWith: shared } : {}),
          ...(byHand(version) ? { byHand: true } : {}),
          detail: `${detail.replace(/ \(`plugindex .*$/, '')}, but also ${keptBy(shared, byHand(version))}: \`plugindex clean -c\` drops only this set's claim, and the files stay`,
        };
      };
      if (!namesIn(opened, name, dir)) {
        for (const version of Object.keys(plugin.versions).sort(compareVersions))
          if (placed(version))
            changes.push(
              removal(
                version,
                opened.targets.some((t) => t.name === name)
                  ? 'the set installs it in another folder now (`plugindex clean -c` removes this copy)'
                  : 'not in the set (`plugindex clean -c` removes it)',
              ),
            );
        continue;
      }
      // What else the apply removes of a plugin the set keeps here: the versions but the one it installs
      // (install -c replaces them when it places that one, clean -c otherwise: `cleanSet`), and the files of
      // platforms the set no longer lists (clean -c: an install merges a version's platforms).
      const wanted =
        plan.planned.find((p) => p.name === name && (p.dir ?? opened.set.installLocation) === dir)?.version ??
        own(plan.lock.plugins, name)?.version;
      if (wanted === undefined) continue;
      const placing = changes.some((c) => c.name === name && c.dir === dir);
      for (const version of Object.keys(plugin.versions).sort(compareVersions))
        if (version !== wanted && version !== plugin.current && placed(version))
          changes.push(
            removal(
              version,
              placing
                ? `a version the set no longer installs (\`plugindex install -c\` removes it as it places ${wanted})`
                : 'a version the set no longer installs (`plugindex clean -c` removes it)',
            ),
          );
      // A platform's files go only from a version no other set placed: another may list that platform.
      const listed = listedPlatforms(opened, name, dir);
      const { platforms } =
        listed && placed(wanted) && others(wanted).length === 0 && !byHand(wanted)
          ? withoutPlatforms(installed, name, wanted, listed)
          : { platforms: [] };
      if (platforms.length > 0)
        changes.push({
          name,
          change: 'remove',
          from: wanted,
          dir,
          platforms,
          detail: `the files of ${platforms.join(', ')}, ${platforms.length === 1 ? 'a platform' : 'platforms'} the set no longer lists (\`plugindex clean -c\` removes them)`,
        });
    }
  }
  const lock = plan.before;
  return {
    lockfile: opened.lockfile,
    changes: changes.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
    lockChanges: plan.changes,
    fileChanged: lock?.config_sha256 !== undefined && !madeFromSetFile(lock, opened.digests),
  };
}

/** How one planned version stands against what its folder holds; undefined when it is installed as planned. */
async function compareInstalled(
  planned: Planned,
  dir: string,
  { tree, installed }: { tree: InstallTree; installed: InstalledFile },
): Promise<SetChange | undefined> {
  const base = {
    name: planned.name,
    to: planned.version,
    dir,
    ...(planned.newPermissions.length > 0 ? { newPermissions: planned.newPermissions } : {}),
  };
  const plugin = own(installed.plugins, planned.name);
  if (!plugin) return { ...base, change: 'add' };
  if (plugin.current !== planned.version) {
    const order = compareVersions(planned.version, plugin.current);
    return { ...base, from: plugin.current, change: order < 0 ? 'downgrade' : 'upgrade' };
  }
  const record = own(plugin.versions, planned.version);
  const problems: string[] = [];
  if (record && record.manifest_sha256 !== planned.entry.manifest_sha256)
    problems.push(`its manifest is now ${planned.entry.manifest_sha256.slice(0, 12)}…`);
  // install places such a version again (install.ts installedAsPlanned).
  if (record?.problem) problems.push(`verify refused it (${record.problem.code}: ${record.problem.message})`);
  // Placed under a stolen key, or one the set's pin no longer links to: install places it again.
  const keyProblem = record ? placedKeyProblem(planned, record) : undefined;
  if (keyProblem !== undefined) problems.push(keyProblem);
  if (planned.manifest) {
    problems.push(
      ...(await installedManifestProblems(
        planned.name,
        planned.version,
        planned.entry.manifest_sha256,
        (relative, maxBytes) => tree.hashFile(relative, { maxBytes }),
      )),
    );
  }
  for (const file of planned.files) {
    const held = record ? own(record.artifacts, file.platform) : undefined;
    if (!held) {
      problems.push(`${file.platform} is not installed`);
      continue;
    }
    if (held.path !== file.path)
      problems.push(`${file.platform} would move from ${held.path} to ${file.path}`);
    const actual = await tree.hashFile(held.path, { executable: true, maxBytes: file.size });
    if (!actual) problems.push(`${held.path} is missing`);
    else if (actual.sha256 !== file.sha256 || actual.size !== file.size)
      problems.push(
        `${held.path} no longer matches its digest (${actual.sha256 === '' ? `${actual.size} bytes, not read` : `sha256 ${actual.sha256.slice(0, 12)}…`}, signed ${file.sha256.slice(0, 12)}…)`,
      );
  }
  return problems.length === 0
    ? undefined
    : { ...base, from: plugin.current, change: 'changed', detail: problems.join('; ') };
}

export interface CleanRemoval {
  readonly name: string;
  readonly version: string;
  readonly dir: string;
  /** Set when only these platforms' files went (platforms the set no longer lists); the version stays. */
  readonly platforms?: readonly string[];
}

export interface CleanReport {
  /** Installed versions removed, `name@version` with their folder, or the files of platforms of one. */
  readonly removed: readonly CleanRemoval[];
  /**
   * Versions in the set's folders that the set does not keep, left because installed.json does not record
   * this set as having placed them (`InstalledVersion.sets`): a plain install's, another set's, or one an
   * older client placed; or records other sets placing them too, which still pin them: this set's claim is
   * dropped, and the version stays theirs.
   */
  readonly left: readonly (CleanRemoval & { readonly detail: string })[];
  readonly blobsRemoved: number;
  readonly bytesFreed: number;
}

/**
 * `clean -c FILE`: removes from the set's folders every installed version the set's lock does not hold, and
 * of those it holds the files of every platform the set no longer lists, then every cached artifact that
 * neither that lock nor any of those folders (nor the default one) uses. Only what installed.json records
 * this set as having placed: a set names its folders itself, anywhere, and comes with a checkout a pull
 * request may edit; naming the client's own folder, it removed every plugin the user had installed there.
 */
export async function cleanSet(
  ctx: ClientContext,
  file: string,
  options: SetInstallOptions,
): Promise<CleanReport> {
  const opened = await openPluginSet(ctx, file, options);
  return withFileLock(opened.lockfile, async () => {
    const lock = await readLockfile(opened.lockfile);
    const keep = (name: string, version: string, dir: string): boolean => {
      const entry = lock ? own(lock.plugins, name) : undefined;
      // Without a lock, a plugin the set names keeps every version: nothing says which one is meant.
      return namesIn(opened, name, dir) && (entry === undefined || entry.version === version);
    };
    const removed: CleanRemoval[] = [];
    const left: (CleanRemoval & { detail: string })[] = [];
    const referenced = new Set<string>();
    for (const entry of Object.values(lock?.plugins ?? {}))
      for (const artifact of Object.values(entry.artifacts)) referenced.add(artifact.sha256);
    for (const dir of opened.dirs) {
      const tree = ctx.tree(dir);
      const owner = await setOwnerOf(tree.dir, opened.set.file);
      const after = await tree.update(async (installed) => {
        let next = installed;
        const gone: [string, string][] = [];
        const files: string[] = [];
        for (const [name, plugin] of Object.entries(installed.plugins))
          for (const version of Object.keys(plugin.versions)) {
            // One a client before `sets` was recorded placed for this set, as its lock says (install.ts
            // `claimLockedVersions`): the set's from now on. One another set placed that this set's lock
            // pins at that version and manifest: the set joins its owners, as its install does.
            const locked = lock ? own(lock.plugins, name) : undefined;
            if (locked && namesIn(opened, name, dir)) next = withSetOwner(next, name, locked, owner, true);
            const record = own(own(next.plugins, name)?.versions ?? {}, version);
            if (!placedBy(owner, record)) {
              if (!keep(name, version, dir))
                left.push({ name, version, dir, detail: notPlacedDetail(opened.set, dir, name, version) });
              continue;
            }
            // Another set placed it too: this set's `clean -c` drops only its own claim, and leaves the
            // version, every platform's files with it, as that set's (it may list a platform this one drops).
            const shared = ownersOf(record).filter((o) => !owner.names(o));
            if (shared.length > 0 || record?.hand === true) {
              if (keep(name, version, dir)) continue;
              next = withoutSetOwner(next, name, version, owner.names).installed;
              // A set whose file is gone pins nothing, and no `clean -c` of it will run: said so, with the
              // command that drops its claim, rather than as a set that still keeps the version.
              const gone = { sets: await goneSetFiles(tree.dir, shared), dir: tree.dir };
              left.push({ name, version, dir, detail: sharedDetail(shared, record?.hand === true, gone) });
              continue;
            }
            if (keep(name, version, dir)) {
              // A kept version loses the files of the platforms the set no longer lists; left with none of
              // those it lists (the set moved to others, not placed yet), it goes whole.
              const listed = listedPlatforms(opened, name, dir);
              if (!listed) continue;
              const platforms = withoutPlatforms(next, name, version, listed);
              if (platforms.platforms.length === 0) continue;
              const rest = own(own(platforms.installed.plugins, name)?.versions ?? {}, version);
              if (rest && Object.keys(rest.artifacts).length > 0) {
                next = platforms.installed;
                files.push(...platforms.paths);
                removed.push({ name, version, dir, platforms: platforms.platforms });
                continue;
              }
            }
            next = withoutInstalled(next, name, version).installed;
            gone.push([name, version]);
          }
        for (const [name, version] of gone) removed.push({ name, version, dir });
        const afterWrite = async () => {
          for (const file of files) await tree.removeArtifact(file);
          for (const [name, version] of gone) await tree.removeVersion(name, version);
        };
        return { installed: next, result: next, afterWrite };
      });
      addReferences(referenced, after);
    }
    addReferences(referenced, await ctx.tree(undefined).read());
    let blobsRemoved = 0;
    let bytesFreed = 0;
    for (const blob of await ctx.cache.blobs()) {
      if (referenced.has(blob.sha256)) continue;
      await ctx.cache.removeBlob(blob.sha256);
      blobsRemoved++;
      bytesFreed += blob.size;
    }
    return { removed, left, blobsRemoved, bytesFreed };
  });
}

/** True when installed.json records the set (`owner`, as its install folder names it) among those that placed the version (`record`). */
function placedBy(owner: SetOwner, record: InstalledVersion | undefined): boolean {
  return isPlacedBySet(record, owner.names);
}

/** Of the sets recorded in the install folder `dir`, those whose file is gone (`goneSetFiles`). */
interface GoneSets {
  readonly sets: ReadonlySet<string>;
  readonly dir: string;
}

/**
 * Who else claims a version a set placed: other sets (as installed.json records them; of those in `gone`,
 * that their file is gone, and the `clean --orphans` that drops their claim), a plain install.
 */
function keptBy(others: readonly string[], hand: boolean, gone?: GoneSets): string {
  const there = others.filter((o) => gone?.sets.has(o) !== true);
  const orphaned = others.filter((o) => gone?.sets.has(o) === true);
  const sets =
    there.length > 0
      ? `placed by ${there.join(', ')}, which ${there.length === 1 ? 'pins' : 'pin'} it still`
      : '';
  const one = orphaned.length === 1;
  const orphans =
    orphaned.length > 0
      ? `placed by ${orphaned.join(', ')}, whose file${one ? ' is' : 's are'} gone: \`plugindex clean --orphans --dir ${gone?.dir}\` drops ${one ? 'its' : 'their'} claim`
      : '';
  const user = hand ? "installed by hand (a plain install), the user's" : '';
  return [sets, orphans, user].filter(Boolean).join(', and ');
}

/** Why `clean -c` leaves a version the set placed and no longer keeps: another set or the user claims it too. */
function sharedDetail(others: readonly string[], hand: boolean, gone?: GoneSets): string {
  return `also ${keptBy(others, hand, gone)} (installed.json \`sets\`${hand ? ' and `hand`' : ''}): this set's claim dropped, and it stays${others.length > 0 ? ' until no set placing it keeps it' : ''}`;
}

/** Why `clean -c` leaves a version the set does not keep, and how it is removed. */
function notPlacedDetail(set: PluginSet, dir: string, name: string, version: string): string {
  return `not placed by this set (installed.json records no install -c of ${set.file} placing it: a plain install, another set or an older client did): \`plugindex remove ${name}@${version} --dir ${dir}\` removes it`;
}

function addReferences(referenced: Set<string>, installed: InstalledFile): void {
  for (const plugin of Object.values(installed.plugins))
    for (const version of Object.values(plugin.versions))
      for (const artifact of Object.values(version.artifacts)) referenced.add(artifact.sha256);
}

export interface DiscoveryReport {
  /** The folders scanned (those that do not exist are skipped). */
  readonly paths: readonly string[];
  readonly watch: boolean;
  readonly plugins: readonly (DiscoveredPlugin & {
    /**
     * What the set's `policy:` refuses of a verified folder that installed.json in one of the set's install
     * folders records (`installedPolicyProblems`): one sentence per rule broken, led by the set file and the
     * rule's pointer (`FILE#/policy/...: `, `refusalText`), as install -c and verify -c say it. Absent when it allows it,
     * when the set has no policy, and for a folder no install of the set recorded.
     */
    readonly policy?: readonly string[];
    /**
     * Why a folder installed.json records in one of the set's install folders, as this set placed it, is no
     * longer the set's: the set does not install that plugin there, or its lock holds another version
     * (`verify -c`'s `NOT_IN_SET`, what `clean -c` removes). Then it has no `policy`: the set's policy does not speak for it.
     */
    readonly not_in_set?: string;
    /**
     * Why a folder installed.json records in one of the set's install folders is another's: the set does not
     * name it there, nor did it place it (`verify -c`'s `NOT_PLACED_BY_SET`, what `clean -c` leaves). It has no
     * `policy` either, and fails nothing: a folder a set shares with plain installs holds such versions.
     */
    readonly not_placed_by_set?: string;
  })[];
}

/**
 * The spec's filesystem discovery for a set: its `discovery.filesystem.paths` (when enabled) and its install
 * folders, every version folder found verified against `keys` and the keys the set's providers pin; of
 * those installed.json records in an install folder, each the set does not name there marked `not_in_set`
 * (this set placed it) or `not_placed_by_set` (another's), and each verified one it names judged by the
 * set's policy (as `verify -c` speaks for them).
 */
export async function discoverSet(
  ctx: ClientContext,
  file: string,
  options: { readonly home: string; readonly keys: readonly TrustedKey[] },
): Promise<DiscoveryReport> {
  const set = parsePluginSet(await readSetFile(file), file, options);
  const keys = [...options.keys];
  for (const [name, key] of await providerKeys(set))
    keys.push({ fingerprint: key.fingerprint, key: key.key, label: `${basename(file)} provider ${name}` });
  const filesystem = set.discovery?.filesystem;
  const paths = [
    ...new Set([...(filesystem?.enabled === false ? [] : (filesystem?.paths ?? [])), ...installDirs(set)]),
  ];
  const found = await scanPluginFolders(paths, { recursive: filesystem?.recursive ?? false });
  const installs = await installedFolders(ctx, set);
  const lock = installs.size > 0 ? await readLockfile(await lockfileOf(file, options)) : undefined;
  const plugins: DiscoveryReport['plugins'][number][] = [];
  for (const folder of found) {
    const plugin = await verifyFound(folder, keys);
    const at = installs.get(plugin.dir);
    // As `verify -c`: a version the set does not name there is said to be not the set's, not judged by it.
    const outside = at ? notInSet(set, lock, at, at.name, at.version, at.record) : undefined;
    if (outside !== undefined) {
      plugins.push(
        outside.code === NOT_IN_SET
          ? { ...plugin, not_in_set: outside.message }
          : { ...plugin, not_placed_by_set: outside.message },
      );
      continue;
    }
    const problems =
      at && set.policy && plugin.status === 'verified'
        ? await installedPolicyProblems(at.tree, set.policy, at.name, at.version, at.record)
        : undefined;
    plugins.push(
      // Each as install -c (POLICY_DENIED) and verify -c name it: the set file and the rule's pointer first,
      // where list -c said the rule broken alone, naming neither what to edit nor where.
      problems && problems.length > 0
        ? { ...plugin, policy: problems.map((r) => refusalText(set.file, [r])) }
        : plugin,
    );
  }
  return { paths, watch: filesystem?.watch_for_changes ?? false, plugins };
}

/** A version an install recorded in one of a set's folders. */
interface InstalledAt {
  /** The folder as the set names it. */
  readonly dir: string;
  readonly tree: InstallTree;
  readonly name: string;
  readonly version: string;
  readonly record: InstalledVersion;
  /** The set, as installed.json in this folder names it. */
  readonly owner: SetOwner;
}

/** Every version installed.json records in the set's install folders, by its version folder's path. */
async function installedFolders(ctx: ClientContext, set: PluginSet): Promise<Map<string, InstalledAt>> {
  const folders = new Map<string, InstalledAt>();
  for (const dir of installDirs(set)) {
    const tree = ctx.tree(dir);
    const owner = await setOwnerOf(tree.dir, set.file);
    for (const [name, plugin] of Object.entries((await tree.read()).plugins))
      for (const [version, record] of Object.entries(plugin.versions))
        folders.set(join(tree.dir, name, versionFolder(version)), {
          dir,
          tree,
          name,
          version,
          record,
          owner,
        });
  }
  return folders;
}

/**
 * Findings of `verifyInstalled` in one of a set's folders, each version that verified judged by the set's
 * policy as an install judges a tree it would call up to date (`installedPolicyProblems`): a policy
 * tightened since the install refuses what is in place (POLICY_DENIED, naming the set file's policy, the
 * version and each rule it breaks). Not written to installed.json: its `verified` and `problem` speak for
 * the files and signatures, which every set naming the folder shares; the policy is this set's.
 */
async function judgedByPolicy(
  tree: InstallTree,
  set: PluginSet,
  findings: readonly VerifyFinding[],
): Promise<VerifyFinding[]> {
  const policy = set.policy;
  if (!policy) return [...findings];
  const installed = await tree.read();
  const judged: VerifyFinding[] = [];
  for (const finding of findings) {
    const record = finding.ok
      ? own(own(installed.plugins, finding.name)?.versions ?? {}, finding.version)
      : undefined;
    const problems = record
      ? await installedPolicyProblems(tree, policy, finding.name, finding.version, record)
      : undefined;
    judged.push(
      problems && problems.length > 0
        ? {
            name: finding.name,
            version: finding.version,
            ok: false,
            code: 'POLICY_DENIED',
            message: refusalText(set.file, problems),
          }
        : finding,
    );
  }
  return judged;
}

/**
 * `verify -c FILE`: every version installed in the set's folders rehashed and its signature chain checked
 * again, by the keys the set pins for its own sources (and the configured registries' for the others), and
 * each that verifies judged by the set's policy as it is now (POLICY_DENIED for what it refuses).
 */
export async function verifySet(
  ctx: ClientContext,
  file: string,
  options: { readonly home: string },
): Promise<VerifyFinding[]> {
  const set = parsePluginSet(await readSetFile(file), file, options);
  const trust = new Map<string, TrustRecord>();
  const reached = new Map<string, readonly string[]>();
  for (const [name, key] of await providerKeys(set)) {
    // A registry the set pins by URL and key: the key an install followed its rotations to, as it did.
    const provider = [...set.providers, ...(set.discovery?.registries ?? [])].find((p) => p.name === name);
    const { current } =
      provider?.type === 'registry' && provider.url !== undefined
        ? await keptSetTrust(ctx, setTrustName(provider.url, key.fingerprint), key.fingerprint)
        : { current: undefined };
    trust.set(name, current ?? { fingerprint: key.fingerprint, armoredKey: key.armored });
    // Its URL and its mirrors: marks are read as of each (`ClientContext.revokedKeys`).
    if (provider?.type === 'registry' && provider.url !== undefined)
      reached.set(name, [provider.url, ...(provider.mirrors ?? [])]);
  }
  const lockfile = await lockfileOf(file, options);
  const lock = await readLockfile(lockfile);
  const findings: VerifyFinding[] = [];
  for (const dir of installDirs(set)) {
    const tree = ctx.tree(dir);
    const owner = await setOwnerOf(tree.dir, set.file);
    const outside = (name: string, version: string, record: InstalledVersion): VerifyFinding | undefined => {
      const why = notInSet(set, lock, { dir, owner }, name, version, record);
      return why === undefined ? undefined : { name, version, ok: false, ...why };
    };
    const found = await verifyInstalled(ctx, { dir, lockfile, trust, reached, outside });
    findings.push(...(await judgedByPolicy(ctx.tree(dir), set, found)));
  }
  return findings;
}

/** A version the set placed in its folder and no longer names there (`verify -c`: exit 1, as `diff -c`'s remove). */
const NOT_IN_SET = 'NOT_IN_SET';
/** A version in a set's folder that the set neither names there nor placed: another's (`verify -c`: exit 0). */
const NOT_PLACED_BY_SET = 'NOT_PLACED_BY_SET';

/** True when the set installs `name` into `dir`: `namesIn` read from the set file alone. */
function setNamesIn(set: PluginSet, name: string, dir: string): boolean {
  return set.plugins.some((p) => p.name === name && (p.install_location ?? set.installLocation) === dir);
}

/**
 * Why a version in one of a set's folders is not the set's, or undefined when it is. What `clean -c` keeps
 * is the set's: a plugin it installs into this folder, at the version its lock holds. Anything else there
 * is not this set's to check by its keys (a provider of the same name pinned to another key found it
 * modified, in installed.json, where a host read it as refused) nor to judge by its policy. One this set
 * placed (`placedBy`) is `NOT_IN_SET`, a rejection until `clean -c` removes it; one it did not place (another
 * set's, `install --dir`'s, a plain install's in a folder the set shares) is `NOT_PLACED_BY_SET`, another's,
 * which `clean -c` leaves and `diff -c` names no removal of, so it fails nothing: as a rejection it failed
 * `verify -c` and `list -c` for good in every set sharing its folder.
 */
function notInSet(
  set: PluginSet,
  lock: Lockfile | undefined,
  at: { readonly dir: string; readonly owner: SetOwner },
  name: string,
  version: string,
  record: InstalledVersion,
): { readonly code: typeof NOT_IN_SET | typeof NOT_PLACED_BY_SET; readonly message: string } | undefined {
  const entry = lock ? own(lock.plugins, name) : undefined;
  const named = setNamesIn(set, name, at.dir);
  if (named && (entry === undefined || entry.version === version)) return undefined;
  const why = `${set.file} ${
    named
      ? `installs ${name}@${entry?.version ?? ''} here (its lock), not ${version}`
      : `installs no plugin ${name} into ${at.dir}`
  }`;
  const elsewhere = `\`plugindex verify --dir ${at.dir}\` checks it by the configured registries`;
  return placedBy(at.owner, record)
    ? {
        code: NOT_IN_SET,
        message: `${why}: not verified as the set's (\`plugindex clean -c\` removes it; ${elsewhere})`,
      }
    : {
        code: NOT_PLACED_BY_SET,
        message: `${why}, nor did it place it (installed.json records no install -c of it placing it: a plain install, another set or an older client did): another's, left as it is, not verified as the set's (${elsewhere})`,
      };
}
