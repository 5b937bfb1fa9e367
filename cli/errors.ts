/**
 * Errors of the command line: a usage error exits 2, a trust refusal 3, everything else the core or the
 * client rejects 1.
 */
import { ClientError } from '../client/errors.ts';
import { TrustError } from '../index-builder/errors.ts';
import type { SearchProblemCode } from '../index-builder/search.ts';

export type CliErrorCode =
  | 'USAGE'
  | 'NOT_A_REGISTRY'
  | 'REGISTRY_EXISTS'
  | 'LOCKED'
  | 'FILE_NOT_FOUND'
  | 'FILE_NOT_WRITTEN'
  | 'PORT_IN_USE'
  /** `serve --host`: no address of this machine (another's, or a name that does not resolve). */
  | 'HOST_UNAVAILABLE'
  | 'FILE_EXISTS'
  | 'PLUGIN_NOT_FOUND'
  | 'REGISTRY_NOT_CONFIGURED'
  | 'ROTATION_PENDING'
  | 'SECRET_KEY_GIVEN'
  | 'TRUST_ENTRY_NOT_FOUND'
  | 'OUTPUT_OVER_INPUT'
  | 'OUTPUT_OVER_SECRET_KEY'
  | 'OUTPUT_IN_REGISTRY'
  | 'SERVICE_FAILED'
  | 'OUTCOME_TIMEOUT'
  /** `publishers add` or `operators add` of a key the registry's operator revoked (`keys/revoked.json`). */
  | 'KEY_REVOKED'
  /** `verify --url`'s URL or mirror, refused by the rule `registry add` takes a registry's by (exit 2). */
  | 'REGISTRY_URL_INVALID'
  /**
   * A plugin name, version spec, reference, manifest URL or `--platform` typed on the command line, refused
   * (exit 2) by the client's rule (cli/client.ts `argumentRefusal`).
   */
  | 'REQUEST_INVALID'
  /** `search`'s words or filters, refused (exit 2) by the rule GET /search refuses them by. */
  | SearchProblemCode;

export class CliError extends Error {
  override readonly name = 'CliError';
  readonly code: CliErrorCode;
  readonly exitCode: number;
  /**
   * What a program reading `--json` needs besides the code and message (OUTCOME_TIMEOUT: where the outcome
   * will be), put beside them in the error's JSON.
   */
  readonly detail?: Readonly<Record<string, unknown>>;

  constructor(
    code: CliErrorCode,
    message: string,
    options?: { cause?: unknown; exitCode?: number; detail?: Readonly<Record<string, unknown>> },
  ) {
    super(message, options);
    this.code = code;
    this.exitCode = options?.exitCode ?? (code === 'USAGE' ? 2 : 1);
    if (options?.detail) this.detail = options.detail;
  }
}

export function usage(message: string): CliError {
  return new CliError('USAGE', message);
}

/**
 * True for a trust refusal: a TrustError from the core's checks, or a client refusal (an oversized
 * response, a lock or install that no longer matches what was signed). Commands exit 3 for these.
 */
export function isRefusal(error: unknown): boolean {
  return error instanceof TrustError || (error instanceof ClientError && error.refusal);
}
