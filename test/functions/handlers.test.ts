/**
 * The publish and refresh functions end to end on a real S3 protocol server (s3rver on 127.0.0.1), with
 * realistic SQS/EventBridge payloads. Secrets Manager and CloudFront cannot run here: aws-sdk-client-mock
 * (named SDK mocks) stands in for them.
 */
import { createHash } from 'node:crypto';
import { CloudFrontClient, CreateInvalidationCommand } from '@aws-sdk/client-cloudfront';
import { DeleteObjectCommand, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ChangeMessageVisibilityBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { REFRESH_REQUEST } from '../../adapters/publish-queue.ts';
import { S3Store } from '../../adapters/s3-store.ts';
import { CHECKED_KEYS_KEY } from '../../functions/checked-keys.ts';
import {
  createPublishHandler,
  type HandlerDeps,
  MAX_PUBLISH_RESPONSE_BYTES,
  publishResponse,
} from '../../functions/handlers.ts';
import { CONFIG_REFUSED_LOG, LOGGED_ENTRY_STUCK_LOG } from '../../functions/logger.ts';
import { cachedSigner } from '../../functions/secrets.ts';
import { systemClock } from '../../index-builder/clock.ts';
import { parseRegistryConfig } from '../../index-builder/config.ts';
import { ConfigError, KeyError } from '../../index-builder/errors.ts';
import type { SnapshotDocument } from '../../index-builder/model.ts';
import {
  type BatchResult,
  processSubmissions,
  type SubmissionOutcome,
} from '../../index-builder/pipeline/index.ts';
import { LogWriter } from '../../index-builder/pipeline/log-writer.ts';
import { createSigner, readPublicKey } from '../../index-builder/signing.ts';
import { listAll } from '../../index-builder/store.ts';
import { configuredKeyDigest } from '../../index-builder/trust.ts';
import { openSignedSnapshot, verifySnapshot } from '../../index-builder/verify.ts';
import { INVALIDATION_FAILED_LOG } from '../../infra/constructs/alarms.ts';
import { signedAction } from '../support/actions.ts';
import { encode, KEYS_CREATED, makeBundle, testKey, validManifest } from '../support/fixtures.ts';
import { functionConfig, type LocalS3, objectCreatedRecord, startLocalS3 } from '../support/s3.ts';
import { SMALL_ORDER_POINTS, smallOrderKey } from '../support/small-order-key.ts';
import { UNTRUSTED_KEYS } from '../support/untrusted-keys.ts';

const secrets = mockClient(SecretsManagerClient);
const cloudfront = mockClient(CloudFrontClient);
/** SQS cannot run here either: a named SDK mock, recording the visibility changes the function asks for. */
const sqsMock = mockClient(SQSClient);
let s3: LocalS3;
let deps: HandlerDeps;
const logs: Record<string, unknown>[] = [];

const config = functionConfig('fn-intake', 'fn-site');

/** The schedule's refresh, as the queue delivers what the rule sends (infra/constructs/publishing.ts). */
const refreshEvent = {
  Records: [
    {
      messageId: 'refresh-1',
      eventSource: 'aws:sqs',
      body: JSON.stringify({ ...REFRESH_REQUEST, at: '2026-12-05T18:00:00Z' }),
    },
  ],
};

const sqsEvent = (...keys: string[]) => ({
  Records: keys.map((key, i) => objectCreatedRecord(config.intakeBucket, key, `m-${i}`)),
});

async function upload(key: string, body: Uint8Array): Promise<void> {
  await s3.client.send(new PutObjectCommand({ Bucket: config.intakeBucket, Key: key, Body: body }));
}

beforeAll(async () => {
  s3 = await startLocalS3([
    config.intakeBucket,
    config.siteBucket,
    'fn-intake-bare',
    'fn-site-bare',
    'fn-intake-broken',
    'fn-site-broken',
    'fn-intake-warm',
    'fn-site-warm',
    'fn-intake-pinned',
    'fn-site-pinned',
    'fn-intake-ttl',
    'fn-site-ttl',
    'fn-intake-weak',
    'fn-site-weak',
    'fn-intake-weak-refresh',
    'fn-site-weak-refresh',
    'fn-intake-weak-mixed',
    'fn-site-weak-mixed',
    'fn-intake-ttl-refresh',
    'fn-site-ttl-refresh',
    'fn-intake-weak-signer',
    'fn-site-weak-signer',
    'fn-intake-checked',
    'fn-site-checked',
    'fn-intake-unread-json',
    'fn-site-unread-json',
    'fn-intake-unread-field',
    'fn-site-unread-field',
    'fn-intake-unread-empty',
    'fn-site-unread-empty',
    'fn-intake-unread-stuck',
    'fn-site-unread-stuck',
    'fn-intake-unread-stuck-yank',
    'fn-site-unread-stuck-yank',
    'fn-intake-revoke',
    'fn-site-revoke',
    'fn-intake-upgrade-stuck',
    'fn-site-upgrade-stuck',
  ]);
  const registryKey = await testKey('registry');
  secrets
    .on(GetSecretValueCommand)
    .resolves({ SecretString: JSON.stringify({ armoredKey: registryKey.secretKey }) });
  deps = {
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
  await upload(
    config.configKey,
    encode(JSON.stringify({ name: 'Cloud Registry', url: 'https://plugins.example.com' })),
  );
});

afterAll(async () => {
  await s3?.close();
});

beforeEach(() => {
  cloudfront.reset();
  cloudfront.on(CreateInvalidationCommand).resolves({
    Invalidation: { Id: 'I1', Status: 'InProgress', CreateTime: new Date(), InvalidationBatch: undefined },
  });
});

describe('when no config object has been uploaded yet', () => {
  it('uses the registry defaults from the deployment, and says what is missing without them', async () => {
    const bare = {
      ...config,
      intakeBucket: 'fn-intake-bare',
      siteBucket: 'fn-site-bare',
      distributionId: undefined,
    };
    const quiet = { info: () => {}, warn: () => {}, error: () => {} };
    await s3.client.send(
      new PutObjectCommand({
        Bucket: bare.intakeBucket,
        Key: 'incoming/x.tgz',
        Body: await makeBundle({ manifest: validManifest({ name: 'bare-plugin' }) }),
      }),
    );
    await expect(
      createPublishHandler({ ...deps, logger: quiet, config: { ...bare, defaults: {} } })({}),
    ).rejects.toMatchObject({ code: 'ENV_INVALID' });
    const result = await createPublishHandler({
      ...deps,
      logger: quiet,
      config: { ...bare, defaults: { name: 'Bare', url: 'https://bare.example.com' } },
    })({});
    expect(result.outcomes.map((o) => o.status)).toEqual(['accepted']);
    const index = JSON.parse(
      new TextDecoder().decode(
        (await new S3Store({ client: s3.client, bucket: bare.siteBucket }).get('index.json'))?.body,
      ),
    );
    expect(index.registry_metadata).toMatchObject({ name: 'Bare', url: 'https://bare.example.com' });
  });
});

describe('when the config object in the bucket is not JSON', () => {
  const broken = { ...config, intakeBucket: 'fn-intake-broken', siteBucket: 'fn-site-broken' };
  const failures: Record<string, unknown>[] = [];
  const capturing = {
    info: () => {},
    warn: () => {},
    error: (message: string, fields?: Record<string, unknown>) => failures.push({ message, ...fields }),
  };

  beforeAll(async () => {
    await s3.client.send(
      new PutObjectCommand({ Bucket: broken.intakeBucket, Key: broken.configKey, Body: encode('{"name": ') }),
    );
  });

  beforeEach(() => {
    failures.length = 0;
  });

  it('fails with a config error that names the object', async () => {
    const publish = createPublishHandler({ ...deps, logger: capturing, config: broken });

    await expect(publish({})).rejects.toThrow(ConfigError);
    await expect(publish({})).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringContaining('s3://fn-intake-broken/config/plugindex.json is not JSON'),
      cause: expect.any(SyntaxError),
    });
  });

  it('logs the failure with its code and cause at the edge of the function, then rethrows it', async () => {
    const publish = createPublishHandler({ ...deps, logger: capturing, config: broken });

    // A direct invocation: the schedule's refresh goes on under such a config (below, when it cannot be read).
    await expect(publish({})).rejects.toThrow(ConfigError);

    const described = {
      name: 'ConfigError',
      code: 'CONFIG_INVALID',
      message: expect.stringContaining('is not JSON'),
      stack: expect.stringContaining('ConfigError'),
      cause: { name: 'SyntaxError', message: expect.any(String), stack: expect.any(String) },
    };
    expect(failures).toEqual([{ message: 'publish failed', error: described }]);
  });
});

/**
 * A registry of its own (buckets `fn-intake-<suffix>`, `fn-site-<suffix>`) under a schedule of six hours, and
 * a way to put its config object with a snapshot lifetime.
 */
function ttlRegistry(suffix: string) {
  const short = {
    ...config,
    intakeBucket: `fn-intake-${suffix}`,
    siteBucket: `fn-site-${suffix}`,
    distributionId: undefined,
    snapshotRefreshSeconds: 21600,
  };
  const putConfig = (snapshotTtlSeconds: number) =>
    s3.client.send(
      new PutObjectCommand({
        Bucket: short.intakeBucket,
        Key: short.configKey,
        Body: encode(
          JSON.stringify({ name: 'TTL Registry', url: 'https://plugins.example.com', snapshotTtlSeconds }),
        ),
      }),
    );
  const intake = new S3Store({ client: s3.client, bucket: short.intakeBucket });
  const site = new S3Store({ client: s3.client, bucket: short.siteBucket });
  return { short, putConfig, intake, site };
}

describe('when the config object sets a snapshot lifetime shorter than two refreshes of the schedule', () => {
  it('refuses every invocation that judges anything, naming the field, the value and the least, and leaves the uploads for the retry', async () => {
    // The schedule re-signs the snapshot every 6 hours: a lifetime of one hour left it expired to every
    // client five hours in six, and the function, which did not know the schedule, signed it so.
    const { short, putConfig, intake, site } = ttlRegistry('ttl');
    await putConfig(3600);
    await s3.client.send(
      new PutObjectCommand({
        Bucket: short.intakeBucket,
        Key: 'incoming/waits.tgz',
        Body: await makeBundle({ manifest: validManifest({ name: 'ttl-plugin' }) }),
      }),
    );
    const quiet = { info: () => {}, warn: () => {}, error: () => {} };
    const publish = createPublishHandler({ ...deps, logger: quiet, config: short });
    // A publish, a rebuild, and a direct invocation alike (a refresh in the batch goes on: below): nothing is
    // signed with that lifetime.
    const rebuildEvent = {
      Records: [{ messageId: 'r', eventSource: 'aws:sqs', body: '{"plugindex":"rebuild"}' }],
    };
    for (const event of [sqsEvent('incoming/waits.tgz'), rebuildEvent, {}]) {
      const error = await publish(event).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConfigError);
      expect(error).toMatchObject({
        code: 'CONFIG_INVALID',
        message: expect.stringMatching(
          /s3:\/\/fn-intake-ttl\/config\/plugindex\.json \/snapshotTtlSeconds: 3600 .*at least 43200 .*21600/,
        ),
      });
    }
    expect((await listAll(intake, 'incoming/')).map((o) => o.key)).toEqual(['incoming/waits.tgz']);
    expect(await listAll(intake, 'status/')).toEqual([]);
    expect(await site.head('snapshot.json')).toBeUndefined();
    // The operator sets two refreshes' worth: the retry publishes what waited.
    await putConfig(43200);
    const result = await publish(sqsEvent('incoming/waits.tgz'));
    expect(result.outcomes.map((o) => [o.plugin, o.status])).toEqual([['ttl-plugin', 'accepted']]);
    const snapshot = JSON.parse(
      new TextDecoder().decode((await site.get('snapshot.json'))?.body),
    ) as SnapshotDocument;
    expect(Date.parse(snapshot.expires) - Date.parse(snapshot.created)).toBe(43200 * 1000);
  });
  it("still re-signs the snapshot on the schedule's refresh, for two refreshes, judging no upload, and says why loudly", async () => {
    // Prepare: a registry published with a lifetime of a day, its config object then edited to one hour
    // under a schedule of six. Refused with the publishes, the refresh let the snapshot expire until the
    // config was mended.
    const { short, putConfig } = ttlRegistry('ttl-refresh');
    const putUpload = async (key: string, version: string) =>
      s3.client.send(
        new PutObjectCommand({
          Bucket: short.intakeBucket,
          Key: key,
          Body: await makeBundle({ manifest: validManifest({ name: 'ttl-refreshed', version }) }),
        }),
      );
    const uploadEvent = (key: string) => ({
      Records: [objectCreatedRecord(short.intakeBucket, key, `m-${key}`)],
    });
    const intake = new S3Store({ client: s3.client, bucket: short.intakeBucket });
    const site = new S3Store({ client: s3.client, bucket: short.siteBucket });
    const failures: Record<string, unknown>[] = [];
    const publish = createPublishHandler({
      ...deps,
      config: short,
      logger: {
        info: () => {},
        warn: () => {},
        error: (message, fields) => failures.push({ message, ...fields }),
      },
    });
    await putConfig(86400);
    await putUpload('incoming/first.tgz', '1.0.0');
    await publish(uploadEvent('incoming/first.tgz'));
    const registryKey = await readPublicKey((await testKey('registry')).publicKey);
    const trusted = async (): Promise<SnapshotDocument> =>
      verifySnapshot({
        ...openSignedSnapshot((await site.get('snapshot.signed.json'))?.body as Uint8Array),
        key: registryKey.key,
        now: new Date(),
      });
    const before = await trusted();
    await putConfig(3600);
    await putUpload('incoming/waits.tgz', '2.0.0');

    // Act
    const refreshed = await publish(refreshEvent);

    // Assess: a new snapshot, signed by the registry key, listing what it listed, for two refreshes: the
    // least lifetime the schedule allows, neither the one refused nor the one before.
    const after = await trusted();
    expect(refreshed.generation).toBe(before.generation + 1);
    expect(after.generation).toBe(before.generation + 1);
    expect(after.documents).toEqual(before.documents);
    expect(Date.parse(after.expires) - Date.parse(after.created)).toBe(2 * 21600 * 1000);
    expect(refreshed.outcomes).toEqual([]);
    // The upload not judged: it waits, with no outcome.
    expect((await listAll(intake, 'incoming/')).map((o) => o.key)).toEqual(['incoming/waits.tgz']);
    expect((await listAll(intake, 'status/')).length).toBe(1);
    // The refusal logged as an error, with its code and what it refused, though the invocation succeeds.
    expect(failures.map((f) => [f.message, (f.error as { code?: string } | undefined)?.code])).toEqual([
      [CONFIG_REFUSED_LOG, 'CONFIG_INVALID'],
    ]);
    expect(failures[0]).toMatchObject({
      error: { message: expect.stringMatching(/\/snapshotTtlSeconds: 3600 /) },
    });

    // Act: the upload's own message.
    const refused = publish(uploadEvent('incoming/waits.tgz'));

    // Assess: still refused, the upload left for the retry.
    await expect(refused).rejects.toThrow(ConfigError);
    await expect(refused).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    expect((await listAll(intake, 'incoming/')).map((o) => o.key)).toEqual(['incoming/waits.tgz']);
  });
});

describe('when the config object cannot be read: not JSON, or refused at a field other than the keys and the lifetime', () => {
  /**
   * A registry of its own under a schedule of six hours, published by the function under a good config with
   * the lifetime `publishedTtl` (by a function without the schedule, `scheduled` false), its config object
   * then replaced by `broken`; its errors logged, and what its site holds (every key's ETag) to compare.
   */
  async function brokenRegistry(
    suffix: string,
    publishedTtl: number,
    broken: string,
    options: { readonly scheduled?: boolean } = {},
  ) {
    const { short, putConfig, intake, site } = ttlRegistry(suffix);
    const failures: Record<string, unknown>[] = [];
    const logger = {
      info: () => {},
      warn: () => {},
      error: (message: string, fields?: Record<string, unknown>) => failures.push({ message, ...fields }),
    };
    const publish = createPublishHandler({ ...deps, config: short, logger });
    const putUpload = async (key: string, version: string) =>
      s3.client.send(
        new PutObjectCommand({
          Bucket: short.intakeBucket,
          Key: key,
          Body: await makeBundle({ manifest: validManifest({ name: `${suffix}-plugin`, version }) }),
        }),
      );
    const uploadEvent = (key: string) => ({
      Records: [objectCreatedRecord(short.intakeBucket, key, `m-${key}`)],
    });
    await putConfig(publishedTtl);
    await putUpload('incoming/first.tgz', '1.0.0');
    const first = options.scheduled === false ? { ...short, snapshotRefreshSeconds: undefined } : short;
    await createPublishHandler({ ...deps, config: first, logger })(uploadEvent('incoming/first.tgz'));
    await s3.client.send(
      new PutObjectCommand({ Bucket: short.intakeBucket, Key: short.configKey, Body: encode(broken) }),
    );
    await putUpload('incoming/waits.tgz', '2.0.0');
    failures.length = 0;
    const registryKey = await readPublicKey((await testKey('registry')).publicKey);
    return {
      intake,
      site,
      failures,
      publish,
      uploadEvent,
      where: `s3://${short.intakeBucket}/${short.configKey}`,
      /** The snapshot as a client takes it: signed by the registry key, not expired. */
      trusted: async (): Promise<SnapshotDocument> =>
        verifySnapshot({
          ...openSignedSnapshot((await site.get('snapshot.signed.json'))?.body as Uint8Array),
          key: registryKey.key,
          now: new Date(),
        }),
      /** Every site key with its ETag. */
      published: async () => new Map((await listAll(site, '')).map((o) => [o.key, o.etag])),
    };
  }
  const lifetime = (snapshot: SnapshotDocument) =>
    (Date.parse(snapshot.expires) - Date.parse(snapshot.created)) / 1000;
  /** What the refresh rewrites: the snapshot, its signature, the pair clients read. */
  const SNAPSHOT_FILES = ['snapshot.json', 'snapshot.json.asc', 'snapshot.signed.json'];
  /** `r`'s site holds the keys it held `before` (each with its ETag), and only SNAPSHOT_FILES changed. */
  const expectSnapshotFilesAloneChanged = async (
    r: Awaited<ReturnType<typeof brokenRegistry>>,
    before: Awaited<ReturnType<Awaited<ReturnType<typeof brokenRegistry>>['published']>>,
  ) => {
    const after = await r.published();
    expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
    expect([...after].filter(([key, etag]) => before.get(key) !== etag).map(([key]) => key)).toEqual(
      SNAPSHOT_FILES,
    );
  };
  /**
   * An entry of `type` for `plugin@version` appended to `r`'s log past the head its snapshot counts, and no
   * document showing it: what a batch that died once it was logged, or whose document the store refused, leaves.
   */
  const logPastTheHead = async (
    r: Awaited<ReturnType<typeof brokenRegistry>>,
    type: 'publish' | 'yank',
    plugin: string,
    version: string,
  ) => {
    const ctx = {
      intake: r.intake,
      site: r.site,
      signer: await createSigner((await testKey('registry')).secretKey),
      clock: systemClock,
      config: parseRegistryConfig({ name: 'TTL Registry', url: 'https://plugins.example.com' }),
    };
    const writer = await LogWriter.open(ctx);
    writer.append({
      time: new Date().toISOString(),
      type,
      plugin,
      version,
      signer: 'A'.repeat(40),
      digest: createHash('sha256').update(`a ${type} no document shows`).digest('hex'),
    });
    await writer.flush();
  };
  const codes = (failures: readonly Record<string, unknown>[]) =>
    failures.map((f) => [f.message, (f.error as { code?: string } | undefined)?.code]);

  it("still re-signs the snapshot on the schedule's refresh when the config object is not JSON, for two refreshes, changing nothing else", async () => {
    // Prepare: published for a day; the operator's edit leaves the object half written. Refused with the
    // publishes, the refresh let the snapshot expire a day later, every client refusing the registry.
    const r = await brokenRegistry('unread-json', 86400, '{"name": "TTL Registry", "url": ');
    const before = await r.trusted();
    const publishedBefore = await r.published();
    const batch = {
      Records: [
        ...r.uploadEvent('incoming/waits.tgz').Records,
        { messageId: 'rebuild-1', eventSource: 'aws:sqs', body: '{"plugindex":"rebuild"}' },
        ...refreshEvent.Records,
      ],
    };

    // Act
    const refreshed = await r.publish(batch);

    // Assess: the snapshot signed again by the registry key, listing what it listed for the registry it
    // named, for two refreshes (the least the schedule allows, under the day published).
    const after = await r.trusted();
    expect(refreshed.generation).toBe(before.generation + 1);
    expect(after.generation).toBe(before.generation + 1);
    expect(after.documents).toEqual(before.documents);
    expect(after.registry).toBe(before.registry);
    expect(after.log).toEqual(before.log);
    expect(after.key_fingerprint).toBe(before.key_fingerprint);
    expect(lifetime(after)).toBe(2 * 21600);
    // Nothing else published changed; nothing judged; the other messages back for the queue's retries.
    await expectSnapshotFilesAloneChanged(r, publishedBefore);
    expect(refreshed.outcomes).toEqual([]);
    expect(refreshed.batchItemFailures).toEqual([
      { itemIdentifier: 'm-incoming/waits.tgz' },
      { itemIdentifier: 'rebuild-1' },
    ]);
    expect((await listAll(r.intake, 'incoming/')).map((o) => o.key)).toEqual(['incoming/waits.tgz']);
    expect((await listAll(r.intake, 'status/')).length).toBe(1);
    // The refusal logged as an error with its code, which the ConfigRefused alarm counts.
    expect(codes(r.failures)).toEqual([[CONFIG_REFUSED_LOG, 'CONFIG_INVALID']]);
    expect(r.failures[0]).toMatchObject({
      error: { message: expect.stringContaining(`${r.where} is not JSON`) },
    });

    // Act: the upload's own message.
    const refused = r.publish(r.uploadEvent('incoming/waits.tgz'));

    // Assess: still refused, the upload left for the retry.
    await expect(refused).rejects.toThrow(ConfigError);
    await expect(refused).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    expect((await listAll(r.intake, 'incoming/')).map((o) => o.key)).toEqual(['incoming/waits.tgz']);
  });

  it("still re-signs the snapshot on the schedule's refresh when the config object is refused at another field, for no longer than the published one and nothing the config says", async () => {
    // Prepare: published for an hour by a function without the schedule (a stack changed since, or a
    // refresh run against the buckets); the config then says a policy no registry has, and ten years.
    const r = await brokenRegistry(
      'unread-field',
      3600,
      JSON.stringify({
        name: 'TTL Registry',
        url: 'https://elsewhere.example.com',
        policy: 'everyone',
        snapshotTtlSeconds: 315360000,
      }),
      { scheduled: false },
    );
    const before = await r.trusted();
    const publishedBefore = await r.published();

    // Act
    const refreshed = await r.publish(refreshEvent);

    // Assess: signed again for the hour it had, naming the registry it named: nothing of the config taken.
    const after = await r.trusted();
    expect(refreshed.generation).toBe(before.generation + 1);
    expect(after.documents).toEqual(before.documents);
    expect(after.registry).toBe('https://plugins.example.com');
    expect(lifetime(after)).toBe(3600);
    await expectSnapshotFilesAloneChanged(r, publishedBefore);
    expect(refreshed.outcomes).toEqual([]);
    expect((await listAll(r.intake, 'incoming/')).map((o) => o.key)).toEqual(['incoming/waits.tgz']);
    expect(codes(r.failures)).toEqual([[CONFIG_REFUSED_LOG, 'CONFIG_INVALID']]);
    expect(r.failures[0]).toMatchObject({
      error: { message: expect.stringContaining(`${r.where} /policy: expected "open" or "restricted"`) },
    });
  });

  it("names in an error line a logged publish no document shows, which the schedule's refresh left uncounted", async () => {
    // Prepare: a publish logged past the head the snapshot counts that no document shows (a batch died once
    // it was logged, or the store refused its document), the config then left unreadable: no batch runs to
    // publish or void it, and the refresh renews the snapshot without counting it (stuck-entries.ts). The
    // function dropped what the refresh said of it, and the log head lagged with nothing in the logs.
    const r = await brokenRegistry('unread-stuck', 86400, 'not json');
    const before = await r.trusted();
    await logPastTheHead(r, 'publish', 'unread-stuck-plugin', '9.0.0');

    // Act
    const refreshed = await r.publish(refreshEvent);

    // Assess: renewed, the entry left uncounted, and named with what to do in a line of its own.
    const after = await r.trusted();
    expect(refreshed.generation).toBe(before.generation + 1);
    expect(after.log).toEqual(before.log);
    expect(r.failures).toContainEqual(
      expect.objectContaining({
        message: LOGGED_ENTRY_STUCK_LOG,
        code: 'LOGGED_PUBLISH_STUCK',
        step: 'refresh',
        seq: 1,
        type: 'publish',
        plugin: 'unread-stuck-plugin',
        version: '9.0.0',
        document: 'without',
        counted: 1,
        logged: 2,
        detail: expect.stringMatching(/^plugindex refresh signed the snapshot counting the 1 log entries/),
      }),
    );
  });

  it('names a logged action no document shows under LOGGED_ACTION_STUCK, not as a stuck publish', async () => {
    // Prepare: as above, the entry past the head a yank (before, its error line said LOGGED_PUBLISH_STUCK).
    const r = await brokenRegistry('unread-stuck-yank', 86400, 'not json');
    const before = await r.trusted();
    await logPastTheHead(r, 'yank', 'unread-stuck-yank-plugin', '1.0.0');

    // Act
    const refreshed = await r.publish(refreshEvent);

    // Assess
    expect(refreshed.generation).toBe(before.generation + 1);
    expect((await r.trusted()).log).toEqual(before.log);
    expect(r.failures).toContainEqual(
      expect.objectContaining({
        message: LOGGED_ENTRY_STUCK_LOG,
        code: 'LOGGED_ACTION_STUCK',
        step: 'refresh',
        seq: 1,
        type: 'yank',
        counted: 1,
        logged: 2,
      }),
    );
  });

  it('fails the refresh with CONFIG_INVALID where it would need the config (nothing published yet), writing nothing', async () => {
    // Nothing published: the refresh would render every document, named by the config that cannot be read.
    const { short, intake, site } = ttlRegistry('unread-empty');
    await s3.client.send(
      new PutObjectCommand({ Bucket: short.intakeBucket, Key: short.configKey, Body: encode('not json') }),
    );
    const quiet = { info: () => {}, warn: () => {}, error: () => {} };
    const publish = createPublishHandler({ ...deps, logger: quiet, config: short });

    const refused = publish(refreshEvent);

    await expect(refused).rejects.toThrow(ConfigError);
    await expect(refused).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringMatching(/is not JSON.*nothing is published yet/),
    });
    expect(await listAll(site, '')).toEqual([]);
    expect(await listAll(intake, 'status/')).toEqual([]);
  });
});

describe("when the schedule's refresh meets a catalog of another format and a logged publish the store still refuses", () => {
  it('upgrades in its batch round without counting the entry, fails naming it, and the mended invocation publishes it at its entry', async () => {
    // Prepare: upgrade-stuck-first published (entry 0); upgrade-stuck-demo's publish (entry 1) and
    // upgrade-stuck-other's (entry 2) logged by one invocation whose S3 client refuses demo's document for good
    // (a stand-in for S3's refusal, as above), other's written: it fails LOGGED_PUBLISH_FAILED. Then the
    // catalog's meta file put back as the release before wrote it (format 6).
    const { short, putConfig, intake, site } = ttlRegistry('upgrade-stuck');
    await putConfig(86400);
    const demoDocument = 'plugins/upgrade-stuck-demo/index.json';
    const refusing = new S3Client(s3.config);
    refusing.middlewareStack.add(
      (next) => async (args) => {
        const input = args.input as { Bucket?: string; Key?: string };
        const method = (args as { request?: { method?: string } }).request?.method;
        if (input.Bucket === short.siteBucket && input.Key === demoDocument && method === 'PUT')
          throw new S3ServiceException({
            name: 'InvalidArgument',
            $fault: 'client',
            $metadata: { httpStatusCode: 400 },
            message: 'Invalid Argument',
          });
        return next(args);
      },
      { step: 'finalizeRequest', name: 'refuseDemoDocument' },
    );
    const quiet = { info: () => {}, warn: () => {}, error: () => {} };
    const put = async (key: string, name: string) =>
      s3.client.send(
        new PutObjectCommand({
          Bucket: short.intakeBucket,
          Key: key,
          Body: await makeBundle({ manifest: validManifest({ name }) }),
        }),
      );
    const publish = createPublishHandler({ ...deps, config: short, logger: quiet });
    const refusingPublish = createPublishHandler({ ...deps, s3: refusing, config: short, logger: quiet });
    await put('incoming/first.tgz', 'upgrade-stuck-first');
    await publish({ Records: [objectCreatedRecord(short.intakeBucket, 'incoming/first.tgz', 'm-1')] });
    await put('incoming/a-demo.tgz', 'upgrade-stuck-demo');
    await put('incoming/b-other.tgz', 'upgrade-stuck-other');
    await expect(
      refusingPublish({
        Records: [
          objectCreatedRecord(short.intakeBucket, 'incoming/a-demo.tgz', 'm-2'),
          objectCreatedRecord(short.intakeBucket, 'incoming/b-other.tgz', 'm-3'),
        ],
      }),
    ).rejects.toMatchObject({ code: 'LOGGED_PUBLISH_FAILED' });
    const registryKey = await readPublicKey((await testKey('registry')).publicKey);
    const trusted = async (): Promise<SnapshotDocument> =>
      verifySnapshot({
        ...openSignedSnapshot((await site.get('snapshot.signed.json'))?.body as Uint8Array),
        key: registryKey.key,
        now: new Date(),
      });
    const before = await trusted();
    expect(before.log?.length).toBe(1);
    const metaKey = 'state/catalog/meta.tsv';
    const meta = new TextDecoder().decode((await intake.get(metaKey))?.body);
    expect(meta.startsWith('plugindex-catalog 8\n')).toBe(true);
    await intake.put(metaKey, encode(meta.replace(/^plugindex-catalog 8\n/, 'plugindex-catalog 6\n')), {
      contentType: 'text/tab-separated-values',
      cacheControl: 'private, no-store',
    });

    // Act: the schedule's refresh, demo's document still refused. Its invocation runs a batch round first,
    // whose upgrade cannot wait (the batch renders from the catalog): the refresh's wait is never reached.
    const refreshed = refusingPublish(refreshEvent);

    // Assert: the upgrade committed (the catalog of this format, a new generation) counting the head the
    // published snapshot counted, not the stuck entry; then the batch failed naming it, no refresh after it.
    await expect(refreshed).rejects.toMatchObject({
      code: 'LOGGED_PUBLISH_FAILED',
      message: expect.stringContaining('entry 1'),
    });
    const upgraded = await trusted();
    expect(upgraded.generation).toBeGreaterThan(before.generation);
    expect(upgraded.log).toEqual(before.log);
    expect(new TextDecoder().decode((await intake.get(metaKey))?.body)).toMatch(/^plugindex-catalog 8\n/);

    // Act: the path mended, the next invocation.
    const mended = await publish(refreshEvent);

    // Assert: both publishes at their entries, the log counted again.
    expect(mended.outcomes.map((o) => [o.plugin, o.status, o.seq])).toEqual([
      ['upgrade-stuck-demo', 'accepted', 1],
      ['upgrade-stuck-other', 'accepted', 2],
    ]);
    expect((await trusted()).log?.length).toBe(3);
    refusing.destroy();
  }, 90_000);
});

describe('when the config object, edited by hand, trusts a key no signature by which is taken', () => {
  const [small, dsa] = [
    UNTRUSTED_KEYS.find((k) => k.label === 'an Ed25519 key of small order'),
    UNTRUSTED_KEYS.find((k) => k.label === 'a DSA key'),
  ] as const;
  if (!small || !dsa) throw new Error('test/support/untrusted-keys.ts lacks a key this test uses');
  const weakTrust = {
    operators: [{ fingerprint: small.fingerprint, key: small.publicKey }],
    publishers: [{ fingerprint: dsa.fingerprint, key: dsa.publicKey, names: ['*'] }],
  };

  /** The function over its own pair of buckets, its config object put by `putConfig`, its errors logged. */
  function weakRegistry(intakeBucket: string, siteBucket: string) {
    const weak = {
      ...config,
      intakeBucket,
      siteBucket,
      distributionId: undefined,
      queueUrl: 'https://sqs.us-east-1.amazonaws.com/123456789012/Submissions.fifo',
    };
    const putConfig = (trust: Record<string, unknown>) =>
      s3.client.send(
        new PutObjectCommand({
          Bucket: weak.intakeBucket,
          Key: weak.configKey,
          Body: encode(
            JSON.stringify({ name: 'Weak Registry', url: 'https://plugins.example.com', ...trust }),
          ),
        }),
      );
    const putUpload = async (key: string, name: string, version = '1.0.0') =>
      s3.client.send(
        new PutObjectCommand({
          Bucket: weak.intakeBucket,
          Key: key,
          Body: await makeBundle({ manifest: validManifest({ name, version }) }),
        }),
      );
    const failures: Record<string, unknown>[] = [];
    const capturing = {
      info: () => {},
      warn: () => {},
      error: (message: string, fields?: Record<string, unknown>) => failures.push({ message, ...fields }),
    };
    return {
      intake: new S3Store({ client: s3.client, bucket: weak.intakeBucket }),
      site: new S3Store({ client: s3.client, bucket: weak.siteBucket }),
      putConfig,
      putUpload,
      failures,
      publish: createPublishHandler({
        ...deps,
        logger: capturing,
        config: weak,
        sqs: new SQSClient({ region: 'us-east-1' }),
      }),
      /** An upload's own message, as the queue delivers it. */
      uploadEvent: (key: string) => ({ Records: [objectCreatedRecord(weak.intakeBucket, key, `m-${key}`)] }),
      where: `s3://${weak.intakeBucket}/${weak.configKey}`,
    };
  }

  it('refuses every invocation that judges anything, naming the object and each entry, and leaves the uploads for the retry', async () => {
    // Taken, each upload such a key signed was refused later, one rejection per upload that never said
    // the config was at fault.
    const r = weakRegistry('fn-intake-weak', 'fn-site-weak');
    await r.putConfig(weakTrust);
    await r.putUpload('incoming/waits.tgz', 'weak-plugin');

    // A publish and a rebuild alike.
    const rebuildEvent = {
      Records: [{ messageId: 'r', eventSource: 'aws:sqs', body: '{"plugindex":"rebuild"}' }],
    };
    const direct = {};
    for (const event of [r.uploadEvent('incoming/waits.tgz'), rebuildEvent, direct]) {
      const error = await r.publish(event).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConfigError);
      expect(error).toMatchObject({ code: 'CONFIG_INVALID' });
      const { message } = error as ConfigError;
      expect(message).toContain(
        `${r.where} /publishers/0/key: the publisher key ${dsa.fingerprint} cannot be trusted`,
      );
      expect(message).toContain(dsa.reason);
      expect(message).toContain(
        `${r.where} /operators/0/key: the operator key ${small.fingerprint} cannot be trusted`,
      );
      expect(message).toContain(small.reason);
    }
    expect(r.failures.map((f) => [f.message, (f.error as { code?: string } | undefined)?.code])).toEqual([
      ['publish failed', 'CONFIG_INVALID'],
      ['publish failed', 'CONFIG_INVALID'],
      ['publish failed', 'CONFIG_INVALID'],
    ]);
    expect((await listAll(r.intake, 'incoming/')).map((o) => o.key)).toEqual(['incoming/waits.tgz']);
    expect(await listAll(r.intake, 'status/')).toEqual([]);
    expect(await listAll(r.site, '')).toEqual([]);
    // The operator removes both entries: the retry publishes what waited.
    await r.putConfig({});
    const result = await r.publish(r.uploadEvent('incoming/waits.tgz'));
    expect(result.outcomes.map((o) => [o.plugin, o.status])).toEqual([['weak-plugin', 'accepted']]);
  });

  it("still re-signs the snapshot on the schedule's refresh, judging no upload, and says why loudly", async () => {
    // Prepare: a published registry whose config object is then edited to trust such keys, and an upload
    // waiting. Refused with the publishes, the refresh let the snapshot expire until the config was mended.
    const r = weakRegistry('fn-intake-weak-refresh', 'fn-site-weak-refresh');
    await r.putConfig({});
    await r.putUpload('incoming/first.tgz', 'refreshed-plugin');
    await r.publish(r.uploadEvent('incoming/first.tgz'));
    const registryKey = await readPublicKey((await testKey('registry')).publicKey);
    const trusted = async (): Promise<SnapshotDocument> =>
      verifySnapshot({
        ...openSignedSnapshot((await r.site.get('snapshot.signed.json'))?.body as Uint8Array),
        key: registryKey.key,
        now: new Date(),
      });
    const before = await trusted();
    await r.putConfig(weakTrust);
    await r.putUpload('incoming/waits.tgz', 'refreshed-plugin', '2.0.0');

    // Act
    const refreshed = await r.publish(refreshEvent);

    // Assess: a new snapshot, signed by the registry key, its expiry later, listing what it listed.
    const after = await trusted();
    expect(refreshed.generation).toBe(before.generation + 1);
    expect(after.generation).toBe(before.generation + 1);
    expect(Date.parse(after.expires)).toBeGreaterThan(Date.parse(before.expires));
    expect(after.documents).toEqual(before.documents);
    expect(refreshed.outcomes).toEqual([]);
    expect(refreshed.batchItemFailures).toEqual([]);
    // The upload not judged: it waits, with no outcome.
    expect((await listAll(r.intake, 'incoming/')).map((o) => o.key)).toEqual(['incoming/waits.tgz']);
    expect((await listAll(r.intake, 'status/')).length).toBe(1);
    // The refusal logged as an error, with its code, though the invocation succeeds.
    expect(r.failures.map((f) => [f.message, (f.error as { code?: string } | undefined)?.code])).toEqual([
      [CONFIG_REFUSED_LOG, 'CONFIG_INVALID'],
    ]);

    // Act: the upload's own message.
    const refused = r.publish(r.uploadEvent('incoming/waits.tgz'));

    // Assess: still refused, the upload left for the retry.
    await expect(refused).rejects.toThrow(ConfigError);
    await expect(refused).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    expect((await listAll(r.intake, 'incoming/')).map((o) => o.key)).toEqual(['incoming/waits.tgz']);
  });
  it("re-signs the snapshot on a refresh delivered in one batch with an upload's, a rebuild's and a rotation's messages, answering those failed", async () => {
    // Prepare: as above, an upload waiting. Its message is of the queue's one FIFO group, back each
    // visibility timeout, and delivered in one batch with every refresh behind it.
    const r = weakRegistry('fn-intake-weak-mixed', 'fn-site-weak-mixed');
    await r.putConfig({});
    await r.putUpload('incoming/first.tgz', 'mixed-plugin');
    await r.publish(r.uploadEvent('incoming/first.tgz'));
    const signed = async () =>
      openSignedSnapshot((await r.site.get('snapshot.signed.json'))?.body as Uint8Array).snapshot;
    const before = JSON.parse(new TextDecoder().decode(await signed())) as SnapshotDocument;
    await r.putConfig(weakTrust);
    await r.putUpload('incoming/waits.tgz', 'mixed-plugin', '2.0.0');
    sqsMock.reset();
    const batch = {
      Records: [
        ...r
          .uploadEvent('incoming/waits.tgz')
          .Records.map((record) => ({ ...record, receiptHandle: 'handle-w' })),
        { messageId: 'rebuild-1', eventSource: 'aws:sqs', body: '{"plugindex":"rebuild"}' },
        {
          messageId: 'rotate-1',
          eventSource: 'aws:sqs',
          body: JSON.stringify({ plugindex: 'rotate-key', key: 'rotations/r.json' }),
        },
        ...refreshEvent.Records,
      ],
    };

    // Act
    const result = await r.publish(batch);

    // Assess: the snapshot re-signed, nothing judged, the other messages back for the queue's retries.
    const after = JSON.parse(new TextDecoder().decode(await signed())) as SnapshotDocument;
    expect(after.generation).toBe(before.generation + 1);
    expect(after.documents).toEqual(before.documents);
    expect(result.outcomes).toEqual([]);
    expect(result.batchItemFailures).toEqual([
      { itemIdentifier: 'm-incoming/waits.tgz' },
      { itemIdentifier: 'rebuild-1' },
      { itemIdentifier: 'rotate-1' },
    ]);
    // Back after the visibility timeout, not at once: nothing is published until the config is mended, and
    // back at once they would reach the dead-letter queue within seconds.
    expect(sqsMock.commandCalls(ChangeMessageVisibilityBatchCommand)).toEqual([]);
    expect((await listAll(r.intake, 'incoming/')).map((o) => o.key)).toEqual(['incoming/waits.tgz']);
    expect(r.failures.map((f) => [f.message, (f.error as { code?: string } | undefined)?.code])).toEqual([
      [CONFIG_REFUSED_LOG, 'CONFIG_INVALID'],
    ]);
  });
});

describe('when a cold start meets configured entries it checked before (state/checked-keys.json)', () => {
  const [small, dsa] = [
    UNTRUSTED_KEYS.find((k) => k.label === 'an Ed25519 key of small order'),
    UNTRUSTED_KEYS.find((k) => k.label === 'a DSA key'),
  ] as const;
  if (!small || !dsa) throw new Error('test/support/untrusted-keys.ts lacks a key this test uses');
  const checkedConfig = {
    ...config,
    intakeBucket: 'fn-intake-checked',
    siteBucket: 'fn-site-checked',
    distributionId: undefined,
  };
  const clients: S3Client[] = [];
  afterAll(() => {
    for (const client of clients) client.destroy();
  });
  /** The function as a new container starts it: its own S3 client, so nothing of another's is kept. */
  function coldFunction() {
    const client = new S3Client(s3.config);
    clients.push(client);
    // Its own log, so the suite's (which later tests read) holds none of these invocations' lines.
    const quiet = { info: () => {}, warn: () => {}, error: () => {} };
    return createPublishHandler({ ...deps, s3: client, config: checkedConfig, logger: quiet });
  }
  const putConfig = (trust: Record<string, unknown>) =>
    s3.client.send(
      new PutObjectCommand({
        Bucket: checkedConfig.intakeBucket,
        Key: checkedConfig.configKey,
        Body: encode(
          JSON.stringify({ name: 'Checked Registry', url: 'https://plugins.example.com', ...trust }),
        ),
      }),
    );
  const putChecked = (text: string) =>
    s3.client.send(
      new PutObjectCommand({ Bucket: checkedConfig.intakeBucket, Key: CHECKED_KEYS_KEY, Body: encode(text) }),
    );
  const readChecked = async () =>
    new TextDecoder().decode(
      (await new S3Store({ client: s3.client, bucket: checkedConfig.intakeBucket }).get(CHECKED_KEYS_KEY))
        ?.body,
    );
  const digestOf = (entry: { fingerprint: string; key: string }) => configuredKeyDigest(entry);
  /** The list as the function writes it of `entries`: each one's digest, and its key's (sub)key IDs beside. */
  const listOf = async (...entries: { fingerprint: string; key: string }[]) => ({
    checked: entries.map(digestOf),
    keyIds: await Promise.all(
      entries.map(async (e) =>
        (await readPublicKey(e.key)).key.getKeyIDs().map((id) => id.toHex().toUpperCase()),
      ),
    ),
  });
  const refusal = (run: Promise<unknown>) =>
    run.then(
      () => undefined,
      (e: unknown) => e,
    );

  it('keeps the digest of each entry it checked, and leaves the list as it is while it holds them', async () => {
    // Prepare
    const publisher = await testKey('checked-publisher');
    const entry = { fingerprint: publisher.fingerprint, key: publisher.publicKey };
    await putConfig({ publishers: [{ ...entry, names: ['*'] }] });

    // Act
    const warm = coldFunction();
    await warm({});

    // Assess: the list written by the function, under state/.
    const written = await listOf(entry);
    expect(JSON.parse(await readChecked())).toEqual(written);

    // A list of the same digests and key IDs, however written, is not written again: neither by a cold
    // start that reads it, nor by a warm invocation (which reads it no more).
    const same = `{ "checked": [ "${digestOf(entry)}" ], "keyIds": [ ${JSON.stringify(written.keyIds[0])} ] }`;
    await putChecked(same);
    await coldFunction()({});
    await warm({});
    expect(await readChecked()).toBe(same);
  });

  it('skips at a cold start only the entries whose digest the list holds, checking every other', async () => {
    // Prepare: a list naming the DSA entry (whoever may write state/ may write the config beside it), a
    // config holding it and an operator key of small order the list does not name.
    const weakPublisher = { fingerprint: dsa.fingerprint, key: dsa.publicKey };
    await putConfig({
      publishers: [{ ...weakPublisher, names: ['*'] }],
      operators: [{ fingerprint: small.fingerprint, key: small.publicKey }],
    });
    const listed = { checked: [digestOf(weakPublisher)], keyIds: [['0123456789ABCDEF']] };
    await putChecked(JSON.stringify(listed));

    // Act
    const error = await refusal(coldFunction()({}));

    // Assess: the operator's entry refused, the listed one not read.
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toMatchObject({ code: 'CONFIG_INVALID' });
    const { message } = error as ConfigError;
    expect(message).toContain(`/operators/0/key: the operator key ${small.fingerprint} cannot be trusted`);
    expect(message).not.toContain('/publishers/0');
    // Nothing kept of a config refused.
    expect(JSON.parse(await readChecked())).toEqual(listed);
  });

  it('checks again an entry whose key text or fingerprint changed since its digest was kept', async () => {
    // Prepare: a good entry checked and kept.
    const publisher = await testKey('checked-changed');
    const good = { fingerprint: publisher.fingerprint, key: publisher.publicKey };
    await putConfig({ publishers: [{ ...good, names: ['*'] }] });
    await coldFunction()({});
    expect(JSON.parse(await readChecked())).toEqual(await listOf(good));

    // Act: its text replaced by a DSA key's, the fingerprint left; then its fingerprint changed alone.
    await putConfig({
      publishers: [{ fingerprint: publisher.fingerprint, key: dsa.publicKey, names: ['*'] }],
    });
    const changedText = await refusal(coldFunction()({}));
    const other = 'E'.repeat(40);
    await putConfig({ publishers: [{ fingerprint: other, key: publisher.publicKey, names: ['*'] }] });
    const changedFingerprint = await refusal(coldFunction()({}));

    // Assess
    expect(changedText).toBeInstanceOf(ConfigError);
    expect(changedText).toMatchObject({ code: 'CONFIG_INVALID' });
    expect((changedText as ConfigError).message).toContain(
      `/publishers/0/key: the publisher key ${dsa.fingerprint} cannot be trusted`,
    );
    expect(changedFingerprint).toBeInstanceOf(ConfigError);
    expect(changedFingerprint).toMatchObject({ code: 'CONFIG_INVALID' });
    expect((changedFingerprint as ConfigError).message).toContain(
      `/publishers/0/fingerprint: ${other} is not the fingerprint of the publisher key beside it (${publisher.fingerprint})`,
    );
    expect(JSON.parse(await readChecked())).toEqual(await listOf(good));
  });

  it('reads a list of the older form (digests alone), checking its entries once more and keeping their key IDs', async () => {
    // Prepare: the list a function of before the key IDs wrote, naming the DSA entry.
    const weakPublisher = { fingerprint: dsa.fingerprint, key: dsa.publicKey };
    const publisher = await testKey('checked-older');
    const good = { fingerprint: publisher.fingerprint, key: publisher.publicKey };
    await putConfig({ publishers: [{ ...weakPublisher, names: ['*'] }] });
    await putChecked(JSON.stringify({ checked: [digestOf(weakPublisher)] }));

    // Act: a cold start under it, then one under a good entry listed so.
    const error = await refusal(coldFunction()({}));
    await putConfig({ publishers: [{ ...good, names: ['*'] }] });
    await putChecked(JSON.stringify({ checked: [digestOf(good)] }));
    await coldFunction()({});

    // Assess: an entry listed without IDs is read and checked again (refused here), then kept with them.
    expect(error).toMatchObject({ code: 'CONFIG_INVALID' });
    expect((error as ConfigError).message).toContain(
      `/publishers/0/key: the publisher key ${dsa.fingerprint}`,
    );
    expect(JSON.parse(await readChecked())).toEqual(await listOf(good));
  });

  it('checks every entry when the list is not as written', async () => {
    await putConfig({ publishers: [{ fingerprint: dsa.fingerprint, key: dsa.publicKey, names: ['*'] }] });
    await putChecked('{"checked": "every key"');

    const error = await refusal(coldFunction()({}));

    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toMatchObject({ code: 'CONFIG_INVALID' });
    expect((error as ConfigError).message).toContain(
      `/publishers/0/key: the publisher key ${dsa.fingerprint}`,
    );
  });
});

describe('when the signing secret holds a key anyone can sign as (an Ed25519 point of small order)', () => {
  it('refuses every invocation with KEY_UNTRUSTED before anything is signed, writing nothing to the site', async () => {
    // Prepare: the secret set to such a key (its signatures verify over anything), an upload waiting.
    // Taken, every snapshot and document it signed could be forged by anyone.
    const weak = smallOrderKey(SMALL_ORDER_POINTS.identity, KEYS_CREATED);
    const secretId = 'plugindex/weak-signing-key';
    secrets
      .on(GetSecretValueCommand, { SecretId: secretId })
      .resolves({ SecretString: JSON.stringify({ armoredKey: weak.secretKey }) });
    const weakSigner = {
      ...config,
      intakeBucket: 'fn-intake-weak-signer',
      siteBucket: 'fn-site-weak-signer',
      distributionId: undefined,
      signingKeySecretId: secretId,
      defaults: { name: 'Weak Signer', url: 'https://plugins.example.com' },
    };
    const intake = new S3Store({ client: s3.client, bucket: weakSigner.intakeBucket });
    const site = new S3Store({ client: s3.client, bucket: weakSigner.siteBucket });
    await s3.client.send(
      new PutObjectCommand({
        Bucket: weakSigner.intakeBucket,
        Key: 'incoming/waits.tgz',
        Body: await makeBundle({ manifest: validManifest({ name: 'weak-signer-plugin' }) }),
      }),
    );
    const failures: Record<string, unknown>[] = [];
    const publish = createPublishHandler({
      ...deps,
      config: weakSigner,
      signer: cachedSigner(new SecretsManagerClient({ region: 'us-east-1' }), secretId),
      logger: {
        info: () => {},
        warn: () => {},
        error: (message, fields) => failures.push({ message, ...fields }),
      },
    });

    // Act: an upload's message, and the schedule's refresh alone.
    const uploadEvent = {
      Records: [objectCreatedRecord(weakSigner.intakeBucket, 'incoming/waits.tgz', 'w')],
    };
    for (const event of [uploadEvent, refreshEvent]) {
      const invoked = publish(event);

      // Assess: refused by its code, naming the key and why.
      await expect(invoked).rejects.toThrow(KeyError);
      await expect(invoked).rejects.toMatchObject({
        code: 'KEY_UNTRUSTED',
        message: expect.stringContaining(`the signing key ${weak.fingerprint} cannot be trusted`),
      });
    }
    expect(failures.map((f) => [f.message, (f.error as { code?: string } | undefined)?.code])).toEqual([
      ['publish failed', 'KEY_UNTRUSTED'],
      ['publish failed', 'KEY_UNTRUSTED'],
    ]);
    // Nothing published, nothing judged: the upload waits for a key that may sign.
    expect(await listAll(site, '')).toEqual([]);
    expect((await listAll(intake, 'incoming/')).map((o) => o.key)).toEqual(['incoming/waits.tgz']);
    expect(await listAll(intake, 'status/')).toEqual([]);
  });
});

describe('when uploads arrive in the intake bucket', () => {
  it('publishes them as one batch, records every outcome, and invalidates what changed', async () => {
    // Uploaded in key order too: a batch runs in upload order, then by key, and S3 keeps times to the second.
    await upload('incoming/bad.tgz', encode('not a bundle'));
    await upload(
      'incoming/good.tgz',
      await makeBundle({ manifest: validManifest({ name: 'cloud-plugin' }) }),
    );
    const result = await createPublishHandler(deps)(sqsEvent('incoming/good.tgz', 'incoming/bad.tgz'));

    expect(result.outcomes.map((o) => [o.submission, o.status])).toEqual([
      ['incoming/bad.tgz', 'rejected'],
      ['incoming/good.tgz', 'accepted'],
    ]);
    const intake = new S3Store({ client: s3.client, bucket: config.intakeBucket });
    expect(await listAll(intake, 'incoming/')).toEqual([]);
    expect((await listAll(intake, 'status/')).length).toBe(2);
    expect((await listAll(intake, 'rejected/')).length).toBe(1);

    const invalidation = cloudfront.commandCalls(CreateInvalidationCommand)[0]?.args[0].input;
    expect(invalidation?.DistributionId).toBe('E2EXAMPLE');
    expect(invalidation?.InvalidationBatch?.Paths?.Items).toEqual(
      expect.arrayContaining([
        '/index.json',
        // The variants the edge routes to are cached apart, so they are invalidated with the document.
        '/index.json.br',
        '/index.json.gz',
        '/snapshot.json',
        '/plugins/cloud-plugin/index.json',
      ]),
    );
    expect(invalidation?.InvalidationBatch?.Paths?.Items?.some((p) => p.includes('/1.0.0/'))).toBe(false);
    // A small registry's index documents are under the threshold: their variants are the documents as they
    // are, without a Content-Encoding, there for the edge to route to.
    const site = new S3Store({ client: s3.client, bucket: config.siteBucket });
    const variant = await site.get('index.json.br');
    expect(variant?.contentEncoding).toBeUndefined();
    expect(variant?.body).toEqual((await site.get('index.json'))?.body);
    expect(logs.filter((l) => l.message === 'submission')).toEqual([
      expect.objectContaining({
        key: 'incoming/bad.tgz',
        outcome: 'rejected',
        problems: ['BUNDLE_NOT_GZIP bundle:/'],
        round: 1,
        roundMs: expect.any(Number),
      }),
      expect.objectContaining({
        key: 'incoming/good.tgz',
        plugin: 'cloud-plugin',
        version: '1.0.0',
        outcome: 'accepted',
        submission: result.outcomes[1]?.id,
        round: 1,
        roundMs: expect.any(Number),
      }),
    ]);
    expect(logs.find((l) => l.message === 'batch done')).toMatchObject({
      submissions: 2,
      rounds: 1,
      generation: result.generation,
      setupMs: expect.any(Number),
      invalidationMs: expect.any(Number),
      durationMs: expect.any(Number),
    });
  });

  it('treats a redelivered event as harmless: nothing changes', async () => {
    const site = new S3Store({ client: s3.client, bucket: config.siteBucket });
    const before = (await listAll(site, '')).map((o) => `${o.key} ${o.etag}`);
    const result = await createPublishHandler(deps)(sqsEvent('incoming/good.tgz'));
    expect(result.outcomes).toEqual([]);
    expect((await listAll(site, '')).map((o) => `${o.key} ${o.etag}`)).toEqual(before);
    expect(cloudfront.commandCalls(CreateInvalidationCommand)).toHaveLength(0);
  });

  it('logs a failed invalidation and succeeds: the publish is committed, and a redelivery could not redo it', async () => {
    // CloudFront (the named mock) refuses: a throw made SQS bring the message back after the 90-minute
    // visibility timeout, holding the one message group, to a retry with nothing left to invalidate.
    cloudfront.reset();
    cloudfront.on(CreateInvalidationCommand).rejects(
      Object.assign(new Error('User is not authorized to perform cloudfront:CreateInvalidation'), {
        name: 'AccessDenied',
      }),
    );
    await upload(
      'incoming/uninvalidated.tgz',
      await makeBundle({ manifest: validManifest({ name: 'cloud-plugin', version: '1.0.1' }) }),
    );
    logs.length = 0;
    const result = await createPublishHandler(deps)(sqsEvent('incoming/uninvalidated.tgz'));
    expect(result.outcomes.map((o) => o.status)).toEqual(['accepted']);
    expect(cloudfront.commandCalls(CreateInvalidationCommand)).toHaveLength(1);
    // The line the stack's InvalidationFailures alarm counts (infra/constructs/alarms.ts).
    expect(logs.find((l) => l.message === INVALIDATION_FAILED_LOG)).toMatchObject({
      level: 'ERROR',
      error: { name: 'AwsAdapterError', code: 'INVALIDATION_FAILED' },
      paths: expect.any(Number),
    });
    expect(logs.find((l) => l.message === 'batch done')).toMatchObject({ submissions: 1 });
  });

  it('publishes a later upload in its round, then renders the index documents once for the invocation', async () => {
    await upload(
      'incoming/later.tgz',
      await makeBundle({ manifest: validManifest({ name: 'cloud-plugin', version: '1.1.0' }) }),
    );
    logs.length = 0;
    const result = await createPublishHandler(deps)(sqsEvent('incoming/later.tgz'));
    const [outcome] = result.outcomes;
    expect(outcome).toMatchObject({ status: 'accepted', version: '1.1.0' });
    // The round's generation makes the version live; the flush after it is the next one.
    expect(result.generation).toBe((outcome?.generation as number) + 1);
    expect(logs.find((l) => l.message === 'batch done')).toMatchObject({
      rounds: 1,
      generation: result.generation,
      indexesGeneration: result.generation,
      flushMs: expect.any(Number),
    });
    const site = new S3Store({ client: s3.client, bucket: config.siteBucket });
    const index = JSON.parse(new TextDecoder().decode((await site.get('index.json'))?.body)) as {
      plugins: { name: string; latest_version: string }[];
    };
    expect(index.plugins.find((p) => p.name === 'cloud-plugin')?.latest_version).toBe('1.1.0');
    const paths =
      cloudfront.commandCalls(CreateInvalidationCommand)[0]?.args[0].input.InvalidationBatch?.Paths?.Items ??
      [];
    expect(paths).toEqual(expect.arrayContaining(['/index.json', '/plugins/cloud-plugin/index.json']));
    expect(cloudfront.commandCalls(CreateInvalidationCommand)).toHaveLength(1);
  });

  it('takes uploads that arrive during a round in another round, and renders the index documents once for all', async () => {
    // A client of its own whose middleware drops a second upload in as the first leaves incoming/, and
    // counts the writes of index.json.
    const client = new S3Client(s3.config);
    let injected = false;
    const indexWrites: string[] = [];
    client.middlewareStack.add(
      (next) => async (args) => {
        const input = args.input as { Bucket?: string; Key?: string };
        const result = await next(args);
        const method = (args as { request?: { method?: string } }).request?.method;
        // Writes only: the flush also reads index.json, to merge the changed plugins into it.
        const write = method !== 'GET' && method !== 'HEAD';
        if (write && input.Bucket === config.siteBucket && input.Key === 'index.json')
          indexWrites.push(input.Key);
        if (!injected && input.Bucket === config.intakeBucket && input.Key === 'incoming/first.tgz') {
          if ((args as { request?: { method?: string } }).request?.method === 'DELETE') {
            injected = true;
            await upload(
              'incoming/second.tgz',
              await makeBundle({ manifest: validManifest({ name: 'cloud-plugin', version: '1.4.0' }) }),
            );
          }
        }
        return result;
      },
      { step: 'finalizeRequest', name: 'injectUploadDuringRound' },
    );
    await upload(
      'incoming/first.tgz',
      await makeBundle({ manifest: validManifest({ name: 'cloud-plugin', version: '1.3.0' }) }),
    );
    logs.length = 0;
    try {
      const result = await createPublishHandler({ ...deps, s3: client })(sqsEvent('incoming/first.tgz'));
      expect(injected).toBe(true);
      expect(result.outcomes.map((o) => [o.submission, o.status])).toEqual([
        ['incoming/first.tgz', 'accepted'],
        ['incoming/second.tgz', 'accepted'],
      ]);
      expect(logs.filter((l) => l.message === 'submission').map((l) => l.round)).toEqual([1, 2]);
      expect(logs.find((l) => l.message === 'batch done')).toMatchObject({
        rounds: 2,
        indexesGeneration: result.generation,
      });
      expect(indexWrites).toHaveLength(1);
      const site = new S3Store({ client, bucket: config.siteBucket });
      const index = JSON.parse(new TextDecoder().decode((await site.get('index.json'))?.body)) as {
        plugins: { name: string; latest_version: string }[];
      };
      expect(index.plugins.find((p) => p.name === 'cloud-plugin')?.latest_version).toBe('1.4.0');
    } finally {
      client.destroy();
    }
  });

  it('makes a step again at once when its snapshot write meets another writer, leaving every document bound', async () => {
    // S3 refuses an If-Match write over a snapshot another writer replaced with 412 Precondition Failed;
    // s3rver ignores If-Match, so this client's middleware answers the batch's first snapshot write so (a
    // stand-in for S3's refusal, named so), after the batch's documents are written.
    const client = new S3Client(s3.config);
    let refused = 0;
    client.middlewareStack.add(
      (next) => async (args) => {
        const input = args.input as { Bucket?: string; Key?: string; IfMatch?: string };
        if (
          refused === 0 &&
          input.Bucket === config.siteBucket &&
          input.Key === 'snapshot.json' &&
          input.IfMatch
        ) {
          refused += 1;
          throw new S3ServiceException({
            name: 'PreconditionFailed',
            $fault: 'client',
            $metadata: { httpStatusCode: 412 },
            message: 'At least one of the pre-conditions you specified did not hold',
          });
        }
        return next(args);
      },
      { step: 'initialize', name: 'refuseFirstSnapshotWrite' },
    );
    // A registry published already: its snapshot is there to be read, and written over only as read.
    await upload(
      'incoming/before-conflict.tgz',
      await makeBundle({ manifest: validManifest({ name: 'conflict-plugin', version: '1.0.0' }) }),
    );
    await createPublishHandler(deps)(sqsEvent('incoming/before-conflict.tgz'));
    await upload(
      'incoming/conflicted.tgz',
      await makeBundle({ manifest: validManifest({ name: 'conflict-plugin', version: '1.1.0' }) }),
    );
    logs.length = 0;
    try {
      const result = await createPublishHandler({ ...deps, s3: client })(sqsEvent('incoming/conflicted.tgz'));
      expect(refused).toBe(1);
      expect(result.outcomes.map((o) => o.status)).toEqual(['accepted']);
      expect(logs.find((l) => l.message === 'snapshot conflict')).toMatchObject({
        level: 'WARN',
        step: 'publish',
        attempt: 1,
        error: { code: 'STORE_CONFLICT' },
      });
      // Every document the snapshot lists is the one there, byte for byte.
      const site = new S3Store({ client: s3.client, bucket: config.siteBucket });
      const snapshot = JSON.parse(
        new TextDecoder().decode((await site.get('snapshot.json'))?.body),
      ) as SnapshotDocument;
      expect(Object.keys(snapshot.documents)).toEqual(expect.arrayContaining(['index.json', 'search.json']));
      for (const [key, digest] of Object.entries(snapshot.documents)) {
        const body = (await site.get(key))?.body as Uint8Array;
        expect(createHash('sha256').update(body).digest('hex'), key).toBe(digest.sha256);
      }
    } finally {
      client.destroy();
    }
  });

  it('renders index documents that an invocation which died after its round left pending, on the retry', async () => {
    const intake = new S3Store({ client: s3.client, bucket: config.intakeBucket });
    const site = new S3Store({ client: s3.client, bucket: config.siteBucket });
    await upload(
      'incoming/died.tgz',
      await makeBundle({ manifest: validManifest({ name: 'cloud-plugin', version: '1.5.0' }) }),
    );
    // The round of the invocation that died: published, the index documents still pending.
    const round = await processSubmissions({
      intake,
      site,
      signer: await deps.signer(),
      clock: systemClock,
      config: parseRegistryConfig({ name: 'Cloud Registry', url: 'https://plugins.example.com' }),
      deferIndexes: true,
    });
    expect(round.indexesPending).toBe(true);
    logs.length = 0;
    const retried = await createPublishHandler(deps)(sqsEvent('incoming/died.tgz'));
    expect(retried.outcomes).toEqual([]);
    expect(retried.generation).toBe((round.generation as number) + 1);
    const index = JSON.parse(new TextDecoder().decode((await site.get('index.json'))?.body)) as {
      plugins: { name: string; latest_version: string }[];
    };
    expect(index.plugins.find((p) => p.name === 'cloud-plugin')?.latest_version).toBe('1.5.0');
    expect(logs.find((l) => l.message === 'batch done')).toMatchObject({
      indexesGeneration: retried.generation,
    });
  });

  it('re-renders and re-signs everything when the queue carries a rebuild request', async () => {
    const site = new S3Store({ client: s3.client, bucket: config.siteBucket });
    const generationOf = async (): Promise<number> =>
      (JSON.parse(new TextDecoder().decode((await site.get('snapshot.json'))?.body)) as SnapshotDocument)
        .generation;
    const before = await generationOf();
    const result = await createPublishHandler(deps)({
      Records: [{ eventSource: 'aws:sqs', body: '{"plugindex":"rebuild"}' }],
    });
    expect(result.generation).toBe(before + 1);
    expect(await generationOf()).toBe(before + 1);
    const paths =
      cloudfront.commandCalls(CreateInvalidationCommand)[0]?.args[0].input.InvalidationBatch?.Paths?.Items ??
      [];
    expect(paths).toEqual(
      expect.arrayContaining([
        '/index.json',
        '/plugins/cloud-plugin/index.json',
        '/plugins/cloud-plugin/index.html',
      ]),
    );
  });

  it('does not go round again for an upload whose name the store refuses: it stays, with its outcome', async () => {
    await upload('incoming/odd name.tgz', encode('whatever'));
    logs.length = 0;
    try {
      const result = await createPublishHandler(deps)(sqsEvent('incoming/odd name.tgz'));
      expect(result.outcomes.map((o) => [o.submission, o.status])).toEqual([
        ['incoming/odd name.tgz', 'rejected'],
      ]);
      expect(logs.find((l) => l.message === 'batch done')).toMatchObject({ rounds: 1 });
    } finally {
      await s3.client.send(
        new DeleteObjectCommand({ Bucket: config.intakeBucket, Key: 'incoming/odd name.tgz' }),
      );
    }
  });

  it("lets the schedule's refresh message re-sign the snapshot with the next generation, in turn with the publishes", async () => {
    const site = new S3Store({ client: s3.client, bucket: config.siteBucket });
    const read = async (): Promise<SnapshotDocument> =>
      JSON.parse(new TextDecoder().decode((await site.get('snapshot.json'))?.body)) as SnapshotDocument;
    const before = await read();
    const { generation } = await createPublishHandler(deps)(refreshEvent);
    expect(generation).toBe(before.generation + 1);
    const after = await read();
    expect(after.documents).toEqual(before.documents);
    expect(Date.parse(after.expires)).toBeGreaterThan(Date.parse(before.expires));
    expect(
      cloudfront.commandCalls(CreateInvalidationCommand)[0]?.args[0].input.InvalidationBatch?.Paths?.Items,
    ).toEqual(['/snapshot.json', '/snapshot.json.asc', '/snapshot.signed.json']);
  });

  it('publishes what waits with a refresh message, and signs no second snapshot for it', async () => {
    logs.length = 0;
    await upload(
      'incoming/with-refresh.tgz',
      await makeBundle({ manifest: validManifest({ name: 'cloud-plugin', version: '7.0.0' }) }),
    );
    const site = new S3Store({ client: s3.client, bucket: config.siteBucket });
    const before = JSON.parse(
      new TextDecoder().decode((await site.get('snapshot.json'))?.body),
    ) as SnapshotDocument;
    const event = { Records: [...sqsEvent('incoming/with-refresh.tgz').Records, ...refreshEvent.Records] };

    const result = await createPublishHandler(deps)(event);

    expect(result.outcomes.map((o) => [o.version, o.status])).toEqual([['7.0.0', 'accepted']]);
    // One generation for the publish (its index documents deferred, then flushed): none more for the refresh.
    const after = JSON.parse(
      new TextDecoder().decode((await site.get('snapshot.json'))?.body),
    ) as SnapshotDocument;
    expect(after.generation).toBe(result.generation);
    expect(logs.filter((l) => l.message === 'snapshot refreshed')).toEqual([]);
    expect(after.generation).toBeGreaterThan(before.generation);
  });
});

describe('when a warm function publishes again', () => {
  it('reads no catalog bin it wrote itself: its stores, and what they keep, outlive an invocation', async () => {
    const warm = {
      ...config,
      intakeBucket: 'fn-intake-warm',
      siteBucket: 'fn-site-warm',
      distributionId: undefined,
    };
    const client = new S3Client({ ...s3.config });
    const reads: string[] = [];
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'GetObjectCommand') reads.push((args.input as { Key: string }).Key);
        return next(args);
      },
      { step: 'initialize', name: 'captureReads' },
    );
    const quiet = { info: () => {}, warn: () => {}, error: () => {} };
    const publish = createPublishHandler({ ...deps, s3: client, logger: quiet, config: warm });
    const put = async (key: string, body: Uint8Array) =>
      client.send(new PutObjectCommand({ Bucket: warm.intakeBucket, Key: key, Body: body }));
    await put(config.configKey, encode(JSON.stringify({ name: 'Warm', url: 'https://warm.example.com' })));
    await put('incoming/a.tgz', await makeBundle({ manifest: validManifest({ name: 'first-plugin' }) }));
    expect((await publish(sqsEvent('incoming/a.tgz'))).outcomes.map((o) => o.status)).toEqual(['accepted']);

    reads.length = 0;
    await put('incoming/b.tgz', await makeBundle({ manifest: validManifest({ name: 'second-plugin' }) }));
    expect((await publish(sqsEvent('incoming/b.tgz'))).outcomes.map((o) => o.status)).toEqual(['accepted']);
    expect(reads).toContain('state/catalog/meta.tsv');
    expect(reads.filter((key) => key.startsWith('state/catalog/bins/'))).toEqual([]);
    client.destroy();
  });
});

describe('when an operator revokes a key through the function', () => {
  it('names the key it revokes in the submission log line and in the answer, as other actions their plugin@version', async () => {
    // Prepare: a registry whose operator revokes a publisher's key; a revoke-key names no plugin.
    const operator = await testKey('operator');
    const publisher = await testKey('publisher');
    const revoking = {
      ...config,
      intakeBucket: 'fn-intake-revoke',
      siteBucket: 'fn-site-revoke',
      distributionId: undefined,
    };
    const put = (key: string, body: Uint8Array) =>
      s3.client.send(new PutObjectCommand({ Bucket: revoking.intakeBucket, Key: key, Body: body }));
    const url = 'https://revoke.example.com';
    await put(
      revoking.configKey,
      encode(
        JSON.stringify({
          name: 'Revoking',
          url,
          operators: [{ fingerprint: operator.fingerprint, key: operator.publicKey }],
        }),
      ),
    );
    const publish = createPublishHandler({ ...deps, config: revoking });
    await put('incoming/a.tgz', await makeBundle({ manifest: validManifest({ name: 'revoked-plugin' }) }));
    expect((await publish({})).outcomes.map((o) => o.status)).toEqual(['accepted']);
    const { bytes } = await signedAction(
      { action: 'revoke-key', fingerprint: publisher.fingerprint, reason: 'the key leaked' },
      operator,
      { registry: url, now: new Date() },
    );
    await put('incoming/b-revoke.json', bytes);
    logs.length = 0;

    // Act
    const result = await publish({});

    // Assess
    expect(result.outcomes).toEqual([
      expect.objectContaining({
        status: 'accepted',
        action: 'revoke-key',
        fingerprint: publisher.fingerprint,
      }),
    ]);
    expect(logs.filter((l) => l.message === 'submission')).toEqual([
      expect.objectContaining({
        key: 'incoming/b-revoke.json',
        action: 'revoke-key',
        fingerprint: publisher.fingerprint,
        outcome: 'accepted',
      }),
    ]);
    expect(publishResponse(result).outcomes).toEqual([
      expect.objectContaining({
        submission: 'incoming/b-revoke.json',
        action: 'revoke-key',
        fingerprint: publisher.fingerprint,
      }),
    ]);
  });
});

describe('when a trust list is deployed and the config object in the bucket names another registry', () => {
  it("refuses that registry's actions (ACTION_WRONG_REGISTRY): the registry's URL is the deployment's", async () => {
    // Prepare: a registry deployed at https://b.example.com with its trust list (the operator's key among
    // it), whose config object someone with access to the bucket made name registry A; an operator's
    // action signed for registry A (published there, at A's log/actions/, for anyone to take).
    const pinned = {
      ...config,
      intakeBucket: 'fn-intake-pinned',
      siteBucket: 'fn-site-pinned',
      distributionId: undefined,
      defaults: { name: 'B', url: 'https://b.example.com' },
      publishers: [
        {
          fingerprint: (await testKey('publisher')).fingerprint,
          names: ['*'],
          key: (await testKey('publisher')).publicKey,
        },
      ],
      operators: [
        { fingerprint: (await testKey('operator')).fingerprint, key: (await testKey('operator')).publicKey },
      ],
    };
    const put = (key: string, body: Uint8Array) =>
      s3.client.send(new PutObjectCommand({ Bucket: pinned.intakeBucket, Key: key, Body: body }));
    await put(pinned.configKey, encode(JSON.stringify({ name: 'B', url: 'https://a.example.com' })));
    const publish = createPublishHandler({ ...deps, config: pinned });
    await put(
      'incoming/a-bundle.tgz',
      await makeBundle({ manifest: validManifest({ name: 'pinned-plugin' }) }),
    );
    expect((await publish({})).outcomes.map((o) => o.status)).toEqual(['accepted']);
    const { bytes } = await signedAction(
      { action: 'yank', plugin: 'pinned-plugin', version: '1.0.0', reason: 'for registry A' },
      await testKey('operator'),
      { registry: 'https://a.example.com', now: new Date() },
    );
    await put('incoming/b-action.json', bytes);

    // Act
    const { outcomes } = await publish({});

    // Assess
    expect(outcomes.map((o) => [o.status, ...o.problems.map((p) => p.code)])).toEqual([
      ['rejected', 'ACTION_WRONG_REGISTRY'],
    ]);
  });
});

describe('when a result is answered to the Lambda runtime', () => {
  const outcome = (i: number): SubmissionOutcome => ({
    schema: 'plugindex/outcome/v1',
    id: `id-${i}`,
    // An upload's name and a refused manifest's name are the publisher's: long, within their caps.
    submission: `incoming/${'u'.repeat(1000)}-${i}.tgz`,
    status: 'rejected',
    plugin: 'p'.repeat(20_000),
    processed: '2026-12-06T12:00:00.000Z',
    problems: Array.from({ length: 100 }, () => ({
      code: 'MANIFEST_NOT_ALLOWED_VALUE' as const,
      path: '/capabilities/0',
      message: 'm'.repeat(400),
    })),
  });

  it("bounds a rebuild's and a large batch's answer, counting what it leaves out", () => {
    const result: BatchResult = {
      outcomes: Array.from({ length: 1000 }, (_, i) => outcome(i)),
      generation: 7,
      changedPlugins: Array.from({ length: 40_000 }, (_, i) => `plugin-${i}`),
      // A rebuild of 40,000 plugins: each one's documents, pages and variants to invalidate.
      invalidate: Array.from({ length: 300_000 }, (_, i) => `plugins/plugin-${i}/index.json.gz`),
      leftInIncoming: 3,
      indexesPending: false,
    };

    const response = publishResponse(result);

    expect(Buffer.byteLength(JSON.stringify(response))).toBeLessThanOrEqual(MAX_PUBLISH_RESPONSE_BYTES);
    expect(response).toMatchObject({
      submissions: 1000,
      statuses: { rejected: 1000 },
      generation: 7,
      changedPlugins: 40_000,
      invalidated: 300_000,
      leftInIncoming: 3,
    });
    expect(response.outcomes.length).toBeGreaterThan(0);
    expect(response.outcomes.length + response.outcomesOmitted).toBe(1000);
    expect(response.outcomes[0]).toEqual({
      id: 'id-0',
      submission: outcome(0).submission,
      status: 'rejected',
      plugin: outcome(0).plugin,
      problems: Array.from({ length: 100 }, () => ({ code: 'MANIFEST_NOT_ALLOWED_VALUE' })),
    });
  });
});
