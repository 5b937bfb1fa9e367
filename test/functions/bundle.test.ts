/**
 * The bundled functions (the same esbuild output the CDK app deploys) run against a real S3 protocol server
 * (s3rver) and a fake Secrets Manager endpoint, configured only through their environment, as on Lambda.
 */

import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Store } from '../../adapters/s3-store.ts';
import type { SnapshotDocument } from '../../index-builder/model.ts';
import { readPublicKey, verifyDetachedSignature } from '../../index-builder/signing.ts';
import { listAll } from '../../index-builder/store.ts';
import { type BundleResult, bundleFunctions, type FunctionName } from '../../infra/bundle-functions.ts';
import { stageFunction } from '../../infra/publishers.ts';
import { type FakeSecretsManager, startFakeSecretsManager } from '../support/fake-secrets-manager.ts';
import { encode, makeBundle, testKey, validManifest } from '../support/fixtures.ts';
import { gpgKeyring } from '../support/gpg.ts';
import { type LocalS3, setBundledFunctionEnv, startLocalS3 } from '../support/s3.ts';

let outdir: string;
let bundle: BundleResult;
let s3: LocalS3;
let secrets: FakeSecretsManager;

beforeAll(async () => {
  outdir = await mkdtemp(path.join(tmpdir(), 'plugindex-bundle-'));
  bundle = await bundleFunctions(outdir);
  s3 = await startLocalS3(['bundle-intake', 'bundle-site']);
  const registryKey = await testKey('registry');
  secrets = await startFakeSecretsManager({
    'plugindex/signing-key': JSON.stringify({ armoredKey: registryKey.secretKey }),
  });
  // Exactly what the Lambda environment provides; this worker process is the "container".
  setBundledFunctionEnv({
    s3,
    secretsEndpoint: secrets.endpoint,
    intakeBucket: 'bundle-intake',
    siteBucket: 'bundle-site',
  });
  const put = (key: string, body: Uint8Array) =>
    s3.client.send(new PutObjectCommand({ Bucket: 'bundle-intake', Key: key, Body: body }));
  await put(
    'config/plugindex.json',
    encode(JSON.stringify({ name: 'Bundled', url: 'https://plugins.example.com' })),
  );
  await put('incoming/one.tgz', await makeBundle({ manifest: validManifest({ name: 'bundled-plugin' }) }));
});

afterAll(async () => {
  await s3?.close();
  await secrets?.close();
  await rm(outdir, { recursive: true, force: true });
});

/** The packages and our folders a function's bundle was made from (esbuild's metafile). */
function sourcesOf(name: FunctionName): string[] {
  const output = Object.entries(bundle.metafile.outputs).find(([file]) => file.endsWith(`${name}/index.mjs`));
  return Object.keys(output?.[1].inputs ?? {}).map((input) => {
    const inPackage = input.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\/(.*)$/);
    return inPackage ? `${inPackage[1]}/${(inPackage[2] as string).split('/')[0]}` : input;
  });
}

describe('when the functions are bundled for Lambda', () => {
  it('writes one self-contained ESM file per function', () => {
    for (const name of ['publish', 'refresh'] as const) {
      const text = readFileSync(bundle.files[name], 'utf8');
      expect(text.startsWith('import')).toBe(true);
      expect(text).not.toMatch(/from\s*"@aws-sdk\//);
    }
  });

  it.each(['publish', 'refresh'] as const)(
    'keeps the %s bundle within 1.5 MB, what a cold start compiles',
    (name) => {
      // Lambda takes far more (50 MB zipped); the bound is ours, since a cold start compiles every byte.
      expect(bundle.bytes[name]).toBeLessThanOrEqual(1_500_000);
    },
  );

  it('leaves out what a function never calls', () => {
    for (const name of ['publish', 'refresh'] as const) {
      const sources = sourcesOf(name);
      expect(sources).toContain('@aws-sdk/client-s3/dist-es');
      // The SDK as ES modules, cut to the commands used; not the CommonJS builds of whole clients.
      expect(
        sources.filter((s) => s.startsWith('@aws-sdk/') && s.endsWith('/dist-cjs')),
        name,
      ).toEqual([]);
      // Sending to the queue is the CLI's part of adapters/publish-queue.ts; the browser's user agent parser.
      expect(
        sources.filter((s) => /^(@aws-sdk\/client-sqs|bowser)\//.test(s)),
        name,
      ).toEqual([]);
    }
    // Only publishing reads submissions: the refresh function carries no manifest parser, YAML or tar reader.
    expect(
      sourcesOf('refresh').filter((s) => /^(yaml|tar-stream)\/|index-builder\/manifest\//.test(s)),
    ).toEqual([]);
    expect(sourcesOf('publish')).toContain('yaml/dist');
  });

  it('publishes from the intake bucket, signing with the key from Secrets Manager', async () => {
    const { handler } = (await import(pathToFileURL(bundle.files.publish).href)) as {
      handler: (event: unknown) => Promise<{ outcomes: { status: string }[] }>;
    };
    const event = {
      Records: [
        {
          eventSource: 'aws:sqs',
          body: JSON.stringify({
            source: 'aws.s3',
            'detail-type': 'Object Created',
            detail: { bucket: { name: 'bundle-intake' }, object: { key: 'incoming/one.tgz' } },
          }),
        },
      ],
    };
    const result = await handler(event);
    expect(result.outcomes.map((o) => o.status)).toEqual(['accepted']);
    expect(secrets.requests).toEqual(['secretsmanager.GetSecretValue plugindex/signing-key']);

    // Read back through the S3 API; every signed document checked by openpgp.js and by GnuPG.
    const site = new S3Store({ client: s3.client, bucket: 'bundle-site' });
    const key = await readPublicKey((await testKey('registry')).publicKey);
    const snapshot = JSON.parse(
      new TextDecoder().decode((await site.get('snapshot.json'))?.body),
    ) as SnapshotDocument;
    const signed = [
      'snapshot.json',
      // The key itself is listed by digest, not signed by itself.
      ...Object.keys(snapshot.documents).filter((p) => !p.endsWith('.asc')),
      'plugins/bundled-plugin/1.0.0/manifest.json',
    ];
    expect(signed).toEqual(expect.arrayContaining(['index.json', 'index.yaml', 'search.json']));
    const gpg = gpgKeyring(key.armored);
    try {
      for (const path of signed) {
        const body = (await site.get(path))?.body as Uint8Array;
        const signature = new TextDecoder().decode((await site.get(`${path}.asc`))?.body);
        await expect(verifyDetachedSignature(body, signature, [key.key]), path).resolves.toMatchObject({
          ok: true,
        });
        expect(gpg.verify(body, signature), path).toContain(`VALIDSIG ${key.fingerprint}`);
      }
    } finally {
      gpg.close();
    }
    expect(await listAll(new S3Store({ client: s3.client, bucket: 'bundle-intake' }), 'incoming/')).toEqual(
      [],
    );
  });

  it('refreshes the snapshot from its own bundle', async () => {
    const { handler } = (await import(pathToFileURL(bundle.files.refresh).href)) as {
      handler: () => Promise<{ generation: number }>;
    };
    await expect(handler()).resolves.toMatchObject({ generation: 2 });
  });
});

describe('when the deployment restricts publishing to a trust list', () => {
  it('enforces the list even though the config object in the bucket says open', async () => {
    const publisher = await readPublicKey((await testKey('publisher')).publicKey);
    const staged = path.join(outdir, 'publish-with-trust');
    stageFunction(path.dirname(bundle.files.publish), staged, [
      { fingerprint: publisher.fingerprint, names: ['trusted-*'], key: publisher.armored },
    ]);
    const { handler } = (await import(pathToFileURL(path.join(staged, 'index.mjs')).href)) as {
      handler: (event: unknown) => Promise<{
        outcomes: { submission: string; status: string; problems: { code: string }[] }[];
      }>;
    };
    const uploads: [string, Uint8Array][] = [
      ['incoming/trusted.tgz', await makeBundle({ manifest: validManifest({ name: 'trusted-one' }) })],
      [
        'incoming/rogue.tgz',
        await makeBundle({
          manifest: validManifest({ name: 'trusted-two' }),
          signer: await testKey('rogue'),
        }),
      ],
      ['incoming/elsewhere.tgz', await makeBundle({ manifest: validManifest({ name: 'other-name' }) })],
    ];
    for (const [key, body] of uploads) {
      await s3.client.send(new PutObjectCommand({ Bucket: 'bundle-intake', Key: key, Body: body }));
    }

    const result = await handler({ source: 'aws.events', 'detail-type': 'Scheduled Event' });

    const byKey = Object.fromEntries(
      result.outcomes.map((o) => [o.submission, [o.status, ...o.problems.map((p) => p.code)]]),
    );
    expect(byKey).toEqual({
      'incoming/trusted.tgz': ['accepted'],
      'incoming/rogue.tgz': ['rejected', 'PUBLISHER_UNTRUSTED'],
      'incoming/elsewhere.tgz': ['rejected', 'PUBLISHER_NAME_NOT_ALLOWED'],
    });
  });
});
