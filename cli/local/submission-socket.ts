/**
 * A running `plugindex serve` takes a local registry's submissions over a socket beside the registry's lock
 * (`<dir>/.serve.sock`; a named pipe on Windows), so a `plugindex publish --registry DIR` beside it hands its
 * upload over rather than running the pipeline in a process of its own. The server is warm: its modules
 * (openpgp.js among them) are loaded and its code compiled, which is most of what a cold publish at 10,000
 * plugins spends its half second on (ARCHITECTURE.md, "A publish as a process, and its floor").
 *
 * The command still puts its upload under `incoming/` itself, as every submitter does, then sends its key
 * and digest and waits for the outcome, which the server records as the pipeline always does
 * (`status/<id>.json`). The server runs that one upload at once, under the registry's lock, with the index
 * documents rendered before it answers: the command returns when the registry shows the publish, as a cold
 * one does. Nothing listening, or a socket left by a server that is gone, and the command runs the pipeline
 * itself; a server that goes away once it has the key leaves the upload in `incoming/`, for the next batch.
 *
 * One request a connection, a line of JSON each way: `{"key":"incoming/...","sha256":"..."}`, then
 * `{"outcome":{...}}` or `{"error":{"code":"...","message":"..."}}`.
 */
import { createHash } from 'node:crypto';
import { chmod, link, lstat, mkdir, readdir, rm, stat, unlink } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { processAlive } from '../../adapters/fs-temps.ts';
import { INCOMING_PREFIX, isSafeKey } from '../../index-builder/layout.ts';
import type { SubmissionOutcome } from '../../index-builder/pipeline/index.ts';
import { CliError, type CliErrorCode } from '../errors.ts';

/** What a command sends: the key of the upload it put under `incoming/`, and the upload's SHA-256 (hex). */
export interface ServiceRequest {
  readonly key: string;
  readonly sha256: string;
}

/** The longest path a Unix socket can have everywhere Node.js runs (macOS: 104 bytes, with its NUL). */
const MAX_SOCKET_PATH_BYTES = 103;
/** A request is one short line; anything longer is not one. */
const MAX_REQUEST_BYTES = 4096;
/**
 * How long a connection may take to send its request, from the moment it is accepted (a deadline, not an
 * idle timeout: a client sending a byte within each period held the connection, and a descriptor, for as
 * long as its 4,096 bytes lasted, about eleven hours); and how long one may stay once answered.
 */
const REQUEST_TIMEOUT_MS = 10_000;
/**
 * The most connections open at once; one more is closed as soon as it is accepted (the command that made
 * it fails SERVICE_FAILED, its upload left in `incoming/` for the watcher). A command holds one for its one
 * request, so few are ever open; without a cap, a process opening them faster than they time out used up
 * the server's descriptors, and the HTTP server's requests and the watcher's batches failed with it (the
 * HTTP server caps its own, `MAX_CONNECTIONS`).
 */
export const MAX_SUBMISSION_CONNECTIONS = 64;
/** The file name beside the registry's `.lock`. */
export const SERVICE_SOCKET_NAME = '.serve.sock';

/**
 * Where the registry in `dir` takes submissions: its socket, or on Windows a named pipe named after the
 * folder. Undefined when the path would be too long for a socket (a deep folder): then no server listens
 * and every command runs the pipeline itself.
 */
export function servicePath(dir: string): string | undefined {
  const resolved = path.resolve(dir);
  if (process.platform === 'win32') {
    const id = createHash('sha256').update(resolved.toLowerCase()).digest('hex').slice(0, 32);
    return `\\\\.\\pipe\\plugindex-${id}`;
  }
  const socket = path.join(resolved, SERVICE_SOCKET_NAME);
  return Buffer.byteLength(socket) <= MAX_SOCKET_PATH_BYTES ? socket : undefined;
}

/** Why a request is not one, or undefined. */
function requestProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return 'a request is a JSON object';
  const { key, sha256 } = value as Record<string, unknown>;
  if (typeof key !== 'string' || !key.startsWith(INCOMING_PREFIX))
    return `"key" must be a key under ${INCOMING_PREFIX}`;
  const name = key.slice(INCOMING_PREFIX.length);
  if (name.includes('/') || !isSafeKey(key))
    return `"key" must name one upload directly under ${INCOMING_PREFIX}`;
  if (typeof sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(sha256))
    return '"sha256" must be 64 lowercase hexadecimal digits';
  return undefined;
}

export interface SubmissionService {
  /** Where it listens. */
  readonly path: string;
  close(): Promise<void>;
}

/**
 * The mode of the registry's socket: read and write for its owner, and for group and others where they may
 * write to `incoming/` (so whoever can drop an upload can hand it over, and no one else). Connecting to a
 * Unix socket takes write permission on it, and Node makes it `0777` less the umask: a server started under
 * umask 0 (a service manager's or a container's setting) let every user on the machine connect, ask it to
 * take any upload in `incoming/` at once (not waiting for the watcher to see it settle) and read the outcome
 * recorded for any key and digest, though `incoming/` was the operator's alone.
 */
async function socketModeFor(dir: string): Promise<number> {
  const incoming = await stat(path.join(dir, INCOMING_PREFIX)).catch(() => undefined);
  const writable = incoming?.mode ?? 0;
  return 0o600 | (writable & 0o020 ? 0o060 : 0) | (writable & 0o002 ? 0o006 : 0);
}

/** Listens on `socket`; resolves false when another process already does (EADDRINUSE). */
function listenOn(server: net.Server, socket: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const failed = (error: NodeJS.ErrnoException) => {
      server.off('listening', listening);
      if (error.code === 'EADDRINUSE') resolve(false);
      else reject(error);
    };
    const listening = () => {
      server.off('error', failed);
      resolve(true);
    };
    server.once('error', failed);
    server.once('listening', listening);
    server.listen(socket);
  });
}

/**
 * An open connection to whatever listens at `socket`, or undefined when nothing does: nothing there (ENOENT),
 * a socket nothing answers at (ECONNREFUSED, a file left by a process that is gone), or not a socket.
 */
function connectTo(socket: string): Promise<net.Socket | undefined> {
  return new Promise((resolve) => {
    const connection = net.connect(socket);
    const refused = () => resolve(undefined);
    connection.once('error', refused);
    connection.once('connect', () => {
      connection.off('error', refused);
      resolve(connection);
    });
  });
}

/** Whether a process answers at `socket`. */
async function answers(socket: string): Promise<boolean> {
  const probe = await connectTo(socket);
  probe?.destroy();
  return probe !== undefined;
}

/**
 * The folder a server binds its socket in before it links it into place: `.s-` and its PID in base 36 (at
 * most six digits for any PID up to 2^31), so `<dir>/.s-XXXXXX/s` is never longer than `<dir>/.serve.sock`
 * and any registry whose socket fits `MAX_SOCKET_PATH_BYTES` can bind it there. Named by its PID, not at
 * random (mkdtemp's `.sXXXXXX`), so a folder a server killed while it bound left is known for one, and whose:
 * `removeStagingLeftovers`.
 */
export function stagingFolderName(pid: number): string {
  return `${STAGING_PREFIX}${pid.toString(36)}`;
}

const STAGING_PREFIX = '.s-';
const STAGING_NAME = /^\.s-([0-9a-z]{1,6})$/;

/**
 * How old a folder of a server's with no socket in it is before it is taken for one a killed server left:
 * a server binds in it within a moment of making it.
 */
const EMPTY_STAGING_STALE_MS = 10_000;

/**
 * Whether the folder `folder` (named as `stagingFolderName` names them) is one a server left for good: a
 * folder of this user's, and no server answers at its socket (a live one of another PID namespace, a
 * container sharing the registry folder, whose PID means nothing here), or it has none and is older than
 * `EMPTY_STAGING_STALE_MS`.
 */
async function isStagingLeftover(folder: string): Promise<boolean> {
  const info = await lstat(folder).catch(() => undefined);
  if (!info?.isDirectory() || info.uid !== process.getuid?.()) return false;
  const bound = path.join(folder, 's');
  if (await lstat(bound).catch(() => undefined)) return !(await answers(bound));
  return Date.now() - info.mtimeMs > EMPTY_STAGING_STALE_MS;
}

/**
 * The name servers before 7a4542c bound their socket in: mkdtemp's `.sXXXXXX`, six letters or digits (glibc's
 * and the BSDs' alike), no PID in it; never a `.s-` name of today's (`-` is no mkdtemp character).
 */
const OLD_STAGING_NAME = /^\.s[0-9A-Za-z]{6}$/;

/**
 * Whether `folder`, of the older naming, is one a server killed while binding left for good. Its name says
 * nothing of its process, so it is judged by what is in it, more strictly than a `.s-` folder: holding
 * the socket `s` and nothing else (a folder a user keeps beside the registry under such a name, `.scripts`
 * say, holds something else, or is no socket's, or is empty: an empty one is kept, harmless left and
 * possibly the user's), untouched for `EMPTY_STAGING_STALE_MS` (a server made it, bound and linked the
 * socket away within a moment), and no server answering at its socket (a live one of an older version, in
 * this or another PID namespace, answers).
 */
async function isOldStagingLeftover(folder: string): Promise<boolean> {
  // lstat first: a link of such a name is no server's folder, and its target is not listed.
  const info = await lstat(folder).catch(() => undefined);
  if (!info?.isDirectory() || info.uid !== process.getuid?.()) return false;
  if (Date.now() - info.mtimeMs <= EMPTY_STAGING_STALE_MS) return false;
  const entries = await readdir(folder).catch(() => undefined);
  // Only the socket `s`: an empty folder of such a name may be the user's (`.scripts`, `.shadow`, `.static`
  // match the pattern), and left it costs nothing, where removed it was theirs lost.
  if (entries === undefined || entries.length !== 1 || entries[0] !== 's') return false;
  const bound = path.join(folder, 's');
  return (await lstat(bound).catch(() => undefined))?.isSocket() === true && !(await answers(bound));
}

/**
 * Removes the folders servers killed while binding their socket left beside the registry's (`dir`): named
 * by a PID that runs nothing here (nor is this process's), and left for good (`isStagingLeftover`).
 * Before, a server killed between making its folder (mkdtemp's, named at random) and removing it left
 * it there forever, one more at each such kill.
 */
async function removeStagingLeftovers(dir: string): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    if (OLD_STAGING_NAME.test(name)) {
      const folder = path.join(dir, name);
      if (await isOldStagingLeftover(folder))
        await rm(folder, { recursive: true, force: true }).catch(() => undefined);
      continue;
    }
    const digits = STAGING_NAME.exec(name)?.[1];
    if (digits === undefined) continue;
    const pid = Number.parseInt(digits, 36);
    if (pid === process.pid || processAlive(pid)) continue;
    const folder = path.join(dir, name);
    if (await isStagingLeftover(folder))
      await rm(folder, { recursive: true, force: true }).catch(() => undefined);
  }
}

/**
 * Makes this process's folder to bind in (`0700`, this user's alone). One there already of this PID is an
 * earlier process's of the same PID (before a reboot, or the PID reused), removed when it is left for good;
 * any other thing there fails the start (EEXIST), as a folder of this process's making is the only one bound
 * in. One start at a time in a process (`staging`), as two would share the name.
 */
async function makeStagingFolder(dir: string): Promise<string> {
  const folder = path.join(dir, stagingFolderName(process.pid));
  try {
    await mkdir(folder, { mode: 0o700 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || !(await isStagingLeftover(folder))) throw error;
    await rm(folder, { recursive: true, force: true });
    await mkdir(folder, { mode: 0o700 });
  }
  return folder;
}

/** The starts of this process, one after another: each binds in the folder of this PID. */
let staging: Promise<unknown> = Promise.resolve();

/** Links `from` at `to`; false when something is there already (EEXIST). */
async function linkInto(from: string, to: string): Promise<boolean> {
  try {
    await link(from, to);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

function closeServer(server: net.Server): Promise<void> {
  return new Promise<void>((resolve) => server.close(() => resolve()));
}

/**
 * Listens on the registry's socket, which is at its path only once it has its mode (socketModeFor).
 * Node makes a socket `0777` less the umask, and a client's connect is checked against the mode as it is
 * then: bound at `.serve.sock` and chmod'ed after, a socket let a client of any user connect in between,
 * and be served. So it is bound in a folder of the server's alone (mkdtemp's, `0700`, inside the registry
 * folder so the link stays on one filesystem), given its mode there, and hard-linked into place: a client
 * finds it by path, so sees only the final mode. A link, not a rename: a rename replaces whatever is at
 * `.serve.sock`, another running server's socket included, where a link fails (EEXIST) and what is there
 * is judged: another server's (it answers) stays, a socket nothing answers at (left by a killed server) is
 * replaced, anything else stays and no socket is made. Resolves the inode linked, or `why` not.
 */
async function listenInPlace(
  dir: string,
  server: net.Server,
  socket: string,
): Promise<{ readonly placed: { readonly dev: number; readonly ino: number } } | { readonly why: string }> {
  await removeStagingLeftovers(dir);
  const folder = await makeStagingFolder(dir);
  const bound = path.join(folder, 's');
  let listening = false;
  try {
    if (!(await listenOn(server, bound))) throw new Error(`${bound} is in use`);
    listening = true;
    await chmod(bound, await socketModeFor(dir));
    const busy = { why: `another process takes them at ${socket}` };
    if (!(await linkInto(bound, socket))) {
      if (await answers(socket)) {
        await closeServer(server);
        return busy;
      }
      // Only a socket is ours to replace: whatever else is there stays.
      if (!(await lstat(socket).catch(() => undefined))?.isSocket()) {
        await closeServer(server);
        return { why: `${socket} is there and is not a socket` };
      }
      await unlink(socket).catch(() => undefined);
      if (!(await linkInto(bound, socket))) {
        await closeServer(server); // another server took it meanwhile
        return busy;
      }
    }
    const { dev, ino } = await lstat(socket);
    return { placed: { dev, ino } };
  } catch (error) {
    if (listening) await closeServer(server);
    throw error;
  } finally {
    // The bound name goes with its folder; the server listens on all the same, through the linked name.
    await rm(folder, { recursive: true, force: true });
  }
}

/**
 * Takes the registry's submissions while it runs: each request's upload is handed to `handle` (which runs
 * the pipeline on it and returns its outcome) and the outcome sent back. A socket left by a process that is
 * gone is replaced. Otherwise `why` it takes none: the registry's path is too long for a socket, another
 * process takes them already, or the socket cannot be made (the server serves and watches all the same).
 */
export async function listenForSubmissions(
  dir: string,
  handle: (request: ServiceRequest) => Promise<SubmissionOutcome>,
  options: { readonly requestTimeoutMs?: number; readonly maxConnections?: number } = {},
): Promise<{ readonly service: SubmissionService } | { readonly why: string }> {
  const socket = servicePath(dir);
  if (!socket)
    return { why: `the registry's path is too long for a socket (over ${MAX_SOCKET_PATH_BYTES} bytes)` };
  const timeout = options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
  const server = net.createServer((connection) => serveConnection(connection, handle, timeout));
  // Checked by Node as each connection is accepted: one past the cap is closed unread.
  server.maxConnections = options.maxConnections ?? MAX_SUBMISSION_CONNECTIONS;
  if (process.platform === 'win32') {
    // A named pipe has no mode and no folder: listened on by its name, Node removes nothing at close.
    try {
      if (!(await listenOn(server, socket))) return { why: `another process takes them at ${socket}` };
    } catch (error) {
      return { why: `${socket} cannot be listened on: ${(error as Error).message}` };
    }
    return { service: { path: socket, close: () => closeServer(server) } };
  }
  let placed: { readonly dev: number; readonly ino: number };
  try {
    const placing = staging.then(() => listenInPlace(path.dirname(socket), server, socket));
    staging = placing.catch(() => undefined);
    const listening = await placing;
    if ('why' in listening) return listening;
    placed = listening.placed;
  } catch (error) {
    return { why: `${socket} cannot be listened on: ${(error as Error).message}` };
  }
  return {
    service: {
      path: socket,
      // Node removes only the name it bound (gone with its folder): the linked one is removed here, if it is
      // still this server's (a socket of another server's at the path stays). A kill leaves it, replaced at
      // the next start.
      close: async () => {
        const there = await lstat(socket).catch(() => undefined);
        if (there?.dev === placed.dev && there.ino === placed.ino)
          await unlink(socket).catch(() => undefined);
        await closeServer(server);
      },
    },
  };
}

/** Destroys `connection` in `ms` unless it closed by then (or the timer is cleared); it holds no process open. */
function closeWithin(connection: net.Socket, ms: number): NodeJS.Timeout {
  const timer = setTimeout(() => connection.destroy(), ms);
  timer.unref();
  connection.once('close', () => clearTimeout(timer));
  return timer;
}

/**
 * Sends the answer and ends the server's side. The client's side may stay open (a client that never closes
 * it, or one half-open on purpose): the connection is destroyed once the timeout has passed, else it held
 * its descriptor for as long as the client liked.
 */
function replyWith(connection: net.Socket, body: unknown, timeoutMs: number): void {
  if (connection.destroyed) return;
  connection.end(`${JSON.stringify(body)}\n`);
  closeWithin(connection, timeoutMs);
}

function errorReply(code: string, message: string): { error: { code: string; message: string } } {
  return { error: { code, message } };
}

function serveConnection(
  connection: net.Socket,
  handle: (request: ServiceRequest) => Promise<SubmissionOutcome>,
  timeoutMs: number,
): void {
  // A command that goes away mid-request must not take the server with it.
  connection.on('error', () => undefined);
  // A connection that sends no request, or sends it a byte at a time, is not held open: a command sends
  // its line at once, so the whole line is due within the timeout of the connection's start.
  const overdue = closeWithin(connection, timeoutMs);
  let buffered = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    const end = buffered.indexOf(0x0a);
    if (end < 0 && buffered.byteLength <= MAX_REQUEST_BYTES) return;
    connection.off('data', onData);
    // Anything sent after the request is not read (nor kept).
    connection.resume();
    // Running the pipeline may take a while (a batch of the watcher's holds the lock): no timeout now.
    clearTimeout(overdue);
    const reply = (body: unknown) => replyWith(connection, body, timeoutMs);
    if (end < 0 || end > MAX_REQUEST_BYTES) {
      reply(errorReply('BAD_REQUEST', `a request is one line of at most ${MAX_REQUEST_BYTES} bytes`));
      return;
    }
    let request: unknown;
    try {
      request = JSON.parse(buffered.subarray(0, end).toString('utf8'));
    } catch {
      reply(errorReply('BAD_REQUEST', 'a request is one line of JSON'));
      return;
    }
    const problem = requestProblem(request);
    if (problem) {
      reply(errorReply('BAD_REQUEST', problem));
      return;
    }
    handle(request as ServiceRequest).then(
      (outcome) => reply({ outcome }),
      (error: unknown) => {
        const { code, message } = error as { code?: unknown; message?: unknown };
        reply(errorReply(typeof code === 'string' ? code : 'SERVICE_ERROR', String(message)));
      },
    );
  };
  connection.on('data', onData);
}

/** An open connection to a registry's server, or undefined when none listens. */
export function connectToService(dir: string): Promise<net.Socket | undefined> {
  const socket = servicePath(dir);
  return socket ? connectTo(socket) : Promise.resolve(undefined);
}

const CLI_CODES: ReadonlySet<string> = new Set<CliErrorCode>([
  'LOCKED',
  'ROTATION_PENDING',
  'NOT_A_REGISTRY',
]);

/** The server failed or went away (`why`) with the upload at `key` put under incoming/: it stays there. */
export function serviceGone(key: string, why: string): CliError {
  return new CliError(
    'SERVICE_FAILED',
    `the registry's server ${why}: the upload stays at ${key}, for the next batch (plugindex process, or the server's next poll)`,
  );
}

/**
 * Sends `request` over `connection` and returns the outcome the server recorded.
 * @throws CliError SERVICE_FAILED when the server refuses it, fails, or goes away before it answers (the
 *   upload stays in `incoming/`), or the server's own code for LOCKED, ROTATION_PENDING or NOT_A_REGISTRY.
 */
export function requestOutcome(connection: net.Socket, request: ServiceRequest): Promise<SubmissionOutcome> {
  return new Promise((resolve, reject) => {
    let answer = '';
    const gone = (why: string) => serviceGone(request.key, why);
    // Closed already (its 'close' is past, and would never come): the server went away before it was asked.
    if (connection.destroyed) {
      reject(gone('went away before it was asked'));
      return;
    }
    connection.setEncoding('utf8');
    connection.on('data', (chunk: string) => {
      answer += chunk;
    });
    connection.once('error', (error) => reject(gone(`failed (${error.message})`)));
    connection.once('close', () => {
      const end = answer.indexOf('\n');
      if (end < 0) {
        reject(gone('went away before it answered'));
        return;
      }
      let parsed: { outcome?: SubmissionOutcome; error?: { code?: string; message?: string } };
      try {
        parsed = JSON.parse(answer.slice(0, end));
      } catch {
        reject(gone('answered what is not JSON'));
        return;
      }
      if (parsed.outcome) resolve(parsed.outcome);
      else {
        const code = parsed.error?.code ?? '';
        const message = parsed.error?.message ?? 'no outcome';
        reject(
          CLI_CODES.has(code)
            ? // The upload is under incoming/ already: the server's watcher takes it once it can.
              new CliError(
                code as CliErrorCode,
                `${message}; the upload stays at ${request.key}, for the server's next poll`,
              )
            : gone(`refused it (${code || 'SERVICE_ERROR'}: ${message})`),
        );
      }
    });
    connection.write(`${JSON.stringify(request)}\n`);
  });
}
