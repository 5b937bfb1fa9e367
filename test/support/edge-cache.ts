/**
 * A CDN edge in front of a registry server, on 127.0.0.1, caching as the AWS deployment's CloudFront does
 * for mutable documents (infra/constructs/distribution.ts): a 200 is kept under its path, its `v` query
 * parameter (no other) and the request's Accept-Encoding, and answered from there (a 304 when If-None-Match
 * names its ETag) until `flush`, the publish's invalidation; a 404 too (CloudFront keeps an error for its
 * error caching TTL, 10 s unless the distribution says otherwise, which it does not: longer than a test
 * runs); a miss asks the origin for the path with `v` alone, which a registry ignores. Request headers key nothing (the cache policy names none), so a
 * viewer's `Cache-Control: no-cache` changes nothing here.
 * Bodies pass as the origin sent them (compressed or not).
 */
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

interface Kept {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

export interface EdgeCache {
  /** `http://127.0.0.1:PORT`, no trailing slash. */
  readonly url: string;
  /** Each request as `<path>[?v=<v>] hit|miss`, in order. */
  readonly log: string[];
  /** Drops every entry, as a CloudFront invalidation of `/*` does once it is through. */
  flush(): void;
  close(): Promise<void>;
}

export async function startEdgeCache(origin: string): Promise<EdgeCache> {
  const entries = new Map<string, Kept>();
  const log: string[] = [];
  const server = http.createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://edge');
    const v = url.searchParams.get('v');
    const encoding = request.headers['accept-encoding'] ?? '';
    const key = `${url.pathname}\0${v ?? ''}\0${encoding}`;
    const shown = `${url.pathname}${v === null ? '' : `?v=${v}`}`;
    const answer = (kept: Kept) => {
      const match = request.headers['if-none-match'];
      if (match !== undefined && match === kept.headers.etag) {
        response.writeHead(304, { etag: kept.headers.etag }).end();
        return;
      }
      response.writeHead(kept.status, kept.headers).end(kept.body);
    };
    const kept = entries.get(key);
    if (kept) {
      log.push(`${shown} hit`);
      answer(kept);
      return;
    }
    log.push(`${shown} miss`);
    const forwarded = new URL(url.pathname, origin);
    if (v !== null) forwarded.searchParams.set('v', v);
    const headers: Record<string, string> = encoding === '' ? {} : { 'accept-encoding': encoding };
    http
      .get(forwarded, { headers }, (upstream) => {
        const chunks: Buffer[] = [];
        upstream.on('data', (chunk: Buffer) => chunks.push(chunk));
        upstream.on('end', () => {
          // Hop-by-hop headers are the connection's, not the object's.
          const { connection: _c, 'keep-alive': _k, 'transfer-encoding': _t, ...headers } = upstream.headers;
          const fetched = { status: upstream.statusCode ?? 502, headers, body: Buffer.concat(chunks) };
          if (fetched.status === 200 || fetched.status === 404) entries.set(key, fetched);
          answer(fetched);
        });
      })
      .on('error', () => response.writeHead(502).end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    log,
    flush: () => entries.clear(),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
