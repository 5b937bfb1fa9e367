/**
 * `plugindex rotate-key --registry DIR` (cli/local/rotate-key.ts `rotateLocalRegistry`) on a real local
 * registry folder: what the command adds to the pipeline's rotation (index-builder/pipeline/rotate.ts).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FsStore } from '../../../adapters/fs-store.ts';
import { initRegistry, openRegistry, SECRET_KEY_FILE } from '../../../cli/local/registry.ts';
import {
  PENDING_ROTATION_FILE,
  RETIRED_KEYS_DIR,
  rotateLocalRegistry,
} from '../../../cli/local/rotate-key.ts';
import { SubmissionError } from '../../../index-builder/errors.ts';
import { processSubmissions } from '../../../index-builder/pipeline/index.ts';
import { generateKeyPair } from '../../../index-builder/signing.ts';
import { CACHE_PRIVATE } from '../../../index-builder/store.ts';
import { makeBundle, testKey, validManifest } from '../../support/fixtures.ts';
import { scratchFolder } from '../../support/served-registry.ts';

const scratch = scratchFolder('plugindex-rotate-key-');

afterEach(() => {
  vi.restoreAllMocks();
});

/** A local registry folder with `names` published, one version each. */
async function publishedRegistry(names: readonly string[]): Promise<string> {
  const dir = join(scratch.path, `registry-${names.join('-')}`);
  await initRegistry(dir, { name: 'Rotating', url: 'https://plugins.registry.example' });
  const { context } = await openRegistry(dir);
  const keys: string[] = [];
  for (const name of names) {
    const key = `incoming/${name}.tgz`;
    await context.intake.put(key, await makeBundle({ manifest: validManifest({ name }) }), {
      contentType: 'application/gzip',
      cacheControl: CACHE_PRIVATE,
    });
    keys.push(key);
  }
  const { outcomes } = await processSubmissions(context, keys);
  expect(outcomes.map((o) => o.status)).toEqual(names.map(() => 'accepted'));
  return dir;
}

/** Every read of a published plugin document through a filesystem store from here on, by key. */
function countingDocumentReads(): Map<string, number> {
  const reads = new Map<string, number>();
  const get = FsStore.prototype.get;
  vi.spyOn(FsStore.prototype, 'get').mockImplementation(function (this: FsStore, key, ...rest) {
    if (/^plugins\/[^/]+\/index\.json$/.test(key)) reads.set(key, (reads.get(key) ?? 0) + 1);
    return get.call(this, key, ...rest);
  });
  return reads;
}

describe('when rotate-key rotates a local registry', () => {
  it('reads each plugin document in one check, under the lock, and once more for the re-signing', async () => {
    const dir = await publishedRegistry(['first-plugin', 'second-plugin']);
    const next = await generateKeyPair({ name: 'next registry key' });
    const reads = countingDocumentReads();

    const result = await rotateLocalRegistry(dir, next.secretKey);

    expect(result).toMatchObject({ status: 'rotated', fingerprint: next.fingerprint });
    // One for the check (the published documents, the owners and publishers) and one for the rebuild that
    // re-signs them: the command's own check before the pipeline's read each a second time.
    expect(Object.fromEntries(reads)).toEqual({
      'plugins/first-plugin/index.json': 2,
      'plugins/second-plugin/index.json': 2,
    });
  });

  it("refuses in that one check a rotation to a plugin owner's key, changing nothing: no pending rotation, the key kept", async () => {
    const dir = await publishedRegistry(['owned-plugin']);
    const keyFile = join(dir, SECRET_KEY_FILE);
    const before = await readFile(keyFile, 'utf8');
    const owner = await testKey('publisher');

    const error = await rotateLocalRegistry(dir, owner.secretKey).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(SubmissionError);
    expect((error as SubmissionError).problems).toEqual([
      expect.objectContaining({ code: 'ROTATION_INVALID', path: '/rotation/next/fingerprint' }),
    ]);
    expect(existsSync(join(dir, PENDING_ROTATION_FILE))).toBe(false);
    expect(existsSync(join(dir, RETIRED_KEYS_DIR))).toBe(false);
    expect(await readFile(keyFile, 'utf8')).toBe(before);
  });
});
