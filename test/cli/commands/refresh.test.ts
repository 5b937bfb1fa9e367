/**
 * `plugindex refresh --registry DIR` over a stuck publish (index-builder/pipeline/stuck-entries.ts): the
 * snapshot renewed, not counting the entry, and the operator warned on stderr which entry and what to do. Run
 * in this process against a registry folder `initRegistry` made, as an operator's.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { initRegistry } from '../../../cli/local/registry.ts';
import type { SnapshotDocument } from '../../../index-builder/model.ts';
import { plugindex } from '../../support/cli.ts';
import { makeBundle, validManifest } from '../../support/fixtures.ts';

const folders: string[] = [];
afterEach(async () => {
  for (const folder of folders.splice(0)) await rm(folder, { recursive: true, force: true });
});

const snapshotOf = async (dir: string): Promise<SnapshotDocument> =>
  JSON.parse(await readFile(path.join(dir, 'public', 'snapshot.json'), 'utf8')) as SnapshotDocument;

describe('when a publish is stuck, its page refused by the store', () => {
  it('renews the snapshot without counting it, and warns on stderr naming the entry and what to do', async () => {
    // Prepare: first-plugin published (entry 0); a folder where demo-plugin's page goes, so its publish is
    // logged (entry 1) and the batch fails LOGGED_PUBLISH_FAILED.
    const dir = path.join(await mkdtemp(path.join(tmpdir(), 'plugindex-refresh-')), 'registry');
    folders.push(path.dirname(dir));
    await initRegistry(dir, { name: 'Refreshed', url: 'http://127.0.0.1:9' });
    const upload = async (name: string) =>
      writeFile(
        path.join(dir, 'incoming', `${name}.tgz`),
        await makeBundle({ manifest: validManifest({ name }) }),
      );
    await upload('first-plugin');
    expect((await plugindex('process', '--registry', dir)).code).toBe(0);
    await mkdir(path.join(dir, 'public', 'plugins', 'demo-plugin', 'index.html'), { recursive: true });
    await upload('demo-plugin');
    const failed = await plugindex('process', '--registry', dir);
    expect(failed.code).not.toBe(0);
    expect(failed.stderr).toContain('LOGGED_PUBLISH_FAILED');
    const before = await snapshotOf(dir);

    // Act
    const refreshed = await plugindex('refresh', '--registry', dir);

    // Assert: renewed (exit 0, the next generation), the log counted as before (it counted entry 1), and the
    // operator told (before, nothing was said).
    expect(refreshed.code).toBe(0);
    expect(refreshed.stdout).toBe(`snapshot re-signed: generation ${before.generation + 1}\n`);
    const after = await snapshotOf(dir);
    expect(after.generation).toBe(before.generation + 1);
    expect(after.log).toEqual(before.log);
    expect(refreshed.stderr).toMatch(
      /^warning: LOGGED_PUBLISH_STUCK: plugindex refresh signed the snapshot counting the 1 log entries the published one counts, not the 2 logged: log entry 1, the publish of demo-plugin@1\.0\.0 \(submission \S+\), .*plugindex process.*voidRefusedEntries/,
    );
  }, 60_000);
});
