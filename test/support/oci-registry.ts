/**
 * A real OCI registry for tests: the distribution project's registry (Debian's `docker-registry`, 2.8) on
 * 127.0.0.1, started by the test with its storage in a temporary folder, and stopped after.
 *
 * Three modes: `open` (no auth); `token` (the registry's `auth.token`: it sends clients to a token service
 * this helper runs with node:http, which gives pull tokens to anyone and push tokens for the test's user name
 * and password); `private` (the same, but pull needs the credentials too: an anonymous client is given a
 * token that grants nothing, as large public registries do, so the registry answers 401 to it).
 *
 * The registry checks each token as it would in production: an RS256 JWT whose `x5c` header carries a
 * certificate its `rootcertbundle` trusts. The key and the self-signed certificate are made with the
 * openssl CLI, as an operator would make them.
 */
import { Buffer } from 'node:buffer';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash, createSign, randomUUID, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type OciRegistryMode = 'open' | 'token' | 'private';

/** The user the token service knows (push in `token` mode; pull and push in `private` mode). */
export const REGISTRY_USER = { username: 'publisher', password: 'correct horse battery staple' } as const;

export interface TokenRequest {
  readonly url: string;
  /** The Authorization header the token service received, if any. */
  readonly authorization?: string;
}

export interface OciRegistry {
  readonly mode: OciRegistryMode;
  /** `127.0.0.1:PORT`: the registry part of a reference. */
  readonly host: string;
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  /** Every request the token service answered, in order (empty in `open` mode). */
  readonly tokenRequests: TokenRequest[];
  /** A token granting `actions` on `repository`, signed as the token service signs them. */
  mintToken(repository: string, actions: readonly string[]): string;
  stop(): Promise<void>;
}

const SERVICE = 'plugindex-test-registry';
const ISSUER = 'plugindex-test-token-service';

/**
 * Starts `docker-registry serve` on a free port of 127.0.0.1 and waits until `/v2/` answers.
 * @example const registry = await startOciRegistry('token'); … await registry.stop();
 */
export async function startOciRegistry(mode: OciRegistryMode): Promise<OciRegistry> {
  const dir = mkdtempSync(join(tmpdir(), `plugindex-oci-${mode}-`));
  const tokenRequests: TokenRequest[] = [];
  let tokenServer: http.Server | undefined;
  let child: ChildProcess | undefined;
  try {
    const signer = mode === 'open' ? undefined : makeSigner(dir);
    let realm: string | undefined;
    if (signer) {
      tokenServer = http.createServer((request, response) => {
        const authorization = request.headers.authorization;
        tokenRequests.push({
          url: request.url ?? '',
          ...(authorization === undefined ? {} : { authorization }),
        });
        const answer = tokenAnswer(mode, request.url ?? '', authorization, signer);
        response.writeHead(answer.status, { 'content-type': 'application/json' });
        response.end(JSON.stringify(answer.body));
      });
      const port = await listen(tokenServer);
      realm = `http://127.0.0.1:${port}/token`;
    }
    const port = await freePort();
    const config = join(dir, 'config.yml');
    writeFileSync(config, registryConfig(dir, port, realm));
    let stderr = '';
    child = spawn('docker-registry', ['serve', config], {
      // Only what it needs: REGISTRY_* variables of the environment would override the config.
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-4000);
    });
    const url = `http://127.0.0.1:${port}`;
    await waitUntilServing(child, `${url}/v2/`, () => stderr);
    const started = child;
    const server = tokenServer;
    return {
      mode,
      host: `127.0.0.1:${port}`,
      url,
      tokenRequests,
      mintToken: (repository, actions) => {
        if (!signer) throw new Error('an open registry takes no tokens');
        return signer.token('test', [{ type: 'repository', name: repository, actions: [...actions] }]);
      },
      stop: async () => {
        await stopProcess(started);
        if (server) await closeServer(server);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    if (child) await stopProcess(child);
    if (tokenServer) await closeServer(tokenServer);
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

export interface PushOptions {
  /** The tag the manifest is put under; default `latest`. */
  readonly tag?: string;
  /** The layer's media type; default `application/octet-stream`. */
  readonly mediaType?: string;
}

export interface Pushed {
  /** `sha256:<hex>` of the layer (the artifact's `oci.digest`). */
  readonly digest: string;
  readonly size: number;
  /** `sha256:<hex>` of the manifest put under the tag. */
  readonly manifestDigest: string;
  readonly manifest: Uint8Array;
}

/**
 * Pushes `bytes` as the one layer of an OCI image manifest tagged `tag`, over the Distribution API as a
 * publisher's tool does: each blob by POST then PUT ?digest=, an empty config, then the manifest.
 */
export async function pushBlob(
  registry: OciRegistry,
  repository: string,
  bytes: Uint8Array,
  options: PushOptions = {},
): Promise<Pushed> {
  const layer = await uploadBlob(registry, repository, bytes);
  const config = await uploadBlob(registry, repository, Buffer.from('{}'));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: 2 },
      layers: [
        {
          mediaType: options.mediaType ?? 'application/octet-stream',
          digest: layer,
          size: bytes.byteLength,
          annotations: { 'org.opencontainers.image.title': 'artifact' },
        },
      ],
    }),
  );
  const manifestDigest = await putManifest(
    registry,
    repository,
    options.tag ?? 'latest',
    manifest,
    'application/vnd.oci.image.manifest.v1+json',
  );
  return { digest: layer, size: bytes.byteLength, manifestDigest, manifest };
}

/** Puts a manifest (or an index) under `reference` (a tag or its digest); returns its digest. */
export async function putManifest(
  registry: OciRegistry,
  repository: string,
  reference: string,
  bytes: Uint8Array,
  mediaType: string,
): Promise<string> {
  const response = await fetch(`${registry.url}/v2/${repository}/manifests/${reference}`, {
    method: 'PUT',
    headers: { 'content-type': mediaType, ...pushAuth(registry, repository) },
    body: bytes,
  });
  if (response.status !== 201) {
    throw new Error(
      `PUT manifest ${repository}:${reference}: HTTP ${response.status} ${await response.text()}`,
    );
  }
  return sha256Digest(bytes);
}

/** Uploads one blob (monolithic: POST, then PUT with the digest); returns its digest. */
export async function uploadBlob(
  registry: OciRegistry,
  repository: string,
  bytes: Uint8Array,
): Promise<string> {
  const digest = sha256Digest(bytes);
  const auth = pushAuth(registry, repository);
  const started = await fetch(`${registry.url}/v2/${repository}/blobs/uploads/`, {
    method: 'POST',
    headers: auth,
  });
  const location = started.headers.get('location');
  if (started.status !== 202 || location === null) {
    throw new Error(`POST upload to ${repository}: HTTP ${started.status} ${await started.text()}`);
  }
  const target = new URL(location, registry.url);
  target.searchParams.set('digest', digest);
  const put = await fetch(target, {
    method: 'PUT',
    headers: { ...auth, 'content-type': 'application/octet-stream' },
    body: bytes,
  });
  if (put.status !== 201) throw new Error(`PUT blob ${digest}: HTTP ${put.status} ${await put.text()}`);
  return digest;
}

export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

function pushAuth(registry: OciRegistry, repository: string): Record<string, string> {
  return registry.mode === 'open'
    ? {}
    : { authorization: `Bearer ${registry.mintToken(repository, ['pull', 'push'])}` };
}

interface Access {
  readonly type: string;
  readonly name: string;
  readonly actions: string[];
}

interface Signer {
  token(subject: string, access: readonly Access[]): string;
}

/** An RSA key and a self-signed certificate for it (openssl CLI), and JWTs signed with them. */
function makeSigner(dir: string): Signer {
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'token.key',
      '-out',
      'token.pem',
      '-days',
      '2',
      '-subj',
      '/CN=plugindex test token service',
    ],
    { cwd: dir, stdio: 'pipe' },
  );
  const key = readFileSync(join(dir, 'token.key'), 'utf8');
  const der = new X509Certificate(readFileSync(join(dir, 'token.pem'))).raw.toString('base64');
  return {
    token(subject, access) {
      const now = Math.floor(Date.now() / 1000);
      const header = { typ: 'JWT', alg: 'RS256', x5c: [der] };
      const claims = {
        iss: ISSUER,
        sub: subject,
        aud: SERVICE,
        exp: now + 300,
        nbf: now - 10,
        iat: now,
        jti: randomUUID(),
        access,
      };
      const signing = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
      const signature = createSign('RSA-SHA256').update(signing).sign(key);
      return `${signing}.${base64url(signature)}`;
    },
  };
}

/**
 * The token service's answer: pull is anonymous in `token` mode; push, and pull in `private` mode, need
 * REGISTRY_USER. Anonymous requests for what needs credentials get a token granting nothing; wrong
 * credentials get a 401.
 */
function tokenAnswer(
  mode: OciRegistryMode,
  url: string,
  authorization: string | undefined,
  signer: Signer,
): { status: number; body: unknown } {
  const params = new URL(url, 'http://token.invalid').searchParams;
  let user: string | undefined;
  if (authorization !== undefined) {
    const expected = `Basic ${Buffer.from(`${REGISTRY_USER.username}:${REGISTRY_USER.password}`).toString('base64')}`;
    if (authorization !== expected)
      return { status: 401, body: { details: 'incorrect username or password' } };
    user = REGISTRY_USER.username;
  }
  if (params.get('service') !== SERVICE) return { status: 400, body: { details: 'unknown service' } };
  const access: Access[] = [];
  for (const scope of params.getAll('scope')) {
    const [type, name, actions] = scope.split(':');
    if (type !== 'repository' || name === undefined || actions === undefined) continue;
    const granted = actions
      .split(',')
      .filter((action) => user !== undefined || (action === 'pull' && mode === 'token'));
    access.push({ type, name, actions: granted });
  }
  const token = signer.token(user ?? '', access);
  return { status: 200, body: { token, access_token: token, expires_in: 300 } };
}

function registryConfig(dir: string, port: number, realm: string | undefined): string {
  const auth =
    realm === undefined
      ? ''
      : [
          'auth:',
          '  token:',
          `    realm: ${realm}`,
          `    service: ${SERVICE}`,
          `    issuer: ${ISSUER}`,
          `    rootcertbundle: ${join(dir, 'token.pem')}`,
        ].join('\n');
  return [
    'version: 0.1',
    'log:',
    '  level: error',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${join(dir, 'storage')}`,
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    '  secret: plugindex-test-secret',
    'health:',
    '  storagedriver:',
    '    enabled: false',
    auth,
    '',
  ].join('\n');
}

async function waitUntilServing(child: ChildProcess, url: string, stderr: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  let exited: number | null | undefined;
  child.once('exit', (code) => {
    exited = code;
  });
  for (;;) {
    if (exited === undefined && child.exitCode !== null) exited = child.exitCode;
    if (exited !== undefined)
      throw new Error(`docker-registry exited (${exited}) before serving: ${stderr()}`);
    try {
      const response = await fetch(url);
      await response.body?.cancel();
      if (response.status === 200 || response.status === 401) return;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline)
      throw new Error(`docker-registry did not answer ${url} within 15 s: ${stderr()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

async function listen(server: http.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

async function closeServer(server: http.Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** A port nothing listens on now (the registry binds it a moment later). */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function base64url(data: string | Buffer): string {
  return Buffer.from(data).toString('base64url');
}
