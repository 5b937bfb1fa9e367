/**
 * An operator's way out of PUBLISHED_DOCUMENT_ALTERED on a local registry, with the commands themselves:
 * someone edits a document under `public/` (plugins/<name>/index.json, keys/revoked.json, snapshot.json),
 * `plugindex publish` refuses, naming the key, the digest recorded and the one found, and what to run; that
 * command (`plugindex rebuild --registry`) takes the published documents as they are, and the next publish
 * goes through.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initRegistry } from '../../../cli/local/registry.ts';
import { sha256Hex } from '../../../index-builder/digest.ts';
import type { PluginDocument, SnapshotDocument } from '../../../index-builder/model.ts';
import { plugindex } from '../../support/cli.ts';
import { makeBundle, validManifest } from '../../support/fixtures.ts';

let work: string;
const NAME = 'demo-plugin';

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'plugindex-altered-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function publish(dir: string, version: string) {
  const file = path.join(work, `${path.basename(dir)}-${version}.tgz`);
  await writeFile(file, await makeBundle({ manifest: validManifest({ name: NAME, version }) }));
  return plugindex('publish', file, '--registry', dir);
}

const edits: [string, string, (text: string) => string][] = [
  [
    'a plugin document',
    `plugins/${NAME}/index.json`,
    (text) =>
      JSON.stringify({ ...(JSON.parse(text) as PluginDocument), homepage: 'https://elsewhere.example' }),
  ],
  [
    'snapshot.json',
    'snapshot.json',
    (text) => JSON.stringify({ ...(JSON.parse(text) as SnapshotDocument), generation: 1000 }),
  ],
];

describe.each(edits)('when someone edits %s under public/', (_, key, edit) => {
  it('refuses the publish naming the key, both digests and the command; that command restores publishing', async () => {
    const dir = path.join(work, key.replace(/\W/g, '-'));
    await initRegistry(dir, { name: 'r', url: 'http://127.0.0.1:8080' });
    expect((await publish(dir, '1.0.0')).code).toBe(0);
    const file = path.join(dir, 'public', key);
    const recorded = sha256Hex(await readFile(file));
    await writeFile(file, edit(await readFile(file, 'utf8')));
    const found = sha256Hex(await readFile(file));

    const refused = await publish(dir, '1.1.0');

    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('PUBLISHED_DOCUMENT_ALTERED');
    expect(refused.stderr).toContain(key);
    expect(refused.stderr).toContain(recorded);
    expect(refused.stderr).toContain(found);
    expect(refused.stderr).toContain('plugindex rebuild');

    const rebuilt = await plugindex('rebuild', '--registry', dir);
    expect(rebuilt.code, rebuilt.stderr).toBe(0);
    const again = await publish(dir, '1.1.0');
    expect(again.code, again.stderr).toBe(0);
    const doc = JSON.parse(await readFile(path.join(dir, 'public', `plugins/${NAME}/index.json`), 'utf8'));
    expect((doc as PluginDocument).versions.map((v) => v.version)).toEqual(['1.1.0', '1.0.0']);
    // And every publish after it.
    const later = await publish(dir, '1.2.0');
    expect(later.code, later.stderr).toBe(0);
  }, 60_000);
});
