/**
 * A consumer client as one machine runs it, over real HTTP: its folders under `home`, no proxy or retries
 * from the environment, a fixed clock inside the test registries' snapshot lifetime, never fresh from cache.
 */
import { join } from 'node:path';
import { createClient, type PlugindexClient } from '../../client/client.ts';
import { createHttpFetcher, type Fetcher } from '../../client/fetcher.ts';
import type { Platform } from '../../client/resolve.ts';
import { fixedClock } from '../../index-builder/clock.ts';

export interface HttpClientOptions {
  /** The host it installs for: linux-amd64 unless given; `'host'`, this host's, as the CLI runs without --platform. */
  readonly platform?: Platform | 'host';
}

export function httpClient(home: string, options: HttpClientOptions = {}): PlugindexClient {
  const platform = options.platform ?? { os: 'linux', arch: 'amd64' };
  return createClient({
    dirs: { config: join(home, 'config'), data: join(home, 'data'), cache: join(home, 'cache') },
    fetcher: createHttpFetcher({ env: {}, retries: 0 }),
    env: {},
    clock: fixedClock(new Date('2026-11-02T00:00:00Z')),
    ...(platform === 'host' ? {} : { platform }),
    offline: false,
    freshForMs: 0,
  });
}

/** One machine's plugin folder and lockfile under `home`, and a client for each `run` (closed after it). */
export interface PlatformMachine {
  readonly dir: string;
  readonly lockfile: string;
  /** A run on `httpClient`'s client installing for `platform` (undefined: this host's). */
  run<T>(platform: Platform | undefined, body: (client: PlugindexClient) => Promise<T>): Promise<T>;
}

/**
 * A machine as `httpClient` makes one, its host given for each `run`, as one test asks what hosts of several
 * platforms (or this one) install from the same registry; what one run keeps on disk is what the next finds.
 */
export function platformMachine(home: string): PlatformMachine {
  return {
    dir: join(home, 'plugins'),
    lockfile: join(home, 'plugindex.lock'),
    async run(platform, body) {
      const client = httpClient(home, { platform: platform ?? 'host' });
      try {
        return await body(client);
      } finally {
        await client.close();
      }
    },
  };
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

/** A fetcher over HTTP that tells `reading` of each document it is asked for, and reads it once that is done. */
export function httpFetcherTelling(reading: (path: string) => void | Promise<void>): Fetcher {
  const http = createHttpFetcher({ env: {}, retries: 0 });
  return {
    document: async (endpoint, request) => {
      await reading(request.path);
      return http.document(endpoint, request);
    },
    download: (endpoint, request) => http.download(endpoint, request),
    ociBlob: (request) => http.ociBlob(request),
    ociManifest: (request) => http.ociManifest(request),
    list: (endpoint, path) => http.list(endpoint, path),
    close: () => http.close(),
  };
}

/**
 * A fetcher over HTTP that holds a run at its first read of the log: `atLog` resolves once the run asks for
 * a log segment, and the read goes on once `release` is called (two runs side by side, one made the slower).
 */
export function heldAtLog(): { slow: Fetcher; atLog: Promise<void>; release: () => void } {
  let release = () => {};
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  let reading = () => {};
  const atLog = new Promise<void>((resolve) => {
    reading = resolve;
  });
  const slow = httpFetcherTelling(async (path) => {
    if (path.startsWith('log/')) {
      reading();
      await released;
    }
  });
  return { slow, atLog, release };
}
