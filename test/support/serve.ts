/** `plugindex serve` as a process, for tests that speak to a registry the way a user's client does. */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';

const BIN = path.resolve(import.meta.dirname, '../../cli/bin.mjs');

/** A port nothing listens on now (asked of the kernel, then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

export interface ServingRegistry {
  readonly url: string;
  readonly process: ChildProcess;
  /** Stops the server and waits for it to exit. */
  stop(): Promise<void>;
}

/** Starts `plugindex serve --registry DIR --no-watch` and resolves once it says it is serving. */
export async function startServe(registryDir: string, port?: number): Promise<ServingRegistry> {
  const chosen = port ?? (await freePort());
  const child = spawn(
    process.execPath,
    [BIN, 'serve', '--registry', registryDir, '--port', String(chosen), '--no-watch'],
    {
      stdio: 'pipe',
    },
  );
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('serve did not start')), 20_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('serving')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code) => reject(new Error(`serve exited with ${code}`)));
  });
  return {
    url: `http://127.0.0.1:${chosen}`,
    process: child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
