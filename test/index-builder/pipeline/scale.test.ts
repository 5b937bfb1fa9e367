/**
 * The flush's memory at scale: a registry of 100,000 plugins of 10 versions (PLUGINDEX_SCALE_PLUGINS to
 * change it) seeded on disk, then publishes and a flush in a process of its own (bench/scale.ts), whose
 * peak resident set is read before and after the flush. The process holds no plugin's catalog line for
 * long (a publish reads none; the flush goes through the bins a window of names at a time and spills the
 * lines in order), and the documents are streamed: the whole process stays under 512 MiB (about 390 MB
 * here at 100,000 plugins, where holding every line took 590-660 MB), whatever the registry's size.
 *
 * Minutes long (seeding alone is about a minute at 100,000 plugins), so it runs only with
 * PLUGINDEX_SCALE_TEST=1, and in `bench/publish.bench.ts` when given a size of 30,000 or more.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { type ScaleResult, seedRegistry } from '../../../bench/scale.ts';
import { CATALOG_ORDER_KEY } from '../../../index-builder/layout.ts';

const enabled = process.env.PLUGINDEX_SCALE_TEST === '1';
const plugins = Number(process.env.PLUGINDEX_SCALE_PLUGINS ?? 100_000);
/** What the flush may add to the process's peak: chunks in flight and uncollected garbage, not documents. */
const FLUSH_MEMORY_BOUND = 256 * 1024 * 1024;
/** The whole process's peak: what a Lambda function of 512 MB may use (the bound). */
const PROCESS_MEMORY_BOUND = 512 * 1024 * 1024;
const root = path.resolve(import.meta.dirname, '../../..');

describe.skipIf(!enabled)(`when ${plugins} plugins of 10 versions are flushed`, () => {
  it('publishes and streams the index documents in memory bounded whatever their size', {
    timeout: 900_000,
  }, async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'plugindex-scale-'));
    try {
      await seedRegistry(dir, plugins);
      // First without the order the seeding rendered in: a flush that renders every document in full (what
      // a rebuild or the first flush after an upgrade does), then one that merges into what it wrote.
      await rm(path.join(dir, CATALOG_ORDER_KEY));
      for (const rendering of ['in full', 'merged']) {
        const { stdout } = await promisify(execFile)(
          process.execPath,
          ['--import', 'tsx', path.join(root, 'bench/scale.ts'), dir, '2', '1'],
          { cwd: root, maxBuffer: 1 << 20 },
        );
        const result = JSON.parse(stdout) as ScaleResult;
        expect(result.plugins).toBe(plugins);
        // The documents written are larger than the bound many times over (at 100,000 plugins, 612 MB).
        expect(result.flushBytes, 'documents too small to show the bound: seed more plugins').toBeGreaterThan(
          2 * FLUSH_MEMORY_BOUND,
        );
        expect(result.maxRss - result.maxRssBeforeFlush, rendering).toBeLessThan(FLUSH_MEMORY_BOUND);
        expect(result.maxRss, rendering).toBeLessThan(PROCESS_MEMORY_BOUND);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
