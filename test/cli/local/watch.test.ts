/**
 * The local drop folder: a bundle renamed into incoming/ is published by a running service within seconds,
 * over the same HTTP server clients use.
 */
import { mkdir, mkdtemp, rename, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initRegistry } from '../../../cli/local/registry.ts';
import { type RunningService, startService } from '../../../cli/local/service.ts';
import { makeBundle, sha256, validManifest } from '../../support/fixtures.ts';

/**
 * How long a wait for the service may take before the test fails: each ends as soon as what it waits for
 * comes, so this only bounds a failure, below the test's timeout (10 s once, which a loaded machine's
 * batches, judged on threads starting slowly, could outlast).
 */
const WAIT_MS = 40_000;

let dir: string;
let service: RunningService;
const log: string[] = [];

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'plugindex-watch-'));
  await initRegistry(dir, { name: 'Watch', url: 'http://127.0.0.1:9' });
  service = await startService({ dir, port: 0, watch: true, log: (line) => log.push(line) });
});

afterAll(async () => {
  await service.close();
  await rm(dir, { recursive: true, force: true });
});

async function waitFor(url: string, timeoutMs: number): Promise<Response | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const response = await fetch(url);
    if (response.status === 200) return response;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return undefined;
}

/** The generations logged by lines holding `text` (each line ends with one). */
function generations(text: string): number[] {
  return log.filter((line) => line.includes(text)).map((line) => Number(line.split(' ').pop()));
}

/** Whether the index documents were flushed since the last batch published: the flush is its next generation. */
function indexesCaughtUp(): boolean {
  const published = generations('published generation');
  return (
    published.length === 0 || generations('index documents updated').at(-1) === Math.max(...published) + 1
  );
}

/** Polls until `done()` holds, or WAIT_MS has passed (the assertions after it then fail). */
async function waitUntil(done: () => boolean): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (Date.now() < deadline && !done()) await new Promise((resolve) => setTimeout(resolve, 50));
}

async function waitForLog(text: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !log.some((line) => line.includes(text))) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('when a bundle is dropped into incoming/', () => {
  it('publishes it within a few seconds and records the outcome', async () => {
    // A stray folder in incoming/ must not hold up the bundles beside it.
    await mkdir(path.join(dir, 'incoming', 'stray-folder'));
    const bundle = await makeBundle({ manifest: validManifest({ name: 'dropped-plugin' }) });
    const temp = path.join(dir, 'incoming', '.dropped.tgz.partial');
    await writeFile(temp, bundle);
    await rename(temp, path.join(dir, 'incoming', 'dropped plugin (1).tgz')); // renamed to a plain name
    const response = await waitFor(`${service.url}/plugins/dropped-plugin`, WAIT_MS);
    expect(response?.status).toBe(200);
    const doc = (await (response as Response).json()) as { latest_version: string };
    expect(doc.latest_version).toBe('1.0.0');
    // The outcome is logged once the whole batch is done, a moment after the documents are visible.
    await waitForLog('accepted dropped-plugin@1.0.0', WAIT_MS);
    expect(log.some((line) => line.includes('accepted dropped-plugin@1.0.0'))).toBe(true);
  });

  it('publishes one whose time is ahead of the clock (kept from an archive), rather than wait for it for ever', async () => {
    const bundle = await makeBundle({ manifest: validManifest({ name: 'future-plugin' }) });
    const temp = path.join(dir, 'incoming', '.future.tgz.partial');
    await writeFile(temp, bundle);
    const tomorrow = new Date(Date.now() + 24 * 3600 * 1000);
    await utimes(temp, tomorrow, tomorrow);
    await rename(temp, path.join(dir, 'incoming', 'future.tgz'));
    const response = await waitFor(`${service.url}/plugins/future-plugin`, WAIT_MS);
    expect(response?.status).toBe(200);
  });

  it('publishes a burst at once and brings the index documents up to date in one flush after it', async () => {
    const names = ['burst-one', 'burst-two', 'burst-three'];
    for (const name of names) {
      const bundle = await makeBundle({ manifest: validManifest({ name }) });
      await writeFile(path.join(dir, 'incoming', `.${name}.partial`), bundle);
    }
    // The flush after the last test's batch comes first: counted as the burst's, it ended the wait below
    // before the burst's own (a loaded machine's flush came after the burst's files were written).
    await waitUntil(indexesCaughtUp);
    const flushesBefore = log.filter((line) => line.includes('index documents updated')).length;
    // All at once: renamed one after the other, a loaded machine's pause between two could pass for the
    // quiet that ends a burst.
    await Promise.all(
      names.map((name) =>
        rename(path.join(dir, 'incoming', `.${name}.partial`), path.join(dir, 'incoming', `${name}.tgz`)),
      ),
    );
    for (const name of names)
      expect((await waitFor(`${service.url}/plugins/${name}`, WAIT_MS))?.status).toBe(200);
    await waitForLog('accepted burst-three@1.0.0', WAIT_MS);
    await waitUntil(indexesCaughtUp);
    const published = log
      .filter((line) => line.includes('published generation'))
      .map((l) => Number(l.split(' ').pop()));
    const flushes = log.filter((line) => line.includes('index documents updated'));
    expect(flushes).toHaveLength(flushesBefore + 1);
    // The flush comes after the burst's batch, as the next generation, and the index served lists all three.
    expect(Number(flushes.at(-1)?.split(' ').pop())).toBe(Math.max(...published) + 1);
    const index = (await (await fetch(`${service.url}/index.json`)).json()) as {
      plugins: { name: string }[];
    };
    expect(index.plugins.map((p) => p.name)).toEqual(expect.arrayContaining(names));
    const snapshot = (await (await fetch(`${service.url}/snapshot.json`)).json()) as {
      generation: number;
      documents: Record<string, { sha256: string }>;
    };
    expect(snapshot.generation).toBe(Math.max(...published) + 1);
    const indexBytes = new Uint8Array(await (await fetch(`${service.url}/index.json`)).arrayBuffer());
    expect(snapshot.documents['index.json']?.sha256).toBe(sha256(indexBytes));
  });

  it('records a rejection without publishing anything', async () => {
    await writeFile(path.join(dir, 'incoming', '.junk.partial'), 'not a bundle');
    await rename(path.join(dir, 'incoming', '.junk.partial'), path.join(dir, 'incoming', 'junk.tgz'));
    await waitForLog('BUNDLE_NOT_GZIP', WAIT_MS);
    expect(log.find((line) => line.includes('rejected'))).toContain('BUNDLE_NOT_GZIP');
  });
});
