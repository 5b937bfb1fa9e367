/** Small factories for tests: keys, manifests, bundles, and a registry over in-memory stores. */
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import * as openpgp from 'openpgp';
import { pack } from 'tar-stream';
import { writeBundle } from '../../index-builder/bundle.ts';
import { fixedClock } from '../../index-builder/clock.ts';
import { parseRegistryConfig, type RegistryConfig } from '../../index-builder/config.ts';
import type { PipelineContext } from '../../index-builder/pipeline/index.ts';
import { createSigner, generateKeyPair, type KeyPair, type Signer } from '../../index-builder/signing.ts';
import { MemoryStore } from './memory-store.ts';

const keyCache = new Map<string, Promise<KeyPair>>();

/**
 * When test keys are made and publishers sign, before the test registries' clock (2026-11-01): the
 * registry judges a publisher key at the time of publishing, and refuses a signature dated after it.
 */
export const KEYS_CREATED = new Date('2026-01-01T00:00:00Z');
export const PUBLISHER_SIGNS = new Date('2026-10-01T00:00:00Z');

/** A key pair per label, generated once per test file. */
export function testKey(label: string): Promise<KeyPair> {
  let pair = keyCache.get(label);
  if (!pair) {
    pair = generateKeyPair({ name: `test ${label}`, email: `${label}@example.com`, date: KEYS_CREATED });
    keyCache.set(label, pair);
  }
  return pair;
}

/** A publisher's armored detached signature over `data`, made at `date` (openpgp.js, binary document). */
export async function signAsPublisher(
  data: Uint8Array,
  secretKey: string,
  date: Date = PUBLISHER_SIGNS,
): Promise<string> {
  const signingKeys = await openpgp.readPrivateKey({ armoredKey: secretKey });
  const message = await openpgp.createMessage({ binary: data });
  return openpgp.sign({ message, signingKeys, detached: true, date, format: 'armored' });
}

export function sha256(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export const encode = (text: string): Uint8Array => new TextEncoder().encode(text);

export function validManifest(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'demo-plugin',
    display_name: 'Demo Plugin',
    description: 'A plugin used in tests',
    version: '1.0.0',
    api_version: 'v1',
    plugin_type: 'cost_source',
    capabilities: ['actual_cost'],
    supported_providers: ['aws'],
    requirements: { min_api_version: 'v1', max_api_version: 'v1', os: ['linux'], arch: ['amd64'] },
    metadata: { tags: ['test'], license: 'Apache-2.0' },
    ...overrides,
  };
}

export interface BundleSpec {
  readonly manifest?: Record<string, unknown>;
  /** Raw manifest text instead of `manifest` (for parse errors). */
  readonly manifestText?: string;
  readonly manifestName?: string;
  /** Artifacts carried in the bundle; recorded in the manifest unless `record` is false. */
  readonly artifacts?: readonly {
    os: string;
    arch: string;
    /** A Linux build's C library (`musl`), recorded as the manifest's `libc`. */
    libc?: string;
    name: string;
    body: Uint8Array;
    record?: boolean;
  }[];
  readonly signer?: KeyPair;
  /** Signature text to use instead of a real one; `null` leaves it out. */
  readonly signature?: string | null;
  /** Publisher key to include; defaults to the signer's; `null` leaves it out. */
  readonly publisherKey?: string | null;
  readonly extraFiles?: readonly { path: string; body: Uint8Array }[];
}

/**
 * A bundle of `name` (1.0.0 unless `pin.version`) whose one linux/amd64 artifact is kept at the OCI
 * `reference`, pinned by the digest `pin.sha` (hex) of its `pin.size` bytes, signed by `pin.signer` (else
 * the test publisher).
 */
export function ociBundle(
  name: string,
  reference: string,
  pin: { readonly sha: string; readonly size: number; readonly version?: string; readonly signer?: KeyPair },
): Promise<Uint8Array> {
  return makeBundle({
    manifest: validManifest({
      name,
      version: pin.version ?? '1.0.0',
      installation: {
        artifacts: [
          {
            os: 'linux',
            arch: 'amd64',
            oci: { reference, digest: `sha256:${pin.sha}` },
            sha256: pin.sha,
            size_bytes: pin.size,
          },
        ],
      },
    }),
    ...(pin.signer ? { signer: pin.signer } : {}),
  });
}

/** Builds a signed bundle the way `plugindex pack` does, with knobs to break it. */
export async function makeBundle(spec: BundleSpec = {}): Promise<Uint8Array> {
  const signer = spec.signer ?? (await testKey('publisher'));
  const manifestName = spec.manifestName ?? 'manifest.json';
  const entries: { path: string; body: Uint8Array }[] = [];
  const manifest = structuredClone(spec.manifest ?? validManifest());
  const recorded = [];
  for (const a of spec.artifacts ?? []) {
    const file = `artifacts/${a.os}-${a.arch}${a.libc ? `-${a.libc}` : ''}/${a.name}`;
    entries.push({ path: file, body: a.body });
    if (a.record !== false)
      recorded.push({
        os: a.os,
        arch: a.arch,
        ...(a.libc ? { libc: a.libc } : {}),
        file,
        sha256: sha256(a.body),
        size_bytes: a.body.byteLength,
      });
  }
  if (recorded.length > 0) {
    const installation = (manifest.installation ?? {}) as Record<string, unknown>;
    manifest.installation = {
      ...installation,
      artifacts: [...((installation.artifacts as unknown[]) ?? []), ...recorded],
    };
  }
  const text = spec.manifestText ?? `${JSON.stringify(manifest, null, 2)}\n`;
  const manifestBytes = encode(text);
  entries.push({ path: manifestName, body: manifestBytes });
  if (spec.signature !== null) {
    const signature = spec.signature ?? (await signAsPublisher(manifestBytes, signer.secretKey));
    entries.push({ path: `${manifestName}.asc`, body: encode(signature) });
  }
  if (spec.publisherKey !== null)
    entries.push({ path: 'publisher.asc', body: encode(spec.publisherKey ?? signer.publicKey) });
  entries.push(...(spec.extraFiles ?? []));
  return writeBundle(entries);
}

/** `demo-plugin` at `version`, with one artifact whose bytes name the version (a new version's own files). */
export function versionBundle(version: string): Promise<Uint8Array> {
  return makeBundle({
    manifest: validManifest({ version }),
    artifacts: [{ os: 'linux', arch: 'amd64', name: 'tool', body: encode(`tool ${version}`) }],
  });
}

export interface TestRegistry {
  readonly intake: MemoryStore;
  readonly site: MemoryStore;
  readonly signer: Signer;
  readonly registryKey: KeyPair;
  readonly context: PipelineContext;
  /** Puts bundles under incoming/ and returns their keys. */
  submit(...bundles: Uint8Array[]): Promise<string[]>;
}

let submissionCounter = 0;

/**
 * A fresh name for an upload under incoming/, shared by bundles and actions so that names sort in the order
 * the uploads were made: the pipeline takes uploads by time, then by name, and two made within the same
 * millisecond must still be taken in the order the test made them.
 */
export function nextUploadName(): string {
  submissionCounter += 1;
  return `s${String(submissionCounter).padStart(6, '0')}`;
}

export async function makeRegistry(
  config: Partial<RegistryConfig> = {},
  clockStart = '2026-11-01T00:00:00Z',
): Promise<TestRegistry> {
  const registryKey = await testKey('registry');
  const signer = await createSigner(registryKey.secretKey);
  const intake = new MemoryStore();
  const site = new MemoryStore();
  const context: PipelineContext = {
    intake,
    site,
    signer,
    clock: fixedClock(clockStart, 1000),
    config: parseRegistryConfig({ name: 'Test Registry', url: 'https://registry.example.com', ...config }),
  };
  return {
    intake,
    site,
    signer,
    registryKey,
    context,
    async submit(...bundles) {
      const keys = [];
      for (const bundle of bundles) {
        const key = `incoming/${nextUploadName()}.tgz`;
        await intake.put(key, bundle, { contentType: 'application/gzip', cacheControl: 'no-store' });
        keys.push(key);
      }
      return keys;
    },
  };
}

/**
 * A registry whose site records the keys read, whole or as streams, so a test can tell a merge (it reads
 * the published index documents) from a rendering; its context publishes compressed variants from 100 bytes.
 */
export async function recordingRegistry(options: Partial<PipelineContext> = {}) {
  const registry = await makeRegistry();
  const reads: string[] = [];
  const { get, getStream } = registry.site;
  registry.site.get = (key) => {
    reads.push(key);
    return get.call(registry.site, key);
  };
  registry.site.getStream = (key) => {
    reads.push(key);
    return getStream.call(registry.site, key);
  };
  const context: PipelineContext = { ...registry.context, compressionThresholdBytes: 100, ...options };
  return { registry, reads, context };
}

export interface RawEntry {
  readonly name: string;
  readonly type?: 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'block-device' | 'fifo';
  readonly body?: Uint8Array | string;
  readonly linkname?: string;
  /** Carry the name in a pax header, which can hold what a ustar header cannot (a NUL, say). */
  readonly pax?: boolean;
}

/** A tar built entry by entry (gzipped unless `gzip` is false), so tests can write what `pack` never would. */
export async function rawTar(entries: readonly RawEntry[], gzip = true): Promise<Uint8Array> {
  const tar = pack();
  const chunks: Buffer[] = [];
  tar.on('data', (chunk: unknown) => chunks.push(chunk as Buffer));
  const done = new Promise<void>((resolve, reject) => {
    tar.on('end', () => resolve());
    tar.on('error', reject);
  });
  for (const entry of entries) {
    const type = entry.type ?? 'file';
    const header = {
      name: entry.name,
      type,
      mode: 0o644,
      ...(entry.linkname ? { linkname: entry.linkname } : {}),
      // tar-stream writes a pax header (carrying the name) whenever `pax` is set.
      ...(entry.pax ? { pax: {} } : {}),
    };
    if (type === 'file') tar.entry(header, Buffer.from(entry.body ?? new Uint8Array()));
    else tar.entry(header);
  }
  tar.finalize();
  await done;
  const bytes = Buffer.concat(chunks);
  return new Uint8Array(gzip ? gzipSync(bytes) : bytes);
}

/**
 * A gzipped tar that starts with a pax global header setting `path` for every entry after it: what tarfile
 * applies to all of them, and tar-stream only to entries with a local pax header.
 */
export function withPaxGlobalPath(tar: Uint8Array, globalPath: string): Uint8Array {
  let record = ` path=${globalPath}\n`;
  const digits = (n: number) => String(n).length;
  let length = Buffer.byteLength(record) + 1;
  while (Buffer.byteLength(record) + digits(length) !== length) length += 1;
  record = `${length}${record}`;
  const header = Buffer.alloc(512);
  header.write('pax_global_header', 0);
  header.write('0000644\0', 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(`${Buffer.byteLength(record).toString(8).padStart(11, '0')}\0`, 124);
  header.write('00000000000\0', 136);
  header.write('g', 156);
  header.write('ustar\u000000', 257);
  header.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  const data = Buffer.alloc(512);
  data.write(record);
  return new Uint8Array(gzipSync(Buffer.concat([header, data, tar])));
}
