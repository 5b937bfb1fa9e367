/**
 * Key rotation through the publish function, on a real S3 protocol server (s3rver on 127.0.0.1): the
 * rotation uploaded under rotations/, the queue's `rotate-key` message, the outcome recorded under status/,
 * and `plugindex rotate-key --bucket` doing all of it and waiting for that outcome. Secrets Manager, SQS and
 * CloudFront cannot run here: aws-sdk-client-mock (named SDK mocks) stands in for them, the secret's value
 * changed by the test as an operator changes it.
 */

import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CloudFrontClient, CreateInvalidationCommand } from '@aws-sdk/client-cloudfront';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { REFRESH_REQUEST, rotationMessage } from '../../adapters/publish-queue.ts';
import { S3Store } from '../../adapters/s3-store.ts';
import type { FunctionConfig } from '../../functions/env.ts';
import { createPublishHandler, type HandlerDeps } from '../../functions/handlers.ts';
import { cachedSigner } from '../../functions/secrets.ts';
import type { SnapshotDocument } from '../../index-builder/model.ts';
import {
  type RotationOutcome,
  rotationOutcomeKey,
  rotationUploadKey,
} from '../../index-builder/pipeline/rotate.ts';
import { readSignedRotation, rotationKey, signRotation } from '../../index-builder/rotation.ts';
import {
  createSigner,
  generateKeyPair,
  type KeyPair,
  readPublicKey,
  type Signer,
} from '../../index-builder/signing.ts';
import { openSignedSnapshot, verifySnapshot } from '../../index-builder/verify.ts';
import { plugindex } from '../support/cli.ts';
import { makeBundle, testKey, validManifest } from '../support/fixtures.ts';
import { functionConfig, type LocalS3, objectCreatedRecord, startLocalS3 } from '../support/s3.ts';

const secrets = mockClient(SecretsManagerClient);
const cloudfront = mockClient(CloudFrontClient);
const sqs = mockClient(SQSClient);
let s3: LocalS3;
let config: FunctionConfig;
let keys: Record<'a' | 'b' | 'c', KeyPair>;
let signers: Record<'a' | 'b' | 'c', Signer>;
const logs: Record<string, unknown>[] = [];
let work: string;

/** What the signing key secret holds now (the mock answers with it): a key, and the passphrase that opens it. */
function secretHolds(pair: KeyPair, passphrase?: string): void {
  secrets.on(GetSecretValueCommand).resolves({
    SecretString: JSON.stringify({ armoredKey: pair.secretKey, ...(passphrase ? { passphrase } : {}) }),
  });
}

/** The publish function as one warm container runs it: its own secret cache. */
function container(): HandlerDeps {
  return {
    config,
    s3: s3.client,
    cloudfront: new CloudFrontClient({ region: 'us-east-1' }),
    signer: cachedSigner(new SecretsManagerClient({ region: 'us-east-1' }), config.signingKeySecretId),
    logger: {
      info: (message, fields) => logs.push({ level: 'INFO', message, ...fields }),
      warn: (message, fields) => logs.push({ level: 'WARN', message, ...fields }),
      error: (message, fields) => logs.push({ level: 'ERROR', message, ...fields }),
    },
  };
}

const intake = () => new S3Store({ client: s3.client, bucket: config.intakeBucket });
const site = () => new S3Store({ client: s3.client, bucket: config.siteBucket });

async function published(): Promise<SnapshotDocument> {
  const object = await site().get('snapshot.signed.json');
  return JSON.parse(new TextDecoder().decode(openSignedSnapshot(object?.body as Uint8Array).snapshot));
}

/** Verifies what clients read against `signer`'s key. */
async function verifiesBy(signer: Signer): Promise<SnapshotDocument> {
  const signed = openSignedSnapshot((await site().get('snapshot.signed.json'))?.body as Uint8Array);
  return verifySnapshot({ ...signed, key: (await readPublicKey(signer.publicKey)).key, now: new Date() });
}

async function uploadRotation(from: Signer, to: Signer, sequence: number): Promise<string> {
  const { bytes } = await signRotation({
    registry: config.defaults.url as string,
    sequence,
    previous: from,
    next: to,
    now: new Date(),
  });
  const key = rotationUploadKey(bytes);
  await intake().put(key, bytes, { contentType: 'application/json', cacheControl: 'no-store' });
  return key;
}

async function outcomeOf(key: string): Promise<RotationOutcome | undefined> {
  const object = await intake().get(rotationOutcomeKey(key));
  return object ? (JSON.parse(new TextDecoder().decode(object.body)) as RotationOutcome) : undefined;
}

const rotationRequest = (key: string) => ({
  Records: [{ messageId: 'r-1', eventSource: 'aws:sqs', body: rotationMessage(key).body }],
});

let uploads = 0;
async function uploadBundle(version: string): Promise<{ Records: unknown[] }> {
  uploads += 1;
  const key = `incoming/u${uploads}.tgz`;
  await s3.client.send(
    new PutObjectCommand({
      Bucket: config.intakeBucket,
      Key: key,
      Body: await makeBundle({ manifest: validManifest({ name: 'cloud-plugin', version }) }),
    }),
  );
  return { Records: [objectCreatedRecord(config.intakeBucket, key)] };
}

function mockInvalidations(): void {
  cloudfront.reset();
  cloudfront.on(CreateInvalidationCommand).resolves({ Invalidation: { Id: 'I1' } as never });
}

beforeAll(async () => {
  mockInvalidations();
  s3 = await startLocalS3(['rot-intake', 'rot-site']);
  work = await mkdtemp(path.join(tmpdir(), 'plugindex-fn-rotation-'));
  config = functionConfig('rot-intake', 'rot-site', {
    // The site bucket as s3rver serves it over HTTP: where `rotate-key --bucket` reads the snapshot.
    defaults: { name: 'Rotating Cloud', url: `${s3.endpoint}/rot-site` },
  });
  keys = { a: await testKey('fn-a'), b: await testKey('fn-b'), c: await testKey('fn-c') };
  signers = {
    a: await createSigner(keys.a.secretKey),
    b: await createSigner(keys.b.secretKey),
    c: await createSigner(keys.c.secretKey),
  };
  secretHolds(keys.a);
  await createPublishHandler(container())(await uploadBundle('1.0.0'));
  await verifiesBy(signers.a);
});
afterAll(async () => {
  await s3?.close();
  await rm(work, { recursive: true, force: true });
});
beforeEach(() => {
  mockInvalidations();
  logs.length = 0;
});

describe('when the queue carries a key rotation', () => {
  // One warm container across the tests: its cached key is the one from before each rotation.
  let warm: HandlerDeps;

  it('refuses it clearly while the secret still holds the old key, and signs on with that key', async () => {
    warm = container();
    await createPublishHandler(warm)(await uploadBundle('1.1.0')); // caches key a
    const key = await uploadRotation(signers.a, signers.b, 1);
    await createPublishHandler(warm)(rotationRequest(key));
    expect(await outcomeOf(key)).toMatchObject({
      status: 'rejected',
      problems: [{ code: 'ROTATION_NOT_SIGNING_KEY', path: '/rotation/next/fingerprint' }],
    });
    expect(await verifiesBy(signers.a)).toMatchObject({ key_fingerprint: signers.a.fingerprint });
    expect(await site().get('keys/rotation/1.json')).toBeUndefined();
  });

  it('publishes it once the secret holds the new key, past the cache of a warm container', async () => {
    secretHolds(keys.b);
    const key = await uploadRotation(signers.a, signers.b, 1);
    await createPublishHandler(warm)(rotationRequest(key));
    expect(await outcomeOf(key)).toMatchObject({
      status: 'rotated',
      sequence: 1,
      previous: signers.a.fingerprint,
      fingerprint: signers.b.fingerprint,
      problems: [],
    });
    expect(await verifiesBy(signers.b)).toMatchObject({ key_rotations: 1 });
    expect(await site().get('keys/rotation/1.json')).toBeDefined();
    const paths =
      cloudfront.commandCalls(CreateInvalidationCommand)[0]?.args[0].input.InvalidationBatch?.Paths?.Items ??
      [];
    expect(paths).toEqual(
      expect.arrayContaining([
        '/keys/rotation/1.json',
        '/keys/registry.asc',
        '/snapshot.json',
        '/plugins/cloud-plugin/1.0.0/manifest.json.asc',
      ]),
    );
    // Redelivered: nothing to do, and it says so.
    await createPublishHandler(warm)(rotationRequest(key));
    expect(await outcomeOf(key)).toMatchObject({ status: 'already-rotated', sequence: 1 });
  });

  it('never signs with a key the registry does not publish: another container re-reads a stale cache', async () => {
    const stale = container();
    secretHolds(keys.a);
    await stale.signer(); // this container cached key a before the rotation
    secretHolds(keys.b);
    await createPublishHandler(stale)(await uploadBundle('1.2.0'));
    expect(await verifiesBy(signers.b)).toMatchObject({ key_fingerprint: signers.b.fingerprint });
  });

  it('fails, signing nothing, when the secret holds a key no published rotation leads to', async () => {
    secretHolds(keys.c);
    const before = await published();
    const doorbell = await uploadBundle('1.3.0');
    await expect(createPublishHandler(container())(doorbell)).rejects.toMatchObject({
      code: 'SIGNING_KEY_NOT_PUBLISHED',
    });
    const refresh = {
      Records: [{ messageId: 'f-1', eventSource: 'aws:sqs', body: JSON.stringify(REFRESH_REQUEST) }],
    };
    await expect(createPublishHandler(container())(refresh)).rejects.toMatchObject({
      name: 'AwsAdapterError',
      code: 'SIGNING_KEY_NOT_PUBLISHED',
    });
    expect(await published()).toEqual(before);
  });

  it('publishes a rotation uploaded whose request is still queued, then what waits', async () => {
    // The secret holds key c (above), and upload 1.3.0 waits: the rotation to c arrives under rotations/.
    const key = await uploadRotation(signers.b, signers.c, 2);
    const doorbell = await uploadBundle('1.4.0');
    const client = new S3Client({ ...s3.config });
    const reads: string[] = [];
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const { Bucket, Key } = args.input as { Bucket?: string; Key?: string };
        if (context.commandName === 'GetObjectCommand' && Bucket === config.siteBucket)
          reads.push(Key as string);
        return next(args);
      },
      { step: 'initialize', name: 'countReads' },
    );
    const result = await createPublishHandler({ ...container(), s3: client })(doorbell);
    client.destroy();
    expect(result.outcomes.map((o) => o.status)).toEqual(['accepted', 'accepted']);
    // The plugin document read once by the rotation's check, once by the rebuild that re-signs it, once by
    // the batch that publishes 1.4.0: the rotation found waiting was checked in full to be found, and again
    // to be published, a fourth read (every plugin document's, at any size of registry).
    expect(reads.filter((k) => k === 'plugins/cloud-plugin/index.json')).toHaveLength(3);
    expect(await outcomeOf(key)).toMatchObject({ status: 'rotated', sequence: 2 });
    expect(await verifiesBy(signers.c)).toMatchObject({ key_rotations: 2 });
    // Its request, when it comes, finds it done.
    await createPublishHandler(container())(rotationRequest(key));
    expect(await outcomeOf(key)).toMatchObject({ status: 'already-rotated' });
  });

  it('refuses a request naming a key the store cannot write an outcome for, and publishes what waits', async () => {
    // A queue message may name any key; these made the handler throw (STORE_INVALID_KEY), so SQS brought
    // the request back five times, each after the visibility timeout, and held the message group meanwhile.
    for (const key of [
      'rotations/by hand.json',
      'rotations/a+b.json',
      `rotations/${'x'.repeat(1100)}.json`,
    ]) {
      const doorbell = await uploadBundle(`1.5.${uploads}`);
      const result = await createPublishHandler(container())({
        Records: [...rotationRequest(key).Records, ...doorbell.Records],
      });
      expect(result.outcomes.map((o) => o.status)).toEqual(['accepted']);
      expect(await outcomeOf(key)).toMatchObject({
        rotation: key,
        status: 'rejected',
        problems: [{ code: 'ROTATION_INVALID' }],
      });
    }
    expect(rotationOutcomeKey('rotations/by hand.json')).toMatch(/^status\/rotation-[0-9a-f]{64}\.json$/);
  });
});

describe('when an operator runs plugindex rotate-key --bucket', () => {
  /** The queue delivers to one container of the publish function at once. */
  function deliverToFunction(): void {
    const fn = createPublishHandler(container());
    sqs.reset();
    sqs.on(SendMessageCommand).callsFake(async (input: { MessageBody: string }) => {
      await fn({ Records: [{ messageId: 'q-1', eventSource: 'aws:sqs', body: input.MessageBody }] });
      return { MessageId: 'q-1' };
    });
  }

  /** The options that name the deployed registry's upload bucket and queue, on s3rver. */
  const bucketArgs = (): string[] => [
    '--bucket',
    config.intakeBucket,
    '--queue-url',
    'https://sqs.us-east-1.amazonaws.com/123456789012/Submissions.fifo',
    '--endpoint',
    s3.endpoint,
  ];

  /** `plugindex rotate-key --bucket` from the key in file `from` to the one in `to`. */
  const rotate = (from: string, to: string, ...more: string[]) =>
    plugindex(
      'rotate-key',
      ...bucketArgs(),
      '--url',
      config.defaults.url as string,
      '--old-key',
      from,
      '--new-key',
      to,
      ...more,
    );

  /** Each text in a file of the work folder, `<name>.asc`; the files by name. */
  async function writeFiles<Name extends string>(texts: Record<Name, string>): Promise<Record<Name, string>> {
    const files = {} as Record<Name, string>;
    for (const [name, text] of Object.entries(texts) as [Name, string][]) {
      files[name] = path.join(work, `${name}.asc`);
      await writeFile(files[name], text);
    }
    return files;
  }

  it('uploads the rotation under rotations/, queues its request and reports the outcome', async () => {
    process.env.AWS_REGION ??= 'us-east-1';
    process.env.AWS_ACCESS_KEY_ID ??= 'S3RVER';
    process.env.AWS_SECRET_ACCESS_KEY ??= 'S3RVER';
    const d = await testKey('fn-d');
    const files = await writeFiles({ c: keys.c.secretKey, d: d.secretKey });
    // The operator has put key d into the secret; the queue delivers to the function at once.
    secretHolds(d);
    deliverToFunction();
    const run = await rotate(files.c, files.d);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(`published rotation 3: key ${signers.c.fingerprint} -> ${d.fingerprint}`);
    const sent = sqs.commandCalls(SendMessageCommand)[0]?.args[0].input;
    expect(JSON.parse(sent?.MessageBody as string)).toMatchObject({
      plugindex: 'rotate-key',
      key: expect.stringMatching(/^rotations\/[0-9a-f]{64}\.json$/),
    });
    expect(sent?.MessageGroupId).toBe('publish');
    expect(await published()).toMatchObject({ key_fingerprint: d.fingerprint, key_rotations: 3 });

    // The same keys again: the registry no longer signs with the old one. Nothing is uploaded or sent.
    sqs.resetHistory();
    const again = await rotate(files.c, files.d);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('ROTATION_NOT_CURRENT_KEY');
    expect(sqs.commandCalls(SendMessageCommand)).toHaveLength(0);
    const same = await plugindex('rotate-key', ...bucketArgs(), '--old-key', files.d, '--new-key', files.d);
    expect(same.code).toBe(1);
    expect(same.stderr).toContain('ROTATION_INVALID');
  });

  it('decrypts the new key with its own passphrase (--new-passphrase-file), the old one with PLUGINDEX_KEY_PASSPHRASE', async () => {
    // Prepare: the registry signs with key d (the rotation above). After a compromise the operator makes key
    // e under a new passphrase, then f under another, and puts each into the secret with its passphrase.
    const d = await testKey('fn-d');
    const e = await generateKeyPair({ name: 'fn e', passphrase: 'first passphrase' });
    const f = await generateKeyPair({ name: 'fn f', passphrase: 'second passphrase' });
    const files = await writeFiles({
      d: d.secretKey,
      e: e.secretKey,
      f: f.secretKey,
      'e.pass': 'first passphrase\n',
      'f.pass': 'second passphrase',
      'wrong.pass': 'first passphrase',
      'empty.pass': '\n',
    });
    const passphrase = process.env.PLUGINDEX_KEY_PASSPHRASE;
    try {
      // Act: d (no passphrase) to e (its own).
      delete process.env.PLUGINDEX_KEY_PASSPHRASE;
      secretHolds(e, 'first passphrase');
      deliverToFunction();
      const first = await rotate(files.d, files.e, '--new-passphrase-file', files['e.pass']);
      // Assess
      expect(first.code, first.stderr).toBe(0);
      expect(first.stdout).toContain(`published rotation 4: key ${d.fingerprint} -> ${e.fingerprint}`);
      expect(await published()).toMatchObject({ key_fingerprint: e.fingerprint, key_rotations: 4 });

      // Act: e, opened by PLUGINDEX_KEY_PASSPHRASE, to f under a passphrase e's never opens. A wrong or an empty
      // new passphrase first: refused before anything is uploaded or sent, the failure naming the new key.
      process.env.PLUGINDEX_KEY_PASSPHRASE = 'first passphrase';
      secretHolds(f, 'second passphrase');
      deliverToFunction();
      const wrong = await rotate(files.e, files.f, '--new-passphrase-file', files['wrong.pass']);
      expect(wrong.code).toBe(1);
      expect(wrong.stderr).toContain('KEY_PASSPHRASE');
      expect(wrong.stderr).toContain('the new key');
      const empty = await rotate(files.e, files.f, '--new-passphrase-file', files['empty.pass']);
      expect(empty.code).toBe(2);
      expect(empty.stderr).toContain('is empty');
      const without = await rotate(files.e, files.f);
      expect(without.code).toBe(1);
      expect(without.stderr).toContain('KEY_PASSPHRASE');
      expect(sqs.commandCalls(SendMessageCommand)).toHaveLength(0);
      const second = await rotate(files.e, files.f, '--new-passphrase-file', files['f.pass']);

      // Assess: the function opened f with the secret's passphrase and signs with it.
      expect(second.code, second.stderr).toBe(0);
      expect(second.stdout).toContain(`published rotation 5: key ${e.fingerprint} -> ${f.fingerprint}`);
      expect(await published()).toMatchObject({ key_fingerprint: f.fingerprint, key_rotations: 5 });
      await verifiesBy(await createSigner(f.secretKey, 'second passphrase'));
    } finally {
      if (passphrase === undefined) delete process.env.PLUGINDEX_KEY_PASSPHRASE;
      else process.env.PLUGINDEX_KEY_PASSPHRASE = passphrase;
    }
  });

  it('carries --compromised into the signed rotation it uploads: the function publishes the mark and reports it', async () => {
    // Prepare: the registry signs with key f (the rotation above); g is made after f was stolen.
    const f = await readFile(path.join(work, 'f.asc'), 'utf8');
    const g = await generateKeyPair({ name: 'fn g', passphrase: 'third passphrase' });
    const files = {
      f: path.join(work, 'f.asc'),
      g: path.join(work, 'g.asc'),
      pass: path.join(work, 'g.pass'),
    };
    await writeFile(files.g, g.secretKey);
    await writeFile(files.pass, 'third passphrase');
    const queueUrl = 'https://sqs.us-east-1.amazonaws.com/123456789012/Submissions.fifo';
    const passphrase = process.env.PLUGINDEX_KEY_PASSPHRASE;
    try {
      process.env.PLUGINDEX_KEY_PASSPHRASE = 'second passphrase';
      secretHolds(g, 'third passphrase');
      deliverToFunction();

      // Act
      const run = await plugindex(
        'rotate-key',
        '--bucket',
        config.intakeBucket,
        '--queue-url',
        queueUrl,
        '--endpoint',
        s3.endpoint,
        '--url',
        config.defaults.url as string,
        '--old-key',
        files.f,
        '--new-key',
        files.g,
        '--new-passphrase-file',
        files.pass,
        '--compromised',
      );

      // Assess: uploaded marked, published as uploaded, the outcome and the command say so.
      expect(run.code, run.stderr).toBe(0);
      const oldFingerprint = (await createSigner(f, 'second passphrase')).fingerprint;
      expect(run.stdout).toContain(`published rotation 6: key ${oldFingerprint} -> ${g.fingerprint}`);
      expect(run.stdout).toContain(
        `marked compromised: clients that follow rotation 6 no longer trust key ${oldFingerprint}`,
      );
      const sent = JSON.parse(sqs.commandCalls(SendMessageCommand)[0]?.args[0].input.MessageBody as string);
      const uploaded = (await intake().get(sent.key))?.body as Uint8Array;
      const publishedRotation = (await site().get(rotationKey(6)))?.body as Uint8Array;
      expect(publishedRotation).toEqual(uploaded);
      expect(readSignedRotation(publishedRotation).rotation).toMatchObject({
        sequence: 6,
        compromised: true,
      });
      expect(await outcomeOf(sent.key)).toMatchObject({ status: 'rotated', sequence: 6, compromised: true });
      expect(await published()).toMatchObject({ key_fingerprint: g.fingerprint, key_rotations: 6 });
    } finally {
      if (passphrase === undefined) delete process.env.PLUGINDEX_KEY_PASSPHRASE;
      else process.env.PLUGINDEX_KEY_PASSPHRASE = passphrase;
    }
  });

  it('refuses --compromised up front while a rotation of that number waits unmarked, or is published', async () => {
    // Prepare: the registry signs with key g (the rotation above). The operator uploaded rotation 7 to h
    // without the mark (its request not yet handled), then learnt that g was stolen.
    const g = await createSigner(await readFile(path.join(work, 'g.asc'), 'utf8'), 'third passphrase');
    const h = await generateKeyPair({ name: 'fn h', passphrase: 'third passphrase' });
    const files = { g: path.join(work, 'g.asc'), h: path.join(work, 'h.asc') };
    await writeFile(files.h, h.secretKey);
    const unmarked = await uploadRotation(g, await createSigner(h.secretKey, 'third passphrase'), 7);
    const uploaded = async () => {
      const keys: string[] = [];
      for await (const info of intake().list('rotations/')) keys.push(info.key);
      return keys.sort();
    };
    const before = await uploaded();
    const passphrase = process.env.PLUGINDEX_KEY_PASSPHRASE;
    try {
      process.env.PLUGINDEX_KEY_PASSPHRASE = 'third passphrase';
      secretHolds(h, 'third passphrase');
      deliverToFunction();

      // Act
      const run = await rotate(files.g, files.h, '--compromised');

      // Assess: before, a marked rotation 7 was signed, uploaded and sent, and the function published the
      // unmarked one and refused it, the operator learning only from that refusal.
      expect(run.code).toBe(1);
      expect(run.stderr).toContain('ROTATION_INVALID');
      expect(run.stderr).toContain(unmarked);
      expect(sqs.commandCalls(SendMessageCommand)).toHaveLength(0);
      expect(await uploaded()).toEqual(before);
      expect(await published()).toMatchObject({ key_fingerprint: g.fingerprint, key_rotations: 6 });

      // Published (the function stopped before the snapshot counted it): refused up front, marked or not.
      const bytes = (await intake().get(unmarked))?.body as Uint8Array;
      await intake().delete(unmarked);
      await site().put(rotationKey(7), bytes, {
        contentType: 'application/json',
        cacheControl: 'no-store',
      });
      try {
        const again = await rotate(files.g, files.h, '--compromised');
        expect(again.code).toBe(1);
        expect(again.stderr).toContain('ROTATION_INVALID');
        expect(again.stderr).toContain(rotationKey(7));
        expect(sqs.commandCalls(SendMessageCommand)).toHaveLength(0);
      } finally {
        await site().delete(rotationKey(7));
      }
    } finally {
      if (passphrase === undefined) delete process.env.PLUGINDEX_KEY_PASSPHRASE;
      else process.env.PLUGINDEX_KEY_PASSPHRASE = passphrase;
    }
  });

  it('prints the failure as JSON when no outcome comes in time (--json): OUTCOME_TIMEOUT naming where to read it, exit 1', async () => {
    // Prepare: the registry signs with key g (the rotations above). The queue takes the request, but no
    // function runs on it in the time given, so the outcome never comes.
    const h = await generateKeyPair({ name: 'fn h', passphrase: 'third passphrase' });
    const files = { g: path.join(work, 'g.asc'), h: path.join(work, 'h-late.asc') };
    await writeFile(files.h, h.secretKey);
    sqs.reset();
    sqs.on(SendMessageCommand).resolves({ MessageId: 'q-late' });
    const passphrase = process.env.PLUGINDEX_KEY_PASSPHRASE;
    try {
      process.env.PLUGINDEX_KEY_PASSPHRASE = 'third passphrase';

      // Act
      const run = await rotate(files.g, files.h, '--timeout', '0', '--json');

      // Assess: the raw result without an outcome was printed; now the failure every --json command prints.
      expect(run.code, run.stderr).toBe(1);
      const failure = JSON.parse(run.stdout) as {
        ok: boolean;
        error: { code: string; bucket: string; upload_key: string; status_keys: string[]; sequence: number };
      };
      expect(failure.ok).toBe(false);
      expect(failure.error).toMatchObject({
        code: 'OUTCOME_TIMEOUT',
        bucket: config.intakeBucket,
        upload_key: expect.stringMatching(/^rotations\/[0-9a-f]{64}\.json$/),
        sequence: 7,
      });
      expect(failure.error.status_keys).toEqual([rotationOutcomeKey(failure.error.upload_key)]);
      expect(run.stderr).toContain('OUTCOME_TIMEOUT');
      expect(await published()).toMatchObject({ key_rotations: 6 });
      // The rotation waits for the function, as the queue would deliver it: taken away for the tests after.
      await intake().delete(failure.error.upload_key);
    } finally {
      if (passphrase === undefined) delete process.env.PLUGINDEX_KEY_PASSPHRASE;
      else process.env.PLUGINDEX_KEY_PASSPHRASE = passphrase;
    }
  });

  it('refuses --new-passphrase-file for a local registry (exit 2): its key file opens with PLUGINDEX_KEY_PASSPHRASE alone', async () => {
    const run = await plugindex(
      'rotate-key',
      '--registry',
      work,
      '--new-key',
      path.join(work, 'f.asc'),
      '--new-passphrase-file',
      path.join(work, 'f.pass.asc'),
    );
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--new-passphrase-file is for --bucket');
  });
});
