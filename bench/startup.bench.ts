/**
 * Start-up of the `plugindex` command as users run it (`cli/bin.mjs` over the bundle in dist/cli/, rebuilt
 * here from the source), beside `node -e 0` on the same machine: each figure is the wall time of a whole
 * process, the median of 21 rounds, the commands interleaved round by round so a busy moment of the
 * machine falls on all of them alike. Goals (issue 10): `--help` within 1.5x of `node -e 0`, `validate` of
 * a manifest under 150 ms, of a bundle under 200 ms. Beside each, its page faults (the median of 3 runs under
 * GNU time, apart from the timed rounds): steadier than the wall time (stats.ts says how far).
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildCli } from '../build/cli.mjs';
import { goalVerdict, median, processFaults, timeProcess } from './stats.ts';

const ROUNDS = 21;
const ROOT = path.resolve(import.meta.dirname, '..');
const BIN = path.join(ROOT, 'cli', 'bin.mjs');
const MANIFEST = path.join(ROOT, 'examples', 'kubecost-lens', '1.2.0', 'manifest.json');

await buildCli();
const work = await mkdtemp(path.join(tmpdir(), 'plugindex-bench-startup-'));
try {
  // A signed bundle of the example manifest, made with the command itself.
  const keys = path.join(work, 'keys');
  const bundle = path.join(work, 'bundle.tgz');
  execFileSync(process.execPath, [BIN, 'keygen', '--out', keys]);
  execFileSync(process.execPath, [
    BIN,
    'pack',
    MANIFEST,
    '--key',
    path.join(keys, 'secret.asc'),
    '--out',
    bundle,
  ]);

  const cases = [
    { label: 'node -e 0', args: ['-e', '0'], goal: undefined },
    { label: 'plugindex --help', args: [BIN, '--help'], goal: { ratio: 1.5 } },
    { label: 'plugindex validate MANIFEST', args: [BIN, 'validate', MANIFEST], goal: { ms: 150 } },
    { label: 'plugindex validate BUNDLE.tgz', args: [BIN, 'validate', bundle], goal: { ms: 200 } },
  ] as const;
  const times: number[][] = cases.map(() => []);
  for (const c of cases) timeProcess(c.args); // untimed: the first run of each warms the file cache
  for (let round = 0; round < ROUNDS; round++) {
    cases.forEach((c, i) => {
      times[i]?.push(timeProcess(c.args));
    });
  }
  const faults = cases.map((c) => {
    const runs = [0, 1, 2].map(() => processFaults(c.args));
    return runs.every((f) => f !== undefined) ? median(runs as number[]) : undefined;
  });
  const floor = median(times[0] ?? []);
  console.log(`CLI start-up (whole process, median of ${ROUNDS}, Node.js ${process.versions.node}):`);
  cases.forEach((c, i) => {
    const m = median(times[i] ?? []);
    const ratio = m / floor;
    let verdict = '';
    if (c.goal && 'ratio' in c.goal) verdict = goalVerdict(ratio <= c.goal.ratio, `<= ${c.goal.ratio}x`);
    if (c.goal && 'ms' in c.goal) verdict = goalVerdict(m <= c.goal.ms, `< ${c.goal.ms} ms`);
    const touched =
      faults[i] === undefined ? '' : `${faults[i]?.toLocaleString('en-US').padStart(6)} page faults  `;
    console.log(
      `  ${c.label.padEnd(30)} ${m.toFixed(0).padStart(5)} ms  ${ratio.toFixed(2)}x node -e 0  ${touched}${verdict}`,
    );
  });
  if (faults.includes(undefined)) console.log('  (page faults: GNU time is not installed at /usr/bin/time)');
} finally {
  await rm(work, { recursive: true, force: true });
}
