/** Errors of the AWS adapters and handlers: one base, stable codes, the SDK's error kept as `cause`. */

export type AwsErrorCode =
  | 'INVALIDATION_FAILED'
  | 'INVALIDATION_THROTTLED'
  | 'ENV_MISSING'
  | 'ENV_INVALID'
  | 'SECRET_UNAVAILABLE';

export class AwsAdapterError extends Error {
  override readonly name = 'AwsAdapterError';
  readonly code: AwsErrorCode;

  constructor(code: AwsErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
