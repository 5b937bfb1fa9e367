/**
 * The events that wake the publish function: SQS messages whose bodies are EventBridge "Object Created"
 * events from the intake bucket, or S3 event notifications (either directly or through SQS). They are
 * doorbells: the function then publishes everything waiting under incoming/, so a duplicated, retried or
 * out-of-order event is harmless and never the only record of an upload. The same queue carries an
 * operator's rebuild and key rotation requests, and the schedule's refresh (adapters/publish-queue.ts).
 */
import {
  ANNOUNCED_AGAIN_ATTRIBUTE,
  isRebuildRequest,
  isRefreshRequest,
  rotationRequestKey,
} from '../adapters/publish-queue.ts';

export interface ObjectCreated {
  readonly bucket: string;
  readonly key: string;
}

interface EventBridgeS3Event {
  readonly source?: string;
  readonly 'detail-type'?: string;
  readonly detail?: {
    readonly bucket?: { readonly name?: string };
    readonly object?: { readonly key?: string };
  };
}

interface S3NotificationRecord {
  readonly eventSource?: string;
  /** `ObjectCreated:Put`, `ObjectRemoved:Delete`, …; S3 always sends it. */
  readonly eventName?: string;
  readonly s3?: { readonly bucket?: { readonly name?: string }; readonly object?: { readonly key?: string } };
}

/**
 * S3 notifications URL-encode keys, with `+` for spaces. A key that does not decode (a `%` not followed by
 * UTF-8 escapes: no S3 event, but anything can reach the queue) is kept as it came: the key is only logged,
 * and a URIError here failed the whole invocation (direct) or dropped the message's other records (SQS).
 */
function decodeNotificationKey(key: string): string {
  try {
    return decodeURIComponent(key.replace(/\+/g, ' '));
  } catch {
    return key;
  }
}

function fromEventBridge(event: EventBridgeS3Event): ObjectCreated[] {
  if (event.source !== 'aws.s3' || event['detail-type'] !== 'Object Created') return [];
  const bucket = event.detail?.bucket?.name;
  const key = event.detail?.object?.key;
  return bucket && key ? [{ bucket, key }] : [];
}

function fromNotification(records: readonly S3NotificationRecord[]): ObjectCreated[] {
  return records.flatMap((record) => {
    const bucket = record.s3?.bucket?.name;
    const key = record.s3?.object?.key;
    // A delete (or a restore, a replication) names a key too, and was read as an upload's.
    const created = record.eventName === undefined || record.eventName.startsWith('ObjectCreated:');
    return record.eventSource === 'aws:s3' && created && bucket && key
      ? [{ bucket, key: decodeNotificationKey(key) }]
      : [];
  });
}

function fromAny(value: unknown): ObjectCreated[] {
  if (typeof value !== 'object' || value === null) return [];
  const v = value as { Records?: unknown[]; source?: string; body?: unknown };
  if (Array.isArray(v.Records)) {
    return v.Records.flatMap((record) => {
      // A record that is no object (`null` in a message's Records) is skipped, not read as one: it threw.
      if (typeof record !== 'object' || record === null) return [];
      const r = record as { eventSource?: string; body?: string };
      if (r.eventSource === 'aws:sqs' && typeof r.body === 'string') {
        try {
          return fromAny(JSON.parse(r.body));
        } catch {
          return [];
        }
      }
      return fromNotification([record as S3NotificationRecord]);
    });
  }
  return fromEventBridge(v as EventBridgeS3Event);
}

/** Every object-created notice in an event, whatever wrapped it; unknown shapes give none. */
export function parseObjectCreated(event: unknown): ObjectCreated[] {
  return fromAny(event);
}

/** One SQS message of an event: its id (what a partial batch response names) and the notices its body holds. */
export interface QueuedMessage {
  readonly messageId: string;
  /** The object-created notices of its body, whatever wrapped them; none for a request or an unknown body. */
  readonly notices: readonly ObjectCreated[];
  /** What it asks for when it is a request (adapters/publish-queue.ts), else undefined. */
  readonly request?: 'refresh' | 'rebuild' | 'rotation';
  /**
   * The handle of this receipt of it (the record's `receiptHandle`), which a change of its visibility names;
   * absent from a record without one (none the event source mapping sends).
   */
  readonly receiptHandle?: string;
  /**
   * How many times SQS has handed it out, this receipt included (the record's
   * `attributes.ApproximateReceiveCount`), when the record says: past the queue's `maxReceiveCount`, SQS
   * moves it to the dead-letter queue instead.
   */
  readonly receiveCount?: number;
  /**
   * How many times the publish function has announced its upload again (the message attribute
   * `ANNOUNCED_AGAIN_ATTRIBUTE` it sends), when the record carries it as a count.
   */
  readonly announcedAgain?: number;
}

/** A count as SQS carries it, a string of a positive integer; anything else undefined. */
function countIn(value: unknown): number | undefined {
  return typeof value === 'string' && /^[1-9][0-9]{0,8}$/.test(value) ? Number(value) : undefined;
}

/** What a message body asks for, when it is one of the requests the publish function takes. */
function requestIn(body: unknown): QueuedMessage['request'] {
  if (typeof body !== 'string') return undefined;
  if (isRefreshRequest(body)) return 'refresh';
  if (isRebuildRequest(body)) return 'rebuild';
  return rotationRequestKey(body) === undefined ? undefined : 'rotation';
}

/**
 * The SQS messages of an event, in order, each with the notices it holds: a message reported failed comes
 * back (functions/handlers.ts names those whose uploads it left in incoming/). A record without a string
 * `messageId` (none the event source mapping sends) is left out: it cannot be named.
 */
export function queuedMessages(event: unknown): QueuedMessage[] {
  const records = (event as { Records?: unknown[] } | null)?.Records;
  if (!Array.isArray(records)) return [];
  return records.flatMap((record) => {
    if (typeof record !== 'object' || record === null) return [];
    const r = record as {
      eventSource?: string;
      messageId?: unknown;
      body?: unknown;
      receiptHandle?: unknown;
      attributes?: { ApproximateReceiveCount?: unknown } | null;
      messageAttributes?: Record<string, { stringValue?: unknown } | null> | null;
    };
    if (r.eventSource !== 'aws:sqs' || typeof r.messageId !== 'string') return [];
    const request = requestIn(r.body);
    const receiveCount = countIn(r.attributes?.ApproximateReceiveCount);
    const announcedAgain = countIn(r.messageAttributes?.[ANNOUNCED_AGAIN_ATTRIBUTE]?.stringValue);
    return [
      {
        messageId: r.messageId,
        notices: fromAny({ Records: [record] }),
        ...(request ? { request } : {}),
        ...(typeof r.receiptHandle === 'string' ? { receiptHandle: r.receiptHandle } : {}),
        ...(receiveCount !== undefined ? { receiveCount } : {}),
        ...(announcedAgain !== undefined ? { announcedAgain } : {}),
      },
    ];
  });
}

/** True when the event is a batch of SQS messages (the event source mapping's), which answers per message. */
export function isSqsBatch(event: unknown): boolean {
  const records = (event as { Records?: unknown[] } | null)?.Records;
  return (
    Array.isArray(records) &&
    records.some(
      (r) => typeof r === 'object' && r !== null && (r as { eventSource?: string }).eventSource === 'aws:sqs',
    )
  );
}

/** True when any SQS record asks for a full rebuild (adapters/publish-queue.ts says what such a message is). */
export function wantsRebuild(event: unknown): boolean {
  return anyMessage(event, isRebuildRequest);
}

/** True when any SQS record asks for the snapshot's refresh (the schedule's message). */
export function wantsRefresh(event: unknown): boolean {
  return anyMessage(event, isRefreshRequest);
}

/** True when the body of any of an event's SQS records is one `is` knows. */
function anyMessage(event: unknown, is: (body: string) => boolean): boolean {
  const records = (event as { Records?: { eventSource?: string; body?: string }[] } | null)?.Records;
  if (!Array.isArray(records)) return false;
  return records.some((r) => r.eventSource === 'aws:sqs' && typeof r.body === 'string' && is(r.body));
}

/** The upload keys of the key rotations an event's SQS records ask for, in order, each once. */
export function rotationRequests(event: unknown): string[] {
  const records = (event as { Records?: { eventSource?: string; body?: string }[] } | null)?.Records;
  if (!Array.isArray(records)) return [];
  const keys = records.flatMap((r) =>
    r.eventSource === 'aws:sqs' && typeof r.body === 'string' ? (rotationRequestKey(r.body) ?? []) : [],
  );
  return [...new Set(keys)];
}
