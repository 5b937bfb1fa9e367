/**
 * Lifecycle states as a client installing over real HTTP meets them: a registry the pipeline published,
 * its plugin documents then edited as the lifecycle actions leave them (yanked, removed with the files
 * deleted, deprecated, advisories, a publisher key revoked) and re-rendered and re-signed by
 * `rebuildRegistry`. Install, update and a plugin set refuse or warn as the issue says, nothing is written
 * on a refusal, `list --outdated` and `audit` report what the registry now says of what is installed, and a
 * frozen install (which reads no plugin document) is what `audit` catches.
 */
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRegistryServer, listenRegistryServer } from '../../cli/local/server.ts';
import { createClient, type PlugindexClient } from '../../client/client.ts';
import { ClientError } from '../../client/errors.ts';
import { createHttpFetcher } from '../../client/fetcher.ts';
import type { ClientDirectories } from '../../client/paths.ts';
import { fixedClock } from '../../index-builder/clock.ts';
import { processSubmissions } from '../../index-builder/pipeline/index.ts';
import { encode, makeBundle, makeRegistry, type TestRegistry, validManifest } from '../support/fixtures.ts';
import { editPlugin, versionOf } from '../support/lifecycle.ts';

const NOW = new Date('2026-11-02T00:00:00Z');
const LINUX = { os: 'linux', arch: 'amd64' } as const;
const HIGH = {
  id: 'PDX-2026-0001',
  severity: 'high',
  affected: '<1.2.0',
  fixed: '1.2.0',
  summary: 'reads credentials from any path',
  url: 'https://registry.example/advisories/PDX-2026-0001',
  published: '2026-11-01T00:00:00Z',
};
const LOW = {
  id: 'PDX-2026-0002',
  severity: 'low',
  affected: '>=1.2.0',
  summary: 'logs the cluster name',
  published: '2026-11-01T00:00:00Z',
};
const MODERATE = {
  id: 'PDX-2026-0003',
  severity: 'moderate',
  affected: '*',
  summary: 'retries without backoff',
  published: '2026-11-01T00:00:00Z',
};
const REMOVED = {
  reason: 'shipped a leaked credential (legal request 2026-17)',
  at: '2026-11-01T12:00:00.000Z',
};

let registry: TestRegistry;
let base: string;
let close: () => Promise<void>;
let root: string;

const bundle = (name: string, version: string) =>
  makeBundle({
    manifest: validManifest({ name, version }),
    artifacts: [{ ...LINUX, name, body: encode(`#!/bin/sh\necho ${name} ${version}\n`) }],
  });

beforeAll(async () => {
  registry = await makeRegistry();
  const published: [string, string][] = [
    ['yank-tool', '1.0.0'],
    ['yank-tool', '1.1.0'],
    ['gone-tool', '1.0.0'],
    ['gone-tool', '2.0.0'],
    ['old-tool', '1.0.0'],
    ['vuln-tool', '1.0.0'],
    ['vuln-tool', '1.2.0-rc.1'],
    ['vuln-tool', '1.2.0'],
    ['revoked-tool', '1.0.0'],
  ];
  await processSubmissions(
    registry.context,
    await registry.submit(...(await Promise.all(published.map(([n, v]) => bundle(n, v))))),
  );
  // What the actions leave that no install has to come before.
  await editPlugin(registry.context, 'old-tool', (doc) => {
    doc.deprecation = { message: 'unmaintained', replacement: 'new-tool', at: '2026-11-01T00:00:00Z' };
  });
  await editPlugin(registry.context, 'vuln-tool', (doc) => {
    doc.advisories = [HIGH, LOW] as typeof doc.advisories;
  });
  await editPlugin(registry.context, 'revoked-tool', (doc) => {
    versionOf(doc, '1.0.0').publisher_revoked = { at: '2026-11-01T06:00:00Z', reason: 'key leaked' };
    doc.advisories = [MODERATE] as typeof doc.advisories;
  });
  const listening = await listenRegistryServer(createRegistryServer({ site: registry.site }), 0);
  base = listening.url;
  close = listening.close;
  root = await mkdtemp(join(tmpdir(), 'plugindex-lifecycle-'));
});
afterAll(async () => {
  await close();
  await rm(root, { recursive: true, force: true });
});

interface Machine {
  readonly dirs: ClientDirectories;
  readonly dir: string;
  readonly lockfile: string;
  use<T>(body: (client: PlugindexClient) => Promise<T>, options?: { offline?: boolean }): Promise<T>;
}

let machines = 0;
/** A client machine with the registry added. */
async function machine(): Promise<Machine> {
  machines += 1;
  const home = join(root, `m${machines}`);
  const dirs = { config: join(home, 'config'), data: join(home, 'data'), cache: join(home, 'cache') };
  const m: Machine = {
    dirs,
    dir: join(home, 'plugins'),
    lockfile: join(home, 'plugindex.lock'),
    async use(body, options = {}) {
      const client = createClient({
        dirs,
        fetcher: createHttpFetcher({ env: {}, retries: 0 }),
        env: {},
        clock: fixedClock(NOW),
        platform: LINUX,
        offline: options.offline ?? false,
        freshForMs: 0,
      });
      try {
        return await body(client);
      } finally {
        await client.close();
      }
    },
  };
  await m.use((c) =>
    c.addRegistry({ name: 'test', url: base, pin: { armored: registry.registryKey.publicKey } }),
  );
  return m;
}

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

async function failure(work: Promise<unknown>): Promise<ClientError> {
  const error = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ClientError);
  return error as ClientError;
}

describe('when a version is yanked after it was locked', () => {
  let m: Machine;
  let lock: string;
  beforeAll(async () => {
    m = await machine();
    await m.use((c) => c.install({ requests: ['yank-tool@^1.0.0'], dir: m.dir, lockfile: m.lockfile }));
    lock = await readFile(m.lockfile, 'utf8');
    await editPlugin(registry.context, 'yank-tool', (doc) => {
      Object.assign(versionOf(doc, '1.1.0'), { yanked: true, yanked_reason: 'crashes on start' });
    });
  });

  it('installs it from the lock with a warning giving the reason, and records it as yanked', async () => {
    await rm(m.dir, { recursive: true });
    const result = await m.use((c) => c.install({ requests: [], dir: m.dir, lockfile: m.lockfile }));
    expect(result.items[0]).toMatchObject({ name: 'yank-tool', version: '1.1.0' });
    expect(result.items[0]?.warnings).toEqual(['yank-tool@1.1.0 is yanked: crashes on start']);
    const installed = await m.use((c) => c.installed({ dir: m.dir }));
    expect(installed.plugins['yank-tool']?.versions['1.1.0']?.yanked).toBe(true);
    const [row] = await m.use((c) => c.list({ dir: m.dir, outdated: true, lockfile: m.lockfile }));
    expect(row).toMatchObject({ yanked: true, yanked_reason: 'crashes on start', wanted: '1.0.0' });
  });

  it('refuses it with --deny-yanked (YANKED), installing nothing and leaving the lock', async () => {
    await rm(m.dir, { recursive: true, force: true });
    const error = await failure(
      m.use((c) => c.install({ requests: [], dir: m.dir, lockfile: m.lockfile, denyYanked: true })),
    );
    expect(error).toMatchObject({ code: 'YANKED', message: expect.stringContaining('crashes on start') });
    expect(await exists(m.dir)).toBe(false);
    expect(await readFile(m.lockfile, 'utf8')).toBe(lock);
  });

  it('refuses it with --deny-yanked when the installed tree already is the lock (no fast path then)', async () => {
    await m.use((c) => c.install({ requests: [], dir: m.dir, lockfile: m.lockfile }));
    const error = await failure(
      m.use((c) => c.install({ requests: [], dir: m.dir, lockfile: m.lockfile, denyYanked: true })),
    );
    expect(error).toMatchObject({ code: 'YANKED', message: expect.stringContaining('crashes on start') });
    expect(await readFile(m.lockfile, 'utf8')).toBe(lock);
    const installed = await m.use((c) => c.installed({ dir: m.dir }));
    expect(Object.keys(installed.plugins['yank-tool']?.versions ?? {})).toEqual(['1.1.0']);
  });

  it('refuses it with --frozen --deny-yanked too (the registry\u2019s signed plugin document read for it), installing nothing', async () => {
    // A CI job reproducing the lock (frozen) that must not run a version yanked since: frozen alone reads
    // no plugin document, and took --deny-yanked without a word, installing the yanked version.
    const ci = await machine();
    await writeFile(ci.lockfile, lock);
    const error = await failure(
      ci.use((c) =>
        c.install({ requests: [], dir: ci.dir, lockfile: ci.lockfile, frozen: true, denyYanked: true }),
      ),
    );
    expect(error).toMatchObject({ code: 'YANKED', message: expect.stringContaining('crashes on start') });
    expect(await exists(ci.dir)).toBe(false);
    expect(await readFile(ci.lockfile, 'utf8')).toBe(lock);
    // Without it, frozen reads no plugin document and installs what the lock holds, as before.
    const frozen = await ci.use((c) =>
      c.install({ requests: [], dir: ci.dir, lockfile: ci.lockfile, frozen: true }),
    );
    expect(frozen.items.map((i) => [i.name, i.version])).toEqual([['yank-tool', '1.1.0']]);
  });

  it('refuses --frozen --deny-yanked offline with nothing cached, naming the flag: the registry\u2019s word cannot be had', async () => {
    const ci = await machine();
    await writeFile(ci.lockfile, lock);
    // Offline with nothing cached, the registry's word cannot be had: refused, not installed unjudged.
    const offline = await failure(
      ci.use(
        (c) =>
          c.install({ requests: [], dir: ci.dir, lockfile: ci.lockfile, frozen: true, denyYanked: true }),
        { offline: true },
      ),
    );
    expect(offline).toMatchObject({
      code: 'OFFLINE_MISSING',
      message: expect.stringContaining('--deny-yanked'),
    });
    expect(await exists(ci.dir)).toBe(false);
  });

  it('never chooses it anew: a range takes the version below, an exact request is refused', async () => {
    const fresh = await machine();
    const result = await fresh.use((c) =>
      c.install({ requests: ['yank-tool@^1.0.0'], dir: fresh.dir, lockfile: fresh.lockfile }),
    );
    expect(result.items[0]).toMatchObject({ version: '1.0.0', warnings: [] });
    const error = await failure(
      fresh.use((c) =>
        c.install({ requests: ['yank-tool@1.1.0'], dir: fresh.dir, lockfile: fresh.lockfile }),
      ),
    );
    expect(error).toMatchObject({ code: 'NO_MATCHING_VERSION', message: expect.stringContaining('yanked') });
  });

  it('is reported as yanked, with why, by audit', async () => {
    const audit = await m.use((c) => c.auditInstalled({ dir: m.dir }));
    expect(audit.states).toEqual([
      { name: 'yank-tool', version: '1.1.0', registry: 'test', state: 'yanked', reason: 'crashes on start' },
    ]);
  });

  it('calls an update from it to the lower version a downgrade, saying the newer was yanked', async () => {
    const result = await m.use((c) =>
      c.install({ requests: ['yank-tool'], upgrade: true, dir: m.dir, lockfile: m.lockfile }),
    );
    expect(result.items[0]).toMatchObject({
      name: 'yank-tool',
      version: '1.0.0',
      downgrade: { from: '1.1.0', reason: 'yank-tool@1.1.0 is yanked: crashes on start' },
    });
  });
});

describe('when the operator removes a version', () => {
  let locked: Machine;
  let kept: Machine;
  beforeAll(async () => {
    locked = await machine();
    kept = await machine();
    for (const m of [locked, kept])
      await m.use((c) => c.install({ requests: ['gone-tool@2.0.0'], dir: m.dir, lockfile: m.lockfile }));
    // As the action leaves it: the version listed as removed (and yanked), its files deleted.
    await editPlugin(registry.context, 'gone-tool', (doc) => {
      Object.assign(versionOf(doc, '2.0.0'), { yanked: true, removed: REMOVED });
      doc.latest_version = '1.0.0';
    });
    for (const key of [...registry.site.objects.keys()])
      if (key.startsWith('plugins/gone-tool/2.0.0/')) await registry.site.delete(key);
  });

  it('refuses it from the lock with the reason (VERSION_REMOVED), installing nothing', async () => {
    const lock = await readFile(locked.lockfile, 'utf8');
    await rm(locked.dir, { recursive: true });
    const error = await failure(
      locked.use((c) => c.install({ requests: [], dir: locked.dir, lockfile: locked.lockfile })),
    );
    expect(error).toMatchObject({
      code: 'VERSION_REMOVED',
      message: expect.stringContaining(`gone-tool@2.0.0, which the lock holds, was removed`),
    });
    expect(error.message).toContain(REMOVED.reason);
    expect(await exists(locked.dir)).toBe(false);
    expect(await readFile(locked.lockfile, 'utf8')).toBe(lock);
  });

  it('refuses it from the lock with --frozen --deny-yanked too (VERSION_REMOVED), installing nothing', async () => {
    const ci = await machine();
    await writeFile(ci.lockfile, await readFile(kept.lockfile, 'utf8'));
    const error = await failure(
      ci.use((c) =>
        c.install({ requests: [], dir: ci.dir, lockfile: ci.lockfile, frozen: true, denyYanked: true }),
      ),
    );
    expect(error).toMatchObject({
      code: 'VERSION_REMOVED',
      message: expect.stringContaining(REMOVED.reason),
    });
    expect(await exists(ci.dir)).toBe(false);
  });

  it('refuses it asked for exactly, with the reason, and resolves a range past it', async () => {
    const fresh = await machine();
    const error = await failure(
      fresh.use((c) =>
        c.install({ requests: ['gone-tool@2.0.0'], dir: fresh.dir, lockfile: fresh.lockfile }),
      ),
    );
    expect(error).toMatchObject({
      code: 'VERSION_REMOVED',
      message: expect.stringContaining(REMOVED.reason),
    });
    const result = await fresh.use((c) =>
      c.install({ requests: ['gone-tool'], dir: fresh.dir, lockfile: fresh.lockfile }),
    );
    expect(result.items[0]?.version).toBe('1.0.0');
  });

  it('shows an installed copy as removed, with why, in list --outdated', async () => {
    const [row] = await kept.use((c) => c.list({ dir: kept.dir, outdated: true, lockfile: kept.lockfile }));
    expect(row).toMatchObject({ name: 'gone-tool', current: '2.0.0', yanked: true, removed: REMOVED });
  });

  it('is reported as removed, with why, by audit', async () => {
    const audit = await kept.use((c) => c.auditInstalled({ dir: kept.dir }));
    expect(audit.states).toEqual([
      { name: 'gone-tool', version: '2.0.0', registry: 'test', state: 'removed', reason: REMOVED.reason },
    ]);
    expect(audit.findings).toEqual([]);
  });
});

describe('when a plugin is deprecated or its publisher key revoked', () => {
  it('installs with a warning naming the message and the replacement, recorded as deprecated', async () => {
    const m = await machine();
    const result = await m.use((c) =>
      c.install({ requests: ['old-tool'], dir: m.dir, lockfile: m.lockfile }),
    );
    expect(result.items[0]?.warnings).toEqual([
      'old-tool@1.0.0 is deprecated: unmaintained; use new-tool instead',
    ]);
    const installed = await m.use((c) => c.installed({ dir: m.dir }));
    expect(installed.plugins['old-tool']?.versions['1.0.0']?.deprecated).toBe(true);
    const [row] = await m.use((c) => c.list({ dir: m.dir, outdated: true, lockfile: m.lockfile }));
    expect(row).toMatchObject({
      deprecated: true,
      deprecation: { message: 'unmaintained', replacement: 'new-tool' },
    });
  });

  it('installs a version whose publisher key was revoked with a warning', async () => {
    const m = await machine();
    const result = await m.use((c) =>
      c.install({ requests: ['revoked-tool'], dir: m.dir, lockfile: m.lockfile }),
    );
    expect(result.items[0]?.warnings).toContainEqual(
      expect.stringMatching(
        /^revoked-tool@1\.0\.0 was published by key [0-9A-F]{40}, revoked on 2026-11-01T06:00:00Z \(key leaked\)$/,
      ),
    );
  });
});

describe('when an advisory affects the chosen version', () => {
  it('refuses at high (VULNERABLE) naming the advisory and the fix, prereleases included, installing nothing', async () => {
    const m = await machine();
    for (const version of ['1.0.0', '1.2.0-rc.1']) {
      const error = await failure(
        m.use((c) => c.install({ requests: [`vuln-tool@${version}`], dir: m.dir, lockfile: m.lockfile })),
      );
      expect(error.code).toBe('VULNERABLE');
      expect(error.message).toContain(
        `vuln-tool@${version} is affected by PDX-2026-0001 (high): ${HIGH.summary}; fixed in 1.2.0`,
      );
    }
    expect(await exists(m.dir)).toBe(false);
    expect(await exists(m.lockfile)).toBe(false);
  });

  it('installs with --allow-vulnerable, warning of it and reporting it, and a low one only warns', async () => {
    const m = await machine();
    const allowed = await m.use((c) =>
      c.install({ requests: ['vuln-tool@1.0.0'], dir: m.dir, lockfile: m.lockfile, allowVulnerable: true }),
    );
    expect(allowed.items[0]?.advisories.map((a) => a.id)).toEqual(['PDX-2026-0001']);
    expect(allowed.items[0]?.warnings).toEqual([
      `vuln-tool@1.0.0 is affected by advisory PDX-2026-0001 (high): ${HIGH.summary}; fixed in 1.2.0; ${HIGH.url}`,
    ]);
    const other = await machine();
    const low = await other.use((c) =>
      c.install({ requests: ['vuln-tool'], dir: other.dir, lockfile: other.lockfile }),
    );
    expect(low.items[0]).toMatchObject({
      version: '1.2.0',
      advisories: [{ id: 'PDX-2026-0002', severity: 'low' }],
    });
    expect(low.items[0]?.warnings).toEqual([expect.stringContaining('PDX-2026-0002 (low)')]);
  });

  it('refuses an update to a version still affected, and lists the advisory against what is installed', async () => {
    const m = await machine();
    await m.use((c) =>
      c.install({ requests: ['vuln-tool@~1.0'], dir: m.dir, lockfile: m.lockfile, allowVulnerable: true }),
    );
    const error = await failure(
      m.use((c) => c.install({ requests: ['vuln-tool'], upgrade: true, dir: m.dir, lockfile: m.lockfile })),
    );
    expect(error.code).toBe('VULNERABLE');
    const [row] = await m.use((c) => c.list({ dir: m.dir, outdated: true, lockfile: m.lockfile }));
    expect(row).toMatchObject({ current: '1.0.0', advisories: [{ id: 'PDX-2026-0001' }] });
  });

  it('refuses it in a plugin set (install -c), and installs the set with allowVulnerable', async () => {
    const m = await machine();
    const project = join(root, `set-${machines}`);
    await mkdir(project, { recursive: true });
    await writeFile(join(project, 'registry.asc'), registry.registryKey.publicKey);
    const file = join(project, 'plugins.yaml');
    await writeFile(
      file,
      `plugins:
  providers:
    - { type: registry, name: local, url: ${base}, key: ./registry.asc }
  plugins:
    - { provider: local, name: vuln-tool, version: "1.0.0" }
`,
    );
    const error = await failure(m.use((c) => c.installSet(file, { home: root })));
    expect(error).toMatchObject({ code: 'VULNERABLE', message: expect.stringContaining('PDX-2026-0001') });
    expect(await exists(join(project, 'plugins.lock'))).toBe(false);
    const result = await m.use((c) => c.installSet(file, { home: root, allowVulnerable: true }));
    expect(result.items[0]).toMatchObject({ version: '1.0.0', advisories: [{ id: 'PDX-2026-0001' }] });
    // diff shows what would change, whatever an install would then refuse.
    expect((await m.use((c) => c.diffSet(file, { home: root }))).changes).toEqual([]);
  });

  it('is not checked by a frozen install (no plugin document read), and audit finds it, high first', async () => {
    const m = await machine();
    await m.use((c) =>
      c.install({
        requests: ['vuln-tool@1.0.0', 'revoked-tool'],
        dir: m.dir,
        lockfile: m.lockfile,
        allowVulnerable: true,
      }),
    );
    await rm(m.dir, { recursive: true });
    const frozen = await m.use(
      (c) => c.install({ requests: [], dir: m.dir, lockfile: m.lockfile, frozen: true }),
      { offline: true },
    );
    expect(frozen.items.map((i) => [i.name, i.advisories])).toEqual([
      ['revoked-tool', []],
      ['vuln-tool', []],
    ]);
    const audit = await m.use((c) => c.auditInstalled({ dir: m.dir }));
    expect(audit.findings.map((f) => [f.name, f.version, f.advisory.id, f.advisory.severity])).toEqual([
      ['vuln-tool', '1.0.0', 'PDX-2026-0001', 'high'],
      ['revoked-tool', '1.0.0', 'PDX-2026-0003', 'moderate'],
    ]);
    expect(audit).toMatchObject({ checked: 2, skipped: [] });
  });
});
