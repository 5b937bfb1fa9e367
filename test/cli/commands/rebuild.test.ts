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

  it('refuses a --queue-url that is no http(s) URL as a usage error (exit 2), sending nothing', async () => {
    // It went to the SDK, which threw a TypeError (a stack trace, exit 1) and still asked SQS's own host.
    process.env.AWS_REGION ??= 'us-east-1';
    sqs.reset();
    sqs.on(SendMessageCommand).resolves({ MessageId: 'm-2' });
    for (const url of ['not-a-url', 'ftp://queue.example/q', 'https://user:s3cret@sqs.example/1/q.fifo'])
      expect(await main(['rebuild', '--queue-url', url]), url).toBe(2);
    expect(sqs.commandCalls(SendMessageCommand)).toHaveLength(0);
  });

  it('needs exactly one of --registry or --queue-url', async () => {
    expect(await main(['rebuild'])).toBe(2);
  });
});
