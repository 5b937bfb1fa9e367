/**
 * One publish as a process (`plugindex publish BUNDLE --registry DIR`, the command built from the source)
 * into a registry of a few plugins whose config lists N publishers (policy `restricted`, each an Ed25519
 * key as `plugindex keygen` makes it, written into plugindex.json as `publishers add` writes an entry). What
 * it measures is what a cold start pays per configured key (issue 14): the check of every configured key
 * when the config is loaded (`checkConfiguredKeys`) and the keys read to judge the upload
 * (`loadTrustedKeys`). `node -e 0` runs in the same rounds, as the floor. The first publish of each size is
 * untimed (it is the one that checks every key, where the registry remembers the keys it checked: DIR/state/).
 * Then, in the same registry, the publish of a stranger's bundle (a key no entry holds, its publisher.asc
 * beside), refused PUBLISHER_UNTRUSTED: what anyone may make each cold process pay, its issuer named by no
 * entry's fingerprint (found among every configured key's (sub)key IDs: the checked list's, else each key read).
 * Sizes can be overridden: `node --import tsx bench/publishers.bench.ts 1 2000`.
 *
 * Then, in this process, what an import pays per signature to find the configured entries it names
 * (`configuredCandidates`): 10,000 signatures, by 20 of the largest size's publishers, the keys read once;
 * then 10,000 whose issuer no entry names (strangers'), looked up among every key's IDs.
 */

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { buildCli } from '../build/cli.mjs';
import { parseRegistryConfig } from '../index-builder/config.ts';
import { generateKeyPair, type KeyPair } from '../index-builder/signing.ts';
import { packSubmission } from '../index-builder/submission.ts';
import { configuredCandidates, loadTrustedKeys } from '../index-builder/trust.ts';
import { median, timeProcess } from './stats.ts';
import { manifestFor } from './synthetic.ts';

const ROUNDS = 7;
const WARMUP = 1;
const ROOT = path.resolve(import.meta.dirname, '..');
const BIN = path.join(ROOT, 'cli', 'bin.mjs');

async function main(): Promise<void> {
  const sizes = process.argv
    .slice(2)
    .map(Number)
    .filter((n) => n > 0);
  const wanted = sizes.length > 0 ? sizes : [1, 100, 1000, 5000];
  await buildCli();
  const keys: KeyPair[] = [];
  for (let i = 0; i < Math.max(...wanted); i++) keys.push(await generateKeyPair({ name: `publisher ${i}` }));
  const stranger = await generateKeyPair({ name: 'stranger' });
  const artifact = { os: 'linux', arch: 'amd64', fileName: 'tool', body: new Uint8Array(1024).fill(7) };
  console.log(
    `plugindex publish as a process, by N configured publishers (median of ${ROUNDS} after ${WARMUP}, Node.js ${process.versions.node}):`,
  );
  for (const size of wanted) {
    const work = await mkdtemp(path.join(tmpdir(), `plugindex-bench-publishers-${size}-`));
    try {
      const dir = path.join(work, 'registry');
      execFileSync(process.execPath, [BIN, 'init', '--registry', dir]);
      const file = path.join(dir, 'plugindex.json');
      const config = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
      const listed = keys.slice(0, size);
      const publishers = listed.map((k) => ({ fingerprint: k.fingerprint, key: k.publicKey, names: ['*'] }));
      await writeFile(file, `${JSON.stringify({ ...config, policy: 'restricted', publishers }, null, 2)}\n`);
      // Signed by the last one listed: no earlier entry is its key.
      const signer = listed.at(-1) as KeyPair;
      const bundlesBy = async (prefix: string, secretKey: string): Promise<string[]> => {
        const made: string[] = [];
        for (let r = 0; r < WARMUP + ROUNDS; r++) {
          const name = `${prefix}-${String(r).padStart(2, '0')}`;
          const { bundle } = await packSubmission({
            manifestName: 'manifest.json',
            manifest: manifestFor(name, '1.0.0'),
            artifacts: [artifact],
            secretKey,
          });
          const bundleFile = path.join(work, `${name}.tgz`);
          await writeFile(bundleFile, bundle);
          made.push(bundleFile);
        }
        return made;
      };
      const bundles = await bundlesBy('fresh', signer.secretKey);
      const strangers = await bundlesBy('stranger', stranger.secretKey);
      const floor: number[] = [];
      const publish: number[] = [];
      for (let r = 0; r < WARMUP + ROUNDS; r++) {
        const node = timeProcess(['-e', '0']);
        const took = timeProcess([BIN, 'publish', bundles[r] as string, '--registry', dir]);
        if (r >= WARMUP) {
          floor.push(node);
          publish.push(took);
        }
      }
      const index = JSON.parse(await readFile(path.join(dir, 'public', 'index.json'), 'utf8')) as {
        plugins: unknown[];
      };
      if (index.plugins.length !== WARMUP + ROUNDS)
        throw new Error(`after the publishes index.json lists ${index.plugins.length} plugins`);
      const [published, least] = [median(publish), median(floor)];
      console.log(
        `  ${String(size).padStart(5)} publishers: publish ${published.toFixed(0)} ms (runs: ${publish.map((t) => t.toFixed(0)).join(', ')}), ` +
          `${(published - least).toFixed(0)} ms over node -e 0 (${least.toFixed(0)} ms)`,
      );
      const refused: number[] = [];
      for (let r = 0; r < WARMUP + ROUNDS; r++) {
        const took = timeRefusedPublish(strangers[r] as string, dir);
        if (r >= WARMUP) refused.push(took);
      }
      console.log(
        `  ${String(size).padStart(5)} publishers: a stranger's publish, refused, ${median(refused).toFixed(0)} ms (runs: ${refused.map((t) => t.toFixed(0)).join(', ')})`,
      );
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }
  await timeCandidates(keys);
}

/** Wall time of one `plugindex publish` the registry refuses PUBLISHER_UNTRUSTED (exit 1); any other end stops the bench. */
function timeRefusedPublish(bundle: string, dir: string): number {
  const started = process.hrtime.bigint();
  const run = spawnSync(process.execPath, [BIN, 'publish', bundle, '--registry', dir], { encoding: 'utf8' });
  const took = Number(process.hrtime.bigint() - started) / 1e6;
  const said = `${run.stdout}${run.stderr}`;
  if (run.status !== 1 || !said.includes('PUBLISHER_UNTRUSTED'))
    throw new Error(`a stranger's publish exited ${run.status}: ${said}`);
  return took;
}

/** 10,000 signatures' `configuredCandidates` under every key of `keys`, each by one of the last 20. */
async function timeCandidates(keys: readonly KeyPair[]): Promise<void> {
  const SIGNATURES = 10_000;
  const config = parseRegistryConfig({
    name: 'bench',
    url: 'https://bench.example.org',
    policy: 'restricted',
    publishers: keys.map((k) => ({ fingerprint: k.fingerprint, key: k.publicKey, names: ['*'] })),
  });
  const trusted = await loadTrustedKeys(config, []);
  const ids = keys.slice(-20).map((k) => k.fingerprint.slice(-16));
  for (const id of ids) await configuredCandidates(trusted, [id]); // each key read once, untimed
  const took: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const start = performance.now();
    for (let i = 0; i < SIGNATURES; i++) {
      const found = await configuredCandidates(trusted, [ids[i % ids.length] as string]);
      if (found.length !== 1) throw new Error(`signature ${i}: ${found.length} candidates`);
    }
    took.push(performance.now() - start);
  }
  console.log(
    `configuredCandidates, ${SIGNATURES} signatures under ${keys.length} publishers: ${median(took).toFixed(0)} ms (runs: ${took.map((t) => t.toFixed(0)).join(', ')})`,
  );
  // Signatures whose issuer no entry's fingerprint names (a stranger's, a signing subkey's): every key is
  // read once (untimed), then each looked up among every key's IDs.
  const strangers = Array.from({ length: SIGNATURES }, (_, i) =>
    (0x1000000000000000n + BigInt(i)).toString(16).toUpperCase(),
  );
  await configuredCandidates(trusted, ['0123456789ABCDEF']);
  const unnamed: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const start = performance.now();
    for (const id of strangers) {
      const found = await configuredCandidates(trusted, [id]);
      if (found.length !== 0) throw new Error(`${id}: ${found.length} candidates`);
    }
    unnamed.push(performance.now() - start);
  }
  console.log(
    `configuredCandidates, ${SIGNATURES} signatures no entry names under ${keys.length} publishers: ${median(unnamed).toFixed(0)} ms (runs: ${unnamed.map((t) => t.toFixed(0)).join(', ')})`,
  );
}

await main();
