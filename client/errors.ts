/**
 * Errors of the consumer library that are not trust failures (those are the core's `TrustError`, with the
 * codes of index-builder/verify.ts): each with a stable code, the original failure kept as `cause`.
 */

export type ClientErrorCode =
  /** A document asked of the trusted snapshot before what it hangs on was verified (a caller's defect). */
  'CLIENT_OUT_OF_ORDER';

export class ClientError extends Error {
  override readonly name = 'ClientError';
  readonly code: ClientErrorCode;

  constructor(code: ClientErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
