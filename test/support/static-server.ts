/**
 * A plain static web server for tests, on 127.0.0.1: the files of one folder by path, 404 for anything
 * else (no folder listings, no index pages), as a team's web server for a plugin folder would be. It
 * records each request's path and headers.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

export interface StaticServer {
  /** `http://127.0.0.1:PORT`, no trailing slash. */
  readonly url: string;
  readonly requests: { readonly path: string; readonly headers: IncomingHttpHeaders }[];
  close(): Promise<void>;
}

export async function startStaticServer(root: string): Promise<StaticServer> {
  const requests: { path: string; headers: IncomingHttpHeaders }[] = [];
  const server = http.createServer(async (request, response) => {
    const at = new URL(request.url ?? '/', 'http://127.0.0.1').pathname;
    requests.push({ path: at, headers: request.headers });
    const file = path.join(root, decodeURIComponent(at));
    const info = file.startsWith(`${root}${path.sep}`) ? await stat(file).catch(() => undefined) : undefined;
    if (request.method !== 'GET' || !info?.isFile()) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { 'content-length': info.size, 'content-type': 'application/octet-stream' });
    createReadStream(file).pipe(response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
