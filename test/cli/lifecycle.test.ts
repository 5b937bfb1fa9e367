/**
 * Lifecycle and the log from the command line: the built `plugindex` as a process, against a local registry
 * `plugindex serve` serves over real HTTP, whose publishes and advisories went through the pipeline
 * (`plugindex publish`, `plugindex advisory add`: each applied and logged), and whose plugin documents are
 * edited as a yank would leave them (then re-signed by `rebuildRegistry`). `install` refusing a high
 * advisory and `--allow-vulnerable`, a yanked lock entry and `--deny-yanked`, `list --outdated`, `audit` and
 * `audit NAME` (exit codes and `--json`), and `verify --url` over a good log and a tampered one.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initRegistry, type LocalRegistry, openRegistry } from '../../cli/local/registry.ts';
import { main } from '../../cli/main.ts';
import { logSegmentKey, parseSegment, type ReadEntry } from '../../index-builder/log.ts';
import { signVoid } from '../../index-builder/log-void.ts';
import type { LogHead, SnapshotDocument } from '../../index-builder/model.ts';
import { encode, makeBundle, testKey, validManifest } from '../support/fixtures.ts';
import {
  alterLine,
  appendLog,
  editPlugin,
  segmentLines,
  serveSegment,
  versionOf,
} from '../support/lifecycle.ts';
import { type ServingRegistry, startServe } from '../support/serve.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(ROOT, 'cli/bin.mjs');
const run = promisify(execFile);
/** An advisory as `plugindex advisory add` takes it. */
interface AdvisoryArgs {
  readonly id: string;
  readonly severity: string;
  readonly affected: string;
  readonly fixed?: string;
  readonly summary: string;
}
const ADVISORY: AdvisoryArgs = {
  id: 'PDX-2026-0042',
  severity: 'critical',
  affected: '<2.0.0',
  fixed: '2.0.0',
  summary: 'runs any command the cost API returns',
};
const LOW: AdvisoryArgs = {
  id: 'PDX-2026-0043',
  severity: 'low',
  affected: '>=2.0.0',
  summary: 'verbose logging',
};

/** The registry's own URL; the tests serve it elsewhere, a mirror of it (`verify --url REGISTRY_URL --mirror`). */
const REGISTRY_URL = 'http://127.0.0.1:1';
let work: string;
let registryDir: string;
let local: LocalRegistry;
let served: ServingRegistry;
let base: string;
let keyFile: string;
let head: LogHead;
let publisher: string;
let homes = 0;

interface Result {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** A fresh client machine with the registry added; runs the built command in its own folders. */
async function home(): Promise<(...args: string[]) => Promise<Result>> {
  homes += 1;
  const dir = path.join(work, `home${homes}`);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PLUGINDEX_CONFIG_HOME: path.join(dir, 'config'),
    PLUGINDEX_DATA_HOME: path.join(dir, 'data'),
    PLUGINDEX_CACHE_HOME: path.join(dir, 'cache'),
    CI: '1',
  };
  await mkdir(dir, { recursive: true });
  const plugindex = async (...args: string[]): Promise<Result> => {
    try {
      const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { cwd: dir, env });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const e = error as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };
  const added = await plugindex('registry', 'add', 'main', base, '--key', keyFile);
  expect(added.code, added.stderr).toBe(0);
  return plugindex;
}

/**
 * `plugindex verify` of the registry at its served mirror, with the registry key; rejects on a non-zero exit
 * as `run` does.
 */
function verifyMirror(...more: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, [
    BIN,
    'verify',
    '--url',
    REGISTRY_URL,
    '--mirror',
    base,
    '--key',
    keyFile,
    ...more,
  ]);
}

async function publish(name: string, version: string): Promise<void> {
  const file = path.join(work, `${name}-${version}.tgz`);
  await writeFile(
    file,
    await makeBundle({
      manifest: validManifest({ name, version }),
      artifacts: [{ os: 'linux', arch: 'amd64', name, body: encode(`#!/bin/sh\necho ${name} ${version}\n`) }],
    }),
  );
  expect(await main(['publish', file, '--registry', registryDir, '--json'])).toBe(0);
}

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'plugindex-cli-lifecycle-'));
  registryDir = path.join(work, 'registry');
  await initRegistry(registryDir, { name: 'Lifecycle Registry', url: REGISTRY_URL });
  keyFile = path.join(registryDir, 'public/keys/registry.asc');
  for (const [name, version] of [
    ['risky-scan', '1.0.0'],
    ['risky-scan', '2.0.0'],
    ['steady-tool', '1.0.0'],
    ['steady-tool', '1.1.0'],
  ] as const)
    await publish(name, version);
  // The owner (the key the bundles are signed with) publishes both advisories: log entries 4 and 5.
  const ownerKey = path.join(work, 'owner.asc');
  await writeFile(ownerKey, (await testKey('publisher')).secretKey);
  for (const a of [ADVISORY, LOW]) {
    const args = ['--id', a.id, '--severity', a.severity, '--affected', a.affected, '--summary', a.summary];
    if (a.fixed) args.push('--fixed', a.fixed);
    expect(
      await main(['advisory', 'add', 'risky-scan', ...args, '--key', ownerKey, '--registry', registryDir]),
    ).toBe(0);
  }
  local = await openRegistry(registryDir);
  const doc = JSON.parse(
    await readFile(path.join(registryDir, 'public/plugins/risky-scan/index.json'), 'utf8'),
  );
  publisher = doc.versions[0].publisher;
  expect(doc.advisories.map((a: { id: string }) => a.id)).toEqual([ADVISORY.id, LOW.id]);
  const snapshot: SnapshotDocument = JSON.parse(
    await readFile(path.join(registryDir, 'public/snapshot.json'), 'utf8'),
  );
  // Four publishes and two advisories, each logged by the pipeline.
  expect(snapshot.log?.length).toBe(6);
  head = snapshot.log as LogHead;
  served = await startServe(registryDir);
  base = served.url;
}, 60_000);
afterAll(async () => {
  await served?.stop();
  await rm(work, { recursive: true, force: true });
});

describe('when an install meets an advisory', () => {
  it('refuses a critical one (exit 1, VULNERABLE), installs with --allow-vulnerable and a warning, and lists it', async () => {
    const plugindex = await home();
    const refused = await plugindex('install', 'risky-scan@1.0.0');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('VULNERABLE');
    expect(refused.stderr).toContain(`PDX-2026-0042 (critical): ${ADVISORY.summary}; fixed in 2.0.0`);
    const json = await plugindex('install', 'risky-scan@1.0.0', '--json');
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, error: { code: 'VULNERABLE' } });

    const allowed = await plugindex('install', 'risky-scan@1.0.0', '--allow-vulnerable', '--json');
    expect(allowed.code, allowed.stderr).toBe(0);
    expect(JSON.parse(allowed.stdout).items[0]).toMatchObject({
      version: '1.0.0',
      advisories: [{ id: 'PDX-2026-0042', severity: 'critical' }],
      warnings: [expect.stringContaining('PDX-2026-0042 (critical)')],
    });

    const outdated = await plugindex('list', '--outdated');
    expect(outdated.code).toBe(1);
    expect(outdated.stdout).toContain('[1 advisory]');
    expect(outdated.stdout).toContain(
      `  advisory PDX-2026-0042 (critical): ${ADVISORY.summary}; fixed in 2.0.0`,
    );
  });

  it('warns of a low one on stderr, and installs', async () => {
    const plugindex = await home();
    const installed = await plugindex('install', 'risky-scan');
    expect(installed.code, installed.stderr).toBe(0);
    expect(installed.stdout).toContain('installed risky-scan@2.0.0');
    expect(installed.stderr).toContain(
      'warning: risky-scan@2.0.0 is affected by advisory PDX-2026-0043 (low)',
    );
  });
});

describe('when a plugin under advisories is described (info)', () => {
  it('lists its advisories, marks the versions each affects, and says an install refuses the one resolved (--json too)', async () => {
    const plugindex = await home();
    const info = await plugindex('info', 'risky-scan');
    expect(info.code, info.stderr).toBe(0);
    const lines = info.stdout.split('\n');
    expect(lines).toContain('  advisories:');
    expect(lines).toContain(
      `    PDX-2026-0042 (critical): ${ADVISORY.summary}; fixed in 2.0.0  affects <2.0.0`,
    );
    expect(lines).toContain(
      '    PDX-2026-0043 (low): verbose logging; no fixed version yet  affects >=2.0.0',
    );
    expect(lines.find((l) => l.startsWith('    1.0.0  '))).toMatch(
      /\[affected by PDX-2026-0042 \(critical\)\]$/,
    );
    expect(lines.find((l) => l.startsWith('    2.0.0  '))).toMatch(/\[affected by PDX-2026-0043 \(low\)\]$/);

    const resolved = await plugindex('info', 'risky-scan@1.0.0');
    expect(resolved.code, resolved.stderr).toBe(0);
    expect(resolved.stdout).toContain(
      `  warning: risky-scan@1.0.0 is affected by advisory PDX-2026-0042 (critical): ${ADVISORY.summary}; fixed in 2.0.0 (install refuses it, VULNERABLE, unless --allow-vulnerable)`,
    );
    const json = await plugindex('info', 'risky-scan@1.0.0', '--json');
    expect(JSON.parse(json.stdout).resolved).toMatchObject({
      version: '1.0.0',
      advisories: [{ id: 'PDX-2026-0042', severity: 'critical' }],
      warnings: [expect.stringContaining('PDX-2026-0042 (critical)')],
    });
    // A version no advisory affects says none.
    expect(
      JSON.parse((await plugindex('info', 'steady-tool@1.0.0', '--json')).stdout).resolved,
    ).toMatchObject({
      advisories: [],
      warnings: [],
    });
  });

  it('marks a version the operator removed as removed, with the reason, not as a bare yank', async () => {
    const plugindex = await home();
    await editPlugin(local.context, 'steady-tool', (doc) => {
      Object.assign(versionOf(doc, '1.1.0'), {
        yanked: true,
        removed: { reason: 'legal request', at: '2026-11-01T12:00:00Z' },
      });
    });
    try {
      expect((await plugindex('registry', 'update')).code).toBe(0);
      const info = await plugindex('info', 'steady-tool');
      expect(info.code, info.stderr).toBe(0);
      expect(info.stdout.split('\n').find((l) => l.startsWith('    1.1.0  '))).toMatch(
        /\[removed 2026-11-01T12:00:00Z: legal request\]$/,
      );
    } finally {
      await editPlugin(local.context, 'steady-tool', (doc) => {
        Object.assign(versionOf(doc, '1.1.0'), { yanked: false, removed: undefined });
      });
    }
  });
});

describe('when a whole plugin is deprecated', () => {
  it('search marks its row on a line under it, and info says why and what replaces it', async () => {
    const plugindex = await home();
    await editPlugin(local.context, 'steady-tool', (doc) => {
      doc.deprecation = { message: 'no longer kept', replacement: 'risky-scan', at: '2026-11-01T12:00:00Z' };
    });
    try {
      expect((await plugindex('registry', 'update')).code).toBe(0);
      const search = await plugindex('search', 'steady');
      expect(search.code, search.stderr).toBe(0);
      const lines = search.stdout.trimEnd().split('\n');
      expect(lines[0]).toMatch(/^main\/steady-tool {2}1\.1\.0 {2}/);
      expect(lines[1]).toBe('  deprecated (plugindex info steady-tool says why)');
      expect(JSON.parse((await plugindex('search', 'steady', '--json')).stdout).results[0]).toMatchObject({
        name: 'steady-tool',
        deprecated: true,
      });
      const info = await plugindex('info', 'steady-tool');
      expect(info.stdout.split('\n')).toContain('  deprecated: no longer kept; use risky-scan instead');
    } finally {
      await editPlugin(local.context, 'steady-tool', (doc) => {
        doc.deprecation = undefined;
      });
    }
  });
});

describe('when a locked version is yanked since', () => {
  it('installs it with a warning, and --deny-yanked refuses it (exit 1, YANKED)', async () => {
    const plugindex = await home();
    expect((await plugindex('install', 'steady-tool@^1')).code).toBe(0);
    await editPlugin(local.context, 'steady-tool', (doc) => {
      Object.assign(versionOf(doc, '1.1.0'), { yanked: true, yanked_reason: 'wrong totals' });
    });
    try {
      // Past the minute a snapshot just checked is used without asking again.
      expect((await plugindex('registry', 'update')).code).toBe(0);
      const dir = path.join(work, `home${homes}`, 'data', 'plugins');
      await rm(dir, { recursive: true });
      const warned = await plugindex('install');
      expect(warned.code, warned.stderr).toBe(0);
      expect(warned.stderr).toContain('warning: steady-tool@1.1.0 is yanked: wrong totals');
      await rm(dir, { recursive: true });
      const denied = await plugindex('install', '--deny-yanked');
      expect(denied.code).toBe(1);
      expect(denied.stderr).toContain('YANKED');
      expect(denied.stderr).toContain('wrong totals');
    } finally {
      await editPlugin(local.context, 'steady-tool', (doc) => {
        Object.assign(versionOf(doc, '1.1.0'), { yanked: false, yanked_reason: undefined });
      });
    }
  });
});

describe('when installed plugins are audited', () => {
  it('names every advisory affecting what is installed, critical first (exit 1), and --json', async () => {
    const plugindex = await home();
    expect((await plugindex('install', 'steady-tool@1.0.0')).code).toBe(0);
    expect((await plugindex('install', 'risky-scan@2.0.0')).code).toBe(0);
    expect((await plugindex('install', 'risky-scan@1.0.0', '--allow-vulnerable')).code).toBe(0);
    const audit = await plugindex('audit');
    expect(audit.code).toBe(1);
    const lines = audit.stdout.trim().split('\n');
    expect(lines[0]).toBe(
      `critical  risky-scan@1.0.0 from main: PDX-2026-0042 (critical): ${ADVISORY.summary}; fixed in 2.0.0`,
    );
    expect(lines[1]).toMatch(/^low {2}risky-scan@2\.0\.0 from main: PDX-2026-0043 \(low\)/);
    expect(lines.at(-1)).toBe('2 advisories affect installed versions (1 high or critical)');
    const json = JSON.parse((await plugindex('audit', '--json')).stdout);
    expect(json).toMatchObject({ ok: false, checked: 3 });
    expect(json.findings.map((f: { advisory: { id: string } }) => f.advisory.id)).toEqual([
      'PDX-2026-0042',
      'PDX-2026-0043',
    ]);
  });

  it('reports a version removed since (exit 1) and one yanked since (reported only), in --json too', async () => {
    const plugindex = await home();
    expect((await plugindex('install', 'steady-tool@1.1.0')).code).toBe(0);
    await editPlugin(local.context, 'steady-tool', (doc) => {
      Object.assign(versionOf(doc, '1.1.0'), { yanked: true, yanked_reason: 'breaks on arm' });
    });
    try {
      // Past the minute a snapshot just checked is used without asking again.
      expect((await plugindex('registry', 'update')).code).toBe(0);
      const yanked = await plugindex('audit');
      expect(yanked.code, yanked.stderr).toBe(0);
      expect(yanked.stdout).toContain('yanked  steady-tool@1.1.0 from main: breaks on arm');
      await editPlugin(local.context, 'steady-tool', (doc) => {
        Object.assign(versionOf(doc, '1.1.0'), {
          removed: { reason: 'legal request', at: '2026-11-01T12:00:00Z' },
        });
      });
      expect((await plugindex('registry', 'update')).code).toBe(0);
      const removed = await plugindex('audit');
      expect(removed.code).toBe(1);
      expect(removed.stdout).toContain('removed  steady-tool@1.1.0 from main: legal request');
      const json = JSON.parse((await plugindex('audit', '--json')).stdout);
      expect(json).toMatchObject({
        ok: false,
        states: [{ name: 'steady-tool', version: '1.1.0', state: 'removed', reason: 'legal request' }],
      });
    } finally {
      await editPlugin(local.context, 'steady-tool', (doc) => {
        Object.assign(versionOf(doc, '1.1.0'), {
          yanked: false,
          yanked_reason: undefined,
          removed: undefined,
        });
      });
    }
  });

  it('exits 0 when no advisory affects anything installed', async () => {
    const plugindex = await home();
    expect((await plugindex('install', 'steady-tool@1.0.0')).code).toBe(0);
    const audit = await plugindex('audit');
    expect(audit.code, audit.stderr).toBe(0);
    expect(audit.stdout).toContain('no advisory affects the 1 installed version checked');
  });

  it('fails (exit 1) when it could check nothing: a missing or empty install folder, saying so, in --json too', async () => {
    const plugindex = await home();
    const missing = await plugindex('audit', '--dir', 'no-such-folder');
    expect(missing.code, missing.stderr).toBe(1);
    expect(missing.stdout).toContain('nothing was audited: there is no install folder at');
    expect(missing.stdout).toContain('no-such-folder');
    expect(missing.stdout).not.toContain('0 installed versions checked');
    const json = JSON.parse((await plugindex('audit', '--dir', 'no-such-folder', '--json')).stdout);
    expect(json).toMatchObject({
      ok: false,
      checked: 0,
      installed: 0,
      findings: [],
      states: [],
      skipped: [],
    });
    expect(json.unaudited).toContain('no install folder');
    await mkdir(path.join(work, `home${homes}`, 'empty'));
    const empty = await plugindex('audit', '--dir', 'empty');
    expect(empty.code).toBe(1);
    expect(empty.stdout).toContain('nothing was audited: nothing is installed in');
  });

  it('says how many it could not check beside those it did', async () => {
    const plugindex = await home();
    expect((await plugindex('install', 'steady-tool@1.0.0')).code).toBe(0);
    const json = JSON.parse((await plugindex('audit', '--json')).stdout);
    expect(json).toMatchObject({ ok: true, checked: 1, installed: 1 });
    expect(json.unaudited).toBeUndefined();
  });
});

describe('when an update moves below the version installed', () => {
  it('says downgraded, from which version and why (the newer yanked), and marks it in --json', async () => {
    const plugindex = await home();
    expect((await plugindex('install', 'steady-tool')).code).toBe(0);
    // Another machine, for the text.
    const again = await home();
    expect((await again('install', 'steady-tool@1.1.0', '--dir', 'pinned')).code).toBe(0);
    await editPlugin(local.context, 'steady-tool', (doc) => {
      Object.assign(versionOf(doc, '1.1.0'), { yanked: true, yanked_reason: 'breaks on arm' });
    });
    try {
      expect((await plugindex('registry', 'update')).code).toBe(0);
      const update = await plugindex('update', 'steady-tool', '--json');
      expect(update.code, update.stderr).toBe(0);
      expect(JSON.parse(update.stdout).items[0]).toMatchObject({
        version: '1.0.0',
        downgrade: { from: '1.1.0', reason: 'steady-tool@1.1.0 is yanked: breaks on arm' },
      });
      expect((await again('registry', 'update')).code).toBe(0);
      const text = await again('update', 'steady-tool@^1.0.0', '--dir', 'pinned');
      expect(text.code, text.stderr).toBe(0);
      expect(text.stdout).toMatch(/^downgraded to steady-tool@1\.0\.0 \(/m);
      expect(text.stdout).toContain(
        '  down from 1.1.0: steady-tool@1.1.0 is yanked: breaks on arm; 1.0.0 is the highest version the request allows now',
      );
      expect(text.stdout).not.toContain('updated to');
    } finally {
      await editPlugin(local.context, 'steady-tool', (doc) => {
        Object.assign(versionOf(doc, '1.1.0'), { yanked: false, yanked_reason: undefined });
      });
    }
  });
});

describe("when a plugin's history is audited", () => {
  it('prints its entries from the verified log, then its advisories (--json too)', async () => {
    const plugindex = await home();
    const text = await plugindex('audit', 'risky-scan');
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain(
      `risky-scan in main: the registry's log of ${head.length} entries (head ${head.head}) verified from its first entry`,
    );
    expect(text.stdout).toMatch(new RegExp(`#0 {2}\\S+ {2}publish {2}1\\.0\\.0 {2}signer ${publisher}`));
    expect(text.stdout).toContain(
      `advisory-add  -  signer ${publisher}  affected="<2.0.0" id="PDX-2026-0042"`,
    );
    expect(text.stdout).not.toContain('steady-tool');
    expect(text.stdout).toContain(
      `  PDX-2026-0042 (critical): ${ADVISORY.summary}; fixed in 2.0.0  affects <2.0.0`,
    );

    const json = JSON.parse((await plugindex('audit', 'risky-scan', '--registry', 'main', '--json')).stdout);
    expect(json).toMatchObject({ name: 'risky-scan', registry: 'main', log: head });
    // Entries 2 and 3 are steady-tool's publishes.
    expect(json.entries.map((e: { seq: number; type: string }) => [e.seq, e.type])).toEqual([
      [0, 'publish'],
      [1, 'publish'],
      [4, 'advisory-add'],
      [5, 'advisory-add'],
    ]);
    // An action's entry says when its signer made it (a publish's does not), in both forms.
    const created = json.entries.map((e: { created?: string }) => e.created);
    expect(created.slice(0, 2)).toEqual([undefined, undefined]);
    for (const made of created.slice(2)) {
      expect(made).toMatch(/^\d{4}-\d{2}-\d{2}T/);
      expect(text.stdout).toContain(`(made ${made})`);
    }
    expect(json.advisories.map((a: { id: string }) => a.id)).toEqual(['PDX-2026-0042', 'PDX-2026-0043']);
    expect((await plugindex('audit', 'risky-scan@1.0.0')).code).toBe(2);
  });

  it('refuses a tampered log (exit 3), and verify --url checks the whole chain', async () => {
    const plugindex = await home();
    const good = await verifyMirror();
    expect(good.stdout).toContain(
      `log: ${head.length} entries, every link checked from the first to head ${head.head}`,
    );
    const goodJson = await verifyMirror('--json');
    expect(JSON.parse(goodJson.stdout)).toMatchObject({ ok: true, log: head });

    const lines = await segmentLines(local.context);
    await serveSegment(local.context, [lines[0] as string, alterLine(lines[1] as string), ...lines.slice(2)]);
    try {
      const audit = await plugindex('audit', 'risky-scan');
      expect(audit.code).toBe(3);
      expect(audit.stderr).toContain('LOG_ENTRY_ALTERED');
      const verify = await verifyMirror('--json').catch((e: { code: number; stdout: string }) => e);
      expect((verify as { code?: number }).code).toBe(3);
      // The mirror read is named, as it is when verified.
      expect(JSON.parse(verify.stdout)).toMatchObject({
        ok: false,
        url: REGISTRY_URL,
        mirror: base,
        code: 'LOG_ENTRY_ALTERED',
      });
    } finally {
      await serveSegment(local.context, lines);
    }
  });

  it('verify --url reports each disagreement between the log and a document the registry key re-signed (exit 3)', async () => {
    const verify = (...more: string[]) =>
      verifyMirror(...more).catch((e: { code: number; stdout: string }) => e);
    let kept: unknown;
    await editPlugin(local.context, 'risky-scan', (doc) => {
      kept = doc.advisories;
      doc.advisories = [];
    });
    try {
      const text = await verify();
      expect((text as { code?: number }).code).toBe(3);
      expect(text.stdout).toContain(
        `NOT verified ${REGISTRY_URL} at its mirror ${base}: LOG_DISAGREES: the log disagrees with what the registry serves (2):`,
      );
      expect(text.stdout).toContain(
        `  LOG_ADVISORY_DIFFERS: log entry 4 (advisory-add) of risky-scan: advisory ${ADVISORY.id} is not listed`,
      );
      const json = JSON.parse((await verify('--json')).stdout);
      expect(json).toMatchObject({ ok: false, code: 'LOG_DISAGREES' });
      expect(
        json.disagreements.map((d: { code: string; plugin: string; seq: number }) => [
          d.code,
          d.plugin,
          d.seq,
        ]),
      ).toEqual([
        ['LOG_ADVISORY_DIFFERS', 'risky-scan', 4],
        ['LOG_ADVISORY_DIFFERS', 'risky-scan', 5],
      ]);
    } finally {
      await editPlugin(local.context, 'risky-scan', (doc) => {
        doc.advisories = kept as typeof doc.advisories;
      });
    }
    expect((await verify()).stdout).toContain(
      'and held against every plugin document and the 2 action envelopes',
    );
  });
});

// Last: it grows the log every test above reads as it was.
describe('when the registry voids an entry that never took effect', () => {
  it('audit NAME marks it voided with the reason, and verify --url verifies the registry (exit 0)', async () => {
    // A publish logged that no document shows (its document refused for good), then the registry's void of it.
    await appendLog(local.context, [
      { type: 'publish', plugin: 'risky-scan', version: '3.0.0', signer: publisher },
    ]);
    const segment = await local.context.site.get(logSegmentKey(0));
    const entries = parseSegment(segment?.body ?? new Uint8Array(), 0);
    const reason = 'the store refused its document for good (STORE_REFUSED)';
    await appendLog(local.context, [
      await signVoid({
        voided: entries[head.length] as ReadEntry,
        reason,
        time: new Date().toISOString(),
        signer: local.context.signer,
        registry: local.context.config.url,
      }),
    ]);
    const plugindex = await home();
    const text = await plugindex('audit', 'risky-scan');
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(
      new RegExp(
        `#${head.length} {2}\\S+ {2}publish {2}3\\.0\\.0 {2}signer ${publisher}  \\[voided by #${head.length + 1}: ${reason.replace(/[()]/g, '\\$&')}\\]`,
      ),
    );
    expect(text.stdout).toContain(`#${head.length + 1}  `);
    expect(text.stdout).toContain(`void  3.0.0  signer ${local.context.signer.fingerprint}`);
    const json = JSON.parse((await plugindex('audit', 'risky-scan', '--json')).stdout);
    expect(json.entries.at(-2)).toMatchObject({ seq: head.length, voided: { by: head.length + 1, reason } });
    const verified = await verifyMirror();
    expect(verified.stdout).toContain(`log: ${head.length + 2} entries`);
    expect(verified.stdout).toContain(
      `  log entry #${head.length} (publish risky-scan 3.0.0) voided by the registry at #${head.length + 1}: ${reason}\n`,
    );
  });
});
