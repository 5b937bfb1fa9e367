/**
 * Resolution over one plugin's history, built by hand in the shape the registry publishes (model.ts): every
 * kind of request against yanked, deprecated, API-bounded, prerelease and single-platform versions.
 */
import { describe, expect, it } from 'vitest';
import {
  apiVersionAllows,
  artifactFor,
  hostPlatform,
  nearestPluginName,
  type Platform,
  parsePlatform,
  parseRequest,
  platformKey,
  resolveLocked,
  resolvePlugin,
} from '../../client/resolve.ts';
import type { ArtifactRecord, PluginDocument, VersionRecord } from '../../index-builder/model.ts';
import { sortVersionsDescending } from '../../index-builder/versions.ts';

const NAME = 'kubecost-lens';
const LINUX: Platform = { os: 'linux', arch: 'amd64' };
const MAC: Platform = { os: 'darwin', arch: 'arm64' };
const WINDOWS: Platform = { os: 'windows', arch: 'amd64' };

function artifact(platform: Platform, version: string): ArtifactRecord {
  return {
    ...platform,
    url: `https://registry.test/plugins/${NAME}/${version}/${platform.os}-${platform.arch}.tar.gz`,
    sha256: 'a'.repeat(64),
    size_bytes: 1024,
    hosted: true,
  };
}

function version(
  number: string,
  overrides: Partial<Omit<VersionRecord, 'artifacts'>> & { readonly platforms?: readonly Platform[] } = {},
): VersionRecord {
  const { platforms = [LINUX, MAC], ...rest } = overrides;
  return {
    version: number,
    published: '2026-01-01T00:00:00Z',
    prerelease: number.includes('-'),
    yanked: false,
    deprecated: false,
    api_version: 'v1',
    manifest_url: `https://registry.test/plugins/${NAME}/${number}/manifest.json`,
    manifest_signature_url: `https://registry.test/plugins/${NAME}/${number}/manifest.json.asc`,
    manifest_sha256: 'b'.repeat(64),
    manifest_size: 512,
    source_sha256: 'c'.repeat(64),
    publisher: 'D'.repeat(40),
    artifacts: platforms.map((p) => artifact(p, number)),
    ...rest,
  };
}

function pluginDocument(versions: readonly VersionRecord[]): PluginDocument {
  return {
    schema: 'plugindex/plugin/v1',
    name: NAME,
    plugin_type: 'cost_source',
    latest_version: null,
    channels: {},
    capabilities: ['cost_retrieval'],
    supported_providers: ['kubernetes'],
    tags: [],
    owners: ['D'.repeat(40)],
    versions: sortVersionsDescending(versions),
  };
}

const doc = pluginDocument([
  version('0.9.0', { platforms: [LINUX] }),
  version('1.0.0'),
  version('1.2.0'),
  version('1.2.3', { deprecated: true, deprecation_message: 'use 2.x, which reads the new cost API' }),
  version('1.3.0', { yanked: true, yanked_reason: 'corrupts the cache' }),
  version('2.0.0', { api_version: 'v2', min_api_version: 'v2' }),
  version('2.1.0-beta.1'),
  version('2.1.0-beta.2'),
  version('3.0.0-rc.1', { api_version: 'v3', min_api_version: 'v2', max_api_version: 'v3' }),
]);

const DEPRECATED = `${NAME}@1.2.3 is deprecated: use 2.x, which reads the new cost API`;

describe('when a request resolves', () => {
  it.each([
    { spec: '1.2.0', api: 'v1', platform: LINUX, expected: '1.2.0', warnings: [] },
    { spec: '^1.2.0', api: 'v1', platform: LINUX, expected: '1.2.3', warnings: [DEPRECATED] },
    { spec: '~1.2', api: 'v1', platform: MAC, expected: '1.2.3', warnings: [DEPRECATED] },
    { spec: '>=1 <2', api: 'v1', platform: LINUX, expected: '1.2.3', warnings: [DEPRECATED] },
    { spec: '^1.0.0 <1.2.0', api: 'v1', platform: LINUX, expected: '1.0.0', warnings: [] },
    { spec: '0.9.0', api: 'v1', platform: LINUX, expected: '0.9.0', warnings: [] },
    { spec: 'latest', api: 'v1', platform: LINUX, expected: '1.2.3', warnings: [DEPRECATED] },
    { spec: 'latest', api: 'v2', platform: LINUX, expected: '2.0.0', warnings: [] },
    { spec: '2.0.0', api: 'v2', platform: MAC, expected: '2.0.0', warnings: [] },
    { spec: 'beta', api: 'v1', platform: LINUX, expected: '2.1.0-beta.2', warnings: [] },
    { spec: 'BETA', api: 'v1', platform: LINUX, expected: '2.1.0-beta.2', warnings: [] },
    { spec: '2.1.0-beta.1', api: 'v1', platform: MAC, expected: '2.1.0-beta.1', warnings: [] },
    { spec: 'rc', api: 'v2', platform: LINUX, expected: '3.0.0-rc.1', warnings: [] },
    { spec: 'rc', api: 'v3', platform: LINUX, expected: '3.0.0-rc.1', warnings: [] },
  ])(
    'resolves $spec for an API $api host on $platform.os to $expected',
    ({ spec, api, platform, expected, warnings }) => {
      const resolution = resolvePlugin(doc, { spec, platform, apiVersion: api });
      expect(resolution.version.version).toBe(expected);
      expect(resolution.artifact).toEqual(artifact(platform, expected));
      expect(resolution.warnings).toEqual(warnings);
    },
  );
});

describe('when no version matches a request', () => {
  it.each([
    { spec: '1.3.0', api: 'v1', says: ['1.3.0 is yanked (corrupts the cache)'] },
    { spec: '^1.3.0', api: 'v1', says: ['1.3.0 is yanked'] },
    { spec: '2.0.0', api: 'v1', says: ['2.0.0 needs API v2 or later, the host is v1'] },
    { spec: '^2.0.0', api: 'v1', says: ['2.0.0 needs API v2 or later, the host is v1'] },
    { spec: 'rc', api: 'v1', says: ['3.0.0-rc.1 needs API v2..v3, the host is v1'] },
    { spec: 'rc', api: 'v4', says: ['3.0.0-rc.1 needs API v2..v3, the host is v4'] },
    { spec: '5.0.0', api: 'v1', says: ['no version matches'] },
    { spec: 'alpha', api: 'v1', says: ['no version matches'] },
  ])('refuses $spec for an API $api host, saying why (NO_MATCHING_VERSION)', ({ spec, api, says }) => {
    const run = () => resolvePlugin(doc, { spec, platform: LINUX, apiVersion: api });
    expect(run).toThrow(expect.objectContaining({ name: 'ClientError', code: 'NO_MATCHING_VERSION' }));
    expect(run).toThrow(`${NAME}@${spec}: `);
    for (const text of says) expect(run).toThrow(text);
    // A few of the versions there are, newest first, yanked ones not offered.
    expect(run).toThrow(
      'Versions there are: 3.0.0-rc.1, 2.1.0-beta.2, 2.1.0-beta.1, 2.0.0, 1.2.3, 1.2.0 and 2 more',
    );
  });

  it('says there is no release yet when latest is asked of a plugin with only prereleases', () => {
    const early = pluginDocument([version('0.1.0-beta.1'), version('0.1.0-rc.1')]);
    const run = () => resolvePlugin(early, { spec: 'latest', platform: LINUX, apiVersion: 'v1' });
    expect(run).toThrow(expect.objectContaining({ code: 'NO_MATCHING_VERSION' }));
    expect(run).toThrow('only prereleases');
    expect(run).toThrow('Versions there are: 0.1.0-rc.1, 0.1.0-beta.1');
    expect(resolvePlugin(early, { spec: 'beta', platform: LINUX, apiVersion: 'v1' }).version.version).toBe(
      '0.1.0-beta.1',
    );
  });

  it('says every version is yanked when none is left to offer', () => {
    const gone = pluginDocument([version('1.0.0', { yanked: true })]);
    const run = () => resolvePlugin(gone, { spec: 'latest', platform: LINUX, apiVersion: 'v1' });
    expect(run).toThrow(expect.objectContaining({ code: 'NO_MATCHING_VERSION' }));
    expect(run).toThrow('1.0.0 is yanked. Every version of it is yanked');
  });

  it('refuses a spec that does not parse as REQUEST_INVALID', () => {
    expect(() => resolvePlugin(doc, { spec: '1.2.3.4', platform: LINUX, apiVersion: 'v1' })).toThrow(
      expect.objectContaining({ code: 'REQUEST_INVALID' }),
    );
  });
});

describe('when the chosen version has no artifact for the platform', () => {
  it('names plugin@version and the platform, and lists the platforms it has (NO_ARTIFACT_FOR_PLATFORM)', () => {
    const run = () => resolvePlugin(doc, { spec: 'latest', platform: WINDOWS, apiVersion: 'v1' });
    expect(run).toThrow(expect.objectContaining({ name: 'ClientError', code: 'NO_ARTIFACT_FOR_PLATFORM' }));
    expect(run).toThrow(`${NAME}@1.2.3 has no artifact for windows/amd64; it has linux/amd64, darwin/arm64`);
  });

  it('does not fall back to an older version, and lists the platforms of the one asked for', () => {
    const run = () => resolvePlugin(doc, { spec: '0.9.0', platform: MAC, apiVersion: 'v1' });
    expect(run).toThrow(expect.objectContaining({ code: 'NO_ARTIFACT_FOR_PLATFORM' }));
    expect(run).toThrow(`${NAME}@0.9.0 has no artifact for darwin/arm64; it has linux/amd64`);
  });

  it('points at an older matching version that has the platform', () => {
    const partial = pluginDocument([version('1.0.0'), version('1.1.0', { platforms: [LINUX] })]);
    const run = () => resolvePlugin(partial, { spec: '^1.0.0', platform: MAC, apiVersion: 'v1' });
    expect(run).toThrow(expect.objectContaining({ code: 'NO_ARTIFACT_FOR_PLATFORM' }));
    expect(run).toThrow(`(1.0.0 has it: ask for ${NAME}@1.0.0)`);
  });
});

describe('when a lock file names the version', () => {
  it('resolves a yanked version with a warning that gives the reason', () => {
    const resolution = resolveLocked(doc, '1.3.0', LINUX);
    expect(resolution.version.version).toBe('1.3.0');
    expect(resolution.artifact).toEqual(artifact(LINUX, '1.3.0'));
    expect(resolution.warnings).toEqual([`${NAME}@1.3.0 is yanked: corrupts the cache`]);
  });

  it('resolves a deprecated version with its message, and one whose API bounds exclude the host', () => {
    expect(resolveLocked(doc, '1.2.3', MAC).warnings).toEqual([DEPRECATED]);
    expect(resolveLocked(doc, '3.0.0-rc.1', LINUX).warnings).toEqual([]);
  });

  it('matches the version as the registry identifies it (build metadata aside)', () => {
    expect(resolveLocked(doc, '1.2.0+build.7', LINUX).version.version).toBe('1.2.0');
  });

  it('refuses a version that is no longer there (NO_MATCHING_VERSION)', () => {
    const run = () => resolveLocked(doc, '1.1.0', LINUX);
    expect(run).toThrow(expect.objectContaining({ name: 'ClientError', code: 'NO_MATCHING_VERSION' }));
    expect(run).toThrow(
      `${NAME}@1.1.0, which the lock holds, is no longer in the registry; versions there are: 3.0.0-rc.1`,
    );
  });

  it('refuses a platform the version lacks (NO_ARTIFACT_FOR_PLATFORM)', () => {
    expect(() => resolveLocked(doc, '0.9.0', WINDOWS)).toThrow(
      expect.objectContaining({
        code: 'NO_ARTIFACT_FOR_PLATFORM',
        message: expect.stringContaining('linux/amd64'),
      }),
    );
  });
});

describe('when checking API bounds', () => {
  it.each([
    { min: undefined, max: undefined, host: 'v7', allows: true },
    { min: 'v2', max: undefined, host: 'v1', allows: false },
    { min: 'v2', max: undefined, host: 'v2', allows: true },
    { min: 'v2', max: undefined, host: 'v10', allows: true },
    { min: undefined, max: 'v3', host: 'v3.4', allows: true },
    { min: undefined, max: 'v3', host: 'v4', allows: false },
    { min: undefined, max: 'v3.1', host: 'v3.2', allows: false },
    { min: 'v2.1', max: undefined, host: 'v2', allows: false },
    { min: 'v2.1', max: undefined, host: '2.1', allows: true },
    { min: 'v9', max: undefined, host: 'v10', allows: true },
    { min: 'two', max: undefined, host: 'v2', allows: false },
    { min: undefined, max: 'v3', host: 'latest', allows: false },
  ])('min $min, max $max, host $host -> $allows', ({ min, max, host, allows }) => {
    const record = version('1.0.0', {
      ...(min === undefined ? {} : { min_api_version: min }),
      ...(max === undefined ? {} : { max_api_version: max }),
    });
    expect(apiVersionAllows(record, host)).toBe(allows);
  });
});

describe('when picking an artifact', () => {
  it('finds the one for the platform, or none', () => {
    const record = version('1.0.0');
    expect(artifactFor(record, MAC)?.url).toMatch(/darwin-arm64\.tar\.gz$/);
    expect(artifactFor(record, WINDOWS)).toBeUndefined();
  });
});

describe('when parsing a request', () => {
  it.each([
    { text: 'kubecost-lens', name: 'kubecost-lens', spec: 'latest' },
    { text: 'kubecost-lens@1.2.0', name: 'kubecost-lens', spec: '1.2.0' },
    { text: 'kubecost-lens@^1.2', name: 'kubecost-lens', spec: '^1.2' },
    { text: 'kubecost-lens@>=1 <2', name: 'kubecost-lens', spec: '>=1 <2' },
    { text: ' aws-cost@beta ', name: 'aws-cost', spec: 'beta' },
  ])('reads $text', ({ text, name, spec }) => {
    expect(parseRequest(text)).toEqual({ name, spec });
  });

  it.each([
    { text: '', says: 'has no plugin name' },
    { text: '@1.0.0', says: 'has no plugin name' },
    { text: 'kubecost-lens@', says: "the version after '@' is empty" },
    { text: 'Kubecost-Lens', says: 'lowercase letters and digits' },
    { text: 'a', says: 'is not a plugin name' },
    { text: 'kube--cost', says: 'is not a plugin name' },
    { text: '../etc', says: 'is not a plugin name' },
    { text: 'index', says: "the registry's own paths" },
    { text: 'nul@1.0.0', says: 'Windows device name' },
    { text: 'kubecost-lens@1.2.3.4', says: 'is not a version (1.2.3), a range' },
    // Other tools' ways to give a version (pip's ==, gem's =, a version alone where a name goes): named in
    // this tool's form, where the refusal said only what a plugin name is.
    { text: 'kubecost-lens==1.2.0', says: 'did you mean kubecost-lens@1.2.0?' },
    { text: 'kubecost-lens=^1.2', says: 'did you mean kubecost-lens@^1.2?' },
    { text: 'kubecost-lens 1.2.0', says: 'did you mean kubecost-lens@1.2.0?' },
    // In one word, what follows '==' is no plugin of its own: a version a plugin could be named is one too.
    { text: 'kubecost-lens==12', says: 'did you mean kubecost-lens@12?' },
    { text: 'kubecost-lens==v2', says: 'did you mean kubecost-lens@v2?' },
    { text: 'kubecost-lens==latest', says: 'did you mean kubecost-lens@latest?' },
    { text: '1.2.0', says: "a version goes after its plugin's name and '@' (NAME@1.2.0)" },
  ])('refuses $text (REQUEST_INVALID)', ({ text, says }) => {
    expect(() => parseRequest(text)).toThrow(
      expect.objectContaining({ name: 'ClientError', code: 'REQUEST_INVALID' }),
    );
    expect(() => parseRequest(text)).toThrow(says);
  });
});

/** What `parseRequest` throws for `text`, or undefined when it takes it. */
function requestRefusal(text: string): unknown {
  try {
    parseRequest(text);
  } catch (thrown) {
    return thrown;
  }
  return undefined;
}

describe('when a request is a URL (info, update and audit take none)', () => {
  it.each([
    {
      text: 'https://u:s3cret@r.example/plugins/lens/1.0.0/manifest.json',
      shown: 'https://***@r.example/plugins/lens/1.0.0/manifest.json',
    },
    {
      text: 'https://r.example/p/manifest.json?token=s3cret',
      shown: 'https://r.example/p/manifest.json?token=…',
    },
    { text: 'https://r.example/x@1?token=s3cret#s3cret', shown: 'https://r.example/x@1?token=…#…' },
    { text: 'https://u:s3cret@r.example:99999/p', shown: 'https://***@r.example:99999/p' },
    // A numeric password before a `?` or `#` parses as a port, the rest as a query: `https://u:1234/?…`.
    { text: 'https://u:1234?s3cret@r.example/p', shown: 'https://***@r.example/p' },
    { text: 'https://u:1234#s3cret@r.example/p', shown: 'https://***@r.example/p' },
  ])(
    'refuses $shown as a URL (REQUEST_INVALID), never showing its credentials or query values',
    ({ text, shown }) => {
      // Read as a name, `plugin name "https://u:s3cret" in "https://u:s3cret@…"` echoed the password and query.
      const error = requestRefusal(text);
      expect(error).toMatchObject({ name: 'ClientError', code: 'REQUEST_INVALID' });
      expect((error as Error).message).toBe(
        `${shown} is a URL, not a plugin name: expected NAME or NAME@VERSION (e.g. kubecost-lens@^1.2)`,
      );
      expect((error as Error).message).not.toContain('s3cret');
    },
  );
});

describe('when a request reads as credentials and a host without a scheme', () => {
  it('refuses it (REQUEST_INVALID) showing neither the user name nor the password', () => {
    // Read as a name, `plugin name "user:s3cret" in "user:s3cret@host/x"` echoed the password.
    for (const text of ['user:s3cret@r.example/x', 'user:s3cret@r.example']) {
      const error = requestRefusal(text);
      expect(error).toMatchObject({ name: 'ClientError', code: 'REQUEST_INVALID' });
      expect((error as Error).message).toContain(`***@${text.slice('user:s3cret@'.length)}`);
      expect((error as Error).message).not.toContain('s3cret');
      expect((error as Error).message).not.toContain('user');
    }
    // A name and a tag, or a registry's host and port, are no credentials: refused as before, named whole.
    expect(() => parseRequest('kubecost-lens:1.0')).toThrow('plugin name "kubecost-lens:1.0"');
    expect(() => parseRequest('localhost:5000/lens@sha256:ab')).toThrow('is not a plugin name');
  });
});

describe('when a name no registry lists is near one its search.json lists', () => {
  it('names the nearest, never the name itself', () => {
    expect(nearestPluginName('demo-plugni', ['demo-plugin', 'demo-plug', 'other'])).toBe('demo-plugin');
    expect(nearestPluginName('demo-plugin', ['demo-plugin'])).toBeUndefined();
  });

  it("names only what a plugin can be named: search.json is a registry's word, signed or not", () => {
    // Its entries are not read by the schema: a number, a missing name or an object read as distance 0 and was
    // named (`did you mean 5?`), a name with a terminal's escape (ESC c resets it) within two edits was named
    // back to a library caller as it was, and one megabytes long cost a table of its length.
    const hostile = [
      5,
      undefined,
      null,
      { name: 'x' },
      'demo-plugi\u001bc',
      `demo-plugin${'x'.repeat(1_000_000)}`,
    ];
    expect(nearestPluginName('demo-plugin', hostile)).toBeUndefined();
    expect(nearestPluginName('demo-plugin', [...hostile, 'demo-plugins'])).toBe('demo-plugins');
  });
});

describe('when parsing a platform', () => {
  it.each([
    { text: 'linux/amd64', platform: LINUX },
    { text: 'linux-amd64', platform: LINUX },
    { text: 'Darwin/ARM64', platform: MAC },
    { text: 'win32/x64', platform: WINDOWS },
    { text: 'freebsd/386', platform: { os: 'freebsd', arch: '386' } },
  ])('reads $text', ({ text, platform }) => {
    expect(parsePlatform(text)).toEqual(platform);
  });

  it.each([
    { text: 'linux', says: 'is not OS/ARCH' },
    { text: 'linux/amd64/v2', says: 'names an unknown C library "v2"' },
    { text: 'linux/amd64/musl/v2', says: 'is not OS/ARCH' },
    { text: '', says: 'is not OS/ARCH' },
    { text: 'linx/amd64', says: 'unknown OS "linx"' },
    { text: 'linux/riscv64', says: 'unknown architecture "riscv64"' },
  ])('refuses $text (REQUEST_INVALID), naming the form expected', ({ text, says }) => {
    expect(() => parsePlatform(text)).toThrow(expect.objectContaining({ code: 'REQUEST_INVALID' }));
    expect(() => parsePlatform(text)).toThrow(says);
    expect(() => parsePlatform(text)).toThrow('e.g. linux/amd64');
  });

  it('keys a platform with a dash, the form parsePlatform also reads', () => {
    expect(platformKey(MAC)).toBe('darwin-arm64');
    expect(parsePlatform(platformKey(MAC))).toEqual(MAC);
  });
});

describe("when mapping Node's platform names", () => {
  it.each([
    { node: ['linux', 'x64'], platform: LINUX },
    { node: ['darwin', 'arm64'], platform: MAC },
    { node: ['win32', 'x64'], platform: WINDOWS },
    { node: ['win32', 'ia32'], platform: { os: 'windows', arch: '386' } },
    { node: ['freebsd', 'arm'], platform: { os: 'freebsd', arch: 'arm' } },
    { node: ['aix', 'ppc64'], platform: { os: 'aix', arch: 'ppc64' } },
  ])('maps $node to the registry names', ({ node, platform }) => {
    expect(hostPlatform(node[0] as string, node[1] as string)).toEqual(platform);
  });
});
