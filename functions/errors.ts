/** Errors of the AWS adapters and handlers: one base, stable codes, the SDK's error kept as `cause`. */

export type AwsErrorCode =
  | 'INVALIDATION_FAILED'
  | 'INVALIDATION_THROTTLED'
  | 'ENV_MISSING'
  | 'ENV_INVALID'
  | 'SECRET_UNAVAILABLE'
  /** The signing secret holds a key the registry does not publish (a rotation not published yet). */
  | 'SIGNING_KEY_NOT_PUBLISHED';

export class AwsAdapterError extends Error {
  override readonly name = 'AwsAdapterError';
  readonly code: AwsErrorCode;

  constructor(code: AwsErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
