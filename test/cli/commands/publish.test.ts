/**
 * `plugindex publish --bucket`: upload to a deployed registry and wait for the outcome. The publish function
 * runs meanwhile against the same S3 protocol server (s3rver on 127.0.0.1), as the queue would trigger it.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Store } from '../../../adapters/s3-store.ts';
import { main } from '../../../cli/main.ts';
import type { SubmissionOutcome } from '../../../index-builder/pipeline/index.ts';
import { listAll } from '../../../index-builder/store.ts';
import { plugindex, plugindexProcess } from '../../support/cli.ts';
import { encode, makeBundle, validManifest } from '../../support/fixtures.ts';
import { LOCAL_S3_ENV, type LocalS3, localPublishHandler, startLocalS3 } from '../../support/s3.ts';
import { startS3Gate } from '../../support/s3-gate.ts';
import { startS3LostAnswers } from '../../support/s3-lost-answers.ts';
import { S3_ANSWERS, startS3ObjectErrors } from '../../support/s3-object-errors.ts';

let s3: LocalS3;
let work: string;

beforeAll(async () => {
  s3 = await startLocalS3(['rp-intake', 'rp-site']);
  work = await mkdtemp(path.join(tmpdir(), 'plugindex-remote-'));
  // The credentials and checksum setting the CLI's S3 client reads from the environment, as with AWS.
  Object.assign(process.env, LOCAL_S3_ENV);
  await s3.client.send(
    new PutObjectCommand({
      Bucket: 'rp-intake',
      Key: 'config/plugindex.json',
      Body: encode(JSON.stringify({ name: 'Remote', url: 'https://plugins.example.com' })),
    }),
  );
});

afterAll(async () => {
  await s3?.close();
  await rm(work, { recursive: true, force: true });
});

async function publishWhileTheFunctionRuns<T = number>(
  args: string[],
  options: {
    readonly handler?: (event: unknown) => Promise<unknown>;
    readonly run?: (argv: string[]) => Promise<T>;
  } = {},
): Promise<T> {
  const handler = options.handler ?? (await localPublishHandler(s3, 'rp-intake', 'rp-site'));
  const run = options.run ?? ((argv: string[]) => main(argv) as Promise<T>);
  let done = false;
  const cli = run(args).finally(() => {
    done = true;
  });
  while (!done) {
    await handler({});
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return cli;
}

describe('when a publisher publishes to a deployed registry', () => {
  it('uploads to incoming/, waits for the outcome, and exits 0 once accepted', async () => {
    const file = path.join(work, 'remote.tgz');
    await writeFile(file, await makeBundle({ manifest: validManifest({ name: 'remote-plugin' }) }));
    const code = await publishWhileTheFunctionRuns([
      'publish',
      file,
      '--bucket',
      'rp-intake',
      '--endpoint',
      s3.endpoint,
      '--timeout',
      '20',
    ]);
    expect(code).toBe(0);
    expect(
      await new S3Store({ client: s3.client, bucket: 'rp-site' }).head('plugins/remote-plugin/index.json'),
    ).toBeDefined();
  });

  it('exits 1 when the registry rejects the submission', async () => {
    const file = path.join(work, 'broken.tgz');
    await writeFile(file, 'not a bundle');
    const code = await publishWhileTheFunctionRuns([
      'publish',
      file,
      '--bucket',
      'rp-intake',
      '--endpoint',
      s3.endpoint,
      '--timeout',
      '20',
    ]);
    expect(code).toBe(1);
  });

  it('finds the outcome of an upload the registry cannot read (UPLOAD_UNREADABLE), and exits 1', async () => {
    // Prepare: the function reads through a mock answering each upload's GET as S3 answers an archived object
    // (a lifecycle rule moved it to GLACIER): no bytes, so its outcome is named by its key, not its digest.
    const archived = (object: string) =>
      object.startsWith('rp-intake/incoming/') ? S3_ANSWERS.archived : undefined;
    const mock = await startS3ObjectErrors(s3, archived);
    const client = new S3Client({ ...s3.config, endpoint: mock.endpoint });
    const intake = new S3Store({ client: s3.client, bucket: 'rp-intake' });
    try {
      const handler = await localPublishHandler(s3, 'rp-intake', 'rp-site', client);
      const file = path.join(work, 'archived.tgz');
      await writeFile(file, await makeBundle({ manifest: validManifest({ name: 'archived-plugin' }) }));

      // Act: the command as a publisher runs it, waiting for the outcome.
      const { code, stdout } = await publishWhileTheFunctionRuns(
        ['publish', file, '--bucket', 'rp-intake', '--endpoint', s3.endpoint, '--timeout', '15', '--json'],
        { handler, run: (argv) => plugindex(...argv) },
      );

      // Assess: the outcome the function recorded, found and printed (at its timeout the command prints none).
      expect(code).toBe(1);
      const outcome = JSON.parse(stdout) as SubmissionOutcome;
      expect(outcome).toMatchObject({
        status: 'rejected',
        problems: [{ code: 'UPLOAD_UNREADABLE', found: 'InvalidObjectState' }],
      });
      expect(outcome.submission_sha256).toBeUndefined();
      expect(outcome.submission).toMatch(/^incoming\/.*-archived\.tgz$/);
    } finally {
      client.destroy();
      await mock.close();
      // It stays in incoming/ (nothing can read it): gone, so the other tests' function does not publish it.
      for (const { key } of await listAll(intake, 'incoming/')) await intake.delete(key);
    }
  });

  it('refuses --registry and --bucket together, as a usage error', async () => {
    expect(await main(['publish', 'x.tgz', '--registry', work, '--bucket', 'rp-intake'])).toBe(2);
  });
});

describe("when S3's answer to the upload is lost, and the SDK sends it again", () => {
  it('takes the object its retry met under its own key for its upload, waits for the outcome, and exits 0', async () => {
    // Prepare: the command reaches S3 through the gate that answers If-None-Match as S3 does (s3rver ignores
    // it), behind a proxy that lets the first upload under incoming/ be done, then loses its answer.
    const gate = await startS3Gate(s3, [
      { effect: 'Allow', actions: ['s3:*'], resources: ['*'], conditions: {} },
    ]);
    const lost = await startS3LostAnswers(s3, gate.endpoint);
    lost.lose.add('PUT /rp-intake/incoming/*');
    const file = path.join(work, 'answer-lost.tgz');
    await writeFile(file, await makeBundle({ manifest: validManifest({ name: 'answer-lost-plugin' }) }));
    try {
      // Act
      const { code, stdout, stderr } = await publishWhileTheFunctionRuns(
        ['publish', file, '--bucket', 'rp-intake', '--endpoint', lost.endpoint, '--timeout', '20', '--json'],
        { run: (argv) => plugindex(...argv) },
      );

      // Assess: the upload was done and its answer lost; the SDK's second attempt met it (412).
      expect(lost.lose.size).toBe(0);
      expect(gate.refused).toEqual([expect.stringMatching(/^412 rp-intake\/incoming\/.*-answer-lost\.tgz$/)]);
      expect(stderr).toMatch(/answer .* lost/);
      expect(code).toBe(0);
      expect(JSON.parse(stdout) as SubmissionOutcome).toMatchObject({
        status: 'accepted',
        plugin: 'answer-lost-plugin',
      });
    } finally {
      await lost.close();
      await gate.close();
    }
  });
  it('finds the outcome of that upload judged unread (UPLOAD_UNREADABLE), its ETag computed from the bytes sent', async () => {
    // Prepare: the upload's answer (the ETag that names an unread upload's outcome) is lost, and the function
    // reads incoming/ through a mock answering as S3 does for an archived object.
    const gate = await startS3Gate(s3, [
      { effect: 'Allow', actions: ['s3:*'], resources: ['*'], conditions: {} },
    ]);
    const lost = await startS3LostAnswers(s3, gate.endpoint);
    lost.lose.add('PUT /rp-intake/incoming/*');
    const archived = (object: string) =>
      object.startsWith('rp-intake/incoming/') ? S3_ANSWERS.archived : undefined;
    const mock = await startS3ObjectErrors(s3, archived);
    const client = new S3Client({ ...s3.config, endpoint: mock.endpoint });
    const intake = new S3Store({ client: s3.client, bucket: 'rp-intake' });
    const file = path.join(work, 'lost-archived.tgz');
    await writeFile(file, await makeBundle({ manifest: validManifest({ name: 'lost-archived-plugin' }) }));
    try {
      const handler = await localPublishHandler(s3, 'rp-intake', 'rp-site', client);

      // Act
      const { code, stdout } = await publishWhileTheFunctionRuns(
        ['publish', file, '--bucket', 'rp-intake', '--endpoint', lost.endpoint, '--timeout', '15', '--json'],
        { handler, run: (argv) => plugindex(...argv) },
      );

      // Assess: the answer was lost, and the outcome recorded by the key and ETag found all the same.
      expect(lost.lose.size).toBe(0);
      expect(gate.refused).toEqual([
        expect.stringMatching(/^412 rp-intake\/incoming\/.*-lost-archived\.tgz$/),
      ]);
      expect(code).toBe(1);
      expect(JSON.parse(stdout) as SubmissionOutcome).toMatchObject({
        status: 'rejected',
        problems: [{ code: 'UPLOAD_UNREADABLE', found: 'InvalidObjectState' }],
      });
    } finally {
      client.destroy();
      await mock.close();
      await lost.close();
      await gate.close();
      for (const { key } of await listAll(intake, 'incoming/')) await intake.delete(key);
    }
  });
});

describe('when no outcome is recorded in time and --json is asked', () => {
  it('prints the failure as JSON, OUTCOME_TIMEOUT naming the status keys to read later, exit 1', async () => {
    // Prepare: no publish function runs, so the outcome never comes.
    const file = path.join(work, 'unanswered.tgz');
    await writeFile(file, await makeBundle({ manifest: validManifest({ name: 'unanswered-plugin' }) }));

    // Act: the built command, as a program runs it.
    const result = await plugindexProcess(
      ['publish', file, '--bucket', 'rp-intake', '--endpoint', s3.endpoint, '--timeout', '0', '--json'],
      { cwd: work },
    );

    // Assess: stdout was empty; now the failure every --json command prints, and where to look later.
    expect(result.code, result.stderr).toBe(1);
    const failure = JSON.parse(result.stdout) as {
      ok: boolean;
      error: { code: string; message: string; bucket: string; upload_key: string; status_keys: string[] };
    };
    expect(failure.ok).toBe(false);
    expect(failure.error).toMatchObject({ code: 'OUTCOME_TIMEOUT', bucket: 'rp-intake' });
    expect(failure.error.upload_key).toMatch(/^incoming\//);
    expect(failure.error.status_keys.length).toBeGreaterThan(0);
    for (const key of failure.error.status_keys) expect(key).toMatch(/^status\/.+\.json$/);
    expect(result.stderr).toContain('OUTCOME_TIMEOUT');
    // The upload waits for the function: it is taken at the next run, as the queue would deliver it.
    expect(await listAll(new S3Store({ client: s3.client, bucket: 'rp-intake' }), 'incoming/')).toHaveLength(
      1,
    );
    await (await localPublishHandler(s3, 'rp-intake', 'rp-site'))({});
  });
});
