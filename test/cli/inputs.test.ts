/**
 * Files the built `plugindex` writes where the user says (`pack --out`, an action's `--output`, `keygen
 * --out`, `init-config FILE`), as a process: a path it cannot write is FILE_NOT_WRITTEN naming the file and
 * what to do, exit 1, never a stack trace.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CommandResult, clientHomes, plugindexProcess } from '../support/cli.ts';
import { testKey, validManifest } from '../support/fixtures.ts';

let work: string;
let secretKey: string;
let manifest: string;

/** The built command, in the work folder, with its own client folders. */
function plugindex(...args: string[]): Promise<CommandResult> {
  // The test's own limit (60 s) is the only one these runs had before the shared runner.
  return plugindexProcess(args, {
    cwd: work,
    env: clientHomes(path.join(work, 'client')),
    timeoutMs: 60_000,
  });
}

/** Refused as FILE_NOT_WRITTEN naming `file` and `next`, exit 1, with no stack trace. */
function expectNotWritten(result: CommandResult, file: string, next: string): void {
  expect(result.code, result.stderr).toBe(1);
  expect(result.stderr).toContain(`FILE_NOT_WRITTEN: cannot write ${file}: `);
  expect(result.stderr).toContain(next);
  expect(result.stderr).not.toMatch(/^\s+at /m);
}

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'plugindex-cli-inputs-'));
  secretKey = path.join(work, 'secret.asc');
  await writeFile(secretKey, (await testKey('publisher')).secretKey);
  manifest = path.join(work, 'manifest.json');
  await writeFile(manifest, JSON.stringify(validManifest()));
  await writeFile(path.join(work, 'a-file'), 'not a folder');
  await mkdir(path.join(work, 'a-folder'));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('when the file to write is in a folder that is not there', () => {
  it('refuses pack --out naming the file and to create its folder', async () => {
    const out = path.join('missing', 'my.tgz');
    expectNotWritten(
      await plugindex('pack', manifest, '--key', secretKey, '--out', out),
      out,
      'create its folder first',
    );
  });

  it("refuses an action's --output, and init-config's FILE, the same way", async () => {
    const output = path.join('missing', 'yank.json');
    expectNotWritten(
      await plugindex(
        'yank',
        'demo-plugin@1.0.0',
        '--key',
        secretKey,
        '--registry-url',
        'https://plugins.example.org',
        '--output',
        output,
      ),
      output,
      'create its folder first',
    );
    expectNotWritten(
      await plugindex('init-config', path.join('missing', 'plugins.yaml')),
      path.join(work, 'missing', 'plugins.yaml'),
      'create its folder first',
    );
  });
});

describe('when the path to write is a folder, or goes through a file', () => {
  it('refuses init-config of a folder, and keygen --out under a file', async () => {
    expectNotWritten(
      await plugindex('init-config', 'a-folder', '--force'),
      path.join(work, 'a-folder'),
      'it is a folder',
    );
    expectNotWritten(
      await plugindex('keygen', '--out', path.join('a-file', 'key')),
      path.join('a-file', 'key'),
      'is a file, not a folder',
    );
  });
});
