/**
 * The publishing pipeline. Uploads under incoming/ raise EventBridge "Object Created" events, which go to an
 * SQS FIFO queue with a single message group, so at most one publish runs at a time and no index update is
 * ever lost to a concurrent writer (helm-s3's lost-update race). Messages are doorbells: the function
 * publishes everything waiting, so a batch coalesces into one rebuild and a duplicate is harmless.
 * Transient failures are retried by the queue, then parked in a dead-letter queue. A schedule re-signs the
 * snapshot well before it expires.
 */
import path from 'node:path';
import { AssetHashType, DockerImage, Duration, Stack, Validations } from 'aws-cdk-lib';
import { EventField, Rule, RuleTargetInput, Schedule } from 'aws-cdk-lib/aws-events';
import { SqsQueue } from 'aws-cdk-lib/aws-events-targets';
import { Effect, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, Code, Function as LambdaFn, LoggingFormat, Runtime } from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Bucket, CfnBucket } from 'aws-cdk-lib/aws-s3';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import {
  minSnapshotTtlSeconds,
  PUBLISH_MAX_RECEIVES,
  PUBLISH_MESSAGE_GROUP,
  REFRESH_REQUEST,
} from '../../adapters/publish-queue.ts';
import {
  MAX_SNAPSHOT_TTL_SECONDS,
  parseRegistryName,
  type TrustedOperator,
  type TrustedPublisher,
} from '../../index-builder/config.ts';
import { INCOMING_PREFIX } from '../../index-builder/layout.ts';
import { InfraError } from '../errors.ts';
import { stageFunction } from '../publishers.ts';

export interface PublishingPipelineProps {
  readonly uploadBucket: Bucket;
  readonly siteBucket: Bucket;
  readonly signingKey: ISecret;
  /** Folder with `publish/index.mjs` (infra/bundle-functions.ts). */
  readonly functionsDir: string;
  /** How often the snapshot is re-signed; keep it well under the snapshot lifetime. */
  readonly refreshEvery?: Duration;
  /** Registry name and snapshot lifetime used until a config object is uploaded (config/plugindex.json). */
  readonly registryName: string;
  readonly snapshotTtl: Duration;
  /**
   * Trusted publishers deployed with the functions (infra/publishers.ts): the registry is restricted to
   * them, whatever the config object in the bucket says. Open, first-come publishing when undefined.
   */
  readonly trustedPublishers?: readonly TrustedPublisher[];
  /** The operator's keys deployed with that list (infra/publishers.ts); only with `trustedPublishers`. */
  readonly trustedOperators?: readonly TrustedOperator[];
}

/**
 * A function's code asset: its bundle folder, plus the trust list when there is one. The list is added by
 * CDK's local bundling (no Docker), and the asset is hashed from that output, so a changed list deploys.
 */
function functionCode(
  bundleDir: string,
  publishers: readonly TrustedPublisher[] | undefined,
  operators: readonly TrustedOperator[] = [],
): Code {
  if (!publishers) return Code.fromAsset(bundleDir);
  return Code.fromAsset(bundleDir, {
    assetHashType: AssetHashType.OUTPUT,
    bundling: {
      // Required by the type, never pulled: local bundling below always succeeds.
      image: DockerImage.fromRegistry('plugindex-local-bundling-only'),
      local: {
        tryBundle(outputDir: string): boolean {
          stageFunction(bundleDir, outputDir, publishers, operators);
          return true;
        },
      },
    },
  });
}

/**
 * The registry defaults the function takes from its environment, checked at synth by the rules the function
 * checks them by at cold start (functions/env.ts): a deploy never starts from a setting its function then
 * refuses on every invocation. The snapshot's lifetime must also span two refreshes, so one refresh that
 * fails (retried after the queue's visibility timeout) does not let a quiet registry's snapshot expire; an
 * hour against the 6-hour schedule left it expired, to every client, five hours in six.
 * @throws InfraError CONTEXT_INVALID
 */
function checkRegistryDefaults(props: PublishingPipelineProps, refreshEvery: Duration): void {
  const ttl = props.snapshotTtl.toSeconds();
  const refresh = refreshEvery.toSeconds();
  const least = minSnapshotTtlSeconds(refresh);
  if (!Number.isInteger(ttl) || ttl < least || ttl > MAX_SNAPSHOT_TTL_SECONDS)
    throw new InfraError(
      'CONTEXT_INVALID',
      `snapshot lifetime (-c snapshotTtlSeconds): expected whole seconds from ${least} (two refreshes, one every ${refresh} s) to ${MAX_SNAPSHOT_TTL_SECONDS}, got ${ttl}`,
    );
  try {
    parseRegistryName(props.registryName);
  } catch (error) {
    throw new InfraError('CONTEXT_INVALID', `registry name (-c registryName): ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/** How often the schedule re-signs the snapshot, unless the props say otherwise. */
const DEFAULT_REFRESH = Duration.hours(6);

/** The publish function's timeout: Lambda's longest, for a rebuild of a large registry. */
const PUBLISH_TIMEOUT = Duration.minutes(15);

export class PublishingPipeline extends Construct {
  public readonly queue: Queue;
  public readonly deadLetterQueue: Queue;
  public readonly publishFunction: LambdaFn;
  /** The publish function's logs (JSON lines: functions/logger.ts). */
  public readonly publishLogs: LogGroup;

  constructor(scope: Construct, id: string, props: PublishingPipelineProps) {
    super(scope, id);
    const refreshEvery = props.refreshEvery ?? DEFAULT_REFRESH;
    checkRegistryDefaults(props, refreshEvery);
    this.deadLetterQueue = new Queue(this, 'DeadLetters', {
      fifo: true,
      enforceSSL: true,
      encryption: QueueEncryption.SQS_MANAGED,
      retentionPeriod: Duration.days(14),
    });
    Validations.of(this.deadLetterQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason: 'This queue is the dead-letter queue.',
    });
    this.queue = new Queue(this, 'Submissions', {
      fifo: true,
      contentBasedDeduplication: true,
      enforceSSL: true,
      encryption: QueueEncryption.SQS_MANAGED,
      // Six times the function's timeout, as Lambda's guide for SQS event sources asks: a message must not
      // come back while an invocation that holds it still runs (one throttled before it started, say),
      // or a second invocation would publish beside the first, and one snapshot undo the other.
      visibilityTimeout: Duration.minutes(PUBLISH_TIMEOUT.toMinutes() * 6),
      // The function reads the same constant: it answers no message failed at its last receipt.
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: PUBLISH_MAX_RECEIVES },
    });

    const environment = {
      INTAKE_BUCKET: props.uploadBucket.bucketName,
      SITE_BUCKET: props.siteBucket.bucketName,
      SIGNING_KEY_SECRET_ID: props.signingKey.secretArn,
      REGISTRY_NAME: props.registryName,
      SNAPSHOT_TTL_SECONDS: String(props.snapshotTtl.toSeconds()),
      // The schedule below, which only the stack knows: the function refuses a config object's snapshot
      // lifetime shorter than two of its intervals, as checkRegistryDefaults refuses the default here.
      SNAPSHOT_REFRESH_SECONDS: String(refreshEvery.toSeconds()),
      // Where the function makes the messages it answers failed visible again at once
      // (functions/message-visibility.ts). The stack's own queue, not one made from the record's
      // eventSourceARN: a URL is not spelled from an ARN alike in every partition and endpoint, and the
      // SDK resolves the endpoint from this one as it does for every other call.
      PUBLISH_QUEUE_URL: this.queue.queueUrl,
      NODE_OPTIONS: '--enable-source-maps',
    };
    const logGroup = new LogGroup(this, 'publishLogs', { retention: RetentionDays.THREE_MONTHS });
    this.publishLogs = logGroup;
    // A role of its own, whose only logs permission is this log group: CDK's default role carries AWS's
    // basic execution role, which writes every log group of the account, and this function parses every
    // publisher's upload.
    const role = new Role(this, 'PublishRole', { assumedBy: new ServicePrincipal('lambda.amazonaws.com') });
    const f = new LambdaFn(this, 'Publish', {
      role,
      runtime: Runtime.NODEJS_22_X,
      architecture: Architecture.ARM_64,
      handler: 'index.handler',
      code: functionCode(
        path.join(props.functionsDir, 'publish'),
        props.trustedPublishers,
        props.trustedOperators,
      ),
      // It holds a batch of bundles in memory (bounded in functions/handlers.ts).
      memorySize: 2048,
      timeout: PUBLISH_TIMEOUT,
      environment,
      logGroup,
      loggingFormat: LoggingFormat.JSON,
    });
    Validations.of(f).acknowledge({
      id: 'AwsSolutions-L1',
      reason: 'Pinned to Node.js 22, the runtime the bundles target and the tests run; moved deliberately.',
    });
    this.publishFunction = f;
    logGroup.grantWrite(f);
    props.signingKey.grantRead(f);
    // S3 by the actions the stores send (adapters/s3-store.ts) and nothing more: CDK's grantRead, grantPut
    // and grantDelete add s3:DeleteObjectVersion (in s3:DeleteObject*), object versions' reads, tags,
    // retention and legal holds. A delete of a version destroys for good what the buckets' versioning keeps
    // to undo a bad write, and this role handles every publisher's bytes.
    const grant = (actions: string[], resources: string[]): void =>
      f.addToRolePolicy(new PolicyStatement({ effect: Effect.ALLOW, actions, resources }));
    // The site: read and write (documents are replaced; versions are immutable, and deleted only when the
    // operator removes one: a lifecycle action, which deletes its files, under plugins/ only).
    const site = props.siteBucket;
    grant(['s3:ListBucket'], [site.bucketArn]);
    grant(['s3:GetObject', 's3:PutObject', 's3:AbortMultipartUpload'], [site.arnForObjects('*')]);
    grant(['s3:DeleteObject'], [site.arnForObjects('plugins/*')]);
    // The upload bucket, by folder: reads everything (incoming/, config/, state/, and the key rotations an
    // operator uploads under rotations/), records outcomes (a rotation's too, under status/), files
    // submissions away, and keeps its own state. It deletes what it took from incoming/ (only as it was
    // read: If-Match, which needs the read too) and in state/ (the log's intent records once done, the
    // catalog's journal once folded, a spill once read). Publishers' uploads are never deleted before they
    // are copied to processed/ or rejected/; an operator's rotation stays where it was uploaded (the
    // function never writes rotations/).
    const upload = props.uploadBucket;
    grant(['s3:ListBucket'], [upload.bucketArn]);
    grant(['s3:GetObject'], [upload.arnForObjects('*')]);
    grant(
      ['s3:PutObject', 's3:AbortMultipartUpload'],
      ['status/*', 'processed/*', 'rejected/*', 'state/*'].map((folder) => upload.arnForObjects(folder)),
    );
    for (const folder of [`${INCOMING_PREFIX}*`, 'state/*'])
      grant(['s3:DeleteObject'], [upload.arnForObjects(folder)]);
    // Partial batch responses: the function answers failed the messages whose uploads it left in incoming/
    // (stopped for time), so they come back and wake a later invocation, and deletes the rest; without them
    // it could leave none, and started a round with too little time left, which the timeout cut off whole.
    // The event source's grant (sqs:ReceiveMessage, sqs:ChangeMessageVisibility, sqs:DeleteMessage, ... on
    // this queue alone) is also what lets the function set those messages' visibility to 0 itself
    // (ChangeMessageVisibilityBatch is authorized as sqs:ChangeMessageVisibility), so that they come back at
    // once and not after the 90-minute visibility timeout: no grant of its own (test/infra/role.test.ts).
    this.publishFunction.addEventSource(
      new SqsEventSource(this.queue, { batchSize: 10, reportBatchItemFailures: true }),
    );
    // A message at its last receipt is done, not answered failed (the dead-letter queue, for an upload
    // waiting unharmed), and its uploads announced again by a fresh message on this queue
    // (functions/message-visibility.ts `announceAgain`): sqs:SendMessage on it alone, no other queue, no
    // other action (the queue is SQS-managed encryption: no KMS grant).
    grant(['sqs:SendMessage'], [this.queue.queueArn]);

    new Rule(this, 'UploadCreated', {
      description: 'plugindex: a submission landed under incoming/',
      eventPattern: {
        source: ['aws.s3'],
        detailType: ['Object Created'],
        detail: {
          bucket: { name: [props.uploadBucket.bucketName] },
          object: { key: [{ prefix: INCOMING_PREFIX }] },
        },
      },
      targets: [new SqsQueue(this.queue, { messageGroupId: PUBLISH_MESSAGE_GROUP })],
    });
    // The refresh runs in turn with the publishes, as a message of the same group: started beside a publish,
    // it would re-sign the snapshot it read before the publish committed, and undo it. The time it fired
    // makes each message its own to the queue's content-based deduplication.
    new Rule(this, 'RefreshSchedule', {
      description: 'plugindex: re-sign snapshot.json before it expires',
      schedule: Schedule.rate(refreshEvery),
      targets: [
        new SqsQueue(this.queue, {
          messageGroupId: PUBLISH_MESSAGE_GROUP,
          message: RuleTargetInput.fromObject({ ...REFRESH_REQUEST, at: EventField.time }),
        }),
      ],
    });

    // Object-level grants on the two registry buckets: the function reads, writes and deletes keys it cannot
    // know in advance (submissions, versions), in these buckets and nowhere else.
    const logicalId = (bucket: Bucket): string =>
      Stack.of(this).getLogicalId(bucket.node.defaultChild as CfnBucket);
    const uploads = logicalId(props.uploadBucket);
    const findings = [
      `Resource::<${uploads}.Arn>/*`,
      ...['incoming', 'status', 'processed', 'rejected', 'state'].map(
        (folder) => `Resource::<${uploads}.Arn>/${folder}/*`,
      ),
      `Resource::<${logicalId(props.siteBucket)}.Arn>/*`,
      `Resource::<${logicalId(props.siteBucket)}.Arn>/plugins/*`,
    ];
    for (const finding of findings) {
      Validations.of(role).acknowledge({
        id: `AwsSolutions::AwsSolutions-IAM5[${finding}]`,
        reason:
          'Object-level access to the registry buckets only, by folder where the function needs no more: submission and version keys are not known in advance.',
      });
    }
  }

  /** Lets the publish function invalidate the distribution, and tells it its id and the registry's public URL. */
  connectDistribution(distributionArn: string, distributionId: string, registryUrl: string): void {
    const f = this.publishFunction;
    f.addEnvironment('REGISTRY_URL', registryUrl);
    f.addToRolePolicy(
      new PolicyStatement({
        effect: Effect.ALLOW,
        actions: ['cloudfront:CreateInvalidation'],
        resources: [distributionArn],
      }),
    );
    f.addEnvironment('DISTRIBUTION_ID', distributionId);
  }
}
