/**
 * One publish as an operator runs it: `plugindex publish BUNDLE --registry DIR` as a whole process (the
 * command built from the source, as bin.mjs runs it), into a registry of N plugins, the index documents
 * rendered, signed and written before it returns. Beside it, in the same rounds, `node -e 0` and
 * `plugindex --help`: the floors a process cannot go under, so the figures are ratios measured in the same
 * run (the machine is shared; an absolute time says little). And a third floor, bench/publish-floor.ts:
 * openpgp.js loaded and the three index documents over 1 MB rewritten (read, hashed, compressed both ways,
 * written), the least a publish must do whatever the code around it. The header gives what memory touched
 * for the first time costs here, which a process that starts cold pays for every page it uses. Goal
 * (issue 14): no slower than reprepro's `includedeb` of one package at 10,000, which side-by-side.bench.ts
 * times in the same rounds as this publish and this floor.
 *
 * Then the same publish beside a running server (`plugindex serve` on the registry), which the command
 * hands its upload to (cli/local/submission-socket.ts), in rounds of its own with `node -e 0` beside it; the
 * server makes the compressed variants after it answers, so each round waits for them (untimed).
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
import { checkAccepted, startServer, stopServer, variantsMade } from './served.ts';
import { median, timeProcess } from './stats.ts';
import { manifestFor, syntheticDocument } from './synthetic.ts';

const ROUNDS = 7;
const WARMUP = 2;
const ROOT = path.resolve(import.meta.dirname, '..');
const BIN = path.join(ROOT, 'cli', 'bin.mjs');

/** Microseconds to touch a page of fresh memory (first write to each 4 KiB page of 64 MiB), median of 3. */
function firstTouchMicros(): number {
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const started = process.hrtime.bigint();
    new Uint8Array(64 << 20).fill(1);
    times.push(Number(process.hrtime.bigint() - started) / 1e3 / ((64 << 20) / 4096));
  }
  return median(times);
}

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
  // The floor, built as the command is: the same bundled openpgp.js, no TypeScript loader.
  const floorDir = await mkdtemp(path.join(tmpdir(), 'plugindex-bench-floor-'));
  await buildCli(floorDir, { floor: path.join(ROOT, 'bench', 'publish-floor.ts') });
  const floorScript = path.join(floorDir, 'floor.mjs');
  const publisher = await generateKeyPair({ name: 'bench publisher' });
  const artifact = { os: 'linux', arch: 'amd64', fileName: 'tool', body: new Uint8Array(1024).fill(7) };
  console.log(
    `plugindex publish as a process (median of ${ROUNDS} after ${WARMUP}, Node.js ${process.versions.node}; fresh memory ${firstTouchMicros().toFixed(2)} µs a page):`,
  );
  for (const size of sizes.length > 0 ? sizes : [1000, 10000]) {
    const work = await mkdtemp(path.join(tmpdir(), `plugindex-bench-process-${size}-`));
    try {
      const dir = path.join(work, 'registry');
      await seedRegistry(dir, size, publisher.fingerprint);
      const bundles: string[] = [];
      // One set for the publishes as processes of their own, one for those a running server takes.
      for (let r = 0; r < 2 * (WARMUP + ROUNDS); r++) {
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
          label: 'the floor (publish-floor.ts)',
          args: () => [floorScript, path.join(dir, 'public'), path.join(work, 'floor')],
        },
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
      // Beside a running server (`plugindex serve`), which the command hands its upload to
      // (cli/local/submission-socket.ts): the same rounds, with `node -e 0` again for the ratio.
      const server = await startServer(dir);
      const served: number[][] = [[], []];
      try {
        for (let r = 0; r < WARMUP + ROUNDS; r++) {
          const bundle = bundles[WARMUP + ROUNDS + r] as string;
          const node = timeProcess(['-e', '0']);
          const handed = timeProcess([BIN, 'publish', bundle, '--registry', dir]);
          if (r >= WARMUP) {
            served[0]?.push(node);
            served[1]?.push(handed);
          }
          // The server makes the compressed variants once it has answered: untimed, before the next round.
          await variantsMade(dir);
        }
      } finally {
        await stopServer(server);
      }
      checkAccepted(server, WARMUP + ROUNDS);
      // The command returned with the index documents written and bound by the snapshot.
      const index = await readFile(path.join(dir, 'public', 'index.json'));
      const listed = (JSON.parse(index.toString()) as { plugins: unknown[] }).plugins.length;
      const snapshot = JSON.parse(
        await readFile(path.join(dir, 'public', 'snapshot.json'), 'utf8'),
      ) as SnapshotDocument;
      const digest = createHash('sha256').update(index).digest('hex');
      if (listed !== size + 2 * (WARMUP + ROUNDS) || snapshot.documents['index.json']?.sha256 !== digest)
        throw new Error(
          `after the publishes index.json lists ${listed} plugins, or the snapshot does not bind it`,
        );
      const [floor, help, least, publish] = times.map((t) => median(t)) as [number, number, number, number];
      console.log(
        `  ${String(size).padStart(6)} plugins: publish ${publish.toFixed(0)} ms (runs: ${times[3]?.map((t) => t.toFixed(0)).join(', ')}), ` +
          `${(publish / floor).toFixed(2)}x node -e 0 (${floor.toFixed(0)} ms), ${(publish / help).toFixed(2)}x plugindex --help (${help.toFixed(0)} ms), ` +
          `${(publish / least).toFixed(2)}x the floor of openpgp.js and the index documents rewritten (${least.toFixed(0)} ms)`,
      );
      const [node, handed] = served.map((t) => median(t)) as [number, number];
      console.log(
        `  ${' '.repeat(14)}beside a running server: publish ${handed.toFixed(0)} ms (runs: ${served[1]?.map((t) => t.toFixed(0)).join(', ')}), ` +
          `${(handed / node).toFixed(2)}x node -e 0 (${node.toFixed(0)} ms), ${(handed / publish).toFixed(2)}x the publish in a process of its own`,
      );
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }
  await rm(floorDir, { recursive: true, force: true });
}

await main();
