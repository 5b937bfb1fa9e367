/**
 * What a run of the built command loaded, by package: record-loads.mjs given to the process records each
 * module's URL, and each file of the bundle (dist/cli/) names the sources it was built from in its source
 * map beside it (build/cli.mjs writes them), so a package is found in whichever chunk esbuild put it.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const RECORDER = new URL('./record-loads.mjs', import.meta.url).href;
const BUNDLE = new URL('../../dist/cli/', import.meta.url).href;

/**
 * The environment that has a process append each module it loads to `file` (NODE_OPTIONS kept).
 * @example await plugindexProcess(args, { cwd, env: recordingLoads(file) });
 */
export function recordingLoads(file: string): NodeJS.ProcessEnv {
  return {
    NODE_OPTIONS: [process.env.NODE_OPTIONS, `--import ${RECORDER}`].filter(Boolean).join(' '),
    PLUGINDEX_TEST_LOADED_MODULES: file,
  };
}

/**
 * The files of the bundle recorded in `file` that hold `pkg` (a package name): those whose source map
 * lists a source under node_modules/PKG/. Throws when no file of the bundle was recorded, so a recorder
 * that recorded nothing cannot pass for a run that loaded nothing heavy.
 */
export async function chunksHolding(file: string, pkg: string): Promise<string[]> {
  const urls = (await readFile(file, 'utf8')).split('\n').filter((url) => url.startsWith(BUNDLE));
  if (urls.length === 0) throw new Error(`${file} records no file of the bundle (${BUNDLE})`);
  const holding: string[] = [];
  for (const url of new Set(urls)) {
    const map = JSON.parse(await readFile(fileURLToPath(`${url}.map`), 'utf8')) as { sources: string[] };
    if (map.sources.some((source) => source.includes(`node_modules/${pkg}/`)))
      holding.push(url.slice(BUNDLE.length));
  }
  return holding;
}
