/**
 * A publish beside a running server, for the benchmarks that time one (publish-process.bench.ts against
 * `node -e 0`, side-by-side.bench.ts against reprepro): `plugindex serve` started on a registry, and the wait
 * for the compressed variants the server makes after it answers a publish handed to it (untimed, so the
 * next round does not pay for them).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { connectToService } from '../cli/local/submission-socket.ts';
import { CONTENT_ENCODINGS, encodedVariantKey, INDEX_DOCUMENTS } from '../index-builder/layout.ts';

const BIN = path.resolve(import.meta.dirname, '..', 'cli', 'bin.mjs');

/** A `plugindex serve` the bench started. */
export interface RunningServer {
  readonly process: ChildProcess;
  /**
   * The publishes it has said it accepted (its `[publish] accepted` lines): a command that found no server
   * answering would publish cold, and be timed as handed over.
   */
  accepted(): number;
}

/** `plugindex serve` on `dir`, once it takes submissions over its socket. */
export async function startServer(dir: string): Promise<RunningServer> {
  const server = spawn(process.execPath, [BIN, 'serve', '--registry', dir, '--port', '0'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  let accepted = 0;
  createInterface({ input: server.stdout }).on('line', (line) => {
    if (line.startsWith('[publish] accepted ')) accepted += 1;
  });
  const deadline = Date.now() + 30_000;
  for (;;) {
    const connection = await connectToService(dir);
    if (connection) {
      connection.destroy();
      return { process: server, accepted: () => accepted };
    }
    if (Date.now() > deadline || server.exitCode !== null) {
      server.kill('SIGINT');
      throw new Error('plugindex serve did not start');
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Stops a server `startServer` started, once it has ended (and its output is read whole). */
export async function stopServer(server: RunningServer): Promise<void> {
  const child = server.process;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const ended = new Promise((resolve) => child.once('close', resolve));
  child.kill('SIGINT');
  await ended;
}

/** Throws unless the stopped server accepted every publish handed to it (`expected`). */
export function checkAccepted(server: RunningServer, expected: number): void {
  if (server.accepted() !== expected)
    throw new Error(
      `plugindex serve accepted ${server.accepted()} publishes, not the ${expected} handed to it`,
    );
}

/** Once every variant of the index documents is there again (a served publish makes them after answering). */
export async function variantsMade(dir: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  const keys = INDEX_DOCUMENTS.flatMap((key) => CONTENT_ENCODINGS.map((e) => encodedVariantKey(key, e)));
  while (Date.now() < deadline) {
    const there = await Promise.all(
      keys.map((key) => stat(path.join(dir, 'public', key)).catch(() => undefined)),
    );
    if (there.every(Boolean)) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error('the server did not make the compressed variants within 10 s');
}
