/**
 * A BundleInspector on worker threads (adapters/inspector-thread.ts): a large batch's bundles are read,
 * validated and their signatures checked on the other cores, while the publishing thread judges, renders,
 * signs and writes. Inspecting is the part of an import that depends on nothing else of the batch: about a
 * quarter of the publishing thread's time in an import of 10,000 new plugins.
 *
 * Threads start at the first batch large enough (`minBundles`) and stay for later ones (a `serve` process
 * publishes many), keeping the process alive only while they have work. A thread takes bundles once its
 * modules are loaded; until then, and for any bundle a thread that stopped had, the batch inspects in its
 * own thread (`here`), so every bundle is answered, whatever becomes of the threads.
 */
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type {
  BundleInspector,
  Inspection,
  InspectionBasis,
  InspectionRun,
} from '../index-builder/pipeline/inspect.ts';
import { joinBytes } from '../index-builder/store.ts';
import type { FromThread, ToThread } from './inspector-thread.ts';

export interface ThreadInspectorOptions {
  /** Threads to start; by default one a core but one (the publishing thread's), at most 4. */
  readonly threads?: number;
  /** Batches of fewer bundles are inspected in their own thread: starting a thread costs its modules' load. */
  readonly minBundles?: number;
  /** From how many bundles a batch waits for threads still loading (`WAIT_FOR_THREADS_BUNDLES`). */
  readonly waitForThreadsFrom?: number;
}

/** Fewer bundles than this are inspected where they are judged (a thread loads for a fifth of a second). */
export const MIN_BUNDLES_FOR_THREADS = 64;

/**
 * From this many bundles, a batch's inspections wait for threads still loading (about a fifth of a second)
 * rather than start in the batch's own thread: at about 0.3 ms each, a thousand would keep that thread
 * busy longer than the threads take to load, and it has the rest of the batch to read meanwhile.
 */
export const WAIT_FOR_THREADS_BUNDLES = 1_000;

/** The longest a batch waits for threads loading; then it inspects in its own thread what they cannot. */
const LOAD_WAIT_MS = 5_000;

/**
 * Resolves once `promise` settles, or after `ms`. Its timer keeps the process alive meanwhile: the threads
 * are unreferenced while they load, and a batch that waits for them may have nothing else pending.
 */
function waitAtMost(promise: Promise<unknown>, ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    const done = (): void => {
      clearTimeout(timer);
      resolve();
    };
    promise.then(done, done);
  });
}

/**
 * Bundles a batch keeps in flight: enough that a thread never waits for the next while the publishing
 * thread judges those answered (answers and requests go out together, once a turn).
 */
const IN_FLIGHT = 64;

interface Job {
  readonly id: number;
  readonly run: number;
  readonly bytes: Uint8Array;
  readonly here: (bytes: Uint8Array) => Promise<Inspection>;
  resolve(inspection: Inspection | Promise<Inspection>): void;
}

/** One worker thread and the jobs it has. */
class InspectorThread {
  readonly worker: Worker;
  ready = false;
  stopped = false;
  /** Resolves once the thread is ready, or stopped. */
  readonly settled: Promise<void>;
  #settle!: () => void;
  /** Jobs sent, and not answered yet. */
  readonly pending = new Map<number, Job>();
  /** Jobs to send at the end of this turn. */
  #queue: Job[] = [];
  /** Runs whose basis the thread has. */
  readonly #runs = new Set<number>();
  readonly #bases: Map<number, InspectionBasis>;

  constructor(
    module: ThreadModule,
    bases: Map<number, InspectionBasis>,
    onAnswered: (count: number) => void,
  ) {
    this.#bases = bases;
    this.settled = new Promise<void>((resolve) => (this.#settle = resolve));
    this.worker = startWorker(module);
    this.worker.on('message', (message: FromThread) => {
      if (message.type === 'ready') {
        this.ready = true;
        this.#settle();
        return;
      }
      for (const { id, inspection } of message.answers) {
        const job = this.pending.get(id);
        if (!job) continue;
        this.pending.delete(id);
        job.resolve(inspection);
      }
      onAnswered(message.answers.length);
      if (this.pending.size === 0 && this.#queue.length === 0) this.worker.unref();
    });
    // A thread that stopped (it never throws out of an inspection: a failure is an answer): what it had is
    // inspected in the batch's own thread, as is what it would have been given.
    const stop = (): void => {
      if (this.stopped) return;
      this.stopped = true;
      this.#settle();
      for (const job of [...this.pending.values(), ...this.#queue]) job.resolve(job.here(job.bytes));
      this.pending.clear();
      this.#queue = [];
    };
    this.worker.on('error', stop);
    this.worker.on('exit', stop);
    // Unreferenced once listened to (a listener added later would reference it again): the thread keeps
    // the process alive only while it has bundles (`take`, and the last answer).
    this.worker.unref();
  }

  /** How many jobs it has, sent or not. */
  get load(): number {
    return this.pending.size + this.#queue.length;
  }

  take(job: Job): void {
    if (this.#queue.length === 0) setImmediate(() => this.#flush());
    this.#queue.push(job);
    this.worker.ref();
  }

  #flush(): void {
    if (this.stopped || this.#queue.length === 0) return;
    const jobs = this.#queue;
    this.#queue = [];
    const byRun = new Map<number, Job[]>();
    for (const job of jobs) {
      this.pending.set(job.id, job);
      const list = byRun.get(job.run) ?? [];
      if (list.length === 0) byRun.set(job.run, list);
      list.push(job);
    }
    for (const [run, list] of byRun) {
      if (!this.#runs.has(run)) {
        const basis = this.#bases.get(run);
        if (!basis || !this.#post({ type: 'basis', run, basis })) {
          this.#answerHere(list);
          continue;
        }
        this.#runs.add(run);
      }
      const packed = packJobs(run, list);
      if (!this.#post(packed, [packed.bytes.buffer])) this.#answerHere(list);
    }
  }

  /** Jobs the thread could not be sent: inspected in their batch's own thread. */
  #answerHere(jobs: readonly { readonly id: number }[]): void {
    for (const { id } of jobs) {
      const job = this.pending.get(id);
      if (!job) continue;
      this.pending.delete(id);
      job.resolve(job.here(job.bytes));
    }
  }

  end(run: number): void {
    if (!this.#runs.delete(run) || this.stopped) return;
    this.#post({ type: 'end', run });
  }

  /** Sends a message; false when it cannot be cloned (a basis holding what cannot cross threads). */
  #post(message: ToThread, transfer: readonly ArrayBuffer[] = []): boolean {
    try {
      this.worker.postMessage(message, transfer);
      return true;
    } catch {
      return false;
    }
  }
}

/**
 * A run's jobs as one message: their ids, and their bundles back to back in one buffer, handed over rather
 * than copied again. Sent as a list of jobs, each bundle its own buffer, an import's 10,000 bundles cost this
 * thread about 0.2 s of cloning (about 20 µs a bundle, in messages of about 40).
 */
function packJobs(run: number, jobs: readonly Job[]): Extract<ToThread, { type: 'inspect' }> {
  return {
    type: 'inspect',
    run,
    ids: jobs.map((job) => job.id),
    lengths: jobs.map((job) => job.bytes.byteLength),
    bytes: joinBytes(jobs.map((job) => job.bytes)),
  };
}

/** The thread's module as loaded here (a chunk of its own, or the source), and the role it serves in. */
interface ThreadModule {
  readonly url: string;
  readonly role: string;
}

/** Loaded once a process, by dynamic import (a static one would put it in this module's chunk). */
let threadModule: Promise<ThreadModule> | undefined;

function startWorker({ url, role }: ThreadModule): Worker {
  const workerData = { role };
  // Running from the TypeScript source (the tests, tsx): the thread loads it as this process does.
  if (url.endsWith('.ts')) {
    const tsx = JSON.stringify(
      pathToFileURL(createRequire(url).resolve('tsx/esm/api')).href.replace(/\.cjs$/, '.mjs'),
    );
    const source = `import(${tsx}).then((tsx) => { tsx.register(); return import(${JSON.stringify(url)}); })`;
    return new Worker(source, { eval: true, workerData });
  }
  return new Worker(new URL(url), { workerData });
}

export class ThreadInspector implements BundleInspector {
  readonly #threadCount: number;
  readonly #minBundles: number;
  readonly #waitFrom: number;
  #threads: InspectorThread[] | undefined;
  #started: Promise<void> | undefined;
  /** Started, and not every thread ready (or stopped) yet: from the module's import on. */
  #loading = false;
  readonly #bases = new Map<number, InspectionBasis>();
  #nextRun = 0;
  #nextJob = 0;
  #onThreads = 0;

  constructor(options: ThreadInspectorOptions = {}) {
    this.#threadCount = Math.max(1, options.threads ?? Math.min(4, availableParallelism() - 1));
    this.#minBundles = options.minBundles ?? MIN_BUNDLES_FOR_THREADS;
    this.#waitFrom = options.waitForThreadsFrom ?? WAIT_FOR_THREADS_BUNDLES;
  }

  /** Threads started (and not closed). */
  get threads(): number {
    return this.#threads?.length ?? 0;
  }

  /** Bundles the threads have answered, since this inspector was made (what the tests and benches look at). */
  get inspectedOnThreads(): number {
    return this.#onThreads;
  }

  /**
   * Starts the threads, unless they are started: resolves once each is ready to take bundles (or stopped).
   * A batch starts them itself, and inspects in its own thread until they are ready; a caller that knows a
   * large batch is coming (or a test) can start them sooner.
   */
  start(): Promise<void> {
    if (this.#started) return this.#started;
    const threads: InspectorThread[] = [];
    this.#threads = threads;
    threadModule ??= import('./inspector-thread.ts').then((m) => ({
      url: m.INSPECTOR_THREAD_URL,
      role: m.INSPECTOR_ROLE,
    }));
    this.#started = threadModule.then(
      async (module) => {
        if (this.#threads !== threads) return; // closed meanwhile
        for (let i = 0; i < this.#threadCount; i++)
          threads.push(new InspectorThread(module, this.#bases, (count) => (this.#onThreads += count)));
        await Promise.all(threads.map((t) => t.settled));
      },
      () => undefined, // no threads: every bundle is inspected where it is judged
    );
    this.#loading = true;
    void this.#started.then(() => {
      if (this.#threads === threads) this.#loading = false;
    });
    return this.#started;
  }

  prepare(uploads: number): void {
    if (uploads >= this.#minBundles) void this.start();
  }

  begin(
    basis: InspectionBasis,
    bundles: number,
    here: (bytes: Uint8Array) => Promise<Inspection>,
  ): InspectionRun | undefined {
    if (bundles < this.#minBundles) return undefined;
    void this.start();
    const run = this.#nextRun++;
    this.#bases.set(run, basis);
    const send = (bytes: Uint8Array): Promise<Inspection> => {
      const ready = this.#threads?.filter((t) => t.ready && !t.stopped) ?? [];
      if (ready.length === 0) return here(bytes);
      const thread = ready.reduce((least, t) => (t.load < least.load ? t : least));
      return new Promise<Inspection>((resolve) =>
        thread.take({ id: this.#nextJob++, run, bytes, here, resolve }),
      );
    };
    // While the threads load, a large batch waits for them (for a while at most): its own thread is busy
    // reading the rest of it, and would rather not inspect what the threads can.
    const loaded =
      this.#loading && this.#started && bundles >= this.#waitFrom
        ? waitAtMost(this.#started, LOAD_WAIT_MS)
        : undefined;
    return {
      concurrency: IN_FLIGHT,
      inspect: (bytes) => (loaded && this.#loading ? loaded.then(() => send(bytes)) : send(bytes)),
      end: () => {
        this.#bases.delete(run);
        for (const thread of this.#threads ?? []) thread.end(run);
      },
    };
  }

  /** Stops the threads (what they had is inspected in its batch's thread); a later batch starts others. */
  async close(): Promise<void> {
    const threads = this.#threads ?? [];
    this.#threads = undefined;
    this.#started = undefined;
    this.#loading = false;
    await Promise.all(threads.map((t) => t.worker.terminate()));
  }
}
