/**
 * Watches a registry's `incoming/` folder and publishes what lands there. Bundles are picked up once their
 * size and modification time have been still for a moment, so a slow copy is not read half-written
 * (writing to a dot-file and renaming it in is the safest way to drop one: dot-files are ignored).
 *
 * Batches are published with the index documents deferred (their cost grows with the registry); `flush`
 * renders them once `incoming/` has been quiet for a moment, or at the latest a few seconds after the
 * first deferred batch when uploads keep coming. A failed flush is tried again at the next poll.
 */
import { type FSWatcher, watch } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import type { BatchResult } from '../../index-builder/pipeline/index.ts';

export interface IncomingWatcher {
  close(): void;
}

/** How long an upload's size and time must be still before it is read (the batch holds to it too). */
export const SETTLE_MS = 300;
const POLL_MS = 1000;
/** How far ahead of the clock a file's time may be and still be a write under way (clocks differ a little). */
const FUTURE_MS = 1000;
/** Quiet time after a batch before the index documents are flushed: a burst shares one flush. */
export const FLUSH_QUIET_MS = 500;
/** The longest the index documents lag while uploads keep coming. */
export const FLUSH_MAX_DELAY_MS = 5000;

/**
 * Calls `process` (serialized: never two at once, nor beside `flush`) whenever settled files are waiting in
 * `incoming/`, and `flush` when a batch left the index documents pending (and once at start, for a
 * registry a stopped server left pending).
 */
export function watchIncoming(options: {
  readonly dir: string;
  readonly process: () => Promise<BatchResult>;
  readonly onResult: (result: BatchResult) => void;
  readonly flush: () => Promise<void>;
  readonly onError: (error: unknown) => void;
}): IncomingWatcher {
  const incoming = path.join(options.dir, 'incoming');
  let running = false;
  let again = false;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  /** When the index documents started to lag (0: unknown, flush at the first quiet moment). */
  let pendingSince: number | undefined = 0;
  let lastBatch = 0;

  async function flush(): Promise<void> {
    await options.flush();
    pendingSince = undefined;
  }

  async function settled(): Promise<{ ready: boolean; waiting: boolean }> {
    // Names as raw bytes: an upload may be called anything, and the store reads it under any name.
    const names = (await readdir(incoming, { encoding: 'buffer' }).catch(() => [] as Buffer[])).filter(
      (n) => n[0] !== 0x2e,
    );
    if (names.length === 0) return { ready: false, waiting: false };
    const now = Date.now();
    const folder = Buffer.from(`${incoming}${path.sep}`);
    const stats = await Promise.all(
      // lstat: a link is not an upload the store reads, and must not keep the watcher calling process().
      names.map((n) => lstat(Buffer.concat([folder, n])).catch(() => undefined)),
    );
    // Only files count: a folder someone made in incoming/ must not hold up every bundle beside it.
    const files = stats.filter((s) => s?.isFile());
    if (files.length === 0) return { ready: false, waiting: false };
    // A time ahead of the clock was set by hand (an archive's, a copy's that keeps times): no write under way.
    const ready = files.every(
      (s) => s !== undefined && (now - s.mtimeMs >= SETTLE_MS || s.mtimeMs > now + FUTURE_MS),
    );
    return { ready, waiting: true };
  }

  async function run(): Promise<void> {
    if (closed) return;
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      const state = await settled();
      const overdue = pendingSince !== undefined && Date.now() - pendingSince >= FLUSH_MAX_DELAY_MS;
      if (state.ready) {
        const result = await options.process();
        lastBatch = Date.now();
        options.onResult(result);
        if (result.indexesPending) pendingSince ??= Date.now();
        if (overdue) await flush();
        else if (pendingSince !== undefined) schedule(FLUSH_QUIET_MS);
      } else if (state.waiting) {
        if (overdue) await flush();
        schedule(SETTLE_MS);
      } else if (pendingSince !== undefined) {
        const quiet = Date.now() - lastBatch;
        if (quiet >= FLUSH_QUIET_MS) await flush();
        else schedule(FLUSH_QUIET_MS - quiet);
      }
    } catch (error) {
      options.onError(error);
    } finally {
      running = false;
      if (again) {
        again = false;
        schedule(50);
      }
    }
  }

  function schedule(ms: number): void {
    if (closed) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => void run(), ms);
  }

  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(incoming, () => schedule(100));
  } catch {
    watcher = undefined; // polling below still works
  }
  const poll = setInterval(() => schedule(0), POLL_MS);
  schedule(0);
  return {
    close() {
      closed = true;
      watcher?.close();
      clearInterval(poll);
      if (timer) clearTimeout(timer);
    },
  };
}
