// biome-ignore-all lint/suspicious/noTemplateCurlyInString: "${ENV}" is the secret reference users write, not a template
/**
 * The client configuration: round trips, every refusal with its code and JSON pointer, the URL rules,
 * secret references, and `registry add`/`remove` semantics.
 */
import { describe, expect, it } from 'vitest';
import {
  addRegistry,
  CLIENT_CONFIG_SCHEMA,
  type ClientConfig,
  EMPTY_CLIENT_CONFIG,
  findRegistry,
  normalizeRegistryUrl,
  parseClientConfig,
  type RegistryEntry,
  redactUrl,
  registriesByPriority,
  registryUrlProblem,
  removeRegistry,
  resolveSecret,
  secretRefProblem,
  serializeClientConfig,
  shownUrl,
} from '../../client/config.ts';
import { ClientError } from '../../client/errors.ts';
import { SHOWN_URL_END_CHARACTERS, SHOWN_URL_PATH_CHARACTERS } from '../../index-builder/layout.ts';

const FILE = '/home/me/.config/plugindex/config.json';
const KEY_A = 'A'.repeat(40);
const KEY_B = '0123456789ABCDEF0123456789ABCDEF01234567';

function entry(overrides: Partial<RegistryEntry> = {}): RegistryEntry {
  return {
    name: 'community',
    url: 'https://plugins.example.com',
    priority: 1,
    key_fingerprint: KEY_A,
    mirrors: [],
    ...overrides,
  };
}

/** A config file's text with the registries given (as raw JSON values, to write anything). */
function configText(registries: unknown[], extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ schema: CLIENT_CONFIG_SCHEMA, registries, ...extra });
}

function thrown(run: () => unknown): ClientError {
  try {
    run();
  } catch (error) {
    if (error instanceof ClientError) return error;
    throw error;
  }
  throw new Error('expected a ClientError, nothing was thrown');
}

const full: ClientConfig = {
  schema: CLIENT_CONFIG_SCHEMA,
  registries: [
    entry({
      name: 'private.corp',
      url: 'https://registry.corp.example/plugins',
      priority: 2,
      mirrors: ['https://mirror.corp.example/plugins', 'file:///srv/plugindex'],
      ca_file: '/etc/ssl/corp-ca.pem',
      timeout_seconds: 12.5,
      auth: { type: 'api_key', api_key: '${CORP_API_KEY}', header: 'X-Corp-Key' },
    }),
    entry({
      name: 'community',
      priority: 1,
      auth: { type: 'bearer_token', bearer_token: 'file:/run/token' },
    }),
    entry({
      name: 'local',
      url: 'http://127.0.0.1:8080',
      priority: 0,
      key_fingerprint: KEY_B,
      auth: { type: 'basic_auth', username: 'ci', password: '${LOCAL_PASSWORD}' },
    }),
  ],
};

describe('when a configuration is written and read back', () => {
  it('reads what it wrote, deep-equal, in stored order', () => {
    const text = serializeClientConfig(full);
    expect(parseClientConfig(text, FILE)).toEqual(full);
    expect(parseClientConfig(text, FILE).registries.map((r) => r.name)).toEqual([
      'private.corp',
      'community',
      'local',
    ]);
  });

  it('writes 2-space JSON with a trailing newline and keys in a fixed order', () => {
    const shuffled: RegistryEntry = {
      mirrors: [],
      key_fingerprint: KEY_A,
      auth: { password: '${P}', username: 'u', type: 'basic_auth' },
      priority: 3,
      url: 'https://a.example',
      name: 'a',
    } as RegistryEntry;
    const text = serializeClientConfig({ schema: CLIENT_CONFIG_SCHEMA, registries: [shuffled] });
    expect(text).toBe(
      [
        '{',
        '  "schema": "plugindex/client-config/v1",',
        '  "registries": [',
        '    {',
        '      "name": "a",',
        '      "url": "https://a.example",',
        '      "priority": 3,',
        `      "key_fingerprint": "${KEY_A}",`,
        '      "mirrors": [],',
        '      "auth": {',
        '        "type": "basic_auth",',
        '        "username": "u",',
        '        "password": "${P}"',
        '      }',
        '    }',
        '  ]',
        '}',
        '',
      ].join('\n'),
    );
  });

  it('reads and writes the empty configuration', () => {
    expect(parseClientConfig(serializeClientConfig(EMPTY_CLIENT_CONFIG), FILE)).toEqual(EMPTY_CLIENT_CONFIG);
  });

  it('normalizes URLs it reads (trailing slashes, host case) and defaults mirrors to none', () => {
    const text = configText([
      { name: 'a', url: 'https://Plugins.Example.com:443/reg//', priority: 0, key_fingerprint: KEY_A },
    ]);
    expect(parseClientConfig(text, FILE).registries[0]).toEqual({
      name: 'a',
      url: 'https://plugins.example.com/reg',
      priority: 0,
      key_fingerprint: KEY_A,
      mirrors: [],
    });
  });
});

describe('when a configuration is invalid', () => {
  const valid = { name: 'a', url: 'https://a.example', priority: 0, key_fingerprint: KEY_A };
  const cases: readonly { what: string; text: string; message: string }[] = [
    {
      what: 'not JSON',
      text: '{"schema":',
      message: `${FILE}#: expected a JSON document, found text that is not JSON`,
    },
    { what: 'not an object', text: '[]', message: `${FILE}#: expected a JSON object, found an array` },
    {
      what: 'a schema missing',
      text: JSON.stringify({ registries: [] }),
      message: `${FILE}#/schema: expected "plugindex/client-config/v1" (the only client configuration this version reads), found nothing (the field is missing)`,
    },
    {
      what: 'another schema',
      text: JSON.stringify({ schema: 'plugindex/client-config/v2', registries: 'anything' }),
      message: `${FILE}#/schema: expected "plugindex/client-config/v1" (the only client configuration this version reads), found "plugindex/client-config/v2"`,
    },
    {
      what: 'registries missing',
      text: JSON.stringify({ schema: CLIENT_CONFIG_SCHEMA }),
      message: `${FILE}#/registries: expected an array of registries, found nothing (the field is missing)`,
    },
    {
      what: 'an unknown top-level field',
      text: configText([], { registry: [] }),
      message: `${FILE}#/registry: expected only the fields schema, registries, found a field this version does not know`,
    },
    {
      what: 'a registry that is not an object',
      text: configText(['https://a.example']),
      message: `${FILE}#/registries/0: expected a registry (an object), found "https://a.example"`,
    },
    {
      what: 'a name missing',
      text: configText([{ ...valid, name: undefined }]),
      message: `${FILE}#/registries/0/name: expected a registry name ([a-z0-9][a-z0-9._-]{0,63}), found nothing (the field is missing)`,
    },
    {
      what: 'a name of the wrong type',
      text: configText([{ ...valid, name: 7 }]),
      message: `${FILE}#/registries/0/name: expected a registry name ([a-z0-9][a-z0-9._-]{0,63}), found the number 7`,
    },
    {
      what: 'a name with upper case',
      text: configText([{ ...valid, name: 'Community' }]),
      message: `${FILE}#/registries/0/name: expected a registry name ([a-z0-9][a-z0-9._-]{0,63}), found "Community"`,
    },
    {
      what: 'a URL over http: to a remote host',
      text: configText([{ ...valid, url: 'http://example.test' }]),
      message: `${FILE}#/registries/0/url: expected a registry URL, found "http://example.test" (http: is allowed only for a loopback host`,
    },
    {
      what: 'a priority below zero',
      text: configText([{ ...valid, priority: -1 }]),
      message: `${FILE}#/registries/0/priority: expected an integer >= 0 (lower is tried first), found the number -1`,
    },
    {
      what: 'a priority as a string',
      text: configText([{ ...valid, priority: '1' }]),
      message: `${FILE}#/registries/0/priority: expected an integer >= 0 (lower is tried first), found "1"`,
    },
    {
      what: 'a fingerprint in lower case',
      text: configText([{ ...valid, key_fingerprint: KEY_B.toLowerCase() }]),
      message: `${FILE}#/registries/0/key_fingerprint: expected a key fingerprint (40 uppercase hex digits), found "${KEY_B.toLowerCase()}"`,
    },
    {
      what: 'mirrors not an array',
      text: configText([{ ...valid, mirrors: 'https://m.example' }]),
      message: `${FILE}#/registries/0/mirrors: expected an array of mirror URLs, found "https://m.example"`,
    },
    {
      what: 'a mirror over ftp:',
      text: configText([{ ...valid, mirrors: ['https://m.example', 'ftp://m.example'] }]),
      message: `${FILE}#/registries/0/mirrors/1: expected a registry URL, found "ftp://m.example" (the scheme ftp: is not allowed`,
    },
    {
      what: 'a mirror that is the registry itself',
      text: configText([{ ...valid, mirrors: ['https://a.example/'] }]),
      message: `${FILE}#/registries/0/mirrors/0: expected a URL not already the registry or another mirror, found "https://a.example"`,
    },
    {
      what: 'an empty ca_file',
      text: configText([{ ...valid, ca_file: '' }]),
      message: `${FILE}#/registries/0/ca_file: expected a path to a CA bundle (a non-empty string), found ""`,
    },
    {
      what: 'a timeout of zero',
      text: configText([{ ...valid, timeout_seconds: 0 }]),
      message: `${FILE}#/registries/0/timeout_seconds: expected a number of seconds > 0, found the number 0`,
    },
    {
      what: 'a misspelt field',
      text: configText([{ ...valid, ca_flie: '/etc/ca.pem' }]),
      message: `${FILE}#/registries/0/ca_flie: expected only the fields name, url, priority, key_fingerprint, mirrors, ca_file, timeout_seconds, auth, found a field this version does not know`,
    },
    {
      what: 'an auth type this version does not know',
      text: configText([{ ...valid, auth: { type: 'mutual_tls' } }]),
      message: `${FILE}#/registries/0/auth/type: expected one of "bearer_token", "api_key", "basic_auth", found "mutual_tls"`,
    },
    {
      what: 'an auth reference missing',
      text: configText([{ ...valid, auth: { type: 'bearer_token' } }]),
      message: `${FILE}#/registries/0/auth/bearer_token: expected a secret reference ("\${ENV_NAME}" or "file:PATH"), found nothing (the field is missing)`,
    },
    {
      what: 'a field of another auth type',
      text: configText([{ ...valid, auth: { type: 'bearer_token', bearer_token: '${T}', username: 'u' } }]),
      message: `${FILE}#/registries/0/auth/username: expected only the fields type, bearer_token, found a field this version does not know`,
    },
    {
      what: 'an api_key header that is not a header name',
      text: configText([{ ...valid, auth: { type: 'api_key', api_key: '${K}', header: 'X Key' } }]),
      message: `${FILE}#/registries/0/auth/header: expected an HTTP header name (default X-API-Key), found "X Key"`,
    },
    {
      what: 'a basic_auth user name with a colon',
      text: configText([{ ...valid, auth: { type: 'basic_auth', username: 'a:b', password: '${P}' } }]),
      message: `${FILE}#/registries/0/auth/username: expected a user name (a non-empty string without ":"), found "a:b"`,
    },
    {
      what: 'a pointer segment with "/" and "~"',
      text: configText([{ ...valid, 'a/b~c': 1 }]),
      message: `${FILE}#/registries/0/a~1b~0c: expected only the fields`,
    },
  ];

  it.each(cases)('rejects $what (CLIENT_CONFIG_INVALID, naming the pointer)', ({ text, message }) => {
    const error = thrown(() => parseClientConfig(text, FILE));
    expect(error.code).toBe('CLIENT_CONFIG_INVALID');
    expect(error.message).toContain(message);
  });

  it('reports every failing field, not just the first', () => {
    const text = configText([
      { name: 'a', url: 'ftp://a.example', priority: -1, key_fingerprint: 'nope' },
      { ...valid, name: 'b', timeout_seconds: 'soon' },
    ]);
    const error = thrown(() => parseClientConfig(text, FILE));
    expect(error.code).toBe('CLIENT_CONFIG_INVALID');
    expect(error.message.split('\n')).toEqual([
      `${FILE} has 4 problems:`,
      expect.stringContaining(`${FILE}#/registries/0/url:`),
      expect.stringContaining(`${FILE}#/registries/0/priority:`),
      expect.stringContaining(`${FILE}#/registries/0/key_fingerprint:`),
      expect.stringContaining(`${FILE}#/registries/1/timeout_seconds:`),
    ]);
  });

  it('refuses two registries of one name, naming both', () => {
    const text = configText([valid, { ...valid, url: 'https://b.example' }]);
    expect(() => parseClientConfig(text, FILE)).toThrow(
      expect.objectContaining({
        code: 'CLIENT_CONFIG_INVALID',
        message: `${FILE}#/registries/1/name: expected a name no other registry has, found "a", already the name of /registries/0`,
      }),
    );
  });

  it('refuses a literal secret, saying to use ${ENV} or file:PATH, and never repeats it', () => {
    const secret = 'sk-live-0123456789abcdef';
    for (const auth of [
      { type: 'bearer_token', bearer_token: secret },
      { type: 'api_key', api_key: secret },
      { type: 'basic_auth', username: 'ci', password: secret },
    ]) {
      const error = thrown(() => parseClientConfig(configText([{ ...valid, auth }]), FILE));
      expect(error.code).toBe('CLIENT_CONFIG_INVALID');
      expect(error.message).toMatch(
        /#\/registries\/0\/auth\/(bearer_token|api_key|password): expected a secret reference/,
      );
      expect(error.message).toContain('write "${ENV_NAME}" or "file:PATH" instead');
      expect(error.message).not.toContain(secret);
    }
  });

  it('refuses a secret written as a JSON number without repeating it', () => {
    for (const auth of [
      { type: 'bearer_token', bearer_token: 84729384729384 },
      { type: 'basic_auth', username: 'ci', password: 84729384729384 },
    ]) {
      const error = thrown(() => parseClientConfig(configText([{ ...valid, auth }]), FILE));
      expect(error.code).toBe('CLIENT_CONFIG_INVALID');
      expect(error.message).toMatch(
        /#\/registries\/0\/auth\/(bearer_token|password): expected a secret reference/,
      );
      expect(error.message).not.toContain('84729384729384');
    }
  });

  it('refuses credentials in a URL without repeating the password', () => {
    const error = thrown(() =>
      parseClientConfig(configText([{ ...valid, url: 'https://me:hunter2@a.example' }]), FILE),
    );
    expect(error.code).toBe('CLIENT_CONFIG_INVALID');
    expect(error.message).toContain(`${FILE}#/registries/0/url: expected a registry URL`);
    expect(error.message).toContain('credentials in a URL are refused');
    expect(error.message).not.toContain('hunter2');
  });
});

describe('when a registry URL is checked', () => {
  it.each([
    'https://plugins.example.com',
    'https://plugins.example.com/sub/path/',
    'http://127.0.0.1:8080',
    'http://127.1.2.3',
    'http://localhost',
    'http://localhost:3000/reg',
    'http://[::1]:8080',
    'file:///x',
    'file:///C:/registry',
  ])('accepts %s', (url) => {
    expect(registryUrlProblem(url)).toBeUndefined();
  });

  it.each([
    ['http://example.test', 'http: is allowed only for a loopback host'],
    ['http://128.0.0.1', 'http: is allowed only for a loopback host'],
    ['http://localhost.example.test', 'http: is allowed only for a loopback host'],
    ['ftp://plugins.example.com', 'the scheme ftp: is not allowed'],
    ['javascript:alert(1)', 'the scheme javascript: is not allowed'],
    ['https://user:pass@plugins.example.com', 'credentials in a URL are refused'],
    ['https://token@plugins.example.com', 'credentials in a URL are refused'],
    ['https://plugins.example.com/?v=1', 'no query or fragment'],
    ['https://plugins.example.com/?', 'no query or fragment'],
    ['https://plugins.example.com/#top', 'no query or fragment'],
    ['plugins.example.com', 'not an absolute URL'],
    ['', 'not an absolute URL'],
  ])('refuses %s', (url, problem) => {
    expect(registryUrlProblem(url)).toContain(problem);
  });

  it('normalizes to the canonical form without trailing slashes', () => {
    expect(normalizeRegistryUrl('https://Plugins.Example.com:443/')).toBe('https://plugins.example.com');
    expect(normalizeRegistryUrl('http://localhost:8080/reg///')).toBe('http://localhost:8080/reg');
    expect(normalizeRegistryUrl('file:///srv/plugindex/')).toBe('file:///srv/plugindex');
  });

  it('throws REGISTRY_URL_INVALID naming the URL and the problem, with credentials masked', () => {
    expect(() => normalizeRegistryUrl('http://example.test')).toThrow(
      expect.objectContaining({
        name: 'ClientError',
        code: 'REGISTRY_URL_INVALID',
        message: expect.stringMatching(/^registry URL http:\/\/example\.test: http: is allowed only/),
      }),
    );
    const error = thrown(() => normalizeRegistryUrl('https://me:hunter2@a.example'));
    expect(error.code).toBe('REGISTRY_URL_INVALID');
    expect(error.message).toContain('https://***@a.example/');
    expect(error.message).not.toContain('hunter2');
  });
});

describe('when a registry is added', () => {
  it('adds a new one last, with its URLs normalized', () => {
    const first = addRegistry(EMPTY_CLIENT_CONFIG, entry({ name: 'b' }), { force: false });
    const second = addRegistry(
      first.config,
      entry({ name: 'a', url: 'https://A.example/', mirrors: ['https://m.example/'] }),
      {
        force: false,
      },
    );
    expect(second.change).toBe('added');
    expect(second.config.registries.map((r) => [r.name, r.url, r.mirrors])).toEqual([
      ['b', 'https://plugins.example.com', []],
      ['a', 'https://a.example', ['https://m.example']],
    ]);
    expect(EMPTY_CLIENT_CONFIG.registries).toEqual([]);
  });

  it('is a no-op for the same entry (the same object back), even spelt with a trailing slash', () => {
    const { config } = addRegistry(EMPTY_CLIENT_CONFIG, entry(), { force: false });
    const again = addRegistry(config, entry({ url: 'https://plugins.example.com/' }), { force: false });
    expect(again.change).toBe('unchanged');
    expect(again.config).toBe(config);
  });

  it('refuses another url or key without force (REGISTRY_EXISTS), naming old and new and --force', () => {
    const { config } = addRegistry(EMPTY_CLIENT_CONFIG, entry(), { force: false });
    const error = thrown(() =>
      addRegistry(config, entry({ url: 'https://other.example', key_fingerprint: KEY_B }), { force: false }),
    );
    expect(error.code).toBe('REGISTRY_EXISTS');
    expect(error.message).toContain('url https://plugins.example.com -> https://other.example');
    expect(error.message).toContain(`key_fingerprint ${KEY_A} -> ${KEY_B}`);
    expect(error.message).toContain('--force');
    expect(() => addRegistry(config, entry({ key_fingerprint: KEY_B }), { force: false })).toThrow(
      expect.objectContaining({ code: 'REGISTRY_EXISTS', message: expect.not.stringContaining('url ') }),
    );
  });

  it('replaces another url or key with force, in place', () => {
    const two = addRegistry(
      addRegistry(EMPTY_CLIENT_CONFIG, entry(), { force: false }).config,
      entry({ name: 'z' }),
      {
        force: false,
      },
    ).config;
    const replaced = addRegistry(two, entry({ key_fingerprint: KEY_B }), { force: true });
    expect(replaced.change).toBe('replaced');
    expect(replaced.config.registries.map((r) => [r.name, r.key_fingerprint])).toEqual([
      ['community', KEY_B],
      ['z', KEY_A],
    ]);
  });

  it('updates the other fields without force (they change how it is reached, not what is trusted)', () => {
    const { config } = addRegistry(EMPTY_CLIENT_CONFIG, entry(), { force: false });
    const updated = addRegistry(
      config,
      entry({
        priority: 5,
        mirrors: ['https://m.example'],
        ca_file: '/ca.pem',
        timeout_seconds: 3,
        auth: { type: 'bearer_token', bearer_token: '${TOKEN}' },
      }),
      { force: false },
    );
    expect(updated.change).toBe('replaced');
    expect(updated.config.registries).toEqual([
      entry({
        priority: 5,
        mirrors: ['https://m.example'],
        ca_file: '/ca.pem',
        timeout_seconds: 3,
        auth: { type: 'bearer_token', bearer_token: '${TOKEN}' },
      }),
    ]);
  });

  it('refuses a URL the rules refuse (REGISTRY_URL_INVALID) and other invalid fields (CLIENT_CONFIG_INVALID)', () => {
    expect(() =>
      addRegistry(EMPTY_CLIENT_CONFIG, entry({ url: 'http://example.test' }), { force: true }),
    ).toThrow(expect.objectContaining({ code: 'REGISTRY_URL_INVALID' }));
    expect(() =>
      addRegistry(EMPTY_CLIENT_CONFIG, entry({ mirrors: ['ftp://m.example'] }), { force: true }),
    ).toThrow(expect.objectContaining({ code: 'REGISTRY_URL_INVALID' }));
    const error = thrown(() =>
      addRegistry(EMPTY_CLIENT_CONFIG, entry({ auth: { type: 'bearer_token', bearer_token: 'literal' } }), {
        force: true,
      }),
    );
    expect(error.code).toBe('CLIENT_CONFIG_INVALID');
    expect(error.message).toContain('registry "community"#/auth/bearer_token: expected a secret reference');
    expect(() => addRegistry(EMPTY_CLIENT_CONFIG, entry({ name: 'Bad Name' }), { force: true })).toThrow(
      expect.objectContaining({ code: 'CLIENT_CONFIG_INVALID', message: expect.stringContaining('#/name') }),
    );
  });

  it('gives a configuration that reads back as written', () => {
    let config = EMPTY_CLIENT_CONFIG;
    for (const e of full.registries) config = addRegistry(config, e, { force: false }).config;
    expect(parseClientConfig(serializeClientConfig(config), FILE)).toEqual(config);
    expect(config).toEqual(full);
  });
});

describe('when a registry is removed or looked up', () => {
  it('removes it and keeps the others in order', () => {
    expect(removeRegistry(full, 'community').registries.map((r) => r.name)).toEqual([
      'private.corp',
      'local',
    ]);
  });

  it('finds it by name', () => {
    expect(findRegistry(full, 'local').url).toBe('http://127.0.0.1:8080');
  });

  it('refuses an unknown name (REGISTRY_NOT_FOUND), naming the configured ones', () => {
    for (const run of [() => removeRegistry(full, 'nope'), () => findRegistry(full, 'nope')]) {
      expect(run).toThrow(
        expect.objectContaining({
          name: 'ClientError',
          code: 'REGISTRY_NOT_FOUND',
          message: 'no registry named "nope"; the configured registries are private.corp, community, local',
        }),
      );
    }
  });

  it('says none is configured, with the registry add hint', () => {
    expect(() => findRegistry(EMPTY_CLIENT_CONFIG, 'community')).toThrow(
      expect.objectContaining({
        code: 'REGISTRY_NOT_FOUND',
        message: expect.stringContaining(
          'no registry is configured; add one with `plugindex registry add NAME URL`',
        ),
      }),
    );
  });

  it('orders registries by priority, then name', () => {
    const config: ClientConfig = {
      schema: CLIENT_CONFIG_SCHEMA,
      registries: [
        entry({ name: 'b', priority: 1 }),
        entry({ name: 'c', priority: 0 }),
        entry({ name: 'a', priority: 1 }),
      ],
    };
    expect(registriesByPriority(config).map((r) => r.name)).toEqual(['c', 'a', 'b']);
    expect(config.registries.map((r) => r.name)).toEqual(['b', 'c', 'a']);
  });
});

describe('when a secret reference is checked', () => {
  it.each(['${TOKEN}', '${_x1}', 'file:/run/secrets/token', 'file:token.txt'])('accepts %s', (ref) => {
    expect(secretRefProblem(ref)).toBeUndefined();
  });

  it.each([
    ['hunter2', 'a literal secret'],
    ['', 'a literal secret'],
    ['${1TOKEN}', 'an environment reference is ${NAME}'],
    ['${TOKEN', 'an environment reference is ${NAME}'],
    ['${A-B}', 'an environment reference is ${NAME}'],
    ['$TOKEN', 'written with braces'],
    ['file:', 'file: names no path'],
  ])('refuses %j', (ref, problem) => {
    expect(secretRefProblem(ref)).toContain(problem);
  });
});

describe('when a secret is resolved', () => {
  const noFiles = (): string | undefined => undefined;

  it('reads an environment variable', () => {
    expect(resolveSecret('${TOKEN}', { TOKEN: 's3cret' }, noFiles)).toBe('s3cret');
  });

  it('reads a file, trimming the trailing newline', () => {
    const files: Record<string, string> = { '/run/token': 's3cret\n', '/run/crlf': 'abc\r\n' };
    const readFile = (path: string): string | undefined => files[path];
    expect(resolveSecret('file:/run/token', {}, readFile)).toBe('s3cret');
    expect(resolveSecret('file:/run/crlf', {}, readFile)).toBe('abc');
  });

  it.each([
    ['${TOKEN}', {}, 'the secret ${TOKEN} is missing: the environment variable TOKEN is not set'],
    ['${TOKEN}', { TOKEN: '' }, 'the secret ${TOKEN} is missing: the environment variable TOKEN is empty'],
    ['${toString}', {}, 'the secret ${toString} is missing: the environment variable toString is not set'],
    ['file:/run/none', {}, 'the secret file:/run/none is missing: /run/none cannot be read'],
    ['file:/run/empty', {}, 'the secret file:/run/empty is missing: /run/empty is empty'],
  ] as const)('refuses %s when it is not there (CREDENTIALS_MISSING)', (ref, env, message) => {
    const readFile = (path: string): string | undefined => (path === '/run/empty' ? '\n' : undefined);
    expect(() => resolveSecret(ref, env, readFile)).toThrow(
      expect.objectContaining({ name: 'ClientError', code: 'CREDENTIALS_MISSING', message }),
    );
  });

  it('keeps a read failure as the cause, naming the reference', () => {
    const failure = new Error('EACCES');
    const error = thrown(() =>
      resolveSecret('file:/root/token', {}, () => {
        throw failure;
      }),
    );
    expect(error.code).toBe('CREDENTIALS_MISSING');
    expect(error.message).toContain('file:/root/token');
    expect(error.cause).toBe(failure);
  });

  it('refuses a value that is not a reference without repeating it', () => {
    const error = thrown(() => resolveSecret('hunter2', { hunter2: 'x' }, noFiles));
    expect(error.code).toBe('CLIENT_CONFIG_INVALID');
    expect(error.message).not.toContain('hunter2');
  });
});

describe('when a URL a message shows is very long or holds a token in its path', () => {
  const longPath = `/${'p'.repeat(3000)}`;
  const cut = (head: string, rest: string) => {
    const start = SHOWN_URL_PATH_CHARACTERS - SHOWN_URL_END_CHARACTERS;
    return `${head}${rest.slice(0, start)}… (${rest.length - SHOWN_URL_PATH_CHARACTERS} more characters) …${rest.slice(-SHOWN_URL_END_CHARACTERS)}`;
  };

  it('shows the scheme, host and the first and last characters of the rest, counting what it leaves out, as the registry side does', () => {
    // Printed whole before, a URL of any length in every refusal and --json.
    expect(shownUrl(new URL(`https://r.example${longPath}?token=s3cret`))).toBe(
      cut('https://r.example', `${longPath}?token=…`),
    );
    expect(redactUrl(`https://r.example${longPath}`)).toBe(cut('https://r.example', longPath));
    expect(redactUrl(`https://u:s3cret@r.example${longPath}`)).toBe(cut('https://***@r.example', longPath));
    expect(redactUrl('https://r.example/short/path')).toBe('https://r.example/short/path');
  });

  it('masks a GitHub token in the path, and nothing that merely resembles one', () => {
    const token = `ghs_${'x'.repeat(36)}`;
    expect(redactUrl(`https://raw.example/${token}/manifest.json`)).toBe(
      'https://raw.example/***/manifest.json',
    );
    expect(shownUrl(new URL(`https://raw.example/a/${token}`))).toBe('https://raw.example/a/***');
    expect(redactUrl('https://raw.example/ghs_tool/manifest.json')).toBe(
      'https://raw.example/ghs_tool/manifest.json',
    );
  });
});
