/**
 * A test registry's site served by the local server over real HTTP on a free port, and the one-plugin
 * registry several client tests install from.
 */
import { createRegistryServer, listenRegistryServer } from '../../cli/local/server.ts';
import { processSubmissions } from '../../index-builder/pipeline/index.ts';
import { makeBundle, makeRegistry, type TestRegistry, validManifest } from './fixtures.ts';

export interface ServedSite {
  readonly base: string;
  readonly close: () => Promise<void>;
  /** Each request's log line (`GET /path 200`), in order: what a test counts requests by. */
  readonly requests: string[];
}

/** `registry`'s site served by the local server, each request logged in `requests`. */
export async function serveSite(registry: TestRegistry): Promise<ServedSite> {
  const requests: string[] = [];
  const listening = await listenRegistryServer(
    createRegistryServer({ site: registry.site, log: (line) => requests.push(line) }),
    0,
  );
  return { base: listening.url, close: listening.close, requests };
}

/** A registry that published `name` 1.0.0 with one linux/amd64 artifact holding `body`, served. */
export async function servedOnePlugin(
  name: string,
  body: Uint8Array,
): Promise<ServedSite & { readonly registry: TestRegistry }> {
  const registry = await makeRegistry();
  await processSubmissions(
    registry.context,
    await registry.submit(
      await makeBundle({
        manifest: validManifest({ name, version: '1.0.0' }),
        artifacts: [{ os: 'linux', arch: 'amd64', name, body }],
      }),
    ),
  );
  return { ...(await serveSite(registry)), registry };
}
