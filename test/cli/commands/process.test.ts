/**
 * `plugindex process --registry DIR` as an operator reads it: each outcome, then what the batch published.
 * It said "nothing to rebuild" or "rebuilt: generation N", the words of `plugindex rebuild`, the recovery
 * command it is not.
 */
import { copyFile, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initRegistry } from '../../../cli/local/registry.ts';
import { plugindex } from '../../support/cli.ts';
import { makeBundle, validManifest } from '../../support/fixtures.ts';

let work: string;
let dir: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'plugindex-process-'));
  dir = path.join(work, 'registry');
  await initRegistry(dir, { name: 'r', url: 'http://127.0.0.1:8080' });
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('when an operator processes what waits in incoming/', () => {
  it('says nothing waited, what it published, and that a batch of no change published nothing', async () => {
    const empty = await plugindex('process', '--registry', dir);
    expect(empty.code).toBe(0);
    expect(empty.stdout).toBe(`nothing waiting in ${path.join(dir, 'incoming')}\n`);

    const bundle = path.join(work, 'demo.tgz');
    await writeFile(bundle, await makeBundle({ manifest: validManifest({ name: 'demo-plugin' }) }));
    await copyFile(bundle, path.join(dir, 'incoming', 'demo.tgz'));
    const published = await plugindex('process', '--registry', dir);
    expect(published.code, published.stderr).toBe(0);
    expect(published.stdout).toContain('accepted demo-plugin@1.0.0');
    expect(published.stdout).toMatch(/\npublished generation \d+\n$/);
    expect(published.stdout).not.toContain('rebuil');

    await copyFile(bundle, path.join(dir, 'incoming', 'again.tgz'));
    const again = await plugindex('process', '--registry', dir);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('already-published demo-plugin@1.0.0');
    expect(again.stdout).toMatch(/\npublished nothing: the registry is as it was\n$/);
  });
});

describe('when --registry names no registry (a typo, or a file)', () => {
  it.each([
    ['process', (at: string) => ['process', '--registry', at]],
    ['rebuild', (at: string) => ['rebuild', '--registry', at]],
    ['refresh', (at: string) => ['refresh', '--registry', at]],
  ])('%s refuses NOT_A_REGISTRY and makes no folder there', async (_name, args) => {
    // Prepare: a mistyped registry folder was made, empty, by the lock taken before the config was read,
    // and a file there was reported as FOLDER_NOT_MADE ("cannot create the folder"), as if one were wanted.
    const missing = path.join(work, `typo-${_name}`);
    const file = path.join(work, `file-${_name}`);
    await writeFile(file, 'not a registry\n');

    // Act
    const none = await plugindex(...args(missing));
    const onFile = await plugindex(...args(file));

    // Assess
    expect(none.code).toBe(1);
    expect(none.stderr).toContain(`NOT_A_REGISTRY: ${missing} is not a registry`);
    await expect(stat(missing)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(onFile.code).toBe(1);
    expect(onFile.stderr).toContain(`NOT_A_REGISTRY: ${file} is not a registry`);
  });
});
