/**
 * `plugindex process` as a process (cli/bin.mjs over the built bundle): a batch of at least
 * MIN_BUNDLES_FOR_THREADS bundles starts an inspector thread from its own chunk, every bundle is judged, and
 * the process exits by itself once the batch is done (the thread keeps it alive only while it has work); a
 * smaller batch starts no inspector thread. Node's own worker debug log (NODE_DEBUG=worker) says which
 * threads a process started.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIN_BUNDLES_FOR_THREADS } from '../../../adapters/inspector.ts';
import { initRegistry } from '../../../cli/local/registry.ts';
import { makeBundle, validManifest } from '../../support/fixtures.ts';

const BIN = path.resolve(import.meta.dirname, '../../../cli/bin.mjs');
const run = promisify(execFile);

let work: string;
let bundles: Uint8Array[];

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'plugindex-process-threads-'));
  bundles = await Promise.all(
    Array.from({ length: MIN_BUNDLES_FOR_THREADS + 6 }, (_, i) =>
      makeBundle({ manifest: validManifest({ name: `threaded-${String(i).padStart(3, '0')}` }) }),
    ),
  );
}, 120_000);

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** Processes the first `count` bundles in a new registry; what the process printed, and its worker log. */
async function processBatch(count: number) {
  const dir = path.join(work, `registry-${count}`);
  await initRegistry(dir, { name: 'r', url: 'http://127.0.0.1:8080' });
  await Promise.all(
    bundles.slice(0, count).map((b, i) => writeFile(path.join(dir, 'incoming', `upload-${i}.tgz`), b)),
  );
  const { stdout, stderr } = await run(process.execPath, [BIN, 'process', '--registry', dir], {
    env: { ...process.env, NODE_DEBUG: 'worker' },
    timeout: 60_000,
  });
  const started = stderr.split('\n').filter((line) => line.includes('instantiating Worker'));
  return { dir, stdout, started };
}

describe('when a batch is large enough for inspector threads', () => {
  it('inspects it on a thread of its own chunk, judges every bundle, and exits', async () => {
    const { dir, stdout, started } = await processBatch(bundles.length);
    expect(started.some((line) => /url: file:\S*\/chunks\/inspector-thread-\w+\.mjs/.test(line))).toBe(true);
    expect(stdout.split('\n').filter((line) => line.startsWith('accepted '))).toHaveLength(bundles.length);
    expect(await readdir(path.join(dir, 'incoming'))).toEqual([]);
  }, 60_000);
});

describe('when a batch is small', () => {
  it('starts no inspector thread', async () => {
    const { stdout, started } = await processBatch(3);
    expect(stdout.split('\n').filter((line) => line.startsWith('accepted '))).toHaveLength(3);
    expect(started.some((line) => line.includes('inspector-thread'))).toBe(false);
  }, 60_000);
});
