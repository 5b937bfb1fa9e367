/**
 * S3's answer to a request lost on the way back (a mock of the network: the connection reset once S3 has
 * done the request), which s3rver alone never gives: an HTTP proxy on 127.0.0.1 in front of an S3 endpoint
 * (the local server, or the gate in front of it, s3-gate.ts, which checks conditional writes as S3 does)
 * that forwards every request as it came (so its signature still holds) and, for the requests it is told of,
 * lets the endpoint do them whole, then resets the client's connection instead of passing the answer on. The
 * SDK then sends the request again, as it does after any network failure: a conditional write so sent meets
 * its own first attempt's object (412 Precondition Failed), as it would on S3.
 */
import http from 'node:http';
import type { LocalS3 } from './s3.ts';
import { startS3Proxy } from './s3-proxy.ts';

export interface S3LostAnswers {
  readonly endpoint: string;
  /**
   * `<METHOD> /<bucket>/<key>[?<names>]` (the path as sent, then the names of its query's parameters, sorted,
   * the SDK's `x-id` aside: `POST /b/k?uploadId` completes a multipart upload, `POST /b/k?uploads` creates
   * one) of the requests whose next answer to lose, each once (set by a test; an entry is removed as its
   * answer is lost); one ending in `*` stands for every request whose line starts with what precedes it (a
   * key a command names at random).
   */
  readonly lose: Set<string>;
  /** Every request seen, as its line (`lose`). */
  readonly seen: string[];
  close(): Promise<void>;
}

/** A proxy in front of `endpoint` (`s3`'s own unless given) that loses the answers it is told to. */
export async function startS3LostAnswers(s3: LocalS3, endpoint = s3.endpoint): Promise<S3LostAnswers> {
  const lose = new Set<string>();
  const seen: string[] = [];
  const upstream = new URL(endpoint);
  const proxy = await startS3Proxy({ ...s3, endpoint }, (request, response) => {
    const url = new URL(request.url ?? '/', 'http://lost');
    // The names of the query's parameters tell a multipart upload's steps apart (the SDK's `x-id` aside).
    const names = [...new Set(url.searchParams.keys())].filter((name) => name !== 'x-id').sort();
    const line = `${request.method} ${url.pathname}${names.length > 0 ? `?${names.join('&')}` : ''}`;
    seen.push(line);
    const entry = [...lose].find((e) => (e.endsWith('*') ? line.startsWith(e.slice(0, -1)) : e === line));
    if (entry === undefined) return false;
    lose.delete(entry);
    const forwarded = http.request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: request.method,
        path: request.url,
        headers: request.headers,
      },
      (reply) => {
        // The request is done once the endpoint has answered it whole: only then is the answer lost.
        reply.resume();
        reply.on('end', () => response.destroy());
      },
    );
    forwarded.on('error', () => response.destroy());
    request.pipe(forwarded);
    return true;
  });
  return { ...proxy, lose, seen };
}
