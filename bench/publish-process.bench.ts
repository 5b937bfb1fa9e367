/**
 * One publish as an operator runs it: `plugindex publish BUNDLE --registry DIR` as a whole process (the
 * command built from the source, as bin.mjs runs it), into a registry of N plugins, the index documents
 * rendered, signed and written before it returns. Beside it, in the same rounds, `node -e 0` and
 * `plugindex --help`: the floors a process cannot go under, so the figures are ratios measured in the same
 * run (the machine is shared; an absolute time says little). Goal (issue 14): no slower than reprepro's
 * `includedeb` of one package at 10,000, which only `../shared/bench/side-by-side/run.sh` measures.
 *
 * Plugins of one version each, as in the side-by-side; every round publishes a new plugin. After the rounds,
 * the registry is checked: index.json lists every plugin, and the snapshot binds its bytes.
 * Sizes can be overridden: `node --import tsx bench/publish-process.bench.ts 1000`.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FsStore } from '../adapters/fs-store.ts';
import { buildCli } from '../build/cli.mjs';
import { pluginDocumentKey } from '../index-builder/layout.ts';
import type { SnapshotDocument } from '../index-builder/model.ts';
import { encodeJson } from '../index-builder/render/documents.ts';
import { generateKeyPair } from '../index-builder/signing.ts';
import { CACHE_MUTABLE } from '../index-builder/store.ts';
import { packSubmission } from '../index-builder/submission.ts';
import { median, timeProcess } from './stats.ts';
import { manifestFor, syntheticDocument } from './synthetic.ts';

const ROUNDS = 7;
const WARMUP = 2;
const ROOT = path.resolve(import.meta.dirname, '..');
const BIN = path.join(ROOT, 'cli', 'bin.mjs');

/** A registry of `size` plugins of one version each, made by the command (init, then rebuild). */
async function seedRegistry(dir: string, size: number, publisher: string): Promise<void> {
  execFileSync(process.execPath, [BIN, 'init', '--registry', dir]);
  const site = new FsStore(path.join(dir, 'public'));
  for (let i = 0; i < size; i++) {
    const doc = syntheticDocument(i, publisher);
    const versions = doc.versions.slice(0, 1);
    await site.put(pluginDocumentKey(doc.name), encodeJson({ ...doc, versions }), {
      contentType: 'application/json',
      cacheControl: CACHE_MUTABLE,
    });
  }
  execFileSync(process.execPath, [BIN, 'rebuild', '--registry', dir]);
}

async function main(): Promise<void> {
  const sizes = process.argv
    .slice(2)
    .map(Number)
    .filter((n) => n > 0);
  await buildCli();
  const publisher = await generateKeyPair({ name: 'bench publisher' });
  const artifact = { os: 'linux', arch: 'amd64', fileName: 'tool', body: new Uint8Array(1024).fill(7) };
  console.log(
    `plugindex publish as a process (median of ${ROUNDS} after ${WARMUP}, Node.js ${process.versions.node}):`,
  );
  for (const size of sizes.length > 0 ? sizes : [1000, 10000]) {
    const work = await mkdtemp(path.join(tmpdir(), `plugindex-bench-process-${size}-`));
    try {
      const dir = path.join(work, 'registry');
      await seedRegistry(dir, size, publisher.fingerprint);
      const bundles: string[] = [];
      for (let r = 0; r < WARMUP + ROUNDS; r++) {
        const name = `fresh-${String(r).padStart(2, '0')}`;
        const { bundle } = await packSubmission({
          manifestName: 'manifest.json',
          manifest: manifestFor(name, '1.0.0'),
          artifacts: [artifact],
          secretKey: publisher.secretKey,
        });
        const file = path.join(work, `${name}.tgz`);
        await writeFile(file, bundle);
        bundles.push(file);
      }
      const cases = [
        { label: 'node -e 0', args: () => ['-e', '0'] },
        { label: 'plugindex --help', args: () => [BIN, '--help'] },
        {
          label: 'plugindex publish BUNDLE',
          args: (r: number) => [BIN, 'publish', bundles[r] as string, '--registry', dir],
        },
      ];
      const times: number[][] = cases.map(() => []);
      // Interleaved round by round, so a busy moment of the machine falls on all of them alike.
      for (let r = 0; r < WARMUP + ROUNDS; r++) {
        cases.forEach((c, i) => {
          const elapsed = timeProcess(c.args(r));
          if (r >= WARMUP) times[i]?.push(elapsed);
        });
      }
      // The command returned with the index documents written and bound by the snapshot.
      const index = await readFile(path.join(dir, 'public', 'index.json'));
      const listed = (JSON.parse(index.toString()) as { plugins: unknown[] }).plugins.length;
      const snapshot = JSON.parse(
        await readFile(path.join(dir, 'public', 'snapshot.json'), 'utf8'),
      ) as SnapshotDocument;
      const digest = createHash('sha256').update(index).digest('hex');
      if (listed !== size + WARMUP + ROUNDS || snapshot.documents['index.json']?.sha256 !== digest)
        throw new Error(
          `after the publishes index.json lists ${listed} plugins, or the snapshot does not bind it`,
        );
      const [floor, help, publish] = times.map((t) => median(t)) as [number, number, number];
      console.log(
        `  ${String(size).padStart(6)} plugins: publish ${publish.toFixed(0)} ms (runs: ${times[2]?.map((t) => t.toFixed(0)).join(', ')}), ` +
          `${(publish / floor).toFixed(2)}x node -e 0 (${floor.toFixed(0)} ms), ${(publish / help).toFixed(2)}x plugindex --help (${help.toFixed(0)} ms)`,
      );
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }
}

await main();
