/** The buckets: uploads (private, publishers write incoming/ and read status/), the site, and access logs. */
import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { Effect, ManagedPolicy, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import {
  BlockPublicAccess,
  Bucket,
  BucketEncryption,
  type CfnBucket,
  ObjectOwnership,
} from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { INCOMING_PREFIX } from '../../index-builder/layout.ts';

export interface RegistryStorageProps {
  /** Days processed submissions are kept (their outcome records stay). */
  readonly processedRetentionDays?: number;
}

export class RegistryStorage extends Construct {
  public readonly uploadBucket: Bucket;
  public readonly siteBucket: Bucket;
  public readonly logBucket: Bucket;
  /** Attach to publishers' roles or users: upload to incoming/, read outcomes in status/, nothing else. */
  public readonly publisherPolicy: ManagedPolicy;

  constructor(scope: Construct, id: string, props: RegistryStorageProps = {}) {
    super(scope, id);
    const common = {
      encryption: BucketEncryption.S3_MANAGED,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      versioned: true,
      removalPolicy: RemovalPolicy.RETAIN,
    };
    this.logBucket = new Bucket(this, 'Logs', {
      ...common,
      versioned: false,
      // CloudFront standard logs are delivered with ACLs.
      objectOwnership: ObjectOwnership.BUCKET_OWNER_PREFERRED,
      lifecycleRules: [{ expiration: Duration.days(365) }],
    });
    Validations.of(this.logBucket).acknowledge({
      id: 'AwsSolutions-S1',
      reason: 'This is the access-log bucket itself; logging it into itself would loop.',
    });
    this.uploadBucket = new Bucket(this, 'Uploads', {
      ...common,
      // Uploads under incoming/ reach the publish function through EventBridge.
      eventBridgeEnabled: true,
      serverAccessLogsBucket: this.logBucket,
      serverAccessLogsPrefix: 'uploads/',
      lifecycleRules: [
        { prefix: 'processed/', expiration: Duration.days(props.processedRetentionDays ?? 90) },
        { prefix: 'rejected/', expiration: Duration.days(props.processedRetentionDays ?? 90) },
        { noncurrentVersionExpiration: Duration.days(30) },
        // Large bundles go up in parts: parts of an upload nobody completed or aborted are dropped.
        { abortIncompleteMultipartUploadAfter: Duration.days(7) },
      ],
    });
    // A publisher's PutObject to incoming/ refused under `conditions` (an explicit deny, which no grant lifts).
    const denyIncomingPut = (conditions: Record<string, Record<string, string>>): PolicyStatement =>
      new PolicyStatement({
        effect: Effect.DENY,
        actions: ['s3:PutObject'],
        resources: [this.uploadBucket.arnForObjects(`${INCOMING_PREFIX}*`)],
        conditions,
      });
    this.publisherPolicy = new ManagedPolicy(this, 'PublisherPolicy', {
      description: 'plugindex publishers: upload submissions and read their outcomes',
      statements: [
        new PolicyStatement({
          // Abort: a multipart upload that fails cleans up after itself.
          actions: ['s3:PutObject', 's3:AbortMultipartUpload'],
          resources: [this.uploadBucket.arnForObjects(`${INCOMING_PREFIX}*`)],
        }),
        new PolicyStatement({
          actions: ['s3:GetObject'],
          resources: [this.uploadBucket.arnForObjects('status/*')],
        }),
        // An upload only where no object is (`If-None-Match: *`, which S3 checks as part of the write): a
        // publisher may not replace another's upload still waiting under its key, which would then never
        // be judged nor have an outcome. The condition is on the writes that make the object (PutObject,
        // CompleteMultipartUpload); a multipart upload's other steps take no conditional header. The value
        // must be exactly `*` (StringNotEquals compares literally, and holds where the header is absent):
        // asking only that the header be there let `If-None-Match: "<etag>"` through, a write that is not
        // create-only, leaving it to S3's answer to a value it documents no meaning for.
        denyIncomingPut({
          StringNotEquals: { 's3:if-none-match': '*' },
          Bool: { 's3:ObjectCreationOperation': 'true' },
        }),
        // An upload the publish function can read: an archive storage class (GLACIER, DEEP_ARCHIVE: a GET
        // answers 403 InvalidObjectState) or a key of the publisher's own (SSE-C, or a KMS key the
        // function's role cannot use) made every batch fail on it, and the queue redeliver it without end:
        // one publisher's upload held every other's. Asked for on the write that names them (PutObject,
        // CreateMultipartUpload); the bucket's default encryption needs no header.
        denyIncomingPut({
          Null: { 's3:x-amz-storage-class': 'false' },
          StringNotEquals: { 's3:x-amz-storage-class': 'STANDARD' },
        }),
        denyIncomingPut({ Null: { 's3:x-amz-server-side-encryption-customer-algorithm': 'false' } }),
        denyIncomingPut({ Null: { 's3:x-amz-server-side-encryption-aws-kms-key-id': 'false' } }),
        // No key ending in `/`: the empty "folder markers" S3 consoles and tools make are no upload, and the
        // publish function passed them over and left them there, each one a message that woke it for
        // nothing and a key every later listing of incoming/ read again. IAM's `*` matches any run of
        // characters, `/` among them: `incoming/*/` is every such key below incoming/, and `incoming/` the
        // folder's own marker.
        new PolicyStatement({
          effect: Effect.DENY,
          actions: ['s3:PutObject'],
          resources: [
            this.uploadBucket.arnForObjects(INCOMING_PREFIX),
            this.uploadBucket.arnForObjects(`${INCOMING_PREFIX}*/`),
          ],
        }),
      ],
    });
    const uploads = Stack.of(this).getLogicalId(this.uploadBucket.node.defaultChild as CfnBucket);
    for (const prefix of ['incoming', 'status']) {
      Validations.of(this.publisherPolicy).acknowledge({
        id: `AwsSolutions::AwsSolutions-IAM5[Resource::<${uploads}.Arn>/${prefix}/*]`,
        reason:
          'Publishers choose their submission file names: incoming/* to write, status/* to read their outcomes; nothing else.',
      });
    }
    this.siteBucket = new Bucket(this, 'Site', {
      ...common,
      serverAccessLogsBucket: this.logBucket,
      serverAccessLogsPrefix: 'site/',
      lifecycleRules: [
        { noncurrentVersionExpiration: Duration.days(30) },
        { abortIncompleteMultipartUploadAfter: Duration.days(7) },
      ],
    });
  }
}
