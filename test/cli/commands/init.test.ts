/** `plugindex init` as an operator runs it (the built command as a process): what it says it made. */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { plugindexProcess } from '../../support/cli.ts';

let work: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'plugindex-init-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('when an operator creates a registry', () => {
  it('prints the URL as the config holds it, and where its key is published under it', async () => {
    // Given with a trailing slash, the URL is kept without it: printed as given, the key's address had `//`.
    const made = await plugindexProcess(['init', '--registry', 'reg', '--url', 'http://127.0.0.1:1/reg/'], {
      cwd: work,
    });
    expect(made.code, made.stderr).toBe(0);
    const config = JSON.parse(await readFile(path.join(work, 'reg', 'plugindex.json'), 'utf8'));
    expect(config.url).toBe('http://127.0.0.1:1/reg');
    expect(made.stdout).toContain('  url:          http://127.0.0.1:1/reg\n');
    expect(made.stdout).toContain('(public key at http://127.0.0.1:1/reg/keys/registry.asc)');
  });
});
