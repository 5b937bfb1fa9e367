/**
 * The deployed policies against what their principals do with them: the publish function's role and the
 * publishers' policy, their S3 requests to a local S3 server each checked first by a stand-in for IAM (a
 * mock: IAM cannot run here, support/iam.ts) that allows exactly what the synthesized policy allows, by
 * action, bucket folder and condition. A write the pipeline makes and the role refuses fails on AWS after
 * the work before it is done (outcomes recorded, documents pending): every later delivery of the message
 * meets it again. A publisher's upload that replaces another's still waiting loses that one for good.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REFRESH_REQUEST, rebuildMessage } from '../../adapters/publish-queue.ts';
import { S3Store } from '../../adapters/s3-store.ts';
import { main } from '../../cli/main.ts';
import { submitToBucket } from '../../cli/remote.ts';
import { sha256Hex } from '../../index-builder/digest.ts';
import { StoreError } from '../../index-builder/errors.ts';
import { statusKey, submissionIdFromDigest } from '../../index-builder/layout.ts';
import { CACHE_PRIVATE } from '../../index-builder/store.ts';
import { bundleFunctions } from '../../infra/bundle-functions.ts';
import { PlugindexStack } from '../../infra/stack.ts';
import { testApp } from '../support/cdk.ts';
import { encode, makeBundle, testKey, validManifest } from '../support/fixtures.ts';
import { allows, type Statement, statementsOf } from '../support/iam.ts';
import { LOCAL_S3_ENV, type LocalS3, localPublishHandler, startLocalS3 } from '../support/s3.ts';
import { type S3Gate, startS3Gate } from '../support/s3-gate.ts';

const INTAKE = 'role-intake';
const SITE = 'role-site';

let s3: LocalS3;
let statements: Statement[];
let publisherStatements: Statement[];
/** The site's bucket policy, as it reads to CloudFront's origin access control. */
let cloudFrontStatements: Statement[];
/** The distribution's ARN as its requests to S3 carry it (`AWS:SourceArn`), in the template's terms. */
let distributionArn: string;
let functionsDir: string;
let gate: S3Gate;
/** The synthesized stack the role is read from. */
let roleTemplate: Template;

/** The synthesized role's S3 statements, its buckets named as the local server's. */
function publishStatements(template: Template): Statement[] {
  return statementsOf(template, 'AWS::IAM::Policy', 'PublishingPublish', (id) =>
    id.startsWith('StorageUploads') ? INTAKE : id.startsWith('StorageSite') ? SITE : undefined,
  );
}

function allowed(action: string, resource: string): boolean {
  return allows(statements, action, resource);
}

/** The IAM actions an SDK command needs, on what (S3's documented mapping, for the commands the stores send). */
function needs(
  command: string,
  input: { Bucket?: string; Key?: string; IfMatch?: string; CopySource?: string },
): [string, string][] {
  const object = `${input.Bucket}/${input.Key}`;
  switch (command) {
    case 'GetObjectCommand':
    case 'HeadObjectCommand':
      return [['s3:GetObject', object]];
    case 'PutObjectCommand':
    case 'CreateMultipartUploadCommand':
    case 'UploadPartCommand':
    case 'CompleteMultipartUploadCommand':
      return [['s3:PutObject', object]];
    case 'AbortMultipartUploadCommand':
      return [['s3:AbortMultipartUpload', object]];
    case 'DeleteObjectCommand':
      // A delete conditional on an ETag needs the read of the object too.
      return input.IfMatch
        ? [
            ['s3:DeleteObject', object],
            ['s3:GetObject', object],
          ]
        : [['s3:DeleteObject', object]];
    case 'CopyObjectCommand':
      // The read of the source (`bucket/key`, URL-encoded) and the write of the copy.
      return [
        ['s3:GetObject', decodeURIComponent(input.CopySource ?? '').replace(/^\//, '')],
        ['s3:PutObject', object],
      ];
    case 'ListObjectsV2Command':
      return [['s3:ListBucket', `${input.Bucket}`]];
    default:
      return [[`unmapped:${command}`, object]];
  }
}

/** A client of the local S3 whose requests the role does not allow are refused, as S3 refuses them. */
function roleClient(denied: string[]): S3Client {
  const client = new S3Client(s3.config);
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as { Bucket?: string; Key?: string; IfMatch?: string; CopySource?: string };
      for (const [action, resource] of needs(context.commandName as string, input)) {
        if (allowed(action, resource)) continue;
        denied.push(`${action} ${resource}`);
        throw new S3ServiceException({
          name: 'AccessDenied',
          $fault: 'client',
          $metadata: { httpStatusCode: 403 },
          message: `not authorized to perform ${action} on ${resource}`,
        });
      }
      return next(args);
    },
    { step: 'initialize', name: 'iamStandIn' },
  );
  return client;
}

beforeAll(async () => {
  functionsDir = await mkdtemp(path.join(tmpdir(), 'plugindex-role-'));
  await bundleFunctions(functionsDir);
  const app = testApp();
  const stack = new PlugindexStack(app, 'Role', { functionsDir });
  const template = Template.fromStack(stack);
  roleTemplate = template;
  statements = publishStatements(template);
  publisherStatements = statementsOf(template, 'AWS::IAM::ManagedPolicy', 'StoragePublisherPolicy', (id) =>
    id.startsWith('StorageUploads') ? INTAKE : undefined,
  );
  cloudFrontStatements = statementsOf(template, 'AWS::S3::BucketPolicy', 'StorageSitePolicy', (id) =>
    id.startsWith('StorageSite') ? SITE : undefined,
  );
  const [distribution] = Object.keys(template.findResources('AWS::CloudFront::Distribution'));
  distributionArn = `arn:AWS::Partition:cloudfront::AWS::AccountId:distribution/${distribution}`;
  s3 = await startLocalS3([INTAKE, SITE]);
  gate = await startS3Gate(s3, publisherStatements);
  await s3.client.send(
    new PutObjectCommand({
      Bucket: INTAKE,
      Key: 'config/plugindex.json',
      Body: encode(JSON.stringify({ name: 'Role Registry', url: 'https://plugins.example.com' })),
    }),
  );
}, 120_000);

afterAll(async () => {
  await gate?.close();
  await s3?.close();
  await rm(functionsDir, { recursive: true, force: true });
});

describe("when the publish function runs with its deployed role's S3 permissions", () => {
  it('reads the role as the template grants it, and the stand-in refuses what it does not grant', () => {
    expect(allowed('s3:DeleteObject', `${INTAKE}/incoming/a.tgz`)).toBe(true);
    expect(allowed('s3:DeleteObject', `${INTAKE}/config/plugindex.json`)).toBe(false);
    expect(allowed('s3:PutObject', `${INTAKE}/rotations/r.json`)).toBe(false);
    expect(allowed('s3:DeleteObject', `${SITE}/index.json`)).toBe(false);
  });

  it('holds no S3 action the pipeline never sends: no version deleted or read, no retention, hold or tag', () => {
    // A delete of a version (s3:DeleteObjectVersion, in CDK's grantDelete's s3:DeleteObject*) destroys for
    // good what versioning keeps to undo a bad write: a role that handles every publisher's bytes could purge
    // the site's and the uploads' history. The stores send DeleteObject (the current version), never these.
    for (const key of [
      `${INTAKE}/incoming/a.tgz`,
      `${INTAKE}/state/log.json`,
      `${SITE}/plugins/a/1.0.0/a.tgz`,
    ]) {
      expect(allowed('s3:DeleteObject', key)).toBe(true);
      expect(allowed('s3:DeleteObjectVersion', key)).toBe(false);
      expect(allowed('s3:DeleteObjectTagging', key)).toBe(false);
    }
    for (const key of [`${INTAKE}/status/a.json`, `${SITE}/index.json`]) {
      expect(allowed('s3:PutObject', key)).toBe(true);
      expect(allowed('s3:AbortMultipartUpload', key)).toBe(true);
      for (const action of [
        's3:PutObjectRetention',
        's3:PutObjectLegalHold',
        's3:PutObjectTagging',
        's3:PutObjectVersionTagging',
        's3:GetObjectVersion',
        's3:GetObjectAcl',
      ])
        expect(allowed(action, key), action).toBe(false);
    }
    for (const bucket of [INTAKE, SITE]) {
      expect(allowed('s3:ListBucket', bucket)).toBe(true);
      expect(allowed('s3:ListBucketVersions', bucket)).toBe(false);
      expect(allowed('s3:GetBucketPolicy', bucket)).toBe(false);
    }
  });

  it('publishes, rejects, flushes, rebuilds and refreshes with no request refused', async () => {
    const denied: string[] = [];
    const client = roleClient(denied);
    const publish = await localPublishHandler(s3, INTAKE, SITE, client);
    const put = async (key: string, body: Uint8Array) =>
      s3.client.send(new PutObjectCommand({ Bucket: INTAKE, Key: key, Body: body }));
    const message = (body: string) => ({ Records: [{ messageId: 'm', eventSource: 'aws:sqs', body }] });

    await put('incoming/a.tgz', await makeBundle({ manifest: validManifest({ name: 'alpha' }) }));
    await put('incoming/bad.tgz', encode('not a bundle'));
    const first = await publish({});
    expect(first.outcomes.map((o) => o.status).sort()).toEqual(['accepted', 'rejected']);
    await put(
      'incoming/b.tgz',
      await makeBundle({ manifest: validManifest({ name: 'alpha', version: '1.1.0' }) }),
    );
    expect((await publish({})).outcomes.map((o) => o.status)).toEqual(['accepted']);
    await publish(message(rebuildMessage().body));
    const refreshed = await publish(message(JSON.stringify(REFRESH_REQUEST)));

    expect(denied).toEqual([]);
    expect(refreshed.generation).toBeGreaterThan(first.generation as number);
    client.destroy();
  });

  it("files a new name and an OCI repository in the intake's state/catalog/ indexes, and refuses another key's claim on it, with no request refused", async () => {
    const denied: string[] = [];
    const client = roleClient(denied);
    const publish = await localPublishHandler(s3, INTAKE, SITE, client);
    const digest = `sha256:${'ab'.repeat(32)}`;
    const ociBundle = (name: string, signer?: Awaited<ReturnType<typeof testKey>>) =>
      makeBundle({
        manifest: validManifest({
          name,
          installation: {
            artifacts: [
              {
                os: 'linux',
                arch: 'amd64',
                oci: { reference: 'registry.example/acme/role-lens:1.0.0', digest },
                sha256: digest,
                size_bytes: 42,
              },
            ],
          },
        }),
        ...(signer ? { signer } : {}),
      });
    const put = async (key: string, body: Uint8Array) =>
      s3.client.send(new PutObjectCommand({ Bucket: INTAKE, Key: key, Body: body }));
    await put('incoming/role-lens.tgz', await ociBundle('role-lens'));
    expect((await publish({})).outcomes.map((o) => o.status)).toEqual(['accepted']);
    await put('incoming/other-lens.tgz', await ociBundle('other-role-lens', await testKey('squatter')));
    const second = await publish({});
    expect(second.outcomes.map((o) => [o.status, o.problems.map((p) => p.code).join()])).toEqual([
      ['rejected', 'OCI_REPOSITORY_CLAIMED'],
    ]);
    const keys = (
      await s3.client.send(new ListObjectsV2Command({ Bucket: INTAKE, Prefix: 'state/catalog/' }))
    ).Contents?.map((o) => o.Key ?? '');
    expect(keys?.some((k) => k.startsWith('state/catalog/oci-repositories/'))).toBe(true);
    expect(keys?.some((k) => k.startsWith('state/catalog/names/'))).toBe(true);
    expect(denied).toEqual([]);
    client.destroy();
  });

  it("writes a variant streamed in parts, whose document's digest is copied over it once completed (CopyObject), with no request refused", async () => {
    // Prepare: the site store through the role, parts of 5 MiB, a compressed variant of two parts whose
    // digest is known only after its body (as a streamed index document's variants are written).
    const denied: string[] = [];
    const client = roleClient(denied);
    const site = new S3Store({ client, bucket: SITE, partSizeBytes: 5 * 1024 * 1024 });
    const body = new Uint8Array(6 * 1024 * 1024).map((_, i) => i % 251);
    async function* chunks() {
      for (let at = 0; at < body.byteLength; at += 1024 * 1024) yield body.subarray(at, at + 1024 * 1024);
    }

    // Act
    await site.putStream('index.json.br', chunks(), {
      contentType: 'application/json',
      cacheControl: 'public, max-age=60',
      contentEncoding: 'br',
      decodedSha256AfterBody: async () => 'a'.repeat(64),
    });

    // Assess: the copy needs the read of the object and its write, both granted on the site's objects.
    expect(denied).toEqual([]);
    expect((await site.head('index.json.br'))?.decodedSha256).toBe('a'.repeat(64));
    client.destroy();
  });
});

async function intakeText(key: string): Promise<string> {
  const object = await s3.client.send(new GetObjectCommand({ Bucket: INTAKE, Key: key }));
  return (await object.Body?.transformToString()) ?? '';
}

describe('when the publish function makes the messages it answers failed visible again', () => {
  it('may change the visibility of messages on its own queue, and on no other: not the dead-letter queue', () => {
    // Prepare: the role's statements on the queues, each named by its construct; and every statement of the
    // role naming an SQS action, whatever its resource (a wildcard would not name a queue).
    const template = roleTemplate;
    const queueStatements = statementsOf(template, 'AWS::IAM::Policy', 'PublishingPublish', (id) =>
      id.startsWith('PublishingSubmissions')
        ? 'submissions'
        : id.startsWith('PublishingDeadLetters')
          ? 'dead-letters'
          : undefined,
    );
    const sqsResources = Object.entries(template.findResources('AWS::IAM::Policy'))
      .filter(([id]) => id.startsWith('PublishingPublish'))
      .flatMap(
        ([, policy]) =>
          policy.Properties.PolicyDocument.Statement as { Action: string | string[]; Resource: unknown }[],
      )
      .filter(({ Action }) => [Action].flat().some((action) => action.startsWith('sqs:')))
      .map(({ Resource }) => Resource);

    // Assess: ChangeMessageVisibilityBatch is authorized as sqs:ChangeMessageVisibility on the queue; and
    // SendMessage (an upload whose message reached its last receipt announced again) on it alone.
    expect(allows(queueStatements, 'sqs:ChangeMessageVisibility', 'submissions')).toBe(true);
    expect(allows(queueStatements, 'sqs:ChangeMessageVisibility', 'dead-letters')).toBe(false);
    expect(allows(queueStatements, 'sqs:SendMessage', 'submissions')).toBe(true);
    expect(allows(queueStatements, 'sqs:SendMessage', 'dead-letters')).toBe(false);
    expect(sqsResources).toEqual([
      { 'Fn::GetAtt': [expect.stringMatching(/^PublishingSubmissions/), 'Arn'] },
      { 'Fn::GetAtt': [expect.stringMatching(/^PublishingSubmissions/), 'Arn'] },
    ]);
  });
});

describe("when a publisher uploads with the deployment's publisher policy", () => {
  const publisher = () => new S3Client({ ...s3.config, endpoint: gate.endpoint });
  const put = { contentType: 'application/gzip', cacheControl: CACHE_PRIVATE };

  it('may put an upload into incoming/ where none is, and read outcomes, and nothing else', async () => {
    const client = publisher();
    const store = new S3Store({ client, bucket: INTAKE });
    await store.put('incoming/fresh.tgz', encode('mine'), { ...put, createOnly: true });
    expect(await intakeText('incoming/fresh.tgz')).toBe('mine');
    await expect(store.get('incoming/fresh.tgz')).rejects.toMatchObject({ code: 'STORE_IO' });
    await expect(
      store.put('config/plugindex.json', encode('{}'), { ...put, createOnly: true }),
    ).rejects.toThrow(/AccessDenied/);
    client.destroy();
  });

  it('cannot list status/, and reads an outcome only by its exact key: one not there is 403, never 404', async () => {
    // Outcomes name plugins before they are published, and every problem found: a publisher reads its own by
    // the key `publish --bucket` computes from its upload's name and bytes (status/<name>-<12 hex of the
    // bytes' SHA-256>.json), never by listing.
    await s3.client.send(
      new PutObjectCommand({
        Bucket: INTAKE,
        Key: 'status/secret-plugin-0123456789ab.json',
        Body: encode('{}'),
      }),
    );
    const client = publisher();
    gate.refused.length = 0;
    for (const Prefix of ['status/', 'status/secret', undefined])
      await expect(
        client.send(
          new ListObjectsV2Command({ Bucket: INTAKE, ...(Prefix !== undefined ? { Prefix } : {}) }),
        ),
        Prefix,
      ).rejects.toMatchObject({ name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });
    expect(gate.refused).toEqual(Array(3).fill(`s3:ListBucket ${INTAKE}`));
    // A key not there is 403, as any key the policy does not grant, never 404: a wrong guess tells nothing.
    // The exact key reads: the policy cannot tell whose it is, the id's digest keeps it from being guessed.
    await expect(
      client.send(new GetObjectCommand({ Bucket: INTAKE, Key: 'status/secret-plugin-000000000000.json' })),
    ).rejects.toMatchObject({ name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });
    const own = await client.send(
      new GetObjectCommand({ Bucket: INTAKE, Key: 'status/secret-plugin-0123456789ab.json' }),
    );
    expect(await own.Body?.transformToString()).toBe('{}');
    await s3.client.send(
      new DeleteObjectCommand({ Bucket: INTAKE, Key: 'status/secret-plugin-0123456789ab.json' }),
    );
    client.destroy();
  });

  it("refuses a put without If-None-Match, which would replace another publisher's waiting upload", async () => {
    await s3.client.send(
      new PutObjectCommand({ Bucket: INTAKE, Key: 'incoming/theirs.tgz', Body: encode('theirs') }),
    );
    const client = publisher();
    const store = new S3Store({ client, bucket: INTAKE });
    const error = await store.put('incoming/theirs.tgz', encode('mine'), put).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect(error).toMatchObject({
      code: 'STORE_IO',
      message: expect.stringMatching(/AccessDenied \(HTTP 403\)/),
    });
    expect(await intakeText('incoming/theirs.tgz')).toBe('theirs');
    client.destroy();
  });

  it("refuses a put whose If-None-Match is anything but `*`, which would replace another publisher's waiting upload", async () => {
    // The policy asked only that the header be there: `If-None-Match: "<etag>"` passed it. S3 documents `*`
    // as the one value its writes take; what it does with another is S3's to change, and the store behind
    // the gate (s3rver, which ignores the header) replaced the waiting upload.
    await s3.client.send(
      new PutObjectCommand({ Bucket: INTAKE, Key: 'incoming/etag.tgz', Body: encode('theirs') }),
    );
    const client = publisher();
    const putMine = (IfNoneMatch: string) =>
      client.send(
        new PutObjectCommand({ Bucket: INTAKE, Key: 'incoming/etag.tgz', Body: encode('mine'), IfNoneMatch }),
      );
    for (const IfNoneMatch of ['"0123456789abcdef0123456789abcdef"', '**', 'W/"x"'])
      await expect(putMine(IfNoneMatch), IfNoneMatch).rejects.toMatchObject({
        name: 'AccessDenied',
        $metadata: { httpStatusCode: 403 },
      });
    expect(await intakeText('incoming/etag.tgz')).toBe('theirs');
    expect(gate.refused).toContain(`s3:PutObject ${INTAKE}/incoming/etag.tgz`);
    // `*` itself is the create-only write: where an upload waits, 412.
    await expect(putMine('*')).rejects.toMatchObject({
      name: 'PreconditionFailed',
      $metadata: { httpStatusCode: 412 },
    });
    await s3.client.send(new DeleteObjectCommand({ Bucket: INTAKE, Key: 'incoming/etag.tgz' }));
    client.destroy();
  });

  it('refuses a multipart upload completed without If-None-Match, and completes one with it', async () => {
    const client = publisher();
    const store = new S3Store({ client, bucket: INTAKE, partSizeBytes: 5 * 1024 * 1024 });
    const body = new Uint8Array(11 * 1024 * 1024).fill(7);
    const error = await store.put('incoming/big.tgz', body, put).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'STORE_IO', message: expect.stringMatching(/AccessDenied/) });
    expect(gate.refused).toContain(`s3:PutObject ${INTAKE}/incoming/big.tgz`);
    await store.put('incoming/big.tgz', body, { ...put, createOnly: true });
    const stored = await s3.client.send(new GetObjectCommand({ Bucket: INTAKE, Key: 'incoming/big.tgz' }));
    expect(stored.ContentLength).toBe(body.byteLength);
    client.destroy();
  });

  it('refuses an upload the publish function could not read: an archive storage class, a key of its own', async () => {
    // On S3 a GET of these answers 403 InvalidObjectState, 400 InvalidRequest or a KMS AccessDenied to the
    // function's role (s3rver keeps none of it): every batch failed on it, and the queue redelivered it
    // without end, holding every other publisher's upload behind it.
    const client = publisher();
    const body = encode('archived');
    const ifNoneMatch = { Bucket: INTAKE, Body: body, IfNoneMatch: '*' } as const;
    const refusals = [
      { Key: 'incoming/glacier.tgz', StorageClass: 'GLACIER' },
      { Key: 'incoming/deep.tgz', StorageClass: 'DEEP_ARCHIVE' },
      {
        Key: 'incoming/ssec.tgz',
        SSECustomerAlgorithm: 'AES256',
        SSECustomerKey: 'k'.repeat(32),
      },
      { Key: 'incoming/kms.tgz', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: 'alias/publishers-own' },
    ] as const;
    for (const refused of refusals) {
      await expect(client.send(new PutObjectCommand({ ...ifNoneMatch, ...refused }))).rejects.toMatchObject({
        name: 'AccessDenied',
      });
      await expect(intakeText(refused.Key)).rejects.toThrow();
    }
    // The standard class, said or not, and the bucket's own encryption pass.
    await client.send(
      new PutObjectCommand({ ...ifNoneMatch, Key: 'incoming/std.tgz', StorageClass: 'STANDARD' }),
    );
    await client.send(
      new PutObjectCommand({ ...ifNoneMatch, Key: 'incoming/sse.tgz', ServerSideEncryption: 'AES256' }),
    );
    expect(await intakeText('incoming/std.tgz')).toBe('archived');
    expect(await intakeText('incoming/sse.tgz')).toBe('archived');
    for (const Key of ['incoming/std.tgz', 'incoming/sse.tgz'])
      await s3.client.send(new DeleteObjectCommand({ Bucket: INTAKE, Key }));
    client.destroy();
  });

  it('refuses a folder marker (a key ending in /), and takes an upload in a folder', async () => {
    // An empty object named like a folder is no upload: the function passed it over and left it in
    // incoming/, and each was a message that woke it for nothing.
    const client = publisher();
    for (const Key of ['incoming/', 'incoming/x/', 'incoming/a/b/', 'incoming/x.tgz/']) {
      await expect(
        client.send(new PutObjectCommand({ Bucket: INTAKE, Key, Body: new Uint8Array(), IfNoneMatch: '*' })),
      ).rejects.toMatchObject({ name: 'AccessDenied' });
      expect(gate.refused).toContain(`s3:PutObject ${INTAKE}/${Key}`);
    }
    const store = new S3Store({ client, bucket: INTAKE });
    await store.put('incoming/x/in-a-folder.tgz', encode('mine'), { ...put, createOnly: true });
    expect(await intakeText('incoming/x/in-a-folder.tgz')).toBe('mine');
    await s3.client.send(new DeleteObjectCommand({ Bucket: INTAKE, Key: 'incoming/x/in-a-folder.tgz' }));
    client.destroy();
  });

  it('fails STORE_EXISTS where an upload waits under the key, leaving it as it was', async () => {
    await s3.client.send(
      new PutObjectCommand({ Bucket: INTAKE, Key: 'incoming/taken.tgz', Body: encode('first') }),
    );
    Object.assign(process.env, LOCAL_S3_ENV);
    const error = await submitToBucket({
      bucket: INTAKE,
      key: 'incoming/taken.tgz',
      body: { bytes: encode('second') },
      contentType: 'application/gzip',
      outcomeKeys: () => ['status/never.json'],
      timeoutSeconds: 0,
      endpoint: gate.endpoint,
      log: () => {},
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect(error).toMatchObject({ code: 'STORE_EXISTS', key: 'incoming/taken.tgz' });
    expect(await intakeText('incoming/taken.tgz')).toBe('first');
  });

  it('sends an upload S3 answers a race 409 again, from the file opened again', async () => {
    // S3 answers a conditional write that raced another request on the key 409 ConditionalRequestConflict,
    // and says to retry: the upload failed STORE_IO. The stream read for the first attempt is spent, so the
    // second must read the file again (sent from the spent stream, it would put an empty object).
    Object.assign(process.env, LOCAL_S3_ENV);
    const work = await mkdtemp(path.join(tmpdir(), 'plugindex-raced-'));
    try {
      const file = path.join(work, 'raced.tgz');
      await writeFile(file, 'the bundle');
      gate.races.set(`${INTAKE}/incoming/raced.tgz`, 2);
      gate.refused.length = 0;
      const { outcome } = await submitToBucket({
        bucket: INTAKE,
        key: 'incoming/raced.tgz',
        body: { file },
        contentType: 'application/gzip',
        outcomeKeys: () => ['status/never.json'],
        timeoutSeconds: 0,
        endpoint: gate.endpoint,
        log: () => {},
      });
      expect(outcome).toBeUndefined();
      expect(gate.refused.filter((line) => line.startsWith('409'))).toHaveLength(2);
      expect(await intakeText('incoming/raced.tgz')).toBe('the bundle');
    } finally {
      gate.races.clear();
      await s3.client.send(new DeleteObjectCommand({ Bucket: INTAKE, Key: 'incoming/raced.tgz' }));
      await rm(work, { recursive: true, force: true });
    }
  });

  it('publishes with `plugindex publish --bucket`, through the policy', async () => {
    Object.assign(process.env, LOCAL_S3_ENV);
    const work = await mkdtemp(path.join(tmpdir(), 'plugindex-publisher-'));
    try {
      const file = path.join(work, 'gated.tgz');
      await writeFile(file, await makeBundle({ manifest: validManifest({ name: 'gated-plugin' }) }));
      const handler = await localPublishHandler(s3, INTAKE, SITE);
      let done = false;
      const cli = main([
        'publish',
        file,
        '--bucket',
        INTAKE,
        '--endpoint',
        gate.endpoint,
        '--timeout',
        '20',
      ]).finally(() => {
        done = true;
      });
      while (!done) {
        await handler({});
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(await cli).toBe(0);
      expect(
        await new S3Store({ client: s3.client, bucket: SITE }).head('plugins/gated-plugin/index.json'),
      ).toBeDefined();
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });

  // The AWS CLI .ci/run installs (Debian's), not whichever one comes first on this machine's PATH.
  it("takes the README's AWS CLI upload (put-object --if-none-match) and outcome read (its exact key), and refuses `aws s3 cp` up, and a listing of status/", async () => {
    const work = await mkdtemp(path.join(tmpdir(), 'plugindex-awscli-'));
    const aws = (args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(
          '/usr/bin/aws',
          [...args, '--endpoint-url', gate.endpoint, '--region', 'us-east-1'],
          { env: { ...process.env, ...LOCAL_S3_ENV } },
          (error, stdout, stderr) =>
            resolve({ code: error ? ((error.code as number) ?? 1) : 0, stdout, stderr }),
        );
      });
    try {
      const file = path.join(work, 'cli.tgz');
      await writeFile(file, 'from the aws cli');
      const copied = await aws(['s3', 'cp', file, `s3://${INTAKE}/incoming/copied.tgz`]);
      expect(copied.code).not.toBe(0);
      expect(copied.stderr).toMatch(/AccessDenied/);
      const put = await aws([
        's3api',
        'put-object',
        '--bucket',
        INTAKE,
        '--key',
        'incoming/cli.tgz',
        '--body',
        file,
        '--if-none-match',
        '*',
      ]);
      if (/Unknown options: --if-none-match/.test(put.stderr)) {
        // An AWS CLI from before S3's conditional writes (Debian 12's 2.9) refuses the option itself, as the
        // README says, and sends nothing.
        expect(put.code).not.toBe(0);
        await expect(intakeText('incoming/cli.tgz')).rejects.toMatchObject({ name: 'NoSuchKey' });
      } else {
        expect(put).toMatchObject({ code: 0 });
        expect(await intakeText('incoming/cli.tgz')).toBe('from the aws cli');
      }
      // The README's outcome read: its exact key, `<name>-<first 12 hex of sha256sum>` (the id the function
      // gives it), which the policy lets a publisher read; the recursive copy it gave before lists status/,
      // which the policy refuses.
      const id = submissionIdFromDigest('incoming/cli.tgz', sha256Hex(encode('from the aws cli')));
      const sha256sum = createHash('sha256').update('from the aws cli').digest('hex');
      expect(id).toBe(`cli-${sha256sum.slice(0, 12)}`);
      await s3.client.send(
        new PutObjectCommand({ Bucket: INTAKE, Key: statusKey(id), Body: encode('{"status":"accepted"}') }),
      );
      const outcome = await aws(['s3', 'cp', `s3://${INTAKE}/${statusKey(id)}`, '-']);
      expect(outcome).toMatchObject({ code: 0, stdout: '{"status":"accepted"}' });
      const listed = await aws([
        's3',
        'cp',
        `s3://${INTAKE}/status/`,
        work,
        '--recursive',
        '--exclude',
        '*',
        '--include',
        'cli-*.json',
      ]);
      expect(listed.code).not.toBe(0);
      expect(listed.stderr).toMatch(/AccessDenied/);
      await s3.client.send(new DeleteObjectCommand({ Bucket: INTAKE, Key: statusKey(id) }));
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }, 60_000);
});

describe("when CloudFront reads the site through the distribution's origin access control", () => {
  it('reads a document, and a document not published as missing (404), as the clients need', async () => {
    const cloudFront = await startS3Gate(s3, cloudFrontStatements, { 'AWS:SourceArn': distributionArn });
    const client = new S3Client({ ...s3.config, endpoint: cloudFront.endpoint });
    try {
      const site = new S3Store({ client, bucket: SITE });
      await s3.client.send(
        new PutObjectCommand({ Bucket: SITE, Key: 'keys/rotation/1.json', Body: encode('{}') }),
      );
      expect((await site.get('keys/rotation/1.json'))?.body).toEqual(encode('{}'));
      // A client following key rotations reads keys/rotation/<n>.json until one is not there: S3 answered a
      // principal without s3:ListBucket 403 for it, CloudFront passed that on, and the client (a 403 is no
      // "missing") failed to follow any rotation. A plugin that does not exist was a 403 too.
      expect(await site.get('keys/rotation/2.json')).toBeUndefined();
      expect(await site.head('plugins/no-such-plugin/index.json')).toBeUndefined();
      expect(cloudFront.refused).toEqual([]);
    } finally {
      client.destroy();
      await cloudFront.close();
    }
  });
});
