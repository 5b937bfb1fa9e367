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
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction, SqsQueue } from 'aws-cdk-lib/aws-events-targets';
import { Effect, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { Architecture, Code, Function as LambdaFn, LoggingFormat, Runtime } from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Bucket, CfnBucket } from 'aws-cdk-lib/aws-s3';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { PUBLISH_MESSAGE_GROUP } from '../../adapters/publish-queue.ts';
import type { TrustedOperator, TrustedPublisher } from '../../index-builder/config.ts';
import { INCOMING_PREFIX } from '../../index-builder/layout.ts';
import { stageFunction } from '../publishers.ts';

export interface PublishingPipelineProps {
  readonly uploadBucket: Bucket;
  readonly siteBucket: Bucket;
  readonly signingKey: ISecret;
  /** Folder with `publish/index.mjs` and `refresh/index.mjs` (infra/bundle-functions.ts). */
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

export class PublishingPipeline extends Construct {
  public readonly queue: Queue;
  public readonly deadLetterQueue: Queue;
  public readonly publishFunction: LambdaFn;
  public readonly refreshFunction: LambdaFn;

  constructor(scope: Construct, id: string, props: PublishingPipelineProps) {
    super(scope, id);
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
      // Longer than the function timeout, as SQS event sources require.
      visibilityTimeout: Duration.minutes(16),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: 5 },
    });

    const environment = {
      INTAKE_BUCKET: props.uploadBucket.bucketName,
      SITE_BUCKET: props.siteBucket.bucketName,
      SIGNING_KEY_SECRET_ID: props.signingKey.secretArn,
      REGISTRY_NAME: props.registryName,
      SNAPSHOT_TTL_SECONDS: String(props.snapshotTtl.toSeconds()),
      NODE_OPTIONS: '--enable-source-maps',
    };
    const fn = (name: 'publish' | 'refresh', timeout: Duration): LambdaFn => {
      const logGroup = new LogGroup(this, `${name}Logs`, { retention: RetentionDays.THREE_MONTHS });
      const f = new LambdaFn(this, name === 'publish' ? 'Publish' : 'Refresh', {
        runtime: Runtime.NODEJS_22_X,
        architecture: Architecture.ARM_64,
        handler: 'index.handler',
        code: functionCode(
          path.join(props.functionsDir, name),
          props.trustedPublishers,
          props.trustedOperators,
        ),
        // The publish function holds a batch of bundles in memory (bounded in functions/handlers.ts).
        memorySize: name === 'publish' ? 2048 : 512,
        timeout,
        environment,
        logGroup,
        loggingFormat: LoggingFormat.JSON,
      });
      Validations.of(f).acknowledge({
        id: 'AwsSolutions-L1',
        reason: 'Pinned to Node.js 22, the runtime the bundles target and the tests run; moved deliberately.',
      });
      props.signingKey.grantRead(f);
      // The site: read and write (documents are replaced; versions are immutable, and deleted only when the
      // operator removes one: below).
      props.siteBucket.grantRead(f);
      props.siteBucket.grantPut(f);
      return f;
    };
    this.publishFunction = fn('publish', Duration.minutes(15));
    this.refreshFunction = fn('refresh', Duration.minutes(5));
    // But for one thing: the operator's removal of a version (a lifecycle action) deletes its files, which
    // are under plugins/ only; the publish function alone takes actions.
    props.siteBucket.grantDelete(this.publishFunction, 'plugins/*');
    // The upload bucket, by folder. Publish: reads everything (incoming/, config/, state/, and the key
    // rotations an operator uploads under rotations/), records outcomes (a rotation's too, under status/),
    // files submissions away, keeps the catalog, and deletes only what it took from incoming/.
    // Publishers' uploads are never deleted before they are copied to processed/ or rejected/; an
    // operator's rotation stays where it was uploaded (the function never writes rotations/).
    const upload = props.uploadBucket;
    upload.grantRead(this.publishFunction);
    for (const folder of ['status/*', 'processed/*', 'rejected/*', 'state/*']) {
      upload.grantPut(this.publishFunction, folder);
    }
    upload.grantDelete(this.publishFunction, `${INCOMING_PREFIX}*`);
    // Refresh: reads the config and the catalog, writes the catalog's generation; no submission at all.
    upload.grantRead(this.refreshFunction, 'config/*');
    upload.grantRead(this.refreshFunction, 'state/*');
    upload.grantPut(this.refreshFunction, 'state/*');
    this.publishFunction.addEventSource(new SqsEventSource(this.queue, { batchSize: 10 }));

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
    new Rule(this, 'RefreshSchedule', {
      description: 'plugindex: re-sign snapshot.json before it expires',
      schedule: Schedule.rate(props.refreshEvery ?? Duration.hours(6)),
      targets: [new LambdaFunction(this.refreshFunction)],
    });

    // Object-level grants on the two registry buckets: the functions read, write and delete keys they cannot
    // know in advance (submissions, versions), in these buckets and nowhere else.
    const logicalId = (bucket: Bucket): string =>
      Stack.of(this).getLogicalId(bucket.node.defaultChild as CfnBucket);
    const uploads = logicalId(props.uploadBucket);
    const findings = [
      'Action::s3:GetObject*',
      'Action::s3:GetBucket*',
      'Action::s3:List*',
      'Action::s3:DeleteObject*',
      'Action::s3:Abort*',
      `Resource::<${uploads}.Arn>/*`,
      ...['incoming', 'status', 'processed', 'rejected', 'state', 'config'].map(
        (folder) => `Resource::<${uploads}.Arn>/${folder}/*`,
      ),
      `Resource::<${logicalId(props.siteBucket)}.Arn>/*`,
      `Resource::<${logicalId(props.siteBucket)}.Arn>/plugins/*`,
    ];
    for (const f of [this.publishFunction, this.refreshFunction]) {
      for (const finding of findings) {
        Validations.of(f).acknowledge({
          id: `AwsSolutions::AwsSolutions-IAM5[${finding}]`,
          reason:
            'Object-level access to the registry buckets only, by folder where the function needs no more: submission and version keys are not known in advance.',
        });
      }
    }
  }

  /** Lets both functions invalidate the distribution, and tells them its id and the registry's public URL. */
  connectDistribution(distributionArn: string, distributionId: string, registryUrl: string): void {
    for (const f of [this.publishFunction, this.refreshFunction]) {
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
}
