import { describe, expect, it, vi } from 'vitest';
import YAML from 'yaml';
import { ClientError } from '../../client/errors.ts';
import { initConfigText, MAX_SET_FILE_CHARS, type PluginSet, parsePluginSet } from '../../client/set-file.ts';

const FILE = '/work/team/plugindex.yaml';
const HOME = '/home/me';
const parse = (text: string): PluginSet => parsePluginSet(text, FILE, { home: HOME });

/** Asserts the text is refused as PLUGIN_SET_INVALID with a message holding every fragment. */
function expectInvalid(text: string, ...fragments: string[]): void {
  expect(() => parse(text)).toThrow(ClientError);
  expect(() => parse(text)).toThrow(expect.objectContaining({ code: 'PLUGIN_SET_INVALID' }));
  for (const fragment of fragments)
    expect(() => parse(text)).toThrow(
      expect.objectContaining({ message: expect.stringContaining(fragment) }),
    );
}

/** The error the text is refused with, asserted to be a ClientError PLUGIN_SET_INVALID. */
function errorOf(text: string): ClientError {
  let caught: unknown;
  try {
    parse(text);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(ClientError);
  expect(caught).toMatchObject({ code: 'PLUGIN_SET_INVALID' });
  return caught as ClientError;
}

/** A pointer of FILE with its line, as every problem starts. */
const at = (pointer: string, line: number): string => `${FILE}#${pointer} (line ${line}): expected`;

const ISSUE_EXAMPLE = `plugins:
  install_location: ./plugins
  providers:
    - type: registry            # also: url, s3, file
      name: local
      url: http://127.0.0.1:8080
      key: ./registry.asc       # the pinned registry key
  plugins:
    - provider: local
      name: kubecost-lens
      version: "^1.1"
      platforms: [linux/amd64, darwin/arm64]
    - provider: local
      name: multicloud-rollup
      version: beta
`;

const SPEC_DISCOVERY = `discovery:
  registries:
    - name: "community"
      url: "https://registry.example.com"
      priority: 1
      timeout: "30s"
      auth:
        type: "api_key"
        api_key: "\${REGISTRY_API_KEY}"
  filesystem:
    enabled: true
    paths: ["/usr/local/lib/pulumicost/plugins", "~/.pulumicost/plugins", "./plugins"]
    recursive: true
    watch_for_changes: true
`;

/** A valid set with one registry provider `local`, and `extra` spliced in as more plugin lines. */
const withPlugins = (plugins: string): string => `plugins:
  providers:
    - type: registry
      name: local
      url: http://127.0.0.1:8080
      key: ./registry.asc
  plugins:
${plugins}`;

describe('when the issue example is read', () => {
  it('reads it exactly as written, paths taken from the file folder', () => {
    expect(parse(ISSUE_EXAMPLE)).toEqual({
      file: FILE,
      installLocation: '/work/team/plugins',
      providers: [
        {
          type: 'registry',
          name: 'local',
          url: 'http://127.0.0.1:8080',
          key: '/work/team/registry.asc',
          priority: 0,
          mirrors: [],
          pointer: '/plugins/providers/0',
        },
      ],
      plugins: [
        {
          provider: 'local',
          name: 'kubecost-lens',
          version: '^1.1',
          platforms: [
            { os: 'linux', arch: 'amd64' },
            { os: 'darwin', arch: 'arm64' },
          ],
          pointer: '/plugins/plugins/0',
        },
        { provider: 'local', name: 'multicloud-rollup', version: 'beta', pointer: '/plugins/plugins/1' },
      ],
    });
  });

  it('takes the same text in another folder to paths in that folder', () => {
    const set = parsePluginSet(ISSUE_EXAMPLE, '/elsewhere/set.yaml', { home: HOME });
    expect(set.installLocation).toBe('/elsewhere/plugins');
    expect(set.providers[0]).toMatchObject({ key: '/elsewhere/registry.asc' });
  });

  it('defaults the install location to plugins/ beside the file, and a version to latest', () => {
    const set = parse(`plugins:
  providers: [{ type: registry, name: local }]
  plugins:
    - { provider: local, name: kubecost-lens }
`);
    expect(set.installLocation).toBe('/work/team/plugins');
    expect(set.plugins[0]?.version).toBe('latest');
    expect(set.providers[0]).toEqual({
      type: 'registry',
      name: 'local',
      priority: 0,
      mirrors: [],
      pointer: '/plugins/providers/0',
    });
  });
});

describe('when every provider type is used', () => {
  const text = `plugins:
  install_location: ~/tools/plugins
  providers:
    - type: registry
      name: team
      url: https://Registry.Example/reg/
      key: ../keys/team.asc
      priority: 2
      timeout: 1m30s
      ca_file: ./ca.pem
      mirrors: [https://mirror.registry.example/reg/]
      auth: { type: basic_auth, username: ci, password: "file:secrets/password" }
    - type: url
      name: releases
      url: https://releases.registry.example/plugins/
      key: /etc/plugindex/releases.asc
      auth: { type: bearer_token, bearer_token: "\${RELEASES_TOKEN}" }
    - type: s3
      name: bucket_1
      bucket: team-plugins
      prefix: /registry/prod/
      region: eu-west-1
      endpoint: http://127.0.0.1:4569
      key: ./bucket.asc
    - type: file
      name: vendored
      path: ./vendor/registry
      key: ./vendored.asc
    - type: registry
      name: configured
  plugins:
    - { provider: team, name: kubecost-lens, version: "~1.2", output: kubecost, install_location: ./bin }
    - { provider: releases, name: cost-rollup, path: cost-rollup/1.0.0/manifest.json }
    - { provider: releases, name: cost-exporter, version: 2.0.0 }
    - { provider: bucket_1, name: aws-pricing, version: "2.0.0-beta.1" }
    - { provider: vendored, name: gcp-pricing, version: ">=1 <3", platforms: [windows/amd64] }
    - { provider: configured, name: azure-pricing }
`;

  it('reads each with its own fields, normalized and absolute', () => {
    const set = parse(text);
    expect(set.installLocation).toBe('/home/me/tools/plugins');
    expect(set.providers).toEqual([
      {
        type: 'registry',
        name: 'team',
        url: 'https://registry.example/reg',
        key: '/work/keys/team.asc',
        priority: 2,
        timeout_seconds: 90,
        auth: { type: 'basic_auth', username: 'ci', password: 'file:/work/team/secrets/password' },
        ca_file: '/work/team/ca.pem',
        mirrors: ['https://mirror.registry.example/reg'],
        pointer: '/plugins/providers/0',
      },
      {
        type: 'url',
        name: 'releases',
        url: 'https://releases.registry.example/plugins',
        key: '/etc/plugindex/releases.asc',
        auth: { type: 'bearer_token', bearer_token: `\${RELEASES_TOKEN}` },
        pointer: '/plugins/providers/1',
      },
      {
        type: 's3',
        name: 'bucket_1',
        bucket: 'team-plugins',
        prefix: 'registry/prod',
        region: 'eu-west-1',
        endpoint: 'http://127.0.0.1:4569',
        key: '/work/team/bucket.asc',
        pointer: '/plugins/providers/2',
      },
      {
        type: 'file',
        name: 'vendored',
        path: '/work/team/vendor/registry',
        key: '/work/team/vendored.asc',
        pointer: '/plugins/providers/3',
      },
      { type: 'registry', name: 'configured', priority: 0, mirrors: [], pointer: '/plugins/providers/4' },
    ]);
    expect(set.plugins).toEqual([
      {
        provider: 'team',
        name: 'kubecost-lens',
        version: '~1.2',
        output: 'kubecost',
        install_location: '/work/team/bin',
        pointer: '/plugins/plugins/0',
      },
      {
        provider: 'releases',
        name: 'cost-rollup',
        version: 'latest',
        path: 'cost-rollup/1.0.0/manifest.json',
        pointer: '/plugins/plugins/1',
      },
      { provider: 'releases', name: 'cost-exporter', version: '2.0.0', pointer: '/plugins/plugins/2' },
      { provider: 'bucket_1', name: 'aws-pricing', version: '2.0.0-beta.1', pointer: '/plugins/plugins/3' },
      {
        provider: 'vendored',
        name: 'gcp-pricing',
        version: '>=1 <3',
        platforms: [{ os: 'windows', arch: 'amd64' }],
        pointer: '/plugins/plugins/4',
      },
      { provider: 'configured', name: 'azure-pricing', version: 'latest', pointer: '/plugins/plugins/5' },
    ]);
  });

  it('reads an s3 provider without prefix as the bucket root', () => {
    const set = parse(`plugins:
  providers: [{ type: s3, name: b, bucket: my.bucket-1, key: k.asc }]
  plugins: []
`);
    expect(set.providers[0]).toEqual({
      type: 's3',
      name: 'b',
      bucket: 'my.bucket-1',
      prefix: '',
      key: '/work/team/k.asc',
      pointer: '/plugins/providers/0',
    });
  });

  it('reads timeouts in each form the spec and Go write', () => {
    const timeout = (value: string): number | undefined => {
      const provider = parse(`plugins:
  providers: [{ type: registry, name: r, url: "https://registry.example", key: k.asc, timeout: ${value} }]
  plugins: []
`).providers[0];
      return provider?.type === 'registry' ? provider.timeout_seconds : undefined;
    };
    expect(timeout('"30s"')).toBe(30);
    expect(timeout('2m')).toBe(120);
    expect(timeout('1h')).toBe(3600);
    expect(timeout('1500ms')).toBe(1.5);
    expect(timeout('45')).toBe(45);
    expect(timeout('2.5')).toBe(2.5);
  });
});

describe('when the spec discovery block is read', () => {
  it('reads a file that is only a discovery block', () => {
    const set = parse(SPEC_DISCOVERY);
    expect(set).toEqual({
      file: FILE,
      installLocation: '/work/team/plugins',
      providers: [],
      plugins: [],
      discovery: {
        registries: [
          {
            type: 'registry',
            name: 'community',
            url: 'https://registry.example.com',
            priority: 1,
            timeout_seconds: 30,
            auth: { type: 'api_key', api_key: `\${REGISTRY_API_KEY}` },
            mirrors: [],
            pointer: '/discovery/registries/0',
          },
        ],
        filesystem: {
          enabled: true,
          paths: ['/usr/local/lib/pulumicost/plugins', '/home/me/.pulumicost/plugins', '/work/team/plugins'],
          recursive: true,
          watch_for_changes: true,
        },
      },
    });
  });

  it('reads the spec second example, auth type none as no auth, and an extra pinned key', () => {
    const set = parse(`discovery:
  registries:
    - name: "community"
      url: "https://registry.example.com"
      priority: 1
      timeout: "30s"
      auth:
        type: "none"
    - name: "enterprise"
      url: "https://enterprise-registry.example"
      priority: 2
      timeout: "60s"
      key: ./enterprise.asc
      auth:
        type: "api_key"
        api_key: "\${REGISTRY_API_KEY}"
`);
    expect(set.discovery?.registries.map((r) => [r.name, r.auth, r.key, r.timeout_seconds])).toEqual([
      ['community', undefined, undefined, 30],
      ['enterprise', { type: 'api_key', api_key: `\${REGISTRY_API_KEY}` }, '/work/team/enterprise.asc', 60],
    ]);
    expect(set.discovery?.filesystem).toBeUndefined();
  });

  it('lets plugins name a discovery registry as their provider', () => {
    const set = parse(`${SPEC_DISCOVERY}plugins:
  plugins:
    - { provider: community, name: kubecost-lens, version: "1.2.3" }
`);
    expect(set.plugins).toEqual([
      { provider: 'community', name: 'kubecost-lens', version: '1.2.3', pointer: '/plugins/plugins/0' },
    ]);
    expect(set.discovery?.registries).toHaveLength(1);
  });

  it('defaults filesystem flags: enabled, not recursive, not watched', () => {
    const set = parse('discovery:\n  filesystem:\n    paths: ["~"]\n');
    expect(set.discovery?.filesystem).toEqual({
      enabled: true,
      paths: ['/home/me'],
      recursive: false,
      watch_for_changes: false,
    });
  });

  it('refuses a discovery registry without url, and one whose name a provider has', () => {
    expectInvalid(
      `discovery:\n  registries:\n    - name: community\n      priority: 1\n`,
      at('/discovery/registries/0/url', 3),
    );
    expectInvalid(
      `${SPEC_DISCOVERY}plugins:
  providers: [{ type: registry, name: community }]
  plugins: []
`,
      at('/discovery/registries/0/name', 3),
      'already the name of /plugins/providers/0',
    );
  });
});

describe('when a policy is read', () => {
  it('reads every field, fingerprints upper-cased', () => {
    const fingerprint = 'abcdef0123456789abcdef0123456789abcdef01';
    const set = parse(`policy:
  permissions:
    allow: [filesystem_read, network_client]
    deny: [process_spawn, host_device]
  publishers: [${fingerprint}]
  registries: [local]
  prereleases: true
  resources: { max_memory_mb: 512, timeout_seconds: 60 }
`);
    expect(set.policy).toEqual({
      permissions: { allow: ['filesystem_read', 'network_client'], deny: ['process_spawn', 'host_device'] },
      publishers: [fingerprint.toUpperCase()],
      registries: ['local'],
      prereleases: true,
      resources: { max_memory_mb: 512, timeout_seconds: 60 },
    });
  });

  it('reads a v6 publisher key by its 64 hex digits, and refuses a fingerprint of any other length', () => {
    // RFC 9580 v6 keys have SHA-256 fingerprints; a length between or beyond names no key.
    const v6 = `${'abcdef0123456789'.repeat(4)}`;
    expect(parse(`policy:\n  publishers: [${v6}]\n`).policy?.publishers).toEqual([v6.toUpperCase()]);
    expectInvalid(
      `policy:\n  publishers: [${'A'.repeat(41)}, ${'A'.repeat(63)}, ${'A'.repeat(65)}]\n`,
      at('/policy/publishers/0', 2),
      at('/policy/publishers/1', 2),
      at('/policy/publishers/2', 2),
      'a publisher key fingerprint (40 or 64 hex digits: an OpenPGP v4 or v6 key)',
    );
  });

  it('defaults to no prereleases, nothing denied, any publisher and registry', () => {
    expect(parse('policy: {}\n').policy).toEqual({
      permissions: { deny: [] },
      prereleases: false,
      resources: {},
    });
  });

  it('refuses an unknown permission, one both allowed and denied, a resource past its bound', () => {
    expectInvalid(
      `policy:
  permissions:
    allow: [logging, root_access]
    deny: [logging]
  resources:
    max_memory_mb: 2000000
  publishers: [ABCD]
  registries: [Local]
  prereleases: "no"
`,
      at('/policy/permissions/allow/1', 3),
      'found "root_access"',
      at('/policy/permissions/deny/0', 4),
      'in both allow and deny',
      at('/policy/resources/max_memory_mb', 6),
      'an integer from 1 to 1048576',
      at('/policy/publishers/0', 7),
      at('/policy/registries/0', 8),
      at('/policy/prereleases', 9),
    );
  });
});

describe('when a field is not known', () => {
  const unknownAt = (text: string, pointer: string, line: number): void =>
    expectInvalid(text, at(pointer, line), 'a field this version does not know');

  it('refuses it at the top, in the plugins block, a provider, a plugin and an auth', () => {
    unknownAt(`${ISSUE_EXAMPLE}plugin: {}\n`, '/plugin', 16);
    unknownAt(
      ISSUE_EXAMPLE.replace('  providers:', '  install-location: x\n  providers:'),
      '/plugins/install-location',
      3,
    );
    unknownAt(
      ISSUE_EXAMPLE.replace('      key: ./registry.asc', '      keys: ./registry.asc'),
      '/plugins/providers/0/keys',
      7,
    );
    unknownAt(
      ISSUE_EXAMPLE.replace('      version: beta', '      versions: beta'),
      '/plugins/plugins/1/versions',
      15,
    );
    unknownAt(
      ISSUE_EXAMPLE.replace(
        '      key: ./registry.asc',
        `      key: ./registry.asc\n      auth: { type: bearer_token, bearer_token: "\${T}", token: "\${T}" }`,
      ),
      '/plugins/providers/0/auth/token',
      8,
    );
  });

  it('refuses a field of another provider type (bucket on a registry)', () => {
    unknownAt(
      ISSUE_EXAMPLE.replace('      key: ./registry.asc', '      key: ./registry.asc\n      bucket: b'),
      '/plugins/providers/0/bucket',
      8,
    );
  });

  it('refuses it in discovery, a discovery registry, filesystem, policy, permissions and resources', () => {
    unknownAt(`${SPEC_DISCOVERY}  http: {}\n`, '/discovery/http', 15);
    unknownAt(
      SPEC_DISCOVERY.replace('      priority: 1', '      priority: 1\n      type: registry'),
      '/discovery/registries/0/type',
      6,
    );
    unknownAt(
      SPEC_DISCOVERY.replace('    recursive: true', '    recurse: true'),
      '/discovery/filesystem/recurse',
      13,
    );
    unknownAt('policy:\n  allow: [logging]\n', '/policy/allow', 2);
    unknownAt('policy:\n  permissions:\n    grant: [logging]\n', '/policy/permissions/grant', 3);
    unknownAt('policy:\n  resources:\n    memory: 5\n', '/policy/resources/memory', 3);
  });
});

describe('when a field is missing or has the wrong type', () => {
  it('says which, with the line of the item it belongs to', () => {
    expectInvalid(
      withPlugins('    - provider: local\n      version: "1.0.0"\n'),
      at('/plugins/plugins/0/name', 8),
      'found nothing (the field is missing)',
    );
    expectInvalid('plugins:\n  providers: []\n', at('/plugins/plugins', 1), 'a list of plugins');
    expectInvalid(
      'plugins:\n  providers:\n    - type: url\n      name: u\n      url: https://registry.example\n  plugins: []\n',
      at('/plugins/providers/0/key', 3),
    );
    expectInvalid(
      'plugins:\n  providers:\n    - type: file\n      key: k.asc\n      path: ./r\n  plugins: []\n',
      at('/plugins/providers/0/name', 3),
    );
  });

  it('needs a key for a registry given by url, and refuses one without url', () => {
    expectInvalid(
      ISSUE_EXAMPLE.replace('      key: ./registry.asc       # the pinned registry key\n', ''),
      at('/plugins/providers/0/key', 4),
    );
    expectInvalid(
      'plugins:\n  providers:\n    - type: registry\n      name: configured\n      key: ./k.asc\n  plugins: []\n',
      at('/plugins/providers/0/key', 5),
      'no key without url',
    );
  });

  it('refuses a version written as a number, with the hint to quote it', () => {
    expectInvalid(
      withPlugins('    - { provider: local, name: kubecost-lens, version: 1.10 }\n'),
      at('/plugins/plugins/0/version', 8),
      'found the number 1.1',
      'quote it',
    );
  });

  it('refuses a set that is empty, or not a mapping', () => {
    expectInvalid('', at('', 1), 'found null');
    expectInvalid('- plugins\n', at('', 1), 'found an array');
    expectInvalid('{}\n', at('', 1), 'at least one of plugins, discovery or policy');
  });
});

describe('when a provider or plugin is wrong', () => {
  it('refuses an unknown provider type', () => {
    expectInvalid(
      ISSUE_EXAMPLE.replace('type: registry', 'type: gcs'),
      at('/plugins/providers/0/type', 4),
      'one of registry, url, s3, file',
      'found "gcs"',
    );
  });

  it('refuses a plugin naming a provider the set does not have, naming those it has', () => {
    expectInvalid(
      ISSUE_EXAMPLE.replace(
        '    - provider: local\n      name: multicloud',
        '    - provider: locale\n      name: multicloud',
      ),
      at('/plugins/plugins/1/provider', 13),
      '(local)',
      'found "locale"',
    );
  });

  it('reports an unknown provider beside other problems of the plugin, and none for a provider with problems', () => {
    const { message } = errorOf(`plugins:
  providers:
    - { type: url, name: broken, key: k.asc }
  plugins:
    - { provider: nowhere, name: A }
    - { provider: broken, name: kubecost-lens, version: "1.0.0" }
`);
    expect(message).toContain(at('/plugins/providers/0/url', 3));
    expect(message).toContain(at('/plugins/plugins/0/name', 5));
    expect(message).toContain(at('/plugins/plugins/0/provider', 5));
    expect(message).not.toContain('/plugins/plugins/1');
  });

  it('refuses a provider named twice, naming the first', () => {
    expectInvalid(
      withPlugins('    - { provider: local, name: kubecost-lens }\n').replace(
        '  plugins:\n',
        '    - { type: file, name: local, path: ., key: k.asc }\n  plugins:\n',
      ),
      at('/plugins/providers/1/name', 7),
      'already the name of /plugins/providers/0',
    );
  });

  it('refuses a plugin listed twice, naming the first', () => {
    expectInvalid(
      withPlugins(
        '    - { provider: local, name: kubecost-lens }\n    - { provider: local, name: kubecost-lens }\n',
      ),
      at('/plugins/plugins/1/name', 9),
      'already listed at /plugins/plugins/0',
    );
  });

  it('refuses a bad provider name and a bad plugin name', () => {
    expectInvalid(ISSUE_EXAMPLE.replace('name: local', 'name: Local'), at('/plugins/providers/0/name', 5));
    expectInvalid(
      ISSUE_EXAMPLE.replace('name: kubecost-lens', 'name: kubecost--lens'),
      at('/plugins/plugins/0/name', 10),
    );
    expectInvalid(
      ISSUE_EXAMPLE.replace('name: kubecost-lens', 'name: index'),
      at('/plugins/plugins/0/name', 10),
      'registry',
    );
  });

  it('refuses a version spec that is no version, range or channel', () => {
    for (const spec of ['"^1.x.y.z"', '"1.2.3.4"', '""', '"beta!"']) {
      expectInvalid(
        ISSUE_EXAMPLE.replace('version: "^1.1"', `version: ${spec}`),
        at('/plugins/plugins/0/version', 11),
        'an exact version ("1.2.3"), a range',
      );
    }
  });

  it('refuses an unknown or repeated platform, and an empty list', () => {
    expectInvalid(
      ISSUE_EXAMPLE.replace('[linux/amd64, darwin/arm64]', '[linux/amd64, plan9/amd64, linux-amd64, 7]'),
      at('/plugins/plugins/0/platforms/1', 12),
      'unknown OS "plan9"',
      at('/plugins/plugins/0/platforms/2', 12),
      'already /plugins/plugins/0/platforms/0',
      at('/plugins/plugins/0/platforms/3', 12),
    );
    expectInvalid(
      ISSUE_EXAMPLE.replace('[linux/amd64, darwin/arm64]', '[]'),
      at('/plugins/plugins/0/platforms', 12),
    );
  });

  it('refuses an output that is not one safe path segment', () => {
    for (const output of ['../evil', 'bin/tool', '.hidden', 'nul', '"a b"']) {
      expectInvalid(
        withPlugins(`    - provider: local\n      name: kubecost-lens\n      output: ${output}\n`),
        at('/plugins/plugins/0/output', 10),
        'one safe path segment',
      );
    }
  });

  it('refuses an unsafe path, a path on a registry plugin, and a url plugin with neither path nor exact version', () => {
    const urlSet = (plugin: string): string => `plugins:
  providers:
    - { type: url, name: rel, url: "https://releases.registry.example", key: k.asc }
  plugins:
    - { provider: rel, name: kubecost-lens${plugin} }
`;
    expectInvalid(
      urlSet(', version: "^1.2"'),
      at('/plugins/plugins/0/version', 5),
      'a path or an exact version',
    );
    expectInvalid(urlSet(''), at('/plugins/plugins/0/version', 5), '"latest" and no path');
    expectInvalid(urlSet(', path: ../manifest.json'), at('/plugins/plugins/0/path', 5));
    expect(parse(urlSet(', version: "1.2.0"')).plugins[0]?.version).toBe('1.2.0');
    expectInvalid(
      withPlugins('    - { provider: local, name: kubecost-lens, path: a/manifest.json }\n'),
      at('/plugins/plugins/0/path', 8),
      'resolves NAME@VERSION itself',
    );
  });

  it('refuses URLs a registry, url provider or endpoint may not have', () => {
    expectInvalid(
      ISSUE_EXAMPLE.replace('http://127.0.0.1:8080', 'http://registry.example'),
      at('/plugins/providers/0/url', 6),
      'loopback',
    );
    expectInvalid(
      ISSUE_EXAMPLE.replace('http://127.0.0.1:8080', 'https://user:pw@registry.example'),
      at('/plugins/providers/0/url', 6),
      'credentials in a URL are refused',
    );
    expect(
      errorOf(ISSUE_EXAMPLE.replace('http://127.0.0.1:8080', 'https://user:pw@registry.example')).message,
    ).not.toContain('pw@');
    expectInvalid(
      'plugins:\n  providers:\n    - { type: url, name: u, url: "file:///srv/reg", key: k }\n  plugins: []\n',
      at('/plugins/providers/0/url', 3),
      'a folder is a file provider',
    );
    expectInvalid(
      'plugins:\n  providers:\n    - { type: s3, name: s, bucket: B_ad, endpoint: "ftp://127.0.0.1", key: k, prefix: "a/../b" }\n  plugins: []\n',
      at('/plugins/providers/0/bucket', 3),
      at('/plugins/providers/0/endpoint', 3),
      at('/plugins/providers/0/prefix', 3),
    );
  });

  it('refuses a literal secret in auth without repeating it', () => {
    const text = ISSUE_EXAMPLE.replace(
      '      key: ./registry.asc       # the pinned registry key',
      '      key: ./registry.asc\n      auth:\n        type: api_key\n        api_key: s3cr3t-t0ken',
    );
    expectInvalid(text, at('/plugins/providers/0/auth/api_key', 10), 'a literal secret');
    expect(errorOf(text).message).not.toContain('s3cr3t-t0ken');
    expectInvalid(
      text.replace('type: api_key', 'type: oauth'),
      at('/plugins/providers/0/auth/type', 9),
      'none, bearer_token, api_key, basic_auth',
    );
  });

  it('refuses a secret written as a number (or in a list) without repeating it', () => {
    // YAML reads an unquoted PIN or numeric token as a number: it is still the secret.
    for (const [secret, shown] of [
      ['84729384729384', '84729384729384'],
      ['0x5eC7e7', String(0x5ec7e7)],
      ['[84729384729384]', '84729384729384'],
    ] as const) {
      const text = ISSUE_EXAMPLE.replace(
        '      key: ./registry.asc       # the pinned registry key',
        `      key: ./registry.asc\n      auth:\n        type: basic_auth\n        username: ci\n        password: ${secret}`,
      );
      expectInvalid(text, at('/plugins/providers/0/auth/password', 11), 'a secret reference');
      expect(errorOf(text).message).not.toContain(shown);
    }
  });

  it('refuses a timeout that is no duration', () => {
    for (const timeout of ['"30 seconds"', '0', '"0s"', '-5', '"30"', 'true']) {
      expectInvalid(
        SPEC_DISCOVERY.replace('timeout: "30s"', `timeout: ${timeout}`),
        at('/discovery/registries/0/timeout', 6),
        '"30s", "2m"',
      );
    }
  });

  it('refuses a ~user path it cannot expand', () => {
    expectInvalid(
      ISSUE_EXAMPLE.replace('install_location: ./plugins', 'install_location: ~bob/plugins'),
      at('/plugins/install_location', 2),
      '~user is not expanded',
    );
  });
});

describe('when the text is not one plain YAML document', () => {
  it('refuses text that is not YAML, with the line', () => {
    expectInvalid('plugins:\n  providers: [a,\n  plugins: []\n', '(line 3): expected YAML');
    expectInvalid('plugins: "unterminated\n', 'expected YAML');
  });

  it('refuses a repeated key, with its pointer and line', () => {
    expectInvalid(
      ISSUE_EXAMPLE.replace('      version: beta', '      version: beta\n      version: latest'),
      at('/plugins/plugins/1/version', 16),
      'each key once in a mapping',
    );
  });

  it('refuses an alias bomb quickly', () => {
    const bomb = [
      'a: &a [x, x, x, x, x, x, x, x, x, x]',
      'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]',
      'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]',
      'd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]',
      'e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]',
      'f: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]',
      '',
    ].join('\n');
    // The cap stops the expansion: the alias past it is refused (a ReferenceError) where it is met, rather than
    // expanded into a value something then walks.
    const expanded = vi.spyOn(YAML.Alias.prototype, 'toJSON');
    try {
      expectInvalid(bomb, 'alias expansions', 'alias bomb');
      // Thrown by the alias past the cap, and on through the aliases holding it.
      const thrown = expanded.mock.results.filter((r) => r.type === 'throw').map((r) => r.value);
      expect(thrown.length).toBeGreaterThan(0);
      for (const error of thrown) expect(error).toBeInstanceOf(ReferenceError);
    } finally {
      expanded.mockRestore();
    }
  });

  it('reads a node used 50 times (its anchor and 49 aliases) and refuses a 51st use, as an alias bomb', () => {
    // The cap written out, not read from MAX_YAML_ALIASES: a test built on the constant moves with it, and
    // the bomb above still stops under a cap 20 times looser. The anchored node is its first use.
    const copies = (n: number) =>
      withPlugins(
        '    - { provider: local, name: kubecost-lens, platforms: &all [linux/amd64] }\n' +
          Array.from(
            { length: n },
            (_, i) => `    - { provider: local, name: p${i}, platforms: *all }\n`,
          ).join(''),
      );
    expect(parse(copies(49)).plugins.map((p) => p.platforms)).toEqual(
      Array(50).fill([{ os: 'linux', arch: 'amd64' }]),
    );
    expectInvalid(copies(50), 'YAML of at most 50 alias expansions', 'alias bomb');
  });

  it('still reads a few aliases (a shared platform list)', () => {
    const set = parse(
      withPlugins(
        '    - { provider: local, name: kubecost-lens, platforms: &all [linux/amd64, darwin/arm64] }\n' +
          '    - { provider: local, name: cost-rollup, platforms: *all }\n',
      ),
    );
    expect(set.plugins[1]?.platforms).toEqual(set.plugins[0]?.platforms);
  });

  it('refuses an alias of no anchor at its pointer and line, not as an alias bomb, without its name', () => {
    const text = withPlugins(
      '    - { provider: local, name: kubecost-lens }\n' +
        '    - { provider: local, name: cost-rollup, platforms: *s3cr3t }\n',
    );
    expectInvalid(text, at('/plugins/plugins/1/platforms', 9), 'an alias of an anchor set before it');
    expect(errorOf(text).message).not.toContain('alias bomb');
    expect(errorOf(text).message).not.toContain('s3cr3t');
  });

  it.each([
    ['flow sequences', `plugins:\n  providers: ${'['.repeat(100_000)}\n`, 2],
    [
      'balanced flow sequences',
      `plugins:\n  plugins: []\npolicy: ${'['.repeat(50_000)}${']'.repeat(50_000)}\n`,
      3,
    ],
    ['flow mappings', `# {{{\nplugins:\n  providers: ${'{'.repeat(100_000)}\n`, 3],
    ['compact block sequences', `plugins:\n  plugins: []\n  providers:\n    ${'- '.repeat(60_000)}x\n`, 4],
  ])('refuses nested %s at their line before parsing, at once', (_label, text, line) => {
    // Found by a scan of the text, before the parser, which took seconds on such nesting, sees it.
    const parsed = vi.spyOn(YAML, 'parseDocument');
    let error: ClientError;
    try {
      error = errorOf(text);
      expect(parsed).not.toHaveBeenCalled();
    } finally {
      parsed.mockRestore();
    }
    expect(error.message).toBe(
      `${at('', line)} at most 64 levels of brackets or compact items, found deeper nesting (found before parsing the file)`,
    );
  });

  it('still reads brackets in text and comments, and nesting within the limit', () => {
    const set = parse(
      withPlugins(`    - { provider: local, name: kubecost-lens }  # ${'['.repeat(100)}\n`).replace(
        'plugins:\n',
        `plugins:\n  install_location: "./p${'['.repeat(100)}"\n`,
      ),
    );
    expect(set.installLocation).toBe(`/work/team/p${'['.repeat(100)}`);
    expect(() => parse(`plugins: {}\nx: ${'['.repeat(64)}${']'.repeat(64)}\n`)).toThrow(
      expect.objectContaining({
        message: expect.stringContaining('found a field this version does not know'),
      }),
    );
  });

  it('refuses an alias within the node it names (a loop), at its pointer and line', () => {
    expectInvalid(
      withPlugins('    - { provider: local, name: kubecost-lens, platforms: &all [linux/amd64, *all] }\n'),
      at('/plugins/plugins/0/platforms/1', 8),
      'an alias within the node it names (a loop)',
    );
  });

  it('takes an alias of an anchor given again inside the node that first had it for the node it names', () => {
    // *all is the inner list, the last node named all before it: no loop, only lists where platforms go.
    const error = errorOf(
      withPlugins(
        '    - { provider: local, name: kubecost-lens, platforms: &all [&all [linux/amd64], *all] }\n',
      ),
    );
    expect(error.message).not.toContain('(a loop)');
    expect(error.message).toContain('/plugins/plugins/0/platforms/1 (line 8): expected a platform');
  });

  it('refuses aliases that copy a large node past the size cap once expanded, quickly', () => {
    // 260 KB: a list of 20,000 platforms, named by 48 more plugins (49 uses, under the alias cap).
    const platforms = Array.from({ length: 20_000 }, () => 'linux/amd64').join(', ');
    const plugins = Array.from(
      { length: 49 },
      (_, i) =>
        `    - { provider: local, name: plugin-${i}, platforms: ${i === 0 ? `&p [${platforms}]` : '*p'} }\n`,
    ).join('');
    // Expanded, a million platforms (13 s to read, a million problems). Each item or entry read of the value
    // counts, so the measure stops within the cap's characters (at least 3 an item: one for its place, two
    // for the least it holds), not after the million.
    const read = readsOfValue();
    let error: ClientError;
    try {
      error = errorOf(withPlugins(plugins));
      expect(read.count()).toBeLessThanOrEqual(MAX_SET_FILE_CHARS / 3);
    } finally {
      read.restore();
    }
    expect(error.message).toBe(
      `${at('', 1)} a plugin set of at most 1048576 characters once its aliases are expanded, found more (aliases copying large nodes)`,
    );
  });

  it('refuses tags, and several documents', () => {
    expectInvalid('policy:\n  prereleases: !!bool true\n', at('/policy/prereleases', 2), 'no tags');
    expectInvalid(`${ISSUE_EXAMPLE}---\npolicy: {}\n`, at('', 16), 'one YAML document');
  });

  it('refuses a file past the size cap', () => {
    expectInvalid(`# ${'x'.repeat(1_048_576)}\npolicy: {}\n`, 'at most 1048576 characters');
  });
});

describe('when a file has several problems', () => {
  it('lists every one under the file name, each with its pointer and line', () => {
    const { message } = errorOf(`plugins:
  providers:
    - { type: registry, name: local, url: "https://registry.example" }
  plugins:
    - { provider: local, name: kubecost-lens, version: "nope!" }
policy:
  permissions: { deny: [everything] }
`);
    expect(message.split('\n')).toEqual([
      `${FILE} has 3 problems:`,
      expect.stringContaining(at('/plugins/providers/0/key', 3)),
      expect.stringContaining(at('/plugins/plugins/0/version', 5)),
      expect.stringContaining(at('/policy/permissions/deny/0', 7)),
    ]);
  });
});

describe('when the starter file is read', () => {
  it('parses as a set of one registry and one plugin', () => {
    const set = parse(initConfigText());
    expect(set.providers).toEqual([
      {
        type: 'registry',
        name: 'local',
        url: 'http://127.0.0.1:8080',
        key: '/work/team/registry.asc',
        priority: 0,
        mirrors: [],
        pointer: '/plugins/providers/0',
      },
    ]);
    expect(set.plugins.map((p) => `${p.provider}:${p.name}@${p.version}`)).toEqual([
      'local:kubecost-lens@^1.1',
    ]);
    expect(set.policy).toBeUndefined();
    expect(set.discovery).toBeUndefined();
  });

  it('parses with every commented example uncommented', () => {
    const uncommented = initConfigText()
      .split('\n')
      .map((line) => line.replace(/^(\s*)# ([a-z_-]+:|- |\s)/, '$1$2'))
      .join('\n');
    const set = parse(uncommented);
    expect(set.providers.map((p) => p.type)).toEqual(['registry', 'registry', 'url', 's3', 'file']);
    expect(set.policy?.permissions.deny).toEqual(['process_spawn', 'host_device']);
    expect(set.discovery?.registries.map((r) => r.name)).toEqual(['community']);
    expect(set.plugins[0]).toMatchObject({ output: 'kubecost-lens', install_location: '/work/team/tools' });
    expect(set.plugins[1]).toMatchObject({ provider: 'releases', path: 'cost-rollup/1.0.0/manifest.json' });
  });
});

describe('a plugin set with more problems than a message lists', () => {
  it('lists the first 99 and counts the rest', () => {
    // 3,000 plugins naming a provider no set defines: a problem each.
    const lines = Array.from({ length: 3000 }, (_, i) => `    - provider: nowhere\n      name: p${i}`);
    const error = errorOf(withPlugins(`\n${lines.join('\n')}`));
    const listed = error.message.split('\n');
    expect(listed[0]).toBe(`${FILE} has 3000 problems:`);
    expect(listed).toHaveLength(1 + 100);
    expect(listed[1]).toMatch(
      /^ {2}\/work\/team\/plugindex\.yaml#\/plugins\/plugins\/0\/provider \(line \d+\): expected /,
    );
    expect(listed[100]).toBe('  2901 more problems, not listed');
  });
});

/**
 * Counts the items and entries read of the values the YAML documents give (Document#toJS), however they
 * are read (indexes, iteration, Object.entries), until restored.
 */
function readsOfValue(): { count: () => number; restore: () => void } {
  let reads = 0;
  const proxies = new WeakMap<object, object>();
  const counted = (value: unknown): unknown => {
    if (typeof value !== 'object' || value === null) return value;
    let proxy = proxies.get(value);
    if (!proxy) {
      proxy = new Proxy(value, {
        get(target, key, receiver) {
          const item = Reflect.get(target, key, receiver);
          if (typeof key === 'string' && Object.hasOwn(target, key) && key !== 'length') {
            reads++;
            return counted(item);
          }
          return item;
        },
      });
      proxies.set(value, proxy);
    }
    return proxy;
  };
  const toJS = YAML.Document.prototype.toJS;
  const spy = vi.spyOn(YAML.Document.prototype, 'toJS').mockImplementation(function (
    this: YAML.Document,
    ...args: Parameters<typeof toJS>
  ) {
    return counted(toJS.apply(this, args));
  });
  return { count: () => reads, restore: () => spy.mockRestore() };
}
