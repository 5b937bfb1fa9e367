/** `plugindex init` as an operator runs it (the built command as a process): what it says it made. */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
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

  it('leaves nothing it made when its first rebuild fails, so running it again makes the registry', async () => {
    // The seam: a file where the published tree needs its keys/ folder (a permission would not stop root).
    // Before, the config and signing key stayed, and init run again said REGISTRY_EXISTS for a registry
    // that had never published its key.
    const dir = path.join(work, 'half');
    await mkdir(path.join(dir, 'public'), { recursive: true });
    await writeFile(path.join(dir, 'public', 'keys'), 'in the way');
    const entries = async () => (await readdir(dir, { recursive: true })).sort();
    const before = await entries();
    const failed = await plugindexProcess(['init', '--registry', 'half'], { cwd: work });
    expect(failed.code).toBe(1);
    expect(failed.stdout).toBe('');
    expect(await entries()).toEqual(before);
    await rm(path.join(dir, 'public', 'keys'));
    const made = await plugindexProcess(['init', '--registry', 'half'], { cwd: work });
    expect(made.code, made.stderr).toBe(0);
    expect(await readFile(path.join(dir, 'public', 'keys', 'registry.asc'), 'utf8')).toContain(
      'BEGIN PGP PUBLIC KEY BLOCK',
    );
  });
});

describe('when --url is one no registry may have', () => {
  it('is a usage error (exit 2) as every URL typed on the command line is, made nothing, and shows no credentials', async () => {
    // It was the config's fault (CONFIG_INVALID, exit 1), where action --registry-url and rotate-key --url exit 2.
    for (const url of [
      'not-a-url',
      'ftp://plugins.registry.example',
      'https://user:s3cret@plugins.registry.example',
    ]) {
      const refused = await plugindexProcess(['init', '--registry', 'refused', '--url', url], { cwd: work });
      expect(refused.code, `${url}: ${refused.stderr}`).toBe(2);
      expect(refused.stderr).toContain('--url must be the registry');
      expect(refused.stderr).not.toContain('s3cret');
      await expect(readdir(path.join(work, 'refused'))).rejects.toMatchObject({ code: 'ENOENT' });
    }
  });
});

describe('when DIR is on a filesystem that makes no folders (/proc)', () => {
  it.skipIf(process.platform !== 'linux')(
    'fails fast with FILE_NOT_WRITTEN naming it, where it hung in Node.js recursive mkdir',
    async () => {
      const dir = `/proc/plugindex-init-${process.pid}`;
      // Killed at 45 s, below the test's timeout, should it hang: far from what a loaded machine's start takes.
      const result = await plugindexProcess(['init', '--registry', dir], { cwd: work, timeoutMs: 45_000 });
      expect(result.code, 'killed at the timeout: it hung').toBe(1);
      expect(result.stderr).toContain(`FILE_NOT_WRITTEN: cannot create the folder ${dir}`);
    },
  );
});

describe("when the folder is inside another registry's", () => {
  it('refuses it, OUTPUT_IN_REGISTRY (exit 2), making no signing key the other serves', async () => {
    // Prepare: `init --registry outer/public/sub` made a registry whose signing key sat in outer's
    // published tree: `serve --registry outer` answered GET /sub/keys/registry-secret.asc with it (200).
    const outer = path.join(work, 'outer');
    expect((await plugindexProcess(['init', '--registry', outer], { cwd: work })).code).toBe(0);
    const inner = path.join(outer, 'public', 'sub');

    // Act
    const refused = await plugindexProcess(['init', '--registry', inner], { cwd: work });

    // Assess
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`OUTPUT_IN_REGISTRY: --registry ${inner} is inside the registry `);
    await expect(readdir(inner)).rejects.toMatchObject({ code: 'ENOENT' });
    // Its own folder again is what it always was: REGISTRY_EXISTS.
    const again = await plugindexProcess(['init', '--registry', outer], { cwd: work });
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('REGISTRY_EXISTS');
  });
});

describe('when DIR is a file, or under one (a mistyped --registry)', () => {
  it('refuses it FILE_NOT_WRITTEN naming it, where it was a stack trace, and leaves the file as it was', async () => {
    // Prepare
    const file = path.join(work, 'a-file');
    await writeFile(file, 'mine');

    for (const dir of [file, path.join(file, 'registry')]) {
      // Act
      const result = await plugindexProcess(['init', '--registry', dir], { cwd: work });

      // Assess
      expect(result.code, result.stderr).toBe(1);
      expect(result.stderr).toContain(`FILE_NOT_WRITTEN: cannot make the registry ${dir}:`);
      expect(result.stderr).not.toContain('    at ');
    }
    expect(await readFile(file, 'utf8')).toBe('mine');
  });
});
