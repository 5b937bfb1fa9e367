/**
 * The publish function's deployed role against what the function does with it: its S3 requests, to a local
 * S3 server, each checked first by a stand-in for IAM (a mock: IAM cannot run here) that allows exactly
 * what the synthesized role's policy allows, by action and by bucket folder. A write the pipeline makes and
 * the role refuses fails on AWS after the work before it is done (outcomes recorded, documents pending):
 * every later delivery of the message meets it again.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REFRESH_REQUEST, rebuildMessage } from '../../adapters/publish-queue.ts';
import { bundleFunctions } from '../../infra/bundle-functions.ts';
import { PlugindexStack } from '../../infra/stack.ts';
import { encode, makeBundle, validManifest } from '../support/fixtures.ts';
import { type LocalS3, localPublishHandler, startLocalS3 } from '../support/s3.ts';

const INTAKE = 'role-intake';
const SITE = 'role-site';

/** One Allow statement of the role, as patterns: `s3:GetObject*`, and `<bucket>/<key pattern>`. */
interface Grant {
  readonly actions: readonly string[];
  readonly resources: readonly string[];
}

let s3: LocalS3;
let grants: Grant[];
let functionsDir: string;

/** The synthesized role's S3 grants, its buckets named as the local server's. */
function publishGrants(template: Template): Grant[] {
  const bucketOf = (id: string): string | undefined =>
    id.startsWith('StorageUploads') ? INTAKE : id.startsWith('StorageSite') ? SITE : undefined;
  const resourceOf = (resource: unknown): string | undefined => {
    const arn = (value: unknown) => (value as { 'Fn::GetAtt'?: [string, string] })['Fn::GetAtt']?.[0];
    const joined = (resource as { 'Fn::Join'?: [string, unknown[]] })['Fn::Join'];
    if (!joined) {
      const id = arn(resource);
      return id && bucketOf(id);
    }
    const [first, rest] = joined[1] as [unknown, string];
    const bucket = bucketOf(arn(first) ?? '');
    return bucket && `${bucket}${rest}`;
  };
  return Object.entries(template.findResources('AWS::IAM::Policy'))
    .filter(([id]) => id.startsWith('PublishingPublish'))
    .flatMap(
      ([, policy]) =>
        policy.Properties.PolicyDocument.Statement as {
          Effect: string;
          Action: string | string[];
          Resource: unknown;
        }[],
    )
    .filter((statement) => statement.Effect === 'Allow')
    .map((statement) => ({
      actions: [statement.Action].flat(),
      resources: [statement.Resource]
        .flat()
        .map(resourceOf)
        .filter((r): r is string => r !== undefined),
    }))
    .filter((grant) => grant.resources.length > 0);
}

/** IAM's wildcard: `*` matches any run of characters. */
function matches(pattern: string, value: string): boolean {
  const source = pattern
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${source}$`).test(value);
}

function allowed(action: string, resource: string): boolean {
  return grants.some(
    (grant) =>
      grant.actions.some((pattern) => matches(pattern, action)) &&
      grant.resources.some((pattern) => matches(pattern, resource)),
  );
}

/** The IAM actions an SDK command needs, on what (S3's documented mapping, for the commands the stores send). */
function needs(
  command: string,
  input: { Bucket?: string; Key?: string; IfMatch?: string },
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
      const input = args.input as { Bucket?: string; Key?: string; IfMatch?: string };
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
  const app = new App();
  const stack = new PlugindexStack(app, 'Role', { functionsDir });
  grants = publishGrants(Template.fromStack(stack));
  s3 = await startLocalS3([INTAKE, SITE]);
  await s3.client.send(
    new PutObjectCommand({
      Bucket: INTAKE,
      Key: 'config/plugindex.json',
      Body: encode(JSON.stringify({ name: 'Role Registry', url: 'https://plugins.example.com' })),
    }),
  );
}, 120_000);

afterAll(async () => {
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
});
