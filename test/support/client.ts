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
