import net from 'node:net';
import { ChangeMessageVisibilityBatchCommand } from '@aws-sdk/client-sqs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  createSqsClient,
  isRebuildRequest,
  isRefreshRequest,
  PUBLISH_MESSAGE_GROUP,
  REBUILD_REQUEST,
  REFRESH_REQUEST,
  rebuildMessage,
  rotationMessage,
  rotationRequestKey,
} from '../../adapters/publish-queue.ts';
import { rotationRequests, wantsRebuild, wantsRefresh } from '../../functions/events.ts';

describe('when a rebuild request is made', () => {
  it('goes to the publish group with a deduplication id of its own', () => {
    expect(rebuildMessage(1_700_000_000_000)).toEqual({
      body: '{"plugindex":"rebuild"}',
      groupId: PUBLISH_MESSAGE_GROUP,
      deduplicationId: 'rebuild-1700000000000',
    });
    expect(rebuildMessage(1).deduplicationId).not.toBe(rebuildMessage(2).deduplicationId);
  });

  it('is recognized by the reading side, as sent', () => {
    expect(isRebuildRequest(rebuildMessage().body)).toBe(true);
    expect(isRebuildRequest(JSON.stringify(REBUILD_REQUEST))).toBe(true);
  });
});

describe('when a message is not a rebuild request', () => {
  it.each([
    ['an S3 event', '{"source":"aws.s3","detail-type":"Object Created"}'],
    ['another plugindex word', '{"plugindex":"refresh"}'],
    ['not JSON', 'rebuild'],
    ['JSON null', 'null'],
    ['a JSON string', '"rebuild"'],
  ])('rejects %s', (_what, body) => {
    expect(isRebuildRequest(body)).toBe(false);
  });
});

describe("when the schedule's refresh request arrives", () => {
  it('is recognized as the rule sends it (with the time it fired), and as nothing else', () => {
    const body = JSON.stringify({ ...REFRESH_REQUEST, at: '2026-12-05T18:00:00Z' });
    expect(isRefreshRequest(body)).toBe(true);
    expect(isRebuildRequest(body)).toBe(false);
    expect(rotationRequestKey(body)).toBeUndefined();
    const event = { Records: [{ eventSource: 'aws:sqs', body }] };
    expect(wantsRefresh(event)).toBe(true);
    expect(wantsRebuild(event)).toBe(false);
    expect(wantsRefresh({ Records: [{ eventSource: 'aws:sqs', body: rebuildMessage().body }] })).toBe(false);
    expect(isRefreshRequest('refresh')).toBe(false);
  });
});

describe('when a key rotation is requested', () => {
  it('goes to the publish group, names its upload, and is read back by the function, not as a rebuild', () => {
    const message = rotationMessage('rotations/ab.json', 5);
    expect(message).toEqual({
      body: '{"plugindex":"rotate-key","key":"rotations/ab.json"}',
      groupId: PUBLISH_MESSAGE_GROUP,
      deduplicationId: 'rotate-key-5',
    });
    expect(rotationRequestKey(message.body)).toBe('rotations/ab.json');
    expect(isRebuildRequest(message.body)).toBe(false);
    const event = {
      Records: [message, message, rebuildMessage()].map((m) => ({ eventSource: 'aws:sqs', body: m.body })),
    };
    expect(rotationRequests(event)).toEqual(['rotations/ab.json']);
  });

  it.each([
    ['a rebuild request', '{"plugindex":"rebuild"}'],
    ['no key', '{"plugindex":"rotate-key"}'],
    ['a key that is not text', '{"plugindex":"rotate-key","key":7}'],
    ['not JSON', 'rotate-key'],
  ])('reads no rotation in %s', (_what, body) => {
    expect(rotationRequestKey(body)).toBeUndefined();
  });
});

describe('when SQS takes a request and never answers', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it('fails the request (TimeoutError) instead of waiting for ever', async () => {
    // Prepare: a real server on 127.0.0.1 that takes each connection and answers nothing (a hung SQS), and
    // a client of the factory the publish function's is made by, its timeout shortened for the test.
    vi.stubEnv('AWS_REGION', 'us-east-1');
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'test');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'test');
    const held: net.Socket[] = [];
    const server = net.createServer((socket) => held.push(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    const sqs = createSqsClient({ endpoint: `http://127.0.0.1:${port}`, requestTimeoutMs: 200 });
    try {
      // Act
      const sent = sqs.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: `http://127.0.0.1:${port}/123456789012/Submissions.fifo`,
          Entries: [{ Id: '0', ReceiptHandle: 'r-1', VisibilityTimeout: 0 }],
        }),
      );

      // Assess: refused by its timeout, after the request reached the server (no earlier failure).
      await expect(sent).rejects.toMatchObject({ name: 'TimeoutError' });
      expect(held.length).toBeGreaterThan(0);
    } finally {
      sqs.destroy();
      for (const socket of held) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
