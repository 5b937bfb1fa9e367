/**
 * The transports a test stands up on 127.0.0.1 beside plain HTTP: a private CA and a server certificate
 * made with the openssl CLI (as an operator would make them, so nothing here trusts a test-only code path),
 * and an HTTP proxy that records what passed through it (CONNECT tunnels for https:, absolute-URI requests
 * for http:), as a corporate proxy would carry them.
 */
import type { Buffer } from 'node:buffer';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo, isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCa {
  /** The CA certificate, PEM. */
  readonly caPem: string;
  /** A file holding `caPem` (for `--ca FILE` or NODE_EXTRA_CA_CERTS). */
  readonly caFile: string;
  /**
   * A key and certificate for 127.0.0.1, localhost and the `names` (host names or IP addresses) asked for, signed by the CA:
   * `https.createServer(ca.tls, …)`.
   */
  readonly tls: { readonly key: string; readonly cert: string };
  /** Deletes the folder the files were made in. */
  remove(): void;
}

/**
 * A fresh CA and a server certificate it signed, valid for two days, in a temporary folder.
 * @example const ca = makeTestCa('fetcher'); https.createServer(ca.tls, handler); ca.remove();
 */
export function makeTestCa(label: string, options: { readonly names?: readonly string[] } = {}): TestCa {
  const dir = mkdtempSync(join(tmpdir(), `plugindex-ca-${label}-`));
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(
    'req',
    '-x509',
    ...ec,
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    `/CN=${label} test CA`,
  );
  openssl('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
  // A leaf with the IP in subjectAltName, as Node checks it (the CN alone is not enough).
  writeFileSync(
    join(dir, 'server.ext'),
    `subjectAltName=${['IP:127.0.0.1', 'DNS:localhost', ...(options.names ?? []).map((name) => `${isIP(name) === 0 ? 'DNS' : 'IP'}:${name}`)].join(',')}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`,
  );
  openssl(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'server.pem',
    '-days',
    '2',
    '-extfile',
    'server.ext',
  );
  const read = (name: string) => readFileSync(join(dir, name), 'utf8');
  return {
    caPem: read('ca.pem'),
    caFile: join(dir, 'ca.pem'),
    tls: { key: read('server.key'), cert: read('server.pem') },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface TestProxy {
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  /** The `host:port` of each CONNECT tunnel opened. */
  readonly tunnels: string[];
  /** The absolute URL of each plain request forwarded. */
  readonly forwarded: string[];
  close(): Promise<void>;
}

/**
 * An HTTP proxy on 127.0.0.1: CONNECT tunnels (for https:) and absolute-URI requests (for http:), each recorded.
 * @example const proxy = await startProxy(); createHttpFetcher({ env: { HTTPS_PROXY: proxy.url } });
 */
export async function startProxy(
  options: {
    /**
     * Where a CONNECT to `host:port` goes instead (a host elsewhere stood in for on 127.0.0.1); by default
     * where it asks to go.
     */
    readonly route?: (hostPort: string) => string;
  } = {},
): Promise<TestProxy> {
  const tunnels: string[] = [];
  const forwarded: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = http.createServer((request, response) => {
    forwarded.push(request.url ?? '');
    const upstream = http.request(
      new URL(request.url ?? ''),
      { method: request.method, headers: request.headers },
      (answer) => {
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(response);
      },
    );
    upstream.on('error', () => response.destroy());
    request.pipe(upstream);
  });
  server.on('connect', (request: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    tunnels.push(request.url ?? '');
    const target = options.route ? options.route(request.url ?? '') : (request.url ?? '');
    const [host, port] = target.split(':');
    const upstream = net.connect(Number(port), host ?? '', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    tunnels,
    forwarded,
    close: async () => {
      server.closeAllConnections();
      // Tunnels are raw sockets the http server no longer tracks once CONNECT handed them over.
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
