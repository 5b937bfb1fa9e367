/**
 * `plugindex rotate-key` against a deployed registry (cli/remote.ts `rotateThroughQueue`): the published
 * snapshot it reads first, to find the next rotation and that the old key signs, is asked for past every
 * cache. Real HTTP, the local server over the in-memory site of a real pipeline; refused before any upload,
 * so no bucket or queue is reached.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRegistryServer, listenRegistryServer } from '../../cli/local/server.ts';
import { rotateThroughQueue } from '../../cli/remote.ts';
import { SIGNED_SNAPSHOT_KEY } from '../../index-builder/layout.ts';
import { processSubmissions } from '../../index-builder/pipeline/index.ts';
import { makeBundle, makeRegistry, testKey } from '../support/fixtures.ts';

const requests: string[] = [];
let server: { url: string; close: () => Promise<void> };

beforeAll(async () => {
  const registry = await makeRegistry();
  await processSubmissions(registry.context, await registry.submit(await makeBundle()));
  server = await listenRegistryServer(
    createRegistryServer({ site: registry.site, log: (line) => requests.push(line) }),
    0,
  );
});
afterAll(async () => {
  await server.close();
});

describe('when the operator rotates a deployed registry key', () => {
  it('reads the published snapshot with a random ?v= nonce, not one the clock gives that anyone could ask for first', async () => {
    // Prepare: two keys the registry does not sign with, so the rotation is refused once the snapshot is read.
    const [old, next] = await Promise.all([testKey('not-the-registry'), testKey('next')]);

    // Act
    const rotating = rotateThroughQueue({
      bucket: 'uploads',
      queueUrl: 'http://127.0.0.1:9/queue',
      oldSecretKey: old.secretKey,
      newSecretKey: next.secretKey,
      url: server.url,
      endpoint: 'http://127.0.0.1:9',
      timeoutSeconds: 1,
      log: () => {},
    });

    // Assess
    await expect(rotating).rejects.toMatchObject({
      name: 'SubmissionError',
      problems: [expect.objectContaining({ code: 'ROTATION_NOT_CURRENT_KEY' })],
    });
    expect(requests).toEqual([
      expect.stringMatching(new RegExp(`^GET /${SIGNED_SNAPSHOT_KEY}\\?v=[0-9a-f]{24} 200$`)),
    ]);
  });
});
