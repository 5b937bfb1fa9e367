/** `plugindex serve`: the published tree over HTTP, plus the incoming/ watcher. */
import path from 'node:path';
import { FsStore } from '../../adapters/fs-store.ts';
import { statusKey, submissionIdFromDigest } from '../../index-builder/layout.ts';
import type { BatchResult, SubmissionOutcome } from '../../index-builder/pipeline/index.ts';
import {
  completeEncodedVariants,
  flushIndexes,
  HeldDocuments,
  processSubmissions,
} from '../../index-builder/pipeline/index.ts';
import { readJson } from '../../index-builder/pipeline/site-writer.ts';
import { CliError, usage } from '../errors.ts';
import { describeOutcome } from '../output.ts';
import {
  checkRegistryKey,
  type RegistryStores,
  readConfig,
  readRunningConfig,
  withOpenRegistry,
  withRegistryLock,
} from './registry.ts';
import { createRegistryServer, listenRegistryServer } from './server.ts';
import { openSite } from './site.ts';
import { listenForSubmissions, type ServiceRequest, type SubmissionService } from './submission-socket.ts';
import { SETTLE_MS, watchIncoming } from './watch.ts';

export interface RunningService {
  readonly url: string;
  close(): Promise<void>;
}

export async function startService(options: {
  readonly dir: string;
  readonly port: number;
  readonly host?: string;
  readonly watch: boolean;
  readonly log: (line: string) => void;
  /** `PipelineContext.compressionThresholdBytes` for what is handed over (tests lower it). */
  readonly compressionThresholdBytes?: number;
  /** The server's cap on open connections: `MAX_CONNECTIONS` (server.ts) unless given. */
  readonly maxConnections?: number;
  /** One address's share of them: `defaultShare` (server.ts) unless given; 0 for none (behind a proxy). */
  readonly maxConnectionsPerAddress?: number;
  /**
   * What an operator watching for trouble reads (`plugindex serve`, `npm start`: stderr): the cause of an
   * internal error, a batch of incoming/ that failed, and the connections the server refuses or closes for
   * others; `log` unless given.
   */
  readonly warn?: (line: string) => void;
}): Promise<RunningService> {
  const host = listenHost(options.host);
  // Fail fast when DIR is not a registry, or its config trusts a key no signature by which is taken: every
  // batch would fail on it (each said on `warn`, the uploads left in incoming/), so the server never starts.
  await readRunningConfig(options.dir);
  // And when its key file holds a key anyone can sign as, or whose signatures cost unbounded work
  // (KEY_UNTRUSTED): every batch would be refused at its signer, and clients refuse what it signed.
  await checkRegistryKey(options.dir);
  const warn = options.warn ?? options.log;
  // No line per request; the cause of an internal error, which the client is not told, is the operator's,
  // on stderr as README says (it went to stdout, among the lines of what was published).
  const server = createRegistryServer({
    site: openSite(options.dir),
    logError: warn,
    maxConnections: options.maxConnections,
    maxConnectionsPerAddress: options.maxConnectionsPerAddress,
    logTurnedAway: warn,
  });
  const listening = await listenRegistryServer(server, options.port, host).catch((error: unknown) => {
    const code = (error as NodeJS.ErrnoException).code;
    // Node's own error went out with its stack and no code: `listen EADDRNOTAVAIL` for another machine's
    // address, `getaddrinfo ENOTFOUND` for a name that does not resolve, `listen EINVAL` for a link-local
    // address without its zone (fe80::1), EAFNOSUPPORT for IPv6 on a machine without it.
    if (
      code === 'EADDRNOTAVAIL' ||
      code === 'ENOTFOUND' ||
      code === 'EAI_AGAIN' ||
      code === 'EINVAL' ||
      code === 'EAFNOSUPPORT'
    )
      throw new CliError(
        'HOST_UNAVAILABLE',
        `--host ${host} is no address this machine can listen on (${code}): give one of its own, 127.0.0.1 (the default) for this machine alone, or 0.0.0.0 for every interface`,
        { cause: error },
      );
    if (code !== 'EADDRINUSE') throw error;
    throw new CliError(
      'PORT_IN_USE',
      `port ${options.port} is in use: stop the other server or choose another port (--port N, or PORT=N npm start)`,
      {
        cause: error,
      },
    );
  });
  // The registry is reopened per batch, under its lock, so a changed config (publishers add) or a rotated
  // key (rotate-key) takes effect at once; its stores are kept, and with them what the pipeline caches per
  // store (each catalog bin's lines, by the bin's digest): a batch or a flush then reads no bin another
  // process has not changed.
  const stores: Required<RegistryStores> = { site: openSite(options.dir), intake: new FsStore(options.dir) };
  const watcher = options.watch
    ? watchIncoming({
        dir: options.dir,
        process: (): Promise<BatchResult> =>
          withOpenRegistry(
            options.dir,
            // What arrived after the watcher judged the folder settled waits for the next look.
            (registry) =>
              processSubmissions({ ...registry.context, deferIndexes: true, settledForMs: SETTLE_MS }),
            stores,
          ),
        onResult: (result) => {
          for (const outcome of result.outcomes)
            options.log(`[incoming] ${describeOutcome(outcome, 'line').join(' ')}`);
          if (result.generation !== null) options.log(`[incoming] published generation ${result.generation}`);
        },
        flush: async () => {
          const { generation, stuck } = await withOpenRegistry(
            options.dir,
            (registry) => flushIndexes(registry.context),
            stores,
          );
          if (generation !== null)
            options.log(`[incoming] index documents updated, generation ${generation}`);
          if (stuck) warn(`[incoming] warning: ${stuck.code}: ${stuck.message}`);
        },
        onError: (error) => warn(`[incoming] error: ${(error as Error).message}`),
      })
    : undefined;
  const submissions = options.watch
    ? await takeSubmissions(
        options.dir,
        stores,
        { log: options.log, warn },
        options.compressionThresholdBytes,
      )
    : undefined;
  return {
    url: listening.url,
    async close() {
      watcher?.close();
      await submissions?.close();
      await listening.close();
    },
  };
}

/**
 * Publishes what `plugindex publish --registry` (and every other local submitter) hands over while this
 * runs (submission-socket.ts): the one upload at once, under the registry's lock like the watcher's batches,
 * with the index documents rendered before the outcome goes back, as a publish in a process of its own does.
 * Only their compressed variants come after the answer (`compressLater`): made from the documents once the
 * outcome is sent, under the lock, unless another publish is already waiting (it will leave its own to make).
 * Meanwhile the server sends a document itself to a client that asks for a variant.
 */
async function takeSubmissions(
  dir: string,
  stores: Required<RegistryStores>,
  { log, warn }: { readonly log: (line: string) => void; readonly warn: (line: string) => void },
  compressionThresholdBytes?: number,
): Promise<SubmissionService | undefined> {
  const threshold = compressionThresholdBytes === undefined ? {} : { compressionThresholdBytes };
  // The index documents this server wrote last: its next publish merges into them without reading them back.
  const held = new HeldDocuments();
  // One thing at a time in this process, in order: each publish, and the variants made between them.
  let queue: Promise<unknown> = Promise.resolve();
  const serially = <T>(work: () => Promise<T>): Promise<T> => {
    const run = queue.then(work, work);
    queue = run.catch(() => {});
    return run;
  };
  let waiting = 0;
  let closing = false;
  const stop = (): boolean => waiting > 0 || closing;
  const compressVariants = (): Promise<void> =>
    serially(async () => {
      if (stop()) return;
      await withRegistryLock(dir, () =>
        completeEncodedVariants({ site: stores.site, held, ...threshold }, { shouldStop: stop }),
      );
    }).catch((error: unknown) =>
      warn(`[publish] compressed variants left for later: ${(error as Error).message}`),
    );
  const publish = async ({ key, sha256 }: ServiceRequest): Promise<SubmissionOutcome> => {
    waiting++;
    const outcome = await serially(() => {
      waiting--;
      return withOpenRegistry(
        dir,
        async (registry) => {
          const result = await processSubmissions(
            { ...registry.context, ...threshold, compressLater: true, held },
            [key],
          );
          if (result.outcomes[0]) return result.outcomes[0];
          // Taken already, by a batch of the watcher's that found it in incoming/: its outcome is recorded.
          return readJson<SubmissionOutcome>(
            registry.context.intake,
            statusKey(submissionIdFromDigest(key, sha256)),
          );
        },
        stores,
      );
    }).finally(() => {
      // After the outcome is sent (the socket replies as this resolves; an immediate runs after that).
      setImmediate(() => void compressVariants());
    });
    if (!outcome) throw new Error(`${key} is not in incoming/, and no outcome is recorded for it`);
    log(`[publish] ${describeOutcome(outcome, 'line').join(' ')}`);
    return outcome;
  };
  const listening = await listenForSubmissions(dir, publish);
  if ('why' in listening) {
    log(`not taking submissions over a socket: ${listening.why}`);
    return undefined;
  }
  const { service } = listening;
  return {
    path: service.path,
    async close() {
      closing = true;
      await service.close();
      // What was being made stops at its next document; the rest stays for the next publish.
      await queue;
    },
  };
}

/**
 * The address `serve --host` listens on: 127.0.0.1 unless given; an IPv6 literal in the brackets a URL
 * writes it in (`[::1]`, as serve prints its own URL) without them, where Node looked the bracketed text up
 * as a name and it was refused HOST_UNAVAILABLE. An empty one is refused (exit 2): Node listens on every
 * interface for it, so `--host "$HOST"` with HOST unset served the registry to the network.
 * @throws CliError USAGE for an empty host
 */
export function listenHost(host: string | undefined): string {
  if (host === undefined) return '127.0.0.1';
  if (host.trim() === '')
    throw usage(
      '--host is empty: give an address of this machine, 127.0.0.1 (the default) for it alone, or 0.0.0.0 for every interface',
    );
  const bracketed = /^\[([0-9A-Fa-f:.]+(?:%[^\]]+)?)\]$/.exec(host);
  return bracketed?.[1] ?? host;
}

/** Serves until the process is interrupted. */
export async function serveRegistry(options: {
  readonly dir: string;
  readonly port: number;
  readonly host: string;
  readonly watch: boolean;
  readonly maxConnections?: number;
  readonly maxConnectionsPerAddress?: number;
  readonly log: (line: string) => void;
  readonly warn?: (line: string) => void;
}): Promise<void> {
  const service = await startService(options);
  options.log(`serving ${options.dir} at ${service.url}/`);
  const elsewhere = servedElsewhere((await readConfig(options.dir)).url, Number(new URL(service.url).port));
  if (elsewhere !== undefined)
    (options.warn ?? options.log)(
      `warning: the registry's URL is ${elsewhere} (${path.join(options.dir, 'plugindex.json')}), but it is served at ${service.url}: its documents and snapshot name ${elsewhere}, and verify --url ${service.url} refuses it (SNAPSHOT_OTHER_REGISTRY); serve it with --port ${new URL(elsewhere).port || '80'}, or set "url" there and run plugindex rebuild --registry ${options.dir}`,
    );
  if (options.watch) options.log(`watching ${path.join(options.dir, 'incoming')}/ for bundles`);
  await untilInterrupted(service);
}

/**
 * The registry's URL when it is this machine's (http, a loopback host) on another port than `port`: every
 * link it publishes then points where nothing serves it (`init` without `--url` names 127.0.0.1:8080). A URL
 * of another host is a proxy's, in front of this server, and says nothing of its port.
 */
function servedElsewhere(url: string, port: number): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(parsed.hostname.toLowerCase());
  if (parsed.protocol !== 'http:' || !loopback) return undefined;
  return Number(parsed.port || '80') === port ? undefined : url;
}

/** Runs until the process is interrupted (Ctrl-C) or asked to stop, then closes the service. */
export async function untilInterrupted(service: RunningService): Promise<void> {
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      void service.close().then(resolve);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
