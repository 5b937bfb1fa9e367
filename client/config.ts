/**
 * The client configuration, kept as JSON at `<config dir>/config.json` (client/paths.ts). Its registry
 * entries follow the PulumiCost spec's `discovery.registries` (name, url, priority, timeout, auth with
 * `api_key: "${ENV}"`), so the spec's YAML maps onto it one to one later; it is JSON because the client must
 * start fast, with no YAML parser on the hot path.
 *
 * A secret is never written here: every credential is a reference, `${ENV_NAME}` or `file:PATH`, resolved
 * when a registry is read online (`resolveSecret`), never for an offline run. A registry's key is pinned by fingerprint; its armored copy
 * lives in the data directory.
 *
 * Pure: text in, values out; the caller reads and writes the file.
 *
 * @example
 * const config = parseClientConfig(text, '/home/me/.config/plugindex/config.json');
 * const { config: next, change } = addRegistry(config, entry, { force: false });
 * if (change !== 'unchanged') writeFile(path, serializeClientConfig(next));
 */
import {
  isLoopbackHost,
  registryIdentity,
  shownQuery,
  shownUnparsedUrl,
  shownUrlText,
} from '../index-builder/layout.ts';
import { ClientError } from './errors.ts';
import {
  compareStrings,
  describeSecretField,
  FINGERPRINT,
  isNonNegativeInteger,
  isObject,
  Problems,
  parseJsonObject,
  REGISTRY_NAME,
} from './json-input.ts';

export const CLIENT_CONFIG_SCHEMA = 'plugindex/client-config/v1';

/** A secret is never written in config: it is a reference, '${ENV_NAME}' or 'file:PATH'. */
export type RegistryAuth =
  | { readonly type: 'bearer_token'; readonly bearer_token: string }
  /** `header` defaults to 'X-API-Key'. */
  | { readonly type: 'api_key'; readonly api_key: string; readonly header?: string }
  /** `username` is plain; `password` is a reference. */
  | { readonly type: 'basic_auth'; readonly username: string; readonly password: string };

export interface RegistryEntry {
  /** `[a-z0-9][a-z0-9._-]{0,63}`. */
  readonly name: string;
  /** Normalized: no trailing slash. */
  readonly url: string;
  /** Integer >= 0; lower is tried and ranked first (the spec's priority: 1 before 2). */
  readonly priority: number;
  /** The pinned registry key, 40 uppercase hex digits (its armored copy lives in the data dir, not here). */
  readonly key_fingerprint: string;
  /** Other URLs serving the same registry, tried in order; normalized like `url`. */
  readonly mirrors: readonly string[];
  readonly ca_file?: string;
  /** Positive. */
  readonly timeout_seconds?: number;
  readonly auth?: RegistryAuth;
}

export interface ClientConfig {
  readonly schema: typeof CLIENT_CONFIG_SCHEMA;
  readonly registries: readonly RegistryEntry[];
}

export const EMPTY_CLIENT_CONFIG: ClientConfig = Object.freeze({
  schema: CLIENT_CONFIG_SCHEMA,
  registries: Object.freeze([]),
});

const ENV_REFERENCE = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/;
/** An HTTP header name (RFC 9110 token). */
/** An HTTP header name (RFC 9110 token): what an `api_key` header may be called. */
export const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const AUTH_TYPES = ['bearer_token', 'api_key', 'basic_auth'] as const;
export const DEFAULT_API_KEY_HEADER = 'X-API-Key';
/** A registry's wait for headers, and for each part of a body, unless its entry says otherwise. */
export const DEFAULT_TIMEOUT_SECONDS = 30;

/** The fields each object may hold, in the order `serializeClientConfig` writes them. */
const CONFIG_FIELDS = ['schema', 'registries'] as const;
const ENTRY_FIELDS = [
  'name',
  'url',
  'priority',
  'key_fingerprint',
  'mirrors',
  'ca_file',
  'timeout_seconds',
  'auth',
] as const;
const AUTH_FIELDS: Readonly<Record<RegistryAuth['type'], readonly string[]>> = {
  bearer_token: ['type', 'bearer_token'],
  api_key: ['type', 'api_key', 'header'],
  basic_auth: ['type', 'username', 'password'],
};

/**
 * Reads `config.json`. Every field is checked and every problem reported, one line each as
 * `file#/json/pointer: expected X, found Y`. Fields this version does not know are refused rather than
 * ignored: a misspelt `ca_file` or `auth` silently dropped would send requests without the CA or the
 * credentials the user meant.
 * @throws ClientError CLIENT_CONFIG_INVALID; a literal secret is refused with the hint to use `${ENV}` or
 *   `file:PATH` (and is never repeated in the message); two registries of one name are invalid.
 */
export function parseClientConfig(text: string, file: string): ClientConfig {
  const problems = new Problems(file, 'CLIENT_CONFIG_INVALID');
  const value = parseJsonObject(text, problems);
  // A config of another schema means other fields: checking them against this one would only be noise.
  if (value.schema !== CLIENT_CONFIG_SCHEMA) {
    problems.expect(
      '/schema',
      `"${CLIENT_CONFIG_SCHEMA}" (the only client configuration this version reads)`,
      value.schema,
    );
    throw problems.error();
  }
  problems.unknownFields('', value, CONFIG_FIELDS);
  const registries: RegistryEntry[] = [];
  if (!Array.isArray(value.registries)) {
    problems.expect('/registries', 'an array of registries', value.registries);
  } else {
    const firstByName = new Map<string, number>();
    value.registries.forEach((item: unknown, index) => {
      const entry = readEntry(problems, `/registries/${index}`, item);
      // Checked apart from the entry's other fields, so a duplicate is reported even beside other problems.
      const name = isObject(item) && typeof item.name === 'string' ? item.name : undefined;
      const first = name === undefined ? undefined : firstByName.get(name);
      if (name !== undefined && first !== undefined) {
        problems.add(
          `/registries/${index}/name`,
          'a name no other registry has',
          `${JSON.stringify(name)}, already the name of /registries/${first}`,
        );
        return;
      }
      if (name !== undefined) firstByName.set(name, index);
      if (entry) registries.push(entry);
    });
  }
  if (problems.any()) throw problems.error();
  return { schema: CLIENT_CONFIG_SCHEMA, registries };
}

/** JSON, 2-space indent, trailing newline, registries in stored order, keys in a fixed order; parse(serialize(c)) deep-equals c. */
export function serializeClientConfig(config: ClientConfig): string {
  const out = { schema: config.schema, registries: config.registries.map(plainEntry) };
  return `${JSON.stringify(out, null, 2)}\n`;
}

/**
 * Why a registry or mirror URL is refused, or undefined when it is fine: https:, http: only for a loopback
 * host (127.0.0.0/8, ::1, localhost; a test or a local mirror, where nothing crosses a network), or file:.
 * Credentials in the URL are refused (they would be written to config.json and shown in every message),
 * and so are a query or fragment (document paths are appended to the URL).
 */
export function registryUrlProblem(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'it is not an absolute URL';
  }
  if (parsed.username !== '' || parsed.password !== '')
    return `credentials in a URL are refused: configure the registry auth with \${ENV} or file:PATH instead`;
  if (parsed.search !== '' || parsed.hash !== '' || /[?#]/.test(url))
    return 'a registry URL has no query or fragment: document paths are appended to it';
  switch (parsed.protocol) {
    case 'https:':
    case 'file:':
      return undefined;
    case 'http:':
      return isLoopbackHost(parsed.hostname)
        ? undefined
        : `http: is allowed only for a loopback host (127.0.0.0/8, ::1, localhost), not ${parsed.hostname}: use https:`;
    default:
      return `the scheme ${parsed.protocol} is not allowed: use https: (http: only for a loopback host, or file:)`;
  }
}

/**
 * `url` without its user name and password: what a message shows of it (fetcher.ts) and what is kept of a
 * URL a redirect led to (session.ts), neither of which may hold a secret.
 * @example withoutCredentials(new URL('https://u:p@plugins.example/x')) // 'https://plugins.example/x'
 */
export function withoutCredentials(url: URL): string {
  if (url.username === '' && url.password === '') return url.href;
  const copy = new URL(url.href);
  copy.username = '';
  copy.password = '';
  return copy.href;
}

/**
 * `url` as a message shows it: without its user name and password, and with the value of each query
 * parameter and any fragment as `…`, the names kept. A query can hold a secret as credentials do (a
 * `?token=`, a presigned storage URL's `X-Amz-Signature`, what a redirect led to), and every message, and
 * `--json` with it, was printing it whole. A parameter without `=` is shown `…` whole (it may be the token).
 * @example shownUrl(new URL('https://u:p@s.example/x?token=abc&v')) // 'https://s.example/x?token=…&…'
 */
export function shownUrl(url: URL): string {
  const bare = withoutCredentials(url);
  // A token in its path masked, and a long one cut, as the registry side shows one (layout.ts `shownUrlText`).
  if (url.search === '' && url.hash === '') return shownUrlText(bare);
  const copy = new URL(bare);
  copy.search = '';
  copy.hash = '';
  const hash = url.hash === '' ? '' : '#…';
  return shownUrlText(`${copy.href}${shownQuery(url.search)}${hash}`);
}

// Defined beside the published layout (index-builder is pure, and its log's voids are bound to it too).
export { registryIdentity };

/**
 * The URL in its canonical form (as WHATWG URL writes it: host in lower case, default port dropped)
 * without trailing slashes, so `https://Example.com/reg/` and `https://example.com/reg` are one registry.
 * @throws ClientError REGISTRY_URL_INVALID with the problem (credentials in the URL are not repeated).
 */
export function normalizeRegistryUrl(url: string): string {
  const problem = registryUrlProblem(url);
  if (problem) throw new ClientError('REGISTRY_URL_INVALID', `registry URL ${redactUrl(url)}: ${problem}`);
  return registryIdentity(url);
}

/**
 * Adds a registry, as Helm's `repo add` does. The same name with the same entry is 'unchanged' (a no-op).
 * The same name with another `url` or `key_fingerprint` is another registry, or another key trusted for it:
 * that needs `force` ('replaced'), else ClientError REGISTRY_EXISTS names what differs and `--force`.
 * Differing only in the other fields (priority, mirrors, ca_file, timeout_seconds, auth) simply updates
 * the entry ('replaced'): they change how the registry is reached, never what is trusted.
 * A replaced entry keeps its place; a new one goes last. The URLs are normalized and every field checked,
 * so whatever this returns serializes to a file `parseClientConfig` reads.
 * @throws ClientError REGISTRY_URL_INVALID for a URL or mirror refused; CLIENT_CONFIG_INVALID for another
 *   field; REGISTRY_EXISTS as above.
 */
export function addRegistry(
  config: ClientConfig,
  entry: RegistryEntry,
  options: { readonly force: boolean },
): { readonly config: ClientConfig; readonly change: 'added' | 'unchanged' | 'replaced' } {
  const normalized: RegistryEntry = {
    ...entry,
    url: normalizeRegistryUrl(entry.url),
    mirrors: entry.mirrors.map(normalizeRegistryUrl),
  };
  const problems = new Problems(`registry ${JSON.stringify(entry.name)}`, 'CLIENT_CONFIG_INVALID');
  const checked = readEntry(problems, '', plainEntry(normalized));
  if (!checked || problems.any()) throw problems.error();
  const index = config.registries.findIndex((r) => r.name === checked.name);
  const existing = config.registries[index];
  if (!existing) {
    return { config: { ...config, registries: [...config.registries, checked] }, change: 'added' };
  }
  if (sameEntry(existing, checked)) return { config, change: 'unchanged' };
  if (!options.force) {
    const differences = [
      ...(existing.url === checked.url ? [] : [`url ${existing.url} -> ${checked.url}`]),
      ...(existing.key_fingerprint === checked.key_fingerprint
        ? []
        : [`key_fingerprint ${existing.key_fingerprint} -> ${checked.key_fingerprint}`]),
    ];
    if (differences.length > 0) {
      throw new ClientError(
        'REGISTRY_EXISTS',
        `registry ${checked.name} is already configured with another ${differences.join(' and ')}; ` +
          'add it again with --force to replace it (or remove it first)',
      );
    }
  }
  const registries = config.registries.map((r, i) => (i === index ? checked : r));
  return { config: { ...config, registries }, change: 'replaced' };
}

/** The configuration without the registry `name`. @throws ClientError REGISTRY_NOT_FOUND naming the configured names. */
export function removeRegistry(config: ClientConfig, name: string): ClientConfig {
  findRegistry(config, name);
  return { ...config, registries: config.registries.filter((r) => r.name !== name) };
}

/**
 * The registry named `name`.
 * @throws ClientError REGISTRY_NOT_FOUND naming the configured names, or saying none is configured with the
 *   `plugindex registry add` hint.
 */
export function findRegistry(config: ClientConfig, name: string): RegistryEntry {
  const found = config.registries.find((r) => r.name === name);
  if (found) return found;
  if (config.registries.length === 0) {
    throw new ClientError(
      'REGISTRY_NOT_FOUND',
      `no registry named ${JSON.stringify(name)}: no registry is configured; add one with ` +
        '`plugindex registry add NAME URL`',
    );
  }
  const names = config.registries.map((r) => r.name).join(', ');
  throw new ClientError(
    'REGISTRY_NOT_FOUND',
    `no registry named ${JSON.stringify(name)}; the configured registries are ${names}`,
  );
}

/** Registries by priority (lower first), then name: the order they are tried and their results ranked. */
export function registriesByPriority(config: ClientConfig): RegistryEntry[] {
  return [...config.registries].sort((a, b) =>
    a.priority !== b.priority ? a.priority - b.priority : compareStrings(a.name, b.name),
  );
}

/**
 * Why a secret reference is refused, or undefined when it is `${NAME}` (NAME `[A-Za-z_][A-Za-z0-9_]*`) or
 * `file:PATH` (PATH non-empty). The value itself is never repeated: it may be the secret.
 */
export function secretRefProblem(value: string): string | undefined {
  if (ENV_REFERENCE.test(value)) return undefined;
  if (value.startsWith('file:')) return value.length > 'file:'.length ? undefined : 'file: names no path';
  if (value.startsWith('${'))
    return `an environment reference is \${NAME}, NAME made of letters, digits and "_", not starting with a digit`;
  if (/^\$[A-Za-z_]/.test(value)) return `an environment reference is written with braces: \${NAME}`;
  return `a literal secret: config.json never holds a secret; write "\${ENV_NAME}" or "file:PATH" instead`;
}

/**
 * The secret a reference names: the environment variable (set and non-empty), or the file's content read
 * through `readFile` (undefined when it cannot be read) with trailing newlines trimmed. A relative PATH is
 * read as `readFile` reads it.
 * @throws ClientError CREDENTIALS_MISSING naming the reference, never the secret; CLIENT_CONFIG_INVALID for a
 *   value that is not a reference.
 */
export function resolveSecret(
  ref: string,
  env: Readonly<Record<string, string | undefined>>,
  readFile: (path: string) => string | undefined,
): string {
  const problem = secretRefProblem(ref);
  if (problem) throw new ClientError('CLIENT_CONFIG_INVALID', `a secret reference is refused: ${problem}`);
  const variable = ENV_REFERENCE.exec(ref)?.[1];
  if (variable !== undefined) {
    const value = Object.hasOwn(env, variable) ? env[variable] : undefined;
    if (value === undefined || value === '') {
      throw new ClientError(
        'CREDENTIALS_MISSING',
        `the secret ${ref} is missing: the environment variable ${variable} is ${value === '' ? 'empty' : 'not set'}`,
      );
    }
    return value;
  }
  const path = ref.slice('file:'.length);
  let content: string | undefined;
  try {
    content = readFile(path);
  } catch (cause) {
    throw new ClientError('CREDENTIALS_MISSING', `the secret ${ref} is missing: ${path} cannot be read`, {
      cause,
    });
  }
  if (content === undefined)
    throw new ClientError('CREDENTIALS_MISSING', `the secret ${ref} is missing: ${path} cannot be read`);
  const secret = content.replace(/[\r\n]+$/, '');
  if (secret === '')
    throw new ClientError('CREDENTIALS_MISSING', `the secret ${ref} is missing: ${path} is empty`);
  return secret;
}

/** One registry entry, every problem added to `problems`; undefined when it has any. */
function readEntry(problems: Problems, at: string, value: unknown): RegistryEntry | undefined {
  if (!isObject(value)) {
    problems.expect(at, 'a registry (an object)', value);
    return undefined;
  }
  const before = problems.count();
  problems.unknownFields(at, value, ENTRY_FIELDS);
  const { name, url, priority, key_fingerprint, mirrors, ca_file, timeout_seconds, auth } = value;
  if (typeof name !== 'string' || !REGISTRY_NAME.test(name))
    problems.expect(`${at}/name`, 'a registry name ([a-z0-9][a-z0-9._-]{0,63})', name);
  const readUrl = (pointer: string, item: unknown): string | undefined => {
    if (typeof item !== 'string') {
      problems.expect(pointer, 'a registry URL (a string)', item);
      return undefined;
    }
    const problem = registryUrlProblem(item);
    if (problem) {
      problems.add(pointer, 'a registry URL', `${JSON.stringify(redactUrl(item))} (${problem})`);
      return undefined;
    }
    return normalizeRegistryUrl(item);
  };
  const base = readUrl(`${at}/url`, url);
  if (!isNonNegativeInteger(priority))
    problems.expect(`${at}/priority`, 'an integer >= 0 (lower is tried first)', priority);
  if (typeof key_fingerprint !== 'string' || !FINGERPRINT.test(key_fingerprint))
    problems.expect(`${at}/key_fingerprint`, 'a key fingerprint (40 uppercase hex digits)', key_fingerprint);
  const mirrorUrls: string[] = [];
  if (mirrors !== undefined && !Array.isArray(mirrors)) {
    problems.expect(`${at}/mirrors`, 'an array of mirror URLs', mirrors);
  } else {
    (mirrors ?? []).forEach((item: unknown, index) => {
      const mirror = readUrl(`${at}/mirrors/${index}`, item);
      if (mirror === undefined) return;
      if (mirror === base || mirrorUrls.includes(mirror)) {
        problems.add(
          `${at}/mirrors/${index}`,
          'a URL not already the registry or another mirror',
          JSON.stringify(mirror),
        );
        return;
      }
      mirrorUrls.push(mirror);
    });
  }
  if (ca_file !== undefined && (typeof ca_file !== 'string' || ca_file === ''))
    problems.expect(`${at}/ca_file`, 'a path to a CA bundle (a non-empty string)', ca_file);
  if (
    timeout_seconds !== undefined &&
    !(typeof timeout_seconds === 'number' && Number.isFinite(timeout_seconds) && timeout_seconds > 0)
  )
    problems.expect(`${at}/timeout_seconds`, 'a number of seconds > 0', timeout_seconds);
  const readAuth = auth === undefined ? undefined : readRegistryAuth(problems, `${at}/auth`, auth);
  if (problems.count() > before) return undefined;
  return {
    name: name as string,
    url: base as string,
    priority: priority as number,
    key_fingerprint: key_fingerprint as string,
    mirrors: mirrorUrls,
    ...(ca_file === undefined ? {} : { ca_file: ca_file as string }),
    ...(timeout_seconds === undefined ? {} : { timeout_seconds: timeout_seconds as number }),
    ...(readAuth === undefined ? {} : { auth: readAuth }),
  };
}

function readRegistryAuth(problems: Problems, at: string, value: unknown): RegistryAuth | undefined {
  if (!isObject(value)) {
    problems.expect(at, 'an auth object', value);
    return undefined;
  }
  const type = value.type;
  if (!AUTH_TYPES.includes(type as RegistryAuth['type'])) {
    problems.expect(`${at}/type`, `one of ${AUTH_TYPES.map((t) => `"${t}"`).join(', ')}`, type);
    return undefined;
  }
  const before = problems.count();
  const kind = type as RegistryAuth['type'];
  problems.unknownFields(at, value, AUTH_FIELDS[kind]);
  const reference = (field: string): string => {
    const item = value[field];
    if (typeof item !== 'string') {
      // Never the value: a number written here is the secret as much as a string is.
      problems.add(
        `${at}/${field}`,
        `a secret reference ("\${ENV_NAME}" or "file:PATH")`,
        describeSecretField(item),
      );
    } else {
      const problem = secretRefProblem(item);
      // The value is not shown: it may be the secret itself.
      if (problem)
        problems.add(`${at}/${field}`, `a secret reference ("\${ENV_NAME}" or "file:PATH")`, problem);
    }
    return item as string;
  };
  let auth: RegistryAuth;
  switch (kind) {
    case 'bearer_token':
      auth = { type: kind, bearer_token: reference('bearer_token') };
      break;
    case 'api_key': {
      const header = value.header;
      if (header !== undefined && (typeof header !== 'string' || !HEADER_NAME.test(header)))
        problems.expect(`${at}/header`, `an HTTP header name (default ${DEFAULT_API_KEY_HEADER})`, header);
      auth = {
        type: kind,
        api_key: reference('api_key'),
        ...(header === undefined ? {} : { header: header as string }),
      };
      break;
    }
    case 'basic_auth': {
      const username = value.username;
      if (typeof username !== 'string' || username === '' || username.includes(':'))
        problems.expect(`${at}/username`, 'a user name (a non-empty string without ":")', username);
      auth = { type: kind, username: username as string, password: reference('password') };
      break;
    }
  }
  return problems.count() > before ? undefined : auth;
}

/** The entry as a plain object with its keys in the written order, optional fields only when set. */
function plainEntry(entry: RegistryEntry): Record<string, unknown> {
  const out: Record<string, unknown> = {
    name: entry.name,
    url: entry.url,
    priority: entry.priority,
    key_fingerprint: entry.key_fingerprint,
    mirrors: [...entry.mirrors],
  };
  if (entry.ca_file !== undefined) out.ca_file = entry.ca_file;
  if (entry.timeout_seconds !== undefined) out.timeout_seconds = entry.timeout_seconds;
  if (entry.auth !== undefined) out.auth = plainAuth(entry.auth);
  return out;
}

function plainAuth(auth: RegistryAuth): Record<string, unknown> {
  switch (auth.type) {
    case 'bearer_token':
      return { type: auth.type, bearer_token: auth.bearer_token };
    case 'api_key':
      return {
        type: auth.type,
        api_key: auth.api_key,
        ...(auth.header === undefined ? {} : { header: auth.header }),
      };
    case 'basic_auth':
      return { type: auth.type, username: auth.username, password: auth.password };
  }
}

function sameEntry(a: RegistryEntry, b: RegistryEntry): boolean {
  return JSON.stringify(plainEntry(a)) === JSON.stringify(plainEntry(b));
}

/**
 * A URL as given (on the command line, in a file) for a message: a user name or password masked as `***`,
 * query values and a fragment as `…` (shownUrl); text no parser takes as `shownUnparsedUrl` shows it; as
 * given when it holds none of them.
 * @example redactUrl('https://u:pw@r.example/x?t=1') // 'https://***@r.example/x?t=…'
 */
export function redactUrl(url: string): string {
  // Not a URL, yet perhaps one mistyped: what reads as credentials, a query or a fragment is hidden all the same.
  if (!URL.canParse(url)) return shownUnparsedUrl(url);
  const parsed = new URL(url);
  // A scheme mistyped with one slash (`hps:/u:pw@host`) parses, its "credentials" in the path: hidden too.
  if (parsed.host === '' && parsed.protocol !== 'file:') return shownUnparsedUrl(url);
  // An `@` before the first `/` of the authority that the parser did not take as the credentials' end: a
  // numeric password before a `?` or `#` (`https://u:1234?x@h/`) parses as host `u`, port 1234 and a query,
  // and the port shown was the password. Masked as text: all before the authority's last `@`.
  const slashes = url.indexOf('//');
  const authority = slashes < 0 ? '' : (url.slice(slashes + 2).split('/')[0] ?? '');
  if (/[?#]/.test(authority.slice(0, Math.max(0, authority.lastIndexOf('@'))))) return shownUnparsedUrl(url);
  const credentialed = parsed.username !== '' || parsed.password !== '';
  if (!credentialed && parsed.search === '' && parsed.hash === '') return shownUrlText(url);
  const shown = shownUrl(parsed);
  // Marked, so the message says credentials were there (shownUrl drops them).
  return credentialed ? shown.replace('://', '://***@') : shown;
}
