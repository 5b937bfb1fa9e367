/**
 * Registry key rotation on the publisher's side (pipeline/rotate.ts): the rotation published and logged,
 * everything signed again by the new key (checked by openpgp.js and by GnuPG, which must also no longer
 * accept the old key's signatures), every refusal with its code and nothing written, and a rotation that
 * fails at any write step finished by running it again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PlugindexError, type Problem, SubmissionError } from '../../../index-builder/errors.ts';
import {
  manifestKey,
  pluginDocumentKey,
  SIGNED_SNAPSHOT_KEY,
  signatureKey,
} from '../../../index-builder/layout.ts';
import { EMPTY_LOG, logSegmentKey, parseSegment } from '../../../index-builder/log.ts';
import type { LogHead, PluginDocument, SnapshotDocument } from '../../../index-builder/model.ts';
import {
  type PipelineContext,
  processSubmissions,
  rebuildRegistry,
} from '../../../index-builder/pipeline/index.ts';
import { LOG_STATE_KEY } from '../../../index-builder/pipeline/log-writer.ts';
import { checkRotation, rotateRegistryKey } from '../../../index-builder/pipeline/rotate.ts';
import {
  readSignedRotation,
  rotationKey,
  SIGNED_ROTATION_SCHEMA,
  signRotation,
} from '../../../index-builder/rotation.ts';
import {
  createSigner,
  readPublicKey,
  type Signer,
  verifyDetachedSignature,
} from '../../../index-builder/signing.ts';
import { CACHE_IMMUTABLE, CACHE_MUTABLE, type PutOptions } from '../../../index-builder/store.ts';
import { openSignedSnapshot, verifySnapshot } from '../../../index-builder/verify.ts';
import { submitAction } from '../../support/actions.ts';
import {
  encode,
  makeBundle,
  makeRegistry,
  type TestRegistry,
  testKey,
  validManifest,
} from '../../support/fixtures.ts';
import { type GpgKeyring, gpgKeyring } from '../../support/gpg.ts';

import type { MemoryStore } from '../../support/memory-store.ts';
import { withMethod } from '../../support/stores.ts';
import { UNTRUSTED_KEYS } from '../../support/untrusted-keys.ts';

const NOW = new Date('2026-11-02T00:00:00Z');
/** When a client checks the snapshot: within its lifetime (the test registries' clock starts 2026-11-01). */
const CLIENT_NOW = new Date('2026-11-02T00:00:00Z');
const text = (store: MemoryStore, key: string): string =>
  new TextDecoder().decode(store.objects.get(key)?.body);
const json = <T>(store: MemoryStore, key: string): T => JSON.parse(text(store, key)) as T;

let newSigner: Signer;
let thirdSigner: Signer;
let strangerSigner: Signer;

beforeAll(async () => {
  newSigner = await createSigner((await testKey('registry-2')).secretKey);
  thirdSigner = await createSigner((await testKey('registry-3')).secretKey);
  strangerSigner = await createSigner((await testKey('stranger')).secretKey);
});

/** A registry with two plugins, three versions in all. */
async function publishedRegistry(): Promise<TestRegistry> {
  const registry = await makeRegistry();
  const bundles = await Promise.all(
    [
      ['demo-plugin', '1.0.0'],
      ['demo-plugin', '1.1.0'],
      ['other-plugin', '2.0.0'],
    ].map(([name, version]) =>
      makeBundle({
        manifest: baseManifest(name as string, version as string),
        artifacts: [{ os: 'linux', arch: 'amd64', name: 'tool', body: encode(`${name} ${version}`) }],
      }),
    ),
  );
  const result = await processSubmissions(registry.context, await registry.submit(...bundles));
  expect(result.outcomes.map((o) => o.status)).toEqual(['accepted', 'accepted', 'accepted']);
  return registry;
}

/** A valid manifest of `name` at `version`, its display name its name. */
function baseManifest(name: string, version: string): Record<string, unknown> {
  return validManifest({
    name,
    display_name: name,
    description: 'A plugin whose registry rotates its key',
    version,
  });
}

/** What both of the registry's stores hold, by fingerprint: a refusal leaves them as they were. */
const storesOf = (registry: TestRegistry): Map<string, string>[] => [
  registry.site.fingerprint(),
  registry.intake.fingerprint(),
];

async function rotation(
  registry: TestRegistry,
  options: { sequence?: number; previous?: Signer; next?: Signer; url?: string } = {},
): Promise<Uint8Array> {
  const signed = await signRotation({
    registry: options.url ?? registry.context.config.url,
    sequence: options.sequence ?? 1,
    previous: options.previous ?? registry.signer,
    next: options.next ?? newSigner,
    now: NOW,
  });
  return signed.bytes;
}

/**
 * The problems `rotateRegistryKey` refuses `bytes` with in `ctx` (a SubmissionError), held to have written
 * nothing to `registry`'s stores.
 */
async function refusedRotation(
  registry: TestRegistry,
  ctx: PipelineContext,
  bytes: Uint8Array,
): Promise<readonly Problem[]> {
  const before = storesOf(registry);
  const error = await rotateRegistryKey(ctx, bytes).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(SubmissionError);
  expect(storesOf(registry)).toEqual(before);
  return (error as SubmissionError).problems;
}

/** Every manifest and plugin document of the site, with its signature. */
function signedFiles(site: MemoryStore): { key: string; body: Uint8Array; signature: string }[] {
  return [...site.objects.keys()]
    .filter((k) => /^plugins\/[^/]+\/(index\.json|[^/]+\/manifest\.json)$/.test(k))
    .map((key) => ({
      key,
      body: site.objects.get(key)?.body as Uint8Array,
      signature: text(site, `${key}.asc`),
    }));
}

function logEntries(registry: TestRegistry) {
  const head = registry.intake.objects.has(LOG_STATE_KEY)
    ? json<LogHead>(registry.intake, LOG_STATE_KEY)
    : EMPTY_LOG;
  const segment = registry.site.objects.get(logSegmentKey(0));
  return { head, entries: segment ? parseSegment(segment.body, 0).slice(0, head.length) : [] };
}

/** GnuPG keyrings of the old registry key and the new, for the tests of the describe that calls it. */
function keyringsOfBothKeys(): { readonly old: GpgKeyring; readonly new: GpgKeyring } {
  const keyrings = {} as { old: GpgKeyring; new: GpgKeyring };
  beforeAll(async () => {
    keyrings.old = gpgKeyring((await testKey('registry')).publicKey);
    keyrings.new = gpgKeyring((await testKey('registry-2')).publicKey);
  });
  afterAll(() => {
    keyrings.old.close();
    keyrings.new.close();
  });
  return keyrings;
}

describe('when a registry rotates its key', () => {
  const keyrings = keyringsOfBothKeys();

  it('publishes the rotation, logs it, and signs everything again with the new key only', async () => {
    const registry = await publishedRegistry();
    const bytes = await rotation(registry);
    const read = readSignedRotation(bytes);
    const result = await rotateRegistryKey({ ...registry.context, signer: newSigner }, bytes);
    expect(result).toMatchObject({
      status: 'rotated',
      sequence: 1,
      previous: registry.signer.fingerprint,
      fingerprint: newSigner.fingerprint,
      plugins: 2,
      manifests: 3,
    });
    const site = registry.site;
    expect(site.objects.get(rotationKey(1))?.body).toEqual(bytes);
    expect(site.objects.get(rotationKey(1))?.cacheControl).toBe(CACHE_IMMUTABLE);
    expect(text(site, 'keys/registry.asc')).toBe(newSigner.publicKey);

    // The snapshot: the new key's, counting one rotation, vouching for the log with its rotate-key entry.
    const snapshot = json<SnapshotDocument>(site, 'snapshot.json');
    expect(snapshot).toMatchObject({ key_fingerprint: newSigner.fingerprint, key_rotations: 1 });
    const newKey = (await readPublicKey(newSigner.publicKey)).key;
    await verifySnapshot({
      snapshot: site.objects.get('snapshot.json')?.body as Uint8Array,
      signature: text(site, 'snapshot.json.asc'),
      key: newKey,
      now: CLIENT_NOW,
    });
    const { head, entries } = logEntries(registry);
    expect(snapshot.log).toEqual(head);
    expect(entries.at(-1)?.entry).toMatchObject({
      type: 'rotate-key',
      signer: registry.signer.fingerprint,
      digest: read.digest,
      detail: { fingerprint: newSigner.fingerprint, sequence: '1' },
    });

    // Every manifest and plugin document: GnuPG accepts the new key's signature, and the old key's no more.
    const files = signedFiles(site);
    expect(files).toHaveLength(5);
    for (const file of files) {
      expect(keyrings.new.verify(file.body, file.signature), file.key).toContain(
        `VALIDSIG ${newSigner.fingerprints.at(0)}`,
      );
      expect(keyrings.old.status(file.body, file.signature), file.key).not.toMatch(/GOODSIG|VALIDSIG/);
    }
    for (const key of ['snapshot.json', 'index.json', 'search.json', 'snapshot/bins/00.json']) {
      if (!site.objects.has(key)) continue;
      expect(
        keyrings.new.verify(site.objects.get(key)?.body as Uint8Array, text(site, `${key}.asc`)),
      ).toContain('VALIDSIG');
    }
    // The signature an install reads from the plugin document is the one gpg users fetch.
    for (const name of ['demo-plugin', 'other-plugin']) {
      const doc = json<PluginDocument>(site, `plugins/${name}/index.json`);
      for (const v of doc.versions)
        expect(v.manifest_signature).toBe(text(site, `plugins/${name}/${v.version}/manifest.json.asc`));
    }
    // Each rewritten signature is served as mutable (briefly cached): a CDN holding the retired key's (an
    // invalidation that failed) lets it go within minutes, where the year a version's files get kept it.
    for (const file of files)
      if (file.key.endsWith('/manifest.json'))
        expect(site.objects.get(`${file.key}.asc`)?.cacheControl, file.key).toBe(CACHE_MUTABLE);
    // A CDN is told of the rewritten signatures all the same, and of the rotation.
    expect(result.invalidate).toEqual(
      expect.arrayContaining([
        'plugins/demo-plugin/1.0.0/manifest.json.asc',
        'plugins/other-plugin/2.0.0/manifest.json.asc',
        'plugins/demo-plugin/index.json',
        'snapshot.json',
        'keys/registry.asc',
        rotationKey(1),
        logSegmentKey(0),
      ]),
    );
  });

  it('rotates again from the new key, and a repeated request changes nothing', async () => {
    const registry = await publishedRegistry();
    const first = await rotation(registry);
    await rotateRegistryKey({ ...registry.context, signer: newSigner }, first);
    const second = await rotation(registry, { sequence: 2, previous: newSigner, next: thirdSigner });
    const result = await rotateRegistryKey({ ...registry.context, signer: thirdSigner }, second);
    expect(result).toMatchObject({ status: 'rotated', sequence: 2, fingerprint: thirdSigner.fingerprint });
    expect(json<SnapshotDocument>(registry.site, 'snapshot.json')).toMatchObject({
      key_fingerprint: thirdSigner.fingerprint,
      key_rotations: 2,
    });

    const before = storesOf(registry);
    const again = await rotateRegistryKey({ ...registry.context, signer: thirdSigner }, second);
    expect(again).toMatchObject({ status: 'already-rotated', sequence: 2, invalidate: [] });
    expect(storesOf(registry)).toEqual(before);
    expect(logEntries(registry).entries.filter((e) => e.entry.type === 'rotate-key')).toHaveLength(2);
  });
});

describe('when a key the registry rotated away from signs an upload', () => {
  it('refuses it as the registry key, as a bundle and as an action, after two rotations', async () => {
    const registry = await publishedRegistry();
    await rotateRegistryKey({ ...registry.context, signer: newSigner }, await rotation(registry));
    const second = await rotation(registry, { sequence: 2, previous: newSigner, next: thirdSigner });
    await rotateRegistryKey({ ...registry.context, signer: thirdSigner }, second);
    const now = { ...registry.context, signer: thirdSigner };

    const bundle = await makeBundle({
      manifest: baseManifest('fresh-plugin', '1.0.0'),
      artifacts: [{ os: 'linux', arch: 'amd64', name: 'tool', body: encode('fresh') }],
      signer: registry.registryKey,
    });
    const yank = await submitAction(
      registry.intake,
      { action: 'yank', plugin: 'demo-plugin', version: '1.0.0' },
      await testKey('registry-2'),
    );
    const before = registry.site.fingerprint();
    const { outcomes } = await processSubmissions(now, [...(await registry.submit(bundle)), yank.key]);
    expect(outcomes.map((o) => [o.status, o.problems.map((p) => p.code)])).toEqual([
      ['rejected', ['PUBLISHER_IS_REGISTRY_KEY']],
      ['rejected', ['PUBLISHER_IS_REGISTRY_KEY']],
    ]);
    expect(registry.site.fingerprint()).toEqual(before);
  });
});

describe('when a rotation cannot be accepted', () => {
  const forged = async (registry: TestRegistry, signatures: [Signer, Signer]) => {
    const honest = readSignedRotation(await rotation(registry));
    return encode(
      JSON.stringify({
        schema: SIGNED_ROTATION_SCHEMA,
        rotation: new TextDecoder().decode(honest.text),
        signatures: await Promise.all(signatures.map((s) => s.sign(honest.text))),
      }),
    );
  };

  it.each<[string, (r: TestRegistry) => Promise<Uint8Array>, string, string, Signer?]>([
    ['not a rotation at all', async () => encode('{"schema":"x"}'), 'ROTATION_INVALID', ''],
    [
      'signed by the old key only',
      (r) => forged(r, [r.signer, strangerSigner]),
      'ROTATION_INVALID',
      '/signatures',
    ],
    [
      'signed by the new key only',
      (r) => forged(r, [strangerSigner, newSigner]),
      'ROTATION_INVALID',
      '/signatures',
    ],
    ['a skipped sequence', (r) => rotation(r, { sequence: 2 }), 'ROTATION_INVALID', '/rotation/sequence'],
    [
      'another registry',
      (r) => rotation(r, { url: 'https://elsewhere.example.com' }),
      'ROTATION_INVALID',
      '/rotation/registry',
    ],
    [
      'from a key the registry does not sign with',
      (r) => rotation(r, { previous: strangerSigner }),
      'ROTATION_NOT_CURRENT_KEY',
      '/rotation/previous/fingerprint',
    ],
    [
      // Hand-made: signRotation writes the signer's own public key. Signed by the key the fingerprint names,
      // it passed, and the registry's record of the keys it retired (`retiredFingerprints`) read another's.
      'naming the key it rotates from by another key, its fingerprint the right one',
      (r) => rotation(r, { previous: { ...r.signer, publicKey: strangerSigner.publicKey } }),
      'ROTATION_INVALID',
      '/rotation/previous/key',
    ],
    [
      // Hand-made too: published, anyone could sign as the old key what a client still holding it takes.
      'naming the key it rotates from by its secret key, signed by both keys',
      (r) => rotation(r, { previous: { ...r.signer, publicKey: r.registryKey.secretKey } }),
      'ROTATION_INVALID',
      '/rotation/previous/key',
    ],
    [
      'to the key it rotates from',
      (r) => rotation(r, { next: r.signer }),
      'ROTATION_INVALID',
      '/rotation/next/fingerprint',
    ],
    [
      // Hand-made: signRotation writes a signer's public key, and this one's is its secret key.
      'naming the new key by its secret key, signed by both keys',
      async (r) =>
        rotation(r, { next: { ...newSigner, publicKey: (await testKey('registry-2')).secretKey } }),
      'ROTATION_INVALID',
      '/signatures',
    ],
    [
      'to a key the registry does not sign with yet',
      (r) => rotation(r),
      'ROTATION_NOT_SIGNING_KEY',
      '/rotation/next/fingerprint',
      undefined,
    ],
  ])('refuses %s, naming the code and place, and writes nothing', async (_, make, code, path, signer) => {
    const registry = await publishedRegistry();
    const bytes = await make(registry);
    // The last case keeps the old signing key: the new key was not installed first.
    const ctx = {
      ...registry.context,
      signer: signer ?? (code === 'ROTATION_NOT_SIGNING_KEY' ? registry.signer : newSigner),
    };
    expect(await refusedRotation(registry, ctx, bytes)).toEqual([expect.objectContaining({ code, path })]);
  });

  it.each([
    ["a key the registry's operator revoked", 'revoked'],
    ["an operator's key", 'operator'],
    ["a trusted publisher's key", 'publisher'],
    // An open registry's owner, listed nowhere in its config: once the registry signed with it, every action
    // the owner signed was refused (PUBLISHER_IS_REGISTRY_KEY), the plugin's only owner locked out of it.
    ["the key of owned-plugin's owner", 'owner'],
  ])('refuses a rotation to %s, and writes nothing', async (what, how) => {
    const registry = await publishedRegistry();
    if (how === 'owner') {
      const bundle = await makeBundle({
        manifest: validManifest({ name: 'owned-plugin', version: '1.0.0' }),
        signer: await testKey('registry-2'),
      });
      const [outcome] = (await processSubmissions(registry.context, await registry.submit(bundle))).outcomes;
      expect(outcome?.status).toBe('accepted');
    }
    if (how === 'revoked') {
      const revoked = {
        schema: 'plugindex/revoked-keys/v1',
        keys: [
          {
            fingerprint: newSigner.fingerprint,
            revoked: '2026-11-01T00:00:00Z',
            reason: 'lost',
            action: 'a'.repeat(64),
          },
        ],
      };
      await registry.site.put('keys/revoked.json', encode(JSON.stringify(revoked)), {
        contentType: 'application/json',
        cacheControl: 'public, max-age=60',
      });
    }
    const other = { fingerprint: newSigner.fingerprint, key: newSigner.publicKey };
    const config = {
      ...registry.context.config,
      ...(how === 'operator' ? { operators: [other] } : {}),
      ...(how === 'publisher' ? { publishers: [{ ...other, names: ['*'] }] } : {}),
    };
    const problems = await refusedRotation(
      registry,
      { ...registry.context, config, signer: newSigner },
      await rotation(registry),
    );

    expect(problems).toEqual([
      expect.objectContaining({
        code: 'ROTATION_INVALID',
        path: '/rotation/next/fingerprint',
        message: expect.stringContaining(what),
      }),
    ]);
  });

  it('refuses a rotation back to a key the registry rotated away from (clients refuse that loop), and writes nothing', async () => {
    // Prepare: rotated once, from the first key to the second.
    const registry = await publishedRegistry();
    await rotateRegistryKey({ ...registry.context, signer: newSigner }, await rotation(registry));
    const back = await rotation(registry, { sequence: 2, previous: newSigner, next: registry.signer });

    // Act: the first key made the signing key again, and rotated to.
    const problems = await refusedRotation(registry, { ...registry.context, signer: registry.signer }, back);

    // Assess: refused as the client would refuse it (a retired key never comes back: key-chain.ts), since
    // a published rotation is never rewritten and every client that followed the first would be stuck.
    expect(problems).toEqual([
      expect.objectContaining({
        code: 'ROTATION_INVALID',
        path: '/rotation/next/fingerprint',
        message: expect.stringContaining('rotated away from'),
      }),
    ]);
  });

  it('refuses a registry that has published nothing', async () => {
    const registry = await makeRegistry();
    const error = await checkRotation(
      { ...registry.context, signer: newSigner },
      await rotation(registry),
    ).catch((e: unknown) => e);
    expect((error as SubmissionError).problems[0]?.code).toBe('ROTATION_NOT_CURRENT_KEY');
  });

  it('never rewrites a published rotation with other bytes', async () => {
    const registry = await publishedRegistry();
    const bytes = await rotation(registry);
    // A run that died right after publishing keys/rotation/1.json.
    await registry.site.put(rotationKey(1), bytes, {
      contentType: 'application/json',
      cacheControl: CACHE_IMMUTABLE,
    });
    const other = (
      await signRotation({
        registry: registry.context.config.url,
        sequence: 1,
        previous: registry.signer,
        next: newSigner,
        now: new Date('2026-11-03T00:00:00Z'),
      })
    ).bytes;
    const error = await rotateRegistryKey({ ...registry.context, signer: newSigner }, other).catch(
      (e: unknown) => e,
    );
    expect((error as SubmissionError).problems[0]).toMatchObject({
      code: 'ROTATION_INVALID',
      path: '/rotation/sequence',
      message: expect.stringContaining('never rewritten'),
    });
    // The rotation as published finishes.
    expect((await rotateRegistryKey({ ...registry.context, signer: newSigner }, bytes)).status).toBe(
      'rotated',
    );
  });
});

describe('when a rotation is checked against the published plugin documents', () => {
  /** `registry`'s site, counting its reads of each plugin document. */
  const countingReads = (registry: TestRegistry) => {
    const reads = new Map<string, number>();
    const site = withMethod(registry.site, 'get', (get) => async (key, options) => {
      if (/^plugins\/[^/]+\/index\.json$/.test(key)) reads.set(key, (reads.get(key) ?? 0) + 1);
      return get(key, options);
    });
    return { site, reads };
  };

  it('reads each plugin document once for a new rotation (the published check and the owner check in one pass)', async () => {
    const registry = await publishedRegistry();
    const { site, reads } = countingReads(registry);

    const checked = await checkRotation(
      { ...registry.context, site, signer: newSigner },
      await rotation(registry),
    );

    expect(checked.state).toBe('new');
    expect(Object.fromEntries(reads)).toEqual({
      'plugins/demo-plugin/index.json': 1,
      'plugins/other-plugin/index.json': 1,
    });
  });

  it('still refuses an edited document before an owner, in that one pass', async () => {
    // The edit makes the new key an owner: the document is refused as altered, not the key as an owner's.
    const registry = await publishedRegistry();
    const doc = json<PluginDocument>(registry.site, 'plugins/demo-plugin/index.json');
    const edited = { ...doc, owners: [...doc.owners, newSigner.fingerprint] };
    await registry.site.put('plugins/demo-plugin/index.json', encode(JSON.stringify(edited)), {
      contentType: 'application/json',
      cacheControl: 'public, max-age=60',
    });
    const { site, reads } = countingReads(registry);

    const error = await checkRotation(
      { ...registry.context, site, signer: newSigner },
      await rotation(registry),
    ).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(SubmissionError);
    expect((error as SubmissionError).problems).toEqual([
      expect.objectContaining({ code: 'PUBLISHED_DOCUMENT_ALTERED', path: '' }),
    ]);
    expect([...reads.values()].every((n) => n === 1)).toBe(true);
  });
});

/**
 * `moved-plugin` 1.0.0 published with the key `registry-2` (newSigner's), then that key no owner of it: `heir`
 * added by it, then it removed by `heir`. Its publisher signature stays on the version.
 */
async function publishedByNewKeyThenTransferred(registry: TestRegistry): Promise<void> {
  const former = await testKey('registry-2');
  const heir = await testKey('heir');
  const bundle = await makeBundle({
    manifest: validManifest({ name: 'moved-plugin', version: '1.0.0' }),
    signer: former,
  });
  const submitted = [
    ...(await registry.submit(bundle)),
    (
      await submitAction(
        registry.intake,
        { action: 'owners-add', plugin: 'moved-plugin', key: heir.publicKey },
        former,
      )
    ).key,
    (
      await submitAction(
        registry.intake,
        { action: 'owners-remove', plugin: 'moved-plugin', fingerprint: former.fingerprint },
        heir,
      )
    ).key,
  ];
  const { outcomes } = await processSubmissions(registry.context, submitted);
  expect(outcomes.map((o) => o.status)).toEqual(['accepted', 'accepted', 'accepted']);
  const doc = json<PluginDocument>(registry.site, 'plugins/moved-plugin/index.json');
  expect(doc.owners).toEqual([heir.fingerprint]);
  expect(doc.versions[0]?.publisher).toBe(former.fingerprint);
}

describe('when a rotation is to a key that published versions of a plugin it no longer owns', () => {
  it('refuses it ROTATION_INVALID naming the plugin and the version, and writes nothing', async () => {
    const registry = await publishedRegistry();
    await publishedByNewKeyThenTransferred(registry);
    const problems = await refusedRotation(
      registry,
      { ...registry.context, signer: newSigner },
      await rotation(registry),
    );

    // Its publisher signatures on moved-plugin@1.0.0 would read as the registry's in the history.
    expect(problems).toEqual([
      expect.objectContaining({
        code: 'ROTATION_INVALID',
        path: '/rotation/next/fingerprint',
        message: expect.stringContaining('moved-plugin@1.0.0'),
      }),
    ]);
  });

  it('finishes such a rotation that an older release published, its run dead before the rebuild', async () => {
    const registry = await publishedRegistry();
    await publishedByNewKeyThenTransferred(registry);
    const bytes = await rotation(registry);
    await registry.site.put(rotationKey(1), bytes, {
      contentType: 'application/json',
      cacheControl: CACHE_IMMUTABLE,
    });

    const result = await rotateRegistryKey({ ...registry.context, signer: newSigner }, bytes);

    expect(result.status).toBe('rotated');
    expect(json<SnapshotDocument>(registry.site, 'snapshot.json').key_fingerprint).toBe(
      newSigner.fingerprint,
    );
  });
});

describe("when a caller takes its own steps at the rotation's check (checked)", () => {
  it('is handed the checked rotation before anything is published; its failure publishes nothing', async () => {
    const registry = await publishedRegistry();
    const before = storesOf(registry);
    const seen: string[] = [];

    const error = await rotateRegistryKey(
      { ...registry.context, signer: newSigner },
      await rotation(registry),
      {
        checked: async (checked) => {
          seen.push(`${checked.state} ${checked.sequence} ${checked.next}`);
          throw new Error('the caller could not keep its key');
        },
      },
    ).catch((e: unknown) => e);

    expect((error as Error).message).toBe('the caller could not keep its key');
    expect(seen).toEqual([`new 1 ${newSigner.fingerprint}`]);
    expect(storesOf(registry)).toEqual(before);
  });

  it('is not called for a rotation the check refuses', async () => {
    const registry = await publishedRegistry();
    const bytes = await rotation(registry);
    let called = false;

    const error = await rotateRegistryKey({ ...registry.context, signer: registry.context.signer }, bytes, {
      checked: async () => {
        called = true;
      },
    }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(SubmissionError);
    expect((error as SubmissionError).problems.map((p) => p.code)).toEqual(['ROTATION_NOT_SIGNING_KEY']);
    expect(called).toBe(false);
  });
});

describe('when a rotation is to a key no signature by which is taken', () => {
  it.each(UNTRUSTED_KEYS)(
    'refuses $label at /rotation/next/key, saying why, and writes nothing',
    async (key) => {
      // Prepare: the weak key made the registry's signing key, as an operator who rotates to it would have
      // (rotate-key itself refuses it first: readTrustedKey). Its signature of the rotation is made by another
      // key: no signature by it would verify anyway, which is all the pipeline said (at /signatures).
      const registry = await publishedRegistry();
      const weak = {
        fingerprint: key.fingerprint,
        fingerprints: [key.fingerprint],
        publicKey: key.publicKey,
        sign: (data: Uint8Array) => newSigner.sign(data),
      } as unknown as Signer;
      const bytes = await rotation(registry, { next: weak });

      // Act
      const problems = await refusedRotation(registry, { ...registry.context, signer: weak }, bytes);

      // Assess: the operator is told the key is the fault, and why.
      expect(problems).toEqual([
        expect.objectContaining({
          code: 'ROTATION_INVALID',
          path: '/rotation/next/key',
          message: expect.stringContaining(`the new key ${key.fingerprint} cannot be trusted`),
        }),
      ]);
      expect(problems[0]?.message).toContain(key.reason);
    },
  );
});

describe('when a published document is not what the registry published', () => {
  const JSON_PUT = { contentType: 'application/json', cacheControl: 'public, max-age=60' };
  const edits: [string, (r: TestRegistry) => Promise<void>, string][] = [
    [
      "a plugin's document edited to add an owner",
      async (r) => {
        const doc = json<PluginDocument>(r.site, 'plugins/demo-plugin/index.json');
        const edited = { ...doc, owners: [...(doc.owners ?? []), strangerSigner.fingerprint] };
        await r.site.put('plugins/demo-plugin/index.json', encode(JSON.stringify(edited)), JSON_PUT);
      },
      'plugins/demo-plugin/index.json',
    ],
    [
      "a plugin's document deleted (its next publisher would own the name)",
      (r) => r.site.delete('plugins/other-plugin/index.json'),
      'plugins/other-plugin/index.json',
    ],
    [
      'a plugin document planted for a name never published',
      async (r) => {
        const doc = json<PluginDocument>(r.site, 'plugins/demo-plugin/index.json');
        const planted = { ...doc, name: 'planted-plugin' };
        await r.site.put('plugins/planted-plugin/index.json', encode(JSON.stringify(planted)), JSON_PUT);
      },
      'plugins/planted-plugin/index.json',
    ],
    [
      'a revoked-keys list planted',
      async (r) => {
        const revoked = { schema: 'plugindex/revoked-keys/v1', keys: [] };
        await r.site.put('keys/revoked.json', encode(JSON.stringify(revoked)), JSON_PUT);
      },
      'keys/revoked.json',
    ],
    [
      "the snapshot's digests edited",
      async (r) => {
        const snapshot = json<SnapshotDocument>(r.site, 'snapshot.json');
        await r.site.put('snapshot.json', encode(JSON.stringify({ ...snapshot, documents: [] })), JSON_PUT);
      },
      'snapshot.json',
    ],
  ];

  it.each(edits)('refuses to rotate over %s, naming it, and writes nothing', async (_, edit, key) => {
    const registry = await publishedRegistry();
    await edit(registry);
    const problems = await refusedRotation(
      registry,
      { ...registry.context, signer: newSigner },
      await rotation(registry),
    );

    // Refused as a batch refuses it: a rotation would have signed the edit with the new key, and every
    // client would have taken it (a stranger then an owner of the plugin).
    expect(problems).toEqual([
      expect.objectContaining({
        code: 'PUBLISHED_DOCUMENT_ALTERED',
        path: '',
        message: expect.stringContaining(key),
      }),
    ]);
  });

  it("resumes a rotation to a plugin owner's key that an older release published, its run dead before the rebuild", async () => {
    // Prepare: the owner's plugin, then what a run of a release without the owner check left when it died right
    // after publishing the rotation (failAt(2) below: keys/rotation/1.json is the first write).
    const registry = await publishedRegistry();
    const bundle = await makeBundle({
      manifest: validManifest({ name: 'owned-plugin', version: '1.0.0' }),
      signer: await testKey('registry-2'),
    });
    expect(
      (await processSubmissions(registry.context, await registry.submit(bundle))).outcomes[0]?.status,
    ).toBe('accepted');
    const bytes = await rotation(registry);
    const ctx = { ...registry.context, signer: newSigner };
    await expect(rotateRegistryKey(ctx, bytes)).rejects.toThrow(SubmissionError); // a new one is refused
    await registry.site.put(rotationKey(1), bytes, {
      contentType: 'application/json',
      cacheControl: CACHE_IMMUTABLE,
    });

    const result = await rotateRegistryKey(ctx, bytes);

    // Refused, the registry stayed ROTATION_PENDING until the operator deleted the published rotation by hand.
    expect(result.status).toBe('rotated');
    expect(json<SnapshotDocument>(registry.site, 'snapshot.json').key_fingerprint).toBe(
      newSigner.fingerprint,
    );
  });

  it('refuses to resume a rotation that died before its rebuild began over a document edited since', async () => {
    const registry = await publishedRegistry();
    const bytes = await rotation(registry);
    const ctx = { ...registry.context, signer: newSigner };
    // The run dies right after publishing the rotation, before its rebuild marks the catalog: the published
    // documents are still the old key's, and the catalog's record of them stands.
    const restore = failAt(registry, 2);
    await expect(rotateRegistryKey(ctx, bytes)).rejects.toThrow(/injected failure/);
    restore();
    expect(registry.site.objects.has('keys/rotation/1.json')).toBe(true);
    await (edits[0] as (typeof edits)[number])[1](registry);

    const error = await rotateRegistryKey(ctx, bytes).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(SubmissionError);
    expect((error as SubmissionError).problems).toEqual([
      expect.objectContaining({ code: 'PUBLISHED_DOCUMENT_ALTERED', path: '' }),
    ]);
    const doc = json<PluginDocument>(registry.site, 'plugins/demo-plugin/index.json');
    expect(doc.owners).toContain(strangerSigner.fingerprint);
    expect(json<SnapshotDocument>(registry.site, 'snapshot.json').key_rotations ?? 0).toBe(0);
  });

  it('rotates once the operator has taken the published documents as they are (plugindex rebuild)', async () => {
    const registry = await publishedRegistry();
    await (edits[0] as (typeof edits)[number])[1](registry);
    await rebuildRegistry(registry.context);

    const result = await rotateRegistryKey(
      { ...registry.context, signer: newSigner },
      await rotation(registry),
    );

    expect(result.status).toBe('rotated');
    const doc = json<PluginDocument>(registry.site, 'plugins/demo-plugin/index.json');
    expect(doc.owners).toContain(strangerSigner.fingerprint);
  });
});

/** Fails the `n`th write to either store, as an unavailable store does. */
function failAt(registry: TestRegistry, n: number): () => void {
  let count = 0;
  const stores = [registry.site, registry.intake];
  const originals = stores.map((s) => s.put.bind(s));
  stores.forEach((store, i) => {
    store.put = async (key: string, body: Uint8Array, options: PutOptions) => {
      count += 1;
      if (count === n) throw new Error(`injected failure at write ${n} (${key})`);
      return (originals[i] as typeof store.put)(key, body, options);
    };
  });
  return () =>
    stores.forEach((store, i) => {
      store.put = originals[i] as typeof store.put;
    });
}

describe('when a rotation fails part way', () => {
  it('is finished by running it again, whatever write failed, with one log entry', async () => {
    const probe = await publishedRegistry();
    const writesBefore = probe.site.writes.length + probe.intake.writes.length;
    await rotateRegistryKey({ ...probe.context, signer: newSigner }, await rotation(probe));
    const steps = probe.site.writes.length + probe.intake.writes.length - writesBefore;
    expect(steps).toBeGreaterThan(20);
    const newKey = (await readPublicKey(newSigner.publicKey)).key;
    const oldKey = (await readPublicKey(probe.signer.publicKey)).key;
    for (let n = 1; n <= steps; n++) {
      const registry = await publishedRegistry();
      const bytes = await rotation(registry);
      const ctx = { ...registry.context, signer: newSigner };
      const restore = failAt(registry, n);
      await expect(rotateRegistryKey(ctx, bytes), `step ${n}`).rejects.toThrow(/injected failure/);
      restore();
      // What clients read (snapshot.signed.json, written after the pair) is the old key's until the commit.
      const signed = openSignedSnapshot(registry.site.objects.get(SIGNED_SNAPSHOT_KEY)?.body as Uint8Array);
      const committed = (JSON.parse(new TextDecoder().decode(signed.snapshot)) as SnapshotDocument)
        .key_rotations;
      await verifySnapshot({ ...signed, key: committed === 1 ? newKey : oldKey, now: CLIENT_NOW });

      const result = await rotateRegistryKey(ctx, bytes);
      expect(['rotated', 'already-rotated'], `step ${n}`).toContain(result.status);
      expect(json<SnapshotDocument>(registry.site, 'snapshot.json'), `step ${n}`).toMatchObject({
        key_fingerprint: newSigner.fingerprint,
        key_rotations: 1,
      });
      const rotations = logEntries(registry).entries.filter((e) => e.entry.type === 'rotate-key');
      expect(rotations, `step ${n}`).toHaveLength(1);
      // What clients read first carries that snapshot, signed by the new key (a run that died between the
      // pair and it left the old key's there, and the retry called the rotation done).
      const after = openSignedSnapshot(registry.site.objects.get(SIGNED_SNAPSHOT_KEY)?.body as Uint8Array);
      expect(new TextDecoder().decode(after.snapshot), `step ${n}`).toBe(
        text(registry.site, 'snapshot.json'),
      );
      await verifySnapshot({ ...after, key: newKey, now: CLIENT_NOW });
      for (const file of signedFiles(registry.site)) {
        expect(
          (await verifyDetachedSignature(file.body, file.signature, [newKey])).ok,
          `${n} ${file.key}`,
        ).toBe(true);
      }
    }
  }, 120_000);
});

describe('when a rotation died between its two snapshot writes and state/ was lost', () => {
  it('is finished by running it again, its entry logged once (not appended over the one published)', async () => {
    // Prepare: a rotation whose run died writing snapshot.signed.json (snapshot.json and its signature, the
    // new key's, counting its entry, written); then every object of the intake store's state/ gone.
    const registry = await publishedRegistry();
    const bytes = await rotation(registry);
    const ctx = { ...registry.context, signer: newSigner };
    const put = registry.site.put.bind(registry.site);
    registry.site.put = async (key: string, body: Uint8Array, options: PutOptions) => {
      if (key === SIGNED_SNAPSHOT_KEY) throw new Error('injected failure at snapshot.signed.json');
      return put(key, body, options);
    };
    await expect(rotateRegistryKey(ctx, bytes)).rejects.toThrow(/injected failure/);
    registry.site.put = put;
    const segment = () => new TextDecoder().decode(registry.site.objects.get(logSegmentKey(0))?.body);
    const logged = segment();
    for (const key of [...registry.intake.objects.keys()])
      if (key.startsWith('state/')) registry.intake.objects.delete(key);

    // Act
    const result = await rotateRegistryKey(ctx, bytes);

    // Assert: rotated; the published log as the dead run left it, its rotation entry once.
    expect(result.status).toBe('rotated');
    expect(segment()).toBe(logged);
    const entries = parseSegment(registry.site.objects.get(logSegmentKey(0))?.body as Uint8Array, 0);
    expect(entries.filter((e) => e.entry.type === 'rotate-key')).toHaveLength(1);
    expect(json<SnapshotDocument>(registry.site, 'snapshot.json').log?.length).toBe(entries.length);
  });
});

/**
 * The log head a batch takes when the published log holds entries past `state/log.json` is checked against
 * `snapshot.signed.json` by the current key only (log-writer.ts `currentLogHead`). A key rotation that died
 * part way never leaves an ordinary batch stuck on that check: one signing with a key `snapshot.json` does
 * not name is refused first (SIGNING_KEY_NOT_CURRENT), and one that passes finishes the rotation's rebuild,
 * the envelope then the current key's, before it appends.
 */
describe('when a rotation died after logging its entry and state/log.json was lost', () => {
  it.each([
    ['writing state/log.json', 'intake', LOG_STATE_KEY],
    ["writing its rebuild's snapshot.json", 'site', 'snapshot.json'],
  ] as const)(
    'is finished by running it again (%s): its entry, past the signed head, taken by its intent record and logged once',
    async (_, which, at) => {
      // Prepare: a rotation whose run died at `at`, its entry published in the log past the head the
      // (old key's) signed snapshot counts, its intent record kept; then state/log.json gone.
      const registry = await publishedRegistry();
      const bytes = await rotation(registry);
      const ctx = { ...registry.context, signer: newSigner };
      const store = registry[which];
      const put = store.put.bind(store);
      store.put = async (key: string, body: Uint8Array, options: PutOptions) => {
        if (key === at) throw new Error(`injected failure at ${at}`);
        return put(key, body, options);
      };
      await expect(rotateRegistryKey(ctx, bytes)).rejects.toThrow(/injected failure/);
      store.put = put;
      const segment = () => new TextDecoder().decode(registry.site.objects.get(logSegmentKey(0))?.body);
      const logged = segment();
      expect(logged).toContain('"type":"rotate-key"');
      registry.intake.objects.delete(LOG_STATE_KEY);

      // Act
      const result = await rotateRegistryKey(ctx, bytes);

      // Assess: rotated over the published log as the dead run left it (its line's hash, which the intent
      // record keeps, takes the entry past the signed head: without it the entry was appended over, another
      // line at its seq), the rotation logged once and counted by the new key's snapshot.
      expect(result.status).toBe('rotated');
      expect(segment()).toBe(logged);
      const entries = parseSegment(registry.site.objects.get(logSegmentKey(0))?.body as Uint8Array, 0);
      expect(entries.filter((e) => e.entry.type === 'rotate-key')).toHaveLength(1);
      expect(json<SnapshotDocument>(registry.site, 'snapshot.json').log?.length).toBe(entries.length);
    },
  );
});

describe('when a rotation died part way and a batch after it died before recording the log', () => {
  /** A rotation dead at `key` in `store`. */
  async function rotationDeadAt(which: 'site' | 'intake', key: string): Promise<TestRegistry> {
    const registry = await publishedRegistry();
    const store = registry[which];
    const put = store.put.bind(store);
    store.put = async (at: string, body: Uint8Array, options: PutOptions) => {
      if (at === key) throw new Error(`injected failure at ${key}`);
      return put(at, body, options);
    };
    await expect(
      rotateRegistryKey({ ...registry.context, signer: newSigner }, await rotation(registry)),
    ).rejects.toThrow(/injected failure/);
    store.put = put;
    return registry;
  }

  /** A new version of demo-plugin, uploaded: the upload's keys. */
  const upload = async (registry: TestRegistry): Promise<string[]> =>
    registry.submit(
      await makeBundle({
        manifest: baseManifest('demo-plugin', '1.2.0'),
        artifacts: [{ os: 'linux', arch: 'amd64', name: 'tool', body: encode('demo-plugin 1.2.0') }],
      }),
    );

  it('publishes the retry of a batch (new key) that died between its log segment and state/log.json, the rotation dead at snapshot.signed.json', async () => {
    // Prepare: the rotation's pair the new key's, its envelope the old key's; a batch that died between its
    // log segment and state/log.json.
    const registry = await rotationDeadAt('site', SIGNED_SNAPSHOT_KEY);
    const ctx = { ...registry.context, signer: newSigner };
    const put = registry.intake.put.bind(registry.intake);
    registry.intake.put = async (key: string, body: Uint8Array, options: PutOptions) => {
      if (key === LOG_STATE_KEY) throw new Error('injected failure at state/log.json');
      return put(key, body, options);
    };
    const keys = await upload(registry);
    await expect(processSubmissions(ctx, keys)).rejects.toThrow(/injected failure/);
    registry.intake.put = put;

    // Act: the retry.
    const result = await processSubmissions(ctx, keys);

    // Assert: published, logged once, what clients read the new key's.
    expect(result.outcomes.map((o) => o.status)).toEqual(['accepted']);
    const after = openSignedSnapshot(registry.site.objects.get(SIGNED_SNAPSHOT_KEY)?.body as Uint8Array);
    await verifySnapshot({ ...after, key: (await readPublicKey(newSigner.publicKey)).key, now: CLIENT_NOW });
    const entries = parseSegment(registry.site.objects.get(logSegmentKey(0))?.body as Uint8Array, 0);
    expect(entries.filter((e) => e.entry.type === 'publish')).toHaveLength(4);
    expect(json<SnapshotDocument>(registry.site, 'snapshot.json').log?.length).toBe(entries.length);
  });

  it('refuses a batch signing with the old key once snapshot.json names the new one (SIGNING_KEY_NOT_CURRENT), before the log', async () => {
    const registry = await rotationDeadAt('site', SIGNED_SNAPSHOT_KEY);
    const keys = await upload(registry);
    const log = text(registry.site, logSegmentKey(0));
    await expect(processSubmissions(registry.context, keys)).rejects.toMatchObject({
      code: 'SIGNING_KEY_NOT_CURRENT',
    });
    expect(text(registry.site, logSegmentKey(0))).toBe(log);
  });

  it('refuses a batch signing with the new key while snapshot.json names the old one (SIGNING_KEY_NOT_CURRENT), its entry past state/log.json', async () => {
    // The rotation's own entry appended, state/log.json not: entries past the recorded head.
    const registry = await rotationDeadAt('intake', LOG_STATE_KEY);
    const keys = await upload(registry);
    const log = text(registry.site, logSegmentKey(0));
    await expect(processSubmissions({ ...registry.context, signer: newSigner }, keys)).rejects.toMatchObject({
      code: 'SIGNING_KEY_NOT_CURRENT',
    });
    expect(text(registry.site, logSegmentKey(0))).toBe(log);
  });
});

describe('when a registry rotates its key because the old key was stolen (--compromised)', () => {
  const keyrings = keyringsOfBothKeys();

  it('publishes the mark inside the rotation both keys sign (GnuPG accepts both), logs it and reports it', async () => {
    // Prepare
    const registry = await publishedRegistry();
    const { bytes } = await signRotation({
      registry: registry.context.config.url,
      sequence: 1,
      previous: registry.signer,
      next: newSigner,
      now: NOW,
      compromised: true,
    });

    // Act
    const result = await rotateRegistryKey({ ...registry.context, signer: newSigner }, bytes);

    // Assess: the published record is the one signed, the mark inside the signed text.
    expect(result).toMatchObject({ status: 'rotated', sequence: 1, compromised: true });
    const published = registry.site.objects.get(rotationKey(1))?.body as Uint8Array;
    expect(published).toEqual(bytes);
    const read = readSignedRotation(published);
    expect(read.rotation.compromised).toBe(true);
    expect(JSON.parse(new TextDecoder().decode(read.text))).toMatchObject({ compromised: true });
    expect(keyrings.old.verify(read.text, read.signatures[0])).toContain(
      `VALIDSIG ${registry.signer.fingerprints.at(0)}`,
    );
    expect(keyrings.new.verify(read.text, read.signatures[1])).toContain(
      `VALIDSIG ${newSigner.fingerprints.at(0)}`,
    );
    expect(logEntries(registry).entries.at(-1)?.entry).toMatchObject({
      type: 'rotate-key',
      digest: read.digest,
      detail: { fingerprint: newSigner.fingerprint, sequence: '1', compromised: 'true' },
    });
  });

  it('writes no mark for a routine rotation: its record and log entry are as before the mark existed', async () => {
    const registry = await publishedRegistry();
    const bytes = await rotation(registry);
    const result = await rotateRegistryKey({ ...registry.context, signer: newSigner }, bytes);
    expect(result).not.toHaveProperty('compromised');
    const read = readSignedRotation(registry.site.objects.get(rotationKey(1))?.body as Uint8Array);
    expect(Object.keys(JSON.parse(new TextDecoder().decode(read.text)))).toEqual([
      'schema',
      'registry',
      'sequence',
      'created',
      'previous',
      'next',
    ]);
    expect(logEntries(registry).entries.at(-1)?.entry.detail).toEqual({
      fingerprint: newSigner.fingerprint,
      sequence: '1',
    });
  });

  it('refuses a mark that is not true or false (ROTATION_INVALID), writing nothing', async () => {
    const registry = await publishedRegistry();
    const good = readSignedRotation(await rotation(registry));
    const text = new TextEncoder().encode(
      JSON.stringify({ ...JSON.parse(new TextDecoder().decode(good.text)), compromised: 'yes' }, null, 2),
    );
    const bytes = new TextEncoder().encode(
      JSON.stringify({
        schema: SIGNED_ROTATION_SCHEMA,
        rotation: new TextDecoder().decode(text),
        signatures: [await registry.signer.sign(text), await newSigner.sign(text)],
      }),
    );
    const before = [registry.site.fingerprint(), registry.intake.fingerprint()];
    const refused = rotateRegistryKey({ ...registry.context, signer: newSigner }, bytes);
    await expect(refused).rejects.toBeInstanceOf(SubmissionError);
    await expect(refused).rejects.toMatchObject({
      problems: [{ code: 'ROTATION_INVALID', message: expect.stringContaining('compromised mark') }],
    });
    expect([registry.site.fingerprint(), registry.intake.fingerprint()]).toEqual(before);
  });
});

describe("when a rotation's rebuild meets a published manifest gone or altered", () => {
  it('fails with RESIGN_MANIFEST_MISSING naming the manifest, signing nothing of it with the new key', async () => {
    // Prepare: a registry whose demo-plugin 1.1.0 manifest was deleted under it.
    const registry = await publishedRegistry();
    const key = manifestKey('demo-plugin', '1.1.0');
    registry.site.objects.delete(key);
    const signature = text(registry.site, signatureKey(key));

    // Act
    const error = await rotateRegistryKey(
      { ...registry.context, signer: newSigner },
      await rotation(registry),
    ).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(PlugindexError);
    expect(error).toMatchObject({ code: 'RESIGN_MANIFEST_MISSING' });
    expect((error as Error).message).toContain(key);
    expect(text(registry.site, signatureKey(key))).toBe(signature);
  });

  it('fails with RESIGN_MANIFEST_ALTERED naming the manifest and the digest expected', async () => {
    // Prepare: demo-plugin 1.0.0's manifest rewritten with other bytes than its plugin document records.
    const registry = await publishedRegistry();
    const key = manifestKey('demo-plugin', '1.0.0');
    const doc = json<PluginDocument>(registry.site, pluginDocumentKey('demo-plugin'));
    const expected = doc.versions.find((v) => v.version === '1.0.0')?.manifest_sha256 as string;
    await registry.site.put(key, encode('{"altered": true}'), {
      cacheControl: CACHE_IMMUTABLE,
      contentType: 'application/json',
    });

    // Act
    const error = await rotateRegistryKey(
      { ...registry.context, signer: newSigner },
      await rotation(registry),
    ).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(PlugindexError);
    expect(error).toMatchObject({ code: 'RESIGN_MANIFEST_ALTERED' });
    expect((error as Error).message).toContain(key);
    expect((error as Error).message).toContain(expected);
  });
});
