/** `plugindex serve`: the published tree over HTTP, plus the incoming/ watcher. */
import path from 'node:path';
import type { BatchResult } from '../../index-builder/pipeline/index.ts';
import { flushIndexes, processSubmissions } from '../../index-builder/pipeline/index.ts';
import { CliError } from '../errors.ts';
import { describeOutcome } from '../output.ts';
import { readConfig, withOpenRegistry } from './registry.ts';
import { createRegistryServer, listenRegistryServer } from './server.ts';
import { openSite } from './site.ts';
import { watchIncoming } from './watch.ts';

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
}): Promise<RunningService> {
  await readConfig(options.dir); // fail fast when DIR is not a registry
  const server = createRegistryServer({ site: openSite(options.dir) });
  const listening = await listenRegistryServer(server, options.port, options.host ?? '127.0.0.1').catch(
    (error: unknown) => {
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
      throw new CliError(
        'PORT_IN_USE',
        `port ${options.port} is in use: stop the other server or choose another port (--port N, or PORT=N npm start)`,
        {
          cause: error,
        },
      );
    },
  );
  const watcher = options.watch
    ? watchIncoming({
        dir: options.dir,
        // The registry is reopened per batch, under its lock, so a changed config (publishers add) or a
        // rotated key (rotate-key) takes effect at once.
        process: (): Promise<BatchResult> =>
          withOpenRegistry(options.dir, (registry) =>
            processSubmissions({ ...registry.context, deferIndexes: true }),
          ),
        onResult: (result) => {
          for (const outcome of result.outcomes)
            options.log(`[incoming] ${describeOutcome(outcome, 'line').join(' ')}`);
          if (result.generation !== null) options.log(`[incoming] published generation ${result.generation}`);
        },
        flush: async () => {
          const { generation } = await withOpenRegistry(options.dir, (registry) =>
            flushIndexes(registry.context),
          );
          if (generation !== null)
            options.log(`[incoming] index documents updated, generation ${generation}`);
        },
        onError: (error) => options.log(`[incoming] error: ${(error as Error).message}`),
      })
    : undefined;
  return {
    url: listening.url,
    async close() {
      watcher?.close();
      await listening.close();
    },
  };
}

/** Serves until the process is interrupted. */
export async function serveRegistry(options: {
  readonly dir: string;
  readonly port: number;
  readonly host: string;
  readonly watch: boolean;
  readonly log: (line: string) => void;
}): Promise<void> {
  const service = await startService(options);
  options.log(`serving ${options.dir} at ${service.url}/`);
  if (options.watch) options.log(`watching ${path.join(options.dir, 'incoming')}/ for bundles`);
  await untilInterrupted(service);
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
