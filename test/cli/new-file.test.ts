/**
 * `createNewFile`, how the commands write a key: whole or not at all, only where no name is, and of writers
 * at once exactly one.
 */
import { mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliError } from '../../cli/errors.ts';
import { createNewFile } from '../../cli/new-file.ts';
import { deadPid } from '../support/dead-pid.ts';

let work: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'plugindex-new-file-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const refused = (cause: unknown) => new CliError('FILE_EXISTS', 'taken', { cause });

describe('when writers create one file at once', () => {
  it('creates it from one of them, whole, and refuses the others with FILE_EXISTS', async () => {
    // Prepare
    const file = path.join(work, 'raced.asc');
    const texts = ['a', 'b', 'c', 'd'].map((letter) => letter.repeat(64 * 1024));

    // Act
    const results = await Promise.allSettled(
      texts.map((text) => createNewFile(file, text, { mode: 0o600, exists: refused })),
    );

    // Assess
    const created = results.flatMap((result, i) => (result.status === 'fulfilled' ? [texts[i]] : []));
    expect(created).toHaveLength(1);
    for (const result of results.filter((r) => r.status === 'rejected'))
      expect(result.reason).toMatchObject({ name: 'CliError', code: 'FILE_EXISTS' });
    expect(await readFile(file, 'utf8')).toBe(created[0]);
    expect(await readdir(work)).toEqual(['raced.asc']);
  });
});

describe('when a writer was killed before its temp file was linked', () => {
  it('removes that temp file and creates the file', async () => {
    // Prepare: a temp file named as this module names them, by a process that has exited.
    const dir = await mkdtemp(path.join(work, 'killed-'));
    const stale = path.join(dir, `.secret.asc.${await deadPid()}.0123abcd.tmp`);
    await writeFile(stale, 'half a ke', { mode: 0o600 });

    // Act
    await createNewFile(path.join(dir, 'secret.asc'), 'a whole key', { mode: 0o600, exists: refused });

    // Assess
    expect(await readdir(dir)).toEqual(['secret.asc']);
    expect(await readFile(path.join(dir, 'secret.asc'), 'utf8')).toBe('a whole key');
  });
});

describe('when the filesystem has no hard links', () => {
  /**
   * A link(2) refused as FAT or a network mount refuses it, `code` `syscall` and all as Node reports it, and
   * the calls it was asked.
   */
  function noHardLinks(code: string) {
    const calls: string[] = [];
    const link = async (existing: string, name: string): Promise<void> => {
      calls.push(path.basename(name));
      throw Object.assign(new Error(`${code}: link '${existing}' -> '${name}'`), { code, syscall: 'link' });
    };
    return { link, calls };
  }

  it.each(['EPERM', 'ENOTSUP'])(
    'creates the file in place, whole, when link refuses with %s',
    async (code) => {
      // Prepare
      const dir = await mkdtemp(path.join(work, 'no-links-'));
      const file = path.join(dir, 'secret.asc');
      const key = 'k'.repeat(256 * 1024);
      const { link, calls } = noHardLinks(code);

      // Act
      await createNewFile(file, key, { mode: 0o600, exists: refused, link });

      // Assess: the fallback was taken, and left the file whole and nothing beside it.
      expect(calls).toEqual(['secret.asc']);
      expect(await readFile(file, 'utf8')).toBe(key);
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      expect(await readdir(dir)).toEqual(['secret.asc']);
    },
  );

  it('refuses with FILE_EXISTS a name a file or a link holds, and leaves it as it was', async () => {
    // Prepare: a file at one name, a dangling link at another (created through, it would make its target).
    const dir = await mkdtemp(path.join(work, 'no-links-taken-'));
    await writeFile(path.join(dir, 'taken.asc'), 'their key');
    await symlink(path.join(dir, 'target.asc'), path.join(dir, 'linked.asc'));
    const { link, calls } = noHardLinks('EPERM');

    // Act and Assess, a name at a time
    for (const name of ['taken.asc', 'linked.asc']) {
      const refusal = createNewFile(path.join(dir, name), 'a new key', {
        mode: 0o600,
        exists: refused,
        link,
      });
      await expect(refusal).rejects.toBeInstanceOf(CliError);
      await expect(refusal).rejects.toMatchObject({ code: 'FILE_EXISTS' });
    }
    expect(calls).toEqual(['taken.asc', 'linked.asc']);
    expect(await readFile(path.join(dir, 'taken.asc'), 'utf8')).toBe('their key');
    expect((await readdir(dir)).sort()).toEqual(['linked.asc', 'taken.asc']);
  });

  it('creates it from one of writers at once, whole, and refuses the others with FILE_EXISTS', async () => {
    // Prepare
    const dir = await mkdtemp(path.join(work, 'no-links-raced-'));
    const file = path.join(dir, 'raced.asc');
    const texts = ['a', 'b', 'c', 'd'].map((letter) => letter.repeat(64 * 1024));
    const { link, calls } = noHardLinks('ENOTSUP');

    // Act
    const results = await Promise.allSettled(
      texts.map((text) => createNewFile(file, text, { mode: 0o600, exists: refused, link })),
    );

    // Assess
    const created = results.flatMap((result, i) => (result.status === 'fulfilled' ? [texts[i]] : []));
    expect(created).toHaveLength(1);
    for (const result of results.filter((r) => r.status === 'rejected'))
      expect(result.reason).toMatchObject({ name: 'CliError', code: 'FILE_EXISTS' });
    expect(await readFile(file, 'utf8')).toBe(created[0]);
    expect(await readdir(dir)).toEqual(['raced.asc']);
    expect(calls).toEqual(texts.map(() => 'raced.asc'));
  });
});
