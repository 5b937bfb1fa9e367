/**
 * `audit` of an installed tree whose record names its source by name alone: a plugin set's registry and a
 * configured registry may share a name. Only the registry pinned to the key a version was installed
 * through speaks for it; another's advisories, or their absence, are no audit of what is on disk.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRegistryServer, listenRegistryServer } from '../../cli/local/server.ts';
import type { Advisory } from '../../index-builder/model.ts';
import { processSubmissions } from '../../index-builder/pipeline/index.ts';
import { createSigner } from '../../index-builder/signing.ts';
import { httpClient } from '../support/client.ts';
import {
  encode,
  makeBundle,
  makeRegistry,
  type TestRegistry,
  testKey,
  validManifest,
} from '../support/fixtures.ts';
import { editPlugin } from '../support/lifecycle.ts';

const LINUX = { os: 'linux', arch: 'amd64' } as const;
let root: string;
let team: TestRegistry;
let other: TestRegistry;
let otherKey: string;
const urls: Record<string, string> = {};
const closers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'plugindex-audit-'));
  team = await makeRegistry();
  other = await makeRegistry({ name: 'Public' });
  const key = await testKey('other');
  otherKey = key.publicKey;
  (other.context as { signer: unknown }).signer = await createSigner(key.secretKey);
  for (const [name, registry] of [
    ['team', team],
    ['other', other],
  ] as const) {
    const bundle = await makeBundle({
      manifest: validManifest({ name: 'shared-tool', version: '1.0.0' }),
      artifacts: [{ ...LINUX, name: 'shared-tool', body: encode(`#!/bin/sh\necho ${name}\n`) }],
    });
    await processSubmissions(registry.context, await registry.submit(bundle));
    const listening = await listenRegistryServer(createRegistryServer({ site: registry.site }), 0);
    urls[name] = listening.url;
    closers.push(listening.close);
  }
});

afterAll(async () => {
  for (const close of closers) await close();
  await rm(root, { recursive: true, force: true });
});

/**
 * A project folder `name` whose plugin set installs shared-tool@1.0.0 from the team registry, under the
 * provider name `community`: the name the machine's configured (other) registry has too.
 */
async function sharedNameSet(name: string): Promise<{ project: string; file: string }> {
  const project = join(root, name);
  await mkdir(project, { recursive: true });
  await writeFile(join(project, 'team.asc'), team.registryKey.publicKey);
  const file = join(project, 'plugins.yaml');
  await writeFile(
    file,
    `plugins:
  install_location: ./plugins
  providers:
    - { type: registry, name: community, url: ${urls.team}, key: ./team.asc }
  plugins:
    - { provider: community, name: shared-tool, version: "1.0.0" }
`,
  );
  return { project, file };
}

describe('when a plugin set installed from a registry that shares its name with a configured one', () => {
  it('skips the versions the configured registry did not install, rather than call them checked', async () => {
    const client = httpClient(join(root, 'machine'));
    try {
      await client.addRegistry({ name: 'community', url: urls.other as string, pin: { armored: otherKey } });
      const { project, file } = await sharedNameSet('project');
      await client.installSet(file, { home: '/nonexistent' });
      // The set's registry then publishes an advisory the configured one does not.
      const advisory = {
        id: 'PDX-2026-0009',
        severity: 'high',
        affected: '<1.2.0',
        fixed: '1.2.0',
        summary: 'bad',
        published: '2026-11-01T00:00:00Z',
      } as Advisory;
      await editPlugin(team.context, 'shared-tool', (doc) => {
        doc.advisories = [advisory];
      });
      const audit = await client.auditInstalled({ dir: join(project, 'plugins') });
      expect(audit.checked).toBe(0);
      expect(audit.findings).toEqual([]);
      expect(audit.skipped).toEqual([
        {
          name: 'shared-tool',
          version: '1.0.0',
          registry: 'community',
          reason: expect.stringContaining('another registry of that name'),
        },
      ]);
    } finally {
      await client.close();
    }
  });

  it('checks the versions the configured registry installed, as before', async () => {
    const client = httpClient(join(root, 'configured'));
    try {
      await client.addRegistry({ name: 'community', url: urls.other as string, pin: { armored: otherKey } });
      const dir = join(root, 'configured-plugins');
      await client.install({ requests: ['shared-tool'], lockfile: join(root, 'configured.lock'), dir });
      const audit = await client.auditInstalled({ dir });
      expect(audit).toMatchObject({ checked: 1, skipped: [], findings: [] });
    } finally {
      await client.close();
    }
  });
});

describe('when list --outdated reads a plugin set install whose provider shares a configured registry name', () => {
  it('reports the configured registry neither advisories nor latest version for it, and says why', async () => {
    const client = httpClient(join(root, 'listing'));
    try {
      await client.addRegistry({ name: 'community', url: urls.other as string, pin: { armored: otherKey } });
      const { project, file } = await sharedNameSet('listing-project');
      // The set's registry has an advisory against 1.0.0 by now (the first test published it).
      await client.installSet(file, { home: '/nonexistent', allowVulnerable: true });
      // The configured registry (not the one the set installed from) then publishes a newer version and an
      // advisory. This file's last test: what it publishes stays for what runs after it.
      const newer = await makeBundle({
        manifest: validManifest({ name: 'shared-tool', version: '1.1.0' }),
        artifacts: [{ ...LINUX, name: 'shared-tool', body: encode('#!/bin/sh\necho newer\n') }],
      });
      await processSubmissions(other.context, await other.submit(newer));
      await editPlugin(other.context, 'shared-tool', (doc) => {
        doc.advisories = [
          {
            id: 'PDX-2026-0010',
            severity: 'critical',
            affected: '<1.1.0',
            summary: 'not this install',
            published: '2026-11-01T00:00:00Z',
          } as Advisory,
        ];
      });
      const rows = await client.list({ dir: join(project, 'plugins'), outdated: true });
      expect(rows).toHaveLength(1);
      const [row] = rows;
      expect(row).toMatchObject({ name: 'shared-tool', current: '1.0.0', registry: 'community' });
      expect(row?.advisories).toBeUndefined();
      expect(row?.latest).toBeUndefined();
      expect(row?.wanted).toBeUndefined();
      expect(row?.unchecked).toEqual(expect.stringContaining('another registry of that name'));
    } finally {
      await client.close();
    }
  });
});

describe('when a configured registry has lost its pin (its data folder wiped)', () => {
  it('list --outdated refuses as reading it does (REGISTRY_NOT_PINNED), rather than call it not configured', async () => {
    const home = join(root, 'pin-lost');
    const dir = join(root, 'pin-lost-plugins');
    let client = httpClient(home);
    try {
      await client.addRegistry({ name: 'community', url: urls.other as string, pin: { armored: otherKey } });
      await client.install({ requests: ['shared-tool'], lockfile: join(root, 'pin-lost.lock'), dir });
    } finally {
      await client.close();
    }
    await rm(join(home, 'data', 'trust'), { recursive: true, force: true });
    client = httpClient(home);
    try {
      await expect(client.list({ dir, outdated: true })).rejects.toMatchObject({
        name: 'ClientError',
        code: 'REGISTRY_NOT_PINNED',
      });
    } finally {
      await client.close();
    }
  });
});

describe('when an installed plugin is one its registry no longer lists', () => {
  it('audit and list --outdated say so alone, suggesting no other plugin (the name was not typed)', async () => {
    // Its PLUGIN_NOT_FOUND ended with the did-you-mean of a mistyped name (`did you mean shared-tool?`): the
    // search.json read for it, and another plugin named where an installed one is no longer listed.
    const dir = join(root, 'unlisted-plugins');
    const client = httpClient(join(root, 'unlisted'));
    try {
      await client.addRegistry({ name: 'community', url: urls.other as string, pin: { armored: otherKey } });
      await client.install({ requests: ['shared-tool'], lockfile: join(root, 'unlisted.lock'), dir });
      // The record renamed: installed as shared-tol, a name the registry does not list.
      const file = join(dir, 'installed.json');
      await writeFile(file, (await readFile(file, 'utf8')).replaceAll('shared-tool', 'shared-tol'));
      const audit = await client.auditInstalled({ dir });
      expect(audit.skipped).toEqual([
        expect.objectContaining({
          name: 'shared-tol',
          reason: expect.stringContaining('no plugin named shared-tol'),
        }),
      ]);
      expect(audit.skipped[0]?.reason).not.toContain('did you mean');
      const [row] = await client.list({ dir, outdated: true });
      expect(row?.unchecked).toEqual(expect.stringContaining('no plugin named shared-tol'));
      expect(row?.unchecked).not.toContain('did you mean');
    } finally {
      await client.close();
    }
  });
});
