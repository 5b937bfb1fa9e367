/** The install tree's one path check: nothing a document or installed.json says can lead outside the folder. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InstallTree } from '../../../client/disk/state.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'plugindex-tree-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('when a path in the install folder is asked for', () => {
  it('gives the path of a relative path of safe segments inside the folder', () => {
    const tree = new InstallTree(dir);
    expect(tree.path('demo/1.0.0/linux-amd64/demo')).toBe(
      path.join(dir, 'demo', '1.0.0', 'linux-amd64', 'demo'),
    );
  });

  it.each([
    ['a parent folder', 'demo/../../etc/passwd'],
    ['an absolute path', '/etc/passwd'],
    ['an empty segment', 'demo//x'],
    ['a segment starting with a dot', 'demo/.hidden'],
  ])('refuses %s with DOCUMENT_MALFORMED, before anything is written or removed', async (_what, relative) => {
    const tree = new InstallTree(dir);
    expect(() => tree.path(relative)).toThrow(
      expect.objectContaining({ name: 'TrustError', code: 'DOCUMENT_MALFORMED' }),
    );
    await expect(tree.placeFile(relative, 'x')).rejects.toMatchObject({ code: 'DOCUMENT_MALFORMED' });
  });
});
