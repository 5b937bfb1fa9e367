/**
 * Registry configuration: who the registry is and whom it trusts. Stored by the caller (a JSON file
 * locally, deployment settings on AWS) and checked here.
 */
import { ConfigError } from './errors.ts';
import { KEY_FINGERPRINT, KEY_FINGERPRINT_FORM } from './fingerprint.ts';
import { shownUnparsedUrl } from './layout.ts';
import { textProblem } from './text.ts';

export type PublishPolicy = 'open' | 'restricted';
export type OwnershipRule = 'first-come' | 'none';

export interface TrustedPublisher {
  /** Primary key fingerprint: 40 uppercase hex digits (a v4 key) or 64 (v6). */
  readonly fingerprint: string;
  /** Plugin name globs this key may publish (`acme-*`); `*` for any. */
  readonly names: readonly string[];
  /** The armored public key. */
  readonly key: string;
  readonly label?: string;
}

/**
 * A key of the registry's operator: it may sign every lifecycle action (index-builder/actions.ts), the
 * operator-only ones too (remove a version, transfer a name, revoke a key). Never the registry's own key.
 */
export interface TrustedOperator {
  /** Primary key fingerprint: 40 uppercase hex digits (a v4 key) or 64 (v6). */
  readonly fingerprint: string;
  /** The armored public key. */
  readonly key: string;
  readonly label?: string;
}

export interface RegistryConfig {
  readonly name: string;
  /** Base URL of the published tree, no trailing slash. */
  readonly url: string;
  readonly description?: string;
  /**
   * `open`: any valid publisher signature is accepted (the key travels in the bundle as `publisher.asc`);
   * `restricted`: only keys listed in `publishers`, for the names they are given.
   */
  readonly policy: PublishPolicy;
  /** `first-come`: the first key to publish a name owns it; later versions need an owner's signature. */
  readonly ownership: OwnershipRule;
  readonly publishers: readonly TrustedPublisher[];
  /** The operator's keys (`plugindex operators add`): who may sign operator actions, and any action. */
  readonly operators: readonly TrustedOperator[];
  /** How long a signed snapshot stays valid (seconds). */
  readonly snapshotTtlSeconds: number;
  /**
   * Opt-in: a publish whose plugin document the store refuses for good after the log recorded it is voided
   * (a `void` entry the registry signs, log-void.ts) and its upload rejected (LOGGED_ENTRY_VOIDED), so the
   * rest of the batch publishes. Off by default: clients before the release that reads voids refuse the log.
   */
  readonly voidRefusedEntries?: true;
}

export const DEFAULT_SNAPSHOT_TTL_SECONDS = 7 * 24 * 3600;
/**
 * Ten years: the snapshot's expiry is the bound on a freeze attack, and past some 250 years from now it is
 * no RFC 3339 time (`+033715-09-02T…`, which other readers refuse), past some 270,000 no time at all: every
 * publish threw a RangeError at the snapshot, and the queue redelivered it until the dead-letter queue.
 */
export const MAX_SNAPSHOT_TTL_SECONDS = 10 * 365 * 24 * 3600;

const FINGERPRINT_EXPECTED = `expected ${KEY_FINGERPRINT_FORM}`;

function fail(path: string, message: string): never {
  throw new ConfigError('CONFIG_INVALID', `registry config ${path}: ${message}`);
}

function requireString(value: unknown, path: string): string {
  if (typeof value !== 'string' || value.length === 0) fail(path, 'expected a non-empty string');
  return value;
}

/** Text the registry publishes (its name, its description): what every reader reads alike (text.ts). */
function publishedText(value: string, path: string): string {
  const problem = textProblem(value);
  if (problem) fail(path, `${problem.why} (${problem.character}) is not allowed in published text`);
  return value;
}

/**
 * A stored config's JSON text as a value for `parseRegistryConfig`; text that is not JSON is the operator's
 * mistake, named by `where` (a file, an object's URL).
 * @throws ConfigError CONFIG_INVALID
 */
export function readConfigJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new ConfigError('CONFIG_INVALID', `${where} is not JSON: ${(cause as Error).message}`, { cause });
  }
}

/**
 * A registry's name as its config's `/name` must be (the functions check their `REGISTRY_NAME` default by it).
 * @throws ConfigError CONFIG_INVALID
 */
export function parseRegistryName(value: unknown): string {
  return publishedText(requireString(value, '/name'), '/name');
}

/**
 * A registry's URL as its config's `/url` must be, without a trailing `/` (the functions check their
 * `REGISTRY_URL` default by it).
 * @throws ConfigError CONFIG_INVALID
 */
export function parseRegistryUrl(value: unknown): string {
  const url = requireString(value, '/url').replace(/\/+$/, '');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // Shown as typed, but for what reads as credentials, a query's values or a fragment (see above).
    fail('/url', `expected an absolute http(s) URL, found ${JSON.stringify(shownUnparsedUrl(url))}`);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:')
    fail('/url', 'expected an http or https URL');
  // The URL is signed into every published document: credentials in it were published to everyone (and a
  // client refuses a URL that has them). Neither they nor a query or fragment, where tokens also go, are
  // echoed here.
  if (parsed.username !== '' || parsed.password !== '')
    fail('/url', 'expected no user name or password in the URL: it is published in every document');
  if (/[?#]/.test(url))
    fail(
      '/url',
      'expected no query or fragment: documents are found by paths below the URL, which is published',
    );
  return url;
}

/**
 * What no plugin name holds: anything but lowercase letters, digits and '-' (`layout.ts`), outside the glob
 * syntax picomatch reads (`* ? [ ] { } , ! ^ ( ) | + @`).
 */
const NOT_IN_ANY_NAME = /[^a-z0-9\-*?[\]{},!^()|+@]/u;

/**
 * Why the name glob a publisher is trusted for (`publishers add --names`, the deployed trust list) can match
 * no plugin name, or undefined: it holds a character no name does (`Acme-*`, `acme tools-*`, `acme_*`).
 * Taken, the publisher was told it was trusted and each of its publishes refused.
 * @example nameGlobProblem('Acme-*') // '"Acme-*" holds "A", which no plugin name does (...)'
 */
export function nameGlobProblem(glob: string): string | undefined {
  const found = NOT_IN_ANY_NAME.exec(glob)?.[0];
  if (found === undefined) return undefined;
  return `${JSON.stringify(glob)} holds ${JSON.stringify(found)}, which no plugin name does (lowercase letters and digits joined by '-'), so it would match none`;
}

/**
 * `parseRegistryConfig` of a config read from `where` (`registry config FILE`, `registry config s3://…`): a
 * refusal names the file or object as well as the field (`registry config /srv/r/plugindex.json /policy: …`),
 * where the field alone (`registry config /policy: …`) left the operator to guess which config was meant.
 * @throws ConfigError CONFIG_INVALID
 */
export function parseRegistryConfigAt(value: unknown, where: string): RegistryConfig {
  try {
    return parseRegistryConfig(value);
  } catch (error) {
    if (!(error instanceof ConfigError && error.code === 'CONFIG_INVALID')) throw error;
    throw new ConfigError('CONFIG_INVALID', `${where} ${error.message.replace(/^registry config /, '')}`, {
      cause: error,
    });
  }
}

/** Checks an untrusted config value; throws ConfigError('CONFIG_INVALID') naming the field. */
export function parseRegistryConfig(value: unknown): RegistryConfig {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('/', 'expected an object');
  const raw = value as Record<string, unknown>;
  const name = parseRegistryName(raw.name);
  const url = parseRegistryUrl(raw.url);
  const policy = raw.policy ?? 'open';
  if (policy !== 'open' && policy !== 'restricted') fail('/policy', 'expected "open" or "restricted"');
  const ownership = raw.ownership ?? 'first-come';
  if (ownership !== 'first-come' && ownership !== 'none')
    fail('/ownership', 'expected "first-come" or "none"');
  const ttl = raw.snapshotTtlSeconds ?? DEFAULT_SNAPSHOT_TTL_SECONDS;
  if (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < 60 || ttl > MAX_SNAPSHOT_TTL_SECONDS) {
    fail(
      '/snapshotTtlSeconds',
      `expected an integer number of seconds from 60 to ${MAX_SNAPSHOT_TTL_SECONDS} (ten years), found ${JSON.stringify(ttl)}`,
    );
  }
  const publishers = parseTrustedPublishers(raw.publishers ?? []);
  const operators = parseTrustedOperators(raw.operators ?? []);
  const voids = raw.voidRefusedEntries ?? false;
  if (typeof voids !== 'boolean')
    fail('/voidRefusedEntries', `expected true or false, found ${JSON.stringify(voids)}`);
  return {
    name,
    url,
    ...(typeof raw.description === 'string'
      ? { description: publishedText(raw.description, '/description') }
      : {}),
    policy,
    ownership,
    publishers,
    operators,
    snapshotTtlSeconds: ttl as number,
    ...(voids ? { voidRefusedEntries: true as const } : {}),
  };
}

/**
 * Checks a list of trusted publishers (the `publishers` of a registry config, or a trust list deployed on
 * its own); throws ConfigError('CONFIG_INVALID') naming the entry.
 */
export function parseTrustedPublishers(list: unknown): TrustedPublisher[] {
  if (!Array.isArray(list)) fail('/publishers', 'expected an array');
  return list.map((entry: unknown, i): TrustedPublisher => {
    if (typeof entry !== 'object' || entry === null) fail(`/publishers/${i}`, 'expected an object');
    const p = entry as Record<string, unknown>;
    const fingerprint = requireString(p.fingerprint, `/publishers/${i}/fingerprint`).toUpperCase();
    if (!KEY_FINGERPRINT.test(fingerprint)) fail(`/publishers/${i}/fingerprint`, FINGERPRINT_EXPECTED);
    const names = p.names;
    if (
      !Array.isArray(names) ||
      names.length === 0 ||
      !names.every((n) => typeof n === 'string' && n.length > 0)
    ) {
      fail(`/publishers/${i}/names`, 'expected a non-empty array of name globs');
    }
    const key = requireString(p.key, `/publishers/${i}/key`);
    return {
      fingerprint,
      names: names as string[],
      key,
      ...(typeof p.label === 'string' ? { label: p.label } : {}),
    };
  });
}

/**
 * Checks a list of operator keys (the `operators` of a registry config, or of a deployed trust list);
 * throws ConfigError('CONFIG_INVALID') naming the entry.
 */
export function parseTrustedOperators(list: unknown): TrustedOperator[] {
  if (!Array.isArray(list)) fail('/operators', 'expected an array');
  return list.map((entry: unknown, i): TrustedOperator => {
    if (typeof entry !== 'object' || entry === null) fail(`/operators/${i}`, 'expected an object');
    const o = entry as Record<string, unknown>;
    const fingerprint = requireString(o.fingerprint, `/operators/${i}/fingerprint`).toUpperCase();
    if (!KEY_FINGERPRINT.test(fingerprint)) fail(`/operators/${i}/fingerprint`, FINGERPRINT_EXPECTED);
    const key = requireString(o.key, `/operators/${i}/key`);
    if (o.label !== undefined && typeof o.label !== 'string')
      fail(`/operators/${i}/label`, 'expected a string');
    return { fingerprint, key, ...(typeof o.label === 'string' ? { label: o.label } : {}) };
  });
}

/** A config (parsed or not) with its trust replaced by a deployed list. */
export type WithDeployedTrust<C extends object> = Omit<C, 'policy' | 'publishers' | 'operators'> & {
  readonly policy: 'restricted';
  readonly publishers: readonly TrustedPublisher[];
  readonly operators: readonly TrustedOperator[];
};

/**
 * The trust a deployment runs with. A trust list deployed with the code (on AWS, `-c publishers=FILE`)
 * wins over the config object's own policy and publishers, and restricts publishing to it: whoever can
 * write the bucket that holds the config object cannot widen trust. An empty list trusts no one; no list
 * (`undefined`) leaves the config as it is.
 *
 * The operators come with it: a deployed list names every operator key (none when it lists none), so bucket
 * access cannot add one either.
 *
 * It may be applied to the config object before parsing, as the functions do: the policy, publishers and
 * operators it replaces are then never read, so a deployed list also stands in for ones the object holds
 * that would not parse.
 *
 * @example
 * const config = parseRegistryConfig(withDeployedTrustList(JSON.parse(text), deployedPublishers));
 */
export function withDeployedTrustList<C extends object>(
  config: C,
  list: readonly TrustedPublisher[] | undefined,
  operators: readonly TrustedOperator[] = [],
): C | WithDeployedTrust<C> {
  return list === undefined ? config : { ...config, policy: 'restricted', publishers: list, operators };
}

/** A publisher key as `publishers add` is given it: the primary fingerprint, every (sub)key's, the armor. */
export interface PublisherKey {
  readonly fingerprint: string;
  readonly fingerprints: readonly string[];
  readonly armored: string;
}

/**
 * The config that trusts one more publisher for the given name globs (replacing that key's earlier entry):
 * trusting anyone by name makes the registry `restricted`, since an open registry would trust every key
 * anyway. The registry's own signing key (any of its subkeys) can never be a publisher key: its signature
 * would make a submission indistinguishable from what the registry itself signs.
 * @throws ConfigError CONFIG_REGISTRY_KEY_AS_PUBLISHER, or CONFIG_INVALID for empty globs.
 */
export function withTrustedPublisher(
  config: RegistryConfig,
  publisher: { readonly key: PublisherKey; readonly names: readonly string[]; readonly label?: string },
  registryFingerprints: readonly string[],
): RegistryConfig {
  const { key } = publisher;
  const fingerprint = key.fingerprint.toUpperCase();
  const registry = new Set(registryFingerprints.map((fp) => fp.toUpperCase()));
  if (key.fingerprints.some((fp) => registry.has(fp.toUpperCase()))) {
    throw new ConfigError(
      'CONFIG_REGISTRY_KEY_AS_PUBLISHER',
      `${key.fingerprint} is the registry's signing key; it can never be a publisher key`,
    );
  }
  const entry = {
    fingerprint,
    names: publisher.names,
    key: key.armored,
    ...(publisher.label ? { label: publisher.label } : {}),
  };
  const publishers = [...config.publishers.filter((p) => p.fingerprint !== fingerprint), entry];
  return parseRegistryConfig({ ...config, policy: 'restricted', publishers });
}

/**
 * The config that trusts one more operator key (replacing that key's earlier entry). The registry's own
 * signing key (any of its subkeys) can never be an operator key, as it can never be a publisher's: an
 * action it signed would be indistinguishable from what the registry itself signs.
 * @throws ConfigError CONFIG_REGISTRY_KEY_AS_OPERATOR.
 */
export function withOperator(
  config: RegistryConfig,
  operator: { readonly key: PublisherKey; readonly label?: string },
  registryFingerprints: readonly string[],
): RegistryConfig {
  const { key } = operator;
  const fingerprint = key.fingerprint.toUpperCase();
  const registry = new Set(registryFingerprints.map((fp) => fp.toUpperCase()));
  if (key.fingerprints.some((fp) => registry.has(fp.toUpperCase()))) {
    throw new ConfigError(
      'CONFIG_REGISTRY_KEY_AS_OPERATOR',
      `${key.fingerprint} is the registry's signing key; it can never be an operator key`,
    );
  }
  const entry = { fingerprint, key: key.armored, ...(operator.label ? { label: operator.label } : {}) };
  const operators = [...config.operators.filter((o) => o.fingerprint !== fingerprint), entry];
  return parseRegistryConfig({ ...config, operators });
}
