/**
 * The bundled search function (the same esbuild output the CDK app deploys) answering Function URL events
 * over a site bucket on s3rver, which the publish function filled: the ranking the client uses, the
 * refusals by code, a new generation after a publish, and `search.json` read from S3 once per version of it
 * while the container stays warm. The function reaches s3rver through a small forwarding proxy that
 * records each request, so what it reads is observed on the wire, not inside it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Store } from '../../adapters/s3-store.ts';
import type { FunctionUrlEvent, FunctionUrlResult } from '../../functions/search-handler.ts';
import { sha256Hex } from '../../index-builder/digest.ts';
import type { SearchDocument, SnapshotDocument } from '../../index-builder/model.ts';
import { searchPlugins } from '../../index-builder/search.ts';
import { SEARCH_PAGE_BYTES, type SearchAnswer } from '../../index-builder/search-endpoint.ts';
import {
  COMMON_HEADERS,
  CORS_EXPOSED_HEADERS,
  DATA_CSP,
  optionsHeaders,
} from '../../index-builder/serving.ts';
import { bundleFunctions } from '../../infra/bundle-functions.ts';
import { makeBundle, validManifest } from '../support/fixtures.ts';
import { LOCAL_S3_ENV, type LocalS3, localPublishHandler, startLocalS3 } from '../support/s3.ts';

const INTAKE = 'search-intake';
const SITE = 'search-site';

let outdir: string;
let s3: LocalS3;
let proxy: http.Server;
/** `METHOD /bucket/key` of every request the function sent to S3. */
const wire: string[] = [];
let handler: (event: FunctionUrlEvent) => Promise<FunctionUrlResult>;
let publish: (event: unknown) => Promise<{ readonly outcomes: readonly { status: string }[] }>;

beforeAll(async () => {
  outdir = await mkdtemp(path.join(tmpdir(), 'plugindex-search-bundle-'));
  const bundle = await bundleFunctions(outdir);
  s3 = await startLocalS3([INTAKE, SITE]);
  const target = new URL(s3.endpoint);
  proxy = http.createServer((req, res) => {
    wire.push(`${req.method} ${req.url?.split('?')[0]}`);
    const forward = http.request(
      { host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers },
      (upstream) => {
        res.writeHead(upstream.statusCode ?? 502, upstream.headers);
        upstream.pipe(res);
      },
    );
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  // Exactly what the deployed function's environment holds (infra/constructs/search.ts), plus the endpoint.
  Object.assign(process.env, {
    SITE_BUCKET: SITE,
    S3_ENDPOINT: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
    ...LOCAL_S3_ENV,
  });
  ({ handler } = (await import(pathToFileURL(bundle.files.search).href)) as { handler: typeof handler });
  publish = await localPublishHandler(s3, INTAKE, SITE);
  await s3.client.send(
    new PutObjectCommand({
      Bucket: INTAKE,
      Key: 'config/plugindex.json',
      Body: JSON.stringify({ name: 'Searched', url: 'https://plugins.example.com' }),
    }),
  );
});

afterAll(async () => {
  await new Promise((resolve) => proxy?.close(resolve));
  await s3?.close();
  await rm(outdir, { recursive: true, force: true });
});

async function publishPlugins(...manifests: Record<string, unknown>[]): Promise<void> {
  for (const [i, manifest] of manifests.entries()) {
    await s3.client.send(
      new PutObjectCommand({
        Bucket: INTAKE,
        Key: `incoming/${manifest.name}-${i}.tgz`,
        Body: await makeBundle({ manifest: validManifest(manifest) }),
      }),
    );
  }
  const result = await publish({ source: 'aws.events', 'detail-type': 'Scheduled Event' });
  expect(result.outcomes.map((o) => o.status)).toEqual(manifests.map(() => 'accepted'));
}

const site = () => new S3Store({ client: s3.client, bucket: SITE });
async function published<T>(key: string): Promise<T> {
  return JSON.parse(new TextDecoder().decode((await site().get(key))?.body)) as T;
}

const event = (
  rawQueryString: string,
  method = 'GET',
  rawPath = '/search',
  headers: Record<string, string> = {},
): FunctionUrlEvent => ({
  rawPath,
  rawQueryString,
  headers,
  requestContext: { http: { method } },
});

async function ask(query: string): Promise<{ status: number; body: unknown; result: FunctionUrlResult }> {
  const result = await handler(event(query));
  return { status: result.statusCode, body: JSON.parse(result.body), result };
}

/**
 * The headers an answer of status 400 or more must carry of itself: CloudFront runs no viewer-response
 * function on an origin's answer of such a status (its edge functions' restrictions), so the headers
 * function (infra/edge-routing.ts) that gives every other response its policy never sees these.
 */
function expectOwnSecurityHeaders(result: FunctionUrlResult): void {
  expect(result.statusCode).toBeGreaterThanOrEqual(400);
  expect(result.headers).toMatchObject({
    ...COMMON_HEADERS,
    'content-type': 'application/json',
    'content-security-policy': DATA_CSP,
  });
}

describe('when the bundled search function answers', () => {
  it('says 503 SEARCH_NOT_PUBLISHED before anything is published, and caches nothing', async () => {
    const { status, body, result } = await ask('q=cost');
    expect(status).toBe(503);
    expect(body).toMatchObject({ error: 'unavailable', code: 'SEARCH_NOT_PUBLISHED' });
    expect(result.headers['cache-control']).toBe('no-store');
    expectOwnSecurityHeaders(result);
  });

  it('ranks and filters the published search.json as the client does, with its generation', async () => {
    await publishPlugins(
      { name: 'kubecost', supported_providers: ['kubernetes'] },
      { name: 'kubecost-lens', display_name: 'Kubecost Lens', supported_providers: ['kubernetes', 'aws'] },
      { name: 'cost-explorer', description: 'Explore AWS cost' },
      { name: 'spend-watch', description: 'Watches kubecost', plugin_type: 'observability' },
    );
    const rows = (await published<SearchDocument>('search.json')).plugins;
    const { generation } = await published<SnapshotDocument>('snapshot.json');
    for (const [query, filters] of [
      ['q=kubecost', { terms: ['kubecost'] }],
      ['q=kubecots', { terms: ['kubecots'] }],
      ['q=cost&provider=aws', { terms: ['cost'], provider: 'aws' }],
      ['q=&type=Observability', { terms: [], type: 'observability' }],
      ['', { terms: [] }],
    ] as const) {
      const { status, body, result } = await ask(query);
      expect(status, query).toBe(200);
      expect(result.headers).toMatchObject({
        'content-type': 'application/json',
        'cache-control': 'public, max-age=10',
        'x-content-type-options': 'nosniff',
      });
      const answer = body as SearchAnswer;
      expect(answer.generation, query).toBe(generation);
      const expected = searchPlugins([{ registry: 'r', priority: 1, entries: rows }], filters);
      expect(answer.results, query).toEqual(expected.map((h) => ({ match: h.match, plugin: h.entry })));
      expect(answer.total, query).toBe(expected.length);
    }
  });

  it.each([
    ['q=a&q=b', 'SEARCH_PARAMETER_REPEATED', 'q'],
    ['term=cost', 'SEARCH_PARAMETER_UNKNOWN', 'term'],
    [`q=${'x'.repeat(300)}`, 'SEARCH_PARAMETER_TOO_LONG', 'q'],
    ['type=cost', 'SEARCH_PARAMETER_INVALID', 'type'],
    ['limit=5000', 'SEARCH_PARAMETER_INVALID', 'limit'],
    ['q=%E0%A4%A', 'SEARCH_PARAMETER_MALFORMED', 'q'],
  ])('refuses %s with 400 %s naming %s', async (query, code, parameter) => {
    const { status, body, result } = await ask(query);
    expect(status).toBe(400);
    expect(body).toMatchObject({ error: 'bad_request', code, parameter });
    expectOwnSecurityHeaders(result);
  });

  it('answers GET and HEAD, OPTIONS as the local server does, and only /search', async () => {
    const refused = await handler(event('q=cost', 'POST'));
    expect(refused.statusCode).toBe(405);
    expect(refused.headers.allow).toBe('GET, HEAD, OPTIONS');
    expectOwnSecurityHeaders(refused);
    const options = await handler(event('q=cost', 'OPTIONS'));
    expect(options).toEqual({ statusCode: 204, headers: optionsHeaders(false), body: '' });
    const preflight = await handler(
      event('q=cost', 'OPTIONS', '/search', {
        origin: 'https://docs.example.org',
        'access-control-request-method': 'GET',
      }),
    );
    expect(preflight).toEqual({ statusCode: 204, headers: optionsHeaders(true), body: '' });
    expect((await handler(event('q=cost', 'HEAD'))).body).toBe('');
    const elsewhere = await handler(event('', 'GET', '/plugins'));
    expect(elsewhere.statusCode).toBe(404);
    expectOwnSecurityHeaders(elsewhere);
  });

  it('tags an answer by its body, and answers If-None-Match 304 and If-Match 412 as the local server does', async () => {
    const first = await handler(event('q=cost'));
    const etag = first.headers.etag ?? '';
    expect(etag).toBe(`"${sha256Hex(first.body)}"`);
    expect((await handler(event('limit=100&q=cost'))).headers.etag).toBe(etag);
    expect((await handler(event('q=cost', 'HEAD'))).headers.etag).toBe(etag);
    // CloudFront revalidating its copy, or a viewer's tag it made weak when it compressed the answer.
    for (const inm of [etag, `W/${etag}`, '*'])
      for (const method of ['GET', 'HEAD']) {
        const revalidated = await handler(event('q=cost', method, '/search', { 'if-none-match': inm }));
        expect(revalidated.statusCode, `${method} ${inm}`).toBe(304);
        expect(revalidated.body).toBe('');
        expect(revalidated.headers).toMatchObject({
          etag,
          'cache-control': 'public, max-age=10',
          'access-control-allow-origin': '*',
          'access-control-expose-headers': CORS_EXPOSED_HEADERS,
          'content-security-policy': DATA_CSP,
        });
      }
    // The tag a page on another origin must read to send it back (the 200's too).
    expect(first.headers['access-control-expose-headers']).toBe(CORS_EXPOSED_HEADERS);
    const changed = await handler(event('q=cost', 'GET', '/search', { 'if-none-match': '"other"' }));
    expect(changed.statusCode).toBe(200);
    expect(changed.body).toBe(first.body);
    const refused = await handler(event('q=cost', 'GET', '/search', { 'if-match': '"other"' }));
    expect(refused.statusCode).toBe(412);
    expect(JSON.parse(refused.body)).toEqual({ error: 'precondition_failed' });
    expect(refused.headers['cache-control']).toBe('no-store');
    expectOwnSecurityHeaders(refused);
    expect((await handler(event('q=cost', 'GET', '/search', { 'if-match': etag }))).statusCode).toBe(200);
    expect((await handler(event('q=cost&term=x'))).headers.etag).toBeUndefined();
  });

  it('keeps search.json across warm invocations and reads it again after a publish, with the new generation', async () => {
    const before = (await ask('q=cost')).body as SearchAnswer;
    wire.length = 0;
    for (const q of ['q=cost', 'q=kube', 'q=lens']) expect((await ask(q)).status).toBe(200);
    expect(wire.filter((r) => r.endsWith('/search.json'))).toEqual([]);
    expect(wire.filter((r) => r === `GET /${SITE}/snapshot.json`)).toHaveLength(3);

    await publishPlugins({ name: 'cost-radar', description: 'A new cost source' });
    for (const q of ['q=cost', 'q=kube', 'q=radar']) expect((await ask(q)).status).toBe(200);
    expect(wire.filter((r) => r.endsWith('/search.json'))).toEqual([`GET /${SITE}/search.json`]);

    const after = (await ask('q=cost')).body as SearchAnswer;
    expect(after.generation).toBeGreaterThan(before.generation);
    expect(after.generation).toBe((await published<SnapshotDocument>('snapshot.json')).generation);
    expect(after.results.map((r) => r.plugin.name)).toContain('cost-radar');
    expect(before.results.map((r) => r.plugin.name)).not.toContain('cost-radar');
  });
});

describe('when the rows of a page are large', () => {
  /** A synchronous Lambda invocation's response payload limit: past it a Function URL answers 502. */
  const LAMBDA_RESPONSE_LIMIT = 6 * 1024 * 1024;

  it('keeps each answer under the Lambda response limit, and pages on by next_offset', async () => {
    // Rows as large as a manifest lets them be (256 tags of 64 characters), written as a publish would:
    // search.json, then a snapshot listing its digest. Emoji are 4 bytes; a quote or backslash is escaped
    // once in the body and again in the function's JSON response.
    const plugins = Array.from({ length: 100 }, (_, i) => ({
      name: `large-${String(i).padStart(3, '0')}`,
      latest_version: '1.0.0',
      plugin_type: 'cost_source',
      providers: ['aws'],
      capabilities: ['actual_cost'],
      keywords: Array.from({ length: 256 }, (_, k) =>
        k % 2
          ? `${String(k).padStart(3, '0')}${'😀'.repeat(61)}`
          : `${String(k).padStart(4, '0')}${'"\\'.repeat(30)}`,
      ),
    }));
    const body = new TextEncoder().encode(JSON.stringify({ schema: 'plugindex/search/v1', plugins }));
    const { generation } = await published<SnapshotDocument>('snapshot.json');
    const snapshot = {
      generation: generation + 1,
      documents: { 'search.json': { sha256: sha256Hex(body), size: body.length } },
    };
    await s3.client.send(new PutObjectCommand({ Bucket: SITE, Key: 'search.json', Body: body }));
    await s3.client.send(
      new PutObjectCommand({ Bucket: SITE, Key: 'snapshot.json', Body: JSON.stringify(snapshot) }),
    );

    const names: string[] = [];
    let offset: number | null = 0;
    let pages = 0;
    while (offset !== null) {
      const { status, body: answer, result } = await ask(`limit=1000&offset=${offset}`);
      expect(status).toBe(200);
      expect(Buffer.byteLength(JSON.stringify(result))).toBeLessThanOrEqual(LAMBDA_RESPONSE_LIMIT);
      const page = answer as SearchAnswer;
      expect(page).toMatchObject({ generation: generation + 1, total: 100, offset });
      const rowBytes = page.results.reduce(
        (sum, r) => sum + Buffer.byteLength(JSON.stringify(JSON.stringify(r))),
        0,
      );
      expect(rowBytes).toBeLessThanOrEqual(SEARCH_PAGE_BYTES);
      const end = offset + page.results.length;
      expect(page.next_offset).toBe(end < 100 ? end : null);
      names.push(...page.results.map((r) => r.plugin.name));
      offset = page.next_offset;
      pages++;
    }
    expect(pages).toBeGreaterThan(1);
    expect(names).toEqual(plugins.map((p) => p.name));
  }, 60_000);
});
