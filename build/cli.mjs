#!/usr/bin/env node
/**
 * Builds the `plugindex` command into dist/cli/ with esbuild: the entry (the dispatcher and the command
 * table) in one small file, and each command's imports in chunks loaded only when that command runs
 * (`--splitting`), so `plugindex --help` parses a few kilobytes instead of every dependency. Run by npm's
 * `prepare` (so `npm ci` leaves a working `npx plugindex`), by `npm start`, and by the tests' global setup
 * (so they run what ships, built from the source they test). Plain JavaScript: it runs before anything else
 * is built. Usage: node build/cli.mjs [--outdir DIR] [--quiet]
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';

const root = path.resolve(import.meta.dirname, '..');

/**
 * `entryPoints`: the command by default; a benchmark builds its own scripts the same way (bench/publish-floor.ts),
 * so they load the dependencies as the command does.
 */
export async function buildCli(
  outdir = path.join(root, 'dist', 'cli'),
  entryPoints = { plugindex: path.join(root, 'cli', 'plugindex.ts') },
) {
  // A stale chunk from an earlier build would never be loaded, but it would be shipped: start clean.
  await rm(outdir, { recursive: true, force: true });
  const result = await build({
    entryPoints,
    outdir,
    bundle: true,
    splitting: true,
    platform: 'node',
    // The CLI runs on the machine's Node.js (20.11 or later, package.json engines); the Lambdas on 22.
    target: 'node20',
    format: 'esm',
    outExtension: { '.js': '.mjs' },
    chunkNames: 'chunks/[name]-[hash]',
    // Whitespace and syntax only: identifiers stay readable in a stack trace.
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: 'none',
    // Maps beside the chunks, pointing at the sources in the checkout: a stack trace reads as source lines
    // with NODE_OPTIONS=--enable-source-maps, and costs nothing at start-up without it.
    sourcemap: 'linked',
    sourcesContent: false,
    metafile: true,
    logLevel: 'warning',
    // CommonJS dependencies bundled into ESM still call require() for Node built-ins; give them one (as
    // the Lambda bundles do). Each chunk is its own module scope, so each gets its own.
    banner: {
      js: "import { createRequire as __plugindexRequire } from 'node:module'; const require = __plugindexRequire(import.meta.url);",
    },
  });
  return { outdir, metafile: result.metafile };
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  const { values } = parseArgs({ options: { outdir: { type: 'string' }, quiet: { type: 'boolean' } } });
  const started = performance.now();
  const { outdir, metafile } = await buildCli(values.outdir && path.resolve(values.outdir));
  if (!values.quiet) {
    const outputs = Object.entries(metafile.outputs).filter(([file]) => !file.endsWith('.map'));
    const bytes = outputs.reduce((sum, [, o]) => sum + o.bytes, 0);
    const entry = outputs.find(([file]) => file.endsWith('plugindex.mjs'));
    console.log(
      `built ${path.relative(process.cwd(), outdir) || '.'}: ${outputs.length} files, ${(bytes / 1024).toFixed(0)} KiB` +
        ` (entry ${((entry?.[1].bytes ?? 0) / 1024).toFixed(1)} KiB) in ${Math.round(performance.now() - started)} ms`,
    );
  }
}
