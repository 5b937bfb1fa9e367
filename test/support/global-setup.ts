/**
 * Builds the `plugindex` bundle (dist/cli/) from the source under test before any test file runs, so the
 * tests that spawn the command run what ships, never a bundle left from an earlier checkout. Makes the run's
 * temporary root (`inject('tempRoot')`), removed when the run ends: what a test cannot remove itself (a CDK
 * App's synth output, support/cdk.ts) goes there rather than into the OS temp folder, where a run left one
 * `cdk.out*` folder per synth.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { buildCli } from '../../build/cli.mjs';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A folder of the run's own, removed (with all in it) when the run ends. */
    tempRoot: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  await buildCli();
  const tempRoot = await mkdtemp(path.join(tmpdir(), 'plugindex-test-run-'));
  project.provide('tempRoot', tempRoot);
  return async () => {
    await rm(tempRoot, { recursive: true, force: true });
  };
}
