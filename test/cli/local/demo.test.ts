/**
 * `npm start` (`plugindex dev`) as a process: the examples published, the example lifecycle actions of
 * examples/lifecycle.json applied once (a second start applies nothing again), everything served signed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PluginDocument, SnapshotDocument } from '../../../index-builder/model.ts';
import { freePort } from '../../support/serve.ts';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const BIN = path.join(ROOT, 'cli/bin.mjs');

let home: string;
let port: number;

/** Starts `plugindex dev`, resolves with its output once it serves; `stop` ends it. */
async function startDev(): Promise<{ output: string; stop: () => Promise<void> }> {
  const child: ChildProcess = spawn(
    process.execPath,
    [BIN, 'dev', '--registry', home, '--port', String(port)],
    {
      cwd: ROOT,
      stdio: 'pipe',
    },
  );
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`dev did not start:\n${output}`)), 60_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Ctrl-C stops')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.on('exit', (code) => reject(new Error(`dev exited with ${code}:\n${output}`)));
  });
  return {
    output,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGINT');
      }),
  };
}

async function json<T>(pathname: string): Promise<T> {
  const response = await fetch(`http://127.0.0.1:${port}/${pathname}`);
  expect(response.status).toBe(200);
  return (await response.json()) as T;
}

beforeAll(async () => {
  home = await mkdtemp(path.join(tmpdir(), 'plugindex-demo-'));
  port = await freePort();
});

afterAll(async () => {
  await rm(home, { recursive: true, force: true });
});

describe('when npm start runs the demo registry', () => {
  it('publishes the examples and applies their lifecycle actions once, signed and logged', async () => {
    const first = await startDev();
    let snapshot: SnapshotDocument;
    try {
      expect(first.output).toMatch(/examples: 20 published/);
      expect(first.output).toMatch(/accepted .*yank kubecost-lens@1\.0\.0/);
      const lens = await json<PluginDocument>('plugins/kubecost-lens/index.json');
      expect(lens.versions.find((v) => v.version === '1.0.0')).toMatchObject({
        yanked: true,
        yanked_reason: 'crashes on an empty billing export; 1.1.0 fixes it',
      });
      const ledger = await json<PluginDocument>('plugins/chargeback-ledger/index.json');
      expect(ledger.advisories?.map((a) => [a.id, a.severity, a.affected])).toEqual([
        ['PDX-2026-0001', 'moderate', '<1.0.1'],
      ]);
      const panels = await json<PluginDocument>('plugins/grafana-spend-panels/index.json');
      expect(
        panels.versions.map((v) => [v.version, v.deprecated, v.deprecation_replacement ?? null]),
      ).toEqual([
        ['1.1.0', false, null],
        ['1.0.0', true, 'multicloud-rollup'],
      ]);
      snapshot = await json<SnapshotDocument>('snapshot.json');
      // 20 publishes and 3 actions, each one entry.
      expect(snapshot.log?.length).toBe(23);
    } finally {
      await first.stop();
    }
    const again = await startDev();
    try {
      expect(again.output).toMatch(/0 published, 20 already published/);
      expect(again.output).not.toMatch(/accepted/);
      const after = await json<SnapshotDocument>('snapshot.json');
      expect(after.log).toEqual(snapshot.log);
    } finally {
      await again.stop();
    }
    const state = JSON.parse(await readFile(path.join(home, 'state', 'log.json'), 'utf8'));
    expect(state).toEqual(snapshot.log);
  }, 120_000);
});
