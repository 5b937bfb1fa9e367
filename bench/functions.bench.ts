/**
 * Cold-start cost of the Lambda functions: bundle size, and the time to import the bundle in a fresh Node
 * process (median of 7), which is what a cold start adds before the first event is handled.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { bundleFunctions, type FunctionName } from '../infra/bundle-functions.ts';
import { median } from './stats.ts';

const RUNS = 7;

const outdir = await mkdtemp(path.join(tmpdir(), 'plugindex-bench-bundle-'));
const bundle = await bundleFunctions(outdir);
const env = {
  ...process.env,
  INTAKE_BUCKET: 'b',
  SITE_BUCKET: 'b',
  SIGNING_KEY_SECRET_ID: 's',
  AWS_REGION: 'us-east-1',
};
console.log(`function bundles (esbuild, node22 ESM), import time in a fresh process, median of ${RUNS}:`);
for (const name of Object.keys(bundle.files) as FunctionName[]) {
  const url = pathToFileURL(bundle.files[name]).href;
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const out = execFileSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const t = performance.now(); await import(${JSON.stringify(url)}); console.log(performance.now() - t);`,
      ],
      // stderr dropped: the SDK warns on every import under Node.js 20, and the figure is the only output.
      { env, stdio: ['ignore', 'pipe', 'ignore'] },
    );
    times.push(Number(out.toString().trim()));
  }
  console.log(
    `  ${name.padEnd(8)} ${(bundle.bytes[name] / 1024).toFixed(0)} KiB, import ${median(times).toFixed(1)} ms`,
  );
}
await rm(outdir, { recursive: true, force: true });
