/**
 * The dispatcher as a new user meets it: the built `plugindex` as a process (its own PLUGINDEX_* folders),
 * mistyped commands and options named back, `help COMMAND`, where a usage error goes, and `--json` failures
 * on stdout whatever failed (a usage error, a file that cannot be read, a submission's problems).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initRegistry, SECRET_KEY_FILE } from '../../cli/local/registry.ts';
import { type CommandResult, clientHomes, plugindexProcess } from '../support/cli.ts';

let work: string;

/** The built command, with this test's own client folders and working directory. */
function plugindex(...args: string[]): Promise<CommandResult> {
  return plugindexProcess(args, {
    cwd: work,
    env: clientHomes(path.join(work, 'client')),
    timeoutMs: 60_000,
  });
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

  it.each([
    ['uninstall', 'remove'],
    ['rm', 'remove'],
    ['upgrade', 'update'],
    ['ls', 'list'],
    ['show', 'info'],
  ])(
    "names for another tool's `%s` the command that does it (%s), not the nearest spelling",
    async (word, meant) => {
      const result = await plugindex(word, 'kubecost-lens');
      expect(result.code).toBe(2);
      expect(result.stdout).toBe('');
      // `uninstall` is two letters from `install`, which does the opposite.
      expect(result.stderr).toContain(`unknown command "${word}": did you mean "${meant}"?`);
    },
  );

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

describe("when a command's action is mistyped", () => {
  it.each([
    ['registry', 'ad', 'add'],
    ['owners', 'lst', 'list'],
    ['operator', 'tranfer', 'transfer'],
    ['advisory', 'withdraww', 'withdraw'],
  ])('names the action `%s %s` most likely meant, as for a command, exit 2', async (command, typo, meant) => {
    const result = await plugindex(command, typo);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(
      `unknown ${command} action "${typo}": did you mean "${meant}"? (plugindex ${command} --help lists every action)`,
    );
  });

  it('says where the list is when no action is close', async () => {
    const none = await plugindex('registry', 'frobnicate');
    expect(none.code).toBe(2);
    expect(none.stderr).toContain(
      'unknown registry action "frobnicate": plugindex registry --help lists every action',
    );
    expect(none.stderr).not.toContain('did you mean');
  });
});

describe('when the version is asked for', () => {
  it.each(['--version', '-V'])('prints the package version alone on stdout for %s, exit 0', async (flag) => {
    const { version } = JSON.parse(
      await readFile(path.resolve(import.meta.dirname, '../../package.json'), 'utf8'),
    ) as {
      version: string;
    };
    const result = await plugindex(flag);
    expect(result).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
  });

  it('refuses anything after it, exit 2', async () => {
    const result = await plugindex('--version', 'install');
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('--version takes nothing more');
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

describe('when an option is no typo of one the command takes', () => {
  it("says so in its own words, not node:util's hint of a positional argument after --, exit 2", async () => {
    // node:util's words: "Unknown option '--bogus'. To specify a positional argument starting with a '-',
    // place it at the end of the command after '--', as in '-- "--bogus"": no command takes one so.
    const unknown = await plugindex('refresh', '--bogus');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain(
      "Unknown option '--bogus': refresh takes none of that name (its usage below lists those it takes)",
    );
    expect(unknown.stderr).not.toContain('positional argument');
    expect(unknown.stderr).toContain('usage: plugindex refresh');
  });

  it("names the default a --no- option turns off: serve --watch (README's words) is what serve does", async () => {
    const watch = await plugindex('serve', '--watch');
    expect(watch.code).toBe(2);
    expect(watch.stderr).toContain(
      "Unknown option '--watch': serve does so unless --no-watch is given, so leave --watch out",
    );
  });
});

describe('when --json is asked and the command fails', () => {
  /** The one JSON document on stdout, as a program reading --json parses it. */
  function failure(result: CommandResult): { ok: boolean; error: { code: string; message: string } } {
    return JSON.parse(result.stdout) as { ok: boolean; error: { code: string; message: string } };
  }

  it('prints a usage error as JSON on stdout too, exit 2', async () => {
    const missing = await plugindex('info', '--json');
    expect(missing.code).toBe(2);
    expect(failure(missing)).toEqual({
      ok: false,
      error: { code: 'USAGE', message: expect.stringContaining('NAME') },
    });
    const unknown = await plugindex('install', '--json', '--bogus');
    expect(unknown.code).toBe(2);
    expect(failure(unknown).error.code).toBe('USAGE');
  });

  it('prints a file it cannot read as JSON, exit 1', async () => {
    const gone = await plugindex('validate', path.join(work, 'no-such.json'), '--json');
    expect(gone.code).toBe(1);
    expect(failure(gone)).toEqual({
      ok: false,
      error: { code: 'FILE_NOT_FOUND', message: expect.stringContaining('no-such.json') },
    });
  });

  it('refuses a secret key given to validate as publish does: SECRET_KEY_GIVEN, exit 2', async () => {
    // `validate my-key/secret.asc` (a completion one folder off) said MANIFEST_PARSE_ERROR, "not valid JSON
    // at line 1, column 2: No number after minus sign", exit 1, where publish names the mistake.
    const registry = path.join(work, 'validate-secret-registry');
    await initRegistry(registry, { name: 'r', url: 'http://127.0.0.1:8080' });
    const key = path.join(registry, SECRET_KEY_FILE);

    const result = await plugindex('validate', key, '--json');

    expect(result.code).toBe(2);
    expect(failure(result)).toEqual({
      ok: false,
      error: { code: 'SECRET_KEY_GIVEN', message: expect.stringContaining(`${key} is a secret key`) },
    });
  });

  it('gives each problem validate --json lists with what was expected and found, as its text does', async () => {
    // The text said "(expected one of cost_source, ...; found \"cost\")", the JSON only code, path and message:
    // a script reading it could not tell the author which values the field takes.
    const file = path.join(work, 'wrong-type.json');
    await writeFile(
      file,
      JSON.stringify({
        name: 'demo',
        version: '1.0.0',
        api_version: 'v1',
        plugin_type: 'cost',
        capabilities: [],
      }),
    );
    const result = await plugindex('validate', file, '--json');
    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout) as { valid: boolean; errors: Record<string, unknown>[] };
    expect(report.errors).toContainEqual({
      code: 'MANIFEST_NOT_ALLOWED_VALUE',
      path: '/plugin_type',
      message: '/plugin_type must be equal to one of the allowed values',
      expected: 'one of cost_source, observability, registry, aggregator',
      found: '"cost"',
    });
    // A problem with neither says so by their absence, not by empty fields.
    expect(report.errors.every((e) => e.expected !== '' && e.found !== '')).toBe(true);
  });

  it("prints a refused submission's problems as JSON, exit 1", async () => {
    const dir = path.join(work, 'registry');
    await initRegistry(dir, { name: 'Main', url: 'http://127.0.0.1:1' });
    // The registry's own key as the new one: refused before anything is written.
    const same = await plugindex(
      'rotate-key',
      '--registry',
      dir,
      '--new-key',
      path.join(dir, SECRET_KEY_FILE),
      '--json',
    );
    expect(same.code).toBe(1);
    const report = JSON.parse(same.stdout) as {
      ok: boolean;
      error: { code: string; problems: { code: string; path: string }[] };
    };
    expect(report.ok).toBe(false);
    expect(report.error.problems).toEqual([
      expect.objectContaining({ code: 'ROTATION_INVALID', path: '/rotation/next/fingerprint' }),
    ]);
  });

  it('prints nothing on stdout for a command that takes no --json', async () => {
    const refused = await plugindex('init-config', '--json');
    expect(refused.code).toBe(2);
    expect(refused.stdout).toBe('');
  });
});
