/**
 * A plugin's life after publishing as the resolver and the install judge it, over documents built by hand
 * in the shape the registry publishes (model.ts): advisories (ranges with prereleases, withdrawn, severities
 * and their order), removed versions refused with their reason wherever asked for, yanked versions from a
 * lock warned of or (denied) refused, deprecation of a version or a whole plugin with its replacement, and a
 * revoked publisher key.
 */
import { describe, expect, it } from 'vitest';
import { ClientError } from '../../client/errors.ts';
import {
  advisoryText,
  affectingAdvisories,
  affects,
  bySeverity,
  checkAdvisories,
  deprecationWarning,
} from '../../client/lifecycle.ts';
import { resolveLocked, resolvePlugin } from '../../client/resolve.ts';
import type { Advisory, PluginDocument, VersionRecord } from '../../index-builder/model.ts';
import { sortVersionsDescending } from '../../index-builder/versions.ts';

const NAME = 'cost-lens';
const LINUX = { os: 'linux', arch: 'amd64' } as const;

function version(number: string, overrides: Partial<VersionRecord> = {}): VersionRecord {
  return {
    version: number,
    published: '2026-01-01T00:00:00Z',
    prerelease: number.includes('-'),
    yanked: false,
    deprecated: false,
    api_version: 'v1',
    manifest_url: `https://registry.example/plugins/${NAME}/${number}/manifest.json`,
    manifest_signature_url: `https://registry.example/plugins/${NAME}/${number}/manifest.json.asc`,
    manifest_sha256: 'b'.repeat(64),
    manifest_size: 512,
    source_sha256: 'c'.repeat(64),
    publisher: 'D'.repeat(40),
    artifacts: [
      {
        ...LINUX,
        url: `https://registry.example/plugins/${NAME}/${number}/tool`,
        sha256: 'a'.repeat(64),
        size_bytes: 1024,
        hosted: true,
      },
    ],
    ...overrides,
  };
}

function pluginDocument(
  versions: readonly VersionRecord[],
  extra: Partial<Pick<PluginDocument, 'advisories' | 'deprecation'>> = {},
): PluginDocument {
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
    ...extra,
  };
}

function advisory(
  id: string,
  severity: Advisory['severity'],
  affected: string,
  extra: Partial<Advisory> = {},
) {
  return {
    id,
    severity,
    affected,
    summary: `${id} summary`,
    published: '2026-10-01T00:00:00Z',
    ...extra,
  } satisfies Advisory;
}

const thrown = (run: () => unknown): unknown => {
  try {
    run();
  } catch (error) {
    return error;
  }
  throw new Error('expected it to throw');
};

describe('when an advisory is read against a version', () => {
  it.each([
    ['<1.2.0', '1.1.9', true],
    ['<1.2.0', '1.2.0', false],
    ['<1.2.0', '1.2.0-rc.1', true],
    ['>=1.0.0 <1.2.0', '1.0.0-beta.1', false],
    ['>=1.0.0-0 <1.2.0', '1.0.0-beta.1', true],
    ['1.x', '1.5.0-alpha', true],
    ['not a range at all', '9.9.9', true],
  ])(
    '%s affects %s: %s (prereleases included; an unreadable range affects everything)',
    (range, v, expected) => {
      expect(affects(advisory('A-1', 'low', range), v)).toBe(expected);
    },
  );

  it('leaves a withdrawn advisory out, and lists the others worst first then by id', () => {
    const doc = pluginDocument([version('1.0.0')], {
      advisories: [
        advisory('A-3', 'low', '*'),
        advisory('A-1', 'moderate', '*'),
        advisory('A-2', 'critical', '*'),
        advisory('A-0', 'critical', '*', {
          withdrawn: { at: '2026-10-02T00:00:00Z', reason: 'not exploitable' },
        }),
        advisory('A-4', 'high', '*'),
        advisory('A-5', 'high', '>=2'),
      ],
    });
    expect(affectingAdvisories(doc, '1.0.0').map((a) => `${a.id} ${a.severity}`)).toEqual([
      'A-2 critical',
      'A-4 high',
      'A-1 moderate',
      'A-3 low',
    ]);
    expect(bySeverity(doc.advisories ?? []).map((a) => a.id)).toEqual([
      'A-0',
      'A-2',
      'A-4',
      'A-5',
      'A-1',
      'A-3',
    ]);
  });

  it('refuses at high and critical unless allowed (VULNERABLE naming id, severity, summary and fix), warns below', () => {
    const doc = pluginDocument([version('1.0.0')], {
      advisories: [
        advisory('PDX-2026-0001', 'high', '<1.2.0', { fixed: '1.2.0', url: 'https://registry.example/a/1' }),
        advisory('PDX-2026-0002', 'low', '<2.0.0'),
      ],
    });
    const error = thrown(() => checkAdvisories(doc, '1.0.0', {}));
    expect(error).toBeInstanceOf(ClientError);
    expect(error).toMatchObject({ code: 'VULNERABLE' });
    expect((error as Error).message).toContain(
      'PDX-2026-0001 (high): PDX-2026-0001 summary; fixed in 1.2.0; https://registry.example/a/1',
    );
    expect((error as Error).message).not.toContain('PDX-2026-0002');
    expect((error as Error).message).toContain('--allow-vulnerable');

    const allowed = checkAdvisories(doc, '1.0.0', { allowVulnerable: true });
    expect(allowed.advisories.map((a) => a.id)).toEqual(['PDX-2026-0001', 'PDX-2026-0002']);
    expect(allowed.warnings).toEqual([
      `${NAME}@1.0.0 is affected by advisory PDX-2026-0001 (high): PDX-2026-0001 summary; fixed in 1.2.0; https://registry.example/a/1`,
      `${NAME}@1.0.0 is affected by advisory PDX-2026-0002 (low): PDX-2026-0002 summary; no fixed version yet`,
    ]);
    const fixed = checkAdvisories(doc, '1.2.0', {});
    expect(fixed.warnings).toEqual([expect.stringContaining('PDX-2026-0002 (low)')]);
    expect(advisoryText(advisory('X', 'moderate', '*'))).toBe(
      'X (moderate): X summary; no fixed version yet',
    );
  });
});

describe('when a removed or yanked version is asked for', () => {
  const removed = { reason: 'contains a leaked credential', at: '2026-10-20T00:00:00Z' };
  const doc = pluginDocument([
    version('1.0.0'),
    version('1.1.0', { yanked: true, yanked_reason: 'crashes on start' }),
    version('1.2.0', { yanked: true, removed }),
  ]);

  it('refuses a removed version asked for exactly, with its reason (VERSION_REMOVED)', () => {
    const error = thrown(() => resolvePlugin(doc, { spec: '1.2.0', platform: LINUX, apiVersion: 'v1' }));
    expect(error).toBeInstanceOf(ClientError);
    expect(error).toMatchObject({
      code: 'VERSION_REMOVED',
      message: expect.stringContaining(
        `${NAME}@1.2.0 was removed from the registry on 2026-10-20T00:00:00Z: contains a leaked credential`,
      ),
    });
  });

  it('leaves removed and yanked versions out of a range, saying why', () => {
    expect(resolvePlugin(doc, { spec: '^1.0.0', platform: LINUX, apiVersion: 'v1' }).version.version).toBe(
      '1.0.0',
    );
    const error = thrown(() => resolvePlugin(doc, { spec: '>=1.1.0', platform: LINUX, apiVersion: 'v1' }));
    expect(error).toMatchObject({ code: 'NO_MATCHING_VERSION' });
    expect((error as Error).message).toContain('1.2.0 was removed (contains a leaked credential)');
    expect((error as Error).message).toContain('1.1.0 is yanked (crashes on start)');
  });

  it('refuses a removed version a lock holds, with its reason (VERSION_REMOVED)', () => {
    expect(thrown(() => resolveLocked(doc, '1.2.0', LINUX))).toMatchObject({
      name: 'ClientError',
      code: 'VERSION_REMOVED',
      message: expect.stringContaining('which the lock holds'),
    });
  });

  it('installs a yanked version a lock holds with a warning, and refuses it when yanked versions are denied', () => {
    expect(resolveLocked(doc, '1.1.0', LINUX).warnings).toEqual([
      `${NAME}@1.1.0 is yanked: crashes on start`,
    ]);
    const error = thrown(() => resolveLocked(doc, '1.1.0', LINUX, { denyYanked: true }));
    expect(error).toBeInstanceOf(ClientError);
    expect(error).toMatchObject({ code: 'YANKED', message: expect.stringContaining('crashes on start') });
    expect(resolveLocked(doc, '1.0.0', LINUX, { denyYanked: true }).warnings).toEqual([]);
  });
});

describe('when a version is deprecated, or its publisher key revoked', () => {
  it('warns of a deprecated version with its message and replacement', () => {
    const doc = pluginDocument([
      version('1.0.0', {
        deprecated: true,
        deprecation_message: 'the v1 cost API is going away',
        deprecation_replacement: 'cost-lens-next',
      }),
    ]);
    expect(resolvePlugin(doc, { spec: 'latest', platform: LINUX, apiVersion: 'v1' }).warnings).toEqual([
      `${NAME}@1.0.0 is deprecated: the v1 cost API is going away; use cost-lens-next instead`,
    ]);
  });

  it('warns of every version of a deprecated plugin, its own deprecation first', () => {
    const doc = pluginDocument(
      [version('1.0.0'), version('0.9.0', { deprecated: true, deprecation_message: 'too old' })],
      { deprecation: { message: 'unmaintained', replacement: 'other-lens', at: '2026-10-01T00:00:00Z' } },
    );
    expect(resolvePlugin(doc, { spec: '1.0.0', platform: LINUX, apiVersion: 'v1' }).warnings).toEqual([
      `${NAME}@1.0.0 is deprecated: unmaintained; use other-lens instead`,
    ]);
    expect(deprecationWarning(doc, doc.versions[1] as VersionRecord)).toEqual([
      `${NAME}@0.9.0 is deprecated: too old`,
    ]);
  });

  it("keeps every warning one line: a publisher's line feeds in a message, reason or summary are escapes", () => {
    const forged = 'bad\nplugindex: all checks passed\r';
    const doc = pluginDocument([
      version('1.0.0', {
        deprecated: true,
        deprecation_message: forged,
        publisher_revoked: { at: '2026-10-05T00:00:00Z', reason: forged },
      }),
    ]);
    const warnings = [
      ...resolveLocked(doc, '1.0.0', LINUX).warnings,
      advisoryText(advisory('A-1', 'low', '*', { summary: forged })),
    ];
    expect(warnings).toHaveLength(3);
    for (const warning of warnings) {
      expect(warning).not.toMatch(/[\n\r]/);
      expect(warning).toContain('bad\\u000aplugindex: all checks passed\\u000d');
    }
  });

  it('warns of a version published by a key revoked since', () => {
    const doc = pluginDocument([
      version('1.0.0', { publisher_revoked: { at: '2026-10-05T00:00:00Z', reason: 'key leaked' } }),
    ]);
    expect(resolveLocked(doc, '1.0.0', LINUX).warnings).toEqual([
      `${NAME}@1.0.0 was published by key ${'D'.repeat(40)}, revoked on 2026-10-05T00:00:00Z (key leaked)`,
    ]);
  });
});
