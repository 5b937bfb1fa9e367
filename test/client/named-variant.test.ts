/**
 * A plugin document's compressed variant asked for by its own name (`DocumentRequest.variant`): what the
 * client does on AWS, where the edge routes no plugin document to its variant and CloudFront compresses
 * nothing past 10,000,000 bytes. The origin is s3rver, a real S3 over HTTP (path-style, read without
 * credentials as CloudFront's origin access reads the bucket), holding what the pipeline's own
 * `putSizedVariants` wrote through `S3Store`: the variant stored with its Content-Encoding, which S3 serves
 * as it is and undici decodes once.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Store } from '../../adapters/s3-store.ts';
import { ClientError } from '../../client/errors.ts';
import { createHttpFetcher, type Endpoint, fetchBody } from '../../client/fetcher.ts';
import { compressDocument } from '../../index-builder/compression.ts';
import { sha256Hex } from '../../index-builder/digest.ts';
import { encodedVariantKey, pluginDocumentKey } from '../../index-builder/layout.ts';
import { putSizedVariants, variantPutOptions } from '../../index-builder/pipeline/encoded.ts';
import { CACHE_MUTABLE } from '../../index-builder/store.ts';
import { type LocalS3, startLocalS3 } from '../support/s3.ts';
import { startS3Proxy } from '../support/s3-proxy.ts';

const BUCKET = 'named-variant-site';
const key = pluginDocumentKey('big-plugin');
/** A plugin document's worth of JSON, over the (lowered) threshold. */
const document = new TextEncoder().encode(
  JSON.stringify({
    name: 'big-plugin',
    versions: Array.from({ length: 400 }, (_, i) => ({ v: `1.0.${i}` })),
  }),
);
const sha256 = sha256Hex(document);
let s3: LocalS3;
let site: S3Store;
/** Every path the origin was asked for, through a proxy that forwards each as it came. */
const asked: string[] = [];
let endpoint: Endpoint;
let closeProxy: () => Promise<void>;

beforeAll(async () => {
  s3 = await startLocalS3([BUCKET]);
  site = new S3Store({ client: s3.client, bucket: BUCKET });
  await putSizedVariants({ site, compressionThresholdBytes: 100 }, key, document, undefined, sha256);
  await site.put(key, document, { contentType: 'application/json', cacheControl: CACHE_MUTABLE });
  const proxy = await startS3Proxy(s3, (request) => {
    asked.push(new URL(request.url ?? '/', 'http://origin').pathname);
    return false;
  });
  closeProxy = () => proxy.close();
  endpoint = { name: 's3-origin', bases: [`${proxy.endpoint}/${BUCKET}`], timeoutMs: 10_000 };
});

afterAll(async () => {
  await closeProxy();
  await s3.close();
});

/** The document read as the client reads one over the threshold: its brotli variant by name first. */
async function readDocument(maxBytes = document.byteLength): Promise<Uint8Array> {
  const fetcher = createHttpFetcher({ env: {}, retries: 0 });
  try {
    return await fetchBody(fetcher, endpoint, {
      path: key,
      maxBytes,
      version: sha256,
      sha256,
      variant: 'br',
    });
  } finally {
    await fetcher.close();
  }
}

/** Runs `run` with the object at `at` holding `body` (stored as a brotli variant), then puts it back. */
async function withVariant(body: Uint8Array | undefined, run: () => Promise<void>): Promise<void> {
  const at = encodedVariantKey(key, 'br');
  const original = await site.get(at);
  if (body) await site.put(at, body, variantPutOptions(key, 'br', true));
  else await site.delete(at);
  try {
    await run();
  } finally {
    if (original) await site.put(at, original.body, variantPutOptions(key, 'br', true));
  }
}

describe('when a plugin document has a brotli variant on S3', () => {
  it('is stored with the Content-Encoding br and the document type, and served so', async () => {
    const head = await s3.client.send(
      new HeadObjectCommand({ Bucket: BUCKET, Key: encodedVariantKey(key, 'br') }),
    );
    expect(head).toMatchObject({ ContentEncoding: 'br', ContentType: 'application/json' });
    const served = await new Promise<http.IncomingMessage>((resolve, reject) =>
      http.get(`${s3.endpoint}/${BUCKET}/${encodedVariantKey(key, 'br')}`, resolve).on('error', reject),
    );
    served.resume();
    expect(served.headers['content-encoding']).toBe('br');
    expect(served.headers['content-type']).toBe('application/json');
  });

  it('reads the variant by its name, decoded once to the bytes its digest names', async () => {
    asked.length = 0;
    // The document itself gone from the origin: only the variant, asked for by its name, can answer.
    const original = await site.get(key);
    await site.delete(key);
    try {
      const bytes = await readDocument();
      expect(Buffer.compare(bytes, document)).toBe(0);
    } finally {
      await site.put(key, original?.body as Uint8Array, {
        contentType: 'application/json',
        cacheControl: CACHE_MUTABLE,
      });
    }
    expect(asked).toEqual([`/${BUCKET}/${key}.br`]);
  });

  it('reads the document itself when the variant is not there (404)', async () => {
    asked.length = 0;
    await withVariant(undefined, async () => {
      expect(Buffer.compare(await readDocument(), document)).toBe(0);
    });
    expect(asked).toEqual([`/${BUCKET}/${key}.br`, `/${BUCKET}/${key}`]);
  });

  // A run that died after writing a grown document's variants, before the document: the variant is of
  // bytes the bin does not list, larger than it lists, or of the same size and other bytes.
  it.each([
    ['other bytes of the same size', document.map((byte) => (byte === 0x35 ? 0x36 : byte))],
    ['more bytes than the bin lists', new TextEncoder().encode(`${new TextDecoder().decode(document)}  `)],
  ])('reads the document itself when the variant decodes to %s', async (_, stale) => {
    asked.length = 0;
    await withVariant(await compressDocument(stale, 'br'), async () => {
      expect(Buffer.compare(await readDocument(), document)).toBe(0);
    });
    expect(asked).toEqual([`/${BUCKET}/${key}.br`, `/${BUCKET}/${key}`]);
  });

  it('still refuses a document that is not there, variant or not (FETCH_NOT_FOUND)', async () => {
    const fetcher = createHttpFetcher({ env: {}, retries: 0 });
    try {
      await expect(
        fetchBody(fetcher, endpoint, {
          path: pluginDocumentKey('none-such'),
          maxBytes: 100,
          sha256,
          variant: 'br',
        }),
      ).rejects.toMatchObject({ name: ClientError.name, code: 'FETCH_NOT_FOUND' });
    } finally {
      await fetcher.close();
    }
  });
});

describe('when an origin answers 403 for a variant that is not there', () => {
  it('reads the document itself, as from S3 behind CloudFront without the list permission', async () => {
    // A mock of that origin (plain node:http): 403 for the variant, the document as it is.
    const paths: string[] = [];
    const server = http.createServer((request, response) => {
      const at = new URL(request.url ?? '/', 'http://origin').pathname;
      paths.push(at);
      if (at === `/${key}`) response.writeHead(200, { 'content-type': 'application/json' }).end(document);
      else response.writeHead(403, { 'content-type': 'application/xml' }).end('<Error>AccessDenied</Error>');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const fetcher = createHttpFetcher({ env: {}, retries: 0 });
    try {
      const { port } = server.address() as AddressInfo;
      const origin = { name: 'no-list', bases: [`http://127.0.0.1:${port}`], timeoutMs: 10_000 };
      const bytes = await fetchBody(fetcher, origin, {
        path: key,
        maxBytes: document.byteLength,
        sha256,
        variant: 'br',
      });
      expect(Buffer.compare(bytes, document)).toBe(0);
      expect(paths).toEqual([`/${key}.br`, `/${key}`]);
    } finally {
      await fetcher.close();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
