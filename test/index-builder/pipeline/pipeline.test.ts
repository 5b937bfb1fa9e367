import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { StoreError } from '../../../index-builder/errors.ts';
import { binKey, binOf, isSafeKey, submissionIdFromBytes } from '../../../index-builder/layout.ts';
import type { PluginDocument, SnapshotDocument } from '../../../index-builder/model.ts';
import {
  type BatchStep,
  flushIndexes,
  processSubmissions,
  rebuildRegistry,
  refreshSnapshot,
  type SubmissionFailure,
  type SubmissionOutcome,
} from '../../../index-builder/pipeline/index.ts';
import { readPublicKey, verifyDetachedSignature } from '../../../index-builder/signing.ts';
import { CACHE_IMMUTABLE, CACHE_MUTABLE, type StoredObject } from '../../../index-builder/store.ts';
import {
  encode,
  makeBundle,
  makeRegistry,
  sha256,
  type TestRegistry,
  testKey,
  validManifest,
} from '../../support/fixtures.ts';
import { MemoryStore } from '../../support/memory-store.ts';
import { PULUMICOST_SPEC } from '../../support/reference.ts';
import { withMethod } from '../../support/stores.ts';

function json<T>(store: MemoryStore, key: string): T {
  const object = store.objects.get(key);
  if (!object) throw new Error(`missing ${key}`);
  return JSON.parse(new TextDecoder().decode(object.body)) as T;
}

async function publish(registry: TestRegistry, ...bundles: Uint8Array[]): Promise<SubmissionOutcome[]> {
  const keys = await registry.submit(...bundles);
  return [...(await processSubmissions(registry.context, keys)).outcomes];
}

describe('when a valid submission arrives', () => {
  it('publishes the manifest, documents, signatures and snapshot', async () => {
    const registry = await makeRegistry();
    const artifact = encode('#!/bin/sh\necho demo\n');
    const [outcome] = await publish(
      registry,
      await makeBundle({ artifacts: [{ os: 'linux', arch: 'amd64', name: 'demo', body: artifact }] }),
    );
    expect(outcome).toMatchObject({
      status: 'accepted',
      plugin: 'demo-plugin',
      version: '1.0.0',
      generation: 1,
      problems: [],
    });

    const site = registry.site;
    for (const key of [
      'plugins/demo-plugin/1.0.0/manifest.json',
      'plugins/demo-plugin/1.0.0/artifacts/linux-amd64/demo',
    ]) {
      expect(site.objects.get(key)?.cacheControl).toBe(CACHE_IMMUTABLE);
    }
    for (const key of [
      // A key rotation signs the manifest again: its signature is the one file of a version that changes.
      'plugins/demo-plugin/1.0.0/manifest.json.asc',
      'index.json',
      'index.yaml',
      'search.json',
      'snapshot.json',
      'plugins/demo-plugin/index.json',
      'plugins/demo-plugin/index.html',
      'index.html',
      'favicon.svg',
      'style.css',
      'keys/registry.asc',
    ]) {
      expect(site.objects.get(key)?.cacheControl, key).toBe(CACHE_MUTABLE);
    }
    expect(site.objects.get('favicon.svg')?.contentType).toBe('image/svg+xml');
    expect(site.objects.get('style.css')?.contentType).toBe('text/css; charset=utf-8');
    const doc = json<PluginDocument>(site, 'plugins/demo-plugin/index.json');
    expect(doc.latest_version).toBe('1.0.0');
    expect(doc.versions[0]?.artifacts).toEqual([
      {
        os: 'linux',
        arch: 'amd64',
        url: 'https://registry.example.com/plugins/demo-plugin/1.0.0/artifacts/linux-amd64/demo',
        sha256: sha256(artifact),
        size_bytes: artifact.byteLength,
        hosted: true,
      },
    ]);
    expect(site.objects.get('plugins/demo-plugin/1.0.0/manifest.json')?.contentType).toBe('application/json');
    expect(registry.intake.objects.has(`status/${outcome?.id}.json`)).toBe(true);
    expect([...registry.intake.objects.keys()].filter((k) => k.startsWith('incoming/'))).toEqual([]);
    expect([...registry.intake.objects.keys()].filter((k) => k.startsWith('processed/'))).toHaveLength(1);
  });

  it('signs every JSON and YAML document, and the snapshot binds their digests', async () => {
    const registry = await makeRegistry();
    await publish(registry, await makeBundle());
    const key = await readPublicKey(registry.registryKey.publicKey);
    // snapshot.signed.json carries its signature inside (below).
    const signed = [...registry.site.objects.keys()].filter(
      (k) => /\.(json|yaml)$/.test(k) && k !== 'snapshot.signed.json',
    );
    expect(signed.length).toBeGreaterThanOrEqual(6);
    for (const name of signed) {
      const body = registry.site.objects.get(name)?.body as Uint8Array;
      const signature = new TextDecoder().decode(registry.site.objects.get(`${name}.asc`)?.body);
      await expect(verifyDetachedSignature(body, signature, [key.key]), name).resolves.toMatchObject({
        ok: true,
      });
    }
    // The one-object form a client reads: the same bytes as snapshot.json, and the same signature.
    const envelope = json<{ snapshot: string; signature: string }>(registry.site, 'snapshot.signed.json');
    expect(envelope.snapshot).toBe(
      new TextDecoder().decode(registry.site.objects.get('snapshot.json')?.body),
    );
    expect(envelope.signature).toBe(
      new TextDecoder().decode(registry.site.objects.get('snapshot.json.asc')?.body),
    );
    const snapshot = json<SnapshotDocument>(registry.site, 'snapshot.json');
    expect(snapshot.key_fingerprint).toBe(registry.registryKey.fingerprint);
    expect(new Date(snapshot.expires).getTime()).toBeGreaterThan(new Date(snapshot.created).getTime());
    for (const [name, digest] of Object.entries(snapshot.documents)) {
      const body = registry.site.objects.get(name)?.body as Uint8Array;
      expect(digest, name).toEqual({ sha256: sha256(body), size: body.byteLength });
    }
    const bin = binKey(binOf('demo-plugin'));
    expect(Object.keys(snapshot.documents).sort()).toEqual([
      'falcoctl/index.yaml',
      'index.json',
      'index.yaml',
      'keys/registry.asc',
      'search.json',
      bin,
    ]);
    // The plugin document is bound through its bin: snapshot -> bin -> document.
    const doc = registry.site.objects.get('plugins/demo-plugin/index.json')?.body as Uint8Array;
    expect(json<{ documents: Record<string, unknown> }>(registry.site, bin).documents).toEqual({
      'plugins/demo-plugin/index.json': { sha256: sha256(doc), size: doc.byteLength },
    });
  });

  it('writes an index.json that validates against the reference registry schema, and the same document as YAML', async () => {
    const registry = await makeRegistry();
    await publish(
      registry,
      await makeBundle(),
      await makeBundle({ manifest: validManifest({ version: '1.1.0-beta.1' }) }),
      await makeBundle({
        manifest: validManifest({
          name: 'other-plugin',
          plugin_type: 'observability',
          capabilities: ['custom_metrics'],
        }),
      }),
    );
    const ajv = new Ajv2020({ allErrors: true, strict: false });
    addFormats.default(ajv);
    const schema = JSON.parse(
      readFileSync(path.join(PULUMICOST_SPEC, 'schemas/plugin_registry.schema.json'), 'utf8'),
    );
    const index = json<Record<string, unknown>>(registry.site, 'index.json');
    const valid = ajv.validate(schema, index);
    expect(ajv.errors ?? []).toEqual([]);
    expect(valid).toBe(true);
    expect(YAML.parse(new TextDecoder().decode(registry.site.objects.get('index.yaml')?.body))).toEqual(
      index,
    );
  });

  it('keeps unknown manifest fields in the published manifest', async () => {
    const registry = await makeRegistry();
    await publish(registry, await makeBundle({ manifest: validManifest({ x_future: { nested: [1, 2] } }) }));
    expect(
      json<Record<string, unknown>>(registry.site, 'plugins/demo-plugin/1.0.0/manifest.json').x_future,
    ).toEqual({ nested: [1, 2] });
  });

  it('publishes a YAML manifest as JSON', async () => {
    const registry = await makeRegistry();
    const manifest = validManifest({ name: 'yaml-plugin' });
    const [outcome] = await publish(
      registry,
      await makeBundle({ manifestName: 'manifest.yaml', manifestText: YAML.stringify(manifest) }),
    );
    expect(outcome?.status).toBe('accepted');
    expect(json(registry.site, 'plugins/yaml-plugin/1.0.0/manifest.json')).toEqual(manifest);
  });
});

describe('when a version declares permissions, resources and an OCI artifact', () => {
  const hex = 'ab'.repeat(32);
  const oci = { reference: 'registry.example:5000/acme/demo-plugin:1.0.0', digest: `sha256:${hex}` };
  const manifest = validManifest({
    permissions: ['network_client', 'filesystem_read'],
    resources: { timeout_seconds: 30, max_memory_mb: 256 },
    installation: {
      artifacts: [{ os: 'linux', arch: 'arm64', oci, sha256: `sha256:${hex}`, size_bytes: 42 }],
    },
  });

  it('records them in the plugin document (permissions sorted) and keeps oci as is in the manifest', async () => {
    const registry = await makeRegistry();
    const [outcome] = await publish(registry, await makeBundle({ manifest }));
    expect(outcome?.status).toBe('accepted');
    expect(outcome?.urls?.artifacts).toEqual([`oci://registry.example:5000/acme/demo-plugin@sha256:${hex}`]);
    const doc = json<PluginDocument>(registry.site, 'plugins/demo-plugin/index.json');
    const [version] = doc.versions;
    expect(version?.permissions).toEqual(['filesystem_read', 'network_client']);
    expect(version?.resources).toEqual({ max_memory_mb: 256, timeout_seconds: 30 });
    expect(Object.keys(version?.resources ?? {})).toEqual(['max_memory_mb', 'timeout_seconds']);
    expect(version?.artifacts).toEqual([
      {
        os: 'linux',
        arch: 'arm64',
        url: `oci://registry.example:5000/acme/demo-plugin@sha256:${hex}`,
        sha256: hex,
        size_bytes: 42,
        hosted: false,
        oci,
      },
    ]);
    const published = json<{ installation: { artifacts: unknown[] } }>(
      registry.site,
      'plugins/demo-plugin/1.0.0/manifest.json',
    );
    expect(published.installation.artifacts[0]).toMatchObject({ oci });
  });

  it('lists the plugin in falcoctl/index.yaml, re-rendered at each publish and bound by the snapshot', async () => {
    const registry = await makeRegistry();
    const meta = {
      tags: ['billing'],
      license: 'MIT',
      homepage: 'https://lens.example.com',
      repository: 'https://git.example.com/acme/demo-plugin',
    };
    const contacts = {
      maintainers: [{ name: 'Acme Costs', email: 'costs@example.com', url: 'https://acme.example' }],
    };
    await publish(registry, await makeBundle({ manifest: validManifest({ metadata: meta, contacts }) }));
    const falcoctl = () =>
      YAML.parse(new TextDecoder().decode(registry.site.objects.get('falcoctl/index.yaml')?.body)) as unknown;
    expect(falcoctl()).toEqual([
      {
        name: 'demo-plugin',
        type: 'plugin',
        registry: 'registry.example.com',
        description: 'A plugin used in tests',
        keywords: ['billing', 'actual_cost'],
        license: 'MIT',
        home: 'https://lens.example.com',
        sources: ['https://git.example.com/acme/demo-plugin'],
        maintainers: [{ name: 'Acme Costs', email: 'costs@example.com' }],
      },
    ]);

    const [outcome] = await publish(
      registry,
      await makeBundle({ manifest: { ...manifest, version: '1.1.0', metadata: meta } }),
      await makeBundle({
        manifest: validManifest({ name: 'another', description: undefined, metadata: {} }),
      }),
    );
    expect(outcome?.status).toBe('accepted');
    expect(falcoctl()).toEqual([
      { name: 'another', type: 'plugin', registry: 'registry.example.com', keywords: ['actual_cost'] },
      expect.objectContaining({
        name: 'demo-plugin',
        registry: 'registry.example:5000',
        repository: 'acme/demo-plugin',
      }),
    ]);
    const snapshot = json<SnapshotDocument>(registry.site, 'snapshot.json');
    const body = registry.site.objects.get('falcoctl/index.yaml')?.body as Uint8Array;
    expect(snapshot.documents['falcoctl/index.yaml']).toEqual({
      sha256: sha256(body),
      size: body.byteLength,
    });
    expect(registry.site.objects.get('falcoctl/index.yaml')?.contentType).toBe('application/yaml');
  });

  it('leaves both out of a version that declares neither', async () => {
    const registry = await makeRegistry();
    await publish(
      registry,
      await makeBundle({ manifest: validManifest({ permissions: [], resources: {} }) }),
    );
    const [version] = json<PluginDocument>(registry.site, 'plugins/demo-plugin/index.json').versions;
    expect(version).toBeDefined();
    expect(version).not.toHaveProperty('permissions');
    expect(version).not.toHaveProperty('resources');
  });
});

describe("when a version declares the spec's security_scan_results", () => {
  it("records it as the version's security_scan, and keeps it when later versions are published", async () => {
    const registry = await makeRegistry();
    const scanned = {
      status: 'vulnerable',
      vulnerabilities: [{ id: 'CVE-2026-1234', severity: 'critical', summary: 'remote code execution' }],
      last_scan: '2026-10-30T12:00:00Z',
      scan_version: 'trivy 0.60.0',
    };
    const [first] = await publish(
      registry,
      await makeBundle({ manifest: validManifest({ security_scan_results: scanned }) }),
    );
    expect(first?.status).toBe('accepted');
    const [second] = await publish(
      registry,
      await makeBundle({
        manifest: validManifest({
          version: '1.1.0',
          security_scan_results: { status: 'secure', vulnerabilities: [] },
        }),
      }),
      await makeBundle({ manifest: validManifest({ version: '1.2.0' }) }),
    );
    expect(second?.status).toBe('accepted');
    const doc = json<PluginDocument>(registry.site, 'plugins/demo-plugin/index.json');
    const scans = Object.fromEntries(doc.versions.map((v) => [v.version, v.security_scan]));
    expect(scans).toEqual({
      '1.2.0': undefined,
      '1.1.0': { status: 'secure', vulnerabilities: [] },
      '1.0.0': scanned,
    });
    expect(doc.versions.find((v) => v.version === '1.2.0')).not.toHaveProperty('security_scan');
  });

  it('rejects a scan block with an unknown field, by its pointer, and publishes nothing', async () => {
    const registry = await makeRegistry();
    const [outcome] = await publish(
      registry,
      await makeBundle({
        manifest: validManifest({
          security_scan_results: { status: 'unknown', vulnerabilities: [], scanner: 'x' },
        }),
      }),
    );
    expect(outcome?.status).toBe('rejected');
    expect(outcome?.problems.map((p) => `${p.code} ${p.path}`)).toEqual([
      'MANIFEST_UNKNOWN_FIELD /security_scan_results/scanner',
    ]);
    expect(registry.site.objects.has('plugins/demo-plugin/index.json')).toBe(false);
  });
});

describe('when versions accumulate', () => {
  it('resolves latest and channels, newest first', async () => {
    const registry = await makeRegistry();
    const versions = ['1.0.0', '1.2.0', '2.0.0-beta.1', '1.10.0', '2.0.0-beta.2'];
    await publish(
      registry,
      ...(await Promise.all(versions.map((version) => makeBundle({ manifest: validManifest({ version }) })))),
    );
    const doc = json<PluginDocument>(registry.site, 'plugins/demo-plugin/index.json');
    expect(doc.versions.map((v) => v.version)).toEqual([
      '2.0.0-beta.2',
      '2.0.0-beta.1',
      '1.10.0',
      '1.2.0',
      '1.0.0',
    ]);
    expect(doc.latest_version).toBe('1.10.0');
    expect(doc.channels).toEqual({ beta: '2.0.0-beta.2' });
    expect(doc.versions.find((v) => v.version === '2.0.0-beta.1')?.prerelease).toBe(true);
  });

  it('takes display fields from the latest stable version, not from an older one published later', async () => {
    const registry = await makeRegistry();
    await publish(
      registry,
      await makeBundle({ manifest: validManifest({ version: '2.0.0', description: 'new' }) }),
    );
    await publish(
      registry,
      await makeBundle({ manifest: validManifest({ version: '1.5.0', description: 'old backport' }) }),
    );
    const doc = json<PluginDocument>(registry.site, 'plugins/demo-plugin/index.json');
    expect(doc.description).toBe('new');
    expect(doc.latest_version).toBe('2.0.0');
  });
});

/**
 * Runs a batch that dies as it moves its uploads out of incoming/, after their outcomes are recorded; the
 * next run of the registry's store moves them.
 */
async function diesMovingTheUpload(registry: TestRegistry, keys: string[]): Promise<void> {
  const remove = registry.intake.delete.bind(registry.intake);
  registry.intake.delete = async (key, options) => {
    if (key.startsWith('incoming/')) throw new StoreError('STORE_IO', key, 'the run died');
    return remove(key, options);
  };
  const died = processSubmissions(registry.context, keys);
  await expect(died).rejects.toBeInstanceOf(StoreError);
  await expect(died).rejects.toMatchObject({ code: 'STORE_IO', message: 'the run died' });
  registry.intake.delete = remove;
}

describe('when the same submission comes again', () => {
  it('is an idempotent success and changes nothing published', async () => {
    const registry = await makeRegistry();
    const bundle = await makeBundle();
    await publish(registry, bundle);
    const before = registry.site.fingerprint();
    const [again] = await publish(registry, bundle);
    expect(again?.status).toBe('already-published');
    expect(registry.site.fingerprint()).toEqual(before);
  });

  it('keeps the acceptance a run recorded before it died, short of moving the upload', async () => {
    const registry = await makeRegistry();
    const keys = await registry.submit(await makeBundle());
    // The run dies as it moves the upload out of incoming/, after its outcome is recorded.
    await diesMovingTheUpload(registry, keys);
    const statusKeys = [...registry.intake.objects.keys()].filter((key) => key.startsWith('status/'));
    expect(statusKeys).toHaveLength(1);
    const recorded = JSON.parse(
      new TextDecoder().decode(registry.intake.objects.get(statusKeys[0] as string)?.body),
    );
    expect(recorded).toMatchObject({ status: 'accepted', generation: 1 });
    // The retry finds the version published by this very upload: its record stands (it said
    // already-published, without the generation and log entry that published it).
    const retried = await processSubmissions(registry.context, keys);
    expect(retried.outcomes).toEqual([recorded]);
    expect(
      JSON.parse(new TextDecoder().decode(registry.intake.objects.get(statusKeys[0] as string)?.body)),
    ).toEqual(recorded);
    expect([...registry.intake.objects.keys()].filter((key) => key.startsWith('incoming/'))).toEqual([]);
  });

  it('records again a record of that acceptance that does not parse (changed by hand)', async () => {
    const registry = await makeRegistry();
    const keys = await registry.submit(await makeBundle());
    await diesMovingTheUpload(registry, keys);
    const [statusKey] = [...registry.intake.objects.keys()].filter((key) => key.startsWith('status/'));
    await registry.intake.put(statusKey as string, encode('{ not json'), {
      contentType: 'application/json',
      cacheControl: 'private',
    });
    const retried = await processSubmissions(registry.context, keys);
    // Recorded again as the acceptance it was: the version is this upload's (its log entry, the generation).
    expect(retried.outcomes).toMatchObject([{ status: 'accepted', seq: 0, generation: 1 }]);
    const rewritten = JSON.parse(
      new TextDecoder().decode(registry.intake.objects.get(statusKey as string)?.body),
    );
    expect(rewritten).toEqual(retried.outcomes[0]);
    expect([...registry.intake.objects.keys()].filter((key) => key.startsWith('incoming/'))).toEqual([]);
  });

  it('accepts a re-signed bundle of the same manifest bytes as the same version', async () => {
    const registry = await makeRegistry();
    await publish(registry, await makeBundle());
    const [again] = await publish(registry, await makeBundle());
    expect(again?.status).toBe('already-published');
  });
});

describe('when submissions arrive as a batch', () => {
  it('rebuilds once: one new generation for the whole batch', async () => {
    const registry = await makeRegistry();
    const bundles = await Promise.all(
      Array.from({ length: 5 }, (_, i) => makeBundle({ manifest: validManifest({ name: `batch-${i}` }) })),
    );
    const keys = await registry.submit(...bundles);
    const result = await processSubmissions(registry.context, keys);
    expect(result.generation).toBe(1);
    expect(result.outcomes.map((o) => o.status)).toEqual(Array(5).fill('accepted'));
    expect(registry.site.writes.filter((k) => k === 'index.json')).toHaveLength(1);
    expect(registry.site.writes.filter((k) => k === 'snapshot.json')).toHaveLength(1);
  });

  it('writes the first accepted version while it still inspects later bundles of the batch', async () => {
    const registry = await makeRegistry();
    const names = ['first', 'second', 'third'];
    const bundles = await Promise.all(names.map((name) => makeBundle({ manifest: validManifest({ name }) })));
    const keys = await registry.submit(...bundles);
    // The last bundle's inspection reads its plugin's document: the site answers it once the first version's
    // manifest is written (or after 30 s, half the test's timeout, when the batch would write nothing before
    // inspecting all: the test then fails, never hangs). A second once, a loaded machine's judging outlasted.
    const site = registry.site;
    let firstWritten = (): void => undefined;
    const written = new Promise<void>((resolve) => {
      firstWritten = resolve;
    });
    let readAfterWrite: boolean | undefined;
    const { get, put } = { get: site.get.bind(site), put: site.put.bind(site) };
    site.get = async (key) => {
      if (key === 'plugins/third/index.json') {
        const timeout = new Promise<false>((resolve) => setTimeout(() => resolve(false), 30_000).unref());
        readAfterWrite = await Promise.race([written.then(() => true), timeout]);
      }
      return get(key);
    };
    site.put = async (key, body, options) => {
      await put(key, body, options);
      if (key === 'plugins/first/1.0.0/manifest.json') firstWritten();
    };

    const result = await processSubmissions(registry.context, keys);

    expect(readAfterWrite).toBe(true);
    expect(result.outcomes.map((o) => [o.plugin, o.status])).toEqual(names.map((n) => [n, 'accepted']));
  });

  it('names exactly the mutable keys it rewrote, for CDN invalidation, and never an immutable one', async () => {
    const registry = await makeRegistry();
    await publish(registry, await makeBundle());
    const result = await processSubmissions(
      registry.context,
      await registry.submit(await makeBundle({ manifest: validManifest({ version: '1.1.0' }) })),
    );
    const bin = binKey(binOf('demo-plugin'));
    expect(result.invalidate).toEqual(
      [
        'falcoctl/index.yaml',
        'falcoctl/index.yaml.asc',
        'falcoctl/index.yaml.br',
        'falcoctl/index.yaml.gz',
        // The home page lists its first plugins, with their latest versions.
        'index.html',
        'index.json',
        'index.json.asc',
        'index.json.br',
        'index.json.gz',
        'index.yaml',
        'index.yaml.asc',
        'index.yaml.br',
        'index.yaml.gz',
        // The log's last segment, which grows until it is full (then immutable).
        'log/000000.jsonl',
        'plugins/demo-plugin/index.html',
        'plugins/demo-plugin/index.json',
        'plugins/demo-plugin/index.json.asc',
        'search.json',
        'search.json.asc',
        'search.json.br',
        'search.json.gz',
        bin,
        `${bin}.asc`,
        'snapshot.json',
        'snapshot.json.asc',
        'snapshot.signed.json',
      ].sort(),
    );
    expect(result.invalidate.some((k) => k.includes('/1.1.0/'))).toBe(false);
  });

  it('rewrites only the changed plugin documents on a later publish', async () => {
    const registry = await makeRegistry();
    await publish(
      registry,
      ...(await Promise.all(
        ['a-one', 'b-two', 'c-three'].map((name) => makeBundle({ manifest: validManifest({ name }) })),
      )),
    );
    registry.site.writes.length = 0;
    await publish(
      registry,
      await makeBundle({ manifest: validManifest({ name: 'b-two', version: '1.1.0' }) }),
    );
    const pluginWrites = registry.site.writes
      .filter((k) => k.startsWith('plugins/'))
      .map((k) => k.split('/')[1]);
    expect(new Set(pluginWrites)).toEqual(new Set(['b-two']));
    const index = json<{ plugins: { name: string }[] }>(registry.site, 'index.json');
    expect(index.plugins.map((p) => p.name)).toEqual(['a-one', 'b-two', 'c-three']);
  });

  it('defers submissions past maxBatchBytes to the next batch, always taking at least one', async () => {
    const registry = await makeRegistry();
    const bundles = await Promise.all(
      ['a-one', 'b-two', 'c-three'].map((name) => makeBundle({ manifest: validManifest({ name }) })),
    );
    await registry.submit(...bundles);
    const context = { ...registry.context, maxBatchBytes: 1 };
    const first = await processSubmissions(context);
    expect(first.outcomes).toHaveLength(1);
    expect(first.leftInIncoming).toBe(2);
    const second = await processSubmissions(context);
    const third = await processSubmissions(context);
    expect([second.leftInIncoming, third.leftInIncoming]).toEqual([1, 0]);
    expect(json<{ plugins: unknown[] }>(registry.site, 'index.json').plugins).toHaveLength(3);
  });

  it('takes waiting uploads in upload order, so the earlier of two conflicting versions wins', async () => {
    const registry = await makeRegistry();
    const [late, early] = await registry.submit(
      await makeBundle({ manifest: validManifest({ description: 'a' }) }),
      await makeBundle({ manifest: validManifest({ description: 'b' }) }),
    );
    // Names say one order, upload times the other.
    for (const [key, at] of [
      [late, '2026-11-01T10:00:05Z'],
      [early, '2026-11-01T10:00:01Z'],
    ] as const) {
      const object = registry.intake.objects.get(key as string);
      if (object) registry.intake.objects.set(key as string, { ...object, lastModified: new Date(at) });
    }
    const result = await processSubmissions(registry.context);
    expect(result.outcomes.map((o) => [o.submission, o.status])).toEqual([
      [early, 'accepted'],
      [late, 'rejected'],
    ]);
  });

  it('accepts one and rejects another of the same version within a batch', async () => {
    const registry = await makeRegistry();
    const outcomes = await publish(
      registry,
      await makeBundle(),
      await makeBundle({ manifest: validManifest({ description: 'different bytes' }) }),
    );
    expect(outcomes.map((o) => o.status)).toEqual(['accepted', 'rejected']);
    expect(outcomes[1]?.problems.map((p) => p.code)).toEqual(['VERSION_EXISTS']);
  });

  it('leaves the published tree alone when every submission is rejected', async () => {
    const registry = await makeRegistry();
    await publish(registry, await makeBundle());
    const before = registry.site.fingerprint();
    const result = await processSubmissions(registry.context, await registry.submit(encode('garbage')));
    expect(result.generation).toBeNull();
    expect(registry.site.fingerprint()).toEqual(before);
    expect(result.outcomes[0]?.status).toBe('rejected');
  });
});

describe('when ownership is first-come', () => {
  it('lets the first key own a name and refuses another key', async () => {
    const registry = await makeRegistry();
    await publish(registry, await makeBundle());
    const intruder = await testKey('intruder');
    const [outcome] = await publish(
      registry,
      await makeBundle({ manifest: validManifest({ version: '9.9.9' }), signer: intruder }),
    );
    expect(outcome?.problems.map((p) => p.code)).toEqual(['PUBLISHER_NOT_OWNER']);
    const doc = json<PluginDocument>(registry.site, 'plugins/demo-plugin/index.json');
    expect(doc.owners).toEqual([(await testKey('publisher')).fingerprint]);
  });
});

describe('when the registry is restricted', () => {
  it('accepts a listed key for its names only', async () => {
    const publisher = await testKey('publisher');
    const registry = await makeRegistry({
      policy: 'restricted',
      publishers: [{ fingerprint: publisher.fingerprint, names: ['acme-*'], key: publisher.publicKey }],
    });
    const outcomes = await publish(
      registry,
      await makeBundle({ manifest: validManifest({ name: 'acme-costs' }) }),
      await makeBundle({ manifest: validManifest({ name: 'other-costs' }) }),
      await makeBundle({
        manifest: validManifest({ name: 'acme-stranger' }),
        signer: await testKey('stranger'),
      }),
    );
    expect(outcomes.map((o) => o.status)).toEqual(['accepted', 'rejected', 'rejected']);
    expect(outcomes[1]?.problems.map((p) => p.code)).toEqual(['PUBLISHER_NAME_NOT_ALLOWED']);
    expect(outcomes[2]?.problems.map((p) => p.code)).toEqual(['PUBLISHER_UNTRUSTED']);
  });
});

describe('when uploads have names no key of the registry could have', () => {
  it('publishes each like any other, under a safe id, and ignores folder markers', async () => {
    const registry = await makeRegistry();
    const names = [
      'incoming/my plugin (1).tgz',
      'incoming/line\nbreak.tgz',
      'incoming/plügin-😀.tgz',
      'incoming/con.x.tgz',
      'incoming/.hidden.tgz',
      'incoming/a/../b.tgz',
    ];
    for (const [i, name] of names.entries())
      registry.intake.objects.set(name, {
        ...(await storedBundle(validManifest({ name: `odd-name-${i}` }))),
        key: name,
      });
    registry.intake.objects.set('incoming/folder/', {
      ...(await storedBundle(validManifest())),
      key: 'incoming/folder/',
      body: new Uint8Array(),
      size: 0,
    });
    const result = await processSubmissions(registry.context);
    expect(result.outcomes.map((o) => o.submission).sort()).toEqual([...names].sort());
    for (const outcome of result.outcomes) {
      expect(outcome.status).toBe('accepted');
      expect(isSafeKey(`status/${outcome.id}.json`)).toBe(true);
      expect(registry.intake.objects.has(`status/${outcome.id}.json`)).toBe(true);
      expect(registry.intake.objects.has(`processed/${outcome.id}.tgz`)).toBe(true);
    }
    expect([...registry.intake.objects.keys()].filter((k) => k.startsWith('incoming/'))).toEqual([
      'incoming/folder/',
    ]);
  });
});

/** A bundle as the memory store holds it, to be placed under a key no `put` would take. */
async function storedBundle(manifest: Record<string, unknown>) {
  const store = new MemoryStore();
  await store.put('x', await makeBundle({ manifest }), {
    contentType: 'application/gzip',
    cacheControl: 'no-store',
  });
  return store.objects.get('x') as StoredObject;
}

describe('when an upload is larger than the bundle limit', () => {
  it('rejects it by its listed size without reading it whole, moves it intact, and publishes the rest', async () => {
    const registry = await makeRegistry();
    const huge = new Uint8Array(64 * 1024).map((_, i) => (i * 7919) % 251);
    const [hugeKey, goodKey] = await registry.submit(huge, await makeBundle());
    const readWhole: string[] = [];
    const realGet = registry.intake.get.bind(registry.intake);
    registry.intake.get = async (k) => {
      readWhole.push(k);
      return realGet(k);
    };
    const context = { ...registry.context, bundleLimits: { maxCompressedBytes: 32 * 1024 } };
    const result = await processSubmissions(context);

    expect(result.outcomes.map((o) => [o.submission, o.status])).toEqual([
      [hugeKey, 'rejected'],
      [goodKey, 'accepted'],
    ]);
    const rejected = result.outcomes[0] as SubmissionOutcome;
    expect(rejected.problems).toEqual([
      expect.objectContaining({
        code: 'BUNDLE_TOO_LARGE',
        path: 'bundle:',
        expected: 'at most 32768 bytes',
        found: '65536 bytes',
      }),
    ]);
    expect(rejected.id).toBe(submissionIdFromBytes(hugeKey as string, huge));
    expect(rejected.submission_sha256).toBe(sha256(huge));
    expect(readWhole).not.toContain(hugeKey);
    expect(registry.intake.objects.get(`rejected/${rejected.id}.tgz`)?.body).toEqual(huge);
    expect(registry.intake.objects.has(`status/${rejected.id}.json`)).toBe(true);
    expect([...registry.intake.objects.keys()].filter((k) => k.startsWith('incoming/'))).toEqual([]);
  });
});

describe('when the same bytes are uploaded under two keys', () => {
  it('records an outcome for each, and keeps each upload', async () => {
    const registry = await makeRegistry();
    const bundle = await makeBundle();
    const options = { contentType: 'application/gzip', cacheControl: 'no-store' };
    await registry.intake.put('incoming/team-a/x.tgz', bundle, options);
    await registry.intake.put('incoming/team-b/x.tgz', bundle, options);

    const result = await processSubmissions(registry.context);

    expect(result.outcomes.map((o) => [o.submission, o.status])).toEqual([
      ['incoming/team-a/x.tgz', 'accepted'],
      ['incoming/team-b/x.tgz', 'already-published'],
    ]);
    const [a, b] = result.outcomes as [SubmissionOutcome, SubmissionOutcome];
    expect(a.id).not.toBe(b.id);
    for (const outcome of [a, b]) {
      expect(json<SubmissionOutcome>(registry.intake, `status/${outcome.id}.json`).submission).toBe(
        outcome.submission,
      );
      expect(registry.intake.objects.get(`processed/${outcome.id}.tgz`)?.body).toEqual(bundle);
    }
  });
});

describe('when an upload is replaced under its name while a batch takes it', () => {
  it.each([
    ['read whole', undefined],
    ['too large to read', { maxCompressedBytes: 32 * 1024 }],
  ])(
    'records and moves the one taken, and leaves the newer for the next batch (%s)',
    async (_, bundleLimits) => {
      const registry = await makeRegistry();
      const taken = bundleLimits
        ? new Uint8Array(64 * 1024).map((_, i) => (i * 7919) % 251)
        : await makeBundle();
      const [key] = (await registry.submit(taken)) as [string];
      const newer = await makeBundle({ manifest: validManifest({ version: '2.0.0' }) });
      // Put under the same name once the batch has recorded the outcome of the one it took, before it moves it.
      const put = registry.intake.put.bind(registry.intake);
      registry.intake.put = async (k, body, options) => {
        await put(k, body, options);
        if (k.startsWith('status/'))
          await put(key, newer, { contentType: 'application/gzip', cacheControl: 'no-store' });
      };
      const result = await processSubmissions(
        bundleLimits ? { ...registry.context, bundleLimits } : registry.context,
      );
      registry.intake.put = put;

      const [outcome] = result.outcomes as [SubmissionOutcome];
      expect(outcome.submission_sha256).toBe(sha256(taken));
      // One too large was never held: its bytes went with the replacement (its outcome stands). One read was.
      if (bundleLimits) expect(registry.intake.objects.has(`rejected/${outcome.id}.tgz`)).toBe(false);
      else expect(registry.intake.objects.get(`processed/${outcome.id}.tgz`)?.body).toEqual(taken);
      expect(registry.intake.objects.get(key)?.body).toEqual(newer);
      const next = await processSubmissions(registry.context);
      expect(next.outcomes.map((o) => [o.submission, o.status, o.version, o.submission_sha256])).toEqual([
        [key, 'accepted', '2.0.0', sha256(newer)],
      ]);
      expect([...registry.intake.objects.keys()].filter((k) => k.startsWith('incoming/'))).toEqual([]);
    },
  );
});

describe('when checking a submission fails unexpectedly', () => {
  it('fails the batch on a storage error and keeps the submission for a retry', async () => {
    const registry = await makeRegistry();
    const [key] = await registry.submit(await makeBundle());
    registry.site.get = async (k) => {
      throw new StoreError('STORE_IO', k, 'disk on fire');
    };
    await expect(processSubmissions(registry.context, [key as string])).rejects.toMatchObject({
      code: 'STORE_IO',
    });
    expect(registry.intake.objects.has(key as string)).toBe(true);
  });

  it('rejects the one submission that breaks the checks, tells the operator why, and goes on', async () => {
    const registry = await makeRegistry();
    const realGet = registry.site.get.bind(registry.site);
    const broken = new TypeError("unexpected shape at '/srv/registry/site/plugins/poison/index.json'");
    registry.site.get = async (k) => {
      if (k === 'plugins/poison/index.json') throw broken;
      return realGet(k);
    };
    const failures: SubmissionFailure[] = [];
    const [poison, other] = await registry.submit(
      await makeBundle({ manifest: validManifest({ name: 'poison' }) }),
      await makeBundle(),
    );
    const { outcomes } = await processSubmissions(
      { ...registry.context, onSubmissionFailure: (f) => failures.push(f) },
      [poison as string, other as string],
    );
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'accepted']);
    // The outcome says what happened and what to do; the error's own words are the operator's.
    expect(outcomes[0]?.problems).toEqual([
      {
        code: 'SUBMISSION_UNREADABLE',
        path: 'bundle:',
        message: expect.stringMatching(/^the registry could not check this submission: .*operator's log/),
        expected: expect.stringContaining('please report this to the registry operator'),
      },
    ]);
    const recorded = new TextDecoder().decode(
      registry.intake.objects.get(`status/${outcomes[0]?.id}.json`)?.body,
    );
    expect(recorded).toContain('SUBMISSION_UNREADABLE'); // recorded: what it leaves out is checked on its text
    expect(recorded).not.toContain('unexpected shape');
    expect(recorded).not.toContain('/srv/registry');
    expect(failures).toEqual([
      { submission: poison, id: outcomes[0]?.id, code: 'SUBMISSION_UNREADABLE', error: broken },
    ]);
  });
});

describe('when recovering and maintaining', () => {
  it('a full rebuild reproduces the same documents and a higher generation', async () => {
    const registry = await makeRegistry();
    await publish(
      registry,
      await makeBundle(),
      await makeBundle({ manifest: validManifest({ name: 'second-one' }) }),
    );
    const index = json<{ plugins: unknown[] }>(registry.site, 'index.json');
    const result = await rebuildRegistry(registry.context);
    expect(result).toMatchObject({ generation: 2, plugins: 2 });
    expect(result.invalidate).toContain('index.json');
    expect(json<{ plugins: unknown[] }>(registry.site, 'index.json').plugins).toEqual(index.plugins);
  });

  it.each([
    [
      'a publish',
      (registry: TestRegistry) => registry.submit().then(() => processSubmissions(registry.context)),
    ],
    ['a refresh', (registry: TestRegistry) => refreshSnapshot(registry.context)],
    ['a flush', (registry: TestRegistry) => flushIndexes(registry.context)],
  ])('rebuilds a catalog of an older format before %s renders from it', async (_, act) => {
    const registry = await makeRegistry();
    await publish(
      registry,
      await makeBundle(),
      await makeBundle({ manifest: validManifest({ name: 'second-one' }) }),
    );
    // What a registry published before the catalog gained the falcoctl entry holds.
    const meta = registry.intake.objects.get('state/catalog/meta.tsv') as StoredObject;
    const older = new TextDecoder()
      .decode(meta.body)
      .replace(/^plugindex-catalog \d+/, 'plugindex-catalog 3');
    registry.intake.objects.set('state/catalog/meta.tsv', { ...meta, body: encode(older) });
    const before = json<SnapshotDocument>(registry.site, 'snapshot.json').generation;

    await act(registry);

    const names = (key: string) =>
      (YAML.parse(new TextDecoder().decode(registry.site.objects.get(key)?.body)) as { name: string }[]).map(
        (e) => e.name,
      );
    expect(names('falcoctl/index.yaml')).toEqual(['demo-plugin', 'second-one']);
    expect(
      json<{ plugins: { name: string }[] }>(registry.site, 'index.json').plugins.map((p) => p.name),
    ).toEqual(['demo-plugin', 'second-one']);
    expect(json<SnapshotDocument>(registry.site, 'snapshot.json').generation).toBeGreaterThan(before);
    const upgraded = new TextDecoder().decode(registry.intake.objects.get('state/catalog/meta.tsv')?.body);
    expect(upgraded.split('\n')[0]).toBe('plugindex-catalog 8');
    // Format 7's rows carry their owners (the search's look-alike flags), every row rebuilt, none left without.
    expect(
      json<{ plugins: { owners?: string[] }[] }>(registry.site, 'search.json').plugins.map(
        (p) => p.owners?.length,
      ),
    ).toEqual([1, 1]);
    const later = await publish(
      registry,
      await makeBundle({ manifest: validManifest({ name: 'third-one' }) }),
    );
    expect(later[0]?.status).toBe('accepted');
    expect(names('falcoctl/index.yaml')).toEqual(['demo-plugin', 'second-one', 'third-one']);
  });

  it('refreshing the snapshot extends its expiry and bumps the generation only', async () => {
    const registry = await makeRegistry();
    await publish(registry, await makeBundle());
    const before = json<SnapshotDocument>(registry.site, 'snapshot.json');
    const { generation, invalidate } = await refreshSnapshot(registry.context);
    expect(invalidate).toEqual(['snapshot.json', 'snapshot.json.asc', 'snapshot.signed.json']);
    const after = json<SnapshotDocument>(registry.site, 'snapshot.json');
    expect(generation).toBe(before.generation + 1);
    expect(after.documents).toEqual(before.documents);
    expect(new Date(after.expires).getTime()).toBeGreaterThan(new Date(before.expires).getTime());
  });

  it('converges when a publish died after the plugin document but before the globals', async () => {
    const registry = await makeRegistry();
    const bundle = await makeBundle();
    const [key] = await registry.submit(bundle);
    // Simulate the crash: run the pipeline on a store that fails the first write of index.json.
    const site = registry.site;
    const realPut = site.put.bind(site);
    let failed = false;
    site.put = async (k, body, options) => {
      if (k === 'index.json' && !failed) {
        failed = true;
        throw new Error('injected failure');
      }
      return realPut(k, body, options);
    };
    await expect(processSubmissions(registry.context, [key as string])).rejects.toThrow('injected failure');
    expect(registry.intake.objects.has(key as string)).toBe(true); // not lost: still waiting
    const [outcome] = (await processSubmissions(registry.context)).outcomes;
    // The version the retry finds published is this upload's: accepted, in the generation that shows it.
    expect(outcome).toMatchObject({ status: 'accepted', seq: 0, generation: 1 });
    const index = json<{ plugins: { name: string }[] }>(site, 'index.json');
    expect(index.plugins.map((p) => p.name)).toEqual(['demo-plugin']);
    const bin = json<{ documents: Record<string, { sha256: string }> }>(site, binKey(binOf('demo-plugin')));
    const doc = site.objects.get('plugins/demo-plugin/index.json')?.body as Uint8Array;
    expect(bin.documents['plugins/demo-plugin/index.json']?.sha256).toBe(sha256(doc));
  });
});

describe('when a caller times a batch', () => {
  it('tells each step once it ends, in order, with what the step writes written', async () => {
    const registry = await makeRegistry();
    const keys = await registry.submit(await makeBundle());
    const has = (store: MemoryStore, key: string): boolean => store.objects.has(key);
    const seen: Record<string, boolean | string>[] = [];
    const onStep = (step: BatchStep): void => {
      seen.push({
        step,
        manifest: has(registry.site, 'plugins/demo-plugin/1.0.0/manifest.json'),
        log: has(registry.site, 'log/000000.jsonl'),
        document: has(registry.site, 'plugins/demo-plugin/index.json'),
        snapshot: has(registry.site, 'snapshot.json'),
        outcome: [...registry.intake.objects.keys()].some((key) => key.startsWith('status/')),
      });
    };

    // Its puts settle a timer later, as a real store's do: a step told before its writes settle is seen early.
    const site = withMethod(registry.site, 'put', (put) => async (...args) => {
      await new Promise((resolve) => setTimeout(resolve, 1));
      return put(...args);
    });

    const result = await processSubmissions({ ...registry.context, site, onStep }, keys);

    expect(result.generation).toBe(1);
    const written = (...names: string[]) =>
      Object.fromEntries(
        ['manifest', 'log', 'document', 'snapshot', 'outcome'].map((name) => [name, names.includes(name)]),
      );
    expect(seen).toEqual([
      { step: 'judged', ...written('manifest') },
      { step: 'rendered', ...written('manifest') },
      { step: 'logged', ...written('manifest', 'log') },
      // Signed, their writes begun: they end before the commit writes anything (`committed`).
      { step: 'plugin-documents', ...written('manifest', 'log') },
      { step: 'committed', ...written('manifest', 'log', 'document', 'snapshot') },
      { step: 'outcomes', ...written('manifest', 'log', 'document', 'snapshot', 'outcome') },
    ]);
  });
});
