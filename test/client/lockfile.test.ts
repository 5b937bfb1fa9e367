/**
 * plugindex.lock: stable bytes for equal content, every refusal with its code and JSON pointer, the lock
 * entry of a version keeping every platform, and how withPlugin / withoutPlugin / lockChanges behave.
 */
import { describe, expect, it } from 'vitest';
import { ClientError } from '../../client/errors.ts';
import {
  EMPTY_LOCKFILE,
  type LockedPlugin,
  type Lockfile,
  lockChanges,
  lockedPluginFrom,
  parseLockfile,
  serializeLockfile,
  withoutPlugin,
  withPlugin,
} from '../../client/lockfile.ts';
import { TrustError } from '../../index-builder/errors.ts';
import type { ArtifactRecord, VersionRecord } from '../../index-builder/model.ts';

const FILE = 'plugindex.lock';
const KEY_A = 'A'.repeat(40);
const KEY_B = 'B'.repeat(40);
const PUBLISHER = '0123456789ABCDEF0123456789ABCDEF01234567';
const hex = (c: string): string => c.repeat(64);

function plugin(overrides: Partial<LockedPlugin> = {}): LockedPlugin {
  return {
    registry: 'community',
    requested: '^1.2.0',
    version: '1.2.3',
    manifest_sha256: hex('a'),
    publisher: PUBLISHER,
    artifacts: {
      'darwin-arm64': { sha256: hex('d'), size: 2048 },
      'linux-amd64': { sha256: hex('1'), size: 1024 },
    },
    ...overrides,
  };
}

function lockOf(plugins: Record<string, LockedPlugin>, registries: Lockfile['registries']): Lockfile {
  return { lockfile_version: 1, registries, plugins };
}

const sample = lockOf(
  {
    'kubecost-lens': plugin(),
    'aws-costs': plugin({ registry: 'corp', version: '0.1.0', requested: 'latest' }),
  },
  {
    community: { key_fingerprint: KEY_A, min_generation: 41 },
    corp: { key_fingerprint: KEY_B, min_generation: 7 },
  },
);

function artifact(os: string, arch: string, c: string, size: number): ArtifactRecord {
  return {
    os,
    arch,
    url: `https://plugins.example.com/${os}-${arch}`,
    sha256: hex(c),
    size_bytes: size,
    hosted: true,
  };
}

function versionRecord(artifacts: readonly ArtifactRecord[]): VersionRecord {
  return {
    version: '1.2.3',
    published: '2026-11-01T00:00:00Z',
    prerelease: false,
    yanked: false,
    deprecated: false,
    api_version: 'v1',
    manifest_url: 'https://plugins.example.com/plugins/kubecost-lens/1.2.3/manifest.json',
    manifest_signature_url: 'https://plugins.example.com/plugins/kubecost-lens/1.2.3/manifest.json.asc',
    manifest_sha256: hex('a'),
    manifest_size: 900,
    source_sha256: hex('5'),
    publisher: PUBLISHER,
    artifacts,
  };
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

describe('when a lock is written and read back', () => {
  it('reads what it wrote, deep-equal', () => {
    expect(parseLockfile(serializeLockfile(sample), FILE)).toEqual(sample);
    expect(parseLockfile(serializeLockfile(EMPTY_LOCKFILE), FILE)).toEqual(EMPTY_LOCKFILE);
  });

  it('writes sorted keys at every level, 2-space indent and a trailing newline', () => {
    const text = serializeLockfile(
      lockOf({ 'kubecost-lens': plugin() }, { community: { min_generation: 41, key_fingerprint: KEY_A } }),
    );
    expect(text).toBe(
      [
        '{',
        '  "lockfile_version": 1,',
        '  "plugins": {',
        '    "kubecost-lens": {',
        '      "artifacts": {',
        '        "darwin-arm64": {',
        `          "sha256": "${hex('d')}",`,
        '          "size": 2048',
        '        },',
        '        "linux-amd64": {',
        `          "sha256": "${hex('1')}",`,
        '          "size": 1024',
        '        }',
        '      },',
        `      "manifest_sha256": "${hex('a')}",`,
        `      "publisher": "${PUBLISHER}",`,
        '      "registry": "community",',
        '      "requested": "^1.2.0",',
        '      "version": "1.2.3"',
        '    }',
        '  },',
        '  "registries": {',
        '    "community": {',
        `      "key_fingerprint": "${KEY_A}",`,
        '      "min_generation": 41',
        '    }',
        '  }',
        '}',
        '',
      ].join('\n'),
    );
  });

  it('is byte-identical for the same content built in different key orders', () => {
    const reversed = lockOf(
      {
        'aws-costs': {
          artifacts: {
            'linux-amd64': { size: 1024, sha256: hex('1') },
            'darwin-arm64': { size: 2048, sha256: hex('d') },
          },
          publisher: PUBLISHER,
          manifest_sha256: hex('a'),
          version: '0.1.0',
          requested: 'latest',
          registry: 'corp',
        },
        'kubecost-lens': plugin(),
      },
      {
        corp: { min_generation: 7, key_fingerprint: KEY_B },
        community: { key_fingerprint: KEY_A, min_generation: 41 },
      },
    );
    expect(serializeLockfile(reversed)).toBe(serializeLockfile(sample));
  });

  it('sorts names that look like numbers as strings too', () => {
    const lock = lockOf(
      { '10x': plugin({ registry: '9' }), '2d': plugin({ registry: '10' }) },
      {
        '9': { key_fingerprint: KEY_A, min_generation: 1 },
        '10': { key_fingerprint: KEY_B, min_generation: 1 },
      },
    );
    const text = serializeLockfile(lock);
    expect(text.indexOf('"10": {')).toBeLessThan(text.indexOf('"9": {'));
    expect(parseLockfile(text, FILE)).toEqual(lock);
  });

  it('writes only the lock’s own fields', () => {
    const extra = { ...plugin(), note: 'not a lock field' } as LockedPlugin;
    const text = serializeLockfile(lockOf({ 'kubecost-lens': extra }, sample.registries));
    expect(text).not.toContain('note');
  });
});

describe('when a lock is invalid', () => {
  const valid = JSON.parse(serializeLockfile(sample)) as Record<string, unknown>;
  /** The sample lock as JSON with `edit` applied to a deep copy of it. */
  // biome-ignore lint/suspicious/noExplicitAny: the edits write any value at any depth of untyped JSON
  const edited = (edit: (lock: any) => void): string => {
    const copy = structuredClone(valid);
    edit(copy);
    return JSON.stringify(copy);
  };
  const lens = '/plugins/kubecost-lens';
  const cases: readonly { what: string; text: string; message: string }[] = [
    {
      what: 'not JSON',
      text: '{',
      message: `${FILE}#: expected a JSON document, found text that is not JSON`,
    },
    { what: 'not an object', text: 'null', message: `${FILE}#: expected a JSON object, found null` },
    {
      what: 'a lockfile_version missing',
      text: edited((l) => delete l.lockfile_version),
      message: `${FILE}#/lockfile_version: expected 1 (the lockfile versions this client reads), found nothing (the field is missing)`,
    },
    {
      what: 'a newer lockfile_version',
      text: edited((l) => {
        l.lockfile_version = 2;
      }),
      message: `${FILE}#/lockfile_version: expected 1 (the lockfile versions this client reads), found the number 2`,
    },
    {
      what: 'an unknown top-level field',
      text: edited((l) => {
        l.generated_by = 'another tool';
      }),
      message: `${FILE}#/generated_by: expected only the fields lockfile_version, config_sha256, registries, plugins, found a field this version does not know`,
    },
    {
      what: 'plugins missing',
      text: edited((l) => delete l.plugins),
      message: `${FILE}#/plugins: expected an object of plugin entries, found nothing (the field is missing)`,
    },
    {
      what: 'registries as an array',
      text: edited((l) => {
        l.registries = [];
      }),
      message: `${FILE}#/registries: expected an object of registry entries, found an array`,
    },
    {
      what: 'a registry name with upper case',
      text: edited((l) => {
        l.registries.Corp = l.registries.corp;
      }),
      message: `${FILE}#/registries/Corp: expected a registry name ([a-z0-9][a-z0-9._-]{0,63}), found "Corp"`,
    },
    {
      what: 'a key fingerprint in lower case',
      text: edited((l) => {
        l.registries.community.key_fingerprint = PUBLISHER.toLowerCase();
      }),
      message: `${FILE}#/registries/community/key_fingerprint: expected a key fingerprint (40 uppercase hex digits), found "${PUBLISHER.toLowerCase()}"`,
    },
    {
      what: 'a min_generation that is not an integer',
      text: edited((l) => {
        l.registries.community.min_generation = 1.5;
      }),
      message: `${FILE}#/registries/community/min_generation: expected a snapshot generation (an integer >= 0), found the number 1.5`,
    },
    {
      what: 'a plugin name that is not a plugin name',
      text: edited((l) => {
        l.plugins.Kubecost_Lens = l.plugins['kubecost-lens'];
      }),
      message: `${FILE}#/plugins/Kubecost_Lens: expected a plugin name, found "Kubecost_Lens" (lowercase letters and digits, in words joined by single '-')`,
    },
    {
      what: 'a plugin name the registry reserves',
      text: edited((l) => {
        l.plugins.snapshot = l.plugins['kubecost-lens'];
      }),
      message: `${FILE}#/plugins/snapshot: expected a plugin name, found "snapshot" ("snapshot" is a name the registry's own paths use)`,
    },
    {
      what: 'a Windows device name',
      text: edited((l) => {
        l.plugins.nul = l.plugins['kubecost-lens'];
      }),
      message: `${FILE}#/plugins/nul: expected a plugin name, found "nul" ("nul" is a Windows device name)`,
    },
    {
      what: 'a plugin that is not an object',
      text: edited((l) => {
        l.plugins['kubecost-lens'] = '1.2.3';
      }),
      message: `${FILE}#${lens}: expected a locked plugin (an object), found "1.2.3"`,
    },
    {
      what: 'a plugin’s registry not in registries',
      text: edited((l) => {
        l.plugins['kubecost-lens'].registry = 'elsewhere';
      }),
      message: `${FILE}#${lens}/registry: expected a registry the lock lists under /registries, found "elsewhere", which it does not`,
    },
    {
      what: 'requested empty',
      text: edited((l) => {
        l.plugins['kubecost-lens'].requested = '';
      }),
      message: `${FILE}#${lens}/requested: expected the version requested (a version, a range, "latest" or a channel), found ""`,
    },
    {
      // Read as the spec an update resolves: it was refused there as REQUEST_INVALID, naming no file or pointer.
      what: 'requested no version, range or channel',
      text: edited((l) => {
        l.plugins['kubecost-lens'].requested = 'not a version!';
      }),
      message: `${FILE}#${lens}/requested: expected the version requested (a version, a range, "latest" or a channel), found "not a version!"`,
    },
    {
      what: 'a version that is not SemVer',
      text: edited((l) => {
        l.plugins['kubecost-lens'].version = '1.2';
      }),
      message: `${FILE}#${lens}/version: expected a SemVer version, as SemVer spells it (no "v"), found "1.2"`,
    },
    {
      what: 'a version whose folder is longer than any system’s install folder takes',
      text: edited((l) => {
        l.plugins['kubecost-lens'].version = `1.2.3-${'a'.repeat(130)}`;
      }),
      message: `${FILE}#${lens}/version: expected a SemVer version whose folder every system can hold (a segment longer than 128 characters), found "1.2.3-${'a'.repeat(34)}…"`,
    },
    {
      what: 'a manifest digest in upper case',
      text: edited((l) => {
        l.plugins['kubecost-lens'].manifest_sha256 = hex('A');
      }),
      message: `${FILE}#${lens}/manifest_sha256: expected a sha256 digest (64 lowercase hex digits), found "${hex('A')}"`,
    },
    {
      what: 'a publisher missing',
      text: edited((l) => delete l.plugins['kubecost-lens'].publisher),
      message: `${FILE}#${lens}/publisher: expected a key fingerprint (40 or 64 uppercase hex digits: an OpenPGP v4 or v6 key), found nothing (the field is missing)`,
    },
    {
      what: 'artifacts missing',
      text: edited((l) => delete l.plugins['kubecost-lens'].artifacts),
      message: `${FILE}#${lens}/artifacts: expected an object of artifact entries, found nothing (the field is missing)`,
    },
    {
      what: 'a platform that is not os-arch',
      text: edited((l) => {
        l.plugins['kubecost-lens'].artifacts['linux/amd64'] = { sha256: hex('1'), size: 1 };
      }),
      message: `${FILE}#${lens}/artifacts/linux~1amd64: expected a platform "os-arch" or "os-arch-libc" (e.g. "linux-amd64", "linux-amd64-musl"), found "linux/amd64"`,
    },
    {
      what: 'an artifact digest too short',
      text: edited((l) => {
        l.plugins['kubecost-lens'].artifacts['linux-amd64'].sha256 = 'abc';
      }),
      message: `${FILE}#${lens}/artifacts/linux-amd64/sha256: expected a sha256 digest (64 lowercase hex digits), found "abc"`,
    },
    {
      what: 'a negative size',
      text: edited((l) => {
        l.plugins['kubecost-lens'].artifacts['linux-amd64'].size = -1;
      }),
      message: `${FILE}#${lens}/artifacts/linux-amd64/size: expected a size in bytes (an integer >= 0), found the number -1`,
    },
    {
      what: 'a size as a string',
      text: edited((l) => {
        l.plugins['kubecost-lens'].artifacts['linux-amd64'].size = '1024';
      }),
      message: `${FILE}#${lens}/artifacts/linux-amd64/size: expected a size in bytes (an integer >= 0), found "1024"`,
    },
    {
      what: 'an unknown artifact field',
      text: edited((l) => {
        l.plugins['kubecost-lens'].artifacts['linux-amd64'].mirror = 'https://x.example';
      }),
      message: `${FILE}#${lens}/artifacts/linux-amd64/mirror: expected only the fields sha256, size, url, oci, found a field this version does not know`,
    },
  ];

  it.each(cases)('rejects $what (LOCKFILE_INVALID, naming the pointer)', ({ text, message }) => {
    const error = thrown(() => parseLockfile(text, FILE));
    expect(error.code).toBe('LOCKFILE_INVALID');
    expect(error.message).toContain(message);
  });

  it('reports every failing field, not just the first', () => {
    const text = edited((l) => {
      l.registries.corp.min_generation = -3;
      l.plugins['kubecost-lens'].version = 'one';
      l.plugins['kubecost-lens'].artifacts['darwin-arm64'] = { sha256: 7 };
    });
    expect(thrown(() => parseLockfile(text, FILE)).message.split('\n')).toEqual([
      `${FILE} has 4 problems:`,
      `  ${FILE}#/registries/corp/min_generation: expected a snapshot generation (an integer >= 0), found the number -3`,
      `  ${FILE}#${lens}/version: expected a SemVer version, as SemVer spells it (no "v"), found "one"`,
      `  ${FILE}#${lens}/artifacts/darwin-arm64/sha256: expected a sha256 digest (64 lowercase hex digits), found the number 7`,
      `  ${FILE}#${lens}/artifacts/darwin-arm64/size: expected a size in bytes (an integer >= 0), found nothing (the field is missing)`,
    ]);
  });

  it('refuses a plugin or registry listed twice (a merge left with both sides), naming each repeat', () => {
    const text = serializeLockfile(sample);
    const once = text.indexOf('    "kubecost-lens": {');
    const end = text.indexOf('\n    }', once) + '\n    }'.length;
    // The plugin's entry again, as a hand-resolved conflict leaves it: JSON.parse would keep the last.
    const twice = `${text.slice(0, end)},\n${text.slice(once, end)}${text.slice(end)}`;
    expect(JSON.parse(twice).plugins['kubecost-lens']).toBeDefined();

    const error = thrown(() => parseLockfile(twice, FILE));

    expect(error.code).toBe('LOCKFILE_INVALID');
    expect(error.message).toContain(`${FILE}#${lens}: expected each key once, found it again`);
  });

  it('says a lock left with a merge conflict holds one, at the line of its first marker', () => {
    // Two branches each moved the plugin: git leaves both sides between its markers.
    const text = serializeLockfile(sample);
    const start = text.indexOf('      "version": "1.2.3"');
    const end = text.indexOf('\n', start) + 1;
    const line = text.slice(0, start).split('\n').length;
    const conflicted = `${text.slice(0, start)}<<<<<<< HEAD\n${text.slice(start, end)}=======\n${text
      .slice(start, end)
      .replace('1.2.3', '1.3.0')}>>>>>>> feature/lens-1.3\n${text.slice(end)}`;

    const error = thrown(() => parseLockfile(conflicted, FILE));

    expect(error.code).toBe('LOCKFILE_INVALID');
    expect(error.message).toContain(
      `${FILE}#: expected a JSON document, found an unresolved merge conflict (line ${line}: "<<<<<<< HEAD")`,
    );
  });

  it('says to keep the higher min_generation when the conflict is in that line alone (diff3 style too)', () => {
    // Two branches each raised the registry's floor: git leaves both numbers between its markers.
    const text = serializeLockfile(sample);
    const start = text.indexOf('      "min_generation": ');
    const end = text.indexOf('\n', start) + 1;
    const ours = text.slice(start, end).replace(/\d+/, '120');
    const conflicted = (base: string) =>
      `${text.slice(0, start)}<<<<<<< HEAD\n${ours}${base}=======\n${ours.replace('120', '125')}>>>>>>> feature/add-tool\n${text.slice(end)}`;

    for (const text of [
      conflicted(''),
      conflicted(`||||||| merged common ancestors\n${ours.replace('120', '98')}`),
    ]) {
      const error = thrown(() => parseLockfile(text, FILE));
      expect(error.code).toBe('LOCKFILE_INVALID');
      expect(error.message).toContain('an unresolved merge conflict (line');
      expect(error.message).toContain(
        'the sides differ only in min_generation: keep the higher number (125), which holds what either side locked',
      );
    }
  });

  it('does not take a prototype property for a registry (a plugin locked to "constructor")', () => {
    const text = edited((l) => {
      l.plugins['kubecost-lens'].registry = 'constructor';
    });
    expect(() => parseLockfile(text, FILE)).toThrow(
      expect.objectContaining({
        code: 'LOCKFILE_INVALID',
        message: expect.stringContaining(`${lens}/registry`),
      }),
    );
  });
});

describe('when a lock entry is made from a version record', () => {
  it('keeps every platform the version has, keyed os-arch', () => {
    const record = versionRecord([
      artifact('windows', 'amd64', 'e', 30),
      artifact('linux', 'amd64', '1', 10),
      artifact('darwin', 'arm64', 'd', 20),
      artifact('linux', 'arm64', '2', 11),
    ]);
    expect(lockedPluginFrom('community', '^1.2.0', record)).toEqual({
      registry: 'community',
      requested: '^1.2.0',
      version: '1.2.3',
      manifest_sha256: hex('a'),
      publisher: PUBLISHER,
      artifacts: {
        'darwin-arm64': { sha256: hex('d'), size: 20, url: 'https://plugins.example.com/darwin-arm64' },
        'linux-amd64': { sha256: hex('1'), size: 10, url: 'https://plugins.example.com/linux-amd64' },
        'linux-arm64': { sha256: hex('2'), size: 11, url: 'https://plugins.example.com/linux-arm64' },
        'windows-amd64': { sha256: hex('e'), size: 30, url: 'https://plugins.example.com/windows-amd64' },
      },
    });
  });

  it('refuses a record with two artifacts for one platform (DOCUMENT_MALFORMED)', () => {
    const record = versionRecord([artifact('linux', 'amd64', '1', 10), artifact('linux', 'amd64', '2', 10)]);
    expect(() => lockedPluginFrom('community', 'latest', record)).toThrow(TrustError);
    expect(() => lockedPluginFrom('community', 'latest', record)).toThrow(
      expect.objectContaining({
        code: 'DOCUMENT_MALFORMED',
        message: expect.stringContaining('linux-amd64'),
      }),
    );
  });
});

describe('when a plugin is set in the lock', () => {
  it('adds it with its registry at the generation given', () => {
    const lock = withPlugin(EMPTY_LOCKFILE, 'kubecost-lens', plugin(), {
      key_fingerprint: KEY_A,
      generation: 41,
    });
    expect(lock).toEqual(
      lockOf({ 'kubecost-lens': plugin() }, { community: { key_fingerprint: KEY_A, min_generation: 41 } }),
    );
    expect(EMPTY_LOCKFILE.plugins).toEqual({});
  });

  it('returns the same object when the entry is deep-equal, even at a newer generation', () => {
    const again = withPlugin(sample, 'kubecost-lens', structuredClone(plugin()), {
      key_fingerprint: KEY_A,
      generation: 99,
    });
    expect(again).toBe(sample);
  });

  it('raises min_generation to the generation, never lowers it, under the same key', () => {
    const newer = withPlugin(sample, 'kubecost-lens', plugin({ version: '1.2.4' }), {
      key_fingerprint: KEY_A,
      generation: 50,
    });
    expect(newer.registries.community).toEqual({ key_fingerprint: KEY_A, min_generation: 50 });
    const older = withPlugin(sample, 'kubecost-lens', plugin({ version: '1.2.4' }), {
      key_fingerprint: KEY_A,
      generation: 3,
    });
    expect(older.registries.community).toEqual({ key_fingerprint: KEY_A, min_generation: 41 });
    expect(sample.registries.community?.min_generation).toBe(41);
    expect(sample.plugins['kubecost-lens']?.version).toBe('1.2.3');
  });

  it('raises min_generation for every entry added (the floor carries what its writer read to the others)', () => {
    const added = withPlugin(sample, 'new-plugin', plugin({ version: '0.3.0' }), {
      key_fingerprint: KEY_A,
      generation: 50,
    });
    expect(added.plugins['new-plugin']?.version).toBe('0.3.0');
    expect(added.registries.community).toEqual({ key_fingerprint: KEY_A, min_generation: 50 });
  });

  it('starts min_generation again at the generation under another key, and records the key', () => {
    const rotated = withPlugin(sample, 'kubecost-lens', plugin(), { key_fingerprint: KEY_B, generation: 3 });
    expect(rotated).not.toBe(sample);
    expect(rotated.registries.community).toEqual({ key_fingerprint: KEY_B, min_generation: 3 });
  });

  it('drops a registry the plugin was the last to use when it moves to another', () => {
    const moved = withPlugin(sample, 'aws-costs', plugin({ registry: 'community' }), {
      key_fingerprint: KEY_A,
      generation: 41,
    });
    expect(Object.keys(moved.registries)).toEqual(['community']);
  });
});

describe('when a plugin is removed from the lock', () => {
  it('drops it, and drops the registries no remaining plugin uses', () => {
    const lock = withoutPlugin(sample, 'aws-costs');
    expect(Object.keys(lock.plugins)).toEqual(['kubecost-lens']);
    expect(Object.keys(lock.registries)).toEqual(['community']);
    expect(withoutPlugin(lock, 'kubecost-lens')).toEqual(EMPTY_LOCKFILE);
  });

  it('keeps a registry another plugin still uses', () => {
    const two = withPlugin(sample, 'other-plugin', plugin(), { key_fingerprint: KEY_A, generation: 41 });
    expect(Object.keys(withoutPlugin(two, 'kubecost-lens').registries).sort()).toEqual(['community', 'corp']);
  });

  it('returns the same object when it is absent, even for a prototype property name', () => {
    expect(withoutPlugin(sample, 'not-there')).toBe(sample);
    expect(withoutPlugin(sample, 'constructor')).toBe(sample);
  });
});

describe('when two locks are compared', () => {
  it('finds nothing between equal locks built in different orders', () => {
    expect(lockChanges(sample, parseLockfile(serializeLockfile(sample), FILE))).toEqual([]);
  });

  it('lists added, removed and changed entries with details, sorted by entry', () => {
    let after = withoutPlugin(sample, 'aws-costs');
    after = withPlugin(
      after,
      'kubecost-lens',
      plugin({
        version: '1.2.4',
        manifest_sha256: hex('b'),
        artifacts: {
          'linux-amd64': { sha256: hex('2'), size: 1030 },
          'windows-amd64': { sha256: hex('e'), size: 4096 },
        },
      }),
      { key_fingerprint: KEY_A, generation: 45 },
    );
    after = withPlugin(after, 'new-plugin', plugin({ version: '0.3.0' }), {
      key_fingerprint: KEY_A,
      generation: 45,
    });
    expect(lockChanges(sample, after)).toEqual([
      {
        entry: 'plugins/aws-costs',
        change: 'removed',
        detail: '0.1.0 from corp (requested latest; darwin-arm64, linux-amd64)',
      },
      {
        entry: 'plugins/kubecost-lens',
        change: 'changed',
        detail: [
          'version 1.2.3 -> 1.2.4',
          'manifest_sha256 aaaaaaaaaaaa… -> bbbbbbbbbbbb…',
          'artifact darwin-arm64 removed',
          'artifact linux-amd64 sha256 111111111111… -> 222222222222…',
          'artifact linux-amd64 size 1024 -> 1030',
          'artifact windows-amd64 added (sha256 eeeeeeeeeeee…, 4096 bytes)',
        ].join('; '),
      },
      {
        entry: 'plugins/new-plugin',
        change: 'added',
        detail: '0.3.0 from community (requested ^1.2.0; darwin-arm64, linux-amd64)',
      },
      { entry: 'registries/community', change: 'changed', detail: 'min_generation 41 -> 45' },
      {
        entry: 'registries/corp',
        change: 'removed',
        detail: 'key_fingerprint BBBBBBBBBBBB…, min_generation 7',
      },
    ]);
  });

  it('names a changed publisher, registry, request and key', () => {
    const before = lockOf({ p1: plugin() }, { community: { key_fingerprint: KEY_A, min_generation: 1 } });
    const after = lockOf(
      { p1: plugin({ publisher: KEY_B, registry: 'corp', requested: '~1.2' }) },
      { corp: { key_fingerprint: KEY_B, min_generation: 1 } },
    );
    expect(lockChanges(before, after)).toEqual([
      {
        entry: 'plugins/p1',
        change: 'changed',
        detail:
          'registry community -> corp; requested ^1.2.0 -> ~1.2; publisher 0123456789AB… -> BBBBBBBBBBBB…',
      },
      {
        entry: 'registries/community',
        change: 'removed',
        detail: 'key_fingerprint AAAAAAAAAAAA…, min_generation 1',
      },
      {
        entry: 'registries/corp',
        change: 'added',
        detail: 'key_fingerprint BBBBBBBBBBBB…, min_generation 1',
      },
    ]);
    const rotated = lockOf({ p1: plugin() }, { community: { key_fingerprint: KEY_B, min_generation: 1 } });
    expect(lockChanges(before, rotated)).toEqual([
      {
        entry: 'registries/community',
        change: 'changed',
        detail: 'key_fingerprint AAAAAAAAAAAA… -> BBBBBBBBBBBB…',
      },
    ]);
  });
});

describe('when a lock records where artifacts are, their permissions and its set file', () => {
  const located = lockOf(
    {
      'kubecost-lens': plugin({
        artifacts: {
          'linux-amd64': { sha256: hex('1'), size: 1024, url: 'https://plugins.example.com/a' },
          'linux-arm64': {
            sha256: hex('2'),
            size: 11,
            oci: { reference: 'registry.example:5000/acme/lens:1.2.3', digest: `sha256:${hex('2')}` },
          },
        },
        permissions: ['filesystem_read', 'network_client'],
        manifest_url: 'https://plugins.example.com/plugins/kubecost-lens/1.2.3/manifest.json',
        resources: { max_memory_mb: 64, timeout_seconds: 30 },
      }),
    },
    { community: { key_fingerprint: KEY_A, min_generation: 41 } },
  );
  const withConfig: Lockfile = { ...located, config_sha256: hex('c') };

  it('reads back what it wrote, byte for byte', () => {
    const text = serializeLockfile(withConfig);
    expect(parseLockfile(text, FILE)).toEqual(withConfig);
    expect(serializeLockfile(parseLockfile(text, FILE))).toBe(text);
    expect(text).toContain(`"config_sha256": "${hex('c')}"`);
  });

  it('takes an oci artifact from the record and the url of any other from the locator', () => {
    const record = {
      ...versionRecord([
        artifact('linux', 'amd64', '1', 10),
        {
          ...artifact('linux', 'arm64', '2', 11),
          url: `oci://registry.example/acme/lens@sha256:${hex('2')}`,
          hosted: false,
          oci: { reference: 'registry.example/acme/lens:1.2.3', digest: `sha256:${hex('2')}` },
        },
      ]),
      permissions: ['network_client', 'filesystem_read'] as VersionRecord['permissions'],
    };
    const entry = lockedPluginFrom('community', 'latest', record, () => 'https://mirror.example/a');
    expect(entry.artifacts).toEqual({
      'linux-amd64': { sha256: hex('1'), size: 10, url: 'https://mirror.example/a' },
      'linux-arm64': {
        sha256: hex('2'),
        size: 11,
        oci: { reference: 'registry.example/acme/lens:1.2.3', digest: `sha256:${hex('2')}` },
      },
    });
    expect(entry.permissions).toEqual(['filesystem_read', 'network_client']);
  });

  it('rewrites the lock when only a location moved, but --locked does not count it as a change', () => {
    const entry = own(located.plugins, 'kubecost-lens');
    const moved = {
      ...entry,
      artifacts: {
        ...entry.artifacts,
        'linux-amd64': { sha256: hex('1'), size: 1024, url: 'https://elsewhere.example/a' },
      },
    };
    const after = withPlugin(located, 'kubecost-lens', moved, { key_fingerprint: KEY_A, generation: 41 });
    expect(after).not.toBe(located);
    expect(lockChanges(located, after)).toEqual([]);
  });

  it('names new permissions as a change', () => {
    const entry = own(located.plugins, 'kubecost-lens');
    const more = { ...entry, permissions: [...(entry.permissions ?? []), 'process_spawn'] };
    const after = withPlugin(located, 'kubecost-lens', more, { key_fingerprint: KEY_A, generation: 41 });
    expect(lockChanges(located, after)).toEqual([
      {
        entry: 'plugins/kubecost-lens',
        change: 'changed',
        detail: 'permissions filesystem_read,network_client -> filesystem_read,network_client,process_spawn',
      },
    ]);
  });

  it('refuses an oci digest that is not the artifact sha256, a bad url and a bad permission (LOCKFILE_INVALID)', () => {
    const text = serializeLockfile(located)
      .replace(`"digest": "sha256:${hex('2')}"`, `"digest": "sha256:${hex('3')}"`)
      .replace('"https://plugins.example.com/a"', '"not a url"')
      .replace('"https://plugins.example.com/plugins/kubecost-lens/1.2.3/manifest.json"', '"elsewhere"')
      .replace('"network_client"', '"Network Client"');
    const error = thrown(() => parseLockfile(text, FILE));
    expect(error.code).toBe('LOCKFILE_INVALID');
    expect(error.message).toContain('/artifacts/linux-arm64/oci/digest: expected "sha256:" followed by');
    expect(error.message).toContain('/artifacts/linux-amd64/url: expected an absolute URL');
    expect(error.message).toContain('/manifest_url: expected an absolute URL');
    expect(error.message).toContain('/permissions: expected a list of unique permission names');
  });

  it('refuses an oci reference that is not one, or that pins another digest, at its pointer (LOCKFILE_INVALID)', () => {
    for (const reference of [
      'acme/lens:1.2.3',
      'registry.example:5000/Acme/lens',
      `registry.example:5000/acme/lens@sha256:${hex('3')}`,
    ]) {
      const text = serializeLockfile(located).replace(
        '"registry.example:5000/acme/lens:1.2.3"',
        JSON.stringify(reference),
      );
      const error = thrown(() => parseLockfile(text, FILE));
      expect(error.code).toBe('LOCKFILE_INVALID');
      expect(error.message).toContain(
        `${FILE}#/plugins/kubecost-lens/artifacts/linux-arm64/oci/reference: expected an OCI reference`,
      );
    }
  });
});

function own<T>(record: Readonly<Record<string, T>>, key: string): T {
  const value = record[key];
  if (value === undefined) throw new Error(`no ${key}`);
  return value;
}
