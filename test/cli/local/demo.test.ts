/**
 * `npm start` (`plugindex dev`) as a process: the examples published, the example lifecycle actions of
 * examples/lifecycle.json applied once (a second start applies nothing again), everything served signed;
 * and the demo publisher's key, made by the first start, written whole or not at all.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { cp, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoPublisherKey } from '../../../cli/local/demo.ts';
import type { PluginDocument, SnapshotDocument } from '../../../index-builder/model.ts';
import { createSigner, readPublicKey } from '../../../index-builder/signing.ts';
import { plugindex } from '../../support/cli.ts';
import { freePort } from '../../support/serve.ts';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const BIN = path.join(ROOT, 'cli/bin.mjs');

let home: string;
let port: number;

/**
 * The registry of the first test, a folder of the test's home beside the others' (inside it, the others
 * would be inside a registry's folder, which init and dev refuse).
 */
const demoRegistry = (): string => path.join(home, 'demo');

/** The arguments of `plugindex dev` on `registry` (`demoRegistry` by default), serving on the test's port. */
function devArgs(options: { readonly registry?: string; readonly examples?: string }): string[] {
  return [
    BIN,
    'dev',
    '--registry',
    options.registry ?? demoRegistry(),
    '--port',
    String(port),
    ...(options.examples ? ['--examples', options.examples] : []),
  ];
}

/** Starts `plugindex dev`, resolves with its output once it serves; `stop` ends it. */
async function startDev(
  options: { readonly registry?: string; readonly examples?: string } = {},
): Promise<{ output: string; stop: () => Promise<void> }> {
  const child: ChildProcess = spawn(process.execPath, devArgs(options), {
    cwd: ROOT,
    stdio: 'pipe',
  });
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
    const state = JSON.parse(await readFile(path.join(demoRegistry(), 'state', 'log.json'), 'utf8'));
    expect(state).toEqual(snapshot.log);
  }, 120_000);
});

describe('when a start fails partway through writing the demo publisher key', () => {
  it('leaves no part of a key, and the next start makes one and publishes with it', async () => {
    // Prepare: a registry serving on this port (so the start writes nothing before the key) and one example.
    const registry = path.join(home, 'failed-registry');
    const examples = path.join(home, 'failed-examples');
    const init = await plugindex('init', '--registry', registry, '--url', `http://127.0.0.1:${port}`);
    expect(init.code).toBe(0);
    await cp(path.join(ROOT, 'examples/kubecost-lens/1.0.0'), path.join(examples, 'kubecost-lens/1.0.0'), {
      recursive: true,
    });

    // Act: no file may grow past 0 bytes (a full disk's EFBIG), so the key's first write fails. The key was
    // written in place, and a start that failed there (or was killed) left an empty secret.asc, which every
    // later start took for its key and failed to sign with.
    const failed = spawn(
      '/bin/sh',
      ['-c', 'ulimit -f 0 && exec "$0" "$@"', process.execPath, ...devArgs({ registry, examples })],
      {
        cwd: ROOT,
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { ...process.env, NODE_DISABLE_COMPILE_CACHE: '1' },
      },
    );
    let stderr = '';
    failed.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const [code] = await once(failed, 'exit');

    // Assess
    expect(code, stderr).toBe(1);
    expect(stderr).toContain('EFBIG');
    const keyDir = path.join(registry, 'demo-publisher');
    expect(await readdir(keyDir)).toEqual([]);
    const next = await startDev({ registry, examples });
    try {
      expect(next.output).toMatch(/examples: 1 published/);
    } finally {
      await next.stop();
    }
    expect((await readdir(keyDir)).sort()).toEqual(['public.asc', 'secret.asc']);
  }, 120_000);
});

describe('when starts make the demo publisher key at once', () => {
  it('all sign with the one key written, whole, beside its public half', async () => {
    // Each start wrote its own key in place, one over another, and one that read the file while another
    // wrote it read part of a key; the public half left could be another key's. Which start wins is the
    // scheduler's choice, so the race is run a few times, on fresh folders.
    for (const round of [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]) {
      // Prepare
      const dir = path.join(home, `concurrent-${round}`);

      // Act
      const [first, ...others] = await Promise.all([1, 2, 3, 4].map(() => demoPublisherKey(dir)));

      // Assess
      expect(others).toEqual([first, first, first]);
      const keyDir = path.join(dir, 'demo-publisher');
      expect(await readFile(path.join(keyDir, 'secret.asc'), 'utf8')).toBe(first);
      const publicKey = await readPublicKey(await readFile(path.join(keyDir, 'public.asc'), 'utf8'));
      expect(publicKey.fingerprint).toBe((await createSigner(first as string)).fingerprint);
      expect((await readdir(keyDir)).sort()).toEqual(['public.asc', 'secret.asc']);
    }
  });
});

describe('when --examples names no folder (a typo, or the command run outside the checkout)', () => {
  it('refuses FILE_NOT_FOUND naming it, before making a registry', async () => {
    // Prepare: it said "examples: 0 published, 0 already published, 0 rejected" and served an empty
    // registry, as if the examples had been read.
    const registry = path.join(home, 'no-examples');
    const missing = path.join(home, 'exmaples');

    // Act
    const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        devArgs({ registry, examples: missing }),
        { cwd: ROOT },
        (error, _out, stderr) =>
          resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stderr }),
      );
    });

    // Assess
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`FILE_NOT_FOUND: --examples ${missing} is not a folder`);
    await expect(readdir(registry)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe("when --registry names a folder inside another registry's", () => {
  it('refuses it, OUTPUT_IN_REGISTRY (exit 2), making no registry whose signing key the other serves', async () => {
    // Prepare: init refuses such a folder, dev made its registry there (with the examples), its signing key
    // in the outer registry's published tree.
    const outer = path.join(home, 'outer');
    const made = await new Promise<number>((resolve) => {
      execFile(process.execPath, [BIN, 'init', '--registry', outer], (error) =>
        resolve(error ? ((error as { code?: number }).code ?? -1) : 0),
      );
    });
    expect(made).toBe(0);
    const inner = path.join(outer, 'public', 'sub');

    // Act
    const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        devArgs({ registry: inner, examples: path.join(ROOT, 'examples') }),
        // It served (ending only when stopped): a failure, not a hang.
        { cwd: ROOT, timeout: 30_000 },
        (error, _out, stderr) =>
          resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stderr }),
      );
    });

    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`OUTPUT_IN_REGISTRY: --registry ${inner} is inside the registry `);
    await expect(readdir(inner)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
