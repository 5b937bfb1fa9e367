/**
 * `plugindex rotate-key` against a deployed registry (cli/remote.ts `rotateThroughQueue`): the published
 * snapshot it reads first, to find the next rotation and that the old key signs, is asked for past every
 * cache. Real HTTP, the local server over the in-memory site of a real pipeline; refused before any upload,
 * so no bucket or queue is reached. A new key no client could take is refused by the command as a user runs
 * it, an S3 protocol server (s3rver) as the upload bucket: nothing is uploaded.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Store } from '../../adapters/s3-store.ts';
import { createRegistryServer, listenRegistryServer } from '../../cli/local/server.ts';
import { rotateThroughQueue } from '../../cli/remote.ts';
import { CONFIG_KEY, SIGNED_SNAPSHOT_KEY } from '../../index-builder/layout.ts';
import { processSubmissions } from '../../index-builder/pipeline/index.ts';
import { readSignedRotation } from '../../index-builder/rotation.ts';
import { listAll } from '../../index-builder/store.ts';
import { plugindex, plugindexProcess } from '../support/cli.ts';
import {
  encode,
  KEYS_CREATED,
  makeBundle,
  makeRegistry,
  type TestRegistry,
  testKey,
} from '../support/fixtures.ts';
import { LOCAL_S3_ENV, type LocalS3, startLocalS3 } from '../support/s3.ts';
import { SMALL_ORDER_POINTS, smallOrderKey } from '../support/small-order-key.ts';

const requests: string[] = [];
let server: { url: string; close: () => Promise<void> };
let registry: TestRegistry;

beforeAll(async () => {
  registry = await makeRegistry();
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

describe('when the new key of a deployed registry is one no client could take', () => {
  const UPLOADS = 'rotate-uploads';
  let s3: LocalS3;
  let work: string;

  beforeAll(async () => {
    s3 = await startLocalS3([UPLOADS]);
    work = await mkdtemp(path.join(tmpdir(), 'plugindex-remote-rotate-'));
    Object.assign(process.env, LOCAL_S3_ENV);
  });
  afterAll(async () => {
    await s3?.close();
    await rm(work, { recursive: true, force: true });
  });

  it('refuses an Ed25519 key of small order with KEY_UNTRUSTED naming it, reading and uploading nothing', async () => {
    // Prepare: the registry's own key as the old one, so that only the new key stands in the way.
    const weak = smallOrderKey(SMALL_ORDER_POINTS.identity, KEYS_CREATED);
    const oldFile = path.join(work, 'old.asc');
    const newFile = path.join(work, 'new.asc');
    await writeFile(oldFile, registry.registryKey.secretKey, { mode: 0o600 });
    await writeFile(newFile, weak.secretKey, { mode: 0o600 });
    requests.length = 0;

    // Act
    const refused = await plugindex(
      'rotate-key',
      '--bucket',
      UPLOADS,
      '--queue-url',
      'http://127.0.0.1:9/queue',
      '--old-key',
      oldFile,
      '--new-key',
      newFile,
      '--url',
      server.url,
      '--endpoint',
      s3.endpoint,
      '--timeout',
      '1',
    );

    // Assess
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(
      `KEY_UNTRUSTED: the new key: the signing key ${weak.fingerprint} cannot be trusted`,
    );
    expect(refused.stderr).toContain('is an Ed25519 point of small order');
    expect(requests).toEqual([]);
    expect(await listAll(new S3Store({ client: s3.client, bucket: UPLOADS }), '')).toEqual([]);
  });
});

describe("when the registry's URL is given with a trailing slash, or its config object is not JSON", () => {
  const UPLOADS = 'rotate-url-uploads';
  let s3: LocalS3;
  let work: string;
  let oldFile: string;
  let newFile: string;

  beforeAll(async () => {
    s3 = await startLocalS3([UPLOADS]);
    work = await mkdtemp(path.join(tmpdir(), 'plugindex-remote-url-'));
    oldFile = path.join(work, 'old.asc');
    newFile = path.join(work, 'new.asc');
    await writeFile(oldFile, registry.registryKey.secretKey, { mode: 0o600 });
    await writeFile(newFile, (await testKey('next-registry')).secretKey, { mode: 0o600 });
  });
  afterAll(async () => {
    await s3?.close();
    await rm(work, { recursive: true, force: true });
  });

  const uploads = () => new S3Store({ client: s3.client, bucket: UPLOADS });

  /** The built command's rotate-key against the bucket; the queue refuses at once (no SQS runs here). */
  const rotate = (...more: string[]) =>
    plugindexProcess(
      [
        'rotate-key',
        '--bucket',
        UPLOADS,
        '--queue-url',
        'http://127.0.0.1:9/queue',
        '--old-key',
        oldFile,
        '--new-key',
        newFile,
        '--endpoint',
        s3.endpoint,
        '--timeout',
        '1',
        ...more,
      ],
      {
        cwd: work,
        env: { ...LOCAL_S3_ENV, AWS_ENDPOINT_URL_SQS: 'http://127.0.0.1:9', AWS_MAX_ATTEMPTS: '1' },
      },
    );

  /** The registry each rotation uploaded under rotations/ names, then removed. */
  async function uploadedRegistries(): Promise<string[]> {
    const store = uploads();
    const names: string[] = [];
    for (const info of await listAll(store, 'rotations/')) {
      const object = await store.get(info.key);
      names.push(readSignedRotation(object?.body as Uint8Array).rotation.registry);
      await store.delete(info.key);
    }
    return names;
  }

  it('signs the rotation for the URL as the registry config holds it, without the slash (--url)', async () => {
    // The function compares the rotation's registry with its config's URL, which never ends in a slash:
    // one signed for `https://r.example/` was uploaded, then refused as of another registry.
    await rotate('--url', `${server.url}/`);
    expect(await uploadedRegistries()).toEqual([server.url]);
  });

  it('refuses a --url no registry config could hold (exit 2), reading and uploading nothing', async () => {
    const refused = await rotate('--url', 'https://user:secret@registry.example.org');
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("--url must be the registry's URL");
    expect(refused.stderr).toContain('expected no user name or password');
    expect(refused.stderr).not.toContain('secret@');
    expect(await uploadedRegistries()).toEqual([]);
  });

  it('signs it for the URL of the config object as the function reads it, without the slash', async () => {
    await uploads().put(
      CONFIG_KEY,
      encode(JSON.stringify({ name: 'Test Registry', url: `${server.url}/`, policy: 'open' })),
      { contentType: 'application/json', cacheControl: 'no-store' },
    );
    await rotate();
    expect(await uploadedRegistries()).toEqual([server.url]);
  });

  it('refuses a config object that is not JSON with CONFIG_INVALID naming it (exit 1), uploading nothing', async () => {
    await uploads().put(CONFIG_KEY, encode('{ "url": '), {
      contentType: 'application/json',
      cacheControl: 'no-store',
    });
    const refused = await rotate();
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(
      `CONFIG_INVALID: registry config s3://${UPLOADS}/${CONFIG_KEY} is not JSON`,
    );
    expect(await uploadedRegistries()).toEqual([]);
  });
});
