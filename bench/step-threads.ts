/**
 * Where each step of an import spends each thread (by hand, Linux only): runs `plugindex process` on a
 * registry with `PLUGINDEX_STEPS=1`, reads `/proc/<pid>/task/<tid>/stat` of every thread every 20 ms, and
 * prints for each step (as the batch tells them) each thread's CPU, user and system, in ms, and how often it
 * was found running or waiting for a core (R) or in an uninterruptible wait (D). A step whose threads are all
 * far from 100% R waits on something else; one whose threads ask for more than the cores there are is bound
 * by the CPU, and only doing less shortens it, not moving work between threads.
 *
 * Usage: node --import tsx bench/step-threads.ts BUILD REGISTRY, where BUILD is a built command's entry
 * (`node build/cli.mjs --outdir DIR` writes DIR/plugindex.mjs) and REGISTRY has its uploads in incoming/
 * (`ab-import.sh` makes such copies of `import-template.sh`'s registry). libuv's pool is held to one
 * thread, so that its thread is one line. Or `step-threads.ts -- COMMAND ARG...`: any command's threads, as
 * one step (the import's floor, `node FLOORS/import-floor.mjs REGISTRY OUT`, beside the import: where the
 * command's extra CPU is, thread by thread). After the steps, `total` is each thread's whole run.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

const args = process.argv.slice(2);
const [build, registry] = args;
const command = args[0] === '--' ? args.slice(1) : undefined;
if (command ? command.length === 0 : !build || !registry) {
  console.error('usage: node --import tsx bench/step-threads.ts BUILD REGISTRY | -- COMMAND ARG...');
  process.exit(2);
}
/** Clock ticks a second, as /proc counts CPU time (USER_HZ: 100 on Linux). */
const TICK_MS = 10;
const SAMPLE_MS = 20;

interface Sample {
  readonly at: number;
  readonly state: string;
  readonly user: number;
  readonly system: number;
}

const started = performance.now();
const [file, ...rest] = command ?? [
  process.execPath,
  build as string,
  'process',
  '--registry',
  registry as string,
];
const child = spawn(file as string, rest, {
  env: { ...process.env, PLUGINDEX_STEPS: '1', UV_THREADPOOL_SIZE: '1' },
  stdio: ['ignore', 'ignore', 'pipe'],
});
const steps: [at: number, step: string][] = [[0, 'start']];
let text = '';
child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
  text += chunk;
  for (let end = text.indexOf('\n'); end >= 0; end = text.indexOf('\n')) {
    const line = text.slice(0, end);
    text = text.slice(end + 1);
    const step = /^plugindex: ([a-z-]+) at \d+ ms$/.exec(line)?.[1];
    if (step) steps.push([performance.now() - started, step]);
    else if (line) console.error(line);
  }
});
const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
let running = true;
void exited.then(() => {
  running = false;
});

const samples = new Map<string, Sample[]>();
while (running) {
  const at = performance.now() - started;
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${child.pid}/task`);
  } catch {
    break; // exited
  }
  for (const tid of tids) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${child.pid}/task/${tid}/stat`, 'utf8');
    } catch {
      continue;
    }
    // After the name (which may hold spaces, in parentheses): state, then utime and stime at 12 and 13.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const list = samples.get(tid) ?? [];
    if (list.length === 0) samples.set(tid, list);
    list.push({
      at,
      state: fields[0] as string,
      user: Number(fields[11]) * TICK_MS,
      system: Number(fields[12]) * TICK_MS,
    });
  }
  await sleep(SAMPLE_MS);
}
const code = await exited;
const wall = performance.now() - started;
console.log(
  `exit ${code}, ${Math.round(wall)} ms; ${steps.map(([at, s]) => `${s} at ${Math.round(at)}`).join(', ')}`,
);

const bounds = [...steps.slice(1).map(([at, step]) => ({ at, step })), { at: Infinity, step: 'end' }];
// The whole run, after the steps (when there are any): measured from the start again.
const columns = bounds.length > 1 ? [...bounds, { at: Infinity, step: 'total' }] : bounds;
/** The last sample at or before `at` (zero before the first). */
const last = (list: readonly Sample[], at: number) => {
  let found = { user: 0, system: 0 };
  for (const sample of list) if (sample.at <= at) found = sample;
  return found;
};
const column = (cell: string) => cell.padStart(17);
console.log(`${'thread'.padEnd(8)}${columns.map((b) => column(b.step)).join('')}`);
const byCpu = [...samples].sort(([, a], [, b]) => {
  const total = (list: readonly Sample[]) => (list.at(-1)?.user ?? 0) + (list.at(-1)?.system ?? 0);
  return total(b) - total(a);
});
for (const [tid, list] of byCpu) {
  const end = list.at(-1);
  if (!end || end.user + end.system < 50) continue; // a thread that hardly ran
  const cpu: string[] = [];
  const states: string[] = [];
  let from = 0;
  for (const { at, step } of columns) {
    if (step === 'total') from = 0;
    const a = last(list, from);
    const b = last(list, at);
    cpu.push(`${b.user - a.user}/${b.system - a.system}`);
    const seen = list.filter((s) => s.at > from && s.at <= at);
    const share = (state: string) =>
      Math.round((100 * seen.filter((s) => s.state === state).length) / (seen.length || 1));
    states.push(`R${share('R')}%${share('D') ? ` D${share('D')}%` : ''}`);
    from = at;
  }
  console.log(`${tid.padEnd(8)}${cpu.map(column).join('')}`);
  console.log(`${''.padEnd(8)}${states.map(column).join('')}`);
}
console.log('(each step: CPU user/system in ms; below, the share of samples running or runnable, and in D)');
