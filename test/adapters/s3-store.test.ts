/**
 * The S3 store against a real S3 protocol server (s3rver on 127.0.0.1), and the whole publish pipeline
 * running on two buckets, as the AWS deployment will: nothing in the core changes.
 */

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import {
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  conflictBackoffMs,
  createS3Client,
  mayBeOwnWrite,
  type S3RetryPolicy,
  S3Store,
} from '../../adapters/s3-store.ts';
import { syntheticDocument, URL_BASE } from '../../bench/synthetic.ts';
import { catalogLineOf, emptyCatalog, saveCatalog } from '../../index-builder/catalog.ts';
import { fixedClock } from '../../index-builder/clock.ts';
import { parseRegistryConfig } from '../../index-builder/config.ts';
import { StoreError } from '../../index-builder/errors.ts';
import {
  CONTENT_ENCODINGS,
  encodedVariantKey,
  INDEX_DOCUMENTS,
  pluginDocumentKey,
} from '../../index-builder/layout.ts';
import type { SnapshotDocument } from '../../index-builder/model.ts';
import {
  flushIndexes,
  type PipelineContext,
  processSubmissions,
  rebuildRegistry,
} from '../../index-builder/pipeline/index.ts';
import { createSigner, readPublicKey, verifyDetachedSignature } from '../../index-builder/signing.ts';
import {
  CACHE_IMMUTABLE,
  CACHE_MUTABLE,
  listAll,
  listFolders,
  type Store,
} from '../../index-builder/store.ts';
import { verifyListedDocument } from '../../index-builder/verify.ts';
import { encode, makeBundle, sha256, testKey, validManifest } from '../support/fixtures.ts';
import { gpgKeyring } from '../support/gpg.ts';
import { MemoryStore } from '../support/memory-store.ts';
import { PULUMICOST_SPEC } from '../support/reference.ts';
import { type LocalS3, startLocalS3 } from '../support/s3.ts';
import { startS3Gate } from '../support/s3-gate.ts';
import { startS3LostAnswers } from '../support/s3-lost-answers.ts';
import { answerS3Error, S3_ANSWERS } from '../support/s3-object-errors.ts';
import { startS3Proxy } from '../support/s3-proxy.ts';
import { withMethod } from '../support/stores.ts';
import { chunksOf, collect, patternBytes } from '../support/streams.ts';

const opts = { contentType: 'application/json', cacheControl: 'public, max-age=60' };
let s3: LocalS3;

beforeAll(async () => {
  s3 = await startLocalS3([
    'store-test',
    'intake',
    'site',
    'encoded-intake',
    'encoded-site',
    'parts-intake',
    'parts-site',
    'rebuild-intake',
    'rebuild-site',
    'variants-intake',
    'variants-site',
  ]);
});
afterAll(async () => {
  await s3?.close();
});

/**
 * A client of the local S3 whose requests `picks` names (by what it returns, recorded in `sent`) are
 * answered from `answers` in turn, S3's refusals as S3 gives them (a mock: s3rver ignores the conditional
 * headers); once `answers` is empty, or for a request not picked, s3rver answers.
 */
function answeringClient(picks: (command: string, input: Record<string, unknown>) => string | undefined) {
  const client = new S3Client({ ...s3.config });
  const answers: { name: string; status: number }[] = [];
  const sent: string[] = [];
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const picked = picks(context.commandName ?? '', args.input as Record<string, unknown>);
      if (picked === undefined) return next(args);
      sent.push(picked);
      const answer = answers.shift();
      if (answer)
        throw new S3ServiceException({
          name: answer.name,
          $fault: 'client',
          $metadata: { httpStatusCode: answer.status },
        });
      return next(args);
    },
    { step: 'initialize', name: 'answeredByTest' },
  );
  return { client, answers, sent };
}

describe('when storing objects in S3', () => {
  it('round-trips bytes, content type, cache control and the ETag', async () => {
    const store = new S3Store({ client: s3.client, bucket: 'store-test' });
    await store.put('a/b.json', encode('{"x":1}'), opts);
    const object = await store.get('a/b.json');
    expect(new TextDecoder().decode(object?.body)).toBe('{"x":1}');
    expect(object).toMatchObject({
      key: 'a/b.json',
      size: 7,
      contentType: 'application/json',
      cacheControl: 'public, max-age=60',
    });
    expect(object?.etag).toMatch(/^".+"$/);
    expect(await store.head('a/b.json')).toMatchObject({
      size: 7,
      etag: object?.etag,
      cacheControl: 'public, max-age=60',
    });
  });

  it('sends a SHA-256 the caller already has as the checksum S3 verifies on arrival', async () => {
    const client = new S3Client({ ...s3.config });
    const sent: Record<string, string>[] = [];
    client.middlewareStack.add(
      (next) => async (args) => {
        sent.push({ ...(args.request as { headers: Record<string, string> }).headers });
        return next(args);
      },
      { step: 'finalizeRequest', name: 'captureHeaders' },
    );
    const store = new S3Store({ client, bucket: 'store-test' });
    const body = encode('{"checked":true}');
    await store.put('checked.json', body, { ...opts, sha256: sha256(body) });
    await store.put('unchecked.json', body, opts);
    expect(sent[0]?.['x-amz-checksum-sha256']).toBe(Buffer.from(sha256(body), 'hex').toString('base64'));
    expect(sent[1]?.['x-amz-checksum-sha256']).toBeUndefined();
    client.destroy();
  });

  it('reads no object past maxBytes, STORE_TOO_LARGE, and one within it whole', async () => {
    const store = new S3Store({ client: s3.client, bucket: 'store-test', prefix: 'capped/' });
    await store.put('big.bin', new Uint8Array(4096), opts);

    await expect(store.get('big.bin', { maxBytes: 4095 })).rejects.toMatchObject({
      name: 'StoreError',
      code: 'STORE_TOO_LARGE',
    });
    expect((await store.get('big.bin', { maxBytes: 4096 }))?.body.byteLength).toBe(4096);
    expect(await store.get('missing.bin', { maxBytes: 1 })).toBeUndefined();
  });

  it('answers undefined for missing objects and ignores deleting them', async () => {
    const store = new S3Store({ client: s3.client, bucket: 'store-test' });
    expect(await store.get('missing.json')).toBeUndefined();
    expect(await store.head('missing.json')).toBeUndefined();
    await expect(store.delete('missing.json')).resolves.toBeUndefined();
  });

  it('lists every page in key order, under a prefix', async () => {
    const store = new S3Store({ client: s3.client, bucket: 'store-test', prefix: 'registry/', pageSize: 2 });
    for (const key of ['p/3', 'p/1', 'p/2', 'p/4', 'p/5', 'q/1']) await store.put(key, encode('x'), opts);
    expect((await listAll(store, 'p/')).map((o) => o.key)).toEqual(['p/1', 'p/2', 'p/3', 'p/4', 'p/5']);
    await store.delete('p/3');
    expect((await listAll(store, 'p/')).map((o) => o.key)).toEqual(['p/1', 'p/2', 'p/4', 'p/5']);
  });

  it('lists the folders next below a prefix, over every page, as its keys give them', async () => {
    const store = new S3Store({ client: s3.client, bucket: 'store-test', prefix: 'folders/', pageSize: 2 });
    // No names whose order differs between UTF-8 bytes (S3) and s3rver's (`a-b/` before `a/`): s3rver's
    // pages then skip keys.
    for (const key of ['plugins/b/index.json', 'plugins/ab/x', 'plugins/a/1/m.json', 'plugins/a/index.json'])
      await store.put(key, encode('x'), opts);
    await store.put('plugins/c/index.json', encode('x'), opts);
    await store.put('plugins/loose.json', encode('x'), opts);
    const folders = async (from: Store, prefix: string): Promise<string[]> => {
      const out: string[] = [];
      for await (const folder of listFolders(from, prefix)) out.push(folder);
      return out;
    };

    expect(await folders(store, 'plugins/')).toEqual([
      'plugins/a/',
      'plugins/ab/',
      'plugins/b/',
      'plugins/c/',
    ]);
    expect(await folders(store, 'plugins/a')).toEqual(['plugins/a/', 'plugins/ab/']);
    expect(await folders(store, '')).toEqual(['plugins/']);
    expect(await folders(store, 'missing/')).toEqual([]);
    const keysOnly = { list: (prefix: string) => store.list(prefix) } as unknown as Store;
    expect(await folders(keysOnly, 'plugins/')).toEqual(await folders(store, 'plugins/'));
  });

  it('uploads large bodies in parts', async () => {
    const store = new S3Store({
      client: s3.client,
      bucket: 'store-test',
      multipartThresholdBytes: 5 * 1024 * 1024,
    });
    const big = new Uint8Array(12 * 1024 * 1024).map((_, i) => i % 251);
    await store.put('big.bin', big, {
      contentType: 'application/octet-stream',
      cacheControl: CACHE_IMMUTABLE,
    });
    const back = await store.get('big.bin');
    expect(back?.size).toBe(big.byteLength);
    expect(sha256(back?.body as Uint8Array)).toBe(sha256(big));
    expect(back?.cacheControl).toBe(CACHE_IMMUTABLE);
  });

  it('streams a large body up in parts and back down, and a small one as a single PUT', async () => {
    const client = new S3Client({ ...s3.config });
    const commands: string[] = [];
    client.middlewareStack.add(
      (next, context) => async (args) => {
        commands.push(context.commandName as string);
        return next(args);
      },
      { step: 'initialize', name: 'captureCommands' },
    );
    const store = new S3Store({ client, bucket: 'store-test' });
    const big = patternBytes(20 * 1024 * 1024 + 5);
    await store.putStream('stream/big.bin', chunksOf(big, 1024 * 1024), {
      contentType: 'application/octet-stream',
      cacheControl: CACHE_IMMUTABLE,
    });
    // 8 MiB parts: three of them.
    expect(commands).toEqual([
      'CreateMultipartUploadCommand',
      'UploadPartCommand',
      'UploadPartCommand',
      'UploadPartCommand',
      'CompleteMultipartUploadCommand',
    ]);
    const stream = await store.getStream('stream/big.bin');
    expect(stream).toMatchObject({
      size: big.byteLength,
      contentType: 'application/octet-stream',
      cacheControl: CACHE_IMMUTABLE,
    });
    // By digest: a deep equality over megabytes takes seconds.
    expect(sha256(await collect((stream as NonNullable<typeof stream>).body))).toBe(sha256(big));

    commands.length = 0;
    await store.putStream('stream/small.json', chunksOf(encode('{"small":true}'), 4), opts);
    expect(commands).toEqual(['PutObjectCommand']);
    const small = await store.getStream('stream/small.json');
    expect(small).toMatchObject({ size: 14, contentType: 'application/json' });
    expect(new TextDecoder().decode(await collect((small as NonNullable<typeof small>).body))).toBe(
      '{"small":true}',
    );
    expect(await store.getStream('stream/missing.json')).toBeUndefined();
    client.destroy();
  });

  it('tells the ETag S3 gave what it wrote, as a listing gives it: one PUT, in parts, or streamed', async () => {
    // The uploader's only way to the ETag that names an unread upload's outcome: publishers may not read
    // incoming/.
    const store = new S3Store({
      client: s3.client,
      bucket: 'store-test',
      multipartThresholdBytes: 5 * 1024 * 1024,
    });
    const told = new Map<string, string>();
    const writing = (key: string) => ({ ...opts, onWritten: (etag: string) => told.set(key, etag) });
    await store.put('etag/whole.bin', encode('whole'), writing('etag/whole.bin'));
    await store.put('etag/parts.bin', patternBytes(12 * 1024 * 1024), writing('etag/parts.bin'));
    await store.putStream(
      'etag/streamed.bin',
      chunksOf(patternBytes(9 * 1024 * 1024), 1024 * 1024),
      writing('etag/streamed.bin'),
    );

    const listed = new Map((await listAll(store, 'etag/')).map((o) => [o.key, o.etag]));
    expect(told).toEqual(listed);
    expect(listed.size).toBe(3);
  });

  it("tells, before the answer, the ETag S3 gives the bytes sent under its own keys: their MD5, or in parts S3's form", async () => {
    // What names an unread upload's outcome when the answer carrying the ETag is lost (mayBeOwnWrite).
    const store = new S3Store({
      client: s3.client,
      bucket: 'store-test',
      multipartThresholdBytes: 5 * 1024 * 1024,
      partSizeBytes: 5 * 1024 * 1024,
    });
    const computed = new Map<string, string>();
    const answered = new Map<string, string>();
    const writing = (key: string) => ({
      ...opts,
      onSent: (etag: string) => computed.set(key, etag),
      onWritten: (etag: string) => answered.set(key, etag),
    });
    const big = patternBytes(12 * 1024 * 1024);
    await store.put('sent/whole.bin', encode('whole'), writing('sent/whole.bin'));
    await store.putStream('sent/streamed.bin', chunksOf(encode('small'), 2), writing('sent/streamed.bin'));
    await store.put('sent/parts.bin', big, writing('sent/parts.bin'));

    // A single PUT's: what S3 (and s3rver) answers.
    expect(computed.get('sent/whole.bin')).toBe(answered.get('sent/whole.bin'));
    expect(computed.get('sent/streamed.bin')).toBe(answered.get('sent/streamed.bin'));
    // In parts, S3's form (the MD5 of the parts' MD5s, then their count), which s3rver does not give.
    const md5 = (bytes: Uint8Array) => createHash('md5').update(bytes).digest();
    const parts = [0, 1, 2].map((i) => md5(big.subarray(i * 5 * 1024 * 1024, (i + 1) * 5 * 1024 * 1024)));
    expect(computed.get('sent/parts.bin')).toBe(`"${md5(Buffer.concat(parts)).toString('hex')}-3"`);
  });

  it('publishes nothing when a streamed body fails midway, and keeps the old object', async () => {
    const store = new S3Store({ client: s3.client, bucket: 'store-test' });
    await store.put('stream/kept.bin', encode('old'), opts);
    for (const [key, size] of [
      ['stream/kept.bin', 256 * 1024],
      ['stream/never.bin', 20 * 1024 * 1024],
    ] as const) {
      const failure = await store
        .putStream(key, chunksOf(patternBytes(size), 64 * 1024, size / 2), opts)
        .catch((e: unknown) => e);
      expect(failure, key).toBeInstanceOf(StoreError);
      expect(failure, key).toMatchObject({ code: 'STORE_IO', cause: expect.any(Error) });
    }
    expect(new TextDecoder().decode((await store.get('stream/kept.bin'))?.body)).toBe('old');
    expect(await store.head('stream/never.bin')).toBeUndefined();
  });

  it('reads a streamed body no further ahead than one part on the wire and one being filled', async () => {
    // S3 slow to take each part: a store that queued more parts would read the body further ahead.
    const client = new S3Client({ ...s3.config });
    let onWire = 0;
    let mostOnWire = 0;
    let acknowledged = 0;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName !== 'UploadPartCommand') return next(args);
        onWire++;
        mostOnWire = Math.max(mostOnWire, onWire);
        try {
          await new Promise((resolve) => setTimeout(resolve, 40));
          const result = await next(args);
          acknowledged += ((args.input as { Body: Uint8Array }).Body as Uint8Array).byteLength;
          return result;
        } finally {
          onWire--;
        }
      },
      { step: 'initialize', name: 'slowParts' },
    );
    const store = new S3Store({ client, bucket: 'store-test' });
    const part = 8 * 1024 * 1024;
    const chunk = 256 * 1024;
    const big = patternBytes(6 * part + 12345);
    let read = 0;
    let mostAhead = 0;
    async function* body(): AsyncIterable<Uint8Array> {
      for await (const piece of chunksOf(big, chunk)) {
        read += piece.byteLength;
        mostAhead = Math.max(mostAhead, read - acknowledged);
        yield piece;
      }
    }
    await store.putStream('stream/paced.bin', body(), {
      contentType: 'application/octet-stream',
      cacheControl: CACHE_IMMUTABLE,
    });
    expect(mostOnWire).toBe(1);
    // The part on the wire, the full one waiting for it, and the chunk read to know it was not the last.
    expect(mostAhead).toBeLessThanOrEqual(2 * part + chunk);
    expect(sha256((await store.get('stream/paced.bin'))?.body as Uint8Array)).toBe(sha256(big));
    client.destroy();
  });

  it('stops reading a streamed body and aborts the upload when a part fails', async () => {
    const client = new S3Client({ ...s3.config });
    const commands: string[] = [];
    let parts = 0;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        commands.push(context.commandName as string);
        if (context.commandName === 'UploadPartCommand' && ++parts === 2)
          throw new S3ServiceException({
            name: 'InternalError',
            $fault: 'server',
            $metadata: { httpStatusCode: 500 },
          });
        return next(args);
      },
      { step: 'initialize', name: 'failSecondPart' },
    );
    const store = new S3Store({ client, bucket: 'store-test' });
    const part = 8 * 1024 * 1024;
    let read = 0;
    let closed = false;
    async function* body(): AsyncIterable<Uint8Array> {
      try {
        for await (const piece of chunksOf(patternBytes(10 * part), 1024 * 1024)) {
          read += piece.byteLength;
          yield piece;
        }
      } finally {
        closed = true;
      }
    }
    const failure = await store
      .putStream('stream/failed.bin', body(), {
        contentType: 'application/octet-stream',
        cacheControl: 'no-store',
      })
      .catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(StoreError);
    expect(failure).toMatchObject({
      code: 'STORE_IO',
      cause: expect.objectContaining({ name: 'InternalError' }),
    });
    // The rest of the body is never read (its producer is told to stop), and no part of it is kept.
    expect(closed).toBe(true);
    expect(read).toBeLessThanOrEqual(4 * part);
    expect(commands.at(-1)).toBe('AbortMultipartUploadCommand');
    expect(commands).not.toContain('CompleteMultipartUploadCommand');
    expect(await store.head('stream/failed.bin')).toBeUndefined();
    client.destroy();
  });

  it('creates a multipart upload with the CRC32 its parts carry where the client adds checksums', async () => {
    // AWS's default: each part gets a CRC32, which S3 refuses on completion unless the upload named it.
    const client = new S3Client({ ...s3.config, requestChecksumCalculation: 'WHEN_SUPPORTED' });
    const created: unknown[] = [];
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'CreateMultipartUploadCommand')
          created.push((args.input as { ChecksumAlgorithm?: string }).ChecksumAlgorithm);
        return next(args);
      },
      { step: 'initialize', name: 'captureCreate' },
    );
    const store = new S3Store({ client, bucket: 'store-test' });
    const big = patternBytes(9 * 1024 * 1024);
    await store.putStream('stream/checksummed.bin', chunksOf(big, 1024 * 1024), opts);
    expect(created).toEqual(['CRC32']);
    expect(sha256((await store.get('stream/checksummed.bin'))?.body as Uint8Array)).toBe(sha256(big));
    client.destroy();
  });

  it('puts createOnly with If-None-Match on the writes that make the object, and fails STORE_EXISTS on 412', async () => {
    // S3 checks the header as part of the write; s3rver ignores it, so S3's 412 is answered here (a mock).
    const client = new S3Client({ ...s3.config });
    const sent: string[] = [];
    let taken = false;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const { IfNoneMatch } = args.input as { IfNoneMatch?: string };
        sent.push(`${context.commandName} ${IfNoneMatch ?? '-'}`);
        if (taken && IfNoneMatch === '*')
          throw new S3ServiceException({
            name: 'PreconditionFailed',
            $fault: 'client',
            $metadata: { httpStatusCode: 412 },
          });
        return next(args);
      },
      { step: 'initialize', name: 'conditionalWrites' },
    );
    const store = new S3Store({ client, bucket: 'store-test', partSizeBytes: 5 * 1024 * 1024 });
    const big = patternBytes(11 * 1024 * 1024);
    await store.putStream('create/streamed.bin', chunksOf(big, 1024 * 1024), { ...opts, createOnly: true });
    await store.put('create/small.bin', encode('small'), { ...opts, createOnly: true });
    expect(sent).toEqual([
      'CreateMultipartUploadCommand -',
      'UploadPartCommand -',
      'UploadPartCommand -',
      'UploadPartCommand -',
      'CompleteMultipartUploadCommand *',
      'PutObjectCommand *',
    ]);
    sent.length = 0;
    taken = true;
    for (const write of [
      () => store.putStream('create/streamed.bin', chunksOf(big, 1024 * 1024), { ...opts, createOnly: true }),
      () => store.put('create/small.bin', encode('other'), { ...opts, createOnly: true }),
    ]) {
      const error = await write().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StoreError);
      expect(error).toMatchObject({ code: 'STORE_EXISTS', permanent: true });
    }
    expect(sent).toContain('AbortMultipartUploadCommand -');
    // Without createOnly, a 412 is no answer a put expects: a failure like any other.
    const unconditional = await store.put('create/small.bin', encode('x'), opts).catch((e: unknown) => e);
    expect(unconditional).toBeUndefined();
    expect(new TextDecoder().decode((await store.get('create/small.bin'))?.body)).toBe('x');
    client.destroy();
  });

  it('says a createOnly write refused after the SDK sent it again, an answer lost, may have made the object itself', async () => {
    // Prepare: S3 as the gate answers If-None-Match (s3rver ignores it), behind a proxy that lets a write be
    // done and then loses its answer (a connection reset): the SDK sends it again, and meets its own object.
    const gate = await startS3Gate(s3, [
      { effect: 'Allow', actions: ['s3:*'], resources: ['*'], conditions: {} },
    ]);
    const lost = await startS3LostAnswers(s3, gate.endpoint);
    const client = new S3Client({ ...s3.config, endpoint: lost.endpoint });
    const store = new S3Store({ client, bucket: 'store-test', partSizeBytes: 5 * 1024 * 1024 });
    const big = patternBytes(11 * 1024 * 1024);
    try {
      lost.lose.add('PUT /store-test/lost/small.bin');
      lost.lose.add('POST /store-test/lost/streamed.bin?uploadId');

      // Act: a single PUT, and a multipart upload whose completion's answer is lost.
      const writes = [
        () => store.put('lost/small.bin', encode('small'), { ...opts, createOnly: true }),
        () => store.putStream('lost/streamed.bin', chunksOf(big, 1024 * 1024), { ...opts, createOnly: true }),
      ];
      const failures = [];
      for (const write of writes) failures.push(await write().catch((e: unknown) => e));
      // Then another's object there, met at the first attempt.
      const taken = await store
        .put('lost/small.bin', encode('other'), { ...opts, createOnly: true })
        .catch((e: unknown) => e);

      // Assess: each was done whole; each refusal says the object may be its own, and only those.
      expect(lost.lose.size).toBe(0);
      for (const failure of failures) {
        expect(failure).toBeInstanceOf(StoreError);
        expect(failure).toMatchObject({ code: 'STORE_EXISTS', message: expect.stringMatching(/attempt 2/) });
        expect(mayBeOwnWrite(failure)).toBe(true);
      }
      expect(taken).toBeInstanceOf(StoreError);
      expect(taken).toMatchObject({ code: 'STORE_EXISTS', message: expect.stringMatching(/left as it was/) });
      expect(mayBeOwnWrite(taken)).toBe(false);
      expect(new TextDecoder().decode((await store.get('lost/small.bin'))?.body)).toBe('small');
      expect(sha256((await store.get('lost/streamed.bin'))?.body as Uint8Array)).toBe(sha256(big));
    } finally {
      client.destroy();
      await lost.close();
      await gate.close();
    }
  });

  it('puts ifMatch with If-Match on the writes that make the object, and fails STORE_CONFLICT on 412 or 409', async () => {
    // S3 checks the header as part of the write; s3rver ignores it, so S3's answers are given here (a mock).
    const client = new S3Client({ ...s3.config });
    const sent: string[] = [];
    let answer: { name: string; status: number } | undefined;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const { IfMatch } = args.input as { IfMatch?: string };
        sent.push(`${context.commandName} ${IfMatch ?? '-'}`);
        if (answer && IfMatch !== undefined)
          throw new S3ServiceException({
            name: answer.name,
            $fault: 'client',
            $metadata: { httpStatusCode: answer.status },
          });
        return next(args);
      },
      { step: 'initialize', name: 'conditionalWrites' },
    );
    const store = new S3Store({ client, bucket: 'store-test', partSizeBytes: 5 * 1024 * 1024 });
    const big = patternBytes(11 * 1024 * 1024);
    await store.putStream('match/streamed.bin', chunksOf(big, 1024 * 1024), { ...opts, ifMatch: '"a"' });
    await store.put('match/small.bin', encode('small'), { ...opts, ifMatch: '"b"' });
    expect(sent).toEqual([
      'CreateMultipartUploadCommand -',
      'UploadPartCommand -',
      'UploadPartCommand -',
      'UploadPartCommand -',
      'CompleteMultipartUploadCommand "a"',
      'PutObjectCommand "b"',
    ]);
    for (const refusal of [
      { name: 'PreconditionFailed', status: 412 },
      { name: 'ConditionalRequestConflict', status: 409 },
      // The object read deleted since: S3 answers a conditional write to a key with none 404 NoSuchKey.
      { name: 'NoSuchKey', status: 404 },
    ]) {
      answer = refusal;
      for (const write of [
        () => store.putStream('match/streamed.bin', chunksOf(big, 1024 * 1024), { ...opts, ifMatch: '"a"' }),
        () => store.put('match/small.bin', encode('other'), { ...opts, ifMatch: '"b"' }),
      ]) {
        const error = await write().catch((e: unknown) => e);
        expect(error, refusal.name).toBeInstanceOf(StoreError);
        // Not for good: the work is done again from a new read.
        expect(error, refusal.name).toMatchObject({ code: 'STORE_CONFLICT', permanent: false });
      }
    }
    expect(new TextDecoder().decode((await store.get('match/small.bin'))?.body)).toBe('small');
    client.destroy();
  });

  it('deletes ifMatch again when S3 answers a race 409, and leaves an object not the one read (412)', async () => {
    // S3 checks If-Match as part of the delete and answers 409 ConditionalRequestConflict when another request
    // on the key raced it (a mock: s3rver ignores the header). Thrown as STORE_IO, it failed the publish
    // function's invocation after the batch was committed, and held the queue for its visibility timeout.
    const { client, answers, sent } = answeringClient((command, input) =>
      command === 'DeleteObjectCommand' ? (input.IfMatch as string | undefined) : undefined,
    );
    // The backoff before each attempt again, recorded (the attempt answered 409), not slept.
    const delays: number[] = [];
    const conflictDelay = async (attempt: number) => {
      delays.push(attempt);
    };
    const store = new S3Store({ client, bucket: 'store-test', conflictDelay });
    await store.put('raced/a.bin', encode('a'), opts);
    const etag = (await store.head('raced/a.bin'))?.etag as string;

    answers.push({ name: 'ConditionalRequestConflict', status: 409 });
    await store.delete('raced/a.bin', { ifMatch: etag });
    expect(sent).toEqual([etag, etag]);
    expect(delays).toEqual([1]);
    expect(await store.head('raced/a.bin')).toBeUndefined();

    delays.length = 0;
    await store.put('raced/b.bin', encode('b'), opts);
    answers.push({ name: 'PreconditionFailed', status: 412 });
    await store.delete('raced/b.bin', { ifMatch: '"another"' });
    expect(await store.head('raced/b.bin')).toBeDefined();
    expect(delays).toEqual([]);

    // A race S3 keeps answering is a failure like any other: the object is left, and the caller told.
    answers.push(...Array.from({ length: 3 }, () => ({ name: 'ConditionalRequestConflict', status: 409 })));
    await expect(store.delete('raced/b.bin', { ifMatch: '"b"' })).rejects.toMatchObject({ code: 'STORE_IO' });
    expect(delays).toEqual([1, 2]);
    expect(await store.head('raced/b.bin')).toBeDefined();
    client.destroy();
  });

  it('waits a short jittered backoff after a race 409, longer after each attempt', () => {
    expect(conflictBackoffMs(1, () => 0)).toBe(50);
    expect(conflictBackoffMs(1, () => 0.999_999)).toBeCloseTo(100, 3);
    expect(conflictBackoffMs(2, () => 0)).toBe(100);
    expect(conflictBackoffMs(2, () => 0.999_999)).toBeCloseTo(200, 3);
  });

  it('writes createOnly again when S3 answers a race 409, the stream opened again, and never after a 412', async () => {
    // S3 answers a conditional write 409 ConditionalRequestConflict when another request on the key raced it,
    // and says to retry (a mock: s3rver ignores If-None-Match). Thrown as STORE_IO, a publisher's upload
    // failed on a race it did not lose.
    const { client, answers, sent } = answeringClient((command, input) =>
      command === 'PutObjectCommand' && input.IfNoneMatch === '*' ? (input.Key as string) : undefined,
    );
    const delays: number[] = [];
    const conflictDelay = async (attempt: number) => {
      delays.push(attempt);
    };
    const store = new S3Store({ client, bucket: 'store-test', conflictDelay });
    const create = { ...opts, createOnly: true };

    // Bytes: sent again whole.
    answers.push({ name: 'ConditionalRequestConflict', status: 409 });
    await store.put('created/a.bin', encode('a'), create);
    expect(sent).toEqual(['created/a.bin', 'created/a.bin']);
    expect(delays).toEqual([1]);
    expect(new TextDecoder().decode((await store.get('created/a.bin'))?.body)).toBe('a');

    // A stream: opened again for the second attempt, its body sent from the start.
    sent.length = 0;
    delays.length = 0;
    let opened = 0;
    const open = () => {
      opened += 1;
      return chunksOf(encode('streamed body'), 4);
    };
    answers.push(...Array.from({ length: 2 }, () => ({ name: 'ConditionalRequestConflict', status: 409 })));
    await store.putStreamFrom('created/b.bin', open, create);
    expect(opened).toBe(3);
    expect(delays).toEqual([1, 2]);
    expect(new TextDecoder().decode((await store.get('created/b.bin'))?.body)).toBe('streamed body');

    // 412: an object is there. Final at once, neither sent again nor waited for.
    sent.length = 0;
    delays.length = 0;
    opened = 0;
    answers.push({ name: 'PreconditionFailed', status: 412 });
    await expect(store.putStreamFrom('created/b.bin', open, create)).rejects.toMatchObject({
      code: 'STORE_EXISTS',
    });
    answers.push({ name: 'PreconditionFailed', status: 412 });
    await expect(store.put('created/a.bin', encode('x'), create)).rejects.toMatchObject({
      code: 'STORE_EXISTS',
    });
    expect(sent).toEqual(['created/b.bin', 'created/a.bin']);
    expect(opened).toBe(1);
    expect(delays).toEqual([]);

    // A race S3 keeps answering fails as before, after three attempts; nothing is written.
    answers.push(...Array.from({ length: 3 }, () => ({ name: 'ConditionalRequestConflict', status: 409 })));
    await expect(store.put('created/c.bin', encode('c'), create)).rejects.toMatchObject({ code: 'STORE_IO' });
    expect(delays).toEqual([1, 2]);
    expect(await store.head('created/c.bin')).toBeUndefined();
    client.destroy();
  });

  it('translates SDK failures into StoreError with the cause, and refuses unsafe keys', async () => {
    const store = new S3Store({ client: s3.client, bucket: 'no-such-bucket' });
    const failure = store.put('x.json', encode('x'), opts);
    await expect(failure).rejects.toBeInstanceOf(StoreError);
    await expect(store.put('x.json', encode('x'), opts)).rejects.toMatchObject({
      code: 'STORE_IO',
      cause: expect.objectContaining({ name: 'NoSuchBucket' }),
    });
    await expect(store.put('../escape', encode('x'), opts)).rejects.toMatchObject({
      code: 'STORE_INVALID_KEY',
    });
    await expect(store.get('')).rejects.toMatchObject({ code: 'STORE_INVALID_KEY' });
    await expect(store.get('\ud800')).rejects.toMatchObject({ code: 'STORE_INVALID_KEY' });
  });
});

/**
 * A client of the local S3 that records each DeleteObject request's key and `If-Match` header as sent:
 * s3rver ignores the header, which S3 checks as part of the delete.
 */
function recordingDeletes(): { client: S3Client; deletes: { key: string; ifMatch?: string }[] } {
  const client = new S3Client(s3.config);
  const deletes: { key: string; ifMatch?: string }[] = [];
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'DeleteObjectCommand') {
        const { headers } = args.request as { headers: Record<string, string> };
        const { Key } = args.input as { Key: string };
        deletes.push({ key: Key, ...(headers['if-match'] ? { ifMatch: headers['if-match'] } : {}) });
      }
      return next(args);
    },
    { step: 'finalizeRequest', name: 'recordDeletes' },
  );
  return { client, deletes };
}

describe('when S3 throttles requests (503 SlowDown)', () => {
  /**
   * A client of the local S3 through a mock that answers as many requests as `throttle` holds for each
   * `<METHOD> <bucket>/<key>` 503 SlowDown on the wire, as S3 does while it scales a prefix up (s3rver never
   * throttles), and forwards the rest. The client keeps the attempts and the retry mode `createS3Client`
   * gives its `policy`, and the very retry strategy the SDK makes of them (which failures it retries, how
   * many times, its retry quota); only its backoff is shortened, to a millisecond, through that strategy's
   * own `backoff` option (the production delay is the SDK's default). The strategy's class is taken from
   * the client `createS3Client` made, not imported: the SDK's retry package is no dependency of ours.
   */
  async function throttledClient(policy: S3RetryPolicy, throttle: Map<string, number>) {
    const made = createS3Client(s3.endpoint, policy);
    const maxAttempts = await made.config.maxAttempts();
    // The strategy the SDK made of the client's settings: standard or adaptive.
    const strategy = await made.config.retryStrategy();
    const { mode } = strategy as { mode?: string };
    made.destroy();
    // The standard strategy's constructor takes `{ maxAttempts, backoff }`: `backoff` computes each retry's
    // delay (its default, exponential with full jitter, a second as the base for a throttle).
    const Strategy = strategy.constructor as new (options: {
      maxAttempts: number;
      backoff: { computeNextBackoffDelay(retries: number): number; setDelayBase(delay: number): void };
    }) => typeof strategy;
    const answered: string[] = [];
    const proxy = await startS3Proxy(s3, (request, response) => {
      const url = new URL(request.url ?? '/', 'http://mock');
      const at = `${request.method} ${decodeURIComponent(url.pathname.slice(1))}`;
      const left = throttle.get(at) ?? 0;
      if (left === 0) return false;
      throttle.set(at, left - 1);
      answered.push(at);
      answerS3Error(request, response, S3_ANSWERS.throttled, answered.length);
      return true;
    });
    const client = new S3Client({
      ...s3.config,
      endpoint: proxy.endpoint,
      maxAttempts,
      retryStrategy: new Strategy({
        maxAttempts,
        backoff: { computeNextBackoffDelay: () => 1, setDelayBase: () => {} },
      }),
    });
    return {
      client,
      maxAttempts,
      mode,
      answered,
      close: async () => {
        client.destroy();
        await proxy.close();
      },
    };
  }

  it('writes and reads through more throttles than the SDK default of three attempts, each retried', async () => {
    // An import of 10,000 plugins writes tens of thousands of objects: with the SDK's three attempts, one
    // write S3 throttled three times running failed the batch, for the queue to start it again.
    const throttle = new Map<string, number>();
    const t = await throttledClient('batch', throttle);
    try {
      const store = new S3Store({ client: t.client, bucket: 'store-test' });
      expect(t).toMatchObject({ maxAttempts: 8, mode: 'standard' });

      throttle.set('PUT store-test/throttled/a.json', 5);
      await store.put('throttled/a.json', encode('{"a":1}'), opts);
      throttle.set('GET store-test/throttled/a.json', 5);
      const read = await store.get('throttled/a.json');

      expect(new TextDecoder().decode(read?.body)).toBe('{"a":1}');
      expect(t.answered).toEqual([
        ...Array.from({ length: 5 }, () => 'PUT store-test/throttled/a.json'),
        ...Array.from({ length: 5 }, () => 'GET store-test/throttled/a.json'),
      ]);
    } finally {
      await t.close();
    }
  });

  it('fails STORE_IO, not for good, once S3 throttled every attempt, and writes nothing', async () => {
    const throttle = new Map<string, number>();
    const t = await throttledClient('batch', throttle);
    try {
      const store = new S3Store({ client: t.client, bucket: 'store-test' });
      throttle.set('PUT store-test/throttled/b.json', t.maxAttempts);

      const failure = store.put('throttled/b.json', encode('{"b":1}'), opts);

      await expect(failure).rejects.toBeInstanceOf(StoreError);
      await expect(failure).rejects.toMatchObject({
        code: 'STORE_IO',
        permanent: false,
        key: 'throttled/b.json',
        cause: expect.objectContaining({
          name: 'SlowDown',
          $metadata: expect.objectContaining({ attempts: t.maxAttempts }),
        }),
      });
      expect(t.answered).toHaveLength(t.maxAttempts);
      expect(
        await new S3Store({ client: s3.client, bucket: 'store-test' }).head('throttled/b.json'),
      ).toBeUndefined();
    } finally {
      await t.close();
    }
  });

  it("gives up on a throttled read within the SDK's three attempts for the search function", async () => {
    // A guard: the SDK's default, which the search function keeps while every batch's client makes eight
    // attempts. Its answer is awaited by a person within its 10-second timeout; retried for a minute, a
    // throttled read ran into the timeout (a bare 502) while every caller kept asking S3 again.
    const throttle = new Map<string, number>([['GET store-test/throttled/search.json', 3]]);
    const t = await throttledClient('interactive', throttle);
    try {
      await new S3Store({ client: s3.client, bucket: 'store-test' }).put(
        'throttled/search.json',
        encode('{}'),
        opts,
      );
      const store = new S3Store({ client: t.client, bucket: 'store-test' });

      await expect(store.get('throttled/search.json')).rejects.toMatchObject({ code: 'STORE_IO' });
      expect(t.maxAttempts).toBe(3);
      expect(t.answered).toHaveLength(3);
    } finally {
      await t.close();
    }
  });
});

describe('when an object is read while S3 is taking a PUT of it', () => {
  it('reads the object as it was until the PUT is whole, then the new one whole (s3rver as S3)', async () => {
    // s3rver wrote a PUT into the object's own file as it came: a read beside it found half an object.
    const store = new S3Store({ client: s3.client, bucket: 'store-test' });
    const before = patternBytes(1024);
    await store.put('whole/object.bin', before, opts);
    const after = patternBytes(256 * 1024).map((byte) => 255 - byte);
    let rest = () => {};
    const held = new Promise<void>((resolve) => {
      rest = resolve;
    });
    const body = Readable.from(
      (async function* () {
        yield after.subarray(0, 128 * 1024);
        await held;
        yield after.subarray(128 * 1024);
      })(),
    );
    const putting = s3.client.send(
      new PutObjectCommand({
        Bucket: 'store-test',
        Key: 'whole/object.bin',
        Body: body,
        ContentLength: after.length,
      }),
    );
    // The first half is on s3rver's disk (in the object's file, or beside it) before the read.
    const folder = path.join(s3.directory, 'store-test', 'whole');
    const written = async () =>
      (
        await Promise.all(
          (await readdir(folder)).map(async (name) => (await stat(path.join(folder, name))).size),
        )
      ).some((size) => size >= 128 * 1024);
    for (let tries = 0; !(await written()); tries++) {
      expect(tries, 'the first half reached the disk').toBeLessThan(500);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }

    expect((await store.get('whole/object.bin'))?.body).toEqual(before);
    rest();
    await putting;
    expect((await store.get('whole/object.bin'))?.body).toEqual(after);
  });
});

describe('when the pipeline runs on S3', () => {
  it('publishes an upload from incoming/ into a signed, schema-valid site bucket', async () => {
    const registryKey = await testKey('registry');
    const recording = recordingDeletes();
    const context: PipelineContext = {
      intake: new S3Store({ client: recording.client, bucket: 'intake' }),
      site: new S3Store({ client: s3.client, bucket: 'site' }),
      signer: await createSigner(registryKey.secretKey),
      clock: fixedClock('2026-11-01T00:00:00Z', 1000),
      config: parseRegistryConfig({ name: 'S3 Registry', url: 'https://registry.example.com' }),
    };
    // Uploaded as a publisher would: a plain PUT into the intake bucket.
    const bundle = await makeBundle({
      manifest: validManifest({ name: 's3-plugin' }),
      artifacts: [{ os: 'linux', arch: 'amd64', name: 'tool', body: encode('#!/bin/sh\n') }],
    });
    await s3.client.send(
      new PutObjectCommand({ Bucket: 'intake', Key: 'incoming/s3-plugin.tgz', Body: bundle }),
    );
    const uploaded = await context.intake.head('incoming/s3-plugin.tgz');

    const result = await processSubmissions(context);
    expect(result.outcomes.map((o) => o.status)).toEqual(['accepted']);
    expect(await listAll(context.intake, 'incoming/')).toEqual([]);
    // Deleted only as the upload read: one put under its name meanwhile would be left for the next batch.
    expect(recording.deletes.filter(({ key }) => key.startsWith('incoming/'))).toEqual([
      { key: 'incoming/s3-plugin.tgz', ifMatch: uploaded?.etag },
    ]);
    expect((await context.intake.get(`status/${result.outcomes[0]?.id}.json`))?.contentType).toBe(
      'application/json',
    );

    const index = await context.site.get('index.json');
    const ajv = new Ajv2020({ allErrors: true, strict: false });
    addFormats.default(ajv);
    const schema = JSON.parse(
      readFileSync(path.join(PULUMICOST_SPEC, 'schemas/plugin_registry.schema.json'), 'utf8'),
    );
    expect(ajv.validate(schema, JSON.parse(new TextDecoder().decode(index?.body)))).toBe(true);

    const key = await readPublicKey(registryKey.publicKey);
    for (const name of [
      'index.json',
      'snapshot.json',
      'plugins/s3-plugin/index.json',
      'plugins/s3-plugin/1.0.0/manifest.json',
    ]) {
      const body = (await context.site.get(name))?.body as Uint8Array;
      const signature = new TextDecoder().decode((await context.site.get(`${name}.asc`))?.body);
      await expect(verifyDetachedSignature(body, signature, [key.key]), name).resolves.toMatchObject({
        ok: true,
      });
    }
    const artifact = await context.site.get('plugins/s3-plugin/1.0.0/artifacts/linux-amd64/tool');
    expect(artifact?.cacheControl).toBe(CACHE_IMMUTABLE);
    recording.client.destroy();
  });

  it('refuses an upload over the size limit by its listing, and moves it to rejected/ as a stream', async () => {
    const registryKey = await testKey('registry');
    const recording = recordingDeletes();
    const intake = new S3Store({ client: recording.client, bucket: 'intake' });
    const context: PipelineContext = {
      intake,
      site: new S3Store({ client: s3.client, bucket: 'site' }),
      signer: await createSigner(registryKey.secretKey),
      clock: fixedClock('2026-11-01T00:00:00Z', 1000),
      config: parseRegistryConfig({ name: 'S3 Registry', url: 'https://registry.example.com' }),
      // Small enough to exercise the path; the S3 streams are the ones a multi-GB upload would take.
      bundleLimits: { maxCompressedBytes: 1024 * 1024 },
    };
    const huge = patternBytes(9 * 1024 * 1024 + 1);
    await s3.client.send(new PutObjectCommand({ Bucket: 'intake', Key: 'incoming/huge.tgz', Body: huge }));
    const uploaded = await intake.head('incoming/huge.tgz');

    const siteBefore = (await listAll(context.site, '')).map((o) => `${o.key} ${o.etag}`);
    const result = await processSubmissions(context);

    // Nothing published changes for a rejection.
    expect(result.generation).toBeNull();
    expect((await listAll(context.site, '')).map((o) => `${o.key} ${o.etag}`)).toEqual(siteBefore);
    expect(result.outcomes).toEqual([
      expect.objectContaining({
        submission: 'incoming/huge.tgz',
        status: 'rejected',
        submission_sha256: sha256(huge),
        problems: [expect.objectContaining({ code: 'BUNDLE_TOO_LARGE', found: `${huge.byteLength} bytes` })],
      }),
    ]);
    const id = result.outcomes[0]?.id;
    const moved = await intake.getStream(`rejected/${id}.tgz`);
    expect(sha256(await collect((moved as NonNullable<typeof moved>).body))).toBe(sha256(huge));
    expect(await intake.head(`status/${id}.json`)).toBeDefined();
    expect(await listAll(intake, 'incoming/')).toEqual([]);
    expect(recording.deletes.filter(({ key }) => key.startsWith('incoming/'))).toEqual([
      { key: 'incoming/huge.tgz', ifMatch: uploaded?.etag },
    ]);
    recording.client.destroy();
  });
});

describe('when the registry on S3 is rebuilt', () => {
  it('finds every plugin by its folder, passing over a folder without a document, and signs anew', async () => {
    const registryKey = await testKey('registry');
    const context: PipelineContext = {
      intake: new S3Store({ client: s3.client, bucket: 'rebuild-intake' }),
      site: new S3Store({ client: s3.client, bucket: 'rebuild-site' }),
      signer: await createSigner(registryKey.secretKey),
      clock: fixedClock('2026-11-01T00:00:00Z', 1000),
      config: parseRegistryConfig({ name: 'S3 Registry', url: 'https://registry.example.com' }),
    };
    for (const name of ['s3-one', 's3-two']) {
      const bundle = await makeBundle({ manifest: validManifest({ name }) });
      await context.intake.put(`incoming/${name}.tgz`, bundle, {
        contentType: 'application/gzip',
        cacheControl: 'no-store',
      });
    }
    const published = await processSubmissions(context);
    expect(published.outcomes.map((o) => o.status)).toEqual(['accepted', 'accepted']);
    // A plugin's leftovers with no document: no plugin to rebuild.
    await context.site.put('plugins/s3-leftover/1.0.0/manifest.json', encode('{}'), opts);

    const rebuilt = await rebuildRegistry(context);

    expect(rebuilt.plugins).toBe(2);
    expect(rebuilt.generation).toBe((published.generation ?? 0) + 1);
    const index = JSON.parse(new TextDecoder().decode((await context.site.get('index.json'))?.body));
    expect(JSON.stringify(index)).toContain('s3-one');
    expect(JSON.stringify(index)).toContain('s3-two');
    expect(JSON.stringify(index)).not.toContain('s3-leftover');
    const key = await readPublicKey(registryKey.publicKey);
    for (const name of ['plugins/s3-one/index.json', 'plugins/s3-two/index.json', 'index.json']) {
      const body = (await context.site.get(name))?.body as Uint8Array;
      const signature = new TextDecoder().decode((await context.site.get(`${name}.asc`))?.body);
      await expect(verifyDetachedSignature(body, signature, [key.key]), name).resolves.toMatchObject({
        ok: true,
      });
    }
  });
});

describe('when the pipeline publishes documents over the compression threshold to S3', () => {
  it('puts each index document also as .br and .gz with their Content-Encoding, which S3 serves back', async () => {
    const registryKey = await testKey('registry');
    const site = new S3Store({ client: s3.client, bucket: 'encoded-site' });
    const context: PipelineContext = {
      intake: new S3Store({ client: s3.client, bucket: 'encoded-intake' }),
      site,
      signer: await createSigner(registryKey.secretKey),
      clock: fixedClock('2026-11-01T00:00:00Z', 1000),
      config: parseRegistryConfig({ name: 'S3 Registry', url: 'https://registry.example.com' }),
      compressionThresholdBytes: 100,
    };
    await s3.client.send(
      new PutObjectCommand({ Bucket: 'encoded-intake', Key: 'incoming/a.tgz', Body: await makeBundle() }),
    );
    expect((await processSubmissions(context)).outcomes.map((o) => o.status)).toEqual(['accepted']);

    const snapshot = JSON.parse(
      new TextDecoder().decode((await site.get('snapshot.json'))?.body),
    ) as SnapshotDocument;
    for (const key of INDEX_DOCUMENTS) {
      const document = (await site.get(key))?.body as Uint8Array;
      for (const [suffix, encoding, decode] of [
        ['.br', 'br', brotliDecompressSync],
        ['.gz', 'gzip', gunzipSync],
      ] as const) {
        const Key = `${key}${suffix}`;
        const head = await s3.client.send(new HeadObjectCommand({ Bucket: 'encoded-site', Key }));
        expect(head, Key).toMatchObject({
          ContentEncoding: encoding,
          ContentType: key.endsWith('.json') ? 'application/json' : 'application/yaml',
          CacheControl: CACHE_MUTABLE,
        });
        expect((await site.head(Key))?.contentEncoding).toBe(encoding);
        const got = await s3.client.send(new GetObjectCommand({ Bucket: 'encoded-site', Key }));
        const decoded = decode(
          await (got.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
        );
        expect(Buffer.compare(decoded, document), Key).toBe(0);
        verifyListedDocument(snapshot, key, decoded);
      }
    }
    // A plugin document has them while it is over the threshold (lowered here, so it is), on S3 as locally.
    expect((await site.head('plugins/demo-plugin/index.json.br'))?.contentEncoding).toBe('br');
    expect((await site.head('plugins/demo-plugin/index.json.gz'))?.contentEncoding).toBe('gzip');
  });
});

describe('when the pipeline streams an index document larger than a part to S3', () => {
  /** A catalog of `size` plugins of 10 versions, pending a flush: about 2.8 KB of index.json each. */
  async function pendingCatalog(intake: Store, size: number): Promise<void> {
    const catalog = emptyCatalog();
    for (let i = 0; i < size; i++) {
      const doc = syntheticDocument(i, 'A'.repeat(40));
      catalog.plugins.set(doc.name, catalogLineOf(doc, { sha256: 'e'.repeat(64), size: 1 }, URL_BASE));
    }
    catalog.indexesPending = true;
    await saveCatalog(intake, catalog);
  }

  it('uploads it in parts, and S3 serves back the bytes the buffered rendering makes, signed', async () => {
    const registryKey = await testKey('registry');
    const signer = await createSigner(registryKey.secretKey);
    const config = parseRegistryConfig({ name: 'S3 Registry', url: URL_BASE });
    const client = new S3Client({ ...s3.config });
    const uploads: string[] = [];
    client.middlewareStack.add(
      (next, context) => async (args) => {
        // Its writes (the flush then reads its ETag back, for the order it records: a HeadObject).
        if (
          (args.input as { Key?: string }).Key === 'index.json' &&
          context.commandName !== 'HeadObjectCommand'
        )
          uploads.push(context.commandName as string);
        return next(args);
      },
      { step: 'initialize', name: 'captureIndexUploads' },
    );
    const partSize = 5 * 1024 * 1024;
    const site = new S3Store({ client, bucket: 'parts-site', partSizeBytes: partSize });
    const intake = new S3Store({ client: s3.client, bucket: 'parts-intake' });
    await pendingCatalog(intake, 2000);
    const streamed = { intake, site, signer, clock: fixedClock('2026-11-01T00:00:00Z', 1000), config };
    expect((await flushIndexes({ ...streamed, streamIndexesOverBytes: 0 })).generation).toBe(1);

    // The same catalog rendered into buffers, in memory, at the same clock.
    const memory = { intake: new MemoryStore(), site: new MemoryStore() };
    await pendingCatalog(memory.intake, 2000);
    await flushIndexes({ ...streamed, ...memory, clock: fixedClock('2026-11-01T00:00:00Z', 1000) });
    const expected = memory.site.objects.get('index.json')?.body as Uint8Array;
    expect(expected.byteLength).toBeGreaterThan(partSize);

    expect(uploads[0]).toBe('CreateMultipartUploadCommand');
    expect(uploads.filter((c) => c === 'UploadPartCommand')).toHaveLength(
      Math.ceil(expected.byteLength / partSize),
    );
    expect(uploads.at(-1)).toBe('CompleteMultipartUploadCommand');
    const stored = await site.get('index.json');
    expect(stored?.contentType).toBe('application/json');
    // By digest: a deep equality over megabytes takes seconds.
    expect(sha256(stored?.body as Uint8Array)).toBe(sha256(expected));
    const snapshot = JSON.parse(
      new TextDecoder().decode((await site.get('snapshot.json'))?.body),
    ) as SnapshotDocument;
    verifyListedDocument(snapshot, 'index.json', stored?.body as Uint8Array);
    const signature = new TextDecoder().decode((await site.get('index.json.asc'))?.body);
    const gpg = gpgKeyring(registryKey.publicKey);
    try {
      expect(gpg.verify(stored?.body as Uint8Array, signature)).toMatch(/VALIDSIG/);
    } finally {
      gpg.close();
    }
    const br = (await site.get('index.json.br'))?.body as Uint8Array;
    expect(sha256(brotliDecompressSync(br))).toBe(sha256(expected));
    // Each compressed variant, streamed beside the rendering, records the digest the rendering ended with.
    for (const encoding of CONTENT_ENCODINGS)
      expect((await site.head(encodedVariantKey('index.json', encoding)))?.decodedSha256, encoding).toBe(
        sha256(expected),
      );
    client.destroy();
  });
});

/** A client of the local S3 that records the name of each command it sends (`commands`). */
function recordingClient(): { client: S3Client; commands: string[] } {
  const client = new S3Client({ ...s3.config });
  const commands: string[] = [];
  client.middlewareStack.add(
    (next, context) => async (args) => {
      commands.push(context.commandName as string);
      return next(args);
    },
    { step: 'initialize', name: 'recordCommands' },
  );
  return { client, commands };
}

describe("when S3 stores a compressed variant with its document's digest (decodedSha256)", () => {
  const variant = { ...opts, contentEncoding: 'br', decodedSha256: 'd'.repeat(64) };

  it('records it as x-amz-meta-decoded-sha256, put whole or in parts, and head, get and getStream give it back', async () => {
    const store = new S3Store({
      client: s3.client,
      bucket: 'variants-site',
      multipartThresholdBytes: 5 * 1024 * 1024,
      partSizeBytes: 5 * 1024 * 1024,
    });
    const big = patternBytes(6 * 1024 * 1024);
    for (const [Key, body] of [
      ['whole.json.br', encode('{"x":1}')],
      ['parts.json.br', big],
    ] as const) {
      await store.put(Key, body, variant);
      const raw = await s3.client.send(new HeadObjectCommand({ Bucket: 'variants-site', Key }));
      expect(raw.Metadata, Key).toEqual({ 'decoded-sha256': 'd'.repeat(64) });
      expect(await store.head(Key), Key).toMatchObject({
        contentEncoding: 'br',
        decodedSha256: 'd'.repeat(64),
      });
      expect((await store.get(Key))?.decodedSha256, Key).toBe('d'.repeat(64));
      const stream = await store.getStream(Key);
      stream?.cancel();
      expect(stream?.decodedSha256, Key).toBe('d'.repeat(64));
    }
    // A put without one records none, and a head says none.
    await store.put('plain.json', encode('{}'), opts);
    expect((await store.head('plain.json'))?.decodedSha256).toBeUndefined();
  });

  it('records a digest known only after a streamed body: with its one PUT, or copied over itself once its parts are completed', async () => {
    const { client, commands } = recordingClient();
    const store = new S3Store({ client, bucket: 'variants-site', partSizeBytes: 5 * 1024 * 1024 });
    const { decodedSha256, ...rest } = variant;
    let ended = false;
    async function* body(bytes: Uint8Array) {
      yield* chunksOf(bytes, 1024 * 1024);
      ended = true;
    }
    const afterBody = {
      ...rest,
      decodedSha256AfterBody: async () => {
        // Asked for only once the body has ended, as the streamed rendering gives it then.
        expect(ended).toBe(true);
        return 'e'.repeat(64);
      },
    };

    await store.putStream('small.json.br', body(encode('{"small":true}')), afterBody);
    expect(commands).toEqual(['PutObjectCommand']);
    expect(await store.head('small.json.br')).toMatchObject({ decodedSha256: 'e'.repeat(64) });

    commands.length = 0;
    ended = false;
    const big = patternBytes(6 * 1024 * 1024 + 3);
    await store.putStream('big.json.br', body(big), afterBody);
    expect(commands).toEqual([
      'CreateMultipartUploadCommand',
      'UploadPartCommand',
      'UploadPartCommand',
      'CompleteMultipartUploadCommand',
      'CopyObjectCommand',
    ]);
    // The copy restates what a REPLACE copy would drop, and the bytes are the ones streamed.
    expect(await store.head('big.json.br')).toMatchObject({
      size: big.byteLength,
      contentType: 'application/json',
      cacheControl: opts.cacheControl,
      contentEncoding: 'br',
      decodedSha256: 'e'.repeat(64),
    });
    const back = await store.getStream('big.json.br');
    expect(sha256(await collect((back as NonNullable<typeof back>).body))).toBe(sha256(big));
    client.destroy();
  });

  it('makes nothing visible when the digest after a streamed body fails, in one PUT or in parts', async () => {
    const store = new S3Store({ client: s3.client, bucket: 'variants-site', partSizeBytes: 5 * 1024 * 1024 });
    const failing = {
      ...opts,
      contentEncoding: 'gzip',
      decodedSha256AfterBody: async () => {
        throw new Error('not rendered whole');
      },
    };
    for (const [Key, bytes] of [
      ['failed-small.json.gz', encode('{}')],
      ['failed-big.json.gz', patternBytes(6 * 1024 * 1024)],
    ] as const) {
      await expect(store.putStream(Key, chunksOf(bytes, 1024 * 1024), failing), Key).rejects.toThrow(
        'not rendered whole',
      );
      expect(await store.head(Key), Key).toBeUndefined();
    }
  });

  it('fails the write where the copy recording the digest fails, and the variant completed is read as recording none (unknown, never current)', async () => {
    // Prepare: a client whose CopyObject S3 refuses (a role without the grant, a 412 from a write since).
    const client = new S3Client({ ...s3.config });
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'CopyObjectCommand')
          throw new S3ServiceException({
            name: 'AccessDenied',
            $fault: 'client',
            $metadata: { httpStatusCode: 403 },
            message: 'not authorized to perform s3:PutObject',
          });
        return next(args);
      },
      { step: 'initialize', name: 'refuseCopies' },
    );
    const store = new S3Store({ client, bucket: 'variants-site', partSizeBytes: 5 * 1024 * 1024 });
    const big = patternBytes(6 * 1024 * 1024);

    // Act
    const error = await store
      .putStream('copy-refused.json.br', chunksOf(big, 1024 * 1024), {
        ...opts,
        contentEncoding: 'br',
        decodedSha256AfterBody: async () => 'f'.repeat(64),
      })
      .catch((e: unknown) => e);

    // Assess: the write fails, typed; the object its parts made is there, recording no digest.
    expect(error).toBeInstanceOf(StoreError);
    expect(error).toMatchObject({ code: 'STORE_IO', key: 'copy-refused.json.br' });
    const left = await store.head('copy-refused.json.br');
    expect(left).toMatchObject({ size: big.byteLength, contentEncoding: 'br' });
    expect(left?.decodedSha256).toBeUndefined();
    client.destroy();
  });

  it('refuses a decodedSha256 that is not a SHA-256 in hex, STORE_REFUSED, and writes nothing', async () => {
    const store = new S3Store({ client: s3.client, bucket: 'variants-site' });
    const error = await store
      .put('refused.json.br', encode('{}'), { ...variant, decodedSha256: 'not a digest' })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect(error).toMatchObject({ code: 'STORE_REFUSED' });
    expect(await store.head('refused.json.br')).toBeUndefined();
  });

  it("has a flush rewrite the variants a dead run left once, then keep them as they record the document's digest", async () => {
    const registryKey = await testKey('registry');
    const { client, commands } = recordingClient();
    const site = new S3Store({ client, bucket: 'variants-site' });
    const intake = new S3Store({ client: s3.client, bucket: 'variants-intake' });
    const context: PipelineContext = {
      intake,
      site,
      signer: await createSigner(registryKey.secretKey),
      clock: fixedClock('2026-11-01T00:00:00Z', 1000),
      config: parseRegistryConfig({ name: 'S3 Registry', url: 'https://registry.example.com' }),
    };
    const key = pluginDocumentKey('demo-plugin');
    const submit = async (version: string) => {
      const manifest = validManifest({ name: 'demo-plugin', version });
      await s3.client.send(
        new PutObjectCommand({
          Bucket: 'variants-intake',
          Key: `incoming/${version}.tgz`,
          Body: await makeBundle({ manifest }),
        }),
      );
    };
    await submit('1.0.0');
    expect((await processSubmissions(context)).outcomes.map((o) => o.status)).toEqual(['accepted']);
    const published = (await site.get(key))?.body as Uint8Array;
    // A run that died after writing the grown document's variants, before the document.
    await submit('1.0.1');
    const dies = withMethod(site, 'put', (put) => async (at, body, options) => {
      if (at === key) throw new StoreError('STORE_IO', at, 'the run died here');
      return put(at, body, options);
    });
    const dying = { ...context, site: dies, compressionThresholdBytes: published.byteLength + 1 };
    await expect(processSubmissions(dying)).rejects.toMatchObject({ code: 'STORE_IO' });
    await intake.delete('incoming/1.0.1.tgz');
    expect((await site.head(encodedVariantKey(key, 'br')))?.decodedSha256).not.toBe(sha256(published));

    const over = { ...context, compressionThresholdBytes: published.byteLength - 1 };
    await flushIndexes(over);
    for (const encoding of CONTENT_ENCODINGS)
      expect((await site.head(encodedVariantKey(key, encoding)))?.decodedSha256, encoding).toBe(
        sha256(published),
      );
    // They record the digest of the document they decode to: the next flush reads their heads and writes none.
    commands.length = 0;
    await flushIndexes(over);
    expect(commands.filter((command) => !/^(Head|Get|List)/.test(command))).toEqual([]);
    client.destroy();
  });
});
