/** The pure rules of lifecycle actions (index-builder/lifecycle.ts): what each action does to a document. */
import { describe, expect, it } from 'vitest';
import {
  actionDetail,
  actionSlot,
  applyAction,
  createdInstant,
  EMPTY_REVOKED_KEYS,
  type LifecycleOptions,
  type LifecycleResult,
  MAX_ADVISORIES,
  type PluginAction,
  parseActionOrder,
  parseRevokedKeys,
  prunedOrder,
  recomputed,
  revokeInDocument,
  supersedingAction,
  versionFiles,
  withRevokedKey,
  withSlotRecord,
} from '../../index-builder/lifecycle.ts';
import type { PluginDocument, VersionRecord } from '../../index-builder/model.ts';
import { mergePluginDocument } from '../../index-builder/pipeline/plugin-document.ts';
import { validManifest } from '../support/fixtures.ts';

const OWNER = 'A'.repeat(40);
const OTHER = 'B'.repeat(40);
const REGISTRY = ['E'.repeat(40), 'F'.repeat(40)];
const AT = '2026-11-01T00:00:00.000Z';
const URL = 'https://registry.example.com';

function record(version: string, publisher = OWNER): VersionRecord {
  const base = `${URL}/plugins/demo/${version}`;
  return {
    version,
    published: '2026-10-01T00:00:00.000Z',
    prerelease: version.includes('-'),
    yanked: false,
    deprecated: false,
    api_version: 'v1',
    manifest_url: `${base}/manifest.json`,
    manifest_signature_url: `${base}/manifest.json.asc`,
    manifest_sha256: '0'.repeat(64),
    manifest_size: 10,
    source_sha256: version.padEnd(64, '0').slice(0, 64),
    publisher,
    artifacts: [
      {
        os: 'linux',
        arch: 'amd64',
        url: `${base}/artifacts/linux-amd64/tool`,
        sha256: '1'.repeat(64),
        size_bytes: 1,
        hosted: true,
      },
      {
        os: 'darwin',
        arch: 'arm64',
        url: 'https://downloads.example.com/tool',
        sha256: '2'.repeat(64),
        size_bytes: 1,
        hosted: false,
      },
    ],
  };
}

function plugin(versions = ['2.0.0-beta.1', '1.1.0', '1.0.0'], owners = [OWNER]): PluginDocument {
  return recomputed({
    schema: 'plugindex/plugin/v1',
    name: 'demo',
    plugin_type: 'cost_source',
    latest_version: null,
    channels: {},
    capabilities: [],
    supported_providers: [],
    tags: [],
    owners,
    versions: versions.map((v) => record(v)),
  });
}

const options: LifecycleOptions = { at: AT, registryFingerprints: REGISTRY };

function applied(result: LifecycleResult): PluginDocument {
  if (!result.ok) throw new Error(`refused: ${result.problems.map((p) => p.code).join(', ')}`);
  return result.doc;
}
function problems(result: LifecycleResult): [string, string][] {
  if (result.ok) throw new Error('applied, not refused');
  return result.problems.map((p) => [p.code, p.path]);
}
const apply = (doc: PluginDocument, action: PluginAction, extra: Partial<LifecycleOptions> = {}) =>
  applyAction(doc, action, { ...options, ...extra });
const at = (doc: PluginDocument, v: string) => doc.versions.find((r) => r.version === v) as VersionRecord;

describe('yank and unyank', () => {
  it('yanks with a reason, recomputes latest and channels, and unyanks', () => {
    const yanked = applied(
      apply(plugin(), { action: 'yank', plugin: 'demo', version: '1.1.0', reason: 'bad' }),
    );
    expect(at(yanked, '1.1.0')).toMatchObject({ yanked: true, yanked_reason: 'bad' });
    expect(yanked.latest_version).toBe('1.0.0');
    const beta = applied(apply(yanked, { action: 'yank', plugin: 'demo', version: '2.0.0-beta.1' }));
    expect(beta.channels).toEqual({});
    const back = applied(apply(yanked, { action: 'unyank', plugin: 'demo', version: '1.1.0' }));
    expect(at(back, '1.1.0').yanked).toBe(false);
    expect(at(back, '1.1.0')).not.toHaveProperty('yanked_reason');
    expect(back).toEqual(plugin());
  });

  it('finds a version by its identity (build metadata and letter case aside)', () => {
    const doc = plugin(['1.0.0-rc.1']);
    expect(
      at(applied(apply(doc, { action: 'yank', plugin: 'demo', version: '1.0.0-RC.1+b7' })), '1.0.0-rc.1')
        .yanked,
    ).toBe(true);
  });

  it.each([
    [{ action: 'yank', plugin: 'demo', version: '3.0.0' }, 'ACTION_UNKNOWN_VERSION'],
    [{ action: 'unyank', plugin: 'demo', version: '1.0.0' }, 'ACTION_NO_EFFECT'],
  ] as const)('refuses %j with %s at /version', (action, code) => {
    expect(problems(apply(plugin(), action))).toEqual([[code, '/version']]);
  });

  it('refuses to yank a yanked version (no effect)', () => {
    const yanked = applied(apply(plugin(), { action: 'yank', plugin: 'demo', version: '1.0.0' }));
    expect(
      problems(apply(yanked, { action: 'yank', plugin: 'demo', version: '1.0.0', reason: 'other' })),
    ).toEqual([['ACTION_NO_EFFECT', '/version']]);
  });
});

describe('deprecate and undeprecate', () => {
  it('deprecates the versions a range matches, prereleases included, with message and replacement', () => {
    const doc = applied(
      apply(plugin(), {
        action: 'deprecate',
        plugin: 'demo',
        range: '>=1.1.0',
        message: 'm',
        replacement: 'next',
      }),
    );
    expect(
      doc.versions.map((v) => [v.version, v.deprecated, v.deprecation_message, v.deprecation_replacement]),
    ).toEqual([
      ['2.0.0-beta.1', true, 'm', 'next'],
      ['1.1.0', true, 'm', 'next'],
      ['1.0.0', false, undefined, undefined],
    ]);
    expect(doc).not.toHaveProperty('deprecation');
    // The same again changes nothing; another message does.
    expect(
      problems(
        apply(doc, {
          action: 'deprecate',
          plugin: 'demo',
          range: '>=1.1.0',
          message: 'm',
          replacement: 'next',
        }),
      ),
    ).toEqual([['ACTION_NO_EFFECT', '/range']]);
    const reworded = applied(
      apply(doc, { action: 'deprecate', plugin: 'demo', range: '>=1.1.0', message: 'n' }),
    );
    expect(at(reworded, '1.1.0')).toMatchObject({ deprecation_message: 'n' });
    expect(at(reworded, '1.1.0')).not.toHaveProperty('deprecation_replacement');
    expect(problems(apply(doc, { action: 'deprecate', plugin: 'demo', range: '>5', message: 'm' }))).toEqual([
      ['ACTION_UNKNOWN_VERSION', '/range'],
    ]);
  });

  it('deprecates the plugin itself without a range, and versions merged later with it', () => {
    const doc = applied(
      apply(plugin(), { action: 'deprecate', plugin: 'demo', message: 'gone', replacement: 'next' }),
    );
    expect(doc.deprecation).toEqual({ message: 'gone', replacement: 'next', at: AT });
    expect(doc.versions.every((v) => v.deprecated && v.deprecation_message === 'gone')).toBe(true);
    expect(
      problems(apply(doc, { action: 'deprecate', plugin: 'demo', message: 'gone', replacement: 'next' })),
    ).toEqual([['ACTION_NO_EFFECT', '']]);
    const manifest = validManifest({ name: 'demo', version: '3.0.0' }) as never;
    const merged = mergePluginDocument(doc, [{ record: record('3.0.0'), manifest }], 'first-come');
    expect(at(merged, '3.0.0')).toMatchObject({
      deprecated: true,
      deprecation_message: 'gone',
      deprecation_replacement: 'next',
    });
    expect(merged.deprecation).toEqual(doc.deprecation);
    expect(merged.owners).toEqual([OWNER]);
  });

  it('undeprecates a range or the whole plugin, and refuses when nothing is deprecated', () => {
    const doc = applied(apply(plugin(), { action: 'deprecate', plugin: 'demo', message: 'gone' }));
    const ranged = applied(apply(doc, { action: 'undeprecate', plugin: 'demo', range: '1.0.0' }));
    expect(at(ranged, '1.0.0')).toMatchObject({ deprecated: false });
    expect(at(ranged, '1.0.0')).not.toHaveProperty('deprecation_message');
    expect(ranged.deprecation).toBeDefined();
    const whole = applied(apply(ranged, { action: 'undeprecate', plugin: 'demo' }));
    expect(whole).toEqual(plugin());
    expect(problems(apply(whole, { action: 'undeprecate', plugin: 'demo' }))).toEqual([
      ['ACTION_NO_EFFECT', ''],
    ]);
    expect(problems(apply(whole, { action: 'undeprecate', plugin: 'demo', range: '9' }))).toEqual([
      ['ACTION_UNKNOWN_VERSION', '/range'],
    ]);
  });
});

describe('advisories', () => {
  const advisory = { id: 'PDX-1', severity: 'critical', affected: '<1.1.0', summary: 's' } as const;

  it('adds, refuses a live id, withdraws (kept), refuses to withdraw twice or an unknown id, and re-adds', () => {
    const doc = applied(apply(plugin(), { action: 'advisory-add', plugin: 'demo', advisory }));
    expect(doc.advisories).toEqual([{ ...advisory, published: AT }]);
    expect(problems(apply(doc, { action: 'advisory-add', plugin: 'demo', advisory }))).toEqual([
      ['ADVISORY_EXISTS', '/advisory/id'],
    ]);
    const withdrawn = applied(
      apply(doc, { action: 'advisory-withdraw', plugin: 'demo', id: 'PDX-1', reason: 'r' }),
    );
    expect(withdrawn.advisories).toEqual([
      { ...advisory, published: AT, withdrawn: { at: AT, reason: 'r' } },
    ]);
    expect(problems(apply(withdrawn, { action: 'advisory-withdraw', plugin: 'demo', id: 'PDX-1' }))).toEqual([
      ['ACTION_NO_EFFECT', '/id'],
    ]);
    expect(problems(apply(withdrawn, { action: 'advisory-withdraw', plugin: 'demo', id: 'PDX-2' }))).toEqual([
      ['ADVISORY_UNKNOWN', '/id'],
    ]);
    const again = applied(
      apply(withdrawn, {
        action: 'advisory-add',
        plugin: 'demo',
        advisory: { ...advisory, severity: 'low' },
      }),
    );
    expect(again.advisories).toEqual([{ ...advisory, severity: 'low', published: AT }]);
  });

  it('refuses an advisory past the most a plugin may hold (ADVISORY_LIMIT), and still takes one published again by its id', () => {
    const advisories = Array.from({ length: MAX_ADVISORIES }, (_, i) => ({
      ...advisory,
      id: `PDX-${i}`,
      published: AT,
      ...(i === 0 ? { withdrawn: { at: AT } } : {}),
    }));
    const full = { ...plugin(), advisories };
    const more = {
      action: 'advisory-add',
      plugin: 'demo',
      advisory: { ...advisory, id: 'PDX-NEW' },
    } as const;
    expect(problems(apply(full, more))).toEqual([['ADVISORY_LIMIT', '/advisory']]);
    const again = applied(
      apply(full, { action: 'advisory-add', plugin: 'demo', advisory: { ...advisory, id: 'PDX-0' } }),
    );
    expect(again.advisories).toHaveLength(MAX_ADVISORIES);
    expect(again.advisories?.[0]).toEqual({ ...advisory, id: 'PDX-0', published: AT });
  });

  it('applies an advisory the log holds already past the most a plugin may hold (the bound is for new ones)', () => {
    const advisories = Array.from({ length: MAX_ADVISORIES }, (_, i) => ({
      ...advisory,
      id: `PDX-${i}`,
      published: AT,
    }));
    const more = {
      action: 'advisory-add',
      plugin: 'demo',
      advisory: { ...advisory, id: 'PDX-NEW' },
    } as const;
    const logged = applied(apply({ ...plugin(), advisories }, more, { logged: true }));
    expect(logged.advisories).toHaveLength(MAX_ADVISORIES + 1);
    expect(logged.advisories?.at(-1)).toEqual({ ...advisory, id: 'PDX-NEW', published: AT });
  });
});

describe('owners', () => {
  const key = (fingerprint: string) => ({ key: { fingerprint, fingerprints: [fingerprint] } });
  const add = { action: 'owners-add', plugin: 'demo', key: 'armored' } as const;

  it('adds the key the action names, and refuses an owner twice, the registry key and a revoked key', () => {
    const doc = applied(apply(plugin(), add, key(OTHER)));
    expect(doc.owners).toEqual([OWNER, OTHER]);
    expect(problems(apply(doc, add, key(OTHER)))).toEqual([['ACTION_NO_EFFECT', '/key']]);
    expect(
      problems(
        apply(doc, add, {
          key: { fingerprint: 'C'.repeat(40), fingerprints: ['C'.repeat(40), REGISTRY[1] as string] },
        }),
      ),
    ).toEqual([['PUBLISHER_IS_REGISTRY_KEY', '/key']]);
    expect(
      problems(apply(doc, add, { ...key('D'.repeat(40)), isRevoked: (fp) => fp === 'D'.repeat(40) })),
    ).toEqual([['ACTION_KEY_REVOKED', '/key']]);
  });

  it('removes an owner, but never the last, and a fingerprint that owns nothing is no effect', () => {
    const two = plugin(undefined, [OWNER, OTHER]);
    const one = applied(apply(two, { action: 'owners-remove', plugin: 'demo', fingerprint: OWNER }));
    expect(one.owners).toEqual([OTHER]);
    expect(problems(apply(one, { action: 'owners-remove', plugin: 'demo', fingerprint: OTHER }))).toEqual([
      ['ACTION_LAST_OWNER', '/fingerprint'],
    ]);
    expect(problems(apply(one, { action: 'owners-remove', plugin: 'demo', fingerprint: OWNER }))).toEqual([
      ['ACTION_NO_EFFECT', '/fingerprint'],
    ]);
  });

  it('transfers: the named key becomes the only owner', () => {
    const doc = applied(
      apply(
        plugin(undefined, [OWNER, OTHER]),
        { action: 'transfer', plugin: 'demo', key: 'k' },
        key('C'.repeat(40)),
      ),
    );
    expect(doc.owners).toEqual(['C'.repeat(40)]);
    expect(
      problems(apply(doc, { action: 'transfer', plugin: 'demo', key: 'k' }, key('C'.repeat(40)))),
    ).toEqual([['ACTION_NO_EFFECT', '/key']]);
  });
});

describe('remove', () => {
  it('keeps the record, removed and yanked, never latest; refuses twice; names the files to delete', () => {
    const doc = applied(
      apply(plugin(), { action: 'remove', plugin: 'demo', version: '1.1.0', reason: 'legal' }),
    );
    expect(at(doc, '1.1.0')).toMatchObject({ yanked: true, removed: { reason: 'legal', at: AT } });
    expect(doc.latest_version).toBe('1.0.0');
    expect(
      problems(apply(doc, { action: 'remove', plugin: 'demo', version: '1.1.0', reason: 'again' })),
    ).toEqual([['ACTION_NO_EFFECT', '/version']]);
    expect(problems(apply(doc, { action: 'unyank', plugin: 'demo', version: '1.1.0' }))).toEqual([
      ['VERSION_REMOVED', '/version'],
    ]);
    expect(problems(apply(doc, { action: 'yank', plugin: 'demo', version: '1.1.0' }))).toEqual([
      ['VERSION_REMOVED', '/version'],
    ]);
    // A removed version is out of a deprecation's reach.
    const deprecated = applied(apply(doc, { action: 'deprecate', plugin: 'demo', message: 'm' }));
    expect(at(deprecated, '1.1.0').deprecated).toBe(false);
    expect(versionFiles('demo', at(doc, '1.1.0'))).toEqual([
      'plugins/demo/1.1.0/manifest.json',
      'plugins/demo/1.1.0/manifest.json.asc',
      'plugins/demo/1.1.0/artifacts/linux-amd64/tool',
    ]);
  });
});

describe('a revoked key', () => {
  it('marks every version it published, once', () => {
    const doc = recomputed({ ...plugin(), versions: [record('1.1.0', OTHER), record('1.0.0', OWNER)] });
    const marked = revokeInDocument(doc, OWNER, { at: AT, reason: 'leaked' }) as PluginDocument;
    expect(at(marked, '1.0.0').publisher_revoked).toEqual({ at: AT, reason: 'leaked' });
    expect(at(marked, '1.1.0')).not.toHaveProperty('publisher_revoked');
    expect(revokeInDocument(marked, OWNER, { at: AT })).toBeUndefined();
    expect(revokeInDocument(doc, 'C'.repeat(40), { at: AT })).toBeUndefined();
  });

  it('is listed once, never the registry key, and the list reads back', () => {
    const entry = { fingerprint: OWNER, revoked: AT, reason: 'leaked', action: 'd'.repeat(64) };
    const listed = withRevokedKey(EMPTY_REVOKED_KEYS, entry, REGISTRY);
    if (!listed.ok) throw new Error('refused');
    expect(parseRevokedKeys(JSON.stringify(listed.list))).toEqual({
      schema: 'plugindex/revoked-keys/v1',
      keys: [entry],
    });
    const twice = withRevokedKey(listed.list, entry, REGISTRY);
    expect(twice.ok ? [] : twice.problems.map((p) => p.code)).toEqual(['ACTION_NO_EFFECT']);
    const own = withRevokedKey(
      EMPTY_REVOKED_KEYS,
      { ...entry, fingerprint: REGISTRY[0] as string },
      REGISTRY,
    );
    expect(own.ok ? [] : own.problems.map((p) => p.code)).toEqual(['PUBLISHER_IS_REGISTRY_KEY']);
    expect(() => parseRevokedKeys('{"schema":"other"}')).toThrow(/revoked-keys/);
  });
});

describe('the words a log entry keeps', () => {
  it.each([
    [{ action: 'yank', plugin: 'p', version: '1.0.0', reason: 'r' }, { reason: 'r' }],
    [{ action: 'unyank', plugin: 'p', version: '1.0.0' }, {}],
    [
      { action: 'deprecate', plugin: 'p', message: 'm', replacement: 'q', range: '<2' },
      { message: 'm', replacement: 'q', range: '<2' },
    ],
    [{ action: 'advisory-withdraw', plugin: 'p', id: 'X-1' }, { id: 'X-1' }],
    [{ action: 'owners-remove', plugin: 'p', fingerprint: OWNER }, { removed: OWNER }],
    [
      { action: 'revoke-key', fingerprint: OWNER, reason: 'r' },
      { fingerprint: OWNER, reason: 'r' },
    ],
  ] as const)('%j -> %j', (action, detail) => {
    expect(actionDetail(action)).toEqual(detail);
  });

  it('names the key an owners-add adds', () => {
    expect(
      actionDetail(
        { action: 'owners-add', plugin: 'p', key: 'k' },
        { fingerprint: OTHER, fingerprints: [OTHER] },
      ),
    ).toEqual({
      added: OTHER,
    });
  });
});

describe('the order of signed statements', () => {
  const at = (created: string, digest = 'd'.repeat(64)) => ({ created, digest });

  it('gives each action the state it sets, none to a removal', () => {
    const key = { fingerprint: OTHER, fingerprints: [OTHER] };
    expect(actionSlot({ action: 'yank', plugin: 'demo', version: '1.0.0+Build' })).toBe('yank/1.0.0');
    expect(actionSlot({ action: 'unyank', plugin: 'demo', version: '1.0.0' })).toBe('yank/1.0.0');
    expect(actionSlot({ action: 'deprecate', plugin: 'demo', range: '<2', message: 'm' })).toBe(
      'deprecation',
    );
    expect(actionSlot({ action: 'undeprecate', plugin: 'demo' })).toBe('deprecation');
    expect(actionSlot({ action: 'advisory-withdraw', plugin: 'demo', id: 'PDX-1' })).toBe('advisory/PDX-1');
    expect(actionSlot({ action: 'owners-add', plugin: 'demo', key: 'k' }, key)).toBe(`owners/${OTHER}`);
    expect(actionSlot({ action: 'owners-remove', plugin: 'demo', fingerprint: OWNER })).toBe(
      `owners/${OWNER}`,
    );
    expect(actionSlot({ action: 'transfer', plugin: 'demo', key: 'k' }, key)).toBe('owners');
    expect(actionSlot({ action: 'remove', plugin: 'demo', version: '1.0.0', reason: 'r' })).toBeUndefined();
  });

  it('counts time to the nanosecond, whatever the offset', () => {
    expect(createdInstant('2026-11-01T00:00:00.0000001Z')).toBeGreaterThan(
      createdInstant('2026-11-01T00:00:00.0000000Z'),
    );
    expect(createdInstant('2026-11-01T01:00:00.5+01:00')).toBe(createdInstant('2026-11-01T00:00:00.500Z'));
  });

  it('names a later action on the slot, within it or around it; never one made at the same time', () => {
    let order = withSlotRecord({}, 'owners', at('2026-11-01T00:00:02Z'));
    order = withSlotRecord(order, 'yank/1.0.0', at('2026-11-01T00:00:05Z'));
    expect(supersedingAction(order, `owners/${OWNER}`, '2026-11-01T00:00:01Z')).toMatchObject({
      slot: 'owners',
    });
    expect(supersedingAction(order, 'owners', '2026-11-01T00:00:02Z')).toBeUndefined();
    expect(supersedingAction(order, 'owners', '2026-11-01T00:00:03Z')).toBeUndefined();
    expect(supersedingAction(order, 'yank/1.0.1', '2026-11-01T00:00:01Z')).toBeUndefined();
    // A record is replaced by one made as late or later, never by an older one.
    expect(withSlotRecord(order, 'owners', at('2026-11-01T00:00:01Z'))).toBe(order);
    expect(withSlotRecord(order, 'owners', at('2026-11-01T00:00:02Z', 'e'.repeat(64))).owners?.digest).toBe(
      'e'.repeat(64),
    );
  });

  it('drops records older than any action taken, and reads only its own document', () => {
    const order = { b: at('2026-11-01T00:00:00Z'), a: at('2026-10-01T00:00:00Z') };
    expect(prunedOrder(order, new Date('2026-10-15T00:00:00Z'))).toEqual({ b: order.b });
    const text = JSON.stringify({ schema: 'plugindex/action-order/v1', plugin: 'demo', slots: order });
    expect(parseActionOrder(text, 'demo')).toEqual(order);
    expect(() => parseActionOrder(text, 'other')).toThrow(/action order of other/);
    expect(() =>
      parseActionOrder('{"schema":"plugindex/action-order/v1","plugin":"demo","slots":{"a":{}}}', 'demo'),
    ).toThrow();
  });
});
