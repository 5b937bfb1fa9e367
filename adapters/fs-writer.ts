/**
 * FsStore's writer thread: the system calls of a small put (temp file, stat, sidecar, two renames) run on a
 * worker thread, so the publishing thread renders and signs the next document while the kernel creates the
 * files, on the other core. Creating and replacing files is the dearest part of a publish on ext4 (tens to
 * hundreds of µs of kernel time a call once the disk is busy): a rebuild of 10,000 plugins spent two thirds
 * of its main thread in them. One message a batch of puts, where libuv's pool takes one round trip a call.
 *
 * The thread's code is a string evaluated by `new Worker(..., { eval: true })`, using only Node's built-in
 * modules: no file to find after bundling (the CLI is split by esbuild), nothing of the core to load twice.
 * It does what FsStore's put did in this thread, in the same order: the temp file beside the target, its
 * stat, the sidecar (metadata first, through its own temp file and rename), then the rename of the body.
 * A put of the bytes and metadata a file already holds (the whole SHA-256 its sidecar records, a sidecar
 * that describes the file on disk) changes nothing: a rebuild rewrites every document, mostly unchanged, and
 * a replacing rename is the dearest call of all. A key in a folder the thread made itself is new unless it
 * put it since: it is written without looking for a former file or sidecar first (an import's 100,000
 * lstats that found nothing). A new file of an immutable key (a version's files) is created in place, with
 * no temp file and no rename (`createExclusive`); every other file, and any replacement, goes through a temp file.
 */
import type { Worker } from 'node:worker_threads';
import { CACHE_IMMUTABLE, joinBytes } from '../index-builder/store.ts';

/**
 * Most folders an FsStore and its writer thread remember having made (`FolderMemo`); past it, each starts
 * over. An import of 10,000 new plugins makes about 40,000 (each plugin's, its version's, its artifacts'),
 * then writes their documents: a memory of 10,000 had forgotten them, and each was asked for again (10,000
 * mkdir). A path is about 100 bytes: 10 MB at most.
 */
export const MADE_FOLDERS_LIMIT = 100_000;

/**
 * A request's fields in its batch's text, each ended by a NUL (no path holds one, and FsStore.put refuses
 * metadata that does): its file, sidecar, body length, content type, cache control,
 * content encoding ('' for none), SHA-256 ('' for none) and '1' when bare.
 */
const PACKED_FIELDS = 9;

/** What a put asks of the writer thread. */
export interface WriteRequest {
  /** The body's path, and its sidecar's (both already checked to lie inside the store). */
  readonly file: string;
  readonly meta: string;
  readonly body: Uint8Array;
  readonly contentType: string;
  readonly cacheControl: string;
  readonly contentEncoding?: string;
  /** Of a compressed variant, its document's SHA-256 (FsStore's `PutOptions.decodedSha256`), for the sidecar. */
  readonly decodedSha256?: string;
  /**
   * The body's SHA-256 (hex); the sidecar records it and its first 32 digits, quoted, as the ETag. Only a
   * bare put may leave it out: hashed here when a former sidecar has to be compared.
   */
  readonly sha256?: string;
  /** Write no sidecar (the metadata is what the key implies: FsStore's `isBare`), and remove a former one. */
  readonly bare?: boolean;
}

/** An error from the writer thread: the system call's message and code, as fs would have thrown it. */
export class WriterError extends Error {
  readonly code: string | undefined;
  constructor(message: string, code: string | undefined) {
    super(message);
    this.name = 'WriterError';
    this.code = code;
  }
}

const WORKER_SOURCE = String.raw`
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const path = require('node:path');
const { createHash, randomBytes } = require('node:crypto');
const ATTEMPTS = 3;
const FOLDERS_LIMIT = ${MADE_FOLDERS_LIMIT};
// A put with this cache control is of an immutable key (a version's files): a new one is created in place.
const IMMUTABLE = ${JSON.stringify(CACHE_IMMUTABLE)};
const KNOWN_DEPTH = 8;
const folders = new Set();
// Named as FsStore names its temp files (adapters/fs-temps.ts): the PID, so a sweep knows a killed writer's.
const prefix = process.pid + '.' + randomBytes(6).toString('hex');
let counter = 0;
const tempFor = (file) => path.join(path.dirname(file), '.' + prefix + (++counter).toString(36) + '.tmp');
function identity(stats) {
  return { size: Number(stats.size), mtimeNs: stats.mtimeNs.toString(), ino: stats.ino.toString() };
}
// Missing files are found so without an exception (a failed call throws one, whose stack trace costs more
// than the call: an import of 10,000 new plugins met 120,000 here). Only ENOENT is absent: on any other
// answer the call it saves is made and decides, as FsStore's absent; present is false on any failure.
let lookups = 0;
function absent(file) {
  lookups++;
  try { return fs.lstatSync(file, { throwIfNoEntry: false }) === undefined; } catch { return false; }
}
function present(file) {
  lookups++;
  try { return fs.lstatSync(file, { throwIfNoEntry: false }) !== undefined; } catch { return false; }
}
// 'same' when the file holds these bytes with this metadata already, 'none' when the key has no sidecar (a
// first put, mostly), else 'other'.
function stateOf(r) {
  if (unseen(r.file) || absent(r.meta)) return 'none';
  let text;
  try { text = fs.readFileSync(r.meta, 'utf8'); } catch (error) { return error.code === 'ENOENT' ? 'none' : 'other'; }
  let sidecar;
  try { sidecar = JSON.parse(text); } catch { return 'other'; }
  if (typeof sidecar !== 'object' || sidecar === null || sidecar.sha256 !== r.sha256 ||
      sidecar.contentType !== r.contentType || sidecar.cacheControl !== r.cacheControl ||
      sidecar.contentEncoding !== r.contentEncoding || sidecar.decodedSha256 !== r.decodedSha256) return 'other';
  let stats;
  try { stats = fs.lstatSync(r.file, { bigint: true }); } catch { return 'other'; }
  const id = identity(stats);
  return stats.isFile() && sidecar.size === id.size && sidecar.mtimeNs === id.mtimeNs && sidecar.ino === id.ino
    ? 'same' : 'other';
}
// The folders this thread made (its mkdir succeeded: nothing was there), each with the names of the files
// this thread has put in it since. A key in one that this thread has not put is new: it has no body and no
// sidecar to look for (an import of 10,000 new plugins asked about 100,000 times, each an lstat that found
// nothing). Another writer (the publishing thread, another process) may put a file in one meanwhile; the
// put is then made as for a new key, and is still right: a sidecar is created exclusively (EEXIST: replaced
// through a temp file), the body renamed over. Left behind at worst: a former sidecar of a bare key, which
// describes no file it did not write and is read for nothing.
const fresh = new Map();
function remember(folder) {
  if (folders.size >= FOLDERS_LIMIT) {
    folders.clear();
    fresh.clear();
  }
  folders.add(folder);
}
function forget(folder) {
  folders.delete(folder);
  fresh.delete(folder);
}
// True when this thread made the file's folder and has not put the file since, or made a folder above it
// and none between (a new version's first file, whose folder the put is about to make).
function unseen(file) {
  let folder = path.dirname(file);
  const names = fresh.get(folder);
  if (names !== undefined) return !names.has(path.basename(file));
  for (let depth = 0; depth < KNOWN_DEPTH && !folders.has(folder); depth++) {
    folder = path.dirname(folder);
    if (fresh.has(folder)) return true;
  }
  return false;
}
function seen(file) {
  const names = fresh.get(path.dirname(file));
  if (names !== undefined) names.add(path.basename(file));
}
// FsStore's makeFolderSync: the folders missing below the nearest one remembered, one mkdir each.
function makeFolder(folder) {
  const missing = [];
  let known = folder;
  for (let depth = 0; depth < KNOWN_DEPTH && !folders.has(known); depth++) {
    missing.push(known);
    known = path.dirname(known);
  }
  if (folders.has(known)) {
    try {
      for (let i = missing.length - 1; i >= 0; i--) {
        let made = true;
        try { fs.mkdirSync(missing[i]); } catch (error) { if (error.code !== 'EEXIST') throw error; made = false; }
        remember(missing[i]);
        if (made) fresh.set(missing[i], new Set());
        else fresh.delete(missing[i]);
      }
      return;
    } catch (error) {
      if (error.code !== 'ENOENT') throw error;
      forget(known);
    }
  }
  // The first folder it made, when it made any: that one and those below it are new.
  const first = makeFolders(folder);
  for (const made of missing) {
    remember(made);
    if (first !== undefined && (made === first || made.startsWith(first + path.sep))) fresh.set(made, new Set());
    else fresh.delete(made);
  }
}
// FsStore's makeFoldersSync: mkdirSync(recursive)'s answer without its endless loop under /proc (fs-store.ts
// says why); a folder still ENOENT once its parent is there fails, its message naming it.
function makeFolders(folder) {
  const isFolder = () => fs.statSync(folder, { throwIfNoEntry: false })?.isDirectory() === true;
  try { fs.mkdirSync(folder); return folder; } catch (error) {
    if (isFolder()) return undefined;
    if (error.code !== 'ENOENT' || path.dirname(folder) === folder) throw error;
  }
  const first = makeFolders(path.dirname(folder));
  try { fs.mkdirSync(folder); return first ?? folder; } catch (error) {
    if (isFolder()) return first;
    if (error.code !== 'ENOENT') throw error;
    throw Object.assign(new Error('cannot create the folder ' + folder + ': ' + path.dirname(folder) +
      ' exists, and its filesystem makes no folder there (as /proc): name a folder elsewhere', { cause: error }), { code: 'ENOENT' });
  }
}
// A file created in place, exclusively, with no temp file and no rename, the dearest calls after the file's
// creation: false when one is there already (a concurrent put) or its folder went, and the caller writes
// through a temp file instead. Two kinds of file are written so:
// - A key's first sidecar (a rebuild's new signatures and pages, a publish's new files). A reader reads a
//   sidecar only for a body it found, and the body is renamed in after this: a key the store wrote never
//   shows it half written (a file copied in by hand would read it as none, unparsed).
// - A new immutable file (a version's artifact, manifest or signature; an import of 10,000 new plugins
//   renamed 30,000 of them). A reader that matters never sees one half written: no document names a
//   version's files until they are all written (the plugin document and the index after them), a client
//   reads only what a signed document names and checks its digest, and a run that dies leaves the upload in
//   incoming/: the retry finds the file and, its bytes differing, replaces it through a temp file as any
//   replacement is.
function createExclusive(file, bytes) {
  const folder = path.dirname(file);
  if (!folders.has(folder)) makeFolder(folder);
  let fd;
  try {
    fd = fs.openSync(file, 'wx');
  } catch (error) {
    if (error.code === 'EEXIST' || error.code === 'ENOENT') return false;
    throw error;
  }
  try {
    for (let offset = 0; offset < bytes.byteLength; ) offset += fs.writeSync(fd, bytes, offset, bytes.byteLength - offset);
    fs.closeSync(fd);
  } catch (error) {
    try { fs.closeSync(fd); } catch {}
    fs.rmSync(file, { force: true });
    throw error;
  }
  return true;
}
function writeTemp(file, body, describe) {
  const folder = path.dirname(file);
  for (let attempt = 1; ; attempt++) {
    const remembered = folders.has(folder);
    if (!remembered) makeFolder(folder);
    const temp = tempFor(file);
    let fd;
    try {
      fd = fs.openSync(temp, 'wx');
    } catch (error) {
      // A folder only remembered (pruned since) does not spend an attempt: the next makes it.
      if (error.code === 'ENOENT' && remembered) { forget(folder); attempt--; continue; }
      if (error.code === 'ENOENT' && attempt < ATTEMPTS) continue;
      throw error;
    }
    try {
      for (let offset = 0; offset < body.byteLength; ) offset += fs.writeSync(fd, body, offset, body.byteLength - offset);
      const stats = describe ? fs.fstatSync(fd, { bigint: true }) : undefined;
      fs.closeSync(fd);
      return { temp, stats };
    } catch (error) {
      try { fs.closeSync(fd); } catch {}
      fs.rmSync(temp, { force: true });
      throw error;
    }
  }
}
// FsStore's bareState: 'same' when the file holds these bytes and has no sidecar, 'sidecar' when it has one.
function bareState(r) {
  if (unseen(r.file) || absent(r.file)) return 'none';
  if (present(r.meta)) return 'sidecar';
  let fd;
  try { fd = fs.openSync(r.file, fs.constants.O_RDONLY | (fs.constants.O_NOFOLLOW || 0)); } catch { return 'none'; }
  try {
    const stats = fs.fstatSync(fd);
    if (!stats.isFile() || stats.size !== r.body.byteLength) return 'none';
    return Buffer.from(r.body.buffer, r.body.byteOffset, r.body.byteLength).equals(fs.readFileSync(fd)) ? 'same' : 'none';
  } finally {
    fs.closeSync(fd);
  }
}
function putBare(r) {
  const state = bareState(r);
  if (state === 'sidecar' && r.sha256 === undefined) r = { ...r, sha256: createHash('sha256').update(r.body).digest('hex') };
  // A file written with a sidecar before (an older version, other metadata) may hold these bytes.
  if (state === 'same' || (state === 'sidecar' && stateOf(r) === 'same')) return;
  if (state === 'none' && r.cacheControl === IMMUTABLE && createExclusive(r.file, r.body)) return;
  const { temp } = writeTemp(r.file, r.body, false);
  try { fs.renameSync(temp, r.file); } catch (error) { fs.rmSync(temp, { force: true }); throw error; }
  if (state === 'sidecar') fs.rmSync(r.meta, { force: true });
}
function put(r) {
  if (r.bare) return putBare(r);
  const state = stateOf(r);
  if (state === 'same') return;
  const { temp, stats } = writeTemp(r.file, r.body, true);
  try {
    const sidecar = { contentType: r.contentType, cacheControl: r.cacheControl };
    if (r.contentEncoding) sidecar.contentEncoding = r.contentEncoding;
    if (r.decodedSha256) sidecar.decodedSha256 = r.decodedSha256;
    sidecar.etag = '"' + r.sha256.slice(0, 32) + '"';
    sidecar.sha256 = r.sha256;
    Object.assign(sidecar, identity(stats));
    const bytes = Buffer.from(JSON.stringify(sidecar) + '\n');
    if (state !== 'none' || !createExclusive(r.meta, bytes)) {
      const metaTemp = writeTemp(r.meta, bytes, false).temp;
      try { fs.renameSync(metaTemp, r.meta); } catch (error) { fs.rmSync(metaTemp, { force: true }); throw error; }
    }
    fs.renameSync(temp, r.file);
  } catch (error) {
    fs.rmSync(temp, { force: true });
    throw error;
  }
}
// A batch of puts, written in order, answered in one message (a message costs more than a small put's bytes):
// the requests' fields as one text, FIELDS a request, each ended by a NUL, and their bodies back to back in
// one buffer (packBatch); answered with the failures alone, by the put's place in the batch.
const FIELDS = ${PACKED_FIELDS};
parentPort.on('message', ({ head, bytes }) => {
  const failures = [];
  const fields = head.split('\0');
  let offset = 0;
  for (let i = 0; (i + 1) * FIELDS < fields.length; i++) {
    const at = i * FIELDS;
    const file = fields[at];
    const length = Number(fields[at + 2]);
    const request = {
      file,
      meta: fields[at + 1],
      body: bytes.subarray(offset, offset + length),
      contentType: fields[at + 3],
      cacheControl: fields[at + 4],
      bare: fields[at + 7] === '1',
    };
    if (fields[at + 8] !== '') request.decodedSha256 = fields[at + 8];
    if (fields[at + 5] !== '') request.contentEncoding = fields[at + 5];
    if (fields[at + 6] !== '') request.sha256 = fields[at + 6];
    offset += length;
    try {
      put(request);
    } catch (error) {
      failures.push([i, String(error && error.message), error && error.code]);
    } finally {
      // Written or not (a failed put may have left it either way), it is no longer known to be absent.
      seen(file);
    }
  }
  parentPort.postMessage({ failures, lookups });
  lookups = 0;
});
`;

/**
 * A batch as the thread is sent it: its requests' fields as one text, and their bodies back to back in one
 * buffer, handed over rather than copied. A message of 64 requests as objects, each with its own body, cost
 * this thread about 300 µs more to send (510-575 µs against 200-280 µs, with the batch's making), and an
 * import sends about 1,300; the fields as JSON took 100-270 µs a batch to write, joined 70-80 µs.
 */
interface PackedBatch {
  readonly head: string;
  readonly bytes: Uint8Array<ArrayBuffer>;
}

/** The requests of a batch, packed to be sent (`PackedBatch`). */
function packBatch(requests: readonly WriteRequest[]): PackedBatch {
  const fields: string[] = [];
  for (const request of requests) {
    fields.push(
      request.file,
      request.meta,
      String(request.body.byteLength),
      request.contentType,
      request.cacheControl,
      request.contentEncoding ?? '',
      request.sha256 ?? '',
      request.bare === true ? '1' : '',
      request.decodedSha256 ?? '',
    );
  }
  return { head: `${fields.join('\0')}\0`, bytes: joinBytes(requests.map((request) => request.body)) };
}

/**
 * The thread's answer to a batch: the puts that failed (their place in the batch, the error's message and
 * code; every other put was written), and how many files it looked for to write them.
 */
interface Replies {
  readonly failures: readonly (readonly [index: number, message: string, code: string | undefined])[];
  readonly lookups: number;
}

/** A put not yet answered. */
interface Waiting {
  readonly request: WriteRequest;
  resolve(): void;
  reject(error: Error): void;
}

/**
 * Batches a thread is given at once: one it writes, and two behind it, so it never waits for this thread to
 * send more. The puts made while it has as many wait here and go out together once a batch is answered: a
 * message between threads costs about 25 µs of CPU on each side (the body's clone is a small part of it),
 * more than a small put's bytes, and a rebuild of 10,000 plugins makes 30,000 puts.
 */
const BATCHES_IN_FLIGHT = 3;

/**
 * Most puts in one batch. The puts an answer frees are made in one turn: sent as one batch, the thread would
 * write them all while this thread waits, then wait while this thread made the next ones (an import's plugin
 * documents kept the two cores about half busy so). Split, the thread writes the first batch while this
 * thread handles the answer to the one before.
 */
const MAX_BATCH_PUTS = 64;

/**
 * The writer thread, started at the first put and shared by every FsStore of the process (a registry's
 * intake and site stores write side by side). It keeps the process alive only while a put is waiting.
 */
export class FsWriter {
  #worker: Worker | undefined;
  /** Puts not yet sent. */
  #queue: Waiting[] = [];
  /** Whether a send is due at the end of this turn. */
  #sendDue = false;
  /** What this process has sent its threads: batches, the largest, and the most a thread had at once. */
  readonly sent = { batches: 0, largest: 0, mostInFlight: 0 };
  /** Files the threads looked for before writing (an lstat each: a body, a sidecar), answered so far. */
  lookups = 0;
  /**
   * The batches the current thread has and has not answered yet, oldest first: it answers them in the order
   * it was sent them, one message each.
   */
  #sentBatches: Waiting[][] = [];

  /**
   * Writes one small body and its sidecar; rejects with a WriterError carrying the system call's code. The
   * body is copied when its batch is sent, in a later turn: as the Store contract says, it is the caller's
   * again only once the put settles.
   */
  put(request: WriteRequest): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ request, resolve, reject });
      this.#sendSoon();
    });
  }

  /**
   * Sends at the end of this turn, once every put it makes is queued: sent at once, each put made while a
   * batch is free to go would be a message of its own (two thirds of an import's messages held one put).
   */
  #sendSoon(): void {
    if (this.#sendDue) return;
    this.#sendDue = true;
    setImmediate(() => {
      this.#sendDue = false;
      this.#send();
    });
  }

  /** Sends the waiting puts in batches of MAX_BATCH_PUTS, while the thread has fewer than it is given at once. */
  #send(): void {
    while (this.#queue.length > 0 && !(this.#worker && this.#sentBatches.length >= BATCHES_IN_FLIGHT)) {
      const worker = this.#start();
      const batch = this.#queue.splice(0, MAX_BATCH_PUTS);
      this.#sentBatches.push(batch);
      this.sent.batches += 1;
      this.sent.largest = Math.max(this.sent.largest, batch.length);
      this.sent.mostInFlight = Math.max(this.sent.mostInFlight, this.#sentBatches.length);
      worker.ref();
      const packed = packBatch(batch.map((waiting) => waiting.request));
      worker.postMessage(packed, [packed.bytes.buffer]);
    }
  }

  #start(): Worker {
    if (this.#worker) return this.#worker;
    // Loaded only now: a process that writes a few files (one publish) never starts the thread, and loading
    // the module cost it about 4 ms.
    const threads = process.getBuiltinModule('node:worker_threads');
    const worker = new threads.Worker(WORKER_SOURCE, { eval: true });
    worker.unref();
    worker.on('message', ({ failures, lookups }: Replies) => {
      this.lookups += lookups;
      this.#settle(worker, failures);
    });
    // The thread died (it never throws out of a put: a failed put is a reply): each put it had fails as a
    // disk that went away would fail it (it may have written its file or not, never half of it: the
    // rename is the last step), and the puts not yet sent go to a new thread.
    const fail = (error: Error): void => {
      if (this.#worker !== worker) return;
      const batches = this.#stopped();
      for (const batch of batches) rejectAll(batch, error);
      this.#send();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`exit code ${code}`)));
    this.#worker = worker;
    return worker;
  }

  /** Forgets the current thread; returns the batches it had not answered. */
  #stopped(): Waiting[][] {
    const batches = this.#sentBatches;
    this.#worker = undefined;
    this.#sentBatches = [];
    return batches;
  }

  #settle(worker: Worker, failures: Replies['failures']): void {
    if (worker !== this.#worker) return;
    const batch = this.#sentBatches.shift();
    if (!batch) return;
    let next = 0;
    for (const [index, message, code] of failures) {
      for (; next < index; next++) (batch[next] as Waiting).resolve();
      (batch[index] as Waiting).reject(new WriterError(message, code));
      next = index + 1;
    }
    for (; next < batch.length; next++) (batch[next] as Waiting).resolve();
    // Keep the process alive only while the thread has a batch.
    if (this.#sentBatches.length === 0) worker.unref();
    // The puts this answer frees are made after this returns, in this turn: they go with those waiting.
    this.#sendSoon();
  }

  /**
   * Stops the thread; the puts it had and those waiting to be sent fail (WriterError, EIO), and a later
   * put starts another.
   */
  async close(): Promise<void> {
    const worker = this.#worker;
    if (!worker) return;
    const batches = this.#stopped();
    batches.push(this.#queue);
    this.#queue = [];
    await worker.terminate();
    for (const batch of batches) rejectAll(batch, new Error('closed'));
  }
}

function rejectAll(batch: readonly Waiting[], error: Error): void {
  for (const waiting of batch)
    waiting.reject(new WriterError(`the writer thread stopped: ${error.message}`, 'EIO'));
}

/** The process's writer thread. */
export const fsWriter = new FsWriter();
