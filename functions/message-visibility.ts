/**
 * Makes the messages the publish function answers failed visible again at once. A message answered failed
 * (`batchItemFailures`) otherwise comes back only once the queue's visibility timeout is over (90 minutes,
 * six times the function's), and on the FIFO queue it holds the one message group till then: every later
 * publish waited those 90 minutes. And announces again the uploads of a message taken at its last receipt,
 * which is done instead (`announceAgain`).
 */
import { ChangeMessageVisibilityBatchCommand, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { ANNOUNCED_AGAIN_ATTRIBUTE, PUBLISH_MESSAGE_GROUP } from '../adapters/publish-queue.ts';
import { errorFields, type Logger, UPLOAD_NOT_ANNOUNCED_LOG } from './logger.ts';

/** A message to make visible again: its id (for the log) and the handle of the receipt that holds it. */
export interface HeldMessage {
  readonly messageId: string;
  readonly receiptHandle: string;
}

/** The most entries a ChangeMessageVisibilityBatch takes (the event source mapping's batches hold 10). */
const VISIBILITY_BATCH_ENTRIES = 10;

/** The log line of a message left to its visibility timeout: its change failed, or the whole call did. */
export const VISIBILITY_NOT_CHANGED_LOG = 'message visibility not changed';

/**
 * Sets the visibility timeout of `messages` to 0 on the queue at `queueUrl`, so the next invocation takes
 * them at once; returns the ids of those changed. Never throws: a message whose change failed (the call
 * thrown, or its entry among `Failed`, which SQS reports with an HTTP 200) is logged and comes back after the
 * queue's visibility timeout, as it did before; its answer (failed) is the caller's either way. Entries are
 * named by their place (`Id` takes only letters, digits, `-` and `_`, up to 80: a message id need not).
 */
export async function releaseMessages(
  sqs: SQSClient,
  queueUrl: string,
  messages: readonly HeldMessage[],
  logger: Logger,
): Promise<readonly string[]> {
  const released: string[] = [];
  for (let start = 0; start < messages.length; start += VISIBILITY_BATCH_ENTRIES) {
    const chunk = messages.slice(start, start + VISIBILITY_BATCH_ENTRIES);
    try {
      const answer = await sqs.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: queueUrl,
          Entries: chunk.map((message, i) => ({
            Id: String(i),
            ReceiptHandle: message.receiptHandle,
            VisibilityTimeout: 0,
          })),
        }),
      );
      const failed = new Map((answer.Failed ?? []).map((entry) => [entry.Id, entry]));
      for (const [i, message] of chunk.entries()) {
        const entry = failed.get(String(i));
        if (entry)
          logger.warn(VISIBILITY_NOT_CHANGED_LOG, {
            messageId: message.messageId,
            code: entry.Code,
            reason: entry.Message,
          });
        else released.push(message.messageId);
      }
    } catch (error) {
      logger.warn(VISIBILITY_NOT_CHANGED_LOG, {
        messageIds: chunk.map(({ messageId }) => messageId),
        ...errorFields(error),
      });
    }
  }
  return released;
}

/** A message taken at its last receipt, and the uploads it announces that the rounds left in incoming/. */
export interface LastReceipt {
  readonly messageId: string;
  readonly keys: readonly string[];
  /** How many times its uploads were announced again before (the message's `ANNOUNCED_AGAIN_ATTRIBUTE`). */
  readonly announcedAgain: number;
}

/**
 * The body of an upload's announcement as the queue gets it from S3 through EventBridge (the `UploadCreated`
 * rule of infra/constructs/publishing.ts), which functions/events.ts reads: one upload each.
 */
export function uploadAnnouncement(bucket: string, key: string): string {
  return JSON.stringify({
    source: 'aws.s3',
    'detail-type': 'Object Created',
    detail: { bucket: { name: bucket }, object: { key } },
  });
}

/**
 * Announces again on the queue at `queueUrl` each upload a message taken at its last receipt leaves
 * waiting: a fresh message in the publish group (`PUBLISH_MESSAGE_GROUP`), as the upload's own was, so the
 * next invocation publishes it at once. Answered failed, that message would only reach the dead-letter
 * queue for an upload waiting unharmed; deleted with nothing sent, the upload waited for whatever invocation
 * came next (the schedule's refresh, up to 6 hours), nothing in the queue for the age alarm to see. Each
 * message's deduplication id is its own (`again-` and the message's id, the upload's place in it): SQS's
 * retry of a send whose answer was lost is one message, and the next time round is another message's id.
 * Each carries how many times it has been announced so (`ANNOUNCED_AGAIN_ATTRIBUTE`): the caller answers
 * failed, to the dead-letter queue, a message past `MAX_ANNOUNCEMENTS_AGAIN`.
 * Never throws: a send that fails is logged as an error (`UPLOAD_NOT_ANNOUNCED_LOG`, which an alarm counts),
 * the message's answer (done) unchanged. Returns how many were sent.
 */
export async function announceAgain(
  sqs: SQSClient | undefined,
  queueUrl: string | undefined,
  bucket: string,
  messages: readonly LastReceipt[],
  logger: Logger,
): Promise<number> {
  let sent = 0;
  for (const { messageId, keys, announcedAgain } of messages) {
    for (const [i, key] of keys.entries()) {
      try {
        // Without a client or the queue (a function wired without them) nothing can be sent: the same loss.
        if (sqs === undefined || queueUrl === undefined) throw new Error('no SQS client or queue URL');
        await sqs.send(
          new SendMessageCommand({
            QueueUrl: queueUrl,
            MessageBody: uploadAnnouncement(bucket, key),
            MessageGroupId: PUBLISH_MESSAGE_GROUP,
            MessageDeduplicationId: `again-${messageId}-${i}`,
            // Counted, so an upload left round after round reaches the dead-letter queue in the end.
            MessageAttributes: {
              [ANNOUNCED_AGAIN_ATTRIBUTE]: { DataType: 'Number', StringValue: String(announcedAgain + 1) },
            },
          }),
        );
        sent += 1;
        logger.info('upload announced again', { messageId, key });
      } catch (error) {
        logger.error(UPLOAD_NOT_ANNOUNCED_LOG, { messageId, key, ...errorFields(error) });
      }
    }
  }
  return sent;
}
