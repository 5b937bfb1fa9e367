/**
 * A consumer client as one machine runs it, over real HTTP: its folders under `home`, no proxy or retries
 * from the environment, a fixed clock inside the test registries' snapshot lifetime, never fresh from cache.
 */
import { join } from 'node:path';
import { createClient, type PlugindexClient } from '../../client/client.ts';
import { createHttpFetcher } from '../../client/fetcher.ts';
import { fixedClock } from '../../index-builder/clock.ts';

export function httpClient(home: string): PlugindexClient {
  return createClient({
    dirs: { config: join(home, 'config'), data: join(home, 'data'), cache: join(home, 'cache') },
    fetcher: createHttpFetcher({ env: {}, retries: 0 }),
    env: {},
    clock: fixedClock(new Date('2026-11-02T00:00:00Z')),
    platform: { os: 'linux', arch: 'amd64' },
    offline: false,
    freshForMs: 0,
  });
}

/** One machine's client folders and files under `home`, and a client for each `run` (closed after it). */
export interface ClientMachine {
  readonly data: string;
  readonly lockfile: string;
  readonly dir: string;
  run<T>(body: (client: PlugindexClient) => Promise<T>): Promise<T>;
}

/**
 * A machine as `httpClient` makes one, on the system clock (for registries the test makes now, whose
 * snapshots a fixed clock could take for expired), with a client opened for each `run`: what one run of the
 * command keeps on disk is what the next finds.
 */
export function clientMachine(home: string): ClientMachine {
  const dirs = { config: join(home, 'config'), data: join(home, 'data'), cache: join(home, 'cache') };
  return {
    data: dirs.data,
    lockfile: join(home, 'plugindex.lock'),
    dir: join(home, 'plugins'),
    async run(body) {
      const client = createClient({
        dirs,
        fetcher: createHttpFetcher({ env: {}, retries: 0 }),
        env: {},
        platform: { os: 'linux', arch: 'amd64' },
        freshForMs: 0,
      });
      try {
        return await body(client);
      } finally {
        await client.close();
      }
    },
  };
}
