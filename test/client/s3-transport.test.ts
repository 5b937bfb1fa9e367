/**
 * The fetcher's s3: transport against a real S3 API (s3rver on 127.0.0.1, started here): documents,
 * streamed and capped downloads, folder listings across pages, and each failure as the fetcher reports it.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpFetcher, type Endpoint, type Fetcher } from '../../client/fetcher.ts';
import { S3Transport } from '../../client/transport/s3.ts';
import { type LocalS3, startLocalS3 } from '../support/s3.ts';
import { collect, patternBytes } from '../support/streams.ts';

const BUCKET = 'team-plugins';
const CREDENTIALS = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' };
/** Folders under `many/`, more than one listing page of PAGE names. */
const MANY = 7;
const PAGE = 2;

let s3: LocalS3;
let fetcher: Fetcher;
const fetchers: Fetcher[] = [];

/** The credentials, and s3rver named as the user's own S3 endpoint: requests to it are signed. */
function signingEnv(env: Record<string, string> = CREDENTIALS): Record<string, string> {
  return { ...env, AWS_ENDPOINT_URL_S3: s3.endpoint };
}

function makeFetcher(env: Record<string, string> = signingEnv()): Fetcher {
  const made = createHttpFetcher({ env, retryDelayMs: 1 });
  fetchers.push(made);
  return made;
}

function endpointOf(bases: readonly string[] = [`s3://${BUCKET}/team`]): Endpoint {
  return { name: 'team', bases, timeoutMs: 10_000, s3: { endpoint: s3.endpoint, forcePathStyle: true } };
}

async function put(key: string, body: Uint8Array | string): Promise<void> {
  await s3.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
}

beforeAll(async () => {
  s3 = await startLocalS3([BUCKET]);
  fetcher = makeFetcher();
  await put('team/index.txt', 'hello');
  await put('team/big.bin', patternBytes(300 * 1024));
  // s3rver finds a common prefix only through an object directly inside it (it does not walk deeper under
  // the delimiter), so each folder listed here holds an object of its own; S3 itself has no such limit.
  await put('team/folder/b/manifest.json', '{}');
  await put('team/folder/a/manifest.json', '{}');
  await put('team/folder/a/2.0.0/manifest.json', '{}');
  await put('team/folder/a/1.0.0/manifest.json', '{}');
  await put('team/folder/readme.txt', 'not a folder');
  for (let i = 0; i < MANY; i++) await put(`team/many/m${i}/x`, 'x');
});

afterAll(async () => {
  await Promise.all(fetchers.map((made) => made.close()));
  await s3?.close();
});

describe('when a document is read from an s3: base', () => {
  it('returns its bytes, with the s3: URL it came from', async () => {
    const response = await fetcher.document(endpointOf(), { path: 'index.txt', maxBytes: 1024 });
    expect(response).toMatchObject({ status: 200, url: `s3://${BUCKET}/team/index.txt` });
    expect(response.status === 200 && new TextDecoder().decode(response.bytes)).toBe('hello');
  });

  it('leaves the version query out of the key (it is for CDNs)', async () => {
    const response = await fetcher.document(endpointOf(), {
      path: 'index.txt',
      maxBytes: 1024,
      version: 'abc',
    });
    expect(response.url).toBe(`s3://${BUCKET}/team/index.txt`);
  });

  it('reports a missing key as FETCH_NOT_FOUND, naming it', async () => {
    const request = fetcher.document(endpointOf(), { path: 'nothing.json', maxBytes: 1024 });
    await expect(request).rejects.toMatchObject({ name: 'ClientError', code: 'FETCH_NOT_FOUND' });
    await expect(request).rejects.toThrow(`s3://${BUCKET}/team/nothing.json`);
  });

  it('refuses an object over the cap by its size, before reading it (RESPONSE_TOO_LARGE)', async () => {
    await expect(fetcher.document(endpointOf(), { path: 'big.bin', maxBytes: 1000 })).rejects.toMatchObject({
      name: 'ClientError',
      code: 'RESPONSE_TOO_LARGE',
    });
  });

  it('falls back to the next mirror when the key is missing there', async () => {
    const folder = await mkdtemp(path.join(tmpdir(), 'plugindex-s3-mirror-'));
    try {
      await writeFile(path.join(folder, 'only-here.txt'), 'mirror');
      const endpoint = endpointOf([`s3://${BUCKET}/team`, pathToFileURL(folder).href]);
      const response = await fetcher.document(endpoint, { path: 'only-here.txt', maxBytes: 1024 });
      expect(response.url).toBe(pathToFileURL(path.join(folder, 'only-here.txt')).href);
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });
});

describe('when an artifact is downloaded from an s3: base', () => {
  const url = `s3://${BUCKET}/team/big.bin`;

  it('streams it whole with its size', async () => {
    const download = await fetcher.download(endpointOf(), { url, maxBytes: 300 * 1024 });
    expect(download.size).toBe(300 * 1024);
    expect(Buffer.from(await collect(download.body)).equals(Buffer.from(patternBytes(300 * 1024)))).toBe(
      true,
    );
  });

  it('refuses it past the cap (RESPONSE_TOO_LARGE)', async () => {
    await expect(fetcher.download(endpointOf(), { url, maxBytes: 300 * 1024 - 1 })).rejects.toMatchObject({
      name: 'ClientError',
      code: 'RESPONSE_TOO_LARGE',
    });
  });

  it('refuses an s3: artifact URL named by a registry that is not in S3 (REGISTRY_URL_INVALID)', async () => {
    const endpoint = endpointOf(['https://plugins.example']);
    await expect(fetcher.download(endpoint, { url, maxBytes: 1024 })).rejects.toMatchObject({
      name: 'ClientError',
      code: 'REGISTRY_URL_INVALID',
    });
  });
});

describe('when an s3: folder is listed', () => {
  it('gives the folder names under the path, sorted, and no objects', async () => {
    expect(await fetcher.list(endpointOf(), 'folder')).toEqual(['a', 'b']);
    expect(await fetcher.list(endpointOf(), 'folder/a/')).toEqual(['1.0.0', '2.0.0']);
  });

  it('lists from the root of a bucket', async () => {
    expect(await fetcher.list(endpointOf([`s3://${BUCKET}`]), '')).toEqual(['team']);
  });

  it('follows the continuation tokens past the first page', async () => {
    const transport = new S3Transport({ env: CREDENTIALS, lowSpeedBytesPerSecond: 1024 });
    try {
      const names = await transport.list(endpointOf(), new URL(`s3://${BUCKET}/team/many`), PAGE);
      expect(names).toEqual(Array.from({ length: MANY }, (_, i) => `m${i}`));
    } finally {
      await transport.close();
    }
  });

  it('reports a prefix with nothing under it as FETCH_NOT_FOUND', async () => {
    await expect(fetcher.list(endpointOf(), 'nothing')).rejects.toMatchObject({
      name: 'ClientError',
      code: 'FETCH_NOT_FOUND',
    });
  });
});

describe('when the credentials are wrong', () => {
  it('fails with FETCH_FAILED naming the bucket and key, without retrying', async () => {
    const wrong = makeFetcher(
      signingEnv({ AWS_ACCESS_KEY_ID: 'SOMEONE-ELSE', AWS_SECRET_ACCESS_KEY: 'wrong' }),
    );
    const request = wrong.document(endpointOf(), { path: 'index.txt', maxBytes: 1024 });
    await expect(request).rejects.toMatchObject({ name: 'ClientError', code: 'FETCH_FAILED' });
    const message = await request.catch((error: Error) => error.message);
    expect(message).toContain(`bucket "${BUCKET}", key "team/index.txt"`);
    expect(message).not.toContain('attempts');
  });

  it('fails a listing the same way', async () => {
    const wrong = makeFetcher(
      signingEnv({ AWS_ACCESS_KEY_ID: 'SOMEONE-ELSE', AWS_SECRET_ACCESS_KEY: 'wrong' }),
    );
    await expect(wrong.list(endpointOf(), 'folder')).rejects.toThrow(`bucket "${BUCKET}"`);
  });
});

/**
 * An S3 API at a custom endpoint (as a plugin set, from a checkout, may name one) that keeps the headers of
 * each request and answers every one `status` with S3's error document.
 */
async function recordingS3(status: number): Promise<{
  readonly url: string;
  readonly headers: Record<string, string | string[] | undefined>[];
  close(): Promise<void>;
}> {
  const headers: Record<string, string | string[] | undefined>[] = [];
  const server = createServer((request, response) => {
    headers.push(request.headers);
    const code = status === 404 ? 'NoSuchKey' : 'AccessDenied';
    response
      .writeHead(status, { 'content-type': 'application/xml' })
      .end(
        `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${code}</Message></Error>`,
      );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    headers,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('when a custom S3 endpoint is not the one the environment names', () => {
  const USER = {
    AWS_ACCESS_KEY_ID: 'AKIAUSERSOWNKEY',
    AWS_SECRET_ACCESS_KEY: 'the-users-secret',
    AWS_SESSION_TOKEN: 'the-users-session-token',
  };

  it('sends it no signature, access key id or session token of the user', async () => {
    // Prepare: the user's credentials in the environment, and an endpoint a set file names, not they.
    const evil = await recordingS3(404);
    try {
      const endpoint: Endpoint = { ...endpointOf(), s3: { endpoint: evil.url, forcePathStyle: true } };

      // Act
      const request = makeFetcher({ ...USER, AWS_ENDPOINT_URL_S3: s3.endpoint }).document(endpoint, {
        path: 'index.txt',
        maxBytes: 1024,
      });

      // Assess
      await expect(request).rejects.toMatchObject({ name: 'ClientError', code: 'FETCH_NOT_FOUND' });
      expect(evil.headers.length).toBeGreaterThan(0);
      for (const headers of evil.headers) {
        expect(headers.authorization).toBeUndefined();
        expect(headers['x-amz-security-token']).toBeUndefined();
        expect(JSON.stringify(headers)).not.toContain(USER.AWS_ACCESS_KEY_ID);
      }
    } finally {
      await evil.close();
    }
  });

  it('says, when it refuses the unsigned request, how to trust it with the credentials', async () => {
    const denying = await recordingS3(403);
    try {
      const endpoint: Endpoint = { ...endpointOf(), s3: { endpoint: denying.url, forcePathStyle: true } };
      const request = makeFetcher(USER).document(endpoint, { path: 'index.txt', maxBytes: 1024 });
      await expect(request).rejects.toMatchObject({
        name: 'ClientError',
        code: 'FETCH_FAILED',
        message: expect.stringContaining(`set AWS_ENDPOINT_URL_S3=${denying.url}`),
      });
    } finally {
      await denying.close();
    }
  });

  it('signs requests to the endpoint AWS_ENDPOINT_URL_S3 (or AWS_ENDPOINT_URL) names', async () => {
    const named = await recordingS3(404);
    try {
      const endpoint: Endpoint = { ...endpointOf(), s3: { endpoint: named.url, forcePathStyle: true } };
      for (const variable of ['AWS_ENDPOINT_URL_S3', 'AWS_ENDPOINT_URL']) {
        const request = makeFetcher({ ...USER, [variable]: `${named.url}/` }).document(endpoint, {
          path: 'index.txt',
          maxBytes: 1024,
        });
        await expect(request).rejects.toMatchObject({ code: 'FETCH_NOT_FOUND' });
      }
      expect(named.headers.map((headers) => String(headers.authorization))).toEqual([
        expect.stringContaining(`Credential=${USER.AWS_ACCESS_KEY_ID}/`),
        expect.stringContaining(`Credential=${USER.AWS_ACCESS_KEY_ID}/`),
      ]);
    } finally {
      await named.close();
    }
  });
});

describe('when the S3 endpoint does not answer', () => {
  it('retries, then fails with FETCH_FAILED', async () => {
    const endpoint: Endpoint = {
      ...endpointOf(),
      s3: { endpoint: 'http://127.0.0.1:9', forcePathStyle: true },
    };
    const request = fetcher.document(endpoint, { path: 'index.txt', maxBytes: 1024 });
    await expect(request).rejects.toMatchObject({ name: 'ClientError', code: 'FETCH_FAILED' });
    await expect(request).rejects.toThrow('(3 attempts)');
  });
});

describe('when an S3 endpoint drips a body inside each wait', () => {
  it('gives up on it as too slow (FETCH_FAILED), as over HTTP, rather than wait for the whole body', async () => {
    // Prepare: an S3 API (a custom endpoint, as a set or config may name) that answers GetObject with 40
    // bytes, one every 200 ms: each wait is far inside the 1 s timeout, the body takes 8 s.
    // How many of its 40 bytes each GetObject had sent when the client went.
    const sentBeforeClose: number[] = [];
    let gets = 0;
    const server = createServer((request, response) => {
      if (request.method !== 'GET') {
        response.writeHead(405).end();
        return;
      }
      gets += 1;
      response.writeHead(200, { 'content-length': '40', 'content-type': 'application/json' });
      let sent = 0;
      response.on('close', () => sentBeforeClose.push(sent));
      const timer = setInterval(() => {
        if (response.destroyed || sent === 40) {
          clearInterval(timer);
          if (!response.destroyed) response.end();
          return;
        }
        response.write('x');
        sent += 1;
      }, 200);
      response.on('close', () => clearInterval(timer));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const endpoint: Endpoint = {
      ...endpointOf(),
      // 2 s: a byte every 200 ms is never a wait that long, however late a loaded machine runs the drip (at
      // 1 s, a stall of 800 ms timed the read out before it was judged too slow).
      timeoutMs: 2_000,
      s3: { endpoint: `http://127.0.0.1:${port}`, forcePathStyle: true },
    };

    try {
      // Act
      const request = makeFetcher().document(endpoint, { path: 'drip.json', maxBytes: 1024 });

      // Assess: refused, each attempt let go of with its body unfinished.
      await expect(request).rejects.toMatchObject({
        name: 'ClientError',
        code: 'FETCH_FAILED',
        message: expect.stringContaining('too slow'),
      });
      await expect.poll(() => sentBeforeClose.length).toBe(gets);
      expect(gets).toBeGreaterThan(0);
      for (const sent of sentBeforeClose) expect(sent).toBeLessThan(40);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }, 30_000);
});

describe('when a fetcher that read from S3 is closed', () => {
  it('reads again afterwards with new clients', async () => {
    const made = makeFetcher();
    await made.document(endpointOf(), { path: 'index.txt', maxBytes: 1024 });
    await made.close();
    const again = await made.document(endpointOf(), { path: 'index.txt', maxBytes: 1024 });
    expect(again.status).toBe(200);
  });
});
