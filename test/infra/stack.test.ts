/**
 * The synthesized template: every security property the deployment promises, the cdk-nag AwsSolutions
 * checks with no unacknowledged finding, and a snapshot with asset hashes masked.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Duration, Stack, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { Bucket } from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MANIFEST_SIGNATURE_FILE } from '../../index-builder/layout.ts';
import { CORS_EXPOSED_HEADER_NAMES } from '../../index-builder/serving.ts';
import { bundleFunctions } from '../../infra/bundle-functions.ts';
import {
  CONFIG_REFUSED_LOG,
  INVALIDATION_FAILED_LOG,
  LOGGED_ENTRY_STUCK_LOG,
  parseAlarmEmail,
  UPLOAD_NOT_ANNOUNCED_LOG,
} from '../../infra/constructs/alarms.ts';
import { parseSearchConcurrency } from '../../infra/constructs/search.ts';
import { InfraError } from '../../infra/errors.ts';
import { PlugindexStack } from '../../infra/stack.ts';
import { testApp } from '../support/cdk.ts';

let functionsDir: string;
let template: Template;
let stack: PlugindexStack;

beforeAll(async () => {
  functionsDir = await mkdtemp(path.join(tmpdir(), 'plugindex-infra-'));
  await bundleFunctions(functionsDir);
  const app = testApp();
  stack = new PlugindexStack(app, 'Plugindex', { functionsDir });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  app.synth(); // throws when a nag finding is not acknowledged
  template = Template.fromStack(stack);
});

afterAll(async () => {
  await rm(functionsDir, { recursive: true, force: true });
});

/** The publish function (the search function signs nothing and publishes nothing). */
type LambdaResource = { Properties: { Environment: { Variables: Record<string, unknown> } } };
function publishingFunctions(): LambdaResource[] {
  const functions = Object.entries(
    template.findResources('AWS::Lambda::Function', { Properties: { Runtime: 'nodejs22.x' } }),
  ).filter(([id]) => id.startsWith('Publishing'));
  expect(functions).toHaveLength(1);
  return functions.map(([, fn]) => fn as LambdaResource);
}

describe('when the stack is synthesized', () => {
  it('keeps every bucket private, encrypted and TLS-only', () => {
    const buckets = template.findResources('AWS::S3::Bucket');
    expect(Object.keys(buckets)).toHaveLength(3);
    for (const bucket of Object.values(buckets)) {
      expect(bucket.Properties.BucketEncryption).toBeDefined();
      expect(bucket.Properties.PublicAccessBlockConfiguration).toEqual({
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      });
    }
    const policies = template.findResources('AWS::S3::BucketPolicy');
    expect(Object.keys(policies)).toHaveLength(3);
    for (const policy of Object.values(policies)) {
      expect(JSON.stringify(policy.Properties.PolicyDocument)).toContain('"aws:SecureTransport":"false"');
    }
  });

  it('versions the upload and site buckets, sends upload events to EventBridge, and expires processed submissions', () => {
    template.resourcePropertiesCountIs(
      'AWS::S3::Bucket',
      { VersioningConfiguration: { Status: 'Enabled' } },
      2,
    );
    template.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: {
        Rules: Match.arrayWith([Match.objectLike({ Prefix: 'processed/', Status: 'Enabled' })]),
      },
    });
    // Parts of multipart uploads nobody completed (a publisher's dropped connection) do not linger.
    template.resourcePropertiesCountIs(
      'AWS::S3::Bucket',
      {
        LifecycleConfiguration: {
          Rules: Match.arrayWith([
            Match.objectLike({ AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 } }),
          ]),
        },
      },
      2,
    );
    template.hasResourceProperties('Custom::S3BucketNotifications', {
      NotificationConfiguration: { EventBridgeConfiguration: {} },
    });
  });

  it('serializes publishes through one FIFO message group, with a dead-letter queue, TLS-only', () => {
    template.resourcePropertiesCountIs('AWS::SQS::Queue', { FifoQueue: true }, 2);
    template.hasResourceProperties('AWS::SQS::Queue', {
      ContentBasedDeduplication: true,
      RedrivePolicy: { maxReceiveCount: 5 },
      // Six times the publish function's 15 minutes (Lambda's guide for SQS event sources): a message held
      // by an invocation never comes back to a second one while the first still runs.
      VisibilityTimeout: 5400,
    });
    template.hasResourceProperties('AWS::Lambda::Function', { Timeout: 900 });
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.s3'],
        'detail-type': ['Object Created'],
        detail: { object: { key: [{ prefix: 'incoming/' }] } },
      },
      Targets: [Match.objectLike({ SqsParameters: { MessageGroupId: 'publish' } })],
    });
    for (const policy of Object.values(template.findResources('AWS::SQS::QueuePolicy'))) {
      expect(JSON.stringify(policy.Properties.PolicyDocument)).toContain('"aws:SecureTransport":"false"');
    }
  });

  it('runs the two functions on Node.js 22 arm64, and re-signs the snapshot on a schedule, in turn with the publishes', () => {
    template.resourcePropertiesCountIs(
      'AWS::Lambda::Function',
      { Runtime: 'nodejs22.x', Architectures: ['arm64'], Handler: 'index.handler' },
      2,
    );
    // A refresh beside a publish would sign a snapshot from what it read before the publish committed: the
    // schedule sends its request into the publish queue's one group, never to a function of its own.
    const schedules = Object.values(
      template.findResources('AWS::Events::Rule', { Properties: { ScheduleExpression: 'rate(6 hours)' } }),
    );
    expect(schedules).toHaveLength(1);
    const [target] = (schedules[0]?.Properties.Targets ?? []) as {
      Arn: unknown;
      SqsParameters?: unknown;
      InputTransformer?: { InputTemplate: string };
    }[];
    expect(target?.Arn).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^PublishingSubmissions/), 'Arn'] });
    expect(target?.SqsParameters).toEqual({ MessageGroupId: 'publish' });
    expect(target?.InputTransformer?.InputTemplate).toContain('"plugindex":"refresh"');
    // The function answers failed the messages of the uploads it left for time (functions/handlers.ts): read
    // only with partial batch responses on, or the mapping deletes every message of a successful invocation.
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      BatchSize: 10,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
  });

  it('gives the functions the registry defaults and the distribution to invalidate', () => {
    for (const fn of publishingFunctions()) {
      const env = fn.Properties.Environment.Variables as Record<string, unknown>;
      expect(env).toMatchObject({
        REGISTRY_NAME: 'plugindex registry',
        SNAPSHOT_TTL_SECONDS: '604800',
        // The schedule's interval: the function refuses a config object's lifetime under two of them.
        SNAPSHOT_REFRESH_SECONDS: '21600',
        DISTRIBUTION_ID: expect.anything(),
        REGISTRY_URL: expect.anything(),
      });
      // The queue that invokes it, where it makes the messages it answers failed visible again at once.
      expect(env.PUBLISH_QUEUE_URL).toEqual({ Ref: expect.stringMatching(/^PublishingSubmissions/) });
    }
  });

  it('keeps the signing key out of environment variables and lets only the publish function read the secret', () => {
    for (const fn of publishingFunctions()) {
      const env = fn.Properties.Environment.Variables as Record<string, unknown>;
      expect(env.SIGNING_KEY_SECRET_ID).toEqual({ Ref: expect.stringMatching(/^SigningKeySecret/) });
      expect(JSON.stringify(env)).not.toMatch(/PGP|armored/i);
    }
    const readers = Object.entries(template.findResources('AWS::IAM::Policy')).filter(([, p]) =>
      JSON.stringify(p).includes('secretsmanager:GetSecretValue'),
    );
    expect(readers.map(([id]) => id).sort()).toEqual([expect.stringMatching(/^PublishingPublish/)]);
  });

  it('lets each function write its own log group and no other', () => {
    // AWS's AWSLambdaBasicExecutionRole grants logs:CreateLogGroup, CreateLogStream and PutLogEvents on every
    // log group of the account: a function made to run code of a publisher's (it parses every upload) or a
    // viewer's could write lines into any other's logs, or make groups no retention bounds.
    const functions = Object.entries(
      template.findResources('AWS::Lambda::Function', { Properties: { Runtime: 'nodejs22.x' } }),
    );
    expect(functions).toHaveLength(2);
    const roles = template.findResources('AWS::IAM::Role');
    const policies = Object.values(template.findResources('AWS::IAM::Policy'));
    for (const [id, fn] of functions) {
      const role = (fn.Properties.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
      expect(JSON.stringify(roles[role]?.Properties.ManagedPolicyArns ?? []), id).not.toContain(
        'AWSLambdaBasicExecutionRole',
      );
      const logs = policies
        .filter((p) => JSON.stringify(p.Properties.Roles).includes(`"${role}"`))
        .flatMap((p) => p.Properties.PolicyDocument.Statement as { Action: unknown; Resource: unknown }[])
        .filter((st) => JSON.stringify(st.Action).includes('logs:'));
      const group = (fn.Properties.LoggingConfig as { LogGroup: { Ref: string } }).LogGroup.Ref;
      expect(logs, id).toEqual([
        {
          Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
          Effect: 'Allow',
          Resource: { 'Fn::GetAtt': [group, 'Arn'] },
        },
      ]);
    }
  });

  it("keeps every function's logs for three months, CDK's bucket-notification helper's too", () => {
    // Left to Lambda, a function logs to a log group it makes itself, kept forever.
    const groups = template.findResources('AWS::Logs::LogGroup');
    const functions = Object.entries(template.findResources('AWS::Lambda::Function'));
    expect(functions).toHaveLength(3);
    for (const [id, fn] of functions) {
      const group = (fn.Properties.LoggingConfig as { LogGroup?: { Ref?: string } } | undefined)?.LogGroup
        ?.Ref;
      expect(group, id).toBeDefined();
      expect(groups[group as string]?.Properties.RetentionInDays, id).toBe(90);
    }
  });

  it('acknowledges no wildcard finding (cdk-nag IAM5) that no policy of the stack has', () => {
    // An acknowledgement left behind a grant since removed would let the grant come back unremarked.
    const allowed = new Set<string>();
    for (const type of ['AWS::IAM::Policy', 'AWS::IAM::ManagedPolicy'])
      for (const policy of Object.values(template.findResources(type)))
        for (const statement of policy.Properties.PolicyDocument.Statement as {
          Effect: string;
          Resource: unknown;
        }[]) {
          if (statement.Effect !== 'Allow') continue;
          for (const resource of [statement.Resource].flat()) {
            const join = (resource as { 'Fn::Join'?: [string, unknown[]] })['Fn::Join']?.[1];
            const arn = (join?.[0] as { 'Fn::GetAtt'?: [string, string] } | undefined)?.['Fn::GetAtt'];
            if (arn && typeof join?.[1] === 'string') allowed.add(`<${arn[0]}.${arn[1]}>${join[1]}`);
          }
        }
    const acknowledged = stack.node
      .findAll()
      .flatMap((c) => c.node.metadata)
      .filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((m) => Object.keys(m.data as Record<string, string>))
      .flatMap((id) => /^AwsSolutions::AwsSolutions-IAM5\[Resource::(.*)\]$/.exec(id)?.[1] ?? []);
    expect(acknowledged.length).toBeGreaterThan(0);
    expect(acknowledged.filter((finding) => !allowed.has(finding))).toEqual([]);
  });

  it('serves the site only through CloudFront: HTTPS, HTTP/2 and 3, compression, OAC, logs, headers, routing', () => {
    template.hasResourceProperties('AWS::CloudFront::Distribution', {
      DistributionConfig: Match.objectLike({
        HttpVersion: 'http2and3',
        Logging: Match.objectLike({ Prefix: 'cloudfront/' }),
        DefaultCacheBehavior: Match.objectLike({
          ViewerProtocolPolicy: 'https-only',
          Compress: true,
          FunctionAssociations: [
            Match.objectLike({ EventType: 'viewer-request' }),
            Match.objectLike({ EventType: 'viewer-response' }),
          ],
        }),
        CacheBehaviors: Match.arrayWith([
          Match.objectLike({
            PathPattern: 'plugins/*/*/*',
            ViewerProtocolPolicy: 'https-only',
            // Artifacts live here: their download headers are set by the viewer-response function.
            FunctionAssociations: [
              Match.objectLike({ EventType: 'viewer-request' }),
              Match.objectLike({ EventType: 'viewer-response' }),
            ],
          }),
        ]),
      }),
    });
    // One for the site bucket, one for the search function's URL.
    template.resourceCountIs('AWS::CloudFront::OriginAccessControl', 2);
    template.resourceCountIs('AWS::CloudFront::CachePolicy', 3);
    // Mutable documents are cached per ?v= (a client's content digest), and by no other query parameter;
    // and per normalized Accept-Encoding, which the routing function reads to pick a pre-compressed variant.
    template.hasResourceProperties('AWS::CloudFront::CachePolicy', {
      CachePolicyConfig: Match.objectLike({
        Comment: 'plugindex mutable documents',
        ParametersInCacheKeyAndForwardedToOrigin: Match.objectLike({
          QueryStringsConfig: { QueryStringBehavior: 'whitelist', QueryStrings: ['v'] },
          EnableAcceptEncodingBrotli: true,
          EnableAcceptEncodingGzip: true,
        }),
      }),
    });
    template.hasResourceProperties('AWS::CloudFront::CachePolicy', {
      CachePolicyConfig: Match.objectLike({
        Comment: 'plugindex immutable versioned files',
        ParametersInCacheKeyAndForwardedToOrigin: Match.objectLike({
          QueryStringsConfig: { QueryStringBehavior: 'none' },
        }),
      }),
    });
    template.resourceCountIs('AWS::CloudFront::Function', 3);
    template.hasResourceProperties('AWS::CloudFront::Function', {
      FunctionConfig: Match.objectLike({ Runtime: 'cloudfront-js-2.0' }),
      FunctionCode: Match.stringLikeRegexp('ARTIFACT_CSP'),
    });
    template.hasResourceProperties('AWS::CloudFront::Function', {
      FunctionCode: Match.stringLikeRegexp('index\\.json\\.br'),
    });
    template.hasResourceProperties('AWS::CloudFront::ResponseHeadersPolicy', {
      ResponseHeadersPolicyConfig: Match.objectLike({
        SecurityHeadersConfig: Match.objectLike({
          StrictTransportSecurity: Match.objectLike({
            AccessControlMaxAgeSec: 63072000,
            IncludeSubdomains: true,
          }),
          ContentTypeOptions: { Override: true },
          FrameOptions: { FrameOption: 'DENY', Override: true },
          ReferrerPolicy: Match.objectLike({ ReferrerPolicy: 'strict-origin-when-cross-origin' }),
          // Set per response by the viewer-response function instead (pages, data and artifacts differ).
          ContentSecurityPolicy: Match.absent(),
        }),
        // CORS likewise: a policy's added Access-Control-Allow-Origin to the pages as well as the documents.
        CorsConfig: Match.absent(),
      }),
    });
  });

  it('lets no response headers policy add Access-Control-Allow-Origin to a page: only behaviors that serve none have CORS', () => {
    // The default behavior serves pages and documents alike (`/plugins` is either, by Accept): its policy has
    // no CORS, and the viewer-response function, which reads the response's type, sends it on data alone.
    type Behavior = {
      PathPattern?: string;
      ResponseHeadersPolicyId: { Ref: string };
      FunctionAssociations: { EventType: string; FunctionARN: unknown }[];
    };
    const policies = template.findResources('AWS::CloudFront::ResponseHeadersPolicy');
    const cors = (behavior: Behavior) =>
      policies[behavior.ResponseHeadersPolicyId.Ref]?.Properties.ResponseHeadersPolicyConfig.CorsConfig;
    const functions = template.findResources('AWS::CloudFront::Function');
    const [headersId] =
      Object.entries(functions).find(([, f]) => String(f.Properties.FunctionCode).includes('ARTIFACT_CSP')) ??
      [];
    expect(headersId).toBeDefined();
    const distribution = Object.values(template.findResources('AWS::CloudFront::Distribution'))[0];
    const config = distribution?.Properties.DistributionConfig as {
      DefaultCacheBehavior: Behavior;
      CacheBehaviors: Behavior[];
    };
    expect(cors(config.DefaultCacheBehavior)).toBeUndefined();
    expect(config.CacheBehaviors.map((b) => b.PathPattern)).toEqual([
      `plugins/*/*/${MANIFEST_SIGNATURE_FILE}`,
      'plugins/*/*/*',
      'keys/*',
      '/search',
    ]);
    // Behaviors that serve no page: the policy's CORS covers their origin's 404s too, which no viewer-response
    // function sees (a client follows key rotations to the first keys/rotation/<n>.json that is not there).
    for (const behavior of config.CacheBehaviors)
      expect(cors(behavior), behavior.PathPattern).toMatchObject({
        AccessControlAllowOrigins: { Items: ['*'] },
        AccessControlAllowCredentials: false,
        // What the local server and the viewer-response function expose: a search answer's ETag, above all.
        AccessControlExposeHeaders: { Items: [...CORS_EXPOSED_HEADER_NAMES] },
      });
    expect(CORS_EXPOSED_HEADER_NAMES).toContain('ETag');
    for (const behavior of [config.DefaultCacheBehavior, ...config.CacheBehaviors])
      expect(behavior.FunctionAssociations).toContainEqual({
        EventType: 'viewer-response',
        FunctionARN: { 'Fn::GetAtt': [headersId, 'FunctionARN'] },
      });
  });

  it('lets OPTIONS reach every behavior, answered by its viewer-request function, and caches only GET and HEAD', () => {
    // CloudFront refused OPTIONS 403 where a behavior allowed GET and HEAD alone, so a browser page on another
    // origin could not pass a preflight for the data whose GET allows any origin; a response headers policy
    // only adds headers to an origin's answer, and S3 answers OPTIONS 403 without a bucket CORS configuration.
    type Behavior = {
      PathPattern?: string;
      AllowedMethods: string[];
      CachedMethods: string[];
      FunctionAssociations: { EventType: string; FunctionARN: { 'Fn::GetAtt': [string, string] } }[];
    };
    const functions = template.findResources('AWS::CloudFront::Function');
    const distribution = Object.values(template.findResources('AWS::CloudFront::Distribution'))[0];
    const config = distribution?.Properties.DistributionConfig as {
      DefaultCacheBehavior: Behavior;
      CacheBehaviors: Behavior[];
    };
    for (const behavior of [config.DefaultCacheBehavior, ...config.CacheBehaviors]) {
      const name = behavior.PathPattern ?? 'default';
      expect(behavior.AllowedMethods, name).toEqual(['GET', 'HEAD', 'OPTIONS']);
      expect(behavior.CachedMethods, name).toEqual(['GET', 'HEAD']);
      const onRequest = behavior.FunctionAssociations.find((f) => f.EventType === 'viewer-request');
      const code = String(functions[onRequest?.FunctionARN['Fn::GetAtt'][0] ?? '']?.Properties.FunctionCode);
      expect(code, name).toContain("request.method === 'OPTIONS'");
      expect(code, name).toContain('access-control-allow-methods');
    }
  });

  it('caches a manifest signature as a mutable document, ahead of the year its version folder gets', () => {
    // A key rotation signs every manifest again; under the immutable policy (a year, `?v=` ignored) a failed
    // invalidation left the retired key's signatures served, refused by every client holding the new key.
    const distribution = Object.values(template.findResources('AWS::CloudFront::Distribution'))[0];
    const config = distribution?.Properties.DistributionConfig as {
      DefaultCacheBehavior: { CachePolicyId: unknown };
      CacheBehaviors: { PathPattern: string; CachePolicyId: unknown; FunctionAssociations: unknown[] }[];
    };
    const patterns = config.CacheBehaviors.map((b) => b.PathPattern);
    const signatures = patterns.indexOf(`plugins/*/*/${MANIFEST_SIGNATURE_FILE}`);
    // Behaviors match in order: before plugins/*/*/*, which would take it otherwise.
    expect(signatures).toBeGreaterThanOrEqual(0);
    expect(signatures).toBeLessThan(patterns.indexOf('plugins/*/*/*'));
    const behavior = config.CacheBehaviors[signatures];
    expect(behavior?.CachePolicyId).toEqual(config.DefaultCacheBehavior.CachePolicyId);
    expect(behavior?.FunctionAssociations).toHaveLength(2);
    const [policyId] = Object.entries(template.findResources('AWS::CloudFront::CachePolicy')).find(
      ([, p]) => p.Properties.CachePolicyConfig.Comment === 'plugindex mutable documents',
    ) ?? [''];
    expect(behavior?.CachePolicyId).toEqual({ Ref: policyId });
  });

  it('sends /search to the search function through its own behavior: cached by every query parameter, briefly', () => {
    const distribution = Object.values(template.findResources('AWS::CloudFront::Distribution'))[0] as {
      Properties: {
        DistributionConfig: {
          CacheBehaviors: { PathPattern: string; TargetOriginId: string; [k: string]: unknown }[];
          Origins: { Id: string; [k: string]: unknown }[];
        };
      };
    };
    const config = distribution.Properties.DistributionConfig;
    const search = config.CacheBehaviors.find((b) => b.PathPattern === '/search');
    expect(search).toMatchObject({
      ViewerProtocolPolicy: 'https-only',
      AllowedMethods: ['GET', 'HEAD', 'OPTIONS'],
      Compress: true,
      // No viewer-request routing (/search is no key of the bucket), only OPTIONS answered; the data CSP on
      // the way out.
      FunctionAssociations: [
        expect.objectContaining({ EventType: 'viewer-request' }),
        expect.objectContaining({ EventType: 'viewer-response' }),
      ],
    });
    // Its origin is the function's URL, signed by an Origin Access Control for Lambda.
    const origin = config.Origins.find((o) => o.Id === search?.TargetOriginId);
    expect(JSON.stringify(origin?.DomainName)).toContain('FunctionUrl');
    expect(origin).toMatchObject({ OriginAccessControlId: expect.anything() });
    template.hasResourceProperties('AWS::CloudFront::OriginAccessControl', {
      OriginAccessControlConfig: Match.objectLike({ OriginAccessControlOriginType: 'lambda' }),
    });
    template.hasResourceProperties('AWS::Lambda::Url', { AuthType: 'AWS_IAM' });
    template.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunctionUrl',
      Principal: 'cloudfront.amazonaws.com',
    });
    template.hasResourceProperties('AWS::CloudFront::CachePolicy', {
      CachePolicyConfig: Match.objectLike({
        Comment: 'plugindex search answers, by query',
        DefaultTTL: 10,
        MaxTTL: 60,
        ParametersInCacheKeyAndForwardedToOrigin: Match.objectLike({
          QueryStringsConfig: { QueryStringBehavior: 'all' },
          HeadersConfig: { HeaderBehavior: 'none' },
        }),
      }),
    });
  });

  it('lets the search function read the snapshot and search.json of the site, and nothing else but list it', () => {
    const [id, fn] = Object.entries(
      template.findResources('AWS::Lambda::Function', { Properties: { Runtime: 'nodejs22.x' } }),
    ).find(([key]) => key.startsWith('Search')) as [string, { Properties: Record<string, unknown> }];
    expect(fn.Properties.Environment).toEqual({
      Variables: {
        SITE_BUCKET: { Ref: expect.stringMatching(/^StorageSite/) },
        NODE_OPTIONS: expect.any(String),
      },
    });
    const statements = Object.entries(template.findResources('AWS::IAM::Policy'))
      .filter(([policyId]) => policyId.startsWith('Search'))
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as { Action: unknown; Resource: unknown }[])
      .filter((st) => !JSON.stringify(st.Action).includes('logs:'));
    expect(statements.map((st) => st.Action)).toEqual(['s3:GetObject', 's3:ListBucket']);
    const resources = JSON.stringify(statements[0]?.Resource);
    expect(resources).toContain('"/snapshot.json"');
    expect(resources).toContain('"/search.json"');
    expect(resources).not.toContain('*');
    // The bucket itself, for S3 to answer 404 (not 403) for a snapshot not published yet.
    expect(statements[1]?.Resource).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^StorageSite/), 'Arn'] });
    expect(id).toMatch(/^SearchFunction/);
  });

  it('gives the publish function the bucket folders it needs: delete only in incoming/ and state/, and plugins/ of the site (removal)', () => {
    const statementsOf = (prefix: string) =>
      Object.entries(template.findResources('AWS::IAM::Policy'))
        .filter(([id]) => id.startsWith(prefix))
        .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as { Action: unknown; Resource: unknown }[])
        .filter((s) => JSON.stringify(s.Action).includes('s3:'));
    const folders = (statements: { Resource: unknown }[]) =>
      [...JSON.stringify(statements.map((st) => st.Resource)).matchAll(/"\/([a-z]+)\/\*"/g)]
        .map((m) => m[1])
        .sort();
    const deletes = (statements: { Action: unknown; Resource: unknown }[]) =>
      statements.filter((st) => JSON.stringify(st.Action).includes('s3:DeleteObject'));

    const publish = statementsOf('PublishingPublish');
    const publishDeletes = deletes(publish).map((st) => JSON.stringify(st.Resource));
    expect(publishDeletes).toHaveLength(3);
    // Submissions once filed away, its own state once done with (intent records, the catalog's journal, a
    // spill), and the files of a version the operator removed: nothing else.
    expect(publishDeletes.filter((r) => /StorageUploads.*\/incoming\/\*/.test(r))).toHaveLength(1);
    expect(publishDeletes.filter((r) => /StorageUploads.*\/state\/\*/.test(r))).toHaveLength(1);
    const siteDeletes = publishDeletes.filter((r) => r.includes('StorageSite'));
    expect(siteDeletes).toHaveLength(1);
    expect(siteDeletes[0]).toMatch(/"\/plugins\/\*"/);
    expect(new Set(folders(publish))).toEqual(
      new Set(['incoming', 'plugins', 'processed', 'rejected', 'state', 'status']),
    );
  });

  it('lets the publish function read the key rotations operators upload under rotations/, and record their outcomes', () => {
    const publish = Object.entries(template.findResources('AWS::IAM::Policy'))
      .filter(([id]) => id.startsWith('PublishingPublish'))
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as { Action: unknown; Resource: unknown }[]);
    const on = (action: string, folder: RegExp) =>
      publish.some(
        (st) => JSON.stringify(st.Action).includes(action) && folder.test(JSON.stringify(st.Resource)),
      );
    // Its read of the upload bucket covers every folder, rotations/ among them; outcomes go to status/.
    expect(on('s3:GetObject', /StorageUploads\w*","Arn"\]\},"\/\*"/)).toBe(true);
    expect(on('s3:PutObject', /StorageUploads\w*","Arn"\]\},"\/status\/\*"/)).toBe(true);
    expect(on('s3:PutObject', /\/rotations\//)).toBe(false);
  });

  it('lets the functions invalidate the distribution and nothing else in CloudFront', () => {
    const statements = Object.values(template.findResources('AWS::IAM::Policy')).flatMap(
      (p) => p.Properties.PolicyDocument.Statement as { Action: unknown; Resource: unknown }[],
    );
    const invalidations = statements.filter((s) => JSON.stringify(s.Action).includes('cloudfront:'));
    expect(invalidations).toHaveLength(1);
    for (const s of invalidations) expect(s.Action).toBe('cloudfront:CreateInvalidation');
  });

  it('alarms on the dead-letter queue, the oldest submission, function errors, failed invalidations, a refused config, an upload not announced again and a logged entry left stuck', () => {
    // Errors of the publish and search functions; no throttle alarm while nothing is bounded.
    template.resourceCountIs('AWS::CloudWatch::Alarm', 8);
    template.resourcePropertiesCountIs('AWS::CloudWatch::Alarm', { MetricName: 'Errors' }, 2);
    template.resourcePropertiesCountIs('AWS::CloudWatch::Alarm', { MetricName: 'Throttles' }, 0);
    expect(
      Object.values(template.findResources('AWS::Lambda::Function')).filter(
        (fn) => fn.Properties.ReservedConcurrentExecutions !== undefined,
      ),
    ).toEqual([]);
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateAgeOfOldestMessage',
      Threshold: 1800,
    });
    // A failed invalidation is logged, not thrown (a retry finds nothing left to invalidate): counted from
    // the publish function's own log group, by the line the handler writes.
    const publishLogs = Object.entries(template.findResources('AWS::Logs::LogGroup')).find(([id]) =>
      id.startsWith('PublishingpublishLogs'),
    )?.[0];
    expect(publishLogs).toBeDefined();
    template.hasResourceProperties('AWS::Logs::MetricFilter', {
      LogGroupName: { Ref: publishLogs },
      FilterPattern: `{ $.message = "${INVALIDATION_FAILED_LOG}" }`,
      MetricTransformations: [
        { MetricName: 'InvalidationFailures', MetricNamespace: 'Plugindex/Plugindex', MetricValue: '1' },
      ],
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'InvalidationFailures',
      Namespace: 'Plugindex/Plugindex',
      Statistic: 'Sum',
      Threshold: 0,
    });
  });

  /**
   * The publish function's log line `message` counted as `metricName` in its log group, and the one alarm
   * on that count, above 0, notifying the alarm topic.
   */
  function expectLogLineAlarm(message: string, metricName: string): void {
    const publishLogs = Object.keys(template.findResources('AWS::Logs::LogGroup')).find((id) =>
      id.startsWith('PublishingpublishLogs'),
    );
    expect(publishLogs).toBeDefined();
    template.hasResourceProperties('AWS::Logs::MetricFilter', {
      LogGroupName: { Ref: publishLogs },
      FilterPattern: `{ $.message = "${message}" }`,
      MetricTransformations: [
        { MetricName: metricName, MetricNamespace: 'Plugindex/Plugindex', MetricValue: '1' },
      ],
    });
    const [topicId] = Object.keys(template.findResources('AWS::SNS::Topic'));
    const alarms = Object.values(
      template.findResources('AWS::CloudWatch::Alarm', {
        Properties: { MetricName: metricName, Namespace: 'Plugindex/Plugindex' },
      }),
    );
    expect(alarms).toHaveLength(1);
    expect(alarms[0]?.Properties).toMatchObject({
      Statistic: 'Sum',
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
      AlarmActions: [{ Ref: topicId }],
    });
  }

  it("alarms on a refused registry config from the publish function's log line, notifying the alarm topic", () => {
    // The schedule's refresh alone proceeds under a refused config (functions/handlers.ts) and succeeds:
    // no error alarm saw the refusal, logged as an error line, while every upload waited.
    expectLogLineAlarm('registry config refused: refreshing the snapshot only', 'ConfigRefused');
    expect(CONFIG_REFUSED_LOG).toBe('registry config refused: refreshing the snapshot only');
  });

  it("alarms on an upload not announced again from the publish function's log line, notifying the alarm topic", () => {
    // A message at its last receipt is done, not sent to the dead-letter queue, and its upload announced
    // again (functions/message-visibility.ts); that send failed, the upload waits with nothing in the queue
    // for the age alarm to see: the error line is counted instead.
    expectLogLineAlarm(UPLOAD_NOT_ANNOUNCED_LOG, 'UploadsNotAnnounced');
  });

  it("alarms on a logged entry a flush or refresh left uncounted from the publish function's log line, notifying the alarm topic", () => {
    // The snapshot is renewed over a stuck publish or action without counting it (pipeline/stuck-entries.ts),
    // and the invocation succeeds: no error alarm sees the log head lagging until the entry is settled.
    expectLogLineAlarm(LOGGED_ENTRY_STUCK_LOG, 'LoggedEntriesStuck');
  });

  it('sends every alarm to one SNS topic of its own, encrypted with a rotated key CloudWatch may use, TLS-only', () => {
    // The alarms had no action: a state change showed in the console and told nobody.
    const topics = Object.entries(template.findResources('AWS::SNS::Topic'));
    expect(topics).toHaveLength(1);
    const [[topicId, topic]] = topics as [[string, { Properties: { KmsMasterKeyId?: unknown } }]];
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm'));
    expect(alarms).toHaveLength(8);
    for (const alarm of alarms) expect(alarm.Properties.AlarmActions).toEqual([{ Ref: topicId }]);
    // A key of the stack's, rotated (SNS's AWS-managed key is one CloudWatch may not use).
    const keyId = (topic.Properties.KmsMasterKeyId as { 'Fn::GetAtt'?: [string, string] })['Fn::GetAtt']?.[0];
    expect(keyId).toBeDefined();
    const key = template.findResources('AWS::KMS::Key')[keyId as string];
    expect(key?.Properties.EnableKeyRotation).toBe(true);
    expect(key?.Properties.KeyPolicy.Statement).toContainEqual(
      expect.objectContaining({
        Effect: 'Allow',
        Principal: { Service: 'cloudwatch.amazonaws.com' },
        Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
      }),
    );
    const policies = Object.values(template.findResources('AWS::SNS::TopicPolicy'));
    expect(policies).toHaveLength(1);
    const statements = policies[0]?.Properties.PolicyDocument.Statement as Record<string, unknown>[];
    expect(policies[0]?.Properties.Topics).toEqual([{ Ref: topicId }]);
    expect(statements).toContainEqual(
      expect.objectContaining({
        Effect: 'Deny',
        Action: 'sns:Publish',
        Condition: { Bool: { 'aws:SecureTransport': 'false' } },
      }),
    );
    expect(statements).toContainEqual(
      expect.objectContaining({
        Effect: 'Allow',
        Principal: { Service: 'cloudwatch.amazonaws.com' },
        Action: 'sns:Publish',
        Condition: expect.objectContaining({
          StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } },
        }),
      }),
    );
    // Nobody is subscribed unless asked; the output names the topic to subscribe to.
    template.resourceCountIs('AWS::SNS::Subscription', 0);
    expect(template.findOutputs('AlarmTopic').AlarmTopic?.Value).toEqual({ Ref: topicId });
  });

  it('subscribes -c alarmEmail to the alarm topic, every alarm of a bounded stack notifying it, cdk-nag clean', () => {
    const app = testApp();
    const emailed = new PlugindexStack(app, 'Emailed', {
      functionsDir,
      searchConcurrency: 3,
      alarmEmail: 'ops@example.org',
    });
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    app.synth(); // throws when a nag finding is not acknowledged
    const synthesized = Template.fromStack(emailed);
    const [topicId] = Object.keys(synthesized.findResources('AWS::SNS::Topic'));
    synthesized.resourceCountIs('AWS::SNS::Subscription', 1);
    synthesized.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'ops@example.org',
      TopicArn: { Ref: topicId },
    });
    const alarms = Object.values(synthesized.findResources('AWS::CloudWatch::Alarm'));
    expect(alarms).toHaveLength(9);
    for (const alarm of alarms) expect(alarm.Properties.AlarmActions).toEqual([{ Ref: topicId }]);
  });

  it('takes -c alarmEmail as one email address, and refuses anything else by code, at synth', () => {
    expect(parseAlarmEmail(undefined)).toBeUndefined();
    expect(parseAlarmEmail('ops@example.org')).toBe('ops@example.org');
    expect(parseAlarmEmail('first.last+alarms@mail.example.org')).toBe('first.last+alarms@mail.example.org');
    const refused = expect.objectContaining({ name: 'InfraError', code: 'CONTEXT_INVALID' });
    for (const bad of [
      '',
      'ops',
      'ops@',
      '@example.org',
      'ops@example',
      'ops@example.org,evil@evil.example',
      'Ops <ops@example.org>',
      ' ops@example.org',
      'ops@example.org\n',
      'ops@-example.org',
      `${'a'.repeat(65)}@example.org`,
    ]) {
      expect(() => parseAlarmEmail(bad), bad).toThrow(refused);
      expect(() => new PlugindexStack(testApp(), 'Refused', { functionsDir, alarmEmail: bad }), bad).toThrow(
        refused,
      );
    }
  });

  it('bounds the search function when asked, and alarms when it turns callers away', () => {
    const app = testApp();
    const bounded = Template.fromStack(
      new PlugindexStack(app, 'Bounded', { functionsDir, searchConcurrency: 7 }),
    );
    const reserved = Object.entries(bounded.findResources('AWS::Lambda::Function')).filter(
      ([, fn]) => fn.Properties.ReservedConcurrentExecutions !== undefined,
    );
    expect(
      reserved.map(([id, fn]) => [
        id.replace(/[0-9A-F]{8}$/, ''),
        fn.Properties.ReservedConcurrentExecutions,
      ]),
    ).toEqual([['SearchFunction', 7]]);
    bounded.resourcePropertiesCountIs('AWS::CloudWatch::Alarm', { MetricName: 'Throttles' }, 1);
    bounded.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'Throttles',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: reserved[0]?.[0] } }],
    });
  });

  it('refuses at synth a snapshot lifetime or registry name its publish function would refuse or outlive', () => {
    // They synthesized: 30 s and a bidi control failed every cold start (ENV_INVALID), and an hour against
    // the 6-hour refresh left a quiet registry's snapshot expired five hours in six.
    for (const props of [
      { snapshotTtl: Duration.seconds(30) },
      { snapshotTtl: Duration.hours(1) },
      { snapshotTtl: Duration.days(2), refreshEvery: Duration.days(1.5) },
      { snapshotTtl: Duration.days(3651) },
      { registryName: 'Registry\u202e' },
    ])
      expect(() => new PlugindexStack(testApp(), 'Refused', { functionsDir, ...props })).toThrow(
        expect.objectContaining({ name: 'InfraError', code: 'CONTEXT_INVALID' }),
      );
    expect(
      () => new PlugindexStack(testApp(), 'Taken', { functionsDir, snapshotTtl: Duration.hours(12) }),
    ).not.toThrow();
  });

  it('takes -c searchConcurrency as a whole number from 1 to 9999, and refuses anything else by code', () => {
    expect(parseSearchConcurrency(undefined)).toBeUndefined();
    expect(parseSearchConcurrency('1')).toBe(1);
    expect(parseSearchConcurrency('9999')).toBe(9999);
    for (const bad of ['0', '-1', '2.5', '10000', 'ten', '', ' 7', '07']) {
      let caught: unknown;
      try {
        parseSearchConcurrency(bad);
      } catch (error) {
        caught = error;
      }
      expect(caught, bad).toBeInstanceOf(InfraError);
      expect((caught as InfraError).code).toBe('CONTEXT_INVALID');
    }
  });

  it('gives publishers a policy to upload to incoming/ where nothing is, readably, no folder marker, and read status/, nothing more', () => {
    template.hasResourceProperties('AWS::IAM::ManagedPolicy', {
      PolicyDocument: {
        Statement: [
          Match.objectLike({
            Action: ['s3:PutObject', 's3:AbortMultipartUpload'],
            Resource: { 'Fn::Join': ['', [Match.anyValue(), '/incoming/*']] },
          }),
          Match.objectLike({
            Action: 's3:GetObject',
            Resource: { 'Fn::Join': ['', [Match.anyValue(), '/status/*']] },
          }),
          {
            Effect: 'Deny',
            Action: 's3:PutObject',
            Resource: { 'Fn::Join': ['', [Match.anyValue(), '/incoming/*']] },
            Condition: {
              StringNotEquals: { 's3:if-none-match': '*' },
              Bool: { 's3:ObjectCreationOperation': 'true' },
            },
          },
          // Uploads the publish function could not read: an archive class, a key of the publisher's own.
          {
            Effect: 'Deny',
            Action: 's3:PutObject',
            Resource: { 'Fn::Join': ['', [Match.anyValue(), '/incoming/*']] },
            Condition: {
              Null: { 's3:x-amz-storage-class': 'false' },
              StringNotEquals: { 's3:x-amz-storage-class': 'STANDARD' },
            },
          },
          {
            Effect: 'Deny',
            Action: 's3:PutObject',
            Resource: { 'Fn::Join': ['', [Match.anyValue(), '/incoming/*']] },
            Condition: { Null: { 's3:x-amz-server-side-encryption-customer-algorithm': 'false' } },
          },
          {
            Effect: 'Deny',
            Action: 's3:PutObject',
            Resource: { 'Fn::Join': ['', [Match.anyValue(), '/incoming/*']] },
            Condition: { Null: { 's3:x-amz-server-side-encryption-aws-kms-key-id': 'false' } },
          },
          // Folder markers (keys ending in `/`), which are no upload.
          {
            Effect: 'Deny',
            Action: 's3:PutObject',
            Resource: [
              { 'Fn::Join': ['', [Match.anyValue(), '/incoming/']] },
              { 'Fn::Join': ['', [Match.anyValue(), '/incoming/*/']] },
            ],
          },
        ],
      },
    });
  });

  it('names the outputs an operator needs', () => {
    const outputs = Object.keys(template.findOutputs('*'));
    expect(outputs).toEqual(
      expect.arrayContaining([
        'UploadBucket',
        'SiteBucket',
        'RegistryUrl',
        'SigningKeySecret',
        'AlarmTopic',
        'UploadExample',
      ]),
    );
  });

  it('matches the snapshot, asset hashes masked', () => {
    const json = JSON.stringify(template.toJSON(), null, 1).replace(/[0-9a-f]{64}(\.zip)?/g, '<asset-hash>');
    expect(json).toMatchSnapshot();
  });
});

describe('when a construct breaks an AwsSolutions rule', () => {
  it('fails the synth: the nag check can fail', () => {
    const app = testApp();
    const stack = new Stack(app, 'Bad');
    new Bucket(stack, 'Unlogged');
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    expect(() => app.synth()).toThrow();
  });
});
