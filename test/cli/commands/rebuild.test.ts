/** `plugindex rebuild --queue-url`: SQS cannot run here, so aws-sdk-client-mock (a named SDK mock) checks the message. */
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it } from 'vitest';
import { main } from '../../../cli/main.ts';
import { wantsRebuild } from '../../../functions/events.ts';

const sqs = mockClient(SQSClient);

describe('when an operator asks a deployed registry for a rebuild', () => {
  it('queues a rebuild request in the publish message group, each with its own deduplication id', async () => {
    process.env.AWS_REGION ??= 'us-east-1';
    sqs.on(SendMessageCommand).resolves({ MessageId: 'm-1' });
    const url = 'https://sqs.us-east-1.amazonaws.com/123456789012/Submissions.fifo';
    expect(await main(['rebuild', '--queue-url', url])).toBe(0);
    const input = sqs.commandCalls(SendMessageCommand)[0]?.args[0].input;
    expect(input).toMatchObject({
      QueueUrl: url,
      MessageGroupId: 'publish',
      MessageDeduplicationId: expect.stringMatching(/^rebuild-\d+$/),
    });
    // The message the function recognizes.
    expect(wantsRebuild({ Records: [{ eventSource: 'aws:sqs', body: input?.MessageBody }] })).toBe(true);
    expect(wantsRebuild({ Records: [{ eventSource: 'aws:sqs', body: '{"source":"aws.s3"}' }] })).toBe(false);
  });

  it('needs exactly one of --registry or --queue-url', async () => {
    expect(await main(['rebuild'])).toBe(2);
  });
});
