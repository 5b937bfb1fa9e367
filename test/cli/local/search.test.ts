/**
 * `GET /search` on the local server, over real sockets, against a registry the pipeline published: the
 * answer ranks and filters exactly as the consumer client's `search` does over the same registry (read by
 * the client through its verified session, over the same server), pages, refuses bad parameters with their
 * codes, and follows a publish (a new generation, the new plugin found, search.json read once per version).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsStore } from '../../../adapters/fs-store.ts';
import { createRegistryServer, listenRegistryServer } from '../../../cli/local/server.ts';
import { sha256Hex } from '../../../index-builder/digest.ts';
import { SNAPSHOT_KEY } from '../../../index-builder/layout.ts';
import { processSubmissions } from '../../../index-builder/pipeline/index.ts';
import type { SearchQuery } from '../../../index-builder/search.ts';
import {
  answerSearch,
  type SearchAnswer,
  SearchIndex,
  type SearchRefusal,
} from '../../../index-builder/search-endpoint.ts';
import { CORS_EXPOSED_HEADERS, DATA_CSP } from '../../../index-builder/serving.ts';
import { CACHE_MUTABLE, type Store } from '../../../index-builder/store.ts';
import { httpClient } from '../../support/client.ts';
import {
  encode,
  makeBundle,
  makeRegistry,
  type TestRegistry,
  validManifest,
} from '../../support/fixtures.ts';

/** Names, display names, tags, descriptions, types, providers and capabilities that reach every tier. */
const PLUGINS: Record<string, unknown>[] = [
  { name: 'kubecost', description: 'Kubernetes cost allocation', supported_providers: ['kubernetes'] },
  {
    name: 'kubecost-lens',
    display_name: 'Kubecost Lens',
    supported_providers: ['kubernetes', 'aws'],
    capabilities: ['actual_cost', 'cost_allocation'],
  },
  { name: 'cost-explorer', description: 'Explore AWS cost', metadata: { tags: ['billing'] } },
  {
    name: 'aws-budget',
    plugin_type: 'observability',
    capabilities: ['budget_alerts'],
    metadata: { tags: ['cost', 'alerts'] },
  },
  { name: 'azure-billing', description: 'Azure cost data', supported_providers: ['azure'] },
  { name: 'gcp-spend', display_name: 'GCP Cost', supported_providers: ['gcp'] },
  { name: 'metrics-hub', plugin_type: 'aggregator', metadata: { tags: ['kubecost', 'prometheus'] } },
  { name: 'spend-watch', description: 'Watches what kubecost reports', supported_providers: ['custom'] },
  { name: 'lens-core', display_name: 'Lens', plugin_type: 'registry' },
];

let registry: TestRegistry;
let base: string;
let close: () => Promise<void>;
let root: string;
const reads: string[] = [];

/** The site as the server sees it, with every read of search.json counted. */
function counting(site: Store): Store {
  return new Proxy(site, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (property !== 'get' && property !== 'getStream') return value;
      return (key: string) => {
        reads.push(key);
        return (value as (key: string) => unknown).call(target, key);
      };
    },
  });
}

async function publish(...manifests: Record<string, unknown>[]): Promise<void> {
  const bundles = await Promise.all(manifests.map((m) => makeBundle({ manifest: validManifest(m) })));
  const result = await processSubmissions(registry.context, await registry.submit(...bundles));
  expect(result.outcomes.map((o) => o.status)).toEqual(manifests.map(() => 'accepted'));
}

beforeAll(async () => {
  registry = await makeRegistry();
  await publish(...PLUGINS);
  const listening = await listenRegistryServer(createRegistryServer({ site: counting(registry.site) }), 0);
  base = listening.url;
  close = listening.close;
  root = await mkdtemp(join(tmpdir(), 'plugindex-search-'));
});

afterAll(async () => {
  await close();
  await rm(root, { recursive: true, force: true });
});

async function search(query: string): Promise<{ status: number; body: unknown; headers: Headers }> {
  const response = await fetch(`${base}/search${query}`);
  return { status: response.status, body: await response.json(), headers: response.headers };
}

/** The consumer client's search over this registry: its own fetch of search.json, verified, then ranked. */
async function clientSearch(query: SearchQuery): Promise<[string, string][]> {
  const home = await mkdtemp(join(root, 'client-'));
  const client = httpClient(home);
  try {
    await client.addRegistry({ name: 'local', url: base, pin: { armored: registry.registryKey.publicKey } });
    return (await client.search(query)).map((hit) => [hit.entry.name, hit.match]);
  } finally {
    await client.close();
  }
}

const ranked = (answer: unknown): [string, string][] =>
  (answer as SearchAnswer).results.map((r) => [r.plugin.name, r.match]);

describe('when a spec client searches the local registry', () => {
  it.each([
    ['kubecost', { terms: ['kubecost'] }],
    ['cost', { terms: ['cost'] }],
    ['lens', { terms: ['lens'] }],
    ['kubecots', { terms: ['kubecots'] }],
    ['cost+kube', { terms: ['cost kube'] }],
    ['COST&provider=AWS', { terms: ['COST'], provider: 'aws' }],
    ['&type=observability', { terms: [], type: 'observability' }],
    ['cost&capability=cost_allocation', { terms: ['cost'], capability: 'cost_allocation' }],
    ['', { terms: [] }],
    ['nothing-like-it', { terms: ['nothing-like-it'] }],
  ] as const)('ranks and filters ?q=%s exactly as the client does', async (q, query) => {
    const answer = await search(`?q=${q}`);
    expect(answer.status).toBe(200);
    const expected = await clientSearch(query);
    expect(ranked(answer.body)).toEqual(expected);
    expect((answer.body as SearchAnswer).total).toBe(expected.length);
  });

  it('finds every tier in this registry, so the comparison above covers each', async () => {
    const tiers = new Set<string>();
    for (const q of ['kubecost', 'cost', 'lens', 'kubecots', 'billing', 'prometheus', ''])
      for (const [, match] of ranked((await search(`?q=${q}`)).body)) tiers.add(match);
    expect([...tiers].sort()).toEqual(
      ['all', 'description', 'exact', 'keyword', 'prefix', 'substring', 'typo'].sort(),
    );
  });

  it('answers with the shape it documents, the snapshot generation and the rows of search.json', async () => {
    const snapshot = JSON.parse(new TextDecoder().decode((await registry.site.get(SNAPSHOT_KEY))?.body)) as {
      generation: number;
    };
    const { status, body, headers } = await search('?q=kubecost&provider=kubernetes');
    expect(status).toBe(200);
    expect(headers.get('content-type')).toBe('application/json');
    expect(headers.get('cache-control')).toBe('public, max-age=10');
    expect(headers.get('x-content-type-options')).toBe('nosniff');
    expect(body).toEqual({
      schema: 'plugindex/search-results/v1',
      generation: snapshot.generation,
      query: { q: 'kubecost', type: null, provider: 'kubernetes', capability: null },
      total: 2,
      offset: 0,
      limit: 100,
      next_offset: null,
      results: [
        { match: 'exact', plugin: expect.objectContaining({ name: 'kubecost', providers: ['kubernetes'] }) },
        { match: 'prefix', plugin: expect.objectContaining({ name: 'kubecost-lens' }) },
      ],
    });
  });

  it('pages with limit and offset, the pages adding up to the whole ranking', async () => {
    const whole = ranked((await search('?q=cost')).body);
    expect(whole.length).toBeGreaterThan(4);
    const pages: [string, string][] = [];
    let offset: number | null = 0;
    while (offset !== null) {
      const page = (await search(`?q=cost&limit=2&offset=${offset}`)).body as SearchAnswer;
      expect(page).toMatchObject({ limit: 2, offset, total: whole.length });
      expect(page.results.length).toBeLessThanOrEqual(2);
      pages.push(...ranked(page));
      offset = page.next_offset;
    }
    expect(pages).toEqual(whole);
    const past = (await search('?q=cost&offset=500')).body as SearchAnswer;
    expect(past).toMatchObject({ results: [], total: whole.length, next_offset: null });
  });

  it('answers HEAD with the headers and no body', async () => {
    const response = await fetch(`${base}/search?q=cost`, { method: 'HEAD' });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(await response.text()).toBe('');
  });
});

describe('when the parameters are bad', () => {
  it.each([
    ['?query=cost', 'SEARCH_PARAMETER_UNKNOWN', 'query'],
    ['?q=cost&Q=cost', 'SEARCH_PARAMETER_UNKNOWN', 'Q'],
    ['?q=cost&q=lens', 'SEARCH_PARAMETER_REPEATED', 'q'],
    ['?provider=aws&provider=aws', 'SEARCH_PARAMETER_REPEATED', 'provider'],
    [`?q=${'a'.repeat(257)}`, 'SEARCH_PARAMETER_TOO_LONG', 'q'],
    ['?type=plugin', 'SEARCH_PARAMETER_INVALID', 'type'],
    ['?provider=mars', 'SEARCH_PARAMETER_INVALID', 'provider'],
    ['?capability=teleport', 'SEARCH_PARAMETER_INVALID', 'capability'],
    ['?limit=0', 'SEARCH_PARAMETER_INVALID', 'limit'],
    ['?limit=1001', 'SEARCH_PARAMETER_INVALID', 'limit'],
    ['?offset=-1', 'SEARCH_PARAMETER_INVALID', 'offset'],
    ['?limit=ten', 'SEARCH_PARAMETER_INVALID', 'limit'],
    ['?q=%00', 'SEARCH_PARAMETER_INVALID', 'q'],
    ['?q=%ZZ', 'SEARCH_PARAMETER_MALFORMED', 'q'],
    ['?q=%C3', 'SEARCH_PARAMETER_MALFORMED', 'q'],
  ])('refuses %s with 400, %s, naming %s', async (query, code, parameter) => {
    const { status, body, headers } = await search(query);
    expect(status).toBe(400);
    expect(headers.get('content-security-policy')).toBe("default-src 'none'; frame-ancestors 'none'");
    expect(body).toMatchObject({ error: 'bad_request', code, parameter });
    expect((body as SearchRefusal).expected).toEqual(expect.any(String));
  });
});

describe('when a question is asked again', () => {
  it('sends the same bytes, its parameters in any order, and the new answer once the registry publishes', async () => {
    const text = async (query: string) => (await fetch(`${base}/search?${query}`)).text();
    const first = await text('q=cost&provider=aws&limit=3');
    expect(await text('limit=3&provider=AWS&q=cost')).toBe(first);
    expect(await text('q=cost&provider=aws&limit=3')).toBe(first);
    const generation = (JSON.parse(first) as SearchAnswer).generation;
    await publish({ name: 'aws-cost-meter', supported_providers: ['aws'] });
    const after = JSON.parse(await text('q=cost&provider=aws&limit=3')) as SearchAnswer;
    expect(after.generation).toBeGreaterThan(generation);
    expect(ranked(after)).toContainEqual(['aws-cost-meter', 'substring']);
  });
});

describe('when a client revalidates its answer (RFC 9110 §13.2.2)', () => {
  const ask = (query: string, headers: Record<string, string> = {}, method = 'GET') =>
    fetch(`${base}/search?${query}`, { headers, method });

  it('tags the answer by the digest of its body: one tag for one question, another once the registry publishes', async () => {
    const response = await ask('q=cost&provider=aws&limit=3');
    const body = await response.text();
    const etag = response.headers.get('etag');
    expect(etag).toBe(`"${sha256Hex(body)}"`);
    // And a page on another origin may read it: no tag it cannot see could be sent back.
    expect(response.headers.get('access-control-expose-headers')).toBe(CORS_EXPOSED_HEADERS);
    expect((await ask('limit=3&provider=AWS&q=cost')).headers.get('etag')).toBe(etag);
    expect((await ask('q=cost&provider=aws&limit=3', {}, 'HEAD')).headers.get('etag')).toBe(etag);
    expect((await ask('q=cost&provider=aws&limit=2')).headers.get('etag')).not.toBe(etag);
    // A refusal names no representation to revalidate.
    expect((await ask('q=cost&term=x')).headers.get('etag')).toBeNull();

    await publish({ name: 'aws-spend-tag', supported_providers: ['aws'] });
    const after = await ask('q=cost&provider=aws&limit=3', { 'if-none-match': etag ?? '' });
    expect(after.status).toBe(200);
    expect(after.headers.get('etag')).not.toBe(etag);
    expect((JSON.parse(await after.text()) as SearchAnswer).generation).toBeGreaterThan(
      (JSON.parse(body) as SearchAnswer).generation,
    );
  });

  it('answers If-None-Match naming its tag 304, to GET and HEAD, with the headers a cache refreshes by', async () => {
    const first = await ask('q=kube');
    await first.arrayBuffer();
    const etag = first.headers.get('etag') ?? '';
    for (const inm of [etag, `W/${etag}`, `"other", ${etag}`, '*'])
      for (const method of ['GET', 'HEAD']) {
        const response = await ask('q=kube', { 'if-none-match': inm }, method);
        expect(response.status, `${method} ${inm}`).toBe(304);
        expect(await response.text()).toBe('');
        expect(response.headers.get('etag')).toBe(etag);
        expect(response.headers.get('cache-control')).toBe('public, max-age=10');
        expect(response.headers.get('access-control-allow-origin')).toBe('*');
        expect(response.headers.get('content-security-policy')).toBe(DATA_CSP);
      }
    const other = await ask('q=kube', { 'if-none-match': '"other"' });
    expect(other.status).toBe(200);
    expect(await other.text()).toBe(await (await ask('q=kube')).text());
  });

  it('answers If-Match naming another tag 412, its own 200, and ignores dates: the answer has none', async () => {
    const first = await ask('q=lens');
    const body = await first.text();
    const etag = first.headers.get('etag') ?? '';
    const refused = await ask('q=lens', { 'if-match': '"other"' });
    expect(refused.status).toBe(412);
    expect(await refused.json()).toEqual({ error: 'precondition_failed' });
    expect(refused.headers.get('cache-control')).toBe('no-store');
    expect((await ask('q=lens', { 'if-match': `W/${etag}` })).status).toBe(412); // compared strongly
    for (const headers of [
      { 'if-match': etag } as Record<string, string>,
      { 'if-match': '*' },
      { 'if-modified-since': new Date(Date.now() + 86_400_000).toUTCString() },
      { 'if-unmodified-since': 'Thu, 01 Jan 1970 00:00:00 GMT' },
    ]) {
      const response = await ask('q=lens', headers);
      expect(response.status, JSON.stringify(headers)).toBe(200);
      expect(await response.text()).toBe(body);
    }
  });
});

describe('when the registry publishes again', () => {
  it('answers from the new generation, finds the new plugin, and reads search.json once per version', async () => {
    const before = (await search('?q=cost')).body as SearchAnswer;
    reads.length = 0;
    for (const q of ['cost', 'lens', 'kubecost']) expect((await search(`?q=${q}`)).status).toBe(200);
    // Three searches of an unchanged registry: three snapshots read, search.json not once.
    expect(reads.filter((k) => k === 'search.json')).toEqual([]);
    expect(reads.filter((k) => k === SNAPSHOT_KEY)).toHaveLength(3);

    await publish({ name: 'cost-radar', description: 'A new cost source' });
    const after = (await search('?q=cost')).body as SearchAnswer;
    expect(after.generation).toBeGreaterThan(before.generation);
    expect(ranked(after)).toContainEqual(['cost-radar', 'prefix']);
    expect(ranked(before)).not.toContainEqual(['cost-radar', 'prefix']);
    // The new version read once, for all three searches after the publish.
    await search('?q=lens');
    await search('?q=radar');
    expect(reads.filter((k) => k === 'search.json')).toHaveLength(1);
    expect(ranked(after)).toEqual(await clientSearch({ terms: ['cost'] }));
  });
});

describe('when a client does not read its answer', () => {
  /**
   * A client that asks for a large page and never reads it, with a receive buffer of 4 KiB, so the kernel
   * takes next to nothing of the answer and the rest waits in the server. Python, since Node cannot set
   * SO_RCVBUF on a TCP socket; it holds the connection until its stdin closes.
   */
  const STALLED_CLIENT = `
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /search?limit=1000 HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\n")
print("sent", flush=True)
sys.stdin.read()
`;
  let site: FsStore;
  let server: Server;
  let port: number;
  let closeLarge: () => Promise<void>;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    // 1000 rows of about 3 KB: an answer of 3 MB, under the page budget.
    site = new FsStore(join(root, 'large'));
    const rows = Array.from({ length: 1000 }, (_, i) => ({
      name: `plugin-${i}`,
      description: `row ${i} ${'x'.repeat(3000)}`,
      latest_version: '1.0.0',
      plugin_type: 'cost_source',
      providers: ['aws'],
      capabilities: [],
      keywords: [],
    }));
    const body = encode(JSON.stringify({ plugins: rows }));
    const snapshot = {
      generation: 7,
      documents: { 'search.json': { sha256: sha256Hex(body), size: body.length } },
    };
    const options = { contentType: 'application/json', cacheControl: CACHE_MUTABLE };
    await site.put('search.json', body, options);
    await site.put(SNAPSHOT_KEY, encode(JSON.stringify(snapshot)), options);
    server = createRegistryServer({ site });
    server.on('connection', (socket: Socket) => sockets.push(socket));
    const listening = await listenRegistryServer(server, 0);
    port = Number(new URL(listening.url).port);
    closeLarge = listening.close;
  });

  afterAll(async () => {
    await closeLarge();
  });

  it('sends the text JSON.stringify makes of the answer, with its length, to GET and HEAD', async () => {
    const expected = `${JSON.stringify((await answerSearch(new SearchIndex(site), 'limit=1000')).body)}\n`;
    const response = await fetch(`http://127.0.0.1:${port}/search?limit=1000`);
    const text = Buffer.from(await response.arrayBuffer());
    const head = await fetch(`http://127.0.0.1:${port}/search?limit=1000`, { method: 'HEAD' });

    expect(text.length).toBeGreaterThan(3_000_000);
    expect(text.equals(Buffer.from(expected))).toBe(true);
    expect(response.headers.get('content-length')).toBe(String(text.length));
    expect(head.headers.get('content-length')).toBe(String(text.length));
  });

  it('holds a piece or two of the answer for it, not the whole answer', async () => {
    const before = sockets.length;
    const client = spawn('/usr/bin/python3', ['-c', STALLED_CLIENT, String(port)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    try {
      // A client that cannot start (no Python) fails here, not at the test's timeout.
      await new Promise((resolve, reject) => {
        client.stdout.once('data', resolve);
        client.once('error', reject);
      });
      await expect.poll(() => sockets.length).toBe(before + 1);
      const socket = sockets[before] as Socket;
      // Answered: the head and what the client's buffers took are out, the rest waits on the client.
      await expect.poll(() => socket.bytesWritten).toBeGreaterThan(0);
      await new Promise((resolve) => setTimeout(resolve, 500));

      // Sent whole, the 3 MB answer waited here entire (3,174,369 bytes for a client like this one).
      expect(socket.writableLength).toBeLessThan(64 * 1024);
      expect(socket.destroyed).toBe(false);
    } finally {
      client.stdin.end();
      client.kill();
    }
  });
});
