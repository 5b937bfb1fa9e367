import { describe, expect, it } from 'vitest';
import { TrustError } from '../../index-builder/errors.ts';
import { binKey, binOf } from '../../index-builder/layout.ts';
import { processSubmissions } from '../../index-builder/pipeline/index.ts';
import { renderSignedSnapshot } from '../../index-builder/render/snapshot.ts';
import { createSigner, readPublicKey } from '../../index-builder/signing.ts';
import {
  assertPluginDocument,
  openSignedSnapshot,
  verifyListedDocument,
  verifyPluginDocument,
  verifySnapshot,
} from '../../index-builder/verify.ts';
import { makeBundle, makeRegistry, type TestRegistry, testKey, validManifest } from '../support/fixtures.ts';

const bytesOf = (registry: TestRegistry, key: string): Uint8Array =>
  registry.site.objects.get(key)?.body as Uint8Array;
const textOf = (registry: TestRegistry, key: string): string =>
  new TextDecoder().decode(bytesOf(registry, key));

/** Two generations of one registry, and a copy of what a client saw after the first. */
async function twoGenerations() {
  const registry = await makeRegistry();
  await processSubmissions(registry.context, await registry.submit(await makeBundle()));
  const first = {
    snapshot: bytesOf(registry, 'snapshot.json'),
    signature: textOf(registry, 'snapshot.json.asc'),
    index: bytesOf(registry, 'index.json'),
    doc: bytesOf(registry, 'plugins/demo-plugin/index.json'),
  };
  await processSubmissions(
    registry.context,
    await registry.submit(await makeBundle({ manifest: validManifest({ version: '1.1.0' }) })),
  );
  const key = (await readPublicKey(registry.registryKey.publicKey)).key;
  return { registry, first, key };
}

const now = new Date('2026-11-02T00:00:00Z');

describe('when a client checks the snapshot', () => {
  it('accepts the current, signed, unexpired snapshot and every document it binds', async () => {
    const { registry, key } = await twoGenerations();
    const snapshot = await verifySnapshot({
      snapshot: bytesOf(registry, 'snapshot.json'),
      signature: textOf(registry, 'snapshot.json.asc'),
      key,
      now,
      lastGeneration: 1,
    });
    expect(snapshot.generation).toBe(2);
    for (const path of [
      'index.json',
      'index.yaml',
      'search.json',
      'falcoctl/index.yaml',
      'keys/registry.asc',
    ])
      verifyListedDocument(snapshot, path, bytesOf(registry, path));
    const bin = binKey(binOf('demo-plugin'));
    expect(() =>
      verifyPluginDocument(
        snapshot,
        'demo-plugin',
        bytesOf(registry, bin),
        bytesOf(registry, 'plugins/demo-plugin/index.json'),
      ),
    ).not.toThrow();
  });

  it('refuses a snapshot signed by another key (forgery)', async () => {
    const { registry, key } = await twoGenerations();
    const forger = await createSigner((await testKey('forger')).secretKey);
    const body = bytesOf(registry, 'snapshot.json');
    await expect(
      verifySnapshot({ snapshot: body, signature: await forger.sign(body), key, now }),
    ).rejects.toMatchObject({ code: 'SNAPSHOT_BAD_SIGNATURE' });
  });

  it('refuses an older generation than one already seen (rollback), though its signature is good', async () => {
    const { first, key } = await twoGenerations();
    await expect(
      verifySnapshot({ snapshot: first.snapshot, signature: first.signature, key, now }),
    ).resolves.toMatchObject({ generation: 1 });
    await expect(
      verifySnapshot({ snapshot: first.snapshot, signature: first.signature, key, now, lastGeneration: 2 }),
    ).rejects.toBeInstanceOf(TrustError);
    await expect(
      verifySnapshot({ snapshot: first.snapshot, signature: first.signature, key, now, lastGeneration: 2 }),
    ).rejects.toMatchObject({ code: 'SNAPSHOT_ROLLBACK' });
  });

  it('refuses an expired snapshot (a frozen registry or mirror)', async () => {
    const { registry, key } = await twoGenerations();
    const later = new Date(Date.parse('2026-11-01T00:00:00Z') + 8 * 24 * 3600 * 1000);
    await expect(
      verifySnapshot({
        snapshot: bytesOf(registry, 'snapshot.json'),
        signature: textOf(registry, 'snapshot.json.asc'),
        key,
        now: later,
      }),
    ).rejects.toMatchObject({ code: 'SNAPSHOT_EXPIRED' });
  });
});

describe('when snapshot.signed.json is opened, before any signature is checked', () => {
  const encode = (text: string) => new TextEncoder().encode(text);

  it('opens the envelope whatever brackets, quotes and escapes its strings hold', () => {
    const snapshot = encode('{"a":[[{"b":"\\"}]],"c":"]]}}\\"[["}');
    const opened = openSignedSnapshot(
      renderSignedSnapshot(snapshot, '-----BEGIN PGP SIGNATURE-----\n[{"x"}]\n'),
    );
    expect(new TextDecoder().decode(opened.snapshot)).toBe(new TextDecoder().decode(snapshot));
    expect(opened.signature).toBe('-----BEGIN PGP SIGNATURE-----\n[{"x"}]\n');
  });

  it('refuses an envelope nested inside itself before parsing it (SNAPSHOT_MALFORMED), as a mirror may serve one', () => {
    // JSON.parse spends about 2 µs a level: the 16 MiB a client reads, nested 8 Mi deep, cost 17 s and 640 MB.
    const depth = 1024 * 1024;
    for (const text of [
      `${'['.repeat(depth)}${']'.repeat(depth)}`,
      `{"schema":"plugindex/signed-snapshot/v1","snapshot":"{}","signature":"","x":${'['.repeat(depth)}${']'.repeat(depth)}}`,
    ]) {
      expect(() => openSignedSnapshot(encode(text))).toThrow(TrustError);
      expect(() => openSignedSnapshot(encode(text))).toThrow(
        expect.objectContaining({
          code: 'SNAPSHOT_MALFORMED',
          message: 'snapshot.signed.json is not one object of strings',
        }),
      );
    }
  });
});

describe('when documents come from different generations', () => {
  it('refuses an old index.json under the new snapshot (mix and match)', async () => {
    const { registry, first, key } = await twoGenerations();
    const snapshot = await verifySnapshot({
      snapshot: bytesOf(registry, 'snapshot.json'),
      signature: textOf(registry, 'snapshot.json.asc'),
      key,
      now,
    });
    expect(() => verifyListedDocument(snapshot, 'index.json', first.index)).toThrow(
      expect.objectContaining({ code: 'DOCUMENT_MISMATCH' }),
    );
  });

  it('refuses an old plugin document under the new bin', async () => {
    const { registry, first, key } = await twoGenerations();
    const snapshot = await verifySnapshot({
      snapshot: bytesOf(registry, 'snapshot.json'),
      signature: textOf(registry, 'snapshot.json.asc'),
      key,
      now,
    });
    const bin = bytesOf(registry, binKey(binOf('demo-plugin')));
    expect(() => verifyPluginDocument(snapshot, 'demo-plugin', bin, first.doc)).toThrow(
      expect.objectContaining({ code: 'DOCUMENT_MISMATCH' }),
    );
  });

  it('refuses a document the snapshot does not list', async () => {
    const { registry, key } = await twoGenerations();
    const snapshot = await verifySnapshot({
      snapshot: bytesOf(registry, 'snapshot.json'),
      signature: textOf(registry, 'snapshot.json.asc'),
      key,
      now,
    });
    expect(() => verifyListedDocument(snapshot, 'extra.json', new Uint8Array())).toThrow(
      expect.objectContaining({ code: 'DOCUMENT_NOT_LISTED' }),
    );
  });
});

describe('when a plugin document that matched its digest is read as data', () => {
  const record = (overrides: Record<string, unknown> = {}) => ({
    version: '1.0.0',
    published: '2026-11-01T00:00:00Z',
    prerelease: false,
    yanked: false,
    deprecated: false,
    api_version: 'v1',
    manifest_url: 'https://r.example/plugins/demo/1.0.0/manifest.json',
    manifest_signature_url: 'https://r.example/plugins/demo/1.0.0/manifest.json.asc',
    manifest_sha256: 'a'.repeat(64),
    manifest_size: 10,
    source_sha256: 'b'.repeat(64),
    publisher: 'C'.repeat(40),
    artifacts: [
      {
        os: 'linux',
        arch: 'amd64',
        url: 'https://r.example/x',
        sha256: 'd'.repeat(64),
        size_bytes: 3,
        hosted: true,
      },
    ],
    ...overrides,
  });
  const doc = (versions: unknown[]) => ({ schema: 'plugindex/plugin/v1', name: 'demo', versions });

  it('accepts the document the pipeline writes', () => {
    expect(() => assertPluginDocument(doc([record()]), 'demo')).not.toThrow();
  });

  it('accepts a document with look_alikes, a field added to v1 after the reader first released', () => {
    // The released reader ignores it; this one reads it, and holds it to its shape (below).
    const withField = { ...doc([record()]), look_alikes: [{ name: 'dem0', owners: ['AB'.repeat(20)] }] };
    expect(() => assertPluginDocument(withField, 'demo')).not.toThrow();
  });

  const ociArtifact = (oci: unknown) => ({
    ...record().artifacts[0],
    url: `oci://registry.example/acme/demo@sha256:${'d'.repeat(64)}`,
    hosted: false,
    oci,
  });

  it('accepts permissions, resources and an OCI artifact pinned by its sha256', () => {
    const version = record({
      permissions: ['filesystem_read', 'network_client'],
      resources: { max_memory_mb: 256, timeout_seconds: 30 },
      artifacts: [
        ociArtifact({ reference: 'registry.example/acme/demo:1.0.0', digest: `sha256:${'d'.repeat(64)}` }),
      ],
    });
    expect(() => assertPluginDocument(doc([version]), 'demo')).not.toThrow();
  });

  it.each([
    ['a version that is a path', record({ version: '../../escape' }), '/versions/0/version'],
    ['permissions that are not a list', record({ permissions: 'network_client' }), '/versions/0/permissions'],
    ['a permission that is not text', record({ permissions: ['logging', 7] }), '/versions/0/permissions/1'],
    ['resources that are a list', record({ resources: [1] }), '/versions/0/resources'],
    ['a negative limit', record({ resources: { max_threads: -1 } }), '/versions/0/resources/max_threads'],
    ['a limit that is text', record({ resources: { 'a/b': '1' } }), '/versions/0/resources/a~1b'],
    [
      'an oci that is text',
      record({ artifacts: [ociArtifact('registry.example/a')] }),
      '/versions/0/artifacts/0/oci',
    ],
    [
      'an oci without a reference',
      record({ artifacts: [ociArtifact({ digest: `sha256:${'d'.repeat(64)}` })] }),
      '/versions/0/artifacts/0/oci',
    ],
    [
      "an oci digest that is not the artifact's sha256",
      record({
        artifacts: [ociArtifact({ reference: 'registry.example/a', digest: `sha256:${'e'.repeat(64)}` })],
      }),
      '/versions/0/artifacts/0/oci/digest',
    ],
    [
      'an oci digest without its algorithm',
      record({ artifacts: [ociArtifact({ reference: 'registry.example/a', digest: 'd'.repeat(64) })] }),
      '/versions/0/artifacts/0/oci/digest',
    ],
    ['a version with a leading v', record({ version: 'v1.0.0' }), '/versions/0/version'],
    ['a manifest digest that is not hex', record({ manifest_sha256: 'zz' }), '/versions/0/manifest_sha256'],
    [
      'an artifact platform that is a path',
      record({ artifacts: [{ ...record().artifacts[0], os: '../x' }] }),
      '/versions/0/artifacts/0',
    ],
    [
      'an artifact size that is not a size',
      record({ artifacts: [{ ...record().artifacts[0], size_bytes: -1 }] }),
      '/versions/0/artifacts/0',
    ],
  ])('refuses %s with DOCUMENT_MALFORMED naming the pointer', (_what, version, pointer) => {
    expect(() => assertPluginDocument(doc([version]), 'demo')).toThrow(
      expect.objectContaining({
        name: 'TrustError',
        code: 'DOCUMENT_MALFORMED',
        message: expect.stringContaining(`#${pointer}: `),
      }),
    );
  });

  // This reader prints look_alikes (info, install): a list it cannot read was a TypeError out of `info`.
  it.each([
    ['look_alikes that are not a list', 'awscost', '/look_alikes'],
    ['a look-alike that is not an object', [null], '/look_alikes/0'],
    ['a look-alike whose name is not a string', [{ name: 7, owners: [] }], '/look_alikes/0/name'],
    ['a look-alike whose owners are not a list', [{ name: 'dem0', owners: 'AB' }], '/look_alikes/0/owners'],
    ['a look-alike owner that is not a string', [{ name: 'dem0', owners: [1] }], '/look_alikes/0/owners/0'],
  ])('refuses %s with DOCUMENT_MALFORMED naming the pointer', (_what, lookAlikes, pointer) => {
    expect(() => assertPluginDocument({ ...doc([record()]), look_alikes: lookAlikes }, 'demo')).toThrow(
      expect.objectContaining({
        name: 'TrustError',
        code: 'DOCUMENT_MALFORMED',
        message: expect.stringContaining(`#${pointer}: `),
      }),
    );
  });

  it('refuses the document of another plugin', () => {
    expect(() => assertPluginDocument({ ...doc([]), name: 'other' }, 'demo')).toThrow(
      expect.objectContaining({ code: 'DOCUMENT_MALFORMED', message: expect.stringContaining('/name') }),
    );
  });
});
