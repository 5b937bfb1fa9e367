/**
 * `plugindex serve`'s options for the server's connection slots, through the command itself: what it
 * cannot read is refused before anything listens, and what it reads reaches the server, which judges it.
 * What the slots do with them is tested over real sockets in test/cli/local/server.test.ts.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initRegistry } from '../../../cli/local/registry.ts';
import { plugindex } from '../../support/cli.ts';

let work: string;
let dir: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'plugindex-serve-options-'));
  dir = path.join(work, 'registry');
  await initRegistry(dir, { name: 'r', url: 'http://127.0.0.1:8080' });
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('when the connection options are not whole numbers', () => {
  it.each([
    ['--max-connections', 'many'],
    ['--max-connections', '3e2'],
    ['--max-connections-per-address', '1.5'],
    ['--max-connections-per-address', ''],
  ])('refuses %s %j as a usage error, naming the option', async (option, value) => {
    const { code, stderr } = await plugindex('serve', '--registry', dir, '--port', '0', option, value);

    expect(code).toBe(2);
    expect(stderr).toContain(`${option} must be a whole number`);
  });
});

describe('when the options reach the server', () => {
  it('refuses a share larger than the cap it was given, naming both options', async () => {
    const { code, stderr } = await plugindex(
      'serve',
      '--registry',
      dir,
      '--port',
      '0',
      '--max-connections',
      '2',
      '--max-connections-per-address',
      '3',
    );

    expect(code).toBe(2);
    expect(stderr).toContain('--max-connections-per-address');
    expect(stderr).toContain('(2)');
  });

  it('refuses a cap of 0', async () => {
    const { code, stderr } = await plugindex(
      'serve',
      '--registry',
      dir,
      '--port',
      '0',
      '--max-connections',
      '0',
    );

    expect(code).toBe(2);
    expect(stderr).toContain('(--max-connections) must be a whole number of at least 1, not 0');
  });
});
