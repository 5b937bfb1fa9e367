/**
 * The command table (cli/commands.ts) against what each command's `--help` says: every option a command
 * parses is in its usage, and every option its usage names is parsed; and an option a command would only
 * ignore is refused, as the built command runs it.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMMANDS } from '../../cli/commands.ts';
import { clientHomes } from '../support/cli.ts';

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
    const env = { ...process.env, ...clientHomes(work), CI: '1' };
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

/**
 * The forms of a command whose usage has several (one `plugindex ...` line each), how to run each (the
 * options that choose it), and which of the command's options choose a form rather than belong to one.
 * Each form must take exactly what its own line names: `verify --url`'s line left out the --json it takes,
 * and `verify --url U --dir D` took a --dir it never read.
 */
const FORMS: readonly {
  readonly command: string;
  readonly choosers: readonly string[];
  readonly forms: readonly (readonly string[])[];
}[] = [
  {
    command: 'verify',
    choosers: ['url', 'config'],
    forms: [[], ['-c', 'set.yaml'], ['--url', 'http://127.0.0.1:9/']],
  },
  // The action chooses the form; --names is add's, given so that add gets as far as reading KEYFILE.
  {
    command: 'publishers',
    choosers: ['registry', 'names'],
    forms: [
      ['add', 'key.asc', '--registry', 'none', '--names', 'acme-*'],
      ['remove', 'ACME', '--registry', 'none'],
      ['list', '--registry', 'none'],
    ],
  },
  {
    command: 'operators',
    choosers: ['registry'],
    forms: [
      ['add', 'key.asc', '--registry', 'none'],
      ['remove', 'ops', '--registry', 'none'],
      ['list', '--registry', 'none'],
    ],
  },
];

/** The lines of a usage text that each begin a form (`plugindex verify ...`). */
function formLines(usage: string): string[] {
  return usage
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.startsWith('plugindex '));
}

describe.each(FORMS)('when each usage form of `$command` is run', ({ command, choosers, forms }) => {
  const spec = COMMANDS[command];
  if (!spec) throw new Error(`no command ${command}`);
  const lines = formLines(spec.usage);

  it('has one usage line for each form', () => {
    expect(lines).toHaveLength(forms.length);
  });

  it.each(forms.map((form, i) => [form.join(' ') || '(no options)', i] as const))(
    'form %s takes exactly the options its line names',
    async (_title, i) => {
      const line = lines[i] ?? '';
      const form = forms[i] ?? [];
      const env = { ...process.env, ...clientHomes(work), CI: '1' };
      const wrong: string[] = [];
      for (const [option, config] of Object.entries(spec.options)) {
        if (choosers.includes(option)) continue;
        const named = namedIn(line).includes(option) || (config.short && line.includes(`-${config.short} `));
        const given = [
          ...form,
          `--${option}`,
          // A URL's option is given one (`verify --mirror` refuses a path as `registry add` does, exit 2).
          ...(config.type === 'string'
            ? [option === 'mirror' ? pathToFileURL(path.join(work, 'none')).href : path.join(work, 'none')]
            : []),
        ];
        const code = await run(process.execPath, [BIN, command, ...given], { cwd: work, env }).then(
          () => 0,
          (error: { code: number }) => error.code,
        );
        // Named: taken (whatever else fails, never a usage error); not named: refused, exit 2.
        if (named ? code === 2 : code !== 2) wrong.push(`${given.join(' ')}: exit ${code}`);
      }
      expect(wrong).toEqual([]);
    },
  );
});
