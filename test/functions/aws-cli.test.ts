/**
 * Publishing as an operator would, with the AWS CLI (Debian's awscli, installed by .ci/run): upload a
 * bundle to incoming/, let the publish function run, read the outcome back from status/. Against s3rver.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { submissionIdFromBytes } from '../../index-builder/layout.ts';
import { encode, makeBundle, validManifest } from '../support/fixtures.ts';
import { type LocalS3, localPublishHandler, startLocalS3 } from '../support/s3.ts';

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
});
