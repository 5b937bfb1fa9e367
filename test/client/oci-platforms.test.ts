/**
 * Musl and macOS universal builds kept in an OCI registry, whose signed `oci.reference` names a tag the
 * publisher pushed an image index under (a multi-platform manifest list, as `oras`/`docker buildx` push
 * one): an index entry says `os`, `architecture`, perhaps `variant`, and no C library (the image spec has no
 * such field) nor a universal arch, so a pick from it by the host's os/arch would give a musl host the glibc
 * build and a Mac the index's arm64 build. The client takes neither: it pulls the blob the signed manifest
 * pins (`oci.digest`, which the registry holds to the artifact's sha256) from the reference's repository,
 * and never reads the tag's index, so the build installed is the one `artifactServing` chose. A pinned blob
 * the repository does not hold fails FETCH_NOT_FOUND naming it, nothing placed; no other entry is taken.
 *
 * Real parts: the pipeline, the registry server, the distribution project's registry (docker-registry) and
 * the HTTP fetcher; the fetcher is wrapped (a spy, every call passed through) to record what was pulled.
 */
import { Buffer } from 'node:buffer';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRegistryServer, listenRegistryServer } from '../../cli/local/server.ts';
import { createClient, type PlugindexClient } from '../../client/client.ts';
import { createHttpFetcher, type Fetcher } from '../../client/fetcher.ts';
import { OCI_INDEX, OCI_MANIFEST } from '../../client/oci.ts';
import type { Platform } from '../../client/resolve.ts';
import { fixedClock } from '../../index-builder/clock.ts';
import { processSubmissions } from '../../index-builder/pipeline/index.ts';
import { encode, makeBundle, makeRegistry, type TestRegistry, validManifest } from '../support/fixtures.ts';
import {
  type OciRegistry,
  type Pushed,
  pushBlob,
  putManifest,
  sha256Digest,
  startOciRegistry,
} from '../support/oci-registry.ts';

const NAME = 'multi-tool';
const LOST = 'lost-tool';
const REPOSITORY = 'acme/multi-tool';
const LOST_REPOSITORY = 'acme/lost-tool';
const GLIBC = encode('#!/bin/sh\necho glibc\n');
const MUSL = encode('#!/bin/sh\necho musl\n');
const FAT = encode('#!/bin/sh\necho universal\n');
/** An arm64-only Mac build the index lists for darwin/arm64, which no signed manifest names. */
const ARM = encode('#!/bin/sh\necho arm64 only, unsigned\n');
/** Bytes never pushed: a signed digest the repository does not hold. */
const NEVER_PUSHED = encode('#!/bin/sh\necho never pushed\n');
const LINUX = { os: 'linux', arch: 'amd64' } as const;
const ALPINE = { os: 'linux', arch: 'amd64', libc: 'musl' } as const;
const MAC_AMD64 = { os: 'darwin', arch: 'amd64' } as const;
const MAC_ARM64 = { os: 'darwin', arch: 'arm64' } as const;

let registry: TestRegistry;
let oci: OciRegistry;
let base: string;
let close: () => Promise<void>;
let root: string;
let pushed: Record<'glibc' | 'musl' | 'fat' | 'arm', Pushed>;
/** The signed references: each repository's tag `1.0.0`, an image index. */
let reference: string;
let lostReference: string;
/** The digest of the image index pushed under the tag `1.0.0` of REPOSITORY. */
let indexDigest: string;

/** A manifest artifact kept at `at`, pinned by the digest of `bytes`. */
function ociArtifact(at: string, platform: { os: string; arch: string; libc?: string }, bytes: Uint8Array) {
  const digest = sha256Digest(bytes);
  return {
    ...platform,
    oci: { reference: at, digest },
    sha256: digest.slice(7),
    size_bytes: bytes.byteLength,
  };
}

/**
 * Pushes each build as an image of its own, then an index of them under the tag `1.0.0`: linux/amd64 first
 * the glibc build, then the musl one (told apart only by an annotation: no platform field names a C
 * library), darwin/arm64 the arm64-only build, darwin/amd64 the universal one. Returns the builds pushed.
 */
async function pushIndexed(repository: string): Promise<Record<'glibc' | 'musl' | 'fat' | 'arm', Pushed>> {
  const builds = {
    glibc: await pushBlob(oci, repository, GLIBC, { tag: 'glibc' }),
    musl: await pushBlob(oci, repository, MUSL, { tag: 'musl' }),
    fat: await pushBlob(oci, repository, FAT, { tag: 'universal' }),
    arm: await pushBlob(oci, repository, ARM, { tag: 'arm64' }),
  };
  const entry = (of: Pushed, platform: Record<string, unknown>, annotations?: Record<string, string>) => ({
    mediaType: OCI_MANIFEST,
    digest: of.manifestDigest,
    size: of.manifest.byteLength,
    platform,
    ...(annotations ? { annotations } : {}),
  });
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [
        entry(builds.glibc, { os: 'linux', architecture: 'amd64' }),
        entry(builds.musl, { os: 'linux', architecture: 'amd64' }, { 'org.example.libc': 'musl' }),
        entry(builds.arm, { os: 'darwin', architecture: 'arm64' }),
        entry(builds.fat, { os: 'darwin', architecture: 'amd64' }),
      ],
    }),
  );
  await putManifest(oci, repository, '1.0.0', index, OCI_INDEX);
  if (repository === REPOSITORY) indexDigest = sha256Digest(index);
  return builds;
}

beforeAll(async () => {
  oci = await startOciRegistry('open');
  pushed = await pushIndexed(REPOSITORY);
  reference = `${oci.host}/${REPOSITORY}:1.0.0`;
  // Every build and the index pushed there too; its signed musl digest is none of them.
  await pushIndexed(LOST_REPOSITORY);
  lostReference = `${oci.host}/${LOST_REPOSITORY}:1.0.0`;

  registry = await makeRegistry();
  const bundle = (name: string, artifacts: Record<string, unknown>[]) =>
    makeBundle({
      manifest: validManifest({ name, version: '1.0.0', installation: { artifacts } }),
    });
  const result = await processSubmissions(
    registry.context,
    await registry.submit(
      await bundle(NAME, [
        ociArtifact(reference, LINUX, GLIBC),
        ociArtifact(reference, ALPINE, MUSL),
        ociArtifact(reference, { os: 'darwin', arch: 'universal' }, FAT),
      ]),
      // Its musl build pins a blob its repository does not hold, the index's linux/amd64 entries there.
      await bundle(LOST, [
        ociArtifact(lostReference, LINUX, GLIBC),
        ociArtifact(lostReference, ALPINE, NEVER_PUSHED),
      ]),
    ),
  );
  expect(result.outcomes.map((o) => [o.status, o.problems])).toEqual([
    ['accepted', []],
    ['accepted', []],
  ]);
  const listening = await listenRegistryServer(createRegistryServer({ site: registry.site }), 0);
  base = listening.url;
  close = listening.close;
  root = await mkdtemp(join(tmpdir(), 'plugindex-oci-platforms-'));
});
afterAll(async () => {
  await close?.();
  await oci?.stop();
  if (root) await rm(root, { recursive: true, force: true });
});

/** What a machine's runs asked of the OCI registry, through the real fetcher. */
interface Pulled {
  /** The references whose manifest (or index) was read. */
  readonly manifests: string[];
  /** The blob digests pulled. */
  readonly blobs: string[];
}

let machines = 0;
/** A machine as test/support/client.ts `platformMachine` makes one, its fetcher recording its OCI pulls. */
async function machine() {
  machines += 1;
  const home = join(root, `m${machines}`);
  const pulled: Pulled = { manifests: [], blobs: [] };
  const run = async <T>(platform: Platform, body: (client: PlugindexClient) => Promise<T>): Promise<T> => {
    const http = createHttpFetcher({ env: {}, retries: 0 });
    const fetcher: Fetcher = {
      document: (endpoint, request) => http.document(endpoint, request),
      download: (endpoint, request) => http.download(endpoint, request),
      ociBlob: (request) => {
        pulled.blobs.push(request.digest);
        return http.ociBlob(request);
      },
      ociManifest: (request) => {
        pulled.manifests.push(request.reference);
        return http.ociManifest(request);
      },
      list: (endpoint, path) => http.list(endpoint, path),
      close: () => http.close(),
    };
    const client = createClient({
      dirs: { config: join(home, 'config'), data: join(home, 'data'), cache: join(home, 'cache') },
      fetcher,
      env: {},
      clock: fixedClock(new Date('2026-11-02T00:00:00Z')),
      platform,
      offline: false,
      freshForMs: 0,
    });
    try {
      return await body(client);
    } finally {
      await client.close();
    }
  };
  const m = { dir: join(home, 'plugins'), lockfile: join(home, 'plugindex.lock'), pulled, run };
  await run(LINUX, (c) =>
    c.addRegistry({ name: 'test', url: base, pin: { armored: registry.registryKey.publicKey } }),
  );
  return m;
}

const placed = (m: { dir: string }, folder: string, name = NAME) =>
  readFile(join(m.dir, name, '1.0.0', folder, name));

describe('when an OCI artifact’s reference names an image index', () => {
  it('gives a musl host the signed musl blob, where the index’s first linux/amd64 entry is the glibc build', async () => {
    const m = await machine();
    const result = await m.run(ALPINE, (c) =>
      c.install({ requests: [`${NAME}@1.0.0`], dir: m.dir, lockfile: m.lockfile }),
    );
    expect(result.items[0]).toMatchObject({ version: '1.0.0', platform: 'linux-amd64-musl', warnings: [] });
    expect(await placed(m, 'linux-amd64-musl')).toEqual(Buffer.from(MUSL));
    // The signed digest pulled, the tag's index never read.
    expect(m.pulled).toEqual({ manifests: [], blobs: [pushed.musl.digest] });
    const lock = JSON.parse(await readFile(m.lockfile, 'utf8'));
    expect(lock.plugins[NAME].artifacts['linux-amd64-musl'].oci).toEqual({
      reference,
      digest: pushed.musl.digest,
    });
    // A glibc host of the same folder, from the same index, its glibc build.
    await m.run(LINUX, (c) => c.install({ requests: [`${NAME}@1.0.0`], dir: m.dir, lockfile: m.lockfile }));
    expect(await placed(m, 'linux-amd64')).toEqual(Buffer.from(GLIBC));
    expect(m.pulled).toEqual({ manifests: [], blobs: [pushed.musl.digest, pushed.glibc.digest] });
  });

  it('gives a Mac of either arch the signed universal blob, where the index’s darwin/arm64 entry is another build, from the lock too', async () => {
    const m = await machine();
    await m.run(MAC_ARM64, (c) =>
      c.install({ requests: [`${NAME}@1.0.0`], dir: m.dir, lockfile: m.lockfile }),
    );
    expect(await placed(m, 'darwin-arm64')).toEqual(Buffer.from(FAT));
    expect(m.pulled).toEqual({ manifests: [], blobs: [pushed.fat.digest] });
    // Another machine, its cache empty, from the lock alone (frozen) on the other arch.
    const other = await machine();
    await writeFile(other.lockfile, await readFile(m.lockfile));
    await other.run(MAC_AMD64, (c) =>
      c.install({ requests: [], dir: other.dir, lockfile: other.lockfile, frozen: true }),
    );
    expect(await placed(other, 'darwin-amd64')).toEqual(Buffer.from(FAT));
    expect(other.pulled).toEqual({ manifests: [], blobs: [pushed.fat.digest] });
  });

  it('refuses, frozen, a lock of a registry this machine does not configure (SOURCE_NOT_CONFIGURED), pulling nothing, unless --trust-lock takes the lock’s digests alone', async () => {
    const m = await machine();
    await m.run(LINUX, (c) => c.install({ requests: [`${NAME}@1.0.0`], dir: m.dir, lockfile: m.lockfile }));
    const other = await machine();
    await other.run(LINUX, (c) => c.removeRegistry('test'));
    await writeFile(other.lockfile, await readFile(m.lockfile));
    const frozen = (trustLock?: true) =>
      other.run(LINUX, (c) =>
        c.install({
          requests: [],
          dir: other.dir,
          lockfile: other.lockfile,
          frozen: true,
          ...(trustLock ? { trustLock } : {}),
        }),
      );
    await expect(frozen()).rejects.toMatchObject({
      name: 'ClientError',
      code: 'SOURCE_NOT_CONFIGURED',
      message: expect.stringContaining(`plugindex registry add test ${base} --key FILE`),
    });
    expect(other.pulled).toEqual({ manifests: [], blobs: [] });
    const taken = await frozen(true);
    expect(await placed(other, 'linux-amd64')).toEqual(Buffer.from(GLIBC));
    expect(other.pulled).toEqual({ manifests: [], blobs: [pushed.glibc.digest] });
    expect(taken.items[0]?.warnings).toEqual([expect.stringContaining('(--trust-lock)')]);
  });

  it('resolves the reference itself (falcoctl’s REGISTRY/REPOSITORY:TAG) to the version, a musl host then pulling its musl blob', async () => {
    const m = await machine();
    const target = await m.run(ALPINE, (c) => c.reference(reference));
    expect(target).toEqual({ request: `${NAME}@1.0.0`, registry: 'test' });
    await m.run(ALPINE, (c) =>
      c.install({ requests: [target?.request as string], dir: m.dir, lockfile: m.lockfile }),
    );
    expect(await placed(m, 'linux-amd64-musl')).toEqual(Buffer.from(MUSL));
    expect(m.pulled).toEqual({ manifests: [], blobs: [pushed.musl.digest] });
  });

  it('fails FETCH_NOT_FOUND naming the signed digest when the repository does not hold it, taking no entry of the index instead', async () => {
    const m = await machine();
    const missing = sha256Digest(NEVER_PUSHED);
    await expect(
      m.run(ALPINE, (c) => c.install({ requests: [`${LOST}@1.0.0`], dir: m.dir, lockfile: m.lockfile })),
    ).rejects.toMatchObject({
      name: 'ClientError',
      code: 'FETCH_NOT_FOUND',
      message: expect.stringContaining(`blob ${missing} of ${lostReference}`),
    });
    expect(m.pulled).toEqual({ manifests: [], blobs: [missing] });
    await expect(placed(m, 'linux-amd64-musl', LOST)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

/**
 * A digest pasted from the registry's side (falcoctl, crane, a registry's page show a manifest's or an
 * index's, not the layer's the signed manifest pins) names the version whose signed blob for the host it
 * leads to; the install then pulls that blob by its signed digest, so only signed bytes are placed.
 */
describe('when an OCI reference pins a manifest’s or an index’s digest', () => {
  const at = (digest: string) => `${oci.host}/${REPOSITORY}@${digest}`;

  it('takes an index’s digest for the version whose musl blob it leads to, a musl host installing that signed blob', async () => {
    const m = await machine();
    const target = await m.run(ALPINE, (c) => c.reference(at(indexDigest)));
    expect(target).toEqual({ request: `${NAME}@1.0.0`, registry: 'test' });
    await m.run(ALPINE, (c) =>
      c.install({ requests: [target?.request as string], dir: m.dir, lockfile: m.lockfile }),
    );
    expect(await placed(m, 'linux-amd64-musl')).toEqual(Buffer.from(MUSL));
    // The index and its image manifests read by digest; the one blob pulled is the signed musl build.
    expect(m.pulled.manifests[0]).toBe(at(indexDigest));
    expect(m.pulled.manifests).toHaveLength(5);
    expect(m.pulled.blobs).toEqual([pushed.musl.digest]);
  });

  it('takes an image manifest’s digest whose layer is the host’s signed build, on a Mac the universal one', async () => {
    const m = await machine();
    expect(await m.run(ALPINE, (c) => c.reference(at(pushed.musl.manifestDigest)))).toEqual({
      request: `${NAME}@1.0.0`,
      registry: 'test',
    });
    expect(await m.run(MAC_ARM64, (c) => c.reference(at(pushed.fat.manifestDigest)))).toEqual({
      request: `${NAME}@1.0.0`,
      registry: 'test',
    });
    expect(m.pulled.blobs).toEqual([]);
  });

  it('refuses a manifest leading to another build than the host’s (glibc on a musl host), naming the platform fully and the digest to give', async () => {
    const m = await machine();
    await expect(m.run(ALPINE, (c) => c.reference(at(pushed.glibc.manifestDigest)))).rejects.toMatchObject({
      name: 'ClientError',
      code: 'NO_MATCHING_VERSION',
      message: expect.stringMatching(
        new RegExp(
          `keeps its linux/amd64/musl artifact there with that digest, and the manifest of that digest leads to none of their signed blobs \\(it leads to ${pushed.glibc.digest}\\); give the digest of the blob its signed manifest pins for this platform \\(1\\.0\\.0: ${oci.host}/${REPOSITORY}@${pushed.musl.digest}`,
        ),
      ),
    });
    expect(m.pulled.blobs).toEqual([]);
  });

  it('refuses a digest the repository holds no manifest of, saying which digest to give', async () => {
    const m = await machine();
    const unknown = sha256Digest(NEVER_PUSHED);
    await expect(m.run(LINUX, (c) => c.reference(at(unknown)))).rejects.toMatchObject({
      name: 'ClientError',
      code: 'NO_MATCHING_VERSION',
      message: expect.stringContaining(
        `keeps its linux/amd64 artifact there with that digest, and the repository holds no manifest or index of it; give the digest of the blob its signed manifest pins for this platform (1.0.0: ${oci.host}/${REPOSITORY}@${pushed.glibc.digest};`,
      ),
    });
  });

  it('names a musl host’s platform fully when no version is under the tag', async () => {
    const m = await machine();
    await expect(m.run(ALPINE, (c) => c.reference(`${oci.host}/${REPOSITORY}:9.9.9`))).rejects.toMatchObject({
      name: 'ClientError',
      code: 'NO_MATCHING_VERSION',
      message: expect.stringContaining('keeps its linux/amd64/musl artifact there under tag 9.9.9'),
    });
  });
});

/**
 * A pasted digest of an index whose entries are indexes (an index of per-platform indexes, as some tools
 * push; buildx's attestations beside each platform's image), walked to the layers it leads to within bounds:
 * at most 4 levels below the digest given, at most 32 documents read in all, a digest read once however
 * many indexes list it, each document held to its digest, its descriptor's size and its media type. Only
 * the version is taken from the walk; the install pulls that version's signed blob alone.
 */
describe('when a pasted digest names an image index of image indexes', () => {
  const at = (digest: string) => `${oci.host}/${REPOSITORY}@${digest}`;
  const image = (of: Pushed) => ({
    mediaType: OCI_MANIFEST,
    digest: of.manifestDigest,
    size: of.manifest.byteLength,
  });
  const described = (bytes: Uint8Array, mediaType = OCI_INDEX) => ({
    mediaType,
    digest: sha256Digest(bytes),
    size: bytes.byteLength,
  });
  /** Pushes an image index of `entries` under `tag` of REPOSITORY; returns its bytes. */
  async function pushIndex(tag: string, entries: readonly unknown[]): Promise<Uint8Array> {
    const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: entries }));
    await putManifest(oci, REPOSITORY, tag, bytes, OCI_INDEX);
    return bytes;
  }
  /** 40 image manifests of their own digests (an annotation apart), each leading to the musl blob. */
  let copies: { mediaType: string; digest: string; size: number }[];
  beforeAll(async () => {
    const manifest = JSON.parse(Buffer.from(pushed.musl.manifest).toString('utf8'));
    copies = [];
    for (let n = 0; n < 40; n += 1) {
      const bytes = Buffer.from(JSON.stringify({ ...manifest, annotations: { 'org.example.copy': `${n}` } }));
      await putManifest(oci, REPOSITORY, `copy-${n}`, bytes, OCI_MANIFEST);
      copies.push(described(bytes, OCI_MANIFEST));
    }
  });

  it('follows an index of per-platform indexes to the host’s signed blob, installing only that blob', async () => {
    const linux = await pushIndex('nested-linux', [image(pushed.glibc), image(pushed.musl)]);
    const darwin = await pushIndex('nested-darwin', [image(pushed.arm), image(pushed.fat)]);
    const outer = await pushIndex('nested', [described(linux), described(darwin)]);
    const m = await machine();

    const target = await m.run(ALPINE, (c) => c.reference(at(sha256Digest(outer))));
    await m.run(ALPINE, (c) =>
      c.install({ requests: [target?.request as string], dir: m.dir, lockfile: m.lockfile }),
    );

    expect(target).toEqual({ request: `${NAME}@1.0.0`, registry: 'test' });
    expect(await placed(m, 'linux-amd64-musl')).toEqual(Buffer.from(MUSL));
    // Level by level, each by its digest; the one blob pulled is the signed musl build.
    expect(m.pulled.manifests).toEqual(
      [outer, linux, darwin]
        .map((bytes) => at(sha256Digest(bytes)))
        .concat([pushed.glibc, pushed.musl, pushed.arm, pushed.fat].map((p) => at(p.manifestDigest))),
    );
    expect(m.pulled.blobs).toEqual([pushed.musl.digest]);
    // A Mac, through the darwin index, to the universal build.
    expect(await m.run(MAC_ARM64, (c) => c.reference(at(sha256Digest(outer))))).toEqual({
      request: `${NAME}@1.0.0`,
      registry: 'test',
    });
  });

  it('reads a document once however many indexes list it, at whatever level', async () => {
    const a = await pushIndex('shared-a', [image(pushed.musl)]);
    const b = await pushIndex('shared-b', [image(pushed.musl), described(a)]);
    const outer = await pushIndex('shared', [described(a), described(b), described(a)]);
    const m = await machine();

    expect(await m.run(ALPINE, (c) => c.reference(at(sha256Digest(outer))))).toEqual({
      request: `${NAME}@1.0.0`,
      registry: 'test',
    });
    expect(m.pulled.manifests).toEqual(
      [outer, a, b].map((bytes) => at(sha256Digest(bytes))).concat(at(pushed.musl.manifestDigest)),
    );
  });

  it('follows indexes 4 levels down and refuses a 5th with OCI_INDEX_TOO_DEEP, naming the index and the bound', async () => {
    // deep-1 lists the musl manifest, deep-N lists deep-(N-1).
    const chain: Uint8Array[] = [];
    let entry: unknown = image(pushed.musl);
    for (let n = 1; n <= 5; n += 1) {
      const bytes = await pushIndex(`deep-${n}`, [entry]);
      chain.push(bytes);
      entry = described(bytes);
    }
    const [deepest, , , fourth, fifth] = chain as [
      Uint8Array,
      Uint8Array,
      Uint8Array,
      Uint8Array,
      Uint8Array,
    ];
    const m = await machine();

    // From deep-4 the musl manifest is 4 levels down.
    expect(await m.run(ALPINE, (c) => c.reference(at(sha256Digest(fourth))))).toEqual({
      request: `${NAME}@1.0.0`,
      registry: 'test',
    });
    m.pulled.manifests.length = 0;
    // From deep-5, deep-1 is 4 levels down and lists one more.
    await expect(m.run(ALPINE, (c) => c.reference(at(sha256Digest(fifth))))).rejects.toMatchObject({
      name: 'ClientError',
      code: 'OCI_INDEX_TOO_DEEP',
      message: expect.stringContaining(
        `the image index ${sha256Digest(deepest)}, 4 levels below ${sha256Digest(fifth)}, lists 1 more: at most 4 levels are followed`,
      ),
    });
    expect(m.pulled.manifests).toEqual([...chain].reverse().map((bytes) => at(sha256Digest(bytes))));
    expect(m.pulled.blobs).toEqual([]);
  });

  it('reads 32 documents below the digest in all, across its indexes', async () => {
    const x = await pushIndex('budget-x', copies.slice(0, 20));
    const y = await pushIndex('budget-y', [...copies.slice(20, 29), image(pushed.musl)]);
    const outer = await pushIndex('budget', [described(x), described(y)]);
    const m = await machine();

    expect(await m.run(ALPINE, (c) => c.reference(at(sha256Digest(outer))))).toEqual({
      request: `${NAME}@1.0.0`,
      registry: 'test',
    });
    expect(m.pulled.manifests).toHaveLength(33);
  });

  it('refuses a walk past 32 documents with OCI_INDEX_TOO_MANY_MANIFESTS before reading the index’s entries', async () => {
    const x = await pushIndex('over-x', copies.slice(0, 20));
    const y = await pushIndex('over-y', copies.slice(20, 40));
    const outer = await pushIndex('over', [described(x), described(y)]);
    const m = await machine();

    await expect(m.run(ALPINE, (c) => c.reference(at(sha256Digest(outer))))).rejects.toMatchObject({
      name: 'ClientError',
      code: 'OCI_INDEX_TOO_MANY_MANIFESTS',
      message: expect.stringContaining(
        `the image index ${sha256Digest(y)} lists 20 manifests not yet read, past the 32 read in all below ${sha256Digest(outer)} (22 read)`,
      ),
    });
    // The outer index, both indexes and x's 20 manifests; none of y's.
    expect(m.pulled.manifests).toHaveLength(23);
  });

  it('refuses one index of 33 manifests having read only that index', async () => {
    const many = await pushIndex('many', copies.slice(0, 33));
    const m = await machine();

    await expect(m.run(ALPINE, (c) => c.reference(at(sha256Digest(many))))).rejects.toMatchObject({
      name: 'ClientError',
      code: 'OCI_INDEX_TOO_MANY_MANIFESTS',
      message: expect.stringContaining(`${sha256Digest(many)} lists 33 manifests not yet read, past the 32`),
    });
    expect(m.pulled.manifests).toEqual([at(sha256Digest(many))]);
  });

  it('refuses a document whose size is not its descriptor’s, with DOCUMENT_MISMATCH naming it', async () => {
    const linux = await pushIndex('sized-linux', [image(pushed.musl)]);
    const outer = await pushIndex('sized', [{ ...described(linux), size: linux.byteLength + 1 }]);
    const m = await machine();

    await expect(m.run(ALPINE, (c) => c.reference(at(sha256Digest(outer))))).rejects.toMatchObject({
      name: 'TrustError',
      code: 'DOCUMENT_MISMATCH',
      message: expect.stringContaining(
        `${at(sha256Digest(linux))} is ${linux.byteLength} bytes, where ${sha256Digest(outer)} lists it as ${linux.byteLength + 1}`,
      ),
    });
  });

  it('refuses a document of another type than its descriptor says, either way, with DOCUMENT_MISMATCH', async () => {
    const linux = await pushIndex('typed-linux', [image(pushed.musl)]);
    const asIndex = await pushIndex('typed-image', [{ ...image(pushed.musl), mediaType: OCI_INDEX }]);
    const asImage = await pushIndex('typed-index', [described(linux, OCI_MANIFEST)]);
    const m = await machine();

    await expect(m.run(ALPINE, (c) => c.reference(at(sha256Digest(asIndex))))).rejects.toMatchObject({
      name: 'TrustError',
      code: 'DOCUMENT_MISMATCH',
      message: expect.stringContaining(
        `${at(pushed.musl.manifestDigest)} is ${OCI_MANIFEST}, where ${sha256Digest(asIndex)} lists it as ${OCI_INDEX}`,
      ),
    });
    await expect(m.run(ALPINE, (c) => c.reference(at(sha256Digest(asImage))))).rejects.toMatchObject({
      name: 'TrustError',
      code: 'DOCUMENT_MISMATCH',
      message: expect.stringContaining(
        `${at(sha256Digest(linux))} is ${OCI_INDEX}, where ${sha256Digest(asImage)} lists it as ${OCI_MANIFEST}`,
      ),
    });
  });
});
