/**
 * The dispatcher as a new user meets it: the built `plugindex` as a process (its own PLUGINDEX_* folders),
 * mistyped commands and options named back, `help COMMAND`, and where a usage error goes.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const BIN = path.resolve(import.meta.dirname, '../../cli/bin.mjs');
const run = promisify(execFile);

let work: string;

interface Result {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** The built command, with this test's own client folders and working directory. */
async function plugindex(...args: string[]): Promise<Result> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PLUGINDEX_CONFIG_HOME: path.join(work, 'client/config'),
    PLUGINDEX_DATA_HOME: path.join(work, 'client/data'),
    PLUGINDEX_CACHE_HOME: path.join(work, 'client/cache'),
    CI: '1',
  };
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { cwd: work, env });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'plugindex-cli-main-'));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('when the command is mistyped', () => {
  it('names the command it most likely meant on stderr, exit 2, nothing on stdout', async () => {
    const typo = await plugindex('instal', 'kubecost-lens');
    expect(typo.code).toBe(2);
    expect(typo.stdout).toBe('');
    expect(typo.stderr).toContain('unknown command "instal": did you mean "install"?');
    // One line that helps, not the whole table of commands.
    expect(typo.stderr.trimEnd().split('\n')).toHaveLength(1);
  });

  it('says where the list is when nothing is close', async () => {
    const none = await plugindex('frobnicate');
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('unknown command "frobnicate": plugindex --help lists every command');
    expect(none.stderr).not.toContain('did you mean');
  });

  it('exits 2 with the help on stderr, not stdout, when no command is given', async () => {
    const bare = await plugindex();
    expect(bare.code).toBe(2);
    expect(bare.stdout).toBe('');
    expect(bare.stderr).toContain('usage: plugindex COMMAND');
  });
});

describe('when help is asked for as `help COMMAND`', () => {
  it("prints that command's usage, as COMMAND --help does, exit 0", async () => {
    const help = await plugindex('help', 'install');
    expect(help.code).toBe(0);
    expect(help.stdout).toBe((await plugindex('install', '--help')).stdout);
    expect(help.stdout).toContain('usage: plugindex install');
    const typo = await plugindex('help', 'instal');
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain('did you mean "install"?');
  });
});

describe('when an option is mistyped', () => {
  it("names the command's option it most likely meant, exit 2 with the usage on stderr", async () => {
    const typo = await plugindex('install', '--frozn');
    expect(typo.code).toBe(2);
    expect(typo.stdout).toBe('');
    expect(typo.stderr).toContain("Unknown option '--frozn': did you mean --frozen?");
    expect(typo.stderr).toContain('usage: plugindex install');
    expect((await plugindex('list', '--outdatd')).stderr).toContain('did you mean --outdated?');
    expect((await plugindex('keygen', '--ot', 'x')).stderr).toContain('did you mean --out?');
  });
});
