/**
 * The HTTP proxy on 127.0.0.1 in front of the local S3 server that the S3 mocks answering some requests
 * themselves are made of (s3-gate.ts, s3-object-errors.ts): each request is first offered to the mock, and
 * one it does not answer is forwarded as it came (so its signature still holds).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { LocalS3 } from './s3.ts';

export interface S3Proxy {
  readonly endpoint: string;
  close(): Promise<void>;
}

/**
 * A proxy in front of `s3`: `answer` answers a request itself and says so (true), or leaves it untouched
 * (false) to have it forwarded; a request it fails on is dropped.
 */
export async function startS3Proxy(
  s3: LocalS3,
  answer: (request: http.IncomingMessage, response: http.ServerResponse) => boolean | Promise<boolean>,
): Promise<S3Proxy> {
  const upstream = new URL(s3.endpoint);
  const server = http.createServer((request, response) => {
    void (async () => {
      if (await answer(request, response)) return;
      const forwarded = http.request(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: request.method,
          path: request.url,
          headers: request.headers,
        },
        (reply) => {
          response.writeHead(reply.statusCode ?? 502, reply.headers);
          reply.pipe(response);
        },
      );
      forwarded.on('error', () => response.destroy());
      request.pipe(forwarded);
    })().catch(() => response.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
