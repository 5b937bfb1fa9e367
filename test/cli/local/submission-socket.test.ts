/**
 * A local submitter hands its upload to the server running on the registry (`plugindex serve`), over the
 * registry's socket: a real server (startService, as `npm start` runs it), real Unix sockets, the command
 * run in-process. Where a test needs a socket no plugindex server answers at, it says so: a process killed
 * while listening (a stale socket file), a stand-in that takes the request and hangs up.
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmod,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliError } from '../../../cli/errors.ts';
import { initRegistry } from '../../../cli/local/registry.ts';
import { type RunningService, startService } from '../../../cli/local/service.ts';
import { openSite } from '../../../cli/local/site.ts';
import {
  connectToService,
  listenForSubmissions,
  requestOutcome,
  SERVICE_SOCKET_NAME,
  type SubmissionService,
  servicePath,
  stagingFolderName,
} from '../../../cli/local/submission-socket.ts';
import {
  CONTENT_ENCODINGS,
  type ContentEncoding,
  encodedVariantKey,
  INDEX_DOCUMENTS,
} from '../../../index-builder/layout.ts';
import { plugindex } from '../../support/cli.ts';
import { deadPid } from '../../support/dead-pid.ts';
import { makeBundle, sha256, validManifest } from '../../support/fixtures.ts';

let work: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'plugindex-socket-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function newRegistry(name: string): Promise<string> {
  const dir = path.join(work, name);
  await initRegistry(dir, { name, url: 'http://127.0.0.1:9' });
  return dir;
}

async function bundleFile(name: string, manifest = validManifest({ name })): Promise<string> {
  const file = path.join(work, `${name}-${Math.random().toString(16).slice(2)}.tgz`);
  await writeFile(file, await makeBundle({ manifest }));
  return file;
}

async function incoming(dir: string): Promise<string[]> {
  return (await readdir(path.join(dir, 'incoming'))).filter((name) => !name.startsWith('.'));
}

/** Sends `line` to the registry's socket as it is and returns the answer. */
async function rawRequest(dir: string, line: string): Promise<unknown> {
  const connection = net.connect(servicePath(dir) as string);
  let answer = '';
  connection.setEncoding('utf8');
  connection.on('data', (chunk: string) => {
    answer += chunk;
  });
  await new Promise<void>((resolve, reject) => {
    connection.once('close', () => resolve());
    connection.once('error', reject);
    connection.write(line);
  });
  return JSON.parse(answer);
}

/** A process that listens on `socket` and is killed (SIGKILL): the socket file stays, nothing answers it. */
async function leaveStaleSocket(socket: string): Promise<void> {
  const child = spawn(
    process.execPath,
    ['-e', `require('node:net').createServer().listen(${JSON.stringify(socket)}, () => console.log('up'))`],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  child.kill('SIGKILL');
  await new Promise<void>((resolve) => child.once('exit', () => resolve()));
  expect((await stat(socket)).isSocket()).toBe(true);
}

/**
 * A new registry named `name` with a server running on it (as `npm start` runs it) for the enclosing
 * describe block; `log` collects what the server logs.
 */
function servedRegistry(name: string, options: { readonly compressionThresholdBytes?: number } = {}) {
  const served = { dir: '', log: [] as string[] };
  let service: RunningService;
  beforeAll(async () => {
    served.dir = await newRegistry(name);
    service = await startService({
      dir: served.dir,
      port: 0,
      watch: true,
      log: (line) => served.log.push(line),
      ...options,
    });
  });
  afterAll(async () => {
    await service.close();
  });
  return served;
}

describe('when a server runs on the registry', () => {
  const served = servedRegistry('served');
  const { log } = served;
  let dir: string;
  beforeAll(() => {
    dir = served.dir;
  });

  it('publish hands the bundle over: the server publishes it, index documents and all, before it answers', async () => {
    const result = await plugindex('publish', await bundleFile('handed-over'), '--registry', dir);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('accepted handed-over@1.0.0');
    // The server's own log line: it was published there, not by the command.
    expect(log).toContain('[publish] accepted handed-over@1.0.0');
    // Not deferred: the index documents list it, and the snapshot binds them, when the command returns.
    const index = await readFile(path.join(dir, 'public', 'index.json'));
    const names = (JSON.parse(index.toString()) as { plugins: { name: string }[] }).plugins.map(
      (p) => p.name,
    );
    expect(names).toContain('handed-over');
    const snapshot = JSON.parse(await readFile(path.join(dir, 'public', 'snapshot.json'), 'utf8')) as {
      documents: Record<string, { sha256: string }>;
    };
    expect(snapshot.documents['index.json']?.sha256).toBe(sha256(index));
    // Recorded as every submission is, and out of incoming/.
    const id = /submission (\S+),/.exec(result.stdout)?.[1] as string;
    const status = JSON.parse(await readFile(path.join(dir, 'status', `${id}.json`), 'utf8')) as {
      status: string;
    };
    expect(status.status).toBe('accepted');
    expect(await incoming(dir)).toEqual([]);
  });

  it('what another process publishes between two handed-over publishes is in the server’s next index', async () => {
    // The server keeps its stores, and the catalog bins it read, across batches: a batch of another
    // process (`plugindex process`, its own stores) changes the catalog under them.
    expect((await plugindex('publish', await bundleFile('kept-one'), '--registry', dir)).code).toBe(0);
    await writeFile(
      path.join(dir, 'incoming', 'elsewhere.tgz'),
      await makeBundle({ manifest: validManifest({ name: 'elsewhere' }) }),
    );
    const other = await plugindex('process', '--registry', dir);
    expect(other.stdout).toContain('accepted elsewhere@1.0.0');
    expect(log.some((line) => line.includes('elsewhere'))).toBe(false);
    expect((await plugindex('publish', await bundleFile('kept-two'), '--registry', dir)).code).toBe(0);
    const index = JSON.parse(await readFile(path.join(dir, 'public', 'index.json'), 'utf8')) as {
      plugins: { name: string }[];
    };
    expect(index.plugins.map((p) => p.name)).toEqual(
      expect.arrayContaining(['kept-one', 'elsewhere', 'kept-two']),
    );
    const search = JSON.parse(await readFile(path.join(dir, 'public', 'search.json'), 'utf8')) as {
      plugins: { name: string }[];
    };
    expect(search.plugins.map((p) => p.name)).toEqual(
      expect.arrayContaining(['kept-one', 'elsewhere', 'kept-two']),
    );
  });

  it('a bundle over 8 MiB is streamed to incoming/ and handed over like any other', async () => {
    // Random bytes do not compress: the bundle is as large as its artifact.
    const body = new Uint8Array(9 << 20);
    for (let i = 0; i < body.length; i += 65536) body.set(randomBytes(Math.min(65536, body.length - i)), i);
    const file = path.join(work, 'large.tgz');
    const bundle = await makeBundle({
      manifest: validManifest({ name: 'large-one' }),
      artifacts: [{ os: 'linux', arch: 'amd64', name: 'large-one', body }],
    });
    expect(bundle.byteLength).toBeGreaterThan(8 << 20);
    await writeFile(file, bundle);
    const result = await plugindex('publish', file, '--registry', dir);
    expect(result.code).toBe(0);
    expect(log).toContain('[publish] accepted large-one@1.0.0');
    const hosted = await readFile(
      path.join(dir, 'public', 'plugins', 'large-one', '1.0.0', 'artifacts', 'linux-amd64', 'large-one'),
    );
    expect(sha256(hosted)).toBe(sha256(body));
  });

  it('a rejected bundle handed over exits 1 with the problems the server found', async () => {
    const bad = validManifest({ name: 'handed-bad', version: 'not-a-version' });
    const result = await plugindex('publish', await bundleFile('handed-bad', bad), '--registry', dir);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('MANIFEST_PATTERN_MISMATCH /version');
    const line = log.find((l) => l.startsWith('[publish] rejected') && l.includes('handed-bad'));
    expect(line).toContain('MANIFEST_PATTERN_MISMATCH');
    expect(await incoming(dir)).toEqual([]);
    const rejected = await readdir(path.join(dir, 'rejected'));
    expect(rejected.some((name) => name.includes('handed-bad'))).toBe(true);
  });

  it('a second server on the same registry leaves the submissions to the first', async () => {
    const second: string[] = [];
    const other = await startService({ dir, port: 0, watch: true, log: (line) => second.push(line) });
    try {
      expect(second).toContain(
        `not taking submissions over a socket: another process takes them at ${path.join(dir, SERVICE_SOCKET_NAME)}`,
      );
      const result = await plugindex('publish', await bundleFile('first-server'), '--registry', dir);
      expect(result.code).toBe(0);
      expect(log).toContain('[publish] accepted first-server@1.0.0');
      expect(second.some((line) => line.includes('first-server'))).toBe(false);
    } finally {
      await other.close();
    }
    // Closing the second did not take the first's socket away.
    expect((await stat(path.join(dir, SERVICE_SOCKET_NAME))).isSocket()).toBe(true);
  });

  it.each([
    [
      'a key outside incoming/',
      '{"key":"public/index.json","sha256":"%s"}\n',
      'must be a key under incoming/',
    ],
    [
      'a key below a folder of incoming/',
      '{"key":"incoming/a/b.tgz","sha256":"%s"}\n',
      'directly under incoming/',
    ],
    ['a key with ..', '{"key":"incoming/..","sha256":"%s"}\n', 'directly under incoming/'],
    ['a digest that is not one', '{"key":"incoming/x.tgz","sha256":"abc"}\n', '"sha256" must be 64'],
    ['a line that is not JSON', 'publish this\n', 'one line of JSON'],
    ['a line too long', `${'x'.repeat(5000)}\n`, 'one line of at most 4096 bytes'],
  ])('refuses %s (BAD_REQUEST), and the registry is unchanged', async (_, template, why) => {
    const before = await readFile(path.join(dir, 'public', 'snapshot.json'), 'utf8');
    const answer = (await rawRequest(dir, template.replace('%s', 'a'.repeat(64)))) as {
      error?: { code: string; message: string };
    };
    expect(answer.error?.code).toBe('BAD_REQUEST');
    expect(answer.error?.message).toContain(why);
    expect(await readFile(path.join(dir, 'public', 'snapshot.json'), 'utf8')).toBe(before);
  });

  it('answers with the outcome the watcher recorded when its batch took the upload first', async () => {
    // The upload is put as a submitter puts it, then picked up by the watcher's own batch before the
    // request comes: the server finds it gone from incoming/ and answers with its recorded outcome.
    const bundle = await makeBundle({ manifest: validManifest({ name: 'watcher-first' }) });
    const key = 'incoming/watcher-first.tgz';
    await writeFile(path.join(dir, key), bundle);
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && !log.some((line) => line.includes('accepted watcher-first@1.0.0')))
      await new Promise((resolve) => setTimeout(resolve, 50));
    const answer = (await rawRequest(dir, `${JSON.stringify({ key, sha256: sha256(bundle) })}\n`)) as {
      outcome?: { status: string; plugin: string };
    };
    expect(answer.outcome).toMatchObject({ status: 'accepted', plugin: 'watcher-first' });
  });
});

describe('when a handed-over publish has index documents over the compression threshold', () => {
  const served = servedRegistry('compressed', { compressionThresholdBytes: 100 });
  const { log } = served;
  let dir: string;
  beforeAll(() => {
    dir = served.dir;
  });

  const decode: Record<ContentEncoding, (bytes: Buffer) => Buffer> = {
    br: brotliDecompressSync,
    gzip: gunzipSync,
  };

  /** How many variants are there; each one there must be its document's bytes, encoded. */
  async function variantsThere(): Promise<number> {
    let there = 0;
    for (const key of INDEX_DOCUMENTS) {
      const document = await readFile(path.join(dir, 'public', key));
      for (const encoding of CONTENT_ENCODINGS) {
        const variant = await readFile(path.join(dir, 'public', encodedVariantKey(key, encoding))).catch(
          () => undefined,
        );
        if (!variant) continue;
        expect(Buffer.compare(decode[encoding](variant), document), `${key} ${encoding}`).toBe(0);
        there++;
      }
    }
    return there;
  }

  it('answers with the documents written, then makes their variants, none ever beside another document', async () => {
    const all = INDEX_DOCUMENTS.length * CONTENT_ENCODINGS.length;
    expect((await plugindex('publish', await bundleFile('squeezed-one'), '--registry', dir)).code).toBe(0);
    // The variants the first publish left come once it has answered (or a variant is missing meanwhile,
    // and the server sends the document itself); none is of another generation's document.
    // Each wait ends once they are all there; its bound only ends a failed test before its timeout (one 10 s
    // for both once, which a loaded machine's two publishes could outlast).
    const variantsMade = async () => {
      const deadline = Date.now() + 20_000;
      while ((await variantsThere()) < all && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 20));
    };
    await variantsMade();
    expect(await variantsThere()).toBe(all);
    const first = await readFile(path.join(dir, 'public', 'index.json.br'));

    expect((await plugindex('publish', await bundleFile('squeezed-two'), '--registry', dir)).code).toBe(0);
    await variantsMade();
    expect(await variantsThere()).toBe(all);
    const index = JSON.parse(
      decode.br(await readFile(path.join(dir, 'public', 'index.json.br'))).toString('utf8'),
    ) as { plugins: { name: string }[] };
    expect(index.plugins.map((p) => p.name)).toEqual(['squeezed-one', 'squeezed-two']);
    expect(Buffer.compare(first, await readFile(path.join(dir, 'public', 'index.json.br')))).not.toBe(0);
    // Stored with their coding, which the server sends them with.
    const stored = await openSite(dir).head('index.json.br');
    expect(stored?.contentEncoding).toBe('br');
    expect(log.filter((line) => line.includes('left for later'))).toEqual([]);
  });
});

describe('when no server answers at the registry', () => {
  it('publish runs the pipeline itself beside a socket a killed server left, and a new server replaces it', async () => {
    const dir = await newRegistry('stale');
    const socket = servicePath(dir) as string;
    await leaveStaleSocket(socket);
    expect(await connectToService(dir)).toBeUndefined();
    const result = await plugindex('publish', await bundleFile('beside-stale'), '--registry', dir);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('accepted beside-stale@1.0.0');
    const log: string[] = [];
    const service = await startService({ dir, port: 0, watch: true, log: (line) => log.push(line) });
    try {
      const handed = await plugindex('publish', await bundleFile('after-stale'), '--registry', dir);
      expect(handed.code).toBe(0);
      expect(log).toContain('[publish] accepted after-stale@1.0.0');
    } finally {
      await service.close();
    }
    // Gone with the server that made it.
    await expect(stat(socket)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('serve beside a folder where its socket would be serves and watches, and says why it takes no submissions', async () => {
    const dir = await newRegistry('not-a-socket');
    const socket = servicePath(dir) as string;
    await mkdir(socket);
    const log: string[] = [];
    const service = await startService({ dir, port: 0, watch: true, log: (line) => log.push(line) });
    try {
      expect(log).toContain(`not taking submissions over a socket: ${socket} is there and is not a socket`);
      expect((await stat(socket)).isDirectory()).toBe(true);
      const result = await plugindex('publish', await bundleFile('no-socket'), '--registry', dir);
      expect(result.code).toBe(0);
      expect(log.some((line) => line.includes('no-socket'))).toBe(false);
      expect((await fetch(`${service.url}/plugins/no-socket/`)).status).toBe(200);
    } finally {
      await service.close();
    }
  });

  it('a server that hangs up before it answers leaves the upload in incoming/ (SERVICE_FAILED)', async () => {
    const dir = await newRegistry('hangs-up');
    // A stand-in, not plugindex's server: it reads the request and closes the connection.
    const standIn = net.createServer((connection) => connection.once('data', () => connection.destroy()));
    await new Promise<void>((resolve) => standIn.listen(servicePath(dir) as string, () => resolve()));
    try {
      const result = await plugindex('publish', await bundleFile('left-waiting'), '--registry', dir);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('SERVICE_FAILED');
      expect(result.stderr).toContain('went away before it answered');
      expect(await incoming(dir)).toHaveLength(1);
    } finally {
      await new Promise<void>((resolve) => standIn.close(() => resolve()));
    }
    // Not lost: the next batch publishes it.
    const processed = await plugindex('process', '--registry', dir);
    expect(processed.code).toBe(0);
    expect(processed.stdout).toContain('accepted left-waiting@1.0.0');
  });

  it('a server that hangs up before it is asked leaves the upload in incoming/ (SERVICE_FAILED), and says so', async () => {
    const dir = await newRegistry('hangs-up-early');
    // A stand-in, not plugindex's server: it closes every connection as soon as it takes it, before the
    // command has hashed and put its upload (the command waited for ever, and ended silently, exit 13).
    const standIn = net.createServer((connection) => connection.destroy());
    await new Promise<void>((resolve) => standIn.listen(servicePath(dir) as string, () => resolve()));
    try {
      const result = await plugindex('publish', await bundleFile('gone-early'), '--registry', dir);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('SERVICE_FAILED');
      // Gone before it was asked, before it answered, or as the request was written (EPIPE): whichever it met.
      expect(result.stderr).toMatch(
        /the registry's server (went away|failed).*: the upload stays at incoming\//,
      );
      expect(await incoming(dir)).toHaveLength(1);
    } finally {
      await new Promise<void>((resolve) => standIn.close(() => resolve()));
    }
  });

  it('asks again on a new connection when the server closed the first before the request came', async () => {
    const dir = await newRegistry('asks-again');
    const outcome = {
      schema: 'plugindex/outcome/v1',
      id: 'asked-again',
      submission: 'incoming/x.tgz',
      status: 'accepted',
      plugin: 'asked-again',
      version: '1.0.0',
      problems: [],
    };
    // A stand-in, not plugindex's server: the first connection closed at once, as a server closes one whose
    // request is slow to come (its request timeout); the next ones answered.
    const requests: string[] = [];
    let connections = 0;
    const standIn = net.createServer((connection) => {
      if (connections++ === 0) {
        connection.destroy();
        return;
      }
      connection.setEncoding('utf8').once('data', (line: string) => {
        requests.push(line);
        connection.end(`${JSON.stringify({ outcome })}\n`);
      });
    });
    await new Promise<void>((resolve) => standIn.listen(servicePath(dir) as string, () => resolve()));
    try {
      const result = await plugindex('publish', await bundleFile('asked-again'), '--registry', dir);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toContain('accepted asked-again@1.0.0 (submission asked-again)');
      expect(connections).toBe(2);
      expect(requests).toHaveLength(1);
      expect(JSON.parse(requests[0] as string)).toMatchObject({ key: expect.stringMatching(/^incoming\//) });
    } finally {
      await new Promise<void>((resolve) => standIn.close(() => resolve()));
    }
  });

  it.each([
    ['LOCKED', '{"error":{"code":"LOCKED","message":"registry is busy"}}\n', 'LOCKED', 'registry is busy'],
    [
      'ROTATION_PENDING',
      '{"error":{"code":"ROTATION_PENDING","message":"a rotation is under way"}}\n',
      'ROTATION_PENDING',
      'a rotation is under way',
    ],
    [
      'another code',
      '{"error":{"code":"KEY_PASSPHRASE","message":"no passphrase"}}\n',
      'SERVICE_FAILED',
      'refused it (KEY_PASSPHRASE: no passphrase)',
    ],
    ['an answer that is not JSON', 'accepted\n', 'SERVICE_FAILED', 'answered what is not JSON'],
  ])(
    'a server answering %s fails the request with a CliError of code %s',
    async (_, answer, code, message) => {
      const dir = await newRegistry(`answers-${code.toLowerCase()}-${Math.random().toString(16).slice(2)}`);
      // A stand-in, not plugindex's server: it reads the request and sends back a canned answer.
      const standIn = net.createServer((connection) => connection.once('data', () => connection.end(answer)));
      await new Promise<void>((resolve) => standIn.listen(servicePath(dir) as string, () => resolve()));
      try {
        const connection = (await connectToService(dir)) as net.Socket;
        const failed = requestOutcome(connection, { key: 'incoming/x.tgz', sha256: 'c'.repeat(64) });
        await expect(failed).rejects.toBeInstanceOf(CliError);
        await expect(failed).rejects.toMatchObject({ code, message: expect.stringContaining(message) });
        // Whatever the server said, the upload it was asked for stays under incoming/, and the command says so.
        await expect(failed).rejects.toMatchObject({
          message: expect.stringContaining('stays at incoming/x.tgz'),
        });
        connection.destroy();
      } finally {
        await new Promise<void>((resolve) => standIn.close(() => resolve()));
      }
    },
  );

  it('a connection that sends no request is closed; one that sends it in pieces is answered', async () => {
    const dir = await newRegistry('slow-client');
    const requests: unknown[] = [];
    const listening = await listenForSubmissions(
      dir,
      async (request) => {
        requests.push(request);
        return { status: 'accepted', id: 'x', submission: 'x', problems: [] } as never;
      },
      { requestTimeoutMs: 200 },
    );
    if (!('service' in listening)) throw new Error(listening.why);
    try {
      // Closed by the server (this side never ends it); not at once, as the request sent in pieces below
      // within the timeout is answered.
      const silent = net.connect(listening.service.path);
      await new Promise<void>((resolve) => silent.once('close', () => resolve()));
      const piecewise = net.connect(listening.service.path);
      // Listened for from the start: a server closing it at once is an empty answer, not a hang.
      piecewise.on('error', () => undefined);
      const piecewiseClosed = new Promise<void>((resolve) => piecewise.once('close', () => resolve()));
      let answer = '';
      piecewise.setEncoding('utf8').on('data', (chunk: string) => {
        answer += chunk;
      });
      const line = `${JSON.stringify({ key: 'incoming/a.tgz', sha256: 'b'.repeat(64) })}\n`;
      piecewise.write(line.slice(0, 10));
      await new Promise((resolve) => setTimeout(resolve, 50));
      if (!piecewise.destroyed) piecewise.write(line.slice(10));
      await piecewiseClosed;
      expect(answer).not.toBe('');
      expect(JSON.parse(answer)).toEqual({
        outcome: { status: 'accepted', id: 'x', submission: 'x', problems: [] },
      });
      expect(requests).toEqual([{ key: 'incoming/a.tgz', sha256: 'b'.repeat(64) }]);
    } finally {
      await listening.service.close();
    }
  });

  it('a registry whose path is too long for a socket has no server path, and serve says so', async () => {
    const deep = path.join(work, 'd'.repeat(60), 'e'.repeat(60));
    expect(servicePath(deep)).toBeUndefined();
    expect(await listenForSubmissions(deep, () => Promise.reject(new Error('never called')))).toEqual({
      why: "the registry's path is too long for a socket (over 103 bytes)",
    });
    expect(servicePath(path.join(work, 'short'))).toBe(path.join(work, 'short', SERVICE_SOCKET_NAME));
  });
});

describe('when a client of the socket holds it without finishing', () => {
  /** A server whose handler accepts whatever it is asked, with short limits for the test. */
  async function standingService(
    name: string,
    options: { readonly maxConnections?: number; readonly requestTimeoutMs?: number } = {},
  ) {
    const listening = await listenForSubmissions(
      await newRegistry(name),
      async () => ({ status: 'accepted', id: 'x', submission: 'x', problems: [] }) as never,
      { requestTimeoutMs: 300, ...options },
    );
    if (!('service' in listening)) throw new Error(listening.why);
    return listening.service;
  }

  it('closes a connection that trickles its request a byte at a time, once the request is overdue', async () => {
    const service = await standingService('trickle');
    try {
      const trickling = net.connect(service.path);
      trickling.on('error', () => undefined);
      // A byte every 100 ms, each well within the 300 ms the request has, never the newline, for 3 s: a
      // timeout each byte restarted never closes it; the request's own, from the connection's start, does.
      const line = JSON.stringify({ key: 'incoming/a.tgz', sha256: 'b'.repeat(64) });
      for (let i = 0; i < 30 && !trickling.destroyed; i++) {
        trickling.write(line.charAt(i));
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const stillOpen = !trickling.destroyed;
      trickling.destroy();
      expect(stillOpen).toBe(false);
    } finally {
      await service.close();
    }
  });

  it('closes a connection whose client keeps it open once answered', async () => {
    const service = await standingService('lingering');
    try {
      const lingering = net.connect(service.path);
      let answer = '';
      lingering.setEncoding('utf8').on('data', (chunk: string) => {
        answer += chunk;
      });
      const ended = new Promise<void>((resolve) => lingering.once('end', () => resolve()));
      // allowHalfOpen on the client side: it keeps its own side open after the server's end, as a client
      // that never closes does.
      lingering.allowHalfOpen = true;
      lingering.write(`${JSON.stringify({ key: 'incoming/a.tgz', sha256: 'b'.repeat(64) })}\n`);
      await ended;
      expect(JSON.parse(answer)).toMatchObject({ outcome: { status: 'accepted' } });
      // Well past the request timeout, the server has let go of its side: a write now finds no reader.
      await new Promise((resolve) => setTimeout(resolve, 900));
      const failed = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
        lingering.once('error', resolve);
        lingering.write('more\n', () => setTimeout(() => resolve(undefined), 100));
      });
      lingering.destroy();
      expect(failed?.code).toMatch(/^(EPIPE|ECONNRESET)$/);
    } finally {
      await service.close();
    }
  });

  it('closes connections past its cap as they come, and answers the next once they are gone', async () => {
    // A request timeout no run reaches: the four held stay held however slow the machine, and only the cap
    // can close the next.
    const service = await standingService('flooded', { maxConnections: 4, requestTimeoutMs: 600_000 });
    const held = Array.from({ length: 4 }, () => net.connect(service.path).on('error', () => undefined));
    try {
      await Promise.all(held.map((c) => new Promise((resolve) => c.once('connect', resolve))));
      // One more, with a whole request: closed by the server as it comes, unanswered (past the cap, it
      // would be answered, then held to the timeout).
      const extra = net.connect(service.path).on('error', () => undefined);
      let answer = '';
      extra.setEncoding('utf8').on('data', (chunk: string) => {
        answer += chunk;
      });
      extra.write(`${JSON.stringify({ key: 'incoming/a.tgz', sha256: 'b'.repeat(64) })}\n`);
      // Until it is closed, or answered (which would hold it to the timeout).
      await new Promise<void>((resolve) => {
        extra.once('close', () => resolve());
        extra.once('data', () => resolve());
      });
      expect(answer).toBe('');
      for (const c of held) c.destroy();
      await new Promise((resolve) => setTimeout(resolve, 50));
      const connection = net.connect(service.path);
      expect(
        await requestOutcome(connection, { key: 'incoming/a.tgz', sha256: 'b'.repeat(64) }),
      ).toMatchObject({ status: 'accepted' });
    } finally {
      // Held for the whole timeout otherwise, and the server's close waits for them.
      for (const c of held) c.destroy();
      await service.close();
    }
  });
});

describe("when the server's umask would let anyone on the machine at its socket", () => {
  /** Listens on the registry in `dir` with the process's umask `mask`, and returns the service. */
  async function listenUnder(dir: string, mask: number): Promise<SubmissionService> {
    const before = process.umask(mask);
    try {
      const listening = await listenForSubmissions(dir, () => Promise.reject(new Error('never called')));
      if (!('service' in listening)) throw new Error(listening.why);
      return listening.service;
    } finally {
      process.umask(before);
    }
  }

  /** What a process of another user (nobody, 65534) is told when it connects to `socket`. */
  async function connectAsNobody(socket: string): Promise<string> {
    const probe = `const s = require('node:net').connect(${JSON.stringify(socket)});
s.on('connect', () => { console.log('connected'); s.destroy(); });
s.on('error', (e) => console.log(e.code));`;
    const { stdout } = await promisify(execFile)('setpriv', [
      '--reuid=65534',
      '--regid=65534',
      '--clear-groups',
      process.execPath,
      '-e',
      probe,
    ]);
    return stdout.trim();
  }

  /** A registry in a folder of its own that every user may pass through (mkdtemp's are the owner's alone). */
  async function registryAnyoneReaches(name: string): Promise<string> {
    const open = await mkdtemp(path.join(work, 'open-'));
    await chmod(work, 0o711);
    await chmod(open, 0o711);
    const dir = path.join(open, name);
    await initRegistry(dir, { name, url: 'http://127.0.0.1:9' });
    await chmod(dir, 0o711);
    return dir;
  }

  it('lets only those who may write to incoming/ connect, whatever the umask (0 here)', async () => {
    const dir = await registryAnyoneReaches('umask-zero');
    await chmod(path.join(dir, 'incoming'), 0o755);
    const service = await listenUnder(dir, 0);
    try {
      // Connecting to a Unix socket takes write permission on it: 0777 let every user hand it a key.
      expect((await stat(service.path)).mode & 0o777).toBe(0o600);
      if (process.getuid?.() === 0) expect(await connectAsNobody(service.path)).toBe('EACCES');
    } finally {
      await service.close();
    }
  });

  it.skipIf(process.getuid?.() !== 0)(
    'lets no one else connect in the moment between listening and setting the mode (umask 0 here)',
    async () => {
      const dir = await registryAnyoneReaches('mode-window');
      await chmod(path.join(dir, 'incoming'), 0o755);
      const socket = servicePath(dir) as string;
      // Another user (nobody) connecting to the socket's path over and over, four attempts at a time, saying
      // so each time the kernel lets one through. Bound at its path and chmod'ed after, the socket was 0777
      // for a moment at each start, and a connection made then was let through (and served, when accepted
      // after the chmod).
      const probe = `const net = require('node:net');
function again() {
  const s = net.connect(${JSON.stringify(socket)});
  s.on('connect', () => { process.stdout.write('connected\\n'); s.destroy(); setImmediate(again); });
  s.on('error', () => setImmediate(again));
}
for (let i = 0; i < 4; i++) again();
process.stdout.write('ready\\n');`;
      const child = spawn(
        'setpriv',
        ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', probe],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      let said = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        said += chunk;
      });
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      try {
        await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
        for (let start = 0; start < 100; start++) await (await listenUnder(dir, 0)).close();
      } finally {
        child.kill('SIGKILL');
        await exited;
      }
      expect(said.trim().split('\n')).toEqual(['ready']);
    },
  );

  it('leaves nothing of its own beside the registry once it listens, and nothing once it closes', async () => {
    const dir = await registryAnyoneReaches('no-leftovers');
    const before = await readdir(dir);
    const service = await listenUnder(dir, 0);
    try {
      // The folder the socket was bound in is gone; the socket stays at its name, with its mode.
      expect((await readdir(dir)).sort()).toEqual([...before, SERVICE_SOCKET_NAME].sort());
      expect((await stat(service.path)).mode & 0o777).toBe(0o600);
      const connection = await connectToService(dir);
      expect(connection).toBeInstanceOf(net.Socket);
      connection?.destroy();
    } finally {
      await service.close();
    }
    expect((await readdir(dir)).sort()).toEqual(before.sort());
  });

  it('removes at its start the folders servers killed while binding left, and only those', async () => {
    // Prepare: what a server killed between making its folder and removing it leaves (its folder, 0700,
    // named by its PID, a dead socket in it), one killed before it bound (empty, a minute old), and what
    // must stay: a folder of a PID that runs (a sleeping process), one whose socket answers (a live server in
    // another PID namespace, its PID running nothing here), one just made, a file of such a name, and a
    // folder of another name.
    const dir = await registryAnyoneReaches('killed-binding');
    const [dead, deadEmpty, deadAnswering, deadYoung, deadFile] = [
      await deadPid(),
      await deadPid(),
      await deadPid(),
      await deadPid(),
      await deadPid(),
    ];
    const sleeper = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)']);
    const plant = async (pid: number) => {
      const folder = path.join(dir, stagingFolderName(pid));
      await mkdir(folder, { mode: 0o700 });
      return folder;
    };
    const minuteAgo = new Date(Date.now() - 60_000);
    const killed = await plant(dead);
    await leaveStaleSocket(path.join(killed, 's'));
    const empty = await plant(deadEmpty);
    await utimes(empty, minuteAgo, minuteAgo);
    const running = await plant(sleeper.pid as number);
    await leaveStaleSocket(path.join(running, 's'));
    const answering = await plant(deadAnswering);
    const live = net.createServer();
    await new Promise<void>((resolve) => live.listen(path.join(answering, 's'), resolve));
    const young = await plant(deadYoung);
    await writeFile(path.join(dir, stagingFolderName(deadFile)), 'not a folder');
    await mkdir(path.join(dir, '.sother'));
    const before = await readdir(dir);
    try {
      // Act
      const service = await listenUnder(dir, 0o077);
      await service.close();

      // Assess: the two leftovers are gone, the rest as it was.
      const gone = [killed, empty].map((folder) => path.basename(folder));
      expect((await readdir(dir)).sort()).toEqual(before.filter((name) => !gone.includes(name)).sort());
      expect(await readdir(answering)).toEqual(['s']);
      expect(await readdir(young)).toEqual([]);
    } finally {
      sleeper.kill('SIGKILL');
      await new Promise<void>((resolve) => live.close(() => resolve()));
    }
  });

  it('removes at its start the folders of the older naming (mkdtemp, no PID) left for good, and only those', async () => {
    // Prepare: what a server before the folders were named by PID left when killed while binding (`.s` and
    // mkdtemp's six characters, 0700, a dead socket in it, a minute old), and what must stay: one
    // whose socket answers (an older server running), one just made (an older server binding now), one
    // holding something beside its socket, one holding a file named `s`.
    const dir = await registryAnyoneReaches('older-naming');
    const minuteAgo = new Date(Date.now() - 60_000);
    const plant = async (name: string, fill: (folder: string) => Promise<unknown>, old = true) => {
      const folder = path.join(dir, name);
      await mkdir(folder, { mode: 0o700 });
      await fill(folder);
      if (old) await utimes(folder, minuteAgo, minuteAgo);
      return folder;
    };
    const killed = await plant('.sAb3dE9', (folder) => leaveStaleSocket(path.join(folder, 's')));
    // Empty folders of such names stay: an empty one is harmless left, and `.scripts`, `.shadow` or
    // `.static` (seven characters, the pattern's) may be the user's own.
    const empty = await plant('.s0zZ9aQ', async () => undefined);
    const scripts = await plant('.scripts', async () => undefined);
    const live = net.createServer();
    const answering = await plant(
      '.sLiveQ1',
      (folder) => new Promise<void>((resolve) => live.listen(path.join(folder, 's'), resolve)),
    );
    const young = await plant('.sYoung1', (folder) => leaveStaleSocket(path.join(folder, 's')), false);
    const kept = await plant('.sKept12', async (folder) => {
      await leaveStaleSocket(path.join(folder, 's'));
      await writeFile(path.join(folder, 'notes'), 'mine');
      await utimes(folder, minuteAgo, minuteAgo);
    });
    const fileS = await plant('.sFileS1', (folder) => writeFile(path.join(folder, 's'), 'not a socket'));
    // A link of such a name, to a folder that looks like a leftover: neither is a server's.
    const target = await plant('linked-target', (folder) => leaveStaleSocket(path.join(folder, 's')));
    await symlink(target, path.join(dir, '.sLinkd1'));
    const before = await readdir(dir);
    try {
      // Act
      const service = await listenUnder(dir, 0o077);
      await service.close();

      // Assess: the leftover holding a dead socket is gone, the rest as it was.
      const gone = [killed].map((folder) => path.basename(folder));
      expect((await readdir(dir)).sort()).toEqual(before.filter((name) => !gone.includes(name)).sort());
      expect(await readdir(empty)).toEqual([]);
      expect(await readdir(scripts)).toEqual([]);
      expect(await readdir(answering)).toEqual(['s']);
      expect(await readdir(young)).toEqual(['s']);
      expect((await readdir(kept)).sort()).toEqual(['notes', 's']);
      expect(await readdir(fileS)).toEqual(['s']);
      expect(await readdir(target)).toEqual(['s']);
    } finally {
      await new Promise<void>((resolve) => live.close(() => resolve()));
    }
  });

  it('binds where an earlier process of its own PID (before a reboot, or reused) left its folder', async () => {
    const dir = await registryAnyoneReaches('own-pid-left');
    const before = await readdir(dir);
    const left = path.join(dir, stagingFolderName(process.pid));
    await mkdir(left, { mode: 0o700 });
    await leaveStaleSocket(path.join(left, 's'));

    const service = await listenUnder(dir, 0o077);
    try {
      expect((await readdir(dir)).sort()).toEqual([...before, SERVICE_SOCKET_NAME].sort());
    } finally {
      await service.close();
    }
  });

  it('leaves the socket of a server that replaced its own at close', async () => {
    const dir = await registryAnyoneReaches('replaced');
    const first = await listenUnder(dir, 0o077);
    // A socket another process put at the path meanwhile (an operator removed the first one, and another
    // server started): the first server's close leaves it.
    await rm(first.path);
    const second = await listenUnder(dir, 0o077);
    try {
      await first.close();
      expect((await stat(second.path)).isSocket()).toBe(true);
      const connection = await connectToService(dir);
      expect(connection).toBeInstanceOf(net.Socket);
      connection?.destroy();
    } finally {
      await second.close();
    }
    await expect(stat(second.path)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('lets group and others connect where they may drop an upload in incoming/, whatever the umask (077 here)', async () => {
    const dir = await registryAnyoneReaches('shared-drop');
    await chmod(path.join(dir, 'incoming'), 0o1733);
    const service = await listenUnder(dir, 0o077);
    try {
      expect((await stat(service.path)).mode & 0o777).toBe(0o666);
      if (process.getuid?.() === 0) expect(await connectAsNobody(service.path)).toBe('connected');
    } finally {
      await service.close();
    }
  });
});
