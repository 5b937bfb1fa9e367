/**
 * One rule for what a search's parameters mean (index-builder/search.ts `readSearchParameters`), as a user
 * meets it two ways at once: the built `plugindex search` as a process, and `GET /search` over a real
 * socket, both against one local registry `plugindex serve` serves. Each case is asked both ways and must
 * get the same verdict: the same plugins found, or the same refusal code (exit 2 / 400).
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initRegistry } from '../../cli/local/registry.ts';
import { main } from '../../cli/main.ts';
import { makeBundle, validManifest } from '../support/fixtures.ts';
import { type ServingRegistry, startServe } from '../support/serve.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(ROOT, 'cli/bin.mjs');
const run = promisify(execFile);

let work: string;
let served: ServingRegistry | undefined;
let env: NodeJS.ProcessEnv;

/** What one way of asking answered: the names found, or the refusal's code. */
type Verdict = { readonly found: readonly string[] } | { readonly refused: string };

async function cli(...args: string[]): Promise<Verdict & { exit: number }> {
  try {
    const { stdout } = await run(process.execPath, [BIN, 'search', ...args, '--json'], { cwd: work, env });
    return { exit: 0, found: JSON.parse(stdout).results.map((r: { name: string }) => r.name) };
  } catch (error) {
    const e = error as { code: number; stdout: string };
    if (e.code === 1) return { exit: 1, found: [] };
    return { exit: e.code, refused: JSON.parse(e.stdout).error.code };
  }
}

async function endpoint(query: string): Promise<Verdict & { status: number }> {
  const response = await fetch(`${served?.url}/search?${query}`);
  const body = (await response.json()) as { code?: string; results?: { plugin: { name: string } }[] };
  return response.status === 200
    ? { status: 200, found: (body.results ?? []).map((r) => r.plugin.name) }
    : { status: response.status, refused: body.code ?? '' };
}

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'plugindex-search-parameters-'));
  const registryDir = path.join(work, 'registry');
  await initRegistry(registryDir, { name: 'Search Registry', url: 'http://127.0.0.1:1' });
  for (const [name, providers] of [
    ['cost-aws', ['aws']],
    ['cost-gcp', ['gcp']],
  ] as const) {
    const file = path.join(work, `${name}.tgz`);
    await writeFile(
      file,
      await makeBundle({ manifest: validManifest({ name, supported_providers: providers }) }),
    );
    expect(await main(['publish', file, '--registry', registryDir, '--json']).catch(() => -1)).toBe(0);
  }
  served = await startServe(registryDir);
  const home = path.join(work, 'home');
  await mkdir(home, { recursive: true });
  env = {
    ...process.env,
    PLUGINDEX_CONFIG_HOME: path.join(home, 'config'),
    PLUGINDEX_DATA_HOME: path.join(home, 'data'),
    PLUGINDEX_CACHE_HOME: path.join(home, 'cache'),
    CI: '1',
  };
  const keyFile = path.join(registryDir, 'public/keys/registry.asc');
  await run(process.execPath, [BIN, 'registry', 'add', 'main', served.url, '--key', keyFile], { env });
}, 60_000);
afterAll(async () => {
  await served?.stop();
  await rm(work, { recursive: true, force: true });
});

/** Both ways, the same verdict; a refusal is exit 2 and 400. Returns the shared verdict. */
async function agreed(args: readonly string[], query: string): Promise<Verdict> {
  const [byCli, byEndpoint] = await Promise.all([cli(...args), endpoint(query)]);
  if ('refused' in byEndpoint) {
    expect(byEndpoint.status).toBe(400);
    expect(byCli).toEqual({ exit: 2, refused: byEndpoint.refused });
    return { refused: byEndpoint.refused };
  }
  expect(byCli).toEqual({ exit: byEndpoint.found.length > 0 ? 0 : 1, found: byEndpoint.found });
  return { found: byEndpoint.found };
}

const NFD_E = 'e\u0301';

describe('when a search parameter is given to plugindex search and to GET /search', () => {
  it('trims a filter with spaces around it, both ways, where the CLI found nothing and the endpoint refused', async () => {
    expect(await agreed(['--provider', ' aws'], 'provider=%20aws')).toEqual({ found: ['cost-aws'] });
    expect(await agreed(['--capability', 'actual_cost\t'], 'capability=actual_cost%09')).toEqual({
      found: ['cost-aws', 'cost-gcp'],
    });
  });

  it('reads a filter of spaces only as none, as an empty one', async () => {
    const all = { found: ['cost-aws', 'cost-gcp'] };
    expect(await agreed(['--provider', '   '], 'provider=%20%20%20')).toEqual(all);
    expect(await agreed(['--provider', ''], 'provider=')).toEqual(all);
  });

  it('reads a filter in any case', async () => {
    expect(
      await agreed(['--provider', 'GCP', '--type', 'Cost_Source'], 'provider=GCP&type=Cost_Source'),
    ).toEqual({
      found: ['cost-gcp'],
    });
  });

  it('refuses a type, provider or capability the schema does not know, where the CLI found nothing', async () => {
    for (const [option, value] of [
      ['type', 'plugin'],
      ['provider', 'awz'],
      ['capability', 'cost'],
      ['provider', 'a ws'],
    ] as const)
      expect(await agreed([`--${option}`, value], `${option}=${encodeURIComponent(value)}`)).toEqual({
        refused: 'SEARCH_PARAMETER_INVALID',
      });
  });

  it('refuses a filter given twice, where the CLI took the last', async () => {
    expect(await agreed(['--provider', 'aws', '--provider', 'gcp'], 'provider=aws&provider=gcp')).toEqual({
      refused: 'SEARCH_PARAMETER_REPEATED',
    });
  });

  it('refuses more distinct words than MAX_SEARCH_TERMS, an overlong query and a control character', async () => {
    const words = 'a b c d e f g h i'.split(' ');
    expect(await agreed(words, `q=${words.join('+')}`)).toEqual({ refused: 'SEARCH_PARAMETER_INVALID' });
    const long = 'x'.repeat(257);
    expect(await agreed([long], `q=${long}`)).toEqual({ refused: 'SEARCH_PARAMETER_TOO_LONG' });
    expect(await agreed(['cost\taws'], 'q=cost%09aws')).toEqual({ refused: 'SEARCH_PARAMETER_INVALID' });
  });

  it('counts a query in its NFC form, so a word typed decomposed has the verdict of its composed form', async () => {
    // 200 characters composed, 400 code points decomposed: the endpoint refused the latter as too long.
    const composed = 'é'.repeat(200);
    const decomposed = NFD_E.repeat(200);
    expect(await agreed([composed], `q=${encodeURIComponent(composed)}`)).toEqual({ found: [] });
    expect(await agreed([decomposed], `q=${encodeURIComponent(decomposed)}`)).toEqual({ found: [] });
  });

  it('says which option is at fault, with the endpoint message, on stderr', async () => {
    const { stderr } = await run(process.execPath, [BIN, 'search', '--provider', 'awz'], {
      cwd: work,
      env,
    }).catch((e: { stderr: string }) => e);
    expect(stderr).toContain(
      'plugindex search: SEARCH_PARAMETER_INVALID: --provider: "awz" is not a provider a plugin can have: expected one of aws,',
    );
  });
});
