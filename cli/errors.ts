/** Errors of the command line: a usage error exits 2, everything the core rejects exits 1. */

export type CliErrorCode =
  | 'USAGE'
  | 'NOT_A_REGISTRY'
  | 'REGISTRY_EXISTS'
  | 'LOCKED'
  | 'FILE_NOT_FOUND'
  | 'PORT_IN_USE';

export class CliError extends Error {
  override readonly name = 'CliError';
  readonly code: CliErrorCode;
  readonly exitCode: number;

  constructor(code: CliErrorCode, message: string, options?: { cause?: unknown; exitCode?: number }) {
    super(message, options);
    this.code = code;
    this.exitCode = options?.exitCode ?? (code === 'USAGE' ? 2 : 1);
  }
}

export function usage(message: string): CliError {
  return new CliError('USAGE', message);
}
