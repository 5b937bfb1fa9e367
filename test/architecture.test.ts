/**
 * The import rules of the house (ARCHITECTURE.md), read from the real import graph: esbuild resolves every
 * source file's imports, static and dynamic, exactly as the bundles do, so no rule can be dodged by how an
 * import is spelled. Each rule is also run once against a graph that breaks it, so none passes vacuously.
 */
import { execFileSync } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { isBuiltin } from 'node:module';
import path from 'node:path';
import { build } from 'esbuild';
import { beforeAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '..');
const SOURCE_FOLDERS = ['index-builder', 'adapters', 'client', 'functions', 'infra', 'cli'] as const;

/** One import: from a source file (relative to the root) to a source file, a package or a built-in. */
interface Edge {
  readonly from: string;
  readonly to: string;
  readonly dynamic: boolean;
}

async function sourceFiles(): Promise<string[]> {
  const files: string[] = [];
  for (const folder of SOURCE_FOLDERS) {
    const entries = await readdir(path.join(ROOT, folder), { recursive: true }).catch(() => [] as string[]);
    for (const entry of entries) {
      if (/\.(ts|mts)$/.test(entry) && !entry.endsWith('.d.ts')) files.push(path.join(folder, entry));
    }
  }
  return files.sort();
}

async function importGraph(files: readonly string[]): Promise<Edge[]> {
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: [...files],
    bundle: true,
    write: false,
    metafile: true,
    platform: 'node',
    format: 'esm',
    outdir: 'out',
    splitting: true,
    // Packages stay packages: the graph shows which folder imports which package, not their insides.
    packages: 'external',
    logLevel: 'silent',
  });
  const edges: Edge[] = [];
  for (const [from, input] of Object.entries(result.metafile.inputs)) {
    for (const imported of input.imports) {
      edges.push({ from, to: imported.path, dynamic: imported.kind === 'dynamic-import' });
    }
  }
  return edges;
}

type Rule = (edge: Edge) => string | undefined;

const under = (file: string, folder: string): boolean => file === folder || file.startsWith(`${folder}/`);
const isAwsSdk = (to: string): boolean => to.startsWith('@aws-sdk/');
/** What the pure core may use of Node.js: bytes, hashes and compression; never files, sockets or processes. */
const CORE_BUILTINS = new Set(['node:buffer', 'node:crypto', 'node:zlib']);
/** What the consumer client must never reach: the publisher's pipeline and everything only it uses. */
const PUBLISHER_ONLY = [
  'index-builder/pipeline',
  'index-builder/catalog.ts',
  'index-builder/bundle.ts',
  'index-builder/submission.ts',
  'index-builder/render',
  'index-builder/manifest',
];
/**
 * What of the publisher's manifest module the client may use: reading a manifest strictly (one meaning) and
 * validating it, pure functions both, for the plugins a client reads from a publisher's own folder
 * (client/folder-source.ts), which no registry has checked. Never `manifest/index.ts`, the bundle or the pipeline.
 */
const CLIENT_MAY_USE = new Set([
  'index-builder/manifest/json-scan.ts',
  'index-builder/manifest/parse.ts',
  'index-builder/manifest/parse-yaml.ts',
  'index-builder/manifest/validate.ts',
]);
/** The one client file that may import the AWS SDK (S3 only), for s3: folders and registries. */
const CLIENT_S3_TRANSPORT = 'client/transport/s3.ts';

/** Node's network modules and the one HTTP client package. */
const NETWORK = new Set([
  'node:http',
  'node:https',
  'node:net',
  'node:tls',
  'node:dns',
  'node:http2',
  'undici',
]);
const FILE_SYSTEM = new Set(['node:fs', 'node:fs/promises']);
const builtinName = (to: string): string => (isBuiltin(to) && !to.startsWith('node:') ? `node:${to}` : to);

const RULES: Readonly<Record<string, Rule>> = {
  'index-builder imports no file system, network or process module, and no AWS SDK': ({ from, to }) => {
    if (!under(from, 'index-builder')) return undefined;
    if (isAwsSdk(to)) return 'the AWS SDK';
    if (isBuiltin(to) && !CORE_BUILTINS.has(to.startsWith('node:') ? to : `node:${to}`))
      return `the built-in ${to}`;
    for (const app of ['adapters', 'client', 'functions', 'infra', 'cli'])
      if (under(to, app)) return `${app}/`;
    return undefined;
  },
  "only adapters/, functions/ and the client's s3 transport (S3 only) import the AWS SDK": ({ from, to }) =>
    isAwsSdk(to) &&
    !under(from, 'adapters') &&
    !under(from, 'functions') &&
    !(from === CLIENT_S3_TRANSPORT && to === '@aws-sdk/client-s3')
      ? to
      : undefined,
  // The SDK takes long to load: only an s3: URL may cost it, through the fetcher's dynamic import.
  'the client loads its s3 transport only lazily, from the fetcher': ({ from, to, dynamic }) =>
    to === CLIENT_S3_TRANSPORT && !(from === 'client/fetcher.ts' && dynamic) ? from : undefined,
  'cli/ and functions/ never import each other': ({ from, to }) =>
    (under(from, 'cli') && under(to, 'functions')) || (under(from, 'functions') && under(to, 'cli'))
      ? to
      : undefined,
  'adapters/ import only the core and packages': ({ from, to }) =>
    under(from, 'adapters') && ['client', 'functions', 'infra', 'cli'].some((app) => under(to, app))
      ? to
      : undefined,
  "client/ imports nothing of the publisher (but the manifest's pure reading and validation)": ({
    from,
    to,
  }) =>
    under(from, 'client') &&
    ((PUBLISHER_ONLY.some((p) => under(to, p)) && !CLIENT_MAY_USE.has(to)) ||
      ['functions', 'infra', 'cli'].some((app) => under(to, app)))
      ? to
      : undefined,
  'in client/, only fetcher.ts and client/transport/ touch the network': ({ from, to }) =>
    under(from, 'client') &&
    from !== 'client/fetcher.ts' &&
    !under(from, 'client/transport') &&
    NETWORK.has(builtinName(to))
      ? to
      : undefined,
  // The fetcher reads file: registries (a folder served as a registry), with the same caps as HTTP.
  'in client/, only client/disk/ (and the fetcher, for file: registries) touches the file system': ({
    from,
    to,
  }) =>
    under(from, 'client') &&
    !under(from, 'client/disk') &&
    from !== 'client/fetcher.ts' &&
    FILE_SYSTEM.has(builtinName(to))
      ? to
      : undefined,
};

function violations(edges: readonly Edge[], rule: Rule): string[] {
  return edges.flatMap((edge) => {
    const what = rule(edge);
    return what ? [`${edge.from} -> ${what}`] : [];
  });
}

/** Every module a file loads before any code runs: its static imports, followed. */
function staticClosure(edges: readonly Edge[], start: string): Set<string> {
  const seen = new Set<string>([start]);
  const queue = [start];
  while (queue.length > 0) {
    const file = queue.pop() as string;
    for (const edge of edges) {
      if (edge.from !== file || edge.dynamic || seen.has(edge.to)) continue;
      seen.add(edge.to);
      queue.push(edge.to);
    }
  }
  return seen;
}

describe('when the source is read as an import graph', () => {
  let edges: Edge[];
  beforeAll(async () => {
    edges = await importGraph(await sourceFiles());
  });

  it('sees the files and their imports (the graph is not empty)', () => {
    const from = new Set(edges.map((e) => e.from));
    for (const file of ['index-builder/config.ts', 'cli/main.ts', 'functions/handlers.ts']) {
      expect(from.has(file), file).toBe(true);
    }
    expect(edges.some((e) => e.dynamic)).toBe(true);
  });

  for (const [name, rule] of Object.entries(RULES)) {
    it(name, () => {
      expect(violations(edges, rule)).toEqual([]);
    });
  }

  it('runs --help and the command table without loading any package', () => {
    const loaded = [...staticClosure(edges, 'cli/plugindex.ts')];
    const packages = loaded.filter((file) => !isBuiltin(file) && !SOURCE_FOLDERS.some((f) => under(file, f)));
    expect(packages).toEqual([]);
    // The did-you-mean's distance (edit-distance.ts) imports nothing.
    expect(loaded.filter((file) => file.startsWith('index-builder/')).sort()).toEqual([
      'index-builder/edit-distance.ts',
      'index-builder/errors.ts',
    ]);
  });

  it('runs publish, which only uploads, without openpgp.js: the secret key armor it refuses has a home of its own', () => {
    const loaded = [...staticClosure(edges, 'cli/commands/publish.ts')];
    expect(loaded).toContain('index-builder/armor.ts');
    const heavy = ['openpgp', 'index-builder/trust.ts', 'index-builder/signing.ts'];
    expect(loaded.filter((file) => heavy.includes(file))).toEqual([]);
  });

  it('starts install and verify without openpgp.js: a tree already up to date checks no signature', () => {
    // README (What it costs): `install --frozen` of an installed tree, and `install -c` with nothing changed,
    // load no signature code; a refusal naming a key retired as compromised (key-revocation.ts) needs none.
    const heavy = ['openpgp', 'index-builder/signing.ts', 'index-builder/rotation.ts', 'client/key-chain.ts'];
    for (const start of ['cli/commands/install.ts', 'cli/commands/verify.ts', 'client/client.ts']) {
      const loaded = [...staticClosure(edges, start)];
      expect(loaded, start).toContain('client/key-revocation.ts');
      expect(
        loaded.filter((file) => heavy.includes(file)),
        start,
      ).toEqual([]);
    }
    // And the check can fail: key-chain.ts, which follows rotations, holds openpgp.js.
    expect(staticClosure(edges, 'client/key-chain.ts').has('openpgp')).toBe(true);
  });

  it("reads the log without openpgp.js: its entry types name the actions' one home, which loads nothing heavy", () => {
    // log.ts is what the client's light paths read the log with (the log reader, the trust state on disk);
    // actions.ts, which reads and signs an action, loads openpgp.js, so the action names live apart.
    const home = 'index-builder/action-kinds.ts';
    for (const start of ['index-builder/log.ts', 'client/log-reader.ts', 'client/disk/state.ts']) {
      const loaded = [...staticClosure(edges, start)];
      expect(loaded, start).toContain(home);
      expect(
        loaded.filter((file) => ['openpgp', 'index-builder/signing.ts'].includes(file)),
        start,
      ).toEqual([]);
    }
    expect([...staticClosure(edges, home)]).toEqual([home]);
    const importers = edges.filter((e) => e.to === home && !e.dynamic).map((e) => e.from);
    expect(importers).toEqual(expect.arrayContaining(['index-builder/actions.ts', 'index-builder/log.ts']));
    // And the check can fail: actions.ts's own closure holds openpgp.js.
    expect(staticClosure(edges, 'index-builder/actions.ts').has('openpgp')).toBe(true);
  });

  it('takes a CommonJS package imported lazily through its default export, all the built command has', async () => {
    // package.json (read by `plugindex --version` only) is a file of this repository, not a package.
    const lazy = edges.filter(
      (e) =>
        e.dynamic &&
        !isBuiltin(e.to) &&
        e.to !== 'package.json' &&
        !SOURCE_FOLDERS.some((folder) => under(e.to, folder)),
    );
    const packages = [...new Set(lazy.map((e) => e.to))];
    // The cases this guards: tar-stream and yaml are CommonJS, imported lazily.
    expect(packages).toEqual(expect.arrayContaining(['tar-stream', 'yaml']));
    const offending: string[] = [];
    const commonJs = commonJsOf(packages);
    for (const pkg of packages.filter((p) => commonJs.has(p))) {
      for (const edge of lazy.filter((e) => e.to === pkg)) {
        const text = await readFile(path.join(ROOT, edge.from), 'utf8');
        for (const statement of namedLazyImports(text, pkg)) offending.push(`${edge.from}: ${statement}`);
      }
    }
    expect(offending).toEqual([]);
  });

  it('finds no fetch in the core but the one in the pages it renders, which runs in the browser', async () => {
    const calls: string[] = [];
    for (const file of (await sourceFiles()).filter((f) => under(f, 'index-builder'))) {
      if (/\bfetch\(/.test(await readFile(path.join(ROOT, file), 'utf8'))) calls.push(file);
    }
    expect(calls).toEqual(['index-builder/render/page-script.ts']);
  });

  it('finds no fetch in the client but through the fetcher', async () => {
    const calls: string[] = [];
    for (const file of (await sourceFiles()).filter((f) => under(f, 'client'))) {
      if (/\bfetch\(/.test(await readFile(path.join(ROOT, file), 'utf8'))) calls.push(file);
    }
    expect(calls).toEqual(['client/fetcher.ts']);
  });
});

/**
 * Which of `packages` are CommonJS where Node (and esbuild, for the command's build) resolves an `import()`
 * of them: asked of Node itself, from the root, with the import conditions, in one process for them all.
 */
function commonJsOf(packages: readonly string[]): Set<string> {
  const script = [
    "const { existsSync, readFileSync } = await import('node:fs');",
    "const { dirname, join } = await import('node:path');",
    `const found = ${JSON.stringify(packages)}.filter((pkg) => {`,
    '  const file = new URL(import.meta.resolve(pkg)).pathname;',
    '  let dir = dirname(file);',
    "  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);",
    "  const { type } = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));",
    "  return file.endsWith('.cjs') || (!file.endsWith('.mjs') && type !== 'module');",
    '});',
    'console.log(JSON.stringify(found));',
  ].join('\n');
  const answer = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT });
  return new Set(JSON.parse(answer.toString()) as string[]);
}

/**
 * The `import()` calls of `pkg` in `text` whose statement never takes `default`: what such a call gets
 * depends on who loads it. Node gives a CommonJS package named exports too; the command's build (esbuild,
 * split into chunks) gives only its default export, module.exports.
 */
function namedLazyImports(text: string, pkg: string): string[] {
  const found: string[] = [];
  const call = new RegExp(
    `(?<!typeof )import\\(\\s*'${pkg.replace(/[/.]/g, '\\$&')}'\\s*\\)(?!\\.[A-Z])`,
    'g',
  );
  for (const match of text.matchAll(call)) {
    const at = match.index ?? 0;
    const start = Math.max(text.lastIndexOf(';', at), text.lastIndexOf('\n\n', at));
    const end = text.indexOf(';', at);
    const statement = text.slice(start + 1, end === -1 ? undefined : end);
    // Taken as `{ default: x }` or `.default`, not merely named in a comment.
    if (!/\{\s*default\s*:|\.default\b/.test(statement)) found.push(statement.trim());
  }
  return found;
}

describe('when a lazy import names an export of a CommonJS package', () => {
  it('is reported, and one that takes the default export is not', () => {
    expect(commonJsOf(['tar-stream', 'yaml', 'openpgp'])).toEqual(new Set(['tar-stream', 'yaml']));
    expect(
      namedLazyImports("const { pack } = await import('tar-stream');\nconst tar = pack();", 'tar-stream'),
    ).toEqual(["const { pack } = await import('tar-stream')"]);
    expect(namedLazyImports("const { default: t } = await import('tar-stream');", 'tar-stream')).toEqual([]);
    expect(namedLazyImports("const t = (await import('tar-stream')).default;", 'tar-stream')).toEqual([]);
    expect(namedLazyImports("let m: Promise<typeof import('tar-stream')>;", 'tar-stream')).toEqual([]);
  });
});

describe('when the core names a built-in without its node: prefix', () => {
  it('is still held to the core rule', () => {
    const rule = RULES[
      'index-builder imports no file system, network or process module, and no AWS SDK'
    ] as Rule;
    expect(violations([{ from: 'index-builder/x.ts', to: 'fs', dynamic: false }], rule)).toHaveLength(1);
    expect(violations([{ from: 'index-builder/x.ts', to: 'crypto', dynamic: false }], rule)).toEqual([]);
  });
});

describe('when a graph breaks a rule', () => {
  const broken: Record<keyof typeof RULES & string, Edge> = {
    'index-builder imports no file system, network or process module, and no AWS SDK': {
      from: 'index-builder/x.ts',
      to: 'node:fs/promises',
      dynamic: false,
    },
    "only adapters/, functions/ and the client's s3 transport (S3 only) import the AWS SDK": {
      from: 'cli/x.ts',
      to: '@aws-sdk/client-s3',
      dynamic: true,
    },
    'the client loads its s3 transport only lazily, from the fetcher': {
      from: 'client/fetcher.ts',
      to: 'client/transport/s3.ts',
      dynamic: false,
    },
    'cli/ and functions/ never import each other': {
      from: 'cli/x.ts',
      to: 'functions/events.ts',
      dynamic: false,
    },
    'adapters/ import only the core and packages': {
      from: 'adapters/x.ts',
      to: 'cli/args.ts',
      dynamic: false,
    },
    "client/ imports nothing of the publisher (but the manifest's pure reading and validation)": {
      from: 'client/x.ts',
      to: 'index-builder/pipeline/index.ts',
      dynamic: false,
    },
    'in client/, only fetcher.ts and client/transport/ touch the network': {
      from: 'client/session.ts',
      to: 'undici',
      dynamic: false,
    },
    'in client/, only client/disk/ (and the fetcher, for file: registries) touches the file system': {
      from: 'client/resolve.ts',
      to: 'fs',
      dynamic: false,
    },
  };
  for (const [name, rule] of Object.entries(RULES)) {
    it(`the rule "${name}" reports it`, () => {
      const edge = broken[name];
      expect(edge, name).toBeDefined();
      expect(violations([edge as Edge], rule)).toHaveLength(1);
    });
  }
});

describe('when the client reaches past the exceptions made for it', () => {
  const reported = (name: string, edge: Edge): number => violations([edge], RULES[name] as Rule).length;

  it('reports another AWS SDK in the s3 transport, and the S3 SDK anywhere else in client/', () => {
    const rule = "only adapters/, functions/ and the client's s3 transport (S3 only) import the AWS SDK";
    expect(reported(rule, { from: CLIENT_S3_TRANSPORT, to: '@aws-sdk/client-s3', dynamic: false })).toBe(0);
    expect(reported(rule, { from: CLIENT_S3_TRANSPORT, to: '@aws-sdk/client-sqs', dynamic: false })).toBe(1);
    expect(reported(rule, { from: 'client/fetcher.ts', to: '@aws-sdk/client-s3', dynamic: true })).toBe(1);
  });

  it('reports the s3 transport imported by another file, even lazily', () => {
    const rule = 'the client loads its s3 transport only lazily, from the fetcher';
    expect(reported(rule, { from: 'client/fetcher.ts', to: CLIENT_S3_TRANSPORT, dynamic: true })).toBe(0);
    expect(reported(rule, { from: 'client/client.ts', to: CLIENT_S3_TRANSPORT, dynamic: true })).toBe(1);
  });

  it('reports the manifest module as a whole, and the bundle, while its reading and validation pass', () => {
    const rule = "client/ imports nothing of the publisher (but the manifest's pure reading and validation)";
    const from = 'client/folder-source.ts';
    expect(reported(rule, { from, to: 'index-builder/manifest/validate.ts', dynamic: false })).toBe(0);
    expect(reported(rule, { from, to: 'index-builder/manifest/parse.ts', dynamic: false })).toBe(0);
    expect(reported(rule, { from, to: 'index-builder/manifest/index.ts', dynamic: false })).toBe(1);
    expect(reported(rule, { from, to: 'index-builder/bundle.ts', dynamic: false })).toBe(1);
  });

  it('reports the network touched from client/ outside the fetcher and client/transport/', () => {
    const rule = 'in client/, only fetcher.ts and client/transport/ touch the network';
    expect(reported(rule, { from: CLIENT_S3_TRANSPORT, to: 'node:https', dynamic: false })).toBe(0);
    expect(reported(rule, { from: 'client/transportation.ts', to: 'node:https', dynamic: false })).toBe(1);
  });
});
