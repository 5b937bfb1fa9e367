/**
 * How the client writes: every file by temp file and rename in the same folder, so a killed install never
 * leaves half a file where a digest or a document is expected; and a per-target lock file (O_EXCL, holding
 * the PID, machine, boot and start of its holder, broken when that holder is gone: `LockHolder`) where two processes edit the same file, as OpenTofu locks each
 * target in its plugin cache. Two writers of one content-addressed blob need no lock: both rename the same
 * bytes into place.
 */
import { randomBytes } from 'node:crypto';
import {
  type BigIntStats,
  closeSync,
  constants,
  createReadStream,
  fstatSync,
  openSync,
  readFileSync,
  type Stats,
} from 'node:fs';
import {
  lstat,
  lutimes,
  mkdir,
  open,
  readdir,
  realpath,
  rename,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import { hostname, uptime } from 'node:os';
import { basename, delimiter, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { createSha256 } from '../../index-builder/digest.ts';
import { ClientError } from '../errors.ts';

/** sha256 and size of a file, read as a stream; undefined when it does not exist. */
export async function hashFileAt(path: string): Promise<{ sha256: string; size: number } | undefined> {
  const hash = createSha256();
  let size = 0;
  try {
    for await (const chunk of createReadStream(path)) {
      size += (chunk as Buffer).byteLength;
      hash.update(chunk as Buffer);
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  return { sha256: hash.hex(), size };
}

/**
 * A temp name beside `path`: same folder, so same filesystem, so rename(2) replaces atomically. Named
 * `.<file>.<pid>.<8 hex>.tmp`, so what a killed writer left is known for a temp file (TEMP_NAME), and whose.
 */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/** The names tempPathFor gives: the file it stands for, and the PID of the process that writes it. */
const TEMP_NAME = /^\.(.+)\.(\d+)\.[0-9a-f]{8}\.tmp$/;

/** The file a temp name stands for and its writer's PID; undefined for a name tempPathFor does not give. */
export function tempNameOf(name: string): { readonly file: string; readonly pid: number } | undefined {
  const match = TEMP_NAME.exec(name);
  return match ? { file: match[1] as string, pid: Number(match[2]) } : undefined;
}

/**
 * Removes the temp files of `path` beside it whose writer is gone: a writer killed between its temp file
 * and the rename leaves one, which nothing else removes. A running writer's (this process's too: two
 * installs may place one file at once) is left to it.
 */
export async function removeStaleTemps(path: string): Promise<void> {
  const file = basename(path);
  for (const name of await readdir(dirname(path)).catch(() => [] as string[])) {
    const temp = tempNameOf(name);
    if (temp?.file === file && !processAlive(temp.pid)) await rm(join(dirname(path), name), { force: true });
  }
}

/** How long unwritten a temp file in a folder of temp files is left before `removeStaleTempsIn` judges it. */
export const STALE_TEMP_MS = 10 * 60_000;

/**
 * Removes every temp file in `folder` whose writer is gone, whatever file it stood for: for a folder of temp
 * files alone (the cache's tmp/), where a download killed part way left up to an artifact's size, and one of
 * an artifact never asked for again was kept for good. A running writer's is left to it, and so is any
 * written within `STALE_TEMP_MS`: a cache shared between machines or containers (a home folder over NFS, a
 * CI cache volume) holds other machines' downloads, whose PIDs mean nothing here, and a live download writes
 * on (the fetcher gives up on one slower than 1 KiB/s).
 */
export async function removeStaleTempsIn(folder: string, staleMs = STALE_TEMP_MS): Promise<void> {
  for (const name of await readdir(folder).catch(() => [] as string[])) {
    const temp = tempNameOf(name);
    if (!temp || processAlive(temp.pid)) continue;
    const path = join(folder, name);
    const written = await stat(path).catch(() => undefined);
    if (written && Date.now() - written.mtimeMs > staleMs) await rm(path, { force: true });
  }
}

/**
 * Makes the folder `dir` and those missing above it, top down, each `mode` less the umask, calling `made`
 * with each one it made before it makes the next (a caller giving the owner's bits back must, or the next
 * mkdir in it fails EACCES); a folder already there is left as it is. Not Node's
 * `mkdir(dir, { recursive: true })`: on a filesystem that answers ENOENT for a folder under one that exists
 * (`/proc`), Node makes the parent (EEXIST, taken as done) and tries the folder again, for ever, and an
 * install with `--dir /proc/x/y`, or a config, data or cache folder the user set there, hung. Here a folder
 * still ENOENT once its parent is there is a failure. The command's own output folders are made by the same
 * walk in `cli/inputs.ts` (`makeFolder`, raising its CliError), and FsStore's in `adapters/fs-store.ts`
 * (`makeFoldersSync`): the client may import neither (ARCHITECTURE, "The house"), hence this copy.
 * @throws ClientError FOLDER_NOT_MADE naming the folder for that, or for a file where a folder goes (itself
 *   or one above it); the errno error of any other mkdir failure.
 */
export async function makeFolders(
  dir: string,
  mode = 0o777,
  made: (folder: string) => Promise<void> = async () => undefined,
): Promise<void> {
  const first = await mkdirOnce(dir, mode);
  if (first === undefined) return made(dir);
  // A folder there all the same is no failure: EEXIST, or EPERM for a Windows drive's root (as `mkdir -p`).
  if (await isFolder(dir)) return;
  refuseFileThere(dir, first);
  const parent = dirname(dir);
  // ENOTDIR: a file above it, which the walk up names (`refuseFileThere`), where Node's error named neither.
  if ((first.code !== 'ENOENT' && first.code !== 'ENOTDIR') || parent === dir) throw first;
  await makeFolders(parent, mode, made);
  // Once: the parent made (or found), this one is made or fails.
  const again = await mkdirOnce(dir, mode);
  if (again === undefined) return made(dir);
  if (await isFolder(dir)) return;
  refuseFileThere(dir, again);
  if (again.code === 'ENOENT')
    throw new ClientError(
      'FOLDER_NOT_MADE',
      `cannot create the folder ${dir}: ${parent} exists, and its filesystem makes no folder there (as /proc): name a folder elsewhere`,
      { cause: again },
    );
  throw again;
}

/**
 * EEXIST where no folder is: a file (or a link to one) is where the folder goes (a `--lockfile FILE/x.lock`,
 * a `--dir` under a file), named as such; Node's "EEXIST: file already exists, mkdir" reached the command as
 * a stack trace.
 */
function refuseFileThere(dir: string, error: NodeJS.ErrnoException): void {
  if (error.code !== 'EEXIST') return;
  throw new ClientError(
    'FOLDER_NOT_MADE',
    `cannot create the folder ${dir}: a file is there, not a folder: move it away, or name a path elsewhere`,
    { cause: error },
  );
}

/** mkdir's failure, or undefined when it made the folder. */
function mkdirOnce(dir: string, mode: number): Promise<NodeJS.ErrnoException | undefined> {
  return mkdir(dir, { mode }).then(
    () => undefined,
    (error: NodeJS.ErrnoException) => error,
  );
}

async function isFolder(dir: string): Promise<boolean> {
  return (await stat(dir).catch(() => undefined))?.isDirectory() === true;
}

/** A folder another user may change, and how (`folderUnsafety`). */
export interface UnsafeFolder {
  readonly at: string;
  readonly why: string;
}

/** The sticky bit: in a folder that has it, only an entry's owner (or root) may rename or remove it. */
const STICKY = 0o1000;

/**
 * How another user may change the folder (or link) `info` is of, or undefined when only this user and root
 * may: owned by another user (who may chmod it at will), writable by every user or by a group other than
 * the user's own primary group without the sticky bit, or by that group where another user is in it
 * (`privateGroup`), or, a link, owned by another user. OpenSSH's StrictModes and GnuPG's home folder check
 * judge their folders so (a group-writable one of the user's own private group allowed, as Debian's OpenSSH
 * does, umask 002's folders). Such a user
 * could swap a folder in it for a symbolic link between a check and a write; Node.js has no openat(2) to
 * write relative to a folder already opened, so the folder itself must be one no one else changes.
 * Undefined where there are no user ids (Windows), and for `at`, the folder's path, where the user vouches
 * for it (`vouchedFor`, PLUGINDEX_SAFE_FOLDERS). `isPrivateGroup`: the system's account files as now, or
 * one judgment's reading of them (`oneReading`).
 */
export function folderUnsafety(
  info: Stats,
  at: string,
  isPrivateGroup: PrivateGroupOf = systemPrivateGroup,
): string | undefined {
  const uid = process.getuid?.();
  if (uid === undefined || vouchedFor(at)) return undefined;
  const ownOrRoot = info.uid === uid || info.uid === 0;
  if (info.isSymbolicLink()) return ownOrRoot ? undefined : `a symbolic link owned by user ${info.uid}`;
  if (!ownOrRoot) return `owned by user ${info.uid}, who may let anyone write it`;
  if ((info.mode & STICKY) !== 0) return undefined;
  if ((info.mode & 0o002) !== 0) return 'writable by every user, without the sticky bit';
  if ((info.mode & 0o020) !== 0) {
    if (info.gid !== process.getgid?.()) return `writable by its group (${info.gid}), without the sticky bit`;
    if (!isPrivateGroup(info.gid, uid))
      return `writable by its group (${info.gid}), which users other than you are in, without the sticky bit`;
  }
  return undefined;
}

/**
 * How long after its last change (its ctime) an account file's answers are kept (`AccountFiles`): a file
 * changed again within one tick of the clock that stamps it (a jiffy, a second on some filesystems) keeps
 * its ctime, so answers read from one changed that recently are not kept, as Git re-reads an index entry
 * no older than the index ("racy git").
 */
export const ACCOUNT_FILE_SETTLED_MS = 2_000;

/** The paths and clock `AccountFiles` reads by: the system's, or a test's. */
export interface AccountFilesOptions {
  readonly passwd?: string;
  readonly group?: string;
  /** The wall clock, in ms since the epoch (ctime's clock). */
  readonly now?: () => number;
}

/**
 * `privateGroup` of the system's account files, its answers kept while both files are as when read: a
 * group-writable folder (umask 002) read and parsed /etc/passwd and /etc/group each time it was judged (a
 * chain of five such folders: 334 µs a check, 168 µs now, 143 µs where none is group-writable). Each
 * judgment of a chain opens both files and fstats them (16 µs each, against 25 µs a read): an answer is kept by their device, inode, size, mtime and ctime, and only where both
 * were last changed `ACCOUNT_FILE_SETTLED_MS` before. That cannot be fooled: changed in place, a file's
 * ctime is set to the time of the change by the kernel, which utimes (setting mtime back) sets again and no
 * call sets back; replaced by rename (useradd, vipw), the file opened is another inode. So a file whose key
 * is unchanged was last changed no later than the change seen when kept, which was at least that long
 * before, its text the same, short of the clock set back (root's, who writes these files anyway). Opened,
 * not stat-ed by path: over NFS, open revalidates what a path's stat takes from the attribute cache.
 */
export class AccountFiles {
  readonly #passwd: string;
  readonly #group: string;
  readonly #now: () => number;
  #kept:
    | { readonly passwd: string; readonly group: string; readonly answers: Map<string, boolean> }
    | undefined;

  constructor(options: AccountFilesOptions = {}) {
    this.#passwd = options.passwd ?? '/etc/passwd';
    this.#group = options.group ?? '/etc/group';
    this.#now = options.now ?? Date.now;
  }

  /** `privateGroup(gid, uid, passwd, group)` of the files as they are now. */
  privateGroup(gid: number, uid: number): boolean {
    const asked = `${gid}:${uid}`;
    const passwd = openAccountFile(this.#passwd);
    try {
      const group = openAccountFile(this.#group);
      try {
        const kept =
          this.#kept?.passwd === passwd.key && this.#kept.group === group.key ? this.#kept : undefined;
        const known = kept?.answers.get(asked);
        if (known !== undefined) return known;
        const answer = privateGroup(gid, uid, passwd.read(), group.read());
        const settled = this.#now() - ACCOUNT_FILE_SETTLED_MS;
        if (passwd.changedMs < settled && group.changedMs < settled) {
          const answers = kept?.answers ?? new Map<string, boolean>();
          answers.set(asked, answer);
          this.#kept = { passwd: passwd.key, group: group.key, answers };
        }
        return answer;
      } finally {
        group.close();
      }
    } finally {
      passwd.close();
    }
  }
}

/** The system's account files, as every folder judgment in this process reads them. */
const accountFiles = new AccountFiles();

/** Whether `gid` is the user `uid`'s private group (`privateGroup`), as some reading of the account files says. */
type PrivateGroupOf = (gid: number, uid: number) => boolean;

const systemPrivateGroup: PrivateGroupOf = (gid, uid) => accountFiles.privateGroup(gid, uid);

/**
 * `systemPrivateGroup` read once for one judgment of a folder chain (or of a folder's contents): its
 * group-writable folders (umask 002 makes each one so) judged against one reading of the account files,
 * not one each, as the judgment is of the folders as at one moment anyway.
 */
function oneReading(): PrivateGroupOf {
  const answers = new Map<string, boolean>();
  return (gid, uid) => {
    const asked = `${gid}:${uid}`;
    const known = answers.get(asked);
    if (known !== undefined) return known;
    const answer = systemPrivateGroup(gid, uid);
    answers.set(asked, answer);
    return answer;
  };
}

/**
 * A system account file opened: its key (what it is as of now, `AccountFiles`), when it last changed, and
 * its text, read on demand; undefined text where it cannot be opened or read (a minimal container's, or
 * none), as ever.
 */
function openAccountFile(path: string): {
  readonly key: string;
  readonly changedMs: number;
  read(): string | undefined;
  close(): void;
} {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    // Not there (or not readable) stays so until it is opened, which gives another key.
    const code = (error as NodeJS.ErrnoException).code;
    return { key: `not opened: ${code}`, changedMs: -Infinity, read: () => undefined, close: () => {} };
  }
  let info: BigIntStats | undefined;
  try {
    info = fstatSync(fd, { bigint: true });
  } catch {
    info = undefined;
  }
  return {
    // An fstat that failed gives a key no later one equals, and a change time that is never settled.
    key: info
      ? `${info.dev}:${info.ino}:${info.size}:${info.mtimeNs}:${info.ctimeNs}`
      : `unknown: ${randomBytes(8).toString('hex')}`,
    changedMs: info ? Number(info.ctimeNs / 1_000_000n) : Infinity,
    read: () => {
      try {
        return readFileSync(fd, 'utf8');
      } catch {
        return undefined;
      }
    },
    close: () => closeSync(fd),
  };
}

/**
 * Whether `gid`, the user `uid`'s primary group, has no member but that user: a user private group
 * (Debian's and Fedora's default, umask 002's folders writable by it alone). The user's primary group is no
 * such group everywhere: every macOS user's is staff (20), and where USERGROUPS_ENAB is off (openSUSE) every
 * user's is users (100), so a folder writable by it is writable by each of them. Debian's OpenSSH judges a
 * group-writable folder so (its user-group-modes patch: the group's only member, by primary group or by
 * /etc/group's list, is its owner). Read from `passwd` and `group` (/etc/passwd and /etc/group); Node.js
 * cannot ask the name service (getgrgid), so a group /etc/group does not list (a directory service's) is
 * taken for a private one only where its id is the user's (as useradd and SSSD's auto_private_groups make).
 */
export function privateGroup(
  gid: number,
  uid: number,
  passwd: string | undefined,
  group: string | undefined,
): boolean {
  const names = new Set<string>();
  for (const line of (passwd ?? '').split('\n')) {
    const [name, , user, primary] = line.split(':');
    if (name === undefined || user === undefined || primary === undefined || !/^\d+$/.test(user)) continue;
    if (Number(user) === uid) names.add(name);
    else if (Number(primary) === gid) return false;
  }
  for (const line of (group ?? '').split('\n')) {
    const [, , id, members] = line.split(':');
    if (id === undefined || !/^\d+$/.test(id) || Number(id) !== gid) continue;
    return (members ?? '')
      .trim()
      .split(',')
      .every((member) => member === '' || names.has(member));
  }
  return gid === uid;
}

/** The variable naming the folders the user vouches for, exempt from `folderUnsafety`'s judgment. */
export const SAFE_FOLDERS_VARIABLE = 'PLUGINDEX_SAFE_FOLDERS';

/**
 * Whether the user vouches for `at`: it, or a folder above it, is listed in PLUGINDEX_SAFE_FOLDERS (split as
 * PATH is, `:` on POSIX), or the list holds `*`. Git's `safe.directory` answers its ownership check
 * (CVE-2022-24765) so: root in a container on a workspace bind-mounted from the host user (uid 1000, as
 * GitHub Actions' container jobs), or a setgid project folder shared by a group, were refused every install
 * for a judgment only the user can overrule. Only whether another user may change the folder is lifted: a
 * link inside the install folder is refused as ever (INSTALL_PATH_LINKED). Read at each check, not once, as
 * the client is a library too and its caller's environment may change. A relative entry is ignored, as it
 * would vouch for whatever folder the process happens to run in (and an empty one, which PATH reads as the
 * current folder, likewise): a user vouches for a folder they can name. As in PATH, no entry can hold the
 * delimiter (`:`), and no escape is invented for it: a folder whose path holds one is vouched for through a
 * folder above it whose path does not, or `*`.
 */
function vouchedFor(at: string): boolean {
  const listed = process.env[SAFE_FOLDERS_VARIABLE];
  if (listed === undefined) return false;
  const absolute = resolve(at);
  for (const entry of listed.split(delimiter)) {
    if (entry === '*') return true;
    if (!isAbsolute(entry)) continue;
    const within = relative(resolve(entry), absolute);
    if (within === '' || (within.split(sep)[0] !== '..' && !isAbsolute(within))) return true;
  }
  return false;
}

/**
 * What a refusal of `at` (`folderUnsafety`) says the user may do where they trust whoever may change it:
 * the variable with the exact folder to add (absolute: a relative entry is ignored), as git names `safe.directory` in its refusal.
 */
export function vouchHint(at: string): string {
  return `where you trust whoever may change it (a container's bind-mounted workspace, a group's shared folder), add it to ${SAFE_FOLDERS_VARIABLE}: ${SAFE_FOLDERS_VARIABLE}=${resolve(at)}`;
}

/** `absolute` and each folder above it, from the root down. */
function chainOf(absolute: string): string[] {
  const chain = [absolute];
  for (let at = absolute; dirname(at) !== at; at = dirname(at)) chain.unshift(dirname(at));
  return chain;
}

/**
 * The first of `absolute`'s folders, from the root, that is unsafe (`folderUnsafety`); whether a link was
 * met; whether every part was there (`whole`).
 */
async function judgeChain(
  absolute: string,
): Promise<{ unsafe?: UnsafeFolder; linked: boolean; whole: boolean }> {
  let linked = false;
  const isPrivateGroup = oneReading();
  for (const at of chainOf(absolute)) {
    const info = await lstat(at).catch((error: NodeJS.ErrnoException) => {
      // What is not there yet the client makes (its own); under a file, nothing is made at all.
      if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return undefined;
      throw error;
    });
    if (info === undefined) return { linked, whole: false };
    const why = folderUnsafety(info, at, isPrivateGroup);
    if (why !== undefined) return { unsafe: { at, why }, linked, whole: true };
    linked ||= info.isSymbolicLink();
  }
  return { linked, whole: true };
}

/** The real path of `absolute`'s deepest part that exists, and whether that is `absolute` itself. */
async function realPathOfDeepest(absolute: string): Promise<{ real: string; whole: boolean }> {
  for (let at = absolute; ; at = dirname(at)) {
    try {
      return { real: await realpath(at), whole: at === absolute };
    } catch (error) {
      if (dirname(at) === at || (error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
}

/**
 * The first folder, from the root down to `dir`, that another user may change (`folderUnsafety`): each
 * part of `dir` as given (a link judged by its owner) and, where a link is on the way, each folder of the
 * real path it leads to. Parts not there yet are none (the client makes them; call again once made: another
 * user may have made one first under a sticky folder such as /tmp). Undefined on Windows.
 */
export async function unsafeFolderOnPath(dir: string): Promise<UnsafeFolder | undefined> {
  return (await judgeFolderPath(dir)).unsafe;
}

/**
 * `unsafeFolderOnPath`, and whether `dir` was there whole when judged (`whole`: every part, and what a link
 * on the way leads to). What is read only from a folder judged whole: one not there yet when judged, under
 * a sticky folder such as /tmp, another user may make, theirs, between the judgment and the read, their
 * file in it read as the user's own; read as not there, it is what the judgment saw.
 */
export async function judgeFolderPath(dir: string): Promise<{ unsafe?: UnsafeFolder; whole: boolean }> {
  if (process.getuid === undefined) return { whole: true };
  const absolute = resolve(dir);
  const given = await judgeChain(absolute);
  if (given.unsafe || !given.linked) return given;
  const { real, whole } = await realPathOfDeepest(absolute);
  const followed = await judgeChain(real);
  return followed.unsafe ? followed : { whole: given.whole && whole };
}

/**
 * The first folder in `folder` (itself included, its links not followed) that another user may change
 * (`folderUnsafety`); undefined when none is, or when `folder` is not there or is a link. What a recursive
 * rm of `folder` needs: Node's lstats each entry, then reads a folder and removes its entries by path, so a
 * folder in there swapped for a link in between is followed, and what it leads to removed (the race of
 * Rust's CVE-2022-21658). Node.js has no unlinkat to remove relative to a folder already opened; only
 * someone who may write a folder in there can swap one, so none may be such a folder.
 */
export async function unsafeFolderWithin(
  folder: string,
  isPrivateGroup: PrivateGroupOf = oneReading(),
): Promise<UnsafeFolder | undefined> {
  const info = await lstat(folder).catch(() => undefined);
  if (!info?.isDirectory()) return undefined;
  const why = folderUnsafety(info, folder, isPrivateGroup);
  if (why !== undefined) return { at: folder, why };
  for (const entry of await readdir(folder).catch(() => [] as string[])) {
    const found = await unsafeFolderWithin(join(folder, entry), isPrivateGroup);
    if (found) return found;
  }
  return undefined;
}

export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: { readonly mode?: number } = {},
): Promise<void> {
  await makeFolders(dirname(path));
  const temp = tempPathFor(path);
  try {
    // Created (O_EXCL), never opened through a link already at that name.
    await writeFile(temp, data, { mode: options.mode ?? 0o644, flag: 'wx' });
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

/**
 * The file's bytes, or undefined when it does not exist (any other failure is thrown). Only a regular file
 * (a link followed) is read: what the client reads may sit in a folder others write (an install folder or a
 * lock in a checkout), and readFile waited forever on a FIFO there (`installed.json.lock` held every
 * install) and read a link to /dev/zero until memory ran out. Opened without blocking, so a FIFO is known by
 * its fstat, not waited on.
 * @throws ClientError FILE_NOT_REGULAR naming the path.
 */
export async function readIfExists(path: string): Promise<Buffer | undefined> {
  const handle = await openWithoutWaiting(path);
  if (!handle) return undefined;
  try {
    const info = await handle.stat();
    // A folder fails its read with EISDIR, as readFile's did (callers name it so).
    if (!info.isFile() && !info.isDirectory())
      throw new ClientError(
        'FILE_NOT_REGULAR',
        `${path} is not a regular file (a FIFO, a device or a socket): not read; remove it`,
      );
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}

/** O_NONBLOCK is not defined on Windows, where opening a named pipe does not wait for a writer. */
const READ_WITHOUT_WAITING = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0);

/** `path` opened for reading without waiting on a FIFO, or undefined when there is none (else thrown). */
async function openWithoutWaiting(path: string): Promise<Awaited<ReturnType<typeof open>> | undefined> {
  try {
    return await open(path, READ_WITHOUT_WAITING);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * The bytes of the regular file at `path` (a link followed) when it holds at most `maxBytes`; undefined when
 * there is none, when it is no regular file, or when it is larger. For files in folders others may write (a
 * discovery path, an install folder in a checkout): readFile waits on a FIFO until someone writes to it, and
 * reads a device such as /dev/zero until memory runs out. Opened without blocking, so a FIFO is known by
 * its fstat, not waited on; read no further than the cap, whatever the file grew to since.
 */
export async function readRegularIfExists(path: string, maxBytes: number): Promise<Buffer | undefined> {
  const handle = await openWithoutWaiting(path);
  if (!handle) return undefined;
  try {
    const info = await handle.stat();
    if (!info.isFile() || info.size > maxBytes) return undefined;
    const buffer = Buffer.alloc(Math.min(info.size, maxBytes) + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.byteLength - length, null);
      if (bytesRead === 0) return buffer.subarray(0, length);
      length += bytesRead;
      if (length > maxBytes) return undefined;
      if (length === buffer.byteLength) return undefined; // grew past what it held when opened
    }
  } finally {
    await handle.close();
  }
}

export async function readTextIfExists(path: string): Promise<string | undefined> {
  return (await readIfExists(path))?.toString('utf8');
}

/** For secrets named `file:PATH`: read when the request is built, never kept. undefined when missing. */
export function readSecretFileSync(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * Whether a process of this PID runs (EPERM: it does, as another user's). No PID at or below 0 is a holder's:
 * kill(0) and kill(-1) signal this process's own group and every process it may signal, so they succeed as
 * if the holder ran (a lock naming one was waited for until the deadline, never broken). FsStore's temp
 * sweep has its own copy (adapters/fs-temps.ts): adapters import only the core, the client only the core's
 * pure parts, and the core touches no process, so no module both may import can hold it. The local server's
 * socket folders are judged by it too (cli/local/submission-socket.ts).
 */
export function processAlive(pid: number): boolean {
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, owned by someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * What a lock file says of its holder. The PID alone (all a lock said before, and what older clients read
 * first) is no holder on another machine or after a reboot: a lock committed to a checkout, or left across
 * a reboot, named a PID that ran here too (1, init, always does), and every install waited 30 s, then failed.
 * So a lock also names the machine (`host`), its boot (`boot`, Linux's boot id) and the holder's start
 * (`start`, the clock ticks since boot /proc gives, telling a PID reused since from the holder), each a
 * `key value` line after the PID and token; a lock without them is judged by its PID as before.
 */
interface LockHolder {
  readonly pid: number | undefined;
  readonly host?: string;
  readonly boot?: string;
  readonly start?: string;
}

function parseHolder(content: string): LockHolder {
  const [first = '', , ...rest] = content.split('\n');
  // Number.parseInt as before: a lock an older client wrote holds its PID first, maybe alone.
  const pid = Number.parseInt(first, 10);
  const fields = new Map<string, string>();
  for (const line of rest) {
    const space = line.indexOf(' ');
    if (space > 0) fields.set(line.slice(0, space), line.slice(space + 1));
  }
  const host = fields.get('host');
  const boot = fields.get('boot');
  const start = fields.get('start');
  return {
    pid: Number.isInteger(pid) ? pid : undefined,
    ...(host !== undefined ? { host } : {}),
    ...(boot !== undefined ? { boot } : {}),
    ...(start !== undefined ? { start } : {}),
  };
}

/** A file's text, trimmed; undefined where it cannot be read (no /proc: not Linux). */
function readProcText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** This boot's id (Linux); undefined elsewhere. Read once: it does not change while a process runs. */
let bootId: string | undefined | null = null;
function thisBoot(): string | undefined {
  if (bootId === null) bootId = readProcText('/proc/sys/kernel/random/boot_id') || undefined;
  return bootId;
}

/** When process `pid` started, in clock ticks since boot (/proc/PID/stat's 22nd field); undefined without /proc. */
function startOf(pid: number | 'self'): string | undefined {
  const stat = readProcText(`/proc/${pid}/stat`);
  // The command name (field 2) is in parentheses and may hold spaces: fields are counted after its `)`.
  const after = stat?.slice(stat.lastIndexOf(')') + 2).split(' ');
  return after?.[19];
}

/** The lines after the PID and token that tell this holder from another machine's, boot's or process's. */
function holderLines(): string {
  const boot = thisBoot();
  const start = startOf('self');
  return [
    `host ${hostname()}`,
    ...(boot !== undefined ? [`boot ${boot}`] : []),
    ...(start !== undefined ? [`start ${start}`] : []),
  ]
    .map((line) => `\n${line}`)
    .join('');
}

/** When this machine booted (ms since the epoch). */
function bootedAtMs(): number {
  return Date.now() - uptime() * 1000;
}

/** /proc's clock ticks a second (USER_HZ): 100 on every Linux architecture Node.js runs on. */
const PROC_TICKS_PER_SECOND = 100;

/**
 * When the process of `pid` now started (ms since the epoch), from its start in ticks since boot; undefined
 * without /proc. Off by the wall clock's steps since boot, as `bootedAtMs` is.
 */
function startedAtMs(pid: number): number | undefined {
  const ticks = Number(startOf(pid));
  return Number.isFinite(ticks) ? bootedAtMs() + (ticks * 1000) / PROC_TICKS_PER_SECOND : undefined;
}

/** The margin for clocks and rounding when a lock's time is held to a boot's or a process's start. */
const CLOCK_MARGIN_MS = 60_000;

/**
 * How often a holder touches its lock (its mtime), and how long untouched a lock naming another machine is
 * taken for one whose holder is gone. Only a lock that names its machine (this release's form) is judged by
 * it, and every holder that writes that form touches it.
 */
export const LOCK_HEARTBEAT_MS = 10_000;
const FOREIGN_LOCK_STALE_MS = 60_000;

/**
 * Whether the holder a lock names is gone: its PID runs no process; or it was written on this machine in an
 * earlier boot, or by a process that started otherwise than the one of that PID now (a PID reused). A lock
 * naming another machine cannot be judged by its PID here (an install folder on a shared filesystem may be
 * held by a process there): it is gone when its holder has not touched it for a minute (`LOCK_HEARTBEAT_MS`),
 * else waited for, the refusal naming the machine and the file to delete. Judged by the machine alone, a
 * lock a killed install left in a workspace that a CI container with a new host name, or a laptop whose
 * name follows its network, took up again was never broken, every install failing INSTALL_BUSY until the
 * file was deleted by hand.
 */
async function holderGone(lock: string, holder: LockHolder): Promise<boolean> {
  const pid = holder.pid as number;
  if (holder.host !== undefined && holder.host !== hostname())
    return (await ageMs(lock)) > FOREIGN_LOCK_STALE_MS;
  if (!processAlive(pid)) return true;
  const boot = thisBoot();
  if (holder.boot !== undefined && boot !== undefined) {
    if (holder.boot !== boot) return true;
    const start = startOf(pid);
    return holder.start !== undefined && start !== undefined && holder.start !== start;
  }
  // A lock naming no boot (an older client's, or one written where there is no boot id): last written
  // before this machine booted, no process running now wrote it; last written before the process of its PID
  // started, that process did not (the PID is another's since: a holder writes its lock once it runs). Judged
  // by the PID alone, a lock an older client left named a PID reused since by a live process, and every
  // install waited 30 s, then failed. A minute's margin for clocks and rounding: a wall clock stepped forward
  // by more since the lock was written could take a live holder's for stale.
  const info = await stat(lock).catch(() => undefined);
  if (info === undefined) return false;
  if (info.mtimeMs < bootedAtMs() - CLOCK_MARGIN_MS) return true;
  const started = startedAtMs(pid);
  return started !== undefined && info.mtimeMs < started - CLOCK_MARGIN_MS;
}

/** A lock with no PID in it this long was left by a writer killed before it wrote one. */
const EMPTY_LOCK_STALE_MS = 10_000;

async function ageMs(path: string): Promise<number> {
  const info = await stat(path).catch(() => undefined);
  return info ? Date.now() - info.mtimeMs : 0;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs `fn` holding the lock file `lock` (O_EXCL, holding this PID, a token of this holder's own, and who
 * this holder is: `LockHolder`). A lock whose holder is no longer running is stale (a killed process, an
 * earlier boot's) and is broken (`holderGone`); a live one is waited for, up to
 * `timeoutMs`, then `busy` names the holder. The client locks `<target>.lock` beside what it edits; the
 * local registry locks its folder with the same code. `broke`, when this holder broke a stale lock to take
 * it, is run once the lock is held, before `fn`, with the killed holder's PID (undefined for a lock killed
 * before it held one): what that holder was writing was left unfinished, and only a holder may tidy it.
 */
export async function withLockFile<T>(
  lock: string,
  fn: () => Promise<T>,
  options: {
    readonly timeoutMs?: number;
    /** How often the lock is touched while held (`LOCK_HEARTBEAT_MS`); a test seam. */
    readonly heartbeatMs?: number;
    /** `holder`: the PID the lock names, and ` on HOST` where it names another machine. */
    readonly busy: (holder: string) => Error;
    readonly broke?: (holder: number | undefined) => Promise<void>;
  },
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  await makeFolders(dirname(lock));
  // The PID first (what another process judges a lock by), then a token: two holders in one process, and a
  // lock taken again since, are told apart.
  // Then who this holder is beyond its PID (`LockHolder`), which older clients do not read.
  const mine = `${process.pid}\n${randomBytes(8).toString('hex')}${holderLines()}`;
  // Each stale lock this waiter broke, by its holder's PID: another waiter may take the lock in between.
  const broken: (number | undefined)[] = [];
  for (let wait = 5; ; wait = Math.min(wait * 2, 200)) {
    try {
      const handle = await open(lock, 'wx');
      await handle.writeFile(mine);
      await handle.close();
      break;
    } catch (error) {
      // Its folder removed while this waited (a trust folder `registry remove` emptied under the lock this
      // waited for): made again, as at the start, and taken.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT' && Date.now() <= deadline) {
        await makeFolders(dirname(lock));
        continue;
      }
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const content = await readTextIfExists(lock);
      if (content === undefined) continue; // released between the two calls
      const holder = parseHolder(content);
      // Stale: its holder is gone (killed, or of another boot), or it never got a PID written (killed
      // between open and write) and is older than any writer could take.
      const stale =
        holder.pid !== undefined
          ? await holderGone(lock, holder)
          : content === '' && (await ageMs(lock)) > EMPTY_LOCK_STALE_MS;
      if (stale && (await breakStale(lock, content))) {
        broken.push(holder.pid);
        continue;
      }
      // Held, or being broken by another waiter: waited for alike.
      if (Date.now() > deadline)
        throw options.busy(
          holder.pid === undefined
            ? '(unknown)'
            : `${holder.pid}${holder.host !== undefined && holder.host !== hostname() ? ` on ${holder.host}` : ''}`,
        );
      await sleep(wait);
    }
  }
  // Touched while held, so a waiter on another machine, which cannot ask after this PID, knows it is alive.
  // lutimes, not utimes: a lock swapped for a link by someone who may write its folder had the times of
  // whatever file the link led to set (a backup tool's or make's judgement of it changed), not the link's.
  const heartbeat = setInterval(() => {
    const now = new Date();
    lutimes(lock, now, now).catch(() => undefined);
  }, options.heartbeatMs ?? LOCK_HEARTBEAT_MS);
  heartbeat.unref();
  try {
    for (const holder of broken) await options.broke?.(holder);
    return await fn();
  } finally {
    clearInterval(heartbeat);
    // Only this holder's own lock: never one another holder took (this one's was broken as stale).
    if ((await readTextIfExists(lock)) === mine) await rm(lock, { force: true });
  }
}

/** A breaker's own lock older than this was left by a waiter killed while breaking (which takes a few ms). */
const BREAKING_STALE_MS = 10_000;

/**
 * Breaks the stale lock that held `judged`, and no other; false when another waiter is breaking it. One waiter
 * at a time breaks a lock, holding `<lock>.breaking` (O_EXCL): while it reads the lock and removes it, the
 * lock can be no other than the stale one, as only a breaker removes another's lock and no lock can be taken
 * while one is there. (Two waiters that judged it stale each removed it: the second, the lock the first had
 * taken since.)
 */
async function breakStale(lock: string, judged: string): Promise<boolean> {
  const breaking = `${lock}.breaking`;
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(breaking, 'wx');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    if ((await ageMs(breaking)) > BREAKING_STALE_MS) await rm(breaking, { force: true });
    return false;
  }
  try {
    await handle.close();
    if ((await readTextIfExists(lock)) === judged) await rm(lock, { force: true });
    return true;
  } finally {
    await rm(breaking, { force: true });
  }
}

/**
 * Runs `fn` holding `<target>.lock`, so two processes editing `target` take turns.
 * `timeoutMs`: how long a live holder is waited for (30 s).
 * @throws ClientError INSTALL_BUSY naming the lock file, the PID holding it (and its machine, another's), and
 *   that it is the file to delete when no plugindex holds it.
 */
export function withFileLock<T>(
  target: string,
  fn: () => Promise<T>,
  options: { readonly timeoutMs?: number } = {},
): Promise<T> {
  const lock = `${target}.lock`;
  return withLockFile(lock, fn, {
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    busy: (holder) =>
      new ClientError(
        'INSTALL_BUSY',
        `${lock} is held by process ${holder}; another plugindex is installing here. If none is (a lock ` +
          `copied or committed from elsewhere, whose process number another process has here), delete ${lock} and run again`,
      ),
  });
}
