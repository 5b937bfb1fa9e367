import { describe, expect, it } from 'vitest';
import {
  isRebuildRequest,
  PUBLISH_MESSAGE_GROUP,
  REBUILD_REQUEST,
  rebuildMessage,
} from '../../adapters/publish-queue.ts';

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
