/** The buckets: uploads (private, publishers write incoming/ and read status/), the site, and access logs. */
import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership } from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';

export interface RegistryStorageProps {
  /** Days processed submissions are kept (their outcome records stay). */
  readonly processedRetentionDays?: number;
}

export class RegistryStorage extends Construct {
  public readonly uploadBucket: Bucket;
  public readonly siteBucket: Bucket;
  public readonly logBucket: Bucket;

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
      ],
    });
    this.siteBucket = new Bucket(this, 'Site', {
      ...common,
      serverAccessLogsBucket: this.logBucket,
      serverAccessLogsPrefix: 'site/',
      lifecycleRules: [{ noncurrentVersionExpiration: Duration.days(30) }],
    });
  }
}
