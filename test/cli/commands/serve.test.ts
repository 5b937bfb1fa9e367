/**
 * `plugindex serve`'s options for the server's connection slots, through the command itself: what it
 * cannot read is refused before anything listens, and what it reads reaches the server, which judges it.
 * What the slots do with them is tested over real sockets in test/cli/local/server.test.ts.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initRegistry } from '../../../cli/local/registry.ts';
import { startService } from '../../../cli/local/service.ts';
import { plugindex } from '../../support/cli.ts';

const BIN = path.resolve(import.meta.dirname, '../../../cli/bin.mjs');

let work: string;
let dir: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'plugindex-serve-options-'));
  dir = path.join(work, 'registry');
  await initRegistry(dir, { name: 'r', url: 'http://127.0.0.1:8080' });
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('when the connection options are not whole numbers', () => {
  it.each([
    ['--max-connections', 'many'],
    ['--max-connections', '3e2'],
    ['--max-connections-per-address', '1.5'],
    ['--max-connections-per-address', ''],
  ])('refuses %s %j as a usage error, naming the option', async (option, value) => {
    const { code, stderr } = await plugindex('serve', '--registry', dir, '--port', '0', option, value);

    expect(code).toBe(2);
    expect(stderr).toContain(`${option} must be a whole number`);
  });
});

describe('when the options reach the server', () => {
  it('refuses a share larger than the cap it was given, naming both options', async () => {
    const { code, stderr } = await plugindex(
      'serve',
      '--registry',
      dir,
      '--port',
      '0',
      '--max-connections',
      '2',
      '--max-connections-per-address',
      '3',
    );

    expect(code).toBe(2);
    expect(stderr).toContain('--max-connections-per-address');
    expect(stderr).toContain('(2)');
  });

  it('refuses a cap of 0', async () => {
    const { code, stderr } = await plugindex(
      'serve',
      '--registry',
      dir,
      '--port',
      '0',
      '--max-connections',
      '0',
    );

    expect(code).toBe(2);
    expect(stderr).toContain('(--max-connections) must be a whole number of at least 1, not 0');
  });
});

describe('when --host names no address of this machine', () => {
  // Node's own error went out with its stack: "Error: listen EADDRNOTAVAIL: address not available
  // 192.0.2.1:0 at Server.setupListenHandle ...", and "getaddrinfo ENOTFOUND" for a name, no code.
  it.each([
    ['an address of another machine', '192.0.2.1'],
    ['a name that does not resolve', 'no-such-host.invalid'],
  ])('refuses %s with HOST_UNAVAILABLE naming it, no stack trace (exit 1)', async (_, host) => {
    const { code, stderr } = await plugindex('serve', '--registry', dir, '--port', '0', '--host', host);

    expect(code).toBe(1);
    expect(stderr).toContain(`HOST_UNAVAILABLE: --host ${host} is no address this machine can listen on`);
    expect(stderr).toContain('127.0.0.1');
    expect(stderr).not.toMatch(/^\s+at /m);
  });
});

describe('when --host is written as a URL writes it, or left empty', () => {
  // `serve` prints `http://[::1]:PORT/` for --host ::1; that form given back was refused HOST_UNAVAILABLE,
  // "no address this machine can listen on", of this machine's own loopback address.
  it('listens on a bracketed IPv6 literal as on the address it holds', async () => {
    const service = await startService({ dir, port: 0, host: '[::1]', watch: false, log: () => {} });
    try {
      expect(service.url).toMatch(/^http:\/\/\[::1\]:\d+$/);
      expect((await fetch(`${service.url}/index.json`)).status).toBe(200);
    } finally {
      await service.close();
    }
  });

  // Node listens on every interface for an empty host: `--host "$HOST"` with HOST unset served the
  // registry to the network, where the default is this machine alone.
  it('refuses an empty --host as a usage error (exit 2), listening on nothing', async () => {
    const { code, stderr } = await plugindex('serve', '--registry', dir, '--port', '0', '--host', '');

    expect(code).toBe(2);
    expect(stderr).toContain('--host');
    expect(stderr).toContain('127.0.0.1');
  });

  // A link-local address without its zone (fe80::1, not fe80::1%eth0): `listen EINVAL`, Node's stack.
  it('refuses an address no interface can take as HOST_UNAVAILABLE (exit 1), no stack trace', async () => {
    const { code, stderr } = await plugindex('serve', '--registry', dir, '--port', '0', '--host', 'fe80::1');

    expect(code).toBe(1);
    expect(stderr).toContain('HOST_UNAVAILABLE: --host fe80::1 is no address this machine can listen on');
    expect(stderr).not.toMatch(/^\s+at /m);
  });
});

/** A port nothing listens on just now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
    probe.on('error', reject);
  });
}

/** A connection to `port`, once something listens there. */
async function connectWhenListening(port: number): Promise<net.Socket> {
  for (;;) {
    const socket = await new Promise<net.Socket | undefined>((resolve) => {
      const attempt = net.connect(port, '127.0.0.1', () => resolve(attempt));
      attempt.once('error', () => resolve(undefined));
    });
    if (socket) return socket;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('when the server turns a client away', () => {
  it('tells the operator on stderr', async () => {
    const port = await freePort();
    // Served at its own URL: stderr holds what the server says of its clients alone.
    const here = path.join(work, 'turning-away');
    await initRegistry(here, { name: 'r', url: `http://127.0.0.1:${port}` });
    const interrupts = process.listeners('SIGINT').length;
    const serving = plugindex(
      'serve',
      '--registry',
      here,
      '--port',
      String(port),
      '--no-watch',
      '--max-connections',
      '1',
      '--max-connections-per-address',
      '0',
    );
    const sockets: net.Socket[] = [];
    try {
      const idle = await connectWhenListening(port);
      sockets.push(idle);
      // The only slot is the idle connection's: the next takes its place.
      const next = net.connect(port, '127.0.0.1');
      sockets.push(next);
      next.on('error', () => undefined);
      await new Promise((resolve) => idle.once('close', resolve));
    } finally {
      for (const socket of sockets) socket.destroy();
      // Ctrl-C, as the command waits for it (a signal sent to the process would reach the test runner's too).
      await expect.poll(() => process.listeners('SIGINT').length).toBe(interrupts + 1);
      // The raw listener is the once-wrapper, which removes itself; the SIGTERM one is removed by hand.
      const interrupt = process.rawListeners('SIGINT').at(-1) as () => void;
      const terminate = process.listeners('SIGTERM').at(-1) as () => void;
      process.removeListener('SIGTERM', terminate);
      interrupt();
    }
    const { code, stdout, stderr } = await serving;

    expect(code).toBe(0);
    expect(process.listeners('SIGINT')).toHaveLength(interrupts);
    expect(stderr).toBe(
      '[connections] closed an idle connection from 127.0.0.1 to make room for a new one\n',
    );
    expect(stdout).not.toContain('[connections]');
  });
});

describe("when the port served is not the one the registry's URL names", () => {
  /** Starts the built `serve` on `registry` at a free port, resolves with its port and stderr once it serves. */
  async function serveAt(registry: string, at?: number): Promise<{ port: number; stderr: string }> {
    const port = at ?? (await freePort());
    const child = spawn(process.execPath, [
      BIN,
      'serve',
      '--registry',
      registry,
      '--port',
      String(port),
      '--no-watch',
    ]);
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (chunk: Buffer) => {
          if (chunk.toString().includes('serving')) resolve();
        });
        child.once('exit', (code) => reject(new Error(`serve exited with ${code}: ${stderr}`)));
      });
      // What it says at its start is written before or just after the line waited for.
      await new Promise((resolve) => setTimeout(resolve, 300));
      return { port, stderr };
    } finally {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    }
  }

  it('warns that its documents link elsewhere, and how to serve it at its URL', async () => {
    // `init` without --url names 127.0.0.1:8080; served on another port, every link and the snapshot named
    // 8080 in silence, and `verify --url` of where it was served refused it (SNAPSHOT_OTHER_REGISTRY).
    const { port, stderr } = await serveAt(dir);

    expect(stderr).toContain(
      `warning: the registry's URL is http://127.0.0.1:8080 (${path.join(dir, 'plugindex.json')}), but it is served at http://127.0.0.1:${port}`,
    );
    expect(stderr).toContain(
      `serve it with --port 8080, or set "url" there and run plugindex rebuild --registry ${dir}`,
    );
  });

  it("says nothing when its URL is this port's, or a public one a proxy serves", async () => {
    const port = await freePort();
    const local = path.join(work, 'served-at-its-url');
    await initRegistry(local, { name: 'r', url: `http://127.0.0.1:${port}` });
    const proxied = path.join(work, 'behind-a-proxy');
    await initRegistry(proxied, { name: 'r', url: 'https://plugins.example.org' });

    expect((await serveAt(proxied)).stderr).not.toContain('warning');
    expect((await serveAt(local, port)).stderr).not.toContain('warning');
  });
});
