/**
 * Plugin sets end to end, as a library: one set file naming every kind of source, each served for real on
 * 127.0.0.1 — a registry the pipeline published (the local server), a folder of signed manifests on disk,
 * the same folder behind a plain static web server and in s3rver — installed exactly, locked beside the
 * file, reproduced with `frozen` on a clean cache, compared (`diffSet`), cleaned (`cleanSet`), held to a
 * policy and to the permissions already accepted, and discovered on disk with whether each verifies.
 */

import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import {
  cp,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRegistryServer, listenRegistryServer } from '../../cli/local/server.ts';
import { createClient, type PlugindexClient } from '../../client/client.ts';
import { ContentCache } from '../../client/disk/cache.ts';
import { ClientState, setTrustName } from '../../client/disk/state.ts';
import { ClientError } from '../../client/errors.ts';
import { createHttpFetcher } from '../../client/fetcher.ts';
import { parseLockfile, serializeLockfile } from '../../client/lockfile.ts';
import { fixedClock } from '../../index-builder/clock.ts';
import { sha256Hex } from '../../index-builder/digest.ts';
import { TrustError } from '../../index-builder/errors.ts';
import { SIGNED_SNAPSHOT_KEY, versionFolder } from '../../index-builder/layout.ts';
import { processSubmissions } from '../../index-builder/pipeline/index.ts';
import { createSigner } from '../../index-builder/signing.ts';
import type { StoredObject } from '../../index-builder/store.ts';
import { deadPid } from '../support/dead-pid.ts';
import {
  encode,
  makeBundle,
  makeRegistry,
  ociBundle,
  sha256,
  type TestRegistry,
  testKey,
  validManifest,
} from '../support/fixtures.ts';
import { type OciRegistry, pushBlob, REGISTRY_USER, startOciRegistry } from '../support/oci-registry.ts';
import { type LocalS3, startLocalS3 } from '../support/s3.ts';
import { type StaticServer, startStaticServer } from '../support/static-server.ts';
import { makeTestCa, type TestCa } from '../support/tls.ts';
import { UNTRUSTED_KEYS, type UntrustedKey } from '../support/untrusted-keys.ts';

const NOW = new Date('2026-11-02T00:00:00Z');
const LINUX = { os: 'linux', arch: 'amd64' } as const;
const BUCKET = 'team-plugins';
const S3_ENV = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1' };
const LENS_1_1 = encode('#!/bin/sh\necho lens 1.1.0\n');
const LENS_1_2 = encode('#!/bin/sh\necho lens 1.2.0\n');
const LENS_1_2_MAC = encode('#!/bin/sh\necho lens 1.2.0 mac\n');
const ROLLUP = encode('#!/bin/sh\necho rollup beta\n');
/** The executable of a folder plugin's version. */
const tool = (name: string, version: string): Uint8Array => encode(`#!/bin/sh\necho ${name} ${version}\n`);

/** Whether the temp folder's filesystem ignores letter case (macOS and Windows by default). */
const caseIgnored = (() => {
  const probe = mkdtempSync(join(tmpdir(), 'plugindex-case-'));
  try {
    writeFileSync(join(probe, 'Probe'), '');
    return existsSync(join(probe, 'probe'));
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
})();

/** A set file installing `list` (its `plugins:` lines) from the team folder's disk provider into `location`. */
const diskSet = (location: string, list: string) => `plugins:
  install_location: ${location}
  providers:
    - { type: file, name: disk, path: ${folder}, key: ./publisher.asc }
  plugins:
${list}`;
const DISK_TOOL = '    - { provider: disk, name: disk-tool, version: "1.0.0" }\n';
const TEAM_TOOL = '    - { provider: disk, name: team-tool, version: "1.0.0" }\n';

let registry: TestRegistry;
let base: string;
let closeRegistry: () => Promise<void>;
let root: string;
let folder: string;
let web: StaticServer;
let s3: LocalS3;
const requests: string[] = [];

function lensBundle(version: string, body: Uint8Array, permissions: string[], mac?: Uint8Array) {
  return makeBundle({
    manifest: validManifest({ name: 'kubecost-lens', version, permissions }),
    artifacts: [
      { ...LINUX, name: 'kubecost-lens', body },
      ...(mac ? [{ os: 'darwin', arch: 'arm64', name: 'kubecost-lens', body: mac }] : []),
    ],
  });
}

/** A folder as the spec's filesystem discovery lays it out: `<name>/<version>/manifest.json(.asc)` and the file. */
async function writeFolderVersion(
  dir: string,
  name: string,
  version: string,
  body: Uint8Array,
  overrides: Record<string, unknown> = {},
): Promise<void> {
  // A source's tree, as the registry's, leaves build metadata out of a version's folder.
  const at = join(dir, name, versionFolder(version));
  await mkdir(join(at, 'bin'), { recursive: true });
  const manifest = validManifest({
    name,
    version,
    permissions: ['filesystem_read'],
    resources: { max_memory_mb: 64 },
    installation: {
      artifacts: [{ ...LINUX, file: `bin/${name}`, sha256: sha256(body), size_bytes: body.byteLength }],
    },
    ...overrides,
  });
  const bytes = encode(`${JSON.stringify(manifest, null, 2)}\n`);
  const signer = await createSigner((await testKey('publisher')).secretKey);
  await writeFile(join(at, 'manifest.json.asc'), await signer.sign(bytes));
  await writeFile(join(at, 'manifest.json'), bytes);
  await writeFile(join(at, 'bin', name), body);
}

async function uploadTree(dir: string, prefix: string): Promise<void> {
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = join(entry.parentPath, entry.name);
    const key = `${prefix}/${relative(dir, file).split(sep).join('/')}`;
    await s3.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: await readFile(file) }));
  }
}

beforeAll(async () => {
  registry = await makeRegistry();
  await processSubmissions(
    registry.context,
    await registry.submit(
      await lensBundle('1.1.0', LENS_1_1, ['network_client']),
      await lensBundle('1.2.0', LENS_1_2, ['network_client', 'process_spawn'], LENS_1_2_MAC),
      await makeBundle({
        manifest: validManifest({ name: 'multicloud-rollup', version: '2.0.0-beta.1' }),
        artifacts: [{ ...LINUX, name: 'multicloud-rollup', body: ROLLUP }],
      }),
    ),
  );
  const listening = await listenRegistryServer(
    createRegistryServer({ site: registry.site, log: (line) => requests.push(line) }),
    0,
  );
  base = listening.url;
  closeRegistry = listening.close;
  root = await mkdtemp(join(tmpdir(), 'plugindex-set-'));
  folder = join(root, 'team-folder');
  for (const [name, version] of [
    ['team-tool', '1.0.0'],
    ['team-tool', '1.1.0'],
    ['web-tool', '1.0.0'],
    ['bucket-tool', '1.0.0'],
    ['bucket-tool', '1.0.2'],
    ['disk-tool', '1.0.0'],
    ['disk-tool', '1.0.3'],
    ['disk-tool', '2.0.0'],
    ['beta-tool', '1.0.0'],
    ['beta-tool', '2.0.0-beta.1'],
  ] as const)
    await writeFolderVersion(folder, name, version, tool(name, version));
  // Newer than 2.0.0 but for another host API: a range must still find 2.0.0.
  await writeFolderVersion(folder, 'disk-tool', '2.1.0', tool('disk-tool', '2.1.0'), {
    requirements: { min_api_version: 'v2' },
  });
  web = await startStaticServer(folder);
  s3 = await startLocalS3([BUCKET]);
  await uploadTree(folder, 'shared/plugins');
});

afterAll(async () => {
  await closeRegistry();
  await web.close();
  await s3.close();
  await rm(root, { recursive: true, force: true });
});

interface Project {
  readonly dir: string;
  readonly file: string;
  readonly lockfile: string;
  /** `env` in place of the project's (the environment a command runs in). */
  client(options?: { offline?: boolean; env?: Readonly<Record<string, string>> }): PlugindexClient;
}

let projects = 0;
/** A checkout holding a set file and the keys it pins, with its own client folders. */
async function project(setText: string, env: Readonly<Record<string, string>> = {}): Promise<Project> {
  projects += 1;
  const dir = join(root, `p${projects}`);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'registry.asc'), registry.registryKey.publicKey);
  await writeFile(join(dir, 'publisher.asc'), (await testKey('publisher')).publicKey);
  const file = join(dir, 'plugins.yaml');
  await writeFile(file, setText);
  const home = join(dir, '.home');
  const dirs = { config: join(home, 'config'), data: join(home, 'data'), cache: join(home, 'cache') };
  return {
    dir,
    file,
    lockfile: join(dir, 'plugins.lock'),
    client: (options = {}) =>
      createClient({
        dirs,
        // s3rver named as the user's own S3 endpoint, so the requests to it are signed (transport/s3.ts).
        fetcher: createHttpFetcher({ env: { ...S3_ENV, AWS_ENDPOINT_URL_S3: s3.endpoint }, retries: 0 }),
        env: options.env ?? env,
        home: join(home, 'user'),
        clock: fixedClock(NOW),
        platform: LINUX,
        offline: options.offline ?? false,
        freshForMs: 0,
      }),
  };
}

async function using<T>(p: Project, body: (client: PlugindexClient) => Promise<T>): Promise<T> {
  const client = p.client();
  try {
    return await body(client);
  } finally {
    await client.close();
  }
}

const HOME = { home: '/nonexistent-home' };

/** The issue's example, as written, against the served registry. */
function exampleSet(url: string): string {
  return `plugins:
  install_location: ./plugins
  providers:
    - type: registry            # also: url, s3, file
      name: local
      url: ${url}
      key: ./registry.asc       # the pinned registry key
  plugins:
    - provider: local
      name: kubecost-lens
      version: "^1.1"
      platforms: [linux/amd64, darwin/arm64]
    - provider: local
      name: multicloud-rollup
      version: beta
`;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Runs `body` with the forger's own folder `name` (under the test's root) served on 127.0.0.1, closed after. */
async function withForgerHost(
  name: string,
  body: (forged: string, hostUrl: string) => Promise<void>,
): Promise<void> {
  const forged = join(root, name);
  await mkdir(forged, { recursive: true });
  const host = await startStaticServer(forged);
  try {
    await body(forged, host.url);
  } finally {
    await host.close();
  }
}

/** A lock file's JSON, to edit as a forger (or a careless merge) would. */
async function readLockJson(lockfile: string) {
  return JSON.parse(await readFile(lockfile, 'utf8'));
}

/** Writes `lock` as the client writes a lock file. */
async function writeLockJson(lockfile: string, lock: unknown): Promise<void> {
  await writeFile(lockfile, `${JSON.stringify(lock, null, 2)}\n`);
}

/** A project of `setText`, installed, and its lock's JSON to edit. */
async function installedWithLock(setText: string) {
  const p = await project(setText);
  await using(p, (c) => c.installSet(p.file, HOME));
  return { p, lock: await readLockJson(p.lockfile) };
}

/** A fresh checkout of `setText` beside `lock`, nothing installed nor cached: a CI job's. */
async function checkoutWithLock(setText: string, lock: unknown): Promise<Project> {
  const q = await project(setText);
  await writeLockJson(q.lockfile, lock);
  return q;
}

/** `installSet` of `q`'s set reproducing its lock (`--frozen`). */
function installFrozen(q: Project) {
  return using(q, (c) => c.installSet(q.file, { ...HOME, frozen: true }));
}

/** Asserts that `attempt` is refused with an error of `type` and `code`, its message holding `message`. */
async function expectRefused(
  attempt: Promise<unknown>,
  type: new (...args: never[]) => Error,
  code: string,
  message: string,
): Promise<void> {
  await expect(attempt).rejects.toBeInstanceOf(type);
  await expect(attempt).rejects.toMatchObject({ code, message: expect.stringContaining(message) });
}

/** Asserts that a frozen install of `q` is refused as `expectRefused` says, having written no plugins folder. */
async function expectFrozenRefused(
  q: Project,
  type: new (...args: never[]) => Error,
  code: string,
  message: string,
): Promise<void> {
  await expectRefused(installFrozen(q), type, code, message);
  expect(await exists(join(q.dir, 'plugins'))).toBe(false);
}

describe('when the issue\u2019s example set is installed', () => {
  it('installs every listed platform under install_location and locks the set beside the file', async () => {
    const p = await project(exampleSet(base));
    const result = await using(p, (c) => c.installSet(p.file, HOME));
    expect(result.lockfile).toBe(p.lockfile);
    expect(result.items.map((i) => [i.name, i.version, Object.keys(i.paths)])).toEqual([
      ['kubecost-lens', '1.2.0', ['linux-amd64', 'darwin-arm64']],
      ['multicloud-rollup', '2.0.0-beta.1', ['linux-amd64']],
    ]);
    expect(await readFile(join(p.dir, 'plugins/kubecost-lens/1.2.0/linux-amd64/kubecost-lens'))).toEqual(
      Buffer.from(LENS_1_2),
    );
    expect(await readFile(join(p.dir, 'plugins/kubecost-lens/1.2.0/darwin-arm64/kubecost-lens'))).toEqual(
      Buffer.from(LENS_1_2_MAC),
    );
    expect(await exists(join(p.dir, 'plugins/kubecost-lens/1.2.0/manifest.json.asc'))).toBe(true);
    const lock = parseLockfile(await readFile(p.lockfile, 'utf8'), p.lockfile);
    expect(lock.config_sha256).toBe(sha256(await readFile(p.file)));
    expect(Object.keys(lock.plugins)).toEqual(['kubecost-lens', 'multicloud-rollup']);
    expect(lock.plugins['kubecost-lens']?.permissions).toEqual(['network_client', 'process_spawn']);
    expect(lock.plugins['kubecost-lens']?.artifacts['linux-amd64']?.url).toBe(
      `${base}/plugins/kubecost-lens/1.2.0/artifacts/linux-amd64/kubecost-lens`,
    );
  });

  it('installs nothing again and asks nothing when the tree already is the lock; diff says nothing would change', async () => {
    const p = await project(exampleSet(base));
    await using(p, (c) => c.installSet(p.file, HOME));
    const before = requests.length;
    const again = await using(p, (c) => c.installSet(p.file, HOME));
    expect(again.items.every((i) => i.unchanged)).toBe(true);
    const diff = await using(p, (c) => c.diffSet(p.file, HOME));
    expect(diff).toMatchObject({ changes: [], lockChanges: [], fileChanged: false });
    expect(requests.slice(before)).toEqual([]);
  });
});

/** A set of disk-tool at `version` from the signed folder on disk, then `policy` (YAML, or nothing). */
function diskToolSet(version: string, policy: string): string {
  return `plugins:
  providers:
    - { type: file, name: disk, path: ${folder}, key: ./publisher.asc }
  plugins:
    - { provider: disk, name: disk-tool, version: "${version}" }
${policy}`;
}

/** One set naming every kind of source. */
function mixedSet(): string {
  return `plugins:
  install_location: ./plugins
  providers:
    - { type: registry, name: local, url: ${base}, key: ./registry.asc }
    - { type: url, name: web, url: ${web.url}, key: ./publisher.asc }
    - { type: s3, name: bucket, bucket: ${BUCKET}, prefix: shared/plugins, region: us-east-1, endpoint: ${s3.endpoint}, key: ./publisher.asc }
    - { type: file, name: disk, path: ${folder}, key: ./publisher.asc }
  plugins:
    - { provider: local, name: kubecost-lens, version: "1.1.0" }
    - { provider: web, name: web-tool, version: "1.0.0", output: web-tool-bin, install_location: ./web-plugins }
    - { provider: web, name: team-tool, path: team-tool/1.1.0/manifest.json }
    - { provider: bucket, name: bucket-tool, version: "^1.0" }
    - { provider: disk, name: disk-tool, version: "~1.0" }
`;
}

describe('when a set names a registry by URL', () => {
  it('keeps the highest generation it saw, so a replayed older snapshot is refused though the lock is older still', async () => {
    const p = await project(exampleSet(base));
    await using(p, (c) => c.installSet(p.file, HOME));
    const old = registry.site.objects.get(SIGNED_SNAPSHOT_KEY) as StoredObject;
    await processSubmissions(
      registry.context,
      await registry.submit(await makeBundle({ manifest: validManifest({ name: 'unrelated-tool' }) })),
    );
    // Nothing of the set moved: the lock keeps its generation, the client's trust state the newer one.
    const lockText = await readFile(p.lockfile, 'utf8');
    await using(p, (c) => c.installSet(p.file, { ...HOME, upgrade: true }));
    expect(await readFile(p.lockfile, 'utf8')).toBe(lockText);
    const current = registry.site.objects.get(SIGNED_SNAPSHOT_KEY) as StoredObject;
    registry.site.objects.set(SIGNED_SNAPSHOT_KEY, old);
    try {
      await expect(using(p, (c) => c.installSet(p.file, { ...HOME, upgrade: true }))).rejects.toMatchObject({
        name: 'TrustError',
        code: 'SNAPSHOT_ROLLBACK',
      });
    } finally {
      registry.site.objects.set(SIGNED_SNAPSHOT_KEY, current);
    }
  });

  it('takes a discovery registry without a key only as the configured registry of that name and URL', async () => {
    const set = (url: string) => `discovery:
  registries:
    - { name: shared, url: "${url}" }
plugins:
  plugins:
    - { provider: shared, name: kubecost-lens, version: "1.1.0" }
`;
    const p = await project(set(base));
    await expect(using(p, (c) => c.installSet(p.file, HOME))).rejects.toMatchObject({
      code: 'REGISTRY_NOT_PINNED',
      message: expect.stringContaining('#/discovery/registries/0: registry shared'),
    });
    await using(p, (c) =>
      c.addRegistry({ name: 'shared', url: base, pin: { armored: registry.registryKey.publicKey } }),
    );
    const result = await using(p, (c) => c.installSet(p.file, HOME));
    expect(result.items.map((i) => [i.name, i.version, i.registry])).toEqual([
      ['kubecost-lens', '1.1.0', 'shared'],
    ]);
    await writeFile(p.file, set(base.replace('127.0.0.1', 'localhost')));
    await expect(using(p, (c) => c.installSet(p.file, HOME))).rejects.toMatchObject({
      code: 'REGISTRY_NOT_PINNED',
      message: expect.stringContaining(`is configured at ${base}, not at`),
    });
  });
});

describe('when a file a provider names is not what it should be', () => {
  const set = (fields: string) => `plugins:
  providers:
    - type: registry
      name: local
      url: ${base}
${fields}
  plugins:
    - { provider: local, name: kubecost-lens, version: "1.1.0" }
`;

  it('names the set file and the field of a key file that is a folder, a CA bundle that is missing, and a secret not set', async () => {
    const p = await project('placeholder');
    await writeFile(p.file, set('      key: ./'));
    await expect(using(p, (c) => c.installSet(p.file, HOME))).rejects.toMatchObject({
      name: 'ClientError',
      code: 'PLUGIN_SET_INVALID',
      message: expect.stringContaining(`${p.file}#/plugins/providers/0/key: `),
    });
    await writeFile(p.file, set('      key: ./registry.asc\n      ca_file: ./missing-ca.pem'));
    await expect(using(p, (c) => c.installSet(p.file, HOME))).rejects.toMatchObject({
      name: 'ClientError',
      code: 'PLUGIN_SET_INVALID',
      message: expect.stringContaining(`${p.file}#/plugins/providers/0/ca_file: `),
    });
    // The registry configured to send that secret (so the set may), the secret there when it was added.
    const adding = p.client({ env: { UNSET_TOKEN: 'then-set' } });
    try {
      await adding.addRegistry({
        name: 'local',
        url: base,
        pin: { armored: registry.registryKey.publicKey },
        auth: { type: 'bearer_token', bearer_token: `\${UNSET_TOKEN}` },
      });
    } finally {
      await adding.close();
    }
    await writeFile(
      p.file,
      set(`      key: ./registry.asc\n      auth: { type: bearer_token, bearer_token: "\${UNSET_TOKEN}" }`),
    );
    await expect(using(p, (c) => c.installSet(p.file, HOME))).rejects.toMatchObject({
      name: 'ClientError',
      code: 'CREDENTIALS_MISSING',
      message: expect.stringContaining(`${p.file}#/plugins/providers/0/auth: `),
    });
  });
});

/**
 * A host keeping the headers of every request it is sent, answering each 404: where a set would send a
 * secret. Over TLS with `tls` (a certificate from a test CA).
 */
async function startHeaderKeeper(
  tls?: TestCa['tls'],
): Promise<{ readonly url: string; readonly seen: string[]; close(): Promise<void> }> {
  const seen: string[] = [];
  const keep = (request: IncomingMessage, response: ServerResponse) => {
    seen.push(JSON.stringify(request.headers));
    response.writeHead(404).end();
  };
  const host = tls ? createHttpsServer(tls, keep) : createServer(keep);
  await new Promise<void>((resolve) => host.listen(0, '127.0.0.1', resolve));
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${(host.address() as AddressInfo).port}`,
    seen,
    close: async () => {
      host.closeAllConnections();
      await new Promise<void>((resolve) => host.close(() => resolve()));
    },
  };
}

describe('when a set\u2019s auth would send a secret where the configuration does not', () => {
  const TOKEN = 'the-teams-token';
  const set = (url: string, reference: string) => `plugins:
  providers:
    - type: registry
      name: team
      url: ${url}
      key: ./registry.asc
      auth: { type: bearer_token, bearer_token: "${reference}" }
  plugins:
    - { provider: team, name: kubecost-lens, version: "1.1.0" }
`;

  it('refuses it (CREDENTIALS_NOT_TRUSTED) before any request, and the secret goes nowhere', async () => {
    // Prepare: a host of the set's choosing, keeping every header it is sent; the secret in the environment.
    const host = await startHeaderKeeper();
    const { url, seen } = host;
    try {
      for (const text of [
        set(url, `\${TEAM_TOKEN}`),
        // A web folder as much as a registry.
        `plugins:
  providers:
    - { type: url, name: team, url: "${url}/plugins", key: ./publisher.asc, auth: { type: api_key, api_key: "\${TEAM_TOKEN}" } }
  plugins:
    - { provider: team, name: team-tool, version: "1.0.0" }
`,
      ]) {
        const p = await project(text, { TEAM_TOKEN: TOKEN });

        // Act
        const install = using(p, (c) => c.installSet(p.file, HOME));

        // Assess
        await expect(install).rejects.toMatchObject({
          name: 'ClientError',
          code: 'CREDENTIALS_NOT_TRUSTED',
          message: expect.stringContaining(
            `${p.file}#/plugins/providers/0/auth: the set would send the secret \${TEAM_TOKEN} to ${url}`,
          ),
        });
        await expect(install).rejects.toSatisfy((error: ClientError) => error.refusal);
        await expect(using(p, (c) => c.diffSet(p.file, HOME))).rejects.toMatchObject({
          code: 'CREDENTIALS_NOT_TRUSTED',
        });
      }
      expect(seen.filter((headers) => headers.includes(TOKEN))).toEqual([]);
    } finally {
      await host.close();
    }
  });

  it('sends it where a configured registry sends that same secret, and no other secret there', async () => {
    const p = await project(set(base, `\${TEAM_TOKEN}`), { TEAM_TOKEN: TOKEN, OTHER_SECRET: 'x' });
    await using(p, (c) =>
      c.addRegistry({
        name: 'shared',
        url: base,
        pin: { armored: registry.registryKey.publicKey },
        auth: { type: 'bearer_token', bearer_token: `\${TEAM_TOKEN}` },
      }),
    );
    const result = await using(p, (c) => c.installSet(p.file, HOME));
    expect(result.items.map((i) => [i.name, i.version, i.registry])).toEqual([
      ['kubecost-lens', '1.1.0', 'team'],
    ]);

    await writeFile(p.file, set(base, `\${OTHER_SECRET}`));
    await expect(using(p, (c) => c.installSet(p.file, HOME))).rejects.toMatchObject({
      code: 'CREDENTIALS_NOT_TRUSTED',
      message: expect.stringContaining(`the set would send the secret \${OTHER_SECRET}`),
    });
  });
});

describe('when a set\u2019s auth is honoured and the set names its own CA for that origin', () => {
  const TOKEN = 'the-teams-token';
  const set = `plugins:
  providers:
    - type: registry
      name: team
      url: URL
      key: ./registry.asc
      ca_file: ./ca.pem
      auth: { type: bearer_token, bearer_token: "\${TEAM_TOKEN}" }
  plugins:
    - { provider: team, name: kubecost-lens, version: "1.1.0" }
`;

  /** The registry configured at `url` with the set's auth (as `registry add` writes it, without asking it). */
  async function configure(p: Project, fields: { url: string; ca_file?: string }): Promise<void> {
    const entry = {
      name: 'shared',
      priority: 0,
      key_fingerprint: registry.registryKey.fingerprint,
      mirrors: [],
      auth: { type: 'bearer_token', bearer_token: `\${TEAM_TOKEN}` },
      ...fields,
    };
    await mkdir(join(p.dir, '.home/config'), { recursive: true });
    await writeFile(
      join(p.dir, '.home/config/config.json'),
      JSON.stringify({ schema: 'plugindex/client-config/v1', registries: [entry] }),
    );
  }

  it('refuses the CA (CA_NOT_TRUSTED) before any request, so no one holding it reads the secret', async () => {
    // Prepare: whoever can intercept the connection to the configured registry's origin, with a certificate
    // for it from a CA of their own; the set (as a pull request edits it) trusting that CA there.
    const interceptor = makeTestCa('interceptor');
    const host = await startHeaderKeeper(interceptor.tls);
    const { url, seen } = host;
    try {
      const p = await project(set.replace('URL', url), { TEAM_TOKEN: TOKEN });
      await writeFile(join(p.dir, 'ca.pem'), interceptor.caPem);
      await configure(p, { url });

      // Act
      const install = using(p, (c) => c.installSet(p.file, HOME));

      // Assess
      await expect(install).rejects.toBeInstanceOf(ClientError);
      await expect(install).rejects.toMatchObject({
        code: 'CA_NOT_TRUSTED',
        message: expect.stringContaining(
          `${p.file}#/plugins/providers/0/ca_file: the set would trust the CA bundle ${join(p.dir, 'ca.pem')} for ${url}, where it sends the secret \${TEAM_TOKEN} of the configured registry (shared: the system's roots)`,
        ),
      });
      await expect(install).rejects.toSatisfy((error: ClientError) => error.refusal);
      expect(seen.filter((headers) => headers.includes(TOKEN))).toEqual([]);
    } finally {
      await host.close();
      interceptor.remove();
    }
  });

  it('takes the CA the configured registry trusts there, a copy in the checkout with other line endings', async () => {
    // A guard: every set's ca_file was taken before CA_NOT_TRUSTED; this holds the refusal to a CA other
    // than the configuration's.
    const ca = makeTestCa('team');
    const host = await startHeaderKeeper(ca.tls);
    const { url, seen } = host;
    try {
      const p = await project(set.replace('URL', url), { TEAM_TOKEN: TOKEN });
      await writeFile(join(p.dir, 'ca.pem'), ca.caPem.replace(/\n/g, '\r\n'));
      await configure(p, { url, ca_file: ca.caFile });

      // The registry is reached over TLS, with the secret (it has no snapshot, so the install fails there).
      await expect(using(p, (c) => c.installSet(p.file, HOME))).rejects.toMatchObject({
        code: expect.not.stringMatching(/CA_NOT_TRUSTED|CREDENTIALS_NOT_TRUSTED/),
      });
      expect(seen.some((headers) => headers.includes(`Bearer ${TOKEN}`))).toBe(true);
    } finally {
      await host.close();
      ca.remove();
    }
  });
});

describe('when a set file is named as its own lock would be', () => {
  it('refuses it (PLUGIN_SET_INVALID) and leaves it as it was, rather than write the lock over it', async () => {
    // Prepare: the example set, saved as team.lock.
    const text = exampleSet(base);
    const p = await project(text);
    const file = join(p.dir, 'team.lock');
    await writeFile(file, text);

    // Act and assert: each command that opens the set refuses it by code, naming the file.
    const refusal = {
      name: 'ClientError',
      code: 'PLUGIN_SET_INVALID',
      message: expect.stringContaining(`${file}: a plugin set file named .lock`),
    };
    await expect(using(p, (c) => c.installSet(file, HOME))).rejects.toMatchObject(refusal);
    await expect(using(p, (c) => c.verifySet(file, HOME))).rejects.toMatchObject(refusal);
    expect(await readFile(file, 'utf8')).toBe(text);
  });
});

describe('when two set files in one folder differ only in the extension', () => {
  it('refuses every command on either (PLUGIN_SET_INVALID) rather than let one overwrite the pins the other locked', async () => {
    // Prepare: plugins.yaml installed and locked in plugins.lock, then plugins.yml written beside it.
    const p = await project(exampleSet(base));
    await using(p, (c) => c.installSet(p.file, HOME));
    const lockText = await readFile(p.lockfile, 'utf8');
    const other = join(p.dir, 'plugins.yml');
    // Another set: the example without its second plugin.
    await writeFile(
      other,
      exampleSet(base).split('    - provider: local\n      name: multicloud')[0] as string,
    );

    // Act and assert: both files name the one lock, so each command on either is refused, naming both.
    for (const [file, sharing] of [
      [other, p.file],
      [p.file, other],
    ] as const) {
      const refusal = {
        name: 'ClientError',
        code: 'PLUGIN_SET_INVALID',
        message: expect.stringContaining(
          `${file}: ${sharing} beside it is a plugin set file too, and a set is locked in the file named for it without its extension: both would be locked in ${p.lockfile}`,
        ),
      };
      await expect(using(p, (c) => c.installSet(file, HOME))).rejects.toMatchObject(refusal);
      await expect(using(p, (c) => c.diffSet(file, HOME))).rejects.toMatchObject(refusal);
      await expect(using(p, (c) => c.cleanSet(file, HOME))).rejects.toMatchObject(refusal);
      await expect(using(p, (c) => c.verifySet(file, HOME))).rejects.toMatchObject(refusal);
    }
    expect(await readFile(p.lockfile, 'utf8')).toBe(lockText);
    expect(await exists(join(p.dir, 'plugins/multicloud-rollup/2.0.0-beta.1/linux-amd64'))).toBe(true);

    // The other one gone, the set's own lock (named as it always was) is read as before.
    await rm(other);
    const again = await using(p, (c) => c.installSet(p.file, HOME));
    expect(again.items.every((i) => i.unchanged)).toBe(true);
    expect(await readFile(p.lockfile, 'utf8')).toBe(lockText);
  });

  it('counts another file that reads as a set whatever its extension, and not a note, a folder or a link to the set', async () => {
    const p = await project(exampleSet(base));
    // Not set files: notes about the plugins, the install folder, and another name for the same file.
    await writeFile(join(p.dir, 'plugins.md'), '# Our plugins\n\nSee plugins.yaml.\n');
    await mkdir(join(p.dir, 'plugins'));
    await symlink('plugins.yaml', join(p.dir, 'plugins.yml'));
    await using(p, (c) => c.installSet(p.file, HOME));
    expect(await exists(p.lockfile)).toBe(true);

    // A set written as JSON (or without an extension, or a copy kept as .bak) is locked in plugins.lock too.
    await writeFile(join(p.dir, 'plugins.json'), JSON.stringify({ plugins: { plugins: [] } }));
    await expect(using(p, (c) => c.diffSet(p.file, HOME))).rejects.toMatchObject({
      code: 'PLUGIN_SET_INVALID',
      message: expect.stringContaining(`${join(p.dir, 'plugins.json')} beside it is a plugin set file too`),
    });
  });
});

/**
 * Two folder sources, each a provider holding one version of `name` (its binary marked with the provider's
 * name), under `root/<name>-<provider>`; returns the set that pins `version` from `provider` into ./plugins,
 * `extra` after it.
 */
async function twoFolderSources(
  name: string,
  sources: readonly [provider: string, version: string][],
  extra = '',
): Promise<(provider: string, version: string) => string> {
  const providers: string[] = [];
  for (const [provider, version] of sources) {
    const folder = join(root, `${name}-${provider}`);
    await writeFolderVersion(folder, name, version, tool(name, provider));
    providers.push(`    - { type: file, name: ${provider}, path: ${folder}, key: ./publisher.asc }`);
  }
  return (provider, version) => `plugins:
  install_location: ./plugins
  providers:
${providers.join('\n')}
  plugins:
    - { provider: ${provider}, name: ${name}, version: "${version}" }
${extra}`;
}

describe('when two versions of a plugin differ only in letter case (one folder where case is ignored)', () => {
  it('refuses to hold both in one install folder (VERSION_FOLDER_CLASH), and installs once the other is removed', async () => {
    // Prepare: 1.0.0-RC.1 from one folder, 1.0.0-rc.1 (another SemVer version) from another, installed in
    // turn into one install folder: on macOS and Windows their folders are one, each writing over the other.
    const set = await twoFolderSources(
      'case-tool',
      [
        ['upper', '1.0.0-RC.1'],
        ['lower', '1.0.0-rc.1'],
      ],
      'policy:\n  prereleases: true\n',
    );
    const p = await project(set('upper', '1.0.0-RC.1'));
    await using(p, (c) => c.installSet(p.file, HOME));
    await writeFile(p.file, set('lower', '1.0.0-rc.1'));

    // Act and assert: install and diff refuse it, naming both versions; nothing is placed or removed.
    for (const run of [
      () => using(p, (c) => c.installSet(p.file, HOME)),
      () => using(p, (c) => c.diffSet(p.file, HOME)),
    ]) {
      const refused = run();
      await expectRefused(
        refused,
        ClientError,
        'VERSION_FOLDER_CLASH',
        `case-tool@1.0.0-rc.1 would be placed in ${join(p.dir, 'plugins', 'case-tool', '1.0.0-rc.1')}, and case-tool@1.0.0-RC.1 is installed in ${join(p.dir, 'plugins', 'case-tool', '1.0.0-RC.1')}`,
      );
    }
    expect(await readdir(join(p.dir, 'plugins', 'case-tool'))).toEqual(['1.0.0-RC.1']);
    const installed = await using(p, (c) => c.installed({ dir: join(p.dir, 'plugins') }));
    expect(Object.keys(installed.plugins['case-tool']?.versions ?? {})).toEqual(['1.0.0-RC.1']);

    // The other version removed first, as the message says, the new one installs.
    await using(p, (c) => c.remove('case-tool@1.0.0-RC.1', { dir: join(p.dir, 'plugins') }));
    const done = await using(p, (c) => c.installSet(p.file, HOME));
    expect(done.items.map((i) => [i.name, i.version])).toEqual([['case-tool', '1.0.0-rc.1']]);
    expect(await readdir(join(p.dir, 'plugins', 'case-tool'))).toEqual(['1.0.0-rc.1']);
  });
});

describe('when two versions of a plugin differ only in build metadata (one folder on every system)', () => {
  it('refuses to place one over the other (VERSION_FOLDER_CLASH), and removing one of a pair both recorded marks the other', async () => {
    // Prepare: 1.0.0+a from one folder, 1.0.0+b from another; a set pins one, then the other, into one
    // install folder, where both are `build-tool/1.0.0`.
    const set = await twoFolderSources('build-tool', [
      ['a', '1.0.0+a'],
      ['b', '1.0.0+b'],
    ]);
    const p = await project(set('a', '1.0.0+a'));
    const plugins = join(p.dir, 'plugins');
    const binary = join(plugins, 'build-tool', '1.0.0', 'linux-amd64', 'build-tool');
    await using(p, (c) => c.installSet(p.file, HOME));
    const placedA = await readFile(binary);
    await writeFile(p.file, set('b', '1.0.0+b'));

    // Act and assert: install and diff refuse 1.0.0+b, naming both; 1.0.0+a's files and record stay.
    for (const run of [
      () => using(p, (c) => c.installSet(p.file, HOME)),
      () => using(p, (c) => c.diffSet(p.file, HOME)),
    ])
      await expectRefused(
        run(),
        ClientError,
        'VERSION_FOLDER_CLASH',
        `build-tool@1.0.0+b would be placed in ${join(plugins, 'build-tool', '1.0.0')}, and build-tool@1.0.0+a is installed in ${join(plugins, 'build-tool', '1.0.0')}: their names differ only in build metadata`,
      );
    expect(await readFile(binary)).toEqual(placedA);
    const kept = await using(p, (c) => c.installed({ dir: plugins }));
    expect(Object.keys(kept.plugins['build-tool']?.versions ?? {})).toEqual(['1.0.0+a']);

    // A tree holding both recorded (as a client before this check left it): removing one takes the folder
    // they share, and the other is marked, not left to a host as whole.
    const installedJson = join(plugins, 'installed.json');
    const both = JSON.parse(await readFile(installedJson, 'utf8'));
    const record = both.plugins['build-tool'].versions['1.0.0+a'];
    both.plugins['build-tool'].versions['1.0.0+b'] = record;
    await writeFile(installedJson, JSON.stringify(both));
    await expectRefused(
      using(p, (c) => c.installSet(p.file, HOME)),
      ClientError,
      'VERSION_FOLDER_CLASH',
      `build-tool@1.0.0+b and build-tool@1.0.0+a are both installed in ${plugins}`,
    );
    await using(p, (c) => c.remove('build-tool@1.0.0+a', { dir: plugins }));
    const after = await using(p, (c) => c.installed({ dir: plugins }));
    expect(after.plugins['build-tool']?.versions['1.0.0+b']?.problem).toMatchObject({
      code: 'VERSION_FOLDER_CLASH',
      message: expect.stringContaining(
        'build-tool@1.0.0+b differs from build-tool@1.0.0+a only in build metadata',
      ),
    });

    // The other placed again by the next install, its own files in the folder.
    const done = await using(p, (c) => c.installSet(p.file, HOME));
    expect(done.items.map((i) => [i.name, i.version, i.unchanged])).toEqual([
      ['build-tool', '1.0.0+b', false],
    ]);
    const placed = await using(p, (c) => c.installed({ dir: plugins }));
    expect(Object.keys(placed.plugins['build-tool']?.versions ?? {})).toEqual(['1.0.0+b']);
    expect(placed.plugins['build-tool']?.versions['1.0.0+b']?.problem).toBeUndefined();
    expect(await readFile(binary)).toEqual(Buffer.from(tool('build-tool', 'b')));
  });
});

/** A set of one plugin, `case-tool`, from one of two folders: `upper` holds 1.0.0-RC.1, `lower` 1.0.0-rc.1. */
async function caseFolders(prefix: string): Promise<(provider: 'upper' | 'lower') => string> {
  const upper = join(root, `${prefix}-upper`);
  const lower = join(root, `${prefix}-lower`);
  await writeFolderVersion(upper, 'case-tool', '1.0.0-RC.1', tool('case-tool', 'upper'));
  await writeFolderVersion(lower, 'case-tool', '1.0.0-rc.1', tool('case-tool', 'lower'));
  return (provider) => `plugins:
  install_location: ./plugins
  providers:
    - { type: file, name: upper, path: ${upper}, key: ./publisher.asc }
    - { type: file, name: lower, path: ${lower}, key: ./publisher.asc }
  plugins:
    - { provider: ${provider}, name: case-tool, version: "${provider === 'upper' ? '1.0.0-RC.1' : '1.0.0-rc.1'}" }
policy:
  prereleases: true
`;
}

describe('when the install folder holds a folder installed.json does not record, its name another version\u2019s but for case', () => {
  it('refuses to place the version into it (VERSION_FOLDER_CLASH, naming the folder), and installs once it is gone', async () => {
    // Prepare: 1.0.0-RC.1 installed, then its record lost (an install cut short between its folder and its
    // record, or an older client's installed.json): its folder is all that is left of it.
    const set = await caseFolders('case-unrecorded');
    const p = await project(set('upper'));
    await using(p, (c) => c.installSet(p.file, HOME));
    const plugins = join(p.dir, 'plugins');
    const installedJson = join(plugins, 'installed.json');
    const recorded = JSON.parse(await readFile(installedJson, 'utf8'));
    delete recorded.plugins['case-tool'];
    await writeFile(installedJson, JSON.stringify(recorded));
    await writeFile(p.file, set('lower'));

    // Act and assert: install and diff refuse 1.0.0-rc.1, naming the folder on disk; nothing is placed.
    for (const run of [
      () => using(p, (c) => c.installSet(p.file, HOME)),
      () => using(p, (c) => c.diffSet(p.file, HOME)),
    ])
      await expectRefused(
        run(),
        ClientError,
        'VERSION_FOLDER_CLASH',
        `case-tool@1.0.0-rc.1 would be placed in ${join(plugins, 'case-tool', '1.0.0-rc.1')}, and ${join(plugins, 'case-tool', '1.0.0-RC.1')} is there, which ${installedJson} does not record`,
      );
    expect(await readdir(join(plugins, 'case-tool'))).toEqual(['1.0.0-RC.1']);

    // A name Windows reads as the version's folder (a trailing dot dropped) is one folder there too.
    await rm(join(plugins, 'case-tool', '1.0.0-RC.1'), { recursive: true });
    await mkdir(join(plugins, 'case-tool', '1.0.0-rc.1.'));
    await expectRefused(
      using(p, (c) => c.installSet(p.file, HOME)),
      ClientError,
      'VERSION_FOLDER_CLASH',
      `${join(plugins, 'case-tool', '1.0.0-rc.1.')} is there`,
    );

    // The folder moved away, as the message says, the version installs.
    await rm(join(plugins, 'case-tool', '1.0.0-rc.1.'), { recursive: true });
    const done = await using(p, (c) => c.installSet(p.file, HOME));
    expect(done.items.map((i) => [i.name, i.version, i.unchanged])).toEqual([
      ['case-tool', '1.0.0-rc.1', false],
    ]);
    expect(await readdir(join(plugins, 'case-tool'))).toEqual(['1.0.0-rc.1']);
  });
});

describe('when an older client installed both versions that differ only in case', () => {
  it('takes neither as installed, and removing one marks the other to be placed again', async () => {
    // Prepare: a tree as an older client left it: 1.0.0-RC.1 and 1.0.0-rc.1 both recorded, both folders
    // here (where case is ignored, one folder holding whichever was placed last). Made by installing each
    // in turn, then putting the first one's folder and record back.
    const set = await caseFolders('case-both');
    const p = await project(set('upper'));
    const plugins = join(p.dir, 'plugins');
    const installedJson = join(plugins, 'installed.json');
    await using(p, (c) => c.installSet(p.file, HOME));
    const upperRecord = JSON.parse(await readFile(installedJson, 'utf8')).plugins['case-tool'].versions[
      '1.0.0-RC.1'
    ];
    const kept = join(root, 'case-both-kept');
    await cp(join(plugins, 'case-tool', '1.0.0-RC.1'), kept, { recursive: true });
    await using(p, (c) => c.remove('case-tool@1.0.0-RC.1', { dir: plugins }));
    await writeFile(p.file, set('lower'));
    await using(p, (c) => c.installSet(p.file, HOME));
    await cp(kept, join(plugins, 'case-tool', '1.0.0-RC.1'), { recursive: true });
    const both = JSON.parse(await readFile(installedJson, 'utf8'));
    both.plugins['case-tool'].versions['1.0.0-RC.1'] = upperRecord;
    await writeFile(installedJson, JSON.stringify(both));
    const lockText = await readFile(p.lockfile, 'utf8');

    // Act and assert: the lock's 1.0.0-rc.1 is recorded and whole, yet install and diff refuse the tree,
    // naming both, rather than call it up to date.
    for (const run of [
      () => using(p, (c) => c.installSet(p.file, HOME)),
      () => using(p, (c) => c.diffSet(p.file, HOME)),
    ])
      await expectRefused(
        run(),
        ClientError,
        'VERSION_FOLDER_CLASH',
        `case-tool@1.0.0-rc.1 and case-tool@1.0.0-RC.1 are both installed in ${plugins}`,
      );
    expect(await readFile(p.lockfile, 'utf8')).toBe(lockText);

    // The one not wanted removed, as the message says: the other is marked, as its files went with the
    // folder where case is ignored, and a host does not run it until an install places it again.
    await using(p, (c) => c.remove('case-tool@1.0.0-RC.1', { dir: plugins }));
    const after = await using(p, (c) => c.installed({ dir: plugins }));
    expect(after.plugins['case-tool']?.versions['1.0.0-rc.1']?.problem).toMatchObject({
      code: 'VERSION_FOLDER_CLASH',
      message: expect.stringContaining("case-tool@1.0.0-rc.1's folder differs from case-tool@1.0.0-RC.1's"),
    });
    const done = await using(p, (c) => c.installSet(p.file, HOME));
    expect(done.items.map((i) => [i.name, i.version, i.unchanged])).toEqual([
      ['case-tool', '1.0.0-rc.1', false],
    ]);
    const placed = await using(p, (c) => c.installed({ dir: plugins }));
    expect(Object.keys(placed.plugins['case-tool']?.versions ?? {})).toEqual(['1.0.0-rc.1']);
    expect(placed.plugins['case-tool']?.versions['1.0.0-rc.1']?.problem).toBeUndefined();
    expect(await readdir(join(plugins, 'case-tool'))).toEqual(['1.0.0-rc.1']);
  });
});

describe('when set or lock names differ only in letter case (one file where case is ignored)', () => {
  it('refuses a set file whose lock shares its name but for case with another set\u2019s lock', async () => {
    // Prepare: plugins.yaml (locked in plugins.lock) beside Plugins.yml (locked in Plugins.lock): on macOS
    // and Windows, by default, the two locks are one file.
    const p = await project(exampleSet(base));
    const other = join(p.dir, 'Plugins.yml');
    await writeFile(other, exampleSet(base));

    // Act and assert: each command on either is refused, naming the other and that case is ignored there.
    for (const [file, sharing] of [
      [p.file, other],
      [other, p.file],
    ] as const) {
      const refusal = using(p, (c) => c.installSet(file, HOME));
      await expectRefused(
        refusal,
        ClientError,
        'PLUGIN_SET_INVALID',
        `${file}: ${sharing} beside it is a plugin set file too`,
      );
      await expect(refusal).rejects.toMatchObject({
        message: expect.stringContaining('differ only in letter case'),
      });
      await expect(using(p, (c) => c.diffSet(file, HOME))).rejects.toMatchObject({
        code: 'PLUGIN_SET_INVALID',
      });
    }
    expect(await exists(join(p.dir, 'plugins'))).toBe(false);
    expect(await exists(p.lockfile)).toBe(false);
  });

  it('refuses a set file whose extension is .lock in any case, rather than write the lock over it', async () => {
    const text = exampleSet(base);
    const p = await project(text);
    const file = join(p.dir, 'team.LOCK');
    await writeFile(file, text);

    const refused = using(p, (c) => c.installSet(file, HOME));

    await expectRefused(refused, ClientError, 'PLUGIN_SET_INVALID', `${file}: a plugin set file named .lock`);
    expect(await readFile(file, 'utf8')).toBe(text);
    expect(await exists(join(p.dir, 'team.lock'))).toBe(false);
  });
});

describe('when a set mixes every kind of source', () => {
  it('installs from a registry, a web folder, a bucket and a disk folder, each verified by its pinned key', async () => {
    const p = await project(mixedSet());
    const result = await using(p, (c) => c.installSet(p.file, HOME));
    expect(result.items.map((i) => [i.name, i.version, i.registry, relative(p.dir, i.path)])).toEqual([
      ['kubecost-lens', '1.1.0', 'local', 'plugins/kubecost-lens/1.1.0/linux-amd64/kubecost-lens'],
      ['web-tool', '1.0.0', 'web', 'web-plugins/web-tool/1.0.0/linux-amd64/web-tool-bin'],
      ['team-tool', '1.1.0', 'web', 'plugins/team-tool/1.1.0/linux-amd64/team-tool'],
      ['bucket-tool', '1.0.2', 'bucket', 'plugins/bucket-tool/1.0.2/linux-amd64/bucket-tool'],
      ['disk-tool', '1.0.3', 'disk', 'plugins/disk-tool/1.0.3/linux-amd64/disk-tool'],
    ]);
    for (const item of result.items.slice(1))
      expect(await readFile(item.path)).toEqual(Buffer.from(tool(item.name, item.version)));
    const lock = parseLockfile(await readFile(p.lockfile, 'utf8'), p.lockfile);
    expect(Object.keys(lock.registries).sort()).toEqual(['bucket', 'disk', 'local', 'web']);
    expect(lock.plugins['bucket-tool']?.artifacts['linux-amd64']?.url).toBe(
      `s3://${BUCKET}/shared/plugins/bucket-tool/1.0.2/bin/bucket-tool`,
    );
  });

  it('reproduces the lock with frozen on a clean cache with the registry stopped, from where the lock found each artifact', async () => {
    const p = await project(mixedSet());
    await using(p, (c) => c.installSet(p.file, HOME));
    const lockText = await readFile(p.lockfile, 'utf8');
    // Another checkout of the same set and lock, on a machine with nothing cached.
    const q = await project(mixedSet());
    await writeFile(q.lockfile, lockText);
    const before = requests.length;
    const frozen = await using(q, (c) => c.installSet(q.file, { ...HOME, frozen: true }));
    expect(frozen.lockfileChanged).toBe(false);
    expect(frozen.items.map((i) => [i.name, i.version])).toEqual(
      (await using(p, (c) => c.installSet(p.file, HOME))).items.map((i) => [i.name, i.version]),
    );
    // Only immutable files were asked of the registry (the artifact, the manifest and its signature, placed
    // beside it): no snapshot, bin or plugin document.
    expect(
      requests.slice(before).filter((line) => !/\/artifacts\/|\/manifest\.json(\.asc)?\b/.test(line)),
    ).toEqual([]);
    expect(await readFile(q.lockfile, 'utf8')).toBe(lockText);
    for (const item of frozen.items) {
      expect(item.warnings).toEqual([]);
      expect(await exists(join(dirname(dirname(item.path)), 'manifest.json.asc'))).toBe(true);
    }
    expect((await using(q, (c) => c.verifySet(q.file, HOME))).every((f) => f.ok)).toBe(true);
  });

  it('never rewrites the lock when frozen or locked, even for a set file changed only in a comment', async () => {
    const p = await project(mixedSet());
    await using(p, (c) => c.installSet(p.file, HOME));
    const lockText = await readFile(p.lockfile, 'utf8');
    await writeFile(p.file, `# reviewed\n${await readFile(p.file, 'utf8')}`);
    for (const flags of [{ frozen: true }, { locked: true }]) {
      const result = await using(p, (c) => c.installSet(p.file, { ...HOME, ...flags }));
      expect(result.lockfileChanged).toBe(false);
      expect(await readFile(p.lockfile, 'utf8')).toBe(lockText);
    }
    expect((await using(p, (c) => c.diffSet(p.file, HOME))).fileChanged).toBe(true);
    expect((await using(p, (c) => c.installSet(p.file, HOME))).lockfileChanged).toBe(true);
  });

  it('takes a set file and lock checked out with CRLF line endings (Git for Windows) for the ones locked: nothing changed, nothing rewritten', async () => {
    // Prepare: the set installed and locked on Linux; a Windows checkout of both (core.autocrlf), nothing
    // installed there yet.
    const p = await project(diskSet('./plugins', DISK_TOOL));
    await using(p, (c) => c.installSet(p.file, HOME));
    const crlf = (text: string) => text.replaceAll('\n', '\r\n');
    const q = await project(crlf(await readFile(p.file, 'utf8')));
    const lockText = crlf(await readFile(p.lockfile, 'utf8'));
    await writeFile(q.lockfile, lockText);
    // Act
    const diff = await using(q, (c) => c.diffSet(q.file, HOME));
    const installed = await using(q, (c) => c.installSet(q.file, HOME));
    // Assess: the same set and lock, whatever the line endings (a lock rewritten there would flip back and
    // forth with every install on each system, and diff -c would exit 1 on one of them for good).
    expect(diff).toMatchObject({ lockChanges: [], fileChanged: false });
    expect(installed.lockfileChanged).toBe(false);
    expect(installed.items.map((i) => [i.name, i.version])).toEqual([['disk-tool', '1.0.0']]);
    expect(await readFile(q.lockfile, 'utf8')).toBe(lockText);
  });

  it("takes a CRLF checkout's lock an older client wrote there (the digest of the file's bytes) for the set's: nothing changed, nothing rewritten", async () => {
    // Prepare: the set locked, then checked out with CR LF (Git for Windows) and locked there by a client
    // that digested the file's bytes: its lock records the digest of the CR LF text.
    const p = await project(diskSet('./plugins', DISK_TOOL));
    await using(p, (c) => c.installSet(p.file, HOME));
    const crlf = (text: string) => text.replaceAll('\n', '\r\n');
    const setText = crlf(await readFile(p.file, 'utf8'));
    const q = await project(setText);
    const locked = parseLockfile(await readFile(p.lockfile, 'utf8'), p.lockfile);
    const lockText = crlf(serializeLockfile({ ...locked, config_sha256: sha256Hex(setText) }));
    await writeFile(q.lockfile, lockText);
    // Act
    const diff = await using(q, (c) => c.diffSet(q.file, HOME));
    const installed = await using(q, (c) => c.installSet(q.file, HOME));
    // Assess: the same file the lock was made from (before, diff -c exited 1 there from the upgrade on, and
    // the next install -c rewrote the lock's digest, a change to commit for a file nobody changed).
    expect(diff).toMatchObject({ lockChanges: [], fileChanged: false });
    expect(installed.lockfileChanged).toBe(false);
    expect(await readFile(q.lockfile, 'utf8')).toBe(lockText);
  });

  it('says a version the folder does not hold is not there, naming the source', async () => {
    const p = await project(mixedSet().replace('version: "~1.0"', 'version: "9.9.9"'));
    await expect(using(p, (c) => c.installSet(p.file, HOME))).rejects.toMatchObject({
      code: 'NO_MATCHING_VERSION',
      message: expect.stringContaining('disk-tool@9.9.9 is not in disk'),
    });
    // The place in the set that asks for it is named first.
    await expect(using(p, (c) => c.installSet(p.file, HOME))).rejects.toMatchObject({
      message: expect.stringMatching(new RegExp(`^${p.file}#/plugins/plugins/4 \\(disk-tool\\): `)),
    });
  });

  it('refuses a frozen install of a set the lock does not match, naming the plugin', async () => {
    const p = await project(mixedSet());
    await using(p, (c) => c.installSet(p.file, HOME));
    await writeFile(p.file, (await readFile(p.file, 'utf8')).replace('version: "~1.0"', 'version: "^2"'));
    await expect(using(p, (c) => c.installSet(p.file, { ...HOME, frozen: true }))).rejects.toMatchObject({
      name: 'ClientError',
      code: 'LOCK_OUT_OF_SYNC',
      message: expect.stringContaining('disk-tool@^2'),
    });
  });
});

describe('when what a set installed is verified', () => {
  it('names a version in its folders the set does not name there as not the set\u2019s (NOT_IN_SET), judging it not', async () => {
    // Prepare: the example set installed, then its beta plugin taken out of the set (and the lock, by an
    // install): still in the folder, where `clean -c` would remove it, but no longer the set's.
    const p = await project(exampleSet(base));
    await using(p, (c) => c.installSet(p.file, HOME));
    await writeFile(
      p.file,
      exampleSet(base).split('    - provider: local\n      name: multicloud')[0] as string,
    );
    await using(p, (c) => c.installSet(p.file, HOME));
    const before = JSON.parse(await readFile(join(p.dir, 'plugins/installed.json'), 'utf8'));
    expect(Object.keys(before.plugins)).toEqual(['kubecost-lens', 'multicloud-rollup']);

    // Act
    const findings = await using(p, (c) => c.verifySet(p.file, HOME));

    // Assess: the set's plugin verified, the other named as not the set's, and nothing written of it.
    expect(findings).toEqual([
      expect.objectContaining({ name: 'kubecost-lens', ok: true }),
      {
        name: 'multicloud-rollup',
        version: '2.0.0-beta.1',
        ok: false,
        code: 'NOT_IN_SET',
        message: expect.stringContaining(
          `${p.file} installs no plugin multicloud-rollup into ${join(p.dir, 'plugins')}`,
        ),
      },
    ]);
    const after = JSON.parse(await readFile(join(p.dir, 'plugins/installed.json'), 'utf8'));
    expect(after.plugins['multicloud-rollup']).toEqual(before.plugins['multicloud-rollup']);
  });

  it('discovers such a version as not the set\u2019s (not_in_set), judging it not by the set\u2019s policy', async () => {
    // Prepare: as above, and then a policy that refuses the registry both came from.
    const p = await project(exampleSet(base));
    await using(p, (c) => c.installSet(p.file, HOME));
    const kept = exampleSet(base).split('    - provider: local\n      name: multicloud')[0] as string;
    await writeFile(p.file, kept);
    await using(p, (c) => c.installSet(p.file, HOME));
    await writeFile(p.file, `${kept}policy:\n  registries: [elsewhere]\n`);

    // Act
    const report = await using(p, (c) => c.discover(p.file, HOME));

    // Assess
    expect(report.plugins).toEqual([
      expect.objectContaining({
        name: 'kubecost-lens',
        status: 'verified',
        policy: [expect.stringContaining('which is not among policy.registries (elsewhere)')],
      }),
      expect.objectContaining({
        name: 'multicloud-rollup',
        status: 'verified',
        not_in_set: expect.stringContaining(
          `${p.file} installs no plugin multicloud-rollup into ${join(p.dir, 'plugins')}`,
        ),
      }),
    ]);
    expect(report.plugins[1]).not.toHaveProperty('policy');
  });

  it('checks every version in the set\u2019s folders by the keys the set pins, and names a changed file', async () => {
    const p = await project(mixedSet());
    await using(p, (c) => c.installSet(p.file, HOME));
    const findings = await using(p, (c) => c.verifySet(p.file, HOME));
    expect(findings.map((f) => [f.name, f.ok])).toEqual([
      ['bucket-tool', true],
      ['disk-tool', true],
      ['kubecost-lens', true],
      ['team-tool', true],
      ['web-tool', true],
    ]);
    await writeFile(join(p.dir, 'plugins/disk-tool/1.0.3/linux-amd64/disk-tool'), 'changed');
    const after = await using(p, (c) => c.verifySet(p.file, HOME));
    expect(after.filter((f) => !f.ok).map((f) => [f.name, f.code])).toEqual([
      ['disk-tool', 'INSTALLED_MODIFIED'],
    ]);
    // A set's version is placed again by its set.
    expect(after.find((f) => !f.ok)?.message).toContain(`\`plugindex install -c ${p.file}\` places it again`);
  });

  it('places again a version verify refused for its signed manifest, which diff names, until it verifies', async () => {
    const p = await project(mixedSet());
    await using(p, (c) => c.installSet(p.file, HOME));
    // The executable intact; the signature beside its manifest gone (a host then refuses to run it).
    const signature = join(p.dir, 'plugins/disk-tool/1.0.3/manifest.json.asc');
    await rm(signature);
    const refused = await using(p, (c) => c.verifySet(p.file, HOME));
    expect(refused.filter((f) => !f.ok).map((f) => [f.name, f.code])).toEqual([
      ['disk-tool', 'INSTALLED_MODIFIED'],
    ]);

    const diff = await using(p, (c) => c.diffSet(p.file, HOME));
    const installed = await using(p, (c) => c.installSet(p.file, HOME));

    expect(diff.changes).toMatchObject([
      { name: 'disk-tool', change: 'changed', detail: expect.stringContaining('INSTALLED_MODIFIED') },
    ]);
    expect(installed.items.filter((i) => !i.unchanged).map((i) => i.name)).toEqual(['disk-tool']);
    expect(await exists(signature)).toBe(true);
    const verified = await using(p, (c) => c.verifySet(p.file, HOME));
    expect(verified.filter((f) => !f.ok)).toEqual([]);
    expect(verified.map((f) => f.name)).toContain('disk-tool');
  });

  it('places again a signed manifest changed or gone beside its version, verify run or not, and diff names it', async () => {
    const p = await project(mixedSet());
    await using(p, (c) => c.installSet(p.file, HOME));
    const manifest = join(p.dir, 'plugins/disk-tool/1.0.3/manifest.json');
    const signed = await readFile(manifest);
    // What a host reads of the plugin (its permissions) edited beside the intact executable; another gone.
    await writeFile(manifest, signed.toString('utf8').replace('filesystem_read', 'logging'));
    await rm(join(p.dir, 'plugins/bucket-tool/1.0.2/manifest.json.asc'));

    const diff = await using(p, (c) => c.diffSet(p.file, HOME));
    const installed = await using(p, (c) => c.installSet(p.file, HOME));

    expect(diff.changes.map((c) => [c.name, c.change])).toEqual([
      ['bucket-tool', 'changed'],
      ['disk-tool', 'changed'],
    ]);
    expect(diff.changes[1]?.detail).toContain('manifest.json');
    expect(installed.items.filter((i) => !i.unchanged).map((i) => i.name)).toEqual([
      'bucket-tool',
      'disk-tool',
    ]);
    expect(await readFile(manifest)).toEqual(signed);
    const verified = await using(p, (c) => c.verifySet(p.file, HOME));
    expect(verified.filter((f) => !f.ok)).toEqual([]);
    expect(verified.map((f) => f.name)).toEqual(expect.arrayContaining(['bucket-tool', 'disk-tool']));
    const again = await using(p, (c) => c.installSet(p.file, HOME));
    expect(again.items.map((i) => [i.name, i.unchanged])).toEqual(installed.items.map((i) => [i.name, true]));
  });
});

describe('when a set is compared with what is installed (diff)', () => {
  it('names what an install would add, upgrade, downgrade, find changed on disk, and what clean would remove', async () => {
    const p = await project(mixedSet());
    expect((await using(p, (c) => c.diffSet(p.file, HOME))).changes.map((c) => [c.name, c.change])).toEqual([
      ['bucket-tool', 'add'],
      ['disk-tool', 'add'],
      ['kubecost-lens', 'add'],
      ['team-tool', 'add'],
      ['web-tool', 'add'],
    ]);
    await using(p, (c) => c.installSet(p.file, HOME));
    const text = await readFile(p.file, 'utf8');
    await writeFile(
      p.file,
      text
        .replace('version: "~1.0"', 'version: "^2"')
        .replace('version: "1.1.0"', 'version: "1.2.0"')
        .replace('version: "^1.0" }', 'version: "1.0.0" }')
        .replace(/\n {4}- \{ provider: web, name: team-tool[^\n]*/, ''),
    );
    const installed = join(p.dir, 'web-plugins/web-tool/1.0.0/linux-amd64/web-tool-bin');
    await writeFile(installed, 'tampered');
    const diff = await using(p, (c) => c.diffSet(p.file, HOME));
    expect(diff.changes.map((c) => [c.name, c.change, c.from, c.to])).toEqual([
      ['bucket-tool', 'downgrade', '1.0.2', '1.0.0'],
      ['disk-tool', 'upgrade', '1.0.3', '2.0.0'],
      ['kubecost-lens', 'upgrade', '1.1.0', '1.2.0'],
      ['team-tool', 'remove', '1.1.0', undefined],
      ['web-tool', 'changed', '1.0.0', '1.0.0'],
    ]);
    expect(diff.changes.find((c) => c.name === 'web-tool')?.detail).toContain('no longer matches its digest');
    expect(diff.fileChanged).toBe(true);
  });

  it('cleans what the set no longer names, and cached artifacts nothing uses', async () => {
    const p = await project(mixedSet());
    await using(p, (c) => c.installSet(p.file, HOME));
    await writeFile(
      p.file,
      (await readFile(p.file, 'utf8')).replace(/\n {4}- \{ provider: web, name: team-tool[^\n]*/, ''),
    );
    await using(p, (c) => c.installSet(p.file, HOME));
    const report = await using(p, (c) => c.cleanSet(p.file, HOME));
    expect(report.removed.map((r) => `${r.name}@${r.version}`)).toEqual(['team-tool@1.1.0']);
    expect(report.blobsRemoved).toBe(1);
    expect(await exists(join(p.dir, 'plugins/team-tool'))).toBe(false);
    expect(await exists(join(p.dir, 'plugins/disk-tool/1.0.3/linux-amd64/disk-tool'))).toBe(true);
    expect((await using(p, (c) => c.cleanSet(p.file, HOME))).removed).toEqual([]);
  });

  it('finds the old copy of a plugin moved to another folder, and cleans it', async () => {
    const p = await project(mixedSet());
    await using(p, (c) => c.installSet(p.file, HOME));
    await writeFile(
      p.file,
      (await readFile(p.file, 'utf8')).replace(
        'version: "~1.0" }',
        'version: "~1.0", install_location: ./tools }',
      ),
    );
    await using(p, (c) => c.installSet(p.file, HOME));
    const diff = await using(p, (c) => c.diffSet(p.file, HOME));
    expect(diff.changes).toMatchObject([
      {
        name: 'disk-tool',
        change: 'remove',
        dir: join(p.dir, 'plugins'),
        detail: expect.stringContaining('another folder'),
      },
    ]);
    const report = await using(p, (c) => c.cleanSet(p.file, HOME));
    expect(report.removed).toEqual([{ name: 'disk-tool', version: '1.0.3', dir: join(p.dir, 'plugins') }]);
    expect(await exists(join(p.dir, 'tools/disk-tool/1.0.3/linux-amd64/disk-tool'))).toBe(true);
    expect(await exists(join(p.dir, 'plugins/disk-tool'))).toBe(false);
  });
});

describe('when a set names a folder another install fills (the client\u2019s own, another set\u2019s)', () => {
  /** A checkout whose set (as a pull request may write it) installs `plugins` into the client's own folder. */
  async function intoDataFolder(plugins: string) {
    const p = await project('placeholder');
    const data = join(p.dir, '.home/data/plugins');
    const setText = (list: string) => `plugins:
  install_location: ${data}
  providers:
    - { type: file, name: disk, path: ${folder}, key: ./publisher.asc }
    - { type: registry, name: local, url: ${base}, key: ./registry.asc }
  plugins:
${list}`;
    await writeFile(p.file, setText(plugins));
    // What the user installed by hand, with a plain install into the client's own folder.
    await using(p, async (c) => {
      await c.addRegistry({ name: 'community', url: base, pin: { armored: registry.registryKey.publicKey } });
      await c.install({ requests: ['kubecost-lens@1.1.0'], lockfile: join(p.dir, 'hand.lock') });
    });
    return { p, data, setText };
  }

  it('cleans only what this set placed there, leaving what the user installed (clean -c, diff -c)', async () => {
    // Prepare: the set installed into that folder, then one of its plugins dropped.
    const { p, data, setText } = await intoDataFolder(
      '    - { provider: disk, name: disk-tool, version: "1.0.0" }\n    - { provider: disk, name: team-tool, version: "1.0.0" }\n',
    );
    await using(p, (c) => c.installSet(p.file, HOME));
    await writeFile(p.file, setText(DISK_TOOL));
    await using(p, (c) => c.installSet(p.file, HOME));

    // Act
    const diff = await using(p, (c) => c.diffSet(p.file, HOME));
    const report = await using(p, (c) => c.cleanSet(p.file, HOME));

    // Assess: the set's own plugin removed; the user's left, and said to be left.
    expect(diff.changes.map((c) => [c.name, c.change, c.from])).toEqual([['team-tool', 'remove', '1.0.0']]);
    expect(report.removed).toEqual([{ name: 'team-tool', version: '1.0.0', dir: data }]);
    expect(report.left).toEqual([
      {
        name: 'kubecost-lens',
        version: '1.1.0',
        dir: data,
        detail: expect.stringContaining('not placed by this set'),
      },
    ]);
    expect(await exists(join(data, 'kubecost-lens/1.1.0/linux-amd64/kubecost-lens'))).toBe(true);
    const installed = JSON.parse(await readFile(join(data, 'installed.json'), 'utf8'));
    expect(Object.keys(installed.plugins)).toEqual(['disk-tool', 'kubecost-lens']);
  });

  it('says the user\u2019s is another\u2019s (NOT_PLACED_BY_SET, not_placed_by_set), not a rejection (verify -c, list -c)', async () => {
    // Prepare
    const { p, data } = await intoDataFolder('    - { provider: disk, name: disk-tool, version: "1.0.0" }\n');
    await using(p, (c) => c.installSet(p.file, HOME));

    // Act
    const findings = await using(p, (c) => c.verifySet(p.file, HOME));
    const report = await using(p, (c) => c.discover(p.file, HOME));

    // Assess
    expect(findings).toEqual([
      expect.objectContaining({ name: 'disk-tool', ok: true }),
      {
        name: 'kubecost-lens',
        version: '1.1.0',
        ok: false,
        code: 'NOT_PLACED_BY_SET',
        message: expect.stringContaining(
          `${p.file} installs no plugin kubecost-lens into ${data}, nor did it place it`,
        ),
      },
    ]);
    const lens = report.plugins.find((plugin) => plugin.name === 'kubecost-lens');
    expect(lens).toMatchObject({
      status: 'verified',
      not_placed_by_set: expect.stringContaining("another's, left as it is"),
    });
    expect(lens).not.toHaveProperty('not_in_set');
  });

  it('places its own version beside the user\u2019s, replacing none of it (install -c)', async () => {
    // Prepare: the set names the plugin the user installed, at another version.
    const { p, data } = await intoDataFolder(
      '    - { provider: local, name: kubecost-lens, version: "1.2.0" }\n',
    );

    // Act
    await using(p, (c) => c.installSet(p.file, { ...HOME, acceptPermissions: true }));
    const report = await using(p, (c) => c.cleanSet(p.file, HOME));

    // Assess
    const installed = JSON.parse(await readFile(join(data, 'installed.json'), 'utf8'));
    expect(installed.plugins['kubecost-lens'].current).toBe('1.2.0');
    expect(Object.keys(installed.plugins['kubecost-lens'].versions).sort()).toEqual(['1.1.0', '1.2.0']);
    expect(installed.plugins['kubecost-lens'].versions['1.2.0'].sets).toEqual(['../../../plugins.yaml']);
    expect(installed.plugins['kubecost-lens'].versions['1.1.0'].sets).toBeUndefined();
    expect(report.removed).toEqual([]);
    expect(await exists(join(data, 'kubecost-lens/1.1.0/linux-amd64/kubecost-lens'))).toBe(true);
  });
});

describe('when a checkout holding a set and its install folder is taken elsewhere (another clone, a CI cache)', () => {
  it('still knows what the set placed there: clean -c removes a plugin the set dropped, and diff -c says so', async () => {
    // Prepare: a set installs two plugins into ./plugins beside it; then the folder and the lock are found
    // beside the same set in another checkout, at another path, where the set drops one of them.
    const setText = (list: string) => diskSet('./plugins', list);
    const first = await project(setText(DISK_TOOL + TEAM_TOOL));
    await using(first, (c) => c.installSet(first.file, HOME));
    const moved = await project(setText(DISK_TOOL));
    await cp(join(first.dir, 'plugins'), join(moved.dir, 'plugins'), { recursive: true });
    await cp(first.lockfile, moved.lockfile);

    // Act
    const diff = await using(moved, (c) => c.diffSet(moved.file, HOME));
    const report = await using(moved, (c) => c.cleanSet(moved.file, HOME));

    // Assess
    const plugins = join(moved.dir, 'plugins');
    expect(diff.changes.map((c) => [c.name, c.change, c.from])).toEqual([['team-tool', 'remove', '1.0.0']]);
    expect(report.removed).toEqual([{ name: 'team-tool', version: '1.0.0', dir: plugins }]);
    expect(report.left).toEqual([]);
    const installed = JSON.parse(await readFile(join(plugins, 'installed.json'), 'utf8'));
    expect(Object.keys(installed.plugins)).toEqual(['disk-tool']);
    // Named as it travels: from the install folder, whatever the checkout's path.
    expect(installed.plugins['disk-tool'].versions['1.0.0'].sets).toEqual(['../plugins.yaml']);
  });
});

describe('when a checkout plants a link inside the install folder', () => {
  it('refuses to clean through it (INSTALL_PATH_LINKED), leaving the file outside it', async () => {
    // Prepare: a checkout whose plugins/ holds an installed.json naming a plugin the set does not, its folder a
    // link to a folder of the user's (here beside the checkout) where the "artifact" path lands on a file.
    const p = await project(`plugins:
  install_location: ./plugins
  providers:
    - { type: file, name: disk, path: ${folder}, key: ./publisher.asc }
  plugins:
    - { provider: disk, name: disk-tool, version: "~1.0" }
`);
    const victim = join(p.dir, 'victim');
    await mkdir(join(victim, '1.0.0', 'keys'), { recursive: true });
    await writeFile(join(victim, '1.0.0', 'keys', 'id_ed25519'), 'secret');
    await mkdir(join(p.dir, 'plugins'), { recursive: true });
    await symlink(victim, join(p.dir, 'plugins', 'evil-tool'));
    const hex = (c: string) => c.repeat(64);
    const record = {
      registry: 'disk',
      registry_key: hex('A').slice(0, 40),
      manifest_sha256: hex('a'),
      publisher: hex('B').slice(0, 40),
      installed: NOW.toISOString(),
      artifacts: { 'linux-amd64': { path: 'evil-tool/1.0.0/keys/id_ed25519', sha256: hex('c'), size: 6 } },
      // The checkout's installed.json says what it likes, this set placing it included.
      set: p.file,
    };
    await writeFile(
      join(p.dir, 'plugins', 'installed.json'),
      JSON.stringify({
        schema: 'plugindex/installed/v1',
        plugins: { 'evil-tool': { enabled: true, current: '1.0.0', versions: { '1.0.0': record } } },
      }),
    );

    // Act
    const cleaning = using(p, (c) => c.cleanSet(p.file, HOME));

    // Assess
    await expect(cleaning).rejects.toMatchObject({ name: 'ClientError', code: 'INSTALL_PATH_LINKED' });
    expect(await readFile(join(victim, '1.0.0', 'keys', 'id_ed25519'), 'utf8')).toBe('secret');
  });

  it('places an installed file again where a link to the same bytes elsewhere replaced it', async () => {
    // Prepare: an install, then its executable swapped for a link to a copy outside the folder (a file
    // another user may rewrite once the install has called the tree up to date).
    const p = await project(`plugins:
  install_location: ./plugins
  providers:
    - { type: file, name: disk, path: ${folder}, key: ./publisher.asc }
  plugins:
    - { provider: disk, name: disk-tool, version: "1.0.3" }
`);
    await using(p, (c) => c.installSet(p.file, HOME));
    const installed = join(p.dir, 'plugins/disk-tool/1.0.3/linux-amd64/disk-tool');
    const outside = join(p.dir, 'outside-copy');
    await writeFile(outside, tool('disk-tool', '1.0.3'));
    await rm(installed);
    await symlink(outside, installed);

    // Act
    const result = await using(p, (c) => c.installSet(p.file, HOME));

    // Assess
    expect(result.items.map((item) => [item.name, item.unchanged])).toEqual([['disk-tool', false]]);
    expect((await lstat(installed)).isSymbolicLink()).toBe(false);
    expect(await readFile(installed)).toEqual(Buffer.from(tool('disk-tool', '1.0.3')));
  });
});

describe('when an apply would remove what a set still names (diff, clean)', () => {
  it('names the files of a platform the set no longer lists, which clean removes and install leaves', async () => {
    // Prepare: the example set installed for linux/amd64 and darwin/arm64, then for linux/amd64 alone.
    const p = await project(exampleSet(base));
    await using(p, (c) => c.installSet(p.file, HOME));
    await writeFile(p.file, exampleSet(base).replace('[linux/amd64, darwin/arm64]', '[linux/amd64]'));
    const mac = join(p.dir, 'plugins/kubecost-lens/1.2.0/darwin-arm64/kubecost-lens');

    // Act and assess: diff names the platform's files, before and after an install (which leaves them).
    const removal = {
      name: 'kubecost-lens',
      change: 'remove',
      from: '1.2.0',
      dir: join(p.dir, 'plugins'),
      platforms: ['darwin-arm64'],
      detail: expect.stringContaining('the files of darwin-arm64, a platform the set no longer lists'),
    };
    expect((await using(p, (c) => c.diffSet(p.file, HOME))).changes).toEqual([removal]);
    await using(p, (c) => c.installSet(p.file, HOME));
    expect(await exists(mac)).toBe(true);
    expect((await using(p, (c) => c.diffSet(p.file, HOME))).changes).toEqual([removal]);

    // clean removes them, the version and its linux-amd64 file stay, and diff has nothing more to say.
    const report = await using(p, (c) => c.cleanSet(p.file, HOME));
    expect(report.removed).toEqual([
      { name: 'kubecost-lens', version: '1.2.0', dir: join(p.dir, 'plugins'), platforms: ['darwin-arm64'] },
    ]);
    expect(await exists(dirname(mac))).toBe(false);
    expect(await readFile(join(p.dir, 'plugins/kubecost-lens/1.2.0/linux-amd64/kubecost-lens'))).toEqual(
      Buffer.from(LENS_1_2),
    );
    const installed = JSON.parse(await readFile(join(p.dir, 'plugins/installed.json'), 'utf8'));
    expect(Object.keys(installed.plugins['kubecost-lens'].versions['1.2.0'].artifacts)).toEqual([
      'linux-amd64',
    ]);
    expect(await using(p, (c) => c.diffSet(p.file, HOME))).toMatchObject({ changes: [], lockChanges: [] });
    expect(await using(p, (c) => c.verifySet(p.file, HOME))).toEqual([
      expect.objectContaining({ name: 'kubecost-lens', version: '1.2.0', ok: true }),
      expect.objectContaining({ name: 'multicloud-rollup', ok: true }),
    ]);
  });

  it('removes no platform of a plugin whose platforms the set does not list (a shared folder may hold them)', async () => {
    // Prepare: installed for linux/amd64 and darwin/arm64, then the set's platforms line taken out (the
    // plugin is then installed for this machine's platform, and nothing rules the other out).
    const p = await project(exampleSet(base));
    await using(p, (c) => c.installSet(p.file, HOME));
    await writeFile(
      p.file,
      exampleSet(base).replace(/^\s*platforms: \[linux\/amd64, darwin\/arm64\]\n/m, ''),
    );
    const mac = join(p.dir, 'plugins/kubecost-lens/1.2.0/darwin-arm64/kubecost-lens');
    await using(p, (c) => c.installSet(p.file, HOME));

    // Act
    const diff = await using(p, (c) => c.diffSet(p.file, HOME));
    const report = await using(p, (c) => c.cleanSet(p.file, HOME));

    // Assess: nothing named or removed by platform; the other machine's files stay.
    expect(diff.changes.filter((c) => c.platforms !== undefined)).toEqual([]);
    expect(report.removed).toEqual([]);
    expect(await exists(mac)).toBe(true);
  });

  it('names an older version the set placed beside the one it installs, which clean or install removes', async () => {
    // Prepare: the set at kubecost-lens 1.1.0; then 1.2.0 installed into its folder by hand (\`plugindex
    // install NAME@V --dir plugins\`), and the set moved to 1.2.0: the tree is the lock (1.2.0 current, as
    // the set's lock says), and 1.1.0, which the set placed, stays.
    const setAt = (version: string) =>
      exampleSet(base)
        .replace('[linux/amd64, darwin/arm64]', '[linux/amd64]')
        .replace('"^1.1"', `"${version}"`);
    const prepared = async () => {
      const p = await project(setAt('1.1.0'));
      await using(p, (c) => c.installSet(p.file, HOME));
      await using(p, async (c) => {
        await c.addRegistry({ name: 'test', url: base, pin: { armored: registry.registryKey.publicKey } });
        await c.install({
          requests: ['kubecost-lens@1.2.0'],
          acceptPermissions: true,
          lockfile: join(p.dir, 'by-hand.lock'),
          dir: join(p.dir, 'plugins'),
        });
      });
      await writeFile(p.file, setAt('1.2.0'));
      await using(p, (c) => c.installSet(p.file, { ...HOME, acceptPermissions: true }));
      return { p, plugins: join(p.dir, 'plugins') };
    };
    const { p, plugins } = await prepared();

    // Act and assess: 1.1.0 is what clean removes, and diff says so.
    const older = { name: 'kubecost-lens', change: 'remove', from: '1.1.0', dir: plugins };
    expect((await using(p, (c) => c.diffSet(p.file, HOME))).changes).toEqual([
      { ...older, detail: 'a version the set no longer installs (`plugindex clean -c` removes it)' },
    ]);
    const report = await using(p, (c) => c.cleanSet(p.file, HOME));
    expect(report.removed).toEqual([{ name: 'kubecost-lens', version: '1.1.0', dir: plugins }]);
    expect((await using(p, (c) => c.diffSet(p.file, HOME))).changes).toEqual([]);

    // When the install places the set's version again (its file changed), it removes the others it placed.
    const q = await prepared();
    await writeFile(join(q.plugins, 'kubecost-lens/1.2.0/linux-amd64/kubecost-lens'), 'tampered');
    const placing = await using(q.p, (c) => c.diffSet(q.p.file, HOME));
    expect(placing.changes).toEqual([
      expect.objectContaining({ name: 'kubecost-lens', change: 'changed', from: '1.2.0', to: '1.2.0' }),
      {
        ...older,
        dir: q.plugins,
        detail: 'a version the set no longer installs (`plugindex install -c` removes it as it places 1.2.0)',
      },
    ]);
    await using(q.p, (c) => c.installSet(q.p.file, HOME));
    expect(await exists(join(q.plugins, 'kubecost-lens/1.1.0'))).toBe(false);
    expect((await using(q.p, (c) => c.diffSet(q.p.file, HOME))).changes).toEqual([]);
  });

  it('leaves an older version installed by hand beside the one the set installs, and says so', async () => {
    // Prepare: the set at kubecost-lens 1.2.0, then 1.1.0 installed into its folder by hand.
    const p = await project(exampleSet(base).replace('[linux/amd64, darwin/arm64]', '[linux/amd64]'));
    const plugins = join(p.dir, 'plugins');
    await using(p, (c) => c.installSet(p.file, HOME));
    await using(p, async (c) => {
      await c.addRegistry({ name: 'test', url: base, pin: { armored: registry.registryKey.publicKey } });
      await c.install({
        requests: ['kubecost-lens@1.1.0'],
        lockfile: join(p.dir, 'by-hand.lock'),
        dir: plugins,
      });
    });

    // Act
    const diff = await using(p, (c) => c.diffSet(p.file, HOME));
    const report = await using(p, (c) => c.cleanSet(p.file, HOME));

    // Assess: nothing of it is the apply's to remove.
    expect(diff.changes.filter((c) => c.change === 'remove')).toEqual([]);
    expect(report.removed).toEqual([]);
    expect(report.left).toEqual([
      { name: 'kubecost-lens', version: '1.1.0', dir: plugins, detail: expect.stringContaining('--dir') },
    ]);
    expect(await exists(join(plugins, 'kubecost-lens/1.1.0'))).toBe(true);
  });
});

describe('when a client before installed.json recorded the set placed the set\u2019s versions', () => {
  const setAt = (version: string) =>
    exampleSet(base)
      .replace('[linux/amd64, darwin/arm64]', '[linux/amd64]')
      .replace('"^1.1"', `"${version}"`);
  /** The set installed at kubecost-lens 1.1.0, its installed.json then as that client wrote it: no `sets`. */
  async function placedByOlderClient(text = setAt('1.1.0')) {
    const p = await project(text);
    await using(p, (c) => c.installSet(p.file, HOME));
    const plugins = join(p.dir, 'plugins');
    const file = join(plugins, 'installed.json');
    const installed = JSON.parse(await readFile(file, 'utf8'));
    for (const plugin of Object.values(installed.plugins) as {
      versions: Record<string, { sets?: string[] }>;
    }[])
      for (const record of Object.values(plugin.versions)) delete record.sets;
    await writeFile(file, `${JSON.stringify(installed, null, 2)}\n`);
    return { p, plugins, file };
  }
  const setOf = async (file: string, name: string, version: string): Promise<string | undefined> =>
    JSON.parse(await readFile(file, 'utf8')).plugins[name]?.versions[version]?.sets?.join(' ');

  it('claims what its lock names on the fast path, so the next bump replaces it and verify -c passes', async () => {
    // Prepare
    const { p, plugins, file } = await placedByOlderClient();

    // Act: the upgraded client's install -c of the unchanged set (the tree is the lock: the fast path).
    const fast = await using(p, (c) => c.installSet(p.file, HOME));

    // Assess: nothing placed, the set's versions claimed.
    expect(fast.items.every((i) => i.unchanged)).toBe(true);
    expect(await setOf(file, 'kubecost-lens', '1.1.0')).toBe('../plugins.yaml');
    expect(await setOf(file, 'multicloud-rollup', '2.0.0-beta.1')).toBe('../plugins.yaml');
    // A second run claims nothing more, and writes nothing.
    const bytes = await readFile(file, 'utf8');
    await using(p, (c) => c.installSet(p.file, HOME));
    expect(await readFile(file, 'utf8')).toBe(bytes);

    // Act: the set's lock bumped.
    await writeFile(p.file, setAt('1.2.0'));
    await using(p, (c) => c.installSet(p.file, { ...HOME, acceptPermissions: true }));

    // Assess: the version it moved from is gone, nothing is left to clean, and verify -c passes.
    expect(await exists(join(plugins, 'kubecost-lens/1.1.0'))).toBe(false);
    expect(Object.keys(JSON.parse(await readFile(file, 'utf8')).plugins['kubecost-lens'].versions)).toEqual([
      '1.2.0',
    ]);
    expect(await using(p, (c) => c.cleanSet(p.file, HOME))).toMatchObject({ removed: [], left: [] });
    const findings = await using(p, (c) => c.verifySet(p.file, HOME));
    expect(findings.filter((f) => !f.ok)).toEqual([]);
  });

  it('claims what its lock named before an install that bumps it, and replaces it in that install', async () => {
    // Prepare: the first run of the upgraded client is the one that moves the set on.
    const { p, plugins, file } = await placedByOlderClient();
    await writeFile(p.file, setAt('1.2.0'));

    // Act
    await using(p, (c) => c.installSet(p.file, { ...HOME, acceptPermissions: true }));

    // Assess
    expect(await exists(join(plugins, 'kubecost-lens/1.1.0'))).toBe(false);
    expect(await setOf(file, 'kubecost-lens', '1.2.0')).toBe('../plugins.yaml');
    expect(await setOf(file, 'multicloud-rollup', '2.0.0-beta.1')).toBe('../plugins.yaml');
  });

  it('claims what its lock names on clean -c too: a platform the set no longer lists goes, and diff -c says so', async () => {
    // Prepare: both platforms placed by the older client, then the set lists one.
    const both = exampleSet(base);
    const { p, plugins, file } = await placedByOlderClient(both);
    await writeFile(p.file, both.replace('[linux/amd64, darwin/arm64]', '[linux/amd64]'));

    // Act
    const diff = await using(p, (c) => c.diffSet(p.file, HOME));
    const report = await using(p, (c) => c.cleanSet(p.file, HOME));

    // Assess
    expect(diff.changes).toEqual([
      expect.objectContaining({
        name: 'kubecost-lens',
        change: 'remove',
        from: '1.2.0',
        platforms: ['darwin-arm64'],
      }),
    ]);
    expect(report.removed).toEqual([
      { name: 'kubecost-lens', version: '1.2.0', dir: plugins, platforms: ['darwin-arm64'] },
    ]);
    expect(report.left).toEqual([]);
    expect(await exists(join(plugins, 'kubecost-lens/1.2.0/darwin-arm64'))).toBe(false);
    expect(await setOf(file, 'kubecost-lens', '1.2.0')).toBe('../plugins.yaml');
  });

  it('claims no version its lock does not name: one installed by hand beside the set\u2019s stays the user\u2019s', async () => {
    // Prepare: the set's kubecost-lens 1.1.0 placed by the older client, then the user's 1.2.0 beside it.
    const { p, plugins, file } = await placedByOlderClient();
    await using(p, async (c) => {
      await c.addRegistry({ name: 'test', url: base, pin: { armored: registry.registryKey.publicKey } });
      await c.install({
        requests: ['kubecost-lens@1.2.0'],
        acceptPermissions: true,
        lockfile: join(p.dir, 'by-hand.lock'),
        dir: plugins,
      });
    });

    // Act
    await using(p, (c) => c.installSet(p.file, HOME));
    const report = await using(p, (c) => c.cleanSet(p.file, HOME));

    // Assess: the set's version claimed, the user's not, and left by clean -c.
    expect(await setOf(file, 'kubecost-lens', '1.1.0')).toBe('../plugins.yaml');
    expect(await setOf(file, 'kubecost-lens', '1.2.0')).toBeUndefined();
    expect(report.removed).toEqual([]);
    expect(report.left).toEqual([expect.objectContaining({ name: 'kubecost-lens', version: '1.2.0' })]);
    expect(await exists(join(plugins, 'kubecost-lens/1.2.0/linux-amd64/kubecost-lens'))).toBe(true);
  });
});

describe('when a set carries a policy', () => {
  const withPolicy = (policy: string, version = '~1.0') => `plugins:
  providers:
    - { type: file, name: disk, path: ${folder}, key: ./publisher.asc }
  plugins:
    - { provider: disk, name: disk-tool, version: "${version}" }
policy:
${policy}
`;

  it('refuses a plugin that asks for a permission the policy denies, naming it, and installs nothing', async () => {
    const p = await project(withPolicy('  permissions: { deny: [filesystem_read] }'));
    await expect(using(p, (c) => c.installSet(p.file, HOME))).rejects.toMatchObject({
      name: 'ClientError',
      code: 'POLICY_DENIED',
      // The rule that refused it, in the set file: its JSON pointer (the YAML path alike).
      message: expect.stringContaining(
        `${p.file}#/policy/permissions/deny/0: disk-tool@1.0.3 asks for filesystem_read`,
      ),
    });
    expect(await exists(join(p.dir, 'plugins'))).toBe(false);
    expect(await exists(p.lockfile)).toBe(false);
  });

  it('refuses a publisher key and a source the policy does not list, and a prerelease unless allowed', async () => {
    const p = await project(withPolicy(`  publishers: ["${'A'.repeat(40)}"]\n  registries: [elsewhere]`));
    const error = (await using(p, (c) => c.installSet(p.file, HOME)).then(
      () => undefined,
      (e: unknown) => e,
    )) as Error;
    expect(error).toMatchObject({ code: 'POLICY_DENIED' });
    expect(error.message).toContain('publisher');
    expect(error.message).toContain('disk');
  });

  it('holds resource limits to the policy, from the lock when frozen', async () => {
    const p = await project(withPolicy('  resources: { max_memory_mb: 128 }'));
    await using(p, (c) => c.installSet(p.file, HOME));
    await writeFile(
      p.file,
      (await readFile(p.file, 'utf8')).replace('max_memory_mb: 128', 'max_memory_mb: 32'),
    );
    for (const flags of [{}, { frozen: true }])
      await expect(using(p, (c) => c.installSet(p.file, { ...HOME, ...flags }))).rejects.toMatchObject({
        code: 'POLICY_DENIED',
        message: expect.stringContaining('max_memory_mb'),
      });
  });

  it('judges a frozen install by the manifest the lock pins, not by what an edited lock says it asks for', async () => {
    const p = await project(withPolicy('  permissions: { deny: [process_spawn] }'));
    await using(p, (c) => c.installSet(p.file, HOME));
    const lock = JSON.parse(await readFile(p.lockfile, 'utf8'));
    expect(lock.plugins['disk-tool'].permissions).toEqual(['filesystem_read']);
    // The claim left out by hand (a careless merge, or on purpose); the digests untouched.
    delete lock.plugins['disk-tool'].permissions;
    const q = await project(withPolicy('  permissions: { deny: [filesystem_read] }'));
    await writeFile(q.lockfile, `${JSON.stringify(lock, null, 2)}\n`);

    const frozen = using(q, (c) => c.installSet(q.file, { ...HOME, frozen: true }));

    await expect(frozen).rejects.toMatchObject({
      name: 'ClientError',
      code: 'LOCK_MISMATCH',
      message: expect.stringContaining('filesystem_read'),
    });
    expect(await exists(join(q.dir, 'plugins/disk-tool'))).toBe(false);
  });

  it('refuses a frozen lock that calls the prerelease its manifest pins a release, policy or none', async () => {
    const betaSet = (version: string, policy: string) => `plugins:
  providers:
    - { type: file, name: disk, path: ${folder}, key: ./publisher.asc }
  plugins:
    - { provider: disk, name: beta-tool, version: "${version}" }
${policy}`;
    const p = await project(betaSet('beta', 'policy:\n  prereleases: true\n'));
    await using(p, (c) => c.installSet(p.file, HOME));
    const lock = JSON.parse(await readFile(p.lockfile, 'utf8'));
    expect(lock.plugins['beta-tool'].version).toBe('2.0.0-beta.1');
    // A release's version and request claimed by hand; the digests and locations untouched.
    lock.plugins['beta-tool'].version = '2.0.0';
    lock.plugins['beta-tool'].requested = '2.0.0';
    for (const policy of ['policy:\n  prereleases: false\n', '']) {
      const q = await project(betaSet('2.0.0', policy));
      await writeFile(q.lockfile, `${JSON.stringify(lock, null, 2)}\n`);

      const error = await using(q, (c) => c.installSet(q.file, { ...HOME, frozen: true })).catch(
        (e: unknown) => e,
      );

      expect(error).toBeInstanceOf(ClientError);
      expect(error).toMatchObject({
        code: 'LOCK_MISMATCH',
        message: expect.stringContaining('plugins/beta-tool'),
      });
      expect((error as Error).message).toContain('2.0.0-beta.1');
      expect(await exists(join(q.dir, 'plugins/beta-tool'))).toBe(false);
    }
  });

  it('refuses a frozen install under a policy when the manifest the lock pins cannot be had', async () => {
    const p = await project(withPolicy('  permissions: { deny: [process_spawn] }'));
    await using(p, (c) => c.installSet(p.file, HOME));
    const q = await project(withPolicy('  permissions: { deny: [process_spawn] }'));
    await writeFile(q.lockfile, await readFile(p.lockfile));
    const manifest = join(folder, 'disk-tool/1.0.3/manifest.json');
    await rename(manifest, `${manifest}.aside`);
    try {
      await expect(using(q, (c) => c.installSet(q.file, { ...HOME, frozen: true }))).rejects.toMatchObject({
        name: 'ClientError',
        code: 'POLICY_DENIED',
        message: expect.stringContaining('cannot be judged without the manifest'),
      });
    } finally {
      await rename(`${manifest}.aside`, manifest);
    }
  });

  it('installs what the policy allows', async () => {
    const p = await project(withPolicy('  permissions: { allow: [filesystem_read, network_client] }'));
    const result = await using(p, (c) => c.installSet(p.file, HOME));
    expect(result.items.map((i) => [i.name, i.version, i.permissions])).toEqual([
      ['disk-tool', '1.0.3', ['filesystem_read']],
    ]);
  });
});

describe('when a set\u2019s policy is tightened after an install', () => {
  const diskSet = (policy: string) => diskToolSet('1.0.3', policy);

  it('verifySet refuses what is in place by the rule it breaks, and leaves installed.json as the files verified', async () => {
    const p = await project(diskSet(''));
    await using(p, (c) => c.installSet(p.file, HOME));
    await writeFile(
      p.file,
      diskSet('policy:\n  permissions: { deny: [filesystem_read] }\n  resources: { max_memory_mb: 32 }\n'),
    );
    const before = JSON.parse(await readFile(join(p.dir, 'plugins/installed.json'), 'utf8'));

    const findings = await using(p, (c) => c.verifySet(p.file, HOME));

    expect(findings).toEqual([
      {
        name: 'disk-tool',
        version: '1.0.3',
        ok: false,
        code: 'POLICY_DENIED',
        message: expect.stringContaining(
          `${p.file}#/policy/permissions/deny/0: disk-tool@1.0.3 asks for filesystem_read, which the policy denies`,
        ),
      },
    ]);
    expect(findings[0]?.message).toContain(
      "disk-tool@1.0.3 declares max_memory_mb 64, above the policy's bound of 32",
    );
    const after = JSON.parse(await readFile(join(p.dir, 'plugins/installed.json'), 'utf8'));
    expect(after.plugins['disk-tool'].versions['1.0.3'].problem).toBeUndefined();
    expect(Object.keys(after.plugins)).toEqual(Object.keys(before.plugins));
  });

  it('verifySet says a trust check that fails first, not the policy', async () => {
    const p = await project(diskSet(''));
    await using(p, (c) => c.installSet(p.file, HOME));
    await writeFile(p.file, diskSet('policy:\n  permissions: { deny: [filesystem_read] }\n'));
    await writeFile(join(p.dir, 'plugins/disk-tool/1.0.3/linux-amd64/disk-tool'), 'tampered');

    const findings = await using(p, (c) => c.verifySet(p.file, HOME));

    expect(findings).toMatchObject([{ name: 'disk-tool', ok: false, code: 'INSTALLED_MODIFIED' }]);
  });

  it('discover marks a verified install the policy refuses, and nothing the policy allows', async () => {
    const p = await project(diskSet(''));
    await using(p, (c) => c.installSet(p.file, HOME));
    await writeFile(p.file, diskSet('policy:\n  registries: [elsewhere]\n'));

    const refused = await using(p, (c) => c.discover(p.file, HOME));
    await writeFile(p.file, diskSet('policy:\n  registries: [disk]\n'));
    const allowed = await using(p, (c) => c.discover(p.file, HOME));

    expect(refused.plugins).toMatchObject([
      {
        name: 'disk-tool',
        status: 'verified',
        policy: [expect.any(String)],
      },
    ]);
    // As install -c and verify -c name a refusal: the set file and the rule's pointer first.
    expect(refused.plugins[0]?.policy?.[0]).toMatch(
      /#\/policy\/registries: disk-tool@1\.0\.3 comes from disk, which is not among policy\.registries \(elsewhere\)/,
    );
    expect(refused.plugins[0]?.policy?.[0]?.startsWith(`${p.file}#/policy/registries: `)).toBe(true);
    expect(allowed.plugins).toHaveLength(1);
    expect(allowed.plugins[0]?.status).toBe('verified');
    expect(allowed.plugins[0]?.policy).toBeUndefined();
  });
});

describe('when a newer version asks for more permissions than the locked one', () => {
  it('diff names them, install and update refuse without --accept-permissions, and take them with it', async () => {
    const p = await project(`plugins:
  providers:
    - { type: registry, name: local, url: ${base}, key: ./registry.asc }
  plugins:
    - { provider: local, name: kubecost-lens, version: "1.1.0" }
`);
    await using(p, (c) => c.installSet(p.file, HOME));
    await writeFile(p.file, (await readFile(p.file, 'utf8')).replace('"1.1.0"', '"^1.1"'));
    const diff = await using(p, (c) => c.diffSet(p.file, HOME));
    expect(diff.changes).toMatchObject([
      {
        name: 'kubecost-lens',
        change: 'upgrade',
        from: '1.1.0',
        to: '1.2.0',
        newPermissions: ['process_spawn'],
      },
    ]);
    await expect(using(p, (c) => c.installSet(p.file, HOME))).rejects.toMatchObject({
      name: 'ClientError',
      code: 'PERMISSIONS_NOT_ACCEPTED',
      message: expect.stringContaining('kubecost-lens@1.2.0 asks for process_spawn'),
    });
    expect(
      parseLockfile(await readFile(p.lockfile, 'utf8'), p.lockfile).plugins['kubecost-lens']?.version,
    ).toBe('1.1.0');
    const accepted = await using(p, (c) => c.installSet(p.file, { ...HOME, acceptPermissions: true }));
    expect(accepted.items.map((i) => [i.name, i.version])).toEqual([['kubecost-lens', '1.2.0']]);
    expect(await exists(join(p.dir, 'plugins/kubecost-lens/1.1.0'))).toBe(false);
  });
});

describe('when the version installed cannot say what it was granted, and there is no lock', () => {
  it('asks for every permission of an update, and lets the very version recorded be placed again', async () => {
    const p = await project(`plugins:
  providers:
    - { type: registry, name: local, url: ${base}, key: ./registry.asc }
  plugins:
    - { provider: local, name: kubecost-lens, version: "1.1.0" }
`);
    await using(p, (c) => c.installSet(p.file, HOME));
    // installed.json still names 1.1.0 as current, but its signed manifest is gone, and so is the lock.
    await rm(join(p.dir, 'plugins/kubecost-lens/1.1.0/manifest.json'));
    await rm(p.lockfile);

    // The very manifest installed.json recorded: what it asks for was granted. Placed again, asked nothing.
    const again = await using(p, (c) => c.installSet(p.file, HOME));
    expect(again.items.map((i) => [i.name, i.version, i.unchanged])).toEqual([
      ['kubecost-lens', '1.1.0', false],
    ]);
    await rm(join(p.dir, 'plugins/kubecost-lens/1.1.0/manifest.json'));
    await rm(p.lockfile);
    await writeFile(p.file, (await readFile(p.file, 'utf8')).replace('"1.1.0"', '"^1.1"'));

    const refused = using(p, (c) => c.installSet(p.file, HOME));

    await expectRefused(
      refused,
      ClientError,
      'PERMISSIONS_NOT_ACCEPTED',
      'kubecost-lens@1.2.0 asks for network_client, process_spawn, which kubecost-lens@1.1.0 (its signed manifest, which would show what it was granted, is not in place) did not',
    );
    const diff = await using(p, (c) => c.diffSet(p.file, HOME));
    expect(diff.changes).toMatchObject([
      { name: 'kubecost-lens', change: 'upgrade', newPermissions: ['network_client', 'process_spawn'] },
    ]);
    expect(await exists(join(p.dir, 'plugins/kubecost-lens/1.2.0'))).toBe(false);
    // Nor is a plugin whose current version installed.json keeps no record of.
    const installedJson = join(p.dir, 'plugins/installed.json');
    const installed = JSON.parse(await readFile(installedJson, 'utf8'));
    installed.plugins['kubecost-lens'].current = '1.0.9';
    await writeFile(installedJson, JSON.stringify(installed));
    await expect(using(p, (c) => c.installSet(p.file, HOME))).rejects.toMatchObject({
      code: 'PERMISSIONS_NOT_ACCEPTED',
      message: expect.stringContaining('asks for network_client, process_spawn, which kubecost-lens@1.0.9'),
    });
  });
});

/**
 * Installs the manifest at `url` off any registry, verified by the publisher's key given with it (as
 * `plugindex install URL --key publisher.asc --dir DIR --lockfile LOCKFILE`).
 */
function installFromManifestUrl(p: Project, url: string, dir: string, lockfile: string) {
  return using(p, async (c) => {
    const target = await c.reference(url, { key: (await testKey('publisher')).publicKey });
    if (!target?.source) throw new Error('expected a source');
    return c.install({
      requests: [{ request: target.request, registry: target.registry }],
      sources: new Map([[target.registry, target.source]]),
      dir,
      lockfile,
    });
  });
}

describe('when a plugin is installed from a manifest URL', () => {
  it('verifies a URL off any configured registry with the key given, and refuses it without one', async () => {
    const p = await project('plugins: {}\n');
    const url = `${web.url}/team-tool/1.0.0/manifest.json`;
    await expect(using(p, (c) => c.reference(url))).rejects.toMatchObject({
      name: 'ClientError',
      code: 'REQUEST_INVALID',
      message: expect.stringContaining('--key'),
    });
    const stranger = (await testKey('stranger')).publicKey;
    await expect(using(p, (c) => c.reference(url, { key: stranger }))).rejects.toMatchObject({
      name: 'TrustError',
      code: 'DOCUMENT_MISMATCH',
    });
    const lockfile = join(p.dir, 'plugindex.lock');
    const result = await installFromManifestUrl(p, url, join(p.dir, 'plugins'), lockfile);
    expect(result.items.map((i) => [i.name, i.version])).toEqual([['team-tool', '1.0.0']]);
    expect(await readFile(result.items[0]?.path as string)).toEqual(Buffer.from(tool('team-tool', '1.0.0')));
  });

  it('lists it with list --outdated as not checked, with why, as audit skips it (it has no registry to ask)', async () => {
    const p = await project('plugins: {}\n');
    const dir = join(p.dir, 'plugins');
    const url = pathToFileURL(join(folder, 'team-tool/1.1.0/manifest.json')).href;
    await installFromManifestUrl(p, url, dir, join(p.dir, 'plugindex.lock'));
    const rows = await using(p, (c) => c.list({ dir, outdated: true }));
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ name: 'team-tool', current: '1.1.0' });
    expect(rows[0]?.unchecked).toEqual(expect.stringContaining(rows[0]?.registry as string));
    expect(rows[0]?.latest).toBeUndefined();
    const audit = await using(p, (c) => c.auditInstalled({ dir }));
    expect(audit.skipped.map((s) => s.name)).toEqual(['team-tool']);
  });

  it('keeps the key given as the source\u2019s pin: installed again from the lock, and verified, with no key given', async () => {
    const p = await project('plugins: {}\n');
    const lockfile = join(p.dir, 'plugindex.lock');
    const dir = join(p.dir, 'plugins');
    const url = pathToFileURL(join(folder, 'team-tool/1.1.0/manifest.json')).href;
    await using(p, async (c) => {
      const target = await c.reference(url, { key: (await testKey('publisher')).publicKey });
      if (!target?.source) throw new Error('expected a source');
      expect(target.registry).toMatch(/^url-file-[0-9a-f]{16}$/);
      return c.install({
        requests: [{ request: target.request, registry: target.registry }],
        sources: new Map([[target.registry, target.source]]),
        dir,
        lockfile,
      });
    });
    expect((await using(p, (c) => c.verifyInstalled({ dir, lockfile }))).map((f) => [f.name, f.ok])).toEqual([
      ['team-tool', true],
    ]);
    const elsewhere = join(p.dir, 'elsewhere');
    const again = await using(p, (c) => c.install({ requests: [], dir: elsewhere, lockfile }));
    expect(again.items.map((i) => [i.name, i.version])).toEqual([['team-tool', '1.1.0']]);
    const frozen = await using(p, (c) =>
      c.install({ requests: [], dir: join(p.dir, 'frozen'), lockfile, frozen: true }),
    );
    expect(await readFile(frozen.items[0]?.path as string)).toEqual(Buffer.from(tool('team-tool', '1.1.0')));
  });

  it('reads a URL under a configured registry through that registry', async () => {
    const p = await project('plugins: {}\n');
    await using(p, (c) =>
      c.addRegistry({ name: 'test', url: base, pin: { armored: registry.registryKey.publicKey } }),
    );
    const target = await using(p, (c) => c.reference(`${base}/plugins/kubecost-lens/1.1.0/manifest.json`));
    expect(target).toEqual({ request: 'kubecost-lens@1.1.0', registry: 'test' });
  });
});

describe('when plugins are discovered on disk', () => {
  it('lists every version folder under the discovery paths and install folders, each with whether it verifies', async () => {
    const p = await project(`plugins:
  providers:
    - { type: file, name: disk, path: ${folder}, key: ./publisher.asc }
  plugins:
    - { provider: disk, name: disk-tool, version: "1.0.0" }
discovery:
  filesystem:
    paths: [./more]
`);
    await using(p, (c) => c.installSet(p.file, HOME));
    // A folder copied in by hand, unsigned; and one whose file was changed after it was signed.
    await mkdir(join(p.dir, 'more/hand-made/0.1.0'), { recursive: true });
    await writeFile(
      join(p.dir, 'more/hand-made/0.1.0/manifest.json'),
      '{"name":"hand-made","version":"0.1.0"}',
    );
    await writeFolderVersion(join(p.dir, 'more'), 'edited-tool', '1.0.0', tool('edited-tool', '1.0.0'));
    await writeFile(join(p.dir, 'more/edited-tool/1.0.0/bin/edited-tool'), 'changed');
    // An installed executable replaced, the original kept beside it under another name.
    const installedTool = join(p.dir, 'plugins/disk-tool/1.0.0/linux-amd64/disk-tool');
    await writeFile(`${installedTool}.orig`, await readFile(installedTool));
    await writeFile(installedTool, '#!/bin/sh\necho not the signed tool\n');
    const report = await using(p, (c) => c.discover(p.file, HOME));
    expect(report.plugins.map((d) => [d.name, d.version, d.status])).toEqual([
      ['edited-tool', '1.0.0', 'modified'],
      ['hand-made', '0.1.0', 'unsigned'],
      ['disk-tool', '1.0.0', 'modified'],
    ]);
    expect(report.plugins[2]?.detail).toContain('linux-amd64/disk-tool (linux-amd64) no longer hash');
    await writeFile(installedTool, await readFile(`${installedTool}.orig`));
    const restored = await using(p, (c) => c.discover(p.file, HOME));
    expect(restored.plugins[2]).toMatchObject({
      status: 'verified',
      detail: expect.stringContaining('provider disk'),
      platforms: ['linux-amd64'],
    });
  });
});

describe('when a placement was killed part way', () => {
  it('clears the temp file it left when the version is placed again, and discovery never counts one as a file', async () => {
    const p = await project(`plugins:
  install_location: ./plugins
  providers:
    - { type: file, name: disk, path: ${folder}, key: ./publisher.asc }
  plugins:
    - { provider: disk, name: disk-tool, version: "1.0.0" }
`);
    // What a kill during the copy leaves: the platform folder, half a temp file of a process now gone.
    const platformDir = join(p.dir, 'plugins/disk-tool/1.0.0/linux-amd64');
    await mkdir(platformDir, { recursive: true });
    const dead = await deadPid();
    const killed = join(platformDir, `.disk-tool.${dead}.0a1b2c3d.tmp`);
    await writeFile(killed, tool('disk-tool', '1.0.0').slice(0, 10));

    const installed = await using(p, (c) => c.installSet(p.file, HOME));

    expect(installed.items.map((i) => i.version)).toEqual(['1.0.0']);
    expect(await exists(killed)).toBe(false);
    // One in flight (another install placing it now) is no file of the version either.
    await writeFile(join(platformDir, `.disk-tool.${process.pid}.deadbeef.tmp`), 'half');
    const report = await using(p, (c) => c.discover(p.file, HOME));
    expect(report.plugins.map((d) => [d.name, d.version, d.status])).toEqual([
      ['disk-tool', '1.0.0', 'verified'],
    ]);
  });
});

describe('when artifacts live in an OCI registry', () => {
  const OCI_TOOL = encode('#!/bin/sh\necho oci-lens 1.0.0\n');
  let oci: OciRegistry;
  let privateOci: OciRegistry;
  let stranger: Server;
  let strangerHost: string;

  /** A bundle whose only artifact is kept in an OCI registry, pinned by digest. */
  function ociBundleOf(name: string, reference: string, sha: string, size: number, version = '1.0.0') {
    return ociBundle(name, reference, { sha, size, version });
  }

  beforeAll(async () => {
    oci = await startOciRegistry('open');
    const pushed = await pushBlob(oci, 'acme/oci-lens', OCI_TOOL, { tag: '1.0.0' });
    const windows = await pushBlob(oci, 'acme/win-oci-lens', OCI_TOOL, { tag: '1.0.0' });
    privateOci = await startOciRegistry('private');
    const kept = await pushBlob(privateOci, 'acme/private-lens', OCI_TOOL, { tag: '1.0.0' });
    // A stand-in registry (node:http, named as such) that answers every blob with other bytes of the same
    // size: what a compromised or broken registry would do.
    stranger = createServer((request, response) => {
      if (request.url === '/v2/') response.writeHead(200).end('{}');
      else
        response
          .writeHead(200, { 'content-length': OCI_TOOL.byteLength })
          .end(Buffer.alloc(OCI_TOOL.byteLength, 0x41));
    });
    await new Promise<void>((done) => stranger.listen(0, '127.0.0.1', done));
    strangerHost = `127.0.0.1:${(stranger.address() as AddressInfo).port}`;
    await processSubmissions(
      registry.context,
      await registry.submit(
        await ociBundleOf('oci-lens', `${oci.host}/acme/oci-lens:1.0.0`, pushed.digest.slice(7), pushed.size),
        await ociBundleOf('bad-oci', `${strangerHost}/acme/bad:1.0.0`, sha256(OCI_TOOL), OCI_TOOL.byteLength),
        // Moved: 1.0.0 kept in another repository than the one the index names (its latest's).
        await ociBundleOf(
          'moving-lens',
          `${oci.host}/acme/moving-lens-old:1.0.0`,
          sha256(OCI_TOOL),
          1,
          '1.0.0',
        ),
        await ociBundleOf('moving-lens', `${oci.host}/acme/moving-lens:2.0.0`, sha256(OCI_TOOL), 1, '2.0.0'),
        // A Windows executable kept as an OCI layer, which carries no file name.
        await makeBundle({
          manifest: validManifest({
            name: 'win-oci-lens',
            version: '1.0.0',
            installation: {
              artifacts: [
                {
                  os: 'windows',
                  arch: 'amd64',
                  oci: { reference: `${oci.host}/acme/win-oci-lens:1.0.0`, digest: windows.digest },
                  sha256: windows.digest.slice(7),
                  size_bytes: windows.size,
                },
              ],
            },
          }),
        }),
        await ociBundleOf(
          'private-lens',
          `${privateOci.host}/acme/private-lens:1.0.0`,
          kept.digest.slice(7),
          kept.size,
        ),
      ),
    );
  });

  afterAll(async () => {
    await oci.stop();
    await privateOci.stop();
    await new Promise((done) => stranger.close(done));
  });

  const ociSet = (url: string, name = 'oci-lens') => `plugins:
  providers:
    - { type: registry, name: local, url: ${url}, key: ./registry.asc }
  plugins:
    - { provider: local, name: ${name}, version: "1.0.0" }
`;

  it('pulls the blob by digest through the Distribution API and installs it like any other artifact', async () => {
    const p = await project(ociSet(base));
    const result = await using(p, (c) => c.installSet(p.file, HOME));
    expect(relative(p.dir, result.items[0]?.path as string)).toBe(
      'plugins/oci-lens/1.0.0/linux-amd64/oci-lens',
    );
    expect(await readFile(result.items[0]?.path as string)).toEqual(Buffer.from(OCI_TOOL));
    const lock = parseLockfile(await readFile(p.lockfile, 'utf8'), p.lockfile);
    expect(lock.plugins['oci-lens']?.artifacts['linux-amd64']?.oci).toEqual({
      reference: `${oci.host}/acme/oci-lens:1.0.0`,
      digest: `sha256:${sha256(OCI_TOOL)}`,
    });
  });

  it('places a Windows artifact with no output under the plugin name with .exe, frozen too (an OCI layer names no file)', async () => {
    const set = `plugins:
  providers:
    - { type: registry, name: local, url: ${base}, key: ./registry.asc }
  plugins:
    - { provider: local, name: win-oci-lens, version: "1.0.0", platforms: [windows/amd64] }
`;
    const p = await project(set);
    const result = await using(p, (c) => c.installSet(p.file, HOME));
    // Windows starts a file by its extension: `win-oci-lens` alone is no program there.
    expect(relative(p.dir, result.items[0]?.paths['windows-amd64'] as string)).toBe(
      join('plugins', 'win-oci-lens', '1.0.0', 'windows-amd64', 'win-oci-lens.exe'),
    );
    expect(await readFile(result.items[0]?.paths['windows-amd64'] as string)).toEqual(Buffer.from(OCI_TOOL));
    const q = await project(set);
    await writeFile(q.lockfile, await readFile(p.lockfile));
    const frozen = await using(q, (c) => c.installSet(q.file, { ...HOME, frozen: true }));
    expect(relative(q.dir, frozen.items[0]?.paths['windows-amd64'] as string)).toBe(
      join('plugins', 'win-oci-lens', '1.0.0', 'windows-amd64', 'win-oci-lens.exe'),
    );
  });

  it('reproduces the lock with frozen on a clean cache with the registry server stopped, the OCI registry alone up', async () => {
    const own = await listenRegistryServer(createRegistryServer({ site: registry.site }), 0);
    const p = await project(ociSet(own.url));
    await using(p, (c) => c.installSet(p.file, HOME));
    await own.close();
    await expect(fetch(`${own.url}/snapshot.json`)).rejects.toThrow();
    const q = await project(ociSet(own.url));
    await writeFile(q.lockfile, await readFile(p.lockfile));
    await expect(using(q, (c) => c.installSet(q.file, HOME))).rejects.toMatchObject({ code: 'FETCH_FAILED' });
    const frozen = await using(q, (c) => c.installSet(q.file, { ...HOME, frozen: true }));
    expect(await readFile(frozen.items[0]?.path as string)).toEqual(Buffer.from(OCI_TOOL));
    // The manifest's host is down: installed all the same, and said.
    expect(frozen.items[0]?.warnings).toEqual([
      expect.stringContaining('oci-lens@1.0.0: its signed manifest was not placed beside it'),
    ]);
  });

  it('pulls from a private registry with the credentials docker login keeps, and says where to put them without', async () => {
    const without = await project(ociSet(base, 'private-lens'));
    await expect(using(without, (c) => c.installSet(without.file, HOME))).rejects.toMatchObject({
      name: 'ClientError',
      code: 'CREDENTIALS_MISSING',
      message: expect.stringContaining('docker login'),
    });
    const dockerDir = join(root, 'docker-config');
    await mkdir(dockerDir, { recursive: true });
    const auth = Buffer.from(`${REGISTRY_USER.username}:${REGISTRY_USER.password}`).toString('base64');
    await writeFile(
      join(dockerDir, 'config.json'),
      JSON.stringify({ auths: { [privateOci.host]: { auth } } }),
    );
    const p = await project(ociSet(base, 'private-lens'), { DOCKER_CONFIG: dockerDir });
    const result = await using(p, (c) => c.installSet(p.file, HOME));
    expect(await readFile(result.items[0]?.path as string)).toEqual(Buffer.from(OCI_TOOL));
  });

  it('refuses a blob whose bytes do not hash to the signed digest, and installs nothing', async () => {
    const p = await project(ociSet(base, 'bad-oci'));
    await expect(using(p, (c) => c.installSet(p.file, HOME))).rejects.toMatchObject({
      name: 'TrustError',
      code: 'ARTIFACT_MISMATCH',
    });
    expect(await exists(join(p.dir, 'plugins'))).toBe(false);
    expect(await exists(p.lockfile)).toBe(false);
  });

  it('resolves falcoctl-style references through the registry\u2019s signed falcoctl index', async () => {
    const p = await project('plugins: {}\n');
    await using(p, (c) =>
      c.addRegistry({ name: 'test', url: base, pin: { armored: registry.registryKey.publicKey } }),
    );
    const byTag = await using(p, (c) => c.reference(`${oci.host}/acme/oci-lens:1.0.0`));
    expect(byTag).toEqual({ request: 'oci-lens@1.0.0', registry: 'test' });
    const byDigest = await using(p, (c) =>
      c.reference(`${oci.host}/acme/oci-lens@sha256:${sha256(OCI_TOOL)}`),
    );
    expect(byDigest).toEqual({ request: 'oci-lens@1.0.0', registry: 'test' });
    expect(await using(p, (c) => c.reference('kubecost-lens:1.1.0'))).toEqual({
      request: 'kubecost-lens@1.1.0',
      registry: 'test',
    });
    await expect(using(p, (c) => c.reference(`${oci.host}/acme/unknown:1.0.0`))).rejects.toMatchObject({
      code: 'PLUGIN_NOT_FOUND',
    });
    // Only exactly that repository, and only a version kept there under that tag.
    await expect(using(p, (c) => c.reference(`${oci.host}/acme/oci-len:1.0.0`))).rejects.toMatchObject({
      code: 'PLUGIN_NOT_FOUND',
    });
    await expect(using(p, (c) => c.reference(`${oci.host}/acme/oci-lens:9.9.9`))).rejects.toMatchObject({
      code: 'NO_MATCHING_VERSION',
      message: expect.stringContaining('linux/amd64 artifact there under tag 9.9.9'),
    });
    // A version whose artifact is kept in another repository is not that repository's, whatever its tag.
    await expect(using(p, (c) => c.reference(`${oci.host}/acme/moving-lens:1.0.0`))).rejects.toMatchObject({
      code: 'NO_MATCHING_VERSION',
    });
    expect(await using(p, (c) => c.reference(`${oci.host}/acme/moving-lens:2.0.0`))).toEqual({
      request: 'moving-lens@2.0.0',
      registry: 'test',
    });
    expect(await using(p, (c) => c.reference(`${oci.host}/acme/oci-lens`))).toEqual({
      request: 'oci-lens@1.0.0',
      registry: 'test',
    });
    const installed = await using(p, (c) =>
      c.install({
        requests: [byTag as { request: string; registry: string }],
        dir: join(p.dir, 'plugins'),
        lockfile: join(p.dir, 'plugindex.lock'),
      }),
    );
    expect(await readFile(installed.items[0]?.path as string)).toEqual(Buffer.from(OCI_TOOL));
  });
});

describe('when a frozen lock names other bytes than the manifest it pins', () => {
  const diskSet = (policy: string) => diskToolSet('~1.0', policy);

  it('refuses an artifact digest the manifest does not name, policy or none, and places nothing', async () => {
    const { lock } = await installedWithLock(diskSet(''));
    expect(lock.plugins['disk-tool'].version).toBe('1.0.3');
    // The digest, size and location of another signed version's file put in by hand; the manifest untouched.
    const other = tool('disk-tool', '2.0.0');
    lock.plugins['disk-tool'].artifacts['linux-amd64'] = {
      sha256: sha256(other),
      size: other.byteLength,
      url: pathToFileURL(join(folder, 'disk-tool/2.0.0/bin/disk-tool')).href,
    };
    for (const policy of ['policy:\n  permissions: { deny: [process_spawn] }\n', '']) {
      const q = await checkoutWithLock(diskSet(policy), lock);

      await expectRefused(installFrozen(q), ClientError, 'LOCK_MISMATCH', 'linux-amd64');
      expect(await exists(join(q.dir, 'plugins/disk-tool'))).toBe(false);
    }
  });
});

describe('when a set\u2019s lock and tree were moved on outside the set', () => {
  /**
   * A set whose policy denies process_spawn, installed at grow-tool 1.0.0, then moved to 1.1.0 (which asks
   * for it) by `plugindex update --lockfile plugins.lock --dir plugins`: no set, so no policy; the lock keeps
   * the set file's digest, its request and its source. `check` runs while the registry is served.
   */
  async function movedOnOutsideSet(check: (p: Project) => Promise<void>): Promise<void> {
    const own = await makeRegistry();
    const growBundle = (version: string, permissions: string[]) =>
      makeBundle({
        manifest: validManifest({ name: 'grow-tool', version, permissions }),
        artifacts: [{ ...LINUX, name: 'grow-tool', body: tool('grow-tool', version) }],
      });
    await processSubmissions(own.context, await own.submit(await growBundle('1.0.0', ['network_client'])));
    const served = await listenRegistryServer(createRegistryServer({ site: own.site }), 0);
    try {
      const p = await project(`plugins:
  providers:
    - { type: registry, name: growing }
  plugins:
    - { provider: growing, name: grow-tool, version: "^1.0" }
policy:
  permissions: { deny: [process_spawn] }
`);
      await using(p, (c) =>
        c.addRegistry({ name: 'growing', url: served.url, pin: { armored: own.registryKey.publicKey } }),
      );
      await using(p, (c) => c.installSet(p.file, HOME));
      await processSubmissions(
        own.context,
        await own.submit(await growBundle('1.1.0', ['network_client', 'process_spawn'])),
      );
      await using(p, (c) =>
        c.install({
          requests: ['grow-tool'],
          upgrade: true,
          acceptPermissions: true,
          lockfile: p.lockfile,
          dir: join(p.dir, 'plugins'),
        }),
      );
      await check(p);
    } finally {
      await served.close();
    }
  }

  it('judges the lock by the policy before calling the tree up to date: install and diff refuse what it denies', async () => {
    await movedOnOutsideSet(async (p) => {
      expect(
        parseLockfile(await readFile(p.lockfile, 'utf8'), p.lockfile).plugins['grow-tool']?.version,
      ).toBe('1.1.0');

      for (const run of [
        () => using(p, (c) => c.installSet(p.file, HOME)),
        () => using(p, (c) => c.diffSet(p.file, HOME)),
      ]) {
        const refused = run();
        await expect(refused).rejects.toBeInstanceOf(ClientError);
        await expect(refused).rejects.toMatchObject({
          code: 'POLICY_DENIED',
          message: expect.stringContaining('grow-tool@1.1.0 asks for process_spawn'),
        });
      }
    });
  });

  it('judges a tree it would call up to date by the manifests in place, not by what an edited lock says they ask for', async () => {
    await movedOnOutsideSet(async (p) => {
      // The lock edited to leave process_spawn out (a careless merge, or on purpose); its digests, and the
      // tree, untouched.
      const lock = JSON.parse(await readFile(p.lockfile, 'utf8'));
      expect(lock.plugins['grow-tool']).toMatchObject({
        version: '1.1.0',
        permissions: ['network_client', 'process_spawn'],
      });
      lock.plugins['grow-tool'].permissions = ['network_client'];
      await writeFile(p.lockfile, `${JSON.stringify(lock, null, 2)}\n`);

      const refused = using(p, (c) => c.installSet(p.file, HOME));

      await expect(refused).rejects.toBeInstanceOf(ClientError);
      await expect(refused).rejects.toMatchObject({
        code: 'POLICY_DENIED',
        message: expect.stringContaining('grow-tool@1.1.0 asks for process_spawn'),
      });
    });
  });
});

describe('when a lock beside a tree it would call up to date is edited', () => {
  it('judges a publisher policy by the publisher installed.json recorded, not by the one the lock claims', async () => {
    const set = (policy: string) => `plugins:
  providers:
    - { type: registry, name: local, url: ${base}, key: ./registry.asc }
  plugins:
    - { provider: local, name: kubecost-lens, version: "1.1.0" }
${policy}`;
    const p = await project(set(''));
    await using(p, (c) => c.installSet(p.file, HOME));
    // The team allows one publisher from now on; the lock edited to claim it, and to be of the new set file.
    const allowed = 'A'.repeat(40);
    await writeFile(p.file, set(`policy:\n  publishers: ["${allowed}"]\n`));
    const lock = JSON.parse(await readFile(p.lockfile, 'utf8'));
    lock.plugins['kubecost-lens'].publisher = allowed;
    lock.config_sha256 = sha256(await readFile(p.file));
    await writeFile(p.lockfile, `${JSON.stringify(lock, null, 2)}\n`);

    const refused = using(p, (c) => c.installSet(p.file, HOME));

    await expect(refused).rejects.toBeInstanceOf(ClientError);
    await expect(refused).rejects.toMatchObject({
      code: 'LOCK_MISMATCH',
      message: expect.stringContaining(`locks publisher key ${allowed}`),
    });
  });
});

describe('when a set names a manifest by its path', () => {
  it('lets the lock decide only while it found the manifest at that path: one moved is a change, frozen or not', async () => {
    const set = (version: string) => `plugins:
  providers:
    - { type: url, name: web, url: ${web.url}, key: ./publisher.asc }
  plugins:
    - { provider: web, name: team-tool, path: team-tool/${version}/manifest.json }
`;
    const p = await project(set('1.0.0'));
    await using(p, (c) => c.installSet(p.file, HOME));
    await writeFile(p.file, set('1.1.0'));

    for (const flags of [{ frozen: true }, { locked: true }]) {
      const refused = using(p, (c) => c.installSet(p.file, { ...HOME, ...flags }));
      await expect(refused).rejects.toBeInstanceOf(ClientError);
      await expect(refused).rejects.toMatchObject({
        code: 'LOCK_OUT_OF_SYNC',
        message: expect.stringContaining('team-tool'),
      });
    }
    const diff = await using(p, (c) => c.diffSet(p.file, HOME));
    expect(diff.changes).toMatchObject([
      { name: 'team-tool', change: 'upgrade', from: '1.0.0', to: '1.1.0' },
    ]);
    const installed = await using(p, (c) => c.installSet(p.file, HOME));
    expect(installed.items.map((i) => [i.name, i.version])).toEqual([['team-tool', '1.1.0']]);
    // Unmoved, the lock decides again: nothing asked, nothing changed.
    const again = await using(p, (c) => c.installSet(p.file, { ...HOME, frozen: true }));
    expect(again.items.map((i) => [i.name, i.unchanged])).toEqual([['team-tool', true]]);
  });
});

/** A set of kubecost-lens 1.1.0 from the served registry, with `policy` (its `policy:` lines) after it. */
const lensSet = (policy = '') => `plugins:
  providers:
    - { type: registry, name: local, url: ${base}, key: ./registry.asc }
  plugins:
    - { provider: local, name: kubecost-lens, version: "1.1.0" }
${policy}`;

describe('when a frozen lock is forged or edited against its registry', () => {
  it('refuses a lock forged whole, its manifest from the registry or from a cache it filled, before anything is written', async () => {
    const { lock } = await installedWithLock(lensSet());
    // A lock edited (say in a pull request) to the forger's own kubecost-lens 1.1.0: its manifest, signed by
    // its own key, and its file, both hosted by the forger; the registry and its key left as the lock had them.
    await withForgerHost('forged', async (forged, hostUrl) => {
      const body = encode('#!/bin/sh\necho forged\n');
      await writeFile(join(forged, 'kubecost-lens'), body);
      const artifact = { sha256: sha256(body), size: body.byteLength, url: `${hostUrl}/kubecost-lens` };
      const manifest = encode(
        `${JSON.stringify(
          validManifest({
            name: 'kubecost-lens',
            version: '1.1.0',
            permissions: ['network_client'],
            installation: {
              artifacts: [
                { ...LINUX, url: artifact.url, sha256: artifact.sha256, size_bytes: artifact.size },
              ],
            },
          }),
        )}\n`,
      );
      const forger = await testKey('forger');
      const signature = await (await createSigner(forger.secretKey)).sign(manifest);
      await writeFile(join(forged, 'manifest.json'), manifest);
      await writeFile(join(forged, 'manifest.json.asc'), signature);
      lock.plugins['kubecost-lens'] = {
        ...lock.plugins['kubecost-lens'],
        manifest_sha256: sha256(manifest),
        manifest_url: `${hostUrl}/manifest.json`,
        publisher: forger.fingerprint,
        artifacts: { 'linux-amd64': artifact },
      };
      const registryKey = lock.registries.local.key_fingerprint;

      // Read where the registry publishes it, the manifest is not the one the lock pins.
      const q = await checkoutWithLock(lensSet(), lock);
      await expectFrozenRefused(
        q,
        ClientError,
        'LOCK_MISMATCH',
        `${q.lockfile}: plugins/kubecost-lens@1.1.0 pins manifest sha256`,
      );

      // A cache shared between CI runs that a pull request's job filled: the forger's manifest and signature
      // under the digest and key the lock names, so nothing is read. The registry's key does not sign it.
      const r = await checkoutWithLock(lensSet(), lock);
      const cache = new ContentCache(join(r.dir, '.home', 'cache'));
      await cache.putDocument(sha256(manifest), manifest);
      await cache.putSignature(sha256(manifest), registryKey, signature);
      const fromCache = installFrozen(r);
      await expectRefused(
        fromCache,
        TrustError,
        'DOCUMENT_MISMATCH',
        `${r.lockfile}: plugins/kubecost-lens@1.1.0 pins a manifest`,
      );
      await expect(fromCache).rejects.toMatchObject({ message: expect.stringContaining(registryKey) });
      expect(await exists(join(r.dir, 'plugins'))).toBe(false);
    });
  });

  it('judges a publisher policy by the publisher its registry signs, not by the one the lock claims', async () => {
    const { lock } = await installedWithLock(lensSet());
    expect(lock.plugins['kubecost-lens'].publisher).toBe((await testKey('publisher')).fingerprint);
    // The one publisher the team allows claimed by hand; the manifest, its digest and the files untouched.
    const allowed = 'A'.repeat(40);
    lock.plugins['kubecost-lens'].publisher = allowed;
    const q = await checkoutWithLock(lensSet(`policy:\n  publishers: ["${allowed}"]\n`), lock);

    await expectFrozenRefused(
      q,
      ClientError,
      'LOCK_MISMATCH',
      `${q.lockfile}: plugins/kubecost-lens@1.1.0 locks publisher key ${allowed}`,
    );
  });
});

describe('when a publishers policy is added after a frozen install took the lock\u2019s publisher', () => {
  it('judges the policy by the publisher its registry signs, not by the one installed.json took from the lock', async () => {
    // Prepare: a lock edited to claim the publisher the team will allow, installed frozen with no
    // publishers policy (nothing reads who published it then); the set then given that policy, and the lock
    // made to match the new set file.
    const { lock } = await installedWithLock(lensSet());
    const signed = lock.plugins['kubecost-lens'].publisher;
    const allowed = 'A'.repeat(40);
    lock.plugins['kubecost-lens'].publisher = allowed;
    const q = await checkoutWithLock(lensSet(), lock);
    await installFrozen(q);
    const installedJson = join(q.dir, 'plugins/installed.json');
    const recorded = async () =>
      JSON.parse(await readFile(installedJson, 'utf8')).plugins['kubecost-lens'].versions['1.1.0'];
    expect(await recorded()).toMatchObject({ publisher: allowed });
    expect((await recorded()).publisher_verified).toBeUndefined();
    await writeFile(q.file, lensSet(`policy:\n  publishers: ["${allowed}"]\n`));
    lock.config_sha256 = sha256(await readFile(q.file));
    await writeLockJson(q.lockfile, lock);

    // Act and assert: install (frozen or not) asks the registry, which signs another publisher; verify -c
    // cannot call the policy kept.
    for (const flags of [{}, { frozen: true }]) {
      const refused = using(q, (c) => c.installSet(q.file, { ...HOME, ...flags }));
      await expectRefused(refused, ClientError, 'LOCK_MISMATCH', `locks publisher key ${allowed}`);
    }
    const findings = await using(q, (c) => c.verifySet(q.file, HOME));
    expect(findings).toEqual([
      {
        name: 'kubecost-lens',
        version: '1.1.0',
        ok: false,
        code: 'POLICY_DENIED',
        message: expect.stringContaining(
          `kubecost-lens@1.1.0: its publisher key ${allowed} is not recorded as checked against a signature`,
        ),
      },
    ]);

    const found = await using(q, (c) => c.discover(q.file, HOME));
    expect(found.plugins).toMatchObject([
      {
        name: 'kubecost-lens',
        status: 'verified',
        policy: [expect.stringContaining('is not recorded as checked against a signature')],
      },
    ]);

    // The lock put right and the policy allowing the publisher the registry signs: one install checks it and
    // records it checked, and the next asks nothing.
    await writeFile(q.file, lensSet(`policy:\n  publishers: ["${signed}"]\n`));
    lock.plugins['kubecost-lens'].publisher = signed;
    lock.config_sha256 = sha256(await readFile(q.file));
    await writeLockJson(q.lockfile, lock);
    const checked = await using(q, (c) => c.installSet(q.file, { ...HOME, frozen: true }));
    expect(checked.items.map((i) => [i.name, i.unchanged])).toEqual([['kubecost-lens', true]]);
    expect(await recorded()).toMatchObject({ publisher: signed, publisher_verified: true });
    requests.length = 0;
    const again = await using(q, (c) => c.installSet(q.file, { ...HOME, frozen: true }));
    expect(again.items.map((i) => [i.name, i.unchanged])).toEqual([['kubecost-lens', true]]);
    expect(requests).toEqual([]);
    expect(await using(q, (c) => c.verifySet(q.file, HOME))).toMatchObject([{ ok: true }]);
  });
});

describe('when a frozen lock is forged or edited against its folder source', () => {
  /** A disk folder and a web folder, each pinned to the publisher's key. */
  const folderSet = () => `plugins:
  providers:
    - { type: file, name: disk, path: ${folder}, key: ./publisher.asc }
    - { type: url, name: web, url: ${web.url}, key: ./publisher.asc }
  plugins:
    - { provider: disk, name: disk-tool, version: "1.0.3" }
    - { provider: web, name: web-tool, version: "1.0.0" }
`;

  /**
   * A forger's own version of `name`: its file and its manifest hosted by the forger, the manifest signed
   * by the forger's key (or, `signed: false`, not at all). Returns the lock entry pointing at them.
   */
  async function forgedEntry(
    dir: string,
    hostUrl: string,
    name: string,
    version: string,
    signed: boolean,
  ): Promise<{ entry: Record<string, unknown>; manifest: Uint8Array; signature: string }> {
    const at = join(dir, name);
    await mkdir(at, { recursive: true });
    const body = encode(`#!/bin/sh\necho forged ${name}\n`);
    await writeFile(join(at, name), body);
    const artifact = { sha256: sha256(body), size: body.byteLength, url: `${hostUrl}/${name}/${name}` };
    const manifest = encode(
      `${JSON.stringify(
        validManifest({
          name,
          version,
          permissions: ['filesystem_read'],
          installation: {
            artifacts: [{ ...LINUX, url: artifact.url, sha256: artifact.sha256, size_bytes: artifact.size }],
          },
        }),
      )}\n`,
    );
    const forger = await testKey('forger');
    const signature = await (await createSigner(forger.secretKey)).sign(manifest);
    await writeFile(join(at, 'manifest.json'), manifest);
    if (signed) await writeFile(join(at, 'manifest.json.asc'), signature);
    return {
      entry: {
        manifest_sha256: sha256(manifest),
        manifest_url: `${hostUrl}/${name}/manifest.json`,
        publisher: forger.fingerprint,
        artifacts: { 'linux-amd64': artifact },
      },
      manifest,
      signature,
    };
  }

  it('refuses a lock forged whole to a manifest another key signed, or none, from a disk or a web folder, before anything is written', async () => {
    const { lock } = await installedWithLock(folderSet());
    await withForgerHost('forged-folder', async (forged, hostUrl) => {
      for (const [name, version] of [
        ['disk-tool', '1.0.3'],
        ['web-tool', '1.0.0'],
      ] as const)
        for (const signed of [true, false]) {
          const { entry } = await forgedEntry(
            join(forged, String(signed)),
            `${hostUrl}/${signed}`,
            name,
            version,
            signed,
          );
          const edited = structuredClone(lock);
          edited.plugins[name] = { ...edited.plugins[name], ...entry };
          const q = await checkoutWithLock(folderSet(), edited);

          await expectFrozenRefused(
            q,
            TrustError,
            'DOCUMENT_MISMATCH',
            `${q.lockfile}: plugins/${name}@${version}`,
          );
        }
    });
  });

  it('refuses a lock that points the manifest at a host that does not answer, rather than place the files on its digests alone', async () => {
    const { lock } = await installedWithLock(folderSet());
    await withForgerHost('forged-outage', async (forged, hostUrl) => {
      const { entry } = await forgedEntry(forged, hostUrl, 'web-tool', '1.0.0', true);
      // Where no server listens: the manifest cannot be read, the forger's file can.
      lock.plugins['web-tool'] = {
        ...lock.plugins['web-tool'],
        ...entry,
        manifest_url: 'http://127.0.0.1:9/web-tool/manifest.json',
      };
      const q = await checkoutWithLock(folderSet(), lock);

      await expectFrozenRefused(
        q,
        ClientError,
        'FETCH_FAILED',
        `${q.lockfile}: plugins/web-tool@1.0.0: the manifest it pins`,
      );
    });
  });

  it('refuses a lock that names another publisher than the key that signed the manifest it pins', async () => {
    const { lock } = await installedWithLock(folderSet());
    expect(lock.plugins['disk-tool'].publisher).toBe((await testKey('publisher')).fingerprint);
    const claimed = 'A'.repeat(40);
    lock.plugins['disk-tool'].publisher = claimed;
    const q = await checkoutWithLock(folderSet(), lock);

    await expectFrozenRefused(
      q,
      ClientError,
      'LOCK_MISMATCH',
      `${q.lockfile}: plugins/disk-tool@1.0.3 locks publisher key ${claimed}`,
    );
  });

  it('refuses, with no set, a lock forged against a manifest URL installed from with --key, by the key kept as its pin', async () => {
    const p = await project('plugins: {}\n');
    const lockfile = join(p.dir, 'plugindex.lock');
    const url = pathToFileURL(join(folder, 'team-tool/1.1.0/manifest.json')).href;
    await installFromManifestUrl(p, url, join(p.dir, 'plugins'), lockfile);
    const lock = await readLockJson(lockfile);
    await withForgerHost('forged-url', async (forged, hostUrl) => {
      const { entry } = await forgedEntry(forged, hostUrl, 'team-tool', '1.1.0', true);
      lock.plugins['team-tool'] = { ...lock.plugins['team-tool'], ...entry };
      await writeLockJson(lockfile, lock);
      const dir = join(p.dir, 'frozen');

      const frozen = using(p, (c) => c.install({ requests: [], dir, lockfile, frozen: true }));

      await expectRefused(frozen, TrustError, 'DOCUMENT_MISMATCH', `${lockfile}: plugins/team-tool@1.1.0`);
      expect(await exists(dir)).toBe(false);
    });
  });

  it('refuses a forged manifest a shared cache holds under the digest and key the lock names', async () => {
    const { lock } = await installedWithLock(folderSet());
    await withForgerHost('forged-cache', async (forged, hostUrl) => {
      const { entry, manifest, signature } = await forgedEntry(forged, hostUrl, 'disk-tool', '1.0.3', true);
      lock.plugins['disk-tool'] = { ...lock.plugins['disk-tool'], ...entry };
      const q = await checkoutWithLock(folderSet(), lock);
      const cache = new ContentCache(join(q.dir, '.home', 'cache'));
      await cache.putDocument(sha256(manifest), manifest);
      await cache.putSignature(sha256(manifest), lock.registries.disk.key_fingerprint, signature);
      // Nothing of the forger's is served: only the cache could vouch for it.
      await rm(join(forged, 'disk-tool', 'manifest.json'));

      await expectFrozenRefused(q, TrustError, 'DOCUMENT_MISMATCH', `${q.lockfile}: plugins/disk-tool@1.0.3`);
    });
  });
});

describe('when a set names a registry this client also reaches under another name', () => {
  /** Publishes one more generation of the served registry (nothing of the sets' plugins changes). */
  async function publishAnother(name: string): Promise<void> {
    await processSubmissions(
      registry.context,
      await registry.submit(await makeBundle({ manifest: validManifest({ name }) })),
    );
  }

  /** Runs `body` with `old` served as the registry's snapshot, the current one put back after. */
  async function serving<T>(old: StoredObject, body: () => Promise<T>): Promise<T> {
    const current = registry.site.objects.get(SIGNED_SNAPSHOT_KEY) as StoredObject;
    registry.site.objects.set(SIGNED_SNAPSHOT_KEY, old);
    try {
      return await body();
    } finally {
      registry.site.objects.set(SIGNED_SNAPSHOT_KEY, current);
    }
  }

  it('refuses the set a snapshot older than one accepted for the configured registry of that URL and key', async () => {
    // Prepare: the set locked at the current generation, then a newer one accepted by `registry add`.
    const p = await project(exampleSet(base));
    await using(p, (c) => c.installSet(p.file, HOME));
    const old = registry.site.objects.get(SIGNED_SNAPSHOT_KEY) as StoredObject;
    await publishAnother('configured-first-tool');
    await using(p, (c) =>
      c.addRegistry({ name: 'configured', url: base, pin: { armored: registry.registryKey.publicKey } }),
    );
    // Act: a mirror (or the network) serves the set's registry the older snapshot, at the lock's floor.
    const attempt = serving(old, () => using(p, (c) => c.installSet(p.file, { ...HOME, upgrade: true })));
    // Assess
    await expectRefused(attempt, TrustError, 'SNAPSHOT_ROLLBACK', 'already seen');
  });

  it('holds the set to a configured registry’s trust state kept before it named its registry', async () => {
    const p = await project(exampleSet(base));
    await using(p, (c) => c.installSet(p.file, HOME));
    const old = registry.site.objects.get(SIGNED_SNAPSHOT_KEY) as StoredObject;
    await publishAnother('migrated-tool');
    await using(p, (c) =>
      c.addRegistry({ name: 'configured', url: base, pin: { armored: registry.registryKey.publicKey } }),
    );
    // As an older client wrote it: no `registry`, so only the name and the configuration tell its URL.
    const kept = join(p.dir, '.home/data/trust/configured/state.json');
    const { registry: _pinned, ...older } = JSON.parse(await readFile(kept, 'utf8'));
    await writeFile(kept, JSON.stringify(older));
    const attempt = serving(old, () => using(p, (c) => c.installSet(p.file, { ...HOME, upgrade: true })));
    await expectRefused(attempt, TrustError, 'SNAPSHOT_ROLLBACK', 'trust/configured');
  });

  it('refuses the configured registry a snapshot older than one a set accepted from it', async () => {
    const p = await project(exampleSet(base));
    await using(p, (c) =>
      c.addRegistry({ name: 'configured', url: base, pin: { armored: registry.registryKey.publicKey } }),
    );
    const old = registry.site.objects.get(SIGNED_SNAPSHOT_KEY) as StoredObject;
    await publishAnother('set-first-tool');
    await using(p, (c) => c.installSet(p.file, HOME));
    const reports = await serving(old, () => using(p, (c) => c.updateRegistries(['configured'])));
    expect(reports).toEqual([
      expect.objectContaining({ error: expect.objectContaining({ code: 'SNAPSHOT_ROLLBACK' }) }),
    ]);
  });

  it('refuses the set a log that forks from the one the configured registry remembers, not taking it on first use', async () => {
    const p = await project(exampleSet(base));
    await using(p, (c) =>
      c.addRegistry({ name: 'configured', url: base, pin: { armored: registry.registryKey.publicKey } }),
    );
    // As if the configured name had accepted another history of the same length: the served one forks from it.
    const kept = join(p.dir, '.home/data/trust/configured/state.json');
    const state = JSON.parse(await readFile(kept, 'utf8'));
    await writeFile(kept, JSON.stringify({ ...state, log: { ...state.log, head: 'f'.repeat(64) } }));
    await expectRefused(
      using(p, (c) => c.installSet(p.file, HOME)),
      TrustError,
      'LOG_FORKED',
      '',
    );
    expect(await exists(p.lockfile)).toBe(false);
  });

  it('is not bound by another name that pins another key for that URL (another trust root)', async () => {
    const p = await project(exampleSet(base));
    const forged = new ClientState({
      config: join(p.dir, '.home/config'),
      data: join(p.dir, '.home/data'),
      cache: join(p.dir, '.home/cache'),
    });
    const publisher = await testKey('publisher');
    await forged.writeTrust('forged', {
      fingerprint: publisher.fingerprint,
      armoredKey: publisher.publicKey,
      highestGeneration: 1_000_000,
      log: { length: 1_000_000, head: 'f'.repeat(64) },
      registry: base,
    });
    const result = await using(p, (c) => c.installSet(p.file, HOME));
    expect(result.items.map((i) => i.name)).toEqual(['kubecost-lens', 'multicloud-rollup']);
  });

  it('refuses a set naming a mirror of the registry a snapshot older than a set naming the registry accepted', async () => {
    // A mirror: another server of the same published files, so its snapshots name the registry they copy.
    const mirror = await listenRegistryServer(createRegistryServer({ site: registry.site }), 0);
    try {
      const p = await project(exampleSet(base));
      const old = registry.site.objects.get(SIGNED_SNAPSHOT_KEY) as StoredObject;
      await publishAnother('mirror-tool');
      await using(p, (c) => c.installSet(p.file, HOME));
      const other = join(p.dir, 'mirrored');
      await mkdir(other, { recursive: true });
      await writeFile(join(other, 'registry.asc'), registry.registryKey.publicKey);
      await writeFile(join(other, 'plugins.yaml'), exampleSet(mirror.url));
      const attempt = serving(old, () => using(p, (c) => c.installSet(join(other, 'plugins.yaml'), HOME)));
      await expectRefused(attempt, TrustError, 'SNAPSHOT_ROLLBACK', 'already seen');
    } finally {
      await mirror.close();
    }
  });

  /** The served snapshot, signed by another key than the registry's (with no rotation to it published). */
  async function signedByAnother(): Promise<StoredObject> {
    const current = registry.site.objects.get(SIGNED_SNAPSHOT_KEY) as StoredObject;
    const other = await createSigner((await testKey('another')).secretKey);
    const envelope = JSON.parse(new TextDecoder().decode(current.body)) as { snapshot: string };
    const snapshot = { ...JSON.parse(envelope.snapshot), key_fingerprint: other.fingerprint };
    const text = JSON.stringify(snapshot);
    const body = encode(
      JSON.stringify({ ...envelope, snapshot: text, signature: await other.sign(encode(text)) }),
    );
    return { ...current, body, size: body.byteLength, etag: '"another-key"' };
  }

  /** What the trust folder `name` keeps accepted, as written. */
  async function kept(p: Project, name: string): Promise<{ highest_generation?: number }> {
    return JSON.parse(await readFile(join(p.dir, '.home/data/trust', name, 'state.json'), 'utf8'));
  }

  it('takes a registry rebuilt at a lower generation again under every name once `registry reset-trust` forgets their floors', async () => {
    // Prepare: the registry accepted at a newer generation under two configured names and a set's.
    const p = await project(exampleSet(base));
    const add = (name: string) =>
      using(p, (c) => c.addRegistry({ name, url: base, pin: { armored: registry.registryKey.publicKey } }));
    await add('configured');
    const old = registry.site.objects.get(SIGNED_SNAPSHOT_KEY) as StoredObject;
    const lower = (await using(p, (c) => c.updateRegistries(['configured'])))[0]?.report?.generation;
    await publishAnother('rebuilt-tool');
    await add('again');
    await using(p, (c) => c.installSet(p.file, HOME));
    await using(p, (c) => c.updateRegistries(['configured']));
    const higher = (await kept(p, 'configured')).highest_generation as number;
    expect(higher).toBeGreaterThan(lower as number);
    const setName = setTrustName(base, registry.registryKey.fingerprint);
    // The operator rebuilt it from scratch, under the same key, at a lower generation (the older snapshot).
    await serving(old, async () => {
      // Act: refused, the refusal naming the way out; then the reset.
      const [refused] = await using(p, (c) => c.updateRegistries(['again']));
      expect(refused?.error).toBeInstanceOf(TrustError);
      expect(refused?.error).toMatchObject({
        code: 'SNAPSHOT_ROLLBACK',
        message: expect.stringContaining('plugindex registry reset-trust again'),
      });
      const reset = await using(p, (c) => c.resetRegistryTrust({ name: 'configured' }));
      // Assess: every name of it forgot what it accepted, and each takes the rebuilt registry again.
      expect(reset).toMatchObject({ generation: lower, fingerprint: registry.registryKey.fingerprint });
      expect(reset.forgotten).toEqual(
        ['again', 'configured', setName]
          .sort()
          .map((name) => expect.objectContaining({ name, generation: higher })),
      );
      for (const name of ['again', 'configured', setName])
        expect((await kept(p, name)).highest_generation).toBe(lower);
      const reports = await using(p, (c) => c.updateRegistries(['again', 'configured']));
      expect(reports.map((r) => [r.error, r.report?.generation])).toEqual([
        [undefined, lower],
        [undefined, lower],
      ]);
    });
  });

  it('refuses the set a rollback naming `registry reset-trust` by its URL and key', async () => {
    const p = await project(exampleSet(base));
    await using(p, (c) => c.installSet(p.file, HOME));
    const old = registry.site.objects.get(SIGNED_SNAPSHOT_KEY) as StoredObject;
    await publishAnother('set-reset-tool');
    await using(p, (c) =>
      c.addRegistry({ name: 'configured', url: base, pin: { armored: registry.registryKey.publicKey } }),
    );
    const attempt = serving(old, () => using(p, (c) => c.installSet(p.file, { ...HOME, upgrade: true })));
    await expectRefused(
      attempt,
      TrustError,
      'SNAPSHOT_ROLLBACK',
      `plugindex registry reset-trust ${base} --key`,
    );
  });

  it('refuses to reset a registry now signed by another key (TRUST_RESET_REFUSED), forgetting nothing', async () => {
    const p = await project(exampleSet(base));
    await using(p, (c) =>
      c.addRegistry({ name: 'configured', url: base, pin: { armored: registry.registryKey.publicKey } }),
    );
    await using(p, (c) => c.installSet(p.file, HOME));
    const setName = setTrustName(base, registry.registryKey.fingerprint);
    const before = [await kept(p, 'configured'), await kept(p, setName)];
    const attempt = serving(await signedByAnother(), () =>
      using(p, (c) => c.resetRegistryTrust({ name: 'configured' })),
    );
    await expectRefused(attempt, ClientError, 'TRUST_RESET_REFUSED', 'plugindex registry add --force');
    expect([await kept(p, 'configured'), await kept(p, setName)]).toEqual(before);
    // Nor by the set's URL and the key it pins.
    const byUrl = serving(await signedByAnother(), () =>
      using(p, (c) => c.resetRegistryTrust({ url: base, armoredKey: registry.registryKey.publicKey })),
    );
    await expectRefused(byUrl, ClientError, 'TRUST_RESET_REFUSED', 'not signed by the key pinned');
    expect([await kept(p, 'configured'), await kept(p, setName)]).toEqual(before);
  });

  it('refuses a second set naming the registry otherwise a snapshot older than the first set accepted', async () => {
    const p = await project(exampleSet(base));
    const old = registry.site.objects.get(SIGNED_SNAPSHOT_KEY) as StoredObject;
    await publishAnother('first-set-tool');
    await using(p, (c) => c.installSet(p.file, HOME));
    // The same registry, spelled with a trailing slash and an upper-case scheme, in another checkout's set
    // of the same user (its own lock, none yet).
    const other = join(p.dir, 'other');
    await mkdir(other, { recursive: true });
    await writeFile(join(other, 'registry.asc'), registry.registryKey.publicKey);
    await writeFile(join(other, 'plugins.yaml'), exampleSet(`${base.replace('http:', 'HTTP:')}/`));
    const attempt = serving(old, () => using(p, (c) => c.installSet(join(other, 'plugins.yaml'), HOME)));
    await expectRefused(attempt, TrustError, 'SNAPSHOT_ROLLBACK', 'already seen');
  });
});

describe('when the key a set’s registry was followed to is one no signature by which is taken', () => {
  it('refuses the set (PINNED_KEY_UNTRUSTED), naming the trust folder to remove, and keeps the lock as it was', async () => {
    // Prepare: the set installed; then its trust state as a client that followed a rotation to a key anyone
    // can sign as left it (a rotation to such a key is refused now, and so is `registry add` of one).
    const p = await project(exampleSet(base));
    await using(p, (c) => c.installSet(p.file, HOME));
    const lock = await readFile(p.lockfile, 'utf8');
    const setName = setTrustName(base, registry.registryKey.fingerprint);
    const dir = join(p.dir, '.home/data/trust', setName);
    const weak = UNTRUSTED_KEYS[0] as UntrustedKey;
    const state = JSON.parse(await readFile(join(dir, 'state.json'), 'utf8'));
    const followed = {
      ...state,
      fingerprint: weak.fingerprint,
      rotations: 1,
      chain: [
        { fingerprint: registry.registryKey.fingerprint, key: registry.registryKey.publicKey, retired_by: 1 },
      ],
    };
    await writeFile(join(dir, 'state.json'), JSON.stringify(followed));
    await writeFile(join(dir, 'registry.asc'), weak.publicKey);

    // Act, Assess
    await expectRefused(
      using(p, (c) => c.installSet(p.file, { ...HOME, upgrade: true })),
      ClientError,
      'PINNED_KEY_UNTRUSTED',
      `registry "${setName}" (trust/${setName} in the client's data directory), ${weak.fingerprint}, cannot be trusted`,
    );
    expect(await readFile(p.lockfile, 'utf8')).toBe(lock);
    // As the refusal says: that folder removed, the key the set names is pinned afresh.
    await rm(dir, { recursive: true });
    await using(p, (c) => c.installSet(p.file, { ...HOME, upgrade: true }));
    expect(JSON.parse(await readFile(join(dir, 'state.json'), 'utf8')).fingerprint).toBe(
      registry.registryKey.fingerprint,
    );
  });
});

describe('when two sets share one install folder and pin the same version', () => {
  /** One checkout holding two sets (`plugins.yaml`, `team-b.yaml`) that install into its ./plugins. */
  async function twoSets(a: string, b: string) {
    const setText = (list: string) => diskSet('./plugins', list);
    const p = await project(setText(a));
    const other = join(p.dir, 'team-b.yaml');
    await writeFile(other, setText(b));
    const file = join(p.dir, 'plugins', 'installed.json');
    const setsOf = async (name: string, version: string): Promise<string[] | undefined> =>
      JSON.parse(await readFile(file, 'utf8')).plugins[name]?.versions[version]?.sets;
    return { p, other, plugins: join(p.dir, 'plugins'), setText, setsOf };
  }
  const disk = (version: string) => `    - { provider: disk, name: disk-tool, version: "${version}" }\n`;
  const team = TEAM_TOOL;

  it('records both as its owners, and clean -c of one drops only its own claim until neither pins it', async () => {
    // Prepare: both sets pin disk-tool 1.0.0; the first also team-tool.
    const { p, other, plugins, setText, setsOf } = await twoSets(disk('1.0.0') + team, disk('1.0.0'));
    await using(p, (c) => c.installSet(p.file, HOME));
    const second = await using(p, (c) => c.installSet(other, HOME));
    expect(second.items.every((i) => i.unchanged)).toBe(true);
    expect(await setsOf('disk-tool', '1.0.0')).toEqual(['../plugins.yaml', '../team-b.yaml']);

    // Act: the first set drops disk-tool.
    await writeFile(p.file, setText(team));
    const diff = await using(p, (c) => c.diffSet(p.file, HOME));
    const before = await using(p, (c) => c.verifySet(p.file, HOME));
    const report = await using(p, (c) => c.cleanSet(p.file, HOME));
    const after = await using(p, (c) => c.verifySet(p.file, HOME));
    const theOther = await using(p, (c) => c.verifySet(other, HOME));

    // Assess: its claim dropped, the files left for the other set, which still verifies them as its own.
    expect(diff.changes).toEqual([
      expect.objectContaining({
        name: 'disk-tool',
        change: 'remove',
        from: '1.0.0',
        sharedWith: ['../team-b.yaml'],
        detail: expect.stringContaining('the files stay'),
      }),
    ]);
    expect(before).toContainEqual(expect.objectContaining({ name: 'disk-tool', code: 'NOT_IN_SET' }));
    expect(report.removed).toEqual([]);
    expect(report.left).toEqual([
      {
        name: 'disk-tool',
        version: '1.0.0',
        dir: plugins,
        detail: expect.stringContaining('also placed by ../team-b.yaml'),
      },
    ]);
    expect(await exists(join(plugins, 'disk-tool/1.0.0/linux-amd64/disk-tool'))).toBe(true);
    expect(await setsOf('disk-tool', '1.0.0')).toEqual(['../team-b.yaml']);
    expect(after).toContainEqual(expect.objectContaining({ name: 'disk-tool', code: 'NOT_PLACED_BY_SET' }));
    expect(after.filter((f) => !f.ok && f.code !== 'NOT_PLACED_BY_SET')).toEqual([]);
    expect(theOther.filter((f) => !f.ok)).toEqual([
      expect.objectContaining({ name: 'team-tool', code: 'NOT_PLACED_BY_SET' }),
    ]);
    expect((await using(p, (c) => c.diffSet(p.file, HOME))).changes).toEqual([]);

    // Act: the other set drops it too.
    await writeFile(other, setText(team));
    const last = await using(p, (c) => c.cleanSet(other, HOME));

    // Assess: no owner is left, so it goes.
    expect(last.removed).toEqual([{ name: 'disk-tool', version: '1.0.0', dir: plugins }]);
    expect(await exists(join(plugins, 'disk-tool/1.0.0'))).toBe(false);
  });

  it('leaves the version one set moves from while the other pins it, and the last to move removes it (install -c)', async () => {
    // Prepare
    const { p, other, plugins, setText, setsOf } = await twoSets(disk('1.0.0'), disk('1.0.0'));
    await using(p, (c) => c.installSet(p.file, HOME));
    await using(p, (c) => c.installSet(other, HOME));

    // Act: the first set moves on.
    await writeFile(p.file, setText(disk('1.0.3')));
    await using(p, (c) => c.installSet(p.file, HOME));

    // Assess: the version the other still pins stays, now the other's alone.
    expect(await exists(join(plugins, 'disk-tool/1.0.0/linux-amd64/disk-tool'))).toBe(true);
    expect(await setsOf('disk-tool', '1.0.0')).toEqual(['../team-b.yaml']);
    expect(await setsOf('disk-tool', '1.0.3')).toEqual(['../plugins.yaml']);
    expect((await using(p, (c) => c.verifySet(other, HOME))).filter((f) => f.ok)).toEqual([
      expect.objectContaining({ name: 'disk-tool', version: '1.0.0' }),
    ]);

    // Act: the other moves on too.
    await writeFile(other, setText(disk('2.0.0')));
    await using(p, (c) => c.installSet(other, HOME));

    // Assess: 1.0.0 had no owner left and went; the first set's 1.0.3 is not the other's to replace.
    expect(await exists(join(plugins, 'disk-tool/1.0.0'))).toBe(false);
    expect(await setsOf('disk-tool', '1.0.3')).toEqual(['../plugins.yaml']);
    expect(await setsOf('disk-tool', '2.0.0')).toEqual(['../team-b.yaml']);
  });

  it('reads the single `set` the previous release wrote, and writes the list once another set joins', async () => {
    // Prepare: both installed, then installed.json as the previous release wrote it: one owner, `set`.
    const { p, other, plugins, setText, setsOf } = await twoSets(disk('1.0.0'), disk('1.0.0'));
    await using(p, (c) => c.installSet(p.file, HOME));
    const file = join(plugins, 'installed.json');
    const json = JSON.parse(await readFile(file, 'utf8'));
    const record = json.plugins['disk-tool'].versions['1.0.0'];
    delete record.sets;
    record.set = '../plugins.yaml';
    await writeFile(file, `${JSON.stringify(json, null, 2)}\n`);

    // Act
    await using(p, (c) => c.installSet(other, HOME));

    // Assess
    const written = JSON.parse(await readFile(file, 'utf8')).plugins['disk-tool'].versions['1.0.0'];
    expect(written).not.toHaveProperty('set');
    expect(await setsOf('disk-tool', '1.0.0')).toEqual(['../plugins.yaml', '../team-b.yaml']);
    await writeFile(p.file, setText(team));
    expect((await using(p, (c) => c.cleanSet(p.file, HOME))).left).toEqual([
      expect.objectContaining({ name: 'disk-tool', detail: expect.stringContaining('also placed by') }),
    ]);
    expect(await setsOf('disk-tool', '1.0.0')).toEqual(['../team-b.yaml']);
  });
});

describe('when a set file is named through a link or in another letter case', () => {
  /** A checkout whose set installs into a folder outside it, and a link to the checkout's folder. */
  async function linked() {
    const shared = await mkdtemp(join(root, 'shared-'));
    const setText = (list: string) => diskSet(join(shared, 'plugins'), list);
    const p = await project(setText(DISK_TOOL + TEAM_TOOL));
    const link = join(shared, 'checkout');
    await symlink(p.dir, link, 'dir');
    return { p, link, plugins: join(shared, 'plugins'), setText };
  }

  it('takes it as the one set: clean -c by the real path removes what an install by the link placed', async () => {
    // Prepare: installed through the link; then the set drops team-tool.
    const { p, link, plugins, setText } = await linked();
    await using(p, (c) => c.installSet(join(link, 'plugins.yaml'), HOME));
    await writeFile(p.file, setText(DISK_TOOL));

    // Act
    const findings = await using(p, (c) => c.verifySet(p.file, HOME));
    const report = await using(p, (c) => c.cleanSet(p.file, HOME));

    // Assess: the set's own, named by the set file's real path from the install folder's.
    expect(findings).toContainEqual(expect.objectContaining({ name: 'team-tool', code: 'NOT_IN_SET' }));
    expect(report.removed).toEqual([{ name: 'team-tool', version: '1.0.0', dir: plugins }]);
    expect(report.left).toEqual([]);
    const installed = JSON.parse(await readFile(join(plugins, 'installed.json'), 'utf8'));
    expect(installed.plugins['disk-tool'].versions['1.0.0'].sets).toEqual([
      relative(plugins, p.file).split(sep).join('/'),
    ]);
  });

  it('takes a record the previous release wrote by the link as the set’s own', async () => {
    // Prepare: installed by the real path, then recorded as the previous release recorded an install by
    // the link: its path as given.
    const { p, link, plugins, setText } = await linked();
    await using(p, (c) => c.installSet(p.file, HOME));
    const file = join(plugins, 'installed.json');
    const json = JSON.parse(await readFile(file, 'utf8'));
    for (const plugin of Object.values(json.plugins) as {
      versions: Record<string, Record<string, unknown>>;
    }[])
      for (const record of Object.values(plugin.versions)) {
        delete record.sets;
        record.set = relative(plugins, join(link, 'plugins.yaml')).split(sep).join('/');
      }
    await writeFile(file, `${JSON.stringify(json, null, 2)}\n`);
    await writeFile(p.file, setText(DISK_TOOL));

    // Act
    const report = await using(p, (c) => c.cleanSet(p.file, HOME));

    // Assess
    expect(report.removed).toEqual([{ name: 'team-tool', version: '1.0.0', dir: plugins }]);
  });

  it('installs a set naming one install folder two ways (a link to it) without waiting on its own lock', async () => {
    // Prepare: team-tool's install_location is a link to the set's own install folder, so both trees are
    // one installed.json (and one installed.json.lock) under two names.
    const { p, plugins, setText } = await linked();
    await mkdir(plugins, { recursive: true });
    const alias = join(p.dir, 'alias');
    await symlink(plugins, alias, 'dir');
    await writeFile(
      p.file,
      setText(
        '    - { provider: disk, name: disk-tool, version: "1.0.0" }\n' +
          `    - { provider: disk, name: team-tool, version: "1.0.0", install_location: ${alias} }\n`,
      ),
    );

    // Act
    const result = await using(p, (c) => c.installSet(p.file, HOME));

    // Assess: both placed and recorded in the one installed.json.
    expect(result.items.map((i) => i.name).sort()).toEqual(['disk-tool', 'team-tool']);
    const installed = JSON.parse(await readFile(join(plugins, 'installed.json'), 'utf8'));
    expect(Object.keys(installed.plugins).sort()).toEqual(['disk-tool', 'team-tool']);
  });

  it.runIf(caseIgnored)('takes the set file named in another letter case as the one set', async () => {
    // Prepare: installed as PLUGINS.YAML where case is ignored; then the set drops team-tool.
    const { p, setText, plugins } = await linked();
    await using(p, (c) => c.installSet(join(p.dir, 'PLUGINS.YAML'), HOME));
    await writeFile(p.file, setText(DISK_TOOL));

    // Act
    const report = await using(p, (c) => c.cleanSet(p.file, HOME));

    // Assess
    expect(report.removed).toEqual([{ name: 'team-tool', version: '1.0.0', dir: plugins }]);
  });
});

describe('when a set\u2019s file is gone (deleted or moved) and its claims stay', () => {
  /**
   * One checkout whose two sets install into its ./plugins: `plugins.yaml` (disk-tool 1.0.0 and team-tool)
   * and `team-b.yaml` (disk-tool 1.0.0), both installed, then `plugins.yaml` moved out of the checkout.
   */
  async function oneSetGone() {
    const setText = (list: string) => diskSet('./plugins', list);
    const p = await project(setText(DISK_TOOL + TEAM_TOOL));
    const other = join(p.dir, 'team-b.yaml');
    await writeFile(other, setText(DISK_TOOL));
    await using(p, (c) => c.installSet(p.file, HOME));
    await using(p, (c) => c.installSet(other, HOME));
    await rename(p.file, join(p.dir, 'moved.yaml'));
    const plugins = join(p.dir, 'plugins');
    const setsOf = async (name: string, version: string): Promise<string[] | undefined> =>
      JSON.parse(await readFile(join(plugins, 'installed.json'), 'utf8')).plugins[name]?.versions[version]
        ?.sets;
    return { p, other, plugins, setsOf };
  }

  it('names each claim of the gone set in verify (SET_FILE_GONE), with how to drop it, failing nothing else', async () => {
    // Prepare
    const { p, other, plugins } = await oneSetGone();

    // Act
    const plain = await using(p, (c) => c.verifyInstalled({ dir: plugins }));
    const bySet = await using(p, (c) => c.verifySet(other, HOME));

    // Assess: one finding a version the gone set claims, naming it and the command that drops its claims.
    const gone = (name: string) =>
      expect.objectContaining({
        name,
        version: '1.0.0',
        ok: false,
        code: 'SET_FILE_GONE',
        message: expect.stringMatching(
          /\.\.\/plugins\.yaml.*no such file.*plugindex clean --orphans --dir /s,
        ),
      });
    for (const findings of [plain, bySet]) {
      expect(findings.filter((f) => f.code === 'SET_FILE_GONE')).toEqual([
        gone('disk-tool'),
        gone('team-tool'),
      ]);
    }
    // Written nowhere: installed.json's `problem` speaks for the files and signatures.
    const installed = JSON.parse(await readFile(join(plugins, 'installed.json'), 'utf8'));
    expect(installed.plugins['disk-tool'].versions['1.0.0']).not.toHaveProperty('problem');
  });

  it('drops them with cleanOrphans: a version no one else claims goes, one another set pins stays its', async () => {
    // Prepare
    const { p, plugins, setsOf } = await oneSetGone();

    // Act
    const report = await using(p, (c) => c.cleanOrphans({ dir: plugins }));

    // Assess
    expect(report.removed).toEqual([
      { name: 'team-tool', version: '1.0.0', dir: plugins, sets: ['../plugins.yaml'] },
    ]);
    expect(report.left).toEqual([
      {
        name: 'disk-tool',
        version: '1.0.0',
        dir: plugins,
        sets: ['../plugins.yaml'],
        detail: expect.stringContaining('../team-b.yaml'),
      },
    ]);
    expect(await exists(join(plugins, 'team-tool'))).toBe(false);
    expect(await exists(join(plugins, 'disk-tool/1.0.0/linux-amd64/disk-tool'))).toBe(true);
    expect(await setsOf('disk-tool', '1.0.0')).toEqual(['../team-b.yaml']);
    const after = await using(p, (c) => c.verifyInstalled({ dir: plugins }));
    expect(after.filter((f) => f.code === 'SET_FILE_GONE')).toEqual([]);
    // Nothing left to drop: a second run changes nothing.
    expect(await using(p, (c) => c.cleanOrphans({ dir: plugins }))).toEqual({ removed: [], left: [] });
  });

  it('says, as clean -c of the set still there leaves a version the gone set claims, how to drop that claim', async () => {
    // Prepare: team-b drops disk-tool, which the gone set claims too.
    const { p, other, plugins } = await oneSetGone();
    await writeFile(other, diskSet('./plugins', TEAM_TOOL));

    // Act
    const report = await using(p, (c) => c.cleanSet(other, HOME));

    // Assess: not "pins it still", as no file pins anything; the command that drops its claim instead.
    expect(report.left).toEqual([
      expect.objectContaining({
        name: 'disk-tool',
        detail: expect.stringContaining(
          `../plugins.yaml, whose file is gone: \`plugindex clean --orphans --dir ${plugins}\` drops its claim`,
        ),
      }),
    ]);
    expect(report.left[0]?.detail).not.toContain('pins it still');
  });

  it('leaves a version the user installed by hand too, the user\u2019s, and every claim of a set still there', async () => {
    // Prepare: the gone set's team-tool claimed by hand too (as a plain install of it records).
    const { p, plugins, setsOf } = await oneSetGone();
    const file = join(plugins, 'installed.json');
    const installed = JSON.parse(await readFile(file, 'utf8'));
    installed.plugins['team-tool'].versions['1.0.0'].hand = true;
    await writeFile(file, `${JSON.stringify(installed, null, 2)}\n`);

    // Act
    const report = await using(p, (c) => c.cleanOrphans({ dir: plugins }));

    // Assess: nothing removed; team-tool the user's (no `sets`, no `hand`), disk-tool team-b's.
    expect(report.removed).toEqual([]);
    expect(report.left.map((l) => [l.name, l.detail])).toEqual([
      ['disk-tool', expect.stringContaining('../team-b.yaml')],
      ['team-tool', expect.stringContaining('installed by hand')],
    ]);
    expect(await exists(join(plugins, 'team-tool/1.0.0/linux-amd64/team-tool'))).toBe(true);
    const record = JSON.parse(await readFile(file, 'utf8')).plugins['team-tool'].versions['1.0.0'];
    expect(record).not.toHaveProperty('sets');
    expect(record).not.toHaveProperty('hand');
    expect(await setsOf('disk-tool', '1.0.0')).toEqual(['../team-b.yaml']);
  });
});

describe('when the user installs by hand a version a set placed', () => {
  it('records the hand claim, and the set dropping it leaves it the user\u2019s (clean -c, diff -c)', async () => {
    // Prepare: the set places kubecost-lens 1.2.0; the user installs that very version into its folder.
    const p = await project(exampleSet(base).replace('[linux/amd64, darwin/arm64]', '[linux/amd64]'));
    const plugins = join(p.dir, 'plugins');
    await using(p, (c) => c.installSet(p.file, HOME));
    const byHand = await using(p, async (c) => {
      await c.addRegistry({ name: 'test', url: base, pin: { armored: registry.registryKey.publicKey } });
      return c.install({
        requests: ['kubecost-lens@1.2.0'],
        acceptPermissions: true,
        lockfile: join(p.dir, 'by-hand.lock'),
        dir: plugins,
      });
    });
    const record = async () =>
      JSON.parse(await readFile(join(plugins, 'installed.json'), 'utf8')).plugins['kubecost-lens']?.versions[
        '1.2.0'
      ];
    expect(byHand.items.every((i) => i.unchanged)).toBe(true);
    expect(await record()).toMatchObject({ sets: ['../plugins.yaml'], hand: true });

    // Act: the set drops it.
    await writeFile(
      p.file,
      `plugins:
  install_location: ./plugins
  providers:
    - { type: registry, name: local, url: ${base}, key: ./registry.asc }
  plugins:
    - { provider: local, name: multicloud-rollup, version: beta }
`,
    );
    const diff = await using(p, (c) => c.diffSet(p.file, HOME));
    const report = await using(p, (c) => c.cleanSet(p.file, HOME));

    // Assess: its claim dropped; the version stays, the user's alone.
    expect(diff.changes).toEqual([
      expect.objectContaining({
        name: 'kubecost-lens',
        change: 'remove',
        byHand: true,
        detail: expect.stringContaining('installed by hand'),
      }),
    ]);
    expect(report.removed).toEqual([]);
    expect(report.left).toEqual([
      expect.objectContaining({
        name: 'kubecost-lens',
        detail: expect.stringContaining('installed by hand'),
      }),
    ]);
    expect(await exists(join(plugins, 'kubecost-lens/1.2.0/linux-amd64/kubecost-lens'))).toBe(true);
    const left = await record();
    expect(left).not.toHaveProperty('sets');
    expect(left).not.toHaveProperty('hand');
  });
  it('records the hand claim on the fast path too: a version up to date as the lock has it stays the user\u2019s', async () => {
    // Prepare: the user's lock names kubecost-lens 1.2.0, installed by hand elsewhere; the set places that
    // very version into its folder.
    const p = await project(exampleSet(base).replace('[linux/amd64, darwin/arm64]', '[linux/amd64]'));
    const plugins = join(p.dir, 'plugins');
    await using(p, (c) =>
      c.addRegistry({ name: 'test', url: base, pin: { armored: registry.registryKey.publicKey } }),
    );
    const byHand = (dir: string) =>
      using(p, (c) =>
        c.install({
          requests: ['kubecost-lens@1.2.0'],
          acceptPermissions: true,
          lockfile: join(p.dir, 'by-hand.lock'),
          dir,
        }),
      );
    await byHand(join(p.dir, 'elsewhere'));
    await using(p, (c) => c.installSet(p.file, HOME));
    const before = requests.length;

    // Act: the plain install of it into the set's folder, which the lock and the tree already are.
    const result = await byHand(plugins);

    // Assess: nothing asked of the registry (the fast path), and the claim recorded as the slow path does.
    expect(result.items.every((i) => i.unchanged)).toBe(true);
    expect(requests.slice(before)).toEqual([]);
    const record = JSON.parse(await readFile(join(plugins, 'installed.json'), 'utf8')).plugins[
      'kubecost-lens'
    ]?.versions['1.2.0'];
    expect(record).toMatchObject({ sets: ['../plugins.yaml'], hand: true });

    // And the set dropping it leaves it, the user's.
    await writeFile(
      p.file,
      `plugins:
  install_location: ./plugins
  providers:
    - { type: registry, name: local, url: ${base}, key: ./registry.asc }
  plugins:
    - { provider: local, name: multicloud-rollup, version: beta }
`,
    );
    const report = await using(p, (c) => c.cleanSet(p.file, HOME));
    expect(report.removed).toEqual([]);
    expect(await exists(join(plugins, 'kubecost-lens/1.2.0/linux-amd64/kubecost-lens'))).toBe(true);
  });
});
