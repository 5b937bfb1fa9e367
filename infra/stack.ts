/** The plugindex stack: one construct per concern; the stack only connects them and names the outputs. */
import { CfnOutput, type CfnResource, Duration, Stack, type StackProps, Validations } from 'aws-cdk-lib';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import type { TrustedOperator, TrustedPublisher } from '../index-builder/config.ts';
import { RegistryAlarms } from './constructs/alarms.ts';
import { RegistryDistribution } from './constructs/distribution.ts';
import { PublishingPipeline } from './constructs/publishing.ts';
import { SearchEndpoint } from './constructs/search.ts';
import { SigningKey } from './constructs/signing-key.ts';
import { RegistryStorage } from './constructs/storage.ts';

export interface PlugindexStackProps extends StackProps {
  /** Folder with the bundled functions (infra/bundle-functions.ts output). */
  readonly functionsDir: string;
  readonly domainName?: string;
  readonly certificateArn?: string;
  readonly refreshEvery?: Duration;
  readonly registryName?: string;
  /** How long a signed snapshot stays valid; the refresh schedule runs at a quarter of it at most. */
  readonly snapshotTtl?: Duration;
  /** Publishers the registry is restricted to (infra/publishers.ts); open, first-come when undefined. */
  readonly trustedPublishers?: readonly TrustedPublisher[];
  /** The operator's keys deployed with that list (infra/publishers.ts): who may sign every action. */
  readonly trustedOperators?: readonly TrustedOperator[];
  /** The search function's reserved concurrency (infra/constructs/search.ts); unset: none reserved. */
  readonly searchConcurrency?: number;
  /** Subscribed by email to the alarms' topic (infra/constructs/alarms.ts); unset: subscribe it yourself. */
  readonly alarmEmail?: string;
}

export class PlugindexStack extends Stack {
  constructor(scope: Construct, id: string, props: PlugindexStackProps) {
    super(scope, id, props);
    const storage = new RegistryStorage(this, 'Storage');
    const key = new SigningKey(this, 'SigningKey');
    const pipeline = new PublishingPipeline(this, 'Publishing', {
      uploadBucket: storage.uploadBucket,
      siteBucket: storage.siteBucket,
      signingKey: key.secret,
      functionsDir: props.functionsDir,
      registryName: props.registryName ?? 'plugindex registry',
      snapshotTtl: props.snapshotTtl ?? Duration.days(7),
      ...(props.refreshEvery ? { refreshEvery: props.refreshEvery } : {}),
      ...(props.trustedPublishers ? { trustedPublishers: props.trustedPublishers } : {}),
      ...(props.trustedOperators ? { trustedOperators: props.trustedOperators } : {}),
    });
    const search = new SearchEndpoint(this, 'Search', {
      siteBucket: storage.siteBucket,
      functionsDir: props.functionsDir,
      ...(props.searchConcurrency !== undefined ? { reservedConcurrency: props.searchConcurrency } : {}),
    });
    const cdn = new RegistryDistribution(this, 'Distribution', {
      siteBucket: storage.siteBucket,
      logBucket: storage.logBucket,
      searchUrl: search.url,
      ...(props.domainName ? { domainName: props.domainName } : {}),
      ...(props.certificateArn ? { certificateArn: props.certificateArn } : {}),
    });
    const registryUrl = `https://${props.domainName ?? cdn.distribution.distributionDomainName}`;
    pipeline.connectDistribution(
      this.formatArn({
        service: 'cloudfront',
        region: '',
        resource: 'distribution',
        resourceName: cdn.distribution.distributionId,
      }),
      cdn.distribution.distributionId,
      registryUrl,
    );
    const alarms = new RegistryAlarms(this, 'Alarms', {
      queue: pipeline.queue,
      deadLetterQueue: pipeline.deadLetterQueue,
      functions: [pipeline.publishFunction, search.searchFunction],
      publishLogs: pipeline.publishLogs,
      ...(props.searchConcurrency !== undefined ? { bounded: [search.searchFunction] } : {}),
      ...(props.alarmEmail !== undefined ? { alarmEmail: props.alarmEmail } : {}),
    });

    // Our functions have roles of their own, each writing its own log group only. CDK's bucket-notification
    // helper (a deploy-time custom resource of the upload bucket's EventBridge setting) keeps the basic
    // execution role, which writes any log group: acknowledged on it alone, so no other role hides behind it.
    const notificationsHandler = this.node.children.find((child) =>
      child.node.id.startsWith('BucketNotificationsHandler'),
    );
    if (notificationsHandler) {
      Validations.of(notificationsHandler).acknowledge({
        id: 'AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
        reason:
          "CDK's own bucket-notification helper, run by CloudFormation at deploy time only, with no input from publishers or viewers.",
      });
      // Its logs are kept as long as our functions' are: left to Lambda, they went to a log group of its own
      // making, kept forever.
      const helperLogs = new LogGroup(this, 'BucketNotificationsLogs', {
        retention: RetentionDays.THREE_MONTHS,
      });
      (notificationsHandler.node.defaultChild as CfnResource).addPropertyOverride('LoggingConfig', {
        LogGroup: helperLogs.logGroupName,
      });
    }

    new CfnOutput(this, 'UploadBucket', {
      value: storage.uploadBucket.bucketName,
      description: 'Publishers upload bundles to incoming/ here',
    });
    new CfnOutput(this, 'SiteBucket', { value: storage.siteBucket.bucketName });
    new CfnOutput(this, 'PublisherPolicy', {
      value: storage.publisherPolicy.managedPolicyArn,
      description: 'Attach to publishers',
    });
    new CfnOutput(this, 'RegistryUrl', { value: registryUrl });
    new CfnOutput(this, 'SigningKeySecret', {
      value: key.secret.secretArn,
      description: 'Put {"armoredKey": ..., "passphrase": ...} here',
    });
    new CfnOutput(this, 'SubmissionQueueUrl', {
      value: pipeline.queue.queueUrl,
      description: 'plugindex rebuild --queue-url <this>',
    });
    new CfnOutput(this, 'AlarmTopic', {
      value: alarms.topic.topicArn,
      description: 'Every alarm notifies this topic: subscribe whoever must hear of them',
    });
    new CfnOutput(this, 'UploadExample', {
      // The publisher policy takes only an upload where none is: `aws s3 cp` sends no If-None-Match.
      value: `aws s3api put-object --bucket ${storage.uploadBucket.bucketName} --key incoming/my-plugin.tgz --body my-plugin.tgz --if-none-match '*'`,
    });
  }
}
