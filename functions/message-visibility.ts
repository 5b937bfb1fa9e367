/**
 * Makes the messages the publish function answers failed visible again at once. A message answered failed
 * (`batchItemFailures`) otherwise comes back only once the queue's visibility timeout is over (90 minutes,
 * six times the function's), and on the FIFO queue it holds the one message group till then: every later
 * publish waited those 90 minutes.
 */
import { ChangeMessageVisibilityBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { errorFields, type Logger } from './logger.ts';

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
