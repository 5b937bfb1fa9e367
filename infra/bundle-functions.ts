/**
 * Bundles the Lambda functions with esbuild, for the Node.js 22 runtime on arm64: one ESM file per
 * function, everything (AWS SDK included) inside, so a deploy pins exactly what the tests ran. The CDK
 * app (infra/app.ts) runs it at synth and deploys its output, and the integration tests run this very
 * output against a local S3 server. It is a build tool, so it lives with the infrastructure, not in
 * functions/ beside the code it bundles.
 */
import path from 'node:path';
import { build, type Metafile } from 'esbuild';

export const FUNCTIONS = { publish: 'functions/publish.ts', refresh: 'functions/refresh.ts' } as const;
export type FunctionName = keyof typeof FUNCTIONS;

export interface BundleResult {
  /** Function name -> bundle file (`<outdir>/<name>/index.mjs`, the handler being `index.handler`). */
  readonly files: Readonly<Record<FunctionName, string>>;
  readonly bytes: Readonly<Record<FunctionName, number>>;
  readonly metafile: Metafile;
}

export async function bundleFunctions(outdir: string): Promise<BundleResult> {
  const result = await build({
    entryPoints: Object.fromEntries(
      Object.entries(FUNCTIONS).map(([name, entry]) => [`${name}/index`, entry]),
    ),
    outdir,
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'esm',
    outExtension: { '.js': '.mjs' },
    minify: true,
    sourcemap: false,
    legalComments: 'none',
    metafile: true,
    logLevel: 'silent',
    // CommonJS dependencies bundled into ESM still call require() for Node built-ins; give them one.
    // openpgp's own createRequire(import.meta.url) works as is, since the output stays ESM.
    banner: {
      js: "import { createRequire as __plugindexRequire } from 'node:module'; const require = __plugindexRequire(import.meta.url);",
    },
  });
  const files = {} as Record<FunctionName, string>;
  const bytes = {} as Record<FunctionName, number>;
  for (const [output, info] of Object.entries(result.metafile.outputs)) {
    const name = Object.keys(FUNCTIONS).find((n) => output.endsWith(`${n}/index.mjs`)) as
      | FunctionName
      | undefined;
    if (!name) continue;
    files[name] = path.resolve(output);
    bytes[name] = info.bytes;
  }
  return { files, bytes, metafile: result.metafile };
}
