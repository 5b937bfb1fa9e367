import type { Metafile } from 'esbuild';

/** Builds the `plugindex` command into OUTDIR (default dist/cli/): see cli.mjs. */
export function buildCli(outdir?: string): Promise<{ readonly outdir: string; readonly metafile: Metafile }>;
