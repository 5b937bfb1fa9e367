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

/**
 * The links of the SDK's default credential chain (credential-provider-node's `defaultProvider`) that read a
 * profile (`fromIni`), SSO (`fromSSO`), a credential process (`fromProcess`) or a web identity token
 * (`fromTokenFile`), each by the package it imports when the chain reaches it, and the export it takes.
 */
const PROFILE_LINKS: Readonly<Record<string, string>> = {
  '@aws-sdk/credential-provider-ini': 'fromIni',
  '@aws-sdk/credential-provider-sso': 'fromSSO',
  '@aws-sdk/credential-provider-process': 'fromProcess',
  '@aws-sdk/credential-provider-web-identity': 'fromTokenFile',
};
const LEFT_OUT = 'credential-link-left-out';

/**
 * Leaves those links out: Lambda gives a function its role's keys in its environment (AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), which the chain reads first, and has none of what they read (no
 * profile files, no SSO settings, no token file), so they never ran; they came with the STS, SSO, SSO-OIDC
 * and sign-in clients they build, some 94 KB of each bundle. Each is now a link that finds nothing, as it
 * answered there: a CredentialsProviderError that lets the chain go on (`tryNextLink`), to the remote link
 * (container or instance credentials), which stays, and then to the SDK's own "Could not load credentials
 * from any providers". The chain imports them with import(), which esbuild does not check against their
 * exports: `test/functions/bundle.test.ts` runs the chain through them to a container credentials endpoint.
 */
export const profileCredentialLinksLeftOut: Plugin = {
  name: 'profile-credential-links-left-out',
  setup(bundler) {
    const names = Object.keys(PROFILE_LINKS).map((name) => name.replaceAll('/', '\\/'));
    bundler.onResolve({ filter: new RegExp(`^(${names.join('|')})$`) }, (args) => ({
      path: args.path,
      namespace: LEFT_OUT,
      // CredentialsProviderError as the chain itself imports it.
      pluginData: args.resolveDir,
    }));
    bundler.onLoad({ filter: /.*/, namespace: LEFT_OUT }, (args) => ({
      resolveDir: args.pluginData as string,
      contents: `import { CredentialsProviderError } from '@smithy/core/config';
export const ${PROFILE_LINKS[args.path]} = (init = {}) => async () => {
  throw new CredentialsProviderError('${args.path} is not in this Lambda bundle', { logger: init.logger, tryNextLink: true });
};`,
    }));
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
    plugins: [coreWithoutSideEffects, profileCredentialLinksLeftOut],
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
