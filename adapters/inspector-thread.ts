/**
 * An inspector thread (adapters/inspector.ts starts it): inspects the bundles it is sent, as the publishing
 * thread would (index-builder/pipeline/inspect.ts), and answers each inspection as plain data. Its own
 * module, loaded by dynamic import, so the CLI's bundle makes it a chunk of its own: a thread loads what
 * inspecting needs (the tar reader, the manifest validator, openpgp.js), not the pipeline.
 *
 * Imported in the main thread only for its URL (`INSPECTOR_THREAD_URL`): it starts serving only in a
 * worker thread started with `workerData.role === INSPECTOR_ROLE`.
 */
import { isMainThread, type MessagePort, parentPort, workerData } from 'node:worker_threads';
import {
  type Inspection,
  type InspectionBasis,
  inspectBundle,
  threw,
  trustedKeysOf,
} from '../index-builder/pipeline/inspect.ts';
import type { TrustedKeys } from '../index-builder/trust.ts';

export const INSPECTOR_ROLE = 'plugindex-inspector';

/** Where this module is (a chunk of the CLI's bundle, or the source): what a thread is started from. */
export const INSPECTOR_THREAD_URL = import.meta.url;

/** What the publishing thread sends an inspector thread. */
export type ToThread =
  /** What the bundles of run `run` are inspected against, sent before its first bundle. */
  | { readonly type: 'basis'; readonly run: number; readonly basis: InspectionBasis }
  /** Bundles to inspect: job `ids[i]`'s bytes are the next `lengths[i]` of `bytes` (inspector.ts, packJobs). */
  | {
      readonly type: 'inspect';
      readonly run: number;
      readonly ids: readonly number[];
      readonly lengths: readonly number[];
      readonly bytes: Uint8Array<ArrayBuffer>;
    }
  /** Run `run` asks no more: its basis and keys can go. */
  | { readonly type: 'end'; readonly run: number };

/** What an inspector thread answers. */
export type FromThread =
  /** Its modules are loaded: it inspects from now on without a wait. */
  | { readonly type: 'ready' }
  | {
      readonly type: 'inspected';
      readonly answers: readonly { readonly id: number; readonly inspection: Inspection }[];
    };

/**
 * Sends answers; one that cannot be cloned (a library's error carrying what cannot cross threads) is sent
 * as a plain error, so every job is answered and none waits for ever.
 */
function send(port: MessagePort, answers: readonly { id: number; inspection: Inspection }[]): void {
  try {
    port.postMessage({ type: 'inspected', answers } satisfies FromThread);
  } catch {
    for (const { id, inspection } of answers) {
      try {
        port.postMessage({ type: 'inspected', answers: [{ id, inspection }] } satisfies FromThread);
      } catch (error) {
        const failed = threw(new Error(`the inspection could not be sent back: ${(error as Error).message}`));
        port.postMessage({ type: 'inspected', answers: [{ id, inspection: failed }] } satisfies FromThread);
      }
    }
  }
}

function serve(port: MessagePort): void {
  const runs = new Map<number, { readonly basis: InspectionBasis; readonly trusted: Promise<TrustedKeys> }>();
  const answers: { id: number; inspection: Inspection }[] = [];
  // Answers go out together, once a turn: a message between threads costs tens of µs on each side.
  const answer = (id: number, inspection: Inspection): void => {
    if (answers.length === 0) setImmediate(() => send(port, answers.splice(0)));
    answers.push({ id, inspection });
  };
  const inspect = async (run: number, id: number, bytes: Uint8Array): Promise<void> => {
    const known = runs.get(run);
    let inspection: Inspection;
    try {
      if (!known) throw new Error(`no basis for inspection run ${run}`);
      inspection = await inspectBundle(bytes, known.basis, await known.trusted);
    } catch (error) {
      inspection = threw(error);
    }
    answer(id, inspection);
  };
  port.on('message', (message: ToThread) => {
    if (message.type === 'basis') {
      const trusted = trustedKeysOf(message.basis);
      trusted.catch(() => undefined); // met by each inspection that awaits it
      runs.set(message.run, { basis: message.basis, trusted });
    } else if (message.type === 'inspect') {
      const { run, ids, lengths, bytes } = message;
      let offset = 0;
      for (const [i, id] of ids.entries()) {
        const length = lengths[i] as number;
        void inspect(run, id, bytes.subarray(offset, offset + length));
        offset += length;
      }
    } else runs.delete(message.run);
  });
  port.postMessage({ type: 'ready' } satisfies FromThread);
}

if (!isMainThread && parentPort && (workerData as { role?: unknown } | null)?.role === INSPECTOR_ROLE)
  serve(parentPort);
