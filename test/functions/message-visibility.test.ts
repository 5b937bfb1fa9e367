/**
 * SQS cannot run here: these tests use aws-sdk-client-mock, a named SDK mock (`sqsMock`), and check the
 * ChangeMessageVisibilityBatch requests `releaseMessages` sends and how it reads SQS's answers.
 */
import { ChangeMessageVisibilityBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import type { LogFields } from '../../functions/logger.ts';
import { releaseMessages, VISIBILITY_NOT_CHANGED_LOG } from '../../functions/message-visibility.ts';

const sqsMock = mockClient(SQSClient);
const client = new SQSClient({ region: 'us-east-1' });
const queueUrl = 'https://sqs.us-east-1.amazonaws.com/123456789012/Submissions.fifo';
const warned: { message: string; fields: LogFields }[] = [];
const logger = {
  info: () => {},
  warn: (message: string, fields: LogFields = {}) => warned.push({ message, fields }),
  error: () => {},
};
const held = (n: number) =>
  Array.from({ length: n }, (_, i) => ({ messageId: `message ${i}`, receiptHandle: `handle-${i}` }));

beforeEach(() => {
  sqsMock.reset();
  warned.length = 0;
});

describe('when messages answered failed are made visible again', () => {
  it('sends ten entries a request, each named by its place, and returns the ids changed', async () => {
    // Prepare: twelve messages (past the ten a request takes), ids an entry's Id could not hold (a space).
    sqsMock.on(ChangeMessageVisibilityBatchCommand).resolves({ Failed: [] });

    // Act
    const released = await releaseMessages(client, queueUrl, held(12), logger);

    // Assess
    const requests = sqsMock
      .commandCalls(ChangeMessageVisibilityBatchCommand)
      .map((call) => call.args[0].input);
    expect(requests.map((input) => input.Entries?.map(({ Id }) => Id))).toEqual([
      ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
      ['0', '1'],
    ]);
    expect(requests[1]).toEqual({
      QueueUrl: queueUrl,
      Entries: [
        { Id: '0', ReceiptHandle: 'handle-10', VisibilityTimeout: 0 },
        { Id: '1', ReceiptHandle: 'handle-11', VisibilityTimeout: 0 },
      ],
    });
    expect(released).toHaveLength(12);
    expect(warned).toEqual([]);
  });

  it('logs an entry SQS failed with an HTTP 200, and a request that throws, and throws nothing', async () => {
    // Prepare
    sqsMock
      .on(ChangeMessageVisibilityBatchCommand)
      .resolvesOnce({
        Successful: [{ Id: '0' }],
        Failed: [{ Id: '1', Code: 'MessageNotInflight', SenderFault: true, Message: 'not in flight' }],
      })
      .rejectsOnce(new Error('socket hang up'));

    // Act
    const first = await releaseMessages(client, queueUrl, held(2), logger);
    const second = await releaseMessages(client, queueUrl, held(1), logger);

    // Assess
    expect(first).toEqual(['message 0']);
    expect(second).toEqual([]);
    expect(warned.map(({ message }) => message)).toEqual([
      VISIBILITY_NOT_CHANGED_LOG,
      VISIBILITY_NOT_CHANGED_LOG,
    ]);
    expect(warned[0]?.fields).toEqual({
      messageId: 'message 1',
      code: 'MessageNotInflight',
      reason: 'not in flight',
    });
    expect(warned[1]?.fields).toMatchObject({
      messageIds: ['message 0'],
      error: { message: 'socket hang up' },
    });
  });
});
