/**
 * `PLUGINDEX_STEPS=1 plugindex process` (cli/bin.mjs over the built bundle): each step of the batch said on
 * stderr as it ends, in order, with the time since the process started; nothing of it without the variable.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { initRegistry } from '../../../cli/local/registry.ts';
import { makeBundle, validManifest } from '../../support/fixtures.ts';

const BIN = path.resolve(import.meta.dirname, '../../../cli/bin.mjs');
const run = promisify(execFile);

let work: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'plugindex-process-steps-'));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** Processes two new plugins in a new registry, with `env` added; what the process printed on stderr. */
async function processTwo(name: string, env: Record<string, string>): Promise<string> {
  const dir = path.join(work, name);
  await initRegistry(dir, { name: 'r', url: 'http://127.0.0.1:8080' });
  for (const plugin of ['timed-a', 'timed-b'])
    await writeFile(
      path.join(dir, 'incoming', `${plugin}.tgz`),
      await makeBundle({ manifest: validManifest({ name: plugin }) }),
    );
  const { stdout, stderr } = await run(process.execPath, [BIN, 'process', '--registry', dir], {
    env: { ...process.env, ...env },
    timeout: 60_000,
  });
  expect(stdout).toContain('accepted timed-b@');
  return stderr;
}

it('says when each step of the batch ends, in order, with PLUGINDEX_STEPS set', async () => {
  const stderr = await processTwo('steps', { PLUGINDEX_STEPS: '1' });

  const steps = [...stderr.matchAll(/^plugindex: ([a-z-]+) at (\d+) ms$/gm)];
  expect(steps.map((m) => m[1])).toEqual([
    'judged',
    'rendered',
    'logged',
    'plugin-documents',
    'committed',
    'outcomes',
  ]);
  const times = steps.map((m) => Number(m[2]));
  expect(times).toEqual([...times].sort((a, b) => a - b));
}, 60_000);

it('says nothing of the steps without it', async () => {
  const stderr = await processTwo('quiet', { PLUGINDEX_STEPS: '' });
  expect(stderr).not.toMatch(/^plugindex: [a-z-]+ at \d+ ms$/m);
}, 60_000);
