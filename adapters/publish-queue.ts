/**
 * The publish queue's own messages: the ones an operator sends to have the deployed registry re-render and
 * re-sign everything (`plugindex rebuild --queue-url`) or publish a key rotation uploaded under
 * `rotations/` (`plugindex rotate-key --bucket`), the schedule's refresh of the snapshot, and the checks by
 * which the publish function tells them from the S3 doorbells in the same queue. The queue is FIFO with one message group, so they run in order
 * with the publishes queued before them, never alongside them.
 *
 * @example
 * await requestRebuild('https://sqs.us-east-1.amazonaws.com/123456789012/Submissions.fifo');
 * isRebuildRequest(rebuildMessage().body); // true, as the publish function reads it
 * rotationRequestKey(rotationMessage('rotations/ab12.json').body); // 'rotations/ab12.json'
 */
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';

/** The body of a rebuild request: every document re-rendered and re-signed (after a key rotation, or to recover). */
export const REBUILD_REQUEST = { plugindex: 'rebuild' } as const;

/**
 * The queue's one message group. The upload events reach the queue in the same group (the EventBridge
 * target in infra/constructs/publishing.ts), which is what serializes publishes and rebuilds.
 */
export const PUBLISH_MESSAGE_GROUP = 'publish';

/**
 * How many times the queue hands a message out before it moves it to the dead-letter queue (its
 * `maxReceiveCount`, infra/constructs/publishing.ts). The publish function reads it too: a message at its
 * last receipt is never answered failed for an upload it left (functions/handlers.ts), since back it would
 * only reach the dead-letter queue, and its alarm, for an upload that waits in incoming/ unharmed.
 */
export const PUBLISH_MAX_RECEIVES = 5;

/**
 * The message attribute saying how many times an upload's announcement has been sent again by the publish
 * function (functions/message-visibility.ts `announceAgain`), each time its message reached its last
 * receipt with the upload left; and how many times it may be. Past that the message is answered failed,
 * to the dead-letter queue and its alarm: an upload some fault leaves round after round was otherwise
 * announced for ever, each announcement a young message that no age alarm sees.
 */
export const ANNOUNCED_AGAIN_ATTRIBUTE = 'plugindex-announced-again';
export const MAX_ANNOUNCEMENTS_AGAIN = 2;

/** A message as SQS FIFO takes it. */
export interface QueueMessage {
  readonly body: string;
  readonly groupId: string;
  readonly deduplicationId: string;
}

/** A rebuild request, with a deduplication id of its own (from `now`, in milliseconds). */
export function rebuildMessage(now: number = Date.now()): QueueMessage {
  return {
    body: JSON.stringify(REBUILD_REQUEST),
    groupId: PUBLISH_MESSAGE_GROUP,
    // Each request is its own: the queue's content-based deduplication would merge two within 5 minutes.
    deduplicationId: `rebuild-${now}`,
  };
}

/** True when a message body, as SQS delivers it, is a rebuild request; anything else (JSON or not) is not. */
export function isRebuildRequest(body: string): boolean {
  return requestOf(body) === REBUILD_REQUEST.plugindex;
}

/**
 * The body of a refresh request: `snapshot.json` re-signed with a fresh expiry, so that a quiet registry
 * never goes stale. The schedule sends it into this queue (infra/constructs/publishing.ts), with the time
 * it fired (`at`), so that each is its own to the queue's content-based deduplication; it runs in turn with
 * the publishes, as every write of the registry does.
 */
export const REFRESH_REQUEST = { plugindex: 'refresh' } as const;

/**
 * The least snapshot lifetime a registry refreshed every `refreshSeconds` may have: two refreshes, so one
 * that fails (retried only after the queue's visibility timeout) does not let a quiet registry's snapshot
 * expire to every client before the next. The stack refuses a shorter default at synth
 * (infra/constructs/publishing.ts), the publish function a shorter one in the config object (functions/).
 */
export function minSnapshotTtlSeconds(refreshSeconds: number): number {
  return 2 * refreshSeconds;
}

/** True when a message body, as SQS delivers it, is a refresh request; anything else (JSON or not) is not. */
export function isRefreshRequest(body: string): boolean {
  return requestOf(body) === REFRESH_REQUEST.plugindex;
}

/** What a message body asks for (its `plugindex` field), or undefined. */
function requestOf(body: string): unknown {
  try {
    return (JSON.parse(body) as { plugindex?: unknown } | null)?.plugindex;
  } catch {
    return undefined;
  }
}

/** What a rotation request says: publish the signed rotation uploaded at `key`. */
export const ROTATION_REQUEST = 'rotate-key';

/** A rotation request for the signed rotation uploaded at `key`, with a deduplication id of its own. */
export function rotationMessage(key: string, now: number = Date.now()): QueueMessage {
  return {
    body: JSON.stringify({ plugindex: ROTATION_REQUEST, key }),
    groupId: PUBLISH_MESSAGE_GROUP,
    deduplicationId: `rotate-key-${now}`,
  };
}

/** The upload key a rotation request names, or undefined when the body is not one. */
export function rotationRequestKey(body: string): string | undefined {
  try {
    const value = JSON.parse(body) as { plugindex?: unknown; key?: unknown } | null;
    return value?.plugindex === ROTATION_REQUEST && typeof value.key === 'string' ? value.key : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Queues a rebuild request (region and credentials from the environment); returns the SQS message id. An
 * SQS failure is thrown as the SDK's error.
 */
export function requestRebuild(queueUrl: string): Promise<string | undefined> {
  return send(queueUrl, rebuildMessage());
}

/** Queues a rotation request for the rotation uploaded at `key`; returns the SQS message id. */
export function requestRotation(queueUrl: string, key: string): Promise<string | undefined> {
  return send(queueUrl, rotationMessage(key));
}

/**
 * How long one SQS request may take, connecting and answered, before the SDK gives it up (a `TimeoutError`,
 * retried as the SDK retries any: three attempts). Without it a request SQS never answered (a connection
 * held open, a lost packet) waited for ever: in the publish function, for its 15-minute timeout, the whole
 * invocation lost with its writes done and its messages back only after the queue's visibility timeout.
 * SQS answers in milliseconds; ten seconds an attempt bounds a hung one to about half a minute.
 */
export const SQS_REQUEST_TIMEOUT_MS = 10_000;
/** How long connecting to SQS may take, within `SQS_REQUEST_TIMEOUT_MS`. */
const SQS_CONNECTION_TIMEOUT_MS = 3_000;

/**
 * An SQS client (region and credentials from the environment, or `endpoint` for a test's server) whose
 * requests time out (`SQS_REQUEST_TIMEOUT_MS`, or `requestTimeoutMs`). `throwOnRequestTimeout`: without it
 * the SDK's handler only logs a warning when a request passes its `requestTimeout`, and waits on. Every SQS
 * client of the publish function and of the commands is made here.
 */
export function createSqsClient(
  options: { readonly endpoint?: string; readonly requestTimeoutMs?: number } = {},
): SQSClient {
  const requestTimeout = options.requestTimeoutMs ?? SQS_REQUEST_TIMEOUT_MS;
  return new SQSClient({
    requestHandler: {
      connectionTimeout: Math.min(SQS_CONNECTION_TIMEOUT_MS, requestTimeout),
      requestTimeout,
      throwOnRequestTimeout: true,
    },
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
  });
}

async function send(queueUrl: string, message: QueueMessage): Promise<string | undefined> {
  const client = createSqsClient();
  try {
    const response = await client.send(
      new SendMessageCommand({
        QueueUrl: queueUrl,
        MessageBody: message.body,
        MessageGroupId: message.groupId,
        MessageDeduplicationId: message.deduplicationId,
      }),
    );
    return response.MessageId;
  } finally {
    client.destroy();
  }
}
