/**
 * The flush's memory at scale on S3: a registry of 100,000 plugins of 10 versions (PLUGINDEX_SCALE_PLUGINS
 * to change it) seeded into a local s3rver, then the publish function's handler invoked twice in a process
 * of its own (bench/scale-s3.ts), each invocation a publish and a flush of the index documents, streamed as
 * multipart uploads. The whole process stays under 512 MiB, what a Lambda function of that size may use
 * (about 450-480 MB here at 100,000 plugins; 520-532 MB when each streamed upload held five parts).
 *
 * Minutes long (seeding alone is about a minute at 100,000 plugins), so it runs only with
 * PLUGINDEX_SCALE_TEST=1, as test/index-builder/pipeline/scale.test.ts does on disk.
 */
import { describe, expect, it } from 'vitest';
import { runScaleS3 } from '../../bench/scale-s3.ts';

const enabled = process.env.PLUGINDEX_SCALE_TEST === '1';
const plugins = Number(process.env.PLUGINDEX_SCALE_PLUGINS ?? 100_000);
/** The whole process's peak: what a Lambda function of 512 MB may use (the bound). */
const PROCESS_MEMORY_BOUND = 512 * 1024 * 1024;

describe.skipIf(!enabled)(`when the publish function flushes ${plugins} plugins of 10 versions to S3`, () => {
  it.each([
    // The first flush without an order to merge into: every document rendered from the catalog's spill.
    ['rendered in full', true],
    // Both flushes merge the changed plugins into the published documents.
    ['merged', false],
  ])(
    'streams the index documents up in parts, in memory bounded whatever their size (%s)',
    {
      timeout: 1_200_000,
    },
    async (_, fullRendering) => {
      const result = await runScaleS3(plugins, 2, undefined, { fullRendering });
      expect(result.plugins).toBe(plugins);
      expect(result.flushes).toHaveLength(2);
      // The documents written are larger than the bound (at 100,000 plugins, 612 MB).
      expect(result.bytes, 'documents too small to show the bound: seed more plugins').toBeGreaterThan(
        PROCESS_MEMORY_BOUND,
      );
      // Multipart: index.json (280 MB at 100,000 plugins) went up in parts in both flushes.
      expect(result.indexParts).toBeGreaterThanOrEqual(4);
      expect(result.maxRss).toBeLessThan(PROCESS_MEMORY_BOUND);
    },
  );
});
