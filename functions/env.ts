/**
 * Typed access to the environment of a Lambda function, read once at cold start. A missing or malformed
 * variable fails fast with its name and what was expected, instead of surfacing later as `undefined`.
 */
import { readFileSync } from 'node:fs';
import { minSnapshotTtlSeconds } from '../adapters/publish-queue.ts';
import {
  MAX_SNAPSHOT_TTL_SECONDS,
  parseRegistryName,
  parseRegistryUrl,
  parseTrustedOperators,
  parseTrustedPublishers,
  type TrustedOperator,
  type TrustedPublisher,
} from '../index-builder/config.ts';
import { PlugindexError } from '../index-builder/errors.ts';
import { CONFIG_KEY } from '../index-builder/layout.ts';
import { AwsAdapterError } from './errors.ts';

/** The deployed trust list, beside each function's bundle (written at synth by infra/publishers.ts). */
export const PUBLISHERS_FILE = 'publishers.json';

type Env = Readonly<Record<string, string | undefined>>;

export function requireString(env: Env, name: string): string {
  const value = env[name];
  if (value === undefined || value.trim() === '') {
    throw new AwsAdapterError('ENV_MISSING', `environment variable ${name} is required`);
  }
  return value.trim();
}

export function optionalString(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value ? value : undefined;
}

export function optionalInteger(
  env: Env,
  name: string,
  fallback: number,
  min = 0,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const raw = optionalString(env, name);
  if (raw === undefined) return fallback;
  // Decimal digits only: Number() also reads "1e3", "0x100" and "1.0", and past 2^53 rounds.
  const value = /^[0-9]{1,16}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new AwsAdapterError(
      'ENV_INVALID',
      `environment variable ${name} must be a decimal integer from ${min} to ${max}, found ${JSON.stringify(raw)}`,
    );
  }
  return value;
}

/**
 * `{ [field]: value }` for a variable that is set, checked at cold start by the rule its config field has
 * (config.ts): a malformed default was taken, and failed only at the first publish without a config object,
 * as `registry config /url`, naming no variable.
 */
function optionalSetting<F extends string>(
  env: Env,
  name: string,
  field: F,
  parse: (value: string) => string,
): { [K in F]?: string } {
  const raw = optionalString(env, name);
  if (raw === undefined) return {};
  try {
    return { [field]: parse(raw) } as { [K in F]: string };
  } catch (error) {
    if (!(error instanceof PlugindexError)) throw error;
    throw new AwsAdapterError('ENV_INVALID', `environment variable ${name} is invalid: ${error.message}`, {
      cause: error,
    });
  }
}

/** Settings of the publish function. */
export interface FunctionConfig {
  readonly intakeBucket: string;
  readonly siteBucket: string;
  /** Secrets Manager id of `{"armoredKey": "...", "passphrase": "..."}`: the registry signing key. */
  readonly signingKeySecretId: string;
  /** Key of the registry config (plugindex.json) in the intake bucket. */
  readonly configKey: string;
  /** CloudFront distribution to invalidate; none in tests or when the site is not behind CloudFront. */
  readonly distributionId: string | undefined;
  /** An S3-compatible endpoint (path-style addressing), e.g. a local server in tests; AWS S3 when unset. */
  readonly s3Endpoint: string | undefined;
  /**
   * Defaults for a registry whose config object is not uploaded yet (from the CDK context): an open,
   * first-come registry with this name, URL and snapshot lifetime. The config object, when present, wins.
   */
  readonly defaults: { readonly name?: string; readonly url?: string; readonly snapshotTtlSeconds?: number };
  /**
   * Trusted publishers deployed with the functions (`-c publishers=FILE`), or undefined. When set, the
   * registry is restricted to them whatever the config object says: trust is deployed as code.
   */
  readonly publishers: readonly TrustedPublisher[] | undefined;
  /** The operator's keys deployed with the trust list (none when it lists none), or undefined without one. */
  readonly operators: readonly TrustedOperator[] | undefined;
  /**
   * How often the stack's schedule re-signs the snapshot (`SNAPSHOT_REFRESH_SECONDS`), or undefined where
   * none does (tests): a snapshot lifetime under two of them (`minSnapshotTtlSeconds`) is refused, since
   * clients would see the snapshot expired between refreshes.
   */
  readonly snapshotRefreshSeconds: number | undefined;
  /**
   * The URL of the queue that invokes the function (`PUBLISH_QUEUE_URL`, set by the stack), or undefined
   * (tests, a direct invocation): the messages it answers failed are made visible again at once there
   * (functions/message-visibility.ts); without it they come back after the queue's visibility timeout.
   */
  readonly queueUrl?: string;
}

/**
 * Settings from the environment, and the deployed trust list from `publishersFile` when that file exists.
 * @example const config = readFunctionConfig(process.env, new URL('./publishers.json', import.meta.url));
 */
export function readFunctionConfig(env: Env, publishersFile?: string | URL): FunctionConfig {
  const settings = new Settings();
  const trust = settings.read(() =>
    publishersFile === undefined ? undefined : readDeployedTrust(publishersFile),
  );
  // At least a minute (the schedule's least rate), and no longer than half the longest lifetime, which must
  // span two.
  const refresh = settings.read(() =>
    optionalString(env, 'SNAPSHOT_REFRESH_SECONDS')
      ? optionalInteger(env, 'SNAPSHOT_REFRESH_SECONDS', 0, 60, Math.floor(MAX_SNAPSHOT_TTL_SECONDS / 2))
      : undefined,
  );
  // A required setting that failed reads as '' here only until `check` below, which then throws.
  const config: FunctionConfig = {
    snapshotRefreshSeconds: refresh,
    publishers: trust?.publishers,
    operators: trust?.operators,
    intakeBucket: settings.read(() => requireString(env, 'INTAKE_BUCKET')) ?? '',
    siteBucket: settings.read(() => requireString(env, 'SITE_BUCKET')) ?? '',
    signingKeySecretId: settings.read(() => requireString(env, 'SIGNING_KEY_SECRET_ID')) ?? '',
    configKey: optionalString(env, 'REGISTRY_CONFIG_KEY') ?? CONFIG_KEY,
    distributionId: optionalString(env, 'DISTRIBUTION_ID'),
    queueUrl: optionalString(env, 'PUBLISH_QUEUE_URL'),
    s3Endpoint: optionalString(env, 'S3_ENDPOINT'),
    defaults: {
      ...settings.read(() => optionalSetting(env, 'REGISTRY_NAME', 'name', parseRegistryName)),
      ...settings.read(() => optionalSetting(env, 'REGISTRY_URL', 'url', parseRegistryUrl)),
      ...settings.read(() =>
        optionalString(env, 'SNAPSHOT_TTL_SECONDS')
          ? {
              snapshotTtlSeconds: optionalInteger(
                env,
                'SNAPSHOT_TTL_SECONDS',
                0,
                60,
                MAX_SNAPSHOT_TTL_SECONDS,
              ),
            }
          : {},
      ),
    },
  };
  const ttl = config.defaults.snapshotTtlSeconds;
  if (refresh !== undefined && ttl !== undefined && ttl < minSnapshotTtlSeconds(refresh))
    settings.read(() => {
      throw new AwsAdapterError(
        'ENV_INVALID',
        `environment variable SNAPSHOT_TTL_SECONDS is ${ttl}, shorter than ${minSnapshotTtlSeconds(refresh)}: a snapshot must outlive two refreshes, and the schedule re-signs it every ${refresh} s (SNAPSHOT_REFRESH_SECONDS=${refresh})`,
      );
    });
  settings.check();
  return config;
}

/**
 * Settings read one by one, every failure kept: the cold start then names them all in one error, not the
 * first only (an operator who fixed INTAKE_BUCKET met SITE_BUCKET at the next deploy).
 */
class Settings {
  readonly #problems: AwsAdapterError[] = [];

  /** What `read` gives, or undefined when it fails (kept for `check`). */
  read<T>(read: () => T): T | undefined {
    try {
      return read();
    } catch (error) {
      if (!(error instanceof AwsAdapterError)) throw error;
      this.#problems.push(error);
      return undefined;
    }
  }

  /**
   * @throws AwsAdapterError the one failure, or one naming every failure: ENV_MISSING when each is a
   * missing variable, else ENV_INVALID
   */
  check(): void {
    const problems = this.#problems;
    if (problems.length === 0) return;
    if (problems.length === 1) throw problems[0];
    throw new AwsAdapterError(
      problems.every((p) => p.code === 'ENV_MISSING') ? 'ENV_MISSING' : 'ENV_INVALID',
      `${problems.length} problems with the function's settings: ${problems.map((p) => p.message).join('; ')}`,
      { cause: new AggregateError(problems) },
    );
  }
}

/** The deployed publishers, or undefined when no file was deployed; anything unreadable fails the cold start. */
export function readDeployedPublishers(file: string | URL): readonly TrustedPublisher[] | undefined {
  return readDeployedTrust(file)?.publishers;
}

/**
 * The deployed trust list (publishers and operators), or undefined when no file was deployed; anything
 * unreadable fails the cold start.
 */
export function readDeployedTrust(
  file: string | URL,
):
  | { readonly publishers: readonly TrustedPublisher[]; readonly operators: readonly TrustedOperator[] }
  | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new AwsAdapterError('ENV_INVALID', `cannot read ${String(file)}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  try {
    const { publishers, operators } = JSON.parse(text) as { publishers?: unknown; operators?: unknown };
    return {
      publishers: parseTrustedPublishers(publishers),
      operators: parseTrustedOperators(operators ?? []),
    };
  } catch (error) {
    const detail =
      error instanceof PlugindexError || error instanceof SyntaxError ? error.message : String(error);
    throw new AwsAdapterError('ENV_INVALID', `deployed trust list ${String(file)} is invalid: ${detail}`, {
      cause: error,
    });
  }
}

/** Settings of the search function: it only reads the site, so it needs nothing of publishing's. */
export interface SearchFunctionConfig {
  readonly siteBucket: string;
  /** As in `FunctionConfig`: a local S3 in tests, AWS S3 when unset. */
  readonly s3Endpoint: string | undefined;
}

export function readSearchFunctionConfig(env: Env): SearchFunctionConfig {
  return { siteBucket: requireString(env, 'SITE_BUCKET'), s3Endpoint: optionalString(env, 'S3_ENDPOINT') };
}
