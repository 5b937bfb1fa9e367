/**
 * `plugindex verify` as a client behind a CDN: every document by the digest that names it (`?v=<sha256>`),
 * the snapshot pair fetched together and again when a publish came between them, and the transparency log
 * checked whole (and, with `--state`, against the head seen last time). Real HTTP, the local
 * server over the in-memory site of a real pipeline.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createRegistryServer, listenRegistryServer } from '../../cli/local/server.ts';
import { verifyRegistry } from '../../cli/verify.ts';
import { ClientError } from '../../client/errors.ts';
import { createHttpFetcher, type Fetcher } from '../../client/fetcher.ts';
import { parseRegistryConfig } from '../../index-builder/config.ts';
import { sha256Hex } from '../../index-builder/digest.ts';
import { TrustError } from '../../index-builder/errors.ts';
import { CONTENT_ENCODINGS, encodedVariantKey } from '../../index-builder/layout.ts';
import type { LogHead, PluginDocument, SnapshotDocument, VersionRecord } from '../../index-builder/model.ts';
import {
  type PipelineContext,
  processSubmissions,
  rebuildRegistry,
} from '../../index-builder/pipeline/index.ts';
import { createSigner, type KeyPair } from '../../index-builder/signing.ts';
import type { Store, StoredObject } from '../../index-builder/store.ts';
import { submitAction } from '../support/actions.ts';
import {
  encode,
  makeBundle,
  makeRegistry,
  type TestRegistry,
  testKey,
  validManifest,
} from '../support/fixtures.ts';
import {
  alterLine,
  appendLog,
  claimLogLength,
  rewriteLog,
  segmentLines,
  serveSegment,
  signHistory,
} from '../support/lifecycle.ts';
import { MemoryStore } from '../support/memory-store.ts';
import { publicPrimaryWithSecretSubkeys } from '../support/openpgp-packets.ts';

/** Within the snapshot lifetime of the test clock (which starts on 2026-11-01). */
const NOW = new Date('2026-11-02T00:00:00Z');
const site = new MemoryStore();
/** Keys whose next reads are served from these bytes instead: a stale object in some cache. */
const stale = new Map<string, Uint8Array[]>();
const served: Store = {
  get: (key) => site.get(key),
  head: (key) => site.head(key),
  put: (key, body, options) => site.put(key, body, options),
  putStream: (key, body, options) => site.putStream(key, body, options),
  delete: (key, options) => site.delete(key, options),
  list: (prefix) => site.list(prefix),
  async getStream(key) {
    const body = stale.get(key)?.shift();
    const object = await site.getStream(key);
    if (!body || !object) return object;
    object.cancel();

    return {
      ...object,
      size: body.byteLength,
      body: (async function* () {
        yield body;
      })(),
      cancel: () => {},
    };
  },
};
const requests: string[] = [];
let base: string;
let close: () => Promise<void>;
let registry: TestRegistry;
let context: PipelineContext;
let operator: KeyPair;

beforeAll(async () => {
  const listening = await listenRegistryServer(
    createRegistryServer({ site: served, log: (line) => requests.push(line) }),
    0,
  );
  base = listening.url;
  close = listening.close;
  registry = await makeRegistry();
  operator = await testKey('operator');
  context = {
    ...registry.context,
    site,
    config: parseRegistryConfig({
      name: 'Verified',
      url: base,
      operators: [{ fingerprint: operator.fingerprint, key: operator.publicKey }],
    }),
  };
  await processSubmissions(
    context,
    await registry.submit(
      await makeBundle({ artifacts: [{ os: 'linux', arch: 'amd64', name: 'tool', body: TOOL }] }),
    ),
  );
});
afterAll(async () => {
  await close();
});

/** The client's run: the registry key pinned, within the snapshot's lifetime. */
/** Verifies the registry served at `base` by its own key, as at NOW; `options` add a fetcher or a state file. */
const verifyPinned = (options: Pick<Parameters<typeof verifyRegistry>[0], 'fetcher' | 'stateFile'> = {}) =>
  verifyRegistry({ url: base, pinnedKey: registry.registryKey.publicKey, now: NOW, ...options });
const TOOL = encode('#!/bin/sh\necho tool\n');
const json = <T>(key: string): T => JSON.parse(new TextDecoder().decode(site.objects.get(key)?.body)) as T;

describe('when a client verifies the registry', () => {
  it('fetches each document as <path>?v=<its sha256>, and the snapshot pair past every cache', async () => {
    requests.length = 0;
    const report = await verifyPinned();

    expect(report).toMatchObject({ plugins: 1, manifests: 1, artifacts: 1, generation: 1 });
    const snapshot = json<SnapshotDocument>('snapshot.json');
    for (const [path, digest] of Object.entries(snapshot.documents)) {
      expect(requests).toContain(`GET /${path}?v=${digest.sha256} 200`);
    }
    const bin = Object.keys(snapshot.documents).find((p) => p.startsWith('snapshot/bins/')) as string;
    const listed = json<{ documents: Record<string, { sha256: string }> }>(bin).documents;
    const plugin = listed['plugins/demo-plugin/index.json']?.sha256;
    expect(requests).toContain(`GET /plugins/demo-plugin/index.json?v=${plugin} 200`);
    const pair = requests.filter((r) => r.startsWith('GET /snapshot.json'));
    expect(pair).toEqual([
      expect.stringMatching(/^GET \/snapshot\.json\?v=[0-9a-f]{24} 200$/),
      expect.stringMatching(/^GET \/snapshot\.json\.asc\?v=[0-9a-f]{24} 200$/),
    ]);
  });

  it('asks for the snapshot with a random ?v= nonce, not one the clock gives that anyone could ask for first', async () => {
    // Prepare: two runs within one millisecond of the clock, as anyone who pre-filled an edge would aim for.
    const frozen = Date.now();
    const clock = vi.spyOn(Date, 'now').mockReturnValue(frozen);
    requests.length = 0;

    // Act
    try {
      await verifyPinned();
      await verifyPinned();
    } finally {
      clock.mockRestore();
    }

    // Assess: each read of the snapshot its own random nonce (client/fetcher.ts `pastCaches`).
    const asked = requests.filter((r) => /^GET \/snapshot\.(json|json\.asc|signed\.json)\?/.test(r));
    expect(asked).toHaveLength(6);
    for (const request of asked) expect(request).toMatch(/\?v=[0-9a-f]{24} 200$/);
    expect(new Set(asked.map((r) => r.match(/\?v=([0-9a-f]+)/)?.[1])).size).toBe(6);
  });

  it('fetches the pair again when its signature comes from another publish, and then succeeds', async () => {
    const before = site.objects.get('snapshot.json.asc')?.body as Uint8Array;
    await processSubmissions(
      context,
      await registry.submit(await makeBundle({ manifest: validManifest({ version: '1.1.0' }) })),
    );
    stale.set('snapshot.json.asc', [before]);
    requests.length = 0;

    const report = await verifyPinned();

    expect(report.generation).toBe(2);
    expect(requests.filter((r) => r.startsWith('GET /snapshot.json.asc'))).toHaveLength(2);
  });

  it('gives up with SNAPSHOT_BAD_SIGNATURE when the signature never matches', async () => {
    const wrong = site.objects.get('index.json.asc')?.body as Uint8Array;
    stale.set('snapshot.json.asc', [wrong, wrong, wrong, wrong]);

    const error = await verifyPinned().catch((e: unknown) => e);

    expect(error).toBeInstanceOf(TrustError);
    expect(error).toMatchObject({ code: 'SNAPSHOT_BAD_SIGNATURE' });
    expect(stale.get('snapshot.json.asc')).toHaveLength(1); // three attempts, then no more
  });

  it("fetches a manifest's signature by the digest of the one its plugin document carries, and refuses another", async () => {
    // A key rotation signs every manifest again: asked for as `?v=<manifest sha256>`, the new signature had
    // the old one's cache entry, and a CDN's copy by the retired key was what the registry was held to.
    const doc = json<PluginDocument>('plugins/demo-plugin/index.json');
    const version = doc.versions[0] as VersionRecord;
    const path = `plugins/demo-plugin/${version.version}/manifest.json.asc`;
    requests.length = 0;

    await verifyPinned();

    expect(requests).toContain(`GET /${path}?v=${sha256Hex(version.manifest_signature as string)} 200`);
    // A signature other than the document's (a cache's copy by a retired key) is refused, not taken.
    stale.set(path, [site.objects.get('index.json.asc')?.body as Uint8Array]);
    await expect(verifyPinned()).rejects.toMatchObject({ name: 'TrustError', code: 'DOCUMENT_MISMATCH' });
    stale.delete(path);
  });
});

describe('when verifyRegistry is given a URL registry add refuses', () => {
  it('refuses the URL or mirror (REGISTRY_URL_INVALID) before reading anything, never naming its credentials', async () => {
    const withCredentials = base.replace('http://', 'http://user:s3cret@');
    for (const asked of [
      { url: withCredentials },
      { url: base, mirror: withCredentials },
      { url: 'not-a-url', mirror: base },
    ]) {
      const error = await verifyRegistry({
        ...asked,
        pinnedKey: registry.registryKey.publicKey,
        now: NOW,
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ClientError);
      expect(error).toMatchObject({ code: 'REGISTRY_URL_INVALID' });
      expect((error as Error).message).not.toContain('s3cret');
    }
  });
});

describe('when the key to verify by holds secret key material', () => {
  const forms = [
    ['its secret key', async (secret: string) => secret],
    [
      'its public key holding its secret subkey',
      async (secret: string) => (await publicPrimaryWithSecretSubkeys(secret)).armored,
    ],
  ] as const;

  it.each(forms)(
    'refuses %s given as pinnedKey (SECRET_KEY_GIVEN), as the CLI refuses such a --key file',
    async (_, form) => {
      const error = await verifyRegistry({
        url: base,
        pinnedKey: await form(registry.registryKey.secretKey),
        now: NOW,
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ClientError);
      expect(error).toMatchObject({
        code: 'SECRET_KEY_GIVEN',
        message: expect.stringContaining(registry.registryKey.fingerprint),
      });
    },
  );

  it.each(forms)(
    'refuses a --state file keeping the key as %s (TRUST_STATE_INVALID), and leaves the file',
    async (_, form) => {
      const dir = await mkdtemp(join(tmpdir(), 'plugindex-verify-secret-state-'));
      const stateFile = join(dir, 'state.json');
      try {
        await verifyPinned({ stateFile });
        const state = JSON.parse(await readFile(stateFile, 'utf8'));
        const tampered = JSON.stringify({ ...state, key: await form(registry.registryKey.secretKey) });
        await writeFile(stateFile, tampered);
        const error = await verifyRegistry({ url: base, stateFile, now: NOW }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(ClientError);
        expect(error).toMatchObject({
          code: 'TRUST_STATE_INVALID',
          message: expect.stringContaining(
            `${stateFile}#/key: key ${registry.registryKey.fingerprint} is given with its secret key material`,
          ),
        });
        expect(await readFile(stateFile, 'utf8')).toBe(tampered);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  );
});

describe('when snapshot.signed.json disagrees with the snapshot.json pair', () => {
  it('refuses the registry with SNAPSHOT_BAD_SIGNATURE (installing clients would read another snapshot)', async () => {
    const envelope = site.objects.get('snapshot.signed.json') as StoredObject;
    const parsed = JSON.parse(new TextDecoder().decode(envelope.body)) as { snapshot: string };
    const edited = encode(
      JSON.stringify({ ...parsed, snapshot: parsed.snapshot.replace('"generation": ', '"generation": 7') }),
    );
    site.objects.set('snapshot.signed.json', { ...envelope, body: edited, size: edited.byteLength });
    try {
      await expect(verifyPinned()).rejects.toMatchObject({
        name: 'TrustError',
        code: 'SNAPSHOT_BAD_SIGNATURE',
      });
    } finally {
      site.objects.set('snapshot.signed.json', envelope);
    }
    await expect(verifyPinned()).resolves.toMatchObject({ plugins: 1 });
  });
});

describe('when an encoded variant of an index document holds other bytes', () => {
  // Browsers, falcoctl and every spec client are sent a variant by their Accept-Encoding and check no
  // digest: one that decodes to other bytes than the document the snapshot binds is the registry's defect
  // even where the document itself is intact. The client asks for `br, gzip`, so brotli alone was checked.
  it.each(CONTENT_ENCODINGS)(
    'refuses the registry for a %s variant (DOCUMENT_MISMATCH)',
    async (encoding) => {
      const key = encodedVariantKey('index.json', encoding);
      const original = site.objects.get(key) as StoredObject;
      const other = encode('{"plugins":[]}');
      const body = encoding === 'br' ? brotliCompressSync(other) : gzipSync(other);
      // Claiming the document's digest (tampered bytes under the metadata that was there): the local
      // server holds back one that records another, or none and decodes to other bytes (variant-check.ts),
      // as the edge never does; verify checks the bytes, not the claim.
      const document = site.objects.get('index.json') as StoredObject;
      const decodedSha256 = sha256Hex(document.body);
      site.objects.set(key, {
        ...original,
        body,
        size: body.length,
        contentEncoding: encoding,
        decodedSha256,
      });
      try {
        const error = await verifyPinned().catch((e: unknown) => e);
        expect(error).toMatchObject({ name: 'TrustError', code: 'DOCUMENT_MISMATCH' });
        expect((error as Error).message).toContain(key);
      } finally {
        site.objects.set(key, original);
      }
      await expect(verifyPinned()).resolves.toMatchObject({ plugins: 1, variants: 8 });
    },
  );
});

describe('when an edge answers 404 for an encoded variant', () => {
  it('refuses the registry with FETCH_NOT_FOUND naming the variant, not the document', async () => {
    // Prepare: the client's own fetcher, but for gzip of index.json the 404 CloudFront gives a registry
    // published before variants (its routing function sends the request to index.json.gz unlooked): a mock
    // of the edge, since the local server falls back to the document itself.
    const real = createHttpFetcher({ env: {} });
    const fetcher: Fetcher = {
      download: (endpoint, request) => real.download(endpoint, request),
      ociBlob: (request) => real.ociBlob(request),
      ociManifest: (request) => real.ociManifest(request),
      list: (endpoint, path) => real.list(endpoint, path),
      close: () => real.close(),
      document: (endpoint, request) =>
        request.path === 'index.json' && request.coding === 'gzip'
          ? Promise.reject(new ClientError('FETCH_NOT_FOUND', `${endpoint.name}/index.json: 404`))
          : real.document(endpoint, request),
    };
    try {
      // Act
      const error = await verifyPinned({ fetcher }).catch((e: unknown) => e);

      // Assess
      expect(error).toMatchObject({ name: 'ClientError', code: 'FETCH_NOT_FOUND' });
      expect((error as Error).message).toContain(`${base}/index.json.gz`);
    } finally {
      await real.close();
    }
  });
});

describe('when a hosted artifact was replaced', () => {
  const artifactKey = 'plugins/demo-plugin/1.0.0/artifacts/linux-amd64/tool';
  const replace = async (body: Uint8Array) =>
    site.objects.set(artifactKey, {
      ...(site.objects.get(artifactKey) as StoredObject),
      body,
      size: body.length,
    });

  it.each([
    [
      'other bytes of the same size',
      () => encode('#!/bin/sh\necho evil\n'),
      'TrustError',
      'ARTIFACT_MISMATCH',
    ],
    // Cut off at the signed size, by the fetcher, before it is hashed.
    ['a longer file', () => encode(`${'#!/bin/sh\n'.repeat(1000)}`), 'ClientError', 'RESPONSE_TOO_LARGE'],
    ['a shorter file', () => encode('#!'), 'TrustError', 'ARTIFACT_MISMATCH'],
  ])('refuses the registry for %s', async (_, body, type, code) => {
    const original = site.objects.get(artifactKey) as StoredObject;
    await replace(body());
    try {
      const error = await verifyPinned().catch((e: unknown) => e);
      expect(error).toMatchObject({ name: type, code });
    } finally {
      site.objects.set(artifactKey, original);
    }
    await expect(verifyPinned()).resolves.toMatchObject({ artifacts: 1 });
  });
});

describe("when the registry's log is checked", () => {
  const lines = () => segmentLines(context);
  /** The head the signed snapshot vouches for. */
  const vouched = () => json<SnapshotDocument>('snapshot.json').log;

  it('checks every entry from the first to the signed head, fetched as ?v=<head>, and reports it', async () => {
    const head = await appendLog(context, 5);
    // Entries 0 and 1 are what the pipeline logged for the publishes above (1.0.0, then 1.1.0).
    expect(head.length).toBe(2 + 5);
    requests.length = 0;
    const report = await verifyPinned();
    expect(report.log).toEqual(head);
    expect(requests.filter((r) => r.startsWith('GET /log/'))).toEqual([
      `GET /log/000000.jsonl?v=${head.head} 200`,
    ]);
  });

  it.each([
    ['two entries swapped', (l: string[]) => [l[0], l[2], l[1], ...l.slice(3)], 'LOG_REORDERED'],
    [
      'an entry altered by one byte',
      (l: string[]) => [l[0], alterLine(l[1] as string), ...l.slice(2)],
      'LOG_ENTRY_ALTERED',
    ],
    ['the last entries cut off', (l: string[]) => l.slice(0, 3), 'LOG_TRUNCATED'],
    ['the first entry gone', (l: string[]) => l.slice(1), 'LOG_REORDERED'],
  ])('refuses a log with %s under the signed head', async (_what, edit, code) => {
    const original = await lines();
    await serveSegment(context, edit(original) as string[]);
    try {
      const error = await verifyPinned().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TrustError);
      expect(error).toMatchObject({ code });
    } finally {
      await serveSegment(context, original);
    }
    await expect(verifyPinned()).resolves.toMatchObject({ log: { length: 2 + 5, head: vouched()?.head } });
  });

  it('refuses promptly a signed head counting 2**40 entries, far more than are served (LOG_TRUNCATED)', async () => {
    const real = vouched() as LogHead;
    await claimLogLength(context, 2 ** 40);
    try {
      const error = await verifyPinned().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TrustError);
      expect(error).toMatchObject({ code: 'LOG_TRUNCATED' });
    } finally {
      // Back to the head it claimed before: a shorter one, which only the registry's key signs over it.
      await signHistory(context, real);
    }
    await expect(verifyPinned()).resolves.toMatchObject({ log: real });
  });

  it('skips the files of a version the operator removed (deleted on purpose), counting it', async () => {
    // Removed as the operator does it, logged: a removal the log does not record is reported
    // (test/client/log-consistency.test.ts).
    const removal = await submitAction(
      context.intake,
      { action: 'remove', plugin: 'demo-plugin', version: '1.1.0', reason: 'legal request' },
      operator,
      { registry: base },
    );
    await processSubmissions(context, [removal.key]);
    expect([...site.objects.keys()].filter((key) => key.startsWith('plugins/demo-plugin/1.1.0/'))).toEqual(
      [],
    );
    await expect(verifyPinned()).resolves.toMatchObject({ plugins: 1, manifests: 1, removed: 1 });
  });

  it('with --state, remembers the head and refuses a history the registry rewrote and re-signed (LOG_FORKED)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'plugindex-verify-state-'));
    const stateFile = join(dir, 'state.json');
    try {
      const first = await verifyPinned({ stateFile });
      expect(JSON.parse(await readFile(stateFile, 'utf8')).log).toEqual(first.log);
      const kept = await readFile(stateFile, 'utf8');
      // Longer than the history remembered, so only the chain, not the count, gives the rewrite away.
      await rewriteLog(context, first.log.length + 1);
      const error = await verifyPinned({ stateFile }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TrustError);
      expect(error).toMatchObject({ code: 'LOG_FORKED' });
      expect(await readFile(stateFile, 'utf8')).toBe(kept);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('when verify --url --state trusted the served key on first use, and the registry is then served signed by another key', () => {
  it('refuses it by the key it kept (SNAPSHOT_BAD_SIGNATURE), the state as it was', async () => {
    // Prepare: a registry served over HTTP through a store the attacker can swap (a mirror, or a bucket
    // written to), verified once with --state and no --key: its key is trusted on first use.
    const real = await makeRegistry();
    let shown: MemoryStore = real.site;
    const through: Store = {
      get: (key) => shown.get(key),
      head: (key) => shown.head(key),
      put: (key, body, options) => shown.put(key, body, options),
      putStream: (key, body, options) => shown.putStream(key, body, options),
      delete: (key, options) => shown.delete(key, options),
      list: (prefix) => shown.list(prefix),
      getStream: (key) => shown.getStream(key),
    };
    const listening = await listenRegistryServer(createRegistryServer({ site: through }), 0);
    const dir = await mkdtemp(join(tmpdir(), 'plugindex-verify-tofu-'));
    const stateFile = join(dir, 'state.json');
    try {
      const ctx: PipelineContext = {
        ...real.context,
        config: parseRegistryConfig({ name: 'Trusted once', url: listening.url }),
      };
      await processSubmissions(ctx, await real.submit(await makeBundle()));
      const first = await verifyRegistry({ url: listening.url, stateFile, now: NOW });
      expect(first.fingerprint).toBe(real.registryKey.fingerprint);
      const kept = await readFile(stateFile, 'utf8');

      // Act: the same registry (its log extended, a higher generation) re-signed whole by the attacker's
      // key, which keys/registry.asc now serves.
      const copy = (from: MemoryStore) => {
        const to = new MemoryStore();
        for (const [key, object] of from.objects) to.objects.set(key, object);
        return to;
      };
      const attacker = await testKey('stranger');
      const forged = copy(real.site);
      await rebuildRegistry(
        { ...ctx, site: forged, intake: copy(real.intake), signer: await createSigner(attacker.secretKey) },
        // As a rotation's rebuild signs (but with no rotation published): counting none.
        { resignManifests: true, keyRotations: 0 },
      );
      shown = forged;
      const error = await verifyRegistry({ url: listening.url, stateFile, now: NOW }).catch(
        (e: unknown) => e,
      );

      // Assess: refused by the key kept, and nothing of the forgery kept.
      expect(error).toBeInstanceOf(TrustError);
      expect(error).toMatchObject({ code: 'SNAPSHOT_BAD_SIGNATURE' });
      expect(await readFile(stateFile, 'utf8')).toBe(kept);
      // A state from before the key was kept (its fingerprint alone) pins it all the same.
      const { key: _key, ...fingerprintOnly } = JSON.parse(kept) as Record<string, unknown>;
      await writeFile(stateFile, JSON.stringify(fingerprintOnly));
      await expect(verifyRegistry({ url: listening.url, stateFile, now: NOW })).rejects.toMatchObject({
        name: 'TrustError',
        code: 'SNAPSHOT_WRONG_KEY',
      });
      await writeFile(stateFile, kept);
      // The registry served as it is again: verified by the key kept.
      shown = real.site;
      await expect(verifyRegistry({ url: listening.url, stateFile, now: NOW })).resolves.toMatchObject({
        fingerprint: real.registryKey.fingerprint,
        keyFrom: 'state',
      });
    } finally {
      await listening.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
