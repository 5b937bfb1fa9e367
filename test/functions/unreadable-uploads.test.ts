/**
 * An upload the publish function cannot read, put outside the publisher policy (an operator, a replication
 * rule, a lifecycle transition to GLACIER): S3 answers its GET 403 InvalidObjectState (archived), 400
 * InvalidRequest (SSE-C, read without the key) or 403 AccessDenied naming kms:Decrypt (a KMS key the role may
 * not use). Run on s3rver, through a mock of those answers (support/s3-object-errors.ts), which s3rver cannot
 * give: the SDK reads them from the wire as it reads S3's.
 */
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import {
  ChangeMessageVisibilityBatchCommand,
  SendMessageCommand,
  SQSClient,
  SQSServiceException,
} from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  ANNOUNCED_AGAIN_ATTRIBUTE,
  MAX_ANNOUNCEMENTS_AGAIN,
  PUBLISH_MAX_RECEIVES,
  PUBLISH_MESSAGE_GROUP,
} from '../../adapters/publish-queue.ts';
import { S3Store } from '../../adapters/s3-store.ts';
import { publishResponse } from '../../functions/handlers.ts';
import { type LogFields, UPLOAD_NOT_ANNOUNCED_LOG } from '../../functions/logger.ts';
import { VISIBILITY_NOT_CHANGED_LOG } from '../../functions/message-visibility.ts';
import { sha256Hex } from '../../index-builder/digest.ts';
import { StoreError } from '../../index-builder/errors.ts';
import { statusKey, submissionIdFromDigest, unreadableSubmissionId } from '../../index-builder/layout.ts';
import type { SubmissionOutcome } from '../../index-builder/pipeline/index.ts';
import { listAll } from '../../index-builder/store.ts';
import { encode, makeBundle, validManifest } from '../support/fixtures.ts';
import { type LocalS3, localPublishHandler, objectCreatedRecord, startLocalS3 } from '../support/s3.ts';
import { S3_ANSWERS, type S3ErrorAnswer, startS3ObjectErrors } from '../support/s3-object-errors.ts';

let s3: LocalS3;
let pair = 0;

beforeAll(async () => {
  s3 = await startLocalS3(Array.from({ length: 28 }, (_, i) => [`un-intake-${i}`, `un-site-${i}`]).flat());
});

afterAll(async () => {
  await s3?.close();
});

/** A fresh pair of buckets with a config object, and the publish function reading them through the mock. */
async function registry(
  answers: Record<string, S3ErrorAnswer>,
  options: {
    maxBatchBytes?: number;
    maxCompressedBytes?: number;
    maxBatchUploads?: number;
    sqs?: SQSClient;
    queueUrl?: string;
  } = {},
) {
  const intake = `un-intake-${pair}`;
  const site = `un-site-${pair}`;
  pair += 1;
  await s3.client.send(
    new PutObjectCommand({
      Bucket: intake,
      Key: 'config/plugindex.json',
      Body: encode(JSON.stringify({ name: 'Unreadable Registry', url: 'https://plugins.example.com' })),
    }),
  );
  // Read by the mock at each request: a test deletes an entry once S3 would read the object (restored).
  const mockAnswers = new Map(Object.entries(answers).map(([key, answer]) => [`${intake}/${key}`, answer]));
  const mock = await startS3ObjectErrors(s3, mockAnswers);
  const client = new S3Client({ ...s3.config, endpoint: mock.endpoint });
  // The function's log, as CloudWatch would keep it: each entry's message and fields.
  const logged: { level: string; message: string; fields: LogFields }[] = [];
  const entry =
    (level: string) =>
    (message: string, fields: LogFields = {}) => {
      logged.push({ level, message, fields });
    };
  const logger = { info: entry('info'), warn: entry('warn'), error: entry('error') };
  const handler = await localPublishHandler(s3, intake, site, client, { ...options, logger });
  const store = new S3Store({ client: s3.client, bucket: intake });
  const put = async (key: string, body: Uint8Array) =>
    s3.client.send(new PutObjectCommand({ Bucket: intake, Key: key, Body: body }));
  const keys = async (prefix: string) => (await listAll(store, prefix)).map((o) => o.key).sort();
  return {
    intake,
    store,
    mock,
    /** The function's S3 client (through the mock). */
    client,
    /** The mock answers a GET of `key` as S3 reads it from now on. */
    readable: (key: string) => mockAnswers.delete(`${intake}/${key}`),
    handler,
    logged,
    put,
    keys,
    close: async () => {
      client.destroy();
      await mock.close();
    },
  };
}

const bundle = (name: string) => makeBundle({ manifest: validManifest({ name, version: '1.0.0' }) });
const byKey = (outcomes: readonly SubmissionOutcome[]) =>
  [...outcomes].sort((a, b) => (a.submission < b.submission ? -1 : 1));

describe('when an upload in the batch cannot be read for good', () => {
  it.each([
    ['archived (GLACIER)', S3_ANSWERS.archived, /InvalidObjectState \(HTTP 403\)/, /restore/i],
    [
      'encrypted with a key of its own (SSE-C)',
      S3_ANSWERS.customerKey,
      /InvalidRequest \(HTTP 400\)/,
      /copy/i,
    ],
    [
      'encrypted with a KMS key the function may not use',
      S3_ANSWERS.foreignKms,
      /AccessDenied \(HTTP 403\)/,
      /kms:Decrypt/,
    ],
  ])(
    'records it rejected (UPLOAD_UNREADABLE), leaves it in incoming/, and publishes the rest: %s',
    async (_, answer, code, todo) => {
      const r = await registry({ 'incoming/b-unreadable.tgz': answer });
      try {
        const unreadable = await bundle('unreadable-plugin');
        await r.put('incoming/a-first.tgz', await bundle('first-plugin'));
        await r.put('incoming/b-unreadable.tgz', unreadable);
        await r.put('incoming/c-last.tgz', await bundle('last-plugin'));

        const result = await r.handler({});

        expect(r.mock.answered).toEqual([`${r.intake}/incoming/b-unreadable.tgz ${answer.code}`]);
        const outcomes = byKey(result.outcomes);
        expect(outcomes.map((o) => [o.submission, o.status])).toEqual([
          ['incoming/a-first.tgz', 'accepted'],
          ['incoming/b-unreadable.tgz', 'rejected'],
          ['incoming/c-last.tgz', 'accepted'],
        ]);
        const rejected = outcomes[1] as SubmissionOutcome;
        expect(rejected.problems).toEqual([
          expect.objectContaining({
            code: 'UPLOAD_UNREADABLE',
            message: 'the registry cannot read this upload, which stays in incoming/ until it can',
            found: answer.code,
            expected: expect.stringMatching(todo),
          }),
        ]);
        // S3's message, the bucket's name, are the operator's: in the function's log, never in the outcome.
        expect(rejected.problems[0]?.message).not.toContain(r.intake);
        expect(r.logged.filter((l) => l.message === 'submission failed')).toEqual([
          {
            level: 'error',
            message: 'submission failed',
            fields: expect.objectContaining({
              submission: rejected.id,
              key: 'incoming/b-unreadable.tgz',
              code: 'UPLOAD_UNREADABLE',
              error: expect.objectContaining({
                code: 'STORE_UNREADABLE',
                message: expect.stringMatching(
                  new RegExp(`^cannot read s3://${r.intake}/incoming/b-unreadable\\.tgz: ${code.source}`),
                ),
              }),
            }),
          },
        ]);
        // No bytes were read: the record names none.
        expect(rejected.submission_sha256).toBeUndefined();
        // Its outcome is recorded where every outcome is; the upload stays where it was, as it was (nothing
        // can copy it to rejected/: S3 answers a copy of it as it answers the GET), for the operator to mend.
        const recorded = JSON.parse(
          new TextDecoder().decode((await r.store.get(`status/${rejected.id}.json`))?.body),
        ) as SubmissionOutcome;
        expect(recorded).toMatchObject({ status: 'rejected', problems: [{ code: 'UPLOAD_UNREADABLE' }] });
        expect(JSON.stringify(recorded)).not.toContain(r.intake);
        expect(await r.keys('incoming/')).toEqual(['incoming/b-unreadable.tgz']);
        expect((await r.store.get('incoming/b-unreadable.tgz'))?.body).toEqual(unreadable);
        expect(await r.keys('rejected/')).toEqual([]);
        expect(await r.keys('processed/')).toHaveLength(2);
      } finally {
        await r.close();
      }
    },
  );

  it('publishes it once it can be read (restored, or copied with the bucket encryption), as any upload', async () => {
    const r = await registry({ 'incoming/archived.tgz': S3_ANSWERS.archived });
    try {
      await r.put('incoming/archived.tgz', await bundle('archived-plugin'));
      const first = await r.handler({});
      expect(first.outcomes.map((o) => [o.status, o.problems[0]?.code])).toEqual([
        ['rejected', 'UPLOAD_UNREADABLE'],
      ]);
      // Met again by the next batch (it waits in incoming/): recorded again, under the same id.
      const again = await r.handler({});
      expect(again.outcomes.map((o) => o.id)).toEqual(first.outcomes.map((o) => o.id));
      // Restored: the next batch reads it.
      r.readable('incoming/archived.tgz');
      const restored = await r.handler({});
      expect(restored.outcomes.map((o) => [o.plugin, o.status])).toEqual([['archived-plugin', 'accepted']]);
      expect(await r.keys('incoming/')).toEqual([]);
    } finally {
      await r.close();
    }
  });
});

describe('when a publisher guesses the key of an upload the function judges unread', () => {
  it.each([
    ['it cannot read (UPLOAD_UNREADABLE)', 'UPLOAD_UNREADABLE', 20],
    ['too large to stream (BUNDLE_TOO_LARGE)', 'BUNDLE_TOO_LARGE', 20_000],
  ])(
    'records its outcome where only its uploader looks, by its key and the ETag S3 answered it with: %s',
    async (_, code, size) => {
      // Prepare: an upload the function reads as archived, or one past four times a 4 KiB bundle limit.
      const key = 'incoming/guessable.tgz';
      const r = await registry(code === 'UPLOAD_UNREADABLE' ? { [key]: S3_ANSWERS.archived } : {}, {
        maxCompressedBytes: 4096,
      });
      try {
        const { ETag } = await r.put(key, new Uint8Array(size).fill(7));

        // Act
        const result = await r.handler({});

        // Assess: its outcome is under the name its uploader computes from the key and the PUT's ETag, and
        // not under the one anyone who guesses the key computes (its key alone, as it was).
        expect(result.outcomes.map((o) => [o.submission, o.problems[0]?.code])).toEqual([[key, code]]);
        const byKeyAlone = submissionIdFromDigest(key, sha256Hex(encode(`unreadable\0${key}`)));
        expect(await r.keys('status/')).toEqual([statusKey(unreadableSubmissionId(key, ETag ?? ''))]);
        expect(await r.keys('status/')).not.toContain(statusKey(byKeyAlone));
      } finally {
        await r.close();
      }
    },
  );
});

describe('when the unreadable uploads, the oldest waiting, fill a batch by their bytes', () => {
  it('publishes the uploads behind them in the same invocation, reading each unreadable one once', async () => {
    // Prepare: a batch bound of one byte, so the archived upload, listed first, fills a batch alone (as
    // 512 MiB of archived uploads do on Lambda); two readable uploads behind it.
    const r = await registry({ 'incoming/a-archived.tgz': S3_ANSWERS.archived }, { maxBatchBytes: 1 });
    try {
      await r.put('incoming/a-archived.tgz', await bundle('archived-plugin'));
      await r.put('incoming/b-second.tgz', await bundle('second-plugin'));
      await r.put('incoming/c-third.tgz', await bundle('third-plugin'));

      // Act
      const result = await r.handler({});
      const later = await r.handler({});

      // Assess: the readable ones published, not held behind it round after round; it is read once an
      // invocation, and stays in incoming/ for the operator.
      expect(byKey(result.outcomes).map((o) => [o.submission, o.status, o.problems[0]?.code])).toEqual([
        ['incoming/a-archived.tgz', 'rejected', 'UPLOAD_UNREADABLE'],
        ['incoming/b-second.tgz', 'accepted', undefined],
        ['incoming/c-third.tgz', 'accepted', undefined],
      ]);
      expect(later.outcomes.map((o) => [o.submission, o.status])).toEqual([
        ['incoming/a-archived.tgz', 'rejected'],
      ]);
      expect(r.mock.answered).toEqual([
        `${r.intake}/incoming/a-archived.tgz InvalidObjectState`,
        `${r.intake}/incoming/a-archived.tgz InvalidObjectState`,
      ]);
      expect(await r.keys('incoming/')).toEqual(['incoming/a-archived.tgz']);
    } finally {
      await r.close();
    }
  });
});

describe('when an upload too large to stream is the oldest waiting', () => {
  it('records it once, unread, leaves it in incoming/, and publishes the uploads behind it', async () => {
    // Prepare: a bundle limit of 4 KiB, so an upload past 16 KiB is not streamed (as one past 1 GiB is not
    // on Lambda, where a publisher may upload 5 TB under one key), and a batch bound of one byte.
    const r = await registry({}, { maxBatchBytes: 1, maxCompressedBytes: 4096 });
    try {
      await r.put('incoming/a-huge.tgz', new Uint8Array(20_000).fill(7));
      await r.put('incoming/b-second.tgz', await bundle('second-plugin'));
      await r.put('incoming/c-third.tgz', await bundle('third-plugin'));

      // Act
      const result = await r.handler({});

      // Assess: its outcome recorded once (not again each round), by its key, and nothing copied of it.
      expect(result.outcomes.map((o) => [o.submission, o.status, o.problems[0]?.code]).sort()).toEqual([
        ['incoming/a-huge.tgz', 'rejected', 'BUNDLE_TOO_LARGE'],
        ['incoming/b-second.tgz', 'accepted', undefined],
        ['incoming/c-third.tgz', 'accepted', undefined],
      ]);
      expect(await r.keys('incoming/')).toEqual(['incoming/a-huge.tgz']);
      expect(await r.keys('rejected/')).toEqual([]);
    } finally {
      await r.close();
    }
  });
});

describe('when more uploads wait than a batch takes', () => {
  it('publishes them in rounds of the bound, in one invocation', async () => {
    // Prepare: a bound of two uploads a batch (MAX_BATCH_UPLOADS on Lambda), five waiting.
    const r = await registry({}, { maxBatchUploads: 2 });
    try {
      const names = ['a', 'b', 'c', 'd', 'e'];
      for (const name of names) await r.put(`incoming/${name}.tgz`, await bundle(`flood-${name}`));

      // Act
      await r.handler({});

      // Assess: three rounds of at most two, every upload published.
      const done = r.logged.find((line) => line.message === 'batch done');
      expect(done?.fields).toMatchObject({ rounds: 3, submissions: 5 });
      expect(await r.keys('incoming/')).toEqual([]);
    } finally {
      await r.close();
    }
  });
});

describe('when the invocation has less time left than a round needs', () => {
  it('starts no further round, and leaves the rest in incoming/ for the next invocation', async () => {
    // Prepare: rounds of two uploads, five waiting, and four minutes left after the first round: under the
    // three a round needs at least and the two the index documents and the invalidation need after it.
    const r = await registry({}, { maxBatchUploads: 2 });
    try {
      const names = ['a', 'b', 'c', 'd', 'e'];
      for (const name of names) await r.put(`incoming/${name}.tgz`, await bundle(`late-${name}`));

      // Act
      const result = await r.handler({}, { getRemainingTimeInMillis: () => 4 * 60_000 });

      // Assess: one round, its index documents rendered, the other three left waiting.
      expect(result.outcomes.map((o) => [o.submission, o.status])).toEqual([
        ['incoming/a.tgz', 'accepted'],
        ['incoming/b.tgz', 'accepted'],
      ]);
      expect(result.leftInIncoming).toBe(3);
      expect(r.logged.find((line) => line.message === 'rounds stopped for time')?.fields).toMatchObject({
        remainingMs: 240_000,
        reserveMs: 300_000,
        leftInIncoming: 3,
      });
      expect(await r.keys('incoming/')).toEqual(['incoming/c.tgz', 'incoming/d.tgz', 'incoming/e.tgz']);

      // Act: the next invocation (the next upload's message), with the time a round needs.
      const next = await r.handler({}, { getRemainingTimeInMillis: () => 14 * 60_000 });

      // Assess
      expect(next.outcomes.map((o) => o.submission)).toEqual([
        'incoming/c.tgz',
        'incoming/d.tgz',
        'incoming/e.tgz',
      ]);
      expect(await r.keys('incoming/')).toEqual([]);
    } finally {
      await r.close();
    }
  });
});

describe('when a rebuild asked for has used the time a first round needs', () => {
  /** What `plugindex rebuild --queue-url` sends (adapters/publish-queue.ts `requestRebuild`). */
  const rebuildRequest = { messageId: 'rebuild-1', eventSource: 'aws:sqs', body: '{"plugindex":"rebuild"}' };

  it('starts no round after it, and the next invocation publishes what waits', async () => {
    // Prepare: a published registry, two uploads waiting whose messages are not in the event (still in the
    // queue), and four minutes left once the rebuild is made: under the three a round needs at least and the
    // two the index documents and the invalidation need after it.
    const r = await registry({});
    try {
      await r.put('incoming/a.tgz', await bundle('rebuilt-a'));
      await r.handler({});
      await r.put('incoming/b.tgz', await bundle('rebuilt-b'));
      await r.put('incoming/c.tgz', await bundle('rebuilt-c'));
      const fourMinutes = { getRemainingTimeInMillis: () => 4 * 60_000 };

      // Act
      const result = await r.handler({ Records: [rebuildRequest] }, fourMinutes);

      // Assess: the rebuild made, no round started, both uploads left for the next invocation.
      expect(r.logged.some((line) => line.message === 'rebuilt')).toBe(true);
      expect(result.outcomes).toEqual([]);
      expect(result.leftInIncoming).toBe(2);
      expect(r.logged.find((line) => line.message === 'rounds stopped for time')?.fields).toEqual({
        remainingMs: 240_000,
        reserveMs: 300_000,
        rounds: 0,
        leftInIncoming: 2,
      });
      expect(await r.keys('incoming/')).toEqual(['incoming/b.tgz', 'incoming/c.tgz']);

      // Act: the next invocation (their messages), as short of time: it made nothing before its first round.
      const next = await r.handler({}, fourMinutes);

      // Assess
      expect(next.outcomes.map((o) => [o.submission, o.status])).toEqual([
        ['incoming/b.tgz', 'accepted'],
        ['incoming/c.tgz', 'accepted'],
      ]);
      expect(await r.keys('incoming/')).toEqual([]);
    } finally {
      await r.close();
    }
  });

  it('starts no round for the uploads its event announced either, and answers their messages failed, not the rebuild', async () => {
    // Prepare: two uploads waiting, each announced by its own message in the rebuild's event, and four
    // minutes left once the rebuild is made. Started regardless (their messages would be deleted with the
    // invocation's success), the round was cut off by the timeout and lost whole.
    const r = await registry({});
    try {
      await r.put('incoming/a.tgz', await bundle('announced-a'));
      await r.handler({});
      await r.put('incoming/b.tgz', await bundle('announced-b'));
      await r.put('incoming/c.tgz', await bundle('announced-c'));
      const event = {
        Records: [
          rebuildRequest,
          objectCreatedRecord(r.intake, 'incoming/b.tgz', 'upload-b'),
          objectCreatedRecord(r.intake, 'incoming/c.tgz', 'upload-c'),
        ],
      };

      // Act
      const result = await r.handler(event, { getRemainingTimeInMillis: () => 4 * 60_000 });

      // Assess: the rebuild made and its message done; no round; the uploads' messages come back for them.
      expect(r.logged.some((line) => line.message === 'rebuilt')).toBe(true);
      expect(result.outcomes).toEqual([]);
      expect(r.logged.find((line) => line.message === 'rounds stopped for time')?.fields).toMatchObject({
        rounds: 0,
        leftInIncoming: 2,
      });
      expect(result.batchItemFailures).toEqual([
        { itemIdentifier: 'upload-b' },
        { itemIdentifier: 'upload-c' },
      ]);
      expect(publishResponse(result).batchItemFailures).toEqual(result.batchItemFailures);
      expect(await r.keys('incoming/')).toEqual(['incoming/b.tgz', 'incoming/c.tgz']);

      // Act: those messages again, in a fresh invocation.
      const next = await r.handler(
        { Records: event.Records.slice(1) },
        { getRemainingTimeInMillis: () => 4 * 60_000 },
      );

      // Assess: published, and no message back.
      expect(next.outcomes.map((o) => [o.submission, o.status])).toEqual([
        ['incoming/b.tgz', 'accepted'],
        ['incoming/c.tgz', 'accepted'],
      ]);
      expect(next.batchItemFailures).toEqual([]);
    } finally {
      await r.close();
    }
  });

  it('answers no message failed when the rounds take every upload, and answers a direct invocation as before', async () => {
    // Prepare
    const r = await registry({});
    try {
      await r.put('incoming/a.tgz', await bundle('ordinary-a'));
      await r.put('incoming/b.tgz', await bundle('ordinary-b'));
      const event = {
        Records: [
          objectCreatedRecord(r.intake, 'incoming/a.tgz', 'upload-a'),
          objectCreatedRecord(r.intake, 'incoming/b.tgz', 'upload-b'),
        ],
      };

      // Act
      const result = await r.handler(event, { getRemainingTimeInMillis: () => 14 * 60_000 });

      // Assess
      expect(result.outcomes.map((o) => o.status)).toEqual(['accepted', 'accepted']);
      expect(result.batchItemFailures).toEqual([]);
      expect(publishResponse(result).batchItemFailures).toEqual([]);
      // No SQS batch: nothing to answer per message, and no member the runtime would read.
      expect('batchItemFailures' in (await r.handler({}))).toBe(false);
    } finally {
      await r.close();
    }
  });
});

describe('when the uploads a rebuild left have their messages answered failed', () => {
  // SQS cannot run here: its client is aws-sdk-client-mock's, a named SDK mock (`sqsMock`), answering each
  // ChangeMessageVisibilityBatch and SendMessage as the test says and recording what the function sent.
  const sqsMock = mockClient(SQSClient);
  const sqs = new SQSClient({ region: 'us-east-1' });
  const queueUrl = 'https://sqs.us-east-1.amazonaws.com/123456789012/Submissions.fifo';
  const rebuildRequest = { messageId: 'rebuild-1', eventSource: 'aws:sqs', body: '{"plugindex":"rebuild"}' };
  const fourMinutes = { getRemainingTimeInMillis: () => 4 * 60_000 };
  /** An upload's message as the event source mapping delivers it: its receipt's handle, its receive count. */
  const uploadMessage = (intake: string, name: string, receiveCount = 1) => ({
    ...objectCreatedRecord(intake, `incoming/${name}.tgz`, `upload-${name}`),
    receiptHandle: `handle-${name}`,
    attributes: { ApproximateReceiveCount: String(receiveCount), MessageGroupId: 'publish' },
  });

  beforeEach(() => {
    sqsMock.reset();
  });

  /** A published registry with two uploads waiting, b and c, announced beside a rebuild request. */
  async function rebuiltRegistry(prefix: string) {
    const r = await registry({}, { sqs, queueUrl });
    await r.put('incoming/a.tgz', await bundle(`${prefix}-a`));
    await r.handler({});
    await r.put('incoming/b.tgz', await bundle(`${prefix}-b`));
    await r.put('incoming/c.tgz', await bundle(`${prefix}-c`));
    return r;
  }

  it('makes them visible again at once: their receipt handles, visibility 0, on the queue', async () => {
    // Prepare: answered failed, each would come back only after the 90-minute visibility timeout, holding
    // the queue's one FIFO message group, every publish, till then.
    sqsMock
      .on(ChangeMessageVisibilityBatchCommand)
      .resolves({ Successful: [{ Id: '0' }, { Id: '1' }], Failed: [] });
    const r = await rebuiltRegistry('released');
    try {
      const event = { Records: [rebuildRequest, uploadMessage(r.intake, 'b'), uploadMessage(r.intake, 'c')] };

      // Act
      const result = await r.handler(event, fourMinutes);

      // Assess: answered failed as before, and made visible by one call naming each receipt.
      expect(result.outcomes).toEqual([]);
      expect(result.batchItemFailures).toEqual([
        { itemIdentifier: 'upload-b' },
        { itemIdentifier: 'upload-c' },
      ]);
      expect(
        sqsMock.commandCalls(ChangeMessageVisibilityBatchCommand).map((call) => call.args[0].input),
      ).toEqual([
        {
          QueueUrl: queueUrl,
          Entries: [
            { Id: '0', ReceiptHandle: 'handle-b', VisibilityTimeout: 0 },
            { Id: '1', ReceiptHandle: 'handle-c', VisibilityTimeout: 0 },
          ],
        },
      ]);
      expect(r.logged.findLast((line) => line.message === 'batch done')?.fields).toMatchObject({
        messagesBack: 2,
        messagesReleased: 2,
      });
    } finally {
      await r.close();
    }
  });

  it('answers the same messages failed when the call fails, or SQS refuses an entry: they come back later', async () => {
    // Prepare: the first invocation's call throws (SQS throttling it); the second's refuses one entry with an
    // HTTP 200, as SQS reports a batch's failures.
    sqsMock
      .on(ChangeMessageVisibilityBatchCommand)
      .rejectsOnce(new SQSServiceException({ name: 'RequestThrottled', $fault: 'client', $metadata: {} }))
      .resolvesOnce({
        Successful: [{ Id: '1' }],
        Failed: [{ Id: '0', Code: 'ReceiptHandleIsInvalid', SenderFault: true, Message: 'expired' }],
      });
    const r = await rebuiltRegistry('unreleased');
    try {
      const event = { Records: [rebuildRequest, uploadMessage(r.intake, 'b'), uploadMessage(r.intake, 'c')] };

      // Act
      const thrown = await r.handler(event, fourMinutes);
      const refused = await r.handler(event, fourMinutes);

      // Assess: both answered as without the call; each failure logged, the invocation not failed by it.
      for (const result of [thrown, refused])
        expect(result.batchItemFailures).toEqual([
          { itemIdentifier: 'upload-b' },
          { itemIdentifier: 'upload-c' },
        ]);
      const notChanged = r.logged
        .filter((line) => line.message === VISIBILITY_NOT_CHANGED_LOG)
        .map(({ level, fields }) => ({ level, ...fields }));
      expect(notChanged).toEqual([
        {
          level: 'warn',
          messageIds: ['upload-b', 'upload-c'],
          error: expect.objectContaining({ name: 'RequestThrottled' }),
        },
        { level: 'warn', messageId: 'upload-b', code: 'ReceiptHandleIsInvalid', reason: 'expired' },
      ]);
      expect(
        r.logged.filter((line) => line.message === 'batch done').map(({ fields }) => fields.messagesReleased),
      ).toEqual([0, 0, 1]);
    } finally {
      await r.close();
    }
  });

  it('answers no message failed at its last receipt, and announces its upload again on the queue', async () => {
    // Prepare: b's message handed out for the fifth time (the queue's maxReceiveCount: rebuilds asked for
    // one after another, each skipping the round that would take it); c's for the first.
    sqsMock.on(ChangeMessageVisibilityBatchCommand).resolves({ Successful: [{ Id: '0' }], Failed: [] });
    sqsMock.on(SendMessageCommand).resolves({ MessageId: 'again-b' });
    const r = await rebuiltRegistry('last');
    try {
      const event = {
        Records: [
          rebuildRequest,
          uploadMessage(r.intake, 'b', PUBLISH_MAX_RECEIVES),
          uploadMessage(r.intake, 'c'),
        ],
      };

      // Act
      const result = await r.handler(event, fourMinutes);

      // Assess: b's message is done (back, it would reach the dead-letter queue), and its upload announced
      // by a fresh message of the publish group, with a deduplication id of its own; c's back at once.
      expect(result.batchItemFailures).toEqual([{ itemIdentifier: 'upload-c' }]);
      expect(
        sqsMock.commandCalls(ChangeMessageVisibilityBatchCommand).map((call) => call.args[0].input.Entries),
      ).toEqual([[{ Id: '0', ReceiptHandle: 'handle-c', VisibilityTimeout: 0 }]]);
      const sent = sqsMock.commandCalls(SendMessageCommand).map((call) => call.args[0].input);
      expect(sent).toEqual([
        {
          QueueUrl: queueUrl,
          MessageBody: expect.any(String),
          MessageGroupId: PUBLISH_MESSAGE_GROUP,
          MessageDeduplicationId: 'again-upload-b-0',
          MessageAttributes: { [ANNOUNCED_AGAIN_ATTRIBUTE]: { DataType: 'Number', StringValue: '1' } },
        },
      ]);
      expect(await r.keys('incoming/')).toEqual(['incoming/b.tgz', 'incoming/c.tgz']);
      // The fresh message, delivered as the queue would, wakes an invocation that publishes both.
      const again = {
        eventSource: 'aws:sqs',
        messageId: 'again-b',
        receiptHandle: 'handle-again-b',
        body: sent[0]?.MessageBody,
        attributes: { ApproximateReceiveCount: '1', MessageGroupId: 'publish' },
      };
      const next = await r.handler({ Records: [again] }, fourMinutes);
      expect(next.outcomes.map((o) => [o.submission, o.status])).toEqual([
        ['incoming/b.tgz', 'accepted'],
        ['incoming/c.tgz', 'accepted'],
      ]);
      expect(next.batchItemFailures).toEqual([]);
      expect(r.logged.some((line) => line.message === UPLOAD_NOT_ANNOUNCED_LOG)).toBe(false);
    } finally {
      await r.close();
    }
  });

  it('answers failed, to the dead-letter queue, a message whose upload was announced again as often as it may be', async () => {
    // Prepare: b's message at its last receipt, already announced again MAX_ANNOUNCEMENTS_AGAIN times (the
    // attribute the function sends, as the event source mapping delivers it): some fault leaves b each time.
    sqsMock.on(ChangeMessageVisibilityBatchCommand).resolves({ Successful: [{ Id: '0' }], Failed: [] });
    sqsMock.on(SendMessageCommand).resolves({ MessageId: 'again-b' });
    const r = await rebuiltRegistry('exhausted');
    try {
      const b = {
        ...uploadMessage(r.intake, 'b', PUBLISH_MAX_RECEIVES),
        messageAttributes: {
          [ANNOUNCED_AGAIN_ATTRIBUTE]: { stringValue: String(MAX_ANNOUNCEMENTS_AGAIN), dataType: 'Number' },
        },
      };

      // Act
      const result = await r.handler({ Records: [rebuildRequest, b] }, fourMinutes);

      // Assess: answered failed (SQS moves it to the dead-letter queue, whose alarm fires), nothing sent.
      expect(result.batchItemFailures).toEqual([{ itemIdentifier: 'upload-b' }]);
      expect(sqsMock.commandCalls(SendMessageCommand)).toEqual([]);
    } finally {
      await r.close();
    }
  });

  it('logs the error line an alarm counts when the announcement cannot be sent, and still answers it done', async () => {
    // Prepare: b's message at its last receipt, and SQS refusing the send (throttled).
    sqsMock.on(ChangeMessageVisibilityBatchCommand).resolves({ Successful: [], Failed: [] });
    sqsMock
      .on(SendMessageCommand)
      .rejects(new SQSServiceException({ name: 'RequestThrottled', $fault: 'client', $metadata: {} }));
    const r = await rebuiltRegistry('unannounced');
    try {
      const event = { Records: [rebuildRequest, uploadMessage(r.intake, 'b', PUBLISH_MAX_RECEIVES)] };

      // Act
      const result = await r.handler(event, fourMinutes);

      // Assess: the message done all the same (c waits unannounced by this batch, its own message queued);
      // one error line naming the message and its upload.
      expect(result.batchItemFailures).toEqual([]);
      const lost = r.logged
        .filter((line) => line.message === UPLOAD_NOT_ANNOUNCED_LOG)
        .map(({ level, fields }) => ({ level, ...fields }));
      expect(lost).toEqual([
        {
          level: 'error',
          messageId: 'upload-b',
          key: 'incoming/b.tgz',
          error: expect.objectContaining({ name: 'RequestThrottled' }),
        },
      ]);
      expect(r.logged.findLast((line) => line.message === 'batch done')?.fields).toMatchObject({
        uploadsAnnouncedAgain: 0,
      });
    } finally {
      await r.close();
    }
  });
});

describe('when the time left runs short before the rounds took as many uploads as the messages announced', () => {
  it('goes on until they have, answering no message failed: one back holds the FIFO group 90 minutes', async () => {
    // Prepare: rounds of two uploads, five waiting, a message for each of the first three in the event, and
    // four minutes left (under what a round needs).
    const r = await registry({}, { maxBatchUploads: 2 });
    try {
      const names = ['a', 'b', 'c', 'd', 'e'];
      for (const name of names) await r.put(`incoming/${name}.tgz`, await bundle(`owed-${name}`));
      const event = {
        Records: ['a', 'b', 'c'].map((name) =>
          objectCreatedRecord(r.intake, `incoming/${name}.tgz`, `upload-${name}`),
        ),
      };

      // Act
      const result = await r.handler(event, { getRemainingTimeInMillis: () => 4 * 60_000 });

      // Assess: two rounds (four uploads, past the three announced), then stopped for time; the fifth left
      // to its own message, still in the queue, and no message of this batch answered failed.
      expect(result.outcomes.map((o) => o.submission)).toEqual([
        'incoming/a.tgz',
        'incoming/b.tgz',
        'incoming/c.tgz',
        'incoming/d.tgz',
      ]);
      expect(result.batchItemFailures).toEqual([]);
      expect(r.logged.some((line) => line.message === 'rounds stopped for time')).toBe(true);
      expect(await r.keys('incoming/')).toEqual(['incoming/e.tgz']);
    } finally {
      await r.close();
    }
  });
});

describe('when more uploads wait than a round takes', () => {
  it('lists incoming/ once for the rounds, and once more only when they have taken every upload listed', async () => {
    // Prepare: rounds of two uploads, five waiting; every listing of incoming/ the function sends, counted.
    const r = await registry({}, { maxBatchUploads: 2 });
    const listings: string[] = [];
    r.client.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { Bucket?: string; Prefix?: string };
        if (context.commandName === 'ListObjectsV2Command' && input.Prefix === 'incoming/')
          listings.push(`${input.Bucket}/${input.Prefix}`);
        return next(args);
      },
      { step: 'initialize', name: 'countIncomingListings' },
    );
    try {
      const names = ['a', 'b', 'c', 'd', 'e'];
      for (const name of names) await r.put(`incoming/${name}.tgz`, await bundle(`listed-${name}`));

      // Act
      const result = await r.handler({});

      // Assess: three rounds from the one listing (with millions waiting, a listing took minutes, and each
      // round made one), then one for uploads that arrived meanwhile.
      expect(result.outcomes).toHaveLength(5);
      expect(r.logged.find((line) => line.message === 'batch done')?.fields).toMatchObject({ rounds: 3 });
      expect(listings).toEqual([`${r.intake}/incoming/`, `${r.intake}/incoming/`]);
      expect(await r.keys('incoming/')).toEqual([]);
    } finally {
      await r.close();
    }
  });
});

describe('when more unreadable uploads wait than an invocation has rounds', () => {
  it('reads each once and still publishes the upload behind them', async () => {
    // Prepare: twelve archived uploads, each filling a batch alone, ahead of a readable one.
    const archived = Array.from({ length: 12 }, (_, i) => `incoming/a-${String(i).padStart(2, '0')}.tgz`);
    const r = await registry(Object.fromEntries(archived.map((key) => [key, S3_ANSWERS.archived])), {
      maxBatchBytes: 1,
    });
    try {
      for (const key of archived) await r.put(key, encode('archived'));
      await r.put('incoming/b-readable.tgz', await bundle('readable-plugin'));

      // Act
      const result = await r.handler({});

      // Assess
      expect(result.outcomes.find((o) => o.submission === 'incoming/b-readable.tgz')?.status).toBe(
        'accepted',
      );
      expect([...r.mock.answered].sort()).toEqual(
        archived.map((key) => `${r.intake}/${key} InvalidObjectState`),
      );
      expect(await r.keys('incoming/')).toEqual(archived);
    } finally {
      await r.close();
    }
  });
});

describe('when reading an upload fails for a while', () => {
  it.each([
    ['throttled (503 SlowDown)', S3_ANSWERS.throttled],
    ['an internal error (500)', S3_ANSWERS.internal],
    ["denied by the function's own policy (AccessDenied, no KMS)", S3_ANSWERS.deniedByPolicy],
  ])('fails the batch, so the queue retries it, and records nothing: %s', async (_, answer) => {
    const r = await registry({ 'incoming/b-flaky.tgz': answer });
    try {
      await r.put('incoming/a-first.tgz', await bundle('first-plugin'));
      await r.put('incoming/b-flaky.tgz', await bundle('flaky-plugin'));
      const error = await r.handler({}).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StoreError);
      expect(error).toMatchObject({ code: 'STORE_IO', key: 'incoming/b-flaky.tgz' });
      expect(await r.keys('incoming/')).toEqual(['incoming/a-first.tgz', 'incoming/b-flaky.tgz']);
      expect(await r.keys('status/')).toEqual([]);
      // Once S3 answers again, the queue's retry reads it.
      r.readable('incoming/b-flaky.tgz');
      const retried = await r.handler({});
      expect(byKey(retried.outcomes).map((o) => o.status)).toEqual(['accepted', 'accepted']);
    } finally {
      await r.close();
    }
  });
});

describe('when S3 answers a GET as it answers an unreadable object', () => {
  it('the store says so (STORE_UNREADABLE), naming the key, the code and what to do; not for a throttle', async () => {
    const r = await registry({
      'incoming/archived.tgz': S3_ANSWERS.archived,
      'incoming/slow.tgz': S3_ANSWERS.throttled,
    });
    try {
      const store = new S3Store({
        client: new S3Client({ ...s3.config, endpoint: r.mock.endpoint }),
        bucket: r.intake,
      });
      await r.put('incoming/archived.tgz', encode('x'));
      await r.put('incoming/slow.tgz', encode('x'));
      for (const read of [
        () => store.get('incoming/archived.tgz'),
        () => store.getStream('incoming/archived.tgz'),
      ])
        await expect(read()).rejects.toMatchObject({
          name: 'StoreError',
          code: 'STORE_UNREADABLE',
          key: 'incoming/archived.tgz',
          message: expect.stringMatching(/InvalidObjectState \(HTTP 403\).*GLACIER.*restore/is),
        });
      await expect(store.get('incoming/slow.tgz')).rejects.toMatchObject({ code: 'STORE_IO' });
      // s3rver itself reads both.
      const direct = await s3.client.send(
        new GetObjectCommand({ Bucket: r.intake, Key: 'incoming/archived.tgz' }),
      );
      expect(await direct.Body?.transformToString()).toBe('x');
    } finally {
      await r.close();
    }
  });
});
