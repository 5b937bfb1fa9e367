/**
 * FolderSource over the three transports with real parts: a folder built here (one version of it an
 * unpacked `plugindex pack` bundle), read from disk (file:), from a plain static web server on 127.0.0.1
 * (http:) and from s3rver (s3:), the same bytes in each.
 */
import { Buffer } from 'node:buffer';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { Key } from 'openpgp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createClient } from '../../client/client.ts';
import { createHttpFetcher, type Endpoint, type Fetcher } from '../../client/fetcher.ts';
import { FolderSource, folderPluginDocument } from '../../client/folder-source.ts';
import { readBundle } from '../../index-builder/bundle.ts';
import { createSigner, readPublicKey } from '../../index-builder/signing.ts';
import { packSubmission } from '../../index-builder/submission.ts';
import { assertPluginDocument } from '../../index-builder/verify.ts';
import { encode, sha256, testKey, validManifest } from '../support/fixtures.ts';
import { type LocalS3, startLocalS3 } from '../support/s3.ts';
import { type StaticServer, startStaticServer } from '../support/static-server.ts';
import { collect, patternBytes } from '../support/streams.ts';

const BUCKET = 'team-plugins';
const S3_ENV = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' };
const BINARY = patternBytes(20_000);
const PLUGIN = 'demo-plugin';
const BROKEN = 'broken-plugin';

let root: string;
let s3: LocalS3;
let web: StaticServer;
let fetcher: Fetcher;
let publisher: { key: Key; fingerprint: string };
let stranger: Key;
const cleanups: (() => Promise<void>)[] = [];

/** Writes `<name>/<version>/manifest.json` (the manifest's own name and version unless given) and its signature. */
async function writeVersion(
  manifest: Record<string, unknown>,
  options: {
    readonly folder?: string;
    readonly signer?: string;
    readonly tamper?: (bytes: Uint8Array) => Uint8Array;
    readonly files?: Record<string, Uint8Array>;
  } = {},
): Promise<void> {
  const dir = path.join(root, options.folder ?? `${manifest.name}/${manifest.version}`);
  await mkdir(dir, { recursive: true });
  const bytes = encode(`${JSON.stringify(manifest, null, 2)}\n`);
  const signer = await createSigner(options.signer ?? (await testKey('publisher')).secretKey);
  await writeFile(path.join(dir, 'manifest.json.asc'), await signer.sign(bytes));
  await writeFile(path.join(dir, 'manifest.json'), options.tamper ? options.tamper(bytes) : bytes);
  for (const [file, body] of Object.entries(options.files ?? {})) {
    await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
    await writeFile(path.join(dir, file), body);
  }
}

/** `plugindex pack`'s bundle for demo-plugin 1.0.0, unpacked into its version folder. */
async function writePackedVersion(): Promise<void> {
  const packed = await packSubmission({
    manifestName: 'manifest.json',
    manifest: encode(JSON.stringify(validManifest({ name: PLUGIN, version: '1.0.0' }))),
    artifacts: [{ os: 'linux', arch: 'amd64', fileName: 'demo', body: BINARY }],
    secretKey: (await testKey('publisher')).secretKey,
  });
  const contents = await readBundle(packed.bundle);
  const dir = path.join(root, PLUGIN, '1.0.0');
  const files = new Map(contents.files);
  files.set(contents.manifestName, contents.manifest);
  if (contents.signature) files.set(`${contents.manifestName}.asc`, contents.signature);
  if (contents.publisherKey) files.set('publisher.asc', contents.publisherKey);
  for (const [file, body] of files) {
    await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
    await writeFile(path.join(dir, file), body);
  }
}

async function uploadTree(dir: string, prefix: string): Promise<void> {
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    const key = `${prefix}/${path.relative(dir, file).split(path.sep).join('/')}`;
    await s3.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: await readFile(file) }));
  }
}

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'plugindex-folder-'));
  cleanups.push(() => rm(root, { recursive: true, force: true }));
  const publisherInfo = await readPublicKey((await testKey('publisher')).publicKey);
  publisher = { key: publisherInfo.key, fingerprint: publisherInfo.fingerprint };
  stranger = (await readPublicKey((await testKey('stranger')).publicKey)).key;

  await writePackedVersion();
  await writeVersion(
    validManifest({
      name: PLUGIN,
      version: '1.2.0',
      metadata: { tags: ['test'], created: '2026-03-01T00:00:00Z', updated: '2026-04-01T00:00:00Z' },
      installation: {
        artifacts: [
          {
            os: 'linux',
            arch: 'amd64',
            file: 'bin/demo',
            sha256: `sha256:${sha256(BINARY).toUpperCase()}`,
            size_bytes: BINARY.byteLength,
          },
          {
            os: 'darwin',
            arch: 'arm64',
            url: 'https://downloads.example/demo-1.2.0.tgz',
            sha256: sha256('x'),
            size_bytes: 1,
          },
        ],
      },
    }),
    { files: { 'bin/demo': BINARY } },
  );
  await writeVersion(validManifest({ name: PLUGIN, version: '2.0.0-beta.1' }));
  // Not versions: a folder with another name, and a file.
  await mkdir(path.join(root, PLUGIN, 'not-a-version'), { recursive: true });
  await writeFile(path.join(root, PLUGIN, 'not-a-version', 'readme.txt'), 'notes');
  await writeFile(path.join(root, PLUGIN, 'notes.txt'), 'notes');

  const tamper = (bytes: Uint8Array) =>
    encode(new TextDecoder().decode(bytes).replace('A plugin', 'B plugin'));
  await writeVersion(validManifest({ name: BROKEN, version: '1.0.0' }), { tamper });
  await writeVersion(validManifest({ name: BROKEN, version: '2.0.0' }), {
    signer: (await testKey('stranger')).secretKey,
  });
  await writeVersion(validManifest({ name: PLUGIN, version: '3.0.0' }), { folder: `${BROKEN}/3.0.0` });
  await writeVersion(validManifest({ name: BROKEN, version: '4.0.1' }), { folder: `${BROKEN}/4.0.0` });
  await writeVersion(validManifest({ name: BROKEN, version: '5.0.0', capabilities: 'everything' }));

  web = await startStaticServer(root);
  cleanups.push(() => web.close());
  s3 = await startLocalS3([BUCKET]);
  cleanups.push(() => s3.close());
  await uploadTree(root, 'team');
  // s3rver named as the user's own S3 endpoint, so the requests to it are signed (transport/s3.ts).
  fetcher = createHttpFetcher({ env: { ...S3_ENV, AWS_ENDPOINT_URL_S3: s3.endpoint }, retryDelayMs: 1 });
  cleanups.push(() => fetcher.close());
});

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

const TRANSPORTS = {
  'file:': () => pathToFileURL(root).href,
  'http:': () => web.url,
  's3:': () => `s3://${BUCKET}/team`,
} as const;

function endpointOf(base: string): Endpoint {
  return {
    name: 'team',
    bases: [base],
    timeoutMs: 10_000,
    s3: { endpoint: s3.endpoint, forcePathStyle: true },
  };
}

function sourceOf(
  base: string,
  keys: readonly Key[] = [stranger, publisher.key],
  over = fetcher,
): FolderSource {
  return new FolderSource({ name: 'team', endpoint: endpointOf(base), fetcher: over, keys });
}

for (const [transport, baseOf] of Object.entries(TRANSPORTS)) {
  describe(`when the folder is read over ${transport}`, () => {
    if (transport === 'http:') {
      it('refuses to list a web folder (REQUEST_INVALID), which has no listing', async () => {
        await expect(sourceOf(baseOf()).versions(PLUGIN)).rejects.toMatchObject({
          name: 'ClientError',
          code: 'REQUEST_INVALID',
          message: expect.stringContaining('exact version'),
        });
      });
    } else {
      it('lists the SemVer folders newest first, and nothing else', async () => {
        expect(await sourceOf(baseOf()).versions(PLUGIN)).toEqual(['2.0.0-beta.1', '1.2.0', '1.0.0']);
      });

      it('reports a plugin it does not hold as FETCH_NOT_FOUND', async () => {
        await expect(sourceOf(baseOf()).versions('absent-plugin')).rejects.toMatchObject({
          name: 'ClientError',
          code: 'FETCH_NOT_FOUND',
        });
      });
    }

    it('reads an unpacked bundle, verified, as a plugin document of that one version', async () => {
      const base = baseOf();
      const { document, manifest } = await sourceOf(base).read(PLUGIN, '1.0.0');
      const bytes = await readFile(path.join(root, PLUGIN, '1.0.0', 'manifest.json'));
      expect(() => assertPluginDocument(document, PLUGIN)).not.toThrow();
      expect(manifest.manifest).toMatchObject({ name: PLUGIN, version: '1.0.0' });
      expect(Buffer.from(manifest.bytes).equals(bytes)).toBe(true);
      const folder = `${base}/${PLUGIN}/1.0.0`;
      expect(document).toMatchObject({
        schema: 'plugindex/plugin/v1',
        name: PLUGIN,
        plugin_type: 'cost_source',
        latest_version: '1.0.0',
        channels: {},
        capabilities: ['actual_cost'],
        supported_providers: ['aws'],
        tags: ['test'],
        license: 'Apache-2.0',
        owners: [publisher.fingerprint],
      });
      expect(document.versions).toEqual([
        {
          version: '1.0.0',
          published: '1970-01-01T00:00:00.000Z',
          prerelease: false,
          yanked: false,
          deprecated: false,
          api_version: 'v1',
          min_api_version: 'v1',
          max_api_version: 'v1',
          manifest_url: `${folder}/manifest.json`,
          manifest_signature_url: `${folder}/manifest.json.asc`,
          manifest_sha256: sha256(bytes),
          manifest_size: bytes.byteLength,
          manifest_signature: manifest.signature,
          source_sha256: sha256(bytes),
          publisher: publisher.fingerprint,
          artifacts: [
            {
              os: 'linux',
              arch: 'amd64',
              url: `${folder}/artifacts/linux-amd64/demo`,
              sha256: sha256(BINARY),
              size_bytes: BINARY.byteLength,
              hosted: false,
            },
          ],
        },
      ]);
    });

    it('gives file artifacts beside the manifest, url artifacts as named, digests in lowercase hex', async () => {
      const { document } = await sourceOf(baseOf()).read(PLUGIN, '1.2.0');
      const [record] = document.versions;
      expect(record?.published).toBe('2026-04-01T00:00:00Z');
      expect(record?.artifacts).toEqual([
        expect.objectContaining({ url: `${baseOf()}/${PLUGIN}/1.2.0/bin/demo`, sha256: sha256(BINARY) }),
        expect.objectContaining({ url: 'https://downloads.example/demo-1.2.0.tgz', hosted: false }),
      ]);
    });

    it('downloads an artifact through the fetcher at its size, and refuses it under a smaller cap', async () => {
      const endpoint = endpointOf(baseOf());
      const { document } = await sourceOf(baseOf()).read(PLUGIN, '1.0.0');
      const artifact = document.versions[0]?.artifacts[0];
      if (!artifact) throw new Error('no artifact');
      const download = await fetcher.download(endpoint, { url: artifact.url, maxBytes: artifact.size_bytes });
      expect(sha256(await collect(download.body))).toBe(artifact.sha256);
      const capped = fetcher
        .download(endpoint, { url: artifact.url, maxBytes: artifact.size_bytes - 1 })
        .then((smaller) => collect(smaller.body));
      await expect(capped).rejects.toMatchObject({ name: 'ClientError', code: 'RESPONSE_TOO_LARGE' });
    });

    it('reads an exact manifest URL as the same version', async () => {
      const base = baseOf();
      const byUrl = await sourceOf(base).readUrl(`${base}/${PLUGIN}/1.0.0/manifest.json`);
      const byFolder = await sourceOf(base).read(PLUGIN, '1.0.0');
      expect(byUrl.document).toEqual(byFolder.document);
    });

    it('refuses a manifest changed after it was signed (DOCUMENT_MISMATCH), naming its URL', async () => {
      await expect(sourceOf(baseOf()).read(BROKEN, '1.0.0')).rejects.toMatchObject({
        name: 'TrustError',
        code: 'DOCUMENT_MISMATCH',
        message: expect.stringContaining(`${baseOf()}/${BROKEN}/1.0.0/manifest.json`),
      });
    });

    it('refuses a manifest signed by a key the source does not trust (DOCUMENT_MISMATCH)', async () => {
      const onlyPublisher = sourceOf(baseOf(), [publisher.key]);
      await expect(onlyPublisher.read(BROKEN, '2.0.0')).rejects.toMatchObject({
        name: 'TrustError',
        code: 'DOCUMENT_MISMATCH',
        message: expect.stringContaining('not by a key trusted for source "team"'),
      });
      // The same bytes verify with the key that made them.
      await expect(sourceOf(baseOf(), [stranger]).read(BROKEN, '2.0.0')).resolves.toBeDefined();
    });

    it('refuses a manifest of another plugin or version than its folder, naming both', async () => {
      await expect(sourceOf(baseOf()).read(BROKEN, '3.0.0')).rejects.toMatchObject({
        name: 'TrustError',
        code: 'DOCUMENT_MISMATCH',
        message: expect.stringContaining(`is of ${PLUGIN}@3.0.0, but its folder is ${BROKEN}/3.0.0`),
      });
      await expect(sourceOf(baseOf()).read(BROKEN, '4.0.0')).rejects.toMatchObject({
        name: 'TrustError',
        code: 'DOCUMENT_MISMATCH',
        message: expect.stringContaining(`is of ${BROKEN}@4.0.1, but its folder is ${BROKEN}/4.0.0`),
      });
    });

    it('refuses a signed manifest that is not a valid manifest (DOCUMENT_MALFORMED), naming the field', async () => {
      await expect(sourceOf(baseOf()).read(BROKEN, '5.0.0')).rejects.toMatchObject({
        name: 'TrustError',
        code: 'DOCUMENT_MALFORMED',
        message: expect.stringContaining('/capabilities'),
      });
    });

    it('reports a version the folder does not hold as FETCH_NOT_FOUND', async () => {
      await expect(sourceOf(baseOf()).read(PLUGIN, '9.9.9')).rejects.toMatchObject({
        name: 'ClientError',
        code: 'FETCH_NOT_FOUND',
      });
    });
  });
}

describe('when a version is a prerelease', () => {
  it('is no latest version, and heads its channel', async () => {
    const { document } = await sourceOf(TRANSPORTS['file:']()).read(PLUGIN, '2.0.0-beta.1');
    expect(document.latest_version).toBeNull();
    expect(document.channels).toEqual({ beta: '2.0.0-beta.1' });
    expect(document.versions[0]?.prerelease).toBe(true);
  });
});

describe('when the S3 credentials are wrong', () => {
  it('fails with FETCH_FAILED naming the bucket', async () => {
    const wrong = createHttpFetcher({
      env: { AWS_ACCESS_KEY_ID: 'NOT-S3RVER', AWS_SECRET_ACCESS_KEY: 'x', AWS_ENDPOINT_URL_S3: s3.endpoint },
    });
    cleanups.push(() => wrong.close());
    const source = sourceOf(TRANSPORTS['s3:'](), [publisher.key], wrong);
    await expect(source.read(PLUGIN, '1.0.0')).rejects.toMatchObject({
      name: 'ClientError',
      code: 'FETCH_FAILED',
      message: expect.stringContaining(`bucket "${BUCKET}"`),
    });
  });
});

describe('when a request does not name a plugin version', () => {
  it('refuses a name that is not a plugin name, and a version that is not SemVer (REQUEST_INVALID)', async () => {
    const source = sourceOf(TRANSPORTS['file:']());
    await expect(source.versions('../etc')).rejects.toMatchObject({ code: 'REQUEST_INVALID' });
    await expect(source.read(PLUGIN, '../1.0.0')).rejects.toMatchObject({ code: 'REQUEST_INVALID' });
    await expect(source.readUrl(`${web.url}/${PLUGIN}/1.0.0/`)).rejects.toMatchObject({
      code: 'REQUEST_INVALID',
    });
  });

  it('refuses a source that trusts no key (CLIENT_CONFIG_INVALID)', () => {
    expect(() => sourceOf(TRANSPORTS['file:'](), [])).toThrow(
      expect.objectContaining({ name: 'ClientError', code: 'CLIENT_CONFIG_INVALID' }),
    );
  });
});

describe('when a manifest URL is on another origin than the source', () => {
  it('reads it without the source credentials', async () => {
    const other = await startStaticServer(root);
    cleanups.push(() => other.close());
    const endpoint: Endpoint = {
      ...endpointOf(web.url),
      credentials: { type: 'bearer_token', token: 'team-secret' },
    };
    const source = new FolderSource({ name: 'team', endpoint, fetcher, keys: [publisher.key] });
    await source.readUrl(`${other.url}/${PLUGIN}/1.0.0/manifest.json`);
    await source.readUrl(`${web.url}/${PLUGIN}/1.0.0/manifest.json`);
    expect(other.requests.map((r) => r.headers.authorization)).toEqual([undefined, undefined]);
    expect(web.requests.slice(-2).map((r) => r.headers.authorization)).toEqual([
      'Bearer team-secret',
      'Bearer team-secret',
    ]);
  });
});

describe('when a manifest URL in a bucket is given with its key (install s3://…/manifest.json --key FILE)', () => {
  it('reads it from the bucket as the fetcher reads any s3: folder, and refuses one no bucket is named by before reading', async () => {
    // The client held the URL to a registry's rule (https:, loopback http:, file:), stricter than the fetcher's:
    // an s3: manifest URL, which the fetcher reads as a set's bucket is read, was REQUEST_INVALID.
    const dir = await mkdtemp(path.join(tmpdir(), 'plugindex-folder-client-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    // The SDK names s3rver as the user's own endpoint only from the process environment.
    vi.stubEnv('AWS_ENDPOINT_URL_S3', s3.endpoint);
    const env = { ...S3_ENV, AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL_S3: s3.endpoint };
    const client = createClient({
      dirs: {
        config: path.join(dir, 'config'),
        data: path.join(dir, 'data'),
        cache: path.join(dir, 'cache'),
      },
      fetcher: createHttpFetcher({ env, retries: 0 }),
      env,
      platform: { os: 'linux', arch: 'amd64' },
    });
    try {
      const key = (await testKey('publisher')).publicKey;
      const target = await client.reference(`${TRANSPORTS['s3:']()}/${PLUGIN}/1.0.0/manifest.json`, { key });
      expect(target?.request).toBe(`${PLUGIN}@1.0.0`);
      await expect(client.reference(`s3://x/${PLUGIN}/1.0.0/manifest.json`, { key })).rejects.toMatchObject({
        name: 'ClientError',
        code: 'REQUEST_INVALID',
      });
      // Told what is wrong with it, its bucket's name: a registry's words said no s3: URL was allowed.
      const refused = await client
        .reference(`s3://Acme_Bucket/${PLUGIN}/1.0.0/manifest.json`, { key })
        .catch((error: unknown) => error);
      expect(refused).toMatchObject({ name: 'ClientError', code: 'REQUEST_INVALID' });
      expect((refused as Error).message).toContain('a valid bucket name');
      expect((refused as Error).message).not.toContain('is not allowed');
    } finally {
      vi.unstubAllEnvs();
      await client.close();
    }
  });
});

describe('when the document is made from a verified manifest', () => {
  const digest = 'ab'.repeat(32);
  const manifest = {
    ...validManifest({ name: PLUGIN, version: '1.0.0' }),
    installation: {
      artifacts: [
        {
          os: 'linux',
          arch: 'arm64',
          oci: {
            reference: '127.0.0.1:5000/team/demo-plugin:1.0.0',
            digest: `sha256:${digest.toUpperCase()}`,
          },
          sha256: digest,
          size_bytes: 10,
        },
      ],
    },
    permissions: ['network_client', 'config_read'],
    resources: { max_memory_mb: 256 },
  };
  const document = () =>
    folderPluginDocument({
      manifest: { manifest: manifest as never, bytes: encode('{}'), signature: 'sig' },
      manifestUrl: 'https://plugins.example/demo-plugin/1.0.0/manifest.json',
      folderUrl: 'https://plugins.example/demo-plugin/1.0.0',
      publisher: 'F'.repeat(40),
    });

  it('points an oci artifact at its repository by digest, tag left out', () => {
    expect(document().versions[0]?.artifacts[0]).toEqual({
      os: 'linux',
      arch: 'arm64',
      url: `oci://127.0.0.1:5000/team/demo-plugin@sha256:${digest}`,
      oci: { reference: '127.0.0.1:5000/team/demo-plugin:1.0.0', digest: `sha256:${digest}` },
      sha256: digest,
      size_bytes: 10,
      hosted: false,
    });
  });

  it('carries the permissions sorted, and the resources', () => {
    expect(document().versions[0]).toMatchObject({
      permissions: ['config_read', 'network_client'],
      resources: { max_memory_mb: 256 },
    });
  });
});
