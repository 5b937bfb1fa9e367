/**
 * The hardening on the AWS path: the bundled publish function (the esbuild output CDK deploys), configured
 * only through its environment, against a real S3 protocol server (s3rver) and a fake Secrets Manager
 * endpoint, meets one burst of hostile uploads. Every upload gets its outcome, whatever its name; the one
 * that used to wedge the queue (an artifact path the store refused) is refused by validation; ownership is
 * decided within the batch; expired keys, ambiguous archives and repeated keys are refused; the invocation
 * succeeds (no retry, no dead-letter queue) and incoming/ is left empty. Hosted artifacts are stored as
 * opaque bytes whatever they are called.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import * as openpgp from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Store } from '../../adapters/s3-store.ts';
import { listAll } from '../../index-builder/store.ts';
import { bundleFunctions } from '../../infra/bundle-functions.ts';
import { type FakeSecretsManager, startFakeSecretsManager } from '../support/fake-secrets-manager.ts';
import {
  encode,
  makeBundle,
  rawTar,
  sha256,
  signAsPublisher,
  testKey,
  validManifest,
  withPaxGlobalPath,
} from '../support/fixtures.ts';
import { invokeAsLambda } from '../support/lambda-runtime.ts';
import { type LocalS3, setBundledFunctionEnv, startLocalS3 } from '../support/s3.ts';

let outdir: string;
let s3: LocalS3;
let secrets: FakeSecretsManager;
let handler: (event: unknown) => Promise<{
  outcomes: { submission: string; status: string; plugin?: string; problems: { code: string }[] }[];
}>;

beforeAll(async () => {
  outdir = await mkdtemp(path.join(tmpdir(), 'plugindex-hostile-'));
  const bundle = await bundleFunctions(outdir);
  s3 = await startLocalS3(['hostile-intake', 'hostile-site']);
  secrets = await startFakeSecretsManager({
    'plugindex/signing-key': JSON.stringify({ armoredKey: (await testKey('registry')).secretKey }),
  });
  // Exactly what the Lambda environment provides; this worker process is the "container".
  setBundledFunctionEnv({
    s3,
    secretsEndpoint: secrets.endpoint,
    intakeBucket: 'hostile-intake',
    siteBucket: 'hostile-site',
  });
  await put(
    'config/plugindex.json',
    encode(JSON.stringify({ name: 'Hostile', url: 'https://plugins.example.com' })),
  );
  ({ handler } = await import(pathToFileURL(bundle.files.publish).href));
});

afterAll(async () => {
  await s3?.close();
  await secrets?.close();
  await rm(outdir, { recursive: true, force: true });
});

const put = (key: string, body: Uint8Array) =>
  s3.client.send(new PutObjectCommand({ Bucket: 'hostile-intake', Key: key, Body: body }));

describe('when a burst of hostile uploads reaches the publish function', () => {
  it('records an outcome for every one, publishes the good ones, and leaves incoming/ empty', async () => {
    const expiredKey = await openpgp.generateKey({
      type: 'ecc',
      userIDs: [{ name: 'expired' }],
      date: new Date('2026-01-01T00:00:00Z'),
      keyExpirationTime: 30 * 24 * 3600,
      format: 'armored',
    });
    const expiredManifest = encode(JSON.stringify(validManifest({ name: 'expired-key' })));
    const page = encode('<!doctype html><script>alert(1)</script>');
    const uploads: [string, Uint8Array][] = [
      ['incoming/my plugin (1).tgz', await makeBundle({ manifest: validManifest({ name: 'spaced-name' }) })],
      ['incoming/plügin-😀.tgz', await makeBundle({ manifest: validManifest({ name: 'unicode-name' }) })],
      ['incoming/.dot-file.tgz', await makeBundle({ manifest: validManifest({ name: 'dot-name' }) })],
      ['incoming/x+y=z.tgz', await makeBundle({ manifest: validManifest({ name: 'plus-name' }) })],
      [
        'incoming/html-artifact.tgz',
        await makeBundle({
          manifest: validManifest({ name: 'html-artifact' }),
          artifacts: [{ os: 'linux', arch: 'amd64', name: 'page.html', body: page }],
        }),
      ],
      [
        'incoming/dot-artifact.tgz',
        await makeBundle({
          manifest: validManifest({
            name: 'dot-artifact',
            installation: {
              artifacts: [
                { os: 'linux', arch: 'amd64', file: '.config', sha256: sha256('x'), size_bytes: 1 },
              ],
            },
          }),
          extraFiles: [{ path: '.config', body: encode('x') }],
        }),
      ],
      ['incoming/claim-1.tgz', await makeBundle({ manifest: validManifest({ name: 'contested' }) })],
      [
        'incoming/claim-2.tgz',
        await makeBundle({
          manifest: validManifest({ name: 'contested', version: '9.0.0' }),
          signer: await testKey('rival'),
        }),
      ],
      [
        'incoming/expired.tgz',
        await makeBundle({
          manifestText: new TextDecoder().decode(expiredManifest),
          signature: await signAsPublisher(
            expiredManifest,
            expiredKey.privateKey,
            new Date('2026-01-05T00:00:00Z'),
          ),
          publisherKey: expiredKey.publicKey,
        }),
      ],
      [
        'incoming/repeated-key.tgz',
        await makeBundle({
          manifestText: `${JSON.stringify(validManifest({ name: 'repeated-key' })).slice(0, -1)},"name":"other-name"}`,
        }),
      ],
    ];
    // A pax global header: tarfile would name every entry after it "manifest.json".
    const plain = await rawTar([{ name: 'manifest.json', body: '{}' }], false);
    uploads.push(['incoming/ambiguous.tgz', withPaxGlobalPath(plain, 'manifest.json')]);
    for (const [key, body] of uploads) await put(key, body);

    const result = await invokeAsLambda(handler, { source: 'aws.events', 'detail-type': 'Scheduled Event' });

    const byKey = Object.fromEntries(
      result.outcomes.map((o) => [o.submission, [o.status, ...o.problems.map((p) => p.code)]]),
    );
    expect(byKey).toEqual({
      'incoming/my plugin (1).tgz': ['accepted'],
      'incoming/plügin-😀.tgz': ['accepted'],
      'incoming/.dot-file.tgz': ['accepted'],
      'incoming/x+y=z.tgz': ['accepted'],
      'incoming/html-artifact.tgz': ['accepted'],
      'incoming/dot-artifact.tgz': ['rejected', 'MANIFEST_PATTERN_MISMATCH'],
      'incoming/claim-1.tgz': ['accepted'],
      'incoming/claim-2.tgz': ['rejected', 'PUBLISHER_NOT_OWNER'],
      'incoming/expired.tgz': ['rejected', 'PUBLISHER_KEY_EXPIRED'],
      'incoming/repeated-key.tgz': ['rejected', 'MANIFEST_DUPLICATE_KEY'],
      'incoming/ambiguous.tgz': ['rejected', 'BUNDLE_AMBIGUOUS_ARCHIVE'],
    });
    const intake = new S3Store({ client: s3.client, bucket: 'hostile-intake' });
    expect(await listAll(intake, 'incoming/')).toEqual([]);
    expect(await listAll(intake, 'status/')).toHaveLength(uploads.length);

    const stored = await s3.client.send(
      new HeadObjectCommand({
        Bucket: 'hostile-site',
        Key: 'plugins/html-artifact/1.0.0/artifacts/linux-amd64/page.html',
      }),
    );
    expect(stored.ContentType).toBe('application/octet-stream');
  });
});
