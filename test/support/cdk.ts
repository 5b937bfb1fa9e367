/**
 * CDK Apps for the infra tests. An App given no `outdir` makes one in the OS temp folder (`cdk.out*`) when it
 * is constructed and never removes it; these synthesize into a folder of their own under the run's temporary
 * root, which the global teardown removes (global-setup.ts).
 */
import { mkdtempSync } from 'node:fs';
import path from 'node:path';
import { App, type AppProps } from 'aws-cdk-lib';
import { inject } from 'vitest';

/** A CDK App whose synth output goes under the run's temporary root: `testApp()` where a test wrote `new App()`. */
export function testApp(props: Omit<AppProps, 'outdir'> = {}): App {
  return new App({ ...props, outdir: mkdtempSync(path.join(inject('tempRoot'), 'cdk.out-')) });
}
