/**
 * 200 submissions arriving while batches are being published, as the FIFO queue delivers them on AWS: one
 * publish at a time, each round taking whatever has arrived. Every version ends up in the index, every signature
 * verifies, the generation only grows, and redelivered events change nothing. Runs on s3rver.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Store } from '../../adapters/s3-store.ts';
import { binKey, binOf } from '../../index-builder/layout.ts';
import type { PluginDocument, SnapshotDocument } from '../../index-builder/model.ts';
import { readPublicKey, verifyDetachedSignature } from '../../index-builder/signing.ts';
import { listAll } from '../../index-builder/store.ts';
import { verifyListedDocument, verifyPluginDocument } from '../../index-builder/verify.ts';
import { encode, makeBundle, testKey, validManifest } from '../support/fixtures.ts';
import { type LocalS3, localPublishHandler, startLocalS3 } from '../support/s3.ts';

const PLUGINS = 20;
const VERSIONS = 10;
let s3: LocalS3;

beforeAll(async () => {
  s3 = await startLocalS3(['cc-intake', 'cc-site']);
  await s3.client.send(
    new PutObjectCommand({
      Bucket: 'cc-intake',
      Key: 'config/plugindex.json',
      Body: encode(JSON.stringify({ name: 'Busy', url: 'https://plugins.example.com' })),
    }),
  );
});
afterAll(async () => {
  await s3?.close();
});

describe('when 200 submissions arrive while batches are being published', () => {
  it('publishes every version, with valid signatures and a strictly increasing generation', async () => {
    const handler = await localPublishHandler(s3, 'cc-intake', 'cc-site');
    const bundles: [string, Uint8Array][] = [];
    for (let v = 0; v < VERSIONS; v++) {
      for (let p = 0; p < PLUGINS; p++) {
        bundles.push([
          `incoming/p${p}-v${v}.tgz`,
          await makeBundle({ manifest: validManifest({ name: `busy-${p}`, version: `1.${v}.0` }) }),
        ]);
      }
    }
    // Uploads keep landing while the (serialized) function publishes whatever has arrived.
    let uploading = true;
    const uploads = (async () => {
      for (const [key, body] of bundles)
        await s3.client.send(new PutObjectCommand({ Bucket: 'cc-intake', Key: key, Body: body }));
      uploading = false;
    })();
    const generations: number[] = [];
    /** The generation of the round that published each version: one per round. */
    const rounds = new Set<number>();
    let accepted = 0;
    while (
      uploading ||
      (await listAll(new S3Store({ client: s3.client, bucket: 'cc-intake' }), 'incoming/')).length > 0
    ) {
      const result = await handler({});
      for (const outcome of result.outcomes) {
        if (outcome.status !== 'accepted') continue;
        accepted += 1;
        rounds.add(outcome.generation as number);
      }
      if (result.generation !== null) generations.push(result.generation);
    }
    await uploads;

    expect(accepted).toBe(PLUGINS * VERSIONS);
    // Published in several rounds while uploads kept landing (an invocation takes what arrived during its
    // last round in another one), not in one batch after they had all arrived.
    expect(rounds.size).toBeGreaterThan(1);
    expect(generations).toEqual([...generations].sort((a, b) => a - b));
    expect(new Set(generations).size).toBe(generations.length);

    const site = new S3Store({ client: s3.client, bucket: 'cc-site' });
    const body = async (key: string): Promise<Uint8Array> => (await site.get(key))?.body as Uint8Array;
    const index = JSON.parse(new TextDecoder().decode(await body('index.json'))) as {
      plugins: { name: string; versions: unknown[] }[];
    };
    expect(index.plugins).toHaveLength(PLUGINS);
    expect(index.plugins.reduce((n, p) => n + p.versions.length, 0)).toBe(PLUGINS * VERSIONS);

    const key = (await readPublicKey((await testKey('registry')).publicKey)).key;
    const snapshot = JSON.parse(new TextDecoder().decode(await body('snapshot.json'))) as SnapshotDocument;
    expect(snapshot.generation).toBe(generations[generations.length - 1]);
    for (const path of ['snapshot.json', 'index.json', 'index.yaml', 'search.json']) {
      const signature = new TextDecoder().decode(await body(`${path}.asc`));
      await expect(verifyDetachedSignature(await body(path), signature, [key]), path).resolves.toMatchObject({
        ok: true,
      });
      if (path !== 'snapshot.json') verifyListedDocument(snapshot, path, await body(path));
    }
    for (let p = 0; p < PLUGINS; p++) {
      const name = `busy-${p}`;
      const docBytes = await body(`plugins/${name}/index.json`);
      verifyPluginDocument(snapshot, name, await body(binKey(binOf(name))), docBytes);
      await expect(
        verifyDetachedSignature(
          docBytes,
          new TextDecoder().decode(await body(`plugins/${name}/index.json.asc`)),
          [key],
        ),
      ).resolves.toMatchObject({ ok: true });
      expect((JSON.parse(new TextDecoder().decode(docBytes)) as PluginDocument).versions).toHaveLength(
        VERSIONS,
      );
    }

    // Redelivered events: nothing left to do, nothing changes.
    const before = (await listAll(site, '')).map((o) => `${o.key} ${o.etag}`);
    const again = await handler({
      Records: [{ eventSource: 'aws:sqs', body: '{"source":"aws.s3","detail-type":"Object Created"}' }],
    });
    expect(again.outcomes).toEqual([]);
    expect((await listAll(site, '')).map((o) => `${o.key} ${o.etag}`)).toEqual(before);
  }, 180_000);
});
