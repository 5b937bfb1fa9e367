/**
 * The CDK app (`npx cdk synth`, `npx cdk deploy`): bundles the functions, builds the stack from context,
 * and runs the cdk-nag AwsSolutions checks on every synth.
 *   -c domainName=plugins.example.com -c certificateArn=arn:aws:acm:us-east-1:...   (optional)
 *   -c stackName=Plugindex -c registryName="My Registry" -c snapshotTtlSeconds=604800  (optional)
 *   -c publishers=deploy/publishers.json   (optional: restrict publishing to these keys; infra/publishers.ts)
 *   -c searchConcurrency=10   (optional: at most this many /search answers computed at once)
 *   -c alarmEmail=ops@example.org   (optional: subscribed by email to the topic every alarm notifies)
 */
import path from 'node:path';
import { App, Duration, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { bundleFunctions } from './bundle-functions.ts';
import { parseAlarmEmail } from './constructs/alarms.ts';
import { parseSearchConcurrency } from './constructs/search.ts';
import { loadTrustList } from './publishers.ts';
import { PlugindexStack } from './stack.ts';

const app = new App();
const functionsDir = path.resolve(import.meta.dirname, '../dist/functions');
await bundleFunctions(functionsDir);
const context = (key: string): string | undefined => {
  const value = app.node.tryGetContext(key);
  return typeof value === 'string' && value !== '' ? value : undefined;
};
const registryName = context('registryName');
const snapshotTtlSeconds = context('snapshotTtlSeconds');
const domainName = context('domainName');
const certificateArn = context('certificateArn');
const publishersFile = context('publishers');
const searchConcurrency = parseSearchConcurrency(context('searchConcurrency'));
const alarmEmail = parseAlarmEmail(context('alarmEmail'));
const trust = publishersFile ? await loadTrustList(publishersFile) : undefined;
new PlugindexStack(app, context('stackName') ?? 'Plugindex', {
  functionsDir,
  ...(registryName ? { registryName } : {}),
  ...(snapshotTtlSeconds ? { snapshotTtl: Duration.seconds(Number(snapshotTtlSeconds)) } : {}),
  ...(domainName ? { domainName } : {}),
  ...(certificateArn ? { certificateArn } : {}),
  ...(searchConcurrency !== undefined ? { searchConcurrency } : {}),
  ...(alarmEmail !== undefined ? { alarmEmail } : {}),
  ...(trust ? { trustedPublishers: trust.publishers, trustedOperators: trust.operators } : {}),
});
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
