/**
 * Alarms on what needs a person: parked submissions, failing functions, a queue that stopped draining, a
 * bounded function turning callers away, CloudFront invalidations that failed.
 */
import { Duration, Stack } from 'aws-cdk-lib';
import { Alarm, ComparisonOperator, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import type { Function as LambdaFn } from 'aws-cdk-lib/aws-lambda';
import { FilterPattern, type ILogGroup, MetricFilter } from 'aws-cdk-lib/aws-logs';
import type { Queue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { INVALIDATION_FAILED_LOG } from '../../functions/logger.ts';

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
   * the invocation succeeds, since a retry would find nothing left to invalidate, so no error alarm sees it.
   */
  readonly publishLogs?: ILogGroup;
}

/** The publish function's log line for a CloudFront invalidation that failed (functions/logger.ts). */
export { INVALIDATION_FAILED_LOG };

/** A function by its path below the stack ("Search/Function"): its own id alone can be just "Function". */
const where = (fn: LambdaFn): string => fn.node.path.split('/').slice(1).join('/');

export class RegistryAlarms extends Construct {
  public readonly alarms: Alarm[] = [];

  constructor(scope: Construct, id: string, props: RegistryAlarmsProps) {
    super(scope, id);
    const add = (name: string, alarm: Omit<ConstructorParameters<typeof Alarm>[2], 'alarmName'>): void => {
      this.alarms.push(new Alarm(this, name, { treatMissingData: TreatMissingData.NOT_BREACHING, ...alarm }));
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
