/**
 * Look-alike names of other owners, as a user searching meets them: a registry the pipeline published, where
 * `aws-cost` and `awscost` (one skeleton, look-alike.ts) stand side by side in other hands (published in one
 * batch by one key, as before the rule, then one given to another key), and an owner's own `foo-cli` beside
 * `foocli`. Served over a real socket by the local server, asked three ways: `GET /search`, the client
 * library's `search` through its verified session, and the built `plugindex search` as a process; and as a
 * user installing meets them, from the signed plugin document alone: the built `plugindex info` and
 * `plugindex install` (look_alikes, set on both documents by the transfer on one of them).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lookAlikeWarning } from '../../cli/commands/search.ts';
import { createRegistryServer, listenRegistryServer } from '../../cli/local/server.ts';
import { processSubmissions } from '../../index-builder/pipeline/index.ts';
import type { SearchAnswer } from '../../index-builder/search-endpoint.ts';
import type { KeyPair } from '../../index-builder/signing.ts';
import { submitAction } from '../support/actions.ts';
import { httpClient } from '../support/client.ts';
import { makeBundle, makeRegistry, type TestRegistry, testKey, validManifest } from '../support/fixtures.ts';
import { documentOf, publish, verdicts } from '../support/published.ts';

const BIN = path.resolve(import.meta.dirname, '../../cli/bin.mjs');
const run = promisify(execFile);

let registry: TestRegistry;
let heir: KeyPair;
let publisherFingerprint: string;
let base: string;
let close: (() => Promise<void>) | undefined;
let work: string;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  const publisher = await testKey('publisher');
  publisherFingerprint = publisher.fingerprint;
  const operator = await testKey('operator');
  heir = await testKey('heir');
  // Signed as of now (the action a minute before): the built CLI reads the snapshot by the real clock.
  const now = new Date();
  registry = await makeRegistry(
    { operators: [{ fingerprint: operator.fingerprint, key: operator.publicKey }] },
    now.toISOString(),
  );
  const bundles = await Promise.all(
    ['aws-cost', 'awscost', 'foo-cli', 'foocli', 'cost-lens'].map((name) =>
      makeBundle({
        manifest: validManifest({ name, description: `The ${name} plugin` }),
        // One executable each, so the built `plugindex install` can place it.
        artifacts: [
          { os: 'linux', arch: 'amd64', name, body: new TextEncoder().encode(`#!/bin/sh\necho ${name}\n`) },
        ],
        signer: publisher,
      }),
    ),
  );
  expect(verdicts(await publish(registry, ...bundles)).map(([, verdict]) => verdict)).toEqual(
    bundles.map(() => 'accepted'),
  );
  const transfer = await submitAction(
    registry.intake,
    { action: 'transfer', plugin: 'awscost', key: heir.publicKey },
    operator,
    { now: new Date(now.getTime() - 60_000) },
  );
  await processSubmissions(registry.context, [transfer.key]);
  expect(documentOf(registry, 'awscost')?.owners).toEqual([heir.fingerprint]);
  const listening = await listenRegistryServer(createRegistryServer({ site: registry.site }), 0);
  base = listening.url;
  close = listening.close;
  work = await mkdtemp(path.join(tmpdir(), 'plugindex-look-alikes-'));
  env = {
    ...process.env,
    PLUGINDEX_CONFIG_HOME: path.join(work, 'config'),
    PLUGINDEX_DATA_HOME: path.join(work, 'data'),
    PLUGINDEX_CACHE_HOME: path.join(work, 'cache'),
    CI: '1',
  };
  const keyFile = path.join(work, 'registry.asc');
  await writeFile(keyFile, registry.registryKey.publicKey);
  await run(process.execPath, [BIN, 'registry', 'add', 'main', base, '--key', keyFile], { env });
}, 60_000);

afterAll(async () => {
  await close?.();
  await rm(work, { recursive: true, force: true });
});

/** `plugindex search ARGS...` as a process: its exit code and output. */
async function cli(...args: string[]): Promise<{ code: number; stdout: string }> {
  try {
    return { code: 0, stdout: (await run(process.execPath, [BIN, 'search', ...args], { env })).stdout };
  } catch (error) {
    const e = error as { code: number; stdout: string };
    return { code: e.code, stdout: e.stdout };
  }
}

describe('when a search finds names that read as other owners’ plugins', () => {
  it('GET /search names the look-alikes beside each result, and the rows carry their owners', async () => {
    const response = await fetch(`${base}/search?q=cost`);
    expect(response.status).toBe(200);
    const answer = (await response.json()) as SearchAnswer;
    expect(answer.results.map((r) => [r.plugin.name, r.look_alikes])).toEqual([
      ['cost-lens', undefined],
      ['aws-cost', ['awscost']],
      ['awscost', ['aws-cost']],
    ]);
    expect(answer.results.find((r) => r.plugin.name === 'awscost')?.plugin.owners).toEqual([
      heir.fingerprint,
    ]);
    const own = (await (await fetch(`${base}/search?q=foo`)).json()) as SearchAnswer;
    expect(own.results.map((r) => [r.plugin.name, r.look_alikes])).toEqual([
      ['foo-cli', undefined],
      ['foocli', undefined],
    ]);
  });

  it("the client library's search flags the same plugins through its verified session", async () => {
    const client = httpClient(path.join(work, 'library'));
    try {
      await client.addRegistry({
        name: 'local',
        url: base,
        pin: { armored: registry.registryKey.publicKey },
      });
      const hits = await client.search({ terms: ['cost'] });
      expect(hits.map((h) => [h.entry.name, h.lookAlikes])).toEqual([
        ['cost-lens', undefined],
        ['aws-cost', ['awscost']],
        ['awscost', ['aws-cost']],
      ]);
    } finally {
      await client.close();
    }
  });

  it('plugindex search marks each under its row, and --json carries look_alikes', async () => {
    const human = await cli('aws-cost');
    expect(human.code).toBe(0);
    expect(human.stdout.split('\n')).toEqual([
      'main/aws-cost  1.0.0  cost_source  The aws-cost plugin',
      '  looks like: awscost (other owner)',
      'main/awscost  1.0.0  cost_source  The awscost plugin',
      '  looks like: aws-cost (other owner)',
      '',
    ]);
    const json = await cli('cost', '--json');
    const results = JSON.parse(json.stdout).results as { name: string; look_alikes?: string[] }[];
    expect(results.map((r) => [r.name, r.look_alikes])).toEqual([
      ['cost-lens', undefined],
      ['aws-cost', ['awscost']],
      ['awscost', ['aws-cost']],
    ]);
    const own = await cli('foo');
    expect(own.stdout).not.toContain('looks like');
  });
});

/** The built `plugindex ARGS...` as a process in the work folder: its exit code and output. */
async function plugindex(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { env, cwd: work });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('when info or install names a plugin that reads as another owner’s (its signed look_alikes)', () => {
  it('plugindex info says so under its owners, and --json carries look_alikes in the document', async () => {
    const human = await plugindex('info', 'aws-cost');
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toContain(
      `  owners (publisher keys): ${publisherFingerprint}\n  looks like: awscost (other owner)\n`,
    );
    const json = await plugindex('info', 'awscost', '--json');
    expect(JSON.parse(json.stdout).plugin.look_alikes).toEqual([
      { name: 'aws-cost', owners: [publisherFingerprint] },
    ]);
    const own = await plugindex('info', 'foo-cli');
    expect(own.code, own.stderr).toBe(0);
    expect(own.stdout).not.toContain('looks like');
  });

  it('plugindex install warns on stderr and installs, and --json carries look_alikes in the item', async () => {
    const installed = await plugindex('install', 'awscost');
    expect(installed.code, installed.stderr).toBe(0);
    expect(installed.stdout).toContain('installed awscost@1.0.0');
    expect(installed.stderr).toContain('warning: awscost looks like: aws-cost (other owner)');
    const json = await plugindex('install', 'aws-cost', '--json');
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout).items[0].look_alikes).toEqual([
      { name: 'awscost', owners: [heir.fingerprint] },
    ]);
    const own = await plugindex('install', 'foocli');
    expect(own.code, own.stderr).toBe(0);
    expect(own.stderr).not.toContain('looks like');
  });

  it('plugindex install --frozen --deny-yanked, which reads the signed document, warns as an install does; --frozen alone reads none', async () => {
    // The lock the installs above wrote. --deny-yanked read each plugin's document and said nothing of it.
    const frozen = await plugindex('install', '--frozen', '--deny-yanked');
    expect(frozen.code, frozen.stderr).toBe(0);
    expect(frozen.stderr).toContain('warning: awscost looks like: aws-cost (other owner)');
    expect(frozen.stderr).toContain('warning: aws-cost looks like: awscost (other owner)');
    expect(frozen.stderr).not.toContain('foocli looks like');
    const json = await plugindex('install', '--frozen', '--deny-yanked', '--json');
    const items = JSON.parse(json.stdout).items as { name: string; look_alikes?: unknown }[];
    expect(items.find((i) => i.name === 'awscost')?.look_alikes).toEqual([
      { name: 'aws-cost', owners: [publisherFingerprint] },
    ]);
    const bare = await plugindex('install', '--frozen');
    expect(bare.code, bare.stderr).toBe(0);
    expect(bare.stderr).not.toContain('looks like');
  });

  it('plugindex verify --url holds the documents with look_alikes to the log and the snapshot', async () => {
    const verified = await plugindex(
      'verify',
      '--url',
      registry.context.config.url,
      '--mirror',
      base,
      '--key',
      path.join(work, 'registry.asc'),
      '--state',
      path.join(work, 'verify.json'),
    );
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
    expect(verified.stdout).toMatch(/verified .*: generation \d+/);
  });
});

describe("when a registry's row names hold a line break (a rule older than the name form, or a hostile registry)", () => {
  it('the looks-like line stays one line, the break written as an escape', () => {
    const line = lookAlikeWarning(['aws\nmain/awscost  1.0.0  cost_source  forged', 'aws\rcost']);
    expect(line.split('\n')).toHaveLength(1);
    expect(line).toBe(
      'looks like: aws\\u000amain/awscost  1.0.0  cost_source  forged, aws\\u000dcost (other owners)',
    );
  });
});

describe('when a look-alike list is absurdly long (a hostile or broken registry)', () => {
  it('the looks-like line names the first ten and counts the rest, as one bounded line', () => {
    const names = Array.from({ length: 100_000 }, (_, i) => `aws-cost-${i}`);
    const line = lookAlikeWarning(names);
    expect(line).toBe(`looks like: ${names.slice(0, 10).join(', ')} and 99990 more (other owners)`);
  });
});
