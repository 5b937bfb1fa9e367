/**
 * `createNewFile`, how the commands write a key: whole or not at all, only where no name is, and of writers
 * at once exactly one.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
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
