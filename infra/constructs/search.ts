/**
 * The search function: the spec's `GET /search?q=&provider=&type=&capability=` on AWS
 * (functions/search.ts), reached only through CloudFront. Its Function URL takes IAM auth, and the
 * distribution signs its requests with Origin Access Control (infra/constructs/distribution.ts), so the
 * URL itself answers nobody else. It reads two objects of the site bucket and nothing more: the snapshot
 * and the `search.json` it lists.
 */
import path from 'node:path';
import { Duration, Validations } from 'aws-cdk-lib';
import { Effect, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import {
  Architecture,
  Code,
  FunctionUrlAuthType,
  type IFunctionUrl,
  Function as LambdaFn,
  LoggingFormat,
  Runtime,
} from 'aws-cdk-lib/aws-lambda';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Bucket } from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { SEARCH_KEY, SNAPSHOT_KEY } from '../../index-builder/layout.ts';
import { InfraError } from '../errors.ts';

/**
 * `-c searchConcurrency=N` as the stack takes it: a whole number from 1 to 9999, or undefined when unset.
 * @throws InfraError CONTEXT_INVALID for anything else, before anything is synthesized.
 */
export function parseSearchConcurrency(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[1-9][0-9]{0,3}$/.test(value))
    throw new InfraError(
      'CONTEXT_INVALID',
      `-c searchConcurrency: expected a whole number from 1 to 9999, got ${JSON.stringify(value)}`,
    );
  return Number(value);
}

export interface SearchEndpointProps {
  readonly siteBucket: Bucket;
  /** Folder with `search/index.mjs` (infra/bundle-functions.ts). */
  readonly functionsDir: string;
  /**
   * At most this many searches run at once (the function's reserved concurrency); past it CloudFront
   * answers 503 until one ends. The endpoint is public and each query that misses the cache runs the
   * function, so this bounds what a flood of distinct queries costs. Unset: no reservation, since an
   * account whose concurrency quota is at its minimum cannot reserve any and the deploy would fail.
   */
  readonly reservedConcurrency?: number;
}

export class SearchEndpoint extends Construct {
  public readonly searchFunction: LambdaFn;
  public readonly url: IFunctionUrl;

  constructor(scope: Construct, id: string, props: SearchEndpointProps) {
    super(scope, id);
    const logGroup = new LogGroup(this, 'Logs', { retention: RetentionDays.THREE_MONTHS });
    // A role of its own, whose only logs permission is this log group: CDK's default role carries AWS's
    // basic execution role, which writes every log group of the account.
    const role = new Role(this, 'FunctionRole', { assumedBy: new ServicePrincipal('lambda.amazonaws.com') });
    this.searchFunction = new LambdaFn(this, 'Function', {
      role,
      runtime: Runtime.NODEJS_22_X,
      architecture: Architecture.ARM_64,
      handler: 'index.handler',
      code: Code.fromAsset(path.join(props.functionsDir, 'search')),
      // search.json is a few megabytes at 10,000 plugins; the memory buys CPU for ranking it.
      memorySize: 512,
      timeout: Duration.seconds(10),
      environment: { SITE_BUCKET: props.siteBucket.bucketName, NODE_OPTIONS: '--enable-source-maps' },
      logGroup,
      loggingFormat: LoggingFormat.JSON,
      ...(props.reservedConcurrency !== undefined
        ? { reservedConcurrentExecutions: props.reservedConcurrency }
        : {}),
    });
    Validations.of(this.searchFunction).acknowledge({
      id: 'AwsSolutions-L1',
      reason: 'Pinned to Node.js 22, the runtime the bundles target and the tests run; moved deliberately.',
    });
    logGroup.grantWrite(this.searchFunction);
    this.searchFunction.addToRolePolicy(
      new PolicyStatement({
        effect: Effect.ALLOW,
        actions: ['s3:GetObject'],
        resources: [SNAPSHOT_KEY, SEARCH_KEY].map((key) => props.siteBucket.arnForObjects(key)),
      }),
    );
    // Without the list permission S3 answers 403 for a key that is not there, where a registry that has
    // published nothing yet is a 503 (SEARCH_NOT_PUBLISHED), not a failure. The site's keys are public.
    this.searchFunction.addToRolePolicy(
      new PolicyStatement({
        effect: Effect.ALLOW,
        actions: ['s3:ListBucket'],
        resources: [props.siteBucket.bucketArn],
      }),
    );
    this.url = this.searchFunction.addFunctionUrl({ authType: FunctionUrlAuthType.AWS_IAM });
  }
}
