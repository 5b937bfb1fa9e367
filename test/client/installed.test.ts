/** installed.json, the file a host reads: its edits, and what a damaged or hostile copy cannot make the client do. */
import { describe, expect, it } from 'vitest';
import {
  EMPTY_INSTALLED,
  type InstalledFile,
  type InstalledVersion,
  ownersOf,
  parseInstalled,
  serializeInstalled,
  withCheckedPublisher,
  withEnabled,
  withHandClaim,
  withInstalledVersion,
  withoutInstalled,
  withoutPlatforms,
  withoutSetOwner,
  withSetOwner,
  withVerification,
} from '../../client/installed.ts';

const FILE = '/plugins/installed.json';
const record = (platform: string, path: string): InstalledVersion => ({
  registry: 'main',
  registry_key: 'A'.repeat(40),
  manifest_sha256: 'a'.repeat(64),
  publisher: 'B'.repeat(40),
  installed: '2026-12-02T00:00:00.000Z',
  artifacts: { [platform]: { path, sha256: 'c'.repeat(64), size: 3 } },
});

/** `installed` with demo's `version` for `platform`, its file where an install places it. */
const withDemo = (installed: InstalledFile, version: string, platform: string): InstalledFile =>
  withInstalledVersion(installed, 'demo', version, record(platform, `demo/${version}/${platform}/demo`));

describe('when versions are installed and removed', () => {
  it('adds a platform to a version already there, makes the last installed current, and keeps enabled', () => {
    let installed = withDemo(EMPTY_INSTALLED, '1.0.0', 'linux-amd64');
    installed = withEnabled(installed, 'demo', false);
    installed = withDemo(installed, '1.0.0', 'darwin-arm64');
    installed = withDemo(installed, '1.1.0', 'linux-amd64');
    expect(installed.plugins.demo).toMatchObject({ enabled: false, current: '1.1.0' });
    expect(Object.keys(installed.plugins.demo?.versions['1.0.0']?.artifacts ?? {}).sort()).toEqual([
      'darwin-arm64',
      'linux-amd64',
    ]);
    expect(parseInstalled(serializeInstalled(installed), FILE)).toEqual(installed);
  });

  it('keeps whose a version is when a platform is added to it: a set adding one to a plain install claims none', () => {
    const bySet = (installed: InstalledFile, platform: string, set: string | undefined): InstalledFile =>
      withInstalledVersion(installed, 'demo', '1.0.0', {
        ...record(platform, `demo/1.0.0/${platform}/demo`),
        ...(set ? { sets: [set] } : {}),
      });
    const setsOf = (installed: InstalledFile) => installed.plugins.demo?.versions['1.0.0']?.sets;
    const byHand = bySet(EMPTY_INSTALLED, 'linux-amd64', undefined);
    const placed = bySet(EMPTY_INSTALLED, 'linux-amd64', '../a.yaml');

    expect(setsOf(bySet(byHand, 'darwin-arm64', '../a.yaml'))).toBeUndefined();
    // Another set adding a platform to what a set placed joins its owners; the same set is listed once.
    expect(setsOf(bySet(placed, 'darwin-arm64', '../b.yaml'))).toEqual(['../a.yaml', '../b.yaml']);
    expect(setsOf(bySet(placed, 'darwin-arm64', '../a.yaml'))).toEqual(['../a.yaml']);
    // A plain install of a platform leaves the version whose it was.
    expect(setsOf(bySet(placed, 'darwin-arm64', undefined))).toEqual(['../a.yaml']);
    expect(parseInstalled(serializeInstalled(placed), FILE)).toEqual(placed);
  });

  it('reads the single `set` the previous release wrote as one owner, and writes `sets` once it changes', () => {
    // Prepare: a record as the previous release wrote it.
    const legacy = withInstalledVersion(EMPTY_INSTALLED, 'demo', '1.0.0', {
      ...record('linux-amd64', 'demo/1.0.0/linux-amd64/demo'),
      set: '../a.yaml',
    });
    const parsed = parseInstalled(serializeInstalled(legacy), FILE);
    const named = (reference: string) => ({ reference, names: (r: string) => r === reference });
    const pinned = { version: '1.0.0', manifest_sha256: 'a'.repeat(64) };

    // Act
    const joined = withSetOwner(parsed, 'demo', pinned, named('../b.yaml'), false);
    const again = withSetOwner(joined, 'demo', pinned, named('../b.yaml'), false);
    const otherBytes = withSetOwner(
      parsed,
      'demo',
      { ...pinned, manifest_sha256: 'f'.repeat(64) },
      named('../b.yaml'),
      false,
    );
    const aGone = withoutSetOwner(joined, 'demo', '1.0.0', named('../a.yaml').names);
    const bGone = withoutSetOwner(aGone.installed, 'demo', '1.0.0', named('../b.yaml').names);
    const notAnOwner = withoutSetOwner(joined, 'demo', '1.0.0', named('../c.yaml').names);

    // Assess
    expect(ownersOf(parsed.plugins.demo?.versions['1.0.0'])).toEqual(['../a.yaml']);
    expect(joined.plugins.demo?.versions['1.0.0']).toMatchObject({ sets: ['../a.yaml', '../b.yaml'] });
    expect(joined.plugins.demo?.versions['1.0.0']).not.toHaveProperty('set');
    expect(again).toBe(joined);
    expect(otherBytes).toBe(parsed);
    expect(aGone.others).toEqual(['../b.yaml']);
    expect(aGone.installed.plugins.demo?.versions['1.0.0']?.sets).toEqual(['../b.yaml']);
    // The last owner: the caller removes the version, so nothing is edited here.
    expect(bGone).toEqual({ installed: aGone.installed, others: [], hand: false });
    expect(notAnOwner).toEqual({ installed: joined, others: [], hand: false });
  });

  it('keeps a version a plain install claims too when its last set drops it, the user\u2019s alone', () => {
    const placed = withInstalledVersion(EMPTY_INSTALLED, 'demo', '1.0.0', {
      ...record('linux-amd64', 'demo/1.0.0/linux-amd64/demo'),
      sets: ['../a.yaml'],
    });
    const claimed = withHandClaim(placed, 'demo', '1.0.0', 'a'.repeat(64));
    const dropped = withoutSetOwner(claimed, 'demo', '1.0.0', (r) => r === '../a.yaml');

    expect(withHandClaim(EMPTY_INSTALLED, 'demo', '1.0.0', 'a'.repeat(64))).toBe(EMPTY_INSTALLED);
    expect(claimed.plugins.demo?.versions['1.0.0']).toMatchObject({ sets: ['../a.yaml'], hand: true });
    expect(withHandClaim(claimed, 'demo', '1.0.0', 'a'.repeat(64))).toBe(claimed);
    expect(dropped.hand).toBe(true);
    expect(dropped.others).toEqual([]);
    const left = dropped.installed.plugins.demo?.versions['1.0.0'];
    expect(left).toBeDefined();
    expect(left).not.toHaveProperty('sets');
    expect(left).not.toHaveProperty('hand');
  });

  it('claims a version no set placed only by the set\u2019s lock, and never joins a plain install otherwise', () => {
    const byHand = withInstalledVersion(
      EMPTY_INSTALLED,
      'demo',
      '1.0.0',
      record('linux-amd64', 'demo/1.0.0/linux-amd64/demo'),
    );
    const owner = { reference: '../a.yaml', names: (r: string) => r === '../a.yaml' };
    const pinned = { version: '1.0.0', manifest_sha256: 'a'.repeat(64) };

    expect(withSetOwner(byHand, 'demo', pinned, owner, false)).toBe(byHand);
    expect(withSetOwner(byHand, 'demo', pinned, owner, true).plugins.demo?.versions['1.0.0']?.sets).toEqual([
      '../a.yaml',
    ]);
  });

  it('keeps the highest version left current after a removal, and drops the plugin with its last version', () => {
    let installed = withDemo(EMPTY_INSTALLED, '1.0.0', 'linux-amd64');
    installed = withDemo(installed, '2.0.0', 'linux-amd64');
    const once = withoutInstalled(installed, 'demo', '2.0.0');
    expect(once.removed).toEqual(['2.0.0']);
    expect(once.installed.plugins.demo?.current).toBe('1.0.0');
    expect(withoutInstalled(once.installed, 'demo', undefined).installed.plugins).toEqual({});
    expect(() => withoutInstalled(installed, 'demo', '3.0.0')).toThrow(
      expect.objectContaining({
        name: 'ClientError',
        code: 'NOT_INSTALLED',
        message: expect.stringContaining('1.0.0, 2.0.0'),
      }),
    );
    expect(() => withEnabled(installed, 'other', true)).toThrow(
      expect.objectContaining({ code: 'NOT_INSTALLED' }),
    );
    // A name that is also a property of every object is just a name that is not installed.
    expect(() => withEnabled(installed, 'constructor', true)).toThrow(
      expect.objectContaining({ code: 'NOT_INSTALLED' }),
    );
    expect(() => withoutInstalled(installed, 'toString', undefined)).toThrow(
      expect.objectContaining({ code: 'NOT_INSTALLED' }),
    );
  });

  it('marks a version left whose folder differed only in case from a removed one\u2019s, and no other', () => {
    // An older client recorded both 1.0.0-RC.1 and 1.0.0-rc.1: where case is ignored, one folder.
    let installed = withDemo(EMPTY_INSTALLED, '1.0.0-RC.1', 'linux-amd64');
    installed = withDemo(installed, '1.0.0-rc.1', 'linux-amd64');
    installed = withDemo(installed, '2.0.0', 'linux-amd64');

    const { installed: left } = withoutInstalled(installed, 'demo', '1.0.0-RC.1');

    expect(left.plugins.demo?.versions['1.0.0-rc.1']?.problem).toEqual({
      code: 'VERSION_FOLDER_CLASH',
      message: expect.stringContaining('removed with demo@1.0.0-RC.1; `plugindex install` places it again'),
    });
    expect(left.plugins.demo?.versions['2.0.0']).toBe(installed.plugins.demo?.versions['2.0.0']);
    expect(parseInstalled(serializeInstalled(left), FILE)).toEqual(left);
  });

  it('marks a version left that differed only in build metadata from a removed one (one folder everywhere)', () => {
    let installed = withDemo(EMPTY_INSTALLED, '1.0.0+a', 'linux-amd64');
    installed = withDemo(installed, '1.0.0+b', 'linux-amd64');
    installed = withDemo(installed, '1.0.1+a', 'linux-amd64');

    const { installed: left } = withoutInstalled(installed, 'demo', '1.0.0+a');

    expect(left.plugins.demo?.versions['1.0.0+b']?.problem).toEqual({
      code: 'VERSION_FOLDER_CLASH',
      message: expect.stringContaining(
        'demo@1.0.0+b differs from demo@1.0.0+a only in build metadata, which a version folder leaves out: they were one folder, removed with demo@1.0.0+a',
      ),
    });
    expect(left.plugins.demo?.versions['1.0.1+a']).toBe(installed.plugins.demo?.versions['1.0.1+a']);
  });

  it('drops the platforms a set no longer lists from a version, naming them and their files, and keeps the rest', () => {
    let installed = withDemo(EMPTY_INSTALLED, '1.0.0', 'linux-amd64');
    installed = withDemo(installed, '1.0.0', 'darwin-arm64');
    const dropped = withoutPlatforms(installed, 'demo', '1.0.0', new Set(['linux-amd64']));
    expect(dropped.platforms).toEqual(['darwin-arm64']);
    expect(dropped.paths).toEqual(['demo/1.0.0/darwin-arm64/demo']);
    expect(Object.keys(dropped.installed.plugins.demo?.versions['1.0.0']?.artifacts ?? {})).toEqual([
      'linux-amd64',
    ]);
    expect(parseInstalled(serializeInstalled(dropped.installed), FILE)).toEqual(dropped.installed);

    // Every platform kept, or a version not installed: the same object, nothing to remove.
    const kept = withoutPlatforms(installed, 'demo', '1.0.0', new Set(['linux-amd64', 'darwin-arm64']));
    expect(kept).toEqual({ installed, platforms: [], paths: [] });
    expect(kept.installed).toBe(installed);
    expect(withoutPlatforms(installed, 'demo', '9.9.9', new Set()).installed).toBe(installed);
  });

  it('records a failed verification, and clears it once the version verifies again', () => {
    const installed = withDemo(EMPTY_INSTALLED, '1.0.0', 'linux-amd64');
    const failed = withVerification(installed, 'demo', '1.0.0', {
      problem: { code: 'INSTALLED_MODIFIED', message: 'm' },
    });
    expect(failed.plugins.demo?.versions['1.0.0']?.problem?.code).toBe('INSTALLED_MODIFIED');
    const fixed = withVerification(failed, 'demo', '1.0.0', { verified: '2026-12-03T00:00:00.000Z' });
    expect(fixed.plugins.demo?.versions['1.0.0']).toMatchObject({ verified: '2026-12-03T00:00:00.000Z' });
    expect(fixed.plugins.demo?.versions['1.0.0']?.problem).toBeUndefined();
  });
});

describe('when an install checks the publisher of a version it leaves in place', () => {
  it('records it checked, with the publisher checked, only on a record of the same manifest', () => {
    const installed = withDemo(EMPTY_INSTALLED, '1.0.0', 'linux-amd64');
    const signed = 'C'.repeat(40);

    const checked = withCheckedPublisher(installed, 'demo', '1.0.0', 'a'.repeat(64), signed);

    expect(checked.plugins.demo?.versions['1.0.0']).toMatchObject({
      publisher: signed,
      publisher_verified: true,
    });
    expect(parseInstalled(serializeInstalled(checked), FILE)).toEqual(checked);
    expect(withCheckedPublisher(checked, 'demo', '1.0.0', 'a'.repeat(64), signed)).toBe(checked);
    expect(withCheckedPublisher(installed, 'demo', '1.0.0', 'd'.repeat(64), signed)).toBe(installed);
    expect(withCheckedPublisher(installed, 'demo', '2.0.0', 'a'.repeat(64), signed)).toBe(installed);
  });
});

describe('when installed.json is damaged or hostile', () => {
  const valid = (): Record<string, unknown> =>
    JSON.parse(serializeInstalled(withDemo(EMPTY_INSTALLED, '1.0.0', 'linux-amd64')));
  const edit = (
    change: (v: {
      plugins: Record<string, { versions: Record<string, { artifacts: Record<string, { path: string }> }> }>;
    }) => void,
  ): string => {
    const value = valid() as unknown as Parameters<typeof change>[0];
    change(value);
    return JSON.stringify(value);
  };

  it.each([
    ['not JSON', () => '{', 'not JSON'],
    ['another schema', () => JSON.stringify({ ...valid(), schema: 'x' }), '#/schema'],
    [
      'an artifact path leading out of the folder',
      () =>
        edit((v) => {
          (v.plugins.demo?.versions['1.0.0']?.artifacts['linux-amd64'] as { path: string }).path =
            'demo/../../etc/passwd';
        }),
      '#/plugins/demo/versions/1.0.0/artifacts/linux-amd64',
    ],
    [
      'an artifact path under another plugin',
      () =>
        edit((v) => {
          (v.plugins.demo?.versions['1.0.0']?.artifacts['linux-amd64'] as { path: string }).path =
            'other/1.0.0/x';
        }),
      '#/plugins/demo/versions/1.0.0/artifacts/linux-amd64',
    ],
    [
      'an artifact digest that is a path (remove --clean deletes the cache file a digest names)',
      () =>
        edit((v) => {
          (
            v.plugins.demo?.versions['1.0.0']?.artifacts['linux-amd64'] as unknown as { sha256: string }
          ).sha256 = '../../../notes.txt';
        }),
      '#/plugins/demo/versions/1.0.0/artifacts/linux-amd64',
    ],
    [
      'a manifest digest that is not one',
      () =>
        edit((v) => {
          (v.plugins.demo?.versions['1.0.0'] as unknown as { manifest_sha256: string }).manifest_sha256 = 'x';
        }),
      '#/plugins/demo/versions/1.0.0/manifest_sha256',
    ],
    [
      'a publisher_verified that is not true or false',
      () =>
        edit((v) => {
          (
            v.plugins.demo?.versions['1.0.0'] as unknown as { publisher_verified: string }
          ).publisher_verified = 'yes';
        }),
      '#/plugins/demo/versions/1.0.0/publisher_verified',
    ],
    [
      'sets that are not a list of set file paths',
      () =>
        edit((v) => {
          (v.plugins.demo?.versions['1.0.0'] as unknown as { sets: unknown }).sets = '../plugins.yaml';
        }),
      '#/plugins/demo/versions/1.0.0/sets',
    ],
    [
      'a hand claim that is not true',
      () =>
        edit((v) => {
          (v.plugins.demo?.versions['1.0.0'] as unknown as { hand: unknown }).hand = 'yes';
        }),
      '#/plugins/demo/versions/1.0.0/hand',
    ],
    [
      'an empty list of sets',
      () =>
        edit((v) => {
          (v.plugins.demo?.versions['1.0.0'] as unknown as { sets: unknown }).sets = [];
        }),
      '#/plugins/demo/versions/1.0.0/sets',
    ],
    [
      'a set that is not the path of a set file',
      () =>
        edit((v) => {
          (v.plugins.demo?.versions['1.0.0'] as unknown as { set: boolean }).set = true;
        }),
      '#/plugins/demo/versions/1.0.0/set',
    ],
    [
      'a plugin name that is a path',
      () =>
        edit((v) => {
          v.plugins['../escape'] = v.plugins.demo as never;
        }),
      '#/plugins/../escape',
    ],
    [
      'a version that is a path',
      () =>
        edit((v) => {
          const demo = v.plugins.demo as { versions: Record<string, unknown> };
          demo.versions['../../x'] = demo.versions['1.0.0'];
        }),
      '#/plugins/demo/versions/../../x',
    ],
  ])('refuses %s with INSTALLED_INVALID naming where', (_what, text, where) => {
    expect(() => parseInstalled(text(), FILE)).toThrow(
      expect.objectContaining({
        name: 'ClientError',
        code: 'INSTALLED_INVALID',
        message: expect.stringContaining(where),
      }),
    );
  });

  /** installed.json with demo's 1.0.0 recorded as plugin `name`, version `version`, its file at `path`. */
  const recorded = (name: string, version: string, path: string): string =>
    serializeInstalled(withInstalledVersion(EMPTY_INSTALLED, name, version, record('linux-amd64', path)));
  const long = `1.0.0-${'a'.repeat(130)}`;

  it.each([
    [
      'a plugin name Windows keeps for a device',
      () => recorded('nul', '1.0.0', 'nul/1.0.0/linux-amd64/x'),
      '#/plugins/nul: expected',
      'a Windows device name (nul)',
    ],
    [
      'an artifact file named for a Windows device',
      () => recorded('demo', '1.0.0', 'demo/1.0.0/linux-amd64/aux.exe'),
      '#/plugins/demo/versions/1.0.0/artifacts/linux-amd64',
      'a Windows device name (aux.exe)',
    ],
    [
      'an artifact path ending with a dot (Windows drops it)',
      () => recorded('demo', '1.0.0', 'demo/1.0.0/linux-amd64/demo.'),
      '#/plugins/demo/versions/1.0.0/artifacts/linux-amd64',
      'a segment ending with "."',
    ],
    [
      'a version whose folder is longer than a path segment may be',
      () => recorded('demo', long, `demo/1.0.0/linux-amd64/demo`),
      `#/plugins/demo/versions/${long}: expected`,
      'a segment longer than 128 characters',
    ],
  ])(
    'refuses %s with INSTALLED_INVALID, as no folder on some system could hold it',
    (_what, text, where, why) => {
      // Each is a path every install folder's writes refuse (layout.ts keyProblem), on every system: a
      // checkout's installed.json made on Linux is read on Windows too.
      expect(() => parseInstalled(text(), FILE)).toThrow(
        expect.objectContaining({
          name: 'ClientError',
          code: 'INSTALLED_INVALID',
          message: expect.stringMatching(new RegExp(`${escaped(where)}.*${escaped(why)}`)),
        }),
      );
    },
  );
});

function escaped(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
