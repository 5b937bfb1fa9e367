/**
 * The dispatcher (cli/main.ts) over the command table (cli/commands.ts), as a user runs the built command:
 * a command that takes options only refuses a word given besides them (exit 2), having done nothing.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initRegistry } from '../../cli/local/registry.ts';
import { plugindexProcess } from '../support/cli.ts';
import { makeBundle } from '../support/fixtures.ts';
import { treeOf } from '../support/tree.ts';

let work: string;
let dir: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'plugindex-main-'));
  dir = path.join(work, 'registry');
  await initRegistry(dir, { name: 'r', url: 'http://127.0.0.1:1' });
  // An upload waiting: `process` given it by name must not publish it (nor the rest of the batch).
  await writeFile(path.join(dir, 'incoming', 'mine.tgz'), await makeBundle());
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('when a command that takes options only is given a word besides them', () => {
  it.each([
    ['process', ['process', '--registry', 'registry', 'registry/incoming/mine.tgz']],
    ['refresh', ['refresh', '--registry', 'registry', 'now']],
    ['rebuild', ['rebuild', '--registry', 'registry', 'registry']],
    ['init', ['init', '--registry', 'other', 'other-name']],
    ['keygen', ['keygen', '--out', 'keys', 'Alice']],
    ['rotate-key', ['rotate-key', '--registry', 'registry', '--new-key', 'new.asc', 'extra']],
    ['serve', ['serve', '--registry', 'registry', '--port', '0', '9090']],
    ['dev', ['dev', '--registry', 'registry', '--port', '0', 'examples']],
  ])('%s refuses it (exit 2), naming it, and does nothing', async (command, args) => {
    const before = await treeOf(work);
    // A command that ignored the word would run: a server until it is killed (code null), at 45 s, below the
    // test's timeout (15 s once: a loaded machine's start of the command should never come near it).
    const refused = await plugindexProcess(args, { cwd: work, timeoutMs: 45_000 });
    expect(refused.code, refused.stderr).toBe(2);
    expect(refused.stderr).toContain(
      `plugindex ${command}: ${command} takes options only, not ${JSON.stringify(args.at(-1))}`,
    );
    expect(refused.stderr).toContain('usage: plugindex');
    expect(await treeOf(work)).toEqual(before);
  });
});
