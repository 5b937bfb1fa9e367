/**
 * Where a submission goes (cli/submit.ts `submitTarget`), as a user runs the built command: the options of
 * a deployed registry's upload bucket (`--endpoint`, `--timeout`) are refused where nothing is uploaded (a
 * local registry, an action written with `--output`, a local `rotate-key`), never taken and ignored.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initRegistry } from '../../cli/local/registry.ts';
import { plugindexProcess } from '../support/cli.ts';
import { makeBundle, testKey } from '../support/fixtures.ts';
import { treeOf } from '../support/tree.ts';

let work: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'plugindex-submit-'));
  await initRegistry(path.join(work, 'registry'), { name: 'r', url: 'http://127.0.0.1:1' });
  await writeFile(path.join(work, 'demo.tgz'), await makeBundle());
  await writeFile(path.join(work, 'secret.asc'), (await testKey('publisher')).secretKey);
  await writeFile(path.join(work, 'next.asc'), (await testKey('next')).secretKey);
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe("when an option of a deployed registry's upload bucket is given where nothing is uploaded", () => {
  it.each([
    [
      'publish --registry --timeout',
      ['publish', 'demo.tgz', '--registry', 'registry', '--timeout', '5'],
      'timeout',
    ],
    [
      'publish --registry --endpoint',
      ['publish', 'demo.tgz', '--registry', 'registry', '--endpoint', 'http://127.0.0.1:9'],
      'endpoint',
    ],
    [
      'yank --registry --timeout',
      ['yank', 'demo-plugin@1.0.0', '--key', 'secret.asc', '--registry', 'registry', '--timeout', '5'],
      'timeout',
    ],
    [
      'yank --output --timeout',
      [
        'yank',
        'demo-plugin@1.0.0',
        '--key',
        'secret.asc',
        '--registry',
        'registry',
        '--output',
        'a.json',
        '--timeout',
        '5',
      ],
      'timeout',
    ],
    [
      'yank --output --registry --endpoint',
      [
        'yank',
        'demo-plugin@1.0.0',
        '--key',
        'secret.asc',
        '--registry',
        'registry',
        '--output',
        'a.json',
        '--endpoint',
        'http://127.0.0.1:9',
      ],
      'endpoint',
    ],
    [
      'rotate-key --registry --timeout',
      ['rotate-key', '--registry', 'registry', '--new-key', 'next.asc', '--timeout', '5'],
      'timeout',
    ],
    [
      'rotate-key --registry --endpoint',
      ['rotate-key', '--registry', 'registry', '--new-key', 'next.asc', '--endpoint', 'http://127.0.0.1:9'],
      'endpoint',
    ],
  ])('%s: a usage error (exit 2) naming the option, nothing done', async (_, args, option) => {
    const before = await treeOf(work);
    const refused = await plugindexProcess(args, { cwd: work });
    expect(refused.code, refused.stderr).toBe(2);
    expect(refused.stderr).toContain(`--${option} is for --bucket`);
    expect(await treeOf(work)).toEqual(before);
  });
});

describe('when --endpoint or --queue-url is no http(s) URL', () => {
  it.each([
    ['publish --bucket --endpoint', ['publish', 'demo.tgz', '--bucket', 'b', '--endpoint', 'not-a-url']],
    [
      'yank --bucket --endpoint',
      ['yank', 'demo-plugin@1.0.0', '--key', 'secret.asc', '--bucket', 'b', '--endpoint', 'ftp://s3.example'],
    ],
    [
      'rotate-key --bucket --queue-url',
      [
        'rotate-key',
        '--bucket',
        'b',
        '--queue-url',
        'https://u:s3cret@sqs .example/q',
        '--old-key',
        'secret.asc',
        '--new-key',
        'next.asc',
      ],
    ],
  ])(
    '%s is a usage error (exit 2) before anything is read or sent, credentials never shown',
    async (_, args) => {
      // They reached the SDK, which threw a TypeError (a stack trace, exit 1), or asked the network.
      const refused = await plugindexProcess(args, { cwd: work, env: { AWS_REGION: 'us-east-1' } });
      expect(refused.code, refused.stderr).toBe(2);
      expect(refused.stderr).toMatch(/--(endpoint|queue-url) /);
      expect(refused.stderr).not.toContain('s3cret');
      expect(refused.stderr).not.toContain('TypeError');
    },
  );
});
