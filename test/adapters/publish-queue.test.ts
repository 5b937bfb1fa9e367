import { describe, expect, it } from 'vitest';
import {
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
