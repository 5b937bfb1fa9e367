/**
 * The command table (cli/commands.ts) against what each command's `--help` says: every option a command
 * parses is in its usage, and every option its usage names is parsed; and an option a command would only
 * ignore is refused, as the built command runs it.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMMANDS } from '../../cli/commands.ts';

const BIN = path.resolve(import.meta.dirname, '../../cli/bin.mjs');
const run = promisify(execFile);

let work: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'plugindex-cli-commands-'));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** The options a usage text names (`--dir`), `--help` aside. */
function namedIn(usage: string): string[] {
  return [...new Set([...usage.matchAll(/--([a-z][a-z0-9-]*)/g)].map((m) => m[1] ?? ''))].filter(
    (o) => o !== 'help',
  );
}

describe.each(Object.entries(COMMANDS))('when `%s --help` is read', (_name, spec) => {
  it('names every option the command takes', () => {
    const named = namedIn(spec.usage);
    // `-c FILE` names --config, as every plugin-set command's usage writes it.
    const short = (o: string) => spec.options[o]?.short;
    const unnamed = Object.keys(spec.options).filter(
      (o) => !named.includes(o) && !spec.usage.includes(`-${short(o) ?? '--'} `),
    );
    expect(unnamed).toEqual([]);
  });

  it('names no option the command refuses', () => {
    expect(namedIn(spec.usage).filter((o) => !Object.hasOwn(spec.options, o))).toEqual([]);
  });
});

describe('when enable or disable is given --lockfile, which neither reads', () => {
  it('refuses it (exit 2), rather than take it and change nothing it names', async () => {
    const env = {
      ...process.env,
      PLUGINDEX_CONFIG_HOME: path.join(work, 'config'),
      PLUGINDEX_DATA_HOME: path.join(work, 'data'),
      PLUGINDEX_CACHE_HOME: path.join(work, 'cache'),
      CI: '1',
    };
    for (const command of ['enable', 'disable']) {
      const refused = await run(process.execPath, [BIN, command, 'x', '--lockfile', 'other.lock'], {
        cwd: work,
        env,
      }).then(
        () => ({ code: 0, stderr: '' }),
        (error: { code: number; stderr: string }) => error,
      );
      expect(refused.code, command).toBe(2);
      expect(refused.stderr, command).toContain("Unknown option '--lockfile'");
    }
  });
});
