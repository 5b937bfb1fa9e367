/**
 * Publishing as an operator would, with the AWS CLI (Debian's awscli, installed by .ci/run): upload a
 * bundle to incoming/, let the publish function run, read the outcome back from status/. Against s3rver.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { DeleteObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { submissionIdFromBytes } from '../../index-builder/layout.ts';
import { encode, makeBundle, validManifest } from '../support/fixtures.ts';
import { type LocalS3, localPublishHandler, startLocalS3 } from '../support/s3.ts';
import { S3_ANSWERS, startS3ObjectErrors } from '../support/s3-object-errors.ts';

const run = promisify(execFile);
const AWS = '/usr/bin/aws';
let s3: LocalS3;
let work: string;

beforeAll(async () => {
  s3 = await startLocalS3(['cli-intake', 'cli-site']);
  work = await mkdtemp(path.join(tmpdir(), 'plugindex-awscli-'));
  await s3.client.send(
    new PutObjectCommand({
      Bucket: 'cli-intake',
      Key: 'config/plugindex.json',
      Body: encode(JSON.stringify({ name: 'CLI', url: 'https://plugins.example.com' })),
    }),
  );
});
afterAll(async () => {
  await s3?.close();
  await rm(work, { recursive: true, force: true });
});

const env = {
  ...process.env,
  AWS_ACCESS_KEY_ID: 'S3RVER',
  AWS_SECRET_ACCESS_KEY: 'S3RVER',
  AWS_DEFAULT_REGION: 'us-east-1',
  AWS_PAGER: '',
};
const aws = async (...args: string[]): Promise<string> =>
  (await run(AWS, ['--endpoint-url', s3.endpoint, ...args], { env })).stdout;

describe('when an operator uploads with the AWS CLI', () => {
  it('publishes the bundle and the outcome can be read back with the CLI', async () => {
    const bytes = await makeBundle({ manifest: validManifest({ name: 'cli-plugin' }) });
    const file = path.join(work, 'cli-plugin.tgz');
    await writeFile(file, bytes);
    await aws('s3', 'cp', file, 's3://cli-intake/incoming/cli-plugin.tgz');

    const handler = await localPublishHandler(s3, 'cli-intake', 'cli-site');
    const result = await handler({});
    expect(result.outcomes.map((o) => o.status)).toEqual(['accepted']);

    const outcome = JSON.parse(
      await aws(
        's3',
        'cp',
        `s3://cli-intake/status/${submissionIdFromBytes('incoming/cli-plugin.tgz', bytes)}.json`,
        '-',
      ),
    ) as { status: string; plugin: string };
    expect(outcome).toMatchObject({ status: 'accepted', plugin: 'cli-plugin' });
    expect(await aws('s3', 'ls', 's3://cli-site/plugins/cli-plugin/')).toContain('index.json');
  });

  it("reads the outcome of an upload the function cannot read by README's recipe: its key and its ETag", async () => {
    // Prepare: the function reads through a mock answering the upload's GET as S3 answers an archived object.
    const mock = await startS3ObjectErrors(s3, (object) =>
      object === 'cli-intake/incoming/unread.tgz' ? S3_ANSWERS.archived : undefined,
    );
    const client = new S3Client({ ...s3.config, endpoint: mock.endpoint });
    const file = path.join(work, 'unread.tgz');
    await writeFile(file, await makeBundle({ manifest: validManifest({ name: 'unread-plugin' }) }));
    try {
      // Act: README's commands (this CLI predates --if-none-match, which the policy asks for on AWS).
      const sh = async (script: string) =>
        (await run('bash', ['-c', script], { env: { ...env, E: s3.endpoint, FILE: file } })).stdout;
      const etag = (
        await sh(
          'aws --endpoint-url "$E" s3api put-object --bucket cli-intake --key incoming/unread.tgz --body "$FILE" --query ETag --output text',
        )
      ).trim();
      const result = await (await localPublishHandler(s3, 'cli-intake', 'cli-site', client))({});
      const outcome = JSON.parse(
        await sh(
          `etag='${etag}'; aws --endpoint-url "$E" s3 cp s3://cli-intake/status/unread-$(printf 'unreadable\\0incoming/unread.tgz\\0%s' "\${etag//\\"/}" | sha256sum | cut -c1-12).json -`,
        ),
      ) as { status: string; problems: { code: string }[] };

      // Assess
      expect(result.outcomes.map((o) => o.problems[0]?.code)).toEqual(['UPLOAD_UNREADABLE']);
      expect(outcome).toMatchObject({ status: 'rejected', problems: [{ code: 'UPLOAD_UNREADABLE' }] });
    } finally {
      client.destroy();
      await mock.close();
      await s3.client.send(new DeleteObjectCommand({ Bucket: 'cli-intake', Key: 'incoming/unread.tgz' }));
    }
  });
});
