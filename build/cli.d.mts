import type { Metafile } from 'esbuild';

/** Builds the `plugindex` command (or other ENTRY_POINTS, the same way) into OUTDIR (default dist/cli/): see cli.mjs. */
export function buildCli(
  outdir?: string,
  entryPoints?: Readonly<Record<string, string>>,
): Promise<{ readonly outdir: string; readonly metafile: Metafile }>;
