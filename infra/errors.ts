/** Errors of the CDK app, raised at synth time: a deploy never starts from a setting it cannot honour. */

export type InfraErrorCode = 'CONTEXT_INVALID' | 'PUBLISHERS_INVALID';

export class InfraError extends Error {
  override readonly name = 'InfraError';
  readonly code: InfraErrorCode;

  constructor(code: InfraErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
