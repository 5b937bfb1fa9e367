/**
 * Bundles the Lambda functions with esbuild, for the Node.js 22 runtime on arm64: one ESM file per
 * function, everything (AWS SDK included) inside, so a deploy pins exactly what the tests ran. The CDK
 * app (infra/app.ts) runs it at synth and deploys its output, and the integration tests run this very
 * output against a local S3 server. It is a build tool, so it lives with the infrastructure, not in
 * functions/ beside the code it bundles.
 */
import path from 'node:path';
import { build, type Metafile, type Plugin } from 'esbuild';

export const FUNCTIONS = {
  publish: 'functions/publish.ts',
  search: 'functions/search.ts',
} as const;
export type FunctionName = keyof typeof FUNCTIONS;

export interface BundleResult {
  /** Function name -> bundle file (`<outdir>/<name>/index.mjs`, the handler being `index.handler`). */
  readonly files: Readonly<Record<FunctionName, string>>;
  readonly bytes: Readonly<Record<FunctionName, number>>;
  readonly metafile: Metafile;
}

const CORE = path.resolve(import.meta.dirname, '../index-builder');
const RESOLVING = Symbol('resolving');

/**
 * Declares the core's modules free of side effects on import, which they are by rule (index-builder/
 * only declares and computes: no module does anything when it is loaded). esbuild then leaves out a core
 * module none of whose exports a function calls, with what it imports: the search function does not carry
 * the manifest parser, YAML, tar or the JSON Schema formats, which only publishing reaches.
 */
const coreWithoutSideEffects: Plugin = {
  name: 'core-without-side-effects',
  setup(bundler) {
    // Our own relative imports only; anything else is resolved as esbuild would without the plugin.
    bundler.onResolve({ filter: /^\.\.?\// }, async (args) => {
      if (args.pluginData === RESOLVING || args.importer.includes(`${path.sep}node_modules${path.sep}`))
        return undefined;
      const resolved = await bundler.resolve(args.path, {
        kind: args.kind,
        importer: args.importer,
        resolveDir: args.resolveDir,
        pluginData: RESOLVING,
      });
      if (resolved.errors.length > 0 || !resolved.path.startsWith(CORE + path.sep)) return undefined;
      return { path: resolved.path, sideEffects: false };
    });
  },
};

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
    // The AWS SDK ships ES modules (`module`) beside CommonJS (`main`), and esbuild picks `main` for Node.js
    // by default. Only ES modules can be cut to what a function calls: the CommonJS build of each client
    // is one file with every command and model, and the SDK's browser user-agent parser (bowser) rides along.
    mainFields: ['module', 'main'],
    plugins: [coreWithoutSideEffects],
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
