import { describe, expect, it } from 'vitest';
import { ANNOUNCED_AGAIN_ATTRIBUTE } from '../../adapters/publish-queue.ts';
import { isSqsBatch, parseObjectCreated, queuedMessages } from '../../functions/events.ts';

// Shapes as AWS delivers them (EventBridge "Object Created", S3 notification record, SQS wrapping).
const eventBridge = (key: string) => ({
  version: '0',
  id: '17793124-05d4-b198-2fde-7ededc63b103',
  'detail-type': 'Object Created',
  source: 'aws.s3',
  account: '123456789012',
  time: '2026-11-22T17:00:00Z',
  region: 'us-east-1',
  resources: ['arn:aws:s3:::intake'],
  detail: {
    version: '0',
    bucket: { name: 'intake' },
    object: { key, size: 5, etag: 'b1946ac92492d2347c6235b4d2611184', sequencer: '00617F08299329D189' },
    'request-id': 'N4N7GDK58NMKJ12R',
    requester: '123456789012',
    'source-ip-address': '1.2.3.4',
    reason: 'PutObject',
  },
});

const sqs = (...bodies: unknown[]) => ({
  Records: bodies.map((body, i) => ({
    messageId: `m-${i}`,
    receiptHandle: 'AQEB',
    body: typeof body === 'string' ? body : JSON.stringify(body),
    attributes: { MessageGroupId: 'publish', SequenceNumber: String(i) },
    messageAttributes: {},
    md5OfBody: 'x',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:publish.fifo',
    awsRegion: 'us-east-1',
  })),
});

const notification = (key: string) => ({
  Records: [
    {
      eventVersion: '2.1',
      eventSource: 'aws:s3',
      awsRegion: 'us-east-1',
      eventTime: '2026-11-22T17:00:00.000Z',
      eventName: 'ObjectCreated:Put',
      s3: {
        s3SchemaVersion: '1.0',
        bucket: { name: 'intake', arn: 'arn:aws:s3:::intake' },
        object: { key, size: 5 },
      },
    },
  ],
});

describe('when an event wakes the publish function', () => {
  it('reads EventBridge events delivered through SQS, several per batch', () => {
    expect(parseObjectCreated(sqs(eventBridge('incoming/a.tgz'), eventBridge('incoming/b.tgz')))).toEqual([
      { bucket: 'intake', key: 'incoming/a.tgz' },
      { bucket: 'intake', key: 'incoming/b.tgz' },
    ]);
  });

  it('reads an EventBridge event delivered directly', () => {
    expect(parseObjectCreated(eventBridge('incoming/a.tgz'))).toEqual([
      { bucket: 'intake', key: 'incoming/a.tgz' },
    ]);
  });

  it('decodes the URL-encoded keys of S3 notifications, directly or through SQS', () => {
    expect(parseObjectCreated(notification('incoming/my+plugin%281%29.tgz'))).toEqual([
      { bucket: 'intake', key: 'incoming/my plugin(1).tgz' },
    ]);
    expect(parseObjectCreated(sqs(notification('incoming/x.tgz')))).toEqual([
      { bucket: 'intake', key: 'incoming/x.tgz' },
    ]);
  });

  it('keeps a key that does not decode as it came, and the records beside it or beside no record', () => {
    const records = [...notification('incoming/%E0%A4%A').Records, ...notification('incoming/b.tgz').Records];
    const expected = [
      { bucket: 'intake', key: 'incoming/%E0%A4%A' },
      { bucket: 'intake', key: 'incoming/b.tgz' },
    ];
    expect(parseObjectCreated({ Records: records })).toEqual(expected);
    expect(parseObjectCreated(sqs({ Records: records }))).toEqual(expected);
    expect(parseObjectCreated(sqs({ Records: [null, 7, ...records] }))).toEqual(expected);
  });

  it('ignores what it does not understand rather than failing the batch', () => {
    expect(parseObjectCreated(sqs('not json', { source: 'aws.ec2' }))).toEqual([]);
    expect(parseObjectCreated({ 'detail-type': 'Object Deleted', source: 'aws.s3' })).toEqual([]);
    // A notification of a delete, directly or through SQS: no upload.
    const removed = notification('incoming/gone.tgz');
    const deleted = { Records: removed.Records.map((r) => ({ ...r, eventName: 'ObjectRemoved:Delete' })) };
    expect(parseObjectCreated(deleted)).toEqual([]);
    expect(parseObjectCreated(sqs(deleted))).toEqual([]);
    expect(parseObjectCreated(null)).toEqual([]);
  });
});

describe('when the publish function answers an SQS batch message by message', () => {
  it('names each message by its id with the uploads its body announces, a request or junk with none', () => {
    const event = sqs(
      eventBridge('incoming/a.tgz'),
      '{"plugindex":"rebuild"}',
      notification('incoming/b.tgz'),
      'x',
    );
    expect(queuedMessages(event)).toEqual([
      { messageId: 'm-0', notices: [{ bucket: 'intake', key: 'incoming/a.tgz' }], receiptHandle: 'AQEB' },
      { messageId: 'm-1', notices: [], request: 'rebuild', receiptHandle: 'AQEB' },
      { messageId: 'm-2', notices: [{ bucket: 'intake', key: 'incoming/b.tgz' }], receiptHandle: 'AQEB' },
      { messageId: 'm-3', notices: [], receiptHandle: 'AQEB' },
    ]);
    expect(isSqsBatch(event)).toBe(true);
  });

  it("reads each message's receipt handle and receive count, and leaves out a count that is no count", () => {
    // The handle names the receipt whose visibility the function sets to 0; the count, how close the
    // message is to the dead-letter queue (functions/handlers.ts).
    const event = sqs(
      eventBridge('incoming/a.tgz'),
      eventBridge('incoming/b.tgz'),
      eventBridge('incoming/c.tgz'),
    );
    const counts: unknown[] = ['3', '0', 'x'];
    const records = event.Records.map((record, i) => ({
      ...record,
      receiptHandle: `handle-${i}`,
      attributes: { ...record.attributes, ApproximateReceiveCount: counts[i] },
    }));
    expect(
      queuedMessages({ Records: records }).map(({ receiptHandle, receiveCount }) => ({
        receiptHandle,
        receiveCount,
      })),
    ).toEqual([
      { receiptHandle: 'handle-0', receiveCount: 3 },
      { receiptHandle: 'handle-1', receiveCount: undefined },
      { receiptHandle: 'handle-2', receiveCount: undefined },
    ]);
    const { receiptHandle: _handle, ...withoutHandle } = records[0] as (typeof records)[number];
    expect(queuedMessages({ Records: [withoutHandle] })[0]).not.toHaveProperty('receiptHandle');
  });

  it('reads how many times a message announced its upload again, as the event source mapping delivers the attribute', () => {
    // The count the publish function sends with a fresh announcement (functions/message-visibility.ts).
    const event = sqs(
      eventBridge('incoming/a.tgz'),
      eventBridge('incoming/b.tgz'),
      eventBridge('incoming/c.tgz'),
    );
    const values: unknown[] = ['2', 'x', undefined];
    const records = event.Records.map((record, i) => ({
      ...record,
      ...(values[i] === undefined
        ? {}
        : {
            messageAttributes: {
              [ANNOUNCED_AGAIN_ATTRIBUTE]: { stringValue: values[i], dataType: 'Number' },
            },
          }),
    }));
    expect(queuedMessages({ Records: records }).map(({ announcedAgain }) => announcedAgain)).toEqual([
      2,
      undefined,
      undefined,
    ]);
  });

  it('finds no message in an event that is no SQS batch', () => {
    for (const event of [eventBridge('incoming/a.tgz'), notification('incoming/a.tgz'), {}, null]) {
      expect(queuedMessages(event)).toEqual([]);
      expect(isSqsBatch(event)).toBe(false);
    }
  });
});
