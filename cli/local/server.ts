/**
 * The local HTTP server: the published tree, read through the Store (never the filesystem directly, so no
 * path outside the registry can be served), with the spec's endpoints mapped onto the static files:
 *   /plugins                             -> index.json (index.html for browsers)
 *   /plugins/{name}                      -> plugins/{name}/index.json, or index.html by Accept
 *   /plugins/{name}/{version}/manifest   -> plugins/{name}/{version}/manifest.json
 *   /search?q=...                        -> search.json (clients filter it themselves)
 * Responses carry the stored Content-Type and Cache-Control, an ETag, and answer If-None-Match with 304.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { isSafeKey, type Store } from '../../index-builder/store.ts';

const HTML_CSP =
  "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

// biome-ignore lint/suspicious/noControlCharactersInRegex: NUL and other control characters are refused outright
const UNSAFE_CHARACTERS = /[\u0000-\u001f\u007f]/;

/** q-value of the best match for `type` in an Accept header (0 when absent). */
function quality(accept: string, type: string): number {
  let best = 0;
  const [major] = type.split('/');
  for (const part of accept.split(',')) {
    const [range = '', ...params] = part
      .trim()
      .split(';')
      .map((s) => s.trim());
    const q = Number(params.find((p) => p.startsWith('q='))?.slice(2) ?? '1');
    const matches = range === type ? 3 : range === `${major}/*` ? 2 : range === '*/*' ? 1 : 0;
    if (matches > 0 && Number.isFinite(q)) best = Math.max(best, q - (3 - matches) * 0.0001);
  }
  return best;
}

/** Browsers ask for HTML first; API clients, curl (`*\/*`) and no Accept at all get JSON. */
export function prefersHtml(accept: string | undefined): boolean {
  if (!accept) return false;
  return quality(accept, 'text/html') > quality(accept, 'application/json');
}

interface Route {
  readonly key: string;
  readonly negotiated: boolean;
}

const NAME = '[a-z0-9]+(?:-[a-z0-9]+)*';

/** Maps a decoded request path to a store key, or undefined when nothing can match. */
export function routeFor(pathname: string, accept: string | undefined): Route | undefined {
  const html = prefersHtml(accept);
  if (pathname === '/') return { key: 'index.html', negotiated: false };
  if (pathname === '/plugins' || pathname === '/plugins/')
    return { key: html ? 'index.html' : 'index.json', negotiated: true };
  if (pathname === '/search') return { key: 'search.json', negotiated: false };
  const plugin = new RegExp(`^/plugins/(${NAME})/?$`).exec(pathname);
  if (plugin) return { key: `plugins/${plugin[1]}/${html ? 'index.html' : 'index.json'}`, negotiated: true };
  const manifest = new RegExp(`^/plugins/(${NAME})/([^/]+)/manifest$`).exec(pathname);
  if (manifest) return { key: `plugins/${manifest[1]}/${manifest[2]}/manifest.json`, negotiated: false };
  const key = pathname.endsWith('/') ? `${pathname.slice(1)}index.html` : pathname.slice(1);
  return isSafeKey(key) ? { key, negotiated: false } : undefined;
}

function etagMatches(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  const bare = etag.replace(/^W\//, '');
  return header.split(',').some((candidate) => candidate.trim().replace(/^W\//, '') === bare);
}

function sendJson(res: http.ServerResponse, status: number, body: object, head: boolean): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'x-content-type-options': 'nosniff',
    'cache-control': 'no-store',
  });
  res.end(head ? undefined : text);
}

export function createRegistryServer(options: {
  readonly site: Store;
  readonly log?: (line: string) => void;
}): http.Server {
  return http.createServer((req, res) => {
    void (async () => {
      const head = req.method === 'HEAD';
      if (req.method !== 'GET' && !head) {
        res.writeHead(405, { allow: 'GET, HEAD', 'content-length': 0 });
        res.end();
        return;
      }
      const raw = (req.url ?? '/').split('?')[0] ?? '/';
      let pathname: string;
      try {
        pathname = decodeURIComponent(raw);
      } catch {
        sendJson(res, 400, { error: 'bad_request', reason: 'malformed percent-encoding' }, head);
        return;
      }
      if (
        !pathname.startsWith('/') ||
        pathname.includes('\\') ||
        UNSAFE_CHARACTERS.test(pathname) ||
        pathname.split('/').includes('..')
      ) {
        sendJson(res, 400, { error: 'bad_request', reason: 'unsafe path' }, head);
        return;
      }
      const route = routeFor(pathname, req.headers.accept);
      const object = route ? await options.site.get(route.key) : undefined;
      if (!route || !object) {
        sendJson(res, 404, { error: 'not_found', path: pathname }, head);
        return;
      }
      const headers: http.OutgoingHttpHeaders = {
        'content-type': object.contentType,
        'cache-control': object.cacheControl,
        etag: object.etag,
        'last-modified': object.lastModified.toUTCString(),
        'x-content-type-options': 'nosniff',
      };
      if (route.negotiated) headers.vary = 'Accept';
      if (object.contentType.startsWith('text/html')) headers['content-security-policy'] = HTML_CSP;
      else headers['access-control-allow-origin'] = '*';
      if (etagMatches(req.headers['if-none-match'], object.etag)) {
        res.writeHead(304, headers);
        res.end();
        return;
      }
      headers['content-length'] = object.size;
      res.writeHead(200, headers);
      res.end(head ? undefined : object.body);
      options.log?.(`${req.method} ${raw} -> ${route.key}`);
    })().catch((error: unknown) => {
      options.log?.(`error serving ${req.url}: ${(error as Error).message}`);
      if (!res.headersSent) sendJson(res, 500, { error: 'internal' }, req.method === 'HEAD');
      else res.destroy();
    });
  });
}

/** Listens on `host:port` (0 picks a free port) and resolves with the base URL. */
export function listenRegistryServer(
  server: http.Server,
  port: number,
  host = '127.0.0.1',
): Promise<{ url: string; close(): Promise<void> }> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const address = server.address() as AddressInfo;
      const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      resolve({
        url: `http://${shownHost}:${address.port}`,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
