/**
 * The `plugindex` command as a dispatcher: help from the table (cli/commands.ts), argument parsing, the
 * command's module loaded only now, and every error turned into a message and an exit code. The commands
 * themselves live in cli/commands/, one file each; what they print, in cli/output.ts (loaded here only to
 * report a rejected submission's problems).
 */

import { ClientError } from '../client/errors.ts';
import { PlugindexError, SubmissionError } from '../index-builder/errors.ts';
import { parse, unknownWord } from './args.ts';
import { COMMANDS, type Command } from './commands.ts';
import { CliError, isRefusal, usage } from './errors.ts';
import { err, out } from './terminal.ts';

function help(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  return [
    'plugindex: a signed, static plugin registry',
    '',
    'usage: plugindex COMMAND [options]   (plugindex COMMAND --help for details; plugindex --version)',
    '',
    ...Object.entries(COMMANDS).map(([name, spec]) => `  ${name.padEnd(width)}  ${spec.summary}`),
  ].join('\n');
}

/** `COMMAND --help`: the summary, then the usage. */
function commandHelp(spec: Command): string {
  return `${spec.summary}\n\nusage: ${spec.usage}`;
}

/**
 * Other package managers' words for what a command here does (npm's `uninstall`, `ls`, `upgrade`...), named
 * back as that command: by spelling alone `uninstall` was two letters from `install` and got "did you mean
 * install?", the opposite of what was asked, and the others got nothing near. Never run in its place.
 */
const OTHER_TOOLS_WORDS: Readonly<Record<string, string>> = {
  uninstall: 'remove',
  rm: 'remove',
  delete: 'remove',
  upgrade: 'update',
  ls: 'list',
  show: 'info',
  view: 'info',
};

/** An unknown command: the one it most likely meant, else where the list is; never the whole list on stderr. */
function unknownCommand(name: string): string {
  const meant = Object.hasOwn(OTHER_TOOLS_WORDS, name) ? OTHER_TOOLS_WORDS[name] : undefined;
  return unknownWord(
    'command',
    name,
    meant !== undefined ? [meant] : Object.keys(COMMANDS),
    'plugindex --help lists every command',
    meant !== undefined,
  );
}

/** Runs the CLI; returns the exit code (0 ok, 1 rejected, not found or failed, 2 usage error, 3 refused by a trust check). */
export async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name) {
    // No command is a usage error: the help goes where diagnostics go, so `plugindex > file` keeps none.
    err(help());
    return 2;
  }
  if (name === '--version' || name === '-V') {
    if (rest.length > 0) {
      err(`plugindex ${name} takes nothing more, found ${JSON.stringify(rest[0])}`);
      return 2;
    }
    // Only now is package.json read, a chunk of its own in the bundle: start-up and --help load no more.
    const { default: pkg } = await import('../package.json', { with: { type: 'json' } });
    out(pkg.version);
    return 0;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    // `plugindex help COMMAND`, as cargo, helm and git take it: that command's help.
    const topic = rest[0];
    if (topic === undefined) {
      out(help());
      return 0;
    }
    const about = Object.hasOwn(COMMANDS, topic) ? COMMANDS[topic] : undefined;
    if (about) {
      out(commandHelp(about));
      return 0;
    }
    err(`plugindex help: ${unknownCommand(topic)}`);
    return 2;
  }
  const spec = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  // A program that asked for --json reads every failure from stdout too, a usage error included, in the
  // shape every command uses; a command that takes no --json is never given it.
  const json = rest.includes('--json') && spec?.options.json !== undefined;
  const failJson = (
    code: string,
    message: string,
    extra?: { readonly problems?: readonly object[]; readonly detail?: Readonly<Record<string, unknown>> },
  ): void => {
    if (json)
      out(
        JSON.stringify(
          {
            ok: false,
            error: {
              code,
              message,
              ...extra?.detail,
              ...(extra?.problems ? { problems: extra.problems } : {}),
            },
          },
          null,
          2,
        ),
      );
  };
  try {
    if (!spec) throw usage(unknownCommand(name));
    const parsed = parse(rest, spec.options, name);
    if (parsed.values.help) {
      out(commandHelp(spec));
      return 0;
    }
    const [word] = parsed.positionals;
    if (spec.optionsOnly && word !== undefined)
      throw usage(`${name} takes options only, not ${JSON.stringify(word)}`);
    const command = await spec.load();
    return await command.run(parsed);
  } catch (error) {
    if (error instanceof CliError) {
      err(`plugindex ${name}: ${error.code === 'USAGE' ? '' : `${error.code}: `}${error.message}`);
      if (error.code === 'USAGE' && spec) err(`usage: ${spec.usage}`);
      failJson(error.code, error.message, error.detail ? { detail: error.detail } : undefined);
      return error.exitCode;
    }
    if (error instanceof PlugindexError || error instanceof ClientError) {
      err(`plugindex ${name}: ${error.code}: ${error.message}`);
      if (error instanceof SubmissionError) {
        const { formatProblems, problemsJson } = await import('./output.ts');
        for (const line of formatProblems(error.problems)) err(line);
        failJson(error.code, error.message, { problems: problemsJson(error.problems) });
      } else failJson(error.code, error.message);
      // A secret key given for a public one is the caller's mistake, as the CLI's own SECRET_KEY_GIVEN (exit 2).
      if (error instanceof ClientError && error.misuse) return 2;
      return spec?.failureExit ?? (isRefusal(error) ? 3 : 1);
    }
    // Not one of ours: a defect, so its stack (source lines with NODE_OPTIONS=--enable-source-maps).
    err(`plugindex ${name}: ${(error as Error).stack ?? String(error)}`);
    return spec?.failureExit ?? 1;
  }
}
