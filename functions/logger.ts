/** Structured JSON logs, one line per entry, as CloudWatch Logs Insights queries them. */

export type LogFields = Readonly<Record<string, unknown>>;

/**
 * The publish function's log line for a CloudFront invalidation that failed (functions/handlers.ts), which
 * the stack's alarm counts from its logs (infra/constructs/alarms.ts): one name for both.
 */
export const INVALIDATION_FAILED_LOG = 'invalidation failed';

/**
 * The publish function's log line for a refused registry config (its trusted keys, its snapshot lifetime,
 * or an object not JSON or refused at any other field, the published snapshot then signed again as it is)
 * under which the schedule's refresh alone proceeds (functions/handlers.ts): the invocation succeeds, so no
 * error alarm sees it; the stack's alarm counts these lines (infra/constructs/alarms.ts). One name for both.
 */
export const CONFIG_REFUSED_LOG = 'registry config refused: refreshing the snapshot only';

/**
 * The publish function's log line for an upload whose message it took at its last receipt and could not
 * announce again on the queue (functions/message-visibility.ts): the message is done either way (back, it
 * would reach the dead-letter queue), so the upload waits in incoming/ for whatever invocation comes next,
 * the schedule's refresh at the latest, with nothing in the queue for the age alarm to see. The stack's
 * alarm counts these lines (infra/constructs/alarms.ts). One name for both.
 */
export const UPLOAD_NOT_ANNOUNCED_LOG = 'upload not announced again: it waits in incoming/';

/**
 * The publish function's log line for a logged entry its flush or the schedule's refresh left uncounted
 * (index-builder/pipeline/stuck-entries.ts `headLeavingStuck`): a publish or an action past the head the
 * published snapshot counts that no document it binds shows. The snapshot is renewed all the same and the
 * invocation succeeds, so nothing else tells the operator that the log head lags until the entry is
 * published, applied or voided; the line names the entry and what to do.
 */
export const LOGGED_ENTRY_STUCK_LOG = 'logged entry stuck: the snapshot renewed without counting it';

export interface Logger {
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

export function jsonLogger(
  service: string,
  write: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
): Logger {
  const log = (level: string, message: string, fields: LogFields = {}): void => {
    write(JSON.stringify({ level, service, message, timestamp: new Date().toISOString(), ...fields }));
  };
  return {
    info: (message, fields) => log('INFO', message, fields),
    warn: (message, fields) => log('WARN', message, fields),
    error: (message, fields) => log('ERROR', message, fields),
  };
}

/** An error as a log entry holds it: what powertools' LogFormatter.formatError keeps, and our `code`. */
export interface ErrorDescription {
  readonly name: string;
  /** Our errors' stable code (AwsAdapterError, the core's errors), or a Node.js system error's. */
  readonly code?: string;
  readonly message: string;
  readonly stack?: string;
  /** The error this one wraps, described the same way; a thrown value that is not an Error, as text. */
  readonly cause?: ErrorDescription | string | number | boolean | null;
}

/** Causes followed before the chain is cut: an SDK error seldom wraps more than three. */
const MAX_CAUSES = 8;

function describeError(error: unknown, seen: Set<unknown>): ErrorDescription {
  if (!(error instanceof Error)) return { name: typeof error, message: String(error) };
  seen.add(error);
  const code = (error as { code?: unknown }).code;
  const cause = error.cause;
  return {
    name: error.name,
    ...(typeof code === 'string' || typeof code === 'number' ? { code: String(code) } : {}),
    message: error.message,
    ...(error.stack === undefined ? {} : { stack: error.stack }),
    ...(cause === undefined ? {} : { cause: describeCause(cause, seen) }),
  };
}

function describeCause(cause: unknown, seen: Set<unknown>): ErrorDescription['cause'] {
  // A cycle or a very long chain must not stop the one line that reports the failure.
  if (seen.has(cause) || seen.size >= MAX_CAUSES) return '(cause chain cut here)';
  if (cause instanceof Error) return describeError(cause, seen);
  if (cause === null || ['string', 'number', 'boolean'].includes(typeof cause))
    return cause as string | number | boolean | null;
  return String(cause);
}

/**
 * The fields of an error log entry: `error` with its name, code, message, stack and `cause` chain, each
 * cause described the same way. JSON-safe whatever was thrown.
 *
 * @example
 * logger.error('publish failed', errorFields(error)); // {"error": {"name": "StoreError", "code": "STORE_IO", …}}
 */
export function errorFields(error: unknown): LogFields {
  return { error: describeError(error, new Set()) };
}
