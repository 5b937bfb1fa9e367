/**
 * Alarms on what needs a person: parked submissions, failing functions, a queue that stopped draining, a
 * bounded function turning callers away, CloudFront invalidations that failed, a registry config refused
 * while the schedule's refresh alone goes on. Each notifies one SNS topic
 * of the stack's (`topic`), and an email address given at deploy (`-c alarmEmail=`) is subscribed to it:
 * an alarm with no action changed state in the console and told nobody.
 */
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Alarm, ComparisonOperator, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { Effect, PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import type { Function as LambdaFn } from 'aws-cdk-lib/aws-lambda';
import { FilterPattern, type ILogGroup, MetricFilter } from 'aws-cdk-lib/aws-logs';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { Queue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import {
  CONFIG_REFUSED_LOG,
  INVALIDATION_FAILED_LOG,
  LOGGED_ENTRY_STUCK_LOG,
  UPLOAD_NOT_ANNOUNCED_LOG,
} from '../../functions/logger.ts';
import { InfraError } from '../errors.ts';

/**
 * One address, as SNS's email protocol takes it: a local part and a dotted domain, nothing around them (a
 * list, a display name or a space would be subscribed as given, and never confirmed).
 */
const EMAIL =
  /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$/;

/**
 * `-c alarmEmail=ADDRESS` as the stack takes it: one email address, or undefined when unset.
 * @throws InfraError CONTEXT_INVALID for anything else, before anything is synthesized.
 * @example parseAlarmEmail('ops@example.org') // 'ops@example.org'
 */
export function parseAlarmEmail(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (value.length > 254 || !EMAIL.test(value))
    throw new InfraError(
      'CONTEXT_INVALID',
      `-c alarmEmail: expected one email address such as ops@example.org, got ${JSON.stringify(value)}`,
    );
  return value;
}

export interface RegistryAlarmsProps {
  readonly queue: Queue;
  readonly deadLetterQueue: Queue;
  readonly functions: readonly LambdaFn[];
  /** Functions with reserved concurrency: throttled invocations mean callers were turned away. */
  readonly bounded?: readonly LambdaFn[];
  /** Age of the oldest waiting submission that means publishing is stuck. */
  readonly maxQueueAge?: Duration;
  /**
   * The publish function's logs: an invalidation that failed is logged there (`invalidation failed`) and
   * the invocation succeeds, since a retry would find nothing left to invalidate, so no error alarm sees it;
   * so is a refused registry config under which the schedule's refresh alone proceeds (`registry config
   * refused: refreshing the snapshot only`).
   */
  readonly publishLogs?: ILogGroup;
  /** Subscribed to the alarm topic by email (SNS asks the address to confirm); checked by `parseAlarmEmail`. */
  readonly alarmEmail?: string;
}

/**
 * The publish function's log lines for a CloudFront invalidation that failed, for a registry config refused
 * while the refresh alone goes on, for an upload not announced again, and for a logged entry a flush or refresh
 * left uncounted (functions/logger.ts).
 */
export { CONFIG_REFUSED_LOG, INVALIDATION_FAILED_LOG, LOGGED_ENTRY_STUCK_LOG, UPLOAD_NOT_ANNOUNCED_LOG };

/** A function by its path below the stack ("Search/Function"): its own id alone can be just "Function". */
const where = (fn: LambdaFn): string => fn.node.path.split('/').slice(1).join('/');

export class RegistryAlarms extends Construct {
  public readonly alarms: Alarm[] = [];
  /** Every alarm's action: subscribe whoever must hear of them (`alarmEmail` does one address). */
  public readonly topic: Topic;

  constructor(scope: Construct, id: string, props: RegistryAlarmsProps) {
    super(scope, id);
    const alarmEmail = parseAlarmEmail(props.alarmEmail);
    const { account, partition, region } = Stack.of(this);
    // CloudWatch acting for this account's alarms only (the confused-deputy conditions it supports).
    const fromOurAlarms = {
      StringEquals: { 'aws:SourceAccount': account },
      ArnLike: { 'aws:SourceArn': `arn:${partition}:cloudwatch:${region}:${account}:alarm:*` },
    };
    // A key of the stack's, not SNS's AWS-managed one: CloudWatch may not use that key, and an alarm's
    // publish to a topic encrypted with it fails unseen.
    const key = new Key(this, 'TopicKey', {
      description: 'plugindex alarm topic',
      enableKeyRotation: true,
      // It encrypts notifications in flight, nothing kept: left behind by a deleted stack it would cost a
      // dollar a month for nothing (KMS still waits 30 days before the key is gone).
      removalPolicy: RemovalPolicy.DESTROY,
    });
    key.addToResourcePolicy(
      new PolicyStatement({
        effect: Effect.ALLOW,
        principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: fromOurAlarms,
      }),
    );
    this.topic = new Topic(this, 'Topic', { masterKey: key, enforceSSL: true });
    // The topic policy enforceSSL writes replaces SNS's default one: CloudWatch's publish is granted again,
    // for this account's alarms only.
    this.topic.addToResourcePolicy(
      new PolicyStatement({
        effect: Effect.ALLOW,
        principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [this.topic.topicArn],
        conditions: fromOurAlarms,
      }),
    );
    if (alarmEmail !== undefined) this.topic.addSubscription(new EmailSubscription(alarmEmail));
    const action = new SnsAction(this.topic);
    const add = (name: string, alarm: Omit<ConstructorParameters<typeof Alarm>[2], 'alarmName'>): void => {
      const made = new Alarm(this, name, { treatMissingData: TreatMissingData.NOT_BREACHING, ...alarm });
      made.addAlarmAction(action);
      this.alarms.push(made);
    };
    add('DeadLetters', {
      alarmDescription: 'Submissions failed repeatedly and wait in the dead-letter queue',
      metric: props.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5) }),
      threshold: 0,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
    });
    add('OldestSubmission', {
      alarmDescription: 'The oldest waiting submission is too old: publishing is stuck',
      metric: props.queue.metricApproximateAgeOfOldestMessage({ period: Duration.minutes(5) }),
      threshold: (props.maxQueueAge ?? Duration.minutes(30)).toSeconds(),
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
    });
    props.functions.forEach((fn, i) => {
      add(`FunctionErrors${i}`, {
        alarmDescription: `Errors in ${where(fn)}`,
        metric: fn.metricErrors({ period: Duration.minutes(5) }),
        threshold: 0,
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
      });
    });
    if (props.publishLogs) {
      // Pages and index documents stay cached at the edge as they were until their TTL, the publish done.
      const failures = new MetricFilter(this, 'InvalidationFailureLines', {
        logGroup: props.publishLogs,
        filterPattern: FilterPattern.stringValue('$.message', '=', INVALIDATION_FAILED_LOG),
        // The stack's own namespace: two registries in one account count apart.
        metricNamespace: `Plugindex/${Stack.of(this).stackName}`,
        metricName: 'InvalidationFailures',
        metricValue: '1',
      });
      add('InvalidationFailures', {
        alarmDescription: 'A CloudFront invalidation failed: the edge serves what it cached until its TTL',
        metric: failures.metric({ period: Duration.minutes(5), statistic: 'Sum' }),
        threshold: 0,
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
      });
      // The config object refused (a trusted key no signature by which is taken, a snapshot lifetime under
      // two refreshes, an object not JSON or refused at any other field): every publish fails (the error alarm fires only once one is tried), but the
      // schedule's refresh succeeds, logging the refusal, and alone it told nobody, while uploads waited.
      const refusals = new MetricFilter(this, 'ConfigRefusedLines', {
        logGroup: props.publishLogs,
        filterPattern: FilterPattern.stringValue('$.message', '=', CONFIG_REFUSED_LOG),
        metricNamespace: `Plugindex/${Stack.of(this).stackName}`,
        metricName: 'ConfigRefused',
        metricValue: '1',
      });
      add('ConfigRefused', {
        alarmDescription:
          'The registry config object is refused (not JSON, or a field refused: the log line names which): nothing is published until it is mended, only the snapshot is refreshed',
        metric: refusals.metric({ period: Duration.minutes(5), statistic: 'Sum' }),
        threshold: 0,
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
      });
    }
    if (props.publishLogs) {
      // An upload whose message was taken at its last receipt (done, not sent to the dead-letter queue) and
      // could not be announced again: it waits in incoming/ for whatever invocation comes next, the
      // schedule's refresh at the latest, and no message in the queue ages for OldestSubmission to see.
      const unannounced = new MetricFilter(this, 'UploadNotAnnouncedLines', {
        logGroup: props.publishLogs,
        filterPattern: FilterPattern.stringValue('$.message', '=', UPLOAD_NOT_ANNOUNCED_LOG),
        metricNamespace: `Plugindex/${Stack.of(this).stackName}`,
        metricName: 'UploadsNotAnnounced',
        metricValue: '1',
      });
      add('UploadsNotAnnounced', {
        alarmDescription:
          'An upload whose message reached its last receipt could not be announced again on the queue: it waits in incoming/ until the next invocation (the scheduled refresh at the latest); the log line names it',
        metric: unannounced.metric({ period: Duration.minutes(5), statistic: 'Sum' }),
        threshold: 0,
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
      });
    }
    if (props.publishLogs) {
      // A flush or the schedule's refresh renewed the snapshot over a logged entry no document shows, without
      // counting it (pipeline/stuck-entries.ts): the invocation succeeds, and the log head lags until a batch
      // publishes, applies or voids the entry; the line names it and what to do.
      const stuck = new MetricFilter(this, 'LoggedEntryStuckLines', {
        logGroup: props.publishLogs,
        filterPattern: FilterPattern.stringValue('$.message', '=', LOGGED_ENTRY_STUCK_LOG),
        metricNamespace: `Plugindex/${Stack.of(this).stackName}`,
        metricName: 'LoggedEntriesStuck',
        metricValue: '1',
      });
      add('LoggedEntriesStuck', {
        alarmDescription:
          'The snapshot was renewed without counting a logged entry no document shows (a batch failed or died past it): the log line names the entry and what to do',
        metric: stuck.metric({ period: Duration.minutes(5), statistic: 'Sum' }),
        threshold: 0,
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
      });
    }
    (props.bounded ?? []).forEach((fn, i) => {
      add(`FunctionThrottles${i}`, {
        alarmDescription: `${where(fn)} turned callers away at its concurrency bound`,
        metric: fn.metricThrottles({ period: Duration.minutes(5) }),
        threshold: 0,
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
      });
    });
  }
}
